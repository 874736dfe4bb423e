/* log.h: the request log (one JSON line per request) and start-up messages.
 *
 * Request lines are written with one write(2) each to the log descriptor (stderr by default),
 * so lines from several workers never interleave and no lock is taken. Prompts, bodies and keys
 * are never part of a line: the record has no field that could carry them. */
#ifndef PD_CORE_LOG_H
#define PD_CORE_LOG_H

#include <stdint.h>

typedef struct pd_request_log {
    const char *id;
    const char *method;
    const char *path;
    const char *model;    /* NULL when not known */
    const char *provider; /* NULL when not known */
    int status;           /* as sent to the client; 499 when the client went away first */
    int stream;
    double ttfb_ms;       /* upstream time to first byte; < 0 when there was no upstream call */
    double upstream_ms;   /* < 0 when there was no upstream call */
    double total_ms;
    uint64_t bytes_in, bytes_out; /* upstream body bytes received, client body bytes sent */
    int64_t prompt_tokens, completion_tokens; /* -1 when unknown */
    const char *error;    /* why it failed, or NULL; never contains request content */
    const char *cost_usd; /* the request's cost in USD as text, "unknown", or NULL (no upstream) */
} pd_request_log;

void pd_log_request(int fd, const pd_request_log *r);
/* "pendulum: ..." on stderr, for start-up and shutdown messages. */
void pd_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
