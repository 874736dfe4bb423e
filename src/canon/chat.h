/* chat.h: Pendulum's canonical chat model.
 *
 * Every provider adapter translates to and from these structs: an ingress protocol (OpenAI
 * /v1/chat/completions, Anthropic /v1/messages) parses a client body into a pd_chat_request;
 * an upstream adapter (OpenAI-compatible, Anthropic, Cohere, Ollama, embedded llama.cpp) turns
 * that request into its own wire form, and turns the upstream's answer into a pd_chat_response
 * or a sequence of pd_chat_event values; the ingress encodes those back for the client. N
 * decoders + M encoders instead of N x M translators (protocols.md section 7).
 *
 * The model follows OpenAI Chat Completions where it has to pick a shape (roles, parts, tool
 * calls with JSON-string arguments, finish reasons), because OpenAI's is the most general and
 * the most common dialect; what OpenAI lacks but others need (reasoning text, top_k, min_p,
 * cache-write tokens) is added as optional fields.
 *
 * ABSENT vs ZERO. Optional scalars carry a `has_` flag (or a pd_chat_tri) so "the client did not
 * say" stays distinct from 0/false; token counts use PD_CHAT_COUNT_UNKNOWN (-1) for "the
 * upstream did not report this", which is not the same as 0 when billing. A zero-filled request
 * (pd_chat_request_init) means "nothing given".
 *
 * OWNERSHIP. A request keeps everything it points to in its own arena (core/arena.h, the field
 * `arena`: h2o's memory pool per request): strings (NUL-terminated UTF-8), arrays and
 * pd_chat_json texts. Nothing in a request is freed on its own: pd_chat_request_free releases
 * the arena, and every string and array with it, at once. To set or replace a field of a
 * request, allocate from that request (pd_chat_request_alloc / _strndup / _strdup, or
 * pd_arena_* on &r->arena), never with malloc, and never free() what a field held: the old
 * value stays in the arena, unused, until the request is freed. Copying the struct by value
 * gives a view that shares the arena: only one copy is freed.
 * A response owns everything it points to the usual way: strings and arrays malloc'ed, json_t
 * pointers holding one reference each; pd_chat_response_free / pd_chat_message_free release
 * everything reachable (pd_chat_message_free is for a response's messages, never a request's).
 * The free functions leave the struct zeroed (re-initialised), so freeing twice or freeing NULL
 * is a no-op. pd_chat_event is a borrowed VIEW handed to a callback: its pointers are valid only
 * during that call.
 *
 * Threading: plain data, no shared state; a value may move between threads.
 * Dependencies: jansson, core/arena and core/buf (allocation), libc. */
#ifndef PD_CANON_CHAT_H
#define PD_CANON_CHAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* A boolean that may also be "not given". Zero is UNSET so zero-filled structs mean "absent". */
typedef enum pd_chat_tri { PD_TRI_UNSET = 0, PD_TRI_FALSE, PD_TRI_TRUE } pd_chat_tri;

/* A JSON value carried as its text, not as a tree: requests keep tool schemas and the client's
   body this way, so that parsing a request builds no jansson tree (proto/jsonr.h says why) and
   writers copy the bytes. text is valid JSON, in the request's arena and NUL-terminated after
   len bytes (len counts everything; a body may hold a NUL that jansson skips, see jsonr.h);
   NULL when absent. */
typedef struct pd_chat_json {
    char *text;
    size_t len;
} pd_chat_json;

/* The value as a new jansson tree (a new reference; json_loadb with flags 0), or NULL when
   absent. For consumers off the hot paths that want to walk or edit it. */
json_t *pd_chat_json_tree(const pd_chat_json *j);

/* ---- messages ------------------------------------------------------------------------- */

typedef enum pd_chat_role {
    PD_ROLE_SYSTEM,
    PD_ROLE_DEVELOPER, /* OpenAI's successor of system for o1+; others treat it as system */
    PD_ROLE_USER,
    PD_ROLE_ASSISTANT,
    PD_ROLE_TOOL /* the result of one tool call (tool_call_id says which) */
} pd_chat_role;

/* "system", "developer", "user", "assistant", "tool" (the names OpenAI, Cohere and Ollama use). */
const char *pd_chat_role_name(pd_chat_role role);
/* Sets *out from a role name; returns false for an unknown name (len bytes, no NUL needed). */
bool pd_chat_role_from_name(const char *name, size_t len, pd_chat_role *out);

typedef enum pd_chat_part_kind {
    PD_PART_TEXT,
    PD_PART_IMAGE,
    PD_PART_AUDIO,
    PD_PART_FILE,
    PD_PART_REFUSAL /* an assistant refusal given as a content part (OpenAI allows exactly one) */
} pd_chat_part_kind;

/* One piece of message content. Which fields are used depends on kind; the others are NULL. */
typedef struct pd_chat_part {
    pd_chat_part_kind kind;
    char *text;       /* TEXT, REFUSAL: the text (never NULL for these kinds) */
    char *url;        /* IMAGE by reference: the URL as given (https:, http:, file:, or a data: URI
                         this model could not split); NULL for an inline image */
    char *data;       /* IMAGE inline: base64 bytes, without any "data:...," prefix;
                         AUDIO: base64 audio; FILE: the file contents as given (OpenAI sends a
                         data: URI there); NULL when absent */
    char *media_type; /* IMAGE inline: the MIME type, e.g. "image/png" */
    char *detail;     /* IMAGE: "auto" | "low" | "high" when given */
    char *format;     /* AUDIO: "wav", "mp3", ... */
    char *file_id;    /* FILE: the provider's file id, when given */
    char *filename;   /* FILE: when given */
} pd_chat_part;

/* How the content was written, so an OpenAI client's body can be re-emitted the same way.
   Producers that do not care leave AUTO. */
typedef enum pd_chat_content_form {
    PD_CONTENT_AUTO = 0, /* string for one lone text part, null for none, array otherwise */
    PD_CONTENT_STRING,   /* was a JSON string: parts holds exactly one TEXT part */
    PD_CONTENT_ARRAY,    /* was an array of parts */
    PD_CONTENT_NULL      /* was an explicit null (assistant turns with tool calls) */
} pd_chat_content_form;

typedef enum pd_chat_tool_kind {
    PD_TOOL_FUNCTION = 0, /* JSON arguments against a JSON Schema */
    PD_TOOL_CUSTOM        /* OpenAI "custom" tools: free-text input */
} pd_chat_tool_kind;

/* A tool call made by the assistant (in a response, or replayed in request history). */
typedef struct pd_chat_tool_call {
    pd_chat_tool_kind kind;
    char *id;        /* "call_..." (or the upstream's id); NULL only when an upstream gave none */
    char *name;      /* the tool's name */
    char *arguments; /* FUNCTION: the JSON-encoded arguments exactly as received (may be invalid
                        JSON; the bytes are kept so that prompt caches see the same prefix);
                        CUSTOM: the free-text input. Never NULL ("" when none). */
} pd_chat_tool_call;

typedef struct pd_chat_message {
    pd_chat_role role;
    pd_chat_content_form form;
    pd_chat_part *parts; /* content, in order */
    size_t n_parts;
    char *name;                    /* optional participant name */
    char *tool_call_id;            /* TOOL: the call this message answers (required); else NULL */
    pd_chat_tool_call *tool_calls; /* ASSISTANT: calls made in this turn, in order */
    size_t n_tool_calls;
    char *refusal;   /* ASSISTANT: refusal text (OpenAI message.refusal) or NULL */
    char *reasoning; /* ASSISTANT: reasoning/thinking text (llama.cpp and vLLM
                        reasoning_content, Ollama thinking, Anthropic thinking) or NULL */
} pd_chat_message;

/* Releases everything the message owns and zeroes it. NULL is a no-op. */
void pd_chat_message_free(pd_chat_message *m);

/* ---- request -------------------------------------------------------------------------- */

typedef struct pd_chat_tool {
    pd_chat_tool_kind kind;
    char *name;
    char *description;  /* or NULL */
    pd_chat_json parameters; /* FUNCTION: the JSON Schema of the arguments (an object), or
                                absent when not given; CUSTOM: the OpenAI custom-tool
                                "format" object, or absent. Compact, as proto/jsonw writes it
                                (what pd_jw_json printed of the tree this used to be) */
    pd_chat_tri strict; /* enforce the schema exactly (OpenAI strict, Anthropic strict) */
} pd_chat_tool;

typedef enum pd_chat_tool_choice_kind {
    PD_TOOL_CHOICE_UNSET = 0, /* not given: the provider's default (auto when tools exist) */
    PD_TOOL_CHOICE_NONE,      /* must not call tools */
    PD_TOOL_CHOICE_AUTO,      /* may call tools */
    PD_TOOL_CHOICE_REQUIRED,  /* must call at least one tool */
    PD_TOOL_CHOICE_NAMED      /* must call the tool `name` */
} pd_chat_tool_choice_kind;

typedef struct pd_chat_tool_choice {
    pd_chat_tool_choice_kind kind;
    pd_chat_tool_kind tool_kind; /* NAMED: function or custom tool */
    char *name;                  /* NAMED: the tool's name */
    char **allowed;              /* AUTO/REQUIRED may be limited to these tool names (OpenAI
                                    allowed_tools); NULL = all tools */
    size_t n_allowed;
} pd_chat_tool_choice;

typedef struct pd_chat_sampling {
    bool has_max_tokens;
    int64_t max_tokens;     /* cap on generated tokens, reasoning tokens included */
    bool max_tokens_legacy; /* the OpenAI client used the deprecated `max_tokens` name
                               instead of `max_completion_tokens` */
    bool has_temperature;
    double temperature; /* OpenAI range 0..2 (Anthropic 0..1: adapters clamp) */
    bool has_top_p;
    double top_p; /* 0..1 */
    bool has_top_k;
    int64_t top_k; /* not OpenAI; llama.cpp, vLLM, Anthropic, Cohere, Ollama */
    bool has_min_p;
    double min_p; /* not OpenAI; llama.cpp, vLLM, Ollama */
    bool has_seed;
    int64_t seed; /* the full signed 64-bit range: never round-tripped as double */
    bool has_n;
    int64_t n; /* number of choices, 1..128 */
    bool has_presence_penalty;
    double presence_penalty; /* -2..2 */
    bool has_frequency_penalty;
    double frequency_penalty; /* -2..2 */
    pd_chat_tri logprobs;     /* return log probabilities of the output tokens */
    bool has_top_logprobs;
    int64_t top_logprobs; /* 0..20 alternatives per token */
    char **stop;          /* stop sequences, in order */
    size_t n_stop;
    bool stop_is_string; /* the client sent one string, not an array */
} pd_chat_sampling;

typedef enum pd_chat_format_kind {
    PD_FORMAT_UNSET = 0,
    PD_FORMAT_TEXT,
    PD_FORMAT_JSON_OBJECT, /* any JSON object (llama.cpp also accepts a schema with it) */
    PD_FORMAT_JSON_SCHEMA  /* JSON matching `schema` */
} pd_chat_format_kind;

typedef struct pd_chat_response_format {
    pd_chat_format_kind kind;
    char *name;        /* JSON_SCHEMA: the schema's name, or NULL (llama.cpp's form has none) */
    char *description; /* or NULL */
    pd_chat_json schema; /* JSON_SCHEMA (or JSON_OBJECT on llama.cpp): the JSON Schema (an
                            object, compact as jsonw writes it), or absent */
    pd_chat_tri strict;
} pd_chat_response_format;

typedef struct pd_chat_request {
    char *model;               /* the client's model name: the routing key */
    pd_chat_message *messages; /* the conversation, in order (at least one) */
    size_t n_messages;
    pd_chat_tool *tools;
    size_t n_tools;
    pd_chat_tool_choice tool_choice;
    pd_chat_tri parallel_tool_calls;
    pd_chat_sampling sampling;
    pd_chat_response_format response_format;
    bool stream;               /* answer as a stream of events */
    pd_chat_tri include_usage; /* stream: send a final usage event (OpenAI
                                  stream_options.include_usage) */
    char *user;                /* end-user id for abuse tracking, or NULL */
    char *reasoning_effort;    /* "none" | "minimal" | "low" | "medium" | "high" | ..., or NULL */
    pd_chat_json raw;          /* the original body (unknown fields included), a validated
                                  JSON object, bytes as the client sent them, so an upstream
                                  speaking the client's dialect can be sent the request as the
                                  client wrote it; absent when the request was built rather
                                  than parsed (or no longer says what is asked: set it
                                  to {0} then) */
    pd_arena arena;            /* holds every string and array above (see OWNERSHIP) */
} pd_chat_request;

/* Zero-fills: every optional field absent, the arena empty with the default limit
   (PD_ARENA_DEFAULT_LIMIT; the parsers set one from the body's length: pd_chat_request_arena). */
void pd_chat_request_init(pd_chat_request *r);
/* Releases the request's arena (everything it holds) and re-initialises it. NULL is a no-op. */
void pd_chat_request_free(pd_chat_request *r);

/* For a parser, before it fills r from a body of len bytes: r's arena gets a first block sized
   for a whole parse of the usual kind, and the limit 16 * len + PD_ARENA_DEFAULT_LIMIT. A
   parse's blocks stay below 16 * len + 64 KiB (the fuzz targets check it): the body's copy in
   raw, strings no longer than their JSON text, per message, part, tool call or stop string a
   struct of at most ~6 bytes per byte of its JSON, arrays and blocks that grow by doubling.
   So the parse itself never meets the limit (it aborts if it does: a bug), and the
   PD_ARENA_DEFAULT_LIMIT left bounds the rewrites that follow (redaction, a continuation's
   prefix), which fail the request when they would pass it. */
void pd_chat_request_arena(pd_chat_request *r, size_t len);
/* p, for a parser's allocation from the arena pd_chat_request_arena set up; aborts on NULL,
   which within a parse would be a bug (above). */
void pd_chat_parse_overflow(void) __attribute__((noreturn, cold));
static inline void *pd_chat_parse_held(void *p)
{
    if (!p)
        pd_chat_parse_overflow();
    return p;
}
/* Memory for a field of r, in its arena (see OWNERSHIP): count * size zeroed bytes; a copy of
   n bytes of s (NUL-terminated); a copy of the C string s. NULL when the arena would pass its
   limit (the caller fails the request: PD_ERR_TOO_LARGE). */
void *pd_chat_request_alloc(pd_chat_request *r, size_t count, size_t size);
char *pd_chat_request_strndup(pd_chat_request *r, const char *s, size_t n);
char *pd_chat_request_strdup(pd_chat_request *r, const char *s);

/* ---- response ------------------------------------------------------------------------- */

typedef enum pd_chat_finish {
    PD_FINISH_NONE = 0,       /* not finished / not reported (OpenAI null) */
    PD_FINISH_STOP,           /* natural end or a stop sequence */
    PD_FINISH_LENGTH,         /* max_tokens or the context window was reached */
    PD_FINISH_TOOL_CALLS,     /* the turn ended to let the client run tool calls */
    PD_FINISH_CONTENT_FILTER, /* cut by a safety filter / refusal */
    PD_FINISH_ERROR,          /* the upstream failed mid-generation */
    PD_FINISH_UNKNOWN         /* the upstream sent a reason this model does not know */
} pd_chat_finish;

/* "none", "stop", "length", "tool_calls", "content_filter", "error", "unknown". */
const char *pd_chat_finish_name(pd_chat_finish f);

#define PD_CHAT_COUNT_UNKNOWN (-1)

/* Token counts; each is PD_CHAT_COUNT_UNKNOWN when the upstream did not report it. */
typedef struct pd_chat_usage {
    int64_t prompt_tokens;      /* all input tokens, cached ones included (OpenAI semantics;
                                   an Anthropic adapter adds its cache reads and writes) */
    int64_t completion_tokens;  /* all output tokens, reasoning included */
    int64_t total_tokens;       /* as reported; not computed */
    int64_t cached_tokens;      /* part of prompt_tokens read from a prompt cache */
    int64_t cache_write_tokens; /* part of prompt_tokens written to a prompt cache */
    int64_t reasoning_tokens;   /* part of completion_tokens spent on reasoning */
} pd_chat_usage;

/* Sets every count to PD_CHAT_COUNT_UNKNOWN. */
void pd_chat_usage_init(pd_chat_usage *u);
/* True when at least one count is known. */
bool pd_chat_usage_known(const pd_chat_usage *u);

typedef struct pd_chat_choice {
    uint32_t index;          /* position among the choices (n > 1) */
    pd_chat_message message; /* role ASSISTANT */
    pd_chat_finish finish;
    json_t *logprobs; /* the provider's logprobs object, passed through, or NULL */
} pd_chat_choice;

typedef struct pd_chat_response {
    char *id;                 /* the upstream's response id, or NULL */
    int64_t created;          /* Unix seconds, 0 when unknown */
    char *model;              /* the model that answered, as the upstream named it, or NULL */
    char *system_fingerprint; /* or NULL */
    pd_chat_choice *choices;
    size_t n_choices;
    pd_chat_usage usage;
} pd_chat_response;

/* Zero-fills with usage unknown. */
void pd_chat_response_init(pd_chat_response *r);
/* Releases everything the response owns and re-initialises it. NULL is a no-op. */
void pd_chat_response_free(pd_chat_response *r);

/* ---- stream events -------------------------------------------------------------------- */

typedef enum pd_chat_event_kind {
    PD_EVENT_ROLE,       /* a choice starts: role (always ASSISTANT in practice) */
    PD_EVENT_TEXT,       /* text: a fragment of visible content */
    PD_EVENT_REASONING,  /* text: a fragment of reasoning/thinking */
    PD_EVENT_REFUSAL,    /* text: a fragment of a refusal */
    PD_EVENT_TOOL_START, /* a tool call starts: tool_index, tool_id, tool_name */
    PD_EVENT_TOOL_ARGS,  /* text: a fragment of the arguments of call tool_index */
    PD_EVENT_FINISH,     /* the choice ended: finish */
    PD_EVENT_USAGE,      /* token counts so far for the whole response: cumulative, so
                            assign (never add) when it comes more than once; usually last */
    PD_EVENT_ERROR       /* the stream failed: error_* and text (the message); nothing follows */
} pd_chat_event_kind;

/* A borrowed view (see OWNERSHIP above): pointers are valid only during the callback. Strings
   carry their length; only text may contain NUL bytes. */
typedef struct pd_chat_event {
    pd_chat_event_kind kind;
    uint32_t choice;   /* which choice (n > 1); 0 otherwise; unused by USAGE and ERROR */
    pd_chat_role role; /* ROLE */
    const char *text;  /* TEXT, REASONING, REFUSAL, TOOL_ARGS: the fragment; ERROR: the
                          message */
    size_t text_len;
    const json_t *logprobs; /* TEXT: OpenAI's logprobs object for the tokens this fragment
                               completes ({"content":[{token,logprob,bytes,top_logprobs}]}),
                               or NULL */
    uint32_t tool_index;    /* TOOL_START, TOOL_ARGS: position of the call among this message's
                               tool calls, from 0, in the order the calls started */
    const char *tool_id;    /* TOOL_START: the call id, or NULL when the upstream gave none */
    const char *tool_name;  /* TOOL_START: the tool's name (never NULL, may be "") */
    pd_chat_finish finish;  /* FINISH */
    pd_chat_usage usage;    /* USAGE */
    int error_status;       /* ERROR: the HTTP status that best describes it (500 when unsure) */
    const char *error_type; /* ERROR: e.g. "server_error", "overloaded_error" */
    const char *error_code; /* ERROR: provider code or NULL */
    const char *id;         /* the upstream's response id when the producer knows it, or NULL */
    const char *model;      /* the upstream's model name when known, or NULL */
    int64_t created;        /* the upstream's timestamp when known, or 0 */
} pd_chat_event;

/* Receives one event. Return 0 to go on, non-zero to stop the producer (which then returns
   PD_ERR_CLOSED). */
typedef int (*pd_chat_event_cb)(void *ud, const pd_chat_event *ev);

/* Fills *ev with kind and everything else empty (usage unknown, finish NONE). */
void pd_chat_event_init(pd_chat_event *ev, pd_chat_event_kind kind);

#endif
