/* cohere.c: provider kind `cohere`: Cohere's Chat v2 (/v2/chat) and Embed v2 (/v2/embed).
 *
 * No client speaks Cohere's dialect, so there is no pass-through: every request goes through
 * the canonical model (proto/cohere.h says field by field what is kept, clamped, dropped or
 * refused), and the answer comes back as canonical events or a canonical response. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon/embed.h"
#include "proto/cohere.h"
#include "providers/provider.h"

/* A translated body may grow past the client's (images become data: URIs again); this bounds it. */
#define BODY_LIMIT (64u * 1024 * 1024)

/* "Authorization: Bearer <key>" into buf, or NULL when the provider has no key. */
static const char *auth_line(const pd_provider_cfg *p, char *buf, size_t cap, pd_api_error *err,
                             pd_result *rc)
{
    *rc = PD_OK;
    if (!p->api_key || !p->api_key[0])
        return NULL;
    if ((size_t)snprintf(buf, cap, "Authorization: Bearer %s", p->api_key) >= cap) {
        pd_openai_error_set(err, 500, NULL, NULL, NULL, "the api_key of provider %s is too long",
                            p->name);
        *rc = PD_ERR_INVALID;
    }
    return buf;
}

/* Shared tail of both requests: the writer's result, then headers + URL, and the body handed
 * over to the transfer (freed here on any error). */
static pd_result finish_request(const pd_provider_cfg *p, const char *path, int stream,
                                pd_buf *body, pd_result written, pd_transfer_req *out,
                                pd_api_error *err)
{
    if (written == PD_ERR_TOO_LARGE)
        pd_openai_error_set(err, 413, "invalid_request_error", NULL, NULL,
                            "the request is too large once translated for provider %s", p->name);
    pd_result rc = written == PD_ERR_TOO_LARGE ? PD_ERR_INVALID : written;
    char auth[1024];
    const char *auth_h = rc ? NULL : auth_line(p, auth, sizeof auth, err, &rc);
    if (!rc)
        rc = pd_provider_http(p, path, auth_h, "X-Client-Name: pendulum", stream, out);
    if (rc) {
        pd_buf_free(body);
        return rc;
    }
    out->body = body->data;
    out->body_len = body->len;
    return PD_OK;
}

static pd_result chat_request(const pd_provider_cfg *p, const pd_model_cfg *m,
                              const pd_chat_request *req, pd_transfer_req *out, pd_api_error *err)
{
    pd_buf body;
    memset(err, 0, sizeof *err);
    pd_buf_init(&body, BODY_LIMIT);
    pd_result rc = pd_cohere_write_chat_request(req, m->upstream_model, &body, err);
    return finish_request(p, "/v2/chat", req->stream, &body, rc, out, err);
}

static pd_result embed_request(const pd_provider_cfg *p, const pd_model_cfg *m,
                               const struct pd_embed_request *req, pd_transfer_req *out,
                               pd_api_error *err)
{
    pd_buf body;
    memset(err, 0, sizeof *err);
    pd_buf_init(&body, BODY_LIMIT);
    pd_result rc = pd_cohere_write_embed_request(req, m->upstream_model, &body, err);
    return finish_request(p, "/v2/embed", 0, &body, rc, out, err);
}

static void *decoder_new(const pd_chat_request *req)
{
    (void)req;
    pd_cohere_decoder *d = pd_xmalloc(sizeof *d);
    pd_cohere_decoder_init(d);
    return d;
}

static pd_result decode(void *dec, const char *bytes, size_t len, pd_chat_event_cb cb, void *ud)
{
    return pd_cohere_decode(dec, bytes, len, cb, ud);
}

static int decoder_done(void *dec)
{
    return ((pd_cohere_decoder *)dec)->done;
}

static void decoder_free(void *dec)
{
    pd_cohere_decoder_free(dec);
    free(dec);
}

static pd_result parse_response(const pd_chat_request *req, const char *body, size_t len,
                                pd_chat_response *out)
{
    (void)req;
    return pd_cohere_parse_chat_response(body, len, out);
}

const pd_provider_ops pd_provider_cohere = {
    .kind = "cohere",
    .native = NULL,
    .chat_request = chat_request,
    .decoder_new = decoder_new,
    .decode = decode,
    .decoder_done = decoder_done,
    .decoder_free = decoder_free,
    .parse_response = parse_response,
    .parse_error = pd_cohere_parse_error_body,
    .embed_request = embed_request,
    .parse_embed_response = pd_cohere_parse_embed_response,
};
