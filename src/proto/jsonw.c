/* jsonw.c: see jsonw.h. Moved here from proto/openai.c unchanged in behaviour (the OpenAI goldens
 * pin it byte for byte). */
#include "proto/jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Most pieces are a few bytes and fit the room already there: copied in place; growing the
   buffer and checking its limit is left to pd_buf_append. */
void pd_jw_raw(pd_jw *w, const char *s, size_t n)
{
    pd_buf *b = w->b;
    if (w->rc)
        return;
    if (n < b->cap - b->len && (!b->limit || n <= b->limit - b->len)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    w->rc = pd_buf_append(b, s, n);
}

void pd_jw_sep(pd_jw *w)
{
    if (w->comma)
        pd_jw_raw(w, ",", 1);
    w->comma = true;
}

size_t pd_jw_utf8_seq(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len;
    uint32_t cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* 1 for the bytes written as they are without a look at what follows (printable ASCII other
   than the quote and the backslash). */
/* clang-format off */
static const unsigned char plain[256] = {
    ['\x20'] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20..0x2f, '"' at 0x22 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,              /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,              /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,              /* 0x50, '\\' at 0x5c */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,              /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,              /* 0x70 */
};
/* clang-format on */

size_t pd_jw_plain_tail(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
#ifndef __SSE2__
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, u + i, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        /* a high bit for a byte < 0x20, == '"', == '\\' or >= 0x80 (the "haszero" tricks;
           exact about whether there is one, the byte loop below finds it) */
        if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & highs)
            break;
    }
#endif
    while (i < n && plain[u[i]])
        i++;
    return i;
}

/* The escape of byte c (not plain, not part of valid UTF-8) into esc; its length, 2 or 6. */
static size_t escape_byte(unsigned char c, char esc[6])
{
    static const char hex[] = "0123456789abcdef";
    char short_form = 0;
    switch (c) {
    case '"': short_form = '"'; break;
    case '\\': short_form = '\\'; break;
    case '\n': short_form = 'n'; break;
    case '\r': short_form = 'r'; break;
    case '\t': short_form = 't'; break;
    case '\b': short_form = 'b'; break;
    case '\f': short_form = 'f'; break;
    default: break;
    }
    esc[0] = '\\';
    if (short_form) {
        esc[1] = short_form;
        return 2;
    }
    if (c >= 0x80) {
        memcpy(esc, "\\ufffd", 6); /* an invalid UTF-8 byte */
        return 6;
    }
    memcpy(esc, "\\u00", 4);
    esc[4] = hex[c >> 4];
    esc[5] = hex[c & 15];
    return 6;
}

/* s (n bytes) escaped into dst, which has room for 6 * n bytes, or only counted when dst is
   NULL; the escaped length. Plain bytes and valid UTF-8 sequences are copied as they are, in
   runs; every other byte becomes its escape. */
static size_t escape(char *dst, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    size_t out = 0;
    while ((p += pd_jw_plain_len((const char *)p, (size_t)(end - p))) < end) {
        size_t seq = *p >= 0x80 ? pd_jw_utf8_seq((const char *)p, (size_t)(end - p)) : 0;
        if (seq) {
            p += seq;
            continue;
        }
        if (dst)
            memcpy(dst + out, run, (size_t)(p - run));
        out += (size_t)(p - run);
        unsigned char c = *p++;
        run = p;
        if (c == '"' || c == '\\') { /* most escapes: JSON text in a string (tool arguments) */
            if (dst) {
                dst[out] = '\\';
                dst[out + 1] = (char)c;
            }
            out += 2;
            continue;
        }
        char esc[6];
        size_t k = escape_byte(c, esc);
        if (dst)
            memcpy(dst + out, esc, k);
        out += k;
    }
    if (dst)
        memcpy(dst + out, run, (size_t)(end - run));
    return out + (size_t)(end - run);
}

char *pd_jw_escape_to(char *dst, const char *s, size_t n)
{
    return dst + escape(dst, s, n);
}

char *pd_jw_room(pd_jw *w, size_t n)
{
    pd_buf *b = w->b;
    if (w->rc || pd_buf_reserve(b, n))
        return NULL;
    return b->data + b->len;
}

void pd_jw_wrote(pd_jw *w, size_t k)
{
    w->b->len += k;
    w->b->data[w->b->len] = '\0';
}

/* Writes s escaped for the inside of a JSON string (no quotes). A short string gets room for
   its worst case and is escaped in place; a long one is measured first, so that the buffer
   grows by what is written and not six times the input. */
void pd_jw_escape(pd_jw *w, const char *s, size_t n)
{
    if (w->rc)
        return;
    char *p = n <= 1024 ? pd_jw_room(w, 6 * n) : NULL;
    if (!p && !(p = pd_jw_room(w, escape(NULL, s, n)))) {
        w->rc = PD_ERR_TOO_LARGE; /* the only way reserving fails */
        return;
    }
    pd_jw_wrote(w, escape(p, s, n));
}

static void quote(pd_jw *w, const char *s, size_t n)
{
    pd_jw_raw(w, "\"", 1);
    pd_jw_escape(w, s, n);
    pd_jw_raw(w, "\"", 1);
}

/* [","] '"' s '"' [":"] in one go when s needs no escaping and fits; false otherwise. */
static bool quote_fast(pd_jw *w, const char *s, size_t n, bool key)
{
    char *d = pd_jw_fits(w, n + 4);
    if (!d || pd_jw_plain_len(s, n) != n)
        return false;
    d = pd_jw_put_quoted(d, w->comma, s, n);
    if (key)
        *d++ = ':';
    pd_jw_put_end(w, d);
    w->comma = !key;
    return true;
}

void pd_jw_null(pd_jw *w)
{
    pd_jw_sep(w);
    pd_jw_raw(w, "null", 4);
}

void pd_jw_strn(pd_jw *w, const char *s, size_t n)
{
    if (quote_fast(w, s, n, false))
        return;
    pd_jw_sep(w);
    quote(w, s, n);
}

void pd_jw_keyn(pd_jw *w, const char *k, size_t n)
{
    if (quote_fast(w, k, n, true))
        return;
    pd_jw_sep(w);
    quote(w, k, n);
    pd_jw_raw(w, ":", 1);
    w->comma = false;
}

void pd_jw_open_piecewise(pd_jw *w, char c)
{
    pd_jw_sep(w);
    pd_jw_raw(w, &c, 1);
    w->comma = false;
}

void pd_jw_close_piecewise(pd_jw *w, char c)
{
    pd_jw_raw(w, &c, 1);
    w->comma = true;
}

/* By hand: snprintf was a visible part of writing a stream event. */
void pd_jw_int(pd_jw *w, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    pd_jw_sep(w);
    pd_jw_raw(w, p, (size_t)(tmp + sizeof tmp - p));
}

void pd_jw_bool(pd_jw *w, bool v)
{
    pd_jw_sep(w);
    pd_jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

/* What %.15g prints for the usual sampling values (0.7, 1.0, 0.95, 1024.5), without printf
   and strtod: when some m / 10^k (k <= 8, m < 10^15) is exactly v, as one correctly rounded
   division tells, that decimal reads back as v and is the 15-digit rounding of v (two
   decimals of 15 digits cannot both be within half an ulp of it), so %.15g prints it: fixed
   notation for 1e-4 <= |v| < 1e15, trailing zeros dropped. False otherwise (or for 0). */
static bool real_short(double v, char *out, size_t *len)
{
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e6))
        return false;
    for (int k = 0; k <= 8; k++) {
        double m = nearbyint(a * p10[k]);
        if (m / p10[k] != a)
            continue;
        char digits[24];
        size_t n = 0, o = 0;
        uint64_t u = (uint64_t)m;
        do
            digits[n++] = (char)('0' + u % 10);
        while (u /= 10);
        while (n <= (size_t)k) /* a leading zero before the point: 0.05 */
            digits[n++] = '0';
        if (v < 0)
            out[o++] = '-';
        while (n > (size_t)k)
            out[o++] = digits[--n];
        out[o++] = '.';
        if (k == 0)
            out[o++] = '0'; /* "1" would read back as an integer */
        while (n)
            out[o++] = digits[--n];
        *len = o;
        return true;
    }
    return false;
}

/* The shortest of %.15g..%.17g that reads back as the same double, always with a '.' or an
   exponent so that it reads back as a real. JSON has no NaN/Infinity: those become null. */
void pd_jw_real(pd_jw *w, double v)
{
    if (!isfinite(v)) {
        pd_jw_null(w);
        return;
    }
    char tmp[40];
    size_t len;
    if (real_short(v, tmp, &len)) {
        pd_jw_sep(w);
        pd_jw_raw(w, tmp, len);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp - 2, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    if (!strpbrk(tmp, ".eE"))
        strcat(tmp, ".0");
    pd_jw_sep(w);
    pd_jw_raw(w, tmp, strlen(tmp));
}

void pd_jw_tri(pd_jw *w, const char *key, pd_chat_tri t)
{
    if (t == PD_TRI_UNSET)
        return;
    pd_jw_key(w, key);
    pd_jw_bool(w, t == PD_TRI_TRUE);
}

void pd_jw_json(pd_jw *w, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        pd_jw_open(w, '{');
        json_object_foreach((json_t *)j, k, v)
        {
            pd_jw_keyn(w, k, strlen(k)); /* a key from data */
            pd_jw_json(w, v);
        }
        pd_jw_close(w, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        pd_jw_open(w, '[');
        json_array_foreach(j, i, v) pd_jw_json(w, v);
        pd_jw_close(w, ']');
        break;
    }
    case JSON_STRING: pd_jw_strn(w, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: pd_jw_int(w, json_integer_value(j)); break;
    case JSON_REAL: pd_jw_real(w, json_real_value(j)); break;
    case JSON_TRUE: pd_jw_bool(w, true); break;
    case JSON_FALSE: pd_jw_bool(w, false); break;
    case JSON_NULL: pd_jw_null(w); break;
    }
}

void pd_jw_text(pd_jw *w, const pd_chat_json *j)
{
    pd_jw_sep(w);
    pd_jw_raw(w, j->text, j->len);
}

void pd_jw_begin(pd_jw *w, pd_buf *out)
{
    w->b = out;
    w->rc = PD_OK;
    w->comma = false;
}

/* Ends a write: on error, restores out to its length before the write. */
pd_result pd_jw_end(pd_jw *w, size_t mark)
{
    if (w->rc) {
        w->b->len = mark;
        if (w->b->data)
            w->b->data[mark] = '\0';
    }
    return w->rc;
}

void pd_jw_kreal(pd_jw *w, const char *key, bool has, double v)
{
    if (!has)
        return;
    pd_jw_key(w, key);
    pd_jw_real(w, v);
}

void pd_jw_kint(pd_jw *w, const char *key, bool has, int64_t v)
{
    if (!has)
        return;
    pd_jw_key(w, key);
    pd_jw_int(w, v);
}

char *pd_jw_dump(const json_t *j)
{
    pd_buf b;
    pd_jw w;
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &b);
    pd_jw_json(&w, j);
    char *s = pd_xstrndup(b.data ? b.data : "", b.len);
    pd_buf_free(&b);
    return s;
}
