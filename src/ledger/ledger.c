/* ledger.c: the record, the ring and the writer thread; the databases are in sqlite.c and
 * postgres.c behind pd_ledger_backend.
 *
 * The ring (Dmitry Vyukov's bounded MPMC queue, used here with one consumer). Cell i starts
 * with seq = i. A producer at position pos may fill cell pos & mask when its seq == pos (free in
 * this lap); it claims pos with a CAS on enq, copies the record, then publishes with
 * seq = pos + 1. The writer reads cells from deq while seq == pos + 1, writes them as one
 * batch, and only then frees each one for the next lap with seq = pos + capacity and advances
 * deq. So a full ring (seq < pos) includes the batch in flight: capacity is exactly what a
 * crash can lose, and depth = enq − deq is exactly what is not yet committed.
 *
 * Waking the writer. It sleeps on a condition variable for at most flush_ms. A producer that
 * sees a whole batch waiting signals it, but only the first one after the writer last slept
 * (wake_sent), so a busy ring costs one relaxed load per submit, not a lock. The writer resets
 * wake_sent and rechecks the ring under the mutex before sleeping, and a producer signals under
 * that mutex, so the signal cannot fall between the check and the sleep. A producer only ever
 * tries the mutex: when the writer holds it, the writer is awake (between its check and its
 * sleep, or just woken), and a worker must not wait for a thread that runs at a lower priority
 * (below) and may be off the CPU for milliseconds while it holds the lock. The producer then
 * clears wake_sent so that the next submit tries again; if none comes, the timer wakes the
 * writer within flush_ms, which the contract allows anyway.
 *
 * Batching. After every batch the writer sleeps until a whole batch is waiting or flush_ms has
 * passed; it goes straight on only while a whole batch is already waiting (a backlog). Looping
 * straight back commits whatever few records arrived during the last write: steady traffic
 * became a run of small transactions, and after a full batch the next one was always short
 * (at 2,000 req/s with batch_max 256: 256 and ~40 in turn, ~150 on average). Per record, a
 * transaction's fixed cost (the WAL frames of every page it touched, the tail pages of the table
 * and both indexes rewritten each time, the locks) is what a small batch pays:
 * bench/ledger_writer measured 150-row transactions at about 1.4x the CPU per record of
 * 400-row ones. A record still waits at most about flush_ms.
 *
 * Priority. A batch is one to two milliseconds of CPU (~400 records at 3-6 µs in a loaded
 * gateway). On a machine with fewer cores than runnable threads, whatever a worker had to do
 * while the writer held its core waited for the rest of that time, and at 2,000 req/s the
 * writer's ~1% of a core lands exactly in the p99. A nice value does not prevent it: a woken task
 * preempts only when the scheduler (EEVDF) would pick it, and a task it just picked may keep its
 * protected slice (RUN_TO_PARITY) whatever the weights; measured with perf sched under load, tasks
 * that needed the core of a nice-10 writer waited up to ~1.2 ms. The writer therefore runs as
 * SCHED_IDLE: a CPU running only SCHED_IDLE tasks counts as idle when a woken task picks its CPU,
 * and a woken normal task preempts a SCHED_IDLE one at once, before any fairness rule is consulted.
 * SCHED_IDLE weighs 3 against nice 0's 1024, so with the cores saturated by other work it would
 * starve; when the ring is a quarter full (CATCHUP_FRACTION), or close has begun, the writer
 * switches to SCHED_OTHER at nice WRITER_NICE (a tenth of a normal task's weight, far more than it
 * needs) until the ring is drained, then goes back. And SCHED_IDLE is only for work in user space:
 * a backend's steps that write through the filesystem (SQLite's COMMIT, with its WAL appends and,
 * at a checkpoint, fsync) run at SCHED_OTHER (pd_ledger_writer_io), because ext4 may hold a journal
 * handle across a reschedule point there, and a SCHED_IDLE thread starved while holding one
 * stalls every writer on the filesystem (the suspected cause of a sqlite gateway's p99 of
 * 0.25-0.49 s in 3 of 7 rounds on a loaded machine, against 1-3 ms with the ledger off). Leaving
 * SCHED_IDLE needs CAP_SYS_NICE or an RLIMIT_NICE of at least 20 - WRITER_NICE (Linux refuses it
 * otherwise); without them the writer stays at nice WRITER_NICE and says so once in the log, as
 * SCHED_IDLE with no way back could starve.
 *
 * Memory. The writer's allocations (SQLite's page cache, statements) come from its own malloc
 * arena, never the workers'. But while that arena grows, glibc extends it page by page with
 * mprotect, which takes the process's mmap lock for writing: a worker's page fault or mmap
 * then waits, and behind a preempted low-priority writer that wait is long (observed: 0.05-2 ms
 * per call, ~500 calls while the page cache fills). So the writer grows its arena once, before
 * its first batch (WARM_ARENA bytes, allocated and freed: the address range stays writable and
 * later growth inside it is bookkeeping only; the pages go back to the kernel). */
#include "ledger/ledger.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"

#define CAPACITY_MAX ((size_t)1 << 18)
#define BATCH_MAX 1024
#define BACKOFF_FIRST_MS 100
#define WRITER_NICE 10
#define CATCHUP_FRACTION 4            /* ring depth >= capacity / 4: leave SCHED_IDLE */
#define WARM_ARENA ((size_t)16 << 20) /* above the writer's page cache (SQLite's 2 MiB) */
#define WARM_BLOCK ((size_t)64 << 10) /* below glibc's mmap threshold: from the arena */

/* ---- fields ---------------------------------------------------------------------------------- */

/* clang-format off */
#define F(name, kind, req) {#name, kind, offsetof(pd_ledger_record, name), req}
/* clang-format on */
const pd_ledger_field pd_ledger_fields[] = {
    F(id, PD_LEDGER_TEXT, true),
    F(ts_ms, PD_LEDGER_I64, true),
    F(route, PD_LEDGER_TEXT, false),
    F(target, PD_LEDGER_TEXT, false),
    F(provider, PD_LEDGER_TEXT, false),
    F(model, PD_LEDGER_TEXT, false),
    F(upstream_model, PD_LEDGER_TEXT, false),
    F(status, PD_LEDGER_I32, true),
    F(stream, PD_LEDGER_BOOL, true),
    F(attempts, PD_LEDGER_I32, true),
    F(prompt_tokens, PD_LEDGER_I64, false),
    F(completion_tokens, PD_LEDGER_I64, false),
    F(cached_tokens, PD_LEDGER_I64, false),
    F(reasoning_tokens, PD_LEDGER_I64, false),
    F(cost_usd, PD_LEDGER_F64, false),
    F(ttft_ms, PD_LEDGER_F64, false),
    F(total_ms, PD_LEDGER_F64, false),
    F(upstream_ms, PD_LEDGER_F64, false),
    F(overhead_ms, PD_LEDGER_F64, false),
    F(dns_ms, PD_LEDGER_F64, false),
    F(connect_ms, PD_LEDGER_F64, false),
    F(tls_ms, PD_LEDGER_F64, false),
    F(ttfb_ms, PD_LEDGER_F64, false),
    F(tokens_per_s, PD_LEDGER_F64, false),
    F(pii_types, PD_LEDGER_TEXT, false),
    F(error, PD_LEDGER_TEXT, false),
};
#undef F
const size_t pd_ledger_nfields = sizeof(pd_ledger_fields) / sizeof(pd_ledger_fields[0]);

#define AT(r, f, type) ((type *)(void *)((char *)(r) + (f)->offset))
#define CAT(r, f, type) ((const type *)(const void *)((const char *)(r) + (f)->offset))

bool pd_ledger_field_text(const pd_ledger_record *r, const pd_ledger_field *f, const char **v)
{
    const char *s = *CAT(r, f, char *);
    *v = s && s[0] ? s : NULL;
    return *v != NULL;
}

bool pd_ledger_field_int(const pd_ledger_record *r, const pd_ledger_field *f, int64_t *v)
{
    switch (f->kind) {
    case PD_LEDGER_I64: *v = *CAT(r, f, int64_t); break;
    case PD_LEDGER_I32: *v = *CAT(r, f, int); break;
    case PD_LEDGER_BOOL: *v = *CAT(r, f, bool) ? 1 : 0; break;
    default: return false;
    }
    return f->required || *v >= 0;
}

bool pd_ledger_field_real(const pd_ledger_record *r, const pd_ledger_field *f, double *v)
{
    *v = *CAT(r, f, double);
    return !isnan(*v) && *v >= 0;
}

void pd_ledger_field_set_text(pd_ledger_record *r, const pd_ledger_field *f, const char *v)
{
    *AT(r, f, const char *) = v;
}

void pd_ledger_field_set_int(pd_ledger_record *r, const pd_ledger_field *f, int64_t v)
{
    switch (f->kind) {
    case PD_LEDGER_I64: *AT(r, f, int64_t) = v; break;
    case PD_LEDGER_I32: *AT(r, f, int) = (int)v; break;
    case PD_LEDGER_BOOL: *AT(r, f, bool) = v != 0; break;
    case PD_LEDGER_F64: *AT(r, f, double) = (double)v; break;
    case PD_LEDGER_TEXT: break;
    }
}

void pd_ledger_field_set_real(pd_ledger_record *r, const pd_ledger_field *f, double v)
{
    if (f->kind == PD_LEDGER_F64)
        *AT(r, f, double) = v;
    else
        pd_ledger_field_set_int(r, f, (int64_t)v);
}

void pd_ledger_field_set_null(pd_ledger_record *r, const pd_ledger_field *f)
{
    switch (f->kind) {
    case PD_LEDGER_TEXT: *AT(r, f, const char *) = NULL; break;
    case PD_LEDGER_I64: *AT(r, f, int64_t) = PD_LEDGER_UNKNOWN; break;
    case PD_LEDGER_I32: *AT(r, f, int) = PD_LEDGER_UNKNOWN; break;
    case PD_LEDGER_F64: *AT(r, f, double) = PD_LEDGER_UNKNOWN; break;
    case PD_LEDGER_BOOL: *AT(r, f, bool) = false; break;
    }
}

/* ---- the record ------------------------------------------------------------------------------ */

void pd_ledger_record_init(pd_ledger_record *r)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < pd_ledger_nfields; i++) {
        const pd_ledger_field *f = &pd_ledger_fields[i];
        if (!f->required)
            pd_ledger_field_set_null(r, f);
    }
}

static double span_ms(uint64_t from_us, uint64_t to_us)
{
    return to_us >= from_us ? (double)(to_us - from_us) / 1000.0 : 0.0;
}

static void set_upstream_times(pd_ledger_record *r, const pd_ledger_times *t)
{
    r->upstream_ms = (double)t->upstream_us / 1000.0;
    r->overhead_ms = r->total_ms > r->upstream_ms ? r->total_ms - r->upstream_ms : 0.0;
    r->dns_ms = (double)t->namelookup_us / 1000.0;
    r->connect_ms = span_ms(t->namelookup_us, t->connect_us);
    r->tls_ms = t->appconnect_us ? span_ms(t->connect_us, t->appconnect_us) : PD_LEDGER_UNKNOWN;
    r->ttfb_ms = t->starttransfer_us ? (double)t->starttransfer_us / 1000.0 : PD_LEDGER_UNKNOWN;
}

void pd_ledger_record_set_times(pd_ledger_record *r, const pd_ledger_times *t)
{
    r->total_ms = span_ms(t->start_us, t->end_us);
    r->ttft_ms = t->first_token_us ? span_ms(t->start_us, t->first_token_us) : PD_LEDGER_UNKNOWN;
    r->upstream_ms = r->overhead_ms = PD_LEDGER_UNKNOWN;
    r->dns_ms = r->connect_ms = r->tls_ms = r->ttfb_ms = PD_LEDGER_UNKNOWN;
    if (t->upstream_us)
        set_upstream_times(r, t);

    /* Decode rate of a stream when there is a span after the first token; otherwise the
       whole request, which is what a client of a non-streamed reply waits for. */
    double secs = 0;
    if (t->first_token_us && t->end_us >= t->first_token_us + 1000)
        secs = (double)(t->end_us - t->first_token_us) / 1e6;
    else
        secs = r->total_ms / 1000.0;
    r->tokens_per_s = PD_LEDGER_UNKNOWN;
    if (r->completion_tokens >= 0 && secs > 0)
        r->tokens_per_s = (double)r->completion_tokens / secs;
}

/* ---- slots: a record copied with capped strings ---------------------------------------------- */

/* The record's strings: where each is in pd_ledger_record and its cap (NUL included). */
static const struct {
    size_t at, cap;
} slot_texts[] = {
    {offsetof(pd_ledger_record, id), PD_LEDGER_ID_MAX},
    {offsetof(pd_ledger_record, route), PD_LEDGER_NAME_MAX},
    {offsetof(pd_ledger_record, target), PD_LEDGER_NAME_MAX},
    {offsetof(pd_ledger_record, provider), PD_LEDGER_NAME_MAX},
    {offsetof(pd_ledger_record, model), PD_LEDGER_MODEL_MAX},
    {offsetof(pd_ledger_record, upstream_model), PD_LEDGER_MODEL_MAX},
    {offsetof(pd_ledger_record, pii_types), PD_LEDGER_PII_MAX},
    {offsetof(pd_ledger_record, error), PD_LEDGER_ERROR_MAX},
};
#define NTEXT (sizeof(slot_texts) / sizeof(slot_texts[0]))
#define TEXT_CAP                                                                                   \
    (PD_LEDGER_ID_MAX + 3 * PD_LEDGER_NAME_MAX + 2 * PD_LEDGER_MODEL_MAX + PD_LEDGER_PII_MAX +     \
     PD_LEDGER_ERROR_MAX)
#define NO_TEXT UINT16_MAX
_Static_assert(TEXT_CAP < NO_TEXT, "string offsets fit in uint16_t");

/* The strings are packed one after the other, not kept in a buffer of its cap each: a typical
   record's strings then fill two cache lines instead of one line per field (eight). A worker
   writes those lines and the writer reads them back, on the same core, so every line is cache
   the worker loses to the ledger. (The gain was within the noise of bench/ledger-overhead on
   2026-11-28: CPU per request sqlite/off 1.02 against 1.04 at 2,000 req/s, one run each.) */
typedef struct slot {
    uint16_t off[NTEXT];  /* where each string starts in text; NO_TEXT: NULL or "" */
    pd_ledger_record num; /* the numbers; its string pointers are not used */
    char text[TEXT_CAP];
} slot;

/* Length of the valid UTF-8 sequence at s, 0 when s[0] does not start one. Stops at a NUL,
   which is never a continuation byte. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || /* overlong, surrogate */
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))   /* overlong, > U+10FFFF */
        return 0;
    return n;
}

/* Copies src into dst[cap]: valid UTF-8 only ('?' for each bad byte), never cut inside a
   character. Returns the length copied, NUL not included. */
static size_t copy_text(char *dst, size_t cap, const char *src)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    while (*s) {
        size_t n = utf8_seq(s);
        if (o + (n ? n : 1) >= cap)
            break;
        if (n) {
            memcpy(dst + o, s, n);
            o += n;
            s += n;
        } else {
            dst[o++] = '?';
            s++;
        }
    }
    dst[o] = '\0';
    return o;
}

static const char **text_at(pd_ledger_record *r, size_t i)
{
    return (const char **)(void *)((char *)r + slot_texts[i].at);
}

static void slot_fill(slot *s, const pd_ledger_record *r)
{
    s->num = *r;
    size_t o = 0; /* at most TEXT_CAP: each string takes at most its cap */
    for (size_t i = 0; i < NTEXT; i++) {
        const char *src = *text_at(&s->num, i);
        size_t n = src && src[0] ? copy_text(s->text + o, slot_texts[i].cap, src) : 0;
        s->off[i] = n ? (uint16_t)o : NO_TEXT;
        o += n ? n + 1 : 0;
    }
}

static void slot_view(const slot *s, pd_ledger_record *r)
{
    *r = s->num;
    for (size_t i = 0; i < NTEXT; i++)
        *text_at(r, i) = s->off[i] == NO_TEXT ? NULL : s->text + s->off[i];
}

/* ---- the ledger ------------------------------------------------------------------------------ */

typedef struct cell {
    _Atomic size_t seq;
    slot s;
} cell;

struct pd_ledger {
    /* Producers' line: claimed positions. */
    alignas(64) _Atomic size_t enq;
    _Atomic int stopping;
    _Atomic int wake_sent;
    /* Writer's line: committed positions and its counters. */
    alignas(64) _Atomic size_t deq;
    _Atomic uint64_t written, duplicates, failed, errors, batches, catchups;
    _Atomic bool idle_ok; /* set once by the writer: it may run SCHED_IDLE */
    alignas(64) _Atomic uint64_t dropped;
    _Atomic uint64_t stop_deadline_us;

    const pd_ledger_backend *be;
    void *conn;
    pd_ledger_params p;
    cell *cells;
    size_t mask;
    pd_ledger_record *batch; /* batch_max views into cells: writer only */
    bool failing;            /* writer only: a failure was logged, its recovery not yet */
    bool idle_now;           /* writer only: it runs SCHED_IDLE now */
    bool giving_up;          /* writer only: close_timeout_ms passed, fail the rest */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    char desc[512];
};

void pd_ledger_default_params(pd_ledger_params *p)
{
    p->capacity = 8192;
    p->batch_max = 512;
    p->flush_ms = 200;
    p->retry_max_ms = 5000;
    p->close_timeout_ms = 5000;
}

static pd_result check_params(pd_ledger_params *p, char *err, size_t errlen)
{
    if (p->capacity < 2 || p->capacity > CAPACITY_MAX || p->batch_max < 1 ||
        p->batch_max > BATCH_MAX || p->flush_ms < 1 || p->flush_ms > 60000 ||
        p->retry_max_ms < BACKOFF_FIRST_MS || p->close_timeout_ms > 600000) {
        snprintf(err, errlen, "ledger: parameters out of bounds (capacity 2..%zu, batch 1..%d)",
                 CAPACITY_MAX, BATCH_MAX);
        return PD_ERR_INVALID;
    }
    size_t cap = 2;
    while (cap < p->capacity)
        cap *= 2;
    p->capacity = cap;
    if (p->batch_max > cap)
        p->batch_max = cap;
    return PD_OK;
}

pd_result pd_ledger_default_url(char *out, size_t outlen)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, outlen, "sqlite://%s/pendulum/ledger.db", xdg);
    else if (home && home[0] == '/')
        n = snprintf(out, outlen, "sqlite://%s/.local/state/pendulum/ledger.db", home);
    else
        n = snprintf(out, outlen, "sqlite://pendulum-ledger.db");
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen)
            out[0] = '\0';
        return PD_ERR_TOO_LARGE;
    }
    return PD_OK;
}

/* mkdir -p of the directory holding path (mode 0700: the ledger is private). */
static pd_result make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *dir = pd_xstrdup(path);
    pd_result rc = PD_OK;
    char *end = strrchr(dir, '/');
    if (end) {
        *end = '\0';
        for (char *p = dir + 1; rc == PD_OK && p <= end; p++) {
            if (*p != '/' && *p != '\0')
                continue;
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "ledger: cannot create %s: %s", dir, strerror(errno));
                rc = PD_ERR_IO;
            }
            *p = saved;
        }
    }
    free(dir);
    return rc;
}

/* Picks the backend of url; *target (allocated) is what its open takes. */
static pd_result resolve(const char *url, const pd_ledger_backend **be, char **target, char *err,
                         size_t errlen)
{
    if (strncmp(url, "sqlite://", 9) == 0 && url[9]) {
        *be = &pd_ledger_sqlite;
        *target = pd_xstrdup(url + 9);
        return PD_OK;
    }
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        *be = &pd_ledger_postgres;
        *target = pd_xstrdup(url);
        return PD_OK;
    }
    /* Only the scheme is echoed: a mistyped postgres URL may hold a password. */
    const char *colon = strchr(url, ':');
    int len = colon && colon - url < 24 ? (int)(colon - url) : 0;
    snprintf(err, errlen,
             "ledger: unknown URL scheme '%.*s' (want sqlite:///path, sqlite://relative/path "
             "or postgres://...)",
             len, url);
    return PD_ERR_INVALID;
}

/* Resolves url (NULL/"": the default, whose directory is created) and connects. */
static pd_result connect_url(const char *url, bool writer, const pd_ledger_backend **be,
                             void **conn, char *err, size_t errlen)
{
    char def[4096];
    bool is_default = !url || !url[0];
    if (is_default) {
        if (pd_ledger_default_url(def, sizeof(def)) != PD_OK) {
            snprintf(err, errlen, "ledger: the default path is too long");
            return PD_ERR_INVALID;
        }
        url = def;
    }
    char *target = NULL;
    pd_result rc = resolve(url, be, &target, err, errlen);
    if (rc)
        goto out;
    if (is_default && writer)
        rc = make_parent_dirs(target, err, errlen);
    if (rc)
        goto out;
    rc = (*be)->open(target, writer, conn, err, errlen);
out:
    free(target);
    return rc;
}

/* ---- the ring -------------------------------------------------------------------------------- */

static bool ring_empty(pd_ledger *l)
{
    return atomic_load_explicit(&l->deq, memory_order_relaxed) ==
           atomic_load_explicit(&l->enq, memory_order_relaxed);
}

static bool head_ready(pd_ledger *l)
{
    size_t pos = atomic_load_explicit(&l->deq, memory_order_relaxed);
    return atomic_load_explicit(&l->cells[pos & l->mask].seq, memory_order_acquire) == pos + 1;
}

static void wake_writer(pd_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void maybe_wake(pd_ledger *l, size_t enq_after)
{
    size_t deq = atomic_load_explicit(&l->deq, memory_order_relaxed);
    if (enq_after - deq < l->p.batch_max)
        return;
    if (atomic_load_explicit(&l->wake_sent, memory_order_relaxed) ||
        atomic_exchange_explicit(&l->wake_sent, 1, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&l->mu) != 0) {
        atomic_store_explicit(&l->wake_sent, 0, memory_order_relaxed); /* a later submit retries */
        return;
    }
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

pd_result pd_ledger_submit(pd_ledger *l, const pd_ledger_record *r)
{
    if (!l || atomic_load_explicit(&l->stopping, memory_order_acquire))
        return PD_ERR_CLOSED;
    if (!r || !r->id || !r->id[0])
        return PD_ERR_INVALID;
    size_t pos = atomic_load_explicit(&l->enq, memory_order_relaxed);
    cell *c;
    for (;;) {
        c = &l->cells[pos & l->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0 && atomic_compare_exchange_weak_explicit(
                            &l->enq, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed))
            break; /* claimed */
        if (dif < 0) {
            atomic_fetch_add_explicit(&l->dropped, 1, memory_order_relaxed);
            return PD_ERR_TOO_LARGE;
        }
        if (dif > 0) /* another producer took pos: look again */
            pos = atomic_load_explicit(&l->enq, memory_order_relaxed);
    }
    slot_fill(&c->s, r);
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    maybe_wake(l, pos + 1);
    return PD_OK;
}

/* Views the published cells from deq into l->batch, up to batch_max. */
static size_t collect(pd_ledger *l)
{
    size_t pos = atomic_load_explicit(&l->deq, memory_order_relaxed);
    size_t n = 0;
    while (n < l->p.batch_max) {
        cell *c = &l->cells[(pos + n) & l->mask];
        if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + n + 1)
            break;
        slot_view(&c->s, &l->batch[n]);
        n++;
    }
    return n;
}

/* Frees the first n cells for the producers' next lap. */
static void release(pd_ledger *l, size_t n)
{
    size_t pos = atomic_load_explicit(&l->deq, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&l->cells[(pos + i) & l->mask].seq, pos + i + l->mask + 1,
                              memory_order_release);
    atomic_store_explicit(&l->deq, pos + n, memory_order_release);
}

/* ---- the writer ------------------------------------------------------------------------------ */

static void timed_wait(pd_ledger *l, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&l->cv, &l->mu, &ts);
}

static void idle_wait(pd_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    atomic_store_explicit(&l->wake_sent, 0, memory_order_relaxed);
    if (!head_ready(l)) {
        bool stopping = atomic_load_explicit(&l->stopping, memory_order_acquire);
        /* Stopping with cells claimed but not yet published: a submit that raced close. */
        if (!stopping || !ring_empty(l))
            timed_wait(l, stopping ? 1 : l->p.flush_ms);
    }
    pthread_mutex_unlock(&l->mu);
}

/* After a batch: sleep until batch_max records wait (a producer wakes us), flush_ms passes, or
   close begins; no sleep when one of those is already true. */
static void batch_wait(pd_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    atomic_store_explicit(&l->wake_sent, 0, memory_order_relaxed);
    size_t deq = atomic_load_explicit(&l->deq, memory_order_relaxed);
    size_t enq = atomic_load_explicit(&l->enq, memory_order_relaxed);
    if (!atomic_load_explicit(&l->stopping, memory_order_acquire) && enq - deq < l->p.batch_max)
        timed_wait(l, l->p.flush_ms);
    pthread_mutex_unlock(&l->mu);
}

static void nap(pd_ledger *l, unsigned ms)
{
    pthread_mutex_lock(&l->mu);
    timed_wait(l, ms);
    pthread_mutex_unlock(&l->mu);
}

static bool past_close_deadline(pd_ledger *l)
{
    if (!atomic_load_explicit(&l->stopping, memory_order_acquire))
        return false;
    return pd_now_us() >= atomic_load_explicit(&l->stop_deadline_us, memory_order_relaxed);
}

static void note_failure(pd_ledger *l, pd_result rc, const char *why)
{
    atomic_fetch_add_explicit(&l->errors, 1, memory_order_relaxed);
    if (l->failing)
        return;
    l->failing = true;
    pd_log_info("ledger: writing to %s failed (%s: %s); retrying", l->desc, pd_result_str(rc), why);
}

static void note_success(pd_ledger *l, size_t n, size_t inserted)
{
    atomic_fetch_add_explicit(&l->written, inserted, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->duplicates, n - inserted, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->batches, 1, memory_order_relaxed);
    if (l->failing)
        pd_log_info("ledger: writing to %s again", l->desc);
    l->failing = false;
}

/* Writes recs[0..n) in one transaction, retrying connection trouble with backoff. When the
   database refuses the data, the records are tried one by one so one bad record costs only
   itself. Every record ends up written, a duplicate, or failed. */
static void write_records(pd_ledger *l, const pd_ledger_record *recs, size_t n)
{
    unsigned backoff = BACKOFF_FIRST_MS;
    for (;;) {
        if (l->giving_up || (l->giving_up = past_close_deadline(l))) {
            atomic_fetch_add_explicit(&l->failed, n, memory_order_relaxed);
            return;
        }
        char why[256] = "";
        size_t inserted = 0;
        pd_result rc = l->be->insert(l->conn, recs, n, &inserted, why, sizeof(why));
        if (rc == PD_OK) {
            note_success(l, n, inserted);
            return;
        }
        note_failure(l, rc, why);
        if (rc != PD_ERR_IO) {
            if (n == 1)
                atomic_fetch_add_explicit(&l->failed, 1, memory_order_relaxed);
            for (size_t i = 0; n > 1 && i < n; i++)
                write_records(l, recs + i, 1);
            return;
        }
        nap(l, backoff);
        backoff = backoff * 2 > l->p.retry_max_ms ? l->p.retry_max_ms : backoff * 2;
    }
}

/* Switches the writer between SCHED_IDLE and SCHED_OTHER (at its nice value). */
static bool set_idle(bool idle)
{
    struct sched_param sp = {0};
    int e = pthread_setschedparam(pthread_self(), idle ? SCHED_IDLE : SCHED_OTHER, &sp);
    return e == 0;
}

/* Whether this thread could leave SCHED_IDLE again: Linux asks for the right to lower the nice
   value it has, so try lowering it by one and put it back. */
static bool can_leave_idle(id_t tid, int nice_now)
{
    if (nice_now <= -20 || setpriority(PRIO_PROCESS, tid, nice_now - 1) != 0)
        return false;
    return setpriority(PRIO_PROCESS, tid, nice_now) == 0;
}

/* Grows this thread's malloc arena once (see "Memory" above). */
static void warm_arena(void)
{
    enum { N = (int)(WARM_ARENA / WARM_BLOCK) };
    void *volatile blocks[N]; /* volatile: the compiler may not drop malloc-free pairs */
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(WARM_BLOCK);
    for (int i = N - 1; i >= 0; i--)
        free(blocks[i]);
}

/* Names the thread "pd-ledger" (top -H, perf, and bench/ledger-overhead, which reads its CPU
   time), lowers its priority (see "Priority" above) and grows its arena. Failing any of it is
   harmless: the ledger works under any name and at any priority, so it is logged, not fatal. */
static void writer_setup(pd_ledger *l)
{
    int e = pthread_setname_np(pthread_self(), "pd-ledger");
    if (e)
        pd_log_info("ledger: could not name the writer thread (%s)", strerror(e));
    id_t tid = (id_t)gettid();
    errno = 0;
    int now = getpriority(PRIO_PROCESS, tid);
    if (now == -1 && errno)
        now = 0;
    int want = now + WRITER_NICE > 19 ? 19 : now + WRITER_NICE;
    if (want != now && setpriority(PRIO_PROCESS, tid, want) != 0) {
        pd_log_info("ledger: could not lower the writer's priority (%s)", strerror(errno));
        want = now;
    }
    l->idle_now = can_leave_idle(tid, want) && set_idle(true);
    atomic_store_explicit(&l->idle_ok, l->idle_now, memory_order_relaxed);
    if (!l->idle_now)
        pd_log_info("ledger: the writer runs at nice %d, not SCHED_IDLE (leaving SCHED_IDLE "
                    "when the queue backs up needs CAP_SYS_NICE or RLIMIT_NICE >= %d)",
                    want, 20 - want + 1);
    warm_arena();
}

/* The writer's own ledger, on its thread only (pd_ledger_writer_io). */
static _Thread_local pd_ledger *writer_self;

void pd_ledger_writer_io(bool begin)
{
    pd_ledger *l = writer_self;
    if (l && l->idle_now)
        set_idle(!begin);
}

/* SCHED_IDLE while the ring is short; SCHED_OTHER while it backs up or close drains it. */
static void writer_priority(pd_ledger *l)
{
    if (!atomic_load_explicit(&l->idle_ok, memory_order_relaxed))
        return;
    size_t depth = atomic_load_explicit(&l->enq, memory_order_relaxed) -
                   atomic_load_explicit(&l->deq, memory_order_relaxed);
    bool backlog = depth >= l->p.capacity / CATCHUP_FRACTION;
    bool stopping = atomic_load_explicit(&l->stopping, memory_order_relaxed);
    /* back to SCHED_IDLE only once the backlog is under one batch */
    bool idle = !backlog && !stopping && (l->idle_now || depth < l->p.batch_max);
    if (idle == l->idle_now || !set_idle(idle))
        return;
    l->idle_now = idle;
    if (!idle && backlog)
        atomic_fetch_add_explicit(&l->catchups, 1, memory_order_relaxed);
}

static void *writer_main(void *arg)
{
    pd_ledger *l = arg;
    writer_self = l;
    writer_setup(l);
    for (;;) {
        writer_priority(l);
        size_t n = collect(l);
        if (n) {
            write_records(l, l->batch, n);
            release(l, n);
            writer_priority(l); /* a backlog just cleared: back to SCHED_IDLE before sleeping */
            batch_wait(l);      /* returns at once while a whole batch waits */
            continue;
        }
        if (atomic_load_explicit(&l->stopping, memory_order_acquire) && ring_empty(l))
            break;
        idle_wait(l);
    }
    return NULL;
}

/* ---- open, stats, close ---------------------------------------------------------------------- */

static pd_result init_sync(pd_ledger *l)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        return PD_ERR_NOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (e)
        return PD_ERR_NOMEM;
    if (pthread_mutex_init(&l->mu, NULL)) {
        pthread_cond_destroy(&l->cv);
        return PD_ERR_NOMEM;
    }
    return PD_OK;
}

/* The writer blocks every signal, so a process-directed SIGTERM is never delivered to it (its
   default action would end the process before the queue is flushed). */
static int start_writer(pd_ledger *l)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&l->thread, NULL, writer_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

static pd_ledger *ledger_new(const pd_ledger_params *p)
{
    size_t size = (sizeof(pd_ledger) + 63) & ~(size_t)63;
    pd_ledger *l = aligned_alloc(64, size);
    if (!l)
        return NULL;
    memset(l, 0, sizeof(*l));
    l->p = *p;
    l->mask = p->capacity - 1;
    l->cells = pd_xcalloc(p->capacity, sizeof(cell));
    for (size_t i = 0; i < p->capacity; i++)
        atomic_init(&l->cells[i].seq, i);
    l->batch = pd_xcalloc(p->batch_max, sizeof(pd_ledger_record));
    return l;
}

static void ledger_free(pd_ledger *l)
{
    free(l->cells);
    free(l->batch);
    free(l);
}

pd_result pd_ledger_open(const char *url, const pd_ledger_params *p, pd_ledger **out, char *err,
                         size_t errlen)
{
    pd_ledger_params params;
    const pd_ledger_backend *be = NULL;
    void *conn = NULL;
    *out = NULL;
    if (p)
        params = *p;
    else
        pd_ledger_default_params(&params);
    pd_result rc = check_params(&params, err, errlen);
    if (rc)
        return rc;
    rc = connect_url(url, true, &be, &conn, err, errlen);
    if (rc)
        return rc;

    pd_ledger *l = ledger_new(&params);
    if (!l || init_sync(l) != PD_OK) {
        snprintf(err, errlen, "ledger: out of memory");
        be->close(conn);
        if (l)
            ledger_free(l);
        return PD_ERR_NOMEM;
    }
    l->be = be;
    l->conn = conn;
    be->describe(conn, l->desc, sizeof(l->desc));
    if (start_writer(l) != 0) {
        snprintf(err, errlen, "ledger: cannot start the writer thread");
        be->close(conn);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        ledger_free(l);
        return PD_ERR_IO;
    }
    *out = l;
    return PD_OK;
}

void pd_ledger_get_stats(const pd_ledger *l, pd_ledger_stats *out)
{
    pd_ledger *m = (pd_ledger *)l; /* atomic loads take non-const pointers */
    memset(out, 0, sizeof(*out));
    if (!l)
        return;
    size_t deq = atomic_load_explicit(&m->deq, memory_order_acquire); /* deq first: enq >= it */
    size_t enq = atomic_load_explicit(&m->enq, memory_order_acquire);
    out->capacity = l->p.capacity;
    out->depth = enq - deq;
    out->submitted = enq;
    out->written = atomic_load_explicit(&m->written, memory_order_relaxed);
    out->duplicates = atomic_load_explicit(&m->duplicates, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&m->dropped, memory_order_relaxed);
    out->failed = atomic_load_explicit(&m->failed, memory_order_relaxed);
    out->batches = atomic_load_explicit(&m->batches, memory_order_relaxed);
    out->errors = atomic_load_explicit(&m->errors, memory_order_relaxed);
    out->catchups = atomic_load_explicit(&m->catchups, memory_order_relaxed);
    out->idle_priority = atomic_load_explicit(&m->idle_ok, memory_order_relaxed);
}

const char *pd_ledger_describe(const pd_ledger *l)
{
    return l ? l->desc : "";
}

void pd_ledger_close(pd_ledger *l, pd_ledger_stats *stats)
{
    if (!l)
        return;
    uint64_t deadline = pd_now_us() + (uint64_t)l->p.close_timeout_ms * 1000u;
    atomic_store_explicit(&l->stop_deadline_us, deadline, memory_order_relaxed);
    atomic_store_explicit(&l->stopping, 1, memory_order_release);
    wake_writer(l);
    pthread_join(l->thread, NULL);
    if (stats)
        pd_ledger_get_stats(l, stats);
    l->be->close(l->conn);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    ledger_free(l);
}

pd_result pd_ledger_each(const char *url, int64_t since_ms, int64_t until_ms, pd_ledger_each_cb cb,
                         void *ud, char *err, size_t errlen)
{
    const pd_ledger_backend *be = NULL;
    void *conn = NULL;
    pd_result rc = connect_url(url, false, &be, &conn, err, errlen);
    if (rc)
        return rc;
    rc = be->each(conn, since_ms, until_ms, cb, ud, err, errlen);
    be->close(conn);
    return rc;
}

/* ---- SQL shared by the backends -------------------------------------------------------------- */

void pd_ledger_sql_create(pd_buf *out, const char *const types[5], const char *key)
{
    pd_buf_append_str(out, "CREATE TABLE IF NOT EXISTS " PD_LEDGER_TABLE " (");
    if (key)
        pd_buf_printf(out, "%s %s PRIMARY KEY, ", key, types[PD_LEDGER_I64]);
    for (size_t i = 0; i < pd_ledger_nfields; i++) {
        const pd_ledger_field *f = &pd_ledger_fields[i];
        pd_buf_printf(out, "%s%s %s%s%s", i ? ", " : "", f->name, types[f->kind],
                      f->required ? " NOT NULL" : "", i == 0 && !key ? " PRIMARY KEY" : "");
    }
    pd_buf_append_str(out, ")");
}

void pd_ledger_sql_columns(pd_buf *out)
{
    for (size_t i = 0; i < pd_ledger_nfields; i++)
        pd_buf_printf(out, "%s%s", i ? ", " : "", pd_ledger_fields[i].name);
}

void pd_ledger_sql_insert(pd_buf *out, char mark, const char *key)
{
    size_t first = key ? 2 : 1;
    pd_buf_append_str(out, "INSERT INTO " PD_LEDGER_TABLE " (");
    if (key)
        pd_buf_printf(out, "%s, ", key);
    pd_ledger_sql_columns(out);
    pd_buf_append_str(out, ") VALUES (");
    if (key)
        pd_buf_printf(out, "%c1, ", mark);
    for (size_t i = 0; i < pd_ledger_nfields; i++)
        pd_buf_printf(out, "%s%c%zu", i ? ", " : "", mark, first + i);
    pd_buf_append_str(out, ")");
    /* A retried batch whose COMMIT did land must not write its rows twice. */
    if (!key)
        pd_buf_append_str(out, " ON CONFLICT (id) DO NOTHING");
}

void pd_ledger_sql_select(pd_buf *out, char mark, const char *key)
{
    pd_buf_append_str(out, "SELECT ");
    pd_ledger_sql_columns(out);
    pd_buf_append_str(out, " FROM " PD_LEDGER_TABLE " WHERE ");
    if (key)
        pd_buf_printf(out, "%s BETWEEN %c3 AND %c4 AND ", key, mark, mark);
    pd_buf_printf(out, "ts_ms >= %c1 AND ts_ms < %c2 ORDER BY %s", mark, mark,
                  key ? key : "ts_ms, id");
}
