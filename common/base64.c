#include "common/base64.h"

#include <errno.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(char *out, const uint8_t *in, size_t n)
{
    size_t o = 0, i = 0;
    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* Returns the 6-bit value of c, or -1. */
static int dec(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long base64_decode(uint8_t *out, size_t cap, const char *in, size_t n)
{
    if (n % 4 != 0)
        return -EINVAL;
    if (n / 4 * 3 > (size_t)0x7FFFFFFF) /* keep the result representable in a long */
        return -EINVAL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int a = dec((unsigned char)in[i]), b = dec((unsigned char)in[i + 1]);
        int c = dec((unsigned char)in[i + 2]), d = dec((unsigned char)in[i + 3]);
        if (a < 0 || b < 0)
            return -EINVAL;
        size_t k; /* bytes in this quantum */
        if (c >= 0 && d >= 0) {
            k = 3;
        } else if (last && c >= 0 && in[i + 3] == '=') {
            if (c & 3) /* non-zero unused bits */
                return -EINVAL;
            k = 2;
        } else if (last && in[i + 2] == '=' && in[i + 3] == '=') {
            if (b & 15)
                return -EINVAL;
            k = 1;
        } else {
            return -EINVAL;
        }
        if (cap - o < k)
            return -ENOBUFS;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
                     (uint32_t)(d < 0 ? 0 : d);
        out[o++] = (uint8_t)(v >> 16);
        if (k > 1)
            out[o++] = (uint8_t)(v >> 8);
        if (k > 2)
            out[o++] = (uint8_t)v;
    }
    return (long)o;
}
