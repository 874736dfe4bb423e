/* from_config.h: builds the router (router.h) from the loaded configuration: every configured
 * model is a target (its provider's compliance attributes; the embedded engine counts as
 * local), every `routes:` entry a route. Target index i (pd_router_target_index, the per-target
 * arrays of pd_route_ctx) is cfg->models[i]: callers that hold a model may index by its place. */
#ifndef PD_ROUTER_FROM_CONFIG_H
#define PD_ROUTER_FROM_CONFIG_H

#include "config/config.h"
#include "router/router.h"

/* PD_ERR_INVALID with "FILE:LINE: routes[i]: ..." in err when a route is wrong. The router
 * copies what it needs: cfg may be freed first. */
pd_result pd_router_from_config(const pd_config *cfg, pd_router **out, char *err, size_t errlen);

/* The circuit breakers' parameters from `breaker:` (pd_breaker_default_params for a config
   that has none, e.g. one built by hand). */
pd_breaker_params pd_breaker_params_from_config(const pd_config *cfg);

/* `pendulum route --config FILE --explain < request.json` (router/cli.c); argv[0] is "route". */
int pd_route_cli(int argc, char **argv);

#endif
