/* cohere.h: Cohere's Chat v2 and Embed v2 wire formats <-> the canonical models (canon/chat.h,
 * canon/embed.h). Upstream direction only: Pendulum writes Cohere requests and reads Cohere's
 * answers (protocols.md section 3, recipe 7.3).
 *
 * Request translation (pd_cohere_write_chat_request), field by field:
 *   system and developer messages  -> {"role":"system"}
 *   user content                   -> a string, or [{"type":"text"}|{"type":"image_url"}]; an
 *                                     inline image becomes a data: URI again
 *   assistant tool calls           -> "tool_calls" (OpenAI shape, arguments stay a string; an
 *                                     empty arguments string is sent as "{}"); the message's
 *                                     reasoning goes into "tool_plan" when the turn has tool
 *                                     calls and is dropped otherwise (Cohere's plan text is the
 *                                     only reasoning it takes back)
 *   tool results                   -> {"role":"tool","tool_call_id","content"}
 *   tools                          -> {"type":"function","function":{name,description,parameters}};
 *                                     "strict_tools":true when every tool is strict (Cohere's
 *                                     flag is per request)
 *   tool_choice                    -> none: "NONE"; required: "REQUIRED"; auto: omitted; a named
 *                                     tool: only that tool is sent, with "REQUIRED" (Cohere has
 *                                     no named form); allowed_tools: only those tools are sent
 *   response_format                -> text: {"type":"text"}; json_object: {"type":"json_object"}
 *                                     (+ "json_schema" when a schema came with it); json_schema:
 *                                     {"type":"json_object","json_schema":<schema>}
 *   max_tokens, temperature, seed  -> same names
 *   top_p -> "p", clamped to Cohere's 0.01..0.99; top_k -> "k", clamped to 0..500
 *   stop -> "stop_sequences"
 *   frequency_penalty, presence_penalty -> same names, CLAMPED to Cohere's 0..1: OpenAI's
 *                                     -2..2 has no Cohere meaning below 0 (there is no way to
 *                                     encourage repetition) and a client sending 1.5 wants
 *                                     "strong", which 1 is; a 400 for values every OpenAI SDK
 *                                     accepts would break portable clients for little gain
 *   logprobs:true -> "logprobs":true (Cohere has no top-N: top_logprobs is dropped)
 *   stream -> "stream", always written
 * Dropped, since Cohere has no equivalent: message names, min_p, parallel_tool_calls, user,
 * reasoning_effort, message refusal fields. Rejected with a 400 (invalid_request_error, param
 * naming the field): n > 1, audio and file content parts, custom (free-text) tools and custom
 * tool calls, a named tool_choice naming no given tool.
 *
 * Response translation: text content blocks -> text parts; thinking blocks, then tool_plan ->
 * message.reasoning (concatenated, the order a stream delivers them); tool_calls -> tool calls;
 * finish_reason COMPLETE and STOP_SEQUENCE -> stop, MAX_TOKENS -> length, TOOL_CALL ->
 * tool_calls, ERROR and TIMEOUT -> error, others -> unknown, and stop becomes tool_calls when
 * the message has tool calls (protocols.md 9.3).
 *
 * Usage: prompt/completion come from usage.tokens (the tokens the model actually read and
 * wrote, Cohere's prompt template included), falling back to usage.billed_units when "tokens"
 * is absent; cached_tokens from usage.cached_tokens; total is not reported by Cohere and stays
 * unknown. Why "tokens": the canonical prompt_tokens means everything the model read (OpenAI's
 * semantics, what a client compares with the context window), and billed_units omits the
 * template. Cohere invoices billed_units, so a cost computed from these counts is an upper
 * bound; the canonical model has no field for a separate billed count.
 *
 * Ownership follows canon/chat.h; no function keeps a pointer to its input. Threading: no
 * shared state; a decoder is per stream. Dependencies: jansson, core/, proto/jsonw, proto/sse,
 * proto/openai (pd_api_error and its helpers). */
#ifndef PD_PROTO_COHERE_H
#define PD_PROTO_COHERE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon/chat.h"
#include "canon/embed.h"
#include "core/buf.h"
#include "core/result.h"
#include "proto/openai.h"
#include "proto/sse.h"

/* ---- chat ------------------------------------------------------------------------------- */

/* Writes req as a Cohere /v2/chat body into out, naming `model` (NULL: req->model). Key order:
   model, messages, tools, strict_tools, tool_choice, response_format, max_tokens, temperature,
   p, k, stop_sequences, seed, frequency_penalty, presence_penalty, logprobs, stream.
   PD_ERR_INVALID with err filled (400, see above) for what Cohere cannot express;
   PD_ERR_TOO_LARGE when out's limit would be passed. On error out is left as it was. */
pd_result pd_cohere_write_chat_request(const pd_chat_request *req, const char *model, pd_buf *out,
                                       pd_api_error *err);

/* Parses a whole /v2/chat response. Liberal: fields of the wrong type are ignored. PD_ERR_INVALID
   when the body is not a JSON object with a "message" object. On success *out owns the result
   (one choice; id from the body; model NULL, created 0: Cohere sends neither); on error it is
   initialised and empty. */
pd_result pd_cohere_parse_chat_response(const char *body, size_t len, pd_chat_response *out);

/* Cohere's finish_reason string (n bytes) as a canonical finish reason. */
pd_chat_finish pd_cohere_finish(const char *s, size_t n);

/* Reads any error body (status >= 400): {"message":"..."} (Cohere's own), the shapes
   pd_openai_parse_error_body knows, or text/HTML from a proxy, which becomes the message.
   The status is kept; type is the usual one for it (498, Cohere's invalid-token status,
   counts as authentication_error). */
void pd_cohere_parse_error_body(long status, const char *body, size_t len, pd_api_error *out);

/* ---- chat streams ----------------------------------------------------------------------- */

#define PD_COHERE_DECODER_TOOLS 32 /* recent tool calls whose upstream index is remembered */

/* Turns Cohere's SSE stream into canonical events. Embeddable; fields are private except
   `done` and `failed`. One per stream. */
typedef struct pd_cohere_decoder {
    pd_sse_parser sse;
    bool done;      /* message-end with a finish reason other than ERROR/TIMEOUT was decoded */
    bool failed;    /* an ERROR event was delivered: later input is ignored */
    bool started;   /* ROLE was delivered */
    uint32_t tools; /* tool calls started */
    struct {
        int64_t upstream; /* the event's "index" */
        uint32_t canonical;
    } map[PD_COHERE_DECODER_TOOLS]; /* the latest tool calls, by tools % N */
    char id[128];                   /* message-start's id ("" when none or too long) */
    /* during one pd_cohere_decode call */
    pd_chat_event_cb cb;
    void *ud;
    pd_result rc;
} pd_cohere_decoder;

void pd_cohere_decoder_init(pd_cohere_decoder *d);
/* Releases the SSE buffers. NULL is a no-op. */
void pd_cohere_decoder_free(pd_cohere_decoder *d);

/* Feeds raw body bytes (split anywhere). Per event type:
     message-start       ROLE (assistant); its id is carried by every later event
     content-start       TEXT / REASONING when the initial text/thinking is not empty
     content-delta       TEXT (delta.message.content.text), REASONING (...thinking)
     tool-plan-delta     REASONING (delta.message.tool_plan)
     tool-call-start     TOOL_START (tool_index counts tool calls from 0, whatever Cohere's
                         content "index" says) + TOOL_ARGS when arguments are not empty
     tool-call-delta     TOOL_ARGS for the call started with the same "index" (the latest call
                         when that index is unknown)
     message-end         ERROR when delta.error is a non-empty string or finish_reason is ERROR
                         (500 server_error) or TIMEOUT (504 timeout_error); otherwise FINISH
                         (mapped as for responses; a missing finish_reason counts as stop; stop
                         becomes tool_calls when a tool call started) then USAGE when
                         delta.usage is an object; sets done
     an `event: error`, or a payload without "type" that has a "message"
                         ERROR (500 server_error) with that message
     content-end, tool-call-end, citation-*, debug, unknown types, data: [DONE]: nothing.
   The type is the payload's "type", or the SSE event name when the payload has none. Empty
   fragments are not delivered; ROLE is delivered before the first other event even when
   message-start is missing. After done or an ERROR, input is ignored.
   PD_OK; PD_ERR_INVALID when a payload is not JSON (or not an object), or a tool-call-delta
   comes before any tool-call-start (the rest of the bytes is dropped); PD_ERR_TOO_LARGE when an
   event passes the SSE cap (1 MiB); PD_ERR_CLOSED when the callback stopped. */
pd_result pd_cohere_decode(pd_cohere_decoder *d, const char *bytes, size_t len, pd_chat_event_cb cb,
                           void *ud);

/* ---- embeddings ------------------------------------------------------------------------- */

/* Writes a /v2/embed body: {"model","texts":[...],"input_type","embedding_types":["float"]
   [,"output_dimension"]}. input_type is req->input_type or, when the client gave none,
   "search_document": Cohere requires one for v3+ models, and documents (what a gateway's
   callers mostly embed: corpora for retrieval) is the safe reading; a client embedding search
   queries should say "search_query". dimensions -> output_dimension. The encoding the client
   wants does not matter here (floats are always asked for, and re-encoded by the ingress).
   PD_ERR_TOO_LARGE as for chat; never PD_ERR_INVALID today (err is for future checks). */
pd_result pd_cohere_write_embed_request(const pd_embed_request *req, const char *model, pd_buf *out,
                                        pd_api_error *err);

/* Reads a /v2/embed answer: embeddings.float (v2, embeddings_by_type) or a bare "embeddings"
   array of arrays (v1's embeddings_floats); usage from meta.billed_units.input_tokens (the only
   count Cohere reports for embeddings; total = the same). PD_ERR_INVALID when there are no
   float vectors or one is not an array of numbers. */
pd_result pd_cohere_parse_embed_response(const char *body, size_t len, pd_embed_response *out);

#endif
