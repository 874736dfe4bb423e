/* cli.c: `pendulum route --config FILE --explain [--compliance TAGS] < request.json`: the routing
 * decision for a chat request, without calling any upstream (what POST /v1/route/explain says). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "pii/pii.h"
#include "proto/openai.h"
#include "router/from_config.h"

static const char usage[] =
    "usage: pendulum route --config FILE --explain [--compliance TAGS] < request.json\n"
    "  Reads an OpenAI chat completions request on stdin and prints the routing decision as\n"
    "  JSON (the same as POST /v1/route/explain): candidates in order, score, PII types found,\n"
    "  reasons. Nothing is sent upstream.\n";

static int read_stdin(pd_buf *in)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (pd_buf_append(in, chunk, n) != PD_OK)
            return -1;
    return ferror(stdin) ? -1 : 0;
}

static int explain(const pd_config *cfg, const char *tags, const pd_buf *in)
{
    char err[512] = "";
    pd_router *router = NULL;
    pd_pii_detector *pii = NULL;
    pd_pii_scanner *scanner = NULL;
    pd_pii_params pp = pd_pii_default_params();
    pd_chat_request req;
    pd_api_error e;
    pd_buf out;
    int rc = 1;
    pd_chat_request_init(&req);
    pd_buf_init(&out, 0);
    if (pd_router_from_config(cfg, &router, err, sizeof(err)) != PD_OK ||
        pd_pii_detector_new(&pp, &pii) != PD_OK || pd_pii_scanner_new(pii, &scanner) != PD_OK) {
        fprintf(stderr, "pendulum route: %s\n", err[0] ? err : "cannot build the PII detector");
        goto out;
    }
    pd_route_ctx ctx = {.scanner = scanner};
    if (tags && pd_route_compliance_parse(tags, &ctx.compliance, err, sizeof(err)) != PD_OK) {
        fprintf(stderr, "pendulum route: --compliance: %s\n", err);
        goto out;
    }
    if (pd_openai_parse_chat_request(in->data ? in->data : "", in->len, &req, &e) != PD_OK) {
        fprintf(stderr, "pendulum route: request: %s\n", e.message);
        goto out;
    }
    pd_route_plan plan;
    if (pd_router_plan(router, req.model, &req, &ctx, &plan, &e) != PD_OK) {
        fprintf(stderr, "pendulum route: %d %s: %s\n", e.status, e.code ? e.code : "", e.message);
        goto out;
    }
    if (pd_route_plan_explain(&plan, &out) == PD_OK) {
        printf("%.*s\n", (int)out.len, out.data);
        rc = 0;
    }
out:
    pd_chat_request_free(&req);
    pd_buf_free(&out);
    pd_pii_scanner_free(scanner);
    pd_pii_detector_free(pii);
    pd_router_free(router);
    return rc;
}

int pd_route_cli(int argc, char **argv)
{
    const char *config = NULL, *tags = NULL;
    int want = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--compliance") && i + 1 < argc)
            tags = argv[++i];
        else if (!strcmp(argv[i], "--explain"))
            want = 1;
        else {
            fputs(usage, strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? stderr : stdout);
            return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
        }
    }
    if (!config || !want) {
        fputs(usage, stderr);
        return 2;
    }
    char err[1024];
    pd_config *cfg = pd_config_load(config, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "pendulum route: %s\n", err);
        return 1;
    }
    pd_buf in;
    pd_buf_init(&in, 64u << 20);
    int rc = read_stdin(&in) == 0 ? explain(cfg, tags, &in) : 1;
    pd_buf_free(&in);
    pd_config_free(cfg);
    return rc;
}
