/* embed.h: Pendulum's canonical embeddings model.
 *
 * The embeddings counterpart of canon/chat.h: the OpenAI /v1/embeddings ingress
 * (proto/embed.h) parses a client body into a pd_embed_request; an upstream adapter (OpenAI-
 * compatible /embeddings, Cohere /v2/embed, Ollama /api/embed) writes it in its own wire form
 * and reads its answer into a pd_embed_response; the ingress writes that back in OpenAI's shape.
 *
 * Inputs are strings only. OpenAI also accepts pre-tokenised inputs (arrays of token ids), but
 * token ids are tokenizer-specific: they mean nothing to a Cohere or Ollama model, so the
 * ingress rejects them with a 400 instead of sending something the model would misread.
 *
 * Vectors are float32, the precision every provider computes and the one OpenAI's base64
 * encoding carries; JSON numbers from upstreams are rounded to float once, when read.
 *
 * ABSENT vs ZERO and OWNERSHIP follow canon/chat.h: a zero-filled request means "nothing
 * given"; counts use PD_EMBED_COUNT_UNKNOWN (-1); a struct owns everything it points to
 * (malloc'ed strings and arrays, one json_t reference); the *_free functions release
 * everything and leave the struct re-initialised, so freeing twice or freeing NULL is a no-op.
 *
 * Threading: plain data, no shared state. Dependencies: jansson and libc only. */
#ifndef PD_CANON_EMBED_H
#define PD_CANON_EMBED_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_EMBED_COUNT_UNKNOWN (-1)

/* How the client wants the vectors written (OpenAI encoding_format). */
typedef enum pd_embed_encoding {
    PD_EMBED_FLOAT = 0, /* JSON arrays of numbers (the default) */
    PD_EMBED_BASE64     /* base64 of the little-endian float32 bytes */
} pd_embed_encoding;

typedef struct pd_embed_request {
    char *model;   /* the client's model name: the routing key */
    char **inputs; /* the texts to embed, in order (at least one, none empty) */
    size_t n_inputs;
    bool input_is_string; /* the client sent one string rather than an array */
    bool has_dimensions;
    int64_t dimensions; /* requested vector length (OpenAI text-embedding-3, Cohere
                           output_dimension, Ollama dimensions) */
    pd_embed_encoding encoding;
    char *user;       /* end-user id, or NULL */
    char *input_type; /* what the texts are for, Cohere's vocabulary ("search_document",
                         "search_query", "classification", "clustering"); a non-OpenAI
                         extension field of the same name; NULL = the adapter's default */
    json_t *raw;      /* the parsed original body, or NULL when built rather than parsed */
} pd_embed_request;

void pd_embed_request_init(pd_embed_request *r);
/* Releases everything the request owns and re-initialises it. NULL is a no-op. */
void pd_embed_request_free(pd_embed_request *r);

typedef struct pd_embed_vector {
    float *values;
    size_t n;
} pd_embed_vector;

typedef struct pd_embed_response {
    char *model;              /* the model that answered, as the upstream named it, or NULL */
    pd_embed_vector *vectors; /* one per input, in input order */
    size_t n_vectors;
    int64_t prompt_tokens; /* input tokens, or PD_EMBED_COUNT_UNKNOWN */
    int64_t total_tokens;  /* as reported, or PD_EMBED_COUNT_UNKNOWN */
} pd_embed_response;

/* Zero-fills with counts unknown. */
void pd_embed_response_init(pd_embed_response *r);
/* Releases everything the response owns and re-initialises it. NULL is a no-op. */
void pd_embed_response_free(pd_embed_response *r);

/* Reads a JSON array of numbers into *out (a new float array, n = array size, which may be 0).
   false, with *out untouched, when a member is not a number or is outside float's range.
   Shared by the upstream readers. */
bool pd_embed_vector_from_json(const json_t *array, pd_embed_vector *out);

#endif
