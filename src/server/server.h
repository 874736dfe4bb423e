/* server.h: the gateway process: workers, signals, graceful shutdown. */
#ifndef PD_SERVER_SERVER_H
#define PD_SERVER_SERVER_H

#include "config/config.h"

/* Runs until SIGTERM or SIGINT. Then it stops accepting, lets in-flight requests (streams
 * included) finish for up to limits.shutdown_grace_ms, cuts what remains, and returns 0.
 * Returns 1 when the server cannot start (the reason is printed): among others when the port is
 * taken. A listen port of 0 is replaced in cfg by the port picked. */
int pd_server_run(pd_config *cfg);

#endif
