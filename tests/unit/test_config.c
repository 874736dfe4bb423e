#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static char err[512];

static pd_config *load(const char *yaml)
{
    return pd_config_load_string(yaml, strlen(yaml), "t.yaml", err, sizeof err);
}

/* Loading must fail with exactly this message. */
static void expect_err(const char *yaml, const char *msg)
{
    pd_config *cfg = load(yaml);
    CHECK(cfg == NULL);
    CHECK_STR(err, msg);
    pd_config_free(cfg);
}

static void clear_env(void)
{
    static const char *vars[] = {"OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
                                 "CO_API_KEY",     "OLLAMA_HOST",     "PENDULUM_KEY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void example_shape_loads(void)
{
    clear_env();
    setenv("PENDULUM_KEY", "pk-123", 1);
    setenv("OPENAI_API_KEY", "sk-test", 1);
    pd_config *cfg = load("listen: 127.0.0.1:8080\n"
                          "api_keys: [\"${PENDULUM_KEY}\"]        # optional\n"
                          "providers:\n"
                          "  - name: openai\n"
                          "    kind: openai\n"
                          "    base_url: https://api.openai.com/v1\n"
                          "    api_key: ${OPENAI_API_KEY}\n"
                          "models:\n"
                          "  - name: gpt-4o\n"
                          "    provider: openai\n"
                          "    upstream_model: gpt-4o\n");
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_STR(cfg->path, "t.yaml");
    CHECK_STR(cfg->listen_host, "127.0.0.1");
    CHECK(cfg->listen_port == 8080);
    CHECK(cfg->n_api_keys == 1);
    CHECK_STR(cfg->api_keys[0], "pk-123");
    CHECK(cfg->n_providers == 1);
    CHECK_STR(cfg->providers[0].name, "openai");
    CHECK(cfg->providers[0].kind == PD_KIND_OPENAI);
    CHECK_STR(cfg->providers[0].base_url, "https://api.openai.com/v1");
    CHECK_STR(cfg->providers[0].api_key, "sk-test");
    CHECK(cfg->providers[0].line == 4);
    CHECK(cfg->n_models == 1);
    CHECK_STR(cfg->models[0].name, "gpt-4o");
    CHECK_STR(cfg->models[0].upstream_model, "gpt-4o");
    CHECK(cfg->models[0].provider == &cfg->providers[0]);
    CHECK(cfg->models[0].line == 9);
    pd_config_free(cfg);
    clear_env();
}

static void defaults(void)
{
    clear_env();
    pd_config *cfg = load("workers: 0\n");
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    CHECK_STR(cfg->listen_host, "127.0.0.1");
    CHECK(cfg->listen_port == 8080);
    CHECK(cfg->workers == 0);
    CHECK(cfg->n_api_keys == 0);
    CHECK(cfg->n_providers == 0);
    CHECK(cfg->n_models == 0);
    CHECK(cfg->limits.max_body_bytes == 16u << 20);
    CHECK(cfg->limits.max_headers == 100);
    CHECK(cfg->limits.max_header_bytes == 64u << 10);
    CHECK(cfg->limits.idle_timeout_ms == 60000);
    CHECK(cfg->limits.read_timeout_ms == 30000);
    CHECK(cfg->limits.shutdown_grace_ms == 30000);
    CHECK(cfg->limits.max_upstream_bytes == 64u << 20);
    CHECK(cfg->timeouts.connect_ms == 5000);
    CHECK(cfg->timeouts.ttfb_ms == 120000);
    CHECK(cfg->timeouts.idle_ms == 60000);
    CHECK(cfg->timeouts.total_ms == 600000);
    CHECK(cfg->log_file == NULL);
    CHECK(cfg->log_bodies == 0);
    pd_config_free(cfg);

    /* an empty map is a valid (if useless) config; a section with nothing under it too */
    cfg = load("{}\n");
    CHECK(cfg != NULL && cfg->listen_port == 8080);
    pd_config_free(cfg);
    cfg = load("limits:\nlog:\napi_keys:\nproviders:\n");
    CHECK(cfg != NULL && cfg->limits.max_headers == 100 && cfg->n_providers == 0);
    pd_config_free(cfg);
}

static void every_key(void)
{
    clear_env();
    pd_config *cfg = load("listen: \"[::1]:9000\"\n"
                          "workers: 4\n"
                          "limits:\n"
                          "  max_body_bytes: 1MiB\n"
                          "  max_headers: 50\n"
                          "  max_header_bytes: 32 KiB\n"
                          "  idle_timeout_ms: 2m\n"
                          "  read_timeout_ms: 10s\n"
                          "  shutdown_grace_ms: 0\n"
                          "  max_upstream_bytes: 2GB\n"
                          "providers:\n" /* before `upstream:` in the file: still inherits it */
                          "  - name: local\n"
                          "    kind: openai\n"
                          "    base_url: http://127.0.0.1:8000/v1/\n"
                          "    api_key: \"\"\n"
                          "    timeouts: {ttfb_ms: 1h}\n"
                          "upstream:\n"
                          "  connect_ms: 500ms\n"
                          "  ttfb_ms: 30s\n"
                          "  idle_ms: 0\n"
                          "  total_ms: 1200000\n"
                          "log:\n"
                          "  file: /tmp/pendulum.log\n"
                          "  bodies: true\n");
    CHECK(cfg == NULL); /* 2GB is above the 1 GiB bound */
    CHECK_STR(err, "t.yaml:10: limits.max_upstream_bytes: 2GB is out of range (1KiB .. 1GiB)");
    pd_config_free(cfg);

    setenv("OPENAI_API_KEY", "sk-must-not-be-used", 1);
    cfg = load("listen: \"[::1]:9000\"\n"
               "workers: 4\n"
               "limits:\n"
               "  max_body_bytes: 1MiB\n"
               "  max_headers: 50\n"
               "  max_header_bytes: 32 KiB\n"
               "  idle_timeout_ms: 2m\n"
               "  read_timeout_ms: 10s\n"
               "  shutdown_grace_ms: 0\n"
               "  max_upstream_bytes: 1GB\n"
               "providers:\n"
               "  - name: local\n"
               "    kind: openai\n"
               "    base_url: http://127.0.0.1:8000/v1/\n"
               "    api_key: \"\"\n"
               "    timeouts: {ttfb_ms: 1h}\n"
               "upstream:\n"
               "  connect_ms: 500ms\n"
               "  ttfb_ms: 30s\n"
               "  idle_ms: 0\n"
               "  total_ms: 1200000\n"
               "log:\n"
               "  file: /tmp/pendulum.log\n"
               "  bodies: true\n");
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_STR(cfg->listen_host, "::1");
    CHECK(cfg->listen_port == 9000);
    CHECK(cfg->workers == 4);
    CHECK(cfg->limits.max_body_bytes == 1u << 20);
    CHECK(cfg->limits.max_headers == 50);
    CHECK(cfg->limits.max_header_bytes == 32u << 10);
    CHECK(cfg->limits.idle_timeout_ms == 120000);
    CHECK(cfg->limits.read_timeout_ms == 10000);
    CHECK(cfg->limits.shutdown_grace_ms == 0);
    CHECK(cfg->limits.max_upstream_bytes == 1000000000u);
    CHECK(cfg->timeouts.connect_ms == 500);
    CHECK(cfg->timeouts.ttfb_ms == 30000);
    CHECK(cfg->timeouts.idle_ms == 0);
    CHECK(cfg->timeouts.total_ms == 1200000);
    CHECK(cfg->n_providers == 1);
    CHECK_STR(cfg->providers[0].base_url, "http://127.0.0.1:8000/v1");
    CHECK(cfg->providers[0].api_key == NULL); /* "" means none, not the OPENAI_API_KEY default */
    CHECK(cfg->providers[0].timeouts.connect_ms == 500);
    CHECK(cfg->providers[0].timeouts.ttfb_ms == 3600000);
    CHECK(cfg->providers[0].timeouts.idle_ms == 0);
    CHECK(cfg->providers[0].timeouts.total_ms == 1200000);
    CHECK_STR(cfg->log_file, "/tmp/pendulum.log");
    CHECK(cfg->log_bodies == 1);
    pd_config_free(cfg);
    clear_env();
}

static void listen_forms(void)
{
    static const struct {
        const char *yaml, *host;
        unsigned port;
    } ok[] = {
        {"listen: 0.0.0.0:80\n", "0.0.0.0", 80},
        {"listen: \":8081\"\n", "127.0.0.1", 8081},
        {"listen: localhost:0\n", "localhost", 0},
        {"listen: \"[::]:65535\"\n", "::", 65535},
        {"listen: \"[fe80::1%eth0]:1\"\n", "fe80::1%eth0", 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        pd_config *cfg = load(ok[i].yaml);
        CHECK(cfg != NULL);
        if (cfg) {
            CHECK_STR(cfg->listen_host, ok[i].host);
            CHECK(cfg->listen_port == ok[i].port);
        }
        pd_config_free(cfg);
    }
    expect_err("listen: 8080\n", "t.yaml:1: listen: expected HOST:PORT, e.g. 127.0.0.1:8080");
    expect_err("listen: ::1:8080\n",
               "t.yaml:1: listen: an IPv6 address needs brackets, e.g. [::1]:8080");
    expect_err("listen: \"[::1]8080\"\n",
               "t.yaml:1: listen: expected [IPV6]:PORT, e.g. [::1]:8080");
    expect_err("listen: \"[]:8080\"\n", "t.yaml:1: listen: expected [IPV6]:PORT, e.g. [::1]:8080");
    expect_err("listen: host:65536\n", "t.yaml:1: listen: port must be a number from 0 to 65535");
    expect_err("listen: \"host:\"\n", "t.yaml:1: listen: port must be a number from 0 to 65535");
    expect_err("listen: \"a b:80\"\n",
               "t.yaml:1: listen: host contains a character not allowed in a host name or address");
}

static void size_and_duration_suffixes(void)
{
    static const struct {
        const char *value;
        size_t bytes;
    } sizes[] = {
        {"1024", 1024},       {"1KiB", 1024},       {"1kib", 1024},  {"2 KiB", 2048},
        {"16MiB", 16u << 20}, {"1GiB", 1u << 30},   {"5000B", 5000}, {"64KB", 64000},
        {"3MB", 3000000},     {"1GB", 1000000000u},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char yaml[128];
        snprintf(yaml, sizeof yaml, "limits: {max_body_bytes: %s}\n", sizes[i].value);
        pd_config *cfg = load(yaml);
        CHECK(cfg != NULL);
        if (cfg && cfg->limits.max_body_bytes != sizes[i].bytes)
            fprintf(stderr, "  size %s -> %zu\n", sizes[i].value, cfg->limits.max_body_bytes);
        CHECK(cfg && cfg->limits.max_body_bytes == sizes[i].bytes);
        pd_config_free(cfg);
    }
    static const struct {
        const char *value;
        uint32_t ms;
    } times[] = {
        {"0", 0},       {"250", 250},    {"500ms", 500},    {"30s", 30000},
        {"2m", 120000}, {"1h", 3600000}, {"24h", 86400000}, {"90 s", 90000},
    };
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        char yaml[128];
        snprintf(yaml, sizeof yaml, "upstream: {idle_ms: %s}\n", times[i].value);
        pd_config *cfg = load(yaml);
        CHECK(cfg && cfg->timeouts.idle_ms == times[i].ms);
        pd_config_free(cfg);
    }
    expect_err("limits: {max_body_bytes: 16M}\n",
               "t.yaml:1: limits.max_body_bytes: expected a whole number with an optional unit "
               "(B, KiB, MiB, GiB, KB, MB, GB), got \"16M\"");
    expect_err("upstream: {ttfb_ms: 1.5s}\n",
               "t.yaml:1: upstream.ttfb_ms: expected a whole number of milliseconds or with a "
               "unit (ms, s, m, h), got \"1.5s\"");
    expect_err("upstream: {ttfb_ms: -1}\n",
               "t.yaml:1: upstream.ttfb_ms: expected a whole number of milliseconds or with a "
               "unit (ms, s, m, h), got \"-1\"");
    expect_err("upstream: {ttfb_ms: 25h}\n",
               "t.yaml:1: upstream.ttfb_ms: 25h is out of range (0 .. 24h)");
    expect_err("upstream: {ttfb_ms: 99999999999999999999}\n",
               "t.yaml:1: upstream.ttfb_ms: expected a whole number of milliseconds or with a "
               "unit (ms, s, m, h), got \"99999999999999999999\"");
    expect_err("limits: {max_body_bytes: 18446744073709551615GiB}\n",
               "t.yaml:1: limits.max_body_bytes: expected a whole number with an optional unit "
               "(B, KiB, MiB, GiB, KB, MB, GB), got \"18446744073709551615GiB\"");
    expect_err("limits:\n  max_body_bytes: 512\n",
               "t.yaml:2: limits.max_body_bytes: 512 is out of range (1KiB .. 1GiB)");
    expect_err("limits:\n  max_headers: 7\n",
               "t.yaml:2: limits.max_headers: 7 is out of range (8 .. 10000)");
    expect_err("limits:\n  idle_timeout_ms: 50ms\n",
               "t.yaml:2: limits.idle_timeout_ms: 50ms is out of range (100ms .. 1h)");
    expect_err("workers: four\n", "t.yaml:1: workers: expected a whole number, got \"four\"");
    expect_err("workers: 1KiB\n", "t.yaml:1: workers: expected a whole number, got \"1KiB\"");
    expect_err("workers: 257\n", "t.yaml:1: workers: 257 is out of range (0 .. 256)");
    expect_err("log: {bodies: yes}\n", "t.yaml:1: log.bodies: expected true or false, got \"yes\"");
}

static void key_errors(void)
{
    expect_err("listen: 127.0.0.1:8080\nlistn: 1\n",
               "t.yaml:2: listn: unknown key (expected one of: listen, workers, api_keys, limits, "
               "upstream, providers, models, routes, prices, log, breaker, ledger)");
    expect_err(
        "providers:\n  - name: a\n    kind: openai\n    bse_url: http://x\n",
        "t.yaml:4: providers[0].bse_url: unknown key (expected one of: name, kind, "
        "base_url, api_key, timeouts, local, retention_days, hipaa_baa, zdr, cost, model_path, "
        "ctx_size, parallel, threads, batch_size, embeddings, pooling, health_check)");
    expect_err("upstream:\n  connect_ms: 1\n  conect_ms: 2\n",
               "t.yaml:3: upstream.conect_ms: unknown key (expected one of: connect_ms, ttfb_ms, "
               "idle_ms, total_ms)");
    expect_err("workers: 1\nlisten: :1\nworkers: 2\n",
               "t.yaml:3: workers: duplicate key (first on line 1)");
    expect_err("? [a]\n: 1\n", "t.yaml:1: a key must be a plain string");
    expect_err("providers:\n  - kind: openai\n",
               "t.yaml:2: providers[0]: missing required key \"name\"");
    expect_err("providers:\n  - name: x\n",
               "t.yaml:2: providers[0]: missing required key \"kind\"");
    expect_err("providers:\n  -\n", "t.yaml:2: providers[0]: missing required key \"name\"");
    expect_err("providers:\n  - {name: p, kind: openai}\nmodels:\n  - name: m\n",
               "t.yaml:4: models[0]: missing required key \"provider\"");
}

static void validation_errors(void)
{
    clear_env();
    expect_err("providers:\n"
               "  - name: openai\n"
               "    kind: opnai\n",
               "t.yaml:3: providers[0].kind: unknown kind \"opnai\" (expected openai, anthropic, "
               "cohere, ollama or llama)");
    expect_err("providers:\n"
               "  - name: a\n"
               "    kind: openai\n"
               "  - name: a\n"
               "    kind: anthropic\n",
               "t.yaml:4: providers[1].name: duplicate provider name \"a\" (first on line 2)");
    expect_err("providers:\n"
               "  - {name: openai, kind: openai}\n"
               "models:\n"
               "  - {name: m, provider: openai}\n"
               "  - name: m\n"
               "    provider: openai\n",
               "t.yaml:5: models[1].name: duplicate model name \"m\" (first on line 4)");
    expect_err("providers:\n"
               "  - {name: openai, kind: openai}\n"
               "models:\n"
               "  - name: gpt-4o\n"
               "    provider: openai\n"
               "  - name: gpt-4o-mini\n"
               "    provider: opnai\n",
               "t.yaml:7: models[1].provider: no provider named \"opnai\"");
    expect_err("models:\n  - {name: m, provider: openai}\n",
               "t.yaml:2: models[0].provider: no provider named \"openai\"");
    expect_err("providers:\n  - {name: a, kind: openai, base_url: ftp://x}\n",
               "t.yaml:2: providers[0].base_url: must start with http:// or https://");
    expect_err("providers:\n  - {name: a, kind: openai, base_url: \"https://\"}\n",
               "t.yaml:2: providers[0].base_url: has no host after the scheme");
    expect_err("providers:\n  - {name: a, kind: openai, base_url: \"http://a b\"}\n",
               "t.yaml:2: providers[0].base_url: contains a space or control character");
    expect_err("providers:\n  - {name: \"\", kind: openai}\n",
               "t.yaml:2: providers[0].name: must not be empty");
    expect_err("workers:\n", "t.yaml:1: workers: has no value");
}

static void type_errors(void)
{
    expect_err("- a\n- b\n", "t.yaml:1: expected a map, found a list");
    expect_err("hello\n", "t.yaml:1: expected a map, found a single value");
    expect_err("providers:\n  name: a\n", "t.yaml:2: providers: expected a list, found a map");
    expect_err("providers:\n  - name: {a: 1}\n    kind: openai\n",
               "t.yaml:2: providers[0].name: expected a string, found a map");
    expect_err("providers:\n  - [a, b]\n", "t.yaml:2: providers[0]: expected a map, found a list");
    expect_err("limits: [1, 2]\n", "t.yaml:1: limits: expected a map, found a list");
    expect_err("api_keys: key\n", "t.yaml:1: api_keys: expected a list, found a single value");
    expect_err("api_keys:\n  - a\n  - {k: v}\n",
               "t.yaml:3: api_keys[1]: expected a string, found a map");
    expect_err("workers: [1]\n", "t.yaml:1: workers: expected a whole number, found a list");
    expect_err("listen: {a: 1}\n", "t.yaml:1: listen: expected a string, found a map");
    expect_err("listen: \"a\\0b:1\"\n", "t.yaml:1: listen: value contains a NUL byte");
}

static void document_errors(void)
{
    expect_err("", "t.yaml: empty configuration");
    expect_err("# only a comment\n\n", "t.yaml: empty configuration");
    expect_err("~\n", "t.yaml: empty configuration");
    expect_err("workers: 1\n---\nworkers: 2\n", "t.yaml:2: only one YAML document is allowed");
    pd_config *cfg = load("listen: [a\nworkers: 1\n");
    CHECK(cfg == NULL);
    CHECK(strncmp(err, "t.yaml:", 7) == 0 && strstr(err, "YAML syntax error") != NULL);

    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    expect_err(deep, "t.yaml:1: nested deeper than 32 levels");

    size_t big = (1u << 20) + 1;
    char *text = malloc(big);
    memset(text, '#', big);
    cfg = pd_config_load_string(text, big, "big.yaml", err, sizeof err);
    CHECK(cfg == NULL);
    CHECK_STR(err, "big.yaml: larger than 1 MiB");
    free(text);

    /* an alias to the list being built must not loop: it is just the wrong type */
    expect_err("providers: &a [*a]\n", "t.yaml:1: providers[0]: expected a map, found a list");

    /* a short error buffer is truncated, still terminated; a NULL one is allowed */
    char small[8];
    cfg = pd_config_load_string("x: 1\n", 5, "t.yaml", small, sizeof small);
    CHECK(cfg == NULL);
    CHECK_STR(small, "t.yaml:");
    CHECK(pd_config_load_string("x: 1\n", 5, "t.yaml", NULL, 0) == NULL);
}

static void env_expansion(void)
{
    clear_env();
    setenv("PD_T_HOST", "10.0.0.1", 1);
    setenv("PD_T_PORT", "9999", 1);
    setenv("PD_T_EMPTY", "", 1);
    setenv("PD_T_WORKERS", "3", 1);
    unsetenv("PD_T_UNSET");
    pd_config *cfg = load("listen: ${PD_T_HOST}:${PD_T_PORT}\n"
                          "workers: ${PD_T_WORKERS}\n"
                          "api_keys:\n"
                          "  - ${PD_T_UNSET}\n"
                          "  - \"\"\n"
                          "  - ${PD_T_EMPTY}\n"
                          "  - k-${PD_T_PORT}-${PD_T_EMPTY}x\n"
                          "  - a$$b$c$\n"
                          "  - ${PD_T_UNSET}suffix\n");
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_STR(cfg->listen_host, "10.0.0.1");
    CHECK(cfg->listen_port == 9999);
    CHECK(cfg->workers == 3);
    CHECK(cfg->n_api_keys == 2);
    if (cfg->n_api_keys == 2) {
        CHECK_STR(cfg->api_keys[0], "k-9999-x");
        CHECK_STR(cfg->api_keys[1], "a$b$c$");
    }
    pd_config_free(cfg);

    expect_err("providers:\n"
               "  - name: openai\n"
               "    kind: openai\n"
               "    api_key: ${PD_T_UNSET}\n",
               "t.yaml:4: providers[0].api_key: environment variable PD_T_UNSET is not set");
    expect_err("log: {file: \"${PD_T_HOST\"}\n",
               "t.yaml:1: log.file: bad ${...} reference (use ${NAME} with letters, digits and _, "
               "or $$ for a $)");
    expect_err("log: {file: \"${1X}\"}\n",
               "t.yaml:1: log.file: bad ${...} reference (use ${NAME} with letters, digits and _, "
               "or $$ for a $)");
    expect_err("api_keys: [\"${}\"]\n",
               "t.yaml:1: api_keys[0]: bad ${...} reference (use ${NAME} with letters, digits and "
               "_, or $$ for a $)");
    expect_err("workers: ${PD_T_EMPTY}\n", "t.yaml:1: workers: must not be empty");

    /* a value over the cap after expansion is an error, not a truncation */
    char *huge = malloc(40000);
    memset(huge, 'x', 39999);
    huge[39999] = '\0';
    setenv("PD_T_HUGE", huge, 1);
    free(huge);
    expect_err("log: {file: \"${PD_T_HUGE}${PD_T_HUGE}\"}\n",
               "t.yaml:1: log.file: value is longer than 64 KiB after ${VAR} expansion");
    unsetenv("PD_T_HUGE");
    unsetenv("PD_T_HOST");
    unsetenv("PD_T_PORT");
    unsetenv("PD_T_EMPTY");
    unsetenv("PD_T_WORKERS");
}

static void provider_defaults(void)
{
    clear_env();
    setenv("ANTHROPIC_API_KEY", "ak", 1);
    setenv("CO_API_KEY", "ck", 1);
    const char *yaml = "providers:\n"
                       "  - {name: o, kind: openai}\n"
                       "  - {name: a, kind: anthropic}\n"
                       "  - {name: c, kind: cohere, api_key: mine}\n"
                       "  - {name: l, kind: ollama}\n"
                       "  - {name: e, kind: llama, model_path: /m.gguf}\n"
                       "models:\n"
                       "  - {name: m, provider: a}\n";
    pd_config *cfg = load(yaml);
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(cfg->n_providers == 5);
    CHECK_STR(cfg->providers[0].base_url, "https://api.openai.com/v1");
    CHECK(cfg->providers[0].api_key == NULL); /* OPENAI_API_KEY is unset */
    CHECK_STR(cfg->providers[1].base_url, "https://api.anthropic.com");
    CHECK_STR(cfg->providers[1].api_key, "ak");
    CHECK(cfg->providers[1].kind == PD_KIND_ANTHROPIC);
    CHECK_STR(cfg->providers[2].base_url, "https://api.cohere.com");
    CHECK_STR(cfg->providers[2].api_key, "mine");
    CHECK_STR(cfg->providers[3].base_url, "http://localhost:11434");
    CHECK(cfg->providers[3].api_key == NULL);
    CHECK(cfg->providers[4].kind == PD_KIND_LLAMA);
    CHECK(cfg->providers[4].base_url == NULL);
    CHECK(cfg->providers[4].timeouts.total_ms == 600000);
    CHECK_STR(cfg->models[0].upstream_model, "m");
    CHECK(cfg->models[0].provider == &cfg->providers[1]);
    pd_config_free(cfg);

    static const struct {
        const char *env, *url;
    } hosts[] = {
        {"gpu-box", "http://gpu-box:11434"},
        {"gpu-box:1234", "http://gpu-box:1234"},
        {":1234", "http://127.0.0.1:1234"},
        {"[::1]", "http://[::1]:11434"},
        {"https://ollama.example.com/", "https://ollama.example.com"},
        {"bad host", "http://localhost:11434"}, /* unusable: the default stands */
    };
    for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
        setenv("OLLAMA_HOST", hosts[i].env, 1);
        cfg = load("providers: [{name: l, kind: ollama}]\n");
        CHECK(cfg != NULL);
        if (cfg)
            CHECK_STR(cfg->providers[0].base_url, hosts[i].url);
        pd_config_free(cfg);
    }
    clear_env();
}

static void yaml_anchors(void)
{
    clear_env();
    pd_config *cfg = load("x-slow: &slow {ttfb_ms: 5m, total_ms: 1h}\n");
    CHECK(cfg == NULL); /* unknown keys stay errors, even to hold anchors */
    pd_config_free(cfg);
    cfg = load("providers:\n"
               "  - {name: a, kind: openai, timeouts: &slow {ttfb_ms: 5m, total_ms: 1h}}\n"
               "  - {name: b, kind: openai, timeouts: *slow}\n");
    CHECK(cfg != NULL);
    if (cfg) {
        CHECK(cfg->providers[1].timeouts.ttfb_ms == 300000);
        CHECK(cfg->providers[1].timeouts.total_ms == 3600000);
        CHECK(cfg->providers[1].timeouts.connect_ms == 5000);
    }
    pd_config_free(cfg);
}

static void from_env(void)
{
    char summary[1024] = "";
    clear_env();
    pd_config *cfg = pd_config_from_env(summary, sizeof summary);
    CHECK(cfg != NULL);
    CHECK(cfg && cfg->n_providers == 0 && cfg->n_models == 0 && cfg->path == NULL);
    CHECK(cfg && cfg->listen_port == 8080 && cfg->limits.max_body_bytes == 16u << 20);
    CHECK(strstr(summary, "no provider variables found") != NULL);
    pd_config_free(cfg);

    setenv("OPENAI_API_KEY", "sk-secret-value", 1);
    summary[0] = '\0';
    cfg = pd_config_from_env(summary, sizeof summary);
    CHECK(cfg && cfg->n_providers == 1 && cfg->n_models == 2);
    if (cfg && cfg->n_providers == 1 && cfg->n_models == 2) {
        CHECK_STR(cfg->providers[0].name, "openai");
        CHECK(cfg->providers[0].kind == PD_KIND_OPENAI);
        CHECK_STR(cfg->providers[0].base_url, "https://api.openai.com/v1");
        CHECK_STR(cfg->providers[0].api_key, "sk-secret-value");
        CHECK(cfg->providers[0].timeouts.connect_ms == 5000);
        CHECK(cfg->providers[0].line == 0);
        CHECK(pd_config_model(cfg, "gpt-4o")->provider == &cfg->providers[0]);
        CHECK_STR(pd_config_model(cfg, "gpt-4o-mini")->upstream_model, "gpt-4o-mini");
    }
    CHECK(strstr(summary, "found OPENAI_API_KEY") != NULL);
    CHECK(strstr(summary, "sk-secret-value") == NULL);
    pd_config_free(cfg);

    setenv("OPENAI_BASE_URL", "http://localhost:8000/v1/", 1);
    setenv("ANTHROPIC_API_KEY", "ak-secret", 1);
    setenv("CO_API_KEY", "co-secret", 1);
    setenv("OLLAMA_HOST", "127.0.0.1:11500", 1);
    summary[0] = '\0';
    cfg = pd_config_from_env(summary, sizeof summary);
    CHECK(cfg && cfg->n_providers == 4 && cfg->n_models == 6);
    if (cfg && cfg->n_providers == 4) {
        CHECK_STR(cfg->providers[0].base_url, "http://localhost:8000/v1");
        CHECK_STR(pd_config_provider(cfg, "anthropic")->api_key, "ak-secret");
        CHECK_STR(pd_config_provider(cfg, "anthropic")->base_url, "https://api.anthropic.com");
        CHECK_STR(pd_config_model(cfg, "claude-sonnet-4-0")->provider->name, "anthropic");
        CHECK_STR(pd_config_model(cfg, "claude-3-5-haiku-latest")->upstream_model,
                  "claude-3-5-haiku-latest");
        CHECK_STR(pd_config_model(cfg, "command-r-plus")->provider->name, "cohere");
        CHECK_STR(pd_config_model(cfg, "command-r")->provider->api_key, "co-secret");
        CHECK(pd_config_provider(cfg, "ollama")->kind == PD_KIND_OLLAMA);
        CHECK_STR(pd_config_provider(cfg, "ollama")->base_url, "http://127.0.0.1:11500");
        CHECK(pd_config_provider(cfg, "ollama")->api_key == NULL);
    }
    CHECK(strstr(summary, "found OPENAI_BASE_URL") != NULL);
    CHECK(strstr(summary, "found ANTHROPIC_API_KEY") != NULL);
    CHECK(strstr(summary, "found CO_API_KEY") != NULL);
    CHECK(strstr(summary, "found OLLAMA_HOST") != NULL && strstr(summary, "no models") != NULL);
    CHECK(strstr(summary, "secret") == NULL);
    pd_config_free(cfg);

    /* a bad base URL is ignored and said so; a NULL summary is allowed */
    setenv("OPENAI_BASE_URL", "localhost:8000", 1);
    summary[0] = '\0';
    cfg = pd_config_from_env(summary, sizeof summary);
    CHECK(cfg && strcmp(cfg->providers[0].base_url, "https://api.openai.com/v1") == 0);
    CHECK(strstr(summary, "OPENAI_BASE_URL ignored") != NULL);
    pd_config_free(cfg);
    cfg = pd_config_from_env(NULL, 0);
    CHECK(cfg && cfg->n_providers == 4);
    pd_config_free(cfg);

    /* a short summary buffer stays terminated */
    char tiny[16] = "";
    cfg = pd_config_from_env(tiny, sizeof tiny);
    CHECK(cfg != NULL && strlen(tiny) < sizeof tiny);
    pd_config_free(cfg);
    clear_env();
}

static void lookups(void)
{
    clear_env();
    pd_config *cfg = load("providers:\n"
                          "  - {name: p1, kind: openai}\n"
                          "  - {name: p2, kind: cohere}\n"
                          "models:\n"
                          "  - {name: a, provider: p1, upstream_model: real-a}\n"
                          "  - {name: b, provider: p2}\n");
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    CHECK(pd_config_model(cfg, "a") == &cfg->models[0]);
    CHECK(pd_config_model(cfg, "b") == &cfg->models[1]);
    CHECK_STR(pd_config_model(cfg, "a")->upstream_model, "real-a");
    CHECK(pd_config_model(cfg, "b")->provider == pd_config_provider(cfg, "p2"));
    CHECK(pd_config_model(cfg, "c") == NULL);
    CHECK(pd_config_model(cfg, NULL) == NULL);
    CHECK(pd_config_model(NULL, "a") == NULL);
    CHECK(pd_config_provider(cfg, "p1") == &cfg->providers[0]);
    CHECK(pd_config_provider(cfg, "p3") == NULL);
    pd_config_free(cfg);
    pd_config_free(NULL);

    CHECK_STR(pd_provider_kind_name(PD_KIND_OPENAI), "openai");
    CHECK_STR(pd_provider_kind_name(PD_KIND_ANTHROPIC), "anthropic");
    CHECK_STR(pd_provider_kind_name(PD_KIND_COHERE), "cohere");
    CHECK_STR(pd_provider_kind_name(PD_KIND_OLLAMA), "ollama");
    CHECK_STR(pd_provider_kind_name(PD_KIND_LLAMA), "llama");
    CHECK_STR(pd_provider_kind_name((pd_provider_kind)99), "unknown");
}

/* health_check: on by default for local HTTP servers only, path per kind, explicit mistakes. */
static void health_checks(void)
{
    clear_env();
    pd_config *cfg =
        load("providers:\n"
             "  - {name: ls, kind: openai, base_url: \"http://127.0.0.1:8081/v1\", local: true}\n"
             "  - {name: ol, kind: ollama, local: true,\n"
             "     health_check: {interval_ms: 2s, timeout_ms: 300ms}}\n"
             "  - {name: cloud, kind: openai}\n"
             "  - {name: off, kind: openai, local: true, health_check: {enabled: false}}\n"
             "  - {name: cloud2, kind: anthropic, health_check: {enabled: false}}\n"
             "  - {name: vllm, kind: openai, local: true, health_check: {path: /ping}}\n");
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    const pd_health_check_cfg *h = &cfg->providers[0].health;
    CHECK(h->enabled == 1 && h->interval_ms == 5000 && h->timeout_ms == 1000);
    CHECK_STR(h->path, "/health");
    h = &cfg->providers[1].health;
    CHECK(h->enabled == 1 && h->interval_ms == 2000 && h->timeout_ms == 300);
    CHECK_STR(h->path, "/");
    CHECK(cfg->providers[2].health.enabled == 0); /* cloud: never probed */
    CHECK(cfg->providers[3].health.enabled == 0);
    CHECK(cfg->providers[4].health.enabled == 0);
    CHECK_STR(cfg->providers[5].health.path, "/ping");
    pd_config_free(cfg);

    expect_err("providers:\n"
               "  - {name: c, kind: openai,\n"
               "     health_check: {interval_ms: 1s}}\n",
               "t.yaml:3: providers[0].health_check: only providers with local: true of kind "
               "openai or ollama are probed (say enabled: false, or remove it)");
    expect_err(
        "providers:\n"
        "  - {name: c, kind: openai, local: true, health_check: {path: health}}\n",
        "t.yaml:2: providers[0].health_check: path must start with / and have no space (it is "
        "taken from the base_url's scheme://host:port), not \"health\"");
    expect_err(
        "providers:\n"
        "  - {name: c, kind: openai, local: true, health_check: {interval_ms: 10ms}}\n",
        "t.yaml:2: providers[0].health_check.interval_ms: 10ms is out of range (100ms .. 1h)");
}

static void from_file(void)
{
    clear_env();
    char path[] = "/tmp/pd_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    const char *yaml = "listen: 127.0.0.1:7000\n"
                       "providers:\n"
                       "  - name: local\n"
                       "    kind: openai\n"
                       "    base_url: http://127.0.0.1:8080/v1\n"
                       "models:\n"
                       "  - name: tiny\n"
                       "    provider: lcal\n";
    CHECK(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
    close(fd);
    pd_config *cfg = pd_config_load(path, err, sizeof err);
    CHECK(cfg == NULL);
    char want[256];
    snprintf(want, sizeof want, "%s:8: models[0].provider: no provider named \"lcal\"", path);
    CHECK_STR(err, want);

    FILE *f = fopen(path, "w");
    fputs("listen: 127.0.0.1:7000\n", f);
    fclose(f);
    cfg = pd_config_load(path, err, sizeof err);
    CHECK(cfg && cfg->listen_port == 7000);
    CHECK(cfg && strcmp(cfg->path, path) == 0);
    pd_config_free(cfg);

    f = fopen(path, "w");
    for (int i = 0; i < 70000; i++)
        fputs("# padding\n", f); /* 700 KB of comments: fine */
    fclose(f);
    cfg = pd_config_load(path, err, sizeof err);
    CHECK(cfg == NULL);
    snprintf(want, sizeof want, "%s: empty configuration", path);
    CHECK_STR(err, want);
    f = fopen(path, "a");
    for (int i = 0; i < 40000; i++)
        fputs("# padding\n", f); /* now over 1 MiB */
    fclose(f);
    cfg = pd_config_load(path, err, sizeof err);
    CHECK(cfg == NULL);
    snprintf(want, sizeof want, "%s: larger than 1 MiB", path);
    CHECK_STR(err, want);
    unlink(path);

    cfg = pd_config_load(path, err, sizeof err);
    CHECK(cfg == NULL);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    CHECK_STR(err, want);
    cfg = pd_config_load("/tmp", err, sizeof err);
    CHECK(cfg == NULL);
    CHECK(strncmp(err, "/tmp: cannot read", 17) == 0);
}

/* The shipped example must keep loading (run from the repository root, as `make unit` does). */
static void example_file_loads(void)
{
    clear_env();
    setenv("PENDULUM_KEY", "gw-key", 1);
    setenv("OPENAI_API_KEY", "sk-x", 1);
    pd_config *cfg = pd_config_load("examples/pendulum.yaml", err, sizeof err);
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(cfg->n_api_keys == 1 && strcmp(cfg->api_keys[0], "gw-key") == 0);
    CHECK_STR(pd_config_provider(cfg, "openai")->api_key, "sk-x");
    CHECK(pd_config_provider(cfg, "local")->api_key == NULL);
    CHECK(pd_config_provider(cfg, "local")->timeouts.ttfb_ms == 600000);
    CHECK_STR(pd_config_model(cfg, "fast")->upstream_model, "gpt-4o-mini");
    CHECK(cfg->limits.max_body_bytes == 16u << 20 && cfg->timeouts.total_ms == 600000);
    pd_config_free(cfg);
    clear_env();
}

/* `breaker:` (the circuit breakers of every target): defaults, units, bounds. */
static void breaker_section(void)
{
    pd_config *cfg = load("providers: []\n");
    CHECK(cfg && cfg->breaker_failures == 5 && cfg->breaker_window_ms == 30000 &&
          cfg->breaker_cooldown_ms == 30000);
    pd_config_free(cfg);
    cfg = load("breaker: { failures: 2, window_ms: 10s, cooldown_ms: 750 }\n");
    CHECK(cfg && cfg->breaker_failures == 2 && cfg->breaker_window_ms == 10000 &&
          cfg->breaker_cooldown_ms == 750);
    pd_config_free(cfg);
    cfg = load("breaker: { failures: 0 }\n");
    CHECK(cfg == NULL && strstr(err, "breaker.failures"));
    pd_config_free(cfg);
    cfg = load("breaker: { cooldown: 5 }\n");
    CHECK(cfg == NULL && strstr(err, "cooldown"));
    pd_config_free(cfg);
}

int main(void)
{
    TEST_RUN(example_shape_loads);
    TEST_RUN(defaults);
    TEST_RUN(every_key);
    TEST_RUN(listen_forms);
    TEST_RUN(size_and_duration_suffixes);
    TEST_RUN(key_errors);
    TEST_RUN(validation_errors);
    TEST_RUN(type_errors);
    TEST_RUN(document_errors);
    TEST_RUN(env_expansion);
    TEST_RUN(provider_defaults);
    TEST_RUN(yaml_anchors);
    TEST_RUN(from_env);
    TEST_RUN(lookups);
    TEST_RUN(health_checks);
    TEST_RUN(from_file);
    TEST_RUN(example_file_loads);
    TEST_RUN(breaker_section);
    return TEST_DONE();
}
