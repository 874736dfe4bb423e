/* redact.h: the privacy route's `redact` action applied to a canonical request and its answer.
 *
 * Before a cloud target sees the request, every text it carries (message parts, names, refusals,
 * reasoning, tool-call arguments; tool results are messages) has each PII value replaced by a
 * typed placeholder (<EMAIL_1>) kept in the call's vault; the answer gets the originals back:
 * whole responses here, streams through pd_pii_restorer in the relay (a placeholder may be split
 * across chunks). Tool definitions and binary parts are not scanned (docs/routing.md). */
#ifndef PD_RELAY_REDACT_H
#define PD_RELAY_REDACT_H

#include "canon/chat.h"
#include "pii/pii.h"

/* In place. On error the request may be partly redacted: the caller must not send it. */
pd_result pd_redact_request(pd_pii_scanner *s, pd_pii_vault *v, pd_chat_request *req);
/* In place: every text of every choice, tool-call arguments included. */
pd_result pd_restore_response(const pd_pii_vault *v, pd_chat_response *r);

#endif
