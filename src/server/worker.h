/* worker.h: one worker thread = one libevent loop, its own listening socket on the shared port
 * (SO_REUSEPORT, the kernel spreads connections), its own upstream client and its own
 * connection table. Nothing in a worker is touched by another thread, except the two wake-up
 * events that the main thread fires to begin and force shutdown (libevent's thread-safe
 * event_active).
 *
 * Connections: evhttp owns each client connection; the worker keeps a pd_conn beside it (found by
 * file descriptor) to enforce a deadline for reading a whole request (libevent's own timeout is
 * per read, so a client sending one byte a second would never trip it) and to learn at once when
 * a client goes away while its request waits on the upstream (evhttp does not read then). */
#ifndef PD_SERVER_WORKER_H
#define PD_SERVER_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "econ/prices.h"
#include "engine/engine.h"
#include "ledger/ledger.h"
#include "metrics/metrics.h"
#include "pii/pii.h"
#include "router/router.h"
#include "upstream/client.h"
#include "upstream/health.h"

struct event_base;
struct event;
struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct evhttp_bound_socket;
struct bufferevent;
struct evbuffer_cb_entry;

typedef struct pd_worker pd_worker;

/* Called when the client connection of a request in flight goes away. */
typedef void (*pd_conn_gone_cb)(void *call);

typedef struct pd_conn {
    pd_worker *w;
    struct evhttp_connection *evcon;
    struct bufferevent *bev;
    struct event *deadline;
    int fd;
    int rewriting;                  /* inside on_output_changed's own edit */
    struct evbuffer_cb_entry *output_cb;
    void *call;             /* the request in flight on this connection, or NULL */
    pd_conn_gone_cb on_gone;
} pd_conn;

struct pd_worker {
    int id;
    const pd_config *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    pd_upstream *upstream;
    pd_conn **conns; /* indexed by fd */
    size_t conns_cap;
    size_t inflight; /* requests being served */
    int draining;    /* SIGTERM seen: no new connections, exit when inflight reaches 0 */
    uint64_t seq;    /* request counter, part of request ids */
    uint32_t id_tag; /* random, drawn at start: part of request ids (ingress/dispatch.c) */
    struct event *stop_ev, *force_ev;
    pthread_t thread;
    int listen_fd;
    int log_fd;
    pd_ledger *ledger;        /* shared, thread-safe submit; NULL when off */
    pd_metrics *metrics;      /* shared for scrapes */
    pd_metrics_shard *shard;  /* this worker's counters: updated without a lock */
    const pd_router *router;  /* shared, read-only */
    const pd_prices *prices;  /* shared, read-only: the built-in table with config overrides */
    pd_engine *const *engines; /* per provider index: the embedded engine of a kind llama
                                  provider (thread-safe submit), else NULL */
    pd_pii_scanner *scanner;  /* this worker's PII scratch space */
    const pd_health *health;  /* shared: active health checks (read with relaxed atomics) */
    pd_breaker *breakers;     /* per target (router index), this worker's view of their health */
    unsigned char *open;      /* scratch: which targets are open, for pd_route_ctx */
    /* Balance inputs per target (router index): this worker's own view, so no lock. */
    uint32_t *outstanding;   /* attempts in flight to the target from this worker */
    double *latency_ewma_ms; /* EWMA of the target's time to first byte; 0 = no sample */
    uint64_t rng;            /* xorshift64* state for pd_worker_random; never 0 */
    size_t n_targets;
};

/* Creates a worker bound to cfg's listen address. NULL on failure with a message in err. */
pd_worker *pd_worker_new(int id, const pd_config *cfg, int log_fd, char *err, size_t errlen);
void pd_worker_free(pd_worker *w);
/* Starts the thread running the loop; returns when it is running. */
int pd_worker_start(pd_worker *w);
/* Thread-safe: stop accepting and exit when in-flight requests end (begin) or now (force). */
void pd_worker_stop(pd_worker *w, int force);
void pd_worker_join(pd_worker *w);

/* The connection state of a request (never NULL for a live request). */
pd_conn *pd_worker_conn_of(pd_worker *w, struct evhttp_request *req);
/* A request starts being served on c: its read deadline stops, and on_gone(call) fires if the
 * client disconnects before pd_conn_end. */
void pd_conn_begin(pd_conn *c, void *call, pd_conn_gone_cb on_gone);
/* The request on c is finished (its reply handed to evhttp). */
void pd_conn_end(pd_conn *c);

void pd_worker_call_started(pd_worker *w);
void pd_worker_call_finished(pd_worker *w);

/* ---- per-target load (balance routes, router.h "Balance") ------------------------------------
 * An ATTEMPT (one upstream transfer or one engine job for one target) is counted in flight
 * from pd_worker_target_begin to pd_worker_target_end; the caller pairs them exactly once per
 * attempt, including attempts that end in a fallback and clients that go away. The latency is
 * the attempt's time to first byte (request sent -> response head, or the engine's first event):
 * what a balancer can influence (connection, queueing and, for servers that answer after the
 * prompt is processed, prefill), not the answer's length. A server that sends a stream's head
 * before its first token shows less than its time to first token.
 * It enters an exponentially weighted moving average with alpha PD_WORKER_EWMA_ALPHA (0.3: a
 * replica that slows down dominates the average after about 3 answers, one outlier fades after
 * about 5). Only successful attempts (ok) give a sample: a replica that fails fast must not look
 * fast. A target index out of range is ignored. Worker thread only. */
#define PD_WORKER_EWMA_ALPHA 0.3
void pd_worker_target_begin(pd_worker *w, int target);
void pd_worker_target_end(pd_worker *w, int target, uint64_t latency_us, bool ok);
/* 64 random bits from this worker's generator (seeded per worker; not for secrets). */
uint64_t pd_worker_random(pd_worker *w);

#endif
