/* Sessions: RFC 7396 merge, and the diff a worker writes back. */
#include "common/session.h"

#include <check.h>
#include <string.h>

static json_t *J(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(v);
    return v;
}

static void assert_json(const json_t *v, const char *expected)
{
    json_t *e = J(expected);
    if (!json_equal(v, e)) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        ck_abort_msg("got %s, want %s", s, expected);
    }
    json_decref(e);
}

START_TEST(test_merge_rfc7396)
{
    /* The examples of RFC 7396, appendix A (object cases). */
    static const char *cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *t = J(cases[i][0]), *p = J(cases[i][1]);
        ck_assert_int_eq(session_merge(&t, p), 0);
        assert_json(t, cases[i][2]);
        json_decref(t);
        json_decref(p);
    }
}
END_TEST

START_TEST(test_concurrent_updates_of_different_keys)
{
    /* Two workers start from the same session and change different keys: merging
     * both patches keeps both changes (set would lose one). */
    json_t *gw = J("{\"name\":\"a\",\"score\":1,\"room\":\"x\"}");
    json_t *w1 = json_deep_copy(gw), *w2 = json_deep_copy(gw);
    json_object_set_new(w1, "name", json_string("b"));
    json_object_set_new(w2, "score", json_integer(2));
    json_object_del(w2, "room");
    json_t *p1 = session_diff(gw, w1), *p2 = session_diff(gw, w2);
    assert_json(p1, "{\"name\":\"b\"}");
    assert_json(p2, "{\"score\":2,\"room\":null}");
    ck_assert_int_eq(session_merge(&gw, p2), 0);
    ck_assert_int_eq(session_merge(&gw, p1), 0);
    assert_json(gw, "{\"name\":\"b\",\"score\":2}");
    json_decref(gw);
    json_decref(w1);
    json_decref(w2);
    json_decref(p1);
    json_decref(p2);
}
END_TEST

START_TEST(test_diff_roundtrip_nested)
{
    json_t *from = J("{\"u\":{\"a\":1,\"b\":{\"c\":2}},\"x\":[1,2],\"gone\":true}");
    json_t *to = J("{\"u\":{\"a\":1,\"b\":{\"c\":3,\"d\":4}},\"x\":[1],\"new\":\"n\"}");
    json_t *patch = session_diff(from, to);
    assert_json(patch, "{\"u\":{\"b\":{\"c\":3,\"d\":4}},\"x\":[1],\"new\":\"n\",\"gone\":null}");
    ck_assert_int_eq(session_merge(&from, patch), 0);
    ck_assert(json_equal(from, to));
    json_t *none = session_diff(to, to);
    ck_assert_uint_eq(json_object_size(none), 0);
    json_decref(none);
    json_decref(patch);
    json_decref(from);
    json_decref(to);
}
END_TEST

START_TEST(test_parse_and_dump)
{
    json_t *e = session_parse((const uint8_t *)"", 0);
    ck_assert(json_is_object(e) && json_object_size(e) == 0);
    gw_buf b = {0};
    ck_assert_int_eq(session_dump(e, &b), 0);
    ck_assert_uint_eq(b.len, 0); /* empty session: no bytes on every event */
    json_decref(e);
    ck_assert_ptr_null(session_parse((const uint8_t *)"[1]", 3));
    ck_assert_ptr_null(session_parse((const uint8_t *)"{\"a\":", 5));
    ck_assert_ptr_null(session_parse((const uint8_t *)"{\"a\":1,\"a\":2}", 13));
    json_t *o = session_parse((const uint8_t *)"{\"a\":1}", 7);
    ck_assert_int_eq(session_dump(o, &b), 0);
    ck_assert_int_eq(memcmp(b.data, "{\"a\":1}", 7), 0);
    json_decref(o);
    gw_buf_deinit(&b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_merge_rfc7396);
    tcase_add_test(tc, test_concurrent_updates_of_different_keys);
    tcase_add_test(tc, test_diff_roundtrip_nested);
    tcase_add_test(tc, test_parse_and_dump);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
