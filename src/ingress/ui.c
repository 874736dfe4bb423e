/* ui.c: the web page (GET /ui) and the two JSON endpoints behind it.
 *
 *   GET /ui, /ui/app.js, /ui/style.css  the page, embedded at build time (ui_assets.c, made by
 *                                       tools/embed_assets.sh from the files in ui/): no CDN
 *   GET /ui/api/calc?requests=..        the calculator (pd_calc_run, the same code as
 *                                       `pendulum cost`) plus a cost-against-volume curve
 *   GET /ui/api/dashboard?minutes=N     the report (econ/report.h) over the last N minutes of
 *                                       the ledger (default 60, at most 10080)
 *
 * Why the dashboard reads the ledger and not the metrics registry: the registry holds
 * histograms (percentiles only to a bucket) and no costs per route, while the ledger has every
 * request, so the page shows exactly what `pendulum report` shows for the same window, from one
 * implementation. The ledger's writer commits within flush_ms (200 ms by default), so a request
 * appears on the page that soon after it ends.
 *
 * The read is synchronous on the worker's loop: a short-lived SQLite WAL reader over a bounded
 * window (the writer is not blocked). It is an operator's page, not a hot path, but a very
 * large window does hold this worker's other connections while it is read; docs/dashboard.md
 * says so and the window is capped. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "econ/calc.h"
#include "econ/report.h"
#include "ingress/ingress.h"

/* Defined by the generated ui_assets.c (same layout there). */
struct pd_ui_asset {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t len;
};
extern const struct pd_ui_asset pd_ui_assets[];
extern const size_t pd_ui_n_assets;

#define DEFAULT_MINUTES 60
#define MAX_MINUTES 10080 /* a week */
#define CURVE_POINTS 61

/* ---- the static files -------------------------------------------------------------------- */

static const struct pd_ui_asset *find_asset(const char *path)
{
    if (!strcmp(path, "/ui") || !strcmp(path, "/ui/"))
        path = "/ui/index.html";
    for (size_t i = 0; i < pd_ui_n_assets; i++)
        if (!strcmp(pd_ui_assets[i].path, path))
            return &pd_ui_assets[i];
    return NULL;
}

void pd_ingress_ui(pd_ingress_ctx *ctx)
{
    const struct pd_ui_asset *a = find_asset(ctx->path);
    if (!a) {
        pd_api_error e;
        pd_openai_error_set(&e, 404, NULL, "not_found", NULL, "no file %s", ctx->path);
        pd_reply_error(ctx, &e);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(ctx->req);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    /* Everything the page needs comes from here: a CDN or injected script cannot load. */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    pd_reply_body(ctx, 200, a->content_type, (const char *)a->data, a->len);
}

/* ---- replies ----------------------------------------------------------------------------- */

static void reply_doc(pd_ingress_ctx *ctx, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(doc);
    if (!text) {
        pd_api_error e;
        pd_openai_error_set(&e, 500, NULL, NULL, NULL, "cannot build the reply");
        pd_reply_error(ctx, &e);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(ctx->req), "Cache-Control", "no-store");
    pd_reply_json(ctx, 200, text, strlen(text));
    free(text);
}

static void reply_bad(pd_ingress_ctx *ctx, int status, const char *param, const char *msg)
{
    pd_api_error e;
    pd_openai_error_set(&e, status, NULL, status == 400 ? "invalid_parameter" : NULL, param, "%s",
                        msg);
    pd_reply_error(ctx, &e);
}

/* ---- GET /ui/api/calc -------------------------------------------------------------------- */

typedef enum { Q_INT, Q_NUM } q_kind;

typedef struct q_param {
    const char *name;
    q_kind kind;
    size_t offset; /* in pd_calc_params */
} q_param;

#define F(field) offsetof(pd_calc_params, field)
/* The query parameters: the names of `pendulum cost`'s flags, with '_' for '-'. */
static const q_param calc_params[] = {
    {"requests", Q_INT, F(requests)},
    {"input_tokens", Q_INT, F(input_tokens)},
    {"output_tokens", Q_INT, F(output_tokens)},
    {"cached_fraction", Q_NUM, F(cached_fraction)},
    {"hardware_usd_per_hour", Q_NUM, F(local.hardware_usd_per_hour)},
    {"hours_per_month", Q_NUM, F(local.hours_per_month)},
    {"requests_per_hour_per_instance", Q_NUM, F(local.requests_per_hour)},
    {"ops_hours", Q_NUM, F(local.ops_hours_per_month)},
    {"steady_ops_hours", Q_NUM, F(local.steady_ops_hours_per_month)},
    {"ops_usd_per_hour", Q_NUM, F(local.ops_usd_per_hour)},
};
#undef F

static int parse_value(const q_param *q, const char *v, pd_calc_params *p)
{
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !isfinite(d))
        return -1;
    char *base = (char *)p + q->offset;
    if (q->kind == Q_NUM) {
        *(double *)base = d;
        return 0;
    }
    if (d < 0 || d > 1e15 || d != floor(d))
        return -1;
    *(int64_t *)base = (int64_t)d;
    return 0;
}

/* Splits "a,b" in place into p->apis (the string outlives p). */
static int parse_apis(char *s, pd_calc_params *p)
{
    char *item;
    p->n_apis = 0;
    while ((item = strsep(&s, ",")) != NULL) {
        if (!*item || p->n_apis == PD_CALC_MAX_APIS)
            return -1;
        p->apis[p->n_apis++] = item;
    }
    return 0;
}

/* 0, or -1 with the bad parameter's name in *bad. */
static int parse_calc_query(struct evkeyvalq *q, pd_calc_params *p, char **apis_copy,
                            const char **bad)
{
    for (struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
        *bad = kv->key;
        if (!strcmp(kv->key, "api")) {
            free(*apis_copy);
            *apis_copy = pd_xstrdup(kv->value);
            if (parse_apis(*apis_copy, p) != 0)
                return -1;
            continue;
        }
        size_t i = 0, n = sizeof calc_params / sizeof calc_params[0];
        while (i < n && strcmp(calc_params[i].name, kv->key) != 0)
            i++;
        if (i == n || parse_value(&calc_params[i], kv->value, p) != 0)
            return -1;
    }
    return 0;
}

/* The volumes of the chart: log-spaced over a range that holds the workload and every
   crossover with room on both sides. */
static void curve_range(const pd_calc_params *p, const pd_calc_result *r, double *lo, double *hi)
{
    double a = p->requests > 0 ? (double)p->requests : 1e6, b = a;
    for (size_t i = 0; i < r->n_apis; i++) {
        int64_t c[2] = {r->crossover[i].first_year, r->crossover[i].steady_state};
        for (int k = 0; k < 2; k++) {
            if (c[k] == PD_CALC_NEVER)
                continue;
            a = fmin(a, (double)c[k]);
            b = fmax(b, (double)c[k]);
        }
    }
    *lo = fmax(1000, a / 10);
    *hi = fmax(*lo * 100, b * 10);
}

static json_t *json_curve(const pd_calc_params *p, const pd_calc_result *r)
{
    double lo, hi;
    curve_range(p, r, &lo, &hi);
    json_t *vol = json_array(), *series = json_array();
    json_t *apis[PD_CALC_MAX_APIS], *first = json_array(), *steady = json_array();
    for (size_t i = 0; i < r->n_apis; i++)
        apis[i] = json_array();
    for (int k = 0; k < CURVE_POINTS; k++) {
        double v = round(lo * pow(hi / lo, (double)k / (CURVE_POINTS - 1)));
        json_array_append_new(vol, json_real(v));
        for (size_t i = 0; i < r->n_apis; i++)
            json_array_append_new(apis[i], json_real(r->apis[i].per_request_usd * v));
        json_array_append_new(first, json_real(pd_calc_local_monthly(&p->local, v, true, NULL)));
        json_array_append_new(steady, json_real(pd_calc_local_monthly(&p->local, v, false, NULL)));
    }
    for (size_t i = 0; i < r->n_apis; i++)
        json_array_append_new(series, json_pack("{s:s, s:s, s:o}", "name", r->apis[i].name, "kind",
                                                "api", "usd", apis[i]));
    json_array_append_new(series, json_pack("{s:s, s:s, s:o}", "name", "self-hosted, first year",
                                            "kind", "first_year", "usd", first));
    json_array_append_new(series, json_pack("{s:s, s:s, s:o}", "name", "self-hosted, steady state",
                                            "kind", "steady_state", "usd", steady));
    return json_pack("{s:o, s:o}", "requests", vol, "series", series);
}

void pd_ingress_ui_calc(pd_ingress_ctx *ctx)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    struct evkeyvalq q = {0}; /* evhttp_parse_query_str initialises it */
    const char *uri = evhttp_request_get_uri(ctx->req), *qs = strchr(uri ? uri : "", '?');
    char *apis_copy = NULL, msg[512];
    const char *bad = NULL;
    if (qs && evhttp_parse_query_str(qs + 1, &q) != 0) {
        reply_bad(ctx, 400, NULL, "malformed query string");
        goto out;
    }
    if (parse_calc_query(&q, &p, &apis_copy, &bad) != 0) {
        snprintf(msg, sizeof msg, "unknown parameter or bad value: %s", bad);
        reply_bad(ctx, 400, bad, msg);
        goto out;
    }
    pd_calc_result r;
    pd_result rc = pd_calc_run(&p, NULL, &r, msg, sizeof msg);
    if (rc != PD_OK) {
        reply_bad(ctx, 400, NULL, msg);
        goto out;
    }
    json_t *doc = pd_calc_json(&p, &r);
    if (doc)
        json_object_set_new(doc, "curve", json_curve(&p, &r));
    reply_doc(ctx, doc);
out:
    evhttp_clear_headers(&q);
    free(apis_copy);
}

/* ---- GET /ui/api/dashboard --------------------------------------------------------------- */

static int query_minutes(pd_ingress_ctx *ctx, long *minutes)
{
    *minutes = DEFAULT_MINUTES;
    const char *uri = evhttp_request_get_uri(ctx->req), *qs = strchr(uri ? uri : "", '?');
    if (!qs)
        return 0;
    struct evkeyvalq q = {0}; /* evhttp_parse_query_str initialises it */
    int rc = evhttp_parse_query_str(qs + 1, &q) == 0 ? 0 : -1;
    const char *v = rc == 0 ? evhttp_find_header(&q, "minutes") : NULL;
    if (v) {
        char *end;
        *minutes = strtol(v, &end, 10);
        if (!*v || *end || *minutes < 1 || *minutes > MAX_MINUTES)
            rc = -1;
    }
    evhttp_clear_headers(&q);
    return rc;
}

void pd_ingress_ui_dashboard(pd_ingress_ctx *ctx)
{
    const pd_config *cfg = ctx->w->cfg;
    long minutes;
    if (query_minutes(ctx, &minutes) != 0) {
        reply_bad(ctx, 400, "minutes", "minutes must be a whole number from 1 to 10080");
        return;
    }
    if (!ctx->w->ledger) {
        reply_bad(ctx, 503, NULL, "the ledger is off (ledger: off in the config)");
        return;
    }
    pd_report_params p;
    pd_report_default_params(&p);
    int64_t now = (int64_t)pd_wall_ms();
    p.since_ms = now - (int64_t)minutes * 60000;
    p.until_ms = now + 1000; /* a request that began a moment ago and just ended */
    /* What `pendulum report --config` does with the same config: this worker's router and
       price table are built from it. */
    pd_report_params_from_config(&p, cfg);
    p.router = ctx->w->router;
    p.prices = ctx->w->prices;
    pd_report *r = NULL;
    char msg[512];
    if (pd_report_run(cfg->ledger_url, &p, &r, msg, sizeof msg) != PD_OK) {
        reply_bad(ctx, 503, NULL, msg);
        return;
    }
    json_t *doc = pd_report_json(r);
    pd_report_free(r);
    if (doc) {
        json_object_set_new(doc, "minutes", json_integer(minutes));
        json_object_set_new(doc, "generated_ms", json_integer((json_int_t)now));
        json_object_set_new(doc, "ledger", json_string(pd_ledger_describe(ctx->w->ledger)));
    }
    reply_doc(ctx, doc);
}
