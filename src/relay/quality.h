/* quality.h: is an answer good enough to keep?
 *
 * Two routing features judge an answer before the client sees it: the low_confidence trigger
 * of a fallback chain, and the local side of speculative execution. Both feed the answer in as
 * it comes (stream events, or a whole response) and ask for a verdict, either early (a stream,
 * after the first N tokens) or final (the answer is complete).
 *
 * What is judged, all of it cheap:
 * - confidence: the tokens' log-probabilities against the route's thresholds (mean and worst
 *   window; router/resilience.h). An upstream that returns no log-probabilities (Anthropic,
 *   Cohere) is not judged on them.
 * - an empty answer (no text and no tool call), when final;
 * - degenerate output: a unit of 1..32 bytes repeated at the end of the text, 4 times or more
 *   and over at least 64 bytes (a model stuck in a loop);
 * - a refusal: a refusal part, or text that opens with a stock refusal ("I'm sorry", "I cannot",
 *   "As an AI", ...);
 * - the finish reason, when final: content_filter fails; length fails unless the client set
 *   max_tokens (then a cut answer is what was asked for);
 * - valid JSON (an object) when response_format asks for JSON, when final.
 * Only choice 0 is judged. */
#ifndef PD_RELAY_QUALITY_H
#define PD_RELAY_QUALITY_H

#include <stdbool.h>
#include <stddef.h>

#include "canon/chat.h"
#include "core/buf.h"
#include "router/resilience.h"

typedef struct pd_quality {
    pd_confidence conf;
    pd_buf text;          /* choice 0's answer text so far (capped: longer text is not kept) */
    size_t tokens;        /* tokens seen: log-probability entries, or fragments without them */
    bool tool_calls;      /* the answer calls a tool */
    bool refused;         /* a refusal part */
    pd_chat_finish finish;
} pd_quality;

void pd_quality_init(pd_quality *q, uint32_t window);
void pd_quality_free(pd_quality *q);
/* Forgets the answer (a new attempt), keeping the window. */
void pd_quality_reset(pd_quality *q);

/* Adds one stream event (choice 0 only; TEXT with its logprobs, REFUSAL, TOOL_START, FINISH). */
void pd_quality_add_event(pd_quality *q, const pd_chat_event *ev);
/* Adds a whole answer's choice 0: its text, tool calls, refusal, finish and logprobs. */
void pd_quality_add_response(pd_quality *q, const pd_chat_response *r);

/* The verdict on what was added. final: the answer is complete. req: what the client asked
   (max_tokens, response_format). On failure why gets a short reason ("mean logprob -2.31 <
   -1.50", "empty answer", ...). */
bool pd_quality_passes(const pd_quality *q, const pd_route_resilience *res, bool final,
                       const pd_chat_request *req, char *why, size_t whylen);

#endif
