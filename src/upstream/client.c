/* client.c: libcurl multi driven by a libevent loop. See client.h for the design. */
#include "upstream/client.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

#define EASY_POOL_MAX 64

struct pd_upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    CURL *pool[EASY_POOL_MAX];
    int npool;
    pd_transfer *live; /* doubly linked, for pd_upstream_free */
    int in_curl;       /* inside curl_multi_socket_action: no handle may be removed now */
    size_t n_deferred; /* transfers waiting for that (pd_transfer.deferred) */
};

typedef struct sock_watch {
    pd_upstream *u;
    curl_socket_t fd;
    struct event *ev;
} sock_watch;

struct pd_transfer {
    pd_upstream *u;
    CURL *easy;
    char *url;
    struct curl_slist *headers;
    char *body;
    pd_transfer_cbs cbs;
    void *ud;
    struct event *watchdog;
    uint32_t ttfb_ms, idle_ms;
    pd_upstream_head head;
    int head_done;
    int in_callback;  /* inside a curl callback: removal must wait for curl to return */
    int cancelled;    /* pd_transfer_cancel was called from inside a callback */
    int deferred;     /* cancelled during another transfer's callback: released after curl returns */
    int body_aborted; /* on_body asked to stop */
    pd_transfer *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
};

pd_result pd_upstream_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PD_OK : PD_ERR_IO;
}

void pd_upstream_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- transfer lifetime ------------------------------------------------------------------- */

static void link_live(pd_upstream *u, pd_transfer *t)
{
    t->prev = NULL;
    t->next = u->live;
    if (u->live)
        u->live->prev = t;
    u->live = t;
}

static void unlink_live(pd_upstream *u, pd_transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        u->live = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static CURL *easy_get(pd_upstream *u)
{
    if (u->npool > 0)
        return u->pool[--u->npool];
    return curl_easy_init();
}

static void easy_put(pd_upstream *u, CURL *e)
{
    if (u->npool < EASY_POOL_MAX) {
        curl_easy_reset(e);
        u->pool[u->npool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Removes the transfer from curl and frees it. Never call from inside a curl callback. */
static void release(pd_transfer *t)
{
    pd_upstream *u = t->u;
    if (t->easy) {
        curl_multi_remove_handle(u->multi, t->easy);
        easy_put(u, t->easy);
    }
    unlink_live(u, t);
    u->n_deferred -= t->deferred ? 1 : 0;
    if (t->watchdog)
        event_free(t->watchdog);
    curl_slist_free_all(t->headers);
    free(t->url);
    free(t->body);
    free(t);
}

static void read_timing(CURL *e, pd_upstream_timing *tm)
{
    curl_off_t v;
    memset(tm, 0, sizeof(*tm));
    if (curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &v) == CURLE_OK)
        tm->dns_us = (uint64_t)v;
    if (curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &v) == CURLE_OK)
        tm->connect_us = (uint64_t)v;
    if (curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &v) == CURLE_OK)
        tm->tls_us = (uint64_t)v;
    if (curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &v) == CURLE_OK)
        tm->ttfb_us = (uint64_t)v;
    if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &v) == CURLE_OK)
        tm->total_us = (uint64_t)v;
}

/* Ends a transfer: frees it first, then reports, so the callback may start new work freely. */
static void finish(pd_transfer *t, pd_result rc, const char *msg)
{
    pd_transfer_cbs cbs = t->cbs;
    void *ud = t->ud;
    pd_upstream_timing tm;
    char why[CURL_ERROR_SIZE + 64];
    int report = !t->cancelled;

    read_timing(t->easy, &tm);
    snprintf(why, sizeof(why), "%s", msg);
    release(t);
    if (report && cbs.on_done)
        cbs.on_done(ud, rc, why, &tm);
}

static void finish_curl(pd_transfer *t, CURLcode code)
{
    if (code == CURLE_OK) {
        finish(t, PD_OK, "ok");
    } else if (t->body_aborted || t->cancelled) {
        finish(t, PD_ERR_CLOSED, "aborted");
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        finish(t, PD_ERR_TIMEOUT, t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    } else {
        finish(t, PD_ERR_UPSTREAM, t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    }
}

static void drain_messages(pd_upstream *u)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        pd_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t)
            finish_curl(t, msg->data.result);
    }
    /* Transfers cancelled from inside another transfer's callback (a speculative racer dropped
     * by the other's verdict): curl has returned, so they can go now. Done ones left above. */
    for (pd_transfer *t = u->live, *next; t && u->n_deferred; t = next) {
        next = t->next;
        if (t->deferred)
            release(t);
    }
}

/* curl_multi_socket_action, marked so that a cancel from inside its callbacks waits. */
static void socket_action(pd_upstream *u, curl_socket_t fd, int action)
{
    int running;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, action, &running);
    u->in_curl--;
    drain_messages(u);
}

/* ---- libevent <-> curl glue -------------------------------------------------------------- */

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    sock_watch *w = arg;
    pd_upstream *u = w->u; /* w may be freed inside socket_action */
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    socket_action(u, fd, action);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    pd_upstream *u = userp;
    sock_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            event_free(w->ev);
            free(w);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!w) {
        w = pd_xcalloc(1, sizeof(*w));
        w->u = u;
        w->fd = s;
        w->ev = event_new(u->base, s, kind, on_socket_ready, w);
        curl_multi_assign(u->multi, s, w);
    } else {
        event_del(w->ev);
        event_assign(w->ev, u->base, s, kind, on_socket_ready, w);
    }
    return event_add(w->ev, NULL) == 0 ? 0 : -1;
}

static void on_multi_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_upstream *u = arg;
    socket_action(u, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    pd_upstream *u = userp;
    if (timeout_ms < 0)
        return evtimer_del(u->timer) == 0 ? 0 : -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(u->timer, &tv) == 0 ? 0 : -1;
}

pd_upstream *pd_upstream_new(struct event_base *base)
{
    pd_upstream *u = pd_xcalloc(1, sizeof(*u));
    u->base = base;
    u->multi = curl_multi_init();
    u->timer = evtimer_new(base, on_multi_timer, u);
    if (!u->multi || !u->timer) {
        pd_upstream_free(u);
        return NULL;
    }
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* The connection cache is left at curl's default (4 x the transfers in flight), so it grows
     * with concurrency: a fixed cap closed connections under load and churned TIME_WAITs. */
    return u;
}

void pd_upstream_free(pd_upstream *u)
{
    if (!u)
        return;
    while (u->live) {
        u->live->cancelled = 1;
        release(u->live);
    }
    for (int i = 0; i < u->npool; i++)
        curl_easy_cleanup(u->pool[i]);
    if (u->multi)
        curl_multi_cleanup(u->multi);
    if (u->timer)
        event_free(u->timer);
    free(u);
}

/* ---- per-transfer callbacks -------------------------------------------------------------- */

static void arm_watchdog(pd_transfer *t, uint32_t ms)
{
    if (!ms) {
        evtimer_del(t->watchdog);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t->watchdog, &tv);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_transfer *t = arg;
    char msg[96];
    if (t->head_done || t->body_aborted)
        snprintf(msg, sizeof(msg), "upstream sent nothing for %u ms", t->idle_ms);
    else
        snprintf(msg, sizeof(msg), "no response from upstream within %u ms", t->ttfb_ms);
    finish(t, PD_ERR_TIMEOUT, msg);
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void parse_header_line(pd_upstream_head *h, const char *line, size_t n)
{
    static const struct {
        const char *name;
        size_t off, cap;
    } wanted[] = {
        {"content-type", offsetof(pd_upstream_head, content_type), sizeof(h->content_type)},
        {"retry-after", offsetof(pd_upstream_head, retry_after), sizeof(h->retry_after)},
        {"retry-after-ms", offsetof(pd_upstream_head, retry_after_ms), sizeof(h->retry_after_ms)},
        {"x-request-id", offsetof(pd_upstream_head, request_id), sizeof(h->request_id)},
    };
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return;
    size_t klen = (size_t)(colon - line);
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        if (strlen(wanted[i].name) == klen && strncasecmp(line, wanted[i].name, klen) == 0) {
            copy_value((char *)h + wanted[i].off, wanted[i].cap, colon + 1, n - klen - 1);
            return;
        }
    }
}

static size_t on_curl_header(char *p, size_t size, size_t nitems, void *arg)
{
    pd_transfer *t = arg;
    size_t n = size * nitems;
    if (t->cancelled)
        return 0;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        memset(&t->head, 0, sizeof(t->head)); /* a new head (after 1xx or a redirect) */
        const char *sp = memchr(p, ' ', n);
        t->head.status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (t->head.status >= 200 && !t->head_done) {
            t->head_done = 1;
            arm_watchdog(t, t->idle_ms);
            t->in_callback = 1;
            t->cbs.on_head(t->ud, &t->head);
            t->in_callback = 0;
        }
    } else {
        parse_header_line(&t->head, p, n);
    }
    return t->cancelled ? 0 : n;
}

static size_t on_curl_body(char *p, size_t size, size_t nitems, void *arg)
{
    pd_transfer *t = arg;
    size_t n = size * nitems;
    if (t->cancelled || t->body_aborted)
        return 0;
    arm_watchdog(t, t->idle_ms);
    t->in_callback = 1;
    int stop = t->cbs.on_body(t->ud, p, n);
    t->in_callback = 0;
    if (stop || t->cancelled) {
        t->body_aborted = 1;
        return 0;
    }
    return n;
}

/* ---- public ------------------------------------------------------------------------------ */

static void setup_easy(pd_transfer *t, const pd_transfer_req *req)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    if (req->get) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->timeouts.connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeouts.total_ms);
}

pd_result pd_upstream_start(pd_upstream *u, pd_transfer_req *req, const pd_transfer_cbs *cbs,
                            void *ud, pd_transfer **out)
{
    pd_transfer *t = pd_xcalloc(1, sizeof(*t));
    t->u = u;
    t->url = req->url;
    t->headers = req->headers;
    t->body = req->body;
    req->url = NULL;
    req->headers = NULL;
    req->body = NULL;
    t->cbs = *cbs;
    t->ud = ud;
    t->ttfb_ms = req->timeouts.ttfb_ms;
    t->idle_ms = req->timeouts.idle_ms;
    link_live(u, t);
    /* curl adds "Expect: 100-continue" to large POSTs; that costs a round trip for nothing. */
    struct curl_slist *h = curl_slist_append(t->headers, "Expect:");
    if (h)
        t->headers = h;
    t->easy = easy_get(u);
    t->watchdog = evtimer_new(u->base, on_watchdog, t);
    if (!h || !t->easy || !t->watchdog)
        goto fail;
    setup_easy(t, req);
    if (curl_multi_add_handle(u->multi, t->easy) != CURLM_OK)
        goto fail;
    arm_watchdog(t, t->ttfb_ms);
    *out = t;
    return PD_OK;
fail:
    t->cancelled = 1;
    release(t); /* removing a handle that was never added is a no-op for curl */
    return PD_ERR_NOMEM;
}

void pd_transfer_cancel(pd_transfer *t)
{
    if (!t)
        return;
    t->cancelled = 1;
    if (t->in_callback)
        return; /* the curl callback returns an abort code and drain_messages releases it silently */
    if (!t->u->in_curl) {
        release(t);
        return;
    }
    t->deferred = 1; /* another transfer's callback: drain_messages releases it after curl */
    t->u->n_deferred++;
}
