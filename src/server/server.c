/* server.c: start N workers on one port, wait for a signal, shut down gracefully.
 *
 * Signals are blocked in every thread and taken synchronously by the main thread (sigwait), so
 * no handler runs in a worker's loop and no global flag is needed. */
#include "server/server.h"

#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "router/from_config.h"
#include "server/worker.h"

static int worker_count(const pd_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int open_log(const pd_config *cfg)
{
    if (!cfg->log_file)
        return STDERR_FILENO;
    int fd = open(cfg->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        pd_log_info("cannot open log file %s: %s", cfg->log_file, strerror(errno));
    return fd;
}

/* Every worker binds the port with SO_REUSEPORT, which would also let a second gateway (or
 * anything else) share the port silently. A plain bind first tells whether the port is free,
 * and picks the port when the config says 0. */
static int claim_port(pd_config *cfg, char *err, size_t errlen)
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
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int ok = fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
             getsockname(fd, (struct sockaddr *)&ss, &len) == 0;
    if (!ok)
        snprintf(err, errlen, "listen %s:%u: %s", cfg->listen_host, (unsigned)cfg->listen_port,
                 strerror(errno));
    else
        cfg->listen_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                          : ((struct sockaddr_in *)&ss)->sin_port);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return ok ? 0 : -1;
}

static void deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits for the workers to drain until the grace deadline, then cuts the rest. */
static void shut_down(pd_worker **ws, int n, uint32_t grace_ms)
{
    struct timespec deadline;
    deadline_after(&deadline, grace_ms);
    for (int i = 0; i < n; i++)
        pd_worker_stop(ws[i], 0);
    int forced = 0;
    for (int i = 0; i < n; i++) {
        if (!forced && pthread_timedjoin_np(ws[i]->thread, NULL, &deadline) == 0)
            continue;
        if (!forced) {
            pd_log_info("grace period of %u ms over: cutting the requests still in flight", grace_ms);
            for (int j = 0; j < n; j++)
                pd_worker_stop(ws[j], 1);
            forced = 1;
        }
        pd_worker_join(ws[i]);
    }
}

static int wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

/* The ledger gets its own writer thread; "off" means none. */
static int open_ledger(const pd_config *cfg, pd_ledger **out)
{
    char err[512] = "";
    *out = NULL;
    if (cfg->ledger_url && strcmp(cfg->ledger_url, "off") == 0)
        return 0;
    if (pd_ledger_open(cfg->ledger_url, NULL, out, err, sizeof(err)) != PD_OK) {
        pd_log_info("ledger: %s", err);
        return -1;
    }
    pd_log_info("ledger: %s", pd_ledger_describe(*out));
    return 0;
}

static void close_ledger(pd_ledger *ledger)
{
    if (!ledger)
        return;
    pd_ledger_stats st;
    pd_ledger_close(ledger, &st); /* writes everything still queued */
    pd_log_info("ledger: %llu records written, %llu dropped, %llu failed",
                (unsigned long long)st.written, (unsigned long long)st.dropped,
                (unsigned long long)st.failed);
}

/* The price table every worker prices requests with: built-in, overridden by `prices:`. */
static int open_prices(const pd_config *cfg, pd_prices **out)
{
    char err[256] = "";
    pd_result rc = pd_prices_from_config(cfg, out, err, sizeof(err));
    if (rc != PD_OK)
        pd_log_info("prices: %s", err);
    return rc == PD_OK ? 0 : -1;
}

/* One embedded engine per `kind: llama` provider, loading in the background (/readyz says
 * not ready until every one is loaded). */
static int open_engines(const pd_config *cfg, pd_engine ***out)
{
    pd_engine **engines = pd_xcalloc(cfg->n_providers + 1, sizeof(*engines));
    *out = engines;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const pd_provider_cfg *p = &cfg->providers[i];
        if (p->kind != PD_KIND_LLAMA)
            continue;
        char err[512] = "";
        pd_engine_params ep = pd_engine_default_params();
        ep.model_path = p->model_path;
        ep.name = p->name;
        ep.ctx_size = p->ctx_size;
        ep.parallel = p->parallel;
        ep.threads = (int32_t)p->threads;
        ep.batch_size = p->batch_size;
        ep.embeddings = p->embeddings;
        if (p->pooling)
            ep.pooling = !strcmp(p->pooling, "mean") ? PD_ENGINE_POOLING_MEAN
                         : !strcmp(p->pooling, "cls") ? PD_ENGINE_POOLING_CLS
                                                      : PD_ENGINE_POOLING_LAST;
        if (pd_engine_open(&ep, &engines[i], err, sizeof(err)) != PD_OK) {
            pd_log_info("provider %s: %s", p->name, err);
            return -1;
        }
    }
    return 0;
}

static void close_engines(const pd_config *cfg, pd_engine **engines)
{
    for (size_t i = 0; engines && i < cfg->n_providers; i++)
        pd_engine_close(engines[i]);
    free(engines);
}

/* What every worker shares read-only for routing: the router and the PII patterns. */
static int open_routing(const pd_config *cfg, pd_router **router, pd_pii_detector **pii)
{
    char err[512] = "";
    pd_pii_params pp = pd_pii_default_params();
    if (pd_router_from_config(cfg, router, err, sizeof(err)) != PD_OK) {
        pd_log_info("%s", err);
        return -1;
    }
    if (pd_pii_detector_new(&pp, pii) != PD_OK) {
        pd_log_info("cannot build the PII detector");
        return -1;
    }
    return 0;
}

static int attach_routing(pd_worker *w, const pd_config *cfg, const pd_router *router,
                          const pd_pii_detector *pii)
{
    w->router = router;
    w->n_targets = cfg->n_models;
    w->breakers = pd_xcalloc(w->n_targets + 1, sizeof(*w->breakers));
    w->open = pd_xcalloc(w->n_targets + 1, 1);
    w->outstanding = pd_xcalloc(w->n_targets + 1, sizeof(*w->outstanding));
    w->latency_ewma_ms = pd_xcalloc(w->n_targets + 1, sizeof(*w->latency_ewma_ms));
    return pd_pii_scanner_new(pii, &w->scanner) == PD_OK ? 0 : -1;
}

int pd_server_run(pd_config *cfg)
{
    char err[256] = "";
    int rc = 1, n = worker_count(cfg), started = 0;
    int log_fd = open_log(cfg);
    pd_worker **ws = pd_xcalloc((size_t)n, sizeof(*ws));
    pd_ledger *ledger = NULL;
    pd_metrics_params mp;
    pd_metrics_default_params(&mp);
    mp.shards = (unsigned)n;
    pd_metrics *metrics = pd_metrics_new(&mp);
    pd_router *router = NULL;
    pd_pii_detector *pii = NULL;
    pd_prices *prices = NULL;
    pd_engine **engines = NULL;
    pd_health *health = NULL;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the workers */
    if (log_fd < 0 || evthread_use_pthreads() != 0)
        goto out;
    if (claim_port(cfg, err, sizeof(err)) != 0) {
        pd_log_info("%s", err);
        goto out;
    }
    if (!metrics || open_prices(cfg, &prices) != 0 || open_routing(cfg, &router, &pii) != 0 ||
        open_ledger(cfg, &ledger) != 0 || open_engines(cfg, &engines) != 0)
        goto out;
    if (pd_health_start(cfg, engines, &health, err, sizeof(err)) != PD_OK) {
        pd_log_info("%s", err);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (!(ws[i] = pd_worker_new(i, cfg, log_fd, err, sizeof(err)))) {
            pd_log_info("%s", err);
            goto out;
        }
        ws[i]->ledger = ledger;
        ws[i]->metrics = metrics;
        ws[i]->shard = pd_metrics_shard_at(metrics, (unsigned)i);
        ws[i]->prices = prices;
        ws[i]->engines = engines;
        ws[i]->health = health;
        if (attach_routing(ws[i], cfg, router, pii) != 0) {
            pd_log_info("worker %d: cannot set up routing", i);
            goto out;
        }
    }
    for (; started < n; started++) {
        if (pd_worker_start(ws[started]) != 0) {
            pd_log_info("cannot start worker thread %d", started);
            goto out;
        }
    }
    pd_log_info("listening on %s:%u with %d worker%s", cfg->listen_host, (unsigned)cfg->listen_port,
                n, n == 1 ? "" : "s");
    int sig = wait_for_signal(&set);
    pd_log_info("%s: draining (up to %u ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                cfg->limits.shutdown_grace_ms);
    rc = 0;
out:
    if (started)
        shut_down(ws, started, rc == 0 ? cfg->limits.shutdown_grace_ms : 0);
    for (int i = 0; i < n; i++)
        pd_worker_free(ws[i]);
    free(ws);
    pd_health_stop(health); /* after the workers: nobody reads it any more */
    close_ledger(ledger); /* after the workers: their last records are queued by now */
    pd_metrics_free(metrics);
    close_engines(cfg, engines); /* after the workers: no job is left */
    pd_router_free(router);
    pd_pii_detector_free(pii);
    pd_prices_free(prices);
    if (log_fd > STDERR_FILENO)
        close(log_fd);
    if (rc == 0)
        pd_log_info("stopped");
    return rc;
}
