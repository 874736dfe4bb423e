/* fuzz_fastev: differential fuzzing of the stream-event fast paths (proto/fastev.h). Arbitrary
 * bytes as an OpenAI chunk payload and as an Anthropic content_block_delta payload go through
 * each decoder twice, with and without its fast path; the result code, every field of every
 * canonical event, and the events re-encoded for both client dialects must be byte-identical
 * (tests/unit/fastev_diff.h), and the OpenAI encoder's fast writer must agree with its full
 * one. Seeds in tests/fuzz/corpus/fuzz_fastev/ are the common shapes, so that mutations stay
 * near the fast paths. Any difference aborts. */
#include <stdint.h>
#include <stdlib.h>

#include "../unit/fastev_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pd_buf fast, full;
    pd_buf_init(&fast, 0);
    pd_buf_init(&full, 0);
    if (!diff_payload((const char *)data, size, &fast, &full))
        abort();
    pd_buf_free(&fast);
    pd_buf_free(&full);
    return 0;
}
