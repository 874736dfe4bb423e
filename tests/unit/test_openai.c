#include "canon/chat.h"
#include "proto/openai.h"
#include "proto/sse.h"
#include "test.h"

#include <stdlib.h>

/* Golden files live in tests/golden/openai/ (run from the repository root, as `make unit`
   does). With PD_GOLDEN_UPDATE=1 in the environment, missing or different expected files are
   rewritten instead of compared: review the diff before committing them. */
#define GOLDEN_DIR "tests/golden/openai/"
#include "golden.h"

/* ---- request validation -------------------------------------------------------------- */

static void expect_invalid(const char *body, const char *param, const char *message)
{
    expect_parse_error(pd_openai_parse_chat_request, body, param, message);
}

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void validation_errors(void)
{
    expect_invalid("{\"model\":", "", "body is not valid JSON: ");
    expect_invalid("", "", "body is not valid JSON: ");
    expect_invalid("{\"model\":\"m\",\"x\":\"\xff\"}", "", "body is not valid JSON: ");
    expect_invalid("{\"model\":\"m\"} trailing", "", "body is not valid JSON: ");
    expect_invalid("[1,2]", "", "body must be a JSON object, not an array");
    expect_invalid("{" MSGS "}", "model", "Missing required parameter: 'model'.");
    expect_invalid("{\"model\":null," MSGS "}", "model", "Missing required parameter: 'model'.");
    expect_invalid("{\"model\":42," MSGS "}", "model",
                   "Invalid type for 'model': expected a string, but got an integer instead.");
    expect_invalid("{\"model\":\"m\"}", "messages", "Missing required parameter: 'messages'.");
    expect_invalid("{\"model\":\"m\",\"messages\":[]}", "messages", "empty array");
    expect_invalid("{\"model\":\"m\",\"messages\":{}}", "messages",
                   "Invalid type for 'messages': expected an array, but got an object instead.");
    expect_invalid("{\"model\":\"m\",\"messages\":[\"hi\"]}", "messages[0]",
                   "Invalid type for 'messages[0]': expected an object, but got a string instead.");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role",
                   "Missing required parameter: 'messages[0].role'.");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                   "{\"role\":\"robot\",\"content\":\"x\"}]}",
                   "messages[1].role", "'robot'. Supported values are: 'system', 'developer'");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content",
                   "Missing required parameter: 'messages[0].content'.");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
                   "messages[0].content",
                   "expected a string or an array of content parts, but got an integer instead");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":null}]}",
                   "messages[0].content", "but got null instead");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
                   "messages[0].content", "empty array");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
                   "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x\"}}]}]}",
                   "messages[0].content[0].type",
                   "Invalid value: 'image_url'. Supported values are: 'text'.");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "[{\"type\":\"text\"}]}]}",
                   "messages[0].content[0].text", "Missing required parameter");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "[{\"type\":\"image_url\",\"image_url\":{\"detail\":\"low\"}}]}]}",
                   "messages[0].content[0].image_url.url", "Missing required parameter");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"15C\"}]}",
                   "messages[0].tool_call_id",
                   "Missing required parameter: 'messages[0].tool_call_id'.");
    expect_invalid("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":"
                   "[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}]}",
                   "messages[0].tool_calls[0].function.arguments", "Missing required parameter");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"temperature\":\"hot\"}", "temperature",
                   "Invalid type for 'temperature': expected a number, but got a string instead.");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"temperature\":2.5}", "temperature",
                   "expected a number between 0 and 2, but got 2.5 instead");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"temperature\":-0.1}", "temperature",
                   "between 0 and 2");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"top_p\":1.01}", "top_p", "between 0 and 1");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"n\":1.5}", "n",
                   "Invalid type for 'n': expected an integer, but got a decimal instead.");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"n\":0}", "n",
                   "expected an integer between 1 and 128, but got 0 instead");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"n\":129}", "n", "between 1 and 128");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"top_logprobs\":21}", "top_logprobs",
                   "between 0 and 20");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"presence_penalty\":-2.5}", "presence_penalty",
                   "between -2 and 2");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"max_tokens\":-1}", "max_tokens",
                   "but got -1 instead");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"stream\":\"yes\"}", "stream",
                   "Invalid type for 'stream': expected a boolean, but got a string instead.");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"stream_options\":{\"include_usage\":1}}",
                   "stream_options.include_usage", "expected a boolean");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"seed\":\"1\"}", "seed", "expected an integer");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"stop\":[\"a\",1]}", "stop[1]",
                   "expected a string, but got an integer");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"logprobs\":1}", "logprobs", "expected a boolean");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"tools\":[{\"type\":\"function\"}]}",
                   "tools[0].function", "Missing required parameter: 'tools[0].function'.");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"tools\":[{\"type\":\"function\",\"function\":"
                   "{\"name\":\"f\",\"parameters\":\"{}\"}}]}",
                   "tools[0].function.parameters", "expected an object, but got a string");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"tool_choice\":\"any\"}", "tool_choice",
                   "Invalid value: 'any'. Supported values are: 'none', 'auto' and 'required'.");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"tool_choice\":{\"type\":\"function\"}}",
                   "tool_choice.function", "Missing required parameter");
    /* found by fuzz_request: a missing tools list crashed the type description */
    expect_invalid("{\"model\":\"m\"," MSGS ",\"tool_choice\":{\"type\":\"allowed_tools\","
                   "\"allowed_tools\":{\"mode\":\"auto\"}}}",
                   "tool_choice.allowed_tools.tools", "Missing required parameter");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"response_format\":{\"type\":\"xml\"}}",
                   "response_format.type", "supported values are 'text'");
    expect_invalid("{\"model\":\"m\"," MSGS ",\"user\":7}", "user", "expected a string");
}

/* {"model":"m","messages":[...],"x":[[...]]} with `levels` nested arrays under "x". */
static char *nested_body(int levels)
{
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_append_str(&b, "{\"model\":\"m\"," MSGS ",\"x\":");
    for (int i = 0; i < levels; i++)
        pd_buf_append(&b, "[", 1);
    for (int i = 0; i < levels; i++)
        pd_buf_append(&b, "]", 1);
    pd_buf_append(&b, "}", 1);
    return b.data;
}

static void depth_is_bounded(void)
{
    /* the outer object is one level: 100 arrays under it are one too many */
    char *body = nested_body(PD_OPENAI_MAX_DEPTH);
    expect_invalid(body, "", "nested deeper than 100 levels");
    free(body);
    pd_chat_request r;
    pd_api_error e;
    body = nested_body(PD_OPENAI_MAX_DEPTH - 1);
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &r, &e) == PD_OK);
    pd_chat_request_free(&r);
    free(body);
    /* brackets inside strings (escaped quotes included) do not count */
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_append_str(&b, "{\"model\":\"m\"," MSGS ",\"x\":\"\\\"");
    for (int i = 0; i < 2 * PD_OPENAI_MAX_DEPTH; i++)
        pd_buf_append(&b, "[{", 2);
    pd_buf_append_str(&b, "\"}");
    CHECK(pd_openai_parse_chat_request(b.data, b.len, &r, &e) == PD_OK);
    pd_chat_request_free(&r);
    pd_buf_free(&b);
}

static void nulls_and_unknown_fields(void)
{
    const char *body = "{\"model\":\"m\"," MSGS ",\"temperature\":null,\"n\":null,\"stop\":null,"
                       "\"tools\":null,\"tool_choice\":null,\"future_field\":{\"a\":[1]},"
                       "\"messages_extra\":1}";
    pd_chat_request r;
    pd_api_error e;
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &r, &e) == PD_OK);
    CHECK(!r.sampling.has_temperature && !r.sampling.has_n && r.sampling.stop == NULL);
    CHECK(r.tool_choice.kind == PD_TOOL_CHOICE_UNSET && r.n_tools == 0);
    json_t *raw = pd_chat_json_tree(&r.raw);
    CHECK(json_is_object(json_object_get(raw, "future_field"))); /* kept for passthrough */
    json_decref(raw);
    pd_chat_request_free(&r);
    pd_chat_request_free(&r); /* twice is a no-op */
    pd_chat_request_free(NULL);
}

static void seed_is_int64(void)
{
    const char *body = "{\"model\":\"m\"," MSGS ",\"seed\":9007199254740993}";
    pd_chat_request r;
    pd_api_error e;
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &r, &e) == PD_OK);
    CHECK(r.sampling.has_seed && r.sampling.seed == 9007199254740993LL);
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(pd_openai_write_chat_request(&r, &out) == PD_OK);
    CHECK(strstr(out.data, "\"seed\":9007199254740993") != NULL);
    pd_buf_free(&out);
    pd_chat_request_free(&r);
    body = "{\"model\":\"m\"," MSGS ",\"seed\":-9223372036854775808}";
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &r, &e) == PD_OK);
    CHECK(r.sampling.seed == INT64_MIN);
    pd_chat_request_free(&r);
}

/* Spot checks of the canonical form that the golden round trips cannot see. */
static void canonical_fields(void)
{
    size_t len;
    char *body = read_file("req_tool_results.json", &len);
    pd_chat_request r;
    pd_api_error e;
    CHECK(body && pd_openai_parse_chat_request(body, len, &r, &e) == PD_OK);
    CHECK_STR(r.model, "m");
    CHECK(r.n_messages == 5);
    CHECK(r.messages[1].n_parts == 2 && r.messages[1].parts[1].kind == PD_PART_IMAGE);
    CHECK_STR(r.messages[1].parts[1].media_type, "image/png");
    CHECK_STR(r.messages[1].parts[1].data, "iVBOR...");
    CHECK(r.messages[1].parts[1].url == NULL);
    CHECK(r.messages[2].form == PD_CONTENT_NULL && r.messages[2].n_tool_calls == 2);
    CHECK_STR(r.messages[2].tool_calls[0].arguments, "{\"city\":\"Paris\"}");
    CHECK(r.messages[3].role == PD_ROLE_TOOL);
    CHECK_STR(r.messages[4].tool_call_id, "call_2");
    CHECK(r.sampling.has_max_tokens && r.sampling.max_tokens == 512 &&
          !r.sampling.max_tokens_legacy);
    CHECK(r.sampling.n_stop == 1 && !r.sampling.stop_is_string);
    CHECK(r.stream && r.include_usage == PD_TRI_TRUE);
    CHECK(r.tool_choice.kind == PD_TOOL_CHOICE_AUTO && r.n_tools == 2);
    json_t *params = pd_chat_json_tree(&r.tools[0].parameters);
    CHECK_STR(json_string_value(json_object_get(params, "type")), "object");
    json_decref(params);
    pd_chat_request_free(&r);
    free(body);

    body = read_file("req_images.json", &len);
    CHECK(body && pd_openai_parse_chat_request(body, len, &r, &e) == PD_OK);
    const pd_chat_part *p = r.messages[0].parts;
    CHECK_STR(p[1].url, "https://example.com/cat.png");
    CHECK_STR(p[1].detail, "high");
    CHECK(p[3].kind == PD_PART_AUDIO);
    CHECK_STR(p[3].format, "wav");
    CHECK(p[4].kind == PD_PART_FILE && p[4].file_id == NULL);
    CHECK_STR(p[4].filename, "a.pdf");
    CHECK_STR(p[5].file_id, "file-abc123");
    CHECK_STR(r.messages[2].name, "alice");
    pd_chat_request_free(&r);
    free(body);

    body = read_file("req_assistant_variants.json", &len);
    CHECK(body && pd_openai_parse_chat_request(body, len, &r, &e) == PD_OK);
    CHECK(r.messages[1].parts[0].kind == PD_PART_REFUSAL);
    CHECK_STR(r.messages[3].reasoning, "User wants a tool.");
    CHECK(r.messages[3].tool_calls[0].kind == PD_TOOL_CUSTOM);
    CHECK_STR(r.messages[3].tool_calls[0].arguments, "ls -la");
    CHECK(r.messages[6].form == PD_CONTENT_AUTO && r.messages[6].n_parts == 0);
    CHECK(r.tool_choice.kind == PD_TOOL_CHOICE_REQUIRED && r.tool_choice.n_allowed == 2);
    CHECK(r.tools[0].kind == PD_TOOL_CUSTOM);
    pd_chat_request_free(&r);
    free(body);
}

/* request -> canonical -> OpenAI JSON, compared with <name>.out.json; the output must parse
   again and write the same bytes a second time. */
static void request_goldens(void)
{
    static const char *names[] = {"req_text",         "req_images",   "req_tools",
                                  "req_tool_results", "req_sampling", "req_assistant_variants"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], exp[64];
        snprintf(in, sizeof in, "%s.json", names[i]);
        snprintf(exp, sizeof exp, "%s.out.json", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_request r, r2;
        pd_api_error e;
        pd_buf out, out2;
        pd_buf_init(&out, 0);
        pd_buf_init(&out2, 0);
        CHECK(body != NULL);
        pd_result rc = body ? pd_openai_parse_chat_request(body, len, &r, &e) : PD_ERR_IO;
        if (rc)
            fprintf(stderr, "  %s: %s (%s)\n", in, e.message, e.param);
        CHECK(rc == PD_OK);
        if (!rc) {
            CHECK(pd_openai_write_chat_request(&r, &out) == PD_OK);
            pd_buf_append(&out, "\n", 1);
            check_golden(exp, out.data, out.len);
            CHECK(pd_openai_parse_chat_request(out.data, out.len, &r2, &e) == PD_OK);
            CHECK(pd_openai_write_chat_request(&r2, &out2) == PD_OK);
            pd_buf_append(&out2, "\n", 1);
            CHECK_STR(out2.data, out.data);
            pd_chat_request_free(&r2);
            pd_chat_request_free(&r);
        }
        pd_buf_free(&out);
        pd_buf_free(&out2);
        free(body);
    }
}

static void request_writer_respects_cap(void)
{
    const char *body = "{\"model\":\"m\"," MSGS "}";
    pd_chat_request r;
    pd_api_error e;
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &r, &e) == PD_OK);
    pd_buf out;
    pd_buf_init(&out, 20);
    pd_buf_append_str(&out, "keep");
    CHECK(pd_openai_write_chat_request(&r, &out) == PD_ERR_TOO_LARGE);
    CHECK_STR(out.data, "keep"); /* nothing half-written */
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

/* A canonical request built by hand (as another ingress would) writes valid OpenAI JSON. */
static void built_request_writes(void)
{
    pd_chat_request r;
    pd_chat_request_init(&r);
    r.model = pd_chat_request_strdup(&r, "m"); /* everything in r's arena (canon/chat.h) */
    r.n_messages = 2;
    r.messages = pd_chat_request_alloc(&r, 2, sizeof *r.messages);
    r.messages[0].role = PD_ROLE_USER;
    r.messages[0].n_parts = 1;
    r.messages[0].parts = pd_chat_request_alloc(&r, 1, sizeof(pd_chat_part));
    r.messages[0].parts[0].text = pd_chat_request_strdup(&r, "bad \xc3 utf8 \x01");
    r.messages[1].role = PD_ROLE_ASSISTANT;
    r.sampling.has_temperature = true;
    r.sampling.temperature = 0.1 + 0.2; /* needs 17 digits */
    r.sampling.has_max_tokens = true;
    r.sampling.max_tokens = 100;
    r.sampling.max_tokens_legacy = true;
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(pd_openai_write_chat_request(&r, &out) == PD_OK);
    CHECK_STR(out.data, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad "
                        "\\ufffd utf8 \\u0001\"},{\"role\":\"assistant\",\"content\":null}],"
                        "\"max_tokens\":100,\"temperature\":0.30000000000000004}");
    pd_chat_request r2;
    pd_api_error e;
    CHECK(pd_openai_parse_chat_request(out.data, out.len, &r2, &e) == PD_OK);
    CHECK(r2.sampling.temperature == 0.1 + 0.2);
    pd_chat_request_free(&r2);
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

/* ---- responses ---------------------------------------------------------------------- */

static void response_goldens(void)
{
    static const char *names[] = {"resp_text", "resp_tools", "resp_llama", "resp_ollama"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], exp[64];
        snprintf(in, sizeof in, "%s.json", names[i]);
        snprintf(exp, sizeof exp, "%s.out.json", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_response r, r2;
        pd_buf out, out2;
        pd_buf_init(&out, 0);
        pd_buf_init(&out2, 0);
        CHECK(body && pd_openai_parse_chat_response(body, len, &r) == PD_OK);
        CHECK(pd_openai_write_chat_response(&r, &out) == PD_OK);
        pd_buf_append(&out, "\n", 1);
        check_golden(exp, out.data, out.len);
        CHECK(pd_openai_parse_chat_response(out.data, out.len, &r2) == PD_OK);
        CHECK(pd_openai_write_chat_response(&r2, &out2) == PD_OK);
        pd_buf_append(&out2, "\n", 1);
        CHECK_STR(out2.data, out.data);
        pd_chat_response_free(&r2);
        pd_chat_response_free(&r);
        pd_buf_free(&out);
        pd_buf_free(&out2);
        free(body);
    }
}

static void response_fields(void)
{
    size_t len;
    char *body = read_file("resp_tools.json", &len);
    pd_chat_response r;
    CHECK(body && pd_openai_parse_chat_response(body, len, &r) == PD_OK);
    CHECK(r.n_choices == 2 && r.choices[0].finish == PD_FINISH_TOOL_CALLS);
    CHECK(r.choices[1].finish == PD_FINISH_CONTENT_FILTER && r.choices[1].index == 1);
    CHECK(r.usage.prompt_tokens == 120 && r.usage.cached_tokens == 64 &&
          r.usage.cache_write_tokens == 32 && r.usage.reasoning_tokens == 12);
    pd_chat_response_free(&r);
    free(body);
    body = read_file("resp_ollama.json", &len);
    CHECK(body && pd_openai_parse_chat_response(body, len, &r) == PD_OK);
    CHECK_STR(r.choices[0].message.tool_calls[0].arguments, "{\"city\":\"Paris\",\"unit\":\"C\"}");
    CHECK_STR(r.choices[0].message.reasoning, "hmm");
    CHECK(r.usage.total_tokens == PD_CHAT_COUNT_UNKNOWN && r.usage.cached_tokens == -1);
    pd_chat_response_free(&r);
    free(body);
    const char *bad[] = {"not json", "[]", "{\"choices\":{}}", "{\"error\":{\"message\":\"x\"}}"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(pd_openai_parse_chat_response(bad[i], strlen(bad[i]), &r) == PD_ERR_INVALID);
        CHECK(r.choices == NULL);
    }
}

/* ---- streams ------------------------------------------------------------------------ */

typedef struct stream_ctx {
    pd_openai_decoder dec;
    pd_openai_encoder enc;
    pd_buf events, chunks;
    pd_result rc;
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
    if (ev->kind != PD_EVENT_USAGE && ev->kind != PD_EVENT_ERROR)
        pd_buf_printf(b, " choice=%u", ev->choice);
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
        pd_buf_printf(b, " prompt=%lld completion=%lld total=%lld cached=%lld reasoning=%lld",
                      (long long)ev->usage.prompt_tokens, (long long)ev->usage.completion_tokens,
                      (long long)ev->usage.total_tokens, (long long)ev->usage.cached_tokens,
                      (long long)ev->usage.reasoning_tokens);
        break;
    case PD_EVENT_ERROR:
        pd_buf_printf(b, " status=%d type=%s code=%s", ev->error_status, ev->error_type,
                      ev->error_code ? ev->error_code : "-");
        dump_text(b, ev->text, ev->text_len);
        break;
    default: dump_text(b, ev->text, ev->text_len); break;
    }
    if (ev->logprobs) {
        char *lp = json_dumps(ev->logprobs, JSON_COMPACT | JSON_PRESERVE_ORDER);
        pd_buf_printf(b, " logprobs=%s", lp);
        free(lp);
    }
    if (ev->id)
        pd_buf_printf(b, " [%s %s %lld]", ev->id, ev->model ? ev->model : "-",
                      (long long)ev->created);
    pd_buf_append(b, "\n", 1);
}

static int on_chat_event(void *ud, const pd_chat_event *ev)
{
    stream_ctx *c = ud;
    dump_event(&c->events, ev);
    CHECK(pd_openai_encode_event(&c->enc, ev, &c->chunks) == PD_OK);
    return 0;
}

static int on_sse_event(void *ud, const pd_sse_event *ev)
{
    stream_ctx *c = ud;
    pd_result rc = pd_openai_decode_chunk(&c->dec, ev->data, ev->data_len, on_chat_event, c);
    if (rc)
        c->rc = rc;
    return 0;
}

static void stream_goldens(void)
{
    static const char *names[] = {
        "stream_text",  "stream_tools",       "stream_unreliable_index", "stream_reasoning_n2",
        "stream_error", "stream_llama_error", "stream_vllm_error",       "stream_logprobs"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], evs[64], out[64];
        snprintf(in, sizeof in, "%s.sse", names[i]);
        snprintf(evs, sizeof evs, "%s.events", names[i]);
        snprintf(out, sizeof out, "%s.out.sse", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        CHECK(body != NULL);
        if (!body)
            continue;
        stream_ctx c;
        pd_sse_parser p;
        pd_openai_decoder_init(&c.dec);
        pd_openai_encoder_init(&c.enc, "chatcmpl-gw1", "gw-model", 1700000000);
        pd_buf_init(&c.events, 0);
        pd_buf_init(&c.chunks, 0);
        c.rc = PD_OK;
        pd_sse_init(&p, 0);
        CHECK(pd_sse_feed(&p, body, len, on_sse_event, &c) == PD_OK);
        CHECK(!pd_sse_pending(&p));
        CHECK(c.rc == PD_OK);
        if (c.dec.done)
            CHECK(pd_openai_encode_done(&c.chunks) == PD_OK);
        pd_buf_append(&c.events, "", 0);
        pd_buf_append(&c.chunks, "", 0);
        check_golden(evs, c.events.data, c.events.len);
        check_golden(out, c.chunks.data, c.chunks.len);

        /* and what we wrote decodes to the same events (upstream id/model aside) */
        stream_ctx c2;
        pd_openai_decoder_init(&c2.dec);
        pd_openai_encoder_init(&c2.enc, "chatcmpl-gw1", "gw-model", 1700000000);
        pd_buf_init(&c2.events, 0);
        pd_buf_init(&c2.chunks, 0);
        c2.rc = PD_OK;
        pd_sse_reset(&p);
        CHECK(pd_sse_feed(&p, c.chunks.data, c.chunks.len, on_sse_event, &c2) == PD_OK);
        if (c2.dec.done)
            CHECK(pd_openai_encode_done(&c2.chunks) == PD_OK);
        pd_buf_append(&c2.chunks, "", 0);
        CHECK_STR(c2.chunks.data, c.chunks.data);
        CHECK(c2.dec.done == c.dec.done);

        pd_sse_free(&p);
        pd_openai_encoder_free(&c.enc);
        pd_openai_encoder_free(&c2.enc);
        pd_buf_free(&c.events);
        pd_buf_free(&c.chunks);
        pd_buf_free(&c2.events);
        pd_buf_free(&c2.chunks);
        free(body);
    }
}

static int stop_at_first(void *ud, const pd_chat_event *ev)
{
    (void)ev;
    ++*(int *)ud;
    return 1;
}

static void decoder_edges(void)
{
    pd_openai_decoder d;
    int n = 0;
    pd_openai_decoder_init(&d);
    CHECK(pd_openai_decode_chunk(&d, " [DONE] \r\n", 10, stop_at_first, &n) == PD_OK);
    CHECK(d.done && n == 0);
    CHECK(pd_openai_decode_chunk(&d, "{not json", 9, stop_at_first, &n) == PD_ERR_INVALID);
    CHECK(pd_openai_decode_chunk(&d, "[1]", 3, stop_at_first, &n) == PD_ERR_INVALID);
    const char *two =
        "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"x\"}}]}";
    CHECK(pd_openai_decode_chunk(&d, two, strlen(two), stop_at_first, &n) == PD_ERR_CLOSED);
    CHECK(n == 1); /* stopped after the first of two events */
}

static void encoder_fixes_bad_utf8(void)
{
    pd_openai_encoder e;
    pd_openai_encoder_init(&e, "chatcmpl-\"q\"", "m\\1", 5);
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_TEXT);
    ev.text = "a\xe2\x82"; /* a character cut in two */
    ev.text_len = 3;
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(pd_openai_encode_event(&e, &ev, &out) == PD_OK);
    CHECK_STR(out.data, "data: {\"id\":\"chatcmpl-\\\"q\\\"\",\"object\":\"chat.completion.chunk\","
                        "\"created\":5,\"model\":\"m\\\\1\",\"choices\":[{\"index\":0,\"delta\":"
                        "{\"content\":\"a\\ufffd\\ufffd\"},\"logprobs\":null,"
                        "\"finish_reason\":null}]}\n\n");
    pd_buf_free(&out);
    pd_buf_init(&out, 10);
    CHECK(pd_openai_encode_event(&e, &ev, &out) == PD_ERR_TOO_LARGE);
    CHECK(out.len == 0);
    pd_buf_free(&out);
    pd_openai_encoder_free(&e);
    pd_openai_encoder_free(NULL);
}

/* ---- errors ------------------------------------------------------------------------- */

static void error_body_written(void)
{
    pd_api_error e;
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_openai_error_set(&e, 404, "invalid_request_error", "model_not_found", NULL,
                        "The model '%s' does not exist", "gpt-\"x\"");
    CHECK(pd_openai_error_body(&e, &out) == PD_OK);
    CHECK_STR(out.data, "{\"error\":{\"message\":\"The model 'gpt-\\\"x\\\"' does not exist\","
                        "\"type\":\"invalid_request_error\",\"param\":null,"
                        "\"code\":\"model_not_found\"}}");
    pd_buf_reset(&out);
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]}";
    pd_chat_request r;
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &r, &e) == PD_ERR_INVALID);
    CHECK(pd_openai_error_body(&e, &out) == PD_OK);
    CHECK_STR(out.data, "{\"error\":{\"message\":\"Invalid value for 'messages[0].role': 'bot'. "
                        "Supported values are: 'system', 'developer', 'user', 'assistant' and "
                        "'tool'.\",\"type\":\"invalid_request_error\","
                        "\"param\":\"messages[0].role\",\"code\":\"invalid_value\"}}");
    pd_buf_free(&out);
}

static void expect_upstream_error(const char *body, int http, pd_result want_rc, int status,
                                  const char *type, const char *code, const char *param,
                                  const char *message)
{
    pd_api_error e;
    CHECK(pd_openai_parse_error_body(body, strlen(body), http, &e) == want_rc);
    CHECK(e.status == status);
    CHECK_STR(e.type, type);
    if (code)
        CHECK_STR(e.code, code);
    else
        CHECK(e.code == NULL);
    CHECK_STR(e.param, param);
    CHECK_STR(e.message, message);
}

static void error_bodies_parsed(void)
{
    expect_upstream_error("{\"error\":{\"message\":\"This model's maximum context length is 8192 "
                          "tokens.\",\"type\":\"invalid_request_error\",\"param\":\"messages\","
                          "\"code\":\"context_length_exceeded\"}}",
                          400, PD_OK, 400, "invalid_request_error", "context_length_exceeded",
                          "messages", "This model's maximum context length is 8192 tokens.");
    expect_upstream_error("{\"error\":{\"message\":\"You exceeded your current quota\","
                          "\"type\":\"insufficient_quota\",\"param\":null,"
                          "\"code\":\"insufficient_quota\"}}",
                          429, PD_OK, 429, "insufficient_quota", "insufficient_quota", "",
                          "You exceeded your current quota");
    /* llama-server: integer code, own types */
    expect_upstream_error("{\"error\":{\"code\":503,\"message\":\"Loading model\","
                          "\"type\":\"unavailable_error\"}}",
                          503, PD_OK, 503, "unavailable_error", NULL, "", "Loading model");
    /* vLLM old shape; status taken from the integer code when the HTTP status is not an error */
    expect_upstream_error("{\"object\":\"error\",\"message\":\"model does not exist\","
                          "\"type\":\"NotFoundError\",\"param\":null,\"code\":404}",
                          200, PD_OK, 404, "not_found_error", NULL, "", "model does not exist");
    /* Ollama native */
    expect_upstream_error("{\"error\":\"model 'x' not found\"}", 404, PD_OK, 404,
                          "invalid_request_error", NULL, "", "model 'x' not found");
    /* Anthropic */
    expect_upstream_error("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                          "\"message\":\"Overloaded\"},\"request_id\":\"req_1\"}",
                          529, PD_OK, 529, "overloaded_error", NULL, "", "Overloaded");
    /* Cohere */
    expect_upstream_error("{\"message\":\"invalid api token\"}", 401, PD_OK, 401,
                          "authentication_error", NULL, "", "invalid api token");
    /* FastAPI */
    expect_upstream_error("{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"field required\"}]}", 422,
                          PD_OK, 422, "invalid_request_error", NULL, "",
                          "[{\"loc\":[\"body\"],\"msg\":\"field required\"}]");
    /* unknown type: the status decides */
    expect_upstream_error("{\"error\":{\"message\":\"m\",\"type\":\"weird\",\"code\":\"odd\"}}",
                          502, PD_OK, 502, "server_error", NULL, "", "m");
    /* not JSON: the raw text, trimmed */
    expect_upstream_error("<html>\n<h1>502 Bad Gateway</h1>\n</html>\n", 502, PD_ERR_INVALID, 502,
                          "server_error", NULL, "", "<html>\n<h1>502 Bad Gateway</h1>\n</html>");
    expect_upstream_error("", 503, PD_ERR_INVALID, 503, "server_error", NULL, "",
                          "upstream returned HTTP 503");
    expect_upstream_error("{\"foo\":1}", 0, PD_ERR_INVALID, 500, "server_error", NULL, "",
                          "{\"foo\":1}");

    /* a long body is cut at a character boundary */
    char big[1200];
    memset(big, 'a', sizeof big);
    memcpy(big + 510, "\xc3\xa9", 2);
    big[sizeof big - 1] = '\0';
    pd_api_error e;
    pd_openai_parse_error_body(big, strlen(big), 500, &e);
    CHECK(strlen(e.message) == 510);
}

int main(void)
{
    TEST_RUN(validation_errors);
    TEST_RUN(depth_is_bounded);
    TEST_RUN(nulls_and_unknown_fields);
    TEST_RUN(seed_is_int64);
    TEST_RUN(canonical_fields);
    TEST_RUN(request_goldens);
    TEST_RUN(request_writer_respects_cap);
    TEST_RUN(built_request_writes);
    TEST_RUN(response_goldens);
    TEST_RUN(response_fields);
    TEST_RUN(stream_goldens);
    TEST_RUN(decoder_edges);
    TEST_RUN(encoder_fixes_bad_utf8);
    TEST_RUN(error_body_written);
    TEST_RUN(error_bodies_parsed);
    return TEST_DONE();
}
