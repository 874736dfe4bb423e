/* report.h: what the gateway's traffic cost, read back from the ledger (`pendulum report`, and
 * the live dashboard behind GET /ui/api/dashboard).
 *
 * For a time window it gives, per target and per route: requests, errors, tokens, spend, what
 * the same requests would have cost all in the cloud, the savings, and p50/p99 of time to first
 * token and total time; then the calculator (econ/calc.h) run on the observed traffic.
 *
 * The definitions (docs/dashboard.md has the reasoning):
 *   spend        a cloud request's recorded cost_usd; a local target's request costs
 *                pd_cost_local(params.local) (the amortised hardware price of one request on a
 *                fully used instance). A cloud request whose cost is unknown adds nothing and is
 *                counted in cost_unknown: never a silent $0.
 *   all-cloud    what the same requests would have cost with every route sent to the cloud.
 *                With params.router (the gateway's config): a request to a cloud target at what
 *                it was charged (its spend); a request to a local target at the price of its
 *                route's cloud target (pd_router_cloud_target: the first cloud target in plan
 *                order; for a tiered route the strongest tier's) from its own token counts
 *                (prompt, completion, cached), pd_cost_compute, with params.prices. When the
 *                route reaches no cloud target, is not in the config (the config changed since)
 *                or its cloud target has no price, at params.cloud_model instead.
 *                Without a router every request is priced at params.cloud_model (default
 *                gpt-4o). pd_report_basis counts which way each comparable request went.
 *   savings      all_cloud_usd − spend_usd, both summed over the *comparable* requests only:
 *                those with a spend (known cost, or local) and with both token counts. So a
 *                request the report cannot price on both sides moves neither figure.
 *   percentiles  nearest rank over the requests that have the value (ttft_ms of a request
 *                that sent no token is unknown and left out). Each group keeps at most
 *                PD_REPORT_MAX_SAMPLES values per series; past that a uniform reservoir sample
 *                (deterministic seed) stands for the rest.
 *   calculator   pd_calc_run (the code of `pendulum cost`) on the observed traffic:
 *                requests per month = requests × (730 h) / window, where the window runs from
 *                since_ms (or the first record when since_ms is 0) to until_ms (or the last
 *                record when until_ms is INT64_MAX), at least one second; input and output
 *                tokens per request are the means over requests that report them, and the
 *                cached fraction is cached / prompt tokens over the requests that report a
 *                prompt count. The APIs compared are the price-table models this traffic
 *                used or was priced at (pd_report_api): a cloud target's model (its upstream
 *                model, else its name, as the gateway prices it), a route's cloud target that
 *                priced local requests all-cloud, and cloud_model when requests were priced
 *                at it; most requests first, at most PD_CALC_MAX_APIS (cloud_model alone when
 *                there is none). The self-hosted option is params.local.
 *
 * Ownership: pd_report_new returns a report owned by the caller (pd_report_free; NULL is a
 * no-op). Strings in params are borrowed for the report's life. Threads: one report, one
 * thread; different reports are independent (no global state). pd_report_run reads the
 * ledger synchronously over its own connection (see pd_ledger_each). */
#ifndef PD_ECON_REPORT_H
#define PD_ECON_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/result.h"
#include "econ/calc.h"
#include "econ/prices.h"
#include "ledger/ledger.h"
#include "router/router.h"

typedef struct pd_config pd_config;

#define PD_REPORT_MAX_LOCAL 16       /* local target names */
#define PD_REPORT_MAX_GROUPS 256     /* distinct targets (routes); later ones go to "other" */
#define PD_REPORT_MAX_SAMPLES 100000 /* latency values kept per series of a group */

typedef struct pd_report_params {
    int64_t since_ms;        /* window start, inclusive; 0: from the first record */
    int64_t until_ms;        /* window end, exclusive; INT64_MAX (the default): no end */
    const char *cloud_model; /* the all-cloud reference; default "gpt-4o" */
    const char *local_targets[PD_REPORT_MAX_LOCAL]; /* targets that run locally */
    size_t n_local;
    pd_local_cost local;     /* default pd_local_cost_default() */
    const pd_prices *prices; /* NULL: the built-in table */
    const pd_router *router; /* the gateway's routes (all-cloud per route); NULL: cloud_model */
    const pd_config *config; /* with router: the targets' upstream model names, which are
                                priced first as the gateway does; NULL: names only */
} pd_report_params;

void pd_report_default_params(pd_report_params *p);

/* What a gateway config says: its local targets (models of a provider marked local: true, of
   kind llama or ollama; at most PD_REPORT_MAX_LOCAL) are added to p, and p->config set. The
   router and the prices are the caller's (pd_router_from_config, pd_prices_from_config):
   the gateway has its own. cfg is borrowed for the report's life. */
void pd_report_params_from_config(pd_report_params *p, const pd_config *cfg);

typedef struct pd_report_pct {
    int64_t n;       /* values observed (not only kept) */
    double p50, p99; /* ms; -1 when n is 0 */
} pd_report_pct;

/* How the comparable requests of a group were priced for all-cloud; the fields add up to
   comparable. */
typedef struct pd_report_basis {
    int64_t route_target;    /* a local request at its route's cloud target */
    int64_t charged;         /* a cloud request at what it was charged (router given) */
    int64_t reference;       /* at cloud_model: no router given */
    int64_t no_cloud_target; /* at cloud_model: the route reaches no cloud target */
    int64_t unknown_route;   /* at cloud_model: the route is not in the config, or unrecorded */
    int64_t unpriced_target; /* at cloud_model: the route's cloud target has no price */
} pd_report_basis;

typedef struct pd_report_group {
    char name[PD_LEDGER_MODEL_MAX]; /* the target or route; "none" when the record has none */
    bool local;                     /* a local target (for a route: every request went local) */
    int64_t requests;
    int64_t errors;                           /* status >= 400 */
    int64_t prompt_tokens, completion_tokens; /* sums of the known counts */
    int64_t cost_known;                       /* requests with a spend (known cost, or local) */
    int64_t cost_unknown;                     /* cloud requests whose cost is unknown */
    double spend_usd;                         /* every request with a spend */
    int64_t comparable;                       /* requests with a spend and both token counts */
    double comparable_spend_usd;
    double all_cloud_usd; /* the comparable requests priced all-cloud (see above) */
    double savings_usd;   /* all_cloud_usd − comparable_spend_usd */
    pd_report_basis basis;
    /* Routes only, with a router: the route's cloud target, or "" (none, or not in the config). */
    char cloud_target[PD_LEDGER_MODEL_MAX];
    pd_report_pct ttft_ms, total_ms;
} pd_report_group;

/* One API option of the calculator on the observed traffic: a price-table model, and how
   many requests of the window brought it into the comparison. */
typedef struct pd_report_api {
    char model[PD_LEDGER_MODEL_MAX]; /* the price table's name for it */
    int64_t served;                  /* cloud requests served by a target priced as this model */
    int64_t priced;    /* local requests priced all-cloud at it, their route's cloud target */
    int64_t reference; /* requests priced all-cloud at it as the reference model */
} pd_report_api;

/* What the calculator was run on: the window, its scaling to a month and the means. */
typedef struct pd_report_observed {
    int64_t from_ms, to_ms;         /* the window used for the scaling */
    bool from_first, to_last;       /* from the first / last record (no since_ms / until_ms) */
    double hours;                   /* (to_ms − from_ms) in hours, at least 1 s */
    int64_t requests;               /* in the window */
    double scale;                   /* 730 h / hours */
    double monthly_requests;        /* requests × scale */
    double monthly_spend_usd;       /* spend × scale */
    int64_t input_n, output_n;      /* requests the token means are over */
    double input_mean, output_mean; /* before rounding to whole tokens for the calculator */
    double cached_fraction;
    pd_report_api apis[PD_CALC_MAX_APIS]; /* the calculator's API options, in its order */
    size_t n_apis;
    size_t apis_left_out; /* models past PD_CALC_MAX_APIS, not compared */
} pd_report_observed;

typedef struct pd_report pd_report;

/* An empty report for p (copied; its strings borrowed). PD_ERR_NOT_FOUND when cloud_model has
   no price, PD_ERR_INVALID when the local cost model fails pd_local_cost_check or
   n_local > PD_REPORT_MAX_LOCAL; msg says why and *out is NULL. */
pd_result pd_report_new(const pd_report_params *p, pd_report **out, char *msg, size_t msglen);
void pd_report_free(pd_report *r);

/* Counts one record (records outside the window are ignored). Usable as a pd_ledger_each_cb
   through pd_report_each_cb (ud is the report). */
void pd_report_add(pd_report *r, const pd_ledger_record *rec);
int pd_report_each_cb(void *ud, const pd_ledger_record *rec);

/* Sorts the samples and computes percentiles, savings and the calculator. Idempotent; records
   added afterwards need another call. */
void pd_report_finish(pd_report *r);

/* new + every ledger row of the window + finish. url NULL or "": pd_ledger_default_url. Errors
   of pd_report_new and of pd_ledger_each (PD_ERR_NOT_FOUND: no ledger there); *out is NULL
   then. */
pd_result pd_report_run(const char *url, const pd_report_params *p, pd_report **out, char *msg,
                        size_t msglen);

/* Read access after pd_report_finish. Groups are sorted by requests, most first (then name). */
const pd_report_group *pd_report_totals(const pd_report *r);
size_t pd_report_n_targets(const pd_report *r);
const pd_report_group *pd_report_target(const pd_report *r, size_t i); /* NULL past the end */
size_t pd_report_n_routes(const pd_report *r);
const pd_report_group *pd_report_route(const pd_report *r, size_t i);
/* The calculator on the observed traffic; NULL when there was no request to extrapolate from
   or pd_calc_run refused (pd_report_calc_error then says why). */
const pd_calc_result *pd_report_calc(const pd_report *r, const pd_calc_params **params);
const char *pd_report_calc_error(const pd_report *r);
/* Requests per month extrapolated from the window (0 without requests). */
double pd_report_monthly_requests(const pd_report *r);
/* The traffic the calculator ran on (zeroed without requests). */
const pd_report_observed *pd_report_observed_traffic(const pd_report *r);

/* The report as JSON (docs/dashboard.md): {"window","cloud_model","all_cloud","totals",
   "targets","routes","calculator","notes"}. Returns a new reference. */
json_t *pd_report_json(const pd_report *r);
/* The human-readable report, appended to out. */
pd_result pd_report_text(const pd_report *r, pd_buf *out);

/* Parses a --since / --until value: relative to now_ms ("90s", "30m", "24h", "7d", "2w"), an
   ISO date "YYYY-MM-DD" (UTC midnight), "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC), or milliseconds
   since the epoch (13 or more digits). PD_ERR_INVALID otherwise. */
pd_result pd_report_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* `pendulum report [options]` (argv[0] is "report"; --help lists them). 0 on success, 1 when
   the ledger cannot be read, 2 on a bad option. */
int pd_report_cli(int argc, char **argv);

#endif
