/* fastev.h: scanners for the two stream events that make up almost every translated stream,
 * an OpenAI chat.completion.chunk carrying one text delta and an Anthropic content_block_delta
 * carrying a text_delta, read without building a jansson tree and without allocating.
 *
 * They recognise only the exact common shape and say "miss" for anything else (an unexpected
 * key, a duplicate key, a value of another type, a non-null logprobs, tool calls, a role, usage,
 * an escape or a number form they do not handle, invalid UTF-8, more text than the caller's
 * buffer holds). The caller then uses its full jansson decoder, which stays the definition of
 * what an event means: on a hit, the canonical event must be exactly what the full decoder
 * would deliver for the same bytes (tests/unit/test_fastev.c and tests/fuzz/fuzz_fastev.c check
 * that byte for byte). A miss costs a partial scan of the event, then the full parse.
 *
 * Strings are decoded into the caller's buffer (NUL-terminated each, so id and model can be
 * event fields); nothing points into the input after the call. Pure functions: any thread.
 * Dependencies: libc only. */
#ifndef PD_PROTO_FASTEV_H
#define PD_PROTO_FASTEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room the decoders give the scanners on their stack: ids, model names and one text fragment
   of a usual token fit many times over; a longer event simply takes the full path. */
#define PD_FASTEV_BUF 2048

/* What an OpenAI text chunk says; pointers into the caller's buffer. */
typedef struct pd_fastev_chunk {
    const char *id;    /* NULL when the chunk had no "id" */
    const char *model; /* NULL when the chunk had no "model" */
    int64_t created;   /* 0 when absent */
    uint32_t choice;   /* choices[0].index */
    const char *text;  /* delta.content ("" when null or empty: nothing to deliver) */
    size_t text_len;
} pd_fastev_chunk;

/* Scans one OpenAI SSE data payload (surrounding whitespace already cut) of the shape
   {"id":s,"object":s,"created":n,"model":s,"system_fingerprint":s|null,"service_tier":s|null,
    "obfuscation":s,"usage":null,"choices":[{"index":n,"delta":{"content":s|null,
    "refusal":null},"logprobs":null,"finish_reason":null}]}
   with keys in any order, each optional except choices (exactly one), its index and delta.
   True and *out filled on a hit; false on a miss (*out undefined). */
bool pd_fastev_openai_chunk(const char *data, size_t len, char *buf, size_t cap,
                            pd_fastev_chunk *out);

/* Scans one Anthropic event payload of the shape {"type":"content_block_delta","index":block,
   "delta":{"type":"text_delta","text":s}} (keys in any order, all required, index equal to
   block). True with the text decoded into buf (*text, *text_len) on a hit. */
bool pd_fastev_anthropic_text(const char *data, size_t len, int64_t block, char *buf, size_t cap,
                              const char **text, size_t *text_len);

#endif
