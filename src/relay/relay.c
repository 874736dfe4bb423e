/* relay.c: see relay.h for the design. */
#include "relay/relay.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "econ/cost.h"
#include "econ/prices.h"
#include "engine/engine.h"
#include "proto/embed.h"
#include "proto/openai.h"
#include "providers/provider.h"
#include "relay/redact.h"

typedef enum call_state {
    WAIT_HEAD, /* request sent, no response head yet */
    STREAM,    /* relaying an event stream; the client's 200 head is sent */
    BODY,      /* collecting a whole body (success or error) */
} call_state;

typedef struct pd_call {
    pd_ingress_ctx ctx; /* ctx.req is NULL once the client is gone */
    pd_conn *conn;
    const pd_model_cfg *model;
    const pd_provider_ops *ops;
    pd_chat_request creq;
    pd_route_plan *plan;       /* owned; NULL for embeddings */
    size_t cand;               /* the plan's candidate being tried */
    pd_pii_vault *vault;       /* privacy redact: the placeholders' originals; NULL otherwise */
    pd_result redact_rc;
    pd_pii_restorer restore_text, restore_args; /* stream restore (placeholders split anywhere) */
    pd_embed_request ereq;     /* embeddings calls (is_embed) */
    int is_embed;
    const pd_dialect *dialect; /* the client's protocol */
    int passthrough;           /* client and upstream speak the same dialect: relay verbatim */
    void *dec, *enc;           /* translation path: upstream decoder, client encoder */
    pd_transfer *xfer;
    pd_engine_job *job;        /* kind llama: the embedded engine's job instead of a transfer */
    struct event *engine_ev;   /* activated by the engine's inference thread (its wake-up) */
    pd_chat_response eresp;    /* kind llama, whole answers: built from the events */
    pd_api_error engine_err;   /* an error the engine reported before any output */
    int engine_failed;
    call_state state;
    pd_upstream_head head;
    pd_sse_parser sse;
    pd_buf body;             /* a whole upstream body, capped at limits.max_upstream_bytes */
    pd_buf out;              /* client bytes produced by one upstream read */
    struct evbuffer *chunk;
    pd_chat_usage usage;
    int stream_done;         /* the upstream's end marker was relayed */
    int stream_broken;       /* an error event was sent; nothing more may follow */
    int status;              /* what the client got */
    uint64_t t_upstream_us, t_first_byte_us;
    uint64_t bytes_in, bytes_out;
    double upstream_ms;
    uint64_t t_first_out_us;       /* the first answer bytes went to the client */
    pd_upstream_timing timing;     /* curl's, of the upstream transfer */
    int attempts;
    double cost_usd;               /* < 0: unknown */
    char cost[PD_COST_HEADER_MAX]; /* x-pendulum-cost-usd: dollars, or "unknown" */
    char error[200];
} pd_call;

/* ---- ending a call ----------------------------------------------------------------------- */

/* The request's cost from the usage the upstream reported, priced by the upstream's model name
 * (then the client's); a provider with a local cost model (`cost:`) charges its amortised
 * hardware price per request. Unknown price or usage stays "unknown", never $0. */
static void price_call(pd_call *c)
{
    pd_price price;
    pd_cost cost;
    const pd_provider_cfg *p = c->model->provider;
    if (p->usd_per_hour >= 0 && p->requests_per_hour > 0 && c->attempts && c->status < 400) {
        pd_local_cost lc;
        pd_local_cost_default(&lc);
        lc.hardware_usd_per_hour = p->usd_per_hour;
        lc.requests_per_hour = p->requests_per_hour;
        pd_cost_local(&lc, &cost);
        c->cost_usd = cost.known ? cost.usd : -1;
        if (pd_cost_header(&cost, c->cost, sizeof(c->cost)) != PD_OK)
            snprintf(c->cost, sizeof(c->cost), "unknown");
        return;
    }
    const pd_prices *table = c->ctx.w->prices; /* NULL: the built-in table */
    int priced = pd_prices_lookup(table, c->model->upstream_model, &price) == PD_OK ||
                 pd_prices_lookup(table, c->model->name, &price) == PD_OK;
    pd_cost_compute(priced ? &price : NULL, &c->usage, &cost);
    c->cost_usd = cost.known ? cost.usd : -1;
    if (pd_cost_header(&cost, c->cost, sizeof(c->cost)) != PD_OK)
        snprintf(c->cost, sizeof(c->cost), "unknown");
}

/* The ledger record (queued for the writer thread, never waited on) and the metrics. */
static void record_call(pd_call *c, uint64_t now)
{
    pd_worker *w = c->ctx.w;
    const char *name = c->model->name, *provider = c->model->provider->name;
    const char *route = c->plan ? c->plan->route : name;
    if (w->ledger) {
        pd_ledger_record r;
        pd_ledger_record_init(&r);
        r.id = c->ctx.id;
        r.ts_ms = (int64_t)(pd_wall_ms() - (now - c->ctx.t_start_us) / 1000);
        r.route = route;
        r.target = name;
        r.provider = provider;
        r.model = name;
        r.upstream_model = c->model->upstream_model;
        r.status = c->status;
        r.stream = c->creq.stream;
        r.attempts = c->attempts;
        r.prompt_tokens = c->usage.prompt_tokens;
        r.completion_tokens = c->usage.completion_tokens;
        r.cached_tokens = c->usage.cached_tokens;
        r.reasoning_tokens = c->usage.reasoning_tokens;
        r.cost_usd = c->cost_usd;
        r.error = c->error[0] ? c->error : NULL;
        pd_ledger_times t = {
            .start_us = c->ctx.t_start_us, .first_token_us = c->t_first_out_us, .end_us = now,
            .namelookup_us = c->timing.dns_us, .connect_us = c->timing.connect_us,
            .appconnect_us = c->timing.tls_us, .starttransfer_us = c->timing.ttfb_us,
            .upstream_us = c->timing.total_us,
        };
        pd_ledger_record_set_times(&r, &t);
        pd_ledger_submit(w->ledger, &r); /* a full queue drops and counts; never blocks */
    }
    pd_metrics_request m;
    pd_metrics_request_init(&m);
    m.route = route;
    m.target = name;
    m.status = c->status;
    m.prompt_tokens = c->usage.prompt_tokens;
    m.completion_tokens = c->usage.completion_tokens;
    m.cached_tokens = c->usage.cached_tokens;
    m.reasoning_tokens = c->usage.reasoning_tokens;
    m.billable = c->attempts > 0 && c->status < 500;
    m.cost_usd = c->cost_usd;
    m.total_s = (double)(now - c->ctx.t_start_us) / 1e6;
    m.ttft_s = c->t_first_out_us ? (double)(c->t_first_out_us - c->ctx.t_start_us) / 1e6 : -1;
    m.overhead_s = c->attempts ? m.total_s - (double)c->timing.total_us / 1e6 : -1;
    pd_metrics_observe_request(w->shard, &m);
}

static void log_call(pd_call *c)
{
    uint64_t now = pd_now_us();
    pd_request_log r = {
        .id = c->ctx.id, .method = c->ctx.method, .path = c->ctx.path,
        .model = c->model->name, .provider = c->model->provider->name,
        .status = c->status, .stream = c->creq.stream,
        .ttfb_ms = c->t_first_byte_us ? (double)(c->t_first_byte_us - c->t_upstream_us) / 1000.0 : -1,
        .upstream_ms = c->upstream_ms,
        .total_ms = (double)(now - c->ctx.t_start_us) / 1000.0,
        .bytes_in = c->bytes_in, .bytes_out = c->bytes_out,
        .prompt_tokens = c->usage.prompt_tokens, .completion_tokens = c->usage.completion_tokens,
        .error = c->error[0] ? c->error : NULL, .cost_usd = c->cost,
    };
    pd_log_request(c->ctx.w->log_fd, &r);
}

static void free_call(pd_call *c)
{
    if (!c->cost[0])
        price_call(c);
    log_call(c);
    record_call(c, pd_now_us());
    pd_worker_call_finished(c->ctx.w);
    pd_engine_job_free(c->job); /* cancels a running job; no wake-up after it returns */
    if (c->engine_ev)
        event_free(c->engine_ev);
    pd_chat_response_free(&c->eresp);
    pd_chat_request_free(&c->creq);
    pd_embed_request_free(&c->ereq);
    free(c->plan);
    pd_pii_vault_free(c->vault);
    if (c->dec)
        c->ops->decoder_free(c->dec);
    if (c->enc)
        c->dialect->encoder_free(c->enc);
    pd_sse_free(&c->sse);
    pd_buf_free(&c->body);
    pd_buf_free(&c->out);
    if (c->chunk)
        evbuffer_free(c->chunk);
    free(c);
}

/* The client's reply is complete (handed to evhttp): release the connection for the next one. */
static void release_conn(pd_call *c)
{
    if (c->conn)
        pd_conn_end(c->conn);
    c->conn = NULL;
}

/* Explainability: which route and target served the request, after how many attempts, why. */
static void routing_headers(pd_call *c)
{
    if (!c->plan)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->ctx.req);
    char n[16], reason[sizeof(c->plan->reason)];
    snprintf(n, sizeof(n), "%d", c->attempts);
    size_t i = 0;
    for (const char *r = c->plan->reason; *r && i + 1 < sizeof(reason); r++)
        reason[i++] = (*r >= 0x20 && *r < 0x7f) ? *r : '?'; /* a header value is ASCII */
    reason[i] = '\0';
    evhttp_add_header(h, "x-pendulum-route", c->plan->route);
    evhttp_add_header(h, "x-pendulum-target", c->model->name);
    evhttp_add_header(h, "x-pendulum-attempts", n);
    evhttp_add_header(h, "x-pendulum-reason", reason);
}

static void reply_now(pd_call *c, int status, const char *body, size_t len)
{
    release_conn(c);
    pd_reply_headers(&c->ctx, "application/json");
    routing_headers(c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->ctx.req);
    if (c->head.retry_after[0])
        evhttp_add_header(h, "Retry-After", c->head.retry_after);
    if (c->head.retry_after_ms[0])
        evhttp_add_header(h, "retry-after-ms", c->head.retry_after_ms);
    evbuffer_add(c->chunk, body, len);
    evhttp_send_reply(c->ctx.req, status, NULL, c->chunk);
    if (!c->t_first_out_us)
        c->t_first_out_us = pd_now_us();
    c->status = status;
    c->bytes_out += len;
}

static void reply_api_error(pd_call *c, const pd_api_error *e)
{
    if (!c->error[0])
        snprintf(c->error, sizeof(c->error), "%.*s", (int)sizeof(c->error) - 1, e->message);
    pd_buf_reset(&c->out);
    if (c->dialect->error_body(e, &c->out) == PD_OK)
        reply_now(c, e->status, c->out.data, c->out.len);
    else
        reply_now(c, e->status, "{}", 2);
}

static void reply_error(pd_call *c, int status, const char *code, const char *fmt, const char *arg)
{
    pd_api_error e;
    pd_openai_error_set(&e, status, NULL, code, NULL, fmt, arg);
    reply_api_error(c, &e);
}

/* ---- streaming --------------------------------------------------------------------------- */

static void flush_out(pd_call *c)
{
    if (!c->out.len)
        return;
    if (!c->t_first_out_us)
        c->t_first_out_us = pd_now_us();
    evbuffer_add(c->chunk, c->out.data, c->out.len);
    evhttp_send_reply_chunk(c->ctx.req, c->chunk);
    c->bytes_out += c->out.len;
    pd_buf_reset(&c->out);
}

/* Ends the stream as broken: an error event, and no end marker. */
static void break_stream(pd_call *c, const char *code, const char *why)
{
    if (c->stream_broken || c->stream_done)
        return;
    c->stream_broken = 1;
    snprintf(c->error, sizeof(c->error), "%s", why);
    pd_api_error e;
    pd_openai_error_set(&e, 502, NULL, code, NULL, "%s", why);
    c->dialect->encode_error(c->enc, &e, &c->out);
}

/* Pass-through path: one upstream SSE event. */
static int on_event(void *ud, const pd_sse_event *ev)
{
    pd_call *c = ud;
    if (c->stream_done || c->stream_broken)
        return 1;
    pd_stream_step step;
    if (c->ops->pass_event(&c->creq, ev, &c->out, &step, &c->usage) != PD_OK) {
        break_stream(c, "upstream_malformed_event", "the upstream sent a malformed stream event");
        return 1;
    }
    if (step == PD_STEP_DONE)
        c->stream_done = 1;
    if (step == PD_STEP_ERROR) {
        c->stream_broken = 1;
        snprintf(c->error, sizeof(c->error), "the upstream reported an error in the stream");
        return 1;
    }
    return 0;
}

static void note_usage(pd_call *c, const pd_chat_usage *u)
{
    c->usage = *u; /* cumulative counts: assign, never add */
}

/* Redacted calls: text and tool-argument fragments go through a restorer (a placeholder may be
 * split across fragments) and are written restored; a finish first flushes what is held back. */
static pd_result emit_restored(pd_call *c, const pd_chat_event *ev, pd_pii_restorer *r, int finish)
{
    pd_buf text;
    pd_buf_init(&text, 0);
    pd_result rc = finish ? pd_pii_restorer_finish(r, &text)
                          : pd_pii_restorer_feed(r, c->vault, ev->text, ev->text_len, &text);
    if (rc == PD_OK && text.len) {
        pd_chat_event out = *ev;
        out.text = text.data;
        out.text_len = text.len;
        rc = c->dialect->encode(c->enc, &out, &c->out);
    }
    pd_buf_free(&text);
    return rc;
}

static pd_result restore_event(pd_call *c, const pd_chat_event *ev)
{
    if (ev->kind == PD_EVENT_TEXT)
        return emit_restored(c, ev, &c->restore_text, 0);
    if (ev->kind == PD_EVENT_TOOL_ARGS)
        return emit_restored(c, ev, &c->restore_args, 0);
    if (ev->kind != PD_EVENT_FINISH && ev->kind != PD_EVENT_TOOL_START)
        return PD_OK;
    pd_chat_event held = *ev;
    held.kind = PD_EVENT_TEXT;
    pd_result rc = emit_restored(c, &held, &c->restore_text, 1);
    held.kind = PD_EVENT_TOOL_ARGS;
    if (!rc && ev->kind == PD_EVENT_FINISH)
        rc = emit_restored(c, &held, &c->restore_args, 1);
    return rc;
}

/* Translation path: one canonical event from the upstream's decoder. */
static int on_canonical(void *ud, const pd_chat_event *ev)
{
    pd_call *c = ud;
    if (c->stream_broken)
        return 1;
    if (ev->kind == PD_EVENT_USAGE)
        note_usage(c, &ev->usage);
    if (ev->kind == PD_EVENT_ERROR) {
        pd_api_error e;
        pd_openai_error_set(&e, ev->error_status ? ev->error_status : 502, ev->error_type,
                            ev->error_code, NULL, "%.*s", (int)ev->text_len, ev->text ? ev->text : "");
        c->dialect->encode_error(c->enc, &e, &c->out);
        c->stream_broken = 1;
        snprintf(c->error, sizeof(c->error), "the upstream reported an error in the stream");
        return 1;
    }
    if (c->vault && restore_event(c, ev) != PD_OK) {
        break_stream(c, "restore_failed", "the redacted answer could not be restored");
        return 1;
    }
    if (c->vault && (ev->kind == PD_EVENT_TEXT || ev->kind == PD_EVENT_TOOL_ARGS))
        return 0; /* written by restore_event */
    if (c->dialect->encode(c->enc, ev, &c->out) != PD_OK) {
        break_stream(c, "upstream_untranslatable_event",
                     "the upstream's stream cannot be expressed in the client's protocol");
        return 1;
    }
    return 0;
}

/* Bytes written to the client but not yet taken by it. A client that stops reading must not
 * make the gateway buffer an endless stream: past this, the stream is ended as broken. */
#define MAX_CLIENT_BACKLOG (8u << 20)

static size_t client_backlog(pd_call *c)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(c->ctx.req);
    return evcon ? evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(evcon))) : 0;
}

static int stream_body(pd_call *c, const char *data, size_t len)
{
    if (c->stream_done || c->stream_broken)
        return c->stream_broken; /* after the end marker the transfer finishes by itself */
    if (c->passthrough) {
        if (pd_sse_feed(&c->sse, data, len, on_event, c) == PD_ERR_TOO_LARGE)
            break_stream(c, "upstream_malformed_event", "an upstream stream event exceeded the size limit");
    } else {
        pd_result rc = c->ops->decode(c->dec, data, len, on_canonical, c);
        if (rc == PD_ERR_INVALID)
            break_stream(c, "upstream_malformed_event", "the upstream sent a malformed stream event");
        if (!c->stream_broken && c->ops->decoder_done(c->dec) && !c->stream_done) {
            c->dialect->encode_end(c->enc, &c->out);
            c->stream_done = 1;
        }
    }
    flush_out(c);
    if (!c->stream_broken && client_backlog(c) > MAX_CLIENT_BACKLOG) {
        break_stream(c, "client_too_slow", "the client stopped reading the stream");
        flush_out(c);
    }
    return c->stream_broken;
}

static void start_stream(pd_call *c)
{
    c->state = STREAM;
    c->status = 200;
    pd_reply_headers(&c->ctx, "text/event-stream");
    routing_headers(c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->ctx.req);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no"); /* tell proxies in front not to buffer */
    evhttp_send_reply_start(c->ctx.req, 200, NULL);
}

static void end_stream(pd_call *c, pd_result rc, const char *msg)
{
    if (!c->passthrough && !c->stream_done && !c->stream_broken && rc == PD_OK &&
        c->ops->decoder_done(c->dec)) {
        c->dialect->encode_end(c->enc, &c->out);
        c->stream_done = 1;
    }
    if (!c->stream_done && !c->stream_broken) {
        char why[200];
        if (rc == PD_OK)
            snprintf(why, sizeof(why), "the upstream stream ended without its end marker");
        else
            snprintf(why, sizeof(why), "the upstream stream broke: %s", msg);
        break_stream(c, rc == PD_ERR_TIMEOUT ? "upstream_timeout" : "upstream_stream_error", why);
    }
    flush_out(c);
    release_conn(c);
    evhttp_send_reply_end(c->ctx.req);
}

/* ---- whole bodies ------------------------------------------------------------------------ */

static pd_result translate_response(pd_call *c, const char *body, size_t len)
{
    pd_chat_response r;
    pd_chat_response_init(&r);
    pd_result rc = c->ops->parse_response(&c->creq, body, len, &r);
    if (rc == PD_OK) {
        /* Some upstreams name no id, model or time (Cohere, Ollama): the client still gets them. */
        if (!r.id)
            r.id = pd_xstrdup(c->ctx.id);
        if (!r.model)
            r.model = pd_xstrdup(c->creq.model);
        if (!r.created)
            r.created = (int64_t)time(NULL);
        if (c->vault)
            rc = pd_restore_response(c->vault, &r);
        note_usage(c, &r.usage);
        if (rc == PD_OK)
            rc = c->dialect->write_response(&r, &c->out);
    }
    pd_chat_response_free(&r);
    return rc;
}

static pd_result translate_embeddings(pd_call *c, const char *body, size_t len)
{
    pd_embed_response r;
    pd_embed_response_init(&r);
    pd_result rc = c->ops->parse_embed_response(body, len, &r);
    if (rc == PD_OK && r.n_vectors != c->ereq.n_inputs)
        rc = PD_ERR_INVALID; /* one vector per input, or the answer is wrong */
    if (rc == PD_OK) {
        c->usage.prompt_tokens = r.prompt_tokens;
        rc = pd_embed_write_openai_response(&r, c->ereq.encoding, c->ereq.model, &c->out);
    }
    pd_embed_response_free(&r);
    return rc;
}

static void end_body(pd_call *c)
{
    long st = c->head.status;
    const char *body = c->body.data ? c->body.data : "";
    pd_buf_reset(&c->out);
    if (st >= 200 && st < 300) {
        pd_result rc = c->is_embed      ? translate_embeddings(c, body, c->body.len)
                       : c->passthrough ? c->ops->pass_response(body, c->body.len, &c->out, &c->usage)
                                        : translate_response(c, body, c->body.len);
        if (rc != PD_OK) {
            reply_error(c, 502, "upstream_invalid_response", "%s", "the upstream returned a response that is not valid JSON");
            return;
        }
        price_call(c);
        evhttp_add_header(evhttp_request_get_output_headers(c->ctx.req), "x-pendulum-cost-usd", c->cost);
        reply_now(c, (int)st, c->out.data, c->out.len);
    } else if (st >= 400 && st < 600) {
        snprintf(c->error, sizeof(c->error), "upstream status %ld", st);
        if (c->passthrough) {
            c->ops->pass_error(st, body, c->body.len, &c->out);
            reply_now(c, (int)st, c->out.data, c->out.len);
        } else {
            pd_api_error e;
            c->ops->parse_error(st, body, c->body.len, &e);
            e.status = (int)st;
            reply_api_error(c, &e);
        }
    } else {
        char s[16];
        snprintf(s, sizeof(s), "%ld", st);
        reply_error(c, 502, "upstream_invalid_response", "the upstream answered with status %s", s);
    }
}

/* ---- upstream callbacks ------------------------------------------------------------------ */

static int is_event_stream(const char *content_type)
{
    return strncasecmp(content_type, "text/event-stream", 17) == 0;
}

static int is_stream_type(const char *content_type)
{
    return is_event_stream(content_type) ||
           strncasecmp(content_type, "application/x-ndjson", 20) == 0;
}

static void on_head(void *ud, const pd_upstream_head *head)
{
    pd_call *c = ud;
    c->head = *head;
    c->t_first_byte_us = pd_now_us();
    int ok = head->status >= 200 && head->status < 300;
    /* Pass-through needs SSE; a translating decoder knows its own framing (SSE or NDJSON). */
    if (ok && c->creq.stream && (c->passthrough ? is_event_stream(head->content_type)
                                                : is_stream_type(head->content_type)))
        start_stream(c);
    else
        c->state = BODY;
}

static int on_body(void *ud, const char *data, size_t len)
{
    pd_call *c = ud;
    c->bytes_in += len;
    if (c->state == STREAM)
        return stream_body(c, data, len);
    if (pd_buf_append(&c->body, data, len) != PD_OK) {
        snprintf(c->error, sizeof(c->error), "the upstream response exceeded %zu bytes", c->body.limit);
        return 1;
    }
    return 0;
}

static int start_attempt(pd_call *c, pd_api_error *e);

/* How this attempt failed, in the router's terms; PD_FALLBACK_NO when it did not (or when the
 * client already has part of the answer). */
static pd_fallback judge_attempt(pd_call *c, pd_result rc)
{
    const pd_route_candidate *cand = &c->plan->cand[c->cand];
    if (c->state == WAIT_HEAD && rc != PD_OK && rc != PD_ERR_CLOSED)
        return pd_route_should_fallback(cand->triggers, rc == PD_ERR_TIMEOUT ? PD_FAIL_TIMEOUT : PD_FAIL_CONNECT,
                                        0, NULL, NULL);
    if (c->state == BODY && rc == PD_OK && c->head.status >= 400) {
        pd_api_error e;
        c->ops->parse_error(c->head.status, c->body.data ? c->body.data : "", c->body.len, &e);
        return pd_route_should_fallback(cand->triggers, PD_FAIL_HTTP, (int)c->head.status,
                                        e.code ? e.code : e.type, e.message);
    }
    return PD_FALLBACK_NO;
}

static void reset_attempt(pd_call *c)
{
    memset(&c->head, 0, sizeof(c->head));
    pd_buf_reset(&c->body);
    pd_sse_reset(&c->sse);
    if (c->dec)
        c->ops->decoder_free(c->dec);
    c->dec = NULL;
    c->state = WAIT_HEAD;
    c->error[0] = '\0';
    c->t_first_byte_us = 0;
    pd_chat_usage_init(&c->usage);
}

/* Fallback: when the attempt failed before the client got anything and the route's triggers
 * say so, the next candidate gets the request. Returns 1 when a new attempt is under way. */
static int try_next(pd_call *c, pd_result rc)
{
    if (!c->plan)
        return 0;
    pd_fallback f = judge_attempt(c, rc);
    pd_breaker_params bp = pd_breaker_default_params();
    int target = c->plan->cand[c->cand].target;
    pd_breaker *b = target >= 0 && (size_t)target < c->ctx.w->n_targets ? &c->ctx.w->breakers[target] : NULL;
    if (b && f == PD_FALLBACK_NO && rc == PD_OK && c->head.status < 500)
        pd_breaker_success(b);
    if (f == PD_FALLBACK_NO)
        return 0;
    if (b)
        pd_breaker_failure(b, &bp, pd_now_us() / 1000);
    size_t next = pd_route_plan_next(c->plan, c->cand, f);
    if (next >= c->plan->n)
        return 0;
    reset_attempt(c);
    c->cand = next;
    pd_api_error e;
    return start_attempt(c, &e) == 0;
}

static void on_done(void *ud, pd_result rc, const char *msg, const pd_upstream_timing *tm)
{
    pd_call *c = ud;
    c->xfer = NULL;
    c->timing = *tm;
    c->upstream_ms = (double)tm->total_us / 1000.0;
    if (c->state != STREAM && try_next(c, rc))
        return;
    if (c->state == STREAM) {
        end_stream(c, rc, msg);
    } else if (rc == PD_OK && c->state == BODY) {
        end_body(c);
    } else if (c->state == BODY && c->error[0]) {
        reply_error(c, 502, "upstream_response_too_large", "%s", c->error);
    } else if (rc == PD_ERR_TIMEOUT) {
        reply_error(c, 504, "upstream_timeout", "upstream timed out: %s", msg);
    } else {
        reply_error(c, 502, "upstream_unreachable", "upstream request failed: %s", msg);
    }
    free_call(c);
}

/* The client went away (connection closed): stop the upstream now. */
static void on_client_gone(void *ud)
{
    pd_call *c = ud;
    pd_transfer_cancel(c->xfer);
    c->xfer = NULL;
    pd_engine_job_free(c->job); /* the engine frees the sequence at its next step */
    c->job = NULL;
    c->conn = NULL; /* being freed by evhttp */
    c->status = 499;
    snprintf(c->error, sizeof(c->error), "client disconnected");
    /* While streaming, evhttp detached the request from the dead connection and left it to us. */
    if (c->state == STREAM && !evhttp_request_get_connection(c->ctx.req))
        evhttp_send_reply_end(c->ctx.req); /* frees it */
    c->ctx.req = NULL;
    free_call(c);
}

static const pd_transfer_cbs transfer_cbs = {on_head, on_body, on_done};

/* ---- start ------------------------------------------------------------------------------- */

static pd_call *new_call(pd_ingress_ctx *ctx, const pd_model_cfg *m)
{
    pd_call *c = pd_xcalloc(1, sizeof(*c));
    c->ctx = *ctx;
    c->model = m;
    c->ops = pd_provider_ops_of(m->provider->kind);
    c->dialect = ctx->dialect;
    pd_chat_request_init(&c->creq);
    pd_embed_request_init(&c->ereq);
    pd_chat_response_init(&c->eresp);
    pd_chat_usage_init(&c->usage);
    c->cost_usd = -1;
    c->chunk = evbuffer_new();
    pd_sse_init(&c->sse, 0);
    pd_buf_init(&c->body, ctx->w->cfg->limits.max_upstream_bytes);
    pd_buf_init(&c->out, 0);
    c->conn = pd_worker_conn_of(ctx->w, ctx->req);
    pd_worker_call_started(ctx->w);
    if (!c->chunk) { /* a small internal allocation: the house rule is to abort */
        fprintf(stderr, "pendulum: out of memory (evbuffer)\n");
        abort();
    }
    return c;
}

/* Answers e now and ends the call. */
static void fail_call(pd_call *c, pd_api_error *e)
{
    if (!e->status)
        e->status = 500;
    reply_api_error(c, e);
    free_call(c);
}

static void start_transfer(pd_call *c, pd_transfer_req *treq)
{
    c->t_upstream_us = pd_now_us();
    c->attempts++;
    if (pd_upstream_start(c->ctx.w->upstream, treq, &transfer_cbs, c, &c->xfer) != PD_OK) {
        reply_error(c, 500, NULL, "%s", "cannot start the upstream request");
        free_call(c);
        return;
    }
    if (c->conn)
        pd_conn_begin(c->conn, c, on_client_gone);
}

/* ---- the embedded engine (kind llama) ------------------------------------------------------ *
 * No HTTP: the request goes to the engine's inference thread as a job; its events come back
 * through the job's queue, one wake-up (event_active on this worker's loop) per decode step, and
 * are written in the client's dialect like a translating upstream's. */

static void engine_wake(void *ud)
{
    event_active(ud, EV_READ, 0); /* thread-safe: evthread_use_pthreads */
}

static int on_engine_event(void *ud, const pd_engine_event *ev)
{
    pd_call *c = ud;
    const pd_chat_event *ce = &ev->chat;
    if (!c->t_first_byte_us)
        c->t_first_byte_us = pd_now_us();
    if (c->state == WAIT_HEAD) {
        if (ce->kind == PD_EVENT_ERROR) { /* nothing sent yet: the client gets a real status */
            pd_openai_error_set(&c->engine_err, ce->error_status ? ce->error_status : 500, ce->error_type,
                                ce->error_code, NULL, "%.*s", (int)ce->text_len, ce->text ? ce->text : "");
            c->engine_failed = 1;
            return 0;
        }
        if (c->creq.stream)
            start_stream(c);
        else
            c->state = BODY;
    }
    if (c->state == STREAM)
        return on_canonical(c, ce);
    if (ce->kind == PD_EVENT_USAGE)
        note_usage(c, &ce->usage);
    if (ce->kind == PD_EVENT_ERROR && !c->engine_failed) {
        pd_openai_error_set(&c->engine_err, 500, NULL, ce->error_code, NULL, "%.*s", (int)ce->text_len,
                            ce->text ? ce->text : "");
        c->engine_failed = 1;
    }
    return pd_engine_response_add(&c->eresp, ev) != PD_OK;
}

static void finish_engine(pd_call *c)
{
    if (c->state == STREAM) {
        if (!c->stream_broken && !c->stream_done) {
            c->dialect->encode_end(c->enc, &c->out);
            c->stream_done = 1;
        }
        flush_out(c);
        release_conn(c);
        evhttp_send_reply_end(c->ctx.req);
    } else if (c->engine_failed) {
        reply_api_error(c, &c->engine_err);
    } else {
        pd_chat_response *r = &c->eresp;
        if (!r->id)
            r->id = pd_xstrdup(c->ctx.id);
        if (!r->model)
            r->model = pd_xstrdup(c->creq.model);
        if (!r->created)
            r->created = (int64_t)time(NULL);
        note_usage(c, &r->usage);
        pd_buf_reset(&c->out);
        if (c->dialect->write_response(r, &c->out) != PD_OK) {
            reply_error(c, 500, NULL, "%s", "cannot write the answer");
        } else {
            price_call(c);
            evhttp_add_header(evhttp_request_get_output_headers(c->ctx.req), "x-pendulum-cost-usd", c->cost);
            reply_now(c, 200, c->out.data, c->out.len);
        }
    }
    free_call(c);
}

/* An embeddings job wakes once, when its vectors are ready. */
static void finish_engine_embed(pd_call *c)
{
    pd_embed_response r;
    pd_api_error e;
    pd_embed_response_init(&r);
    pd_result rc = pd_engine_job_embeddings(c->job, &r, &e);
    if (rc == PD_ERR_PARTIAL) {
        pd_embed_response_free(&r);
        return; /* not done yet: wait for the next wake-up */
    }
    if (rc != PD_OK) {
        reply_api_error(c, &e);
    } else {
        c->usage.prompt_tokens = r.prompt_tokens;
        pd_buf_reset(&c->out);
        if (pd_embed_write_openai_response(&r, c->ereq.encoding, c->ereq.model, &c->out) == PD_OK)
            reply_now(c, 200, c->out.data, c->out.len);
        else
            reply_error(c, 500, NULL, "%s", "cannot write the embeddings");
    }
    pd_embed_response_free(&r);
    free_call(c);
}

static void on_engine_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_call *c = arg;
    if (c->is_embed) {
        finish_engine_embed(c);
        return;
    }
    bool done = pd_engine_job_poll(c->job, on_engine_event, c);
    if (c->state == STREAM)
        flush_out(c);
    if (done || c->stream_broken)
        finish_engine(c);
}

static pd_engine *engine_of(pd_worker *w, const pd_model_cfg *m)
{
    return w->engines ? w->engines[m->provider - w->cfg->providers] : NULL;
}

static int start_engine(pd_call *c, const pd_model_cfg *m, pd_api_error *e)
{
    pd_worker *w = c->ctx.w;
    pd_engine *eng = engine_of(w, m);
    if (!eng) {
        pd_openai_error_set(e, 503, NULL, "engine_unavailable", NULL, "the embedded model of %s is not running",
                            m->provider->name);
        return -1;
    }
    c->model = m;
    c->ops = NULL;
    c->engine_ev = event_new(w->base, -1, 0, on_engine_wake, c);
    pd_engine_sink sink = {engine_wake, c->engine_ev};
    pd_result rc = !c->engine_ev ? PD_ERR_NOMEM
                   : c->is_embed ? pd_engine_embed(eng, &c->ereq, &sink, &c->job, e)
                                 : pd_engine_submit(eng, &c->creq, &sink, &c->job, e);
    if (rc != PD_OK) {
        if (c->engine_ev)
            event_free(c->engine_ev);
        c->engine_ev = NULL;
        return -1;
    }
    c->t_upstream_us = pd_now_us();
    c->attempts++;
    if (c->conn)
        pd_conn_begin(c->conn, c, on_client_gone);
    return 0;
}

/* Redacts the request in place, once per call (later candidates see the redacted text too). */
static pd_result redact_call(pd_call *c)
{
    if (c->vault)
        return c->redact_rc; /* a failed redaction stays failed: never send half-redacted text */
    c->vault = pd_pii_vault_new(0, 0);
    pd_pii_restorer_init(&c->restore_text);
    pd_pii_restorer_init(&c->restore_args);
    c->redact_rc = pd_redact_request(c->ctx.w->scanner, c->vault, &c->creq);
    return c->redact_rc;
}

/* Starts the request on the plan's candidate c->cand, or the first later one that can take it.
 * 0 when a transfer is under way; -1 with e filled when none could be started. */
static int start_attempt(pd_call *c, pd_api_error *e)
{
    pd_openai_error_set(e, 502, NULL, "no_target", NULL, "no target of the route could take the request");
    for (; c->cand < c->plan->n; c->cand++) {
        const pd_route_candidate *cand = &c->plan->cand[c->cand];
        const pd_model_cfg *m = pd_config_model(c->ctx.w->cfg, cand->model);
        if (!m || (cand->redact && redact_call(c) != PD_OK))
            continue; /* a request that cannot be redacted is never sent to that target */
        if (m->provider->kind == PD_KIND_LLAMA) {
            if (start_engine(c, m, e) == 0)
                return 0;
            continue;
        }
        c->model = m;
        c->ops = pd_provider_ops_of(m->provider->kind);
        if (!c->ops) {
            pd_openai_error_set(e, 501, NULL, "provider_not_supported", NULL,
                                "provider kind %s is not supported yet", pd_provider_kind_name(m->provider->kind));
            continue;
        }
        /* Redacted calls translate, so the answer can be restored event by event. */
        c->passthrough = c->ops->native == c->dialect && c->ops->pass_event && c->creq.raw && !c->vault;
        if (!c->passthrough)
            c->dec = c->ops->decoder_new(&c->creq);
        /* The client's original body (raw) is only for an upstream of the client's own dialect,
         * and never once the request has been redacted. */
        pd_chat_request view = c->creq;
        if (c->ops->native != c->dialect || c->vault)
            view.raw = NULL;
        pd_transfer_req treq = {0};
        if (c->ops->chat_request(m->provider, m, &view, &treq, e) != PD_OK) {
            if (c->dec)
                c->ops->decoder_free(c->dec);
            c->dec = NULL;
            continue; /* this upstream cannot honour the request; a later one may */
        }
        start_transfer(c, &treq);
        return 0;
    }
    return -1;
}

void pd_relay_chat(pd_ingress_ctx *ctx, pd_route_plan *plan, pd_chat_request *creq)
{
    const pd_model_cfg *first = pd_config_model(ctx->w->cfg, plan->cand[0].model);
    pd_call *c = new_call(ctx, first ? first : &ctx->w->cfg->models[0]);
    c->creq = *creq;
    c->plan = plan;
    c->enc = c->dialect->encoder_new(&c->creq, ctx->id, c->creq.model);
    pd_api_error e;
    if (start_attempt(c, &e) != 0)
        fail_call(c, &e);
}

void pd_relay_embed(pd_ingress_ctx *ctx, const pd_model_cfg *m, pd_embed_request *ereq)
{
    pd_call *c = new_call(ctx, m);
    pd_api_error e;
    c->ereq = *ereq;
    c->is_embed = 1;
    if (m->provider->kind == PD_KIND_LLAMA) {
        if (start_engine(c, m, &e) != 0)
            fail_call(c, &e);
        return;
    }
    if (!c->ops || !c->ops->embed_request) {
        pd_openai_error_set(&e, 400, NULL, "embeddings_not_supported", "model",
                            "model %s is served by provider kind %s, which has no embeddings", m->name,
                            pd_provider_kind_name(m->provider->kind));
        fail_call(c, &e);
        return;
    }
    pd_transfer_req treq = {0};
    if (c->ops->embed_request(m->provider, m, &c->ereq, &treq, &e) != PD_OK) {
        fail_call(c, &e);
        return;
    }
    start_transfer(c, &treq);
}
