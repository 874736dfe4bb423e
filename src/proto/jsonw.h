/* jsonw.h: a small streaming JSON writer shared by the protocol codecs (proto/openai.c,
 * proto/anthropic.c, ...).
 *
 * Why not json_dumps: jansson prints doubles with 17 significant digits (0.7 ->
 * 0.69999999999999996), which would leak into every upstream request and golden file; it cannot
 * append to a capped pd_buf; and it needs a tree built first, while stream encoders write one
 * chunk per token. This writer appends straight to a pd_buf:
 *   - compact output, keys in the order the caller writes them;
 *   - numbers: integers exactly (int64), reals in the shortest of %.15g..%.17g that reads back as
 *     the same double, always with a '.' or an exponent; NaN and infinities become null;
 *   - strings escaped, with every byte that is not part of valid UTF-8 (overlong forms,
 *     surrogates, above U+10FFFF, a character cut in two) written as \ufffd, so the output is
 *     valid JSON whatever the producer handed in.
 *
 * Use:
 *     pd_jw w;
 *     size_t mark = out->len;
 *     pd_jw_begin(&w, out);
 *     pd_jw_open(&w, '{'); pd_jw_key(&w, "a"); pd_jw_int(&w, 1); pd_jw_close(&w, '}');
 *     return pd_jw_end(&w, mark);
 * Errors are sticky: after the first failed append (PD_ERR_TOO_LARGE when the buffer's limit
 * would be passed) nothing more is written; pd_jw_end returns the error and cuts the buffer
 * back to `mark`, so a failed write leaves the buffer as it was.
 *
 * The writer does not check structure (balanced brackets, a key before each member value): the
 * callers are code, not input. `comma` tracks whether the next value needs a separator; pd_jw_raw
 * never touches it (callers that write raw pieces of a value call pd_jw_sep first).
 *
 * Threading: no shared state. Dependencies: jansson (pd_jw_json), core/buf, proto/fastev (the
 * scan for bytes that need no escape). */
#ifndef PD_PROTO_JSONW_H
#define PD_PROTO_JSONW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "canon/chat.h"
#include "core/buf.h"
#include "core/result.h"

typedef struct pd_jw {
    pd_buf *b;
    pd_result rc; /* the first error, sticky */
    bool comma;   /* the next value needs a "," first */
} pd_jw;

void pd_jw_begin(pd_jw *w, pd_buf *out);
/* Ends a write: returns the sticky result; on error restores out to its length `mark`. */
pd_result pd_jw_end(pd_jw *w, size_t mark);

/* Appends n bytes as they are (no separator, no escaping). */
void pd_jw_raw(pd_jw *w, const char *s, size_t n);
/* Writes "," when a value came before at this level, and marks that one comes now. */
void pd_jw_sep(pd_jw *w);
/* Writes s (n bytes) escaped for the inside of a JSON string, without quotes. */
void pd_jw_escape(pd_jw *w, const char *s, size_t n);
/* The length of the longest prefix of s (n bytes) that a JSON string carries as it is without
   a look at the bytes: printable ASCII other than '"' and '\\'. 16 bytes a step (SSE2, or 8
   with plain C): the escaper and the reader (proto/jsonr.h) spend most of their time here,
   so the SSE2 loop is inline; pd_jw_plain_tail does the rest (and the plain C version). */
size_t pd_jw_plain_tail(const char *s, size_t n);
/* The length of the valid UTF-8 sequence of 2..4 bytes at s (n bytes left), or 0 when it is
   not one: overlong forms, surrogates and code points above U+10FFFF are invalid (jansson's
   rules too). */
size_t pd_jw_utf8_seq(const char *s, size_t n);
/* The tail of fewer than 16 bytes is read as one 16-byte block when that block lies on one
   page (always readable, though past n: the extra bytes are masked off), as glibc's string
   functions do; short strings, most of what a request holds, then take no byte loop. Not
   under AddressSanitizer, which would report the over-read. */
#if defined(__SANITIZE_ADDRESS__)
#define PD_JW_OVERREAD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define PD_JW_OVERREAD 0
#endif
#endif
#ifndef PD_JW_OVERREAD
#define PD_JW_OVERREAD 1
#endif

#ifdef __SSE2__
/* One bit per byte of the 16 at s that ends a plain run. */
static inline unsigned pd_jw_stop_mask(const char *s)
{
    /* a signed compare with 0x20 catches the control bytes and every byte >= 0x80 at once */
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i stop = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
    return (unsigned)_mm_movemask_epi8(stop);
}
#endif

static inline size_t pd_jw_plain_len(const char *s, size_t n)
{
#ifdef __SSE2__
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        unsigned mask = pd_jw_stop_mask(s + i);
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
    }
    if (PD_JW_OVERREAD && i < n && ((uintptr_t)(s + i) & 4095) <= 4096 - 16)
        return i + (size_t)__builtin_ctz(pd_jw_stop_mask(s + i) | (0xffffu << (n - i)));
    return i + pd_jw_plain_tail(s + i, n - i);
#else
    return pd_jw_plain_tail(s, n);
#endif
}

/* For writers that put a whole piece together themselves (the stream encoders' common event):
   pd_jw_room returns room for n more bytes at the end of the buffer, or NULL when they would
   pass its limit or after an error (nothing changed, no error set: write the piece the usual
   way, which finds out whether what is really written fits); after writing k <= n bytes there,
   pd_jw_wrote(w, k). pd_jw_escape_to writes what pd_jw_escape would into dst, which has room
   for 6 * n bytes (the most an escape takes per byte), and returns the end of it. */
char *pd_jw_room(pd_jw *w, size_t n);
void pd_jw_wrote(pd_jw *w, size_t k);
char *pd_jw_escape_to(char *dst, const char *s, size_t n);

/* Values (each preceded by a separator when needed). */
void pd_jw_null(pd_jw *w);
void pd_jw_strn(pd_jw *w, const char *s, size_t n);
void pd_jw_int(pd_jw *w, int64_t v);
void pd_jw_bool(pd_jw *w, bool v);
void pd_jw_real(pd_jw *w, double v);
void pd_jw_json(pd_jw *w, const json_t *j); /* any jansson value, members in their order */
/* A value already serialised (a pd_chat_json: valid JSON), copied as it is. */
void pd_jw_text(pd_jw *w, const pd_chat_json *j);

/* The inline writers below: a request is some sixty keys, forty brackets and as many short
   strings the code spells, and a call apiece was a tenth of writing one. Each writes its piece
   in one go where pd_jw_fits finds room; else it takes the out-of-line path (_piecewise),
   which grows the buffer or fails at its limit. */

/* Where k more bytes (and the NUL) can be written at once, or NULL (no room yet, the limit,
   or after an error). After writing there, pd_jw_put_end(w, end) (end: just past the piece). */
static inline char *pd_jw_fits(pd_jw *w, size_t k)
{
    pd_buf *b = w->b;
    if (w->rc || k >= b->cap - b->len || (b->limit && k > b->limit - b->len))
        return NULL;
    return b->data + b->len;
}
static inline void pd_jw_put_end(pd_jw *w, char *end)
{
    *end = '\0';
    w->b->len = (size_t)(end - w->b->data);
}

void pd_jw_open_piecewise(pd_jw *w, char c);
void pd_jw_close_piecewise(pd_jw *w, char c);

/* Structure: c is '{' or '[' (open) and '}' or ']' (close). */
static inline void pd_jw_open(pd_jw *w, char c)
{
    char *d = pd_jw_fits(w, 2);
    if (!d) {
        pd_jw_open_piecewise(w, c);
        return;
    }
    *d = ',';
    d += w->comma;
    *d++ = c;
    pd_jw_put_end(w, d);
    w->comma = false;
}
static inline void pd_jw_close(pd_jw *w, char c)
{
    char *d = pd_jw_fits(w, 1);
    if (!d) {
        pd_jw_close_piecewise(w, c);
        return;
    }
    *d++ = c;
    pd_jw_put_end(w, d);
    w->comma = true;
}

/* Writes [","]"s" at d (the comma only when comma: it is stored either way and then written
   over) for a string s that needs no escaping; returns the end. Room was checked by the caller
   (pd_jw_fits with n + 3 at least). */
static inline char *pd_jw_put_quoted(char *d, bool comma, const char *s, size_t n)
{
    *d = ',';
    d += comma;
    *d++ = '"';
    memcpy(d, s, n);
    d += n;
    *d++ = '"';
    return d;
}

void pd_jw_keyn(pd_jw *w, const char *k, size_t n);
/* A key the code spells (a literal, or a name from a table in the code): printable ASCII
   without '"' or '\\', so it is copied without a look at its bytes (a request writes some
   sixty keys). Keys that come from data go through pd_jw_keyn. Inline so that the length of a
   literal key is known when compiling (the copy is then a move or two). */
static inline void pd_jw_code_key(pd_jw *w, const char *k, size_t n)
{
    char *d = pd_jw_fits(w, n + 4);
    if (!d) {
        pd_jw_keyn(w, k, n);
        return;
    }
    d = pd_jw_put_quoted(d, w->comma, k, n);
    *d++ = ':';
    pd_jw_put_end(w, d);
    w->comma = false;
}
static inline void pd_jw_key(pd_jw *w, const char *k)
{
    pd_jw_code_key(w, k, strlen(k));
}

/* A C string; NULL is written as null. Inline so that strlen of a literal is folded. */
static inline void pd_jw_str(pd_jw *w, const char *s)
{
    if (s)
        pd_jw_strn(w, s, strlen(s));
    else
        pd_jw_null(w);
}
/* A string value the code spells, under the same rule as pd_jw_code_key ("text",
   "function", a role name): copied without the escaping scan. */
static inline void pd_jw_code_str(pd_jw *w, const char *s)
{
    size_t n = strlen(s);
    char *d = pd_jw_fits(w, n + 3);
    if (!d) {
        pd_jw_strn(w, s, n);
        return;
    }
    pd_jw_put_end(w, pd_jw_put_quoted(d, w->comma, s, n));
    w->comma = true;
}

/* Optional members, written only when present; key as for pd_jw_key. */
static inline void pd_jw_kv(pd_jw *w, const char *key, const char *value) /* value != NULL */
{
    if (!value)
        return;
    pd_jw_key(w, key);
    pd_jw_str(w, value);
}
void pd_jw_kint(pd_jw *w, const char *key, bool has, int64_t v);  /* has */
void pd_jw_kreal(pd_jw *w, const char *key, bool has, double v);  /* has */
void pd_jw_tri(pd_jw *w, const char *key, pd_chat_tri t);         /* t != PD_TRI_UNSET */

/* A JSON value serialised by this writer into a new malloc'ed NUL-terminated string (the
   caller frees it); never NULL (allocation failure aborts, house rule). */
char *pd_jw_dump(const json_t *j);

#endif
