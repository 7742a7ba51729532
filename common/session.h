/* session.h - per-client sessions as JSON objects (RFC 7396 merge patches).
 *
 * The gateway keeps a client's session as the text of a JSON object. `set`
 * replaces it; `update` merges a patch into it: keys with a null value are
 * removed, objects are merged recursively, anything else replaces. A worker turns
 * the changes a callback made to the session into such a patch (session_diff),
 * so two workers changing different keys never overwrite each other.
 * Pure functions on jansson values; never block.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include "common/buf.h"

#include <jansson.h>
#include <stddef.h>

/* Applies `patch` to *target in place (RFC 7396). A non-object patch replaces the
 * target (the reference is copied). Returns 0 or -ENOMEM. */
int session_merge(json_t **target, const json_t *patch);
/* The merge patch that turns `from` into `to` (both objects): a new object, empty
 * when nothing changed, or NULL on -ENOMEM. A key set to JSON null in `to` cannot
 * be expressed (null removes): it is treated as removed. */
json_t *session_diff(const json_t *from, const json_t *to);
/* Parses session text: an empty text is an empty object. Returns a new object or
 * NULL when the text is not a JSON object. */
json_t *session_parse(const uint8_t *text, size_t len);
/* Serializes an object compactly into out (replacing its content); an empty
 * object gives an empty text. Returns 0 or -ENOMEM. */
int session_dump(const json_t *obj, gw_buf *out);

#endif
