/* resilience.h: how hard the relay tries for one request: retries with backoff on the same
 * target, the request's attempt budget and deadline, and the confidence gate on an answer's
 * token log-probabilities (docs/routing.md "Retries, deadline, confidence").
 * Pure arithmetic: no clock, no I/O, no randomness of its own (the caller passes random bits). */
#ifndef PD_ROUTER_RESILIENCE_H
#define PD_ROUTER_RESILIENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How hard the relay tries (docs/routing.md "Retries, deadline, confidence"). A candidate
 * carries the parameters of the route that placed it (candidate.res); the plan carries those of
 * the route asked for (plan.res), which bound the whole request. */
typedef struct pd_route_resilience {
    uint32_t retries;         /* extra attempts on the same target after a RETRY failure */
    uint32_t backoff_base_ms; /* full jitter: wait uniform(0, min(max, base * 2^k)) ... */
    uint32_t backoff_max_ms;  /* ... unless the upstream said Retry-After (then that, if <= max) */
    uint32_t max_attempts;    /* attempts for one request over all its targets */
    uint32_t deadline_ms;     /* no attempt starts later than this after the request; 0 = none */
    double min_mean_logprob;   /* confidence gate: the answer's mean token logprob must be >= */
    double min_window_logprob; /* ... and the lowest mean over any `window` consecutive tokens;
                                  a threshold > 0 is unset; both unset = no gate */
    uint32_t window_tokens;
    uint32_t decide_after_tokens; /* streams: the gate decides after this many tokens */
} pd_route_resilience;

/* retries 0, backoff 200/10000 ms, max_attempts 8, no deadline, no confidence gate, window 8,
   decide after 16 tokens. */
pd_route_resilience pd_route_resilience_default(void);
/* A confidence threshold is set. */
bool pd_route_has_confidence(const pd_route_resilience *res);
/* The wait before retry number k (0-based) of one target: retry_after_ms when >= 0 (the
   upstream's word, not capped here: the caller decides whether to wait that long), else full
   jitter from rnd (a uniform 64-bit random value). */
uint64_t pd_route_backoff_ms(const pd_route_resilience *res, uint32_t k, int64_t retry_after_ms,
                             uint64_t rnd);

/* Confidence of an answer from its tokens' log-probabilities: the mean, and the lowest mean
   over `window` consecutive tokens (the mean itself when there are fewer tokens). */
#define PD_CONFIDENCE_MAX_WINDOW 64

typedef struct pd_confidence {
    double sum;
    size_t n;
    double ring[PD_CONFIDENCE_MAX_WINDOW]; /* the last `window` values */
    uint32_t window;                       /* 1..PD_CONFIDENCE_MAX_WINDOW */
    double win_sum, min_window;
} pd_confidence;

/* window is clamped to 1..PD_CONFIDENCE_MAX_WINDOW. */
void pd_confidence_init(pd_confidence *c, uint32_t window);
void pd_confidence_add(pd_confidence *c, double logprob);
double pd_confidence_mean(const pd_confidence *c);       /* 0 when no token */
double pd_confidence_min_window(const pd_confidence *c); /* 0 when no token */
/* The gate: true when the tokens seen meet res's thresholds (always true without thresholds
   or without tokens: nothing to judge). */
bool pd_confidence_passes(const pd_confidence *c, const pd_route_resilience *res);

#endif
