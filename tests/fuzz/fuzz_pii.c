/* fuzz_pii: arbitrary bytes through the PII scanner, redaction and restore.
 *
 * Checks, for every input x (the first two bytes choose two split points, the rest is x):
 *   - findings are inside x, sorted, not overlapping, of a known type, scored in [0,1];
 *   - restore(redact(x)) == x, byte for byte;
 *   - restoring the redacted text, or x itself, in three chunks split anywhere gives exactly
 *     what restoring it whole gives. */
#include "pii/pii.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pd_pii_detector *det;
static pd_pii_scanner *sc;

static void check_findings(const pd_pii_finding *f, size_t n, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)f[i].type >= PD_PII_TYPE_COUNT || f[i].start >= f[i].end || f[i].end > len ||
            !(f[i].score >= 0.0f && f[i].score <= 1.0f) || !f[i].validator)
            abort();
        if (i > 0 && f[i].start < f[i - 1].end)
            abort();
    }
}

/* Restores text in three chunks and compares with the whole-text restore. */
static void check_stream(const pd_pii_vault *v, const char *t, size_t len, size_t a, size_t b)
{
    pd_buf whole, part;
    pd_buf_init(&whole, 0);
    pd_buf_init(&part, 0);
    pd_buf_append(&whole, "", 0);
    pd_buf_append(&part, "", 0);
    if (a > len)
        a = len;
    if (b < a || b > len)
        b = len;
    pd_pii_restorer r;
    pd_pii_restorer_init(&r);
    if (pd_pii_restore(v, t, len, &whole) || pd_pii_restorer_feed(&r, v, t, a, &part) ||
        pd_pii_restorer_feed(&r, v, t + a, b - a, &part) ||
        pd_pii_restorer_feed(&r, v, t + b, len - b, &part) || pd_pii_restorer_finish(&r, &part))
        abort();
    if (whole.len != part.len || memcmp(whole.data, part.data, whole.len) != 0)
        abort();
    pd_buf_free(&whole);
    pd_buf_free(&part);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!det && (pd_pii_detector_new(NULL, &det) || pd_pii_scanner_new(det, &sc)))
        abort();
    if (size < 2)
        return 0;
    size_t a = data[0], b = (size_t)data[0] + data[1];
    const char *x = (const char *)data + 2;
    size_t len = size - 2;

    const pd_pii_finding *f;
    size_t n;
    if (pd_pii_scan(sc, x, len, &f, &n) != PD_OK)
        abort();
    check_findings(f, n, len);

    pd_pii_vault *v = pd_pii_vault_new(0, 0);
    pd_buf red, back;
    pd_buf_init(&red, 0);
    pd_buf_init(&back, 0);
    pd_buf_append(&red, "", 0);
    pd_buf_append(&back, "", 0);
    if (pd_pii_redact(v, x, len, f, n, &red) || pd_pii_restore(v, red.data, red.len, &back))
        abort();
    if (back.len != len || memcmp(back.data, x, len) != 0)
        abort();
    check_stream(v, red.data, red.len, a, b);
    check_stream(v, x, len, a, b);
    pd_buf_free(&red);
    pd_buf_free(&back);
    pd_pii_vault_free(v);
    return 0;
}
