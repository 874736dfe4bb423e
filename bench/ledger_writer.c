/* bench/ledger_writer.c: what the ledger's SQLite writer costs per record.
 *
 * Two ways, both on a fresh database in a temporary directory:
 *   backend  the SQLite backend's insert (pd_ledger_sqlite.insert) called directly with batches
 *            of BATCH records (the gateway's writer makes ~150 at 2,000 req/s), timed with this
 *            thread's CPU clock. Twice: "warm", batch after batch, and "cold", with 8 MiB of
 *            memory walked between batches (in a gateway the writer wakes every ~75 ms and finds
 *            its caches emptied by the workers); the walk is outside the timed part.
 *   ledger   the whole path: pd_ledger_open, pd_ledger_submit in bursts of BATCH from this
 *            thread, waiting for each burst to be written; the writer thread's (pd-ledger) CPU
 *            time from /proc/self/task/TID/schedstat (nanoseconds), per record. This includes
 *            the ring, the wake-ups and the priority switches around COMMIT.
 * Records look like the relay's (src/relay/relay.c, record_call): a streamed chat completion
 * with tokens, cost and latency fields, ids made by pd_ledger_make_id as the gateway makes them
 * (--ids random: 32 random hex digits instead, for comparison). The table grows during the run;
 * each phase of RECORDS/4 records is printed apart, so a cost that grows with the table shows.
 *
 * --url URL runs only the ledger way, on that ledger (a postgres:// URL, say; it must not hold
 * these ids yet, and the rows stay there).
 *
 * Usage: ledger_writer [--records N] [--batch B] [--ids gateway|random] [--url URL]
 * Build and run: bench/run-c.sh ledger_writer [args]. */
#include "core/clock.h"
#include "ledger/ledger.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PHASES 4

static size_t g_records = 100000;
static size_t g_batch = 400;
static int g_random_ids;
static const char *g_url;

static void die(const char *what)
{
    fprintf(stderr, "bench_ledger_writer: %s\n", what);
    exit(1);
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- records --------------------------------------------------------------------------------- */

typedef struct gen {
    uint64_t rng, seq;
    char ids[1024][PD_LEDGER_ID_MAX]; /* the batch's ids */
} gen;

static uint64_t next_rand(gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static void make_record(gen *g, size_t i, pd_ledger_record *r)
{
    char *id = g->ids[i];
    if (g_random_ids)
        snprintf(id, PD_LEDGER_ID_MAX, "%016llx%016llx", (unsigned long long)next_rand(g),
                 (unsigned long long)next_rand(g));
    else
        snprintf(id, PD_LEDGER_ID_MAX, "req-%llx-%08x-%llx", (unsigned long long)pd_wall_us(),
                 0x5eedu, (unsigned long long)++g->seq); /* as ingress/dispatch.c makes them */
    pd_ledger_record_init(r);
    r->id = id;
    r->ts_ms = (int64_t)pd_wall_ms();
    r->route = r->target = r->model = "gpt-4o";
    r->provider = "openai";
    r->upstream_model = "gpt-4o-2024-08-06";
    r->status = 200;
    r->stream = true;
    r->attempts = 1;
    r->prompt_tokens = 812 + (int64_t)(next_rand(g) % 400);
    r->completion_tokens = 120 + (int64_t)(next_rand(g) % 300);
    r->cached_tokens = 512;
    r->reasoning_tokens = 0;
    r->cost_usd = 0.00431;
    r->ttft_ms = 212.5;
    r->total_ms = 1834.25;
    r->upstream_ms = 1831.0;
    r->overhead_ms = 3.25;
    r->dns_ms = 0.012;
    r->connect_ms = 0.081;
    r->ttfb_ms = 210.75;
    r->tokens_per_s = 92.4;
}

/* ---- backend --------------------------------------------------------------------------------- */

static char g_trash[8 << 20];

static void walk_trash(void)
{
    for (size_t i = 0; i < sizeof(g_trash); i += 64)
        g_trash[i]++;
}

static void run_backend(const char *dir, int cold)
{
    char path[512], err[256];
    snprintf(path, sizeof(path), "%s/%s.db", dir, cold ? "cold" : "warm");
    void *conn = NULL;
    if (pd_ledger_sqlite.open(path, true, &conn, err, sizeof(err)))
        die(err);
    gen *g = pd_xcalloc(1, sizeof(*g));
    g->rng = 0x9e3779b97f4a7c15u;
    pd_ledger_record *recs = pd_xcalloc(g_batch, sizeof(*recs));
    size_t per_phase = g_records / PHASES, done = 0;
    printf("backend %-4s", cold ? "cold" : "warm");
    for (int ph = 0; ph < PHASES; ph++) {
        uint64_t cpu = 0;
        size_t n = 0;
        while (n < per_phase) {
            size_t b = per_phase - n < g_batch ? per_phase - n : g_batch, ins = 0;
            for (size_t i = 0; i < b; i++)
                make_record(g, i, &recs[i]);
            if (cold)
                walk_trash();
            uint64_t c0 = cpu_ns();
            if (pd_ledger_sqlite.insert(conn, recs, b, &ins, err, sizeof(err)) || ins != b)
                die(err[0] ? err : "a row was not inserted");
            cpu += cpu_ns() - c0;
            n += b;
        }
        done += n;
        printf("  %5.2f", (double)cpu / 1000.0 / (double)n);
    }
    printf("   µs CPU/record (%zu rows, phases of %zu)\n", done, per_phase);
    pd_ledger_sqlite.close(conn);
    free(recs);
    free(g);
}

/* ---- the whole ledger ------------------------------------------------------------------------ */

/* CPU ns of this process's thread named pd-ledger, 0 when there is none. */
static uint64_t writer_ns(void)
{
    DIR *d = opendir("/proc/self/task");
    uint64_t ns = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[300], comm[32] = "";
        snprintf(p, sizeof(p), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        if (!fgets(comm, sizeof(comm), f) || strncmp(comm, "pd-ledger", 9) != 0) {
            fclose(f);
            continue;
        }
        fclose(f);
        snprintf(p, sizeof(p), "/proc/self/task/%s/schedstat", e->d_name);
        if ((f = fopen(p, "r"))) {
            unsigned long long v = 0;
            if (fscanf(f, "%llu", &v) == 1)
                ns = v;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return ns;
}

static void wait_written(pd_ledger *l, uint64_t want)
{
    pd_ledger_stats st;
    for (;;) {
        pd_ledger_get_stats(l, &st);
        if (st.written + st.duplicates + st.failed >= want)
            break;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    if (st.failed || st.duplicates)
        die("rows failed or were duplicates");
}

static void run_ledger(const char *dir)
{
    char url[600], err[256];
    snprintf(url, sizeof(url), "%s%s%s", g_url ? "" : "sqlite://", g_url ? g_url : dir,
             g_url ? "" : "/ledger.db");
    pd_ledger_params p;
    pd_ledger_default_params(&p);
    p.batch_max = g_batch; /* each burst is one batch */
    pd_ledger *l = NULL;
    if (pd_ledger_open(url, &p, &l, err, sizeof(err)))
        die(err);
    gen *g = pd_xcalloc(1, sizeof(*g));
    g->rng = 0x2545f4914f6cdd1du;
    size_t per_phase = g_records / PHASES;
    uint64_t sent = 0;
    printf("ledger      ");
    for (int ph = 0; ph < PHASES; ph++) {
        uint64_t w0 = writer_ns();
        size_t n = 0;
        while (n < per_phase) {
            size_t b = per_phase - n < g_batch ? per_phase - n : g_batch;
            for (size_t i = 0; i < b; i++) {
                pd_ledger_record r;
                make_record(g, i, &r);
                if (pd_ledger_submit(l, &r))
                    die("submit refused");
            }
            sent += b;
            n += b;
            wait_written(l, sent);
        }
        printf("  %5.2f", (double)(writer_ns() - w0) / 1000.0 / (double)n);
    }
    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    printf("   µs CPU/record of the pd-ledger thread (%llu rows in %llu transactions)\n",
           (unsigned long long)st.written, (unsigned long long)st.batches);
    free(g);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--records") == 0)
            g_records = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0)
            g_batch = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--url") == 0)
            g_url = argv[i + 1];
        else if (strcmp(argv[i], "--ids") == 0)
            g_random_ids = strcmp(argv[i + 1], "random") == 0;
        else
            die("usage: ledger_writer [--records N] [--batch B] [--ids gateway|random] [--url U]");
    }
    if (g_batch < 1 || g_batch > 1024 || g_records < PHASES)
        die("--batch is 1..1024, --records at least 4");
    char dir[] = "/tmp/pendulum-ledger-writer.XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    printf("ledger writer, %zu records, batches of %zu, %s ids; %s %s\n", g_records, g_batch,
           g_random_ids ? "random" : "gateway", g_url ? "--url, sqlite library" : "sqlite",
           sqlite3_libversion());
    if (!g_url) {
        run_backend(dir, 0);
        run_backend(dir, 1);
    }
    run_ledger(dir);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        die("could not remove the temporary directory");
    return 0;
}
