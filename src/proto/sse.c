/* sse.c: see sse.h for the rules. Design note on buffering:
 *
 * The parser walks the fed bytes line by line. While an event's lines all lie in the current
 * feed, its name and (single-line) data are kept as pointers into those bytes and handed to the
 * callback without a copy. Bytes are copied only when they must outlive the feed:
 *   - a line cut by the end of the feed goes to `line` and is completed by the next feed;
 *   - at the end of a feed, the name and data of an event still in progress go to `name`/`data`;
 *   - an event with several data lines is joined in `data` (the join needs contiguous bytes).
 * The buffers are reset, not freed, between events, so a stream allocates only while its
 * largest event grows. */
#include "proto/sse.h"

#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

void pd_sse_init(pd_sse_parser *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof *p);
    p->max = max_event_bytes ? max_event_bytes : PD_SSE_DEFAULT_MAX_EVENT;
    pd_buf_init(&p->line, p->max);
    pd_buf_init(&p->data, p->max);
    pd_buf_init(&p->name, p->max);
}

static void event_clear(pd_sse_parser *p)
{
    p->in_event = p->has_data = p->data_owned = p->name_owned = 0;
    p->data_ptr = p->name_ptr = NULL;
    p->data_len = p->name_len = 0;
    pd_buf_reset(&p->data);
    pd_buf_reset(&p->name);
}

void pd_sse_reset(pd_sse_parser *p)
{
    event_clear(p);
    pd_buf_reset(&p->line);
    p->skip_lf = 0;
    p->failed = 0;
}

void pd_sse_free(pd_sse_parser *p)
{
    if (!p)
        return;
    pd_buf_free(&p->line);
    pd_buf_free(&p->data);
    pd_buf_free(&p->name);
    pd_sse_reset(p);
}

int pd_sse_pending(const pd_sse_parser *p)
{
    return p->line.len > 0 || p->in_event;
}

/* Adds one data line. `stable` says whether v stays valid until the end of this feed. */
static pd_result add_data(pd_sse_parser *p, const char *v, size_t n, int stable)
{
    size_t total = p->has_data ? p->data_len + 1 + n : n;
    if (total > p->max)
        return PD_ERR_TOO_LARGE;
    if (!p->has_data && stable) {
        p->data_ptr = v;
        p->data_len = n;
        p->has_data = 1;
        return PD_OK;
    }
    pd_result rc = PD_OK;
    if (!p->data_owned) {
        pd_buf_reset(&p->data);
        if (p->has_data)
            rc = pd_buf_append(&p->data, p->data_ptr, p->data_len);
        p->data_owned = 1;
    }
    if (!rc && p->has_data)
        rc = pd_buf_append(&p->data, "\n", 1);
    if (!rc)
        rc = pd_buf_append(&p->data, v, n);
    p->has_data = 1;
    p->data_len = total;
    return rc;
}

static pd_result set_name(pd_sse_parser *p, const char *v, size_t n, int stable)
{
    p->name_len = n;
    if (stable) {
        p->name_ptr = v;
        p->name_owned = 0;
        return PD_OK;
    }
    pd_buf_reset(&p->name);
    p->name_owned = 1;
    return pd_buf_append(&p->name, v, n);
}

/* An empty line: hands the event to the callback if it has data, then starts a new one. */
static pd_result dispatch(pd_sse_parser *p, pd_sse_cb cb, void *ud)
{
    int stop = 0;
    if (p->has_data) {
        pd_sse_event ev;
        ev.event = p->name_owned ? p->name.data : p->name_ptr ? p->name_ptr : "";
        ev.event_len = p->name_len;
        ev.data = p->data_owned ? p->data.data : p->data_ptr;
        ev.data_len = p->data_len;
        stop = cb(ud, &ev);
    }
    event_clear(p);
    return stop ? PD_ERR_CLOSED : PD_OK;
}

static int field_is(const char *f, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(f, name, n) == 0;
}

static pd_result process_line(pd_sse_parser *p, const char *s, size_t n, int stable, pd_sse_cb cb,
                              void *ud)
{
    if (n > p->max)
        return PD_ERR_TOO_LARGE;
    if (n == 0)
        return dispatch(p, cb, ud);
    if (s[0] == ':')
        return PD_OK; /* comment / keep-alive */
    p->in_event = 1;
    if (n >= 5 && memcmp(s, "data:", 5) == 0) { /* the usual lines, without the search */
        size_t skip = n > 5 && s[5] == ' ' ? 6 : 5;
        return add_data(p, s + skip, n - skip, stable);
    }
    if (n >= 6 && memcmp(s, "event:", 6) == 0) {
        size_t skip = n > 6 && s[6] == ' ' ? 7 : 6;
        return set_name(p, s + skip, n - skip, stable);
    }
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = n - (size_t)(v - s);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (field_is(s, flen, "data"))
        return add_data(p, v, vlen, stable);
    if (field_is(s, flen, "event"))
        return set_name(p, v, vlen, stable);
    if (field_is(s, flen, "error")) { /* llama-server's non-standard error line, see sse.h */
        pd_result rc = set_name(p, "error", 5, 1);
        return rc ? rc : add_data(p, v, vlen, stable);
    }
    return PD_OK; /* id, retry and unknown fields */
}

/* Copies what the current event points at in the fed bytes into the parser's own buffers. */
static pd_result keep_event(pd_sse_parser *p)
{
    pd_result rc = PD_OK;
    if (p->has_data && !p->data_owned) {
        pd_buf_reset(&p->data);
        rc = pd_buf_append(&p->data, p->data_ptr, p->data_len);
        p->data_owned = 1;
    }
    if (!rc && p->name_ptr && !p->name_owned)
        rc = set_name(p, p->name_ptr, p->name_len, 0);
    return rc;
}

/* Finds the end of the line starting at s: the first CR or LF, NULL when none. One pass for
   both bytes (two memchr calls per line were a visible part of an event's cost), sixteen bytes
   at a time where SSE2 is there (every x86-64). Each byte is looked at once per line, so a
   long stream is scanned in linear time whatever its line ends. */
static const char *find_eol(const char *s, const char *end)
{
#ifdef __SSE2__
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    while (end - s >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, cr), _mm_cmpeq_epi8(x, lf)));
        if (mask)
            return s + __builtin_ctz((unsigned)mask);
        s += 16;
    }
#endif
    for (; s < end; s++) {
        if (*s == '\n' || *s == '\r')
            return s;
    }
    return NULL;
}

static pd_result feed_lines(pd_sse_parser *p, const char *bytes, size_t len, pd_sse_cb cb, void *ud)
{
    const char *s = bytes, *end = bytes + len;
    if (p->skip_lf && s < end) {
        if (*s == '\n')
            s++;
        p->skip_lf = 0;
    }
    pd_result rc;
    while (s < end) {
        const char *eol = find_eol(s, end);
        if (!eol)
            break;
        if (p->line.len) { /* finishes the line the previous feed cut */
            rc = pd_buf_append(&p->line, s, (size_t)(eol - s));
            if (!rc)
                rc = process_line(p, p->line.data, p->line.len, 0, cb, ud);
            pd_buf_reset(&p->line);
        } else {
            rc = process_line(p, s, (size_t)(eol - s), 1, cb, ud);
        }
        if (rc)
            return rc;
        s = eol + 1;
        if (*eol == '\r') {
            if (s == end)
                p->skip_lf = 1;
            else if (*s == '\n')
                s++;
        }
    }
    if (s < end && (rc = pd_buf_append(&p->line, s, (size_t)(end - s))))
        return rc;
    return keep_event(p);
}

pd_result pd_sse_feed(pd_sse_parser *p, const char *bytes, size_t len, pd_sse_cb cb, void *ud)
{
    if (p->failed)
        return PD_ERR_TOO_LARGE;
    pd_result rc = feed_lines(p, bytes, len, cb, ud);
    if (rc == PD_ERR_TOO_LARGE)
        p->failed = 1;
    return rc;
}

/* Length of the line at s (up to the first CR or LF) and of its line end (0, 1 or 2). */
static size_t line_span(const char *s, size_t n, size_t *eol_len)
{
    const char *eol = find_eol(s, s + n);
    size_t i = eol ? (size_t)(eol - s) : n;
    *eol_len = i == n ? 0 : (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
    return i;
}

static pd_result write_lines(pd_buf *out, const char *data, size_t len)
{
    pd_result rc = PD_OK;
    size_t pos = 0;
    do {
        size_t eol_len, n = line_span(data + pos, len - pos, &eol_len);
        rc = pd_buf_append(out, "data: ", 6);
        if (!rc)
            rc = pd_buf_append(out, data + pos, n);
        if (!rc)
            rc = pd_buf_append(out, "\n", 1);
        pos += n + eol_len;
        /* a trailing line end still starts one more (empty) line */
        if (eol_len && pos == len && !rc)
            rc = pd_buf_append(out, "data: \n", 7);
    } while (!rc && pos < len);
    return rc;
}

pd_result pd_sse_write(pd_buf *out, const char *name, const char *data, size_t len)
{
    if (name && strpbrk(name, "\r\n"))
        return PD_ERR_INVALID;
    size_t mark = out->len;
    pd_result rc = PD_OK;
    if (name)
        rc = pd_buf_printf(out, "event: %s\n", name);
    if (!rc)
        rc = write_lines(out, data ? data : "", data ? len : 0);
    if (!rc)
        rc = pd_buf_append(out, "\n", 1);
    if (rc) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}
