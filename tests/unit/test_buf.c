#include "common/alloc.h"
#include "common/buf.h"

#include <check.h>
#include <string.h>

START_TEST(test_append_consume)
{
    gw_buf b = {0};
    ck_assert_int_eq(gw_buf_append(&b, "hello", 5), 0);
    ck_assert_int_eq(gw_buf_append_be32(&b, 0x01020304u), 0);
    ck_assert_uint_eq(b.len, 9);
    ck_assert_uint_eq(gw_load_be32(b.data + 5), 0x01020304u);
    gw_buf_consume(&b, 2);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_int_eq(memcmp(b.data, "llo", 3), 0);
    ck_assert_int_eq(gw_buf_printf(&b, "%d-%s", 42, "x"), 0);
    ck_assert_int_eq(memcmp(b.data + 7, "42-x", 4), 0);
    gw_buf_deinit(&b);
    ck_assert_ptr_null(b.data);
    gw_buf_deinit(&b); /* safe twice */
}
END_TEST

START_TEST(test_alloc_failure_leaves_buffer_unchanged)
{
    gw_buf b = {0};
    ck_assert_int_eq(gw_buf_append(&b, "ab", 2), 0);
    size_t cap = b.cap;
    gw_alloc_fail_after(0);
    char big[256] = {0};
    ck_assert_int_lt(gw_buf_append(&b, big, sizeof big), 0);
    gw_alloc_fail_after(-1);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_uint_eq(b.cap, cap);
    gw_buf_deinit(&b);
}
END_TEST

START_TEST(test_sbuf_refcount_and_leaks)
{
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    gw_sbuf *s = gw_sbuf_new(10);
    ck_assert_ptr_nonnull(s);
    gw_sbuf_ref(s);
    gw_sbuf_unref(s);
    ck_assert_int_eq(gw_alloc_outstanding(), before + 1);
    gw_sbuf_unref(s);
    gw_sbuf_cache_drain();
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    /* A small block is recycled: the next one of any small size is the same. */
    gw_sbuf *a = gw_sbuf_new(3);
    gw_sbuf_unref(a);
    gw_sbuf *b = gw_sbuf_new(400);
    ck_assert_ptr_eq(a, b);
    ck_assert_uint_eq(b->len, 400);
    gw_sbuf_unref(b);
    gw_sbuf_cache_drain();
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    gw_alloc_track(0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_append_consume);
    tcase_add_test(tc, test_alloc_failure_leaves_buffer_unchanged);
    tcase_add_test(tc, test_sbuf_refcount_and_leaks);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
