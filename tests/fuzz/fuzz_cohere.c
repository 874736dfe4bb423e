/* fuzz_cohere: arbitrary bytes through the Cohere codec. The first input byte picks a mode, the
   next two a split point; the rest is the input.
   mode 0-3: the bytes are a Cohere SSE stream. Fed whole, split in two, and (when short) byte by
   byte, the decoder must deliver exactly the same events with the same result, and the events
   must be well formed: ROLE before content, tool arguments only for a started call, nothing
   after an ERROR or after done. Every event must encode as an OpenAI chunk.
   mode 4: a whole /v2/chat response and an /v2/embed response: parsed and, on success, written
   back as OpenAI JSON that must parse.
   mode 5: an OpenAI request body; when it parses, the Cohere body written from it must be valid
   JSON, and an error must carry a 400 and a message. */
#include "proto/cohere.h"
#include "proto/embed.h"
#include "proto/openai.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct log {
    pd_buf b;
    pd_openai_encoder enc;
    pd_buf chunks;
    bool role, ended;
    uint32_t tools;
} log_t;

static void check_event(log_t *l, const pd_chat_event *ev)
{
    if (l->ended)
        abort(); /* nothing after ERROR or FINISH+USAGE of a done stream */
    if (ev->kind != PD_EVENT_ROLE && ev->kind != PD_EVENT_ERROR && !l->role)
        abort();
    if (ev->kind == PD_EVENT_ROLE) {
        if (l->role)
            abort();
        l->role = true;
    }
    if (ev->kind == PD_EVENT_TOOL_START && ev->tool_index != l->tools++)
        abort();
    if (ev->kind == PD_EVENT_TOOL_ARGS && ev->tool_index >= l->tools)
        abort();
    if ((ev->kind == PD_EVENT_TEXT || ev->kind == PD_EVENT_REASONING ||
         ev->kind == PD_EVENT_TOOL_ARGS) &&
        ev->text_len == 0)
        abort();
    if (ev->kind == PD_EVENT_ERROR)
        l->ended = true;
}

static int record(void *ud, const pd_chat_event *ev)
{
    log_t *l = ud;
    check_event(l, ev);
    pd_buf_printf(&l->b, "%d %u %u %d %d|", (int)ev->kind, ev->tool_index, ev->choice,
                  (int)ev->finish, ev->error_status);
    pd_buf_printf(&l->b, "%zu:", ev->text_len);
    pd_buf_append(&l->b, ev->text, ev->text_len);
    if (ev->tool_id)
        pd_buf_printf(&l->b, "id=%s", ev->tool_id);
    if (ev->tool_name)
        pd_buf_printf(&l->b, "name=%s", ev->tool_name);
    pd_buf_printf(&l->b, "u=%lld,%lld,%lld;", (long long)ev->usage.prompt_tokens,
                  (long long)ev->usage.completion_tokens, (long long)ev->usage.cached_tokens);
    if (pd_openai_encode_event(&l->enc, ev, &l->chunks) != PD_OK)
        abort();
    pd_buf_reset(&l->chunks);
    /* stop on a magic fragment so the PD_ERR_CLOSED path is exercised too */
    return ev->text_len == 4 && memcmp(ev->text, "STOP", 4) == 0;
}

typedef struct outcome {
    pd_buf log;
    pd_result rc;
    bool done, failed;
} outcome;

static void run(const char *s, size_t len, const size_t *cuts, size_t ncuts, outcome *o)
{
    pd_cohere_decoder d;
    log_t l;
    memset(&l, 0, sizeof l);
    pd_cohere_decoder_init(&d);
    pd_buf_init(&l.b, 0);
    pd_buf_init(&l.chunks, 0);
    pd_buf_append(&l.b, "", 0);
    pd_openai_encoder_init(&l.enc, "chatcmpl-f", "m", 1);
    pd_result rc = PD_OK;
    size_t pos = 0;
    for (size_t i = 0; i <= ncuts && !rc; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = pd_cohere_decode(&d, s + pos, to - pos, record, &l);
        pos = to;
        if (d.done)
            l.ended = true; /* FINISH and USAGE came in the call that set done */
    }
    if (d.done && d.failed)
        abort();
    o->log = l.b;
    o->rc = rc;
    o->done = d.done;
    o->failed = d.failed;
    pd_openai_encoder_free(&l.enc);
    pd_buf_free(&l.chunks);
    pd_cohere_decoder_free(&d);
}

static void same(const outcome *a, const outcome *b)
{
    if (a->rc != b->rc || a->done != b->done || a->failed != b->failed ||
        a->log.len != b->log.len || memcmp(a->log.data, b->log.data, a->log.len) != 0)
        abort();
}

static void stream(const char *s, size_t len, size_t cut)
{
    outcome whole, split;
    run(s, len, NULL, 0, &whole);
    run(s, len, &cut, 1, &split);
    same(&whole, &split);
    pd_buf_free(&split.log);
    if (len <= 512) {
        size_t cuts[512];
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        outcome bytewise;
        run(s, len, cuts, len, &bytewise);
        same(&whole, &bytewise);
        pd_buf_free(&bytewise.log);
    }
    pd_buf_free(&whole.log);
}

static void must_be_json(const pd_buf *b)
{
    json_t *j = json_loadb(b->data, b->len, 0, NULL);
    if (!json_is_object(j))
        abort();
    json_decref(j);
}

static void responses(const char *s, size_t len)
{
    pd_chat_response r;
    pd_buf out;
    pd_buf_init(&out, 0);
    if (pd_cohere_parse_chat_response(s, len, &r) == PD_OK) {
        if (r.n_choices != 1 || pd_openai_write_chat_response(&r, &out) != PD_OK)
            abort();
        must_be_json(&out);
    } else if (r.choices || r.id) {
        abort();
    }
    pd_chat_response_free(&r);
    pd_embed_response er;
    pd_buf_reset(&out);
    if (pd_cohere_parse_embed_response(s, len, &er) == PD_OK) {
        if (pd_embed_write_openai_response(&er, (len & 1) ? PD_EMBED_BASE64 : PD_EMBED_FLOAT, NULL,
                                           &out) != PD_OK)
            abort();
        must_be_json(&out);
    } else if (er.vectors || er.n_vectors) {
        abort();
    }
    pd_embed_response_free(&er);
    pd_api_error e;
    pd_cohere_parse_error_body(400 + (long)(len % 200), s, len, &e);
    if (e.status < 400 || e.status > 599 || !e.type || !e.message[0])
        abort();
    pd_buf_free(&out);
}

static void request(const char *s, size_t len)
{
    pd_chat_request r;
    pd_api_error e;
    if (pd_openai_parse_chat_request(s, len, &r, &e) != PD_OK)
        return;
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_result rc = pd_cohere_write_chat_request(&r, "m", &out, &e);
    if (rc == PD_OK)
        must_be_json(&out);
    else if (rc != PD_ERR_INVALID || e.status != 400 || !e.message[0] || out.len)
        abort();
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    size_t cut = len ? ((size_t)data[1] << 8 | data[2]) % (len + 1) : 0;
    switch (data[0] % 6) {
    case 4: responses(s, len); break;
    case 5: request(s, len); break;
    default: stream(s, len, cut); break;
    }
    return 0;
}
