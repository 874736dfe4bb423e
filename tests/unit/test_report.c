/* test_report.c: the traffic report (econ/report.h): sums, all-cloud pricing, savings,
 * percentiles, the calculator on observed traffic, time parsing, and a round trip through a
 * real SQLite ledger. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "econ/report.h"
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

int main(void)
{
    TEST_RUN(test_spend_cloud_savings);
    TEST_RUN(test_percentiles);
    TEST_RUN(test_reservoir);
    TEST_RUN(test_calculator_on_traffic);
    TEST_RUN(test_empty_and_errors);
    TEST_RUN(test_parse_time);
    TEST_RUN(test_sqlite_round_trip);
    return TEST_DONE();
}
