#include "relay/redact.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/jsonw.h"

#include <jansson.h>

typedef pd_result (*rewrite_fn)(void *ud, const char *text, size_t len, pd_buf *out);

/* Replaces *s by fn(*s); NULL stays NULL. A request's text (req set) is replaced by a copy in
 * req's arena, the old one left there unused (canon/chat.h: a request's fields are never
 * freed on their own); PD_ERR_TOO_LARGE when the arena would pass its limit. A response's
 * text (req NULL) is malloc'ed and the old one freed. */
static pd_result rewrite(pd_chat_request *req, char **s, rewrite_fn fn, void *ud)
{
    if (!*s)
        return PD_OK;
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_result rc = fn(ud, *s, strlen(*s), &out);
    const char *text = out.data ? out.data : "";
    if (rc == PD_OK && req) {
        char *copy = pd_chat_request_strndup(req, text, out.len);
        if (copy)
            *s = copy;
        else
            rc = PD_ERR_TOO_LARGE;
    } else if (rc == PD_OK) {
        free(*s);
        *s = pd_xstrndup(text, out.len);
    }
    pd_buf_free(&out);
    return rc;
}

static pd_result rewrite_message(pd_chat_request *req, pd_chat_message *m, rewrite_fn fn,
                                 rewrite_fn args_fn, void *ud)
{
    pd_result rc = PD_OK;
    for (size_t i = 0; i < m->n_parts && !rc; i++)
        rc = rewrite(req, &m->parts[i].text, fn, ud);
    for (size_t i = 0; i < m->n_tool_calls && !rc; i++)
        rc = rewrite(req, &m->tool_calls[i].arguments, args_fn, ud);
    if (!rc)
        rc = rewrite(req, &m->name, fn, ud);
    if (!rc)
        rc = rewrite(req, &m->refusal, fn, ud);
    if (!rc)
        rc = rewrite(req, &m->reasoning, fn, ud);
    return rc;
}

typedef struct redactor {
    pd_pii_scanner *s;
    pd_pii_vault *v;
} redactor;

static pd_result redact_one(void *ud, const char *text, size_t len, pd_buf *out)
{
    redactor *r = ud;
    return pd_pii_redact_text(r->s, r->v, text, len, out);
}

/* JSON tool arguments: each decoded string is redacted (escapes would hide a value from the
 * patterns), then the document is written again; invalid JSON is redacted as plain text. */
static pd_result redact_strings(redactor *r, json_t *v)
{
    pd_result rc = PD_OK;
    if (json_is_string(v)) {
        pd_buf out;
        pd_buf_init(&out, 0);
        rc = pd_pii_redact_text(r->s, r->v, json_string_value(v), json_string_length(v), &out);
        if (!rc && json_string_setn(v, out.data ? out.data : "", out.len) != 0)
            rc = PD_ERR_NOMEM;
        pd_buf_free(&out);
    } else if (json_is_array(v)) {
        for (size_t i = 0; !rc && i < json_array_size(v); i++)
            rc = redact_strings(r, json_array_get(v, i));
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item) {
            if (!rc)
                rc = redact_strings(r, item);
        }
    }
    return rc;
}

static pd_result redact_arguments(void *ud, const char *text, size_t len, pd_buf *out)
{
    json_t *doc = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!doc)
        return redact_one(ud, text, len, out);
    pd_result rc = redact_strings(ud, doc);
    char *dump = rc ? NULL : pd_jw_dump(doc);
    json_decref(doc);
    if (!rc && !dump)
        rc = PD_ERR_NOMEM;
    if (!rc)
        rc = redact_one(ud, dump, strlen(dump), out); /* keys and anything the decoding missed */
    free(dump);
    return rc;
}

static pd_result restore_one(void *ud, const char *text, size_t len, pd_buf *out)
{
    return pd_pii_restore(ud, text, len, out);
}

pd_result pd_redact_request(pd_pii_scanner *s, pd_pii_vault *v, pd_chat_request *req)
{
    redactor r = {s, v};
    pd_result rc = PD_OK;
    for (size_t i = 0; i < req->n_messages && !rc; i++)
        rc = rewrite_message(req, &req->messages[i], redact_one, redact_arguments, &r);
    return rc;
}

pd_result pd_restore_response(const pd_pii_vault *v, pd_chat_response *r)
{
    pd_result rc = PD_OK;
    for (size_t i = 0; i < r->n_choices && !rc; i++)
        rc = rewrite_message(NULL, &r->choices[i].message, restore_one, restore_one, (void *)v);
    return rc;
}
