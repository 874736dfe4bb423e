/* fuzz_request: arbitrary bytes into the OpenAI codec.
 *   - pd_openai_parse_chat_request: on success the written request must parse again and write
 *     the same bytes (the writer's output is a fixed point); on failure the error body must be
 *     valid JSON.
 *   - the same bytes as an upstream response, error body and stream chunk: whatever is read
 *     must write out as valid JSON (responses also as a fixed point).
 * Any violation aborts. */
#include "proto/openai.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void must_be_json(const char *s, size_t n)
{
    json_t *j = json_loadb(s, n, JSON_ALLOW_NUL, NULL);
    if (!j)
        abort();
    json_decref(j);
}

static void request(const char *s, size_t n)
{
    pd_chat_request r, r2;
    pd_api_error e;
    pd_buf a, b;
    pd_buf_init(&a, 0);
    pd_buf_init(&b, 0);
    if (pd_openai_parse_chat_request(s, n, &r, &e) != PD_OK) {
        if (e.status != 400 || !e.type || pd_openai_error_body(&e, &a) != PD_OK)
            abort();
        must_be_json(a.data, a.len);
        pd_buf_free(&a);
        return;
    }
    if (r.arena.size > 16 * n + 65536) /* the bound canon/chat.h states for a parse */
        abort();
    if (pd_openai_write_chat_request(&r, &a) != PD_OK)
        abort();
    if (pd_openai_parse_chat_request(a.data, a.len, &r2, &e) != PD_OK)
        abort();
    if (pd_openai_write_chat_request(&r2, &b) != PD_OK || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        abort();
    pd_chat_request_free(&r);
    pd_chat_request_free(&r2);
    pd_buf_free(&a);
    pd_buf_free(&b);
}

static void response(const char *s, size_t n)
{
    pd_chat_response r, r2;
    pd_buf a, b;
    if (pd_openai_parse_chat_response(s, n, &r) != PD_OK)
        return;
    pd_buf_init(&a, 0);
    pd_buf_init(&b, 0);
    if (pd_openai_write_chat_response(&r, &a) != PD_OK)
        abort();
    if (pd_openai_parse_chat_response(a.data, a.len, &r2) != PD_OK)
        abort();
    if (pd_openai_write_chat_response(&r2, &b) != PD_OK || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        abort();
    pd_chat_response_free(&r);
    pd_chat_response_free(&r2);
    pd_buf_free(&a);
    pd_buf_free(&b);
}

typedef struct enc_ctx {
    pd_openai_encoder enc;
    pd_buf out;
} enc_ctx;

static int on_event(void *ud, const pd_chat_event *ev)
{
    enc_ctx *c = ud;
    pd_buf_reset(&c->out);
    if (pd_openai_encode_event(&c->enc, ev, &c->out) != PD_OK)
        abort();
    /* "data: " + JSON + "\n\n" */
    if (c->out.len < 8 || memcmp(c->out.data, "data: ", 6) != 0)
        abort();
    must_be_json(c->out.data + 6, c->out.len - 8);
    return 0;
}

static void chunk(const char *s, size_t n)
{
    pd_openai_decoder d;
    enc_ctx c;
    pd_openai_decoder_init(&d);
    pd_openai_encoder_init(&c.enc, "chatcmpl-fuzz", "m", 1);
    pd_buf_init(&c.out, 0);
    pd_openai_decode_chunk(&d, s, n, on_event, &c);
    pd_openai_decode_chunk(&d, s, n, on_event, &c); /* twice: exercises the tool routing state */
    pd_openai_encoder_free(&c.enc);
    pd_buf_free(&c.out);
}

static void error_body(const char *s, size_t n)
{
    pd_api_error e;
    pd_buf a;
    pd_openai_parse_error_body(s, n, 0, &e);
    if (e.status < 400 || !e.type || !e.message[0])
        abort();
    pd_buf_init(&a, 0);
    if (pd_openai_error_body(&e, &a) != PD_OK)
        abort();
    must_be_json(a.data, a.len);
    pd_buf_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    request(s, size);
    response(s, size);
    chunk(s, size);
    error_body(s, size);
    return 0;
}
