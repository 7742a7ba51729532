/* gw-gateway: holds client connections. See gateway.h. */
#include "common/log.h"
#include "common/proc.h"
#include "common/shstats.h"
#include "gateway/gateway.h"

#include <stdlib.h>

static gw_gateway *gw;
static const gw_config *cfg;
static uv_signal_t sigs[3];
static gw_shstats *stats; /* shared with the supervisor (common/shstats.h) */

/* Every 250 ms: copy the figures into the stats page the master reads. */
static void publish_stats(gw_shstats *s, void *arg)
{
    (void)arg;
    if (gw == NULL)
        return;
    const gw_gateway_stats *st = gw_gateway_get_stats(gw);
#define C(f) gw_shstats_counter(s, #f, st->f)
    C(accepted);
    C(closed);
    C(heartbeat_closes);
    C(handshake_failures);
    C(protocol_errors);
    C(msgs_in);
    C(msgs_out);
    C(bytes_in);
    C(bytes_out);
    C(dropped_slow);
    C(slow_closes);
    C(events_out);
    C(events_held);
    C(events_dropped);
    C(commands_in);
    C(unknown_client);
    C(bad_commands);
    C(pings_sent);
    C(http_requests);
#undef C
    gw_shstats_gauge(s, "connections", st->connections);
    gw_shstats_gauge(s, "queue_depth", st->queue_bytes);
    gw_shstats_gauge(s, "workers", st->workers);
}

static void on_stopped(void *arg)
{
    (void)arg;
    gw = NULL;
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
    LOG_INFO("GW-STOP", "signal %d: closing clients and stopping", signum);
    gw_shstats_set_state(stats, GW_SHSTATS_STOPPING);
    gw_gateway_stop(gw, gw_proc_grace_ms(cfg), on_stopped, NULL);
}

int main(int argc, char **argv)
{
    gw_proc p;
    gw_proc_init(&p, argc, argv, "gateway", NULL);
    uv_loop_t *loop = uv_default_loop();
    stats = gw_shstats_attach_env("gateway", p.index);
    cfg = &p.cfg;
    int rc = gw_gateway_start(&gw, loop, &p.cfg, p.index);
    if (rc < 0) {
        LOG_ERROR("GW-START", "gateway failed to start: %s", uv_strerror(rc));
        gw_shstats_free(stats);
        uv_run(loop, UV_RUN_NOWAIT); /* close callbacks of what start undid */
        uv_loop_close(loop);
        gw_proc_deinit(&p);
        return 1;
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
    LOG_INFO("GW-STOP", "gateway stopped");
    return 0;
}
