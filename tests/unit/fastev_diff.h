/* fastev_diff.h: runs one stream event through a decoder's fast path (proto/fastev.h) and
 * through its full jansson path (decoder.full_path), and writes what each produced (the result
 * code, every canonical event field by field, and the event re-encoded for an OpenAI and for
 * an Anthropic client) into two buffers that must be byte-identical. Shared by
 * tests/unit/test_fastev.c and tests/fuzz/fuzz_fastev.c.
 *
 * The OpenAI encoder has a fast writer of its own for plain TEXT events; each TEXT event is
 * also encoded with one field the writer ignores changed (usage), which sends it to the full
 * writer: both chunks are compared too (diff_writer_ok).
 *
 * A decoder remembers the last text event's bytes around its text (the fastev memo), so a
 * payload is also compared as one of a sequence through the same decoder (diff_sequence): the
 * memo's shortcut only shows from the second event of a stream on. */
#ifndef PD_TEST_FASTEV_DIFF_H
#define PD_TEST_FASTEV_DIFF_H

#include <stdbool.h>
#include <string.h>

#include "canon/chat.h"
#include "core/buf.h"
#include "proto/anthropic.h"
#include "proto/fastev.h"
#include "proto/openai.h"

typedef struct diff_sink {
    pd_buf *out;
    pd_openai_encoder oenc;
    pd_anthropic_encoder aenc;
    bool writer_ok; /* the OpenAI fast writer agreed with the full one on every TEXT event */
} diff_sink;

static void diff_str(pd_buf *b, const char *label, const char *s)
{
    pd_buf_printf(b, " %s=%s", label, s ? s : "(null)");
}

static void diff_dump(pd_buf *b, const pd_chat_event *ev)
{
    pd_buf_printf(b, "kind=%d choice=%u role=%d text_len=%zu text=", (int)ev->kind, ev->choice,
                  (int)ev->role, ev->text_len);
    if (ev->text)
        pd_buf_append(b, ev->text, ev->text_len);
    else
        pd_buf_append_str(b, "(none)");
    pd_buf_printf(b, " logprobs=%d tool=%u finish=%d status=%d created=%lld", ev->logprobs != NULL,
                  ev->tool_index, (int)ev->finish, ev->error_status, (long long)ev->created);
    diff_str(b, "tool_id", ev->tool_id);
    diff_str(b, "tool_name", ev->tool_name);
    diff_str(b, "type", ev->error_type);
    diff_str(b, "code", ev->error_code);
    diff_str(b, "id", ev->id);
    diff_str(b, "model", ev->model);
    const pd_chat_usage *u = &ev->usage;
    pd_buf_printf(b, " usage=%lld/%lld/%lld/%lld/%lld/%lld\n", (long long)u->prompt_tokens,
                  (long long)u->completion_tokens, (long long)u->total_tokens,
                  (long long)u->cached_tokens, (long long)u->cache_write_tokens,
                  (long long)u->reasoning_tokens);
}

static int diff_on_event(void *ud, const pd_chat_event *ev)
{
    diff_sink *s = ud;
    diff_dump(s->out, ev);
    pd_result rc = pd_openai_encode_event(&s->oenc, ev, s->out);
    pd_buf_printf(s->out, "openai rc=%d\n", (int)rc);
    rc = pd_anthropic_encode_event(&s->aenc, ev, s->out);
    pd_buf_printf(s->out, "anthropic rc=%d\n", (int)rc);
    if (ev->kind == PD_EVENT_TEXT) {
        pd_chat_event full = *ev;
        pd_buf a, b;
        pd_buf_init(&a, 0);
        pd_buf_init(&b, 0);
        full.usage.prompt_tokens = 1; /* ignored by the writer, but not plain any more */
        pd_result ra = pd_openai_encode_event(&s->oenc, ev, &a);
        pd_result rb = pd_openai_encode_event(&s->oenc, &full, &b);
        if (ra != rb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
            s->writer_ok = false;
        pd_buf_free(&a);
        pd_buf_free(&b);
    }
    return 0;
}

static void diff_sink_init(diff_sink *s, pd_buf *out)
{
    s->out = out;
    s->writer_ok = true;
    pd_openai_encoder_init(&s->oenc, "chatcmpl-gw1", "gw-model", 1700000000);
    pd_anthropic_encoder_init(&s->aenc, "msg_gw1", "gw-model");
}

static void diff_sink_free(diff_sink *s)
{
    pd_openai_encoder_free(&s->oenc);
    pd_anthropic_encoder_free(&s->aenc);
}

/* What a hit of the OpenAI scanner vouches for (the pass-through relay skips its json_loadb
   on a hit, providers/openai.c): the payload parses as a JSON object, without JSON_ALLOW_NUL,
   with no "error" member, no usage object, "usage": null exactly when the scanner says so, and
   a non-empty choices array. False when a hit does not hold to that. */
static bool diff_vouches(pd_fastev_memo *memo, const char *data, size_t len)
{
    char buf[PD_FASTEV_BUF];
    pd_fastev_chunk c;
    if (!pd_fastev_openai_chunk(memo, data, len, buf, sizeof buf, &c))
        return true;
    json_t *doc = json_loadb(data, len, 0, NULL);
    json_t *usage = json_object_get(doc, "usage");
    bool ok = json_is_object(doc) && !json_object_get(doc, "error") && !json_is_object(usage) &&
              json_is_null(usage) == c.null_usage &&
              json_array_size(json_object_get(doc, "choices")) > 0;
    json_decref(doc);
    return ok;
}

/* Payloads one after another through one OpenAI decoder, full path or not. */
static bool diff_openai_seq(const char *const *data, const size_t *len, size_t n, bool full,
                            pd_buf *out)
{
    diff_sink s;
    pd_openai_decoder d;
    diff_sink_init(&s, out);
    pd_openai_decoder_init(&d);
    d.full_path = full;
    for (size_t i = 0; i < n; i++) {
        pd_result rc = pd_openai_decode_chunk(&d, data[i], len[i], diff_on_event, &s);
        pd_buf_printf(out, "%zu: rc=%d done=%d\n", i, (int)rc, (int)d.done);
    }
    diff_sink_free(&s);
    return s.writer_ok;
}

/* Payloads one after another through one Anthropic decoder in an open text block at index 0
   (each as a content_block_delta event: a payload with its own "type" may open or close
   blocks), full path or not. */
static bool diff_anthropic_seq(const char *const *data, const size_t *len, size_t n, bool full,
                               pd_buf *out)
{
    static const char start[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
    diff_sink s;
    pd_anthropic_decoder d;
    diff_sink_init(&s, out);
    pd_anthropic_decoder_init(&d, 0);
    d.full_path = full;
    pd_result rc = pd_anthropic_decode(&d, start, sizeof start - 1, diff_on_event, &s);
    for (size_t i = 0; rc == PD_OK && i < n; i++) {
        rc = pd_anthropic_decode_event(&d, "content_block_delta", 19, data[i], len[i],
                                       diff_on_event, &s);
        pd_buf_printf(out, "%zu: rc=%d done=%d failed=%d\n", i, (int)rc, (int)d.done,
                      (int)d.failed);
    }
    pd_anthropic_decoder_free(&d);
    diff_sink_free(&s);
    return s.writer_ok;
}

/* Both paths of both decoders over a sequence of payloads: true when everything agreed. */
static bool diff_sequence(const char *const *data, const size_t *len, size_t n, pd_buf *fast,
                          pd_buf *full)
{
    pd_fastev_memo memo;
    memset(&memo, 0, sizeof memo);
    bool ok = diff_openai_seq(data, len, n, false, fast);
    ok &= diff_openai_seq(data, len, n, true, full);
    for (size_t i = 0; i < n; i++)
        ok &= diff_vouches(&memo, data[i], len[i]);
    ok &= diff_anthropic_seq(data, len, n, false, fast);
    ok &= diff_anthropic_seq(data, len, n, true, full);
    return ok && fast->len == full->len &&
           (!fast->len || memcmp(fast->data, full->data, fast->len) == 0);
}

/* Both paths of both decoders over one payload (through fresh decoders): true when everything
   agreed. */
static bool diff_payload(const char *data, size_t len, pd_buf *fast, pd_buf *full)
{
    return diff_sequence(&data, &len, 1, fast, full);
}

#endif
