/* bench_local.c: `pendulum bench-local`: the embedded engine's speed on one model, optionally
 * side by side with a llama-server serving the same file (same prompts, same measurements).
 *
 *   pendulum bench-local --model F.gguf [--parallel N] [--threads T] [--ctx C] [--gen G]
 *                        [--prompt P] [--server URL]
 *
 * Measured, each the median of 3 runs:
 *   - time to first token of a P-token prompt (default 512) on a fresh sequence, and the
 *     prompt tokens/s that implies (P / TTFT);
 *   - generation tokens/s of 1 stream: (G - 1) tokens / (last token - first token);
 *   - generation tokens/s of N concurrent streams (N = --parallel): N*G tokens / wall time
 *     from submitting them to the last token (short prompts included, for both sides).
 * For llama-server (--server, started by you with the same -c, -np N and -t) the same
 * requests go to /v1/chat/completions: TTFT is the time to a max_tokens=1 answer, 1-stream
 * generation is the server's own timings.predicted_per_second, N streams are N concurrent
 * requests. Greedy decoding throughout, so both sides compute the same tokens.
 *
 * Exit status: 0 done, 1 failure, 2 usage error. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/clock.h"
#include "engine/engine.h"

int pd_bench_local_cli(int argc, char **argv);

#define REPS 3

typedef struct opts {
    const char *model, *server;
    uint32_t parallel, ctx;
    int32_t threads;
    int gen, prompt;
} opts;

static const char k_usage[] =
    "usage: pendulum bench-local --model F.gguf [--parallel N] [--threads T] [--ctx C]\n"
    "                            [--gen G] [--prompt P] [--server URL]\n"
    "\n"
    "Measures the embedded engine on a model: time to first token of a P-token prompt\n"
    "(default 512), generation tokens/s of 1 and of N concurrent streams (--parallel, default\n"
    "4; G tokens each, default 128), and how long a running stream waits while a long prompt\n"
    "arrives. --server URL: the same requests to a llama-server serving the same file.\n"
    "--threads: CPU threads (default: online CPUs, at most 8); --ctx: KV cells in total\n"
    "(default N * (P + G + 64)). See docs/engine.md.\n";

static int usage(void)
{
    fputs(k_usage, stderr);
    return 2;
}

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){NULL, NULL, 4, 0, 0, 128, 512};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_usage, stdout);
            return -1;
        }
        if (!v)
            return usage();
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--server"))
            o->server = v;
        else if (!strcmp(a, "--parallel"))
            o->parallel = (uint32_t)atoi(v);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--ctx"))
            o->ctx = (uint32_t)atoi(v);
        else if (!strcmp(a, "--gen"))
            o->gen = atoi(v);
        else if (!strcmp(a, "--prompt"))
            o->prompt = atoi(v);
        else
            return usage();
    }
    if (!o->model || o->parallel < 1 || o->parallel > PD_ENGINE_MAX_PARALLEL || o->gen < 2 ||
        o->prompt < 16)
        return usage();
    if (!o->ctx) /* room for the long prompt and the output in every sequence */
        o->ctx = o->parallel * (uint32_t)(o->prompt + o->gen + 64);
    return 0;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && v[k - 1] > v[k]; k--) {
            double t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    return v[n / 2];
}

/* ---- requests ------------------------------------------------------------------------- */

static const char *k_words[] = {" the", " river", " stone", " cloud", " light", " over",
                                " and", " green", " field", " small", " house", " near"};

/* A user message of `words` common words, starting with a number so that prompts of
   different runs share no prefix beyond the template's header. */
static void make_req(pd_chat_request *r, unsigned salt, int words, int max_tokens)
{
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_printf(&b, "%u", salt * 7919u + 13u);
    for (int i = 0; i < words; i++)
        pd_buf_append_str(&b, k_words[(unsigned)(i * 5 + i / 12 + salt) % 12]);
    pd_chat_request_init(r); /* everything in r's arena (canon/chat.h) */
    r->messages = pd_chat_request_alloc(r, 1, sizeof *r->messages);
    r->n_messages = 1;
    r->messages[0].role = PD_ROLE_USER;
    r->messages[0].parts = pd_chat_request_alloc(r, 1, sizeof(pd_chat_part));
    r->messages[0].n_parts = 1;
    r->messages[0].parts[0].kind = PD_PART_TEXT;
    r->messages[0].parts[0].text = pd_chat_request_strndup(r, b.data ? b.data : "", b.len);
    pd_buf_free(&b);
    r->sampling.has_max_tokens = true;
    r->sampling.max_tokens = max_tokens;
    r->sampling.has_temperature = true;
    r->sampling.temperature = 0;
}

/* A request whose prompt is as close to `target` tokens as whole words allow (below it). */
static int64_t make_sized_req(pd_engine *eng, pd_chat_request *r, unsigned salt, int target)
{
    int lo = 1, hi = target;
    int64_t n = 0;
    pd_api_error err;
    while (lo < hi) { /* largest word count whose prompt fits in target tokens */
        int mid = (lo + hi + 1) / 2;
        make_req(r, salt, mid, 1);
        pd_engine_count_prompt(eng, r, &n, &err);
        pd_chat_request_free(r);
        if (n <= target)
            lo = mid;
        else
            hi = mid - 1;
    }
    make_req(r, salt, lo, 1);
    pd_engine_count_prompt(eng, r, &n, &err);
    return n;
}

/* ---- the engine side ------------------------------------------------------------------ */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int pending;
} waiter;

static void on_wake(void *ud)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->pending = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

typedef struct stream {
    uint64_t first_us, last_us;
    int64_t tokens;
    bool failed;
} stream;

static int on_event(void *ud, const pd_engine_event *ev)
{
    stream *s = ud;
    uint64_t now = pd_now_us();
    if (ev->chat.kind == PD_EVENT_TEXT) {
        if (!s->first_us)
            s->first_us = now;
        s->last_us = now;
    } else if (ev->chat.kind == PD_EVENT_USAGE) {
        s->tokens = ev->chat.usage.completion_tokens;
    } else if (ev->chat.kind == PD_EVENT_ERROR) {
        s->failed = true;
    }
    return 0;
}

/* Runs n requests at once; returns the wall time in seconds, or < 0 on failure. */
static double engine_run(pd_engine *eng, pd_chat_request *reqs, stream *st, size_t n)
{
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pd_engine_sink sink = {on_wake, &w};
    pd_engine_job *jobs[PD_ENGINE_MAX_PARALLEL] = {0};
    pd_api_error err;
    uint64_t t0 = pd_now_us();
    size_t left = n;
    for (size_t i = 0; i < n; i++) {
        memset(&st[i], 0, sizeof st[i]);
        if (pd_engine_submit(eng, &reqs[i], &sink, &jobs[i], &err)) {
            fprintf(stderr, "bench-local: %s\n", err.message);
            left--;
            st[i].failed = true;
        }
    }
    while (left > 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.pending)
            pthread_cond_wait(&w.cond, &w.mu);
        w.pending = 0;
        pthread_mutex_unlock(&w.mu);
        for (size_t i = 0; i < n; i++)
            if (jobs[i] && pd_engine_job_poll(jobs[i], on_event, &st[i])) {
                pd_engine_job_free(jobs[i]);
                jobs[i] = NULL;
                left--;
            }
    }
    double wall = (double)(pd_now_us() - t0) / 1e6;
    for (size_t i = 0; i < n; i++)
        if (st[i].failed)
            return -1;
    return wall;
}

/* Token arrival times of a running stream. */
typedef struct ticks {
    uint64_t t[4096];
    size_t n;
    stream st;
} ticks;

static int on_tick(void *ud, const pd_engine_event *ev)
{
    ticks *k = ud;
    if (ev->chat.kind == PD_EVENT_TEXT && k->n < 4096)
        k->t[k->n++] = pd_now_us();
    return on_event(&k->st, ev);
}

#define GAP_WARMUP 8  /* tokens of the running stream not counted (its own start) */
#define GAP_BEFORE 32 /* tokens of the running stream before the long prompt arrives */

/* The largest gap between tokens of k in [from, to], and the median gap before from (ms). */
static void gaps(const ticks *k, uint64_t from, uint64_t to, double *worst, double *typical)
{
    double before[4096];
    int nb = 0;
    *worst = 0;
    for (size_t i = GAP_WARMUP; i < k->n; i++) {
        double g = (double)(k->t[i] - k->t[i - 1]) / 1e3;
        if (k->t[i] <= from)
            before[nb++] = g;
        else if (k->t[i - 1] <= to && g > *worst)
            *worst = g;
    }
    *typical = nb ? median(before, nb) : 0;
}

/* A stream generates; after GAP_BEFORE tokens a long prompt arrives. How long does the stream wait
   for its next token while the prompt is read (chunked: a little, in several steps)? */
static int engine_gap(pd_engine *eng, const opts *o, double *worst, double *typical)
{
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pd_engine_sink sink = {on_wake, &w};
    pd_chat_request a, b;
    pd_engine_job *ja = NULL, *jb = NULL;
    pd_api_error err;
    static ticks k;
    stream sb = {0};
    memset(&k, 0, sizeof k);
    make_req(&a, 400, 8, 4000);
    make_sized_req(eng, &b, 401, o->prompt);
    uint64_t from = 0, to = 0;
    int rc = pd_engine_submit(eng, &a, &sink, &ja, &err) ? 1 : 0;
    while (!rc && !to) {
        pthread_mutex_lock(&w.mu);
        while (!w.pending)
            pthread_cond_wait(&w.cond, &w.mu);
        w.pending = 0;
        pthread_mutex_unlock(&w.mu);
        if (pd_engine_job_poll(ja, on_tick, &k))
            rc = 1; /* the stream ended before the prompt was read */
        if (!jb && k.n >= GAP_BEFORE) {
            from = pd_now_us();
            rc = pd_engine_submit(eng, &b, &sink, &jb, &err) ? 1 : 0;
        }
        if (jb && pd_engine_job_poll(jb, on_event, &sb))
            to = pd_now_us();
    }
    pd_engine_job_free(ja);
    pd_engine_job_free(jb);
    pd_chat_request_free(&a);
    pd_chat_request_free(&b);
    gaps(&k, from, to, worst, typical);
    return rc;
}

/* ---- the llama-server side ------------------------------------------------------------ */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    pd_buf_append(ud, p, sz * n);
    return sz * n;
}

static char *server_body(const pd_chat_request *r)
{
    json_t *b =
        json_pack("{s:[{s:s,s:s}],s:I,s:f,s:b}", "messages", "role", "user", "content",
                  r->messages[0].parts[0].text, "max_tokens", (json_int_t)r->sampling.max_tokens,
                  "temperature", 0.0, "cache_prompt", 0);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static CURL *server_handle(const char *url, const char *body, pd_buf *out, struct curl_slist *hdr)
{
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    return c;
}

/* Sends n requests at once; returns the wall time, or < 0. tokens: completion tokens summed;
   gen_tps / prompt_tps (may be NULL): the first answer's timings.predicted_per_second and
   prompt_per_second (the server's own measure, without HTTP and templating). */
static double server_run(const char *base, pd_chat_request *reqs, size_t n, int64_t *tokens,
                         double *gen_tps, double *prompt_tps)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/chat/completions", base);
    struct curl_slist *hdr = curl_slist_append(NULL, "content-type: application/json");
    CURLM *m = curl_multi_init();
    CURL *h[PD_ENGINE_MAX_PARALLEL];
    char *bodies[PD_ENGINE_MAX_PARALLEL];
    pd_buf outs[PD_ENGINE_MAX_PARALLEL];
    uint64_t t0 = pd_now_us();
    for (size_t i = 0; i < n; i++) {
        bodies[i] = server_body(&reqs[i]);
        pd_buf_init(&outs[i], 0);
        h[i] = server_handle(url, bodies[i], &outs[i], hdr);
        curl_multi_add_handle(m, h[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double wall = (double)(pd_now_us() - t0) / 1e6;
    *tokens = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loadb(outs[i].data ? outs[i].data : "", outs[i].len, 0, NULL);
        json_t *u = json_object_get(j, "usage");
        if (!u)
            wall = -1;
        *tokens += json_integer_value(json_object_get(u, "completion_tokens"));
        json_t *t = json_object_get(j, "timings");
        if (i == 0 && gen_tps)
            *gen_tps = json_real_value(json_object_get(t, "predicted_per_second"));
        if (i == 0 && prompt_tps)
            *prompt_tps = json_real_value(json_object_get(t, "prompt_per_second"));
        json_decref(j);
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
        free(bodies[i]);
        pd_buf_free(&outs[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    return wall;
}

/* A streamed answer: one time stamp per SSE event. */
static size_t on_sse(char *p, size_t sz, size_t n, void *ud)
{
    ticks *k = ud;
    uint64_t now = pd_now_us();
    for (const char *q = p; (q = memmem(q, (size_t)(p + sz * n - q), "data: ", 6)) != NULL; q += 6)
        if (k->n < 4096)
            k->t[k->n++] = now;
    return sz * n;
}

/* The same experiment against llama-server, with a streamed request as the running stream. */
static int server_gap(pd_engine *eng, const opts *o, double *worst, double *typical)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/chat/completions", o->server);
    struct curl_slist *hdr = curl_slist_append(NULL, "content-type: application/json");
    pd_chat_request a, b;
    make_req(&a, 400, 8, 4000);
    make_sized_req(eng, &b, 401, o->prompt);
    json_t *ja = json_pack("{s:[{s:s,s:s}],s:i,s:f,s:b,s:b}", "messages", "role", "user", "content",
                           a.messages[0].parts[0].text, "max_tokens", 4000, "temperature", 0.0,
                           "stream", 1, "cache_prompt", 0);
    char *body_a = json_dumps(ja, JSON_COMPACT), *body_b = server_body(&b);
    json_decref(ja);
    static ticks k;
    memset(&k, 0, sizeof k);
    pd_buf out_b;
    pd_buf_init(&out_b, 0);
    CURL *ha = server_handle(url, body_a, NULL, hdr), *hb = NULL;
    curl_easy_setopt(ha, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(ha, CURLOPT_WRITEDATA, &k);
    CURLM *m = curl_multi_init();
    curl_multi_add_handle(m, ha);
    uint64_t from = 0, to = 0;
    int running = 1;
    while (running && !to) {
        curl_multi_perform(m, &running);
        if (!hb && k.n >= GAP_BEFORE) {
            from = pd_now_us();
            hb = server_handle(url, body_b, &out_b, hdr);
            curl_multi_add_handle(m, hb);
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == hb)
                to = pd_now_us();
        if (!to)
            curl_multi_poll(m, NULL, 0, 5, NULL);
    }
    curl_multi_remove_handle(m, ha);
    curl_easy_cleanup(ha);
    if (hb) {
        curl_multi_remove_handle(m, hb);
        curl_easy_cleanup(hb);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    free(body_a);
    free(body_b);
    pd_buf_free(&out_b);
    pd_chat_request_free(&a);
    pd_chat_request_free(&b);
    gaps(&k, from, to, worst, typical);
    return to ? 0 : 1;
}

/* ---- the benchmark -------------------------------------------------------------------- */

typedef struct numbers {
    double ttft_ms, prompt_tps, gen1_tps, genn_tps;
    double inner_prompt_tps;       /* llama-server: its own timings */
    double gap_ms, gap_typical_ms; /* a running stream while a long prompt is read */
} numbers;

/* One repetition's measurements. */
typedef struct sample {
    double ttft_ms, gen1, genn, inner;
} sample;

static int engine_rep(pd_engine *eng, const opts *o, unsigned r, sample *out, int64_t *plen)
{
    stream st[PD_ENGINE_MAX_PARALLEL];
    pd_chat_request reqs[PD_ENGINE_MAX_PARALLEL];
    *plen = make_sized_req(eng, &reqs[0], 100u + r, o->prompt);
    uint64_t t0 = pd_now_us();
    double wall = engine_run(eng, reqs, st, 1);
    pd_chat_request_free(&reqs[0]);
    if (wall < 0)
        return 1;
    out->ttft_ms = (double)(st[0].first_us - t0) / 1e3;

    make_req(&reqs[0], 200u + r, 8, o->gen);
    wall = engine_run(eng, reqs, st, 1);
    pd_chat_request_free(&reqs[0]);
    if (wall < 0)
        return 1;
    out->gen1 = (double)(st[0].tokens - 1) / ((double)(st[0].last_us - st[0].first_us) / 1e6);

    for (uint32_t i = 0; i < o->parallel; i++)
        make_req(&reqs[i], 300u + r * 64u + i, 8, o->gen);
    wall = engine_run(eng, reqs, st, o->parallel);
    int64_t total = 0;
    for (uint32_t i = 0; i < o->parallel; i++) {
        total += st[i].tokens;
        pd_chat_request_free(&reqs[i]);
    }
    out->genn = (double)total / wall;
    return wall < 0;
}

static int server_rep(pd_engine *eng, const opts *o, unsigned r, sample *out)
{
    pd_chat_request reqs[PD_ENGINE_MAX_PARALLEL];
    int64_t tokens = 0;
    make_sized_req(eng, &reqs[0], 100u + r, o->prompt);
    double wall = server_run(o->server, reqs, 1, &tokens, NULL, &out->inner);
    pd_chat_request_free(&reqs[0]);
    if (wall < 0)
        return 1;
    out->ttft_ms = wall * 1e3;

    make_req(&reqs[0], 200u + r, 8, o->gen);
    wall = server_run(o->server, reqs, 1, &tokens, &out->gen1, NULL);
    pd_chat_request_free(&reqs[0]);
    if (wall < 0)
        return 1;

    for (uint32_t i = 0; i < o->parallel; i++)
        make_req(&reqs[i], 300u + r * 64u + i, 8, o->gen);
    wall = server_run(o->server, reqs, o->parallel, &tokens, NULL, NULL);
    for (uint32_t i = 0; i < o->parallel; i++)
        pd_chat_request_free(&reqs[i]);
    out->genn = (double)tokens / wall;
    return wall < 0;
}

/* The medians of the samples. */
static void reduce(const sample *s, int64_t plen, numbers *out)
{
    double v[4][REPS];
    for (int r = 0; r < REPS; r++) {
        v[0][r] = s[r].ttft_ms;
        v[1][r] = s[r].gen1;
        v[2][r] = s[r].genn;
        v[3][r] = s[r].inner;
    }
    out->ttft_ms = median(v[0], REPS);
    out->prompt_tps = (double)plen / (out->ttft_ms / 1e3);
    out->gen1_tps = median(v[1], REPS);
    out->genn_tps = median(v[2], REPS);
    out->inner_prompt_tps = median(v[3], REPS);
}

/* Engine and server take turns at each measurement, so that both see the same machine: on a
   shared machine the load of other jobs changes from minute to minute. */
static int bench(pd_engine *eng, const opts *o, numbers *mine, numbers *srv, int64_t *plen)
{
    stream st[1];
    pd_chat_request warm;
    int64_t tokens;
    make_req(&warm, 1, 8, 4); /* warm-up: first-use costs are not what is measured */
    int rc = engine_run(eng, &warm, st, 1) < 0;
    if (!rc && o->server)
        rc = server_run(o->server, &warm, 1, &tokens, NULL, NULL) < 0;
    pd_chat_request_free(&warm);
    sample me[REPS] = {0}, sv[REPS] = {0};
    for (unsigned r = 0; !rc && r < REPS; r++) {
        rc = engine_rep(eng, o, r, &me[r], plen);
        if (!rc && o->server)
            rc = server_rep(eng, o, r, &sv[r]);
    }
    if (rc)
        return rc;
    reduce(me, *plen, mine);
    reduce(sv, *plen, srv);
    rc = engine_gap(eng, o, &mine->gap_ms, &mine->gap_typical_ms);
    if (!rc && o->server)
        rc = server_gap(eng, o, &srv->gap_ms, &srv->gap_typical_ms);
    return rc;
}

static void print_row(const char *what, double mine, const numbers *srv, double theirs,
                      const char *fmt)
{
    char a[32], b[32] = "";
    snprintf(a, sizeof a, fmt, mine);
    if (srv)
        snprintf(b, sizeof b, fmt, theirs);
    printf("%-38s %14s %14s\n", what, a, b);
}

int pd_bench_local_cli(int argc, char **argv)
{
    opts o;
    int bad = parse(argc, argv, &o);
    if (bad)
        return bad < 0 ? 0 : 2;
    pd_engine_params p = pd_engine_default_params();
    p.model_path = o.model;
    p.parallel = o.parallel;
    p.threads = o.threads;
    p.ctx_size = o.ctx;
    pd_engine *eng = NULL;
    char err[256];
    uint64_t t0 = pd_now_us();
    if (pd_engine_open(&p, &eng, err, sizeof err)) {
        fprintf(stderr, "bench-local: %s\n", err);
        return 1;
    }
    int rc = 1;
    numbers mine = {0}, srv = {0};
    int64_t plen = 0;
    pd_engine_info info;
    if (pd_engine_wait_ready(eng, -1) != PD_ENGINE_READY) {
        fprintf(stderr, "bench-local: %s\n", pd_engine_error(eng));
        goto out;
    }
    double load_s = (double)(pd_now_us() - t0) / 1e6;
    pd_engine_info_get(eng, &info);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (bench(eng, &o, &mine, &srv, &plen)) {
        fprintf(stderr, "bench-local: a request failed%s%s\n", o.server ? " at " : "",
                o.server ? o.server : "");
        goto out;
    }
    struct stat sb;
    char threads[16] = "auto";
    if (o.threads > 0)
        snprintf(threads, sizeof threads, "%d", o.threads);
    printf("model %s (%.1f MB), %u sequences x %u tokens, threads %s, median of %d runs\n", o.model,
           stat(o.model, &sb) == 0 ? (double)sb.st_size / 1e6 : 0.0, o.parallel, info.n_ctx_seq,
           threads, REPS);
    printf("%-38s %14s %14s\n", "", "pendulum", o.server ? "llama-server" : "");
    const numbers *s = o.server ? &srv : NULL;
    printf("%-38s %14.2f\n", "load, s", load_s);
    char what[64];
    snprintf(what, sizeof what, "time to first token, %lld-token prompt", (long long)plen);
    print_row(what, mine.ttft_ms, s, srv.ttft_ms, "%.1f ms");
    print_row("prompt tokens/s (prompt / TTFT)", mine.prompt_tps, s, srv.prompt_tps, "%.0f");
    if (s)
        printf("%-38s %14s %14.0f\n", "prompt tokens/s (server's timings)", "",
               srv.inner_prompt_tps);
    print_row("generation tokens/s, 1 stream", mine.gen1_tps, s, srv.gen1_tps, "%.1f");
    snprintf(what, sizeof what, "generation tokens/s, %u streams", o.parallel);
    print_row(what, mine.genn_tps, s, srv.genn_tps, "%.1f");
    print_row("running stream: typical token gap", mine.gap_typical_ms, s, srv.gap_typical_ms,
              "%.1f ms");
    snprintf(what, sizeof what, "  longest gap while a %lld-token prompt", (long long)plen);
    print_row(what, mine.gap_ms, s, srv.gap_ms, "%.1f ms");
    printf("    arrives (prompt_chunk %u)\n", pd_engine_default_params().prompt_chunk);
    pd_engine_stats st;
    pd_engine_stats_get(eng, &st);
    printf("engine counters: %llu prompt tokens evaluated, %llu reused, %llu generated, "
           "%llu decode steps\n",
           (unsigned long long)st.prompt_tokens_evaluated,
           (unsigned long long)st.prompt_tokens_reused, (unsigned long long)st.tokens_generated,
           (unsigned long long)st.decode_steps);
    rc = 0;
out:
    pd_engine_close(eng);
    return rc;
}
