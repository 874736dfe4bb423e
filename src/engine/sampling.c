/* sampling.c: per-choice sampler chains and logprobs.
 *
 * The chain is llama-server's default one with its no-op members left out (DRY, typical,
 * top-n-sigma and XTC are disabled by default there): [penalties] top_k top_p min_p
 * temperature dist, plus the model's suppressed tokens. Same samplers, same order, same seed:
 * a seeded request samples the same tokens here as through llama-server. Temperature 0 keeps
 * only the largest logit, so greedy decoding needs no chain: a plain argmax over the logits
 * gives the same token without building a 128k-entry candidate array per step. */
#include "engine/engine_int.h"

#include <math.h>
#include <stdlib.h>

/* llama-server's defaults (common/common.h common_params_sampling). */
#define DEF_TEMPERATURE 0.8f
#define DEF_TOP_K 40
#define DEF_TOP_P 0.95f
#define DEF_MIN_P 0.05f
#define PENALTY_LAST_N 64

pd_result pd_engine_sampling_from(const pd_chat_sampling *in, job_sampling *out, pd_api_error *err)
{
    *out = (job_sampling){DEF_TEMPERATURE, DEF_TOP_P,          DEF_MIN_P, 0, 0,
                          DEF_TOP_K,       LLAMA_DEFAULT_SEED, false};
    if (in->has_temperature)
        out->temperature = (float)in->temperature;
    if (in->has_top_p)
        out->top_p = (float)in->top_p;
    if (in->has_min_p)
        out->min_p = (float)in->min_p;
    if (in->has_top_k)
        out->top_k = in->top_k > INT32_MAX ? INT32_MAX : (int32_t)in->top_k;
    if (in->has_seed)
        out->seed = (uint32_t)in->seed;
    if (in->has_presence_penalty)
        out->presence = (float)in->presence_penalty;
    if (in->has_frequency_penalty)
        out->frequency = (float)in->frequency_penalty;
    out->penalties = out->presence != 0 || out->frequency != 0;
    if (!isfinite(out->temperature) || out->temperature < 0 || !isfinite(out->top_p) ||
        out->top_p < 0 || out->top_p > 1 || !isfinite(out->min_p) || out->min_p < 0 ||
        out->min_p > 1) {
        pd_openai_error_set(err, 400, NULL, NULL, NULL,
                            "temperature must be >= 0, top_p and min_p within 0..1");
        return PD_ERR_INVALID;
    }
    return PD_OK;
}

static void add_suppressed(struct llama_sampler *chain, const struct llama_vocab *vocab)
{
    int32_t n = 0;
    const llama_token *ids = llama_vocab_get_suppress_tokens(vocab, &n);
    if (n <= 0)
        return;
    llama_logit_bias *bias = calloc((size_t)n, sizeof *bias);
    if (!bias)
        abort();
    for (int32_t i = 0; i < n; i++)
        bias[i] = (llama_logit_bias){ids[i], -INFINITY};
    llama_sampler_chain_add(chain,
                            llama_sampler_init_logit_bias(llama_vocab_n_tokens(vocab), n, bias));
    free(bias);
}

struct llama_sampler *pd_engine_sampler_new(const struct llama_vocab *vocab, const job_sampling *s,
                                            uint32_t seed_offset)
{
    int32_t n_suppress = 0;
    llama_vocab_get_suppress_tokens(vocab, &n_suppress);
    if (s->temperature <= 0 && !s->penalties && n_suppress <= 0)
        return NULL; /* greedy: argmax */

    struct llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    struct llama_sampler *c = llama_sampler_chain_init(cp);
    add_suppressed(c, vocab);
    if (s->penalties)
        llama_sampler_chain_add(c, llama_sampler_init_penalties(llama_vocab_n_tokens(vocab),
                                                                PENALTY_LAST_N, 1.0f, s->frequency,
                                                                s->presence));
    llama_sampler_chain_add(c, llama_sampler_init_top_k(s->top_k));
    llama_sampler_chain_add(c, llama_sampler_init_top_p(s->top_p, 0));
    llama_sampler_chain_add(c, llama_sampler_init_min_p(s->min_p, 0));
    llama_sampler_chain_add(c, llama_sampler_init_temp_ext(s->temperature, 0.0f, 1.0f));
    uint32_t seed = s->seed == LLAMA_DEFAULT_SEED ? s->seed : s->seed + seed_offset;
    llama_sampler_chain_add(c, llama_sampler_init_dist(seed));
    return c;
}

/* The first index of the largest value. Two passes: the maximum over 8 independent lanes
   (the compiler turns this into vector max instructions; a running "best index" loop is a
   chain of dependent loads, 4x slower over a 128k vocabulary), then its first position. */
static llama_token argmax(const float *v, int32_t n)
{
    float lane[8];
    for (int k = 0; k < 8; k++)
        lane[k] = -INFINITY;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            lane[k] = v[i + k] > lane[k] ? v[i + k] : lane[k];
    float max = lane[0];
    for (int k = 1; k < 8; k++)
        max = lane[k] > max ? lane[k] : max;
    for (; i < n; i++)
        max = v[i] > max ? v[i] : max;
    for (i = 0; i < n; i++)
        if (v[i] == max)
            return i;
    return 0; /* all NaN */
}

llama_token pd_engine_sample(struct llama_context *ctx, struct llama_sampler *smpl, int32_t idx)
{
    if (smpl)
        return llama_sampler_sample(smpl, ctx, idx);
    const float *logits = llama_get_logits_ith(ctx, idx);
    int32_t n = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    return argmax(logits, n);
}

/* Inserts (id, logit) into the descending top list of size *n (at most cap). */
static void top_insert(int32_t *ids, float *vals, uint32_t *n, uint32_t cap, int32_t id, float v)
{
    if (*n == cap && v <= vals[cap - 1])
        return;
    uint32_t i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && vals[i - 1] < v) {
        ids[i] = ids[i - 1];
        vals[i] = vals[i - 1];
        i--;
    }
    ids[i] = id;
    vals[i] = v;
}

void pd_engine_logprobs(const struct llama_vocab *vocab, const float *logits, int32_t n_vocab,
                        llama_token token, uint32_t n_top, pd_engine_tok *tok)
{
    (void)vocab;
    float max = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > max)
            max = logits[i];
    double sum = 0; /* float terms (as llama-server), a double sum over 10^5 of them */
    for (int32_t i = 0; i < n_vocab; i++)
        sum += expf(logits[i] - max);
    float log_z = max + (float)log(sum);

    tok->token = token;
    tok->logprob = logits[token] - log_z;
    tok->n_top = 0;
    if (n_top > PD_ENGINE_MAX_TOP_LOGPROBS)
        n_top = PD_ENGINE_MAX_TOP_LOGPROBS;
    for (int32_t i = 0; i < n_vocab && n_top > 0; i++)
        top_insert(tok->top_token, tok->top_logprob, &tok->n_top, n_top, i, logits[i]);
    for (uint32_t k = 0; k < tok->n_top; k++)
        tok->top_logprob[k] -= log_z;
}
