#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "canon/chat.h"
#include "test.h"

static bool aligned(const void *p)
{
    return ((uintptr_t)p & (PD_ARENA_ALIGN - 1)) == 0;
}

static void allocations_are_distinct_and_aligned(void)
{
    pd_arena a;
    pd_arena_init(&a, 0);
    char *s = pd_arena_strndup(&a, "abc\0def", 7);
    CHECK(s && memcmp(s, "abc\0def", 8) == 0); /* all n bytes, then a NUL */
    int64_t *v = pd_arena_calloc(&a, 3, sizeof *v);
    CHECK(v && aligned(v) && v[0] == 0 && v[2] == 0);
    v[2] = 7;
    char *t = pd_arena_strdup(&a, "xyz");
    CHECK_STR(t, "xyz");
    CHECK(v[2] == 7 && memcmp(s, "abc", 4) == 0); /* nothing overwritten */
    void *z = pd_arena_alloc(&a, 0);
    CHECK(z && aligned(z));
    for (int i = 0; i < 10000; i++) { /* many blocks */
        char *p = pd_arena_strdup(&a, "0123456789");
        CHECK(p && p[10] == '\0');
        double *d = pd_arena_alloc(&a, 24);
        CHECK(d && aligned(d));
        d[2] = 1.5; /* writable: ASan sees any overrun */
    }
    CHECK(a.size > 200000 && a.size < 4000000);
    pd_arena_free(&a);
    CHECK(a.size == 0 && a.blocks == NULL);
    pd_arena_free(&a); /* twice: a no-op */
    pd_arena_free(NULL);
}

static void big_allocations_get_their_own_block(void)
{
    pd_arena a;
    pd_arena_init(&a, 0);
    char *small = pd_arena_strdup(&a, "small");
    char *room = a.cur;
    char *big = pd_arena_alloc(&a, 3u << 20); /* above the biggest block */
    CHECK(big != NULL);
    memset(big, 'x', 3u << 20);
    CHECK(a.cur == room); /* the small block keeps serving */
    char *after = pd_arena_strdup(&a, "after");
    CHECK(after == room && memcmp(small, "small", 6) == 0);
    pd_arena_free(&a);
}

static void reserve_sizes_the_first_block(void)
{
    pd_arena a;
    pd_arena_init(&a, 0);
    pd_arena_reserve(&a, 50000);
    char *p = pd_arena_alloc(&a, 10);
    size_t first = a.size;
    CHECK(p && first >= 50000);
    CHECK(pd_arena_alloc(&a, 40000) != NULL);
    CHECK(a.size == first); /* still the first block */
    pd_arena_free(&a);
}

static void grow_in_place_or_copies(void)
{
    pd_arena a;
    pd_arena_init(&a, 0);
    int *v = pd_arena_grow(&a, NULL, 0, 4 * sizeof *v);
    for (int i = 0; i < 4; i++)
        v[i] = i;
    int *w = pd_arena_grow(&a, v, 4 * sizeof *v, 8 * sizeof *v);
    CHECK(w == v); /* the newest allocation: grows where it is */
    pd_arena_strdup(&a, "in between");
    int *x = pd_arena_grow(&a, w, 8 * sizeof *v, 16 * sizeof *v);
    CHECK(x != w && x[0] == 0 && x[3] == 3); /* copied */
    pd_arena_free(&a);
}

static void the_limit_fails_the_allocation(void)
{
    pd_arena a;
    pd_arena_init(&a, 8192);
    CHECK(pd_arena_alloc(&a, 100) != NULL);
    CHECK(pd_arena_alloc(&a, 9000) == NULL); /* past the limit: NULL, nothing changed */
    size_t size = a.size;
    CHECK(pd_arena_strndup(&a, "x", SIZE_MAX - 1) == NULL);
    CHECK(pd_arena_calloc(&a, SIZE_MAX / 2, 4) == NULL); /* the product overflows */
    CHECK(pd_arena_alloc(&a, SIZE_MAX) == NULL);
    CHECK(a.size == size);
    size_t got = 0;
    while (pd_arena_alloc(&a, 256))
        got += 256;
    CHECK(a.size <= 8192 && got > 4096);
    pd_arena_free(&a);
    CHECK(a.limit == 8192); /* kept for reuse */
}

/* The request API on top: what tests and the relay use to build or change a request. */
static void request_memory_lives_in_its_arena(void)
{
    pd_chat_request r;
    pd_chat_request_init(&r);
    r.model = pd_chat_request_strdup(&r, "m");
    r.messages = pd_chat_request_alloc(&r, 2, sizeof *r.messages);
    r.n_messages = 2;
    r.messages[1].reasoning = pd_chat_request_strndup(&r, "thinking", 5);
    CHECK_STR(r.model, "m");
    CHECK(r.messages[0].parts == NULL && r.messages[1].role == 0);
    CHECK_STR(r.messages[1].reasoning, "think");
    pd_chat_request_free(&r); /* ASan: no leak, nothing freed twice */
    CHECK(r.model == NULL && r.arena.blocks == NULL);
    pd_chat_request_free(&r);
}

int main(void)
{
    TEST_RUN(allocations_are_distinct_and_aligned);
    TEST_RUN(big_allocations_get_their_own_block);
    TEST_RUN(reserve_sizes_the_first_block);
    TEST_RUN(grow_in_place_or_copies);
    TEST_RUN(the_limit_fails_the_allocation);
    TEST_RUN(request_memory_lives_in_its_arena);
    return TEST_DONE();
}
