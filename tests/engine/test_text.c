/* test_text.c: the engine's output hold-back rules (text.c), without a model, plus one pass
 * over real token pieces of a vocabulary when a GGUF is given (argv[1]): text that the
 * tokenizer splits inside UTF-8 characters comes out as whole characters, in order.
 *
 *   test_text [MODEL.gguf] */
#include <stdlib.h>
#include <string.h>

#include "../unit/test.h"
#include "engine/engine_int.h"

static size_t sendable(const char *s, const char *stop, bool *stopped)
{
    char *stops[1] = {(char *)stop};
    return pd_engine_text_sendable(s, strlen(s), stops, stop ? 1 : 0, stopped);
}

static void test_utf8_complete(void)
{
    CHECK(pd_engine_utf8_complete("abc", 3) == 3);
    CHECK(pd_engine_utf8_complete("a\xC3", 2) == 1);     /* é cut after its lead */
    CHECK(pd_engine_utf8_complete("a\xC3\xA9", 3) == 3); /* é whole */
    CHECK(pd_engine_utf8_complete("\xE6\x97", 2) == 0);  /* 日 cut */
    CHECK(pd_engine_utf8_complete("\xE6\x97\xA5", 3) == 3);
    CHECK(pd_engine_utf8_complete("x\xF0\x9F\x8E", 4) == 1); /* 🎉 missing its last byte */
    CHECK(pd_engine_utf8_complete("x\xF0\x9F\x8E\x89", 5) == 5);
    CHECK(pd_engine_utf8_complete("\x80\x80\x80\x80", 4) == 4); /* stray continuations */
    CHECK(pd_engine_utf8_complete("\xFF", 1) == 1);             /* invalid lead: no wait */
    CHECK(pd_engine_utf8_complete("", 0) == 0);
}

static void test_stop_strings(void)
{
    bool stopped;
    CHECK(sendable("Hello wor", NULL, &stopped) == 9 && !stopped);
    /* "wor" may begin "world": held */
    CHECK(sendable("Hello wor", "world", &stopped) == 6 && !stopped);
    CHECK(sendable("Hello world!", "world", &stopped) == 6 && stopped);
    CHECK(sendable("Hello w", "world", &stopped) == 6 && !stopped);
    CHECK(sendable("Hello x", "world", &stopped) == 7 && !stopped);
    CHECK(sendable("world", "world", &stopped) == 0 && stopped);
    /* the earliest of several stops wins */
    char *two[2] = {"cd", "b"};
    CHECK(pd_engine_text_sendable("abcd", 4, two, 2, &stopped) == 1 && stopped);
    /* an incomplete character before a partial stop: both held */
    CHECK(sendable("ab\xC3", "z", &stopped) == 2 && !stopped);
    /* a stop string made of a multi-byte character */
    CHECK(sendable("x\xE6\x97", "\xE6\x97\xA5", &stopped) == 1 && !stopped);
    CHECK(sendable("x\xE6\x97\xA5y", "\xE6\x97\xA5", &stopped) == 1 && stopped);
}

/* Feeds the token pieces of text one by one through the hold-back rule, as the engine does,
   and checks every fragment sent is valid UTF-8 and that they add up to the text. */
static void feed_pieces(const struct llama_vocab *vocab, const char *text, const char *stop,
                        const char *expect)
{
    llama_token *toks = NULL;
    int32_t n = 0;
    CHECK(pd_engine_tokenize(vocab, text, strlen(text), false, &toks, &n) == PD_OK);
    char pending[1024], out[1024];
    size_t np = 0, no = 0;
    int split = 0;
    bool stopped = false;
    char *stops[1] = {(char *)stop};
    for (int32_t i = 0; i < n && !stopped; i++) {
        char piece[128];
        int32_t len = llama_token_to_piece(vocab, toks[i], piece, sizeof piece, 0, false);
        CHECK(len >= 0);
        if (pd_engine_utf8_complete(piece, (size_t)len) != (size_t)len)
            split++; /* this token ends inside a character */
        memcpy(pending + np, piece, (size_t)len);
        np += (size_t)len;
        size_t k = pd_engine_text_sendable(pending, np, stops, stop ? 1 : 0, &stopped);
        CHECK(pd_engine_utf8_complete(pending, k) == k); /* whole characters only */
        memcpy(out + no, pending, k);
        no += k;
        memmove(pending, pending + k, np - k);
        np -= k;
    }
    if (!stopped) { /* the end of generation flushes */
        memcpy(out + no, pending, np);
        no += np;
    }
    out[no] = '\0';
    CHECK_STR(out, expect);
    CHECK(split > 0); /* the text really did split characters across tokens */
    free(toks);
}

static const char *g_model;

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)level, (void)text, (void)ud;
}

static void test_real_pieces(void)
{
    if (!g_model)
        return;
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *m = llama_model_load_from_file(g_model, mp);
    CHECK(m != NULL);
    if (!m)
        return;
    const struct llama_vocab *v = llama_model_get_vocab(m);
    /* emoji and rare CJK are byte-split by a BPE vocabulary */
    const char *s = "ok \xF0\x9F\xA6\x99\xF0\x9F\xA7\xAC \xE9\xBE\x98\xE7\x88\xA9 end";
    feed_pieces(v, s, NULL, s);
    feed_pieces(v, s, "\xE7\x88\xA9 e", "ok \xF0\x9F\xA6\x99\xF0\x9F\xA7\xAC \xE9\xBE\x98");
    llama_model_free(m);
}

int main(int argc, char **argv)
{
    g_model = argc > 1 ? argv[1] : NULL;
    if (g_model) {
        llama_log_set(quiet, NULL);
        llama_backend_init();
    }
    TEST_RUN(test_utf8_complete);
    TEST_RUN(test_stop_strings);
    TEST_RUN(test_real_pieces);
    return TEST_DONE();
}
