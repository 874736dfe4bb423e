/* cli.c: `pendulum pii scan [--redact] [--json] [--threshold TYPE=X]...`
 *
 * Reads all of stdin (up to the detector's max_input), scans it once and prints:
 *   (plain)            one line per finding: TYPE<TAB>start<TAB>end<TAB>score<TAB>validator
 *   --redact           the redacted text (placeholders <EMAIL_1>, ...), nothing else
 *   --json             {"findings":[{"type":"EMAIL","start":12,"end":29,"score":1.0},...]}
 *   --redact --json    the same object with "redacted":"..." added
 * Offsets are bytes into the input; findings are sorted by start. JSON strings must be UTF-8, so
 * in "redacted" each byte of an invalid UTF-8 sequence is written as U+FFFD. */
#include "pii/pii.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: pendulum pii scan [--redact] [--json] [--threshold TYPE=X]...\n"
    "  Scans stdin for PII and secrets.\n"
    "  --redact          print the text with typed placeholders (<EMAIL_1>) instead\n"
    "  --json            print {\"findings\":[...]} (and \"redacted\" with --redact)\n"
    "  --threshold T=X   keep findings of type T (EMAIL, PHONE, ...) scoring >= X (default 0.5);\n"
    "                    X > 1 disables the type\n";

typedef struct options {
    int redact, json;
    pd_pii_params params;
} options;

static int parse_threshold(const char *arg, pd_pii_params *p)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return -1;
    int t = pd_pii_type_from_name(arg, (size_t)(eq - arg));
    char *end;
    double x = strtod(eq + 1, &end);
    if (t < 0 || end == eq + 1 || *end || !(x >= 0 && x <= 2))
        return -1;
    p->threshold[t] = (float)x;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    o->redact = o->json = 0;
    o->params = pd_pii_default_params();
    if (argc < 2 || strcmp(argv[1], "scan") != 0)
        return -1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--redact")) {
            o->redact = 1;
        } else if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
            if (parse_threshold(argv[++i], &o->params))
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static pd_result read_all(FILE *f, pd_buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (pd_buf_append(b, chunk, n))
            return PD_ERR_TOO_LARGE;
    return ferror(f) ? PD_ERR_IO : PD_OK;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80                    ? 1
               : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
               : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                              : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return k;
}

static json_t *utf8_string(const char *s, size_t n)
{
    pd_buf b;
    pd_buf_init(&b, 0);
    pd_buf_append(&b, "", 0);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (k) {
            pd_buf_append(&b, s + i, k);
            i += k;
        } else {
            pd_buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    json_t *j = json_stringn(b.data, b.len);
    pd_buf_free(&b);
    return j;
}

static int print_json(const pd_pii_finding *f, size_t n, const pd_buf *redacted)
{
    json_t *root = json_object(), *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(pd_pii_type_name(f[i].type)));
        json_object_set_new(o, "start", json_integer((json_int_t)f[i].start));
        json_object_set_new(o, "end", json_integer((json_int_t)f[i].end));
        json_object_set_new(o, "score", json_real(round(f[i].score * 100.0) / 100.0));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "findings", arr);
    if (redacted)
        json_object_set_new(root, "redacted", utf8_string(redacted->data, redacted->len));
    int rc = json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(root);
    return rc == 0 && fputc('\n', stdout) != EOF ? 0 : -1;
}

static int print_plain(const pd_pii_finding *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (printf("%s\t%zu\t%zu\t%.2f\t%s\n", pd_pii_type_name(f[i].type), f[i].start, f[i].end,
                   (double)f[i].score, f[i].validator) < 0)
            return -1;
    return 0;
}

static int run(const options *o, const pd_buf *in)
{
    pd_pii_detector *d = NULL;
    pd_pii_scanner *s = NULL;
    pd_pii_vault *v = NULL;
    pd_buf red;
    pd_buf_init(&red, 0);
    pd_buf_append(&red, "", 0);
    const pd_pii_finding *f;
    size_t n;
    int status = 1;
    pd_result rc = pd_pii_detector_new(&o->params, &d);
    if (!rc)
        rc = pd_pii_scanner_new(d, &s);
    if (!rc)
        rc = pd_pii_scan(s, in->data, in->len, &f, &n);
    if (!rc && o->redact) {
        v = pd_pii_vault_new(0, 0);
        rc = pd_pii_redact(v, in->data, in->len, f, n, &red);
    }
    if (rc) {
        fprintf(stderr, "pendulum pii: %s\n", pd_result_str(rc));
        goto out;
    }
    int w = o->json     ? print_json(f, n, o->redact ? &red : NULL)
            : o->redact ? (fwrite(red.data, 1, red.len, stdout) == red.len ? 0 : -1)
                        : print_plain(f, n);
    status = (w == 0 && fflush(stdout) == 0) ? 0 : 1;
out:
    pd_buf_free(&red);
    pd_pii_vault_free(v);
    pd_pii_scanner_free(s);
    pd_pii_detector_free(d);
    return status;
}

int pd_pii_cli(int argc, char **argv)
{
    options o;
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (parse_args(argc, argv, &o)) {
        fputs(usage, stderr);
        return 2;
    }
    pd_buf in;
    pd_buf_init(&in, o.params.max_input);
    pd_buf_append(&in, "", 0);
    pd_result rc = read_all(stdin, &in);
    int status;
    if (rc) {
        fprintf(stderr, "pendulum pii: reading stdin: %s (limit %zu bytes)\n", pd_result_str(rc),
                o.params.max_input);
        status = 1;
    } else {
        status = run(&o, &in);
    }
    pd_buf_free(&in);
    return status;
}
