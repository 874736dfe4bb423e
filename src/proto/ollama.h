/* ollama.h: Ollama's native API (/api/chat, /api/embed) <-> the canonical models (canon/chat.h,
 * canon/embed.h). Upstream direction only (protocols.md section 4, recipe 7.4).
 *
 * Request translation (pd_ollama_write_chat_request):
 *   content           -> a plain string: the text parts joined with "\n" (Ollama has no parts)
 *   inline images     -> "images": [raw base64], on the message that carried them. Images by
 *                        URL are refused (400): Ollama takes bytes only, and fetching URLs for a
 *                        client is a download-and-SSRF policy this module does not make
 *   system, developer -> {"role":"system"}
 *   assistant         -> "thinking" (the message's reasoning) and "tool_calls":
 *                        [{"id","function":{"index","name","arguments":{OBJECT}}}]. The OpenAI
 *                        arguments string is checked to be one JSON object and then copied
 *                        byte for byte (key order and number spelling kept, so Ollama's prompt
 *                        cache sees the same prefix); "" or blank means {}; anything else
 *                        (invalid JSON, an array, a string) is a 400 naming the field, since
 *                        Ollama answers such a body with an opaque 400 of its own (pitfall 9.12)
 *   tool results      -> {"role":"tool","content","tool_name","tool_call_id"}, tool_name looked
 *                        up from the earlier assistant call with that id (omitted when none)
 *   tools             -> {"type":"function","function":{name,description,parameters}}
 *   tool_choice       -> none: no tools sent; a named tool: only that tool; allowed_tools: only
 *                        those; required: all tools (Ollama cannot force a call: best effort)
 *   response_format   -> json_object: "format":"json" (its schema when one came with it);
 *                        json_schema: "format": <schema>; text: nothing
 *   sampling          -> "options": {num_predict, temperature, top_p, top_k, min_p, stop, seed,
 *                        frequency_penalty, presence_penalty}, each only when given
 *   reasoning_effort  -> "think": none -> false; minimal, low -> "low"; medium -> "medium";
 *                        high, xhigh, max -> "high"; others: not sent
 *   logprobs, top_logprobs -> same names (top level, as Ollama has them)
 *   stream            -> always written: Ollama streams when it is omitted (pitfall 9.21)
 * Dropped: message names, refusals, parallel_tool_calls, user. Refused with a 400: n > 1, audio
 * and file parts, image URLs, custom tools and custom tool calls, bad tool-call arguments, a
 * named tool_choice naming no given tool.
 *
 * Response translation (the non-streaming body is the final stream object): message.content ->
 * one text part (none when empty); message.thinking -> reasoning; message.tool_calls -> tool
 * calls, arguments serialised in the order received (pd_jw_dump), the upstream id or NULL;
 * model -> model; created_at (RFC 3339) -> created; no id (Ollama has none). done_reason: stop,
 * load, unload or absent -> stop; length -> length; others -> unknown; stop becomes tool_calls
 * when the message has tool calls (Ollama says "stop" for tool turns). Usage: prompt_eval_count
 * -> prompt, eval_count -> completion; on a final (done:true) object an absent count is 0,
 * because Ollama omits zero counts (Go omitempty) rather than unknown ones; total is not
 * reported.
 *
 * Ownership follows canon/chat.h; no function keeps a pointer to its input. Threading: no
 * shared state; a decoder is per stream. Dependencies: jansson, core/, proto/jsonw,
 * proto/openai (pd_api_error and its helpers). */
#ifndef PD_PROTO_OLLAMA_H
#define PD_PROTO_OLLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon/chat.h"
#include "canon/embed.h"
#include "core/buf.h"
#include "core/result.h"
#include "proto/openai.h"

/* ---- chat ------------------------------------------------------------------------------- */

/* Writes req as an /api/chat body into out, naming `model` (NULL: req->model). Key order:
   model, messages, tools, format, options, think, logprobs, top_logprobs, stream.
   PD_ERR_INVALID with err filled (400 invalid_request_error, param naming the field) for what
   Ollama cannot take (see above); PD_ERR_TOO_LARGE when out's limit would be passed. On error
   out is left as it was. */
pd_result pd_ollama_write_chat_request(const pd_chat_request *req, const char *model, pd_buf *out,
                                       pd_api_error *err);

/* Parses a whole /api/chat response (stream:false). PD_ERR_INVALID when the body is not a JSON
   object with a "message" object (an {"error":...} body included). On success *out owns the
   result (one choice); on error it is initialised and empty. */
pd_result pd_ollama_parse_chat_response(const char *body, size_t len, pd_chat_response *out);

/* Reads any error body: {"error":"text"} (Ollama's own), the shapes pd_openai_parse_error_body
   knows, or plain text. The status is kept; a 404 whose message says "not found" gets code
   "model_not_found" (what Ollama answers for a model that is not pulled). */
void pd_ollama_parse_error_body(long status, const char *body, size_t len, pd_api_error *out);

/* RFC 3339 ("2025-07-07T20:32:53.844124Z", "...+02:00") to Unix seconds; 0 when malformed. */
int64_t pd_ollama_parse_time(const char *s, size_t n);

/* ---- chat streams (NDJSON) -------------------------------------------------------------- */

#define PD_OLLAMA_MAX_LINE (1024 * 1024) /* the longest NDJSON line accepted */

/* Turns Ollama's NDJSON stream into canonical events. Embeddable; fields are private except
   `done` and `failed`. One per stream. */
typedef struct pd_ollama_decoder {
    pd_buf line;    /* an unfinished line carried over to the next feed (capped) */
    bool done;      /* the done:true object was decoded */
    bool failed;    /* an ERROR event was delivered, or a line passed the cap */
    bool overflow;  /* a line passed the cap: every later call fails */
    bool started;   /* ROLE was delivered */
    uint32_t tools; /* tool calls started */
} pd_ollama_decoder;

void pd_ollama_decoder_init(pd_ollama_decoder *d);
/* Releases the line buffer. NULL is a no-op. */
void pd_ollama_decoder_free(pd_ollama_decoder *d);

/* Feeds raw body bytes (split anywhere, lines end with "\n", a "\r" before it is ignored, blank
   lines are skipped). Per object, in this order:
     {"error": ...}        ERROR (500 server_error, the error text); later input is ignored
     first object          ROLE (assistant)
     message.thinking      REASONING, when not empty
     message.content       TEXT, when not empty
     message.tool_calls    per call: TOOL_START (tool_index counts calls from 0; the upstream
                           id or NULL; the name) + one TOOL_ARGS with the serialised arguments
     done:true             FINISH (as for responses; tool_calls when any call was seen) then
                           USAGE; sets done, later input is ignored
   Every event carries the object's model and created_at (id stays NULL).
   PD_OK; PD_ERR_INVALID when a line is not a JSON object (the rest of the bytes is dropped);
   PD_ERR_TOO_LARGE when a line passes PD_OLLAMA_MAX_LINE (every later call fails the same way);
   PD_ERR_CLOSED when the callback stopped. */
pd_result pd_ollama_decode(pd_ollama_decoder *d, const char *bytes, size_t len, pd_chat_event_cb cb,
                           void *ud);

/* ---- embeddings ------------------------------------------------------------------------- */

/* Writes an /api/embed body: {"model","input": the one string the client sent, or the array,
   ["dimensions"]}. PD_ERR_TOO_LARGE as for chat (err is for future checks). */
pd_result pd_ollama_write_embed_request(const pd_embed_request *req, const char *model, pd_buf *out,
                                        pd_api_error *err);

/* Reads an /api/embed answer: "embeddings" (array of arrays), "model", prompt_eval_count ->
   prompt and total tokens (absent: 0, as above). Also accepts the legacy /api/embeddings
   shape {"embedding":[...]} as one vector. PD_ERR_INVALID when there are no vectors or one is
   not an array of numbers. */
pd_result pd_ollama_parse_embed_response(const char *body, size_t len, pd_embed_response *out);

#endif
