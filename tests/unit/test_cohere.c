#include "canon/chat.h"
#include "canon/embed.h"
#include "proto/cohere.h"
#include "proto/openai.h"
#include "test.h"

#include <jansson.h>
#include <stdlib.h>

/* Golden files live in tests/golden/cohere/ (run from the repository root, as `make unit`
   does). With PD_GOLDEN_UPDATE=1 in the environment, missing or different expected files are
   rewritten instead of compared: review the diff before committing them. */
#define GOLDEN_DIR "tests/golden/cohere/"
#include "golden.h"

static bool parse_req(const char *body, size_t len, pd_chat_request *r)
{
    pd_api_error e;
    pd_result rc = pd_openai_parse_chat_request(body, len, r, &e);
    if (rc)
        fprintf(stderr, "  openai parse: %s (%s)\n", e.message, e.param);
    return rc == PD_OK;
}

/* ---- requests ----------------------------------------------------------------------- */

/* OpenAI request -> canonical -> Cohere body, compared with <name>.out.json. */
static void request_goldens(void)
{
    static const char *names[] = {"req_text", "req_tools", "req_named_choice", "req_choice_none",
                                  "req_required_allowed"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], exp[64];
        snprintf(in, sizeof in, "%s.json", names[i]);
        snprintf(exp, sizeof exp, "%s.out.json", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_request r;
        pd_api_error e;
        pd_buf out;
        pd_buf_init(&out, 0);
        CHECK(body && parse_req(body, len, &r));
        if (body && r.model) {
            pd_result rc = pd_cohere_write_chat_request(&r, "command-a-03-2025", &out, &e);
            if (rc)
                fprintf(stderr, "  %s: %s (%s)\n", in, e.message, e.param);
            CHECK(rc == PD_OK);
            json_t *j = json_loadb(out.data, out.len, 0, NULL);
            CHECK(json_is_object(j)); /* valid JSON */
            json_decref(j);
            pd_buf_append(&out, "\n", 1);
            check_golden(exp, out.data, out.len);
        }
        pd_chat_request_free(&r);
        pd_buf_free(&out);
        free(body);
    }
}

static void expect_refused(const char *body, const char *param, const char *message)
{
    pd_chat_request r;
    pd_api_error e;
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_buf_append_str(&out, "keep");
    CHECK(parse_req(body, strlen(body), &r));
    CHECK(pd_cohere_write_chat_request(&r, NULL, &out, &e) == PD_ERR_INVALID);
    CHECK(e.status == 400);
    CHECK_STR(e.type, "invalid_request_error");
    CHECK_STR(e.param, param);
    if (!strstr(e.message, message)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", e.message, message);
        CHECK(0);
    }
    CHECK_STR(out.data, "keep"); /* nothing written */
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

#define U "{\"role\":\"user\",\"content\":\"hi\"}"

static void request_refusals(void)
{
    expect_refused("{\"model\":\"m\",\"messages\":[" U "],\"n\":2}", "n", "'n' must be 1");
    expect_refused(
        "{\"model\":\"m\",\"messages\":[" U ",{\"role\":\"user\",\"content\":[{\"type\":"
        "\"input_audio\",\"input_audio\":{\"data\":\"UklGRg==\",\"format\":\"wav\"}}]}]}",
        "messages[1].content[0]", "does not accept audio content parts");
    expect_refused(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"x\"},{\"type\":\"file\",\"file\":{\"file_id\":\"file-1\"}}]}]}",
        "messages[0].content[1]", "does not accept file content parts");
    expect_refused("{\"model\":\"m\",\"messages\":[" U
                   "],\"tools\":[{\"type\":\"custom\",\"custom\":"
                   "{\"name\":\"sh\"}}]}",
                   "tools[0]", "function tools only");
    expect_refused("{\"model\":\"m\",\"messages\":[" U
                   ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
                   "\"c\",\"type\":\"custom\",\"custom\":{\"name\":\"sh\",\"input\":\"ls\"}}]}]}",
                   "messages[1].tool_calls[0]", "function tools only");
    expect_refused(
        "{\"model\":\"m\",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":"
        "{\"name\":\"a\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"b\"}}}",
        "tool_choice", "'b', which is not among the tools");
    /* a custom tool that the tool_choice leaves out is not sent, so not refused */
    const char *ok =
        "{\"model\":\"m\",\"messages\":[" U "],\"tools\":[{\"type\":\"custom\",\"custom\":"
        "{\"name\":\"sh\"}},{\"type\":\"function\",\"function\":{\"name\":\"a\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"a\"}}}";
    pd_chat_request r;
    pd_api_error e;
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(parse_req(ok, strlen(ok), &r));
    CHECK(pd_cohere_write_chat_request(&r, NULL, &out, &e) == PD_OK);
    CHECK_STR(out.data, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}}],"
                        "\"tool_choice\":\"REQUIRED\",\"stream\":false}");
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

static void request_writer_respects_cap(void)
{
    const char *body = "{\"model\":\"m\",\"messages\":[" U "]}";
    pd_chat_request r;
    pd_api_error e;
    CHECK(parse_req(body, strlen(body), &r));
    pd_buf out;
    pd_buf_init(&out, 30);
    pd_buf_append_str(&out, "keep");
    CHECK(pd_cohere_write_chat_request(&r, NULL, &out, &e) == PD_ERR_TOO_LARGE);
    CHECK_STR(out.data, "keep");
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

/* ---- responses ---------------------------------------------------------------------- */

/* Cohere body -> canonical -> OpenAI chat.completion, compared with <name>.out.json. */
static void response_goldens(void)
{
    static const char *names[] = {"resp_text", "resp_tools", "resp_length_thinking",
                                  "resp_error_finish"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], exp[64];
        snprintf(in, sizeof in, "%s.json", names[i]);
        snprintf(exp, sizeof exp, "%s.out.json", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_response r;
        pd_buf out;
        pd_buf_init(&out, 0);
        CHECK(body && pd_cohere_parse_chat_response(body, len, &r) == PD_OK);
        CHECK(pd_openai_write_chat_response(&r, &out) == PD_OK);
        pd_buf_append(&out, "\n", 1);
        check_golden(exp, out.data, out.len);
        pd_chat_response_free(&r);
        pd_buf_free(&out);
        free(body);
    }
}

static pd_chat_response parse_resp_file(const char *name)
{
    size_t len;
    char *body = read_file(name, &len);
    pd_chat_response r;
    pd_chat_response_init(&r);
    CHECK(body && pd_cohere_parse_chat_response(body, len, &r) == PD_OK);
    free(body);
    return r;
}

static void response_fields(void)
{
    pd_chat_response r = parse_resp_file("resp_text.json");
    CHECK(r.n_choices == 1 && r.choices[0].finish == PD_FINISH_STOP);
    CHECK_STR(r.id, "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    CHECK(r.model == NULL && r.created == 0);
    CHECK(r.choices[0].message.n_parts == 2);
    /* usage.tokens, not billed_units (cohere.h says why) */
    CHECK(r.usage.prompt_tokens == 71 && r.usage.completion_tokens == 418);
    CHECK(r.usage.cached_tokens == 64 && r.usage.total_tokens == PD_CHAT_COUNT_UNKNOWN);
    pd_chat_response_free(&r);

    r = parse_resp_file("resp_tools.json");
    CHECK(r.choices[0].finish == PD_FINISH_TOOL_CALLS);
    CHECK(r.choices[0].message.n_tool_calls == 2 && r.choices[0].message.n_parts == 0);
    CHECK_STR(r.choices[0].message.tool_calls[1].id, "get_time_2a8wq0x0gq1n");
    CHECK_STR(r.choices[0].message.tool_calls[1].arguments, "{\"zone\":\"Asia/Tokyo\"}");
    CHECK_STR(r.choices[0].message.reasoning,
              "I will check the weather in Paris and the time in Tokyo.");
    pd_chat_response_free(&r);

    r = parse_resp_file("resp_length_thinking.json");
    CHECK(r.choices[0].finish == PD_FINISH_LENGTH);
    CHECK_STR(r.choices[0].message.reasoning, "The user wants a long story.");
    CHECK(r.usage.prompt_tokens == 12 && r.usage.completion_tokens == 3); /* billed fallback */
    CHECK(r.usage.cached_tokens == PD_CHAT_COUNT_UNKNOWN);
    pd_chat_response_free(&r);

    r = parse_resp_file("resp_error_finish.json");
    CHECK(r.choices[0].finish == PD_FINISH_ERROR);
    CHECK(!pd_chat_usage_known(&r.usage));
    pd_chat_response_free(&r);

    /* arguments sent as an object are serialised; COMPLETE with tool calls -> tool_calls */
    const char *obj = "{\"finish_reason\":\"COMPLETE\",\"message\":{\"tool_calls\":[{\"id\":\"x\","
                      "\"function\":{\"name\":\"f\",\"arguments\":{\"b\":1,\"a\":[true]}}}]}}";
    CHECK(pd_cohere_parse_chat_response(obj, strlen(obj), &r) == PD_OK);
    CHECK_STR(r.choices[0].message.tool_calls[0].arguments, "{\"b\":1,\"a\":[true]}");
    CHECK(r.choices[0].finish == PD_FINISH_TOOL_CALLS);
    pd_chat_response_free(&r);

    const char *bad[] = {"not json", "[]", "{\"message\":\"invalid api token\"}", "{\"id\":\"x\"}"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(pd_cohere_parse_chat_response(bad[i], strlen(bad[i]), &r) == PD_ERR_INVALID);
        CHECK(r.choices == NULL && r.id == NULL);
    }
}

static void finish_reasons(void)
{
    static const struct {
        const char *s;
        pd_chat_finish f;
    } cases[] = {
        {"COMPLETE", PD_FINISH_STOP},      {"STOP_SEQUENCE", PD_FINISH_STOP},
        {"MAX_TOKENS", PD_FINISH_LENGTH},  {"TOOL_CALL", PD_FINISH_TOOL_CALLS},
        {"ERROR", PD_FINISH_ERROR},        {"TIMEOUT", PD_FINISH_ERROR},
        {"complete", PD_FINISH_UNKNOWN},   {"", PD_FINISH_UNKNOWN},
        {"NEW_REASON", PD_FINISH_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(pd_cohere_finish(cases[i].s, strlen(cases[i].s)) == cases[i].f);
}

/* ---- errors ------------------------------------------------------------------------- */

static void error_bodies(void)
{
    pd_api_error e;
    const char *b = "{\"id\":\"5b6f\",\"message\":\"invalid api token\"}";
    pd_cohere_parse_error_body(401, b, strlen(b), &e);
    CHECK(e.status == 401);
    CHECK_STR(e.type, "authentication_error");
    CHECK_STR(e.message, "invalid api token");
    b = "{\"message\":\"You are using a Trial key, which is limited to 10 API calls / minute.\"}";
    pd_cohere_parse_error_body(429, b, strlen(b), &e);
    CHECK(e.status == 429);
    CHECK_STR(e.type, "rate_limit_error");
    CHECK(strstr(e.message, "Trial key") != NULL);
    b = "<html><body>403 Forbidden</body></html>";
    pd_cohere_parse_error_body(403, b, strlen(b), &e);
    CHECK(e.status == 403);
    CHECK_STR(e.message, b);
    b = "{\"message\":\"invalid token\"}";
    pd_cohere_parse_error_body(498, b, strlen(b), &e);
    CHECK(e.status == 498);
    CHECK_STR(e.type, "authentication_error");
    pd_cohere_parse_error_body(503, "", 0, &e);
    CHECK(e.status == 503);
    CHECK_STR(e.type, "server_error");
    CHECK_STR(e.message, "upstream returned HTTP 503");
    pd_cohere_parse_error_body(200, NULL, 0, &e); /* not an error status: still an error */
    CHECK(e.status == 500);
}

/* ---- streams ------------------------------------------------------------------------ */

typedef struct stream_ctx {
    pd_cohere_decoder dec;
    pd_openai_encoder enc;
    pd_buf events, chunks;
    bool encode;
} stream_ctx;

static void dump_text(pd_buf *b, const char *s, size_t n)
{
    pd_buf_append(b, " \"", 2);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            pd_buf_append(b, "\\n", 2);
        else if (s[i] == '"' || s[i] == '\\')
            pd_buf_printf(b, "\\%c", s[i]);
        else
            pd_buf_append(b, &s[i], 1);
    }
    pd_buf_append(b, "\"", 1);
}

static const char *const kind_names[] = {
    "role", "text", "reasoning", "refusal", "tool_start", "tool_args", "finish", "usage", "error"};

/* One line per event, the form of the *.events golden files. */
static void dump_event(pd_buf *b, const pd_chat_event *ev)
{
    pd_buf_printf(b, "%s", kind_names[ev->kind]);
    switch (ev->kind) {
    case PD_EVENT_ROLE: pd_buf_printf(b, " %s", pd_chat_role_name(ev->role)); break;
    case PD_EVENT_TOOL_START:
        pd_buf_printf(b, " index=%u id=%s name=%s", ev->tool_index, ev->tool_id ? ev->tool_id : "-",
                      ev->tool_name);
        break;
    case PD_EVENT_TOOL_ARGS:
        pd_buf_printf(b, " index=%u", ev->tool_index);
        dump_text(b, ev->text, ev->text_len);
        break;
    case PD_EVENT_FINISH: pd_buf_printf(b, " %s", pd_chat_finish_name(ev->finish)); break;
    case PD_EVENT_USAGE:
        pd_buf_printf(b, " prompt=%lld completion=%lld total=%lld cached=%lld",
                      (long long)ev->usage.prompt_tokens, (long long)ev->usage.completion_tokens,
                      (long long)ev->usage.total_tokens, (long long)ev->usage.cached_tokens);
        break;
    case PD_EVENT_ERROR:
        pd_buf_printf(b, " status=%d type=%s", ev->error_status, ev->error_type);
        dump_text(b, ev->text, ev->text_len);
        break;
    default: dump_text(b, ev->text, ev->text_len); break;
    }
    pd_buf_printf(b, " [%s]\n", ev->id ? ev->id : "-");
}

static int on_chat_event(void *ud, const pd_chat_event *ev)
{
    stream_ctx *c = ud;
    dump_event(&c->events, ev);
    if (c->encode)
        CHECK(pd_openai_encode_event(&c->enc, ev, &c->chunks) == PD_OK);
    return 0;
}

static void ctx_init(stream_ctx *c, bool encode)
{
    pd_cohere_decoder_init(&c->dec);
    pd_openai_encoder_init(&c->enc, "chatcmpl-gw1", "gw-model", 1700000000);
    pd_buf_init(&c->events, 0);
    pd_buf_init(&c->chunks, 0);
    c->encode = encode;
}

static void ctx_free(stream_ctx *c)
{
    pd_cohere_decoder_free(&c->dec);
    pd_openai_encoder_free(&c->enc);
    pd_buf_free(&c->events);
    pd_buf_free(&c->chunks);
}

/* Feeds body in pieces of `step` bytes (0: all at once). */
static pd_result feed(stream_ctx *c, const char *body, size_t len, size_t step)
{
    pd_result rc = PD_OK;
    for (size_t off = 0; !rc && off < len; off += step ? step : len) {
        size_t n = step && len - off > step ? step : len - off;
        rc = pd_cohere_decode(&c->dec, body + off, n, on_chat_event, c);
    }
    return rc;
}

/* Cohere SSE -> canonical events (<name>.events) -> OpenAI chunks (<name>.out.sse); the events
   must not depend on where the bytes are split. */
static void stream_goldens(void)
{
    static const struct {
        const char *name;
        bool done, failed;
    } cases[] = {
        {"stream_text", true, false},          {"stream_tools", true, false},
        {"stream_thinking_crlf", true, false}, {"stream_error", false, true},
        {"stream_timeout", false, true},       {"stream_plain_error", false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char in[64], evs[64], out[64];
        snprintf(in, sizeof in, "%s.sse", cases[i].name);
        snprintf(evs, sizeof evs, "%s.events", cases[i].name);
        snprintf(out, sizeof out, "%s.out.sse", cases[i].name);
        size_t len;
        char *body = read_file(in, &len);
        CHECK(body != NULL);
        if (!body)
            continue;
        stream_ctx c;
        ctx_init(&c, true);
        CHECK(feed(&c, body, len, 0) == PD_OK);
        CHECK(c.dec.done == cases[i].done && c.dec.failed == cases[i].failed);
        if (c.dec.done)
            CHECK(pd_openai_encode_done(&c.chunks) == PD_OK);
        pd_buf_append(&c.events, "", 0);
        pd_buf_append(&c.chunks, "", 0);
        check_golden(evs, c.events.data, c.events.len);
        check_golden(out, c.chunks.data, c.chunks.len);
        static const size_t steps[] = {1, 7, 64};
        for (size_t s = 0; s < 3; s++) {
            stream_ctx c2;
            ctx_init(&c2, false);
            CHECK(feed(&c2, body, len, steps[s]) == PD_OK);
            pd_buf_append(&c2.events, "", 0);
            CHECK_STR(c2.events.data, c.events.data);
            ctx_free(&c2);
        }
        ctx_free(&c);
        free(body);
    }
}

static int stop_at_first(void *ud, const pd_chat_event *ev)
{
    (void)ev;
    ++*(int *)ud;
    return 1;
}

static int count_events(void *ud, const pd_chat_event *ev)
{
    (void)ev;
    ++*(int *)ud;
    return 0;
}

static pd_result decode_str(pd_cohere_decoder *d, const char *s, int *n)
{
    return pd_cohere_decode(d, s, strlen(s), count_events, n);
}

static void decoder_edges(void)
{
    pd_cohere_decoder d;
    int n = 0;
    pd_cohere_decoder_init(&d);
    CHECK(decode_str(&d, "data: {not json\n\n", &n) == PD_ERR_INVALID);
    CHECK(decode_str(&d, "data: [1]\n\n", &n) == PD_ERR_INVALID);
    CHECK(n == 0);
    /* arguments for a call that never started */
    CHECK(decode_str(&d,
                     "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":"
                     "{\"tool_calls\":{\"function\":{\"arguments\":\"{}\"}}}}}\n\n",
                     &n) == PD_ERR_INVALID);
    CHECK(n == 1); /* the ROLE that precedes anything */
    pd_cohere_decoder_free(&d);

    /* the callback stops the decoder */
    pd_cohere_decoder_init(&d);
    n = 0;
    const char *two = "event: message-start\ndata: {\"type\":\"message-start\",\"id\":\"x\"}\n\n"
                      "data: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":"
                      "{\"text\":\"a\"}}}}\n\n";
    CHECK(pd_cohere_decode(&d, two, strlen(two), stop_at_first, &n) == PD_ERR_CLOSED);
    CHECK(n == 1);
    pd_cohere_decoder_free(&d);

    /* the type may come from the event: line alone; after message-end nothing more */
    pd_cohere_decoder_init(&d);
    n = 0;
    CHECK(decode_str(&d,
                     "event: message-end\ndata: {\"delta\":{\"finish_reason\":\"STOP_SEQUENCE\"}}"
                     "\n\nevent: content-delta\ndata: {\"delta\":{\"message\":{\"content\":"
                     "{\"text\":\"late\"}}}}\n\ndata: {oops\n\n",
                     &n) == PD_OK);
    CHECK(d.done && n == 2); /* ROLE, FINISH (no usage object) */
    pd_cohere_decoder_free(&d);

    /* a named error event */
    pd_cohere_decoder_init(&d);
    n = 0;
    CHECK(decode_str(&d, "event: error\ndata: upstream overloaded\n\n", &n) == PD_OK);
    CHECK(d.failed && !d.done && n == 1); /* ERROR alone: no ROLE needed before it */
    pd_cohere_decoder_free(&d);

    /* an oversized event */
    pd_cohere_decoder_init(&d);
    size_t big = PD_SSE_DEFAULT_MAX_EVENT + 10;
    char *s = malloc(big + 1);
    memset(s, 'a', big);
    memcpy(s, "data: ", 6);
    s[big] = '\0';
    n = 0;
    CHECK(pd_cohere_decode(&d, s, big, count_events, &n) == PD_ERR_TOO_LARGE);
    free(s);
    pd_cohere_decoder_free(&d);
    pd_cohere_decoder_free(NULL);
}

/* ---- embeddings --------------------------------------------------------------------- */

static void embed_request(void)
{
    pd_embed_request r;
    pd_embed_request_init(&r);
    r.model = pd_xstrdup("client-name");
    r.n_inputs = 2;
    r.inputs = pd_xcalloc(2, sizeof *r.inputs);
    r.inputs[0] = pd_xstrdup("hello");
    r.inputs[1] = pd_xstrdup("w\xc3\xb6rld \"q\"");
    pd_buf out;
    pd_api_error e;
    pd_buf_init(&out, 0);
    CHECK(pd_cohere_write_embed_request(&r, "embed-v4.0", &out, &e) == PD_OK);
    CHECK_STR(out.data,
              "{\"model\":\"embed-v4.0\",\"texts\":[\"hello\",\"w\xc3\xb6rld \\\"q\\\"\"],"
              "\"input_type\":\"search_document\",\"embedding_types\":[\"float\"]}");
    pd_buf_reset(&out);
    r.input_type = pd_xstrdup("search_query");
    r.has_dimensions = true;
    r.dimensions = 256;
    CHECK(pd_cohere_write_embed_request(&r, NULL, &out, &e) == PD_OK);
    CHECK_STR(out.data,
              "{\"model\":\"client-name\",\"texts\":[\"hello\",\"w\xc3\xb6rld \\\"q\\\"\"],"
              "\"input_type\":\"search_query\",\"embedding_types\":[\"float\"],"
              "\"output_dimension\":256}");
    pd_buf_free(&out);
    pd_embed_request_free(&r);
    pd_embed_request_free(&r); /* twice is fine */
}

static void embed_response(void)
{
    size_t len;
    char *body = read_file("embed_resp.json", &len);
    pd_embed_response r;
    CHECK(body && pd_cohere_parse_embed_response(body, len, &r) == PD_OK);
    CHECK(r.n_vectors == 2 && r.vectors[0].n == 4 && r.vectors[1].n == 4);
    CHECK(r.vectors[0].values[0] == 0.016296387f && r.vectors[1].values[3] == -0.0011348724f);
    CHECK(r.prompt_tokens == 2 && r.total_tokens == 2);
    CHECK(r.model == NULL);
    pd_embed_response_free(&r);
    free(body);
    const char *v1 = "{\"id\":\"x\",\"embeddings\":[[1,2.5],[0]],\"texts\":[\"a\",\"b\"]}";
    CHECK(pd_cohere_parse_embed_response(v1, strlen(v1), &r) == PD_OK);
    CHECK(r.n_vectors == 2 && r.vectors[0].values[1] == 2.5f && r.vectors[1].n == 1);
    CHECK(r.prompt_tokens == PD_EMBED_COUNT_UNKNOWN);
    pd_embed_response_free(&r);
    const char *bad[] = {"{}",
                         "{\"embeddings\":{\"int8\":[[1]]}}",
                         "{\"embeddings\":{\"float\":[[1,\"x\"]]}}",
                         "{\"embeddings\":{\"float\":[1]}}",
                         "{\"embeddings\":{\"float\":[[1e300]]}}",
                         "nope"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(pd_cohere_parse_embed_response(bad[i], strlen(bad[i]), &r) == PD_ERR_INVALID);
        CHECK(r.vectors == NULL && r.n_vectors == 0);
    }
}

int main(void)
{
    TEST_RUN(request_goldens);
    TEST_RUN(request_refusals);
    TEST_RUN(request_writer_respects_cap);
    TEST_RUN(response_goldens);
    TEST_RUN(response_fields);
    TEST_RUN(finish_reasons);
    TEST_RUN(error_bodies);
    TEST_RUN(stream_goldens);
    TEST_RUN(decoder_edges);
    TEST_RUN(embed_request);
    TEST_RUN(embed_response);
    return TEST_DONE();
}
