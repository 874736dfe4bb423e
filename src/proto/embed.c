/* embed.c: see embed.h. Layout: request validation; response writing (floats, base64); upstream
 * request writing; upstream response reading. */
#include "proto/embed.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jsonw.h"

/* ==== request validation ================================================================ */

static pd_result bad(pd_api_error *err, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static pd_result bad(pd_api_error *err, const char *code, const char *param, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pd_openai_error_set(err, 400, "invalid_request_error", code, param, "%s", msg);
    return PD_ERR_INVALID;
}

static const char *type_desc(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static pd_result bad_type(pd_api_error *err, const char *param, const char *want, const json_t *v)
{
    return bad(err, "invalid_type", param,
               "Invalid type for '%s': expected %s, but got %s instead.", param, want,
               type_desc(v));
}

/* An optional member: NULL when absent or JSON null. */
static json_t *opt(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

static pd_result get_str(const json_t *o, const char *key, char **out, pd_api_error *err)
{
    json_t *v = opt(o, key);
    if (!v)
        return PD_OK;
    if (!json_is_string(v))
        return bad_type(err, key, "a string", v);
    *out = pd_xstrndup(json_string_value(v), json_string_length(v));
    return PD_OK;
}

static pd_result token_inputs(pd_api_error *err)
{
    return bad(err, "invalid_value", "input",
               "Invalid 'input': token-id inputs are not supported by this gateway (token ids "
               "are specific to one tokenizer); send the text instead.");
}

/* One text input at `param`: a non-empty string (the parser already refused \u0000). */
static pd_result one_input(const json_t *v, const char *param, char **out, pd_api_error *err)
{
    if (json_is_integer(v) || json_is_array(v))
        return token_inputs(err);
    if (!json_is_string(v))
        return bad_type(err, param, "a string", v);
    if (json_string_length(v) == 0)
        return bad(err, "invalid_value", param, "Invalid '%s': the string must not be empty.",
                   param);
    *out = pd_xstrndup(json_string_value(v), json_string_length(v));
    return PD_OK;
}

static pd_result parse_input(const json_t *root, pd_embed_request *r, pd_api_error *err)
{
    json_t *in = opt(root, "input");
    if (!in)
        return bad(err, "missing_required_parameter", "input",
                   "Missing required parameter: 'input'.");
    if (json_is_string(in)) {
        r->inputs = pd_xcalloc(1, sizeof *r->inputs);
        r->input_is_string = true;
        pd_result rc = one_input(in, "input", &r->inputs[0], err);
        r->n_inputs = rc ? 0 : 1;
        return rc;
    }
    if (!json_is_array(in))
        return bad_type(err, "input", "a string or an array of strings", in);
    size_t n = json_array_size(in);
    if (n == 0)
        return bad(err, "invalid_value", "input",
                   "Invalid 'input': expected a non-empty array, but got an empty array instead.");
    if (n > PD_EMBED_MAX_INPUTS)
        return bad(err, "array_above_max_length", "input",
                   "Invalid 'input': array too long. Expected an array with maximum length %d, "
                   "but got an array with length %zu instead.",
                   PD_EMBED_MAX_INPUTS, n);
    r->inputs = pd_xcalloc(n, sizeof *r->inputs);
    for (size_t i = 0; i < n; i++) {
        char p[32];
        snprintf(p, sizeof p, "input[%zu]", i);
        pd_result rc = one_input(json_array_get(in, i), p, &r->inputs[i], err);
        if (rc)
            return rc;
        r->n_inputs++;
    }
    return PD_OK;
}

static pd_result parse_options(const json_t *root, pd_embed_request *r, pd_api_error *err)
{
    json_t *dim = opt(root, "dimensions"), *enc = opt(root, "encoding_format");
    if (dim && !json_is_integer(dim))
        return bad_type(err, "dimensions", "an integer", dim);
    if (dim && (json_integer_value(dim) < 1 || json_integer_value(dim) > PD_EMBED_MAX_DIMENSIONS))
        return bad(err, "invalid_value", "dimensions",
                   "Invalid 'dimensions': expected an integer between 1 and %d, but got %lld "
                   "instead.",
                   PD_EMBED_MAX_DIMENSIONS, (long long)json_integer_value(dim));
    if (dim) {
        r->has_dimensions = true;
        r->dimensions = json_integer_value(dim);
    }
    if (enc && !json_is_string(enc))
        return bad_type(err, "encoding_format", "a string", enc);
    if (enc && strcmp(json_string_value(enc), "float") != 0 &&
        strcmp(json_string_value(enc), "base64") != 0)
        return bad(err, "invalid_value", "encoding_format",
                   "Invalid value: '%.64s'. Supported values are: 'float' and 'base64'.",
                   json_string_value(enc));
    r->encoding =
        enc && strcmp(json_string_value(enc), "base64") == 0 ? PD_EMBED_BASE64 : PD_EMBED_FLOAT;
    pd_result rc = get_str(root, "user", &r->user, err);
    return rc ? rc : get_str(root, "input_type", &r->input_type, err);
}

pd_result pd_embed_parse_openai_request(const char *body, size_t len, pd_embed_request *out,
                                        pd_api_error *err)
{
    memset(err, 0, sizeof *err);
    pd_embed_request_init(out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root)
        return bad(err, NULL, NULL, "body is not valid JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
    if (!json_is_object(root)) {
        const char *what = type_desc(root);
        json_decref(root);
        return bad(err, NULL, NULL, "body must be a JSON object, not %s", what);
    }
    out->raw = root;
    pd_result rc;
    json_t *model = opt(root, "model");
    if (!model)
        rc =
            bad(err, "missing_required_parameter", "model", "Missing required parameter: 'model'.");
    else
        rc = get_str(root, "model", &out->model, err);
    if (!rc)
        rc = parse_input(root, out, err);
    if (!rc)
        rc = parse_options(root, out, err);
    if (rc)
        pd_embed_request_free(out);
    return rc;
}

/* ==== response writing ================================================================== */

/* The shortest %g form (6..9 significant digits) that reads back as the same float, with a
   '.' or an exponent so it reads as a real. Non-finite values cannot occur (readers refuse
   them) but would be written as 0.0 rather than as invalid JSON. */
static void write_float(pd_jw *w, float v)
{
    char tmp[32];
    if (!isfinite(v))
        v = 0;
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp - 2, "%.*g", prec, (double)v);
        if (strtof(tmp, NULL) == v)
            break;
    }
    if (!strpbrk(tmp, ".eE"))
        strcat(tmp, ".0");
    pd_jw_sep(w);
    pd_jw_raw(w, tmp, strlen(tmp));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The vector as a JSON string of base64 little-endian float32 bytes. */
static void write_base64(pd_jw *w, const pd_embed_vector *v)
{
    char quad[4];
    unsigned char bytes[3];
    size_t have = 0;
    pd_jw_sep(w);
    pd_jw_raw(w, "\"", 1);
    for (size_t i = 0; i < v->n * 4; i++) {
        uint32_t bits;
        memcpy(&bits, &v->values[i / 4], 4);
        bytes[have++] = (unsigned char)(bits >> (8 * (i % 4))); /* little-endian on any host */
        if (have < 3 && i + 1 < v->n * 4)
            continue;
        uint32_t x = (uint32_t)bytes[0] << 16 | (have > 1 ? (uint32_t)bytes[1] << 8 : 0) |
                     (have > 2 ? bytes[2] : 0);
        quad[0] = b64[x >> 18 & 63];
        quad[1] = b64[x >> 12 & 63];
        quad[2] = have > 1 ? b64[x >> 6 & 63] : '=';
        quad[3] = have > 2 ? b64[x & 63] : '=';
        pd_jw_raw(w, quad, 4);
        have = 0;
    }
    pd_jw_raw(w, "\"", 1);
}

static void write_vector(pd_jw *w, const pd_embed_vector *v, pd_embed_encoding enc)
{
    if (enc == PD_EMBED_BASE64) {
        write_base64(w, v);
        return;
    }
    pd_jw_open(w, '[');
    for (size_t i = 0; i < v->n; i++)
        write_float(w, v->values[i]);
    pd_jw_close(w, ']');
}

pd_result pd_embed_write_openai_response(const pd_embed_response *resp, pd_embed_encoding enc,
                                         const char *model, pd_buf *out)
{
    int64_t prompt = resp->prompt_tokens >= 0 ? resp->prompt_tokens : 0;
    int64_t total = resp->total_tokens >= 0 ? resp->total_tokens : prompt;
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_kv(&w, "object", "list");
    pd_jw_key(&w, "data");
    pd_jw_open(&w, '[');
    for (size_t i = 0; i < resp->n_vectors; i++) {
        pd_jw_open(&w, '{');
        pd_jw_kv(&w, "object", "embedding");
        pd_jw_kint(&w, "index", true, (int64_t)i);
        pd_jw_key(&w, "embedding");
        write_vector(&w, &resp->vectors[i], enc);
        pd_jw_close(&w, '}');
    }
    pd_jw_close(&w, ']');
    pd_jw_kv(&w, "model", model ? model : resp->model ? resp->model : "");
    pd_jw_key(&w, "usage");
    pd_jw_open(&w, '{');
    pd_jw_kint(&w, "prompt_tokens", true, prompt);
    pd_jw_kint(&w, "total_tokens", true, total);
    pd_jw_close(&w, '}');
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ==== upstream request ================================================================== */

pd_result pd_embed_write_openai_request(const pd_embed_request *req, const char *model, pd_buf *out)
{
    pd_jw w;
    size_t mark = out->len;
    pd_jw_begin(&w, out);
    pd_jw_open(&w, '{');
    pd_jw_kv(&w, "model", model ? model : req->model ? req->model : "");
    pd_jw_key(&w, "input");
    if (req->input_is_string && req->n_inputs == 1) {
        pd_jw_str(&w, req->inputs[0] ? req->inputs[0] : "");
    } else {
        pd_jw_open(&w, '[');
        for (size_t i = 0; i < req->n_inputs; i++)
            pd_jw_str(&w, req->inputs[i] ? req->inputs[i] : "");
        pd_jw_close(&w, ']');
    }
    pd_jw_kint(&w, "dimensions", req->has_dimensions, req->dimensions);
    pd_jw_kv(&w, "user", req->user);
    pd_jw_close(&w, '}');
    return pd_jw_end(&w, mark);
}

/* ==== upstream response ================================================================= */

static int b64_value(unsigned char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    if (p)
        return (int)(p - b64);
    return c == '-' ? 62 : c == '_' ? 63 : -1; /* the URL-safe alphabet, liberally */
}

/* Decodes base64 (padding optional) of little-endian float32s; false when malformed or when
   the byte count is not a multiple of 4. */
static bool vector_from_base64(const char *s, size_t n, pd_embed_vector *out)
{
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return false;
    size_t bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (bytes % 4 || bytes / 4 > PD_EMBED_MAX_DIMENSIONS)
        return false;
    unsigned char *raw = pd_xmalloc(bytes ? bytes : 1);
    uint32_t acc = 0;
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(raw);
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3 || i + 1 == n) {
            size_t k = i % 4 + 1; /* sextets in this group */
            acc <<= 6 * (4 - k);
            for (size_t b = 0; b + 1 < k; b++)
                raw[got++] = (unsigned char)(acc >> (16 - 8 * b));
            acc = 0;
        }
    }
    out->n = bytes / 4;
    out->values = pd_xmalloc((out->n ? out->n : 1) * sizeof *out->values);
    for (size_t i = 0; i < out->n; i++) {
        uint32_t bits = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                        (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
        memcpy(&out->values[i], &bits, 4);
    }
    free(raw);
    return true;
}

static bool read_vector(const json_t *e, pd_embed_vector *out)
{
    if (json_is_string(e))
        return vector_from_base64(json_string_value(e), json_string_length(e), out);
    return json_array_size(e) <= PD_EMBED_MAX_DIMENSIONS && pd_embed_vector_from_json(e, out);
}

static int64_t count(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v)
                                                            : PD_EMBED_COUNT_UNKNOWN;
}

/* Reads data[] into out->vectors (already sized n), by index. */
static bool read_data(const json_t *data, pd_embed_response *out)
{
    size_t n = json_array_size(data);
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(data, i), *idx = json_object_get(item, "index");
        size_t at = i;
        if (idx) {
            if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
                (size_t)json_integer_value(idx) >= n)
                return false;
            at = (size_t)json_integer_value(idx);
        }
        if (out->vectors[at].values ||
            !read_vector(json_object_get(item, "embedding"), &out->vectors[at]))
            return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!out->vectors[i].values)
            return false;
    return true;
}

pd_result pd_embed_parse_openai_response(const char *body, size_t len, pd_embed_response *out)
{
    pd_embed_response_init(out);
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *data = json_object_get(root, "data");
    if (!json_is_object(root) || !json_is_array(data)) {
        json_decref(root);
        return PD_ERR_INVALID;
    }
    size_t n = json_array_size(data);
    out->vectors = pd_xcalloc(n ? n : 1, sizeof *out->vectors);
    out->n_vectors = n;
    bool ok = read_data(data, out);
    if (ok) {
        const json_t *usage = json_object_get(root, "usage"),
                     *model = json_object_get(root, "model");
        out->prompt_tokens = count(usage, "prompt_tokens");
        out->total_tokens = count(usage, "total_tokens");
        if (json_is_string(model))
            out->model = pd_xstrndup(json_string_value(model), json_string_length(model));
    }
    json_decref(root);
    if (!ok) {
        pd_embed_response_free(out);
        return PD_ERR_INVALID;
    }
    return PD_OK;
}
