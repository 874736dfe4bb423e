/* health.h: active health checks of local backends.
 *
 * What is checked. A provider with `local: true` of kind openai (llama-server, vLLM, any
 * OpenAI-compatible server on the operator's machines) or ollama gets a periodic
 * `GET scheme://host:port<path>` (config.h pd_health_check_cfg: /health for openai, / for
 * Ollama, which answers "Ollama is running"). Any 2xx within timeout_ms is a success; anything
 * else (a status, a refused connection, a timeout) is a failure. PD_HEALTH_FALL (2) failures in
 * a row mark the provider down; PD_HEALTH_RISE (1) success marks it up again. Every model of the
 * provider (router target) shares its state. A provider starts up: the first probe goes out at
 * once, so a dead backend is found within about two intervals of start-up.
 * Targets of the embedded engine (kind llama) are not probed: they are up when their engine is
 * loaded (PD_ENGINE_READY), read at each query. Cloud providers are never probed (their circuit
 * breakers and fallback handle outages): their targets are PD_HEALTH_UNCHECKED.
 *
 * Where it runs: one place per process, not per worker, so a backend sees one probe per interval
 * however many workers there are and every worker sees the same verdict at once. pd_health_start
 * starts one thread with its own libevent loop and its own upstream client (client.h), one
 * persistent timer per probed provider; it starts no thread when nothing is probed. A tick whose
 * previous probe is still out is skipped. The verdicts are relaxed atomics written only by that
 * thread; any thread reads them without a lock.
 *
 * Ownership: pd_health_start copies what it needs except cfg and engines, which must outlive the
 * pd_health (the server's config and engine array do). pd_health_stop(NULL) is a no-op. */
#ifndef PD_UPSTREAM_HEALTH_H
#define PD_UPSTREAM_HEALTH_H

#include <stddef.h>

#include "config/config.h"
#include "core/result.h"
#include "engine/engine.h"

#define PD_HEALTH_FALL 2 /* failed probes in a row that mark a target down */
#define PD_HEALTH_RISE 1 /* successful probes that mark it up again */

typedef enum pd_health_state {
    PD_HEALTH_UNCHECKED = -1, /* no active check (cloud provider, or health_check off) */
    PD_HEALTH_DOWN = 0,
    PD_HEALTH_UP = 1
} pd_health_state;

typedef struct pd_health pd_health;

/* Sets up the checks of cfg's providers (engines: per provider index, the embedded engine of a
   kind llama provider or NULL; may be NULL) and starts the probing thread when a provider is
   probed. PD_OK with *out set; PD_ERR_IO with a message in err when the thread or its loop
   cannot be created (nothing is left running then). Call after evthread_use_pthreads. */
pd_result pd_health_start(const pd_config *cfg, pd_engine *const *engines, pd_health **out,
                          char *err, size_t errlen);
/* Stops the thread (a probe in flight is cancelled), joins it and frees everything. */
void pd_health_stop(pd_health *h);

/* The state of target (router index = cfg->models index). Any thread. NULL h or an index out of
   range: PD_HEALTH_UNCHECKED. */
pd_health_state pd_health_target(const pd_health *h, size_t target);

#endif
