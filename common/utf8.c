#include "common/utf8.h"

#include <string.h>

/* A state other than ACCEPT/REJECT records what the next byte must be:
 * bits 0-1: continuation bytes still expected (1..3),
 * bits 8-15 / 16-23: the inclusive range the next byte must fall in.
 * The ranges implement RFC 3629's table, which excludes overlongs (E0 A0.., F0 90..),
 * surrogates (ED 80..9F) and code points above U+10FFFF (F4 80..8F). REJECT (1) has
 * need 1 and range [0, 0], which no real state has (ranges start at 0x80). */
#define MK(need, lo, hi) ((uint32_t)(need) | (uint32_t)(lo) << 8 | (uint32_t)(hi) << 16)

static inline uint32_t step(uint32_t s, uint8_t b)
{
    if (s == UTF8_ACCEPT) {
        if (b < 0x80)
            return UTF8_ACCEPT;
        if (b < 0xC2) /* continuation byte, or C0/C1 (always overlong) */
            return UTF8_REJECT;
        if (b < 0xE0)
            return MK(1, 0x80, 0xBF);
        if (b < 0xF0)
            return MK(2, b == 0xE0 ? 0xA0 : 0x80, b == 0xED ? 0x9F : 0xBF);
        if (b < 0xF5)
            return MK(3, b == 0xF0 ? 0x90 : 0x80, b == 0xF4 ? 0x8F : 0xBF);
        return UTF8_REJECT; /* F5..FF: beyond U+10FFFF or 5/6-byte forms */
    }
    uint32_t lo = (s >> 8) & 0xFF, hi = (s >> 16) & 0xFF, need = s & 3;
    if (b < lo || b > hi)
        return UTF8_REJECT;
    return need == 1 ? UTF8_ACCEPT : MK(need - 1, 0x80, 0xBF);
}

uint32_t utf8_validate(uint32_t state, const uint8_t *p, size_t n)
{
    size_t i = 0;
    if (state == UTF8_REJECT)
        return UTF8_REJECT;
    while (i < n) {
        if (state == UTF8_ACCEPT) {
            /* ASCII fast path, 8 bytes at a time. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                i += 8;
            }
            /* Then at most 8 bytes one by one before trying words again, so non-ASCII
             * text costs one word test per 8 bytes, not per byte. */
            size_t stop = n - i > 8 ? i + 8 : n;
            while (i < stop) {
                state = step(state, p[i++]);
                if (state == UTF8_REJECT)
                    return UTF8_REJECT;
            }
        } else {
            state = step(state, p[i++]);
            if (state == UTF8_REJECT)
                return UTF8_REJECT;
        }
    }
    return state;
}

int utf8_is_valid(const uint8_t *p, size_t n)
{
    return utf8_validate(UTF8_ACCEPT, p, n) == UTF8_ACCEPT;
}

size_t utf8_valid_prefix(const uint8_t *p, size_t n)
{
    uint32_t s = UTF8_ACCEPT;
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        s = step(s, p[i]);
        if (s == UTF8_REJECT)
            break;
        if (s == UTF8_ACCEPT)
            good = i + 1;
    }
    return good;
}
