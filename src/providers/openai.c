/* openai.c: provider kind `openai`: OpenAI and every OpenAI-compatible server (vLLM,
 * llama-server, Ollama's /v1, LiteLLM, ...).
 *
 * Same dialect on both sides, so translation is a faithful pass-through: the client's body goes
 * upstream with only "model" replaced (unknown fields included: peers strip them and break
 * features), and each upstream event goes to the client byte for byte after it has been checked
 * to be JSON. Checking matters: a malformed event must end the stream as broken, not be relayed
 * as if it were fine. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "providers/provider.h"

static pd_result chat_request(const pd_provider_cfg *p, const pd_model_cfg *m,
                              const pd_chat_request *req, pd_transfer_req *out, pd_api_error *err)
{
    char auth[1024];
    const char *auth_line = NULL;
    if (p->api_key && p->api_key[0]) {
        if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->api_key) >= sizeof(auth)) {
            pd_openai_error_set(err, 500, NULL, NULL, NULL, "the api_key of provider %s is too long", p->name);
            return PD_ERR_INVALID;
        }
        auth_line = auth;
    }
    json_t *body = json_copy(req->raw); /* shallow: only the top level is copied */
    if (!body || json_object_set_new(body, "model", json_string(m->upstream_model))) {
        json_decref(body);
        return PD_ERR_NOMEM;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return PD_ERR_NOMEM;
    pd_result rc = pd_provider_http(p, "/chat/completions", auth_line, req->stream, out);
    if (rc) {
        free(text);
        return rc;
    }
    out->body = text;
    out->body_len = strlen(text);
    return PD_OK;
}

static int64_t count_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static void read_usage(json_t *doc, pd_usage_seen *u)
{
    json_t *usage = json_object_get(doc, "usage");
    if (!json_is_object(usage))
        return;
    u->prompt = count_of(usage, "prompt_tokens");
    u->completion = count_of(usage, "completion_tokens");
    u->cached = count_of(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
    u->reasoning = count_of(json_object_get(usage, "completion_tokens_details"), "reasoning_tokens");
}

/* An error event as the OpenAI SDK expects it: data: {"error":{...}}. */
static pd_result error_event(json_t *doc, const char *data, size_t len, pd_buf *out)
{
    if (json_is_object(json_object_get(doc, "error")))
        return pd_sse_write(out, NULL, data, len);
    pd_buf body;
    pd_buf_init(&body, 0);
    pd_api_error e;
    pd_openai_error_set(&e, 502, NULL, "upstream_error", NULL, "upstream error: %.*s",
                     (int)(len > 400 ? 400 : len), data);
    pd_result rc = pd_openai_error_body(&e, &body);
    if (!rc)
        rc = pd_sse_write(out, NULL, body.data, body.len);
    pd_buf_free(&body);
    return rc;
}

static pd_result chat_stream_event(const pd_sse_event *ev, pd_buf *out, pd_stream_step *step,
                                   pd_usage_seen *usage)
{
    *step = PD_STEP_CONTINUE;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        *step = PD_STEP_DONE;
        return pd_sse_write(out, NULL, ev->data, ev->data_len);
    }
    json_t *doc = json_loadb(ev->data, ev->data_len, 0, NULL);
    int named_error = ev->event_len == 5 && memcmp(ev->event, "error", 5) == 0;
    if (!json_is_object(doc) && !named_error) {
        json_decref(doc);
        return PD_ERR_INVALID;
    }
    pd_result rc;
    if (named_error || json_object_get(doc, "error")) {
        *step = PD_STEP_ERROR;
        rc = error_event(doc, ev->data, ev->data_len, out);
    } else {
        read_usage(doc, usage);
        rc = pd_sse_write(out, NULL, ev->data, ev->data_len);
    }
    json_decref(doc);
    return rc;
}

static pd_result chat_response(const char *body, size_t len, pd_buf *out, pd_usage_seen *usage)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return PD_ERR_INVALID;
    }
    read_usage(doc, usage);
    json_decref(doc);
    return pd_buf_append(out, body, len);
}

/* OpenAI-shaped error bodies ({"error":{"message":...}}) pass through untouched, so clients see
 * the upstream's own type and code; anything else (vLLM's older {"object":"error",...}, HTML from
 * a proxy, plain text) becomes an OpenAI error carrying the upstream's text as the message. */
static void error_response(long status, const char *body, size_t len, pd_buf *out)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *err = json_object_get(doc, "error");
    if (json_is_object(err) && json_is_string(json_object_get(err, "message"))) {
        json_decref(doc);
        if (pd_buf_append(out, body, len) == PD_OK)
            return;
        doc = NULL;
    }
    const char *msg = json_string_value(json_object_get(doc, "message"));
    if (!msg)
        msg = json_string_value(err); /* {"error":"..."} (Ollama and others) */
    pd_api_error e;
    pd_openai_error_set(&e, (int)status, NULL, NULL, NULL, "%.*s",
                     msg ? 500 : (int)(len > 500 ? 500 : len), msg ? msg : body);
    json_decref(doc);
    pd_buf_reset(out);
    if (pd_openai_error_body(&e, out) != PD_OK)
        pd_buf_append_str(out, "{\"error\":{\"message\":\"upstream error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
}

const pd_provider_ops pd_provider_openai = {
    .kind = "openai",
    .chat_request = chat_request,
    .chat_stream_event = chat_stream_event,
    .chat_response = chat_response,
    .error_response = error_response,
};
