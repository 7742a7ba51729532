/* gw-register: the discovery process. See register.h. */
#include "common/proc.h"
#include "register/register.h"

static int start(void **obj, uv_loop_t *loop, const gw_config *cfg, int index)
{
    (void)index;
    return gw_register_start((gw_register **)obj, loop, cfg);
}

static void stop(void *obj, const gw_config *cfg, void (*done)(void *), void *arg)
{
    (void)cfg;
    gw_register_stop(obj, done, arg);
}

/* Every 250 ms: the figures the supervisor shows (status, metrics). */
static void publish(void *obj, gw_shstats *s)
{
    const gw_register_stats *st = gw_register_get_stats(obj);
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

int main(int argc, char **argv)
{
    static const gw_service svc = {.start = start,
                                   .stop = stop,
                                   .publish = publish,
                                   .stopping_state = GW_SHSTATS_STOPPING};
    gw_proc p;
    gw_proc_init(&p, argc, argv, "register", NULL);
    return gw_proc_run(&p, &svc);
}
