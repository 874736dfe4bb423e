/* bench/translate.c: what dialect translation costs, per request and per stream event.
 *
 * Uses the real codecs (proto/anthropic.h, proto/openai.h) the way the relay does:
 *   request  parse the client's body in one dialect into the canonical request, write it in the
 *            other (then free it): Anthropic -> OpenAI and OpenAI -> Anthropic, on a ~2 KB
 *            request with a system prompt, tools, a tool call and its result. One sample per
 *            request; p50/p99 over many.
 *   stream   a 500-event upstream SSE stream decoded into canonical events and re-encoded for
 *            the client (Anthropic -> OpenAI chunks, and OpenAI -> Anthropic events), fed one
 *            SSE event per read as the network delivers them, output reset after each read (as
 *            the relay flushes it). One sample per whole stream (decoder/encoder set-up
 *            included), divided by 500 = ns per event.
 *   pass     for comparison, what the OpenAI -> OpenAI relay did per event instead: SSE parse,
 *            json_loadb of the payload (the validity check), write it back out (pd_sse_write);
 *            and what it does now: SSE parse + the openai provider's pass_event (the check by
 *            proto/fastev on the common chunk, json_loadb on the others), for a client that did
 *            not ask for stream usage (the "usage": null the gateway asked for is cut).
 *
 * Two clocks. p50/p99 are wall clock (CLOCK_MONOTONIC, one sample per request or stream); on a
 * shared machine they include time the thread spent descheduled. "cpu" is the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) over the whole measurement divided by the operations done: the
 * mean cost with the waiting taken out (that clock is a system call, too slow to read per
 * request). "on-cpu" is cpu / wall: well below 100% means the machine was busy and the wall
 * numbers are inflated. Targets: < 5 us per request, < 200 ns per event.
 * Usage: bench_translate [seconds per measurement, default 1.5]. Build and run: bench/run-c.sh
 * translate. */
#include "canon/chat.h"
#include "core/buf.h"
#include "proto/anthropic.h"
#include "proto/openai.h"
#include "proto/sse.h"
#include "providers/provider.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_EVENTS 500
#define MAX_SAMPLES 400000

static double g_seconds = 1.5;

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_translate: %s\n", what);
    exit(1);
}

/* ---- samples ------------------------------------------------------------------------------ */

typedef struct samples {
    uint64_t *v;
    size_t n;
    double cpu_ns;  /* thread CPU time per sample (mean) */
    double on_cpu;  /* thread CPU time / wall time over the measurement */
} samples;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(samples *s, double p)
{
    if (s->n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return (double)s->v[i];
}

static void finish(samples *s)
{
    qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
}

/* Runs fn(ud) (which returns the ns it measured) for g_seconds or MAX_SAMPLES samples,
   after a short warm-up; samples sorted. */
static samples run_for(uint64_t (*fn)(void *), void *ud)
{
    samples s = {pd_xmalloc(MAX_SAMPLES * sizeof(uint64_t)), 0, 0, 0};
    uint64_t warm_end = now_ns() + 100000000u;
    while (now_ns() < warm_end)
        fn(ud);
    uint64_t w0 = now_ns(), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t end = w0 + (uint64_t)(g_seconds * 1e9);
    while (s.n < MAX_SAMPLES && (s.n % 64 || now_ns() < end))
        s.v[s.n++] = fn(ud);
    double cpu = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0);
    s.cpu_ns = cpu / (double)s.n;
    s.on_cpu = cpu / (double)(now_ns() - w0);
    finish(&s);
    return s;
}

/* ---- the ~2 KB request -------------------------------------------------------------------- */

/* A realistic agent turn: system prompt, two tools with schemas, a tool call and its result. */
static const char anthropic_request[] =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"temperature\":0.7,"
    "\"system\":\"You are a careful assistant for an operations team. Answer briefly, cite the "
    "tool results you used, and ask before you change anything in production. When a question "
    "is ambiguous, say which reading you chose. Prefer metric units and ISO dates.\","
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Current weather and a short forecast "
    "for a city\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\",\"description\":\"City name, e.g. Paris\"},\"days\":{\"type\":\"integer\","
    "\"minimum\":1,\"maximum\":7}},\"required\":[\"city\"]}},{\"name\":\"search_tickets\","
    "\"description\":\"Search the incident tracker\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"query\":{\"type\":\"string\"},\"status\":{\"type\":\"string\",\"enum\":"
    "[\"open\",\"closed\",\"any\"]},\"limit\":{\"type\":\"integer\"}},\"required\":"
    "[\"query\"]}}],"
    "\"messages\":["
    "{\"role\":\"user\",\"content\":\"We have a field team flying to Lyon tomorrow and the "
    "deployment window for the edge routers opens at 06:00. Can you check the weather for the "
    "next two days and whether there are open incidents about the Lyon edge site? If the wind is "
    "strong the crane work has to move.\"},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Let me check the forecast "
    "and the incident tracker.\"},{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":"
    "\"get_weather\",\"input\":{\"city\":\"Lyon\",\"days\":2}},{\"type\":\"tool_use\",\"id\":"
    "\"toolu_01B\",\"name\":\"search_tickets\",\"input\":{\"query\":\"Lyon edge\",\"status\":"
    "\"open\",\"limit\":5}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\","
    "\"content\":\"Tomorrow: 14C, wind 35 km/h gusting 60, showers after 15:00. Day after: 17C, "
    "wind 10 km/h, dry.\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01B\",\"content\":"
    "\"INC-4411 open: intermittent packet loss on lyon-edge-2 uplink since 2024-05-02, owner "
    "network team, next update due 09:00.\"},{\"type\":\"text\",\"text\":\"Also, is the crane "
    "limit 50 km/h gusts or sustained?\"}]},"
    "{\"role\":\"assistant\",\"content\":\"Gusts of 60 km/h tomorrow exceed a 50 km/h gust "
    "limit, so the crane work should move to the day after (wind 10 km/h, dry). INC-4411 is "
    "still open on lyon-edge-2; I would hold the router change on that unit until the network "
    "team's 09:00 update. The limit in your runbook is for gusts.\"},"
    "{\"role\":\"user\",\"content\":\"Great. Draft a short message to the field lead with the "
    "new plan, and list what we still need from the network team before 06:00 the day after "
    "tomorrow. Keep it under 120 words.\"}"
    "],\"stream\":true}";

/* ---- request translation ------------------------------------------------------------------ */

typedef pd_result (*parse_fn)(const char *, size_t, pd_chat_request *, pd_api_error *);
typedef pd_result (*write_fn)(const pd_chat_request *, pd_buf *, pd_api_error *);

static pd_result write_openai(const pd_chat_request *r, pd_buf *out, pd_api_error *err)
{
    (void)err;
    return pd_openai_write_chat_request(r, out);
}

static pd_result write_anthropic(const pd_chat_request *r, pd_buf *out, pd_api_error *err)
{
    return pd_anthropic_write_chat_request(r, NULL, out, err);
}

typedef struct req_job {
    const char *body;
    size_t len;
    parse_fn parse;
    write_fn write;
    pd_buf out;
    pd_chat_request parsed; /* for write-only */
} req_job;

static uint64_t req_translate(void *ud)
{
    req_job *j = ud;
    pd_chat_request r;
    pd_api_error err;
    pd_buf_reset(&j->out);
    uint64_t t0 = now_ns();
    if (j->parse(j->body, j->len, &r, &err) || j->write(&r, &j->out, &err))
        die("request translation failed");
    pd_chat_request_free(&r);
    return now_ns() - t0;
}

static uint64_t req_parse(void *ud)
{
    req_job *j = ud;
    pd_chat_request r;
    pd_api_error err;
    uint64_t t0 = now_ns();
    if (j->parse(j->body, j->len, &r, &err))
        die("request parse failed");
    pd_chat_request_free(&r);
    return now_ns() - t0;
}

static uint64_t req_write(void *ud)
{
    req_job *j = ud;
    pd_api_error err;
    pd_buf_reset(&j->out);
    uint64_t t0 = now_ns();
    if (j->write(&j->parsed, &j->out, &err))
        die("request write failed");
    return now_ns() - t0;
}

static void bench_request(const char *name, const char *body, size_t len, parse_fn parse,
                          write_fn write)
{
    req_job j = {.body = body, .len = len, .parse = parse, .write = write};
    pd_api_error err;
    pd_buf_init(&j.out, 0);
    if (parse(body, len, &j.parsed, &err) != PD_OK) {
        fprintf(stderr, "%s: %s\n", name, err.message);
        die("the benchmark request does not parse");
    }
    samples all = run_for(req_translate, &j);
    size_t out_len = j.out.len;
    samples p = run_for(req_parse, &j);
    samples w = run_for(req_write, &j);
    double p50 = pct(&all, 0.5) / 1000, p99 = pct(&all, 0.99) / 1000, cpu = all.cpu_ns / 1000;
    printf("  %-20s %5zu -> %5zu %8.2f %8.2f %8.2f %6.0f%% %9.2f %9.2f   p99 %s, cpu %s\n", name,
           len, out_len, p50, p99, cpu, 100 * all.on_cpu, p.cpu_ns / 1000, w.cpu_ns / 1000,
           p99 < 5.0 ? "met" : "MISSED", cpu < 5.0 ? "met" : "MISSED");
    free(all.v);
    free(p.v);
    free(w.v);
    pd_chat_request_free(&j.parsed);
    pd_buf_free(&j.out);
}

/* ---- the 500-event streams ---------------------------------------------------------------- */

static const char *const tokens[] = {
    " The",  " crane", " work", " moves", " to",  " Thursday", ",",     " when",   " the",
    " wind", " drops", " to",   " 10",    " km/h", ".",        "\n\n",  "- Hold", " the",
    " change", " on",  " lyon", "-edge",  "-2",   " until",    " INC",  "-4411", " clears",
    " (\"",  "gusts",  "\" in", " the",   " runbook", ").",    " Café", " at",   " 06:00",
};
#define N_TOKENS (sizeof(tokens) / sizeof(tokens[0]))

/* One upstream stream, split into its SSE events (each fed as one read). */
typedef struct stream {
    pd_buf bytes;
    size_t off[STREAM_EVENTS + 1];
    size_t n;
} stream;

static void stream_add(stream *s, const char *fmt, const char *arg)
{
    if (s->n == STREAM_EVENTS)
        die("too many events");
    s->off[s->n++] = s->bytes.len;
    pd_buf_printf(&s->bytes, fmt, arg);
    s->off[s->n] = s->bytes.len;
}

/* message_start, content_block_start, ping, 494 text deltas, content_block_stop,
   message_delta, message_stop: 500 events, as Claude sends them. */
static void make_anthropic_stream(stream *s)
{
    pd_buf_init(&s->bytes, 0);
    s->n = 0;
    stream_add(s, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                  "\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
                  "\"model\":\"%s\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                  "\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":0,"
                  "\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
               "claude-sonnet-4-5-20250929");
    stream_add(s, "%sevent: content_block_start\ndata: {\"type\":\"content_block_start\","
                  "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n", "");
    stream_add(s, "%sevent: ping\ndata: {\"type\": \"ping\"}\n\n", "");
    for (size_t i = 0; s->n < STREAM_EVENTS - 3; i++) {
        char esc[64];
        const char *t = tokens[i % N_TOKENS];
        size_t k = 0;
        for (; *t && k < sizeof(esc) - 3; t++) {
            if (*t == '"' || *t == '\\')
                esc[k++] = '\\';
            if (*t == '\n') {
                esc[k++] = '\\';
                esc[k++] = 'n';
                continue;
            }
            esc[k++] = *t;
        }
        esc[k] = 0;
        stream_add(s, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                      "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n", esc);
    }
    stream_add(s, "%sevent: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                  "\"index\":0}\n\n", "");
    stream_add(s, "%sevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
                  "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":"
                  "{\"output_tokens\":494}}\n\n", "");
    stream_add(s, "%sevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", "");
}

#define OAI_HEAD "data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":" \
                 "\"chat.completion.chunk\",\"created\":1741569952,\"model\":"           \
                 "\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_eb9dce56a8\","

/* role chunk, 496 content chunks, finish chunk, usage chunk, [DONE]: 500 events, as OpenAI
   sends them with stream_options.include_usage (which the gateway always asks for). */
static void make_openai_stream(stream *s)
{
    pd_buf_init(&s->bytes, 0);
    s->n = 0;
    stream_add(s, OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                           "\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
                           "\"finish_reason\":null}],\"usage\":null}\n\n%s", "");
    for (size_t i = 0; s->n < STREAM_EVENTS - 3; i++) {
        json_t *j = json_string(tokens[i % N_TOKENS]);
        char *enc = json_dumps(j, JSON_ENCODE_ANY);
        stream_add(s, OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},"
                               "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", enc);
        free(enc);
        json_decref(j);
    }
    stream_add(s, OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                           "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n%s", "");
    stream_add(s, OAI_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":472,"
                           "\"completion_tokens\":496,\"total_tokens\":968,"
                           "\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n%s", "");
    stream_add(s, "data: [DONE]\n\n%s", "");
}

typedef struct stream_job {
    stream *in;
    pd_buf out;
    size_t out_bytes; /* of the last stream, for the check */
    size_t events;    /* canonical events (or passed-through events) of the last stream */
    int complete;     /* the end was written */
    pd_anthropic_encoder aenc;
    pd_openai_encoder oenc;
} stream_job;

static void flush(stream_job *j)
{
    j->out_bytes += j->out.len;
    pd_buf_reset(&j->out); /* what the relay does once the bytes are handed to the socket */
}

static int to_openai(void *ud, const pd_chat_event *ev)
{
    stream_job *j = ud;
    j->events++;
    return pd_openai_encode_event(&j->oenc, ev, &j->out) != PD_OK;
}

static uint64_t stream_a2o(void *ud)
{
    stream_job *j = ud;
    const stream *s = j->in;
    j->out_bytes = j->events = 0;
    j->complete = 0;
    uint64_t t0 = now_ns();
    pd_anthropic_decoder d;
    pd_anthropic_decoder_init(&d, 0);
    pd_openai_encoder_init(&j->oenc, "chatcmpl-gw1", "claude-sonnet-4-5", 1741569952);
    for (size_t i = 0; i < s->n; i++) {
        if (pd_anthropic_decode(&d, s->bytes.data + s->off[i], s->off[i + 1] - s->off[i],
                                to_openai, j) != PD_OK)
            die("anthropic -> openai: decode failed");
        if (d.done && !j->complete) {
            pd_openai_encode_done(&j->out);
            j->complete = 1;
        }
        flush(j);
    }
    pd_openai_encoder_free(&j->oenc);
    pd_anthropic_decoder_free(&d);
    return now_ns() - t0;
}

/* OpenAI upstream: SSE framing first, then each data payload (what providers/openai.c does). */
typedef struct oai_dec {
    pd_openai_decoder dec;
    stream_job *j;
    pd_result rc;
} oai_dec;

static int to_anthropic(void *ud, const pd_chat_event *ev)
{
    stream_job *j = ud;
    j->events++;
    return pd_anthropic_encode_event(&j->aenc, ev, &j->out) != PD_OK;
}

static int on_oai_sse(void *ud, const pd_sse_event *ev)
{
    oai_dec *o = ud;
    o->rc = pd_openai_decode_chunk(&o->dec, ev->data, ev->data_len, to_anthropic, o->j);
    return o->rc != PD_OK;
}

static uint64_t stream_o2a(void *ud)
{
    stream_job *j = ud;
    const stream *s = j->in;
    j->out_bytes = j->events = 0;
    j->complete = 0;
    uint64_t t0 = now_ns();
    oai_dec o = {.j = j};
    pd_sse_parser sse;
    pd_sse_init(&sse, 0);
    pd_openai_decoder_init(&o.dec);
    pd_anthropic_encoder_init(&j->aenc, "msg_gw1", "gpt-4o");
    for (size_t i = 0; i < s->n; i++) {
        if (pd_sse_feed(&sse, s->bytes.data + s->off[i], s->off[i + 1] - s->off[i], on_oai_sse,
                        &o) != PD_OK)
            die("openai -> anthropic: decode failed");
        if (o.dec.done && !j->complete) {
            pd_anthropic_encode_end(&j->aenc, &j->out);
            j->complete = 1;
        }
        flush(j);
    }
    pd_anthropic_encoder_free(&j->aenc);
    pd_sse_free(&sse);
    return now_ns() - t0;
}

/* The OpenAI -> OpenAI relay's work per event (providers/openai.c pass_event): the payload is
   checked to be a JSON object, then written back out unchanged. */
static int on_pass(void *ud, const pd_sse_event *ev)
{
    stream_job *j = ud;
    j->events++;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        j->complete = 1;
        return pd_sse_write(&j->out, NULL, ev->data, ev->data_len) != PD_OK;
    }
    json_t *doc = json_loadb(ev->data, ev->data_len, 0, NULL);
    int ok = json_is_object(doc);
    json_decref(doc);
    return !ok || pd_sse_write(&j->out, NULL, ev->data, ev->data_len) != PD_OK;
}

/* The stream's events through an SSE parser to cb, one per read, flushed after each read. */
static void feed_events(stream_job *j, pd_sse_cb cb, void *ud, const char *what)
{
    const stream *s = j->in;
    pd_sse_parser sse;
    pd_sse_init(&sse, 0);
    for (size_t i = 0; i < s->n; i++) {
        if (pd_sse_feed(&sse, s->bytes.data + s->off[i], s->off[i + 1] - s->off[i], cb, ud) !=
            PD_OK)
            die(what);
        flush(j);
    }
    pd_sse_free(&sse);
}

static uint64_t stream_pass(void *ud)
{
    stream_job *j = ud;
    j->out_bytes = j->events = 0;
    j->complete = 0;
    uint64_t t0 = now_ns();
    feed_events(j, on_pass, j, "pass-through: feed failed");
    return now_ns() - t0;
}

/* The relay's pass-through today: the openai provider's pass_event on each SSE event. */
typedef struct relay_job {
    stream_job *j;
    pd_chat_request req; /* zero: the client did not ask for stream usage */
    pd_chat_usage usage;
} relay_job;

static int on_relay(void *ud, const pd_sse_event *ev)
{
    relay_job *r = ud;
    pd_stream_step step;
    r->j->events++;
    if (pd_provider_ops_of(PD_KIND_OPENAI)->pass_event(&r->req, ev, &r->j->out, &step, &r->usage) !=
        PD_OK)
        return 1;
    if (step == PD_STEP_DONE)
        r->j->complete = 1;
    return step == PD_STEP_ERROR;
}

static uint64_t stream_relay(void *ud)
{
    stream_job *j = ud;
    j->out_bytes = j->events = 0;
    j->complete = 0;
    uint64_t t0 = now_ns();
    relay_job r = {.j = j};
    pd_chat_usage_init(&r.usage);
    feed_events(j, on_relay, &r, "relay pass-through: feed failed");
    return now_ns() - t0;
}

static double bench_stream(const char *name, stream *in, uint64_t (*fn)(void *))
{
    stream_job j = {.in = in};
    pd_buf_init(&j.out, 0);
    fn(&j);
    if (!j.complete || j.events < STREAM_EVENTS - 10)
        die("a benchmark stream did not translate completely");
    samples s = run_for(fn, &j);
    double p50 = pct(&s, 0.5) / STREAM_EVENTS, p99 = pct(&s, 0.99) / STREAM_EVENTS;
    double cpu = s.cpu_ns / STREAM_EVENTS;
    printf("  %-20s %6zu -> %6zu %7zu %7.0f %7.0f %7.0f %6.0f%%   p50 %s, cpu %s\n", name,
           in->bytes.len, j.out_bytes, s.n, p50, p99, cpu, 100 * s.on_cpu,
           p50 < 200 ? "met" : "MISSED", cpu < 200 ? "met" : "MISSED");
    free(s.v);
    pd_buf_free(&j.out);
    return cpu;
}

/* The first three fields of /proc/loadavg ("1.20 0.90 0.75"), or "?". */
static const char *loadavg(void)
{
    static char text[64];
    double l1, l5, l15;
    FILE *f = fopen("/proc/loadavg", "r");
    snprintf(text, sizeof(text), "?");
    if (f && fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3)
        snprintf(text, sizeof(text), "%.2f %.2f %.2f", l1, l5, l15);
    if (f)
        fclose(f);
    return text;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_seconds = atof(argv[1]);
    if (g_seconds <= 0)
        die("usage: bench_translate [seconds per measurement]");

    /* The OpenAI form of the same request, written by the codec itself. */
    size_t alen = sizeof(anthropic_request) - 1;
    pd_chat_request r;
    pd_api_error err;
    pd_buf oreq;
    pd_buf_init(&oreq, 0);
    if (pd_anthropic_parse_chat_request(anthropic_request, alen, &r, &err) ||
        pd_openai_write_chat_request(&r, &oreq))
        die("the benchmark request does not translate");
    pd_chat_request_free(&r);

    printf("Pendulum translation benchmark: one thread, %.1f s per measurement; load average "
           "before: %s\n\n", g_seconds, loadavg());
    printf("per request (parse client dialect + write upstream dialect + free), microseconds\n");
    printf("  %-20s %14s %8s %8s %8s %7s %9s %9s   %s\n", "direction", "bytes in -> out", "p50",
           "p99", "cpu", "on-cpu", "parse cpu", "write cpu", "target < 5 us");
    bench_request("anthropic -> openai", anthropic_request, alen, pd_anthropic_parse_chat_request,
                  write_openai);
    bench_request("openai -> anthropic", oreq.data, oreq.len, pd_openai_parse_chat_request,
                  write_anthropic);

    stream as, os;
    make_anthropic_stream(&as);
    make_openai_stream(&os);
    printf("\nper stream event (%d-event stream, one SSE event per read; decode + encode, "
           "set-up included), ns per event\n", STREAM_EVENTS);
    printf("  %-20s %16s %7s %7s %7s %7s %7s   %s\n", "direction", "bytes in -> out", "streams",
           "p50", "p99", "cpu", "on-cpu", "target < 200 ns");
    double a2o = bench_stream("anthropic -> openai", &as, stream_a2o);
    double o2a = bench_stream("openai -> anthropic", &os, stream_o2a);
    double pass = bench_stream("openai pass-through", &os, stream_pass);
    bench_stream("pass-through (relay)", &os, stream_relay);
    printf("  translation / pass-through (cpu): anthropic -> openai %.2fx, openai -> anthropic "
           "%.2fx\n", a2o / pass, o2a / pass);
    printf("\n(pass-through: SSE parse + json_loadb check + write back, what the OpenAI -> OpenAI "
           "relay did per event;\n pass-through (relay): SSE parse + the openai provider's "
           "pass_event, what it does now (fastev check, usage: null cut).\n p50/p99: wall clock, "
           "per event = a whole stream's time / %d; "
           "cpu: thread CPU time per event, mean;\n on-cpu: cpu / wall over the measurement, "
           "low when the machine is busy; load average now %s)\n", STREAM_EVENTS, loadavg());
    pd_buf_free(&as.bytes);
    pd_buf_free(&os.bytes);
    pd_buf_free(&oreq);
    return 0;
}
