/* bench/route.c: how long the routing decision takes (complexity score + PII scan + policy).
 *
 * The router is built the way a config with these routes builds it (router/router.h):
 *   auto         privacy: PII found -> local branch `local-llama`; else the cloud branch
 *   cloud-tiers  tiered: score < 0.5 -> `cloud-mini`, otherwise `cloud-large`
 * with the real PII detector (pii/pii.h: every pattern compiled into one Vectorscan database)
 * and the default heuristic scorer. Each sample is one pd_router_plan("auto") on a parsed chat
 * request (system prompt + one user message of 200 B, 2 KB or 32 KB of chat text), so it
 * covers scoring, the PII scan of every text, the privacy and tier policies and candidate
 * ordering. Parsing the request is not included (bench/translate.c measures that).
 * Two kinds of prompt: clean (no PII: the plan goes to the cloud tiers and is scored) and with
 * one email address in the middle (the plan goes local, nothing is scored). The PII scan and
 * the score are also timed alone, to show where a plan's time goes.
 *
 * Clocks as in bench/translate.c: p50/p99 wall clock per plan; cpu = thread CPU time over the
 * measurement / plans; on-cpu = cpu / wall. Target: p99 < 20 us for the 2 KB prompt.
 * Usage: bench_route [seconds per measurement, default 1.5]. Build and run: bench/run-c.sh
 * route. */
#include "canon/chat.h"
#include "core/buf.h"
#include "pii/pii.h"
#include "proto/openai.h"
#include "router/router.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES 1000000

static double g_seconds = 1.5;

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_route: %s\n", what);
    exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
    return n ? (double)v[(size_t)(p * (double)(n - 1) + 0.5)] : 0;
}

/* The first three fields of /proc/loadavg, or "?". */
static const char *loadavg(void)
{
    static char text[64];
    double l1, l5, l15;
    FILE *f = fopen("/proc/loadavg", "r");
    snprintf(text, sizeof(text), "?");
    if (f && fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3)
        snprintf(text, sizeof(text), "%.2f %.2f %.2f", l1, l5, l15);
    if (f)
        fclose(f);
    return text;
}

/* ---- the router ----------------------------------------------------------------------------- */

static const char *const regions_eu[] = {"eu-west-1"};
static const pd_target_attrs targets[] = {
    {.model = "local-llama", .local = true, .retention_days = 0, .context_tokens = 8192},
    {.model = "cloud-mini", .retention_days = 30, .regions = regions_eu, .n_regions = 1,
     .context_tokens = 128000},
    {.model = "cloud-large", .retention_days = 30, .zdr = true, .regions = regions_eu,
     .n_regions = 1, .context_tokens = 200000},
};
static const pd_route_tier tiers[] = {
    {.has_below = true, .below = 0.5, .target = "cloud-mini"},
    {.has_below = false, .target = "cloud-large"},
};
static const pd_route_def routes[] = {
    {.name = "auto", .policy = PD_POLICY_PRIVACY, .local = "local-llama", .cloud = "cloud-tiers",
     .pii_action = PD_ROUTE_PII_LOCAL},
    {.name = "cloud-tiers", .policy = PD_POLICY_TIERED, .tiers = tiers, .n_tiers = 2},
};

/* ---- prompts -------------------------------------------------------------------------------- */

static const char *const sentences[] = {
    "Can you help me refactor this function so it handles the empty case without crashing? ",
    "The issue is that the array is indexed before its length is checked. ",
    "I tried returning early but the tests still fail on the build server with a timeout. ",
    "```python\ndef load(path):\n    with open(path) as f:\n        return json.load(f)\n```\n",
    "Summarize the following notes in three bullet points for a busy reader. ",
    "The quick brown fox jumps over the lazy dog, then naps under the old oak tree. ",
    "Explain why the parser allocates a string per token and how we could avoid it. ",
    "Let us plan the sprint: the auth refactor, the rate limiter and the dashboard charts. ",
    "It compiles with the default flags but crashes with aggressive optimisation enabled. ",
    "Le renard brun rapide saute par-dessus le chien paresseux, puis il se repose. ",
    "Write a short poem about autumn leaves and the first cold morning of the year. ",
    "SELECT name, total FROM orders WHERE status = 'open' ORDER BY total DESC; ",
};
#define N_SENTENCES (sizeof(sentences) / sizeof(sentences[0]))

/* Chat text of exactly `size` bytes (the last sentence cut); when pii, an email address near
   the middle (early enough to survive the cut in a 200-byte prompt). */
static void make_prompt(pd_buf *out, size_t size, int pii)
{
    pd_buf_reset(out);
    for (size_t i = 0; out->len < size; i++) {
        if (pii && out->len + 60 >= size / 2 && !strchr(out->data, '@'))
            pd_buf_append_str(out, "Please send the report to maria.gonzalez@example.org today. ");
        pd_buf_append_str(out, sentences[(i * 7) % N_SENTENCES]);
    }
    out->len = size;
    out->data[size] = 0;
}

/* An OpenAI request body (system + user message) parsed into the canonical request. */
static void make_request(pd_chat_request *req, const char *prompt)
{
    json_t *body = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "model", "auto", "messages",
                             "role", "system", "content",
                             "You are a helpful assistant. Answer concisely.", "role", "user",
                             "content", prompt);
    char *text = json_dumps(body, JSON_COMPACT);
    pd_api_error err;
    if (!text || pd_openai_parse_chat_request(text, strlen(text), req, &err) != PD_OK)
        die("the benchmark request does not parse");
    free(text);
    json_decref(body);
}

/* ---- measurement ---------------------------------------------------------------------------- */

typedef struct result {
    double p50_us, p99_us, cpu_us, on_cpu;
    size_t n;
} result;

/* What one sample times: the whole plan, or one of its two costly parts alone. */
typedef enum what { PLAN, SCAN, SCORE } what;

typedef struct job {
    what what;
    const pd_router *r;
    const pd_chat_request *req;
    const pd_route_ctx *ctx;
    pd_route_plan plan;
    pd_scorer scorer;
} job;

/* The PII scan of every text the router scans here (the system and user message text). */
static void scan_all(job *j)
{
    for (size_t i = 0; i < j->req->n_messages; i++) {
        const pd_chat_message *m = &j->req->messages[i];
        for (size_t k = 0; k < m->n_parts; k++) {
            const pd_pii_finding *f;
            size_t n;
            const char *t = m->parts[k].text;
            if (t && pd_pii_scan(j->ctx->scanner, t, strlen(t), &f, &n) != PD_OK)
                die("the PII scan failed");
        }
    }
}

static uint64_t once(job *j)
{
    pd_api_error err;
    pd_score_features feat;
    uint64_t t0 = now_ns();
    switch (j->what) {
    case PLAN:
        if (pd_router_plan(j->r, "auto", j->req, j->ctx, &j->plan, &err) != PD_OK)
            die(err.message);
        break;
    case SCAN:
        scan_all(j);
        break;
    case SCORE:
        j->plan.score = pd_score_run(&j->scorer, j->req, &feat);
        break;
    }
    return now_ns() - t0;
}

static result measure(job *j, what w, uint64_t *v)
{
    result res = {0};
    j->what = w;
    uint64_t warm_end = now_ns() + 100000000u;
    while (now_ns() < warm_end)
        once(j);
    uint64_t w0 = now_ns(), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t end = w0 + (uint64_t)(g_seconds * 1e9);
    while (res.n < MAX_SAMPLES && (res.n % 64 || now_ns() < end))
        v[res.n++] = once(j);
    double cpu = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0);
    res.cpu_us = cpu / (double)res.n / 1000;
    res.on_cpu = cpu / (double)(now_ns() - w0);
    qsort(v, res.n, sizeof(*v), cmp_u64);
    res.p50_us = pct(v, res.n, 0.5) / 1000;
    res.p99_us = pct(v, res.n, 0.99) / 1000;
    return res;
}

/* One row: the plan, then (for prompts without PII, where the tiered route scores) the scan
   and the score alone. */
static void bench_size(const pd_router *r, const pd_route_ctx *ctx, size_t size, int pii,
                       uint64_t *v, pd_buf *prompt)
{
    pd_chat_request req;
    make_prompt(prompt, size, pii);
    make_request(&req, prompt->data);
    job j = {.r = r, .req = &req, .ctx = ctx, .scorer = pd_score_default()};
    result res = measure(&j, PLAN, v);
    if ((j.plan.pii_count > 0) != (pii != 0) || j.plan.n == 0)
        die("the plan is not the expected one (PII found where none was put, or the reverse)");
    const char *first = j.plan.cand[0].model;
    double score = j.plan.score;
    char scan[16] = "-", sc[16] = "-", label[32];
    snprintf(scan, sizeof(scan), "%.2f", measure(&j, SCAN, v).p50_us);
    if (!pii)
        snprintf(sc, sizeof(sc), "%.2f", measure(&j, SCORE, v).p50_us);
    snprintf(label, sizeof(label), "%zu B%s", size, pii ? " + email" : "");
    printf("  %-16s %8zu %8.2f %8.2f %8.2f %6.0f%% %9s %9s  %-11s %5.2f   %s\n", label, res.n,
           res.p50_us, res.p99_us, res.cpu_us, 100 * res.on_cpu, scan, sc, first, score,
           size != 2048 ? "" : res.p99_us < 20 ? "p99 < 20 us: met" : "p99 < 20 us: MISSED");
    pd_chat_request_free(&req);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_seconds = atof(argv[1]);
    if (g_seconds <= 0)
        die("usage: bench_route [seconds per measurement]");
    char why[256];
    pd_router *r = NULL;
    if (pd_router_new(routes, sizeof(routes) / sizeof(routes[0]), targets,
                      sizeof(targets) / sizeof(targets[0]), &r, why, sizeof(why)) != PD_OK)
        die(why);
    pd_pii_params params = pd_pii_default_params();
    pd_pii_detector *det = NULL;
    pd_pii_scanner *scanner = NULL;
    if (pd_pii_detector_new(&params, &det) || pd_pii_scanner_new(det, &scanner))
        die("the PII detector could not be built");
    pd_route_ctx ctx = {.scanner = scanner};
    uint64_t *v = pd_xmalloc(MAX_SAMPLES * sizeof(uint64_t));
    pd_buf prompt;
    pd_buf_init(&prompt, 0);

    printf("Pendulum routing decision benchmark: pd_router_plan(\"auto\"), privacy -> tiered, "
           "real PII detector;\none thread, %.1f s per measurement; load average before: %s\n\n",
           g_seconds, loadavg());
    printf("  %-16s %8s %8s %8s %8s %7s %9s %9s  %-11s %5s\n", "user prompt", "plans", "p50 us",
           "p99 us", "cpu us", "on-cpu", "scan p50", "score p50", "first cand.", "score");
    static const size_t sizes[] = {200, 2048, 32768};
    for (size_t i = 0; i < 3; i++)
        bench_size(r, &ctx, sizes[i], 0, v, &prompt);
    for (size_t i = 0; i < 3; i++)
        bench_size(r, &ctx, sizes[i], 1, v, &prompt);
    printf("\n(p50/p99: wall clock per plan; cpu: thread CPU time per plan, mean; on-cpu: cpu / "
           "wall, low when the\n machine is busy; scan p50 / score p50: the PII scan of the "
           "texts and the complexity score alone,\n wall clock (with PII found the plan goes "
           "local without scoring); each prompt also has a 46-byte\n system message; load "
           "average now %s)\n", loadavg());

    free(v);
    pd_buf_free(&prompt);
    pd_pii_scanner_free(scanner);
    pd_pii_detector_free(det);
    pd_router_free(r);
    return 0;
}
