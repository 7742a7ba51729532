/* gwclient.c - libgwclient (include/gwclient.h): a cluster member of role
 * "client" with the shared API (api/api.c) on a private libuv loop. */
#include "api/api.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/mq.h"
#include "gwclient.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VISIBLE __attribute__((visibility("default")))

static struct {
    int active;
    uv_loop_t loop;
    cluster *cl;
    gw_api api;
    gw_config cfg; /* limits for the API */
    double timeout;
    int gateways;
} g;

static void on_frame(cluster *cl, const gwp_sender *from, const gwp_frame *f, void *arg)
{
    (void)cl;
    (void)arg;
    gw_api_on_frame(&g.api, from, f);
}

static void on_up(cluster *cl, cluster_peer *p, void *arg)
{
    (void)cl;
    (void)p;
    (void)arg;
    g.gateways++;
}

static void on_down(cluster *cl, cluster_peer *p, void *arg)
{
    (void)cl;
    (void)arg;
    gw_api_on_peer_down(&g.api, p);
    g.gateways--;
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Runs the loop until cond() holds or `seconds` passed (cond NULL: the whole
 * time). Returns 1 if cond() held. */
static int run_until(int (*cond)(void), double seconds)
{
    uv_update_time(&g.loop);
    uint64_t deadline = uv_now(&g.loop) + (uint64_t)(seconds * 1000);
    uv_timer_t t;
    uv_timer_init(&g.loop, &t);
    uv_timer_start(&t, stop_loop, (uint64_t)(seconds * 1000), 0);
    int ok = 0;
    while (!(ok = cond != NULL && cond()) && uv_now(&g.loop) < deadline)
        uv_run(&g.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    return ok;
}

static int have_gateway(void)
{
    return g.gateways > 0;
}

typedef struct backlog_ctx {
    size_t bytes;
} backlog_ctx;

static void add_backlog(cluster_peer *p, void *arg)
{
    ((backlog_ctx *)arg)->bytes += cluster_peer_backlog(p);
}

static int flushed(void)
{
    cluster_flush(g.cl);
    backlog_ctx b = {0};
    cluster_foreach_peer(g.cl, 0, add_backlog, &b);
    return b.bytes == 0;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t len,
                                                           const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
}

VISIBLE int gw_client_init(const gw_client_options *o, char *err, size_t errlen)
{
    if (g.active)
        return GW_EINVAL;
    if (o == NULL || o->n_registers == 0 || o->registers == NULL ||
        o->n_registers > CLUSTER_MAX_REGISTERS) {
        set_err(err, errlen, "%s", "at least one register address is needed");
        return GW_EINVAL;
    }
    gw_alloc_install();
    if (gw_log_get_level() < GW_LOG_WARN)
        gw_log_set_level(GW_LOG_WARN);
    cluster_cfg cc = {.role = GWP_ROLE_CLIENT,
                      .name = "gwclient",
                      .interest = 1u << GWP_ROLE_GATEWAY,
                      .node_timeout_ms = 3000,
                      .max_batch = 256 * 1024};
    const char *lan = o->lan_ip && o->lan_ip[0] ? o->lan_ip : "127.0.0.1";
    if (mq_parse_ipv4(lan, &cc.lan_ip) < 0) {
        set_err(err, errlen, "lan_ip %s is not an IPv4 address", lan);
        return GW_EINVAL;
    }
    for (size_t i = 0; i < o->n_registers; i++) {
        char host[64];
        const char *colon = o->registers[i] ? strrchr(o->registers[i], ':') : NULL;
        size_t hl = colon ? (size_t)(colon - o->registers[i]) : 0;
        char *end;
        unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
        if (colon == NULL || hl == 0 || hl >= sizeof host || *end != '\0' || port == 0 ||
            port > 65534) {
            set_err(err, errlen, "register address %s is not ip:port", o->registers[i]);
            return GW_EINVAL;
        }
        memcpy(host, o->registers[i], hl);
        host[hl] = '\0';
        if (mq_parse_ipv4(host, &cc.registers[i].ip) < 0) {
            set_err(err, errlen, "register address %s is not an IPv4 ip:port", o->registers[i]);
            return GW_EINVAL;
        }
        cc.registers[i].port = (uint16_t)port;
        cc.n_registers++;
    }
    g.timeout = o->timeout > 0 ? o->timeout : 5.0;
    size_t max = o->max_message_size ? o->max_message_size : 1048576;
    cc.max_msg = max * 2 + (1u << 20) < (4u << 20) ? (4u << 20) : max * 2 + (1u << 20);
    cc.secret = o->secret_key;
    memset(&g.cfg, 0, sizeof g.cfg);
    g.cfg.gateway.max_message_size = max;
    g.cfg.businessworker.query_timeout = g.timeout;
    int rc = uv_loop_init(&g.loop);
    if (rc < 0)
        return rc;
    cluster_cbs cbs = {.on_frame = on_frame, .on_peer_up = on_up, .on_peer_down = on_down};
    rc = cluster_start(&g.cl, &g.loop, &cc, &cbs, NULL);
    if (rc < 0) {
        set_err(err, errlen, "cannot open the client inbox: %s", strerror(-rc));
        uv_loop_close(&g.loop);
        return rc;
    }
    gw_api_init(&g.api, &g.loop, g.cl, &g.cfg, 0);
    g.api.autoflush = 1;
    g.active = 1;
    g.gateways = 0;
    if (!run_until(have_gateway, g.timeout)) {
        set_err(err, errlen, "%s",
                cluster_has_roster(g.cl)
                    ? "the registers know no gateway: is a gateway running?"
                    : "no register answered: check the register addresses and secret_key");
        gw_client_close();
        return GW_EUNREACHABLE;
    }
    return 0;
}

VISIBLE int gw_client_gateway_count(void)
{
    return g.active ? g.gateways : 0;
}

typedef struct nth_ctx {
    int want, seen;
    cluster_peer *found;
} nth_ctx;

static void nth_peer(cluster_peer *p, void *arg)
{
    nth_ctx *n = arg;
    if (n->seen++ == n->want)
        n->found = p;
}

VISIBLE int gw_client_gateway_addr(int i, char *out, size_t outlen)
{
    if (!g.active)
        return GW_ENOCONTEXT;
    nth_ctx n = {.want = i};
    cluster_foreach_peer(g.cl, GWP_ROLE_GATEWAY, nth_peer, &n);
    if (n.found == NULL)
        return GW_EINVAL;
    snprintf(out, outlen, "%s", n.found->addr);
    return 0;
}

VISIBLE void gw_client_run(double seconds)
{
    if (g.active)
        run_until(NULL, seconds);
}

VISIBLE int gw_client_flush(double seconds)
{
    if (!g.active)
        return GW_ENOCONTEXT;
    return run_until(flushed, seconds) ? 0 : GW_EUNREACHABLE;
}

static void cluster_closed(void *arg)
{
    (void)arg;
}

VISIBLE void gw_client_close(void)
{
    if (!g.active)
        return;
    gw_client_flush(g.timeout);
    gw_api_deinit(&g.api);
    cluster_stop(g.cl, cluster_closed, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    g.active = 0;
}
