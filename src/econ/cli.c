/* cli.c: `pendulum cost` and `pendulum prices`.
 *
 * Every assumption of the calculator is a flag. The flags are a table (name, kind, the
 * pd_calc_params field they set, help), so parsing and --help (with the defaults read from
 * pd_calc_default_params) cannot drift apart. Bounds are checked by pd_calc_run, once. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "econ/calc.h"
#include "econ/prices.h"

#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))

typedef enum opt_kind { OPT_INT, OPT_NUM, OPT_FLAG, OPT_STR, OPT_LIST } opt_kind;

typedef struct opt {
    const char *name;
    opt_kind kind;
    size_t offset; /* of the field in pd_calc_params */
    const char *arg;
    const char *help;
} opt;

#define F(field) offsetof(pd_calc_params, field)

static const opt cost_opts[] = {
    {"--requests", OPT_INT, F(requests), "N", "requests per month"},
    {"--input-tokens", OPT_INT, F(input_tokens), "N", "input tokens per request"},
    {"--output-tokens", OPT_INT, F(output_tokens), "N", "output tokens per request"},
    {"--cached-fraction", OPT_NUM, F(cached_fraction), "F",
     "share of input tokens read from a prompt cache, 0 .. 1"},
    {"--api", OPT_LIST, F(apis), "M1,M2", "API models to compare (pendulum prices lists them)"},
    {"--hardware-usd-per-hour", OPT_NUM, F(local.hardware_usd_per_hour), "USD",
     "one self-hosted instance (AWS g5.xlarge, one A10G, on demand)"},
    {"--hours-per-month", OPT_NUM, F(local.hours_per_month), "H", "hours billed per month"},
    {"--requests-per-hour-per-instance", OPT_NUM, F(local.requests_per_hour), "N",
     "throughput of one instance"},
    {"--ops-hours", OPT_NUM, F(local.ops_hours_per_month), "H",
     "engineer hours per month in the first year"},
    {"--steady-ops-hours", OPT_NUM, F(local.steady_ops_hours_per_month), "H",
     "engineer hours per month after the first year"},
    {"--ops-usd-per-hour", OPT_NUM, F(local.ops_usd_per_hour), "USD", "cost of an engineer hour"},
    {"--local-label", OPT_STR, F(local_label), "TEXT", "what the self-hosted option runs"},
    {"--private-data", OPT_FLAG, F(private_data), NULL, "data must not leave the network"},
    {"--latency-target-ms", OPT_INT, F(latency_target_ms), "N", "latency target; 0 means none"},
    {"--latency-threshold-ms", OPT_INT, F(latency_threshold_ms), "N",
     "a target under this needs a local model"},
    {"--spend-threshold-usd", OPT_NUM, F(spend_threshold_usd), "USD",
     "monthly API spend above which self-hosting is worth weighing"},
    {"--frontier-quality", OPT_FLAG, F(frontier_quality), NULL, "frontier-model quality needed"},
    {"--multimodal", OPT_FLAG, F(multimodal), NULL, "image or audio input needed"},
    {"--no-infra-team", OPT_FLAG, F(no_infra_team), NULL,
     "the team has no infrastructure experience"},
};
#define N_COST_OPTS (sizeof(cost_opts) / sizeof(cost_opts[0]))

/* ---- help ------------------------------------------------------------------------------ */

static void print_default(const pd_calc_params *d, const opt *o)
{
    const char *base = (const char *)d + o->offset;
    switch (o->kind) {
    case OPT_INT: printf(" (%lld)", (long long)*(const int64_t *)base); break;
    case OPT_NUM: printf(" (%.10g)", *(const double *)base); break;
    case OPT_STR: printf(" (%s)", *(const char *const *)base); break;
    case OPT_LIST:
        for (size_t i = 0; i < d->n_apis; i++)
            printf("%s%s", i ? "," : " (", d->apis[i]);
        printf(")");
        break;
    case OPT_FLAG: break;
    }
}

static void cost_usage(void)
{
    pd_calc_params d;
    pd_calc_default_params(&d);
    printf("usage: pendulum cost [options] [--json]\n\n"
           "What a monthly workload costs on each API and self-hosted, where they cross, and\n"
           "what the decision tree recommends (docs/economics.md). Defaults in parentheses\n"
           "are the worked example.\n\noptions:\n");
    for (size_t i = 0; i < N_COST_OPTS; i++) {
        const opt *o = &cost_opts[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-38s %s", left, o->help);
        print_default(&d, o);
        printf("\n");
    }
    printf("  %-38s %s\n  %-38s %s\n", "--json", "print JSON instead of text", "-h, --help",
           "this text");
}

/* ---- parsing --------------------------------------------------------------------------- */

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Splits "a,b,c" in place into p->apis; the string must outlive p. */
static int parse_list(char *s, pd_calc_params *p)
{
    char *item;
    p->n_apis = 0;
    while ((item = strsep(&s, ",")) != NULL) {
        if (!*item || p->n_apis == PD_CALC_MAX_APIS)
            return -1;
        p->apis[p->n_apis++] = item;
    }
    return 0;
}

static const opt *find_opt(const char *name)
{
    for (size_t i = 0; i < N_COST_OPTS; i++)
        if (!strcmp(cost_opts[i].name, name))
            return &cost_opts[i];
    return NULL;
}

/* Sets one option's field from its value (NULL for flags). *list_copy owns the --api text. */
static int set_opt(const opt *o, const char *value, pd_calc_params *p, char **list_copy)
{
    char *base = (char *)p + o->offset;
    switch (o->kind) {
    case OPT_INT: return parse_int(value, (int64_t *)base);
    case OPT_NUM: return parse_num(value, (double *)base);
    case OPT_FLAG: *(bool *)base = true; return 0;
    case OPT_STR: *(const char **)base = value; return 0;
    case OPT_LIST:
        free(*list_copy);
        *list_copy = pd_xstrdup(value);
        return parse_list(*list_copy, p);
    }
    return -1;
}

/* 0 parsed, 1 help printed, 2 bad option (message printed). */
static int parse_cost_args(int argc, char **argv, pd_calc_params *p, bool *json, char **list_copy)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cost_usage();
            return 1;
        }
        if (!strcmp(a, "--json")) {
            *json = true;
            continue;
        }
        const opt *o = find_opt(a);
        if (!o || (o->kind != OPT_FLAG && i + 1 >= argc)) {
            fprintf(stderr, "pendulum cost: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
        const char *value = o->kind == OPT_FLAG ? NULL : argv[++i];
        if (set_opt(o, value, p, list_copy) != 0) {
            fprintf(stderr, "pendulum cost: %s: bad value '%s'\n", a, value ? value : "");
            return 2;
        }
    }
    return 0;
}

static int print_report(const pd_calc_params *p, const pd_calc_result *r, bool json)
{
    if (json) {
        json_t *root = pd_calc_json(p, r);
        int rc = root ? json_dumpf(root, stdout, JSON_FLAGS) : -1;
        json_decref(root);
        printf("\n");
        return rc == 0 ? 0 : 1;
    }
    pd_buf b;
    pd_buf_init(&b, 0);
    int rc = pd_calc_text(p, r, &b) == PD_OK ? 0 : 1;
    if (b.data)
        fputs(b.data, stdout);
    pd_buf_free(&b);
    return rc;
}

int pd_cost_cli(int argc, char **argv)
{
    pd_calc_params p;
    pd_calc_default_params(&p);
    bool json = false;
    char *list_copy = NULL;
    pd_calc_result r;
    char msg[256];
    int rc = parse_cost_args(argc, argv, &p, &json, &list_copy);
    if (rc) {
        rc = rc == 1 ? 0 : rc;
        goto out;
    }
    if (pd_calc_run(&p, NULL, &r, msg, sizeof msg) != PD_OK) {
        fprintf(stderr, "pendulum cost: %s\n", msg);
        rc = 2;
        goto out;
    }
    rc = print_report(&p, &r, json);
out:
    free(list_copy);
    return rc;
}

/* ---- pendulum prices ------------------------------------------------------------------- */

static const char prices_usage[] =
    "usage: pendulum prices [--json] [MODEL...]\n"
    "\n"
    "Lists the built-in price table (USD per million tokens), or shows how each MODEL name is\n"
    "priced: an exact table name, or a table name followed by a snapshot date\n"
    "(gpt-4o-2024-08-06, claude-sonnet-4-20250514, claude-sonnet-4-0). A cache price shown as\n"
    "'-' means those tokens are billed at the input price. Config can override any model.\n"
    "Exit status 1 when a MODEL has no price.\n";

/* "2.50", "0.075", "0.0375": at least two decimals, more when the price has them. */
static void fmt_price(char *out, size_t outlen, double v)
{
    if (v == PD_PRICE_NONE) {
        snprintf(out, outlen, "-");
        return;
    }
    snprintf(out, outlen, "%.6f", v);
    char *dot = strchr(out, '.');
    char *end = out + strlen(out) - 1;
    while (dot && end > dot + 2 && *end == '0')
        *end-- = '\0';
}

static void print_price_row(const pd_price *pr, const char *asked)
{
    char in[24], outp[24], cr[24], cw[24], name[96];
    fmt_price(in, sizeof in, pr->input);
    fmt_price(outp, sizeof outp, pr->output);
    fmt_price(cr, sizeof cr, pr->cache_read);
    fmt_price(cw, sizeof cw, pr->cache_write);
    if (asked && strcmp(asked, pr->model))
        snprintf(name, sizeof name, "%s -> %s", asked, pr->model);
    else
        snprintf(name, sizeof name, "%s", pr->model);
    printf("%-26s %8s %8s %10s %11s  %s\n", name, in, outp, cr, cw, pr->note ? pr->note : "");
}

static json_t *price_or_null(double v)
{
    return v == PD_PRICE_NONE ? json_null() : json_real(v);
}

static json_t *price_json(const pd_price *pr)
{
    return json_pack("{s:s, s:f, s:f, s:o, s:o, s:o}", "model", pr->model, "input", pr->input,
                     "output", pr->output, "cache_read", price_or_null(pr->cache_read),
                     "cache_write", price_or_null(pr->cache_write), "note",
                     pr->note ? json_string(pr->note) : json_null());
}

/* Looks each name up; prints a row or "unknown". Returns how many had no price. */
static int lookup_names(char **names, int n, json_t *list)
{
    int unknown = 0;
    for (int i = 0; i < n; i++) {
        pd_price pr;
        bool known = pd_prices_lookup(NULL, names[i], &pr) == PD_OK;
        unknown += !known;
        if (list) {
            json_t *o = known ? price_json(&pr) : json_object();
            json_object_set_new(o, "name", json_string(names[i]));
            json_object_set_new(o, "known", json_boolean(known));
            json_array_append_new(list, o);
        } else if (known) {
            print_price_row(&pr, names[i]);
        } else {
            printf("%-26s unknown: no price (its requests are recorded with cost unknown)\n",
                   names[i]);
        }
    }
    return unknown;
}

static void list_table(json_t *list)
{
    for (size_t i = 0; i < pd_prices_count(NULL); i++) {
        const pd_price *pr = pd_prices_at(NULL, i);
        if (list)
            json_array_append_new(list, price_json(pr));
        else
            print_price_row(pr, NULL);
    }
}

static void print_table_header(void)
{
    printf("USD per million tokens, as of %s\n%-26s %8s %8s %10s %11s  %s\n", pd_prices_as_of(),
           "model", "input", "output", "cache read", "cache write", "note");
}

static void print_prices_json(json_t *list)
{
    json_t *root = json_pack("{s:s, s:s, s:o}", "as_of", pd_prices_as_of(), "unit",
                             "USD per million tokens", "models", list);
    json_dumpf(root, stdout, JSON_FLAGS);
    printf("\n");
    json_decref(root);
}

int pd_prices_cli(int argc, char **argv)
{
    bool json = false;
    char **names = pd_xcalloc((size_t)argc, sizeof *names);
    int n = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(prices_usage, stdout);
            goto out;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "pendulum prices: unknown option '%s'\n\n%s", argv[i], prices_usage);
            rc = 2;
            goto out;
        } else {
            names[n++] = argv[i];
        }
    }
    json_t *list = json ? json_array() : NULL;
    if (!json)
        print_table_header();
    if (n > 0)
        rc = lookup_names(names, n, list) ? 1 : 0;
    else
        list_table(list);
    if (json)
        print_prices_json(list);
out:
    free(names);
    return rc;
}
