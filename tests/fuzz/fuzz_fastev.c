/* fuzz_fastev: differential fuzzing of the stream-event fast paths (proto/fastev.h). Arbitrary
 * bytes as an OpenAI chunk payload and as an Anthropic content_block_delta payload go through
 * each decoder twice, with and without its fast path; the result code, every field of every
 * canonical event, and the events re-encoded for both client dialects must be byte-identical
 * (tests/unit/fastev_diff.h), and the OpenAI encoder's fast writer must agree with its full
 * one. The input is also cut at each 0x1e byte (ASCII record separator, which no valid payload
 * holds outside an escape) into payloads that go one after another through one decoder, so
 * that the memo of the bytes around the last text (taken on one payload, used on the next) is
 * fuzzed too. Seeds in tests/fuzz/corpus/fuzz_fastev/ are the common shapes and sequences of
 * them, so that mutations stay near the fast paths. Any difference aborts. */
#include <stdint.h>
#include <stdlib.h>

#include "../unit/fastev_diff.h"

#define MAX_PAYLOADS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *part[MAX_PAYLOADS];
    size_t len[MAX_PAYLOADS], n = 0, start = 0;
    pd_buf fast, full;
    pd_buf_init(&fast, 0);
    pd_buf_init(&full, 0);
    if (!diff_payload(in, size, &fast, &full))
        abort();
    for (size_t i = 0; i <= size && n < MAX_PAYLOADS; i++) {
        if (i == size || in[i] == 0x1e) {
            part[n] = in + start;
            len[n++] = i - start;
            start = i + 1;
        }
    }
    if (n > 1) {
        pd_buf_reset(&fast);
        pd_buf_reset(&full);
        if (!diff_sequence(part, len, n, &fast, &full))
            abort();
    }
    pd_buf_free(&fast);
    pd_buf_free(&full);
    return 0;
}
