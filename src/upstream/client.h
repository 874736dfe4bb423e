/* client.h: the upstream HTTP client of one worker.
 *
 * Design: each worker thread owns one pd_upstream: a libcurl multi handle driven by that worker's
 * libevent loop through curl_multi_socket_action (curl tells us which sockets to watch and when
 * its timer fires; libevent tells curl when a socket is ready). Nothing here is shared between
 * workers, so the request path takes no lock. The multi handle keeps the connection cache, so
 * keep-alive connections (and HTTP/2 multiplexing, where the upstream offers it over TLS) are
 * reused across requests of the same worker. Easy handles are pooled and reset, not recreated.
 *
 * Timeouts: connect and total are curl's own; time-to-first-byte and the idle gap between two
 * body chunks are one libevent timer per transfer, re-armed on every chunk.
 *
 * Callbacks: run on the worker's loop thread, never synchronously from pd_upstream_start.
 * on_head fires once when the final response head is complete (1xx heads are skipped), on_body
 * for each piece of body as it arrives, on_done exactly once at the end, unless the transfer was
 * cancelled with pd_transfer_cancel, after which no callback fires. Callbacks may call
 * pd_transfer_cancel on their own transfer. */
#ifndef PD_UPSTREAM_CLIENT_H
#define PD_UPSTREAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "core/result.h"

struct event_base;
struct curl_slist;

typedef struct pd_upstream pd_upstream;
typedef struct pd_transfer pd_transfer;

/* The response head fields a gateway acts on; values are NUL-terminated copies (may be ""). */
typedef struct pd_upstream_head {
    long status;
    char content_type[128];
    char retry_after[64];
    char retry_after_ms[32];
    char request_id[128];
} pd_upstream_head;

/* Timings in microseconds from curl (0 when unknown). */
typedef struct pd_upstream_timing {
    uint64_t dns_us, connect_us, tls_us, ttfb_us, total_us;
} pd_upstream_timing;

typedef struct pd_transfer_cbs {
    void (*on_head)(void *ud, const pd_upstream_head *head);
    /* Return 0 to go on, non-zero to abort the transfer (on_done then reports PD_ERR_CLOSED). */
    int (*on_body)(void *ud, const char *data, size_t len);
    /* rc: PD_OK (complete), PD_ERR_TIMEOUT, PD_ERR_UPSTREAM (connect, reset, protocol), PD_ERR_CLOSED.
     * msg: a short human-readable reason (static or valid only during the call). */
    void (*on_done)(void *ud, pd_result rc, const char *msg, const pd_upstream_timing *timing);
} pd_transfer_cbs;

typedef struct pd_transfer_req {
    char *url;                  /* ownership passes to the transfer */
    struct curl_slist *headers; /* ownership passes to the transfer */
    char *body;                 /* ownership passes to the transfer; sent as the POST body */
    size_t body_len;
    int get; /* non-zero: a GET without a body (health probes); else POST */
    pd_timeouts timeouts;
} pd_transfer_req;

pd_upstream *pd_upstream_new(struct event_base *base);
/* Cancels every live transfer (no callbacks) and frees. NULL is a no-op. */
void pd_upstream_free(pd_upstream *u);

/* Starts a POST (a GET when req->get). The transfer takes req's url, headers and body (they are
 * NULL afterwards), also on error, when nothing was started and no callback will fire. */
pd_result pd_upstream_start(pd_upstream *u, pd_transfer_req *req, const pd_transfer_cbs *cbs,
                            void *ud, pd_transfer **out);
/* Aborts at once (closes the upstream connection so the provider stops generating) and frees
 * the transfer; no callback fires afterwards. */
void pd_transfer_cancel(pd_transfer *t);

/* Process-wide libcurl set-up; call once from main before any thread starts. */
pd_result pd_upstream_global_init(void);
void pd_upstream_global_cleanup(void);

#endif
