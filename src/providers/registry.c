/* registry.c: provider kinds -> their tables, and what every provider shares. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "providers/provider.h"

extern const pd_provider_ops pd_provider_openai;
extern const pd_provider_ops pd_provider_anthropic;
extern const pd_provider_ops pd_provider_cohere;
extern const pd_provider_ops pd_provider_ollama;

const pd_provider_ops *pd_provider_ops_of(pd_provider_kind kind)
{
    switch (kind) {
    case PD_KIND_OPENAI: return &pd_provider_openai;
    case PD_KIND_ANTHROPIC: return &pd_provider_anthropic;
    case PD_KIND_COHERE: return &pd_provider_cohere;
    case PD_KIND_OLLAMA: return &pd_provider_ollama;
    case PD_KIND_LLAMA: return NULL;
    }
    return NULL;
}

pd_result pd_provider_http(const pd_provider_cfg *p, const char *path, const char *header1,
                           const char *header2, int stream, pd_transfer_req *out)
{
    size_t n = strlen(p->base_url) + strlen(path) + 1;
    char *url = pd_xmalloc(n);
    snprintf(url, n, "%s%s", p->base_url, path);
    struct curl_slist *h = NULL, *next;
    const char *lines[] = {"Content-Type: application/json",
                           stream ? "Accept: text/event-stream" : "Accept: application/json",
                           header1, header2};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (!lines[i])
            continue;
        if (!(next = curl_slist_append(h, lines[i]))) {
            curl_slist_free_all(h);
            free(url);
            return PD_ERR_NOMEM;
        }
        h = next;
    }
    out->url = url;
    out->headers = h;
    out->timeouts = p->timeouts;
    return PD_OK;
}
