/* prices.h: what a model costs per token, and what a local target costs to run.
 *
 * The built-in table holds the providers' published list prices in USD per million tokens,
 * dated by pd_prices_as_of(). Config can override any model's prices or add models
 * (pd_prices_new with pd_price_override rows); the result is one immutable pd_prices.
 *
 * Matching a model name (pd_prices_lookup): an exact name wins; otherwise the longest table
 * name that is a prefix of the model name *and* leaves only a snapshot suffix: a date
 * ("-2024-08-06", "-20250514", "@20250514", "-08-2024"), "-latest", or "-0" (the ".0"
 * alias, claude-sonnet-4-0). So gpt-4o-2024-08-06 is gpt-4o, but gpt-4o-realtime-preview
 * and claude-sonnet-4-7 are unknown rather than silently priced as a different model: an
 * unknown price is counted and visible, a wrong one is not.
 *
 * Ownership: the built-in table is static. A pd_prices owns copies of the override model
 * names; a pd_price returned by lookup points into the table it came from (static, or the
 * pd_prices, valid until pd_prices_free).
 * Threads: a pd_prices is immutable after pd_prices_new; any thread may look up concurrently.
 * The module has no global mutable state. */
#ifndef PD_ECON_PRICES_H
#define PD_ECON_PRICES_H

#include <stddef.h>
#include "core/result.h"

/* A price field with this value means "the provider has no separate price for this kind of
   token": cache reads and writes are then billed at the input price. */
#define PD_PRICE_NONE (-1.0)

typedef struct pd_price {
    const char *model;  /* the table's name for the model (not necessarily the name asked for) */
    double input;       /* USD per million uncached input tokens */
    double output;      /* USD per million output tokens, reasoning tokens included */
    double cache_read;  /* USD per million input tokens read from a prompt cache, or NONE */
    double cache_write; /* USD per million input tokens written to a prompt cache, or NONE */
    const char *note;   /* where a figure comes from or is an assumption; NULL when plain */
} pd_price;

/* The date of the built-in table, "YYYY-MM-DD". */
const char *pd_prices_as_of(void);

/* ---- overrides (config `prices:`) ------------------------------------------------------- */

/* An override field with this value keeps the built-in figure. */
#define PD_PRICE_KEEP (-2.0)

/* One model's prices as set in config. A model already in the table gets the fields that are
   not KEEP replaced (NONE removes a cache price); a new model needs input and output, and
   its cache prices default to NONE. The model name is matched exactly against table names
   (an override for gpt-4o also prices gpt-4o-2024-08-06 through the suffix rule). */
typedef struct pd_price_override {
    const char *model; /* borrowed; pd_prices_new copies it */
    double input, output, cache_read, cache_write;
} pd_price_override;

/* Sets every price to KEEP. */
void pd_price_override_init(pd_price_override *o, const char *model);

/* ---- the table ------------------------------------------------------------------------- */

typedef struct pd_prices pd_prices;

/* Builds the built-in table with overrides applied (n may be 0, overrides NULL when n is 0).
   PD_ERR_INVALID, with a message in msg, when an override has an empty or duplicate model
   name, a price that is negative (other than NONE/KEEP) or not finite, or is a new model
   without input or output price; *out is then NULL. The caller owns *out. */
pd_result pd_prices_new(const pd_price_override *overrides, size_t n, pd_prices **out, char *msg,
                        size_t msglen);

struct pd_config; /* config/config.h */
/* The built-in price table with the config's `prices:` overrides, as the gateway builds it.
   PD_ERR_INVALID with a message when an override is refused (pd_prices_new); *out NULL. */
pd_result pd_prices_from_config(const struct pd_config *cfg, pd_prices **out, char *msg, size_t msglen);

/* NULL is a no-op. */
void pd_prices_free(pd_prices *p);

/* Finds the price of a model name (rules at the top). p NULL means the built-in table.
   PD_OK and *out filled, or PD_ERR_NOT_FOUND (unknown price: *out untouched). */
pd_result pd_prices_lookup(const pd_prices *p, const char *model, pd_price *out);

/* The rows in table order (built-in first, then models added by overrides); p NULL means
   the built-in table. pd_prices_at returns NULL when i >= count. */
size_t pd_prices_count(const pd_prices *p);
const pd_price *pd_prices_at(const pd_prices *p, size_t i);

/* ---- local targets --------------------------------------------------------------------- */

/* What a self-hosted target costs. Per month: instances × hardware_usd_per_hour ×
   hours_per_month, plus ops_hours_per_month × ops_usd_per_hour in the first year and
   steady_ops_hours_per_month × ops_usd_per_hour afterwards. One instance serves at most
   requests_per_hour (configured, or measured by the gateway). */
typedef struct pd_local_cost {
    double hardware_usd_per_hour;      /* default 1.006: AWS g5.xlarge (one A10G), on demand */
    double hours_per_month;            /* default 730 = 24 × 365 / 12 */
    double requests_per_hour;          /* per instance; default 800 (Llama 3.1 8B on an A10G) */
    double ops_hours_per_month;        /* first year; default 10 */
    double ops_usd_per_hour;           /* default 150 */
    double steady_ops_hours_per_month; /* after the first year; default 0 */
} pd_local_cost;

/* Fills the defaults above (the worked example in docs/economics.md). */
void pd_local_cost_default(pd_local_cost *m);
/* PD_ERR_INVALID with a message when a field is not finite, negative, hours_per_month is
   0 or above 744 (31 days), or requests_per_hour is not positive. */
pd_result pd_local_cost_check(const pd_local_cost *m, char *msg, size_t msglen);

#endif
