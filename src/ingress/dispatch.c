/* dispatch.c: the endpoint table and the checks every endpoint shares. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "ingress/ingress.h"
#include "providers/provider.h"

typedef struct endpoint {
    const char *path;
    enum evhttp_cmd_type method;
    const char *allow; /* the Allow header of a 405 */
    void (*handler)(pd_ingress_ctx *ctx);
    int needs_key;     /* subject to gateway keys */
    const pd_dialect *dialect; /* the protocol its errors are written in */
} endpoint;

static const endpoint endpoints[] = {
    {"/v1/chat/completions", EVHTTP_REQ_POST, "POST", pd_ingress_chat_completions, 1, &pd_dialect_openai},
    {"/v1/messages", EVHTTP_REQ_POST, "POST", pd_ingress_messages, 1, &pd_dialect_anthropic},
    {"/v1/route/explain", EVHTTP_REQ_POST, "POST", pd_ingress_route_explain, 1, &pd_dialect_openai},
    {"/v1/embeddings", EVHTTP_REQ_POST, "POST", pd_ingress_embeddings, 1, &pd_dialect_openai},
    {"/v1/models", EVHTTP_REQ_GET, "GET", pd_ingress_models, 1, &pd_dialect_openai},
    {"/ui", EVHTTP_REQ_GET, "GET", pd_ingress_ui, 0, &pd_dialect_openai},
    {"/ui/", EVHTTP_REQ_GET, "GET", pd_ingress_ui, 0, &pd_dialect_openai},
    {"/ui/index.html", EVHTTP_REQ_GET, "GET", pd_ingress_ui, 0, &pd_dialect_openai},
    {"/ui/app.js", EVHTTP_REQ_GET, "GET", pd_ingress_ui, 0, &pd_dialect_openai},
    {"/ui/style.css", EVHTTP_REQ_GET, "GET", pd_ingress_ui, 0, &pd_dialect_openai},
    {"/ui/api/calc", EVHTTP_REQ_GET, "GET", pd_ingress_ui_calc, 0, &pd_dialect_openai},
    {"/ui/api/dashboard", EVHTTP_REQ_GET, "GET", pd_ingress_ui_dashboard, 0, &pd_dialect_openai},
    {"/metrics", EVHTTP_REQ_GET, "GET", pd_ingress_metrics, 0, &pd_dialect_openai},
    {"/healthz", EVHTTP_REQ_GET, "GET", pd_ingress_healthz, 0, &pd_dialect_openai},
    {"/readyz", EVHTTP_REQ_GET, "GET", pd_ingress_readyz, 0, &pd_dialect_openai},
};

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

static size_t header_count(struct evhttp_request *req)
{
    size_t n = 0;
    for (struct evkeyval *kv = evhttp_request_get_input_headers(req)->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    return n;
}

/* Constant time in the key's contents: no early exit on the first differing byte. */
static int key_equal(const char *given, size_t given_len, const char *key)
{
    size_t key_len = strlen(key);
    unsigned char diff = (unsigned char)(given_len != key_len);
    for (size_t i = 0; i < given_len; i++)
        diff |= (unsigned char)(given[i] ^ key[i < key_len ? i : 0]);
    return key_len > 0 && diff == 0;
}

/* The key as OpenAI clients send it (Authorization: Bearer) or Anthropic's (x-api-key). */
static const char *given_key(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *auth = evhttp_find_header(h, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    return evhttp_find_header(h, "x-api-key");
}

static int authorized(const pd_config *cfg, struct evhttp_request *req)
{
    if (cfg->n_api_keys == 0)
        return 1;
    const char *given = given_key(req);
    if (!given)
        return 0;
    size_t given_len = strlen(given);
    int ok = 0;
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        ok |= key_equal(given, given_len, cfg->api_keys[i]);
    return ok;
}

static void init_ctx(pd_ingress_ctx *ctx, pd_worker *w, struct evhttp_request *req)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->w = w;
    ctx->req = req;
    ctx->dialect = &pd_dialect_openai;
    ctx->t_start_us = pd_now_us();
    ctx->method = method_name(evhttp_request_get_command(req));
    /* req-<wall clock µs>-<worker's random tag>-<worker's count>. Ids rise with time, so a
       PostgreSQL ledger's unique index on id takes them near its end. Keep them that way: with
       random ids (a UUIDv4, say) every insert lands on a random page, and bench/ledger_writer
       --ids random measured SQLite's writer, when it had that index, at 3-6x the CPU per
       record, growing with the table. They must also never repeat an id already in the ledger,
       which PostgreSQL skips as a retried batch (lost record): the wall clock rather than the
       monotonic one (which restarts at boot), and the tag, drawn at each start, for gateways
       sharing one ledger or a clock set back. */
    snprintf(ctx->id, sizeof(ctx->id), "req-%llx-%08x-%llx", (unsigned long long)pd_wall_us(),
             (unsigned)w->id_tag, (unsigned long long)++w->seq);
    const char *uri = evhttp_request_get_uri(req);
    size_t n = strcspn(uri ? uri : "", "?#");
    if (n >= sizeof(ctx->path))
        n = sizeof(ctx->path) - 1;
    memcpy(ctx->path, uri ? uri : "", n);
    ctx->path[n] = '\0';
}

static void route(pd_ingress_ctx *ctx)
{
    pd_api_error e;
    enum evhttp_cmd_type method = evhttp_request_get_command(ctx->req);
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        const endpoint *ep = &endpoints[i];
        if (strcmp(ctx->path, ep->path) != 0)
            continue;
        ctx->dialect = ep->dialect;
        if (method != ep->method) {
            evhttp_add_header(evhttp_request_get_output_headers(ctx->req), "Allow", ep->allow);
            pd_openai_error_set(&e, 405, NULL, "method_not_allowed", NULL,
                             "%s is not allowed on %s (use %s)", ctx->method, ep->path, ep->allow);
            pd_reply_error(ctx, &e);
            return;
        }
        if (ep->needs_key && !authorized(ctx->w->cfg, ctx->req)) {
            pd_openai_error_set(&e, 401, NULL, "invalid_api_key", NULL,
                             "missing or invalid gateway key: send Authorization: Bearer <key> (or x-api-key)");
            pd_reply_error(ctx, &e);
            return;
        }
        ep->handler(ctx);
        return;
    }
    pd_openai_error_set(&e, 404, NULL, "not_found", NULL, "no endpoint %s %s", ctx->method, ctx->path);
    pd_reply_error(ctx, &e);
}

void pd_ingress_handle(struct evhttp_request *req, void *worker)
{
    pd_ingress_ctx ctx;
    init_ctx(&ctx, worker, req);
    if (header_count(req) > ctx.w->cfg->limits.max_headers) {
        pd_api_error e;
        pd_openai_error_set(&e, 431, NULL, "too_many_headers", NULL, "more than %zu request headers",
                         ctx.w->cfg->limits.max_headers);
        pd_reply_error(&ctx, &e);
        return;
    }
    route(&ctx);
}
