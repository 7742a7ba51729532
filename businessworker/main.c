/* gw-businessworker: runs a business module. See worker.h. */
#include "businessworker/worker.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/shstats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static gw_worker *worker;
static uv_signal_t sigs[3];
static gw_shstats *stats; /* shared with the supervisor (common/shstats.h) */

/* Every 250 ms: copy the figures into the stats page the master reads. */
static void publish_stats(gw_shstats *s, void *arg)
{
    (void)arg;
    if (worker == NULL)
        return;
    const gw_worker_stats *st = gw_worker_get_stats(worker);
#define C(f) gw_shstats_counter(s, #f, st->f)
    C(events);
    C(commands_out);
    C(send_errors);
    C(bad_frames);
    C(session_writes);
    C(queries);
    C(queries_incomplete);
#undef C
    gw_shstats_gauge(s, "gateways", st->gateways);
    gw_shstats_gauge(s, "queue_depth", st->queue_bytes);
}

static void on_stopped(void *arg)
{
    (void)arg;
    worker = NULL;
    gw_shstats_free(stats);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (signum == SIGHUP) {
        gw_log_reopen();
        return;
    }
    LOG_INFO("GW-STOP", "signal %d: stopping", signum);
    gw_shstats_set_state(stats, GW_SHSTATS_DRAINING); /* gw_worker_stop drains first */
    gw_worker_stop(worker, on_stopped, NULL);
}

int main(int argc, char **argv)
{
    gw_proc p;
    gw_proc_init(&p, argc, argv, "businessworker", NULL);
    uv_loop_t *loop = uv_default_loop();
    stats = gw_shstats_attach_env("businessworker", p.index);
    int rc = gw_worker_start(&worker, loop, &p.cfg, p.index);
    if (rc < 0) {
        /* strerror: uv_strerror leaks a string for codes libuv does not know (ENOEXEC). */
        LOG_ERROR("GW-START", "business worker failed to start: %s",
                  rc == -ENOEXEC ? "the business module was refused" : strerror(-rc));
        gw_shstats_free(stats);
        uv_run(loop, UV_RUN_NOWAIT); /* close callbacks of what start undid */
        uv_loop_close(loop);
        gw_proc_deinit(&p);
        return rc == -ENOEXEC ? 3 : 1;
    }
    int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &sigs[i]);
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    gw_shstats_publish_start(stats, loop, 0, publish_stats, NULL);
    gw_shstats_set_state(stats, GW_SHSTATS_RUNNING);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    gw_proc_deinit(&p);
    LOG_INFO("GW-STOP", "business worker stopped");
    return 0;
}
