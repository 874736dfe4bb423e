/* admin.c: the endpoints that answer from the configuration alone. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingress/ingress.h"

/* GET /v1/models in OpenAI's list shape: the names clients may send as "model". */
void pd_ingress_models(pd_ingress_ctx *ctx)
{
    const pd_config *cfg = ctx->w->cfg;
    json_t *data = json_array();
    json_int_t created = (json_int_t)time(NULL);
    for (size_t i = 0; i < cfg->n_models; i++) {
        const pd_model_cfg *m = &cfg->models[i];
        json_array_append_new(data, json_pack("{s:s,s:s,s:I,s:s}", "id", m->name, "object", "model",
                                              "created", created, "owned_by", m->provider->name));
    }
    json_t *doc = json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        pd_api_error e;
        pd_openai_error_set(&e, 500, NULL, NULL, NULL, "cannot build the model list");
        pd_reply_error(ctx, &e);
        return;
    }
    pd_reply_json(ctx, 200, text, strlen(text));
    free(text);
}

void pd_ingress_healthz(pd_ingress_ctx *ctx)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    pd_reply_json(ctx, 200, ok, sizeof(ok) - 1);
}

static int engines_ready(const pd_worker *w)
{
    for (size_t i = 0; w->engines && i < w->cfg->n_providers; i++)
        if (w->engines[i] && pd_engine_state_get(w->engines[i]) != PD_ENGINE_READY)
            return 0;
    return 1;
}

/* Ready = accepting work: every embedded model loaded, and not draining after SIGTERM (then 503,
 * so balancers move away). */
void pd_ingress_readyz(pd_ingress_ctx *ctx)
{
    static const char ready[] = "{\"status\":\"ready\"}";
    static const char draining[] = "{\"status\":\"draining\"}";
    static const char loading[] = "{\"status\":\"loading\"}";
    if (ctx->w->draining)
        pd_reply_json(ctx, 503, draining, sizeof(draining) - 1);
    else if (!engines_ready(ctx->w))
        pd_reply_json(ctx, 503, loading, sizeof(loading) - 1);
    else
        pd_reply_json(ctx, 200, ready, sizeof(ready) - 1);
}

/* pendulum_target_up for every target with an active check (upstream/health.h). */
static pd_result render_target_up(const pd_worker *w, pd_buf *out)
{
    pd_metrics_target_up *rows = pd_xcalloc(w->cfg->n_models + 1, sizeof(*rows));
    size_t n = 0;
    for (size_t i = 0; i < w->cfg->n_models; i++) {
        pd_health_state st = pd_health_target(w->health, i);
        if (st != PD_HEALTH_UNCHECKED)
            rows[n++] = (pd_metrics_target_up){w->cfg->models[i].name, st == PD_HEALTH_UP};
    }
    pd_result rc = pd_metrics_render_target_up(rows, n, out);
    free(rows);
    return rc;
}

/* GET /metrics: Prometheus text, summed over the workers' shards at scrape time. */
void pd_ingress_metrics(pd_ingress_ctx *ctx)
{
    pd_worker *w = ctx->w;
    if (w->ledger) {
        pd_ledger_stats st;
        pd_ledger_get_stats(w->ledger, &st);
        pd_metrics_ledger l = {.depth = st.depth,
                               .capacity = st.capacity,
                               .written = st.written,
                               .dropped = st.dropped,
                               .failed = st.failed,
                               .batches = st.batches,
                               .catchups = st.catchups};
        pd_metrics_set_ledger(w->metrics, &l);
    }
    pd_buf out;
    pd_buf_init(&out, 8u << 20);
    if (pd_metrics_render(w->metrics, &out) != PD_OK || render_target_up(w, &out) != PD_OK) {
        pd_api_error e;
        pd_openai_error_set(&e, 500, NULL, NULL, NULL, "cannot render the metrics");
        pd_reply_error(ctx, &e);
    } else {
        pd_reply_body(ctx, 200, PD_METRICS_CONTENT_TYPE, out.data, out.len);
    }
    pd_buf_free(&out);
}
