/* prices.c: the built-in price table, overrides and model-name matching.
 *
 * Why a suffix rule and not a bare longest prefix: providers publish dated snapshots of a
 * model under the model's name plus a date, but they also publish *different* models whose
 * names extend an older one (gpt-4o-realtime-preview costs twice gpt-4o; claude-opus-4-5
 * costs a third of claude-opus-4). A bare prefix match would price those silently and
 * wrongly; the suffix rule leaves them unknown, which the gateway counts and reports. */
#include "econ/prices.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"

#define AS_OF "2026-11-01"
#define NONE PD_PRICE_NONE

/* Notes shared by many rows. */
#define N_OPENAI "OpenAI bills cache writes at the input price"
#define N_ANTHROPIC "cache read 0.1x input, cache write 1.25x input (5-minute cache; 1-hour is 2x)"
#define N_LONG_CTX "; prompts over 200k tokens cost more (not modelled)"

/* USD per million tokens: input, output, cache read, cache write. gpt-4o, gpt-4o-mini,
   claude-sonnet-4, claude-3-5-haiku, command-r-plus and command-r input/output are the figures
   issue 6 specifies; the other figures are the providers' published list prices as known when
   the table was compiled. docs/economics.md says which are assumptions and how to override. */
static const pd_price builtin[] = {
    /* OpenAI */
    {"gpt-4o", 2.50, 10.00, 1.25, NONE, N_OPENAI},
    {"gpt-4o-2024-05-13", 5.00, 15.00, NONE, NONE, "first gpt-4o snapshot: higher price, no cache"},
    {"gpt-4o-mini", 0.15, 0.60, 0.075, NONE, N_OPENAI},
    {"gpt-4.1", 2.00, 8.00, 0.50, NONE, N_OPENAI},
    {"gpt-4.1-mini", 0.40, 1.60, 0.10, NONE, N_OPENAI},
    {"gpt-4.1-nano", 0.10, 0.40, 0.025, NONE, N_OPENAI},
    {"gpt-5", 1.25, 10.00, 0.125, NONE, N_OPENAI},
    {"gpt-5-mini", 0.25, 2.00, 0.025, NONE, N_OPENAI},
    {"gpt-5-nano", 0.05, 0.40, 0.005, NONE, N_OPENAI},
    {"o1", 15.00, 60.00, 7.50, NONE, N_OPENAI},
    {"o1-mini", 1.10, 4.40, 0.55, NONE, N_OPENAI},
    {"o3", 2.00, 8.00, 0.50, NONE, N_OPENAI},
    {"o3-mini", 1.10, 4.40, 0.55, NONE, N_OPENAI},
    {"o4-mini", 1.10, 4.40, 0.275, NONE, N_OPENAI},
    /* Anthropic */
    {"claude-opus-4", 15.00, 75.00, 1.50, 18.75, N_ANTHROPIC},
    {"claude-opus-4-1", 15.00, 75.00, 1.50, 18.75, N_ANTHROPIC},
    {"claude-opus-4-5", 5.00, 25.00, 0.50, 6.25, N_ANTHROPIC},
    {"claude-sonnet-4", 3.00, 15.00, 0.30, 3.75, N_ANTHROPIC N_LONG_CTX},
    {"claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75, N_ANTHROPIC N_LONG_CTX},
    {"claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25, N_ANTHROPIC},
    {"claude-3-7-sonnet", 3.00, 15.00, 0.30, 3.75, N_ANTHROPIC},
    {"claude-3-5-sonnet", 3.00, 15.00, 0.30, 3.75, N_ANTHROPIC},
    {"claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00, N_ANTHROPIC},
    {"claude-3-opus", 15.00, 75.00, 1.50, 18.75, N_ANTHROPIC},
    {"claude-3-haiku", 0.25, 1.25, 0.03, 0.30, N_ANTHROPIC},
    /* Cohere: no prompt caching */
    {"command-r-plus", 2.50, 10.00, NONE, NONE, "the 08-2024 model; no prompt caching"},
    {"command-r-plus-04-2024", 3.00, 15.00, NONE, NONE,
     "first command-r-plus (04-2024): higher price"},
    {"command-r", 0.15, 0.60, NONE, NONE, "the 08-2024 model; no prompt caching"},
    {"command-r-03-2024", 0.50, 1.50, NONE, NONE, "first command-r (03-2024): higher price"},
    {"command-a", 2.50, 10.00, NONE, NONE, "no prompt caching"},
    {"command-r7b", 0.0375, 0.15, NONE, NONE, "no prompt caching"},
};
#define N_BUILTIN (sizeof(builtin) / sizeof(builtin[0]))

/* What may follow a table name and still name the same model. 'D' matches one digit, every
   other character itself; the whole rest of the name must match one pattern. */
static const char *const snapshot_suffixes[] = {
    "-DDDD-DD-DD", /* OpenAI: gpt-4o-2024-08-06 */
    "-DDDDDDDD",   /* Anthropic: claude-sonnet-4-20250514 */
    "@DDDDDDDD",   /* Vertex AI: claude-sonnet-4@20250514 */
    "-DD-DDDD",    /* Cohere: command-r-08-2024 */
    "-0",          /* Anthropic's ".0" alias: claude-sonnet-4-0 */
    "-latest",     /* claude-3-5-haiku-latest */
};

struct pd_prices {
    pd_price *rows;
    size_t n;
    char **names; /* model names this table owns (rows added by overrides) */
    size_t n_names;
};

const char *pd_prices_as_of(void)
{
    return AS_OF;
}

void pd_price_override_init(pd_price_override *o, const char *model)
{
    o->model = model;
    o->input = o->output = o->cache_read = o->cache_write = PD_PRICE_KEEP;
}

/* ---- matching -------------------------------------------------------------------------- */

static bool matches_pattern(const char *s, const char *pat)
{
    for (; *pat; s++, pat++) {
        if (*pat == 'D' ? !(*s >= '0' && *s <= '9') : *s != *pat)
            return false;
    }
    return *s == '\0';
}

static bool is_snapshot_suffix(const char *rest)
{
    for (size_t i = 0; i < sizeof(snapshot_suffixes) / sizeof(snapshot_suffixes[0]); i++)
        if (matches_pattern(rest, snapshot_suffixes[i]))
            return true;
    return false;
}

static const pd_price *find(const pd_price *rows, size_t n, const char *model)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].model, model))
            return &rows[i];
    const pd_price *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(rows[i].model);
        if (len > best_len && !strncmp(rows[i].model, model, len) &&
            is_snapshot_suffix(model + len)) {
            best = &rows[i];
            best_len = len;
        }
    }
    return best;
}

static const pd_price *rows_of(const pd_prices *p, size_t *n)
{
    *n = p ? p->n : N_BUILTIN;
    return p ? p->rows : builtin;
}

pd_result pd_prices_lookup(const pd_prices *p, const char *model, pd_price *out)
{
    size_t n;
    const pd_price *rows = rows_of(p, &n);
    const pd_price *hit = model ? find(rows, n, model) : NULL;
    if (!hit)
        return PD_ERR_NOT_FOUND;
    *out = *hit;
    return PD_OK;
}

size_t pd_prices_count(const pd_prices *p)
{
    return p ? p->n : N_BUILTIN;
}

const pd_price *pd_prices_at(const pd_prices *p, size_t i)
{
    size_t n;
    const pd_price *rows = rows_of(p, &n);
    return i < n ? &rows[i] : NULL;
}

/* ---- overrides ------------------------------------------------------------------------- */

static bool valid_field(double v)
{
    return v == PD_PRICE_KEEP || v == PD_PRICE_NONE || (isfinite(v) && v >= 0);
}

static pd_result check_override(const pd_price_override *o, const pd_price_override *all,
                                size_t index, char *msg, size_t msglen)
{
    if (!o->model || !o->model[0]) {
        snprintf(msg, msglen, "prices[%zu]: the model name is empty", index);
        return PD_ERR_INVALID;
    }
    for (size_t j = 0; j < index; j++) {
        if (!strcmp(all[j].model, o->model)) {
            snprintf(msg, msglen, "prices: %s is given twice", o->model);
            return PD_ERR_INVALID;
        }
    }
    if (!valid_field(o->input) || !valid_field(o->output) || !valid_field(o->cache_read) ||
        !valid_field(o->cache_write) || o->input == PD_PRICE_NONE || o->output == PD_PRICE_NONE) {
        snprintf(msg, msglen, "prices: %s: a price must be a number >= 0", o->model);
        return PD_ERR_INVALID;
    }
    return PD_OK;
}

static double apply_field(double old, double v)
{
    return v == PD_PRICE_KEEP ? old : v;
}

static void apply(pd_price *row, const pd_price_override *o)
{
    row->input = apply_field(row->input, o->input);
    row->output = apply_field(row->output, o->output);
    row->cache_read = apply_field(row->cache_read, o->cache_read);
    row->cache_write = apply_field(row->cache_write, o->cache_write);
    row->note = "set in config";
}

/* Adds a row for a model the built-in table does not have. */
static pd_result add_row(pd_prices *p, const pd_price_override *o, char *msg, size_t msglen)
{
    if (o->input == PD_PRICE_KEEP || o->output == PD_PRICE_KEEP) {
        snprintf(msg, msglen,
                 "prices: %s is not in the built-in table, so it needs both an "
                 "input and an output price",
                 o->model);
        return PD_ERR_INVALID;
    }
    char *name = pd_xstrdup(o->model);
    p->names[p->n_names++] = name;
    pd_price *row = &p->rows[p->n++];
    *row = (pd_price){name, NONE, NONE, NONE, NONE, NULL};
    apply(row, o);
    return PD_OK;
}

pd_result pd_prices_new(const pd_price_override *overrides, size_t n, pd_prices **out, char *msg,
                        size_t msglen)
{
    pd_prices *p = pd_xcalloc(1, sizeof *p);
    p->rows = pd_xcalloc(N_BUILTIN + n, sizeof *p->rows);
    p->names = pd_xcalloc(n, sizeof *p->names);
    memcpy(p->rows, builtin, sizeof builtin);
    p->n = N_BUILTIN;
    pd_result rc = PD_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const pd_price_override *o = &overrides[i];
        rc = check_override(o, overrides, i, msg, msglen);
        if (rc)
            break;
        pd_price *row = NULL;
        for (size_t j = 0; j < N_BUILTIN && !row; j++)
            if (!strcmp(p->rows[j].model, o->model))
                row = &p->rows[j];
        if (row)
            apply(row, o);
        else
            rc = add_row(p, o, msg, msglen);
    }
    if (rc) {
        pd_prices_free(p);
        p = NULL;
    }
    *out = p;
    return rc;
}

void pd_prices_free(pd_prices *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_names; i++)
        free(p->names[i]);
    free(p->names);
    free(p->rows);
    free(p);
}

/* ---- local targets --------------------------------------------------------------------- */

void pd_local_cost_default(pd_local_cost *m)
{
    m->hardware_usd_per_hour = 1.006;
    m->hours_per_month = 730;
    m->requests_per_hour = 800;
    m->ops_hours_per_month = 10;
    m->ops_usd_per_hour = 150;
    m->steady_ops_hours_per_month = 0;
}

static bool nonneg(double v)
{
    return isfinite(v) && v >= 0;
}

pd_result pd_local_cost_check(const pd_local_cost *m, char *msg, size_t msglen)
{
    if (!nonneg(m->hardware_usd_per_hour) || !nonneg(m->ops_hours_per_month) ||
        !nonneg(m->ops_usd_per_hour) || !nonneg(m->steady_ops_hours_per_month)) {
        snprintf(msg, msglen, "local cost: prices and hours must be numbers >= 0");
        return PD_ERR_INVALID;
    }
    if (!(m->hours_per_month > 0 && m->hours_per_month <= 744)) {
        snprintf(msg, msglen, "local cost: hours per month must be above 0 and at most 744");
        return PD_ERR_INVALID;
    }
    if (!(isfinite(m->requests_per_hour) && m->requests_per_hour > 0)) {
        snprintf(msg, msglen, "local cost: requests per hour per instance must be above 0");
        return PD_ERR_INVALID;
    }
    return PD_OK;
}

pd_result pd_prices_from_config(const pd_config *cfg, pd_prices **out, char *msg,
                                       size_t msglen)
{
    pd_price_override *o = pd_xcalloc(cfg->n_prices + 1, sizeof *o);
    for (size_t i = 0; i < cfg->n_prices; i++) {
        const pd_price_cfg *pc = &cfg->prices[i];
        pd_price_override_init(&o[i], pc->model);
        /* a column the config leaves out keeps the built-in price */
        o[i].input = pc->input >= 0 ? pc->input : PD_PRICE_KEEP;
        o[i].output = pc->output >= 0 ? pc->output : PD_PRICE_KEEP;
        o[i].cache_read = pc->cache_read >= 0 ? pc->cache_read : PD_PRICE_KEEP;
        o[i].cache_write = pc->cache_write >= 0 ? pc->cache_write : PD_PRICE_KEEP;
    }
    pd_result rc = pd_prices_new(o, cfg->n_prices, out, msg, msglen);
    free(o);
    return rc;
}
