/* relay.h: one client request served by one upstream transfer.
 *
 * Design (the hot path of the gateway):
 * - The upstream's answer is not buffered whole when it streams: each piece curl hands over goes
 *   through the SSE parser, each event through the provider's translation into one reused output
 *   buffer, and everything one read produced goes to the client in one write. No allocation per
 *   event beyond the JSON check, no lock, no log line per chunk.
 * - The client's reply starts only when the upstream's head is known, so an upstream error still
 *   reaches the client with its own status and body (OpenAI shape), Retry-After included.
 * - A stream that breaks (reset, timeout, idle gap, malformed event, upstream error event, an end
 *   without [DONE]) ends with an error event and never with data: [DONE]: it must not look
 *   complete.
 * - When the client goes away, the upstream transfer is aborted at once (the provider stops
 *   generating and billing), and the record is logged with status 499.
 * - Resilience (docs/routing.md): retries of the same target with backoff (a timer, never a
 *   blocking wait), the route's attempt budget and deadline, no request to an open circuit while
 *   a closed one remains; a stream broken after part of the answer went out is continued by the
 *   next candidate from the text sent so far.
 * - Judged answers: an attempt under a confidence gate, or the local racer of a speculative
 *   route, is held back (head and bytes) until relay/quality.h judges it; the cloud racer is a
 *   second call ("shadow") whose answer is held until it is handed over or dropped.
 * Everything runs on the worker's loop thread. */
#ifndef PD_RELAY_RELAY_H
#define PD_RELAY_RELAY_H

#include "canon/chat.h"
#include "canon/embed.h"
#include "config/config.h"
#include "ingress/ingress.h"
#include "router/router.h"

/* Serves ctx's request by the router's plan: the first candidate (and, for a speculative route,
 * the second at once), then the next ones while an attempt fails and the route's triggers allow
 * (fallback, retry, continuation of a broken stream).
 * Takes ownership of plan (heap) and creq. The client is answered exactly once, now (an error)
 * or when an upstream has answered. */
void pd_relay_chat(pd_ingress_ctx *ctx, pd_route_plan *plan, pd_chat_request *creq);
/* The same for an embeddings request (answered in OpenAI's embeddings shape). */
void pd_relay_embed(pd_ingress_ctx *ctx, const pd_model_cfg *m, pd_embed_request *ereq);

#endif
