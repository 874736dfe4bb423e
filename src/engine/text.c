/* text.c: how much of a choice's generated text may be sent to the client yet.
 *
 * Tokens are byte strings: a UTF-8 character can span two tokens, and a stop string can span
 * any number of them. So a choice's output goes through a small hold-back buffer: after each
 * token the engine asks pd_engine_text_sendable how many of the unsent bytes are final. Held
 * back are (1) the bytes of a character not yet complete and (2) a suffix that could still
 * grow into a stop string; a complete stop string ends the choice and is never sent. This is
 * llama-server's rule too (validate_utf8 + find_partial_stop), so both send the same text. */
#include "engine/engine_int.h"

#include <string.h>

/* Bytes a UTF-8 sequence starting with lead byte c has (1 for ASCII and invalid leads). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF7)
        return 4;
    if (c >= 0xE0)
        return c <= 0xEF ? 3 : 1;
    if (c >= 0xC0)
        return 2;
    return 1;
}

size_t pd_engine_utf8_complete(const char *s, size_t len)
{
    /* Only the last 3 bytes can belong to an unfinished character. */
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* a continuation byte: the lead is further back */
        size_t need = utf8_seq_len(c);
        return need > back ? len - back : len;
    }
    return len;
}

/* Offset of the earliest complete stop string in s, or len when none. */
static size_t find_stop(const char *s, size_t len, char *const *stops, size_t n_stops)
{
    size_t best = len;
    for (size_t i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        if (sl == 0 || sl > len)
            continue;
        const char *hit = memmem(s, len, stops[i], sl);
        if (hit && (size_t)(hit - s) < best)
            best = (size_t)(hit - s);
    }
    return best;
}

/* Length of the longest suffix of s[0..len) that is a proper prefix of a stop string. */
static size_t partial_stop(const char *s, size_t len, char *const *stops, size_t n_stops)
{
    size_t best = 0;
    for (size_t i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        size_t max = sl - (sl > 0); /* proper prefix: a whole one was handled by find_stop */
        if (max > len)
            max = len;
        for (size_t k = max; k > best; k--) {
            if (memcmp(s + len - k, stops[i], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

size_t pd_engine_text_sendable(const char *s, size_t len, char *const *stops, size_t n_stops,
                               bool *stopped)
{
    *stopped = false;
    size_t at = find_stop(s, len, stops, n_stops);
    if (at < len) {
        *stopped = true;
        return at;
    }
    size_t n = pd_engine_utf8_complete(s, len);
    return n - partial_stop(s, n, stops, n_stops);
}
