/* test_resilience.c: router/resilience.h: the backoff's caps and full-jitter range, the
 * upstream's Retry-After winning over it, the confidence arithmetic against hand-computed values,
 * and the gate with and without thresholds. */
#include <math.h>
#include <stdint.h>

#include "router/resilience.h"
#include "test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

/* xorshift64*: deterministic "random" bits, so a failure reproduces. */
static uint64_t next_rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static pd_route_resilience params(uint32_t base, uint32_t max)
{
    pd_route_resilience r = pd_route_resilience_default();
    r.backoff_base_ms = base;
    r.backoff_max_ms = max;
    return r;
}

static void test_defaults(void)
{
    pd_route_resilience r = pd_route_resilience_default();
    CHECK(r.retries == 0);
    CHECK(r.backoff_base_ms == 200 && r.backoff_max_ms == 10000);
    CHECK(r.max_attempts == 8 && r.deadline_ms == 0);
    CHECK(!pd_route_has_confidence(&r));
    CHECK(r.window_tokens == 8 && r.decide_after_tokens == 16);
}

/* The largest wait of retry k is min(max, base * 2^k): a random value equal to the cap gives
 * the cap, one more wraps to 0, and no value gives more. */
static void test_backoff_caps(void)
{
    pd_route_resilience r = params(100, 1000);
    const uint64_t caps[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (uint32_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
        CHECK(pd_route_backoff_ms(&r, k, -1, caps[k]) == caps[k]);
        CHECK(pd_route_backoff_ms(&r, k, -1, caps[k] + 1) == 0);
        CHECK(pd_route_backoff_ms(&r, k, -1, 0) == 0);
    }
    /* a huge k neither overflows nor runs long: the doubling stops at the cap */
    CHECK(pd_route_backoff_ms(&r, UINT32_MAX, -1, 1000) == 1000);
    CHECK(pd_route_backoff_ms(&r, UINT32_MAX, -1, UINT64_MAX) <= 1000);
    /* a base above the max is capped from the first retry */
    pd_route_resilience big = params(5000, 300);
    CHECK(pd_route_backoff_ms(&big, 0, -1, 300) == 300);
    CHECK(pd_route_backoff_ms(&big, 0, -1, 301) == 0);
    /* the largest values config allows (an hour) */
    pd_route_resilience hour = params(3600000, 3600000);
    CHECK(pd_route_backoff_ms(&hour, 30, -1, 3600000) == 3600000);
}

/* Full jitter: over many random values every wait lies in [0, cap], and the waits spread over
 * the whole range (both ends are reached and the mean is near cap / 2). */
static void test_backoff_full_jitter(void)
{
    pd_route_resilience r = params(50, 400);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (uint32_t k = 0; k < 5; k++) {
        uint64_t cap = k == 0 ? 50 : k == 1 ? 100 : k == 2 ? 200 : 400;
        uint64_t lo = UINT64_MAX, hi = 0;
        double sum = 0;
        const int n = 20000;
        for (int i = 0; i < n; i++) {
            uint64_t w = pd_route_backoff_ms(&r, k, -1, next_rnd(&seed));
            CHECK(w <= cap);
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
            sum += (double)w;
        }
        CHECK(lo == 0);
        CHECK(hi == cap);
        double mean = sum / n;
        CHECK(mean > cap * 0.45 && mean < cap * 0.55);
    }
}

/* The upstream's Retry-After is returned as is: not jittered, not capped (the relay decides
 * whether it is too long to wait). -1 means "none". */
static void test_retry_after_wins(void)
{
    pd_route_resilience r = params(100, 1000);
    CHECK(pd_route_backoff_ms(&r, 0, 300, 0) == 300);
    CHECK(pd_route_backoff_ms(&r, 3, 300, 12345) == 300);
    CHECK(pd_route_backoff_ms(&r, 0, 0, 999) == 0);
    /* above max_ms: still the upstream's word */
    CHECK(pd_route_backoff_ms(&r, 0, 5000, 7) == 5000);
    CHECK(pd_route_backoff_ms(&r, 0, -1, 7) == 7);
}

static void add_all(pd_confidence *c, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pd_confidence_add(c, v[i]);
}

/* window 3 over -1, -2, -3, -0.5, -4: mean -10.5 / 5 = -2.1; the windows' means are -2,
 * -5.5/3 and -2.5, so the lowest is -2.5. */
static void test_confidence_arithmetic(void)
{
    pd_confidence c;
    pd_confidence_init(&c, 3);
    CHECK(NEAR(pd_confidence_mean(&c), 0) && NEAR(pd_confidence_min_window(&c), 0));
    const double v[] = {-1, -2, -3, -0.5, -4};
    add_all(&c, v, 2);
    CHECK(NEAR(pd_confidence_mean(&c), -1.5));
    CHECK(NEAR(pd_confidence_min_window(&c), -1.5)); /* fewer tokens than the window: the mean */
    pd_confidence_add(&c, v[2]);
    CHECK(NEAR(pd_confidence_min_window(&c), -2.0));
    pd_confidence_add(&c, v[3]);
    CHECK(NEAR(pd_confidence_min_window(&c), -2.0)); /* -1.8333 is not lower */
    pd_confidence_add(&c, v[4]);
    CHECK(NEAR(pd_confidence_mean(&c), -2.1));
    CHECK(NEAR(pd_confidence_min_window(&c), -2.5));

    /* the lowest window may be the first one, long before the end, and the ring wraps many
       times after it: -4 -4 then 40 tokens of -0.1 with window 2 */
    pd_confidence_init(&c, 2);
    pd_confidence_add(&c, -4);
    pd_confidence_add(&c, -4);
    for (int i = 0; i < 40; i++)
        pd_confidence_add(&c, -0.1);
    CHECK(NEAR(pd_confidence_min_window(&c), -4.0));
    CHECK(NEAR(pd_confidence_mean(&c), (-8.0 - 4.0) / 42));

    /* window 1: the lowest single token */
    pd_confidence_init(&c, 1);
    add_all(&c, v, 5);
    CHECK(NEAR(pd_confidence_min_window(&c), -4.0));
}

static void test_confidence_window_clamped(void)
{
    pd_confidence c;
    pd_confidence_init(&c, 0);
    CHECK(c.window == 1);
    pd_confidence_init(&c, 1000);
    CHECK(c.window == PD_CONFIDENCE_MAX_WINDOW);
    for (int i = 0; i < PD_CONFIDENCE_MAX_WINDOW - 1; i++)
        pd_confidence_add(&c, -1);
    pd_confidence_add(&c, -65); /* the 64th token completes the first window: (-63 - 65) / 64 */
    CHECK(NEAR(pd_confidence_min_window(&c), -2.0));
}

static void test_confidence_gate(void)
{
    const double v[] = {-1, -2, -3, -0.5, -4}; /* mean -2.1, lowest window of 3: -2.5 */
    pd_confidence c;
    pd_confidence_init(&c, 3);
    pd_route_resilience r = pd_route_resilience_default();
    CHECK(pd_confidence_passes(&c, &r)); /* no thresholds, no tokens */
    add_all(&c, v, 5);
    CHECK(pd_confidence_passes(&c, &r)); /* no thresholds: nothing to judge */

    r.min_mean_logprob = -2.0;
    CHECK(pd_route_has_confidence(&r));
    CHECK(!pd_confidence_passes(&c, &r)); /* -2.1 < -2.0 */
    r.min_mean_logprob = -2.1;
    CHECK(pd_confidence_passes(&c, &r)); /* equal passes */
    r.min_mean_logprob = -2.2;
    CHECK(pd_confidence_passes(&c, &r));

    r.min_window_logprob = -2.4;
    CHECK(!pd_confidence_passes(&c, &r)); /* -2.5 < -2.4, though the mean passes */
    r.min_window_logprob = -2.6;
    CHECK(pd_confidence_passes(&c, &r));

    pd_route_resilience only_window = pd_route_resilience_default();
    only_window.min_window_logprob = -2.4;
    CHECK(pd_route_has_confidence(&only_window));
    CHECK(!pd_confidence_passes(&c, &only_window));

    /* a threshold of 0 is set (certainty required); > 0 is unset */
    pd_route_resilience zero = pd_route_resilience_default();
    zero.min_mean_logprob = 0;
    CHECK(pd_route_has_confidence(&zero));
    CHECK(!pd_confidence_passes(&c, &zero));

    pd_confidence empty;
    pd_confidence_init(&empty, 3);
    CHECK(pd_confidence_passes(&empty, &r)); /* with thresholds but no tokens: passes */
}

int main(void)
{
    TEST_RUN(test_defaults);
    TEST_RUN(test_backoff_caps);
    TEST_RUN(test_backoff_full_jitter);
    TEST_RUN(test_retry_after_wins);
    TEST_RUN(test_confidence_arithmetic);
    TEST_RUN(test_confidence_window_clamped);
    TEST_RUN(test_confidence_gate);
    return TEST_DONE();
}
