/* Gateway uid/group membership: invariants of the O(1) sets, presence notices,
 * GatewayWorker's bugs not copied ("0" is a name; unbind checks the uid). */
#include "common/alloc.h"
#include "gateway/gateway_int.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define N 64

static gw_gateway gw;
static gw_conn conns[N];

static void setup(void)
{
    memset(&gw, 0, sizeof gw);
    memset(conns, 0, sizeof conns);
    for (int i = 0; i < N; i++)
        conns[i].id = (uint32_t)i + 1;
}

static void teardown(void)
{
    for (int i = 0; i < N; i++) {
        members_detach(&gw, &conns[i]);
        ck_assert_ptr_null(conns[i].groups);
    }
    ck_assert_uint_eq(smap_count(&gw.uids), 0);
    ck_assert_uint_eq(smap_count(&gw.groups), 0);
    members_free_all(&gw);
}

/* Every member's back-reference points at its slot, and vice versa. */
static void check_consistent(void)
{
    for (int i = 0; i < N; i++) {
        gw_conn *c = &conns[i];
        if (c->uid) {
            ck_assert_uint_lt(c->uid_pos, c->uid->n);
            ck_assert_ptr_eq(c->uid->conns[c->uid_pos], c);
        }
        for (int k = 0; k < c->ngroups; k++) {
            member_set *g = c->groups[k].g;
            ck_assert_uint_lt(c->groups[k].pos, g->n);
            ck_assert_ptr_eq(g->conns[c->groups[k].pos], c);
        }
    }
    size_t pos = 0;
    const smap_entry *e;
    while (smap_next(&gw.groups, &pos, &e)) {
        member_set *g = e->value;
        ck_assert_uint_gt(g->n, 0);
        for (uint32_t j = 0; j < g->n; j++) {
            gw_conn *c = g->conns[j];
            int found = 0;
            for (int k = 0; k < c->ngroups; k++)
                found |= c->groups[k].g == g && c->groups[k].pos == j;
            ck_assert(found);
        }
    }
}

START_TEST(test_uid_bind_replace_unbind)
{
    ck_assert_int_eq(members_bind_uid(&gw, &conns[0], "0", 1), 0); /* "0" is a uid */
    ck_assert_int_eq(members_bind_uid(&gw, &conns[1], "0", 1), 0);
    member_set *s = members_uid(&gw, "0", 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n, 2);
    /* A new uid replaces the old one. */
    ck_assert_int_eq(members_bind_uid(&gw, &conns[0], "alice", 5), 0);
    ck_assert_uint_eq(members_uid(&gw, "0", 1)->n, 1);
    ck_assert_uint_eq(members_uid(&gw, "alice", 5)->n, 1);
    /* Unbinding another uid changes nothing (GatewayWorker unbinds whatever). */
    ck_assert_int_eq(members_unbind_uid(&gw, &conns[0], "bob", 3), 0);
    ck_assert_ptr_eq(conns[0].uid, members_uid(&gw, "alice", 5));
    ck_assert_int_eq(members_unbind_uid(&gw, &conns[0], "alice", 5), 0);
    ck_assert_ptr_null(conns[0].uid);
    ck_assert_ptr_null(members_uid(&gw, "alice", 5)); /* empty sets are freed */
    check_consistent();
}
END_TEST

START_TEST(test_presence_notices_on_first_and_last)
{
    uint64_t before = gw.members_changes;
    members_join(&gw, &conns[0], "room", 4);
    ck_assert_uint_eq(gw.members_changes, before + 1); /* appeared */
    members_join(&gw, &conns[1], "room", 4);
    members_join(&gw, &conns[1], "room", 4); /* twice: no-op */
    ck_assert_uint_eq(members_group(&gw, "room", 4)->n, 2);
    ck_assert_uint_eq(gw.members_changes, before + 1);
    members_leave(&gw, &conns[0], "room", 4);
    ck_assert_uint_eq(gw.members_changes, before + 1);
    members_leave(&gw, &conns[1], "room", 4);
    ck_assert_uint_eq(gw.members_changes, before + 2); /* gone */
    ck_assert_ptr_null(members_group(&gw, "room", 4));
}
END_TEST

START_TEST(test_ungroup_keeps_other_groups)
{
    for (int i = 0; i < 10; i++) {
        members_join(&gw, &conns[i], "a", 1);
        members_join(&gw, &conns[i], "b", 1);
    }
    members_ungroup(&gw, "a", 1);
    ck_assert_ptr_null(members_group(&gw, "a", 1));
    ck_assert_uint_eq(members_group(&gw, "b", 1)->n, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(conns[i].ngroups, 1);
    members_ungroup(&gw, "nope", 4);
    check_consistent();
}
END_TEST

/* Random operations against a brute-force model. */
START_TEST(test_random_against_model)
{
    static const char *names[] = {"g0", "g1", "g2", "g3", "0"};
    int model[N][5] = {{0}};
    int uid_model[N];
    for (int i = 0; i < N; i++)
        uid_model[i] = -1;
    srandom(42);
    for (int step = 0; step < 20000; step++) {
        int c = (int)(random() % N), g = (int)(random() % 5), op = (int)(random() % 6);
        gw_conn *x = &conns[c];
        const char *nm = names[g];
        size_t nl = strlen(nm);
        switch (op) {
        case 0:
        case 1:
            ck_assert_int_eq(members_join(&gw, x, nm, nl), 0);
            model[c][g] = 1;
            break;
        case 2:
            members_leave(&gw, x, nm, nl);
            model[c][g] = 0;
            break;
        case 3:
            ck_assert_int_eq(members_bind_uid(&gw, x, nm, nl), 0);
            uid_model[c] = g;
            break;
        case 4:
            members_unbind_uid(&gw, x, nm, nl);
            if (uid_model[c] == g)
                uid_model[c] = -1;
            break;
        case 5:
            if (random() % 50 == 0) {
                members_ungroup(&gw, nm, nl);
                for (int i = 0; i < N; i++)
                    model[i][g] = 0;
            }
            break;
        }
        if (step % 500 == 0)
            check_consistent();
    }
    check_consistent();
    for (int g = 0; g < 5; g++) {
        member_set *s = members_group(&gw, names[g], strlen(names[g]));
        uint32_t n = 0;
        for (int i = 0; i < N; i++)
            n += (uint32_t)model[i][g];
        ck_assert_uint_eq(s ? s->n : 0, n);
        member_set *u = members_uid(&gw, names[g], strlen(names[g]));
        uint32_t un = 0;
        for (int i = 0; i < N; i++)
            un += uid_model[i] == g;
        ck_assert_uint_eq(u ? u->n : 0, un);
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("members");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_uid_bind_replace_unbind);
    tcase_add_test(tc, test_presence_notices_on_first_and_last);
    tcase_add_test(tc, test_ungroup_keeps_other_groups);
    tcase_add_test(tc, test_random_against_model);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
