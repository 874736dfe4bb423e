/* fuzz_jsonr: differential fuzzing of the request JSON reader (proto/jsonr.h) against jansson's
 * json_loadb with the request parsers' flags: the same texts accepted, the same values read,
 * the same bytes written by both writers (tests/unit/jsonr_diff.h). Seeds in
 * tests/fuzz/corpus/fuzz_jsonr/ are request bodies and the edge cases of the header. Any
 * difference aborts. */
#include <stdint.h>
#include <stdlib.h>

#include "../unit/jsonr_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!jsonr_agrees((const char *)data, size))
        abort();
    return 0;
}
