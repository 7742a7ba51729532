#include "common/alloc.h"
#include "common/log.h"
#include "common/shstats.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Points $GW_STATS_FD at a duplicate of the master page's memfd (attach closes the
 * descriptor it is given, as a child does after exec). */
static void export_page(gw_shstats *master)
{
    int fd = dup(gw_shstats_fd(master));
    ck_assert_int_ge(fd, 0);
    char v[16];
    snprintf(v, sizeof v, "%d", fd);
    ck_assert_int_eq(setenv(GW_SHSTATS_ENV, v, 1), 0);
}

START_TEST(test_create_initialises_header)
{
    gw_shstats *m;
    ck_assert_int_eq(gw_shstats_create("gateway", 3, &m), 0);
    ck_assert_int_ge(gw_shstats_fd(m), 0);
    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    ck_assert_str_eq(snap.role, "gateway");
    ck_assert_int_eq(snap.index, 3);
    ck_assert_int_eq(snap.state, GW_SHSTATS_STARTING);
    ck_assert_int_eq(snap.pid, 0);
    ck_assert_int_eq(snap.count, 0);
    ck_assert_uint_eq(snap.tick_ms, 0);
    gw_shstats_free(m);
}
END_TEST

START_TEST(test_attach_shares_the_page)
{
    gw_shstats *m;
    ck_assert_int_eq(gw_shstats_create("businessworker", 1, &m), 0);
    export_page(m);
    gw_shstats *c = gw_shstats_attach_env("businessworker", 1);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gw_shstats_is_shared(c), 1);
    ck_assert_ptr_null(getenv(GW_SHSTATS_ENV)); /* not inherited by what the child spawns */
    ck_assert_int_eq(gw_shstats_counter(c, "events", 41), 0);
    ck_assert_int_eq(gw_shstats_gauge(c, "gateways", 2), 0);
    ck_assert_int_eq(gw_shstats_counter(c, "events", 42), 0); /* update in place */
    gw_shstats_set_state(c, GW_SHSTATS_RUNNING);

    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    ck_assert_int_eq(snap.pid, (int)getpid());
    ck_assert_int_eq(snap.state, GW_SHSTATS_RUNNING);
    ck_assert_uint_gt(snap.tick_ms, 0);
    ck_assert_uint_gt(snap.start_wall_ms, 0);
    ck_assert_int_eq(snap.count, 2);
    int found;
    ck_assert_uint_eq(gw_shstats_get(&snap, "events", &found), 42);
    ck_assert_int_eq(found, 1);
    ck_assert_int_eq(snap.entries[0].kind, GW_SHSTATS_COUNTER);
    ck_assert_uint_eq(gw_shstats_get(&snap, "gateways", NULL), 2);
    ck_assert_int_eq(snap.entries[1].kind, GW_SHSTATS_GAUGE);
    ck_assert_uint_eq(gw_shstats_get(&snap, "missing", &found), 0);
    ck_assert_int_eq(found, 0);
    gw_shstats_free(c);
    gw_shstats_free(m);
}
END_TEST

START_TEST(test_across_fork)
{
    gw_shstats *m;
    ck_assert_int_eq(gw_shstats_create("gateway", 0, &m), 0);
    export_page(m);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        gw_shstats *c = gw_shstats_attach_env("gateway", 0);
        int ok = c && gw_shstats_is_shared(c) && gw_shstats_gauge(c, "connections", 7) == 0;
        gw_shstats_set_state(c, GW_SHSTATS_DRAINING);
        _exit(ok ? 0 : 1);
    }
    unsetenv(GW_SHSTATS_ENV);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    ck_assert_int_eq(snap.pid, (int)pid);
    ck_assert_int_eq(snap.state, GW_SHSTATS_DRAINING);
    ck_assert_uint_eq(gw_shstats_get(&snap, "connections", NULL), 7);

    /* The next child of the slot starts from a clean page. */
    gw_shstats_reset(m);
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    ck_assert_int_eq(snap.count, 0);
    ck_assert_int_eq(snap.pid, 0);
    ck_assert_int_eq(snap.state, GW_SHSTATS_STARTING);
    ck_assert_str_eq(snap.role, "gateway");
    gw_shstats_free(m);
}
END_TEST

START_TEST(test_private_page_without_master)
{
    unsetenv(GW_SHSTATS_ENV);
    gw_shstats *c = gw_shstats_attach_env("register", 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gw_shstats_is_shared(c), 0);
    ck_assert_int_eq(gw_shstats_counter(c, "heartbeats", 5), 0);
    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(c, &snap), 0);
    ck_assert_uint_eq(gw_shstats_get(&snap, "heartbeats", NULL), 5);
    gw_shstats_free(c);
}
END_TEST

START_TEST(test_foreign_or_bad_descriptor_stays_private)
{
    gw_shstats *m;
    ck_assert_int_eq(gw_shstats_create("gateway", 0, &m), 0);
    export_page(m);
    gw_shstats *c = gw_shstats_attach_env("gateway", 1); /* not its page */
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gw_shstats_is_shared(c), 0);
    gw_shstats_free(c);
    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    ck_assert_int_eq(snap.pid, 0); /* untouched */

    setenv(GW_SHSTATS_ENV, "not-a-number", 1);
    c = gw_shstats_attach_env("gateway", 0);
    ck_assert_int_eq(gw_shstats_is_shared(c), 0);
    gw_shstats_free(c);
    setenv(GW_SHSTATS_ENV, "0", 1); /* stdin: not a stats page */
    c = gw_shstats_attach_env("gateway", 0);
    ck_assert_int_eq(gw_shstats_is_shared(c), 0);
    gw_shstats_free(c);
    gw_shstats_free(m);
}
END_TEST

START_TEST(test_names_and_capacity)
{
    gw_shstats *c = gw_shstats_attach_env("gateway", 0);
    ck_assert_int_eq(gw_shstats_counter(c, "", 1), GW_SHSTATS_ENAME);
    ck_assert_int_eq(gw_shstats_counter(c, "9lives", 1), GW_SHSTATS_ENAME);
    ck_assert_int_eq(gw_shstats_counter(c, "a-b", 1), GW_SHSTATS_ENAME);
    ck_assert_int_eq(gw_shstats_counter(c, "a b", 1), GW_SHSTATS_ENAME);
    char name[40];
    memset(name, 'x', 32);
    name[32] = '\0';
    ck_assert_int_eq(gw_shstats_counter(c, name, 1), GW_SHSTATS_ENAME); /* 32 chars */
    name[31] = '\0';
    ck_assert_int_eq(gw_shstats_counter(c, name, 1), 0); /* 31 chars */
    for (int i = 1; i < GW_SHSTATS_MAX; i++) {
        snprintf(name, sizeof name, "n_%d", i);
        ck_assert_int_eq(gw_shstats_gauge(c, name, (uint64_t)i), 0);
    }
    ck_assert_int_eq(gw_shstats_gauge(c, "one_too_many", 1), GW_SHSTATS_EFULL);
    ck_assert_int_eq(gw_shstats_gauge(c, "n_63", 99), 0); /* existing names still update */
    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(c, &snap), 0);
    ck_assert_int_eq(snap.count, GW_SHSTATS_MAX);
    ck_assert_uint_eq(gw_shstats_get(&snap, "n_63", NULL), 99);
    ck_assert_int_eq(gw_shstats_counter(c, "n_1", UINT64_MAX), 0);
    ck_assert_int_eq(gw_shstats_read(c, &snap), 0);
    ck_assert_uint_eq(gw_shstats_get(&snap, "n_1", NULL), UINT64_MAX);
    gw_shstats_free(c);
}
END_TEST

START_TEST(test_null_handle_is_a_no_op)
{
    ck_assert_int_eq(gw_shstats_counter(NULL, "x", 1), 0);
    gw_shstats_set_state(NULL, GW_SHSTATS_RUNNING);
    gw_shstats_tick(NULL);
    ck_assert_int_eq(gw_shstats_publish_start(NULL, uv_default_loop(), 0, NULL, NULL), 0);
    gw_shstats_free(NULL);
}
END_TEST

/* The master must survive whatever a child writes into its page. */
START_TEST(test_reader_survives_scribbles)
{
    gw_shstats *m;
    ck_assert_int_eq(gw_shstats_create("gateway", 0, &m), 0);
    export_page(m);
    gw_shstats *c = gw_shstats_attach_env("gateway", 0);
    ck_assert_int_eq(gw_shstats_counter(c, "good", 1), 0);
    ck_assert_int_eq(gw_shstats_counter(c, "bad", 2), 0);
    /* A second, raw view of the page, as a misbehaving child would have. */
    uint8_t *raw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, gw_shstats_fd(m), 0);
    ck_assert_ptr_ne(raw, MAP_FAILED);
    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    /* Find "bad"'s name in the raw page and make it unterminated garbage. */
    uint8_t *bad = memmem(raw, 4096, "bad", 4);
    ck_assert_ptr_nonnull(bad);
    memset(bad, 0xff, GW_SHSTATS_NAME_MAX);
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    ck_assert_int_eq(snap.count, 1); /* the garbage entry is skipped */
    /* An absurd entry count (layout version 1: the count is the u32 at offset 56). */
    uint32_t absurd = 1000000;
    memcpy(raw + 56, &absurd, sizeof absurd);
    ck_assert_int_eq(gw_shstats_read(m, &snap), 0);
    ck_assert_int_eq(snap.count, 1); /* the garbage entry is skipped */
    ck_assert_uint_eq(gw_shstats_get(&snap, "good", NULL), 1);
    memset(raw, 0, 4096); /* magic gone */
    ck_assert_int_eq(gw_shstats_read(m, &snap), GW_SHSTATS_EINVALID);
    memset(raw, 0xff, 4096);
    ck_assert_int_eq(gw_shstats_read(m, &snap), GW_SHSTATS_EINVALID);
    /* The page is sealed: nobody can shrink it under the master's mapping. */
    ck_assert_int_ne(ftruncate(gw_shstats_fd(m), 0), 0);
    munmap(raw, 4096);
    gw_shstats_free(c);
    gw_shstats_free(m);
}
END_TEST

static int fills;
static void noop(uv_timer_t *t)
{
    (void)t;
}

static void fill(gw_shstats *s, void *arg)
{
    fills++;
    gw_shstats_counter(s, "fills", (uint64_t)fills);
    if (fills == 3)
        uv_stop(arg);
}

START_TEST(test_publish_timer_fills_and_ticks)
{
    gw_alloc_install();
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    unsetenv(GW_SHSTATS_ENV);
    gw_shstats *c = gw_shstats_attach_env("gateway", 0);
    fills = 0;
    ck_assert_int_eq(gw_shstats_publish_start(c, &loop, 10, fill, &loop), 0);
    ck_assert_int_eq(fills, 1); /* runs once at once */
    ck_assert_int_eq(gw_shstats_publish_start(c, &loop, 10, fill, &loop), UV_EALREADY);
    /* The timer is unreferenced: a loop with nothing else would exit at once; keep it
     * alive with a referenced timer until fill has run three times. */
    uv_timer_t keep;
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, noop, 5000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(fills, 3);
    gw_shstats_snapshot snap;
    ck_assert_int_eq(gw_shstats_read(c, &snap), 0);
    ck_assert_uint_eq(gw_shstats_get(&snap, "fills", NULL), 3);
    ck_assert_uint_ge(snap.tick_ms, gw_now_ms() - 1000);
    gw_shstats_free(c); /* freed from the timer's close callback */
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(fills, 3); /* no fill after free */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    gw_alloc_track(0);
}
END_TEST

START_TEST(test_state_names)
{
    ck_assert_str_eq(gw_shstats_state_name(GW_SHSTATS_STARTING), "starting");
    ck_assert_str_eq(gw_shstats_state_name(GW_SHSTATS_RUNNING), "running");
    ck_assert_str_eq(gw_shstats_state_name(GW_SHSTATS_DRAINING), "draining");
    ck_assert_str_eq(gw_shstats_state_name(GW_SHSTATS_STOPPING), "stopping");
    ck_assert_str_eq(gw_shstats_state_name((gw_shstats_state)42), "?");
}
END_TEST

static Suite *make_suite(void)
{
    gw_log_init("test", GW_LOG_OFF);
    Suite *s = suite_create("shstats");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_create_initialises_header);
    tcase_add_test(tc, test_attach_shares_the_page);
    tcase_add_test(tc, test_across_fork);
    tcase_add_test(tc, test_private_page_without_master);
    tcase_add_test(tc, test_foreign_or_bad_descriptor_stays_private);
    tcase_add_test(tc, test_names_and_capacity);
    tcase_add_test(tc, test_null_handle_is_a_no_op);
    tcase_add_test(tc, test_reader_survives_scribbles);
    tcase_add_test(tc, test_publish_timer_fills_and_ticks);
    tcase_add_test(tc, test_state_names);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
