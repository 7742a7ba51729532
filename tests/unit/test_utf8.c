#include "common/utf8.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Straightforward reference decoder (RFC 3629 §3/§4), written independently of the DFA. */
static int ref_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t len;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            len = 2;
            cp = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3;
            cp = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4;
            cp = b & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return 0;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* Feeds p one byte at a time; returns the index of the byte that caused REJECT, or -1. */
static long reject_pos(const uint8_t *p, size_t n)
{
    uint32_t s = UTF8_ACCEPT;
    for (size_t i = 0; i < n; i++) {
        s = utf8_validate(s, p + i, 1);
        if (s == UTF8_REJECT)
            return (long)i;
    }
    return -1;
}

#define U(s) (const uint8_t *)(s), sizeof(s) - 1

START_TEST(test_valid_multilingual)
{
    static const char *const ok[] = {
        "",
        "Hello, world",
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",      /* κόσμε */
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",              /* 日本語 */
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",  /* Привет */
        "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85",                  /* سلام */
        "\xf0\x9f\x98\x80 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", /* emoji */
        "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf",      /* 2/3-byte edges */
        "\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbe",              /* U+D7FF U+E000 U+FFFE */
        "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",                  /* U+10000 U+10FFFF */
        "\xf1\x80\x80\x80\xf3\xbf\xbf\xbf",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i]);
        ck_assert_msg(utf8_is_valid((const uint8_t *)ok[i], n), "vector %zu", i);
        ck_assert_uint_eq(utf8_valid_prefix((const uint8_t *)ok[i], n), n);
        ck_assert_int_eq(reject_pos((const uint8_t *)ok[i], n), -1);
    }
    /* NUL is a valid character */
    ck_assert(utf8_is_valid((const uint8_t *)"a\0b", 3));
    ck_assert(utf8_is_valid(NULL, 0));
}
END_TEST

/* Invalid vectors and the exact byte at which validation must fail (fail fast). */
START_TEST(test_invalid_fail_fast_position)
{
    static const struct {
        const char *s;
        size_t n;
        long pos;
    } bad[] = {
        {"\x80", 1, 0}, /* stray continuation */
        {"ab\xbf", 3, 2},
        {"\xc0\x80", 2, 0},                 /* overlong NUL */
        {"\xc1\xbf", 2, 0},                 /* overlong U+007F */
        {"\xe0\x80\x80", 3, 1},             /* overlong 3-byte */
        {"\xe0\x9f\xbf", 3, 1},             /* overlong U+07FF */
        {"\xf0\x80\x80\x80", 4, 1},         /* overlong 4-byte */
        {"\xf0\x8f\xbf\xbf", 4, 1},         /* overlong U+FFFF */
        {"\xed\xa0\x80", 3, 1},             /* U+D800 */
        {"\xed\xbf\xbf", 3, 1},             /* U+DFFF */
        {"\xed\xa0\x80\xed\xb0\x80", 6, 1}, /* surrogate pair in UTF-8 (CESU) */
        {"\xf4\x90\x80\x80", 4, 1},         /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xf7\xbf\xbf\xbf", 4, 0},
        {"\xf8\x88\x80\x80\x80", 5, 0},     /* 5-byte form */
        {"\xfc\x84\x80\x80\x80\x80", 6, 0}, /* 6-byte form */
        {"\xfe", 1, 0},
        {"\xff", 1, 0},
        {"\xc2\x41", 2, 1}, /* lead without continuation */
        {"\xe2\x82\x41", 3, 2},
        {"\xf0\x9f\x98\x41", 4, 3},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
         "edited",
         20, 12},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"
         "edited",
         21, 12},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const uint8_t *p = (const uint8_t *)bad[i].s;
        ck_assert_msg(!utf8_is_valid(p, bad[i].n), "vector %zu", i);
        ck_assert_msg(reject_pos(p, bad[i].n) == bad[i].pos, "vector %zu: rejected at %ld", i,
                      reject_pos(p, bad[i].n));
        /* the offending prefix alone is already rejected */
        ck_assert_uint_eq(utf8_validate(UTF8_ACCEPT, p, (size_t)bad[i].pos + 1), UTF8_REJECT);
        /* REJECT is sticky */
        ck_assert_uint_eq(utf8_validate(UTF8_REJECT, U("abc")), UTF8_REJECT);
    }
}
END_TEST

START_TEST(test_truncated_at_end)
{
    /* A valid prefix that ends inside a sequence: neither ACCEPT nor REJECT. */
    static const char *const cut[] = {"\xc2", "abc\xe2\x82", "\xf0\x9f\x98", "\xf4\x8f", "\xe0"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        const uint8_t *p = (const uint8_t *)cut[i];
        size_t n = strlen(cut[i]);
        uint32_t s = utf8_validate(UTF8_ACCEPT, p, n);
        ck_assert_uint_ne(s, UTF8_ACCEPT);
        ck_assert_uint_ne(s, UTF8_REJECT);
        ck_assert(!utf8_is_valid(p, n));
    }
    ck_assert_uint_eq(utf8_valid_prefix(U("abc\xe2\x82")), 3);
    /* and the continuation completes it */
    uint32_t s = utf8_validate(UTF8_ACCEPT, U("abc\xe2\x82"));
    ck_assert_uint_eq(utf8_validate(s, U("\xac")), UTF8_ACCEPT);
}
END_TEST

/* Every split of a text into two calls gives the same result as one call. */
START_TEST(test_chunked_equals_whole)
{
    static const char text[] = "ascii run that is long enough for the word path \xce\xba\xe1\xbd"
                               "\xb9\xcf\x83\xce\xbc\xce\xb5 then \xf0\x9f\x98\x80 and more ascii"
                               " text \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e end";
    size_t n = sizeof text - 1;
    const uint8_t *p = (const uint8_t *)text;
    ck_assert_uint_eq(utf8_validate(UTF8_ACCEPT, p, n), UTF8_ACCEPT);
    for (size_t k = 0; k <= n; k++) {
        uint32_t s = utf8_validate(UTF8_ACCEPT, p, k);
        ck_assert_uint_ne(s, UTF8_REJECT);
        ck_assert_uint_eq(utf8_validate(s, p + k, n - k), UTF8_ACCEPT);
    }
}
END_TEST

/* The 8-byte ASCII fast path: a bad byte at every offset and alignment is found. */
START_TEST(test_fast_path_positions)
{
    uint8_t buf[80];
    for (size_t pos = 0; pos < 64; pos++) {
        for (size_t shift = 0; shift < 8; shift++) {
            memset(buf, 'a', sizeof buf);
            buf[shift + pos] = 0xFF;
            ck_assert_uint_eq(utf8_validate(UTF8_ACCEPT, buf + shift, 64), UTF8_REJECT);
            ck_assert_uint_eq(utf8_valid_prefix(buf + shift, 64), pos);
            /* a valid 4-byte sequence at the same place */
            memset(buf, 'a', sizeof buf);
            memcpy(buf + shift + pos, "\xf0\x9f\x98\x80", 4);
            ck_assert_uint_eq(utf8_validate(UTF8_ACCEPT, buf + shift, 68), UTF8_ACCEPT);
            ck_assert_uint_ne(utf8_validate(UTF8_ACCEPT, buf + shift, pos + 2), UTF8_ACCEPT);
        }
    }
}
END_TEST

/* All 1-, 2- and 3-byte strings agree with the reference decoder. */
START_TEST(test_exhaustive_short_strings)
{
    uint8_t b[3];
    for (unsigned a = 0; a < 256; a++) {
        b[0] = (uint8_t)a;
        ck_assert_int_eq(utf8_is_valid(b, 1), ref_valid(b, 1));
        for (unsigned c = 0; c < 256; c++) {
            b[1] = (uint8_t)c;
            ck_assert_int_eq(utf8_is_valid(b, 2), ref_valid(b, 2));
            for (unsigned d = 0; d < 256; d++) {
                b[2] = (uint8_t)d;
                if (utf8_is_valid(b, 3) != ref_valid(b, 3))
                    ck_abort_msg("mismatch at %02x %02x %02x", a, c, d);
            }
        }
    }
}
END_TEST

/* 4-byte strings with any first two bytes and sample tails agree with the reference. */
START_TEST(test_exhaustive_four_byte_heads)
{
    static const uint8_t tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                    0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    uint8_t b[4];
    for (unsigned a = 0xC0; a < 256; a++)
        for (unsigned c = 0; c < 256; c++)
            for (size_t x = 0; x < sizeof tails; x++)
                for (size_t y = 0; y < sizeof tails; y++) {
                    b[0] = (uint8_t)a;
                    b[1] = (uint8_t)c;
                    b[2] = tails[x];
                    b[3] = tails[y];
                    if (utf8_is_valid(b, 4) != ref_valid(b, 4))
                        ck_abort_msg("mismatch at %02x %02x %02x %02x", a, c, b[2], b[3]);
                }
}
END_TEST

/* Fail fast, exactly: after any 1- or 2-byte prefix the state is REJECT if and only if no
 * continuation can make the text valid (witnesses of up to 3 more bytes). */
START_TEST(test_fail_fast_is_exact)
{
    static const uint8_t reps[] = {0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC2, 0xE1, 0xF1};
    const size_t nr = sizeof reps;
    uint8_t b[5];
    for (unsigned plen = 1; plen <= 2; plen++) {
        unsigned count = plen == 1 ? 256 : 65536;
        for (unsigned v = 0; v < count; v++) {
            if (plen == 1) {
                b[0] = (uint8_t)v;
            } else {
                b[0] = (uint8_t)(v >> 8);
                b[1] = (uint8_t)v;
            }
            int rejected = utf8_validate(UTF8_ACCEPT, b, plen) == UTF8_REJECT;
            int completable = ref_valid(b, plen);
            for (size_t i = 0; !completable && i < nr; i++) {
                b[plen] = reps[i];
                completable = ref_valid(b, plen + 1);
                for (size_t j = 0; !completable && j < nr; j++) {
                    b[plen + 1] = reps[j];
                    completable = ref_valid(b, plen + 2);
                    for (size_t k = 0; !completable && k < nr; k++) {
                        b[plen + 2] = reps[k];
                        completable = ref_valid(b, plen + 3);
                    }
                }
            }
            if (rejected == completable)
                ck_abort_msg("prefix len %u value %x: rejected=%d completable=%d", plen, v,
                             rejected, completable);
        }
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_valid_multilingual);
    tcase_add_test(tc, test_invalid_fail_fast_position);
    tcase_add_test(tc, test_truncated_at_end);
    tcase_add_test(tc, test_chunked_equals_whole);
    tcase_add_test(tc, test_fast_path_positions);
    tcase_add_test(tc, test_exhaustive_short_strings);
    tcase_add_test(tc, test_exhaustive_four_byte_heads);
    tcase_add_test(tc, test_fail_fast_is_exact);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
