#include "canon/embed.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

void pd_embed_request_init(pd_embed_request *r)
{
    memset(r, 0, sizeof *r);
}

void pd_embed_request_free(pd_embed_request *r)
{
    if (!r)
        return;
    free(r->model);
    for (size_t i = 0; i < r->n_inputs; i++)
        free(r->inputs[i]);
    free(r->inputs);
    free(r->user);
    free(r->input_type);
    json_decref(r->raw);
    pd_embed_request_init(r);
}

void pd_embed_response_init(pd_embed_response *r)
{
    memset(r, 0, sizeof *r);
    r->prompt_tokens = PD_EMBED_COUNT_UNKNOWN;
    r->total_tokens = PD_EMBED_COUNT_UNKNOWN;
}

void pd_embed_response_free(pd_embed_response *r)
{
    if (!r)
        return;
    free(r->model);
    for (size_t i = 0; i < r->n_vectors; i++)
        free(r->vectors[i].values);
    free(r->vectors);
    pd_embed_response_init(r);
}

bool pd_embed_vector_from_json(const json_t *array, pd_embed_vector *out)
{
    if (!json_is_array(array))
        return false;
    size_t n = json_array_size(array);
    float *v = pd_xmalloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(array, i);
        double d = json_number_value(x);
        /* below FLT_MAX + half an ulp a value rounds to a finite float (3.4028235e+38, as
           float printers write FLT_MAX, must pass); beyond it would be infinite */
        if (!json_is_number(x) || !isfinite(d) || fabs(d) >= (double)FLT_MAX + ldexp(1.0, 103)) {
            free(v);
            return false;
        }
        v[i] = (float)d;
    }
    out->values = v;
    out->n = n;
    return true;
}
