/* worker.c: a worker's loop, listener, connections and shutdown. See worker.h. */
#include "server/worker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "ingress/ingress.h"
#include "proto/openai.h"

static void set_timer_ms(struct event *ev, uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_table_put(pd_worker *w, int fd, pd_conn *c)
{
    if ((size_t)fd >= w->conns_cap) {
        size_t cap = w->conns_cap ? w->conns_cap : 1024;
        while (cap <= (size_t)fd)
            cap *= 2;
        w->conns = pd_xrealloc(w->conns, cap * sizeof(*w->conns));
        memset(w->conns + w->conns_cap, 0, (cap - w->conns_cap) * sizeof(*w->conns));
        w->conns_cap = cap;
    }
    w->conns[fd] = c;
}

static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    pd_conn *c = arg;
    if (c->call && c->on_gone)
        c->on_gone(c->call);
    if (c->fd >= 0 && (size_t)c->fd < c->w->conns_cap && c->w->conns[c->fd] == c)
        c->w->conns[c->fd] = NULL;
    evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->output_cb);
    event_free(c->deadline);
    free(c);
}

/* The request deadline passed with no complete request: drop the connection. */
static void on_conn_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_conn *c = arg;
    if (!c->call)
        evhttp_connection_free(c->evcon); /* runs on_conn_closed, which frees c */
}

/* libevent answers some errors itself, before any handler runs (a body over max_body_bytes, a
 * head over max_header_bytes, a malformed request line), with an HTML page. Every error must be in
 * the API's JSON shape, and libevent 2.1 has no hook for these pages, so this output-buffer
 * callback spots one as it is queued (before the loop writes it) and replaces it with the same
 * status and an OpenAI error body. It costs one 15-byte compare per write on the hot path. */
static const char html_tail[] = "</BODY></HTML>\n";

static size_t last_response_start(struct evbuffer *buf)
{
    struct evbuffer_ptr p = evbuffer_search(buf, "HTTP/1.", 7, NULL), last = p;
    while (p.pos != -1) {
        last = p;
        if (evbuffer_ptr_set(buf, &p, 1, EVBUFFER_PTR_ADD) != 0)
            break;
        p = evbuffer_search(buf, "HTTP/1.", 7, &p);
    }
    return last.pos < 0 ? 0 : (size_t)last.pos;
}

static void replace_error_page(struct evbuffer *buf, size_t start)
{
    char head[16] = "";
    struct evbuffer_ptr at;
    evbuffer_ptr_set(buf, &at, start, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(buf, &at, head, sizeof(head) - 1);
    int status = atoi(head + 9); /* "HTTP/1.1 413 ..." */
    pd_api_error e;
    if (status == 413)
        pd_openai_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                            "the request body or head exceeds the configured limit");
    else
        pd_openai_error_set(&e, status >= 400 ? status : 400, "invalid_request_error",
                            "malformed_request", NULL, "malformed HTTP request");
    pd_buf body;
    pd_buf_init(&body, 0);
    pd_openai_error_body(&e, &body);
    size_t keep = start;
    char *prefix = keep ? pd_xmalloc(keep) : NULL;
    if (keep)
        evbuffer_remove(buf, prefix, keep);
    evbuffer_drain(buf, evbuffer_get_length(buf));
    if (keep)
        evbuffer_add(buf, prefix, keep);
    evbuffer_add_printf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        "Content-Length: %zu\r\n\r\n", e.status, status == 413 ? "Payload Too Large" : "Bad Request",
                        body.len);
    evbuffer_add(buf, body.data, body.len);
    free(prefix);
    pd_buf_free(&body);
}

static void on_output_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    pd_conn *c = arg;
    size_t len = evbuffer_get_length(buf);
    char tail[sizeof(html_tail) - 1];
    if (c->rewriting || !info->n_added || len < sizeof(tail))
        return;
    struct evbuffer_ptr at;
    evbuffer_ptr_set(buf, &at, len - sizeof(tail), EVBUFFER_PTR_SET);
    if (evbuffer_copyout_from(buf, &at, tail, sizeof(tail)) != (ev_ssize_t)sizeof(tail) ||
        memcmp(tail, html_tail, sizeof(tail)) != 0)
        return;
    c->rewriting = 1;
    replace_error_page(buf, last_response_start(buf));
    c->rewriting = 0;
}

/* Runs right after evhttp has wrapped a new client socket (scheduled from on_new_bufferevent),
 * before any byte of it is read. evhttp's connection is the bufferevent's callback argument. */
static void on_conn_setup(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    pd_conn *c = arg;
    void *cbarg = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
    c->evcon = cbarg;
    c->fd = bufferevent_getfd(c->bev);
    if (!c->evcon || c->fd < 0 || evhttp_connection_get_bufferevent(c->evcon) != c->bev) {
        free(c); /* not an evhttp connection after all: leave it to libevent */
        return;
    }
    int one = 1; /* stream chunks are small and must leave at once */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->deadline = evtimer_new(c->w->base, on_conn_deadline, c);
    c->output_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), on_output_changed, c);
    conn_table_put(c->w, c->fd, c);
    evhttp_connection_set_closecb(c->evcon, on_conn_closed, c);
    set_timer_ms(c->deadline, c->w->cfg->limits.read_timeout_ms);
}

static struct bufferevent *on_new_bufferevent(struct event_base *base, void *arg)
{
    pd_worker *w = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    pd_conn *c = pd_xcalloc(1, sizeof(*c));
    c->w = w;
    c->bev = bev;
    c->fd = -1;
    /* A timeout-less once-event is activated at once: it runs in this loop iteration, after
     * evhttp has finished setting up the connection and before any read. */
    if (event_base_once(base, -1, EV_TIMEOUT, on_conn_setup, c, NULL) != 0) {
        free(c);
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

pd_conn *pd_worker_conn_of(pd_worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon)
        return NULL;
    int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    if (fd < 0 || (size_t)fd >= w->conns_cap)
        return NULL;
    pd_conn *c = w->conns[fd];
    return c && c->evcon == evcon ? c : NULL;
}

/* While a request waits on the upstream, evhttp does not read from the client, so it would not
 * notice a disconnect. Watch the socket ourselves until the reply starts (evhttp then installs
 * its own callbacks, which detect a close while writing). */
static void on_watch_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    pd_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        evhttp_connection_free(c->evcon); /* on_conn_closed tells the call */
}

static void on_watch_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    /* A pipelined next request: leave it in the buffer for evhttp and stop watching. */
    bufferevent_disable(bev, EV_READ);
}

void pd_conn_begin(pd_conn *c, void *call, pd_conn_gone_cb on_gone)
{
    c->call = call;
    c->on_gone = on_gone;
    evtimer_del(c->deadline);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
        bufferevent_setcb(c->bev, on_watch_read, NULL, on_watch_event, c);
        bufferevent_enable(c->bev, EV_READ);
    }
}

void pd_conn_end(pd_conn *c)
{
    c->call = NULL;
    c->on_gone = NULL;
    /* The next request on this keep-alive connection must arrive complete within the idle time. */
    set_timer_ms(c->deadline, c->w->cfg->limits.idle_timeout_ms);
}

/* ---- listener ---------------------------------------------------------------------------- */

static int open_listener(const pd_config *cfg, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)cfg->listen_port);
    int rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "listen %s: %s", cfg->listen_host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
        snprintf(err, errlen, "listen %s:%u: %s", cfg->listen_host, (unsigned)cfg->listen_port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

/* epoll's changelist folds the add/del pairs of one loop iteration (curl switching a socket
 * between reading and writing, evhttp enabling and disabling reads) into at most one epoll_ctl
 * each: syscalls are what a small request costs most. */
static struct event_base *new_base(void)
{
    struct event_config *ec = event_config_new();
    if (!ec)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

static int output_pending(pd_worker *w)
{
    for (size_t fd = 0; fd < w->conns_cap; fd++) {
        pd_conn *c = w->conns[fd];
        if (c && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            return 1;
    }
    return 0;
}

/* Draining: exit once every reply has been handed to evhttp and written out. */
static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_worker *w = arg;
    if (w->inflight == 0 && !output_pending(w))
        event_base_loopexit(w->base, NULL);
    else
        event_base_once(w->base, -1, EV_TIMEOUT, on_drain_check, w, &(struct timeval){0, 10000});
}

static void close_idle_connections(pd_worker *w)
{
    for (size_t fd = 0; fd < w->conns_cap; fd++) {
        pd_conn *c = w->conns[fd];
        if (c && !c->call && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            evhttp_connection_free(c->evcon);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_worker *w = arg;
    if (w->draining)
        return;
    w->draining = 1;
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound); /* closes the listening socket */
        w->bound = NULL;
    }
    close_idle_connections(w);
    on_drain_check(-1, 0, w);
}

static void on_force(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_worker *w = arg;
    event_base_loopbreak(w->base);
}

void pd_worker_call_started(pd_worker *w)
{
    w->inflight++;
}

void pd_worker_call_finished(pd_worker *w)
{
    w->inflight--;
}

void pd_worker_target_begin(pd_worker *w, int target)
{
    if (target >= 0 && (size_t)target < w->n_targets && w->outstanding)
        w->outstanding[target]++;
}

void pd_worker_target_end(pd_worker *w, int target, uint64_t latency_us, bool ok)
{
    if (target < 0 || (size_t)target >= w->n_targets || !w->outstanding)
        return;
    if (w->outstanding[target])
        w->outstanding[target]--;
    if (!ok || latency_us == 0)
        return;
    double ms = (double)latency_us / 1000.0, *avg = &w->latency_ewma_ms[target];
    *avg = *avg > 0 ? *avg + PD_WORKER_EWMA_ALPHA * (ms - *avg) : ms;
}

uint64_t pd_worker_random(pd_worker *w)
{
    uint64_t x = w->rng; /* xorshift64* (Vigna): fast, good enough to spread load */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

pd_worker *pd_worker_new(int id, const pd_config *cfg, int log_fd, char *err, size_t errlen)
{
    pd_worker *w = pd_xcalloc(1, sizeof(*w));
    w->id = id;
    w->cfg = cfg;
    w->log_fd = log_fd;
    w->rng = (pd_now_us() ^ ((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ULL)) | 1;
    if (getrandom(&w->id_tag, sizeof w->id_tag, GRND_NONBLOCK) != (ssize_t)sizeof w->id_tag)
        w->id_tag = (uint32_t)(pd_worker_random(w) >> 32); /* no entropy yet: still differs */
    w->listen_fd = open_listener(cfg, err, errlen);
    if (w->listen_fd < 0)
        goto fail;
    w->base = new_base();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    w->upstream = w->base ? pd_upstream_new(w->base) : NULL;
    w->stop_ev = w->base ? event_new(w->base, -1, 0, on_stop, w) : NULL;
    w->force_ev = w->base ? event_new(w->base, -1, 0, on_force, w) : NULL;
    if (!w->http || !w->upstream || !w->stop_ev || !w->force_ev) {
        snprintf(err, errlen, "worker %d: cannot create event loop", id);
        goto fail;
    }
    evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->limits.max_body_bytes);
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->limits.max_header_bytes);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                            EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(w->http, "application/json");
    evhttp_set_bevcb(w->http, on_new_bufferevent, w);
    evhttp_set_gencb(w->http, pd_ingress_handle, w);
    w->bound = evhttp_accept_socket_with_handle(w->http, w->listen_fd);
    if (!w->bound) {
        snprintf(err, errlen, "worker %d: cannot accept on the listening socket", id);
        goto fail;
    }
    w->listen_fd = -1; /* owned by evhttp now */
    return w;
fail:
    pd_worker_free(w);
    return NULL;
}

void pd_worker_free(pd_worker *w)
{
    if (!w)
        return;
    if (w->http)
        evhttp_free(w->http); /* closes connections: their close callbacks free the pd_conns */
    pd_upstream_free(w->upstream);
    pd_pii_scanner_free(w->scanner);
    free(w->breakers);
    free(w->open);
    free(w->outstanding);
    free(w->latency_ewma_ms);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->force_ev)
        event_free(w->force_ev);
    if (w->base)
        event_base_free(w->base);
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    free(w->conns);
    free(w);
}

static void *worker_main(void *arg)
{
    pd_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int pd_worker_start(pd_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void pd_worker_stop(pd_worker *w, int force)
{
    event_active(force ? w->force_ev : w->stop_ev, 0, 0);
}

void pd_worker_join(pd_worker *w)
{
    pthread_join(w->thread, NULL);
}
