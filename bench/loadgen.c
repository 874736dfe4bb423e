/* loadgen.c: the timing client of bench/overhead, for what wrk cannot do.
 *
 * One thread, non-blocking sockets, epoll, HTTP/1.1 keep-alive, one request in flight per
 * connection (no pipelining). It parses just enough HTTP to know where a response ends
 * (Content-Length, chunked, or close) and, for streams, when the first `data:` line of the
 * body arrives and whether `data: [DONE]` did.
 *
 * Modes (all print one line of key=value pairs on stdout; times in microseconds):
 *   lat   closed loop, --conns C (default 1) connections each sending its next request as soon
 *         as the previous answer ends, for --duration S after --warmup S. With --stream it also
 *         reports time to first token (request written -> first `data:` byte read).
 *   rate  open loop at --rate R req/s for --duration S: a timerfd schedules request k at
 *         t0 + k/R whatever happened before, on an idle connection or a new one (at most
 *         --max-conns, then queued). Latency counts from the scheduled time, not the send time,
 *         so a stalled server is charged for the requests it delayed (no coordinated omission).
 *   hold  opens --streams N streams (at most 100 connecting at once), waits until every one has
 *         received its first `data:` chunk, prints "ready ...", keeps them open for --hold S
 *         seconds (reading and discarding), then exits, closing them all.
 *
 * Common options: --port P (host is always 127.0.0.1), --path /v1/chat/completions,
 * --model gpt-4o, --stream, -H 'Name: value' (repeatable). A response with a status other than
 * 200, a stream without `data: [DONE]`, or a connection that fails mid-response is an error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define MAX_HEADERS 16
#define MAX_SAMPLES (8u * 1024 * 1024)
#define HOLD_CONNECTING_MAX 100

enum { C_FREE, C_CONNECTING, C_IDLE, C_BUSY };
enum { P_HEAD, P_CL, P_EOF, P_CSIZE, P_CDATA, P_CCRLF, P_TRAILER };

typedef struct conn {
    int fd, state, pstate;
    size_t sent;
    uint64_t t_start, t_sent, t_first;
    char head[HEAD_MAX];
    size_t head_len, line_len;
    char line[64];
    int status, keep, saw_done, m_data, m_done, want_out;
    uint64_t remaining;
} conn;

typedef struct samples {
    uint64_t *v;
    size_t n;
} samples;

typedef struct opts {
    const char *mode, *path, *model, *headers[MAX_HEADERS];
    int n_headers, port, stream, conns, max_conns, streams;
    double duration, warmup, rate, hold, timeout;
} opts;

typedef struct run {
    opts o;
    int ep;
    conn *conns;
    int n_conns;
    char *req;
    size_t req_len;
    uint64_t t_measure, t_end;
    samples lat, ttft, lag;
    unsigned long done, errors, non200, no_done, started;
} run;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void sample_add(samples *s, uint64_t v)
{
    if (!s->v) {
        s->v = malloc(MAX_SAMPLES * sizeof *s->v);
        if (!s->v) die("malloc");
    }
    if (s->n < MAX_SAMPLES) s->v[s->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in microseconds; the samples must be sorted. */
static double pct_us(const samples *s, double p)
{
    if (s->n == 0) return -1;
    size_t k = (size_t)(p / 100.0 * (double)s->n + 0.999999);
    if (k < 1) k = 1;
    if (k > s->n) k = s->n;
    return (double)s->v[k - 1] / 1000.0;
}

static void print_pcts(const char *prefix, samples *s)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    printf(" %sp50_us=%.1f %sp90_us=%.1f %sp99_us=%.1f %sp999_us=%.1f %smax_us=%.1f", prefix,
           pct_us(s, 50), prefix, pct_us(s, 90), prefix, pct_us(s, 99), prefix, pct_us(s, 99.9),
           prefix, pct_us(s, 100));
}

/* ---- HTTP response parsing ----------------------------------------------------------- */

/* Advances a matcher for a pattern without self-overlap ("data:", "[DONE]"). */
static int match_step(int *m, const char *pat, size_t plen, char c)
{
    if (c == pat[*m]) (*m)++;
    else *m = c == pat[0];
    if ((size_t)*m == plen) {
        *m = 0;
        return 1;
    }
    return 0;
}

static void body_bytes(run *r, conn *c, const char *p, size_t n)
{
    if (!r->o.stream) return;
    for (size_t i = 0; i < n; i++) {
        if (match_step(&c->m_data, "data:", 5, p[i]) && !c->t_first) c->t_first = now_ns();
        if (match_step(&c->m_done, "[DONE]", 6, p[i])) c->saw_done = 1;
    }
}

static const char *find_header(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = head; p && p < head + len; p = memchr(p, '\n', (size_t)(head + len - p))) {
        if (*p == '\n') p++;
        if ((size_t)(head + len - p) > nl && strncasecmp(p, name, nl) == 0) return p + nl;
    }
    return NULL;
}

static int parse_head(conn *c, size_t len)
{
    if (len < 12 || strncmp(c->head, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi(c->head + 9);
    c->keep = c->head[7] == '1';
    const char *v = find_header(c->head, len, "connection:");
    if (v && strncasecmp(v + strspn(v, " "), "close", 5) == 0) c->keep = 0;
    v = find_header(c->head, len, "transfer-encoding:");
    if (v && strncasecmp(v + strspn(v, " "), "chunked", 7) == 0) {
        c->pstate = P_CSIZE;
        c->line_len = 0;
        return 0;
    }
    v = find_header(c->head, len, "content-length:");
    if (v) {
        c->remaining = strtoull(v, NULL, 10);
        c->pstate = P_CL;
        return 0;
    }
    c->pstate = P_EOF;
    c->keep = 0;
    return 0;
}

/* Reads a line of a chunked body into c->line; 1 when complete (without CR LF). */
static int line_byte(conn *c, char ch)
{
    if (ch == '\n') return 1;
    if (ch != '\r' && c->line_len < sizeof c->line - 1) c->line[c->line_len++] = ch;
    return 0;
}

/* Feeds body bytes; returns 1 when the response ended, 0 for more, -1 on a framing error. */
static int feed_body(run *r, conn *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (c->pstate) {
        case P_CL:
        case P_CDATA: {
            size_t k = n - i < c->remaining ? n - i : (size_t)c->remaining;
            body_bytes(r, c, p + i, k);
            i += k;
            c->remaining -= k;
            if (c->remaining == 0 && c->pstate == P_CL) return i == n ? 1 : -1;
            if (c->remaining == 0) c->pstate = P_CCRLF;
            break;
        }
        case P_EOF:
            body_bytes(r, c, p + i, n - i);
            return 0;
        case P_CSIZE:
            if (line_byte(c, p[i++])) {
                c->line[c->line_len] = '\0';
                char *end;
                c->remaining = strtoull(c->line, &end, 16);
                if (end == c->line) return -1;
                c->line_len = 0;
                c->pstate = c->remaining ? P_CDATA : P_TRAILER;
            }
            break;
        case P_CCRLF:
            if (p[i++] == '\n') c->pstate = P_CSIZE;
            break;
        case P_TRAILER:
            if (line_byte(c, p[i++])) {
                if (c->line_len == 0) return i == n ? 1 : -1;
                c->line_len = 0;
            }
            break;
        default:
            return -1;
        }
    }
    return c->pstate == P_CL && c->remaining == 0;
}

static int feed(run *r, conn *c, const char *p, size_t n)
{
    if (c->pstate != P_HEAD) return feed_body(r, c, p, n);
    size_t old = c->head_len, k = n < HEAD_MAX - old ? n : HEAD_MAX - old;
    memcpy(c->head + old, p, k);
    c->head_len += k;
    size_t from = old > 3 ? old - 3 : 0;
    char *e = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
    if (!e) return c->head_len == HEAD_MAX ? -1 : 0;
    size_t hlen = (size_t)(e - c->head) + 4;
    if (parse_head(c, hlen) < 0) return -1;
    size_t in_head = c->head_len - hlen; /* body bytes that were copied into head[] */
    int rc = feed_body(r, c, c->head + hlen, in_head);
    if (rc != 0 || k == n) return rc;
    return feed_body(r, c, p + k, n - k);
}

/* ---- connections ------------------------------------------------------------------------ */

static void ep_mod(run *r, conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(r->ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static conn *conn_open(run *r)
{
    conn *c = NULL;
    for (int i = 0; i < r->n_conns; i++)
        if (r->conns[i].state == C_FREE) {
            c = &r->conns[i];
            break;
        }
    if (!c) return NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->o.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) die("connect");
    c->state = C_CONNECTING;
    c->t_start = 0;
    c->want_out = 0;
    ep_mod(r, c, EPOLL_CTL_ADD, EPOLLOUT);
    return c;
}

static void conn_close(run *r, conn *c)
{
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = C_FREE;
}

static int count_state(run *r, int state)
{
    int n = 0;
    for (int i = 0; i < r->n_conns; i++) n += r->conns[i].state == state;
    return n;
}

/* Writes (the rest of) the request; the connection is then busy until its answer ends. */
static void conn_send(run *r, conn *c)
{
    while (c->sent < r->req_len) {
        ssize_t w = send(c->fd, r->req + c->sent, r->req_len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            ep_mod(r, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
            c->want_out = 1;
            return;
        }
        if (w <= 0) return; /* the read side reports the failure */
        c->sent += (size_t)w;
    }
    c->t_sent = now_ns();
    if (c->want_out) ep_mod(r, c, EPOLL_CTL_MOD, EPOLLIN);
    c->want_out = 0;
}

/* Starts a request on a connected idle connection; `t_start` is when latency counts from. */
static void conn_start(run *r, conn *c, uint64_t t_start)
{
    c->state = C_BUSY;
    c->pstate = P_HEAD;
    c->head_len = c->line_len = 0;
    c->sent = 0;
    c->t_start = t_start ? t_start : now_ns();
    c->t_first = 0;
    c->saw_done = c->m_data = c->m_done = 0;
    r->started++;
    conn_send(r, c);
}

/* ---- modes ------------------------------------------------------------------------------ */

typedef struct queue {
    uint64_t *t;
    size_t head, len, cap;
} queue;

typedef struct mode {
    /* called when a connection becomes usable (connected or answer done); NULL for none */
    void (*idle)(run *r, conn *c, void *arg);
    void *arg;
} mode;

static void on_done(run *r, conn *c, int ok)
{
    uint64_t t = now_ns();
    if (ok && c->status != 200) {
        r->non200++;
        ok = 0;
    }
    if (ok && r->o.stream && !c->saw_done) {
        r->no_done++;
        ok = 0;
    }
    if (!ok) r->errors++;
    else r->done++;
    if (ok && c->t_start >= r->t_measure && t <= r->t_end + 2000000000u) {
        sample_add(&r->lat, t - c->t_start);
        if (r->o.stream && c->t_first) sample_add(&r->ttft, c->t_first - c->t_sent);
        sample_add(&r->lag, c->t_sent - c->t_start);
    }
}

/* Handles one epoll event; tells the mode when a connection becomes idle or closes (NULL). */
static void handle(run *r, conn *c, uint32_t ev, const mode *m)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            errno = err;
            die("connect");
        }
        c->state = C_IDLE;
        ep_mod(r, c, EPOLL_CTL_MOD, EPOLLIN);
        if (m->idle) m->idle(r, c, m->arg);
        return;
    }
    if ((ev & EPOLLOUT) && c->state == C_BUSY && c->sent < r->req_len) conn_send(r, c);
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            int ended = c->state == C_BUSY && c->pstate == P_EOF;
            if (c->state == C_BUSY) on_done(r, c, ended);
            conn_close(r, c);
            if (m->idle) m->idle(r, NULL, m->arg);
            return;
        }
        if (c->state != C_BUSY) {
            r->errors++; /* bytes nobody asked for */
            conn_close(r, c);
            if (m->idle) m->idle(r, NULL, m->arg);
            return;
        }
        int rc = feed(r, c, buf, (size_t)n);
        if (rc == 0) continue;
        on_done(r, c, rc > 0);
        if (rc < 0 || !c->keep) {
            conn_close(r, c);
            if (m->idle) m->idle(r, NULL, m->arg);
            return;
        }
        c->state = C_IDLE;
        if (m->idle) m->idle(r, c, m->arg);
        return;
    }
}

static void loop_until(run *r, const mode *m, int (*stop)(run *, void *), void *arg, int timerfd,
                       void (*tick)(run *, void *))
{
    struct epoll_event evs[256];
    while (!stop(r, arg)) {
        int n = epoll_wait(r->ep, evs, 256, 5);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t k;
                if (read(timerfd, &k, sizeof k) == (ssize_t)sizeof k && tick) tick(r, arg);
                continue;
            }
            handle(r, evs[i].data.ptr, evs[i].events, m);
        }
    }
}

/* lat: every idle connection immediately sends again until t_end; closed ones are reopened. */
static void lat_idle(run *r, conn *c, void *arg)
{
    (void)arg;
    if (now_ns() >= r->t_end) return;
    if (!c) c = conn_open(r);
    else conn_start(r, c, 0);
}

static int lat_stop(run *r, void *arg)
{
    (void)arg;
    return now_ns() >= r->t_end && count_state(r, C_BUSY) + count_state(r, C_CONNECTING) == 0;
}

static void mode_lat(run *r)
{
    mode m = {lat_idle, NULL};
    uint64_t t0 = now_ns();
    r->t_measure = t0 + (uint64_t)(r->o.warmup * 1e9);
    r->t_end = r->t_measure + (uint64_t)(r->o.duration * 1e9);
    for (int i = 0; i < r->o.conns; i++) conn_open(r);
    loop_until(r, &m, lat_stop, NULL, -1, NULL);
    printf("mode=lat conns=%d requests=%lu errors=%lu non200=%lu no_done=%lu rps=%.0f samples=%zu",
           r->o.conns, r->done, r->errors, r->non200, r->no_done,
           (double)r->lat.n / r->o.duration, r->lat.n);
    print_pcts("", &r->lat);
    if (r->o.stream) print_pcts("ttft_", &r->ttft);
    printf("\n");
}

/* rate: request k is due at t0 + k * interval; a free connection takes it, else a new one. */
typedef struct rate_state {
    uint64_t t0, interval, seq, n_total;
    queue q;
} rate_state;

static void rate_idle(run *r, conn *c, void *arg)
{
    rate_state *rs = arg;
    if (rs->q.len == 0) return;
    if (!c) { /* a connection closed while requests wait: replace it */
        if ((size_t)count_state(r, C_CONNECTING) < rs->q.len) conn_open(r);
        return;
    }
    uint64_t t = rs->q.t[rs->q.head];
    rs->q.head = (rs->q.head + 1) % rs->q.cap;
    rs->q.len--;
    conn_start(r, c, t);
}

static void rate_tick(run *r, void *arg)
{
    rate_state *rs = arg;
    uint64_t now = now_ns();
    while (rs->seq < rs->n_total && rs->t0 + rs->seq * rs->interval <= now) {
        uint64_t t = rs->t0 + rs->seq++ * rs->interval;
        conn *c = NULL;
        for (int i = 0; i < r->n_conns && !c; i++)
            if (r->conns[i].state == C_IDLE) c = &r->conns[i];
        if (c) {
            conn_start(r, c, t);
            continue;
        }
        if (rs->q.len == rs->q.cap) {
            r->errors++; /* cannot happen with cap = n_total */
            continue;
        }
        rs->q.t[(rs->q.head + rs->q.len++) % rs->q.cap] = t;
        if ((size_t)count_state(r, C_CONNECTING) < rs->q.len) conn_open(r);
    }
}

static int rate_stop(run *r, void *arg)
{
    rate_state *rs = arg;
    uint64_t now = now_ns();
    if (now > r->t_end + 2000000000u) return 1; /* drain limit */
    return rs->seq == rs->n_total && rs->q.len == 0 && count_state(r, C_BUSY) == 0;
}

static int ready_stop(run *r, void *arg)
{
    (void)arg;
    return count_state(r, C_CONNECTING) == 0 || now_ns() > r->t_end;
}

static void mode_rate(run *r)
{
    rate_state rs = {0};
    mode m = {rate_idle, &rs};
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (tfd < 0) die("timerfd_create");
    /* Pre-open connections so that connection set-up is not in the measured latencies. */
    r->t_end = now_ns() + 2000000000u;
    for (int i = 0; i < r->o.conns; i++) conn_open(r);
    mode none = {NULL, NULL};
    loop_until(r, &none, ready_stop, NULL, -1, NULL);
    rs.interval = (uint64_t)(1e9 / r->o.rate);
    rs.n_total = (uint64_t)((r->o.warmup + r->o.duration) * r->o.rate);
    rs.q.cap = rs.n_total + 1;
    rs.q.t = malloc(rs.q.cap * sizeof *rs.q.t);
    if (!rs.q.t) die("malloc");
    rs.t0 = now_ns() + 1000000;
    r->t_measure = rs.t0 + (uint64_t)(r->o.warmup * 1e9);
    r->t_end = rs.t0 + rs.n_total * rs.interval;
    struct itimerspec its = {
        .it_value = {(time_t)(rs.t0 / 1000000000u), (long)(rs.t0 % 1000000000u)},
        .it_interval = {0, (long)rs.interval < 1000000 ? (long)rs.interval : 1000000}};
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, tfd, &ev) < 0) die("epoll_ctl");
    loop_until(r, &m, rate_stop, &rs, tfd, rate_tick);
    unsigned long late = (unsigned long)(rs.n_total - rs.seq) + (unsigned long)rs.q.len +
                         (unsigned long)count_state(r, C_BUSY);
    printf("mode=rate target_rps=%.0f requests=%lu errors=%lu non200=%lu unfinished=%lu "
           "achieved_rps=%.0f conns_used=%d samples=%zu",
           r->o.rate, r->done, r->errors, r->non200, late,
           (double)r->lat.n / r->o.duration, r->n_conns - count_state(r, C_FREE), r->lat.n);
    print_pcts("", &r->lat);
    qsort(r->lag.v, r->lag.n, sizeof *r->lag.v, cmp_u64);
    printf(" send_lag_p50_us=%.1f send_lag_p99_us=%.1f\n", pct_us(&r->lag, 50), pct_us(&r->lag, 99));
    close(tfd);
    free(rs.q.t);
}

/* hold: open N streams, wait for the first chunk of each, keep them open, then leave. */
typedef struct hold_state {
    int opened;
} hold_state;

static int n_ready(run *r)
{
    int n = 0;
    for (int i = 0; i < r->n_conns; i++) n += r->conns[i].state == C_BUSY && r->conns[i].t_first;
    return n;
}

static void hold_idle(run *r, conn *c, void *arg)
{
    hold_state *hs = arg;
    if (c && c->t_start == 0) conn_start(r, c, 0);
    else if (c) conn_close(r, c); /* a stream that ended early; counted in r->done */
    while (hs->opened < r->o.streams && count_state(r, C_CONNECTING) < HOLD_CONNECTING_MAX) {
        conn_open(r);
        hs->opened++;
    }
}

static int hold_ready_stop(run *r, void *arg)
{
    hold_state *hs = arg;
    if (now_ns() > r->t_end) return 1;
    if (r->errors) return 1;
    return hs->opened == r->o.streams && n_ready(r) + (int)r->done == r->o.streams;
}

static int time_stop(run *r, void *arg)
{
    (void)arg;
    return now_ns() > r->t_end;
}

static void mode_hold(run *r)
{
    hold_state hs = {0};
    mode m = {hold_idle, &hs};
    uint64_t t0 = now_ns();
    r->t_end = t0 + (uint64_t)(r->o.timeout * 1e9);
    hold_idle(r, NULL, &hs);
    loop_until(r, &m, hold_ready_stop, &hs, -1, NULL);
    int ready = n_ready(r);
    printf("%s streams=%d open=%d ended_early=%lu errors=%lu non200=%lu open_ms=%.0f\n",
           ready == r->o.streams ? "ready" : "notready", r->o.streams, ready, r->done, r->errors,
           r->non200, (double)(now_ns() - t0) / 1e6);
    fflush(stdout);
    if (ready != r->o.streams) exit(1);
    r->t_end = now_ns() + (uint64_t)(r->o.hold * 1e9);
    loop_until(r, &m, time_stop, NULL, -1, NULL);
    printf("released open=%d errors=%lu\n", n_ready(r), r->errors);
}

/* ---- set-up ----------------------------------------------------------------------------- */

static void build_request(run *r)
{
    char body[512];
    int blen = snprintf(body, sizeof body,
                        "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]%s}",
                        r->o.model, r->o.stream ? ",\"stream\":true" : "");
    size_t cap = 1024 + (size_t)blen;
    for (int i = 0; i < r->o.n_headers; i++) cap += strlen(r->o.headers[i]) + 2;
    r->req = malloc(cap);
    if (!r->req) die("malloc");
    int n = snprintf(r->req, cap,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Accept: %s\r\nContent-Length: %d\r\n",
                     r->o.path, r->o.port, r->o.stream ? "text/event-stream" : "application/json", blen);
    for (int i = 0; i < r->o.n_headers; i++)
        n += snprintf(r->req + n, cap - (size_t)n, "%s\r\n", r->o.headers[i]);
    n += snprintf(r->req + n, cap - (size_t)n, "\r\n%s", body);
    r->req_len = (size_t)n;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen lat|rate|hold --port P [--path P] [--model M] [--stream] [-H 'K: V']...\n"
            "  lat:  [--conns C] [--duration S] [--warmup S]\n"
            "  rate: --rate R [--duration S] [--warmup S] [--conns C] [--max-conns N]\n"
            "  hold: --streams N [--hold S] [--timeout S]\n");
    exit(2);
}

static void parse_args(opts *o, int argc, char **argv)
{
    *o = (opts){.path = "/v1/chat/completions", .model = "gpt-4o", .conns = 1, .max_conns = 512,
                .duration = 3, .warmup = 0.5, .rate = 1000, .hold = 2, .timeout = 30, .streams = 100};
    if (argc < 2) usage();
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--stream") == 0) {
            o->stream = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (strcmp(a, "--port") == 0) o->port = atoi(v);
        else if (strcmp(a, "--path") == 0) o->path = v;
        else if (strcmp(a, "--model") == 0) o->model = v;
        else if (strcmp(a, "-H") == 0 && o->n_headers < MAX_HEADERS) o->headers[o->n_headers++] = v;
        else if (strcmp(a, "--conns") == 0) o->conns = atoi(v);
        else if (strcmp(a, "--max-conns") == 0) o->max_conns = atoi(v);
        else if (strcmp(a, "--streams") == 0) o->streams = atoi(v);
        else if (strcmp(a, "--duration") == 0) o->duration = atof(v);
        else if (strcmp(a, "--warmup") == 0) o->warmup = atof(v);
        else if (strcmp(a, "--rate") == 0) o->rate = atof(v);
        else if (strcmp(a, "--hold") == 0) o->hold = atof(v);
        else if (strcmp(a, "--timeout") == 0) o->timeout = atof(v);
        else usage();
    }
    if (strcmp(o->mode, "hold") == 0) o->stream = 1;
    if (o->port <= 0 || o->port > 65535 || o->conns < 1 || o->duration <= 0 || o->rate <= 0 ||
        o->streams < 1 || o->streams > 100000 || o->max_conns < o->conns)
        usage();
}

int main(int argc, char **argv)
{
    static run r;
    parse_args(&r.o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    /* The default 50 us timer slack would be charged to every scheduled request in rate mode. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    build_request(&r);
    r.ep = epoll_create1(0);
    if (r.ep < 0) die("epoll_create1");
    r.n_conns = strcmp(r.o.mode, "hold") == 0 ? r.o.streams
                : strcmp(r.o.mode, "rate") == 0 ? r.o.max_conns
                                                : r.o.conns;
    r.conns = calloc((size_t)r.n_conns, sizeof *r.conns);
    if (!r.conns) die("calloc");
    for (int i = 0; i < r.n_conns; i++) r.conns[i].fd = -1;
    if (strcmp(r.o.mode, "lat") == 0) mode_lat(&r);
    else if (strcmp(r.o.mode, "rate") == 0) mode_rate(&r);
    else if (strcmp(r.o.mode, "hold") == 0) mode_hold(&r);
    else usage();
    return 0;
}
