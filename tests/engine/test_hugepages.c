/* test_hugepages.c: which memory the engine puts on huge pages (hugepages.c), without a model.
 * The kernel's own record is the oracle: /proc/self/smaps lists "hg" in a mapping's VmFlags
 * once it was advised MADV_HUGEPAGE, and AnonHugePages counts the huge pages it then got. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../unit/test.h"
#include "engine/engine_int.h"

#define MB (1u << 20)

/* The smaps entry of the mapping containing p: whether it is advised, its AnonHugePages. */
static bool mapping_info(const void *p, bool *advised, size_t *huge_kb)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return false;
    char line[1024];
    bool inside = false, found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
            if (found && inside)
                break;
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            found |= inside;
        } else if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) {
            *huge_kb = kb;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            *advised = strstr(line, " hg") != NULL;
        }
    }
    fclose(f);
    return found;
}

static void *map_rw(size_t n, int flags)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static bool thp_enabled(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char s[128] = "";
    if (f) {
        if (!fgets(s, sizeof s, f))
            s[0] = '\0';
        fclose(f);
    }
    return strstr(s, "[never]") == NULL && s[0];
}

/* A large mapping made after the snapshot is advised and, once written, gets huge pages; one
   that existed before, and a small new one, are left alone. The kernel is free to merge `old`
   and `big` into one mapping (same flags, adjacent): the part before the snapshot must still be
   cut off. `small` differs in a flag (MAP_NORESERVE) so that it stays a mapping of its own. */
static void test_only_new_large_mappings(void)
{
    void *old = map_rw(64 * MB, 0), *big, *small;
    CHECK(old != NULL);
    pd_engine_maps before;
    CHECK(pd_engine_maps_snapshot(&before) == PD_OK && before.n > 0);
    big = map_rw(64 * MB, 0);
    small = map_rw(4 * MB, MAP_NORESERVE);
    CHECK(big && small);

    size_t advised_bytes = pd_engine_thp_advise_new(&before);
    pd_engine_maps_free(&before);
    CHECK(advised_bytes >= 62 * MB); /* the 2 MiB-aligned part of the 64 MiB */
    CHECK(advised_bytes <= 64 * MB);

    bool adv = false;
    size_t huge_kb = 0;
    CHECK(mapping_info(big, &adv, &huge_kb) && adv);
    memset(big, 1, 64 * MB); /* the load writes the weights */
    CHECK(mapping_info(big, &adv, &huge_kb));
    if (thp_enabled())
        CHECK(huge_kb >= 2048);
    else
        fprintf(stderr, "  (THP disabled on this machine: huge-page count not checked)\n");

    adv = true;
    CHECK(mapping_info(old, &adv, &huge_kb) && !adv);
    adv = true;
    CHECK(mapping_info(small, &adv, &huge_kb) && !adv);
    munmap(old, 64 * MB);
    munmap(big, 64 * MB);
    munmap(small, 4 * MB);
}

/* Read-only memory (a file mapping of the model) is never advised. */
static void test_read_only_left_alone(void)
{
    pd_engine_maps before;
    CHECK(pd_engine_maps_snapshot(&before) == PD_OK);
    void *ro = mmap(NULL, 64 * MB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    CHECK(pd_engine_thp_advise_new(&before) == 0);
    pd_engine_maps_free(&before);
    bool adv = true;
    size_t huge_kb = 0;
    CHECK(mapping_info(ro, &adv, &huge_kb) && !adv);
    munmap(ro, 64 * MB);
    pd_engine_maps_free(NULL);
}

int main(void)
{
    TEST_RUN(test_only_new_large_mappings);
    TEST_RUN(test_read_only_left_alone);
    return TEST_DONE();
}
