#include "relay/redact.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

typedef pd_result (*rewrite_fn)(void *ud, const char *text, size_t len, pd_buf *out);

/* Replaces *s by fn(*s); NULL stays NULL. */
static pd_result rewrite(char **s, rewrite_fn fn, void *ud)
{
    if (!*s)
        return PD_OK;
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_result rc = fn(ud, *s, strlen(*s), &out);
    if (rc == PD_OK) {
        free(*s);
        *s = pd_xstrndup(out.data ? out.data : "", out.len);
    }
    pd_buf_free(&out);
    return rc;
}

static pd_result rewrite_message(pd_chat_message *m, rewrite_fn fn, void *ud)
{
    pd_result rc = PD_OK;
    for (size_t i = 0; i < m->n_parts && !rc; i++)
        rc = rewrite(&m->parts[i].text, fn, ud);
    for (size_t i = 0; i < m->n_tool_calls && !rc; i++)
        rc = rewrite(&m->tool_calls[i].arguments, fn, ud);
    if (!rc)
        rc = rewrite(&m->name, fn, ud);
    if (!rc)
        rc = rewrite(&m->refusal, fn, ud);
    if (!rc)
        rc = rewrite(&m->reasoning, fn, ud);
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

static pd_result restore_one(void *ud, const char *text, size_t len, pd_buf *out)
{
    return pd_pii_restore(ud, text, len, out);
}

pd_result pd_redact_request(pd_pii_scanner *s, pd_pii_vault *v, pd_chat_request *req)
{
    redactor r = {s, v};
    pd_result rc = PD_OK;
    for (size_t i = 0; i < req->n_messages && !rc; i++)
        rc = rewrite_message(&req->messages[i], redact_one, &r);
    return rc;
}

pd_result pd_restore_response(const pd_pii_vault *v, pd_chat_response *r)
{
    pd_result rc = PD_OK;
    for (size_t i = 0; i < r->n_choices && !rc; i++)
        rc = rewrite_message(&r->choices[i].message, restore_one, (void *)v);
    return rc;
}
