#include "common/proc.h"
#include "common/alloc.h"
#include "common/log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void usage(FILE *f, const char *prog, const char *extra)
{
    fprintf(f,
            "usage: %s [--config FILE] [--index N] [--print-config]\n"
            "  --config FILE   configuration file (default config/gatewayworker.json)\n"
            "  --index N       process number within its role (default 0)\n"
            "  --print-config  print the effective configuration and exit\n%s",
            prog, extra ? extra : "");
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int gw_proc_init(gw_proc *p, int argc, char **argv, const char *role, const char *extra_usage)
{
    memset(p, 0, sizeof *p);
    p->config_path = "config/gatewayworker.json";
    int print = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"index", required_argument, NULL, 'i'},
                                         {"print-config", no_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:i:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            p->config_path = optarg;
            break;
        case 'i': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 255) {
                fprintf(stderr, "%s: --index must be 0..255\n", argv[0]);
                exit(2);
            }
            p->index = (int)v;
            break;
        }
        case 'p':
            print = 1;
            break;
        case 'h':
            usage(stdout, argv[0], extra_usage);
            exit(0);
        default:
            usage(stderr, argv[0], extra_usage);
            exit(2);
        }
    }
    if (optind != argc) {
        usage(stderr, argv[0], extra_usage);
        exit(2);
    }
    gw_alloc_install();
    char err[512];
    int rc = gw_config_load(p->config_path, &p->cfg, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", role, err);
        exit(2);
    }
    if (print) {
        gw_buf out = {0};
        gw_config_dump(&p->cfg, &out);
        fwrite(out.data, 1, out.len, stdout);
        gw_buf_deinit(&out);
        gw_config_deinit(&p->cfg);
        exit(0);
    }
    p->role = role;
    snprintf(p->tag, sizeof p->tag, "%s#%d", role, p->index);
    gw_log_init(p->tag, p->cfg.cluster.log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    return 0;
}

void gw_proc_deinit(gw_proc *p)
{
    gw_config_deinit(&p->cfg);
}

size_t gw_proc_max_msg(const gw_config *cfg)
{
    size_t m = cfg->gateway.max_message_size * 2 + (1u << 20);
    return m < (4u << 20) ? (4u << 20) : m;
}

uint64_t gw_proc_grace_ms(const gw_config *cfg)
{
    double t = cfg->supervisor.stop_timeout;
    double g = t - 0.5 > t / 2 ? t - 0.5 : t / 2;
    return (uint64_t)(g * 1000);
}

int gw_proc_cluster_cfg(const gw_config *cfg, uint8_t role, int index, cluster_cfg *out)
{
    memset(out, 0, sizeof *out);
    out->role = role;
    if (mq_parse_ipv4(cfg->cluster.lan_ip, &out->lan_ip) < 0) {
        LOG_ERROR("GW-CONFIG", "cluster.lan_ip %s is not an IPv4 address", cfg->cluster.lan_ip);
        return -EINVAL;
    }
    const char *bind = "";
    if (role == GWP_ROLE_GATEWAY) {
        out->name = "Gateway";
        out->inbox_port = (uint16_t)(cfg->gateway.start_port + index);
        bind = cfg->gateway.inbox_bind;
        out->interest = 1u << GWP_ROLE_WORKER;
    } else if (role == GWP_ROLE_WORKER) {
        out->name = cfg->businessworker.name;
        out->inbox_port = (uint16_t)(cfg->businessworker.start_port + index);
        bind = cfg->businessworker.inbox_bind;
        out->interest = 1u << GWP_ROLE_GATEWAY;
    } else {
        out->name = "client";
        out->interest = 1u << GWP_ROLE_GATEWAY;
    }
    if (bind[0] && mq_parse_ipv4(bind, &out->inbox_bind) < 0) {
        LOG_ERROR("GW-CONFIG", "inbox_bind %s is not an IPv4 address", bind);
        return -EINVAL;
    }
    if (bind[0] && out->inbox_bind == 0)
        out->bind_any = 1;
    for (int i = 0; i < cfg->cluster.registers.count && i < CLUSTER_MAX_REGISTERS; i++) {
        const gw_addr *a = &cfg->cluster.registers.items[i];
        if (mq_parse_ipv4(a->host, &out->registers[i].ip) < 0) {
            LOG_ERROR("GW-CONFIG", "register address %s is not IPv4", a->host);
            return -EINVAL;
        }
        out->registers[i].port = a->port;
        out->n_registers++;
    }
    out->secret = cfg->cluster.secret_key;
    out->heartbeat_ms = role == GWP_ROLE_CLIENT ? 0 : (uint32_t)(cfg->cluster.heartbeat_interval * 1000);
    if (role != GWP_ROLE_CLIENT && out->heartbeat_ms == 0)
        out->heartbeat_ms = 1;
    out->node_timeout_ms = (uint32_t)(cfg->cluster.node_timeout * 1000);
    out->max_msg = gw_proc_max_msg(cfg);
    out->max_batch = 256 * 1024;
    return 0;
}

/* ---- the common life of a process ---- */

static struct {
    const gw_service *svc;
    gw_proc *proc;
    void *obj;
    gw_shstats *stats;
    uv_signal_t sigs[3];
} run;

static void run_stopped(void *arg)
{
    (void)arg;
    run.obj = NULL;
    gw_shstats_free(run.stats);
    run.stats = NULL;
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&run.sigs[i], NULL);
}

static void run_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (signum == SIGHUP) {
        gw_log_reopen();
        return;
    }
    if (run.obj == NULL)
        return;
    LOG_INFO("GW-STOP", "signal %d: stopping", signum);
    gw_shstats_set_state(run.stats, run.svc->stopping_state);
    run.svc->stop(run.obj, &run.proc->cfg, run_stopped, NULL);
}

static void run_publish(gw_shstats *s, void *arg)
{
    (void)arg;
    if (run.obj)
        run.svc->publish(run.obj, s);
}

int gw_proc_run(gw_proc *p, const gw_service *svc)
{
    uv_loop_t *loop = uv_default_loop();
    run.svc = svc;
    run.proc = p;
    run.stats = gw_shstats_attach_env(p->role, p->index);
    int rc = svc->start(&run.obj, loop, &p->cfg, p->index);
    if (rc < 0) {
        /* strerror: uv_strerror leaks a string for codes libuv does not know. */
        LOG_ERROR("GW-START", "%s failed to start: %s", p->role,
                  rc == -ENOEXEC ? "the business module was refused" : strerror(-rc));
        gw_shstats_free(run.stats);
        uv_run(loop, UV_RUN_NOWAIT); /* close callbacks of what start undid */
        uv_loop_close(loop);
        gw_proc_deinit(p);
        return svc->start_failed ? svc->start_failed(rc) : 1;
    }
    static const int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &run.sigs[i]);
        uv_signal_start(&run.sigs[i], run_signal, signums[i]);
    }
    gw_shstats_publish_start(run.stats, loop, 0, run_publish, NULL);
    gw_shstats_set_state(run.stats, GW_SHSTATS_RUNNING);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    LOG_INFO("GW-STOP", "%s stopped", p->role);
    gw_proc_deinit(p);
    return 0;
}
