/* secret.c: validators for SECRET: keys with a known shape, JWTs, PEM private keys, values
 * assigned to secret-looking keys, and passwords inside URLs.
 *
 * Known shapes (ghp_, AKIA, sk-ant-, ...) are nearly certain once their body is not a
 * placeholder. Assignments are the hard part: `password = "..."` in a config is a secret but
 * `password = request.form["password"]`, `"max_tokens": 1024` and `token: string` are not. The
 * key name is split into words (DB_PASSWORD -> db, password; apiKey -> api, key) and looked up
 * in word tables (tables.c), then the value must look like data rather than code, a type name or
 * a template, and a non-password secret must have the entropy of a random string. */
#include "pii/pii_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- SECRET ------------------------------------------------------------------------------- */
static size_t distinct(const char *s, size_t n)
{
    unsigned char seen[256] = {0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!seen[(unsigned char)s[i]]++)
            k++;
    return k;
}

/* Keys of a known shape: the whole run of token bytes is the secret; placeholder bodies like
   "ghp_xxxxxxxx..." have too few distinct bytes to be real. */
int pii_v_token(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    while (e < c->len && e - s < 1024 && (pii_isword((unsigned char)t[e]) || t[e] == '-'))
        e++;
    size_t body = s + (size_t)p->arg;
    if (body >= e || distinct(t + body, e - body) < 8)
        return 0;
    return pii_emit(c, PD_PII_SECRET, s, e, p->base, p->name);
}

static int b64url_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (pii_isdigit(ch))
        return ch - '0' + 52;
    return ch == '-' || ch == '+' ? 62 : (ch == '_' || ch == '/') ? 63 : -1;
}

/* Decodes up to max bytes of base64url from s[0..n). */
static size_t b64url_decode(const char *s, size_t n, char *out, size_t max)
{
    size_t k = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0)
            break;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)((acc >> bits) & 0xff);
        }
    }
    return k;
}

int pii_v_jwt(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    const char *dot = memchr(t + s, '.', e - s);
    if (!dot)
        return 0;
    char hdr[96];
    size_t n = b64url_decode(t + s, (size_t)(dot - (t + s)), hdr, sizeof hdr);
    int json = n > 2 && hdr[0] == '{' &&
               (memmem(hdr, n, "\"alg\"", 5) || memmem(hdr, n, "\"typ\"", 5) ||
                memmem(hdr, n, "\"kid\"", 5));
    return pii_emit(c, PD_PII_SECRET, s, e, json ? p->base : 0.8f, p->name);
}

/* A key block is a few KiB (an RSA-8192 PEM is ~6.4 KiB). */
#define PEM_MAX (16u * 1024)

static int pem_body_byte(unsigned char ch)
{
    return pii_isalnum(ch) || pii_in_set(ch, "+/=\r\n\t :,-\\");
}

/* From the BEGIN line to the end of the matching END line. The body is read only up to the
   next "-----": an END line ends the block, anything else (another BEGIN, a cut-off key) ends
   it where the body ends, so each BEGIN costs at most the length of its own block. */
int pii_v_pem(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    size_t lim = c->len - e < PEM_MAX ? c->len : e + PEM_MAX, stop = e;
    while (stop < lim && pem_body_byte((unsigned char)t[stop]) &&
           !(t[stop] == '-' && stop + 5 <= c->len && memcmp(t + stop, "-----", 5) == 0))
        stop++;
    if (stop + 8 <= c->len && memcmp(t + stop, "-----END", 8) == 0) {
        size_t from = stop + 8, rest = c->len - from < 64 ? c->len - from : 64;
        const char *close = memmem(t + from, rest, "-----", 5);
        if (close)
            stop = (size_t)(close - t) + 5;
    }
    while (stop > e && (t[stop - 1] == '\n' || t[stop - 1] == '\r' || t[stop - 1] == ' '))
        stop--;
    return pii_emit(c, PD_PII_SECRET, s, stop, p->base, p->name);
}

/* ---- assignments: `password = "..."`, `API_KEY: ...`, `Authorization: Bearer ...` --------- */
#define MAXTOK 8
typedef struct key_tokens {
    char tok[MAXTOK][24];
    size_t n;
} key_tokens;

static int is_key_byte(unsigned char ch)
{
    return pii_isword(ch) || ch == '-' || ch == '.' || ch >= 0x80;
}

/* Splits an identifier at _ - . and camelCase humps, lower-cased. */
static void split_key(const char *k, size_t n, key_tokens *kt)
{
    kt->n = 0;
    size_t len = 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned char ch = i < n ? (unsigned char)k[i] : 0;
        int brk = !ch || ch == '_' || ch == '-' || ch == '.';
        int hump = i > 0 && ch >= 'A' && ch <= 'Z' && k[i - 1] >= 'a' && k[i - 1] <= 'z';
        if ((brk || hump) && len > 0) {
            if (kt->n < MAXTOK)
                kt->tok[kt->n++][len] = '\0';
            len = 0;
        }
        if (!brk && kt->n < MAXTOK && len < 23)
            kt->tok[kt->n][len++] = (char)pii_lower(ch);
    }
}

static int in_list(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(w, *list) == 0)
            return 1;
    return 0;
}

static int ends_with(const char *w, const char *suffix)
{
    size_t a = strlen(w), b = strlen(suffix);
    return a > b && strcmp(w + a - b, suffix) == 0;
}

enum { KEY_NONE, KEY_PASSWORD, KEY_SECRET };

static int key_family(const key_tokens *kt)
{
    int fam = KEY_NONE;
    for (size_t i = 0; i < kt->n; i++) {
        const char *w = kt->tok[i];
        char pair[56];
        if (in_list(w, pii_password_key_words) || ends_with(w, "password") ||
            ends_with(w, "passwd")) {
            fam = KEY_PASSWORD;
            continue;
        }
        if (i > 0) {
            snprintf(pair, sizeof pair, "%s:%s", kt->tok[i - 1], w);
            if (in_list(pair, pii_secret_key_words)) {
                fam = fam ? fam : KEY_SECRET;
                continue;
            }
        }
        if (in_list(w, pii_secret_key_words) || ends_with(w, "secret") || ends_with(w, "token")) {
            fam = fam ? fam : KEY_SECRET;
            continue;
        }
        if (in_list(w, pii_key_modifiers))
            return KEY_NONE;
    }
    return fam;
}

static int is_placeholder(const char *v, size_t n, const key_tokens *kt)
{
    char low[40];
    if (n < sizeof low) {
        for (size_t i = 0; i < n; i++)
            low[i] = (char)pii_lower((unsigned char)v[i]);
        low[n] = '\0';
        if (in_list(low, pii_placeholder_values))
            return 1;
        for (size_t i = 0; i < kt->n; i++)
            if (strcmp(low, kt->tok[i]) == 0)
                return 1;
    }
    /* variable references and templates: $VAR, ${VAR}, {{ var }}, <password>, %(pw)s, [REDACTED] */
    if (pii_in_set((unsigned char)v[0], "${<%[*#(") || pii_all_same(v, n))
        return 1;
    return memmem(v, n, "...", 3) || memmem(v, n, "xxxx", 4) || memmem(v, n, "XXXX", 4);
}

/* An unquoted value that is code rather than data: os.environ[...], config.get(...), f(x). */
static int looks_like_code(const char *v, size_t n)
{
    if (memchr(v, '(', n))
        return 1;
    size_t i = 0;
    if (!(pii_isalpha((unsigned char)v[0]) || v[0] == '_'))
        return 0;
    while (i < n && pii_isword((unsigned char)v[i]))
        i++;
    return i < n && (v[i] == '.' || v[i] == '[') && i + 1 < n &&
           (pii_isalpha((unsigned char)v[i + 1]) || v[i + 1] == '\'' || v[i + 1] == '"');
}

static int classes(const char *v, size_t n)
{
    int lo = 0, up = 0, dg = 0, sy = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch >= 'a' && ch <= 'z')
            lo = 1;
        else if (ch >= 'A' && ch <= 'Z')
            up = 1;
        else if (pii_isdigit(ch))
            dg = 1;
        else
            sy = 1;
    }
    return lo + up + dg + sy;
}

/* A digit, or a symbol other than a space. */
static int digit_or_symbol(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!pii_isalpha((unsigned char)v[i]) && v[i] != ' ')
            return 1;
    return 0;
}

static float value_score(int fam, const char *v, size_t n, int quoted, const key_tokens *kt)
{
    if (n < 5 || n > 512 || is_placeholder(v, n, kt))
        return 0;
    if (fam == KEY_PASSWORD) {
        int has_space = memchr(v, ' ', n) != NULL;
        if (!quoted && (n < 6 || looks_like_code(v, n)))
            return 0;
        /* unquoted, a password shows two kinds of characters; with spaces, a digit or symbol
           (else it is a word, a type name or a UI label such as "Enter your password") */
        if (!quoted && classes(v, n) < 2)
            return 0;
        if (has_space && (!quoted || !digit_or_symbol(v, n)))
            return 0;
        return 0.8f;
    }
    if (n < 12 || memchr(v, ' ', n) || (!quoted && looks_like_code(v, n)))
        return 0;
    if (classes(v, n) < 2 || pii_entropy(v, n) < 3.0)
        return 0;
    return pii_entropy(v, n) >= 4.0 ? 0.9f : 0.85f;
}

/* The value that starts at t[e] (after the operator); a quote just before e opens it. In a
   query string (query set) an unquoted value also ends at '&'. */
static int find_value(const char *t, size_t len, size_t e, int query, size_t *vs, size_t *ve,
                      int *quoted)
{
    char q = 0;
    size_t i = e;
    if (i > 0 && (t[i - 1] == '"' || t[i - 1] == '\''))
        q = t[i - 1];
    /* Authorization: Bearer <token> / Basic <base64> */
    size_t w = i;
    while (w < len && w - i < 8 && pii_isalpha((unsigned char)t[w]))
        w++;
    if (w < len && t[w] == ' ' && w - i >= 5 &&
        (strncasecmp(t + i, "bearer", 6) == 0 || strncasecmp(t + i, "basic", 5) == 0 ||
         strncasecmp(t + i, "token", 5) == 0)) {
        i = w;
        while (i < len && t[i] == ' ')
            i++;
    }
    size_t b = i;
    int esc = q && e >= 2 && t[e - 2] == '\\'; /* a JSON-escaped quote: \"...\" */
    while (i < len && i - b <= 512) {
        unsigned char ch = (unsigned char)t[i];
        if (q) {
            if (ch == '\n' || (ch == (unsigned char)q && (!esc || t[i - 1] == '\\')))
                break;
            if (ch == '\\' && !esc && i + 1 < len) {
                i += 2;
                continue;
            }
        } else if (ch <= ' ' || pii_in_set(ch, "\"',;)]}>") || (ch == '&' && query) ||
                   (ch == '\\' && i + 1 < len && (t[i + 1] == 'n' || t[i + 1] == '"'))) {
            break;
        }
        i++;
    }
    if (q && (i >= len || t[i] != q))
        return 0;
    if (esc && i > b)
        i--; /* leave the backslash of \" outside */
    *vs = b;
    *ve = i;
    *quoted = q != 0;
    return i > b;
}

int pii_v_assign(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    (void)p; /* the validator name depends on the key: password or other secret */
    const char *t = c->text;
    size_t ks = s, ke = s;
    while (ks > 0 && s - ks < 64 && is_key_byte((unsigned char)t[ks - 1]))
        ks--;
    while (ke < e && is_key_byte((unsigned char)t[ke]))
        ke++;
    key_tokens kt;
    split_key(t + ks, ke - ks, &kt);
    int fam = key_family(&kt);
    size_t vs, ve;
    int quoted;
    int query = ks > 0 && (t[ks - 1] == '?' || t[ks - 1] == '&');
    if (fam == KEY_NONE || !find_value(t, c->len, e, query, &vs, &ve, &quoted))
        return 0;
    while (ve > vs && (t[ve - 1] == '.' || t[ve - 1] == ':') && !quoted)
        ve--; /* sentence punctuation after an unquoted value */
    if (ve <= vs)
        return 0;
    float score = value_score(fam, t + vs, ve - vs, quoted, &kt);
    if (score <= 0)
        return 0;
    return pii_emit(c, PD_PII_SECRET, vs, ve, score,
                    fam == KEY_PASSWORD ? "password_assignment" : "secret_assignment");
}

int pii_v_urlcred(pii_ctx *c, const pii_pattern *p, size_t s, size_t e)
{
    const char *t = c->text;
    const char *sep = memmem(t + s, e - s, "://", 3);
    if (!sep)
        return 0;
    size_t u = (size_t)(sep - t) + 3;
    const char *colon = memchr(t + u, ':', e - u);
    if (!colon)
        return 0;
    size_t vs = (size_t)(colon - t) + 1, ve = e - 1; /* t[e-1] is the @ */
    /* an unencoded '@' inside the password: the userinfo ends at the last '@' before the host */
    for (size_t i = e; i < c->len && i - e < 128; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch <= ' ' || pii_in_set(ch, "/\"'<>?#"))
            break;
        if (ch == '@')
            ve = i;
    }
    key_tokens none = {.n = 0};
    if (ve <= vs || ve - vs < 3 || is_placeholder(t + vs, ve - vs, &none))
        return 0;
    return pii_emit(c, PD_PII_SECRET, vs, ve, p->base, p->name);
}
