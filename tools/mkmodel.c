/*
 * mkmodel: write a llama-architecture GGUF with seeded random weights and a real tokenizer.
 *
 * Why this exists: Pendulum's tests, benchmarks and demo need a local model that llama-server
 * loads in about a second, that tokenizes exactly like a real Llama 3 (so token counts,
 * special tokens and chat templates behave as in production), and whose bytes are reproducible
 * from a seed. No weights can be downloaded on the build machines, but llama.cpp ships its
 * tokenizers as weightless `models/ggml-vocab-*.gguf` files; this tool grafts one of them onto a
 * transformer of any llama shape filled with pseudo-random numbers. The text it generates is
 * meaningless; its speed, memory footprint and file layout are those of a real model of that shape.
 *
 * How: the GGUF metadata (hyper-parameters, every `tokenizer.*` key of the vocab file, tensor
 * descriptors) is built in a gguf_context and written first; the tensor data is then generated
 * and streamed tensor by tensor through a fixed-size buffer, so a 2.5 GB model needs a few
 * hundred KB of memory beyond the tokenizer. Each tensor draws from its own PRNG stream, seeded
 * from (seed, tensor name), so its contents depend on nothing else: the output is identical for
 * the same seed and shape on every machine, whatever the write order or buffer size.
 *
 * The weights. Matrices are bell-shaped noise with std 1/sqrt(fan_in) (and the two projections
 * that write back into the residual stream further divided by sqrt(2 * n_layer)), token
 * embeddings and the output matrix std 1/sqrt(n_embd), norms 1: every activation then stays of
 * order 1 whatever the shape, and the logits have std ~1, so sampling yields varied tokens.
 *
 * Pure noise is not enough for llama-server: about one token in a hundred of a byte-level BPE
 * vocab (1352 of llama-bpe's 128256) is a fragment of a multi-byte UTF-8 character, so a few
 * hundred random picks emit invalid UTF-8, which llama-server's chat parser rejects with
 * HTTP 500 (and which is no test of a gateway); random picks of control tokens would also end
 * or garble generations at random. So the model carries a "bias channel": dimension 0 of the
 * residual stream holds the constant BIAS_CHANNEL for every token (its column in the embedding
 * is constant, and the rows of attn_output and ffn_down that would write to it are zero), and
 * the output matrix has -BAN_WEIGHT in that column for every banned token: control, unknown and
 * unused tokens, and those whose bytes are not valid UTF-8 on their own. Their logits sit ~100
 * below the others: the model never emits them, so every generation is valid UTF-8 and runs to
 * max_tokens (it never emits EOS). With tied embeddings the column is shared: banned tokens'
 * embeddings then carry -BAN_WEIGHT in dimension 0, which is harmless inside a prompt but means
 * that a prompt whose LAST token is banned (e.g. a bare BOS) is continued with banned tokens;
 * chat prompts end with an ordinary token, so chat is unaffected.
 *
 * The output is written to OUT.tmp and renamed over OUT only when complete, so an interrupted
 * run never leaves a truncated model that `make` would take as up to date.
 *
 * Usage: mkmodel --vocab FILE -o OUT [--preset tiny|1b] [--seed N] [--type f32|f16]
 *                [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N] [--ctx N]
 *                [--tied | --untied]
 * Exit status: 0 written, 1 runtime failure (message on stderr), 2 usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ggml.h"
#include "gguf.h"

/* Bounds on every shape parameter: far above any model this tool is meant for, low enough that
 * products like n_embd * n_vocab cannot overflow int64 and a typo fails fast instead of filling
 * the disk. LLAMA_MAX_LAYERS in llama.cpp is 512. */
#define MAX_EMBD   16384
#define MAX_LAYER  512
#define MAX_HEAD   256
#define MAX_FF     65536
#define MAX_CTX    (1 << 20)
#define MAX_VOCAB  (1 << 20)
#define MAX_PATH_LEN 4000

/* Elements generated per write: 64 Ki floats (256 KB) keeps memory flat and fwrite efficient. */
#define CHUNK_ELEMS (64 * 1024)

/* The bias channel (see the top): the residual stream's dimension 0 is BIAS_CHANNEL, about twice
 * the typical magnitude of the other dimensions (~1 with the init below), so after the final RMS
 * norm it should be ~2-3; times -BAN_WEIGHT that puts banned logits ~100 below the rest. Even if
 * the estimate is off by a factor of 5, e^-16 per banned token keeps them out of any sample, at
 * temperature 2 as well. Both values are exact in f16. */
#define BIAS_CHANNEL 2.0f
#define BAN_WEIGHT   40.0f

#define ROPE_FREQ_BASE 500000.0f /* Llama 3's */
#define RMS_EPS        1e-5f

struct shape {
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    enum ggml_type wtype; /* type of the 2-D weights; 1-D norms are always f32 */
    bool tied;            /* no output.weight: the output projection reuses token_embd */
};

struct preset {
    const char *name;
    struct shape shape;
};

/* tiny: 41 MB with llama-bpe (the 128k-token embedding and output dominate), generates ~1000
 * tokens/s on one core; untied so that any prompt is safe (see tied embeddings at the top).
 * 1b: the shape of Llama-3.2-1B, tied like the real one; ctx 8192 rather than its 131072 so that
 * a plain `llama-server -m` does not reserve a 4 GB KV cache (--ctx 131072 for the full length). */
static const struct preset presets[] = {
    {"tiny", {64, 2, 4, 2, 128, 2048, GGML_TYPE_F16, false}},
    {"1b", {2048, 16, 32, 8, 8192, 8192, GGML_TYPE_F16, true}},
};

/* Chat templates for vocab files that carry none, chosen by the special tokens the vocab has so
 * that the template's markers tokenize as single control tokens. The first one whose tokens all
 * exist wins; "plain" needs none and always matches. */
struct chat_template {
    const char *name;
    const char *needs[2];
    const char *text;
};

static const struct chat_template templates[] = {
    {"llama3",
     {"<|start_header_id|>", "<|eot_id|>"},
     "{{- bos_token }}"
     "{%- for message in messages %}"
     "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
     " + message['content'] | trim + '<|eot_id|>' }}"
     "{%- endfor %}"
     "{%- if add_generation_prompt %}"
     "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
     "{%- endif %}"},
    {"chatml",
     {"<|im_start|>", "<|im_end|>"},
     "{%- for message in messages %}"
     "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
     "{%- endfor %}"
     "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"},
    {"plain",
     {NULL, NULL},
     "{%- for message in messages %}"
     "{{- message['role'] + ': ' + message['content'] + '\\n' }}"
     "{%- endfor %}"
     "{%- if add_generation_prompt %}{{- 'assistant: ' }}{%- endif %}"},
};

struct opts {
    const char *vocab;
    const char *out;
    uint64_t seed;
    struct shape shape;
};

/* ---- command line ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mkmodel --vocab FILE -o OUT [--preset tiny|1b] [--seed N] [--type f32|f16]\n"
            "               [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N]\n"
            "               [--ctx N] [--tied | --untied]\n"
            "Writes a llama-architecture GGUF with random weights (deterministic for a seed)\n"
            "and the tokenizer of FILE (a llama.cpp models/ggml-vocab-*.gguf).\n"
            "presets: tiny = 64 embd, 2 layers, 4 heads (2 kv), ff 128, ctx 2048, f16, untied\n"
            "         1b   = Llama-3.2-1B shape: 2048 embd, 16 layers, 32 heads (8 kv), ff 8192,\n"
            "                ctx 8192, f16, tied embeddings\n");
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_type(const char *s, enum ggml_type *out)
{
    if (strcmp(s, "f32") == 0)
        *out = GGML_TYPE_F32;
    else if (strcmp(s, "f16") == 0)
        *out = GGML_TYPE_F16;
    else
        return false;
    return true;
}

static const struct preset *find_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

/* Overrides are collected apart from the preset so that flag order does not matter. */
struct overrides {
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx; /* -1: keep the preset's */
    int type;                                                  /* -1 or an enum ggml_type */
    int tied;                                                  /* -1, 0 or 1 */
};

/* Returns the slot a numeric shape flag writes to, with its bounds; NULL if not one. */
static int64_t *shape_flag(struct overrides *ov, const char *flag, int64_t *hi)
{
    static const struct {
        const char *flag;
        size_t off;
        int64_t hi;
    } table[] = {
        {"--n-embd", offsetof(struct overrides, n_embd), MAX_EMBD},
        {"--n-layer", offsetof(struct overrides, n_layer), MAX_LAYER},
        {"--n-head", offsetof(struct overrides, n_head), MAX_HEAD},
        {"--n-head-kv", offsetof(struct overrides, n_head_kv), MAX_HEAD},
        {"--n-ff", offsetof(struct overrides, n_ff), MAX_FF},
        {"--ctx", offsetof(struct overrides, n_ctx), MAX_CTX},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(flag, table[i].flag) == 0) {
            *hi = table[i].hi;
            return (int64_t *)((char *)ov + table[i].off);
        }
    }
    return NULL;
}

/* Parses one flag that takes a value; returns false (after a message) on a bad value. */
static bool parse_valued(struct opts *o, struct overrides *ov, const char **preset,
                         const char *flag, const char *val)
{
    int64_t hi, v;
    int64_t *slot = shape_flag(ov, flag, &hi);
    enum ggml_type t;

    if (slot) {
        if (!parse_i64(val, 1, hi, &v))
            goto bad;
        *slot = v;
    } else if (strcmp(flag, "--vocab") == 0) {
        o->vocab = val;
    } else if (strcmp(flag, "-o") == 0) {
        o->out = val;
    } else if (strcmp(flag, "--preset") == 0) {
        *preset = val;
    } else if (strcmp(flag, "--seed") == 0) {
        if (!parse_i64(val, 0, INT64_MAX, &v))
            goto bad;
        o->seed = (uint64_t)v;
    } else if (strcmp(flag, "--type") == 0) {
        if (!parse_type(val, &t))
            goto bad;
        ov->type = (int)t;
    } else {
        fprintf(stderr, "mkmodel: unknown option %s\n", flag);
        return false;
    }
    return true;
bad:
    fprintf(stderr, "mkmodel: bad value for %s: '%s'\n", flag, val);
    return false;
}

static void apply_overrides(struct shape *s, const struct overrides *ov)
{
    if (ov->n_embd > 0) s->n_embd = ov->n_embd;
    if (ov->n_layer > 0) s->n_layer = ov->n_layer;
    if (ov->n_head > 0) s->n_head = ov->n_head;
    if (ov->n_head_kv > 0) s->n_head_kv = ov->n_head_kv;
    if (ov->n_ff > 0) s->n_ff = ov->n_ff;
    if (ov->n_ctx > 0) s->n_ctx = ov->n_ctx;
    if (ov->type >= 0) s->wtype = (enum ggml_type)ov->type;
    if (ov->tied >= 0) s->tied = ov->tied;
}

/* The constraints llama.cpp's llama loader and RoPE impose on a shape. */
static bool check_shape(const struct shape *s)
{
    const char *why = NULL;
    if (s->n_embd % s->n_head)
        why = "n_embd must be a multiple of n_head";
    else if ((s->n_embd / s->n_head) % 2)
        why = "the head size n_embd/n_head must be even (RoPE rotates pairs)";
    else if (s->n_head_kv > s->n_head || s->n_head % s->n_head_kv)
        why = "n_head must be a multiple of n_head_kv";
    if (why)
        fprintf(stderr, "mkmodel: %s\n", why);
    return why == NULL;
}

/* Returns 0 when o is filled in, 2 on a usage error (message printed), -1 after --help. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    struct overrides ov = {-1, -1, -1, -1, -1, -1, -1, -1};
    const char *preset_name = "tiny";

    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "--tied") == 0 || strcmp(a, "--untied") == 0) {
            ov.tied = strcmp(a, "--tied") == 0;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "mkmodel: %s needs a value\n", a);
            return 2;
        } else if (!parse_valued(o, &ov, &preset_name, a, argv[++i])) {
            return 2;
        }
    }
    const struct preset *p = find_preset(preset_name);
    if (!p) {
        fprintf(stderr, "mkmodel: unknown preset '%s' (tiny, 1b)\n", preset_name);
        return 2;
    }
    if (!o->vocab || !o->out) {
        usage(stderr);
        return 2;
    }
    if (strlen(o->out) > MAX_PATH_LEN) {
        fprintf(stderr, "mkmodel: output path too long\n");
        return 2;
    }
    o->shape = p->shape;
    apply_overrides(&o->shape, &ov);
    return check_shape(&o->shape) ? 0 : 2;
}

/* ---- metadata ---------------------------------------------------------------------------- */

/* Keeps only the tokenizer.* keys of the vocab file: its llama.* / general.* keys describe the
 * model the vocab was taken from, not the one written here. Walks backwards because removing a
 * key shifts the ids of those after it. */
static void keep_tokenizer_keys(struct gguf_context *vocab)
{
    for (int64_t i = gguf_get_n_kv(vocab) - 1; i >= 0; i--) {
        /* copied: the key's storage goes away with the key */
        char *key = strdup(gguf_get_key(vocab, i));
        if (!key)
            abort(); /* a few bytes: see STYLE.md on small internal allocations */
        if (strncmp(key, "tokenizer.", 10) != 0)
            gguf_remove_key(vocab, key);
        free(key);
    }
}

static bool vocab_has_token(const struct gguf_context *vocab, int64_t tokens_id, const char *tok)
{
    size_t n = gguf_get_arr_n(vocab, tokens_id);
    for (size_t i = 0; i < n; i++)
        if (strcmp(gguf_get_arr_str(vocab, tokens_id, i), tok) == 0)
            return true;
    return false;
}

/* Returns the name of the template in effect: "vocab" when the file brought its own. */
static const char *ensure_chat_template(struct gguf_context *vocab, int64_t tokens_id)
{
    if (gguf_find_key(vocab, "tokenizer.chat_template") >= 0)
        return "vocab";
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
        const struct chat_template *t = &templates[i];
        bool ok = true;
        for (int j = 0; j < 2 && t->needs[j]; j++)
            ok = ok && vocab_has_token(vocab, tokens_id, t->needs[j]);
        if (ok) {
            gguf_set_val_str(vocab, "tokenizer.chat_template", t->text);
            return t->name;
        }
    }
    return "none"; /* unreachable: "plain" always matches */
}

static void set_hparams(struct gguf_context *g, const struct shape *s, uint64_t seed,
                        int64_t n_vocab)
{
    char desc[160];
    snprintf(desc, sizeof desc,
             "random weights (seed %" PRIu64 ") made by pendulum tools/mkmodel: output is meaningless",
             seed);
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.type", "model");
    gguf_set_val_str(g, "general.name", "pendulum-random-llama");
    gguf_set_val_str(g, "general.description", desc);
    gguf_set_val_u32(g, "general.file_type", s->wtype == GGML_TYPE_F16 ? 1 : 0); /* LLAMA_FTYPE_* */
    gguf_set_val_u32(g, "llama.vocab_size", (uint32_t)n_vocab);
    gguf_set_val_u32(g, "llama.context_length", (uint32_t)s->n_ctx);
    gguf_set_val_u32(g, "llama.embedding_length", (uint32_t)s->n_embd);
    gguf_set_val_u32(g, "llama.block_count", (uint32_t)s->n_layer);
    gguf_set_val_u32(g, "llama.feed_forward_length", (uint32_t)s->n_ff);
    gguf_set_val_u32(g, "llama.attention.head_count", (uint32_t)s->n_head);
    gguf_set_val_u32(g, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", RMS_EPS);
    gguf_set_val_u32(g, "llama.rope.dimension_count", (uint32_t)(s->n_embd / s->n_head));
    gguf_set_val_f32(g, "llama.rope.freq_base", ROPE_FREQ_BASE);
}

/* Opens the vocab file (metadata only), checks it has a token list and returns its size. */
static struct gguf_context *load_vocab(const char *path, int64_t *tokens_id, int64_t *n_vocab)
{
    struct gguf_init_params p = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *v = gguf_init_from_file(path, p);
    if (!v) {
        fprintf(stderr, "mkmodel: cannot read GGUF vocab file %s\n", path);
        return NULL;
    }
    *tokens_id = gguf_find_key(v, "tokenizer.ggml.tokens");
    if (*tokens_id < 0 || gguf_get_kv_type(v, *tokens_id) != GGUF_TYPE_ARRAY ||
        gguf_get_arr_type(v, *tokens_id) != GGUF_TYPE_STRING) {
        fprintf(stderr, "mkmodel: %s has no tokenizer.ggml.tokens string array\n", path);
        gguf_free(v);
        return NULL;
    }
    *n_vocab = (int64_t)gguf_get_arr_n(v, *tokens_id);
    if (*n_vocab < 1 || *n_vocab > MAX_VOCAB) {
        fprintf(stderr, "mkmodel: %s: unreasonable vocab size %" PRId64 "\n", path, *n_vocab);
        gguf_free(v);
        return NULL;
    }
    return v;
}

/* ---- tensor descriptors ------------------------------------------------------------------ */

/* Creates a data-less tensor in ctx (which must have room) and registers it in g. */
static void add_tensor(struct ggml_context *ctx, struct gguf_context *g, const char *name,
                       enum ggml_type type, int64_t ne0, int64_t ne1)
{
    struct ggml_tensor *t = ne1 > 0 ? ggml_new_tensor_2d(ctx, type, ne0, ne1)
                                    : ggml_new_tensor_1d(ctx, type, ne0);
    ggml_set_name(t, name);
    gguf_add_tensor(g, t);
}

static void add_block(struct ggml_context *ctx, struct gguf_context *g, const struct shape *s,
                      int il)
{
    const int64_t head = s->n_embd / s->n_head, kv = head * s->n_head_kv, e = s->n_embd;
    const enum ggml_type w = s->wtype;
    char n[GGML_MAX_NAME];

#define BLK(suffix, type, ne0, ne1)                                   \
    do {                                                              \
        snprintf(n, sizeof n, "blk.%d." suffix ".weight", il);         \
        add_tensor(ctx, g, n, type, ne0, ne1);                        \
    } while (0)
    /* Shapes as llama.cpp's llama_model_llama::load_arch_tensors expects them: {ne0, ne1} with
     * ne0 the input dimension. */
    BLK("attn_norm", GGML_TYPE_F32, e, 0);
    BLK("attn_q", w, e, head * s->n_head);
    BLK("attn_k", w, e, kv);
    BLK("attn_v", w, e, kv);
    BLK("attn_output", w, head * s->n_head, e);
    BLK("ffn_norm", GGML_TYPE_F32, e, 0);
    BLK("ffn_gate", w, e, s->n_ff);
    BLK("ffn_up", w, e, s->n_ff);
    BLK("ffn_down", w, s->n_ff, e);
#undef BLK
}

#define TENSORS_PER_BLOCK 9

/* Adds every tensor descriptor to g; ctx holds the descriptors and is freed by the caller. */
static struct ggml_context *add_tensors(struct gguf_context *g, const struct shape *s,
                                        int64_t n_vocab)
{
    const size_t n_tensors = 3 + TENSORS_PER_BLOCK * (size_t)s->n_layer;
    struct ggml_init_params p = {
        .mem_size = n_tensors * ggml_tensor_overhead(),
        .mem_buffer = NULL,
        .no_alloc = true, /* descriptors only: the data is generated while writing */
    };
    struct ggml_context *ctx = ggml_init(p);
    if (!ctx) {
        fprintf(stderr, "mkmodel: ggml_init failed\n");
        return NULL;
    }
    add_tensor(ctx, g, "token_embd.weight", s->wtype, s->n_embd, n_vocab);
    for (int il = 0; il < s->n_layer; il++)
        add_block(ctx, g, s, il);
    add_tensor(ctx, g, "output_norm.weight", GGML_TYPE_F32, s->n_embd, 0);
    if (!s->tied)
        add_tensor(ctx, g, "output.weight", s->wtype, s->n_embd, n_vocab);
    return ctx;
}

/* ---- banned tokens ----------------------------------------------------------------------- */

/* llama_token_type values found in tokenizer.ggml.token_type. */
enum { TT_UNDEFINED, TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE };

/* Decodes one UTF-8 code point at s[*i] (advancing *i); -1 when malformed, overlong, a surrogate
 * or past U+10FFFF. */
static int32_t utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    static const int32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    unsigned char c = s[(*i)++];
    int len = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (len < 0)
        return -1;
    int32_t cp = len == 0 ? c : c & (0x3f >> len);
    for (int k = 0; k < len; k++) {
        if (*i >= n || (s[*i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[(*i)++] & 0x3f);
    }
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    return cp;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n)
        if (utf8_next(s, n, &i) < 0)
            return false;
    return true;
}

/* GPT-2's byte-level BPE writes each byte as a printable code point: bytes that are printable
 * Latin-1 stand for themselves, the 68 others for U+0100.. in byte order. */
static bool gpt2_printable(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

/* The bytes a gpt2-model token stands for are valid UTF-8 on their own. */
static bool gpt2_token_valid(const char *text)
{
    static int16_t byte_of[256 + 68]; /* code point -> byte, -1 if none; built once */
    static bool built;
    if (!built) {
        int next = 256;
        for (int cp = 0; cp < 256 + 68; cp++)
            byte_of[cp] = -1;
        for (int b = 0; b < 256; b++)
            byte_of[gpt2_printable(b) ? b : next++] = (int16_t)b;
        built = true;
    }
    unsigned char bytes[512];
    size_t nb = 0, i = 0, n = strlen(text);
    while (i < n) {
        int32_t cp = utf8_next((const unsigned char *)text, n, &i);
        if (cp < 0 || cp >= 256 + 68 || byte_of[cp] < 0 || nb == sizeof bytes)
            return false;
        bytes[nb++] = (unsigned char)byte_of[cp];
    }
    return utf8_valid(bytes, nb);
}

/* SentencePiece byte tokens are "<0xXX>": only ASCII ones are valid on their own. */
static bool byte_token_valid(const char *text)
{
    unsigned v;
    return sscanf(text, "<0x%2X>", &v) == 1 && v < 0x80;
}

static bool token_banned(const char *text, int32_t type, bool gpt2)
{
    switch (type) {
    case TT_UNKNOWN:
    case TT_CONTROL:
    case TT_UNUSED:
        return true;
    case TT_BYTE:
        return !byte_token_valid(text);
    case TT_USER_DEFINED: /* llama.cpp outputs these verbatim */
        return !utf8_valid((const unsigned char *)text, strlen(text));
    default:
        return gpt2 ? !gpt2_token_valid(text)
                    : !utf8_valid((const unsigned char *)text, strlen(text));
    }
}

/* Returns a malloc'ed flag per token (caller frees), NULL after a message on failure. */
static bool *find_banned(const struct gguf_context *v, int64_t tokens_id, int64_t n_vocab,
                         int64_t *n_banned)
{
    const int64_t model_id = gguf_find_key(v, "tokenizer.ggml.model");
    const bool gpt2 = model_id >= 0 && gguf_get_kv_type(v, model_id) == GGUF_TYPE_STRING &&
                      strcmp(gguf_get_val_str(v, model_id), "gpt2") == 0;
    const int64_t types_id = gguf_find_key(v, "tokenizer.ggml.token_type");
    const int32_t *types = NULL;
    if (types_id >= 0 && gguf_get_kv_type(v, types_id) == GGUF_TYPE_ARRAY &&
        gguf_get_arr_type(v, types_id) == GGUF_TYPE_INT32 &&
        (int64_t)gguf_get_arr_n(v, types_id) == n_vocab)
        types = gguf_get_arr_data(v, types_id);

    bool *banned = calloc((size_t)n_vocab, sizeof *banned);
    if (!banned) {
        fprintf(stderr, "mkmodel: out of memory\n");
        return NULL;
    }
    *n_banned = 0;
    for (int64_t t = 0; t < n_vocab; t++) {
        banned[t] = token_banned(gguf_get_arr_str(v, tokens_id, (size_t)t),
                                 types ? types[t] : TT_NORMAL, gpt2);
        *n_banned += banned[t];
    }
    if (*n_banned == n_vocab) {
        fprintf(stderr, "mkmodel: every token of the vocab would be banned\n");
        free(banned);
        return NULL;
    }
    return banned;
}

/* ---- random data ------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* Fills out[0..n) with mean 0, std `std` noise. Irwin-Hall of four 16-bit uniforms from one
 * 64-bit draw: bell-shaped, bounded at 2*sqrt(3) std (no outliers to overflow f16), and about
 * ten times cheaper than Box-Muller, which matters for the 1.2 G values of the 1b preset. */
static void fill_normalish(uint64_t *state, float std, float *out, size_t n)
{
    /* sum of 4 U(0,1) has mean 2 and variance 1/3 */
    const float scale = std * 1.7320508f / 65536.0f;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(state);
        uint32_t sum = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) +
                       (uint32_t)((r >> 32) & 0xffff) + (uint32_t)(r >> 48);
        out[i] = ((float)sum - 2.0f * 65536.0f) * scale;
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* How one tensor is filled, derived from its name (see the design note at the top). */
enum col0 { COL0_KEEP, COL0_EMBD, COL0_OUTPUT };
struct fill {
    bool ones;       /* norms */
    float std;       /* noise otherwise */
    enum col0 col0;  /* what dimension 0 of each row (token) holds */
    bool zero_row0;  /* no write into residual dimension 0 */
};

static struct fill fill_for(const char *name, const int64_t *ne, const struct shape *s)
{
    struct fill f = {.ones = ends_with(name, "norm.weight"), .std = 1.0f / sqrtf((float)ne[0])};
    if (strcmp(name, "token_embd.weight") == 0) {
        f.col0 = COL0_EMBD;
    } else if (strcmp(name, "output.weight") == 0) {
        f.col0 = COL0_OUTPUT;
    } else if (ends_with(name, "attn_output.weight") || ends_with(name, "ffn_down.weight")) {
        f.std /= sqrtf(2.0f * (float)s->n_layer);
        f.zero_row0 = true;
    }
    return f;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* What the data section is made from; read-only while writing. */
struct model {
    const struct gguf_context *g;
    const struct shape *shape;
    const bool *banned; /* per token */
    uint64_t seed;
};

struct writer {
    FILE *f;
    uint64_t pos;      /* bytes written so far */
    float *f32;        /* CHUNK_ELEMS scratch values */
    ggml_fp16_t *f16;  /* CHUNK_ELEMS converted values */
};

static bool put(struct writer *w, const void *p, size_t n)
{
    if (fwrite(p, 1, n, w->f) != n)
        return false;
    w->pos += n;
    return true;
}

static bool pad_to(struct writer *w, size_t align)
{
    static const char zeros[64];
    while (w->pos % align) {
        size_t n = align - w->pos % align;
        if (!put(w, zeros, n < sizeof zeros ? n : sizeof zeros))
            return false;
    }
    return true;
}

/* The value of dimension 0 of token t's row in token_embd / output. */
static float col0_value(const struct model *m, enum col0 c, int64_t t)
{
    if (c == COL0_EMBD)
        return m->shape->tied && m->banned[t] ? -BAN_WEIGHT : BIAS_CHANNEL;
    return m->banned[t] ? -BAN_WEIGHT : 0.0f;
}

/* Fills elements [first, first + n) of a tensor with rows of ne0 elements into buf. Noise is
 * drawn for every element, overridden ones included, so the stream (and so every other value)
 * does not depend on the chunking. */
static void fill_chunk(const struct model *m, const struct fill *f, uint64_t *state,
                       int64_t ne0, int64_t first, float *buf, size_t n)
{
    if (f->ones) {
        for (size_t i = 0; i < n; i++)
            buf[i] = 1.0f;
        return;
    }
    fill_normalish(state, f->std, buf, n);
    if (f->col0 != COL0_KEEP) {
        for (int64_t k = (first + ne0 - 1) / ne0 * ne0; k < first + (int64_t)n; k += ne0)
            buf[k - first] = col0_value(m, f->col0, k / ne0);
    }
    if (f->zero_row0) {
        for (int64_t k = first; k < ne0 && k < first + (int64_t)n; k++)
            buf[k - first] = 0.0f;
    }
}

/* Generates and writes one tensor's data from its own PRNG stream. */
static bool write_tensor(struct writer *w, const struct model *m, int64_t id)
{
    const char *name = gguf_get_tensor_name(m->g, id);
    const enum ggml_type type = gguf_get_tensor_type(m->g, id);
    const int64_t *ne = gguf_get_tensor_ne(m->g, id);
    const struct fill f = fill_for(name, ne, m->shape);
    const int64_t total = ne[0] * ne[1] * ne[2] * ne[3];
    uint64_t state = m->seed ^ fnv1a(name);

    for (int64_t done = 0; done < total;) {
        size_t n = total - done < CHUNK_ELEMS ? (size_t)(total - done) : CHUNK_ELEMS;
        fill_chunk(m, &f, &state, ne[0], done, w->f32, n);
        bool ok;
        if (type == GGML_TYPE_F16) {
            ggml_fp32_to_fp16_row(w->f32, w->f16, (int64_t)n);
            ok = put(w, w->f16, n * sizeof *w->f16);
        } else {
            ok = put(w, w->f32, n * sizeof *w->f32);
        }
        if (!ok)
            return false;
        done += (int64_t)n;
    }
    return true;
}

/* Streams the data section after the metadata, checking each tensor lands at the offset the
 * metadata announced (a mismatch would make llama.cpp read garbage, not fail). */
static bool write_data(struct writer *w, const struct model *m)
{
    const size_t align = gguf_get_alignment(m->g);
    const uint64_t data_start = w->pos;

    for (int64_t id = 0; id < gguf_get_n_tensors(m->g); id++) {
        if (w->pos - data_start != gguf_get_tensor_offset(m->g, id)) {
            fprintf(stderr, "mkmodel: internal error: %s at %" PRIu64 ", expected %zu\n",
                    gguf_get_tensor_name(m->g, id), w->pos - data_start,
                    gguf_get_tensor_offset(m->g, id));
            return false;
        }
        if (!write_tensor(w, m, id) || !pad_to(w, align))
            return false;
    }
    return true;
}

/* Writes the whole file at path (truncating it) and its size to *bytes; false after a message
 * on failure. */
static bool write_file(const char *path, const struct model *m, uint64_t *bytes)
{
    struct writer w = {
        .f = fopen(path, "wb"),
        .f32 = malloc(CHUNK_ELEMS * sizeof(float)),
        .f16 = malloc(CHUNK_ELEMS * sizeof(ggml_fp16_t)),
    };
    bool ok = w.f && w.f32 && w.f16;

    if (ok)
        ok = gguf_write_to_file_ptr(m->g, w.f, /*only_meta=*/true);
    if (ok) {
        long meta = ftell(w.f); /* the metadata writer pads to the alignment itself */
        ok = meta > 0;
        w.pos = (uint64_t)meta;
    }
    ok = ok && write_data(&w, m);
    *bytes = w.pos;
    if (w.f && fclose(w.f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "mkmodel: writing %s failed: %s\n", path, errno ? strerror(errno) : "?");
    free(w.f32);
    free(w.f16);
    return ok;
}

/* ---- main -------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const struct opts *o, int64_t n_vocab, int64_t n_banned, const char *tmpl,
                   uint64_t bytes, double secs)
{
    const struct shape *s = &o->shape;
    printf("mkmodel: wrote %s: llama %" PRId64 " embd, %" PRId64 " layers, %" PRId64 "/%" PRId64
           " heads, ff %" PRId64 ", ctx %" PRId64 ", vocab %" PRId64 " (%" PRId64
           " never emitted), %s%s, chat template %s, %.1f MB in %.1f s\n",
           o->out, s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->n_ff, s->n_ctx, n_vocab,
           n_banned, ggml_type_name(s->wtype), s->tied ? " tied" : "", tmpl, (double)bytes / 1e6,
           secs);
}

/* Writes o->out from the vocab's tokenizer and a gguf context g already holding the
 * hyper-parameters; false after a message on failure. */
static bool build(const struct opts *o, struct gguf_context *g, struct gguf_context *vocab,
                  int64_t tokens_id, int64_t n_vocab, const char *tmpl, double t0)
{
    int64_t n_banned = 0;
    bool *banned = find_banned(vocab, tokens_id, n_vocab, &n_banned);
    if (!banned)
        return false;
    keep_tokenizer_keys(vocab);
    gguf_set_kv(g, vocab); /* every tokenizer.* key, merges and token types included */

    struct ggml_context *tctx = add_tensors(g, &o->shape, n_vocab);
    const struct model m = {.g = g, .shape = &o->shape, .banned = banned, .seed = o->seed};
    char tmp[MAX_PATH_LEN + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
    uint64_t bytes = 0;
    bool ok = tctx && write_file(tmp, &m, &bytes);
    if (ok && rename(tmp, o->out) != 0) {
        fprintf(stderr, "mkmodel: rename %s -> %s: %s\n", tmp, o->out, strerror(errno));
        ok = false;
    }
    if (ok)
        report(o, n_vocab, n_banned, tmpl, bytes, now_s() - t0);
    else
        unlink(tmp);
    ggml_free(tctx);
    free(banned);
    return ok;
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;

    const double t0 = now_s();
    int64_t tokens_id, n_vocab;
    struct gguf_context *vocab = load_vocab(o.vocab, &tokens_id, &n_vocab);
    if (!vocab)
        return 1;
    const char *tmpl = ensure_chat_template(vocab, tokens_id);

    struct gguf_context *g = gguf_init_empty();
    set_hparams(g, &o.shape, o.seed, n_vocab);
    bool ok = build(&o, g, vocab, tokens_id, n_vocab, tmpl, t0);
    gguf_free(vocab);
    gguf_free(g);
    return ok ? 0 : 1;
}
