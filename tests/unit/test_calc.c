/* The cost calculator: the worked example of issue 6 (every figure, text and JSON), the
 * crossover search against hand-computed volumes, and the decision tree. */
#include <math.h>
#include <stdlib.h>

#include "econ/calc.h"
#include "test.h"

static int near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

/* Runs the calculator; returns the result code. */
static pd_result run(const pd_calc_params *p, pd_calc_result *r)
{
    char msg[256] = "";
    pd_result rc = pd_calc_run(p, NULL, r, msg, sizeof msg);
    if (rc)
        fprintf(stderr, "  pd_calc_run: %s\n", msg);
    return rc;
}

static void worked_example_figures(void)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    /* the invocation: --requests 1000000 --input-tokens 500 --output-tokens 200 */
    CHECK(p.requests == 1000000 && p.input_tokens == 500 && p.output_tokens == 200);
    pd_calc_result r;
    CHECK(run(&p, &r) == PD_OK);
    CHECK(r.n_apis == 2);
    /* gpt-4o: 500M input x $2.50 = $1,250; 200M output x $10 = $2,000 */
    CHECK_STR(r.apis[0].name, "gpt-4o");
    CHECK(near(r.apis[0].input_usd, 1250) && near(r.apis[0].output_usd, 2000));
    CHECK(near(r.apis[0].monthly_usd, 3250) && r.apis[0].cached_usd == 0);
    CHECK(near(r.apis[0].per_request_usd, 0.00325));
    /* gpt-4o-mini: 500M x $0.15 = $75; 200M x $0.60 = $120 */
    CHECK_STR(r.apis[1].name, "gpt-4o-mini");
    CHECK(near(r.apis[1].input_usd, 75) && near(r.apis[1].output_usd, 120));
    CHECK(near(r.apis[1].monthly_usd, 195));
    /* self-hosted: $1.006 x 730 = $734.38 an instance; 1e6 / (800 x 730) = 1.712 -> 2 */
    CHECK(near(r.local.instance_usd, 734.38));
    CHECK(near(r.local.capacity, 584000));
    CHECK(near(r.local.load, 1e6 / 584000.0));
    CHECK(r.local.instances == 2);
    CHECK(near(r.local.hardware_usd, 1468.76));
    CHECK(near(r.local.ops_usd, 1500) && r.local.steady_ops_usd == 0);
    CHECK(near(r.local.monthly_usd, 2968.76) && near(r.local.steady_state_usd, 1468.76));
    CHECK(pd_calc_whole_dollars(r.local.monthly_usd) == 2968);
    CHECK(pd_calc_whole_dollars(r.local.steady_state_usd) == 1468);
}

static int has(const char *text, const char *needle)
{
    if (strstr(text, needle))
        return 1;
    fprintf(stderr, "  missing: %s\n", needle);
    return 0;
}

static void worked_example_text(void)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    pd_calc_result r;
    CHECK(run(&p, &r) == PD_OK);
    pd_buf b;
    pd_buf_init(&b, 64 * 1024);
    CHECK(pd_calc_text(&p, &r, &b) == PD_OK);
    const char *t = b.data;
    CHECK(has(t, "Monthly cost of 1,000,000 requests at 500 input + 200 output tokens each\n"));
    CHECK(has(t, "\ngpt-4o:      $1,250 input + $2,000 output = $3,250/month\n"));
    CHECK(has(t, "\ngpt-4o-mini: $75 input + $120 output = $195/month\n"));
    CHECK(has(t, "\nself-hosted (Llama 3.1 8B on an A10G g5.xlarge):\n"));
    CHECK(has(t, "\n  $1.006/h x 730 h = $734.38 per instance\n"));
    CHECK(has(t, "\n  1,000,000 requests / (800 requests/h x 730 h) = 1.71 -> 2 instances = "
                 "$1,468/month\n"));
    CHECK(has(t, "\n  + 10 ops hours x $150 = $1,500/month in the first year\n"));
    CHECK(has(t, "\n  = $2,968/month in the first year, $1,468/month in steady state\n"));
    CHECK(has(t, "\n  gpt-4o:      225,964 in steady state, 913,465 in the first year\n"));
    CHECK(has(t, "\n  gpt-4o-mini: never in steady state, never in the first year\n"));
    CHECK(has(t, "\nRecommendation: api "));
    CHECK(has(t, "\n  - spend, for api: the cheapest API listed, gpt-4o-mini, costs $195/month, "
                 "not above $2,000/month"));
    /* no steady-state ops line when there are no steady-state ops hours */
    CHECK(!strstr(t, "in steady state\n  ="));
    CHECK(!strstr(t, "$1,469") && !strstr(t, "$2,969")); /* cents dropped, not rounded */
    pd_buf_free(&b);
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static json_int_t integer(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void worked_example_json(void)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    pd_calc_result r;
    CHECK(run(&p, &r) == PD_OK);
    json_t *j = pd_calc_json(&p, &r);
    CHECK(j != NULL);
    json_t *opts = json_object_get(j, "options");
    CHECK(json_array_size(opts) == 3);
    json_t *g = json_array_get(opts, 0), *m = json_array_get(opts, 1), *s = json_array_get(opts, 2);
    CHECK_STR(json_string_value(json_object_get(g, "name")), "gpt-4o");
    CHECK(near(num(g, "monthly_usd"), 3250) && near(num(g, "steady_state_usd"), 3250));
    CHECK(integer(g, "monthly_usd_whole") == 3250);
    CHECK(near(num(g, "input_usd"), 1250) && near(num(g, "output_usd"), 2000));
    CHECK_STR(json_string_value(json_object_get(m, "name")), "gpt-4o-mini");
    CHECK(near(num(m, "monthly_usd"), 195) && integer(m, "steady_state_usd_whole") == 195);
    CHECK(near(num(m, "input_usd"), 75) && near(num(m, "output_usd"), 120));
    CHECK_STR(json_string_value(json_object_get(s, "name")), "self-hosted");
    CHECK(near(num(s, "monthly_usd"), 2968.76) && near(num(s, "steady_state_usd"), 1468.76));
    CHECK(integer(s, "monthly_usd_whole") == 2968 && integer(s, "steady_state_usd_whole") == 1468);
    CHECK(near(num(s, "instance_usd"), 734.38) && integer(s, "instances") == 2);
    CHECK(near(num(s, "ops_usd"), 1500));

    json_t *x = json_object_get(j, "crossover");
    CHECK(json_array_size(x) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(x, 0), "api")), "gpt-4o");
    CHECK(integer(json_array_get(x, 0), "steady_state_requests") == 225964);
    CHECK(integer(json_array_get(x, 0), "first_year_requests") == 913465);
    CHECK(json_is_null(json_object_get(json_array_get(x, 1), "steady_state_requests")));
    CHECK(json_is_null(json_object_get(json_array_get(x, 1), "first_year_requests")));

    json_t *rec = json_object_get(j, "recommendation");
    CHECK_STR(json_string_value(json_object_get(rec, "choice")), "api");
    json_t *reason = json_array_get(json_object_get(rec, "reasons"), 0);
    CHECK_STR(json_string_value(json_object_get(reason, "rule")), "spend");
    CHECK_STR(json_string_value(json_object_get(reason, "favours")), "api");
    CHECK_STR(json_string_value(json_object_get(j, "as_of")), pd_prices_as_of());
    CHECK(integer(json_object_get(j, "assumptions"), "requests") == 1000000);

    /* the full-precision figures print as the example's numbers */
    char *text = json_dumps(s, JSON_COMPACT | JSON_REAL_PRECISION(15));
    CHECK(text && strstr(text, "\"monthly_usd\":2968.76,\"steady_state_usd\":1468.76,"
                               "\"monthly_usd_whole\":2968,\"steady_state_usd_whole\":1468"));
    free(text);
    json_decref(j);
}

static void whole_dollars(void)
{
    CHECK(pd_calc_whole_dollars(1468.76) == 1468);
    CHECK(pd_calc_whole_dollars(2968.76) == 2968);
    CHECK(pd_calc_whole_dollars(194.9999999) == 195); /* to the cent first: 195.00 */
    CHECK(pd_calc_whole_dollars(1499.999) == 1500);
    CHECK(pd_calc_whole_dollars(0.004) == 0);
    CHECK(pd_calc_whole_dollars(3250) == 3250);
}

static void local_steps(void)
{
    pd_local_cost m;
    pd_local_cost_default(&m);
    int64_t n = 0;
    /* no traffic still pays for one instance: 734.38 (+ 1500 ops in the first year) */
    CHECK(near(pd_calc_local_monthly(&m, 0, false, &n), 734.38) && n == 1);
    CHECK(near(pd_calc_local_monthly(&m, 0, true, &n), 2234.38) && n == 1);
    /* 584,000 requests fill one instance exactly; one more needs a second */
    CHECK(near(pd_calc_local_monthly(&m, 584000, false, &n), 734.38) && n == 1);
    CHECK(near(pd_calc_local_monthly(&m, 584001, false, &n), 1468.76) && n == 2);
}

/* Self-hosting costs no more than the API at v, and more at v - 1. */
static int is_first_crossing(const pd_local_cost *m, bool first_year, double c, int64_t v)
{
    return pd_calc_local_monthly(m, (double)v, first_year, NULL) <= c * (double)v &&
           pd_calc_local_monthly(m, (double)(v - 1), first_year, NULL) > c * (double)(v - 1);
}

static void crossover_worked_example(void)
{
    pd_local_cost m;
    pd_local_cost_default(&m);
    /* gpt-4o at $0.00325 a request. Steady state, one instance ($734.38):
       734.38 / 0.00325 = 225,963.08 -> 225,964 (below one instance's 584,000). */
    CHECK(pd_calc_crossover(0.00325, &m, false, 1e10) == 225964);
    CHECK(is_first_crossing(&m, false, 0.00325, 225964));
    /* First year, ops $1,500: one full instance saves 0.00325 x 584,000 - 734.38 = 1,163.62,
       so k >= 1500 / 1163.62 = 1.29 -> two instances ($2,968.76):
       2968.76 / 0.00325 = 913,464.6 -> 913,465 (in 584,001 .. 1,168,000). */
    CHECK(pd_calc_crossover(0.00325, &m, true, 1e10) == 913465);
    CHECK(is_first_crossing(&m, true, 0.00325, 913465));
    /* gpt-4o-mini at $0.000195: a full instance earns 0.000195 x 584,000 = $113.88 < $734.38 */
    CHECK(pd_calc_crossover(0.000195, &m, false, 1e10) == PD_CALC_NEVER);
    CHECK(pd_calc_crossover(0.000195, &m, true, 1e10) == PD_CALC_NEVER);
}

static void crossover_second_case(void)
{
    /* $2/h x 500 h = $1,000 an instance; 100 req/h x 500 h = 50,000 requests an instance;
       ops 9 h x $100 = $900 in the first year; API $0.0225 a request. */
    pd_local_cost m = {2.0, 500, 100, 9, 100, 0};
    /* steady: 1000 / 0.0225 = 44,444.4 -> 44,445 */
    CHECK(pd_calc_crossover(0.0225, &m, false, 1e10) == 44445);
    CHECK(is_first_crossing(&m, false, 0.0225, 44445));
    /* first year: a full instance saves 0.0225 x 50,000 - 1000 = 125, so k >= 900/125 = 7.2
       -> 8 instances ($8,900): 8900 / 0.0225 = 395,555.6 -> 395,556 (in 350,001 .. 400,000).
       Step 7 cannot cross: at its top 0.0225 x 350,000 = 7,875 < 7,900. */
    CHECK(pd_calc_crossover(0.0225, &m, true, 1e10) == 395556);
    CHECK(is_first_crossing(&m, true, 0.0225, 395556));
    /* the search limit */
    CHECK(pd_calc_crossover(0.0225, &m, true, 395555) == PD_CALC_NEVER);
    CHECK(pd_calc_crossover(0.0225, &m, true, 395556) == 395556);
    CHECK(pd_calc_crossover(0.0225, &m, false, 44444) == PD_CALC_NEVER);
    /* steady-state ops move the line: 2 h x $100 = $200, (1000 + 200) / 0.0225 = 53,333.3,
       past one instance (50,000); step 2 costs 2,200: 2200 / 0.0225 = 97,777.8 -> 97,778 */
    m.steady_ops_hours_per_month = 2;
    CHECK(pd_calc_crossover(0.0225, &m, false, 1e10) == 97778);
    /* a free API is never beaten by a paid deployment */
    CHECK(pd_calc_crossover(0, &m, false, 1e10) == PD_CALC_NEVER);
}

static void crossover_through_run(void)
{
    /* the second case through the calculator: 9,000 gpt-4o input tokens = $0.0225 a request */
    pd_calc_params p;
    pd_calc_default_params(&p);
    p.input_tokens = 9000;
    p.output_tokens = 0;
    p.apis[0] = "gpt-4o";
    p.n_apis = 1;
    p.local = (pd_local_cost){2.0, 500, 100, 9, 100, 0};
    pd_calc_result r;
    CHECK(run(&p, &r) == PD_OK);
    CHECK(near(r.apis[0].per_request_usd, 0.0225));
    CHECK(r.crossover[0].steady_state == 44445 && r.crossover[0].first_year == 395556);
}

static void cached_fraction(void)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    p.cached_fraction = 0.5;
    p.apis[0] = "gpt-4o";
    p.apis[1] = "command-r"; /* no cache price: cached input at the input price */
    pd_calc_result r;
    CHECK(run(&p, &r) == PD_OK);
    /* gpt-4o: 250M x 2.50 = 625; 250M x 1.25 = 312.5; 200M x 10 = 2000; total 2937.5 */
    CHECK(near(r.apis[0].input_usd, 625) && near(r.apis[0].cached_usd, 312.5));
    CHECK(near(r.apis[0].monthly_usd, 2937.5));
    /* command-r: 250M x 0.15 = 37.5 twice; 200M x 0.60 = 120; total 195 */
    CHECK(near(r.apis[1].cached_usd, 37.5) && near(r.apis[1].monthly_usd, 195));
    pd_buf b;
    pd_buf_init(&b, 0);
    CHECK(pd_calc_text(&p, &r, &b) == PD_OK);
    CHECK(
        has(b.data, "gpt-4o:      $625 input + $312 cached input + $2,000 output = $2,937/month"));
    pd_buf_free(&b);
}

static void overridden_prices(void)
{
    pd_price_override o;
    pd_price_override_init(&o, "gpt-4o");
    o.input = 2.00;
    pd_prices *t = NULL;
    char msg[200];
    CHECK(pd_prices_new(&o, 1, &t, msg, sizeof msg) == PD_OK);
    pd_calc_params p;
    pd_calc_default_params(&p);
    pd_calc_result r;
    CHECK(pd_calc_run(&p, t, &r, msg, sizeof msg) == PD_OK);
    CHECK(near(r.apis[0].input_usd, 1000) && near(r.apis[0].monthly_usd, 3000)); /* 500M x 2 */
    pd_prices_free(t);
}

/* Runs p and checks the choice and the rules that spoke, in order. */
static void expect(const pd_calc_params *p, pd_calc_choice choice, const pd_calc_rule *rules,
                   size_t n)
{
    pd_calc_result r;
    CHECK(run(p, &r) == PD_OK);
    CHECK_STR(pd_calc_choice_name(r.choice), pd_calc_choice_name(choice));
    CHECK(r.n_reasons == n);
    for (size_t i = 0; i < n && i < r.n_reasons; i++)
        CHECK_STR(pd_calc_rule_name(r.reasons[i].rule), pd_calc_rule_name(rules[i]));
}

static void recommendation_cost_only(void)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    const pd_calc_rule spend[] = {PD_RULE_SPEND};
    /* the example: cheapest API gpt-4o-mini at $195 <= $2,000 */
    expect(&p, PD_CALC_API, spend, 1);
    /* gpt-4o only: $3,250 > $2,000 and self-hosting is $1,468.76 in steady state */
    p.apis[0] = "gpt-4o";
    p.n_apis = 1;
    expect(&p, PD_CALC_SELF_HOST, spend, 1);
    pd_calc_result r;
    CHECK(run(&p, &r) == PD_OK);
    CHECK(r.reasons[0].favours == PD_CALC_SELF_HOST);
    CHECK(has(r.reasons[0].text, "costs $3,250/month, above $2,000/month, and self-hosting costs "
                                 "$1,468/month in steady state ($2,968/month in the first year)"));
    /* a raised threshold: $3,250 is not above $5,000 */
    p.spend_threshold_usd = 5000;
    expect(&p, PD_CALC_API, spend, 1);
    /* above the threshold, but at 100 req/h 14 instances cost $10,281.32: still the API */
    p.spend_threshold_usd = 2000;
    p.local.requests_per_hour = 100;
    expect(&p, PD_CALC_API, spend, 1);
    CHECK(run(&p, &r) == PD_OK);
    CHECK(r.local.instances == 14 && r.reasons[0].favours == PD_CALC_API);
    CHECK(has(r.reasons[0].text, "self-hosting would cost $10,281/month even in steady state"));
}

static void recommendation_tree(void)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    p.private_data = true;
    const pd_calc_rule r1[] = {PD_RULE_PRIVATE_DATA, PD_RULE_SPEND};
    expect(&p, PD_CALC_SELF_HOST, r1, 2);
    /* private data and multimodal: local for the private data, the API for the rest */
    p.multimodal = true;
    const pd_calc_rule r2[] = {PD_RULE_PRIVATE_DATA, PD_RULE_SPEND, PD_RULE_QUALITY};
    expect(&p, PD_CALC_HYBRID, r2, 3);
    /* latency: 50 ms is under 100 ms; 100 ms is not */
    pd_calc_default_params(&p);
    p.latency_target_ms = 50;
    const pd_calc_rule r3[] = {PD_RULE_LATENCY, PD_RULE_SPEND};
    expect(&p, PD_CALC_SELF_HOST, r3, 2);
    p.latency_target_ms = 100;
    const pd_calc_rule r4[] = {PD_RULE_SPEND};
    expect(&p, PD_CALC_API, r4, 1);
    /* cost argues for self-hosting, frontier quality for the API: both */
    pd_calc_default_params(&p);
    p.apis[0] = "gpt-4o";
    p.n_apis = 1;
    p.frontier_quality = true;
    const pd_calc_rule r5[] = {PD_RULE_SPEND, PD_RULE_QUALITY};
    expect(&p, PD_CALC_HYBRID, r5, 2);
    /* cost alone does not justify self-hosting without an infrastructure team */
    p.frontier_quality = false;
    p.no_infra_team = true;
    const pd_calc_rule r6[] = {PD_RULE_SPEND, PD_RULE_INFRA_TEAM};
    expect(&p, PD_CALC_API, r6, 2);
    /* a hard requirement outweighs the missing team; every rule speaks, in tree order */
    p.private_data = true;
    p.latency_target_ms = 20;
    p.frontier_quality = true;
    const pd_calc_rule r7[] = {PD_RULE_PRIVATE_DATA, PD_RULE_LATENCY, PD_RULE_SPEND,
                               PD_RULE_QUALITY, PD_RULE_INFRA_TEAM};
    expect(&p, PD_CALC_HYBRID, r7, 5);
    p.frontier_quality = false;
    expect(&p, PD_CALC_SELF_HOST,
           (const pd_calc_rule[]){PD_RULE_PRIVATE_DATA, PD_RULE_LATENCY, PD_RULE_SPEND,
                                  PD_RULE_INFRA_TEAM},
           4);
}

static void recommendation_json(void)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    p.private_data = true;
    p.frontier_quality = true;
    pd_calc_result r;
    CHECK(run(&p, &r) == PD_OK);
    json_t *j = pd_calc_json(&p, &r);
    json_t *rec = json_object_get(j, "recommendation");
    CHECK_STR(json_string_value(json_object_get(rec, "choice")), "hybrid");
    json_t *reasons = json_object_get(rec, "reasons");
    CHECK(json_array_size(reasons) == 3);
    static const char *const rules[] = {"private-data", "spend", "quality"};
    static const char *const sides[] = {"self-host", "api", "api"};
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(reasons, i);
        CHECK_STR(json_string_value(json_object_get(x, "rule")), rules[i]);
        CHECK_STR(json_string_value(json_object_get(x, "favours")), sides[i]);
        CHECK(json_string_length(json_object_get(x, "text")) > 20);
    }
    json_decref(j);
}

static void bad_params(void)
{
    pd_calc_params p;
    pd_calc_result r;
    char msg[256];
    pd_calc_default_params(&p);
    p.requests = -1;
    CHECK(pd_calc_run(&p, NULL, &r, msg, sizeof msg) == PD_ERR_INVALID);
    pd_calc_default_params(&p);
    p.cached_fraction = 1.5;
    CHECK(pd_calc_run(&p, NULL, &r, msg, sizeof msg) == PD_ERR_INVALID);
    pd_calc_default_params(&p);
    p.n_apis = 0;
    CHECK(pd_calc_run(&p, NULL, &r, msg, sizeof msg) == PD_ERR_INVALID);
    pd_calc_default_params(&p);
    p.local.requests_per_hour = 0.001; /* 0.73 requests a month: less than one */
    CHECK(pd_calc_run(&p, NULL, &r, msg, sizeof msg) == PD_ERR_INVALID);
    pd_calc_default_params(&p);
    p.local.hours_per_month = 800;
    CHECK(pd_calc_run(&p, NULL, &r, msg, sizeof msg) == PD_ERR_INVALID);
    pd_calc_default_params(&p);
    p.apis[1] = "gpt-4o-realtime-preview";
    CHECK(pd_calc_run(&p, NULL, &r, msg, sizeof msg) == PD_ERR_NOT_FOUND);
    CHECK(strstr(msg, "gpt-4o-realtime-preview") != NULL);
    /* a dated name is fine and keeps the name it was asked by */
    p.apis[1] = "gpt-4o-2024-08-06";
    CHECK(run(&p, &r) == PD_OK);
    CHECK_STR(r.apis[1].name, "gpt-4o-2024-08-06");
    CHECK_STR(r.apis[1].price.model, "gpt-4o");
}

int main(void)
{
    TEST_RUN(worked_example_figures);
    TEST_RUN(worked_example_text);
    TEST_RUN(worked_example_json);
    TEST_RUN(whole_dollars);
    TEST_RUN(local_steps);
    TEST_RUN(crossover_worked_example);
    TEST_RUN(crossover_second_case);
    TEST_RUN(crossover_through_run);
    TEST_RUN(cached_fraction);
    TEST_RUN(overridden_prices);
    TEST_RUN(recommendation_cost_only);
    TEST_RUN(recommendation_tree);
    TEST_RUN(recommendation_json);
    TEST_RUN(bad_params);
    return TEST_DONE();
}
