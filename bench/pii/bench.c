/* bench/pii/bench.c: throughput and latency of the PII detector, against a naive baseline.
 *
 * Engine under test: pd_pii_scan (one Vectorscan pass for all patterns, then validators).
 * Baseline: the same pattern table, each pattern compiled and run separately with PCRE2-JIT
 * over the text, every match sent to the same validator. Same text, same run, so the ratio
 * is like for like; the baseline skips only the final overlap sweep, which favours it.
 *
 * Prints: MB/s on 1 MiB blocks of chat text (single thread = one core), and p50/p99 scan
 * latency on 1 KiB and 32 KiB messages. Build: see bench/pii/README in docs/pii.md, or
 *   cc -O2 -Isrc -Ibench/pii bench/pii/bench.c build/release/libpendulum.a \
 *      $(pkg-config --cflags --libs libhs libpcre2-8) -lm -o build/release/bench_pii
 * Usage: bench_pii [seconds per measurement, default 2] */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pii/pii_int.h"
#include "chat.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The machine may be shared: throughput is measured in this thread's CPU time (MB/s per core,
   unaffected by time spent descheduled), and also in wall-clock time. */
static double clock_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double now(void)
{
    return clock_of(CLOCK_MONOTONIC);
}
static double cpu_now(void)
{
    return clock_of(CLOCK_THREAD_CPUTIME_ID);
}

/* ---- baseline: one PCRE2-JIT regex per pattern ------------------------------------------- */
typedef struct baseline {
    pii_ctx_index index;
    size_t covered[128];
    pcre2_code *re[128];
    pcre2_match_data *md;
    size_t n;
    pd_pii_finding *out;
    size_t cap;
} baseline;

static int baseline_init(baseline *b)
{
    memset(b, 0, sizeof *b);
    pii_ctx_index_build(&b->index);
    for (size_t i = 0; i < pii_pattern_count && i < 128; i++) {
        int err;
        PCRE2_SIZE off;
        uint32_t opt = pii_patterns[i].flags & PII_CASELESS ? PCRE2_CASELESS : 0;
        b->re[i] = pcre2_compile((PCRE2_SPTR)pii_patterns[i].regex, PCRE2_ZERO_TERMINATED, opt,
                                 &err, &off, NULL);
        if (!b->re[i] || pcre2_jit_compile(b->re[i], PCRE2_JIT_COMPLETE) != 0) {
            fprintf(stderr, "baseline: pattern %zu does not compile with PCRE2-JIT\n", i);
            return -1;
        }
    }
    b->n = pii_pattern_count;
    b->md = pcre2_match_data_create(1, NULL);
    return 0;
}

static size_t baseline_scan(baseline *b, const pd_pii_params *params, const char *t, size_t len)
{
    pii_ctx c = {t, len, params, &b->index, b->out, 0, b->cap, params->max_findings, b->covered};
    memset(b->covered, 0, sizeof b->covered);
    for (size_t i = 0; i < b->n; i++) {
        PCRE2_SIZE at = 0;
        while (at <= len) {
            int rc = pcre2_jit_match(b->re[i], (PCRE2_SPTR)t, len, at, 0, b->md, NULL);
            if (rc < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(b->md);
            pii_patterns[i].validate(&c, &pii_patterns[i], ov[0], ov[1]);
            at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
    }
    b->out = c.out;
    b->cap = c.cap;
    return c.n;
}

static void baseline_free(baseline *b)
{
    for (size_t i = 0; i < b->n; i++)
        pcre2_code_free(b->re[i]);
    pcre2_match_data_free(b->md);
    free(b->out);
}

/* ---- measurements ------------------------------------------------------------------------- */
typedef struct engine {
    const char *name;
    pd_pii_scanner *s;
    baseline *b;
    const pd_pii_params *params;
} engine;

static size_t run_once(engine *e, const char *t, size_t len)
{
    if (e->s) {
        const pd_pii_finding *f;
        size_t n;
        if (pd_pii_scan(e->s, t, len, &f, &n) != PD_OK) {
            fprintf(stderr, "scan failed\n");
            exit(1);
        }
        return n;
    }
    return baseline_scan(e->b, e->params, t, len);
}

/* MB/s (CPU time; *wall gets wall-clock MB/s) over the text cut into blocks of `block` bytes,
   for about `secs` seconds of CPU. */
static double throughput(engine *e, const pd_buf *text, size_t block, double secs, double *wall)
{
    size_t bytes = 0;
    double c0 = cpu_now(), w0 = now(), c1;
    do {
        for (size_t off = 0; off + block <= text->len; off += block) {
            run_once(e, text->data + off, block);
            bytes += block;
        }
    } while ((c1 = cpu_now()) - c0 < secs);
    *wall = (double)bytes / (now() - w0) / 1e6;
    return (double)bytes / (c1 - c0) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define ROUNDS 5

/* p50 and p99 wall-clock microseconds of scanning single messages of `size` bytes. The thread
   CPU clock is a system call (~1 us), too coarse here, so wall time is used; on a shared machine
   its tail is preemption, so the measurement runs ROUNDS times and r[0], r[1] are from the
   round with the lowest p99 and r[2], r[3] from the worst round. */
static void latency(engine *e, const pd_buf *msgs, size_t size, size_t count, double r[4])
{
    double *wl = malloc(count * sizeof *wl);
    size_t nmsg = msgs->len / size;
    r[1] = 1e30, r[3] = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < count; i++) {
            const char *m = msgs->data + (i % nmsg) * size;
            double w0 = now();
            run_once(e, m, size);
            wl[i] = (now() - w0) * 1e6;
        }
        qsort(wl, count, sizeof *wl, cmp_double);
        double p50 = wl[count / 2], p99 = wl[count * 99 / 100];
        if (p99 < r[1])
            r[0] = p50, r[1] = p99;
        if (p99 > r[3])
            r[2] = p50, r[3] = p99;
    }
    free(wl);
}

static void row(const char *what, double a, double b)
{
    printf("%-30s %12.2f %12.1f %9.1fx\n", what, a, b, b / a);
}

static void make_text(pd_buf *b, size_t total, size_t msg, uint64_t seed)
{
    uint64_t rng = seed;
    pd_buf_init(b, 0);
    while (b->len < total)
        chat_message(b, &rng, msg);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (!(secs > 0))
        secs = 2.0;
    pd_pii_params params = pd_pii_default_params();
    pd_pii_detector *d;
    pd_pii_scanner *s;
    double t0 = now();
    if (pd_pii_detector_new(&params, &d) || pd_pii_scanner_new(d, &s))
        return 1;
    double compile_ms = (now() - t0) * 1e3;
    baseline b;
    if (baseline_init(&b))
        return 1;

    pd_buf big, m1k, m32k;
    make_text(&big, 8u << 20, 1024, 1);    /* 8 MiB of 1 KiB messages, scanned in 1 MiB blocks */
    make_text(&m1k, 1024 * 1024, 1024, 2); /* 1024 distinct 1 KiB messages */
    make_text(&m32k, 4u << 20, 32768, 3);  /* 128 distinct 32 KiB messages */

    engine eng[2] = {{"vectorscan", s, NULL, &params}, {"pcre2-jit", NULL, &b, &params}};
    double mbps[2], wall[2], l1[2][4], l32[2][4];
    printf("pii bench: %zu patterns, database compiled in %.0f ms, %.1f s per measurement\n",
           pii_pattern_count, compile_ms, secs);
    for (int k = 0; k < 2; k++) {
        mbps[k] = throughput(&eng[k], &big, 1u << 20, secs, &wall[k]);
        latency(&eng[k], &m1k, 1024, k ? 2000 : 20000, l1[k]);
        latency(&eng[k], &m32k, 32768, k ? 200 : 1000, l32[k]);
    }
    /* findings per MiB from one pass each, to show both engines do the same work */
    size_t per_pass[2];
    for (int k = 0; k < 2; k++)
        per_pass[k] = run_once(&eng[k], big.data, 1u << 20);
    printf("%-30s %12s %12s %10s\n", "", "vectorscan", "pcre2-jit", "ratio");
    printf("%-30s %12.0f %12.1f %9.1fx\n", "throughput MB/s, CPU time", mbps[0], mbps[1],
           mbps[0] / mbps[1]);
    printf("%-30s %12.0f %12.1f %9.1fx\n", "throughput MB/s, wall clock", wall[0], wall[1],
           wall[0] / wall[1]);
    static const char *const lbl[4] = {"p50, best round", "p99, best round", "p50, worst round",
                                       "p99, worst round"};
    char name[64];
    for (int q = 0; q < 4; q++) {
        snprintf(name, sizeof name, "1 KiB scan %s (us)", lbl[q]);
        row(name, l1[0][q], l1[1][q]);
    }
    for (int q = 0; q < 4; q++) {
        snprintf(name, sizeof name, "32 KiB scan %s (us)", lbl[q]);
        row(name, l32[0][q], l32[1][q]);
    }
    printf("%-30s %12zu %12zu\n", "findings in first MiB", per_pass[0], per_pass[1]);
    baseline_free(&b);
    pd_buf_free(&big);
    pd_buf_free(&m1k);
    pd_buf_free(&m32k);
    pd_pii_scanner_free(s);
    pd_pii_detector_free(d);
    return 0;
}
