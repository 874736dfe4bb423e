/* result.h: the one result type every fallible Pendulum function returns.
 *
 * Functions return PD_OK (0) on success, so `if (rc) goto out;` works everywhere.
 * pd_result_str() gives a stable, human-readable name for logs and error messages. */
#ifndef PD_CORE_RESULT_H
#define PD_CORE_RESULT_H

typedef enum pd_result {
    PD_OK = 0,
    PD_ERR_NOMEM,      /* an allocation failed */
    PD_ERR_INVALID,    /* input does not have the expected shape */
    PD_ERR_TOO_LARGE,  /* input exceeds a configured limit */
    PD_ERR_NOT_FOUND,  /* a named thing (model, provider, file) does not exist */
    PD_ERR_IO,         /* a system call failed; errno tells more */
    PD_ERR_UPSTREAM,   /* the upstream failed (connect, reset, bad response) */
    PD_ERR_TIMEOUT,    /* a deadline passed */
    PD_ERR_CLOSED,     /* the peer went away */
    PD_ERR_PARTIAL     /* more input is needed to finish (parsers) */
} pd_result;

const char *pd_result_str(pd_result rc);

#endif
