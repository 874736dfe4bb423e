/* golden.h: golden-file comparison for the codec unit tests. Define GOLDEN_DIR (with a trailing
   slash, relative to the repository root, where `make unit` runs) before including it.
   With PD_GOLDEN_UPDATE=1 in the environment, missing or different expected files are rewritten
   instead of compared: review the diff before committing them. */
#ifndef PD_TEST_GOLDEN_H
#define PD_TEST_GOLDEN_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon/chat.h"
#include "core/buf.h"
#include "proto/openai.h"
#include "test.h"

static char *read_file(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, GOLDEN_DIR "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    pd_buf b;
    pd_buf_init(&b, 0);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        pd_buf_append(&b, tmp, n);
    fclose(f);
    pd_buf_append(&b, "", 0);
    if (len)
        *len = b.len;
    return b.data;
}

static void check_golden(const char *name, const char *got, size_t got_len)
{
    size_t len = 0;
    char *want = read_file(name, &len);
    bool same = want && len == got_len && memcmp(want, got, len) == 0;
    if (!same && getenv("PD_GOLDEN_UPDATE")) {
        char path[256];
        snprintf(path, sizeof path, GOLDEN_DIR "%s", name);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(got, 1, got_len, f);
            fclose(f);
        }
        fprintf(stderr, "  updated %s\n", path);
    } else if (!same) {
        fprintf(stderr, "  golden %s differs:\n  want: %s\n  got:  %.*s\n", name,
                want ? want : "(missing)", (int)got_len, got);
    }
    CHECK(same || getenv("PD_GOLDEN_UPDATE"));
    free(want);
}

/* A request parser must refuse body with a 400 invalid_request_error naming param, with a
   message containing message, and leave the request empty. */
typedef pd_result (*golden_parse_fn)(const char *body, size_t len, pd_chat_request *out,
                                     pd_api_error *err);

static inline void expect_parse_error(golden_parse_fn parse, const char *body, const char *param,
                                      const char *message)
{
    pd_chat_request r;
    pd_api_error e;
    pd_result rc = parse(body, strlen(body), &r, &e);
    CHECK(rc == PD_ERR_INVALID);
    CHECK(e.status == 400);
    CHECK_STR(e.type, "invalid_request_error");
    CHECK_STR(e.param, param);
    if (!strstr(e.message, message)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\" (body %s)\n", e.message, message, body);
        CHECK(0);
    }
    CHECK(r.raw.text == NULL && r.messages == NULL && r.model == NULL); /* left empty */
    pd_chat_request_free(&r);
}

#endif
