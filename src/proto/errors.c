#include "proto/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *pd_error_type_for_status(long status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void pd_api_error_set(pd_api_error *e, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...)
{
    va_list ap;
    memset(e, 0, sizeof(*e));
    e->status = status;
    e->type = type ? type : pd_error_type_for_status(status);
    e->code = code;
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}
