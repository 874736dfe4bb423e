/* response.c: engine events into a non-streaming response and into OpenAI's logprobs JSON.
 * Pure helpers on the caller's side; no llama.cpp calls. */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* Copies s[0..n) as valid UTF-8, each invalid or truncated sequence replaced by U+FFFD. */
static char *valid_utf8(const char *s, size_t n)
{
    char *out = pd_xmalloc(n * 3 + 1), *o = out;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xC2);
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok && len == 3) {
            unsigned char d = (unsigned char)s[i + 1];
            ok = !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0); /* overlong, surrogate */
        } else if (ok && len == 4) {
            unsigned char d = (unsigned char)s[i + 1];
            ok = !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90) && c <= 0xF4;
        }
        if (ok) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *o = '\0';
    return out;
}

static json_t *token_json(const char *bytes, size_t len, float logprob)
{
    char *text = valid_utf8(bytes, len);
    json_t *arr = json_array();
    for (size_t i = 0; i < len; i++)
        json_array_append_new(arr, json_integer((unsigned char)bytes[i]));
    json_t *o =
        json_pack("{s:s, s:f, s:o}", "token", text, "logprob", (double)logprob, "bytes", arr);
    free(text);
    return o;
}

json_t *pd_engine_logprobs_json(const pd_engine_logprob *lp, size_t n)
{
    json_t *content = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *entry = token_json(lp[i].bytes, lp[i].len, lp[i].logprob);
        json_t *top = json_array();
        for (size_t k = 0; k < lp[i].n_top; k++)
            json_array_append_new(
                top, token_json(lp[i].top[k].bytes, lp[i].top[k].len, lp[i].top[k].logprob));
        json_object_set_new(entry, "top_logprobs", top);
        json_array_append_new(content, entry);
    }
    return content;
}

/* The response's choice `index`, created (with the ones before it) when missing. */
static pd_chat_choice *choice_at(pd_chat_response *r, uint32_t index)
{
    if (index >= r->n_choices) {
        r->choices = pd_xrealloc(r->choices, (index + 1) * sizeof *r->choices);
        for (size_t i = r->n_choices; i <= index; i++) {
            memset(&r->choices[i], 0, sizeof r->choices[i]);
            r->choices[i].index = (uint32_t)i;
            r->choices[i].message.role = PD_ROLE_ASSISTANT;
        }
        r->n_choices = index + 1;
    }
    return &r->choices[index];
}

static void append_text(pd_chat_message *m, const char *text, size_t len)
{
    if (m->n_parts == 0) {
        m->parts = pd_xcalloc(1, sizeof *m->parts);
        m->parts[0].kind = PD_PART_TEXT;
        m->parts[0].text = pd_xstrdup("");
        m->n_parts = 1;
    }
    char *old = m->parts[0].text;
    size_t n = strlen(old);
    char *s = pd_xrealloc(old, n + len + 1);
    memcpy(s + n, text, len);
    s[n + len] = '\0';
    m->parts[0].text = s;
}

static void append_logprobs(pd_chat_choice *c, const pd_engine_event *ev)
{
    if (!c->logprobs)
        c->logprobs = json_pack("{s:[]}", "content");
    json_t *content = json_object_get(c->logprobs, "content");
    if (ev->chat.logprobs) { /* already built by the poll */
        json_array_extend(content, json_object_get(ev->chat.logprobs, "content"));
        return;
    }
    json_t *more = pd_engine_logprobs_json(ev->logprobs, ev->n_logprobs);
    json_array_extend(content, more);
    json_decref(more);
}

pd_result pd_engine_response_add(pd_chat_response *resp, const pd_engine_event *ev)
{
    const pd_chat_event *e = &ev->chat;
    switch (e->kind) {
    case PD_EVENT_ROLE: choice_at(resp, e->choice); break;
    case PD_EVENT_TEXT: {
        pd_chat_choice *c = choice_at(resp, e->choice);
        append_text(&c->message, e->text, e->text_len);
        if (ev->n_logprobs)
            append_logprobs(c, ev);
        break;
    }
    case PD_EVENT_FINISH: choice_at(resp, e->choice)->finish = e->finish; break;
    case PD_EVENT_USAGE: resp->usage = e->usage; break;
    default: break;
    }
    return PD_OK;
}
