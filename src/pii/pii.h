/* pii.h: PII and secret detection, reversible redaction, and streaming restore.
 *
 * A library: it depends on nothing of the server (only core/buf and core/result), so the privacy
 * router, the CLI (`pendulum pii scan`), the corpus evaluation and the benchmark all use it alone.
 *
 * How a scan works. All entity patterns are compiled once into one Vectorscan (Hyperscan API)
 * block-mode database, so the text is read once for every pattern together. Each pattern is a
 * loose *shape*; a match is only a candidate. A C validator per pattern then decides: checksums
 * (Luhn, mod-97, mod-11), issuer and country tables, calendar dates, octet ranges, key-name
 * tokens and entropy, name lists. Context words near the candidate (e.g. "phone", "DOB",
 * "order #") raise or lower its score, and a finding is kept when its score reaches the
 * threshold set for its type. Overlapping findings are resolved to the best one (higher score,
 * then longer), so the findings of one scan never overlap and are sorted by start.
 *
 * Two objects, because of threads:
 *   - pd_pii_detector: the compiled database and parameters. Immutable after _new, so ONE
 *     detector is shared by every thread; build it at start-up (compiling takes ~100 ms).
 *   - pd_pii_scanner: per-thread scratch (a Vectorscan scratch, the candidate and finding
 *     arrays). Use one per thread (per worker), never two threads at once. After the first few
 *     scans it allocates nothing: its arrays are reused and only grow.
 *
 * Redaction. A pd_pii_vault belongs to one request: pd_pii_redact replaces each finding by a
 * typed, numbered placeholder (<EMAIL_1>, <PHONE_2>); the same bytes of the same type get the
 * same placeholder for the life of the vault (so across all messages of a request). Text that
 * already looks like a placeholder is itself replaced by a fresh placeholder, which is what
 * makes restore(redact(x)) == x hold for every x. pd_pii_restore puts the originals back;
 * pd_pii_restorer does the same over a stream whose chunks may split a placeholder anywhere,
 * holding back at most PD_PII_PLACEHOLDER_MAX bytes and allocating nothing of its own.
 *
 * Bad input: any bytes are accepted (invalid UTF-8, NUL bytes); patterns work on bytes and
 * validators read at most a small bounded window around each candidate, so time is linear in the
 * input and memory is bounded by the caps in pd_pii_params. A cap that is hit fails the call with
 * PD_ERR_TOO_LARGE; it never returns a partial result as if it were complete.
 *
 * Ownership: every object is created by *_new (or _init) and released by the matching *_free;
 * freeing NULL is a no-op. Text passed in is only read during the call. Findings returned by
 * pd_pii_scan belong to the scanner and stay valid until its next scan or its free. Output is
 * appended to a caller-owned pd_buf; on error the buffer may hold a partial result that the
 * caller must not use. */
#ifndef PD_PII_PII_H
#define PD_PII_PII_H

#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"

typedef enum pd_pii_type {
    PD_PII_EMAIL,
    PD_PII_PHONE,
    PD_PII_CREDIT_CARD,
    PD_PII_IBAN,
    PD_PII_US_SSN,
    PD_PII_US_ITIN,
    PD_PII_UK_NINO,
    PD_PII_UK_NHS,
    PD_PII_IP_ADDRESS,
    PD_PII_MAC_ADDRESS,
    PD_PII_SECRET,
    PD_PII_DATE_OF_BIRTH,
    PD_PII_PERSON,
    PD_PII_TYPE_COUNT
} pd_pii_type;

/* "EMAIL", "CREDIT_CARD", ...: the names used in placeholders and JSON. NULL when out of range. */
const char *pd_pii_type_name(pd_pii_type t);
/* The type named name[0..len), or -1. */
int pd_pii_type_from_name(const char *name, size_t len);

typedef struct pd_pii_finding {
    pd_pii_type type;
    size_t start, end;     /* byte offsets into the scanned text, start < end */
    float score;           /* 0..1, after context adjustment */
    const char *validator; /* static string naming the check that passed, e.g. "luhn+issuer" */
} pd_pii_finding;

typedef struct pd_pii_params {
    /* a finding of type t is kept when score >= threshold[t]; a threshold above 1 disables t */
    float threshold[PD_PII_TYPE_COUNT];
    /* bytes of context looked at before a candidate and after it, for context words */
    unsigned context_before, context_after;
    size_t max_input;      /* longest text pd_pii_scan accepts (bytes); < 4 GiB */
    size_t max_candidates; /* pattern matches buffered before they are validated (memory only) */
    size_t max_findings;   /* findings per scan before PD_ERR_TOO_LARGE */
} pd_pii_params;

/* Threshold 0.5 for every type, 48/24 bytes of context, 64 MiB input, 64 Ki candidates
   buffered, 1 Mi findings. */
pd_pii_params pd_pii_default_params(void);

/* ---- detector: shared, immutable ----------------------------------------------------------- */
typedef struct pd_pii_detector pd_pii_detector;

/* Compiles the patterns of every type whose threshold is <= 1.
   PD_ERR_INVALID: params out of range, or the pattern database failed to compile (a bug: the
   message is logged to stderr). */
pd_result pd_pii_detector_new(const pd_pii_params *params, pd_pii_detector **out);
void pd_pii_detector_free(pd_pii_detector *d);
const pd_pii_params *pd_pii_detector_params(const pd_pii_detector *d);

/* ---- scanner: one per thread --------------------------------------------------------------- */
typedef struct pd_pii_scanner pd_pii_scanner;

/* The detector must outlive the scanner. PD_ERR_NOMEM when the scratch cannot be allocated. */
pd_result pd_pii_scanner_new(const pd_pii_detector *d, pd_pii_scanner **out);
void pd_pii_scanner_free(pd_pii_scanner *s);

/* Scans text[0..len). On PD_OK *findings (owned by the scanner, valid until the next scan) holds
   *count findings sorted by start, not overlapping. On error *count is 0.
   PD_ERR_TOO_LARGE: len > max_input, or more than max_findings findings.
   PD_ERR_INVALID: the scan engine failed (should not happen). */
pd_result pd_pii_scan(pd_pii_scanner *s, const char *text, size_t len,
                      const pd_pii_finding **findings, size_t *count);

/* ---- vault and redaction: one vault per request -------------------------------------------- */
#define PD_PII_PLACEHOLDER_MAX 32 /* longest placeholder, "<DATE_OF_BIRTH_999999>" is 22 */

typedef struct pd_pii_vault pd_pii_vault;

/* max_entries: distinct values (at most 999999 per type); max_bytes: their total size.
   0 means the defaults, 65536 entries and 16 MiB. Aborts only if a small allocation fails. */
pd_pii_vault *pd_pii_vault_new(size_t max_entries, size_t max_bytes);
void pd_pii_vault_free(pd_pii_vault *v);
size_t pd_pii_vault_count(const pd_pii_vault *v);

/* Appends text[0..len) to out with each finding replaced by its placeholder. findings must be
   sorted by start, not overlapping, and inside the text (as pd_pii_scan returns them).
   PD_ERR_INVALID: findings are not like that (nothing is added to the vault).
   PD_ERR_TOO_LARGE: the vault or out reached its cap (the vault may hold some new values). */
pd_result pd_pii_redact(pd_pii_vault *v, const char *text, size_t len,
                        const pd_pii_finding *findings, size_t count, pd_buf *out);

/* Scan and redact in one call (what the privacy router does per message text). */
pd_result pd_pii_redact_text(pd_pii_scanner *s, pd_pii_vault *v, const char *text, size_t len,
                             pd_buf *out);

/* Appends text with every placeholder of the vault replaced by its original value; text that
   only looks like a placeholder (not in the vault) is copied unchanged.
   PD_ERR_TOO_LARGE: out reached its cap. */
pd_result pd_pii_restore(const pd_pii_vault *v, const char *text, size_t len, pd_buf *out);

/* Streaming restore. Embeddable, no allocation; fields are private. Feeding chunks and then
   finishing appends exactly what pd_pii_restore appends for the chunks joined, wherever the
   splits fall. The vault must be the same for every call of one stream. */
typedef struct pd_pii_restorer {
    char carry[PD_PII_PLACEHOLDER_MAX]; /* the start of a possible placeholder, held back */
    size_t carry_len;
} pd_pii_restorer;

void pd_pii_restorer_init(pd_pii_restorer *r);
pd_result pd_pii_restorer_feed(pd_pii_restorer *r, const pd_pii_vault *v, const char *chunk,
                               size_t len, pd_buf *out);
/* Flushes the held-back bytes (a placeholder cut off by the end of the stream stays as text)
   and leaves the restorer ready for a new stream. */
pd_result pd_pii_restorer_finish(pd_pii_restorer *r, pd_buf *out);

/* ---- CLI ----------------------------------------------------------------------------------- */
/* `pendulum pii scan [--redact] [--json] [--threshold TYPE=X]...`: reads stdin (up to
   max_input), prints findings. argv[0] is "pii". Returns the process exit status: 0 ok,
   1 failure (input too large, output error), 2 usage. */
int pd_pii_cli(int argc, char **argv);

#endif
