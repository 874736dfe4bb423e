/* gen_corpus.c: writes the labelled PII corpus (JSON lines) used by tests/pii/eval.c.
 *
 * Every line is {"text": ..., "entities": [{"type", "start", "end"}], "src": ...} with byte
 * offsets. Positives are generated for every entity type from their real rules (Luhn check
 * digits, IBAN mod-97, NHS mod-11, NANP and national numbering plans, SSA rules), placed in five
 * kinds of surroundings: chat messages, JSON tool arguments, source code and config, CSV rows,
 * and multilingual text. Generated hard negatives sit beside them: numbers one digit off a valid
 * checksum, dates without birth context, version strings, UUIDs, hashes, part numbers. The
 * hand-written hard negatives are in hard_negatives.jsonl.
 *
 * The name lists here are the generator's own (names from many cultures, several not in the
 * detector's list), so PERSON is not measured against the list it was built from.
 *
 * Usage: gen_corpus [seed] > tests/pii/corpus.jsonl   (deterministic for a seed; default 7) */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PER_TYPE 400 /* positives per entity type */

static uint64_t rng_state;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}
#define PICK(a) (a[rnd(sizeof(a) / sizeof(a[0]))])

/* ---- a text being built, with its labels ------------------------------------------------ */
typedef struct ent {
    const char *type;
    size_t start, end;
} ent;
typedef struct doc {
    char text[4096];
    size_t len;
    ent ents[8];
    size_t n;
} doc;

static void put(doc *d, const char *s)
{
    size_t n = strlen(s);
    if (d->len + n >= sizeof d->text)
        n = sizeof d->text - 1 - d->len;
    memcpy(d->text + d->len, s, n);
    d->len += n;
    d->text[d->len] = '\0';
}

static void put_ent(doc *d, const char *type, const char *value)
{
    size_t s = d->len;
    put(d, value);
    if (d->n < 8)
        d->ents[d->n++] = (ent){type, s, d->len};
}

/* Fills a template: "{}" is the entity, "{{n}}" nothing else; literal text otherwise. */
static void fill(doc *d, const char *tmpl, const char *type, const char *value)
{
    const char *p = strstr(tmpl, "{}");
    char head[1024];
    size_t hn = p ? (size_t)(p - tmpl) : strlen(tmpl);
    memcpy(head, tmpl, hn);
    head[hn] = '\0';
    put(d, head);
    if (p) {
        put_ent(d, type, value);
        put(d, p + 2);
    }
}

static void emit(const doc *d, const char *src)
{
    json_t *o = json_object(), *a = json_array();
    json_object_set_new(o, "text", json_stringn(d->text, d->len));
    for (size_t i = 0; i < d->n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "type", json_string(d->ents[i].type));
        json_object_set_new(e, "start", json_integer((json_int_t)d->ents[i].start));
        json_object_set_new(e, "end", json_integer((json_int_t)d->ents[i].end));
        json_array_append_new(a, e);
    }
    json_object_set_new(o, "entities", a);
    json_object_set_new(o, "src", json_string(src));
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s) {
        fprintf(stderr, "gen_corpus: could not encode a line (invalid UTF-8 in a template?)\n");
        exit(1);
    }
    puts(s);
    free(s);
    json_decref(o);
}

/* ---- value generators --------------------------------------------------------------------- */
static void digits(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('0' + rnd(10));
    out[n] = '\0';
}

static int luhn_digit(const char *d, size_t n) /* check digit to append to d[0..n) */
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)(d[n - 1 - i] - '0');
        if (i % 2 == 0) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return (int)((10 - sum % 10) % 10);
}

static const char *first_names[] = {
    "Maria",    "Jose",  "Wei",      "Aisha",  "Olumide", "Priya",     "Lukas",  "Sofia",
    "Hiroshi",  "Amara", "Mateo",    "Chloe",  "Dmitri",  "Fatima",    "Liam",   "Ingrid",
    "Kwame",    "Yuki",  "Elena",    "Rahul",  "Camille", "Joao",      "Anna",   "Mohammed",
    "Emma",     "Noah",  "Zanele",   "Thabo",  "Siobhan", "Nguyen",    "Oksana", "Bjorn",
    "Leila",    "Arjun", "Isabella", "Tomasz", "Chidi",   "Ananya",    "Pierre", "Greta",
    "Santiago", "Mei",   "Kofi",     "Ayesha", "Henrik",  "Valentina", "Jamal",  "Ngozi",
    "Sipho",    "Rania", "Emeka",    "Tariq",  "Ximena",  "Radu",      "Aoife",  "Dagny",
    "Teodora",  "Yusuf"};
static const char *last_names[] = {
    "Garcia",  "Chen",     "Okafor",       "Sharma",   "Muller",    "Rossi",    "Tanaka",
    "Mensah",  "Silva",    "Dubois",       "Ivanov",   "Khan",      "Smith",    "Johansson",
    "Adeyemi", "Nakamura", "Kowalski",     "Patel",    "Fernandes", "Novak",    "Osei",
    "Haddad",  "Larsen",   "Moreau",       "Schmidt",  "Costa",     "Okonkwo",  "Lindqvist",
    "Petrov",  "Mahlangu", "Papadopoulos", "Murphy",   "Oyelaran",  "Bianchi",  "Wagner",
    "Santos",  "Yilmaz",   "Kim",          "Andersen", "Nowak",     "Ferreira", "Gutierrez",
    "Obi",     "Varga"};

static void gen_email(char *o)
{
    static const char *dom[] = {"example.com",    "mail.example.org", "uni-berlin.de",
                                "empresa.com.br", "post.co.uk",       "corp.example.net",
                                "gmail.com",      "outlook.fr",       "startup.io",
                                "hospital.nhs.uk"};
    static const char *sep[] = {".", "_", "", "-"};
    char fn[32], ln[32];
    snprintf(fn, sizeof fn, "%s", PICK(first_names));
    snprintf(ln, sizeof ln, "%s", PICK(last_names));
    for (char *p = fn; *p; p++)
        *p = (char)(*p | 0x20);
    for (char *p = ln; *p; p++)
        *p = (char)(*p | 0x20);
    switch (rnd(4)) {
    case 0: sprintf(o, "%s%s%s@%s", fn, PICK(sep), ln, PICK(dom)); break;
    case 1: sprintf(o, "%c%s%u@%s", fn[0], ln, rnd(100), PICK(dom)); break;
    case 2: sprintf(o, "%s+%s@%s", fn, rnd(2) ? "news" : "work", PICK(dom)); break;
    default: sprintf(o, "%s.%s@%s", ln, fn, PICK(dom)); break;
    }
}

static void nanp(char *npa, char *nxx, char *line)
{
    do {
        npa[0] = (char)('2' + rnd(8));
        npa[1] = (char)('0' + rnd(9));
        npa[2] = (char)('0' + rnd(10));
    } while (npa[1] == '1' && npa[2] == '1');
    do {
        nxx[0] = (char)('2' + rnd(8));
        nxx[1] = (char)('0' + rnd(10));
        nxx[2] = (char)('0' + rnd(10));
    } while (nxx[1] == '1' && nxx[2] == '1');
    npa[3] = nxx[3] = '\0';
    digits(line, 4);
}

/* Returns 1 when the format needs context (bare digits). */
static int gen_phone(char *o)
{
    char a[8], b[8], c[8], x[16];
    switch (rnd(14)) {
    case 0:
        nanp(a, b, c);
        sprintf(o, "(%s) %s-%s", a, b, c);
        return 0;
    case 1:
        nanp(a, b, c);
        sprintf(o, "%s-%s-%s", a, b, c);
        return 0;
    case 2:
        nanp(a, b, c);
        sprintf(o, "+1 %s %s %s", a, b, c);
        return 0;
    case 3:
        nanp(a, b, c);
        sprintf(o, "%s.%s.%s", a, b, c);
        return 0;
    case 4:
        digits(x, 8);
        sprintf(o, "+44 20 %.4s %.4s", x, x + 4);
        return 0;
    case 5:
        digits(x, 6);
        sprintf(o, "07700 %s", x);
        return 0;
    case 6:
        digits(x, 7);
        sprintf(o, "0161 %.3s %.4s", x, x + 3);
        return 0;
    case 7:
        digits(x, 8);
        sprintf(o, "+49 30 %s", x);
        return 0;
    case 8:
        digits(x, 7);
        sprintf(o, "0171 %s", x);
        return 0;
    case 9:
        digits(x, 8);
        sprintf(o, "0%u %.2s %.2s %.2s %.2s", 1 + rnd(7), x, x + 2, x + 4, x + 6);
        return 0;
    case 10:
        digits(x, 8);
        sprintf(o, "+33 %u %.2s %.2s %.2s %.2s", 1 + rnd(7), x, x + 2, x + 4, x + 6);
        return 0;
    case 11:
        digits(x, 9);
        sprintf(o, "+91 %u%.4s %.5s", 6 + rnd(4), x, x + 4);
        return 0;
    case 12:
        digits(x, 8);
        sprintf(o, "(%u%u) 9%.4s-%.4s", 1 + rnd(9), 1 + rnd(9), x, x + 4);
        return 0;
    default:
        nanp(a, b, c);
        sprintf(o, "%s%s%s", a, b, c);
        return 1;
    }
}

typedef struct issuer {
    const char *prefix;
    int len;
} issuer;

static void gen_card(char *o, int *grouped)
{
    static const issuer iss[] = {{"4", 16},  {"51", 16},   {"55", 16},  {"2221", 16}, {"34", 15},
                                 {"37", 15}, {"6011", 16}, {"65", 16},  {"3530", 16}, {"36", 14},
                                 {"62", 16}, {"4", 13},    {"2200", 16}};
    const issuer *is = &PICK(iss);
    char d[24];
    size_t pl = strlen(is->prefix);
    memcpy(d, is->prefix, pl);
    digits(d + pl, (size_t)is->len - 1 - pl);
    d[is->len - 1] = (char)('0' + luhn_digit(d, (size_t)is->len - 1));
    d[is->len] = '\0';
    int style = rnd(3); /* contiguous, spaces, dashes */
    *grouped = style != 0;
    if (style == 0 || is->len == 13 || is->len == 14) {
        strcpy(o, d);
        *grouped = 0;
    } else if (is->len == 15) {
        char s = style == 1 ? ' ' : '-';
        sprintf(o, "%.4s%c%.6s%c%.5s", d, s, d + 4, s, d + 10);
    } else {
        char s = style == 1 ? ' ' : '-';
        sprintf(o, "%.4s%c%.4s%c%.4s%c%.4s", d, s, d + 4, s, d + 8, s, d + 12);
    }
}

static void gen_iban(char *o)
{
    static const struct {
        const char *cc, *bban; /* bban template: 9 digit, A letter, X alnum */
    } c[] = {{"DE", "999999999999999999"},
             {"GB", "AAAA99999999999999"},
             {"FR", "9999999999XXXXXXXXXXX99"},
             {"ES", "99999999999999999999"},
             {"IT", "A9999999999XXXXXXXXXXXX"},
             {"NL", "AAAA9999999999"},
             {"BE", "999999999999"},
             {"CH", "99999XXXXXXXXXXXX"},
             {"AT", "9999999999999999"},
             {"PL", "999999999999999999999999"},
             {"PT", "999999999999999999999"},
             {"SE", "99999999999999999999"},
             {"IE", "AAAA99999999999999"},
             {"NO", "99999999999"}};
    int k = (int)rnd(sizeof c / sizeof c[0]);
    char bban[40], num[100];
    size_t n = strlen(c[k].bban);
    for (size_t i = 0; i < n; i++) {
        char t = c[k].bban[i];
        bban[i] = t == '9'   ? (char)('0' + rnd(10))
                  : t == 'A' ? (char)('A' + rnd(26))
                             : (rnd(2) ? (char)('0' + rnd(10)) : (char)('A' + rnd(26)));
    }
    bban[n] = '\0';
    /* check digits: 98 - (bban + cc + "00") mod 97 */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s%s00", bban, c[k].cc);
    size_t m = 0;
    for (const char *p = tmp; *p; p++)
        m += (size_t)sprintf(num + m, "%d", *p >= 'A' ? *p - 'A' + 10 : *p - '0');
    unsigned rem = 0;
    for (size_t i = 0; i < m; i++)
        rem = (rem * 10 + (unsigned)(num[i] - '0')) % 97;
    char iban[48];
    snprintf(iban, sizeof iban, "%s%02u%s", c[k].cc, 98 - rem, bban);
    if (rnd(2)) {
        strcpy(o, iban);
        return;
    }
    size_t j = 0;
    for (size_t i = 0; iban[i]; i++) {
        if (i && i % 4 == 0)
            o[j++] = ' ';
        o[j++] = iban[i];
    }
    o[j] = '\0';
}

static void gen_ssn(char *o, int itin, int *bare)
{
    unsigned area, group;
    if (itin) {
        static const unsigned g[] = {50, 55, 60, 65, 70, 75, 78, 80, 85, 88, 90, 92, 94, 97, 99};
        area = 900 + rnd(100);
        group = PICK(g);
    } else {
        do
            area = 1 + rnd(899);
        while (area == 666);
        group = 1 + rnd(99);
    }
    unsigned serial = 1 + rnd(9999);
    int style = rnd(5);
    *bare = style == 4;
    if (style == 4)
        sprintf(o, "%03u%02u%04u", area, group, serial);
    else if (style == 3)
        sprintf(o, "%03u %02u %04u", area, group, serial);
    else
        sprintf(o, "%03u-%02u-%04u", area, group, serial);
}

static void gen_nino(char *o)
{
    static const char first[] = "ABCEGHJKLMNOPRSTWXYZ", second[] = "ABCEGHJKLMNPRSTWXYZ";
    char a, b;
    do {
        a = first[rnd(sizeof first - 1)];
        b = second[rnd(sizeof second - 1)];
    } while ((a == 'B' && b == 'G') || (a == 'G' && b == 'B') || (a == 'K' && b == 'N') ||
             (a == 'N' && b == 'K') || (a == 'N' && b == 'T') || (a == 'T' && b == 'N') ||
             (a == 'Z' && b == 'Z'));
    char d[8];
    digits(d, 6);
    char s = (char)('A' + rnd(4));
    if (rnd(2))
        sprintf(o, "%c%c%s%c", a, b, d, s);
    else
        sprintf(o, "%c%c %.2s %.2s %.2s %c", a, b, d, d + 2, d + 4, s);
}

static void gen_nhs(char *o)
{
    char d[12];
    for (;;) {
        digits(d, 9);
        unsigned sum = 0;
        for (int i = 0; i < 9; i++)
            sum += (unsigned)(d[i] - '0') * (unsigned)(10 - i);
        unsigned ck = 11 - sum % 11;
        if (ck == 11)
            ck = 0;
        if (ck == 10)
            continue;
        d[9] = (char)('0' + ck);
        d[10] = '\0';
        break;
    }
    if (rnd(3))
        sprintf(o, "%.3s %.3s %.4s", d, d + 3, d + 6);
    else
        strcpy(o, d);
}

static void gen_ip(char *o)
{
    switch (rnd(6)) {
    case 0: sprintf(o, "192.168.%u.%u", rnd(256), 1 + rnd(254)); break;
    case 1: sprintf(o, "10.%u.%u.%u", rnd(256), rnd(256), 1 + rnd(254)); break;
    case 2: sprintf(o, "%u.%u.%u.%u", 11 + rnd(200), rnd(256), rnd(256), 1 + rnd(254)); break;
    case 3:
        sprintf(o, "2001:db8:%x:%x:%x:%x:%x:%x", rnd(65536), rnd(65536), rnd(65536), rnd(65536),
                rnd(65536), rnd(65536));
        break;
    case 4: sprintf(o, "fe80::%x:%x:%x", 1 + rnd(65535), rnd(65536), 1 + rnd(65535)); break;
    default: sprintf(o, "2a02:%x:%x::%x", 1 + rnd(65535), rnd(65536), 1 + rnd(65535)); break;
    }
}

static void gen_mac(char *o)
{
    unsigned b[6];
    for (int i = 0; i < 6; i++)
        b[i] = rnd(256);
    switch (rnd(3)) {
    case 0: sprintf(o, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]); break;
    case 1: sprintf(o, "%02X-%02X-%02X-%02X-%02X-%02X", b[0], b[1], b[2], b[3], b[4], b[5]); break;
    default: sprintf(o, "%02x%02x.%02x%02x.%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]); break;
    }
}

static void rand_chars(char *o, size_t n, const char *alphabet)
{
    size_t k = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        o[i] = alphabet[rnd((unsigned)k)];
    o[n] = '\0';
}

static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url(const char *in, char *out)
{
    size_t n = strlen(in), j = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[j++] = B64URL[(v >> 18) & 63];
        out[j++] = B64URL[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = B64URL[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = B64URL[v & 63];
    }
    out[j] = '\0';
}

/* A key of a known shape (the whole value is the secret). */
static void gen_key(char *o)
{
    char r[200];
    switch (rnd(11)) {
    case 0:
        rand_chars(r, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
        sprintf(o, "AKIA%s", r);
        break;
    case 1:
        rand_chars(r, 36, ALNUM);
        sprintf(o, "ghp_%s", r);
        break;
    case 2:
        rand_chars(r, 20, ALNUM);
        sprintf(o, "glpat-%s", r);
        break;
    case 3: {
        char a[16], b[16], c[32];
        digits(a, 11);
        digits(b, 13);
        rand_chars(c, 24, ALNUM);
        sprintf(o, "xoxb-%s-%s-%s", a, b, c);
        break;
    }
    case 4:
        rand_chars(r, 24, ALNUM);
        sprintf(o, "sk_live_%s", r);
        break;
    case 5: {
        char a[80], b[80];
        rand_chars(a, 74, ALNUM);
        rand_chars(b, 74, ALNUM);
        sprintf(o, "sk-proj-%sT3BlbkFJ%s", a, b);
        break;
    }
    case 6:
        rand_chars(r, 93, B64URL);
        sprintf(o, "sk-ant-api03-%sAA", r);
        break;
    case 7:
        rand_chars(r, 35, B64URL);
        sprintf(o, "AIza%s", r);
        break;
    case 8: {
        char h[64], p[160], s[64], payload[128];
        b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", h);
        sprintf(payload, "{\"sub\":\"%u\",\"name\":\"%s\",\"iat\":%u}", rnd(100000),
                PICK(first_names), 1600000000 + rnd(100000000));
        b64url(payload, p);
        rand_chars(s, 43, B64URL);
        sprintf(o, "%s.%s.%s", h, p, s);
        break;
    }
    case 9:
        rand_chars(r, 36, ALNUM);
        sprintf(o, "npm_%s", r);
        break;
    default: {
        char l1[65], l2[65], l3[41];
        static const char B64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        rand_chars(l1, 64, B64);
        rand_chars(l2, 64, B64);
        rand_chars(l3, 40, B64);
        static const char *kind[] = {"RSA ", "EC ", "OPENSSH ", ""};
        const char *k = PICK(kind);
        sprintf(o, "-----BEGIN %sPRIVATE KEY-----\nMII%s\n%s\n%s==\n-----END %sPRIVATE KEY-----", k,
                l1, l2, l3, k);
        break;
    }
    }
}

static void gen_password(char *o)
{
    static const char sym[] = "!#$%&*@^?";
    char a[16];
    rand_chars(a, 6 + rnd(6), ALNUM);
    sprintf(o, "%s%c%u", a, sym[rnd(sizeof sym - 1)], rnd(100));
}

static void gen_secret_value(char *o)
{
    rand_chars(o, 24 + rnd(17), ALNUM);
}

static const char *months_en[] = {"January",   "February", "March",    "April",
                                  "May",       "June",     "July",     "August",
                                  "September", "October",  "November", "December"};
static const char *months_de[] = {"Januar",    "Februar", "M\xc3\xa4rz", "April",
                                  "Mai",       "Juni",    "Juli",        "August",
                                  "September", "Oktober", "November",    "Dezember"};
static const char *months_fr[] = {
    "janvier", "f\xc3\xa9vrier", "mars",      "avril",   "mai",      "juin",
    "juillet", "ao\xc3\xbbt",    "septembre", "octobre", "novembre", "d\xc3\xa9\x63\x65mbre"};
static const char *months_pt[] = {"janeiro",  "fevereiro", "mar\xc3\xa7o", "abril",
                                  "maio",     "junho",     "julho",        "agosto",
                                  "setembro", "outubro",   "novembro",     "dezembro"};

/* A date; *lang gets the language it is written for (0 en, 1 de, 2 fr, 3 pt). */
static void gen_date(char *o, int lang)
{
    unsigned d = 1 + rnd(28), m = 1 + rnd(12), y = 1940 + rnd(66);
    switch (lang) {
    case 1:
        if (rnd(2))
            sprintf(o, "%02u.%02u.%u", d, m, y);
        else
            sprintf(o, "%u. %s %u", d, months_de[m - 1], y);
        return;
    case 2:
        if (rnd(2))
            sprintf(o, "%02u/%02u/%u", d, m, y);
        else
            sprintf(o, "%u %s %u", d, months_fr[m - 1], y);
        return;
    case 3:
        if (rnd(2))
            sprintf(o, "%02u/%02u/%u", d, m, y);
        else
            sprintf(o, "%u de %s de %u", d, months_pt[m - 1], y);
        return;
    }
    switch (rnd(5)) {
    case 0: sprintf(o, "%02u/%02u/%u", m, d, y); break;
    case 1: sprintf(o, "%u-%02u-%02u", y, m, d); break;
    case 2: sprintf(o, "%s %u, %u", months_en[m - 1], d, y); break;
    case 3: sprintf(o, "%u %s %u", d, months_en[m - 1], y); break;
    default: sprintf(o, "%02u/%02u/%02u", d, m, y % 100); break;
    }
}

/* ---- templates ---------------------------------------------------------------------------- */
typedef struct tmpl {
    const char *src, *text;
} tmpl;

static const tmpl email_t[] = {
    {"chat", "Hi, please update my contact email to {} when you get a chance."},
    {"chat", "You can reach me at {} or just reply here."},
    {"chat", "cc {} on the thread, she owns the budget"},
    {"json", "{\"tool\":\"send_email\",\"arguments\":{\"to\":\"{}\",\"subject\":\"Q3 report\"}}"},
    {"json", "{\"user\":{\"id\":8812,\"email\":\"{}\",\"verified\":true}}"},
    {"code", "const ADMIN_EMAIL = '{}';"},
    {"code", "git config user.email \"{}\""},
    {"csv", "id,email,city\n4417,{},Lisbon"},
    {"multi", "Meine E-Mail-Adresse lautet {}, danke!"},
    {"multi", "Mon adresse e-mail est {}."},
    {"multi",
     "\xe8\xaf\xb7\xe5\x8f\x91\xe9\x82\xae\xe4\xbb\xb6\xe5\x88\xb0 {} \xe8\xb0\xa2\xe8\xb0\xa2"},
    {"multi", "\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab: {}"},
};
static const tmpl phone_t[] = {
    {"chat", "Call me at {} after 6pm."},
    {"chat", "My phone number is {}, text is fine too."},
    {"chat", "Best number to reach me: {}"},
    {"json", "{\"tool\":\"create_contact\",\"arguments\":{\"name\":\"Support\",\"phone\":\"{}\"}}"},
    {"code", "PHONE = \"{}\"  # on-call"},
    {"csv", "id,phone,city\n77,{},Austin"},
    {"multi", "Ruf mich an unter {}, danke."},
    {"multi", "Mon num\xc3\xa9ro de t\xc3\xa9l\xc3\xa9phone est le {}."},
    {"multi", "Meu telefone \xc3\xa9 {}."},
    {"multi",
     "\xe9\x9b\xbb\xe8\xa9\xb1\xe7\x95\xaa\xe5\x8f\xb7\xe3\x81\xaf {} \xe3\x81\xa7\xe3\x81\x99"},
};
static const tmpl card_t[] = {
    {"chat", "Please charge my card {} for the renewal."},
    {"chat", "my visa is {} exp 09/27"},
    {"json", "{\"tool\":\"pay\",\"arguments\":{\"card_number\":\"{}\",\"amount\":49.99}}"},
    {"code", "TEST_CARD = \"{}\""},
    {"csv", "customer,card,plan\n1182,{},pro"},
    {"multi", "Meine Kreditkarte: {}"},
    {"multi", "Num\xc3\xa9ro de carte : {}"},
};
static const tmpl iban_t[] = {
    {"chat", "Send the refund to {} please."},
    {"chat", "IBAN: {} (joint account)"},
    {"json", "{\"tool\":\"transfer\",\"arguments\":{\"iban\":\"{}\",\"amount\":1200}}"},
    {"code", "payout_iban = \"{}\""},
    {"csv", "vendor,iban\nACME GmbH,{}"},
    {"multi", "Bitte \xc3\xbc\x62\x65rweisen Sie den Betrag auf {}."},
};
static const tmpl ssn_t[] = {
    {"chat", "My SSN is {} if you need it for the form."},
    {"chat", "social security number {} on the W-2"},
    {"json", "{\"applicant\":{\"ssn\":\"{}\",\"state\":\"CA\"}}"},
    {"csv", "name_id,ssn,state\n31,{},TX"},
    {"code", "ssn = '{}'  # test fixture"},
};
static const tmpl itin_t[] = {
    {"chat", "I don't have an SSN, my ITIN is {}."},
    {"json", "{\"taxpayer\":{\"itin\":\"{}\"}}"},
    {"csv", "filer,itin\n12,{}"},
};
static const tmpl nino_t[] = {
    {"chat", "My National Insurance number is {}."},
    {"json", "{\"employee\":{\"nino\":\"{}\",\"tax_code\":\"1257L\"}}"},
    {"csv", "staff,ni_number\n4,{}"},
    {"chat", "NI no: {} for payroll"},
};
static const tmpl nhs_t[] = {
    {"chat", "My NHS number is {}, appointment next week."},
    {"json", "{\"patient\":{\"nhs_number\":\"{}\"}}"},
    {"csv", "ward,nhs_number\n7,{}"},
    {"chat", "NHS no. {} - please check the referral"},
};
static const tmpl ip_t[] = {
    {"chat", "The server at {} keeps timing out."},
    {"chat", "I'm connecting from {} and get a 403."},
    {"json", "{\"tool\":\"block_ip\",\"arguments\":{\"ip\":\"{}\"}}"},
    {"code", "upstream backend { server {}; }"},
    {"code", "HOST = \"{}\""},
    {"csv", "time,src,status\n12:01,{},200"},
    {"multi", "Der Server {} antwortet nicht."},
};
static const tmpl mac_t[] = {
    {"chat", "The printer's MAC address is {}."},
    {"code", "ether {} txqueuelen 1000"},
    {"json", "{\"device\":{\"mac\":\"{}\",\"vendor\":\"acme\"}}"},
    {"csv", "host,mac\nprinter-2,{}"},
};
static const tmpl apikey_t[] = {
    {"chat", "I accidentally pasted {} in the channel, how do I rotate it?"},
    {"code", "client = Client(api_key=\"{}\")"},
    {"code", "export SERVICE_CREDENTIAL={}"},
    {"json", "{\"headers\":{\"Authorization\":\"Bearer {}\"}}"},
    {"chat", "here is the key:\n{}\nwhy does it fail?"},
};
static const tmpl pw_t[] = {
    {"code", "DB_PASSWORD={}"},
    {"code", "password = \"{}\""},
    {"json", "{\"username\":\"admin\",\"password\":\"{}\"}"},
    {"code", "spring.datasource.password={}"},
    {"chat", "the wifi password: {} (don't share)"},
};
static const tmpl secret_t[] = {
    {"code", "API_SECRET=\"{}\""},
    {"json", "{\"client_secret\":\"{}\",\"client_id\":\"web\"}"},
    {"code", "auth_token: {}"},
    {"code", "STRIPE_WEBHOOK_SECRET={}"},
};
static const tmpl dob_t[] = {
    {"chat", "I was born on {} in Lagos."},
    {"chat", "DOB: {}"},
    {"json", "{\"patient\":{\"date_of_birth\":\"{}\",\"sex\":\"F\"}}"},
    {"csv", "id,dob\n9,{}"},
    {"chat", "Date of birth {}, policy holder"},
};
static const tmpl dob_de[] = {{"multi", "Ich bin am {} geboren."}, {"multi", "Geburtsdatum: {}"}};
static const tmpl dob_fr[] = {{"multi", "Je suis n\xc3\xa9 le {} \xc3\xa0 Lyon."},
                              {"multi", "Date de naissance : {}"}};
static const tmpl dob_pt[] = {{"multi", "Data de nascimento: {}"},
                              {"multi", "Nasci em {} em Recife."}};
static const tmpl person_t[] = {
    {"chat", "Hi, my name is {} and I have a question about my bill."},
    {"chat", "Patient: {}, 54, presenting with chest pain."},
    {"json", "{\"patient_name\":\"{}\",\"ward\":\"B2\"}"},
    {"chat", "Please forward this to Dr. {} before Friday."},
    {"chat", "Thanks, {}"},
    {"multi", "Je m'appelle {} et j'habite \xc3\xa0 Lyon."},
    {"multi", "Ich hei\xc3\x9f\x65 {} und komme aus Hamburg."},
    {"multi", "Me chamo {} e moro em Recife."},
    {"csv", "full_name: {}"},
};

static void one(const tmpl *t, size_t nt, const char *type, const char *value, const char *pre)
{
    doc d = {{0}, 0, {{0}}, 0};
    const tmpl *x = &t[rnd((unsigned)nt)];
    if (pre)
        put(&d, pre);
    fill(&d, x->text, type, value);
    emit(&d, x->src);
}
#define ONE(arr, type, value) one(arr, sizeof(arr) / sizeof(arr[0]), type, value, NULL)

/* ---- generated hard negatives ------------------------------------------------------------ */
static void negatives(void)
{
    char v[256], s[512];
    for (int i = 0; i < 150; i++) {
        doc d = {{0}, 0, {{0}}, 0};
        switch (rnd(10)) {
        case 0: { /* 16 digits one off a valid Luhn number */
            char c[24];
            strcpy(c, "4");
            digits(c + 1, 14);
            int ck = luhn_digit(c, 15);
            c[15] = (char)('0' + (ck + 1 + rnd(9)) % 10);
            c[16] = '\0';
            snprintf(s, sizeof s, "Order %s is out for delivery.", c);
            break;
        }
        case 1:
            snprintf(s, sizeof s, "Released v%u.%u.%u.%u with bug fixes.", rnd(20), rnd(30),
                     rnd(100), rnd(200));
            break;
        case 2:
            snprintf(s, sizeof s, "trace id %08x-%04x-4%03x-a%03x-%08x%04x", rnd(1u << 31),
                     rnd(65536), rnd(4096), rnd(4096), rnd(1u << 31), rnd(65536));
            break;
        case 3:
            rand_chars(v, 64, "0123456789abcdef");
            snprintf(s, sizeof s, "sha256=%s", v);
            break;
        case 4:
            snprintf(s, sizeof s, "Meeting on %02u/%02u/20%02u at %u:%02u.", 1 + rnd(28),
                     1 + rnd(12), 20 + rnd(6), 8 + rnd(10), rnd(60));
            break;
        case 5:
            snprintf(s, sizeof s, "Part no. %03u-%03u-%04u-%02u in stock", 200 + rnd(700),
                     200 + rnd(700), rnd(10000), rnd(100));
            break;
        case 6: { /* an NHS-shaped number failing mod 11, in NHS context */
            char c[12];
            digits(c, 10);
            unsigned sum = 0;
            for (int k = 0; k < 9; k++)
                sum += (unsigned)(c[k] - '0') * (unsigned)(10 - k);
            unsigned ck = (11 - sum % 11) % 11;
            c[9] = (char)('0' + (ck + 1) % 10);
            if (ck == 10 || (ck + 1) % 10 == ck % 11)
                c[9] = (char)('0' + (ck + 2) % 10);
            snprintf(s, sizeof s, "NHS ref %.3s %.3s %.4s on the letter", c, c + 3, c + 6);
            break;
        }
        case 7:
            snprintf(s, sizeof s, "ts=%u%03u level=info", 1600000000 + rnd(100000000), rnd(1000));
            break;
        case 8:
            snprintf(s, sizeof s, "Invoice %u-%06u due %u days", 2020 + rnd(6), rnd(1000000),
                     15 + rnd(46));
            break;
        default:
            snprintf(s, sizeof s, "ISBN 978-%u-%03u-%05u-%u", rnd(10), rnd(1000), rnd(100000),
                     rnd(10));
            break;
        }
        put(&d, s);
        emit(&d, "neg");
    }
}

int main(int argc, char **argv)
{
    rng_state = argc > 1 ? strtoull(argv[1], NULL, 10) : 7;
    if (!rng_state)
        rng_state = 7;
    char v[1024], w[1100];
    for (int i = 0; i < N_PER_TYPE; i++) {
        gen_email(v);
        ONE(email_t, "EMAIL", v);

        int bare = gen_phone(v);
        if (bare) { /* bare digits are a phone number only with context */
            doc d = {{0}, 0, {{0}}, 0};
            fill(&d, rnd(2) ? "Call me on {} tomorrow." : "{\"phone\":\"{}\"}", "PHONE", v);
            emit(&d, "chat");
        } else {
            ONE(phone_t, "PHONE", v);
        }

        int grouped;
        gen_card(v, &grouped);
        ONE(card_t, "CREDIT_CARD", v);

        gen_iban(v);
        ONE(iban_t, "IBAN", v);

        gen_ssn(v, 0, &bare);
        ONE(ssn_t, "US_SSN", v);
        gen_ssn(v, 1, &bare);
        ONE(itin_t, "US_ITIN", v);

        gen_nino(v);
        ONE(nino_t, "UK_NINO", v);
        gen_nhs(v);
        ONE(nhs_t, "UK_NHS", v);

        gen_ip(v);
        ONE(ip_t, "IP_ADDRESS", v);
        gen_mac(v);
        ONE(mac_t, "MAC_ADDRESS", v);

        switch (i % 3) {
        case 0:
            gen_key(v);
            ONE(apikey_t, "SECRET", v);
            break;
        case 1:
            gen_password(v);
            ONE(pw_t, "SECRET", v);
            break;
        default:
            gen_secret_value(v);
            ONE(secret_t, "SECRET", v);
            break;
        }
        if (i % 8 == 0) { /* credentials in a URL */
            gen_password(v);
            doc d = {{0}, 0, {{0}}, 0};
            put(&d, "DATABASE_URL=postgres://app:");
            put_ent(&d, "SECRET", v);
            put(&d, "@db.internal:5432/prod");
            emit(&d, "code");
        }

        int lang = (int)rnd(6);
        lang = lang > 3 ? 0 : lang;
        gen_date(v, lang);
        if (lang == 1)
            ONE(dob_de, "DATE_OF_BIRTH", v);
        else if (lang == 2)
            ONE(dob_fr, "DATE_OF_BIRTH", v);
        else if (lang == 3)
            ONE(dob_pt, "DATE_OF_BIRTH", v);
        else
            ONE(dob_t, "DATE_OF_BIRTH", v);

        const tmpl *pt = &person_t[rnd(sizeof person_t / sizeof *person_t)];
        int surname_only = strstr(pt->text, "Dr. {}") != NULL;
        int first_only = strstr(pt->text, "Thanks, {}") != NULL;
        if (surname_only)
            snprintf(w, sizeof w, "%s", PICK(last_names));
        else if (first_only)
            snprintf(w, sizeof w, "%s", PICK(first_names));
        else
            snprintf(w, sizeof w, "%s %s", PICK(first_names), PICK(last_names));
        one(pt, 1, "PERSON", w, NULL);
    }
    negatives();
    return 0;
}
