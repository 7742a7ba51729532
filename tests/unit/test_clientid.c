#include "common/clientid.h"

#include <check.h>
#include <errno.h>
#include <string.h>
#include <time.h>

START_TEST(test_encode_vectors)
{
    char out[CLIENTID_LEN + 1];
    gw_client_addr a = {.ip = 0x7f000001u, .port = 2300, .conn = 1};
    clientid_encode(&a, out);
    ck_assert_str_eq(out, "7f00000108fc00000001");
    /* The value measured from PHP GatewayWorker (port 22900). */
    a.port = 22900;
    clientid_encode(&a, out);
    ck_assert_str_eq(out, "7f000001597400000001");
    a = (gw_client_addr){.ip = 0xffffffffu, .port = 0xffff, .conn = 0xffffffffu};
    clientid_encode(&a, out);
    ck_assert_str_eq(out, "ffffffffffffffffffff");
    a = (gw_client_addr){.ip = 0xc0a80a0bu, .port = 0x0102, .conn = 0x89abcdefu};
    clientid_encode(&a, out);
    ck_assert_str_eq(out, "c0a80a0b010289abcdef");
    ck_assert_uint_eq(strlen(out), CLIENTID_LEN);
}
END_TEST

START_TEST(test_decode_vectors)
{
    gw_client_addr a;
    ck_assert_int_eq(clientid_decode("7f00000108fc00000001", &a), 0);
    ck_assert_uint_eq(a.ip, 0x7f000001u);
    ck_assert_uint_eq(a.port, 2300);
    ck_assert_uint_eq(a.conn, 1);
    ck_assert_int_eq(clientid_decode("ffffffffffffffffffff", &a), 0);
    ck_assert_uint_eq(a.ip, 0xffffffffu);
    ck_assert_uint_eq(a.port, 0xffff);
    ck_assert_uint_eq(a.conn, 0xffffffffu);
    ck_assert_int_eq(clientid_decode("00000000000000000001", &a), 0);
    ck_assert_uint_eq(a.ip, 0);
    ck_assert_uint_eq(a.port, 0);
    ck_assert_uint_eq(a.conn, 1);
    /* decode_n takes a length: a client_id inside a longer buffer. */
    ck_assert_int_eq(clientid_decode_n("c0a80a0b010289abcdefXYZ", 20, &a), 0);
    ck_assert_uint_eq(a.ip, 0xc0a80a0bu);
    ck_assert_uint_eq(a.port, 0x0102);
    ck_assert_uint_eq(a.conn, 0x89abcdefu);
}
END_TEST

START_TEST(test_decode_rejects)
{
    static const char *bad[] = {
        "",
        "7f00000108fc0000000",   /* 19 */
        "7f00000108fc000000010", /* 21 */
        "7F00000108FC00000001",  /* uppercase */
        "7f00000108fC00000001",  /* one uppercase */
        "7f00000108fc0000000g",
        "7f00000108fc 0000001",
        "-f00000108fc00000001",
        "0x000000108fc0000001",
        "7f00000108fc00000000", /* conn 0 */
        "7f000001\n8fc00000001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_client_addr a = {.ip = 42, .port = 42, .conn = 42};
        ck_assert_msg(clientid_decode(bad[i], &a) == -EINVAL, "accepted \"%s\"", bad[i]);
        ck_assert_uint_eq(a.ip, 42); /* untouched */
        ck_assert_uint_eq(a.conn, 42);
    }
    gw_client_addr a;
    ck_assert_int_eq(clientid_decode(NULL, &a), -EINVAL);
    ck_assert_int_eq(clientid_decode_n(NULL, 20, &a), -EINVAL);
    /* An embedded NUL inside the 20 characters. */
    char nul[CLIENTID_LEN + 1] = "7f00000108fc00000001";
    nul[8] = '\0';
    ck_assert_int_eq(clientid_decode_n(nul, CLIENTID_LEN, &a), -EINVAL);
    ck_assert_int_eq(clientid_decode_n("7f00000108fc00000001", 19, &a), -EINVAL);
    ck_assert_int_eq(clientid_decode_n("7f00000108fc00000001", 21, &a), -EINVAL);
    /* Every byte value in every position: only [0-9a-f] accepted. */
    char s[CLIENTID_LEN + 1] = "7f00000108fc00000001";
    for (int pos = 0; pos < CLIENTID_LEN; pos++) {
        char keep = s[pos];
        for (int c = 1; c < 256; c++) {
            s[pos] = (char)c;
            int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            if (pos == CLIENTID_LEN - 1 && c == '0')
                ok = 0; /* would make conn 0 */
            ck_assert_int_eq(clientid_decode_n(s, CLIENTID_LEN, &a), ok ? 0 : -EINVAL);
        }
        s[pos] = keep;
    }
}
END_TEST

START_TEST(test_roundtrip_random)
{
    unsigned seed = 7;
    for (int i = 0; i < 100000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r1 = seed;
        seed = seed * 1103515245u + 12345u;
        uint32_t r2 = seed;
        gw_client_addr a = {.ip = r1 ^ r2 << 7, .port = (uint16_t)(r2 >> 9), .conn = r2 | 1};
        char out[CLIENTID_LEN + 1];
        clientid_encode(&a, out);
        gw_client_addr b;
        ck_assert_int_eq(clientid_decode(out, &b), 0);
        ck_assert_uint_eq(a.ip, b.ip);
        ck_assert_uint_eq(a.port, b.port);
        ck_assert_uint_eq(a.conn, b.conn);
    }
}
END_TEST

START_TEST(test_boot_counter)
{
    /* Scheme: floor(ms * 4096 / 1000) mod 2^32, never 0. */
    ck_assert_uint_eq(clientid_boot_counter_at(0), 1);
    ck_assert_uint_eq(clientid_boot_counter_at(1000), 4096);
    ck_assert_uint_eq(clientid_boot_counter_at(1), 4);
    /* One revolution is 2^20 s: the value comes round. */
    uint64_t period_ms = (1ull << 20) * 1000u;
    ck_assert_uint_eq(clientid_boot_counter_at(period_ms), 1);
    ck_assert_uint_eq(clientid_boot_counter_at(period_ms + 1000), 4096);
    uint64_t t = 1764174600000ull; /* 2025-11-26T16:30:00Z */
    ck_assert_uint_eq(clientid_boot_counter_at(t + period_ms), clientid_boot_counter_at(t));
    /* A restart 1 s later starts 4096 further on. */
    ck_assert_uint_eq(clientid_boot_counter_at(t + 1000) - clientid_boot_counter_at(t), 4096);

    /* Calls are non-decreasing (barring a wrap, about every 12 days, or a clock
     * step), and advance with time. */
    uint32_t a = clientid_boot_counter();
    ck_assert_uint_ne(a, 0);
    uint32_t prev = a;
    for (int i = 0; i < 1000; i++) {
        uint32_t v = clientid_boot_counter();
        ck_assert_uint_ne(v, 0);
        ck_assert_uint_le(v - a, 1u << 20); /* ahead of a, modulo 2^32 */
        ck_assert_uint_le(prev - a, v - a);
        prev = v;
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ck_assert_uint_ge(clientid_boot_counter() - a, 20); /* 5 ms = 20 numbers */
}
END_TEST

START_TEST(test_counter_next)
{
    uint32_t c = 5;
    ck_assert_uint_eq(clientid_counter_next(&c), 5);
    ck_assert_uint_eq(clientid_counter_next(&c), 6);
    ck_assert_uint_eq(c, 7);
    c = UINT32_MAX - 1;
    ck_assert_uint_eq(clientid_counter_next(&c), UINT32_MAX - 1);
    ck_assert_uint_eq(clientid_counter_next(&c), UINT32_MAX);
    ck_assert_uint_eq(clientid_counter_next(&c), 1); /* skips 0 */
    ck_assert_uint_eq(clientid_counter_next(&c), 2);
    c = 0;
    ck_assert_uint_eq(clientid_counter_next(&c), 1);
    ck_assert_uint_eq(c, 2);
    c = clientid_boot_counter();
    uint32_t first = clientid_counter_next(&c);
    ck_assert_uint_ne(first, 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("clientid");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_encode_vectors);
    tcase_add_test(tc, test_decode_vectors);
    tcase_add_test(tc, test_decode_rejects);
    tcase_add_test(tc, test_roundtrip_random);
    tcase_add_test(tc, test_boot_counter);
    tcase_add_test(tc, test_counter_next);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
