/* test_fastev.c: the stream-event fast paths (proto/fastev.h) against the full decoders.
 *
 * Exactness is the whole contract: for every input, a decoder with its fast path must deliver
 * the same events (every field), the same result, and the same re-encoded bytes as with
 * full_path set. Checked over every SSE event of every stream golden file, over whole golden
 * streams, and over generated variations of the two common events (text, escapes, UTF-8, key
 * order, whitespace, numbers, extra or duplicate keys, non-null logprobs, ...). The scanners are
 * also checked to hit where they should, so that the comparison is not vacuous. Run from the
 * repository root. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fastev.h"
#include "proto/sse.h"
#include "test.h"
#include "fastev_diff.h"

static int compared, hits;

static void expect_same(const char *what, const char *data, size_t len)
{
    pd_buf fast, full;
    pd_buf_init(&fast, 0);
    pd_buf_init(&full, 0);
    bool same = diff_payload(data, len, &fast, &full);
    if (!same)
        fprintf(stderr, "  %s: paths differ on %.*s\n  fast: %s\n  full: %s\n", what, (int)len,
                data, fast.data ? fast.data : "", full.data ? full.data : "");
    CHECK(same);
    compared++;
    char buf[PD_FASTEV_BUF];
    pd_fastev_chunk c;
    const char *t;
    size_t n;
    hits += pd_fastev_openai_chunk(NULL, data, len, buf, sizeof buf, &c);
    hits += pd_fastev_anthropic_text(NULL, data, len, 0, buf, sizeof buf, &t, &n);
    pd_buf_free(&fast);
    pd_buf_free(&full);
}

/* ---- goldens ------------------------------------------------------------------------------ */

static int each_event(void *ud, const pd_sse_event *ev)
{
    expect_same(ud, ev->data, ev->data_len);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    pd_buf b;
    pd_buf_init(&b, 0);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        pd_buf_append(&b, tmp, n);
    fclose(f);
    pd_buf_append(&b, "", 0);
    *len = b.len;
    return b.data;
}

/* A whole Anthropic stream through both paths of the decoder. */
static void whole_anthropic(const char *path, const char *body, size_t len)
{
    pd_buf out[2];
    for (int full = 0; full < 2; full++) {
        diff_sink s;
        pd_anthropic_decoder d;
        pd_buf_init(&out[full], 0);
        diff_sink_init(&s, &out[full]);
        pd_anthropic_decoder_init(&d, 0);
        d.full_path = full;
        pd_result rc = pd_anthropic_decode(&d, body, len, diff_on_event, &s);
        pd_buf_printf(&out[full], "rc=%d done=%d failed=%d\n", (int)rc, (int)d.done, (int)d.failed);
        CHECK(s.writer_ok);
        pd_anthropic_decoder_free(&d);
        diff_sink_free(&s);
    }
    pd_buf_append(&out[0], "", 0);
    pd_buf_append(&out[1], "", 0);
    if (strcmp(out[0].data, out[1].data) != 0)
        fprintf(stderr, "  %s: whole stream differs\n", path);
    CHECK_STR(out[0].data, out[1].data);
    pd_buf_free(&out[0]);
    pd_buf_free(&out[1]);
}

/* A whole OpenAI stream through both paths of one decoder (the memo carries over events). */
typedef struct oai_whole {
    pd_openai_decoder d;
    diff_sink s;
    pd_buf *out;
} oai_whole;

static int oai_whole_event(void *ud, const pd_sse_event *ev)
{
    oai_whole *w = ud;
    pd_result rc = pd_openai_decode_chunk(&w->d, ev->data, ev->data_len, diff_on_event, &w->s);
    pd_buf_printf(w->out, "rc=%d done=%d\n", (int)rc, (int)w->d.done);
    return 0;
}

static void whole_openai(const char *path, const char *body, size_t len)
{
    pd_buf out[2];
    for (int full = 0; full < 2; full++) {
        oai_whole w;
        pd_sse_parser p;
        pd_buf_init(&out[full], 0);
        w.out = &out[full];
        diff_sink_init(&w.s, &out[full]);
        pd_openai_decoder_init(&w.d);
        w.d.full_path = full;
        pd_sse_init(&p, 0);
        CHECK(pd_sse_feed(&p, body, len, oai_whole_event, &w) == PD_OK);
        CHECK(w.s.writer_ok);
        pd_sse_free(&p);
        diff_sink_free(&w.s);
    }
    pd_buf_append(&out[0], "", 0);
    pd_buf_append(&out[1], "", 0);
    if (strcmp(out[0].data, out[1].data) != 0)
        fprintf(stderr, "  %s: whole stream differs\n", path);
    CHECK_STR(out[0].data, out[1].data);
    pd_buf_free(&out[0]);
    pd_buf_free(&out[1]);
}

static void golden_dir(const char *dir, int *files)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".sse") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s%s", dir, e->d_name);
        size_t len;
        char *body = slurp(path, &len);
        CHECK(body != NULL);
        if (!body)
            continue;
        pd_sse_parser p;
        pd_sse_init(&p, 0);
        CHECK(pd_sse_feed(&p, body, len, each_event, path) == PD_OK);
        pd_sse_free(&p);
        if (strstr(dir, "anthropic"))
            whole_anthropic(path, body, len);
        else
            whole_openai(path, body, len);
        free(body);
        (*files)++;
    }
    closedir(d);
}

static void goldens(void)
{
    int files = 0;
    golden_dir("tests/golden/openai/", &files);
    golden_dir("tests/golden/anthropic/", &files);
    CHECK(files >= 20);
}

/* ---- generated variations ----------------------------------------------------------------- */

/* Text values as they appear inside the JSON quotes. */
static const char *const texts[] = {
    "Hello",
    "",
    " crane",
    "caf\xc3\xa9",
    "\\\"quoted\\\"",
    "a\\\\b",
    "line\\nbreak\\ttab\\r",
    "\\/slash",
    "\\b\\f",
    "\\u00e9t\\u00C9",
    "\\ud83d\\ude00 emoji",
    "\xf0\x9f\x98\x80",
    "\\u0000nul",
    "\\ud83d lone",
    "\\ude00 low",
    "\\uZZZZ",
    "\\x",
    "bad\xc3",
    "\xc0\xaf overlong",
    "\xed\xa0\x80 surrogate",
    "\xf4\x90\x80\x80 big",
    "ctl\x01",
    "del\x7f",
    "\xe2\x82\xac euro",
    "tab\tinside",
    "a\\u0041b",
};

/* OpenAI chunks: %s is the content value (a JSON value). */
static const char *const oai_shapes[] = {
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,"
    "\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
    "{\"choices\":[{\"delta\":{\"content\":%s},\"index\":2,\"finish_reason\":null}],"
    "\"model\":\"m\",\"id\":\"x\",\"created\":0,\"object\":\"chat.completion.chunk\"}",
    " { \"id\" : \"a\\u0062c\" , \"choices\" : [ { \"index\" : 0 , \"delta\" : { \"content\" : %s "
    "} "
    "} ] } ",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s,\"refusal\":null}}],"
    "\"service_tier\":\"default\",\"obfuscation\":\"abc\",\"system_fingerprint\":null}",
    /* misses that the full path must still agree with */
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"logprobs\":"
    "{\"content\":[{\"token\":\"x\",\"logprob\":-0.1,\"bytes\":[120],\"top_logprobs\":[]}]}}]}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":%s}}]}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":"
    "\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}",
    "{\"id\":\"c\",\"id\":\"d\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}",
    "{\"id\":\"c\",\"created\":1.5,\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}",
    "{\"id\":\"c\",\"created\":-1,\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}",
    "{\"id\":\"c\",\"created\":01,\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}",
    "{\"id\":\"c\",\"created\":12345678901234567890,\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":%s}}]}",
    "{\"id\":\"c\",\"choices\":[{\"index\":4294967296,\"delta\":{\"content\":%s}}]}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}},{\"index\":1,\"delta\":"
    "{\"content\":\"b\"}}]}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]} x",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}],}",
    "{\"id\":\"c\",\"choi\\u0063es\":[{\"index\":0,\"delta\":{\"content\":%s}}]}",
    "{\"id\":7,\"model\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}",
    "{\"error\":{\"message\":\"boom\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s,\"tool_calls\":[{\"index\":"
    "0,"
    "\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
};

/* Anthropic events: %s is the text value. */
static const char *const anth_shapes[] = {
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}"
    "}",
    "{\"delta\":{\"text\":%s,\"type\":\"text_delta\"},\"type\":\"content_block_delta\",\"index\":"
    "0}",
    " {\"type\" : \"content_block_delta\" "
    ",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":%s}"
    "}",
    "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":%s}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":%s}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s,"
    "\"extra\":1}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":%s}}",
    "{\"type\":\"error\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}",
    "{\"type\":\"content_block_delta\",\"index\":0.0,\"delta\":{\"type\":\"text_delta\",\"text\":%"
    "s}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}"
    "}",
};

static void variations(void)
{
    pd_buf value, body;
    pd_buf_init(&value, 0);
    pd_buf_init(&body, 0);
    for (size_t t = 0; t < sizeof texts / sizeof *texts + 3; t++) {
        pd_buf_reset(&value);
        if (t < sizeof texts / sizeof *texts) {
            pd_buf_printf(&value, "\"%s\"", texts[t]);
        } else if (t == sizeof texts / sizeof *texts) {
            pd_buf_append_str(&value, "null");
        } else if (t == sizeof texts / sizeof *texts + 1) {
            pd_buf_append_str(&value, "42");
        } else { /* longer than the scanners' buffer: must take the full path, same result */
            pd_buf_append_str(&value, "\"");
            for (int i = 0; i < 300; i++)
                pd_buf_append_str(&value, "0123456789");
            pd_buf_append_str(&value, "\"");
        }
        for (size_t s = 0; s < sizeof oai_shapes / sizeof *oai_shapes; s++) {
            pd_buf_reset(&body);
            pd_buf_printf(&body, oai_shapes[s], value.data);
            expect_same("openai variation", body.data, body.len);
        }
        for (size_t s = 0; s < sizeof anth_shapes / sizeof *anth_shapes; s++) {
            pd_buf_reset(&body);
            pd_buf_printf(&body, anth_shapes[s], value.data);
            expect_same("anthropic variation", body.data, body.len);
        }
    }
    /* every prefix of a common chunk: truncated JSON of every length */
    const char *chunk =
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\\u00e9\"},"
        "\"logprobs\":null,\"finish_reason\":null}]}";
    for (size_t n = 0; n <= strlen(chunk); n++)
        expect_same("openai prefix", chunk, n);
    const char *delta = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                        "\"text_delta\",\"text\":\"h\\n\"}}";
    for (size_t n = 0; n <= strlen(delta); n++)
        expect_same("anthropic prefix", delta, n);
    pd_buf_free(&value);
    pd_buf_free(&body);
}

/* ---- sequences: the memo ------------------------------------------------------------------- */

/* OpenAI chunks of one stream and of streams that change what surrounds the text from one
   chunk to the next: id, model, created, index, fingerprint, key order, spacing, members
   after the choices (obfuscation changes on every chunk of a real OpenAI stream). */
static const char *const oai_seq_shapes[] = {
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,"
    "\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,"
    "\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569953,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569953,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":1,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569953,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":1,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,"
    "\"obfuscation\":\"a1\"}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569953,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":1,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,"
    "\"obfuscation\":\"b2c3\"}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569953,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":1,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,"
    "\"obfuscation\":\"b2c3\",\"id\":\"dup\"}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569953,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":1,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
    "\"usage\":null}",
    "{\"choices\":[{\"delta\":{\"content\":%s},\"index\":2,\"finish_reason\":null}],"
    "\"model\":\"m\",\"id\":\"x\",\"created\":0,\"object\":\"chat.completion.chunk\"}",
    "{\"choices\":[{\"delta\":{\"content\":%s},\"index\":2,\"finish_reason\":null}],"
    "\"model\":\"m2\",\"id\":\"x\",\"created\":0,\"object\":\"chat.completion.chunk\"}",
    /* the same head, another tail of the same length */
    "{\"choices\":[{\"delta\":{\"content\":%s},\"index\":3,\"finish_reason\":null}],"
    "\"model\":\"m2\",\"id\":\"x\",\"created\":0,\"object\":\"chat.completion.chunk\"}",
    /* the same head and tail, another rest of the same length */
    "{\"choices\":[{\"delta\":{\"content\":%s},\"index\":3,\"finish_reason\":null}],"
    "\"model\":\"m2\",\"id\":\"x\",\"created\":9,\"object\":\"chat.completion.chunk\"}",
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion.chunk\",\"created\":1741569953,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":1,"
    "\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,"
    "\"obfuscation\":\"zz\"}",
    " { \"id\" : \"a\\u0062c\" , \"choices\" : [ { \"index\" : 0 , \"delta\" : { \"content\" : %s "
    "} } ] } ",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s,\"refusal\":null}}],"
    "\"service_tier\":\"default\",\"obfuscation\":\"abc\",\"system_fingerprint\":null}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s,\"refusal\":null}}],"
    "\"service_tier\":\"default\",\"obfuscation\":\"abc\",\"system_fingerprint\":null,"
    "\"usage\":{\"prompt_tokens\":1}}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]} x",
};

/* Text values for the sequences: the JSON value of the content or text member. */
static void seq_value(pd_buf *b, size_t i)
{
    size_t n = sizeof texts / sizeof *texts;
    static const char *const more[] = {
        "null",
        "42",
        "\"\\\"},\\\"logprobs\\\":null,\\\"finish_reason\\\":null}],\\\"usage\\\":null}\"",
        "\"x\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}, \"y\"",
        "\"a\"}}",
        "\"unterminated",
        " \"space before\"",
    };
    pd_buf_reset(b);
    if (i % (n + 7) < n)
        pd_buf_printf(b, "\"%s\"", texts[i % (n + 7)]);
    else
        pd_buf_append_str(b, more[i % (n + 7) - n]);
}

/* Payloads kept for one sequence. */
#define SEQ_MAX 1024

typedef struct seq {
    char *data[SEQ_MAX];
    size_t len[SEQ_MAX];
    size_t n;
} seq;

static void seq_add(seq *q, const char *fmt, const char *value)
{
    pd_buf b;
    if (q->n == SEQ_MAX) {
        fprintf(stderr, "  sequence longer than SEQ_MAX\n");
        abort();
    }
    pd_buf_init(&b, 0);
    pd_buf_printf(&b, fmt, value);
    q->data[q->n] = b.data;
    q->len[q->n++] = b.len;
}

static void seq_check(const char *what, seq *q)
{
    pd_buf fast, full;
    pd_buf_init(&fast, 0);
    pd_buf_init(&full, 0);
    bool same = diff_sequence((const char *const *)q->data, q->len, q->n, &fast, &full);
    if (!same)
        fprintf(stderr, "  %s: paths differ\n  fast: %s\n  full: %s\n", what,
                fast.data ? fast.data : "", full.data ? full.data : "");
    CHECK(same);
    compared++;
    for (size_t i = 0; i < q->n; i++)
        free(q->data[i]);
    q->n = 0;
    pd_buf_free(&fast);
    pd_buf_free(&full);
}

static const char *const anth_blocks[] = {
    "{\"type\":\"content_block_stop\",\"index\":0}",
    "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}",
    "{\"type\":\"content_block_stop\",\"index\":1}",
    "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\"}}",
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}",
};

static void sequences(void)
{
    size_t n_oai = sizeof oai_seq_shapes / sizeof *oai_seq_shapes;
    size_t n_anth = sizeof anth_shapes / sizeof *anth_shapes;
    size_t n_text = sizeof texts / sizeof *texts + 7;
    pd_buf v;
    pd_buf_init(&v, 0);
    seq q = {.n = 0};
    /* runs of one shape with every text, the shape changing between runs */
    for (size_t s = 0; s < n_oai; s++) {
        for (size_t t = 0; t < n_text; t++) {
            seq_value(&v, t);
            seq_add(&q, oai_seq_shapes[s], v.data);
        }
    }
    seq_check("openai runs", &q);
    /* the shape changing on every chunk, and back */
    for (size_t t = 0; t < n_text * 3; t++) {
        seq_value(&v, t);
        seq_add(&q, oai_seq_shapes[t % 3 ? 0 : t % n_oai], v.data);
        seq_add(&q, oai_seq_shapes[(t * 7) % n_oai], v.data);
    }
    seq_check("openai alternating", &q);
    /* every shape after every other (a memo taken from one, tried on the next) */
    for (size_t a = 0; a < n_oai; a++) {
        for (size_t b = 0; b < n_oai; b++) {
            seq_add(&q, oai_seq_shapes[a], "\"Hello\"");
            seq_add(&q, oai_seq_shapes[b], "\" w\\u00f6rld\"");
            seq_check("openai pair", &q);
        }
    }
    for (size_t a = 0; a < n_anth; a++) {
        for (size_t b = 0; b < n_anth; b++) {
            seq_add(&q, anth_shapes[a], "\"Hello\"");
            seq_add(&q, anth_shapes[b], "\" w\\u00f6rld\"");
            seq_check("anthropic pair", &q);
        }
    }
    /* Anthropic: runs per shape, with blocks closed and opened between them */
    for (size_t s = 0; s < n_anth; s++) {
        for (size_t t = 0; t < n_text; t++) {
            seq_value(&v, t);
            seq_add(&q, anth_shapes[(s + t / 5) % n_anth], v.data);
        }
        seq_add(&q,
                "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                "\"text_delta\",\"text\":%s}]",
                v.data); /* another tail, same length */
        seq_add(&q, "%s", anth_blocks[s % (sizeof anth_blocks / sizeof *anth_blocks)]);
        seq_value(&v, s);
        seq_add(&q, anth_shapes[0], v.data);
        seq_add(&q, anth_shapes[3], v.data);
    }
    seq_check("anthropic runs", &q);
    /* a longer chunk than the scanners' buffer between two that fit */
    seq_add(&q, oai_seq_shapes[0], "\"a\"");
    pd_buf_reset(&v);
    pd_buf_append_str(&v, "\"");
    for (int i = 0; i < 300; i++)
        pd_buf_append_str(&v, "0123456789");
    pd_buf_append_str(&v, "\"");
    seq_add(&q, oai_seq_shapes[0], v.data);
    seq_add(&q, anth_shapes[0], v.data);
    seq_add(&q, oai_seq_shapes[0], "\"b\"");
    seq_add(&q, anth_shapes[0], "\"c\"");
    seq_add(&q, anth_shapes[0], v.data);
    seq_add(&q, anth_shapes[0], "\"d\"");
    seq_check("long chunk", &q);
    pd_buf_free(&v);
}

/* The memo is taken and used (else the sequences above prove little), and a change around
   the text is seen. */
static void memo_hits(void)
{
    char buf[PD_FASTEV_BUF];
    pd_fastev_chunk c;
    pd_fastev_memo m;
    memset(&m, 0, sizeof m);
    const char *fmt = "{\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":17,"
                      "\"model\":\"gpt-4o\",\"choices\":[{\"index\":1,\"delta\":{\"content\":"
                      "\"%s\"},\"logprobs\":null,\"finish_reason\":null}],\"obfuscation\":\"%s\"}";
    char chunk[512];
    snprintf(chunk, sizeof chunk, fmt, "c1", "Hello", "x");
    CHECK(pd_fastev_openai_chunk(&m, chunk, strlen(chunk), buf, sizeof buf, &c));
    CHECK(m.head > 0);
    snprintf(chunk, sizeof chunk, fmt, "c1", " wor\\u006cd", "yz");
    CHECK(pd_fastev_openai_chunk(&m, chunk, strlen(chunk), buf, sizeof buf, &c));
    CHECK(c.id >= m.bytes && c.id < m.bytes + sizeof m.bytes); /* read through the memo */
    CHECK_STR(c.id, "c1");
    CHECK_STR(c.model, "gpt-4o");
    CHECK(c.created == 17 && c.choice == 1 && !c.null_usage);
    CHECK(c.text_len == 6 && memcmp(c.text, " world", 6) == 0);
    snprintf(chunk, sizeof chunk, fmt, "c2", "!", "x");
    CHECK(pd_fastev_openai_chunk(&m, chunk, strlen(chunk), buf, sizeof buf, &c));
    CHECK(c.id >= buf && c.id < buf + sizeof buf); /* a full scan */
    CHECK_STR(c.id, "c2");
    CHECK(c.text_len == 1 && c.text[0] == '!');
    snprintf(chunk, sizeof chunk, fmt, "c2", "?", "x");
    CHECK(pd_fastev_openai_chunk(&m, chunk, strlen(chunk), buf, sizeof buf, &c));
    CHECK(c.id >= m.bytes && c.id < m.bytes + sizeof m.bytes);
    CHECK_STR(c.id, "c2");

    const char *an = "{\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":"
                     "\"text_delta\",\"text\":\"%s\"}}";
    const char *t;
    size_t n;
    memset(&m, 0, sizeof m);
    snprintf(chunk, sizeof chunk, an, "one");
    CHECK(pd_fastev_anthropic_text(&m, chunk, strlen(chunk), 3, buf, sizeof buf, &t, &n));
    CHECK(m.head > 0 && m.block == 3);
    snprintf(chunk, sizeof chunk, an, "two");
    CHECK(pd_fastev_anthropic_text(&m, chunk, strlen(chunk), 3, buf, sizeof buf, &t, &n));
    CHECK(n == 3 && memcmp(t, "two", 3) == 0);
    CHECK(!pd_fastev_anthropic_text(&m, chunk, strlen(chunk), 2, buf, sizeof buf, &t, &n));
    CHECK(m.block == 3);
    CHECK(!pd_fastev_anthropic_text(&m, chunk, strlen(chunk) - 1, 3, buf, sizeof buf, &t, &n));
    CHECK(!pd_fastev_anthropic_text(&m, chunk, strlen(chunk), 3, buf, 20, &t, &n)); /* no room */
}

/* The scanners take the common shapes (else the comparisons above prove little). */
static void scanners_hit(void)
{
    char buf[PD_FASTEV_BUF];
    pd_fastev_chunk c;
    const char *oai =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":17,"
        "\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":1,"
        "\"delta\":{\"content\":\"caf\\u00e9 \\\"x\\\"\"},\"logprobs\":null,"
        "\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"zz\"}";
    CHECK(pd_fastev_openai_chunk(NULL, oai, strlen(oai), buf, sizeof buf, &c));
    CHECK_STR(c.id, "chatcmpl-1");
    CHECK_STR(c.model, "gpt-4o");
    CHECK(c.created == 17 && c.choice == 1 && c.null_usage);
    CHECK(c.text_len == 9 && memcmp(c.text, "caf\xc3\xa9 \"x\"", 9) == 0);
    const char *lp = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"logprobs\":{}}]}";
    CHECK(!pd_fastev_openai_chunk(NULL, lp, strlen(lp), buf, sizeof buf, &c));
    CHECK(!pd_fastev_openai_chunk(NULL, oai, strlen(oai), buf, 20, &c)); /* no room: a miss */
    const char *an = "{\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":"
                     "\"text_delta\",\"text\":\"\\ud83d\\ude00\"}}";
    const char *t;
    size_t n;
    CHECK(pd_fastev_anthropic_text(NULL, an, strlen(an), 3, buf, sizeof buf, &t, &n));
    CHECK(n == 4 && memcmp(t, "\xf0\x9f\x98\x80", 4) == 0);
    CHECK(!pd_fastev_anthropic_text(NULL, an, strlen(an), 2, buf, sizeof buf, &t, &n));
}

static void not_vacuous(void)
{
    CHECK(compared > 500);
    CHECK(hits > 100); /* the fast paths did take part */
    fprintf(stderr, "  %d payloads compared, %d scanner hits\n", compared, hits);
}

int main(void)
{
    TEST_RUN(scanners_hit);
    TEST_RUN(goldens);
    TEST_RUN(variations);
    TEST_RUN(memo_hits);
    TEST_RUN(sequences);
    TEST_RUN(not_vacuous);
    return TEST_DONE();
}
