/* jsonr_diff.h: the differential check of proto/jsonr.h against jansson, shared by the unit
 * test (tests/unit/test_jsonr.c) and the fuzz target (tests/fuzz/fuzz_jsonr.c).
 *
 * jsonr_agrees(text, len) is true when pd_jr_parse and json_loadb(text, len, 0) (the flags the
 * request parsers use) both reject the text, or both accept it and:
 *   - the trees are equal by a walk: same types (integer vs real too), the same int64, the same
 *     bits of every double, the same string bytes; arrays element by element; objects with
 *     the same members, every jansson key found by pd_jr_getn, and the folded member walk
 *     (pd_jr_members) in jansson's order;
 *   - pd_jr_write gives the bytes pd_jw_json gives on the jansson tree, and
 *     pd_jr_write_jansson the bytes of json_dumps(tree, JSON_COMPACT);
 *   - pd_jr_dump of every container (its copy of compact text included) gives the bytes
 *     pd_jw_json gives on the matching jansson subtree. */
#ifndef PD_TEST_JSONR_DIFF_H
#define PD_TEST_JSONR_DIFF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jsonr.h"
#include "proto/jsonw.h"

static bool jsonr_same(const pd_jr_val *r, const json_t *j);

static bool jsonr_same_bytes(const pd_buf *a, const char *b, size_t n)
{
    return a->len == n && memcmp(a->data ? a->data : "", b, n) == 0;
}

/* pd_jr_dump of a container against pd_jw_json of jansson's. */
static bool jsonr_same_dump(const pd_jr_val *r, const json_t *j)
{
    pd_buf b;
    pd_jw w;
    size_t len;
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &b);
    pd_jw_json(&w, j);
    char *d = pd_jr_dump(r, &len);
    bool ok = jsonr_same_bytes(&b, d, len) && d[len] == '\0';
    free(d);
    pd_buf_free(&b);
    return ok;
}

static bool jsonr_same_object(const pd_jr_val *r, const json_t *j)
{
    if (!pd_jr_is_object(r))
        return false;
    pd_jr_members it;
    void *iter = json_object_iter((json_t *)j);
    bool ok = true;
    pd_jr_members_begin(&it, r);
    while (ok && pd_jr_members_next(&it)) {
        ok = iter && json_object_iter_key_len(iter) == it.key->n &&
             memcmp(json_object_iter_key(iter), it.key->u.s, it.key->n) == 0 &&
             pd_jr_getn(r, it.key->u.s, it.key->n) == it.value &&
             jsonr_same(it.value, json_object_iter_value(iter));
        iter = json_object_iter_next((json_t *)j, iter);
    }
    pd_jr_members_end(&it);
    return ok && !iter;
}

static bool jsonr_same(const pd_jr_val *r, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL: return pd_jr_is_null(r);
    case JSON_TRUE: return pd_jr_is(r, PD_JR_TRUE);
    case JSON_FALSE: return pd_jr_is(r, PD_JR_FALSE);
    case JSON_INTEGER: return pd_jr_is_integer(r) && r->u.i == json_integer_value(j);
    case JSON_REAL: {
        double d = json_real_value(j);
        return pd_jr_is_real(r) && memcmp(&d, &r->u.d, sizeof d) == 0;
    }
    case JSON_STRING: return pd_jr_eqn(r, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        if (!pd_jr_is_array(r) || r->n != json_array_size(j))
            return false;
        const pd_jr_val *e = pd_jr_child(r);
        for (size_t i = 0; i < r->n; i++, e = pd_jr_next(e))
            if (!jsonr_same(e, json_array_get(j, i)))
                return false;
        return jsonr_same_dump(r, j);
    }
    case JSON_OBJECT: return jsonr_same_object(r, j) && jsonr_same_dump(r, j);
    }
    return false;
}

/* Both writers against jansson's tree. */
static bool jsonr_same_output(const pd_jr_val *r, const json_t *j)
{
    pd_buf a, b;
    pd_jw w;
    pd_buf_init(&a, 0);
    pd_buf_init(&b, 0);
    pd_jw_begin(&w, &a);
    pd_jr_write(&w, r);
    pd_jw_begin(&w, &b);
    pd_jw_json(&w, j);
    bool ok = jsonr_same_bytes(&a, b.data ? b.data : "", b.len);
    pd_buf_reset(&a);
    pd_jw_begin(&w, &a);
    pd_jr_write_jansson(&w, r);
    char *dump = json_dumps(j, JSON_COMPACT);
    ok = ok && dump && jsonr_same_bytes(&a, dump, strlen(dump));
    free(dump);
    pd_buf_free(&a);
    pd_buf_free(&b);
    return ok;
}

static bool jsonr_agrees(const char *text, size_t len)
{
    pd_jr_doc doc;
    pd_jr_val nodes[8]; /* small, so that most documents move from it to the heap */
    char scratch[64];   /* and short texts decode into the caller's block */
    pd_jr_mem mem = {nodes, 8, scratch, sizeof scratch};
    json_t *j = json_loadb(text, len, 0, NULL);
    pd_result rc = pd_jr_parse_in(&doc, text, len, &mem);
    bool ok = (rc == PD_OK) == (j != NULL);
    if (ok && j)
        ok = jsonr_same(pd_jr_root(&doc), j) && jsonr_same_output(pd_jr_root(&doc), j);
    json_decref(j);
    pd_jr_free(&doc);
    return ok;
}

#endif
