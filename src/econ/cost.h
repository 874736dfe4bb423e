/* cost.h: what one request cost, from the usage the upstream reported and a price.
 *
 * The rule (pd_price fields are USD per million tokens):
 *   uncached input = prompt − cached − cache_write   at input
 *   cached         = cached                          at cache_read  (input when NONE)
 *   cache write    = cache_write                     at cache_write (input when NONE)
 *   output         = completion (reasoning included) at output
 * Usage follows pd_chat_usage (canon/chat.h): prompt_tokens counts every input token, cached
 * and cache-written ones included; completion_tokens counts every output token, reasoning
 * included. A stream is costed the same way from its final usage event.
 *
 * A cost is never a silent $0: without a price, or without the prompt or completion count,
 * it is unknown (known false, status says why, the gateway counts it in a metric). An
 * unreported cached or cache-write count (-1) is read as 0, because upstreams that do not
 * report caching (llama.cpp, Cohere) do not bill for it.
 *
 * Pure functions on caller-owned structs: no allocation, any thread. */
#ifndef PD_ECON_COST_H
#define PD_ECON_COST_H

#include <stdbool.h>
#include <stddef.h>

#include "canon/chat.h"
#include "core/result.h"
#include "econ/prices.h"

typedef enum pd_cost_status {
    PD_COST_KNOWN = 0,
    PD_COST_NO_PRICE, /* the model has no price (not in the table, no override) */
    PD_COST_NO_USAGE, /* prompt or completion count not reported */
    PD_COST_BAD_USAGE /* counts that contradict each other (cached + cache_write > prompt,
                         reasoning > completion, or a negative count other than -1) */
} pd_cost_status;

/* "known", "no_price", "no_usage", "bad_usage": stable, for metric labels and the ledger. */
const char *pd_cost_status_name(pd_cost_status s);

typedef struct pd_cost {
    bool known; /* status == PD_COST_KNOWN; every figure below is 0 otherwise */
    pd_cost_status status;
    double usd;             /* the total: input + cached + cache_write + output */
    double input_usd;       /* uncached input */
    double cached_usd;      /* input read from a prompt cache */
    double cache_write_usd; /* input written to a prompt cache */
    double output_usd;      /* output, reasoning included */
    double reasoning_usd;   /* the part of output_usd spent on reasoning (0 when unreported) */
} pd_cost;

/* Costs one request. price NULL means "no price" (status PD_COST_NO_PRICE). */
void pd_cost_compute(const pd_price *price, const pd_chat_usage *usage, pd_cost *out);

/* An API request's price at a self-hosted target, amortised: hardware_usd_per_hour /
   requests_per_hour (one fully used instance; ops time is a monthly cost, not a per-request
   one, and is left out). Only usd is set, the parts stay 0. Unknown (PD_COST_NO_PRICE)
   when the model fails pd_local_cost_check. */
void pd_cost_local(const pd_local_cost *m, pd_cost *out);

/* Longest text pd_cost_header writes, NUL included, for costs below $10^12. */
#define PD_COST_HEADER_MAX 32

/* The x-pendulum-cost-usd header value: "%.6f" in USD (to the millionth of a dollar; the
   ledger keeps the full double) or "unknown". PD_ERR_TOO_LARGE when it does not fit in
   outlen (out then holds "" when outlen > 0). */
pd_result pd_cost_header(const pd_cost *c, char *out, size_t outlen);

#endif
