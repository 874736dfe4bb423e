/* calc.h: the cost calculator behind `pendulum cost`: what a monthly workload costs on each
 * API and self-hosted, where the lines cross, and what the decision tree recommends.
 *
 * The model (docs/economics.md has the worked example and the reasoning):
 *   API         requests × tokens × price; cached input at the cache-read price.
 *   self-hosted instances = max(1, ceil(requests / (requests_per_hour × hours_per_month)));
 *               hardware = instances × hardware_usd_per_hour × hours_per_month;
 *               first year = hardware + ops_hours × ops_usd_per_hour;
 *               steady state = hardware + steady_ops_hours × ops_usd_per_hour.
 *   crossover   per API, the smallest monthly request count at which self-hosting costs no
 *               more than the API (first year and steady state), or PD_CALC_NEVER.
 * Figures are computed in full precision; the text shows monthly totals in whole dollars
 * by rounding to the cent and dropping the cents (pd_calc_whole_dollars), which is how the
 * worked example reads ($1,468.76 -> $1,468).
 *
 * Ownership: parameters and results are plain caller-owned structs; pd_calc_run does not
 * allocate. Strings in pd_calc_params are borrowed and must outlive the result (the result
 * points at them). Pure functions: any thread. */
#ifndef PD_ECON_CALC_H
#define PD_ECON_CALC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/result.h"
#include "econ/prices.h"

#define PD_CALC_MAX_APIS 16
#define PD_CALC_NEVER (-1)

typedef struct pd_calc_params {
    /* the workload */
    int64_t requests;       /* per month; default 1,000,000; 0 .. 10^13 */
    int64_t input_tokens;   /* per request; default 500; 0 .. 10^8 */
    int64_t output_tokens;  /* per request; default 200; 0 .. 10^8 */
    double cached_fraction; /* share of input tokens read from a prompt cache; default 0 */
    /* the options */
    const char *apis[PD_CALC_MAX_APIS]; /* model names (dated names accepted); default
                                           gpt-4o, gpt-4o-mini */
    size_t n_apis;                      /* 1 .. PD_CALC_MAX_APIS */
    pd_local_cost local;                /* default pd_local_cost_default() */
    const char *local_label;            /* default "Llama 3.1 8B on an A10G g5.xlarge" */
    /* the decision tree */
    bool private_data;            /* data that must not leave the network */
    int64_t latency_target_ms;    /* 0: no target */
    int64_t latency_threshold_ms; /* a target under this needs a local model; default 100 */
    double spend_threshold_usd;   /* API spend above this argues for self-hosting; 2000 */
    bool frontier_quality;
    bool multimodal;
    bool no_infra_team;
    double crossover_limit; /* requests per month searched; default 10^10 */
} pd_calc_params;

void pd_calc_default_params(pd_calc_params *p);

typedef struct pd_calc_api {
    const char *name; /* as asked (points at params.apis[i]) */
    pd_price price;   /* the table row it matched */
    double per_request_usd;
    double input_usd;  /* per month: uncached input */
    double cached_usd; /* per month: cached input */
    double output_usd; /* per month */
    double monthly_usd;
} pd_calc_api;

typedef struct pd_calc_local {
    double instance_usd;   /* one instance for a month: hardware_usd_per_hour × hours */
    double capacity;       /* requests one instance serves in a month */
    double load;           /* requests / capacity (1.71 in the worked example) */
    int64_t instances;     /* max(1, ceil(load)) */
    double hardware_usd;   /* instances × instance_usd */
    double ops_usd;        /* first year, per month */
    double steady_ops_usd; /* after the first year, per month */
    double monthly_usd;    /* first year: hardware + ops */
    double steady_state_usd;
} pd_calc_local;

typedef struct pd_calc_crossing {
    int64_t steady_state; /* requests per month, or PD_CALC_NEVER */
    int64_t first_year;
} pd_calc_crossing;

typedef enum pd_calc_choice { PD_CALC_API = 0, PD_CALC_SELF_HOST, PD_CALC_HYBRID } pd_calc_choice;

/* "api", "self-host", "hybrid". */
const char *pd_calc_choice_name(pd_calc_choice c);

/* The decision tree's questions, in the order they are asked. */
typedef enum pd_calc_rule {
    PD_RULE_PRIVATE_DATA = 0,
    PD_RULE_LATENCY,
    PD_RULE_SPEND,
    PD_RULE_QUALITY, /* frontier quality or multimodal input */
    PD_RULE_INFRA_TEAM
} pd_calc_rule;

/* "private-data", "latency", "spend", "quality", "infra-team". */
const char *pd_calc_rule_name(pd_calc_rule r);

#define PD_CALC_MAX_REASONS 5
#define PD_CALC_REASON_MAX 320

typedef struct pd_calc_reason {
    pd_calc_rule rule;
    pd_calc_choice favours; /* PD_CALC_API or PD_CALC_SELF_HOST */
    char text[PD_CALC_REASON_MAX];
} pd_calc_reason;

typedef struct pd_calc_result {
    pd_calc_api apis[PD_CALC_MAX_APIS];
    size_t n_apis;
    pd_calc_local local;
    pd_calc_crossing crossover[PD_CALC_MAX_APIS]; /* one per API, same order */
    pd_calc_choice choice;
    pd_calc_reason reasons[PD_CALC_MAX_REASONS]; /* the rules that spoke, in tree order */
    size_t n_reasons;
} pd_calc_result;

/* Runs the calculator. prices NULL means the built-in table. PD_ERR_INVALID when a parameter
   is out of bounds (see pd_calc_params and pd_local_cost_check; one instance must also serve
   at least one request a month), PD_ERR_NOT_FOUND when an API model has no price; msg then
   says which, and *out is unspecified. */
pd_result pd_calc_run(const pd_calc_params *p, const pd_prices *prices, pd_calc_result *out,
                      char *msg, size_t msglen);

/* The self-hosted monthly cost of a request volume; *instances (if not NULL) gets the count.
   m must pass pd_local_cost_check. */
double pd_calc_local_monthly(const pd_local_cost *m, double requests, bool first_year,
                             int64_t *instances);

/* The smallest whole number of requests per month, 1 .. limit, at which the self-hosted cost
   is at most api_usd_per_request × requests; PD_CALC_NEVER when there is none. Self-hosting
   is a step function, so just past a crossover it can cost more again when one more instance
   is needed; this returns the first point. m must pass pd_local_cost_check and serve at least
   one request a month. */
int64_t pd_calc_crossover(double api_usd_per_request, const pd_local_cost *m, bool first_year,
                          double limit);

/* A monthly figure as the text shows it: rounded to the cent, then the cents dropped
   (1468.76 -> 1468, 194.9999999 -> 195). usd must be >= 0. */
int64_t pd_calc_whole_dollars(double usd);

/* Appends the human-readable report (the worked example's wording) to out. */
pd_result pd_calc_text(const pd_calc_params *p, const pd_calc_result *r, pd_buf *out);

/* The report as JSON: {"as_of","assumptions","options":[...],"crossover":[...],
   "recommendation":{"choice","reasons":[...]}} (docs/economics.md has the fields).
   Returns a new reference. */
json_t *pd_calc_json(const pd_calc_params *p, const pd_calc_result *r);

/* ---- command line (src/econ/cli.c) ------------------------------------------------------- */

/* `pendulum cost [options]` (argv[0] is "cost"; --help lists the options with defaults).
   Prints the report (text, or JSON with --json) to stdout; 0 on success, 2 on a bad option
   or parameter (message on stderr). */
int pd_cost_cli(int argc, char **argv);

/* `pendulum prices [--json] [MODEL...]` (argv[0] is "prices"): the built-in table, or how
   each MODEL name is priced. 0 on success, 1 when a MODEL has no price, 2 on a bad option. */
int pd_prices_cli(int argc, char **argv);

#endif
