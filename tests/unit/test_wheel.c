#include "common/alloc.h"
#include "common/wheel.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TICK 50
#define NSLOTS 64 /* small, so that revolutions (3.2 s) are easy to cross */

typedef struct tnode {
    wheel_node wn;
    int id;
    int fired;
    uint64_t fired_at;
    uint64_t want; /* model: deadline while scheduled, UINT64_MAX otherwise */
} tnode;

/* ck_assert_* reports a checkpoint through a pipe on every call in fork mode;
 * hot loops use this instead (it only costs on failure). */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                                  \
    } while (0)

#define TNODE(n) ((tnode *)((char *)(n)-offsetof(tnode, wn)))

typedef struct ctx {
    wheel *w;
    uint64_t now;
    int fired;
    /* behaviours */
    uint64_t readd_after; /* re-add the fired node at now + readd_after (0: no) */
    tnode *remove_victim; /* remove this node when anything fires */
    tnode *add_victim;    /* add this node (at add_deadline) when anything fires */
    uint64_t add_deadline;
    int nested;
} ctx;

static void on_fire(wheel_node *n, void *arg)
{
    ctx *c = arg;
    tnode *t = TNODE(n);
    REQUIRE(!wheel_is_active(n));
    REQUIRE(n->deadline_ms <= c->now); /* never early */
    t->fired++;
    t->fired_at = c->now;
    c->fired++;
    if (c->readd_after)
        wheel_add(c->w, n, c->now + c->readd_after);
    if (c->remove_victim) {
        wheel_remove(c->w, &c->remove_victim->wn);
        c->remove_victim = NULL;
    }
    if (c->add_victim) {
        wheel_add(c->w, &c->add_victim->wn, c->add_deadline);
        c->add_victim = NULL;
    }
    if (c->nested)
        REQUIRE(wheel_advance(c->w, c->now + 100000, on_fire, c) == 0);
}

static size_t adv(wheel *w, ctx *c, uint64_t now)
{
    c->now = now;
    return wheel_advance(w, now, on_fire, c);
}

START_TEST(test_init_errors)
{
    wheel w = {0};
    wheel_deinit(&w);
    ck_assert_int_eq(wheel_init(&w, 0, 64, 0), -EINVAL);
    ck_assert_int_eq(wheel_init(&w, 50, 0, 0), -EINVAL);
    ck_assert_int_eq(wheel_init(&w, 50, 3, 0), -EINVAL);
    ck_assert_int_eq(wheel_init(&w, 50, 4095, 0), -EINVAL);
    ck_assert_ptr_null(w.slots);
    gw_alloc_fail_after(0);
    ck_assert_int_eq(wheel_init(&w, 50, 4096, 0), -ENOMEM);
    gw_alloc_fail_after(-1);
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    ck_assert_int_eq(wheel_init(&w, 50, 4096, 123456), 0);
    ck_assert_uint_eq(wheel_count(&w), 0);
    ck_assert_uint_eq(wheel_next_deadline(&w), UINT64_MAX);
    wheel_deinit(&w);
    wheel_deinit(&w);
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    /* One slot and a 1 ms tick are valid. */
    ck_assert_int_eq(wheel_init(&w, 1, 1, 0), 0);
    wheel_deinit(&w);
    gw_alloc_track(0);
}
END_TEST

START_TEST(test_fire_exact_with_fine_advances)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 1000), 0);
    ctx c = {.w = &w};
    tnode a = {0}, b = {0};
    wheel_add(&w, &a.wn, 1123);
    wheel_add(&w, &b.wn, 1150); /* on a tick boundary */
    ck_assert(wheel_is_active(&a.wn));
    ck_assert_uint_eq(wheel_count(&w), 2);
    for (uint64_t now = 1000; now <= 1300; now++)
        adv(&w, &c, now);
    ck_assert_int_eq(a.fired, 1);
    ck_assert_uint_eq(a.fired_at, 1123);
    ck_assert_int_eq(b.fired, 1);
    ck_assert_uint_eq(b.fired_at, 1150);
    ck_assert_uint_eq(wheel_count(&w), 0);
    ck_assert(!wheel_is_active(&a.wn));
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_fire_within_one_tick)
{
    /* A periodic timer of one tick: every deadline fires within [d, d + tick). */
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 7), 0);
    ctx c = {.w = &w};
    enum { N = 500 };
    static tnode n[N];
    memset(n, 0, sizeof n);
    srand(1);
    for (int i = 0; i < N; i++)
        wheel_add(&w, &n[i].wn, 7 + (uint64_t)(rand() % 20000));
    for (uint64_t now = 7; now <= 7 + 20000 + TICK; now += TICK)
        adv(&w, &c, now);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(n[i].fired, 1);
        ck_assert_uint_ge(n[i].fired_at, n[i].wn.deadline_ms);
        ck_assert_uint_lt(n[i].fired_at, n[i].wn.deadline_ms + TICK);
    }
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_remove_before_fire)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 0), 0);
    ctx c = {.w = &w};
    tnode a = {0}, b = {0}, z = {0};
    wheel_remove(&w, &z.wn); /* zeroed: no-op */
    wheel_add(&w, &a.wn, 100);
    wheel_add(&w, &b.wn, 100);
    wheel_remove(&w, &a.wn);
    wheel_remove(&w, &a.wn); /* twice: no-op */
    ck_assert(!wheel_is_active(&a.wn));
    ck_assert_uint_eq(wheel_count(&w), 1);
    ck_assert_uint_eq(adv(&w, &c, 1000), 1);
    ck_assert_int_eq(a.fired, 0);
    ck_assert_int_eq(b.fired, 1);
    wheel_remove(&w, &b.wn); /* already fired: no-op */
    ck_assert_uint_eq(wheel_count(&w), 0);
    /* Reschedule = add on an active node. */
    wheel_add(&w, &a.wn, 2000);
    wheel_add(&w, &a.wn, 1500);
    ck_assert_uint_eq(wheel_count(&w), 1);
    ck_assert_uint_eq(adv(&w, &c, 1499), 0);
    ck_assert_uint_eq(adv(&w, &c, 1500), 1);
    ck_assert_uint_eq(adv(&w, &c, 2500), 0);
    ck_assert_int_eq(a.fired, 1);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_readd_from_callback)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 0), 0);
    ctx c = {.w = &w, .readd_after = 100};
    tnode a = {0};
    wheel_add(&w, &a.wn, 100);
    for (uint64_t now = 0; now <= 1000; now += 10)
        adv(&w, &c, now);
    ck_assert_int_eq(a.fired, 10); /* at 100, 200, ..., 1000 */
    ck_assert(wheel_is_active(&a.wn));
    ck_assert_uint_eq(a.wn.deadline_ms, 1100);
    ck_assert_uint_eq(wheel_count(&w), 1);

    /* Re-adding with a deadline already due fires at the next advance, once per
     * advance (no endless loop inside one advance). */
    c.readd_after = 0;
    wheel_remove(&w, &a.wn);
    a.fired = 0;
    wheel_add(&w, &a.wn, 1000);
    c.add_victim = &a; /* the callback re-adds the node itself, due now */
    c.add_deadline = 1000;
    ck_assert_uint_eq(adv(&w, &c, 1000), 1);
    ck_assert(wheel_is_active(&a.wn));
    ck_assert_uint_eq(adv(&w, &c, 1000), 1);
    ck_assert(!wheel_is_active(&a.wn));
    ck_assert_int_eq(a.fired, 2);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_callback_edits_same_slot)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 0), 0);
    ctx c = {.w = &w};
    tnode n[4];
    memset(n, 0, sizeof n);
    /* All in one slot (tick 2); slots push at the front, so n[2] is visited first. */
    wheel_add(&w, &n[0].wn, 100);
    wheel_add(&w, &n[1].wn, 110);
    wheel_add(&w, &n[2].wn, 120);
    /* The first callback removes one still-pending node of the same slot... */
    c.remove_victim = &n[1];
    /* ...and adds another one into the slot being processed, already due. */
    c.add_victim = &n[3];
    c.add_deadline = 105;
    size_t fired = adv(&w, &c, 149);
    ck_assert_int_eq(n[1].fired, 0);
    ck_assert(!wheel_is_active(&n[1].wn));
    ck_assert_int_eq(n[0].fired, 1);
    ck_assert_int_eq(n[2].fired, 1);
    /* n[3] fires in this advance or the next, never lost. */
    fired += adv(&w, &c, 149);
    ck_assert_int_eq(n[3].fired, 1);
    ck_assert_uint_eq(fired, 3);
    ck_assert_uint_eq(wheel_count(&w), 0);

    /* A callback removing the node that was next in line, and removing itself's
     * neighbours in other slots. */
    for (int i = 0; i < 4; i++) {
        memset(&n[i], 0, sizeof n[i]);
        wheel_add(&w, &n[i].wn, 200 + (uint64_t)i * 60); /* ticks 4, 5, 6, 7 */
    }
    c.remove_victim = &n[3];
    ck_assert_uint_eq(adv(&w, &c, 1000), 3);
    ck_assert_int_eq(n[3].fired, 0);
    ck_assert_uint_eq(wheel_count(&w), 0);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_nested_advance_refused)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 0), 0);
    ctx c = {.w = &w, .nested = 1};
    tnode a = {0}, b = {0};
    wheel_add(&w, &a.wn, 10);
    wheel_add(&w, &b.wn, 5000);
    ck_assert_uint_eq(adv(&w, &c, 100), 1);
    ck_assert_int_eq(b.fired, 0);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_past_deadline)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 10000), 0);
    ctx c = {.w = &w};
    tnode a = {0}, b = {0};
    wheel_add(&w, &a.wn, 0);
    wheel_add(&w, &b.wn, 9999);
    ck_assert_uint_le(wheel_next_deadline(&w), 9999);
    ck_assert_uint_eq(adv(&w, &c, 10000), 2); /* same now as init */
    ck_assert_int_eq(a.fired + b.fired, 2);
    /* After advancing, a past deadline still fires at the next advance. */
    adv(&w, &c, 20000);
    wheel_add(&w, &a.wn, 15000);
    ck_assert_uint_eq(adv(&w, &c, 20000), 1);
    /* A clock going backwards is treated as "no time passed". */
    wheel_add(&w, &b.wn, 20010);
    ck_assert_uint_eq(adv(&w, &c, 5), 0);
    ck_assert_uint_eq(adv(&w, &c, 20010), 1);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_long_gap)
{
    /* The intended configuration, stopped for a long time: one call must not loop
     * per tick (2^52 ms / 50 ms = 9e13 ticks would time the test out). */
    wheel w;
    ck_assert_int_eq(wheel_init(&w, 50, 4096, 1000), 0);
    ctx c = {.w = &w};
    enum { N = 2000 };
    static tnode n[N];
    memset(n, 0, sizeof n);
    srand(2);
    for (int i = 0; i < N; i++)
        wheel_add(&w, &n[i].wn, 1000 + (uint64_t)(rand() % 3600000)); /* within an hour */
    tnode late = {0};
    uint64_t gap_end = (1ull << 52);
    wheel_add(&w, &late.wn, gap_end + 1);
    ck_assert_uint_eq(adv(&w, &c, 3600000 + 1000), N); /* an hour later: 17 revolutions */
    ck_assert_uint_eq(adv(&w, &c, gap_end), 0);
    ck_assert_uint_eq(wheel_count(&w), 1);
    ck_assert_uint_eq(adv(&w, &c, gap_end + 1), 1);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(n[i].fired, 1);
    /* And a node added after the gap behaves normally. */
    wheel_add(&w, &n[0].wn, gap_end + 500);
    ck_assert_uint_eq(adv(&w, &c, gap_end + 499), 0);
    ck_assert_uint_eq(adv(&w, &c, gap_end + 500), 1);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_far_deadline)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 0), 0);
    ctx c = {.w = &w};
    tnode a = {0}, b = {0};
    uint64_t rev = TICK * NSLOTS;
    uint64_t d = 10 * rev + 77;
    wheel_add(&w, &a.wn, d);
    wheel_add(&w, &b.wn, 77);                       /* same slot, first revolution */
    ck_assert_uint_eq(wheel_next_deadline(&w), 50); /* lower bound: start of slot tick 1 */
    for (uint64_t now = 0; now < d; now += 10) {
        adv(&w, &c, now);
        REQUIRE(a.fired == 0);
    }
    ck_assert_int_eq(b.fired, 1);
    ck_assert_uint_eq(wheel_count(&w), 1);
    ck_assert_uint_le(wheel_next_deadline(&w), d);
    adv(&w, &c, d);
    ck_assert_int_eq(a.fired, 1);
    ck_assert_uint_eq(a.fired_at, d);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_next_deadline)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 1000), 0);
    ctx c = {.w = &w};
    tnode a = {0}, b = {0};
    ck_assert_uint_eq(wheel_next_deadline(&w), UINT64_MAX);
    wheel_add(&w, &a.wn, 1777);
    ck_assert_uint_eq(wheel_next_deadline(&w), 1750);
    wheel_add(&w, &b.wn, 1010); /* in the current tick: exact */
    ck_assert_uint_eq(wheel_next_deadline(&w), 1010);
    wheel_remove(&w, &b.wn);
    ck_assert_uint_eq(wheel_next_deadline(&w), 1750);
    adv(&w, &c, 1760);
    ck_assert_uint_eq(wheel_next_deadline(&w), 1777); /* now in the current slot */
    adv(&w, &c, 1800);
    ck_assert_uint_eq(wheel_next_deadline(&w), UINT64_MAX);
    wheel_deinit(&w);
}
END_TEST

START_TEST(test_deinit_unlinks)
{
    wheel w;
    ck_assert_int_eq(wheel_init(&w, TICK, NSLOTS, 0), 0);
    tnode a = {0}, b = {0};
    wheel_add(&w, &a.wn, 100);
    wheel_add(&w, &b.wn, 100);
    wheel_deinit(&w);
    ck_assert(!wheel_is_active(&a.wn));
    ck_assert(!wheel_is_active(&b.wn));
    wheel_remove(&w, &a.wn); /* no-op, no use of freed memory */
    ck_assert_uint_eq(wheel_count(&w), 0);
}
END_TEST

/* Brute-force model: random adds, removes, reschedules and advances (including
 * gaps over several revolutions and callbacks that re-add); after every advance
 * the set of fired nodes must equal the set of scheduled nodes with deadline <=
 * now, and the wheel's lower bound must not exceed the true minimum. */
enum { MN = 300 };
static tnode mnodes[MN];
static unsigned mseed;

static unsigned mrand(void)
{
    mseed = mseed * 1664525u + 1013904223u;
    return mseed >> 8;
}

static void model_fire(wheel_node *n, void *arg)
{
    ctx *c = arg;
    tnode *t = TNODE(n);
    REQUIRE(t->want != UINT64_MAX);
    REQUIRE(t->want <= c->now);
    REQUIRE(t->want == n->deadline_ms);
    t->want = UINT64_MAX;
    t->fired++;
    c->fired++;
    if (mrand() % 4 == 0) { /* re-add itself, maybe already due */
        uint64_t d = c->now - 100 + mrand() % 5000;
        wheel_add(c->w, n, d);
        t->want = d;
        t->id = 1; /* mark: may fire again in this same advance */
    }
    if (mrand() % 8 == 0) { /* remove another node */
        tnode *o = &mnodes[mrand() % MN];
        wheel_remove(c->w, &o->wn);
        o->want = UINT64_MAX;
    }
}

START_TEST(test_model_random)
{
    for (unsigned run = 0; run < 4; run++) {
        mseed = 1000 + run;
        memset(mnodes, 0, sizeof mnodes);
        uint64_t tick = run & 1 ? 1 : TICK;
        size_t nslots = run & 2 ? 8 : 256;
        wheel w;
        uint64_t now = 5000 + mrand() % 1000;
        ck_assert_int_eq(wheel_init(&w, tick, nslots, now), 0);
        ctx c = {.w = &w};
        for (int i = 0; i < MN; i++)
            mnodes[i].want = UINT64_MAX;
        for (int step = 0; step < 20000; step++) {
            unsigned op = mrand() % 100;
            tnode *t = &mnodes[mrand() % MN];
            if (op < 45) {
                uint64_t span = mrand() % 3 == 0 ? 100000 : 2000;
                uint64_t d = now + mrand() % span;
                if (mrand() % 10 == 0)
                    d = now > 3000 ? now - mrand() % 3000 : 0; /* in the past */
                wheel_add(&w, &t->wn, d);
                t->want = d;
            } else if (op < 60) {
                wheel_remove(&w, &t->wn);
                t->want = UINT64_MAX;
            } else {
                unsigned g = mrand() % 100;
                now += g < 80 ? mrand() % 100 : g < 98 ? mrand() % 5000 : mrand() % 500000;
                for (int i = 0; i < MN; i++)
                    mnodes[i].id = 0;
                c.now = now;
                wheel_advance(&w, now, model_fire, &c);
                /* Everything due has fired, except nodes re-added (due) by a
                 * callback in this very advance, which must fire next time. */
                for (int i = 0; i < MN; i++) {
                    if (mnodes[i].want <= now && mnodes[i].id != 1)
                        ck_abort_msg("node %d due %llu not fired at %llu", i,
                                     (unsigned long long)mnodes[i].want, (unsigned long long)now);
                }
            }
            size_t active = 0;
            uint64_t min = UINT64_MAX;
            for (int i = 0; i < MN; i++) {
                REQUIRE(wheel_is_active(&mnodes[i].wn) == (mnodes[i].want != UINT64_MAX));
                if (mnodes[i].want != UINT64_MAX) {
                    active++;
                    if (mnodes[i].want < min)
                        min = mnodes[i].want;
                }
            }
            REQUIRE(wheel_count(&w) == active);
            REQUIRE(wheel_next_deadline(&w) <= min);
        }
        ck_assert_int_gt(c.fired, 1000);
        wheel_deinit(&w);
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("wheel");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_init_errors);
    tcase_add_test(tc, test_fire_exact_with_fine_advances);
    tcase_add_test(tc, test_fire_within_one_tick);
    tcase_add_test(tc, test_remove_before_fire);
    tcase_add_test(tc, test_readd_from_callback);
    tcase_add_test(tc, test_callback_edits_same_slot);
    tcase_add_test(tc, test_nested_advance_refused);
    tcase_add_test(tc, test_past_deadline);
    tcase_add_test(tc, test_long_gap);
    tcase_add_test(tc, test_far_deadline);
    tcase_add_test(tc, test_next_deadline);
    tcase_add_test(tc, test_deinit_unlinks);
    tcase_add_test(tc, test_model_random);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
