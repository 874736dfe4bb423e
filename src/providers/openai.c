/* openai.c: provider kind `openai`: OpenAI and every OpenAI-compatible server (vLLM,
 * llama-server, Ollama's /v1, LiteLLM, ...).
 *
 * For an OpenAI client this is a faithful pass-through: the client's body goes upstream with
 * only "model" replaced (unknown fields included: peers strip them and break features), and each
 * upstream event goes to the client byte for byte after it has been checked to be JSON. Checking
 * matters: a malformed event must end the stream as broken, not be relayed as if it were fine.
 * For other clients (Anthropic) the translation path decodes the upstream into canonical events.
 *
 * Usage is never left unknown on a stream: the upstream is always asked for it
 * (stream_options.include_usage), and the final usage chunk is kept from a client that did not
 * ask for it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/embed.h"
#include "proto/fastev.h"
#include "proto/jsonr.h"
#include "proto/jsonw.h"
#include "providers/provider.h"

/* ---- request ----------------------------------------------------------------------------- */

static int client_wants_usage(const pd_chat_request *req)
{
    return req->include_usage == PD_TRI_TRUE;
}

/* stream_options with include_usage true: the client's object (its other members kept, in
   their order) or a new one. */
static void write_stream_options(pd_jw *w, const pd_jr_val *so)
{
    pd_jr_members it;
    bool done = false;
    pd_jw_open(w, '{');
    if (pd_jr_is_object(so)) {
        pd_jr_members_begin(&it, so);
        while (pd_jr_members_next(&it)) {
            bool is_usage = pd_jr_eq(it.key, "include_usage");
            done |= is_usage;
            pd_jr_write_key_jansson(w, it.key);
            if (is_usage)
                pd_jw_bool(w, true);
            else
                pd_jr_write_jansson(w, it.value);
        }
        pd_jr_members_end(&it);
    }
    if (!done) {
        pd_jw_key(w, "include_usage");
        pd_jw_bool(w, true);
    }
    pd_jw_close(w, '}');
}

static void write_model(pd_jw *w, const char *model)
{
    pd_jw_sep(w);
    pd_jw_raw(w, "\"", 1);
    pd_jr_escape_jansson(w, model, strlen(model));
    pd_jw_raw(w, "\"", 1);
}

/* The object body with "model" replaced and, on streams, stream_options.include_usage set;
   each in place, or added last when missing (model first). */
static void write_body(pd_jw *w, const pd_jr_val *body, const char *model, bool stream)
{
    pd_jr_members it;
    bool model_done = false, so_done = !stream;
    pd_jw_open(w, '{');
    pd_jr_members_begin(&it, body);
    while (pd_jr_members_next(&it)) {
        bool is_model = pd_jr_eq(it.key, "model");
        bool is_so = stream && pd_jr_eq(it.key, "stream_options");
        model_done |= is_model;
        so_done |= is_so;
        pd_jr_write_key_jansson(w, it.key);
        if (is_model)
            write_model(w, model);
        else if (is_so)
            write_stream_options(w, it.value);
        else
            pd_jr_write_jansson(w, it.value);
    }
    pd_jr_members_end(&it);
    if (!model_done) {
        pd_jw_key(w, "model");
        write_model(w, model);
    }
    if (!so_done) {
        pd_jw_key(w, "stream_options");
        write_stream_options(w, NULL);
    }
    pd_jw_close(w, '}');
}

/* The body the upstream gets: the client's own when it spoke OpenAI, else written from the
 * canonical request; always with the upstream's model name and usage asked for on streams.
 * Printed byte for byte as json_dumps(JSON_COMPACT) printed the jansson tree this used to
 * build (proto/jsonr.h: pd_jr_write_jansson), without building it. */
static char *upstream_body(const pd_model_cfg *m, const pd_chat_request *req)
{
    pd_buf text, out;
    pd_jr_doc doc;
    pd_jw w;
    char *body = NULL;
    if (!m->upstream_model) /* (the config always names one) */
        return NULL;
    pd_buf_init(&text, 0);
    pd_buf_init(&out, 0);
    const char *src = req->raw.text;
    size_t len = req->raw.len;
    if (!src && pd_openai_write_chat_request(req, &text) == PD_OK) {
        src = text.data;
        len = text.len;
    }
    if (src && pd_jr_parse(&doc, src, len) == PD_OK) {
        if (pd_jr_is_object(pd_jr_root(&doc))) {
            pd_jw_begin(&w, &out);
            write_body(&w, pd_jr_root(&doc), m->upstream_model, req->stream);
            if (pd_jw_end(&w, 0) == PD_OK)
                body = pd_xstrndup(out.data ? out.data : "", out.len);
        }
        pd_jr_free(&doc);
    }
    pd_buf_free(&text);
    pd_buf_free(&out);
    return body;
}

/* POST base_url + path with the Bearer key; takes text (the body). */
static pd_result post(const pd_provider_cfg *p, const char *path, char *text, int stream,
                      pd_transfer_req *out, pd_api_error *err)
{
    char auth[1024];
    const char *auth_line = NULL;
    if (!text)
        return PD_ERR_NOMEM;
    if (p->api_key && p->api_key[0]) {
        if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->api_key) >= sizeof(auth)) {
            pd_openai_error_set(err, 500, NULL, NULL, NULL, "the api_key of provider %s is too long", p->name);
            free(text);
            return PD_ERR_INVALID;
        }
        auth_line = auth;
    }
    pd_result rc = pd_provider_http(p, path, auth_line, NULL, stream, out);
    if (rc) {
        free(text);
        return rc;
    }
    out->body = text;
    out->body_len = strlen(text);
    return PD_OK;
}

static pd_result chat_request(const pd_provider_cfg *p, const pd_model_cfg *m,
                              const pd_chat_request *req, pd_transfer_req *out, pd_api_error *err)
{
    return post(p, "/chat/completions", upstream_body(m, req), req->stream, out, err);
}

static pd_result embed_request(const pd_provider_cfg *p, const pd_model_cfg *m,
                               const struct pd_embed_request *req, pd_transfer_req *out,
                               pd_api_error *err)
{
    pd_buf w;
    pd_buf_init(&w, 0);
    char *text = NULL;
    if (pd_embed_write_openai_request(req, m->upstream_model, &w) == PD_OK)
        text = pd_xstrndup(w.data ? w.data : "", w.len);
    pd_buf_free(&w);
    return post(p, "/embeddings", text, 0, out, err);
}

/* ---- pass-through path (OpenAI client) --------------------------------------------------- */

static int64_t count_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static void read_usage(json_t *doc, pd_chat_usage *u)
{
    json_t *usage = json_object_get(doc, "usage");
    if (!json_is_object(usage))
        return;
    json_t *in = json_object_get(usage, "prompt_tokens_details");
    json_t *out = json_object_get(usage, "completion_tokens_details");
    u->prompt_tokens = count_of(usage, "prompt_tokens");
    u->completion_tokens = count_of(usage, "completion_tokens");
    u->total_tokens = count_of(usage, "total_tokens");
    u->cached_tokens = count_of(in, "cached_tokens");
    u->cache_write_tokens = count_of(in, "cache_write_tokens");
    u->reasoning_tokens = count_of(out, "reasoning_tokens");
}

/* An error event as the OpenAI SDK expects it: data: {"error":{...}}. */
static pd_result error_event(json_t *doc, const char *data, size_t len, pd_buf *out)
{
    if (json_is_object(json_object_get(doc, "error")))
        return pd_sse_write(out, NULL, data, len);
    pd_api_error e;
    pd_openai_parse_error_body(data, len, 502, &e);
    pd_buf body;
    pd_buf_init(&body, 0);
    pd_result rc = pd_openai_error_body(&e, &body);
    if (!rc)
        rc = pd_sse_write(out, NULL, body.data, body.len);
    pd_buf_free(&body);
    return rc;
}

/* The usage-only chunk that ends an include_usage stream. */
static int is_usage_chunk(json_t *doc)
{
    json_t *choices = json_object_get(doc, "choices");
    return json_is_object(json_object_get(doc, "usage")) && json_is_array(choices) &&
           json_array_size(choices) == 0;
}

/* Finds a top-level-looking "usage": null member and returns its span including one adjacent
 * comma, so it can be cut without re-serialising the chunk (re-serialising would change number
 * formatting). Inside JSON strings quotes are escaped, so the unescaped pattern is a real key. */
static int find_null_usage(const char *d, size_t n, size_t *from, size_t *to)
{
    static const char key[] = "\"usage\"";
    for (const char *p = memmem(d, n, key, 7); p; p = memmem(p + 1, n - (size_t)(p + 1 - d), key, 7)) {
        size_t i = (size_t)(p - d) + 7;
        while (i < n && (d[i] == ' ' || d[i] == '\t'))
            i++;
        if (i >= n || d[i++] != ':')
            continue;
        while (i < n && (d[i] == ' ' || d[i] == '\t'))
            i++;
        if (n - i < 4 || memcmp(d + i, "null", 4) != 0)
            continue;
        size_t a = (size_t)(p - d), b = i + 4;
        while (a > 0 && (d[a - 1] == ' ' || d[a - 1] == '\t'))
            a--;
        if (a > 0 && d[a - 1] == ',') {
            a--;
        } else {
            while (b < n && (d[b] == ' ' || d[b] == '\t'))
                b++;
            if (b < n && d[b] == ',')
                b++;
        }
        *from = a;
        *to = b;
        return 1;
    }
    return 0;
}

/* Relays a chunk; for a client that did not ask for usage, without the "usage": null member
 * that asking for it upstream added (OpenAI's chunks carry none then). null_usage: the chunk
 * has that member. */
static pd_result relay_chunk(const pd_chat_request *req, bool null_usage, const pd_sse_event *ev,
                             pd_buf *out)
{
    size_t a, b;
    if (client_wants_usage(req) || !null_usage || !find_null_usage(ev->data, ev->data_len, &a, &b))
        return pd_sse_write(out, NULL, ev->data, ev->data_len);
    pd_result rc = pd_buf_append(out, "data: ", 6);
    if (!rc)
        rc = pd_buf_append(out, ev->data, a);
    if (!rc)
        rc = pd_buf_append(out, ev->data + b, ev->data_len - b);
    if (!rc)
        rc = pd_buf_append(out, "\n\n", 2);
    return rc;
}

/* The common text chunk, checked without jansson (proto/fastev.h): a hit vouches for what the
 * check below finds out with json_loadb (a JSON object, no "error" member, no usage object, so
 * nothing to read and nothing to keep back), at a few percent of its cost. The memo of the
 * bytes around the last chunk's text is per thread, not per stream: what it says holds for any
 * input, so streams that take turns on a worker only make it miss more often, never wrong. */
static bool text_chunk(const pd_sse_event *ev, bool *null_usage)
{
    static _Thread_local pd_fastev_memo memo;
    char buf[PD_FASTEV_BUF];
    pd_fastev_chunk c;
    if (!pd_fastev_openai_chunk(&memo, ev->data, ev->data_len, buf, sizeof buf, &c))
        return false;
    *null_usage = c.null_usage;
    return true;
}

static pd_result pass_event(const pd_chat_request *req, const pd_sse_event *ev, pd_buf *out,
                            pd_stream_step *step, pd_chat_usage *usage)
{
    *step = PD_STEP_CONTINUE;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        *step = PD_STEP_DONE;
        return pd_sse_write(out, NULL, ev->data, ev->data_len);
    }
    int named_error = ev->event_len == 5 && memcmp(ev->event, "error", 5) == 0;
    bool null_usage;
    if (!named_error && text_chunk(ev, &null_usage))
        return relay_chunk(req, null_usage, ev, out);
    json_t *doc = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!json_is_object(doc) && !named_error) {
        json_decref(doc);
        return PD_ERR_INVALID;
    }
    pd_result rc = PD_OK;
    if (named_error || json_object_get(doc, "error")) {
        *step = PD_STEP_ERROR;
        rc = error_event(doc, ev->data, ev->data_len, out);
    } else {
        read_usage(doc, usage);
        if (!is_usage_chunk(doc) || client_wants_usage(req))
            rc = relay_chunk(req, json_is_null(json_object_get(doc, "usage")), ev, out);
    }
    json_decref(doc);
    return rc;
}

static pd_result pass_response(const char *body, size_t len, pd_buf *out, pd_chat_usage *usage)
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
static void pass_error(long status, const char *body, size_t len, pd_buf *out)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *err = json_object_get(doc, "error");
    int openai_shape = json_is_object(err) && json_is_string(json_object_get(err, "message"));
    json_decref(doc);
    if (openai_shape && pd_buf_append(out, body, len) == PD_OK)
        return;
    pd_api_error e;
    pd_openai_parse_error_body(body, len, (int)status, &e);
    e.status = (int)status;
    pd_buf_reset(out);
    pd_openai_error_body(&e, out);
}

/* ---- translation path (other clients) ---------------------------------------------------- */

typedef struct decoder {
    pd_sse_parser sse;
    pd_openai_decoder dec;
    pd_chat_event_cb cb;
    void *ud;
    pd_result failed;
} decoder;

static void *decoder_new(const pd_chat_request *req)
{
    (void)req;
    decoder *d = pd_xcalloc(1, sizeof(*d));
    pd_sse_init(&d->sse, 0);
    pd_openai_decoder_init(&d->dec);
    return d;
}

static int on_sse(void *ud, const pd_sse_event *ev)
{
    decoder *d = ud;
    pd_result rc = pd_openai_decode_chunk(&d->dec, ev->data, ev->data_len, d->cb, d->ud);
    if (rc != PD_OK)
        d->failed = rc;
    return rc != PD_OK;
}

static pd_result decode(void *dec, const char *bytes, size_t len, pd_chat_event_cb cb, void *ud)
{
    decoder *d = dec;
    d->cb = cb;
    d->ud = ud;
    d->failed = PD_OK;
    pd_result rc = pd_sse_feed(&d->sse, bytes, len, on_sse, d);
    if (rc == PD_ERR_CLOSED)
        return d->failed;
    return rc == PD_ERR_TOO_LARGE ? PD_ERR_INVALID : rc;
}

static int decoder_done(void *dec)
{
    return ((decoder *)dec)->dec.done;
}

static void decoder_free(void *dec)
{
    decoder *d = dec;
    if (!d)
        return;
    pd_sse_free(&d->sse);
    free(d);
}

static void parse_error(long status, const char *body, size_t len, pd_api_error *out)
{
    pd_openai_parse_error_body(body, len, (int)status, out);
    out->status = (int)status;
}

static pd_result parse_response(const pd_chat_request *req, const char *body, size_t len,
                                pd_chat_response *out)
{
    (void)req;
    return pd_openai_parse_chat_response(body, len, out);
}

const pd_provider_ops pd_provider_openai = {
    .kind = "openai",
    .native = &pd_dialect_openai,
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
    .embed_request = embed_request,
    .parse_embed_response = pd_embed_parse_openai_response,
};
