/* buf.h: a growable byte buffer that always carries a size cap.
 *
 * Ownership: the pd_buf struct is embeddable (no _new); pd_buf_free releases the bytes and
 * leaves an empty buffer that may be reused. The data is always NUL-terminated (the NUL is not
 * counted in len) so it can be handed to string APIs. Small internal allocations abort on
 * failure (house rule); the cap is what protects against a client that sends too much. */
#ifndef PD_CORE_BUF_H
#define PD_CORE_BUF_H

#include <stddef.h>
#include "core/result.h"

typedef struct pd_buf {
    char *data;
    size_t len;
    size_t cap;    /* allocated bytes */
    size_t limit;  /* the most len may reach; 0 means no limit */
} pd_buf;

void pd_buf_init(pd_buf *b, size_t limit);
/* PD_ERR_TOO_LARGE (and nothing appended) when len + n would pass the limit. */
pd_result pd_buf_append(pd_buf *b, const void *p, size_t n);
pd_result pd_buf_append_str(pd_buf *b, const char *s);
pd_result pd_buf_printf(pd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes (and the NUL) without changing len; PD_ERR_TOO_LARGE (nothing
   changed) when len + n would pass the limit. */
pd_result pd_buf_reserve(pd_buf *b, size_t n);
/* Drops the first n bytes (n <= len), keeping the rest. */
void pd_buf_consume(pd_buf *b, size_t n);
void pd_buf_reset(pd_buf *b);
void pd_buf_free(pd_buf *b);

/* Aborts the process with a message: for small internal allocations only. */
void *pd_xmalloc(size_t n);
void *pd_xcalloc(size_t count, size_t n);
void *pd_xrealloc(void *p, size_t n);
char *pd_xstrdup(const char *s);
char *pd_xstrndup(const char *s, size_t n);

#endif
