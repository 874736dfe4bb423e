/* jsonr.c: see jsonr.h. Layout: the parser (a flat loop, no recursion: `step` closes the
 * innermost open container or starts its next element; the open containers are a stack
 * threaded through their nodes); lookups; paths; duplicate folding; compact copies; the
 * writers.
 *
 * The accept set is jansson 2.14's json_loadb with flags 0 (src/load.c there): where this file
 * looks odd (the NUL after a number, which characters end a literal) it copies that lexer. */
#include "proto/jsonr.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ==== parsing ============================================================================ */

typedef struct parser {
    const unsigned char *p, *end;
    size_t text_len;
    pd_jr_doc *doc;
    uint32_t depth;             /* open containers */
    size_t top;                 /* the innermost one's node */
    const unsigned char *dirty; /* just after the last thing pd_jr_write would print otherwise
                                   (whitespace, an escape, a real, "-0", jansson's NUL) */
} parser;

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline void skip_ws(parser *ps)
{
    const unsigned char *p = ps->p;
    if (p<ps->end && * p> ' ') /* the usual case: no whitespace at all */
        return;
    while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p != ps->p)
        ps->dirty = ps->p = p;
}

/* The node array is full: it doubles (moving to the heap from the caller's buffer). */
static __attribute__((noinline)) void grow(parser *ps)
{
    pd_jr_doc *d = ps->doc;
    size_t cap = d->cap ? d->cap * 2 : 16 + ps->text_len / 8;
    if (d->borrowed) { /* the caller's buffer is full: move to the heap */
        pd_jr_val *v = pd_xmalloc(cap * sizeof *v);
        memcpy(v, d->v, d->n * sizeof *v);
        d->v = v;
        d->borrowed = false;
    } else {
        d->v = pd_xrealloc(d->v, cap * sizeof *d->v);
    }
    d->cap = cap;
}

/* A new node (index into doc->v). Inline: one per value, the reader's commonest step. */
static inline __attribute__((always_inline)) size_t push(parser *ps, pd_jr_type type)
{
    pd_jr_doc *d = ps->doc;
    if (d->n == d->cap)
        grow(ps);
    d->v[d->n] = (pd_jr_val){.type = (uint8_t)type};
    return d->n++;
}

/* Four hex digits at s (n bytes left) as a code unit, or -1. */
static int32_t hex4(const unsigned char *s, size_t n)
{
    if (n < 4)
        return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        int d = is_digit(c)              ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static size_t utf8_put(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | cp >> 6);
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | cp >> 12);
        dst[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | cp >> 18);
    dst[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    dst[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* One escape after the backslash at ps->p (which points at the letter): decoded into dst.
   Returns the bytes written, 0 for an invalid escape (\u0000 and unpaired surrogates too). */
static size_t unescape(parser *ps, char *dst)
{
    const unsigned char *p = ps->p;
    size_t left = (size_t)(ps->end - p);
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = left ? memchr(from, p[0], 8) : NULL;
    if (hit && p[0]) {
        *dst = to[hit - from];
        ps->p++;
        return 1;
    }
    if (!left || p[0] != 'u')
        return 0;
    int32_t cp = hex4(p + 1, left - 1);
    if (cp <= 0 || (cp >= 0xdc00 && cp <= 0xdfff)) /* \u0000: no JSON_ALLOW_NUL */
        return 0;
    ps->p += 5;
    if (cp >= 0xd800 && cp <= 0xdbff) { /* must be followed by a low surrogate */
        left -= 5;
        if (left < 2 || p[5] != '\\' || p[6] != 'u')
            return 0;
        int32_t lo = hex4(p + 7, left - 2);
        if (lo < 0xdc00 || lo > 0xdfff)
            return 0;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        ps->p += 6;
    }
    return utf8_put(dst, (uint32_t)cp);
}

/* The rest of a string with escapes, from ps->p (at a backslash); [start, ps->p) is plain and
   copied first. Decoded into the document's scratch block, which is as big as the whole text,
   so it never moves (the decoded form is never longer than the escaped one). */
static pd_result string_slow(parser *ps, const unsigned char *start, pd_jr_val *v)
{
    pd_jr_doc *d = ps->doc;
    if (!d->scratch)
        d->scratch = pd_xmalloc(ps->text_len ? ps->text_len : 1); /* or the caller's */
    char *out = d->scratch + d->scratch_len, *o = out;
    memcpy(o, start, (size_t)(ps->p - start));
    o += ps->p - start;
    while (ps->p < ps->end) {
        size_t run = pd_jw_plain_len((const char *)ps->p, (size_t)(ps->end - ps->p));
        memcpy(o, ps->p, run); /* the plain bytes between escapes, 16 at a time */
        o += run;
        ps->p += run;
        if (ps->p == ps->end)
            break;
        unsigned char c = *ps->p;
        if (c == '"') {
            ps->p++;
            ps->dirty = ps->p;
            v->u.s = out;
            v->n = (uint32_t)(o - out);
            d->scratch_len += (size_t)(o - out);
            return PD_OK;
        }
        if (c == '\\') {
            ps->p++;
            size_t k = unescape(ps, o);
            if (!k)
                return PD_ERR_INVALID;
            o += k;
        } else {
            size_t k =
                c >= 0x80 ? pd_jw_utf8_seq((const char *)ps->p, (size_t)(ps->end - ps->p)) : 0;
            if (!k)
                return PD_ERR_INVALID; /* a control character or invalid UTF-8 */
            memcpy(o, ps->p, k);
            o += k;
            ps->p += k;
        }
    }
    return PD_ERR_INVALID;
}

/* The rest of string(): a string longer than 15 bytes, or with a byte that is not plain. */
static __attribute__((noinline)) pd_result string_rest(parser *ps, pd_jr_val *v)
{
    const unsigned char *start = ps->p;
    for (;;) {
        ps->p += pd_jw_plain_len((const char *)ps->p, (size_t)(ps->end - ps->p));
        if (ps->p == ps->end)
            return PD_ERR_INVALID;
        unsigned char c = *ps->p;
        if (c == '"')
            break;
        if (c == '\\')
            return string_slow(ps, start, v);
        size_t k = c >= 0x80 ? pd_jw_utf8_seq((const char *)ps->p, (size_t)(ps->end - ps->p)) : 0;
        if (!k)
            return PD_ERR_INVALID;
        ps->p += k;
    }
    v->u.s = (const char *)start; /* shorter than the text: < 4 GiB */
    v->n = (uint32_t)(ps->p - start);
    ps->p++;
    return PD_OK;
}

/* A string from ps->p (just after the opening quote) into node v. Without escapes the node
   points into the text. Most strings of a request (keys, ids, names, roles) are short and
   plain: one 16-byte step inline here finds their end (when 16 bytes of text are left to
   read); the rest is string_rest's. */
static inline __attribute__((always_inline)) pd_result string(parser *ps, pd_jr_val *v)
{
#ifdef __SSE2__
    const unsigned char *start = ps->p;
    if (ps->end - start >= 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)start);
        __m128i quote = _mm_cmpeq_epi8(b, _mm_set1_epi8('"'));
        __m128i stop = _mm_or_si128(_mm_cmplt_epi8(b, _mm_set1_epi8(0x20)),
                                    _mm_or_si128(quote, _mm_cmpeq_epi8(b, _mm_set1_epi8('\\'))));
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        /* the first stop is a quote: told by the masks, not by loading the byte again (a
           load that waited on the scan was a fifth of the reader's time) */
        if (mask & (unsigned)_mm_movemask_epi8(quote) & (0u - mask)) {
            unsigned k = (unsigned)__builtin_ctz(mask);
            v->u.s = (const char *)start;
            v->n = k;
            ps->p = start + k + 1;
            return PD_OK;
        }
    }
#endif
    return string_rest(ps, v);
}

/* jansson pushes back the byte after a number or a literal; when that byte is NUL its stream
   loses it, so one NUL there is skipped (and accepted). */
static void nul_quirk(parser *ps)
{
    if (ps->p < ps->end && *ps->p == '\0')
        ps->dirty = ++ps->p;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path: at most 15 significant digits and a power of ten up to 22 are exact
   doubles, so one multiplication or division rounds correctly and gives strtod's result.
   False when the number is outside that range. [s, end) is a validated JSON number. */
static bool real_fast(const unsigned char *s, const unsigned char *end, double *out)
{
    bool neg = *s == '-', frac = false;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    for (s += neg; s < end && (is_digit(*s) || *s == '.'); s++) {
        if (*s == '.') {
            frac = true;
            continue;
        }
        exp10 -= frac;
        if (m == 0 && *s == '0')
            continue; /* not significant */
        if (++digits > 15)
            return false;
        m = m * 10 + (uint64_t)(*s - '0');
    }
    if (s < end) { /* the exponent */
        bool eneg = *++s == '-';
        int e = 0;
        for (s += *s == '-' || *s == '+'; s < end; s++)
            e = e < 10000 ? e * 10 + (*s - '0') : e;
        exp10 += eneg ? -e : e;
    }
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return true;
    }
    if (exp10 < -22 || exp10 > 22)
        return false;
    double d = (double)m;
    d = exp10 >= 0 ? d * pow10_exact[exp10] : d / pow10_exact[-exp10];
    *out = neg ? -d : d;
    return true;
}

/* A number from ps->p (at '-' or a digit) into node v: the JSON grammar, then INT when there
   is no fraction and no exponent (int64 or rejected), else REAL (rejected when infinite). */
static pd_result number(parser *ps, pd_jr_val *v)
{
    const unsigned char *start = ps->p, *end = ps->end, *p = ps->p;
    bool neg = *p == '-', real = false;
    p += neg;
    if (p == end)
        return PD_ERR_INVALID;
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return PD_ERR_INVALID;
    } else if (is_digit(*p)) {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return PD_ERR_INVALID;
    }
    if (p < end && *p == '.') {
        real = true;
        if (++p == end || !is_digit(*p))
            return PD_ERR_INVALID;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return PD_ERR_INVALID;
        while (p < end && is_digit(*p))
            p++;
    }
    ps->p = p;
    if (!real) {
        uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (const unsigned char *q = start + neg; q < p; q++) {
            unsigned d = (unsigned)(*q - '0');
            if (u > (lim - d) / 10)
                return PD_ERR_INVALID; /* "too big integer" */
            u = u * 10 + d;
        }
        v->type = PD_JR_INT;
        v->u.i = neg ? (int64_t)(0 - u) : (int64_t)u;
        if (neg && u == 0)
            ps->dirty = p; /* "-0" is written 0 */
        return PD_OK;
    }
    v->type = PD_JR_REAL;
    ps->dirty = p;
    if (real_fast(start, p, &v->u.d))
        return PD_OK;
    /* strtod needs a NUL-terminated copy: the text may end right after the number */
    char tmp[64], *buf = tmp;
    size_t n = (size_t)(p - start);
    if (n >= sizeof tmp)
        buf = pd_xmalloc(n + 1);
    memcpy(buf, start, n);
    buf[n] = '\0';
    v->u.d = strtod(buf, NULL);
    if (buf != tmp)
        free(buf);
    return isinf(v->u.d) ? PD_ERR_INVALID : PD_OK; /* "real number overflow" */
}

/* true, false or null: the whole run of letters must be the word (jansson reads it so). */
static pd_result literal(parser *ps, pd_jr_val *v)
{
    static const struct {
        const char *word;
        size_t len;
        pd_jr_type type;
    } words[] = {{"true", 4, PD_JR_TRUE}, {"false", 5, PD_JR_FALSE}, {"null", 4, PD_JR_NULL}};
    const unsigned char *p = ps->p;
    while (p < ps->end && is_alpha(*p))
        p++;
    size_t n = (size_t)(p - ps->p);
    for (size_t i = 0; i < 3; i++) {
        if (n == words[i].len && memcmp(ps->p, words[i].word, n) == 0) {
            v->type = words[i].type;
            ps->p = p;
            nul_quirk(ps);
            return PD_OK;
        }
    }
    return PD_ERR_INVALID;
}

/* One value at ps->p (whitespace skipped). A container is opened and left for the main loop
   to fill: *opened says so. While a container is open its u.skip holds its parent's index
   (the stack of open containers is threaded through the nodes). */
static inline __attribute__((always_inline)) pd_result value(parser *ps, bool *opened)
{
    *opened = false;
    if (ps->depth + 1 > PD_JR_MAX_DEPTH || ps->p == ps->end)
        return PD_ERR_INVALID; /* "maximum parsing depth reached", or nothing */
    unsigned char c = *ps->p;
    size_t i;
    pd_result rc;
    switch (c) {
    case '{':
    case '[':
        i = push(ps, c == '{' ? PD_JR_OBJECT : PD_JR_ARRAY);
        ps->doc->v[i].skip = (uint32_t)ps->top;
        ps->doc->v[i].u.s = (const char *)ps->p;
        ps->top = i;
        if (++ps->depth > ps->doc->depth)
            ps->doc->depth = ps->depth;
        ps->p++;
        *opened = true;
        return PD_OK;
    case '"':
        i = push(ps, PD_JR_STRING);
        ps->p++;
        return string(ps, &ps->doc->v[i]);
    case 't':
    case 'f':
    case 'n': i = push(ps, PD_JR_NULL); return literal(ps, &ps->doc->v[i]);
    default:
        if (c != '-' && !is_digit(c))
            return PD_ERR_INVALID;
        i = push(ps, PD_JR_INT);
        rc = number(ps, &ps->doc->v[i]);
        if (!rc)
            nul_quirk(ps);
        return rc;
    }
}

static bool same_key(const pd_jr_val *a, const pd_jr_val *b);

#define SMALL_OBJECT 32 /* up to this many members, duplicates are found by comparing keys */

/* Records key k (the newest member) in its open object o: its bit, and PD_JR_DUPS when an
   earlier key is the same (looked for only when the bit was already set) or o is big. */
static void note_key(pd_jr_val *o, const pd_jr_val *k)
{
    uint32_t bit =
        pd_jr_key_bit(k->n ? (unsigned char)k->u.s[0] : 0, k->n > 1 ? (unsigned char)k->u.s[1] : 0);
    if (o->n > SMALL_OBJECT)
        o->flags |= PD_JR_DUPS;
    if ((o->keys & bit) && !(o->flags & PD_JR_DUPS)) {
        for (const pd_jr_val *e = o + 1; e != k; e = pd_jr_next(e + 1)) {
            if (same_key(e, k)) {
                o->flags |= PD_JR_DUPS;
                break;
            }
        }
    }
    o->keys |= bit;
}

/* An object member's key and colon, at ps->p (whitespace skipped). */
static pd_result key(parser *ps)
{
    if (ps->p == ps->end || *ps->p != '"')
        return PD_ERR_INVALID;
    size_t i = push(ps, PD_JR_STRING);
    ps->p++;
    pd_result rc = string(ps, &ps->doc->v[i]);
    if (rc)
        return rc;
    note_key(&ps->doc->v[ps->top], &ps->doc->v[i]);
    skip_ws(ps);
    if (ps->p == ps->end || *ps->p != ':')
        return PD_ERR_INVALID;
    ps->p++;
    skip_ws(ps);
    return PD_OK;
}

/* In the innermost open container, after a value or (fresh) just after its opening bracket:
   the closing bracket, or (after a comma unless fresh) one more element. */
static pd_result step(parser *ps, bool fresh, bool *opened)
{
    pd_jr_val *c = &ps->doc->v[ps->top];
    skip_ws(ps);
    *opened = false;
    if (ps->p == ps->end)
        return PD_ERR_INVALID;
    if (*ps->p == (c->type == PD_JR_OBJECT ? '}' : ']')) {
        ps->p++;
        size_t parent = c->skip;
        c->skip = (uint32_t)(ps->doc->n - ps->top - 1);
        c->len = (uint32_t)((const char *)ps->p - c->u.s);
        if (ps->dirty <= (const unsigned char *)c->u.s)
            c->flags |= PD_JR_COMPACT;
        ps->top = parent;
        ps->depth--;
        return PD_OK;
    }
    if (!fresh) {
        if (*ps->p != ',')
            return PD_ERR_INVALID;
        ps->p++;
        skip_ws(ps);
    }
    if (c->n == UINT32_MAX)
        return PD_ERR_TOO_LARGE;
    c->n++;
    pd_result rc = c->type == PD_JR_OBJECT ? key(ps) : PD_OK;
    return rc ? rc : value(ps, opened);
}

pd_result pd_jr_parse(pd_jr_doc *doc, const char *text, size_t len)
{
    return pd_jr_parse_in(doc, text, len, NULL);
}

pd_result pd_jr_parse_in(pd_jr_doc *doc, const char *text, size_t len, const pd_jr_mem *mem)
{
    memset(doc, 0, sizeof *doc);
    if (mem && mem->nodes && mem->n_nodes) {
        doc->v = mem->nodes;
        doc->cap = mem->n_nodes;
        doc->borrowed = true;
    }
    if (mem && mem->scratch && len <= mem->scratch_cap) {
        doc->scratch = mem->scratch;
        doc->scratch_borrowed = true;
    }
    if (len >= UINT32_MAX)
        return PD_ERR_TOO_LARGE; /* node counts and lengths are 32 bits */
    parser ps = {(const unsigned char *)text, (const unsigned char *)text + len, len, doc, 0, 0,
                 (const unsigned char *)text};
    bool opened;
    skip_ws(&ps);
    pd_result rc = PD_ERR_INVALID; /* "'[' or '{' expected" */
    if (ps.p < ps.end && (*ps.p == '{' || *ps.p == '['))
        rc = value(&ps, &opened);
    while (!rc && ps.depth)
        rc = step(&ps, opened, &opened);
    if (!rc) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = PD_ERR_INVALID; /* "end of file expected" */
    }
    if (rc)
        pd_jr_free(doc);
    return rc;
}

void pd_jr_free(pd_jr_doc *doc)
{
    if (!doc)
        return;
    if (!doc->borrowed)
        free(doc->v);
    if (!doc->scratch_borrowed)
        free(doc->scratch);
    memset(doc, 0, sizeof *doc);
}

/* ==== lookups ============================================================================ */

const pd_jr_val *pd_jr_getn(const pd_jr_val *o, const char *key, size_t n)
{
    const unsigned char *u = (const unsigned char *)key;
    if (!pd_jr_is_object(o) || !(o->keys & pd_jr_key_bit(n ? u[0] : 0, n > 1 ? u[1] : 0)))
        return NULL;
    return pd_jr_get_member(o, key, n);
}

const pd_jr_val *pd_jr_get_member(const pd_jr_val *o, const char *key, size_t n)
{
    const pd_jr_val *hit = NULL, *k = o + 1;
    for (uint32_t i = 0; i < o->n; i++) {
        if (k->n == n && (n == 0 || (k->u.s[0] == key[0] && memcmp(k->u.s, key, n) == 0))) {
            hit = k + 1; /* the last one wins, as in a jansson object */
            if (!(o->flags & PD_JR_DUPS))
                break; /* no later member has this key */
        }
        k = pd_jr_next(k + 1);
    }
    return hit;
}

/* ==== paths ============================================================================== */

/* Appends s to dst (length *n, capacity cap), cut to fit. */
static void put(char *dst, size_t cap, size_t *n, const char *s, size_t len)
{
    size_t room = cap - 1 - *n;
    if (len > room)
        len = room;
    memcpy(dst + *n, s, len);
    *n += len;
}

const char *pd_jr_path_key(char *dst, size_t cap, const char *base, const char *key)
{
    size_t n = 0;
    put(dst, cap, &n, base, strlen(base));
    if (base[0])
        put(dst, cap, &n, ".", 1);
    put(dst, cap, &n, key, strlen(key));
    dst[n] = '\0';
    return dst;
}

const char *pd_jr_path_index(char *dst, size_t cap, const char *base, const char *open, size_t i,
                             const char *close)
{
    char num[24];
    size_t k = sizeof num, n = 0;
    do
        num[--k] = (char)('0' + i % 10);
    while (i /= 10);
    put(dst, cap, &n, base, strlen(base));
    put(dst, cap, &n, open, strlen(open));
    put(dst, cap, &n, num + k, sizeof num - k);
    put(dst, cap, &n, close, strlen(close));
    dst[n] = '\0';
    return dst;
}

/* ==== members with duplicates folded ====================================================== */

static bool same_key(const pd_jr_val *a, const pd_jr_val *b)
{
    return a->n == b->n && memcmp(a->u.s, b->u.s, a->n) == 0;
}

static uint32_t key_hash(const pd_jr_val *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (uint32_t i = 0; i < k->n; i++)
        h = (h ^ (unsigned char)k->u.s[i]) * 16777619u;
    return h;
}

/* Big objects: keys[i] is member i's key; last[i] the member whose value member i takes
   (its last duplicate), or UINT32_MAX when member i repeats an earlier key. */
static void index_big(pd_jr_members *it)
{
    uint32_t n = it->obj->n;
    size_t cap = 64;
    while (cap < (size_t)n * 2)
        cap *= 2;
    uint32_t *slot = pd_xmalloc(cap * sizeof *slot);
    memset(slot, 0xff, cap * sizeof *slot);
    it->keys = pd_xmalloc(n * sizeof *it->keys);
    it->last = pd_xmalloc(n * sizeof *it->last);
    const pd_jr_val *k = it->obj + 1;
    for (uint32_t i = 0; i < n; i++, k = pd_jr_next(k + 1)) {
        it->keys[i] = k;
        size_t s = key_hash(k) & (cap - 1);
        while (slot[s] != UINT32_MAX && !same_key(it->keys[slot[s]], k))
            s = (s + 1) & (cap - 1);
        if (slot[s] == UINT32_MAX) {
            slot[s] = i;
            it->last[i] = i;
        } else {
            it->last[slot[s]] = i;
            it->last[i] = UINT32_MAX;
        }
    }
    free(slot);
}

void pd_jr_members_begin(pd_jr_members *it, const pd_jr_val *obj)
{
    memset(it, 0, sizeof *it);
    it->obj = obj;
    it->cur = obj + 1;
    if (obj->n > SMALL_OBJECT && (obj->flags & PD_JR_DUPS))
        index_big(it);
}

/* Small objects: the value for the key k (the last duplicate's), or NULL when an earlier
   member already had this key. */
static const pd_jr_val *small_value(const pd_jr_members *it, const pd_jr_val *k)
{
    const pd_jr_val *o = it->obj + 1, *v = k + 1;
    uint32_t i = 0;
    for (; o != k; o = pd_jr_next(o + 1), i++)
        if (same_key(o, k))
            return NULL;
    for (o = pd_jr_next(k + 1), i++; i < it->obj->n; o = pd_jr_next(o + 1), i++)
        if (same_key(o, k))
            v = o + 1;
    return v;
}

bool pd_jr_members_next(pd_jr_members *it)
{
    while (it->i < it->obj->n) {
        const pd_jr_val *k = it->cur;
        uint32_t i = it->i++;
        it->cur = pd_jr_next(k + 1);
        const pd_jr_val *v;
        if (!(it->obj->flags & PD_JR_DUPS))
            v = k + 1;
        else if (it->last)
            v = it->last[i] == UINT32_MAX ? NULL : it->keys[it->last[i]] + 1;
        else
            v = small_value(it, k);
        if (v) {
            it->key = k;
            it->value = v;
            return true;
        }
    }
    return false;
}

void pd_jr_members_end(pd_jr_members *it)
{
    free(it->last);
    free(it->keys);
    it->last = NULL;
    it->keys = NULL;
}

/* ==== compact copies ===================================================================== */

/* No object in v's subtree repeats a key (the parser marked those that do). */
static bool no_dup_keys(const pd_jr_val *v)
{
    const pd_jr_val *end = pd_jr_next(v);
    for (const pd_jr_val *o = v; o < end; o++)
        if (o->type == PD_JR_OBJECT && (o->flags & PD_JR_DUPS))
            return false;
    return true;
}

/* A compact container without repeated keys is copied: both writers would print its text as
   it is (no whitespace, no escape, no real, no "-0"; jansson's dump and jsonw escape the same
   characters, which such text holds only escaped). */
static bool copy_compact(pd_jw *w, const pd_jr_val *v)
{
    if (v->type < PD_JR_ARRAY || !(v->flags & PD_JR_COMPACT) || !no_dup_keys(v))
        return false;
    pd_jw_sep(w);
    pd_jw_raw(w, v->u.s, v->len);
    return true;
}

/* ==== writers ============================================================================= */

typedef void (*string_fn)(pd_jw *w, const char *s, size_t n);
typedef void (*real_fn)(pd_jw *w, double d);

typedef struct style {
    string_fn escape;
    real_fn real;
} style;

static void quoted(pd_jw *w, const style *st, const pd_jr_val *s)
{
    pd_jw_raw(w, "\"", 1);
    st->escape(w, s->u.s, s->n);
    pd_jw_raw(w, "\"", 1);
}

static void key_of(pd_jw *w, const style *st, const pd_jr_val *k)
{
    pd_jw_sep(w);
    quoted(w, st, k);
    pd_jw_raw(w, ":", 1);
    w->comma = false;
}

static void write_any(pd_jw *w, const style *st, const pd_jr_val *v)
{
    switch ((pd_jr_type)v->type) {
    case PD_JR_NULL: pd_jw_null(w); break;
    case PD_JR_FALSE: pd_jw_bool(w, false); break;
    case PD_JR_TRUE: pd_jw_bool(w, true); break;
    case PD_JR_INT: pd_jw_int(w, v->u.i); break;
    case PD_JR_REAL: st->real(w, v->u.d); break;
    case PD_JR_STRING:
        pd_jw_sep(w);
        quoted(w, st, v);
        break;
    case PD_JR_ARRAY: {
        const pd_jr_val *e = v + 1;
        pd_jw_open(w, '[');
        for (uint32_t i = 0; i < v->n; i++, e = pd_jr_next(e))
            write_any(w, st, e);
        pd_jw_close(w, ']');
        break;
    }
    case PD_JR_OBJECT: {
        pd_jr_members it;
        pd_jw_open(w, '{');
        pd_jr_members_begin(&it, v);
        while (pd_jr_members_next(&it)) {
            key_of(w, st, it.key);
            write_any(w, st, it.value);
        }
        pd_jr_members_end(&it);
        pd_jw_close(w, '}');
        break;
    }
    }
}

static const style jw_style = {pd_jw_escape, pd_jw_real};

void pd_jr_write(pd_jw *w, const pd_jr_val *v)
{
    if (!copy_compact(w, v))
        write_any(w, &jw_style, v);
}

void pd_jr_write_key(pd_jw *w, const pd_jr_val *k)
{
    key_of(w, &jw_style, k);
}

char *pd_jr_dump(const pd_jr_val *v, size_t *len)
{
    if (v->type >= PD_JR_ARRAY && (v->flags & PD_JR_COMPACT) && no_dup_keys(v)) {
        size_t n = v->len;
        *len = n;
        return pd_xstrndup(v->u.s, n);
    }
    pd_buf b;
    pd_jw w;
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &b);
    pd_jr_write(&w, v);
    *len = b.len;
    return b.data ? b.data : pd_xstrdup("");
}

char *pd_jr_dump_in(pd_arena *a, const pd_jr_val *v, size_t *len)
{
    if (v->type >= PD_JR_ARRAY && (v->flags & PD_JR_COMPACT) && no_dup_keys(v)) {
        size_t n = v->len;
        *len = n;
        return pd_arena_strndup(a, v->u.s, n);
    }
    pd_buf b;
    pd_jw w;
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &b);
    pd_jr_write(&w, v);
    *len = b.len;
    char *t = pd_arena_strndup(a, b.data ? b.data : "", b.len);
    pd_buf_free(&b);
    return t;
}

/* jansson's jsonp_dtostr: %.17g, a ".0" when it would read back as an integer, and the
   exponent without '+' or leading zeros. */
static void real_jansson(pd_jw *w, double d)
{
    char buf[48];
    int len = snprintf(buf, sizeof buf - 3, "%.17g", d);
    if (!strpbrk(buf, ".e")) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(buf + len - end) + 1);
            len -= (int)(end - start);
        }
    }
    pd_jw_sep(w);
    pd_jw_raw(w, buf, (size_t)len);
}

void pd_jr_escape_jansson(pd_jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue; /* printable ASCII and UTF-8 (the strings here are valid) */
        pd_jw_raw(w, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        switch (c) {
        case '"': pd_jw_raw(w, "\\\"", 2); break;
        case '\\': pd_jw_raw(w, "\\\\", 2); break;
        case '\n': pd_jw_raw(w, "\\n", 2); break;
        case '\r': pd_jw_raw(w, "\\r", 2); break;
        case '\t': pd_jw_raw(w, "\\t", 2); break;
        case '\b': pd_jw_raw(w, "\\b", 2); break;
        case '\f': pd_jw_raw(w, "\\f", 2); break;
        default: pd_jw_raw(w, esc, 6);
        }
    }
    pd_jw_raw(w, s + run, n - run);
}

static const style jansson_style = {pd_jr_escape_jansson, real_jansson};

void pd_jr_write_jansson(pd_jw *w, const pd_jr_val *v)
{
    if (!copy_compact(w, v))
        write_any(w, &jansson_style, v);
}

void pd_jr_write_key_jansson(pd_jw *w, const pd_jr_val *k)
{
    key_of(w, &jansson_style, k);
}

void pd_jr_why_invalid(const char *text, size_t len, char *buf, size_t cap)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (j) { /* cannot happen (tests/fuzz/fuzz_jsonr.c); said plainly if it ever does */
        json_decref(j);
        snprintf(buf, cap, "too large");
        return;
    }
    snprintf(buf, cap, "%s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
}

/* Nesting depth of a JSON text, counted without parsing (strings skipped). */
bool pd_jr_text_depth_ok(const char *s, size_t n, int max)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}
