/* scan.c: the detector (compiled databases) and the scanner (per-thread scan state).
 *
 * Two databases, both scanned over the whole text: the class-led shapes (PII_NUMERIC: a run of
 * digits, two capitals and digits) and the literal-anchored ones (everything else: '@', key
 * prefixes, trigger words). Vectorscan runs a database of only class-led shapes in its fast
 * outfix path, and one of only anchored shapes in its literal matcher; mixed into one database
 * the class-led engines lose their acceleration. Measured on the benchmark text, one mixed
 * database scanned at ~230 MB/s and the two separately at ~2000 and ~1200 MB/s (~740 MB/s
 * for both passes), so the split is worth its second pass.
 *
 * Design note. Vectorscan reports every (pattern, end) pair it finds, and with SOM_LEFTMOST the
 * leftmost start that ends there. A shape like `(?:[a-z0-9-]+\.)+[a-z]{2,}` therefore reports
 * one match per label of a domain, all with the same start. The match callback folds these:
 * a match of the same pattern with the same start as that pattern's previous candidate just
 * extends it, so a candidate is (pattern, start, longest end) and the validators, which know the
 * entity's real length (a card of 16 digits, an IBAN of its country's length), cut it down.
 * Candidates are only collected during the scan; validation runs after it, over a fixed array,
 * so the callback stays tiny and the engine runs at full speed.
 *
 * Overlaps: several shapes match the same bytes (a US phone number is also a 10-digit NHS
 * candidate). After validation the findings are sorted by start and swept once: of two
 * overlapping findings the higher score wins, then the longer, then the lower type number. */
#include "pii/pii_int.h"

#include <hs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[PD_PII_TYPE_COUNT] = {
    [PD_PII_EMAIL] = "EMAIL",
    [PD_PII_PHONE] = "PHONE",
    [PD_PII_CREDIT_CARD] = "CREDIT_CARD",
    [PD_PII_IBAN] = "IBAN",
    [PD_PII_US_SSN] = "US_SSN",
    [PD_PII_US_ITIN] = "US_ITIN",
    [PD_PII_UK_NINO] = "UK_NINO",
    [PD_PII_UK_NHS] = "UK_NHS",
    [PD_PII_IP_ADDRESS] = "IP_ADDRESS",
    [PD_PII_MAC_ADDRESS] = "MAC_ADDRESS",
    [PD_PII_SECRET] = "SECRET",
    [PD_PII_DATE_OF_BIRTH] = "DATE_OF_BIRTH",
    [PD_PII_PERSON] = "PERSON",
};

const char *pd_pii_type_name(pd_pii_type t)
{
    return (unsigned)t < PD_PII_TYPE_COUNT ? type_names[t] : NULL;
}

int pd_pii_type_from_name(const char *name, size_t len)
{
    for (int t = 0; t < PD_PII_TYPE_COUNT; t++)
        if (strlen(type_names[t]) == len && memcmp(type_names[t], name, len) == 0)
            return t;
    return -1;
}

pd_pii_params pd_pii_default_params(void)
{
    pd_pii_params p;
    for (int t = 0; t < PD_PII_TYPE_COUNT; t++)
        p.threshold[t] = 0.5f;
    p.context_before = 48;
    p.context_after = 24;
    p.max_input = 64u << 20;
    p.max_candidates = 64u << 10;
    p.max_findings = 1u << 20;
    return p;
}

/* ---- detector ----------------------------------------------------------------------------- */
struct pd_pii_detector {
    hs_database_t *db[2]; /* [0] class-led shapes, [1] anchored shapes; NULL when empty */
    pd_pii_params params;
    pii_ctx_index index;
};

static int params_ok(const pd_pii_params *p)
{
    for (int t = 0; t < PD_PII_TYPE_COUNT; t++)
        if (!(p->threshold[t] >= 0.0f)) /* also rejects NaN */
            return 0;
    return p->max_input > 0 && p->max_input <= UINT_MAX - 1024 && p->max_candidates > 0 &&
           p->max_findings > 0 && p->context_before <= 1024 && p->context_after <= 1024;
}

/* Compiles the enabled patterns whose PII_NUMERIC flag equals `numeric` into *db (left NULL
   when there are none). */
static pd_result compile_db(const pd_pii_params *p, int numeric, hs_database_t **db)
{
    const char **exprs = pd_xcalloc(pii_pattern_count, sizeof *exprs);
    unsigned *flags = pd_xcalloc(pii_pattern_count, sizeof *flags);
    unsigned *ids = pd_xcalloc(pii_pattern_count, sizeof *ids);
    unsigned n = 0, enabled = 0;
    for (int t = 0; t < PD_PII_TYPE_COUNT; t++)
        if (p->threshold[t] <= 1.0f) /* above 1: type disabled, its shapes are not compiled */
            enabled |= 1u << t;
    for (size_t i = 0; i < pii_pattern_count; i++) {
        const pii_pattern *pat = &pii_patterns[i];
        if (!(pat->types & enabled) || !(pat->flags & PII_NUMERIC) != !numeric)
            continue;
        exprs[n] = pat->regex;
        flags[n] = (pat->flags & PII_SOM ? HS_FLAG_SOM_LEFTMOST : 0) |
                   (pat->flags & PII_CASELESS ? HS_FLAG_CASELESS : 0);
        ids[n++] = (unsigned)i;
    }
    pd_result rc = PD_OK;
    hs_compile_error_t *err = NULL;
    *db = NULL;
    if (n > 0 &&
        hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, db, &err) != HS_SUCCESS) {
        int bad = err && err->expression >= 0 ? (int)ids[err->expression] : -1;
        fprintf(stderr, "pii: pattern %d does not compile: %s\n", bad, err ? err->message : "?");
        hs_free_compile_error(err);
        rc = PD_ERR_INVALID;
    }
    free(exprs);
    free(flags);
    free(ids);
    return rc;
}

pd_result pd_pii_detector_new(const pd_pii_params *params, pd_pii_detector **out)
{
    pd_pii_params p = params ? *params : pd_pii_default_params();
    *out = NULL;
    if (!params_ok(&p))
        return PD_ERR_INVALID;
    pd_pii_detector *d = pd_xcalloc(1, sizeof *d);
    d->params = p;
    pii_ctx_index_build(&d->index);
    pd_result rc = compile_db(&p, 1, &d->db[0]);
    if (!rc)
        rc = compile_db(&p, 0, &d->db[1]);
    if (rc) {
        pd_pii_detector_free(d);
        return rc;
    }
    *out = d;
    return PD_OK;
}

void pd_pii_detector_free(pd_pii_detector *d)
{
    if (!d)
        return;
    hs_free_database(d->db[0]);
    hs_free_database(d->db[1]);
    free(d);
}

const pd_pii_params *pd_pii_detector_params(const pd_pii_detector *d)
{
    return &d->params;
}

/* ---- scanner ------------------------------------------------------------------------------ */
/* Vectorscan 5.4.9 (Debian 12) misses some matches that end within the last ~64 bytes of the
   scanned buffer on AVX-512 machines (a tail-handling bug in its SIMD accelerators, fixed
   upstream later; reproduced here: an email at the very end of a message was missed for about
   half of the buffer alignments). So the scanner scans a copy of the text followed by PAD_LEN
   newlines, clamps reported ends to the text, and the validators read the caller's text. */
#define PAD_LEN 64

typedef struct cand {
    uint32_t pat;
    size_t start, end;
} cand;

struct pd_pii_scanner {
    const pd_pii_detector *det;
    hs_scratch_t *scratch;
    cand *cands; /* candidates not validated yet; validated in batches when full */
    size_t ncands, cap_cands;
    uint32_t *last;  /* per pattern: 1 + index of its latest candidate, 0 for none */
    size_t *covered; /* per pattern, see pii_ctx */
    char *padded;    /* the text followed by PAD_LEN newlines (see PAD_LEN) */
    size_t padded_cap;
    pii_ctx ctx; /* validation state of the scan in progress */
    size_t nfind;
    int overflow;
};

pd_result pd_pii_scanner_new(const pd_pii_detector *d, pd_pii_scanner **out)
{
    *out = NULL;
    pd_pii_scanner *s = pd_xcalloc(1, sizeof *s);
    s->det = d;
    for (int k = 0; k < 2; k++) /* one scratch, grown to fit both databases */
        if (d->db[k] && hs_alloc_scratch(d->db[k], &s->scratch) != HS_SUCCESS) {
            hs_free_scratch(s->scratch);
            free(s);
            return PD_ERR_NOMEM;
        }
    s->last = pd_xcalloc(pii_pattern_count, sizeof *s->last);
    s->covered = pd_xcalloc(pii_pattern_count, sizeof *s->covered);
    *out = s;
    return PD_OK;
}

void pd_pii_scanner_free(pd_pii_scanner *s)
{
    if (!s)
        return;
    hs_free_scratch(s->scratch);
    free(s->cands);
    free(s->last);
    free(s->covered);
    free(s->padded);
    free(s->ctx.out);
    free(s);
}

/* Runs the validators over the candidates collected so far and empties the list.
   Returns non-zero when the finding cap was reached. */
static int validate_batch(pd_pii_scanner *s)
{
    for (size_t i = 0; i < s->ncands; i++) {
        const cand *k = &s->cands[i];
        const pii_pattern *p = &pii_patterns[k->pat];
        if (p->validate(&s->ctx, p, k->start, k->end))
            return 1;
    }
    s->ncands = 0;
    memset(s->last, 0, pii_pattern_count * sizeof *s->last);
    return 0;
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ud)
{
    (void)flags;
    pd_pii_scanner *s = ud;
    if (from >= s->ctx.len)
        return 0; /* inside the padding */
    if (to > s->ctx.len)
        to = s->ctx.len;
    uint32_t last = s->last[id];
    if (last && (pii_patterns[id].flags & PII_SOM) && s->cands[last - 1].start == from) {
        if (to > s->cands[last - 1].end)
            s->cands[last - 1].end = (size_t)to;
        return 0;
    }
    if (s->ncands == s->cap_cands) {
        size_t max = s->det->params.max_candidates;
        if (s->cap_cands < max) {
            size_t cap = s->cap_cands ? s->cap_cands * 2 : 256;
            s->cap_cands = cap < max ? cap : max;
            s->cands = pd_xrealloc(s->cands, s->cap_cands * sizeof *s->cands);
        } else if (validate_batch(s)) { /* full: validate what we have, then go on */
            s->overflow = 1;
            return 1; /* stops the scan */
        }
    }
    s->cands[s->ncands] = (cand){id, (size_t)from, (size_t)to};
    s->last[id] = (uint32_t)++s->ncands;
    return 0;
}

int pii_emit(pii_ctx *c, pd_pii_type type, size_t start, size_t end, float score,
             const char *validator)
{
    if (score > 1.0f)
        score = 1.0f;
    if (score < 0.0f)
        score = 0.0f;
    if (start >= end || end > c->len || score < c->params->threshold[type])
        return 0;
    pd_pii_finding *prev = c->n ? &c->out[c->n - 1] : NULL;
    if (prev && prev->type == type && prev->start == start) {
        if (end > prev->end || (end == prev->end && score > prev->score))
            *prev = (pd_pii_finding){type, start, end, score, validator};
        return 0;
    }
    if (c->n == c->cap) {
        if (c->cap >= c->limit)
            return 1;
        size_t cap = c->cap ? c->cap * 2 : 64;
        c->cap = cap < c->limit ? cap : c->limit;
        c->out = pd_xrealloc(c->out, c->cap * sizeof *c->out);
    }
    c->out[c->n++] = (pd_pii_finding){type, start, end, score, validator};
    return 0;
}

/* ---- context words ------------------------------------------------------------------------ */
static int is_letterish(unsigned char ch)
{
    return pii_isalnum(ch) || ch >= 0x80;
}

/* Whether w (lower case) is at text[i], starting a word (and ending one if it is short). */
static int word_at(const pii_ctx *c, size_t i, size_t hi, const char *w, size_t wl)
{
    if (i + wl > hi)
        return 0;
    const unsigned char *t = (const unsigned char *)c->text + i;
    for (size_t k = 0; k < wl; k++)
        if (pii_lower(t[k]) != (unsigned char)w[k])
            return 0;
    if (i > 0 && is_letterish((unsigned char)c->text[i - 1]) && is_letterish((unsigned char)w[0]))
        return 0;
    if (wl <= 4 && i + wl < c->len && is_letterish(t[wl]) && is_letterish((unsigned char)w[wl - 1]))
        return 0;
    return 1;
}

void pii_ctx_index_build(pii_ctx_index *x)
{
    memset(x, 0, sizeof *x);
    for (int t = 0; t < PD_PII_TYPE_COUNT; t++) {
        const char *const *lists[2] = {pii_context_rules[t].pos, pii_context_rules[t].neg};
        size_t n = 0;
        for (unsigned ch = 1; ch < 256; ch++) { /* counting sort by first byte */
            x->start[t][ch] = (uint8_t)n;
            for (int l = 0; l < 2; l++)
                for (const char *const *w = lists[l]; w && *w; w++)
                    if ((unsigned char)**w == ch && n < PII_CTX_MAX_WORDS)
                        x->words[t][n++] = (pii_ctx_word){*w, (uint8_t)strlen(*w), (uint8_t)!l};
            x->count[t][ch] = (uint8_t)(n - x->start[t][ch]);
        }
    }
}

/* Distances from the entity [before_end, after_start) to the nearest word of pos and of neg
   within [lo, hi): for a word before it the gap to before_end, after it the gap from
   after_start; SIZE_MAX when none. Only word starts whose byte begins some word are tried. */
static void nearest(const pii_ctx *c, pd_pii_type t, size_t lo, size_t before_end,
                    size_t after_start, size_t hi, size_t *dpos, size_t *dneg)
{
    const uint8_t *start = c->index->start[t], *count = c->index->count[t];
    *dpos = *dneg = SIZE_MAX;
    for (size_t i = lo; i < hi; i++) {
        if (i == before_end)
            i = after_start;
        if (i >= hi)
            break;
        unsigned char ch = pii_lower((unsigned char)c->text[i]);
        if (!count[ch])
            continue;
        size_t end = i < before_end ? before_end : hi;
        const pii_ctx_word *w = c->index->words[t] + start[ch];
        for (size_t k = 0; k < count[ch]; k++) {
            if (!word_at(c, i, end, w[k].w, w[k].len))
                continue;
            size_t d = i < before_end ? before_end - (i + w[k].len) : i - after_start;
            size_t *best = w[k].positive ? dpos : dneg;
            *best = d < *best ? d : *best;
        }
    }
}

float pii_context(const pii_ctx *c, pd_pii_type t, size_t start, size_t end, int *pos_found)
{
    const pii_context_rule *r = &pii_context_rules[t];
    if (pos_found)
        *pos_found = 0;
    if (!r->pos && !r->neg)
        return 0;
    size_t lo = start > c->params->context_before ? start - c->params->context_before : 0;
    size_t hi = end + c->params->context_after < c->len ? end + c->params->context_after : c->len;
    size_t dp, dn;
    nearest(c, t, lo, start, end, hi, &dp, &dn);
    if (dp == SIZE_MAX && dn == SIZE_MAX)
        return 0;
    if (dp <= dn) {
        if (pos_found)
            *pos_found = 1;
        return r->pos_boost;
    }
    return -r->neg_penalty;
}

/* ---- resolution --------------------------------------------------------------------------- */
static int by_start(const void *a, const void *b)
{
    const pd_pii_finding *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return (int)x->type - (int)y->type;
}

/* Whether a should be kept instead of b, when they overlap. */
static int better(const pd_pii_finding *a, const pd_pii_finding *b)
{
    if (a->score > b->score + 1e-4f)
        return 1;
    if (b->score > a->score + 1e-4f)
        return 0;
    if (a->end - a->start != b->end - b->start)
        return a->end - a->start > b->end - b->start;
    return a->type < b->type;
}

static size_t resolve(pd_pii_finding *f, size_t n)
{
    if (n > 1)
        qsort(f, n, sizeof *f, by_start);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        while (k > 0 && f[i].start < f[k - 1].end) {
            if (!better(&f[i], &f[k - 1])) {
                keep = 0;
                break;
            }
            k--;
        }
        if (keep)
            f[k++] = f[i];
    }
    return k;
}

pd_result pd_pii_scan(pd_pii_scanner *s, const char *text, size_t len,
                      const pd_pii_finding **findings, size_t *count)
{
    *findings = s->ctx.out;
    *count = 0;
    s->nfind = 0;
    if (len > s->det->params.max_input)
        return PD_ERR_TOO_LARGE;
    if (len == 0)
        return PD_OK;
    s->ctx.text = text;
    s->ctx.len = len;
    s->ctx.params = &s->det->params;
    s->ctx.index = &s->det->index;
    s->ctx.n = 0;
    s->ctx.limit = s->det->params.max_findings;
    s->ctx.covered = s->covered;
    s->ncands = 0;
    s->overflow = 0;
    memset(s->last, 0, pii_pattern_count * sizeof *s->last);
    memset(s->covered, 0, pii_pattern_count * sizeof *s->covered);
    if (len + PAD_LEN > s->padded_cap) {
        s->padded_cap = len + PAD_LEN + len / 2;
        free(s->padded);
        s->padded = pd_xmalloc(s->padded_cap);
    }
    memcpy(s->padded, text, len);
    memset(s->padded + len, '\n', PAD_LEN);
    for (int k = 0; k < 2; k++) {
        if (!s->det->db[k])
            continue;
        hs_error_t err = hs_scan(s->det->db[k], s->padded, (unsigned)(len + PAD_LEN), 0, s->scratch,
                                 on_match, s);
        if (!s->overflow && err != HS_SUCCESS)
            return PD_ERR_INVALID;
        if (s->overflow || validate_batch(s))
            return PD_ERR_TOO_LARGE;
    }
    s->nfind = resolve(s->ctx.out, s->ctx.n);
    *findings = s->ctx.out;
    *count = s->nfind;
    return PD_OK;
}
