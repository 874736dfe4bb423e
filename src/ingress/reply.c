/* reply.c: answering a request in one go (everything but a relayed upstream answer). */
#include <event2/buffer.h>
#include <event2/http.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "ingress/ingress.h"
#include "providers/provider.h"

void pd_reply_headers(pd_ingress_ctx *ctx, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(ctx->req);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "x-request-id", ctx->id);
    if (ctx->w->draining)
        evhttp_add_header(h, "Connection", "close");
}

static void log_simple(pd_ingress_ctx *ctx, int status, size_t len, const char *error)
{
    pd_request_log r = {
        .id = ctx->id, .method = ctx->method, .path = ctx->path, .status = status,
        .ttfb_ms = -1, .upstream_ms = -1,
        .total_ms = (double)(pd_now_us() - ctx->t_start_us) / 1000.0,
        .bytes_out = len, .prompt_tokens = -1, .completion_tokens = -1, .error = error,
    };
    pd_log_request(ctx->w->log_fd, &r);
}

static void send_body(pd_ingress_ctx *ctx, int status, const char *type, const char *body, size_t len)
{
    pd_conn *c = pd_worker_conn_of(ctx->w, ctx->req);
    if (c)
        pd_conn_end(c);
    pd_reply_headers(ctx, type);
    struct evbuffer *out = evbuffer_new();
    if (!out || evbuffer_add(out, body, len) != 0) {
        evhttp_send_error(ctx->req, 500, NULL);
    } else {
        evhttp_send_reply(ctx->req, status, NULL, out);
    }
    if (out)
        evbuffer_free(out);
}

void pd_reply_body(pd_ingress_ctx *ctx, int status, const char *content_type, const char *body,
                   size_t len)
{
    send_body(ctx, status, content_type, body, len);
    log_simple(ctx, status, len, NULL);
}

void pd_reply_json(pd_ingress_ctx *ctx, int status, const char *body, size_t len)
{
    pd_reply_body(ctx, status, "application/json", body, len);
}

void pd_reply_error(pd_ingress_ctx *ctx, const pd_api_error *e)
{
    pd_buf body;
    pd_buf_init(&body, 0);
    if (ctx->dialect->error_body(e, &body) != PD_OK)
        pd_buf_append_str(&body, "{\"error\":{\"message\":\"internal error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    send_body(ctx, e->status, "application/json", body.data, body.len);
    log_simple(ctx, e->status, body.len, e->code ? e->code : e->type);
    pd_buf_free(&body);
}
