/* dialect_openai.c: writing canonical answers for an OpenAI client (pd_dialect). */
#include <stdlib.h>
#include <time.h>

#include "providers/provider.h"

typedef struct encoder {
    pd_openai_encoder enc;
    int include_usage; /* the client asked for the usage chunk */
} encoder;

static void *encoder_new(const pd_chat_request *req, const char *id, const char *model)
{
    encoder *e = pd_xcalloc(1, sizeof(*e));
    pd_openai_encoder_init(&e->enc, id, model, (int64_t)time(NULL));
    e->include_usage = req->include_usage == PD_TRI_TRUE;
    return e;
}

static pd_result encode(void *enc, const pd_chat_event *ev, pd_buf *out)
{
    encoder *e = enc;
    if (ev->kind == PD_EVENT_USAGE && !e->include_usage)
        return PD_OK;
    return pd_openai_encode_event(&e->enc, ev, out);
}

static pd_result encode_end(void *enc, pd_buf *out)
{
    (void)enc;
    return pd_openai_encode_done(out);
}

static pd_result encode_error(void *enc, const pd_api_error *err, pd_buf *out)
{
    (void)enc;
    pd_buf body;
    pd_buf_init(&body, 0);
    pd_result rc = pd_openai_error_body(err, &body);
    if (!rc)
        rc = pd_sse_write(out, NULL, body.data, body.len);
    pd_buf_free(&body);
    return rc;
}

static void encoder_free(void *enc)
{
    encoder *e = enc;
    if (!e)
        return;
    pd_openai_encoder_free(&e->enc);
    free(e);
}

const pd_dialect pd_dialect_openai = {
    .name = "openai",
    .parse_request = pd_openai_parse_chat_request,
    .error_body = pd_openai_error_body,
    .write_response = pd_openai_write_chat_response,
    .encoder_new = encoder_new,
    .encode = encode,
    .encode_end = encode_end,
    .encode_error = encode_error,
    .encoder_free = encoder_free,
};
