#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"

/* Appends s as JSON string content (escaped, truncated to fit). Returns the new length. */
static size_t put_escaped(char *buf, size_t len, size_t cap, const char *s)
{
    for (; s && *s && len + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)ch;
        } else if (ch < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", ch);
        } else {
            buf[len++] = (char)ch;
        }
    }
    return len;
}

static size_t put_field(char *buf, size_t len, size_t cap, const char *name, const char *value)
{
    if (len + strlen(name) + 8 >= cap)
        return len;
    len += (size_t)snprintf(buf + len, cap - len, ",\"%s\":", name);
    if (!value) {
        len += (size_t)snprintf(buf + len, cap - len, "null");
        return len;
    }
    buf[len++] = '"';
    len = put_escaped(buf, len, cap, value);
    buf[len++] = '"';
    return len;
}

void pd_log_request(int fd, const pd_request_log *r)
{
    char buf[2048];
    size_t cap = sizeof(buf) - 2; /* room for "}\n" */
    size_t len = (size_t)snprintf(buf, cap, "{\"ts\":%llu", (unsigned long long)pd_wall_ms());
    len = put_field(buf, len, cap, "id", r->id);
    len = put_field(buf, len, cap, "method", r->method);
    len = put_field(buf, len, cap, "path", r->path);
    len = put_field(buf, len, cap, "model", r->model);
    len = put_field(buf, len, cap, "provider", r->provider);
    len += (size_t)snprintf(buf + len, cap - len,
                            ",\"status\":%d,\"stream\":%s,\"ttfb_ms\":%.3f,\"upstream_ms\":%.3f,"
                            "\"total_ms\":%.3f,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                            "\"prompt_tokens\":%lld,\"completion_tokens\":%lld",
                            r->status, r->stream ? "true" : "false", r->ttfb_ms, r->upstream_ms,
                            r->total_ms, (unsigned long long)r->bytes_in,
                            (unsigned long long)r->bytes_out, (long long)r->prompt_tokens,
                            (long long)r->completion_tokens);
    if (len > cap)
        len = cap;
    if (r->cost_usd)
        len = put_field(buf, len, cap, "cost_usd", r->cost_usd);
    if (r->error)
        len = put_field(buf, len, cap, "error", r->error);
    buf[len++] = '}';
    buf[len++] = '\n';
    ssize_t n = write(fd, buf, len);
    (void)n; /* a lost log line must not fail the request */
}

void pd_log_info(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    fprintf(stderr, "pendulum: %.*s", n, buf);
}
