/* base64.h - standard base64 (RFC 4648 §4, with '=' padding). Pure functions: no
 * allocation, never block, callable from anywhere. */
#ifndef GW_BASE64_H
#define GW_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n input bytes, without the terminating NUL. */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
/* Bytes base64_decode may write for n input characters (an upper bound). */
#define BASE64_DECODED_MAX(n) ((n) / 4 * 3)

/* Encodes in[0..n) (read only) into out, which must hold BASE64_ENCODED_LEN(n) + 1 bytes;
 * out is NUL-terminated. Returns the number of characters written (without the NUL). */
size_t base64_encode(char *out, const uint8_t *in, size_t n);

/* Strictly decodes in[0..n) (read only): the length must be a multiple of 4, only the
 * alphabet A-Z a-z 0-9 + / is allowed, '=' only as one or two final padding characters,
 * no whitespace, and the unused bits before the padding must be zero (so every byte string
 * has exactly one accepted encoding). Writes at most cap bytes to out.
 * Returns the decoded length (>= 0), -EINVAL on malformed input, -ENOBUFS when cap is too
 * small (out's contents are then unspecified). */
long base64_decode(uint8_t *out, size_t cap, const char *in, size_t n);

#endif
