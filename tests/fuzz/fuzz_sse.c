/* fuzz_sse: arbitrary bytes through the SSE parser. The first three input bytes choose a split
   point and a cap; the rest is the stream. Feeding it whole, split in two at the chosen point,
   and (when short) byte by byte must deliver exactly the same events with the same result. */
#include "proto/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct log {
    pd_buf b;
} log_t;

static int record(void *ud, const pd_sse_event *ev)
{
    log_t *l = ud;
    /* length-prefixed, so that no two different event sequences log the same */
    pd_buf_printf(&l->b, "%zu:", ev->event_len);
    pd_buf_append(&l->b, ev->event, ev->event_len);
    pd_buf_printf(&l->b, "%zu:", ev->data_len);
    pd_buf_append(&l->b, ev->data, ev->data_len);
    /* stop on a magic payload so the PD_ERR_CLOSED path is exercised too */
    return ev->data_len == 4 && memcmp(ev->data, "STOP", 4) == 0;
}

typedef struct outcome {
    pd_buf log;
    pd_result rc;
    int pending;
} outcome;

static void run(const char *s, size_t len, const size_t *cuts, size_t ncuts, size_t max, outcome *o)
{
    pd_sse_parser p;
    log_t l;
    pd_sse_init(&p, max);
    pd_buf_init(&l.b, 0);
    pd_buf_append(&l.b, "", 0);
    pd_result rc = PD_OK;
    size_t pos = 0;
    for (size_t i = 0; i <= ncuts && !rc; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = pd_sse_feed(&p, s + pos, to - pos, record, &l);
        pos = to;
    }
    o->log = l.b;
    o->rc = rc;
    o->pending = rc ? -1 : pd_sse_pending(&p); /* pending is unspecified after an error */
    pd_sse_free(&p);
}

static void same(const outcome *a, const outcome *b)
{
    if (a->rc != b->rc || a->pending != b->pending || a->log.len != b->log.len ||
        memcmp(a->log.data, b->log.data, a->log.len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    size_t cut = len ? ((size_t)data[0] << 8 | data[1]) % (len + 1) : 0;
    size_t max = data[2] ? (size_t)data[2] : 0; /* small caps find cap bugs; 0 = default */
    outcome whole, split;
    run(s, len, NULL, 0, max, &whole);
    run(s, len, &cut, 1, max, &split);
    same(&whole, &split);
    pd_buf_free(&split.log);
    if (len <= 512) {
        size_t cuts[512];
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        outcome bytewise;
        run(s, len, cuts, len, max, &bytewise);
        same(&whole, &bytewise);
        pd_buf_free(&bytewise.log);
    }
    pd_buf_free(&whole.log);
    return 0;
}
