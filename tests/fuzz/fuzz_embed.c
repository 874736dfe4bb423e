/* fuzz_embed: arbitrary bytes as an OpenAI /v1/embeddings request and as an upstream's
   embeddings answer. No crash, no leak; an accepted request re-written for an upstream must
   parse again as a request for the same number of inputs. */
#include <stdint.h>
#include <stdlib.h>

#include "canon/embed.h"
#include "proto/embed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    pd_embed_request req;
    pd_api_error err;
    if (pd_embed_parse_openai_request(body, size, &req, &err) == PD_OK) {
        pd_buf out;
        pd_buf_init(&out, 0);
        if (pd_embed_write_openai_request(&req, "m", &out) == PD_OK) {
            pd_embed_request again;
            if (pd_embed_parse_openai_request(out.data, out.len, &again, &err) != PD_OK ||
                again.n_inputs != req.n_inputs)
                abort();
            pd_embed_request_free(&again);
        }
        pd_buf_free(&out);
        pd_embed_request_free(&req);
    }
    pd_embed_response resp;
    pd_embed_response_init(&resp);
    if (pd_embed_parse_openai_response(body, size, &resp) == PD_OK) {
        pd_buf out;
        pd_buf_init(&out, 0);
        (void)pd_embed_write_openai_response(&resp, PD_EMBED_FLOAT, "m", &out); /* must not crash */
        pd_buf_free(&out);
    }
    pd_embed_response_free(&resp);
    return 0;
}
