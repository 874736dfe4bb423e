#include "canon/chat.h"
#include "canon/embed.h"
#include "proto/ollama.h"
#include "proto/openai.h"
#include "test.h"

#include <jansson.h>
#include <stdlib.h>

/* Golden files live in tests/golden/ollama/ (run from the repository root, as `make unit`
   does). With PD_GOLDEN_UPDATE=1 in the environment, missing or different expected files are
   rewritten instead of compared: review the diff before committing them. */
#define GOLDEN_DIR "tests/golden/ollama/"
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

/* OpenAI request -> canonical -> Ollama body, compared with <name>.out.json. */
static void request_goldens(void)
{
    static const char *names[] = {"req_text", "req_tools", "req_choice_none", "req_named"};
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
            pd_result rc = pd_ollama_write_chat_request(&r, "llama3.2", &out, &e);
            if (rc)
                fprintf(stderr, "  %s: %s (%s)\n", in, e.message, e.param);
            CHECK(rc == PD_OK);
            json_t *j = json_loadb(out.data, out.len, 0, NULL);
            CHECK(json_is_object(j)); /* valid JSON, raw arguments included */
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
    CHECK(pd_ollama_write_chat_request(&r, NULL, &out, &e) == PD_ERR_INVALID);
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
#define CALL(args)                                                                                 \
    "{\"model\":\"m\",\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"        \
    "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":"    \
    "\"c2\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":" args "}}]}]}"

static void request_refusals(void)
{
    expect_refused("{\"model\":\"m\",\"messages\":[" U "],\"n\":3}", "n", "'n' must be 1");
    expect_refused("{\"model\":\"m\",\"messages\":[" U ",{\"role\":\"user\",\"content\":[{\"type\":"
                   "\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.png\"}}]}]}",
                   "messages[1].content[0]", "only as base64 data");
    expect_refused(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
        "\"input_audio\",\"input_audio\":{\"data\":\"UklGRg==\",\"format\":\"wav\"}}]}]}",
        "messages[0].content[0]", "does not accept audio content parts");
    expect_refused(CALL("\"{\\\"city\\\": \\\"Par\""),
                   "messages[1].tool_calls[1].function.arguments", "not valid JSON");
    expect_refused(CALL("\"[1,2]\""), "messages[1].tool_calls[1].function.arguments",
                   "needs a JSON object, not an array");
    expect_refused(CALL("\"\\\"text\\\"\""), "messages[1].tool_calls[1].function.arguments",
                   "not valid JSON");
    expect_refused(CALL("\"{} {}\""), "messages[1].tool_calls[1].function.arguments",
                   "not valid JSON");
    expect_refused("{\"model\":\"m\",\"messages\":[" U
                   "],\"tools\":[{\"type\":\"custom\",\"custom\":"
                   "{\"name\":\"sh\"}}]}",
                   "tools[0]", "function tools only");
    expect_refused(
        "{\"model\":\"m\",\"messages\":[" U "],\"tools\":[{\"type\":\"function\",\"function\":"
        "{\"name\":\"a\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"z\"}}}",
        "tool_choice", "'z', which is not among the tools");
    /* tool_choice none drops the tools, so a custom tool among them is no problem */
    const char *ok =
        "{\"model\":\"m\",\"messages\":[" U "],\"tools\":[{\"type\":\"custom\",\"custom\":"
        "{\"name\":\"sh\"}}],\"tool_choice\":\"none\"}";
    pd_chat_request r;
    pd_api_error e;
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(parse_req(ok, strlen(ok), &r));
    CHECK(pd_ollama_write_chat_request(&r, NULL, &out, &e) == PD_OK);
    CHECK_STR(out.data, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"stream\":false}");
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
    CHECK(pd_ollama_write_chat_request(&r, NULL, &out, &e) == PD_ERR_TOO_LARGE);
    CHECK_STR(out.data, "keep");
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

/* ---- responses ---------------------------------------------------------------------- */

/* Ollama body -> canonical -> OpenAI chat.completion, compared with <name>.out.json. */
static void response_goldens(void)
{
    static const char *names[] = {"resp_text", "resp_tools", "resp_length"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], exp[64];
        snprintf(in, sizeof in, "%s.json", names[i]);
        snprintf(exp, sizeof exp, "%s.out.json", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_response r;
        pd_buf out;
        pd_buf_init(&out, 0);
        CHECK(body && pd_ollama_parse_chat_response(body, len, &r) == PD_OK);
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
    CHECK(body && pd_ollama_parse_chat_response(body, len, &r) == PD_OK);
    free(body);
    return r;
}

static void response_fields(void)
{
    pd_chat_response r = parse_resp_file("resp_text.json");
    CHECK(r.id == NULL && r.created == 1702390423);
    CHECK_STR(r.model, "llama3.2");
    CHECK(r.choices[0].finish == PD_FINISH_STOP);
    CHECK(r.usage.prompt_tokens == 26 && r.usage.completion_tokens == 298);
    CHECK(r.usage.total_tokens == PD_CHAT_COUNT_UNKNOWN);
    pd_chat_response_free(&r);

    r = parse_resp_file("resp_tools.json");
    CHECK(r.created == 1751913173);                     /* 20:32:53+02:00 = 18:32:53Z */
    CHECK(r.choices[0].finish == PD_FINISH_TOOL_CALLS); /* "stop" + tool calls */
    CHECK(r.choices[0].message.n_parts == 0);           /* "" content is no part */
    CHECK_STR(r.choices[0].message.reasoning, "The user wants weather and time.");
    CHECK(r.choices[0].message.n_tool_calls == 2);
    CHECK_STR(r.choices[0].message.tool_calls[0].id, "call_x1");
    CHECK_STR(r.choices[0].message.tool_calls[0].arguments,
              "{\"city\":\"Tokyo\",\"days\":2,\"opts\":{\"unit\":\"c\",\"alerts\":false}}");
    CHECK(r.choices[0].message.tool_calls[1].id == NULL);
    CHECK_STR(r.choices[0].message.tool_calls[1].arguments, "{}");
    pd_chat_response_free(&r);

    r = parse_resp_file("resp_length.json");
    CHECK(r.choices[0].finish == PD_FINISH_LENGTH);
    CHECK(r.usage.prompt_tokens == 0 && r.usage.completion_tokens == 3); /* omitted zero */
    pd_chat_response_free(&r);

    const char *bad[] = {"not json", "[]", "{\"error\":\"model 'x' not found\"}",
                         "{\"model\":\"m\",\"done\":true}"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(pd_ollama_parse_chat_response(bad[i], strlen(bad[i]), &r) == PD_ERR_INVALID);
        CHECK(r.choices == NULL && r.model == NULL);
    }
}

static void times(void)
{
    static const struct {
        const char *s;
        int64_t t;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2023-12-12T14:13:43.416799Z", 1702390423},
        {"2023-08-04T08:52:19.385406455-07:00", 1691164339},
        {"2025-07-07T20:32:53+02:00", 1751913173},
        {"2000-02-29t12:00:00z", 951825600},
        {"2024-13-01T00:00:00Z", 0},
        {"2024-01-01T00:00:00", 0},
        {"2024-01-01T00:00:00Zjunk", 0},
        {"2024-01-01", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t t = pd_ollama_parse_time(cases[i].s, strlen(cases[i].s));
        if (t != cases[i].t)
            fprintf(stderr, "  %s -> %lld, want %lld\n", cases[i].s, (long long)t,
                    (long long)cases[i].t);
        CHECK(t == cases[i].t);
    }
}

/* ---- errors ------------------------------------------------------------------------- */

static void error_bodies(void)
{
    pd_api_error e;
    const char *b = "{\"error\":\"model \\\"llama9\\\" not found, try pulling it first\"}";
    pd_ollama_parse_error_body(404, b, strlen(b), &e);
    CHECK(e.status == 404);
    CHECK_STR(e.code, "model_not_found");
    CHECK_STR(e.message, "model \"llama9\" not found, try pulling it first");
    b = "{\"error\":\"json: cannot unmarshal string into Go struct field\"}";
    pd_ollama_parse_error_body(400, b, strlen(b), &e);
    CHECK(e.status == 400 && e.code == NULL);
    CHECK_STR(e.type, "invalid_request_error");
    b = "{\"error\":\"server busy, please try again.  maximum pending requests exceeded\"}";
    pd_ollama_parse_error_body(503, b, strlen(b), &e);
    CHECK(e.status == 503);
    CHECK_STR(e.type, "server_error");
    b = "404 page not found";
    pd_ollama_parse_error_body(404, b, strlen(b), &e);
    CHECK(e.status == 404);
    CHECK_STR(e.message, "404 page not found");
}

/* ---- streams ------------------------------------------------------------------------ */

typedef struct stream_ctx {
    pd_ollama_decoder dec;
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
    pd_buf_printf(b, " [%s %s %lld]\n", ev->id ? ev->id : "-", ev->model ? ev->model : "-",
                  (long long)ev->created);
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
    pd_ollama_decoder_init(&c->dec);
    pd_openai_encoder_init(&c->enc, "chatcmpl-gw1", "gw-model", 1700000000);
    pd_buf_init(&c->events, 0);
    pd_buf_init(&c->chunks, 0);
    c->encode = encode;
}

static void ctx_free(stream_ctx *c)
{
    pd_ollama_decoder_free(&c->dec);
    pd_openai_encoder_free(&c->enc);
    pd_buf_free(&c->events);
    pd_buf_free(&c->chunks);
}

static pd_result feed(stream_ctx *c, const char *body, size_t len, size_t step)
{
    pd_result rc = PD_OK;
    for (size_t off = 0; !rc && off < len; off += step ? step : len) {
        size_t n = step && len - off > step ? step : len - off;
        rc = pd_ollama_decode(&c->dec, body + off, n, on_chat_event, c);
    }
    return rc;
}

/* Ollama NDJSON -> canonical events (<name>.events) -> OpenAI chunks (<name>.out.sse); the
   events must not depend on where the bytes are split. */
static void stream_goldens(void)
{
    static const struct {
        const char *name;
        bool done, failed;
    } cases[] = {
        {"stream_text", true, false},
        {"stream_tools", true, false},
        {"stream_error", false, true},
        {"stream_length_crlf", true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char in[64], evs[64], out[64];
        snprintf(in, sizeof in, "%s.ndjson", cases[i].name);
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
        static const size_t steps[] = {1, 5, 100};
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

static void decoder_edges(void)
{
    pd_ollama_decoder d;
    int n = 0;
    pd_ollama_decoder_init(&d);
    CHECK(pd_ollama_decode(&d, "{not json}\n", 11, count_events, &n) == PD_ERR_INVALID);
    CHECK(pd_ollama_decode(&d, "[1]\n", 4, count_events, &n) == PD_ERR_INVALID);
    CHECK(pd_ollama_decode(&d, "data: {}\n", 9, count_events, &n) == PD_ERR_INVALID); /* not SSE */
    CHECK(n == 0);
    /* an unfinished line is held, not decoded */
    CHECK(pd_ollama_decode(&d, "{\"message\":{\"content\":\"a\"}}", 27, count_events, &n) == PD_OK);
    CHECK(n == 0);
    CHECK(pd_ollama_decode(&d, "\n", 1, count_events, &n) == PD_OK);
    CHECK(n == 2); /* ROLE, TEXT */
    pd_ollama_decoder_free(&d);

    /* the callback stops the decoder */
    pd_ollama_decoder_init(&d);
    n = 0;
    const char *two = "{\"message\":{\"content\":\"a\"}}\n{\"message\":{\"content\":\"b\"}}\n";
    CHECK(pd_ollama_decode(&d, two, strlen(two), stop_at_first, &n) == PD_ERR_CLOSED);
    CHECK(n == 1);
    pd_ollama_decoder_free(&d);

    /* a line longer than the cap fails, and keeps failing */
    pd_ollama_decoder_init(&d);
    size_t big = PD_OLLAMA_MAX_LINE + 1;
    char *s = malloc(big);
    memset(s, ' ', big);
    n = 0;
    CHECK(pd_ollama_decode(&d, s, big, count_events, &n) == PD_ERR_TOO_LARGE);
    CHECK(pd_ollama_decode(&d, "\n{}\n", 4, count_events, &n) == PD_ERR_TOO_LARGE);
    CHECK(n == 0 && d.failed);
    pd_ollama_decoder_free(&d);
    /* the same line whole in one feed, newline included, fails the same way */
    pd_ollama_decoder_init(&d);
    s = realloc(s, big + 1);
    s[big] = '\n';
    CHECK(pd_ollama_decode(&d, s, big + 1, count_events, &n) == PD_ERR_TOO_LARGE);
    free(s);
    pd_ollama_decoder_free(&d);

    /* an error object that is not a string still ends the stream */
    pd_ollama_decoder_init(&d);
    n = 0;
    CHECK(pd_ollama_decode(&d, "{\"error\":{\"message\":\"boom\"}}\n{\"done\":true}\n", 44,
                           count_events, &n) == PD_OK);
    CHECK(n == 1 && d.failed && !d.done);
    pd_ollama_decoder_free(&d);
    pd_ollama_decoder_free(NULL);
}

/* ---- embeddings --------------------------------------------------------------------- */

static void embed_request(void)
{
    pd_embed_request r;
    pd_embed_request_init(&r);
    r.model = pd_xstrdup("client-name");
    r.n_inputs = 1;
    r.inputs = pd_xcalloc(1, sizeof *r.inputs);
    r.inputs[0] = pd_xstrdup("why is the sky blue?");
    r.input_is_string = true;
    pd_buf out;
    pd_api_error e;
    pd_buf_init(&out, 0);
    CHECK(pd_ollama_write_embed_request(&r, "all-minilm", &out, &e) == PD_OK);
    CHECK_STR(out.data, "{\"model\":\"all-minilm\",\"input\":\"why is the sky blue?\"}");
    pd_buf_reset(&out);
    r.input_is_string = false;
    r.has_dimensions = true;
    r.dimensions = 128;
    CHECK(pd_ollama_write_embed_request(&r, NULL, &out, &e) == PD_OK);
    CHECK_STR(out.data, "{\"model\":\"client-name\",\"input\":[\"why is the sky blue?\"],"
                        "\"dimensions\":128}");
    pd_buf_free(&out);
    pd_embed_request_free(&r);
}

static void embed_response(void)
{
    size_t len;
    char *body = read_file("embed_resp.json", &len);
    pd_embed_response r;
    CHECK(body && pd_ollama_parse_embed_response(body, len, &r) == PD_OK);
    CHECK(r.n_vectors == 2 && r.vectors[0].n == 4 && r.vectors[1].n == 4);
    CHECK(r.vectors[0].values[0] == 0.010071029f && r.vectors[1].values[3] == -0.037148483f);
    CHECK(r.prompt_tokens == 8 && r.total_tokens == 8);
    CHECK_STR(r.model, "all-minilm");
    pd_embed_response_free(&r);
    free(body);
    const char *legacy = "{\"embedding\":[0.5,-1]}";
    CHECK(pd_ollama_parse_embed_response(legacy, strlen(legacy), &r) == PD_OK);
    CHECK(r.n_vectors == 1 && r.vectors[0].n == 2 && r.vectors[0].values[1] == -1.0f);
    CHECK(r.prompt_tokens == 0);
    pd_embed_response_free(&r);
    const char *bad[] = {"{}",
                         "{\"embeddings\":[]}",
                         "{\"embeddings\":[[1,null]]}",
                         "{\"embeddings\":[1]}",
                         "{\"error\":\"x\"}",
                         "[[1]]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(pd_ollama_parse_embed_response(bad[i], strlen(bad[i]), &r) == PD_ERR_INVALID);
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
    TEST_RUN(times);
    TEST_RUN(error_bodies);
    TEST_RUN(stream_goldens);
    TEST_RUN(decoder_edges);
    TEST_RUN(embed_request);
    TEST_RUN(embed_response);
    return TEST_DONE();
}
