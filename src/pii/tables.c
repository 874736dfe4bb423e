/* tables.c: every pattern and word list of the detector, as data.
 *
 * A pattern is a loose shape in Vectorscan syntax: cheap to match, allowed to over-match. The
 * validator named next to it does the real work (checksum, country table, calendar, key-name
 * tokens), so a shape only has to make sure that every true entity produces a candidate.
 * Shapes that need their start use PII_SOM; the trigger phrases of PERSON only need their end.
 *
 * Adding an entity: add its shapes here, a validator in validate.c, its context words below,
 * positives and hard negatives to tests/pii, and check `pii_eval` stays at target. */
#include "pii/pii_int.h"

#define TOK "[A-Za-z0-9_-]"
/* An upper-case first letter: ASCII, Latin-1 (À-Þ) or Latin Extended-A (Ā-Ž) in UTF-8. */
#define CAP "(?:[A-Z]|\xc3[\x80-\x9e]|\xc4[\x80-\xbf]|\xc5[\x80-\xbf])"
/* Key-name shapes that may hold a secret, up to and including the assignment operator. */
#define KEY_TRIGGER                                                                                \
    "(?:pass|pwd|\\bpw\\b|kennwort|senha|contrase|secret|token|key|credential|auth|bearer)"
#define QUOTE "(?:\\\\?[\"'])?"
#define D(T) (1u << PD_PII_##T)

/* Patterns flagged PII_NUMERIC are the class-led shapes (a run of digits; two capitals and
   digits): they go into a database of their own, see scan.c. */
const pii_pattern pii_patterns[] = {
    /* ---- numbers: one shape for every digit-run entity; pii_num_shapes below sorts them ---- */
    {D(PHONE) | D(CREDIT_CARD) | D(US_SSN) | D(US_ITIN) | D(UK_NHS) | D(IP_ADDRESS) |
         D(DATE_OF_BIRTH),
     "(?:\\+|\\(|\\b)[0-9][0-9 ().\\/-]{4,44}[0-9]\\b", PII_SOM | PII_NUMERIC, pii_v_number, 0,
     "number", 0},
    /* ---- two capitals then digits: IBAN, UK_NINO ---- */
    {D(IBAN) | D(UK_NINO), "\\b[A-Z]{2} ?[0-9]{2}[ 0-9A-Z]{5,40}", PII_SOM | PII_NUMERIC,
     pii_v_alnum, 1.0f, "iban_mod97", 0},

    /* ---- EMAIL: anchored on the @; the validator reads the local part back from it ---- */
    {D(EMAIL), "[A-Za-z0-9._%+-]@(?:[A-Za-z0-9-]+\\.)+[A-Za-z]{2,24}\\b", 0, pii_v_email, 1.0f,
     "email", 0},

    /* ---- network ---- */
    {D(IP_ADDRESS), ":[0-9A-Fa-f]{0,4}:", 0, pii_v_ipv6, 0.9f, "ipv6", 0},
    {D(MAC_ADDRESS), "\\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\\b", 0, pii_v_mac, 0.9f, "mac", 0},
    {D(MAC_ADDRESS), "\\b[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}\\b", 0, pii_v_mac, 0.9f,
     "mac", 1},

    /* ---- SECRET: keys with a known shape (arg: where the body starts after the prefix) ---- */
    {D(SECRET), "\\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|APKA)[A-Z2-7]{16}\\b",
     PII_SOM, pii_v_token, 1.0f, "aws_access_key_id", 4},
    {D(SECRET), "\\bgh[pousr]_[A-Za-z0-9]{36,}\\b", PII_SOM, pii_v_token, 1.0f, "github_token", 4},
    {D(SECRET), "\\bgithub_pat_[A-Za-z0-9_]{22,}", PII_SOM, pii_v_token, 1.0f, "github_pat", 11},
    {D(SECRET), "\\bgl(?:pat|ptt|dt|rt|cbt|imt|soat|ffct|agent)-" TOK "{20,}", PII_SOM, pii_v_token,
     1.0f, "gitlab_token", 6},
    {D(SECRET), "\\bxox[abposre]-[A-Za-z0-9-]{10,}", PII_SOM, pii_v_token, 0.95f, "slack_token", 5},
    {D(SECRET), "https://hooks\\.slack\\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}",
     PII_SOM, pii_v_token, 1.0f, "slack_webhook", 33},
    {D(SECRET), "\\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}", PII_SOM, pii_v_token, 1.0f,
     "stripe_key", 8},
    {D(SECRET), "\\bwhsec_[A-Za-z0-9]{24,}", PII_SOM, pii_v_token, 1.0f, "stripe_webhook", 6},
    {D(SECRET), "\\bsk-(?:proj-|svcacct-|admin-)?" TOK "{16,}T3BlbkFJ" TOK "{16,}", PII_SOM,
     pii_v_token, 1.0f, "openai_key", 3},
    {D(SECRET), "\\bsk-(?:proj|svcacct|admin)-" TOK "{40,}", PII_SOM, pii_v_token, 0.95f,
     "openai_key", 8},
    {D(SECRET), "\\bsk-[A-Za-z0-9]{48}\\b", PII_SOM, pii_v_token, 0.9f, "openai_key", 3},
    {D(SECRET), "\\bsk-ant-(?:api|admin|oat|sid)[0-9]{2}-" TOK "{80,}", PII_SOM, pii_v_token, 1.0f,
     "anthropic_key", 14},
    {D(SECRET), "\\bAIza" TOK "{35}", PII_SOM, pii_v_token, 1.0f, "google_api_key", 4},
    {D(SECRET), "\\bGOCSPX-" TOK "{28}", PII_SOM, pii_v_token, 1.0f, "google_oauth_secret", 7},
    {D(SECRET), "\\bnpm_[A-Za-z0-9]{36}\\b", PII_SOM, pii_v_token, 1.0f, "npm_token", 4},
    {D(SECRET), "\\bhf_[A-Za-z]{34}\\b", PII_SOM, pii_v_token, 1.0f, "huggingface_token", 3},
    {D(SECRET), "\\bSG\\." TOK "{22}\\." TOK "{43}", PII_SOM, pii_v_token, 1.0f, "sendgrid_key", 3},
    {D(SECRET), "-----BEGIN[A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----", PII_SOM, pii_v_pem, 1.0f,
     "pem_private_key", 0},
    {D(SECRET), "\\beyJ" TOK "{8,}\\.eyJ" TOK "{8,}\\." TOK "*", PII_SOM, pii_v_jwt, 1.0f, "jwt",
     0},
    /* a value assigned to a secret-looking key: `password = "..."`, `API_KEY: ...` */
    {D(SECRET), KEY_TRIGGER "[A-Za-z0-9_.-]{0,32}" QUOTE "\\s{0,4}(?:=|:|:=|=>)\\s{0,4}" QUOTE,
     PII_SOM | PII_CASELESS, pii_v_assign, 0, "assignment", 0},
    /* credentials inside a URL: scheme://user:password@host */
    {D(SECRET), "\\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\\s:/@\"'<>]+:[^\\s/@\"'<>]+@", PII_SOM,
     pii_v_urlcred, 0.9f, "url_credentials", 0},

    /* ---- DATE_OF_BIRTH in words (numeric dates come through the number shape): anchored on
       a 19xx/20xx year after a word; the validator finds the month name and the day ---- */
    {D(DATE_OF_BIRTH), "(?:[A-Za-z]|\xc3[\x80-\xbf]){3,12}\\.?,? (?:de )?(?:19|20)[0-9]{2}\\b", 0,
     pii_v_date, 0.15f, "date+birth_context", 2},
    {D(DATE_OF_BIRTH), "[A-Za-z][a-z]{2,8}\\.? [0-9]{1,2}(?:st|nd|rd|th)?,? (?:19|20)[0-9]{2}\\b",
     0, pii_v_date, 0.15f, "date+birth_context", 3},

    /* ---- PERSON: trigger phrases; the validator reads the capitalised words after them.
       arg: 0 strong phrase, 1 weak greeting, 2 specific label, 3 generic label, 4 honorific;
       the weak and honorific shapes end just after the name's first letter ---- */
    {D(PERSON),
     "\\b(?:my name is|my name's|my name\xe2\x80\x99s|i am called|i'm called|his name is"
     "|her name is|their name is|name is|je m'appelle|je m\xe2\x80\x99\x61ppelle|ich "
     "hei\xc3\x9f\x65"
     "|ich heisse|mein name ist|me llamo|mi nombre es|meu nome \xc3\xa9|me chamo|mi chiamo"
     "|named|signed by|on behalf of)\\b",
     PII_CASELESS, pii_v_person, 0.6f, "name_context", 0},
    {D(PERSON),
     "\\b(?i:hello|dear|thanks|thank you|regards|sincerely|cheers|hi|hey|i am|i'm|i\xe2\x80\x99m"
     "|this is|je suis|ich bin|soy|sou|hola|bonjour|hallo|ol\xc3\xa1)[ ,]{1,3}" CAP,
     0, pii_v_person, 0.3f, "name_context", 1},
    {D(PERSON),
     "\\b(?:full[ _]?name|patient(?:[ _]name)?|first[ _]?name|given[ _]?name|last[ _]?name"
     "|family[ _]?name|surname|customer[ _]name|contact[ _]name|employee[ _]name|account[ _]holder"
     "|card[ _]?holder|holder[ _]name|emergency[ _]contact|vorname|nachname|pr\xc3\xa9nom|prenom"
     "|nom|nombre|nome|paciente)" QUOTE "\\s{0,3}[:=]",
     PII_CASELESS, pii_v_person, 0.55f, "name_context", 2},
    {D(PERSON),
     "\\b(?:name|client|customer|employee|user|contact|author|owner)" QUOTE "\\s{0,3}[:=]",
     PII_CASELESS, pii_v_person, 0.35f, "name_context", 3},
    /* honorifics, in three shapes because two-letter literals are slow to match alone:
       abbreviations with their dot, the four English ones without it, and the long ones */
    {D(PERSON), "(?:Mr|Mrs|Ms|Mx|Dr|Prof|Sr|Sra|Srta|Mme|Mlle)\\. " CAP, 0, pii_v_person, 0.6f,
     "name_context", 4},
    {D(PERSON), "\\b(?:Mr|Mrs|Ms|Dr) " CAP, 0, pii_v_person, 0.6f, "name_context", 4},
    {D(PERSON),
     "\\b(?:Herr|Frau|Monsieur|Madame|Mademoiselle|Se\xc3\xb1or|Se\xc3\xb1ora|Senhor|Senhora"
     "|Dona|Miss|Sir|Dame|Lady|Lord|Signor|Signora|Doctor|Professor|Nurse|Patient) " CAP,
     0, pii_v_person, 0.6f, "name_context", 4},
};
const size_t pii_pattern_count = sizeof pii_patterns / sizeof pii_patterns[0];

/* ---- the entities of a digit run, by the shape of its groups -------------------------------
   A run "536-22-1234 4111 1111 1111 1111" is split into digit groups; each row names a group
   count, each group's length range, the separators allowed between them (one kind
   throughout), and the validator that gets a matching span. PHONE has no row: its national
   formats are too varied for one, and pii_v_phone searches the run itself. */
#define V(T, fn, base, name, arg)                                                                  \
    {                                                                                              \
        D(T), NULL, 0, fn, base, name, arg                                                         \
    }
const pii_num_shape pii_num_shapes[] = {
    {1, {13}, {19}, "", V(CREDIT_CARD, pii_v_card, 0.85f, "luhn+issuer", 0)},
    {4, {4, 4, 4, 1}, {4, 4, 4, 4}, " -", V(CREDIT_CARD, pii_v_card, 0.95f, "luhn+issuer", 1)},
    {5,
     {4, 4, 4, 4, 1},
     {4, 4, 4, 4, 3},
     " -",
     V(CREDIT_CARD, pii_v_card, 0.95f, "luhn+issuer", 1)},
    {3, {4, 6, 4}, {4, 6, 5}, " -", V(CREDIT_CARD, pii_v_card, 0.95f, "luhn+issuer", 1)},
    {3, {3, 2, 4}, {3, 2, 4}, "- ", V(US_SSN, pii_v_ssn, 0.85f, "ssn_rules", 0)},
    {1, {9}, {9}, "", V(US_SSN, pii_v_ssn, 0.3f, "ssn_rules", 1)},
    {3, {3, 2, 4}, {3, 2, 4}, "- ", V(US_ITIN, pii_v_itin, 0.8f, "itin_rules", 0)},
    {1, {9}, {9}, "", V(US_ITIN, pii_v_itin, 0.3f, "itin_rules", 1)},
    {3, {3, 3, 4}, {3, 3, 4}, " -", V(UK_NHS, pii_v_nhs, 0, "nhs_mod11", 0)},
    {1, {10}, {10}, "", V(UK_NHS, pii_v_nhs, 0, "nhs_mod11", 0)},
    {4, {1, 1, 1, 1}, {3, 3, 3, 3}, ".", V(IP_ADDRESS, pii_v_ipv4, 0.9f, "ipv4", 0)},
    {3, {1, 1, 2}, {2, 2, 4}, "/.-", V(DATE_OF_BIRTH, pii_v_date, 0.15f, "date+birth_context", 0)},
    {3, {4, 1, 1}, {4, 2, 2}, "/.-", V(DATE_OF_BIRTH, pii_v_date, 0.15f, "date+birth_context", 1)},
    {0, {0}, {0}, NULL, V(PHONE, NULL, 0, NULL, 0)},
};
#undef V
#undef D

/* ---- context words ---------------------------------------------------------------------------
   Lower case; a word matches at a word start, and words of 4 bytes or fewer also need a word end
   (so "tel" does not match "hotel" or "television"). */
static const char *const phone_pos[] = {"phone",
                                        "tel",
                                        "tel.",
                                        "telephone",
                                        "call",
                                        "calling",
                                        "mobile",
                                        "cell",
                                        "fax",
                                        "whatsapp",
                                        "sms",
                                        "text me",
                                        "contact",
                                        "reach me",
                                        "ring",
                                        "dial",
                                        "telefon",
                                        "handy",
                                        "ruf",
                                        "anrufen",
                                        "t\xc3\xa9l\xc3\xa9phone",
                                        "t\xc3\xa9l",
                                        "portable",
                                        "joindre",
                                        "appeler",
                                        "telefone",
                                        "celular",
                                        "ligue",
                                        "ligar",
                                        "contato",
                                        "tel\xc3\xa9\x66ono",
                                        "m\xc3\xb3vil",
                                        "llama",
                                        "mob",
                                        "ph",
                                        "phone_number",
                                        "mobile_number",
                                        NULL};
static const char *const phone_neg[] = {
    "order",    "invoice", "part",      "p/n",     "pn",          "sku",      "serial",  "isbn",
    "tracking", "ref",     "reference", "account", "acct",        "id",       "version", "build",
    "model",    "item",    "ticket",    "case",    "zip",         "postcode", "pin",     "batch",
    "lot",      "bestell", "commande",  "pedido",  "transaction", "imei",     "patent",  "nhs",
    "ssn",      "ean",     "upc",       "gtin",    "catalog",     "cat",      "no.",     "product",
    "asin",     "tx",      "hash",      NULL};
static const char *const card_pos[] = {"card",
                                       "credit",
                                       "debit",
                                       "visa",
                                       "mastercard",
                                       "amex",
                                       "american express",
                                       "discover",
                                       "cc",
                                       "cvv",
                                       "payment",
                                       "pay",
                                       "karte",
                                       "kreditkarte",
                                       "carte",
                                       "cart\xc3\xa3o",
                                       "tarjeta",
                                       "pan",
                                       "card_number",
                                       "cc_number",
                                       NULL};
static const char *const card_neg[] = {
    "order",   "invoice",     "tracking", "ref",       "reference", "id",       "isbn",
    "serial",  "transaction", "imei",     "iccid",     "sim",       "shipment", "parcel",
    "awb",     "bestell",     "commande", "pedido",    "ean",       "upc",      "gtin",
    "account", "acct",        "barcode",  "timestamp", "epoch",     "nanos",    NULL};
static const char *const ssn_pos[] = {"ssn",     "social security", "social sec", "ss#",
                                      "soc sec", "ss no",           "ss number",  NULL};
static const char *const ssn_neg[] = {"phone",    "tel",  "order", "zip", "routing", "invoice",
                                      "tracking", "itin", "part",  "sku", "serial",  "ref",
                                      "account",  "acct", "pin",   NULL};
static const char *const itin_pos[] = {"itin", "taxpayer", "tax id", "tin", "tax_id", NULL};
static const char *const nino_pos[] = {
    "national insurance", "ni number", "ni no", "nino", "nin", "ni", NULL};
static const char *const nhs_pos[] = {"nhs", "health service", "nhs_number", NULL};
static const char *const nhs_neg[] = {"phone",   "tel",     "call",      "mobile", "order",
                                      "account", "invoice", "sort code", "fax",    NULL};
static const char *const ip_pos[] = {"ip",   "address", "host", "server", "client",
                                     "addr", "inet",    "src",  "dst",    "gateway",
                                     "dns",  "subnet",  "peer", "remote", NULL};
static const char *const ip_neg[] = {
    "version", "ver",       "v.",       "build",      "release",   "firmware", "sdk",    "chrome",
    "oid",     "section",   "\xc2\xa7", "isbn",       "rev",       "revision", "update", "upgrade",
    "package", "pip",       "npm",      "library",    "chapter",   "figure",   "table",  "clause",
    "rule",    "step",      "article",  "art.",       "paragraph", "para",     "item",   "bump",
    "tag",     "installed", "requires", "dependency", "patch",     NULL};
static const char *const mac_pos[] = {"mac",  "hwaddr", "ether", "bssid",  "hardware address",
                                      "wifi", "wlan",   "eth0",  "lladdr", "mac_address",
                                      NULL};
static const char *const mac_neg[] = {"version", "build", "serial", "sha", "hash", NULL};
static const char *const dob_pos[] = {
    "born",    "birth",        "dob",          "d.o.b",         "birthday",      "birthdate",
    "geboren", "geburtsdatum", "geb.",         "n\xc3\xa9",     "n\xc3\xa9\x65", "naissance",
    "nascido", "nascida",      "nascimento",   "nacimiento",    "naci\xc3\xb3",  "nac\xc3\xad",
    "nasci",   "nasceu",       "fecha de nac", "date_of_birth", "birth_date",    NULL};
static const char *const dob_neg[] = {
    "expir",     "exp",      "issued",   "valid",      "appointment", "due",       "created",
    "updated",   "modified", "delivery", "deadline",   "meeting",     "invoice",   "order",
    "until",     "visit",    "admitted", "discharged", "renewal",     "effective", "released",
    "published", "since",    "started",  NULL};

const pii_context_rule pii_context_rules[PD_PII_TYPE_COUNT] = {
    [PD_PII_PHONE] = {phone_pos, phone_neg, 0.35f, 0.45f},
    [PD_PII_CREDIT_CARD] = {card_pos, card_neg, 0.05f, 0.5f},
    [PD_PII_US_SSN] = {ssn_pos, ssn_neg, 0.3f, 0.45f},
    [PD_PII_US_ITIN] = {itin_pos, ssn_neg, 0.3f, 0.45f},
    [PD_PII_UK_NINO] = {nino_pos, NULL, 0.15f, 0},
    [PD_PII_UK_NHS] = {nhs_pos, nhs_neg, 0.55f, 0.3f},
    [PD_PII_IP_ADDRESS] = {ip_pos, ip_neg, 0.1f, 0.5f},
    [PD_PII_MAC_ADDRESS] = {mac_pos, mac_neg, 0.1f, 0.45f},
    [PD_PII_DATE_OF_BIRTH] = {dob_pos, dob_neg, 0.75f, 0.15f},
};

/* ---- card issuers: prefix range on the first `digits` digits, allowed lengths ---------------- */
#define L(n) (1u << (n))
#define L16_19 (L(16) | L(17) | L(18) | L(19))
const pii_issuer pii_issuers[] = {
    {"visa", 4, 4, 1, L(13) | L(16) | L(19)},
    {"mastercard", 51, 55, 2, L(16)},
    {"mastercard", 2221, 2720, 4, L(16)},
    {"amex", 34, 34, 2, L(15)},
    {"amex", 37, 37, 2, L(15)},
    {"discover", 6011, 6011, 4, L16_19},
    {"discover", 644, 649, 3, L16_19},
    {"discover", 65, 65, 2, L16_19},
    {"discover", 622126, 622925, 6, L16_19},
    {"diners", 300, 305, 3, L(14) | L16_19},
    {"diners", 36, 36, 2, L(14) | L16_19},
    {"diners", 38, 39, 2, L16_19},
    {"jcb", 3528, 3589, 4, L16_19},
    {"unionpay", 62, 62, 2, L16_19},
    {"maestro", 5018, 5018, 4, L(12) | L(13) | L(14) | L(15) | L16_19},
    {"maestro", 5020, 5020, 4, L(12) | L(13) | L(14) | L(15) | L16_19},
    {"maestro", 5038, 5038, 4, L(12) | L(13) | L(14) | L(15) | L16_19},
    {"maestro", 5893, 5893, 4, L(12) | L(13) | L(14) | L(15) | L16_19},
    {"maestro", 6304, 6304, 4, L(12) | L(13) | L(14) | L(15) | L16_19},
    {"maestro", 6759, 6759, 4, L(12) | L(13) | L(14) | L(15) | L16_19},
    {"maestro", 6761, 6763, 4, L(12) | L(13) | L(14) | L(15) | L16_19},
    {"mir", 2200, 2204, 4, L16_19},
    {"rupay", 60, 60, 2, L(16)},
    {"rupay", 508, 508, 3, L(16)},
    {NULL, 0, 0, 0, 0},
};

/* ---- IBAN lengths per country (SWIFT IBAN registry) --------------------------------------- */
const pii_iban_country pii_iban_countries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SC", 31},
    {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"", 0},
};

/* ---- month names --------------------------------------------------------------------------- */
const pii_month pii_months[] = {
    {"january", 1},
    {"february", 2},
    {"march", 3},
    {"april", 4},
    {"may", 5},
    {"june", 6},
    {"july", 7},
    {"august", 8},
    {"september", 9},
    {"october", 10},
    {"november", 11},
    {"december", 12},
    {"jan", 1},
    {"feb", 2},
    {"mar", 3},
    {"apr", 4},
    {"jun", 6},
    {"jul", 7},
    {"aug", 8},
    {"sep", 9},
    {"sept", 9},
    {"oct", 10},
    {"nov", 11},
    {"dec", 12},
    {"januar", 1},
    {"februar", 2},
    {"m\xc3\xa4rz", 3},
    {"maerz", 3},
    {"mai", 5},
    {"juni", 6},
    {"juli", 7},
    {"oktober", 10},
    {"dezember", 12},
    {"okt", 10},
    {"dez", 12},
    {"janvier", 1},
    {"f\xc3\xa9vrier", 2},
    {"fevrier", 2},
    {"mars", 3},
    {"avril", 4},
    {"juin", 6},
    {"juillet", 7},
    {"ao\xc3\xbbt", 8},
    {"aout", 8},
    {"septembre", 9},
    {"octobre", 10},
    {"novembre", 11},
    {"d\xc3\xa9\x63\x65mbre", 12},
    {"decembre", 12},
    {"janeiro", 1},
    {"fevereiro", 2},
    {"mar\xc3\xa7o", 3},
    {"marco", 3},
    {"abril", 4},
    {"maio", 5},
    {"junho", 6},
    {"julho", 7},
    {"agosto", 8},
    {"setembro", 9},
    {"outubro", 10},
    {"novembro", 11},
    {"dezembro", 12},
    {"enero", 1},
    {"febrero", 2},
    {"marzo", 3},
    {"mayo", 5},
    {"junio", 6},
    {"julio", 7},
    {"septiembre", 9},
    {"setiembre", 9},
    {"octubre", 10},
    {"noviembre", 11},
    {"diciembre", 12},
    {NULL, 0},
};

/* ---- PERSON: capitalised words that follow a trigger but are not names ------------------- */
const char *const pii_person_stopwords[] = {
    "A",          "About",   "Above",    "Account",   "Admin",    "After",    "Again",
    "Ai",         "All",     "Also",     "Am",        "American", "An",       "And",
    "Any",        "Anyone",  "Api",      "April",     "Are",      "As",       "Assistant",
    "At",         "August",  "Back",     "Bad",       "Be",       "Because",  "Been",
    "Before",     "Best",    "Bot",      "British",   "But",      "By",       "Can",
    "Chinese",    "Claude",  "Client",   "Code",      "Contact",  "Could",    "Customer",
    "Data",       "Dear",    "December", "Did",       "Do",       "Does",     "Done",
    "Dutch",      "Each",    "Email",    "English",   "Error",    "Even",     "Every",
    "Everyone",   "Example", "False",    "February",  "Fine",     "First",    "For",
    "French",     "Friday",  "From",     "German",    "Get",      "Glad",     "Good",
    "Got",        "Great",   "Guest",    "Happy",     "Has",      "Have",     "He",
    "Hello",      "Her",     "Here",     "Hey",       "Hi",       "His",      "Hope",
    "How",        "I",       "If",       "In",        "Indian",   "Info",     "Is",
    "It",         "Italian", "Its",      "January",   "Japanese", "July",     "June",
    "Just",       "Last",    "Let",      "Like",      "Looking",  "Manager",  "March",
    "May",        "Me",      "Monday",   "More",      "Much",     "My",       "N",
    "Na",         "New",     "Next",     "No",        "None",     "Not",      "November",
    "Now",        "Null",    "October",  "Of",        "Ok",       "Okay",     "On",
    "One",        "Only",    "Or",       "Other",     "Our",      "Owner",    "Please",
    "Portuguese", "Re",      "Regards",  "Russian",   "Same",     "Saturday", "See",
    "September",  "She",     "So",       "Some",      "Sorry",    "Spanish",  "Still",
    "String",     "Sunday",  "Support",  "Sure",      "Team",     "Test",     "Thank",
    "Thanks",     "That",    "The",      "Their",     "Them",     "Then",     "There",
    "These",      "They",    "This",     "Those",     "Thursday", "To",       "Today",
    "Tomorrow",   "True",    "Tuesday",  "Unknown",   "Up",       "Us",       "User",
    "Very",       "Was",     "We",       "Wednesday", "Welcome",  "Well",     "What",
    "When",       "Where",   "Which",    "While",     "Who",      "Why",      "Will",
    "With",       "Would",   "Yes",      "You",       "Your",     NULL};

/* ---- SECRET assignments: key-name tokens --------------------------------------------------- */
const char *const pii_password_key_words[] = {
    "password",   "passwd", "pass",       "pwd",      "pw",    "passphrase",
    "passcode",   "pword",  "kennwort",   "passwort", "senha", "contrase\xc3\xb1\x61",
    "contrasena", "mdp",    "motdepasse", NULL};
/* "key" alone is not here: it counts only after one of the qualifiers below (api_key, ...) */
const char *const pii_secret_key_words[] = {"secret",
                                            "secrets",
                                            "token",
                                            "apikey",
                                            "credential",
                                            "credentials",
                                            "authorization",
                                            "bearer",
                                            "privatekey",
                                            "secretkey",
                                            "accesskey",
                                            "authtoken",
                                            "accesstoken",
                                            "clientsecret",
                                            "api:key",
                                            "access:key",
                                            "secret:key",
                                            "private:key",
                                            "signing:key",
                                            "encryption:key",
                                            "master:key",
                                            "client:key",
                                            "service:key",
                                            "auth:key",
                                            "license:key",
                                            "account:key",
                                            "subscription:key",
                                            "app:key",
                                            "admin:key",
                                            "write:key",
                                            "read:key",
                                            NULL};
/* any of these tokens in the key name means it names something about a secret, not a secret */
const char *const pii_key_modifiers[] = {
    "length",      "len",      "min",        "max",        "policy",   "hint",       "field",
    "url",         "uri",      "file",       "path",       "dir",      "prompt",     "label",
    "placeholder", "expiry",   "expires",    "expiration", "expire",   "exp",        "type",
    "count",       "limit",    "timeout",    "ttl",        "name",     "id",         "rotation",
    "strength",    "regex",    "pattern",    "required",   "enabled",  "header",     "format",
    "mode",        "version",  "endpoint",   "size",       "source",   "provider",   "prefix",
    "usage",       "changed",  "updated",    "at",         "date",     "env",        "var",
    "location",    "manager",  "store",      "index",      "method",   "kind",       "scope",
    "flow",        "strategy", "validation", "validator",  "visible",  "hidden",     "column",
    "bytes",       "chars",    "characters", "budget",     "estimate", "rate",       "cost",
    "total",       "used",     "remaining",  "input",      "output",   "completion", "reasoning",
    "cached",      "num",      "number",     "show",       "hide",     "forgot",     "require",
    "allow",       "enable",   "disable",    "has",        "is",       "use",        "no",
    "counter",     "per",      "ids",        "hash",       "hashed",   "set",        "link",
    "button",      "text",     "error",      "message",    "msg",      "help",       "form",
    "lifetime",    "duration", "age",        "level",      "list",     "keyid",      "fingerprint",
    "algorithm",   "alg",      "vault",      "ref",        "arn",      NULL};
/* values (compared lower-cased) that stand for a secret without being one */
const char *const pii_placeholder_values[] = {
    "null",         "none",          "nil",          "undefined",
    "true",         "false",         "string",       "str",
    "int",          "number",        "bool",         "boolean",
    "object",       "any",           "password",     "secret",
    "token",        "changeme",      "example",      "sample",
    "test",         "xxx",           "redacted",     "hidden",
    "masked",       "your_password", "yourpassword", "your-password",
    "mypassword",   "required",      "optional",     "env",
    "secret_value", "value",         "placeholder",  "dummy",
    "foo",          "bar",           "abc",          "empty",
    "not set",      "unset",         "default",      "your_api_key",
    "your-api-key", "your_token",    "api_key",      "apikey",
    "bearer",       "basic",         "omitted",      "removed",
    "todo",         "tbd",           "n/a",          "na",
    "secret_key",   "access_token",  "optional",     NULL};
