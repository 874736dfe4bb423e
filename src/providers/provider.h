/* provider.h: one upstream wire format = one pd_provider_ops table (data over code), and one
 * client wire format = one pd_dialect table.
 *
 * The relay (src/relay) moves bytes; providers and dialects say what they mean:
 * - Translation path (any client dialect, any provider): the provider turns the canonical request
 *   (canon/chat.h) into its upstream HTTP request, and the upstream's answer into canonical
 *   events or a canonical response; the client's dialect writes those in the client's protocol.
 * - Pass-through path: when the client speaks the provider's own dialect (OpenAI client to an
 *   OpenAI-compatible upstream), the provider may relay the upstream's events byte for byte after
 *   checking them (`pass_*`). That keeps fields no canonical model knows and costs least.
 *
 * Adding a provider: src/providers/<kind>.c defines a pd_provider_ops, one line in registry.c.
 * Adding a client protocol: a pd_dialect next to its ingress. Functions are pure (no I/O, no
 * globals) so they are unit-testable alone and may run on any worker thread. */
#ifndef PD_PROVIDERS_PROVIDER_H
#define PD_PROVIDERS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "canon/chat.h"
#include "config/config.h"
#include "core/buf.h"
#include "proto/openai.h"
#include "proto/sse.h"
#include "upstream/client.h"

/* ---- client side ------------------------------------------------------------------------- */

typedef struct pd_dialect {
    const char *name; /* "openai", "anthropic" */
    /* The client's request body into the canonical request (the ingress's own parser). */
    pd_result (*parse_request)(const char *body, size_t len, pd_chat_request *out, pd_api_error *err);
    /* The error body of this protocol for e (the relay sends e->status). */
    pd_result (*error_body)(const pd_api_error *e, pd_buf *out);
    /* A whole response. */
    pd_result (*write_response)(const pd_chat_response *r, pd_buf *out);
    /* Stream encoder: created per call with the request (for its options, e.g. include_usage),
     * the gateway's response id and the model name the client asked for. */
    void *(*encoder_new)(const pd_chat_request *req, const char *id, const char *model);
    pd_result (*encode)(void *enc, const pd_chat_event *ev, pd_buf *out);
    /* The end of a complete stream (OpenAI: data: [DONE]; Anthropic: message_stop). */
    pd_result (*encode_end)(void *enc, pd_buf *out);
    /* An in-stream error that ends a broken stream (never followed by encode_end). */
    pd_result (*encode_error)(void *enc, const pd_api_error *e, pd_buf *out);
    void (*encoder_free)(void *enc);
} pd_dialect;

extern const pd_dialect pd_dialect_openai;    /* ingress/dialect_openai.c */
extern const pd_dialect pd_dialect_anthropic; /* ingress/dialect_anthropic.c */

/* ---- upstream side ----------------------------------------------------------------------- */

struct pd_embed_request;  /* canon/embed.h */
struct pd_embed_response;

/* What one step of an upstream stream meant, for the pass-through path. */
typedef enum pd_stream_step {
    PD_STEP_CONTINUE = 0, /* translated into out (maybe nothing); more to come */
    PD_STEP_DONE,         /* the upstream said the stream is complete; out holds the client's end */
    PD_STEP_ERROR         /* the upstream reported an error in the stream; out holds it translated */
} pd_stream_step;

typedef struct pd_provider_ops {
    const char *kind;
    /* The client dialect this upstream speaks natively (pass_* below serve it), or NULL. */
    const pd_dialect *native;

    /* Fills out (url, headers, body, timeouts) for a chat completion. On error fills err (e.g. a
     * 400 for a feature this upstream cannot honour). The request is not modified. req->raw (the
     * client's own body, as text) is set only when the client speaks this provider's native
     * dialect. */
    pd_result (*chat_request)(const pd_provider_cfg *p, const pd_model_cfg *m,
                              const pd_chat_request *req, pd_transfer_req *out, pd_api_error *err);

    /* Translation path. A stream decoder takes the raw body bytes as they arrive (it does its own
     * framing: SSE, NDJSON) and calls cb for each canonical event; PD_ERR_INVALID when the
     * upstream sent something malformed. decoder_done: the upstream's own end marker was seen
     * (a stream that ends without it was cut). decoder_new and parse_response get the request
     * that chat_request was given, for what the answer's meaning depends on (the Anthropic
     * provider's forced JSON tool); they keep no pointer to it. */
    void *(*decoder_new)(const pd_chat_request *req);
    pd_result (*decode)(void *dec, const char *bytes, size_t len, pd_chat_event_cb cb, void *ud);
    int (*decoder_done)(void *dec);
    void (*decoder_free)(void *dec);
    /* A whole successful (2xx) body. PD_ERR_INVALID when malformed. */
    pd_result (*parse_response)(const pd_chat_request *req, const char *body, size_t len,
                                pd_chat_response *out);
    /* Any error body (status >= 400, maybe not JSON) into a canonical error; status kept. */
    void (*parse_error)(long status, const char *body, size_t len, pd_api_error *out);

    /* Pass-through path (only when native != NULL); NULL members mean "translate instead".
     * One SSE event in, client bytes out (req: the client's request, for its stream options).
     * PD_ERR_INVALID: malformed event. */
    pd_result (*pass_event)(const pd_chat_request *req, const pd_sse_event *ev, pd_buf *out,
                            pd_stream_step *step, pd_chat_usage *usage);
    /* A whole 2xx body in, client bytes out. PD_ERR_INVALID when malformed. */
    pd_result (*pass_response)(const char *body, size_t len, pd_buf *out, pd_chat_usage *usage);
    /* An error body in, the client's error body out (status kept). */
    void (*pass_error)(long status, const char *body, size_t len, pd_buf *out);

    /* Embeddings (NULL when the upstream has none): canonical request to HTTP request, and the
     * upstream's 2xx body to the canonical response. Errors go through parse_error. */
    pd_result (*embed_request)(const pd_provider_cfg *p, const pd_model_cfg *m,
                               const struct pd_embed_request *req, pd_transfer_req *out,
                               pd_api_error *err);
    pd_result (*parse_embed_response)(const char *body, size_t len, struct pd_embed_response *out);
} pd_provider_ops;

/* The table for a kind; NULL for kind llama (served in-process by src/engine, not over HTTP). */
const pd_provider_ops *pd_provider_ops_of(pd_provider_kind kind);

/* Shared by providers: base_url + path, the JSON headers (plus up to two extra header lines,
 * NULL when unused) and the provider's timeouts. */
pd_result pd_provider_http(const pd_provider_cfg *p, const char *path, const char *header1,
                           const char *header2, int stream, pd_transfer_req *out);

#endif
