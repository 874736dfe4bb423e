/* test_router.c: routes, policies and their composition, PII and compliance decisions, the
 * fallback table, explain JSON, and the complexity scorer. Uses the real PII detector. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "router/from_config.h"
#include "router/router.h"
#include "router/score.h"
#include "test.h"

static pd_pii_detector *g_det;
static pd_pii_scanner *g_scan;

/* ---- request builders ---------------------------------------------------------------------- */

static pd_chat_message *add_msg(pd_chat_request *r, pd_chat_role role)
{
    /* in the request's arena (canon/chat.h), like everything a request points to */
    r->messages = pd_arena_grow(&r->arena, r->messages, r->n_messages * sizeof *r->messages,
                                (r->n_messages + 1) * sizeof *r->messages);
    pd_chat_message *m = &r->messages[r->n_messages++];
    memset(m, 0, sizeof *m);
    m->role = role;
    return m;
}

static void add_part(pd_chat_request *r, pd_chat_message *m, pd_chat_part_kind kind,
                     const char *text, const char *url)
{
    m->parts = pd_arena_grow(&r->arena, m->parts, m->n_parts * sizeof *m->parts,
                             (m->n_parts + 1) * sizeof *m->parts);
    pd_chat_part *p = &m->parts[m->n_parts++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->text = text ? pd_chat_request_strdup(r, text) : NULL;
    p->url = url ? pd_chat_request_strdup(r, url) : NULL;
}

static void add_text(pd_chat_request *r, pd_chat_role role, const char *text)
{
    add_part(r, add_msg(r, role), PD_PART_TEXT, text, NULL);
}

static void add_call(pd_chat_request *r, pd_chat_message *m, const char *id, const char *name,
                     const char *args)
{
    m->tool_calls = pd_arena_grow(&r->arena, m->tool_calls, m->n_tool_calls * sizeof *m->tool_calls,
                                  (m->n_tool_calls + 1) * sizeof *m->tool_calls);
    pd_chat_tool_call *c = &m->tool_calls[m->n_tool_calls++];
    memset(c, 0, sizeof *c);
    c->id = pd_chat_request_strdup(r, id);
    c->name = pd_chat_request_strdup(r, name);
    c->arguments = pd_chat_request_strdup(r, args);
}

static void simple(pd_chat_request *r, const char *text)
{
    pd_chat_request_init(r);
    add_text(r, PD_ROLE_USER, text);
}

/* ---- the router of the issue ------------------------------------------------------------------
 */

static const char *const EU_REGIONS[] = {"eu-west-1"};
static const char *const US_REGIONS[] = {"us"};

static const pd_target_attrs TARGETS[] = {
    {.model = "llama3.1-8b", .local = true, .retention_days = 0, .context_tokens = 8192},
    {.model = "llama3.1-8b-replica", .local = true, .context_tokens = 8192},
    {.model = "gpt-4o-mini",
     .retention_days = 30,
     .regions = US_REGIONS,
     .n_regions = 1,
     .context_tokens = 128000},
    {.model = "gpt-4o",
     .retention_days = 30,
     .hipaa_baa = true,
     .regions = US_REGIONS,
     .n_regions = 1,
     .context_tokens = 128000},
    {.model = "claude-eu",
     .retention_days = 0,
     .zdr = true,
     .regions = EU_REGIONS,
     .n_regions = 1,
     .context_tokens = 200000},
};
#define N_TARGETS (sizeof TARGETS / sizeof TARGETS[0])

static const char *const LOCAL_CHAIN[] = {"llama3.1-8b", "llama3.1-8b-replica"};
static const char *const CLOUD_CHAIN[] = {"gpt-4o", "claude-eu"};
static const char *const OUTER[] = {"auto", "gpt-4o-mini"};
static const char *const SPEC[] = {"gpt-4o", "claude-eu", "gpt-4o-mini"};
static const pd_route_tier SMART_TIERS[] = {
    {true, 0.2, "llama3.1-8b"}, {true, 0.5, "gpt-4o-mini"}, {false, 0, "cloud-chain"}};

static const pd_route_def ROUTES[] = {
    {.name = "auto",
     .policy = PD_POLICY_PRIVACY,
     .pii_action = PD_ROUTE_PII_LOCAL,
     .local = "local-chain",
     .cloud = "smart"},
    {.name = "auto-redact",
     .policy = PD_POLICY_PRIVACY,
     .pii_action = PD_ROUTE_PII_REDACT,
     .local = "local-chain",
     .cloud = "cloud-chain"},
    {.name = "auto-block",
     .policy = PD_POLICY_PRIVACY,
     .pii_action = PD_ROUTE_PII_BLOCK,
     .local = "local-chain",
     .cloud = "cloud-chain"},
    {.name = "smart", .policy = PD_POLICY_TIERED, .tiers = SMART_TIERS, .n_tiers = 3},
    {.name = "local-chain", .policy = PD_POLICY_FALLBACK, .targets = LOCAL_CHAIN, .n_targets = 2},
    {.name = "cloud-chain",
     .policy = PD_POLICY_FALLBACK,
     .targets = CLOUD_CHAIN,
     .n_targets = 2,
     .triggers = PD_TRIG_CONNECT | PD_TRIG_SERVER},
    {.name = "outer", .policy = PD_POLICY_FALLBACK, .targets = OUTER, .n_targets = 2},
    {.name = "hipaa-cloud",
     .policy = PD_POLICY_FALLBACK,
     .targets = SPEC,
     .n_targets = 3,
     .compliance = PD_COMPLY_HIPAA},
    {.name = "spec", .policy = PD_POLICY_SPECULATIVE, .targets = SPEC, .n_targets = 3},
    {.name = "bal", .policy = PD_POLICY_BALANCE, .targets = SPEC, .n_targets = 3},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

static pd_router *make_router(void)
{
    char err[256] = "";
    pd_router *r = NULL;
    pd_result rc = pd_router_new(ROUTES, N_ROUTES, TARGETS, N_TARGETS, &r, err, sizeof err);
    if (rc)
        fprintf(stderr, "  router: %s\n", err);
    return r;
}

static pd_route_ctx ctx_default(void)
{
    return (pd_route_ctx){.scanner = g_scan};
}

/* The candidates as "a,b,c" (a '*' after a redacted one, '!' after an open one). */
static const char *cands(const pd_route_plan *p)
{
    static char s[512];
    s[0] = '\0';
    for (size_t i = 0; i < p->n; i++) {
        strcat(s, i ? "," : "");
        strcat(s, p->cand[i].model);
        if (p->cand[i].redact)
            strcat(s, "*");
        if (p->cand[i].open)
            strcat(s, "!");
    }
    return s;
}

static pd_result plan(const pd_router *r, const char *name, const pd_chat_request *req,
                      const pd_route_ctx *ctx, pd_route_plan *p, pd_api_error *e)
{
    memset(e, 0, sizeof *e);
    return pd_router_plan(r, name, req, ctx, p, e);
}

static const char *GREETING = "hi there!";
static const char *HARD =
    "First, explain step by step why the following C function is slow, then prove that the "
    "optimized version computes the same integral. Compare the tradeoffs and justify each step.\n"
    "```c\nstatic double integrate(double a, double b) {\n  double s = 0;\n"
    "  for (int i = 0; i < 1000000; i++) { s += f(a + (b - a) * i / 1e6); }\n  return s;\n}\n```\n"
    "1. Derive the error bound of the sum: |E| <= (b-a)^3/(24*n^2) * max|f''|.\n"
    "2. Solve x^2 + 3*x - 4 = 0 and evaluate the integral of x^2 from 0 to 3.\n"
    "3. Finally, design a SIMD version and analyze its complexity.";

/* ---- policies ------------------------------------------------------------------------------ */

static void test_fallback_and_plain_model(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    CHECK(plan(r, "local-chain", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "llama3.1-8b,llama3.1-8b-replica");
    CHECK_STR(p.cand[0].via, "local-chain");
    CHECK(p.cand[0].local && !p.cand[0].redact);
    CHECK(!p.pii_scanned && !p.scored);

    CHECK(plan(r, "gpt-4o", &q, &ctx, &p, &e) == PD_OK); /* a model, not a route */
    CHECK_STR(cands(&p), "gpt-4o");
    CHECK(!p.is_route && p.cand[0].via == NULL && p.cand[0].triggers == PD_TRIG_DEFAULT);

    CHECK(plan(r, "nope", &q, &ctx, &p, &e) == PD_ERR_NOT_FOUND);
    CHECK(e.status == 404);
    CHECK_STR(e.code, "model_not_found");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

static void test_tiered(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    CHECK(plan(r, "smart", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.scored && p.score < 0.2);
    /* the picked tier, then the stronger ones, then weaker ones */
    CHECK_STR(cands(&p), "llama3.1-8b,gpt-4o-mini,gpt-4o,claude-eu");
    CHECK(strstr(p.reason, "smart: tiered score") != NULL);
    pd_chat_request_free(&q);

    simple(&q, HARD);
    q.sampling.has_max_tokens = true;
    q.sampling.max_tokens = 4096;
    CHECK(plan(r, "smart", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.score >= 0.5);
    CHECK_STR(cands(&p), "gpt-4o,claude-eu,gpt-4o-mini,llama3.1-8b");
    /* nested candidates carry the triggers of the route that placed them */
    CHECK_STR(p.cand[0].via, "cloud-chain");
    CHECK(p.cand[0].triggers == (PD_TRIG_CONNECT | PD_TRIG_SERVER));
    CHECK_STR(p.cand[2].via, "smart");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* A plugged-in scorer decides the tier. */
static double fixed_score(void *ud, const pd_chat_request *req, pd_score_features *out)
{
    (void)req;
    out->value[PD_FEAT_LENGTH] = 1;
    return *(double *)ud;
}

static void test_tier_thresholds_custom_scorer(void)
{
    pd_router *r = make_router();
    double v;
    pd_scorer s = {fixed_score, &v, "fixed"};
    pd_route_ctx ctx = ctx_default();
    ctx.scorer = &s;
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    const struct {
        double score;
        const char *first;
    } cases[] = {{0.0, "llama3.1-8b"},    {0.1999, "llama3.1-8b"}, {0.2, "gpt-4o-mini"},
                 {0.4999, "gpt-4o-mini"}, {0.5, "gpt-4o"},         {1.0, "gpt-4o"},
                 {7.0, "gpt-4o"},         {-3, "llama3.1-8b"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v = cases[i].score;
        CHECK(plan(r, "smart", &q, &ctx, &p, &e) == PD_OK);
        CHECK_STR(p.cand[0].model, cases[i].first);
        CHECK(p.score >= 0 && p.score <= 1);
    }
    CHECK_STR(p.scorer, "fixed");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

static void test_speculative_and_balance(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    CHECK(plan(r, "spec", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.race == 2);
    CHECK_STR(cands(&p), "gpt-4o,claude-eu,gpt-4o-mini");
    ctx.balance_seed = 4; /* 4 % 3 = 1 */
    CHECK(plan(r, "bal", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.race == 0);
    CHECK_STR(cands(&p), "claude-eu,gpt-4o-mini,gpt-4o");
    ctx.balance_seed = 2;
    CHECK(plan(r, "bal", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "gpt-4o-mini,gpt-4o,claude-eu");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* ---- balance strategies -------------------------------------------------------------------- */

static pd_result try_new(const pd_route_def *routes, size_t n, char *err, size_t errlen);

static const char *const POOL[] = {"llama3.1-8b", "llama3.1-8b-replica", "gpt-4o-mini"};
static const double POOL_WEIGHTS[] = {3, 1, 0.5};

static pd_router *make_pool(pd_balance_strategy s)
{
    pd_route_def d = {.name = "pool",
                      .policy = PD_POLICY_BALANCE,
                      .targets = POOL,
                      .n_targets = 3,
                      .strategy = s};
    if (s == PD_BALANCE_WEIGHTED) {
        d.weights = POOL_WEIGHTS;
        d.n_weights = 3;
    }
    char err[256] = "";
    pd_router *r = NULL;
    if (pd_router_new(&d, 1, TARGETS, N_TARGETS, &r, err, sizeof err))
        fprintf(stderr, "  router: %s\n", err);
    return r;
}

/* Per target index (TARGETS order): llama, replica, gpt-4o-mini, gpt-4o, claude-eu. */
static uint32_t g_outstanding[N_TARGETS];
static double g_latency[N_TARGETS];

static pd_route_ctx load_ctx(uint64_t seed, uint64_t random)
{
    pd_route_ctx ctx = ctx_default();
    ctx.outstanding = g_outstanding;
    ctx.latency_ewma_ms = g_latency;
    ctx.n_load = N_TARGETS;
    ctx.balance_seed = seed;
    ctx.random = random;
    return ctx;
}

static const char *pool_plan(pd_router *r, const pd_route_ctx *ctx, pd_route_plan *p)
{
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    pd_result rc = plan(r, "pool", &q, ctx, p, &e);
    pd_chat_request_free(&q);
    return rc == PD_OK ? cands(p) : "(error)";
}

static void test_balance_round_robin_and_random(void)
{
    pd_router *r = make_pool(PD_BALANCE_ROUND_ROBIN);
    pd_route_plan p;
    pd_route_ctx ctx = load_ctx(4, 0);
    g_outstanding[0] = 9; /* ignored by round robin */
    CHECK_STR(pool_plan(r, &ctx, &p), "llama3.1-8b-replica,gpt-4o-mini,llama3.1-8b");
    CHECK(strstr(p.reason, "pool: balance round_robin -> llama3.1-8b-replica (2 of 3)") != NULL);
    CHECK_STR(p.balance_route, "pool");
    CHECK(p.balance_strategy == PD_BALANCE_ROUND_ROBIN);
    pd_router_free(r);

    r = make_pool(PD_BALANCE_RANDOM);
    ctx = load_ctx(0, 5); /* 5 % 3 = 2; the seed does not matter */
    CHECK_STR(pool_plan(r, &ctx, &p), "gpt-4o-mini,llama3.1-8b,llama3.1-8b-replica");
    CHECK(strstr(p.reason, "balance random -> gpt-4o-mini") != NULL);
    memset(g_outstanding, 0, sizeof g_outstanding);
    pd_router_free(r);
}

static void test_balance_least_outstanding(void)
{
    pd_router *r = make_pool(PD_BALANCE_LEAST_OUTSTANDING);
    pd_route_plan p;
    pd_route_ctx ctx = load_ctx(0, 0);
    /* Nothing in flight: the rotation (what the old balance policy did). */
    CHECK_STR(pool_plan(r, &ctx, &p), "llama3.1-8b,llama3.1-8b-replica,gpt-4o-mini");
    ctx.balance_seed = 1;
    CHECK_STR(pool_plan(r, &ctx, &p), "llama3.1-8b-replica,gpt-4o-mini,llama3.1-8b");
    g_outstanding[0] = 3;
    g_outstanding[1] = 2;
    g_outstanding[2] = 0;
    CHECK_STR(pool_plan(r, &ctx, &p), "gpt-4o-mini,llama3.1-8b-replica,llama3.1-8b");
    CHECK(strstr(p.reason,
                 "pool: balance least_outstanding -> gpt-4o-mini (0 in flight, fewest)") != NULL);
    g_outstanding[2] = 2; /* tie between replica and gpt-4o-mini: the rotation from seed 1 */
    CHECK_STR(pool_plan(r, &ctx, &p), "llama3.1-8b-replica,gpt-4o-mini,llama3.1-8b");
    ctx.balance_seed = 2;
    CHECK_STR(pool_plan(r, &ctx, &p), "gpt-4o-mini,llama3.1-8b-replica,llama3.1-8b");
    /* An open circuit still goes last, whatever the strategy chose. */
    unsigned char open[N_TARGETS] = {0};
    open[2] = PD_TARGET_DOWN;
    ctx.open = open;
    ctx.n_open = N_TARGETS;
    CHECK_STR(pool_plan(r, &ctx, &p), "llama3.1-8b-replica,llama3.1-8b,gpt-4o-mini!");
    CHECK(p.cand[2].down);
    CHECK(strstr(p.reason, "health check down: gpt-4o-mini moved last") != NULL);
    memset(g_outstanding, 0, sizeof g_outstanding);
    pd_router_free(r);
}

static void test_balance_latency(void)
{
    pd_router *r = make_pool(PD_BALANCE_LATENCY);
    pd_route_plan p;
    pd_route_ctx ctx = load_ctx(0, 0);
    g_latency[0] = 80;
    g_latency[1] = 0; /* no sample yet: explored first */
    g_latency[2] = 20;
    CHECK_STR(pool_plan(r, &ctx, &p), "llama3.1-8b-replica,gpt-4o-mini,llama3.1-8b");
    CHECK(strstr(p.reason,
                 "balance latency -> llama3.1-8b-replica (no latency sample yet, exploring)") !=
          NULL);
    g_latency[1] = 45;
    CHECK_STR(pool_plan(r, &ctx, &p), "gpt-4o-mini,llama3.1-8b-replica,llama3.1-8b");
    CHECK(strstr(p.reason, "balance latency -> gpt-4o-mini (20.0 ms EWMA, lowest)") != NULL);
    memset(g_latency, 0, sizeof g_latency);
    pd_router_free(r);
}

/* Weighted picks follow the weights (3 : 1 : 0.5) within 2 points over many random draws. */
static void test_balance_weighted(void)
{
    pd_router *r = make_pool(PD_BALANCE_WEIGHTED);
    pd_route_plan p;
    size_t first[3] = {0};
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    const size_t n = 20000;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; /* xorshift64: the test's own random values */
        x ^= x >> 7;
        x ^= x << 17;
        pd_route_ctx ctx = load_ctx(i, x);
        pool_plan(r, &ctx, &p);
        CHECK(p.n == 3);
        first[p.cand[0].target]++;
    }
    double share0 = (double)first[0] / n, share1 = (double)first[1] / n,
           share2 = (double)first[2] / n;
    CHECK(share0 > 3 / 4.5 - 0.02 && share0 < 3 / 4.5 + 0.02);
    CHECK(share1 > 1 / 4.5 - 0.02 && share1 < 1 / 4.5 + 0.02);
    CHECK(share2 > 0.5 / 4.5 - 0.02 && share2 < 0.5 / 4.5 + 0.02);
    /* The extremes of the random range land on the first and last entry. */
    pd_route_ctx ctx = load_ctx(0, 0);
    CHECK_STR(pool_plan(r, &ctx, &p), "llama3.1-8b,llama3.1-8b-replica,gpt-4o-mini");
    CHECK(strstr(p.reason, "balance weighted -> llama3.1-8b (weight 3 of 4.5)") != NULL);
    ctx = load_ctx(0, UINT64_MAX);
    CHECK_STR(pool_plan(r, &ctx, &p), "gpt-4o-mini,llama3.1-8b,llama3.1-8b-replica");
    pd_buf b;
    pd_buf_init(&b, 1 << 16);
    CHECK(pd_route_plan_explain(&p, &b) == PD_OK);
    json_t *j = json_loads(b.data, 0, NULL);
    json_t *bal = json_object_get(j, "balance");
    CHECK_STR(json_string_value(json_object_get(bal, "strategy")), "weighted");
    CHECK_STR(json_string_value(json_object_get(bal, "pick")), "gpt-4o-mini");
    CHECK(json_is_false(
        json_object_get(json_array_get(json_object_get(j, "candidates"), 0), "down")));
    json_decref(j);
    pd_buf_free(&b);
    pd_router_free(r);
}

static void test_balance_validation(void)
{
    char err[256];
    static const double two[] = {1, 2}, bad[] = {1, 0, 2};
    pd_route_def d[] = {{.name = "w",
                         .policy = PD_POLICY_BALANCE,
                         .targets = POOL,
                         .n_targets = 3,
                         .strategy = PD_BALANCE_WEIGHTED,
                         .weights = two,
                         .n_weights = 2}};
    CHECK(try_new(d, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'w': strategy weighted needs one weight per target (3, not 2)");
    d[0].weights = bad;
    d[0].n_weights = 3;
    CHECK(try_new(d, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'w': weight 1 must be a positive number");
    d[0].strategy = PD_BALANCE_ROUND_ROBIN;
    CHECK(try_new(d, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'w': weights need policy balance with strategy weighted");
    d[0].policy = PD_POLICY_FALLBACK;
    d[0].n_weights = 0;
    CHECK(try_new(d, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'w': a strategy needs policy balance");
    CHECK(pd_balance_strategy_from_name("latency") == PD_BALANCE_LATENCY);
    CHECK(pd_balance_strategy_from_name("fastest") == -1);
    CHECK_STR(pd_balance_strategy_name(PD_BALANCE_LEAST_OUTSTANDING), "least_outstanding");
}

/* The config's strategy and weights reach the router; mistakes name file, line and route. */
static void test_balance_from_config(void)
{
    static const char *head = "providers: [ { name: a, kind: openai, base_url: "
                              "\"http://127.0.0.1:1/v1\", api_key: \"\" } ]\n"
                              "models: [ { name: m1, provider: a }, { name: m2, provider: a } ]\n"
                              "routes:\n";
    static const struct {
        const char *route, *err;
    } cases[] = {
        {"  - { name: r, policy: balance, targets: [m1, m2], strategy: weighted, weights: [3, 1] "
         "}\n",
         NULL},
        {"  - { name: r, policy: balance, targets: [m1, m2] }\n", NULL},
        {"  - { name: r, policy: balance, targets: [m1, m2], strategy: fastest }\n",
         "t.yaml:4: route 'r': unknown strategy (expected least_outstanding, round_robin, random, "
         "weighted or latency), not 'fastest'"},
        {"  - { name: r, policy: balance, targets: [m1, m2], strategy: weighted, weights: [3] }\n",
         "t.yaml:4: route 'r': strategy weighted needs one weight per target"},
        {"  - { name: r, policy: balance, targets: [m1, m2], weights: [3, 1] }\n",
         "t.yaml:4: route 'r': weights need strategy weighted"},
        {"  - { name: r, policy: fallback, targets: [m1, m2], strategy: latency }\n",
         "t.yaml:4: route 'r': strategy needs policy balance"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[1024], err[512] = "";
        snprintf(yaml, sizeof yaml, "%s%s", head, cases[i].route);
        pd_config *cfg = pd_config_load_string(yaml, strlen(yaml), "t.yaml", err, sizeof err);
        CHECK(cfg != NULL);
        pd_router *r = NULL;
        pd_result rc = cfg ? pd_router_from_config(cfg, &r, err, sizeof err) : PD_ERR_INVALID;
        if (cases[i].err) {
            CHECK(rc == PD_ERR_INVALID);
            CHECK_STR(err, cases[i].err);
        } else {
            CHECK(rc == PD_OK);
        }
        pd_router_free(r);
        pd_config_free(cfg);
    }
    char err[512] = "";
    const char *bad =
        "providers: [ { name: a, kind: openai, base_url: \"http://127.0.0.1:1/v1\" } ]\n"
        "routes:\n"
        "  - name: r\n"
        "    policy: balance\n"
        "    weights: [1, -2]\n";
    CHECK(pd_config_load_string(bad, strlen(bad), "t.yaml", err, sizeof err) == NULL);
    CHECK_STR(err, "t.yaml:5: routes[0].weights[1]: must be a positive number, not \"-2\"");
}

/* ---- privacy ------------------------------------------------------------------------------- */

static void test_privacy_no_pii(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    CHECK(plan(r, "auto", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.pii_scanned && p.pii_count == 0 && p.pii_types == 0);
    /* cloud branch (tiered: greeting -> small tier first), local as the last resort */
    CHECK_STR(cands(&p), "llama3.1-8b,gpt-4o-mini,gpt-4o,claude-eu,llama3.1-8b-replica");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

static void test_privacy_local_in_message(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, HARD);
    add_text(&q, PD_ROLE_USER, "Please reply to jane.doe@example.com when done.");
    CHECK(plan(r, "auto", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.pii_types == (1u << PD_PII_EMAIL));
    CHECK(p.pii_action == PD_ROUTE_PII_LOCAL);
    CHECK_STR(cands(&p), "llama3.1-8b,llama3.1-8b-replica");
    CHECK(strstr(p.reason, "auto: privacy, EMAIL found -> local local-chain") != NULL);
    CHECK(strstr(p.reason, "jane") == NULL);
    CHECK(!p.scored); /* the cloud branch was never expanded */
    pd_chat_request_free(&q);
    pd_router_free(r);
}

static void test_privacy_content_part_and_tools(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;

    /* in the second text part of a multi-part message */
    pd_chat_request_init(&q);
    pd_chat_message *m = add_msg(&q, PD_ROLE_USER);
    add_part(&q, m, PD_PART_TEXT, "What is in this picture?", NULL);
    add_part(&q, m, PD_PART_IMAGE, NULL, "https://img.example.com/a.png");
    add_part(&q, m, PD_PART_TEXT, "My card is 4111 1111 1111 1111, exp 12/29.", NULL);
    CHECK(plan(r, "auto", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.pii_types & (1u << PD_PII_CREDIT_CARD));
    CHECK_STR(cands(&p), "llama3.1-8b,llama3.1-8b-replica");
    pd_chat_request_free(&q);

    /* in tool-call arguments of an assistant turn */
    pd_chat_request_init(&q);
    add_text(&q, PD_ROLE_USER, "look up my account");
    m = add_msg(&q, PD_ROLE_ASSISTANT);
    m->form = PD_CONTENT_NULL;
    add_call(&q, m, "call_1", "lookup", "{\"ssn\":\"536-22-1234\"}");
    CHECK(plan(r, "auto", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.pii_types == (1u << PD_PII_US_SSN));
    CHECK_STR(cands(&p), "llama3.1-8b,llama3.1-8b-replica");

    /* in a tool result */
    pd_chat_request_free(&q);
    pd_chat_request_init(&q);
    add_text(&q, PD_ROLE_USER, "who is the owner?");
    m = add_msg(&q, PD_ROLE_TOOL);
    m->tool_call_id = pd_chat_request_strdup(&q, "call_1");
    add_part(&q, m, PD_PART_TEXT, "{\"owner_email\":\"bob.smith@corp.example.org\"}", NULL);
    CHECK(plan(r, "auto", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.pii_types == (1u << PD_PII_EMAIL));
    CHECK_STR(cands(&p), "llama3.1-8b,llama3.1-8b-replica");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

static void test_privacy_redact_and_block(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, "Email jane.doe@example.com and call (415) 555-2671 about the invoice.");
    CHECK(plan(r, "auto-redact", &q, &ctx, &p, &e) == PD_OK);
    CHECK(p.pii_types == ((1u << PD_PII_EMAIL) | (1u << PD_PII_PHONE)));
    CHECK_STR(cands(&p), "gpt-4o*,claude-eu*,llama3.1-8b,llama3.1-8b-replica");

    CHECK(plan(r, "auto-block", &q, &ctx, &p, &e) == PD_ERR_INVALID);
    CHECK(e.status == 400);
    CHECK_STR(e.code, "pii_blocked");
    CHECK(strstr(e.message, "EMAIL") && strstr(e.message, "PHONE"));
    CHECK(!strstr(e.message, "jane") && !strstr(e.message, "555"));
    CHECK(p.n == 0);
    pd_chat_request_free(&q);

    simple(&q, GREETING); /* block without PII: a normal plan */
    CHECK(plan(r, "auto-block", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "gpt-4o,claude-eu,llama3.1-8b,llama3.1-8b-replica");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* An outer fallback must not carry PII to a cloud model the privacy route kept it from. */
static void test_privacy_sticky_in_composition(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, "my SSN is 536-22-1234");
    CHECK(plan(r, "outer", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "llama3.1-8b,llama3.1-8b-replica");
    CHECK(p.dropped == 1);
    CHECK(strstr(p.reason, "privacy: dropped cloud gpt-4o-mini") != NULL);
    pd_chat_request_free(&q);

    simple(&q, GREETING);
    CHECK(plan(r, "outer", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "llama3.1-8b,gpt-4o-mini,gpt-4o,claude-eu,llama3.1-8b-replica");
    pd_chat_request_free(&q);

    /* no scanner: a privacy route fails closed */
    simple(&q, GREETING);
    pd_route_ctx none = {0};
    CHECK(plan(r, "auto", &q, &none, &p, &e) == PD_ERR_IO);
    CHECK(e.status == 500);
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* ---- compliance ---------------------------------------------------------------------------- */

static void test_compliance(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, HARD);
    char err[128];
    CHECK(pd_route_compliance_parse("HIPAA", &ctx.compliance, err, sizeof err) == PD_OK);
    CHECK(ctx.compliance == PD_COMPLY_HIPAA);
    CHECK(plan(r, "spec", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "gpt-4o");
    CHECK(p.dropped == 2);
    CHECK(strstr(p.reason, "compliance: dropped claude-eu (missing hipaa)") != NULL);

    CHECK(pd_route_compliance_parse(" eu, zdr ", &ctx.compliance, err, sizeof err) == PD_OK);
    CHECK(ctx.compliance == (PD_COMPLY_EU | PD_COMPLY_ZDR));
    CHECK(plan(r, "spec", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "claude-eu");
    /* local targets meet everything */
    CHECK(plan(r, "smart", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "claude-eu,llama3.1-8b");

    CHECK(pd_route_compliance_parse("hipaa,eu", &ctx.compliance, err, sizeof err) == PD_OK);
    CHECK(plan(r, "spec", &q, &ctx, &p, &e) == PD_ERR_INVALID);
    CHECK(e.status == 400);
    CHECK_STR(e.code, "compliance_unsatisfied");
    CHECK(strstr(e.message, "missing hipaa,eu") != NULL);
    CHECK(plan(r, "gpt-4o-mini", &q, &ctx, &p, &e) == PD_ERR_INVALID); /* plain model too */

    /* a route's own tags */
    ctx.compliance = 0;
    CHECK(plan(r, "hipaa-cloud", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "gpt-4o");

    CHECK(pd_route_compliance_parse("hipaa,sox", &ctx.compliance, err, sizeof err) ==
          PD_ERR_INVALID);
    CHECK(strstr(err, "'sox'") != NULL);
    pd_buf b;
    pd_buf_init(&b, 0);
    CHECK(pd_route_compliance_names(PD_COMPLY_ZDR | PD_COMPLY_HIPAA, &b) == PD_OK);
    CHECK_STR(b.data, "hipaa,zdr");
    pd_buf_free(&b);
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* ---- the cloud stand-in (pd_router_cloud_target) ------------------------------------------ */

static const char *cloud_of(const pd_router *r, const char *name)
{
    const char *m = "unset";
    pd_result rc = pd_router_cloud_target(r, name, &m);
    return rc == PD_ERR_NOT_FOUND ? (m == NULL ? "NOT_FOUND" : "bad out") : (m ? m : "none");
}

static void test_cloud_target(void)
{
    pd_router *r = make_router();
    CHECK_STR(cloud_of(r, "auto"), "gpt-4o");        /* cloud branch smart, its top tier */
    CHECK_STR(cloud_of(r, "auto-redact"), "gpt-4o"); /* cloud branch cloud-chain */
    CHECK_STR(cloud_of(r, "smart"), "gpt-4o");       /* top tier cloud-chain, not gpt-4o-mini */
    CHECK_STR(cloud_of(r, "local-chain"), "none");
    CHECK_STR(cloud_of(r, "outer"), "gpt-4o"); /* auto first */
    CHECK_STR(cloud_of(r, "spec"), "gpt-4o");
    CHECK_STR(cloud_of(r, "bal"), "gpt-4o");              /* listed order, whatever the strategy */
    CHECK_STR(cloud_of(r, "gpt-4o-mini"), "gpt-4o-mini"); /* a plain cloud target */
    CHECK_STR(cloud_of(r, "llama3.1-8b"), "none");        /* a plain local target */
    CHECK_STR(cloud_of(r, "no-such-route"), "NOT_FOUND");
    CHECK_STR(cloud_of(r, NULL), "NOT_FOUND");
    pd_router_free(r);

    /* A local top tier: the strongest tier below it that reaches the cloud. A route's own
       compliance tags skip a target that misses them (gpt-4o-mini is not HIPAA). */
    static const char *const LIST[] = {"llama3.1-8b", "gpt-4o-mini", "gpt-4o"};
    static const pd_route_tier TIERS[] = {
        {true, 0.3, "gpt-4o-mini"}, {true, 0.6, "gpt-4o"}, {false, 0, "llama3.1-8b"}};
    static const pd_route_def DEFS[] = {
        {.name = "local-top", .policy = PD_POLICY_TIERED, .tiers = TIERS, .n_tiers = 3},
        {.name = "list", .policy = PD_POLICY_FALLBACK, .targets = LIST, .n_targets = 3},
        {.name = "hipaa-list",
         .policy = PD_POLICY_FALLBACK,
         .targets = LIST,
         .n_targets = 3,
         .compliance = PD_COMPLY_HIPAA},
        {.name = "eu-list",
         .policy = PD_POLICY_FALLBACK,
         .targets = LIST,
         .n_targets = 3,
         .compliance = PD_COMPLY_EU},
    };
    char err[256] = "";
    CHECK(pd_router_new(DEFS, 4, TARGETS, N_TARGETS, &r, err, sizeof err) == PD_OK);
    CHECK_STR(cloud_of(r, "local-top"), "gpt-4o");
    CHECK_STR(cloud_of(r, "list"), "gpt-4o-mini"); /* the local first entry is skipped */
    CHECK_STR(cloud_of(r, "hipaa-list"), "gpt-4o");
    CHECK_STR(cloud_of(r, "eu-list"), "none"); /* no cloud target of the list is in the EU */
    pd_router_free(r);
}

/* ---- health -------------------------------------------------------------------------------- */

static void test_open_circuit_last(void)
{
    pd_router *r = make_router();
    unsigned char open[N_TARGETS] = {0};
    open[pd_router_target_index(r, "gpt-4o")] = 1;
    pd_route_ctx ctx = ctx_default();
    ctx.open = open;
    ctx.n_open = N_TARGETS;
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    CHECK(plan(r, "spec", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "claude-eu,gpt-4o-mini,gpt-4o!");
    CHECK(strstr(p.reason, "open circuit: gpt-4o moved last") != NULL);
    memset(open, 1, sizeof open); /* everything open: still a plan, in order */
    CHECK(plan(r, "spec", &q, &ctx, &p, &e) == PD_OK);
    CHECK_STR(cands(&p), "gpt-4o!,claude-eu!,gpt-4o-mini!");
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* ---- validation ---------------------------------------------------------------------------- */

static pd_result try_new(const pd_route_def *routes, size_t n, char *err, size_t errlen)
{
    pd_router *r = NULL;
    pd_result rc = pd_router_new(routes, n, TARGETS, N_TARGETS, &r, err, errlen);
    pd_router_free(r);
    return rc;
}

static void test_validation(void)
{
    char err[256];
    static const char *const A_TO_B[] = {"gpt-4o", "b"};
    static const char *const B_TO_C[] = {"c"};
    static const char *const C_TO_A[] = {"a"};
    static const char *const GHOST[] = {"gpt-5"};
    pd_route_def cyc[] = {
        {.name = "a", .policy = PD_POLICY_FALLBACK, .targets = A_TO_B, .n_targets = 2},
        {.name = "b", .policy = PD_POLICY_FALLBACK, .targets = B_TO_C, .n_targets = 1},
        {.name = "c", .policy = PD_POLICY_FALLBACK, .targets = C_TO_A, .n_targets = 1},
    };
    CHECK(try_new(cyc, 3, err, sizeof err) == PD_ERR_INVALID);
    CHECK(strstr(err, "cycle") != NULL);

    pd_route_def self[] = {
        {.name = "a", .policy = PD_POLICY_FALLBACK, .targets = C_TO_A, .n_targets = 1}};
    CHECK(try_new(self, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'a': cycle through route 'a'");

    pd_route_def unknown[] = {
        {.name = "x", .policy = PD_POLICY_FALLBACK, .targets = GHOST, .n_targets = 1}};
    CHECK(try_new(unknown, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'x': unknown target or route 'gpt-5'");

    pd_route_def empty[] = {{.name = "e", .policy = PD_POLICY_FALLBACK}};
    CHECK(try_new(empty, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'e': empty targets");

    pd_route_def leak[] = {
        {.name = "p", .policy = PD_POLICY_PRIVACY, .local = "gpt-4o", .cloud = "gpt-4o-mini"}};
    CHECK(try_new(leak, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'p': local branch reaches cloud target 'gpt-4o'");

    pd_route_def half[] = {{.name = "p", .policy = PD_POLICY_PRIVACY, .local = "llama3.1-8b"}};
    CHECK(try_new(half, 1, err, sizeof err) == PD_ERR_INVALID);

    static const pd_route_tier bad_order[] = {
        {true, 0.6, "gpt-4o-mini"}, {true, 0.4, "gpt-4o"}, {false, 0, "gpt-4o"}};
    static const pd_route_tier no_catch_all[] = {{true, 0.5, "gpt-4o-mini"}, {true, 1, "gpt-4o"}};
    pd_route_def t1[] = {
        {.name = "t", .policy = PD_POLICY_TIERED, .tiers = bad_order, .n_tiers = 3}};
    CHECK(try_new(t1, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK(strstr(err, "route 't': tier 1") != NULL);
    pd_route_def t2[] = {
        {.name = "t", .policy = PD_POLICY_TIERED, .tiers = no_catch_all, .n_tiers = 2}};
    CHECK(try_new(t2, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK(strstr(err, "catch-all") != NULL);

    pd_route_def dup[] = {
        {.name = "gpt-4o", .policy = PD_POLICY_FALLBACK, .targets = GHOST, .n_targets = 1}};
    CHECK(try_new(dup, 1, err, sizeof err) == PD_ERR_INVALID);
    CHECK_STR(err, "route 'gpt-4o': name already used by a model");

    CHECK(try_new(ROUTES, N_ROUTES, err, sizeof err) == PD_OK);
    CHECK(try_new(NULL, 0, err, sizeof err) == PD_OK); /* no routes: plain models only */
    pd_router_free(NULL);
}

/* ---- fallback decisions -------------------------------------------------------------------- */

static void test_should_fallback(void)
{
    const unsigned D = PD_TRIG_DEFAULT;
    const struct {
        unsigned trig;
        pd_failure kind;
        int status;
        const char *code, *msg;
        pd_fallback want;
    } rows[] = {
        {D, PD_FAIL_CONNECT, 0, NULL, NULL, PD_FALLBACK_RETRY},
        {D, PD_FAIL_TIMEOUT, 0, NULL, NULL, PD_FALLBACK_RETRY},
        {D & ~PD_TRIG_TIMEOUT, PD_FAIL_TIMEOUT, 0, NULL, NULL, PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 429, "rate_limit_exceeded", NULL, PD_FALLBACK_RETRY},
        {D, PD_FAIL_HTTP, 429, "insufficient_quota", NULL, PD_FALLBACK_NEXT},
        {D & ~PD_TRIG_RATE_LIMIT, PD_FAIL_HTTP, 429, NULL, NULL, PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 500, "server_error", NULL, PD_FALLBACK_RETRY},
        {D, PD_FAIL_HTTP, 503, NULL, "Loading model", PD_FALLBACK_RETRY},
        {D, PD_FAIL_HTTP, 501, NULL, NULL, PD_FALLBACK_NEXT},
        {D, PD_FAIL_HTTP, 529, "overloaded_error", NULL, PD_FALLBACK_RETRY},
        {D & ~PD_TRIG_OVERLOADED, PD_FAIL_HTTP, 529, NULL, NULL, PD_FALLBACK_NO},
        {PD_TRIG_OVERLOADED, PD_FAIL_HTTP, 200, "overloaded_error", NULL, PD_FALLBACK_RETRY},
        {PD_TRIG_SERVER, PD_FAIL_HTTP, 529, NULL, NULL, PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 408, NULL, NULL, PD_FALLBACK_RETRY},
        {D, PD_FAIL_HTTP, 409, NULL, NULL, PD_FALLBACK_RETRY},
        {D, PD_FAIL_HTTP, 400, "invalid_request_error", "bad temperature", PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 413, NULL, NULL, PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 422, NULL, NULL, PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 401, "invalid_api_key", NULL, PD_FALLBACK_NEXT},
        {D, PD_FAIL_HTTP, 404, "model_not_found", NULL, PD_FALLBACK_NEXT},
        {D & ~PD_TRIG_AUTH, PD_FAIL_HTTP, 403, NULL, NULL, PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 400, "context_length_exceeded", NULL, PD_FALLBACK_LARGER},
        {D, PD_FAIL_HTTP, 400, "exceed_context_size_error", NULL, PD_FALLBACK_LARGER},
        {D, PD_FAIL_HTTP, 400, "invalid_request_error",
         "prompt is too long: 210000 tokens > 200000 maximum", PD_FALLBACK_LARGER},
        {D & ~PD_TRIG_CONTEXT, PD_FAIL_HTTP, 400, "context_length_exceeded", NULL, PD_FALLBACK_NO},
        {D, PD_FAIL_HTTP, 200, NULL, NULL, PD_FALLBACK_NO},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pd_fallback got = pd_route_should_fallback(rows[i].trig, rows[i].kind, rows[i].status,
                                                   rows[i].code, rows[i].msg);
        if (got != rows[i].want)
            fprintf(stderr, "  row %zu: got %s want %s\n", i, pd_fallback_name(got),
                    pd_fallback_name(rows[i].want));
        CHECK(got == rows[i].want);
    }
    CHECK(pd_route_trigger_from_name("rate_limit") == PD_TRIG_RATE_LIMIT);
    CHECK(pd_route_trigger_from_name("nope") == 0);

    pd_router *r = make_router();
    const pd_route *cc = pd_router_route(r, "cloud-chain");
    CHECK(cc && pd_route_triggers(cc) == (PD_TRIG_CONNECT | PD_TRIG_SERVER));
    CHECK(pd_router_should_fallback(cc, PD_FAIL_HTTP, 429, NULL, NULL) == PD_FALLBACK_NO);
    CHECK(pd_router_should_fallback(NULL, PD_FAIL_HTTP, 429, NULL, NULL) == PD_FALLBACK_RETRY);
    pd_router_free(r);
}

static void test_plan_next_larger(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, GREETING);
    CHECK(plan(r, "smart", &q, &ctx, &p, &e) == PD_OK);
    /* llama3.1-8b (8k), gpt-4o-mini (128k), gpt-4o (128k), claude-eu (200k) */
    CHECK(pd_route_plan_next(&p, 0, PD_FALLBACK_LARGER) == 1);
    CHECK(pd_route_plan_next(&p, 1, PD_FALLBACK_LARGER) == 3);
    CHECK(pd_route_plan_next(&p, 3, PD_FALLBACK_LARGER) == p.n);
    CHECK(pd_route_plan_next(&p, 1, PD_FALLBACK_NEXT) == 2);
    CHECK(pd_route_plan_next(&p, 1, PD_FALLBACK_RETRY) == 2);
    CHECK(pd_route_plan_next(&p, 1, PD_FALLBACK_NO) == p.n);
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* ---- explain ------------------------------------------------------------------------------- */

static void test_explain_json(void)
{
    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    ctx.compliance = PD_COMPLY_ZDR;
    pd_route_plan p;
    pd_api_error e;
    pd_chat_request q;
    simple(&q, "Write to \"jane.doe@example.com\"; then summarize the plan.");
    CHECK(plan(r, "auto-redact", &q, &ctx, &p, &e) == PD_OK);
    pd_buf b;
    pd_buf_init(&b, 1 << 16);
    CHECK(pd_route_plan_explain(&p, &b) == PD_OK);
    json_error_t je;
    json_t *j = json_loads(b.data, 0, &je);
    CHECK(j != NULL);
    if (j) {
        CHECK_STR(json_string_value(json_object_get(j, "route")), "auto-redact");
        CHECK_STR(json_string_value(json_object_get(j, "policy")), "privacy");
        json_t *c = json_object_get(j, "candidates");
        CHECK(json_array_size(c) == 3); /* gpt-4o dropped: no zdr */
        CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0), "model")), "claude-eu");
        CHECK(json_is_true(json_object_get(json_array_get(c, 0), "redact")));
        CHECK(json_is_false(json_object_get(json_array_get(c, 1), "redact")));
        json_t *pii = json_object_get(j, "pii");
        CHECK_STR(json_string_value(json_array_get(json_object_get(pii, "types"), 0)), "EMAIL");
        CHECK_STR(json_string_value(json_object_get(pii, "action")), "redact");
        CHECK(json_is_null(json_object_get(j, "score")));
        CHECK_STR(json_string_value(json_array_get(json_object_get(j, "compliance"), 0)), "zdr");
        CHECK(json_integer_value(json_object_get(j, "dropped")) == 1);
        CHECK(strstr(json_string_value(json_object_get(j, "reason")), "missing zdr") != NULL);
        CHECK(strstr(b.data, "jane") == NULL);
        json_decref(j);
    }
    pd_chat_request_free(&q);

    simple(&q, HARD);
    pd_buf_reset(&b);
    ctx.compliance = 0;
    CHECK(plan(r, "smart", &q, &ctx, &p, &e) == PD_OK);
    CHECK(pd_route_plan_explain(&p, &b) == PD_OK);
    j = json_loads(b.data, 0, &je);
    CHECK(j != NULL);
    if (j) {
        json_t *s = json_object_get(j, "score");
        CHECK(json_real_value(json_object_get(s, "value")) == p.score);
        CHECK_STR(json_string_value(json_object_get(s, "scorer")), "heuristic-v1");
        CHECK(json_object_size(json_object_get(s, "features")) == PD_FEAT_COUNT);
        CHECK(json_is_false(json_object_get(json_object_get(j, "pii"), "scanned")));
        json_decref(j);
    }
    pd_buf_free(&b);
    pd_buf_init(&b, 16); /* too small: an error, the buffer left as it was */
    CHECK(pd_route_plan_explain(&p, &b) == PD_ERR_TOO_LARGE);
    CHECK(b.len == 0);
    pd_buf_free(&b);
    pd_chat_request_free(&q);
    pd_router_free(r);
}

/* ---- circuit breaker ----------------------------------------------------------------------- */

static void test_breaker(void)
{
    pd_breaker_params bp = {.failures = 3, .window_ms = 1000, .cooldown_ms = 5000};
    pd_breaker b;
    pd_breaker_init(&b);
    CHECK(pd_breaker_allow(&b, &bp, 0));
    pd_breaker_failure(&b, &bp, 100);
    pd_breaker_failure(&b, &bp, 200);
    pd_breaker_failure(&b, &bp, 1300); /* the window restarted at 1300: only 1 counts */
    CHECK(b.state == PD_BREAKER_CLOSED && b.failures == 1);
    pd_breaker_failure(&b, &bp, 1400);
    pd_breaker_failure(&b, &bp, 1500);
    CHECK(b.state == PD_BREAKER_OPEN);
    CHECK(pd_breaker_is_open(&b, &bp, 6499));
    CHECK(!pd_breaker_allow(&b, &bp, 6499));
    CHECK(!pd_breaker_is_open(&b, &bp, 6500)); /* cooled: one probe may go */
    CHECK(pd_breaker_allow(&b, &bp, 6500));
    CHECK(b.state == PD_BREAKER_HALF_OPEN);
    CHECK(!pd_breaker_allow(&b, &bp, 6501)); /* only one probe */
    CHECK(pd_breaker_is_open(&b, &bp, 6501));
    pd_breaker_failure(&b, &bp, 7000); /* the probe failed: another cooldown */
    CHECK(b.state == PD_BREAKER_OPEN && !pd_breaker_allow(&b, &bp, 11999));
    CHECK(pd_breaker_allow(&b, &bp, 12000));
    pd_breaker_success(&b);
    CHECK(b.state == PD_BREAKER_CLOSED && pd_breaker_allow(&b, &bp, 12001));
    pd_breaker_params d = pd_breaker_default_params();
    CHECK(d.failures == 5 && d.cooldown_ms == 30000);
}

/* Half-open: exactly one probe while it is out; a probe whose client left (abandon) lets the
 * next request probe instead; abandon touches nothing but a half-open breaker's probe. */
static void test_breaker_half_open_abandon(void)
{
    pd_breaker_params bp = {.failures = 2, .window_ms = 1000, .cooldown_ms = 500};
    pd_breaker b;
    pd_breaker_init(&b);
    pd_breaker_abandon(NULL);
    pd_breaker_abandon(&b); /* closed: no effect */
    CHECK(b.state == PD_BREAKER_CLOSED && pd_breaker_allow(&b, &bp, 0));
    pd_breaker_failure(&b, &bp, 10);
    pd_breaker_failure(&b, &bp, 20);
    CHECK(b.state == PD_BREAKER_OPEN);
    pd_breaker_abandon(&b); /* open: the cooldown still holds */
    CHECK(pd_breaker_is_open(&b, &bp, 519) && !pd_breaker_allow(&b, &bp, 519));
    CHECK(pd_breaker_allow(&b, &bp, 520)); /* the probe */
    CHECK(b.state == PD_BREAKER_HALF_OPEN && b.probing);
    for (int i = 0; i < 10; i++) /* however many come while it is out: none goes */
        CHECK(!pd_breaker_allow(&b, &bp, 521 + (uint64_t)i));
    pd_breaker_abandon(&b); /* its client left: no verdict */
    CHECK(b.state == PD_BREAKER_HALF_OPEN && !b.probing);
    CHECK(!pd_breaker_is_open(&b, &bp, 600));
    CHECK(pd_breaker_allow(&b, &bp, 600)); /* a new probe, exactly one */
    CHECK(!pd_breaker_allow(&b, &bp, 601));
    pd_breaker_success(&b); /* the probe succeeded: closed, the count starts afresh */
    CHECK(b.state == PD_BREAKER_CLOSED && b.failures == 0 && !b.probing);
    pd_breaker_failure(&b, &bp, 700);
    CHECK(b.state == PD_BREAKER_CLOSED); /* one failure after closing is not two */
    pd_breaker_failure(&b, &bp, 800);
    CHECK(b.state == PD_BREAKER_OPEN && b.opened_at == 800);
    /* a request let through before it opened (a straggler) failing later restarts the cooldown */
    pd_breaker_failure(&b, &bp, 1000);
    CHECK(b.state == PD_BREAKER_OPEN && pd_breaker_is_open(&b, &bp, 1499) && !pd_breaker_is_open(&b, &bp, 1500));
}

/* ---- scorer -------------------------------------------------------------------------------- */

static double score_of(const pd_chat_request *q, pd_score_features *f)
{
    pd_scorer s = pd_score_default();
    return pd_score_run(&s, q, f);
}

static void test_score_monotonic(void)
{
    pd_score_features f;
    pd_chat_request q;
    simple(&q, GREETING);
    double easy = score_of(&q, &f);
    CHECK(easy >= 0 && easy < 0.1);
    CHECK(f.value[PD_FEAT_CODE] == 0 && f.value[PD_FEAT_MATH] == 0);
    pd_chat_request_free(&q);

    simple(&q, HARD);
    double hard = score_of(&q, &f);
    CHECK(hard > 0.45 && hard <= 1);
    CHECK(f.value[PD_FEAT_CODE] == 1);
    CHECK(f.value[PD_FEAT_MATH] > 0.5);
    CHECK(f.value[PD_FEAT_STEPS] > 0.5);
    CHECK(f.value[PD_FEAT_LANGUAGE] == 0);
    printf("score: greeting %.3f, multi-step math with code %.3f\n", easy, hard);

    /* each added signal raises (or keeps) the score */
    q.sampling.has_max_tokens = true;
    q.sampling.max_tokens = 8192;
    double more = score_of(&q, &f);
    CHECK(more > hard && f.value[PD_FEAT_OUTPUT] == 1);
    q.tools = pd_chat_request_alloc(&q, 1, sizeof *q.tools);
    q.tools[0].name = pd_chat_request_strdup(&q, "run");
    q.n_tools = 1;
    double tools = score_of(&q, &f);
    CHECK(tools > more && f.value[PD_FEAT_TOOLS] > 0);
    add_text(&q, PD_ROLE_ASSISTANT, "ok");
    add_text(&q, PD_ROLE_USER, "go on");
    CHECK(score_of(&q, &f) > tools && f.value[PD_FEAT_DEPTH] > 0);
    pd_chat_request_free(&q);

    simple(&q, "Объясни, пожалуйста, почему небо голубое?");
    double ru = score_of(&q, &f);
    CHECK(f.value[PD_FEAT_LANGUAGE] == 1);
    CHECK(ru > easy);
    pd_chat_request_free(&q);

    /* assistant text is not scored */
    pd_chat_request_init(&q);
    add_text(&q, PD_ROLE_ASSISTANT, HARD);
    CHECK(score_of(&q, &f) < 0.1 && f.text_bytes == 0);
    pd_chat_request_free(&q);

    double sum = 0;
    for (int i = 0; i < PD_FEAT_COUNT; i++)
        sum += pd_score_feature_weight(i);
    CHECK(sum > 0.9999 && sum < 1.0001);
    CHECK(pd_score_feature_name(PD_FEAT_COUNT) == NULL);
}

static void test_score_keywords_sorted(void)
{
    pd_score_feature feat;
    const char *prev = pd_score_keyword(0, &feat);
    size_t n = 1;
    CHECK(prev != NULL);
    for (const char *w; (w = pd_score_keyword(n, &feat)) != NULL; n++) {
        CHECK(strcmp(prev, w) < 0);
        CHECK(feat < PD_FEAT_COUNT);
        prev = w;
    }
    CHECK(n > 50);
    /* every keyword is found (upper-case too) */
    pd_score_features f;
    pd_chat_request q;
    for (size_t i = 0; i < n; i++) {
        char text[64];
        const char *w = pd_score_keyword(i, &feat);
        snprintf(text, sizeof text, "%c%s.", w[0] - 32, w + 1);
        simple(&q, text);
        score_of(&q, &f);
        CHECK(f.value[feat] > 0);
        pd_chat_request_free(&q);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_score_timing(void)
{
    char text[2049];
    size_t len = 0, hl = strlen(HARD);
    while (len < 2048) {
        size_t n = 2048 - len < hl ? 2048 - len : hl;
        memcpy(text + len, HARD, n);
        len += n;
    }
    text[len] = '\0';
    pd_chat_request q;
    simple(&q, text);
    pd_score_features f;
    const int N = 20000;
    double sink = 0, t0 = now_s();
    for (int i = 0; i < N; i++)
        sink += score_of(&q, &f);
    double us = (now_s() - t0) / N * 1e6;
    printf("score: %.2f us per 2 KiB prompt (score %.3f)\n", us, sink / N);

    pd_router *r = make_router();
    pd_route_ctx ctx = ctx_default();
    pd_route_plan p;
    pd_api_error e;
    t0 = now_s();
    for (int i = 0; i < 2000; i++)
        plan(r, "auto", &q, &ctx, &p, &e);
    printf("plan 'auto' (PII scan + score): %.2f us per 2 KiB prompt\n",
           (now_s() - t0) / 2000 * 1e6);
    pd_router_free(r);
    pd_chat_request_free(&q);
}

int main(void)
{
    pd_pii_params pp = pd_pii_default_params();
    if (pd_pii_detector_new(&pp, &g_det) || pd_pii_scanner_new(g_det, &g_scan)) {
        fprintf(stderr, "PII detector failed\n");
        return 1;
    }
    TEST_RUN(test_fallback_and_plain_model);
    TEST_RUN(test_tiered);
    TEST_RUN(test_tier_thresholds_custom_scorer);
    TEST_RUN(test_speculative_and_balance);
    TEST_RUN(test_balance_round_robin_and_random);
    TEST_RUN(test_balance_least_outstanding);
    TEST_RUN(test_balance_latency);
    TEST_RUN(test_balance_weighted);
    TEST_RUN(test_balance_validation);
    TEST_RUN(test_balance_from_config);
    TEST_RUN(test_privacy_no_pii);
    TEST_RUN(test_privacy_local_in_message);
    TEST_RUN(test_privacy_content_part_and_tools);
    TEST_RUN(test_privacy_redact_and_block);
    TEST_RUN(test_privacy_sticky_in_composition);
    TEST_RUN(test_compliance);
    TEST_RUN(test_cloud_target);
    TEST_RUN(test_open_circuit_last);
    TEST_RUN(test_validation);
    TEST_RUN(test_should_fallback);
    TEST_RUN(test_plan_next_larger);
    TEST_RUN(test_explain_json);
    TEST_RUN(test_breaker);
    TEST_RUN(test_breaker_half_open_abandon);
    TEST_RUN(test_score_monotonic);
    TEST_RUN(test_score_keywords_sorted);
    TEST_RUN(test_score_timing);
    pd_pii_scanner_free(g_scan);
    pd_pii_detector_free(g_det);
    return TEST_DONE();
}
