#include "common/session.h"
#include "common/alloc.h"

#include <errno.h>
#include <string.h>

int session_merge(json_t **target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_t *copy = json_deep_copy(patch);
        if (copy == NULL)
            return -ENOMEM;
        json_decref(*target);
        *target = copy;
        return 0;
    }
    if (!json_is_object(*target)) {
        json_t *o = json_object();
        if (o == NULL)
            return -ENOMEM;
        json_decref(*target);
        *target = o;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)patch, key, v)
    {
        if (json_is_null(v)) {
            json_object_del(*target, key);
            continue;
        }
        json_t *cur = json_object_get(*target, key);
        if (json_is_object(v)) {
            json_t *child = cur ? json_incref(cur) : json_object();
            if (child == NULL || session_merge(&child, v) < 0 ||
                json_object_set_new(*target, key, child) < 0)
                return -ENOMEM;
            continue;
        }
        json_t *copy = json_deep_copy(v);
        if (copy == NULL || json_object_set_new(*target, key, copy) < 0)
            return -ENOMEM;
    }
    return 0;
}

json_t *session_diff(const json_t *from, const json_t *to)
{
    json_t *patch = json_object();
    if (patch == NULL)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)from, key, v)
    {
        json_t *nv = json_object_get(to, key);
        if (nv == NULL || json_is_null(nv)) {
            if (json_object_set_new(patch, key, json_null()) < 0)
                goto fail;
        }
    }
    json_object_foreach((json_t *)to, key, v)
    {
        if (json_is_null(v))
            continue;
        json_t *ov = json_object_get(from, key);
        if (ov && json_equal(ov, v))
            continue;
        json_t *d;
        if (ov && json_is_object(ov) && json_is_object(v))
            d = session_diff(ov, v);
        else
            d = json_deep_copy(v);
        if (d == NULL || json_object_set_new(patch, key, d) < 0)
            goto fail;
    }
    return patch;
fail:
    json_decref(patch);
    return NULL;
}

json_t *session_parse(const uint8_t *text, size_t len)
{
    if (len == 0)
        return json_object();
    json_t *o = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int session_dump(const json_t *obj, gw_buf *out)
{
    out->len = 0;
    if (json_object_size(obj) == 0)
        return 0;
    char *s = json_dumps(obj, JSON_COMPACT);
    if (s == NULL)
        return -ENOMEM;
    int rc = gw_buf_append_str(out, s);
    gw_free(s);
    return rc;
}
