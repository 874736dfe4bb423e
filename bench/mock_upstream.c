/* mock_upstream.c: a fast, canned OpenAI-compatible upstream for bench/overhead.
 *
 * POST /v1/chat/completions answers a fixed `chat.completion` JSON, or, when the request body
 * has "stream": true, a fixed SSE stream: a role chunk, --chunks content chunks, a finish chunk,
 * a usage chunk and `data: [DONE]`, each event in its own HTTP chunk. With --delay-ms D the first
 * event leaves at once and each later one D ms after the previous, so a stream stays open for
 * about (chunks + 3) * D ms: that is how the benchmark holds 1,000 streams open. Anything else
 * answers 404. Keep-alive is evhttp's default for HTTP/1.1.
 *
 * The mock must cost as little as possible, since it shares two cores with the load generator
 * and the gateway under test: every body is built once at start-up and handed to libevent by
 * reference (no copy per request), and the only per-request allocation is a small stream state.
 *
 * A client that closes mid-stream fires the connection's close callback, which cancels the
 * stream's timer and frees its state (see on_conn_close for who frees the request).
 *
 * Usage: mock_upstream [--port N] [--chunks N] [--delay-ms D]
 * --port 0 (the default) binds an ephemeral port; the bound port is printed as "port N". */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#define MAX_CHUNKS 10000
#define LISTEN_BACKLOG 4096

static const char completion_json[] =
    "{\"id\":\"chatcmpl-bench0001\",\"object\":\"chat.completion\",\"created\":1735000000,"
    "\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_"
    "bench\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Hello! How can I help you today?\",\"refusal\":null,\"annotations\":[]},"
    "\"logprobs\":null,\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":9,\"total_tokens\":18,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}";

#define CHUNK_HEAD                                                                                 \
    "data: {\"id\":\"chatcmpl-bench0001\",\"object\":\"chat.completion.chunk\","                   \
    "\"created\":1735000000,\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\","         \
    "\"system_fingerprint\":\"fp_bench\","

/* The events of one stream, built once; events[i] is sent as HTTP chunk i. */
typedef struct canned_stream {
    char **events;
    size_t *lens;
    int n;
} canned_stream;

typedef struct mock {
    struct event_base *base;
    canned_stream stream;
    int delay_ms;
    unsigned long served, streamed, aborted;
} mock;

/* One stream in progress with a delay; lives until the last event or until the client leaves. */
typedef struct stream_state {
    mock *m;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct event *timer;
    int next;
} stream_state;

static void add_raw(canned_stream *cs, const char *text)
{
    char *s = strdup(text);
    if (!s)
        abort();
    cs->events[cs->n] = s;
    cs->lens[cs->n] = strlen(s);
    cs->n++;
}

/* Appends one event: `data: {` + the common fields + body + blank line. */
static void add_event(canned_stream *cs, const char *body)
{
    char ev[1024];
    snprintf(ev, sizeof ev, "%s%s\n\n", CHUNK_HEAD, body);
    add_raw(cs, ev);
}

/* Builds the stream protocols.md §1.7 describes: role, content deltas, finish, usage, [DONE]. */
static void build_stream(canned_stream *cs, int chunks)
{
    static const char *words[] = {"Hello", "!",    " How",   " can", " I",
                                  " help", " you", " today", "?",    " "};
    char body[512];
    cs->events = calloc((size_t)chunks + 4, sizeof *cs->events);
    cs->lens = calloc((size_t)chunks + 4, sizeof *cs->lens);
    if (!cs->events || !cs->lens)
        abort();
    add_event(cs, "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                  "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}");
    for (int i = 0; i < chunks; i++) {
        snprintf(body, sizeof body,
                 "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
                 "\"finish_reason\":null}],\"usage\":null}",
                 words[i % 10]);
        add_event(cs, body);
    }
    add_event(cs, "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                  "\"finish_reason\":\"stop\"}],\"usage\":null}");
    snprintf(body, sizeof body,
             "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":%d,"
             "\"total_tokens\":%d}}",
             chunks, chunks + 9);
    add_event(cs, body);
    add_raw(cs, "data: [DONE]\n\n");
}

/* True when the JSON body asks for a stream: "stream" then optional spaces, ':', spaces, true. */
static int wants_stream(struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    const char *p = (const char *)evbuffer_pullup(in, -1);
    const char *end = p + n;
    while (p && p < end) {
        const char *k = memmem(p, (size_t)(end - p), "\"stream\"", 8);
        if (!k)
            return 0;
        p = k + 8;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p >= end || *p != ':')
            continue;
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (end - p >= 4 && memcmp(p, "true", 4) == 0)
            return 1;
    }
    return 0;
}

static void send_event(mock *m, struct evhttp_request *req, int i)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        abort();
    evbuffer_add_reference(b, m->stream.events[i], m->stream.lens[i], NULL, NULL);
    evhttp_send_reply_chunk(req, b);
    evbuffer_free(b);
}

static void stream_free(stream_state *st)
{
    if (!st)
        return;
    event_free(st->timer);
    free(st);
}

/* The connection is going away mid-stream. When the client left (EOF, timeout), libevent has
 * already detached the unfinished request from the connection and leaves freeing it to
 * evhttp_send_reply_end; otherwise (evhttp_free) the connection frees it right after this. */
static void on_conn_close(struct evhttp_connection *conn, void *arg)
{
    stream_state *st = arg;
    (void)conn;
    st->m->aborted++;
    if (evhttp_request_get_connection(st->req) == NULL)
        evhttp_send_reply_end(st->req);
    stream_free(st);
}

static void on_stream_tick(evutil_socket_t fd, short what, void *arg)
{
    stream_state *st = arg;
    mock *m = st->m;
    (void)fd;
    (void)what;
    send_event(m, st->req, st->next++);
    if (st->next < m->stream.n) {
        struct timeval tv = {m->delay_ms / 1000, (m->delay_ms % 1000) * 1000};
        evtimer_add(st->timer, &tv);
        return;
    }
    evhttp_connection_set_closecb(st->conn, NULL, NULL);
    evhttp_send_reply_end(st->req);
    stream_free(st);
}

static void start_stream(mock *m, struct evhttp_request *req)
{
    m->streamed++;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/event-stream");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
    evhttp_send_reply_start(req, 200, "OK");
    if (m->delay_ms <= 0) {
        for (int i = 0; i < m->stream.n; i++)
            send_event(m, req, i);
        evhttp_send_reply_end(req);
        return;
    }
    stream_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    st->m = m;
    st->req = req;
    st->conn = evhttp_request_get_connection(req);
    st->timer = evtimer_new(m->base, on_stream_tick, st);
    if (!st->timer)
        abort();
    evhttp_connection_set_closecb(st->conn, on_conn_close, st);
    send_event(m, req, 0);
    st->next = 1;
    struct timeval tv = {m->delay_ms / 1000, (m->delay_ms % 1000) * 1000};
    evtimer_add(st->timer, &tv);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    mock *m = arg;
    const char *uri = evhttp_request_get_uri(req);
    m->served++;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST ||
        strncmp(uri, "/v1/chat/completions", 20) != 0 || (uri[20] != '\0' && uri[20] != '?')) {
        evhttp_send_error(req, 404, "Not Found");
        return;
    }
    if (wants_stream(evhttp_request_get_input_buffer(req))) {
        start_stream(m, req);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b)
        abort();
    evbuffer_add_reference(b, completion_json, sizeof completion_json - 1, NULL, NULL);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    mock *m = arg;
    (void)sig;
    (void)what;
    event_base_loopbreak(m->base);
}

/* evhttp_bind_socket listens with a small backlog; 1,000 streams opened at once need more. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        close(fd);
        return -1;
    }
    evutil_make_socket_nonblocking(fd);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    return ntohs(sa.sin_port);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, chunks = 20;
    mock m = {0};
    for (int i = 1; i < argc; i++) {
        int bad = i + 1 >= argc;
        if (!bad && strcmp(argv[i], "--port") == 0)
            bad = parse_int(argv[++i], 0, 65535, &port);
        else if (!bad && strcmp(argv[i], "--chunks") == 0)
            bad = parse_int(argv[++i], 0, MAX_CHUNKS, &chunks);
        else if (!bad && strcmp(argv[i], "--delay-ms") == 0)
            bad = parse_int(argv[++i], 0, 60000, &m.delay_ms);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "usage: mock_upstream [--port N] [--chunks N] [--delay-ms D]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    build_stream(&m.stream, chunks);
    m.base = event_base_new();
    struct evhttp *http = m.base ? evhttp_new(m.base) : NULL;
    int fd = listen_on(port);
    if (!http || fd < 0 || !evhttp_accept_socket_with_handle(http, fd)) {
        fprintf(stderr, "mock_upstream: cannot listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        return 1;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    evhttp_set_gencb(http, on_request, &m);
    evhttp_set_timeout(http, 120);
    struct event *sigint = evsignal_new(m.base, SIGINT, on_signal, &m);
    struct event *sigterm = evsignal_new(m.base, SIGTERM, on_signal, &m);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    printf("port %d\n", bound_port(fd));
    fflush(stdout);
    event_base_dispatch(m.base);
    fprintf(stderr, "mock_upstream: served %lu requests, %lu streams, %lu aborted by the client\n",
            m.served, m.streamed, m.aborted);
    event_free(sigint);
    event_free(sigterm);
    evhttp_free(http);
    event_base_free(m.base);
    for (int i = 0; i < m.stream.n; i++)
        free(m.stream.events[i]);
    free(m.stream.events);
    free(m.stream.lens);
    return 0;
}
