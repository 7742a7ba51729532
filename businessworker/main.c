/* gw-businessworker: runs a business module. See worker.h. */
#include "businessworker/worker.h"
#include "common/proc.h"

#include <errno.h>

static int start(void **obj, uv_loop_t *loop, const gw_config *cfg, int index)
{
    return gw_worker_start((gw_worker **)obj, loop, cfg, index);
}

static void stop(void *obj, const gw_config *cfg, void (*done)(void *), void *arg)
{
    (void)cfg; /* the drain is bounded by gw_proc_grace_ms inside */
    gw_worker_stop(obj, done, arg);
}

/* Every 250 ms: the figures the supervisor shows (status, metrics). */
static void publish(void *obj, gw_shstats *s)
{
    const gw_worker_stats *st = gw_worker_get_stats(obj);
#define C(f) gw_shstats_counter(s, #f, st->f)
    C(events);
    C(commands_out);
    C(send_errors);
    C(bad_frames);
    C(session_writes);
    C(queries);
    C(queries_incomplete);
    C(query_us_total);
    C(internal_dropped_auth);
    C(internal_dropped_malformed);
    C(internal_dropped_peer_gone);
#undef C
    gw_shstats_gauge(s, "query_us_max", st->query_us_max);
    gw_shstats_gauge(s, "gateways", st->gateways);
    gw_shstats_gauge(s, "queue_depth", st->queue_bytes);
}

/* 3: the module was refused (the supervisor does not restart it in a loop). */
static int start_failed(int rc)
{
    return rc == -ENOEXEC ? 3 : 1;
}

int main(int argc, char **argv)
{
    static const gw_service svc = {.start = start,
                                   .stop = stop,
                                   .publish = publish,
                                   .stopping_state = GW_SHSTATS_DRAINING,
                                   .start_failed = start_failed};
    gw_proc p;
    gw_proc_init(&p, argc, argv, "businessworker", NULL);
    return gw_proc_run(&p, &svc);
}
