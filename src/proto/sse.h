/* sse.h: Server-Sent Events (text/event-stream) parser and writer.
 *
 * Every streaming upstream but Ollama native (OpenAI, Anthropic, Cohere, llama-server, vLLM)
 * frames its stream as SSE, and OpenAI/Anthropic clients expect SSE back, so this sits on the
 * hot path of every streamed token. The parser therefore does no allocation per event: an event
 * that lies whole inside the bytes handed to one pd_sse_feed call is parsed in place, and only
 * the unfinished tail (a partial line, an event split across reads, data of several lines) is
 * copied into buffers the parser keeps and reuses.
 *
 * Wire rules (WHATWG "event stream interpretation", as used by the LLM providers):
 *   - lines end with LF, CRLF or CR; a CR at the end of one feed followed by an LF at the start
 *     of the next is one line end;
 *   - `field:value`, with exactly one optional space after the colon stripped; a line without a
 *     colon is a field with an empty value;
 *   - lines starting with `:` are comments (keep-alives) and are ignored;
 *   - `data` lines are joined with "\n"; `event` sets the event name; an empty line dispatches;
 *     an event with no `data` line is not delivered;
 *   - `id`, `retry` and unknown fields are ignored, with one deliberate exception: some
 *     llama-server builds report a mid-stream failure as an `error: {json}` line instead of
 *     `data:` (protocols.md 0.2, 5.1). Dropping it would make a failed stream look complete, so
 *     an `error` line is treated as `event: error` plus `data: <value>`.
 *   - a UTF-8 byte-order mark is not stripped (no LLM server sends one).
 *
 * Caps: no line and no event's joined data may be longer than max_event_bytes. The check is
 * made on the logical line/event, so where a stream is split into reads never changes whether
 * it passes.
 *
 * Threading: a parser is used by one thread at a time. The callback is called synchronously
 * from inside pd_sse_feed. */
#ifndef PD_PROTO_SSE_H
#define PD_PROTO_SSE_H

#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"

#define PD_SSE_DEFAULT_MAX_EVENT (1024 * 1024)

typedef struct pd_sse_event {
    /* the event: name; "" (event_len 0) when the event had no event: line */
    const char *event;
    size_t event_len;
    /* data: lines joined with \n; NOT NUL-terminated necessarily */
    const char *data;
    size_t data_len;
} pd_sse_event;

/* Called once per complete event (an event with no data: lines is not delivered). Return 0 to go
   on, non-zero to stop: pd_sse_feed then returns PD_ERR_CLOSED at once. Pointers are valid only
   during the call. */
typedef int (*pd_sse_cb)(void *ud, const pd_sse_event *ev);

/* Embeddable; the fields are private by convention. */
typedef struct pd_sse_parser {
    size_t max;  /* cap on a line and on an event's joined data */
    pd_buf line; /* an unfinished line carried over to the next feed */
    pd_buf data; /* data of an event that spans feeds or has several data lines */
    pd_buf name; /* event name of an event that spans feeds */
    const char *data_ptr, *name_ptr; /* in-place data / name, valid during one feed only */
    size_t data_len, name_len;
    unsigned char in_event;   /* a field line was seen since the last dispatch */
    unsigned char has_data;   /* at least one data line in the current event */
    unsigned char data_owned; /* the current data lives in `data`, not in the fed bytes */
    unsigned char name_owned; /* the current name lives in `name` */
    unsigned char skip_lf;    /* the last feed ended with a CR: drop an LF that starts the next */
    unsigned char failed;     /* a cap was passed: every later feed fails */
} pd_sse_parser;

void pd_sse_init(pd_sse_parser *p, size_t max_event_bytes); /* 0 = default 1 MiB */

/* Feeds bytes as they arrive (splits anywhere: mid-line, mid-CRLF, mid-UTF-8).
   PD_OK: every complete event was delivered, the rest is buffered.
   PD_ERR_CLOSED: the callback returned non-zero; the rest of these bytes is discarded (the
     parser stays usable, e.g. after pd_sse_reset).
   PD_ERR_TOO_LARGE: a line or an event passed the cap; the parser is then unusable (every later
     feed fails the same way) until pd_sse_reset. */
pd_result pd_sse_feed(pd_sse_parser *p, const char *bytes, size_t len, pd_sse_cb cb, void *ud);

/* True when bytes of an unfinished event are buffered: at end of stream this means the stream
   was cut (a complete stream ends with an empty line). */
int pd_sse_pending(const pd_sse_parser *p);

/* Forgets any partial event and a failure, keeping the buffers for reuse. */
void pd_sse_reset(pd_sse_parser *p);

/* Releases the buffers; the parser may be initialised again. NULL is a no-op. */
void pd_sse_free(pd_sse_parser *p);

/* Appends one event "event: NAME\n" (when name != NULL) + "data: ...\n" (one data: line per line
   of data; LF, CRLF and CR all break lines, as the parser reads them) + "\n" to out.
   PD_ERR_INVALID when name contains CR or LF; PD_ERR_TOO_LARGE when out's limit would be passed.
   On error nothing is appended. */
pd_result pd_sse_write(pd_buf *out, const char *name, const char *data, size_t len);

#endif
