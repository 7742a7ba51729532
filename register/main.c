/* gw-register: the discovery process. See register.h. */
#include "common/log.h"
#include "common/proc.h"
#include "register/register.h"

#include <stdlib.h>

static gw_register *reg;
static uv_signal_t sig_int, sig_term;

static void on_stopped(void *arg)
{
    (void)arg;
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    LOG_INFO("GW-STOP", "signal %d: stopping", signum);
    gw_register_stop(reg, on_stopped, NULL);
}

int main(int argc, char **argv)
{
    gw_proc p;
    gw_proc_init(&p, argc, argv, "register", NULL);
    uv_loop_t *loop = uv_default_loop();
    int rc = gw_register_start(&reg, loop, &p.cfg);
    if (rc < 0) {
        LOG_ERROR("GW-START", "register failed to start: %s", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    gw_proc_deinit(&p);
    LOG_INFO("GW-STOP", "register stopped");
    return 0;
}
