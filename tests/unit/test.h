/* test.h: the unit-test harness. Each tests/unit/test_*.c is one binary whose main() calls
 * TEST_RUN(fn) for each test and returns TEST_DONE(), which prints
 * "<name>: N passed, N failed" and exits non-zero on any failure.
 * A test function is `static void fn(void)`; CHECK records a failure and goes on. */
#ifndef PD_TEST_H
#define PD_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failed_checks;
static int test_passed, test_failed;

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            test_failed_checks++;                                                 \
        }                                                                         \
    } while (0)

#define CHECK_STR(a, b)                                                           \
    do {                                                                          \
        const char *a_ = (a), *b_ = (b);                                          \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                  \
            fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,   \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                      \
            test_failed_checks++;                                                 \
        }                                                                         \
    } while (0)

#define TEST_RUN(fn)                                                              \
    do {                                                                          \
        int before_ = test_failed_checks;                                         \
        fn();                                                                     \
        if (test_failed_checks == before_) {                                      \
            test_passed++;                                                        \
        } else {                                                                  \
            test_failed++;                                                        \
            fprintf(stderr, "FAIL %s\n", #fn);                                    \
        }                                                                         \
    } while (0)

#define TEST_DONE()                                                               \
    (printf("%s: %d passed, %d failed\n", __FILE__, test_passed, test_failed),    \
     test_failed ? 1 : 0)

#endif
