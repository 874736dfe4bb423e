/* metrics.h: the gateway's Prometheus metrics (GET /metrics, text exposition format 0.0.4).
 *
 * Design: workers never share a lock or a cache line to count. The registry has one shard per
 * recording thread (pd_metrics_shard_at(m, worker_id)); a shard is written by its one thread
 * with plain relaxed atomic loads and stores (no read-modify-write, so no lock prefix), and a
 * scrape sums every shard. A scrape is therefore not an instant snapshot across series, but
 * each counter only grows between scrapes, and a histogram's _count always equals its +Inf
 * bucket (both are computed from the same bucket reads).
 *
 * Labels are bounded: the first max_routes distinct routes (max_targets targets, max_statuses
 * status codes) get their own label value, in order of first appearance and for the life of
 * the registry; later ones are counted under "other". A NULL or empty route or target is
 * "none". The tables are lock-free (a slot is claimed with one CAS and never changes), so a
 * name seen by two workers at once still gets one value. Values are capped at 127 bytes of
 * valid UTF-8 (bad bytes become '?') and escaped on output.
 *
 * The series:
 *   pendulum_requests_total{route,target,status}   counter
 *   pendulum_tokens_total{target,kind}             counter; kind: prompt, completion, cached
 *                                                  (part of prompt), reasoning (part of completion)
 *   pendulum_cost_usd_total{target}                counter; requests with a known cost
 *   pendulum_cost_unknown_total{target}            counter; billable requests whose cost is unknown
 *   pendulum_ttft_seconds{target}                  histogram; time to first token
 *   pendulum_request_seconds{target}               histogram; total time
 *   pendulum_overhead_seconds                      histogram; gateway overhead (total − upstream)
 *   pendulum_ledger_queue_depth, _queue_capacity   gauges
 *   pendulum_ledger_written_total, _dropped_total, _failed_total   counters
 *   pendulum_target_up{target}                     gauge; 1 up, 0 down, for the targets with an
 *                                                  active health check (upstream/health.h), from
 *                                                  pd_metrics_render_target_up
 * Labelled series appear once they are non-zero; the unlabelled ones always appear.
 *
 * Ownership: pd_metrics_new returns a registry owned by the caller, which owns its shards;
 * pd_metrics_free(NULL) is a no-op. Threads: pd_metrics_observe_request on a shard from one
 * thread at a time (its worker); pd_metrics_set_ledger and pd_metrics_render from any thread,
 * concurrently with everything else. */
#ifndef PD_METRICS_METRICS_H
#define PD_METRICS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

/* The Content-Type of pd_metrics_render's output. */
#define PD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct pd_metrics pd_metrics;
typedef struct pd_metrics_shard pd_metrics_shard;

typedef struct pd_metrics_params {
    unsigned shards;       /* recording threads; default 1, at most 1024 */
    unsigned max_routes;   /* default 32, 1..1024 */
    unsigned max_targets;  /* default 32, 1..1024 */
    unsigned max_statuses; /* default 16, 1..128 */
} pd_metrics_params;

void pd_metrics_default_params(pd_metrics_params *p);

/* NULL when p is out of bounds. p NULL means the defaults. */
pd_metrics *pd_metrics_new(const pd_metrics_params *p);
void pd_metrics_free(pd_metrics *m);

/* Shard i (0 <= i < shards), owned by m; NULL when i is out of range. */
pd_metrics_shard *pd_metrics_shard_at(pd_metrics *m, unsigned i);

/* One finished request. */
typedef struct pd_metrics_request {
    const char *route;  /* NULL or "": "none" */
    const char *target; /* NULL or "": "none" */
    int status;         /* HTTP status sent (499: the client left); outside 0..999: "other" */
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens; /* < 0: unknown,
                                                                                  not counted */
    bool billable;   /* an upstream served it, so it has a cost, known or not */
    double cost_usd; /* billable only; < 0 or NaN: unknown (pendulum_cost_unknown_total) */
    double ttft_s, total_s, overhead_s; /* < 0 or NaN: not observed */
} pd_metrics_request;

/* Strings NULL, status 0, not billable, every number unknown. */
void pd_metrics_request_init(pd_metrics_request *r);

/* Counts r in shard s (the calling worker's). s NULL is a no-op. Allocates only the first
   time a label value is seen. */
void pd_metrics_observe_request(pd_metrics_shard *s, const pd_metrics_request *r);

/* The ledger's counters (pd_ledger_get_stats), shown as the pendulum_ledger_* series; set them
   just before rendering. Until set they are 0. */
typedef struct pd_metrics_ledger {
    uint64_t depth, capacity, written, dropped, failed, batches, catchups;
} pd_metrics_ledger;

void pd_metrics_set_ledger(pd_metrics *m, const pd_metrics_ledger *l);

/* Appends the exposition text to out. PD_ERR_TOO_LARGE when out's limit is reached (out then
   holds a truncated text that must not be served). */
pd_result pd_metrics_render(const pd_metrics *m, pd_buf *out);

/* One target's active health check: the pendulum_target_up gauge. */
typedef struct pd_metrics_target_up {
    const char *target; /* cleaned and escaped like every label; NULL or "": "none" */
    bool up;
} pd_metrics_target_up;

/* Appends the pendulum_target_up family (HELP, TYPE, one sample per row) to out, after
   pd_metrics_render. PD_ERR_TOO_LARGE as for pd_metrics_render. Any thread; no state. */
pd_result pd_metrics_render_target_up(const pd_metrics_target_up *rows, size_t n, pd_buf *out);

#endif
