/* engine_client.c: the HTTP client of bench/engine. One measurement per run, against any
 * OpenAI-compatible server (Pendulum with kind llama, or llama-server), so that both sides are
 * timed by the same code.
 *
 *   engine_client URL MODEL gen N MAX_TOKENS TAG   N concurrent streams of MAX_TOKENS tokens
 *   engine_client URL MODEL ttft PROMPT_TOKENS TAG [WORDS]
 *                                one stream of 1 token after a prompt of PROMPT_TOKENS tokens:
 *                                WORDS words, or, without WORDS, as many as a calibration
 *                                request (sent first) shows are needed
 *
 * Every request is a streamed /v1/chat/completions, greedy (temperature 0), with
 * stream_options.include_usage; TAG makes the prompts unique so that neither server reuses a
 * cached prefix from an earlier measurement. Prints one line of key=value pairs:
 *   gen:  tokens (completion tokens summed over the streams, from usage), wall_s (first request
 *         sent to last stream ended), agg_tps (tokens / wall_s), stream_tps (median over the
 *         streams of (n - 1) / (last content chunk - first content chunk)), length (streams
 *         that ended with finish_reason length), prompt_tokens (of stream 0);
 *   ttft: prompt_tokens (as the server counted them), ttft_s (request sent to the first chunk
 *         with content or a finish_reason), words (to pass as WORDS next time).
 * Exit status: 0 done, 1 a request failed, 2 usage error. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STREAMS 64
#define MAX_LINE (1u << 20)

typedef struct stream {
    const char *url;
    char *body;
    /* SSE line assembly */
    char *line;
    size_t line_len;
    /* what was seen */
    double t_start, t_first, t_last; /* seconds, CLOCK_MONOTONIC; 0 = not yet */
    long completion_tokens, prompt_tokens, content_chunks;
    char finish[32];
    int failed;
    long status;
} stream;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One "data: {...}" payload: timestamps and counts. */
static void on_data(stream *s, const char *data, size_t len)
{
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
        return;
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j) {
        s->failed = 1;
        return;
    }
    double t = now_s();
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    const char *content =
        json_string_value(json_object_get(json_object_get(c, "delta"), "content"));
    const char *fr = json_string_value(json_object_get(c, "finish_reason"));
    if ((content && *content) || fr) {
        if (!s->t_first)
            s->t_first = t;
        if (content && *content) {
            s->t_last = t;
            s->content_chunks++;
        }
    }
    if (fr)
        snprintf(s->finish, sizeof s->finish, "%s", fr);
    json_t *u = json_object_get(j, "usage");
    if (json_is_object(u)) {
        s->completion_tokens = (long)json_integer_value(json_object_get(u, "completion_tokens"));
        s->prompt_tokens = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
    }
    if (json_object_get(j, "error"))
        s->failed = 1;
    json_decref(j);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    stream *s = ud;
    size_t len = sz * n;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            if (s->line_len + 1 >= MAX_LINE)
                return 0; /* a line this long is not a chunk: fail the transfer */
            s->line[s->line_len++] = p[i];
            continue;
        }
        if (s->line_len > 0 && s->line[s->line_len - 1] == '\r')
            s->line_len--;
        if (s->line_len > 6 && memcmp(s->line, "data: ", 6) == 0)
            on_data(s, s->line + 6, s->line_len - 6);
        else if (s->line_len > 5 && memcmp(s->line, "data:", 5) == 0)
            on_data(s, s->line + 5, s->line_len - 5);
        s->line_len = 0;
    }
    return len;
}

static void *run_stream(void *arg)
{
    stream *s = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "content-type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    s->t_start = now_s();
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->status);
    if (rc != CURLE_OK || s->status != 200) {
        fprintf(stderr, "engine_client: %s: %s, status %ld\n", s->url, curl_easy_strerror(rc),
                s->status);
        s->failed = 1;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static char *request_body(const char *model, const char *prompt, int max_tokens)
{
    json_t *b = json_pack("{s:s, s:[{s:s, s:s}], s:i, s:f, s:b, s:{s:b}}", "model", model,
                          "messages", "role", "user", "content", prompt, "max_tokens", max_tokens,
                          "temperature", 0.0, "stream", 1, "stream_options", "include_usage", 1);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

static void stream_init(stream *s, const char *url, char *body)
{
    memset(s, 0, sizeof *s);
    s->url = url;
    s->body = body;
    s->line = malloc(MAX_LINE);
    if (!s->line)
        abort();
}

static void stream_free(stream *s)
{
    free(s->body);
    free(s->line);
}

/* Runs n streams concurrently; returns 0 when every one succeeded. */
static int run_all(stream *st, int n)
{
    pthread_t th[MAX_STREAMS];
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, run_stream, &st[i]) != 0)
            return 1;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        failed |= st[i].failed;
    }
    return failed;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int gen(const char *url, const char *model, int n, int max_tokens, const char *tag)
{
    static const char *topics[] = {"the sea",   "a mountain", "a city",   "the moon",
                                   "a library", "a robot",    "a garden", "a train"};
    stream st[MAX_STREAMS];
    for (int i = 0; i < n; i++) {
        char prompt[256];
        snprintf(prompt, sizeof prompt, "%s/%d: write a long story about %s.", tag, i,
                 topics[i % 8]);
        stream_init(&st[i], url, request_body(model, prompt, max_tokens));
    }
    double t0 = now_s();
    int rc = run_all(st, n);
    double t_end = 0, rates[MAX_STREAMS];
    long tokens = 0, length = 0;
    for (int i = 0; i < n; i++) {
        long k = st[i].completion_tokens ? st[i].completion_tokens : st[i].content_chunks;
        tokens += k;
        length += strcmp(st[i].finish, "length") == 0;
        double span = st[i].t_last - st[i].t_first;
        rates[i] = k > 1 && span > 0 ? (double)(k - 1) / span : 0;
        if (st[i].t_last > t_end)
            t_end = st[i].t_last;
    }
    qsort(rates, (size_t)n, sizeof *rates, cmp_double);
    double wall = t_end - t0;
    printf("tokens=%ld wall_s=%.4f agg_tps=%.3f stream_tps=%.3f length=%ld prompt_tokens=%ld\n",
           tokens, wall, wall > 0 ? (double)tokens / wall : 0, rates[n / 2], length,
           st[0].prompt_tokens);
    for (int i = 0; i < n; i++)
        stream_free(&st[i]);
    return rc;
}

/* A prompt of "LEAD TAG:" and `words` times " the" (one token per word with the llama-bpe
   vocab). LEAD is one letter: the calibration and the measurement differ in their first token
   (no prefix to reuse) and have the same number of tokens. */
static char *long_prompt(char lead, const char *tag, int words)
{
    size_t cap = strlen(tag) + 4 + (size_t)words * 4 + 1;
    char *p = malloc(cap);
    if (!p)
        abort();
    size_t off = (size_t)snprintf(p, cap, "%c %s:", lead, tag);
    for (int i = 0; i < words; i++, off += 4)
        memcpy(p + off, " the", 4);
    p[off] = '\0';
    return p;
}

/* Sends one prompt of `words` words (max_tokens 1); sets the server's prompt token count and
   the time to the first token. */
static int one_prompt(const char *url, const char *model, char lead, const char *tag, int words,
                      long *prompt_tokens, double *ttft)
{
    stream s;
    char *prompt = long_prompt(lead, tag, words);
    stream_init(&s, url, request_body(model, prompt, 1));
    free(prompt);
    int rc = run_all(&s, 1);
    *prompt_tokens = s.prompt_tokens;
    *ttft = s.t_first ? s.t_first - s.t_start : 0;
    stream_free(&s);
    return rc || !s.t_first;
}

static int ttft(const char *url, const char *model, int target, const char *tag, int words)
{
    long pt = 0;
    double t = 0;
    if (words <= 0) { /* calibration: the template's and the tag's tokens around the words */
        if (one_prompt(url, model, 'c', tag, target / 2, &pt, &t) || pt <= 0)
            return 1;
        words = (int)(target - (pt - target / 2));
    }
    if (words < 1 || one_prompt(url, model, 'm', tag, words, &pt, &t))
        return 1;
    printf("prompt_tokens=%ld ttft_s=%.4f words=%d\n", pt, t, words);
    return 0;
}

int main(int argc, char **argv)
{
    bool is_gen = argc == 7 && strcmp(argv[3], "gen") == 0;
    bool is_ttft = (argc == 6 || argc == 7) && strcmp(argv[3], "ttft") == 0;
    if (!is_gen && !is_ttft) {
        fprintf(stderr, "usage: engine_client URL MODEL gen STREAMS MAX_TOKENS TAG\n"
                        "       engine_client URL MODEL ttft PROMPT_TOKENS TAG [WORDS]\n");
        return 2;
    }
    int n = atoi(argv[4]);
    if (n < 1 || (is_gen && (n > MAX_STREAMS || atoi(argv[5]) < 2)))
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char url[512];
    snprintf(url, sizeof url, "%s/v1/chat/completions", argv[1]);
    int rc = is_gen ? gen(url, argv[2], n, atoi(argv[5]), argv[6])
                    : ttft(url, argv[2], n, argv[5], argc == 7 ? atoi(argv[6]) : 0);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
