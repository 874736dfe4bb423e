/* config.c: loads pendulum.yaml (or the environment) into a pd_config.
 *
 * Design: the schema is data. Each section is a table of fields (key, type, where the value is
 * stored, default, bounds) and one generic walker matches a YAML map against a table, so a new
 * key is one line in a table. Unknown and duplicate keys are errors: a typo in a limit must not
 * silently leave the default in place.
 *
 * The walker handles a map's keys in *table* order, not file order, because some values depend
 * on other sections: `upstream:` must be known before a provider copies its timeouts from it,
 * and the providers must exist before a model can name one.
 *
 * Safety: the input is capped (MAX_INPUT) and a first pass over libyaml's events rejects deep
 * nesting and multi-document streams before the document tree is built. The walk is driven by
 * the schema, never by the shape of the input, so aliases (even cyclic ones) cannot make it
 * loop, and every list has a most-items bound. */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/buf.h"

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define HOUR_MS 3600000ull
#define DAY_MS (24ull * HOUR_MS)

#define MAX_INPUT (1u << 20)    /* bytes of YAML */
#define MAX_DEPTH 32            /* nested maps/lists; the schema needs 4 */
#define MAX_SCALAR (64u * 1024) /* one value after ${VAR} expansion */
#define MAX_VAR_NAME 128
#define MAX_PATH 256 /* a key path in messages, e.g. providers[3].timeouts.idle_ms */
#define MAX_FIELDS 32 /* keys in one section of the schema (providers have the most) */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef enum vtype {
    V_STR,      /* non-empty string */
    V_KEY,      /* secret string; empty or null means "none" */
    V_URL,      /* http:// or https:// URL, trailing slash removed */
    V_KIND,     /* pd_provider_kind by name */
    V_PROVIDER, /* pd_provider_cfg * by name; providers must be loaded first */
    V_LISTEN,   /* HOST:PORT into pd_config.listen_host + listen_port */
    V_INT,      /* plain whole number */
    V_SIZE,     /* bytes, optional unit */
    V_MS,       /* milliseconds, optional unit */
    V_BOOL,     /* true | false, stored in an int */
    V_REAL,     /* a number in (0, 1], stored in a double; absent = -1 */
    V_USD,      /* a price, a number >= 0, stored in a double; absent = -1 */
    V_LOGPROB,  /* a log-probability, a number <= 0, stored in a double; absent = 1 (unset) */
    V_MAP,      /* a section: sub-table, stored at off */
    V_LIST,     /* list of maps: array at off, count at count_off */
    V_KEYLIST,  /* list of secrets (api_keys): char ** at off, count at count_off */
    V_NUMLIST   /* list of positive numbers (weights): double * at off, count at count_off */
} vtype;

#define F_REQUIRED 1u

struct schema;
typedef struct field {
    const char *key;
    vtype type;
    unsigned flags;
    size_t off, size;       /* where the value lives in the enclosing struct */
    size_t count_off;       /* V_LIST, V_KEYLIST */
    uint64_t def, min, max; /* numbers; for lists, max is the most items */
    const char *sdef;       /* string default */
    const struct schema *sub;
} field;

typedef struct ctx {
    yaml_document_t *doc;
    const char *name; /* file name for messages */
    char *err;
    size_t errlen;
    pd_config *cfg; /* being built */
} ctx;

typedef struct schema {
    const field *fields;
    size_t n_fields;
    size_t item_size; /* lists: one element */
    /* lists: called after an item's defaults are set, and after it is loaded */
    void (*begin)(ctx *c, void *item);
    pd_result (*end)(ctx *c, void *items, size_t i, yaml_node_t *node, const char *path);
} schema;

/* ---- the schema ------------------------------------------------------------------------ */

/* Tables keep one line per key. */
/* clang-format off */
#define AT(S, m) .off = offsetof(S, m), .size = sizeof(((S *)0)->m)
#define NUM(k, t, S, m, d, lo, hi) {.key = (k), .type = (t), AT(S, m), .def = (d), .min = (lo), .max = (hi)}
#define STR(k, t, fl, S, m) {.key = (k), .type = (t), .flags = (fl), AT(S, m)}
#define MAP(k, S, m, sch) {.key = (k), .type = V_MAP, AT(S, m), .sub = &(sch)}
#define LIST(k, S, m, cnt, most, sch) \
    {.key = (k), .type = V_LIST, AT(S, m), .count_off = offsetof(S, cnt), .max = (most), .sub = &(sch)}
#define KEYLIST(k, S, m, cnt, most) \
    {.key = (k), .type = V_KEYLIST, AT(S, m), .count_off = offsetof(S, cnt), .max = (most)}
#define NUMLIST(k, S, m, cnt, most) \
    {.key = (k), .type = V_NUMLIST, AT(S, m), .count_off = offsetof(S, cnt), .max = (most)}

static void provider_begin(ctx *c, void *item);
static pd_result provider_end(ctx *c, void *items, size_t i, yaml_node_t *node, const char *path);
static pd_result model_end(ctx *c, void *items, size_t i, yaml_node_t *node, const char *path);

static const field timeout_fields[] = {
    NUM("connect_ms", V_MS, pd_timeouts, connect_ms, 5000, 0, DAY_MS),
    NUM("ttfb_ms", V_MS, pd_timeouts, ttfb_ms, 120000, 0, DAY_MS),
    NUM("idle_ms", V_MS, pd_timeouts, idle_ms, 60000, 0, DAY_MS),
    NUM("total_ms", V_MS, pd_timeouts, total_ms, 600000, 0, DAY_MS),
};
static const schema timeouts_schema = {timeout_fields, N_OF(timeout_fields), 0, NULL, NULL};

static const field limit_fields[] = {
    NUM("max_body_bytes", V_SIZE, pd_limits, max_body_bytes, 16 * MIB, KIB, GIB),
    NUM("max_headers", V_INT, pd_limits, max_headers, 100, 8, 10000),
    NUM("max_header_bytes", V_SIZE, pd_limits, max_header_bytes, 64 * KIB, KIB, MIB),
    NUM("idle_timeout_ms", V_MS, pd_limits, idle_timeout_ms, 60000, 100, HOUR_MS),
    NUM("read_timeout_ms", V_MS, pd_limits, read_timeout_ms, 30000, 100, HOUR_MS),
    NUM("shutdown_grace_ms", V_MS, pd_limits, shutdown_grace_ms, 30000, 0, HOUR_MS),
    NUM("max_upstream_bytes", V_SIZE, pd_limits, max_upstream_bytes, 64 * MIB, KIB, GIB),
};
static const schema limits_schema = {limit_fields, N_OF(limit_fields), 0, NULL, NULL};

static const field local_cost_fields[] = {
    {.key = "usd_per_hour", .type = V_USD, AT(pd_provider_cfg, usd_per_hour)},
    {.key = "requests_per_hour", .type = V_USD, AT(pd_provider_cfg, requests_per_hour)},
};
static const schema local_cost_schema = {local_cost_fields, N_OF(local_cost_fields), 0, NULL, NULL};

static const field health_fields[] = {
    NUM("enabled", V_BOOL, pd_health_check_cfg, enabled, 1, 0, 1),
    STR("path", V_STR, 0, pd_health_check_cfg, path),
    NUM("interval_ms", V_MS, pd_health_check_cfg, interval_ms, 5000, 100, HOUR_MS),
    NUM("timeout_ms", V_MS, pd_health_check_cfg, timeout_ms, 1000, 10, 60000),
};
static const schema health_schema = {health_fields, N_OF(health_fields), 0, NULL, NULL};

static const field provider_fields[] = {
    STR("name", V_STR, F_REQUIRED, pd_provider_cfg, name),
    STR("kind", V_KIND, F_REQUIRED, pd_provider_cfg, kind),
    STR("base_url", V_URL, 0, pd_provider_cfg, base_url),
    STR("api_key", V_KEY, 0, pd_provider_cfg, api_key),
    MAP("timeouts", pd_provider_cfg, timeouts, timeouts_schema),
    NUM("local", V_BOOL, pd_provider_cfg, local, 0, 0, 1),
    NUM("retention_days", V_INT, pd_provider_cfg, retention_days, UINT32_MAX /* -1: unknown */, 0, 36500),
    NUM("hipaa_baa", V_BOOL, pd_provider_cfg, hipaa_baa, 0, 0, 1),
    NUM("zdr", V_BOOL, pd_provider_cfg, zdr, 0, 0, 1),
    {.key = "cost", .type = V_MAP, .off = 0, .size = 0, .sub = &local_cost_schema},
    STR("model_path", V_STR, 0, pd_provider_cfg, model_path),
    NUM("ctx_size", V_INT, pd_provider_cfg, ctx_size, 0, 0, 10000000),
    NUM("parallel", V_INT, pd_provider_cfg, parallel, 4, 1, 64),
    NUM("threads", V_INT, pd_provider_cfg, threads, 0, 0, 8),
    NUM("batch_size", V_INT, pd_provider_cfg, batch_size, 512, 1, 65536),
    NUM("embeddings", V_BOOL, pd_provider_cfg, embeddings, 0, 0, 1),
    STR("pooling", V_STR, 0, pd_provider_cfg, pooling),
    MAP("health_check", pd_provider_cfg, health, health_schema),
};
static const schema provider_schema = {provider_fields, N_OF(provider_fields),
                                       sizeof(pd_provider_cfg), provider_begin, provider_end};

static const field model_fields[] = {
    STR("name", V_STR, F_REQUIRED, pd_model_cfg, name),
    STR("provider", V_PROVIDER, F_REQUIRED, pd_model_cfg, provider),
    STR("upstream_model", V_STR, 0, pd_model_cfg, upstream_model),
    NUM("context_tokens", V_INT, pd_model_cfg, context_tokens, 0, 0, 100000000),
};
static const schema model_schema = {model_fields, N_OF(model_fields), sizeof(pd_model_cfg), NULL,
                                    model_end};

static const field tier_fields[] = {
    {.key = "below", .type = V_REAL, AT(pd_route_tier_cfg, below)},
    STR("target", V_STR, F_REQUIRED, pd_route_tier_cfg, target),
};
static const schema tier_schema = {tier_fields, N_OF(tier_fields), sizeof(pd_route_tier_cfg), NULL, NULL};

/* `pii:` fills a field of the route itself, so its section offset is 0. */
static const field route_pii_fields[] = {
    {.key = "action", .type = V_STR, AT(pd_route_cfg, pii_action), .sdef = "local"},
};
static const schema route_pii_schema = {route_pii_fields, N_OF(route_pii_fields), 0, NULL, NULL};

/* `retry:` and `confidence:` fill fields of the route itself, as `pii:` does. */
static const field route_retry_fields[] = {
    NUM("attempts", V_INT, pd_route_cfg, retry_attempts, 0, 0, 10),
    NUM("base_ms", V_MS, pd_route_cfg, retry_base_ms, 200, 1, HOUR_MS),
    NUM("max_ms", V_MS, pd_route_cfg, retry_max_ms, 10000, 1, HOUR_MS),
};
static const schema route_retry_schema = {route_retry_fields, N_OF(route_retry_fields), 0, NULL, NULL};

static const field route_confidence_fields[] = {
    {.key = "min_mean", .type = V_LOGPROB, AT(pd_route_cfg, min_mean_logprob)},
    {.key = "min_window", .type = V_LOGPROB, AT(pd_route_cfg, min_window_logprob)},
    NUM("window", V_INT, pd_route_cfg, confidence_window, 8, 1, 64),
    NUM("after_tokens", V_INT, pd_route_cfg, decide_after_tokens, 16, 1, 4096),
};
static const schema route_confidence_schema = {route_confidence_fields, N_OF(route_confidence_fields), 0,
                                               NULL, NULL};

static pd_result route_end(ctx *c, void *items, size_t i, yaml_node_t *node, const char *path);

static const field route_fields[] = {
    STR("name", V_STR, F_REQUIRED, pd_route_cfg, name),
    STR("policy", V_STR, F_REQUIRED, pd_route_cfg, policy),
    KEYLIST("targets", pd_route_cfg, targets, n_targets, 16),
    LIST("tiers", pd_route_cfg, tiers, n_tiers, 16, tier_schema),
    STR("local", V_STR, 0, pd_route_cfg, local),
    STR("cloud", V_STR, 0, pd_route_cfg, cloud),
    {.key = "pii", .type = V_MAP, .off = 0, .size = 0, .sub = &route_pii_schema},
    KEYLIST("on", pd_route_cfg, on, n_on, 16),
    STR("compliance", V_STR, 0, pd_route_cfg, compliance),
    {.key = "retry", .type = V_MAP, .off = 0, .size = 0, .sub = &route_retry_schema},
    NUM("max_attempts", V_INT, pd_route_cfg, max_attempts, 8, 1, 64),
    NUM("deadline_ms", V_MS, pd_route_cfg, deadline_ms, 0, 0, DAY_MS),
    {.key = "confidence", .type = V_MAP, .off = 0, .size = 0, .sub = &route_confidence_schema},
    STR("strategy", V_STR, 0, pd_route_cfg, strategy),
    NUMLIST("weights", pd_route_cfg, weights, n_weights, 16),
};
static const schema route_schema = {route_fields, N_OF(route_fields), sizeof(pd_route_cfg), NULL,
                                    route_end};

static const field price_fields[] = {
    STR("model", V_STR, F_REQUIRED, pd_price_cfg, model),
    {.key = "input", .type = V_USD, AT(pd_price_cfg, input)},
    {.key = "output", .type = V_USD, AT(pd_price_cfg, output)},
    {.key = "cache_read", .type = V_USD, AT(pd_price_cfg, cache_read)},
    {.key = "cache_write", .type = V_USD, AT(pd_price_cfg, cache_write)},
};
static const schema price_schema = {price_fields, N_OF(price_fields), sizeof(pd_price_cfg), NULL, NULL};

/* `log:` fills fields of pd_config itself, so its section offset is 0. */
static const field log_fields[] = {
    STR("file", V_STR, 0, pd_config, log_file),
    NUM("bodies", V_BOOL, pd_config, log_bodies, 0, 0, 1),
};
static const schema log_schema = {log_fields, N_OF(log_fields), 0, NULL, NULL};

/* `breaker:` fills fields of pd_config itself, as `log:` does. */
static const field breaker_fields[] = {
    NUM("failures", V_INT, pd_config, breaker_failures, 5, 1, 1000),
    NUM("window_ms", V_MS, pd_config, breaker_window_ms, 30000, 1, DAY_MS),
    NUM("cooldown_ms", V_MS, pd_config, breaker_cooldown_ms, 30000, 1, DAY_MS),
};
static const schema breaker_schema = {breaker_fields, N_OF(breaker_fields), 0, NULL, NULL};

/* Order matters: `upstream` before `providers` before `models` (see the note at the top). */
static const field top_fields[] = {
    {.key = "listen", .type = V_LISTEN, AT(pd_config, listen_host), .sdef = "127.0.0.1:8080"},
    NUM("workers", V_INT, pd_config, workers, 0, 0, 256),
    KEYLIST("api_keys", pd_config, api_keys, n_api_keys, 1024),
    MAP("limits", pd_config, limits, limits_schema),
    MAP("upstream", pd_config, timeouts, timeouts_schema),
    LIST("providers", pd_config, providers, n_providers, 256, provider_schema),
    LIST("models", pd_config, models, n_models, 4096, model_schema),
    LIST("routes", pd_config, routes, n_routes, 256, route_schema),
    LIST("prices", pd_config, prices, n_prices, 1024, price_schema),
    {.key = "log", .type = V_MAP, .off = 0, .size = 0, .sub = &log_schema},
    {.key = "breaker", .type = V_MAP, .off = 0, .size = 0, .sub = &breaker_schema},
    STR("ledger", V_STR, 0, pd_config, ledger_url),
};
static const schema top_schema = {top_fields, N_OF(top_fields), 0, NULL, NULL};

/* Per kind: the default base URL and the variable the vendor's own SDK reads for its key. */
static const struct kind_info {
    pd_provider_kind kind;
    const char *name;
    const char *base_url; /* NULL: none (the embedded engine) */
    const char *key_env;  /* NULL: no key (local servers) */
} kinds[] = {
    {PD_KIND_OPENAI, "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"},
    {PD_KIND_ANTHROPIC, "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"},
    {PD_KIND_COHERE, "cohere", "https://api.cohere.com", "CO_API_KEY"},
    {PD_KIND_OLLAMA, "ollama", "http://localhost:11434", NULL},
    {PD_KIND_LLAMA, "llama", NULL, NULL},
};

/* What pd_config_from_env looks for, in order. */
static const struct env_provider {
    const char *var; /* its presence creates the provider */
    int var_is_key;  /* else it is the base URL (OLLAMA_HOST) */
    pd_provider_kind kind;
    const char *name;
    const char *url_var; /* base URL override (for Ollama, var itself) */
    const char *models[3];
} env_providers[] = {
    {"OPENAI_API_KEY", 1, PD_KIND_OPENAI, "openai", "OPENAI_BASE_URL", {"gpt-4o", "gpt-4o-mini", NULL}},
    {"ANTHROPIC_API_KEY", 1, PD_KIND_ANTHROPIC, "anthropic", NULL, {"claude-sonnet-4-0", "claude-3-5-haiku-latest", NULL}},
    {"CO_API_KEY", 1, PD_KIND_COHERE, "cohere", NULL, {"command-r-plus", "command-r", NULL}},
    {"OLLAMA_HOST", 0, PD_KIND_OLLAMA, "ollama", "OLLAMA_HOST", {NULL}},
};

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit;
static const unit plain_units[] = {{"", 1}, {NULL, 0}};
static const unit size_units[] = {
    {"", 1}, {"B", 1}, {"KiB", KIB}, {"MiB", MIB}, {"GiB", GIB},
    {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000}, {NULL, 0},
};
static const unit ms_units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", HOUR_MS}, {NULL, 0}};

/* clang-format on */

/* ---- messages ---------------------------------------------------------------------------- */

static pd_result fail(ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "NAME:LINE: PATH: message"; the line and path parts are left out when unknown. */
static pd_result fail(ctx *c, int line, const char *path, const char *fmt, ...)
{
    if (!c->err || !c->errlen)
        return PD_ERR_INVALID;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[32] = "";
    if (line > 0)
        snprintf(where, sizeof where, ":%d", line);
    snprintf(c->err, c->errlen, "%s%s: %s%s%s", c->name, where, path ? path : "",
             path && *path ? ": " : "", msg);
    return PD_ERR_INVALID;
}

static int line_of(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

static const char *shape_of(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a map";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return "a single value";
}

static pd_result fail_type(ctx *c, const yaml_node_t *n, const char *path, const char *want)
{
    return fail(c, line_of(n), path, "expected %s, found %s", want, shape_of(n));
}

static const char *want_of(vtype t)
{
    switch (t) {
    case V_INT: return "a whole number";
    case V_SIZE: return "a size";
    case V_MS: return "a duration";
    case V_BOOL: return "true or false";
    case V_REAL:
    case V_USD:
    case V_LOGPROB: return "a number";
    case V_MAP: return "a map";
    case V_LIST:
    case V_KEYLIST:
    case V_NUMLIST: return "a list";
    default: return "a string";
    }
}

/* Copies up to n bytes of s to out[*at..], replacing bytes that would garble a message. */
static void path_put(char *out, size_t *at, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *at + 1 < MAX_PATH; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[(*at)++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    out[*at] = '\0';
}

/* out = parent + ".key", or parent + "[index]" when key is NULL. Truncates rather than fails:
 * the path is only for humans. */
static void path_join(char *out, const char *parent, const char *key, size_t keylen, size_t index)
{
    size_t at = 0;
    path_put(out, &at, parent, strlen(parent));
    if (key) {
        if (*parent)
            path_put(out, &at, ".", 1);
        path_put(out, &at, key, keylen);
    } else {
        char num[32];
        int n = snprintf(num, sizeof num, "[%zu]", index);
        path_put(out, &at, num, n > 0 ? (size_t)n : 0);
    }
}

/* ---- small parsers ------------------------------------------------------------------------ */

/* A whole number, an optional space, an optional unit from `units` (case-insensitive). */
static int parse_num(const char *s, const unit *units, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*p == ' ' && p[1])
        p++;
    for (const unit *u = units; u->name; u++) {
        if (strcasecmp(p, u->name) == 0) {
            if (v > UINT64_MAX / u->mult)
                return -1;
            *out = v * u->mult;
            return 0;
        }
    }
    return -1;
}

/* Bounds in messages read as the user would write them: 16MiB, 30s. */
static void fmt_num(char *out, size_t n, vtype t, uint64_t v)
{
    static const unit sizes[] = {{"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}, {NULL, 0}};
    static const unit times[] = {{"h", HOUR_MS}, {"m", 60000}, {"s", 1000}, {NULL, 0}};
    const unit *u = t == V_SIZE ? sizes : t == V_MS ? times : NULL;
    for (; u && u->name; u++) {
        if (v && v % u->mult == 0) {
            snprintf(out, n, "%llu%s", (unsigned long long)(v / u->mult), u->name);
            return;
        }
    }
    snprintf(out, n, "%llu%s", (unsigned long long)v, t == V_MS && v ? "ms" : "");
}

static int valid_var_name(const char *s, size_t n)
{
    if (n == 0 || n > MAX_VAR_NAME || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9')))
            return 0;
    }
    return 1;
}

/* Replaces ${VAR} with the variable's value and $$ with $; any other '$' is kept, so a secret
 * with a '$' in it needs no escaping unless a '{' or '$' follows. On an unset variable returns
 * PD_ERR_NOT_FOUND with its name in `var`; other failures set `why`. */
static pd_result expand_env(const char *s, size_t len, pd_buf *out, char *var, const char **why)
{
    const char *end = s + len;
    while (s < end) {
        const char *d = memchr(s, '$', (size_t)(end - s));
        if (pd_buf_append(out, s, d ? (size_t)(d - s) : (size_t)(end - s)))
            goto too_long;
        if (!d)
            break;
        if (d + 1 < end && d[1] == '$') {
            s = d + 2;
        } else if (d + 1 >= end || d[1] != '{') {
            s = d + 1;
        } else {
            const char *name = d + 2;
            const char *close = memchr(name, '}', (size_t)(end - name));
            if (!close || !valid_var_name(name, (size_t)(close - name))) {
                *why =
                    "bad ${...} reference (use ${NAME} with letters, digits and _, or $$ for a $)";
                return PD_ERR_INVALID;
            }
            memcpy(var, name, (size_t)(close - name));
            var[close - name] = '\0';
            const char *val = getenv(var);
            if (!val)
                return PD_ERR_NOT_FOUND;
            if (pd_buf_append_str(out, val))
                goto too_long;
            s = close + 1;
            continue;
        }
        if (pd_buf_append(out, "$", 1))
            goto too_long;
    }
    return PD_OK;
too_long:
    *why = "value is longer than 64 KiB after ${VAR} expansion";
    return PD_ERR_TOO_LARGE;
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* The expanded text of a scalar node. *out is NULL for a YAML null; with `lenient`, an unset
 * variable returns PD_ERR_NOT_FOUND without a message (api_keys drops the item). */
static pd_result scalar_text(ctx *c, const yaml_node_t *n, const char *path, const char *want,
                             int lenient, char **out)
{
    *out = NULL;
    if (n->type != YAML_SCALAR_NODE)
        return fail_type(c, n, path, want);
    if (is_null(n))
        return PD_OK;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (memchr(s, '\0', len))
        return fail(c, line_of(n), path, "value contains a NUL byte");
    pd_buf b;
    pd_buf_init(&b, MAX_SCALAR);
    char var[MAX_VAR_NAME + 1];
    const char *why = NULL;
    pd_result rc = expand_env(s, len, &b, var, &why);
    if (rc == PD_ERR_NOT_FOUND && !lenient)
        fail(c, line_of(n), path, "environment variable %s is not set", var);
    else if (rc && rc != PD_ERR_NOT_FOUND)
        fail(c, line_of(n), path, "%s", why);
    if (rc) {
        pd_buf_free(&b);
        return rc == PD_ERR_NOT_FOUND && !lenient ? PD_ERR_INVALID : rc;
    }
    *out = b.data ? b.data : pd_xstrdup("");
    return PD_OK;
}

/* Accepts http:// and https:// URLs with a host; removes trailing slashes in place so paths
 * can be appended with a single '/'. */
static const char *check_url(char *s)
{
    size_t skip;
    if (strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return "must start with http:// or https://";
    if (s[skip] == '\0' || s[skip] == '/')
        return "has no host after the scheme";
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "contains a space or control character";
    size_t len = strlen(s);
    while (len > skip && s[len - 1] == '/')
        s[--len] = '\0';
    return NULL;
}

/* "HOST:PORT", "[IPV6]:PORT" or ":PORT". A missing host means 127.0.0.1: listening on every
 * interface (0.0.0.0 or [::]) must be asked for explicitly. */
static const char *parse_listen(const char *s, char **host, uint16_t *port)
{
    const char *h = s, *hend, *colon;
    if (*s == '[') {
        h = s + 1;
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':' || hend == h)
            return "expected [IPV6]:PORT, e.g. [::1]:8080";
        colon = hend + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return "expected HOST:PORT, e.g. 127.0.0.1:8080";
        hend = colon;
        if (memchr(s, ':', (size_t)(colon - s)))
            return "an IPv6 address needs brackets, e.g. [::1]:8080";
    }
    for (const char *p = h; p < hend; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              strchr(".-_:%", *p)))
            return "host contains a character not allowed in a host name or address";
    uint64_t v;
    if (parse_num(colon + 1, plain_units, &v) || v > 65535)
        return "port must be a number from 0 to 65535";
    *port = (uint16_t)v;
    *host = hend == h ? pd_xstrdup("127.0.0.1") : pd_xstrndup(h, (size_t)(hend - h));
    return NULL;
}

/* Ollama's own clients accept OLLAMA_HOST as "host", "host:port", ":port" or a URL. */
static char *ollama_url(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (strstr(v, "://"))
        return pd_xstrdup(v);
    size_t hostlen = strcspn(v, "/");
    const char *bracket = memchr(v, ']', hostlen);
    const char *after = bracket ? bracket : v;
    int has_port = memchr(after, ':', hostlen - (size_t)(after - v)) != NULL;
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_printf(&b, "http://%s%.*s%s%s", v[0] == ':' || hostlen == 0 ? "127.0.0.1" : "",
                  (int)hostlen, v, has_port ? "" : ":11434", v + hostlen);
    return b.data;
}

static const struct kind_info *kind_info(pd_provider_kind k)
{
    for (size_t i = 0; i < N_OF(kinds); i++)
        if (kinds[i].kind == k)
            return &kinds[i];
    return NULL;
}

/* NULL for the embedded engine; Ollama's default follows OLLAMA_HOST like its CLI does. */
static char *default_base_url(pd_provider_kind k)
{
    const char *host = getenv("OLLAMA_HOST");
    if (k == PD_KIND_OLLAMA && host && *host) {
        char *url = ollama_url(host);
        if (!check_url(url))
            return url;
        free(url);
    }
    const struct kind_info *ki = kind_info(k);
    return ki && ki->base_url ? pd_xstrdup(ki->base_url) : NULL;
}

static char *default_api_key(pd_provider_kind k)
{
    const struct kind_info *ki = kind_info(k);
    const char *v = ki && ki->key_env ? getenv(ki->key_env) : NULL;
    return v && *v ? pd_xstrdup(v) : NULL;
}

/* ---- the walker ---------------------------------------------------------------------------- */

static yaml_node_t *node_at(ctx *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

static int key_is(const yaml_node_t *k, const char *key)
{
    size_t n = strlen(key);
    return k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == n &&
           memcmp(k->data.scalar.value, key, n) == 0;
}

/* The value for `key` in a map node, or NULL. */
static yaml_node_t *map_get(ctx *c, yaml_node_t *map, const char *key)
{
    if (map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
        if (key_is(node_at(c, p->key), key))
            return node_at(c, p->value);
    return NULL;
}

static void store_uint(void *dst, size_t size, uint64_t v)
{
    if (size == sizeof(uint16_t)) {
        uint16_t x = (uint16_t)v;
        memcpy(dst, &x, sizeof x);
    } else if (size == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v; /* also the int fields: bounds keep them <= INT_MAX */
        memcpy(dst, &x, sizeof x);
    } else {
        memcpy(dst, &v, sizeof v);
    }
}

static void set_str(void *dst, char *s)
{
    char **slot = dst;
    free(*slot);
    *slot = s;
}

static void apply_defaults(const schema *s, void *base)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        const field *f = &s->fields[i];
        void *dst = (char *)base + f->off;
        switch (f->type) {
        case V_INT:
        case V_SIZE:
        case V_MS:
        case V_BOOL: store_uint(dst, f->size, f->def); break;
        case V_REAL:
        case V_USD: {
            double none = -1;
            memcpy(dst, &none, sizeof none);
            break;
        }
        case V_LOGPROB: {
            double none = 1;
            memcpy(dst, &none, sizeof none);
            break;
        }
        case V_LISTEN: {
            pd_config *cfg = base;
            free(cfg->listen_host);
            parse_listen(f->sdef, &cfg->listen_host, &cfg->listen_port);
            break;
        }
        case V_MAP: apply_defaults(f->sub, dst); break;
        default:
            if (f->sdef)
                set_str(dst, pd_xstrdup(f->sdef));
            break;
        }
    }
}

static pd_result store_number(ctx *c, const field *f, const char *s, int line, void *dst,
                              const char *path)
{
    uint64_t v;
    if (f->type == V_BOOL) {
        if (strcmp(s, "true") && strcmp(s, "false"))
            return fail(c, line, path, "expected true or false, got \"%s\"", s);
        store_uint(dst, f->size, strcmp(s, "true") == 0);
        return PD_OK;
    }
    const unit *units = f->type == V_SIZE ? size_units : f->type == V_MS ? ms_units : plain_units;
    if (parse_num(s, units, &v)) {
        const char *hint = f->type == V_SIZE
                               ? " with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)"
                           : f->type == V_MS ? " of milliseconds or with a unit (ms, s, m, h)"
                                             : "";
        return fail(c, line, path, "expected a whole number%s, got \"%s\"", hint, s);
    }
    if (v < f->min || v > f->max) {
        char lo[32], hi[32];
        fmt_num(lo, sizeof lo, f->type, f->min);
        fmt_num(hi, sizeof hi, f->type, f->max);
        return fail(c, line, path, "%s is out of range (%s .. %s)", s, lo, hi);
    }
    store_uint(dst, f->size, v);
    return PD_OK;
}

static pd_result store_kind(ctx *c, const char *s, int line, void *dst, const char *path)
{
    for (size_t i = 0; i < N_OF(kinds); i++) {
        if (strcmp(s, kinds[i].name) == 0) {
            *(pd_provider_kind *)dst = kinds[i].kind;
            return PD_OK;
        }
    }
    return fail(c, line, path,
                "unknown kind \"%s\" (expected openai, anthropic, cohere, ollama or llama)", s);
}

/* Stores one scalar value; takes ownership of s. */
static pd_result store_scalar(ctx *c, const field *f, char *s, int line, void *base,
                              const char *path)
{
    void *dst = (char *)base + f->off;
    pd_result rc = PD_OK;
    const char *why = NULL;
    if (f->type == V_KEY) { /* an explicit empty key means "send none", not "use the default" */
        if (s && *s)
            set_str(dst, s);
        else
            free(s);
        return PD_OK;
    }
    if (!s || !*s) {
        free(s);
        return fail(c, line, path, "must not be empty");
    }
    switch (f->type) {
    case V_STR: set_str(dst, s); return PD_OK;
    case V_URL:
        if ((why = check_url(s)) == NULL) {
            set_str(dst, s);
            return PD_OK;
        }
        rc = fail(c, line, path, "%s", why);
        break;
    case V_KIND: rc = store_kind(c, s, line, dst, path); break;
    case V_PROVIDER: {
        const pd_provider_cfg *p = pd_config_provider(c->cfg, s);
        if (p)
            memcpy(dst, &p, sizeof p);
        else
            rc = fail(c, line, path, "no provider named \"%s\"", s);
        break;
    }
    case V_USD: {
        char *end;
        double v = strtod(s, &end);
        if (*end || !(v >= 0 && v < 1e6))
            rc = fail(c, line, path, "must be a price in USD per million tokens, not \"%s\"", s);
        else
            memcpy(dst, &v, sizeof v);
        break;
    }
    case V_LOGPROB: {
        char *end;
        double v = strtod(s, &end);
        if (*end || !(v <= 0 && v > -1000))
            rc = fail(c, line, path, "must be a log-probability (a number from -1000 to 0), not \"%s\"", s);
        else
            memcpy(dst, &v, sizeof v);
        break;
    }
    case V_REAL: {
        char *end;
        double v = strtod(s, &end);
        if (*end || !(v > 0 && v <= 1))
            rc = fail(c, line, path, "must be a number above 0 and at most 1, not \"%s\"", s);
        else
            memcpy(dst, &v, sizeof v);
        break;
    }
    case V_LISTEN: {
        pd_config *cfg = base;
        char *host = NULL;
        if ((why = parse_listen(s, &host, &cfg->listen_port)) == NULL)
            set_str(&cfg->listen_host, host);
        else
            rc = fail(c, line, path, "%s", why);
        break;
    }
    default: rc = store_number(c, f, s, line, dst, path); break;
    }
    free(s);
    return rc;
}

static pd_result load_map(ctx *c, const schema *s, yaml_node_t *node, void *base, const char *path);

static pd_result check_list(ctx *c, const field *f, yaml_node_t *v, const char *path)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_type(c, v, path, "a list");
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > f->max)
        return fail(c, line_of(v), path, "too many items (%zu, at most %llu)", n,
                    (unsigned long long)f->max);
    return PD_OK;
}

/* A list of maps (providers, models): the array is allocated once, so pointers into it (a
 * model's provider) stay valid; the count grows as items load, so a failure frees cleanly. */
static pd_result load_list(ctx *c, const field *f, yaml_node_t *v, void *base, const char *path)
{
    if (is_null(v))
        return PD_OK;
    pd_result rc = check_list(c, f, v, path);
    if (rc)
        return rc;
    const schema *s = f->sub;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    char *items = pd_xcalloc(n, s->item_size);
    memcpy((char *)base + f->off, &items, sizeof items);
    size_t *count = (size_t *)((char *)base + f->count_off);
    for (size_t i = 0; i < n && !rc; i++) {
        yaml_node_t *item = node_at(c, v->data.sequence.items.start[i]);
        char *it = items + i * s->item_size;
        char p[MAX_PATH];
        path_join(p, path, NULL, 0, i);
        ++*count;
        apply_defaults(s, it);
        if (s->begin)
            s->begin(c, it);
        if (!item)
            return fail(c, line_of(v), p, "missing item");
        rc = load_map(c, s, item, it, p);
        if (!rc && s->end)
            rc = s->end(c, items, i, item, p);
    }
    return rc;
}

/* api_keys: an item that references an unset variable or expands to "" is dropped, so
 * `["${PENDULUM_KEY}"]` means "no auth" when the variable is unset. */
static pd_result load_keylist(ctx *c, const field *f, yaml_node_t *v, void *base, const char *path)
{
    if (is_null(v))
        return PD_OK;
    pd_result rc = check_list(c, f, v, path);
    if (rc)
        return rc;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    char **keys = pd_xcalloc(n, sizeof *keys);
    memcpy((char *)base + f->off, &keys, sizeof keys);
    size_t *count = (size_t *)((char *)base + f->count_off);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_at(c, v->data.sequence.items.start[i]);
        char p[MAX_PATH], *s = NULL;
        path_join(p, path, NULL, 0, i);
        if (!item)
            return fail(c, line_of(v), p, "missing item");
        rc = scalar_text(c, item, p, "a string", 1, &s);
        if (rc == PD_ERR_NOT_FOUND)
            continue;
        if (rc)
            return rc;
        if (s && *s)
            keys[(*count)++] = s;
        else
            free(s);
    }
    return PD_OK;
}

/* A positive finite number (a weight). */
static pd_result parse_positive(ctx *c, const yaml_node_t *item, const char *path, double *out)
{
    char *s = NULL, *end = NULL;
    pd_result rc = scalar_text(c, item, path, "a number", 0, &s);
    if (rc)
        return rc;
    double v = s && *s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || !(v > 0 && v < 1e12))
        rc = fail(c, line_of(item), path, "must be a positive number, not \"%s\"", s ? s : "");
    else
        *out = v;
    free(s);
    return rc;
}

/* weights: every item a positive number; the count is checked by whoever reads the list. */
static pd_result load_numlist(ctx *c, const field *f, yaml_node_t *v, void *base, const char *path)
{
    if (is_null(v))
        return PD_OK;
    pd_result rc = check_list(c, f, v, path);
    if (rc)
        return rc;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    double *nums = pd_xcalloc(n ? n : 1, sizeof *nums);
    memcpy((char *)base + f->off, &nums, sizeof nums);
    size_t *count = (size_t *)((char *)base + f->count_off);
    for (size_t i = 0; i < n && !rc; i++) {
        yaml_node_t *item = node_at(c, v->data.sequence.items.start[i]);
        char p[MAX_PATH];
        path_join(p, path, NULL, 0, i);
        if (!item)
            return fail(c, line_of(v), p, "missing item");
        rc = parse_positive(c, item, p, &nums[i]);
        if (!rc)
            ++*count;
    }
    return rc;
}

static pd_result load_value(ctx *c, const field *f, yaml_node_t *v, void *base, const char *path)
{
    switch (f->type) {
    case V_MAP: return load_map(c, f->sub, v, (char *)base + f->off, path);
    case V_LIST: return load_list(c, f, v, base, path);
    case V_KEYLIST: return load_keylist(c, f, v, base, path);
    case V_NUMLIST: return load_numlist(c, f, v, base, path);
    default: break;
    }
    char *s = NULL;
    pd_result rc = scalar_text(c, v, path, want_of(f->type), 0, &s);
    if (rc)
        return rc;
    if (!s && f->type != V_KEY)
        return fail(c, line_of(v), path, "has no value");
    return store_scalar(c, f, s, line_of(v), base, path);
}

static int find_field(const schema *s, const yaml_node_t *k)
{
    for (size_t i = 0; i < s->n_fields; i++)
        if (key_is(k, s->fields[i].key))
            return (int)i;
    return -1;
}

static pd_result fail_unknown(ctx *c, const schema *s, const yaml_node_t *k, const char *path)
{
    char known[256] = "";
    size_t at = 0;
    for (size_t i = 0; i < s->n_fields && at < sizeof known; i++) {
        int n = snprintf(known + at, sizeof known - at, "%s%s", i ? ", " : "", s->fields[i].key);
        if (n < 0)
            break;
        at += (size_t)n;
    }
    return fail(c, line_of(k), path, "unknown key (expected one of: %s)", known);
}

/* Matches a map node against a table: every key must be known and appear once; values are
 * then loaded in table order. A null node is an empty map (`limits:` with nothing under it). */
static pd_result load_map(ctx *c, const schema *s, yaml_node_t *node, void *base, const char *path)
{
    yaml_node_t *keys[MAX_FIELDS] = {0}, *vals[MAX_FIELDS] = {0};
    if (s->n_fields > MAX_FIELDS) /* a schema table grew past the arrays above: a bug */
        return fail(c, line_of(node), path, "internal: more than %d keys in this section", MAX_FIELDS);
    if (!is_null(node)) {
        if (node->type != YAML_MAPPING_NODE)
            return fail_type(c, node, path, "a map");
        yaml_node_pair_t *p = node->data.mapping.pairs.start;
        for (; p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
            if (!k || !v || k->type != YAML_SCALAR_NODE)
                return fail(c, line_of(k ? k : node), path, "a key must be a plain string");
            char sub[MAX_PATH];
            path_join(sub, path, (const char *)k->data.scalar.value, k->data.scalar.length, 0);
            int i = find_field(s, k);
            if (i < 0)
                return fail_unknown(c, s, k, sub);
            if (keys[i])
                return fail(c, line_of(k), sub, "duplicate key (first on line %d)",
                            line_of(keys[i]));
            keys[i] = k;
            vals[i] = v;
        }
    }
    for (size_t i = 0; i < s->n_fields; i++) {
        const field *f = &s->fields[i];
        char sub[MAX_PATH];
        path_join(sub, path, f->key, strlen(f->key), 0);
        pd_result rc = PD_OK;
        if (vals[i])
            rc = load_value(c, f, vals[i], base, sub);
        else if (f->flags & F_REQUIRED)
            rc = fail(c, line_of(node), path, "missing required key \"%s\"", f->key);
        if (rc)
            return rc;
    }
    return PD_OK;
}

/* ---- per-item checks ------------------------------------------------------------------------ */

static void provider_begin(ctx *c, void *item)
{
    pd_provider_cfg *p = item;
    p->timeouts = c->cfg->timeouts; /* `upstream:` is loaded before `providers:` */
}

/* Only local HTTP servers are probed: cloud providers have breakers and fallback, and the
 * embedded engine reports its own state. An explicit health_check elsewhere is a mistake. */
static pd_result provider_health(ctx *c, pd_provider_cfg *p, yaml_node_t *node, const char *path)
{
    pd_health_check_cfg *h = &p->health;
    int http = p->kind == PD_KIND_OPENAI || p->kind == PD_KIND_OLLAMA;
    yaml_node_t *given = map_get(c, node, "health_check");
    char sub[MAX_PATH];
    path_join(sub, path, "health_check", 12, 0);
    if (given && !is_null(given) && h->enabled && (!p->local || !http))
        return fail(c, line_of(given), sub,
                    "only providers with local: true of kind openai or ollama are probed "
                    "(say enabled: false, or remove it)");
    if (h->path && (h->path[0] != '/' || strpbrk(h->path, " \t\r\n")))
        return fail(c, line_of(given), sub,
                    "path must start with / and have no space (it is taken from the "
                    "base_url's scheme://host:port), not \"%s\"",
                    h->path);
    if (!h->path)
        h->path = pd_xstrdup(p->kind == PD_KIND_OLLAMA ? "/" : "/health");
    h->enabled = h->enabled && p->local && http;
    return PD_OK;
}

static pd_result provider_end(ctx *c, void *items, size_t i, yaml_node_t *node, const char *path)
{
    pd_provider_cfg *all = items, *p = &all[i];
    p->line = line_of(node);
    for (size_t j = 0; j < i; j++) {
        if (strcmp(all[j].name, p->name) == 0) {
            char sub[MAX_PATH];
            path_join(sub, path, "name", 4, 0);
            return fail(c, line_of(map_get(c, node, "name")), sub,
                        "duplicate provider name \"%s\" (first on line %d)", p->name, all[j].line);
        }
    }
    if (p->kind == PD_KIND_LLAMA && !p->model_path)
        return fail(c, line_of(node), path, "kind llama needs model_path (a GGUF file)");
    if (p->pooling && strcmp(p->pooling, "mean") && strcmp(p->pooling, "cls") && strcmp(p->pooling, "last"))
        return fail(c, line_of(node), path, "pooling must be mean, cls or last, not \"%s\"", p->pooling);
    if (!p->base_url)
        p->base_url = default_base_url(p->kind);
    pd_result rc = provider_health(c, p, node, path);
    if (rc)
        return rc;
    if (!p->api_key && !map_get(c, node, "api_key"))
        p->api_key = default_api_key(p->kind);
    return PD_OK;
}

static pd_result route_end(ctx *c, void *items, size_t i, yaml_node_t *node, const char *path)
{
    pd_route_cfg *all = items, *r = &all[i];
    r->line = line_of(node);
    for (size_t j = 0; j < i; j++) {
        if (strcmp(all[j].name, r->name) == 0) {
            char sub[MAX_PATH];
            path_join(sub, path, "name", 4, 0);
            return fail(c, line_of(map_get(c, node, "name")), sub,
                        "duplicate route name \"%s\" (first on line %d)", r->name, all[j].line);
        }
    }
    return PD_OK;
}

static pd_result model_end(ctx *c, void *items, size_t i, yaml_node_t *node, const char *path)
{
    pd_model_cfg *all = items, *m = &all[i];
    m->line = line_of(node);
    for (size_t j = 0; j < i; j++) {
        if (strcmp(all[j].name, m->name) == 0) {
            char sub[MAX_PATH];
            path_join(sub, path, "name", 4, 0);
            return fail(c, line_of(map_get(c, node, "name")), sub,
                        "duplicate model name \"%s\" (first on line %d)", m->name, all[j].line);
        }
    }
    if (!m->upstream_model)
        m->upstream_model = pd_xstrdup(m->name);
    return PD_OK;
}

/* ---- loading ----------------------------------------------------------------------------- */

static pd_result fail_parser(ctx *c, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return fail(c, 0, NULL, "out of memory while parsing YAML");
    return fail(c, (int)p->problem_mark.line + 1, NULL, "YAML syntax error: %s%s%s",
                p->problem ? p->problem : "unknown", p->context ? " " : "",
                p->context ? p->context : "");
}

/* A first pass over the events: syntax errors, nesting depth, one document only. */
static pd_result check_events(ctx *c, const unsigned char *text, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return fail(c, 0, NULL, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&p, text, len);
    pd_result rc = PD_OK;
    int depth = 0, docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = fail_parser(c, &p);
            break;
        }
        yaml_event_type_t type = ev.type;
        int line = (int)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            break;
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
            if (++depth > MAX_DEPTH) {
                rc = fail(c, line, NULL, "nested deeper than %d levels", MAX_DEPTH);
                break;
            }
        } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            rc = fail(c, line, NULL, "only one YAML document is allowed");
            break;
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

static pd_config *config_new(void)
{
    pd_config *cfg = pd_xcalloc(1, sizeof *cfg);
    apply_defaults(&top_schema, cfg);
    return cfg;
}

static pd_result load_document(ctx *c, const unsigned char *text, size_t len)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        return fail(c, 0, NULL, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&p, text, len);
    pd_result rc;
    if (!yaml_parser_load(&p, &doc)) {
        rc = fail_parser(c, &p);
        yaml_parser_delete(&p);
        return rc;
    }
    c->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || is_null(root))
        rc = fail(c, 0, NULL, "empty configuration");
    else
        rc = load_map(c, &top_schema, root, c->cfg, "");
    c->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}

pd_config *pd_config_load_string(const char *yaml, size_t len, const char *name, char *err,
                                 size_t errlen)
{
    ctx c = {.name = name ? name : "<config>", .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    pd_result rc;
    if (len > MAX_INPUT)
        rc = fail(&c, 0, NULL, "larger than 1 MiB");
    else if (!yaml || len == 0)
        rc = fail(&c, 0, NULL, "empty configuration");
    else
        rc = check_events(&c, (const unsigned char *)yaml, len);
    if (rc)
        return NULL;
    c.cfg = config_new();
    c.cfg->path = name ? pd_xstrdup(name) : NULL;
    if (load_document(&c, (const unsigned char *)yaml, len)) {
        pd_config_free(c.cfg);
        return NULL;
    }
    return c.cfg;
}

pd_config *pd_config_load(const char *path, char *err, size_t errlen)
{
    ctx c = {.name = path ? path : "<config>", .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        fail(&c, 0, NULL, "cannot open: %s", path ? strerror(errno) : "no file name");
        return NULL;
    }
    char *text = pd_xmalloc(MAX_INPUT + 1);
    size_t n = fread(text, 1, MAX_INPUT + 1, f);
    int bad = ferror(f);
    int saved = errno;
    fclose(f);
    pd_config *cfg = NULL;
    if (bad)
        fail(&c, 0, NULL, "cannot read: %s", strerror(saved));
    else if (n > MAX_INPUT)
        fail(&c, 0, NULL, "larger than 1 MiB");
    else
        cfg = pd_config_load_string(text, n, path, err, errlen);
    free(text);
    return cfg;
}

/* ---- from the environment ---------------------------------------------------------------- */

static void summary_add(char *summary, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void summary_add(char *summary, size_t len, const char *fmt, ...)
{
    if (!summary || !len)
        return;
    size_t at = strnlen(summary, len);
    if (at + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(summary + at, len - at, fmt, ap);
    va_end(ap);
    if (n >= 0 && at + (size_t)n + 1 < len) {
        summary[at + (size_t)n] = '\n';
        summary[at + (size_t)n + 1] = '\0';
    }
}

static const char *env_value(const char *name)
{
    const char *v = name ? getenv(name) : NULL;
    return v && *v ? v : NULL;
}

/* The provider's base URL from the environment, with what it found said in the summary; NULL
 * when the variable that defines the provider (OLLAMA_HOST) is unusable. */
static char *env_base_url(const struct env_provider *ep, char *summary, size_t len)
{
    const char *v = env_value(ep->url_var);
    if (!v)
        return default_base_url(ep->kind);
    char *url = ep->kind == PD_KIND_OLLAMA ? ollama_url(v) : pd_xstrdup(v);
    if (!check_url(url)) {
        if (ep->var_is_key)
            summary_add(summary, len, "found %s: provider \"%s\" uses it", ep->url_var, ep->name);
        return url;
    }
    free(url);
    summary_add(summary, len, "%s ignored: not a usable http:// or https:// URL", ep->url_var);
    return ep->var_is_key ? default_base_url(ep->kind) : NULL;
}

static void add_env_provider(pd_config *cfg, const struct env_provider *ep, char *summary,
                             size_t len)
{
    const char *v = env_value(ep->var);
    if (!v)
        return;
    char *url = env_base_url(ep, summary, len);
    if (!url)
        return;
    pd_provider_cfg *p = &cfg->providers[cfg->n_providers++];
    p->name = pd_xstrdup(ep->name);
    p->kind = ep->kind;
    p->base_url = url;
    p->api_key = ep->var_is_key ? pd_xstrdup(v) : NULL;
    p->timeouts = cfg->timeouts;
    pd_buf names;
    pd_buf_init(&names, 256);
    for (size_t i = 0; i < N_OF(ep->models) && ep->models[i]; i++) {
        pd_model_cfg *m = &cfg->models[cfg->n_models++];
        m->name = pd_xstrdup(ep->models[i]);
        m->upstream_model = pd_xstrdup(ep->models[i]);
        m->provider = p;
        pd_buf_printf(&names, "%s%s", i ? ", " : "", ep->models[i]);
    }
    if (names.len)
        summary_add(summary, len, "found %s: provider \"%s\" with models %s", ep->var, ep->name,
                    names.data);
    else
        summary_add(summary, len,
                    "found %s: provider \"%s\" has no models; configure them in a config file",
                    ep->var, ep->name);
    pd_buf_free(&names);
}

pd_config *pd_config_from_env(char *summary, size_t summarylen)
{
    pd_config *cfg = config_new();
    size_t n = N_OF(env_providers);
    cfg->providers = pd_xcalloc(n, sizeof *cfg->providers);
    cfg->models = pd_xcalloc(n * N_OF(env_providers[0].models), sizeof *cfg->models);
    for (size_t i = 0; i < n; i++)
        add_env_provider(cfg, &env_providers[i], summary, summarylen);
    if (!cfg->n_providers)
        summary_add(summary, summarylen,
                    "no provider variables found (OPENAI_API_KEY, ANTHROPIC_API_KEY, CO_API_KEY, "
                    "OLLAMA_HOST)");
    return cfg;
}

/* ---- the rest ------------------------------------------------------------------------------ */

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_route(pd_route_cfg *r)
{
    free(r->name);
    free(r->policy);
    free_strs(r->targets, r->n_targets);
    for (size_t i = 0; i < r->n_tiers; i++)
        free(r->tiers[i].target);
    free(r->tiers);
    free(r->local);
    free(r->cloud);
    free(r->pii_action);
    free_strs(r->on, r->n_on);
    free(r->compliance);
    free(r->strategy);
    free(r->weights);
}

void pd_config_free(pd_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->listen_host);
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        free(cfg->api_keys[i]);
    free(cfg->api_keys);
    for (size_t i = 0; i < cfg->n_providers; i++) {
        free(cfg->providers[i].name);
        free(cfg->providers[i].base_url);
        free(cfg->providers[i].api_key);
        free(cfg->providers[i].model_path);
        free(cfg->providers[i].pooling);
        free(cfg->providers[i].health.path);
    }
    free(cfg->providers);
    for (size_t i = 0; i < cfg->n_models; i++) {
        free(cfg->models[i].name);
        free(cfg->models[i].upstream_model);
    }
    free(cfg->models);
    for (size_t i = 0; i < cfg->n_routes; i++)
        free_route(&cfg->routes[i]);
    free(cfg->routes);
    for (size_t i = 0; i < cfg->n_prices; i++)
        free(cfg->prices[i].model);
    free(cfg->prices);
    free(cfg->log_file);
    free(cfg->ledger_url);
    free(cfg);
}

const pd_model_cfg *pd_config_model(const pd_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_models; i++)
        if (cfg->models[i].name && strcmp(cfg->models[i].name, name) == 0)
            return &cfg->models[i];
    return NULL;
}

const pd_provider_cfg *pd_config_provider(const pd_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_providers; i++)
        if (cfg->providers[i].name && strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

const char *pd_provider_kind_name(pd_provider_kind kind)
{
    const struct kind_info *ki = kind_info(kind);
    return ki ? ki->name : "unknown";
}
