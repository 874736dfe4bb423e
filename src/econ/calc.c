/* calc.c: the cost calculator.
 *
 * The crossover search. An API's monthly cost is a line through the origin (c × V for V
 * requests). Self-hosting is a staircase: step k (k instances) covers the volumes
 * ((k-1)·cap, k·cap], where cap is what one instance serves in a month, at the flat cost
 * k·inst + ops. Within a step the line rises and the stair is flat, so the first crossing in
 * step k, if there is one, is at ceil((k·inst + ops) / c). A step can hold a crossing only if
 * the line reaches the stair by the step's top: c·k·cap >= k·inst + ops, that is
 * k >= ops / (c·cap - inst). So the search computes that k, checks a few steps around it
 * (floating point, and the top of a step is a whole number of requests), and confirms every
 * candidate with the same cost function the report prints. */
#include "econ/calc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PER_MILLION 1e6
#define MAX_REQUESTS 10000000000000LL /* 10^13 per month */
#define MAX_TOKENS 100000000LL        /* 10^8 per request */
#define MAX_LIMIT 1e15
/* Steps searched past the first possible one; see pd_calc_crossover. */
#define MAX_STEPS 1000000

/* ---- parameters ------------------------------------------------------------------------ */

void pd_calc_default_params(pd_calc_params *p)
{
    memset(p, 0, sizeof *p);
    p->requests = 1000000;
    p->input_tokens = 500;
    p->output_tokens = 200;
    p->cached_fraction = 0;
    p->apis[0] = "gpt-4o";
    p->apis[1] = "gpt-4o-mini";
    p->n_apis = 2;
    pd_local_cost_default(&p->local);
    p->local_label = "Llama 3.1 8B on an A10G g5.xlarge";
    p->latency_threshold_ms = 100;
    p->spend_threshold_usd = 2000;
    p->crossover_limit = 1e10;
}

static pd_result invalid(char *msg, size_t msglen, const char *text)
{
    snprintf(msg, msglen, "%s", text);
    return PD_ERR_INVALID;
}

static pd_result check_workload(const pd_calc_params *p, char *msg, size_t msglen)
{
    if (p->requests < 0 || p->requests > MAX_REQUESTS)
        return invalid(msg, msglen, "requests per month must be 0 .. 10000000000000");
    if (p->input_tokens < 0 || p->input_tokens > MAX_TOKENS || p->output_tokens < 0 ||
        p->output_tokens > MAX_TOKENS)
        return invalid(msg, msglen, "tokens per request must be 0 .. 100000000");
    if (!(p->cached_fraction >= 0 && p->cached_fraction <= 1))
        return invalid(msg, msglen, "the cached fraction must be 0 .. 1");
    if (p->n_apis < 1 || p->n_apis > PD_CALC_MAX_APIS)
        return invalid(msg, msglen, "give 1 .. 16 API models");
    return PD_OK;
}

static pd_result check_params(const pd_calc_params *p, char *msg, size_t msglen)
{
    pd_result rc = check_workload(p, msg, msglen);
    if (rc)
        return rc;
    rc = pd_local_cost_check(&p->local, msg, msglen);
    if (rc)
        return rc;
    if (p->local.requests_per_hour * p->local.hours_per_month < 1)
        return invalid(msg, msglen, "one instance must serve at least one request a month");
    if (p->latency_target_ms < 0 || p->latency_threshold_ms < 0)
        return invalid(msg, msglen, "latencies must be >= 0");
    if (!(isfinite(p->spend_threshold_usd) && p->spend_threshold_usd >= 0))
        return invalid(msg, msglen, "the spend threshold must be a number >= 0");
    if (!(p->crossover_limit >= 1 && p->crossover_limit <= MAX_LIMIT))
        return invalid(msg, msglen, "the crossover limit must be 1 .. 10^15");
    return PD_OK;
}

/* ---- the options ----------------------------------------------------------------------- */

static pd_result cost_api(const pd_calc_params *p, const pd_prices *prices, size_t i,
                          pd_calc_api *a, char *msg, size_t msglen)
{
    memset(a, 0, sizeof *a);
    a->name = p->apis[i];
    if (!a->name || pd_prices_lookup(prices, a->name, &a->price) != PD_OK) {
        snprintf(msg, msglen, "no price for model '%s' (pendulum prices lists the table)",
                 a->name ? a->name : "");
        return PD_ERR_NOT_FOUND;
    }
    double cached_in = (double)p->input_tokens * p->cached_fraction;
    double uncached_in = (double)p->input_tokens - cached_in;
    double cache_price =
        a->price.cache_read == PD_PRICE_NONE ? a->price.input : a->price.cache_read;
    double n = (double)p->requests;
    /* Token totals first, then the price: exact for the round figures of the example. */
    a->input_usd = n * uncached_in * a->price.input / PER_MILLION;
    a->cached_usd = n * cached_in * cache_price / PER_MILLION;
    a->output_usd = n * (double)p->output_tokens * a->price.output / PER_MILLION;
    a->monthly_usd = a->input_usd + a->cached_usd + a->output_usd;
    a->per_request_usd = (uncached_in * a->price.input + cached_in * cache_price +
                          (double)p->output_tokens * a->price.output) /
                         PER_MILLION;
    return PD_OK;
}

/* Ops cost per month: first-year hours, or steady-state hours afterwards. */
static double ops_usd(const pd_local_cost *m, bool first_year)
{
    double hours = first_year ? m->ops_hours_per_month : m->steady_ops_hours_per_month;
    return hours * m->ops_usd_per_hour;
}

double pd_calc_local_monthly(const pd_local_cost *m, double requests, bool first_year,
                             int64_t *instances)
{
    double k = ceil(requests / (m->requests_per_hour * m->hours_per_month));
    if (k < 1)
        k = 1; /* a deployment has at least one instance, traffic or not */
    if (instances)
        *instances = (int64_t)k;
    return k * (m->hardware_usd_per_hour * m->hours_per_month) + ops_usd(m, first_year);
}

static void cost_local(const pd_calc_params *p, pd_calc_local *l)
{
    const pd_local_cost *m = &p->local;
    l->instance_usd = m->hardware_usd_per_hour * m->hours_per_month;
    l->capacity = m->requests_per_hour * m->hours_per_month;
    l->load = (double)p->requests / l->capacity;
    l->monthly_usd = pd_calc_local_monthly(m, (double)p->requests, true, &l->instances);
    l->steady_state_usd = pd_calc_local_monthly(m, (double)p->requests, false, NULL);
    l->hardware_usd = (double)l->instances * l->instance_usd;
    l->ops_usd = ops_usd(m, true);
    l->steady_ops_usd = ops_usd(m, false);
}

/* ---- crossover ------------------------------------------------------------------------- */

/* One crossover search: the API's price per request against one self-hosted cost. */
typedef struct search {
    const pd_local_cost *m;
    bool first_year;
    double c;    /* API USD per request */
    double cap;  /* requests one instance serves in a month */
    double inst; /* one instance for a month */
    double ops;  /* ops per month */
} search;

static bool self_cheaper(const search *s, double v)
{
    return pd_calc_local_monthly(s->m, v, s->first_year, NULL) <= s->c * v;
}

/* The first volume in step k at which self-hosting is no dearer, or -1. */
static double first_in_step(const search *s, double k)
{
    double lo = k <= 1 ? 1 : floor((k - 1) * s->cap) + 1;
    double hi = floor(k * s->cap);
    double v = fmax(lo, ceil((k * s->inst + s->ops) / s->c));
    /* ceil of a rounded quotient may be one off either way: settle it on the real costs */
    for (int i = 0; i < 4 && v > lo && self_cheaper(s, v - 1); i++)
        v--;
    for (int i = 0; i < 4 && v <= hi && !self_cheaper(s, v); i++)
        v++;
    return v <= hi && self_cheaper(s, v) ? v : -1;
}

int64_t pd_calc_crossover(double c, const pd_local_cost *m, bool first_year, double limit)
{
    search s = {m,
                first_year,
                c,
                m->requests_per_hour * m->hours_per_month,
                m->hardware_usd_per_hour * m->hours_per_month,
                ops_usd(m, first_year)};
    if (!(s.cap >= 1))
        return PD_CALC_NEVER;
    if (!(c > 0)) /* a free API: only a free self-hosted option ties it */
        return self_cheaper(&s, 1) ? 1 : PD_CALC_NEVER;
    double gain = c * s.cap - s.inst; /* what a full instance saves against the API */
    /* The first step that can hold a crossing (one earlier, for rounding), and one by which a
       crossing is certain (a step's top loses at most one request to rounding): k·gain >= ops
       + c. They are more than MAX_STEPS apart only when a full instance saves less than a
       millionth of one API request's price; the search stops there and says "never". */
    double k_first = gain > 0 ? fmax(1, ceil(s.ops / gain) - 1) : 1;
    double k_last = gain > 0 ? ceil((s.ops + c) / gain) + 1 : 2;
    k_last = fmin(k_last, fmin(k_first + MAX_STEPS, ceil(limit / s.cap) + 1));
    for (double k = k_first; k <= k_last; k++) {
        if ((k - 1) * s.cap >= limit)
            break;
        double v = first_in_step(&s, k);
        if (v >= 1)
            return v <= limit ? (int64_t)v : PD_CALC_NEVER;
    }
    return PD_CALC_NEVER;
}

/* ---- recommendation -------------------------------------------------------------------- */

const char *pd_calc_choice_name(pd_calc_choice c)
{
    switch (c) {
    case PD_CALC_API: return "api";
    case PD_CALC_SELF_HOST: return "self-host";
    case PD_CALC_HYBRID: return "hybrid";
    }
    return "api";
}

const char *pd_calc_rule_name(pd_calc_rule r)
{
    static const char *const names[] = {"private-data", "latency", "spend", "quality",
                                        "infra-team"};
    return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

int64_t pd_calc_whole_dollars(double usd)
{
    return llround(usd * 100) / 100;
}

/* "1,234,567" */
static void fmt_grouped(char *out, size_t outlen, int64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < outlen; i++) {
        if (i > 0 && digits[i - 1] != '-' && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* "$1,468" (pd_calc_whole_dollars) */
static void fmt_whole(char *out, size_t outlen, double usd)
{
    char g[40];
    fmt_grouped(g, sizeof g, pd_calc_whole_dollars(usd));
    snprintf(out, outlen, "$%s", g);
}

/* "$734.38" */
static void fmt_cents(char *out, size_t outlen, double usd)
{
    long long cents = llround(usd * 100);
    char g[40];
    fmt_grouped(g, sizeof g, cents / 100);
    snprintf(out, outlen, "$%s.%02lld", g, cents % 100);
}

/* A rate or count as given: "1.006", "730", "812.5". */
static void fmt_num(char *out, size_t outlen, double v)
{
    snprintf(out, outlen, "%.10g", v);
}

static void add_reason(pd_calc_result *r, pd_calc_rule rule, pd_calc_choice favours,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add_reason(pd_calc_result *r, pd_calc_rule rule, pd_calc_choice favours,
                       const char *fmt, ...)
{
    if (r->n_reasons >= PD_CALC_MAX_REASONS)
        return;
    pd_calc_reason *reason = &r->reasons[r->n_reasons++];
    reason->rule = rule;
    reason->favours = favours;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason->text, sizeof reason->text, fmt, ap);
    va_end(ap);
}

static const pd_calc_api *cheapest_api(const pd_calc_result *r)
{
    const pd_calc_api *best = &r->apis[0];
    for (size_t i = 1; i < r->n_apis; i++)
        if (r->apis[i].monthly_usd < best->monthly_usd)
            best = &r->apis[i];
    return best;
}

/* Rule 3: the API bill, judged on the cheapest API the user listed (list only models whose
   quality would do). Returns the side it favours. */
static pd_calc_choice spend_rule(const pd_calc_params *p, pd_calc_result *r)
{
    const pd_calc_api *a = cheapest_api(r);
    char spend[48], limit[48], steady[48], first[48];
    fmt_whole(spend, sizeof spend, a->monthly_usd);
    fmt_whole(limit, sizeof limit, p->spend_threshold_usd);
    fmt_whole(steady, sizeof steady, r->local.steady_state_usd);
    fmt_whole(first, sizeof first, r->local.monthly_usd);
    if (a->monthly_usd <= p->spend_threshold_usd) {
        add_reason(r, PD_RULE_SPEND, PD_CALC_API,
                   "the cheapest API listed, %s, costs %s/month, not above %s/month: below that, "
                   "savings rarely pay for running models yourself",
                   a->name, spend, limit);
        return PD_CALC_API;
    }
    if (r->local.steady_state_usd >= a->monthly_usd) {
        add_reason(r, PD_RULE_SPEND, PD_CALC_API,
                   "the cheapest API listed, %s, costs %s/month, above %s/month, but "
                   "self-hosting would cost %s/month even in steady state",
                   a->name, spend, limit, steady);
        return PD_CALC_API;
    }
    add_reason(r, PD_RULE_SPEND, PD_CALC_SELF_HOST,
               "the cheapest API listed, %s, costs %s/month, above %s/month, and self-hosting "
               "costs %s/month in steady state (%s/month in the first year)",
               a->name, spend, limit, steady, first);
    return PD_CALC_SELF_HOST;
}

static void quality_rule(const pd_calc_params *p, pd_calc_result *r)
{
    if (p->frontier_quality && p->multimodal)
        add_reason(r, PD_RULE_QUALITY, PD_CALC_API,
                   "frontier quality and multimodal input are needed: the strongest models, "
                   "and the best at images and audio, are offered through their providers' APIs");
    else if (p->frontier_quality)
        add_reason(r, PD_RULE_QUALITY, PD_CALC_API,
                   "frontier quality is needed: the strongest models are offered only through "
                   "their providers' APIs");
    else if (p->multimodal)
        add_reason(r, PD_RULE_QUALITY, PD_CALC_API,
                   "multimodal input is needed: the API models are far ahead of what a small "
                   "self-hosted model does with images and audio");
}

/* The decision tree, asked in order; docs/economics.md explains each question. */
static void recommend(const pd_calc_params *p, pd_calc_result *r)
{
    bool must_stay = p->private_data;
    bool fast = p->latency_target_ms > 0 && p->latency_target_ms < p->latency_threshold_ms;
    if (must_stay)
        add_reason(r, PD_RULE_PRIVATE_DATA, PD_CALC_SELF_HOST,
                   "data that must not leave the network can only go to a self-hosted model");
    if (fast)
        add_reason(r, PD_RULE_LATENCY, PD_CALC_SELF_HOST,
                   "a latency target of %lld ms is under %lld ms: a round trip to a cloud API "
                   "rarely meets it, a model on the local network can",
                   (long long)p->latency_target_ms, (long long)p->latency_threshold_ms);
    bool pays = spend_rule(p, r) == PD_CALC_SELF_HOST;
    quality_rule(p, r);
    bool needs_api = p->frontier_quality || p->multimodal;
    if (p->no_infra_team)
        add_reason(r, PD_RULE_INFRA_TEAM, PD_CALC_API,
                   "the team has no infrastructure experience: self-hosting means GPUs, model "
                   "upgrades and on-call, which an API provider does for you");
    if (must_stay || fast)
        r->choice = needs_api ? PD_CALC_HYBRID : PD_CALC_SELF_HOST;
    else if (pays)
        r->choice = needs_api ? PD_CALC_HYBRID : p->no_infra_team ? PD_CALC_API : PD_CALC_SELF_HOST;
    else
        r->choice = PD_CALC_API;
}

/* ---- run ------------------------------------------------------------------------------- */

pd_result pd_calc_run(const pd_calc_params *p, const pd_prices *prices, pd_calc_result *out,
                      char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    pd_result rc = check_params(p, msg, msglen);
    if (rc)
        return rc;
    for (size_t i = 0; i < p->n_apis; i++) {
        rc = cost_api(p, prices, i, &out->apis[i], msg, msglen);
        if (rc)
            return rc;
    }
    out->n_apis = p->n_apis;
    cost_local(p, &out->local);
    for (size_t i = 0; i < out->n_apis; i++) {
        double c = out->apis[i].per_request_usd;
        out->crossover[i].steady_state = pd_calc_crossover(c, &p->local, false, p->crossover_limit);
        out->crossover[i].first_year = pd_calc_crossover(c, &p->local, true, p->crossover_limit);
    }
    recommend(p, out);
    return PD_OK;
}

/* ---- text ------------------------------------------------------------------------------ */

typedef struct writer {
    pd_buf *b;
    pd_result rc;
} writer;

static void put(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(writer *w, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!w->rc)
        w->rc = pd_buf_append_str(w->b, line);
}

static void text_header(writer *w, const pd_calc_params *p)
{
    char n[40], in[40], outt[40], pct[40];
    fmt_grouped(n, sizeof n, p->requests);
    fmt_grouped(in, sizeof in, p->input_tokens);
    fmt_grouped(outt, sizeof outt, p->output_tokens);
    put(w, "Monthly cost of %s requests at %s input + %s output tokens each", n, in, outt);
    if (p->cached_fraction > 0) {
        fmt_num(pct, sizeof pct, p->cached_fraction * 100);
        put(w, ", %s%% of input read from a prompt cache", pct);
    }
    put(w, "\n(API list prices as of %s; monthly totals in whole dollars, cents dropped)\n\n",
        pd_prices_as_of());
}

static int name_width(const pd_calc_result *r)
{
    size_t w = strlen("self-hosted");
    for (size_t i = 0; i < r->n_apis; i++)
        if (strlen(r->apis[i].name) > w)
            w = strlen(r->apis[i].name);
    return (int)w + 2;
}

static void text_api(writer *w, const pd_calc_api *a, int width, bool cached)
{
    char in[48], ca[48], out[48], total[48];
    fmt_whole(in, sizeof in, a->input_usd);
    fmt_whole(ca, sizeof ca, a->cached_usd);
    fmt_whole(out, sizeof out, a->output_usd);
    fmt_whole(total, sizeof total, a->monthly_usd);
    put(w, "%s:%*s%s input", a->name, width - (int)strlen(a->name) - 1, "", in);
    if (cached)
        put(w, " + %s cached input", ca);
    put(w, " + %s output = %s/month\n", out, total);
}

static void text_ops(writer *w, double hours, double rate, double usd, const char *when)
{
    char h[40], r[40], u[48];
    if (usd <= 0)
        return;
    fmt_num(h, sizeof h, hours);
    fmt_num(r, sizeof r, rate);
    fmt_whole(u, sizeof u, usd);
    put(w, "  + %s ops hours x $%s = %s/month %s\n", h, r, u, when);
}

static void text_local(writer *w, const pd_calc_params *p, const pd_calc_local *l)
{
    const pd_local_cost *m = &p->local;
    char hw[40], hours[40], inst[48], n[40], rph[40], hard[48], first[48], steady[48];
    fmt_num(hw, sizeof hw, m->hardware_usd_per_hour);
    fmt_num(hours, sizeof hours, m->hours_per_month);
    fmt_cents(inst, sizeof inst, l->instance_usd);
    fmt_grouped(n, sizeof n, p->requests);
    fmt_num(rph, sizeof rph, m->requests_per_hour);
    fmt_whole(hard, sizeof hard, l->hardware_usd);
    fmt_whole(first, sizeof first, l->monthly_usd);
    fmt_whole(steady, sizeof steady, l->steady_state_usd);
    put(w, "self-hosted (%s):\n", p->local_label ? p->local_label : "local model");
    put(w, "  $%s/h x %s h = %s per instance\n", hw, hours, inst);
    put(w, "  %s requests / (%s requests/h x %s h) = %.2f -> %lld instance%s = %s/month\n", n, rph,
        hours, l->load, (long long)l->instances, l->instances == 1 ? "" : "s", hard);
    text_ops(w, m->ops_hours_per_month, m->ops_usd_per_hour, l->ops_usd, "in the first year");
    text_ops(w, m->steady_ops_hours_per_month, m->ops_usd_per_hour, l->steady_ops_usd,
             "in steady state");
    put(w, "  = %s/month in the first year, %s/month in steady state\n", first, steady);
}

static void fmt_crossing(char *out, size_t outlen, int64_t v)
{
    if (v == PD_CALC_NEVER)
        snprintf(out, outlen, "never");
    else
        fmt_grouped(out, outlen, v);
}

static void text_crossover(writer *w, const pd_calc_params *p, const pd_calc_result *r)
{
    char steady[40], first[40], limit[40];
    int width = name_width(r);
    put(w, "\nCrossover (requests per month from which self-hosting costs no more than the "
           "API):\n");
    for (size_t i = 0; i < r->n_apis; i++) {
        const char *name = r->apis[i].name;
        fmt_crossing(steady, sizeof steady, r->crossover[i].steady_state);
        fmt_crossing(first, sizeof first, r->crossover[i].first_year);
        put(w, "  %s:%*s%s in steady state, %s in the first year\n", name,
            width - (int)strlen(name) - 1, "", steady, first);
    }
    fmt_grouped(limit, sizeof limit, (int64_t)p->crossover_limit);
    put(w, "  (searched up to %s requests per month)\n", limit);
}

static const char *choice_summary(pd_calc_choice c)
{
    switch (c) {
    case PD_CALC_SELF_HOST: return "serve requests from a self-hosted model";
    case PD_CALC_HYBRID:
        return "self-host what must stay local or costs less there, send what needs frontier "
               "quality or multimodal input to an API";
    case PD_CALC_API: break;
    }
    return "send requests to a cloud API";
}

static void text_recommendation(writer *w, const pd_calc_result *r)
{
    put(w, "\nRecommendation: %s (%s)\n", pd_calc_choice_name(r->choice),
        choice_summary(r->choice));
    for (size_t i = 0; i < r->n_reasons; i++)
        put(w, "  - %s, for %s: %s\n", pd_calc_rule_name(r->reasons[i].rule),
            pd_calc_choice_name(r->reasons[i].favours), r->reasons[i].text);
}

pd_result pd_calc_text(const pd_calc_params *p, const pd_calc_result *r, pd_buf *out)
{
    writer w = {out, PD_OK};
    text_header(&w, p);
    int width = name_width(r);
    for (size_t i = 0; i < r->n_apis; i++)
        text_api(&w, &r->apis[i], width, p->cached_fraction > 0);
    text_local(&w, p, &r->local);
    text_crossover(&w, p, r);
    text_recommendation(&w, r);
    return w.rc;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static json_t *count_or_null(int64_t v)
{
    return v == PD_CALC_NEVER ? json_null() : json_integer((json_int_t)v);
}

static json_t *json_assumptions(const pd_calc_params *p)
{
    const pd_local_cost *m = &p->local;
    json_t *apis = json_array();
    for (size_t i = 0; i < p->n_apis; i++)
        json_array_append_new(apis, json_string(p->apis[i] ? p->apis[i] : ""));
    return json_pack(
        "{s:I, s:I, s:I, s:f, s:o, s:f, s:f, s:f, s:f, s:f, s:f, s:o, s:I, s:f, s:b, s:b, "
        "s:b, s:b, s:f}",
        "requests", (json_int_t)p->requests, "input_tokens", (json_int_t)p->input_tokens,
        "output_tokens", (json_int_t)p->output_tokens, "cached_fraction", p->cached_fraction, "api",
        apis, "hardware_usd_per_hour", m->hardware_usd_per_hour, "hours_per_month",
        m->hours_per_month, "requests_per_hour_per_instance", m->requests_per_hour, "ops_hours",
        m->ops_hours_per_month, "ops_usd_per_hour", m->ops_usd_per_hour, "steady_ops_hours",
        m->steady_ops_hours_per_month, "latency_target_ms",
        p->latency_target_ms > 0 ? json_integer((json_int_t)p->latency_target_ms) : json_null(),
        "latency_threshold_ms", (json_int_t)p->latency_threshold_ms, "spend_threshold_usd",
        p->spend_threshold_usd, "private_data", p->private_data, "frontier_quality",
        p->frontier_quality, "multimodal", p->multimodal, "no_infra_team", p->no_infra_team,
        "crossover_limit", p->crossover_limit);
}

static json_t *json_api(const pd_calc_api *a)
{
    return json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f}", "name", a->name,
                     "kind", "api", "model", a->price.model, "monthly_usd", a->monthly_usd,
                     "steady_state_usd", a->monthly_usd, "monthly_usd_whole",
                     (json_int_t)pd_calc_whole_dollars(a->monthly_usd), "steady_state_usd_whole",
                     (json_int_t)pd_calc_whole_dollars(a->monthly_usd), "input_usd", a->input_usd,
                     "cached_input_usd", a->cached_usd, "output_usd", a->output_usd,
                     "per_request_usd", a->per_request_usd);
}

static json_t *json_local(const pd_calc_params *p, const pd_calc_local *l)
{
    return json_pack(
        "{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "name", "self-hosted",
        "kind", "self-hosted", "label", p->local_label ? p->local_label : "", "monthly_usd",
        l->monthly_usd, "steady_state_usd", l->steady_state_usd, "monthly_usd_whole",
        (json_int_t)pd_calc_whole_dollars(l->monthly_usd), "steady_state_usd_whole",
        (json_int_t)pd_calc_whole_dollars(l->steady_state_usd), "instances",
        (json_int_t)l->instances, "load", l->load, "instance_usd", l->instance_usd, "hardware_usd",
        l->hardware_usd, "ops_usd", l->ops_usd, "steady_ops_usd", l->steady_ops_usd);
}

static json_t *json_recommendation(const pd_calc_result *r)
{
    json_t *reasons = json_array();
    for (size_t i = 0; i < r->n_reasons; i++)
        json_array_append_new(reasons, json_pack("{s:s, s:s, s:s}", "rule",
                                                 pd_calc_rule_name(r->reasons[i].rule), "favours",
                                                 pd_calc_choice_name(r->reasons[i].favours), "text",
                                                 r->reasons[i].text));
    return json_pack("{s:s, s:o}", "choice", pd_calc_choice_name(r->choice), "reasons", reasons);
}

json_t *pd_calc_json(const pd_calc_params *p, const pd_calc_result *r)
{
    json_t *options = json_array(), *crossover = json_array();
    for (size_t i = 0; i < r->n_apis; i++) {
        json_array_append_new(options, json_api(&r->apis[i]));
        json_array_append_new(
            crossover, json_pack("{s:s, s:o, s:o}", "api", r->apis[i].name, "steady_state_requests",
                                 count_or_null(r->crossover[i].steady_state), "first_year_requests",
                                 count_or_null(r->crossover[i].first_year)));
    }
    json_array_append_new(options, json_local(p, &r->local));
    return json_pack("{s:s, s:o, s:o, s:o, s:o}", "as_of", pd_prices_as_of(), "assumptions",
                     json_assumptions(p), "options", options, "crossover", crossover,
                     "recommendation", json_recommendation(r));
}
