/* prompt.c: from canonical messages to prompt tokens.
 *
 * The chat template is the model's own (GGUF tokenizer.chat_template) applied by
 * llama_chat_apply_template, which recognises the common templates (Llama 3, ChatML, Mistral,
 * Gemma, Phi, ...) by their text and formats them natively (no Jinja). When the model has no
 * template or one llama.cpp does not recognise, ChatML is used; it is the format most
 * instruction-tuned models without a template were trained on, and the one llama-server falls
 * back to. Tokenization follows llama-server: special tokens in the rendered text are parsed,
 * and BOS is added when the vocabulary asks for it (unless the template already wrote it). */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* Applies tmpl to one message to see whether llama.cpp knows it. */
static bool template_works(const char *tmpl)
{
    llama_chat_message m = {"user", "hi"};
    char buf[256];
    return llama_chat_apply_template(tmpl, &m, 1, true, buf, (int32_t)sizeof buf) >= 0;
}

const char *pd_engine_pick_template(const struct llama_model *model, const char *override_tmpl,
                                    const char **kind)
{
    if (override_tmpl) {
        *kind = "custom";
        return template_works(override_tmpl) ? override_tmpl : NULL;
    }
    const char *tmpl = llama_model_chat_template(model, NULL);
    if (tmpl && template_works(tmpl)) {
        *kind = "model";
        return tmpl;
    }
    *kind = tmpl ? "chatml (fallback: model template not recognised)"
                 : "chatml (fallback: model has no template)";
    return "chatml";
}

/* The text of message m (its text and refusal parts joined), or NULL with err set. */
static char *message_text(const pd_chat_message *m, size_t index, pd_api_error *err)
{
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_append(&b, "", 0);
    for (size_t i = 0; i < m->n_parts; i++) {
        const pd_chat_part *p = &m->parts[i];
        if (p->kind != PD_PART_TEXT && p->kind != PD_PART_REFUSAL) {
            char param[64];
            snprintf(param, sizeof param, "messages[%zu].content[%zu]", index, i);
            pd_openai_error_set(err, 400, NULL, "unsupported_content", param,
                                "the local model takes text content only");
            pd_buf_free(&b);
            return NULL;
        }
        pd_buf_append_str(&b, p->text ? p->text : "");
    }
    return b.data;
}

/* Checks what the template cannot carry; 400 for tools and tool turns. */
static pd_result check_message(const pd_chat_message *m, size_t i, pd_api_error *err)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (m->role == PD_ROLE_TOOL || m->n_tool_calls > 0) {
        pd_openai_error_set(err, 400, NULL, "unsupported_parameter", param,
                            "tool calls are not supported by the local model");
        return PD_ERR_INVALID;
    }
    return PD_OK;
}

static const char *template_role(pd_chat_role r)
{
    return r == PD_ROLE_DEVELOPER ? "system" : pd_chat_role_name(r);
}

/* Calls llama_chat_apply_template, growing the buffer once if needed. */
static pd_result apply(const char *tmpl, const llama_chat_message *msgs, size_t n, size_t hint,
                       char **out, size_t *out_len)
{
    if (hint > INT32_MAX / 2)
        return PD_ERR_TOO_LARGE;
    int32_t cap = (int32_t)(hint * 2 + 512);
    char *buf = pd_xmalloc((size_t)cap);
    int32_t len = llama_chat_apply_template(tmpl, msgs, n, true, buf, cap);
    if (len >= cap) {
        cap = len + 1;
        buf = pd_xrealloc(buf, (size_t)cap);
        len = llama_chat_apply_template(tmpl, msgs, n, true, buf, cap);
    }
    if (len < 0 || len >= cap) {
        free(buf);
        return PD_ERR_INVALID;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = (size_t)len;
    return PD_OK;
}

pd_result pd_engine_render(const char *tmpl, const pd_chat_request *req, char **out,
                           size_t *out_len, pd_api_error *err)
{
    pd_result rc = PD_OK;
    size_t n = req->n_messages, total = 0, i = 0;
    llama_chat_message *msgs = pd_xcalloc(n ? n : 1, sizeof *msgs);
    for (; i < n; i++) {
        rc = check_message(&req->messages[i], i, err);
        char *text = rc ? NULL : message_text(&req->messages[i], i, err);
        if (!text) {
            rc = PD_ERR_INVALID;
            goto out;
        }
        msgs[i].role = template_role(req->messages[i].role);
        msgs[i].content = text;
        total += strlen(text) + 64;
    }
    /* A conversation that ends with the assistant's words is continued, not answered anew (as
     * llama-server's prefill_assistant): the turns before it with the assistant's header, then
     * its text, so generation picks up where it stops. */
    bool prefill = n >= 2 && req->messages[n - 1].role == PD_ROLE_ASSISTANT;
    rc = apply(tmpl, msgs, prefill ? n - 1 : n, total, out, out_len);
    if (!rc && prefill) {
        size_t add = strlen(msgs[n - 1].content);
        *out = pd_xrealloc(*out, *out_len + add + 1);
        memcpy(*out + *out_len, msgs[n - 1].content, add + 1);
        *out_len += add;
    }
    if (rc)
        pd_openai_error_set(err, 400, NULL, NULL, "messages",
                            "the chat template could not format these messages");
out:
    for (size_t k = 0; k < i; k++)
        free((char *)msgs[k].content);
    free(msgs);
    return rc;
}

pd_result pd_engine_tokenize(const struct llama_vocab *vocab, const char *text, size_t len,
                             bool chat, llama_token **out, int32_t *n_out)
{
    if (len > INT32_MAX - 8)
        return PD_ERR_TOO_LARGE;
    bool add_special = true;
    if (chat) {
        const char *bos = llama_vocab_get_add_bos(vocab)
                              ? llama_vocab_get_text(vocab, llama_vocab_bos(vocab))
                              : NULL;
        if (bos && *bos && strncmp(text, bos, strlen(bos)) == 0)
            add_special = false; /* the template wrote BOS itself */
    }
    int32_t cap = (int32_t)len + 8;
    llama_token *toks = pd_xmalloc((size_t)cap * sizeof *toks);
    int32_t n = llama_tokenize(vocab, text, (int32_t)len, toks, cap, add_special, true);
    if (n < 0 && n != INT32_MIN) {
        cap = -n;
        toks = pd_xrealloc(toks, (size_t)cap * sizeof *toks);
        n = llama_tokenize(vocab, text, (int32_t)len, toks, cap, add_special, true);
    }
    if (n < 0) {
        free(toks);
        return PD_ERR_TOO_LARGE;
    }
    *out = toks;
    *n_out = n;
    return PD_OK;
}
