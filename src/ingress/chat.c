/* chat.c: the chat endpoints: POST /v1/chat/completions (OpenAI dialect), POST /v1/messages
 * (Anthropic dialect) and POST /v1/route/explain. Each parses into the canonical request, asks the
 * router for a plan (which targets, in which order, and why), and hands both to the relay, which
 * answers in the endpoint's dialect whatever the upstream speaks. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "ingress/ingress.h"
#include "proto/anthropic.h"
#include "relay/relay.h"
#include "router/from_config.h"

typedef pd_result (*parse_fn)(const char *body, size_t len, pd_chat_request *out, pd_api_error *err);

static int parse_body(pd_ingress_ctx *ctx, parse_fn parse, pd_chat_request *creq)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(ctx->req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    pd_api_error e;
    if (!body || parse(body, len, creq, &e) != PD_OK) {
        if (!body)
            pd_openai_error_set(&e, 500, NULL, NULL, NULL, "cannot read the request body");
        pd_reply_error(ctx, &e);
        return -1;
    }
    return 0;
}

/* The router's plan for the request; on failure the client has its error (404, 400 for PII in a
 * block route or unmet compliance, ...). */
static pd_route_plan *plan_request(pd_ingress_ctx *ctx, const pd_chat_request *creq)
{
    pd_worker *w = ctx->w;
    pd_api_error e;
    pd_route_ctx rctx = {.scanner = w->scanner,
                         .open = w->open,
                         .n_open = w->n_targets,
                         .outstanding = w->outstanding,
                         .latency_ewma_ms = w->latency_ewma_ms,
                         .n_load = w->n_targets,
                         .balance_seed = w->seq,
                         .random = pd_worker_random(w)};
    const char *tags = evhttp_find_header(evhttp_request_get_input_headers(ctx->req),
                                          "x-pendulum-compliance");
    char why[200];
    if (tags && pd_route_compliance_parse(tags, &rctx.compliance, why, sizeof(why)) != PD_OK) {
        pd_openai_error_set(&e, 400, NULL, "invalid_compliance", NULL, "x-pendulum-compliance: %s", why);
        pd_reply_error(ctx, &e);
        return NULL;
    }
    pd_breaker_params bp = pd_breaker_params_from_config(w->cfg);
    uint64_t now_ms = pd_now_us() / 1000;
    for (size_t i = 0; i < w->n_targets; i++)
        w->open[i] = (pd_breaker_is_open(&w->breakers[i], &bp, now_ms) ? PD_TARGET_OPEN : 0) |
                     (pd_health_target(w->health, i) == PD_HEALTH_DOWN ? PD_TARGET_DOWN : 0);
    pd_route_plan *plan = pd_xmalloc(sizeof(*plan));
    if (pd_router_plan(w->router, creq->model, creq, &rctx, plan, &e) != PD_OK) {
        free(plan);
        pd_reply_error(ctx, &e);
        return NULL;
    }
    return plan;
}

static void serve(pd_ingress_ctx *ctx, parse_fn parse)
{
    pd_chat_request creq;
    if (parse_body(ctx, parse, &creq) != 0)
        return;
    pd_route_plan *plan = plan_request(ctx, &creq);
    if (!plan) {
        pd_chat_request_free(&creq);
        return;
    }
    pd_relay_chat(ctx, plan, &creq);
}

void pd_ingress_chat_completions(pd_ingress_ctx *ctx)
{
    serve(ctx, pd_openai_parse_chat_request);
}

void pd_ingress_messages(pd_ingress_ctx *ctx)
{
    serve(ctx, pd_anthropic_parse_chat_request);
}

/* POST /v1/route/explain: the decision and its reasons, without calling any upstream. */
void pd_ingress_route_explain(pd_ingress_ctx *ctx)
{
    pd_chat_request creq;
    if (parse_body(ctx, pd_openai_parse_chat_request, &creq) != 0)
        return;
    pd_route_plan *plan = plan_request(ctx, &creq);
    if (plan) {
        pd_buf out;
        pd_buf_init(&out, 1u << 20);
        if (pd_route_plan_explain(plan, &out) == PD_OK)
            pd_reply_json(ctx, 200, out.data, out.len);
        pd_buf_free(&out);
        free(plan);
    }
    pd_chat_request_free(&creq);
}
