/* quality.c: see quality.h. */
#include "relay/quality.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_TEXT (256u << 10) /* judged text; a longer answer is judged on its start */

void pd_quality_init(pd_quality *q, uint32_t window)
{
    memset(q, 0, sizeof(*q));
    pd_confidence_init(&q->conf, window);
    pd_buf_init(&q->text, MAX_TEXT);
}

void pd_quality_free(pd_quality *q)
{
    pd_buf_free(&q->text);
}

void pd_quality_reset(pd_quality *q)
{
    uint32_t window = q->conf.window;
    pd_buf_free(&q->text);
    pd_quality_init(q, window);
}

static void add_logprobs(pd_quality *q, const json_t *logprobs)
{
    const json_t *content = json_object_get(logprobs, "content");
    size_t i;
    const json_t *tok;
    json_array_foreach(content, i, tok)
    {
        const json_t *lp = json_object_get(tok, "logprob");
        if (json_is_number(lp)) {
            pd_confidence_add(&q->conf, json_number_value(lp));
            q->tokens++;
        }
    }
}

static void add_text(pd_quality *q, const char *text, size_t len)
{
    if (q->text.len + len <= MAX_TEXT)
        (void)pd_buf_append(&q->text, text, len); /* fits: cannot fail */
}

void pd_quality_add_event(pd_quality *q, const pd_chat_event *ev)
{
    if (ev->choice != 0)
        return;
    switch (ev->kind) {
    case PD_EVENT_TEXT: {
        size_t before = q->conf.n;
        add_text(q, ev->text, ev->text_len);
        if (ev->logprobs)
            add_logprobs(q, ev->logprobs);
        if (q->conf.n == before && ev->text_len)
            q->tokens++; /* no log-probabilities: count fragments */
        break;
    }
    case PD_EVENT_REFUSAL: q->refused = true; break;
    case PD_EVENT_TOOL_START: q->tool_calls = true; break;
    case PD_EVENT_FINISH: q->finish = ev->finish; break;
    default: break;
    }
}

void pd_quality_add_response(pd_quality *q, const pd_chat_response *r)
{
    if (!r->n_choices)
        return;
    const pd_chat_choice *c = &r->choices[0];
    for (size_t i = 0; i < c->message.n_parts; i++) {
        const pd_chat_part *p = &c->message.parts[i];
        if (p->kind == PD_PART_TEXT && p->text)
            add_text(q, p->text, strlen(p->text));
        if (p->kind == PD_PART_REFUSAL)
            q->refused = true;
    }
    if (c->message.refusal)
        q->refused = true;
    if (c->message.n_tool_calls)
        q->tool_calls = true;
    if (c->logprobs)
        add_logprobs(q, c->logprobs);
    if (!q->conf.n && q->text.len)
        q->tokens++;
    q->finish = c->finish;
}

/* The last bytes of s are one unit of 1..32 bytes repeated, 4+ times over 64+ bytes. */
static bool degenerate(const char *s, size_t n)
{
    for (size_t unit = 1; unit <= 32 && unit * 4 <= n; unit++) {
        size_t reps = 1;
        const char *last = s + n - unit;
        while ((reps + 1) * unit <= n && memcmp(s + n - (reps + 1) * unit, last, unit) == 0)
            reps++;
        if (reps >= 4 && reps * unit >= 64)
            return true;
    }
    return false;
}

static bool opens_with_refusal(const char *s, size_t n)
{
    static const char *const STOCK[] = {"I'm sorry",   "I am sorry", "I cannot", "I can't",
                                        "I can not",   "As an AI",   "I'm unable", "I am unable",
                                        "I apologize", "I won't"};
    while (n && isspace((unsigned char)*s))
        s++, n--;
    for (size_t i = 0; i < sizeof(STOCK) / sizeof(STOCK[0]); i++) {
        size_t k = strlen(STOCK[i]);
        if (n >= k && strncasecmp(s, STOCK[i], k) == 0)
            return true;
    }
    return false;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_json_object(const char *s, size_t n)
{
    json_t *v = json_loadb(s, n, 0, NULL);
    bool ok = json_is_object(v);
    json_decref(v);
    return ok;
}

static bool fail(char *why, size_t whylen, const char *fmt, double a, double b)
{
    snprintf(why, whylen, fmt, a, b);
    return false;
}

static bool final_checks(const pd_quality *q, const pd_chat_request *req, char *why, size_t whylen)
{
    const char *t = q->text.data ? q->text.data : "";
    if (!q->tool_calls && blank(t, q->text.len))
        return fail(why, whylen, "empty answer", 0, 0);
    if (q->finish == PD_FINISH_CONTENT_FILTER)
        return fail(why, whylen, "cut by a content filter", 0, 0);
    if (q->finish == PD_FINISH_LENGTH && !req->sampling.has_max_tokens)
        return fail(why, whylen, "cut at the length limit", 0, 0);
    pd_chat_format_kind f = req->response_format.kind;
    if ((f == PD_FORMAT_JSON_OBJECT || f == PD_FORMAT_JSON_SCHEMA) && !q->tool_calls &&
        !is_json_object(t, q->text.len))
        return fail(why, whylen, "not the JSON object asked for", 0, 0);
    return true;
}

bool pd_quality_passes(const pd_quality *q, const pd_route_resilience *res, bool final,
                       const pd_chat_request *req, char *why, size_t whylen)
{
    const char *t = q->text.data ? q->text.data : "";
    if (!pd_confidence_passes(&q->conf, res)) {
        double mean = pd_confidence_mean(&q->conf), win = pd_confidence_min_window(&q->conf);
        if (res->min_mean_logprob <= 0 && mean < res->min_mean_logprob)
            return fail(why, whylen, "mean logprob %.2f < %.2f", mean, res->min_mean_logprob);
        return fail(why, whylen, "window logprob %.2f < %.2f", win, res->min_window_logprob);
    }
    if (q->refused || opens_with_refusal(t, q->text.len))
        return fail(why, whylen, "a refusal", 0, 0);
    if (degenerate(t, q->text.len))
        return fail(why, whylen, "degenerate repetition", 0, 0);
    return !final || final_checks(q, req, why, whylen);
}
