/* score.c: the default heuristic complexity scorer.
 *
 * Design: one pass over the prompt bytes counts a handful of signals (words found in a small
 * sorted keyword table, code punctuation, operators between digits, code fences, numbered list
 * items, non-ASCII characters); request fields add the rest (max_tokens, tools, depth). Each
 * signal is squashed to [0,1] by a saturating formula and the score is the weighted sum. The
 * weights are a table so tuning is a data change; a learned scorer replaces the whole thing
 * through pd_scorer. No allocation, no regex: words are lower-cased into a 16-byte stack
 * buffer and looked up among the keywords of the same first letter and length (an index of the
 * sorted table by first letter, built on the stack per call: a few dozen steps, against one
 * lookup per word of the prompt). */
#include "router/score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WORD_MAX 16

static const struct {
    const char *name;
    double weight;
} FEATURES[PD_FEAT_COUNT] = {
    [PD_FEAT_LENGTH] = {"length", 0.15}, [PD_FEAT_CODE] = {"code", 0.20},
    [PD_FEAT_MATH] = {"math", 0.15},     [PD_FEAT_STEPS] = {"steps", 0.20},
    [PD_FEAT_OUTPUT] = {"output", 0.10}, [PD_FEAT_TOOLS] = {"tools", 0.08},
    [PD_FEAT_DEPTH] = {"depth", 0.07},   [PD_FEAT_LANGUAGE] = {"language", 0.05},
};

/* Keywords and the feature they count for. MUST stay sorted (strcmp order): looked up by
   bsearch; test_router checks the order. */
typedef struct keyword {
    const char *word;
    pd_score_feature feat;
} keyword;

static const keyword KEYWORDS[] = {
    {"algebra", PD_FEAT_MATH},
    {"algorithm", PD_FEAT_CODE},
    {"analyse", PD_FEAT_STEPS},
    {"analyze", PD_FEAT_STEPS},
    {"architecture", PD_FEAT_STEPS},
    {"async", PD_FEAT_CODE},
    {"bash", PD_FEAT_CODE},
    {"calculate", PD_FEAT_MATH},
    {"class", PD_FEAT_CODE},
    {"compare", PD_FEAT_STEPS},
    {"compile", PD_FEAT_CODE},
    {"compiler", PD_FEAT_CODE},
    {"comprehensive", PD_FEAT_OUTPUT},
    {"compute", PD_FEAT_MATH},
    {"const", PD_FEAT_CODE},
    {"debug", PD_FEAT_CODE},
    {"def", PD_FEAT_CODE},
    {"derivative", PD_FEAT_MATH},
    {"derive", PD_FEAT_STEPS},
    {"design", PD_FEAT_STEPS},
    {"detailed", PD_FEAT_OUTPUT},
    {"eigenvalue", PD_FEAT_MATH},
    {"elif", PD_FEAT_CODE},
    {"equation", PD_FEAT_MATH},
    {"essay", PD_FEAT_OUTPUT},
    {"evaluate", PD_FEAT_STEPS},
    {"exhaustive", PD_FEAT_OUTPUT},
    {"explain", PD_FEAT_STEPS},
    {"finally", PD_FEAT_STEPS},
    {"first", PD_FEAT_STEPS},
    {"fn", PD_FEAT_CODE},
    {"func", PD_FEAT_CODE},
    {"function", PD_FEAT_CODE},
    {"impl", PD_FEAT_CODE},
    {"import", PD_FEAT_CODE},
    {"include", PD_FEAT_CODE},
    {"integral", PD_FEAT_MATH},
    {"justify", PD_FEAT_STEPS},
    {"lambda", PD_FEAT_CODE},
    {"lemma", PD_FEAT_MATH},
    {"matrix", PD_FEAT_MATH},
    {"optimize", PD_FEAT_STEPS},
    {"polynomial", PD_FEAT_MATH},
    {"printf", PD_FEAT_CODE},
    {"probability", PD_FEAT_MATH},
    {"proof", PD_FEAT_MATH},
    {"prove", PD_FEAT_MATH},
    {"python", PD_FEAT_CODE},
    {"reason", PD_FEAT_STEPS},
    {"reasoning", PD_FEAT_STEPS},
    {"refactor", PD_FEAT_CODE},
    {"regex", PD_FEAT_CODE},
    {"report", PD_FEAT_OUTPUT},
    {"return", PD_FEAT_CODE},
    {"rust", PD_FEAT_CODE},
    {"segfault", PD_FEAT_CODE},
    {"solve", PD_FEAT_MATH},
    {"sql", PD_FEAT_CODE},
    {"sqrt", PD_FEAT_MATH},
    {"step", PD_FEAT_STEPS},
    {"steps", PD_FEAT_STEPS},
    {"struct", PD_FEAT_CODE},
    {"then", PD_FEAT_STEPS},
    {"theorem", PD_FEAT_MATH},
    {"therefore", PD_FEAT_STEPS},
    {"thorough", PD_FEAT_OUTPUT},
    {"tradeoffs", PD_FEAT_STEPS},
    {"typedef", PD_FEAT_CODE},
    {"variance", PD_FEAT_MATH},
    {"void", PD_FEAT_CODE},
    {"why", PD_FEAT_STEPS},
};
#define N_KEYWORDS (sizeof KEYWORDS / sizeof KEYWORDS[0])

/* Raw counts gathered by the text pass. */
typedef struct counts {
    unsigned words[PD_FEAT_COUNT]; /* keyword hits per feature */
    unsigned fences;               /* ``` */
    unsigned code_punct;           /* ; { } */
    unsigned math_ops;             /* an operator right after a digit, a \command */
    unsigned list_items;           /* "1." / "2)" at a line start */
    size_t chars, non_ascii;       /* characters (UTF-8 lead bytes) */
} counts;

/* Where each first letter's keywords are in KEYWORDS: [from, to). */
typedef struct letter_index {
    unsigned char from[26], to[26];
    unsigned char len[128]; /* strlen of each keyword */
} letter_index;

/* Text-pass state that must survive between the parts of a message. */
typedef struct scan {
    letter_index idx;
    char word[WORD_MAX];
    size_t word_len;
    bool word_long;  /* longer than WORD_MAX: not a keyword */
    bool line_start; /* only spaces since the last newline */
    char prev;       /* last non-space byte */
    unsigned ticks;  /* consecutive backticks */
    counts c;
} scan;

const char *pd_score_feature_name(pd_score_feature f)
{
    return (unsigned)f < PD_FEAT_COUNT ? FEATURES[f].name : NULL;
}

double pd_score_feature_weight(pd_score_feature f)
{
    return (unsigned)f < PD_FEAT_COUNT ? FEATURES[f].weight : 0;
}

const char *pd_score_keyword(size_t i, pd_score_feature *feat)
{
    if (i >= N_KEYWORDS)
        return NULL;
    if (feat)
        *feat = KEYWORDS[i].feat;
    return KEYWORDS[i].word;
}

_Static_assert(N_KEYWORDS < 128, "letter_index holds at most 127 keywords");

static void index_keywords(letter_index *x)
{
    memset(x->from, 0, sizeof x->from);
    memset(x->to, 0, sizeof x->to);
    for (size_t i = N_KEYWORDS; i-- > 0;) { /* backwards: `from` ends at the first of a letter */
        int l = KEYWORDS[i].word[0] - 'a';
        x->from[l] = (unsigned char)i;
        if (!x->to[l])
            x->to[l] = (unsigned char)(i + 1);
        x->len[i] = (unsigned char)strlen(KEYWORDS[i].word);
    }
}

static void word_end(scan *s)
{
    if (s->word_len > 0 && !s->word_long) {
        int l = s->word[0] - 'a';
        for (unsigned i = s->idx.from[l]; i < s->idx.to[l]; i++)
            if (s->idx.len[i] == s->word_len && memcmp(KEYWORDS[i].word, s->word, s->word_len) == 0) {
                s->c.words[KEYWORDS[i].feat]++;
                break;
            }
    }
    s->word_len = 0;
    s->word_long = false;
}

static bool is_op(char c)
{
    return c == '+' || c == '-' || c == '*' || c == '/' || c == '^' || c == '=' || c == '<' ||
           c == '>';
}

/* Everything that is not part of a word. */
static void punct(scan *s, char c)
{
    s->ticks = c == '`' ? s->ticks + 1 : 0;
    if (s->ticks == 3)
        s->c.fences++;
    if (c == ';' || c == '{' || c == '}')
        s->c.code_punct++;
    if (is_op(c) && s->prev >= '0' && s->prev <= '9')
        s->c.math_ops++;
    if ((c == '.' || c == ')') && s->prev >= '0' && s->prev <= '9' && s->line_start)
        s->c.list_items++;
    if (c == '\n') {
        s->line_start = true;
    } else if (c != ' ' && c != '\t' && !(c >= '0' && c <= '9')) {
        s->line_start = false;
    }
}

/* The common case in one test: a lower-case ASCII letter inside a word that still fits. */
static inline bool scan_letter_fast(scan *s, unsigned char u)
{
    if (u < 'a' || u > 'z' || s->word_len == 0 || s->word_len >= WORD_MAX - 1)
        return false;
    s->c.chars++;
    s->word[s->word_len++] = (char)u;
    s->prev = (char)u;
    return true; /* line_start and ticks were cleared by the word's first letter */
}

static void scan_byte(scan *s, unsigned char u)
{
    if ((u & 0xC0) != 0x80) {
        s->c.chars++;
        if (u >= 0x80)
            s->c.non_ascii++;
    }
    char c = (char)u;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        if (s->word_len == 0 && s->prev == '\\')
            s->c.math_ops++; /* a LaTeX command: \frac, \sum, \int */
        if (s->word_len < WORD_MAX - 1)
            s->word[s->word_len++] = (char)(c | 0x20);
        else
            s->word_long = true;
        s->line_start = false;
        s->ticks = 0;
    } else {
        word_end(s);
        punct(s, c);
    }
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
        s->prev = c;
}

static void scan_text(scan *s, const char *text, size_t *budget, pd_score_features *f)
{
    size_t n = strlen(text);
    f->text_bytes += n;
    size_t take = n < *budget ? n : *budget;
    for (size_t i = 0; i < take; i++)
        if (!scan_letter_fast(s, (unsigned char)text[i]))
            scan_byte(s, (unsigned char)text[i]);
    *budget -= take;
    word_end(s);
    punct(s, '\n'); /* parts and messages are separate lines */
}

static bool role_scored(pd_chat_role r)
{
    return r == PD_ROLE_SYSTEM || r == PD_ROLE_DEVELOPER || r == PD_ROLE_USER;
}

static void scan_request(const pd_chat_request *req, scan *s, pd_score_features *f)
{
    size_t budget = PD_SCORE_MAX_SCAN;
    for (size_t i = 0; i < req->n_messages; i++) {
        const pd_chat_message *m = &req->messages[i];
        if (!role_scored(m->role))
            continue;
        for (size_t j = 0; j < m->n_parts; j++)
            if (m->parts[j].kind == PD_PART_TEXT && m->parts[j].text)
                scan_text(s, m->parts[j].text, &budget, f);
    }
}

static double clamp01(double x)
{
    return x > 1 ? 1 : (x > 0 ? x : 0); /* NaN -> 0 */
}

static double effort_value(const char *e)
{
    static const struct {
        const char *name;
        double v;
    } EFFORT[] = {{"minimal", 0.1}, {"low", 0.3}, {"medium", 0.6}, {"high", 1}, {"xhigh", 1}};
    for (size_t i = 0; e && i < sizeof EFFORT / sizeof EFFORT[0]; i++)
        if (strcmp(e, EFFORT[i].name) == 0)
            return EFFORT[i].v;
    return 0;
}

static double output_value(const pd_chat_request *req, const counts *c)
{
    double v = 0.3 * c->words[PD_FEAT_OUTPUT];
    if (req->sampling.has_max_tokens && req->sampling.max_tokens > 256) {
        double t = log2((double)req->sampling.max_tokens / 256.0) / 4.0; /* 4096 -> 1 */
        v = t > v ? t : v;
    }
    double e = effort_value(req->reasoning_effort);
    return clamp01(e > v ? e : v);
}

static double tools_value(const pd_chat_request *req)
{
    if (req->n_tools == 0)
        return 0;
    double v = 0.4 + 0.1 * (double)req->n_tools;
    pd_chat_tool_choice_kind k = req->tool_choice.kind;
    if (k == PD_TOOL_CHOICE_REQUIRED || k == PD_TOOL_CHOICE_NAMED)
        v += 0.2;
    return clamp01(v);
}

static void features_from(const pd_chat_request *req, const counts *c, pd_score_features *f)
{
    double *v = f->value;
    v[PD_FEAT_LENGTH] = clamp01(log2(1.0 + (double)f->text_bytes / 32.0) / 8.0); /* 8 KiB -> 1 */
    v[PD_FEAT_CODE] =
        c->fences ? 1.0 : clamp01(0.2 * c->words[PD_FEAT_CODE] + 0.05 * c->code_punct);
    v[PD_FEAT_MATH] = clamp01(0.25 * c->words[PD_FEAT_MATH] + 0.1 * c->math_ops);
    v[PD_FEAT_STEPS] = clamp01(c->words[PD_FEAT_STEPS] / 6.0 + 0.15 * c->list_items);
    v[PD_FEAT_OUTPUT] = output_value(req, c);
    v[PD_FEAT_TOOLS] = tools_value(req);
    v[PD_FEAT_DEPTH] = req->n_messages > 1 ? clamp01((double)(req->n_messages - 1) / 12.0) : 0;
    v[PD_FEAT_LANGUAGE] = c->chars ? clamp01(2.0 * (double)c->non_ascii / (double)c->chars) : 0;
}

double pd_score_heuristic(void *ud, const pd_chat_request *req, pd_score_features *out)
{
    (void)ud;
    scan s;
    memset(&s, 0, sizeof s);
    index_keywords(&s.idx);
    s.line_start = true;
    memset(out, 0, sizeof *out);
    scan_request(req, &s, out);
    features_from(req, &s.c, out);
    double score = 0;
    for (int i = 0; i < PD_FEAT_COUNT; i++)
        score += FEATURES[i].weight * out->value[i];
    return clamp01(score);
}

pd_scorer pd_score_default(void)
{
    return (pd_scorer){pd_score_heuristic, NULL, "heuristic-v1"};
}

double pd_score_run(const pd_scorer *s, const pd_chat_request *req, pd_score_features *out)
{
    memset(out, 0, sizeof *out);
    return clamp01(s->fn(s->ud, req, out));
}
