#include "core/buf.h"
#include "test.h"

static void append_respects_limit(void)
{
    pd_buf b;
    pd_buf_init(&b, 8);
    CHECK(pd_buf_append_str(&b, "12345") == PD_OK);
    CHECK(pd_buf_append_str(&b, "6789") == PD_ERR_TOO_LARGE);
    CHECK(b.len == 5);
    CHECK(pd_buf_append_str(&b, "678") == PD_OK);
    CHECK_STR(b.data, "12345678");
    pd_buf_free(&b);
}

static void printf_and_consume(void)
{
    pd_buf b;
    pd_buf_init(&b, 0);
    CHECK(pd_buf_printf(&b, "%s-%d", "abc", 42) == PD_OK);
    CHECK_STR(b.data, "abc-42");
    pd_buf_consume(&b, 4);
    CHECK_STR(b.data, "42");
    pd_buf_consume(&b, 10);
    CHECK(b.len == 0);
    pd_buf_free(&b);
    pd_buf_free(&b); /* a freed buffer frees again as a no-op */
}

int main(void)
{
    TEST_RUN(append_respects_limit);
    TEST_RUN(printf_and_consume);
    return TEST_DONE();
}
