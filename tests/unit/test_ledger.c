/* The request ledger against real SQLite and a real PostgreSQL server: records read back field
 * by field (NULL for unknown, never 0), the latency fields, 4 threads x 5,000 records written
 * exactly once, a full ring that drops without blocking, close flushing everything, kill -9
 * losing at most the ring and never part of a batch, SIGTERM losing nothing.
 *
 * PostgreSQL: PENDULUM_TEST_PG_URL when set (scripts/pg-test.sh run sets it), else this test
 * starts its own throwaway cluster with scripts/pg-test.sh (run from the repository root) and
 * stops it at the end. The PostgreSQL tests are skipped only when the server binaries are
 * absent; any other failure to start the server fails them. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "ledger/ledger.h"
#include "test.h"

static char tmpdir[64];
static char pg_base[512]; /* "" when there is no PostgreSQL */
static bool pg_ours;      /* started by this test: stop it at the end */

/* ---- databases under test -------------------------------------------------------------------- */

typedef struct db {
    bool pg;
    char url[1024];
    char path[256];  /* sqlite */
    char schema[64]; /* postgres: each test gets its own schema (search_path in the URL) */
} db;

static void db_sqlite(db *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "%s/%s.db", tmpdir, name);
    snprintf(d->url, sizeof(d->url), "sqlite://%s", d->path);
    unlink(d->path);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static bool pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PQsetNoticeProcessor(c, quiet, NULL); /* "drop cascades to ..." */
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "  postgres: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok;
}

static bool db_pg(db *d)
{
    static int seq;
    char sql[128];
    memset(d, 0, sizeof(*d));
    d->pg = true;
    snprintf(d->schema, sizeof(d->schema), "pdt_%d_%d", (int)getpid(), ++seq);
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", d->schema);
    snprintf(d->url, sizeof(d->url), "%s%coptions=-csearch_path%%3D%s", pg_base,
             strchr(pg_base, '?') ? '&' : '?', d->schema);
    return pg_exec(pg_base, sql);
}

static void db_drop(db *d)
{
    char sql[128];
    if (d->pg) {
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", d->schema);
        pg_exec(pg_base, sql);
    } else {
        char p[300];
        unlink(d->path);
        snprintf(p, sizeof(p), "%s-wal", d->path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", d->path);
        unlink(p);
    }
}

/* One integer from sql run directly against the database; -1 on error. */
static long long scalar(const db *d, const char *sql)
{
    long long v = -1;
    if (d->pg) {
        PGconn *c = PQconnectdb(d->url);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else
            fprintf(stderr, "  postgres: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *s = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(d->path, &s, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(s, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "  sqlite: %s: %s\n", sql, sqlite3_errmsg(s));
    sqlite3_finalize(st);
    sqlite3_close(s);
    return v;
}

static pd_ledger *open_ledger(const db *d, size_t capacity, size_t batch, unsigned flush_ms)
{
    pd_ledger_params p;
    pd_ledger *l = NULL;
    char err[512];
    pd_ledger_default_params(&p);
    p.capacity = capacity;
    p.batch_max = batch;
    p.flush_ms = flush_ms;
    if (pd_ledger_open(d->url, &p, &l, err, sizeof(err)) != PD_OK)
        fprintf(stderr, "  open %s: %s\n", d->url, err);
    return l;
}

/* ---- reading back ---------------------------------------------------------------------------- */

typedef struct copy {
    char id[96], route[80], target[80], provider[80], model[160], upstream_model[160], pii[160],
        error[300];
    pd_ledger_record r; /* numbers only: its strings point into the backend's row */
} copy;

typedef struct rows {
    copy c[8];
    size_t n;
} row_set;

static int keep_row(void *ud, const pd_ledger_record *r)
{
    row_set *rs = ud;
    if (rs->n == 8)
        return 1;
    copy *c = &rs->c[rs->n++];
    c->r = *r;
    snprintf(c->id, sizeof(c->id), "%s", r->id ? r->id : "(null)");
    snprintf(c->route, sizeof(c->route), "%s", r->route ? r->route : "(null)");
    snprintf(c->target, sizeof(c->target), "%s", r->target ? r->target : "(null)");
    snprintf(c->provider, sizeof(c->provider), "%s", r->provider ? r->provider : "(null)");
    snprintf(c->model, sizeof(c->model), "%s", r->model ? r->model : "(null)");
    snprintf(c->upstream_model, sizeof(c->upstream_model), "%s",
             r->upstream_model ? r->upstream_model : "(null)");
    snprintf(c->pii, sizeof(c->pii), "%s", r->pii_types ? r->pii_types : "(null)");
    snprintf(c->error, sizeof(c->error), "%s", r->error ? r->error : "(null)");
    return 0;
}

static void full_record(pd_ledger_record *r)
{
    pd_ledger_record_init(r);
    r->id = "req-1";
    r->ts_ms = 1700000000123;
    r->route = "chat";
    r->target = "gpt-4o@openai";
    r->provider = "openai";
    r->model = "gpt-4o";
    r->upstream_model = "gpt-4o-2024-08-06";
    r->status = 200;
    r->stream = true;
    r->attempts = 2;
    r->prompt_tokens = 100;
    r->completion_tokens = 50;
    r->cached_tokens = 20;
    r->reasoning_tokens = 10;
    r->cost_usd = 0.00125;
    r->ttft_ms = 12.5;
    r->total_ms = 250.25;
    r->upstream_ms = 240;
    r->overhead_ms = 10.25;
    r->dns_ms = 1.5;
    r->connect_ms = 2.5;
    r->tls_ms = 3.5;
    r->ttfb_ms = 10;
    r->tokens_per_s = 200.5;
    r->pii_types = "email,phone";
}

static void check_full(const copy *c)
{
    const pd_ledger_record *r = &c->r;
    CHECK_STR(c->id, "req-1");
    CHECK(r->ts_ms == 1700000000123);
    CHECK_STR(c->target, "gpt-4o@openai");
    CHECK_STR(c->provider, "openai");
    CHECK_STR(c->model, "gpt-4o");
    CHECK_STR(c->upstream_model, "gpt-4o-2024-08-06");
    CHECK_STR(c->route, "chat");
    CHECK_STR(c->pii, "email,phone");
    CHECK_STR(c->error, "(null)");
    CHECK(r->status == 200 && r->stream && r->attempts == 2);
    CHECK(r->prompt_tokens == 100 && r->completion_tokens == 50);
    CHECK(r->cached_tokens == 20 && r->reasoning_tokens == 10);
    CHECK(r->cost_usd == 0.00125); /* doubles travel exactly (%.17g for PostgreSQL) */
    CHECK(r->ttft_ms == 12.5 && r->total_ms == 250.25 && r->upstream_ms == 240);
    CHECK(r->overhead_ms == 10.25 && r->dns_ms == 1.5 && r->connect_ms == 2.5);
    CHECK(r->tls_ms == 3.5 && r->ttfb_ms == 10 && r->tokens_per_s == 200.5);
}

static void check_unknowns(const copy *c)
{
    const pd_ledger_record *r = &c->r;
    CHECK_STR(c->id, "req-2");
    CHECK(r->status == 502 && !r->stream && r->attempts == 0);
    CHECK_STR(c->route, "(null)");
    CHECK(r->prompt_tokens == -1 && r->completion_tokens == -1);
    CHECK(r->cached_tokens == -1 && r->reasoning_tokens == -1);
    CHECK(r->cost_usd == -1 && r->ttft_ms == -1 && r->tls_ms == -1 && r->tokens_per_s == -1);
}

static void round_trip(db *d)
{
    pd_ledger_record r;
    char long_error[1000], route[80];
    pd_ledger *l = open_ledger(d, 64, 16, 50);
    CHECK(l != NULL);
    if (!l)
        return;

    full_record(&r);
    CHECK(pd_ledger_submit(l, &r) == PD_OK);
    pd_ledger_record_init(&r); /* everything unknown */
    r.id = "req-2";
    r.ts_ms = 1700000000124;
    r.status = 502;
    CHECK(pd_ledger_submit(l, &r) == PD_OK);

    pd_ledger_record_init(&r); /* caps, bad UTF-8, a known cost of 0 */
    memset(long_error, 'e', sizeof(long_error) - 1);
    long_error[sizeof(long_error) - 1] = '\0';
    memset(route, 'a', 62);
    strcpy(route + 62, "\xc3\xa9"); /* "é" would end at byte 64: past the 63 that fit */
    r.id = "req-3";
    r.ts_ms = 1700000000125;
    r.error = long_error;
    r.route = route;
    r.model = "bad\xff\xfeutf8\xe2\x82";
    r.cost_usd = 0;
    r.pii_types = "";
    CHECK(pd_ledger_submit(l, &r) == PD_OK);
    r.id = NULL;
    CHECK(pd_ledger_submit(l, &r) == PD_ERR_INVALID);
    r.id = "";
    CHECK(pd_ledger_submit(l, &r) == PD_ERR_INVALID);

    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    CHECK(st.submitted == 3 && st.written == 3 && st.dropped == 0 && st.failed == 0);

    row_set rs = {.n = 0};
    char err[256];
    CHECK(pd_ledger_each(d->url, 0, INT64_MAX, keep_row, &rs, err, sizeof(err)) == PD_OK);
    CHECK(rs.n == 3);
    if (rs.n != 3)
        return;
    check_full(&rs.c[0]);
    check_unknowns(&rs.c[1]);
    CHECK(strlen(rs.c[2].error) == PD_LEDGER_ERROR_MAX - 1);
    CHECK(strlen(rs.c[2].route) == 62);
    CHECK_STR(rs.c[2].model, "bad??utf8??");
    CHECK_STR(rs.c[2].pii, "(null)");
    CHECK(rs.c[2].r.cost_usd == 0);

    /* NULL in the database itself, and the known 0 is a 0 */
    CHECK(scalar(d, "SELECT count(*) FROM pendulum_requests WHERE id = 'req-2' AND cost_usd IS "
                    "NULL AND prompt_tokens IS NULL AND ttft_ms IS NULL AND route IS NULL AND "
                    "error IS NULL AND tokens_per_s IS NULL") == 1);
    CHECK(scalar(d, "SELECT count(*) FROM pendulum_requests WHERE cost_usd = 0") == 1);
    CHECK(scalar(d, "SELECT max(version) FROM pendulum_schema") ==
          (d->pg ? PD_LEDGER_PG_SCHEMA_VERSION : PD_LEDGER_SQLITE_SCHEMA_VERSION));

    /* a window: [124, 125) holds req-2 only; the callback can stop early */
    rs.n = 0;
    CHECK(pd_ledger_each(d->url, 1700000000124, 1700000000125, keep_row, &rs, err, sizeof(err)) ==
          PD_OK);
    CHECK(rs.n == 1 && strcmp(rs.c[0].id, "req-2") == 0);
}

/* True when s is cap - 1 copies of c. */
static bool capped_run(const char *s, size_t cap, char c)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] != c)
            return false;
    return n == cap - 1;
}

/* Every string at its cap in one record: the slot packs them one after the other, so this is
   the case where they fill it to the last byte; none may spill into the next. */
static void every_cap_at_once(db *d)
{
    char t[8][1000];
    for (int i = 0; i < 8; i++) {
        memset(t[i], 'a' + i, sizeof(t[i]) - 1);
        t[i][sizeof(t[i]) - 1] = '\0';
    }
    pd_ledger *l = open_ledger(d, 64, 16, 50);
    CHECK(l != NULL);
    if (!l)
        return;
    pd_ledger_record r;
    full_record(&r);
    r.id = t[0];
    r.route = t[1];
    r.target = t[2];
    r.provider = t[3];
    r.model = t[4];
    r.upstream_model = t[5];
    r.pii_types = t[6];
    r.error = t[7];
    CHECK(pd_ledger_submit(l, &r) == PD_OK);
    pd_ledger_close(l, NULL);
    row_set rs = {.n = 0};
    char err[256];
    CHECK(pd_ledger_each(d->url, 0, INT64_MAX, keep_row, &rs, err, sizeof(err)) == PD_OK);
    CHECK(rs.n == 1);
    if (rs.n != 1)
        return;
    const copy *c = &rs.c[0];
    CHECK(capped_run(c->id, PD_LEDGER_ID_MAX, 'a'));
    CHECK(capped_run(c->route, PD_LEDGER_NAME_MAX, 'b'));
    CHECK(capped_run(c->target, PD_LEDGER_NAME_MAX, 'c'));
    CHECK(capped_run(c->provider, PD_LEDGER_NAME_MAX, 'd'));
    CHECK(capped_run(c->model, PD_LEDGER_MODEL_MAX, 'e'));
    CHECK(capped_run(c->upstream_model, PD_LEDGER_MODEL_MAX, 'f'));
    CHECK(capped_run(c->pii, PD_LEDGER_PII_MAX, 'g'));
    CHECK(capped_run(c->error, PD_LEDGER_ERROR_MAX, 'h'));
    CHECK(c->r.tokens_per_s == 200.5 && c->r.attempts == 2); /* the numbers are intact */
}

static void round_trip_sqlite(void)
{
    db d;
    db_sqlite(&d, "round_trip");
    round_trip(&d);
    /* WAL, as promised */
    CHECK(access(d.path, F_OK) == 0);
    db_drop(&d);
    db_sqlite(&d, "every_cap");
    every_cap_at_once(&d);
    db_drop(&d);
}

/* ---- latency fields -------------------------------------------------------------------------- */

static void times(void)
{
    pd_ledger_record r;
    pd_ledger_record_init(&r);
    r.completion_tokens = 100;
    pd_ledger_times t = {
        .start_us = 1000000,
        .first_token_us = 1200000, /* 200 ms */
        .end_us = 3200000,         /* 2.2 s in all; 2 s after the first token */
        .namelookup_us = 5000,
        .connect_us = 15000,
        .appconnect_us = 45000,
        .starttransfer_us = 180000,
        .upstream_us = 2150000,
    };
    pd_ledger_record_set_times(&r, &t);
    CHECK(r.total_ms == 2200 && r.ttft_ms == 200 && r.upstream_ms == 2150);
    CHECK(r.overhead_ms == 50);
    CHECK(r.dns_ms == 5 && r.connect_ms == 10 && r.tls_ms == 30 && r.ttfb_ms == 180);
    CHECK(r.tokens_per_s == 50); /* 100 tokens over the 2 s after the first */

    /* plain HTTP, not streamed: no TLS, the rate over the whole request */
    t.first_token_us = 0;
    t.appconnect_us = 0;
    pd_ledger_record_set_times(&r, &t);
    CHECK(r.ttft_ms == -1 && r.tls_ms == -1);
    CHECK(fabs(r.tokens_per_s - 100 / 2.2) < 1e-9);

    /* no upstream call: upstream fields and overhead unknown; no count: no rate */
    t.upstream_us = 0;
    r.completion_tokens = -1;
    pd_ledger_record_set_times(&r, &t);
    CHECK(r.total_ms == 2200 && r.upstream_ms == -1 && r.overhead_ms == -1);
    CHECK(r.dns_ms == -1 && r.connect_ms == -1 && r.ttfb_ms == -1 && r.tokens_per_s == -1);

    /* upstream longer than the total (clock skew between the two readings): overhead 0 */
    t.upstream_us = 2300000;
    pd_ledger_record_set_times(&r, &t);
    CHECK(r.overhead_ms == 0);
}

/* ---- open errors, schema version, default URL ------------------------------------------------ */

static void open_errors(void)
{
    pd_ledger *l = (pd_ledger *)1;
    char err[512] = "";
    CHECK(pd_ledger_open("mysql://x", NULL, &l, err, sizeof(err)) == PD_ERR_INVALID);
    CHECK(l == NULL && strstr(err, "mysql") != NULL);
    CHECK(pd_ledger_open("sqlite://", NULL, &l, err, sizeof(err)) == PD_ERR_INVALID);
    CHECK(pd_ledger_open("sqlite:///nonexistent-dir/x/y.db", NULL, &l, err, sizeof(err)) ==
          PD_ERR_IO);
    /* connection refused; the password never reaches the message */
    CHECK(pd_ledger_open("postgres://u:s3cret@127.0.0.1:1/x?connect_timeout=2", NULL, &l, err,
                         sizeof(err)) == PD_ERR_IO);
    CHECK(l == NULL && strstr(err, "s3cret") == NULL);
    pd_ledger_params p;
    pd_ledger_default_params(&p);
    p.batch_max = 5000;
    db d;
    db_sqlite(&d, "params");
    CHECK(pd_ledger_open(d.url, &p, &l, err, sizeof(err)) == PD_ERR_INVALID);
    CHECK(pd_ledger_submit(NULL, NULL) == PD_ERR_CLOSED);
    pd_ledger_close(NULL, NULL);
}

static int count_row(void *ud, const pd_ledger_record *r)
{
    (void)r;
    (*(long *)ud)++;
    return 0;
}

static void schema_version(void)
{
    db d;
    char err[512];
    long n = 0;
    pd_ledger *l;
    db_sqlite(&d, "version");
    /* no file, then a file without a ledger */
    CHECK(pd_ledger_each(d.url, 0, INT64_MAX, count_row, &n, err, sizeof(err)) == PD_ERR_IO);
    sqlite3 *s;
    sqlite3_open(d.path, &s);
    sqlite3_exec(s, "CREATE TABLE other (x)", NULL, NULL, NULL);
    sqlite3_close(s);
    CHECK(pd_ledger_each(d.url, 0, INT64_MAX, count_row, &n, err, sizeof(err)) == PD_ERR_NOT_FOUND);

    l = open_ledger(&d, 16, 4, 10);
    CHECK(l != NULL);
    pd_ledger_close(l, NULL);
    CHECK(scalar(&d, "UPDATE pendulum_schema SET version = 3 RETURNING version") == 3);
    CHECK(pd_ledger_open(d.url, NULL, &l, err, sizeof(err)) == PD_ERR_NOT_FOUND);
    CHECK(l == NULL && strstr(err, "newer") != NULL);
    CHECK(pd_ledger_each(d.url, 0, INT64_MAX, count_row, &n, err, sizeof(err)) == PD_ERR_NOT_FOUND);
    db_drop(&d);
}

static void default_url(void)
{
    char url[512], want[512], dbpath[300];
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char state[128];
    snprintf(state, sizeof(state), "%s/state", tmpdir);
    setenv("XDG_STATE_HOME", state, 1);
    CHECK(pd_ledger_default_url(url, sizeof(url)) == PD_OK);
    snprintf(want, sizeof(want), "sqlite://%s/pendulum/ledger.db", state);
    CHECK_STR(url, want);
    CHECK(pd_ledger_default_url(url, 10) == PD_ERR_TOO_LARGE && url[0] == '\0');

    /* open(NULL) makes the directories, private */
    pd_ledger *l = NULL;
    char err[512];
    CHECK(pd_ledger_open(NULL, NULL, &l, err, sizeof(err)) == PD_OK);
    snprintf(want, sizeof(want), "sqlite://%s/pendulum/ledger.db", state);
    CHECK_STR(pd_ledger_describe(l), want);
    pd_ledger_close(l, NULL);
    struct stat sb;
    snprintf(dbpath, sizeof(dbpath), "%s/pendulum", state);
    CHECK(stat(dbpath, &sb) == 0 && (sb.st_mode & 0777) == 0700);

    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/someone", 1);
    CHECK(pd_ledger_default_url(url, sizeof(url)) == PD_OK);
    CHECK_STR(url, "sqlite:///home/someone/.local/state/pendulum/ledger.db");
    unsetenv("HOME");
    CHECK(pd_ledger_default_url(url, sizeof(url)) == PD_OK);
    CHECK_STR(url, "sqlite://pendulum-ledger.db");
    if (home)
        setenv("HOME", home, 1);
    free(home);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 5000

typedef struct submitter {
    pd_ledger *l;
    int t;
    long drops; /* TOO_LARGE returns, each retried */
    bool ok;
} submitter;

static void make_record(pd_ledger_record *r, char *id, size_t idlen, int t, long i)
{
    pd_ledger_record_init(r);
    snprintf(id, idlen, "t%d-%05ld", t, i);
    r->id = id;
    r->ts_ms = (int64_t)t * 1000000 + i;
    r->route = "chat";
    r->target = t % 2 ? "local" : "gpt-4o";
    r->status = 200;
    r->attempts = 1;
    r->completion_tokens = i;
    r->cost_usd = t % 2 ? -1 : 0.001 * (double)i;
}

static void *submit_many(void *arg)
{
    submitter *s = arg;
    char id[32];
    pd_ledger_record r;
    s->ok = true;
    for (long i = 0; i < PER_THREAD; i++) {
        make_record(&r, id, sizeof(id), s->t, i);
        pd_result rc;
        long tries = 0;
        while ((rc = pd_ledger_submit(s->l, &r)) == PD_ERR_TOO_LARGE && ++tries < 200000) {
            s->drops++;
            usleep(50);
        }
        if (rc != PD_OK) {
            s->ok = false;
            break;
        }
    }
    return NULL;
}

typedef struct seen {
    unsigned char n[THREADS][PER_THREAD];
    long bad;
} seen;

static int mark_seen(void *ud, const pd_ledger_record *r)
{
    seen *s = ud;
    int t;
    long i;
    if (!r->id || sscanf(r->id, "t%d-%ld", &t, &i) != 2 || t < 0 || t >= THREADS || i < 0 ||
        i >= PER_THREAD || r->completion_tokens != i)
        s->bad++;
    else
        s->n[t][i]++;
    return 0;
}

static void concurrent(db *d)
{
    /* A small ring, so it fills and wraps many times while four threads submit. */
    pd_ledger *l = open_ledger(d, 1024, 128, 10);
    CHECK(l != NULL);
    if (!l)
        return;
    submitter s[THREADS];
    pthread_t th[THREADS];
    long drops = 0;
    for (int t = 0; t < THREADS; t++) {
        s[t] = (submitter){.l = l, .t = t};
        pthread_create(&th[t], NULL, submit_many, &s[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK(s[t].ok);
        drops += s[t].drops;
    }
    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    CHECK(st.submitted == THREADS * PER_THREAD);
    CHECK(st.written == THREADS * PER_THREAD);
    CHECK(st.duplicates == 0 && st.failed == 0 && st.errors == 0 && st.depth == 0);
    CHECK(st.dropped == (uint64_t)drops);
    CHECK(scalar(d, "SELECT count(*) FROM pendulum_requests") == THREADS * PER_THREAD);
    CHECK(scalar(d, "SELECT count(DISTINCT id) FROM pendulum_requests") == THREADS * PER_THREAD);
    CHECK(scalar(d, "SELECT count(*) FROM pendulum_requests WHERE cost_usd IS NULL") ==
          THREADS / 2 * PER_THREAD);

    seen *sn = calloc(1, sizeof(*sn));
    char err[256];
    CHECK(pd_ledger_each(d->url, 0, INT64_MAX, mark_seen, sn, err, sizeof(err)) == PD_OK);
    long once = 0;
    for (int t = 0; t < THREADS; t++)
        for (long i = 0; i < PER_THREAD; i++)
            once += sn->n[t][i] == 1;
    CHECK(once == THREADS * PER_THREAD && sn->bad == 0);
    printf("  %s: %d records by %d threads, %ld submits refused (ring full) and retried\n",
           d->pg ? "postgres" : "sqlite", THREADS * PER_THREAD, THREADS, drops);
    free(sn);
}

static void concurrent_sqlite(void)
{
    db d;
    db_sqlite(&d, "concurrent");
    concurrent(&d);
    db_drop(&d);
}

/* ---- a full ring drops at once; close flushes ------------------------------------------------ */

static void full_ring_drops(void)
{
    db d;
    db_sqlite(&d, "full");
    pd_ledger *l = open_ledger(&d, 64, 64, 60000);
    CHECK(l != NULL);
    if (!l)
        return;
    /* Another connection holds the write lock: the writer is stuck in its first batch. */
    sqlite3 *s;
    sqlite3_open(d.path, &s);
    CHECK(sqlite3_exec(s, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);

    pd_ledger_record r;
    char id[32];
    long ok = 0, dropped = 0;
    uint64_t worst = 0, t0 = pd_now_us();
    for (long i = 0; i < 1064; i++) {
        make_record(&r, id, sizeof(id), 0, i);
        uint64_t a = pd_now_us();
        pd_result rc = pd_ledger_submit(l, &r);
        uint64_t took = pd_now_us() - a;
        worst = took > worst ? took : worst;
        ok += rc == PD_OK;
        dropped += rc == PD_ERR_TOO_LARGE;
    }
    uint64_t all = pd_now_us() - t0;
    CHECK(ok == 64 && dropped == 1000);
    /* The writer is blocked on the lock (up to SQLite's 5 s busy timeout); submit must not
       be. The bounds leave room for a loaded machine; the output shows the real figures
       (a few hundred microseconds for all 1,064). */
    CHECK(worst < 250000 && all < 1000000);
    pd_ledger_stats st;
    pd_ledger_get_stats(l, &st);
    CHECK(st.depth == 64 && st.dropped == 1000 && st.written == 0);
    printf("  full ring: 1064 submits in %" PRIu64 " us, slowest %" PRIu64 " us\n", all, worst);

    usleep(200000);
    sqlite3_exec(s, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(s);
    pd_ledger_close(l, &st);
    CHECK(st.written == 64 && st.dropped == 1000 && st.failed == 0);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests") == 64);
    db_drop(&d);
}

static void close_flushes(db *d)
{
    /* flush_ms of a minute and fewer records than a batch: only close writes them. */
    pd_ledger *l = open_ledger(d, 1024, 256, 60000);
    CHECK(l != NULL);
    if (!l)
        return;
    pd_ledger_record r;
    char id[32];
    for (long i = 0; i < 200; i++) {
        make_record(&r, id, sizeof(id), 1, i);
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
    }
    uint64_t t0 = pd_now_us();
    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    CHECK(pd_now_us() - t0 < 5000000);
    CHECK(st.written == 200 && st.depth == 0);
    CHECK(scalar(d, "SELECT count(*) FROM pendulum_requests") == 200);
}

static void close_flushes_sqlite(void)
{
    db d;
    db_sqlite(&d, "close");
    close_flushes(&d);
    db_drop(&d);
}

/* A steady trickle of records (one per 0.5 ms, far below a batch per flush interval) is written
   in few transactions: after a short batch the writer waits for a whole batch or flush_ms
   instead of committing each record as it arrives. So the transactions are bounded by the
   elapsed time over flush_ms, whatever the machine's speed (a slow machine makes fewer). */
static void trickle_batches_sqlite(void)
{
    db d;
    db_sqlite(&d, "trickle");
    pd_ledger *l = open_ledger(&d, 1024, 256, 50);
    CHECK(l != NULL);
    if (!l) {
        db_drop(&d);
        return;
    }
    pd_ledger_record r;
    char id[32];
    uint64_t t0 = pd_now_us();
    for (long i = 0; i < 300; i++) {
        make_record(&r, id, sizeof(id), 1, i);
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
        usleep(500);
    }
    uint64_t elapsed_ms = (pd_now_us() - t0) / 1000;
    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    CHECK(st.written == 300);
    printf("  trickle: 300 records in %" PRIu64 " ms, %" PRIu64 " transactions\n", elapsed_ms,
           st.batches);
    CHECK(st.batches >= 1 && st.batches <= elapsed_ms / 50 + 3);
    db_drop(&d);
}

static void wait_written(pd_ledger *l, uint64_t n);

/* After a full batch the writer does not commit at once the few records that came in while it
   wrote: it waits for a whole batch or flush_ms like after any other batch (it used to go
   straight back, so at 2,000 req/s every full transaction was followed by a short one). Here 12
   records meet a batch_max of 8 and a flush_ms of a minute: the 8th submit wakes the writer, it
   commits 8, and the other 4 wait for close. */
static void full_batch_then_wait_sqlite(void)
{
    db d;
    db_sqlite(&d, "fullwait");
    pd_ledger *l = open_ledger(&d, 64, 8, 60000);
    CHECK(l != NULL);
    if (!l) {
        db_drop(&d);
        return;
    }
    pd_ledger_record r;
    char id[32];
    for (long i = 0; i < 12; i++) {
        make_record(&r, id, sizeof(id), 3, i);
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
    }
    wait_written(l, 8);
    usleep(200000);
    pd_ledger_stats st;
    pd_ledger_get_stats(l, &st);
    CHECK(st.written == 8 && st.batches == 1 && st.depth == 4);
    pd_ledger_close(l, &st);
    CHECK(st.written == 12 && st.batches == 2 && st.failed == 0);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests") == 12);
    db_drop(&d);
}

/* The writer thread of this process (comm "pd-ledger"), or -1. */
static pid_t writer_tid(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    pid_t tid = -1;
    while (dir && tid < 0 && (e = readdir(dir)) != NULL) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(comm, sizeof comm, f) && !strcmp(comm, "pd-ledger\n"))
            tid = (pid_t)atoi(e->d_name);
        if (f)
            fclose(f);
    }
    if (dir)
        closedir(dir);
    return tid;
}

/* The writer runs SCHED_IDLE when it may leave it again (root, CAP_SYS_NICE or RLIMIT_NICE: a
   process without them keeps it at nice +10), and a backed-up ring makes it leave: here the
   ring (capacity 64, so a quarter is 16) fills to 40 while another connection holds the write
   lock; once the lock goes, the writer catches up at SCHED_OTHER, writes all 40 exactly once,
   and returns to SCHED_IDLE. */
static void writer_priority_sqlite(void)
{
    db d;
    db_sqlite(&d, "prio");
    pd_ledger *l = open_ledger(&d, 64, 8, 60000);
    CHECK(l != NULL);
    if (!l) {
        db_drop(&d);
        return;
    }
    struct rlimit rl;
    bool may = geteuid() == 0 || (getrlimit(RLIMIT_NICE, &rl) == 0 && rl.rlim_cur >= 11);
    pd_ledger_stats st;
    pid_t tid = -1;
    for (int i = 0; i < 200 && (tid < 0 || !st.idle_priority); i++) {
        usleep(10000);
        tid = writer_tid();
        pd_ledger_get_stats(l, &st);
        if (!may)
            break;
    }
    CHECK(tid > 0);
    CHECK(st.idle_priority == may);
    CHECK(sched_getscheduler(tid) == (may ? SCHED_IDLE : SCHED_OTHER));
    printf("  writer: %s\n", may ? "SCHED_IDLE" : "SCHED_OTHER, nice +10 (not permitted)");

    sqlite3 *s;
    sqlite3_open(d.path, &s);
    CHECK(sqlite3_exec(s, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
    pd_ledger_record r;
    char id[32];
    for (long i = 0; i < 40; i++) {
        make_record(&r, id, sizeof(id), 2, i);
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
    }
    usleep(100000);
    sqlite3_exec(s, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(s);
    wait_written(l, 40);
    pd_ledger_get_stats(l, &st);
    CHECK(st.written == 40 && st.depth == 0);
    CHECK(st.catchups == (may ? 1u : 0u));
    for (int i = 0; may && i < 200 && sched_getscheduler(tid) != SCHED_IDLE; i++)
        usleep(10000); /* it switches back at the top of its loop */
    CHECK(sched_getscheduler(tid) == (may ? SCHED_IDLE : SCHED_OTHER));
    pd_ledger_close(l, &st);
    CHECK(st.written == 40 && st.failed == 0 && st.dropped == 0);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests") == 40);
    db_drop(&d);
}

/* ---- kill -9 and SIGTERM in a child process -------------------------------------------------- */

#define CHILD_CAPACITY 512

typedef struct shared {
    _Atomic long attempted; /* records for which submit was called */
    _Atomic long queued;    /* records submit accepted */
    _Atomic int failed_open;
    pd_ledger_stats final;
} shared;

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

/* The child: submits records k-00000000, k-00000001, ... (ts_ms = sequence) until told to
   stop, retrying a refused submit so the accepted records are exactly a prefix. */
static void child_run(const db *d, shared *sh, bool graceful)
{
    signal(SIGTERM, on_term);
    pd_ledger *l = open_ledger(d, CHILD_CAPACITY, 64, 5);
    if (!l) {
        sh->failed_open = 1;
        _exit(3);
    }
    pd_ledger_record r;
    char id[32];
    for (long i = 0; i < 10000000 && !got_term; i++) {
        pd_ledger_record_init(&r);
        snprintf(id, sizeof(id), "k-%08ld", i);
        r.id = id;
        r.ts_ms = i;
        r.status = 200;
        atomic_store(&sh->attempted, i + 1);
        pd_result rc;
        while ((rc = pd_ledger_submit(l, &r)) == PD_ERR_TOO_LARGE && !got_term)
            usleep(20);
        if (rc != PD_OK)
            break;
        atomic_store(&sh->queued, i + 1);
    }
    if (graceful)
        pd_ledger_close(l, &sh->final); /* what the gateway does on SIGTERM */
    _exit(0);
}

typedef struct prefix {
    long n;
    bool ok;
} prefix;

static int check_prefix(void *ud, const pd_ledger_record *r)
{
    prefix *p = ud;
    char want[32];
    snprintf(want, sizeof(want), "k-%08ld", p->n);
    if (r->ts_ms != p->n || !r->id || strcmp(r->id, want) != 0)
        p->ok = false;
    p->n++;
    return 0;
}

/* PostgreSQL may still be finishing the killed client's last batch: wait until its backend
   has gone, so the rows we count are final. */
static void pg_wait_idle(const db *d)
{
    for (int i = 0; i < 100; i++) {
        if (scalar(d, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND backend_type = 'client backend' AND pid <> pg_backend_pid()") == 0)
            return;
        usleep(50000);
    }
}

static void crash(db *d, bool graceful)
{
    shared *sh =
        mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(sh, 0, sizeof(*sh));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child_run(d, sh, graceful);
    /* let it run under load for a while: several thousand records */
    for (int i = 0; i < 3000 && atomic_load(&sh->queued) < 6000 && !sh->failed_open; i++)
        usleep(10000);
    long before = atomic_load(&sh->queued);
    kill(pid, graceful ? SIGTERM : SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(!sh->failed_open && before >= 6000);
    if (graceful)
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    else
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (d->pg)
        pg_wait_idle(d);

    long attempted = atomic_load(&sh->attempted), queued = atomic_load(&sh->queued);
    prefix p = {0, true};
    char err[256];
    CHECK(pd_ledger_each(d->url, 0, INT64_MAX, check_prefix, &p, err, sizeof(err)) == PD_OK);
    long rows = scalar(d, "SELECT count(*) FROM pendulum_requests");
    CHECK(rows == p.n);
    /* whole batches only, in order: the rows are exactly the first `rows` records */
    CHECK(p.ok);
    if (graceful) {
        CHECK(rows == queued); /* SIGTERM loses nothing */
        CHECK(sh->final.written == (uint64_t)queued && sh->final.failed == 0);
    } else {
        CHECK(rows <= attempted && rows >= queued - CHILD_CAPACITY);
    }
    if (!d->pg)
        CHECK(scalar(d, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = "
                        "'ok'") == 1);
    printf("  %s %s: %ld queued, %ld in the database (ring %d)\n", d->pg ? "postgres" : "sqlite",
           graceful ? "SIGTERM" : "kill -9", queued, rows, CHILD_CAPACITY);
    munmap(sh, sizeof(shared));
}

static void kill9_sqlite(void)
{
    db d;
    db_sqlite(&d, "kill9");
    crash(&d, false);
    db_drop(&d);
}

static void sigterm_sqlite(void)
{
    db d;
    db_sqlite(&d, "sigterm");
    crash(&d, true);
    db_drop(&d);
}

/* ---- SQLite's schema version 2: rows keyed by time ------------------------------------------ */

/* The same ten records submitted by two ledgers in turn. PostgreSQL skips the second ten as
   duplicates: a batch retried after its COMMIT landed must not write twice. SQLite's COMMIT
   never leaves its outcome in doubt, so nothing is retried after it landed and there is no
   unique id to skip by: a record submitted twice is two rows. */
static void repeated_ids(db *d)
{
    for (int round = 0; round < 2; round++) {
        pd_ledger *l = open_ledger(d, 64, 64, 10);
        CHECK(l != NULL);
        if (!l)
            return;
        pd_ledger_record r;
        char id[32];
        for (long i = 0; i < 10; i++) {
            make_record(&r, id, sizeof(id), 0, i);
            pd_ledger_submit(l, &r);
        }
        pd_ledger_stats st;
        pd_ledger_close(l, &st);
        uint64_t skipped = d->pg && round ? 10 : 0;
        CHECK(st.written == 10 - skipped && st.duplicates == skipped && st.failed == 0);
    }
    CHECK(scalar(d, "SELECT count(*) FROM pendulum_requests") == (d->pg ? 10 : 20));
    CHECK(scalar(d, "SELECT count(DISTINCT id) FROM pendulum_requests") == 10);
}

static void repeated_ids_sqlite(void)
{
    db d;
    db_sqlite(&d, "repeated");
    repeated_ids(&d);
    db_drop(&d);
}

#define SAME_MS 3000

/* Two writers on one file, every record of both in the same few milliseconds: each writer
   counts its keys from 0, so the second takes keys the first holds and must move on to free
   ones; no record is lost, and every key stays in its record's millisecond. */
static void two_writers_sqlite(void)
{
    db d;
    db_sqlite(&d, "two_writers");
    pd_ledger *a = open_ledger(&d, 4096, 256, 10), *b = open_ledger(&d, 4096, 256, 10);
    CHECK(a != NULL && b != NULL);
    if (!a || !b)
        return;
    pd_ledger_record r;
    char id[32];
    for (long i = 0; i < SAME_MS; i++) {
        for (int w = 0; w < 2; w++) {
            make_record(&r, id, sizeof(id), w, i);
            r.ts_ms = 1700000000000 + i % 3;
            CHECK(pd_ledger_submit(w ? b : a, &r) == PD_OK);
        }
    }
    pd_ledger_stats sa, sb;
    pd_ledger_close(a, &sa);
    pd_ledger_close(b, &sb);
    CHECK(sa.written == SAME_MS && sb.written == SAME_MS && sa.failed == 0 && sb.failed == 0);
    CHECK(scalar(&d, "SELECT count(DISTINCT id) FROM pendulum_requests") == 2 * SAME_MS);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests WHERE ts_key >> 16 <> ts_ms") == 0);
    long n = 0;
    char err[256];
    CHECK(pd_ledger_each(d.url, 1700000000001, 1700000000002, count_row, &n, err, sizeof(err)) ==
          PD_OK);
    CHECK(n == 2 * SAME_MS / 3);
    db_drop(&d);
}

/* Times outside what a key holds (before 1970, after the year 6429) are kept as they are and
   still found by their time. */
static void key_bounds_sqlite(void)
{
    static const int64_t big = (INT64_C(1) << 47) + 9; /* keys hold ms up to 2^47 - 1 */
    db d;
    db_sqlite(&d, "key_bounds");
    pd_ledger *l = open_ledger(&d, 64, 64, 10);
    CHECK(l != NULL);
    if (!l)
        return;
    pd_ledger_record r;
    char id[32];
    const int64_t ts[] = {-5, 0, 7, big - 1, big};
    for (long i = 0; i < 5; i++) {
        make_record(&r, id, sizeof(id), 0, i);
        r.ts_ms = ts[i];
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
    }
    pd_ledger_close(l, NULL);
    struct {
        int64_t since, until;
        long want;
    } q[] = {{INT64_MIN, INT64_MAX, 5},
             {INT64_MIN, 0, 1},
             {-5, -4, 1},
             {0, 8, 2},
             {0, INT64_MAX, 4},
             {big - 1, big, 1},
             {big, big + 1, 1},
             {8, 9, 0},
             {9, 8, 0},
             {INT64_MAX, INT64_MIN, 0}};
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        long n = 0;
        char err[256];
        CHECK(pd_ledger_each(d.url, q[i].since, q[i].until, count_row, &n, err, sizeof(err)) ==
              PD_OK);
        if (n != q[i].want)
            fprintf(stderr, "  [%" PRId64 ", %" PRId64 "): %ld rows, want %ld\n", q[i].since,
                    q[i].until, n, q[i].want);
        CHECK(n == q[i].want);
    }
    db_drop(&d);
}

/* Runs sql against the file directly; false (and says why) on error. */
static bool sqlite_exec(const db *d, const char *sql)
{
    sqlite3 *s = NULL;
    bool ok = sqlite3_open(d->path, &s) == SQLITE_OK &&
              sqlite3_exec(s, sql, NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        fprintf(stderr, "  sqlite: %s: %s\n", sql, sqlite3_errmsg(s));
    sqlite3_close(s);
    return ok;
}

/* Every key of a millisecond taken (65,536 rows in it): a record of that millisecond fails
   alone, counted, and the others are written. */
static void full_millisecond_sqlite(void)
{
    db d;
    db_sqlite(&d, "full_ms");
    pd_ledger *l = open_ledger(&d, 64, 64, 10);
    pd_ledger_close(l, NULL);
    CHECK(sqlite_exec(&d, "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i "
                          "< 65535) INSERT INTO pendulum_requests (ts_key, id, ts_ms, status, "
                          "stream, attempts) SELECT (1000 << 16) + i, 'r-' || i, 1000, 200, 0, 1 "
                          "FROM n"));
    l = open_ledger(&d, 64, 64, 10);
    CHECK(l != NULL);
    if (!l)
        return;
    pd_ledger_record r;
    char id[32];
    for (long i = 0; i < 2; i++) {
        make_record(&r, id, sizeof(id), 0, i);
        r.ts_ms = 1000 + i;
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
    }
    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    CHECK(st.written == 1 && st.failed == 1);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests WHERE ts_ms = 1001") == 1);
    db_drop(&d);
}

/* A ledger of schema version 1 as earlier builds made it: id the primary key, ts_ms indexed. */
static bool make_v1(const db *d)
{
    static const char *const types[5] = {"TEXT", "INTEGER", "INTEGER", "REAL", "INTEGER"};
    pd_buf sql;
    pd_buf_init(&sql, 0);
    pd_ledger_sql_create(&sql, types, NULL);
    pd_buf_append_str(&sql, "; CREATE INDEX pendulum_requests_ts ON pendulum_requests (ts_ms); "
                            "CREATE TABLE pendulum_schema (version INTEGER NOT NULL); "
                            "INSERT INTO pendulum_schema VALUES (1)");
    bool ok = sqlite_exec(d, sql.data);
    pd_buf_free(&sql);
    return ok;
}

typedef struct ids {
    char s[256];
} ids;

static int join_id(void *ud, const pd_ledger_record *r)
{
    ids *o = ud;
    size_t n = strlen(o->s);
    snprintf(o->s + n, sizeof(o->s) - n, "%s%s", n ? " " : "", r->id);
    return 0;
}

static void each_ids(const db *d, int64_t since, int64_t until, const char *want)
{
    ids got = {.s = ""};
    char err[256];
    CHECK(pd_ledger_each(d->url, since, until, join_id, &got, err, sizeof(err)) == PD_OK);
    CHECK_STR(got.s, want);
}

/* A version 1 ledger is read as it is, and migrated by the first writer to open it: every row
   kept, numbered within its millisecond in id order, the old index gone. */
static void migrate_v1_sqlite(void)
{
    db d;
    db_sqlite(&d, "migrate");
    CHECK(make_v1(&d));
    CHECK(sqlite_exec(&d, "INSERT INTO pendulum_requests (id, ts_ms, status, stream, attempts, "
                          "route, cost_usd) VALUES ('r-b', 1000, 200, 0, 1, 'chat', 0.5), "
                          "('r-a', 1000, 200, 1, 2, 'auto', NULL), "
                          "('r-c', 999, 502, 0, 3, NULL, 0), ('r-neg', -5, 200, 0, 1, NULL, 1)"));
    each_ids(&d, INT64_MIN, INT64_MAX, "r-neg r-c r-a r-b");
    each_ids(&d, 1000, 1001, "r-a r-b");

    pd_ledger *l = open_ledger(&d, 64, 64, 10);
    CHECK(l != NULL);
    if (!l)
        return;
    pd_ledger_record r;
    pd_ledger_record_init(&r);
    r.id = "r-0";
    r.ts_ms = 1000; /* the writer's first key in this millisecond is r-a's */
    r.status = 200;
    CHECK(pd_ledger_submit(l, &r) == PD_OK);
    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    CHECK(st.written == 1 && st.failed == 0);

    CHECK(scalar(&d, "SELECT max(version) FROM pendulum_schema") == 2);
    CHECK(scalar(&d, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v1' OR name = "
                     "'pendulum_requests_ts'") == 0);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests WHERE ts_key >> 16 <> max(0, "
                     "ts_ms)") == 0);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests WHERE id = 'r-a' AND ts_key = "
                     "(1000 << 16) AND stream = 1 AND attempts = 2 AND route = 'auto' AND "
                     "cost_usd IS NULL") == 1);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests WHERE id = 'r-c' AND cost_usd = 0 "
                     "AND status = 502") == 1);
    each_ids(&d, INT64_MIN, INT64_MAX, "r-neg r-c r-a r-b r-0");
    each_ids(&d, 1000, 1001, "r-a r-b r-0");
    db_drop(&d);
}

/* A version 1 ledger whose rows cannot be keyed (over 65,536 in one millisecond) is refused
   with the reason, and left as it was. */
static void migrate_v1_refused_sqlite(void)
{
    db d;
    db_sqlite(&d, "migrate_refused");
    CHECK(make_v1(&d));
    CHECK(sqlite_exec(&d, "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i "
                          "< 65536) INSERT INTO pendulum_requests (id, ts_ms, status, stream, "
                          "attempts) SELECT 'r-' || i, 1000, 200, 0, 1 FROM n"));
    pd_ledger *l = NULL;
    char err[256];
    CHECK(pd_ledger_open(d.url, NULL, &l, err, sizeof(err)) == PD_ERR_IO);
    CHECK(l == NULL && strstr(err, "65537 rows share one millisecond") != NULL);
    CHECK(scalar(&d, "SELECT max(version) FROM pendulum_schema") == 1);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests") == 65537);
    CHECK(scalar(&d, "SELECT count(*) FROM sqlite_master WHERE name = 'pendulum_requests_ts'") ==
          1);
    db_drop(&d);
}

/* ---- the PostgreSQL variants ----------------------------------------------------------------- */

static bool pg_db(db *d)
{
    if (!pg_base[0]) {
        printf("  SKIP: no PostgreSQL server (binaries absent)\n");
        return false;
    }
    bool ok = db_pg(d);
    CHECK(ok);
    return ok;
}

static void round_trip_pg(void)
{
    db d;
    if (!pg_db(&d))
        return;
    round_trip(&d);
    pd_ledger *l = open_ledger(&d, 16, 4, 10);
    CHECK(l && strncmp(pd_ledger_describe(l), "postgres://pendulum@", 20) == 0);
    pd_ledger_close(l, NULL);
    db_drop(&d);
}

static void concurrent_pg(void)
{
    db d;
    if (!pg_db(&d))
        return;
    concurrent(&d);
    db_drop(&d);
}

static void close_flushes_pg(void)
{
    db d;
    if (!pg_db(&d))
        return;
    close_flushes(&d);
    db_drop(&d);
}

static void kill9_pg(void)
{
    db d;
    if (!pg_db(&d))
        return;
    crash(&d, false);
    db_drop(&d);
}

static void sigterm_pg(void)
{
    db d;
    if (!pg_db(&d))
        return;
    crash(&d, true);
    db_drop(&d);
}

static void duplicates_pg(void)
{
    db d;
    if (!pg_db(&d))
        return;
    repeated_ids(&d);
    db_drop(&d);
}

static void wait_written(pd_ledger *l, uint64_t n)
{
    pd_ledger_stats st;
    for (int i = 0; i < 500; i++) {
        pd_ledger_get_stats(l, &st);
        if (st.written >= n)
            return;
        usleep(10000);
    }
}

/* The server drops the ledger's connection (as a restart or a failover would): the next
   batch fails, the writer reconnects and retries it, nothing is lost or doubled. */
static void reconnect_pg(void)
{
    db d;
    if (!pg_db(&d))
        return;
    pd_ledger *l = open_ledger(&d, 256, 64, 10);
    CHECK(l != NULL);
    if (!l)
        return;
    pd_ledger_record r;
    char id[32];
    for (long i = 0; i < 10; i++) {
        make_record(&r, id, sizeof(id), 0, i);
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
    }
    wait_written(l, 10);
    CHECK(scalar(&d, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                     "datname = current_database() AND backend_type = 'client backend' AND "
                     "pid <> pg_backend_pid()") == 1);
    for (long i = 10; i < 20; i++) {
        make_record(&r, id, sizeof(id), 0, i);
        CHECK(pd_ledger_submit(l, &r) == PD_OK);
    }
    pd_ledger_stats st;
    pd_ledger_close(l, &st);
    CHECK(st.written == 20 && st.failed == 0 && st.duplicates == 0);
    CHECK(st.errors >= 1);
    CHECK(scalar(&d, "SELECT count(*) FROM pendulum_requests") == 20);
    db_drop(&d);
}

/* ---- set-up ---------------------------------------------------------------------------------- */

static void pg_setup(void)
{
    const char *env = getenv("PENDULUM_TEST_PG_URL");
    if (env && env[0]) {
        snprintf(pg_base, sizeof(pg_base), "%s", env);
        return;
    }
    FILE *f = popen("scripts/pg-test.sh start", "r");
    char line[512] = "";
    if (f && !fgets(line, sizeof(line), f))
        line[0] = '\0';
    int status = f ? pclose(f) : -1;
    line[strcspn(line, "\n")] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        printf("SKIP the PostgreSQL tests: the PostgreSQL server binaries are absent "
               "(install Debian's postgresql)\n");
        return;
    }
    if (status != 0 || strncmp(line, "postgres://", 11) != 0) {
        fprintf(stderr,
                "  scripts/pg-test.sh start failed (status %d; run from the repository "
                "root): the PostgreSQL tests fail\n",
                status);
        test_failed_checks++;
        return;
    }
    snprintf(pg_base, sizeof(pg_base), "%s", line);
    pg_ours = true;
}

static void pg_teardown(void)
{
    if (!pg_ours)
        return;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "scripts/pg-test.sh stop '%s'", pg_base);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not stop the PostgreSQL test cluster %s\n", pg_base);
}

static void pg_server(void)
{
    pg_setup();
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pd-ledger-test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(times);
    TEST_RUN(open_errors);
    TEST_RUN(default_url);
    TEST_RUN(schema_version);
    TEST_RUN(round_trip_sqlite);
    TEST_RUN(concurrent_sqlite);
    TEST_RUN(full_ring_drops);
    TEST_RUN(close_flushes_sqlite);
    TEST_RUN(trickle_batches_sqlite);
    TEST_RUN(full_batch_then_wait_sqlite);
    TEST_RUN(writer_priority_sqlite);
    TEST_RUN(repeated_ids_sqlite);
    TEST_RUN(two_writers_sqlite);
    TEST_RUN(key_bounds_sqlite);
    TEST_RUN(full_millisecond_sqlite);
    TEST_RUN(migrate_v1_sqlite);
    TEST_RUN(migrate_v1_refused_sqlite);
    TEST_RUN(kill9_sqlite);
    TEST_RUN(sigterm_sqlite);

    TEST_RUN(pg_server);
    TEST_RUN(round_trip_pg);
    TEST_RUN(duplicates_pg);
    TEST_RUN(reconnect_pg);
    TEST_RUN(concurrent_pg);
    TEST_RUN(close_flushes_pg);
    TEST_RUN(kill9_pg);
    TEST_RUN(sigterm_pg);
    pg_teardown();

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_DONE();
}
