/* gw-gateway: holds client connections. See gateway.h. */
#include "common/proc.h"
#include "gateway/gateway.h"

static int start(void **obj, uv_loop_t *loop, const gw_config *cfg, int index)
{
    return gw_gateway_start((gw_gateway **)obj, loop, cfg, index);
}

static void stop(void *obj, const gw_config *cfg, void (*done)(void *), void *arg)
{
    gw_gateway_stop(obj, gw_proc_grace_ms(cfg), done, arg);
}

/* Every 250 ms: the figures the supervisor shows (status, metrics). */
static void publish(void *obj, gw_shstats *s)
{
    const gw_gateway_stats *st = gw_gateway_get_stats(obj);
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
    C(internal_dropped_auth);
    C(internal_dropped_malformed);
    C(internal_dropped_peer_gone);
#undef C
    gw_shstats_gauge(s, "connections", st->connections);
    gw_shstats_gauge(s, "queue_depth", st->queue_bytes);
    gw_shstats_gauge(s, "workers", st->workers);
}

int main(int argc, char **argv)
{
    static const gw_service svc = {.start = start,
                                   .stop = stop,
                                   .publish = publish,
                                   .stopping_state = GW_SHSTATS_STOPPING};
    gw_proc p;
    gw_proc_init(&p, argc, argv, "gateway", NULL);
    return gw_proc_run(&p, &svc);
}
