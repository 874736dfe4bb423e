/* router.h: which configured models may serve a request, in which order, and why.
 *
 * The decision core of routing, as a library: no I/O, no clock, no upstream call. The relay
 * asks pd_router_plan for an ordered list of candidate targets, tries them in order, and asks
 * pd_route_should_fallback after each failure whether to go on. POST /v1/route/explain prints
 * the same plan (pd_route_plan_explain) without calling anything.
 *
 * Model. A TARGET is a configured model (config.h pd_model_cfg, by name) with the compliance
 * attributes of its provider (pd_target_attrs). A ROUTE is a name clients may send as "model";
 * it has a policy and refers to targets or to other routes (composition: a privacy route whose
 * cloud branch is a tiered route whose top tier is a fallback chain). Planning expands the
 * route tree depth-first into leaves:
 *   fallback     targets in order.
 *   speculative  targets in order; at the top level, plan.race = 2 tells the relay it may start
 *                the first two at once and keep the first good answer.
 *   balance      the route's strategy (pd_balance_strategy) picks the first target from the
 *                per-target load the caller passes in ctx; the rest follow as fallbacks in the
 *                strategy's order (see "Balance" below).
 *   tiered       the complexity score (score.h) picks the first tier with score < below (the
 *                last tier has no bound); then the tiers above it (stronger models can always
 *                answer), then the ones below, nearest first.
 *   privacy      the PII detector reads every text of the request (message text and refusal
 *                parts, reasoning, tool-call arguments, tool results, participant names).
 *                No PII: the cloud branch, then the local branch. PII found, action
 *                local: the local branch only; redact: the cloud branch with placeholders, then
 *                the local branch; block: a 400 that names the entity types, never the values.
 * A model appears at most once (its first place wins); at most PD_ROUTE_MAX_CANDIDATES.
 *
 * Privacy is sticky for the whole plan: once a privacy route on the expansion found PII, EVERY
 * candidate of the plan follows the strictest action seen (block > local > redact), including
 * candidates added by routes around it, so an outer fallback can never carry PII to the cloud.
 * Only local targets (pd_target_attrs.local: providers marked local: true and the embedded
 * engine) count as local; pd_router_new checks that a privacy route's local branch reaches
 * only local targets.
 *
 * Compliance. Required tags (PD_COMPLY_*) come from the request (x-pendulum-compliance, parsed
 * by pd_route_compliance_parse, in ctx) and from each route on the path to a leaf (a route's
 * tags bind its whole subtree). A target that lacks one is dropped; when none is left the plan
 * fails with a 400 (code "compliance_unsatisfied") naming the missing tags: never a silent send.
 * A local target meets every tag (the data stays on the operator's machine).
 *
 * Health. ctx.open[i] != 0 marks target i (pd_router_target_index) as unhealthy: PD_TARGET_OPEN
 * (its circuit breaker is open) and/or PD_TARGET_DOWN (its active health check failed).
 * Unhealthy targets are NOT dropped: they move after every healthy candidate, in their order,
 * with candidate.open set (and candidate.down for a failed health check). So a plan is never empty
 * because of health alone; the relay may skip open candidates or try them last as probes
 * (pd_breaker says when a probe is allowed).
 *
 * Balance. The router stays pure: the caller passes, per target index, the requests it has in
 * flight to that target (ctx.outstanding) and an EWMA of the target's latency (ctx.latency_ewma_ms,
 * 0 = no sample yet), plus ctx.balance_seed (a request counter) and ctx.random (64 random bits).
 * Every strategy starts from the rotation by balance_seed % n and breaks ties by it:
 *   least_outstanding  (default) fewest requests in flight first;
 *   round_robin        the rotation itself;
 *   random             a rotation starting at random % n;
 *   weighted           first target drawn with probability weight / sum(weights) from random,
 *                      the others in rotation order after it;
 *   latency            targets without a sample first (exploration), then lowest EWMA first.
 * A balance target that is itself a route counts with the load of the first target it reaches.
 * Open circuits and down targets still move last (Health), whatever the strategy chose.
 *
 * A name that is not a route but a target gives a plan with that single target (compliance
 * still applies). An unknown name is a 404 (code "model_not_found").
 *
 * Ownership: pd_router_new copies everything it is given (names, arrays), so route and target
 * definitions may be freed afterwards. A plan is a plain embeddable struct without allocation;
 * its strings point into the router and are valid while the router lives.
 * Threads: a router is immutable after _new and shared by every worker without locks;
 * pd_router_plan may run on any thread at once, with that thread's own PII scanner in ctx. */
#ifndef PD_ROUTER_ROUTER_H
#define PD_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon/chat.h"
#include "core/buf.h"
#include "core/result.h"
#include "pii/pii.h"
#include "proto/openai.h"
#include "router/resilience.h"
#include "router/score.h"

#define PD_ROUTE_MAX_CANDIDATES 16
#define PD_ROUTE_MAX_TIERS 8
#define PD_ROUTE_MAX_TARGETS 16 /* targets of one fallback/speculative/balance route */
#define PD_ROUTE_MAX_DEPTH 8    /* nesting of routes in routes */
#define PD_ROUTE_REASON_MAX 512

typedef enum pd_route_policy {
    PD_POLICY_FALLBACK = 0,
    PD_POLICY_TIERED,
    PD_POLICY_PRIVACY,
    PD_POLICY_SPECULATIVE,
    PD_POLICY_BALANCE,
    PD_POLICY_COUNT
} pd_route_policy;

/* "fallback", "tiered", ...; from_name returns -1 for an unknown name. */
const char *pd_route_policy_name(pd_route_policy p);
int pd_route_policy_from_name(const char *name);

typedef enum pd_route_pii {
    PD_ROUTE_PII_LOCAL = 0, /* default: only local targets may see it */
    PD_ROUTE_PII_REDACT,
    PD_ROUTE_PII_BLOCK
} pd_route_pii;

const char *pd_route_pii_name(pd_route_pii a);
int pd_route_pii_from_name(const char *name);

/* How a balance route picks its first target (see "Balance" above). */
typedef enum pd_balance_strategy {
    PD_BALANCE_LEAST_OUTSTANDING = 0, /* the default */
    PD_BALANCE_ROUND_ROBIN,
    PD_BALANCE_RANDOM,
    PD_BALANCE_WEIGHTED,
    PD_BALANCE_LATENCY,
    PD_BALANCE_COUNT
} pd_balance_strategy;

/* "least_outstanding", "round_robin", ...; from_name returns -1 for an unknown name. */
const char *pd_balance_strategy_name(pd_balance_strategy s);
int pd_balance_strategy_from_name(const char *name);

/* ---- fallback triggers -------------------------------------------------------------------- */

/* What kinds of failure move on to the next candidate (protocols.md section 8). A route's
   triggers apply to the candidates it placed (candidate.triggers). */
enum {
    PD_TRIG_CONNECT = 1u << 0, /* connect/reset before any response byte */
    PD_TRIG_TIMEOUT = 1u << 1, /* a timeout before the first byte; HTTP 408 */
    PD_TRIG_RATE_LIMIT =
        1u << 2,              /* 429 (quota variants too: another account may have quota); 409 */
    PD_TRIG_SERVER = 1u << 3, /* 500-599 except 529 */
    PD_TRIG_OVERLOADED = 1u << 4, /* 529 and Anthropic's overloaded_error */
    PD_TRIG_CONTEXT = 1u << 5,    /* context length exceeded: go to a larger-context target */
    PD_TRIG_AUTH = 1u << 6,       /* 401, 402, 403, 404: this provider refuses; another may not */
    PD_TRIG_LOW_CONFIDENCE = 1u << 7, /* the answer's token log-probabilities are below the
                                         route's confidence thresholds (pd_route_resilience) */
    PD_TRIG_ALL = (1u << 8) - 1,
    PD_TRIG_DEFAULT = PD_TRIG_ALL
};
/* Names for config: "connect", "timeout", "rate_limit", "server", "overloaded", "context",
   "auth", "low_confidence"; the bit, or 0 for an unknown name. */
unsigned pd_route_trigger_from_name(const char *name);

typedef enum pd_failure {
    PD_FAIL_CONNECT, /* no response head: connect refused, reset, TLS, DNS */
    PD_FAIL_TIMEOUT, /* a deadline passed before the first response byte */
    PD_FAIL_HTTP     /* the upstream answered with an error status (or, before any byte went to
                        the client, an in-stream error event: pass its type as code) */
} pd_failure;

typedef enum pd_fallback {
    PD_FALLBACK_NO = 0, /* answer the client with this error */
    PD_FALLBACK_RETRY,  /* transient: the same target may be retried (after the upstream's
                           retry-after or a backoff), then the next candidate */
    PD_FALLBACK_NEXT,   /* go to the next candidate; retrying this one will not help */
    PD_FALLBACK_LARGER  /* context exceeded: go to the next candidate with a larger context
                           (pd_route_plan_next) */
} pd_fallback;

const char *pd_fallback_name(pd_fallback f);

/* The decision for one failure under a trigger set. status is the HTTP status (PD_FAIL_HTTP);
   code is the upstream's error.code or error.type (e.g. "insufficient_quota",
   "context_length_exceeded", "overloaded_error") or NULL; message is the upstream's error
   message or NULL (Anthropic reports a long prompt only in words: "prompt is too long").
   400, 413 and 422 never fall back unless they say the context was exceeded: the request
   itself is wrong and would fail everywhere. */
pd_fallback pd_route_should_fallback(unsigned triggers, pd_failure kind, int status,
                                     const char *code, const char *message);

/* ---- compliance --------------------------------------------------------------------------- */

enum {
    PD_COMPLY_LOCAL = 1u << 0, /* served on the operator's machines only */
    PD_COMPLY_HIPAA = 1u << 1, /* the provider signed a HIPAA BAA */
    PD_COMPLY_ZDR = 1u << 2,   /* zero data retention: zdr, or retention_days == 0 */
    PD_COMPLY_EU = 1u << 3,    /* a region "eu" or "eu-*" */
    PD_COMPLY_US = 1u << 4     /* a region "us" or "us-*" */
};

/* Parses a list like "hipaa, eu" (commas and/or spaces; case-insensitive) into *out.
   PD_ERR_INVALID on an unknown tag, with a message naming it (and the known ones) in err. */
pd_result pd_route_compliance_parse(const char *s, unsigned *out, char *err, size_t errlen);
/* Appends the names of the tags in mask, comma-separated ("hipaa,eu"). */
pd_result pd_route_compliance_names(unsigned mask, pd_buf *out);

/* ---- definitions (what the config fills) -------------------------------------------------- */

/* A configured model with its provider's attributes. */
typedef struct pd_target_attrs {
    const char *model;  /* the pd_model_cfg name */
    bool local;         /* provider `local: true`, or the embedded engine */
    int retention_days; /* -1 unknown; 0 none kept */
    bool hipaa_baa;
    bool zdr;
    const char *const *regions; /* e.g. {"eu-west-1", "us"}; may be NULL when n_regions == 0 */
    size_t n_regions;
    uint32_t context_tokens; /* context window; 0 unknown (never "larger") */
} pd_target_attrs;

typedef struct pd_route_tier {
    bool has_below;     /* false only for the last tier (the catch-all) */
    double below;       /* this tier serves score < below; in (0,1], increasing */
    const char *target; /* a target or a route */
} pd_route_tier;

typedef struct pd_route_def {
    const char *name;
    pd_route_policy policy;
    const char *const *targets; /* fallback, speculative, balance: targets or routes, in order */
    size_t n_targets;
    const pd_route_tier *tiers; /* tiered */
    size_t n_tiers;
    const char *local;       /* privacy: the branch for PII (only local targets) */
    const char *cloud;       /* privacy: the branch otherwise */
    pd_route_pii pii_action; /* privacy */
    unsigned triggers;       /* PD_TRIG_* ; 0 means PD_TRIG_DEFAULT */
    unsigned compliance;     /* PD_COMPLY_* every target below must meet */
    pd_route_resilience res;
    pd_balance_strategy strategy; /* balance */
    const double *weights;        /* balance + weighted: one positive weight per target */
    size_t n_weights;
} pd_route_def;

/* ---- the router --------------------------------------------------------------------------- */

typedef struct pd_router pd_router;
typedef struct pd_route pd_route; /* one route inside a router (opaque) */

/* Validates and builds. PD_ERR_INVALID with a message naming the route in err (route 'x': ...)
   for: a duplicate name, a route named like a target, an unknown target or route, an empty
   chain, too many targets or tiers, tiers out of order or without a last catch-all, a privacy
   route without both branches or whose local branch reaches a cloud target, a cycle of routes,
   nesting deeper than PD_ROUTE_MAX_DEPTH, weights on a route that is not balance + weighted,
   a weighted route without exactly one positive, finite weight per target. Also for a target
   without a model name. */
pd_result pd_router_new(const pd_route_def *routes, size_t n_routes, const pd_target_attrs *targets,
                        size_t n_targets, pd_router **out, char *err, size_t errlen);
void pd_router_free(pd_router *r);

/* The route of that name, or NULL. */
const pd_route *pd_router_route(const pd_router *r, const char *name);
/* Index of a target (for ctx.open, ctx.outstanding, ...), or -1. */
int pd_router_target_index(const pd_router *r, const char *model);
size_t pd_router_n_targets(const pd_router *r);
/* The route's trigger set (PD_TRIG_DEFAULT when route is NULL, i.e. a plain model). */
unsigned pd_route_triggers(const pd_route *route);
/* pd_route_should_fallback with the route's triggers. */
pd_fallback pd_router_should_fallback(const pd_route *route, pd_failure kind, int status,
                                      const char *code, const char *message);

/* The cloud target that stands for route_name in an all-cloud setup (the report's "what the
 * same traffic would have cost in the cloud", econ/report.h): the first cloud (not local)
 * target of the route tree in its static order, with no request at hand, so no PII, no score,
 * no health and no load are involved:
 *   fallback, speculative, balance  targets in their listed order (the balance strategy is a
 *                                   per-request choice and is left out);
 *   privacy                         the cloud branch, then the local branch (which by
 *                                   construction reaches only local targets);
 *   tiered                          from the top tier down: the strongest tier an all-cloud
 *                                   setup would send everything to, and if it is local, the
 *                                   strongest tier below it that reaches the cloud.
 * A target that misses the compliance tags of a route on its path is skipped, as planning
 * drops it; tags a request may add are not known here. A plain target name stands for itself.
 *   PD_OK             *out is the target's model name (points into the router), or NULL when
 *                     the route (or the plain target) reaches no cloud target;
 *   PD_ERR_NOT_FOUND  route_name is neither a route nor a target (*out NULL). */
pd_result pd_router_cloud_target(const pd_router *r, const char *route_name, const char **out);

/* ---- planning ----------------------------------------------------------------------------- */

/* ctx.open bits per target. */
enum { PD_TARGET_OPEN = 1u << 0, PD_TARGET_DOWN = 1u << 1 };

typedef struct pd_route_ctx {
    pd_pii_scanner *scanner;   /* this thread's scanner; required when a privacy route is on
                                  the path (NULL there fails closed with a 500) */
    unsigned compliance;       /* PD_COMPLY_* from the request header */
    const unsigned char *open; /* per target index: PD_TARGET_* bits, 0 = healthy; may be NULL */
    size_t n_open;
    /* Balance inputs, per target index; either may be NULL (all 0). */
    const uint32_t *outstanding;   /* requests in flight to the target (the caller's view) */
    const double *latency_ewma_ms; /* the target's latency EWMA; 0 = no sample yet */
    size_t n_load;                 /* entries in outstanding and latency_ewma_ms */
    uint64_t balance_seed;         /* the rotation: balance routes start at seed % n */
    uint64_t random;               /* uniformly random bits, for random and weighted */
    const pd_scorer *scorer; /* NULL: the default heuristic scorer */
} pd_route_ctx;

typedef struct pd_route_candidate {
    const char *model; /* the target's model name (points into the router) */
    const char *via;   /* the route that placed it, or NULL for a plain model */
    int target;        /* its index in the router */
    unsigned triggers; /* of `via` */
    uint32_t context_tokens;
    bool local;
    bool redact; /* replace PII by placeholders before sending (pii/pii.h vault) */
    bool open;   /* open circuit or down: moved to the end */
    bool down;   /* its active health check failed (PD_TARGET_DOWN) */
    const pd_route_resilience *res; /* of `via` (defaults for a plain model); in the router */
} pd_route_candidate;

typedef struct pd_route_plan {
    const char *route;      /* the name asked for (points into the router) */
    pd_route_policy policy; /* of that route; PD_POLICY_FALLBACK for a plain model */
    bool is_route;          /* false: a plain model */
    pd_route_candidate cand[PD_ROUTE_MAX_CANDIDATES];
    size_t n;
    unsigned race; /* > 1: the first `race` candidates may be started at once */
    const pd_route_resilience *res; /* of the route asked for; in the router */
    bool scored;   /* a tiered route was on the path */
    double score;
    pd_score_features features;
    const char *scorer; /* the scorer's name when scored */
    bool pii_scanned;
    uint32_t pii_types;               /* bit (1u << pd_pii_type) per entity type found */
    size_t pii_count;                 /* findings in all texts */
    pd_route_pii pii_action;          /* the strictest action applied when PII was found */
    unsigned compliance;              /* tags required by the request (ctx) */
    size_t dropped;                   /* targets dropped by compliance or privacy */
    const char *balance_route;        /* the first balance route met, or NULL */
    pd_balance_strategy balance_strategy; /* its strategy */
    const char *balance_pick;             /* the target or route it put first */
    char reason[PD_ROUTE_REASON_MAX]; /* e.g. "auto: privacy, EMAIL found -> local (local-chain);
                                          local-chain: fallback 2 targets" */
} pd_route_plan;

/* Plans route_name (a route or a plain target) for req.
 * PD_OK: *out holds 1..PD_ROUTE_MAX_CANDIDATES candidates.
 * Otherwise *err is filled for the client and *out holds what was learnt (reason, PII types):
 *   PD_ERR_NOT_FOUND  404 model_not_found: neither a route nor a target;
 *   PD_ERR_INVALID    400 pii_blocked (a block route found PII; the message names the entity
 *                     types only), 400 compliance_unsatisfied (no target meets the tags; the
 *                     message names the missing ones);
 *   PD_ERR_TOO_LARGE  413: a text is larger than the PII scanner accepts;
 *   PD_ERR_IO         500: a privacy route without a scanner, or the scan failed (fails closed). */
pd_result pd_router_plan(const pd_router *r, const char *route_name, const pd_chat_request *req,
                         const pd_route_ctx *ctx, pd_route_plan *out, pd_api_error *err);

/* The candidate to try after candidate i failed with decision f: i + 1 for RETRY (once the
   retries are spent) and NEXT, the first later candidate with a larger known context window for
   LARGER; p->n when there is none (and for NO). */
size_t pd_route_plan_next(const pd_route_plan *p, size_t i, pd_fallback f);

/* Appends the plan as JSON (POST /v1/route/explain):
   {"route","policy","is_route","candidates":[{"model","via","local","redact","open","down",
    "context_tokens"}],"race","score":null|{"value","scorer","features":{...}},
    "balance":null|{"route","strategy","pick"},
    "pii":{"scanned","types":[..],"count","action"},"compliance":[..],"dropped","reason"}
   PD_ERR_TOO_LARGE when out's limit is reached (out is left as it was). */
pd_result pd_route_plan_explain(const pd_route_plan *p, pd_buf *out);

/* ---- circuit breaker ---------------------------------------------------------------------- */

/* One target's health as seen by ONE worker: closed (traffic flows) -> open after `failures`
 * failures within `window_ms` (fixed window) -> after `cooldown_ms`, half-open: exactly one
 * probe request is let through; its success closes the breaker, its failure opens it again for
 * another cooldown.
 *
 * Threads: a plain struct with no lock and no atomics, by design: each worker keeps its own
 * array of breakers (one per target index) and fills pd_route_ctx.open from it, so the hot path
 * shares nothing between workers. The price: each worker learns an outage on its own (up to
 * workers x failures requests hit a dead target). The clock is passed in (milliseconds from any
 * monotonic clock), so the breaker is testable and never reads time itself.
 * Count as failures only upstream faults (pd_route_should_fallback != PD_FALLBACK_NO), not a
 * client's bad request. */
typedef enum pd_breaker_state {
    PD_BREAKER_CLOSED = 0,
    PD_BREAKER_OPEN,
    PD_BREAKER_HALF_OPEN /* cooldown over; one probe in flight or allowed */
} pd_breaker_state;

typedef struct pd_breaker_params {
    uint32_t failures;    /* default 5 */
    uint64_t window_ms;   /* default 30000 */
    uint64_t cooldown_ms; /* default 30000 */
} pd_breaker_params;

pd_breaker_params pd_breaker_default_params(void);

typedef struct pd_breaker {
    pd_breaker_state state;
    uint32_t failures;     /* in the current window */
    uint64_t window_start; /* ms */
    uint64_t opened_at;    /* ms */
    bool probing;          /* HALF_OPEN: the probe is out */
} pd_breaker;

/* Zero-filled is valid too (closed, no failures). */
void pd_breaker_init(pd_breaker *b);
/* May a request go to this target now? CLOSED: yes. OPEN: no, until the cooldown is over; then
   the breaker turns HALF_OPEN and this call (only this one) says yes: the probe. */
bool pd_breaker_allow(pd_breaker *b, const pd_breaker_params *bp, uint64_t now_ms);
/* What pd_route_ctx.open wants: true when pd_breaker_allow would say no (does not change b). */
bool pd_breaker_is_open(const pd_breaker *b, const pd_breaker_params *bp, uint64_t now_ms);
void pd_breaker_success(pd_breaker *b);
/* The request let through ended without a verdict (its client left): when it was the probe,
   the next request may probe instead. NULL is a no-op. */
void pd_breaker_abandon(pd_breaker *b);
void pd_breaker_failure(pd_breaker *b, const pd_breaker_params *bp, uint64_t now_ms);

#endif
