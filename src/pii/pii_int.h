/* pii_int.h: what the files of the pii module share; not part of the public API.
 *
 * The module is data-driven: tables.c lists every pattern (regex shape, type, flags, validator,
 * base score) and every table the validators read (context words, card issuers, IBAN lengths,
 * month names, stop words); scan.c runs the database and calls the validators; validate.c and
 * person.c hold the validators; names.c is the generated name list. The benchmark's PCRE2
 * baseline also reads the pattern table, so both engines run the very same shapes. */
#ifndef PD_PII_INT_H
#define PD_PII_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "pii/pii.h"

/* What a validator sees: the whole text, the parameters, and where to put findings. */
typedef struct pii_ctx pii_ctx;

typedef struct pii_pattern pii_pattern;

/* Looks at the candidate text[start..end) (start is 0 for patterns without PII_SOM: then only
   end is meaningful and the validator finds the start itself, within a bounded window) and
   emits zero or more findings through pii_emit. Reads only a bounded window around the
   candidate. Returns non-zero only when pii_emit failed (cap reached). */
typedef int (*pii_validate_fn)(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);

enum {
    PII_SOM = 1,      /* report the leftmost start (Vectorscan SOM); else only the end is known */
    PII_CASELESS = 2, /* the whole pattern is case-insensitive */
    PII_NUMERIC = 4,  /* a class-led shape: compiled into the numeric database (scan.c) */
};

struct pii_pattern {
    unsigned types; /* bit per pd_pii_type this pattern can produce */
    const char *regex;
    unsigned flags;
    pii_validate_fn validate;
    float base;       /* score before context, for validators that do not compute their own */
    const char *name; /* validator name reported in findings */
    int arg;          /* validator-specific variant */
};

extern const pii_pattern pii_patterns[];
extern const size_t pii_pattern_count;

static inline pd_pii_type pii_type_of(const pii_pattern *p)
{
    return (pd_pii_type)__builtin_ctz(p->types);
}

/* A digit-run entity by the shape of its digit groups (see tables.c). */
typedef struct pii_num_shape {
    unsigned char ng;             /* number of groups; 0 ends the table */
    unsigned char min[5], max[5]; /* length range of each group */
    const char *gaps;             /* separators allowed between groups, one kind throughout */
    pii_pattern v;                /* validator (and its type, score, name) for a matching span */
} pii_num_shape;
extern const pii_num_shape pii_num_shapes[];

/* Context words of one type: the nearest word (before or after the candidate) decides. */
typedef struct pii_context_rule {
    const char *const *pos; /* NULL-terminated, lower case; matched case-insensitively for ASCII */
    const char *const *neg;
    float pos_boost, neg_penalty;
} pii_context_rule;
extern const pii_context_rule pii_context_rules[PD_PII_TYPE_COUNT];

/* Built once per detector from pii_context_rules: for each type its context words with their
   lengths, grouped by first byte, so a position in the context window is compared only with
   the words that start with its byte. */
#define PII_CTX_MAX_WORDS 128
typedef struct pii_ctx_word {
    const char *w;
    uint8_t len, positive;
} pii_ctx_word;
typedef struct pii_ctx_index {
    pii_ctx_word words[PD_PII_TYPE_COUNT][PII_CTX_MAX_WORDS];
    uint8_t start[PD_PII_TYPE_COUNT][256], count[PD_PII_TYPE_COUNT][256];
} pii_ctx_index;
void pii_ctx_index_build(pii_ctx_index *x);

struct pii_ctx {
    const char *text;
    size_t len;
    const pd_pii_params *params;
    const pii_ctx_index *index;
    pd_pii_finding *out; /* findings array owned by the scanner */
    size_t n, cap, limit;
    size_t *covered; /* per pattern: text before this offset was already validated as a run */
};

/* Index of a pattern of pii_patterns (for covered[]). */
static inline size_t pii_pattern_index(const pii_pattern *p)
{
    return (size_t)(p - pii_patterns);
}

/* Adds a finding if score reaches the type's threshold (score is clamped to 0..1). A finding
   of the same type and start as the previous one replaces it when longer (a shape reports one
   entity at several ends). Returns non-zero when the finding cap is reached. */
int pii_emit(pii_ctx *c, pd_pii_type type, size_t start, size_t end, float score,
             const char *validator);

/* The score change the context words around [start,end) give type t: +pos_boost when the
   nearest context word is positive, -neg_penalty when negative, 0 when none is near.
   *pos_found (may be NULL) tells whether a positive word was the nearest. */
float pii_context(const pii_ctx *c, pd_pii_type t, size_t start, size_t end, int *pos_found);

/* ---- validators (validate.c, person.c) ---------------------------------------------------- */
int pii_v_number(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_alnum(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_email(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_card(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_iban(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_ssn(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_itin(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_nhs(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_ipv4(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_ipv6(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_mac(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_token(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_jwt(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_pem(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_assign(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_urlcred(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_date(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);
int pii_v_person(pii_ctx *c, const pii_pattern *p, size_t start, size_t end);

/* ---- checksums and small parsers, exposed for the unit tests ------------------------------ */
int pii_luhn_ok(const char *digits, size_t n);
int pii_iban_ok(const char *iban, size_t n); /* compact form, no spaces */
int pii_nhs_ok(const char *digits, size_t n);
int pii_ssn_ok(const char *digits9);
int pii_itin_ok(const char *digits9);
/* Parses an IPv6 address in s[0..n) exactly; returns 1 when valid. */
int pii_ipv6_parse(const char *s, size_t n);
/* Shannon entropy in bits per byte. */
double pii_entropy(const char *s, size_t n);

/* ---- tables (tables.c) --------------------------------------------------------------------- */
typedef struct pii_issuer {
    const char *name;
    unsigned lo, hi; /* prefix range, compared on the first `digits` digits */
    unsigned digits;
    unsigned lengths; /* bit n set: n digits allowed */
} pii_issuer;
extern const pii_issuer pii_issuers[];

typedef struct pii_iban_country {
    char cc[3];
    unsigned char len;
} pii_iban_country;
extern const pii_iban_country pii_iban_countries[];

typedef struct pii_month {
    const char *name; /* lower case, UTF-8 */
    unsigned char month;
} pii_month;
extern const pii_month pii_months[];

extern const char *const pii_person_stopwords[];   /* capitalised words that are not names */
extern const char *const pii_secret_key_words[];   /* key-name tokens that mean "secret value" */
extern const char *const pii_password_key_words[]; /* key-name tokens that mean "password" */
extern const char *const pii_key_modifiers[];      /* tokens that make a key not a secret */
extern const char *const pii_placeholder_values[]; /* values that are placeholders, not secrets */

/* ---- names (names.c, generated) ------------------------------------------------------------ */
/* 1 when name[0..n) (capitalised, UTF-8) is in the project's first-name / surname list. */
int pii_is_first_name(const char *name, size_t n);
int pii_is_last_name(const char *name, size_t n);

/* ---- byte helpers -------------------------------------------------------------------------- */
static inline int pii_isdigit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}
static inline int pii_isalpha(unsigned char ch)
{
    return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
}
static inline int pii_isalnum(unsigned char ch)
{
    return pii_isdigit(ch) || pii_isalpha(ch);
}
static inline int pii_isword(unsigned char ch)
{
    return pii_isalnum(ch) || ch == '_';
}
static inline unsigned char pii_lower(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch | 0x20) : ch;
}
/* strchr that never matches the NUL byte (texts may contain NULs) */
static inline int pii_in_set(unsigned char ch, const char *set)
{
    return ch != 0 && strchr(set, ch) != NULL;
}
static inline int pii_all_same(const char *d, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (d[i] != d[0])
            return 0;
    return 1;
}

#endif
