#include "router/from_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static void fill_target(const pd_model_cfg *m, pd_target_attrs *t)
{
    const pd_provider_cfg *p = m->provider;
    t->model = m->name;
    t->local = p->local || p->kind == PD_KIND_LLAMA;
    t->retention_days = p->retention_days;
    t->hipaa_baa = p->hipaa_baa;
    t->zdr = p->zdr;
    t->context_tokens = m->context_tokens;
}

/* strategy: and weights: in the config's own FILE:LINE terms (the router checks them again). */
static pd_result fill_balance(const char *where, const pd_route_cfg *rc, pd_route_def *d, char *err,
                              size_t errlen)
{
    int s =
        rc->strategy ? pd_balance_strategy_from_name(rc->strategy) : PD_BALANCE_LEAST_OUTSTANDING;
    const char *why = NULL;
    if (s < 0)
        why = "unknown strategy (expected least_outstanding, round_robin, random, weighted or "
              "latency)";
    else if (rc->strategy && strcmp(rc->policy, "balance") != 0)
        why = "strategy needs policy balance";
    else if (rc->n_weights && s != PD_BALANCE_WEIGHTED)
        why = "weights need strategy weighted";
    else if (s == PD_BALANCE_WEIGHTED && rc->n_weights != rc->n_targets)
        why = "strategy weighted needs one weight per target";
    if (why) {
        snprintf(err, errlen, "%s:%d: route '%s': %s%s%s%s", where, rc->line, rc->name, why,
                 s < 0 ? ", not '" : "", s < 0 ? rc->strategy : "", s < 0 ? "'" : "");
        return PD_ERR_INVALID;
    }
    d->strategy = (pd_balance_strategy)s;
    d->weights = rc->weights;
    d->n_weights = rc->n_weights;
    return PD_OK;
}

static pd_result fill_route(const pd_config *cfg, const pd_route_cfg *rc, pd_route_def *d,
                            pd_route_tier *tiers, char *err, size_t errlen)
{
    const char *where = cfg->path ? cfg->path : "config";
    int policy = pd_route_policy_from_name(rc->policy);
    int pii = pd_route_pii_from_name(rc->pii_action ? rc->pii_action : "local");
    if (policy < 0 || pii < 0) {
        snprintf(err, errlen, "%s:%d: route '%s': unknown %s '%s'", where, rc->line, rc->name,
                 policy < 0 ? "policy" : "pii action", policy < 0 ? rc->policy : rc->pii_action);
        return PD_ERR_INVALID;
    }
    d->name = rc->name;
    d->policy = (pd_route_policy)policy;
    d->pii_action = (pd_route_pii)pii;
    d->targets = (const char *const *)rc->targets;
    d->n_targets = rc->n_targets;
    d->local = rc->local;
    d->cloud = rc->cloud;
    for (size_t i = 0; i < rc->n_tiers; i++)
        tiers[i] = (pd_route_tier){rc->tiers[i].below > 0, rc->tiers[i].below, rc->tiers[i].target};
    d->tiers = tiers;
    d->n_tiers = rc->n_tiers;
    for (size_t i = 0; i < rc->n_on; i++) {
        unsigned bit = pd_route_trigger_from_name(rc->on[i]);
        if (!bit) {
            snprintf(err, errlen, "%s:%d: route '%s': unknown trigger '%s' in on:", where, rc->line,
                     rc->name, rc->on[i]);
            return PD_ERR_INVALID;
        }
        d->triggers |= bit;
    }
    d->res = (pd_route_resilience){
        .retries = rc->retry_attempts, .backoff_base_ms = rc->retry_base_ms,
        .backoff_max_ms = rc->retry_max_ms, .max_attempts = rc->max_attempts,
        .deadline_ms = rc->deadline_ms, .min_mean_logprob = rc->min_mean_logprob,
        .min_window_logprob = rc->min_window_logprob, .window_tokens = rc->confidence_window,
        .decide_after_tokens = rc->decide_after_tokens,
    };
    if (fill_balance(where, rc, d, err, errlen))
        return PD_ERR_INVALID;
    char why[200];
    if (rc->compliance && pd_route_compliance_parse(rc->compliance, &d->compliance, why, sizeof(why))) {
        snprintf(err, errlen, "%s:%d: route '%s': %s", where, rc->line, rc->name, why);
        return PD_ERR_INVALID;
    }
    return PD_OK;
}

pd_breaker_params pd_breaker_params_from_config(const pd_config *cfg)
{
    if (!cfg || !cfg->breaker_failures)
        return pd_breaker_default_params();
    return (pd_breaker_params){.failures = cfg->breaker_failures,
                               .window_ms = cfg->breaker_window_ms,
                               .cooldown_ms = cfg->breaker_cooldown_ms};
}

pd_result pd_router_from_config(const pd_config *cfg, pd_router **out, char *err, size_t errlen)
{
    pd_target_attrs *targets = pd_xcalloc(cfg->n_models, sizeof(*targets));
    pd_route_def *routes = pd_xcalloc(cfg->n_routes, sizeof(*routes));
    pd_route_tier *tiers = pd_xcalloc(cfg->n_routes * 16 + 1, sizeof(*tiers));
    pd_result rc = PD_OK;
    for (size_t i = 0; i < cfg->n_models; i++)
        fill_target(&cfg->models[i], &targets[i]);
    for (size_t i = 0; i < cfg->n_routes && !rc; i++)
        rc = fill_route(cfg, &cfg->routes[i], &routes[i], tiers + i * 16, err, errlen);
    if (!rc)
        rc = pd_router_new(routes, cfg->n_routes, targets, cfg->n_models, out, err, errlen);
    free(targets);
    free(routes);
    free(tiers);
    return rc;
}
