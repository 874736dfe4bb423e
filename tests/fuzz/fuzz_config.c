/* fuzz_config: arbitrary bytes as a config file. Loading must never crash, leak or hang, and
 * its result must be coherent: a failure always says why, a success has every model resolved
 * to one of its own providers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* so ${A}, ${EMPTY} and the per-kind key defaults take their set paths too */
    setenv("A", "value-a", 1);
    setenv("EMPTY", "", 1);
    setenv("OPENAI_API_KEY", "sk-fuzz", 1);
    setenv("OLLAMA_HOST", "fuzzhost:1", 1);
    unsetenv("UNSET");
    return 0;
}

static void check(const pd_config *cfg)
{
    if (!cfg->listen_host)
        __builtin_trap();
    for (size_t i = 0; i < cfg->n_models; i++) {
        const pd_model_cfg *m = &cfg->models[i];
        if (!m->name || !m->upstream_model || m->provider < cfg->providers ||
            m->provider >= cfg->providers + cfg->n_providers)
            __builtin_trap();
        if (pd_config_model(cfg, m->name) != m)
            __builtin_trap(); /* names are unique, so the lookup finds this one */
    }
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const pd_provider_cfg *p = &cfg->providers[i];
        if (!p->name || pd_config_provider(cfg, p->name) != p)
            __builtin_trap();
    }
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        if (!cfg->api_keys[i] || !cfg->api_keys[i][0])
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    pd_config *cfg = pd_config_load_string((const char *)data, size, "fuzz.yaml", err, sizeof err);
    if (cfg)
        check(cfg);
    else if (err[0] == '\0')
        __builtin_trap();
    pd_config_free(cfg);
    return 0;
}
