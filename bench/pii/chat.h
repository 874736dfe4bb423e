/* chat.h: deterministic "realistic chat text" for the PII benchmark.
 *
 * Messages are drawn from a bank of chat sentences, code, JSON tool arguments and multilingual
 * lines, with a PII value in about one message in four (an email, a phone number, a card, an IP,
 * a date of birth, a name after "my name is", a key assigned in a config line). Same seed, same
 * text, so runs compare. Header-only: the benchmark is one program. */
#ifndef PD_BENCH_PII_CHAT_H
#define PD_BENCH_PII_CHAT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "core/buf.h"

static uint64_t chat_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const char *const chat_lines[] = {
    "Can you help me refactor this function so it handles the empty case without crashing? ",
    "Sure! The issue is that you index the array before checking its length. ",
    "Here is a version that returns early when the input is empty, which also makes the intent "
    "clearer to the next reader. ",
    "I tried that but the tests still fail on CI with a timeout after 30 seconds. ",
    "What does the log say right before the timeout? Paste the last 20 lines if you can. ",
    "```python\ndef load(path):\n    with open(path) as f:\n        return json.load(f)\n```\n",
    "```c\nfor (size_t i = 0; i < n; i++)\n    total += items[i].price * items[i].qty;\n```\n",
    "{\"tool\": \"search\", \"arguments\": {\"query\": \"best hiking trails near the lake\", "
    "\"limit\": 5}} ",
    "The meeting moved to Thursday at 3pm, room 204, bring the Q3 numbers. ",
    "Summarize the following article in three bullet points for a busy executive. ",
    "Version 2.4.1 fixed the memory leak, but 2.4.2 introduced a regression in the parser. ",
    "Order #A-88213 shipped yesterday and should arrive within 5 business days. ",
    "Translate to French: the quick brown fox jumps over the lazy dog. ",
    "Le renard brun rapide saute par-dessus le chien paresseux. ",
    "Können Sie mir bitte erklären, wie die Steuererklärung funktioniert? ",
    "Obrigado pela ajuda, vou testar amanhã de manhã e te aviso. ",
    "The model scored 0.87 F1 on the validation set, up from 0.81 last week. ",
    "Please write a haiku about autumn leaves and the first cold morning. ",
    "Error: connection refused (errno 111) while contacting the upstream at port 8080. ",
    "SELECT name, total FROM orders WHERE created_at > now() - interval '7 days'; ",
    "Thanks, that worked perfectly. One more question about the deployment pipeline though. ",
    "It compiles with -O2 but segfaults with -O3, which smells like undefined behaviour. ",
    "The invoice total was 1,284.50 EUR including 19% VAT. ",
    "Let's plan the sprint: auth refactor, rate limiter, and the dashboard charts. ",
    "I think the bottleneck is the JSON parsing, it allocates a string per token. ",
};

static const char *const chat_pii[] = {
    "You can reach me at maria.gonzalez@example.org if anything breaks. ",
    "My number is (415) 555-2671, call after six. ",
    "Charge it to my card 4111 1111 1111 1111 please. ",
    "The server at 10.20.30.40 keeps dropping connections. ",
    "Date of birth: 14/07/1985, for the insurance form. ",
    "Hi, my name is Sarah Connor and I need help with my account. ",
    "DATABASE_PASSWORD=Xk9#mP2$vL7q in the .env file is what I use. ",
    "Ruf mich an unter +49 30 12345678, danke. ",
    "token: ghp_4f9a8B7c6D5e4F3g2H1i0J9k8L7m6N5o4P3q was leaked in the logs. ",
    "Transfer to IBAN DE89 3704 0044 0532 0130 00 by Friday. ",
};

/* Appends one message of roughly target bytes. */
static void chat_message(pd_buf *b, uint64_t *rng, size_t target)
{
    size_t start = b->len;
    int pii = chat_rng(rng) % 4 == 0;
    size_t pii_at = pii ? (size_t)(chat_rng(rng) % (target + 1)) : (size_t)-1;
    while (b->len - start < target) {
        if (b->len - start >= pii_at) {
            pd_buf_append_str(b, chat_pii[chat_rng(rng) % (sizeof chat_pii / sizeof *chat_pii)]);
            pii_at = (size_t)-1;
            continue;
        }
        pd_buf_append_str(b, chat_lines[chat_rng(rng) % (sizeof chat_lines / sizeof *chat_lines)]);
    }
    b->len = start + target; /* exact size; may cut a sentence, as real truncation does */
    b->data[b->len] = '\0';
}

#endif
