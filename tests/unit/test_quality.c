/* test_quality.c: the verdicts of relay/quality.h on hand-made answers (the confidence and
 * backoff arithmetic underneath: test_resilience.c). */
#include <stdlib.h>

#include "relay/quality.h"
#include "test.h"

static pd_route_resilience thresholds(double mean, double window)
{
    pd_route_resilience r = pd_route_resilience_default();
    r.min_mean_logprob = mean;
    r.min_window_logprob = window;
    r.window_tokens = 2;
    return r;
}

/* A TEXT event with one logprob entry per value. */
static void feed(pd_quality *q, const char *text, const double *lp, size_t n)
{
    json_t *content = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(content, json_pack("{s:s, s:f}", "token", "x", "logprob", lp[i]));
    json_t *obj = json_pack("{s:o}", "content", content);
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_TEXT);
    ev.text = text;
    ev.text_len = strlen(text);
    ev.logprobs = n ? obj : NULL;
    pd_quality_add_event(q, &ev);
    json_decref(obj);
}

static void finish(pd_quality *q, pd_chat_finish f)
{
    pd_chat_event ev;
    pd_chat_event_init(&ev, PD_EVENT_FINISH);
    ev.finish = f;
    pd_quality_add_event(q, &ev);
}

static void test_logprob_thresholds(void)
{
    pd_chat_request req;
    pd_chat_request_init(&req);
    char why[96];
    pd_quality q;
    pd_quality_init(&q, 2);
    const double good[] = {-0.2, -0.3, -0.1};
    feed(&q, "Paris is the capital.", good, 3);
    pd_route_resilience r = thresholds(-1.0, -2.0);
    CHECK(pd_quality_passes(&q, &r, false, &req, why, sizeof why));
    CHECK(q.tokens == 3);
    const double dip[] = {-4.5, -4.5};
    feed(&q, " Or Lyon", dip, 2);
    CHECK(!pd_quality_passes(&q, &r, false, &req, why, sizeof why)); /* mean -1.92 */
    CHECK_STR(why, "mean logprob -1.92 < -1.00");
    pd_route_resilience only_window = thresholds(1, -2.0);
    CHECK(!pd_quality_passes(&q, &only_window, false, &req, why, sizeof why));
    CHECK_STR(why, "window logprob -4.50 < -2.00");
    pd_route_resilience none = pd_route_resilience_default();
    CHECK(!pd_route_has_confidence(&none));
    CHECK(pd_quality_passes(&q, &none, false, &req, why, sizeof why));
    pd_quality_free(&q);
}

static void test_text_checks(void)
{
    pd_chat_request req;
    pd_chat_request_init(&req);
    pd_route_resilience none = pd_route_resilience_default();
    char why[96];
    pd_quality q;

    pd_quality_init(&q, 8);
    feed(&q, "  \n ", NULL, 0);
    finish(&q, PD_FINISH_STOP);
    CHECK(pd_quality_passes(&q, &none, false, &req, why, sizeof why)); /* not final yet */
    CHECK(!pd_quality_passes(&q, &none, true, &req, why, sizeof why));
    CHECK_STR(why, "empty answer");

    pd_quality_reset(&q);
    feed(&q, "I'm sorry, but I can't do that.", NULL, 0);
    CHECK(!pd_quality_passes(&q, &none, false, &req, why, sizeof why));
    CHECK_STR(why, "a refusal");

    pd_quality_reset(&q);
    feed(&q, "The answer is ", NULL, 0);
    for (int i = 0; i < 30; i++)
        feed(&q, "la ", NULL, 0);
    CHECK(!pd_quality_passes(&q, &none, false, &req, why, sizeof why));
    CHECK_STR(why, "degenerate repetition");

    pd_quality_reset(&q);
    feed(&q, "la la la la", NULL, 0); /* repeated, but short: a song, not a loop */
    finish(&q, PD_FINISH_STOP);
    CHECK(pd_quality_passes(&q, &none, true, &req, why, sizeof why));

    pd_quality_reset(&q);
    feed(&q, "A long story that", NULL, 0);
    finish(&q, PD_FINISH_LENGTH);
    CHECK(!pd_quality_passes(&q, &none, true, &req, why, sizeof why));
    req.sampling.has_max_tokens = true; /* the client asked for a cut */
    CHECK(pd_quality_passes(&q, &none, true, &req, why, sizeof why));
    pd_quality_free(&q);
}

static void test_json_asked(void)
{
    pd_chat_request req;
    pd_chat_request_init(&req);
    req.response_format.kind = PD_FORMAT_JSON_OBJECT;
    pd_route_resilience none = pd_route_resilience_default();
    char why[96];
    pd_quality q;
    pd_quality_init(&q, 8);
    feed(&q, "{\"a\": ", NULL, 0);
    CHECK(pd_quality_passes(&q, &none, false, &req, why, sizeof why)); /* judged when complete */
    feed(&q, "1}", NULL, 0);
    finish(&q, PD_FINISH_STOP);
    CHECK(pd_quality_passes(&q, &none, true, &req, why, sizeof why));
    pd_quality_reset(&q);
    feed(&q, "Sure! {\"a\": 1}", NULL, 0);
    finish(&q, PD_FINISH_STOP);
    CHECK(!pd_quality_passes(&q, &none, true, &req, why, sizeof why));
    CHECK_STR(why, "not the JSON object asked for");
    pd_quality_free(&q);
}

static void test_whole_response(void)
{
    pd_chat_request req;
    pd_chat_request_init(&req);
    pd_route_resilience r = thresholds(-1.0, 1);
    char why[96];
    pd_chat_response resp;
    pd_chat_response_init(&resp);
    resp.n_choices = 1;
    resp.choices = calloc(1, sizeof(*resp.choices));
    pd_chat_choice *c = &resp.choices[0];
    c->finish = PD_FINISH_STOP;
    c->message.role = PD_ROLE_ASSISTANT;
    c->message.n_parts = 1;
    c->message.parts = calloc(1, sizeof(*c->message.parts));
    c->message.parts[0].kind = PD_PART_TEXT;
    c->message.parts[0].text = strdup("Forty-two.");
    c->logprobs = json_pack("{s:[{s:f},{s:f}]}", "content", "logprob", -2.0, "logprob", -1.0);
    pd_quality q;
    pd_quality_init(&q, 8);
    pd_quality_add_response(&q, &resp);
    CHECK(q.tokens == 2);
    CHECK(!pd_quality_passes(&q, &r, true, &req, why, sizeof why));
    CHECK_STR(why, "mean logprob -1.50 < -1.00");
    pd_quality_free(&q);
    pd_chat_response_free(&resp);
}

int main(void)
{
    TEST_RUN(test_logprob_thresholds);
    TEST_RUN(test_text_checks);
    TEST_RUN(test_json_asked);
    TEST_RUN(test_whole_response);
    return TEST_DONE();
}
