/* hugepages.c: the model's weights on transparent huge pages.
 *
 * Generating one token reads every weight once: a 1B model at Q4_K_M streams ~0.8 GB per
 * token through ~200,000 4 KiB pages, far more than any TLB holds, so every page costs a page
 * walk. ggml allocates the weights it repacks for the CPU with plain posix_memalign, and
 * Debian's default THP mode is "madvise", so that memory stays on 4 KiB pages unless someone
 * asks. Measured here (README, "Measured"): in ad hoc runs under load the engine was faster on
 * 2 MiB pages, but on the quiet machine llama-server given the same pages
 * (PEER_THP=1 bench/engine) was not measurably faster than without: the gain is small.
 *
 * llama.cpp has no hook for its buffers, but it reports progress while it fills them: the first
 * report comes after the weight buffers are allocated and before anything is written to them.
 * There the engine marks the large private writable mappings that appeared since it began
 * loading with madvise(MADV_HUGEPAGE), so that filling them faults in 2 MiB pages directly
 * (collapsing them after the load, MADV_COLLAPSE, works too but copied 700 MiB in ~10 s here).
 * The weights read straight from the file mapping (llama.cpp mmaps the GGUF) are in the page
 * cache, which the kernel manages itself. Where the kernel says no (THP disabled), nothing
 * changes but speed. */
#include "engine/engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE (2u << 20)
/* Smaller new mappings are left alone: a thread stack (8 MiB) is sparse, and a huge page there
   would be memory nobody uses. */
#define MIN_REGION (16u << 20)

typedef struct range {
    uintptr_t lo, hi;
} range;

/* The next mapping of /proc/self/maps: its range and whether it is private writable memory.
   Returns false at the end of the file. */
static bool next_mapping(FILE *f, range *r, bool *rw_private)
{
    char line[512], perms[8];
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        bool parsed = sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3;
        if (!strchr(line, '\n')) /* a long path: skip the rest of the line */
            for (int c; (c = fgetc(f)) != EOF && c != '\n';)
                ;
        if (parsed) {
            *r = (range){lo, hi};
            *rw_private = strcmp(perms, "rw-p") == 0;
            return true;
        }
    }
    return false;
}

pd_result pd_engine_maps_snapshot(pd_engine_maps *m)
{
    *m = (pd_engine_maps){0};
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return PD_ERR_IO;
    range r;
    bool rw;
    size_t cap = 0;
    while (next_mapping(f, &r, &rw)) {
        if (m->n == cap) {
            cap = cap ? cap * 2 : 256;
            m->lo = pd_xrealloc(m->lo, cap * sizeof *m->lo);
            m->hi = pd_xrealloc(m->hi, cap * sizeof *m->hi);
        }
        m->lo[m->n] = r.lo;
        m->hi[m->n++] = r.hi;
    }
    fclose(f);
    return PD_OK;
}

void pd_engine_maps_free(pd_engine_maps *m)
{
    if (!m)
        return;
    free(m->lo);
    free(m->hi);
    *m = (pd_engine_maps){0};
}

/* The part of r not covered by an older mapping, aligned to huge pages. The kernel may have
   merged a new mapping with an old neighbour, so the old ranges at either end are cut off. */
static size_t advise_new_part(const pd_engine_maps *before, range r)
{
    for (size_t i = 0; i < before->n; i++) {
        if (before->lo[i] <= r.lo && before->hi[i] > r.lo)
            r.lo = before->hi[i];
        if (before->lo[i] < r.hi && before->hi[i] >= r.hi)
            r.hi = before->lo[i];
        if (r.lo >= r.hi)
            return 0;
    }
    uintptr_t lo = (r.lo + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t hi = r.hi & ~(uintptr_t)(HUGE_PAGE - 1);
    if (hi <= lo || hi - lo < MIN_REGION)
        return 0;
    return madvise((void *)lo, hi - lo, MADV_HUGEPAGE) == 0 ? hi - lo : 0;
}

size_t pd_engine_thp_advise_new(const pd_engine_maps *before)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    range r;
    bool rw;
    size_t done = 0;
    while (next_mapping(f, &r, &rw))
        if (rw && r.hi - r.lo >= MIN_REGION)
            done += advise_new_part(before, r);
    fclose(f);
    return done;
}
