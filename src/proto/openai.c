/* openai.c: see openai.h. Layout: errors; request validation (strict, OpenAI's rules and
 * message style); request writing; responses (liberal reading); streams. Every encoder writes
 * with the JSON writer of proto/jsonw.h (stable key order, shortest-round-trip numbers,
 * guaranteed-valid UTF-8; see there why not json_dumps). */
#include "proto/openai.h"
#include "proto/fastev.h"
#include "proto/jsonr.h"
#include "proto/jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== small helpers ===================================================================== */

static char *dup_json_str(const json_t *s)
{
    return pd_xstrndup(json_string_value(s), json_string_length(s));
}

/* The member as a new string when it is a string, else NULL (liberal readers). */
static char *opt_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? dup_json_str(v) : NULL;
}

static bool str_eq(const json_t *s, const char *lit)
{
    return json_is_string(s) && strcmp(json_string_value(s), lit) == 0;
}

/* ==== errors ============================================================================ */

static const char *type_for_status(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    }
    return status >= 500 ? "server_error" : "invalid_request_error";
}

static void error_vset(pd_api_error *e, int status, const char *type, const char *code,
                       const char *param, const char *fmt, va_list ap)
{
    e->status = status;
    e->type = type ? type : type_for_status(status);
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

void pd_openai_error_set(pd_api_error *e, int status, const char *type, const char *code,
                         const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(e, status, type, code, param, fmt, ap);
    va_end(ap);
}

pd_result pd_openai_error_body(const pd_api_error *e, pd_buf *out)
{
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "error");
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "message");
    pd_jw_str(&w, e->message);
    pd_jw_key(&w, "type");
    pd_jw_str(&w, e->type ? e->type : "server_error");
    pd_jw_key(&w, "param");
    pd_jw_str(&w, e->param[0] ? e->param : NULL);
    pd_jw_key(&w, "code");
    pd_jw_str(&w, e->code);
    pd_jw_close(&w, '}');
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* Error types seen from upstreams, the static name we report and the status each implies. */
static const struct {
    const char *seen, *type;
    int status;
} error_types[] = {
    {"invalid_request_error", "invalid_request_error", 400},
    {"authentication_error", "authentication_error", 401},
    {"permission_error", "permission_error", 403},
    {"not_found_error", "not_found_error", 404},
    {"rate_limit_error", "rate_limit_error", 429},
    {"insufficient_quota", "insufficient_quota", 429},
    {"billing_error", "billing_error", 402},
    {"request_too_large", "request_too_large", 413},
    {"server_error", "server_error", 500},
    {"api_error", "api_error", 500},
    {"timeout_error", "timeout_error", 504},
    {"overloaded_error", "overloaded_error", 529},
    {"exceed_context_size_error", "exceed_context_size_error", 400}, /* llama-server */
    {"not_supported_error", "not_supported_error", 501},
    {"unavailable_error", "unavailable_error", 503},
    {"BadRequestError", "invalid_request_error", 400}, /* vLLM: Python exception names */
    {"NotFoundError", "not_found_error", 404},
    {"InternalServerError", "server_error", 500},
};

/* String error codes worth keeping: clients and the router act on them. */
static const char *const error_codes[] = {
    "context_length_exceeded",
    "rate_limit_exceeded",
    "insufficient_quota",
    "invalid_api_key",
    "model_not_found",
    "invalid_type",
    "invalid_value",
    "missing_required_parameter",
    "unsupported_parameter",
    "unsupported_value",
    "string_above_max_length",
    "array_above_max_length",
    "content_filter",
    "content_policy_violation",
    "billing_hard_limit_reached",
    "account_deactivated",
    "server_error",
    "model_overloaded",
    "invalid_prompt",
};

/* OpenAI's usual type for a status (OpenAI answers an unknown model's 404 with
   invalid_request_error too); the same mapping as proto/errors.c. */

static const char *known_code(const json_t *code)
{
    if (!json_is_string(code))
        return NULL;
    for (size_t i = 0; i < sizeof error_codes / sizeof *error_codes; i++)
        if (strcmp(error_codes[i], json_string_value(code)) == 0)
            return error_codes[i];
    return NULL;
}

/* Copies at most cap-1 bytes of s, cut at a UTF-8 character boundary, trimmed of surrounding
   whitespace. */
static void copy_text(char *dst, size_t cap, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    if (n >= cap) {
        n = cap - 1;
        while (n && ((unsigned char)s[n] & 0xc0) == 0x80) /* do not split a character */
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Fills out from an error object's fields {type, param, code} and its message value (a string,
   or any JSON, which is then written out as the message). */
static void error_from_fields(const json_t *o, const json_t *msg, int http_status,
                              pd_api_error *out)
{
    const json_t *type = json_object_get(o, "type"), *code = json_object_get(o, "code");
    const json_t *param = json_object_get(o, "param");
    int status = http_status >= 400 ? http_status : 0;
    if (!status && json_is_integer(code) && json_integer_value(code) >= 400 &&
        json_integer_value(code) <= 599)
        status = (int)json_integer_value(code);
    out->type = NULL;
    for (size_t i = 0; json_is_string(type) && i < sizeof error_types / sizeof *error_types; i++) {
        if (strcmp(error_types[i].seen, json_string_value(type)) == 0) {
            out->type = error_types[i].type;
            status = status ? status : error_types[i].status;
            break;
        }
    }
    out->status = status ? status : 500;
    out->type = out->type ? out->type : type_for_status(out->status);
    out->code = known_code(code);
    if (json_is_string(param))
        copy_text(out->param, sizeof out->param, json_string_value(param),
                  json_string_length(param));
    if (json_is_string(msg)) {
        copy_text(out->message, sizeof out->message, json_string_value(msg),
                  json_string_length(msg));
    } else if (msg && !json_is_null(msg)) {
        char *s = pd_jw_dump(msg);
        copy_text(out->message, sizeof out->message, s, strlen(s));
        free(s);
    }
    if (!out->message[0])
        snprintf(out->message, sizeof out->message, "upstream returned HTTP %d", out->status);
}

/* Recognises the error shapes of openai.h on a parsed body; false when none matches. */
static bool error_from_json(const json_t *root, int http_status, pd_api_error *out)
{
    const json_t *e = json_object_get(root, "error"), *detail = json_object_get(root, "detail");
    const json_t *msg = json_object_get(root, "message");
    if (json_is_object(e)) /* OpenAI, llama-server, new vLLM, Anthropic */
        error_from_fields(e, json_object_get(e, "message"), http_status, out);
    else if (json_is_string(e)) /* Ollama: {"error":"text"} */
        error_from_fields(root, e, http_status, out);
    else if (str_eq(json_object_get(root, "object"), "error") ||
             (json_is_string(msg) && !json_object_get(root, "choices")))
        error_from_fields(root, msg, http_status, out); /* old vLLM, Cohere, llama error: */
    else if (detail && !json_is_null(detail))           /* FastAPI */
        error_from_fields(root, detail, http_status, out);
    else
        return false;
    return true;
}

pd_result pd_openai_parse_error_body(const char *body, size_t len, int http_status,
                                     pd_api_error *out)
{
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(body, len, 0, NULL);
    bool ok = json_is_object(root) && error_from_json(root, http_status, out);
    json_decref(root);
    if (!ok) {
        out->status = http_status >= 400 ? http_status : 500;
        out->type = type_for_status(out->status);
        out->code = NULL;
        out->param[0] = '\0';
        copy_text(out->message, sizeof out->message, body ? body : "", body ? len : 0);
    }
    if (!out->message[0])
        snprintf(out->message, sizeof out->message, "upstream returned HTTP %d", out->status);
    return ok ? PD_OK : PD_ERR_INVALID;
}

/* ==== request validation ================================================================ */

#define PATH_MAX_LEN 128 /* parameter paths such as "messages[2].content[0].image_url.url" */

/* Every validation failure goes through here: status 400, invalid_request_error. */
static pd_result bad(pd_api_error *err, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static pd_result bad(pd_api_error *err, const char *code, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, 400, "invalid_request_error", code, param, fmt, ap);
    va_end(ap);
    return PD_ERR_INVALID;
}

/* Request bodies are read with proto/jsonr.h (no jansson tree): these are its helpers. */

static char *dup_str(pd_arena *a, const pd_jr_val *s)
{
    return pd_chat_parse_held(pd_arena_strndup(a, s->u.s, s->n));
}

/* The member as a new string when it is a string, else NULL (never an error). */
static char *member_str(pd_arena *a, const pd_jr_val *obj, const char *key)
{
    const pd_jr_val *v = pd_jr_get(obj, key);
    return pd_jr_is_string(v) ? dup_str(a, v) : NULL;
}

static const char *kind_desc(const pd_jr_val *v)
{
    if (!v)
        return "nothing";
    switch ((pd_jr_type)v->type) {
    case PD_JR_OBJECT: return "an object";
    case PD_JR_ARRAY: return "an array";
    case PD_JR_STRING: return "a string";
    case PD_JR_INT: return "an integer";
    case PD_JR_REAL: return "a decimal";
    case PD_JR_TRUE:
    case PD_JR_FALSE: return "a boolean";
    case PD_JR_NULL: return "null";
    }
    return "unknown";
}

static pd_result bad_type(pd_api_error *err, const char *param, const char *want,
                          const pd_jr_val *v)
{
    return bad(err, "invalid_type", param,
               "Invalid type for '%s': expected %s, but got %s instead.", param, want,
               kind_desc(v));
}

static pd_result missing(pd_api_error *err, const char *param)
{
    return bad(err, "missing_required_parameter", param, "Missing required parameter: '%s'.",
               param);
}

/* Parameter paths such as "messages[2].content[0]", cut to fit (the error's param keeps 63
   bytes anyway). Built without printf (proto/jsonr.h says why). */

/* Builds "base.key" (or "key" when base is empty) into dst. */
static const char *path(char *dst, size_t cap, const char *base, const char *key)
{
    return pd_jr_path_key(dst, cap, base, key);
}

/* Builds "base[i]" into dst. */
static const char *path_at(char *dst, size_t cap, const char *base, size_t i)
{
    return pd_jr_path_index(dst, cap, base, "[", i, "]");
}

/* Optional string member: *out stays NULL when absent/null. */
static pd_result get_str(pd_arena *a, const pd_jr_val *o, const char *base, const char *key,
                         char **out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return PD_OK;
    if (!pd_jr_is_string(v))
        return bad_type(err, path(p, sizeof p, base, key), "a string", v);
    *out = dup_str(a, v);
    return PD_OK;
}

/* Required string member. */
static pd_result need_str(pd_arena *a, const pd_jr_val *o, const char *base, const char *key,
                          char **out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return missing(err, path(p, sizeof p, base, key));
    if (!pd_jr_is_string(v))
        return bad_type(err, path(p, sizeof p, base, key), "a string", v);
    *out = dup_str(a, v);
    return PD_OK;
}

static pd_result get_tri(const pd_jr_val *o, const char *key, pd_chat_tri *out, pd_api_error *err)
{
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return PD_OK;
    if (!pd_jr_is_boolean(v))
        return bad_type(err, key, "a boolean", v);
    *out = pd_jr_is_true(v) ? PD_TRI_TRUE : PD_TRI_FALSE;
    return PD_OK;
}

static pd_result get_number(const pd_jr_val *o, const char *key, double lo, double hi, bool *has,
                            double *out, pd_api_error *err)
{
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return PD_OK;
    if (!pd_jr_is_number(v))
        return bad_type(err, key, "a number", v);
    double d = pd_jr_number(v);
    if (d < lo || d > hi)
        return bad(err, "invalid_value", key,
                   "Invalid '%s': expected a number between %g and %g, but got %g instead.", key,
                   lo, hi, d);
    *has = true;
    *out = d;
    return PD_OK;
}

static pd_result get_int(const pd_jr_val *o, const char *key, int64_t lo, int64_t hi, bool *has,
                         int64_t *out, pd_api_error *err)
{
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return PD_OK;
    if (!pd_jr_is_integer(v))
        return bad_type(err, key, "an integer", v);
    int64_t i = v->u.i;
    if (i < lo || i > hi)
        return bad(err, "invalid_value", key,
                   "Invalid '%s': expected an integer between %" PRId64 " and %" PRId64
                   ", but got %" PRId64 " instead.",
                   key, lo, hi, i);
    *has = true;
    *out = i;
    return PD_OK;
}

/* ---- content parts ---- */

/* Splits "data:<media type>;base64,<payload>" into its parts; false for any other URL. */
static bool split_data_uri(pd_arena *a, const char *url, char **media_type, char **data)
{
    if (strncmp(url, "data:", 5) != 0)
        return false;
    const char *mt = url + 5, *marker = strstr(mt, ";base64,");
    if (!marker || marker == mt || memchr(mt, ',', (size_t)(marker - mt)) ||
        memchr(mt, ';', (size_t)(marker - mt)))
        return false;
    *media_type = pd_chat_parse_held(pd_arena_strndup(a, mt, (size_t)(marker - mt)));
    *data = pd_chat_parse_held(pd_arena_strdup(a, marker + 8));
    return true;
}

static pd_result parse_image(pd_arena *a, const pd_jr_val *part, const char *base,
                             pd_chat_part *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *img = pd_jr_opt(part, "image_url");
    path(p, sizeof p, base, "image_url");
    if (!img)
        return missing(err, p);
    char *url = NULL;
    pd_result rc;
    if (pd_jr_is_string(img)) { /* legacy clients send the URL directly */
        url = dup_str(a, img);
    } else if (!pd_jr_is_object(img)) {
        return bad_type(err, p, "an object", img);
    } else if ((rc = need_str(a, img, p, "url", &url, err)) ||
               (rc = get_str(a, img, p, "detail", &out->detail, err))) {
        return rc;
    }
    if (!split_data_uri(a, url, &out->media_type, &out->data))
        out->url = url; /* else the URL's copy stays unused in the arena */
    return PD_OK;
}

static pd_result parse_audio(pd_arena *a, const pd_jr_val *part, const char *base,
                             pd_chat_part *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *au = pd_jr_opt(part, "input_audio");
    path(p, sizeof p, base, "input_audio");
    if (!au)
        return missing(err, p);
    if (!pd_jr_is_object(au))
        return bad_type(err, p, "an object", au);
    pd_result rc = need_str(a, au, p, "data", &out->data, err);
    return rc ? rc : need_str(a, au, p, "format", &out->format, err);
}

static pd_result parse_file(pd_arena *a, const pd_jr_val *part, const char *base, pd_chat_part *out,
                            pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *f = pd_jr_opt(part, "file");
    path(p, sizeof p, base, "file");
    if (!f)
        return missing(err, p);
    if (!pd_jr_is_object(f))
        return bad_type(err, p, "an object", f);
    pd_result rc = get_str(a, f, p, "file_id", &out->file_id, err);
    if (!rc)
        rc = get_str(a, f, p, "filename", &out->filename, err);
    if (!rc)
        rc = get_str(a, f, p, "file_data", &out->data, err);
    return rc;
}

/* Part types each role may carry, as OpenAI lists them. */
static const char *allowed_parts(pd_chat_role role)
{
    switch (role) {
    case PD_ROLE_USER: return "'text', 'image_url', 'input_audio', 'file'";
    case PD_ROLE_ASSISTANT: return "'text', 'refusal'";
    default: return "'text'";
    }
}

static bool part_allowed(pd_chat_role role, pd_chat_part_kind kind)
{
    if (kind == PD_PART_TEXT)
        return true;
    if (role == PD_ROLE_USER)
        return kind == PD_PART_IMAGE || kind == PD_PART_AUDIO || kind == PD_PART_FILE;
    return role == PD_ROLE_ASSISTANT && kind == PD_PART_REFUSAL;
}

static const struct {
    const char *name;
    pd_chat_part_kind kind;
} part_kinds[] = {
    {"text", PD_PART_TEXT}, {"image_url", PD_PART_IMAGE}, {"input_audio", PD_PART_AUDIO},
    {"file", PD_PART_FILE}, {"refusal", PD_PART_REFUSAL},
};

static pd_result parse_part(pd_arena *a, const pd_jr_val *part, pd_chat_role role, const char *base,
                            pd_chat_part *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    if (!pd_jr_is_object(part))
        return bad_type(err, base, "an object", part);
    const pd_jr_val *type = pd_jr_opt(part, "type");
    if (!type)
        return missing(err, path(p, sizeof p, base, "type"));
    if (!pd_jr_is_string(type))
        return bad_type(err, path(p, sizeof p, base, "type"), "a string", type);
    size_t i = 0;
    while (i < sizeof part_kinds / sizeof *part_kinds && !pd_jr_eq(type, part_kinds[i].name))
        i++;
    if (i == sizeof part_kinds / sizeof *part_kinds || !part_allowed(role, part_kinds[i].kind))
        return bad(err, "invalid_value", path(p, sizeof p, base, "type"),
                   "Invalid value: '%.*s'. Supported values are: %s.", pd_jr_clip(type, 40),
                   type->u.s, allowed_parts(role));
    out->kind = part_kinds[i].kind;
    switch (out->kind) {
    case PD_PART_TEXT: return need_str(a, part, base, "text", &out->text, err);
    case PD_PART_REFUSAL: return need_str(a, part, base, "refusal", &out->text, err);
    case PD_PART_IMAGE: return parse_image(a, part, base, out, err);
    case PD_PART_AUDIO: return parse_audio(a, part, base, out, err);
    case PD_PART_FILE: return parse_file(a, part, base, out, err);
    }
    return PD_OK;
}

static pd_result parse_content(pd_arena *a, const pd_jr_val *m, const char *base,
                               pd_chat_message *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *c = pd_jr_get(m, "content");
    bool assistant = out->role == PD_ROLE_ASSISTANT;
    if (pd_jr_is_string(c)) { /* the common case first: no path to build */
        out->form = PD_CONTENT_STRING;
        out->parts = pd_chat_parse_held(pd_arena_calloc(a, 1, sizeof *out->parts));
        out->n_parts = 1;
        out->parts[0].kind = PD_PART_TEXT;
        out->parts[0].text = dup_str(a, c);
        return PD_OK;
    }
    path(p, sizeof p, base, "content");
    if (!c) {
        return assistant ? PD_OK : missing(err, p);
    } else if (pd_jr_is_null(c) && assistant) {
        out->form = PD_CONTENT_NULL;
    } else if (pd_jr_is_array(c)) {
        size_t n = c->n;
        if (n == 0)
            return bad(err, "invalid_value", p,
                       "Invalid '%s': empty array. Expected a string or a non-empty array of "
                       "content parts.",
                       p);
        out->form = PD_CONTENT_ARRAY;
        out->parts = pd_chat_parse_held(pd_arena_calloc(a, n, sizeof *out->parts));
        out->n_parts = n;
        const pd_jr_val *e = pd_jr_child(c);
        for (size_t i = 0; i < n; i++, e = pd_jr_next(e)) {
            char q[PATH_MAX_LEN];
            path_at(q, sizeof q, p, i);
            pd_result rc = parse_part(a, e, out->role, q, &out->parts[i], err);
            if (rc)
                return rc;
        }
    } else {
        return bad_type(err, p, "a string or an array of content parts", c);
    }
    return PD_OK;
}

/* ---- tool calls in assistant history ---- */

static pd_result parse_tool_call(pd_arena *a, const pd_jr_val *tc, const char *base,
                                 pd_chat_tool_call *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    if (!pd_jr_is_object(tc))
        return bad_type(err, base, "an object", tc);
    pd_result rc = need_str(a, tc, base, "id", &out->id, err);
    if (rc)
        return rc;
    const pd_jr_val *type = pd_jr_opt(tc, "type");
    if (type && !pd_jr_eq(type, "function") && !pd_jr_eq(type, "custom"))
        return bad(err, "invalid_value", path(p, sizeof p, base, "type"),
                   "Invalid value for '%s': supported values are 'function' and 'custom'.", p);
    out->kind = pd_jr_eq(type, "custom") ? PD_TOOL_CUSTOM : PD_TOOL_FUNCTION;
    const char *key = out->kind == PD_TOOL_CUSTOM ? "custom" : "function";
    const pd_jr_val *f = pd_jr_opt(tc, key);
    path(p, sizeof p, base, key);
    if (!f)
        return missing(err, p);
    if (!pd_jr_is_object(f))
        return bad_type(err, p, "an object", f);
    if ((rc = need_str(a, f, p, "name", &out->name, err)))
        return rc;
    if (out->kind == PD_TOOL_CUSTOM)
        return need_str(a, f, p, "input", &out->arguments, err);
    const pd_jr_val *args = pd_jr_opt(f, "arguments");
    size_t len;
    if (pd_jr_is_object(args)) /* not OpenAI's shape, but sent by some clients: keep it as text */
        out->arguments = pd_chat_parse_held(pd_jr_dump_in(a, args, &len));
    else if ((rc = need_str(a, f, p, "arguments", &out->arguments, err)))
        return rc;
    return PD_OK;
}

static pd_result parse_assistant_extras(pd_arena *a, const pd_jr_val *m, const char *base,
                                        pd_chat_message *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    pd_result rc = get_str(a, m, base, "refusal", &out->refusal, err);
    if (rc)
        return rc;
    /* not OpenAI fields (llama.cpp/vLLM, Ollama): taken when they are strings, never errors */
    out->reasoning = member_str(a, m, "reasoning_content");
    if (!out->reasoning)
        out->reasoning = member_str(a, m, "reasoning");
    const pd_jr_val *tcs = pd_jr_opt(m, "tool_calls");
    if (!tcs)
        return PD_OK;
    path(p, sizeof p, base, "tool_calls");
    if (!pd_jr_is_array(tcs))
        return bad_type(err, p, "an array", tcs);
    size_t n = tcs->n;
    out->tool_calls = pd_chat_parse_held(pd_arena_calloc(a, n, sizeof *out->tool_calls));
    out->n_tool_calls = n;
    const pd_jr_val *e = pd_jr_child(tcs);
    for (size_t i = 0; i < n; i++, e = pd_jr_next(e)) {
        char q[PATH_MAX_LEN];
        path_at(q, sizeof q, p, i);
        if ((rc = parse_tool_call(a, e, q, &out->tool_calls[i], err)))
            return rc;
    }
    return PD_OK;
}

static pd_result parse_role(const pd_jr_val *m, const char *base, pd_chat_role *out,
                            pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *r = pd_jr_opt(m, "role");
    if (r && pd_jr_is_string(r) && pd_chat_role_from_name(r->u.s, r->n, out))
        return PD_OK;
    path(p, sizeof p, base, "role"); /* only for an error */
    if (!r)
        return missing(err, p);
    if (!pd_jr_is_string(r))
        return bad_type(err, p, "a string", r);
    return bad(err, "invalid_value", p,
               "Invalid value for '%s': '%.*s'. Supported values are: 'system', 'developer', "
               "'user', 'assistant' and 'tool'.",
               p, pd_jr_clip(r, 40), r->u.s);
}

static pd_result parse_message(pd_arena *a, const pd_jr_val *m, size_t idx, pd_chat_message *out,
                               pd_api_error *err)
{
    char base[PATH_MAX_LEN];
    path_at(base, sizeof base, "messages", idx);
    if (!pd_jr_is_object(m))
        return bad_type(err, base, "an object", m);
    pd_result rc = parse_role(m, base, &out->role, err);
    if (!rc)
        rc = parse_content(a, m, base, out, err);
    if (!rc)
        rc = get_str(a, m, base, "name", &out->name, err);
    if (!rc && out->role == PD_ROLE_TOOL)
        rc = need_str(a, m, base, "tool_call_id", &out->tool_call_id, err);
    if (!rc && out->role == PD_ROLE_ASSISTANT)
        rc = parse_assistant_extras(a, m, base, out, err);
    return rc;
}

static pd_result parse_messages(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *msgs = pd_jr_opt(root, "messages");
    if (!msgs)
        return missing(err, "messages");
    if (!pd_jr_is_array(msgs))
        return bad_type(err, "messages", "an array", msgs);
    size_t n = msgs->n;
    if (n == 0)
        return bad(err, "invalid_value", "messages",
                   "Invalid 'messages': empty array. Expected at least one message.");
    r->messages = pd_chat_parse_held(pd_arena_calloc(&r->arena, n, sizeof *r->messages));
    r->n_messages = n;
    const pd_jr_val *m = pd_jr_child(msgs);
    for (size_t i = 0; i < n; i++, m = pd_jr_next(m)) {
        pd_result rc = parse_message(&r->arena, m, i, &r->messages[i], err);
        if (rc)
            return rc;
    }
    return PD_OK;
}

/* ---- tools, tool_choice, response_format ---- */

static pd_result parse_tool(pd_arena *a, const pd_jr_val *t, const char *base, pd_chat_tool *out,
                            pd_api_error *err)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    if (!pd_jr_is_object(t))
        return bad_type(err, base, "an object", t);
    const pd_jr_val *type = pd_jr_opt(t, "type");
    path(p, sizeof p, base, "type");
    if (!type)
        return missing(err, p);
    if (!pd_jr_eq(type, "function") && !pd_jr_eq(type, "custom"))
        return bad(err, "invalid_value", p,
                   "Invalid value for '%s': supported values are 'function' and 'custom'.", p);
    out->kind = pd_jr_eq(type, "custom") ? PD_TOOL_CUSTOM : PD_TOOL_FUNCTION;
    const char *key = out->kind == PD_TOOL_CUSTOM ? "custom" : "function";
    const char *schema_key = out->kind == PD_TOOL_CUSTOM ? "format" : "parameters";
    const pd_jr_val *f = pd_jr_opt(t, key);
    path(p, sizeof p, base, key);
    if (!f)
        return missing(err, p);
    if (!pd_jr_is_object(f))
        return bad_type(err, p, "an object", f);
    pd_result rc = need_str(a, f, p, "name", &out->name, err);
    if (!rc)
        rc = get_str(a, f, p, "description", &out->description, err);
    if (rc)
        return rc;
    const pd_jr_val *schema = pd_jr_opt(f, schema_key);
    if (schema && !pd_jr_is_object(schema))
        return bad_type(err, path(q, sizeof q, p, schema_key), "an object", schema);
    if (schema)
        out->parameters.text = pd_chat_parse_held(pd_jr_dump_in(a, schema, &out->parameters.len));
    const pd_jr_val *strict = pd_jr_opt(f, "strict");
    if (strict && !pd_jr_is_boolean(strict))
        return bad_type(err, path(q, sizeof q, p, "strict"), "a boolean", strict);
    if (strict)
        out->strict = pd_jr_is_true(strict) ? PD_TRI_TRUE : PD_TRI_FALSE;
    return PD_OK;
}

static pd_result parse_tools(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *tools = pd_jr_opt(root, "tools");
    if (!tools)
        return PD_OK;
    if (!pd_jr_is_array(tools))
        return bad_type(err, "tools", "an array", tools);
    size_t n = tools->n;
    r->tools = pd_chat_parse_held(pd_arena_calloc(&r->arena, n ? n : 1, sizeof *r->tools));
    r->n_tools = n;
    const pd_jr_val *t = pd_jr_child(tools);
    for (size_t i = 0; i < n; i++, t = pd_jr_next(t)) {
        char base[PATH_MAX_LEN];
        path_at(base, sizeof base, "tools", i);
        pd_result rc = parse_tool(&r->arena, t, base, &r->tools[i], err);
        if (rc)
            return rc;
    }
    return PD_OK;
}

/* {"type":"function","function":{"name":..}} or the custom equivalent: the tool's name. */
static pd_result named_tool(pd_arena *a, const pd_jr_val *o, const char *base,
                            pd_chat_tool_kind *kind, char **name, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    if (!pd_jr_is_object(o))
        return bad_type(err, base, "an object", o);
    const pd_jr_val *type = pd_jr_opt(o, "type");
    if (!pd_jr_eq(type, "function") && !pd_jr_eq(type, "custom"))
        return bad(err, "invalid_value", path(p, sizeof p, base, "type"),
                   "Invalid value for '%s': supported values are 'function' and 'custom'.", p);
    *kind = pd_jr_eq(type, "custom") ? PD_TOOL_CUSTOM : PD_TOOL_FUNCTION;
    const char *key = *kind == PD_TOOL_CUSTOM ? "custom" : "function";
    const pd_jr_val *f = pd_jr_opt(o, key);
    path(p, sizeof p, base, key);
    if (!f)
        return missing(err, p);
    if (!pd_jr_is_object(f))
        return bad_type(err, p, "an object", f);
    return need_str(a, f, p, "name", name, err);
}

static pd_result parse_allowed_tools(pd_arena *a, const pd_jr_val *choice, pd_chat_tool_choice *out,
                                     pd_api_error *err)
{
    const char *p = "tool_choice.allowed_tools";
    const pd_jr_val *at = pd_jr_opt(choice, "allowed_tools");
    if (!at)
        return missing(err, p);
    if (!pd_jr_is_object(at))
        return bad_type(err, p, "an object", at);
    const pd_jr_val *mode = pd_jr_opt(at, "mode"), *tools = pd_jr_opt(at, "tools");
    if (!pd_jr_eq(mode, "auto") && !pd_jr_eq(mode, "required"))
        return bad(err, "invalid_value", "tool_choice.allowed_tools.mode",
                   "Invalid value for 'tool_choice.allowed_tools.mode': supported values are "
                   "'auto' and 'required'.");
    out->kind = pd_jr_eq(mode, "auto") ? PD_TOOL_CHOICE_AUTO : PD_TOOL_CHOICE_REQUIRED;
    if (!tools)
        return missing(err, "tool_choice.allowed_tools.tools");
    if (!pd_jr_is_array(tools))
        return bad_type(err, "tool_choice.allowed_tools.tools", "an array", tools);
    size_t n = tools->n;
    out->allowed = pd_chat_parse_held(pd_arena_calloc(a, n ? n : 1, sizeof *out->allowed));
    out->n_allowed = n;
    const pd_jr_val *t = pd_jr_child(tools);
    for (size_t i = 0; i < n; i++, t = pd_jr_next(t)) {
        char base[PATH_MAX_LEN];
        pd_chat_tool_kind kind;
        path_at(base, sizeof base, "tool_choice.allowed_tools.tools", i);
        pd_result rc = named_tool(a, t, base, &kind, &out->allowed[i], err);
        if (rc)
            return rc;
    }
    return PD_OK;
}

static pd_result parse_tool_choice(pd_arena *a, const pd_jr_val *root, pd_chat_tool_choice *out,
                                   pd_api_error *err)
{
    const pd_jr_val *c = pd_jr_opt(root, "tool_choice");
    if (!c)
        return PD_OK;
    if (pd_jr_is_string(c)) {
        if (pd_jr_eq(c, "none"))
            out->kind = PD_TOOL_CHOICE_NONE;
        else if (pd_jr_eq(c, "auto"))
            out->kind = PD_TOOL_CHOICE_AUTO;
        else if (pd_jr_eq(c, "required"))
            out->kind = PD_TOOL_CHOICE_REQUIRED;
        else
            return bad(err, "invalid_value", "tool_choice",
                       "Invalid value: '%.*s'. Supported values are: 'none', 'auto' and "
                       "'required'.",
                       pd_jr_clip(c, 40), c->u.s);
        return PD_OK;
    }
    if (!pd_jr_is_object(c))
        return bad_type(err, "tool_choice", "a string or an object", c);
    if (pd_jr_eq(pd_jr_opt(c, "type"), "allowed_tools"))
        return parse_allowed_tools(a, c, out, err);
    out->kind = PD_TOOL_CHOICE_NAMED;
    return named_tool(a, c, "tool_choice", &out->tool_kind, &out->name, err);
}

static pd_result parse_schema_fields(pd_arena *a, const pd_jr_val *o, const char *base,
                                     pd_chat_response_format *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    pd_result rc = get_str(a, o, base, "name", &out->name, err);
    if (!rc)
        rc = get_str(a, o, base, "description", &out->description, err);
    if (rc)
        return rc;
    const pd_jr_val *schema = pd_jr_opt(o, "schema"), *strict = pd_jr_opt(o, "strict");
    if (schema && !pd_jr_is_object(schema))
        return bad_type(err, path(p, sizeof p, base, "schema"), "an object", schema);
    if (strict && !pd_jr_is_boolean(strict))
        return bad_type(err, path(p, sizeof p, base, "strict"), "a boolean", strict);
    if (schema)
        out->schema.text = pd_chat_parse_held(pd_jr_dump_in(a, schema, &out->schema.len));
    if (strict)
        out->strict = pd_jr_is_true(strict) ? PD_TRI_TRUE : PD_TRI_FALSE;
    return PD_OK;
}

static pd_result parse_response_format(pd_arena *a, const pd_jr_val *root,
                                       pd_chat_response_format *out, pd_api_error *err)
{
    const pd_jr_val *f = pd_jr_opt(root, "response_format");
    if (!f)
        return PD_OK;
    if (!pd_jr_is_object(f))
        return bad_type(err, "response_format", "an object", f);
    const pd_jr_val *type = pd_jr_opt(f, "type");
    if (!type)
        return missing(err, "response_format.type");
    if (pd_jr_eq(type, "text")) {
        out->kind = PD_FORMAT_TEXT;
        return PD_OK;
    }
    if (pd_jr_eq(type, "json_object")) { /* llama-server also takes a "schema" here */
        out->kind = PD_FORMAT_JSON_OBJECT;
        return parse_schema_fields(a, f, "response_format", out, err);
    }
    if (!pd_jr_eq(type, "json_schema"))
        return bad(err, "invalid_value", "response_format.type",
                   "Invalid value for 'response_format.type': supported values are 'text', "
                   "'json_object' and 'json_schema'.");
    out->kind = PD_FORMAT_JSON_SCHEMA;
    const pd_jr_val *js = pd_jr_opt(f, "json_schema");
    if (!js) /* llama-server's form: the schema directly in response_format */
        return parse_schema_fields(a, f, "response_format", out, err);
    if (!pd_jr_is_object(js))
        return bad_type(err, "response_format.json_schema", "an object", js);
    return parse_schema_fields(a, js, "response_format.json_schema", out, err);
}

/* ---- sampling and the rest ---- */

static pd_result parse_stop(pd_arena *a, const pd_jr_val *root, pd_chat_sampling *s,
                            pd_api_error *err)
{
    const pd_jr_val *stop = pd_jr_opt(root, "stop");
    if (!stop)
        return PD_OK;
    if (pd_jr_is_string(stop)) {
        s->stop = pd_chat_parse_held(pd_arena_calloc(a, 1, sizeof *s->stop));
        s->stop[0] = dup_str(a, stop);
        s->n_stop = 1;
        s->stop_is_string = true;
        return PD_OK;
    }
    if (!pd_jr_is_array(stop))
        return bad_type(err, "stop", "a string or an array of strings", stop);
    size_t n = stop->n;
    s->stop = pd_chat_parse_held(pd_arena_calloc(a, n ? n : 1, sizeof *s->stop));
    const pd_jr_val *v = pd_jr_child(stop);
    for (size_t i = 0; i < n; i++, v = pd_jr_next(v)) {
        if (!pd_jr_is_string(v)) {
            char p[PATH_MAX_LEN];
            path_at(p, sizeof p, "stop", i);
            return bad_type(err, p, "a string", v);
        }
        s->stop[i] = dup_str(a, v);
        s->n_stop = i + 1;
    }
    return PD_OK;
}

static pd_result parse_max_tokens(const pd_jr_val *root, pd_chat_sampling *s, pd_api_error *err)
{
    bool has_new = false, has_old = false;
    int64_t v_new = 0, v_old = 0;
    pd_result rc = get_int(root, "max_completion_tokens", 0, INT64_MAX, &has_new, &v_new, err);
    if (!rc)
        rc = get_int(root, "max_tokens", 0, INT64_MAX, &has_old, &v_old, err);
    if (rc)
        return rc;
    s->has_max_tokens = has_new || has_old;
    s->max_tokens = has_new ? v_new : v_old;
    s->max_tokens_legacy = !has_new && has_old;
    return PD_OK;
}

static pd_result parse_sampling(pd_arena *a, const pd_jr_val *root, pd_chat_sampling *s,
                                pd_api_error *err)
{
    pd_result rc = parse_max_tokens(root, s, err);
    if (!rc)
        rc = get_number(root, "temperature", 0, 2, &s->has_temperature, &s->temperature, err);
    if (!rc)
        rc = get_number(root, "top_p", 0, 1, &s->has_top_p, &s->top_p, err);
    if (!rc) /* vLLM takes -1 for "off"; the upstream checks the range */
        rc = get_int(root, "top_k", INT64_MIN, INT64_MAX, &s->has_top_k, &s->top_k, err);
    if (!rc)
        rc = get_number(root, "min_p", 0, 1, &s->has_min_p, &s->min_p, err);
    if (!rc)
        rc = get_int(root, "seed", INT64_MIN, INT64_MAX, &s->has_seed, &s->seed, err);
    if (!rc)
        rc = get_int(root, "n", 1, 128, &s->has_n, &s->n, err);
    if (!rc)
        rc = get_number(root, "presence_penalty", -2, 2, &s->has_presence_penalty,
                        &s->presence_penalty, err);
    if (!rc)
        rc = get_number(root, "frequency_penalty", -2, 2, &s->has_frequency_penalty,
                        &s->frequency_penalty, err);
    if (!rc)
        rc = get_tri(root, "logprobs", &s->logprobs, err);
    if (!rc)
        rc = get_int(root, "top_logprobs", 0, 20, &s->has_top_logprobs, &s->top_logprobs, err);
    if (!rc)
        rc = parse_stop(a, root, s, err);
    return rc;
}

static pd_result parse_stream(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    pd_chat_tri stream = PD_TRI_UNSET;
    pd_result rc = get_tri(root, "stream", &stream, err);
    if (rc)
        return rc;
    r->stream = stream == PD_TRI_TRUE;
    const pd_jr_val *so = pd_jr_opt(root, "stream_options");
    if (!so)
        return PD_OK;
    if (!pd_jr_is_object(so))
        return bad_type(err, "stream_options", "an object", so);
    const pd_jr_val *iu = pd_jr_opt(so, "include_usage");
    if (iu && !pd_jr_is_boolean(iu))
        return bad_type(err, "stream_options.include_usage", "a boolean", iu);
    if (iu)
        r->include_usage = pd_jr_is_true(iu) ? PD_TRI_TRUE : PD_TRI_FALSE;
    return PD_OK;
}

static pd_result parse_model(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *m = pd_jr_opt(root, "model");
    if (!m || (pd_jr_is_string(m) && m->n == 0))
        return missing(err, "model");
    if (!pd_jr_is_string(m))
        return bad_type(err, "model", "a string", m);
    r->model = dup_str(&r->arena, m);
    return PD_OK;
}

static pd_result parse_root(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    pd_arena *a = &r->arena;
    pd_result rc = parse_model(root, r, err);
    if (!rc)
        rc = parse_messages(root, r, err);
    if (!rc)
        rc = parse_tools(root, r, err);
    if (!rc)
        rc = parse_tool_choice(&r->arena, root, &r->tool_choice, err);
    if (!rc)
        rc = get_tri(root, "parallel_tool_calls", &r->parallel_tool_calls, err);
    if (!rc)
        rc = parse_sampling(&r->arena, root, &r->sampling, err);
    if (!rc)
        rc = parse_response_format(&r->arena, root, &r->response_format, err);
    if (!rc)
        rc = parse_stream(root, r, err);
    if (!rc)
        rc = get_str(a, root, "", "user", &r->user, err);
    if (!rc)
        rc = get_str(a, root, "", "reasoning_effort", &r->reasoning_effort, err);
    return rc;
}

#define REQUEST_NODES 256    /* on the stack: a 2-3 KB agent turn has ~150 values */
#define REQUEST_SCRATCH 4096 /* on the stack: escaped strings of bodies up to 4 KB */

/* The body is not JSON (the reader rejects exactly what json_loadb rejects): jansson says
   where and why, in the message clients have always had. */
static pd_result not_json(const char *body, size_t len, pd_api_error *err)
{
    char why[256];
    pd_jr_why_invalid(body, len, why, sizeof why);
    return bad(err, NULL, NULL, "body is not valid JSON: %s", why);
}

pd_result pd_openai_parse_chat_request(const char *body, size_t len, pd_chat_request *out,
                                       pd_api_error *err)
{
    memset(err, 0, sizeof *err);
    pd_chat_request_init(out);
    /* Too deep is said before not JSON (the order clients have always seen): the nesting
       of a valid body is known from the reader; an invalid one is counted as before. */
    pd_jr_doc doc;
    pd_jr_val nodes[REQUEST_NODES];
    char scratch[REQUEST_SCRATCH];
    pd_jr_mem mem = {nodes, REQUEST_NODES, scratch, sizeof scratch};
    pd_result rc = pd_jr_parse_in(&doc, body, len, &mem);
    if (rc ? !pd_jr_text_depth_ok(body, len, PD_OPENAI_MAX_DEPTH)
           : doc.depth > PD_OPENAI_MAX_DEPTH) {
        pd_jr_free(&doc);
        return bad(err, NULL, NULL, "body is not valid JSON: nested deeper than %d levels",
                   PD_OPENAI_MAX_DEPTH);
    }
    if (rc)
        return not_json(body, len, err);
    const pd_jr_val *root = pd_jr_root(&doc);
    if (!pd_jr_is_object(root)) {
        rc = bad(err, NULL, NULL, "body must be a JSON object, not %s", kind_desc(root));
        pd_jr_free(&doc);
        return rc;
    }
    pd_chat_request_arena(out, len);
    rc = parse_root(root, out, err);
    pd_jr_free(&doc);
    if (rc)
        pd_chat_request_free(out);
    else
        out->raw = (pd_chat_json){pd_chat_parse_held(pd_arena_strndup(&out->arena, body, len)), len};
    return rc;
}

/* ==== request writing =================================================================== */

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void write_image(pd_jw *w, const pd_chat_part *p)
{
    pd_jw_key(w, "image_url");
    pd_jw_open(w, '{');
    pd_jw_key(w, "url");
    if (p->url) {
        pd_jw_str(w, p->url);
    } else { /* the data: URI the client sent, rebuilt without copying the payload */
        const char *mt = p->media_type ? p->media_type : "application/octet-stream";
        pd_jw_sep(w);
        pd_jw_raw(w, "\"data:", 6);
        pd_jw_escape(w, mt, strlen(mt));
        pd_jw_raw(w, ";base64,", 8);
        pd_jw_escape(w, nz(p->data), strlen(nz(p->data)));
        pd_jw_raw(w, "\"", 1);
    }
    pd_jw_kv(w, "detail", p->detail);
    pd_jw_close(w, '}');
}

static void write_part(pd_jw *w, const pd_chat_part *p)
{
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    switch (p->kind) {
    case PD_PART_TEXT:
        pd_jw_code_str(w, "text");
        pd_jw_key(w, "text");
        pd_jw_str(w, nz(p->text));
        break;
    case PD_PART_REFUSAL:
        pd_jw_code_str(w, "refusal");
        pd_jw_key(w, "refusal");
        pd_jw_str(w, nz(p->text));
        break;
    case PD_PART_IMAGE:
        pd_jw_code_str(w, "image_url");
        write_image(w, p);
        break;
    case PD_PART_AUDIO:
        pd_jw_code_str(w, "input_audio");
        pd_jw_key(w, "input_audio");
        pd_jw_open(w, '{');
        pd_jw_key(w, "data");
        pd_jw_str(w, nz(p->data));
        pd_jw_key(w, "format");
        pd_jw_str(w, nz(p->format));
        pd_jw_close(w, '}');
        break;
    case PD_PART_FILE:
        pd_jw_code_str(w, "file");
        pd_jw_key(w, "file");
        pd_jw_open(w, '{');
        pd_jw_kv(w, "file_id", p->file_id);
        pd_jw_kv(w, "filename", p->filename);
        pd_jw_kv(w, "file_data", p->data);
        pd_jw_close(w, '}');
        break;
    }
    pd_jw_close(w, '}');
}

static void write_request_content(pd_jw *w, const pd_chat_message *m)
{
    pd_jw_key(w, "content");
    if (m->n_parts == 0) {
        if (m->role == PD_ROLE_ASSISTANT)
            pd_jw_null(w);
        else
            pd_jw_code_str(w, "");
    } else if (m->n_parts == 1 && m->parts[0].kind == PD_PART_TEXT && m->form != PD_CONTENT_ARRAY) {
        pd_jw_str(w, nz(m->parts[0].text));
    } else {
        pd_jw_open(w, '[');
        for (size_t i = 0; i < m->n_parts; i++)
            write_part(w, &m->parts[i]);
        pd_jw_close(w, ']');
    }
}

static void write_tool_call(pd_jw *w, const pd_chat_tool_call *tc)
{
    bool custom = tc->kind == PD_TOOL_CUSTOM;
    pd_jw_open(w, '{');
    pd_jw_kv(w, "id", tc->id);
    pd_jw_key(w, "type");
    pd_jw_code_str(w, custom ? "custom" : "function");
    pd_jw_key(w, custom ? "custom" : "function");
    pd_jw_open(w, '{');
    pd_jw_key(w, "name");
    pd_jw_str(w, nz(tc->name));
    pd_jw_key(w, custom ? "input" : "arguments");
    pd_jw_str(w, nz(tc->arguments));
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

static void write_tool_calls(pd_jw *w, const pd_chat_message *m)
{
    if (!m->n_tool_calls)
        return;
    pd_jw_key(w, "tool_calls");
    pd_jw_open(w, '[');
    for (size_t i = 0; i < m->n_tool_calls; i++)
        write_tool_call(w, &m->tool_calls[i]);
    pd_jw_close(w, ']');
}

static void write_request_message(pd_jw *w, const pd_chat_message *m)
{
    pd_jw_open(w, '{');
    pd_jw_key(w, "role");
    pd_jw_code_str(w, pd_chat_role_name(m->role));
    write_request_content(w, m);
    pd_jw_kv(w, "name", m->name);
    write_tool_calls(w, m);
    pd_jw_kv(w, "tool_call_id", m->tool_call_id);
    pd_jw_kv(w, "refusal", m->refusal);
    pd_jw_close(w, '}');
}

static void write_tool(pd_jw *w, const pd_chat_tool *t)
{
    bool custom = t->kind == PD_TOOL_CUSTOM;
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_code_str(w, custom ? "custom" : "function");
    pd_jw_key(w, custom ? "custom" : "function");
    pd_jw_open(w, '{');
    pd_jw_key(w, "name");
    pd_jw_str(w, nz(t->name));
    pd_jw_kv(w, "description", t->description);
    if (t->parameters.text) {
        pd_jw_key(w, custom ? "format" : "parameters");
        pd_jw_text(w, &t->parameters);
    }
    pd_jw_tri(w, "strict", t->strict);
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

/* {"type":"function","function":{"name":..}} (or custom) */
static void write_named_tool(pd_jw *w, pd_chat_tool_kind kind, const char *name)
{
    const char *key = kind == PD_TOOL_CUSTOM ? "custom" : "function";
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_str(w, key);
    pd_jw_key(w, key);
    pd_jw_open(w, '{');
    pd_jw_key(w, "name");
    pd_jw_str(w, nz(name));
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

static pd_chat_tool_kind tool_kind_of(const pd_chat_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_tools; i++)
        if (r->tools[i].name && name && strcmp(r->tools[i].name, name) == 0)
            return r->tools[i].kind;
    return PD_TOOL_FUNCTION;
}

static void write_tool_choice(pd_jw *w, const pd_chat_request *r)
{
    const pd_chat_tool_choice *c = &r->tool_choice;
    if (c->kind == PD_TOOL_CHOICE_UNSET)
        return;
    pd_jw_key(w, "tool_choice");
    bool limited =
        c->allowed && (c->kind == PD_TOOL_CHOICE_AUTO || c->kind == PD_TOOL_CHOICE_REQUIRED);
    if (c->kind == PD_TOOL_CHOICE_NAMED) {
        write_named_tool(w, c->tool_kind, c->name);
    } else if (limited) {
        pd_jw_open(w, '{');
        pd_jw_key(w, "type");
        pd_jw_code_str(w, "allowed_tools");
        pd_jw_key(w, "allowed_tools");
        pd_jw_open(w, '{');
        pd_jw_key(w, "mode");
        pd_jw_code_str(w, c->kind == PD_TOOL_CHOICE_AUTO ? "auto" : "required");
        pd_jw_key(w, "tools");
        pd_jw_open(w, '[');
        for (size_t i = 0; i < c->n_allowed; i++)
            write_named_tool(w, tool_kind_of(r, c->allowed[i]), c->allowed[i]);
        pd_jw_close(w, ']');
        pd_jw_close(w, '}');
        pd_jw_close(w, '}');
    } else {
        pd_jw_str(w, c->kind == PD_TOOL_CHOICE_NONE   ? "none"
                  : c->kind == PD_TOOL_CHOICE_AUTO ? "auto"
                                                   : "required");
    }
}

static void write_response_format(pd_jw *w, const pd_chat_response_format *f)
{
    if (f->kind == PD_FORMAT_UNSET)
        return;
    pd_jw_key(w, "response_format");
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    if (f->kind == PD_FORMAT_TEXT) {
        pd_jw_code_str(w, "text");
    } else if (f->kind == PD_FORMAT_JSON_OBJECT) {
        pd_jw_code_str(w, "json_object");
        if (f->schema.text) { /* llama-server's extension */
            pd_jw_key(w, "schema");
            pd_jw_text(w, &f->schema);
        }
    } else {
        pd_jw_code_str(w, "json_schema");
        pd_jw_key(w, "json_schema");
        pd_jw_open(w, '{');
        pd_jw_kv(w, "name", f->name);
        pd_jw_kv(w, "description", f->description);
        if (f->schema.text) {
            pd_jw_key(w, "schema");
            pd_jw_text(w, &f->schema);
        }
        pd_jw_tri(w, "strict", f->strict);
        pd_jw_close(w, '}');
    }
    pd_jw_close(w, '}');
}

static void write_sampling(pd_jw *w, const pd_chat_sampling *s)
{
    pd_jw_kint(w, s->max_tokens_legacy ? "max_tokens" : "max_completion_tokens", s->has_max_tokens,
            s->max_tokens);
    pd_jw_kreal(w, "temperature", s->has_temperature, s->temperature);
    pd_jw_kreal(w, "top_p", s->has_top_p, s->top_p);
    pd_jw_kint(w, "top_k", s->has_top_k, s->top_k);
    pd_jw_kreal(w, "min_p", s->has_min_p, s->min_p);
    pd_jw_kint(w, "n", s->has_n, s->n);
    if (s->stop && s->stop_is_string && s->n_stop == 1) {
        pd_jw_key(w, "stop");
        pd_jw_str(w, nz(s->stop[0]));
    } else if (s->stop) {
        pd_jw_key(w, "stop");
        pd_jw_open(w, '[');
        for (size_t i = 0; i < s->n_stop; i++)
            pd_jw_str(w, nz(s->stop[i]));
        pd_jw_close(w, ']');
    }
    pd_jw_kint(w, "seed", s->has_seed, s->seed);
    pd_jw_kreal(w, "presence_penalty", s->has_presence_penalty, s->presence_penalty);
    pd_jw_kreal(w, "frequency_penalty", s->has_frequency_penalty, s->frequency_penalty);
    pd_jw_tri(w, "logprobs", s->logprobs);
    pd_jw_kint(w, "top_logprobs", s->has_top_logprobs, s->top_logprobs);
}

pd_result pd_openai_write_chat_request(const pd_chat_request *r, pd_buf *out)
{
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "model");
    pd_jw_str(&w, nz(r->model));
    pd_jw_key(&w, "messages");
    pd_jw_open(&w, '[');
    for (size_t i = 0; i < r->n_messages; i++)
        write_request_message(&w, &r->messages[i]);
    pd_jw_close(&w, ']');
    if (r->n_tools) {
        pd_jw_key(&w, "tools");
        pd_jw_open(&w, '[');
        for (size_t i = 0; i < r->n_tools; i++)
            write_tool(&w, &r->tools[i]);
        pd_jw_close(&w, ']');
    }
    write_tool_choice(&w, r);
    pd_jw_tri(&w, "parallel_tool_calls", r->parallel_tool_calls);
    write_response_format(&w, &r->response_format);
    write_sampling(&w, &r->sampling);
    pd_jw_kv(&w, "reasoning_effort", r->reasoning_effort);
    pd_jw_kv(&w, "user", r->user);
    if (r->stream) {
        pd_jw_key(&w, "stream");
        pd_jw_bool(&w, true);
        if (r->include_usage != PD_TRI_UNSET) {
            pd_jw_key(&w, "stream_options");
            pd_jw_open(&w, '{');
            pd_jw_tri(&w, "include_usage", r->include_usage);
            pd_jw_close(&w, '}');
        }
    }
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ==== responses ========================================================================= */

static const struct {
    const char *name;
    pd_chat_finish finish;
} finishes[] = {
    {"stop", PD_FINISH_STOP},
    {"length", PD_FINISH_LENGTH},
    {"tool_calls", PD_FINISH_TOOL_CALLS},
    {"content_filter", PD_FINISH_CONTENT_FILTER},
    {"function_call", PD_FINISH_TOOL_CALLS}, /* deprecated spelling of the same thing */
    {"error", PD_FINISH_ERROR},
};

static pd_chat_finish finish_named(const char *name)
{
    for (size_t i = 0; i < sizeof finishes / sizeof *finishes; i++)
        if (strcmp(finishes[i].name, name) == 0)
            return finishes[i].finish;
    return PD_FINISH_UNKNOWN;
}

static pd_chat_finish finish_from(const json_t *v)
{
    if (!v || json_is_null(v))
        return PD_FINISH_NONE;
    return json_is_string(v) ? finish_named(json_string_value(v)) : PD_FINISH_UNKNOWN;
}

/* OpenAI's name for f, or NULL (written as null) when OpenAI has none. */
static const char *finish_to_openai(pd_chat_finish f)
{
    switch (f) {
    case PD_FINISH_STOP: return "stop";
    case PD_FINISH_LENGTH: return "length";
    case PD_FINISH_TOOL_CALLS: return "tool_calls";
    case PD_FINISH_CONTENT_FILTER: return "content_filter";
    default: return NULL;
    }
}

static int64_t count(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e18)
        return (int64_t)json_real_value(v);
    return PD_CHAT_COUNT_UNKNOWN;
}

static void read_usage(const json_t *u, pd_chat_usage *out)
{
    pd_chat_usage_init(out);
    if (!json_is_object(u))
        return;
    out->prompt_tokens = count(u, "prompt_tokens");
    out->completion_tokens = count(u, "completion_tokens");
    out->total_tokens = count(u, "total_tokens");
    const json_t *pd = json_object_get(u, "prompt_tokens_details");
    out->cached_tokens = count(pd, "cached_tokens");
    out->cache_write_tokens = count(pd, "cache_write_tokens");
    out->reasoning_tokens =
        count(json_object_get(u, "completion_tokens_details"), "reasoning_tokens");
}

/* A non-empty string member as a new string, else NULL. */
static char *opt_text(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) ? dup_json_str(v) : NULL;
}

static void read_content(const json_t *c, pd_chat_message *m)
{
    if (json_is_null(c)) {
        m->form = PD_CONTENT_NULL;
    } else if (json_is_string(c)) {
        m->form = PD_CONTENT_STRING;
        m->parts = pd_xcalloc(1, sizeof *m->parts);
        m->parts[0].text = dup_json_str(c);
        m->n_parts = 1;
    } else if (json_is_array(c)) {
        m->form = PD_CONTENT_ARRAY;
        m->parts = pd_xcalloc(json_array_size(c) + 1, sizeof *m->parts);
        size_t i;
        const json_t *p;
        json_array_foreach(c, i, p)
        {
            const json_t *text = json_object_get(p, "text"), *ref = json_object_get(p, "refusal");
            pd_chat_part *dst = &m->parts[m->n_parts];
            if (json_is_string(text)) {
                dst->kind = PD_PART_TEXT;
                dst->text = dup_json_str(text);
                m->n_parts++;
            } else if (json_is_string(ref)) {
                dst->kind = PD_PART_REFUSAL;
                dst->text = dup_json_str(ref);
                m->n_parts++;
            }
        }
    }
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
        pd_chat_tool_call *dst = &m->tool_calls[m->n_tool_calls++];
        bool custom = str_eq(json_object_get(tc, "type"), "custom");
        const json_t *f = json_object_get(tc, custom ? "custom" : "function");
        const json_t *args = json_object_get(f, custom ? "input" : "arguments");
        dst->kind = custom ? PD_TOOL_CUSTOM : PD_TOOL_FUNCTION;
        dst->id = opt_str(tc, "id");
        dst->name = opt_str(f, "name");
        if (!dst->name)
            dst->name = pd_xstrdup("");
        if (json_is_string(args))
            dst->arguments = dup_json_str(args);
        else if (json_is_object(args) || json_is_array(args)) /* Ollama-style objects */
            dst->arguments = pd_jw_dump(args);
        else
            dst->arguments = pd_xstrdup("");
    }
}

static void read_message(const json_t *jm, pd_chat_message *m)
{
    const json_t *role = json_object_get(jm, "role");
    m->role = PD_ROLE_ASSISTANT;
    if (json_is_string(role))
        pd_chat_role_from_name(json_string_value(role), json_string_length(role), &m->role);
    read_content(json_object_get(jm, "content"), m);
    m->name = opt_text(jm, "name");
    m->refusal = opt_text(jm, "refusal");
    m->reasoning = opt_text(jm, "reasoning_content");
    if (!m->reasoning)
        m->reasoning = opt_text(jm, "reasoning");
    read_tool_calls(json_object_get(jm, "tool_calls"), m);
}

static void read_choice(const json_t *c, size_t pos, pd_chat_choice *out)
{
    const json_t *idx = json_object_get(c, "index"), *lp = json_object_get(c, "logprobs");
    out->index = json_is_integer(idx) && json_integer_value(idx) >= 0 &&
                         json_integer_value(idx) <= UINT32_MAX
                     ? (uint32_t)json_integer_value(idx)
                     : (uint32_t)pos;
    out->message.role = PD_ROLE_ASSISTANT;
    if (json_is_object(json_object_get(c, "message")))
        read_message(json_object_get(c, "message"), &out->message);
    out->finish = finish_from(json_object_get(c, "finish_reason"));
    if (lp && !json_is_null(lp))
        out->logprobs = json_incref((json_t *)lp);
}

pd_result pd_openai_parse_chat_response(const char *body, size_t len, pd_chat_response *out)
{
    pd_chat_response_init(out);
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *choices = json_object_get(root, "choices");
    if (!json_is_object(root) || !json_is_array(choices)) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    const json_t *created = json_object_get(root, "created");
    out->id = opt_str(root, "id");
    out->model = opt_str(root, "model");
    out->system_fingerprint = opt_str(root, "system_fingerprint");
    out->created = json_is_integer(created) ? json_integer_value(created) : 0;
    size_t n = json_array_size(choices);
    out->choices = pd_xcalloc(n ? n : 1, sizeof *out->choices);
    out->n_choices = n;
    for (size_t i = 0; i < n; i++)
        read_choice(json_array_get(choices, i), i, &out->choices[i]);
    read_usage(json_object_get(root, "usage"), &out->usage);
    json_decref(root);
    return PD_OK;
}

static void write_usage(pd_jw *w, const pd_chat_usage *u)
{
    int64_t p = u->prompt_tokens >= 0 ? u->prompt_tokens : 0;
    int64_t c = u->completion_tokens >= 0 ? u->completion_tokens : 0;
    pd_jw_open(w, '{');
    pd_jw_key(w, "prompt_tokens");
    pd_jw_int(w, p);
    pd_jw_key(w, "completion_tokens");
    pd_jw_int(w, c);
    pd_jw_key(w, "total_tokens");
    pd_jw_int(w, u->total_tokens >= 0 ? u->total_tokens : p + c);
    if (u->cached_tokens >= 0 || u->cache_write_tokens >= 0) {
        pd_jw_key(w, "prompt_tokens_details");
        pd_jw_open(w, '{');
        pd_jw_kint(w, "cached_tokens", u->cached_tokens >= 0, u->cached_tokens);
        pd_jw_kint(w, "cache_write_tokens", u->cache_write_tokens >= 0, u->cache_write_tokens);
        pd_jw_close(w, '}');
    }
    if (u->reasoning_tokens >= 0) {
        pd_jw_key(w, "completion_tokens_details");
        pd_jw_open(w, '{');
        pd_jw_kint(w, "reasoning_tokens", true, u->reasoning_tokens);
        pd_jw_close(w, '}');
    }
    pd_jw_close(w, '}');
}

/* The text parts joined into one string, or null when there is none. */
static void write_joined_text(pd_jw *w, const pd_chat_message *m)
{
    bool any = false;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i].kind != PD_PART_TEXT)
            continue;
        if (!any) {
            pd_jw_sep(w);
            pd_jw_raw(w, "\"", 1);
            any = true;
        }
        pd_jw_escape(w, nz(m->parts[i].text), strlen(nz(m->parts[i].text)));
    }
    if (any)
        pd_jw_raw(w, "\"", 1);
    else
        pd_jw_null(w);
}

static void write_response_message(pd_jw *w, const pd_chat_message *m)
{
    pd_jw_open(w, '{');
    pd_jw_key(w, "role");
    pd_jw_code_str(w, pd_chat_role_name(m->role));
    pd_jw_key(w, "content");
    write_joined_text(w, m);
    pd_jw_kv(w, "refusal", m->refusal);
    pd_jw_kv(w, "reasoning_content", m->reasoning);
    write_tool_calls(w, m);
    pd_jw_close(w, '}');
}

pd_result pd_openai_write_chat_response(const pd_chat_response *r, pd_buf *out)
{
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "id");
    pd_jw_str(&w, nz(r->id));
    pd_jw_key(&w, "object");
    pd_jw_code_str(&w, "chat.completion");
    pd_jw_key(&w, "created");
    pd_jw_int(&w, r->created);
    pd_jw_key(&w, "model");
    pd_jw_str(&w, nz(r->model));
    pd_jw_kv(&w, "system_fingerprint", r->system_fingerprint);
    pd_jw_key(&w, "choices");
    pd_jw_open(&w, '[');
    for (size_t i = 0; i < r->n_choices; i++) {
        const pd_chat_choice *c = &r->choices[i];
        pd_jw_open(&w, '{');
        pd_jw_key(&w, "index");
        pd_jw_int(&w, c->index);
        pd_jw_key(&w, "message");
        write_response_message(&w, &c->message);
        pd_jw_key(&w, "logprobs");
        if (c->logprobs)
            pd_jw_json(&w, c->logprobs);
        else
            pd_jw_null(&w);
        pd_jw_key(&w, "finish_reason");
        pd_jw_str(&w, finish_to_openai(c->finish));
        pd_jw_close(&w, '}');
    }
    pd_jw_close(&w, ']');
    if (pd_chat_usage_known(&r->usage)) {
        pd_jw_key(&w, "usage");
        write_usage(&w, &r->usage);
    }
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ==== stream decoding =================================================================== */

void pd_openai_decoder_init(pd_openai_decoder *d)
{
    memset(d, 0, sizeof *d);
}

static uint32_t id_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h ? h : 1; /* 0 means "no id" */
}

/* Decides which canonical call a tool-call fragment belongs to and whether it starts one (see
   pd_openai_decode_chunk for the rules). */
static uint32_t route_tool(pd_openai_decoder *d, uint32_t choice, const json_t *tc, const char *id,
                           bool has_name, bool *start)
{
    const json_t *ji = json_object_get(tc, "index");
    bool has_up =
        json_is_integer(ji) && json_integer_value(ji) >= 0 && json_integer_value(ji) <= UINT32_MAX;
    uint32_t up = has_up ? (uint32_t)json_integer_value(ji) : 0;
    if (choice >= PD_OPENAI_DECODER_CHOICES) { /* untracked: trust the upstream */
        *start = id || has_name;
        return up;
    }
    pd_openai_decoder_choice *st = &d->choices[choice];
    int mapped = has_up && up < PD_OPENAI_DECODER_TOOLS && st->by_upstream[up]
                     ? st->by_upstream[up] - 1
                     : -1;
    int64_t target = mapped >= 0 ? mapped : st->started ? (int64_t)st->last : -1;
    uint32_t h = id ? id_hash(id) : 0;
    if (id)
        *start = target < 0 || target >= PD_OPENAI_DECODER_TOOLS || st->id_hash[target] != h;
    else
        *start = has_name && mapped < 0;
    if (!*start)
        return target >= 0 ? (uint32_t)target : up;
    uint32_t canon = st->started++;
    if (has_up && up < PD_OPENAI_DECODER_TOOLS && canon < 255)
        st->by_upstream[up] = (uint8_t)(canon + 1);
    if (canon < PD_OPENAI_DECODER_TOOLS)
        st->id_hash[canon] = h;
    st->last = canon;
    return canon;
}

static pd_result emit(const pd_chat_event *ev, pd_chat_event_cb cb, void *ud)
{
    return cb(ud, ev) ? PD_ERR_CLOSED : PD_OK;
}

/* Delivers a text-like event when s is a non-empty string. */
static pd_result emit_text(const pd_chat_event *base, pd_chat_event_kind kind, const json_t *s,
                           pd_chat_event_cb cb, void *ud)
{
    if (!json_is_string(s) || json_string_length(s) == 0)
        return PD_OK;
    pd_chat_event ev = *base;
    ev.kind = kind;
    ev.text = json_string_value(s);
    ev.text_len = json_string_length(s);
    return emit(&ev, cb, ud);
}

/* TEXT with the choice's logprobs (lp, or NULL). A fragment whose text is empty is still
   delivered when its logprobs list tokens: a token may complete no character yet. */
static pd_result emit_content(const pd_chat_event *base, const json_t *s, const json_t *lp,
                              pd_chat_event_cb cb, void *ud)
{
    pd_chat_event ev = *base;
    ev.logprobs = lp;
    if (!json_is_string(s) || json_string_length(s) > 0 ||
        json_array_size(json_object_get(lp, "content")) == 0)
        return emit_text(&ev, PD_EVENT_TEXT, s, cb, ud);
    ev.kind = PD_EVENT_TEXT;
    ev.text = "";
    ev.text_len = 0;
    return emit(&ev, cb, ud);
}

static pd_result decode_tool_call(pd_openai_decoder *d, const pd_chat_event *base, const json_t *tc,
                                  pd_chat_event_cb cb, void *ud)
{
    bool custom = str_eq(json_object_get(tc, "type"), "custom");
    const json_t *f = json_object_get(tc, custom ? "custom" : "function");
    const json_t *jid = json_object_get(tc, "id"), *jname = json_object_get(f, "name");
    const json_t *args = json_object_get(f, custom ? "input" : "arguments");
    const char *id = json_is_string(jid) && json_string_length(jid) ? json_string_value(jid) : NULL;
    bool has_name = json_is_string(jname) && json_string_length(jname);
    bool start;
    pd_chat_event ev = *base;
    ev.tool_index = route_tool(d, base->choice, tc, id, has_name, &start);
    pd_result rc = PD_OK;
    if (start) {
        ev.kind = PD_EVENT_TOOL_START;
        ev.tool_id = id;
        ev.tool_name = has_name ? json_string_value(jname) : "";
        rc = emit(&ev, cb, ud);
        ev.tool_id = ev.tool_name = NULL;
    }
    if (!rc && (json_is_object(args) || json_is_array(args))) { /* whole arguments as JSON */
        char *s = pd_jw_dump(args);
        ev.kind = PD_EVENT_TOOL_ARGS;
        ev.text = s;
        ev.text_len = strlen(s);
        rc = emit(&ev, cb, ud);
        free(s);
    } else if (!rc) {
        rc = emit_text(&ev, PD_EVENT_TOOL_ARGS, args, cb, ud);
    }
    return rc;
}

static pd_result decode_delta(pd_openai_decoder *d, const pd_chat_event *base, const json_t *delta,
                              const json_t *lp, pd_chat_event_cb cb, void *ud)
{
    const json_t *role = json_object_get(delta, "role");
    pd_result rc = PD_OK;
    if (json_is_string(role)) {
        pd_chat_event ev = *base;
        ev.kind = PD_EVENT_ROLE;
        ev.role = PD_ROLE_ASSISTANT;
        pd_chat_role_from_name(json_string_value(role), json_string_length(role), &ev.role);
        rc = emit(&ev, cb, ud);
    }
    const json_t *reasoning = json_object_get(delta, "reasoning_content");
    if (!json_is_string(reasoning))
        reasoning = json_object_get(delta, "reasoning");
    if (!rc)
        rc = emit_text(base, PD_EVENT_REASONING, reasoning, cb, ud);
    if (!rc)
        rc = emit_content(base, json_object_get(delta, "content"), lp, cb, ud);
    if (!rc)
        rc = emit_text(base, PD_EVENT_REFUSAL, json_object_get(delta, "refusal"), cb, ud);
    size_t i;
    const json_t *tc;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, tc)
    {
        if (!rc && json_is_object(tc))
            rc = decode_tool_call(d, base, tc, cb, ud);
    }
    return rc;
}

static pd_result decode_choice(pd_openai_decoder *d, const pd_chat_event *base, const json_t *c,
                               size_t pos, pd_chat_event_cb cb, void *ud)
{
    if (!json_is_object(c))
        return PD_OK;
    pd_chat_event b = *base;
    const json_t *idx = json_object_get(c, "index"), *fr = json_object_get(c, "finish_reason");
    b.choice = json_is_integer(idx) && json_integer_value(idx) >= 0 &&
                       json_integer_value(idx) <= UINT32_MAX
                   ? (uint32_t)json_integer_value(idx)
                   : (uint32_t)pos;
    const json_t *delta = json_object_get(c, "delta");
    const json_t *lp = json_object_get(c, "logprobs");
    pd_result rc = json_is_object(delta)
                       ? decode_delta(d, &b, delta, json_is_object(lp) ? lp : NULL, cb, ud)
                       : PD_OK;
    if (!rc && fr && !json_is_null(fr)) {
        b.kind = PD_EVENT_FINISH;
        b.finish = finish_from(fr);
        rc = emit(&b, cb, ud);
    }
    return rc;
}

static pd_result decode_root(pd_openai_decoder *d, const json_t *root, pd_chat_event *base,
                             pd_chat_event_cb cb, void *ud)
{
    const json_t *choices = json_object_get(root, "choices"), *e = json_object_get(root, "error");
    pd_api_error err;
    memset(&err, 0, sizeof err);
    if ((json_is_object(e) || json_is_string(e) || !json_is_array(choices)) &&
        error_from_json(root, 0, &err)) {
        base->kind = PD_EVENT_ERROR;
        base->error_status = err.status;
        base->error_type = err.type;
        base->error_code = err.code;
        base->text = err.message;
        base->text_len = strlen(err.message);
        return emit(base, cb, ud);
    }
    size_t i;
    const json_t *c;
    pd_result rc = PD_OK;
    json_array_foreach(choices, i, c)
    {
        if (!rc)
            rc = decode_choice(d, base, c, i, cb, ud);
    }
    const json_t *usage = json_object_get(root, "usage");
    if (!rc && json_is_object(usage)) {
        base->kind = PD_EVENT_USAGE;
        read_usage(usage, &base->usage);
        rc = emit(base, cb, ud);
    }
    return rc;
}

/* The common chunk without jansson (proto/fastev.h): text, with the role on a stream's first
   chunk, the finish reason on its last; the events and their order are decode_choice's. False
   when it is not one. */
static bool fast_chunk(pd_openai_decoder *d, const char *data, size_t len, pd_chat_event_cb cb,
                       void *ud, pd_result *rc)
{
    char buf[PD_FASTEV_BUF];
    pd_fastev_chunk c;
    if (!pd_fastev_openai_chunk(&d->memo, data, len, buf, sizeof buf, &c))
        return false;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_TEXT);
    ev.id = c.id;
    ev.model = c.model;
    ev.created = c.created;
    ev.choice = c.choice;
    *rc = PD_OK;
    if (c.role) {
        pd_chat_event role = ev;
        role.kind = PD_EVENT_ROLE;
        role.role = PD_ROLE_ASSISTANT;
        pd_chat_role_from_name(c.role, c.role_len, &role.role);
        *rc = emit(&role, cb, ud);
    }
    if (!*rc && c.text_len) {
        ev.text = c.text;
        ev.text_len = c.text_len;
        *rc = emit(&ev, cb, ud);
    }
    if (!*rc && c.finish) {
        ev.kind = PD_EVENT_FINISH;
        ev.text = NULL;
        ev.text_len = 0;
        ev.finish = finish_named(c.finish);
        *rc = emit(&ev, cb, ud);
    }
    return true;
}

pd_result pd_openai_decode_chunk(pd_openai_decoder *d, const char *data, size_t len,
                                 pd_chat_event_cb cb, void *ud)
{
    while (len && (*data == ' ' || *data == '\t' || *data == '\r' || *data == '\n'))
        data++, len--;
    while (len && (data[len - 1] == ' ' || data[len - 1] == '\t' || data[len - 1] == '\r' ||
                   data[len - 1] == '\n'))
        len--;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        d->done = true;
        return PD_OK;
    }
    pd_result fast_rc;
    if (!d->full_path && fast_chunk(d, data, len, cb, ud, &fast_rc))
        return fast_rc;
    /* a model may emit U+0000: keep the chunk (text carries its length) */
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    pd_chat_event base;
    const json_t *id = json_object_get(root, "id"), *model = json_object_get(root, "model");
    const json_t *created = json_object_get(root, "created");
    pd_chat_event_init(&base, PD_EVENT_TEXT);
    base.id = json_string_value(id); /* NULL when not a string */
    base.model = json_string_value(model);
    base.created = json_is_integer(created) ? json_integer_value(created) : 0;
    pd_result rc = decode_root(d, root, &base, cb, ud);
    json_decref(root);
    return rc;
}

/* ==== stream encoding =================================================================== */

void pd_openai_encoder_init(pd_openai_encoder *e, const char *id, const char *model,
                            int64_t created)
{
    static const char text_start[] = ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
    pd_jw w;
    pd_buf_init(&e->head, 0);
    pd_jw_begin(&w, &e->head);
    pd_jw_raw(&w, "data: ", 6);
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "id");
    pd_jw_str(&w, nz(id));
    pd_jw_key(&w, "object");
    pd_jw_code_str(&w, "chat.completion.chunk");
    pd_jw_key(&w, "created");
    pd_jw_int(&w, created);
    pd_jw_key(&w, "model");
    pd_jw_str(&w, nz(model)); /* left open: each chunk appends its choices */
    e->head_len = e->head.len;
    pd_jw_raw(&w, text_start, sizeof text_start - 1);
    e->id = pd_xstrdup(nz(id));
}

void pd_openai_encoder_free(pd_openai_encoder *e)
{
    if (!e)
        return;
    pd_buf_free(&e->head);
    free(e->id);
    e->id = NULL;
}

static void write_tool_delta(const pd_openai_encoder *e, pd_jw *w, const pd_chat_event *ev)
{
    pd_jw_key(w, "tool_calls");
    pd_jw_open(w, '[');
    pd_jw_open(w, '{');
    pd_jw_key(w, "index");
    pd_jw_int(w, ev->tool_index);
    if (ev->kind == PD_EVENT_TOOL_START) {
        pd_jw_key(w, "id");
        if (ev->tool_id) {
            pd_jw_str(w, ev->tool_id);
        } else { /* a client needs some id to answer the call with */
            const char *sid = strncmp(e->id, "chatcmpl-", 9) == 0 ? e->id + 9 : e->id;
            char idx[16];
            snprintf(idx, sizeof idx, "_%" PRIu32 "\"", ev->tool_index);
            pd_jw_sep(w);
            pd_jw_raw(w, "\"call_", 6);
            pd_jw_escape(w, sid, strlen(sid));
            pd_jw_raw(w, idx, strlen(idx));
        }
        pd_jw_key(w, "type");
        pd_jw_code_str(w, "function");
    }
    pd_jw_key(w, "function");
    pd_jw_open(w, '{');
    if (ev->kind == PD_EVENT_TOOL_START) {
        pd_jw_key(w, "name");
        pd_jw_str(w, nz(ev->tool_name));
        pd_jw_key(w, "arguments");
        pd_jw_code_str(w, "");
    } else {
        pd_jw_key(w, "arguments");
        pd_jw_strn(w, nz(ev->text), ev->text ? ev->text_len : 0);
    }
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
    pd_jw_close(w, ']');
}

static void write_delta(const pd_openai_encoder *e, pd_jw *w, const pd_chat_event *ev)
{
    const char *text = nz(ev->text);
    size_t text_len = ev->text ? ev->text_len : 0;
    pd_jw_key(w, "delta");
    pd_jw_open(w, '{');
    switch (ev->kind) {
    case PD_EVENT_ROLE:
        pd_jw_key(w, "role");
        pd_jw_str(w, pd_chat_role_name(ev->role));
        pd_jw_key(w, "content");
        pd_jw_code_str(w, "");
        break;
    case PD_EVENT_TEXT:
        pd_jw_key(w, "content");
        pd_jw_strn(w, text, text_len);
        break;
    case PD_EVENT_REASONING:
        pd_jw_key(w, "reasoning_content");
        pd_jw_strn(w, text, text_len);
        break;
    case PD_EVENT_REFUSAL:
        pd_jw_key(w, "refusal");
        pd_jw_strn(w, text, text_len);
        break;
    case PD_EVENT_TOOL_START:
    case PD_EVENT_TOOL_ARGS: write_tool_delta(e, w, ev); break;
    default: /* FINISH: an empty delta */ break;
    }
    pd_jw_close(w, '}');
}

static void write_error_event(pd_jw *w, const pd_chat_event *ev)
{
    pd_jw_open(w, '{');
    pd_jw_key(w, "error");
    pd_jw_open(w, '{');
    pd_jw_key(w, "message");
    pd_jw_strn(w, nz(ev->text), ev->text ? ev->text_len : 0);
    pd_jw_key(w, "type");
    pd_jw_str(w, ev->error_type ? ev->error_type : "server_error");
    pd_jw_key(w, "param");
    pd_jw_null(w);
    pd_jw_key(w, "code");
    pd_jw_str(w, ev->error_code);
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

/* A TEXT event that carries nothing but its text, choice and the ids (which the chunk does not
   repeat): compared with such an event rebuilt from those fields, so that any other field set,
   including fields added to pd_chat_event later, sends the event to the full writer. Padding
   that differs only costs the fast path, never exactness. */
static bool plain_text(const pd_chat_event *ev)
{
    pd_chat_event plain;
    if (ev->kind != PD_EVENT_TEXT || !ev->text)
        return false;
    pd_chat_event_init(&plain, PD_EVENT_TEXT);
    plain.choice = ev->choice;
    plain.text = ev->text;
    plain.text_len = ev->text_len;
    plain.tool_index = ev->tool_index;
    plain.id = ev->id;
    plain.model = ev->model;
    plain.created = ev->created;
    return memcmp(&plain, ev, sizeof plain) == 0;
}

static const char text_end[] = "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";

/* The chunk of a plain TEXT event in a few copies: what the full writer below produces. For
   choice 0 (nearly every stream) the encoder's head already holds everything before the text,
   and the chunk is put together in one piece of room when the buffer has it. */
static pd_result encode_plain_text(const pd_openai_encoder *e, const pd_chat_event *ev, pd_buf *out)
{
    static const char choices[] = ",\"choices\":[{\"index\":";
    static const char delta[] = ",\"delta\":{\"content\":\"";
    pd_jw w;
    size_t mark = out->len;
    char *p;
    pd_jw_begin(&w, out);
    if (ev->choice == 0 && ev->text_len <= 1024 &&
        (p = pd_jw_room(&w, e->head.len + 6 * ev->text_len + sizeof text_end - 1))) {
        memcpy(p, e->head.data, e->head.len);
        char *q = pd_jw_escape_to(p + e->head.len, ev->text, ev->text_len);
        memcpy(q, text_end, sizeof text_end - 1);
        pd_jw_wrote(&w, (size_t)(q - p) + sizeof text_end - 1);
        return PD_OK;
    }
    pd_jw_raw(&w, e->head.data, e->head_len);
    pd_jw_raw(&w, choices, sizeof choices - 1);
    pd_jw_int(&w, ev->choice);
    pd_jw_raw(&w, delta, sizeof delta - 1);
    pd_jw_escape(&w, ev->text, ev->text_len);
    pd_jw_raw(&w, text_end, sizeof text_end - 1);
    return pd_jw_end(&w, mark);
}

pd_result pd_openai_encode_event(pd_openai_encoder *e, const pd_chat_event *ev, pd_buf *out)
{
    if (plain_text(ev))
        return encode_plain_text(e, ev, out);
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    if (ev->kind == PD_EVENT_ERROR) {
        pd_jw_raw(&w, "data: ", 6);
        write_error_event(&w, ev);
    } else {
        pd_jw_raw(&w, e->head.data, e->head_len);
        w.comma = true;
        pd_jw_key(&w, "choices");
        pd_jw_open(&w, '[');
        if (ev->kind != PD_EVENT_USAGE) {
            pd_jw_open(&w, '{');
            pd_jw_key(&w, "index");
            pd_jw_int(&w, ev->choice);
            write_delta(e, &w, ev);
            pd_jw_key(&w, "logprobs");
            if (ev->kind == PD_EVENT_TEXT && ev->logprobs)
                pd_jw_json(&w, ev->logprobs);
            else
                pd_jw_null(&w);
            pd_jw_key(&w, "finish_reason");
            pd_jw_str(&w, ev->kind == PD_EVENT_FINISH ? finish_to_openai(ev->finish) : NULL);
            pd_jw_close(&w, '}');
        }
        pd_jw_close(&w, ']');
        if (ev->kind == PD_EVENT_USAGE) {
            pd_jw_key(&w, "usage");
            write_usage(&w, &ev->usage);
        }
        pd_jw_close(&w, '}');
    }
    pd_jw_raw(&w, "\n\n", 2);
    return pd_jw_end(&w, mark);
}

pd_result pd_openai_encode_done(pd_buf *out)
{
    return pd_buf_append(out, "data: [DONE]\n\n", 14);
}
