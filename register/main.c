/* gw-register: the discovery process. See register.h. */
#include "common/log.h"
#include "common/proc.h"
#include "common/shstats.h"
#include "register/register.h"

#include <stdlib.h>

static gw_register *reg;
static uv_signal_t sig_int, sig_term, sig_hup;
static gw_shstats *stats; /* shared with the supervisor (common/shstats.h) */

/* Every 250 ms: copy the figures into the stats page the master reads. */
static void publish_stats(gw_shstats *s, void *arg)
{
    (void)arg;
    if (reg == NULL)
        return;
    const gw_register_stats *st = gw_register_get_stats(reg);
#define C(f) gw_shstats_counter(s, #f, st->f)
    C(heartbeats);
    C(auth_failures);
    C(malformed);
    C(published);
    C(joins);
    C(expiries);
#undef C
    gw_shstats_gauge(s, "nodes", st->nodes);
}

static void on_stopped(void *arg)
{
    (void)arg;
    reg = NULL;
    gw_shstats_free(stats);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (signum == SIGHUP) {
        gw_log_reopen();
        return;
    }
    LOG_INFO("GW-STOP", "signal %d: stopping", signum);
    gw_shstats_set_state(stats, GW_SHSTATS_STOPPING);
    gw_register_stop(reg, on_stopped, NULL);
}

int main(int argc, char **argv)
{
    gw_proc p;
    gw_proc_init(&p, argc, argv, "register", NULL);
    uv_loop_t *loop = uv_default_loop();
    stats = gw_shstats_attach_env("register", p.index);
    int rc = gw_register_start(&reg, loop, &p.cfg);
    if (rc < 0) {
        LOG_ERROR("GW-START", "register failed to start: %s", uv_strerror(rc));
        gw_shstats_free(stats);
        uv_run(loop, UV_RUN_NOWAIT); /* close callbacks of what start undid */
        uv_loop_close(loop);
        gw_proc_deinit(&p);
        return 1;
    }
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    gw_shstats_publish_start(stats, loop, 0, publish_stats, NULL);
    gw_shstats_set_state(stats, GW_SHSTATS_RUNNING);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    gw_proc_deinit(&p);
    LOG_INFO("GW-STOP", "register stopped");
    return 0;
}
