#include "econ/cost.h"

#include <stdio.h>
#include <string.h>

#define PER_MILLION 1e6

const char *pd_cost_status_name(pd_cost_status s)
{
    switch (s) {
    case PD_COST_KNOWN: return "known";
    case PD_COST_NO_PRICE: return "no_price";
    case PD_COST_NO_USAGE: return "no_usage";
    case PD_COST_BAD_USAGE: return "bad_usage";
    }
    return "unknown";
}

static void set_unknown(pd_cost *out, pd_cost_status why)
{
    memset(out, 0, sizeof *out);
    out->status = why;
}

/* The price of a kind of cache token, or the input price when the provider has none. */
static double or_input(double cache_price, double input)
{
    return cache_price == PD_PRICE_NONE ? input : cache_price;
}

/* An optional part count: -1 (unreported) reads as 0; other negatives are contradictions. */
static bool optional_count(int64_t v, int64_t *out)
{
    if (v < PD_CHAT_COUNT_UNKNOWN)
        return false;
    *out = v < 0 ? 0 : v;
    return true;
}

/* Checks the counts against each other; PD_COST_KNOWN and the parts filled, or why not. */
static pd_cost_status split_usage(const pd_chat_usage *u, int64_t *cached, int64_t *written,
                                  int64_t *reasoning)
{
    if (u->prompt_tokens == PD_CHAT_COUNT_UNKNOWN || u->completion_tokens == PD_CHAT_COUNT_UNKNOWN)
        return PD_COST_NO_USAGE;
    if (u->prompt_tokens < 0 || u->completion_tokens < 0 ||
        !optional_count(u->cached_tokens, cached) ||
        !optional_count(u->cache_write_tokens, written) ||
        !optional_count(u->reasoning_tokens, reasoning))
        return PD_COST_BAD_USAGE;
    if (*cached > u->prompt_tokens || *written > u->prompt_tokens - *cached ||
        *reasoning > u->completion_tokens)
        return PD_COST_BAD_USAGE;
    return PD_COST_KNOWN;
}

void pd_cost_compute(const pd_price *price, const pd_chat_usage *usage, pd_cost *out)
{
    if (!price) {
        set_unknown(out, PD_COST_NO_PRICE);
        return;
    }
    int64_t cached = 0, written = 0, reasoning = 0;
    pd_cost_status st = split_usage(usage, &cached, &written, &reasoning);
    if (st != PD_COST_KNOWN) {
        set_unknown(out, st);
        return;
    }
    int64_t uncached = usage->prompt_tokens - cached - written;
    memset(out, 0, sizeof *out);
    out->known = true;
    out->status = PD_COST_KNOWN;
    out->input_usd = (double)uncached * price->input / PER_MILLION;
    out->cached_usd = (double)cached * or_input(price->cache_read, price->input) / PER_MILLION;
    out->cache_write_usd =
        (double)written * or_input(price->cache_write, price->input) / PER_MILLION;
    out->output_usd = (double)usage->completion_tokens * price->output / PER_MILLION;
    out->reasoning_usd = (double)reasoning * price->output / PER_MILLION;
    out->usd = out->input_usd + out->cached_usd + out->cache_write_usd + out->output_usd;
}

void pd_cost_local(const pd_local_cost *m, pd_cost *out)
{
    char msg[128];
    if (pd_local_cost_check(m, msg, sizeof msg) != PD_OK) {
        set_unknown(out, PD_COST_NO_PRICE);
        return;
    }
    memset(out, 0, sizeof *out);
    out->known = true;
    out->status = PD_COST_KNOWN;
    out->usd = m->hardware_usd_per_hour / m->requests_per_hour;
}

pd_result pd_cost_header(const pd_cost *c, char *out, size_t outlen)
{
    int n = c->known ? snprintf(out, outlen, "%.6f", c->usd) : snprintf(out, outlen, "unknown");
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return PD_ERR_TOO_LARGE;
    }
    return PD_OK;
}
