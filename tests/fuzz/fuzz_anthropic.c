/* fuzz_anthropic: arbitrary bytes into the Anthropic codec (proto/anthropic.h).
 *   - pd_anthropic_parse_chat_request: on success the Anthropic request written from it must
 *     parse again and write the same bytes (the writer's output is a fixed point), and the OpenAI
 *     request written from it must be JSON; on failure the error body must be valid JSON.
 *   - the same bytes as an OpenAI client's request written for Anthropic: JSON when accepted.
 *   - as an upstream response: whatever is read writes out as JSON, a fixed point again.
 *   - as an upstream stream, fed whole and in two pieces: every event re-encoded for an
 *     Anthropic client is "event: NAME\ndata: JSON\n\n", and the re-encoded stream decodes
 *     without a malformed event.
 *   - as an error body: read, then written as valid JSON.
 * Any violation aborts. */
#include "proto/anthropic.h"

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
    if (pd_anthropic_parse_chat_request(s, n, &r, &e) != PD_OK) {
        if (e.status != 400 || !e.type || pd_anthropic_error_body(&e, &a) != PD_OK)
            abort();
        must_be_json(a.data, a.len);
        pd_buf_free(&a);
        return;
    }
    if (r.arena.size > 16 * n + 65536) /* the bound canon/chat.h states for a parse */
        abort();
    if (pd_openai_write_chat_request(&r, &b) != PD_OK)
        abort();
    must_be_json(b.data, b.len);
    pd_buf_reset(&b);
    if (pd_anthropic_write_chat_request(&r, NULL, &a, &e) == PD_OK) {
        if (pd_anthropic_parse_chat_request(a.data, a.len, &r2, &e) != PD_OK)
            abort();
        if (pd_anthropic_write_chat_request(&r2, NULL, &b, &e) != PD_OK || a.len != b.len ||
            memcmp(a.data, b.data, a.len) != 0)
            abort();
        pd_chat_request_free(&r2);
    } else if (e.status != 400 || a.len != 0) {
        abort();
    }
    pd_chat_request_free(&r);
    pd_buf_free(&a);
    pd_buf_free(&b);
}

static void openai_request(const char *s, size_t n)
{
    pd_chat_request r;
    pd_api_error e;
    pd_buf a;
    if (pd_openai_parse_chat_request(s, n, &r, &e) != PD_OK)
        return;
    pd_buf_init(&a, 0);
    if (pd_anthropic_write_chat_request(&r, "m", &a, &e) == PD_OK)
        must_be_json(a.data, a.len);
    else if (e.status != 400 || a.len != 0)
        abort();
    pd_chat_request_free(&r);
    pd_buf_free(&a);
}

static void response(const char *s, size_t n)
{
    pd_chat_response r, r2;
    pd_buf a, b;
    if (pd_anthropic_parse_chat_response(s, n, &r) != PD_OK)
        return;
    pd_buf_init(&a, 0);
    pd_buf_init(&b, 0);
    if (pd_anthropic_write_chat_response(&r, &a) != PD_OK)
        abort();
    if (pd_anthropic_parse_chat_response(a.data, a.len, &r2) != PD_OK)
        abort();
    if (pd_anthropic_write_chat_response(&r2, &b) != PD_OK || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        abort();
    pd_buf_reset(&b);
    if (pd_openai_write_chat_response(&r, &b) != PD_OK)
        abort();
    must_be_json(b.data, b.len);
    pd_chat_response_free(&r);
    pd_chat_response_free(&r2);
    pd_buf_free(&a);
    pd_buf_free(&b);
}

typedef struct enc_ctx {
    pd_anthropic_encoder enc;
    pd_buf one, all;
} enc_ctx;

/* Checks that every event in s is "event: NAME\ndata: JSON\n\n". */
static void check_events(const char *s, size_t n)
{
    while (n) {
        const char *data = memmem(s, n, "\ndata: ", 7), *end;
        if (n < 7 || memcmp(s, "event: ", 7) != 0 || !data)
            abort();
        data += 7;
        end = memmem(data, n - (size_t)(data - s), "\n\n", 2);
        if (!end)
            abort();
        must_be_json(data, (size_t)(end - data));
        n -= (size_t)(end + 2 - s);
        s = end + 2;
    }
}

static int on_event(void *ud, const pd_chat_event *ev)
{
    enc_ctx *c = ud;
    pd_buf_reset(&c->one);
    pd_result rc = pd_anthropic_encode_event(&c->enc, ev, &c->one);
    if (rc == PD_ERR_INVALID && ev->kind == PD_EVENT_TOOL_ARGS && c->one.len == 0)
        return 1; /* arguments for a closed block: refused, documented */
    if (rc != PD_OK)
        abort();
    check_events(c->one.data, c->one.len);
    pd_buf_append(&c->all, c->one.data, c->one.len);
    return 0;
}

static int ignore(void *ud, const pd_chat_event *ev)
{
    (void)ud;
    (void)ev;
    return 0;
}

static void stream(const char *s, size_t n, size_t cut)
{
    pd_anthropic_decoder d;
    enc_ctx c;
    pd_anthropic_decoder_init(&d, 4096);
    pd_anthropic_encoder_init(&c.enc, "msg_fuzz", "m");
    pd_buf_init(&c.one, 0);
    pd_buf_init(&c.all, 0);
    pd_result rc = pd_anthropic_decode(&d, s, cut, on_event, &c);
    if (rc == PD_OK)
        rc = pd_anthropic_decode(&d, s + cut, n - cut, on_event, &c);
    if (rc == PD_OK && d.done) {
        pd_buf_reset(&c.one);
        if (pd_anthropic_encode_end(&c.enc, &c.one) != PD_OK)
            abort();
        check_events(c.one.data, c.one.len);
        pd_buf_append(&c.all, c.one.data, c.one.len);
    }
    if (rc != PD_ERR_CLOSED) { /* what we wrote is a well-formed stream */
        pd_anthropic_decoder d2;
        pd_anthropic_decoder_init(&d2, 0);
        if (pd_anthropic_decode(&d2, c.all.data ? c.all.data : "", c.all.len, ignore, NULL) ==
            PD_ERR_INVALID)
            abort();
        pd_anthropic_decoder_free(&d2);
    }
    pd_anthropic_decoder_free(&d);
    pd_anthropic_encoder_free(&c.enc);
    pd_buf_free(&c.one);
    pd_buf_free(&c.all);
}

static void error_body(const char *s, size_t n)
{
    pd_api_error e;
    pd_buf a;
    pd_anthropic_parse_error_body(s, n, 0, &e);
    if (e.status < 400 || !e.type || !e.message[0])
        abort();
    pd_buf_init(&a, 0);
    if (pd_anthropic_error_body(&e, &a) != PD_OK)
        abort();
    must_be_json(a.data, a.len);
    pd_buf_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    request(s, size);
    openai_request(s, size);
    response(s, size);
    stream(s, size, size);
    stream(s, size, size / 2);
    error_body(s, size);
    return 0;
}
