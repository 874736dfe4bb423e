/* ingress.h: where a client request enters. pd_ingress_handle is evhttp's callback for every
 * request of a worker: it finds the endpoint in a table (path + method), applies the checks every
 * endpoint shares (header count, gateway key), and calls the endpoint's handler. Handlers answer
 * exactly once, in the API's own error shape when something is wrong, now or later (the chat
 * handler answers when the upstream has). */
#ifndef PD_INGRESS_INGRESS_H
#define PD_INGRESS_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/openai.h"
#include "server/worker.h"

struct evhttp_request;
struct pd_dialect;

/* What every handler knows about its request. */
typedef struct pd_ingress_ctx {
    pd_worker *w;
    struct evhttp_request *req;
    const struct pd_dialect *dialect; /* the client's protocol: error shape, answer encoding */
    char id[48];          /* request id, also sent as x-request-id */
    const char *method;
    char path[128];
    uint64_t t_start_us;
} pd_ingress_ctx;

void pd_ingress_handle(struct evhttp_request *req, void *worker);

/* Endpoints (ingress/<api>.c). */
void pd_ingress_chat_completions(pd_ingress_ctx *ctx);
void pd_ingress_messages(pd_ingress_ctx *ctx);
void pd_ingress_embeddings(pd_ingress_ctx *ctx);
void pd_ingress_route_explain(pd_ingress_ctx *ctx);
void pd_ingress_models(pd_ingress_ctx *ctx);
void pd_ingress_healthz(pd_ingress_ctx *ctx);
void pd_ingress_readyz(pd_ingress_ctx *ctx);
void pd_ingress_metrics(pd_ingress_ctx *ctx);
/* The web page and its JSON (ingress/ui.c, docs/dashboard.md). */
void pd_ingress_ui(pd_ingress_ctx *ctx);
void pd_ingress_ui_calc(pd_ingress_ctx *ctx);
void pd_ingress_ui_dashboard(pd_ingress_ctx *ctx);

/* Replies with a body and writes the request's log line. */
void pd_reply_body(pd_ingress_ctx *ctx, int status, const char *content_type, const char *body,
                   size_t len);
void pd_reply_json(pd_ingress_ctx *ctx, int status, const char *body, size_t len);
/* Replies with an error in the client's protocol (ctx->dialect) and logs it. */
void pd_reply_error(pd_ingress_ctx *ctx, const pd_api_error *e);
/* The common headers of every reply: x-request-id, and Connection: close while draining. */
void pd_reply_headers(pd_ingress_ctx *ctx, const char *content_type);

#endif
