/* cohere.c: see cohere.h. Layout: small helpers; request checks (everything that can fail with
 * a 400 is found before a byte is written); request writing; responses; errors; streams;
 * embeddings. */
#include "proto/cohere.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jsonw.h"

/* ==== helpers =========================================================================== */

static pd_result bad(pd_api_error *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every translation refusal: 400 invalid_request_error naming the field. */
static pd_result bad(pd_api_error *err, const char *param, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pd_openai_error_set(err, 400, "invalid_request_error", "unsupported_value", param, "%s", msg);
    return PD_ERR_INVALID;
}

static char *dup_json_str(const json_t *s)
{
    return pd_xstrndup(json_string_value(s), json_string_length(s));
}

/* The member as a new string when it is a non-empty string, else NULL. */
static char *opt_text(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) ? dup_json_str(v) : NULL;
}

static bool str_is(const json_t *s, const char *lit)
{
    return json_is_string(s) && strcmp(json_string_value(s), lit) == 0;
}

/* A non-negative integer member, else PD_CHAT_COUNT_UNKNOWN. */
static int64_t count(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e18)
        return (int64_t)json_real_value(v);
    return PD_CHAT_COUNT_UNKNOWN;
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Appends s (n bytes) to a malloc'ed string (*dst may be NULL). */
static void append_str(char **dst, const char *s, size_t n)
{
    size_t old = *dst ? strlen(*dst) : 0;
    char *p = pd_xrealloc(*dst, old + n + 1);
    memcpy(p + old, s, n);
    p[old + n] = '\0';
    *dst = p;
}

/* ==== request checks ==================================================================== */

static bool is_text(pd_chat_part_kind k)
{
    return k == PD_PART_TEXT || k == PD_PART_REFUSAL;
}

/* Whether tool i is sent, given the tool_choice (named: only it; allowed_tools: only those). */
static bool tool_sent(const pd_chat_request *r, size_t i)
{
    const pd_chat_tool_choice *c = &r->tool_choice;
    const char *name = r->tools[i].name ? r->tools[i].name : "";
    if (c->kind == PD_TOOL_CHOICE_NAMED)
        return c->name && strcmp(c->name, name) == 0;
    if (!c->allowed)
        return true;
    for (size_t k = 0; k < c->n_allowed; k++)
        if (c->allowed[k] && strcmp(c->allowed[k], name) == 0)
            return true;
    return false;
}

static size_t tools_sent(const pd_chat_request *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_tools; i++)
        n += tool_sent(r, i);
    return n;
}

static pd_result check_message(const pd_chat_message *m, size_t i, pd_api_error *err)
{
    char p[64];
    bool text_only = m->role != PD_ROLE_USER;
    for (size_t k = 0; k < m->n_parts; k++) {
        pd_chat_part_kind kind = m->parts[k].kind;
        if (is_text(kind) || (kind == PD_PART_IMAGE && !text_only))
            continue;
        snprintf(p, sizeof p, "messages[%zu].content[%zu]", i, k);
        if (kind == PD_PART_IMAGE)
            return bad(err, p, "Cohere accepts images only in user messages.");
        return bad(err, p, "Cohere does not accept %s content parts.",
                   kind == PD_PART_AUDIO ? "audio" : "file");
    }
    for (size_t k = 0; k < m->n_tool_calls; k++) {
        if (m->tool_calls[k].kind == PD_TOOL_CUSTOM) {
            snprintf(p, sizeof p, "messages[%zu].tool_calls[%zu]", i, k);
            return bad(err, p, "Cohere supports function tools only, not custom tools.");
        }
    }
    return PD_OK;
}

static pd_result check_request(const pd_chat_request *r, pd_api_error *err)
{
    if (r->sampling.has_n && r->sampling.n > 1)
        return bad(err, "n", "Cohere returns one choice per request: 'n' must be 1.");
    for (size_t i = 0; i < r->n_messages; i++) {
        pd_result rc = check_message(&r->messages[i], i, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < r->n_tools; i++) {
        char p[32];
        snprintf(p, sizeof p, "tools[%zu]", i);
        if (r->tools[i].kind == PD_TOOL_CUSTOM && tool_sent(r, i))
            return bad(err, p, "Cohere supports function tools only, not custom tools.");
    }
    if (r->tool_choice.kind == PD_TOOL_CHOICE_NAMED && !tools_sent(r))
        return bad(err, "tool_choice", "tool_choice names '%s', which is not among the tools.",
                   r->tool_choice.name ? r->tool_choice.name : "");
    return PD_OK;
}

/* ==== request writing =================================================================== */

static size_t text_parts(const pd_chat_message *m)
{
    size_t n = 0;
    for (size_t k = 0; k < m->n_parts; k++)
        n += is_text(m->parts[k].kind);
    return n;
}

static void write_text_item(pd_jw *w, const char *text)
{
    pd_jw_open(w, '{');
    pd_jw_kv(w, "type", "text");
    pd_jw_kv(w, "text", text ? text : "");
    pd_jw_close(w, '}');
}

static void write_image_item(pd_jw *w, const pd_chat_part *p)
{
    pd_jw_open(w, '{');
    pd_jw_kv(w, "type", "image_url");
    pd_jw_key(w, "image_url");
    pd_jw_open(w, '{');
    pd_jw_key(w, "url");
    if (p->url) {
        pd_jw_str(w, p->url);
    } else { /* inline: a data: URI again */
        const char *mt = p->media_type ? p->media_type : "application/octet-stream";
        const char *data = p->data ? p->data : "";
        pd_jw_sep(w);
        pd_jw_raw(w, "\"data:", 6);
        pd_jw_escape(w, mt, strlen(mt));
        pd_jw_raw(w, ";base64,", 8);
        pd_jw_escape(w, data, strlen(data));
        pd_jw_raw(w, "\"", 1);
    }
    pd_jw_kv(w, "detail", p->detail);
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

/* "content": a string when the client wrote one (or one lone text part), else an array of
   text (and, for user turns, image) items. */
static void write_content(pd_jw *w, const pd_chat_message *m)
{
    size_t texts = text_parts(m);
    pd_jw_key(w, "content");
    if (m->form != PD_CONTENT_ARRAY && texts == m->n_parts && texts <= 1) {
        pd_jw_str(w, texts ? m->parts[0].text : "");
        return;
    }
    pd_jw_open(w, '[');
    for (size_t k = 0; k < m->n_parts; k++) {
        if (is_text(m->parts[k].kind))
            write_text_item(w, m->parts[k].text);
        else if (m->parts[k].kind == PD_PART_IMAGE)
            write_image_item(w, &m->parts[k]);
    }
    pd_jw_close(w, ']');
}

static void write_tool_call(pd_jw *w, const pd_chat_tool_call *tc)
{
    const char *args = tc->arguments && tc->arguments[0] ? tc->arguments : "{}";
    pd_jw_open(w, '{');
    pd_jw_kv(w, "id", tc->id);
    pd_jw_kv(w, "type", "function");
    pd_jw_key(w, "function");
    pd_jw_open(w, '{');
    pd_jw_kv(w, "name", tc->name ? tc->name : "");
    pd_jw_kv(w, "arguments", args);
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

/* True when the message has text worth sending (tool-call turns often carry "" or null). */
static bool has_text(const pd_chat_message *m)
{
    for (size_t k = 0; k < m->n_parts; k++)
        if (is_text(m->parts[k].kind) && m->parts[k].text && m->parts[k].text[0])
            return true;
    return false;
}

static void write_assistant(pd_jw *w, const pd_chat_message *m)
{
    if (m->n_tool_calls) {
        if (m->reasoning && m->reasoning[0])
            pd_jw_kv(w, "tool_plan", m->reasoning);
        pd_jw_key(w, "tool_calls");
        pd_jw_open(w, '[');
        for (size_t k = 0; k < m->n_tool_calls; k++)
            write_tool_call(w, &m->tool_calls[k]);
        pd_jw_close(w, ']');
        if (has_text(m))
            write_content(w, m);
    } else {
        write_content(w, m);
    }
}

static void write_message(pd_jw *w, const pd_chat_message *m)
{
    pd_jw_open(w, '{');
    switch (m->role) {
    case PD_ROLE_SYSTEM:
    case PD_ROLE_DEVELOPER:
        pd_jw_kv(w, "role", "system");
        write_content(w, m);
        break;
    case PD_ROLE_USER:
        pd_jw_kv(w, "role", "user");
        write_content(w, m);
        break;
    case PD_ROLE_ASSISTANT:
        pd_jw_kv(w, "role", "assistant");
        write_assistant(w, m);
        break;
    case PD_ROLE_TOOL:
        pd_jw_kv(w, "role", "tool");
        pd_jw_kv(w, "tool_call_id", m->tool_call_id ? m->tool_call_id : "");
        write_content(w, m);
        break;
    }
    pd_jw_close(w, '}');
}

static void write_tools(pd_jw *w, const pd_chat_request *r)
{
    size_t sent = tools_sent(r), strict = 0;
    if (!sent)
        return;
    pd_jw_key(w, "tools");
    pd_jw_open(w, '[');
    for (size_t i = 0; i < r->n_tools; i++) {
        const pd_chat_tool *t = &r->tools[i];
        if (!tool_sent(r, i))
            continue;
        strict += t->strict == PD_TRI_TRUE;
        pd_jw_open(w, '{');
        pd_jw_kv(w, "type", "function");
        pd_jw_key(w, "function");
        pd_jw_open(w, '{');
        pd_jw_kv(w, "name", t->name ? t->name : "");
        pd_jw_kv(w, "description", t->description);
        if (t->parameters.text) {
            pd_jw_key(w, "parameters");
            pd_jw_text(w, &t->parameters);
        }
        pd_jw_close(w, '}');
        pd_jw_close(w, '}');
    }
    pd_jw_close(w, ']');
    if (strict == sent) {
        pd_jw_key(w, "strict_tools");
        pd_jw_bool(w, true);
    }
    switch (r->tool_choice.kind) {
    case PD_TOOL_CHOICE_NONE: pd_jw_kv(w, "tool_choice", "NONE"); break;
    case PD_TOOL_CHOICE_REQUIRED:
    case PD_TOOL_CHOICE_NAMED: pd_jw_kv(w, "tool_choice", "REQUIRED"); break;
    default: break;
    }
}

static void write_response_format(pd_jw *w, const pd_chat_response_format *f)
{
    if (f->kind == PD_FORMAT_UNSET)
        return;
    pd_jw_key(w, "response_format");
    pd_jw_open(w, '{');
    pd_jw_kv(w, "type", f->kind == PD_FORMAT_TEXT ? "text" : "json_object");
    if (f->kind != PD_FORMAT_TEXT && f->schema.text) {
        pd_jw_key(w, "json_schema");
        pd_jw_text(w, &f->schema);
    }
    pd_jw_close(w, '}');
}

static void write_sampling(pd_jw *w, const pd_chat_sampling *s)
{
    pd_jw_kint(w, "max_tokens", s->has_max_tokens, s->max_tokens);
    pd_jw_kreal(w, "temperature", s->has_temperature, s->temperature);
    pd_jw_kreal(w, "p", s->has_top_p, clamp(s->top_p, 0.01, 0.99));
    pd_jw_kint(w, "k", s->has_top_k, s->top_k < 0 ? 0 : s->top_k > 500 ? 500 : s->top_k);
    if (s->n_stop) {
        pd_jw_key(w, "stop_sequences");
        pd_jw_open(w, '[');
        for (size_t i = 0; i < s->n_stop; i++)
            pd_jw_str(w, s->stop[i] ? s->stop[i] : "");
        pd_jw_close(w, ']');
    }
    pd_jw_kint(w, "seed", s->has_seed, s->seed);
    pd_jw_kreal(w, "frequency_penalty", s->has_frequency_penalty,
                clamp(s->frequency_penalty, 0, 1));
    pd_jw_kreal(w, "presence_penalty", s->has_presence_penalty, clamp(s->presence_penalty, 0, 1));
    if (s->logprobs == PD_TRI_TRUE) {
        pd_jw_key(w, "logprobs");
        pd_jw_bool(w, true);
    }
}

pd_result pd_cohere_write_chat_request(const pd_chat_request *req, const char *model, pd_buf *out,
                                       pd_api_error *err)
{
    memset(err, 0, sizeof *err);
    pd_result rc = check_request(req, err);
    if (rc)
        return rc;
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_kv(&w, "model", model ? model : req->model ? req->model : "");
    pd_jw_key(&w, "messages");
    pd_jw_open(&w, '[');
    for (size_t i = 0; i < req->n_messages; i++)
        write_message(&w, &req->messages[i]);
    pd_jw_close(&w, ']');
    write_tools(&w, req);
    write_response_format(&w, &req->response_format);
    write_sampling(&w, &req->sampling);
    pd_jw_key(&w, "stream");
    pd_jw_bool(&w, req->stream);
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ==== responses ========================================================================= */

static const struct {
    const char *name;
    pd_chat_finish finish;
} finishes[] = {
    {"COMPLETE", PD_FINISH_STOP},
    {"STOP_SEQUENCE", PD_FINISH_STOP},
    {"MAX_TOKENS", PD_FINISH_LENGTH},
    {"TOOL_CALL", PD_FINISH_TOOL_CALLS},
    {"ERROR", PD_FINISH_ERROR},
    {"TIMEOUT", PD_FINISH_ERROR},
    {"ERROR_TOXIC", PD_FINISH_CONTENT_FILTER}, /* v1 spelling, still seen from old models */
    {"ERROR_LIMIT", PD_FINISH_LENGTH},
    {"USER_CANCEL", PD_FINISH_ERROR},
};

pd_chat_finish pd_cohere_finish(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof finishes / sizeof *finishes; i++)
        if (strlen(finishes[i].name) == n && memcmp(finishes[i].name, s, n) == 0)
            return finishes[i].finish;
    return PD_FINISH_UNKNOWN;
}

static pd_chat_finish finish_of(const json_t *v)
{
    if (!json_is_string(v))
        return PD_FINISH_NONE;
    return pd_cohere_finish(json_string_value(v), json_string_length(v));
}

/* usage (message-end delta.usage or the response's usage) -> canonical; see cohere.h. */
static void read_usage(const json_t *u, pd_chat_usage *out)
{
    pd_chat_usage_init(out);
    const json_t *tokens = json_object_get(u, "tokens"),
                 *billed = json_object_get(u, "billed_units");
    const json_t *src = json_is_object(tokens) ? tokens : billed;
    out->prompt_tokens = count(src, "input_tokens");
    out->completion_tokens = count(src, "output_tokens");
    out->cached_tokens = count(u, "cached_tokens");
}

/* Tool-call arguments: a string as is, an object or array serialised, else "". */
static char *arguments_of(const json_t *args)
{
    if (json_is_string(args))
        return dup_json_str(args);
    if (json_is_object(args) || json_is_array(args))
        return pd_jw_dump(args);
    return pd_xstrdup("");
}

static void read_tool_calls(const json_t *tcs, pd_chat_message *m)
{
    if (!json_is_array(tcs) || json_array_size(tcs) == 0)
        return;
    m->tool_calls = pd_xcalloc(json_array_size(tcs), sizeof *m->tool_calls);
    size_t i;
    const json_t *tc;
    json_array_foreach(tcs, i, tc)
    {
        if (!json_is_object(tc))
            continue;
        const json_t *f = json_object_get(tc, "function");
        pd_chat_tool_call *dst = &m->tool_calls[m->n_tool_calls++];
        dst->kind = PD_TOOL_FUNCTION;
        dst->id = opt_text(tc, "id");
        dst->name = opt_text(f, "name");
        if (!dst->name)
            dst->name = pd_xstrdup("");
        dst->arguments = arguments_of(json_object_get(f, "arguments"));
    }
}

static void read_content(const json_t *content, pd_chat_message *m)
{
    if (json_is_string(content)) { /* not what v2 sends, but unambiguous */
        m->parts = pd_xcalloc(1, sizeof *m->parts);
        m->parts[0].text = dup_json_str(content);
        m->n_parts = 1;
        return;
    }
    if (!json_is_array(content))
        return;
    m->parts = pd_xcalloc(json_array_size(content) + 1, sizeof *m->parts);
    size_t i;
    const json_t *c;
    json_array_foreach(content, i, c)
    {
        const json_t *text = json_object_get(c, "text"), *thinking = json_object_get(c, "thinking");
        if (str_is(json_object_get(c, "type"), "thinking") && json_is_string(thinking)) {
            append_str(&m->reasoning, json_string_value(thinking), json_string_length(thinking));
        } else if (json_is_string(text)) {
            m->parts[m->n_parts].kind = PD_PART_TEXT;
            m->parts[m->n_parts++].text = dup_json_str(text);
        }
    }
}

static void read_message(const json_t *jm, pd_chat_message *m)
{
    const json_t *plan = json_object_get(jm, "tool_plan");
    m->role = PD_ROLE_ASSISTANT;
    read_content(json_object_get(jm, "content"), m);
    if (json_is_string(plan) && json_string_length(plan))
        append_str(&m->reasoning, json_string_value(plan), json_string_length(plan));
    read_tool_calls(json_object_get(jm, "tool_calls"), m);
}

pd_result pd_cohere_parse_chat_response(const char *body, size_t len, pd_chat_response *out)
{
    pd_chat_response_init(out);
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *msg = json_object_get(root, "message");
    if (!json_is_object(root) || !json_is_object(msg)) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    out->id = opt_text(root, "id");
    out->choices = pd_xcalloc(1, sizeof *out->choices);
    out->n_choices = 1;
    pd_chat_choice *c = &out->choices[0];
    read_message(msg, &c->message);
    c->finish = finish_of(json_object_get(root, "finish_reason"));
    if (c->message.n_tool_calls && (c->finish == PD_FINISH_STOP || c->finish == PD_FINISH_NONE))
        c->finish = PD_FINISH_TOOL_CALLS;
    const json_t *lp = json_object_get(root, "logprobs");
    if (lp && !json_is_null(lp))
        c->logprobs = json_incref((json_t *)lp);
    read_usage(json_object_get(root, "usage"), &out->usage);
    json_decref(root);
    return PD_OK;
}

/* ==== errors ============================================================================ */

void pd_cohere_parse_error_body(long status, const char *body, size_t len, pd_api_error *out)
{
    int st = status >= 400 && status <= 599 ? (int)status : 500;
    pd_openai_parse_error_body(body ? body : "", body ? len : 0, st, out);
    out->status = st;
    if (st == 498)
        out->type = "authentication_error";
}

/* ==== streams =========================================================================== */

void pd_cohere_decoder_init(pd_cohere_decoder *d)
{
    memset(d, 0, sizeof *d);
    pd_sse_init(&d->sse, 0);
}

void pd_cohere_decoder_free(pd_cohere_decoder *d)
{
    if (!d)
        return;
    pd_sse_free(&d->sse);
}

static pd_result emit(pd_cohere_decoder *d, pd_chat_event *ev)
{
    ev->id = d->id[0] ? d->id : NULL;
    return d->cb(d->ud, ev) ? PD_ERR_CLOSED : PD_OK;
}

static pd_result emit_text(pd_cohere_decoder *d, pd_chat_event_kind kind, const json_t *s,
                           uint32_t tool_index)
{
    if (!json_is_string(s) || json_string_length(s) == 0)
        return PD_OK;
    pd_chat_event ev;
    pd_chat_event_init(&ev, kind);
    ev.text = json_string_value(s);
    ev.text_len = json_string_length(s);
    ev.tool_index = tool_index;
    return emit(d, &ev);
}

static pd_result ensure_role(pd_cohere_decoder *d)
{
    if (d->started)
        return PD_OK;
    d->started = true;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_ROLE);
    ev.role = PD_ROLE_ASSISTANT;
    return emit(d, &ev);
}

static pd_result emit_error(pd_cohere_decoder *d, int status, const char *type, const char *msg,
                            size_t len)
{
    d->failed = true;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_ERROR);
    ev.error_status = status;
    ev.error_type = type;
    ev.text = msg;
    ev.text_len = len;
    return emit(d, &ev);
}

/* delta.message of an event payload. */
static const json_t *delta_message(const json_t *root)
{
    return json_object_get(json_object_get(root, "delta"), "message");
}

static pd_result on_message_start(pd_cohere_decoder *d, const json_t *root)
{
    const json_t *id = json_object_get(root, "id");
    if (!d->started && json_is_string(id) && json_string_length(id) < sizeof d->id)
        memcpy(d->id, json_string_value(id), json_string_length(id) + 1);
    return ensure_role(d);
}

static pd_result on_content(pd_cohere_decoder *d, const json_t *root)
{
    const json_t *c = json_object_get(delta_message(root), "content");
    pd_result rc = emit_text(d, PD_EVENT_REASONING, json_object_get(c, "thinking"), 0);
    return rc ? rc : emit_text(d, PD_EVENT_TEXT, json_object_get(c, "text"), 0);
}

/* The canonical index of the tool call with Cohere content index `idx`, or of the latest. */
static uint32_t tool_for(const pd_cohere_decoder *d, const json_t *idx)
{
    uint32_t n = d->tools < PD_COHERE_DECODER_TOOLS ? d->tools : PD_COHERE_DECODER_TOOLS;
    for (uint32_t k = 0; json_is_integer(idx) && k < n; k++)
        if (d->map[k].upstream == json_integer_value(idx))
            return d->map[k].canonical;
    return d->tools - 1;
}

/* tool-call-start carries one call object (the SDK's type; an array is read liberally). */
static pd_result on_tool_start(pd_cohere_decoder *d, const json_t *root)
{
    const json_t *tc = json_object_get(delta_message(root), "tool_calls");
    if (json_is_array(tc))
        tc = json_array_get(tc, 0);
    const json_t *f = json_object_get(tc, "function"), *id = json_object_get(tc, "id");
    const json_t *name = json_object_get(f, "name"), *idx = json_object_get(root, "index");
    uint32_t t = d->tools++;
    d->map[t % PD_COHERE_DECODER_TOOLS].upstream =
        json_is_integer(idx) ? json_integer_value(idx) : -1;
    d->map[t % PD_COHERE_DECODER_TOOLS].canonical = t;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_TOOL_START);
    ev.tool_index = t;
    ev.tool_id = json_is_string(id) && json_string_length(id) ? json_string_value(id) : NULL;
    ev.tool_name = json_is_string(name) ? json_string_value(name) : "";
    pd_result rc = emit(d, &ev);
    if (rc)
        return rc;
    const json_t *args = json_object_get(f, "arguments");
    if (json_is_object(args) || json_is_array(args)) { /* liberal: serialise an object */
        char *s = pd_jw_dump(args);
        pd_chat_event_init(&ev, PD_EVENT_TOOL_ARGS);
        ev.tool_index = t;
        ev.text = s;
        ev.text_len = strlen(s);
        rc = emit(d, &ev);
        free(s);
        return rc;
    }
    return emit_text(d, PD_EVENT_TOOL_ARGS, args, t);
}

static pd_result on_tool_delta(pd_cohere_decoder *d, const json_t *root)
{
    if (!d->tools)
        return PD_ERR_INVALID;
    const json_t *tc = json_object_get(delta_message(root), "tool_calls");
    if (json_is_array(tc))
        tc = json_array_get(tc, 0);
    const json_t *args = json_object_get(json_object_get(tc, "function"), "arguments");
    return emit_text(d, PD_EVENT_TOOL_ARGS, args, tool_for(d, json_object_get(root, "index")));
}

static pd_result on_message_end(pd_cohere_decoder *d, const json_t *root)
{
    const json_t *delta = json_object_get(root, "delta"), *error = json_object_get(delta, "error");
    const json_t *reason = json_object_get(delta, "finish_reason");
    pd_chat_finish f = finish_of(reason);
    if ((json_is_string(error) && json_string_length(error)) || f == PD_FINISH_ERROR) {
        bool timeout = str_is(reason, "TIMEOUT");
        char msg[160];
        if (json_is_string(error) && json_string_length(error))
            return emit_error(d, timeout ? 504 : 500, timeout ? "timeout_error" : "server_error",
                              json_string_value(error), json_string_length(error));
        snprintf(msg, sizeof msg, "Cohere ended the response with finish_reason %s",
                 json_string_value(reason));
        return emit_error(d, timeout ? 504 : 500, timeout ? "timeout_error" : "server_error", msg,
                          strlen(msg));
    }
    d->done = true;
    if (f == PD_FINISH_NONE) /* ended without saying why: it did end */
        f = PD_FINISH_STOP;
    if (d->tools && f == PD_FINISH_STOP)
        f = PD_FINISH_TOOL_CALLS;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_FINISH);
    ev.finish = f;
    pd_result rc = emit(d, &ev);
    const json_t *usage = json_object_get(delta, "usage");
    if (rc || !json_is_object(usage))
        return rc;
    pd_chat_event_init(&ev, PD_EVENT_USAGE);
    read_usage(usage, &ev.usage);
    return emit(d, &ev);
}

/* A payload without a known event type that still reports a failure. */
static pd_result on_error_payload(pd_cohere_decoder *d, const json_t *root, const char *data,
                                  size_t len)
{
    const json_t *msg = json_object_get(root, "message");
    if (!json_is_string(msg))
        msg = json_object_get(root, "error");
    if (json_is_object(msg))
        msg = json_object_get(msg, "message");
    if (json_is_string(msg))
        return emit_error(d, 500, "server_error", json_string_value(msg), json_string_length(msg));
    return emit_error(d, 500, "server_error", data, len > 400 ? 400 : len);
}

static pd_result dispatch(pd_cohere_decoder *d, const char *type, const json_t *root)
{
    if (strcmp(type, "message-start") == 0)
        return on_message_start(d, root);
    pd_result rc = ensure_role(d);
    if (rc)
        return rc;
    if (strcmp(type, "content-start") == 0 || strcmp(type, "content-delta") == 0)
        return on_content(d, root);
    if (strcmp(type, "tool-plan-delta") == 0)
        return emit_text(d, PD_EVENT_REASONING, json_object_get(delta_message(root), "tool_plan"),
                         0);
    if (strcmp(type, "tool-call-start") == 0)
        return on_tool_start(d, root);
    if (strcmp(type, "tool-call-delta") == 0)
        return on_tool_delta(d, root);
    if (strcmp(type, "message-end") == 0)
        return on_message_end(d, root);
    return PD_OK; /* content-end, tool-call-end, citation-*, debug, and types added later */
}

static pd_result decode_event(pd_cohere_decoder *d, const pd_sse_event *ev)
{
    if (d->done || d->failed)
        return PD_OK;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0)
        return PD_OK;
    bool named_error = ev->event_len == 5 && memcmp(ev->event, "error", 5) == 0;
    json_t *root = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return named_error ? emit_error(d, 500, "server_error", ev->data,
                                        ev->data_len > 400 ? 400 : ev->data_len)
                           : PD_ERR_INVALID;
    }
    const json_t *type = json_object_get(root, "type");
    char name[32] = "";
    if (json_is_string(type))
        snprintf(name, sizeof name, "%s", json_string_value(type));
    else if (ev->event_len < sizeof name)
        memcpy(name, ev->event, ev->event_len), name[ev->event_len] = '\0';
    pd_result rc;
    if (named_error || strcmp(name, "error") == 0 ||
        (!json_is_string(type) &&
         (json_object_get(root, "message") || json_object_get(root, "error"))))
        rc = on_error_payload(d, root, ev->data, ev->data_len);
    else
        rc = dispatch(d, name, root);
    json_decref(root);
    return rc;
}

static int on_sse(void *ud, const pd_sse_event *ev)
{
    pd_cohere_decoder *d = ud;
    d->rc = decode_event(d, ev);
    return d->rc != PD_OK;
}

pd_result pd_cohere_decode(pd_cohere_decoder *d, const char *bytes, size_t len, pd_chat_event_cb cb,
                           void *ud)
{
    d->cb = cb;
    d->ud = ud;
    d->rc = PD_OK;
    pd_result rc = pd_sse_feed(&d->sse, bytes, len, on_sse, d);
    if (rc == PD_ERR_CLOSED && d->rc)
        rc = d->rc;
    d->cb = NULL;
    d->ud = NULL;
    return rc;
}

/* ==== embeddings ======================================================================== */

pd_result pd_cohere_write_embed_request(const pd_embed_request *req, const char *model, pd_buf *out,
                                        pd_api_error *err)
{
    memset(err, 0, sizeof *err);
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_kv(&w, "model", model ? model : req->model ? req->model : "");
    pd_jw_key(&w, "texts");
    pd_jw_open(&w, '[');
    for (size_t i = 0; i < req->n_inputs; i++)
        pd_jw_str(&w, req->inputs[i] ? req->inputs[i] : "");
    pd_jw_close(&w, ']');
    pd_jw_kv(&w, "input_type", req->input_type ? req->input_type : "search_document");
    pd_jw_key(&w, "embedding_types");
    pd_jw_open(&w, '[');
    pd_jw_str(&w, "float");
    pd_jw_close(&w, ']');
    pd_jw_kint(&w, "output_dimension", req->has_dimensions, req->dimensions);
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

pd_result pd_cohere_parse_embed_response(const char *body, size_t len, pd_embed_response *out)
{
    pd_embed_response_init(out);
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *e = json_object_get(root, "embeddings");
    const json_t *vecs = json_is_object(e) ? json_object_get(e, "float") : e;
    if (!json_is_array(vecs)) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    size_t n = json_array_size(vecs);
    out->vectors = pd_xcalloc(n ? n : 1, sizeof *out->vectors);
    for (size_t i = 0; i < n; i++) {
        if (!pd_embed_vector_from_json(json_array_get(vecs, i), &out->vectors[i])) {
            json_decref(root);
            pd_embed_response_free(out);
            return PD_ERR_INVALID;
        }
        out->n_vectors++;
    }
    const json_t *billed = json_object_get(json_object_get(root, "meta"), "billed_units");
    out->prompt_tokens = count(billed, "input_tokens");
    out->total_tokens = out->prompt_tokens;
    json_decref(root);
    return PD_OK;
}
