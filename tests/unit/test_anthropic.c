/* The Anthropic Messages codec (proto/anthropic.h), its provider (providers/anthropic.c) and
 * client dialect (ingress/dialect_anthropic.c): pure functions, tested without sockets.
 *
 * Golden files live in tests/golden/anthropic/ (run from the repository root, as `make unit`
 * does); the OpenAI ones in tests/golden/openai/ are reused as inputs for the other direction.
 * With PD_GOLDEN_UPDATE=1 in the environment, missing or different expected files are
 * rewritten instead of compared: review the diff before committing them.
 *   req_X.json        an Anthropic client's body -> req_X.openai.json (for an OpenAI upstream)
 *                     and req_X.out.json (for an Anthropic upstream, translation path)
 *   oai_X.json, ../openai/req_X.json   an OpenAI client's body -> *.anthropic.json
 *   resp_X.json       an Anthropic upstream's answer -> resp_X.openai.json, resp_X.out.json
 *   ../openai/resp_X.json              an OpenAI upstream's answer -> oai_resp_X.anthropic.json
 *   stream_X.sse      an Anthropic upstream's stream -> stream_X.events (canonical events),
 *                     stream_X.openai.sse (to an OpenAI client), stream_X.out.sse (Anthropic)
 *   ../openai/stream_X.sse             an OpenAI upstream's stream -> oai_stream_X.anthropic.sse */
#include <curl/curl.h>
#include <stdlib.h>

#include "canon/chat.h"
#include "proto/anthropic.h"
#include "proto/openai.h"
#include "proto/sse.h"
#include "providers/provider.h"
#include "test.h"

extern const pd_provider_ops pd_provider_anthropic;

#define GOLDEN_DIR "tests/golden/anthropic/"
#include "golden.h"

/* ---- request validation -------------------------------------------------------------- */

static void expect_invalid(const char *body, const char *param, const char *message)
{
    expect_parse_error(pd_anthropic_parse_chat_request, body, param, message);
}

#define HEAD "{\"model\":\"m\",\"max_tokens\":10,"
#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
#define U(content) "{\"role\":\"user\",\"content\":" content "}"
#define A(content) "{\"role\":\"assistant\",\"content\":" content "}"
#define TOOL_USE(id) "{\"type\":\"tool_use\",\"id\":\"" id "\",\"name\":\"f\",\"input\":{}}"
#define TOOL_RESULT(id) "{\"type\":\"tool_result\",\"tool_use_id\":\"" id "\",\"content\":\"ok\"}"

static void validation_errors(void)
{
    expect_invalid("{\"model\":", "", "body is not valid JSON: ");
    expect_invalid("", "", "body is not valid JSON: ");
    expect_invalid("[1]", "", "body must be a JSON object");
    expect_invalid("{\"max_tokens\":10," MSGS "}", "model", "model: Field required");
    expect_invalid("{\"model\":\"\",\"max_tokens\":10," MSGS "}", "model",
                   "model: String should have at least 1 character");
    expect_invalid("{\"model\":7,\"max_tokens\":10," MSGS "}", "model",
                   "model: Input should be a valid string");
    expect_invalid("{\"model\":\"m\"," MSGS "}", "max_tokens", "max_tokens: Field required");
    expect_invalid("{\"model\":\"m\",\"max_tokens\":0," MSGS "}", "max_tokens",
                   "max_tokens: Input should be greater than or equal to 1");
    expect_invalid("{\"model\":\"m\",\"max_tokens\":1.5," MSGS "}", "max_tokens",
                   "max_tokens: Input should be a valid integer");
    expect_invalid(HEAD "\"x\":1}", "messages", "messages: Field required");
    expect_invalid(HEAD "\"messages\":{}}", "messages", "messages: Input should be a valid list");
    expect_invalid(HEAD "\"messages\":[]}", "messages", "at least one user message is required");
    expect_invalid(HEAD "\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}", "messages",
                   "at least one user message is required");
    expect_invalid(HEAD "\"messages\":[7]}", "messages.0",
                   "messages.0: Input should be a valid dictionary");
    expect_invalid(HEAD "\"messages\":[{\"content\":\"x\"}]}", "messages.0.role",
                   "messages.0.role: Field required");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") ",{\"role\":\"tool\",\"content\":\"x\"}]}",
                   "messages.1.role", "Input should be 'user', 'assistant' or 'system'");
    expect_invalid(HEAD "\"messages\":[" A("\"hello\"") "," U("\"x\"") "]}", "messages",
                   "first message must use the \"user\" role");
    expect_invalid(HEAD "\"messages\":[{\"role\":\"user\"}]}", "messages.0.content",
                   "messages.0.content: Field required");
    expect_invalid(HEAD "\"messages\":[" U("5") "]}", "messages.0.content",
                   "Input should be a valid string or a list of content blocks");
    expect_invalid(HEAD "\"messages\":[" U("\"\"") "]}", "messages.0",
                   "messages.0: all messages must have non-empty content except for the optional "
                   "final assistant message");
    expect_invalid(HEAD "\"messages\":[" U("[]") "]}", "messages.0", "non-empty content");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("\"\"") "," U("\"b\"") "]}",
                   "messages.1", "non-empty content");
    expect_invalid(HEAD "\"messages\":[" U("[{\"type\":\"text\",\"text\":\"\"}]") "]}",
                   "messages.0.content.0.text", "text content blocks must be non-empty");
    expect_invalid(HEAD "\"messages\":[" U("[{\"text\":\"x\"}]") "]}", "messages.0.content.0.type",
                   "Field required");
    expect_invalid(HEAD "\"messages\":[" U("[\"x\"]") "]}", "messages.0.content.0",
                   "Input should be a valid dictionary");
    expect_invalid(HEAD "\"messages\":[" U("[{\"type\":\"video\"}]") "]}",
                   "messages.0.content.0.type",
                   "'video' blocks are not supported in user messages (supported: text, image, "
                   "document, tool_result)");
    expect_invalid(HEAD "\"messages\":[" U("[" TOOL_USE("t1") "]") "]}",
                   "messages.0.content.0.type", "'tool_use' blocks are not supported in user");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[{\"type\":\"image\"}]") "]}",
                   "messages.1.content.0.type",
                   "'image' blocks are not supported in assistant messages");
    expect_invalid(HEAD "\"system\":[{\"type\":\"image\"}]," MSGS "}", "system.0.type",
                   "'image' blocks are not supported in system prompts");
    expect_invalid(HEAD "\"system\":5," MSGS "}", "system",
                   "system: Input should be a valid string or a list of text blocks");
    expect_invalid(HEAD "\"messages\":[" U("[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
                                           "\"media_type\":\"image/bmp\",\"data\":\"x\"}}]") "]}",
                   "messages.0.content.0.source.media_type",
                   "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'");
    expect_invalid(HEAD "\"messages\":[" U("[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
                                           "\"media_type\":\"image/png\"}}]") "]}",
                   "messages.0.content.0.source.data", "Field required");
    expect_invalid(HEAD "\"messages\":[" U("[{\"type\":\"image\",\"source\":{\"type\":\"file\","
                                           "\"file_id\":\"f\"}}]") "]}",
                   "messages.0.content.0.source.type", "image sources of type 'file'");
    expect_invalid(HEAD "\"messages\":[" U("[{\"type\":\"image\"}]") "]}",
                   "messages.0.content.0.source", "Field required");
    expect_invalid(HEAD "\"messages\":[" U("[{\"type\":\"document\",\"source\":{\"type\":\"text\","
                                           "\"media_type\":\"text/plain\",\"data\":\"x\"}}]") "]}",
                   "messages.0.content.0.source.type", "only base64 'application/pdf'");
    /* tool_use / tool_result pairing */
    expect_invalid(HEAD "\"messages\":[" U("[" TOOL_RESULT("t1") "]") "]}",
                   "messages.0.content.0",
                   "unexpected `tool_use_id` found in `tool_result` blocks: t1");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") ","
                   U("[" TOOL_RESULT("t2") "]") "]}",
                   "messages.2.content.0", "unexpected `tool_use_id` found in `tool_result` blocks: t2");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "," TOOL_USE("t2") "]") ","
                   U("[" TOOL_RESULT("t2") "]") "]}",
                   "messages.1",
                   "`tool_use` ids were found without `tool_result` blocks immediately after: t1");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") "," U("\"b\"") "]}",
                   "messages.1", "`tool_use` ids were found without `tool_result` blocks");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") ","
                   A("\"more\"") "]}",
                   "messages.1", "`tool_use` ids were found without `tool_result` blocks");
    /* a result may only answer the message right before it */
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") ","
                   U("[" TOOL_RESULT("t1") "]") "," A("\"x\"") "," U("[" TOOL_RESULT("t1") "]") "]}",
                   "messages.4.content.0", "unexpected `tool_use_id`");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[{\"type\":\"tool_use\",\"id\":\"t\","
                                                         "\"name\":\"f\",\"input\":\"{}\"}]") "]}",
                   "messages.1.content.0.input", "Input should be a valid dictionary");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[{\"type\":\"tool_use\",\"name\":\"f\","
                                                         "\"input\":{}}]") "]}",
                   "messages.1.content.0.id", "Field required");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") ","
                   U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":5}]") "]}",
                   "messages.2.content.0.content", "a valid string or a list of content blocks");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") ","
                   U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"is_error\":1}]") "]}",
                   "messages.2.content.0.is_error", "Input should be a valid boolean");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") ","
                   U("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":"
                     "[{\"type\":\"document\"}]}]") "]}",
                   "messages.2.content.0.content.0.type",
                   "'document' blocks are not supported in tool results (supported: text, image)");
    expect_invalid(HEAD "\"messages\":[" U("\"a\"") "," A("[{\"type\":\"thinking\"}]") "]}",
                   "messages.1.content.0.thinking", "Field required");
    /* tools, tool_choice and the rest */
    expect_invalid(HEAD MSGS ",\"tools\":{}}", "tools", "tools: Input should be a valid list");
    expect_invalid(HEAD MSGS ",\"tools\":[{\"name\":\"f\"}]}", "tools.0.input_schema",
                   "Field required");
    expect_invalid(HEAD MSGS ",\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"array\"}}]}",
                   "tools.0.input_schema.type", "Input should be 'object'");
    expect_invalid(HEAD MSGS ",\"tools\":[{\"input_schema\":{\"type\":\"object\"}}]}",
                   "tools.0.name", "Field required");
    expect_invalid(HEAD MSGS ",\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}",
                   "tools.0.type", "server tools ('web_search_20250305') are not supported");
    expect_invalid(HEAD MSGS ",\"tool_choice\":\"auto\"}", "tool_choice",
                   "Input should be a valid dictionary");
    expect_invalid(HEAD MSGS ",\"tool_choice\":{\"type\":\"required\"}}", "tool_choice.type",
                   "Input should be 'auto', 'any', 'tool' or 'none'");
    expect_invalid(HEAD MSGS ",\"tool_choice\":{\"type\":\"tool\"}}", "tool_choice.name",
                   "Field required");
    expect_invalid(HEAD MSGS ",\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":"
                   "\"yes\"}}",
                   "tool_choice.disable_parallel_tool_use", "Input should be a valid boolean");
    expect_invalid(HEAD MSGS ",\"temperature\":1.5}", "temperature",
                   "Input should be less than or equal to 1");
    expect_invalid(HEAD MSGS ",\"temperature\":\"hot\"}", "temperature", "a valid number");
    expect_invalid(HEAD MSGS ",\"top_p\":-0.1}", "top_p", "greater than or equal to 0");
    expect_invalid(HEAD MSGS ",\"top_k\":-1}", "top_k", "greater than or equal to 0");
    expect_invalid(HEAD MSGS ",\"stop_sequences\":\"END\"}", "stop_sequences", "a valid list");
    expect_invalid(HEAD MSGS ",\"stop_sequences\":[\"a\",1]}", "stop_sequences.1",
                   "a valid string");
    expect_invalid(HEAD MSGS ",\"stream\":\"yes\"}", "stream", "a valid boolean");
    expect_invalid(HEAD MSGS ",\"metadata\":{\"user_id\":5}}", "metadata.user_id",
                   "a valid string");
    expect_invalid(HEAD MSGS ",\"thinking\":{\"type\":\"enabled\"}}", "thinking.budget_tokens",
                   "Field required");
    expect_invalid(HEAD MSGS ",\"thinking\":{\"type\":\"on\"}}", "thinking.type",
                   "Input should be 'enabled', 'disabled' or 'adaptive'");
    expect_invalid(HEAD MSGS ",\"output_config\":{\"format\":{\"type\":\"xml\"}}}",
                   "output_config.format.type", "Input should be 'json_schema'");
    expect_invalid(HEAD MSGS ",\"output_config\":{\"format\":{\"type\":\"json_schema\"}}}",
                   "output_config.format.schema", "Field required");
}

static void accepted_edge_cases(void)
{
    static const char *ok[] = {
        /* a final empty assistant message (a prefill of nothing) is dropped */
        HEAD "\"messages\":[" U("\"a\"") "," A("\"\"") "]}",
        /* a tool_use in the final assistant message needs no result yet */
        HEAD "\"messages\":[" U("\"a\"") "," A("[" TOOL_USE("t1") "]") "]}",
        /* system messages before the first user one; nulls are absent */
        HEAD "\"messages\":[{\"role\":\"system\",\"content\":\"s\"}," U("\"a\"") "],"
             "\"temperature\":null,\"tools\":null,\"system\":null,\"stop_sequences\":null}",
        /* unknown fields stay in raw */
        HEAD MSGS ",\"future\":{\"a\":[1]},\"container\":\"c\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        pd_chat_request r;
        pd_api_error e;
        pd_result rc = pd_anthropic_parse_chat_request(ok[i], strlen(ok[i]), &r, &e);
        if (rc)
            fprintf(stderr, "  case %zu: %s\n", i, e.message);
        CHECK(rc == PD_OK);
        CHECK(r.raw.text != NULL);
        if (i == 0)
            CHECK(r.n_messages == 1);
        if (i == 1)
            CHECK(r.n_messages == 2 && r.messages[1].n_tool_calls == 1);
        if (i == 2)
            CHECK(r.n_messages == 2 && r.messages[0].role == PD_ROLE_SYSTEM &&
                  !r.sampling.has_temperature);
        if (i == 3) {
            json_t *raw = pd_chat_json_tree(&r.raw);
            CHECK(json_is_object(json_object_get(raw, "future")));
            json_decref(raw);
        }
        pd_chat_request_free(&r);
        pd_chat_request_free(&r); /* twice is a no-op */
    }
}

static char *nested_body(int levels)
{
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_append_str(&b, HEAD MSGS ",\"x\":");
    for (int i = 0; i < levels; i++)
        pd_buf_append(&b, "[", 1);
    for (int i = 0; i < levels; i++)
        pd_buf_append(&b, "]", 1);
    pd_buf_append(&b, "}", 1);
    return b.data;
}

static void depth_is_bounded(void)
{
    char *body = nested_body(PD_ANTHROPIC_MAX_DEPTH);
    expect_invalid(body, "", "nested deeper than 100 levels");
    free(body);
    pd_chat_request r;
    pd_api_error e;
    body = nested_body(PD_ANTHROPIC_MAX_DEPTH - 1);
    CHECK(pd_anthropic_parse_chat_request(body, strlen(body), &r, &e) == PD_OK);
    pd_chat_request_free(&r);
    free(body);
}

/* Spot checks of the canonical form that the goldens show only indirectly. */
static void canonical_fields(void)
{
    size_t len;
    char *body = read_file("req_tools.json", &len);
    pd_chat_request r;
    pd_api_error e;
    CHECK(body && pd_anthropic_parse_chat_request(body, len, &r, &e) == PD_OK);
    CHECK(r.n_messages == 7);
    CHECK(r.messages[1].role == PD_ROLE_ASSISTANT && r.messages[1].n_tool_calls == 2);
    CHECK_STR(r.messages[1].tool_calls[0].arguments, "{\"city\":\"Paris\",\"days\":2}");
    CHECK_STR(r.messages[1].tool_calls[1].arguments, "{}");
    CHECK(r.messages[2].role == PD_ROLE_TOOL && r.messages[3].role == PD_ROLE_TOOL);
    CHECK_STR(r.messages[2].tool_call_id, "toolu_01");
    CHECK_STR(r.messages[3].parts[0].text, "Error: clock broken");
    CHECK(r.messages[4].role == PD_ROLE_USER && r.messages[4].n_parts == 2);
    CHECK(r.messages[4].parts[0].kind == PD_PART_IMAGE); /* the tool result's image */
    CHECK_STR(r.messages[4].parts[0].media_type, "image/jpeg");
    CHECK(r.messages[6].role == PD_ROLE_TOOL && r.messages[6].n_parts == 0);
    CHECK(r.tool_choice.kind == PD_TOOL_CHOICE_REQUIRED);
    CHECK(r.parallel_tool_calls == PD_TRI_FALSE);
    CHECK(r.n_tools == 2 && r.tools[1].kind == PD_TOOL_FUNCTION);
    CHECK(r.sampling.has_max_tokens && r.sampling.max_tokens == 2048 && !r.stream);
    pd_chat_request_free(&r);
    free(body);

    body = read_file("req_blocks.json", &len);
    CHECK(body && pd_anthropic_parse_chat_request(body, len, &r, &e) == PD_OK);
    CHECK(r.messages[0].role == PD_ROLE_SYSTEM && r.messages[0].n_parts == 2);
    CHECK_STR(r.messages[1].parts[2].url, "https://example.com/cat.jpg");
    CHECK(r.messages[1].parts[3].kind == PD_PART_FILE);
    CHECK_STR(r.messages[1].parts[3].data, "data:application/pdf;base64,JVBERi0x");
    CHECK_STR(r.messages[1].parts[3].filename, "spec.pdf");
    CHECK_STR(r.messages[3].reasoning, "Two images and a PDF.");
    CHECK(r.sampling.has_top_k && r.sampling.top_k == 40 && r.sampling.has_top_p);
    pd_chat_request_free(&r);
    free(body);

    body = read_file("req_misc.json", &len);
    CHECK(body && pd_anthropic_parse_chat_request(body, len, &r, &e) == PD_OK);
    CHECK(r.n_messages == 3); /* the empty final assistant message is dropped */
    CHECK(r.messages[2].role == PD_ROLE_SYSTEM);
    CHECK(r.tool_choice.kind == PD_TOOL_CHOICE_NAMED);
    CHECK_STR(r.tool_choice.name, "f");
    CHECK(r.tools[0].strict == PD_TRI_TRUE);
    CHECK_STR(r.reasoning_effort, "high");
    CHECK(r.response_format.kind == PD_FORMAT_JSON_SCHEMA);
    CHECK(r.user == NULL && !r.sampling.has_temperature);
    pd_chat_request_free(&r);
    free(body);
}

/* An Anthropic client's body -> canonical -> OpenAI (.openai.json) and Anthropic (.out.json);
   the Anthropic output must parse again and write the same bytes a second time. */
static void request_goldens(void)
{
    static const struct {
        const char *name;
        const char *anthropic_error; /* the writer refuses it with this message, or NULL */
    } cases[] = {
        {"req_text", NULL},
        {"req_blocks", NULL},
        {"req_tools", NULL},
        {"req_choice_none", NULL},
        {"req_misc", "response_format 'json_schema' together with tools cannot be honoured by "
                     "provider kind anthropic"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char in[64], oai[64], exp[64];
        snprintf(in, sizeof in, "%s.json", cases[i].name);
        snprintf(oai, sizeof oai, "%s.openai.json", cases[i].name);
        snprintf(exp, sizeof exp, "%s.out.json", cases[i].name);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_request r, r2;
        pd_api_error e;
        pd_buf out, out2;
        pd_buf_init(&out, 0);
        pd_buf_init(&out2, 0);
        CHECK(body != NULL);
        pd_result rc = body ? pd_anthropic_parse_chat_request(body, len, &r, &e) : PD_ERR_IO;
        if (rc)
            fprintf(stderr, "  %s: %s\n", in, e.message);
        CHECK(rc == PD_OK);
        if (rc)
            goto next;
        CHECK(pd_openai_write_chat_request(&r, &out) == PD_OK);
        pd_buf_append(&out, "\n", 1);
        check_golden(oai, out.data, out.len);
        pd_buf_reset(&out);
        rc = pd_anthropic_write_chat_request(&r, NULL, &out, &e);
        if (cases[i].anthropic_error) {
            CHECK(rc == PD_ERR_INVALID && e.status == 400 && out.len == 0);
            CHECK_STR(e.message, cases[i].anthropic_error);
        } else {
            CHECK(rc == PD_OK);
            pd_buf_append(&out, "\n", 1);
            check_golden(exp, out.data, out.len);
            CHECK(pd_anthropic_parse_chat_request(out.data, out.len, &r2, &e) == PD_OK);
            CHECK(pd_anthropic_write_chat_request(&r2, NULL, &out2, &e) == PD_OK);
            pd_buf_append(&out2, "\n", 1);
            CHECK_STR(out2.data, out.data);
            pd_chat_request_free(&r2);
        }
        pd_chat_request_free(&r);
    next:
        pd_buf_free(&out);
        pd_buf_free(&out2);
        free(body);
    }
}

/* An OpenAI client's body -> canonical -> Anthropic (.anthropic.json), or the 400 saying what
   Anthropic cannot honour. */
static void openai_request_goldens(void)
{
    static const struct {
        const char *in, *out, *error, *param;
    } cases[] = {
        {"../openai/req_tool_results.json", "oai_req_tool_results.anthropic.json", NULL, NULL},
        {"../openai/req_text.json", "oai_req_text.anthropic.json", NULL, NULL},
        {"oai_mixed.json", "oai_mixed.anthropic.json", NULL, NULL},
        {"../openai/req_images.json", NULL,
         "input_audio content cannot be honoured by provider kind anthropic",
         "messages[0].content[3]"},
        {"../openai/req_sampling.json", NULL, "n > 1 cannot be honoured by provider kind anthropic",
         "n"},
        {"../openai/req_tools.json", NULL,
         "response_format 'json_schema' together with tools cannot be honoured by provider kind "
         "anthropic",
         "response_format"},
        {"../openai/req_assistant_variants.json", NULL,
         "response_format 'json_object' together with tools cannot be honoured by provider kind "
         "anthropic",
         "response_format"},
        {"oai_json_schema.json", "oai_json_schema.anthropic.json", NULL, NULL},
        {"oai_json_object.json", "oai_json_object.anthropic.json", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len;
        char *body = read_file(cases[i].in, &len);
        pd_chat_request r;
        pd_api_error e;
        pd_buf out;
        pd_buf_init(&out, 0);
        CHECK(body && pd_openai_parse_chat_request(body, len, &r, &e) == PD_OK);
        pd_result rc = pd_anthropic_write_chat_request(&r, cases[i].out ? "claude-up" : NULL, &out, &e);
        if (cases[i].out) {
            if (rc)
                fprintf(stderr, "  %s: %s\n", cases[i].in, e.message);
            CHECK(rc == PD_OK);
            pd_buf_append(&out, "\n", 1);
            check_golden(cases[i].out, out.data, out.len);
            /* what we send is a valid Anthropic request by our own validator too */
            pd_chat_request r2;
            rc = pd_anthropic_parse_chat_request(out.data, out.len, &r2, &e);
            if (rc)
                fprintf(stderr, "  %s re-read: %s\n", cases[i].out, e.message);
            CHECK(rc == PD_OK);
            pd_chat_request_free(&r2);
        } else {
            CHECK(rc == PD_ERR_INVALID && e.status == 400 && out.len == 0);
            CHECK_STR(e.type, "invalid_request_error");
            CHECK_STR(e.message, cases[i].error);
            CHECK_STR(e.param, cases[i].param);
        }
        pd_chat_request_free(&r);
        pd_buf_free(&out);
        free(body);
    }
}

/* Tool ids outside [a-zA-Z0-9_-] are written with '_' for each such byte (Anthropic's id
   pattern), the same in the tool_use and in its tool_result. */
static void request_writer_tool_ids(void)
{
    const char *oai = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                      "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
                      "\"call.1/\u00e9x\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                      "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
                      "\"call.1/\u00e9x\",\"content\":\"ok\"}]}";
    pd_chat_request r;
    pd_api_error e;
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(pd_openai_parse_chat_request(oai, strlen(oai), &r, &e) == PD_OK);
    CHECK(pd_anthropic_write_chat_request(&r, NULL, &out, &e) == PD_OK);
    CHECK(strstr(out.data, "\"id\":\"call_1___x\"") != NULL);
    CHECK(strstr(out.data, "\"tool_use_id\":\"call_1___x\"") != NULL);
    pd_chat_request_free(&r);
    pd_buf_free(&out);
}

static void request_writer_refusals(void)
{
    static const struct {
        const char *body, *message;
    } cases[] = {
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}",
         "logprobs cannot be honoured"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}",
         "logprobs cannot be honoured"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}",
         "a conversation without a user or assistant message cannot be honoured"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\","
         "\"file\":{\"file_id\":\"file-1\"}}]}]}",
         "file content other than a base64 PDF"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
         "\"custom\",\"custom\":{\"name\":\"sh\"}}]}",
         "a custom tool cannot be honoured"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":"
         "\"required\",\"response_format\":{\"type\":\"json_object\"}}",
         "tool_choice 'required' or a named tool with response_format 'json_object' cannot be "
         "honoured"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"l\","
         "\"schema\":{\"type\":\"array\"}}}}",
         "a response_format json_schema whose top level is not an object cannot be honoured"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pd_chat_request r;
        pd_api_error e;
        pd_buf out;
        pd_buf_init(&out, 0);
        pd_buf_append_str(&out, "keep");
        CHECK(pd_openai_parse_chat_request(cases[i].body, strlen(cases[i].body), &r, &e) == PD_OK);
        CHECK(pd_anthropic_write_chat_request(&r, NULL, &out, &e) == PD_ERR_INVALID);
        CHECK(e.status == 400);
        if (!strstr(e.message, cases[i].message)) {
            fprintf(stderr, "  \"%s\" lacks \"%s\"\n", e.message, cases[i].message);
            CHECK(0);
        }
        CHECK_STR(out.data, "keep");
        pd_chat_request_free(&r);
        pd_buf_free(&out);
    }
    /* the default max_tokens, n = 1, and a capped buffer */
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1}";
    pd_chat_request r;
    pd_api_error e;
    pd_buf out;
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &r, &e) == PD_OK);
    pd_buf_init(&out, 0);
    CHECK(pd_anthropic_write_chat_request(&r, "up", &out, &e) == PD_OK);
    CHECK_STR(out.data, "{\"model\":\"up\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}]}");
    pd_buf_free(&out);
    pd_buf_init(&out, 20);
    CHECK(pd_anthropic_write_chat_request(&r, "up", &out, &e) == PD_ERR_TOO_LARGE);
    CHECK(out.len == 0);
    pd_buf_free(&out);
    pd_chat_request_free(&r);
}

/* ---- responses ---------------------------------------------------------------------- */

static void response_goldens(void)
{
    static const char *names[] = {"resp_text", "resp_tools", "resp_refusal", "resp_server_tool"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], oai[64], exp[64];
        snprintf(in, sizeof in, "%s.json", names[i]);
        snprintf(oai, sizeof oai, "%s.openai.json", names[i]);
        snprintf(exp, sizeof exp, "%s.out.json", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_response r, r2;
        pd_buf out, out2;
        pd_buf_init(&out, 0);
        pd_buf_init(&out2, 0);
        CHECK(body && pd_anthropic_parse_chat_response(body, len, &r) == PD_OK);
        CHECK(pd_openai_write_chat_response(&r, &out) == PD_OK);
        pd_buf_append(&out, "\n", 1);
        check_golden(oai, out.data, out.len);
        pd_buf_reset(&out);
        CHECK(pd_anthropic_write_chat_response(&r, &out) == PD_OK);
        pd_buf_append(&out, "\n", 1);
        check_golden(exp, out.data, out.len);
        CHECK(pd_anthropic_parse_chat_response(out.data, out.len, &r2) == PD_OK);
        CHECK(pd_anthropic_write_chat_response(&r2, &out2) == PD_OK);
        pd_buf_append(&out2, "\n", 1);
        CHECK_STR(out2.data, out.data);
        pd_chat_response_free(&r2);
        pd_chat_response_free(&r);
        pd_buf_free(&out);
        pd_buf_free(&out2);
        free(body);
    }
    static const char *oai[] = {"resp_text", "resp_tools", "resp_llama", "resp_ollama"};
    for (size_t i = 0; i < sizeof oai / sizeof *oai; i++) {
        char in[64], exp[64];
        snprintf(in, sizeof in, "../openai/%s.json", oai[i]);
        snprintf(exp, sizeof exp, "oai_%s.anthropic.json", oai[i]);
        size_t len;
        char *body = read_file(in, &len);
        pd_chat_response r;
        pd_buf out;
        pd_buf_init(&out, 0);
        CHECK(body && pd_openai_parse_chat_response(body, len, &r) == PD_OK);
        CHECK(pd_anthropic_write_chat_response(&r, &out) == PD_OK);
        pd_buf_append(&out, "\n", 1);
        check_golden(exp, out.data, out.len);
        pd_chat_response_free(&r);
        pd_buf_free(&out);
        free(body);
    }
}

static void response_fields(void)
{
    size_t len;
    char *body = read_file("resp_text.json", &len);
    pd_chat_response r;
    CHECK(body && pd_anthropic_parse_chat_response(body, len, &r) == PD_OK);
    /* Anthropic's input_tokens excludes the cache; canonical prompt_tokens includes it */
    CHECK(r.usage.prompt_tokens == 25 + 10 + 1200);
    CHECK(r.usage.cached_tokens == 1200 && r.usage.cache_write_tokens == 10);
    CHECK(r.usage.completion_tokens == 12 && r.usage.total_tokens == PD_CHAT_COUNT_UNKNOWN);
    CHECK(r.choices[0].finish == PD_FINISH_STOP);
    pd_chat_response_free(&r);
    free(body);
    body = read_file("resp_tools.json", &len);
    CHECK(body && pd_anthropic_parse_chat_response(body, len, &r) == PD_OK);
    CHECK_STR(r.choices[0].message.reasoning, "The user wants weather and time.");
    CHECK(r.choices[0].message.n_tool_calls == 2);
    CHECK_STR(r.choices[0].message.tool_calls[0].arguments,
              "{\"city\":\"Paris\",\"units\":{\"temp\":\"C\"},\"days\":1.5}");
    CHECK(r.choices[0].finish == PD_FINISH_TOOL_CALLS && r.usage.reasoning_tokens == 40);
    CHECK(r.usage.cached_tokens == PD_CHAT_COUNT_UNKNOWN && r.usage.prompt_tokens == 390);
    pd_chat_response_free(&r);
    free(body);
    const char *bad[] = {"not json", "[]", "{\"content\":{}}",
                         "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(pd_anthropic_parse_chat_response(bad[i], strlen(bad[i]), &r) == PD_ERR_INVALID);
        CHECK(r.choices == NULL);
    }
    /* finish reasons */
    static const struct {
        const char *reason;
        pd_chat_finish f;
    } m[] = {{"\"end_turn\"", PD_FINISH_STOP},
             {"\"stop_sequence\"", PD_FINISH_STOP},
             {"\"pause_turn\"", PD_FINISH_STOP},
             {"\"max_tokens\"", PD_FINISH_LENGTH},
             {"\"model_context_window_exceeded\"", PD_FINISH_LENGTH},
             {"\"tool_use\"", PD_FINISH_TOOL_CALLS},
             {"\"refusal\"", PD_FINISH_CONTENT_FILTER},
             {"null", PD_FINISH_NONE},
             {"\"new_reason\"", PD_FINISH_UNKNOWN}};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
        char b[200];
        snprintf(b, sizeof b, "{\"content\":[],\"stop_reason\":%s}", m[i].reason);
        CHECK(pd_anthropic_parse_chat_response(b, strlen(b), &r) == PD_OK);
        CHECK(r.choices[0].finish == m[i].f);
        pd_chat_response_free(&r);
    }
}

/* ---- streams ------------------------------------------------------------------------ */

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

/* One line per event, the form of the *.events golden files (ids: the upstream's id/model). */
static void dump_event(pd_buf *b, const pd_chat_event *ev, bool ids)
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
    case PD_EVENT_USAGE: {
        /* without ids (the round-trip form), unknown cache counts read as 0: the Anthropic wire
           always carries them, so what an encoder wrote comes back as 0 */
        long long cached = ev->usage.cached_tokens, written = ev->usage.cache_write_tokens;
        if (!ids) {
            cached = cached < 0 ? 0 : cached;
            written = written < 0 ? 0 : written;
        }
        pd_buf_printf(b,
                      " prompt=%lld completion=%lld total=%lld cached=%lld cache_write=%lld "
                      "reasoning=%lld",
                      (long long)ev->usage.prompt_tokens, (long long)ev->usage.completion_tokens,
                      (long long)ev->usage.total_tokens, cached, written,
                      (long long)ev->usage.reasoning_tokens);
        break;
    }
    case PD_EVENT_ERROR:
        pd_buf_printf(b, " status=%d type=%s code=%s", ev->error_status, ev->error_type,
                      ev->error_code ? ev->error_code : "-");
        dump_text(b, ev->text, ev->text_len);
        break;
    default: dump_text(b, ev->text, ev->text_len); break;
    }
    if (ids && ev->id)
        pd_buf_printf(b, " [%s %s]", ev->id, ev->model ? ev->model : "-");
    pd_buf_append(b, "\n", 1);
}

typedef struct stream_ctx {
    pd_openai_encoder oenc;
    pd_anthropic_encoder aenc;
    pd_buf events, plain, oai, anth;
    bool encode; /* also encode (the first pass) */
} stream_ctx;

static void stream_ctx_init(stream_ctx *c, bool encode)
{
    memset(c, 0, sizeof *c);
    pd_openai_encoder_init(&c->oenc, "chatcmpl-gw1", "gw-model", 1700000000);
    pd_anthropic_encoder_init(&c->aenc, "msg_gw1", "gw-model");
    pd_buf_init(&c->events, 0);
    pd_buf_init(&c->plain, 0);
    pd_buf_init(&c->oai, 0);
    pd_buf_init(&c->anth, 0);
    c->encode = encode;
}

static void stream_ctx_free(stream_ctx *c)
{
    pd_openai_encoder_free(&c->oenc);
    pd_anthropic_encoder_free(&c->aenc);
    pd_buf_free(&c->events);
    pd_buf_free(&c->plain);
    pd_buf_free(&c->oai);
    pd_buf_free(&c->anth);
}

static int on_chat_event(void *ud, const pd_chat_event *ev)
{
    stream_ctx *c = ud;
    dump_event(&c->events, ev, true);
    dump_event(&c->plain, ev, false);
    if (c->encode) {
        CHECK(pd_openai_encode_event(&c->oenc, ev, &c->oai) == PD_OK);
        CHECK(pd_anthropic_encode_event(&c->aenc, ev, &c->anth) == PD_OK);
    }
    return 0;
}

static void stream_goldens(void)
{
    static const char *names[] = {"stream_text", "stream_tools", "stream_thinking",
                                  "stream_tool_only", "stream_error"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], evs[64], oai[64], out[64];
        snprintf(in, sizeof in, "%s.sse", names[i]);
        snprintf(evs, sizeof evs, "%s.events", names[i]);
        snprintf(oai, sizeof oai, "%s.openai.sse", names[i]);
        snprintf(out, sizeof out, "%s.out.sse", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        CHECK(body != NULL);
        if (!body)
            continue;
        bool is_error = strcmp(names[i], "stream_error") == 0;
        stream_ctx c, bytes, again;
        pd_anthropic_decoder d;
        stream_ctx_init(&c, true);
        pd_anthropic_decoder_init(&d, 0);
        CHECK(pd_anthropic_decode(&d, body, len, on_chat_event, &c) == PD_OK);
        CHECK(d.done == !is_error && d.failed == is_error);
        if (d.done) {
            CHECK(pd_openai_encode_done(&c.oai) == PD_OK);
            CHECK(pd_anthropic_encode_end(&c.aenc, &c.anth) == PD_OK);
        }
        pd_buf_append(&c.events, "", 0);
        pd_buf_append(&c.oai, "", 0);
        pd_buf_append(&c.anth, "", 0);
        check_golden(evs, c.events.data, c.events.len);
        check_golden(oai, c.oai.data, c.oai.len);
        check_golden(out, c.anth.data, c.anth.len);
        pd_anthropic_decoder_free(&d);

        /* split anywhere: fed one byte at a time, the same events */
        stream_ctx_init(&bytes, false);
        pd_anthropic_decoder_init(&d, 0);
        for (size_t k = 0; k < len; k++)
            CHECK(pd_anthropic_decode(&d, body + k, 1, on_chat_event, &bytes) == PD_OK);
        pd_buf_append(&bytes.events, "", 0);
        CHECK_STR(bytes.events.data, c.events.data);
        pd_anthropic_decoder_free(&d);

        /* what we wrote for Anthropic clients decodes to the same events (ids aside) */
        stream_ctx_init(&again, false);
        pd_anthropic_decoder_init(&d, 0);
        CHECK(pd_anthropic_decode(&d, c.anth.data, c.anth.len, on_chat_event, &again) == PD_OK);
        CHECK(d.done == !is_error);
        pd_buf_append(&again.plain, "", 0);
        pd_buf_append(&c.plain, "", 0);
        CHECK_STR(again.plain.data, c.plain.data);
        pd_anthropic_decoder_free(&d);

        stream_ctx_free(&c);
        stream_ctx_free(&bytes);
        stream_ctx_free(&again);
        free(body);
    }
}

typedef struct oai_ctx {
    pd_openai_decoder dec;
    pd_anthropic_encoder enc;
    pd_buf out;
    pd_result rc;
} oai_ctx;

static int oai_on_event(void *ud, const pd_chat_event *ev)
{
    oai_ctx *c = ud;
    pd_result rc = pd_anthropic_encode_event(&c->enc, ev, &c->out);
    if (rc)
        c->rc = rc;
    return 0;
}

static int oai_on_sse(void *ud, const pd_sse_event *ev)
{
    oai_ctx *c = ud;
    pd_result rc = pd_openai_decode_chunk(&c->dec, ev->data, ev->data_len, oai_on_event, c);
    if (rc)
        c->rc = rc;
    return 0;
}

/* OpenAI-style upstream streams -> an Anthropic client. */
static void openai_stream_goldens(void)
{
    static const char *names[] = {"stream_text", "stream_tools", "stream_reasoning_n2",
                                  "stream_error", "stream_unreliable_index"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[64], exp[64];
        snprintf(in, sizeof in, "../openai/%s.sse", names[i]);
        snprintf(exp, sizeof exp, "oai_%s.anthropic.sse", names[i]);
        size_t len;
        char *body = read_file(in, &len);
        CHECK(body != NULL);
        if (!body)
            continue;
        oai_ctx c;
        pd_sse_parser p;
        pd_openai_decoder_init(&c.dec);
        pd_anthropic_encoder_init(&c.enc, "msg_gw1", "gw-model");
        pd_buf_init(&c.out, 0);
        c.rc = PD_OK;
        pd_sse_init(&p, 0);
        CHECK(pd_sse_feed(&p, body, len, oai_on_sse, &c) == PD_OK);
        CHECK(c.rc == PD_OK);
        if (c.dec.done)
            CHECK(pd_anthropic_encode_end(&c.enc, &c.out) == PD_OK);
        pd_buf_append(&c.out, "", 0);
        check_golden(exp, c.out.data, c.out.len);
        pd_sse_free(&p);
        pd_anthropic_encoder_free(&c.enc);
        pd_buf_free(&c.out);
        free(body);
    }
}

static int count_events(void *ud, const pd_chat_event *ev)
{
    (void)ev;
    ++*(int *)ud;
    return 0;
}

static int stop_at_first(void *ud, const pd_chat_event *ev)
{
    (void)ev;
    ++*(int *)ud;
    return 1;
}

static void decoder_edges(void)
{
    pd_anthropic_decoder d;
    int n = 0;
    /* a malformed event fails the stream; what follows is ignored */
    pd_anthropic_decoder_init(&d, 0);
    const char *bad = "event: content_block_delta\ndata: {\"type\":\"content_bl\n\n"
                      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    CHECK(pd_anthropic_decode(&d, bad, strlen(bad), count_events, &n) == PD_ERR_INVALID);
    CHECK(d.failed && !d.done && n == 0);
    CHECK(pd_anthropic_decode(&d, bad, strlen(bad), count_events, &n) == PD_OK && n == 0);
    pd_anthropic_decoder_free(&d);
    pd_anthropic_decoder_free(NULL);

    /* an error event whose data is not JSON: the text is the message */
    pd_anthropic_decoder_init(&d, 0);
    stream_ctx c;
    stream_ctx_init(&c, false);
    const char *err = "event: error\ndata: upstream exploded\n\n";
    CHECK(pd_anthropic_decode(&d, err, strlen(err), on_chat_event, &c) == PD_OK);
    pd_buf_append(&c.events, "", 0);
    CHECK_STR(c.events.data, "error status=500 type=api_error code=- \"upstream exploded\"\n");
    CHECK(d.failed);
    pd_anthropic_decoder_free(&d);
    stream_ctx_free(&c);

    /* the callback stops the decoder */
    pd_anthropic_decoder_init(&d, 0);
    n = 0;
    const char *two = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
                      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    CHECK(pd_anthropic_decode(&d, two, strlen(two), stop_at_first, &n) == PD_ERR_CLOSED);
    CHECK(n == 1 && !d.done);
    pd_anthropic_decoder_free(&d);

    /* no message_delta: the finish is a stop, no usage; data after message_stop is ignored */
    pd_anthropic_decoder_init(&d, 0);
    stream_ctx_init(&c, false);
    const char *min = "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\"}}\n\n"
                      "data: {\"type\":\"message_stop\"}\n\n"
                      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m2\"}}\n\n";
    CHECK(pd_anthropic_decode(&d, min, strlen(min), on_chat_event, &c) == PD_OK && d.done);
    pd_buf_append(&c.events, "", 0);
    CHECK_STR(c.events.data, "role choice=0 assistant [m1 -]\nfinish choice=0 stop [m1 -]\n");
    pd_anthropic_decoder_free(&d);
    stream_ctx_free(&c);

    /* an event over the cap is malformed */
    pd_anthropic_decoder_init(&d, 64);
    n = 0;
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, "data: ", 6);
    CHECK(pd_anthropic_decode(&d, big, sizeof big, count_events, &n) == PD_ERR_INVALID);
    CHECK(d.failed && n == 0);
    pd_anthropic_decoder_free(&d);
}

static pd_chat_event ev_of(pd_chat_event_kind kind, const char *text)
{
    pd_chat_event ev;
    pd_chat_event_init(&ev, kind);
    ev.text = text;
    ev.text_len = text ? strlen(text) : 0;
    return ev;
}

static void encoder_edges(void)
{
    pd_anthropic_encoder e;
    pd_buf out;
    pd_buf_init(&out, 0);

    /* an empty stream still ends as a valid message */
    pd_anthropic_encoder_init(&e, "msg_\"q\"", "m");
    CHECK(pd_anthropic_encode_end(&e, &out) == PD_OK);
    CHECK_STR(out.data,
              "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
              "\"msg_\\\"q\\\"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
              "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
              "\"input_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":0}}}\n\n"
              "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
              "\"end_turn\",\"stop_sequence\":null,\"stop_details\":null},\"usage\":{"
              "\"input_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":0}}\n\n"
              "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    pd_buf_reset(&out);
    CHECK(pd_anthropic_encode_end(&e, &out) == PD_OK && out.len == 0); /* once */
    pd_anthropic_encoder_free(&e);
    pd_anthropic_encoder_free(NULL);

    /* interleaved tool arguments cannot be expressed: refused, nothing written */
    pd_anthropic_encoder_init(&e, "msg_1", "m");
    pd_chat_event t0 = ev_of(PD_EVENT_TOOL_START, NULL), t1 = t0;
    t0.tool_name = "a";
    t1.tool_name = "b";
    t1.tool_index = 1;
    pd_chat_event args0 = ev_of(PD_EVENT_TOOL_ARGS, "{}");
    CHECK(pd_anthropic_encode_event(&e, &t0, &out) == PD_OK);
    CHECK(strstr(out.data, "\"id\":\"toolu_msg_1_0\"") != NULL); /* an id is made up */
    CHECK(pd_anthropic_encode_event(&e, &t1, &out) == PD_OK);
    size_t before = out.len;
    CHECK(pd_anthropic_encode_event(&e, &args0, &out) == PD_ERR_INVALID);
    CHECK(out.len == before);
    /* an error ends it; nothing is written afterwards */
    pd_api_error err;
    pd_openai_error_set(&err, 502, NULL, "upstream_timeout", NULL, "upstream went quiet");
    pd_buf_reset(&out);
    CHECK(pd_anthropic_encode_error(&e, &err, &out) == PD_OK);
    CHECK_STR(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                        "\"message\":\"upstream went quiet\"}}\n\n");
    pd_buf_reset(&out);
    pd_chat_event text = ev_of(PD_EVENT_TEXT, "late");
    CHECK(pd_anthropic_encode_event(&e, &text, &out) == PD_OK);
    CHECK(pd_anthropic_encode_end(&e, &out) == PD_OK);
    CHECK(out.len == 0);
    pd_anthropic_encoder_free(&e);

    /* a capped buffer: TOO_LARGE, nothing written, state unchanged */
    pd_anthropic_encoder_init(&e, "msg_1", "m");
    pd_buf_free(&out);
    pd_buf_init(&out, 40);
    pd_chat_event hello = ev_of(PD_EVENT_TEXT, "hello");
    CHECK(pd_anthropic_encode_event(&e, &hello, &out) == PD_ERR_TOO_LARGE);
    CHECK(out.len == 0 && !e.started && e.next_block == 0);
    pd_buf_free(&out);
    pd_buf_init(&out, 0);
    CHECK(pd_anthropic_encode_event(&e, &hello, &out) == PD_OK);
    CHECK(e.started && e.next_block == 1);
    /* other choices and empty fragments write nothing */
    pd_buf_reset(&out);
    pd_chat_event other = ev_of(PD_EVENT_TEXT, "x"), empty = ev_of(PD_EVENT_TEXT, "");
    other.choice = 1;
    CHECK(pd_anthropic_encode_event(&e, &other, &out) == PD_OK);
    CHECK(pd_anthropic_encode_event(&e, &empty, &out) == PD_OK);
    CHECK(out.len == 0);
    /* a refusal finish and a cut character */
    pd_chat_event fin = ev_of(PD_EVENT_FINISH, NULL), cut = ev_of(PD_EVENT_REFUSAL, "no\xe2\x82");
    fin.finish = PD_FINISH_CONTENT_FILTER;
    CHECK(pd_anthropic_encode_event(&e, &cut, &out) == PD_OK);
    CHECK(pd_anthropic_encode_event(&e, &fin, &out) == PD_OK);
    CHECK(pd_anthropic_encode_end(&e, &out) == PD_OK);
    CHECK(strstr(out.data, "\"text\":\"no\\ufffd\\ufffd\"") != NULL);
    CHECK(strstr(out.data, "\"stop_reason\":\"refusal\"") != NULL);
    pd_anthropic_encoder_free(&e);
    pd_buf_free(&out);
}

/* ---- errors ------------------------------------------------------------------------- */

static void error_bodies(void)
{
    static const struct {
        int status;
        const char *type;
    } table[] = {{400, "invalid_request_error"}, {401, "authentication_error"},
                 {402, "billing_error"},         {403, "permission_error"},
                 {404, "not_found_error"},       {413, "request_too_large"},
                 {429, "rate_limit_error"},      {500, "api_error"},
                 {504, "timeout_error"},         {529, "overloaded_error"},
                 {503, "overloaded_error"},      {422, "invalid_request_error"},
                 {502, "api_error"}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        CHECK_STR(pd_anthropic_error_type(table[i].status), table[i].type);
        if (table[i].status != 503 && table[i].status != 422 && table[i].status != 502)
            CHECK(pd_anthropic_error_status(table[i].type) == table[i].status);
    }
    CHECK(pd_anthropic_error_status("server_error") == 0);
    CHECK(pd_anthropic_error_status(NULL) == 0);

    pd_api_error e;
    pd_buf out;
    pd_buf_init(&out, 0);
    /* OpenAI's type for a 404 is not Anthropic's: the status decides */
    pd_openai_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                        "The model `x` does not \"exist\"");
    CHECK(pd_anthropic_error_body(&e, &out) == PD_OK);
    CHECK_STR(out.data, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":"
                        "\"The model `x` does not \\\"exist\\\"\"}}");
    pd_buf_reset(&out);
    pd_openai_error_set(&e, 400, NULL, NULL, "messages.0", "messages.0: bad");
    CHECK(pd_anthropic_error_body(&e, &out) == PD_OK);
    CHECK_STR(out.data, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                        "\"message\":\"messages.0: bad\"}}");
    pd_buf_reset(&out);
    pd_openai_error_set(&e, 502, "api_error", NULL, NULL, "x"); /* 502: no entry, kept */
    CHECK(pd_anthropic_error_body(&e, &out) == PD_OK);
    CHECK(strstr(out.data, "\"type\":\"api_error\"") != NULL);
    pd_buf_reset(&out);
    pd_openai_error_set(&e, 429, "insufficient_quota", "insufficient_quota", NULL, "quota");
    CHECK(pd_anthropic_error_body(&e, &out) == PD_OK);
    CHECK(strstr(out.data, "\"type\":\"rate_limit_error\"") != NULL);
    pd_buf_free(&out);

    const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                       "\"Overloaded\"},\"request_id\":\"req_1\"}";
    CHECK(pd_anthropic_parse_error_body(body, strlen(body), 529, &e) == PD_OK);
    CHECK(e.status == 529);
    CHECK_STR(e.type, "overloaded_error");
    CHECK_STR(e.message, "Overloaded");
    CHECK(pd_anthropic_parse_error_body(body, strlen(body), 200, &e) == PD_OK);
    CHECK(e.status == 529); /* from the type when the HTTP status says nothing */
    CHECK(pd_anthropic_parse_error_body("<html>bad gateway</html>", 24, 502, &e) == PD_ERR_INVALID);
    CHECK(e.status == 502);
    CHECK_STR(e.message, "<html>bad gateway</html>");
}

/* ---- provider and dialect ----------------------------------------------------------- */

static const char *header_of(const struct curl_slist *h, const char *prefix)
{
    for (; h; h = h->next)
        if (strncmp(h->data, prefix, strlen(prefix)) == 0)
            return h->data;
    return NULL;
}

static void provider_chat_request(void)
{
    pd_provider_cfg p = {.name = "anth", .kind = PD_KIND_ANTHROPIC,
                         .base_url = "http://127.0.0.1:9", .api_key = "k-1"};
    pd_model_cfg m = {.name = "claude", .upstream_model = "claude-up", .provider = &p};
    const pd_provider_ops *ops = &pd_provider_anthropic;
    CHECK(ops->native == &pd_dialect_anthropic);
    /* an OpenAI client: translated (raw cleared, as the relay does off the pass-through path) */
    const char *oai = "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                      "{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}";
    pd_chat_request r;
    pd_api_error e;
    CHECK(pd_openai_parse_chat_request(oai, strlen(oai), &r, &e) == PD_OK);
    r.raw = (pd_chat_json){0}; /* in the arena: cleared, not freed (canon/chat.h) */
    pd_transfer_req t = {0};
    CHECK(ops->chat_request(&p, &m, &r, &t, &e) == PD_OK);
    CHECK_STR(t.url, "http://127.0.0.1:9/v1/messages");
    CHECK_STR(header_of(t.headers, "x-api-key"), "x-api-key: k-1");
    CHECK_STR(header_of(t.headers, "anthropic-version"), "anthropic-version: 2023-06-01");
    CHECK_STR(header_of(t.headers, "Accept"), "Accept: text/event-stream");
    CHECK(header_of(t.headers, "Authorization") == NULL);
    CHECK(t.body_len == strlen(t.body));
    CHECK_STR(t.body, "{\"model\":\"claude-up\",\"max_tokens\":4096,\"system\":\"s\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}");
    free(t.url);
    free(t.body);
    curl_slist_free_all(t.headers);
    /* what Anthropic cannot honour is a 400 before anything is sent */
    r.sampling.has_n = true;
    r.sampling.n = 2;
    memset(&t, 0, sizeof t);
    CHECK(ops->chat_request(&p, &m, &r, &t, &e) == PD_ERR_INVALID);
    CHECK(e.status == 400 && t.url == NULL && t.body == NULL);
    pd_chat_request_free(&r);

    /* an Anthropic client: its own body, model replaced, numbers kept short */
    const char *anth = "{\"model\":\"claude\",\"max_tokens\":5,\"temperature\":0.7,\"messages\":"
                       "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\","
                       "\"cache_control\":{\"type\":\"ephemeral\"}}]}],\"future\":[1]}";
    CHECK(pd_anthropic_parse_chat_request(anth, strlen(anth), &r, &e) == PD_OK);
    p.api_key = NULL;
    memset(&t, 0, sizeof t);
    CHECK(ops->chat_request(&p, &m, &r, &t, &e) == PD_OK);
    CHECK_STR(t.body, "{\"model\":\"claude-up\",\"max_tokens\":5,\"temperature\":0.7,\"messages\":"
                      "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\","
                      "\"cache_control\":{\"type\":\"ephemeral\"}}]}],\"future\":[1]}");
    CHECK(header_of(t.headers, "x-api-key") == NULL);
    CHECK_STR(header_of(t.headers, "Accept"), "Accept: application/json");
    free(t.url);
    free(t.body);
    curl_slist_free_all(t.headers);
    pd_chat_request_free(&r);
}

static pd_stream_step pass(const char *name, const char *data, pd_buf *out, pd_chat_usage *u,
                           pd_result *rc)
{
    pd_sse_event ev = {name, strlen(name), data, strlen(data)};
    pd_stream_step step = PD_STEP_CONTINUE;
    pd_chat_request req;
    pd_chat_request_init(&req);
    *rc = pd_provider_anthropic.pass_event(&req, &ev, out, &step, u);
    return step;
}

static void provider_pass_through(void)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    const char *start = "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{"
                        "\"input_tokens\":20,\"cache_creation_input_tokens\":5,"
                        "\"cache_read_input_tokens\":100,\"output_tokens\":1}}}";
    CHECK(pass("message_start", start, &out, &u, &rc) == PD_STEP_CONTINUE && rc == PD_OK);
    char want[512];
    snprintf(want, sizeof want, "event: message_start\ndata: %s\n\n", start);
    CHECK_STR(out.data, want);
    CHECK(u.prompt_tokens == 125 && u.cached_tokens == 100 && u.cache_write_tokens == 5);
    CHECK(u.completion_tokens == 1);
    pd_buf_reset(&out);
    CHECK(pass("ping", "{\"type\": \"ping\"}", &out, &u, &rc) == PD_STEP_CONTINUE);
    CHECK_STR(out.data, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    pd_buf_reset(&out);
    /* message_delta counts are totals: assigned; the uncached input is kept */
    CHECK(pass("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                                "\"usage\":{\"output_tokens\":42,\"cache_read_input_tokens\":90}}",
               &out, &u, &rc) == PD_STEP_CONTINUE);
    CHECK(u.prompt_tokens == 115 && u.cached_tokens == 90 && u.completion_tokens == 42);
    pd_buf_reset(&out);
    CHECK(pass("", "{\"type\":\"message_stop\"}", &out, &u, &rc) == PD_STEP_DONE && rc == PD_OK);
    CHECK_STR(out.data, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    pd_buf_reset(&out);
    CHECK(pass("content_block_delta", "{\"type\":\"content_bl", &out, &u, &rc) == PD_STEP_CONTINUE);
    CHECK(rc == PD_ERR_INVALID);
    pd_buf_reset(&out);
    const char *err = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    CHECK(pass("error", err, &out, &u, &rc) == PD_STEP_ERROR && rc == PD_OK);
    snprintf(want, sizeof want, "event: error\ndata: %s\n\n", err);
    CHECK_STR(out.data, want);
    pd_buf_reset(&out);
    CHECK(pass("error", "boom", &out, &u, &rc) == PD_STEP_ERROR && rc == PD_OK);
    CHECK_STR(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                        "\"message\":\"boom\"}}\n\n");
    pd_buf_reset(&out);

    /* whole bodies */
    pd_chat_usage_init(&u);
    size_t len;
    char *body = read_file("resp_text.json", &len);
    CHECK(pd_provider_anthropic.pass_response(body, len, &out, &u) == PD_OK);
    CHECK(out.len == len && memcmp(out.data, body, len) == 0);
    CHECK(u.prompt_tokens == 1235 && u.completion_tokens == 12);
    free(body);
    pd_buf_reset(&out);
    CHECK(pd_provider_anthropic.pass_response("nope", 4, &out, &u) == PD_ERR_INVALID);
    /* errors: Anthropic's shape passes untouched, anything else is made one */
    pd_buf_reset(&out);
    pd_provider_anthropic.pass_error(529, err, strlen(err), &out);
    CHECK_STR(out.data, err);
    pd_buf_reset(&out);
    pd_provider_anthropic.pass_error(502, "<html>502</html>", 16, &out);
    CHECK_STR(out.data, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                        "\"<html>502</html>\"}}");
    pd_buf_reset(&out);
    const char *oai_err = "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\"}}";
    pd_provider_anthropic.pass_error(429, oai_err, strlen(oai_err), &out);
    CHECK_STR(out.data, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                        "\"slow down\"}}");
    pd_api_error e;
    const char *auth = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                       "\"message\":\"invalid x-api-key\"}}";
    pd_provider_anthropic.parse_error(401, auth, strlen(auth), &e);
    CHECK(e.status == 401);
    CHECK_STR(e.type, "authentication_error");
    CHECK_STR(e.message, "invalid x-api-key");
    pd_buf_free(&out);
}

static int collect(void *ud, const pd_chat_event *ev)
{
    dump_event(ud, ev, false);
    return 0;
}

/* Appends TEXT fragments; any tool event or a finish other than stop fails. */
static int collect_text(void *ud, const pd_chat_event *ev)
{
    if (ev->kind == PD_EVENT_TEXT)
        pd_buf_append(ud, ev->text, ev->text_len);
    CHECK(ev->kind != PD_EVENT_TOOL_START && ev->kind != PD_EVENT_TOOL_ARGS);
    CHECK(ev->kind != PD_EVENT_FINISH || ev->finish == PD_FINISH_STOP);
    return 0;
}

/* response_format json_* on an Anthropic upstream: a forced tool whose input is the answer. */
static void json_format(void)
{
    size_t len;
    char *body = read_file("oai_json_schema.json", &len);
    pd_chat_request req;
    pd_api_error e;
    char name[PD_ANTHROPIC_TOOL_NAME_MAX + 1];
    CHECK(body && pd_openai_parse_chat_request(body, len, &req, &e) == PD_OK);
    free(body);
    /* the history already calls a tool json_response: the forced one must not be mistaken */
    CHECK(pd_anthropic_json_tool(&req, name));
    CHECK_STR(name, "json_response_2");

    /* whole answer: the tool's input is the content, finish stop, no tool call */
    body = read_file("resp_json.json", &len);
    pd_chat_response r;
    pd_buf out, text;
    pd_buf_init(&out, 0);
    pd_buf_init(&text, 0);
    CHECK(body && pd_anthropic_parse_json_response(body, len, name, &r) == PD_OK);
    CHECK(r.choices[0].finish == PD_FINISH_STOP && r.choices[0].message.n_tool_calls == 0);
    CHECK(r.choices[0].message.n_parts == 1);
    CHECK(pd_openai_write_chat_response(&r, &out) == PD_OK);
    pd_buf_append(&out, "\n", 1);
    check_golden("resp_json.openai.json", out.data, out.len);
    char *whole = pd_xstrdup(r.choices[0].message.parts[0].text);
    pd_chat_response_free(&r);
    /* without the name it is an ordinary tool call */
    CHECK(pd_anthropic_parse_chat_response(body, len, &r) == PD_OK);
    CHECK(r.choices[0].finish == PD_FINISH_TOOL_CALLS && r.choices[0].message.n_tool_calls == 1);
    pd_chat_response_free(&r);
    free(body);

    /* stream: the same JSON as text deltas, no tool_start, finish stop */
    body = read_file("stream_json.sse", &len);
    stream_ctx c;
    pd_anthropic_decoder d;
    stream_ctx_init(&c, true);
    pd_anthropic_decoder_init(&d, 0);
    pd_anthropic_decoder_set_json_tool(&d, name);
    CHECK(body && pd_anthropic_decode(&d, body, len, on_chat_event, &c) == PD_OK);
    CHECK(d.done);
    CHECK(pd_openai_encode_done(&c.oai) == PD_OK);
    pd_buf_append(&c.events, "", 0);
    pd_buf_append(&c.oai, "", 0);
    check_golden("stream_json.events", c.events.data, c.events.len);
    check_golden("stream_json.openai.sse", c.oai.data, c.oai.len);
    CHECK(strstr(c.events.data, "tool_start") == NULL);
    pd_anthropic_decoder_free(&d);
    stream_ctx_free(&c);
    /* the accumulated text deltas equal the whole answer's content */
    pd_anthropic_decoder_init(&d, 0);
    pd_anthropic_decoder_set_json_tool(&d, name);
    CHECK(pd_anthropic_decode(&d, body, len, collect_text, &text) == PD_OK);
    pd_buf_append(&text, "", 0);
    CHECK_STR(text.data, whole);
    pd_anthropic_decoder_free(&d);
    free(body);
    free(whole);
    pd_buf_free(&text);
    pd_buf_free(&out);
    pd_chat_request_free(&req);
}

/* The provider's decoder and the dialect's encoder, through their function tables. */
static void tables(void)
{
    const pd_provider_ops *ops = &pd_provider_anthropic;
    pd_chat_request plain;
    pd_chat_request_init(&plain);
    void *dec = ops->decoder_new(&plain);
    pd_buf evs;
    pd_buf_init(&evs, 0);
    size_t len;
    char *body = read_file("stream_tools.sse", &len);
    CHECK(body && ops->decode(dec, body, len / 2, collect, &evs) == PD_OK);
    CHECK(!ops->decoder_done(dec));
    CHECK(ops->decode(dec, body + len / 2, len - len / 2, collect, &evs) == PD_OK);
    CHECK(ops->decoder_done(dec));
    CHECK(strstr(evs.data, "tool_start choice=0 index=1 id=toolu_10 name=get_time") != NULL);
    ops->decoder_free(dec);
    free(body);
    pd_buf_free(&evs);

    body = read_file("resp_tools.json", &len);
    pd_chat_response r;
    CHECK(body && ops->parse_response(&plain, body, len, &r) == PD_OK);
    pd_buf out;
    pd_buf_init(&out, 0);
    const pd_dialect *d = &pd_dialect_anthropic;
    CHECK_STR(d->name, "anthropic");
    CHECK(d->write_response(&r, &out) == PD_OK);
    CHECK(strstr(out.data, "\"stop_reason\":\"tool_use\"") != NULL);
    pd_chat_response_free(&r);
    free(body);

    pd_chat_request req;
    pd_chat_request_init(&req);
    void *enc = d->encoder_new(&req, "req-1", "claude");
    pd_chat_event ev = ev_of(PD_EVENT_TEXT, "hi");
    pd_buf_reset(&out);
    CHECK(d->encode(enc, &ev, &out) == PD_OK);
    CHECK(d->encode_end(enc, &out) == PD_OK);
    CHECK(strstr(out.data, "\"id\":\"req-1\"") != NULL && strstr(out.data, "message_stop") != NULL);
    d->encoder_free(enc);
    enc = d->encoder_new(&req, "req-2", "claude");
    pd_api_error e;
    pd_openai_error_set(&e, 529, "overloaded_error", NULL, NULL, "Overloaded");
    pd_buf_reset(&out);
    CHECK(d->encode_error(enc, &e, &out) == PD_OK);
    CHECK_STR(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                        "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    d->encoder_free(enc);
    pd_buf_reset(&out);
    CHECK(d->error_body(&e, &out) == PD_OK);
    CHECK_STR(out.data, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                        "\"Overloaded\"}}");
    pd_buf_free(&out);
}

int main(void)
{
    TEST_RUN(validation_errors);
    TEST_RUN(accepted_edge_cases);
    TEST_RUN(depth_is_bounded);
    TEST_RUN(canonical_fields);
    TEST_RUN(request_goldens);
    TEST_RUN(openai_request_goldens);
    TEST_RUN(request_writer_refusals);
    TEST_RUN(request_writer_tool_ids);
    TEST_RUN(response_goldens);
    TEST_RUN(response_fields);
    TEST_RUN(stream_goldens);
    TEST_RUN(json_format);
    TEST_RUN(openai_stream_goldens);
    TEST_RUN(decoder_edges);
    TEST_RUN(encoder_edges);
    TEST_RUN(error_bodies);
    TEST_RUN(provider_chat_request);
    TEST_RUN(provider_pass_through);
    TEST_RUN(tables);
    return TEST_DONE();
}
