/* The openai provider's translation functions: pure, so tested without sockets. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>

#include "providers/provider.h"
#include "test.h"

static const pd_provider_ops *ops(void)
{
    return pd_provider_ops_of(PD_KIND_OPENAI);
}

static pd_chat_request client_req; /* zero: the client did not ask for stream usage */

static pd_stream_step feed(const char *event, const char *data, pd_buf *out, pd_chat_usage *u, pd_result *rc)
{
    pd_sse_event ev = {event, strlen(event), data, strlen(data)};
    pd_stream_step step = PD_STEP_CONTINUE;
    *rc = ops()->pass_event(&client_req, &ev, out, &step, u);
    return step;
}

static void stream_chunks_pass_through_verbatim(void)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    const char *chunk = "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"x_unknown\":1}";
    CHECK(feed("", chunk, &out, &u, &rc) == PD_STEP_CONTINUE);
    CHECK(rc == PD_OK);
    char want[512];
    snprintf(want, sizeof(want), "data: %s\n\n", chunk);
    CHECK_STR(out.data, want);
    CHECK(u.prompt_tokens == -1);
    pd_buf_free(&out);
}

static void usage_chunk_is_read_and_kept_from_clients_that_did_not_ask(void)
{
    const char *chunk = "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":4}}}";
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    feed("", chunk, &out, &u, &rc);
    CHECK(rc == PD_OK);
    CHECK(u.prompt_tokens == 9 && u.completion_tokens == 2 && u.cached_tokens == 4 && u.reasoning_tokens == -1);
    CHECK(out.len == 0); /* Pendulum asked for it; this client did not */
    client_req.include_usage = PD_TRI_TRUE;
    feed("", chunk, &out, &u, &rc);
    client_req.include_usage = PD_TRI_UNSET;
    CHECK(out.len > 0 && strstr(out.data, "\"prompt_tokens\":9") != NULL);
    pd_buf_free(&out);
}

static void null_usage_added_by_pendulum_is_cut_byte_exactly(void)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    feed("", "{\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":null\"}}],\"x\":0.7, \"usage\" : null}", &out, &u, &rc);
    CHECK(rc == PD_OK);
    CHECK_STR(out.data, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":null\"}}],\"x\":0.7}\n\n");
    pd_buf_reset(&out);
    feed("", "{\"usage\":null,\"id\":\"c\",\"choices\":[]}", &out, &u, &rc);
    CHECK_STR(out.data, "data: {\"id\":\"c\",\"choices\":[]}\n\n");
    pd_buf_free(&out);
}

/* Text chunks of the common shape skip json_loadb (proto/fastev.h): the same bytes go out, the
   null usage is still cut, a malformed or NUL-carrying chunk is still an error. */
static void text_chunks_checked_without_jansson(void)
{
    static const char *const fmt =
        "{\"id\":\"chatcmpl-%d\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},"
        "\"logprobs\":null,\"finish_reason\":null}]%s}";
    static const char *const texts[] = {"Hi", " there", "\\u00e9", "\\\"q\\\""};
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    char chunk[512], want[600];
    for (int i = 0; i < 16; i++) {
        const char *usage = i % 4 == 3 ? "" : ",\"usage\":null";
        snprintf(chunk, sizeof chunk, fmt, i / 5, texts[i % 4], usage);
        client_req.include_usage = i % 3 == 0 ? PD_TRI_TRUE : PD_TRI_UNSET;
        pd_buf_reset(&out);
        CHECK(feed("", chunk, &out, &u, &rc) == PD_STEP_CONTINUE && rc == PD_OK);
        if (client_req.include_usage == PD_TRI_TRUE || !usage[0])
            snprintf(want, sizeof want, "data: %s\n\n", chunk);
        else
            snprintf(want, sizeof want, "data: %.*s}\n\n", (int)(strlen(chunk) - 14), chunk);
        CHECK_STR(out.data, want);
    }
    client_req.include_usage = PD_TRI_UNSET;
    CHECK(u.prompt_tokens == -1);
    pd_buf_reset(&out);
    snprintf(chunk, sizeof chunk, fmt, 0, "a\\u0000b", "");
    feed("", chunk, &out, &u, &rc);
    CHECK(rc == PD_ERR_INVALID); /* jansson refuses U+0000 without JSON_ALLOW_NUL */
    snprintf(chunk, sizeof chunk, fmt, 0, "a", "");
    chunk[strlen(chunk) - 1] = ' ';
    feed("", chunk, &out, &u, &rc);
    CHECK(rc == PD_ERR_INVALID);
    CHECK(out.len == 0);
    pd_buf_free(&out);
}

static void done_marker_ends_the_stream(void)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    CHECK(feed("", "[DONE]", &out, &u, &rc) == PD_STEP_DONE);
    CHECK_STR(out.data, "data: [DONE]\n\n");
    pd_buf_free(&out);
}

static void malformed_event_is_an_error(void)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    feed("", "{\"choices\":[{\"delta\":", &out, &u, &rc);
    CHECK(rc == PD_ERR_INVALID);
    feed("", "[1,2]", &out, &u, &rc);
    CHECK(rc == PD_ERR_INVALID); /* JSON, but not a chunk object */
    CHECK(out.len == 0);
    pd_buf_free(&out);
}

static void error_events_are_relayed_as_errors(void)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    pd_result rc;
    const char *err = "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    CHECK(feed("", err, &out, &u, &rc) == PD_STEP_ERROR);
    char want[256];
    snprintf(want, sizeof(want), "data: %s\n\n", err);
    CHECK_STR(out.data, want);
    pd_buf_reset(&out);
    /* some llama-server builds: an `event: error` line with a non-OpenAI payload */
    CHECK(feed("error", "boom", &out, &u, &rc) == PD_STEP_ERROR);
    CHECK(rc == PD_OK);
    CHECK(strncmp(out.data, "data: {\"error\":{", 16) == 0);
    CHECK(strstr(out.data, "boom") != NULL);
    pd_buf_free(&out);
}

static void whole_responses(void)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    pd_chat_usage u;
    pd_chat_usage_init(&u);
    const char *ok = "{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}";
    CHECK(ops()->pass_response(ok, strlen(ok), &out, &u) == PD_OK);
    CHECK_STR(out.data, ok);
    CHECK(u.prompt_tokens == 3 && u.completion_tokens == 5);
    pd_buf_reset(&out);
    CHECK(ops()->pass_response("<html>", 6, &out, &u) == PD_ERR_INVALID);
    pd_buf_free(&out);
}

static json_t *error_of(long status, const char *body)
{
    pd_buf out;
    pd_buf_init(&out, 0);
    ops()->pass_error(status, body, strlen(body), &out);
    json_t *doc = json_loads(out.data, 0, NULL);
    pd_buf_free(&out);
    return doc;
}

static void error_bodies_become_openai_errors(void)
{
    const char *openai = "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
    json_t *d = error_of(429, openai);
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "error"), "code")), "rate_limit_exceeded");
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "error"), "type")), "requests");
    json_decref(d);
    d = error_of(400, "{\"object\":\"error\",\"message\":\"bad prompt\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}");
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "error"), "message")), "bad prompt");
    json_decref(d);
    d = error_of(502, "<html>bad gateway</html>");
    json_t *e = json_object_get(d, "error");
    CHECK(json_is_string(json_object_get(e, "message")));
    CHECK(strstr(json_string_value(json_object_get(e, "message")), "bad gateway") != NULL);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "server_error");
    json_decref(d);
}

static void request_goes_upstream_faithfully(void)
{
    pd_provider_cfg p = {.name = "mock", .kind = PD_KIND_OPENAI, .base_url = "http://127.0.0.1:9/v1",
                         .api_key = "sk-test", .timeouts = {1000, 2000, 3000, 4000}};
    pd_model_cfg m = {.name = "alias", .upstream_model = "real-model", .provider = &p};
    const char *body = "{\"model\":\"alias\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"seed\":9007199254740993,\"x_vendor\":{\"a\":[1,2]},\"stream\":true}";
    pd_chat_request req;
    pd_api_error err;
    CHECK(pd_openai_parse_chat_request(body, strlen(body), &req, &err) == PD_OK);
    pd_transfer_req t = {0};
    CHECK(ops()->chat_request(&p, &m, &req, &t, &err) == PD_OK);
    CHECK_STR(t.url, "http://127.0.0.1:9/v1/chat/completions");
    json_t *sent = json_loadb(t.body, t.body_len, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(sent, "model")), "real-model");
    CHECK(json_integer_value(json_object_get(sent, "seed")) == 9007199254740993LL);
    CHECK(json_is_object(json_object_get(sent, "x_vendor")));
    CHECK(json_is_true(json_object_get(sent, "stream")));
    /* usage is always asked for on streams, so it is never unknown */
    CHECK(json_is_true(json_object_get(json_object_get(sent, "stream_options"), "include_usage")));
    int has_auth = 0, has_accept = 0;
    for (struct curl_slist *h = t.headers; h; h = h->next) {
        has_auth |= strcmp(h->data, "Authorization: Bearer sk-test") == 0;
        has_accept |= strcmp(h->data, "Accept: text/event-stream") == 0;
    }
    CHECK(has_auth && has_accept);
    CHECK(t.timeouts.ttfb_ms == 2000);
    /* the client's request itself is untouched */
    json_t *raw = pd_chat_json_tree(&req.raw);
    CHECK_STR(json_string_value(json_object_get(raw, "model")), "alias");
    json_decref(raw);
    json_decref(sent);
    free(t.url);
    free(t.body);
    curl_slist_free_all(t.headers);
    pd_chat_request_free(&req);
}

int main(void)
{
    TEST_RUN(stream_chunks_pass_through_verbatim);
    TEST_RUN(usage_chunk_is_read_and_kept_from_clients_that_did_not_ask);
    TEST_RUN(null_usage_added_by_pendulum_is_cut_byte_exactly);
    TEST_RUN(text_chunks_checked_without_jansson);
    TEST_RUN(done_marker_ends_the_stream);
    TEST_RUN(malformed_event_is_an_error);
    TEST_RUN(error_events_are_relayed_as_errors);
    TEST_RUN(whole_responses);
    TEST_RUN(error_bodies_become_openai_errors);
    TEST_RUN(request_goes_upstream_faithfully);
    return TEST_DONE();
}
