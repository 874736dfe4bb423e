/* health.c: the probing thread and the verdicts. See health.h. */
#include "upstream/health.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "upstream/client.h"

#define PROBE_BODY_MAX (64u * 1024) /* a health answer is small; past this the probe fails */

typedef struct probe {
    pd_health *h;
    const pd_provider_cfg *p;
    char *url; /* origin of base_url + path */
    struct event *tick;
    pd_transfer *xfer; /* the probe in flight, or NULL */
    long status;
    size_t body_len;
    int fails;      /* failed probes in a row */
    _Atomic int up; /* written by the probing thread only */
} probe;

struct pd_health {
    const pd_config *cfg;
    pd_engine *const *engines;
    probe *probes; /* per provider index; url NULL when that provider is not probed */
    size_t n_probed;
    struct event_base *base;
    pd_upstream *upstream;
    struct event *stop_ev;
    pthread_t thread;
    int running;
};

/* ---- one probe ----------------------------------------------------------------------------- */

/* "http://host:port/v1" + "/health" -> "http://host:port/health": llama-server and vLLM answer
 * /health at the root, not under the API prefix. */
static char *probe_url(const pd_provider_cfg *p)
{
    const char *scheme = strstr(p->base_url, "://");
    const char *host = scheme ? scheme + 3 : p->base_url;
    size_t origin = (size_t)(host - p->base_url) + strcspn(host, "/");
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_printf(&b, "%.*s%s", (int)origin, p->base_url, p->health.path);
    return b.data;
}

static void verdict(probe *pr, int ok)
{
    int was = atomic_load_explicit(&pr->up, memory_order_relaxed);
    pr->fails = ok ? 0 : pr->fails + 1;
    int now = ok ? 1 : (pr->fails >= PD_HEALTH_FALL ? 0 : was);
    if (now == was)
        return;
    atomic_store_explicit(&pr->up, now, memory_order_relaxed);
    if (now)
        pd_log_info("health: provider %s is up (%s)", pr->p->name, pr->url);
    else
        pd_log_info("health: provider %s is down after %d failed probes of %s (last: status %ld)",
                    pr->p->name, pr->fails, pr->url, pr->status);
}

static void on_probe_head(void *ud, const pd_upstream_head *head)
{
    probe *pr = ud;
    pr->status = head->status;
}

static int on_probe_body(void *ud, const char *data, size_t len)
{
    probe *pr = ud;
    (void)data;
    pr->body_len += len;
    return pr->body_len > PROBE_BODY_MAX;
}

static void on_probe_done(void *ud, pd_result rc, const char *msg, const pd_upstream_timing *tm)
{
    probe *pr = ud;
    (void)msg;
    (void)tm;
    pr->xfer = NULL;
    verdict(pr, rc == PD_OK && pr->status >= 200 && pr->status < 300);
}

static const pd_transfer_cbs probe_cbs = {on_probe_head, on_probe_body, on_probe_done};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe *pr = arg;
    if (pr->xfer)
        return; /* the last probe is still out: its own timeout will judge it */
    uint32_t t = pr->p->health.timeout_ms;
    pd_transfer_req req = {
        .url = pd_xstrdup(pr->url),
        .get = 1,
        .timeouts = {.connect_ms = t, .ttfb_ms = t, .idle_ms = t, .total_ms = t}};
    pr->status = 0;
    pr->body_len = 0;
    if (pd_upstream_start(pr->h->upstream, &req, &probe_cbs, pr, &pr->xfer) != PD_OK) {
        pr->xfer = NULL;
        verdict(pr, 0); /* no callback fires: judge it here */
    }
}

/* ---- the thread ---------------------------------------------------------------------------- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_health *h = arg;
    event_base_loopbreak(h->base);
}

static void *health_main(void *arg)
{
    pd_health *h = arg;
    event_base_dispatch(h->base);
    return NULL;
}

static pd_result add_probe(pd_health *h, size_t i)
{
    probe *pr = &h->probes[i];
    pr->h = h;
    pr->p = &h->cfg->providers[i];
    atomic_store_explicit(&pr->up, 1, memory_order_relaxed);
    if (!pr->p->health.enabled)
        return PD_OK;
    pr->url = probe_url(pr->p);
    pr->tick = event_new(h->base, -1, EV_PERSIST, on_tick, pr);
    uint32_t ms = pr->p->health.interval_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!pr->tick || event_add(pr->tick, &tv) != 0)
        return PD_ERR_IO;
    event_active(pr->tick, EV_TIMEOUT, 0); /* the first probe at once */
    h->n_probed++;
    return PD_OK;
}

static pd_result set_up_loop(pd_health *h)
{
    h->base = event_base_new();
    h->upstream = h->base ? pd_upstream_new(h->base) : NULL;
    h->stop_ev = h->base ? event_new(h->base, -1, 0, on_stop, h) : NULL;
    if (!h->upstream || !h->stop_ev)
        return PD_ERR_IO;
    pd_result rc = PD_OK;
    for (size_t i = 0; i < h->cfg->n_providers && !rc; i++)
        rc = add_probe(h, i);
    return rc;
}

pd_result pd_health_start(const pd_config *cfg, pd_engine *const *engines, pd_health **out,
                          char *err, size_t errlen)
{
    pd_health *h = pd_xcalloc(1, sizeof(*h));
    h->cfg = cfg;
    h->engines = engines;
    h->probes = pd_xcalloc(cfg->n_providers + 1, sizeof(*h->probes));
    *out = NULL;
    size_t wanted = 0;
    for (size_t i = 0; i < cfg->n_providers; i++)
        wanted += cfg->providers[i].health.enabled != 0;
    pd_result rc = wanted ? set_up_loop(h) : PD_OK;
    if (!rc && wanted && pthread_create(&h->thread, NULL, health_main, h) != 0)
        rc = PD_ERR_IO;
    if (rc) {
        snprintf(err, errlen, "health checks: cannot start the probing loop");
        pd_health_stop(h);
        return rc;
    }
    h->running = wanted > 0;
    *out = h;
    return PD_OK;
}

void pd_health_stop(pd_health *h)
{
    if (!h)
        return;
    if (h->running) {
        event_active(h->stop_ev, 0, 0); /* thread-safe: evthread_use_pthreads */
        pthread_join(h->thread, NULL);
    }
    pd_upstream_free(h->upstream); /* cancels a probe in flight; no callback fires */
    for (size_t i = 0; i < h->cfg->n_providers; i++) {
        if (h->probes[i].tick)
            event_free(h->probes[i].tick);
        free(h->probes[i].url);
    }
    if (h->stop_ev)
        event_free(h->stop_ev);
    if (h->base)
        event_base_free(h->base);
    free(h->probes);
    free(h);
}

pd_health_state pd_health_target(const pd_health *h, size_t target)
{
    if (!h || target >= h->cfg->n_models)
        return PD_HEALTH_UNCHECKED;
    const pd_provider_cfg *p = h->cfg->models[target].provider;
    size_t i = (size_t)(p - h->cfg->providers);
    if (p->kind == PD_KIND_LLAMA) {
        pd_engine *eng = h->engines ? h->engines[i] : NULL;
        return eng && pd_engine_state_get(eng) == PD_ENGINE_READY ? PD_HEALTH_UP : PD_HEALTH_DOWN;
    }
    if (!p->health.enabled)
        return PD_HEALTH_UNCHECKED;
    probe *pr = &h->probes[i];
    return atomic_load_explicit(&pr->up, memory_order_relaxed) ? PD_HEALTH_UP : PD_HEALTH_DOWN;
}
