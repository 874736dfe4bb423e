/* config.h: Pendulum's configuration, loaded once at start-up and read-only afterwards.
 *
 * Sources: a YAML file (`pendulum serve --config FILE`) or, without one, the environment
 * variables the providers' own SDKs read (OPENAI_API_KEY, OPENAI_BASE_URL, ...).
 * In YAML, any scalar may contain ${VAR}: it is replaced by the environment variable's value
 * (an unset variable is an error naming file, line and key, except in `api_keys` where an
 * unset variable drops that key, so `api_keys: ["${PENDULUM_KEY}"]` means "no gateway keys"
 * when PENDULUM_KEY is unset).
 *
 * Ownership: pd_config_load, pd_config_load_string and pd_config_from_env return a config the caller owns and releases
 * with pd_config_free (NULL is a no-op). All strings inside are owned by the config.
 * Threads: after loading, the config is immutable and shared by every worker without locks.
 *
 * The schema with defaults and bounds is the table in config.c (data over code); docs/config.md
 * documents it for users. */
#ifndef PD_CONFIG_CONFIG_H
#define PD_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "core/result.h"

typedef enum pd_provider_kind {
    PD_KIND_OPENAI = 0, /* OpenAI and every OpenAI-compatible server (vLLM, llama-server, Ollama /v1) */
    PD_KIND_ANTHROPIC,
    PD_KIND_COHERE,
    PD_KIND_OLLAMA,
    PD_KIND_LLAMA       /* embedded llama.cpp engine */
} pd_provider_kind;

/* Upstream timeouts in milliseconds; 0 disables one. */
typedef struct pd_timeouts {
    uint32_t connect_ms;  /* TCP+TLS connect;                    default 5000 */
    uint32_t ttfb_ms;     /* request sent -> first response byte; default 120000 */
    uint32_t idle_ms;     /* between two chunks of a stream;     default 60000 */
    uint32_t total_ms;    /* whole transfer;                     default 600000 */
} pd_timeouts;

/* Active health check of a local HTTP backend (src/upstream/health.h). */
typedef struct pd_health_check_cfg {
    int enabled;          /* effective after loading: 1 only for local: true providers of kind
                             openai or ollama that did not say enabled: false */
    char *path;           /* GET origin-of-base_url + path; default /health (openai: llama-server,
                             vLLM) or / (ollama: "Ollama is running") */
    uint32_t interval_ms; /* between two probes; default 5000 */
    uint32_t timeout_ms;  /* one probe, connect included; default 1000 */
} pd_health_check_cfg;

typedef struct pd_provider_cfg {
    char *name;
    pd_provider_kind kind;
    char *base_url;       /* no trailing slash; defaults per kind (OpenAI: https://api.openai.com/v1) */
    char *api_key;        /* may be NULL (local servers) */
    pd_timeouts timeouts; /* per provider; defaults from the top-level `upstream:` section */
    /* Compliance attributes (routing). Only `local: true` (and the embedded engine) count as
     * local: a wrong guess would send private data out. */
    int local;            /* default 0 */
    int retention_days;   /* -1 (default) unknown; 0 nothing kept */
    int hipaa_baa;        /* default 0 */
    int zdr;              /* zero data retention; default 0 */
    /* Local targets' cost model (`cost: {usd_per_hour, requests_per_hour}`): a request costs
     * usd_per_hour / requests_per_hour. < 0 (default): no cost model, cost unknown. */
    double usd_per_hour, requests_per_hour;
    /* kind llama (the embedded engine, src/engine): the GGUF file and how to run it. */
    char *model_path;      /* required for kind llama */
    uint32_t ctx_size;     /* KV cells in total; 0 (default) = the model's trained context */
    uint32_t parallel;     /* sequences decoded together; default 4 */
    uint32_t threads;      /* CPU threads; 0 (default) = online CPUs, at most 8 */
    uint32_t batch_size;   /* tokens per decode step; default 512 */
    int embeddings;        /* also serve /v1/embeddings; default 0 */
    char *pooling;         /* embeddings: mean | cls | last; NULL = the model's own */
    pd_health_check_cfg health; /* `health_check:` */
    int line;             /* line in the config file, for messages; 0 when from the environment */
} pd_provider_cfg;

typedef struct pd_model_cfg {
    char *name;                 /* what clients send as "model" */
    char *upstream_model;       /* what the upstream is sent; defaults to name */
    pd_provider_cfg *provider;  /* resolved, points into pd_config.providers */
    uint32_t context_tokens;    /* context window; 0 unknown (routing: "larger context") */
    int line;
} pd_model_cfg;

/* A route (docs/routing.md): a name clients send as "model", a policy and its targets (models
 * or other routes). Validated when the router is built (src/router). */
typedef struct pd_route_tier_cfg {
    double below;  /* serves scores below this; < 0 for the last, catch-all tier */
    char *target;
} pd_route_tier_cfg;

typedef struct pd_route_cfg {
    char *name;
    char *policy;            /* tiered | fallback | privacy | speculative | balance */
    char **targets;          /* fallback, speculative, balance */
    size_t n_targets;
    pd_route_tier_cfg *tiers; /* tiered */
    size_t n_tiers;
    char *local, *cloud;     /* privacy branches */
    char *pii_action;        /* pii: {action: local | redact | block}; default local */
    char **on;               /* fallback triggers by name; none = all */
    size_t n_on;
    char *compliance;        /* tags every target must meet, e.g. "hipaa, eu" */
    /* Resilience (router/resilience.h): retry: {attempts, base_ms, max_ms}, max_attempts,
     * deadline_ms, confidence: {min_mean, min_window, window, after_tokens}. */
    uint32_t retry_attempts, retry_base_ms, retry_max_ms; /* defaults 0, 200, 10000 */
    uint32_t max_attempts;                                /* default 8 */
    uint32_t deadline_ms;                                 /* default 0: none */
    double min_mean_logprob, min_window_logprob;          /* > 0 (default): unset */
    uint32_t confidence_window, decide_after_tokens;      /* defaults 8, 16 */
    char *strategy;          /* balance: least_outstanding (NULL) | round_robin | random |
                                weighted | latency */
    double *weights;         /* balance + weighted: one positive number per target */
    size_t n_weights;
    int line;
} pd_route_cfg;

/* Client-facing limits. */
typedef struct pd_limits {
    size_t max_body_bytes;        /* default 16 MiB   (bounds 1 KiB .. 1 GiB) */
    size_t max_headers;           /* default 100      (bounds 8 .. 10000) */
    size_t max_header_bytes;      /* default 64 KiB total request head (bounds 1 KiB .. 1 MiB) */
    uint32_t idle_timeout_ms;     /* keep-alive connection idle; default 60000 */
    uint32_t read_timeout_ms;     /* to read a whole request once it starts; default 30000 */
    uint32_t shutdown_grace_ms;   /* SIGTERM: in-flight requests may finish this long; default 30000 */
    size_t max_upstream_bytes;    /* a non-streaming upstream body; default 64 MiB */
} pd_limits;

/* A price override (USD per million tokens); < 0 = keep the built-in price of that column. */
typedef struct pd_price_cfg {
    char *model;
    double input, output, cache_read, cache_write;
    int line;
} pd_price_cfg;

typedef struct pd_config {
    char *path;               /* the file it came from, or NULL (environment) */
    char *listen_host;        /* default "127.0.0.1" */
    uint16_t listen_port;     /* default 8080 */
    int workers;              /* default 0 = one per core */
    char **api_keys;          /* gateway keys; n_api_keys == 0 means no auth */
    size_t n_api_keys;
    pd_provider_cfg *providers;
    size_t n_providers;
    pd_model_cfg *models;
    size_t n_models;
    pd_route_cfg *routes;
    size_t n_routes;
    pd_price_cfg *prices;     /* `prices:` overrides of the built-in table (src/econ/prices.c) */
    size_t n_prices;
    pd_limits limits;
    pd_timeouts timeouts;     /* defaults for providers (`upstream:` section) */
    char *log_file;           /* request log; NULL = stderr */
    char *ledger_url;         /* sqlite:///path, postgres://...; NULL = the default SQLite file;
                                 "off" = no ledger */
    int log_bodies;           /* 1 only when explicitly asked for (`log: {bodies: true}`) */
    /* `breaker: {failures, window_ms, cooldown_ms}`: every target's circuit breaker (router.h
       pd_breaker; docs/routing.md "Circuit breaker"). Defaults 5, 30 s, 30 s. */
    uint32_t breaker_failures;
    uint64_t breaker_window_ms, breaker_cooldown_ms;
} pd_config;

/* Loads and validates a YAML file. On error returns NULL and writes a message of the form
 * "FILE:LINE: KEY: what is wrong" into err (always NUL-terminated, truncated to errlen). */
pd_config *pd_config_load(const char *path, char *err, size_t errlen);
/* Same, from a YAML text in memory; `name` is used in messages in place of the file name. */
pd_config *pd_config_load_string(const char *yaml, size_t len, const char *name, char *err, size_t errlen);
/* Builds a config from the environment: a provider + the usual models for each SDK variable
 * found (OPENAI_API_KEY [+ OPENAI_BASE_URL] -> provider "openai" with gpt-4o and gpt-4o-mini;
 * ANTHROPIC_API_KEY, CO_API_KEY, OLLAMA_HOST likewise). Appends a human-readable summary of what it found
 * to `summary` (one line per finding). Never fails for lack of variables: an empty provider
 * list is valid. */
pd_config *pd_config_from_env(char *summary, size_t summarylen);
void pd_config_free(pd_config *cfg);

/* Lookups; NULL when absent. */
const pd_model_cfg *pd_config_model(const pd_config *cfg, const char *name);
const pd_provider_cfg *pd_config_provider(const pd_config *cfg, const char *name);
const char *pd_provider_kind_name(pd_provider_kind kind);

#endif
