/* person.c: the PERSON validator.
 *
 * Names have no shape, so PERSON is found only where context makes a name likely: a trigger
 * phrase ("my name is", "Patient:", "Dr.", "Thanks,") is the pattern, and this validator reads
 * the capitalised words right after it. The score starts from the trigger's strength and rises
 * when the words are in the project's name list (names.c, built from faker's tables): a weak
 * trigger such as "Hi" or "I'm" counts only when its first word is a known first name. */
#include "pii/pii_int.h"

#include <string.h>

#define NAME_MAX_TOKENS 4
#define TOKEN_MAX 32

/* Decodes one UTF-8 code point at t[i]; returns its length (1 for an invalid byte, cp = -1). */
static size_t utf8_at(const char *t, size_t len, size_t i, long *cp)
{
    unsigned char b = (unsigned char)t[i];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
    if (n == 0 || i + n > len) {
        *cp = -1;
        return 1;
    }
    long v = b & (0x3f >> (n - 1));
    for (size_t k = 1; k < n; k++) {
        unsigned char cb = (unsigned char)t[i + k];
        if ((cb & 0xc0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (cb & 0x3f);
    }
    *cp = v;
    return n;
}

/* Latin letters, as far as names in the list go: ASCII, Latin-1, Latin Extended-A/B. */
static int is_letter(long cp)
{
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7);
}

static int is_upper(long cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return 1;
    if (cp >= 0xc0 && cp <= 0xde)
        return cp != 0xd7;
    if (cp >= 0x100 && cp <= 0x137) /* Latin Extended-A: pairs, upper case first... */
        return cp % 2 == 0;
    if (cp >= 0x139 && cp <= 0x148) /* ...but odd in this stretch */
        return cp % 2 == 1;
    if (cp >= 0x14a && cp <= 0x177)
        return cp % 2 == 0;
    return cp == 0x178 || (cp >= 0x179 && cp <= 0x17e && cp % 2 == 1);
}

typedef struct name_tok {
    size_t start, end;
    int initial; /* "F." */
} name_tok;

/* Reads a capitalised word at t[i]: an upper-case letter, then letters, with inner apostrophes
   and hyphens (O'Brien, Jean-Luc). Returns its end, or i when there is none. */
static size_t read_word(const char *t, size_t len, size_t i, name_tok *w)
{
    long cp;
    if (i >= len)
        return i;
    size_t n = utf8_at(t, len, i, &cp), j = i + n, letters = 1;
    if (!is_upper(cp))
        return i;
    while (j < len && j - i < TOKEN_MAX) {
        size_t m = utf8_at(t, len, j, &cp);
        if (is_letter(cp)) {
            j += m, letters++;
            continue;
        }
        long next;
        int joiner = cp == '\'' || cp == '-' || cp == 0x2019;
        if (joiner && j + m < len && (utf8_at(t, len, j + m, &next), is_letter(next))) {
            j += m;
            continue;
        }
        break;
    }
    w->start = i;
    w->initial = 0;
    if (letters == 1 && j < len && t[j] == '.') { /* a middle initial */
        w->initial = 1;
        j++;
    } else if (letters < 2) {
        return i;
    }
    if (j < len && (utf8_at(t, len, j, &cp), is_letter(cp) || pii_isdigit((unsigned char)t[j])))
        return i; /* cut off inside a longer word: not a name */
    w->end = j;
    return j;
}

static const char *const particles[] = {"van", "von", "de", "da", "del", "della", "di",
                                        "dos", "das", "du", "la", "le",  "der",   "den",
                                        "ter", "bin", "al", "y",  "e",   NULL};

static int particle_at(const char *t, size_t len, size_t i, size_t *end)
{
    for (const char *const *p = particles; *p; p++) {
        size_t n = strlen(*p);
        if (i + n < len && memcmp(t + i, *p, n) == 0 && t[i + n] == ' ') {
            *end = i + n + 1;
            return 1;
        }
    }
    return 0;
}

static int is_stopword(const char *t, size_t s, size_t e)
{
    for (const char *const *w = pii_person_stopwords; *w; w++)
        if (strlen(*w) == e - s && memcmp(*w, t + s, e - s) == 0)
            return 1;
    return 0;
}

/* A word in capitals (JOHN) is looked up as John; other words as they are. */
static int in_names(const char *t, size_t s, size_t e, int (*lookup)(const char *, size_t))
{
    char w[TOKEN_MAX + 1];
    size_t n = e - s;
    if (n > TOKEN_MAX)
        return 0;
    memcpy(w, t + s, n);
    int caps = 1;
    for (size_t k = 1; k < n; k++)
        caps &= !(w[k] >= 'a' && w[k] <= 'z');
    if (caps)
        for (size_t k = 1; k < n; k++)
            w[k] = (char)pii_lower((unsigned char)w[k]);
    return lookup(w, n);
}

/* Reads up to NAME_MAX_TOKENS name words from t[i]; returns how many. */
static size_t read_name(const char *t, size_t len, size_t i, name_tok *tok)
{
    size_t n = 0;
    while (n < NAME_MAX_TOKENS && i < len) {
        size_t j = read_word(t, len, i, &tok[n]);
        if (j == i || (n > 0 && is_stopword(t, tok[n].start, tok[n].end)))
            break;
        if (n == 0 && tok[0].initial)
            return 0;
        n++;
        if (j >= len || t[j] != ' ')
            break;
        i = j + 1;
        size_t pe;
        if (particle_at(t, len, i, &pe)) {
            name_tok probe;
            if (read_word(t, len, pe, &probe) == pe)
                break;
            i = pe;
        }
    }
    while (n > 0 && tok[n - 1].initial) /* a name does not end with an initial */
        n--;
    return n;
}

static int skip_byte(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == ':' || ch == '=' || ch == '"' || ch == '\'' ||
           ch == '\\' || ch == ',' || ch == '.' || ch == '-';
}

int pii_v_person(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    (void)s; /* trigger patterns report only where they end */
    const char *t = c->text;
    size_t i = e;
    if (p->arg == 1 || p->arg == 4) { /* the shape ends inside the name's first letter */
        i = e - 1;
        while (i > 0 && ((unsigned char)t[i] & 0xc0) == 0x80)
            i--;
    } else {
        while (i < c->len && i - e < 4 && skip_byte((unsigned char)t[i]))
            i++;
        if (i == e) /* "named" must be followed by a separator, not "namedtuple" */
            return 0;
    }
    name_tok tok[NAME_MAX_TOKENS];
    size_t n = read_name(t, c->len, i, tok);
    if (n == 0 || is_stopword(t, tok[0].start, tok[0].end))
        return 0;
    int first = in_names(t, tok[0].start, tok[0].end, pii_is_first_name);
    int last = in_names(t, tok[n - 1].start, tok[n - 1].end, pii_is_last_name);
    float score = p->base;
    if (p->arg == 4) /* after an honorific, a lone surname is the usual case */
        score += (first || last) ? 0.2f : 0;
    else
        score += first ? 0.3f : 0;
    if (p->arg == 1 && !first)
        return 0; /* "Hi Team", "I'm Happy": weak triggers need a known first name */
    if (n >= 2)
        score += last ? 0.1f : 0.05f;
    return pii_emit(c, PD_PII_PERSON, tok[0].start, tok[n - 1].end, score, p->name);
}
