/* anthropic.h: the Anthropic Messages wire format (POST /v1/messages, anthropic-version
 * 2023-06-01) <-> the canonical chat model (canon/chat.h).
 *
 * Used in two directions, like proto/openai.h:
 *   - ingress: an Anthropic client's request body is parsed and validated here
 *     (pd_anthropic_parse_chat_request), and the answer is encoded back
 *     (pd_anthropic_write_chat_response, pd_anthropic_encoder, pd_anthropic_error_body);
 *   - upstream: a request for an Anthropic upstream is written from the canonical request
 *     (pd_anthropic_write_chat_request) when the client spoke another dialect, and the upstream's
 *     answer is decoded (pd_anthropic_parse_chat_response, pd_anthropic_decoder,
 *     pd_anthropic_parse_error_body).
 *
 * What the canonical model cannot carry, and so what translation loses (an Anthropic client on an
 * Anthropic upstream should take the pass-through path, which loses nothing):
 *   - thinking signatures and redacted_thinking blocks (thinking text becomes
 *     message.reasoning; the writer does not send reasoning back, since Anthropic rejects a
 *     thinking block without its signature), cache_control, citations, document blocks other
 *     than base64 PDFs, server tools;
 *   - tool_result.is_error (OpenAI has no field for it either): the result's text is prefixed
 *     with "Error: " (protocols.md 6.7);
 *   - the matched stop_sequence (stop_sequence answers become end_turn);
 *   - block order inside one message: canonical messages hold text parts and tool calls
 *     apart, so an assistant turn is written text first, then tool_use blocks; a user turn
 *     becomes its tool results (one TOOL message each) followed by one USER message with the
 *     rest (protocols.md 6.7).
 *
 * Output JSON is written with proto/jsonw.h: compact, keys in the order documented per function,
 * shortest round-trip numbers, invalid UTF-8 replaced by U+FFFD. Every writer appends to a
 * caller's pd_buf and, on error (PD_ERR_TOO_LARGE when the buffer's limit would be passed),
 * leaves the buffer as it was.
 *
 * Ownership follows canon/chat.h: parsed structs own their contents; events handed to callbacks
 * are borrowed for the duration of the call. No function here keeps a pointer to its input.
 * Threading: no shared state; encoders and decoders are per stream.
 * Dependencies: jansson, libc, core/, proto/jsonw, proto/sse, proto/openai (pd_api_error). */
#ifndef PD_PROTO_ANTHROPIC_H
#define PD_PROTO_ANTHROPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon/chat.h"
#include "core/buf.h"
#include "core/result.h"
#include "proto/openai.h" /* pd_api_error */
#include "proto/fastev.h"
#include "proto/sse.h"

#define PD_ANTHROPIC_VERSION "2023-06-01" /* the anthropic-version header sent upstream */
#define PD_ANTHROPIC_MAX_DEPTH 100        /* deepest nesting accepted in a request body */
/* max_tokens is required by Anthropic; OpenAI clients often omit it (protocols.md 9.16). This
   is what an Anthropic upstream is sent then. */
#define PD_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

/* ---- errors ----------------------------------------------------------------------------- */

/* Anthropic's error type for an HTTP status: 400 invalid_request_error, 401
   authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 413
   request_too_large, 429 rate_limit_error, 500 api_error, 503 and 529 overloaded_error, 504
   timeout_error; other 4xx invalid_request_error, other 5xx api_error. A static string. */
const char *pd_anthropic_error_type(int status);

/* The status Anthropic answers an error type with (the table above read backwards: 529 for
   overloaded_error), or 0 for a type that is not Anthropic's. */
int pd_anthropic_error_status(const char *type);

/* Writes {"type":"error","error":{"type":..,"message":..}}. The type is e->type when it is one
   of Anthropic's (the table above), else the one for e->status (an OpenAI "server_error" on a
   502 becomes "api_error"). */
pd_result pd_anthropic_error_body(const pd_api_error *e, pd_buf *out);

/* Reads an upstream's error body into *out: Anthropic's shape, and anything
   pd_openai_parse_error_body reads (it delegates there: a body that is not JSON becomes the
   message). status: http_status when >= 400, else the one the type implies (529 for
   overloaded_error), else 500. type: a static string, the body's own when it is a known one
   (Anthropic's types are), else the status's usual one. PD_OK when the body had a recognised
   error shape, PD_ERR_INVALID when not (*out is filled in both cases). */
pd_result pd_anthropic_parse_error_body(const char *body, size_t len, int http_status,
                                        pd_api_error *out);

/* ---- requests --------------------------------------------------------------------------- */

/* Parses and validates a /v1/messages request body into the canonical request.
   Mapping: top-level system (a string or text blocks) and role "system" messages -> SYSTEM
   messages (the top-level one first); user content blocks text / image (base64 and url
   sources) / document (base64 PDF, as a FILE part holding a data: URI) -> parts; each
   tool_result -> one TOOL message (content string or text/image blocks; images go to the USER
   message that follows the results; is_error prefixes "Error: "); assistant text -> parts,
   tool_use -> tool calls (input serialised as the arguments string), thinking -> reasoning
   (joined), redacted_thinking -> dropped; tools (name, description, input_schema, strict);
   tool_choice auto/any/tool/none (+ disable_parallel_tool_use -> parallel_tool_calls false);
   max_tokens, temperature, top_p, top_k, stop_sequences, stream; metadata.user_id -> user;
   output_config.effort -> reasoning_effort; output_config.format json_schema ->
   response_format (named "output"). cache_control, thinking (validated), service_tier and
   unknown fields stay in raw only.
   Errors (PD_ERR_INVALID; err: status 400, type invalid_request_error, param = the JSON path
   in Anthropic's dotted form "messages.1.content.0.type", message "<path>: <what is wrong>"):
   not JSON or nested deeper than PD_ANTHROPIC_MAX_DEPTH, not an object, missing model /
   max_tokens (an integer >= 1) / messages (a non-empty array); a role other than user,
   assistant, system; the first non-system message not a user one; empty content (an empty
   string or array, an empty text block) except in a final assistant message; an unknown block
   type or one the role may not carry; malformed blocks (image sources, tool_use without an id,
   a name or an object input, ...); a tool_result whose tool_use_id is not a tool_use of the
   immediately preceding assistant message; a tool_use whose result is missing from the next
   message; malformed tools (server tools included: only client tools with an input_schema are
   served), tool_choice, system, metadata, thinking, output_config; wrong types or ranges of
   sampling fields (temperature and top_p 0..1, top_k >= 0). JSON null means "absent" for every
   optional field. Strings containing \u0000 are rejected, as are integers beyond int64.
   The body is read with proto/jsonr.h, as in pd_openai_parse_chat_request.
   On success *out owns the result and out->raw holds a copy of the body's bytes (for the
   pass-through path); on error *out is left initialised and empty. */
pd_result pd_anthropic_parse_chat_request(const char *body, size_t len, pd_chat_request *out,
                                          pd_api_error *err);

/* Writes the canonical request as an Anthropic request body for an Anthropic upstream, with
   `model` (NULL: req->model). Key order: model, max_tokens, system, messages, tools,
   tool_choice, temperature, top_p, top_k, stop_sequences, metadata, stream.
   Translation (protocols.md 7.5): system and developer messages, wherever they are, are joined
   with a blank line into the top-level system string; consecutive turns of the same role are
   merged (TOOL messages are user turns of tool_result blocks, placed before the turn's other
   blocks); a turn of exactly one text block is written as a string; empty text parts and
   empty turns are dropped; assistant tool calls become tool_use blocks whose input is the
   arguments parsed (blank -> {}; anything that is not a JSON object -> {"_raw_arguments":
   "<text>"}); reasoning is not written; tool-call ids are made to match Anthropic's
   ^[A-Za-z0-9_-]+$ by replacing other bytes with '_' (the same way in tool_use and
   tool_result, so the pairs still match); images -> base64 / url sources; a FILE part with a
   data:application/pdf;base64 URI -> a document block. max_tokens: the client's, else
   PD_ANTHROPIC_DEFAULT_MAX_TOKENS. temperature is clamped to 1; top_p is dropped when
   temperature is set (newer Claude models reject the pair, protocols.md 9.15); a negative
   top_k is dropped; stop -> stop_sequences; user -> metadata.user_id; tool_choice none/auto/
   required/named -> none/auto/any/tool (allowed_tools: only those tools are sent);
   parallel_tool_calls false -> disable_parallel_tool_use (with type auto when no choice was
   given); tool strict flags are not sent (older API versions reject the field).
   Dropped silently (no Anthropic equivalent, harmless to lose): seed, presence and frequency
   penalties, min_p, reasoning_effort, include_usage (Anthropic always streams usage), n = 1.
   response_format json_object / json_schema (the 2023-06-01 API has no such field) is served
   by a forced tool, as LiteLLM does: tools is one tool named pd_anthropic_json_tool(req) whose
   input_schema is the client's schema (json_object: {"type":"object"}), with the format's
   description when given, and tool_choice {"type":"tool","name":..,
   "disable_parallel_tool_use":true} (exactly one call). The answer's tool input is the JSON:
   decode it with that name (pd_anthropic_parse_json_response, pd_anthropic_decoder_set_json_tool).
   Because the tool is forced, the model cannot also call the client's tools: a request with
   both response_format json_* and tools, or with tool_choice required / a named tool, is
   refused (code "unsupported_value", param "response_format" or "tool_choice"); tool_choice
   none / auto without tools is harmless and ignored. A json_schema whose top level is not
   {"type":"object"} is refused too (a tool input is always an object).
   Errors (PD_ERR_INVALID, err 400 invalid_request_error, code "unsupported_parameter" or
   "unsupported_value", message "... cannot be honoured by provider kind anthropic"): n > 1,
   logprobs true or top_logprobs > 0, the response_format cases above, custom tools or tool
   calls, audio parts, FILE parts other than base64 PDFs, no user or assistant turn left to
   send. PD_ERR_TOO_LARGE: out's limit (err: 413). Nothing is appended on error. */
pd_result pd_anthropic_write_chat_request(const pd_chat_request *req, const char *model,
                                          pd_buf *out, pd_api_error *err);

/* Tool names are ^[a-zA-Z0-9_-]{1,64}$ on Anthropic's API. */
#define PD_ANTHROPIC_TOOL_NAME_MAX 64

/* The name of the forced tool that carries response_format json_object / json_schema (see
   pd_anthropic_write_chat_request): "json_response", or "json_response_2", "_3", ... when a
   tool or a tool call of req already has that name (it must not be mistaken for one of the
   client's). Writes it to name (NUL-terminated) and returns true when req asks for a JSON
   format; returns false (name "") otherwise. A pure function of req: the request writer and
   the response decoders derive the same name from the same request. */
bool pd_anthropic_json_tool(const pd_chat_request *req, char name[PD_ANTHROPIC_TOOL_NAME_MAX + 1]);

/* ---- non-streaming responses ------------------------------------------------------------ */

/* Parses a Messages response from an Anthropic upstream into one choice. text blocks -> text
   parts; thinking blocks -> reasoning (joined); tool_use -> tool calls (input serialised);
   other blocks (redacted_thinking, server tool blocks) are skipped. stop_reason: end_turn,
   stop_sequence, pause_turn -> stop; max_tokens, model_context_window_exceeded -> length;
   tool_use -> tool_calls; refusal -> content_filter; null -> none; others -> unknown.
   Usage (OpenAI semantics, canon/chat.h): prompt = input_tokens + cache_creation_input_tokens
   + cache_read_input_tokens (unknown when input_tokens is absent), cached = cache reads,
   cache_write = cache creation, completion = output_tokens, reasoning =
   output_tokens_details.thinking_tokens, total unknown (Anthropic does not report one).
   created is 0. Liberal: fields of the wrong type are ignored. PD_ERR_INVALID only when the
   body is not a JSON object with a "content" array. On success *out owns the result. */
pd_result pd_anthropic_parse_chat_response(const char *body, size_t len, pd_chat_response *out);

/* pd_anthropic_parse_chat_response for a request written with the forced JSON tool json_tool
   (pd_anthropic_json_tool; NULL or "": exactly pd_anthropic_parse_chat_response). The input of
   the tool_use block named json_tool, serialised compactly, is the message's one text part
   (an input that is not an object reads as "{}"); text blocks are dropped (the client asked
   for JSON only; a forced tool leaves none anyway); the finish is stop where the upstream said
   tool_use, unless another tool was called. */
pd_result pd_anthropic_parse_json_response(const char *body, size_t len, const char *json_tool,
                                           pd_chat_response *out);

/* Writes choice 0 of the canonical response as a Messages response:
   {"id","type":"message","role":"assistant","model","content":[...],"stop_reason",
    "stop_sequence":null,"stop_details":null,"usage":{"input_tokens",
    "cache_creation_input_tokens","cache_read_input_tokens","output_tokens"
    [,"output_tokens_details":{"thinking_tokens"}]}} (the details when reasoning is known).
   Content: reasoning -> one thinking block (signature ""), non-empty text parts and the
   refusal -> text blocks, tool calls -> tool_use blocks (input as in the request writer; a
   missing id becomes "toolu_<index>"). stop_reason: tool_use when there are tool calls, else
   stop -> end_turn, length -> max_tokens, tool_calls -> tool_use, content_filter -> refusal,
   anything else -> end_turn. Usage (protocols.md 6.9, reverse): input_tokens = prompt - cached
   - cache_write (not below 0), unknown counts as 0. */
pd_result pd_anthropic_write_chat_response(const pd_chat_response *resp, pd_buf *out);

/* ---- streams: decoding an Anthropic upstream ----------------------------------------------- */

/* Turns an Anthropic SSE stream (raw bytes) into canonical events (protocols.md 7.1).
   Embeddable; fields private except `done` and `failed`. One per stream. */
typedef struct pd_anthropic_decoder {
    bool done;   /* message_stop was seen: the stream is complete */
    bool failed; /* an error event was delivered, or the stream was malformed: the rest of the
                    input is ignored */
    bool full_path; /* false (init): a text_delta of the open text block is read by
                       proto/fastev without jansson; true: always the full decoder (the tests
                       that compare the two set it) */
    pd_sse_parser sse;
    char *id, *model;        /* from message_start */
    int64_t in, cache_write, cache_read, out, thinking; /* Anthropic's counts; -1 unknown */
    pd_chat_finish finish;   /* from message_delta's stop_reason */
    uint32_t tools;          /* tool_use blocks started so far */
    int64_t block;           /* index of the open content block, -1 when none */
    int kind;                /* what the open block is (private enum) */
    uint32_t tool;           /* the open block's canonical tool index */
    int args;                /* how the open tool block got arguments (private enum) */
    char json_tool[PD_ANTHROPIC_TOOL_NAME_MAX + 1]; /* the forced JSON tool, "" when none */
    pd_chat_event_cb cb;     /* during one pd_anthropic_decode call */
    void *ud;
    pd_result rc;
    pd_fastev_memo memo; /* the last text_delta's bytes around its text (proto/fastev.h) */
} pd_anthropic_decoder;

/* max_event_bytes: cap on one SSE event (0: PD_SSE_DEFAULT_MAX_EVENT). */
void pd_anthropic_decoder_init(pd_anthropic_decoder *d, size_t max_event_bytes);
void pd_anthropic_decoder_free(pd_anthropic_decoder *d); /* NULL is a no-op */

/* Decodes the stream of a request written with the forced JSON tool json_tool (as
   pd_anthropic_parse_json_response does a whole body): that tool_use block yields no
   TOOL_START; its input (input_json_delta fragments, or the input the start carries) comes as
   TEXT events, "{}" when it had none; text blocks are dropped; FINISH is stop where the
   upstream said tool_use, unless another tool was called. Call before the first decode.
   NULL or "" (the default): a plain decoder. A longer name than the limit is cut. */
void pd_anthropic_decoder_set_json_tool(pd_anthropic_decoder *d, const char *json_tool);

/* Feeds upstream bytes as they arrive (split anywhere). Events, by the JSON "type" of each SSE
   event (the event: name when there is no type):
     message_start          ROLE assistant (id and model are put on every later event)
     content_block_start    text: TEXT when the block starts with text; thinking: REASONING
                            likewise; tool_use: TOOL_START (tool_index 0,1,2... in the order the
                            tool blocks start, never the block index: protocols.md 9.1), plus
                            TOOL_ARGS with the serialised input when the start carries a
                            non-empty one (its input_json_deltas are then ignored); other
                            blocks are ignored with their deltas
     content_block_delta    text_delta TEXT, thinking_delta REASONING, input_json_delta
                            TOOL_ARGS (empty fragments skipped); signature_delta and
                            citations_delta are dropped
     content_block_stop     a tool block that had no arguments at all gets TOOL_ARGS "{}"
     message_delta          stop_reason and usage are kept (assigned, never added)
     message_stop           FINISH (mapped as in pd_anthropic_parse_chat_response, tool_calls
                            whenever a tool block was seen and the reason was a stop), then
                            USAGE (when any count is known); sets d->done
     error                  ERROR (status and type from error.type: overloaded_error 529, ...;
                            a body that is not JSON becomes the message); sets d->failed
     ping, unknown types    ignored
   PD_OK; PD_ERR_INVALID when an event is not a JSON object (other than an error event) or an
   event passes the size cap (d->failed is set, nothing more is delivered); PD_ERR_CLOSED when
   the callback stopped. Input after message_stop or after a failure is ignored. */
pd_result pd_anthropic_decode(pd_anthropic_decoder *d, const char *bytes, size_t len,
                              pd_chat_event_cb cb, void *ud);

/* Decodes one SSE event given apart (name may be NULL); same rules and results. */
pd_result pd_anthropic_decode_event(pd_anthropic_decoder *d, const char *name, size_t name_len,
                                    const char *data, size_t len, pd_chat_event_cb cb, void *ud);

/* ---- streams: encoding for an Anthropic client --------------------------------------------- */

/* Writes canonical events as an Anthropic event stream (protocols.md 7.2): message_start,
   content blocks with strictly increasing indices, one open at a time, closed before the next
   opens; message_delta with stop_reason and usage; message_stop. Embeddable, fields private;
   one per stream; init copies what it needs. */
typedef struct pd_anthropic_encoder {
    char *id, *model;
    bool started;           /* message_start was written */
    bool ended;             /* message_stop or an error was written: nothing more is */
    int open;               /* the open block's kind (private enum), 0 when none */
    uint32_t open_tool;     /* the open tool block's canonical tool index */
    uint32_t next_block;    /* index of the next block to open */
    uint32_t tools_started; /* TOOL_START events seen */
    pd_chat_finish finish;
    pd_chat_usage usage;
} pd_anthropic_encoder;

void pd_anthropic_encoder_init(pd_anthropic_encoder *e, const char *id, const char *model);
void pd_anthropic_encoder_free(pd_anthropic_encoder *e); /* NULL is a no-op */

/* Appends the SSE events ("event: NAME\ndata: JSON\n\n" each) that ev calls for:
     any first event      message_start {"id","type":"message","role":"assistant","model",
                          "content":[],"stop_reason":null,"stop_sequence":null,"usage":{all four
                          counts 0}} (id and model are the encoder's: the gateway's)
     ROLE                 nothing more
     TEXT, REFUSAL        a text block (opened when the open block is not one) + text_delta
     REASONING            a thinking block {"thinking":"","signature":""} + thinking_delta
     TOOL_START           closes the open block, opens a tool_use block {"id","name","input":{}}
                          (a missing id becomes "toolu_<stream id>_<tool index>")
     TOOL_ARGS            input_json_delta in the open tool block
     FINISH, USAGE        kept for pd_anthropic_encode_end (usage follows the finish)
     ERROR                event: error (as pd_anthropic_encode_error); nothing more is written
   Events of choices other than 0 and empty text fragments write nothing.
   PD_ERR_INVALID (nothing written) for TOOL_ARGS of a call whose block is not the open one
   (arguments of parallel calls interleaved by the upstream: an Anthropic stream cannot reopen
   a block, so the stream must end as broken rather than carry wrong arguments);
   PD_ERR_TOO_LARGE: out's limit (nothing written, state unchanged). */
pd_result pd_anthropic_encode_event(pd_anthropic_encoder *e, const pd_chat_event *ev, pd_buf *out);

/* The end of a complete stream: message_start when nothing was written yet, content_block_stop
   of the open block, message_delta {"delta":{"stop_reason","stop_sequence":null,
   "stop_details":null},"usage":{"input_tokens","cache_creation_input_tokens",
   "cache_read_input_tokens","output_tokens"}} (stop_reason and usage as in
   pd_anthropic_write_chat_response), message_stop. Writes nothing after an error. */
pd_result pd_anthropic_encode_end(pd_anthropic_encoder *e, pd_buf *out);

/* An in-stream error that ends a broken stream: event: error, data {"type":"error","error":
   {"type","message"}} (type as in pd_anthropic_error_body). Nothing is written afterwards. */
pd_result pd_anthropic_encode_error(pd_anthropic_encoder *e, const pd_api_error *err,
                                    pd_buf *out);

#endif
