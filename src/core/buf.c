#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_nomem(size_t n)
{
    fprintf(stderr, "pendulum: out of memory allocating %zu bytes\n", n);
    abort();
}

void *pd_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_nomem(n);
    return p;
}

void *pd_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        die_nomem(count * n);
    return p;
}

void *pd_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die_nomem(n);
    return q;
}

char *pd_xstrdup(const char *s)
{
    return pd_xstrndup(s, strlen(s));
}

char *pd_xstrndup(const char *s, size_t n)
{
    char *p = pd_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void pd_buf_init(pd_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

static pd_result reserve(pd_buf *b, size_t n)
{
    if (b->limit && (n > b->limit || b->len > b->limit - n))
        return PD_ERR_TOO_LARGE;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return PD_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = pd_xrealloc(b->data, cap);
    b->cap = cap;
    return PD_OK;
}

pd_result pd_buf_reserve(pd_buf *b, size_t n)
{
    return reserve(b, n);
}

pd_result pd_buf_append(pd_buf *b, const void *p, size_t n)
{
    pd_result rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return PD_OK;
}

pd_result pd_buf_append_str(pd_buf *b, const char *s)
{
    return pd_buf_append(b, s, strlen(s));
}

pd_result pd_buf_printf(pd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PD_ERR_INVALID;
    pd_result rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return PD_OK;
}

void pd_buf_consume(pd_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

void pd_buf_reset(pd_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void pd_buf_free(pd_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
