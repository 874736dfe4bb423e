/* ollama.c: see ollama.h. Layout: helpers; request checks (every 400 is found before a byte is
 * written); request writing; responses; errors; NDJSON streams; embeddings. */
#include "proto/ollama.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jsonw.h"

/* ==== helpers =========================================================================== */

static pd_result bad(pd_api_error *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

static char *opt_text(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) ? dup_json_str(v) : NULL;
}

/* A count on a final object: absent means 0 (see ollama.h); a wrong type means unknown. */
static int64_t final_count(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e18)
        return (int64_t)json_real_value(v);
    return PD_CHAT_COUNT_UNKNOWN;
}

static bool is_text(pd_chat_part_kind k)
{
    return k == PD_PART_TEXT || k == PD_PART_REFUSAL;
}

static bool blank(const char *s)
{
    while (s && *s && isspace((unsigned char)*s))
        s++;
    return !s || !*s;
}

/* ==== request checks ==================================================================== */

static bool tool_sent(const pd_chat_request *r, size_t i)
{
    const pd_chat_tool_choice *c = &r->tool_choice;
    const char *name = r->tools[i].name ? r->tools[i].name : "";
    if (c->kind == PD_TOOL_CHOICE_NONE)
        return false;
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

static pd_result check_part(const pd_chat_part *p, size_t i, size_t k, pd_api_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "messages[%zu].content[%zu]", i, k);
    if (p->kind == PD_PART_IMAGE && p->url)
        return bad(err, path,
                   "Ollama accepts images only as base64 data (a data: URI), not by URL.");
    if (p->kind == PD_PART_AUDIO || p->kind == PD_PART_FILE)
        return bad(err, path, "Ollama does not accept %s content parts.",
                   p->kind == PD_PART_AUDIO ? "audio" : "file");
    return PD_OK;
}

/* The arguments must be one JSON object (blank means {}): Ollama wants an object. */
static pd_result check_arguments(const pd_chat_tool_call *tc, size_t i, size_t k, pd_api_error *err)
{
    char path[80];
    if (tc->kind == PD_TOOL_CUSTOM) {
        snprintf(path, sizeof path, "messages[%zu].tool_calls[%zu]", i, k);
        return bad(err, path, "Ollama supports function tools only, not custom tools.");
    }
    if (blank(tc->arguments))
        return PD_OK;
    snprintf(path, sizeof path, "messages[%zu].tool_calls[%zu].function.arguments", i, k);
    json_error_t e;
    json_t *j = json_loads(tc->arguments, 0, &e);
    bool object = json_is_object(j);
    json_decref(j);
    if (!j)
        return bad(err, path, "Invalid '%s': not valid JSON (%s); Ollama needs a JSON object.",
                   path, e.text);
    if (!object)
        return bad(err, path, "Invalid '%s': Ollama needs a JSON object, not an array.", path);
    return PD_OK;
}

static pd_result check_request(const pd_chat_request *r, pd_api_error *err)
{
    if (r->sampling.has_n && r->sampling.n > 1)
        return bad(err, "n", "Ollama returns one choice per request: 'n' must be 1.");
    for (size_t i = 0; i < r->n_messages; i++) {
        const pd_chat_message *m = &r->messages[i];
        pd_result rc = PD_OK;
        for (size_t k = 0; !rc && k < m->n_parts; k++)
            rc = check_part(&m->parts[k], i, k, err);
        for (size_t k = 0; !rc && k < m->n_tool_calls; k++)
            rc = check_arguments(&m->tool_calls[k], i, k, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < r->n_tools; i++) {
        char p[32];
        snprintf(p, sizeof p, "tools[%zu]", i);
        if (r->tools[i].kind == PD_TOOL_CUSTOM && tool_sent(r, i))
            return bad(err, p, "Ollama supports function tools only, not custom tools.");
    }
    if (r->tool_choice.kind == PD_TOOL_CHOICE_NAMED && !tools_sent(r))
        return bad(err, "tool_choice", "tool_choice names '%s', which is not among the tools.",
                   r->tool_choice.name ? r->tool_choice.name : "");
    return PD_OK;
}

/* ==== request writing =================================================================== */

/* "content": the text parts joined with "\n". */
static void write_text(pd_jw *w, const pd_chat_message *m)
{
    bool first = true;
    pd_jw_key(w, "content");
    pd_jw_sep(w);
    pd_jw_raw(w, "\"", 1);
    for (size_t k = 0; k < m->n_parts; k++) {
        const pd_chat_part *p = &m->parts[k];
        if (!is_text(p->kind) || !p->text)
            continue;
        if (!first)
            pd_jw_raw(w, "\\n", 2);
        pd_jw_escape(w, p->text, strlen(p->text));
        first = false;
    }
    pd_jw_raw(w, "\"", 1);
}

static void write_images(pd_jw *w, const pd_chat_message *m)
{
    bool any = false;
    for (size_t k = 0; k < m->n_parts; k++) {
        if (m->parts[k].kind != PD_PART_IMAGE)
            continue;
        if (!any)
            pd_jw_key(w, "images"), pd_jw_open(w, '[');
        any = true;
        pd_jw_str(w, m->parts[k].data ? m->parts[k].data : "");
    }
    if (any)
        pd_jw_close(w, ']');
}

static void write_tool_calls(pd_jw *w, const pd_chat_message *m)
{
    if (!m->n_tool_calls)
        return;
    pd_jw_key(w, "tool_calls");
    pd_jw_open(w, '[');
    for (size_t k = 0; k < m->n_tool_calls; k++) {
        const pd_chat_tool_call *tc = &m->tool_calls[k];
        pd_jw_open(w, '{');
        pd_jw_kv(w, "id", tc->id);
        pd_jw_key(w, "function");
        pd_jw_open(w, '{');
        pd_jw_kint(w, "index", true, (int64_t)k);
        pd_jw_kv(w, "name", tc->name ? tc->name : "");
        pd_jw_key(w, "arguments");
        pd_jw_sep(w);
        if (blank(tc->arguments)) /* checked: otherwise exactly one JSON object */
            pd_jw_raw(w, "{}", 2);
        else
            pd_jw_raw(w, tc->arguments, strlen(tc->arguments));
        pd_jw_close(w, '}');
        pd_jw_close(w, '}');
    }
    pd_jw_close(w, ']');
}

/* The name of the tool whose call `id` an earlier assistant turn made, or NULL. */
static const char *tool_name_of(const pd_chat_request *r, size_t before, const char *id)
{
    for (size_t i = before; id && i-- > 0;) {
        const pd_chat_message *m = &r->messages[i];
        for (size_t k = 0; k < m->n_tool_calls; k++)
            if (m->tool_calls[k].id && strcmp(m->tool_calls[k].id, id) == 0)
                return m->tool_calls[k].name;
    }
    return NULL;
}

static void write_message(pd_jw *w, const pd_chat_request *r, size_t i)
{
    const pd_chat_message *m = &r->messages[i];
    const char *role = m->role == PD_ROLE_DEVELOPER ? "system" : pd_chat_role_name(m->role);
    pd_jw_open(w, '{');
    pd_jw_kv(w, "role", role);
    write_text(w, m);
    write_images(w, m);
    if (m->role == PD_ROLE_ASSISTANT) {
        pd_jw_kv(w, "thinking", m->reasoning && m->reasoning[0] ? m->reasoning : NULL);
        write_tool_calls(w, m);
    } else if (m->role == PD_ROLE_TOOL) {
        pd_jw_kv(w, "tool_name", tool_name_of(r, i, m->tool_call_id));
        pd_jw_kv(w, "tool_call_id", m->tool_call_id);
    }
    pd_jw_close(w, '}');
}

static void write_tools(pd_jw *w, const pd_chat_request *r)
{
    if (!tools_sent(r))
        return;
    pd_jw_key(w, "tools");
    pd_jw_open(w, '[');
    for (size_t i = 0; i < r->n_tools; i++) {
        const pd_chat_tool *t = &r->tools[i];
        if (!tool_sent(r, i))
            continue;
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
}

static void write_format(pd_jw *w, const pd_chat_response_format *f)
{
    if (f->kind != PD_FORMAT_JSON_OBJECT && f->kind != PD_FORMAT_JSON_SCHEMA)
        return;
    pd_jw_key(w, "format");
    if (f->schema.text)
        pd_jw_text(w, &f->schema);
    else
        pd_jw_str(w, "json");
}

static bool any_option(const pd_chat_sampling *s)
{
    return s->has_max_tokens || s->has_temperature || s->has_top_p || s->has_top_k ||
           s->has_min_p || s->n_stop || s->has_seed || s->has_frequency_penalty ||
           s->has_presence_penalty;
}

static void write_options(pd_jw *w, const pd_chat_sampling *s)
{
    if (!any_option(s))
        return;
    pd_jw_key(w, "options");
    pd_jw_open(w, '{');
    pd_jw_kint(w, "num_predict", s->has_max_tokens, s->max_tokens);
    pd_jw_kreal(w, "temperature", s->has_temperature, s->temperature);
    pd_jw_kreal(w, "top_p", s->has_top_p, s->top_p);
    pd_jw_kint(w, "top_k", s->has_top_k, s->top_k);
    pd_jw_kreal(w, "min_p", s->has_min_p, s->min_p);
    if (s->n_stop) {
        pd_jw_key(w, "stop");
        pd_jw_open(w, '[');
        for (size_t i = 0; i < s->n_stop; i++)
            pd_jw_str(w, s->stop[i] ? s->stop[i] : "");
        pd_jw_close(w, ']');
    }
    pd_jw_kint(w, "seed", s->has_seed, s->seed);
    pd_jw_kreal(w, "frequency_penalty", s->has_frequency_penalty, s->frequency_penalty);
    pd_jw_kreal(w, "presence_penalty", s->has_presence_penalty, s->presence_penalty);
    pd_jw_close(w, '}');
}

static const struct {
    const char *effort, *think; /* think NULL: false */
} thinks[] = {
    {"none", NULL},   {"minimal", "low"}, {"low", "low"},  {"medium", "medium"},
    {"high", "high"}, {"xhigh", "high"},  {"max", "high"},
};

static void write_think(pd_jw *w, const char *effort)
{
    for (size_t i = 0; effort && i < sizeof thinks / sizeof *thinks; i++) {
        if (strcmp(thinks[i].effort, effort) != 0)
            continue;
        pd_jw_key(w, "think");
        if (thinks[i].think)
            pd_jw_str(w, thinks[i].think);
        else
            pd_jw_bool(w, false);
        return;
    }
}

pd_result pd_ollama_write_chat_request(const pd_chat_request *req, const char *model, pd_buf *out,
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
        write_message(&w, req, i);
    pd_jw_close(&w, ']');
    write_tools(&w, req);
    write_format(&w, &req->response_format);
    write_options(&w, &req->sampling);
    write_think(&w, req->reasoning_effort);
    pd_jw_tri(&w, "logprobs", req->sampling.logprobs);
    pd_jw_kint(&w, "top_logprobs", req->sampling.has_top_logprobs, req->sampling.top_logprobs);
    pd_jw_key(&w, "stream");
    pd_jw_bool(&w, req->stream);
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ==== responses ========================================================================= */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly `digits` decimal digits at s[*i]. */
static bool digits_at(const char *s, size_t n, size_t *i, int digits, int *out)
{
    int v = 0;
    for (int k = 0; k < digits; k++, (*i)++) {
        if (*i >= n || !isdigit((unsigned char)s[*i]))
            return false;
        v = v * 10 + (s[*i] - '0');
    }
    *out = v;
    return true;
}

static bool expect(const char *s, size_t n, size_t *i, const char *set)
{
    if (*i >= n || !s[*i] || !strchr(set, s[*i]))
        return false;
    (*i)++;
    return true;
}

int64_t pd_ollama_parse_time(const char *s, size_t n)
{
    size_t i = 0;
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
    if (!digits_at(s, n, &i, 4, &y) || !expect(s, n, &i, "-") || !digits_at(s, n, &i, 2, &mo) ||
        !expect(s, n, &i, "-") || !digits_at(s, n, &i, 2, &d) || !expect(s, n, &i, "Tt ") ||
        !digits_at(s, n, &i, 2, &h) || !expect(s, n, &i, ":") || !digits_at(s, n, &i, 2, &mi) ||
        !expect(s, n, &i, ":") || !digits_at(s, n, &i, 2, &se))
        return 0;
    if (i < n && s[i] == '.')
        for (i++; i < n && isdigit((unsigned char)s[i]); i++)
            ;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        sign = s[i++] == '-' ? -1 : 1;
        if (!digits_at(s, n, &i, 2, &oh) || !expect(s, n, &i, ":") || !digits_at(s, n, &i, 2, &om))
            return 0;
    } else if (!expect(s, n, &i, "Zz")) {
        return 0;
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return 0;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return t - sign * (oh * 3600 + om * 60);
}

static int64_t created_of(const json_t *root)
{
    const json_t *c = json_object_get(root, "created_at");
    return json_is_string(c) ? pd_ollama_parse_time(json_string_value(c), json_string_length(c))
                             : 0;
}

static char *arguments_of(const json_t *args)
{
    if (json_is_string(args))
        return dup_json_str(args);
    if (json_is_object(args) || json_is_array(args))
        return pd_jw_dump(args);
    return pd_xstrdup("{}");
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
        const json_t *f = json_object_get(tc, "function");
        if (!json_is_object(f))
            continue;
        pd_chat_tool_call *dst = &m->tool_calls[m->n_tool_calls++];
        dst->kind = PD_TOOL_FUNCTION;
        dst->id = opt_text(tc, "id");
        dst->name = opt_text(f, "name");
        if (!dst->name)
            dst->name = pd_xstrdup("");
        dst->arguments = arguments_of(json_object_get(f, "arguments"));
    }
}

static pd_chat_finish finish_of(const json_t *reason)
{
    static const char *const stops[] = {"stop", "load", "unload", ""};
    if (!json_is_string(reason))
        return PD_FINISH_STOP;
    if (strcmp(json_string_value(reason), "length") == 0)
        return PD_FINISH_LENGTH;
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++)
        if (strcmp(json_string_value(reason), stops[i]) == 0)
            return PD_FINISH_STOP;
    return PD_FINISH_UNKNOWN;
}

static void read_final_usage(const json_t *root, pd_chat_usage *u)
{
    pd_chat_usage_init(u);
    u->prompt_tokens = final_count(root, "prompt_eval_count");
    u->completion_tokens = final_count(root, "eval_count");
}

pd_result pd_ollama_parse_chat_response(const char *body, size_t len, pd_chat_response *out)
{
    pd_chat_response_init(out);
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *msg = json_object_get(root, "message");
    if (!json_is_object(root) || !json_is_object(msg)) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    out->model = opt_text(root, "model");
    out->created = created_of(root);
    out->choices = pd_xcalloc(1, sizeof *out->choices);
    out->n_choices = 1;
    pd_chat_message *m = &out->choices[0].message;
    m->role = PD_ROLE_ASSISTANT;
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content) && json_string_length(content)) {
        m->parts = pd_xcalloc(1, sizeof *m->parts);
        m->parts[0].text = dup_json_str(content);
        m->n_parts = 1;
    }
    m->reasoning = opt_text(msg, "thinking");
    read_tool_calls(json_object_get(msg, "tool_calls"), m);
    pd_chat_finish f = finish_of(json_object_get(root, "done_reason"));
    out->choices[0].finish = m->n_tool_calls && f == PD_FINISH_STOP ? PD_FINISH_TOOL_CALLS : f;
    const json_t *lp = json_object_get(root, "logprobs");
    if (lp && !json_is_null(lp))
        out->choices[0].logprobs = json_incref((json_t *)lp);
    read_final_usage(root, &out->usage);
    json_decref(root);
    return PD_OK;
}

/* ==== errors ============================================================================ */

void pd_ollama_parse_error_body(long status, const char *body, size_t len, pd_api_error *out)
{
    int st = status >= 400 && status <= 599 ? (int)status : 500;
    pd_openai_parse_error_body(body ? body : "", body ? len : 0, st, out);
    out->status = st;
    if (st == 404 && !out->code && strstr(out->message, "not found"))
        out->code = "model_not_found";
}

/* ==== streams =========================================================================== */

void pd_ollama_decoder_init(pd_ollama_decoder *d)
{
    memset(d, 0, sizeof *d);
    pd_buf_init(&d->line, PD_OLLAMA_MAX_LINE);
}

void pd_ollama_decoder_free(pd_ollama_decoder *d)
{
    if (!d)
        return;
    pd_buf_free(&d->line);
}

/* Per-object context: the callback and what every event of the object carries. */
typedef struct line_ctx {
    pd_chat_event_cb cb;
    void *ud;
    const char *model;
    int64_t created;
} line_ctx;

static pd_result emit(const line_ctx *c, pd_chat_event *ev)
{
    ev->model = c->model;
    ev->created = c->created;
    return c->cb(c->ud, ev) ? PD_ERR_CLOSED : PD_OK;
}

static pd_result emit_text(const line_ctx *c, pd_chat_event_kind kind, const json_t *s)
{
    if (!json_is_string(s) || !json_string_length(s))
        return PD_OK;
    pd_chat_event ev;
    pd_chat_event_init(&ev, kind);
    ev.text = json_string_value(s);
    ev.text_len = json_string_length(s);
    return emit(c, &ev);
}

static pd_result emit_error(pd_ollama_decoder *d, const line_ctx *c, const json_t *error)
{
    d->failed = true;
    char *dumped = json_is_string(error) ? NULL : pd_jw_dump(error);
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_ERROR);
    ev.error_status = 500;
    ev.error_type = "server_error";
    ev.text = dumped ? dumped : json_string_value(error);
    ev.text_len = dumped ? strlen(dumped) : json_string_length(error);
    if (json_is_object(error) && json_is_string(json_object_get(error, "message"))) {
        ev.text = json_string_value(json_object_get(error, "message"));
        ev.text_len = json_string_length(json_object_get(error, "message"));
    }
    pd_result rc = emit(c, &ev);
    free(dumped);
    return rc;
}

static pd_result emit_tool_call(pd_ollama_decoder *d, const line_ctx *c, const json_t *tc)
{
    const json_t *f = json_object_get(tc, "function"), *id = json_object_get(tc, "id");
    const json_t *name = json_object_get(f, "name");
    if (!json_is_object(f))
        return PD_OK;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_TOOL_START);
    ev.tool_index = d->tools++;
    ev.tool_id = json_is_string(id) && json_string_length(id) ? json_string_value(id) : NULL;
    ev.tool_name = json_is_string(name) ? json_string_value(name) : "";
    pd_result rc = emit(c, &ev);
    if (rc)
        return rc;
    char *args = arguments_of(json_object_get(f, "arguments"));
    pd_chat_event_init(&ev, PD_EVENT_TOOL_ARGS);
    ev.tool_index = d->tools - 1;
    ev.text = args;
    ev.text_len = strlen(args);
    rc = args[0] ? emit(c, &ev) : PD_OK;
    free(args);
    return rc;
}

static pd_result emit_done(pd_ollama_decoder *d, const line_ctx *c, const json_t *root)
{
    d->done = true;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_FINISH);
    ev.finish = finish_of(json_object_get(root, "done_reason"));
    if (d->tools && ev.finish == PD_FINISH_STOP)
        ev.finish = PD_FINISH_TOOL_CALLS;
    pd_result rc = emit(c, &ev);
    if (rc)
        return rc;
    pd_chat_event_init(&ev, PD_EVENT_USAGE);
    read_final_usage(root, &ev.usage);
    return emit(c, &ev);
}

static pd_result decode_object(pd_ollama_decoder *d, line_ctx *c, const json_t *root)
{
    const json_t *model = json_object_get(root, "model"), *error = json_object_get(root, "error");
    c->model = json_is_string(model) ? json_string_value(model) : NULL;
    c->created = created_of(root);
    if (error && !json_is_null(error))
        return emit_error(d, c, error);
    pd_result rc = PD_OK;
    if (!d->started) {
        pd_chat_event ev;
        pd_chat_event_init(&ev, PD_EVENT_ROLE);
        ev.role = PD_ROLE_ASSISTANT;
        d->started = true;
        rc = emit(c, &ev);
    }
    const json_t *msg = json_object_get(root, "message");
    if (!rc)
        rc = emit_text(c, PD_EVENT_REASONING, json_object_get(msg, "thinking"));
    if (!rc)
        rc = emit_text(c, PD_EVENT_TEXT, json_object_get(msg, "content"));
    const json_t *tcs = json_object_get(msg, "tool_calls");
    for (size_t i = 0; !rc && i < json_array_size(tcs); i++)
        rc = emit_tool_call(d, c, json_array_get(tcs, i));
    if (!rc && json_is_true(json_object_get(root, "done")))
        rc = emit_done(d, c, root);
    return rc;
}

static pd_result decode_line(pd_ollama_decoder *d, line_ctx *c, const char *s, size_t n)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    if (!n || d->done || d->failed)
        return PD_OK;
    json_t *root = json_loadb(s, n, 0, NULL);
    pd_result rc = json_is_object(root) ? decode_object(d, c, root) : PD_ERR_INVALID;
    json_decref(root);
    return rc;
}

pd_result pd_ollama_decode(pd_ollama_decoder *d, const char *bytes, size_t len, pd_chat_event_cb cb,
                           void *ud)
{
    line_ctx c = {cb, ud, NULL, 0};
    if (d->overflow)
        return PD_ERR_TOO_LARGE;
    while (len) {
        const char *nl = memchr(bytes, '\n', len);
        size_t take = nl ? (size_t)(nl - bytes) : len;
        pd_result rc;
        if (!nl || d->line.len || take > PD_OLLAMA_MAX_LINE) { /* spans feeds: buffer it */
            if (pd_buf_append(&d->line, bytes, take) != PD_OK) {
                d->failed = d->overflow = true;
                pd_buf_reset(&d->line);
                return PD_ERR_TOO_LARGE;
            }
            if (!nl)
                return PD_OK;
            rc = decode_line(d, &c, d->line.data, d->line.len);
            pd_buf_reset(&d->line);
        } else { /* a whole line inside these bytes: decoded in place */
            rc = decode_line(d, &c, bytes, take);
        }
        if (rc)
            return rc;
        bytes += take + 1;
        len -= take + 1;
    }
    return PD_OK;
}

/* ==== embeddings ======================================================================== */

pd_result pd_ollama_write_embed_request(const pd_embed_request *req, const char *model, pd_buf *out,
                                        pd_api_error *err)
{
    memset(err, 0, sizeof *err);
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_kv(&w, "model", model ? model : req->model ? req->model : "");
    pd_jw_key(&w, "input");
    if (req->input_is_string && req->n_inputs == 1) {
        pd_jw_str(&w, req->inputs[0] ? req->inputs[0] : "");
    } else {
        pd_jw_open(&w, '[');
        for (size_t i = 0; i < req->n_inputs; i++)
            pd_jw_str(&w, req->inputs[i] ? req->inputs[i] : "");
        pd_jw_close(&w, ']');
    }
    pd_jw_kint(&w, "dimensions", req->has_dimensions, req->dimensions);
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

pd_result pd_ollama_parse_embed_response(const char *body, size_t len, pd_embed_response *out)
{
    pd_embed_response_init(out);
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *vecs = json_object_get(root, "embeddings"),
                 *one = json_object_get(root, "embedding");
    size_t n = json_is_array(vecs) ? json_array_size(vecs) : json_is_array(one) ? 1 : 0;
    if (!n) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    out->vectors = pd_xcalloc(n, sizeof *out->vectors);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_is_array(vecs) ? json_array_get(vecs, i) : one;
        if (!pd_embed_vector_from_json(v, &out->vectors[i])) {
            json_decref(root);
            pd_embed_response_free(out);
            return PD_ERR_INVALID;
        }
        out->n_vectors++;
    }
    out->model = opt_text(root, "model");
    out->prompt_tokens = final_count(root, "prompt_eval_count");
    out->total_tokens = out->prompt_tokens;
    json_decref(root);
    return PD_OK;
}
