/* test_jsonr.c: the request JSON reader (proto/jsonr.h): what it accepts and rejects (always
 * the same as json_loadb with flags 0, checked by tests/unit/jsonr_diff.h on every case), the
 * values it reads, lookups with duplicate keys, and both writers. */
#include "proto/jsonr.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "jsonr_diff.h"
#include "test.h"

/* Parses n bytes; checks the verdict (true = accepted) and that jansson agrees. */
static void verdict_n(const char *s, size_t n, bool accepted)
{
    pd_jr_doc d;
    bool ok = pd_jr_parse(&d, s, n) == PD_OK;
    if (ok != accepted)
        fprintf(stderr, "  verdict for '%.*s': %d\n", (int)n, s, ok);
    CHECK(ok == accepted);
    pd_jr_free(&d);
    if (!jsonr_agrees(s, n))
        fprintf(stderr, "  jansson disagrees on '%.*s'\n", (int)n, s);
    CHECK(jsonr_agrees(s, n));
}

static void verdict(const char *s, bool accepted)
{
    verdict_n(s, strlen(s), accepted);
}

static void grammar(void)
{
    const char *good[] = {
        "{}",
        "[]",
        " \t\r\n[ ]\n",
        "{\"a\":1}",
        "[1,-1,0,-0,1.5,-0.0,1e5,1E+5,1e-5,2.5e-3]",
        "[true,false,null]",
        "{\"a\":{\"b\":[{},[]]}}",
        "[\"\"]",
        "{\"\":\"\"}",
        "[9223372036854775807,-9223372036854775808]",
        "[1e-400]",
        "[1.7976931348623157e308]",
    };
    const char *bad[] = {
        "",
        " ",
        "1",
        "\"a\"",
        "true",
        "null",
        "[",
        "]",
        "{",
        "[1,]",
        "[,1]",
        "{,}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{1:2}",
        "{\"a\":1,}",
        "[01]",
        "[-01]",
        "[1.]",
        "[.5]",
        "[1e]",
        "[1e+]",
        "[+1]",
        "[-]",
        "[--1]",
        "[0x10]",
        "[tru]",
        "[truex]",
        "[nul]",
        "[True]",
        "[NaN]",
        "[Infinity]",
        "[1] [2]",
        "[1]x",
        "{}{}",
        "[1 2]",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[1e400]",
        "[-1e400]",
        "['a']",
        "[\"a]",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"\\u12G4\"]",
        "[\"\\U0041\"]",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        verdict(good[i], true);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        verdict(bad[i], false);
}

static void strings(void)
{
    verdict("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", true);
    verdict("[\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"]", true);
    verdict("[\"\\u0000\"]", false);   /* no JSON_ALLOW_NUL */
    verdict("{\"\\u0000\":1}", false); /* nor in keys */
    verdict("[\"\\ud800\"]", false);   /* lone high surrogate */
    verdict("[\"\\udc00\"]", false);   /* lone low surrogate */
    verdict("[\"\\ud800\\u0041\"]", false);
    verdict("[\"\\ud800\\n\"]", false);
    verdict("[\"\\ud800x\"]", false);
    verdict("[\"\\udbff\\udfff\"]", true); /* U+10FFFF */
    verdict("[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]", true);
    verdict("[\"\xc3\"]", false);             /* cut in two */
    verdict("[\"\xc0\xaf\"]", false);         /* overlong */
    verdict("[\"\xe0\x80\xaf\"]", false);     /* overlong */
    verdict("[\"\xed\xa0\x80\"]", false);     /* an encoded surrogate */
    verdict("[\"\xf4\x90\x80\x80\"]", false); /* above U+10FFFF */
    verdict("[\"\xff\"]", false);
    verdict("[\"\x80\"]", false);
    verdict("[\"a\tb\"]", false); /* raw control characters */
    verdict("[\"a\nb\"]", false);
    verdict("[\"\x7f\"]", true);       /* DEL is not one */
    verdict_n("[\"a\0b\"]", 6, false); /* a raw NUL */
    verdict("[\xc3\xa9]", false);      /* UTF-8 outside a string */

    pd_jr_doc d;
    const char *s = "{\"k\\u00e9y\":\"a\\nb\\u20ac\",\"plain\":\"xyz\"}";
    CHECK(pd_jr_parse(&d, s, strlen(s)) == PD_OK);
    CHECK(pd_jr_eq(pd_jr_get(pd_jr_root(&d), "k\xc3\xa9y"), "a\nb\xe2\x82\xac"));
    const pd_jr_val *plain = pd_jr_get(pd_jr_root(&d), "plain");
    CHECK(pd_jr_eq(plain, "xyz") && plain->u.s > s && plain->u.s < s + strlen(s)); /* no copy */
    pd_jr_free(&d);
}

static void numbers(void)
{
    pd_jr_doc d;
    const char *s = "[0,-0,42,-9223372036854775808,0.7,-0.0,1e22,1e23,123456789012345678.5,"
                    "0.1e-2,5e-324,2.2250738585072011e-308,1.00000000000000000001]";
    CHECK(pd_jr_parse(&d, s, strlen(s)) == PD_OK);
    const pd_jr_val *v = pd_jr_child(pd_jr_root(&d));
    CHECK(pd_jr_is_integer(v) && v->u.i == 0);
    v = pd_jr_next(v);
    CHECK(pd_jr_is_integer(v) && v->u.i == 0); /* "-0" is an integer, as in jansson */
    v = pd_jr_next(v);
    CHECK(v->u.i == 42);
    v = pd_jr_next(v);
    CHECK(v->u.i == INT64_MIN);
    v = pd_jr_next(v);
    CHECK(pd_jr_is_real(v) && v->u.d == 0.7);
    v = pd_jr_next(v);
    CHECK(pd_jr_is_real(v) && v->u.d == 0 && signbit(v->u.d));
    v = pd_jr_next(v);
    CHECK(v->u.d == 1e22);
    v = pd_jr_next(v);
    CHECK(v->u.d == 1e23); /* past the fast path: strtod */
    pd_jr_free(&d);
    CHECK(jsonr_agrees(s, strlen(s))); /* every double bit for bit */
    verdict("[0.30000000000000004,123456789012345,1234567890123456,9007199254740993.0]", true);
    verdict("[1e-22,1e-23,4.9e-324,1e-999999,0e999999,-0e-5,100e-2]", true);
}

static void depth(void)
{
    char buf[2 * PD_JR_MAX_DEPTH + 8];
    /* 2047 arrays around a scalar: the scalar is at depth 2048, the limit */
    size_t n = 0;
    for (int i = 0; i < PD_JR_MAX_DEPTH - 1; i++)
        buf[n++] = '[';
    buf[n++] = '1';
    for (int i = 0; i < PD_JR_MAX_DEPTH - 1; i++)
        buf[n++] = ']';
    verdict_n(buf, n, true);
    /* 2048 arrays around a scalar: one too deep */
    n = 0;
    for (int i = 0; i < PD_JR_MAX_DEPTH; i++)
        buf[n++] = '[';
    buf[n++] = '1';
    for (int i = 0; i < PD_JR_MAX_DEPTH; i++)
        buf[n++] = ']';
    verdict_n(buf, n, false);
    /* 2048 empty arrays: the innermost one is at depth 2048 */
    n = 0;
    for (int i = 0; i < PD_JR_MAX_DEPTH; i++)
        buf[n++] = '[';
    for (int i = 0; i < PD_JR_MAX_DEPTH; i++)
        buf[n++] = ']';
    verdict_n(buf, n, true);
}

/* jansson loses one NUL byte right after a number or a literal; nowhere else. */
static void nul_quirk(void)
{
    verdict_n("[1\0]", 4, true);
    verdict_n("[1.5\0]", 6, true);
    verdict_n("[1e5\0,2]", 8, true);
    verdict_n("[true\0]", 7, true);
    verdict_n("{\"a\":null\0}", 11, true);
    verdict_n("[1\0\0]", 5, false);
    verdict_n("[1 \0]", 5, false);
    verdict_n("[\"a\"\0]", 6, false);
    verdict_n("[[]\0]", 5, false);
    verdict_n("[1]\0", 4, false);
    verdict_n("\0[1]", 4, false);
}

static void duplicates(void)
{
    pd_jr_doc d;
    const char *s = "{\"a\":1,\"b\":2,\"a\":3,\"c\":{\"x\":1,\"x\":[2]},\"b\":4}";
    CHECK(pd_jr_parse(&d, s, strlen(s)) == PD_OK);
    const pd_jr_val *root = pd_jr_root(&d);
    CHECK(pd_jr_get(root, "a")->u.i == 3); /* the last one */
    CHECK(pd_jr_get(root, "b")->u.i == 4);
    CHECK(pd_jr_get(root, "nope") == NULL);
    CHECK(pd_jr_get(pd_jr_child(root), "a") == NULL); /* not an object */
    pd_buf b;
    pd_jw w;
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &b);
    pd_jr_write(&w, root);
    CHECK_STR(b.data, "{\"a\":3,\"b\":4,\"c\":{\"x\":[2]}}"); /* first place, last value */
    pd_buf_free(&b);
    pd_jr_free(&d);
    CHECK(jsonr_agrees(s, strlen(s)));

    /* a big object takes the hashed path: 300 members, every third key repeated */
    pd_buf big;
    pd_buf_init(&big, 0);
    pd_buf_append_str(&big, "{");
    for (int i = 0; i < 300; i++)
        pd_buf_printf(&big, "%s\"k%d\":%d", i ? "," : "", i % 3 ? i : i / 3, i);
    pd_buf_append_str(&big, "}");
    CHECK(jsonr_agrees(big.data, big.len));
    /* and one of 100 distinct keys, whose two first bytes collide a lot */
    pd_buf_reset(&big);
    pd_buf_append_str(&big, "{");
    for (int i = 0; i < 100; i++)
        pd_buf_printf(&big, "%s\"k%d\":[%d]", i ? "," : "", i, i);
    pd_buf_append_str(&big, "}");
    CHECK(jsonr_agrees(big.data, big.len));
    pd_jr_doc d2;
    CHECK(pd_jr_parse(&d2, big.data, big.len) == PD_OK);
    CHECK(pd_jr_get(pd_jr_root(&d2), "k99") &&
          pd_jr_child(pd_jr_get(pd_jr_root(&d2), "k99"))->u.i == 99);
    pd_jr_free(&d2);
    pd_buf_free(&big);
}

/* Compact containers are copied by pd_jr_dump; anything else is written again. */
static void dumps(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"type\":\"object\",\"required\":[\"a\"],\"n\":-5}", NULL}, /* copied */
        {"{\"a\": 1}", "{\"a\":1}"},
        {"{\"a\":1,\"a\":2}", "{\"a\":2}"},
        {"{\"a\":[{\"b\":1,\"b\":2}]}", "{\"a\":[{\"b\":2}]}"},
        {"{\"a\":\"\\u0041\"}", "{\"a\":\"A\"}"},
        {"{\"a\":0.50}", "{\"a\":0.5}"},
        {"{\"a\":-0}", "{\"a\":0}"},
        {"[\"{[\",\"]}\",{}]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pd_jr_doc d;
        size_t len;
        CHECK(pd_jr_parse(&d, cases[i].in, strlen(cases[i].in)) == PD_OK);
        char *t = pd_jr_dump(pd_jr_root(&d), &len);
        CHECK_STR(t, cases[i].out ? cases[i].out : cases[i].in);
        CHECK(len == strlen(t));
        free(t);
        pd_jr_free(&d);
        CHECK(jsonr_agrees(cases[i].in, strlen(cases[i].in)));
    }
}

static void writers(void)
{
    const char *s =
        "{\"r\":0.7,\"i\":-5,\"e\":1e300,\"t\":\"\\u001f\\\"\\\\/\\u007f\",\"a\":[1.0,2.5e-8]}";
    pd_jr_doc d;
    CHECK(pd_jr_parse(&d, s, strlen(s)) == PD_OK);
    pd_buf b;
    pd_jw w;
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &b);
    pd_jr_write(&w, pd_jr_root(&d));
    CHECK_STR(
        b.data,
        "{\"r\":0.7,\"i\":-5,\"e\":1e+300,\"t\":\"\\u001f\\\"\\\\/\x7f\",\"a\":[1.0,2.5e-08]}");
    pd_buf_reset(&b);
    pd_jw_begin(&w, &b);
    pd_jr_write_jansson(&w, pd_jr_root(&d));
    CHECK_STR(b.data, "{\"r\":0.69999999999999996,\"i\":-5,\"e\":1.0000000000000001e300,"
                      "\"t\":\"\\u001F\\\"\\\\/\x7f\",\"a\":[1.0,2.4999999999999999e-8]}");
    pd_buf_free(&b);
    pd_jr_free(&d);
    CHECK(jsonr_agrees(s, strlen(s)));
}

/* pd_jw_real's printf-free path for short decimals against the plain rule it must match: the
   shortest of %.15g..%.17g that reads back, with ".0" when it would read as an integer. */
static void reference_real(double v, char *out, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap - 2, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (!strpbrk(out, ".eE"))
        strcat(out, ".0");
}

static void check_real(double v)
{
    char want[64];
    pd_buf b;
    pd_jw w;
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &b);
    pd_jw_real(&w, v);
    reference_real(v, want, sizeof want);
    if (strcmp(b.data, want) != 0)
        fprintf(stderr, "  real %.17g: %s, want %s\n", v, b.data, want);
    CHECK(strcmp(b.data, want) == 0);
    pd_buf_free(&b);
}

static void reals(void)
{
    static const double fixed[] = {0.7,
                                   1.0,
                                   2.0,
                                   0.95,
                                   1024.5,
                                   0.1,
                                   0.2,
                                   0.3,
                                   1e-4,
                                   9.999e-5,
                                   0.00011,
                                   999999.99999999,
                                   1e6,
                                   123456.789,
                                   -0.7,
                                   -2.0,
                                   0.0,
                                   -0.0,
                                   5e-324,
                                   1.7976931348623157e308,
                                   0.30000000000000004,
                                   1.0 / 3,
                                   2.0 / 3,
                                   1e15,
                                   1e21,
                                   123456789.125};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        check_real(fixed[i]);
    uint64_t x = 88172645463325252u; /* xorshift: decimals of few digits, and any double */
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double dec = (double)(int64_t)(x % 20000000) / (double)(1 + (x >> 40) % 100000000);
        check_real(dec);
        check_real((double)(x % 100000000) / 1e3);
        double any;
        memcpy(&any, &x, sizeof any);
        if (isfinite(any))
            check_real(any);
        if (test_failed_checks > 20)
            return;
    }
}

/* Every seed of the fuzz target, when run from the repository root. */
static void corpus(void)
{
    static const char *const names[] = {"req_agent_openai", "req_agent_anthropic"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fuzz/corpus/fuzz_jsonr/%s", names[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char buf[16384];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK(jsonr_agrees(buf, n));
    }
}

int main(void)
{
    TEST_RUN(grammar);
    TEST_RUN(strings);
    TEST_RUN(numbers);
    TEST_RUN(depth);
    TEST_RUN(nul_quirk);
    TEST_RUN(duplicates);
    TEST_RUN(writers);
    TEST_RUN(dumps);
    TEST_RUN(reals);
    TEST_RUN(corpus);
    return TEST_DONE();
}
