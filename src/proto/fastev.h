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
 * event fields); nothing points into the input after the call.
 *
 * Within one stream the events differ in their text and little else: an OpenAI chunk repeats
 * its id, model and fingerprint, an Anthropic delta its type and index. A memo (one per stream,
 * kept by the decoder) remembers the bytes before and after the text of the last event that hit
 * and the scanner's state after them; the next event that has the same bytes around a string is
 * read by comparing them (memcmp) and decoding only the string. This stays exact because the
 * scanner is deterministic: from the same bytes it reaches the same state, and what it reads
 * after the text does not depend on the text (see fastev.c for the argument in full).
 *
 * Threading: the scanners are pure functions but for the memo they update (one per stream, one
 * thread at a time). Dependencies: libc and proto/jsonw.h (its plain-byte scan). */
#ifndef PD_PROTO_FASTEV_H
#define PD_PROTO_FASTEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room the decoders give the scanners on their stack: ids, model names and one text fragment
   of a usual token fit many times over; a longer event simply takes the full path. */
#define PD_FASTEV_BUF 2048

/* Bytes a memo keeps: the text's surroundings and the decoded id and model. An event whose
   surroundings do not fit is simply read in full every time. */
#define PD_FASTEV_MEMO 512

/* The OpenAI scanner's state at one point of a chunk (private fields). */
typedef struct pd_fastev_memo_state {
    uint16_t id;     /* offset + 1 of the decoded id in the memo's bytes, 0 for none */
    uint16_t model;  /* likewise for the model */
    uint32_t seen;   /* the top-level keys read */
    int64_t created; /* "created" as read */
} pd_fastev_memo_state;

/* What the scanner remembers of the last event it read (see above). Embeddable; all zero (as
   the decoders' init leaves it) means empty. Private fields. */
typedef struct pd_fastev_memo {
    uint16_t head;            /* bytes before the text's opening quote, 0 when the memo is empty */
    uint16_t tail;            /* bytes after its closing quote up to where the state was taken */
    uint16_t rest;            /* OpenAI: the bytes after that to the end, 0 when not kept */
    uint32_t choice;          /* OpenAI: choices[0].index */
    int64_t block;            /* Anthropic: the block index the memo was taken for */
    pd_fastev_memo_state at;  /* OpenAI: the state right after the choices array */
    pd_fastev_memo_state end; /* OpenAI: at the end of the chunk */
    char bytes[PD_FASTEV_MEMO]; /* head, tail, rest, then NUL-terminated ids and models */
} pd_fastev_memo;

/* What an OpenAI text chunk says; pointers into the caller's buffer or the memo. */
typedef struct pd_fastev_chunk {
    const char *id;    /* NULL when the chunk had no "id" */
    const char *model; /* NULL when the chunk had no "model" */
    int64_t created;   /* 0 when absent */
    uint32_t choice;   /* choices[0].index */
    const char *text;  /* delta.content ("" when null or empty: nothing to deliver) */
    size_t text_len;
    const char *role; /* delta.role, NULL when absent (the first chunk of a stream has it) */
    size_t role_len;
    const char *finish; /* finish_reason, NULL when null or absent (the last chunk's) */
    bool null_usage;    /* the chunk had "usage": null (a usage object is a miss) */
} pd_fastev_chunk;

/* Scans one OpenAI SSE data payload (surrounding whitespace already cut) of the shape
   {"id":s,"object":s,"created":n,"model":s,"system_fingerprint":s|null,"service_tier":s|null,
    "obfuscation":s,"usage":null,"choices":[{"index":n,"delta":{"role":s,"content":s|null,
    "refusal":null},"logprobs":null,"finish_reason":s|null}]}
   with keys in any order, each optional except choices (exactly one), its index and delta.
   True and *out filled on a hit; false on a miss (*out undefined). A hit also vouches that the
   payload is a well-formed JSON object (jansson would parse it, with or without
   JSON_ALLOW_NUL: a \u0000 is a miss) with none but those keys. memo (NULL: none) is read
   and, after a full scan that hit, replaced; *out may point into it until its next use. */
bool pd_fastev_openai_chunk(pd_fastev_memo *memo, const char *data, size_t len, char *buf,
                            size_t cap, pd_fastev_chunk *out);

/* Scans one Anthropic event payload of the shape {"type":"content_block_delta","index":block,
   "delta":{"type":"text_delta","text":s}} (keys in any order, all required, index equal to
   block). True with the text decoded into buf (*text, *text_len) on a hit. memo (NULL: none)
   as for pd_fastev_openai_chunk. */
bool pd_fastev_anthropic_text(pd_fastev_memo *memo, const char *data, size_t len, int64_t block,
                              char *buf, size_t cap, const char **text, size_t *text_len);

#endif
