/* jsonr.h: a fast JSON reader for request bodies: one pass over the text into a compact,
 * read-only DOM (an array of 32-byte nodes), no jansson tree.
 *
 * Why: jansson's json_loadb allocates a node, a hashtable and a string copy per value; for a
 * 2.4 KB agent request that alone was ~29 us, six times the whole translation budget (bench/
 * README.md, "translate.c"). Here a parse makes one growing node array, plus one scratch block
 * the size of the input only when some string has escapes to decode.
 *
 * What is accepted is exactly what json_loadb(text, len, 0, ...) accepts, the flags every
 * request parser uses (tests/fuzz/fuzz_jsonr.c checks it differentially):
 *   - RFC 8259 text whose top level is an object or an array (no JSON_DECODE_ANY);
 *   - strings: valid UTF-8 only (no overlong forms, no encoded surrogates, nothing above
 *     U+10FFFF), no raw control characters, the eight escapes, \uXXXX with surrogate pairs
 *     that pair up; \u0000 is rejected (no JSON_ALLOW_NUL), in keys and values;
 *   - numbers: integers (no '.', no exponent) must fit int64 (else rejected, as jansson does:
 *     "too big integer"); anything else is a real read with strtod, rejected when it overflows
 *     to infinity (underflow gives 0 or a subnormal, accepted);
 *   - nesting: at most 2048 levels counting scalars (jansson's JSON_PARSER_MAX_DEPTH);
 *   - duplicate keys are accepted (no JSON_REJECT_DUPLICATES): lookups give the last value,
 *     and the writers below emit the key once, at its first position, with its last value,
 *     which is what a jansson object holds;
 *   - jansson's one quirk, copied: a single NUL byte right after a number or true/false/null
 *     is skipped (its lexer pushes the byte back and loses it: "[1\0]" is accepted).
 * Reals are read with strtod in the C locale (Pendulum never calls setlocale), as jansson
 * does; short decimals take an exact fast path (Clinger's) that gives the same double.
 *
 * Layout. Values are stored in document order; a container is followed by its whole subtree,
 * an object's members as a key node (a STRING) then the value's nodes. pd_jr_next() skips a
 * subtree in O(1). Lookups by key are linear over an object's members (request objects have
 * a handful; the caller looks up a bounded set of names).
 *
 * Ownership: the document owns its nodes and decoded strings; string values point either into
 * the input text (no escapes) or into the document, so the input must outlive the document.
 * Values are read-only; pd_jr_free releases everything (a zeroed or freed document is a no-op).
 * Strings are NOT NUL-terminated: use the lengths.
 *
 * Errors: pd_jr_parse returns PD_ERR_INVALID for any text jansson would reject and says no
 * more; pd_jr_why_invalid asks json_loadb for its message and position on that rare path.
 * Threading: no shared state. Dependencies: core/buf, core/arena (pd_jr_dump_in), proto/jsonw
 * (the writers), jansson (only for pd_jr_why_invalid). */
#ifndef PD_PROTO_JSONR_H
#define PD_PROTO_JSONR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/result.h"
#include "proto/jsonw.h"

#define PD_JR_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

typedef enum pd_jr_type {
    PD_JR_NULL,
    PD_JR_FALSE,
    PD_JR_TRUE,
    PD_JR_INT,
    PD_JR_REAL,
    PD_JR_STRING,
    PD_JR_ARRAY,
    PD_JR_OBJECT
} pd_jr_type;

/* PD_JR_COMPACT: a container whose text holds no whitespace, no escape, no real, no "-0"
   (what pd_jr_write would change but for repeated keys): pd_jr_dump copies such text. */
#define PD_JR_COMPACT 1u
/* PD_JR_DUPS: an object where some key repeats, or may (any object of more than 32
   members: finding out would cost the parse a hash table). Lookups then read to the last
   member; without it they stop at the first match. */
#define PD_JR_DUPS 2u

typedef struct pd_jr_val {
    uint8_t type;  /* pd_jr_type */
    uint8_t flags; /* ARRAY, OBJECT: PD_JR_COMPACT; OBJECT: PD_JR_DUPS */
    uint32_t n;    /* STRING: bytes; ARRAY: elements; OBJECT: members */
    uint32_t skip; /* ARRAY, OBJECT: nodes in the subtree after this one */
    uint32_t keys; /* OBJECT: one bit per key, from its first two bytes: most lookups are for
                      members a request does not have, and this says no at once */
    uint32_t len;  /* ARRAY, OBJECT: the bytes of its text, brackets included (a compact one
                      is copied without a scan for its end) */
    union {
        const char *s; /* STRING: the n bytes (not NUL-terminated); ARRAY, OBJECT: the text
                          from the opening bracket */
        int64_t i;     /* INT */
        double d;      /* REAL */
    } u;
} pd_jr_val;

typedef struct pd_jr_doc {
    pd_jr_val *v; /* v[0] is the root */
    size_t n, cap;
    bool borrowed;         /* v is the caller's (pd_jr_parse_in), not to be freed */
    bool scratch_borrowed; /* scratch likewise */
    char *scratch;         /* decoded strings */
    size_t scratch_len;
    uint32_t depth; /* the deepest nesting of containers (the root is 1) */
} pd_jr_doc;

/* Parses len bytes of text into *doc (which need not be initialised). On PD_ERR_INVALID the
   document is left empty (nothing to free, freeing is harmless). Texts of 4 GiB or more are
   PD_ERR_TOO_LARGE (request bodies are capped far below). */
pd_result pd_jr_parse(pd_jr_doc *doc, const char *text, size_t len);
/* Caller memory for a parse, e.g. on the stack: the nodes go to `nodes` while they fit, and
   the decoded strings to `scratch` when the text is at most scratch_cap bytes; a request's
   parse then allocates nothing (big blocks were the costly part of glibc's malloc there). The
   memory must outlive the document. */
typedef struct pd_jr_mem {
    pd_jr_val *nodes;
    size_t n_nodes;
    char *scratch;
    size_t scratch_cap;
} pd_jr_mem;

/* pd_jr_parse with caller memory (mem may be NULL). */
pd_result pd_jr_parse_in(pd_jr_doc *doc, const char *text, size_t len, const pd_jr_mem *mem);
void pd_jr_free(pd_jr_doc *doc);
/* Why text (which pd_jr_parse rejected) is not JSON, in jansson's words: "<reason> (line L,
   column C)", cut to cap bytes. The error messages clients have always had; call it only on the
   error path (it parses the text again). */
void pd_jr_why_invalid(const char *text, size_t len, char *buf, size_t cap);

static inline const pd_jr_val *pd_jr_root(const pd_jr_doc *doc)
{
    return doc->n ? &doc->v[0] : NULL;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* NULL-safe type tests, in the manner of jansson's json_is_*. */
static inline bool pd_jr_is(const pd_jr_val *v, pd_jr_type t)
{
    return v && v->type == (uint8_t)t;
}
static inline bool pd_jr_is_null(const pd_jr_val *v)
{
    return pd_jr_is(v, PD_JR_NULL);
}
static inline bool pd_jr_is_string(const pd_jr_val *v)
{
    return pd_jr_is(v, PD_JR_STRING);
}
static inline bool pd_jr_is_object(const pd_jr_val *v)
{
    return pd_jr_is(v, PD_JR_OBJECT);
}
static inline bool pd_jr_is_array(const pd_jr_val *v)
{
    return pd_jr_is(v, PD_JR_ARRAY);
}
static inline bool pd_jr_is_integer(const pd_jr_val *v)
{
    return pd_jr_is(v, PD_JR_INT);
}
static inline bool pd_jr_is_real(const pd_jr_val *v)
{
    return pd_jr_is(v, PD_JR_REAL);
}
static inline bool pd_jr_is_number(const pd_jr_val *v)
{
    return v && (v->type == PD_JR_INT || v->type == PD_JR_REAL);
}
static inline bool pd_jr_is_boolean(const pd_jr_val *v)
{
    return v && (v->type == PD_JR_TRUE || v->type == PD_JR_FALSE);
}
static inline bool pd_jr_is_true(const pd_jr_val *v)
{
    return pd_jr_is(v, PD_JR_TRUE);
}

/* A number as a double (an INT converted), 0 for anything else (json_number_value). */
static inline double pd_jr_number(const pd_jr_val *v)
{
    if (pd_jr_is_integer(v))
        return (double)v->u.i;
    return pd_jr_is_real(v) ? v->u.d : 0;
}

/* The first element of an array / the first key of an object, or NULL when empty. */
static inline const pd_jr_val *pd_jr_child(const pd_jr_val *c)
{
    return c->n ? c + 1 : NULL;
}

/* The node after v's subtree: the next element, the next key after a value, or (after the
   last one) whatever follows the container. Use counts (c->n) to stop. */
static inline const pd_jr_val *pd_jr_next(const pd_jr_val *v)
{
    return v + 1 + (v->type >= PD_JR_ARRAY ? v->skip : 0);
}

/* True when the string v is exactly the n bytes s. */
static inline bool pd_jr_eqn(const pd_jr_val *v, const char *s, size_t n)
{
    return pd_jr_is_string(v) && v->n == n && memcmp(v->u.s, s, n) == 0;
}
/* True when v is a string equal to the C string lit (json_is_string && strcmp == 0). */
static inline bool pd_jr_eq(const pd_jr_val *v, const char *lit)
{
    return pd_jr_eqn(v, lit, strlen(lit));
}

/* The bit of a key in its object's `keys` filter, from its first two bytes (0 past the end). */
static inline uint32_t pd_jr_key_bit(unsigned char b0, unsigned char b1)
{
    return 1u << ((b0 * 7u + b1) & 31);
}

/* The value of key (n bytes) in object o, the last one when the key repeats; NULL when o is
   not an object or has no such key. pd_jr_get takes a C string. */
const pd_jr_val *pd_jr_getn(const pd_jr_val *o, const char *key, size_t n);
/* pd_jr_getn after the filter said the key may be there: the search of the members. */
const pd_jr_val *pd_jr_get_member(const pd_jr_val *o, const char *key, size_t n);
/* Inline: the request parsers look up many members a request does not have, and the
   filter says no to most of them without a call; a literal key's length and bit are known
   when compiling. */
static inline const pd_jr_val *pd_jr_get(const pd_jr_val *o, const char *key)
{
    const unsigned char *u = (const unsigned char *)key;
    if (!pd_jr_is_object(o) || !(o->keys & pd_jr_key_bit(u[0], u[0] ? u[1] : 0)))
        return NULL;
    return pd_jr_get_member(o, key, strlen(key));
}
/* An optional member: NULL when absent or JSON null (how the request parsers read a field). */
static inline __attribute__((always_inline)) const pd_jr_val *pd_jr_opt(const pd_jr_val *o,
                                                                        const char *key)
{
    const pd_jr_val *v = pd_jr_get(o, key);
    return pd_jr_is_null(v) ? NULL : v;
}
/* A string's length cut to max, for "%.*s" in error messages. */
static inline int pd_jr_clip(const pd_jr_val *s, int max)
{
    return s->n < (size_t)max ? (int)s->n : max;
}
/* Whether a JSON text of n bytes nests at most max deep, counted without parsing (strings
   skipped): for texts a request keeps as text and an upstream will parse. */
bool pd_jr_text_depth_ok(const char *s, size_t n, int max);

/* ---- members as jansson holds them (duplicates folded) ---------------------------------- */

/* Walks an object's members each key once, at the position of its first occurrence, with the
   value of its last: the order and values json_object_foreach gives on json_loadb's tree.
       pd_jr_members it;
       pd_jr_members_begin(&it, obj);
       while (pd_jr_members_next(&it)) use(it.key, it.value);
       pd_jr_members_end(&it);
   Objects with many members use a small hash table (allocated; freed by _end). */
typedef struct pd_jr_members {
    const pd_jr_val *obj, *key, *value;
    const pd_jr_val *cur; /* the next key to look at */
    uint32_t i;           /* members visited */
    uint32_t *last;       /* big objects: member index -> index of its value, UINT32_MAX = dup */
    const pd_jr_val **keys;
} pd_jr_members;

void pd_jr_members_begin(pd_jr_members *it, const pd_jr_val *obj);
bool pd_jr_members_next(pd_jr_members *it);
void pd_jr_members_end(pd_jr_members *it);

/* ---- paths, for error messages ------------------------------------------------------------ */

/* Request parsers name the value they reject by its path ("messages[2].content",
   "messages.2.content") and build one per element as they descend: without printf, which was
   a visible part of a parse. Both write into dst (cap > 0 bytes, NUL-terminated, cut to fit
   as snprintf would) and return dst.
   pd_jr_path_key: "base.key", or "key" when base is "".
   pd_jr_path_index: base, open, the index in decimal, close (e.g. "[" and "]"). */
const char *pd_jr_path_key(char *dst, size_t cap, const char *base, const char *key);
const char *pd_jr_path_index(char *dst, size_t cap, const char *base, const char *open, size_t i,
                             const char *close);

/* ---- writing ------------------------------------------------------------------------------ */

/* Writes v as pd_jw_json would write the jansson tree json_loadb makes of the same text
   (jsonw's shortest reals, lowercase \u escapes; duplicates folded). Both writers copy a
   PD_JR_COMPACT container without repeated keys as it is (the same bytes). */
void pd_jr_write(pd_jw *w, const pd_jr_val *v);
/* Writes v as json_dumps(tree, JSON_COMPACT) would (%.17g reals, uppercase \u escapes): for
   bodies that must stay byte-identical to what jansson printed. */
void pd_jr_write_jansson(pd_jw *w, const pd_jr_val *v);
/* Writes a string or key body (no quotes) the way json_dumps escapes it. */
void pd_jr_escape_jansson(pd_jw *w, const char *s, size_t n);
/* Writes an object member's key k (a STRING node) and the colon, in either style; the value
   follows with any writer. */
void pd_jr_write_key(pd_jw *w, const pd_jr_val *k);
void pd_jr_write_key_jansson(pd_jw *w, const pd_jr_val *k);
/* v written with pd_jr_write into a new malloc'ed NUL-terminated text; *len gets its length.
   A PD_JR_COMPACT container without repeated keys is copied from the input instead (the same
   bytes, for a fraction of the cost: tool schemas are written so by most clients). Never NULL
   (allocation failure aborts, house rule). */
char *pd_jr_dump(const pd_jr_val *v, size_t *len);
/* pd_jr_dump into arena a (core/arena.h); NULL when a would pass its limit. */
char *pd_jr_dump_in(pd_arena *a, const pd_jr_val *v, size_t *len);

#endif
