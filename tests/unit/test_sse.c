#include "proto/sse.h"
#include "test.h"

#include <stdlib.h>

/* Records every delivered event as "<name>|<data>\n" (CR and LF in data shown as \r, \n) so
   that two parses can be compared as strings. */
typedef struct rec {
    pd_buf log;
    int stop_after; /* stop (return 1) after this many events; 0 = never */
    int count;
} rec;

static int record(void *ud, const pd_sse_event *ev)
{
    rec *r = ud;
    pd_buf_append(&r->log, ev->event, ev->event_len);
    pd_buf_append(&r->log, "|", 1);
    for (size_t i = 0; i < ev->data_len; i++) {
        char c = ev->data[i];
        if (c == '\n')
            pd_buf_append(&r->log, "\\n", 2);
        else if (c == '\r')
            pd_buf_append(&r->log, "\\r", 2);
        else
            pd_buf_append(&r->log, &c, 1);
    }
    pd_buf_append(&r->log, "\n", 1);
    r->count++;
    return r->stop_after && r->count >= r->stop_after;
}

static void rec_init(rec *r)
{
    pd_buf_init(&r->log, 0);
    r->stop_after = 0;
    r->count = 0;
}

/* Parses `in` fed in the pieces given by cut points; returns the log (caller frees) and the
   result of the last feed; *pending gets pd_sse_pending at the end. */
static char *parse_cuts(const char *in, size_t len, const size_t *cuts, size_t ncuts, size_t max,
                        pd_result *last, int *pending)
{
    pd_sse_parser p;
    rec r;
    pd_sse_init(&p, max);
    rec_init(&r);
    size_t pos = 0;
    pd_result rc = PD_OK;
    for (size_t i = 0; i <= ncuts && !rc; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = pd_sse_feed(&p, in + pos, to - pos, record, &r);
        pos = to;
    }
    if (last)
        *last = rc;
    if (pending)
        *pending = pd_sse_pending(&p);
    pd_sse_free(&p);
    pd_buf_append(&r.log, "", 0); /* makes data non-NULL even when nothing was logged */
    return r.log.data;
}

static char *parse_whole(const char *in, pd_result *last, int *pending)
{
    return parse_cuts(in, strlen(in), NULL, 0, 0, last, pending);
}

static char *parse_max(const char *in, size_t max, pd_result *last)
{
    return parse_cuts(in, strlen(in), NULL, 0, max, last, NULL);
}

/* Checks that feeding `in` byte by byte, and split in two at every position, gives exactly
   what feeding it whole gives. */
static void check_all_splits(const char *in)
{
    size_t len = strlen(in);
    pd_result whole_rc, rc;
    int whole_pending, pending;
    char *whole = parse_whole(in, &whole_rc, &whole_pending);
    for (size_t cut = 0; cut <= len; cut++) {
        char *got = parse_cuts(in, len, &cut, 1, 0, &rc, &pending);
        CHECK_STR(got, whole);
        CHECK(rc == whole_rc);
        CHECK(pending == whole_pending);
        free(got);
    }
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    char *bytewise = parse_cuts(in, len, cuts, len, 0, &rc, &pending);
    CHECK_STR(bytewise, whole);
    CHECK(pending == whole_pending);
    free(bytewise);
    free(cuts);
    free(whole);
}

static void line_endings(void)
{
    const char *forms[] = {
        "data: a\n\ndata: b\n\n",   "data: a\r\n\r\ndata: b\r\n\r\n",
        "data: a\r\rdata: b\r\r",   "data: a\n\r\ndata: b\r\n\n", /* mixed */
        "data: a\r\n\rdata: b\n\r",
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        int pending;
        char *got = parse_whole(forms[i], NULL, &pending);
        CHECK_STR(got, "|a\n|b\n");
        CHECK(!pending);
        free(got);
        check_all_splits(forms[i]);
    }
}

static void cr_at_end_of_feed_then_lf(void)
{
    /* "data: a\r" + "\n" + "\r\n": the LF after a feed-final CR is part of that CRLF, so only
       the following CRLF is the empty line. */
    const char *in = "data: a\r\n\r\n";
    size_t cuts[] = {8, 9};
    pd_result rc;
    int pending;
    char *got = parse_cuts(in, strlen(in), cuts, 2, 0, &rc, &pending);
    CHECK_STR(got, "|a\n");
    CHECK(rc == PD_OK && !pending);
    free(got);
    /* and a CR ending one feed followed by a CR: two line ends, the event is dispatched */
    const char *in2 = "data: a\r\rdata: b\r\r";
    size_t cut2 = 8;
    got = parse_cuts(in2, strlen(in2), &cut2, 1, 0, &rc, &pending);
    CHECK_STR(got, "|a\n|b\n");
    free(got);
}

static void fields_and_spaces(void)
{
    const char *in = ": keep-alive\n"
                     "event: message_start\n"
                     "data:{\"x\":1}\n"
                     "\n"
                     "event:ping\n"
                     "id: 42\n"
                     "retry: 1000\n"
                     "foo: bar\n"
                     "data:  two spaces\n"
                     "\n"
                     "data\n"
                     "\n"
                     "data:\n"
                     "data:\n"
                     "\n"
                     "event: no-data\n"
                     "\n"
                     "data: after\n"
                     "\n";
    char *got = parse_whole(in, NULL, NULL);
    /* one space stripped (not two); a bare "data" line is an empty value; the event name does
       not leak past its event; an event without data is not delivered */
    CHECK_STR(got, "message_start|{\"x\":1}\nping| two spaces\n|\n|\\n\n|after\n");
    free(got);
    check_all_splits(in);
}

static void multi_line_data(void)
{
    const char *in = "event: e\ndata: line1\ndata: line2\r\ndata:\rdata: line4\n\n";
    char *got = parse_whole(in, NULL, NULL);
    CHECK_STR(got, "e|line1\\nline2\\n\\nline4\n");
    free(got);
    check_all_splits(in);
}

static void error_field_is_an_error_event(void)
{
    const char *in = "error: {\"code\":500,\"message\":\"boom\"}\n\ndata: [DONE]\n\n";
    char *got = parse_whole(in, NULL, NULL);
    CHECK_STR(got, "error|{\"code\":500,\"message\":\"boom\"}\n|[DONE]\n");
    free(got);
    check_all_splits(in);
}

static void realistic_streams_split_everywhere(void)
{
    check_all_splits(
        "data: "
        "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
        "\"\"}}]}\n\n"
        ": ping\n\n"
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\xc3\xa9llo "
        "\xe2\x82\xac\"}}]}\n\n"
        "data: [DONE]\n\n");
    check_all_splits(
        "event: message_start\r\n"
        "data: {\"type\":\"message_start\"}\r\n\r\n"
        "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n"
        "event: content_block_delta\r\ndata: {\"delta\":{\"text\":\"\xf0\x9f\x98\x80\"}}\r\n\r\n"
        "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n");
}

static void pending_at_eof(void)
{
    int pending;
    pd_result rc;
    char *got = parse_whole("data: a\n\ndata: cut", &rc, &pending);
    CHECK_STR(got, "|a\n");
    CHECK(rc == PD_OK && pending);
    free(got);
    got = parse_whole("data: a\n\ndata: b\n", &rc, &pending); /* no closing empty line */
    CHECK_STR(got, "|a\n");
    CHECK(pending);
    free(got);
    got = parse_whole("data: a\n\n: trailing comment\n", &rc, &pending);
    CHECK(!pending);
    free(got);
    got = parse_whole("data: a\n\n", &rc, &pending);
    CHECK(!pending);
    free(got);
}

static void caps(void)
{
    pd_result rc;
    /* the cap applies to whole lines (field name included): exactly the cap passes, one byte
       more fails */
    char *got = parse_max("data: 12345678\n\n", 14, &rc);
    CHECK(rc == PD_OK);
    CHECK_STR(got, "|12345678\n");
    free(got);
    got = parse_max("data: 123456789\n\n", 14, &rc);
    CHECK(rc == PD_ERR_TOO_LARGE);
    free(got);
    /* and to the joined data: three lines of 10 bytes join into 14 bytes of data */
    got = parse_max("data: 1234\ndata: 5678\n\n", 10, &rc);
    CHECK(rc == PD_OK);
    CHECK_STR(got, "|1234\\n5678\n");
    free(got);
    got = parse_max("data: 1234\ndata: 5678\ndata: 9abc\n\n", 10, &rc);
    CHECK(rc == PD_ERR_TOO_LARGE);
    CHECK_STR(got, "");
    free(got);
    /* a line longer than the cap, fed whole or cut in the middle, fails the same way */
    const char *in = "data: ok\n\n: a very long comment line\n\ndata: late\n\n";
    size_t len = strlen(in);
    got = parse_cuts(in, len, NULL, 0, 12, &rc, NULL);
    CHECK(rc == PD_ERR_TOO_LARGE);
    CHECK_STR(got, "|ok\n");
    free(got);
    for (size_t cut = 0; cut <= len; cut++) {
        got = parse_cuts(in, len, &cut, 1, 12, &rc, NULL);
        CHECK(rc == PD_ERR_TOO_LARGE);
        CHECK_STR(got, "|ok\n");
        free(got);
    }
    /* after a failure the parser stays failed until reset */
    pd_sse_parser p;
    rec r;
    rec_init(&r);
    pd_sse_init(&p, 8);
    CHECK(pd_sse_feed(&p, "data: 12345\n\n", 13, record, &r) == PD_ERR_TOO_LARGE);
    CHECK(pd_sse_feed(&p, "data: 1\n\n", 9, record, &r) == PD_ERR_TOO_LARGE);
    pd_sse_reset(&p);
    CHECK(pd_sse_feed(&p, "data: 1\n\n", 9, record, &r) == PD_OK);
    CHECK_STR(r.log.data, "|1\n");
    pd_sse_free(&p);
    pd_buf_free(&r.log);
}

static void callback_stops(void)
{
    pd_sse_parser p;
    rec r;
    rec_init(&r);
    r.stop_after = 2;
    pd_sse_init(&p, 0);
    const char *in = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    CHECK(pd_sse_feed(&p, in, strlen(in), record, &r) == PD_ERR_CLOSED);
    CHECK(r.count == 2);
    CHECK_STR(r.log.data, "|1\n|2\n");
    pd_sse_free(&p);
    pd_sse_free(NULL);
    pd_buf_free(&r.log);
}

/* An event spread over many feeds keeps its name and data after the fed bytes are gone. */
static void event_outlives_fed_bytes(void)
{
    pd_sse_parser p;
    rec r;
    rec_init(&r);
    pd_sse_init(&p, 0);
    char chunk[32];
    strcpy(chunk, "event: nm\ndata: first\n");
    CHECK(pd_sse_feed(&p, chunk, strlen(chunk), record, &r) == PD_OK);
    CHECK(pd_sse_pending(&p));
    memset(chunk, 'X', sizeof chunk); /* the caller reuses its read buffer */
    strcpy(chunk, "data: second\n");
    CHECK(pd_sse_feed(&p, chunk, strlen(chunk), record, &r) == PD_OK);
    memset(chunk, 'Y', sizeof chunk);
    CHECK(pd_sse_feed(&p, "\n", 1, record, &r) == PD_OK);
    CHECK_STR(r.log.data, "nm|first\\nsecond\n");
    CHECK(!pd_sse_pending(&p));
    pd_sse_free(&p);
    pd_buf_free(&r.log);
}

static void writer_round_trip(void)
{
    struct {
        const char *name;
        const char *data;
        size_t len;
        const char *wire;
        const char *log;
    } cases[] = {
        {NULL, "{\"a\":1}", 7, "data: {\"a\":1}\n\n", "|{\"a\":1}\n"},
        {"message_start", "x", 1, "event: message_start\ndata: x\n\n", "message_start|x\n"},
        {NULL, "l1\nl2", 5, "data: l1\ndata: l2\n\n", "|l1\\nl2\n"},
        {NULL, "l1\r\nl2\rl3\n", 10, "data: l1\ndata: l2\ndata: l3\ndata: \n\n",
         "|l1\\nl2\\nl3\\n\n"},
        {NULL, "", 0, "data: \n\n", "|\n"},
        {NULL, " lead", 5, "data:  lead\n\n", "| lead\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pd_buf out;
        pd_buf_init(&out, 0);
        CHECK(pd_sse_write(&out, cases[i].name, cases[i].data, cases[i].len) == PD_OK);
        CHECK_STR(out.data, cases[i].wire);
        char *got = parse_whole(out.data, NULL, NULL);
        CHECK_STR(got, cases[i].log);
        free(got);
        pd_buf_free(&out);
    }
    pd_buf out;
    pd_buf_init(&out, 12);
    CHECK(pd_sse_write(&out, "bad\nname", "x", 1) == PD_ERR_INVALID);
    CHECK(pd_sse_write(&out, NULL, "123456789", 9) == PD_ERR_TOO_LARGE);
    CHECK(out.len == 0); /* nothing half-written */
    CHECK(pd_sse_write(&out, NULL, "1234", 4) == PD_OK);
    CHECK_STR(out.data, "data: 1234\n\n");
    pd_buf_free(&out);
}

int main(void)
{
    TEST_RUN(line_endings);
    TEST_RUN(cr_at_end_of_feed_then_lf);
    TEST_RUN(fields_and_spaces);
    TEST_RUN(multi_line_data);
    TEST_RUN(error_field_is_an_error_event);
    TEST_RUN(realistic_streams_split_everywhere);
    TEST_RUN(pending_at_eof);
    TEST_RUN(caps);
    TEST_RUN(callback_stops);
    TEST_RUN(event_outlives_fed_bytes);
    TEST_RUN(writer_round_trip);
    return TEST_DONE();
}
