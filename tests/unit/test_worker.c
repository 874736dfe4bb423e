/* test_worker.c: a worker's per-target load bookkeeping (worker.h): in-flight counts, the
 * latency EWMA and the random source the balance strategies read. No loop, no sockets: the
 * functions only touch the worker's arrays. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/worker.h"
#include "test.h"

static pd_worker *bare_worker(size_t n_targets)
{
    pd_worker *w = calloc(1, sizeof(*w));
    w->n_targets = n_targets;
    w->outstanding = calloc(n_targets, sizeof(*w->outstanding));
    w->latency_ewma_ms = calloc(n_targets, sizeof(*w->latency_ewma_ms));
    w->rng = 0x1234567u;
    return w;
}

static void free_bare(pd_worker *w)
{
    free(w->outstanding);
    free(w->latency_ewma_ms);
    free(w);
}

static void in_flight_counts(void)
{
    pd_worker *w = bare_worker(2);
    pd_worker_target_begin(w, 1);
    pd_worker_target_begin(w, 1);
    pd_worker_target_begin(w, 0);
    CHECK(w->outstanding[0] == 1 && w->outstanding[1] == 2);
    pd_worker_target_end(w, 1, 0, false); /* a failed attempt: counted out, no sample */
    CHECK(w->outstanding[1] == 1 && w->latency_ewma_ms[1] == 0);
    pd_worker_target_end(w, 1, 0, true); /* no first byte: no sample either */
    CHECK(w->outstanding[1] == 0 && w->latency_ewma_ms[1] == 0);
    pd_worker_target_end(w, 1, 5000, true); /* an unpaired end never wraps below zero */
    CHECK(w->outstanding[1] == 0);
    pd_worker_target_begin(w, -1); /* out of range: ignored */
    pd_worker_target_begin(w, 2);
    pd_worker_target_end(w, 7, 1000, true);
    CHECK(w->outstanding[0] == 1);
    free_bare(w);
}

static void latency_ewma(void)
{
    pd_worker *w = bare_worker(1);
    pd_worker_target_begin(w, 0);
    pd_worker_target_end(w, 0, 100000, true); /* the first sample is taken as it is */
    CHECK(fabs(w->latency_ewma_ms[0] - 100.0) < 1e-9);
    pd_worker_target_begin(w, 0);
    pd_worker_target_end(w, 0, 200000, true); /* 100 + 0.3 * (200 - 100) */
    CHECK(fabs(w->latency_ewma_ms[0] - 130.0) < 1e-9);
    pd_worker_target_begin(w, 0);
    pd_worker_target_end(w, 0, 900000, false); /* a failure does not move it */
    CHECK(fabs(w->latency_ewma_ms[0] - 130.0) < 1e-9);
    for (int i = 0; i < 30; i++) { /* a replica that got faster is believed within a few answers */
        pd_worker_target_begin(w, 0);
        pd_worker_target_end(w, 0, 10000, true);
    }
    CHECK(w->latency_ewma_ms[0] > 10.0 && w->latency_ewma_ms[0] < 10.1);
    free_bare(w);
}

static void random_bits(void)
{
    pd_worker *w = bare_worker(1);
    uint64_t a = pd_worker_random(w), b = pd_worker_random(w);
    CHECK(a != b && a != 0 && b != 0);
    unsigned high = 0;
    for (int i = 0; i < 10000; i++)
        high += pd_worker_random(w) >> 63;
    CHECK(high > 4700 && high < 5300); /* the top bit (what weighted picks read) is fair */
    free_bare(w);
}

int main(void)
{
    TEST_RUN(in_flight_counts);
    TEST_RUN(latency_ewma);
    TEST_RUN(random_bits);
    return TEST_DONE();
}
