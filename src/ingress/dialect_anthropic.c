/* dialect_anthropic.c: writing canonical answers for an Anthropic client (pd_dialect): errors
 * as {"type":"error","error":{...}}, whole responses as Messages, streams as Messages events
 * (proto/anthropic.h). Usage is always streamed, as Anthropic does: there is no
 * include_usage to honour. */
#include <stdlib.h>

#include "proto/anthropic.h"
#include "providers/provider.h"

static void *encoder_new(const pd_chat_request *req, const char *id, const char *model)
{
    (void)req;
    pd_anthropic_encoder *e = pd_xmalloc(sizeof *e);
    pd_anthropic_encoder_init(e, id, model);
    return e;
}

static pd_result encode(void *enc, const pd_chat_event *ev, pd_buf *out)
{
    return pd_anthropic_encode_event(enc, ev, out);
}

static pd_result encode_end(void *enc, pd_buf *out)
{
    return pd_anthropic_encode_end(enc, out);
}

static pd_result encode_error(void *enc, const pd_api_error *e, pd_buf *out)
{
    return pd_anthropic_encode_error(enc, e, out);
}

static void encoder_free(void *enc)
{
    pd_anthropic_encoder_free(enc);
    free(enc);
}

const pd_dialect pd_dialect_anthropic = {
    .name = "anthropic",
    .parse_request = pd_anthropic_parse_chat_request,
    .error_body = pd_anthropic_error_body,
    .write_response = pd_anthropic_write_chat_response,
    .encoder_new = encoder_new,
    .encode = encode,
    .encode_end = encode_end,
    .encode_error = encode_error,
    .encoder_free = encoder_free,
};
