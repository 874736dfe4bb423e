/* openai.h: the OpenAI Chat Completions wire format <-> the canonical chat model (canon/chat.h).
 *
 * Used in two directions:
 *   - ingress: an OpenAI client's request body is parsed and validated here
 *     (pd_openai_parse_chat_request), and the answer is encoded back (pd_openai_write_chat_response
 *     for a JSON response, pd_openai_encoder for a stream, pd_openai_error_body for errors);
 *   - upstream: a request for an OpenAI-compatible server (OpenAI, llama-server, vLLM, Ollama /v1)
 *     is written (pd_openai_write_chat_request) when the client spoke another dialect, and that
 *     server's answer is decoded (pd_openai_parse_chat_response, pd_openai_decoder,
 *     pd_openai_parse_error_body). Decoding is liberal: the local servers deviate (protocols.md 5).
 *
 * Output JSON is compact, keys in a fixed documented order, numbers in their shortest form that
 * reads back to the same double, strings escaped with any invalid UTF-8 replaced by U+FFFD (so a
 * producer that cut a character in two still yields valid JSON). Every writer appends to a
 * caller's pd_buf and, on error (PD_ERR_TOO_LARGE when the buffer's limit would be passed),
 * leaves the buffer as it was.
 *
 * Ownership follows canon/chat.h: parsed structs own their contents; events handed to callbacks
 * are borrowed for the duration of the call. No function here keeps a pointer to its input.
 * Threading: no shared state; encoders and decoders are per stream.
 * Dependencies: jansson, libc, core/ only. */
#ifndef PD_PROTO_OPENAI_H
#define PD_PROTO_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon/chat.h"
#include "core/buf.h"
#include "core/result.h"
#include "proto/fastev.h"

/* Deepest nesting of arrays/objects accepted in a request body (JSON Schemas in tools are the
   deep part); deeper bodies are rejected before jansson's recursive parser sees them. */
#define PD_OPENAI_MAX_DEPTH 100

/* ---- errors ----------------------------------------------------------------------------- */

typedef struct pd_api_error {
    int status;       /* HTTP status to answer with */
    const char *type; /* static string: "invalid_request_error", "authentication_error", ... */
    const char *code; /* static string or NULL */
    char param[64];   /* "" when none; e.g. "messages[2].role" */
    char message[512];
} pd_api_error;

/* Fills *e (type and code must be static strings or NULL; a NULL type means the usual OpenAI
   type for the status; param may be NULL). The message is truncated
   to fit. */
void pd_openai_error_set(pd_api_error *e, int status, const char *type, const char *code,
                         const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Writes {"error":{"message":..,"type":..,"param":..|null,"code":..|null}} into out. */
pd_result pd_openai_error_body(const pd_api_error *e, pd_buf *out);

/* Reads an upstream's error body into *out, accepting the shapes seen in the wild
   (protocols.md 1.8, 5, 9.23): {"error":{"message","type","param","code"}} with a string or
   integer code (OpenAI, llama-server, new vLLM, Ollama /v1, Anthropic's {"type":"error",
   "error":{...}}), vLLM's old {"object":"error","message",...,"code":400}, Ollama's
   {"error":"text"}, Cohere's {"message":"..."}, FastAPI's {"detail":...}; anything else (HTML
   from a proxy, plain text) becomes the message, trimmed and truncated.
   status: http_status when >= 400, else an integer code in 400..599 from the body, else the one
   implied by the type, else 500. type: known types (OpenAI, Anthropic, llama.cpp, vLLM's
   exception names) map to a static string; unknown ones fall back to the status's usual type.
   code: a known string code ("context_length_exceeded", "rate_limit_exceeded",
   "insufficient_quota", ...) as a static string; integer or unknown codes give NULL.
   PD_OK when the body had a recognised error shape, PD_ERR_INVALID when not (*out is filled in
   both cases). */
pd_result pd_openai_parse_error_body(const char *body, size_t len, int http_status,
                                     pd_api_error *out);

/* ---- requests --------------------------------------------------------------------------- */

/* Parses and validates a /v1/chat/completions request body into the canonical request.
   Errors (PD_ERR_INVALID, err filled with status 400, type invalid_request_error, param, a clear
   message): not JSON / invalid UTF-8 ("body is not valid JSON: ..."), nested deeper than
   PD_OPENAI_MAX_DEPTH, not an object, missing or non-string model, missing/empty/non-array
   messages, a message that is not an object, unknown role, wrong content type (or a part type
   the role may not carry), tool message without tool_call_id, malformed tool calls, tools,
   tool_choice or response_format, wrong types of known sampling fields (temperature not a
   number, n not an integer, stream not a bool, ...), out-of-range values where OpenAI rejects
   them (temperature 0..2, top_p 0..1, n 1..128, top_logprobs 0..20, penalties -2..2, negative
   token caps). JSON null means "absent" for every optional field. Unknown fields, top-level or
   in messages, are kept (in raw) and are not errors. Strings containing \u0000 are rejected,
   as are integers beyond the signed 64-bit range (a jansson limit). The body is read with
   proto/jsonr.h (no jansson tree; it accepts exactly what json_loadb does, and jansson still
   words the "not valid JSON" message).
   On success *out owns the result (free with pd_chat_request_free) and out->raw holds a copy
   of the body's bytes; on error *out is left initialised and empty. */
pd_result pd_openai_parse_chat_request(const char *body, size_t len, pd_chat_request *out,
                                       pd_api_error *err);

/* Writes the canonical request as an OpenAI request body, for an OpenAI-compatible upstream
   when the client spoke another dialect (for an OpenAI client, forward req->raw instead: it
   keeps unknown fields). Key order: model, messages, tools, tool_choice, parallel_tool_calls,
   response_format, max_completion_tokens (max_tokens when sampling.max_tokens_legacy: set it
   for servers that only know that name, e.g. Ollama /v1), temperature, top_p, top_k, min_p, n,
   stop, seed, presence_penalty, frequency_penalty, logprobs, top_logprobs, reasoning_effort,
   user, stream, stream_options. Absent fields are omitted; `stream` only when true.
   Message reasoning is not written (Chat Completions has no input field for it). Message
   content keeps its form (string/array/null); AUTO content is a string for one text part, null
   for none on an assistant turn and "" on other roles. */
pd_result pd_openai_write_chat_request(const pd_chat_request *req, pd_buf *out);

/* ---- non-streaming responses ------------------------------------------------------------ */

/* Parses a chat.completion body from an OpenAI-compatible upstream. Liberal: fields of the
   wrong type are ignored; reasoning_content / reasoning become message.reasoning; tool-call
   arguments sent as an object are serialised to a string; content arrays keep their text parts.
   PD_ERR_INVALID only when the body is not a JSON object with a "choices" array.
   On success *out owns the result (free with pd_chat_response_free); on error it is empty. */
pd_result pd_openai_parse_chat_response(const char *body, size_t len, pd_chat_response *out);

/* Writes the canonical response as a chat.completion body. Message content is the
   concatenation of the text parts (null when there are none); reasoning is written as
   "reasoning_content" (the de-facto field; clear it for clients that did not opt in); finish
   reasons outside OpenAI's set (none, error, unknown) are written as null; usage is written
   when any count is known, unknown prompt/completion counts as 0 and an unknown total as their
   sum. */
pd_result pd_openai_write_chat_response(const pd_chat_response *resp, pd_buf *out);

/* ---- streams ---------------------------------------------------------------------------- */

#define PD_OPENAI_DECODER_CHOICES 8 /* choices whose tool calls are renumbered (see below) */
#define PD_OPENAI_DECODER_TOOLS 32  /* tool calls per choice tracked for that */

typedef struct pd_openai_decoder_choice {
    uint32_t started;                             /* tool calls started so far */
    uint32_t last;                                /* canonical index of the latest one */
    uint8_t by_upstream[PD_OPENAI_DECODER_TOOLS]; /* upstream index -> canonical + 1 */
    uint32_t id_hash[PD_OPENAI_DECODER_TOOLS];    /* canonical index -> hash of its id */
} pd_openai_decoder_choice;

/* Turns the data payloads of an OpenAI-style SSE stream into canonical events. Embeddable,
   fields private except `done`. One per stream. */
typedef struct pd_openai_decoder {
    bool done;      /* the upstream sent data: [DONE] */
    bool full_path; /* false (init): a chunk of the common text shape is read by proto/fastev
                       without jansson; true: always the full decoder (the tests that compare
                       the two set it) */
    pd_openai_decoder_choice choices[PD_OPENAI_DECODER_CHOICES];
    pd_fastev_memo memo; /* the last text chunk's bytes around its text (proto/fastev.h) */
} pd_openai_decoder;

void pd_openai_decoder_init(pd_openai_decoder *d);

/* Decodes one SSE data payload (pd_sse_event.data). Per choice, in this order: ROLE (delta.role),
   REASONING (delta.reasoning_content or delta.reasoning), TEXT (delta.content), REFUSAL,
   TOOL_START (+ TOOL_ARGS when the first fragment already carries arguments) / TOOL_ARGS per
   tool-call fragment, FINISH (finish_reason); then USAGE when the chunk has a usage object
   (vLLM's continuous usage sends one per chunk: counts are cumulative, assign, never add).
   A TEXT event's logprobs is the choice's "logprobs" object when it is one (borrowed from the
   chunk). Empty text fragments are not delivered, except an empty delta.content whose logprobs
   list tokens (a token that completes no character yet). Every event carries the chunk's
   id/model/created.
   Tool calls are numbered 0,1,2... per choice in the order they start, whatever the upstream's
   `index` says: a fragment with a new id (or a name at an unseen index) starts a call, a
   fragment without one continues the call at its index, or the latest call when the index is
   missing or reused (protocols.md 9.13).
   An error payload ({"error":...}, {"object":"error",...}, or an object with a "message" and no
   "choices", as llama-server's error: line carries) is delivered as one ERROR event.
   "[DONE]" sets d->done and delivers nothing.
   PD_OK; PD_ERR_INVALID when the payload is neither JSON object nor [DONE] (nothing delivered);
   PD_ERR_CLOSED when the callback stopped. */
pd_result pd_openai_decode_chunk(pd_openai_decoder *d, const char *data, size_t len,
                                 pd_chat_event_cb cb, void *ud);

/* Writes canonical events as OpenAI chat.completion.chunk SSE events, with the same id,
   created and model on every chunk. One per stream; init copies what it needs. */
typedef struct pd_openai_encoder {
    pd_buf head;     /* data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..
                        then ,"choices":[{"index":0,"delta":{"content":" (a text chunk's start) */
    size_t head_len; /* up to the model */
    char *id;
} pd_openai_encoder;

void pd_openai_encoder_init(pd_openai_encoder *e, const char *id, const char *model,
                            int64_t created);
void pd_openai_encoder_free(pd_openai_encoder *e); /* NULL is a no-op */

/* Appends one "data: {...}\n\n" event for ev to out. Deltas: ROLE {"role":..,"content":""},
   TEXT {"content":..}, REASONING {"reasoning_content":..}, REFUSAL {"refusal":..},
   TOOL_START {"tool_calls":[{"index","id","type":"function","function":{"name","arguments":""}}]}
   (a missing id is replaced by "call_<stream id without chatcmpl->_<index>"), TOOL_ARGS
   {"tool_calls":[{"index","function":{"arguments"}}]}, FINISH {} plus finish_reason; USAGE is a
   chunk with "choices":[] and "usage"; ERROR is {"error":{"message","type","param":null,"code"}}.
   The choice's "logprobs" is the TEXT event's logprobs object, written as it is, and null on
   every other chunk. */
pd_result pd_openai_encode_event(pd_openai_encoder *e, const pd_chat_event *ev, pd_buf *out);

/* Appends "data: [DONE]\n\n". */
pd_result pd_openai_encode_done(pd_buf *out);

#endif
