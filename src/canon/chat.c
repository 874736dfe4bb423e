#include "canon/chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static const char *const role_names[] = {
    [PD_ROLE_SYSTEM] = "system",       [PD_ROLE_DEVELOPER] = "developer", [PD_ROLE_USER] = "user",
    [PD_ROLE_ASSISTANT] = "assistant", [PD_ROLE_TOOL] = "tool",
};

const char *pd_chat_role_name(pd_chat_role role)
{
    if ((size_t)role < sizeof role_names / sizeof *role_names)
        return role_names[role];
    return "unknown";
}

/* The five names are told apart by length and first letter: one compare for a role, not a
   strlen and memcmp per name (every message of every request comes through here). */
bool pd_chat_role_from_name(const char *name, size_t len, pd_chat_role *out)
{
    pd_chat_role r;
    switch (len) {
    case 4: r = name[0] == 'u' ? PD_ROLE_USER : PD_ROLE_TOOL; break;
    case 6: r = PD_ROLE_SYSTEM; break;
    case 9: r = name[0] == 'd' ? PD_ROLE_DEVELOPER : PD_ROLE_ASSISTANT; break;
    default: return false;
    }
    if (memcmp(role_names[r], name, len) != 0)
        return false;
    *out = r;
    return true;
}

const char *pd_chat_finish_name(pd_chat_finish f)
{
    switch (f) {
    case PD_FINISH_NONE: return "none";
    case PD_FINISH_STOP: return "stop";
    case PD_FINISH_LENGTH: return "length";
    case PD_FINISH_TOOL_CALLS: return "tool_calls";
    case PD_FINISH_CONTENT_FILTER: return "content_filter";
    case PD_FINISH_ERROR: return "error";
    case PD_FINISH_UNKNOWN: return "unknown";
    }
    return "unknown";
}

static void part_free(pd_chat_part *p)
{
    free(p->text);
    free(p->url);
    free(p->data);
    free(p->media_type);
    free(p->detail);
    free(p->format);
    free(p->file_id);
    free(p->filename);
}

void pd_chat_message_free(pd_chat_message *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_parts; i++)
        part_free(&m->parts[i]);
    free(m->parts);
    for (size_t i = 0; i < m->n_tool_calls; i++) {
        free(m->tool_calls[i].id);
        free(m->tool_calls[i].name);
        free(m->tool_calls[i].arguments);
    }
    free(m->tool_calls);
    free(m->name);
    free(m->tool_call_id);
    free(m->refusal);
    free(m->reasoning);
    memset(m, 0, sizeof *m);
}

void pd_chat_request_init(pd_chat_request *r)
{
    memset(r, 0, sizeof *r);
}

json_t *pd_chat_json_tree(const pd_chat_json *j)
{
    return j->text ? json_loadb(j->text, j->len, 0, NULL) : NULL;
}

void pd_chat_request_free(pd_chat_request *r)
{
    if (!r)
        return;
    pd_arena_free(&r->arena);
    pd_chat_request_init(r);
}

void pd_chat_request_arena(pd_chat_request *r, size_t len)
{
    size_t most = (SIZE_MAX - PD_ARENA_DEFAULT_LIMIT) / 16;
    pd_arena_init(&r->arena, len < most ? 16 * len + PD_ARENA_DEFAULT_LIMIT : SIZE_MAX);
    pd_arena_reserve(&r->arena, len < most ? 3 * len + 2048 : len); /* one block, usually */
}

void pd_chat_parse_overflow(void)
{
    fprintf(stderr, "pendulum: a request parse passed its arena limit\n");
    abort();
}

void *pd_chat_request_alloc(pd_chat_request *r, size_t count, size_t size)
{
    return pd_arena_calloc(&r->arena, count, size);
}

char *pd_chat_request_strndup(pd_chat_request *r, const char *s, size_t n)
{
    return pd_arena_strndup(&r->arena, s, n);
}

char *pd_chat_request_strdup(pd_chat_request *r, const char *s)
{
    return pd_arena_strdup(&r->arena, s);
}

void pd_chat_usage_init(pd_chat_usage *u)
{
    u->prompt_tokens = PD_CHAT_COUNT_UNKNOWN;
    u->completion_tokens = PD_CHAT_COUNT_UNKNOWN;
    u->total_tokens = PD_CHAT_COUNT_UNKNOWN;
    u->cached_tokens = PD_CHAT_COUNT_UNKNOWN;
    u->cache_write_tokens = PD_CHAT_COUNT_UNKNOWN;
    u->reasoning_tokens = PD_CHAT_COUNT_UNKNOWN;
}

bool pd_chat_usage_known(const pd_chat_usage *u)
{
    return u->prompt_tokens >= 0 || u->completion_tokens >= 0 || u->total_tokens >= 0 ||
           u->cached_tokens >= 0 || u->cache_write_tokens >= 0 || u->reasoning_tokens >= 0;
}

void pd_chat_response_init(pd_chat_response *r)
{
    memset(r, 0, sizeof *r);
    pd_chat_usage_init(&r->usage);
}

void pd_chat_response_free(pd_chat_response *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->model);
    free(r->system_fingerprint);
    for (size_t i = 0; i < r->n_choices; i++) {
        pd_chat_message_free(&r->choices[i].message);
        json_decref(r->choices[i].logprobs);
    }
    free(r->choices);
    pd_chat_response_init(r);
}

/* Copied from a constant: streams call this once or twice per token, and the memset it was
   compiled to `rep stos`, which is slow to start on x86 for a struct this small (it was a
   sixth of a translated event's cost). The copy takes the padding too (zero in a static
   object), so initialised events still compare equal byte for byte. */
void pd_chat_event_init(pd_chat_event *ev, pd_chat_event_kind kind)
{
    static const pd_chat_event blank = {.usage = {PD_CHAT_COUNT_UNKNOWN, PD_CHAT_COUNT_UNKNOWN,
                                                  PD_CHAT_COUNT_UNKNOWN, PD_CHAT_COUNT_UNKNOWN,
                                                  PD_CHAT_COUNT_UNKNOWN, PD_CHAT_COUNT_UNKNOWN}};
    memcpy(ev, &blank, sizeof *ev);
    ev->kind = kind;
}
