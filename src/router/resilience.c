/* resilience.c: see resilience.h. */
#include "router/resilience.h"

pd_route_resilience pd_route_resilience_default(void)
{
    return (pd_route_resilience){
        .retries = 0, /* as LiteLLM and Portkey: retrying is the operator's choice */
        .backoff_base_ms = 200,
        .backoff_max_ms = 10000,
        .max_attempts = 8,
        .deadline_ms = 0,
        .min_mean_logprob = 1,
        .min_window_logprob = 1,
        .window_tokens = 8,
        .decide_after_tokens = 16,
    };
}

bool pd_route_has_confidence(const pd_route_resilience *res)
{
    return res->min_mean_logprob <= 0 || res->min_window_logprob <= 0;
}

uint64_t pd_route_backoff_ms(const pd_route_resilience *res, uint32_t k, int64_t retry_after_ms,
                             uint64_t rnd)
{
    if (retry_after_ms >= 0)
        return (uint64_t)retry_after_ms;
    uint64_t cap = res->backoff_base_ms;
    for (uint32_t i = 0; i < k && cap < res->backoff_max_ms; i++)
        cap *= 2;
    if (cap > res->backoff_max_ms)
        cap = res->backoff_max_ms;
    /* Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): spreads the
     * retries of many clients that failed together instead of moving the herd in lock step. */
    return cap ? rnd % (cap + 1) : 0;
}

void pd_confidence_init(pd_confidence *c, uint32_t window)
{
    *c = (pd_confidence){0};
    c->window = window < 1 ? 1 : window > PD_CONFIDENCE_MAX_WINDOW ? PD_CONFIDENCE_MAX_WINDOW : window;
}

void pd_confidence_add(pd_confidence *c, double logprob)
{
    uint32_t slot = (uint32_t)(c->n % c->window);
    if (c->n >= c->window)
        c->win_sum -= c->ring[slot];
    c->ring[slot] = logprob;
    c->win_sum += logprob;
    c->sum += logprob;
    c->n++;
    if (c->n >= c->window) {
        double m = c->win_sum / c->window;
        if (c->n == c->window || m < c->min_window)
            c->min_window = m;
    }
}

double pd_confidence_mean(const pd_confidence *c)
{
    return c->n ? c->sum / (double)c->n : 0;
}

double pd_confidence_min_window(const pd_confidence *c)
{
    return c->n >= c->window ? c->min_window : pd_confidence_mean(c);
}

bool pd_confidence_passes(const pd_confidence *c, const pd_route_resilience *res)
{
    if (!c->n)
        return true;
    if (res->min_mean_logprob <= 0 && pd_confidence_mean(c) < res->min_mean_logprob)
        return false;
    return !(res->min_window_logprob <= 0 && pd_confidence_min_window(c) < res->min_window_logprob);
}
