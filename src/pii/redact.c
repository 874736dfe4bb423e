/* redact.c: the per-request vault, redaction into placeholders, and (streaming) restore.
 *
 * Placeholder grammar: "<" TYPE "_" N ">", TYPE one of pd_pii_type_name(), N in 1..999999
 * written without leading zeros. One function, classify(), decides for a byte string starting
 * with '<' whether it is a complete placeholder, could still become one, or cannot; redaction,
 * whole-text restore and streaming restore all go through it, which is what makes streaming
 * restore equal whole-text restore for any split.
 *
 * Why restore(redact(x)) == x for every x: redaction replaces every finding and every
 * placeholder-looking substring of x that lies outside the findings (each becomes a vault entry
 * whose value is that literal text), so the redacted text contains no placeholder except those
 * the vault maps. A placeholder cannot contain '<' or '>' inside, so no placeholder can form
 * across the boundary between copied text and an inserted placeholder.
 *
 * The vault maps (type, bytes) -> number with an open-addressing hash, and (type, number) ->
 * value with a per-type array, so both directions are O(1). */
#include "pii/pii_int.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_ENTRIES 65536
#define DEFAULT_BYTES (16u << 20)
#define MAX_NUMBER 999999
#define NAME_MAX_LEN 13 /* DATE_OF_BIRTH */

typedef struct entry {
    size_t off, len; /* value bytes in vault->values */
    uint32_t hash;
    uint32_t num; /* its placeholder number within its type */
    uint8_t type;
} entry;

struct pd_pii_vault {
    pd_buf values;
    entry *entries;
    size_t n, cap, max_entries;
    uint32_t *slots; /* 1 + entry index, 0 empty; size is a power of two */
    size_t nslots;
    uint32_t *by_type[PD_PII_TYPE_COUNT]; /* number-1 -> entry index */
    size_t count[PD_PII_TYPE_COUNT], type_cap[PD_PII_TYPE_COUNT];
};

pd_pii_vault *pd_pii_vault_new(size_t max_entries, size_t max_bytes)
{
    pd_pii_vault *v = pd_xcalloc(1, sizeof *v);
    v->max_entries = max_entries ? max_entries : DEFAULT_ENTRIES;
    pd_buf_init(&v->values, max_bytes ? max_bytes : DEFAULT_BYTES);
    return v;
}

void pd_pii_vault_free(pd_pii_vault *v)
{
    if (!v)
        return;
    pd_buf_free(&v->values);
    free(v->entries);
    free(v->slots);
    for (int t = 0; t < PD_PII_TYPE_COUNT; t++)
        free(v->by_type[t]);
    free(v);
}

size_t pd_pii_vault_count(const pd_pii_vault *v)
{
    return v->n;
}

static uint32_t hash_value(pd_pii_type type, const char *p, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)type;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static void rehash(pd_pii_vault *v)
{
    size_t ns = v->nslots ? v->nslots * 2 : 64;
    uint32_t *slots = pd_xcalloc(ns, sizeof *slots);
    for (size_t i = 0; i < v->n; i++) {
        size_t k = v->entries[i].hash & (ns - 1);
        while (slots[k])
            k = (k + 1) & (ns - 1);
        slots[k] = (uint32_t)i + 1;
    }
    free(v->slots);
    v->slots = slots;
    v->nslots = ns;
}

/* The number of (type, value), adding it when new. 0 when a cap is reached. */
static size_t vault_number(pd_pii_vault *v, pd_pii_type type, const char *p, size_t n)
{
    uint32_t h = hash_value(type, p, n);
    if (v->nslots) {
        for (size_t k = h & (v->nslots - 1); v->slots[k]; k = (k + 1) & (v->nslots - 1)) {
            const entry *e = &v->entries[v->slots[k] - 1];
            if (e->hash == h && e->type == type && e->len == n &&
                memcmp(v->values.data + e->off, p, n) == 0)
                return e->num;
        }
    }
    if (v->n >= v->max_entries || v->count[type] >= MAX_NUMBER)
        return 0;
    size_t off = v->values.len;
    if (pd_buf_append(&v->values, p, n))
        return 0;
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->entries = pd_xrealloc(v->entries, v->cap * sizeof *v->entries);
    }
    if (v->count[type] == v->type_cap[type]) {
        v->type_cap[type] = v->type_cap[type] ? v->type_cap[type] * 2 : 8;
        v->by_type[type] = pd_xrealloc(v->by_type[type], v->type_cap[type] * sizeof(uint32_t));
    }
    v->entries[v->n] = (entry){off, n, h, (uint32_t)v->count[type] + 1, (uint8_t)type};
    v->by_type[type][v->count[type]++] = (uint32_t)v->n;
    v->n++;
    if (v->n * 2 > v->nslots)
        rehash(v);
    else {
        size_t k = h & (v->nslots - 1);
        while (v->slots[k])
            k = (k + 1) & (v->nslots - 1);
        v->slots[k] = (uint32_t)v->n;
    }
    return v->count[type];
}

/* ---- placeholder grammar ------------------------------------------------------------------ */
enum { PH_INVALID, PH_PREFIX, PH_COMPLETE };

static int is_name_byte(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || ch == '_';
}

/* p[0] is '<'. PH_COMPLETE sets *type, *num and *len; PH_PREFIX means p[0..n) could still
   become a placeholder (never longer than 1 + 14 + 6 bytes); PH_INVALID means it cannot. */
static int classify(const char *p, size_t n, int *type, size_t *num, size_t *len)
{
    size_t i = 1;
    while (i < n && is_name_byte(p[i]))
        if (++i - 1 > NAME_MAX_LEN + 1)
            return PH_INVALID;
    if (i == n)
        return PH_PREFIX;
    if (i < 3 || p[i - 1] != '_' || (*type = pd_pii_type_from_name(p + 1, i - 2)) < 0)
        return PH_INVALID;
    if (p[i] < '1' || p[i] > '9')
        return PH_INVALID;
    size_t d = i, v = 0;
    while (i < n && pii_isdigit((unsigned char)p[i])) {
        if (i - d == 6)
            return PH_INVALID;
        v = v * 10 + (size_t)(p[i++] - '0');
    }
    if (i == n)
        return PH_PREFIX;
    if (p[i] != '>')
        return PH_INVALID;
    *num = v;
    *len = i + 1;
    return PH_COMPLETE;
}

/* ---- redaction ---------------------------------------------------------------------------- */
static pd_result put_placeholder(pd_pii_vault *v, pd_pii_type type, const char *p, size_t n,
                                 pd_buf *out)
{
    size_t num = vault_number(v, type, p, n);
    if (num == 0)
        return PD_ERR_TOO_LARGE;
    return pd_buf_printf(out, "<%s_%zu>", pd_pii_type_name(type), num);
}

/* Copies t[a..b) to out, replacing each complete placeholder-looking literal inside it by a
   placeholder of its own (see the note at the top). */
static pd_result copy_escaped(pd_pii_vault *v, const char *t, size_t a, size_t b, pd_buf *out)
{
    pd_result rc = PD_OK;
    while (a < b && !rc) {
        const char *lt = memchr(t + a, '<', b - a);
        size_t k = lt ? (size_t)(lt - t) : b;
        if ((rc = pd_buf_append(out, t + a, k - a)) || !lt)
            break;
        int type;
        size_t num, plen;
        if (classify(t + k, b - k, &type, &num, &plen) == PH_COMPLETE) {
            rc = put_placeholder(v, (pd_pii_type)type, t + k, plen, out);
            a = k + plen;
        } else {
            rc = pd_buf_append(out, "<", 1);
            a = k + 1;
        }
    }
    return rc;
}

static int findings_ok(size_t len, const pd_pii_finding *f, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if ((unsigned)f[k].type >= PD_PII_TYPE_COUNT || f[k].start >= f[k].end || f[k].end > len ||
            (k > 0 && f[k].start < f[k - 1].end))
            return 0;
    return 1;
}

pd_result pd_pii_redact(pd_pii_vault *v, const char *text, size_t len,
                        const pd_pii_finding *findings, size_t count, pd_buf *out)
{
    if (!findings_ok(len, findings, count))
        return PD_ERR_INVALID;
    pd_result rc = PD_OK;
    size_t i = 0;
    for (size_t k = 0; k <= count && !rc; k++) {
        size_t next = k < count ? findings[k].start : len;
        if ((rc = copy_escaped(v, text, i, next, out)) || k == count)
            break;
        rc = put_placeholder(v, findings[k].type, text + next, findings[k].end - next, out);
        i = findings[k].end;
    }
    return rc;
}

pd_result pd_pii_redact_text(pd_pii_scanner *s, pd_pii_vault *v, const char *text, size_t len,
                             pd_buf *out)
{
    const pd_pii_finding *f;
    size_t n;
    pd_result rc = pd_pii_scan(s, text, len, &f, &n);
    return rc ? rc : pd_pii_redact(v, text, len, f, n, out);
}

/* ---- restore ------------------------------------------------------------------------------ */
/* Appends the value of placeholder p[0..plen) when the vault has it, else the text itself. */
static pd_result put_value(const pd_pii_vault *v, int type, size_t num, const char *p, size_t plen,
                           pd_buf *out)
{
    if (num == 0 || num > v->count[type])
        return pd_buf_append(out, p, plen);
    const entry *e = &v->entries[v->by_type[type][num - 1]];
    return pd_buf_append(out, v->values.data + e->off, e->len);
}

pd_result pd_pii_restore(const pd_pii_vault *v, const char *text, size_t len, pd_buf *out)
{
    pd_result rc = PD_OK;
    size_t i = 0;
    while (i < len && !rc) {
        const char *lt = memchr(text + i, '<', len - i);
        size_t k = lt ? (size_t)(lt - text) : len;
        if ((rc = pd_buf_append(out, text + i, k - i)) || !lt)
            break;
        int type;
        size_t num, plen;
        if (classify(text + k, len - k, &type, &num, &plen) == PH_COMPLETE) {
            rc = put_value(v, type, num, text + k, plen, out);
            i = k + plen;
        } else {
            rc = pd_buf_append(out, "<", 1);
            i = k + 1;
        }
    }
    return rc;
}

void pd_pii_restorer_init(pd_pii_restorer *r)
{
    r->carry_len = 0;
}

/* Resolves the carried bytes as far as they can be: a complete placeholder is replaced, a dead
   one gives back its '<' and the bytes up to the next '<'. With final, a live prefix is dead. */
static pd_result drain(pd_pii_restorer *r, const pd_pii_vault *v, pd_buf *out, int final)
{
    pd_result rc = PD_OK;
    while (r->carry_len > 0 && !rc) {
        int type;
        size_t num, plen;
        int cl = classify(r->carry, r->carry_len, &type, &num, &plen);
        if (cl == PH_PREFIX && !final)
            break;
        if (cl == PH_COMPLETE) {
            rc = put_value(v, type, num, r->carry, plen, out);
            memmove(r->carry, r->carry + plen, r->carry_len - plen);
            r->carry_len -= plen;
            continue;
        }
        const char *lt = r->carry_len > 1 ? memchr(r->carry + 1, '<', r->carry_len - 1) : NULL;
        size_t q = lt ? (size_t)(lt - r->carry) : r->carry_len;
        rc = pd_buf_append(out, r->carry, q);
        memmove(r->carry, r->carry + q, r->carry_len - q);
        r->carry_len -= q;
    }
    return rc;
}

pd_result pd_pii_restorer_feed(pd_pii_restorer *r, const pd_pii_vault *v, const char *chunk,
                               size_t len, pd_buf *out)
{
    pd_result rc = PD_OK;
    size_t i = 0;
    while (i < len && !rc) {
        if (r->carry_len > 0) { /* one byte at a time until the carried prefix is decided */
            r->carry[r->carry_len++] = chunk[i++];
            rc = drain(r, v, out, 0);
            continue;
        }
        const char *lt = memchr(chunk + i, '<', len - i);
        size_t k = lt ? (size_t)(lt - chunk) : len;
        if ((rc = pd_buf_append(out, chunk + i, k - i)) || !lt)
            break;
        int type;
        size_t num, plen;
        int cl = classify(chunk + k, len - k, &type, &num, &plen);
        if (cl == PH_COMPLETE) {
            rc = put_value(v, type, num, chunk + k, plen, out);
            i = k + plen;
        } else if (cl == PH_PREFIX) {
            memcpy(r->carry, chunk + k, len - k); /* a prefix is shorter than the carry */
            r->carry_len = len - k;
            i = len;
        } else {
            rc = pd_buf_append(out, "<", 1);
            i = k + 1;
        }
    }
    return rc;
}

pd_result pd_pii_restorer_finish(pd_pii_restorer *r, pd_buf *out)
{
    /* a prefix never needs the vault: with final set, drain only copies bytes */
    pd_result rc = drain(r, NULL, out, 1);
    r->carry_len = 0;
    return rc;
}
