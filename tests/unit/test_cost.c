/* Prices (table, name matching, overrides, local cost model) and the cost of one request.
 * Every expected figure is worked out by hand in the comment next to it. */
#include <math.h>

#include "econ/cost.h"
#include "econ/prices.h"
#include "test.h"

static int near(double a, double b)
{
    return fabs(a - b) < 1e-12;
}

static pd_chat_usage usage(int64_t prompt, int64_t cached, int64_t written, int64_t completion,
                           int64_t reasoning)
{
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    u.prompt_tokens = prompt;
    u.cached_tokens = cached;
    u.cache_write_tokens = written;
    u.completion_tokens = completion;
    u.reasoning_tokens = reasoning;
    return u;
}

static void check_price(const char *model, const char *row, double in, double out, double cr,
                        double cw)
{
    pd_price p;
    CHECK(pd_prices_lookup(NULL, model, &p) == PD_OK);
    CHECK_STR(p.model, row);
    CHECK(p.input == in);
    CHECK(p.output == out);
    CHECK(p.cache_read == cr);
    CHECK(p.cache_write == cw);
}

static void issue_prices(void)
{
    /* the six prices issue 6 requires */
    check_price("gpt-4o", "gpt-4o", 2.50, 10.00, 1.25, PD_PRICE_NONE);
    check_price("gpt-4o-mini", "gpt-4o-mini", 0.15, 0.60, 0.075, PD_PRICE_NONE);
    /* Anthropic: cache read 0.1x input, 5-minute cache write 1.25x input */
    check_price("claude-sonnet-4", "claude-sonnet-4", 3.00, 15.00, 0.30, 3.75);
    check_price("claude-3-5-haiku", "claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00);
    check_price("command-r-plus", "command-r-plus", 2.50, 10.00, PD_PRICE_NONE, PD_PRICE_NONE);
    check_price("command-r", "command-r", 0.15, 0.60, PD_PRICE_NONE, PD_PRICE_NONE);
    CHECK_STR(pd_prices_as_of(), "2026-11-01");
    CHECK(pd_prices_count(NULL) >= 6);
    CHECK(pd_prices_at(NULL, pd_prices_count(NULL)) == NULL);
    CHECK_STR(pd_prices_at(NULL, 0)->model, "gpt-4o");
}

static void dated_names(void)
{
    check_price("gpt-4o-2024-08-06", "gpt-4o", 2.50, 10.00, 1.25, PD_PRICE_NONE);
    check_price("gpt-4o-mini-2024-07-18", "gpt-4o-mini", 0.15, 0.60, 0.075, PD_PRICE_NONE);
    check_price("claude-sonnet-4-20250514", "claude-sonnet-4", 3.00, 15.00, 0.30, 3.75);
    check_price("claude-sonnet-4-0", "claude-sonnet-4", 3.00, 15.00, 0.30, 3.75);
    check_price("claude-sonnet-4@20250514", "claude-sonnet-4", 3.00, 15.00, 0.30, 3.75);
    check_price("claude-3-5-haiku-latest", "claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00);
    check_price("command-r-plus-08-2024", "command-r-plus", 2.50, 10.00, PD_PRICE_NONE,
                PD_PRICE_NONE);
    check_price("command-r-08-2024", "command-r", 0.15, 0.60, PD_PRICE_NONE, PD_PRICE_NONE);
    /* an exact row beats a prefix: the first gpt-4o snapshot had its own price */
    check_price("gpt-4o-2024-05-13", "gpt-4o-2024-05-13", 5.00, 15.00, PD_PRICE_NONE,
                PD_PRICE_NONE);
    /* the longest prefix: claude-sonnet-4-5's own row, not claude-sonnet-4 + "-5" */
    check_price("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75);
}

static void unknown_names(void)
{
    static const char *const names[] = {
        "gpt-4o-realtime-preview", /* a different model that extends a known name */
        "claude-sonnet-4-7",       /* a newer model, not a snapshot */
        "gpt-4",                   /* a prefix of a table name is not a match */
        "gpt-4o-",                 /* nothing after the dash */
        "gpt-4o-2024-08-0",        /* not a whole date */
        "gpt-4o-2024-08-066",      /* nor this */
        "GPT-4o",                  /* names are case-sensitive, as upstreams are */
        "openai/gpt-4o",           /* router prefixes are not stripped */
        "",
    };
    pd_price p = {"untouched", 7, 7, 7, 7, NULL};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        CHECK(pd_prices_lookup(NULL, names[i], &p) == PD_ERR_NOT_FOUND);
    CHECK(pd_prices_lookup(NULL, NULL, &p) == PD_ERR_NOT_FOUND);
    CHECK_STR(p.model, "untouched");
}

static void overrides(void)
{
    pd_price_override o[2];
    pd_price_override_init(&o[0], "gpt-4o");
    o[0].input = 2.00;               /* only input changes */
    o[0].cache_read = PD_PRICE_NONE; /* and the cache discount is removed */
    pd_price_override_init(&o[1], "my-finetune");
    o[1].input = 1.00;
    o[1].output = 4.00;
    pd_prices *t = NULL;
    char msg[200] = "";
    CHECK(pd_prices_new(o, 2, &t, msg, sizeof msg) == PD_OK);
    pd_price p;
    CHECK(pd_prices_lookup(t, "gpt-4o-2024-08-06", &p) == PD_OK);
    CHECK_STR(p.model, "gpt-4o");
    CHECK(p.input == 2.00 && p.output == 10.00 && p.cache_read == PD_PRICE_NONE);
    CHECK_STR(p.note, "set in config");
    CHECK(pd_prices_lookup(t, "my-finetune", &p) == PD_OK);
    CHECK(p.input == 1.00 && p.output == 4.00);
    CHECK(p.cache_read == PD_PRICE_NONE && p.cache_write == PD_PRICE_NONE);
    CHECK(pd_prices_lookup(t, "my-finetune-20250101", &p) == PD_OK); /* suffix rule too */
    CHECK(pd_prices_count(t) == pd_prices_count(NULL) + 1);
    CHECK_STR(pd_prices_at(t, pd_prices_count(t) - 1)->model, "my-finetune");
    /* the built-in table is untouched */
    CHECK(pd_prices_lookup(NULL, "gpt-4o", &p) == PD_OK && p.input == 2.50 && p.cache_read == 1.25);
    CHECK(pd_prices_lookup(NULL, "my-finetune", &p) == PD_ERR_NOT_FOUND);
    pd_prices_free(t);
    pd_prices_free(NULL);
}

static void bad_overrides(void)
{
    pd_price_override o[2];
    pd_prices *t = (pd_prices *)&t;
    char msg[200] = "";

    pd_price_override_init(&o[0], "brand-new");
    o[0].input = 1.0; /* no output price for a model the table does not know */
    CHECK(pd_prices_new(o, 1, &t, msg, sizeof msg) == PD_ERR_INVALID);
    CHECK(t == NULL);
    CHECK(strstr(msg, "brand-new") != NULL);

    pd_price_override_init(&o[0], "gpt-4o");
    o[0].output = -3;
    CHECK(pd_prices_new(o, 1, &t, msg, sizeof msg) == PD_ERR_INVALID);
    o[0].output = NAN;
    CHECK(pd_prices_new(o, 1, &t, msg, sizeof msg) == PD_ERR_INVALID);
    o[0].output = PD_PRICE_NONE; /* input and output cannot be "none" */
    CHECK(pd_prices_new(o, 1, &t, msg, sizeof msg) == PD_ERR_INVALID);

    pd_price_override_init(&o[0], "gpt-4o");
    pd_price_override_init(&o[1], "gpt-4o");
    CHECK(pd_prices_new(o, 2, &t, msg, sizeof msg) == PD_ERR_INVALID);
    CHECK(strstr(msg, "twice") != NULL);

    pd_price_override_init(&o[0], "");
    CHECK(pd_prices_new(o, 1, &t, msg, sizeof msg) == PD_ERR_INVALID);
    CHECK(pd_prices_new(NULL, 0, &t, msg, sizeof msg) == PD_OK && t != NULL);
    pd_prices_free(t);
}

static const pd_price *row(const char *model)
{
    static pd_price p;
    return pd_prices_lookup(NULL, model, &p) == PD_OK ? &p : NULL;
}

static void plain_request(void)
{
    /* gpt-4o, 1000 in, 500 out: 1000 x 2.50/1e6 + 500 x 10/1e6 = 0.0025 + 0.005 */
    pd_chat_usage u =
        usage(1000, PD_CHAT_COUNT_UNKNOWN, PD_CHAT_COUNT_UNKNOWN, 500, PD_CHAT_COUNT_UNKNOWN);
    pd_cost c;
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(c.known && c.status == PD_COST_KNOWN);
    CHECK(near(c.input_usd, 0.0025) && near(c.output_usd, 0.005) && near(c.usd, 0.0075));
    CHECK(c.cached_usd == 0 && c.cache_write_usd == 0 && c.reasoning_usd == 0);
    char h[PD_COST_HEADER_MAX];
    CHECK(pd_cost_header(&c, h, sizeof h) == PD_OK);
    CHECK_STR(h, "0.007500");
    CHECK_STR(pd_cost_status_name(c.status), "known");
}

static void cached_tokens(void)
{
    /* gpt-4o, 1000 in of which 400 cached, 100 out:
       600 x 2.50 + 400 x 1.25 + 100 x 10 = 1500 + 500 + 1000 = 3000 per million = 0.003 */
    pd_chat_usage u = usage(1000, 400, 0, 100, 0);
    pd_cost c;
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(c.known);
    CHECK(near(c.input_usd, 0.0015) && near(c.cached_usd, 0.0005) && near(c.output_usd, 0.001));
    CHECK(near(c.usd, 0.003));
    /* command-r has no cache price: 1000 cached tokens at the input price, 1000 x 0.15 */
    u = usage(1000, 1000, 0, 0, 0);
    pd_cost_compute(row("command-r"), &u, &c);
    CHECK(c.known && near(c.cached_usd, 0.00015) && near(c.usd, 0.00015));
}

static void cache_writes(void)
{
    /* claude-sonnet-4: 10000 in = 3000 uncached + 2000 cache reads + 5000 cache writes,
       1000 out: 3000 x 3 + 2000 x 0.30 + 5000 x 3.75 + 1000 x 15
       = 9000 + 600 + 18750 + 15000 = 43350 per million = 0.04335 */
    pd_chat_usage u = usage(10000, 2000, 5000, 1000, PD_CHAT_COUNT_UNKNOWN);
    pd_cost c;
    pd_cost_compute(row("claude-sonnet-4-20250514"), &u, &c);
    CHECK(c.known);
    CHECK(near(c.input_usd, 0.009) && near(c.cached_usd, 0.0006));
    CHECK(near(c.cache_write_usd, 0.01875) && near(c.output_usd, 0.015));
    CHECK(near(c.usd, 0.04335));
    char h[PD_COST_HEADER_MAX];
    CHECK(pd_cost_header(&c, h, sizeof h) == PD_OK);
    CHECK_STR(h, "0.043350");
    /* OpenAI bills cache writes at the input price: 1000 x 2.50 = 0.0025 */
    u = usage(1000, 0, 1000, 0, 0);
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(c.known && near(c.cache_write_usd, 0.0025) && near(c.usd, 0.0025));
}

static void reasoning_tokens(void)
{
    /* gpt-4o-mini, 1000 out of which 800 reasoning: all 1000 at 0.60, reasoning is part of
       it (800 x 0.60 = 0.00048), not added: total 1000 x 0.60 = 0.0006 */
    pd_chat_usage u = usage(0, 0, 0, 1000, 800);
    pd_cost c;
    pd_cost_compute(row("gpt-4o-mini"), &u, &c);
    CHECK(c.known);
    CHECK(near(c.output_usd, 0.0006) && near(c.reasoning_usd, 0.00048) && near(c.usd, 0.0006));
}

static void unknown_price(void)
{
    pd_chat_usage u = usage(1000, 0, 0, 500, 0);
    pd_cost c;
    pd_cost_compute(NULL, &u, &c);
    CHECK(!c.known && c.status == PD_COST_NO_PRICE);
    CHECK(c.usd == 0);
    char h[PD_COST_HEADER_MAX];
    CHECK(pd_cost_header(&c, h, sizeof h) == PD_OK);
    CHECK_STR(h, "unknown"); /* never "0.000000" */
    CHECK_STR(pd_cost_status_name(c.status), "no_price");
}

static void unknown_usage(void)
{
    pd_cost c;
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(!c.known && c.status == PD_COST_NO_USAGE);
    u = usage(1000, 0, 0, PD_CHAT_COUNT_UNKNOWN, 0); /* stream cut before its usage */
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(!c.known && c.status == PD_COST_NO_USAGE);
    u = usage(PD_CHAT_COUNT_UNKNOWN, 0, 0, 10, 0);
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(!c.known && c.status == PD_COST_NO_USAGE);
    char h[PD_COST_HEADER_MAX];
    CHECK(pd_cost_header(&c, h, sizeof h) == PD_OK);
    CHECK_STR(h, "unknown");
    CHECK_STR(pd_cost_status_name(c.status), "no_usage");
}

static void contradictory_usage(void)
{
    pd_cost c;
    pd_chat_usage u = usage(100, 101, 0, 10, 0); /* more cached than prompt */
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(!c.known && c.status == PD_COST_BAD_USAGE);
    u = usage(100, 60, 50, 10, 0); /* cached + written > prompt */
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(c.status == PD_COST_BAD_USAGE);
    u = usage(100, 0, 0, 10, 11); /* more reasoning than completion */
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(c.status == PD_COST_BAD_USAGE);
    u = usage(100, -5, 0, 10, 0);
    pd_cost_compute(row("gpt-4o"), &u, &c);
    CHECK(c.status == PD_COST_BAD_USAGE);
    CHECK_STR(pd_cost_status_name(c.status), "bad_usage");
}

static void header_too_small(void)
{
    pd_chat_usage u = usage(1000, 0, 0, 500, 0);
    pd_cost c;
    pd_cost_compute(row("gpt-4o"), &u, &c);
    char h[8] = "xxxxxxx";
    CHECK(pd_cost_header(&c, h, sizeof h) == PD_ERR_TOO_LARGE); /* "0.007500" needs 9 */
    CHECK_STR(h, "");
    char h9[9];
    CHECK(pd_cost_header(&c, h9, sizeof h9) == PD_OK);
    CHECK_STR(h9, "0.007500");
}

static void local_cost_model(void)
{
    pd_local_cost m;
    char msg[200];
    pd_local_cost_default(&m);
    CHECK(m.hardware_usd_per_hour == 1.006 && m.hours_per_month == 730);
    CHECK(m.requests_per_hour == 800 && m.ops_hours_per_month == 10);
    CHECK(m.ops_usd_per_hour == 150 && m.steady_ops_hours_per_month == 0);
    CHECK(pd_local_cost_check(&m, msg, sizeof msg) == PD_OK);
    /* one request on a fully used instance: 1.006 / 800 */
    pd_cost c;
    pd_cost_local(&m, &c);
    CHECK(c.known && near(c.usd, 0.0012575));
    m.hours_per_month = 0;
    CHECK(pd_local_cost_check(&m, msg, sizeof msg) == PD_ERR_INVALID);
    m.hours_per_month = 745;
    CHECK(pd_local_cost_check(&m, msg, sizeof msg) == PD_ERR_INVALID);
    m.hours_per_month = 744;
    CHECK(pd_local_cost_check(&m, msg, sizeof msg) == PD_OK);
    m.requests_per_hour = 0;
    CHECK(pd_local_cost_check(&m, msg, sizeof msg) == PD_ERR_INVALID);
    pd_cost_local(&m, &c);
    CHECK(!c.known && c.status == PD_COST_NO_PRICE);
    pd_local_cost_default(&m);
    m.hardware_usd_per_hour = -1;
    CHECK(pd_local_cost_check(&m, msg, sizeof msg) == PD_ERR_INVALID);
    m.hardware_usd_per_hour = NAN;
    CHECK(pd_local_cost_check(&m, msg, sizeof msg) == PD_ERR_INVALID);
}

int main(void)
{
    TEST_RUN(issue_prices);
    TEST_RUN(dated_names);
    TEST_RUN(unknown_names);
    TEST_RUN(overrides);
    TEST_RUN(bad_overrides);
    TEST_RUN(plain_request);
    TEST_RUN(cached_tokens);
    TEST_RUN(cache_writes);
    TEST_RUN(reasoning_tokens);
    TEST_RUN(unknown_price);
    TEST_RUN(unknown_usage);
    TEST_RUN(contradictory_usage);
    TEST_RUN(header_too_small);
    TEST_RUN(local_cost_model);
    return TEST_DONE();
}
