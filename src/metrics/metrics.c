/* metrics.c: sharded counters and histograms, bounded label tables, the text exposition.
 *
 * Why a shard is updated with load + store instead of fetch_add: only its own thread writes
 * it, so there is no lost update to guard against, and a relaxed load/store pair compiles to
 * plain moves (a fetch_add would be a locked instruction). The atomics are there so that the
 * scraping thread's concurrent reads are defined behaviour and see whole values. */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 128
#define TOKEN_KINDS 4

static const char *const token_kinds[TOKEN_KINDS] = {"prompt", "completion", "cached", "reasoning"};

/* Upper bounds in seconds; +Inf is implicit. Latency: first token and whole requests (LLM
   replies take from milliseconds to minutes). Overhead: the gateway's own time. */
static const double latency_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                    2.5,   5,    10,    30,   60,  120,  300};
static const double overhead_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,   0.025,   0.05,   0.1,   0.25,   1};
#define NLAT (sizeof(latency_le) / sizeof(latency_le[0]))
#define NOVH (sizeof(overhead_le) / sizeof(overhead_le[0]))

/* ---- label tables ---------------------------------------------------------------------------- */

/* cap slots filled in order by CAS, never changed once set; index cap is "other". */
typedef struct names {
    unsigned cap;
    _Atomic(char *) *v;
} names;

typedef struct codes {
    unsigned cap;
    _Atomic int *v; /* status + 1; 0 is an empty slot */
} codes;

/* Valid UTF-8 only ('?' per bad byte), at most LABEL_MAX − 1 bytes, never cut inside a
   character. NULL and "" become "none". */
static void clean_label(char *dst, const char *src)
{
    const unsigned char *s = (const unsigned char *)(src && src[0] ? src : "none");
    size_t o = 0;
    while (*s) {
        size_t n = *s < 0x80 ? 1 : *s >= 0xF0 ? 4 : *s >= 0xE0 ? 3 : *s >= 0xC2 ? 2 : 0;
        for (size_t i = 1; i < n; i++)
            if ((s[i] & 0xC0) != 0x80)
                n = 0;
        if ((n == 3 && ((*s == 0xE0 && s[1] < 0xA0) || (*s == 0xED && s[1] > 0x9F))) ||
            (n == 4 && ((*s == 0xF0 && s[1] < 0x90) || (*s == 0xF4 && s[1] > 0x8F) || *s > 0xF4)))
            n = 0; /* overlong, surrogate, beyond U+10FFFF */
        size_t w = n ? n : 1;
        if (o + w >= LABEL_MAX)
            break;
        if (n)
            memcpy(dst + o, s, n);
        else
            dst[o] = '?';
        o += w;
        s += w;
    }
    dst[o] = '\0';
}

static unsigned name_index(names *t, const char *raw)
{
    char label[LABEL_MAX];
    clean_label(label, raw);
    for (unsigned i = 0; i < t->cap; i++) {
        char *cur = atomic_load_explicit(&t->v[i], memory_order_acquire);
        if (!cur) {
            char *mine = pd_xstrdup(label);
            if (atomic_compare_exchange_strong_explicit(&t->v[i], &cur, mine, memory_order_acq_rel,
                                                        memory_order_acquire))
                return i;
            free(mine); /* another thread filled the slot: cur is its name */
        }
        if (strcmp(cur, label) == 0)
            return i;
    }
    return t->cap;
}

static unsigned code_index(codes *t, int status)
{
    if (status < 0 || status > 999)
        return t->cap;
    for (unsigned i = 0; i < t->cap; i++) {
        int cur = atomic_load_explicit(&t->v[i], memory_order_acquire);
        if (cur == 0 && atomic_compare_exchange_strong_explicit(
                            &t->v[i], &cur, status + 1, memory_order_acq_rel, memory_order_acquire))
            return i;
        if (cur == status + 1)
            return i;
    }
    return t->cap;
}

/* ---- the registry ---------------------------------------------------------------------------- */

typedef struct hist {
    _Atomic uint64_t *counts; /* [series][nb + 1]: per bucket, not cumulative; last is +Inf */
    _Atomic double *sums;     /* [series] */
} hist;

struct pd_metrics_shard {
    _Atomic uint64_t *requests;     /* [route][target][status], each dimension + "other" */
    _Atomic uint64_t *tokens;       /* [target][kind] */
    _Atomic double *cost;           /* [target] */
    _Atomic uint64_t *cost_known;   /* [target]: requests in cost (not rendered) */
    _Atomic uint64_t *cost_unknown; /* [target] */
    hist ttft, request;             /* [target] */
    hist overhead;                  /* one series */
    const pd_metrics *m;
};

struct pd_metrics {
    pd_metrics_params p;
    unsigned nr, nt, ns; /* dimension sizes: cap + 1 ("other") */
    names routes, targets;
    codes statuses;
    pd_metrics_shard *shards;
    _Atomic uint64_t ledger_depth, ledger_capacity, ledger_written, ledger_dropped, ledger_failed;
    _Atomic uint64_t ledger_batches, ledger_catchups;
};

void pd_metrics_default_params(pd_metrics_params *p)
{
    p->shards = 1;
    p->max_routes = 32;
    p->max_targets = 32;
    p->max_statuses = 16;
}

static void hist_alloc(hist *h, size_t series, size_t nb)
{
    h->counts = pd_xcalloc(series * (nb + 1), sizeof(*h->counts));
    h->sums = pd_xcalloc(series, sizeof(*h->sums));
}

static void hist_free(hist *h)
{
    free(h->counts);
    free(h->sums);
}

static void shard_alloc(pd_metrics *m, pd_metrics_shard *s)
{
    s->m = m;
    s->requests = pd_xcalloc((size_t)m->nr * m->nt * m->ns, sizeof(*s->requests));
    s->tokens = pd_xcalloc((size_t)m->nt * TOKEN_KINDS, sizeof(*s->tokens));
    s->cost = pd_xcalloc(m->nt, sizeof(*s->cost));
    s->cost_known = pd_xcalloc(m->nt, sizeof(*s->cost_known));
    s->cost_unknown = pd_xcalloc(m->nt, sizeof(*s->cost_unknown));
    hist_alloc(&s->ttft, m->nt, NLAT);
    hist_alloc(&s->request, m->nt, NLAT);
    hist_alloc(&s->overhead, 1, NOVH);
}

static void shard_free(pd_metrics_shard *s)
{
    free(s->requests);
    free(s->tokens);
    free(s->cost);
    free(s->cost_known);
    free(s->cost_unknown);
    hist_free(&s->ttft);
    hist_free(&s->request);
    hist_free(&s->overhead);
}

pd_metrics *pd_metrics_new(const pd_metrics_params *p)
{
    pd_metrics_params d;
    pd_metrics_default_params(&d);
    if (p)
        d = *p;
    if (d.shards < 1 || d.shards > 1024 || d.max_routes < 1 || d.max_routes > 1024 ||
        d.max_targets < 1 || d.max_targets > 1024 || d.max_statuses < 1 || d.max_statuses > 128)
        return NULL;
    pd_metrics *m = pd_xcalloc(1, sizeof(*m));
    m->p = d;
    m->nr = d.max_routes + 1;
    m->nt = d.max_targets + 1;
    m->ns = d.max_statuses + 1;
    m->routes = (names){d.max_routes, pd_xcalloc(d.max_routes, sizeof(*m->routes.v))};
    m->targets = (names){d.max_targets, pd_xcalloc(d.max_targets, sizeof(*m->targets.v))};
    m->statuses = (codes){d.max_statuses, pd_xcalloc(d.max_statuses, sizeof(*m->statuses.v))};
    m->shards = pd_xcalloc(d.shards, sizeof(*m->shards));
    for (unsigned i = 0; i < d.shards; i++)
        shard_alloc(m, &m->shards[i]);
    return m;
}

static void names_free(names *t)
{
    for (unsigned i = 0; i < t->cap; i++)
        free(atomic_load_explicit(&t->v[i], memory_order_relaxed));
    free(t->v);
}

void pd_metrics_free(pd_metrics *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->p.shards; i++)
        shard_free(&m->shards[i]);
    free(m->shards);
    names_free(&m->routes);
    names_free(&m->targets);
    free(m->statuses.v);
    free(m);
}

pd_metrics_shard *pd_metrics_shard_at(pd_metrics *m, unsigned i)
{
    return m && i < m->p.shards ? &m->shards[i] : NULL;
}

/* ---- recording ------------------------------------------------------------------------------- */

static inline void add_u64(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void add_f64(_Atomic double *c, double v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static bool known(double v)
{
    return !isnan(v) && v >= 0;
}

static void observe(hist *h, size_t series, const double *le, size_t nb, double v)
{
    if (!known(v))
        return;
    size_t b = 0;
    while (b < nb && v > le[b])
        b++;
    add_u64(&h->counts[series * (nb + 1) + b], 1);
    add_f64(&h->sums[series], v);
}

void pd_metrics_request_init(pd_metrics_request *r)
{
    memset(r, 0, sizeof(*r));
    r->prompt_tokens = r->completion_tokens = r->cached_tokens = r->reasoning_tokens = -1;
    r->cost_usd = r->ttft_s = r->total_s = r->overhead_s = -1;
}

void pd_metrics_observe_request(pd_metrics_shard *s, const pd_metrics_request *r)
{
    if (!s)
        return;
    pd_metrics *m = (pd_metrics *)s->m; /* the label tables are shared and lock-free */
    unsigned ri = name_index(&m->routes, r->route);
    unsigned ti = name_index(&m->targets, r->target);
    unsigned si = code_index(&m->statuses, r->status);
    add_u64(&s->requests[((size_t)ri * m->nt + ti) * m->ns + si], 1);

    const int64_t tok[TOKEN_KINDS] = {r->prompt_tokens, r->completion_tokens, r->cached_tokens,
                                      r->reasoning_tokens};
    for (size_t k = 0; k < TOKEN_KINDS; k++)
        if (tok[k] > 0)
            add_u64(&s->tokens[(size_t)ti * TOKEN_KINDS + k], (uint64_t)tok[k]);
    if (r->billable && known(r->cost_usd)) {
        add_f64(&s->cost[ti], r->cost_usd);
        add_u64(&s->cost_known[ti], 1);
    } else if (r->billable) {
        add_u64(&s->cost_unknown[ti], 1);
    }

    observe(&s->ttft, ti, latency_le, NLAT, r->ttft_s);
    observe(&s->request, ti, latency_le, NLAT, r->total_s);
    observe(&s->overhead, 0, overhead_le, NOVH, r->overhead_s);
}

void pd_metrics_set_ledger(pd_metrics *m, const pd_metrics_ledger *l)
{
    atomic_store_explicit(&m->ledger_depth, l->depth, memory_order_relaxed);
    atomic_store_explicit(&m->ledger_capacity, l->capacity, memory_order_relaxed);
    atomic_store_explicit(&m->ledger_written, l->written, memory_order_relaxed);
    atomic_store_explicit(&m->ledger_dropped, l->dropped, memory_order_relaxed);
    atomic_store_explicit(&m->ledger_failed, l->failed, memory_order_relaxed);
    atomic_store_explicit(&m->ledger_batches, l->batches, memory_order_relaxed);
    atomic_store_explicit(&m->ledger_catchups, l->catchups, memory_order_relaxed);
}

/* ---- rendering ------------------------------------------------------------------------------- */

/* Output that remembers its first error, so the renderers need not check each line. */
typedef struct out {
    pd_buf *b;
    pd_result rc;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...)
{
    if (o->rc)
        return;
    char line[1024]; /* the longest line has two escaped labels of 254 bytes */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        o->rc = PD_ERR_INVALID; /* cannot happen: labels are capped well below */
    else
        o->rc = pd_buf_append(o->b, line, (size_t)n);
}

/* The shortest text that reads back as v (Go's ParseFloat, which Prometheus uses, agrees). */
static void fmt_double(char *dst, size_t n, double v)
{
    if (isinf(v)) {
        snprintf(dst, n, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(dst, n, "%.*g", prec, v);
        if (strtod(dst, NULL) == v)
            return;
    }
}

/* label value with \, " and newline escaped */
static void escape(char *dst, const char *src)
{
    size_t o = 0;
    for (; *src && o < 2 * LABEL_MAX - 2; src++) {
        char c = *src;
        if (c == '\\' || c == '"' || c == '\n')
            dst[o++] = '\\';
        dst[o++] = c == '\n' ? 'n' : c;
    }
    dst[o] = '\0';
}

/* The escaped label value of index i of t, or NULL when the slot is not yet visible. */
static bool name_at(const names *t, unsigned i, char *dst)
{
    if (i == t->cap) {
        strcpy(dst, "other");
        return true;
    }
    const char *s = atomic_load_explicit((_Atomic(char *) *)&t->v[i], memory_order_acquire);
    if (!s)
        return false;
    escape(dst, s);
    return true;
}

static bool code_at(const codes *t, unsigned i, char *dst)
{
    if (i == t->cap) {
        strcpy(dst, "other");
        return true;
    }
    int v = atomic_load_explicit((_Atomic int *)&t->v[i], memory_order_acquire);
    if (!v)
        return false;
    snprintf(dst, 16, "%d", v - 1);
    return true;
}

static uint64_t sum_u64(const pd_metrics *m, size_t off,
                        _Atomic uint64_t *(*arr)(pd_metrics_shard *))
{
    uint64_t t = 0;
    for (unsigned i = 0; i < m->p.shards; i++)
        t += atomic_load_explicit(arr(&m->shards[i]) + off, memory_order_relaxed);
    return t;
}

static _Atomic uint64_t *arr_requests(pd_metrics_shard *s)
{
    return s->requests;
}
static _Atomic uint64_t *arr_tokens(pd_metrics_shard *s)
{
    return s->tokens;
}
static _Atomic uint64_t *arr_cost_known(pd_metrics_shard *s)
{
    return s->cost_known;
}
static _Atomic uint64_t *arr_cost_unknown(pd_metrics_shard *s)
{
    return s->cost_unknown;
}

static void header(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_requests(const pd_metrics *m, out *o)
{
    char rl[2 * LABEL_MAX], tl[2 * LABEL_MAX], sl[16];
    header(o, "pendulum_requests_total", "counter",
           "Requests answered, by route, target and HTTP status sent.");
    for (unsigned r = 0; r < m->nr; r++)
        for (unsigned t = 0; t < m->nt; t++)
            for (unsigned s = 0; s < m->ns; s++) {
                uint64_t v = sum_u64(m, ((size_t)r * m->nt + t) * m->ns + s, arr_requests);
                if (v && name_at(&m->routes, r, rl) && name_at(&m->targets, t, tl) &&
                    code_at(&m->statuses, s, sl))
                    put(o,
                        "pendulum_requests_total{route=\"%s\",target=\"%s\",status=\"%s\"} "
                        "%" PRIu64 "\n",
                        rl, tl, sl, v);
            }
}

static void render_tokens(const pd_metrics *m, out *o)
{
    char tl[2 * LABEL_MAX];
    header(o, "pendulum_tokens_total", "counter",
           "Tokens reported by upstreams, by target and kind (cached is part of prompt, "
           "reasoning part of completion).");
    for (unsigned t = 0; t < m->nt; t++)
        for (unsigned k = 0; k < TOKEN_KINDS; k++) {
            uint64_t v = sum_u64(m, (size_t)t * TOKEN_KINDS + k, arr_tokens);
            if (v && name_at(&m->targets, t, tl))
                put(o, "pendulum_tokens_total{target=\"%s\",kind=\"%s\"} %" PRIu64 "\n", tl,
                    token_kinds[k], v);
        }
}

static void render_cost(const pd_metrics *m, out *o)
{
    char tl[2 * LABEL_MAX], num[40];
    header(o, "pendulum_cost_usd_total", "counter",
           "Cost in US dollars of the requests whose cost is known, by target.");
    for (unsigned t = 0; t < m->nt; t++) {
        if (!sum_u64(m, t, arr_cost_known) || !name_at(&m->targets, t, tl))
            continue;
        double v = 0;
        for (unsigned i = 0; i < m->p.shards; i++)
            v += atomic_load_explicit(&m->shards[i].cost[t], memory_order_relaxed);
        fmt_double(num, sizeof(num), v);
        put(o, "pendulum_cost_usd_total{target=\"%s\"} %s\n", tl, num);
    }
    header(o, "pendulum_cost_unknown_total", "counter",
           "Requests served by an upstream whose cost is unknown (no price or no usage), by "
           "target.");
    for (unsigned t = 0; t < m->nt; t++) {
        uint64_t v = sum_u64(m, t, arr_cost_unknown);
        if (v && name_at(&m->targets, t, tl))
            put(o, "pendulum_cost_unknown_total{target=\"%s\"} %" PRIu64 "\n", tl, v);
    }
}

/* One histogram series; labels is "" or `target="x"`. */
static void render_series(const pd_metrics *m, out *o, const char *name, size_t off,
                          const double *le, size_t nb, const char *labels,
                          hist *(*pick)(pd_metrics_shard *))
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    double sum = 0;
    char num[40];
    for (size_t b = 0; b <= nb; b++) {
        for (unsigned i = 0; i < m->p.shards; i++)
            cum += atomic_load_explicit(&pick(&m->shards[i])->counts[off * (nb + 1) + b],
                                        memory_order_relaxed);
        if (b < nb)
            fmt_double(num, sizeof(num), le[b]);
        put(o, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep, b < nb ? num : "+Inf",
            cum);
    }
    for (unsigned i = 0; i < m->p.shards; i++)
        sum += atomic_load_explicit(&pick(&m->shards[i])->sums[off], memory_order_relaxed);
    fmt_double(num, sizeof(num), sum);
    if (labels[0]) {
        put(o, "%s_sum{%s} %s\n", name, labels, num);
        put(o, "%s_count{%s} %" PRIu64 "\n", name, labels, cum);
    } else {
        put(o, "%s_sum %s\n", name, num);
        put(o, "%s_count %" PRIu64 "\n", name, cum);
    }
}

static hist *pick_ttft(pd_metrics_shard *s)
{
    return &s->ttft;
}
static hist *pick_request(pd_metrics_shard *s)
{
    return &s->request;
}
static hist *pick_overhead(pd_metrics_shard *s)
{
    return &s->overhead;
}

static uint64_t hist_count(const pd_metrics *m, size_t off, size_t nb,
                           hist *(*pick)(pd_metrics_shard *))
{
    uint64_t n = 0;
    for (unsigned i = 0; i < m->p.shards; i++)
        for (size_t b = 0; b <= nb; b++)
            n += atomic_load_explicit(&pick(&m->shards[i])->counts[off * (nb + 1) + b],
                                      memory_order_relaxed);
    return n;
}

static void render_target_hist(const pd_metrics *m, out *o, const char *name, const char *help,
                               hist *(*pick)(pd_metrics_shard *))
{
    char tl[2 * LABEL_MAX], labels[2 * LABEL_MAX + 16];
    header(o, name, "histogram", help);
    for (unsigned t = 0; t < m->nt; t++) {
        if (!hist_count(m, t, NLAT, pick) || !name_at(&m->targets, t, tl))
            continue;
        snprintf(labels, sizeof(labels), "target=\"%s\"", tl);
        render_series(m, o, name, t, latency_le, NLAT, labels, pick);
    }
}

static void render_ledger(const pd_metrics *m, out *o)
{
    pd_metrics *w = (pd_metrics *)m; /* atomic loads take non-const pointers */
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } rows[] = {
        {"pendulum_ledger_queue_depth", "gauge", "Ledger records queued and not yet committed.",
         offsetof(pd_metrics, ledger_depth)},
        {"pendulum_ledger_queue_capacity", "gauge", "Size of the ledger queue.",
         offsetof(pd_metrics, ledger_capacity)},
        {"pendulum_ledger_written_total", "counter", "Ledger records committed.",
         offsetof(pd_metrics, ledger_written)},
        {"pendulum_ledger_dropped_total", "counter",
         "Ledger records dropped because the queue was full.",
         offsetof(pd_metrics, ledger_dropped)},
        {"pendulum_ledger_failed_total", "counter",
         "Ledger records given up after database errors.", offsetof(pd_metrics, ledger_failed)},
        {"pendulum_ledger_batches_total", "counter",
         "Ledger transactions committed (written / batches = records per transaction).",
         offsetof(pd_metrics, ledger_batches)},
        {"pendulum_ledger_catchups_total", "counter",
         "Times a backlog moved the ledger writer from SCHED_IDLE to normal scheduling.",
         offsetof(pd_metrics, ledger_catchups)},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        _Atomic uint64_t *v = (_Atomic uint64_t *)(void *)((char *)w + rows[i].off);
        header(o, rows[i].name, rows[i].type, rows[i].help);
        put(o, "%s %" PRIu64 "\n", rows[i].name, atomic_load_explicit(v, memory_order_relaxed));
    }
}

pd_result pd_metrics_render(const pd_metrics *m, pd_buf *buf)
{
    out o = {buf, PD_OK};
    render_requests(m, &o);
    render_tokens(m, &o);
    render_cost(m, &o);
    render_target_hist(m, &o, "pendulum_ttft_seconds",
                       "Time from the request's arrival to its first token, by target.", pick_ttft);
    render_target_hist(m, &o, "pendulum_request_seconds",
                       "Time from the request's arrival to the end of its reply, by target.",
                       pick_request);
    header(&o, "pendulum_overhead_seconds", "histogram",
           "Gateway overhead: total time minus time spent in upstream transfers.");
    render_series(m, &o, "pendulum_overhead_seconds", 0, overhead_le, NOVH, "", pick_overhead);
    render_ledger(m, &o);
    return o.rc;
}

pd_result pd_metrics_render_target_up(const pd_metrics_target_up *rows, size_t n, pd_buf *buf)
{
    out o = {buf, PD_OK};
    char clean[LABEL_MAX], tl[2 * LABEL_MAX];
    header(&o, "pendulum_target_up", "gauge",
           "Active health check of a target: 1 up, 0 down (two failed probes in a row).");
    for (size_t i = 0; i < n; i++) {
        clean_label(clean, rows[i].target);
        escape(tl, clean);
        put(&o, "pendulum_target_up{target=\"%s\"} %d\n", tl, rows[i].up ? 1 : 0);
    }
    return o.rc;
}
