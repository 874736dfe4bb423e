/* chat.c: the chat endpoints: POST /v1/chat/completions (OpenAI dialect) and POST /v1/messages
 * (Anthropic dialect). Both parse into the canonical request and hand it to the relay, which
 * answers in the endpoint's dialect whatever the upstream speaks. */
#include <event2/buffer.h>
#include <event2/http.h>

#include "ingress/ingress.h"
#include "proto/anthropic.h"
#include "relay/relay.h"

typedef pd_result (*parse_fn)(const char *body, size_t len, pd_chat_request *out, pd_api_error *err);

static void serve(pd_ingress_ctx *ctx, parse_fn parse)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(ctx->req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    pd_chat_request creq;
    pd_api_error e;
    if (!body || parse(body, len, &creq, &e) != PD_OK) {
        if (!body)
            pd_openai_error_set(&e, 500, NULL, NULL, NULL, "cannot read the request body");
        pd_reply_error(ctx, &e);
        return;
    }
    const pd_model_cfg *m = pd_config_model(ctx->w->cfg, creq.model);
    if (!m) {
        pd_openai_error_set(&e, 404, NULL, "model_not_found", "model",
                            "The model `%.200s` does not exist; GET /v1/models lists the models served",
                            creq.model);
        pd_chat_request_free(&creq);
        pd_reply_error(ctx, &e);
        return;
    }
    pd_relay_chat(ctx, m, &creq);
}

void pd_ingress_chat_completions(pd_ingress_ctx *ctx)
{
    serve(ctx, pd_openai_parse_chat_request);
}

void pd_ingress_messages(pd_ingress_ctx *ctx)
{
    serve(ctx, pd_anthropic_parse_chat_request);
}
