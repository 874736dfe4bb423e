/* postgres.c: the PostgreSQL ledger backend (libpq).
 *
 * A batch is one round trip: in pipeline mode we send BEGIN, one execution of the prepared
 * insert per record, COMMIT and a Sync, then read every result. The connection is blocking,
 * which is safe here only because a batch is bounded (at most 1024 records): the server's
 * replies to it (a few dozen bytes each) fit in the socket buffers, so the server never stalls
 * writing to us while we are still writing to it.
 *
 * A failed pipeline leaves an explicit transaction aborted; it is rolled back before the call
 * returns. A broken connection is re-established (PQreset, statement prepared again) at the
 * start of the next attempt. The schema is created under a transaction-level advisory lock,
 * so two gateways starting against one database do not race on CREATE TABLE. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger.h"

#define INSERT_STMT "pendulum_ledger_insert"
#define SCHEMA_LOCK_KEY 0x70656e64 /* "pend": any constant shared by every gateway */
#define NUM_MAX 32                 /* longest number as text: %.17g, %lld */

typedef struct pg {
    PGconn *conn;
    bool prepared;
    bool stale; /* a pipeline was left with unread results: reconnect before reuse */
} pg;

/* "postgres: what: msg" on one line: libpq's messages span several lines and end in '\n'. */
static void set_err(char *err, size_t errlen, const char *what, const char *msg)
{
    if (!errlen)
        return;
    int n = snprintf(err, errlen, "postgres: %s: ", what);
    size_t start = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1, o = start;
    bool space = false;
    for (; *msg && o + 1 < errlen; msg++) {
        if (*msg == '\n' || *msg == '\t' || *msg == ' ') {
            space = o > start;
            continue;
        }
        if (space && o + 2 < errlen)
            err[o++] = ' ';
        space = false;
        err[o++] = *msg;
    }
    err[o] = '\0';
}

/* Connection and transient server trouble is worth retrying; anything else is the data. */
static pd_result classify(PGconn *c, const PGresult *res)
{
    if (PQstatus(c) != CONNECTION_OK)
        return PD_ERR_IO;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return PD_ERR_IO;
    static const char *const transient[] = {"08", "25", "40", "53", "55", "57", "58"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (strncmp(state, transient[i], 2) == 0)
            return PD_ERR_IO;
    return PD_ERR_INVALID;
}

/* Runs one command; PGRES_COMMAND_OK or PGRES_TUPLES_OK is success. *out (optional) keeps
   the result for the caller to PQclear. */
static pd_result run(pg *p, const char *sql, PGresult **out, char *err, size_t errlen)
{
    PGresult *res = PQexec(p->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    pd_result rc = PD_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = classify(p->conn, res);
        set_err(err, errlen, sql, PQerrorMessage(p->conn));
    }
    if (out && rc == PD_OK)
        *out = res;
    else
        PQclear(res);
    return rc;
}

/* The schema version, 0 when there is none yet. */
static pd_result read_version(pg *p, int64_t *v, char *err, size_t errlen)
{
    PGresult *res = NULL;
    pd_result rc =
        run(p, "SELECT coalesce(max(version), 0) FROM " PD_LEDGER_SCHEMA_TABLE, &res, err, errlen);
    if (rc)
        return rc;
    *v = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return PD_OK;
}

static pd_result check_version(int64_t v, char *err, size_t errlen)
{
    if (v <= PD_LEDGER_PG_SCHEMA_VERSION)
        return PD_OK;
    snprintf(err, errlen, "ledger: schema version %lld is newer than this build's (%d)",
             (long long)v, PD_LEDGER_PG_SCHEMA_VERSION);
    return PD_ERR_NOT_FOUND;
}

static pd_result create_schema(pg *p, char *err, size_t errlen)
{
    static const char *const types[5] = {"text", "bigint", "integer", "double precision",
                                         "boolean"};
    char lock[96];
    int64_t v = 0;
    pd_buf sql;
    pd_buf_init(&sql, 0);
    pd_ledger_sql_create(&sql, types, NULL);
    snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%d)", SCHEMA_LOCK_KEY);
    pd_result rc = run(p, "BEGIN", NULL, err, errlen);
    if (rc)
        goto out;
    if ((rc = run(p, lock, NULL, err, errlen)) ||
        (rc = run(
             p, "CREATE TABLE IF NOT EXISTS " PD_LEDGER_SCHEMA_TABLE " (version integer NOT NULL)",
             NULL, err, errlen)) ||
        (rc = read_version(p, &v, err, errlen)) || (rc = check_version(v, err, errlen)) ||
        (rc = run(p, sql.data, NULL, err, errlen)) ||
        (rc = run(
             p, "CREATE INDEX IF NOT EXISTS " PD_LEDGER_TABLE "_ts ON " PD_LEDGER_TABLE " (ts_ms)",
             NULL, err, errlen)) ||
        (v == 0 &&
         (rc = run(p, "INSERT INTO " PD_LEDGER_SCHEMA_TABLE " VALUES (1)", NULL, err, errlen))) ||
        (rc = run(p, "COMMIT", NULL, err, errlen)))
        PQclear(PQexec(p->conn, "ROLLBACK"));
out:
    pd_buf_free(&sql);
    return rc;
}

static pd_result require_schema(pg *p, char *err, size_t errlen)
{
    int64_t v = 0;
    pd_result rc = read_version(p, &v, err, errlen);
    if (rc == PD_ERR_INVALID || (rc == PD_OK && v == 0)) {
        snprintf(err, errlen, "ledger: the database %s holds no ledger", PQdb(p->conn));
        return PD_ERR_NOT_FOUND;
    }
    return rc ? rc : check_version(v, err, errlen);
}

static pd_result prepare(pg *p, char *err, size_t errlen)
{
    pd_buf sql;
    pd_buf_init(&sql, 0);
    pd_ledger_sql_insert(&sql, '$', NULL);
    PGresult *res = PQprepare(p->conn, INSERT_STMT, sql.data, (int)pd_ledger_nfields, NULL);
    pd_buf_free(&sql);
    pd_result rc = PD_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = classify(p->conn, res);
        set_err(err, errlen, "preparing the insert", PQerrorMessage(p->conn));
    }
    PQclear(res);
    p->prepared = rc == PD_OK;
    return rc;
}

/* Session settings, after every (re)connection. Strings are sent as UTF-8 (the ledger makes
   them valid UTF-8). No "relation already exists, skipping" notice on each start; warnings
   still show. */
static pd_result setup_session(pg *p, char *err, size_t errlen)
{
    if (PQsetClientEncoding(p->conn, "UTF8") != 0) {
        set_err(err, errlen, "client_encoding UTF8", PQerrorMessage(p->conn));
        return PD_ERR_IO;
    }
    return run(p, "SET client_min_messages TO warning", NULL, err, errlen);
}

static void pg_close(void *conn)
{
    pg *p = conn;
    if (!p)
        return;
    PQfinish(p->conn);
    free(p);
}

static pd_result pg_open(const char *url, bool writer, void **conn, char *err, size_t errlen)
{
    pg *p = pd_xcalloc(1, sizeof(*p));
    pd_result rc = PD_OK;
    *conn = NULL;
    p->conn = PQconnectdb(url);
    if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
        set_err(err, errlen, "cannot connect", p->conn ? PQerrorMessage(p->conn) : "no memory");
        rc = PD_ERR_IO;
        goto fail;
    }
    if ((rc = setup_session(p, err, errlen)))
        goto fail;
    rc = writer ? create_schema(p, err, errlen) : require_schema(p, err, errlen);
    if (rc == PD_OK && writer)
        rc = prepare(p, err, errlen);
    if (rc == PD_ERR_INVALID)
        rc = PD_ERR_IO; /* a schema that cannot be made is the database's problem */
    if (rc)
        goto fail;
    *conn = p;
    return PD_OK;
fail:
    pg_close(p);
    return rc;
}

/* Text-format parameters of one record; numbers are printed into nums. */
static void record_params(const pd_ledger_record *r, const char **vals, char (*nums)[NUM_MAX])
{
    for (size_t i = 0; i < pd_ledger_nfields; i++) {
        const pd_ledger_field *f = &pd_ledger_fields[i];
        int64_t n;
        double d;
        vals[i] = NULL;
        if (f->kind == PD_LEDGER_TEXT) {
            pd_ledger_field_text(r, f, &vals[i]);
        } else if (f->kind == PD_LEDGER_F64) {
            if (pd_ledger_field_real(r, f, &d)) {
                snprintf(nums[i], NUM_MAX, "%.17g", d);
                vals[i] = nums[i];
            }
        } else if (pd_ledger_field_int(r, f, &n)) {
            if (f->kind == PD_LEDGER_BOOL)
                snprintf(nums[i], NUM_MAX, "%s", n ? "t" : "f");
            else
                snprintf(nums[i], NUM_MAX, "%lld", (long long)n);
            vals[i] = nums[i];
        }
    }
}

static bool send_batch(pg *p, const pd_ledger_record *recs, size_t n)
{
    const char *vals[64];
    char nums[64][NUM_MAX];
    if (!PQsendQueryParams(p->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        record_params(&recs[i], vals, nums);
        if (!PQsendQueryPrepared(p->conn, INSERT_STMT, (int)pd_ledger_nfields, vals, NULL, NULL, 0))
            return false;
    }
    return PQsendQueryParams(p->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) &&
           PQpipelineSync(p->conn);
}

/* Reads results up to the Sync. Success only if every command succeeded and COMMIT did. */
static pd_result read_batch(pg *p, size_t n, size_t *inserted, char *err, size_t errlen)
{
    pd_result rc = PD_OK;
    size_t commands = 0, nulls = 0, limit = 4 * (n + 2) + 8;
    for (size_t i = 0; i < limit; i++) {
        PGresult *res = PQgetResult(p->conn);
        if (!res) { /* the end of one command's results; two in a row: the pipeline broke */
            if (++nulls > 1 && PQstatus(p->conn) != CONNECTION_OK)
                break;
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            return commands == n + 2 ? rc : (rc ? rc : PD_ERR_IO);
        }
        if (st == PGRES_COMMAND_OK) {
            if (commands >= 1 && commands <= n)
                *inserted += (size_t)strtoul(PQcmdTuples(res), NULL, 10);
        } else if (rc == PD_OK) {
            rc = st == PGRES_PIPELINE_ABORTED ? PD_ERR_IO : classify(p->conn, res);
            set_err(err, errlen, "batch insert", PQresultErrorMessage(res));
        }
        commands++;
        PQclear(res);
    }
    set_err(err, errlen, "batch insert", PQerrorMessage(p->conn));
    return PD_ERR_IO;
}

/* Reconnects when the connection broke, and prepares the insert again. */
static pd_result ensure_ready(pg *p, char *err, size_t errlen)
{
    if (p->stale || PQstatus(p->conn) != CONNECTION_OK) {
        PQreset(p->conn);
        p->prepared = false;
        p->stale = false;
        if (PQstatus(p->conn) != CONNECTION_OK) {
            set_err(err, errlen, "reconnecting", PQerrorMessage(p->conn));
            return PD_ERR_IO;
        }
        pd_result rc = setup_session(p, err, errlen);
        if (rc)
            return rc;
    }
    return p->prepared ? PD_OK : prepare(p, err, errlen);
}

static pd_result pg_insert(void *conn, const pd_ledger_record *recs, size_t n, size_t *inserted,
                           char *err, size_t errlen)
{
    pg *p = conn;
    *inserted = 0;
    if (n > 1024 || pd_ledger_nfields > 64) {
        snprintf(err, errlen, "postgres: batch of %zu is over the pipeline bound", n);
        return PD_ERR_INVALID;
    }
    pd_result rc = ensure_ready(p, err, errlen);
    if (rc)
        return rc;
    if (!PQenterPipelineMode(p->conn)) {
        set_err(err, errlen, "entering pipeline mode", PQerrorMessage(p->conn));
        return PD_ERR_IO;
    }
    if (send_batch(p, recs, n))
        rc = read_batch(p, n, inserted, err, errlen);
    else {
        set_err(err, errlen, "sending the batch", PQerrorMessage(p->conn));
        rc = PD_ERR_IO;
    }
    if (!PQexitPipelineMode(p->conn))
        p->stale = true; /* a fresh connection rather than misread the old results */
    else if (PQstatus(p->conn) == CONNECTION_OK && PQtransactionStatus(p->conn) != PQTRANS_IDLE) {
        PQclear(PQexec(p->conn, "ROLLBACK"));
    }
    if (rc)
        *inserted = 0;
    return rc;
}

static void read_row(const PGresult *res, int row, pd_ledger_record *r)
{
    pd_ledger_record_init(r);
    for (size_t i = 0; i < pd_ledger_nfields; i++) {
        const pd_ledger_field *f = &pd_ledger_fields[i];
        int col = (int)i;
        const char *v = PQgetvalue(res, row, col);
        if (PQgetisnull(res, row, col))
            pd_ledger_field_set_null(r, f);
        else if (f->kind == PD_LEDGER_TEXT)
            pd_ledger_field_set_text(r, f, v);
        else if (f->kind == PD_LEDGER_F64)
            pd_ledger_field_set_real(r, f, strtod(v, NULL));
        else if (f->kind == PD_LEDGER_BOOL)
            pd_ledger_field_set_int(r, f, v[0] == 't');
        else
            pd_ledger_field_set_int(r, f, strtoll(v, NULL, 10));
    }
}

static pd_result pg_each(void *conn, int64_t since_ms, int64_t until_ms, pd_ledger_each_cb cb,
                         void *ud, char *err, size_t errlen)
{
    pg *p = conn;
    char since[NUM_MAX], until[NUM_MAX];
    const char *vals[2] = {since, until};
    snprintf(since, sizeof(since), "%lld", (long long)since_ms);
    snprintf(until, sizeof(until), "%lld", (long long)until_ms);
    pd_buf sql;
    pd_buf_init(&sql, 0);
    pd_ledger_sql_select(&sql, '$', NULL);
    int sent = PQsendQueryParams(p->conn, sql.data, 2, NULL, vals, NULL, NULL, 0);
    pd_buf_free(&sql);
    if (!sent || !PQsetSingleRowMode(p->conn)) {
        set_err(err, errlen, "select", PQerrorMessage(p->conn));
        return PD_ERR_IO;
    }
    pd_result rc = PD_OK;
    PGresult *res;
    pd_ledger_record r;
    bool stopped = false;
    /* Rows come one result each; the caller closes the connection, so stopping early need
       not drain the rest. */
    while (!stopped && (res = PQgetResult(p->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE) {
            read_row(res, 0, &r);
            stopped = cb(ud, &r) != 0;
        } else if (st != PGRES_TUPLES_OK && rc == PD_OK) {
            set_err(err, errlen, "select", PQresultErrorMessage(res));
            rc = PD_ERR_IO;
        }
        PQclear(res);
    }
    return rc;
}

static void pg_describe(void *conn, char *out, size_t outlen)
{
    pg *p = conn;
    snprintf(out, outlen, "postgres://%s@%s:%s/%s", PQuser(p->conn), PQhost(p->conn),
             PQport(p->conn), PQdb(p->conn));
}

const pd_ledger_backend pd_ledger_postgres = {
    .name = "postgres",
    .open = pg_open,
    .insert = pg_insert,
    .each = pg_each,
    .describe = pg_describe,
    .close = pg_close,
};
