#include "canon/chat.h"
#include "canon/embed.h"
#include "proto/embed.h"
#include "proto/openai.h"
#include "test.h"

#include <float.h>
#include <jansson.h>
#include <stdlib.h>

/* Golden files live in tests/golden/embed/ (run from the repository root, as `make unit`
   does). With PD_GOLDEN_UPDATE=1 in the environment, missing or different expected files are
   rewritten instead of compared: review the diff before committing them. */
#define GOLDEN_DIR "tests/golden/embed/"
#include "golden.h"

/* ---- request validation ------------------------------------------------------------- */

static void expect_invalid(const char *body, const char *param, const char *message)
{
    pd_embed_request r;
    pd_api_error e;
    pd_result rc = pd_embed_parse_openai_request(body, strlen(body), &r, &e);
    CHECK(rc == PD_ERR_INVALID);
    CHECK(e.status == 400);
    CHECK_STR(e.type, "invalid_request_error");
    CHECK_STR(e.param, param);
    if (!strstr(e.message, message)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\" (body %s)\n", e.message, message, body);
        CHECK(0);
    }
    CHECK(r.raw == NULL && r.inputs == NULL && r.model == NULL && r.n_inputs == 0);
    pd_embed_request_free(&r);
}

static void validation_errors(void)
{
    expect_invalid("{\"model\":", "", "body is not valid JSON: ");
    expect_invalid("[]", "", "body must be a JSON object, not an array");
    expect_invalid("{\"input\":\"x\"}", "model", "Missing required parameter: 'model'.");
    expect_invalid("{\"model\":7,\"input\":\"x\"}", "model",
                   "Invalid type for 'model': expected a string, but got an integer instead.");
    expect_invalid("{\"model\":\"m\"}", "input", "Missing required parameter: 'input'.");
    expect_invalid("{\"model\":\"m\",\"input\":null}", "input", "Missing required parameter");
    expect_invalid("{\"model\":\"m\",\"input\":\"\"}", "input", "must not be empty");
    expect_invalid("{\"model\":\"m\",\"input\":[]}", "input", "non-empty array");
    expect_invalid("{\"model\":\"m\",\"input\":{}}", "input",
                   "expected a string or an array of strings, but got an object instead");
    expect_invalid("{\"model\":\"m\",\"input\":[\"a\",\"\"]}", "input[1]", "must not be empty");
    expect_invalid("{\"model\":\"m\",\"input\":[\"a\",true]}", "input[1]",
                   "Invalid type for 'input[1]': expected a string, but got a boolean instead.");
    expect_invalid("{\"model\":\"m\",\"input\":[1212,318]}", "input", "token-id inputs");
    expect_invalid("{\"model\":\"m\",\"input\":[[1212,318],[1]]}", "input", "token-id inputs");
    expect_invalid("{\"model\":\"m\",\"input\":[\"a\\u0000b\"]}", "", "body is not valid JSON");
    expect_invalid("{\"model\":\"m\",\"input\":\"x\",\"dimensions\":0}", "dimensions",
                   "between 1 and 65536, but got 0");
    expect_invalid("{\"model\":\"m\",\"input\":\"x\",\"dimensions\":1.5}", "dimensions",
                   "expected an integer, but got a decimal");
    expect_invalid("{\"model\":\"m\",\"input\":\"x\",\"encoding_format\":\"int8\"}",
                   "encoding_format",
                   "Invalid value: 'int8'. Supported values are: 'float' and 'base64'.");
    expect_invalid("{\"model\":\"m\",\"input\":\"x\",\"encoding_format\":1}", "encoding_format",
                   "expected a string");
    expect_invalid("{\"model\":\"m\",\"input\":\"x\",\"user\":[]}", "user", "expected a string");
    expect_invalid("{\"model\":\"m\",\"input\":\"x\",\"input_type\":5}", "input_type",
                   "expected a string");
    /* more inputs than allowed */
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_append_str(&b, "{\"model\":\"m\",\"input\":[");
    for (int i = 0; i <= PD_EMBED_MAX_INPUTS; i++)
        pd_buf_append_str(&b, i ? ",\"x\"" : "\"x\"");
    pd_buf_append_str(&b, "]}");
    expect_invalid(b.data, "input", "maximum length 2048, but got an array with length 2049");
    pd_buf_free(&b);
}

static void valid_requests(void)
{
    size_t len;
    char *body = read_file("req_array.json", &len);
    pd_embed_request r;
    pd_api_error e;
    CHECK(body && pd_embed_parse_openai_request(body, len, &r, &e) == PD_OK);
    CHECK_STR(r.model, "text-embedding-3-small");
    CHECK(r.n_inputs == 2 && !r.input_is_string);
    CHECK_STR(r.inputs[1], "and the waiter\xe2\x80\xa6 \"friendly\"");
    CHECK(r.has_dimensions && r.dimensions == 256 && r.encoding == PD_EMBED_BASE64);
    CHECK_STR(r.user, "user-1");
    CHECK_STR(r.input_type, "search_query");
    CHECK(json_is_object(json_object_get(r.raw, "extra_field")));
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(pd_embed_write_openai_request(&r, "real-name", &out) == PD_OK);
    pd_buf_append(&out, "\n", 1);
    check_golden("req_array.out.json", out.data, out.len);
    pd_embed_request_free(&r);
    free(body);

    body = read_file("req_string.json", &len);
    CHECK(body && pd_embed_parse_openai_request(body, len, &r, &e) == PD_OK);
    CHECK(r.n_inputs == 1 && r.input_is_string && !r.has_dimensions);
    CHECK(r.encoding == PD_EMBED_FLOAT && r.user == NULL && r.input_type == NULL);
    pd_buf_reset(&out);
    CHECK(pd_embed_write_openai_request(&r, NULL, &out) == PD_OK);
    pd_buf_append(&out, "\n", 1);
    check_golden("req_string.out.json", out.data, out.len);
    pd_buf_free(&out);
    pd_embed_request_free(&r);
    pd_embed_request_free(NULL);
    free(body);
}

/* ---- response writing --------------------------------------------------------------- */

static const float vec0[] = {0.0023064255f, -0.009327292f, 1e-8f};
static const float vec1[] = {1.0f, -2.0f};

static void fill_response(pd_embed_response *r)
{
    pd_embed_response_init(r);
    r->model = pd_xstrdup("upstream-name");
    r->n_vectors = 3;
    r->vectors = pd_xcalloc(3, sizeof *r->vectors);
    r->vectors[0].values = pd_xmalloc(sizeof vec0);
    memcpy(r->vectors[0].values, vec0, sizeof vec0);
    r->vectors[0].n = 3;
    r->vectors[1].values = pd_xmalloc(sizeof vec1);
    memcpy(r->vectors[1].values, vec1, sizeof vec1);
    r->vectors[1].n = 2;
    r->vectors[2].values = pd_xmalloc(2 * sizeof(float));
    r->vectors[2].values[0] = FLT_MAX; /* 8 significant digits */
    r->vectors[2].values[1] = FLT_MIN;
    r->vectors[2].n = 2;
    r->prompt_tokens = 9;
}

static void response_writing(void)
{
    pd_embed_response r;
    fill_response(&r);
    pd_buf out;
    pd_buf_init(&out, 0);
    CHECK(pd_embed_write_openai_response(&r, PD_EMBED_FLOAT, "client-name", &out) == PD_OK);
    pd_buf_append(&out, "\n", 1);
    check_golden("resp_float.out.json", out.data, out.len);

    /* what we wrote reads back to the very same floats */
    pd_embed_response back;
    CHECK(pd_embed_parse_openai_response(out.data, out.len, &back) == PD_OK);
    CHECK(back.n_vectors == 3 && back.prompt_tokens == 9 && back.total_tokens == 9);
    for (size_t i = 0; i < 3 && back.n_vectors == 3; i++) {
        CHECK(back.vectors[i].n == r.vectors[i].n);
        CHECK(memcmp(back.vectors[i].values, r.vectors[i].values, r.vectors[i].n * sizeof(float)) ==
              0);
    }
    pd_embed_response_free(&back);

    pd_buf_reset(&out);
    CHECK(pd_embed_write_openai_response(&r, PD_EMBED_BASE64, NULL, &out) == PD_OK);
    pd_buf_append(&out, "\n", 1);
    check_golden("resp_base64.out.json", out.data, out.len);
    CHECK(strstr(out.data, "\"ZicXO4DRGLx3zCsy\"") != NULL); /* computed independently */
    CHECK(strstr(out.data, "\"AACAPwAAAMA=\"") != NULL);
    CHECK(pd_embed_parse_openai_response(out.data, out.len, &back) == PD_OK);
    for (size_t i = 0; i < 3 && back.n_vectors == 3; i++)
        CHECK(memcmp(back.vectors[i].values, r.vectors[i].values, r.vectors[i].n * sizeof(float)) ==
              0);
    pd_embed_response_free(&back);

    /* unknown counts are written as 0; a cap that is too small leaves the buffer alone */
    r.prompt_tokens = PD_EMBED_COUNT_UNKNOWN;
    pd_buf small;
    pd_buf_init(&small, 40);
    pd_buf_append_str(&small, "keep");
    CHECK(pd_embed_write_openai_response(&r, PD_EMBED_FLOAT, NULL, &small) == PD_ERR_TOO_LARGE);
    CHECK_STR(small.data, "keep");
    pd_buf_free(&small);
    pd_embed_response_free(&r);
    pd_embed_response_init(&r);
    pd_buf_reset(&out);
    CHECK(pd_embed_write_openai_response(&r, PD_EMBED_FLOAT, NULL, &out) == PD_OK);
    CHECK_STR(out.data, "{\"object\":\"list\",\"data\":[],\"model\":\"\",\"usage\":"
                        "{\"prompt_tokens\":0,\"total_tokens\":0}}");
    pd_buf_free(&out);
}

/* ---- upstream responses ------------------------------------------------------------- */

static void upstream_responses(void)
{
    size_t len;
    char *body = read_file("openai_resp.json", &len);
    pd_embed_response r;
    CHECK(body && pd_embed_parse_openai_response(body, len, &r) == PD_OK);
    CHECK(r.n_vectors == 2);
    CHECK(r.vectors[0].values[0] == 0.0023064255f); /* placed by index, not position */
    CHECK(r.vectors[1].values[2] == 0.021575928f);
    CHECK(r.prompt_tokens == 8 && r.total_tokens == 8);
    CHECK_STR(r.model, "text-embedding-3-small");
    pd_embed_response_free(&r);
    free(body);

    body = read_file("openai_resp_base64.json", &len);
    CHECK(body && pd_embed_parse_openai_response(body, len, &r) == PD_OK);
    CHECK(r.n_vectors == 2 && r.vectors[0].n == 3 && r.vectors[1].n == 2);
    CHECK(memcmp(r.vectors[0].values, vec0, sizeof vec0) == 0);
    CHECK(memcmp(r.vectors[1].values, vec1, sizeof vec1) == 0); /* unpadded base64 */
    CHECK(r.prompt_tokens == 3 && r.total_tokens == 4);
    pd_embed_response_free(&r);
    free(body);

    const char *bad[] = {
        "nope",
        "{\"object\":\"list\"}",
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,\"embedding\":[2]}]}",
        "{\"data\":[{\"index\":2,\"embedding\":[1]}]}",
        "{\"data\":[{\"index\":-1,\"embedding\":[1]}]}",
        "{\"data\":[{\"embedding\":\"AAA\"}]}",  /* 2 bytes: not whole floats */
        "{\"data\":[{\"embedding\":\"AA!A\"}]}", /* not base64 */
        "{\"data\":[{\"embedding\":\"A\"}]}",    /* impossible length */
        "{\"data\":[{\"embedding\":[1,\"2\"]}]}",
        "{\"data\":[{\"embedding\":null}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(pd_embed_parse_openai_response(bad[i], strlen(bad[i]), &r) == PD_ERR_INVALID);
        CHECK(r.vectors == NULL && r.n_vectors == 0 && r.model == NULL);
    }
    const char *empty = "{\"data\":[]}";
    CHECK(pd_embed_parse_openai_response(empty, strlen(empty), &r) == PD_OK);
    CHECK(r.n_vectors == 0 && r.prompt_tokens == PD_EMBED_COUNT_UNKNOWN);
    pd_embed_response_free(&r);
}

int main(void)
{
    TEST_RUN(validation_errors);
    TEST_RUN(valid_requests);
    TEST_RUN(response_writing);
    TEST_RUN(upstream_responses);
    return TEST_DONE();
}
