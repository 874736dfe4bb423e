/* errors.h: building the gateway's own errors in OpenAI's shape (pd_api_error, proto/openai.h). */
#ifndef PD_PROTO_ERRORS_H
#define PD_PROTO_ERRORS_H

#include "proto/openai.h"

/* OpenAI's error "type" for an HTTP status: invalid_request_error (400, 404, 405, 413, 422, 431),
 * authentication_error (401), permission_error (403), rate_limit_error (429), server_error (5xx). */
const char *pd_error_type_for_status(long status);

/* Fills e; type NULL means pd_error_type_for_status(status); code may be NULL; param is copied. */
void pd_api_error_set(pd_api_error *e, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
