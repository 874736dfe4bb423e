/* embed.c: embeddings on the inference thread.
 *
 * Embeddings use their own small llama_context on the same model (pooled output and no
 * sampling: it cannot share the generation context's settings). Its size is batch_size
 * tokens, so a non-causal (BERT-like) model sees each input whole in one micro-batch; each
 * step embeds as many inputs as fit in one batch, one sequence per input, then clears the
 * memory. Vectors are pooled as the model (or params.pooling) says and L2-normalised, as
 * llama-server's /v1/embeddings does. */
#include "engine/engine_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"

#define EMBED_SEQS 8 /* inputs per batch */

pd_result pd_engine_embed_init(embed_ctx *e, struct llama_model *model, const pd_engine_params *p,
                               char *err, size_t err_len)
{
    struct llama_context_params cp = llama_context_default_params();
    cp.embeddings = true;
    cp.pooling_type = p->pooling == PD_ENGINE_POOLING_MODEL ? LLAMA_POOLING_TYPE_UNSPECIFIED
                                                            : (enum llama_pooling_type)p->pooling;
    cp.n_ctx = cp.n_batch = cp.n_ubatch = p->batch_size;
    cp.n_seq_max = EMBED_SEQS;
    cp.kv_unified = true;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cp.n_threads = cp.n_threads_batch = p->threads ? p->threads
                                        : ncpu < 1 ? 1
                                        : ncpu > 8 ? 8
                                                   : (int32_t)ncpu;
    cp.no_perf = true;
    e->ctx = llama_init_from_model(model, cp);
    if (!e->ctx) {
        snprintf(err, err_len, "cannot create the embeddings context");
        return PD_ERR_NOMEM;
    }
    e->usable = llama_pooling_type(e->ctx) != LLAMA_POOLING_TYPE_NONE;
    if (!e->usable)
        pd_log_info("engine: the model has no pooling type: embeddings are refused "
                    "(set pooling to mean, cls or last)");
    e->n_batch = llama_n_batch(e->ctx);
    e->n_seq = EMBED_SEQS;
    e->batch = llama_batch_init((int32_t)e->n_batch, 0, 1);
    return PD_OK;
}

void pd_engine_embed_deinit(embed_ctx *e)
{
    if (!e->ctx)
        return;
    llama_batch_free(e->batch);
    llama_free(e->ctx);
    e->ctx = NULL;
}

static void normalize(float *v, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i] * v[i];
    float norm = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
    for (size_t i = 0; i < n; i++)
        v[i] *= norm;
}

/* Adds input i to the batch as sequence seq; false (job failed) when it cannot be embedded,
   or *no_room when it does not fit beside what is already in the batch. */
static bool add_input(embed_ctx *e, const struct llama_vocab *vocab, pd_engine_job *job, size_t i,
                      llama_seq_id seq, bool *no_room, int32_t *n_tokens)
{
    llama_token *toks = NULL;
    int32_t n = 0;
    char msg[160];
    *no_room = false;
    if (pd_engine_tokenize(vocab, job->inputs[i], strlen(job->inputs[i]), false, &toks, &n) ||
        n == 0 || n > (int32_t)e->n_batch) {
        snprintf(msg, sizeof msg, "input[%zu] has %d tokens; the local model embeds 1..%u", i, n,
                 e->n_batch);
        pd_engine_job_push_error(job, 400, "invalid_request_error", "context_length_exceeded", msg);
        free(toks);
        return false;
    }
    if (e->batch.n_tokens + n > (int32_t)e->n_batch) {
        *no_room = true;
        free(toks);
        return true;
    }
    for (int32_t k = 0; k < n; k++) {
        int32_t j = e->batch.n_tokens++;
        e->batch.token[j] = toks[k];
        e->batch.pos[j] = k;
        e->batch.n_seq_id[j] = 1;
        e->batch.seq_id[j][0] = seq;
        e->batch.logits[j] = true;
    }
    *n_tokens = n;
    free(toks);
    return true;
}

static void collect(embed_ctx *e, pd_engine_job *job, int32_t n_seqs)
{
    pd_embed_response *r = &job->embed_result;
    size_t dim = (size_t)llama_model_n_embd_out(llama_get_model(e->ctx));
    r->vectors = pd_xrealloc(r->vectors, (r->n_vectors + (size_t)n_seqs) * sizeof *r->vectors);
    for (int32_t s = 0; s < n_seqs; s++) {
        const float *v = llama_get_embeddings_seq(e->ctx, s);
        pd_embed_vector *out = &r->vectors[r->n_vectors++];
        out->values = pd_xcalloc(dim, sizeof(float));
        out->n = dim;
        if (v)
            memcpy(out->values, v, dim * sizeof(float));
        normalize(out->values, dim);
    }
}

void pd_engine_embed_step(embed_ctx *e, const struct llama_vocab *vocab, pd_engine_job *job)
{
    llama_memory_t mem = llama_get_memory(e->ctx);
    if (mem)
        llama_memory_clear(mem, true);
    e->batch.n_tokens = 0;
    int32_t n_seqs = 0, n_tokens = 0;
    if (job->embed_result.prompt_tokens < 0)
        job->embed_result.prompt_tokens = 0;
    while (job->next_input < job->n_inputs && n_seqs < (int32_t)e->n_seq) {
        bool no_room;
        if (!add_input(e, vocab, job, job->next_input, n_seqs, &no_room, &n_tokens))
            return;
        if (no_room)
            break;
        job->embed_result.prompt_tokens += n_tokens;
        job->next_input++;
        n_seqs++;
    }
    const struct llama_model *model = llama_get_model(e->ctx);
    int32_t rc = llama_model_has_encoder(model) && !llama_model_has_decoder(model)
                     ? llama_encode(e->ctx, e->batch)
                     : llama_decode(e->ctx, e->batch);
    if (rc != 0) {
        pd_engine_job_push_error(job, 500, "server_error", NULL,
                                 "the local model failed to compute embeddings");
        return;
    }
    collect(e, job, n_seqs);
    if (job->next_input == job->n_inputs) {
        job->embed_result.total_tokens = job->embed_result.prompt_tokens;
        pd_engine_job_end(job);
    }
}
