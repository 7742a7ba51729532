#include "common/jutil.h"
#include "common/alloc.h"
#include "common/utf8.h"

#include <errno.h>

json_t *jutil_string_lossy(const char *v, size_t vlen)
{
    json_t *s = json_stringn(v, vlen);
    if (s)
        return s;
    gw_buf b = {0};
    uint32_t st = UTF8_ACCEPT;
    size_t start = 0;
    for (size_t i = 0; i < vlen; i++) {
        st = utf8_validate(st, (const uint8_t *)v + i, 1);
        if (st == UTF8_REJECT) {
            gw_buf_append_str(&b, "\xef\xbf\xbd");
            st = UTF8_ACCEPT;
            start = i + 1;
        } else if (st == UTF8_ACCEPT) {
            gw_buf_append(&b, v + start, i + 1 - start);
            start = i + 1;
        }
    }
    if (start < vlen)
        gw_buf_append_str(&b, "\xef\xbf\xbd");
    s = json_stringn(b.data ? (const char *)b.data : "", b.len);
    gw_buf_deinit(&b);
    return s;
}

int jutil_set_lossy(json_t *obj, const char *key, size_t klen, json_t *value)
{
    json_t *k = jutil_string_lossy(key, klen);
    if (k == NULL) {
        json_decref(value);
        return -ENOMEM;
    }
    int rc = json_object_set_new(obj, json_string_value(k), value);
    json_decref(k);
    return rc < 0 ? -ENOMEM : 0;
}

int jutil_dump(const json_t *v, gw_buf *out)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        return -ENOMEM;
    int rc = gw_buf_append_str(out, s);
    gw_free(s);
    return rc;
}
