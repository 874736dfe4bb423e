/* sqlite.c: the SQLite ledger backend.
 *
 * WAL with synchronous=NORMAL: a commit appends to the WAL without an fsync, so a writer never
 * waits for the disk per batch, readers (reports) never block it, and a process crash
 * (kill -9) loses no committed batch; only a power loss may lose the last ones. Each batch is
 * one BEGIN IMMEDIATE .. COMMIT with one prepared insert, bound and reset per record; BEGIN and
 * COMMIT are prepared once too (sqlite3_exec would parse and compile them, with their
 * allocations, for every batch: about a tenth of the writer's time in a profile).
 *
 * Schema version 2: each row is keyed by ts_key = (ts_ms << KEY_BITS) | n, an INTEGER PRIMARY
 * KEY (SQLite's rowid), and the table has no other index. The rowid b-tree is then ordered by
 * time, so a report's time range is a range of the rowid and needs no index on ts_ms, and rows
 * go in near its end. Version 1 had id as the primary key and an index on ts_ms: those two
 * indexes were ~40% of the writer's CPU per record (bench/ledger_writer: 2.4-2.7 against
 * 1.45-1.65 µs in the backend), and the writer's CPU time is what the gateway's tail pays for
 * (bench/README.md, "ledger-overhead"). The unique id guarded against writing a batch twice
 * after a lost COMMIT reply, which PostgreSQL can have and SQLite cannot: its COMMIT returns
 * what happened. So a repeated id is a second row here, never a skip. n is the writer's own
 * count; another writer on the same file (a second gateway, a restart within the millisecond)
 * can take the same key, and a key already taken is retried with the next n, so no record is
 * lost to it. A version 1 ledger is migrated when a writer opens it, and read as it is. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "ledger/ledger.h"

#define BUSY_TIMEOUT_MS 5000
#define PAGE_SIZE_S "8192" /* for new databases; see setup_writer */
#define VERSION_S "2"      /* for SQL text */
_Static_assert(PD_LEDGER_SQLITE_SCHEMA_VERSION == 2, "VERSION_S spells the schema version");
#define KEY "ts_key"
#define KEY_BITS 16 /* 65,536 rows per millisecond */
#define KEY_N_MASK ((1 << KEY_BITS) - 1)
#define KEY_MS_MAX ((INT64_C(1) << (63 - KEY_BITS)) - 1) /* the year 6429 */
#define KEY_MS_SQL "max(0, min(ts_ms, %lld))" /* key_ms in SQL, for printf with KEY_MS_MAX */

static const char *const types[5] = {"TEXT", "INTEGER", "INTEGER", "REAL", "INTEGER"};

typedef struct sq {
    sqlite3 *db;
    int64_t version;                       /* of the schema: 1 or 2 */
    sqlite3_stmt *insert, *begin, *commit; /* the writer's, prepared once */
    uint32_t next_n;                       /* the writer's count for keys */
} sq;

/* The millisecond part of a key: ts_ms within what the key can hold, so that keys keep the
   order of ts_ms. */
static int64_t key_ms(int64_t ts_ms)
{
    return ts_ms < 0 ? 0 : ts_ms > KEY_MS_MAX ? KEY_MS_MAX : ts_ms;
}

/* Codes worth retrying as they are: the database is busy, the disk is full or failing. */
static pd_result map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM: return PD_ERR_IO;
    default: return PD_ERR_INVALID;
    }
}

static pd_result fail(sq *s, int rc, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s", what, s->db ? sqlite3_errmsg(s->db) : "?");
    return map_rc(rc);
}

static pd_result exec(sq *s, const char *sql, char *err, size_t errlen)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? PD_OK : fail(s, rc, sql, err, errlen);
}

/* Runs a prepared statement that returns no row, and resets it for the next time. */
static pd_result run(sq *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? PD_OK : fail(s, rc, what, err, errlen);
}

static int prepare(sq *s, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* The first column of the first row of sql (0 when it is NULL or there is no row). */
static pd_result scalar(sq *s, const char *sql, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    *v = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    pd_result res = rc == SQLITE_ROW || rc == SQLITE_DONE ? PD_OK : fail(s, rc, sql, err, errlen);
    sqlite3_finalize(st);
    return res;
}

/* The schema version, 0 when the ledger has none yet. */
static pd_result read_version(sq *s, int64_t *v, char *err, size_t errlen)
{
    return scalar(s, "SELECT max(version) FROM " PD_LEDGER_SCHEMA_TABLE, v, err, errlen);
}

static pd_result check_version(int64_t v, char *err, size_t errlen)
{
    if (v <= PD_LEDGER_SQLITE_SCHEMA_VERSION)
        return PD_OK;
    snprintf(err, errlen, "ledger: schema version %lld is newer than this build's (%d)",
             (long long)v, PD_LEDGER_SQLITE_SCHEMA_VERSION);
    return PD_ERR_NOT_FOUND;
}

/* Version 1 -> 2 in the caller's transaction: the rows are copied into a table of version 2
   (made by create), numbered within each millisecond in id order. */
static pd_result migrate_v1(sq *s, const char *create, char *err, size_t errlen)
{
    pd_buf most_sql, copy;
    pd_buf_init(&most_sql, 0);
    pd_buf_init(&copy, 0);
    pd_buf_printf(&most_sql,
                  "SELECT count(*) FROM " PD_LEDGER_TABLE " GROUP BY " KEY_MS_SQL
                  " ORDER BY 1 DESC LIMIT 1",
                  (long long)KEY_MS_MAX);
    pd_buf_append_str(&copy, "INSERT INTO " PD_LEDGER_TABLE " (" KEY ", ");
    pd_ledger_sql_columns(&copy);
    pd_buf_printf(&copy,
                  ") SELECT (" KEY_MS_SQL " << %d) + row_number() OVER (PARTITION BY " KEY_MS_SQL
                  " ORDER BY id) - 1, ",
                  (long long)KEY_MS_MAX, KEY_BITS, (long long)KEY_MS_MAX);
    pd_ledger_sql_columns(&copy);
    pd_buf_append_str(&copy, " FROM " PD_LEDGER_TABLE "_v1");

    int64_t most = 0;
    pd_result rc = scalar(s, most_sql.data, &most, err, errlen);
    if (rc == PD_OK && most > KEY_N_MASK + 1) {
        snprintf(err, errlen,
                 "ledger: cannot migrate to schema version 2: %lld rows share one millisecond",
                 (long long)most);
        rc = PD_ERR_IO;
    }
    if (rc == PD_OK &&
        !(rc = exec(s, "ALTER TABLE " PD_LEDGER_TABLE " RENAME TO " PD_LEDGER_TABLE "_v1", err,
                    errlen)) &&
        !(rc = exec(s, create, err, errlen)) && !(rc = exec(s, copy.data, err, errlen))) {
        pd_log_info("ledger: %lld rows moved to schema version 2",
                    (long long)sqlite3_changes64(s->db));
        rc = exec(s, "DROP TABLE " PD_LEDGER_TABLE "_v1", err, errlen); /* and its ts_ms index */
    }
    pd_buf_free(&most_sql);
    pd_buf_free(&copy);
    return rc;
}

/* Makes the schema of version 2: creates it, migrates version 1, or finds it. */
static pd_result create_schema(sq *s, char *err, size_t errlen)
{
    int64_t v = 0;
    pd_buf sql;
    pd_buf_init(&sql, 0);
    pd_ledger_sql_create(&sql, types, KEY);
    pd_result rc = exec(s, "BEGIN IMMEDIATE", err, errlen);
    if (rc)
        goto out;
    if ((rc = exec(
             s, "CREATE TABLE IF NOT EXISTS " PD_LEDGER_SCHEMA_TABLE " (version INTEGER NOT NULL)",
             err, errlen)) ||
        (rc = read_version(s, &v, err, errlen)) || (rc = check_version(v, err, errlen)))
        goto rollback;
    rc = v == 1 ? migrate_v1(s, sql.data, err, errlen) : exec(s, sql.data, err, errlen);
    if (rc == PD_OK && v < PD_LEDGER_SQLITE_SCHEMA_VERSION)
        rc = exec(s, "INSERT INTO " PD_LEDGER_SCHEMA_TABLE " VALUES (" VERSION_S ")", err, errlen);
    if (rc == PD_OK)
        rc = exec(s, "COMMIT", err, errlen);
    if (rc == PD_OK) {
        s->version = PD_LEDGER_SQLITE_SCHEMA_VERSION;
        goto out;
    }
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
out:
    pd_buf_free(&sql);
    return rc;
}

static pd_result require_schema(sq *s, char *err, size_t errlen)
{
    if (read_version(s, &s->version, err, errlen) != PD_OK || s->version == 0) {
        snprintf(err, errlen, "ledger: %s holds no ledger", sqlite3_db_filename(s->db, "main"));
        return PD_ERR_NOT_FOUND;
    }
    return check_version(s->version, err, errlen);
}

static pd_result setup_writer(sq *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    /* Pages of 8 KiB for a new database (an existing one keeps its own; any build reads both):
       a commit writes every page it touched to the WAL, two pwrite calls per page, and rewrites
       the partly filled last page of the table and of each index; with 4 KiB pages those calls
       cost ~1.5x the CPU per record of 8 KiB ones (bench/ledger_writer; 16 and 64 KiB were
       slower again: more bytes rewritten per partial page). Must precede the switch to WAL. */
    pd_result res = exec(s, "PRAGMA page_size=" PAGE_SIZE_S, err, errlen);
    if (res)
        return res;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    bool wal = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        snprintf(err, errlen, "sqlite: cannot switch %s to WAL: %s",
                 sqlite3_db_filename(s->db, "main"), sqlite3_errmsg(s->db));
        return PD_ERR_IO;
    }
    res = exec(s, "PRAGMA synchronous=NORMAL", err, errlen);
    if (res == PD_OK)
        res = create_schema(s, err, errlen);
    if (res)
        return res;
    pd_buf sql;
    pd_buf_init(&sql, 0);
    pd_ledger_sql_insert(&sql, '?', KEY);
    rc = prepare(s, sql.data, &s->insert);
    pd_buf_free(&sql);
    if (rc == SQLITE_OK)
        rc = prepare(s, "BEGIN IMMEDIATE", &s->begin);
    if (rc == SQLITE_OK)
        rc = prepare(s, "COMMIT", &s->commit);
    return rc == SQLITE_OK ? PD_OK : fail(s, rc, "preparing the insert", err, errlen);
}

static void sq_close(void *conn)
{
    sq *s = conn;
    if (!s)
        return;
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_close(s->db);
    free(s);
}

static pd_result sq_open(const char *path, bool writer, void **conn, char *err, size_t errlen)
{
    sq *s = pd_xcalloc(1, sizeof(*s));
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    pd_result res;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        res = PD_ERR_IO;
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    res = writer ? setup_writer(s, err, errlen) : require_schema(s, err, errlen);
    if (res == PD_ERR_INVALID)
        res = PD_ERR_IO; /* a schema that cannot be made is the database's problem */
    if (res)
        goto fail;
    *conn = s;
    return PD_OK;
fail:
    sq_close(s);
    *conn = NULL;
    return res;
}

static int bind_record(sqlite3_stmt *st, const pd_ledger_record *r)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < pd_ledger_nfields && rc == SQLITE_OK; i++) {
        const pd_ledger_field *f = &pd_ledger_fields[i];
        int col = (int)i + 2; /* after the key */
        const char *t;
        int64_t n;
        double d;
        if (f->kind == PD_LEDGER_TEXT)
            rc = pd_ledger_field_text(r, f, &t) ? sqlite3_bind_text(st, col, t, -1, SQLITE_STATIC)
                                                : sqlite3_bind_null(st, col);
        else if (f->kind == PD_LEDGER_F64)
            rc = pd_ledger_field_real(r, f, &d) ? sqlite3_bind_double(st, col, d)
                                                : sqlite3_bind_null(st, col);
        else
            rc = pd_ledger_field_int(r, f, &n) ? sqlite3_bind_int64(st, col, n)
                                               : sqlite3_bind_null(st, col);
    }
    return rc;
}

/* Inserts r under the next free key of its millisecond (see the top of the file). */
static int insert_one(sq *s, const pd_ledger_record *r)
{
    int rc = bind_record(s->insert, r);
    int64_t base = key_ms(r->ts_ms) << KEY_BITS;
    for (int tries = 0; rc == SQLITE_OK && tries <= KEY_N_MASK; tries++) {
        rc = sqlite3_bind_int64(s->insert, 1, base | (s->next_n++ & KEY_N_MASK));
        if (rc != SQLITE_OK)
            break;
        rc = sqlite3_step(s->insert);
        bool taken = rc == SQLITE_CONSTRAINT &&
                     sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY;
        sqlite3_reset(s->insert);
        if (!taken)
            break;
        rc = SQLITE_OK; /* the next key */
    }
    return rc == SQLITE_OK ? SQLITE_CONSTRAINT : rc; /* SQLITE_OK: every key was taken */
}

static pd_result sq_insert(void *conn, const pd_ledger_record *recs, size_t n, size_t *inserted,
                           char *err, size_t errlen)
{
    sq *s = conn;
    *inserted = 0;
    pd_result res = run(s, s->begin, "BEGIN IMMEDIATE", err, errlen);
    if (res)
        return res;
    for (size_t i = 0; i < n; i++) {
        int rc = insert_one(s, &recs[i]);
        if (rc != SQLITE_DONE) {
            res = fail(s, rc, "insert", err, errlen);
            break;
        }
        *inserted += (size_t)sqlite3_changes(s->db);
    }
    sqlite3_clear_bindings(s->insert);
    if (res == PD_OK) {
        pd_ledger_writer_io(true); /* WAL appends, and a checkpoint's fsync */
        res = run(s, s->commit, "COMMIT", err, errlen);
        pd_ledger_writer_io(false);
    }
    if (res) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        *inserted = 0;
    }
    return res;
}

static void read_row(sqlite3_stmt *st, pd_ledger_record *r)
{
    pd_ledger_record_init(r);
    for (size_t i = 0; i < pd_ledger_nfields; i++) {
        const pd_ledger_field *f = &pd_ledger_fields[i];
        int col = (int)i;
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
            pd_ledger_field_set_null(r, f);
        else if (f->kind == PD_LEDGER_TEXT)
            pd_ledger_field_set_text(r, f, (const char *)sqlite3_column_text(st, col));
        else if (f->kind == PD_LEDGER_F64)
            pd_ledger_field_set_real(r, f, sqlite3_column_double(st, col));
        else
            pd_ledger_field_set_int(r, f, sqlite3_column_int64(st, col));
    }
}

static pd_result sq_each(void *conn, int64_t since_ms, int64_t until_ms, pd_ledger_each_cb cb,
                         void *ud, char *err, size_t errlen)
{
    sq *s = conn;
    sqlite3_stmt *st = NULL;
    pd_buf sql;
    pd_buf_init(&sql, 0);
    bool keyed = s->version >= 2;
    pd_ledger_sql_select(&sql, '?', keyed ? KEY : NULL);
    int rc = sqlite3_prepare_v2(s->db, sql.data, -1, &st, NULL);
    pd_buf_free(&sql);
    if (rc != SQLITE_OK) {
        fail(s, rc, "preparing the select", err, errlen);
        return PD_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, until_ms);
    if (keyed) { /* the keys of since_ms <= ts_ms < until_ms; none when that is empty */
        sqlite3_bind_int64(st, 3, key_ms(since_ms) << KEY_BITS);
        sqlite3_bind_int64(
            st, 4, until_ms > since_ms ? key_ms(until_ms - 1) << KEY_BITS | KEY_N_MASK : -1);
    }
    pd_ledger_record r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_row(st, &r);
        if (cb(ud, &r)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    pd_result res = rc == SQLITE_DONE ? PD_OK : PD_ERR_IO;
    if (res)
        fail(s, rc, "reading", err, errlen);
    sqlite3_finalize(st);
    return res;
}

static void sq_describe(void *conn, char *out, size_t outlen)
{
    sq *s = conn;
    const char *path = sqlite3_db_filename(s->db, "main");
    snprintf(out, outlen, "sqlite://%s", path ? path : "");
}

const pd_ledger_backend pd_ledger_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .insert = sq_insert,
    .each = sq_each,
    .describe = sq_describe,
    .close = sq_close,
};
