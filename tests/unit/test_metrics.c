/* Metrics: sums after concurrent updates on per-thread shards, bounded labels ("other"),
 * escaping, one series per name when threads race to intern it, the exposition format, and
 * `promtool check metrics` on real output (skipped only when promtool is absent: it comes
 * with Debian's prometheus package). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "test.h"

/* The value of the sample named exactly `series` (name and labels), NAN when absent. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

/* How many lines start with prefix. */
static int lines_with(const char *text, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        c += strncmp(p, prefix, n) == 0;
    return c;
}

static char *render(const pd_metrics *m)
{
    pd_buf b;
    pd_buf_init(&b, 4 << 20);
    CHECK(pd_metrics_render(m, &b) == PD_OK);
    return b.data; /* caller frees */
}

/* ---- concurrent updates ---------------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 20000

static const char *const route_of[3] = {"chat", "embed", "complete"};

/* Request i of every thread: route i%3, target gpt-4o (even) or local (odd), status 429 for
   every 5th, else 200. gpt-4o has a known cost of 0.25, local an unknown one. */
static void request_i(pd_metrics_request *r, long i)
{
    pd_metrics_request_init(r);
    r->route = route_of[i % 3];
    r->target = i % 2 ? "local" : "gpt-4o";
    r->status = i % 5 == 0 ? 429 : 200;
    r->prompt_tokens = 10;
    r->completion_tokens = 5;
    r->cached_tokens = i % 2 ? -1 : 2;
    r->billable = true;
    r->cost_usd = i % 2 ? -1 : 0.25;
    r->ttft_s = 0.02;       /* bucket le=0.025 */
    r->total_s = 0.3;       /* bucket le=0.5 */
    r->overhead_s = 0.0004; /* bucket le=0.0005 */
}

typedef struct worker {
    pd_metrics_shard *s;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    pd_metrics_request r;
    for (long i = 0; i < PER_THREAD; i++) {
        request_i(&r, i);
        pd_metrics_observe_request(w->s, &r);
    }
    return NULL;
}

static pd_metrics *loaded_registry(void)
{
    pd_metrics_params p;
    pd_metrics_default_params(&p);
    p.shards = THREADS;
    pd_metrics *m = pd_metrics_new(&p);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t].s = pd_metrics_shard_at(m, (unsigned)t);
        pthread_create(&th[t], NULL, work, &w[t]);
    }
    /* scrapes while they run: must not disturb anything */
    for (int k = 0; k < 5; k++)
        free(render(m));
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    return m;
}

static void concurrent_sums(void)
{
    pd_metrics *m = loaded_registry();
    char *text = render(m);
    char series[256];

    for (int ri = 0; ri < 3; ri++)
        for (int ti = 0; ti < 2; ti++)
            for (int si = 0; si < 2; si++) {
                long want = 0;
                for (long i = 0; i < PER_THREAD; i++)
                    want += i % 3 == ri && i % 2 == ti && (i % 5 == 0) == (si == 1);
                snprintf(series, sizeof(series),
                         "pendulum_requests_total{route=\"%s\",target=\"%s\",status=\"%s\"}",
                         route_of[ri], ti ? "local" : "gpt-4o", si ? "429" : "200");
                CHECK(value_of(text, series) == (double)(want * THREADS));
            }
    const double half = (double)THREADS * PER_THREAD / 2;
    CHECK(value_of(text, "pendulum_tokens_total{target=\"gpt-4o\",kind=\"prompt\"}") == 10 * half);
    CHECK(value_of(text, "pendulum_tokens_total{target=\"local\",kind=\"completion\"}") ==
          5 * half);
    CHECK(value_of(text, "pendulum_tokens_total{target=\"gpt-4o\",kind=\"cached\"}") == 2 * half);
    CHECK(isnan(value_of(text, "pendulum_tokens_total{target=\"local\",kind=\"cached\"}")));
    CHECK(isnan(value_of(text, "pendulum_tokens_total{target=\"gpt-4o\",kind=\"reasoning\"}")));
    CHECK(value_of(text, "pendulum_cost_usd_total{target=\"gpt-4o\"}") == 0.25 * half);
    CHECK(isnan(value_of(text, "pendulum_cost_usd_total{target=\"local\"}")));
    CHECK(value_of(text, "pendulum_cost_unknown_total{target=\"local\"}") == half);
    CHECK(isnan(value_of(text, "pendulum_cost_unknown_total{target=\"gpt-4o\"}")));

    /* histograms: cumulative buckets, _count == +Inf, _sum */
    CHECK(value_of(text, "pendulum_ttft_seconds_bucket{target=\"local\",le=\"0.01\"}") == 0);
    CHECK(value_of(text, "pendulum_ttft_seconds_bucket{target=\"local\",le=\"0.025\"}") == half);
    CHECK(value_of(text, "pendulum_ttft_seconds_bucket{target=\"local\",le=\"+Inf\"}") == half);
    CHECK(value_of(text, "pendulum_ttft_seconds_count{target=\"local\"}") == half);
    CHECK(fabs(value_of(text, "pendulum_ttft_seconds_sum{target=\"local\"}") - 0.02 * half) < 1e-6);
    CHECK(value_of(text, "pendulum_request_seconds_bucket{target=\"gpt-4o\",le=\"0.25\"}") == 0);
    CHECK(value_of(text, "pendulum_request_seconds_bucket{target=\"gpt-4o\",le=\"0.5\"}") == half);
    CHECK(value_of(text, "pendulum_overhead_seconds_bucket{le=\"0.00025\"}") == 0);
    CHECK(value_of(text, "pendulum_overhead_seconds_bucket{le=\"0.0005\"}") == 2 * half);
    CHECK(value_of(text, "pendulum_overhead_seconds_count") == 2 * half);
    CHECK(fabs(value_of(text, "pendulum_overhead_seconds_sum") - 0.0004 * 2 * half) < 1e-9);
    CHECK(lines_with(text, "# TYPE pendulum_ttft_seconds histogram") == 1);
    CHECK(lines_with(text, "# HELP pendulum_requests_total ") == 1);
    free(text);
    pd_metrics_free(m);
}

/* ---- labels ---------------------------------------------------------------------------------- */

static void bounded_labels(void)
{
    pd_metrics_params p;
    pd_metrics_default_params(&p);
    p.max_routes = 3;
    p.max_targets = 2;
    p.max_statuses = 2;
    pd_metrics *m = pd_metrics_new(&p);
    pd_metrics_shard *s = pd_metrics_shard_at(m, 0);
    pd_metrics_request r;
    char name[16];
    static const int status[4] = {200, 404, 500, 503};
    for (int i = 0; i < 10; i++) {
        pd_metrics_request_init(&r);
        snprintf(name, sizeof(name), "r%d", i);
        r.route = name;
        r.target = "t";
        r.status = status[i % 4];
        pd_metrics_observe_request(s, &r);
    }
    char *text = render(m);
    CHECK(value_of(text, "pendulum_requests_total{route=\"r0\",target=\"t\",status=\"200\"}") == 1);
    CHECK(value_of(text, "pendulum_requests_total{route=\"r1\",target=\"t\",status=\"404\"}") == 1);
    CHECK(value_of(text, "pendulum_requests_total{route=\"r2\",target=\"t\",status=\"other\"}") ==
          1);
    CHECK(lines_with(text, "pendulum_requests_total{route=\"r3\"") == 0);
    /* r3..r9: statuses 503, 200, 404, 500, 503, 200, 404 */
    CHECK(value_of(text, "pendulum_requests_total{route=\"other\",target=\"t\",status=\"200\"}") ==
          2);
    CHECK(value_of(text, "pendulum_requests_total{route=\"other\",target=\"t\",status=\"404\"}") ==
          2);
    CHECK(value_of(text,
                   "pendulum_requests_total{route=\"other\",target=\"t\",status=\"other\"}") == 3);
    free(text);

    /* no route: "none", but the route slots are full, so "other"; targets: "t" and "none"
       take both slots, the next goes to "other" */
    pd_metrics_request_init(&r);
    r.status = 200;
    pd_metrics_observe_request(s, &r); /* no route, no target */
    r.target = "third";
    pd_metrics_observe_request(s, &r);
    text = render(m);
    CHECK(value_of(text,
                   "pendulum_requests_total{route=\"other\",target=\"none\",status=\"200\"}") == 1);
    CHECK(value_of(text,
                   "pendulum_requests_total{route=\"other\",target=\"other\",status=\"200\"}") ==
          1);
    free(text);
    pd_metrics_free(m);
}

static void escaping(void)
{
    pd_metrics *m = pd_metrics_new(NULL);
    pd_metrics_request r;
    pd_metrics_request_init(&r);
    r.route = "a\"b\\c\nd";
    r.target = "caf\xc3\xa9\xff";
    r.status = 200;
    pd_metrics_observe_request(pd_metrics_shard_at(m, 0), &r);
    char *text = render(m);
    CHECK(value_of(text,
                   "pendulum_requests_total{route=\"a\\\"b\\\\c\\nd\",target=\"caf\xc3\xa9?\","
                   "status=\"200\"}") == 1);
    free(text);
    pd_metrics_free(m);
}

/* Eight threads meet the same new names at the same moment: one label value each. */
#define RACERS 8

typedef struct racer {
    pd_metrics_shard *s;
    pthread_barrier_t *go;
} racer;

static void *race(void *arg)
{
    racer *w = arg;
    pd_metrics_request r;
    char name[16];
    pthread_barrier_wait(w->go);
    for (int i = 0; i < 20; i++) {
        pd_metrics_request_init(&r);
        snprintf(name, sizeof(name), "n%d", i);
        r.route = name;
        r.target = name;
        r.status = 200;
        pd_metrics_observe_request(w->s, &r);
    }
    return NULL;
}

static void interning_race(void)
{
    pd_metrics_params p;
    pd_metrics_default_params(&p);
    p.shards = RACERS;
    pd_metrics *m = pd_metrics_new(&p);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    pthread_t th[RACERS];
    racer w[RACERS];
    for (int t = 0; t < RACERS; t++) {
        w[t] = (racer){pd_metrics_shard_at(m, (unsigned)t), &go};
        pthread_create(&th[t], NULL, race, &w[t]);
    }
    for (int t = 0; t < RACERS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&go);
    char *text = render(m);
    char series[128];
    for (int i = 0; i < 20; i++) {
        snprintf(series, sizeof(series),
                 "pendulum_requests_total{route=\"n%d\",target=\"n%d\",status=\"200\"}", i, i);
        CHECK(lines_with(text, series) == 1);
        CHECK(value_of(text, series) == RACERS);
    }
    CHECK(lines_with(text, "pendulum_requests_total{") == 20);
    free(text);
    pd_metrics_free(m);
}

/* ---- the rest of the format ------------------------------------------------------------------ */

static void fresh_and_ledger(void)
{
    pd_metrics *m = pd_metrics_new(NULL);
    char *text = render(m);
    CHECK(lines_with(text, "pendulum_requests_total{") == 0);
    CHECK(lines_with(text, "# TYPE pendulum_requests_total counter") == 1);
    CHECK(value_of(text, "pendulum_overhead_seconds_count") == 0);
    CHECK(value_of(text, "pendulum_overhead_seconds_bucket{le=\"+Inf\"}") == 0);
    CHECK(value_of(text, "pendulum_ledger_queue_depth") == 0);
    free(text);

    pd_metrics_ledger l = {
        .depth = 7, .capacity = 8192, .written = 1000, .dropped = 3, .failed = 1, .batches = 9,
        .catchups = 2};
    pd_metrics_set_ledger(m, &l);
    text = render(m);
    CHECK(value_of(text, "pendulum_ledger_queue_depth") == 7);
    CHECK(value_of(text, "pendulum_ledger_queue_capacity") == 8192);
    CHECK(value_of(text, "pendulum_ledger_written_total") == 1000);
    CHECK(value_of(text, "pendulum_ledger_dropped_total") == 3);
    CHECK(value_of(text, "pendulum_ledger_failed_total") == 1);
    CHECK(value_of(text, "pendulum_ledger_batches_total") == 9);
    CHECK(value_of(text, "pendulum_ledger_catchups_total") == 2);
    CHECK(lines_with(text, "# TYPE pendulum_ledger_dropped_total counter") == 1);
    CHECK(lines_with(text, "# TYPE pendulum_ledger_queue_depth gauge") == 1);
    free(text);

    /* a known cost of 0 (a free local model) still shows, as 0 */
    pd_metrics_request r;
    pd_metrics_request_init(&r);
    r.target = "llama";
    r.billable = true;
    r.cost_usd = 0;
    r.ttft_s = NAN; /* not observed */
    pd_metrics_observe_request(pd_metrics_shard_at(m, 0), &r);
    text = render(m);
    CHECK(value_of(text, "pendulum_cost_usd_total{target=\"llama\"}") == 0);
    CHECK(isnan(value_of(text, "pendulum_cost_unknown_total{target=\"llama\"}")));
    CHECK(lines_with(text, "pendulum_ttft_seconds_bucket{target=\"llama\"") == 0);
    free(text);

    pd_buf small;
    pd_buf_init(&small, 100);
    CHECK(pd_metrics_render(m, &small) == PD_ERR_TOO_LARGE);
    pd_buf_free(&small);
    pd_metrics_free(m);
}

static void target_up(void)
{
    pd_buf b;
    pd_buf_init(&b, 1 << 16);
    pd_metrics_target_up rows[] = {{"llama-a", true}, {"llama-b", false}, {NULL, true}};
    CHECK(pd_metrics_render_target_up(rows, 3, &b) == PD_OK);
    CHECK(lines_with(b.data, "# TYPE pendulum_target_up gauge") == 1);
    CHECK(value_of(b.data, "pendulum_target_up{target=\"llama-a\"}") == 1);
    CHECK(value_of(b.data, "pendulum_target_up{target=\"llama-b\"}") == 0);
    CHECK(value_of(b.data, "pendulum_target_up{target=\"none\"}") == 1);
    pd_buf_reset(&b);
    CHECK(pd_metrics_render_target_up(NULL, 0, &b) == PD_OK); /* nothing checked: the family only */
    CHECK(lines_with(b.data, "pendulum_target_up{") == 0);
    pd_buf_free(&b);
    pd_buf_init(&b, 10);
    CHECK(pd_metrics_render_target_up(rows, 3, &b) == PD_ERR_TOO_LARGE);
    pd_buf_free(&b);
}

static void params(void)
{
    pd_metrics_params p;
    pd_metrics_default_params(&p);
    CHECK(p.shards == 1 && p.max_routes == 32 && p.max_targets == 32 && p.max_statuses == 16);
    p.shards = 0;
    CHECK(pd_metrics_new(&p) == NULL);
    pd_metrics_default_params(&p);
    p.max_statuses = 1000;
    CHECK(pd_metrics_new(&p) == NULL);
    pd_metrics *m = pd_metrics_new(NULL);
    CHECK(pd_metrics_shard_at(m, 0) != NULL && pd_metrics_shard_at(m, 1) == NULL);
    CHECK(pd_metrics_shard_at(NULL, 0) == NULL);
    pd_metrics_request r;
    pd_metrics_request_init(&r);
    pd_metrics_observe_request(NULL, &r);
    pd_metrics_free(m);
    pd_metrics_free(NULL);
}

/* ---- promtool -------------------------------------------------------------------------------- */

static void promtool_check(void)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("  SKIP promtool check: promtool is absent (install Debian's prometheus)\n");
        return;
    }
    pd_metrics *m = loaded_registry();
    pd_metrics_request r;
    pd_metrics_request_init(&r);
    r.route = "odd \"route\"\\\n";
    r.target = "t\xff";
    r.status = 499;
    r.billable = true;
    pd_metrics_observe_request(pd_metrics_shard_at(m, 0), &r);
    pd_metrics_ledger l = {.depth = 1, .capacity = 8192, .written = 5};
    pd_metrics_set_ledger(m, &l);
    char *text = render(m);
    pd_buf up;
    pd_buf_init(&up, 1 << 16);
    pd_metrics_target_up rows[] = {{"llama-a", true}, {"llama \"b\"", false}};
    CHECK(pd_metrics_render_target_up(rows, 2, &up) == PD_OK);
    text = realloc(text, strlen(text) + up.len + 1);
    memcpy(text + strlen(text), up.data, up.len + 1);
    pd_buf_free(&up);

    char path[] = "/tmp/pd-metrics-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    size_t len = strlen(text);
    CHECK(write(fd, text, len) == (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s.out 2>&1", path, path);
    int status = system(cmd);
    snprintf(cmd, sizeof(cmd), "%s.out", path);
    FILE *f = fopen(cmd, "r");
    char said[4096] = "";
    size_t n = f ? fread(said, 1, sizeof(said) - 1, f) : 0;
    said[n] = '\0';
    if (f)
        fclose(f);
    /* promtool exits non-zero on a parse error and on lint problems, and prints them */
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(n == 0);
    if (n || status)
        fprintf(stderr, "  promtool said: %s\n", said);
    unlink(cmd);
    unlink(path);
    free(text);
    pd_metrics_free(m);
}

int main(void)
{
    TEST_RUN(concurrent_sums);
    TEST_RUN(bounded_labels);
    TEST_RUN(escaping);
    TEST_RUN(interning_race);
    TEST_RUN(fresh_and_ledger);
    TEST_RUN(params);
    TEST_RUN(target_up);
    TEST_RUN(promtool_check);
    return TEST_DONE();
}
