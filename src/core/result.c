#include "core/result.h"

const char *pd_result_str(pd_result rc)
{
    switch (rc) {
    case PD_OK: return "ok";
    case PD_ERR_NOMEM: return "out of memory";
    case PD_ERR_INVALID: return "invalid input";
    case PD_ERR_TOO_LARGE: return "too large";
    case PD_ERR_NOT_FOUND: return "not found";
    case PD_ERR_IO: return "i/o error";
    case PD_ERR_UPSTREAM: return "upstream error";
    case PD_ERR_TIMEOUT: return "timeout";
    case PD_ERR_CLOSED: return "closed";
    case PD_ERR_PARTIAL: return "partial";
    }
    return "unknown";
}
