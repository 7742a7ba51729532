/* gw-gateway: holds client connections. See gateway.h. */
#include "common/log.h"
#include "common/proc.h"
#include "gateway/gateway.h"

#include <stdlib.h>

static gw_gateway *gw;
static uv_signal_t sigs[3];

static void on_stopped(void *arg)
{
    (void)arg;
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
    gw_gateway_stop(gw, 3000, on_stopped, NULL);
}

int main(int argc, char **argv)
{
    gw_proc p;
    gw_proc_init(&p, argc, argv, "gateway", NULL);
    uv_loop_t *loop = uv_default_loop();
    int rc = gw_gateway_start(&gw, loop, &p.cfg, p.index);
    if (rc < 0) {
        LOG_ERROR("GW-START", "gateway failed to start: %s", uv_strerror(rc));
        return 1;
    }
    int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &sigs[i]);
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    gw_proc_deinit(&p);
    LOG_INFO("GW-STOP", "gateway stopped");
    return 0;
}
