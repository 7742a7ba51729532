/* utf8.h - incremental, strict UTF-8 validation (RFC 3629).
 *
 * Rejects overlong forms, UTF-16 surrogates (U+D800..U+DFFF), code points above
 * U+10FFFF, the 5- and 6-byte forms, the bytes 0xC0, 0xC1, 0xF5..0xFF and stray
 * continuation bytes. Validation fails fast: the state becomes UTF8_REJECT at the
 * first byte that no continuation could make valid (what the Autobahn tests expect
 * of a WebSocket endpoint), e.g. already at 0xED 0xA0 or at 0xF4 0x90.
 *
 * Pure functions: no allocation, never block, callable from any thread/callback.
 */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Everything seen so far is complete, valid UTF-8. */
#define UTF8_ACCEPT 0u
/* Invalid; sticky: utf8_validate keeps returning it. */
#define UTF8_REJECT 1u
/* Any other state value: a valid prefix that ends inside a multi-byte sequence. */

/* Continues validation from `state` (UTF8_ACCEPT for a new text) over p[0..n).
 * p is only read and may be NULL when n == 0. Returns the new state. */
uint32_t utf8_validate(uint32_t state, const uint8_t *p, size_t n);

/* Returns 1 when p[0..n) is complete, valid UTF-8, else 0. */
int utf8_is_valid(const uint8_t *p, size_t n);

/* Returns the length of the longest prefix of p[0..n) that is valid UTF-8 and does not end
 * inside a sequence (n when the whole input is valid). Used to cut a text at a character
 * boundary, and by tests to find where validation fails. */
size_t utf8_valid_prefix(const uint8_t *p, size_t n);

#endif
