/* ledger.h: the request ledger. One row per request (never the prompt), written off the request
 * path to SQLite (default) or PostgreSQL.
 *
 * Design. Workers call pd_ledger_submit, which copies the record into a fixed-size slot of a
 * bounded ring and returns: no lock, no allocation, no I/O. The ring is Vyukov's bounded queue
 * (each slot carries a sequence number; a producer claims a position with one CAS and publishes
 * the slot with one release store), so many workers submit at once without sharing a mutex.
 * When the ring is full the record is dropped and counted, and the request is not slowed. One
 * writer thread drains the ring in batches, each batch one transaction of prepared inserts
 * (SQLite: WAL, synchronous=NORMAL; PostgreSQL: one pipelined round trip). A slot is released
 * only after its batch commits, so the capacity bounds what a crash (kill -9) can lose: the
 * records still in the ring, the batch in flight included. Batches are all or nothing. SQLite's
 * COMMIT says whether it landed, so a batch is retried only when it did not; in PostgreSQL the
 * reply can be lost after it landed, so there an id already present is skipped (ON CONFLICT DO
 * NOTHING) and a retried batch is never written twice. pd_ledger_close writes everything
 * queued, then returns (the SIGTERM path).
 *
 * Database errors. A batch that fails for a connection or disk reason is retried with capped
 * exponential backoff for as long as the ledger is open (the ring fills meanwhile and new
 * records are dropped and counted); once pd_ledger_close has begun, retries stop after
 * close_timeout_ms and what is left is counted as failed. A batch the database rejects for its
 * data is retried one record per transaction, so one bad record costs only itself. A failure
 * and the recovery from it are each logged once (pd_log_info), not per batch.
 *
 * URLs: "sqlite:///abs/path.db", "sqlite://relative/path.db" (relative to the working
 * directory), "postgres://..." or "postgresql://..." (handed to libpq as is; every libpq URI
 * parameter works). NULL or "" means the default, pd_ledger_default_url.
 *
 * Unknown values. Counts and times are signed: any number < 0 (PD_LEDGER_UNKNOWN) is stored
 * as SQL NULL, never as 0; pd_ledger_record_init sets every optional number unknown. A NULL or
 * empty string is stored as NULL. Strings are copied capped (PD_LEDGER_*_MAX bytes, NUL
 * included), cut at a UTF-8 character boundary, with invalid UTF-8 bytes replaced by '?'.
 *
 * Ownership and threads: pd_ledger_open returns a ledger owned by the caller until
 * pd_ledger_close. pd_ledger_submit and pd_ledger_get_stats may be called from any number of
 * threads at once; every other call from one thread at a time. pd_ledger_close must not
 * overlap a submit (stop the workers first). A record passed in is only read during the call. */
#ifndef PD_LEDGER_LEDGER_H
#define PD_LEDGER_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

#define PD_LEDGER_UNKNOWN (-1)
/* The tables: pendulum_requests (one row per request) and pendulum_schema (its version). */
#define PD_LEDGER_TABLE "pendulum_requests"
#define PD_LEDGER_SCHEMA_TABLE "pendulum_schema"
/* Schema versions: SQLite's 2 keys rows by time (src/ledger/sqlite.c); a version 1 ledger is
   migrated when a writer opens it and read as it is otherwise. PostgreSQL's is 1. */
#define PD_LEDGER_SQLITE_SCHEMA_VERSION 2
#define PD_LEDGER_PG_SCHEMA_VERSION 1

/* Caps of the copied strings, in bytes, NUL included. */
#define PD_LEDGER_ID_MAX 96
#define PD_LEDGER_NAME_MAX 64   /* route, target, provider */
#define PD_LEDGER_MODEL_MAX 128 /* model, upstream_model */
#define PD_LEDGER_PII_MAX 160
#define PD_LEDGER_ERROR_MAX 256

/* One request. Columns of the table pendulum_requests have the same names. */
typedef struct pd_ledger_record {
    const char *id;    /* the request id; required */
    int64_t ts_ms;     /* wall clock (ms since the epoch) when the request arrived */
    const char *route; /* the route that matched */
    const char *target;
    const char *provider;
    const char *model;          /* as the client asked */
    const char *upstream_model; /* as the upstream reported */
    int status;                 /* HTTP status sent to the client (499: the client left) */
    bool stream;
    int attempts; /* upstream attempts (0: none was made) */
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens; /* < 0: unknown */
    double cost_usd; /* < 0: unknown. Never 0 for unknown */
    /* Milliseconds, < 0: unknown. See pd_ledger_record_set_times for their definitions. */
    double ttft_ms, total_ms, upstream_ms, overhead_ms;
    double dns_ms, connect_ms, tls_ms, ttfb_ms;
    double tokens_per_s;
    const char *pii_types; /* entity types found, comma-separated ("email,phone"), or NULL */
    const char *error;     /* why the request failed, or NULL; never request content */
} pd_ledger_record;

/* All strings NULL, ts_ms 0, status 0, stream false, attempts 0, every other number unknown. */
void pd_ledger_record_init(pd_ledger_record *r);

/* Raw clock readings of one request, from which the latency fields are derived. */
typedef struct pd_ledger_times {
    uint64_t start_us;       /* pd_now_us() when the request arrived; required */
    uint64_t first_token_us; /* pd_now_us() when the first token went out; 0: none did */
    uint64_t end_us;         /* pd_now_us() when the reply was complete; required */
    /* libcurl's CURLINFO_*_TIME_T of the last upstream attempt: microseconds from the start of
       the transfer, each including the phases before it (appconnect is 0 without a TLS
       handshake). pd_upstream_timing carries them as dns_us, connect_us, tls_us, ttfb_us. */
    uint64_t namelookup_us, connect_us, appconnect_us, starttransfer_us;
    /* Time spent in upstream transfers: CURLINFO_TOTAL_TIME_T summed over all attempts.
       0 when no upstream call was made: then every upstream field stays unknown. */
    uint64_t upstream_us;
} pd_ledger_times;

/* Sets the latency fields of r (issue 6, part 3). Call after completion_tokens is set.
 *   total_ms    = end − start
 *   ttft_ms     = first_token − start                        (unknown when no token went out)
 *   upstream_ms = upstream_us
 *   overhead_ms = total − upstream, at least 0: the gateway's own time, retry waits included
 *   dns_ms      = namelookup;  connect_ms = connect − namelookup
 *   tls_ms      = appconnect − connect  (unknown without a TLS handshake: plain HTTP or reuse)
 *   ttfb_ms     = starttransfer: transfer start to the first response byte, so
 *                 dns + connect + tls <= ttfb and the rest is the upstream's own wait
 *   tokens_per_s = completion_tokens / (end − first_token) when a first token went out at
 *                 least 1 ms before the end (the decode rate of a stream), else
 *                 completion_tokens / total; unknown without a completion count.
 * With upstream_us 0 the upstream fields and overhead_ms are unknown. */
void pd_ledger_record_set_times(pd_ledger_record *r, const pd_ledger_times *t);

typedef struct pd_ledger_params {
    size_t capacity;           /* ring slots, rounded up to a power of two, 2..262144;
                                  default 8192. A slot is 1184 bytes: 9.25 MiB by default */
    size_t batch_max;          /* most records per transaction; default 512, at most 1024.
                                  A transaction's fixed cost is paid per batch: at 2,000 req/s
                                  and flush_ms 200 the writer makes ~400-row batches */
    unsigned flush_ms;         /* longest a record waits in a quiet ring; default 200 (1..60000) */
    unsigned retry_max_ms;     /* cap of the backoff between failed writes; default 5000 (>= 100) */
    unsigned close_timeout_ms; /* how long close keeps retrying a failing database; default 5000
                                  (at most 600000) */
} pd_ledger_params;

void pd_ledger_default_params(pd_ledger_params *p);

typedef struct pd_ledger pd_ledger;

/* The default URL: "sqlite://" + $XDG_STATE_HOME/pendulum/ledger.db when XDG_STATE_HOME is
 * an absolute path, else $HOME/.local/state/pendulum/ledger.db, else ./pendulum-ledger.db.
 * PD_ERR_TOO_LARGE when it does not fit in outlen. */
pd_result pd_ledger_default_url(char *out, size_t outlen);

/* Connects, creates the schema if missing (and, for the default URL only, the directory of the
 * database file), and starts the writer thread. p NULL means the defaults.
 *   PD_ERR_INVALID   the URL has no known scheme, or p is out of bounds
 *   PD_ERR_IO        the database cannot be opened or reached, or the schema cannot be made
 *   PD_ERR_NOT_FOUND the database has a newer schema version than this build knows
 * On error *out is NULL and err says why; nothing is left running. */
pd_result pd_ledger_open(const char *url, const pd_ledger_params *p, pd_ledger **out, char *err,
                         size_t errlen);

/* Queues a copy of r without blocking.
 *   PD_OK            queued: it will be written unless the process dies first
 *   PD_ERR_TOO_LARGE the ring is full: dropped and counted (stats.dropped)
 *   PD_ERR_INVALID   r has no id; nothing counted
 *   PD_ERR_CLOSED    pd_ledger_close has begun; nothing counted
 * l NULL is PD_ERR_CLOSED. */
pd_result pd_ledger_submit(pd_ledger *l, const pd_ledger_record *r);

typedef struct pd_ledger_stats {
    uint64_t capacity;
    uint64_t depth;      /* queued and not yet committed, the batch being written included */
    uint64_t submitted;  /* accepted by pd_ledger_submit */
    uint64_t written;    /* committed rows */
    uint64_t duplicates; /* PostgreSQL: skipped, a row with the same id was already there */
    uint64_t dropped;    /* refused: the ring was full */
    uint64_t failed;     /* given up after database errors */
    uint64_t errors;     /* failed write attempts (each retry counts) */
    uint64_t batches;    /* committed transactions: written / batches is the batch size */
    uint64_t catchups;   /* times the writer left SCHED_IDLE because the ring backed up */
    bool idle_priority;  /* the writer may run SCHED_IDLE (see ledger.c, "Priority") */
} pd_ledger_stats;
/* After close: submitted == written + duplicates + failed. */

/* A consistent-enough snapshot for metrics (each counter is read atomically on its own). */
void pd_ledger_get_stats(const pd_ledger *l, pd_ledger_stats *out);

/* The URL without secrets, for logs ("postgres://user@host:port/db"); owned by l. */
const char *pd_ledger_describe(const pd_ledger *l);

/* Writes everything queued (bounded by close_timeout_ms when the database fails), stops the
 * writer, disconnects and frees. If stats is not NULL it receives the final counters. NULL is
 * a no-op. */
void pd_ledger_close(pd_ledger *l, pd_ledger_stats *stats);

/* ---- reading back (for reports) -------------------------------------------------------------- */

/* Called for each row; r and its strings are valid during the call only. Non-zero stops. */
typedef int (*pd_ledger_each_cb)(void *ud, const pd_ledger_record *r);

/* Calls cb for each row with since_ms <= ts_ms < until_ms, in ts_ms order (within a millisecond
 * SQLite's write order, PostgreSQL's id order), over its own short-lived read connection (a
 * running writer is not disturbed; SQLite WAL readers do not block it). Rows are streamed, not
 * loaded whole.
 *   PD_ERR_INVALID   bad URL
 *   PD_ERR_IO        the database cannot be read
 *   PD_ERR_NOT_FOUND no ledger there (no schema), or a newer schema version */
pd_result pd_ledger_each(const char *url, int64_t since_ms, int64_t until_ms, pd_ledger_each_cb cb,
                         void *ud, char *err, size_t errlen);

/* ---- the backend interface (used by src/ledger/{sqlite,postgres}.c only) --------------------
 * A backend is a function table over one connection, used by one thread at a time. SQL is
 * generated from pd_ledger_fields, so both backends have the same columns by construction. */

typedef enum pd_ledger_kind {
    PD_LEDGER_TEXT, /* const char *: NULL or "" is NULL */
    PD_LEDGER_I64,  /* int64_t: < 0 is NULL unless required */
    PD_LEDGER_I32,  /* int: < 0 is NULL unless required */
    PD_LEDGER_F64,  /* double: < 0 or NaN is NULL */
    PD_LEDGER_BOOL  /* bool: never NULL */
} pd_ledger_kind;

typedef struct pd_ledger_field {
    const char *name;
    pd_ledger_kind kind;
    size_t offset; /* in pd_ledger_record */
    bool required; /* NOT NULL */
} pd_ledger_field;

extern const pd_ledger_field pd_ledger_fields[];
extern const size_t pd_ledger_nfields;

/* Field access by table entry. The getters return false for NULL. */
bool pd_ledger_field_text(const pd_ledger_record *r, const pd_ledger_field *f, const char **v);
bool pd_ledger_field_int(const pd_ledger_record *r, const pd_ledger_field *f, int64_t *v);
bool pd_ledger_field_real(const pd_ledger_record *r, const pd_ledger_field *f, double *v);
/* Setters for rows read back: text stored as given (not copied); a NULL sets unknown. */
void pd_ledger_field_set_text(pd_ledger_record *r, const pd_ledger_field *f, const char *v);
void pd_ledger_field_set_int(pd_ledger_record *r, const pd_ledger_field *f, int64_t v);
void pd_ledger_field_set_real(pd_ledger_record *r, const pd_ledger_field *f, double v);
void pd_ledger_field_set_null(pd_ledger_record *r, const pd_ledger_field *f);

/* SQL generated from the table, appended to out (which has no limit). types[kind] is the column
   type of each pd_ledger_kind; placeholders are <mark>1, <mark>2, ... ('?' for SQLite, '$' for
   PostgreSQL). key is how the table is keyed:
     NULL  id is the primary key, and the insert skips an id already there (ON CONFLICT (id) DO
           NOTHING); the select takes since_ms and until_ms as parameters 1 and 2 and orders by
           (ts_ms, id), which wants an index on ts_ms.
     name  an integer primary key of that name comes first, and id is not unique; the insert
           binds the key as parameter 1 and the fields from 2 on; the select also bounds the key
           to [parameter 3, parameter 4] and orders by it (a key that rises with ts_ms).
   pd_ledger_sql_columns appends the fields' names, comma-separated. */
void pd_ledger_sql_create(pd_buf *out, const char *const types[5], const char *key);
void pd_ledger_sql_columns(pd_buf *out);
void pd_ledger_sql_insert(pd_buf *out, char mark, const char *key);
void pd_ledger_sql_select(pd_buf *out, char mark, const char *key);

typedef struct pd_ledger_backend {
    const char *name;
    /* target: the file path (sqlite) or the whole URL (postgres). writer: create the schema if
       missing; otherwise require it (PD_ERR_NOT_FOUND). PD_ERR_NOT_FOUND too for a newer
       schema version. */
    pd_result (*open)(const char *target, bool writer, void **conn, char *err, size_t errlen);
    /* One transaction: all n rows or none. *inserted: rows added (the others were present).
       PD_ERR_IO: connection or disk trouble, worth retrying as is; PD_ERR_INVALID: the database
       refused the data. */
    pd_result (*insert)(void *conn, const pd_ledger_record *recs, size_t n, size_t *inserted,
                        char *err, size_t errlen);
    pd_result (*each)(void *conn, int64_t since_ms, int64_t until_ms, pd_ledger_each_cb cb,
                      void *ud, char *err, size_t errlen);
    /* "scheme://..." without secrets, into out. */
    void (*describe)(void *conn, char *out, size_t outlen);
    void (*close)(void *conn);
} pd_ledger_backend;

/* Backends call this on the writer thread around a step that writes through the filesystem
   (SQLite's COMMIT: WAL appends, and at a checkpoint fsync): begin true before, false after.
   While the writer runs SCHED_IDLE, such a step runs at SCHED_OTHER (nice +10): a SCHED_IDLE
   thread starved while it holds a filesystem journal handle would stall every task that
   writes to that filesystem, workers' log lines included. A no-op on other threads. */
void pd_ledger_writer_io(bool begin);

extern const pd_ledger_backend pd_ledger_sqlite;
extern const pd_ledger_backend pd_ledger_postgres;

#endif
