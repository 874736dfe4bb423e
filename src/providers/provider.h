/* provider.h: one upstream wire format = one pd_provider_ops table (data over code).
 *
 * The relay (src/relay) moves bytes; a provider says what they mean. Each kind translates the
 * canonical request into its upstream HTTP request, and the upstream's answer (a whole body, a
 * stream of SSE events, or an error body) into the client's dialect. Today the client dialect is
 * OpenAI's; the Anthropic ingress adds a second one.
 *
 * Adding a provider: a new src/providers/<kind>.c defining a pd_provider_ops, one line in
 * registry.c. Functions are pure (no I/O, no globals), so they are unit-testable alone and may
 * run on any worker thread. */
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

/* What one upstream stream event meant. */
typedef enum pd_stream_step {
    PD_STEP_CONTINUE = 0, /* translated into out (maybe nothing); more to come */
    PD_STEP_DONE,         /* the upstream said the stream is complete; out holds the client's end */
    PD_STEP_ERROR         /* the upstream reported an error in the stream; out holds it translated */
} pd_stream_step;

/* Token counts seen in a response; -1 = not reported. */
typedef struct pd_usage_seen {
    int64_t prompt, completion, cached, reasoning;
} pd_usage_seen;

typedef struct pd_provider_ops {
    const char *kind;
    /* Fills out (url, headers, body, timeouts) for a chat completion. On error fills err. The
     * request is not modified. */
    pd_result (*chat_request)(const pd_provider_cfg *p, const pd_model_cfg *m,
                              const pd_chat_request *req, pd_transfer_req *out, pd_api_error *err);
    /* Translates one upstream stream event, appending the client's SSE bytes to out.
     * PD_ERR_INVALID: the event is malformed (the relay then ends the stream as broken). */
    pd_result (*chat_stream_event)(const pd_sse_event *ev, pd_buf *out, pd_stream_step *step,
                                   pd_usage_seen *usage);
    /* Translates a complete successful (2xx) body into out. PD_ERR_INVALID when malformed. */
    pd_result (*chat_response)(const char *body, size_t len, pd_buf *out, pd_usage_seen *usage);
    /* Translates an upstream error body (any status >= 400, maybe not JSON) into the client's
     * error body in out; the relay keeps the status. */
    void (*error_response)(long status, const char *body, size_t len, pd_buf *out);
} pd_provider_ops;

/* The table for a kind; NULL when that kind is not implemented yet. */
const pd_provider_ops *pd_provider_ops_of(pd_provider_kind kind);

/* Shared by providers: base_url + path, the usual JSON headers and the timeouts. */
pd_result pd_provider_http(const pd_provider_cfg *p, const char *path, const char *auth_header,
                           int stream, pd_transfer_req *out);

#endif
