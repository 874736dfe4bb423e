/* arena.h: a bump allocator for memory that lives and dies together (h2o's memory pool per
 * request): the canonical request (canon/chat.h) keeps its strings and arrays in one.
 *
 * Why: parsing a request used to make ~35 small mallocs and as many frees; those were half the
 * cost of building and freeing it (bench/README.md, "translate.c"). Here an allocation is a
 * pointer bump in the newest block, and pd_arena_free releases a few blocks.
 *
 * Blocks: the first is made on the first allocation (pd_arena_reserve sizes it, e.g. from a
 * body's length), each later one is twice the previous (at most 1 MiB; a bigger allocation gets
 * a block of its own). Memory is never given back one piece at a time: replacing a string
 * leaves the old one in place until the arena is freed, so code that rewrites a value many
 * times should build it elsewhere (a pd_buf) and copy the result once.
 *
 * Size cap: `limit` bounds the bytes of all blocks together (as pd_buf's limit bounds a
 * buffer); an allocation that would pass it returns NULL and changes nothing, so the caller
 * fails that request, not the process. Running out of memory below the limit aborts (house
 * rule for small internal allocations).
 *
 * Ownership: the arena owns its blocks; everything allocated is valid until pd_arena_free.
 * The struct holds no pointer to itself, so it may be copied (moved) by value: then only one
 * copy may be used and freed. A zero-filled arena is empty with the default limit; freeing it
 * is a no-op, as is freeing twice.
 * Threading: no shared state; an arena may move between threads, used by one at a time.
 * Dependencies: core/buf (aborting allocation) and libc. */
#ifndef PD_CORE_ARENA_H
#define PD_CORE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define PD_ARENA_DEFAULT_LIMIT ((size_t)64 << 20) /* 64 MiB, when limit is 0 */
#define PD_ARENA_ALIGN 16                         /* of pd_arena_alloc's pointers */

typedef struct pd_arena_block pd_arena_block;

typedef struct pd_arena {
    char *cur, *end;        /* the free room small allocations come from (the newest block
                               but for blocks of their own) */
    pd_arena_block *blocks; /* newest first */
    size_t size;            /* bytes of all blocks, headers included: what limit bounds */
    size_t limit;           /* 0 = PD_ARENA_DEFAULT_LIMIT */
    size_t next;            /* the size of the next block (0 = the smallest) */
} pd_arena;

/* An empty arena whose blocks may total at most limit bytes (0 = the default). */
void pd_arena_init(pd_arena *a, size_t limit);
/* Releases every block and re-initialises the arena with its limit. NULL is a no-op. */
void pd_arena_free(pd_arena *a);
/* Makes the next block (if one is needed) big enough for n more bytes, so that a caller who
   knows roughly what is coming gets it in one block. Allocates nothing. */
void pd_arena_reserve(pd_arena *a, size_t n);
/* The slow path of the allocators below: a new block. */
void *pd_arena_alloc_block(pd_arena *a, size_t n, size_t align);

/* n bytes aligned to PD_ARENA_ALIGN, not zeroed; NULL past the limit. */
static inline void *pd_arena_alloc(pd_arena *a, size_t n)
{
    uintptr_t p = ((uintptr_t)a->cur + (PD_ARENA_ALIGN - 1)) & ~(uintptr_t)(PD_ARENA_ALIGN - 1);
    if (a->cur && n <= (size_t)(a->end - a->cur) &&
        p - (uintptr_t)a->cur <= (size_t)(a->end - a->cur) - n) {
        a->cur = (char *)p + n;
        return (void *)p;
    }
    return pd_arena_alloc_block(a, n, PD_ARENA_ALIGN);
}

/* count * size bytes zeroed (calloc); NULL past the limit or when the product overflows. */
void *pd_arena_calloc(pd_arena *a, size_t count, size_t size);
/* A NUL-terminated copy of n bytes of s (s may hold NULs: all n are copied); NULL past the
   limit. Not aligned. */
char *pd_arena_strndup(pd_arena *a, const char *s, size_t n);
char *pd_arena_strdup(pd_arena *a, const char *s);
/* Grows the block p of old bytes (from pd_arena_alloc/calloc, or NULL with old 0) to n >= old
   bytes, keeping its contents: in place when p is the newest allocation and the room is
   there, else a copy (the old bytes stay unused until the arena is freed). NULL past the limit
   (p is unchanged). */
void *pd_arena_grow(pd_arena *a, void *p, size_t old, size_t n);

#endif
