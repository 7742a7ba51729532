/* jutil.h - small jansson helpers shared by the processes. */
#ifndef GW_JUTIL_H
#define GW_JUTIL_H

#include "common/buf.h"

#include <jansson.h>
#include <stddef.h>

/* A JSON string from bytes that may not be UTF-8: invalid sequences become
 * U+FFFD. New reference, or NULL on -ENOMEM. */
json_t *jutil_string_lossy(const char *s, size_t len);
/* Sets obj[key bytes] = value (stolen, also on failure); the key goes through
 * jutil_string_lossy. 0 or -ENOMEM. */
int jutil_set_lossy(json_t *obj, const char *key, size_t klen, json_t *value);
/* Appends compact JSON text of v to out. 0 or -ENOMEM. */
int jutil_dump(const json_t *v, gw_buf *out);

#endif
