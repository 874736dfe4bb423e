/* loadgen.c: the timing client of bench/overhead, for what wrk cannot do.
 *
 * One thread, non-blocking sockets, epoll, HTTP/1.1 keep-alive, one request in flight per
 * connection (no pipelining). It parses just enough HTTP to know where a response ends
 * (Content-Length, chunked, or close) and, for streams, when the first `data:` of the body
 * arrives and whether `data: [DONE]` did.
 *
 * Modes (each prints key=value lines on stdout; times in microseconds):
 *   lat   closed loop: --conns C connections (default 1), each sending its next request as soon
 *         as the previous answer ends, for --duration S after --warmup S. With --stream it also
 *         reports time to first token (request written -> first `data:` byte read).
 *   rate  open loop at --rate R req/s: a timerfd schedules request k at t0 + k/R whatever
 *         happened before; it goes out on an idle connection, or a new one (at most
 *         --max-conns), or waits in the client. Latency counts from the scheduled time, not the
 *         send time, so a stalled server is charged for every request it delayed (no coordinated
 *         omission, as in wrk2).
 *   hold  opens --streams N streams (at most 100 connecting at once), waits until each has
 *         received its first `data:`, prints "ready ...", keeps them open --hold S seconds
 *         (reading and discarding), then exits, closing them all.
 *
 * Interleaving (lat and rate): with --base-port B the run alternates every --slice S seconds
 * between the path under test (--port) and a baseline (B), and prints one line for each
 * (target=base, target=path). Both then see the same background load on a shared machine, so
 * their difference is the path's overhead rather than a change in the weather. --also-port Q
 * (repeatable, up to 6; with --base-port) adds more targets to the rotation, each printed as
 * target=also: the slices go base, path, also..., and with more than two targets the order reverses
 * every cycle (base path A B, B A path base, ...), so that each target follows the others about
 * equally often (the end of one target's slice still loads the machine at the start of the next).
 *
 * Pausing (lat and rate): --pid P names the process behind --port, --also-pid P (repeatable, in
 * the order of --also-port) the one behind each --also-port. Such a process is stopped
 * (SIGSTOP) once the slice has moved on and its last answer is in, and continued (SIGCONT) just
 * before its next request goes out, so that nothing it does in the background (a ledger writer
 * finishing the last slice's records, say) lands in another target's slice: each target is
 * measured with its own background work only. Every paused process is continued at exit.
 *
 * Other options: --path /v1/chat/completions, --model gpt-4o, --stream, -H 'Name: value'
 * (repeatable; sent to both targets), --raw PREFIX (lat and rate: each target's latencies, µs,
 * one per line, appended to PREFIX.<port>, so that several runs can be pooled). A status other
 * than 200, a stream without `data: [DONE]`, or a connection that fails mid-response counts as
 * an error. */
#include <arpa/inet.h>
#include <errno.h>
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
#define MAX_SAMPLES (4u * 1024 * 1024)
#define HOLD_CONNECTING_MAX 100
#define DRAIN_NS 2000000000u /* how long answers are awaited after the last request is due */

enum { C_FREE, C_CONNECTING, C_IDLE, C_BUSY };
enum { P_HEAD, P_CL, P_EOF, P_CSIZE, P_CDATA, P_CCRLF, P_TRAILER };
enum { T_PATH, T_BASE, T_ALSO }; /* indexes of run.t; --also-port targets from T_ALSO on */
#define MAX_ALSO 6
#define MAX_TARGETS (T_ALSO + MAX_ALSO)

typedef struct conn {
    int fd, state, pstate, target;
    size_t sent;
    uint64_t t_start, t_sent, t_first;
    char head[HEAD_MAX];
    size_t head_len, line_len;
    char line[64];
    int status, keep, saw_done, m_data, m_done, want_out;
    int stacked; /* bit tg set: the connection is on target tg's idle stack */
    uint64_t remaining;
} conn;

typedef struct samples {
    uint64_t *v;
    size_t n;
} samples;

typedef struct queue { /* scheduled start times waiting for a connection (rate mode) */
    uint64_t *t;
    size_t head, len, cap;
} queue;

/* Everything measured for one target. */
typedef struct target {
    int port;
    char *req;
    size_t req_len;
    samples lat, ttft, lag;
    unsigned long done, errors, non200, no_done;
    int n_state[4]; /* connections per state, so that no hot path scans them all */
    conn **idle;    /* stack of idle connections; entries may be stale (see pop_idle) */
    int n_idle;
    queue q;
    int pid;    /* 0: not paused between its slices (--pid, --also-pid) */
    int paused; /* SIGSTOP sent, SIGCONT not yet */
} target;

typedef struct opts {
    const char *mode, *path, *model, *headers[MAX_HEADERS], *raw;
    int n_headers, port, base_port, stream, conns, max_conns, streams;
    int also_ports[MAX_ALSO], n_also, pid, also_pids[MAX_ALSO], n_also_pids;
    double duration, warmup, rate, hold, timeout, slice;
} opts;

typedef struct run {
    opts o;
    int ep;
    conn *conns;
    int n_conns;
    target t[MAX_TARGETS];
    int n_targets;          /* t[0 .. n_targets) are in use (T_BASE even without a baseline) */
    int order[MAX_TARGETS]; /* the rotation of the slices, baseline first */
    int n_order;
    int pausing; /* some target has a pid */
    uint64_t t0, t_measure, t_end;
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
        if (!s->v)
            die("malloc");
    }
    if (s->n < MAX_SAMPLES)
        s->v[s->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in microseconds; the samples must be sorted. -1 when there are none. */
static double pct_us(const samples *s, double p)
{
    if (s->n == 0)
        return -1;
    size_t k = (size_t)(p / 100.0 * (double)s->n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > s->n)
        k = s->n;
    return (double)s->v[k - 1] / 1000.0;
}

/* --raw PREFIX: appends the target's latencies (µs, one per line) to PREFIX.<port>, so that a
   caller can pool several runs before taking percentiles. */
static void write_raw(run *r, int tg)
{
    if (!r->o.raw)
        return;
    char name[4096];
    snprintf(name, sizeof(name), "%s.%d", r->o.raw, r->t[tg].port);
    FILE *f = fopen(name, "a");
    if (!f)
        die(name);
    const samples *s = &r->t[tg].lat;
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%.1f\n", (double)s->v[i] / 1000.0);
    if (fclose(f) != 0)
        die(name);
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
    if (c == pat[*m])
        (*m)++;
    else
        *m = c == pat[0];
    if ((size_t)*m == plen) {
        *m = 0;
        return 1;
    }
    return 0;
}

static void body_bytes(run *r, conn *c, const char *p, size_t n)
{
    if (!r->o.stream)
        return;
    for (size_t i = 0; i < n; i++) {
        if (match_step(&c->m_data, "data:", 5, p[i]) && !c->t_first)
            c->t_first = now_ns();
        if (match_step(&c->m_done, "[DONE]", 6, p[i]))
            c->saw_done = 1;
    }
}

static const char *find_header(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = head; p && p < head + len; p = memchr(p, '\n', (size_t)(head + len - p))) {
        if (*p == '\n')
            p++;
        if ((size_t)(head + len - p) > nl && strncasecmp(p, name, nl) == 0)
            return p + nl;
    }
    return NULL;
}

static int parse_head(conn *c, size_t len)
{
    if (len < 12 || strncmp(c->head, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(c->head + 9);
    c->keep = c->head[7] == '1';
    const char *v = find_header(c->head, len, "connection:");
    if (v && strncasecmp(v + strspn(v, " "), "close", 5) == 0)
        c->keep = 0;
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
    if (ch == '\n')
        return 1;
    if (ch != '\r' && c->line_len < sizeof c->line - 1)
        c->line[c->line_len++] = ch;
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
            if (c->remaining == 0 && c->pstate == P_CL)
                return i == n ? 1 : -1;
            if (c->remaining == 0)
                c->pstate = P_CCRLF;
            break;
        }
        case P_EOF: body_bytes(r, c, p + i, n - i); return 0;
        case P_CSIZE:
            if (line_byte(c, p[i++])) {
                c->line[c->line_len] = '\0';
                char *end;
                c->remaining = strtoull(c->line, &end, 16);
                if (end == c->line)
                    return -1;
                c->line_len = 0;
                c->pstate = c->remaining ? P_CDATA : P_TRAILER;
            }
            break;
        case P_CCRLF:
            if (p[i++] == '\n')
                c->pstate = P_CSIZE;
            break;
        case P_TRAILER:
            if (line_byte(c, p[i++])) {
                if (c->line_len == 0)
                    return i == n ? 1 : -1;
                c->line_len = 0;
            }
            break;
        default: return -1;
        }
    }
    return c->pstate == P_CL && c->remaining == 0;
}

static int feed(run *r, conn *c, const char *p, size_t n)
{
    if (c->pstate != P_HEAD)
        return feed_body(r, c, p, n);
    size_t old = c->head_len, k = n < HEAD_MAX - old ? n : HEAD_MAX - old;
    memcpy(c->head + old, p, k);
    c->head_len += k;
    size_t from = old > 3 ? old - 3 : 0;
    char *e = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
    if (!e)
        return c->head_len == HEAD_MAX ? -1 : 0;
    size_t hlen = (size_t)(e - c->head) + 4;
    if (parse_head(c, hlen) < 0)
        return -1;
    size_t in_head = c->head_len - hlen; /* body bytes that were copied into head[] */
    int rc = feed_body(r, c, c->head + hlen, in_head);
    if (rc != 0 || k == n)
        return rc;
    return feed_body(r, c, p + k, n - k);
}

/* ---- connections ------------------------------------------------------------------------ */

static void set_state(run *r, conn *c, int state)
{
    target *t = &r->t[c->target];
    t->n_state[c->state]--;
    t->n_state[state]++;
    c->state = state;
    if (state == C_IDLE && !(c->stacked & (1 << c->target))) {
        c->stacked |= 1 << c->target;
        t->idle[t->n_idle++] = c;
    }
}

/* Pops an idle connection of a target, skipping entries that changed state since their push. */
static conn *pop_idle(run *r, int tg)
{
    target *t = &r->t[tg];
    while (t->n_idle > 0) {
        conn *c = t->idle[--t->n_idle];
        c->stacked &= ~(1 << tg);
        if (c->state == C_IDLE && c->target == tg)
            return c;
    }
    return NULL;
}

static int count(run *r, int state)
{
    int n = 0;
    for (int tg = 0; tg < r->n_targets; tg++)
        n += r->t[tg].n_state[state];
    return n;
}

static void ep_mod(run *r, conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(r->ep, op, c->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Opens a connection to a target in a free slot; NULL when every slot is in use. */
static conn *conn_open(run *r, int tg)
{
    conn *c = NULL;
    for (int i = 0; i < r->n_conns && !c; i++)
        if (r->conns[i].state == C_FREE)
            c = &r->conns[i];
    if (!c)
        return NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->t[tg].port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        die("connect");
    r->t[c->target].n_state[C_FREE]--;
    r->t[tg].n_state[C_FREE]++;
    c->target = tg;
    set_state(r, c, C_CONNECTING);
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
    set_state(r, c, C_FREE);
}

/* Writes (the rest of) the request; the connection is then busy until its answer ends. */
static void conn_send(run *r, conn *c)
{
    target *t = &r->t[c->target];
    while (c->sent < t->req_len) {
        ssize_t w = send(c->fd, t->req + c->sent, t->req_len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            ep_mod(r, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
            c->want_out = 1;
            return;
        }
        if (w <= 0)
            return; /* the read side reports the failure */
        c->sent += (size_t)w;
    }
    c->t_sent = now_ns();
    if (c->want_out)
        ep_mod(r, c, EPOLL_CTL_MOD, EPOLLIN);
    c->want_out = 0;
}

/* Continues a target's process that pause_idle stopped. */
static void resume(target *t)
{
    if (t->paused && kill(t->pid, SIGCONT) == 0)
        t->paused = 0;
}

/* Starts a request on an idle connection; latency counts from t_start (0: now). */
static void conn_start(run *r, conn *c, uint64_t t_start)
{
    resume(&r->t[c->target]);
    set_state(r, c, C_BUSY);
    c->pstate = P_HEAD;
    c->head_len = c->line_len = 0;
    c->sent = 0;
    c->t_start = t_start ? t_start : now_ns();
    c->t_first = 0;
    c->saw_done = c->m_data = c->m_done = 0;
    conn_send(r, c);
}

static void on_done(run *r, conn *c, int ok)
{
    uint64_t now = now_ns();
    target *t = &r->t[c->target];
    if (ok && c->status != 200) {
        t->non200++;
        ok = 0;
    }
    if (ok && r->o.stream && !c->saw_done) {
        t->no_done++;
        ok = 0;
    }
    if (!ok) {
        t->errors++;
        return;
    }
    t->done++;
    if (c->t_start < r->t_measure || now > r->t_end + DRAIN_NS)
        return;
    sample_add(&t->lat, now - c->t_start);
    if (r->o.stream && c->t_first)
        sample_add(&t->ttft, c->t_first - c->t_sent);
    sample_add(&t->lag, c->t_sent - c->t_start);
}

/* A mode's reaction to a connection that became idle (connected or answered) or closed
 * (state C_FREE, target still set). */
typedef void (*idle_fn)(run *r, conn *c);

static void handle(run *r, conn *c, uint32_t ev, idle_fn idle)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            errno = err;
            die("connect");
        }
        set_state(r, c, C_IDLE);
        ep_mod(r, c, EPOLL_CTL_MOD, EPOLLIN);
        if (idle)
            idle(r, c);
        return;
    }
    if ((ev & EPOLLOUT) && c->state == C_BUSY && c->sent < r->t[c->target].req_len)
        conn_send(r, c);
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        int rc = n > 0 && c->state == C_BUSY ? feed(r, c, buf, (size_t)n) : -1;
        if (n <= 0 && c->state == C_BUSY && c->pstate == P_EOF)
            rc = 1; /* body ends at close */
        if (rc == 0)
            continue;
        if (c->state == C_BUSY)
            on_done(r, c, rc > 0);
        else if (n > 0)
            r->t[c->target].errors++; /* bytes nobody asked for */
        if (rc < 0 || n <= 0 || !c->keep) {
            conn_close(r, c);
        } else {
            set_state(r, c, C_IDLE);
        }
        if (idle)
            idle(r, c);
        return;
    }
}

static int active_target(run *r, uint64_t now);

/* Stops each target with a pid whose slice is over once nothing of it is in flight. */
static void pause_idle(run *r)
{
    int active = active_target(r, now_ns());
    for (int tg = 0; tg < r->n_targets; tg++) {
        target *t = &r->t[tg];
        if (!t->pid || t->paused || tg == active || t->q.len ||
            t->n_state[C_BUSY] + t->n_state[C_CONNECTING])
            continue;
        if (kill(t->pid, SIGSTOP) == 0)
            t->paused = 1;
    }
}

static run *resume_at_exit;

static void resume_all(void)
{
    for (int tg = 0; resume_at_exit && tg < resume_at_exit->n_targets; tg++)
        resume(&resume_at_exit->t[tg]);
}

/* Killed (by timeout, say): continue the paused processes first (kill is async-signal-safe). */
static void on_fatal_signal(int sig)
{
    resume_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Runs the loop until stop() says so; timer events (data.ptr NULL) go to tick(). */
static void loop_until(run *r, idle_fn idle, int (*stop)(run *), int timerfd, void (*tick)(run *))
{
    struct epoll_event evs[256];
    while (!stop(r)) {
        if (r->pausing && r->t0)
            pause_idle(r);
        int n = epoll_wait(r->ep, evs, 256, 5);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t k;
                if (read(timerfd, &k, sizeof k) == (ssize_t)sizeof k && tick)
                    tick(r);
                continue;
            }
            handle(r, evs[i].data.ptr, evs[i].events, idle);
        }
    }
}

/* Which target is being measured now: slices rotate, the baseline first; with more than two
   targets every other cycle runs backwards. */
static int active_target(run *r, uint64_t now)
{
    if (r->n_order == 1)
        return r->order[0];
    uint64_t slice = (uint64_t)(r->o.slice * 1e9);
    uint64_t k = now > r->t0 ? (now - r->t0) / slice : 0;
    uint64_t n = (uint64_t)r->n_order, pos = k % n;
    if (n > 2 && (k / n) % 2 == 1)
        pos = n - 1 - pos;
    return r->order[pos];
}

static void print_target(run *r, int tg, const char *mode)
{
    target *t = &r->t[tg];
    printf("mode=%s target=%s port=%d requests=%lu errors=%lu non200=%lu no_done=%lu samples=%zu "
           "rps=%.0f",
           mode,
           tg == T_BASE   ? "base"
           : tg == T_PATH ? "path"
                          : "also",
           t->port, t->done, t->errors, t->non200, t->no_done, t->lat.n,
           (double)t->lat.n / (r->o.duration / r->n_order));
}

/* ---- lat: closed loop ------------------------------------------------------------------ */

static void lat_kick(run *r)
{
    conn *c;
    int tg = active_target(r, now_ns());
    while ((c = pop_idle(r, tg)) != NULL)
        conn_start(r, c, 0);
}

static void lat_idle(run *r, conn *c)
{
    if (now_ns() >= r->t_end)
        return;
    if (c->state == C_FREE)
        conn_open(r, c->target);
    lat_kick(r);
}

static int lat_stop(run *r)
{
    if (now_ns() < r->t_end) {
        if (count(r, C_BUSY) == 0)
            lat_kick(r); /* a slice changed while all were idle */
        return 0;
    }
    return count(r, C_BUSY) + count(r, C_CONNECTING) == 0;
}

static int connected_stop(run *r)
{
    return count(r, C_CONNECTING) == 0 || now_ns() > r->t_end;
}

static void mode_lat(run *r)
{
    r->t_end = now_ns() + 2000000000u;
    for (int tg = 0; tg < r->n_targets; tg++)
        for (int i = 0; i < r->o.conns; i++)
            conn_open(r, tg);
    loop_until(r, NULL, connected_stop, -1, NULL);
    r->t0 = now_ns();
    r->t_measure = r->t0 + (uint64_t)(r->o.warmup * 1e9);
    r->t_end = r->t_measure + (uint64_t)(r->o.duration * 1e9);
    lat_kick(r);
    loop_until(r, lat_idle, lat_stop, -1, NULL);
    for (int tg = r->n_targets - 1; tg >= 0; tg--) {
        print_target(r, tg, "lat");
        print_pcts("", &r->t[tg].lat);
        write_raw(r, tg);
        if (r->o.stream)
            print_pcts("ttft_", &r->t[tg].ttft);
        printf("\n");
    }
}

/* ---- rate: open loop ------------------------------------------------------------------- */

typedef struct rate_state {
    uint64_t t0, interval, seq, n_total;
} rate_state;

static rate_state rs;

static void rate_idle(run *r, conn *c)
{
    target *t = &r->t[c->target];
    if (t->q.len == 0)
        return;
    if (c->state == C_FREE) { /* closed while requests wait: replace it */
        if ((size_t)t->n_state[C_CONNECTING] < t->q.len)
            conn_open(r, c->target);
        return;
    }
    uint64_t ts = t->q.t[t->q.head];
    t->q.head = (t->q.head + 1) % t->q.cap;
    t->q.len--;
    conn_start(r, c, ts);
}

static void rate_tick(run *r)
{
    uint64_t now = now_ns();
    while (rs.seq < rs.n_total && rs.t0 + rs.seq * rs.interval <= now) {
        uint64_t due = rs.t0 + rs.seq++ * rs.interval;
        int tg = active_target(r, due);
        target *t = &r->t[tg];
        conn *c = pop_idle(r, tg);
        if (c) {
            conn_start(r, c, due);
            continue;
        }
        t->q.t[(t->q.head + t->q.len++) % t->q.cap] = due;
        int open = t->n_state[C_CONNECTING] + t->n_state[C_IDLE] + t->n_state[C_BUSY];
        if ((size_t)t->n_state[C_CONNECTING] < t->q.len && open < r->o.max_conns)
            conn_open(r, tg);
    }
}

static int rate_stop(run *r)
{
    if (now_ns() > r->t_end + DRAIN_NS)
        return 1;
    size_t queued = 0;
    for (int tg = 0; tg < r->n_targets; tg++)
        queued += r->t[tg].q.len;
    return rs.seq == rs.n_total && queued == 0 && count(r, C_BUSY) == 0;
}

static void mode_rate(run *r)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (tfd < 0)
        die("timerfd_create");
    /* Pre-open connections so that connection set-up is not in the measured latencies. */
    r->t_end = now_ns() + 2000000000u;
    for (int tg = 0; tg < r->n_targets; tg++)
        for (int i = 0; i < r->o.conns; i++)
            conn_open(r, tg);
    loop_until(r, NULL, connected_stop, -1, NULL);
    rs.interval = (uint64_t)(1e9 / r->o.rate);
    rs.n_total = (uint64_t)((r->o.warmup + r->o.duration) * r->o.rate);
    for (int tg = 0; tg < r->n_targets; tg++) {
        r->t[tg].q.cap = rs.n_total + 1;
        r->t[tg].q.t = malloc(r->t[tg].q.cap * sizeof *r->t[tg].q.t);
        if (!r->t[tg].q.t)
            die("malloc");
    }
    rs.t0 = r->t0 = now_ns() + 1000000;
    r->t_measure = rs.t0 + (uint64_t)(r->o.warmup * 1e9);
    r->t_end = rs.t0 + rs.n_total * rs.interval;
    struct itimerspec its = {
        .it_value = {(time_t)(rs.t0 / 1000000000u), (long)(rs.t0 % 1000000000u)},
        .it_interval = {0, (long)rs.interval < 1000000 ? (long)rs.interval : 1000000}};
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        die("timerfd_settime");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
        die("epoll_ctl");
    loop_until(r, rate_idle, rate_stop, tfd, rate_tick);
    for (int tg = r->n_targets - 1; tg >= 0; tg--) {
        target *t = &r->t[tg];
        /* never sent, still queued, or sent and not answered within DRAIN_NS */
        unsigned long late = tg == T_PATH ? (unsigned long)(rs.n_total - rs.seq) : 0;
        late += (unsigned long)t->q.len + (unsigned long)t->n_state[C_BUSY];
        print_target(r, tg, "rate");
        printf(" target_rps=%.0f unfinished=%lu conns_used=%d", r->o.rate, late,
               t->n_state[C_IDLE] + t->n_state[C_BUSY] + t->n_state[C_CONNECTING]);
        print_pcts("", &t->lat);
        write_raw(r, tg);
        qsort(t->lag.v, t->lag.n, sizeof *t->lag.v, cmp_u64);
        printf(" send_lag_p50_us=%.1f send_lag_p99_us=%.1f\n", pct_us(&t->lag, 50),
               pct_us(&t->lag, 99));
    }
    close(tfd);
}

/* ---- hold: open N streams and keep them ------------------------------------------------ */

static int hold_opened;

static int n_ready(run *r)
{
    int n = 0;
    for (int i = 0; i < r->n_conns; i++)
        n += r->conns[i].state == C_BUSY && r->conns[i].t_first;
    return n;
}

static void hold_idle(run *r, conn *c)
{
    if (c && c->state == C_IDLE && c->t_start == 0)
        conn_start(r, c, 0);
    else if (c && c->state == C_IDLE)
        conn_close(r, c); /* a stream that ended early */
    while (hold_opened < r->o.streams && count(r, C_CONNECTING) < HOLD_CONNECTING_MAX) {
        conn_open(r, T_PATH);
        hold_opened++;
    }
}

static int hold_ready_stop(run *r)
{
    target *t = &r->t[T_PATH];
    if (now_ns() > r->t_end || t->errors)
        return 1;
    return hold_opened == r->o.streams && n_ready(r) + (int)t->done == r->o.streams;
}

static int time_stop(run *r)
{
    return now_ns() > r->t_end;
}

static void mode_hold(run *r)
{
    target *t = &r->t[T_PATH];
    uint64_t t0 = now_ns();
    r->t_measure = UINT64_MAX; /* no latency samples */
    r->t_end = t0 + (uint64_t)(r->o.timeout * 1e9);
    hold_idle(r, NULL);
    loop_until(r, hold_idle, hold_ready_stop, -1, NULL);
    int ready = n_ready(r);
    printf("%s streams=%d open=%d ended_early=%lu errors=%lu non200=%lu open_ms=%.0f\n",
           ready == r->o.streams ? "ready" : "notready", r->o.streams, ready, t->done, t->errors,
           t->non200, (double)(now_ns() - t0) / 1e6);
    fflush(stdout);
    if (ready != r->o.streams)
        exit(1);
    r->t_end = now_ns() + (uint64_t)(r->o.hold * 1e9);
    loop_until(r, hold_idle, time_stop, -1, NULL);
    printf("released open=%d errors=%lu\n", n_ready(r), t->errors);
}

/* ---- set-up ----------------------------------------------------------------------------- */

static void build_request(run *r, target *t)
{
    char body[512];
    int blen = snprintf(
        body, sizeof body,
        "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]%s}",
        r->o.model, r->o.stream ? ",\"stream\":true" : "");
    size_t cap = 1024 + (size_t)blen;
    for (int i = 0; i < r->o.n_headers; i++)
        cap += strlen(r->o.headers[i]) + 2;
    t->req = malloc(cap);
    if (!t->req)
        die("malloc");
    int n =
        snprintf(t->req, cap,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                 "Accept: %s\r\nContent-Length: %d\r\n",
                 r->o.path, t->port, r->o.stream ? "text/event-stream" : "application/json", blen);
    for (int i = 0; i < r->o.n_headers; i++)
        n += snprintf(t->req + n, cap - (size_t)n, "%s\r\n", r->o.headers[i]);
    n += snprintf(t->req + n, cap - (size_t)n, "\r\n%s", body);
    t->req_len = (size_t)n;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen lat|rate|hold --port P [--base-port B] [--also-port Q]... [--slice S]\n"
            "               [--pid PID] [--also-pid PID]... [--path P] [--model M] [--raw PREFIX]\n"
            "               [--stream] [-H 'K: V']...\n"
            "  lat:  [--conns C] [--duration S] [--warmup S]\n"
            "  rate: --rate R [--duration S] [--warmup S] [--conns C] [--max-conns N]\n"
            "  hold: --streams N [--hold S] [--timeout S]\n");
    exit(2);
}

static void parse_args(opts *o, int argc, char **argv)
{
    *o = (opts){.path = "/v1/chat/completions",
                .model = "gpt-4o",
                .conns = 1,
                .max_conns = 128,
                .duration = 3,
                .warmup = 0.5,
                .rate = 1000,
                .hold = 2,
                .timeout = 30,
                .streams = 100,
                .slice = 0.25};
    if (argc < 2)
        usage();
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--stream") == 0) {
            o->stream = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--port") == 0)
            o->port = atoi(v);
        else if (strcmp(a, "--base-port") == 0)
            o->base_port = atoi(v);
        else if (strcmp(a, "--also-port") == 0 && o->n_also < MAX_ALSO)
            o->also_ports[o->n_also++] = atoi(v);
        else if (strcmp(a, "--pid") == 0)
            o->pid = atoi(v);
        else if (strcmp(a, "--also-pid") == 0 && o->n_also_pids < MAX_ALSO)
            o->also_pids[o->n_also_pids++] = atoi(v);
        else if (strcmp(a, "--slice") == 0)
            o->slice = atof(v);
        else if (strcmp(a, "--raw") == 0)
            o->raw = v;
        else if (strcmp(a, "--path") == 0)
            o->path = v;
        else if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "-H") == 0 && o->n_headers < MAX_HEADERS)
            o->headers[o->n_headers++] = v;
        else if (strcmp(a, "--conns") == 0)
            o->conns = atoi(v);
        else if (strcmp(a, "--max-conns") == 0)
            o->max_conns = atoi(v);
        else if (strcmp(a, "--streams") == 0)
            o->streams = atoi(v);
        else if (strcmp(a, "--duration") == 0)
            o->duration = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            o->warmup = atof(v);
        else if (strcmp(a, "--rate") == 0)
            o->rate = atof(v);
        else if (strcmp(a, "--hold") == 0)
            o->hold = atof(v);
        else if (strcmp(a, "--timeout") == 0)
            o->timeout = atof(v);
        else
            usage();
    }
    if (strcmp(o->mode, "hold") == 0) {
        o->stream = 1;
        o->base_port = 0;
        o->n_also = 0;
        o->pid = o->n_also_pids = 0;
    }
    if (o->pid < 0 || o->n_also_pids > o->n_also)
        usage();
    for (int i = 0; i < o->n_also_pids; i++)
        if (o->also_pids[i] <= 0)
            usage();
    for (int i = 0; i < o->n_also; i++) /* --also-port goes with --base-port */
        if (o->also_ports[i] <= 0 || o->also_ports[i] > 65535 || o->base_port == 0)
            usage();
    if (o->port <= 0 || o->port > 65535 || o->base_port < 0 || o->base_port > 65535 ||
        o->conns < 1 || o->duration <= 0 || o->rate <= 0 || o->slice < 0.001 || o->streams < 1 ||
        o->streams > 100000 || o->max_conns < o->conns || o->max_conns > 100000)
        usage();
}

int main(int argc, char **argv)
{
    static run r;
    parse_args(&r.o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    /* The default 50 us timer slack would be charged to every scheduled request in rate mode. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    r.n_targets = r.o.n_also ? T_ALSO + r.o.n_also : r.o.base_port ? 2 : 1;
    r.t[T_PATH].port = r.o.port;
    r.t[T_BASE].port = r.o.base_port;
    if (r.o.base_port)
        r.order[r.n_order++] = T_BASE;
    r.order[r.n_order++] = T_PATH;
    for (int i = 0; i < r.o.n_also; i++) {
        r.t[T_ALSO + i].port = r.o.also_ports[i];
        r.order[r.n_order++] = T_ALSO + i;
    }
    r.t[T_PATH].pid = r.o.pid;
    for (int i = 0; i < r.o.n_also_pids; i++)
        r.t[T_ALSO + i].pid = r.o.also_pids[i];
    r.pausing = r.o.pid > 0 || r.o.n_also_pids > 0;
    resume_at_exit = &r;
    atexit(resume_all);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
    int hold = strcmp(r.o.mode, "hold") == 0, rate = strcmp(r.o.mode, "rate") == 0;
    int per_target = hold ? r.o.streams : rate ? r.o.max_conns : r.o.conns;
    r.n_conns = per_target * r.n_targets;
    r.conns = calloc((size_t)r.n_conns, sizeof *r.conns);
    if (!r.conns)
        die("calloc");
    for (int i = 0; i < r.n_conns; i++)
        r.conns[i].fd = -1;
    r.t[T_PATH].n_state[C_FREE] = r.n_conns;
    for (int tg = 0; tg < r.n_targets; tg++) {
        build_request(&r, &r.t[tg]);
        r.t[tg].idle = calloc((size_t)r.n_conns, sizeof *r.t[tg].idle);
        if (!r.t[tg].idle)
            die("calloc");
    }
    r.ep = epoll_create1(0);
    if (r.ep < 0)
        die("epoll_create1");
    if (strcmp(r.o.mode, "lat") == 0)
        mode_lat(&r);
    else if (rate)
        mode_rate(&r);
    else if (hold)
        mode_hold(&r);
    else
        usage();
    resume_all();
    return 0;
}
