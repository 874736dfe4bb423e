/* main.c: the pendulum command line. Each subcommand is a function in the table below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "econ/calc.h"
#include "econ/report.h"
#include "pii/pii.h"
#include "router/from_config.h"
#include "server/server.h"
#include "upstream/client.h"

#define PENDULUM_VERSION "0.1.0"

static const char usage_main[] =
    "usage: pendulum <command> [options]\n"
    "\n"
    "Pendulum is a hybrid LLM inference gateway: clients speak the OpenAI API to it, and it\n"
    "forwards each request to a cloud API or a local model.\n"
    "\n"
    "commands:\n"
    "  serve       run the gateway (see pendulum serve --help)\n"
    "  cost        what a workload costs on APIs and self-hosted (pendulum cost --help)\n"
    "  prices      the model price table (pendulum prices --help)\n"
    "  route       the routing decision for a request, without sending it (--explain)\n"
    "  bench-local speed of the embedded engine on a GGUF model (pendulum bench-local --help)\n"
    "  report      what the traffic in the ledger cost (pendulum report --help)\n"
    "  pii         find or redact personal data and secrets in text (pendulum pii --help)\n"
    "\n"
    "options:\n"
    "  -h, --help  this text\n"
    "  --version   print the version\n";

static const char usage_serve[] =
    "usage: pendulum serve [--config FILE] [--listen HOST:PORT] [--workers N]\n"
    "\n"
    "Runs the gateway until SIGTERM or SIGINT (then drains in-flight requests).\n"
    "\n"
    "options:\n"
    "  --config FILE      YAML configuration (see docs/config.md). Without it, Pendulum\n"
    "                     configures itself from the providers' SDK environment variables\n"
    "                     (OPENAI_API_KEY, OPENAI_BASE_URL, ...) and says what it found.\n"
    "  --listen HOST:PORT address to listen on, overriding the config (e.g. 127.0.0.1:8080,\n"
    "                     [::1]:8080)\n"
    "  --workers N        worker threads (default: one per core)\n"
    "  -h, --help         this text\n";

/* Splits "HOST:PORT" or "[V6]:PORT". */
static int parse_listen(const char *s, char **host, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    *host = hlen ? pd_xstrndup(h, hlen) : pd_xstrdup("0.0.0.0");
    *port = (uint16_t)p;
    return 0;
}

static pd_config *load_config(const char *path)
{
    char msg[1024] = "";
    if (path) {
        pd_config *cfg = pd_config_load(path, msg, sizeof(msg));
        if (!cfg)
            fprintf(stderr, "pendulum: %s\n", msg);
        return cfg;
    }
    pd_config *cfg = pd_config_from_env(msg, sizeof(msg));
    if (cfg)
        pd_log_info("no --config: configured from the environment:\n%s", msg[0] ? msg : "  (nothing found)");
    return cfg;
}

static int cmd_serve(int argc, char **argv)
{
    const char *config_path = NULL, *listen = NULL;
    int workers = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_serve, stdout);
            return 0;
        } else if (!strcmp(a, "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(a, "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(a, "--workers") && i + 1 < argc) {
            workers = atoi(argv[++i]);
        } else {
            fprintf(stderr, "pendulum serve: unknown or incomplete option '%s'\n\n%s", a, usage_serve);
            return 2;
        }
    }
    pd_config *cfg = load_config(config_path);
    if (!cfg)
        return 1;
    if (listen) {
        free(cfg->listen_host);
        cfg->listen_host = NULL;
        if (parse_listen(listen, &cfg->listen_host, &cfg->listen_port) != 0) {
            fprintf(stderr, "pendulum serve: --listen wants HOST:PORT, not '%s'\n", listen);
            pd_config_free(cfg);
            return 2;
        }
    }
    if (workers >= 0)
        cfg->workers = workers;
    int rc = 1;
    if (pd_upstream_global_init() == PD_OK) {
        rc = pd_server_run(cfg);
        pd_upstream_global_cleanup();
    }
    pd_config_free(cfg);
    return rc;
}

int pd_bench_local_cli(int argc, char **argv); /* tools/bench_local.c */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"serve", cmd_serve},
    {"cost", pd_cost_cli},
    {"prices", pd_prices_cli},
    {"pii", pd_pii_cli},
    {"report", pd_report_cli},
    {"route", pd_route_cli},
    {"bench-local", pd_bench_local_cli},
};

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("pendulum %s\n", PENDULUM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "pendulum: unknown command '%s'\n\n%s", argv[1], usage_main);
    return 2;
}
