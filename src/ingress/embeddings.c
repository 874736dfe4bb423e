/* embeddings.c: POST /v1/embeddings (OpenAI shape in and out), to openai, cohere or ollama. */
#include <event2/buffer.h>
#include <event2/http.h>

#include "ingress/ingress.h"
#include "proto/embed.h"
#include "relay/relay.h"

void pd_ingress_embeddings(pd_ingress_ctx *ctx)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(ctx->req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    pd_embed_request ereq;
    pd_api_error e;
    if (!body || pd_embed_parse_openai_request(body, len, &ereq, &e) != PD_OK) {
        if (!body)
            pd_openai_error_set(&e, 500, NULL, NULL, NULL, "cannot read the request body");
        pd_reply_error(ctx, &e);
        return;
    }
    const pd_model_cfg *m = pd_config_model(ctx->w->cfg, ereq.model);
    if (!m) {
        pd_openai_error_set(&e, 404, NULL, "model_not_found", "model",
                            "The model `%.200s` does not exist; GET /v1/models lists the models served",
                            ereq.model);
        pd_embed_request_free(&ereq);
        pd_reply_error(ctx, &e);
        return;
    }
    pd_relay_embed(ctx, m, &ereq);
}
