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
#include "relay/quality.h"
#include "relay/redact.h"
#include "router/from_config.h"

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
    /* Resilience (router/resilience.h). */
    struct event *retry_ev;        /* a retry of the same target waiting out its backoff */
    uint32_t cand_retries;         /* retries spent on the current candidate */
    int client_streaming;          /* the client's 200 head is out: later attempts continue it */
    int continuable;               /* a broken stream may be continued by a later candidate */
    int tool_started;              /* the client got a tool call: the answer cannot be continued */
    pd_buf sent;                   /* the answer text the client got so far (choice 0) */
    int has_prefix;                /* creq's last message is the continuation prefix */
    int role_sent;                 /* the client's stream has its role chunk (message start) */
    int faulted;                   /* the attempt's stream failed; fault_* say how */
    pd_failure fault_kind;
    int fault_status;
    char fault_code[48];
    int load_target;               /* 1 + the target this attempt counts in the worker's load */
    /* Judged answers (relay.h): the attempt's answer is held back until it is judged. */
    int hold;                      /* the client sees nothing of this attempt yet */
    int held_head, held_end;       /* hold: a stream's head / end is due */
    int held_status;               /* hold: a whole reply with this status is due (body in out) */
    int parked;                    /* shadow: its attempt is over; waiting for the local verdict */
    int gate;                      /* this attempt's answer is judged before it is sent */
    int gate_failed;               /* ... and failed: another candidate or the racer answers */
    char gate_why[96];
    pd_quality quality;
    pd_chat_tri client_logprobs;   /* what the client asked: logprobs added for a gate are removed */
    int cost_header;               /* a whole success: x-pendulum-cost-usd goes with the reply */
    struct pd_call *partner;       /* speculative: the other racer, NULL when alone */
    int shadow;                    /* speculative: the cloud racer (answers only when handed over) */
    int lost_race;                 /* speculative: the client got the other racer's answer */
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
        char race_id[sizeof(c->ctx.id) + 8];
        r.id = c->ctx.id;
        if (c->lost_race) { /* the speculative racer the client did not get: a record of its own */
            snprintf(race_id, sizeof(race_id), "%s-race", c->ctx.id);
            r.id = race_id;
        }
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

/* Balance load (worker.h): each attempt is counted from its start to its end, exactly once. */
static void hold_target(pd_call *c)
{
    c->load_target = 1 + (int)(c->model - c->ctx.w->cfg->models); /* router index = model index */
    pd_worker_target_begin(c->ctx.w, c->load_target - 1);
}

static void release_target(pd_call *c)
{
    bool ok =
        c->t_first_byte_us && !c->engine_failed && c->head.status < 500 && c->head.status != 429;
    if (c->load_target)
        pd_worker_target_end(c->ctx.w, c->load_target - 1,
                             ok ? c->t_first_byte_us - c->t_upstream_us : 0, ok);
    c->load_target = 0;
}

/* Judged answers and speculative racing (further down). */
static void drop_partner(pd_call *c, const char *why);
static void partner_failed(pd_call *s);
static void hand_over(pd_call *p);
static int gate_fail(pd_call *c);
static int settle(pd_call *c);
static void gate_attempt(pd_call *c, const pd_route_candidate *cand);
static void start_race(pd_call *p);

static void free_call(pd_call *c)
{
    if (c->partner && c->shadow)
        partner_failed(c); /* the local racer goes on alone */
    else if (c->partner)
        drop_partner(c, c->ctx.req ? "speculative: the local answer was kept" : "client disconnected");
    release_target(c);
    if (!c->cost[0])
        price_call(c);
    log_call(c);
    record_call(c, pd_now_us());
    pd_worker_call_finished(c->ctx.w);
    pd_engine_job_free(c->job); /* cancels a running job; no wake-up after it returns */
    if (c->engine_ev)
        event_free(c->engine_ev);
    if (c->retry_ev)
        event_free(c->retry_ev);
    pd_buf_free(&c->sent);
    pd_quality_free(&c->quality);
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
    if (c->hold) { /* judged first: kept in out until then */
        if (body != c->out.data) {
            pd_buf_reset(&c->out);
            (void)pd_buf_append(&c->out, body, len); /* out has no limit */
        }
        c->held_status = status;
        c->status = status;
        return;
    }
    release_conn(c);
    pd_reply_headers(&c->ctx, "application/json");
    routing_headers(c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->ctx.req);
    if (c->head.retry_after[0])
        evhttp_add_header(h, "Retry-After", c->head.retry_after);
    if (c->head.retry_after_ms[0])
        evhttp_add_header(h, "retry-after-ms", c->head.retry_after_ms);
    if (c->cost_header)
        evhttp_add_header(h, "x-pendulum-cost-usd", c->cost);
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
    if (!c->out.len || c->hold)
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

/* An upstream fault in the middle of a stream (a reset, a timeout, a malformed or an error
 * event). When a later candidate may continue the answer, nothing is written yet (end_stream
 * decides); otherwise the stream ends as broken now. Either way the attempt stops. */
static void stream_fault(pd_call *c, pd_failure kind, int status, const char *code, const char *why)
{
    if (c->faulted || c->stream_broken || c->stream_done)
        return;
    c->faulted = 1;
    c->fault_kind = kind;
    c->fault_status = status;
    snprintf(c->fault_code, sizeof(c->fault_code), "%s", code);
    snprintf(c->error, sizeof(c->error), "%s", why);
    if (!c->continuable)
        break_stream(c, code, why);
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

/* What the client has of the answer, for a continuation's prefix. */
static void note_sent(pd_call *c, const pd_chat_event *ev)
{
    if (!c->continuable)
        return;
    if (ev->kind == PD_EVENT_ROLE)
        c->role_sent = 1;
    if (ev->kind == PD_EVENT_TOOL_START)
        c->tool_started = 1;
    if (ev->kind == PD_EVENT_TEXT && ev->choice == 0 && pd_buf_append(&c->sent, ev->text, ev->text_len) != PD_OK)
        c->continuable = 0; /* longer than a request may be: not continued */
}

/* ---- judged answers ---------------------------------------------------------------------- *
 * A gated attempt (the low_confidence trigger, or the local racer of a speculative route) is
 * held back: its head and bytes stay in out until pd_quality says yes, after the route's first
 * N tokens of a stream or at the end of the answer. Yes: the client gets everything held and
 * the rest as it comes. No: the held bytes are dropped and the racer or the next candidate
 * answers instead. A gate only says no when something else can answer (a racer, or a next
 * candidate within the budget): the last option is always delivered. */

static int within_budget(pd_call *c, uint64_t wait_ms);

static int has_alternative(pd_call *c)
{
    if (c->partner)
        return 1;
    size_t next = pd_route_plan_next(c->plan, c->cand, PD_FALLBACK_NEXT);
    return next < c->plan->n && within_budget(c, 0);
}

static void unhold(pd_call *c);

/* The verdict on the answer so far; final: it is complete. Returns 1 when it failed (the
 * attempt must stop). */
static int judge(pd_call *c, int final)
{
    const pd_route_resilience *res = c->plan->cand[c->cand].res;
    c->gate = 0;
    if (pd_quality_passes(&c->quality, res, final, &c->creq, c->gate_why, sizeof(c->gate_why)) ||
        !has_alternative(c)) {
        drop_partner(c, "speculative: the local answer was kept");
        unhold(c);
        return 0;
    }
    c->gate_failed = 1;
    return 1;
}

static int judge_event(pd_call *c, const pd_chat_event *ev)
{
    pd_quality_add_event(&c->quality, ev);
    const pd_route_resilience *res = c->plan->cand[c->cand].res;
    if (ev->kind == PD_EVENT_FINISH)
        return judge(c, 1);
    return c->quality.tokens >= res->decide_after_tokens ? judge(c, 0) : 0;
}

/* Translation path: one canonical event from the upstream's decoder. */
static int on_canonical(void *ud, const pd_chat_event *ev)
{
    pd_call *c = ud;
    if (c->stream_broken || c->faulted || c->gate_failed)
        return 1;
    if (ev->kind == PD_EVENT_USAGE)
        note_usage(c, &ev->usage);
    if (ev->kind == PD_EVENT_ROLE && c->has_prefix && c->role_sent)
        return 0; /* a continuation: the client's message has begun already (unless the first
                     target broke before even its role chunk went out) */
    if (ev->kind == PD_EVENT_ERROR && c->continuable) {
        char why[300];
        snprintf(why, sizeof(why), "the upstream reported an error in the stream: %.*s", (int)ev->text_len,
                 ev->text ? ev->text : "");
        stream_fault(c, PD_FAIL_HTTP, ev->error_status ? ev->error_status : 500,
                     ev->error_code ? ev->error_code : ev->error_type ? ev->error_type : "upstream_stream_error",
                     why);
        return 1;
    }
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
    pd_chat_event plain = *ev;
    if (c->client_logprobs != PD_TRI_TRUE)
        plain.logprobs = NULL; /* asked for by a gate, not the client */
    if (c->dialect->encode(c->enc, &plain, &c->out) != PD_OK) {
        break_stream(c, "upstream_untranslatable_event",
                     "the upstream's stream cannot be expressed in the client's protocol");
        return 1;
    }
    note_sent(c, ev);
    return c->gate ? judge_event(c, ev) : 0;
}

/* Bytes written to the client but not yet taken by it. A client that stops reading must not
 * make the gateway buffer an endless stream: past this, the stream is ended as broken. */
#define MAX_CLIENT_BACKLOG (8u << 20)

static size_t client_backlog(pd_call *c)
{
    if (c->hold)
        return 0; /* nothing was written to the client */
    struct evhttp_connection *evcon = evhttp_request_get_connection(c->ctx.req);
    return evcon ? evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(evcon))) : 0;
}

static int stream_body(pd_call *c, const char *data, size_t len)
{
    if (c->stream_done || c->stream_broken || c->faulted || c->gate_failed)
        return c->stream_broken || c->faulted || c->gate_failed; /* after the end marker the
                                                                    transfer finishes by itself */
    if (c->passthrough) {
        if (pd_sse_feed(&c->sse, data, len, on_event, c) == PD_ERR_TOO_LARGE)
            break_stream(c, "upstream_malformed_event", "an upstream stream event exceeded the size limit");
    } else {
        pd_result rc = c->ops->decode(c->dec, data, len, on_canonical, c);
        if (rc == PD_ERR_INVALID)
            stream_fault(c, PD_FAIL_HTTP, 502, "upstream_malformed_event",
                         "the upstream sent a malformed stream event");
        if (!c->stream_broken && !c->faulted && c->ops->decoder_done(c->dec) && !c->stream_done) {
            c->dialect->encode_end(c->enc, &c->out);
            c->stream_done = 1;
        }
    }
    flush_out(c);
    if (!c->stream_broken && !c->faulted && client_backlog(c) > MAX_CLIENT_BACKLOG) {
        break_stream(c, "client_too_slow", "the client stopped reading the stream");
        flush_out(c);
    }
    return c->stream_broken || c->faulted || c->gate_failed;
}

static void start_stream(pd_call *c)
{
    c->state = STREAM;
    c->status = 200;
    if (c->hold) {
        c->held_head = 1;
        return;
    }
    if (c->client_streaming)
        return; /* a continuation: the client's stream is open */
    c->client_streaming = 1;
    pd_reply_headers(&c->ctx, "text/event-stream");
    routing_headers(c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->ctx.req);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no"); /* tell proxies in front not to buffer */
    evhttp_send_reply_start(c->ctx.req, 200, NULL);
}

static int continue_stream(pd_call *c);
static void judge_breaker(pd_call *c, pd_fallback f, int upstream_ok);

/* The attempt's stream is over; complete: its upstream ended it properly. Returns 1 when a
 * later candidate continues the answer (the client's stream stays open); otherwise the client's
 * stream is ended: with its end marker, or as broken. */
static int end_stream(pd_call *c, int complete, pd_result rc, const char *msg)
{
    if (complete && !c->stream_done && !c->stream_broken && !c->faulted) {
        c->dialect->encode_end(c->enc, &c->out);
        c->stream_done = 1;
    }
    if (!c->stream_done && !c->stream_broken && !c->faulted) {
        char why[200];
        if (rc == PD_OK)
            snprintf(why, sizeof(why), "the upstream stream ended without its end marker");
        else
            snprintf(why, sizeof(why), "the upstream stream broke: %s", msg);
        stream_fault(c, rc == PD_ERR_TIMEOUT ? PD_FAIL_TIMEOUT : PD_FAIL_CONNECT, 0,
                     rc == PD_ERR_TIMEOUT ? "upstream_timeout" : "upstream_stream_error", why);
    }
    /* The circuit's verdict on a streamed attempt, once (try_next judges only attempts that did
     * not stream): without it a half-open probe that streamed would hold its circuit open for
     * ever, and streams breaking mid-answer would never open one. */
    judge_breaker(c,
                  c->faulted && !c->stream_done
                      ? pd_route_should_fallback(c->plan->cand[c->cand].triggers, c->fault_kind, c->fault_status,
                                                 c->fault_code, NULL)
                      : PD_FALLBACK_NO,
                  c->stream_done);
    if (!c->stream_done && !c->stream_broken) {
        flush_out(c);
        if (continue_stream(c))
            return 1;
        break_stream(c, c->fault_code, c->error);
    }
    flush_out(c);
    if (c->hold) {
        c->held_end = 1;
        return 0;
    }
    release_conn(c);
    evhttp_send_reply_end(c->ctx.req);
    return 0;
}

/* ---- whole bodies ------------------------------------------------------------------------ */

/* Log-probabilities that only a gate asked for are not the client's. */
static void strip_logprobs(pd_call *c, pd_chat_response *r)
{
    if (c->client_logprobs == PD_TRI_TRUE)
        return;
    for (size_t i = 0; i < r->n_choices; i++) {
        json_decref(r->choices[i].logprobs);
        r->choices[i].logprobs = NULL;
    }
}

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
        if (c->gate)
            pd_quality_add_response(&c->quality, &r);
        strip_logprobs(c, &r);
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
        c->cost_header = 1;
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
static void fail_call(pd_call *c, pd_api_error *e);

/* How this attempt failed, in the router's terms; PD_FALLBACK_NO when it did not (or when the
 * client already has part of the answer). */
static pd_fallback judge_attempt(pd_call *c, pd_result rc)
{
    const pd_route_candidate *cand = &c->plan->cand[c->cand];
    if (c->job && c->engine_failed)
        return pd_route_should_fallback(cand->triggers, PD_FAIL_HTTP, c->engine_err.status,
                                        c->engine_err.code, c->engine_err.message);
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
    release_target(c); /* an engine attempt or a continued stream ends here, not in on_done */
    memset(&c->head, 0, sizeof(c->head));
    pd_buf_reset(&c->body);
    pd_sse_reset(&c->sse);
    if (c->dec)
        c->ops->decoder_free(c->dec);
    c->dec = NULL;
    pd_engine_job_free(c->job);
    c->job = NULL;
    if (c->engine_ev)
        event_free(c->engine_ev);
    c->engine_ev = NULL;
    c->engine_failed = 0;
    pd_chat_response_free(&c->eresp);
    c->state = WAIT_HEAD;
    c->faulted = 0;
    c->error[0] = '\0';
    c->t_first_byte_us = 0;
    pd_chat_usage_init(&c->usage);
}

static pd_breaker *breaker_of(pd_call *c, int target)
{
    pd_worker *w = c->ctx.w;
    return target >= 0 && (size_t)target < w->n_targets ? &w->breakers[target] : NULL;
}

/* The attempt's verdict for its target's circuit breaker: a failure that warrants a fallback
 * counts against it, anything the upstream answered below 500 for it. */
static void judge_breaker(pd_call *c, pd_fallback f, int upstream_ok)
{
    if (c->cand >= c->plan->n)
        return; /* start_attempt ran out of candidates: no attempt to judge */
    pd_breaker *b = breaker_of(c, c->plan->cand[c->cand].target);
    pd_breaker_params bp = pd_breaker_params_from_config(c->ctx.w->cfg);
    if (!b)
        return;
    if (f != PD_FALLBACK_NO)
        pd_breaker_failure(b, &bp, pd_now_us() / 1000);
    else if (upstream_ok)
        pd_breaker_success(b);
    else
        pd_breaker_abandon(b); /* no verdict: a half-open probe must not stay out for ever */
}

/* May one more attempt start `wait_ms` from now, within the route's attempt budget and
 * deadline? */
static int within_budget(pd_call *c, uint64_t wait_ms)
{
    const pd_route_resilience *res = c->plan->res;
    if ((uint32_t)c->attempts >= res->max_attempts)
        return 0;
    uint64_t at_us = pd_now_us() + wait_ms * 1000;
    return !res->deadline_ms || at_us < c->ctx.t_start_us + (uint64_t)res->deadline_ms * 1000;
}

/* The upstream's own word on when to come back: retry-after-ms (OpenAI), else Retry-After in
 * seconds; -1 when absent or an HTTP date (then our backoff decides). */
static int64_t retry_after_ms(const pd_upstream_head *h)
{
    char *end;
    if (h->retry_after_ms[0]) {
        double v = strtod(h->retry_after_ms, &end);
        if (*end == '\0' && v >= 0 && v < 1e9)
            return (int64_t)v;
    }
    if (h->retry_after[0]) {
        double v = strtod(h->retry_after, &end);
        if (*end == '\0' && v >= 0 && v < 1e6)
            return (int64_t)(v * 1000);
    }
    return -1;
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pd_call *c = arg;
    pd_api_error e;
    if (start_attempt(c, &e) != 0)
        fail_call(c, &e);
}

/* A transient failure of the current candidate: try it again after a backoff (full jitter) or
 * the upstream's Retry-After, when the route allows another retry and the wait fits the budget.
 * Returns 1 when the retry is scheduled. */
static int retry_same(pd_call *c)
{
    const pd_route_candidate *cand = &c->plan->cand[c->cand];
    if (c->cand_retries >= cand->res->retries)
        return 0;
    int64_t ra = retry_after_ms(&c->head);
    uint64_t wait = pd_route_backoff_ms(cand->res, c->cand_retries, ra, pd_worker_random(c->ctx.w));
    if ((ra >= 0 && wait > cand->res->backoff_max_ms) || !within_budget(c, wait))
        return 0; /* the upstream asks for a longer wait than the route allows: move on */
    if (!c->retry_ev)
        c->retry_ev = evtimer_new(c->ctx.w->base, on_retry_timer, c);
    if (!c->retry_ev)
        return 0;
    reset_attempt(c);
    c->cand_retries++;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(c->retry_ev, &tv);
    return 1;
}

/* After a failed attempt that the client has seen nothing of: retry the same candidate, or go
 * to the next one the route's triggers allow. Returns 1 when the call goes on (or was answered
 * and freed); 0 when the caller answers with this attempt's outcome. */
static int try_next(pd_call *c, pd_result rc)
{
    if (!c->plan)
        return 0;
    pd_fallback f = judge_attempt(c, rc);
    judge_breaker(c, f, rc == PD_OK && c->head.status < 500);
    if (f != PD_FALLBACK_NO && c->partner && !c->shadow) {
        hand_over(c); /* the local racer failed: the cloud racer is already under way */
        return 1;
    }
    if (f == PD_FALLBACK_NO)
        return 0;
    if (f == PD_FALLBACK_RETRY && retry_same(c))
        return 1;
    size_t next = pd_route_plan_next(c->plan, c->cand, f);
    if (next >= c->plan->n || !within_budget(c, 0))
        return 0;
    reset_attempt(c);
    c->cand = next;
    c->cand_retries = 0;
    pd_api_error e;
    if (start_attempt(c, &e) != 0) {
        if (c->client_streaming) {
            c->state = STREAM;
            break_stream(c, "no_target", e.message);
            end_stream(c, 0, PD_OK, NULL);
            free_call(c);
        } else {
            fail_call(c, &e);
        }
    }
    return 1;
}

/* A continuation's attempt failed before it streamed anything: the client's stream (already
 * open) ends as broken. */
static void end_continuation(pd_call *c, const char *why)
{
    c->state = STREAM;
    break_stream(c, "upstream_stream_error", why);
    end_stream(c, 0, PD_OK, NULL);
}

static void on_done(void *ud, pd_result rc, const char *msg, const pd_upstream_timing *tm)
{
    pd_call *c = ud;
    c->xfer = NULL;
    c->timing = *tm;
    release_target(c);
    c->upstream_ms = (double)tm->total_us / 1000.0;
    if (c->gate_failed && gate_fail(c))
        return; /* the gate stopped the attempt mid-stream */
    if (c->state != STREAM && try_next(c, rc))
        return;
    if (c->state == STREAM) {
        int complete = c->passthrough ? c->stream_done : rc == PD_OK && c->ops->decoder_done(c->dec);
        if (end_stream(c, complete, rc, msg))
            return; /* continued by the next candidate */
    } else if (c->client_streaming) {
        char why[200];
        snprintf(why, sizeof(why), "the continuing upstream failed: %s",
                 c->head.status ? "error status" : msg ? msg : "no answer");
        end_continuation(c, why);
    } else if (rc == PD_OK && c->state == BODY) {
        end_body(c);
    } else if (c->state == BODY && c->error[0]) {
        reply_error(c, 502, "upstream_response_too_large", "%s", c->error);
    } else if (rc == PD_ERR_TIMEOUT) {
        reply_error(c, 504, "upstream_timeout", "upstream timed out: %s", msg);
    } else {
        reply_error(c, 502, "upstream_unreachable", "upstream request failed: %s", msg);
    }
    if (c->hold && settle(c))
        return;
    free_call(c);
}

/* The continuation's prefix: the answer the client has so far, as the last (assistant)
 * message; upstreams that support it (Anthropic, llama.cpp, the embedded engine) continue it.
 * In the request's arena (canon/chat.h): the messages array is copied once, one more slot; a
 * later continuation only points the part at a newer text. False when the arena would pass
 * its limit (an answer too long to send again): then the stream is not continued. */
static bool set_prefix(pd_call *c)
{
    pd_chat_request *r = &c->creq;
    char *text = pd_chat_request_strndup(r, c->sent.data ? c->sent.data : "", c->sent.len);
    if (!text)
        return false;
    if (!c->has_prefix) {
        pd_chat_message *msgs = pd_chat_request_alloc(r, r->n_messages + 1, sizeof(*msgs));
        pd_chat_part *part = pd_chat_request_alloc(r, 1, sizeof(*part));
        if (!msgs || !part)
            return false;
        if (r->n_messages)
            memcpy(msgs, r->messages, r->n_messages * sizeof(*msgs));
        pd_chat_message *m = &msgs[r->n_messages];
        m->role = PD_ROLE_ASSISTANT;
        m->form = PD_CONTENT_STRING;
        m->parts = part;
        m->n_parts = 1;
        part->kind = PD_PART_TEXT;
        r->messages = msgs;
        r->n_messages++;
        c->has_prefix = 1;
    }
    r->messages[r->n_messages - 1].parts[0].text = text;
    r->raw = (pd_chat_json){0}; /* the client's body no longer says what is asked */
    return true;
}

/* A stream broke after the client got part of the answer: when the route's triggers allow, the
 * next candidate continues it from the text sent so far, and a stream comment says so. */
static int continue_stream(pd_call *c)
{
    if (!c->continuable || c->tool_started)
        return 0;
    const pd_route_candidate *cand = &c->plan->cand[c->cand];
    pd_fallback f = pd_route_should_fallback(cand->triggers, c->fault_kind, c->fault_status, c->fault_code, NULL);
    size_t next = pd_route_plan_next(c->plan, c->cand, PD_FALLBACK_NEXT);
    if (f == PD_FALLBACK_NO || next >= c->plan->n || !within_budget(c, 0))
        return 0;
    char from[128], why[sizeof(c->error)], code[sizeof(c->fault_code)];
    snprintf(from, sizeof(from), "%s", c->model->name);
    snprintf(why, sizeof(why), "%s", c->error);
    snprintf(code, sizeof(code), "%s", c->fault_code);
    size_t have = c->sent.len;
    if (!set_prefix(c))
        return 0;
    reset_attempt(c);
    c->cand = next;
    c->cand_retries = 0;
    pd_api_error e;
    if (start_attempt(c, &e) != 0) {
        c->state = STREAM;
        break_stream(c, code, why);
        return 0;
    }
    char note[512];
    int n = snprintf(note, sizeof(note),
                     ": pendulum: the stream from %s broke (%s) after %zu bytes of answer; %s continues it\n\n",
                     from, code, have, c->model->name);
    if (n > 0 && pd_buf_append(&c->out, note, (size_t)n < sizeof(note) ? (size_t)n : sizeof(note) - 1) == PD_OK)
        flush_out(c);
    return 1;
}

/* ---- holding back, and speculative racing --------------------------------------------------- */

static void on_client_gone(void *ud);
static pd_call *new_call(pd_ingress_ctx *ctx, const pd_model_cfg *m);

/* The held attempt is the answer: the client gets what was held back, and the rest as it comes. */
static void unhold(pd_call *c)
{
    if (!c->hold)
        return;
    c->hold = 0;
    if (c->held_status) {
        int st = c->held_status;
        c->held_status = 0;
        reply_now(c, st, c->out.data, c->out.len);
        return;
    }
    if (c->held_head) {
        c->held_head = 0;
        start_stream(c);
    }
    flush_out(c);
    if (c->held_end) {
        c->held_end = 0;
        release_conn(c);
        evhttp_send_reply_end(c->ctx.req);
    }
}

/* Ends a racer that will not answer the client (its record says why). */
static void end_racer(pd_call *r, const char *why)
{
    pd_transfer_cancel(r->xfer);
    r->xfer = NULL;
    pd_engine_job_free(r->job);
    r->job = NULL;
    r->ctx.req = NULL;
    r->conn = NULL;
    r->lost_race = 1;
    r->status = 499;
    snprintf(r->error, sizeof(r->error), "%s", why);
    free_call(r);
}

static void drop_partner(pd_call *c, const char *why)
{
    pd_call *s = c->partner;
    if (!s)
        return;
    c->partner = NULL;
    s->partner = NULL;
    end_racer(s, why);
}

/* The cloud racer failed before the local answer was judged: the local answer is what there is,
 * whatever its quality, so it is no longer held back. */
static void partner_failed(pd_call *s)
{
    pd_call *p = s->partner;
    s->partner = NULL;
    p->partner = NULL;
    s->lost_race = 1;
    if (!p->gate)
        return;
    p->gate = 0;
    unhold(p);
}

/* The local racer's answer failed (or the local target did): the cloud racer answers; p ends. */
static void hand_over(pd_call *p)
{
    pd_call *s = p->partner;
    p->partner = NULL;
    s->partner = NULL;
    s->shadow = 0;
    s->conn = p->conn;
    p->conn = NULL;
    p->ctx.req = NULL; /* p's record stays; it answers nothing */
    p->lost_race = 1;
    p->status = 499;
    snprintf(p->error, sizeof(p->error), "speculative: %s; the cloud answer was used",
             p->gate_why[0] ? p->gate_why : "the local target failed");
    size_t have = strlen(s->plan->reason);
    snprintf(s->plan->reason + have, sizeof(s->plan->reason) - have, "; speculative: %s failed (%s) -> %s",
             p->model->name, p->gate_why[0] ? p->gate_why : "error", s->model->name);
    if (s->conn)
        pd_conn_begin(s->conn, s, on_client_gone);
    unhold(s);
    if (s->parked)
        free_call(s);
    free_call(p);
}

/* The gate said no. The racer answers, or the next candidate with a fresh encoder (nothing
 * reached the client). Returns 1 when that happened (c is then taken care of). */
static int gate_fail(pd_call *c)
{
    if (c->partner) {
        hand_over(c);
        return 1;
    }
    size_t next = pd_route_plan_next(c->plan, c->cand, PD_FALLBACK_NEXT);
    char why[sizeof(c->gate_why) + 160];
    snprintf(why, sizeof(why), "; low confidence on %s (%s)", c->model->name, c->gate_why);
    size_t have = strlen(c->plan->reason);
    snprintf(c->plan->reason + have, sizeof(c->plan->reason) - have, "%s", why);
    pd_transfer_cancel(c->xfer);
    c->xfer = NULL;
    pd_buf_reset(&c->out);
    pd_buf_reset(&c->sent);
    c->held_head = c->held_end = c->held_status = 0;
    c->stream_done = c->stream_broken = c->tool_started = c->gate_failed = 0;
    c->dialect->encoder_free(c->enc);
    c->enc = c->dialect->encoder_new(&c->creq, c->ctx.id, c->creq.model);
    reset_attempt(c);
    c->cand = next;
    c->cand_retries = 0;
    pd_api_error e;
    if (start_attempt(c, &e) != 0)
        fail_call(c, &e);
    return 1;
}

/* The attempt is over while its answer is held back: judge it now (a shadow waits for the
 * local verdict). Returns 1 when the call lives on, 0 when the caller frees it. */
static int settle(pd_call *c)
{
    if (c->shadow && c->partner) {
        int failed = c->held_status >= 400 || c->stream_broken || (c->held_head && !c->stream_done);
        if (failed)
            return 0; /* free_call tells the local racer */
        c->parked = 1;
        return 1;
    }
    int broken = c->stream_broken || c->held_status >= 400;
    if (c->gate && !c->gate_failed && broken && has_alternative(c)) {
        snprintf(c->gate_why, sizeof(c->gate_why), "the answer failed: %.70s", c->error);
        c->gate_failed = 1; /* a failed answer is never kept when something else can answer */
    }
    if (c->gate && !c->gate_failed)
        judge(c, 1);
    if (c->gate_failed && gate_fail(c))
        return 1;
    c->gate = 0;
    unhold(c);
    return 0;
}

/* Whether this attempt is judged before the client sees it, and so held back. Only an attempt
 * whose client has nothing yet: a continuation is never judged. */
static void gate_attempt(pd_call *c, const pd_route_candidate *cand)
{
    int low_confidence = (cand->triggers & PD_TRIG_LOW_CONFIDENCE) && pd_route_has_confidence(cand->res);
    c->gate = !c->client_streaming && !c->shadow && (c->partner || (low_confidence && has_alternative(c)));
    c->hold = c->gate || c->shadow;
    c->gate_failed = 0;
    c->gate_why[0] = '\0';
    pd_quality_free(&c->quality);
    pd_quality_init(&c->quality, cand->res->window_tokens);
    if (c->gate && c->creq.sampling.logprobs != PD_TRI_TRUE) {
        c->creq.sampling.logprobs = PD_TRI_TRUE; /* the gate's evidence; removed from the answer */
        c->creq.raw = (pd_chat_json){0};         /* the client's body does not ask for them */
    }
}

/* Speculative: the first two candidates start at once. The second (the cloud racer) gets its own
 * copy of the request, parsed again from the client's body, and answers only if handed over. */
static void start_race(pd_call *p)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(p->ctx.req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    const pd_model_cfg *m = pd_config_model(p->ctx.w->cfg, p->plan->cand[1].model);
    pd_chat_request creq;
    pd_api_error e;
    if (!body || !m || p->dialect->parse_request(body, len, &creq, &e) != PD_OK)
        return; /* parsed once already: cannot fail; without a racer the plan runs in order */
    pd_call *s = new_call(&p->ctx, m);
    s->creq = creq;
    s->plan = pd_xmalloc(sizeof(*s->plan));
    *s->plan = *p->plan;
    s->cand = 1;
    s->shadow = 1;
    s->conn = NULL; /* the client's connection stays the local racer's until a hand-over */
    s->client_logprobs = creq.sampling.logprobs;
    s->enc = s->dialect->encoder_new(&s->creq, s->ctx.id, s->creq.model);
    s->partner = p;
    p->partner = s;
    if (start_attempt(s, &e) != 0) {
        s->ctx.req = NULL; /* its failure is its own: the local racer goes on alone */
        free_call(s);
    }
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
    if (c->plan && c->attempts)
        pd_breaker_abandon(breaker_of(c, c->plan->cand[c->cand].target)); /* no verdict */
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
    pd_buf_init(&c->sent, 0);
    pd_quality_init(&c->quality, 8);
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
    hold_target(c);
    if (c->conn && !c->shadow)
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
    if (c->gate_failed && gate_fail(c))
        return; /* the gate stopped the answer */
    if (c->state == STREAM) {
        if (end_stream(c, !c->faulted, PD_OK, NULL))
            return; /* continued by the next candidate */
    } else if (c->engine_failed && try_next(c, PD_OK)) {
        return;
    } else if (c->client_streaming) {
        end_continuation(c, c->engine_failed ? c->engine_err.message : "the continuing model gave no answer");
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
        if (c->gate)
            pd_quality_add_response(&c->quality, r);
        strip_logprobs(c, r);
        note_usage(c, &r->usage);
        pd_buf_reset(&c->out);
        if (c->dialect->write_response(r, &c->out) != PD_OK) {
            reply_error(c, 500, NULL, "%s", "cannot write the answer");
        } else {
            price_call(c);
            c->cost_header = 1;
            reply_now(c, 200, c->out.data, c->out.len);
            judge_breaker(c, PD_FALLBACK_NO, 1); /* try_next judges only failed engine attempts */
        }
    }
    if (c->hold && settle(c))
        return;
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
    if (done || c->stream_broken || c->faulted || c->gate_failed)
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
    hold_target(c);
    if (c->conn && !c->shadow)
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
    c->continuable = 0; /* a prefix would carry restored (original) values to the next target */
    return c->redact_rc;
}

/* A candidate whose circuit is open is not sent to (e says why, for when none is left): a
 * request with nowhere else to go fails fast with 503 circuit_open until the cooldown's probe. */
static int circuit_open(pd_call *c, const pd_route_candidate *cand, pd_api_error *e)
{
    pd_breaker *b = breaker_of(c, cand->target);
    pd_breaker_params bp = pd_breaker_params_from_config(c->ctx.w->cfg);
    if (!b || !pd_breaker_is_open(b, &bp, pd_now_us() / 1000))
        return 0;
    pd_openai_error_set(e, 503, NULL, "circuit_open", NULL,
                        "no target of the route can take the request now: the circuit of %s is open", cand->model);
    return 1;
}

/* The attempt is going out: a half-open circuit lets exactly this one through as its probe. */
static void admit(pd_call *c, const pd_route_candidate *cand)
{
    pd_breaker *b = breaker_of(c, cand->target);
    pd_breaker_params bp = pd_breaker_params_from_config(c->ctx.w->cfg);
    if (b)
        pd_breaker_allow(b, &bp, pd_now_us() / 1000);
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
        if (circuit_open(c, cand, e))
            continue;
        gate_attempt(c, cand);
        if (m->provider->kind == PD_KIND_LLAMA) {
            if (start_engine(c, m, e) == 0) {
                admit(c, cand);
                return 0;
            }
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
        /* A stream that a later candidate may continue is translated, so the client's stream
         * is the encoder's from the start. */
        c->passthrough = c->ops->native == c->dialect && c->ops->pass_event && c->creq.raw.text &&
                         !c->vault && !(c->continuable && c->creq.stream) && !c->gate;
        if (!c->passthrough)
            c->dec = c->ops->decoder_new(&c->creq);
        /* The client's original body (raw) is only for an upstream of the client's own dialect,
         * and never once the request has been redacted. */
        pd_chat_request view = c->creq;
        if (c->ops->native != c->dialect || c->vault)
            view.raw = (pd_chat_json){0};
        pd_transfer_req treq = {0};
        if (c->ops->chat_request(m->provider, m, &view, &treq, e) != PD_OK) {
            if (c->dec)
                c->ops->decoder_free(c->dec);
            c->dec = NULL;
            continue; /* this upstream cannot honour the request; a later one may */
        }
        admit(c, cand);
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
    const pd_chat_message *last = c->creq.n_messages ? &c->creq.messages[c->creq.n_messages - 1] : NULL;
    /* Continuing a broken stream needs a next candidate, one choice, and a conversation that does
     * not already end with the assistant's words (the prefix would be ambiguous). */
    c->continuable = plan->n > 1 && c->creq.stream && !(c->creq.sampling.has_n && c->creq.sampling.n > 1) &&
                     last && last->role != PD_ROLE_ASSISTANT;
    pd_buf_init(&c->sent, ctx->w->cfg->limits.max_body_bytes);
    c->client_logprobs = c->creq.sampling.logprobs;
    if (plan->race > 1 && plan->n > 1 && !(c->creq.sampling.has_n && c->creq.sampling.n > 1))
        start_race(c);
    if (c->partner)
        c->continuable = 0; /* the racer is the alternative */
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
