#include "common/base64.h"

#include <check.h>
#include <errno.h>
#include <string.h>

/* RFC 4648 §10 test vectors. */
static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

START_TEST(test_rfc4648_vectors)
{
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        size_t n = strlen(plain[i]);
        ck_assert_uint_eq(base64_encode(out, (const uint8_t *)plain[i], n), strlen(coded[i]));
        ck_assert_str_eq(out, coded[i]);
        ck_assert_uint_eq(BASE64_ENCODED_LEN(n), strlen(coded[i]));
        uint8_t dec[8];
        ck_assert_int_eq(base64_decode(dec, sizeof dec, coded[i], strlen(coded[i])), (long)n);
        ck_assert_int_eq(memcmp(dec, plain[i], n), 0);
    }
}
END_TEST

START_TEST(test_all_bytes_roundtrip)
{
    uint8_t in[256], back[256];
    char enc[BASE64_ENCODED_LEN(256) + 1];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    for (size_t n = 0; n <= 256; n++) {
        size_t e = base64_encode(enc, in + (256 - n), n);
        ck_assert_uint_eq(e, BASE64_ENCODED_LEN(n));
        ck_assert_int_eq(base64_decode(back, sizeof back, enc, e), (long)n);
        ck_assert_int_eq(memcmp(back, in + (256 - n), n), 0);
    }
}
END_TEST

START_TEST(test_strict_decoder)
{
    static const char *const bad[] = {
        "Zg",       "Zg=",  "Zg===", "Z===",      "====",    "=Zg=",
        "Zg==Zg==", "Zh==", "Zm9=",  "Zm9v\n",    "Zm 9v",   "Zm9v-_==",
        "Zm9\x80",  "Zg=A", "A",     "Zm9vYg=\n", "Zm9vYmE", "Zm9vYg=a",
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(base64_decode(out, sizeof out, bad[i], strlen(bad[i])) == -EINVAL,
                      "case %zu: %s", i, bad[i]);
    /* the output limit is respected */
    ck_assert_int_eq(base64_decode(out, 5, "Zm9vYmFy", 8), -ENOBUFS);
    ck_assert_int_eq(base64_decode(out, 6, "Zm9vYmFy", 8), 6);
    ck_assert_int_eq(base64_decode(out, 3, "Zm9vYg==", 8), -ENOBUFS);
    ck_assert_int_eq(base64_decode(out, 0, "", 0), 0);
    /* a WebSocket key is 16 bytes */
    ck_assert_int_eq(base64_decode(out, sizeof out, "dGhlIHNhbXBsZSBub25jZQ==", 24), 16);
    ck_assert_int_eq(memcmp(out, "the sample nonce", 16), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("base64");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rfc4648_vectors);
    tcase_add_test(tc, test_all_bytes_roundtrip);
    tcase_add_test(tc, test_strict_decoder);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
