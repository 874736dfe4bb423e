/* arena.c: see arena.h. */
#include "core/arena.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#define MIN_BLOCK 1024              /* the smallest block, header included */
#define MAX_BLOCK ((size_t)1 << 20) /* blocks stop doubling here */

struct pd_arena_block {
    pd_arena_block *older;
    size_t size; /* header included */
};

/* The header rounded up, so that a block's room starts aligned. */
#define HEADER ((sizeof(pd_arena_block) + PD_ARENA_ALIGN - 1) & ~(size_t)(PD_ARENA_ALIGN - 1))

void pd_arena_init(pd_arena *a, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->limit = limit;
}

void pd_arena_free(pd_arena *a)
{
    if (!a)
        return;
    pd_arena_block *b = a->blocks;
    while (b) {
        pd_arena_block *older = b->older;
        free(b);
        b = older;
    }
    pd_arena_init(a, a->limit);
}

void pd_arena_reserve(pd_arena *a, size_t n)
{
    if (a->cur && n <= (size_t)(a->end - a->cur))
        return;
    if (n <= MAX_BLOCK - HEADER - PD_ARENA_ALIGN && n + HEADER + PD_ARENA_ALIGN > a->next)
        a->next = n + HEADER + PD_ARENA_ALIGN;
}

void *pd_arena_alloc_block(pd_arena *a, size_t n, size_t align)
{
    size_t limit = a->limit ? a->limit : PD_ARENA_DEFAULT_LIMIT;
    if (n > limit || n + HEADER + align > limit - a->size)
        return NULL; /* also catches n near SIZE_MAX */
    size_t need = n + HEADER + align, size = a->next > MIN_BLOCK ? a->next : MIN_BLOCK;
    bool own = size < need; /* bigger than the blocks: a block of its own */
    if (own)
        size = need;
    else if (size > limit - a->size)
        size = limit - a->size; /* the last block that fits (need does) */
    pd_arena_block *b = pd_xmalloc(size);
    b->older = a->blocks;
    b->size = size;
    a->blocks = b;
    a->size += size;
    char *room = (char *)b + HEADER; /* malloc's alignment is at least 16 */
    if (own && a->cur)
        return room; /* the current block keeps serving the small allocations */
    if (!own)
        a->next = size * 2 < MAX_BLOCK ? size * 2 : MAX_BLOCK;
    a->cur = room + n;
    a->end = (char *)b + size;
    return room;
}

void *pd_arena_calloc(pd_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = pd_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *pd_arena_strndup(pd_arena *a, const char *s, size_t n)
{
    char *p;
    if (a->cur && n < (size_t)(a->end - a->cur)) { /* no alignment for text */
        p = a->cur;
        a->cur += n + 1;
    } else if (n == SIZE_MAX || !(p = pd_arena_alloc_block(a, n + 1, 1))) {
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *pd_arena_strdup(pd_arena *a, const char *s)
{
    return pd_arena_strndup(a, s, strlen(s));
}

void *pd_arena_grow(pd_arena *a, void *p, size_t old, size_t n)
{
    if (p && (char *)p + old == a->cur && n - old <= (size_t)(a->end - a->cur)) {
        a->cur = (char *)p + n;
        return p;
    }
    void *q = pd_arena_alloc(a, n);
    if (q && old)
        memcpy(q, p, old);
    return q;
}
