/* report.c: the traffic report (econ/report.h) and `pendulum report`.
 *
 * One pass over the ledger rows: each row is counted into the totals, its target's group and
 * its route's group. Sums are exact; latency values are kept per group for exact nearest-rank
 * percentiles, bounded by a reservoir sample so that a month of traffic cannot exhaust memory.
 * Groups are found by a linear scan: there are few targets, and the scan is cheaper than the
 * SQLite row decode that precedes it. */
#include "econ/report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/clock.h"
#include "econ/cost.h"
#include "router/from_config.h"

#define MONTH_MS (730.0 * 3600.0 * 1000.0) /* hours_per_month of the calculator */
#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))

typedef struct series {
    double *v;
    size_t kept, cap;
} series;

typedef struct group_acc {
    pd_report_group g;
    int64_t local_requests;
    series ttft, total;
} group_acc;

typedef struct group_set {
    group_acc *a;
    size_t n, cap;
} group_set;

/* How a route's local requests are priced all-cloud: resolved once per route name. */
typedef enum basis_kind {
    BASIS_ROUTE_TARGET,
    BASIS_CHARGED,
    BASIS_REFERENCE,
    BASIS_NO_CLOUD_TARGET,
    BASIS_UNKNOWN_ROUTE,
    BASIS_UNPRICED_TARGET
} basis_kind;

typedef struct route_price {
    char name[PD_LEDGER_NAME_MAX];
    basis_kind kind;
    const char *target; /* the cloud target (points into the router), or NULL */
    pd_price price;     /* BASIS_ROUTE_TARGET only */
} route_price;

typedef struct route_cache {
    route_price *a;
    size_t n, cap;
} route_cache;

/* The price-table model a cloud target's requests are charged at: resolved once per target. */
typedef struct target_price {
    char name[PD_LEDGER_NAME_MAX];
    const char *model; /* the row's name (points into the price table), or NULL: no price */
} target_price;

typedef struct target_cache {
    target_price *a;
    size_t n, cap;
} target_cache;

/* The models the traffic used or was priced at: the calculator's API options. */
typedef struct api_set {
    pd_report_api *a;
    size_t n, cap;
} api_set;

struct pd_report {
    pd_report_params p;
    pd_price cloud;
    double local_usd; /* one local request */
    group_acc totals;
    group_set targets, routes;
    route_cache by_route;   /* with a router: the all-cloud price of each route seen */
    target_cache by_target; /* the model each cloud target is charged at */
    api_set uses;
    int64_t first_ms, last_ms;
    int64_t in_sum, in_n, out_sum, out_n;
    int64_t cached_sum; /* over the requests counted in in_sum */
    uint64_t rng;
    double monthly;
    pd_report_observed obs;
    char local_label[256];
    pd_calc_params calc_p;
    pd_calc_result calc;
    bool calc_ok;
    char calc_err[256];
};

/* ---- parameters and life cycle ----------------------------------------------------------- */

void pd_report_default_params(pd_report_params *p)
{
    memset(p, 0, sizeof *p);
    p->until_ms = INT64_MAX;
    p->cloud_model = "gpt-4o";
    pd_local_cost_default(&p->local);
}

static bool runs_locally(const pd_model_cfg *m)
{
    const pd_provider_cfg *pv = m->provider;
    return pv->local || pv->kind == PD_KIND_LLAMA || pv->kind == PD_KIND_OLLAMA;
}

void pd_report_params_from_config(pd_report_params *p, const pd_config *cfg)
{
    p->config = cfg;
    for (size_t i = 0; i < cfg->n_models && p->n_local < PD_REPORT_MAX_LOCAL; i++)
        if (runs_locally(&cfg->models[i]))
            p->local_targets[p->n_local++] = cfg->models[i].name;
}

pd_result pd_report_new(const pd_report_params *p, pd_report **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (p->n_local > PD_REPORT_MAX_LOCAL) {
        snprintf(msg, msglen, "at most %d local targets", PD_REPORT_MAX_LOCAL);
        return PD_ERR_INVALID;
    }
    if (pd_local_cost_check(&p->local, msg, msglen) != PD_OK)
        return PD_ERR_INVALID;
    pd_report *r = pd_xcalloc(1, sizeof *r);
    r->p = *p;
    if (!r->p.cloud_model || !*r->p.cloud_model)
        r->p.cloud_model = "gpt-4o";
    if (pd_prices_lookup(p->prices, r->p.cloud_model, &r->cloud) != PD_OK) {
        snprintf(msg, msglen, "the cloud model '%s' has no price (see pendulum prices)",
                 r->p.cloud_model);
        free(r);
        return PD_ERR_NOT_FOUND;
    }
    pd_cost lc;
    pd_cost_local(&r->p.local, &lc);
    r->local_usd = lc.usd;
    snprintf(r->totals.g.name, sizeof r->totals.g.name, "all");
    r->first_ms = INT64_MAX;
    r->last_ms = INT64_MIN;
    r->rng = 0x9e3779b97f4a7c15ull;
    *out = r;
    return PD_OK;
}

static void free_acc(group_acc *a)
{
    free(a->ttft.v);
    free(a->total.v);
}

static void free_set(group_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free_acc(&s->a[i]);
    free(s->a);
}

void pd_report_free(pd_report *r)
{
    if (!r)
        return;
    free_acc(&r->totals);
    free_set(&r->targets);
    free_set(&r->routes);
    free(r->by_route.a);
    free(r->by_target.a);
    free(r->uses.a);
    free(r);
}

/* ---- counting ---------------------------------------------------------------------------- */

static uint64_t next_rand(pd_report *r)
{
    /* xorshift64: a fixed seed, so a report over the same rows is the same report */
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

/* Keeps v, or (past the cap) replaces a kept value with probability cap / seen. */
static void sample(pd_report *r, series *s, int64_t seen, double v)
{
    if (s->kept < PD_REPORT_MAX_SAMPLES) {
        if (s->kept == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 64;
            s->v = pd_xrealloc(s->v, s->cap * sizeof *s->v);
        }
        s->v[s->kept++] = v;
        return;
    }
    uint64_t j = next_rand(r) % (uint64_t)seen;
    if (j < PD_REPORT_MAX_SAMPLES)
        s->v[j] = v;
}

static group_acc *find_group(group_set *s, const char *name)
{
    if (!name || !*name)
        name = "none";
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->a[i].g.name, name))
            return &s->a[i];
    if (s->n == PD_REPORT_MAX_GROUPS - 1 && strcmp(name, "other") != 0)
        return find_group(s, "other");
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->a = pd_xrealloc(s->a, s->cap * sizeof *s->a);
    }
    group_acc *a = &s->a[s->n++];
    memset(a, 0, sizeof *a);
    snprintf(a->g.name, sizeof a->g.name, "%s", name);
    return a;
}

static bool is_local(const pd_report *r, const char *target)
{
    for (size_t i = 0; target && i < r->p.n_local; i++)
        if (r->p.local_targets[i] && !strcmp(r->p.local_targets[i], target))
            return true;
    return false;
}

/* What one record adds to a group; spend < 0 means none, cloud < 0 not comparable. */
typedef struct contribution {
    bool local;
    double spend, cloud;
    basis_kind basis;
} contribution;

static void count_basis(pd_report_basis *b, basis_kind k)
{
    switch (k) {
    case BASIS_ROUTE_TARGET: b->route_target++; break;
    case BASIS_CHARGED: b->charged++; break;
    case BASIS_REFERENCE: b->reference++; break;
    case BASIS_NO_CLOUD_TARGET: b->no_cloud_target++; break;
    case BASIS_UNKNOWN_ROUTE: b->unknown_route++; break;
    case BASIS_UNPRICED_TARGET: b->unpriced_target++; break;
    }
}

static void count_into(pd_report *r, group_acc *a, const pd_ledger_record *rec,
                       const contribution *c)
{
    pd_report_group *g = &a->g;
    g->requests++;
    a->local_requests += c->local;
    g->errors += rec->status >= 400;
    g->prompt_tokens += rec->prompt_tokens > 0 ? rec->prompt_tokens : 0;
    g->completion_tokens += rec->completion_tokens > 0 ? rec->completion_tokens : 0;
    if (c->spend >= 0) {
        g->cost_known++;
        g->spend_usd += c->spend;
    } else if (!c->local) {
        g->cost_unknown++;
    }
    if (c->spend >= 0 && c->cloud >= 0) {
        g->comparable++;
        g->comparable_spend_usd += c->spend;
        g->all_cloud_usd += c->cloud;
        count_basis(&g->basis, c->basis);
    }
    if (rec->status >= 400)
        return; /* a failure's timing says nothing about the target's latency */
    if (rec->ttft_ms >= 0)
        sample(r, &a->ttft, ++g->ttft_ms.n, rec->ttft_ms);
    if (rec->total_ms >= 0)
        sample(r, &a->total, ++g->total_ms.n, rec->total_ms);
}

/* The upstream model name of a configured target, priced first as the relay does; NULL when
   there is no config or no such model. */
static const char *upstream_of(const pd_report *r, const char *model)
{
    const pd_config *cfg = r->p.config;
    for (size_t i = 0; cfg && i < cfg->n_models; i++)
        if (!strcmp(cfg->models[i].name, model))
            return cfg->models[i].upstream_model;
    return NULL;
}

static void resolve_route(const pd_report *r, const char *route, route_price *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", route ? route : "");
    out->kind = BASIS_UNKNOWN_ROUTE;
    if (!route || !*route || pd_router_cloud_target(r->p.router, route, &out->target) != PD_OK)
        return;
    out->kind = BASIS_NO_CLOUD_TARGET;
    if (!out->target)
        return;
    const char *up = upstream_of(r, out->target);
    bool priced = (up && pd_prices_lookup(r->p.prices, up, &out->price) == PD_OK) ||
                  pd_prices_lookup(r->p.prices, out->target, &out->price) == PD_OK;
    out->kind = priced ? BASIS_ROUTE_TARGET : BASIS_UNPRICED_TARGET;
}

/* The route's all-cloud price, resolved once per route name (a linear scan, like the groups:
   routes are few). Past PD_REPORT_MAX_GROUPS names it is resolved again each time into tmp. */
static const route_price *route_price_of(pd_report *r, const char *route, route_price *tmp)
{
    const char *key = route ? route : "";
    for (size_t i = 0; i < r->by_route.n; i++)
        if (!strcmp(r->by_route.a[i].name, key))
            return &r->by_route.a[i];
    route_price *slot = tmp;
    if (r->by_route.n < PD_REPORT_MAX_GROUPS && strlen(key) < sizeof tmp->name) {
        if (r->by_route.n == r->by_route.cap) {
            r->by_route.cap = r->by_route.cap ? r->by_route.cap * 2 : 8;
            r->by_route.a = pd_xrealloc(r->by_route.a, r->by_route.cap * sizeof *r->by_route.a);
        }
        slot = &r->by_route.a[r->by_route.n++];
    }
    resolve_route(r, route, slot);
    return slot;
}

/* The price all-cloud uses for rec (its basis in *basis); NULL: priced as charged. */
static const pd_price *all_cloud_price(pd_report *r, const pd_ledger_record *rec, bool local,
                                       route_price *tmp, basis_kind *basis)
{
    if (!r->p.router) {
        *basis = BASIS_REFERENCE;
        return &r->cloud;
    }
    if (!local) {
        *basis = BASIS_CHARGED;
        return NULL;
    }
    const route_price *rp = route_price_of(r, rec->route, tmp);
    *basis = rp->kind;
    return rp->kind == BASIS_ROUTE_TARGET ? &rp->price : &r->cloud;
}

/* The API option named model (a price-table name), added on first use; NULL past
   PD_REPORT_MAX_GROUPS models. */
static pd_report_api *api_use(pd_report *r, const char *model)
{
    api_set *s = &r->uses;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->a[i].model, model))
            return &s->a[i];
    if (s->n == PD_REPORT_MAX_GROUPS || strlen(model) >= sizeof s->a[0].model)
        return NULL;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->a = pd_xrealloc(s->a, s->cap * sizeof *s->a);
    }
    pd_report_api *u = &s->a[s->n++];
    memset(u, 0, sizeof *u);
    snprintf(u->model, sizeof u->model, "%s", model);
    return u;
}

/* The model a cloud target is charged at, as the relay prices it: the target's upstream model,
   else its name (cached per target); else the upstream model the record names. NULL: none. */
static const char *served_model(pd_report *r, const pd_ledger_record *rec)
{
    const char *target = rec->target ? rec->target : "";
    target_cache *tc = &r->by_target;
    target_price *tp = NULL;
    for (size_t i = 0; i < tc->n && !tp; i++)
        if (!strcmp(tc->a[i].name, target))
            tp = &tc->a[i];
    if (!tp && tc->n < PD_REPORT_MAX_GROUPS && strlen(target) < sizeof tp->name) {
        if (tc->n == tc->cap) {
            tc->cap = tc->cap ? tc->cap * 2 : 8;
            tc->a = pd_xrealloc(tc->a, tc->cap * sizeof *tc->a);
        }
        tp = &tc->a[tc->n++];
        snprintf(tp->name, sizeof tp->name, "%s", target);
        pd_price pr;
        const char *up = upstream_of(r, target);
        bool priced = (up && pd_prices_lookup(r->p.prices, up, &pr) == PD_OK) ||
                      (*target && pd_prices_lookup(r->p.prices, target, &pr) == PD_OK);
        tp->model = priced ? pr.model : NULL;
    }
    if (tp && tp->model)
        return tp->model;
    pd_price pr;
    if (rec->upstream_model && pd_prices_lookup(r->p.prices, rec->upstream_model, &pr) == PD_OK)
        return pr.model;
    return NULL;
}

/* Which models this request brings into the calculator: a cloud request the model it was
   served by; a request priced all-cloud the model it was priced at. */
static void note_api_use(pd_report *r, const pd_ledger_record *rec, const contribution *c,
                         const pd_price *price)
{
    pd_report_api *u;
    const char *served = c->local ? NULL : served_model(r, rec);
    if (served && (u = api_use(r, served)) != NULL)
        u->served++;
    if (!price || !(u = api_use(r, price->model)))
        return; /* priced as charged: counted as served */
    if (c->basis == BASIS_ROUTE_TARGET)
        u->priced++;
    else
        u->reference++;
}

static void contribution_of(pd_report *r, const pd_ledger_record *rec, contribution *c)
{
    c->local = is_local(r, rec->target);
    if (c->local)
        c->spend = rec->attempts > 0 ? r->local_usd : -1;
    else
        c->spend = rec->cost_usd >= 0 ? rec->cost_usd : -1;
    c->cloud = -1;
    route_price tmp;
    const pd_price *price = all_cloud_price(r, rec, c->local, &tmp, &c->basis);
    note_api_use(r, rec, c, price);
    if (rec->prompt_tokens < 0 || rec->completion_tokens < 0)
        return;
    if (!price) {
        c->cloud = c->spend; /* a cloud request would have cost what it did */
        return;
    }
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    u.prompt_tokens = rec->prompt_tokens;
    u.completion_tokens = rec->completion_tokens;
    u.cached_tokens = rec->cached_tokens;
    if (u.cached_tokens > u.prompt_tokens)
        u.cached_tokens = -1;
    pd_cost cost;
    pd_cost_compute(price, &u, &cost);
    if (cost.known)
        c->cloud = cost.usd;
}

void pd_report_add(pd_report *r, const pd_ledger_record *rec)
{
    if (rec->ts_ms < r->p.since_ms || rec->ts_ms >= r->p.until_ms)
        return;
    contribution c;
    contribution_of(r, rec, &c);
    count_into(r, &r->totals, rec, &c);
    count_into(r, find_group(&r->targets, rec->target), rec, &c);
    count_into(r, find_group(&r->routes, rec->route), rec, &c);
    if (rec->ts_ms < r->first_ms)
        r->first_ms = rec->ts_ms;
    if (rec->ts_ms > r->last_ms)
        r->last_ms = rec->ts_ms;
    if (rec->prompt_tokens >= 0) {
        r->in_sum += rec->prompt_tokens;
        r->in_n++;
        if (rec->cached_tokens > 0 && rec->cached_tokens <= rec->prompt_tokens)
            r->cached_sum += rec->cached_tokens;
    }
    if (rec->completion_tokens >= 0) {
        r->out_sum += rec->completion_tokens;
        r->out_n++;
    }
}

int pd_report_each_cb(void *ud, const pd_ledger_record *rec)
{
    pd_report_add(ud, rec);
    return 0;
}

/* ---- finishing --------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of the values at or below it. */
static double rank(const series *s, double p)
{
    if (s->kept == 0)
        return -1;
    double k = ceil(p / 100.0 * (double)s->kept);
    size_t i = k < 1 ? 0 : (size_t)k - 1;
    return s->v[i < s->kept ? i : s->kept - 1];
}

static void sort_series(series *s)
{
    if (s->kept > 1) /* qsort of NULL, even for 0 items, is undefined */
        qsort(s->v, s->kept, sizeof *s->v, cmp_double);
}

static void finish_acc(group_acc *a)
{
    sort_series(&a->ttft);
    sort_series(&a->total);
    a->g.ttft_ms.p50 = rank(&a->ttft, 50);
    a->g.ttft_ms.p99 = rank(&a->ttft, 99);
    a->g.total_ms.p50 = rank(&a->total, 50);
    a->g.total_ms.p99 = rank(&a->total, 99);
    a->g.savings_usd = a->g.all_cloud_usd - a->g.comparable_spend_usd;
    a->g.local = a->g.requests > 0 && a->local_requests == a->g.requests;
}

static int cmp_group(const void *a, const void *b)
{
    const pd_report_group *x = &((const group_acc *)a)->g, *y = &((const group_acc *)b)->g;
    if (x->requests != y->requests)
        return x->requests > y->requests ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void finish_set(group_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        finish_acc(&s->a[i]);
    if (s->n > 1)
        qsort(s->a, s->n, sizeof *s->a, cmp_group);
}

static int cmp_api(const void *a, const void *b)
{
    const pd_report_api *x = a, *y = b;
    int64_t nx = x->served + x->priced + x->reference, ny = y->served + y->priced + y->reference;
    if (nx != ny)
        return nx > ny ? -1 : 1;
    return strcmp(x->model, y->model);
}

/* The window the extrapolation uses and its scaling to a month (see the header). */
static void observe_window(pd_report *r, pd_report_observed *o)
{
    o->from_first = r->p.since_ms <= 0;
    o->to_last = r->p.until_ms == INT64_MAX;
    o->from_ms = o->from_first ? r->first_ms : r->p.since_ms;
    o->to_ms = o->to_last ? r->last_ms : r->p.until_ms;
    double window = (double)o->to_ms - (double)o->from_ms;
    if (window < 1000)
        window = 1000;
    o->hours = window / 3600e3;
    o->requests = r->totals.g.requests;
    o->scale = MONTH_MS / window;
    o->monthly_requests = (double)o->requests * o->scale;
    o->monthly_spend_usd = r->totals.g.spend_usd * o->scale;
    o->input_n = r->in_n;
    o->output_n = r->out_n;
    o->input_mean = r->in_n > 0 ? (double)r->in_sum / (double)r->in_n : 0;
    o->output_mean = r->out_n > 0 ? (double)r->out_sum / (double)r->out_n : 0;
    o->cached_fraction = r->in_sum > 0 ? (double)r->cached_sum / (double)r->in_sum : 0;
}

/* The API options: the models used or priced, most requests first, at most PD_CALC_MAX_APIS;
   the reference model when there is none. */
static void observe_apis(pd_report *r, pd_report_observed *o)
{
    if (r->uses.n > 1)
        qsort(r->uses.a, r->uses.n, sizeof *r->uses.a, cmp_api);
    o->n_apis = r->uses.n < PD_CALC_MAX_APIS ? r->uses.n : PD_CALC_MAX_APIS;
    o->apis_left_out = r->uses.n - o->n_apis;
    memcpy(o->apis, r->uses.a, o->n_apis * sizeof *o->apis);
    if (o->n_apis == 0) {
        o->n_apis = 1;
        snprintf(o->apis[0].model, sizeof o->apis[0].model, "%s", r->cloud.model);
    }
}

/* The self-hosted option's label: the local targets that served this traffic. */
static void local_label(pd_report *r, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->targets.n; i++) {
        const group_acc *a = &r->targets.a[i];
        if (a->local_requests == 0)
            continue;
        int k = snprintf(out + used, n - used, "%s%s", used ? ", " : "local targets: ", a->g.name);
        if (k < 0 || (size_t)k >= n - used) {
            out[used] = '\0';
            break;
        }
        used += (size_t)k;
    }
}

/* The calculator on the observed traffic (see the header for the extrapolation). */
static void run_calc(pd_report *r)
{
    pd_report_observed *o = &r->obs;
    memset(o, 0, sizeof *o);
    r->calc_ok = false;
    r->monthly = 0;
    if (r->totals.g.requests == 0) {
        snprintf(r->calc_err, sizeof r->calc_err, "no requests in the window");
        return;
    }
    observe_window(r, o);
    observe_apis(r, o);
    r->monthly = o->monthly_requests;
    pd_calc_default_params(&r->calc_p);
    r->calc_p.requests = (int64_t)llround(fmin(r->monthly, 1e13));
    r->calc_p.input_tokens = (int64_t)llround(fmin(o->input_mean, 1e8));
    r->calc_p.output_tokens = (int64_t)llround(fmin(o->output_mean, 1e8));
    r->calc_p.cached_fraction = o->cached_fraction;
    for (size_t i = 0; i < o->n_apis; i++)
        r->calc_p.apis[i] = o->apis[i].model;
    r->calc_p.n_apis = o->n_apis;
    r->calc_p.local = r->p.local;
    local_label(r, r->local_label, sizeof r->local_label);
    if (r->local_label[0])
        r->calc_p.local_label = r->local_label;
    r->calc_ok =
        pd_calc_run(&r->calc_p, r->p.prices, &r->calc, r->calc_err, sizeof r->calc_err) == PD_OK;
}

/* Each route group names its cloud target (with a router). */
static void name_cloud_targets(pd_report *r)
{
    for (size_t i = 0; r->p.router && i < r->routes.n; i++) {
        pd_report_group *g = &r->routes.a[i].g;
        route_price tmp;
        const route_price *rp = route_price_of(r, strcmp(g->name, "none") ? g->name : NULL, &tmp);
        snprintf(g->cloud_target, sizeof g->cloud_target, "%s", rp->target ? rp->target : "");
    }
}

void pd_report_finish(pd_report *r)
{
    finish_acc(&r->totals);
    finish_set(&r->targets);
    finish_set(&r->routes);
    name_cloud_targets(r);
    run_calc(r);
}

pd_result pd_report_run(const char *url, const pd_report_params *p, pd_report **out, char *msg,
                        size_t msglen)
{
    char def[1024];
    if (!url || !*url) {
        if (pd_ledger_default_url(def, sizeof def) != PD_OK) {
            snprintf(msg, msglen, "the default ledger path is too long");
            return PD_ERR_TOO_LARGE;
        }
        url = def;
    }
    pd_result rc = pd_report_new(p, out, msg, msglen);
    if (rc)
        return rc;
    rc = pd_ledger_each(url, p->since_ms, p->until_ms, pd_report_each_cb, *out, msg, msglen);
    if (rc) {
        pd_report_free(*out);
        *out = NULL;
        return rc;
    }
    pd_report_finish(*out);
    return PD_OK;
}

/* ---- read access ------------------------------------------------------------------------- */

const pd_report_group *pd_report_totals(const pd_report *r)
{
    return &r->totals.g;
}
size_t pd_report_n_targets(const pd_report *r)
{
    return r->targets.n;
}
size_t pd_report_n_routes(const pd_report *r)
{
    return r->routes.n;
}
double pd_report_monthly_requests(const pd_report *r)
{
    return r->monthly;
}
const pd_report_observed *pd_report_observed_traffic(const pd_report *r)
{
    return &r->obs;
}

const pd_report_group *pd_report_target(const pd_report *r, size_t i)
{
    return i < r->targets.n ? &r->targets.a[i].g : NULL;
}

const pd_report_group *pd_report_route(const pd_report *r, size_t i)
{
    return i < r->routes.n ? &r->routes.a[i].g : NULL;
}

const pd_calc_result *pd_report_calc(const pd_report *r, const pd_calc_params **params)
{
    if (params)
        *params = &r->calc_p;
    return r->calc_ok ? &r->calc : NULL;
}

const char *pd_report_calc_error(const pd_report *r)
{
    return r->calc_ok ? NULL : r->calc_err;
}

/* ---- JSON -------------------------------------------------------------------------------- */

static json_t *ms_or_null(double v)
{
    return v < 0 ? json_null() : json_real(v);
}

static json_t *json_pct(const pd_report_pct *p)
{
    return json_pack("{s:I, s:o, s:o}", "n", (json_int_t)p->n, "p50", ms_or_null(p->p50), "p99",
                     ms_or_null(p->p99));
}

static json_t *json_basis(const pd_report_basis *b)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "route_target", (json_int_t)b->route_target,
                     "charged", (json_int_t)b->charged, "reference", (json_int_t)b->reference,
                     "no_cloud_target", (json_int_t)b->no_cloud_target, "unknown_route",
                     (json_int_t)b->unknown_route, "unpriced_target",
                     (json_int_t)b->unpriced_target);
}

static json_t *json_group(const pd_report_group *g)
{
    json_t *o = json_pack(
        "{s:s, s:b, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:f, s:f, s:f, s:o, "
        "s:o}",
        "name", g->name, "local", g->local, "requests", (json_int_t)g->requests, "errors",
        (json_int_t)g->errors, "prompt_tokens", (json_int_t)g->prompt_tokens, "completion_tokens",
        (json_int_t)g->completion_tokens, "spend_usd", g->spend_usd, "cost_known",
        (json_int_t)g->cost_known, "cost_unknown", (json_int_t)g->cost_unknown, "comparable",
        (json_int_t)g->comparable, "comparable_spend_usd", g->comparable_spend_usd, "all_cloud_usd",
        g->all_cloud_usd, "savings_usd", g->savings_usd, "ttft_ms", json_pct(&g->ttft_ms),
        "total_ms", json_pct(&g->total_ms));
    if (o)
        json_object_set_new(o, "all_cloud_basis", json_basis(&g->basis));
    return o;
}

/* Route groups also name their cloud target when the report has a router. */
static json_t *json_groups(const pd_report *r, const group_set *s, bool routes)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->n; i++) {
        const pd_report_group *g = &s->a[i].g;
        json_t *o = json_group(g);
        if (o && routes && r->p.router)
            json_object_set_new(o, "cloud_target",
                                g->cloud_target[0] ? json_string(g->cloud_target) : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *json_all_cloud(const pd_report *r)
{
    return json_pack("{s:s, s:s}", "by", r->p.router ? "route" : "reference", "reference_model",
                     r->p.cloud_model);
}

static json_t *ts_or_null(int64_t v, bool known)
{
    return known ? json_integer((json_int_t)v) : json_null();
}

static json_t *json_window(const pd_report *r)
{
    bool any = r->totals.g.requests > 0;
    return json_pack("{s:o, s:o, s:o, s:o}", "since_ms",
                     ts_or_null(r->p.since_ms, r->p.since_ms > 0), "until_ms",
                     ts_or_null(r->p.until_ms, r->p.until_ms != INT64_MAX), "first_ms",
                     ts_or_null(r->first_ms, any), "last_ms", ts_or_null(r->last_ms, any));
}

static json_t *json_api_use(const pd_report_api *u)
{
    return json_pack("{s:s, s:I, s:I, s:I}", "model", u->model, "served", (json_int_t)u->served,
                     "priced", (json_int_t)u->priced, "reference", (json_int_t)u->reference);
}

/* What the calculator ran on: the window, its scaling, the means and why each API is there. */
static json_t *json_observed(const pd_report *r)
{
    const pd_report_observed *o = &r->obs;
    if (o->requests == 0)
        return json_null();
    json_t *apis = json_array();
    for (size_t i = 0; i < o->n_apis; i++)
        json_array_append_new(apis, json_api_use(&o->apis[i]));
    return json_pack(
        "{s:I, s:I, s:s, s:s, s:f, s:I, s:f, s:f, s:f, s:I, s:I, s:f, s:f, s:f, "
        "s:o, s:I}",
        "from_ms", (json_int_t)o->from_ms, "to_ms", (json_int_t)o->to_ms, "from",
        o->from_first ? "first_record" : "since", "to", o->to_last ? "last_record" : "until",
        "hours", o->hours, "requests", (json_int_t)o->requests, "scale", o->scale,
        "monthly_requests", o->monthly_requests, "monthly_spend_usd", o->monthly_spend_usd,
        "input_n", (json_int_t)o->input_n, "output_n", (json_int_t)o->output_n, "input_mean",
        o->input_mean, "output_mean", o->output_mean, "cached_fraction", o->cached_fraction, "apis",
        apis, "apis_left_out", (json_int_t)o->apis_left_out);
}

static json_t *json_calculator(const pd_report *r)
{
    json_t *c;
    if (!r->calc_ok)
        c = json_pack("{s:s, s:f}", "error", r->calc_err, "monthly_requests", r->monthly);
    else
        c = pd_calc_json(&r->calc_p, &r->calc);
    if (c) {
        json_object_set_new(c, "monthly_requests", json_real(r->monthly));
        json_object_set_new(c, "observed", json_observed(r));
    }
    return c;
}

static json_t *json_notes(const pd_report *r)
{
    json_t *a = json_array();
    char buf[320];
    if (r->p.router)
        snprintf(buf, sizeof buf,
                 "all-cloud prices a local request at its route's cloud target (else at %s) "
                 "from its own token counts and a cloud request as charged; savings compare "
                 "only requests priced on both sides",
                 r->p.cloud_model);
    else
        snprintf(buf, sizeof buf,
                 "all-cloud prices every request at %s from its own token counts; savings "
                 "compare only requests priced on both sides",
                 r->p.cloud_model);
    json_array_append_new(a, json_string(buf));
    if (r->p.n_local > 0) {
        snprintf(
            buf, sizeof buf,
            "a local request costs $%.6f: %.4g USD/h over %.4g requests/h (amortised hardware, "
            "no ops time)",
            r->local_usd, r->p.local.hardware_usd_per_hour, r->p.local.requests_per_hour);
        json_array_append_new(a, json_string(buf));
    }
    if (r->totals.g.cost_unknown > 0) {
        snprintf(buf, sizeof buf,
                 "%" PRId64 " requests have an unknown cost and add nothing to spend",
                 r->totals.g.cost_unknown);
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

json_t *pd_report_json(const pd_report *r)
{
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "window", json_window(r),
                     "cloud_model", r->p.cloud_model, "all_cloud", json_all_cloud(r), "totals",
                     json_group(&r->totals.g), "targets", json_groups(r, &r->targets, false),
                     "routes", json_groups(r, &r->routes, true), "calculator", json_calculator(r),
                     "notes", json_notes(r));
}

/* ---- text -------------------------------------------------------------------------------- */

static void fmt_ms(char *out, size_t n, double v)
{
    if (v < 0)
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%.1f", v);
}

static void text_group(pd_buf *b, const pd_report_group *g)
{
    char t50[32], t99[32], a50[32], a99[32];
    fmt_ms(t50, sizeof t50, g->ttft_ms.p50);
    fmt_ms(t99, sizeof t99, g->ttft_ms.p99);
    fmt_ms(a50, sizeof a50, g->total_ms.p50);
    fmt_ms(a99, sizeof a99, g->total_ms.p99);
    pd_buf_printf(b, "  %-24s %9" PRId64 " %7" PRId64 " %12.4f %12.4f %12.4f %9s %9s %9s %9s%s\n",
                  g->name, g->requests, g->errors, g->spend_usd, g->all_cloud_usd, g->savings_usd,
                  t50, t99, a50, a99, g->local ? "  (local)" : "");
}

static void text_table(pd_buf *b, const char *title, const group_set *s, const group_acc *tot)
{
    pd_buf_printf(b, "\n%s\n  %-24s %9s %7s %12s %12s %12s %9s %9s %9s %9s\n", title, "name",
                  "requests", "errors", "spend $", "all-cloud $", "savings $", "ttft p50",
                  "ttft p99", "total p50", "total p99");
    for (size_t i = 0; i < s->n; i++)
        text_group(b, &s->a[i].g);
    if (tot)
        text_group(b, &tot->g);
}

static void text_window(pd_buf *b, const pd_report *r)
{
    char from[32] = "the first record", to[32] = "now";
    time_t t;
    struct tm tm;
    if (r->p.since_ms > 0) {
        t = (time_t)(r->p.since_ms / 1000);
        strftime(from, sizeof from, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    }
    if (r->p.until_ms != INT64_MAX) {
        t = (time_t)(r->p.until_ms / 1000);
        strftime(to, sizeof to, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    }
    pd_buf_printf(b, "Pendulum report: %s to %s, %" PRId64 " requests\n", from, to,
                  r->totals.g.requests);
}

/* Which way the comparable requests were priced all-cloud. */
static void text_basis(pd_buf *b, const pd_report *r)
{
    const pd_report_basis *s = &r->totals.g.basis;
    if (!r->p.router)
        return;
    pd_buf_printf(
        b,
        "All-cloud pricing: %" PRId64 " local requests at their route's cloud target, %" PRId64
        " cloud requests as charged, %" PRId64 " at %s (%" PRId64
        " route without a cloud target, %" PRId64 " route not in the config, %" PRId64
        " cloud target without a price).\n",
        s->route_target, s->charged, s->no_cloud_target + s->unknown_route + s->unpriced_target,
        r->p.cloud_model, s->no_cloud_target, s->unknown_route, s->unpriced_target);
}

static void fmt_time(char *out, size_t n, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

/* Why each API is compared: "served 3, priced 2 local, reference for 1". */
static void text_api_use(pd_buf *b, const pd_report_api *u)
{
    const char *sep = "";
    pd_buf_printf(b, "  %s:", u->model);
    if (u->served) {
        pd_buf_printf(b, " served %" PRId64 " cloud requests", u->served);
        sep = ";";
    }
    if (u->priced) {
        pd_buf_printf(b, "%s priced %" PRId64 " local requests (their route's cloud target)", sep,
                      u->priced);
        sep = ";";
    }
    if (u->reference)
        pd_buf_printf(b, "%s the reference for %" PRId64 " requests", sep, u->reference);
    if (!u->served && !u->priced && !u->reference)
        pd_buf_printf(b, " the reference model (no request priced)");
    pd_buf_printf(b, "\n");
}

/* What the calculator runs on: the window, how it is scaled to a month, the means and the
   APIs, so that the figures below can be checked by hand. */
static void text_observed(pd_buf *b, const pd_report *r)
{
    const pd_report_observed *o = &r->obs;
    pd_buf_printf(b, "\nThe calculator (pendulum cost) on this traffic:\n");
    if (o->requests == 0)
        return;
    char from[32], to[32];
    fmt_time(from, sizeof from, o->from_ms);
    fmt_time(to, sizeof to, o->to_ms);
    pd_buf_printf(b,
                  "  window %s (%s) to %s (%s) = %.4g h; %" PRId64
                  " requests x 730 h / %.4g h = %.0f requests/month (x%.4g)\n",
                  from, o->from_first ? "first record" : "--since", to,
                  o->to_last ? "last record" : "--until", o->hours, o->requests, o->hours,
                  o->monthly_requests, o->scale);
    pd_buf_printf(b,
                  "  per request: %.1f input tokens (mean of %" PRId64
                  "), %.1f output (mean of %" PRId64
                  "), %.1f%% of input cached; spend scaled the same way: $%.2f/month\n",
                  o->input_mean, o->input_n, o->output_mean, o->output_n,
                  100.0 * o->cached_fraction, o->monthly_spend_usd);
    pd_buf_printf(b, "  APIs compared (the models this traffic used or was priced at):\n");
    for (size_t i = 0; i < o->n_apis; i++)
        text_api_use(b, &o->apis[i]);
    if (o->apis_left_out)
        pd_buf_printf(b, "  (%zu more models used by fewer requests are not compared)\n",
                      o->apis_left_out);
    pd_buf_printf(b, "\n");
}

pd_result pd_report_text(const pd_report *r, pd_buf *b)
{
    const pd_report_group *t = &r->totals.g;
    text_window(b, r);
    text_table(b, "By target (ms for latency; savings over comparable requests):", &r->targets,
               &r->totals);
    text_table(b, "By route:", &r->routes, NULL);
    pd_buf_printf(b,
                  "\nSpend $%.4f; all in the cloud (%s) the comparable %" PRId64
                  " requests would have cost $%.4f against $%.4f: savings $%.4f.\n",
                  t->spend_usd, r->p.router ? "each route's cloud target" : r->p.cloud_model,
                  t->comparable, t->all_cloud_usd, t->comparable_spend_usd, t->savings_usd);
    text_basis(b, r);
    if (t->cost_unknown > 0)
        pd_buf_printf(b, "%" PRId64 " requests have an unknown cost (not counted as $0).\n",
                      t->cost_unknown);
    text_observed(b, r);
    if (!r->calc_ok)
        return pd_buf_printf(b, "  not run: %s\n", r->calc_err);
    return pd_calc_text(&r->calc_p, &r->calc, b);
}

/* ---- time values ------------------------------------------------------------------------- */

static pd_result parse_relative(const char *s, int64_t now_ms, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0 || end[0] == '\0' || end[1] != '\0')
        return PD_ERR_INVALID;
    double unit;
    switch (*end) {
    case 's': unit = 1e3; break;
    case 'm': unit = 60e3; break;
    case 'h': unit = 3600e3; break;
    case 'd': unit = 86400e3; break;
    case 'w': unit = 7 * 86400e3; break;
    default: return PD_ERR_INVALID;
    }
    if (v * unit > (double)now_ms)
        return PD_ERR_INVALID;
    *out = now_ms - (int64_t)llround(v * unit);
    return PD_OK;
}

static pd_result parse_iso(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (!end)
        return PD_ERR_INVALID;
    if (*end == 'T' || *end == ' ') {
        const char *e2 = strptime(end + 1, "%H:%M:%S", &tm);
        if (!e2)
            e2 = strptime(end + 1, "%H:%M", &tm);
        if (!e2)
            return PD_ERR_INVALID;
        end = e2;
        if (*end == 'Z')
            end++;
    }
    if (*end)
        return PD_ERR_INVALID;
    *out = (int64_t)timegm(&tm) * 1000;
    return PD_OK;
}

pd_result pd_report_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    if (!s || !*s)
        return PD_ERR_INVALID;
    size_t digits = strspn(s, "0123456789");
    if (digits >= 13 && s[digits] == '\0') {
        *out_ms = strtoll(s, NULL, 10);
        return PD_OK;
    }
    if (digits == 4 && s[4] == '-')
        return parse_iso(s, out_ms);
    return parse_relative(s, now_ms, out_ms);
}

/* ---- command line ------------------------------------------------------------------------ */

static const char report_usage[] =
    "usage: pendulum report [options]\n"
    "\n"
    "What the traffic in the ledger cost: spend by target and route, what an all-cloud setup\n"
    "would have cost, the savings, latency percentiles per target, and the calculator run on\n"
    "the observed traffic (docs/dashboard.md).\n"
    "\n"
    "options:\n"
    "  --ledger URL                  the ledger (default: the config's, else the default file)\n"
    "  --config FILE                 a gateway config: its ledger URL, which targets are local\n"
    "                                (local: true, kind llama or ollama), its routes (all-cloud\n"
    "                                prices each request at its route's cloud target) and its\n"
    "                                price overrides\n"
    "  --since T                     window start: 24h, 7d, 30m, 2w, 2025-01-31,\n"
    "                                2025-01-31T12:00Z or epoch milliseconds (default: all)\n"
    "  --until T                     window end, same forms (default: now)\n"
    "  --cloud-model M               the all-cloud reference model (default gpt-4o): every\n"
    "                                request without --config, else those whose route has no\n"
    "                                priced cloud target\n"
    "  --local T1,T2                 targets that run locally (added to the config's)\n"
    "  --hardware-usd-per-hour USD   one local instance (default 1.006)\n"
    "  --requests-per-hour-per-instance N   its throughput (default 800)\n"
    "  --json                        print JSON instead of text\n"
    "  -h, --help                    this text\n";

typedef struct cli {
    pd_report_params p;
    const char *ledger, *config;
    bool json;
    char *local_copy;
    pd_config *cfg;    /* kept for the names it lends */
    pd_router *router; /* the config's routes */
    pd_prices *prices; /* the config's price table */
} cli;

static int add_locals(cli *c, char *list)
{
    char *item;
    while ((item = strsep(&list, ",")) != NULL) {
        if (!*item || c->p.n_local == PD_REPORT_MAX_LOCAL)
            return -1;
        c->p.local_targets[c->p.n_local++] = item;
    }
    return 0;
}

static int load_cli_config(cli *c)
{
    char msg[1024];
    pd_config *cfg = pd_config_load(c->config, msg, sizeof msg);
    if (!cfg) {
        fprintf(stderr, "pendulum report: %s\n", msg);
        return 2;
    }
    c->cfg = cfg;
    if (!c->ledger && cfg->ledger_url)
        c->ledger = cfg->ledger_url;
    pd_report_params_from_config(&c->p, cfg);
    if (pd_router_from_config(cfg, &c->router, msg, sizeof msg) != PD_OK ||
        pd_prices_from_config(cfg, &c->prices, msg, sizeof msg) != PD_OK) {
        fprintf(stderr, "pendulum report: %s\n", msg);
        return 2;
    }
    c->p.router = c->router;
    c->p.prices = c->prices;
    return 0;
}

static int parse_num_arg(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* One option with its value; 0 ok, -1 bad value, -2 unknown option. */
static int set_cli_opt(cli *c, const char *a, const char *v, int64_t now)
{
    if (!strcmp(a, "--ledger"))
        c->ledger = v;
    else if (!strcmp(a, "--config"))
        c->config = v;
    else if (!strcmp(a, "--since"))
        return pd_report_parse_time(v, now, &c->p.since_ms) == PD_OK ? 0 : -1;
    else if (!strcmp(a, "--until"))
        return pd_report_parse_time(v, now, &c->p.until_ms) == PD_OK ? 0 : -1;
    else if (!strcmp(a, "--cloud-model"))
        c->p.cloud_model = v;
    else if (!strcmp(a, "--local")) {
        free(c->local_copy);
        c->local_copy = pd_xstrdup(v);
        return add_locals(c, c->local_copy);
    } else if (!strcmp(a, "--hardware-usd-per-hour"))
        return parse_num_arg(v, &c->p.local.hardware_usd_per_hour);
    else if (!strcmp(a, "--requests-per-hour-per-instance"))
        return parse_num_arg(v, &c->p.local.requests_per_hour);
    else
        return -2;
    return 0;
}

/* 0 parsed, 1 help printed, 2 bad option. */
static int parse_cli(cli *c, int argc, char **argv)
{
    int64_t now = (int64_t)pd_wall_ms();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(report_usage, stdout);
            return 1;
        }
        if (!strcmp(a, "--json")) {
            c->json = true;
            continue;
        }
        int rc = i + 1 < argc ? set_cli_opt(c, a, argv[i + 1], now) : -2;
        if (rc == -2) {
            fprintf(stderr, "pendulum report: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "pendulum report: %s: bad value '%s'\n", a, argv[i + 1]);
            return 2;
        }
        i++;
    }
    return c->config ? load_cli_config(c) : 0;
}

static int print_report(const pd_report *r, bool json)
{
    int rc = 0;
    if (json) {
        json_t *root = pd_report_json(r);
        rc = root && json_dumpf(root, stdout, JSON_FLAGS) == 0 ? 0 : 1;
        json_decref(root);
        printf("\n");
        return rc;
    }
    pd_buf b;
    pd_buf_init(&b, 0);
    rc = pd_report_text(r, &b) == PD_OK ? 0 : 1;
    fwrite(b.data, 1, b.len, stdout);
    pd_buf_free(&b);
    return rc;
}

int pd_report_cli(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    pd_report_default_params(&c.p);
    int rc = parse_cli(&c, argc, argv);
    if (rc != 0) {
        rc = rc == 1 ? 0 : 2;
        goto out;
    }
    char msg[1024] = "";
    pd_report *r = NULL;
    /* A bad parameter (exit 2) is told apart from an unreadable ledger (exit 1) first. */
    if (pd_report_new(&c.p, &r, msg, sizeof msg) != PD_OK) {
        fprintf(stderr, "pendulum report: %s\n", msg);
        rc = 2;
        goto out;
    }
    pd_report_free(r);
    r = NULL;
    if (pd_report_run(c.ledger, &c.p, &r, msg, sizeof msg) != PD_OK) {
        fprintf(stderr, "pendulum report: %s\n", msg);
        rc = 1;
        goto out;
    }
    rc = print_report(r, c.json);
    pd_report_free(r);
out:
    free(c.local_copy);
    pd_router_free(c.router);
    pd_prices_free(c.prices);
    pd_config_free(c.cfg);
    return rc;
}
