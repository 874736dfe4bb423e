/* test_report.c: the traffic report (econ/report.h): sums, all-cloud pricing, savings,
 * percentiles, the calculator on observed traffic, time parsing, and a round trip through a
 * real SQLite ledger. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "econ/report.h"
#include "router/from_config.h"
#include "test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)
#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */

static pd_ledger_record rec(const char *id, int64_t ts, const char *target, int status, int64_t in,
                            int64_t out, double cost, double ttft, double total)
{
    pd_ledger_record r;
    pd_ledger_record_init(&r);
    r.id = id;
    r.ts_ms = ts;
    r.route = target;
    r.target = target;
    r.provider = "p";
    r.model = target;
    r.status = status;
    r.attempts = 1;
    r.prompt_tokens = in;
    r.completion_tokens = out;
    r.cost_usd = cost;
    r.ttft_ms = ttft;
    r.total_ms = total;
    return r;
}

static pd_report *new_report(pd_report_params *p)
{
    pd_report *r = NULL;
    char msg[256];
    CHECK(pd_report_new(p, &r, msg, sizeof msg) == PD_OK);
    return r;
}

static const pd_report_group *target_named(const pd_report *r, const char *name)
{
    for (size_t i = 0; i < pd_report_n_targets(r); i++)
        if (!strcmp(pd_report_target(r, i)->name, name))
            return pd_report_target(r, i);
    return NULL;
}

/* gpt-4o: $2.50 in, $10 out per million. A local request: 1.006 / 800 = $0.0012575. */
static void test_spend_cloud_savings(void)
{
    pd_report_params p;
    pd_report_default_params(&p);
    p.local_targets[0] = "llama";
    p.n_local = 1;
    pd_report *r = new_report(&p);
    pd_ledger_record a = rec("a", T0, "gpt-4o-mini", 200, 1000, 100, 0.0002, 10, 50);
    pd_ledger_record b = rec("b", T0 + 1, "llama", 200, 1000, 100, -1, 5, 20);
    pd_ledger_record c = rec("c", T0 + 2, "gpt-4o-mini", 200, 1000, 100, -1, 30, 60); /* unknown */
    pd_ledger_record d = rec("d", T0 + 3, "gpt-4o-mini", 502, -1, -1, -1, -1, 3);     /* failed */
    pd_report_add(r, &a);
    pd_report_add(r, &b);
    pd_report_add(r, &c);
    pd_report_add(r, &d);
    pd_report_finish(r);

    const pd_report_group *t = pd_report_totals(r);
    CHECK(t->requests == 4 && t->errors == 1);
    CHECK(t->cost_known == 2 && t->cost_unknown == 2);
    CHECK(NEAR(t->spend_usd, 0.0002 + 1.006 / 800));
    /* comparable: a and b, each 1000 × 2.5e-6 + 100 × 10e-6 = 0.0035 at gpt-4o */
    CHECK(t->comparable == 2);
    CHECK(NEAR(t->all_cloud_usd, 0.007));
    CHECK(NEAR(t->savings_usd, 0.007 - 0.0002 - 1.006 / 800));

    CHECK(pd_report_n_targets(r) == 2);
    CHECK_STR(pd_report_target(r, 0)->name, "gpt-4o-mini"); /* most requests first */
    const pd_report_group *l = target_named(r, "llama");
    CHECK(l && l->local && l->requests == 1 && NEAR(l->spend_usd, 1.006 / 800));
    const pd_report_group *m = target_named(r, "gpt-4o-mini");
    CHECK(m && !m->local && m->cost_unknown == 2 && m->errors == 1);
    /* the failure's timing is left out: ttft 10 and 30, total 50 and 60 */
    CHECK(m->ttft_ms.n == 2 && NEAR(m->ttft_ms.p50, 10) && NEAR(m->ttft_ms.p99, 30));
    CHECK(m->total_ms.n == 2 && NEAR(m->total_ms.p50, 50));
    CHECK(pd_report_n_routes(r) == 2);
    pd_report_free(r);
}

/* Nearest rank over 1..100: p50 = 50, p99 = 99; an empty series is -1. */
static void test_percentiles(void)
{
    pd_report_params p;
    pd_report_default_params(&p);
    pd_report *r = new_report(&p);
    char id[16];
    for (int i = 100; i >= 1; i--) {
        snprintf(id, sizeof id, "r%d", i);
        pd_ledger_record x = rec(id, T0 + i, "t", 200, 10, 10, 0.001, (double)i, -1);
        pd_report_add(r, &x);
    }
    pd_report_finish(r);
    const pd_report_group *g = pd_report_target(r, 0);
    CHECK(g->ttft_ms.n == 100 && NEAR(g->ttft_ms.p50, 50) && NEAR(g->ttft_ms.p99, 99));
    CHECK(g->total_ms.n == 0 && g->total_ms.p50 < 0 && g->total_ms.p99 < 0);
    pd_report_free(r);
}

/* Past PD_REPORT_MAX_SAMPLES the reservoir keeps the estimate close and memory bounded. */
static void test_reservoir(void)
{
    pd_report_params p;
    pd_report_default_params(&p);
    pd_report *r = new_report(&p);
    int n = PD_REPORT_MAX_SAMPLES * 2;
    for (int i = 0; i < n; i++) {
        pd_ledger_record x = rec("x", T0, "t", 200, 1, 1, 0, (double)(i % 1000), -1);
        pd_report_add(r, &x);
    }
    pd_report_finish(r);
    const pd_report_group *g = pd_report_target(r, 0);
    CHECK(g->ttft_ms.n == n);
    CHECK(fabs(g->ttft_ms.p50 - 500) < 20);
    CHECK(fabs(g->ttft_ms.p99 - 990) < 5);
    pd_report_free(r);
}

/* 10 requests in one hour are 7,300 a month; the means feed the calculator. */
static void test_calculator_on_traffic(void)
{
    pd_report_params p;
    pd_report_default_params(&p);
    p.since_ms = T0;
    p.until_ms = T0 + 3600 * 1000;
    pd_report *r = new_report(&p);
    for (int i = 0; i < 10; i++) {
        pd_ledger_record x =
            rec("x", T0 + i * 1000, "gpt-4o", 200, 400 + (i % 2) * 200, 100, 0.002, 5, 9);
        pd_report_add(r, &x);
    }
    pd_ledger_record late = rec("late", T0 + 3600 * 1000, "gpt-4o", 200, 1, 1, 0.1, 1, 1);
    pd_report_add(r, &late); /* until is exclusive */
    pd_report_finish(r);
    CHECK(pd_report_totals(r)->requests == 10);
    CHECK(NEAR(pd_report_monthly_requests(r), 7300));
    const pd_calc_params *cp = NULL;
    const pd_calc_result *c = pd_report_calc(r, &cp);
    CHECK(c != NULL && pd_report_calc_error(r) == NULL);
    CHECK(cp->requests == 7300 && cp->input_tokens == 500 && cp->output_tokens == 100);
    CHECK(c && c->n_apis == 1 && NEAR(c->apis[0].monthly_usd, 7300 * 0.00225));

    json_t *j = pd_report_json(r);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "cloud_model")), "gpt-4o");
    json_t *calc = json_object_get(j, "calculator");
    CHECK(json_real_value(json_object_get(calc, "monthly_requests")) == 7300);
    CHECK(json_array_size(json_object_get(calc, "options")) == 2);
    json_t *t0 = json_array_get(json_object_get(j, "targets"), 0);
    CHECK(json_integer_value(json_object_get(t0, "requests")) == 10);
    CHECK(json_real_value(json_object_get(json_object_get(t0, "ttft_ms"), "p50")) == 5);
    json_decref(j);

    pd_buf b;
    pd_buf_init(&b, 0);
    CHECK(pd_report_text(r, &b) == PD_OK);
    pd_buf_append(&b, "", 1);
    CHECK(strstr(b.data, "gpt-4o") && strstr(b.data, "7300 requests/month"));
    pd_buf_free(&b);
    pd_report_free(r);
}

/* The calculator runs on what the traffic used. Window 30 min (since / until): x1460 a month.
     r1 gpt-4o-mini, 1000 in (500 cached) / 100 out, $0.0001
     r2 gpt-4o-mini, 1000 / 100, $0.0002
     r3 target "mystery" the table does not know, upstream reported gpt-4o-2024-08-06: gpt-4o
     r4 target "unknown-thing", no upstream model: no price, no API option
   Without a router every request is priced at the reference gpt-4o, so gpt-4o is used by
   1 + 4 requests and comes first, gpt-4o-mini by 2. Requests per month 4 × 1460 = 5840; means
   1000 in / 100 out; cached 500 / 4000 = 12.5 %. Per request, gpt-4o: 875 × 2.5e-6 + 125 ×
   1.25e-6 + 100 × 10e-6 = 0.00334375 (x 5840 = $19.5275); gpt-4o-mini: 875 × 0.15e-6 + 125 ×
   0.075e-6 + 100 × 0.6e-6 = 0.000200625 ($1.17165). Spend (0.0001 + 0.0002 + 0.003) × 1460. */
static void test_calculator_observed(void)
{
    pd_report_params p;
    pd_report_default_params(&p);
    p.since_ms = T0;
    p.until_ms = T0 + 1800 * 1000;
    pd_report *r = new_report(&p);
    pd_ledger_record recs[] = {
        rec("r1", T0 + 1, "gpt-4o-mini", 200, 1000, 100, 0.0001, 5, 9),
        rec("r2", T0 + 2, "gpt-4o-mini", 200, 1000, 100, 0.0002, 5, 9),
        rec("r3", T0 + 3, "mystery", 200, 1000, 100, 0.003, 5, 9),
        rec("r4", T0 + 4, "unknown-thing", 200, 1000, 100, -1, 5, 9),
    };
    recs[0].cached_tokens = 500;
    recs[2].upstream_model = "gpt-4o-2024-08-06";
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
        pd_report_add(r, &recs[i]);
    pd_report_finish(r);

    const pd_report_observed *o = pd_report_observed_traffic(r);
    CHECK(o->requests == 4 && !o->from_first && !o->to_last);
    CHECK(o->from_ms == T0 && o->to_ms == T0 + 1800 * 1000 && NEAR(o->hours, 0.5));
    CHECK(NEAR(o->scale, 1460) && NEAR(o->monthly_requests, 5840));
    CHECK(NEAR(o->monthly_spend_usd, 0.0033 * 1460));
    CHECK(o->input_n == 4 && NEAR(o->input_mean, 1000) && NEAR(o->output_mean, 100));
    CHECK(NEAR(o->cached_fraction, 0.125));
    CHECK(o->n_apis == 2 && o->apis_left_out == 0);
    CHECK_STR(o->apis[0].model, "gpt-4o");
    CHECK(o->apis[0].served == 1 && o->apis[0].priced == 0 && o->apis[0].reference == 4);
    CHECK_STR(o->apis[1].model, "gpt-4o-mini");
    CHECK(o->apis[1].served == 2 && o->apis[1].reference == 0);

    const pd_calc_params *cp = NULL;
    const pd_calc_result *c = pd_report_calc(r, &cp);
    CHECK(c && cp->requests == 5840 && cp->input_tokens == 1000 && cp->output_tokens == 100);
    CHECK(c && c->n_apis == 2 && fabs(c->apis[0].monthly_usd - 19.5275) < 1e-9);
    CHECK(c && fabs(c->apis[1].monthly_usd - 1.17165) < 1e-9);
    /* the crossover and recommendation are the calculator's own for these parameters */
    pd_calc_result direct;
    char msg[256];
    CHECK(pd_calc_run(cp, NULL, &direct, msg, sizeof msg) == PD_OK);
    CHECK(c && direct.crossover[0].steady_state == c->crossover[0].steady_state &&
          direct.choice == c->choice);

    json_t *j = pd_report_json(r);
    json_t *obs = json_object_get(json_object_get(j, "calculator"), "observed");
    CHECK(json_real_value(json_object_get(obs, "scale")) == 1460);
    CHECK_STR(json_string_value(json_object_get(obs, "from")), "since");
    CHECK_STR(json_string_value(json_object_get(obs, "to")), "until");
    json_t *a0 = json_array_get(json_object_get(obs, "apis"), 0);
    CHECK_STR(json_string_value(json_object_get(a0, "model")), "gpt-4o");
    CHECK(json_integer_value(json_object_get(a0, "reference")) == 4);
    json_t *opts = json_object_get(json_object_get(j, "calculator"), "options");
    CHECK(json_array_size(opts) == 3); /* gpt-4o, gpt-4o-mini, self-hosted */
    json_decref(j);

    pd_buf b;
    pd_buf_init(&b, 0);
    CHECK(pd_report_text(r, &b) == PD_OK);
    pd_buf_append(&b, "", 1);
    CHECK(strstr(b.data, "window 2023-11-14T22:13:20Z (--since) to 2023-11-14T22:43:20Z "
                         "(--until) = 0.5 h; 4 requests x 730 h / 0.5 h = 5840 requests/month "
                         "(x1460)") != NULL);
    CHECK(strstr(b.data, "12.5% of input cached") != NULL);
    CHECK(strstr(b.data, "gpt-4o: served 1 cloud requests; the reference for 4 requests") != NULL);
    pd_buf_free(&b);
    pd_report_free(r);
}

static void test_empty_and_errors(void)
{
    pd_report_params p;
    pd_report_default_params(&p);
    pd_report *r = new_report(&p);
    pd_report_finish(r);
    CHECK(pd_report_totals(r)->requests == 0 && pd_report_n_targets(r) == 0);
    CHECK(pd_report_calc(r, NULL) == NULL && pd_report_calc_error(r) != NULL);
    json_t *j = pd_report_json(r);
    CHECK(j && json_is_null(json_object_get(json_object_get(j, "window"), "first_ms")));
    json_decref(j);
    pd_report_free(r);

    char msg[256];
    p.cloud_model = "no-such-model";
    CHECK(pd_report_new(&p, &r, msg, sizeof msg) == PD_ERR_NOT_FOUND && r == NULL);
    CHECK(strstr(msg, "no-such-model") != NULL);
    pd_report_default_params(&p);
    p.local.requests_per_hour = 0;
    CHECK(pd_report_new(&p, &r, msg, sizeof msg) == PD_ERR_INVALID && r == NULL);
    pd_report_free(NULL);
}

static void test_parse_time(void)
{
    int64_t now = T0, t = 0;
    CHECK(pd_report_parse_time("24h", now, &t) == PD_OK && t == now - 86400000LL);
    CHECK(pd_report_parse_time("7d", now, &t) == PD_OK && t == now - 7 * 86400000LL);
    CHECK(pd_report_parse_time("30m", now, &t) == PD_OK && t == now - 1800000LL);
    CHECK(pd_report_parse_time("1.5h", now, &t) == PD_OK && t == now - 5400000LL);
    CHECK(pd_report_parse_time("2023-11-14", now, &t) == PD_OK && t == 1699920000000LL);
    CHECK(pd_report_parse_time("2023-11-14T22:13:20Z", now, &t) == PD_OK && t == T0);
    CHECK(pd_report_parse_time("2023-11-14T22:13", now, &t) == PD_OK && t == T0 - 20000);
    CHECK(pd_report_parse_time("1700000000000", now, &t) == PD_OK && t == T0);
    CHECK(pd_report_parse_time("", now, &t) == PD_ERR_INVALID);
    CHECK(pd_report_parse_time("24", now, &t) == PD_ERR_INVALID);
    CHECK(pd_report_parse_time("24x", now, &t) == PD_ERR_INVALID);
    CHECK(pd_report_parse_time("-1h", now, &t) == PD_ERR_INVALID);
    CHECK(pd_report_parse_time("2023-13-40", now, &t) == PD_ERR_INVALID);
    CHECK(pd_report_parse_time("2023-11-14junk", now, &t) == PD_ERR_INVALID);
}

/* Written by the real ledger writer, read back by pd_report_run with a window. */
static void test_sqlite_round_trip(void)
{
    char dir[] = "/tmp/pd-report-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char url[256], path[200];
    snprintf(path, sizeof path, "%s/l.db", dir);
    snprintf(url, sizeof url, "sqlite://%s", path);
    pd_ledger *l = NULL;
    char err[256];
    CHECK(pd_ledger_open(url, NULL, &l, err, sizeof err) == PD_OK);
    char id[16];
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "q%d", i);
        pd_ledger_record x = rec(id, T0 + i * 1000, i < 4 ? "cloud" : "edge", 200, 100, 10,
                                 i < 4 ? 0.001 : -1, 4.0 + i, 8.0 + i);
        CHECK(pd_ledger_submit(l, &x) == PD_OK);
    }
    pd_ledger_close(l, NULL);

    pd_report_params p;
    pd_report_default_params(&p);
    p.since_ms = T0 + 1000; /* drops q0 */
    p.local_targets[0] = "edge";
    p.n_local = 1;
    pd_report *r = NULL;
    CHECK(pd_report_run(url, &p, &r, err, sizeof err) == PD_OK);
    if (r) {
        CHECK(pd_report_totals(r)->requests == 5);
        const pd_report_group *c = target_named(r, "cloud"), *e = target_named(r, "edge");
        CHECK(c && c->requests == 3 && NEAR(c->spend_usd, 0.003));
        CHECK(e && e->local && e->requests == 2 && e->cost_unknown == 0);
        CHECK(c && NEAR(c->ttft_ms.p50, 6));
    }
    pd_report_free(r);

    char missing[256];
    snprintf(missing, sizeof missing, "sqlite://%s/none.db", dir);
    r = NULL;
    CHECK(pd_report_run(missing, &p, &r, err, sizeof err) != PD_OK && r == NULL);
    unlink(path);
    char side[220];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    snprintf(side, sizeof side, "%s/none.db", dir);
    unlink(side);
    rmdir(dir);
}

/* ---- all-cloud per route ----------------------------------------------------------------- */

static pd_ledger_record routed(const char *id, const char *route, const char *target, int64_t in,
                               int64_t out, double cost)
{
    pd_ledger_record r = rec(id, T0, target, 200, in, out, cost, 5, 10);
    r.route = route;
    return r;
}

static const pd_report_group *route_named(const pd_report *r, const char *name)
{
    for (size_t i = 0; i < pd_report_n_routes(r); i++)
        if (!strcmp(pd_report_route(r, i)->name, name))
            return pd_report_route(r, i);
    return NULL;
}

/* Targets llama and edge run locally; gpt-4o and gpt-4o-mini are cloud. Routes: auto (privacy:
   local branch llama, cloud branch gpt-4o), local-only (edge alone) and smart (tiered:
   gpt-4o-mini below 0.5, gpt-4o on top). The reference model is gpt-4o-mini ($0.15 in, $0.60
   out per million), so a fallback to it shows; gpt-4o is $2.50 / $10. A local request costs
   1.006 / 800 = $0.0012575.
     a  auto via llama, 1000 / 100    at auto's cloud branch gpt-4o: 0.0025 + 0.001 = 0.0035
     b  auto via gpt-4o, charged 0.003 (below list: a discount) -> as charged: 0.003
     c  gone (a route the config no longer has) via llama, 2000 / 200
                                      at the reference: 0.0003 + 0.00012 = 0.00042
     d  local-only via edge, 1000 / 100   no cloud target, the reference: 0.00015 + 0.00006
     e  smart via gpt-4o-mini, charged 0.0002 -> 0.0002
   all-cloud 0.0035 + 0.003 + 0.00042 + 0.00021 + 0.0002 = 0.00733;
   spend 3 × 0.0012575 + 0.003 + 0.0002 = 0.0069725; savings 0.0003575. */
static void test_all_cloud_per_route(void)
{
    static const pd_target_attrs targets[] = {
        {.model = "llama", .local = true, .retention_days = -1},
        {.model = "edge", .local = true, .retention_days = -1},
        {.model = "gpt-4o", .retention_days = -1},
        {.model = "gpt-4o-mini", .retention_days = -1},
    };
    static const char *const edge_only[] = {"edge"};
    static const pd_route_tier tiers[] = {{true, 0.5, "gpt-4o-mini"}, {false, 0, "gpt-4o"}};
    static const pd_route_def routes[] = {
        {.name = "auto", .policy = PD_POLICY_PRIVACY, .local = "llama", .cloud = "gpt-4o"},
        {.name = "local-only", .policy = PD_POLICY_FALLBACK, .targets = edge_only, .n_targets = 1},
        {.name = "smart", .policy = PD_POLICY_TIERED, .tiers = tiers, .n_tiers = 2},
    };
    pd_router *router = NULL;
    char err[256] = "";
    CHECK(pd_router_new(routes, 3, targets, 4, &router, err, sizeof err) == PD_OK);
    pd_report_params p;
    pd_report_default_params(&p);
    p.cloud_model = "gpt-4o-mini";
    p.local_targets[0] = "llama";
    p.local_targets[1] = "edge";
    p.n_local = 2;
    p.router = router;
    pd_report *r = new_report(&p);
    pd_ledger_record recs[] = {
        routed("a", "auto", "llama", 1000, 100, -1),
        routed("b", "auto", "gpt-4o", 1000, 100, 0.003),
        routed("c", "gone", "llama", 2000, 200, -1),
        routed("d", "local-only", "edge", 1000, 100, -1),
        routed("e", "smart", "gpt-4o-mini", 1000, 100, 0.0002),
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
        pd_report_add(r, &recs[i]);
    pd_report_finish(r);

    const pd_report_group *t = pd_report_totals(r);
    CHECK(t->comparable == 5);
    CHECK(NEAR(t->all_cloud_usd, 0.00733));
    CHECK(NEAR(t->spend_usd, 3 * 0.0012575 + 0.0032));
    CHECK(NEAR(t->savings_usd, 0.00733 - 3 * 0.0012575 - 0.0032));
    CHECK(t->basis.route_target == 1 && t->basis.charged == 2 && t->basis.unknown_route == 1 &&
          t->basis.no_cloud_target == 1 && t->basis.reference == 0 &&
          t->basis.unpriced_target == 0);

    const pd_report_group *g = route_named(r, "auto");
    CHECK(g && NEAR(g->all_cloud_usd, 0.0065) && g->basis.route_target == 1 &&
          g->basis.charged == 1);
    CHECK(g && !strcmp(g->cloud_target, "gpt-4o"));
    g = route_named(r, "smart");
    CHECK(g && !strcmp(g->cloud_target, "gpt-4o") && NEAR(g->all_cloud_usd, 0.0002));
    g = route_named(r, "gone");
    CHECK(g && g->cloud_target[0] == '\0' && NEAR(g->all_cloud_usd, 0.00042));
    g = route_named(r, "local-only");
    CHECK(g && g->cloud_target[0] == '\0' && NEAR(g->all_cloud_usd, 0.00021));
    g = target_named(r, "gpt-4o");
    CHECK(g && NEAR(g->savings_usd, 0)); /* a cloud request saves nothing against itself */

    json_t *j = pd_report_json(r);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "all_cloud"), "by")), "route");
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(j, "all_cloud"), "reference_model")),
        "gpt-4o-mini");
    json_t *basis = json_object_get(json_object_get(j, "totals"), "all_cloud_basis");
    CHECK(json_integer_value(json_object_get(basis, "charged")) == 2);
    CHECK(json_integer_value(json_object_get(basis, "unknown_route")) == 1);
    json_t *routes_j = json_object_get(j, "routes");
    size_t seen = 0;
    for (size_t i = 0; i < json_array_size(routes_j); i++) {
        json_t *o = json_array_get(routes_j, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        json_t *ct = json_object_get(o, "cloud_target");
        if (!strcmp(name, "auto") && json_is_string(ct) && !strcmp(json_string_value(ct), "gpt-4o"))
            seen++;
        if (!strcmp(name, "gone") && json_is_null(ct))
            seen++;
    }
    CHECK(seen == 2);
    json_decref(j);

    pd_buf b;
    pd_buf_init(&b, 0);
    CHECK(pd_report_text(r, &b) == PD_OK);
    CHECK(strstr(b.data, "1 local requests at their route's cloud target, 2 cloud requests as "
                         "charged, 2 at gpt-4o-mini (1 route without a cloud target, 1 route "
                         "not in the config, 0 cloud target without a price)") != NULL);
    pd_buf_free(&b);

    /* The calculator compares what this traffic used: gpt-4o-mini served e and was the
       reference for c and d; gpt-4o served b and priced a. All at T0: a window of 1 s, so
       5 × 730 × 3600 = 13,140,000 requests a month of 1200 in / 120 out on average:
       gpt-4o-mini 1200 × 0.15e-6 + 120 × 0.6e-6 = 0.000252, gpt-4o 0.003 + 0.0012 = 0.0042. */
    const pd_report_observed *o = pd_report_observed_traffic(r);
    CHECK(o->from_first && o->to_last && NEAR(o->monthly_requests, 13140000));
    CHECK(o->n_apis == 2);
    CHECK_STR(o->apis[0].model, "gpt-4o-mini");
    CHECK(o->apis[0].served == 1 && o->apis[0].reference == 2 && o->apis[0].priced == 0);
    CHECK_STR(o->apis[1].model, "gpt-4o");
    CHECK(o->apis[1].served == 1 && o->apis[1].priced == 1 && o->apis[1].reference == 0);
    const pd_calc_params *cp = NULL;
    const pd_calc_result *c = pd_report_calc(r, &cp);
    CHECK(c && fabs(c->apis[0].monthly_usd - 13140000 * 0.000252) < 1e-6);
    CHECK(c && fabs(c->apis[1].monthly_usd - 13140000 * 0.0042) < 1e-6);
    CHECK_STR(cp->local_label, "local targets: llama, edge");
    pd_report_free(r);
    pd_router_free(router);
}

/* Without a router every request is priced at the reference, and JSON says so. */
static void test_all_cloud_reference(void)
{
    pd_report_params p;
    pd_report_default_params(&p);
    pd_report *r = new_report(&p);
    pd_ledger_record a = routed("a", "auto", "gpt-4o-mini", 1000, 100, 0.0002);
    pd_report_add(r, &a);
    pd_report_finish(r);
    CHECK(NEAR(pd_report_totals(r)->all_cloud_usd, 0.0035));
    CHECK(pd_report_totals(r)->basis.reference == 1);
    json_t *j = pd_report_json(r);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "all_cloud"), "by")),
              "reference");
    json_t *route0 = json_array_get(json_object_get(j, "routes"), 0);
    CHECK(route0 && json_object_get(route0, "cloud_target") == NULL);
    json_decref(j);
    pd_report_free(r);
}

/* From a gateway config: a provider marked local: true makes its model local; the route's cloud
   target "big" is priced by its upstream model gpt-4o with the config's override ($1 in, $2
   out): 1000 × 1e-6 + 100 × 2e-6 = 0.0012. */
static void test_all_cloud_from_config(void)
{
    static const char yaml[] =
        "providers:\n"
        "  - { name: home, kind: openai, base_url: \"http://127.0.0.1:1/v1\", api_key: \"\", "
        "local: true }\n"
        "  - { name: cloud, kind: openai, base_url: \"http://127.0.0.1:2/v1\", api_key: \"\" }\n"
        "models:\n"
        "  - { name: home-llama, provider: home }\n"
        "  - { name: big, provider: cloud, upstream_model: gpt-4o }\n"
        "routes:\n"
        "  - { name: auto, policy: privacy, local: home-llama, cloud: big }\n"
        "prices:\n"
        "  - { model: gpt-4o, input: 1, output: 2 }\n";
    char err[512] = "";
    pd_config *cfg = pd_config_load_string(yaml, strlen(yaml), "t.yaml", err, sizeof err);
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  config: %s\n", err);
        return;
    }
    pd_router *router = NULL;
    pd_prices *prices = NULL;
    CHECK(pd_router_from_config(cfg, &router, err, sizeof err) == PD_OK);
    CHECK(pd_prices_from_config(cfg, &prices, err, sizeof err) == PD_OK);
    pd_report_params p;
    pd_report_default_params(&p);
    pd_report_params_from_config(&p, cfg);
    CHECK(p.n_local == 1 && !strcmp(p.local_targets[0], "home-llama"));
    p.router = router;
    p.prices = prices;
    pd_report *r = new_report(&p);
    pd_ledger_record a = routed("a", "auto", "home-llama", 1000, 100, -1);
    pd_report_add(r, &a);
    pd_report_finish(r);
    CHECK(NEAR(pd_report_totals(r)->all_cloud_usd, 0.0012));
    CHECK(pd_report_totals(r)->basis.route_target == 1);
    CHECK(!strcmp(pd_report_route(r, 0)->cloud_target, "big"));
    pd_report_free(r);
    pd_prices_free(prices);
    pd_router_free(router);
    pd_config_free(cfg);
}

int main(void)
{
    TEST_RUN(test_spend_cloud_savings);
    TEST_RUN(test_percentiles);
    TEST_RUN(test_reservoir);
    TEST_RUN(test_calculator_on_traffic);
    TEST_RUN(test_calculator_observed);
    TEST_RUN(test_empty_and_errors);
    TEST_RUN(test_parse_time);
    TEST_RUN(test_sqlite_round_trip);
    TEST_RUN(test_all_cloud_per_route);
    TEST_RUN(test_all_cloud_reference);
    TEST_RUN(test_all_cloud_from_config);
    return TEST_DONE();
}
