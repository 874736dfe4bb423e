/* validate.c: validators for the structured entity types.
 *
 * Each validator gets a candidate (pattern, leftmost start, longest end) and decides what in it,
 * if anything, is an entity: it may cut the candidate (an IBAN to its country's length, a phone
 * number out of a longer run of digit groups) and it never reads more than a small bounded
 * window around it, so a 10 MB run of digits costs what its candidates cost, not more. */
#include "pii/pii_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- checksums ---------------------------------------------------------------------------- */
int pii_luhn_ok(const char *d, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)(d[n - 1 - i] - '0');
        if (i & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return n > 0 && sum % 10 == 0;
}

int pii_iban_ok(const char *s, size_t n)
{
    if (n < 15 || n > 34)
        return 0;
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char ch = (unsigned char)s[(k + 4) % n]; /* the first four go last */
        if (pii_isdigit(ch))
            rem = (rem * 10 + (ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            rem = (rem * 100 + (ch - 'A' + 10)) % 97;
        else
            return 0;
    }
    return rem == 1;
}

int pii_nhs_ok(const char *d, size_t n)
{
    if (n != 10 || pii_all_same(d, n))
        return 0;
    unsigned sum = 0;
    for (size_t i = 0; i < 9; i++)
        sum += (unsigned)(d[i] - '0') * (unsigned)(10 - i);
    unsigned check = 11 - sum % 11;
    if (check == 11)
        check = 0;
    return check != 10 && check == (unsigned)(d[9] - '0');
}

static unsigned num(const char *d, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(d[i] - '0');
    return v;
}

/* Numbers the SSA never issued or that were published (Woolworth's wallet card, ads). */
static const char *const ssn_invalid[] = {"078051120", "219099999", "123456789", "457555462", NULL};

int pii_ssn_ok(const char *d)
{
    unsigned area = num(d, 3), group = num(d + 3, 2), serial = num(d + 5, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 || pii_all_same(d, 9))
        return 0;
    for (const char *const *x = ssn_invalid; *x; x++)
        if (memcmp(*x, d, 9) == 0)
            return 0;
    return 1;
}

int pii_itin_ok(const char *d)
{
    unsigned area = num(d, 3), group = num(d + 3, 2);
    if (area < 900)
        return 0;
    return (group >= 50 && group <= 65) || (group >= 70 && group <= 88) ||
           (group >= 90 && group <= 92) || (group >= 94 && group <= 99);
}

double pii_entropy(const char *s, size_t n)
{
    unsigned counts[256] = {0};
    for (size_t i = 0; i < n; i++)
        counts[(unsigned char)s[i]]++;
    double h = 0;
    for (int i = 0; i < 256; i++)
        if (counts[i]) {
            double p = (double)counts[i] / (double)n;
            h -= p * log2(p);
        }
    return h;
}

/* Collects the digits of t[s..e) into out (at most max), returns how many; 0 when more. */
static size_t digits_of(const char *t, size_t s, size_t e, char *out, size_t max)
{
    size_t n = 0;
    for (size_t i = s; i < e; i++)
        if (pii_isdigit((unsigned char)t[i])) {
            if (n == max)
                return 0;
            out[n++] = t[i];
        }
    return n;
}

/* ---- EMAIL -------------------------------------------------------------------------------- */
static const char *const image_tlds[] = {"png", "jpg", "jpeg", "gif",  "svg",  "webp",
                                         "bmp", "ico", "tif",  "tiff", "avif", NULL};

/* A user name inside a URL (scheme://user@host or ...://user:pass@host) is not an email. */
static int inside_url_userinfo(const char *t, size_t ls)
{
    size_t lim = ls > 128 ? ls - 128 : 0;
    for (size_t i = ls; i > lim + 2; i--) {
        unsigned char ch = (unsigned char)t[i - 1];
        if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '"' || ch == '\'' || ch == '<')
            return 0;
        if (ch == '/' && t[i - 2] == '/' && t[i - 3] == ':')
            return 1;
    }
    return 0;
}

static int domain_ok(const char *d, size_t n)
{
    if (n > 253)
        return 0;
    size_t label = 0, last_dot = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || d[i] == '.') {
            if (label == 0 || label > 63 || d[i - label] == '-' || d[i - 1] == '-')
                return 0;
            if (i < n)
                last_dot = i + 1;
            label = 0;
        } else {
            label++;
        }
    }
    size_t tl = n - last_dot;
    for (const char *const *x = image_tlds; *x; x++)
        if (strlen(*x) == tl && strncasecmp(*x, d + last_dot, tl) == 0)
            return 0;
    return 1;
}

static int local_byte(unsigned char ch)
{
    return pii_isalnum(ch) || pii_in_set(ch, "._%+-");
}

int pii_v_email(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    (void)s; /* anchored on the @: read the domain back from the end, the local part from the @ */
    const char *t = c->text;
    size_t lim = e > 256 ? e - 256 : 0, at = e;
    while (at > lim && t[at - 1] != '@')
        at--;
    if (at == lim)
        return 0;
    at--; /* t[at] is the @ */
    size_t ls = at;
    while (ls > 0 && at - ls <= 64 && local_byte((unsigned char)t[ls - 1]))
        ls--;
    if (at - ls > 64)
        return 0; /* a local part that long is a run of something else */
    while (ls < at && (t[ls] == '.' || t[ls] == '%' || t[ls] == '-'))
        ls++;
    if (ls == at || at - ls > 64 || t[at - 1] == '.' || memmem(t + ls, at - ls, "..", 2))
        return 0;
    if (!domain_ok(t + at + 1, e - at - 1) || inside_url_userinfo(t, ls))
        return 0;
    /* git@github.com:org/repo is an scp-style remote, not a mailbox */
    if (e + 1 < c->len && t[e] == ':' && (pii_isalnum((unsigned char)t[e + 1]) || t[e + 1] == '/'))
        return 0;
    return pii_emit(c, PD_PII_EMAIL, ls, e, p->base, p->name);
}

/* ---- PHONE -------------------------------------------------------------------------------- */
#define MAXG 24
typedef struct dgroups {
    size_t off[MAXG], len[MAXG];
    size_t n;
} dgroups;

/* The separator text between groups k and k+1. */
static void gap(const char *t, const dgroups *g, size_t k, const char **p, size_t *n)
{
    *p = t + g->off[k] + g->len[k];
    *n = g->off[k + 1] - (g->off[k] + g->len[k]);
}

static int gap_is(const char *t, const dgroups *g, size_t k, const char *want)
{
    const char *p;
    size_t n;
    gap(t, g, k, &p, &n);
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

/* Whether groups i..j are all separated by one same single character among `allowed`
   (or, when allowed contains 0, by nothing at all: one group). */
static int uniform_sep(const char *t, const dgroups *g, size_t i, size_t j, const char *allowed)
{
    const char *p0;
    size_t n0;
    if (i == j)
        return 1;
    gap(t, g, i, &p0, &n0);
    if (n0 != 1 || !pii_in_set((unsigned char)*p0, allowed))
        return 0;
    for (size_t k = i + 1; k < j; k++)
        if (!gap_is(t, g, k, (char[]){*p0, 0}))
            return 0;
    return 1;
}

typedef struct cc_rule {
    const char *cc;
    unsigned char min, max; /* national significant number length */
} cc_rule;

/* E.164 country codes with their national number lengths (ITU-T E.164 assignments). */
static const cc_rule cc_rules[] = {
    {"1", 10, 10},  {"7", 10, 10},  {"20", 8, 10},  {"27", 9, 9},   {"30", 10, 10}, {"31", 9, 9},
    {"32", 8, 9},   {"33", 9, 9},   {"34", 9, 9},   {"36", 8, 9},   {"39", 6, 11},  {"40", 9, 9},
    {"41", 9, 9},   {"43", 4, 13},  {"44", 9, 10},  {"45", 8, 8},   {"46", 7, 9},   {"47", 8, 8},
    {"48", 9, 9},   {"49", 6, 12},  {"51", 8, 9},   {"52", 10, 10}, {"54", 10, 11}, {"55", 10, 11},
    {"56", 8, 9},   {"57", 8, 10},  {"58", 10, 10}, {"60", 8, 10},  {"61", 9, 9},   {"62", 8, 12},
    {"63", 8, 10},  {"64", 8, 10},  {"65", 8, 8},   {"66", 8, 9},   {"81", 9, 10},  {"82", 8, 10},
    {"84", 9, 10},  {"86", 10, 11}, {"90", 10, 10}, {"91", 10, 10}, {"92", 9, 10},  {"94", 9, 9},
    {"98", 10, 10}, {"212", 9, 9},  {"234", 8, 10}, {"254", 9, 9},  {"351", 9, 9},  {"352", 6, 11},
    {"353", 7, 9},  {"358", 6, 11}, {"380", 9, 9},  {"420", 9, 9},  {"852", 8, 8},  {"880", 10, 10},
    {"966", 9, 9},  {"971", 8, 9},  {"972", 8, 9},  {NULL, 0, 0},
};

static int nanp_ok(const char *d)
{
    if (d[0] < '2' || d[3] < '2')
        return 0;
    if (d[1] == '1' && d[2] == '1')
        return 0; /* N11 service codes are not area codes */
    return !(d[4] == '1' && d[5] == '1');
}

/* International form: digits after + or 00. Returns a score or 0. */
static float intl_score(const char *d, size_t n)
{
    for (const cc_rule *r = cc_rules; r->cc; r++) {
        size_t cl = strlen(r->cc);
        if (n <= cl || memcmp(d, r->cc, cl) != 0)
            continue;
        size_t nsn = n - cl;
        if (nsn < r->min || nsn > r->max || d[cl] == '0')
            return 0;
        if (r->cc[0] == '1' && cl == 1 && !nanp_ok(d + 1))
            return 0;
        return 0.9f;
    }
    return (n >= 8 && n <= 15 && d[0] != '0') ? 0.6f : 0;
}

/* National forms: one table row per country, checked in code for what a table can't say. */
static float national_score(const char *t, const dgroups *g, size_t i, size_t j, const char *d,
                            size_t n, int paren, const char **name)
{
    size_t ng = j - i + 1;
    const size_t *L = g->len + i;
    float best = 0;
#define TRY(cond, score, nm)                                                                       \
    do {                                                                                           \
        if ((cond) && (score) > best) {                                                            \
            best = (score);                                                                        \
            *name = (nm);                                                                          \
        }                                                                                          \
    } while (0)
    /* US/CA: (415) 555-2671, 415-555-2671, 415.555.2671, 1-415-555-2671, 4155552671 */
    if (n == 10 && nanp_ok(d)) {
        TRY(ng == 3 && L[0] == 3 && L[1] == 3 && (paren || uniform_sep(t, g, i, j, " -.")), 0.6f,
            "nanp");
        TRY(ng == 2 && L[0] == 3 && paren, 0.6f, "nanp");
        TRY(ng == 1, 0.3f, "nanp");
    }
    if (n == 11 && d[0] == '1' && nanp_ok(d + 1))
        TRY(ng == 4 && L[0] == 1 && L[1] == 3 && L[2] == 3, 0.6f, "nanp");
    /* UK: 020 7946 0958, 0161 496 0000, 07700 900123, 01632 960 001 */
    if ((n == 10 || n == 11) && d[0] == '0' && strchr("12378", d[1])) {
        int shape = (ng == 2 && L[0] >= 4 && L[0] <= 5) ||
                    (ng == 3 && L[0] >= 3 && L[0] <= 5 && L[1] >= 3 && L[1] <= 4);
        TRY(shape && (paren || uniform_sep(t, g, i, j, " -")), 0.6f, "uk_national");
        TRY(ng == 1, 0.3f, "uk_national");
    }
    /* DE: 030 12345678, 0171 1234567, 030/1234567, (089) 1234567, 030 1234 5678 */
    if (n >= 10 && n <= 12 && d[0] == '0' && d[1] != '0') {
        int shape = (ng == 2 && L[0] >= 3 && L[0] <= 5 && L[1] >= 4) ||
                    (ng == 3 && L[0] >= 3 && L[0] <= 5 && L[1] >= 3 && L[1] <= 4 && L[2] >= 2);
        TRY(shape && (paren || uniform_sep(t, g, i, j, " -/")), 0.6f, "de_national");
    }
    /* FR: 01 23 45 67 89, 06.12.34.56.78 */
    if (n == 10 && d[0] == '0' && d[1] != '0') {
        int pairs = ng == 5;
        for (size_t k = 0; pairs && k < 5; k++)
            pairs = L[k] == 2;
        TRY(pairs && uniform_sep(t, g, i, j, " .-"), 0.6f, "fr_national");
        TRY(ng == 1, 0.3f, "fr_national");
    }
    /* IN mobiles: 98765 43210, 9876543210 */
    if (n == 10 && d[0] >= '6') {
        TRY(ng == 2 && L[0] == 5 && uniform_sep(t, g, i, j, " -"), 0.55f, "in_national");
        TRY(ng == 1, 0.3f, "in_national");
    }
    /* BR: (11) 91234-5678, 11 3456-7890 */
    if ((n == 10 || n == 11) && ng == 3 && L[0] == 2 && (L[1] == 4 || L[1] == 5) && L[2] == 4 &&
        d[0] != '0' && d[1] != '0' && (L[1] == 4 || d[2] == '9') &&
        (gap_is(t, g, i + 1, "-") || gap_is(t, g, i + 1, " ")))
        TRY(1, paren ? 0.6f : 0.55f, "br_national");
#undef TRY
    return best;
}

/* The digits of an international number after "+" or "00", without a "(0)" trunk group. */
static size_t intl_digits(const char *t, size_t len, const dgroups *g, size_t i, size_t j,
                          size_t skip, char *out)
{
    size_t m = 0, pos = 0;
    for (size_t k = i; k <= j; k++) {
        size_t o = g->off[k];
        int trunk = k > i && g->len[k] == 1 && t[o] == '0' && t[o - 1] == '(' && o + 1 < len &&
                    t[o + 1] == ')';
        for (size_t q = 0; q < g->len[k]; q++, pos++)
            if (pos >= skip && !trunk)
                out[m++] = t[o + q];
    }
    return m;
}

/* Scores the phone number made of groups i..j, or 0; its span goes to ps, pe. */
static float phone_sub(const char *t, size_t len, size_t s, const dgroups *g, size_t i, size_t j,
                       size_t *ps, size_t *pe, const char **name)
{
    char d[24];
    size_t n = 0;
    for (size_t k = i; k <= j; k++) {
        if (n + g->len[k] > sizeof d)
            return 0;
        memcpy(d + n, t + g->off[k], g->len[k]);
        n += g->len[k];
    }
    for (size_t k = i; k < j; k++) { /* every gap: 1-3 bytes of separators, parens balanced */
        const char *p;
        size_t gl;
        gap(t, g, k, &p, &gl);
        if (gl > 3 || (gl == 3 && p[1] != '-' && p[0] != ')'))
            return 0;
    }
    size_t start = g->off[i], end = g->off[j] + g->len[j];
    int plus = start > s && t[start - 1] == '+';
    int paren = start > s && t[start - 1] == '(' && j > i && t[start + g->len[i]] == ')';
    if (plus || paren)
        start--;
    if (start > 0 && (pii_isalnum((unsigned char)t[start - 1]) || t[start - 1] == '+'))
        return 0;
    *ps = start;
    *pe = end;
    if (plus || (n > 10 && d[0] == '0' && d[1] == '0')) {
        char e[24];
        size_t m = intl_digits(t, len, g, i, j, plus ? 0 : 2, e);
        *name = "e164";
        return intl_score(e, m);
    }
    return national_score(t, g, i, j, d, n, paren, name);
}

/* A phone number may be cut out of a longer run of groups only where a space separates them:
   "555-234-5678-01" is a part number, "Tel 12 555 234 5678" a room and a number. */
static int cut_ok(const char *t, const dgroups *g, size_t k)
{
    const char *p;
    size_t n;
    gap(t, g, k, &p, &n);
    return memchr(p, ' ', n) != NULL && !memchr(p, '-', n) && !memchr(p, '.', n);
}

/* The phone numbers among digit groups: from each group that may start one, the longest
   span of at most PHONE_MAX_GROUPS groups that is a valid number. */
#define PHONE_MAX_GROUPS 7
static int phone_groups(pii_ctx *c, const pii_pattern *p, const dgroups *gp)
{
    const dgroups g = *gp;
    size_t s = g.off[0] > 0 ? g.off[0] - 1 : 0; /* room for a leading + or ( */
    for (size_t i = 0; i < g.n; i++) {
        if (i > 0 && !cut_ok(c->text, &g, i - 1))
            continue;
        size_t top = i + PHONE_MAX_GROUPS < g.n ? i + PHONE_MAX_GROUPS : g.n;
        for (size_t j = top; j-- > i;) {
            if (j + 1 < g.n && !cut_ok(c->text, &g, j))
                continue;
            size_t ps, pe;
            const char *name = p->name;
            float score = phone_sub(c->text, c->len, s, &g, i, j, &ps, &pe, &name);
            if (score <= 0)
                continue;
            score += pii_context(c, PD_PII_PHONE, ps, pe, NULL);
            if (pii_emit(c, PD_PII_PHONE, ps, pe, score, name))
                return 1;
            i = j;
            break;
        }
    }
    return 0;
}

/* ---- CREDIT_CARD -------------------------------------------------------------------------- */
static const char *card_issuer(const char *d, size_t n)
{
    for (const pii_issuer *is = pii_issuers; is->name; is++) {
        if (n < is->digits || !(is->lengths & (1u << n)))
            continue;
        unsigned pre = num(d, is->digits);
        if (pre >= is->lo && pre <= is->hi)
            return is->name;
    }
    return NULL;
}

static int card_emit(pii_ctx *c, const pii_pattern *p, size_t s, size_t e, const char *d, size_t n)
{
    if (n < 12 || n > 19 || pii_all_same(d, n) || !card_issuer(d, n) || !pii_luhn_ok(d, n))
        return -1;
    float score = p->base + pii_context(c, PD_PII_CREDIT_CARD, s, e, NULL);
    return pii_emit(c, PD_PII_CREDIT_CARD, s, e, score, p->name);
}

/* The span has one of the card shapes of pii_num_shapes (13-19 digits, or grouped). */
int pii_v_card(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    char d[24];
    size_t n = digits_of(c->text, s, e, d, sizeof d);
    return card_emit(c, p, s, e, d, n) > 0;
}

/* ---- IBAN --------------------------------------------------------------------------------- */
int pii_v_iban(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    const pii_iban_country *cc = pii_iban_countries;
    while (cc->len && memcmp(cc->cc, t + s, 2) != 0)
        cc++;
    if (!cc->len)
        return 0;
    char compact[40];
    size_t n = 0, i = s, spaced = 0;
    for (; i < e && n < cc->len; i++) {
        if (t[i] == ' ') {
            if (n % 4 != 0 || (i + 1 < e && t[i + 1] == ' '))
                return 0;
            spaced = 1;
            continue;
        }
        compact[n++] = t[i];
    }
    if (n < cc->len)
        return 0;
    /* what follows must not continue the IBAN's last group */
    if (i < e && t[i] != ' ')
        return 0;
    if (spaced) /* grouped by four throughout */
        for (size_t k = s, m = 0; k < i; k++) {
            if (t[k] == ' ')
                continue;
            if (m > 0 && m % 4 == 0 && t[k - 1] != ' ')
                return 0;
            m++;
        }
    if (!pii_iban_ok(compact, n))
        return 0;
    return pii_emit(c, PD_PII_IBAN, s, i, p->base, p->name);
}

/* ---- US_SSN, US_ITIN ---------------------------------------------------------------------- */
/* The nine digits of a "ddd-dd-dddd", "ddd dd dddd" or "ddddddddd" candidate, separators equal. */
static int nine_digits(const char *t, size_t s, size_t e, char *d)
{
    if (e - s == 11) {
        if (t[s + 3] != t[s + 6])
            return 0;
        memcpy(d, t + s, 3);
        memcpy(d + 3, t + s + 4, 2);
        memcpy(d + 5, t + s + 7, 4);
        return 1;
    }
    if (e - s != 9)
        return 0;
    memcpy(d, t + s, 9);
    return 1;
}

static int ssn_like(pii_ctx *c, const pii_pattern *p, size_t s, size_t e, int (*ok)(const char *))
{
    char d[9];
    if (!nine_digits(c->text, s, e, d) || !ok(d))
        return 0;
    float score = p->base;
    if (p->arg == 0 && c->text[s + 3] == ' ')
        score -= 0.25f; /* spaced digits are more often something else */
    score += pii_context(c, pii_type_of(p), s, e, NULL);
    return pii_emit(c, pii_type_of(p), s, e, score, p->name);
}

int pii_v_ssn(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    return ssn_like(c, p, s, e, pii_ssn_ok);
}

int pii_v_itin(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    return ssn_like(c, p, s, e, pii_itin_ok);
}

/* ---- UK_NINO, UK_NHS ---------------------------------------------------------------------- */
static const char *const nino_bad_prefix[] = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ", NULL};

/* Length of the NINO at t[s] ("AB123456C" or "AB 12 34 56 C"), 0 when there is none. */
static size_t nino_len(const char *t, size_t s, size_t e)
{
    static const char compact[] = "LL999999S", spaced[] = "LL 99 99 99 S";
    const char *shape = (s + 2 < e && t[s + 2] == ' ') ? spaced : compact;
    size_t n = strlen(shape);
    if (e - s < n || (s + n < e && pii_isalnum((unsigned char)t[s + n])))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[s + i];
        int ok = shape[i] == 'L'   ? (ch >= 'A' && ch <= 'Z')
                 : shape[i] == '9' ? pii_isdigit(ch)
                 : shape[i] == 'S' ? (ch >= 'A' && ch <= 'D')
                                   : ch == ' ';
        if (!ok)
            return 0;
    }
    if (strchr("DFIQUV", t[s]) || strchr("DFIOQUV", t[s + 1]))
        return 0;
    for (const char *const *x = nino_bad_prefix; *x; x++)
        if (memcmp(*x, t + s, 2) == 0)
            return 0;
    return n;
}

/* Two capitals and digits: an IBAN or a UK National Insurance number. */
int pii_v_alnum(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    if (pii_v_iban(c, p, s, e))
        return 1;
    size_t n = nino_len(c->text, s, e);
    if (n == 0)
        return 0;
    float score = 0.85f + pii_context(c, PD_PII_UK_NINO, s, s + n, NULL);
    return pii_emit(c, PD_PII_UK_NINO, s, s + n, score, "nino_rules");
}

int pii_v_nhs(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    char d[10];
    float score;
    if (e - s == 10) {
        score = 0.3f;
    } else if (e - s == 12 && t[s + 3] == t[s + 7]) {
        score = t[s + 3] == ' ' ? 0.4f : 0.35f;
    } else {
        return 0;
    }
    if (digits_of(t, s, e, d, sizeof d) != 10 || !pii_nhs_ok(d, 10))
        return 0;
    score += pii_context(c, PD_PII_UK_NHS, s, e, NULL);
    return pii_emit(c, PD_PII_UK_NHS, s, e, score, p->name);
}

/* ---- IP_ADDRESS, MAC_ADDRESS -------------------------------------------------------------- */
int pii_v_ipv4(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    size_t i = s;
    for (int part = 0; part < 4; part++) {
        size_t b = i;
        unsigned v = 0;
        while (i < e && pii_isdigit((unsigned char)t[i]))
            v = v * 10 + (unsigned)(t[i++] - '0');
        if (i == b || v > 255 || (i - b > 1 && t[b] == '0'))
            return 0;
        i++; /* the dot */
    }
    /* part of a longer dotted number (1.2.3.4.5, an OID) or a version pin (pkg==1.2.3.4) */
    if (s >= 2 && t[s - 1] == '.' && pii_isdigit((unsigned char)t[s - 2]))
        return 0;
    if (e + 1 < c->len && (t[e] == '.' || t[e] == '-') && pii_isalnum((unsigned char)t[e + 1]))
        return 0;
    if (s >= 1 && (pii_in_set((unsigned char)t[s - 1], "@^~") ||
                   (t[s - 1] == '=' && s >= 2 && pii_in_set((unsigned char)t[s - 2], "=<>"))))
        return 0;
    float score = p->base + pii_context(c, PD_PII_IP_ADDRESS, s, e, NULL);
    return pii_emit(c, PD_PII_IP_ADDRESS, s, e, score, p->name);
}

static int ishex(unsigned char ch)
{
    return pii_isdigit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}

int pii_ipv6_parse(const char *s, size_t n)
{
    size_t i = 0, groups = 0;
    int compressed = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        compressed = 1;
        i = 2;
    } else if (n >= 1 && s[0] == ':') {
        return 0;
    }
    while (i < n) {
        size_t b = i;
        while (i < n && i - b < 5 && ishex((unsigned char)s[i]))
            i++;
        size_t gl = i - b;
        if (i < n && s[i] == '.') { /* embedded IPv4 tail: counts as two groups */
            size_t dots = 0, k = b, v = 0, dl = 0;
            for (; k < n; k++) {
                if (s[k] == '.') {
                    if (dl == 0 || v > 255)
                        return 0;
                    dots++, v = 0, dl = 0;
                } else if (pii_isdigit((unsigned char)s[k]) && dl < 3) {
                    v = v * 10 + (size_t)(s[k] - '0'), dl++;
                } else {
                    return 0;
                }
            }
            if (dots != 3 || dl == 0 || v > 255)
                return 0;
            groups += 2;
            i = n;
            break;
        }
        if (gl == 0 || gl > 4)
            return 0;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (compressed)
                return 0;
            compressed = 1;
            i++;
        } else if (i == n) {
            return 0; /* a single trailing colon */
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

static int v6_byte(unsigned char ch)
{
    return ishex(ch) || ch == ':' || ch == '.';
}

/* Anchored on two colons: the address is the run of hex digits, colons and dots around them. */
int pii_v_ipv6(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    size_t *covered = &c->covered[pii_pattern_index(p)];
    if (e <= *covered)
        return 0; /* a later pair of colons of a run already read */
    s = e;
    while (s > 0 && e - s < 48 && v6_byte((unsigned char)t[s - 1]))
        s--;
    while (e < c->len && e - s < 64 && v6_byte((unsigned char)t[e]))
        e++;
    *covered = e;
    if (s > 0 && (pii_isword((unsigned char)t[s - 1]) || t[s - 1] == ':' || t[s - 1] == '.'))
        return 0;
    for (size_t k = e; k > s + 2; k--) {
        unsigned char next = k < c->len ? (unsigned char)t[k] : ' ';
        if (pii_isword(next) || next == ':' ||
            (next == '.' && k + 1 < c->len && pii_isdigit((unsigned char)t[k + 1])))
            continue;
        if (!pii_ipv6_parse(t + s, k - s))
            continue;
        size_t hex = 0;
        for (size_t i = s; i < k; i++)
            hex += ishex((unsigned char)t[i]);
        /* "::", "a::b" and the like are code (C++ scopes), not addresses; "::1" is localhost */
        if (memmem(t + s, k - s, "::", 2) && hex < 3 && !(k - s == 3 && t[s + 2] == '1'))
            return 0;
        float score = p->base + pii_context(c, PD_PII_IP_ADDRESS, s, k, NULL);
        return pii_emit(c, PD_PII_IP_ADDRESS, s, k, score, p->name);
    }
    return 0;
}

int pii_v_mac(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    float score = p->base;
    size_t width = p->arg == 0 ? 17 : 14; /* fixed-length shapes */
    if (e < width)
        return 0;
    s = e - width;
    if (p->arg == 0) {
        char sep = t[s + 2];
        for (size_t i = s + 2; i < e; i += 3)
            if (t[i] != sep)
                return 0;
        if (e + 1 < c->len && t[e] == sep && ishex((unsigned char)t[e + 1]))
            return 0;
        if (s >= 2 && t[s - 1] == sep && ishex((unsigned char)t[s - 2]))
            return 0;
    } else {
        int letters = 0;
        for (size_t i = s; i < e; i++)
            letters |= pii_isalpha((unsigned char)t[i]);
        if (!letters)
            score = 0.55f; /* 1234.5678.9012 is more often a number than a Cisco MAC */
        if (e + 1 < c->len && t[e] == '.' && pii_isalnum((unsigned char)t[e + 1]))
            return 0;
    }
    score += pii_context(c, PD_PII_MAC_ADDRESS, s, e, NULL);
    return pii_emit(c, PD_PII_MAC_ADDRESS, s, e, score, p->name);
}

/* ---- DATE_OF_BIRTH ------------------------------------------------------------------------ */
static int days_in(unsigned m, unsigned y)
{
    static const unsigned char d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

static int date_ok(unsigned d, unsigned m, unsigned y, size_t ylen)
{
    if (ylen == 4 && (y < 1900 || y > 2030))
        return 0;
    if (ylen == 2)
        y += y < 30 ? 2000 : 1900;
    return m >= 1 && m <= 12 && d >= 1 && (int)d <= days_in(m, y);
}

/* Reads digits at t[*i], at most max of them. */
static unsigned read_num(const char *t, size_t e, size_t *i, size_t max, size_t *nd)
{
    unsigned v = 0;
    *nd = 0;
    while (*i < e && *nd < max && pii_isdigit((unsigned char)t[*i]))
        v = v * 10 + (unsigned)(t[(*i)++] - '0'), (*nd)++;
    return v;
}

static int month_at(const char *t, size_t e, size_t *i)
{
    size_t b = *i;
    char w[16];
    size_t n = 0;
    while (*i < e && (pii_isalpha((unsigned char)t[*i]) || (unsigned char)t[*i] >= 0x80)) {
        if (n < sizeof w - 1)
            w[n++] = (char)pii_lower((unsigned char)t[*i]);
        (*i)++;
    }
    w[n] = '\0';
    for (const pii_month *m = pii_months; m->name; m++)
        if (strcmp(m->name, w) == 0)
            return m->month;
    *i = b;
    return 0;
}

static void skip_spaces(const char *t, size_t e, size_t *i)
{
    while (*i < e && t[*i] == ' ')
        (*i)++;
}

/* Skips one of words (each followed by a space) at t[*i], if there. */
static void skip_word(const char *t, size_t e, size_t *i, const char *const *words)
{
    for (; *words; words++) {
        size_t n = strlen(*words);
        if (*i + n <= e && strncasecmp(t + *i, *words, n) == 0) {
            *i += n;
            return;
        }
    }
}

static const char *const ordinals[] = {"st", "nd", "rd", "th", "er", ".", "\xc2\xba", NULL};
static const char *const joiners[] = {"of ", "de ", NULL};

/* Parses a date at t[s..e) in one of four forms; returns where it ends, 0 when it is none. */
static size_t parse_date(const char *t, size_t s, size_t e, int form)
{
    size_t i = s, n1, n2, n3;
    unsigned a, b, y, m;
    char sep;
    switch (form) {
    case 0: /* d/m/y or m/d/y, one separator */
        a = read_num(t, e, &i, 2, &n1);
        sep = t[i++];
        b = read_num(t, e, &i, 2, &n2);
        if (i >= e || t[i++] != sep)
            return 0;
        y = read_num(t, e, &i, 4, &n3);
        return (n3 == 2 || n3 == 4) && (date_ok(a, b, y, n3) || date_ok(b, a, y, n3)) ? i : 0;
    case 1: /* y-m-d */
        y = read_num(t, e, &i, 4, &n3);
        sep = t[i++];
        m = read_num(t, e, &i, 2, &n1);
        if (i >= e || t[i++] != sep)
            return 0;
        a = read_num(t, e, &i, 2, &n2);
        return date_ok(a, m, y, 4) ? i : 0;
    case 2: /* 5 March 1980, 5th of March, 1980, 5. März 1980, 15 de março de 1985 */
        a = read_num(t, e, &i, 2, &n1);
        skip_word(t, e, &i, ordinals);
        skip_spaces(t, e, &i);
        skip_word(t, e, &i, joiners);
        m = (unsigned)month_at(t, e, &i);
        skip_word(t, e, &i, ordinals + 5); /* "Jan." */
        if (i < e && t[i] == ',')
            i++;
        skip_spaces(t, e, &i);
        skip_word(t, e, &i, joiners + 1);
        y = read_num(t, e, &i, 4, &n3);
        return n1 && m && n3 == 4 && date_ok(a, m, y, 4) ? i : 0;
    default: /* March 5, 1980 */
        m = (unsigned)month_at(t, e, &i);
        skip_word(t, e, &i, ordinals + 5);
        skip_spaces(t, e, &i);
        a = read_num(t, e, &i, 2, &n1);
        skip_word(t, e, &i, ordinals);
        if (i < e && t[i] == ',')
            i++;
        skip_spaces(t, e, &i);
        y = read_num(t, e, &i, 4, &n3);
        return m && n1 && n3 == 4 && date_ok(a, m, y, 4) ? i : 0;
    }
}

static int date_emit(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    float score = p->base + pii_context(c, PD_PII_DATE_OF_BIRTH, s, e, NULL);
    return pii_emit(c, PD_PII_DATE_OF_BIRTH, s, e, score, p->name);
}

/* Forms 0 and 1 get the exact span from the number shape. Forms 2 and 3 are anchored on the
   year at the end: their start is the nearest word (form 3) or number (form 2) within 40
   bytes back from which the date parses to exactly that end. */
int pii_v_date(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    if (p->arg < 2)
        return parse_date(t, s, e, p->arg) == e ? date_emit(c, p, s, e) : 0;
    size_t lo = e > 40 ? e - 40 : 0;
    for (size_t k = e > 8 ? e - 8 : 0; k-- > lo;) {
        unsigned char ch = (unsigned char)t[k], prev = k ? (unsigned char)t[k - 1] : ' ';
        int starts = p->arg == 2 ? pii_isdigit(ch) && !pii_isalnum(prev)
                                 : pii_isalpha(ch) && !pii_isalnum(prev) && prev < 0x80;
        if (starts && parse_date(t, k, e, p->arg) == e)
            return date_emit(c, p, k, e);
    }
    return 0;
}

/* ---- numbers: a run of digit groups, sorted into entities by pii_num_shapes --------------- */
/* A shape may be cut out of a longer run only where a space or a parenthesis separates it from
   the rest, or a slash when slashes are not the shape's own separator (10.0.0.0/8). */
static int clean_cut(const char *t, const dgroups *g, size_t k, const char *gaps)
{
    const char *p;
    size_t n;
    gap(t, g, k, &p, &n);
    if (memchr(p, ' ', n) || memchr(p, '(', n) || memchr(p, ')', n))
        return 1;
    return n == 1 && p[0] == '/' && !strchr(gaps, '/');
}

static int shape_fits(const char *t, const dgroups *g, size_t i, const pii_num_shape *sh)
{
    for (size_t k = 0; k < sh->ng; k++)
        if (g->len[i + k] < sh->min[k] || g->len[i + k] > sh->max[k])
            return 0;
    size_t j = i + sh->ng - 1;
    if (sh->ng > 1 && !uniform_sep(t, g, i, j, sh->gaps))
        return 0;
    return (i == 0 || clean_cut(t, g, i - 1, sh->gaps)) &&
           (j + 1 == g->n || clean_cut(t, g, j, sh->gaps));
}

static int run_byte(unsigned char ch)
{
    return pii_isdigit(ch) || pii_in_set(ch, " ().-/");
}

/* The entities of the digit groups g (a whole run, or a window of a long one). */
static int number_groups(pii_ctx *c, const pii_pattern *p, const dgroups *g)
{
    if (phone_groups(c, p, g))
        return 1;
    for (const pii_num_shape *sh = pii_num_shapes; sh->ng; sh++)
        for (size_t i = 0; i + sh->ng <= g->n; i++) {
            if (!shape_fits(c->text, g, i, sh))
                continue;
            size_t j = i + sh->ng - 1;
            if (sh->v.validate(c, &sh->v, g->off[i], g->off[j] + g->len[j]))
                return 1;
        }
    return 0;
}

/* A digit run. Vectorscan reports a long run as many overlapping matches: the first one
   validates the whole run (to its real end) and marks it covered, the others are skipped. A run
   of more than MAXG groups is read in windows of MAXG groups overlapping by half, so an entity
   (at most 6 groups) always lies whole inside one window. */
int pii_v_number(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    size_t *covered = &c->covered[pii_pattern_index(p)];
    if (e <= *covered)
        return 0;
    if (s < *covered)
        s = *covered;
    while (e < c->len && run_byte((unsigned char)t[e]))
        e++;
    *covered = e;
    while (e > s && !pii_isdigit((unsigned char)t[e - 1]))
        e--;
    dgroups g;
    g.n = 0;
    for (size_t i = s; i < e;) {
        if (!pii_isdigit((unsigned char)t[i])) {
            i++;
            continue;
        }
        if (g.n == MAXG) { /* window full: read it, keep its second half */
            if (number_groups(c, p, &g))
                return 1;
            memmove(g.off, g.off + MAXG / 2, MAXG / 2 * sizeof *g.off);
            memmove(g.len, g.len + MAXG / 2, MAXG / 2 * sizeof *g.len);
            g.n = MAXG / 2;
        }
        g.off[g.n] = i;
        while (i < e && pii_isdigit((unsigned char)t[i]))
            i++;
        g.len[g.n] = i - g.off[g.n];
        g.n++;
    }
    return g.n ? number_groups(c, p, &g) : 0;
}
