/* smap: against a brute-force model, including deletes in probe clusters. */
#include "common/alloc.h"
#include "common/smap.h"
#include "common/u32map.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_basic)
{
    smap m;
    smap_init(&m);
    ck_assert_ptr_null(smap_get(&m, "a", 1));
    void *old = (void *)9;
    ck_assert_int_eq(smap_put(&m, "a", 1, (void *)1, &old), 0);
    ck_assert_ptr_null(old);
    ck_assert_int_eq(smap_put(&m, "a", 1, (void *)2, &old), 0);
    ck_assert_ptr_eq(old, (void *)1);
    ck_assert_ptr_eq(smap_get(&m, "a", 1), (void *)2);
    ck_assert_ptr_null(smap_get(&m, "ab", 2)); /* length is part of the key */
    ck_assert_ptr_eq(smap_del(&m, "a", 1), (void *)2);
    ck_assert_ptr_null(smap_del(&m, "a", 1));
    ck_assert_uint_eq(smap_count(&m), 0);
    smap_deinit(&m);
}
END_TEST

START_TEST(test_random_model)
{
    enum { K = 300 };
    smap m;
    smap_init(&m);
    long model[K];
    for (int i = 0; i < K; i++)
        model[i] = 0;
    srandom(7);
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    for (int step = 0; step < 100000; step++) {
        int k = (int)(random() % K);
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", k);
        if (random() % 3) {
            long v = random() % 1000 + 1;
            ck_assert_int_eq(smap_put(&m, key, (size_t)kl, (void *)v, NULL), 0);
            model[k] = v;
        } else {
            void *v = smap_del(&m, key, (size_t)kl);
            ck_assert_ptr_eq(v, (void *)model[k]);
            model[k] = 0;
        }
        if (step % 1000 == 0) {
            size_t n = 0;
            for (int i = 0; i < K; i++) {
                int l = snprintf(key, sizeof key, "k%d", i);
                ck_assert_ptr_eq(smap_get(&m, key, (size_t)l), (void *)model[i]);
                n += model[i] != 0;
            }
            ck_assert_uint_eq(smap_count(&m), n);
            size_t pos = 0, seen = 0;
            const smap_entry *e;
            while (smap_next(&m, &pos, &e))
                seen++;
            ck_assert_uint_eq(seen, n);
        }
    }
    smap_deinit(&m);
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    gw_alloc_track(0);
}
END_TEST

START_TEST(test_u32map_model)
{
    enum { K = 500 };
    u32map m = {0};
    long model[K] = {0};
    srandom(11);
    for (int step = 0; step < 100000; step++) {
        uint32_t k = (uint32_t)(random() % K) * 7919u; /* spread keys, collide homes */
        int idx = (int)(k / 7919u);
        if (random() % 3) {
            long v = random() % 1000 + 1;
            ck_assert_int_eq(u32map_put(&m, k, (void *)v), 0);
            model[idx] = v;
        } else {
            ck_assert_ptr_eq(u32map_del(&m, k), (void *)model[idx]);
            model[idx] = 0;
        }
        if (step % 997 == 0) {
            size_t n = 0;
            for (int i = 0; i < K; i++) {
                ck_assert_ptr_eq(u32map_get(&m, (uint32_t)i * 7919u), (void *)model[i]);
                n += model[i] != 0;
            }
            ck_assert_uint_eq(m.count, n);
        }
    }
    u32map_deinit(&m);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("smap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_random_model);
    tcase_add_test(tc, test_u32map_model);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
