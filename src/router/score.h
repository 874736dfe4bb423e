/* score.h: how hard is this chat request? A complexity score in [0,1] for tiered routing.
 *
 * The tiered policy (router.h) sends easy requests to a small model and hard ones to a big
 * one; this module says which is which. A scorer is a function behind a small struct, so a
 * learned scorer (a classifier, an embedding + logistic regression) can replace the default
 * without the router changing: it only has to fill pd_score_features (for explanations; it may
 * leave the values 0) and return a number in [0,1].
 *
 * The default scorer is a weighted sum of eight cheap features, each normalised to [0,1]
 * (the table of weights is in score.c and documented in docs/routing.md):
 *   length    bytes of prompt text, on a log scale (8 KiB saturates)
 *   code      code fences, code keywords, ; { } punctuation
 *   math      math words, operators between digits, LaTeX commands
 *   steps     multi-step reasoning markers ("step", "why", "compare", numbered lists)
 *   output    requested output: max_tokens, reasoning_effort, "detailed"/"essay" words
 *   tools     tool definitions and a forced tool choice
 *   depth     conversation depth (number of messages)
 *   language  share of non-ASCII characters (small models are weaker outside English)
 * Only system, developer and user text is read (assistant turns are the model's own words,
 * tool results are data), in ONE pass with no allocation and no regex, capped at
 * PD_SCORE_MAX_SCAN bytes: microseconds for a 2 KiB prompt.
 *
 * Threading: the default scorer has no state; a scorer's ud is the plugger's business (it is
 * called from every worker thread at once, so it must be read-only or thread-safe). */
#ifndef PD_ROUTER_SCORE_H
#define PD_ROUTER_SCORE_H

#include <stddef.h>

#include "canon/chat.h"

/* Text bytes read for the word features; the length feature still counts every byte. */
#define PD_SCORE_MAX_SCAN (64u * 1024)

typedef enum pd_score_feature {
    PD_FEAT_LENGTH,
    PD_FEAT_CODE,
    PD_FEAT_MATH,
    PD_FEAT_STEPS,
    PD_FEAT_OUTPUT,
    PD_FEAT_TOOLS,
    PD_FEAT_DEPTH,
    PD_FEAT_LANGUAGE,
    PD_FEAT_COUNT
} pd_score_feature;

typedef struct pd_score_features {
    double value[PD_FEAT_COUNT]; /* each in [0,1] */
    size_t text_bytes;           /* prompt text bytes counted (all of them, not only scanned) */
} pd_score_features;

/* "length", "code", ...; NULL when out of range. */
const char *pd_score_feature_name(pd_score_feature f);
/* The default scorer's weight of f (the weights sum to 1); 0 when out of range. */
double pd_score_feature_weight(pd_score_feature f);

/* The default scorer's keyword table (for docs and tests): the i-th keyword and its feature,
   or NULL when i is past the end. The table is sorted (binary search). */
const char *pd_score_keyword(size_t i, pd_score_feature *feat);

/* Returns the score in [0,1] and fills *out (never NULL) with the features behind it. */
typedef double (*pd_score_fn)(void *ud, const pd_chat_request *req, pd_score_features *out);

typedef struct pd_scorer {
    pd_score_fn fn;
    void *ud;
    const char *name; /* shown in explanations, e.g. "heuristic-v1" */
} pd_scorer;

/* The default heuristic scorer (ud unused, may be NULL). */
double pd_score_heuristic(void *ud, const pd_chat_request *req, pd_score_features *out);
/* {pd_score_heuristic, NULL, "heuristic-v1"}. */
pd_scorer pd_score_default(void);
/* Calls s->fn and clamps its answer into [0,1] (NaN counts as 0), so a plugged-in scorer
   cannot push a request outside every tier. */
double pd_score_run(const pd_scorer *s, const pd_chat_request *req, pd_score_features *out);

#endif
