/* test_engine.c: the embedded engine against the pinned llama-server, on the same model.
 *
 *   test_engine MODEL.gguf SERVER_URL [EMBED_SERVER_URL]
 *
 * SERVER_URL: llama-server on MODEL with -c 2048 -np 1 -t 1 (tests/engine/run.sh starts it);
 * EMBED_SERVER_URL: llama-server on MODEL with --embeddings --pooling mean (optional).
 * No HTTP in the engine: this program drives the C API (submit, wake, poll) and asks the
 * server the same questions over HTTP to compare token ids, logprobs and text. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/test.h"
#include "core/buf.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "proto/openai.h"
#include "proto/sse.h"

static const char *g_model, *g_server, *g_embed_server;

/* ---- a caller: wake-ups into a condition variable ------------------------------------------ */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int pending;
    int wakes;
} waiter;

static waiter g_w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void on_wake(void *ud)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->pending++;
    w->wakes++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void wait_wake(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->pending)
        pthread_cond_wait(&w->cond, &w->mu);
    w->pending = 0;
    pthread_mutex_unlock(&w->mu);
}

#define MAX_IDS 4096

/* What one job produced. */
typedef struct result {
    pd_chat_response resp;
    int32_t ids[4][MAX_IDS];
    float lps[4][MAX_IDS];
    size_t n_ids[4];
    int n_events, n_text;
    bool ended, error, order_ok, seen_usage;
    int status;
    char code[64];
    int cancel_after; /* > 0: return non-zero from the callback after this many TEXT events */
} result;

static int collect(void *ud, const pd_engine_event *ev)
{
    result *r = ud;
    const pd_chat_event *e = &ev->chat;
    if (r->n_events == 0 && e->kind != PD_EVENT_ROLE && e->kind != PD_EVENT_ERROR)
        r->order_ok = false;
    if (r->seen_usage) /* nothing after USAGE */
        r->order_ok = false;
    r->n_events++;
    if (e->kind == PD_EVENT_ERROR) {
        r->error = true;
        r->status = e->error_status;
        snprintf(r->code, sizeof r->code, "%s", e->error_code ? e->error_code : "");
    }
    if (e->kind == PD_EVENT_USAGE)
        r->seen_usage = true;
    if (e->kind == PD_EVENT_TEXT) {
        r->n_text++;
        for (size_t i = 0; i < ev->n_logprobs && e->choice < 4; i++) {
            size_t k = r->n_ids[e->choice]++;
            if (k < MAX_IDS) {
                r->ids[e->choice][k] = ev->logprobs[i].token;
                r->lps[e->choice][k] = ev->logprobs[i].logprob;
            }
        }
    }
    pd_engine_response_add(&r->resp, ev);
    return r->cancel_after > 0 && r->n_text >= r->cancel_after;
}

static void result_init(result *r)
{
    memset(r, 0, sizeof *r);
    pd_chat_response_init(&r->resp);
    r->order_ok = true;
}

static const char *result_text(const result *r, uint32_t choice)
{
    if (choice >= r->resp.n_choices || r->resp.choices[choice].message.n_parts == 0)
        return "";
    return r->resp.choices[choice].message.parts[0].text;
}

/* Runs jobs to their end, polling each as wake-ups come. */
static void run_all(pd_engine_job **jobs, result *res, size_t n)
{
    size_t left = n;
    while (left > 0) {
        wait_wake(&g_w);
        for (size_t i = 0; i < n; i++) {
            if (!jobs[i] || res[i].ended)
                continue;
            if (pd_engine_job_poll(jobs[i], collect, &res[i])) {
                res[i].ended = true;
                left--;
            }
        }
    }
}

/* ---- requests --------------------------------------------------------------------------- */

typedef struct msg {
    pd_chat_role role;
    const char *text;
} msg;

static void req_build(pd_chat_request *r, const msg *m, size_t n, int max_tokens)
{
    pd_chat_request_init(r);
    r->messages = pd_chat_request_alloc(r, n, sizeof *r->messages); /* canon/chat.h: in r's arena */
    r->n_messages = n;
    for (size_t i = 0; i < n; i++) {
        r->messages[i].role = m[i].role;
        r->messages[i].parts = pd_chat_request_alloc(r, 1, sizeof(pd_chat_part));
        r->messages[i].n_parts = 1;
        r->messages[i].parts[0].kind = PD_PART_TEXT;
        r->messages[i].parts[0].text = pd_chat_request_strdup(r, m[i].text);
    }
    if (max_tokens > 0) {
        r->sampling.has_max_tokens = true;
        r->sampling.max_tokens = max_tokens;
    }
    r->sampling.has_temperature = true;
    r->sampling.temperature = 0;
    r->sampling.logprobs = PD_TRI_TRUE;
    r->sampling.has_top_logprobs = true;
    r->sampling.top_logprobs = 3;
}

static void req_stop(pd_chat_request *r, const char *stop)
{
    r->sampling.stop = pd_chat_request_alloc(r, 1, sizeof(char *));
    r->sampling.stop[0] = pd_chat_request_strdup(r, stop);
    r->sampling.n_stop = 1;
}

static pd_engine_job *submit(pd_engine *eng, const pd_chat_request *req, pd_api_error *err)
{
    pd_engine_sink sink = {on_wake, &g_w};
    pd_engine_job *job = NULL;
    pd_api_error e;
    if (pd_engine_submit(eng, req, &sink, &job, err ? err : &e) != PD_OK)
        return NULL;
    return job;
}

/* Submits and runs one request to its end. */
static bool run_one(pd_engine *eng, const pd_chat_request *req, result *r)
{
    result_init(r);
    pd_engine_job *job = submit(eng, req, NULL);
    if (!job)
        return false;
    run_all(&job, r, 1);
    pd_engine_job_free(job);
    return true;
}

/* ---- llama-server ----------------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    pd_buf_append(ud, p, sz * n);
    return sz * n;
}

/* POSTs body (a reference it takes) and returns the parsed answer, or NULL. */
static json_t *http_post(const char *base, const char *path, json_t *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    char *text = json_dumps(body, JSON_COMPACT);
    pd_buf out;
    pd_buf_init(&out, 0);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "content-type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(text);
    json_decref(body);
    json_t *j = rc == CURLE_OK ? json_loadb(out.data ? out.data : "", out.len, 0, NULL) : NULL;
    if (!j)
        fprintf(stderr, "  POST %s failed: %s\n", url,
                out.data ? out.data : curl_easy_strerror(rc));
    pd_buf_free(&out);
    return j;
}

static const char *role_str(pd_chat_role r)
{
    return pd_chat_role_name(r);
}

/* The same question as an OpenAI body for llama-server (its prompt cache off, so every answer
   is computed from scratch like the engine's first). */
static json_t *server_body(const pd_chat_request *req)
{
    json_t *msgs = json_array();
    for (size_t i = 0; i < req->n_messages; i++)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", role_str(req->messages[i].role),
                                              "content", req->messages[i].parts[0].text));
    const pd_chat_sampling *s = &req->sampling;
    json_t *b = json_pack("{s:o,s:b,s:b,s:i}", "messages", msgs, "cache_prompt", 0, "logprobs", 1,
                          "top_logprobs", (int)s->top_logprobs);
    if (s->has_max_tokens)
        json_object_set_new(b, "max_tokens", json_integer(s->max_tokens));
    if (s->has_temperature)
        json_object_set_new(b, "temperature", json_real(s->temperature));
    if (s->has_seed)
        json_object_set_new(b, "seed", json_integer(s->seed));
    if (s->n_stop) {
        json_t *st = json_array();
        for (size_t i = 0; i < s->n_stop; i++)
            json_array_append_new(st, json_string(s->stop[i]));
        json_object_set_new(b, "stop", st);
    }
    return b;
}

/* Compares the engine's result with llama-server's answer to the same request: text, finish
   reason, usage, and token by token ids and logprobs (1e-3), top alternatives included.
   extra: the engine may report that many more tokens than the server (after a stop string,
   the engine reports every token with a visible byte; llama-server drops as many tokens as
   the stop string has when tokenized alone). */
static void compare_with_server_x(const pd_chat_request *req, const result *r, const char *what,
                                  size_t extra)
{
    json_t *ans = http_post(g_server, "/v1/chat/completions", server_body(req));
    CHECK(ans != NULL);
    if (!ans)
        return;
    json_t *ch = json_array_get(json_object_get(ans, "choices"), 0);
    const char *text =
        json_string_value(json_object_get(json_object_get(ch, "message"), "content"));
    const char *finish = json_string_value(json_object_get(ch, "finish_reason"));
    json_t *content = json_object_get(json_object_get(ch, "logprobs"), "content");
    json_t *usage = json_object_get(ans, "usage");
    const pd_chat_choice *c = r->resp.n_choices ? &r->resp.choices[0] : NULL;
    int bad = test_failed_checks;
    CHECK(c != NULL);
    CHECK_STR(result_text(r, 0), text ? text : "(none)");
    CHECK_STR(c ? pd_chat_finish_name(c->finish) : "", finish ? finish : "(none)");
    CHECK(r->resp.usage.prompt_tokens ==
          json_integer_value(json_object_get(usage, "prompt_tokens")));
    CHECK(r->resp.usage.completion_tokens ==
          json_integer_value(json_object_get(usage, "completion_tokens")));
    size_t n = json_array_size(content), worst_i = 0;
    CHECK(n + extra == r->n_ids[0]);
    double worst = 0;
    for (size_t i = 0; i < n && i < r->n_ids[0]; i++) {
        json_t *t = json_array_get(content, i);
        CHECK(json_integer_value(json_object_get(t, "id")) == r->ids[0][i]);
        double d = fabs(json_real_value(json_object_get(t, "logprob")) - r->lps[0][i]);
        if (d > worst)
            worst = d, worst_i = i;
        /* the engine's top alternatives, from its logprobs JSON, against the server's */
        json_t *mine = json_array_get(json_object_get(c->logprobs, "content"), i);
        json_t *top_s = json_object_get(t, "top_logprobs"),
               *top_m = json_object_get(mine, "top_logprobs");
        CHECK(json_array_size(top_s) == json_array_size(top_m));
        for (size_t k = 0; k < json_array_size(top_s) && k < json_array_size(top_m); k++) {
            double a = json_real_value(json_object_get(json_array_get(top_s, k), "logprob"));
            double b = json_real_value(json_object_get(json_array_get(top_m, k), "logprob"));
            CHECK(fabs(a - b) < 1e-3);
        }
    }
    CHECK(worst < 1e-3);
    printf("  %s: %zu tokens equal to llama-server's, max |logprob diff| %.2e (token %zu)%s\n",
           what, n, worst, worst_i, test_failed_checks == bad ? "" : "  MISMATCH");
    json_decref(ans);
}

static void compare_with_server(const pd_chat_request *req, const result *r, const char *what)
{
    compare_with_server_x(req, r, what, 0);
}

/* ---- engines ---------------------------------------------------------------------------- */

/* An engine on the test model, one thread, with p's other settings, once it is ready; NULL (and
   a failed check) when it cannot be opened or does not get ready. */
static pd_engine *open_engine_with(pd_engine_params p)
{
    p.model_path = g_model;
    p.threads = 1;
    pd_engine *eng = NULL;
    char err[256];
    CHECK(pd_engine_open(&p, &eng, err, sizeof err) == PD_OK);
    if (eng && pd_engine_wait_ready(eng, 60000) != PD_ENGINE_READY) {
        CHECK(false);
        pd_engine_close(eng);
        eng = NULL;
    }
    return eng;
}

static pd_engine *open_engine(uint32_t parallel, uint32_t ctx, uint32_t chunk, bool embeddings)
{
    pd_engine_params p = pd_engine_default_params();
    p.parallel = parallel;
    p.ctx_size = ctx;
    p.prompt_chunk = chunk;
    p.embeddings = embeddings;
    if (embeddings)
        p.pooling = PD_ENGINE_POOLING_MEAN;
    return open_engine_with(p);
}

static const msg P1[] = {{PD_ROLE_USER, "Hello there"}};
static const msg P2[] = {{PD_ROLE_SYSTEM, "You are a terse assistant."},
                         {PD_ROLE_USER, "Write a haiku about the sea."}};
static const msg P3[] = {{PD_ROLE_USER, "Translate to French: good morning, how are you?"}};
static const msg P4[] = {{PD_ROLE_USER, "Hi"},
                         {PD_ROLE_ASSISTANT, "Hello! How can I help?"},
                         {PD_ROLE_USER, "Tell me about llamas. \xC3\x9Cn\xC3\xAF "
                                        "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x8E\x89"}};
static const struct {
    const msg *m;
    size_t n;
} PROMPTS[] = {{P1, 1}, {P2, 2}, {P3, 1}, {P4, 3}};

static pd_engine *g_eng1; /* parallel 1, ctx 2048: the server's configuration */

/* ---- tests ------------------------------------------------------------------------------ */

static void test_greedy_matches_server(void)
{
    for (size_t i = 0; i < 4; i++) {
        pd_chat_request req;
        req_build(&req, PROMPTS[i].m, PROMPTS[i].n, 32);
        result r;
        CHECK(run_one(g_eng1, &req, &r));
        CHECK(r.order_ok && !r.error && r.seen_usage);
        CHECK(r.resp.usage.completion_tokens == 32);
        CHECK(r.resp.n_choices == 1 && r.resp.choices[0].finish == PD_FINISH_LENGTH);
        char what[32];
        snprintf(what, sizeof what, "greedy prompt %zu", i + 1);
        compare_with_server(&req, &r, what);
        pd_chat_response_free(&r.resp);
        pd_chat_request_free(&req);
    }
}

static void test_seeded_sampling_matches_server(void)
{
    pd_chat_request req;
    req_build(&req, P2, 2, 24);
    req.sampling.temperature = 0.9;
    req.sampling.has_seed = true;
    req.sampling.seed = 1234;
    result r;
    CHECK(run_one(g_eng1, &req, &r));
    compare_with_server(&req, &r, "seeded sampling (T=0.9, seed 1234)");
    result r2; /* same seed again: same text */
    CHECK(run_one(g_eng1, &req, &r2));
    CHECK_STR(result_text(&r2, 0), result_text(&r, 0));
    pd_chat_response_free(&r.resp);
    pd_chat_response_free(&r2.resp);
    pd_chat_request_free(&req);
}

/* ---- streamed logprobs ------------------------------------------------------------------ *
 * Both sides are read as a client reads them: OpenAI chunks on the wire, decoded by the
 * gateway's OpenAI decoder, the logprobs.content of every TEXT chunk appended in order. */

typedef struct wire {
    pd_sse_parser sse;
    pd_openai_decoder dec;
    json_t *content; /* the accumulated logprobs.content */
    int text_chunks, bad;
} wire;

static void wire_init(wire *w)
{
    pd_sse_init(&w->sse, 0);
    pd_openai_decoder_init(&w->dec);
    w->content = json_array();
    w->text_chunks = w->bad = 0;
}

static void wire_free(wire *w)
{
    pd_sse_free(&w->sse);
    json_decref(w->content);
}

static int wire_event(void *ud, const pd_chat_event *ev)
{
    wire *w = ud;
    if (ev->kind == PD_EVENT_TEXT && ev->logprobs) {
        w->text_chunks++;
        json_array_extend(w->content, json_object_get(ev->logprobs, "content"));
    }
    return 0;
}

static int wire_sse(void *ud, const pd_sse_event *ev)
{
    wire *w = ud;
    if (pd_openai_decode_chunk(&w->dec, ev->data, ev->data_len, wire_event, w) != PD_OK)
        w->bad++;
    return 0;
}

static size_t wire_body(char *p, size_t sz, size_t n, void *ud)
{
    wire *w = ud;
    if (pd_sse_feed(&w->sse, p, sz * n, wire_sse, w) != PD_OK)
        w->bad++;
    return sz * n;
}

/* llama-server's streamed answer to req, into w. */
static void server_stream(const pd_chat_request *req, wire *w)
{
    json_t *body = server_body(req);
    json_object_set_new(body, "stream", json_true());
    char url[256], *text = json_dumps(body, JSON_COMPACT);
    snprintf(url, sizeof url, "%s/v1/chat/completions", g_server);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "content-type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wire_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    CHECK(curl_easy_perform(c) == CURLE_OK);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(text);
    json_decref(body);
}

typedef struct engine_wire {
    pd_openai_encoder enc;
    pd_buf out;
    wire *w;
} engine_wire;

/* The engine's events as the gateway streams them: encoded to OpenAI chunks, then read back. */
static int engine_event(void *ud, const pd_engine_event *ev)
{
    engine_wire *ew = ud;
    ew->out.len = 0;
    if (ev->chat.kind == PD_EVENT_TEXT && ev->n_logprobs)
        CHECK(json_array_size(json_object_get(ev->chat.logprobs, "content")) == ev->n_logprobs);
    CHECK(pd_openai_encode_event(&ew->enc, &ev->chat, &ew->out) == PD_OK);
    CHECK(pd_sse_feed(&ew->w->sse, ew->out.data, ew->out.len, wire_sse, ew->w) == PD_OK);
    return 0;
}

static void engine_stream(pd_engine *eng, const pd_chat_request *req, wire *w)
{
    engine_wire ew = {.w = w};
    pd_openai_encoder_init(&ew.enc, "chatcmpl-test", "tiny", 1700000000);
    pd_buf_init(&ew.out, 0);
    pd_engine_job *job = submit(eng, req, NULL);
    CHECK(job != NULL);
    while (job && !pd_engine_job_poll(job, engine_event, &ew))
        wait_wake(&g_w);
    pd_engine_job_free(job);
    pd_buf_free(&ew.out);
    pd_openai_encoder_free(&ew.enc);
}

/* Token by token: the same bytes, logprobs within 1e-3, the same alternatives. Returns the
   largest difference. */
static double compare_content(const json_t *mine, const json_t *theirs)
{
    double worst = 0;
    CHECK(json_array_size(mine) == json_array_size(theirs));
    for (size_t i = 0; i < json_array_size(mine) && i < json_array_size(theirs); i++) {
        const json_t *a = json_array_get(mine, i), *b = json_array_get(theirs, i);
        CHECK(json_equal(json_object_get(a, "bytes"), json_object_get(b, "bytes")));
        double d = fabs(json_number_value(json_object_get(a, "logprob")) -
                        json_number_value(json_object_get(b, "logprob")));
        worst = d > worst ? d : worst;
        const json_t *ta = json_object_get(a, "top_logprobs"),
                     *tb = json_object_get(b, "top_logprobs");
        CHECK(json_array_size(ta) == json_array_size(tb));
        for (size_t k = 0; k < json_array_size(ta) && k < json_array_size(tb); k++) {
            const json_t *x = json_array_get(ta, k), *y = json_array_get(tb, k);
            double dk = fabs(json_number_value(json_object_get(x, "logprob")) -
                             json_number_value(json_object_get(y, "logprob")));
            CHECK(dk < 1e-3);
            CHECK(json_equal(json_object_get(x, "bytes"), json_object_get(y, "bytes")));
        }
    }
    CHECK(worst < 1e-3);
    return worst;
}

static void test_stream_logprobs_match_server(void)
{
    for (size_t i = 0; i < 4; i++) {
        pd_chat_request req;
        req_build(&req, PROMPTS[i].m, PROMPTS[i].n, 32);
        req.stream = true;
        wire mine, theirs;
        wire_init(&mine);
        wire_init(&theirs);
        engine_stream(g_eng1, &req, &mine);
        server_stream(&req, &theirs);
        CHECK(mine.bad == 0 && theirs.bad == 0);
        CHECK(theirs.dec.done);
        CHECK(json_array_size(mine.content) == 32);
        double worst = compare_content(mine.content, theirs.content);
        printf("  streamed prompt %zu: %zu tokens in %d chunks (llama-server: %d), max |logprob "
               "diff| %.2e\n",
               i + 1, json_array_size(mine.content), mine.text_chunks, theirs.text_chunks, worst);
        wire_free(&mine);
        wire_free(&theirs);
        pd_chat_request_free(&req);
    }
}

/* A stop string made of the end of one token and the start of the next. */
static void test_stop_across_tokens(void)
{
    pd_chat_request req;
    req_build(&req, P2, 2, 32);
    result full;
    CHECK(run_one(g_eng1, &req, &full));
    const char *text = result_text(&full, 0);
    /* the byte offset where token 5 starts: the pieces of the first 5 tokens */
    json_t *lp = json_object_get(full.resp.choices[0].logprobs, "content");
    size_t cut = 0;
    for (size_t i = 0; i < 5; i++)
        cut += json_array_size(json_object_get(json_array_get(lp, i), "bytes"));
    size_t l4 = json_array_size(json_object_get(json_array_get(lp, 4), "bytes"));
    size_t l5 = json_array_size(json_object_get(json_array_get(lp, 5), "bytes"));
    CHECK(l4 >= 2 && l5 >= 2);
    char stop[8];
    memcpy(stop, text + cut - 2, 4); /* 2 bytes of token 4, 2 of token 5 */
    stop[4] = '\0';
    req_stop(&req, stop);
    result r;
    CHECK(run_one(g_eng1, &req, &r));
    const char *hit = strstr(text, stop);
    CHECK(hit != NULL);
    size_t expect_len = hit ? (size_t)(hit - text) : 0;
    CHECK(strlen(result_text(&r, 0)) == expect_len);
    CHECK(strncmp(result_text(&r, 0), text, expect_len) == 0);
    CHECK(r.resp.choices[0].finish == PD_FINISH_STOP);
    /* logprobs: every token with at least one byte in the text, here tokens 0..4 */
    size_t visible = 0, start = 0;
    for (size_t i = 0; start < expect_len; i++) {
        start += json_array_size(json_object_get(json_array_get(lp, i), "bytes"));
        visible++;
    }
    CHECK(r.n_ids[0] == visible && visible == 5);
    CHECK(memcmp(r.ids[0], full.ids[0], visible * sizeof(int32_t)) == 0);
    printf("  stop spanning tokens 5 and 6: text cut at byte %zu, finish stop, %zu tokens in "
           "logprobs\n",
           expect_len, visible);
    compare_with_server_x(&req, &r, "stop string", 1);
    pd_chat_response_free(&full.resp);
    pd_chat_response_free(&r.resp);
    pd_chat_request_free(&req);
}

static void test_max_tokens(void)
{
    pd_chat_request req;
    req_build(&req, P3, 1, 5);
    result r;
    CHECK(run_one(g_eng1, &req, &r));
    CHECK(r.resp.usage.completion_tokens == 5 && r.n_ids[0] == 5);
    CHECK(r.resp.choices[0].finish == PD_FINISH_LENGTH);
    compare_with_server(&req, &r, "max_tokens 5");
    pd_chat_response_free(&r.resp);
    pd_chat_request_free(&req);
}

/* Without max_tokens, generation ends when the sequence's context is full (as llama-server). */
static void test_context_full(void)
{
    pd_engine *eng = open_engine(2, 512, 128, false); /* 256 tokens per sequence */
    if (!eng)
        return;
    pd_chat_request req;
    req_build(&req, P1, 1, 0);
    result r;
    CHECK(run_one(eng, &req, &r));
    CHECK(r.resp.usage.prompt_tokens + r.resp.usage.completion_tokens == 256);
    CHECK(r.resp.choices[0].finish == PD_FINISH_LENGTH);
    printf("  context full: %lld + %lld tokens = 256, finish length\n",
           (long long)r.resp.usage.prompt_tokens, (long long)r.resp.usage.completion_tokens);
    pd_chat_response_free(&r.resp);
    pd_engine_close(eng);
    /* the server's configuration: the whole 2048-token context, token for token */
    CHECK(run_one(g_eng1, &req, &r));
    CHECK(r.resp.usage.prompt_tokens + r.resp.usage.completion_tokens == 2048);
    compare_with_server(&req, &r, "no max_tokens, context of 2048 filled");
    pd_chat_response_free(&r.resp);
    pd_chat_request_free(&req);
}

static char *long_text(size_t words)
{
    static const char *w[] = {"river", "stone", "cloud", "lantern", "orchard", "meadow", "copper"};
    pd_buf b;
    pd_buf_init(&b, 0);
    for (size_t i = 0; i < words; i++)
        pd_buf_printf(&b, "%s%s", i ? " " : "", w[(i * 7 + i / 3) % 7]);
    return b.data;
}

static void test_prompt_too_long(void)
{
    pd_engine *eng = open_engine(1, 256, 128, false);
    if (!eng)
        return;
    char *text = long_text(400);
    msg m[] = {{PD_ROLE_USER, text}};
    pd_chat_request req;
    req_build(&req, m, 1, 8);
    result r;
    CHECK(run_one(eng, &req, &r));
    CHECK(r.error && r.status == 400 && r.n_events == 1);
    CHECK_STR(r.code, "context_length_exceeded");
    /* the engine serves the next request normally */
    pd_chat_request small;
    req_build(&small, P1, 1, 4);
    result r2;
    CHECK(run_one(eng, &small, &r2));
    CHECK(!r2.error && r2.resp.usage.completion_tokens == 4);
    free(text);
    pd_chat_response_free(&r.resp);
    pd_chat_response_free(&r2.resp);
    pd_chat_request_free(&req);
    pd_chat_request_free(&small);
    pd_engine_close(eng);
}

/* Four streams at once, one of them with a long prompt that is read in chunks while the
   others generate: each equals its own single-stream result. */
static void test_concurrent_equals_single(void)
{
    pd_engine *eng = open_engine(4, 8192, 32, false);
    if (!eng)
        return;
    char *text = long_text(500);
    msg longm[] = {{PD_ROLE_USER, text}};
    pd_chat_request req[4];
    for (size_t i = 0; i < 3; i++)
        req_build(&req[i], PROMPTS[i].m, PROMPTS[i].n, 48);
    req_build(&req[3], longm, 1, 16);
    static result single[4], multi[4];
    for (size_t i = 0; i < 4; i++)
        CHECK(run_one(eng, &req[i], &single[i]));
    pd_engine_stats before, after;
    pd_engine_stats_get(eng, &before);
    pd_engine_job *jobs[4];
    for (size_t i = 0; i < 4; i++) {
        result_init(&multi[i]);
        jobs[i] = submit(eng, &req[i], NULL);
        CHECK(jobs[i] != NULL);
        if (i == 2)
            usleep(20000); /* the long prompt arrives while the others generate */
    }
    run_all(jobs, multi, 4);
    pd_engine_stats_get(eng, &after);
    for (size_t i = 0; i < 4; i++) {
        CHECK(multi[i].n_ids[0] == single[i].n_ids[0]);
        CHECK(memcmp(multi[i].ids[0], single[i].ids[0], single[i].n_ids[0] * 4) == 0);
        CHECK_STR(result_text(&multi[i], 0), result_text(&single[i], 0));
        pd_engine_job_free(jobs[i]);
    }
    uint64_t steps = after.decode_steps - before.decode_steps;
    uint64_t toks = after.tokens_generated - before.tokens_generated;
    printf("  4 concurrent streams (one with a %lld-token prompt): equal to single runs; "
           "%llu tokens in %llu decode steps\n",
           (long long)single[3].resp.usage.prompt_tokens, (unsigned long long)toks,
           (unsigned long long)steps);
    CHECK(steps < toks); /* tokens of several streams shared steps */
    for (size_t i = 0; i < 4; i++) {
        pd_chat_response_free(&single[i].resp);
        pd_chat_response_free(&multi[i].resp);
        pd_chat_request_free(&req[i]);
    }
    free(text);
    pd_engine_close(eng);
}

/* Requests reaching an idle engine a fraction of a millisecond apart are read in one step
   (settle_burst), even with a prompt_chunk smaller than their prompts together: started with
   the first alone, the others would be read beside it a chunk at a time. The wait is 50 ms
   here, not the default 1 ms: a loaded machine may hold this thread between two submissions
   for more than 1 ms, and the test is about the mechanism. */
static void test_burst_one_step(void)
{
    pd_engine_params p = pd_engine_default_params();
    p.parallel = 4;
    p.ctx_size = 8192;
    p.prompt_chunk = 8;
    p.admit_wait_us = 50000;
    pd_engine *eng = open_engine_with(p);
    if (!eng)
        return;
    pd_chat_request req[4];
    for (size_t i = 0; i < 3; i++)
        req_build(&req[i], PROMPTS[i].m, PROMPTS[i].n, 1);
    req_build(&req[3], P4, sizeof P4 / sizeof P4[0], 1);
    static result res[4];
    pd_engine_stats before, after;
    pd_engine_stats_get(eng, &before);
    pd_engine_job *jobs[4];
    for (size_t i = 0; i < 4; i++) {
        result_init(&res[i]);
        jobs[i] = submit(eng, &req[i], NULL);
        CHECK(jobs[i] != NULL);
        usleep(200);
    }
    run_all(jobs, res, 4);
    pd_engine_stats_get(eng, &after);
    printf("  4 requests 0.2 ms apart to an idle engine: %llu decode step(s)\n",
           (unsigned long long)(after.decode_steps - before.decode_steps));
    CHECK(after.decode_steps - before.decode_steps == 1);
    for (size_t i = 0; i < 4; i++) {
        CHECK(res[i].n_ids[0] == 1);
        pd_engine_job_free(jobs[i]);
        pd_chat_response_free(&res[i].resp);
        pd_chat_request_free(&req[i]);
    }
    pd_engine_close(eng);
}

static void test_n_choices(void)
{
    pd_engine *eng = open_engine(4, 8192, 128, false);
    if (!eng)
        return;
    pd_chat_request req;
    req_build(&req, P3, 1, 16);
    result one, three;
    CHECK(run_one(eng, &req, &one));
    req.sampling.has_n = true;
    req.sampling.n = 3;
    CHECK(run_one(eng, &req, &three));
    CHECK(three.resp.n_choices == 3 && three.order_ok);
    for (uint32_t c = 0; c < 3 && c < three.resp.n_choices; c++) {
        CHECK_STR(result_text(&three, c), result_text(&one, 0));
        CHECK(three.n_ids[c] == 16);
    }
    CHECK(three.resp.usage.completion_tokens == 48);
    req.sampling.n = 5; /* more than the parallel sequences */
    pd_api_error err;
    CHECK(submit(eng, &req, &err) == NULL);
    CHECK(err.status == 400 && strcmp(err.param, "n") == 0);
    /* sampled choices with a seed differ from each other */
    req.sampling.n = 2;
    req.sampling.temperature = 1.0;
    req.sampling.has_seed = true;
    req.sampling.seed = 99;
    result two;
    CHECK(run_one(eng, &req, &two));
    CHECK(two.resp.n_choices == 2 && strcmp(result_text(&two, 0), result_text(&two, 1)) != 0);
    printf("  n=3 greedy: 3 choices equal to n=1; n=5 > parallel: 400; n=2 sampled: distinct\n");
    pd_chat_response_free(&one.resp);
    pd_chat_response_free(&three.resp);
    pd_chat_response_free(&two.resp);
    pd_chat_request_free(&req);
    pd_engine_close(eng);
}

/* Client disconnect mid-stream: the sequence is freed and the next request is served. */
static void test_cancel(void)
{
    pd_engine *eng = open_engine(1, 2048, 128, false);
    if (!eng)
        return;
    pd_chat_request req;
    req_build(&req, P1, 1, 1500);
    result r;
    result_init(&r);
    pd_engine_job *job = submit(eng, &req, NULL);
    CHECK(job != NULL);
    while (job && r.n_text < 5) {
        wait_wake(&g_w);
        pd_engine_job_poll(job, collect, &r);
    }
    pd_engine_job_free(job); /* the client went away */
    pd_chat_request small;
    req_build(&small, P3, 1, 4);
    result r2;
    CHECK(run_one(eng, &small, &r2)); /* parallel 1: served only once the sequence is free */
    CHECK(!r2.error && r2.resp.usage.completion_tokens == 4);
    pd_engine_stats st;
    pd_engine_stats_get(eng, &st);
    CHECK(st.jobs_cancelled == 1 && st.active == 0 && st.queued == 0);
    CHECK(st.tokens_generated < 100);
    /* cancelling from the event callback (non-zero return) works the same way */
    result r3;
    result_init(&r3);
    r3.cancel_after = 3;
    job = submit(eng, &req, NULL);
    run_all(&job, &r3, 1);
    pd_engine_job_free(job);
    pd_chat_response_free(&r2.resp);
    CHECK(run_one(eng, &small, &r2));
    pd_engine_stats_get(eng, &st);
    CHECK(st.jobs_cancelled == 2 && st.active == 0);
    printf("  cancel after 5 tokens: sequence freed (%llu tokens generated in all), next request "
           "served\n",
           (unsigned long long)st.tokens_generated);
    pd_chat_response_free(&r.resp);
    pd_chat_response_free(&r2.resp);
    pd_chat_response_free(&r3.resp);
    pd_chat_request_free(&req);
    pd_chat_request_free(&small);
    pd_engine_close(eng);
}

/* A follow-up turn reuses the cached prefix: fewer tokens evaluated, same output. */
static void test_prefix_reuse(void)
{
    pd_engine *eng = open_engine(2, 4096, 128, false);
    if (!eng)
        return;
    pd_chat_request t1;
    req_build(&t1, P2, 2, 12);
    result r1;
    CHECK(run_one(eng, &t1, &r1));
    msg turn2[] = {P2[0],
                   P2[1],
                   {PD_ROLE_ASSISTANT, result_text(&r1, 0)},
                   {PD_ROLE_USER, "Now one about mountains."}};
    pd_chat_request t2;
    req_build(&t2, turn2, 4, 12);
    pd_engine_stats before, after;
    pd_engine_stats_get(eng, &before);
    result r2;
    CHECK(run_one(eng, &t2, &r2));
    pd_engine_stats_get(eng, &after);
    uint64_t evaluated = after.prompt_tokens_evaluated - before.prompt_tokens_evaluated;
    CHECK(r2.resp.usage.cached_tokens >= r1.resp.usage.prompt_tokens);
    CHECK((int64_t)evaluated == r2.resp.usage.prompt_tokens - r2.resp.usage.cached_tokens);
    printf("  follow-up turn: %lld prompt tokens, %lld reused, %llu evaluated\n",
           (long long)r2.resp.usage.prompt_tokens, (long long)r2.resp.usage.cached_tokens,
           (unsigned long long)evaluated);
    /* same output as without the cache: a fresh engine, and llama-server */
    pd_engine *fresh = open_engine(2, 4096, 128, false);
    result r3;
    CHECK(fresh && run_one(fresh, &t2, &r3));
    CHECK(r3.resp.usage.cached_tokens == 0);
    CHECK_STR(result_text(&r2, 0), result_text(&r3, 0));
    compare_with_server(&t2, &r2, "follow-up turn with reused prefix");
    pd_chat_response_free(&r1.resp);
    pd_chat_response_free(&r2.resp);
    pd_chat_response_free(&r3.resp);
    pd_chat_request_free(&t1);
    pd_chat_request_free(&t2);
    pd_engine_close(fresh);
    pd_engine_close(eng);
}

/* A caller that polls rarely: the engine pauses its sequence instead of buffering without
   bound, and nothing is lost. Also: wake-ups are fewer than tokens. */
static void test_backpressure(void)
{
    pd_engine_params p = pd_engine_default_params();
    p.parallel = 1;
    p.ctx_size = 2048;
    p.job_buffer = 1024;
    pd_engine *eng = open_engine_with(p);
    if (!eng)
        return;
    pd_chat_request req;
    req_build(&req, P2, 2, 200);
    result slow, fast;
    result_init(&slow);
    pthread_mutex_lock(&g_w.mu);
    int wakes0 = g_w.wakes;
    pthread_mutex_unlock(&g_w.mu);
    pd_engine_job *job = submit(eng, &req, NULL);
    bool done = false;
    int polls = 0;
    while (job && !done) {
        usleep(30000); /* a slow client: ~33 polls a second */
        done = pd_engine_job_poll(job, collect, &slow);
        polls++;
    }
    pthread_mutex_lock(&g_w.mu);
    int wakes = g_w.wakes - wakes0;
    g_w.pending = 0;
    pthread_mutex_unlock(&g_w.mu);
    pd_engine_job_free(job);
    pd_engine_close(eng);
    eng = open_engine(1, 2048, 128, false);
    CHECK(eng && run_one(eng, &req, &fast));
    CHECK(slow.n_ids[0] == 200 && slow.order_ok);
    CHECK(memcmp(slow.ids[0], fast.ids[0], 200 * 4) == 0);
    CHECK(wakes <= polls + 1);
    printf("  slow consumer (1 KiB buffer): 200 tokens intact over %d polls, %d wake-ups\n", polls,
           wakes);
    pd_chat_response_free(&slow.resp);
    pd_chat_response_free(&fast.resp);
    pd_chat_request_free(&req);
    pd_engine_close(eng);
}

static void test_rejections(void)
{
    pd_chat_request req;
    req_build(&req, P1, 1, 8);
    pd_api_error err;
    req.n_tools = 1; /* only the count is looked at before rejecting */
    CHECK(submit(g_eng1, &req, &err) == NULL && err.status == 400);
    req.n_tools = 0;
    req.sampling.has_top_logprobs = true;
    req.sampling.top_logprobs = 21;
    CHECK(submit(g_eng1, &req, &err) == NULL && err.status == 400);
    req.sampling.top_logprobs = 3;
    req.sampling.temperature = -1;
    CHECK(submit(g_eng1, &req, &err) == NULL && err.status == 400);
    pd_chat_request_free(&req);
}

static void test_embeddings(void)
{
    pd_engine *eng = open_engine(1, 2048, 128, true);
    if (!eng)
        return;
    pd_embed_request req;
    pd_embed_request_init(&req);
    const char *inputs[] = {"The quick brown fox", "jumps over the lazy dog",
                            "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E text"};
    req.inputs = calloc(3, sizeof(char *));
    for (size_t i = 0; i < 3; i++)
        req.inputs[i] = strdup(inputs[i]);
    req.n_inputs = 3;
    pd_engine_sink sink = {on_wake, &g_w};
    pd_engine_job *job = NULL;
    pd_api_error err;
    CHECK(pd_engine_embed(eng, &req, &sink, &job, &err) == PD_OK);
    pd_embed_response resp;
    pd_embed_response_init(&resp);
    pd_result rc = PD_ERR_PARTIAL;
    while (job && rc == PD_ERR_PARTIAL) {
        wait_wake(&g_w);
        rc = pd_engine_job_embeddings(job, &resp, &err);
    }
    pd_engine_job_free(job);
    CHECK(rc == PD_OK && resp.n_vectors == 3);
    if (g_embed_server && rc == PD_OK) {
        json_t *in = json_array();
        for (size_t i = 0; i < 3; i++)
            json_array_append_new(in, json_string(inputs[i]));
        json_t *ans = http_post(g_embed_server, "/v1/embeddings", json_pack("{s:o}", "input", in));
        json_t *data = json_object_get(ans, "data");
        CHECK(json_array_size(data) == 3);
        double worst = 0;
        for (size_t i = 0; i < 3 && i < json_array_size(data); i++) {
            json_t *v = json_object_get(json_array_get(data, i), "embedding");
            CHECK(json_array_size(v) == resp.vectors[i].n);
            for (size_t k = 0; k < json_array_size(v) && k < resp.vectors[i].n; k++) {
                double d = fabs(json_real_value(json_array_get(v, k)) - resp.vectors[i].values[k]);
                if (d > worst)
                    worst = d;
            }
        }
        CHECK(worst < 1e-4);
        CHECK(resp.prompt_tokens ==
              json_integer_value(json_object_get(json_object_get(ans, "usage"), "prompt_tokens")));
        printf("  embeddings: 3 vectors of %zu, max |diff| vs llama-server %.2e, %lld tokens\n",
               resp.vectors[0].n, worst, (long long)resp.prompt_tokens);
        json_decref(ans);
    }
    pd_embed_response_free(&resp);
    pd_embed_request_free(&req);
    pd_engine_close(eng);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_engine MODEL.gguf SERVER_URL [EMBED_SERVER_URL]\n");
        return 2;
    }
    g_model = argv[1];
    g_server = argv[2];
    g_embed_server = argc > 3 ? argv[3] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_eng1 = open_engine(1, 2048, 128, false);
    if (!g_eng1)
        return 1;
    TEST_RUN(test_greedy_matches_server);
    TEST_RUN(test_seeded_sampling_matches_server);
    TEST_RUN(test_stream_logprobs_match_server);
    TEST_RUN(test_stop_across_tokens);
    TEST_RUN(test_max_tokens);
    TEST_RUN(test_burst_one_step);
    TEST_RUN(test_rejections);
    TEST_RUN(test_context_full);
    TEST_RUN(test_prompt_too_long);
    TEST_RUN(test_concurrent_equals_single);
    TEST_RUN(test_n_choices);
    TEST_RUN(test_cancel);
    TEST_RUN(test_prefix_reuse);
    TEST_RUN(test_backpressure);
    TEST_RUN(test_embeddings);
    pd_engine_close(g_eng1);
    curl_global_cleanup();
    return TEST_DONE();
}
