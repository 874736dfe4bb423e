/* engine.h: the embedded inference engine: one llama.cpp model served in-process (provider
 * `kind: llama`).
 *
 * One engine = one model file, one llama_context and one inference thread. The thread loads
 * the model (pd_engine_open returns at once, so the gateway can listen and report not-ready on
 * /readyz while a large model is read) and then runs a continuous-batching loop: requests join
 * the running batch between decode steps, finished ones leave, each occupies its own llama.cpp
 * sequence (its own KV cells), long prompts are fed in chunks so running streams keep moving.
 * The design note is at the top of engine.c; docs/engine.md has the numbers.
 *
 * HOW A CALLER USES IT (a worker thread with an event loop):
 *   1. pd_engine_submit(eng, &req, &sink, &job, &err): cheap checks only (template, sampling
 *      values, n, queue room); never blocks on inference. On error nothing was queued and the
 *      sink will never be called.
 *   2. The inference thread pushes events into the job's bounded queue and calls
 *      sink.wake(sink.ud) at most once per decode step, and not again until the caller has
 *      polled: one wake-up per batch of tokens, never one per token. wake runs on the
 *      inference thread with the job's mutex held: it must be thread-safe, must not block,
 *      must not call back into the engine and must not take a lock the caller holds while
 *      it polls or frees the job (with libevent: event_active() on an event of the worker's
 *      loop, after evthread_use_pthreads()).
 *   3. On its own thread the caller drains pd_engine_job_poll(job, cb, ud); it returns true
 *      once the job's last event has been delivered.
 *   4. pd_engine_job_free(job) when done with it. Freeing a running job cancels it (client
 *      disconnect): its sequence is released at the next decode step. After pd_engine_job_free
 *      returns, sink.wake is never called for that job again.
 *
 * EVENTS of a chat job, in order: for each choice c (n > 1 choices are parallel sequences that
 * share the prompt's KV cells): ROLE(c), TEXT(c)*, FINISH(c) (choices interleave); then exactly
 * one USAGE, last. Or: a single ERROR, after which nothing follows. An ERROR is only ever the
 * FIRST event (the prompt does not fit the context: status 400, code
 * "context_length_exceeded"; the engine failed to load or is closing: 503) or follows a decode
 * failure (500) mid-stream; so a caller that holds the HTTP status until the first event can
 * answer a plain 400. TEXT fragments are whole UTF-8 characters (bytes of a character that
 * spans tokens are held until it is complete; only the last fragment of a choice cut by its
 * token limit can end inside one) and never contain any part of a stop string (text that might
 * begin one is held until it is known not to). finish is STOP (end-of-generation token or a
 * stop string) or LENGTH (max_tokens, or the sequence's context is full).
 *
 * OPENAI SEMANTICS. The prompt is the request's messages rendered with the model's chat
 * template (llama_chat_apply_template; when the model has none, or one llama.cpp does not
 * know, the ChatML template is used: see docs/engine.md) and tokenized as llama-server does.
 * Sampling fields absent from the request take llama-server's defaults (temperature 0.8,
 * top_k 40, top_p 0.95, min_p 0.05) so that the same request gives the same tokens as
 * llama-server; temperature 0 is greedy. seed, stop (at most PD_ENGINE_MAX_STOP strings of at
 * most PD_ENGINE_MAX_STOP_LEN bytes), max_tokens, n (at most `parallel`), presence and
 * frequency penalties, logprobs and top_logprobs (0..20) are honoured; logprobs are those of
 * the model's raw distribution (before sampling), as llama-server and OpenAI report them.
 * Not supported, answered with a 400: tools / tool_choice / tool calls in the history,
 * response_format other than text, non-text content parts.
 *
 * PREFIX REUSE. A sequence keeps its KV cells after its job ends. A new job is placed on the
 * free sequence whose cached tokens share the longest prefix with its prompt and only the rest
 * of the prompt is evaluated; usage.cached_tokens says how many prompt tokens were reused.
 *
 * OWNERSHIP. pd_engine_submit copies what it needs from the request; the caller keeps req. A
 * job is shared by the caller and the engine; each side drops its hold (pd_engine_job_free /
 * internally) and the last one frees it. Events handed to the poll callback are borrowed
 * views valid only during the call (as in canon/chat.h).
 *
 * THREADS. pd_engine_open/close: any one thread. submit, stats, state, wait_ready and
 * count_prompt: any thread, concurrently. A job's poll/cancel/free/embeddings: one thread at a
 * time (the owner's). Nothing here touches global state except llama.cpp's own one-time
 * backend initialisation and its log callback.
 *
 * Dependencies: llama.cpp (llama.h), jansson, libc, pthreads, core/, canon/, proto/openai.h
 * (pd_api_error). No libevent: the wake-up is a function pointer. */
#ifndef PD_ENGINE_ENGINE_H
#define PD_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon/chat.h"
#include "canon/embed.h"
#include "core/result.h"
#include "proto/openai.h" /* pd_api_error */

#define PD_ENGINE_MAX_STOP 16      /* stop strings per request */
#define PD_ENGINE_MAX_STOP_LEN 256 /* bytes per stop string */
#define PD_ENGINE_MAX_TOP_LOGPROBS 20
#define PD_ENGINE_MAX_PARALLEL 64

typedef struct pd_engine pd_engine;
typedef struct pd_engine_job pd_engine_job;

typedef enum pd_engine_state {
    PD_ENGINE_LOADING = 0, /* the inference thread is reading the model */
    PD_ENGINE_READY,       /* serving */
    PD_ENGINE_FAILED,      /* the model could not be loaded (pd_engine_error says why) */
    PD_ENGINE_CLOSING      /* pd_engine_close was called */
} pd_engine_state;

/* How embeddings are pooled; PD_ENGINE_POOLING_MODEL takes the model's own (GGUF) setting. */
typedef enum pd_engine_pooling {
    PD_ENGINE_POOLING_MODEL = -1,
    PD_ENGINE_POOLING_NONE = 0,
    PD_ENGINE_POOLING_MEAN = 1,
    PD_ENGINE_POOLING_CLS = 2,
    PD_ENGINE_POOLING_LAST = 3
} pd_engine_pooling;

typedef struct pd_engine_params {
    const char *model_path; /* GGUF file, mmapped (copied) */
    const char *name;       /* the model name put in events and logs; NULL: the file name */
    uint32_t ctx_size;      /* KV cells in total, as llama-server's -c: each of the `parallel`
                               sequences gets ctx_size / parallel; 0 = the model's trained
                               context (default 0) */
    uint32_t parallel;      /* sequences decoded together, 1..PD_ENGINE_MAX_PARALLEL (default 4) */
    int32_t threads;        /* CPU threads for decoding; 0 = online CPUs, at most 8 (default 0) */
    uint32_t batch_size;    /* most tokens per decode step (default 512) */
    uint32_t prompt_chunk;  /* most prompt tokens per step while other sequences are generating,
                               so a long prompt delays running streams by one small chunk per
                               token (default 128; a step with nothing generating takes
                               batch_size) */
    uint32_t admit_wait_us; /* an idle engine's wait for the rest of a burst: once nothing has been
                               queued for this long (at most 4x this in all, or until a job waits
                               for every sequence) it starts, so that a burst's prompts are read
                               in one step (engine.c, settle_burst); 0: start at once
                               (default 1000) */
    uint32_t max_queued;    /* jobs waiting for a free sequence; beyond: 503 (default 64) */
    size_t job_buffer;      /* bytes of undelivered events per job; past it the job's sequences
                               wait for the caller to poll (backpressure; default 64 KiB) */
    bool embeddings;        /* also serve pd_engine_embed (a second, small context) */
    pd_engine_pooling pooling; /* for embeddings (default PD_ENGINE_POOLING_MODEL) */
    const char *chat_template; /* NULL: the model's; else a llama.cpp template name
                                  ("chatml", "llama3", ...) or template text (copied) */
    /* Load progress in 0..1, called on the inference thread; NULL: a progress bar on stderr
       when stderr is a terminal, nothing otherwise. A "loading" and a "ready" log line are
       written either way (pd_log_info). Return false to abort the load. */
    bool (*progress)(float fraction, void *ud);
    void *progress_ud;
    /* Called once on the inference thread when the state leaves LOADING (READY or FAILED),
       e.g. to wake the server; NULL for none. Same rules as a sink's wake. */
    void (*on_state)(void *ud, pd_engine_state state);
    void *state_ud;
    bool llama_log; /* pass llama.cpp's info log through to stderr (default: errors only) */
} pd_engine_params;

pd_engine_params pd_engine_default_params(void);

/* Checks params, copies them and starts the inference thread, which loads the model.
   Returns PD_OK with *out set (state LOADING), or PD_ERR_INVALID with a message in err
   (err_len bytes, may be 0) and *out NULL. A model that fails to load is reported through
   the state (FAILED), not here. */
pd_result pd_engine_open(const pd_engine_params *params, pd_engine **out, char *err,
                         size_t err_len);

/* Stops the thread (jobs still running get an ERROR 503 event and their wake-up), frees the
   model. Call it once no caller will poll again, or while callers may still be woken (wake
   may run during close). Jobs not yet freed by their callers stay valid until they are.
   NULL is a no-op. */
void pd_engine_close(pd_engine *eng);

pd_engine_state pd_engine_state_get(const pd_engine *eng);
/* Why the load failed ("" otherwise). Valid until close. */
const char *pd_engine_error(const pd_engine *eng);
/* Blocks the calling thread until the state leaves LOADING or timeout_ms passes (< 0: no
   limit). For tools and tests, never for an event loop. Returns the state. */
pd_engine_state pd_engine_wait_ready(pd_engine *eng, int timeout_ms);

typedef struct pd_engine_info {
    const char *name;   /* as params.name */
    uint32_t n_ctx_seq; /* context of one sequence (the longest prompt + output) */
    uint32_t parallel;
    int32_t n_embd;            /* embedding size */
    bool embeddings;           /* pd_engine_embed is served */
    const char *template_used; /* the llama.cpp template name or "model"/"custom" */
} pd_engine_info;

/* Valid once READY (PD_ERR_INVALID before). */
pd_result pd_engine_info_get(const pd_engine *eng, pd_engine_info *out);

/* Counters since open, read without locks (each one exact, not a consistent snapshot). */
typedef struct pd_engine_stats {
    uint64_t prompt_tokens_evaluated; /* prompt tokens actually decoded (reused ones excluded) */
    uint64_t prompt_tokens_reused;    /* prompt tokens found in a sequence's cache */
    uint64_t tokens_generated;
    uint64_t decode_steps;
    uint64_t jobs_done;      /* finished, failed or cancelled */
    uint64_t jobs_cancelled; /* released before they finished */
    uint32_t active;         /* sequences busy now */
    uint32_t queued;         /* jobs waiting for sequences */
} pd_engine_stats;

void pd_engine_stats_get(const pd_engine *eng, pd_engine_stats *out);

/* ---- chat jobs -------------------------------------------------------------------------- */

typedef struct pd_engine_sink {
    void (*wake)(void *ud); /* see the top of this file */
    void *ud;
} pd_engine_sink;

/* One alternative at a token position. bytes: the token's text (may be part of a UTF-8
   character). */
typedef struct pd_engine_top_logprob {
    int32_t token;
    float logprob;
    const char *bytes;
    size_t len;
} pd_engine_top_logprob;

/* One generated token: its log-probability and the top alternatives, most likely first
   (n_top = the request's top_logprobs). */
typedef struct pd_engine_logprob {
    int32_t token;
    float logprob;
    const char *bytes;
    size_t len;
    const pd_engine_top_logprob *top;
    size_t n_top;
} pd_engine_logprob;

/* A canonical event plus, on TEXT events of a request with logprobs, the tokens whose text the
   fragment completes (OpenAI's logprobs.content of that chunk). The same tokens are in
   chat.logprobs as OpenAI's JSON object ({"content":[...]}, see pd_engine_logprobs_json), so a
   stream encoder writes them like any upstream's. A borrowed view, the JSON included: take a
   reference (json_incref) to keep it past the callback. */
typedef struct pd_engine_event {
    pd_chat_event chat;
    const pd_engine_logprob *logprobs;
    size_t n_logprobs;
} pd_engine_event;

/* Return 0 to go on; non-zero cancels the job and discards the rest of this poll's events. */
typedef int (*pd_engine_event_cb)(void *ud, const pd_engine_event *ev);

/* Queues a chat completion. Errors (*out NULL, err filled, sink never called):
   PD_ERR_INVALID 400: unsupported feature (see the top), n > parallel, bad sampling value,
     too many / too long stop strings, template failure;
   PD_ERR_CLOSED 503: the engine is loading, failed or closing;
   PD_ERR_TOO_LARGE 503: max_queued jobs are already waiting. */
pd_result pd_engine_submit(pd_engine *eng, const pd_chat_request *req, const pd_engine_sink *sink,
                           pd_engine_job **out, pd_api_error *err);

/* Delivers the events queued so far, in order, on the calling thread. Returns true when the
   job is over and its last event has been delivered (later polls deliver nothing). The
   callback must not free the job (return non-zero to stop, then free it after the poll). */
bool pd_engine_job_poll(pd_engine_job *job, pd_engine_event_cb cb, void *ud);

/* Asks the engine to drop the job at its next step (no further events are produced; the
   sequence is released). Idempotent; safe after the job ended. */
void pd_engine_job_cancel(pd_engine_job *job);

/* Cancels the job if it still runs and drops the caller's hold. NULL is a no-op. */
void pd_engine_job_free(pd_engine_job *job);

/* ---- embeddings ------------------------------------------------------------------------- */

/* Queues an embeddings request (engine opened with params.embeddings). Errors as submit, and
   400 when the engine serves no embeddings or an input is longer than batch_size tokens. When
   the job is over the sink is woken once; then take the result with pd_engine_job_embeddings.
   Vectors are pooled as configured and L2-normalised (as llama-server and OpenAI do). */
pd_result pd_engine_embed(pd_engine *eng, const pd_embed_request *req, const pd_engine_sink *sink,
                          pd_engine_job **out, pd_api_error *err);

/* PD_ERR_PARTIAL while running; PD_OK with *out filled (the caller owns it) once done;
   PD_ERR_INVALID with err filled when the job failed. Call at most once after it is done. */
pd_result pd_engine_job_embeddings(pd_engine_job *job, pd_embed_response *out, pd_api_error *err);

/* ---- helpers ---------------------------------------------------------------------------- */

/* Renders and tokenizes the request's prompt on the calling thread and sets *n_tokens (CPU
   work proportional to the prompt: for tools and tests, not for an event loop). Errors as
   submit (400). */
pd_result pd_engine_count_prompt(pd_engine *eng, const pd_chat_request *req, int64_t *n_tokens,
                                 pd_api_error *err);

/* Adds one event to a non-streaming response (choices are created as they appear; TEXT is
   appended to the choice's single text part; logprobs entries go to choice.logprobs as
   {"content":[...]}; USAGE is assigned; ERROR is ignored: the caller answers it). */
pd_result pd_engine_response_add(pd_chat_response *resp, const pd_engine_event *ev);

/* OpenAI's logprobs.content entries for lp: [{"token","logprob","bytes","top_logprobs":[...]}]
   ("token" is the text with invalid UTF-8 replaced by U+FFFD; "bytes" the exact bytes).
   A new reference. */
json_t *pd_engine_logprobs_json(const pd_engine_logprob *lp, size_t n);

#endif
