/* anthropic.c: see anthropic.h. Layout: small helpers; errors; request validation (strict,
 * Anthropic's rules, messages in the "<dotted path>: <what>" style its API uses); request
 * writing (the OpenAI -> Anthropic checklist of protocols.md 7.5); responses; stream decoding
 * (7.1); stream encoding (7.2).
 *
 * Design notes.
 * - One canonical message per Anthropic tool_result: OpenAI-style upstreams need one `tool`
 *   message per call (protocols.md 9.11), and the request writer merges them back into one user
 *   turn for Anthropic, so Anthropic -> canonical -> Anthropic keeps the shape of the turns.
 * - The request writer first decides which canonical messages yield any block at all, then
 *   groups the rest into turns: dropping an empty turn after grouping would leave two turns of
 *   the same role side by side, and the output would no longer be a fixed point of
 *   parse + write (the fuzz target checks that it is).
 * - Tool blocks in streams are numbered by the order they start, never by the block index
 *   (protocols.md 9.1): a text block before the first tool would shift every index by one. */
#include "proto/anthropic.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fastev.h"
#include "proto/jsonr.h"
#include "proto/jsonw.h"

/* ==== small helpers ===================================================================== */

static char *dup_json_str(const json_t *s)
{
    return pd_xstrndup(json_string_value(s), json_string_length(s));
}

static bool str_eq(const json_t *s, const char *lit)
{
    return json_is_string(s) && strcmp(json_string_value(s), lit) == 0;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int64_t max0(int64_t v)
{
    return v > 0 ? v : 0;
}

/* A count member: >= 0, or -1 when absent or not a number. */
static int64_t count(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e18)
        return (int64_t)json_real_value(v);
    return PD_CHAT_COUNT_UNKNOWN;
}

/* A growable array of canonical messages (the parser may make several of one JSON message),
   in the request's arena. */
typedef struct msg_list {
    pd_arena *a;
    pd_chat_message *v;
    size_t n, cap;
} msg_list;

static pd_chat_message *msg_push(msg_list *l, pd_chat_role role)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        l->v = pd_chat_parse_held(pd_arena_grow(l->a, l->v, l->cap * sizeof *l->v, cap * sizeof *l->v));
        l->cap = cap;
    }
    pd_chat_message *m = &l->v[l->n++];
    memset(m, 0, sizeof *m);
    m->role = role;
    return m;
}

/* Room for one more element in an arena array v of n elements of size bytes, which grows by
   doubling from 4 (strings are allocated between pushes, so it seldom grows in place: adding
   one at a time would copy it every time). Its capacity is implicit, so the canonical structs
   need no field for it: full at 0 and at each power of two from 4. */
static void *push(pd_arena *a, void *v, size_t n, size_t size)
{
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0))
        v = pd_chat_parse_held(pd_arena_grow(a, v, n * size, (n ? 2 * n : 4) * size));
    return v;
}

static pd_chat_part *part_push(pd_arena *a, pd_chat_message *m, pd_chat_part_kind kind)
{
    m->parts = push(a, m->parts, m->n_parts, sizeof *m->parts);
    pd_chat_part *p = &m->parts[m->n_parts++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    return p;
}

/* ==== errors ============================================================================ */

static const struct {
    int status;
    const char *type;
} error_table[] = {
    {400, "invalid_request_error"}, {401, "authentication_error"}, {402, "billing_error"},
    {403, "permission_error"},      {404, "not_found_error"},      {413, "request_too_large"},
    {429, "rate_limit_error"},      {500, "api_error"},            {504, "timeout_error"},
    {529, "overloaded_error"},
};

#define N_ERROR_TABLE (sizeof error_table / sizeof *error_table)

const char *pd_anthropic_error_type(int status)
{
    for (size_t i = 0; i < N_ERROR_TABLE; i++)
        if (error_table[i].status == status)
            return error_table[i].type;
    if (status == 503) /* Anthropic has no 503; an overloaded upstream is what it means */
        return "overloaded_error";
    return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
}

int pd_anthropic_error_status(const char *type)
{
    for (size_t i = 0; type && i < N_ERROR_TABLE; i++)
        if (strcmp(error_table[i].type, type) == 0)
            return error_table[i].status;
    return 0;
}

static bool status_in_table(int status)
{
    for (size_t i = 0; i < N_ERROR_TABLE; i++)
        if (error_table[i].status == status)
            return true;
    return false;
}

/* The type to show an Anthropic client: the error's own when it is Anthropic's and agrees with
   the status (a 404 that OpenAI calls invalid_request_error is a not_found_error here). */
static const char *client_error_type(const pd_api_error *e)
{
    int st = pd_anthropic_error_status(e->type);
    if (st && (st == e->status || !status_in_table(e->status)))
        return e->type;
    return pd_anthropic_error_type(e->status);
}

static void write_error_object(pd_jw *w, const char *type, const char *msg, size_t len)
{
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_code_str(w, "error");
    pd_jw_key(w, "error");
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_str(w, type);
    pd_jw_key(w, "message");
    pd_jw_strn(w, msg, len);
    pd_jw_close(w, '}');
    pd_jw_close(w, '}');
}

pd_result pd_anthropic_error_body(const pd_api_error *e, pd_buf *out)
{
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    write_error_object(&w, client_error_type(e), e->message, strlen(e->message));
    return pd_jw_end(&w, mark);
}

pd_result pd_anthropic_parse_error_body(const char *body, size_t len, int http_status,
                                        pd_api_error *out)
{
    return pd_openai_parse_error_body(body, len, http_status, out);
}

/* ==== request validation ================================================================ */

/* Request bodies are read with proto/jsonr.h (no jansson tree): these are its helpers. */

static char *dup_str(pd_arena *a, const pd_jr_val *s)
{
    return pd_chat_parse_held(pd_arena_strndup(a, s->u.s, s->n));
}

#define PATH_MAX_LEN 96 /* "messages.12.content.3.content.0.source.media_type" */

/* Every validation failure goes through here: 400 invalid_request_error, message
   "<param>: <what>" (Anthropic's style), param the dotted path. */
static pd_result bad(pd_api_error *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pd_result bad(pd_api_error *err, const char *param, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    pd_openai_error_set(err, 400, "invalid_request_error", NULL, param, "%s%s%s", nz(param),
                        param && param[0] ? ": " : "", what);
    return PD_ERR_INVALID;
}

static pd_result missing(pd_api_error *err, const char *param)
{
    return bad(err, param, "Field required");
}

static pd_result bad_type(pd_api_error *err, const char *param, const char *want)
{
    return bad(err, param, "Input should be %s", want);
}

/* Formats a path into dst, cut to fit (vsnprintf: truncation is intended). */
static const char *pathf(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *pathf(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    return dst;
}

/* "base.key", or "key" when base is empty. */
static const char *path(char *dst, size_t cap, const char *base, const char *key)
{
    return pd_jr_path_key(dst, cap, base, key);
}

/* "base<mid>i", e.g. "messages.2" (mid ".") or "messages.2.content.0" (mid ".content."). */
static const char *path_at(char *dst, size_t cap, const char *base, const char *mid, size_t i)
{
    return pd_jr_path_index(dst, cap, base, mid, i, "");
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
        return bad_type(err, path(p, sizeof p, base, key), "a valid string");
    *out = dup_str(a, v);
    return PD_OK;
}

/* Required string member; non_empty: "" is an error too. */
static pd_result need_str(pd_arena *a, const pd_jr_val *o, const char *base, const char *key,
                          bool non_empty, char **out, pd_api_error *err)
{
    char p[PATH_MAX_LEN]; /* built only for an error: most fields are fine */
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return missing(err, path(p, sizeof p, base, key));
    if (!pd_jr_is_string(v))
        return bad_type(err, path(p, sizeof p, base, key), "a valid string");
    if (non_empty && v->n == 0)
        return bad(err, path(p, sizeof p, base, key), "String should have at least 1 character");
    *out = dup_str(a, v);
    return PD_OK;
}

static pd_result get_number(const pd_jr_val *o, const char *key, double lo, double hi, bool *has,
                            double *out, pd_api_error *err)
{
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return PD_OK;
    if (!pd_jr_is_number(v))
        return bad_type(err, key, "a valid number");
    double d = pd_jr_number(v);
    if (d < lo)
        return bad(err, key, "Input should be greater than or equal to %g", lo);
    if (d > hi)
        return bad(err, key, "Input should be less than or equal to %g", hi);
    *has = true;
    *out = d;
    return PD_OK;
}

static pd_result get_int(const pd_jr_val *o, const char *key, int64_t lo, bool *has, int64_t *out,
                         pd_api_error *err)
{
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return PD_OK;
    if (!pd_jr_is_integer(v))
        return bad_type(err, key, "a valid integer");
    if (v->u.i < lo)
        return bad(err, key, "Input should be greater than or equal to %" PRId64, lo);
    *has = true;
    *out = v->u.i;
    return PD_OK;
}

static pd_result get_bool(const pd_jr_val *o, const char *base, const char *key, pd_chat_tri *out,
                          pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return PD_OK;
    if (!pd_jr_is_boolean(v))
        return bad_type(err, path(p, sizeof p, base, key), "a valid boolean");
    *out = pd_jr_is_true(v) ? PD_TRI_TRUE : PD_TRI_FALSE;
    return PD_OK;
}

/* A required object member into *out. */
static pd_result need_obj(const pd_jr_val *o, const char *base, const char *key,
                          const pd_jr_val **out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *v = pd_jr_opt(o, key);
    if (!v)
        return missing(err, path(p, sizeof p, base, key));
    if (!pd_jr_is_object(v))
        return bad_type(err, path(p, sizeof p, base, key), "a valid dictionary");
    *out = v;
    return PD_OK;
}

/* ---- content blocks ---- */

static const char *const image_types[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};

static pd_result parse_image(pd_arena *a, const pd_jr_val *b, const char *base, pd_chat_part *out,
                             pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *src;
    pd_result rc = need_obj(b, base, "source", &src, err);
    if (rc)
        return rc;
    path(p, sizeof p, base, "source");
    const pd_jr_val *type = pd_jr_opt(src, "type");
    if (pd_jr_eq(type, "url"))
        return need_str(a, src, p, "url", true, &out->url, err);
    if (!pd_jr_eq(type, "base64")) {
        char q[PATH_MAX_LEN];
        return bad(err, path(q, sizeof q, p, "type"),
                   "image sources of type '%.*s' are not supported (use 'base64' or 'url')",
                   pd_jr_is_string(type) ? pd_jr_clip(type, 40) : 0,
                   pd_jr_is_string(type) ? type->u.s : "");
    }
    if ((rc = need_str(a, src, p, "media_type", true, &out->media_type, err)))
        return rc;
    size_t i = 0;
    while (i < 4 && strcmp(image_types[i], out->media_type) != 0)
        i++;
    if (i == 4) {
        char q[PATH_MAX_LEN];
        return bad(err, path(q, sizeof q, p, "media_type"),
                   "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'");
    }
    return need_str(a, src, p, "data", true, &out->data, err);
}

/* A base64 PDF becomes a FILE part holding a data: URI (what OpenAI's file_data carries). */
static pd_result parse_document(pd_arena *a, const pd_jr_val *b, const char *base,
                                pd_chat_part *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const pd_jr_val *src;
    pd_result rc = need_obj(b, base, "source", &src, err);
    if (rc)
        return rc;
    path(p, sizeof p, base, "source");
    if (!pd_jr_eq(pd_jr_opt(src, "type"), "base64") ||
        !pd_jr_eq(pd_jr_opt(src, "media_type"), "application/pdf"))
        return bad(err, path(q, sizeof q, p, "type"),
                   "only base64 'application/pdf' document sources are supported by this gateway");
    char *data = NULL;
    if ((rc = need_str(a, src, p, "data", true, &data, err)))
        return rc;
    size_t n = strlen(data) + 30;
    out->data = pd_chat_parse_held(pd_arena_alloc(a, n));
    snprintf(out->data, n, "data:application/pdf;base64,%s", data);
    return get_str(a, b, base, "title", &out->filename, err);
}

static pd_result parse_text_block(pd_arena *a, const pd_jr_val *b, const char *base,
                                  pd_chat_part *out, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    pd_result rc = need_str(a, b, base, "text", false, &out->text, err);
    if (!rc && !out->text[0])
        return bad(err, path(p, sizeof p, base, "text"), "text content blocks must be non-empty");
    return rc;
}

/* The "type" of a block; an error when missing or not a string. */
static pd_result block_type(const pd_jr_val *b, const char *base, const pd_jr_val **type,
                            pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    if (!pd_jr_is_object(b))
        return bad_type(err, base, "a valid dictionary");
    const pd_jr_val *t = pd_jr_opt(b, "type");
    if (pd_jr_is_string(t)) { /* the usual case: no path to build */
        *type = t;
        return PD_OK;
    }
    path(p, sizeof p, base, "type");
    if (!t)
        return missing(err, p);
    return bad_type(err, p, "a valid string");
}

static pd_result unsupported_block(pd_api_error *err, const char *base, const pd_jr_val *type,
                                   const char *where, const char *allowed)
{
    char p[PATH_MAX_LEN];
    return bad(err, path(p, sizeof p, base, "type"),
               "'%.*s' blocks are not supported in %s (supported: %s)", pd_jr_clip(type, 40),
               type->u.s, where, allowed);
}

/* ---- tool-use pairing ---- */

/* The tool_use ids of one assistant message, sorted for lookup; `seen` marks the answered. In
   the request's arena (a few bytes per tool call, a bounded part of the parse's use): no
   malloc and free per message. */
typedef struct id_set {
    const char **ids;
    bool *seen;
    size_t n;
} id_set;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void id_set_clear(id_set *s)
{
    memset(s, 0, sizeof *s);
}

/* Collects the ids of the tool_use blocks of a (validated) assistant message. */
static void id_set_fill(pd_arena *a, id_set *s, const pd_chat_message *m)
{
    id_set_clear(s);
    if (!m->n_tool_calls)
        return;
    s->ids = pd_chat_parse_held(pd_arena_calloc(a, m->n_tool_calls, sizeof *s->ids));
    s->seen = pd_chat_parse_held(pd_arena_calloc(a, m->n_tool_calls, sizeof *s->seen));
    for (size_t i = 0; i < m->n_tool_calls; i++)
        s->ids[s->n++] = m->tool_calls[i].id;
    qsort(s->ids, s->n, sizeof *s->ids, cmp_id);
}

/* Marks id answered; false when the previous message has no tool_use with that id. */
static bool id_set_answer(id_set *s, const char *id)
{
    const char **hit = s->n ? bsearch(&id, s->ids, s->n, sizeof *s->ids, cmp_id) : NULL;
    if (!hit)
        return false;
    s->seen[hit - s->ids] = true;
    return true;
}

/* The first id left unanswered, or NULL. */
static const char *id_set_unanswered(const id_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->seen[i])
            return s->ids[i];
    return NULL;
}

/* ---- messages ---- */

typedef struct parse_ctx {
    msg_list msgs;
    id_set pending; /* tool_use ids of the previous message, when it was an assistant one */
    pd_api_error *err;
} parse_ctx;

static pd_result parse_tool_result_content(pd_arena *a, const pd_jr_val *c, const char *base,
                                           pd_chat_message *tool, pd_chat_message *user,
                                           pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    path(p, sizeof p, base, "content");
    if (!c)
        return PD_OK;
    if (pd_jr_is_string(c)) {
        if (c->n)
            part_push(a, tool, PD_PART_TEXT)->text = dup_str(a, c);
        return PD_OK;
    }
    if (!pd_jr_is_array(c))
        return bad_type(err, p, "a valid string or a list of content blocks");
    const pd_jr_val *b = pd_jr_child(c);
    for (size_t i = 0; i < c->n; i++, b = pd_jr_next(b)) {
        char q[PATH_MAX_LEN];
        const pd_jr_val *type;
        path_at(q, sizeof q, p, ".", i);
        pd_result rc = block_type(b, q, &type, err);
        if (rc)
            return rc;
        if (pd_jr_eq(type, "text"))
            rc = parse_text_block(a, b, q, part_push(a, tool, PD_PART_TEXT), err);
        else if (pd_jr_eq(type, "image")) /* OpenAI tool messages carry no images */
            rc = parse_image(a, b, q, part_push(a, user, PD_PART_IMAGE), err);
        else
            rc = unsupported_block(err, q, type, "tool results", "text, image");
        if (rc)
            return rc;
    }
    return PD_OK;
}

static void prefix_error(pd_arena *a, pd_chat_message *tool)
{
    if (!tool->n_parts) {
        part_push(a, tool, PD_PART_TEXT)->text = pd_chat_parse_held(pd_arena_strdup(a, "Error"));
        return;
    }
    char *t = tool->parts[0].text;
    size_t n = strlen(t) + 8;
    tool->parts[0].text = pd_chat_parse_held(pd_arena_alloc(a, n));
    snprintf(tool->parts[0].text, n, "Error: %s", t);
}

static pd_result parse_tool_result(parse_ctx *cx, const pd_jr_val *b, const char *base,
                                   pd_chat_message *user)
{
    char p[PATH_MAX_LEN];
    pd_arena *a = cx->msgs.a;
    pd_chat_message *tool = msg_push(&cx->msgs, PD_ROLE_TOOL);
    pd_chat_tri is_error = PD_TRI_UNSET;
    pd_result rc = need_str(a, b, base, "tool_use_id", true, &tool->tool_call_id, cx->err);
    if (!rc)
        rc = get_bool(b, base, "is_error", &is_error, cx->err);
    if (rc)
        return rc;
    if (!id_set_answer(&cx->pending, tool->tool_call_id))
        return bad(cx->err, pathf(p, sizeof p, "%s", base),
                   "unexpected `tool_use_id` found in `tool_result` blocks: %.64s. Each "
                   "`tool_result` block must have a corresponding `tool_use` block in the "
                   "previous message.",
                   tool->tool_call_id);
    rc = parse_tool_result_content(a, pd_jr_opt(b, "content"), base, tool, user, cx->err);
    if (!rc && is_error == PD_TRI_TRUE)
        prefix_error(a, tool);
    return rc;
}

/* A user message: its tool results become TOOL messages (pushed as met), the rest one USER
   message pushed after them. */
static pd_result parse_user_blocks(parse_ctx *cx, const pd_jr_val *c, const char *base)
{
    pd_arena *a = cx->msgs.a;
    pd_chat_message user = {.role = PD_ROLE_USER};
    pd_result rc = PD_OK;
    const pd_jr_val *b = pd_jr_child(c);
    for (size_t i = 0; !rc && i < c->n; i++, b = pd_jr_next(b)) {
        char q[PATH_MAX_LEN];
        const pd_jr_val *type;
        path_at(q, sizeof q, base, ".content.", i);
        if ((rc = block_type(b, q, &type, cx->err)))
            break;
        if (pd_jr_eq(type, "text"))
            rc = parse_text_block(a, b, q, part_push(a, &user, PD_PART_TEXT), cx->err);
        else if (pd_jr_eq(type, "image"))
            rc = parse_image(a, b, q, part_push(a, &user, PD_PART_IMAGE), cx->err);
        else if (pd_jr_eq(type, "document"))
            rc = parse_document(a, b, q, part_push(a, &user, PD_PART_FILE), cx->err);
        else if (pd_jr_eq(type, "tool_result"))
            rc = parse_tool_result(cx, b, q, &user);
        else
            rc = unsupported_block(cx->err, q, type, "user messages",
                                   "text, image, document, tool_result");
    }
    if (!rc && user.n_parts) /* else what it holds stays unused in the arena */
        *msg_push(&cx->msgs, PD_ROLE_USER) = user;
    return rc;
}

static pd_result parse_tool_use(pd_arena *a, const pd_jr_val *b, const char *base,
                                pd_chat_message *m, pd_api_error *err)
{
    m->tool_calls = push(a, m->tool_calls, m->n_tool_calls, sizeof *m->tool_calls);
    pd_chat_tool_call *tc = &m->tool_calls[m->n_tool_calls++];
    memset(tc, 0, sizeof *tc);
    const pd_jr_val *input;
    size_t len;
    pd_result rc = need_str(a, b, base, "id", true, &tc->id, err);
    if (!rc)
        rc = need_str(a, b, base, "name", true, &tc->name, err);
    if (!rc)
        rc = need_obj(b, base, "input", &input, err);
    if (!rc)
        tc->arguments = pd_chat_parse_held(pd_jr_dump_in(a, input, &len));
    else
        tc->arguments = pd_chat_parse_held(pd_arena_strdup(a, ""));
    return rc;
}

/* The thinking blocks' texts, joined, become m->reasoning: gathered in a buffer and copied to
   the arena once (appending in the arena would copy the text so far at every block). */
static void set_reasoning(pd_arena *a, pd_chat_message *m, const pd_buf *thinking, bool any)
{
    if (any)
        m->reasoning =
            pd_chat_parse_held(pd_arena_strndup(a, thinking->data ? thinking->data : "", thinking->len));
}

static pd_result parse_assistant_blocks(parse_ctx *cx, const pd_jr_val *c, const char *base,
                                        pd_chat_message *m)
{
    pd_arena *a = cx->msgs.a;
    pd_buf thinking;
    bool any_thinking = false;
    pd_buf_init(&thinking, 0);
    pd_result rc = PD_OK;
    const pd_jr_val *b = pd_jr_child(c);
    for (size_t i = 0; !rc && i < c->n; i++, b = pd_jr_next(b)) {
        char q[PATH_MAX_LEN], r[PATH_MAX_LEN];
        const pd_jr_val *type;
        path_at(q, sizeof q, base, ".content.", i);
        if ((rc = block_type(b, q, &type, cx->err)))
            break;
        if (pd_jr_eq(type, "text")) {
            rc = parse_text_block(a, b, q, part_push(a, m, PD_PART_TEXT), cx->err);
        } else if (pd_jr_eq(type, "tool_use")) {
            rc = parse_tool_use(a, b, q, m, cx->err);
        } else if (pd_jr_eq(type, "thinking")) {
            const pd_jr_val *t = pd_jr_opt(b, "thinking");
            if (!pd_jr_is_string(t))
                rc = t ? bad_type(cx->err, path(r, sizeof r, q, "thinking"), "a valid string")
                       : missing(cx->err, path(r, sizeof r, q, "thinking"));
            else if (pd_buf_append(&thinking, t->u.s, t->n) == PD_OK)
                any_thinking = true; /* the buffer has no limit: appending cannot fail */
        } else if (pd_jr_eq(type, "redacted_thinking")) {
            char *data = NULL; /* validated, then dropped: canon has no place for it */
            rc = need_str(a, b, q, "data", false, &data, cx->err);
        } else {
            rc = unsupported_block(cx->err, q, type, "assistant messages",
                                   "text, tool_use, thinking, redacted_thinking");
        }
    }
    set_reasoning(a, m, &thinking, any_thinking);
    pd_buf_free(&thinking);
    return rc;
}

static pd_result parse_system_blocks(pd_arena *a, const pd_jr_val *c, const char *base,
                                     pd_chat_message *m, pd_api_error *err)
{
    const pd_jr_val *b = pd_jr_child(c);
    for (size_t i = 0; i < c->n; i++, b = pd_jr_next(b)) {
        char q[PATH_MAX_LEN];
        const pd_jr_val *type;
        path_at(q, sizeof q, base, ".", i);
        pd_result rc = block_type(b, q, &type, err);
        if (!rc && !pd_jr_eq(type, "text"))
            rc = unsupported_block(err, q, type, "system prompts", "text");
        if (!rc)
            rc = parse_text_block(a, b, q, part_push(a, m, PD_PART_TEXT), err);
        if (rc)
            return rc;
    }
    return PD_OK;
}

static pd_result parse_role(const pd_jr_val *m, const char *base, pd_chat_role *out,
                            pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *r = pd_jr_opt(m, "role");
    if (!r)
        return missing(err, path(p, sizeof p, base, "role"));
    if (pd_jr_eq(r, "user"))
        *out = PD_ROLE_USER;
    else if (pd_jr_eq(r, "assistant"))
        *out = PD_ROLE_ASSISTANT;
    else if (pd_jr_eq(r, "system"))
        *out = PD_ROLE_SYSTEM;
    else
        return bad(err, path(p, sizeof p, base, "role"),
                   "Input should be 'user', 'assistant' or 'system'");
    return PD_OK;
}

/* One JSON message (an object whose role was read) into canonical ones. `last`: the final
   message, which alone may be an empty assistant turn (a prefill of nothing, dropped). */
static pd_result parse_message(parse_ctx *cx, const pd_jr_val *m, const char *base,
                               pd_chat_role role, bool last)
{
    char p[PATH_MAX_LEN];
    const pd_jr_val *c = pd_jr_opt(m, "content");
    if (!c)
        return missing(cx->err, path(p, sizeof p, base, "content"));
    if (!pd_jr_is_string(c) && !pd_jr_is_array(c))
        return bad_type(cx->err, path(p, sizeof p, base, "content"),
                        "a valid string or a list of content blocks");
    if (c->n == 0) { /* the string's bytes or the list's blocks */
        if (last && role == PD_ROLE_ASSISTANT)
            return PD_OK;
        return bad(cx->err, base,
                   "all messages must have non-empty content except for the optional final "
                   "assistant message");
    }
    if (role == PD_ROLE_USER && pd_jr_is_array(c))
        return parse_user_blocks(cx, c, base);
    pd_chat_message *out = msg_push(&cx->msgs, role);
    if (pd_jr_is_string(c)) {
        part_push(cx->msgs.a, out, PD_PART_TEXT)->text = dup_str(cx->msgs.a, c);
        return PD_OK;
    }
    if (role == PD_ROLE_SYSTEM)
        return parse_system_blocks(cx->msgs.a, c, path(p, sizeof p, base, "content"), out, cx->err);
    return parse_assistant_blocks(cx, c, base, out);
}

/* Anthropic's pairing rule, second half: every tool_use of the previous (assistant) message
   was answered by a tool_result in this one. */
static pd_result check_answered(parse_ctx *cx, size_t idx)
{
    const char *left = id_set_unanswered(&cx->pending);
    if (!left)
        return PD_OK;
    char base[PATH_MAX_LEN];
    return bad(cx->err, pathf(base, sizeof base, "messages.%zu", idx),
               "`tool_use` ids were found without `tool_result` blocks immediately after: "
               "%.64s. Each `tool_use` block must have a corresponding `tool_result` block in "
               "the next message.",
               left);
}

static pd_result parse_messages(parse_ctx *cx, const pd_jr_val *root)
{
    const pd_jr_val *msgs = pd_jr_opt(root, "messages");
    if (!msgs)
        return missing(cx->err, "messages");
    if (!pd_jr_is_array(msgs))
        return bad_type(cx->err, "messages", "a valid list");
    size_t n = msgs->n;
    bool seen_turn = false;
    const pd_jr_val *at = pd_jr_child(msgs);
    for (size_t i = 0; i < n; i++) {
        char base[PATH_MAX_LEN];
        const pd_jr_val *m = at;
        at = pd_jr_next(at);
        pd_chat_role role;
        path_at(base, sizeof base, "messages", ".", i);
        if (!pd_jr_is_object(m))
            return bad_type(cx->err, base, "a valid dictionary");
        pd_result rc = parse_role(m, base, &role, cx->err);
        if (!rc && role != PD_ROLE_USER) /* the tool calls before went unanswered */
            rc = check_answered(cx, i - 1);
        if (!rc && !seen_turn && role == PD_ROLE_ASSISTANT)
            rc = bad(cx->err, "messages", "first message must use the \"user\" role");
        size_t before = cx->msgs.n;
        if (!rc)
            rc = parse_message(cx, m, base, role, i + 1 == n);
        if (!rc && role == PD_ROLE_USER)
            rc = check_answered(cx, i - 1);
        if (rc)
            return rc;
        id_set_clear(&cx->pending);
        seen_turn |= role != PD_ROLE_SYSTEM;
        if (role == PD_ROLE_ASSISTANT && cx->msgs.n > before)
            id_set_fill(cx->msgs.a, &cx->pending, &cx->msgs.v[cx->msgs.n - 1]);
    }
    if (!seen_turn)
        return bad(cx->err, "messages", "at least one user message is required");
    return PD_OK;
}

/* The top-level system prompt: a string or text blocks; one SYSTEM message first. */
static pd_result parse_system(parse_ctx *cx, const pd_jr_val *root)
{
    const pd_jr_val *s = pd_jr_opt(root, "system");
    if (!s)
        return PD_OK;
    if (pd_jr_is_string(s)) {
        if (s->n)
            part_push(cx->msgs.a, msg_push(&cx->msgs, PD_ROLE_SYSTEM), PD_PART_TEXT)->text =
                dup_str(cx->msgs.a, s);
        return PD_OK;
    }
    if (!pd_jr_is_array(s))
        return bad_type(cx->err, "system", "a valid string or a list of text blocks");
    if (!s->n)
        return PD_OK;
    return parse_system_blocks(cx->msgs.a, s, "system", msg_push(&cx->msgs, PD_ROLE_SYSTEM),
                               cx->err);
}

/* ---- tools ---- */

static pd_result parse_tool(pd_arena *a, const pd_jr_val *t, const char *base, pd_chat_tool *out,
                            pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    if (!pd_jr_is_object(t))
        return bad_type(err, base, "a valid dictionary");
    const pd_jr_val *type = pd_jr_opt(t, "type");
    if (type && !pd_jr_eq(type, "custom"))
        return bad(err, path(p, sizeof p, base, "type"),
                   "server tools ('%.*s') are not supported by this gateway: only client tools "
                   "with an input_schema",
                   pd_jr_is_string(type) ? pd_jr_clip(type, 40) : 1,
                   pd_jr_is_string(type) ? type->u.s : "?");
    out->kind = PD_TOOL_FUNCTION;
    const pd_jr_val *schema;
    pd_result rc = need_str(a, t, base, "name", true, &out->name, err);
    if (!rc)
        rc = get_str(a, t, base, "description", &out->description, err);
    if (!rc)
        rc = need_obj(t, base, "input_schema", &schema, err);
    if (!rc)
        rc = get_bool(t, base, "strict", &out->strict, err);
    if (rc)
        return rc;
    if (!pd_jr_eq(pd_jr_get(schema, "type"), "object"))
        return bad(err, pathf(p, sizeof p, "%s.input_schema.type", base), "Input should be 'object'");
    out->parameters.text = pd_chat_parse_held(pd_jr_dump_in(a, schema, &out->parameters.len));
    return PD_OK;
}

static pd_result parse_tools(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *tools = pd_jr_opt(root, "tools");
    if (!tools)
        return PD_OK;
    if (!pd_jr_is_array(tools))
        return bad_type(err, "tools", "a valid list");
    size_t n = tools->n;
    r->tools = pd_chat_parse_held(pd_arena_calloc(&r->arena, n ? n : 1, sizeof *r->tools));
    const pd_jr_val *t = pd_jr_child(tools);
    for (size_t i = 0; i < n; i++) {
        char base[PATH_MAX_LEN];
        r->n_tools = i + 1;
        pd_result rc = parse_tool(&r->arena, t, path_at(base, sizeof base, "tools", ".", i),
                                  &r->tools[i], err);
        t = pd_jr_next(t);
        if (rc)
            return rc;
    }
    return PD_OK;
}

static pd_result parse_tool_choice(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *c = pd_jr_opt(root, "tool_choice");
    if (!c)
        return PD_OK;
    if (!pd_jr_is_object(c))
        return bad_type(err, "tool_choice", "a valid dictionary");
    const pd_jr_val *type = pd_jr_opt(c, "type");
    if (!type)
        return missing(err, "tool_choice.type");
    if (pd_jr_eq(type, "auto"))
        r->tool_choice.kind = PD_TOOL_CHOICE_AUTO;
    else if (pd_jr_eq(type, "any"))
        r->tool_choice.kind = PD_TOOL_CHOICE_REQUIRED;
    else if (pd_jr_eq(type, "none"))
        r->tool_choice.kind = PD_TOOL_CHOICE_NONE;
    else if (pd_jr_eq(type, "tool"))
        r->tool_choice.kind = PD_TOOL_CHOICE_NAMED;
    else
        return bad(err, "tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'");
    pd_chat_tri no_parallel = PD_TRI_UNSET;
    pd_result rc = get_bool(c, "tool_choice", "disable_parallel_tool_use", &no_parallel, err);
    if (rc)
        return rc;
    if (no_parallel == PD_TRI_TRUE)
        r->parallel_tool_calls = PD_TRI_FALSE;
    if (r->tool_choice.kind == PD_TOOL_CHOICE_NAMED)
        return need_str(&r->arena, c, "tool_choice", "name", true, &r->tool_choice.name, err);
    return PD_OK;
}

/* ---- the rest ---- */

static pd_result parse_stop(pd_arena *a, const pd_jr_val *root, pd_chat_sampling *s,
                            pd_api_error *err)
{
    const pd_jr_val *stop = pd_jr_opt(root, "stop_sequences");
    if (!stop)
        return PD_OK;
    if (!pd_jr_is_array(stop))
        return bad_type(err, "stop_sequences", "a valid list");
    size_t n = stop->n;
    s->stop = pd_chat_parse_held(pd_arena_calloc(a, n ? n : 1, sizeof *s->stop));
    const pd_jr_val *at = pd_jr_child(stop);
    for (size_t i = 0; i < n; i++) {
        const pd_jr_val *v = at;
        at = pd_jr_next(at);
        if (!pd_jr_is_string(v)) {
            char p[PATH_MAX_LEN];
            return bad_type(err, pathf(p, sizeof p, "stop_sequences.%zu", i), "a valid string");
        }
        s->stop[i] = dup_str(a, v);
        s->n_stop = i + 1;
    }
    return PD_OK;
}

static pd_result parse_sampling(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    pd_chat_sampling *s = &r->sampling;
    if (!pd_jr_opt(root, "max_tokens"))
        return missing(err, "max_tokens");
    pd_result rc = get_int(root, "max_tokens", 1, &s->has_max_tokens, &s->max_tokens, err);
    if (!rc)
        rc = get_number(root, "temperature", 0, 1, &s->has_temperature, &s->temperature, err);
    if (!rc)
        rc = get_number(root, "top_p", 0, 1, &s->has_top_p, &s->top_p, err);
    if (!rc)
        rc = get_int(root, "top_k", 0, &s->has_top_k, &s->top_k, err);
    if (!rc)
        rc = parse_stop(&r->arena, root, s, err);
    pd_chat_tri stream = PD_TRI_UNSET;
    if (!rc)
        rc = get_bool(root, "", "stream", &stream, err);
    r->stream = stream == PD_TRI_TRUE;
    return rc;
}

static pd_result parse_metadata(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *md = pd_jr_opt(root, "metadata");
    if (!md)
        return PD_OK;
    if (!pd_jr_is_object(md))
        return bad_type(err, "metadata", "a valid dictionary");
    return get_str(&r->arena, md, "metadata", "user_id", &r->user, err);
}

/* thinking is validated but not mapped: its budget means nothing to other upstreams, and a
   reasoning_effort sent to a model without reasoning is a 400 there. */
static pd_result parse_thinking(const pd_jr_val *root, pd_api_error *err)
{
    const pd_jr_val *t = pd_jr_opt(root, "thinking");
    if (!t)
        return PD_OK;
    if (!pd_jr_is_object(t))
        return bad_type(err, "thinking", "a valid dictionary");
    const pd_jr_val *type = pd_jr_opt(t, "type");
    if (!type)
        return missing(err, "thinking.type");
    if (pd_jr_eq(type, "enabled")) {
        const pd_jr_val *b = pd_jr_opt(t, "budget_tokens");
        if (!b)
            return missing(err, "thinking.budget_tokens");
        if (!pd_jr_is_integer(b) || b->u.i < 1)
            return bad(err, "thinking.budget_tokens", "Input should be a positive integer");
        return PD_OK;
    }
    if (!pd_jr_eq(type, "disabled") && !pd_jr_eq(type, "adaptive"))
        return bad(err, "thinking.type", "Input should be 'enabled', 'disabled' or 'adaptive'");
    return PD_OK;
}

static pd_result parse_output_config(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *oc = pd_jr_opt(root, "output_config");
    if (!oc)
        return PD_OK;
    if (!pd_jr_is_object(oc))
        return bad_type(err, "output_config", "a valid dictionary");
    pd_result rc = get_str(&r->arena, oc, "output_config", "effort", &r->reasoning_effort, err);
    const pd_jr_val *f = pd_jr_opt(oc, "format");
    if (rc || !f)
        return rc;
    if (!pd_jr_is_object(f))
        return bad_type(err, "output_config.format", "a valid dictionary");
    if (!pd_jr_eq(pd_jr_opt(f, "type"), "json_schema"))
        return bad(err, "output_config.format.type", "Input should be 'json_schema'");
    const pd_jr_val *schema;
    if ((rc = need_obj(f, "output_config.format", "schema", &schema, err)))
        return rc;
    r->response_format.kind = PD_FORMAT_JSON_SCHEMA;
    r->response_format.name = pd_chat_parse_held(pd_arena_strdup(&r->arena, "output")); /* OpenAI requires one */
    r->response_format.schema.text =
        pd_chat_parse_held(pd_jr_dump_in(&r->arena, schema, &r->response_format.schema.len));
    return PD_OK;
}

static pd_result parse_model(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    const pd_jr_val *m = pd_jr_opt(root, "model");
    if (!m)
        return missing(err, "model");
    if (!pd_jr_is_string(m))
        return bad_type(err, "model", "a valid string");
    if (!m->n)
        return bad(err, "model", "String should have at least 1 character");
    r->model = dup_str(&r->arena, m);
    return PD_OK;
}

static pd_result parse_root(const pd_jr_val *root, pd_chat_request *r, pd_api_error *err)
{
    parse_ctx cx = {.msgs = {.a = &r->arena}, .err = err};
    pd_result rc = parse_model(root, r, err);
    if (!rc)
        rc = parse_sampling(root, r, err);
    if (!rc)
        rc = parse_system(&cx, root);
    if (!rc)
        rc = parse_messages(&cx, root);
    r->messages = cx.msgs.v; /* owned by r from here, also on error */
    r->n_messages = cx.msgs.n;
    id_set_clear(&cx.pending);
    if (!rc)
        rc = parse_tools(root, r, err);
    if (!rc)
        rc = parse_tool_choice(root, r, err);
    if (!rc)
        rc = parse_metadata(root, r, err);
    if (!rc)
        rc = parse_thinking(root, err);
    if (!rc)
        rc = parse_output_config(root, r, err);
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
    return bad(err, NULL, "body is not valid JSON: %s", why);
}

pd_result pd_anthropic_parse_chat_request(const char *body, size_t len, pd_chat_request *out,
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
    if (rc ? !pd_jr_text_depth_ok(body, len, PD_ANTHROPIC_MAX_DEPTH)
           : doc.depth > PD_ANTHROPIC_MAX_DEPTH) {
        pd_jr_free(&doc);
        return bad(err, NULL, "body is not valid JSON: nested deeper than %d levels",
                   PD_ANTHROPIC_MAX_DEPTH);
    }
    if (rc)
        return not_json(body, len, err);
    const pd_jr_val *root = pd_jr_root(&doc);
    pd_chat_request_arena(out, len);
    rc = pd_jr_is_object(root) ? parse_root(root, out, err)
                               : bad(err, NULL, "body must be a JSON object");
    pd_jr_free(&doc);
    if (rc)
        pd_chat_request_free(out);
    else
        out->raw = (pd_chat_json){pd_chat_parse_held(pd_arena_strndup(&out->arena, body, len)), len};
    return rc;
}

/* ==== request writing =================================================================== */

static pd_result cannot(pd_api_error *err, const char *code, const char *param, const char *what)
{
    pd_openai_error_set(err, 400, "invalid_request_error", code, param,
                        "%s cannot be honoured by provider kind anthropic", what);
    return PD_ERR_INVALID;
}

static bool is_system(const pd_chat_message *m)
{
    return m->role == PD_ROLE_SYSTEM || m->role == PD_ROLE_DEVELOPER;
}

static bool has_text(const char *s)
{
    return s && s[0];
}

static bool is_pdf_uri(const char *s)
{
    return s && strncmp(s, "data:application/pdf;base64,", 28) == 0;
}

/* How many Anthropic blocks a (non-system) message yields; 0 means it is left out. */
static size_t block_count(const pd_chat_message *m)
{
    if (m->role == PD_ROLE_TOOL)
        return 1;
    size_t n = m->n_tool_calls + (m->role == PD_ROLE_ASSISTANT && has_text(m->refusal));
    for (size_t i = 0; i < m->n_parts; i++) {
        const pd_chat_part *p = &m->parts[i];
        if (p->kind == PD_PART_TEXT || p->kind == PD_PART_REFUSAL)
            n += has_text(p->text);
        else if (m->role == PD_ROLE_USER)
            n++; /* images and PDFs (anything else was rejected by check_request) */
    }
    return n;
}

/* The turn role of a message for Anthropic: tool results travel in user turns. */
static bool user_side(const pd_chat_message *m)
{
    return m->role != PD_ROLE_ASSISTANT;
}

static pd_result check_parts(const pd_chat_message *m, size_t i, pd_api_error *err)
{
    char p[PATH_MAX_LEN];
    for (size_t j = 0; j < m->n_parts; j++) {
        const pd_chat_part *part = &m->parts[j];
        if (part->kind == PD_PART_AUDIO && m->role == PD_ROLE_USER)
            return cannot(err, "unsupported_value",
                          pathf(p, sizeof p, "messages[%zu].content[%zu]", i, j),
                          "input_audio content");
        if (part->kind == PD_PART_FILE && m->role == PD_ROLE_USER && !is_pdf_uri(part->data))
            return cannot(err, "unsupported_value",
                          pathf(p, sizeof p, "messages[%zu].content[%zu]", i, j),
                          "file content other than a base64 PDF (file_data data: URI)");
    }
    for (size_t j = 0; j < m->n_tool_calls; j++) {
        if (m->tool_calls[j].kind == PD_TOOL_CUSTOM)
            return cannot(err, "unsupported_value",
                          pathf(p, sizeof p, "messages[%zu].tool_calls[%zu]", i, j),
                          "a custom tool call");
    }
    return PD_OK;
}

static bool wants_json(const pd_chat_request *r)
{
    return r->response_format.kind == PD_FORMAT_JSON_OBJECT ||
           r->response_format.kind == PD_FORMAT_JSON_SCHEMA;
}

/* A JSON response format is a forced tool: nothing else may claim the tool choice. */
/* True when a schema (JSON text) says "type": "object" at its top level. */
static bool object_schema(const pd_chat_json *schema)
{
    pd_jr_doc doc;
    bool yes = pd_jr_parse(&doc, schema->text, schema->len) == PD_OK &&
               pd_jr_eq(pd_jr_get(pd_jr_root(&doc), "type"), "object");
    pd_jr_free(&doc);
    return yes;
}

/* An object schema as a pd_chat_json holds it (what json_is_object said of the tree). */
static bool is_object_text(const pd_chat_json *j)
{
    return j->text && j->text[0] == '{';
}

static pd_result check_format(const pd_chat_request *r, pd_api_error *err)
{
    const pd_chat_response_format *f = &r->response_format;
    const char *what = f->kind == PD_FORMAT_JSON_OBJECT ? "'json_object'" : "'json_schema'";
    char msg[128];
    if (!wants_json(r))
        return PD_OK;
    if (r->n_tools) {
        snprintf(msg, sizeof msg, "response_format %s together with tools", what);
        return cannot(err, "unsupported_value", "response_format", msg);
    }
    if (r->tool_choice.kind == PD_TOOL_CHOICE_REQUIRED ||
        r->tool_choice.kind == PD_TOOL_CHOICE_NAMED) {
        snprintf(msg, sizeof msg, "tool_choice 'required' or a named tool with response_format %s",
                 what);
        return cannot(err, "unsupported_value", "tool_choice", msg);
    }
    if (f->kind == PD_FORMAT_JSON_SCHEMA && f->schema.text && !object_schema(&f->schema))
        return cannot(err, "unsupported_value", "response_format",
                      "a response_format json_schema whose top level is not an object");
    return PD_OK;
}

static bool tool_name_taken(const pd_chat_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_tools; i++)
        if (r->tools[i].name && strcmp(r->tools[i].name, name) == 0)
            return true;
    for (size_t i = 0; i < r->n_messages; i++)
        for (size_t j = 0; j < r->messages[i].n_tool_calls; j++) {
            const char *used = r->messages[i].tool_calls[j].name;
            if (used && strcmp(used, name) == 0)
                return true;
        }
    return false;
}

bool pd_anthropic_json_tool(const pd_chat_request *r, char name[PD_ANTHROPIC_TOOL_NAME_MAX + 1])
{
    name[0] = '\0';
    if (!wants_json(r))
        return false;
    snprintf(name, PD_ANTHROPIC_TOOL_NAME_MAX + 1, "json_response");
    for (unsigned k = 2; tool_name_taken(r, name); k++) /* ends: the names used are finite */
        snprintf(name, PD_ANTHROPIC_TOOL_NAME_MAX + 1, "json_response_%u", k);
    return true;
}

/* Everything the Anthropic API cannot express, rejected before anything is written. */
static pd_result check_request(const pd_chat_request *r, pd_api_error *err)
{
    const pd_chat_sampling *s = &r->sampling;
    if (s->has_n && s->n > 1)
        return cannot(err, "unsupported_value", "n", "n > 1");
    if (s->logprobs == PD_TRI_TRUE || (s->has_top_logprobs && s->top_logprobs > 0))
        return cannot(err, "unsupported_parameter", "logprobs", "logprobs");
    pd_result rc = check_format(r, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->n_tools; i++) {
        char p[PATH_MAX_LEN];
        if (r->tools[i].kind == PD_TOOL_CUSTOM)
            return cannot(err, "unsupported_value", pathf(p, sizeof p, "tools[%zu]", i),
                          "a custom tool");
    }
    bool any = false;
    for (size_t i = 0; i < r->n_messages; i++) {
        rc = check_parts(&r->messages[i], i, err);
        if (rc)
            return rc;
        any |= !is_system(&r->messages[i]) && block_count(&r->messages[i]) > 0;
    }
    if (!any)
        return cannot(err, "invalid_value", "messages",
                      "a conversation without a user or assistant message");
    return PD_OK;
}

/* A tool-call id as Anthropic accepts it (^[A-Za-z0-9_-]+$): other bytes become '_'. */
static void write_tool_id(pd_jw *w, const char *id)
{
    pd_jw_sep(w);
    pd_jw_raw(w, "\"", 1);
    if (!id || !id[0])
        id = "toolu_missing";
    size_t run = 0, i = 0; /* the bytes kept are copied in runs, not one by one */
    for (; id[i]; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) {
            pd_jw_raw(w, id + run, i - run);
            pd_jw_raw(w, "_", 1);
            run = i + 1;
        }
    }
    pd_jw_raw(w, id + run, i - run);
    pd_jw_raw(w, "\"", 1);
}

/* A tool call's arguments as the JSON object Anthropic wants (see anthropic.h). */
#define INPUT_NODES 64 /* on the stack: the arguments of a usual tool call */
#define INPUT_SCRATCH 1024

static void write_tool_input(pd_jw *w, const char *args)
{
    const char *s = nz(args);
    pd_jr_doc doc;
    pd_jr_val nodes[INPUT_NODES]; /* no malloc per call (see write_messages) */
    char scratch[INPUT_SCRATCH];
    pd_jr_mem mem = {nodes, INPUT_NODES, scratch, sizeof scratch};
    if (pd_jr_parse_in(&doc, s, strlen(s), &mem) == PD_OK && pd_jr_is_object(pd_jr_root(&doc))) {
        pd_jr_write(w, pd_jr_root(&doc)); /* what json_loadb + pd_jw_json wrote (jsonr.h) */
    } else {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        pd_jw_open(w, '{');
        if (*s) {
            pd_jw_key(w, "_raw_arguments");
            pd_jw_str(w, args);
        }
        pd_jw_close(w, '}');
    }
    pd_jr_free(&doc);
}

static void write_tool_use(pd_jw *w, const char *id, const char *name, const char *args)
{
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_code_str(w, "tool_use");
    pd_jw_key(w, "id");
    write_tool_id(w, id);
    pd_jw_key(w, "name");
    pd_jw_str(w, nz(name));
    pd_jw_key(w, "input");
    write_tool_input(w, args);
    pd_jw_close(w, '}');
}

static void write_text_block(pd_jw *w, const char *text)
{
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_code_str(w, "text");
    pd_jw_key(w, "text");
    pd_jw_str(w, text);
    pd_jw_close(w, '}');
}

static void write_source(pd_jw *w, const char *type, const char *media_type, const char *data)
{
    pd_jw_key(w, "source");
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_str(w, type);
    pd_jw_key(w, "media_type");
    pd_jw_str(w, media_type);
    pd_jw_key(w, "data");
    pd_jw_str(w, data);
    pd_jw_close(w, '}');
}

/* One content part as a block: text (non-empty), image, PDF document. */
static void write_part_block(pd_jw *w, const pd_chat_part *p)
{
    if (p->kind == PD_PART_TEXT || p->kind == PD_PART_REFUSAL) {
        if (has_text(p->text))
            write_text_block(w, p->text);
        return;
    }
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    if (p->kind == PD_PART_IMAGE) {
        pd_jw_code_str(w, "image");
        if (p->url) {
            pd_jw_key(w, "source");
            pd_jw_open(w, '{');
            pd_jw_key(w, "type");
            pd_jw_code_str(w, "url");
            pd_jw_key(w, "url");
            pd_jw_str(w, p->url);
            pd_jw_close(w, '}');
        } else {
            write_source(w, "base64", nz(p->media_type), nz(p->data));
        }
    } else { /* a PDF: check_request let no other file through */
        pd_jw_code_str(w, "document");
        write_source(w, "base64", "application/pdf", nz(p->data) + 28);
        pd_jw_kv(w, "title", p->filename);
    }
    pd_jw_close(w, '}');
}

static void write_tool_result(pd_jw *w, const pd_chat_message *m)
{
    size_t texts = 0, others = 0;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i].kind == PD_PART_TEXT || m->parts[i].kind == PD_PART_REFUSAL)
            texts += has_text(m->parts[i].text);
        else if (m->parts[i].kind == PD_PART_IMAGE)
            others++;
    }
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_code_str(w, "tool_result");
    pd_jw_key(w, "tool_use_id");
    write_tool_id(w, m->tool_call_id);
    if (texts == 1 && others == 0) {
        for (size_t i = 0; i < m->n_parts; i++) {
            if (has_text(m->parts[i].text) && m->parts[i].kind != PD_PART_IMAGE) {
                pd_jw_key(w, "content");
                pd_jw_str(w, m->parts[i].text);
            }
        }
    } else if (texts + others) {
        pd_jw_key(w, "content");
        pd_jw_open(w, '[');
        for (size_t i = 0; i < m->n_parts; i++)
            if (m->parts[i].kind != PD_PART_FILE && m->parts[i].kind != PD_PART_AUDIO)
                write_part_block(w, &m->parts[i]);
        pd_jw_close(w, ']');
    }
    pd_jw_close(w, '}');
}

static void write_assistant_blocks(pd_jw *w, const pd_chat_message *m)
{
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i].kind == PD_PART_TEXT || m->parts[i].kind == PD_PART_REFUSAL)
            write_part_block(w, &m->parts[i]);
    if (has_text(m->refusal))
        write_text_block(w, m->refusal);
    for (size_t i = 0; i < m->n_tool_calls; i++)
        write_tool_use(w, m->tool_calls[i].id, m->tool_calls[i].name, m->tool_calls[i].arguments);
}

/* The only text of a one-block turn, or NULL when the turn is not that (then it is an array). */
static const char *lone_text(const pd_chat_request *r, const size_t *idx, size_t n)
{
    if (n != 1 || block_count(&r->messages[idx[0]]) != 1)
        return NULL;
    const pd_chat_message *m = &r->messages[idx[0]];
    if (m->role == PD_ROLE_TOOL || m->n_tool_calls)
        return NULL;
    if (m->role == PD_ROLE_ASSISTANT && has_text(m->refusal))
        return m->refusal;
    for (size_t i = 0; i < m->n_parts; i++)
        if ((m->parts[i].kind == PD_PART_TEXT || m->parts[i].kind == PD_PART_REFUSAL) &&
            has_text(m->parts[i].text))
            return m->parts[i].text;
    return NULL; /* an image or a document */
}

/* One turn: the messages idx[0..n) (all of one side). Tool results first (Anthropic wants
   them at the start of the user message), then the other blocks in order. */
static void write_turn(pd_jw *w, const pd_chat_request *r, const size_t *idx, size_t n)
{
    bool user = user_side(&r->messages[idx[0]]);
    pd_jw_open(w, '{');
    pd_jw_key(w, "role");
    pd_jw_code_str(w, user ? "user" : "assistant");
    pd_jw_key(w, "content");
    const char *lone = lone_text(r, idx, n);
    if (lone) {
        pd_jw_str(w, lone);
        pd_jw_close(w, '}');
        return;
    }
    pd_jw_open(w, '[');
    for (size_t k = 0; user && k < n; k++)
        if (r->messages[idx[k]].role == PD_ROLE_TOOL)
            write_tool_result(w, &r->messages[idx[k]]);
    for (size_t k = 0; k < n; k++) {
        const pd_chat_message *m = &r->messages[idx[k]];
        if (m->role == PD_ROLE_ASSISTANT)
            write_assistant_blocks(w, m);
        else if (m->role == PD_ROLE_USER)
            for (size_t i = 0; i < m->n_parts; i++)
                write_part_block(w, &m->parts[i]);
    }
    pd_jw_close(w, ']');
    pd_jw_close(w, '}');
}

#define STACK_TURN 64 /* messages indexed on the stack; more are rare */

static void write_messages(pd_jw *w, const pd_chat_request *r)
{
    /* no malloc for the usual request: a small block freed here made glibc consolidate its
       fastbins when the request's arena was freed next (a tenth of a translation) */
    size_t stack_idx[STACK_TURN], n = 0;
    size_t *idx = r->n_messages <= STACK_TURN ? stack_idx : pd_xcalloc(r->n_messages, sizeof *idx);
    pd_jw_key(w, "messages");
    pd_jw_open(w, '[');
    for (size_t i = 0; i < r->n_messages; i++) {
        const pd_chat_message *m = &r->messages[i];
        if (is_system(m) || block_count(m) == 0)
            continue;
        if (n && user_side(&r->messages[idx[0]]) != user_side(m)) {
            write_turn(w, r, idx, n);
            n = 0;
        }
        idx[n++] = i;
    }
    if (n)
        write_turn(w, r, idx, n);
    pd_jw_close(w, ']');
    if (idx != stack_idx)
        free(idx);
}

/* Every system and developer text, joined with a blank line, as one string. */
static void write_system(pd_jw *w, const pd_chat_request *r)
{
    bool any = false;
    for (size_t i = 0; i < r->n_messages; i++) {
        const pd_chat_message *m = &r->messages[i];
        for (size_t j = 0; is_system(m) && j < m->n_parts; j++) {
            const char *t = m->parts[j].text;
            if (m->parts[j].kind != PD_PART_TEXT || !has_text(t))
                continue;
            if (!any) {
                pd_jw_key(w, "system");
                pd_jw_sep(w);
                pd_jw_raw(w, "\"", 1);
            } else {
                pd_jw_raw(w, "\\n\\n", 4);
            }
            pd_jw_escape(w, t, strlen(t));
            any = true;
        }
    }
    if (any)
        pd_jw_raw(w, "\"", 1);
}

static bool tool_allowed(const pd_chat_tool_choice *c, const char *name)
{
    if (!c->allowed || (c->kind != PD_TOOL_CHOICE_AUTO && c->kind != PD_TOOL_CHOICE_REQUIRED))
        return true;
    for (size_t i = 0; i < c->n_allowed; i++)
        if (c->allowed[i] && name && strcmp(c->allowed[i], name) == 0)
            return true;
    return false;
}

static bool write_tools(pd_jw *w, const pd_chat_request *r)
{
    bool any = false;
    for (size_t i = 0; i < r->n_tools; i++) {
        const pd_chat_tool *t = &r->tools[i];
        if (!tool_allowed(&r->tool_choice, t->name))
            continue;
        if (!any) {
            pd_jw_key(w, "tools");
            pd_jw_open(w, '[');
            any = true;
        }
        pd_jw_open(w, '{');
        pd_jw_key(w, "name");
        pd_jw_str(w, nz(t->name));
        pd_jw_kv(w, "description", t->description);
        pd_jw_key(w, "input_schema");
        if (is_object_text(&t->parameters)) {
            pd_jw_text(w, &t->parameters);
        } else { /* Anthropic requires an object schema (protocols.md 6.4) */
            static const char empty[] = "{\"type\":\"object\",\"properties\":{}}";
            pd_jw_raw(w, empty, sizeof empty - 1);
            w->comma = true;
        }
        pd_jw_close(w, '}');
    }
    if (any)
        pd_jw_close(w, ']');
    return any;
}

static void write_tool_choice(pd_jw *w, const pd_chat_request *r)
{
    const pd_chat_tool_choice *c = &r->tool_choice;
    bool no_parallel = r->parallel_tool_calls == PD_TRI_FALSE;
    const char *type = NULL;
    switch (c->kind) {
    case PD_TOOL_CHOICE_UNSET: type = no_parallel ? "auto" : NULL; break;
    case PD_TOOL_CHOICE_NONE: type = "none"; break;
    case PD_TOOL_CHOICE_AUTO: type = "auto"; break;
    case PD_TOOL_CHOICE_REQUIRED: type = "any"; break;
    case PD_TOOL_CHOICE_NAMED: type = "tool"; break;
    }
    if (!type)
        return;
    pd_jw_key(w, "tool_choice");
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_str(w, type);
    if (c->kind == PD_TOOL_CHOICE_NAMED) {
        pd_jw_key(w, "name");
        pd_jw_str(w, nz(c->name));
    }
    if (no_parallel && c->kind != PD_TOOL_CHOICE_NONE) {
        pd_jw_key(w, "disable_parallel_tool_use");
        pd_jw_bool(w, true);
    }
    pd_jw_close(w, '}');
}

/* The forced tool that carries a JSON response format (see anthropic.h). */
static void write_json_tool(pd_jw *w, const pd_chat_request *r, const char *name)
{
    const pd_chat_response_format *f = &r->response_format;
    pd_jw_key(w, "tools");
    pd_jw_open(w, '[');
    pd_jw_open(w, '{');
    pd_jw_kv(w, "name", name);
    if (f->description)
        pd_jw_kv(w, "description", f->description);
    pd_jw_key(w, "input_schema");
    if (f->kind == PD_FORMAT_JSON_SCHEMA && is_object_text(&f->schema)) {
        pd_jw_text(w, &f->schema);
    } else {
        static const char any_object[] = "{\"type\":\"object\"}";
        pd_jw_sep(w);
        pd_jw_raw(w, any_object, sizeof any_object - 1);
    }
    pd_jw_close(w, '}');
    pd_jw_close(w, ']');
    pd_jw_key(w, "tool_choice");
    pd_jw_open(w, '{');
    pd_jw_kv(w, "type", "tool");
    pd_jw_kv(w, "name", name);
    pd_jw_key(w, "disable_parallel_tool_use");
    pd_jw_bool(w, true);
    pd_jw_close(w, '}');
}

static void write_sampling(pd_jw *w, const pd_chat_request *r)
{
    const pd_chat_sampling *s = &r->sampling;
    pd_jw_kreal(w, "temperature", s->has_temperature, s->temperature > 1 ? 1.0 : s->temperature);
    pd_jw_kreal(w, "top_p", s->has_top_p && !s->has_temperature, s->top_p);
    pd_jw_kint(w, "top_k", s->has_top_k && s->top_k >= 0, s->top_k);
    if (s->n_stop) {
        pd_jw_key(w, "stop_sequences");
        pd_jw_open(w, '[');
        for (size_t i = 0; i < s->n_stop; i++)
            pd_jw_str(w, nz(s->stop[i]));
        pd_jw_close(w, ']');
    }
    if (r->user) {
        pd_jw_key(w, "metadata");
        pd_jw_open(w, '{');
        pd_jw_kv(w, "user_id", r->user);
        pd_jw_close(w, '}');
    }
}

pd_result pd_anthropic_write_chat_request(const pd_chat_request *r, const char *model,
                                          pd_buf *out, pd_api_error *err)
{
    memset(err, 0, sizeof *err);
    pd_result rc = check_request(r, err);
    if (rc)
        return rc;
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "model");
    pd_jw_str(&w, nz(model ? model : r->model));
    pd_jw_key(&w, "max_tokens");
    pd_jw_int(&w, r->sampling.has_max_tokens ? r->sampling.max_tokens
                                             : PD_ANTHROPIC_DEFAULT_MAX_TOKENS);
    write_system(&w, r);
    write_messages(&w, r);
    char json_tool[PD_ANTHROPIC_TOOL_NAME_MAX + 1];
    if (pd_anthropic_json_tool(r, json_tool))
        write_json_tool(&w, r, json_tool);
    else if (write_tools(&w, r))
        write_tool_choice(&w, r);
    write_sampling(&w, r);
    if (r->stream) {
        pd_jw_key(&w, "stream");
        pd_jw_bool(&w, true);
    }
    pd_jw_close(&w, '}');
    rc = pd_jw_end(&w, mark);
    if (rc)
        pd_openai_error_set(err, 413, "invalid_request_error", NULL, NULL,
                            "the request is too large to send to the upstream");
    return rc;
}

/* ==== responses ========================================================================= */

static const struct {
    const char *name;
    pd_chat_finish finish;
} stop_reasons[] = {
    {"end_turn", PD_FINISH_STOP},
    {"stop_sequence", PD_FINISH_STOP},
    {"pause_turn", PD_FINISH_STOP}, /* a server tool paused the turn; OpenAI has no word for it */
    {"max_tokens", PD_FINISH_LENGTH},
    {"model_context_window_exceeded", PD_FINISH_LENGTH},
    {"tool_use", PD_FINISH_TOOL_CALLS},
    {"refusal", PD_FINISH_CONTENT_FILTER},
};

static pd_chat_finish finish_from(const json_t *v)
{
    if (!v || json_is_null(v))
        return PD_FINISH_NONE;
    for (size_t i = 0; json_is_string(v) && i < sizeof stop_reasons / sizeof *stop_reasons; i++)
        if (strcmp(stop_reasons[i].name, json_string_value(v)) == 0)
            return stop_reasons[i].finish;
    return PD_FINISH_UNKNOWN;
}

/* The stop_reason an Anthropic client is told; tool_use whenever tools were called
   (protocols.md 9.3). */
static const char *stop_reason_of(pd_chat_finish f, bool tools)
{
    if (tools)
        return "tool_use";
    switch (f) {
    case PD_FINISH_LENGTH: return "max_tokens";
    case PD_FINISH_TOOL_CALLS: return "tool_use";
    case PD_FINISH_CONTENT_FILTER: return "refusal";
    default: return "end_turn";
    }
}

/* Anthropic's counts -> canonical usage (OpenAI semantics: the prompt includes the cache). */
static void usage_from(int64_t in, int64_t cache_write, int64_t cache_read, int64_t out,
                       int64_t thinking, pd_chat_usage *u)
{
    pd_chat_usage_init(u);
    u->prompt_tokens = in >= 0 ? in + max0(cache_write) + max0(cache_read) : PD_CHAT_COUNT_UNKNOWN;
    u->completion_tokens = out;
    u->cached_tokens = cache_read;
    u->cache_write_tokens = cache_write;
    u->reasoning_tokens = thinking;
}

static void read_usage(const json_t *u, pd_chat_usage *out)
{
    usage_from(count(u, "input_tokens"), count(u, "cache_creation_input_tokens"),
               count(u, "cache_read_input_tokens"), count(u, "output_tokens"),
               count(json_object_get(u, "output_tokens_details"), "thinking_tokens"), out);
}

static void read_tool_use(const json_t *b, pd_chat_message *m)
{
    pd_chat_tool_call *tc = &m->tool_calls[m->n_tool_calls++];
    const json_t *id = json_object_get(b, "id"), *name = json_object_get(b, "name");
    const json_t *input = json_object_get(b, "input");
    tc->kind = PD_TOOL_FUNCTION;
    tc->id = json_is_string(id) && json_string_length(id) ? dup_json_str(id) : NULL;
    tc->name = json_is_string(name) ? dup_json_str(name) : pd_xstrdup("");
    tc->arguments = json_is_object(input) ? pd_jw_dump(input) : pd_xstrdup("{}");
}

/* The forced JSON tool's input as the message's text (see pd_anthropic_parse_json_response). */
static void read_json_tool(const json_t *b, pd_chat_message *m)
{
    const json_t *input = json_object_get(b, "input");
    pd_chat_part *p = &m->parts[m->n_parts++];
    p->kind = PD_PART_TEXT;
    p->text = json_is_object(input) ? pd_jw_dump(input) : pd_xstrdup("{}");
}

static bool is_json_tool(const json_t *b, const char *json_tool)
{
    return json_tool && json_tool[0] && str_eq(json_object_get(b, "type"), "tool_use") &&
           str_eq(json_object_get(b, "name"), json_tool);
}

/* A response's message (malloc'ed, canon/chat.h): thinking texts joined. */
static void append_reasoning(pd_chat_message *m, const char *s, size_t n)
{
    size_t old = m->reasoning ? strlen(m->reasoning) : 0;
    m->reasoning = pd_xrealloc(m->reasoning, old + n + 1);
    memcpy(m->reasoning + old, s, n);
    m->reasoning[old + n] = '\0';
}

static void read_content(const json_t *content, const char *json_tool, pd_chat_message *m)
{
    size_t n = json_array_size(content), i;
    const json_t *b;
    m->parts = pd_xcalloc(n ? n : 1, sizeof *m->parts);
    m->tool_calls = pd_xcalloc(n ? n : 1, sizeof *m->tool_calls);
    json_array_foreach(content, i, b)
    {
        const json_t *type = json_object_get(b, "type");
        const json_t *text = json_object_get(b, "text"), *thinking = json_object_get(b, "thinking");
        bool json_mode = json_tool && json_tool[0];
        if (is_json_tool(b, json_tool)) {
            read_json_tool(b, m);
        } else if (str_eq(type, "text") && json_is_string(text) && json_string_length(text) &&
                   !json_mode) {
            pd_chat_part *p = &m->parts[m->n_parts++];
            p->kind = PD_PART_TEXT;
            p->text = dup_json_str(text);
        } else if (str_eq(type, "thinking") && json_is_string(thinking)) {
            append_reasoning(m, json_string_value(thinking), json_string_length(thinking));
        } else if (str_eq(type, "tool_use")) {
            read_tool_use(b, m);
        }
    }
    if (!m->n_tool_calls) {
        free(m->tool_calls);
        m->tool_calls = NULL;
    }
}

/* With the forced JSON tool, its tool_use is the answer's end, not a call for the client. */
static pd_chat_finish json_finish(pd_chat_finish f, const char *json_tool, size_t calls)
{
    bool json_mode = json_tool && json_tool[0];
    return json_mode && f == PD_FINISH_TOOL_CALLS && calls == 0 ? PD_FINISH_STOP : f;
}

pd_result pd_anthropic_parse_chat_response(const char *body, size_t len, pd_chat_response *out)
{
    return pd_anthropic_parse_json_response(body, len, NULL, out);
}

pd_result pd_anthropic_parse_json_response(const char *body, size_t len, const char *json_tool,
                                           pd_chat_response *out)
{
    pd_chat_response_init(out);
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    const json_t *content = json_object_get(root, "content");
    if (!json_is_object(root) || !json_is_array(content)) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    const json_t *id = json_object_get(root, "id"), *model = json_object_get(root, "model");
    out->id = json_is_string(id) ? dup_json_str(id) : NULL;
    out->model = json_is_string(model) ? dup_json_str(model) : NULL;
    out->choices = pd_xcalloc(1, sizeof *out->choices);
    out->n_choices = 1;
    pd_chat_choice *c = &out->choices[0];
    c->message.role = PD_ROLE_ASSISTANT;
    read_content(content, json_tool, &c->message);
    c->finish = json_finish(finish_from(json_object_get(root, "stop_reason")), json_tool,
                            c->message.n_tool_calls);
    read_usage(json_object_get(root, "usage"), &out->usage);
    json_decref(root);
    return PD_OK;
}

/* The four counts an Anthropic client sees (protocols.md 6.9, reverse), unknown as 0, and the
   thinking part of the output when known. */
static void write_usage(pd_jw *w, const pd_chat_usage *u)
{
    int64_t cached = max0(u->cached_tokens), written = max0(u->cache_write_tokens);
    pd_jw_open(w, '{');
    pd_jw_key(w, "input_tokens");
    pd_jw_int(w, max0(max0(u->prompt_tokens) - cached - written));
    pd_jw_key(w, "cache_creation_input_tokens");
    pd_jw_int(w, written);
    pd_jw_key(w, "cache_read_input_tokens");
    pd_jw_int(w, cached);
    pd_jw_key(w, "output_tokens");
    pd_jw_int(w, max0(u->completion_tokens));
    if (u->reasoning_tokens >= 0) {
        pd_jw_key(w, "output_tokens_details");
        pd_jw_open(w, '{');
        pd_jw_key(w, "thinking_tokens");
        pd_jw_int(w, u->reasoning_tokens);
        pd_jw_close(w, '}');
    }
    pd_jw_close(w, '}');
}

/* A tool-call id for the client: the call's own, else toolu_<prefix><index>. */
static void write_call_id(pd_jw *w, const char *id, const char *prefix, size_t index)
{
    if (id && id[0]) {
        pd_jw_str(w, id);
        return;
    }
    char idx[24];
    snprintf(idx, sizeof idx, "%zu\"", index);
    pd_jw_sep(w);
    pd_jw_raw(w, "\"toolu_", 7);
    pd_jw_escape(w, prefix, strlen(prefix));
    pd_jw_raw(w, idx, strlen(idx));
}

static void write_response_content(pd_jw *w, const pd_chat_message *m)
{
    pd_jw_open(w, '[');
    if (has_text(m->reasoning)) {
        pd_jw_open(w, '{');
        pd_jw_key(w, "type");
        pd_jw_code_str(w, "thinking");
        pd_jw_key(w, "thinking");
        pd_jw_str(w, m->reasoning);
        pd_jw_key(w, "signature");
        pd_jw_code_str(w, "");
        pd_jw_close(w, '}');
    }
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i].kind == PD_PART_TEXT || m->parts[i].kind == PD_PART_REFUSAL)
            write_part_block(w, &m->parts[i]);
    if (has_text(m->refusal))
        write_text_block(w, m->refusal);
    for (size_t i = 0; i < m->n_tool_calls; i++) {
        const pd_chat_tool_call *tc = &m->tool_calls[i];
        pd_jw_open(w, '{');
        pd_jw_key(w, "type");
        pd_jw_code_str(w, "tool_use");
        pd_jw_key(w, "id");
        write_call_id(w, tc->id, "", i);
        pd_jw_key(w, "name");
        pd_jw_str(w, nz(tc->name));
        pd_jw_key(w, "input");
        write_tool_input(w, tc->arguments);
        pd_jw_close(w, '}');
    }
    pd_jw_close(w, ']');
}

pd_result pd_anthropic_write_chat_response(const pd_chat_response *r, pd_buf *out)
{
    static const pd_chat_message none = {.role = PD_ROLE_ASSISTANT};
    const pd_chat_message *m = r->n_choices ? &r->choices[0].message : &none;
    pd_chat_finish finish = r->n_choices ? r->choices[0].finish : PD_FINISH_NONE;
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "id");
    pd_jw_str(&w, nz(r->id));
    pd_jw_key(&w, "type");
    pd_jw_code_str(&w, "message");
    pd_jw_key(&w, "role");
    pd_jw_code_str(&w, "assistant");
    pd_jw_key(&w, "model");
    pd_jw_str(&w, nz(r->model));
    pd_jw_key(&w, "content");
    write_response_content(&w, m);
    pd_jw_key(&w, "stop_reason");
    pd_jw_str(&w, stop_reason_of(finish, m->n_tool_calls > 0));
    pd_jw_key(&w, "stop_sequence");
    pd_jw_null(&w);
    pd_jw_key(&w, "stop_details");
    pd_jw_null(&w);
    pd_jw_key(&w, "usage");
    write_usage(&w, &r->usage);
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ==== stream decoding =================================================================== */

enum { BLK_NONE = 0, BLK_TEXT, BLK_THINKING, BLK_TOOL, BLK_JSON, BLK_OTHER };
enum { ARGS_NONE = 0, ARGS_DELTAS, ARGS_FROM_START }; /* decoder.args for tool blocks */

void pd_anthropic_decoder_init(pd_anthropic_decoder *d, size_t max_event_bytes)
{
    memset(d, 0, sizeof *d);
    pd_sse_init(&d->sse, max_event_bytes);
    d->in = d->cache_write = d->cache_read = d->out = d->thinking = PD_CHAT_COUNT_UNKNOWN;
    d->block = -1;
}

void pd_anthropic_decoder_free(pd_anthropic_decoder *d)
{
    if (!d)
        return;
    pd_sse_free(&d->sse);
    free(d->id);
    free(d->model);
    d->id = d->model = NULL;
}

void pd_anthropic_decoder_set_json_tool(pd_anthropic_decoder *d, const char *json_tool)
{
    snprintf(d->json_tool, sizeof d->json_tool, "%s", nz(json_tool));
}

static pd_result deliver(pd_anthropic_decoder *d, pd_chat_event *ev)
{
    ev->id = d->id;
    ev->model = d->model;
    return d->cb(d->ud, ev) ? PD_ERR_CLOSED : PD_OK;
}

static pd_result deliver_bytes(pd_anthropic_decoder *d, pd_chat_event_kind kind, const char *s,
                               size_t len)
{
    if (len == 0)
        return PD_OK;
    pd_chat_event ev;
    pd_chat_event_init(&ev, kind);
    ev.text = s;
    ev.text_len = len;
    ev.tool_index = d->tool;
    return deliver(d, &ev);
}

static pd_result deliver_text(pd_anthropic_decoder *d, pd_chat_event_kind kind, const json_t *s)
{
    if (!json_is_string(s))
        return PD_OK;
    return deliver_bytes(d, kind, json_string_value(s), json_string_length(s));
}

/* Assigns the counts a usage object carries (they are totals so far: never added). */
static void take_usage(pd_anthropic_decoder *d, const json_t *u)
{
    int64_t v;
    if (!json_is_object(u))
        return;
    if ((v = count(u, "input_tokens")) >= 0)
        d->in = v;
    if ((v = count(u, "cache_creation_input_tokens")) >= 0)
        d->cache_write = v;
    if ((v = count(u, "cache_read_input_tokens")) >= 0)
        d->cache_read = v;
    if ((v = count(u, "output_tokens")) >= 0)
        d->out = v;
    if ((v = count(json_object_get(u, "output_tokens_details"), "thinking_tokens")) >= 0)
        d->thinking = v;
}

/* Ends the open block: a tool call that never got arguments gets "{}" (an empty
   input_json accumulation means an empty object). */
static pd_result close_block(pd_anthropic_decoder *d)
{
    pd_result rc = PD_OK;
    if ((d->kind == BLK_TOOL || d->kind == BLK_JSON) && d->args == ARGS_NONE) {
        pd_chat_event ev;
        pd_chat_event_init(&ev, d->kind == BLK_JSON ? PD_EVENT_TEXT : PD_EVENT_TOOL_ARGS);
        ev.tool_index = d->tool;
        ev.text = "{}";
        ev.text_len = 2;
        rc = deliver(d, &ev);
    }
    d->block = -1;
    d->kind = BLK_NONE;
    d->args = ARGS_NONE;
    return rc;
}

static pd_result start_tool(pd_anthropic_decoder *d, const json_t *cb)
{
    const json_t *id = json_object_get(cb, "id"), *name = json_object_get(cb, "name");
    const json_t *input = json_object_get(cb, "input");
    pd_chat_event ev;
    pd_result rc = PD_OK;
    if (d->json_tool[0] && str_eq(name, d->json_tool)) {
        d->kind = BLK_JSON; /* the answer itself: its input is the text, no call is shown */
    } else {
        pd_chat_event_init(&ev, PD_EVENT_TOOL_START);
        d->kind = BLK_TOOL;
        d->tool = d->tools++;
        ev.tool_index = d->tool;
        ev.tool_id = json_is_string(id) && json_string_length(id) ? json_string_value(id) : NULL;
        ev.tool_name = json_is_string(name) ? json_string_value(name) : "";
        rc = deliver(d, &ev);
    }
    if (rc || !json_is_object(input) || json_object_size(input) == 0)
        return rc;
    char *args = pd_jw_dump(input); /* a server that sends the whole input at the start */
    pd_chat_event_init(&ev, d->kind == BLK_JSON ? PD_EVENT_TEXT : PD_EVENT_TOOL_ARGS);
    ev.tool_index = d->tool;
    ev.text = args;
    ev.text_len = strlen(args);
    d->args = ARGS_FROM_START;
    rc = deliver(d, &ev);
    free(args);
    return rc;
}

static pd_result block_start(pd_anthropic_decoder *d, const json_t *root)
{
    pd_result rc = d->block >= 0 ? close_block(d) : PD_OK; /* a start without a stop before */
    const json_t *idx = json_object_get(root, "index"), *cb = json_object_get(root, "content_block");
    const json_t *type = json_object_get(cb, "type");
    if (rc)
        return rc;
    d->block = json_is_integer(idx) ? json_integer_value(idx) : d->block + 1;
    if (str_eq(type, "text") && d->json_tool[0]) {
        d->kind = BLK_OTHER; /* the client asked for JSON only */
        return PD_OK;
    }
    if (str_eq(type, "text")) {
        d->kind = BLK_TEXT;
        return deliver_text(d, PD_EVENT_TEXT, json_object_get(cb, "text"));
    }
    if (str_eq(type, "thinking")) {
        d->kind = BLK_THINKING;
        return deliver_text(d, PD_EVENT_REASONING, json_object_get(cb, "thinking"));
    }
    if (str_eq(type, "tool_use"))
        return start_tool(d, cb);
    d->kind = BLK_OTHER; /* redacted_thinking, server tool blocks: nothing canonical */
    return PD_OK;
}

static pd_result block_delta(pd_anthropic_decoder *d, const json_t *root)
{
    const json_t *idx = json_object_get(root, "index"), *delta = json_object_get(root, "delta");
    const json_t *type = json_object_get(delta, "type");
    if (d->block < 0 || (json_is_integer(idx) && json_integer_value(idx) != d->block))
        return PD_OK; /* not the open block: blocks never interleave, so this is noise */
    if (d->kind == BLK_OTHER)
        return PD_OK;
    if (str_eq(type, "text_delta"))
        return deliver_text(d, PD_EVENT_TEXT, json_object_get(delta, "text"));
    if (str_eq(type, "thinking_delta"))
        return deliver_text(d, PD_EVENT_REASONING, json_object_get(delta, "thinking"));
    if (str_eq(type, "input_json_delta") && (d->kind == BLK_TOOL || d->kind == BLK_JSON) &&
        d->args != ARGS_FROM_START) {
        const json_t *pj = json_object_get(delta, "partial_json");
        if (!json_is_string(pj) || !json_string_length(pj))
            return PD_OK;
        d->args = ARGS_DELTAS;
        return deliver_text(d, d->kind == BLK_JSON ? PD_EVENT_TEXT : PD_EVENT_TOOL_ARGS, pj);
    }
    return PD_OK; /* signature_delta, citations_delta, unknown deltas */
}

static pd_result message_stop(pd_anthropic_decoder *d)
{
    pd_result rc = d->block >= 0 ? close_block(d) : PD_OK;
    if (rc)
        return rc;
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_FINISH);
    ev.finish = d->finish == PD_FINISH_NONE ? PD_FINISH_STOP : d->finish;
    ev.finish = json_finish(ev.finish, d->json_tool, d->tools);
    if (d->tools && ev.finish == PD_FINISH_STOP)
        ev.finish = PD_FINISH_TOOL_CALLS;
    d->done = true;
    if ((rc = deliver(d, &ev)))
        return rc;
    pd_chat_event_init(&ev, PD_EVENT_USAGE);
    usage_from(d->in, d->cache_write, d->cache_read, d->out, d->thinking, &ev.usage);
    return pd_chat_usage_known(&ev.usage) ? deliver(d, &ev) : PD_OK;
}

static pd_result message_start(pd_anthropic_decoder *d, const json_t *root)
{
    const json_t *msg = json_object_get(root, "message");
    const json_t *id = json_object_get(msg, "id"), *model = json_object_get(msg, "model");
    free(d->id);
    free(d->model);
    d->id = json_is_string(id) ? dup_json_str(id) : NULL;
    d->model = json_is_string(model) ? dup_json_str(model) : NULL;
    take_usage(d, json_object_get(msg, "usage"));
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_ROLE);
    ev.role = PD_ROLE_ASSISTANT;
    return deliver(d, &ev);
}

/* An error event: {"type":"error","error":{"type","message"}}, or whatever text came. */
static pd_result stream_error(pd_anthropic_decoder *d, const json_t *root, const char *data,
                              size_t len)
{
    const json_t *e = json_object_get(root, "error");
    const json_t *type = json_object_get(e, "type"), *msg = json_object_get(e, "message");
    int status = pd_anthropic_error_status(json_string_value(type));
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_ERROR);
    ev.error_status = status ? status : 500;
    ev.error_type = status ? pd_anthropic_error_type(status) : "api_error";
    if (json_is_string(msg)) {
        ev.text = json_string_value(msg);
        ev.text_len = json_string_length(msg);
    } else {
        ev.text = data;
        ev.text_len = len;
    }
    d->failed = true;
    return deliver(d, &ev);
}

static pd_result dispatch(pd_anthropic_decoder *d, const char *type, const json_t *root)
{
    if (strcmp(type, "message_start") == 0)
        return message_start(d, root);
    if (strcmp(type, "content_block_start") == 0)
        return block_start(d, root);
    if (strcmp(type, "content_block_delta") == 0)
        return block_delta(d, root);
    if (strcmp(type, "content_block_stop") == 0)
        return d->block >= 0 ? close_block(d) : PD_OK;
    if (strcmp(type, "message_delta") == 0) {
        const json_t *reason = json_object_get(json_object_get(root, "delta"), "stop_reason");
        if (reason && !json_is_null(reason))
            d->finish = finish_from(reason);
        take_usage(d, json_object_get(root, "usage"));
        return PD_OK;
    }
    if (strcmp(type, "message_stop") == 0)
        return message_stop(d);
    return PD_OK; /* ping, and event types added after this was written */
}

/* A text_delta of the open text block without jansson (proto/fastev.h); false when the event
   is not one, and then the full decoder reads it. */
static bool fast_text(pd_anthropic_decoder *d, const char *name, size_t name_len, const char *data,
                      size_t len, pd_result *rc)
{
    char buf[PD_FASTEV_BUF];
    const char *text;
    size_t text_len;
    bool named_error = name && name_len == 5 && memcmp(name, "error", 5) == 0;
    if (d->full_path || d->kind != BLK_TEXT || named_error ||
        !pd_fastev_anthropic_text(&d->memo, data, len, d->block, buf, sizeof buf, &text, &text_len))
        return false;
    *rc = deliver_bytes(d, PD_EVENT_TEXT, text, text_len);
    return true;
}

pd_result pd_anthropic_decode_event(pd_anthropic_decoder *d, const char *name, size_t name_len,
                                    const char *data, size_t len, pd_chat_event_cb cb, void *ud)
{
    if (d->done || d->failed)
        return PD_OK;
    d->cb = cb;
    d->ud = ud;
    pd_result fast_rc;
    if (fast_text(d, name, name_len, data, len, &fast_rc))
        return fast_rc;
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, NULL); /* a model may emit U+0000 */
    const json_t *jt = json_object_get(root, "type");
    bool named_error = name && name_len == 5 && memcmp(name, "error", 5) == 0;
    pd_result rc;
    if (named_error || str_eq(jt, "error")) {
        rc = stream_error(d, root, data, len);
    } else if (!json_is_object(root)) {
        d->failed = true;
        rc = PD_ERR_INVALID;
    } else if (json_is_string(jt)) {
        rc = dispatch(d, json_string_value(jt), root);
    } else {
        char type[32] = "";
        if (name && name_len < sizeof type)
            memcpy(type, name, name_len), type[name_len] = '\0';
        rc = dispatch(d, type, root);
    }
    json_decref(root);
    return rc;
}

static int on_sse(void *ud, const pd_sse_event *ev)
{
    pd_anthropic_decoder *d = ud;
    d->rc = pd_anthropic_decode_event(d, ev->event, ev->event_len, ev->data, ev->data_len, d->cb,
                                      d->ud);
    return d->rc != PD_OK || d->done || d->failed;
}

pd_result pd_anthropic_decode(pd_anthropic_decoder *d, const char *bytes, size_t len,
                              pd_chat_event_cb cb, void *ud)
{
    if (d->done || d->failed)
        return PD_OK;
    d->cb = cb;
    d->ud = ud;
    d->rc = PD_OK;
    pd_result rc = pd_sse_feed(&d->sse, bytes, len, on_sse, d);
    if (rc == PD_ERR_TOO_LARGE) {
        d->failed = true;
        return PD_ERR_INVALID;
    }
    return rc == PD_ERR_CLOSED ? d->rc : rc;
}

/* ==== stream encoding =================================================================== */

void pd_anthropic_encoder_init(pd_anthropic_encoder *e, const char *id, const char *model)
{
    memset(e, 0, sizeof *e);
    e->id = pd_xstrdup(nz(id));
    e->model = pd_xstrdup(nz(model));
    pd_chat_usage_init(&e->usage);
}

void pd_anthropic_encoder_free(pd_anthropic_encoder *e)
{
    if (!e)
        return;
    free(e->id);
    free(e->model);
    e->id = e->model = NULL;
}

/* "event: NAME\ndata: " ... "\n\n" around one JSON object. */
static void event_begin(pd_jw *w, const char *name)
{
    pd_jw_raw(w, "event: ", 7);
    pd_jw_raw(w, name, strlen(name));
    pd_jw_raw(w, "\ndata: ", 7);
    w->comma = false;
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_str(w, name);
}

static void event_end(pd_jw *w)
{
    pd_jw_close(w, '}');
    pd_jw_raw(w, "\n\n", 2);
    w->comma = false;
}

static void write_message_start(pd_anthropic_encoder *e, pd_jw *w)
{
    static const char zero[] = "{\"input_tokens\":0,\"cache_creation_input_tokens\":0,"
                               "\"cache_read_input_tokens\":0,\"output_tokens\":0}";
    event_begin(w, "message_start");
    pd_jw_key(w, "message");
    pd_jw_open(w, '{');
    pd_jw_key(w, "id");
    pd_jw_str(w, e->id);
    pd_jw_key(w, "type");
    pd_jw_code_str(w, "message");
    pd_jw_key(w, "role");
    pd_jw_code_str(w, "assistant");
    pd_jw_key(w, "model");
    pd_jw_str(w, e->model);
    pd_jw_key(w, "content");
    pd_jw_raw(w, "[]", 2);
    w->comma = true;
    pd_jw_key(w, "stop_reason");
    pd_jw_null(w);
    pd_jw_key(w, "stop_sequence");
    pd_jw_null(w);
    pd_jw_key(w, "usage");
    pd_jw_raw(w, zero, sizeof zero - 1);
    w->comma = true;
    pd_jw_close(w, '}');
    event_end(w);
    e->started = true;
}

static void write_block_stop(pd_anthropic_encoder *e, pd_jw *w)
{
    if (e->open == BLK_NONE)
        return;
    event_begin(w, "content_block_stop");
    pd_jw_key(w, "index");
    pd_jw_int(w, e->next_block - 1);
    event_end(w);
    e->open = BLK_NONE;
}

/* Opens a block of `kind` (closing the open one); the caller writes its content_block. */
static void write_block_start(pd_anthropic_encoder *e, pd_jw *w, int kind)
{
    write_block_stop(e, w);
    event_begin(w, "content_block_start");
    pd_jw_key(w, "index");
    pd_jw_int(w, e->next_block++);
    pd_jw_key(w, "content_block");
    e->open = kind;
}

/* What event_begin, the keys and event_end would write, in a few copies: this is the event
   of almost every stream (type and key are literals that need no escaping). */
static void write_delta(pd_anthropic_encoder *e, pd_jw *w, const char *type, const char *key,
                        const pd_chat_event *ev)
{
    static const char head[] =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
    pd_jw_raw(w, head, sizeof head - 1);
    w->comma = false;
    pd_jw_int(w, e->next_block - 1);
    pd_jw_raw(w, ",\"delta\":{\"type\":\"", 18);
    pd_jw_raw(w, type, strlen(type));
    pd_jw_raw(w, "\",\"", 3);
    pd_jw_raw(w, key, strlen(key));
    pd_jw_raw(w, "\":\"", 3);
    pd_jw_escape(w, ev->text, ev->text_len);
    pd_jw_raw(w, "\"}}\n\n", 5);
    w->comma = false;
}

/* TEXT/REFUSAL (kind BLK_TEXT) and REASONING (BLK_THINKING) fragments. */
static void encode_text(pd_anthropic_encoder *e, pd_jw *w, const pd_chat_event *ev, int kind)
{
    if (e->open != kind) {
        write_block_start(e, w, kind);
        static const char text[] = "{\"type\":\"text\",\"text\":\"\"}";
        static const char thinking[] = "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}";
        if (kind == BLK_TEXT)
            pd_jw_raw(w, text, sizeof text - 1);
        else
            pd_jw_raw(w, thinking, sizeof thinking - 1);
        w->comma = true;
        event_end(w);
    }
    if (kind == BLK_TEXT)
        write_delta(e, w, "text_delta", "text", ev);
    else
        write_delta(e, w, "thinking_delta", "thinking", ev);
}

static void encode_tool_start(pd_anthropic_encoder *e, pd_jw *w, const pd_chat_event *ev)
{
    write_block_start(e, w, BLK_TOOL);
    pd_jw_open(w, '{');
    pd_jw_key(w, "type");
    pd_jw_code_str(w, "tool_use");
    pd_jw_key(w, "id");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%.40s_", e->id);
    write_call_id(w, ev->tool_id, prefix, ev->tool_index);
    pd_jw_key(w, "name");
    pd_jw_str(w, nz(ev->tool_name));
    pd_jw_key(w, "input");
    pd_jw_raw(w, "{}", 2);
    w->comma = true;
    pd_jw_close(w, '}');
    event_end(w);
    e->open_tool = ev->tool_index;
    e->tools_started++;
}

static void write_stream_error(pd_anthropic_encoder *e, pd_jw *w, const char *type,
                               const char *msg, size_t len)
{
    pd_jw_raw(w, "event: error\ndata: ", 19);
    w->comma = false;
    write_error_object(w, type, msg, len);
    pd_jw_raw(w, "\n\n", 2);
    e->ended = true;
}

/* One event into w, on e (a copy the caller commits when everything was written). */
static pd_result encode_one(pd_anthropic_encoder *e, pd_jw *w, const pd_chat_event *ev)
{
    if (ev->kind == PD_EVENT_ERROR) {
        int st = ev->error_status ? ev->error_status : 500;
        pd_api_error tmp = {.status = st, .type = ev->error_type};
        write_stream_error(e, w, client_error_type(&tmp), nz(ev->text), ev->text ? ev->text_len : 0);
        return PD_OK;
    }
    if (ev->kind == PD_EVENT_USAGE) {
        e->usage = ev->usage;
        return PD_OK;
    }
    if (ev->choice != 0)
        return PD_OK;
    bool texty = ev->kind == PD_EVENT_TEXT || ev->kind == PD_EVENT_REFUSAL ||
                 ev->kind == PD_EVENT_REASONING || ev->kind == PD_EVENT_TOOL_ARGS;
    if (texty && (!ev->text || !ev->text_len))
        return PD_OK;
    if (ev->kind == PD_EVENT_TOOL_ARGS && (e->open != BLK_TOOL || e->open_tool != ev->tool_index))
        return PD_ERR_INVALID;
    if (!e->started)
        write_message_start(e, w);
    switch (ev->kind) {
    case PD_EVENT_TEXT:
    case PD_EVENT_REFUSAL: encode_text(e, w, ev, BLK_TEXT); break;
    case PD_EVENT_REASONING: encode_text(e, w, ev, BLK_THINKING); break;
    case PD_EVENT_TOOL_START: encode_tool_start(e, w, ev); break;
    case PD_EVENT_TOOL_ARGS: write_delta(e, w, "input_json_delta", "partial_json", ev); break;
    case PD_EVENT_FINISH: e->finish = ev->finish; break;
    default: break; /* ROLE: message_start was all */
    }
    return PD_OK;
}

/* The digits of v before end; the start of them. */
static char *put_uint(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* A text fragment of choice 0 while a text block is open, the event of almost every stream:
   write_delta's bytes put together in one piece of room, without the copy of the encoder that
   encode_one needs (nothing in it changes). False when it is not that event or the buffer has
   no room for the worst case: encode_one then writes it. */
static bool encode_text_fast(const pd_anthropic_encoder *e, const pd_chat_event *ev, pd_buf *out)
{
    static const char head[] =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
    static const char mid[] = ",\"delta\":{\"type\":\"text_delta\",\"text\":\"";
    static const char tail[] = "\"}}\n\n";
    char digits[24], *d = put_uint(digits + sizeof digits, e->next_block - 1);
    size_t nd = (size_t)(digits + sizeof digits - d);
    pd_jw w;
    char *p;
    if ((ev->kind != PD_EVENT_TEXT && ev->kind != PD_EVENT_REFUSAL) || ev->choice != 0 ||
        !ev->text || !ev->text_len || ev->text_len > 1024 || !e->started || e->open != BLK_TEXT)
        return false;
    pd_jw_begin(&w, out);
    p = pd_jw_room(&w, sizeof head - 1 + nd + sizeof mid - 1 + 6 * ev->text_len + sizeof tail - 1);
    if (!p)
        return false;
    char *q = p;
    memcpy(q, head, sizeof head - 1);
    q += sizeof head - 1;
    memcpy(q, d, nd);
    q += nd;
    memcpy(q, mid, sizeof mid - 1);
    q = pd_jw_escape_to(q + sizeof mid - 1, ev->text, ev->text_len);
    memcpy(q, tail, sizeof tail - 1);
    pd_jw_wrote(&w, (size_t)(q - p) + sizeof tail - 1);
    return true;
}

pd_result pd_anthropic_encode_event(pd_anthropic_encoder *e, const pd_chat_event *ev, pd_buf *out)
{
    if (e->ended || encode_text_fast(e, ev, out))
        return PD_OK;
    pd_anthropic_encoder next = *e; /* shares id/model: committed or dropped, never freed */
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_result rc = encode_one(&next, &w, ev);
    if (rc) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
        return rc;
    }
    if (!(rc = pd_jw_end(&w, mark)))
        *e = next;
    return rc;
}

pd_result pd_anthropic_encode_end(pd_anthropic_encoder *e, pd_buf *out)
{
    if (e->ended)
        return PD_OK;
    pd_anthropic_encoder next = *e;
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    if (!next.started)
        write_message_start(&next, &w);
    write_block_stop(&next, &w);
    event_begin(&w, "message_delta");
    pd_jw_key(&w, "delta");
    pd_jw_open(&w, '{');
    pd_jw_key(&w, "stop_reason");
    pd_jw_str(&w, stop_reason_of(next.finish, next.tools_started > 0));
    pd_jw_key(&w, "stop_sequence");
    pd_jw_null(&w);
    pd_jw_key(&w, "stop_details");
    pd_jw_null(&w);
    pd_jw_close(&w, '}');
    pd_jw_key(&w, "usage");
    write_usage(&w, &next.usage);
    event_end(&w);
    event_begin(&w, "message_stop");
    event_end(&w);
    next.ended = true;
    pd_result rc = pd_jw_end(&w, mark);
    if (!rc)
        *e = next;
    return rc;
}

pd_result pd_anthropic_encode_error(pd_anthropic_encoder *e, const pd_api_error *err, pd_buf *out)
{
    if (e->ended)
        return PD_OK;
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_anthropic_encoder next = *e;
    write_stream_error(&next, &w, client_error_type(err), err->message, strlen(err->message));
    pd_result rc = pd_jw_end(&w, mark);
    if (!rc)
        *e = next;
    return rc;
}
