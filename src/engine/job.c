/* job.c: a job and the queue that carries its events from the inference thread to the caller.
 *
 * The queue is a pair of event buffers: the engine appends to one (the producer's), the
 * caller's poll swaps the two under the job's mutex and reads the other without holding it.
 * So the lock is held for a few appends or one swap, never while the caller writes to its
 * client, and buffers keep their memory: a steady stream allocates nothing. The producer's
 * buffer has a byte limit (params.job_buffer): past it the engine leaves the job's sequences
 * out of the next steps until the caller drains (backpressure instead of unbounded memory). */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* Declared in engine.c: wakes the inference thread after a drain or a cancel. */
void pd_engine_nudge(pd_engine *eng);

pd_engine_job *pd_engine_job_new(pd_engine *eng, job_kind kind, const pd_engine_sink *sink)
{
    pd_engine_job *job = pd_xcalloc(1, sizeof *job);
    atomic_init(&job->refs, 2);
    atomic_init(&job->cancelled, false);
    job->kind = kind;
    job->eng = eng;
    if (sink)
        job->sink = *sink;
    job->max_tokens = -1;
    job->n_choices = 1;
    pthread_mutex_init(&job->mu, NULL);
    pd_embed_response_init(&job->embed_result);
    return job;
}

static void evbuf_free(evbuf *b)
{
    free(b->ev);
    free(b->bytes);
    free(b->lp);
    free(b->top);
    free(b->v_lp);
    free(b->v_top);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void pd_engine_job_release(pd_engine_job *job)
{
    if (!job || atomic_fetch_sub(&job->refs, 1) != 1)
        return;
    evbuf_free(&job->buf[0]);
    evbuf_free(&job->buf[1]);
    pthread_mutex_destroy(&job->mu);
    free(job->prompt_text);
    free_strv(job->stops, job->n_stops);
    free_strv(job->inputs, job->n_inputs);
    free(job->prompt);
    pd_embed_response_free(&job->embed_result);
    free(job);
}

/* ---- producer side ------------------------------------------------------------------------ */

/* Grows *arr (elements of size sz) to hold need elements. */
static void grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    *arr = pd_xrealloc(*arr, n * sz);
    *cap = n;
}

static size_t put_bytes(evbuf *b, const char *p, size_t n)
{
    grow((void **)&b->bytes, &b->cap_bytes, b->n_bytes + n + 1, 1);
    size_t off = b->n_bytes;
    if (n)
        memcpy(b->bytes + off, p, n);
    b->n_bytes += n;
    return off;
}

static ev_rec *put_event(evbuf *b, pd_chat_event_kind kind, uint32_t choice)
{
    grow((void **)&b->ev, &b->cap_ev, b->n_ev + 1, sizeof *b->ev);
    ev_rec *r = &b->ev[b->n_ev++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->choice = choice;
    return r;
}

/* Appends the piece of token t to b; returns its offset, sets *len. */
static size_t put_piece(evbuf *b, const struct llama_vocab *vocab, llama_token t, size_t *len)
{
    char tmp[256];
    int32_t n = llama_token_to_piece(vocab, t, tmp, (int32_t)sizeof tmp, 0, false);
    if (n < 0) { /* longer than tmp: render straight into the buffer */
        grow((void **)&b->bytes, &b->cap_bytes, b->n_bytes + (size_t)-n + 1, 1);
        n = llama_token_to_piece(vocab, t, b->bytes + b->n_bytes, -n, 0, false);
        size_t off = b->n_bytes;
        b->n_bytes += n > 0 ? (size_t)n : 0;
        *len = n > 0 ? (size_t)n : 0;
        return off;
    }
    *len = (size_t)n;
    return put_bytes(b, tmp, (size_t)n);
}

static void put_logprobs(evbuf *b, const struct llama_vocab *vocab, const pd_engine_tok *toks,
                         size_t n, ev_rec *r)
{
    grow((void **)&b->lp, &b->cap_lp, b->n_lp + n, sizeof *b->lp);
    r->lp_off = b->n_lp;
    r->n_lp = n;
    for (size_t i = 0; i < n; i++) {
        lp_rec *l = &b->lp[b->n_lp++];
        l->token = toks[i].token;
        l->logprob = toks[i].logprob;
        l->bytes_off = put_piece(b, vocab, toks[i].token, &l->len);
        grow((void **)&b->top, &b->cap_top, b->n_top + toks[i].n_top, sizeof *b->top);
        l->top_off = b->n_top;
        l->n_top = toks[i].n_top;
        for (uint32_t k = 0; k < toks[i].n_top; k++) {
            top_rec *t = &b->top[b->n_top++];
            t->token = toks[i].top_token[k];
            t->logprob = toks[i].top_logprob[k];
            t->bytes_off = put_piece(b, vocab, t->token, &t->len);
        }
    }
}

/* Locks the job and returns the producer buffer, or NULL (unlocked) when the caller is gone. */
static evbuf *produce_begin(pd_engine_job *job)
{
    pthread_mutex_lock(&job->mu);
    if (job->caller_gone || job->ended) {
        pthread_mutex_unlock(&job->mu);
        return NULL;
    }
    return &job->buf[job->prod];
}

void pd_engine_job_push_role(pd_engine_job *job, uint32_t choice)
{
    evbuf *b = produce_begin(job);
    if (!b)
        return;
    put_event(b, PD_EVENT_ROLE, choice);
    pthread_mutex_unlock(&job->mu);
}

void pd_engine_job_push_text(pd_engine_job *job, const struct llama_vocab *vocab, uint32_t choice,
                             const char *text, size_t len, const pd_engine_tok *toks, size_t n_toks)
{
    if (len == 0 && n_toks == 0)
        return;
    evbuf *b = produce_begin(job);
    if (!b)
        return;
    ev_rec *r = put_event(b, PD_EVENT_TEXT, choice);
    r->text_off = put_bytes(b, text, len);
    r->text_len = len;
    if (n_toks)
        put_logprobs(b, vocab, toks, n_toks, r);
    pthread_mutex_unlock(&job->mu);
}

void pd_engine_job_push_finish(pd_engine_job *job, uint32_t choice, pd_chat_finish finish)
{
    evbuf *b = produce_begin(job);
    if (!b)
        return;
    put_event(b, PD_EVENT_FINISH, choice)->finish = finish;
    pthread_mutex_unlock(&job->mu);
}

void pd_engine_job_push_usage(pd_engine_job *job, const pd_chat_usage *usage)
{
    evbuf *b = produce_begin(job);
    if (!b)
        return;
    put_event(b, PD_EVENT_USAGE, 0)->usage = *usage;
    pthread_mutex_unlock(&job->mu);
}

void pd_engine_job_push_error(pd_engine_job *job, int status, const char *type, const char *code,
                              const char *msg)
{
    evbuf *b = produce_begin(job);
    if (b) {
        ev_rec *r = put_event(b, PD_EVENT_ERROR, 0);
        r->status = status;
        r->type = type;
        r->code = code;
        r->text_len = strlen(msg);
        r->text_off = put_bytes(b, msg, r->text_len);
        pthread_mutex_unlock(&job->mu);
    }
    if (job->kind == JOB_EMBED) { /* the embeddings result carries the error */
        job->embed_failed = true;
        pd_openai_error_set(&job->embed_err, status, type, code, NULL, "%s", msg);
    }
    pd_engine_job_end(job);
}

void pd_engine_job_end(pd_engine_job *job)
{
    pthread_mutex_lock(&job->mu);
    job->ended = true;
    pthread_mutex_unlock(&job->mu);
}

bool pd_engine_job_full(pd_engine_job *job, size_t limit)
{
    pthread_mutex_lock(&job->mu);
    const evbuf *b = &job->buf[job->prod];
    bool full = !job->caller_gone &&
                b->n_bytes + b->n_ev * sizeof(ev_rec) + b->n_top * sizeof(top_rec) > limit;
    if (full)
        job->stalled = true;
    pthread_mutex_unlock(&job->mu);
    return full;
}

void pd_engine_job_wake(pd_engine_job *job)
{
    /* Under the mutex, so that pd_engine_job_free (which takes it) is a barrier: once it
       returns, the caller's wake target may be destroyed. */
    pthread_mutex_lock(&job->mu);
    if (!job->caller_gone && !job->wake_pending && job->sink.wake) {
        job->wake_pending = true;
        job->sink.wake(job->sink.ud);
    }
    pthread_mutex_unlock(&job->mu);
}

/* ---- consumer side ------------------------------------------------------------------------ */

static void view_event(evbuf *b, const ev_rec *r, pd_engine_event *ev)
{
    memset(ev, 0, sizeof *ev);
    pd_chat_event_init(&ev->chat, r->kind);
    ev->chat.choice = r->choice;
    ev->chat.role = PD_ROLE_ASSISTANT;
    ev->chat.finish = r->finish;
    if (r->kind == PD_EVENT_USAGE)
        ev->chat.usage = r->usage;
    ev->chat.error_status = r->status;
    ev->chat.error_type = r->type;
    ev->chat.error_code = r->code;
    if (r->kind == PD_EVENT_TEXT || r->kind == PD_EVENT_ERROR) {
        ev->chat.text = b->bytes + r->text_off;
        ev->chat.text_len = r->text_len;
    }
    if (r->n_lp) {
        for (size_t i = 0; i < r->n_lp; i++) {
            const lp_rec *l = &b->lp[r->lp_off + i];
            pd_engine_logprob *v = &b->v_lp[r->lp_off + i];
            *v = (pd_engine_logprob){
                l->token, l->logprob, b->bytes + l->bytes_off, l->len, b->v_top + l->top_off,
                l->n_top};
            for (size_t k = 0; k < l->n_top; k++) {
                const top_rec *t = &b->top[l->top_off + k];
                b->v_top[l->top_off + k] =
                    (pd_engine_top_logprob){t->token, t->logprob, b->bytes + t->bytes_off, t->len};
            }
        }
        ev->logprobs = b->v_lp + r->lp_off;
        ev->n_logprobs = r->n_lp;
    }
}

static void evbuf_reset(evbuf *b)
{
    b->n_ev = b->n_bytes = b->n_lp = b->n_top = 0;
}

bool pd_engine_job_poll(pd_engine_job *job, pd_engine_event_cb cb, void *ud)
{
    pthread_mutex_lock(&job->mu);
    evbuf *b = &job->buf[job->prod];
    job->prod ^= 1;
    bool ended = job->ended, nudge = job->stalled;
    job->stalled = false;
    job->wake_pending = false;
    pthread_mutex_unlock(&job->mu);
    if (nudge)
        pd_engine_nudge(job->eng);

    grow((void **)&b->v_lp, &b->cap_v_lp, b->n_lp, sizeof *b->v_lp);
    grow((void **)&b->v_top, &b->cap_v_top, b->n_top, sizeof *b->v_top);
    for (size_t i = 0; i < b->n_ev && !job->delivered; i++) {
        pd_engine_event ev;
        view_event(b, &b->ev[i], &ev);
        /* the chat view carries them as JSON too, so that a stream encoder can write them */
        json_t *lp = ev.n_logprobs ? json_pack("{s:o}", "content",
                                               pd_engine_logprobs_json(ev.logprobs, ev.n_logprobs))
                                   : NULL;
        ev.chat.logprobs = lp;
        int stop = cb ? cb(ud, &ev) : 0;
        json_decref(lp);
        if (stop) {
            pd_engine_job_cancel(job);
            job->delivered = true; /* the caller asked for nothing more */
        }
    }
    evbuf_reset(b);
    if (ended)
        job->delivered = true;
    return job->delivered;
}

void pd_engine_job_cancel(pd_engine_job *job)
{
    if (!job || atomic_exchange(&job->cancelled, true))
        return;
    pd_engine_nudge(job->eng);
}

void pd_engine_job_free(pd_engine_job *job)
{
    if (!job)
        return;
    pthread_mutex_lock(&job->mu);
    job->caller_gone = true;
    bool ended = job->ended;
    pthread_mutex_unlock(&job->mu);
    if (!ended)
        pd_engine_job_cancel(job);
    pd_engine_job_release(job);
}

pd_result pd_engine_job_embeddings(pd_engine_job *job, pd_embed_response *out, pd_api_error *err)
{
    pthread_mutex_lock(&job->mu);
    bool ended = job->ended;
    job->wake_pending = false;
    pthread_mutex_unlock(&job->mu);
    if (!ended)
        return PD_ERR_PARTIAL;
    if (job->embed_failed) {
        if (err)
            *err = job->embed_err;
        return PD_ERR_INVALID;
    }
    *out = job->embed_result;
    pd_embed_response_init(&job->embed_result);
    return PD_OK;
}
