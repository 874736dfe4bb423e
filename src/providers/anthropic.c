/* anthropic.c: provider kind `anthropic`: the Anthropic Messages API (POST {base_url}/v1/messages,
 * base_url https://api.anthropic.com by default) and servers that speak it.
 *
 * Two paths (providers/provider.h):
 * - Translation (a client of another dialect): the canonical request is written as a Messages
 *   body (proto/anthropic.h says what is mapped, dropped, or refused with a 400), and the
 *   answer is decoded into canonical events / a canonical response.
 * - Pass-through (an Anthropic client, native = pd_dialect_anthropic): the client's own body
 *   goes upstream with only "model" replaced, so thinking signatures, cache_control, server
 *   tools, betas' fields and everything else the canonical model does not carry survive; each
 *   upstream event goes to the client as it came, after it was checked to be JSON (a malformed
 *   event must end the stream as broken). Usage is read on the way for the ledger.
 * Which one is asked for is told by req->raw: the relay leaves it set only when the client
 * speaks this provider's dialect (the same convention as providers/openai.c).
 *
 * Headers: x-api-key (when the provider has a key) and anthropic-version: 2023-06-01. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/anthropic.h"
#include "proto/jsonr.h"
#include "proto/jsonw.h"
#include "providers/provider.h"

/* ---- request ----------------------------------------------------------------------------- */

/* The client's own body with the upstream's model name (pass-through): its members in their
   order (a repeated key once, with its last value) and "model" replaced in place, or added
   last; written by jsonw, as the jansson tree of the body was before (proto/jsonr.h). */
static pd_result raw_body(const pd_chat_request *req, const pd_model_cfg *m, pd_buf *out)
{
    pd_jr_doc doc;
    if (!m->upstream_model) /* (the config always names one) */
        return PD_ERR_NOMEM;
    if (pd_jr_parse(&doc, req->raw.text, req->raw.len) != PD_OK ||
        !pd_jr_is_object(pd_jr_root(&doc))) {
        /* cannot happen (the parser validated the body): fails as json_copy failing did */
        pd_jr_free(&doc);
        return PD_ERR_NOMEM;
    }
    pd_jw w;
    pd_jr_members it;
    bool model = false;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jr_members_begin(&it, pd_jr_root(&doc));
    while (pd_jr_members_next(&it)) {
        bool is_model = pd_jr_eq(it.key, "model");
        model |= is_model;
        pd_jr_write_key(&w, it.key);
        if (is_model)
            pd_jw_str(&w, m->upstream_model);
        else
            pd_jr_write(&w, it.value);
    }
    pd_jr_members_end(&it);
    if (!model) {
        pd_jw_key(&w, "model");
        pd_jw_str(&w, m->upstream_model);
    }
    pd_jw_close(&w, '}');
    pd_jr_free(&doc);
    return pd_jw_end(&w, 0);
}

static pd_result chat_request(const pd_provider_cfg *p, const pd_model_cfg *m,
                              const pd_chat_request *req, pd_transfer_req *out, pd_api_error *err)
{
    char key[1024];
    const char *key_line = NULL;
    if (p->api_key && p->api_key[0]) {
        if ((size_t)snprintf(key, sizeof key, "x-api-key: %s", p->api_key) >= sizeof key) {
            pd_openai_error_set(err, 500, NULL, NULL, NULL, "the api_key of provider %s is too long",
                                p->name);
            return PD_ERR_INVALID;
        }
        key_line = key;
    }
    pd_buf body;
    pd_buf_init(&body, 0);
    pd_result rc = req->raw.text
                       ? raw_body(req, m, &body)
                       : pd_anthropic_write_chat_request(req, m->upstream_model, &body, err);
    if (!rc && (rc = pd_provider_http(p, "/v1/messages", key_line,
                                      "anthropic-version: " PD_ANTHROPIC_VERSION, req->stream,
                                      out)))
        pd_openai_error_set(err, 500, NULL, NULL, NULL, "cannot build the upstream request (%s)",
                            pd_result_str(rc));
    else if (rc == PD_ERR_NOMEM)
        pd_openai_error_set(err, 500, NULL, NULL, NULL, "out of memory");
    if (rc) {
        pd_buf_free(&body);
        return rc;
    }
    out->body = body.data ? body.data : pd_xstrdup("");
    out->body_len = body.len;
    return PD_OK;
}

/* ---- translation path -------------------------------------------------------------------- */

/* A JSON response format was asked for as a forced tool (proto/anthropic.h): the decoders
   derive its name from the same request the writer did. */
static void *decoder_new(const pd_chat_request *req)
{
    pd_anthropic_decoder *d = pd_xmalloc(sizeof *d);
    char json_tool[PD_ANTHROPIC_TOOL_NAME_MAX + 1];
    pd_anthropic_decoder_init(d, 0);
    if (pd_anthropic_json_tool(req, json_tool))
        pd_anthropic_decoder_set_json_tool(d, json_tool);
    return d;
}

static pd_result parse_response(const pd_chat_request *req, const char *body, size_t len,
                                pd_chat_response *out)
{
    char json_tool[PD_ANTHROPIC_TOOL_NAME_MAX + 1];
    bool json = pd_anthropic_json_tool(req, json_tool);
    return pd_anthropic_parse_json_response(body, len, json ? json_tool : NULL, out);
}

static pd_result decode(void *dec, const char *bytes, size_t len, pd_chat_event_cb cb, void *ud)
{
    return pd_anthropic_decode(dec, bytes, len, cb, ud);
}

static int decoder_done(void *dec)
{
    return ((pd_anthropic_decoder *)dec)->done;
}

static void decoder_free(void *dec)
{
    pd_anthropic_decoder_free(dec);
    free(dec);
}

static void parse_error(long status, const char *body, size_t len, pd_api_error *out)
{
    pd_anthropic_parse_error_body(body, len, (int)status, out);
    if (status >= 400)
        out->status = (int)status;
}

/* ---- pass-through path (Anthropic client) ------------------------------------------------ */

static int64_t count_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

static int64_t max0(int64_t v)
{
    return v > 0 ? v : 0;
}

/* Anthropic counts into canonical usage (the prompt includes the cache, protocols.md 6.9).
   Counts are totals so far (message_start, then message_delta): assigned, never added; the
   ones a usage object leaves out keep what was seen before. */
static void read_usage(const json_t *u, pd_chat_usage *seen)
{
    if (!json_is_object(u))
        return;
    int64_t in = count_of(u, "input_tokens"), cw = count_of(u, "cache_creation_input_tokens");
    int64_t cr = count_of(u, "cache_read_input_tokens"), out = count_of(u, "output_tokens");
    int64_t thinking = count_of(json_object_get(u, "output_tokens_details"), "thinking_tokens");
    if (in < 0 && seen->prompt_tokens >= 0) /* the uncached part seen before */
        in = max0(seen->prompt_tokens - max0(seen->cached_tokens) -
                  max0(seen->cache_write_tokens));
    if (cw >= 0)
        seen->cache_write_tokens = cw;
    if (cr >= 0)
        seen->cached_tokens = cr;
    if (in >= 0)
        seen->prompt_tokens = in + max0(seen->cache_write_tokens) + max0(seen->cached_tokens);
    if (out >= 0)
        seen->completion_tokens = out;
    if (thinking >= 0)
        seen->reasoning_tokens = thinking;
}

/* An event for the client that reports an upstream error whose body is not Anthropic's. */
static pd_result error_event(const char *data, size_t len, pd_buf *out)
{
    pd_api_error e;
    pd_anthropic_parse_error_body(data, len, 0, &e);
    pd_buf body;
    pd_buf_init(&body, 0);
    pd_result rc = pd_anthropic_error_body(&e, &body);
    if (!rc)
        rc = pd_sse_write(out, "error", body.data, body.len);
    pd_buf_free(&body);
    return rc;
}

static int anthropic_error_shape(const json_t *doc)
{
    const json_t *e = json_object_get(doc, "error");
    const json_t *type = json_object_get(doc, "type");
    return json_is_string(type) && strcmp(json_string_value(type), "error") == 0 &&
           json_is_object(e) && json_is_string(json_object_get(e, "type")) &&
           json_is_string(json_object_get(e, "message"));
}

static pd_result pass_event(const pd_chat_request *req, const pd_sse_event *ev, pd_buf *out,
                            pd_stream_step *step, pd_chat_usage *usage)
{
    (void)req;
    *step = PD_STEP_CONTINUE;
    char name[64] = "";
    if (ev->event_len && ev->event_len < sizeof name)
        memcpy(name, ev->event, ev->event_len);
    json_t *doc = json_loadb(ev->data, ev->data_len, JSON_ALLOW_NUL, NULL);
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (!type)
        type = name;
    pd_result rc;
    if (strcmp(type, "error") == 0 || strcmp(name, "error") == 0) {
        *step = PD_STEP_ERROR;
        rc = anthropic_error_shape(doc) ? pd_sse_write(out, "error", ev->data, ev->data_len)
                                        : error_event(ev->data, ev->data_len, out);
    } else if (!json_is_object(doc)) {
        rc = PD_ERR_INVALID;
    } else {
        if (strcmp(type, "message_start") == 0)
            read_usage(json_object_get(json_object_get(doc, "message"), "usage"), usage);
        else if (strcmp(type, "message_delta") == 0)
            read_usage(json_object_get(doc, "usage"), usage);
        else if (strcmp(type, "message_stop") == 0)
            *step = PD_STEP_DONE;
        rc = pd_sse_write(out, name[0] ? name : type, ev->data, ev->data_len);
    }
    json_decref(doc);
    return rc;
}

static pd_result pass_response(const char *body, size_t len, pd_buf *out, pd_chat_usage *usage)
{
    json_t *doc = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return PD_ERR_INVALID;
    }
    read_usage(json_object_get(doc, "usage"), usage);
    json_decref(doc);
    return pd_buf_append(out, body, len);
}

/* Anthropic-shaped error bodies pass through untouched (the client sees the upstream's own type
   and message); anything else (HTML from a proxy, plain text) becomes one. */
static void pass_error(long status, const char *body, size_t len, pd_buf *out)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    int ok = anthropic_error_shape(doc);
    json_decref(doc);
    if (ok && pd_buf_append(out, body, len) == PD_OK)
        return;
    pd_api_error e;
    parse_error(status, body, len, &e);
    pd_buf_reset(out);
    pd_anthropic_error_body(&e, out);
}

const pd_provider_ops pd_provider_anthropic = {
    .kind = "anthropic",
    .native = &pd_dialect_anthropic,
    .chat_request = chat_request,
    .decoder_new = decoder_new,
    .decode = decode,
    .decoder_done = decoder_done,
    .decoder_free = decoder_free,
    .parse_response = parse_response,
    .parse_error = parse_error,
    .pass_event = pass_event,
    .pass_response = pass_response,
    .pass_error = pass_error,
};
