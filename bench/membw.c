/* membw.c: the two numbers of bench/engine's memory-bandwidth bound.
 *
 *   membw copy THREADS      memory bandwidth with THREADS threads, each on its own 256 MiB
 *                           buffers (far larger than any cache), about 0.5 s per round, best
 *                           of 3 rounds, summed over the threads. Prints copy_gbps (bytes
 *                           memcpy copies per second), traffic_gbps (2 x copy_gbps: each copied
 *                           byte is read once and written once, the bytes the memory moves)
 *                           and read_gbps (a read-only pass summing the buffer, the access
 *                           pattern of decoding, which streams the weights).
 *   membw weights FILE.gguf bytes of weights read to decode one token: every tensor's bytes,
 *                           except that token_embd is only looked up (one row) when the model
 *                           has its own output.weight; with tied embeddings (no output.weight)
 *                           token_embd is the output projection and is read whole. Prints
 *                           weight_bytes and tensor_bytes (all tensors).
 *
 * The KV cache is read too (per token: context length x layers x KV width), which at the short
 * contexts of the benchmark is under 1% of the weights and left out.
 * Exit status: 0 done, 1 failure, 2 usage error. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"

#define COPY_BYTES (256u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct copier {
    char *src, *dst;
    double seconds; /* copy for this long */
    uint64_t bytes; /* copied */
} copier;

static void *copy_loop(void *arg)
{
    copier *c = arg;
    double end = now_s() + c->seconds;
    c->bytes = 0;
    do {
        memcpy(c->dst, c->src, COPY_BYTES);
        c->bytes += COPY_BYTES;
        c->src[c->bytes % COPY_BYTES] ^= 1; /* the copy is not loop-invariant */
    } while (now_s() < end);
    return NULL;
}

static void *read_loop(void *arg)
{
    copier *c = arg;
    double end = now_s() + c->seconds;
    const uint64_t *w = (const uint64_t *)c->src;
    size_t n = COPY_BYTES / sizeof *w;
    uint64_t acc[8] = {0};
    c->bytes = 0;
    do {
        for (size_t i = 0; i < n; i += 8)
            for (int k = 0; k < 8; k++)
                acc[k] += w[i + k];
        c->bytes += COPY_BYTES;
    } while (now_s() < end);
    c->dst[0] = (char)(acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7]);
    return NULL;
}

/* Best of 3 rounds of fn on every copier at once, in GB/s summed over the threads. */
static double rounds(copier *c, int threads, void *(*fn)(void *))
{
    pthread_t th[64];
    double best = 0;
    for (int round = 0; round < 3; round++) {
        double t0 = now_s();
        for (int i = 0; i < threads; i++)
            pthread_create(&th[i], NULL, fn, &c[i]);
        uint64_t bytes = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
            bytes += c[i].bytes;
        }
        double gbps = (double)bytes / (now_s() - t0) / 1e9;
        best = gbps > best ? gbps : best;
    }
    return best;
}

static int copy_bw(int threads)
{
    copier c[64];
    for (int i = 0; i < threads; i++) {
        c[i].src = malloc(COPY_BYTES);
        c[i].dst = malloc(COPY_BYTES);
        if (!c[i].src || !c[i].dst)
            return 1;
        memset(c[i].src, i + 1, COPY_BYTES); /* fault the pages in before timing */
        memset(c[i].dst, 0, COPY_BYTES);
        c[i].seconds = 0.5;
    }
    double copy = rounds(c, threads, copy_loop), read = rounds(c, threads, read_loop);
    for (int i = 0; i < threads; i++) {
        free(c[i].src);
        free(c[i].dst);
    }
    printf("copy_gbps=%.3f traffic_gbps=%.3f read_gbps=%.3f threads=%d\n", copy, 2 * copy, read,
           threads);
    return 0;
}

static int weights(const char *path)
{
    struct gguf_init_params p = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(path, p);
    if (!g) {
        fprintf(stderr, "membw: cannot read %s as GGUF\n", path);
        return 1;
    }
    int64_t n = gguf_get_n_tensors(g);
    uint64_t all = 0, embd = 0, embd_row = 0;
    int has_output = gguf_find_tensor(g, "output.weight") >= 0;
    for (int64_t i = 0; i < n; i++) {
        size_t sz = gguf_get_tensor_size(g, i);
        all += sz;
        if (strcmp(gguf_get_tensor_name(g, i), "token_embd.weight") == 0)
            embd = sz;
    }
    int64_t vocab = gguf_get_arr_n(g, gguf_find_key(g, "tokenizer.ggml.tokens"));
    if (vocab > 0)
        embd_row = embd / (uint64_t)vocab;
    uint64_t read = has_output ? all - embd + embd_row : all;
    printf("weight_bytes=%llu tensor_bytes=%llu tied=%d\n", (unsigned long long)read,
           (unsigned long long)all, !has_output);
    gguf_free(g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "copy") == 0) {
        int t = atoi(argv[2]);
        return t >= 1 && t <= 64 ? copy_bw(t) : 2;
    }
    if (argc == 3 && strcmp(argv[1], "weights") == 0)
        return weights(argv[2]);
    fprintf(stderr, "usage: membw copy THREADS | membw weights FILE.gguf\n");
    return 2;
}
