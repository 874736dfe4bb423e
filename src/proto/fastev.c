/* fastev.c: see fastev.h.
 *
 * Design note. A scanner here is a cursor over the input plus an output arena (the caller's
 * buffer). Every helper returns false the moment the input leaves the shape it knows, and the
 * whole scan is then a miss: there is no error reporting, because the full decoder runs next
 * and reports what is wrong in its own words. The rules follow jansson's, which the full path
 * uses, wherever a difference could change the result: JSON whitespace only, UTF-8 validated as
 * jansson validates it (no overlong forms, no surrogates, nothing above U+10FFFF), integers
 * without sign, fraction or exponent, and keys compared as raw bytes (a key written with an
 * escape is a miss rather than a second spelling to get right). Duplicate keys are a miss too:
 * jansson keeps the last one, and a scanner that kept the first would disagree.
 *
 * The memo. A full scan that hits notes where the text's string token starts and ends (its
 * quotes included) and the state at a point after it: for OpenAI right after the choices array
 * (the top-level keys seen, id, model, created, the choice index), for Anthropic the end of the
 * event. The memo keeps head = the bytes before the token and tail = the bytes from its end to
 * that point. A later event that starts with head, has a '"' right after it, a string token
 * there that take_str reads in full, and tail right after that token, is the same scan with
 * another string: through head the scanner did the same steps (nothing in head's scan looks past
 * the token's first byte, a '"' in both); the token sets the text and nothing else; through tail
 * the steps are the same again, since nothing there depends on the text. The one shared resource
 * is the arena, and a scan never puts more bytes into it than the input has (a decoded string
 * and its NUL are never longer than its token), so with len <= cap neither scan can run out of
 * room. The memo path therefore only needs the text decoded and, for OpenAI, the members after
 * the choices array: when they are byte for byte the memo's (kept as `rest`, with the state at
 * the end), nothing more is read, the same argument again; else they are scanned as usual from
 * the state after the array (OpenAI's obfuscation field changes on every chunk). */
#include "proto/fastev.h"
#include "proto/jsonw.h"

#include <string.h>

typedef struct scan {
    const unsigned char *p, *end;
    char *out; /* next free byte of the arena */
    char *out_end;
    const unsigned char *text0, *text1; /* the text's string token, quotes included, once read */
} scan;

/* Loops run on local copies of the cursor: through s, every step would be stored back (the
   arena is char memory, which may alias anything). */
static const unsigned char *span(const unsigned char *p, const unsigned char *end,
                                 const unsigned char *table)
{
    while (p < end && table[*p])
        p++;
    return p;
}

/* The end of the run of bytes from p that a JSON string holds as they are (proto/jsonw.h). */
static const unsigned char *plain_run(const unsigned char *p, const unsigned char *end)
{
    return p + pd_jw_plain_len((const char *)p, (size_t)(end - p));
}

static const unsigned char space[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

static void ws(scan *s)
{
    s->p = span(s->p, s->end, space);
}

/* Skips whitespace, then takes c. */
static bool take(scan *s, char c)
{
    ws(s);
    if (s->p == s->end || *s->p != (unsigned char)c)
        return false;
    s->p++;
    return true;
}

static bool take_null(scan *s)
{
    ws(s);
    if (s->end - s->p < 4 || memcmp(s->p, "null", 4) != 0)
        return false;
    s->p += 4;
    return true;
}

static bool peek_null(scan *s)
{
    ws(s);
    return s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0;
}

/* An unsigned integer of at most 18 digits (jansson would refuse what overflows int64; a
   fraction or an exponent makes it a real there, a different type: both are misses). */
static bool take_uint(scan *s, uint64_t *v)
{
    ws(s);
    const unsigned char *start = s->p;
    uint64_t n = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        n = n * 10 + (uint64_t)(*s->p++ - '0');
    size_t digits = (size_t)(s->p - start);
    if (digits == 0 || digits > 18 || (digits > 1 && *start == '0'))
        return false;
    if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
        return false;
    *v = n;
    return true;
}

/* Length of the UTF-8 sequence at p (2..4) when jansson accepts it, else 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t len;
    uint32_t cp;
    if (*p >= 0xc2 && *p <= 0xdf)
        len = 2, cp = *p & 0x1fu;
    else if (*p >= 0xe0 && *p <= 0xef)
        len = 3, cp = *p & 0x0fu;
    else if (*p >= 0xf0 && *p <= 0xf4)
        len = 4, cp = *p & 0x07u;
    else
        return 0;
    if ((size_t)(end - p) < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static bool put(scan *s, const void *b, size_t n)
{
    if ((size_t)(s->out_end - s->out) < n)
        return false;
    memcpy(s->out, b, n);
    s->out += n;
    return true;
}

/* \uXXXX (p at the 'u'), with a surrogate pair read as one code point; U+0000 is a miss. */
static bool put_unicode(scan *s)
{
    if (s->end - s->p < 5)
        return false;
    int cp = hex4(s->p + 1);
    s->p += 5;
    if (cp <= 0 || (cp >= 0xdc00 && cp <= 0xdfff))
        return false;
    uint32_t c = (uint32_t)cp;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
            return false;
        int lo = hex4(s->p + 2);
        if (lo < 0xdc00 || lo > 0xdfff)
            return false;
        s->p += 6;
        c = 0x10000 + (((uint32_t)cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
    }
    unsigned char u[4];
    size_t n;
    if (c < 0x80)
        u[0] = (unsigned char)c, n = 1;
    else if (c < 0x800)
        u[0] = (unsigned char)(0xc0 | c >> 6), u[1] = (unsigned char)(0x80 | (c & 0x3f)), n = 2;
    else if (c < 0x10000)
        u[0] = (unsigned char)(0xe0 | c >> 12), u[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f)),
        u[2] = (unsigned char)(0x80 | (c & 0x3f)), n = 3;
    else
        u[0] = (unsigned char)(0xf0 | c >> 18), u[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f)),
        u[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f)), u[3] = (unsigned char)(0x80 | (c & 0x3f)),
        n = 4;
    return put(s, u, n);
}

static bool put_escape(scan *s)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (s->p == s->end)
        return false;
    if (*s->p == 'u')
        return put_unicode(s);
    const char *k = memchr(from, *s->p, sizeof from - 1);
    if (!k)
        return false;
    s->p++;
    return put(s, &to[k - from], 1);
}

/* A string value decoded into the arena, NUL-terminated; *str points at it. */
static bool take_str(scan *s, const char **str, size_t *len)
{
    if (!take(s, '"'))
        return false;
    char *start = s->out;
    for (;;) {
        const unsigned char *run = s->p;
        s->p = plain_run(s->p, s->end);
        if (!put(s, run, (size_t)(s->p - run)) || s->p == s->end)
            return false;
        unsigned char c = *s->p;
        if (c == '"')
            break;
        if (c == '\\') {
            s->p++;
            if (!put_escape(s))
                return false;
            continue;
        }
        size_t n = c >= 0x80 ? utf8_len(s->p, s->end) : 0; /* raw control bytes: n = 0 */
        if (!n || !put(s, s->p, n))
            return false;
        s->p += n;
    }
    s->p++; /* the closing quote */
    *len = (size_t)(s->out - start);
    *str = start;
    return put(s, "", 1);
}

/* A string value whose contents are not needed (still validated like the others). */
static bool skip_str(scan *s)
{
    char *mark = s->out;
    const char *str;
    size_t len;
    bool ok = take_str(s, &str, &len);
    s->out = mark;
    return ok;
}

/* The next key of an object (raw bytes, no escapes) and its colon. */
static bool take_key(scan *s, const char **key, size_t *len)
{
    if (!take(s, '"'))
        return false;
    const unsigned char *k = s->p;
    s->p = plain_run(s->p, s->end);
    if (s->p == s->end || *s->p != '"')
        return false;
    *key = (const char *)k;
    *len = (size_t)(s->p - k);
    s->p++;
    return take(s, ':');
}

typedef struct key_name {
    const char *s;
    size_t n;
} key_name;

/* clang-format off */
#define KEY(lit) {lit, sizeof lit - 1}
/* clang-format on */

/* Which of names[] key is (its bit), 0 when none or already seen (a miss either way). */
static unsigned key_bit(const char *key, size_t len, const key_name *names, size_t n,
                        unsigned *seen)
{
    for (size_t i = 0; i < n; i++) {
        if (names[i].n == len && memcmp(names[i].s, key, len) == 0) {
            unsigned bit = 1u << i;
            if (*seen & bit)
                return 0;
            *seen |= bit;
            return bit;
        }
    }
    return 0;
}

/* After a member: true with *more set when a ',' follows, true and !*more at the '}'. */
static bool next_member(scan *s, bool *more)
{
    ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        *more = true;
        return true;
    }
    *more = false;
    return take(s, '}');
}

/* The object's opening brace; *more is false for an empty object. */
static bool open_object(scan *s, bool *more)
{
    if (!take(s, '{'))
        return false;
    ws(s);
    *more = !(s->p < s->end && *s->p == '}');
    if (!*more)
        s->p++;
    return true;
}

/* Only whitespace may follow the top-level value (jansson checks the same). */
static bool at_end(scan *s)
{
    ws(s);
    return s->p == s->end;
}

static void scan_init(scan *s, const char *data, size_t len, char *buf, size_t cap)
{
    s->p = (const unsigned char *)data;
    s->end = s->p + len;
    s->out = buf;
    s->out_end = buf + cap;
    s->text0 = s->text1 = NULL;
}

/* The text's string token, which s->text0/1 then mark. */
static bool take_text(scan *s, const char **text, size_t *len)
{
    ws(s);
    const unsigned char *start = s->p;
    if (s->p == s->end || *s->p != '"' || !take_str(s, text, len))
        return false;
    s->text0 = start;
    s->text1 = s->p;
    return true;
}

/* A memo's head and the opening quote at the start of the input, its tail after the string
   token there; on a match the scan stands at the end of tail with the text decoded. */
static bool memo_match(const pd_fastev_memo *m, scan *s, size_t len, const char **text,
                       size_t *text_len)
{
    if (!m || !m->head || len > (size_t)(s->out_end - s->out) ||
        len < (size_t)m->head + m->tail + 2u || s->p[m->head] != '"' ||
        memcmp(s->p, m->bytes, m->head) != 0)
        return false;
    s->p += m->head;
    if (!take_str(s, text, text_len) || (size_t)(s->end - s->p) < m->tail ||
        memcmp(s->p, m->bytes + m->head, m->tail) != 0)
        return false;
    s->p += m->tail;
    return true;
}

/* Appends n bytes to the memo's bytes at *used; false when they do not fit. */
static bool memo_add(pd_fastev_memo *m, size_t *used, const void *p, size_t n)
{
    if (n > sizeof m->bytes - *used)
        return false;
    memcpy(m->bytes + *used, p, n);
    *used += n;
    return true;
}

/* A decoded string (NUL-terminated, or NULL) kept in the memo; its offset + 1 in *off. */
static bool memo_str(pd_fastev_memo *m, size_t *used, const char *str, uint16_t *off)
{
    *off = str ? (uint16_t)(*used + 1) : 0;
    return !str || memo_add(m, used, str, strlen(str) + 1);
}

/* Starts a memo from data's bytes around the token s->text0..text1, up to `at`; *used gets
   how many bytes that took. False when the scan read no text (the memo is left as it was:
   what it says stays true) or they do not fit. The memo is empty (head 0) until the caller
   sets head and tail once everything else is in. */
static bool memo_begin(pd_fastev_memo *m, const scan *s, const char *data, const unsigned char *at,
                       size_t *used)
{
    if (!s->text0)
        return false;
    *used = 0;
    m->head = 0;
    return memo_add(m, used, data, (size_t)(s->text0 - (const unsigned char *)data)) &&
           memo_add(m, used, s->text1, (size_t)(at - s->text1));
}

static void memo_commit(pd_fastev_memo *m, const scan *s, const char *data, const unsigned char *at)
{
    m->head = (uint16_t)(s->text0 - (const unsigned char *)data);
    m->tail = (uint16_t)(at - s->text1);
}

/* ---- OpenAI --------------------------------------------------------------------------- */

static bool str_or_null(scan *s)
{
    return peek_null(s) ? take_null(s) : skip_str(s);
}

static bool openai_delta(scan *s, pd_fastev_chunk *out)
{
    static const key_name names[] = {KEY("content"), KEY("refusal"), KEY("role")};
    unsigned seen = 0;
    bool more;
    if (!open_object(s, &more))
        return false;
    while (more) {
        const char *k;
        size_t n;
        if (!take_key(s, &k, &n))
            return false;
        switch (key_bit(k, n, names, 3, &seen)) {
        case 1:
            if (peek_null(s)) {
                if (!take_null(s))
                    return false;
            } else if (!take_text(s, &out->text, &out->text_len)) {
                return false;
            }
            break;
        case 2:
            if (!take_null(s))
                return false;
            break;
        case 4:
            if (!take_str(s, &out->role, &out->role_len))
                return false;
            break;
        default: return false;
        }
        if (!next_member(s, &more))
            return false;
    }
    return true;
}

static bool openai_choice(scan *s, pd_fastev_chunk *out)
{
    static const key_name names[] = {KEY("index"), KEY("delta"), KEY("logprobs"),
                                     KEY("finish_reason")};
    unsigned seen = 0;
    bool more;
    uint64_t idx;
    if (!open_object(s, &more))
        return false;
    while (more) {
        const char *k;
        size_t n;
        bool ok;
        if (!take_key(s, &k, &n))
            return false;
        switch (key_bit(k, n, names, 4, &seen)) {
        case 1:
            ok = take_uint(s, &idx) && idx <= UINT32_MAX;
            out->choice = (uint32_t)idx;
            break;
        case 2: ok = openai_delta(s, out); break;
        case 4: ok = take_null(s); break;
        case 8: ok = peek_null(s) ? take_null(s) : take_str(s, &out->finish, &n); break;
        default: ok = false;
        }
        if (!ok || !next_member(s, &more))
            return false;
    }
    return (seen & 2) != 0;
}

static bool openai_choices(scan *s, pd_fastev_chunk *out)
{
    return take(s, '[') && openai_choice(s, out) && take(s, ']');
}

static bool openai_member(scan *s, unsigned bit, pd_fastev_chunk *out)
{
    size_t n;
    uint64_t v;
    switch (bit) {
    case 1: return take_str(s, &out->id, &n);
    case 2: return skip_str(s); /* object: the full decoder does not read it either */
    case 4:
        if (!take_uint(s, &v))
            return false;
        out->created = (int64_t)v;
        return true;
    case 8: return take_str(s, &out->model, &n);
    case 16:
    case 32: return str_or_null(s);
    case 64: return skip_str(s);
    case 128: return take_null(s);
    case 256: return openai_choices(s, out);
    default: return false;
    }
}

/* The scan state right after the choices array and at the end (what an OpenAI memo keeps). */
typedef struct resume {
    const unsigned char *at; /* NULL until the choices array was read */
    unsigned seen, end_seen;
    const char *id, *model;
    int64_t created;
} resume;

/* Top-level members from the next key on (more: one follows), then the end of the input. */
static bool openai_top(scan *s, bool more, unsigned seen, pd_fastev_chunk *out, resume *r)
{
    static const key_name names[] = {KEY("id"),
                                     KEY("object"),
                                     KEY("created"),
                                     KEY("model"),
                                     KEY("system_fingerprint"),
                                     KEY("service_tier"),
                                     KEY("obfuscation"),
                                     KEY("usage"),
                                     KEY("choices")};
    while (more) {
        const char *k;
        size_t n;
        if (!take_key(s, &k, &n))
            return false;
        unsigned bit = key_bit(k, n, names, 9, &seen);
        if (!openai_member(s, bit, out))
            return false;
        if (bit == 256 && r)
            *r = (resume){s->p, seen, 0, out->id, out->model, out->created};
        if (!next_member(s, &more))
            return false;
    }
    if (r)
        r->end_seen = seen;
    out->null_usage = (seen & 128) != 0;
    return (seen & 256) && at_end(s);
}

static void state_out(const pd_fastev_memo *m, const pd_fastev_memo_state *st, pd_fastev_chunk *out)
{
    out->id = st->id ? m->bytes + st->id - 1 : NULL;
    out->model = st->model ? m->bytes + st->model - 1 : NULL;
    out->created = st->created;
    out->null_usage = (st->seen & 128) != 0;
}

/* The memo's way: its head and tail around a new text; then its rest, when the chunk ends as
   the memo's did (the state at the end from the memo), or else the members after the choices
   array scanned from the state there. */
static bool openai_memo(const pd_fastev_memo *m, scan *s, size_t len, pd_fastev_chunk *out)
{
    bool more;
    if (!memo_match(m, s, len, &out->text, &out->text_len))
        return false;
    out->choice = m->choice;
    if (m->rest && (size_t)(s->end - s->p) == m->rest &&
        memcmp(s->p, m->bytes + m->head + m->tail, m->rest) == 0) {
        state_out(m, &m->end, out);
        return true;
    }
    state_out(m, &m->at, out);
    return next_member(s, &more) && openai_top(s, more, m->at.seen, out, NULL);
}

/* A memo of a full scan that hit: the state after the choices array and, when they fit, the
   rest of the bytes and the state at the end. Text chunks only. */
static void openai_keep(pd_fastev_memo *m, const scan *s, const char *data, const resume *r,
                        const pd_fastev_chunk *out)
{
    size_t used;
    pd_fastev_memo_state at = {0, 0, r->seen, r->created}, end = {0, 0, r->end_seen, out->created};
    if (!r->at || out->role || out->finish || !memo_begin(m, s, data, r->at, &used))
        return;
    size_t rest = (size_t)(s->end - r->at);
    m->rest = memo_add(m, &used, r->at, rest) ? (uint16_t)rest : 0;
    if (!memo_str(m, &used, r->id, &at.id) || !memo_str(m, &used, r->model, &at.model))
        return;
    end.id = at.id, end.model = at.model; /* id and model usually come before the choices */
    if ((out->id != r->id && !memo_str(m, &used, out->id, &end.id)) ||
        (out->model != r->model && !memo_str(m, &used, out->model, &end.model)))
        return;
    m->at = at;
    m->end = end;
    m->choice = out->choice;
    memo_commit(m, s, data, r->at);
}

bool pd_fastev_openai_chunk(pd_fastev_memo *memo, const char *data, size_t len, char *buf,
                            size_t cap, pd_fastev_chunk *out)
{
    scan s;
    bool more;
    resume r = {0};
    scan_init(&s, data, len, buf, cap);
    memset(out, 0, sizeof *out);
    out->text = "";
    if (openai_memo(memo, &s, len, out))
        return true;
    scan_init(&s, data, len, buf, cap);
    memset(out, 0, sizeof *out);
    out->text = "";
    if (!open_object(&s, &more) || !openai_top(&s, more, 0, out, memo ? &r : NULL))
        return false;
    if (memo)
        openai_keep(memo, &s, data, &r, out);
    return true;
}

/* ---- Anthropic ------------------------------------------------------------------------ */

static bool anthropic_delta(scan *s, const char **text, size_t *text_len)
{
    static const key_name names[] = {KEY("type"), KEY("text")};
    unsigned seen = 0;
    bool more;
    const char *type;
    size_t n;
    if (!open_object(s, &more))
        return false;
    while (more) {
        const char *k;
        size_t kn;
        bool ok;
        if (!take_key(s, &k, &kn))
            return false;
        switch (key_bit(k, kn, names, 2, &seen)) {
        case 1:
            ok = take_str(s, &type, &n) && n == 10 && memcmp(type, "text_delta", 10) == 0;
            break;
        case 2: ok = take_text(s, text, text_len); break;
        default: ok = false;
        }
        if (!ok || !next_member(s, &more))
            return false;
    }
    return seen == 3;
}

static bool anthropic_full(scan *s, int64_t block, const char **text, size_t *text_len)
{
    static const key_name names[] = {KEY("type"), KEY("index"), KEY("delta")};
    unsigned seen = 0;
    bool more;
    if (!open_object(s, &more))
        return false;
    while (more) {
        const char *k, *type;
        size_t kn, n;
        uint64_t idx;
        bool ok;
        if (!take_key(s, &k, &kn))
            return false;
        switch (key_bit(k, kn, names, 3, &seen)) {
        case 1:
            ok = take_str(s, &type, &n) && n == 19 && memcmp(type, "content_block_delta", 19) == 0;
            break;
        case 2: ok = take_uint(s, &idx) && (int64_t)idx == block; break;
        case 4: ok = anthropic_delta(s, text, text_len); break;
        default: ok = false;
        }
        if (!ok || !next_member(s, &more))
            return false;
    }
    return seen == 7 && at_end(s);
}

bool pd_fastev_anthropic_text(pd_fastev_memo *memo, const char *data, size_t len, int64_t block,
                              char *buf, size_t cap, const char **text, size_t *text_len)
{
    scan s;
    if (block < 0)
        return false;
    scan_init(&s, data, len, buf, cap);
    if (memo && memo->block == block && memo_match(memo, &s, len, text, text_len) && s.p == s.end)
        return true;
    scan_init(&s, data, len, buf, cap);
    if (!anthropic_full(&s, block, text, text_len))
        return false;
    size_t used;
    if (memo && memo_begin(memo, &s, data, s.end, &used)) {
        memo->block = block;
        memo_commit(memo, &s, data, s.end);
    }
    return true;
}
