/* router.c: route validation and planning (see router.h for the model).
 *
 * Design: pd_router_new resolves every name once into refs (route or target index), checks the
 * graph (no cycles, bounded depth, privacy local branches all-local) and keeps the result
 * immutable. Planning is a depth-first expansion of the route tree into a bounded array of
 * leaves, with the two request-wide facts computed lazily and at most once: the complexity score
 * (first tiered route met) and the PII scan (first privacy route met). The filters that must
 * see the whole plan run after the expansion, in this order: privacy (sticky, strictest action),
 * health (open circuits last), the size cap. Compliance is checked per leaf during the
 * expansion because a route's tags bind only its own subtree.
 *
 * Nothing here allocates while planning: the plan, the leaf array and the reason text are
 * fixed-size, so a plan costs the scan and the score, and no more. */
#include "router/router.h"

#include <jansson.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/jsonw.h"

#define MAX_LEAVES (4 * PD_ROUTE_MAX_CANDIDATES)

typedef struct ref {
    bool is_route;
    int idx;
} ref;

typedef struct target {
    char *model;
    bool local, hipaa_baa, zdr;
    int retention_days;
    char **regions;
    size_t n_regions;
    uint32_t context_tokens;
    unsigned meets; /* PD_COMPLY_* this target satisfies, computed once */
} target;

struct pd_route {
    char *name;
    pd_route_policy policy;
    ref refs[PD_ROUTE_MAX_TARGETS]; /* targets; tiers in order; privacy: [0] local, [1] cloud */
    size_t n_refs;
    double below[PD_ROUTE_MAX_TIERS];
    bool has_below[PD_ROUTE_MAX_TIERS];
    pd_route_pii pii_action;
    unsigned triggers, compliance;
    pd_route_resilience res;
    pd_balance_strategy strategy;
    double weights[PD_ROUTE_MAX_TARGETS]; /* weighted */
    double weight_sum;
};

struct pd_router {
    pd_route_resilience defaults; /* of plain models and of routes defined without */
    pd_route *routes;
    size_t n_routes;
    target *targets;
    size_t n_targets;
};

/* ---- names ------------------------------------------------------------------------------ */

static const char *const POLICY_NAMES[PD_POLICY_COUNT] = {"fallback", "tiered", "privacy",
                                                          "speculative", "balance"};
static const char *const PII_ACTION_NAMES[] = {"local", "redact", "block"};
static const char *const STRATEGY_NAMES[PD_BALANCE_COUNT] = {"least_outstanding", "round_robin",
                                                             "random", "weighted", "latency"};

static const struct {
    const char *name;
    unsigned bit;
} TRIGGER_NAMES[] = {
    {"connect", PD_TRIG_CONNECT},
    {"timeout", PD_TRIG_TIMEOUT},
    {"rate_limit", PD_TRIG_RATE_LIMIT},
    {"server", PD_TRIG_SERVER},
    {"overloaded", PD_TRIG_OVERLOADED},
    {"context", PD_TRIG_CONTEXT},
    {"auth", PD_TRIG_AUTH},
    {"low_confidence", PD_TRIG_LOW_CONFIDENCE},
};

static const struct {
    const char *name;
    unsigned bit;
} COMPLY_NAMES[] = {
    {"local", PD_COMPLY_LOCAL}, {"hipaa", PD_COMPLY_HIPAA}, {"zdr", PD_COMPLY_ZDR},
    {"eu", PD_COMPLY_EU},       {"us", PD_COMPLY_US},
};
#define N_COMPLY (sizeof COMPLY_NAMES / sizeof COMPLY_NAMES[0])

const char *pd_route_policy_name(pd_route_policy p)
{
    return (unsigned)p < PD_POLICY_COUNT ? POLICY_NAMES[p] : NULL;
}

int pd_route_policy_from_name(const char *name)
{
    for (int i = 0; name && i < PD_POLICY_COUNT; i++)
        if (strcmp(name, POLICY_NAMES[i]) == 0)
            return i;
    return -1;
}

const char *pd_balance_strategy_name(pd_balance_strategy s)
{
    return (unsigned)s < PD_BALANCE_COUNT ? STRATEGY_NAMES[s] : NULL;
}

int pd_balance_strategy_from_name(const char *name)
{
    for (int i = 0; name && i < PD_BALANCE_COUNT; i++)
        if (strcmp(name, STRATEGY_NAMES[i]) == 0)
            return i;
    return -1;
}

const char *pd_route_pii_name(pd_route_pii a)
{
    return (unsigned)a <= PD_ROUTE_PII_BLOCK ? PII_ACTION_NAMES[a] : NULL;
}

int pd_route_pii_from_name(const char *name)
{
    for (int i = 0; name && i <= PD_ROUTE_PII_BLOCK; i++)
        if (strcmp(name, PII_ACTION_NAMES[i]) == 0)
            return i;
    return -1;
}

unsigned pd_route_trigger_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof TRIGGER_NAMES / sizeof TRIGGER_NAMES[0]; i++)
        if (strcmp(name, TRIGGER_NAMES[i].name) == 0)
            return TRIGGER_NAMES[i].bit;
    return 0;
}

const char *pd_fallback_name(pd_fallback f)
{
    static const char *const N[] = {"no", "retry", "next", "larger"};
    return (unsigned)f <= PD_FALLBACK_LARGER ? N[f] : NULL;
}

/* ---- fallback decision ------------------------------------------------------------------ */

/* First matching row wins. */
static const struct {
    int lo, hi;
    unsigned trigger;
    pd_fallback action;
} STATUS_RULES[] = {
    {408, 408, PD_TRIG_TIMEOUT, PD_FALLBACK_RETRY},
    {409, 409, PD_TRIG_RATE_LIMIT, PD_FALLBACK_RETRY},
    {429, 429, PD_TRIG_RATE_LIMIT, PD_FALLBACK_RETRY},
    {401, 404, PD_TRIG_AUTH, PD_FALLBACK_NEXT},
    {501, 501, PD_TRIG_SERVER, PD_FALLBACK_NEXT}, /* that upstream lacks the feature; another may have it */
    {529, 529, PD_TRIG_OVERLOADED, PD_FALLBACK_RETRY},
    {500, 599, PD_TRIG_SERVER, PD_FALLBACK_RETRY},
};

/* Codes (error.code or error.type) that say the prompt does not fit the model's window. */
static const char *const CONTEXT_CODES[] = {"context_length_exceeded", "exceed_context_size_error",
                                            "context_window_exceeded"};
/* ... and the words that say so when no code does (Anthropic, vLLM, Ollama). */
static const char *const CONTEXT_PHRASES[] = {"maximum context length", "context length",
                                              "context window", "prompt is too long",
                                              "too many tokens"};
/* 429 variants that will not clear by waiting: another provider's account may still serve. */
static const char *const QUOTA_CODES[] = {"insufficient_quota", "billing_hard_limit_reached",
                                          "billing_error", "quota_exceeded"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}
#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof(list[0]))

static bool context_exceeded(int status, const char *code, const char *message)
{
    if (IN_LIST(code, CONTEXT_CODES))
        return true;
    if (status != 400 && status != 413)
        return false;
    for (size_t i = 0; message && i < sizeof CONTEXT_PHRASES / sizeof CONTEXT_PHRASES[0]; i++)
        if (strcasestr(message, CONTEXT_PHRASES[i]))
            return true;
    return false;
}

static pd_fallback gated(unsigned triggers, unsigned bit, pd_fallback action)
{
    return (triggers & bit) ? action : PD_FALLBACK_NO;
}

pd_fallback pd_route_should_fallback(unsigned triggers, pd_failure kind, int status,
                                     const char *code, const char *message)
{
    if (kind == PD_FAIL_CONNECT)
        return gated(triggers, PD_TRIG_CONNECT, PD_FALLBACK_RETRY);
    if (kind == PD_FAIL_TIMEOUT)
        return gated(triggers, PD_TRIG_TIMEOUT, PD_FALLBACK_RETRY);
    if (context_exceeded(status, code, message))
        return gated(triggers, PD_TRIG_CONTEXT, PD_FALLBACK_LARGER);
    if (code && strcmp(code, "overloaded_error") == 0)
        return gated(triggers, PD_TRIG_OVERLOADED, PD_FALLBACK_RETRY);
    if (status == 429 && IN_LIST(code, QUOTA_CODES))
        return gated(triggers, PD_TRIG_RATE_LIMIT, PD_FALLBACK_NEXT);
    for (size_t i = 0; i < sizeof STATUS_RULES / sizeof STATUS_RULES[0]; i++)
        if (status >= STATUS_RULES[i].lo && status <= STATUS_RULES[i].hi)
            return gated(triggers, STATUS_RULES[i].trigger, STATUS_RULES[i].action);
    return PD_FALLBACK_NO;
}

unsigned pd_route_triggers(const pd_route *route)
{
    return route ? route->triggers : PD_TRIG_DEFAULT;
}

pd_fallback pd_router_should_fallback(const pd_route *route, pd_failure kind, int status,
                                      const char *code, const char *message)
{
    return pd_route_should_fallback(pd_route_triggers(route), kind, status, code, message);
}

/* ---- compliance ------------------------------------------------------------------------- */

pd_result pd_route_compliance_parse(const char *s, unsigned *out, char *err, size_t errlen)
{
    *out = 0;
    while (s && *s) {
        size_t skip = strspn(s, ", \t");
        s += skip;
        size_t n = strcspn(s, ", \t");
        if (n == 0)
            break;
        size_t i = 0;
        while (i < N_COMPLY &&
               !(strlen(COMPLY_NAMES[i].name) == n && strncasecmp(s, COMPLY_NAMES[i].name, n) == 0))
            i++;
        if (i == N_COMPLY) {
            snprintf(err, errlen,
                     "unknown compliance tag '%.*s' (known: local, hipaa, zdr, eu, us)",
                     (int)(n > 64 ? 64 : n), s);
            return PD_ERR_INVALID;
        }
        *out |= COMPLY_NAMES[i].bit;
        s += n;
    }
    return PD_OK;
}

/* "hipaa,eu" into out (always NUL-terminated). */
static void comply_text(unsigned mask, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_COMPLY && len + 1 < cap; i++)
        if (mask & COMPLY_NAMES[i].bit) {
            int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", COMPLY_NAMES[i].name);
            len += n > 0 ? (size_t)n : 0;
        }
}

pd_result pd_route_compliance_names(unsigned mask, pd_buf *out)
{
    char text[64];
    comply_text(mask, text, sizeof text);
    return pd_buf_append_str(out, text);
}

static bool region_is(const char *region, const char *zone)
{
    size_t n = strlen(zone);
    return strncasecmp(region, zone, n) == 0 && (region[n] == '\0' || region[n] == '-');
}

/* A local target meets every tag: the data never leaves the operator's machines. */
static unsigned target_meets(const target *t)
{
    if (t->local)
        return ~0u;
    unsigned m = 0;
    if (t->hipaa_baa)
        m |= PD_COMPLY_HIPAA;
    if (t->zdr || t->retention_days == 0)
        m |= PD_COMPLY_ZDR;
    for (size_t i = 0; i < t->n_regions; i++) {
        if (region_is(t->regions[i], "eu"))
            m |= PD_COMPLY_EU;
        if (region_is(t->regions[i], "us"))
            m |= PD_COMPLY_US;
    }
    return m;
}

/* ---- construction ----------------------------------------------------------------------- */

static int find_target(const pd_router *r, const char *name)
{
    for (size_t i = 0; name && i < r->n_targets; i++)
        if (strcmp(r->targets[i].model, name) == 0)
            return (int)i;
    return -1;
}

static int find_route(const pd_router *r, const char *name)
{
    for (size_t i = 0; name && i < r->n_routes; i++)
        if (r->routes[i].name && strcmp(r->routes[i].name, name) == 0)
            return (int)i;
    return -1;
}

static pd_result copy_targets(pd_router *r, const pd_target_attrs *in, size_t n, char *err,
                              size_t errlen)
{
    r->targets = pd_xcalloc(n ? n : 1, sizeof *r->targets);
    for (size_t i = 0; i < n; i++) {
        if (!in[i].model || !in[i].model[0]) {
            snprintf(err, errlen, "targets[%zu]: no model name", i);
            return PD_ERR_INVALID;
        }
        if (find_target(r, in[i].model) >= 0) {
            snprintf(err, errlen, "target '%s': defined twice", in[i].model);
            return PD_ERR_INVALID;
        }
        target *t = &r->targets[r->n_targets++];
        t->model = pd_xstrdup(in[i].model);
        t->local = in[i].local;
        t->hipaa_baa = in[i].hipaa_baa;
        t->zdr = in[i].zdr;
        t->retention_days = in[i].retention_days;
        t->context_tokens = in[i].context_tokens;
        t->regions = pd_xcalloc(in[i].n_regions ? in[i].n_regions : 1, sizeof *t->regions);
        for (size_t j = 0; j < in[i].n_regions; j++)
            t->regions[t->n_regions++] = pd_xstrdup(in[i].regions[j] ? in[i].regions[j] : "");
        t->meets = target_meets(t);
    }
    return PD_OK;
}

static pd_result resolve(const pd_router *r, const pd_route *rt, const char *name, ref *out,
                         char *err, size_t errlen)
{
    int i = find_route(r, name);
    if (i >= 0) {
        *out = (ref){true, i};
        return PD_OK;
    }
    i = find_target(r, name);
    if (i >= 0) {
        *out = (ref){false, i};
        return PD_OK;
    }
    snprintf(err, errlen, "route '%s': unknown target or route '%s'", rt->name,
             name ? name : "(none)");
    return PD_ERR_INVALID;
}

static pd_result resolve_list(const pd_router *r, pd_route *rt, const pd_route_def *d, char *err,
                              size_t errlen)
{
    if (d->n_targets == 0) {
        snprintf(err, errlen, "route '%s': empty targets", rt->name);
        return PD_ERR_INVALID;
    }
    if (d->n_targets > PD_ROUTE_MAX_TARGETS) {
        snprintf(err, errlen, "route '%s': more than %d targets", rt->name, PD_ROUTE_MAX_TARGETS);
        return PD_ERR_INVALID;
    }
    for (size_t i = 0; i < d->n_targets; i++) {
        pd_result rc = resolve(r, rt, d->targets[i], &rt->refs[rt->n_refs++], err, errlen);
        if (rc)
            return rc;
    }
    return PD_OK;
}

static pd_result tier_check(const pd_route *rt, const pd_route_tier *t, size_t i, size_t n,
                            double prev, char *err, size_t errlen)
{
    bool last = i + 1 == n;
    if (last && t->has_below) {
        snprintf(err, errlen, "route '%s': the last tier must have no 'below' (the catch-all)",
                 rt->name);
        return PD_ERR_INVALID;
    }
    if (!last && !t->has_below) {
        snprintf(err, errlen, "route '%s': tier %zu needs 'below'", rt->name, i);
        return PD_ERR_INVALID;
    }
    if (t->has_below && !(t->below > prev && t->below <= 1.0)) {
        snprintf(err, errlen, "route '%s': tier %zu: 'below' must be in (0,1] and increasing",
                 rt->name, i);
        return PD_ERR_INVALID;
    }
    return PD_OK;
}

static pd_result resolve_tiers(const pd_router *r, pd_route *rt, const pd_route_def *d, char *err,
                               size_t errlen)
{
    if (d->n_tiers == 0 || d->n_tiers > PD_ROUTE_MAX_TIERS) {
        snprintf(err, errlen, "route '%s': needs 1 to %d tiers", rt->name, PD_ROUTE_MAX_TIERS);
        return PD_ERR_INVALID;
    }
    double prev = 0;
    for (size_t i = 0; i < d->n_tiers; i++) {
        const pd_route_tier *t = &d->tiers[i];
        pd_result rc = tier_check(rt, t, i, d->n_tiers, prev, err, errlen);
        if (!rc)
            rc = resolve(r, rt, t->target, &rt->refs[rt->n_refs++], err, errlen);
        if (rc)
            return rc;
        rt->has_below[i] = t->has_below;
        rt->below[i] = t->has_below ? t->below : 2.0;
        prev = rt->below[i];
    }
    return PD_OK;
}

static pd_result resolve_privacy(const pd_router *r, pd_route *rt, const pd_route_def *d, char *err,
                                 size_t errlen)
{
    if (!d->local || !d->cloud) {
        snprintf(err, errlen, "route '%s': privacy needs both 'local' and 'cloud'", rt->name);
        return PD_ERR_INVALID;
    }
    if ((unsigned)d->pii_action > PD_ROUTE_PII_BLOCK) {
        snprintf(err, errlen, "route '%s': bad pii action", rt->name);
        return PD_ERR_INVALID;
    }
    pd_result rc = resolve(r, rt, d->local, &rt->refs[0], err, errlen);
    if (!rc)
        rc = resolve(r, rt, d->cloud, &rt->refs[1], err, errlen);
    rt->n_refs = 2;
    return rc;
}

/* Weights belong to weighted balance routes only, one positive finite weight per target. */
static pd_result check_weights(pd_route *rt, const pd_route_def *d, char *err, size_t errlen)
{
    bool weighted = d->policy == PD_POLICY_BALANCE && d->strategy == PD_BALANCE_WEIGHTED;
    if ((unsigned)d->strategy >= PD_BALANCE_COUNT ||
        (d->strategy != PD_BALANCE_LEAST_OUTSTANDING && d->policy != PD_POLICY_BALANCE)) {
        snprintf(err, errlen, "route '%s': a strategy needs policy balance", rt->name);
        return PD_ERR_INVALID;
    }
    if (!weighted && d->n_weights) {
        snprintf(err, errlen, "route '%s': weights need policy balance with strategy weighted",
                 rt->name);
        return PD_ERR_INVALID;
    }
    if (weighted && (d->n_weights != d->n_targets || !d->weights)) {
        snprintf(err, errlen,
                 "route '%s': strategy weighted needs one weight per target (%zu, not %zu)",
                 rt->name, d->n_targets, d->n_weights);
        return PD_ERR_INVALID;
    }
    for (size_t i = 0; weighted && i < d->n_weights && i < PD_ROUTE_MAX_TARGETS; i++) {
        if (!(d->weights[i] > 0 && isfinite(d->weights[i]))) {
            snprintf(err, errlen, "route '%s': weight %zu must be a positive number", rt->name, i);
            return PD_ERR_INVALID;
        }
        rt->weights[i] = d->weights[i];
        rt->weight_sum += d->weights[i];
    }
    rt->strategy = d->strategy;
    return PD_OK;
}

static pd_result build_route(const pd_router *r, pd_route *rt, const pd_route_def *d, char *err,
                             size_t errlen)
{
    rt->policy = d->policy;
    rt->pii_action = d->pii_action;
    rt->triggers = d->triggers ? d->triggers : PD_TRIG_DEFAULT;
    rt->compliance = d->compliance;
    rt->res = d->res.max_attempts ? d->res : r->defaults; /* zero-filled: the defaults */
    pd_result rc = check_weights(rt, d, err, errlen);
    if (rc)
        return rc;
    switch (d->policy) {
    case PD_POLICY_FALLBACK:
    case PD_POLICY_SPECULATIVE:
    case PD_POLICY_BALANCE: return resolve_list(r, rt, d, err, errlen);
    case PD_POLICY_TIERED: return resolve_tiers(r, rt, d, err, errlen);
    case PD_POLICY_PRIVACY: return resolve_privacy(r, rt, d, err, errlen);
    default: snprintf(err, errlen, "route '%s': unknown policy", rt->name); return PD_ERR_INVALID;
    }
}

/* Colours for the cycle search; height is the nesting below a route (1 = only targets). */
enum { WHITE = 0, GREY, BLACK };

static pd_result visit(const pd_router *r, size_t i, unsigned char *colour, int *height, char *err,
                       size_t errlen)
{
    const pd_route *rt = &r->routes[i];
    colour[i] = GREY;
    int h = 1;
    for (size_t k = 0; k < rt->n_refs; k++) {
        if (!rt->refs[k].is_route)
            continue;
        size_t c = (size_t)rt->refs[k].idx;
        if (colour[c] == GREY) {
            snprintf(err, errlen, "route '%s': cycle through route '%s'", rt->name,
                     r->routes[c].name);
            return PD_ERR_INVALID;
        }
        if (colour[c] == WHITE) {
            pd_result rc = visit(r, c, colour, height, err, errlen);
            if (rc)
                return rc;
        }
        if (height[c] + 1 > h)
            h = height[c] + 1;
    }
    if (h > PD_ROUTE_MAX_DEPTH) {
        snprintf(err, errlen, "route '%s': routes nested deeper than %d", rt->name,
                 PD_ROUTE_MAX_DEPTH);
        return PD_ERR_INVALID;
    }
    height[i] = h;
    colour[i] = BLACK;
    return PD_OK;
}

/* The first cloud target reachable from ref, or NULL (the graph is acyclic by now). */
static const char *first_cloud(const pd_router *r, ref x)
{
    if (!x.is_route)
        return r->targets[x.idx].local ? NULL : r->targets[x.idx].model;
    const pd_route *rt = &r->routes[x.idx];
    for (size_t k = 0; k < rt->n_refs; k++) {
        const char *c = first_cloud(r, rt->refs[k]);
        if (c)
            return c;
    }
    return NULL;
}

static pd_result check_graph(const pd_router *r, char *err, size_t errlen)
{
    unsigned char *colour = pd_xcalloc(r->n_routes + 1, 1);
    int *height = pd_xcalloc(r->n_routes + 1, sizeof *height);
    pd_result rc = PD_OK;
    for (size_t i = 0; i < r->n_routes && !rc; i++)
        if (colour[i] == WHITE)
            rc = visit(r, i, colour, height, err, errlen);
    for (size_t i = 0; i < r->n_routes && !rc; i++) {
        const pd_route *rt = &r->routes[i];
        const char *c = rt->policy == PD_POLICY_PRIVACY ? first_cloud(r, rt->refs[0]) : NULL;
        if (c) {
            snprintf(err, errlen, "route '%s': local branch reaches cloud target '%s'", rt->name,
                     c);
            rc = PD_ERR_INVALID;
        }
    }
    free(colour);
    free(height);
    return rc;
}

static pd_result copy_route_names(pd_router *r, const pd_route_def *in, size_t n, char *err,
                                  size_t errlen)
{
    r->routes = pd_xcalloc(n ? n : 1, sizeof *r->routes);
    for (size_t i = 0; i < n; i++) {
        const char *name = in[i].name;
        if (!name || !name[0]) {
            snprintf(err, errlen, "routes[%zu]: no name", i);
            return PD_ERR_INVALID;
        }
        if (find_route(r, name) >= 0 || find_target(r, name) >= 0) {
            snprintf(err, errlen, "route '%s': name already used by a %s", name,
                     find_route(r, name) >= 0 ? "route" : "model");
            return PD_ERR_INVALID;
        }
        r->routes[r->n_routes++].name = pd_xstrdup(name);
    }
    return PD_OK;
}

pd_result pd_router_new(const pd_route_def *routes, size_t n_routes, const pd_target_attrs *targets,
                        size_t n_targets, pd_router **out, char *err, size_t errlen)
{
    *out = NULL;
    pd_router *r = pd_xcalloc(1, sizeof *r);
    r->defaults = pd_route_resilience_default();
    pd_result rc = copy_targets(r, targets, n_targets, err, errlen);
    if (!rc)
        rc = copy_route_names(r, routes, n_routes, err, errlen);
    for (size_t i = 0; i < n_routes && !rc; i++)
        rc = build_route(r, &r->routes[i], &routes[i], err, errlen);
    if (!rc)
        rc = check_graph(r, err, errlen);
    if (rc) {
        pd_router_free(r);
        return rc;
    }
    *out = r;
    return PD_OK;
}

void pd_router_free(pd_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_routes; i++)
        free(r->routes[i].name);
    for (size_t i = 0; i < r->n_targets; i++) {
        free(r->targets[i].model);
        for (size_t j = 0; j < r->targets[i].n_regions; j++)
            free(r->targets[i].regions[j]);
        free(r->targets[i].regions);
    }
    free(r->routes);
    free(r->targets);
    free(r);
}

const pd_route *pd_router_route(const pd_router *r, const char *name)
{
    int i = find_route(r, name);
    return i >= 0 ? &r->routes[i] : NULL;
}

int pd_router_target_index(const pd_router *r, const char *model)
{
    return find_target(r, model);
}

size_t pd_router_n_targets(const pd_router *r)
{
    return r->n_targets;
}

/* ---- the cloud stand-in ----------------------------------------------------------------- */

/* The first cloud target under x that meets required, or -1 (the graph is acyclic and its depth
   bounded by pd_router_new, so the recursion ends). */
static int cloud_under(const pd_router *r, ref x, unsigned required)
{
    if (!x.is_route) {
        const target *t = &r->targets[x.idx];
        return !t->local && !(required & ~t->meets) ? x.idx : -1;
    }
    const pd_route *rt = &r->routes[x.idx];
    required |= rt->compliance;
    int found = -1;
    for (size_t k = 0; found < 0 && k < rt->n_refs; k++) {
        size_t i = k;
        if (rt->policy == PD_POLICY_TIERED)
            i = rt->n_refs - 1 - k; /* the top tier first */
        else if (rt->policy == PD_POLICY_PRIVACY)
            i = 1 - k; /* refs[1] is the cloud branch */
        found = cloud_under(r, rt->refs[i], required);
    }
    return found;
}

pd_result pd_router_cloud_target(const pd_router *r, const char *route_name, const char **out)
{
    *out = NULL;
    int ri = find_route(r, route_name), ti = ri < 0 ? find_target(r, route_name) : -1;
    if (ri < 0 && ti < 0)
        return PD_ERR_NOT_FOUND;
    int t = cloud_under(r, ri >= 0 ? (ref){true, ri} : (ref){false, ti}, 0);
    if (t >= 0)
        *out = r->targets[t].model;
    return PD_OK;
}

/* ---- planning --------------------------------------------------------------------------- */

typedef struct leaf {
    int target;
    int via; /* route index, -1 for a plain model */
} leaf;

typedef struct planner {
    const pd_router *r;
    const pd_chat_request *req;
    const pd_route_ctx *ctx;
    pd_route_plan *p;
    pd_api_error *err;
    leaf leaves[MAX_LEAVES];
    size_t n_leaves;
    unsigned missing; /* compliance tags that made targets drop */
    bool pii_found;   /* a privacy route scanned and found something */
    int pii_rank;     /* strictest action seen: 0 none, 1 redact, 2 local, 3 block */
    size_t reason_len;
} planner;

static void reason_add(planner *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends "; " + the formatted text; silently truncated at PD_ROUTE_REASON_MAX. */
static void reason_add(planner *pl, const char *fmt, ...)
{
    size_t cap = sizeof pl->p->reason;
    if (pl->reason_len + 1 >= cap)
        return;
    char *at = pl->p->reason + pl->reason_len;
    int n = pl->reason_len ? snprintf(at, cap - pl->reason_len, "; ") : 0;
    pl->reason_len += (size_t)n;
    if (pl->reason_len + 1 >= cap) {
        pl->reason_len = cap - 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(pl->p->reason + pl->reason_len, cap - pl->reason_len, fmt, ap);
    va_end(ap);
    pl->reason_len += (size_t)n;
    if (pl->reason_len >= cap)
        pl->reason_len = cap - 1;
}

static const char *ref_name(const pd_router *r, ref x)
{
    return x.is_route ? r->routes[x.idx].name : r->targets[x.idx].model;
}

static void types_text(uint32_t types, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int t = 0; t < PD_PII_TYPE_COUNT && len + 1 < cap; t++)
        if (types & (1u << t)) {
            int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", pd_pii_type_name(t));
            len += n > 0 ? (size_t)n : 0;
        }
}

static void add_leaf(planner *pl, int t, int via, unsigned required)
{
    const target *tg = &pl->r->targets[t];
    unsigned missing = required & ~tg->meets;
    if (missing) {
        pl->missing |= missing;
        pl->p->dropped++;
        char names[64];
        comply_text(missing, names, sizeof names);
        reason_add(pl, "compliance: dropped %s (missing %s)", tg->model, names);
        return;
    }
    for (size_t i = 0; i < pl->n_leaves; i++)
        if (pl->leaves[i].target == t)
            return;
    if (pl->n_leaves < MAX_LEAVES)
        pl->leaves[pl->n_leaves++] = (leaf){t, via};
}

static pd_result expand(planner *pl, ref x, int via, unsigned required);

static void score_once(planner *pl)
{
    if (pl->p->scored)
        return;
    pd_scorer def = pd_score_default();
    const pd_scorer *s = pl->ctx->scorer ? pl->ctx->scorer : &def;
    pl->p->score = pd_score_run(s, pl->req, &pl->p->features);
    pl->p->scorer = s->name;
    pl->p->scored = true;
}

static pd_result expand_tiered(planner *pl, int ri, unsigned required)
{
    const pd_route *rt = &pl->r->routes[ri];
    score_once(pl);
    size_t pick = rt->n_refs - 1;
    for (size_t i = 0; i < rt->n_refs; i++)
        if (rt->has_below[i] && pl->p->score < rt->below[i]) {
            pick = i;
            break;
        }
    if (rt->has_below[pick])
        reason_add(pl, "%s: tiered score %.2f < %.2f -> %s", rt->name, pl->p->score,
                   rt->below[pick], ref_name(pl->r, rt->refs[pick]));
    else
        reason_add(pl, "%s: tiered score %.2f -> %s (top tier)", rt->name, pl->p->score,
                   ref_name(pl->r, rt->refs[pick]));
    pd_result rc = expand(pl, rt->refs[pick], ri, required);
    for (size_t i = pick + 1; !rc && i < rt->n_refs; i++)
        rc = expand(pl, rt->refs[i], ri, required);
    for (size_t i = pick; !rc && i-- > 0;)
        rc = expand(pl, rt->refs[i], ri, required);
    return rc;
}

static pd_result scan_one(planner *pl, const char *text)
{
    if (!text || !text[0])
        return PD_OK;
    const pd_pii_finding *f;
    size_t n;
    pd_result rc = pd_pii_scan(pl->ctx->scanner, text, strlen(text), &f, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        pl->p->pii_types |= 1u << f[i].type;
    pl->p->pii_count += n;
    return PD_OK;
}

/* Tool-call arguments are JSON: a value's escapes (\n before a key, \" around a name) would hide
 * it from patterns that need a boundary, so the decoded strings are scanned too. */
static pd_result scan_json_strings(planner *pl, const json_t *v)
{
    pd_result rc = PD_OK;
    if (json_is_string(v))
        return scan_one(pl, json_string_value(v));
    if (json_is_array(v)) {
        for (size_t i = 0; !rc && i < json_array_size(v); i++)
            rc = scan_json_strings(pl, json_array_get(v, i));
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item) {
            if (!rc)
                rc = scan_one(pl, key);
            if (!rc)
                rc = scan_json_strings(pl, item);
        }
    }
    return rc;
}

static pd_result scan_arguments(planner *pl, const char *text)
{
    pd_result rc = scan_one(pl, text);
    json_t *doc = rc || !text ? NULL : json_loads(text, JSON_DECODE_ANY, NULL);
    if (doc)
        rc = scan_json_strings(pl, doc);
    json_decref(doc);
    return rc;
}

/* Every text the request carries that could reach an upstream. */
static pd_result scan_message(planner *pl, const pd_chat_message *m)
{
    pd_result rc = scan_one(pl, m->name);
    for (size_t j = 0; !rc && j < m->n_parts; j++)
        if (m->parts[j].kind == PD_PART_TEXT || m->parts[j].kind == PD_PART_REFUSAL)
            rc = scan_one(pl, m->parts[j].text);
    for (size_t j = 0; !rc && j < m->n_tool_calls; j++)
        rc = scan_arguments(pl, m->tool_calls[j].arguments);
    if (!rc)
        rc = scan_one(pl, m->refusal);
    if (!rc)
        rc = scan_one(pl, m->reasoning);
    return rc;
}

static pd_result scan_fail(planner *pl, pd_result rc)
{
    if (rc == PD_ERR_TOO_LARGE) {
        pd_openai_error_set(pl->err, 413, NULL, "pii_scan_too_large", NULL,
                            "a message is too large for the PII scan");
        return PD_ERR_TOO_LARGE;
    }
    pd_openai_error_set(pl->err, 500, "server_error", "pii_scan_failed", NULL,
                        "the PII scan failed (%s); the request was not sent", pd_result_str(rc));
    return PD_ERR_IO;
}

static pd_result scan_once(planner *pl)
{
    if (pl->p->pii_scanned)
        return PD_OK;
    if (!pl->ctx->scanner) {
        pd_openai_error_set(pl->err, 500, "server_error", "pii_scan_failed", NULL,
                            "route '%s' needs a PII scanner; the request was not sent",
                            pl->p->route);
        return PD_ERR_IO;
    }
    pd_result rc = PD_OK;
    for (size_t i = 0; !rc && i < pl->req->n_messages; i++)
        rc = scan_message(pl, &pl->req->messages[i]);
    if (rc)
        return scan_fail(pl, rc);
    pl->p->pii_scanned = true;
    pl->pii_found = pl->p->pii_count > 0;
    return PD_OK;
}

static int action_rank(pd_route_pii a)
{
    return a == PD_ROUTE_PII_BLOCK ? 3 : (a == PD_ROUTE_PII_LOCAL ? 2 : 1);
}

static pd_result expand_privacy(planner *pl, int ri, unsigned required)
{
    const pd_route *rt = &pl->r->routes[ri];
    pd_result rc = scan_once(pl);
    if (rc)
        return rc;
    ref local = rt->refs[0], cloud = rt->refs[1];
    if (!pl->pii_found) {
        reason_add(pl, "%s: privacy, no PII -> %s, then %s", rt->name, ref_name(pl->r, cloud),
                   ref_name(pl->r, local));
        rc = expand(pl, cloud, ri, required);
        return rc ? rc : expand(pl, local, ri, required);
    }
    char types[256];
    types_text(pl->p->pii_types, types, sizeof types);
    if (action_rank(rt->pii_action) > pl->pii_rank) {
        pl->pii_rank = action_rank(rt->pii_action);
        pl->p->pii_action = rt->pii_action;
    }
    switch (rt->pii_action) {
    case PD_ROUTE_PII_BLOCK:
        reason_add(pl, "%s: privacy, %s found -> block", rt->name, types);
        return PD_OK; /* the error is raised once the expansion is over */
    case PD_ROUTE_PII_LOCAL:
        reason_add(pl, "%s: privacy, %s found -> local %s", rt->name, types,
                   ref_name(pl->r, local));
        return expand(pl, local, ri, required);
    default:
        reason_add(pl, "%s: privacy, %s found -> redact for %s, then %s", rt->name, types,
                   ref_name(pl->r, cloud), ref_name(pl->r, local));
        rc = expand(pl, cloud, ri, required);
        return rc ? rc : expand(pl, local, ri, required);
    }
}

/* ---- balance ---------------------------------------------------------------------------- */

/* The target whose load a balance entry counts with: itself, or a route's first target. */
static int ref_target(const pd_router *r, ref x)
{
    for (int depth = 0; x.is_route && depth <= PD_ROUTE_MAX_DEPTH; depth++)
        x = r->routes[x.idx].refs[0];
    return x.is_route ? -1 : x.idx;
}

static uint32_t load_outstanding(const pd_route_ctx *ctx, int t)
{
    return ctx->outstanding && t >= 0 && (size_t)t < ctx->n_load ? ctx->outstanding[t] : 0;
}

static double load_latency(const pd_route_ctx *ctx, int t)
{
    double v =
        ctx->latency_ewma_ms && t >= 0 && (size_t)t < ctx->n_load ? ctx->latency_ewma_ms[t] : 0;
    return v > 0 && isfinite(v) ? v : 0;
}

/* The entry drawn with probability weight / sum, from the top 53 bits of ctx.random. */
static size_t weighted_pick(const pd_route *rt, uint64_t random)
{
    double x = (double)(random >> 11) * 0x1.0p-53 * rt->weight_sum;
    for (size_t k = 0; k + 1 < rt->n_refs; k++) {
        if (x < rt->weights[k])
            return k;
        x -= rt->weights[k];
    }
    return rt->n_refs - 1;
}

/* The sort key of entry k for the strategies that compare load (lower goes first). */
static double balance_key(const planner *pl, const pd_route *rt, size_t k)
{
    int t = ref_target(pl->r, rt->refs[k]);
    if (rt->strategy == PD_BALANCE_LEAST_OUTSTANDING)
        return (double)load_outstanding(pl->ctx, t);
    double ms = load_latency(pl->ctx, t);
    return ms > 0 ? ms : -1; /* no sample yet: explore it first */
}

/* order[] = the entries of rt in the strategy's order: the rotation from `start`, then, for the
 * load strategies, a stable insertion sort by key (ties keep the rotation). */
static void balance_order(const planner *pl, const pd_route *rt, size_t *order)
{
    size_t n = rt->n_refs, start = (size_t)(pl->ctx->balance_seed % n);
    if (rt->strategy == PD_BALANCE_RANDOM)
        start = (size_t)(pl->ctx->random % n);
    else if (rt->strategy == PD_BALANCE_WEIGHTED)
        start = weighted_pick(rt, pl->ctx->random);
    double key[PD_ROUTE_MAX_TARGETS];
    bool by_load =
        rt->strategy == PD_BALANCE_LEAST_OUTSTANDING || rt->strategy == PD_BALANCE_LATENCY;
    for (size_t i = 0; i < n; i++) {
        order[i] = (start + i) % n;
        key[i] = by_load ? balance_key(pl, rt, order[i]) : 0;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && key[j] < key[j - 1]; j--) {
            double tk = key[j];
            size_t to = order[j];
            key[j] = key[j - 1];
            order[j] = order[j - 1];
            key[j - 1] = tk;
            order[j - 1] = to;
        }
}

/* "pool: balance least_outstanding -> a (0 in flight, fewest)" and the like. */
static void balance_reason(planner *pl, const pd_route *rt, size_t pick)
{
    const char *name = ref_name(pl->r, rt->refs[pick]);
    const char *how = pd_balance_strategy_name(rt->strategy);
    int t = ref_target(pl->r, rt->refs[pick]);
    double ms = load_latency(pl->ctx, t);
    switch (rt->strategy) {
    case PD_BALANCE_LEAST_OUTSTANDING:
        reason_add(pl, "%s: balance %s -> %s (%u in flight, fewest)", rt->name, how, name,
                   load_outstanding(pl->ctx, t));
        break;
    case PD_BALANCE_WEIGHTED:
        reason_add(pl, "%s: balance %s -> %s (weight %g of %g)", rt->name, how, name,
                   rt->weights[pick], rt->weight_sum);
        break;
    case PD_BALANCE_LATENCY:
        if (ms > 0)
            reason_add(pl, "%s: balance %s -> %s (%.1f ms EWMA, lowest)", rt->name, how, name, ms);
        else
            reason_add(pl, "%s: balance %s -> %s (no latency sample yet, exploring)", rt->name, how,
                       name);
        break;
    default:
        reason_add(pl, "%s: balance %s -> %s (%zu of %zu)", rt->name, how, name, pick + 1,
                   rt->n_refs);
        break;
    }
    if (!pl->p->balance_route) {
        pl->p->balance_route = rt->name;
        pl->p->balance_strategy = rt->strategy;
        pl->p->balance_pick = name;
    }
}

static pd_result expand_list(planner *pl, int ri, unsigned required)
{
    const pd_route *rt = &pl->r->routes[ri];
    size_t order[PD_ROUTE_MAX_TARGETS];
    for (size_t k = 0; k < rt->n_refs; k++)
        order[k] = k;
    if (rt->policy == PD_POLICY_BALANCE) {
        balance_order(pl, rt, order);
        balance_reason(pl, rt, order[0]);
    } else {
        reason_add(pl, "%s: %s %s%s", rt->name, pd_route_policy_name(rt->policy),
                   ref_name(pl->r, rt->refs[0]), rt->n_refs > 1 ? ", ..." : "");
    }
    pd_result rc = PD_OK;
    for (size_t k = 0; !rc && k < rt->n_refs; k++)
        rc = expand(pl, rt->refs[order[k]], ri, required);
    return rc;
}

static pd_result expand(planner *pl, ref x, int via, unsigned required)
{
    if (!x.is_route) {
        add_leaf(pl, x.idx, via, required);
        return PD_OK;
    }
    const pd_route *rt = &pl->r->routes[x.idx];
    required |= rt->compliance;
    switch (rt->policy) {
    case PD_POLICY_TIERED: return expand_tiered(pl, x.idx, required);
    case PD_POLICY_PRIVACY: return expand_privacy(pl, x.idx, required);
    default: return expand_list(pl, x.idx, required);
    }
}

/* Sticky privacy: the strictest action applies to every candidate, whoever placed it. */
static void apply_privacy(planner *pl)
{
    if (!pl->pii_found || pl->pii_rank == 0)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < pl->n_leaves; i++) {
        const target *t = &pl->r->targets[pl->leaves[i].target];
        if (pl->pii_rank == 2 && !t->local) {
            pl->p->dropped++;
            reason_add(pl, "privacy: dropped cloud %s", t->model);
            continue;
        }
        pl->leaves[kept++] = pl->leaves[i];
    }
    pl->n_leaves = kept;
}

static unsigned health_bits(const pd_route_ctx *ctx, int t)
{
    return ctx->open && t >= 0 && (size_t)t < ctx->n_open ? ctx->open[t] : 0;
}

static bool is_open(const pd_route_ctx *ctx, int t)
{
    return health_bits(ctx, t) != 0;
}

static void fill_candidate(planner *pl, const leaf *l, pd_route_candidate *c)
{
    const target *t = &pl->r->targets[l->target];
    const pd_route *via = l->via >= 0 ? &pl->r->routes[l->via] : NULL;
    c->model = t->model;
    c->via = via ? via->name : NULL;
    c->target = l->target;
    c->triggers = pd_route_triggers(via);
    c->context_tokens = t->context_tokens;
    c->local = t->local;
    c->redact = pl->pii_found && pl->pii_rank == 1 && !t->local;
    c->open = is_open(pl->ctx, l->target);
    c->res = via ? &via->res : &pl->r->defaults;
    c->down = (health_bits(pl->ctx, l->target) & PD_TARGET_DOWN) != 0;
}

/* Healthy first, open circuits after them (both in plan order), capped. */
static void emit_candidates(planner *pl)
{
    pd_route_plan *p = pl->p;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < pl->n_leaves && p->n < PD_ROUTE_MAX_CANDIDATES; i++) {
            bool open = is_open(pl->ctx, pl->leaves[i].target);
            if (open != (pass == 1))
                continue;
            if (open)
                reason_add(pl, "%s: %s moved last",
                           (health_bits(pl->ctx, pl->leaves[i].target) & PD_TARGET_DOWN)
                               ? "health check down"
                               : "open circuit",
                           pl->r->targets[pl->leaves[i].target].model);
            fill_candidate(pl, &pl->leaves[i], &p->cand[p->n++]);
        }
}

static pd_result fail_empty(planner *pl)
{
    if (pl->missing) {
        char names[64];
        comply_text(pl->missing, names, sizeof names);
        pd_openai_error_set(pl->err, 400, "invalid_request_error", "compliance_unsatisfied",
                            "model", "no target of '%s' meets the required compliance: missing %s",
                            pl->p->route, names);
        return PD_ERR_INVALID;
    }
    pd_openai_error_set(pl->err, 503, "server_error", "no_eligible_target", "model",
                        "no eligible target for '%s'", pl->p->route);
    return PD_ERR_NOT_FOUND;
}

static pd_result plan_begin(planner *pl, const char *name, ref *x)
{
    int i = find_route(pl->r, name);
    if (i >= 0) {
        *x = (ref){true, i};
        pl->p->route = pl->r->routes[i].name;
        pl->p->policy = pl->r->routes[i].policy;
        pl->p->is_route = true;
        pl->p->res = &pl->r->routes[i].res;
        return PD_OK;
    }
    i = find_target(pl->r, name);
    if (i < 0) {
        pd_openai_error_set(pl->err, 404, "invalid_request_error", "model_not_found", "model",
                            "the model '%.200s' does not exist", name ? name : "");
        return PD_ERR_NOT_FOUND;
    }
    *x = (ref){false, i};
    pl->p->route = pl->r->targets[i].model;
    pl->p->res = &pl->r->defaults;
    reason_add(pl, "%s: a model, not a route", pl->p->route);
    return PD_OK;
}

static pd_result plan_block(planner *pl)
{
    char types[256];
    types_text(pl->p->pii_types, types, sizeof types);
    pd_openai_error_set(pl->err, 400, "invalid_request_error", "pii_blocked", "messages",
                        "the request contains personal data (%s) and route '%s' blocks it", types,
                        pl->p->route);
    return PD_ERR_INVALID;
}

pd_result pd_router_plan(const pd_router *r, const char *route_name, const pd_chat_request *req,
                         const pd_route_ctx *ctx, pd_route_plan *out, pd_api_error *err)
{
    static const pd_route_ctx no_ctx;
    planner state = {.r = r, .req = req, .ctx = ctx ? ctx : &no_ctx, .p = out, .err = err};
    planner *pl = &state; /* about 600 bytes of stack */
    memset(out, 0, sizeof *out);
    out->compliance = pl->ctx->compliance;
    ref x = {false, -1};
    pd_result rc = plan_begin(pl, route_name, &x);
    if (!rc)
        rc = expand(pl, x, x.is_route ? x.idx : -1, pl->ctx->compliance);
    if (!rc && pl->pii_found && pl->pii_rank == 3)
        rc = plan_block(pl);
    if (!rc) {
        apply_privacy(pl);
        if (x.is_route && r->routes[x.idx].policy == PD_POLICY_SPECULATIVE && pl->n_leaves > 1)
            out->race = 2;
        emit_candidates(pl);
        if (out->n == 0)
            rc = fail_empty(pl);
    }
    return rc;
}

size_t pd_route_plan_next(const pd_route_plan *p, size_t i, pd_fallback f)
{
    if (f == PD_FALLBACK_NO || i >= p->n)
        return p->n;
    if (f != PD_FALLBACK_LARGER)
        return i + 1;
    uint32_t have = p->cand[i].context_tokens;
    for (size_t j = i + 1; j < p->n; j++)
        if (p->cand[j].context_tokens > have)
            return j;
    return p->n;
}

/* ---- explain ---------------------------------------------------------------------------- */

static void explain_candidates(pd_jw *w, const pd_route_plan *p)
{
    pd_jw_key(w, "candidates");
    pd_jw_open(w, '[');
    for (size_t i = 0; i < p->n; i++) {
        const pd_route_candidate *c = &p->cand[i];
        pd_jw_open(w, '{');
        pd_jw_key(w, "model");
        pd_jw_str(w, c->model);
        pd_jw_key(w, "via");
        pd_jw_str(w, c->via);
        pd_jw_key(w, "local");
        pd_jw_bool(w, c->local);
        pd_jw_key(w, "redact");
        pd_jw_bool(w, c->redact);
        pd_jw_key(w, "open");
        pd_jw_bool(w, c->open);
        pd_jw_key(w, "down");
        pd_jw_bool(w, c->down);
        pd_jw_key(w, "context_tokens");
        pd_jw_int(w, c->context_tokens);
        pd_jw_close(w, '}');
    }
    pd_jw_close(w, ']');
}

static void explain_score(pd_jw *w, const pd_route_plan *p)
{
    pd_jw_key(w, "score");
    if (!p->scored) {
        pd_jw_null(w);
        return;
    }
    pd_jw_open(w, '{');
    pd_jw_key(w, "value");
    pd_jw_real(w, p->score);
    pd_jw_key(w, "scorer");
    pd_jw_str(w, p->scorer);
    pd_jw_key(w, "features");
    pd_jw_open(w, '{');
    for (int f = 0; f < PD_FEAT_COUNT; f++) {
        pd_jw_key(w, pd_score_feature_name(f));
        pd_jw_real(w, p->features.value[f]);
    }
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

static void explain_balance(pd_jw *w, const pd_route_plan *p)
{
    pd_jw_key(w, "balance");
    if (!p->balance_route) {
        pd_jw_null(w);
        return;
    }
    pd_jw_open(w, '{');
    pd_jw_key(w, "route");
    pd_jw_str(w, p->balance_route);
    pd_jw_key(w, "strategy");
    pd_jw_str(w, pd_balance_strategy_name(p->balance_strategy));
    pd_jw_key(w, "pick");
    pd_jw_str(w, p->balance_pick);
    pd_jw_close(w, '}');
}

static void explain_pii(pd_jw *w, const pd_route_plan *p)
{
    pd_jw_key(w, "pii");
    pd_jw_open(w, '{');
    pd_jw_key(w, "scanned");
    pd_jw_bool(w, p->pii_scanned);
    pd_jw_key(w, "types");
    pd_jw_open(w, '[');
    for (int t = 0; t < PD_PII_TYPE_COUNT; t++)
        if (p->pii_types & (1u << t))
            pd_jw_str(w, pd_pii_type_name(t));
    pd_jw_close(w, ']');
    pd_jw_key(w, "count");
    pd_jw_int(w, (int64_t)p->pii_count);
    pd_jw_key(w, "action");
    pd_jw_str(w, p->pii_count ? pd_route_pii_name(p->pii_action) : NULL);
    pd_jw_close(w, '}');
}

static void explain_compliance(pd_jw *w, const pd_route_plan *p)
{
    pd_jw_key(w, "compliance");
    pd_jw_open(w, '[');
    for (size_t i = 0; i < N_COMPLY; i++)
        if (p->compliance & COMPLY_NAMES[i].bit)
            pd_jw_str(w, COMPLY_NAMES[i].name);
    pd_jw_close(w, ']');
}

pd_result pd_route_plan_explain(const pd_route_plan *p, pd_buf *out)
{
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "route");
    pd_jw_str(&w, p->route);
    pd_jw_key(&w, "policy");
    pd_jw_str(&w, p->is_route ? pd_route_policy_name(p->policy) : NULL);
    pd_jw_key(&w, "is_route");
    pd_jw_bool(&w, p->is_route);
    explain_candidates(&w, p);
    pd_jw_key(&w, "race");
    pd_jw_int(&w, p->race);
    explain_score(&w, p);
    explain_balance(&w, p);
    explain_pii(&w, p);
    explain_compliance(&w, p);
    pd_jw_key(&w, "dropped");
    pd_jw_int(&w, (int64_t)p->dropped);
    pd_jw_key(&w, "reason");
    pd_jw_str(&w, p->reason);
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ---- circuit breaker -------------------------------------------------------------------- */

pd_breaker_params pd_breaker_default_params(void)
{
    return (pd_breaker_params){.failures = 5, .window_ms = 30000, .cooldown_ms = 30000};
}

void pd_breaker_init(pd_breaker *b)
{
    memset(b, 0, sizeof *b);
}

static bool cooled(const pd_breaker *b, const pd_breaker_params *bp, uint64_t now_ms)
{
    return now_ms >= b->opened_at && now_ms - b->opened_at >= bp->cooldown_ms;
}

bool pd_breaker_is_open(const pd_breaker *b, const pd_breaker_params *bp, uint64_t now_ms)
{
    switch (b->state) {
    case PD_BREAKER_OPEN: return !cooled(b, bp, now_ms);
    case PD_BREAKER_HALF_OPEN: return b->probing;
    default: return false;
    }
}

bool pd_breaker_allow(pd_breaker *b, const pd_breaker_params *bp, uint64_t now_ms)
{
    if (pd_breaker_is_open(b, bp, now_ms))
        return false;
    if (b->state != PD_BREAKER_CLOSED) {
        b->state = PD_BREAKER_HALF_OPEN;
        b->probing = true;
    }
    return true;
}

void pd_breaker_success(pd_breaker *b)
{
    pd_breaker_init(b);
}

void pd_breaker_abandon(pd_breaker *b)
{
    if (b && b->state == PD_BREAKER_HALF_OPEN)
        b->probing = false;
}

void pd_breaker_failure(pd_breaker *b, const pd_breaker_params *bp, uint64_t now_ms)
{
    if (b->state != PD_BREAKER_CLOSED) { /* the probe (or a straggler) failed: open again */
        b->state = PD_BREAKER_OPEN;
        b->opened_at = now_ms;
        b->probing = false;
        return;
    }
    if (b->failures == 0 || now_ms < b->window_start || now_ms - b->window_start > bp->window_ms) {
        b->window_start = now_ms;
        b->failures = 0;
    }
    if (++b->failures >= bp->failures) {
        b->state = PD_BREAKER_OPEN;
        b->opened_at = now_ms;
        b->failures = 0;
    }
}
