/* embed.h: the OpenAI embeddings wire format (POST /v1/embeddings) <-> the canonical embeddings
 * model (canon/embed.h), in both directions:
 *   - ingress: a client's body is parsed and validated (pd_embed_parse_openai_request) and the
 *     answer written in OpenAI's shape (pd_embed_write_openai_response);
 *   - upstream (kind: openai, i.e. OpenAI and every OpenAI-compatible server): the request is
 *     written (pd_embed_write_openai_request) and the answer read
 *     (pd_embed_parse_openai_response). Errors from such upstreams go through
 *     pd_openai_parse_error_body like chat errors.
 *
 * Output JSON comes from proto/jsonw (compact, fixed key order). Vector components are written
 * in the shortest decimal form that reads back as the same float32 (what OpenAI itself prints,
 * e.g. 0.0023064255), or, with encoding_format "base64", as the base64 of the little-endian
 * float32 bytes, which is what the OpenAI SDKs decode (Node's SDK asks for base64 by default).
 *
 * Ownership follows canon/embed.h; no function keeps a pointer to its input. Threading: no
 * shared state. Dependencies: jansson, core/, proto/jsonw, proto/openai (pd_api_error). */
#ifndef PD_PROTO_EMBED_H
#define PD_PROTO_EMBED_H

#include <stddef.h>

#include "canon/embed.h"
#include "core/buf.h"
#include "core/result.h"
#include "proto/openai.h"

#define PD_EMBED_MAX_INPUTS 2048      /* OpenAI's limit on inputs per request */
#define PD_EMBED_MAX_DIMENSIONS 65536 /* sanity bound on requested and returned vector length */

/* Parses and validates a /v1/embeddings body. Errors (PD_ERR_INVALID, err filled with 400,
   invalid_request_error, param, a clear message): not JSON or not an object; model missing or
   not a string; input missing, null, an empty string, an empty array, more than
   PD_EMBED_MAX_INPUTS items, an item that is not a string or is empty; token-id inputs (an array
   of integers, or of arrays) are refused with their own message, since token ids mean nothing
   to another provider's tokenizer; dimensions not an integer in 1..PD_EMBED_MAX_DIMENSIONS;
   encoding_format not "float" or "base64"; user or input_type not a string. JSON null means
   absent for the optional fields. input_type (a non-OpenAI extension, Cohere's vocabulary) is
   kept for adapters that use it. Unknown fields are kept in raw and are not errors.
   On success *out owns the result and out->raw holds the parsed body; on error *out is left
   initialised and empty. */
pd_result pd_embed_parse_openai_request(const char *body, size_t len, pd_embed_request *out,
                                        pd_api_error *err);

/* Writes {"object":"list","data":[{"object":"embedding","index":i,"embedding":...}],
   "model":..,"usage":{"prompt_tokens":..,"total_tokens":..}}. model: the name to report (the
   client's, usually); NULL means resp->model ("" when that is NULL too). Unknown counts are
   written as 0 and an unknown total as the prompt count. PD_ERR_TOO_LARGE when out's limit
   would be passed; out is then left as it was. */
pd_result pd_embed_write_openai_response(const pd_embed_response *resp, pd_embed_encoding enc,
                                         const char *model, pd_buf *out);

/* Writes {"model","input": the one string the client sent, or the array,["dimensions"],
   ["user"]} for an OpenAI-compatible upstream, naming `model` (NULL: req->model).
   encoding_format is left out so the upstream answers with floats (some compatible servers
   know no base64) and input_type is left out (OpenAI rejects unknown parameters).
   PD_ERR_TOO_LARGE as above. */
pd_result pd_embed_write_openai_request(const pd_embed_request *req, const char *model,
                                        pd_buf *out);

/* Reads an OpenAI embeddings answer: data[].embedding as an array of numbers or a base64
   string (little-endian float32), placed by data[].index (by position when index is absent);
   model; usage.prompt_tokens / total_tokens. PD_ERR_INVALID when the body is not an object with
   a "data" array, an embedding is malformed, or indexes are out of range or repeated. */
pd_result pd_embed_parse_openai_response(const char *body, size_t len, pd_embed_response *out);

#endif
