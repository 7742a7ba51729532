/* report.c - what the master tells about its processes: the status object (control
 * socket `status`, status_file), the operator's table, Prometheus text, the start
 * banner. Everything comes from the master's own table and the children's shared
 * stats pages: no child is asked anything, so a busy child cannot delay a report. */
#include "common/alloc.h"
#include "common/log.h"
#include "supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Per role, the page names behind the summary columns (NULL: not applicable).
 * Gateways: client connections and messages. Workers: gateway links, events handled,
 * commands sent (as GatewayWorker's status counts a worker's gateway connections).
 * Register: nodes in the roster, heartbeats received, rosters published. */
enum { COL_CONNS, COL_IN, COL_OUT, COL_QUEUE, NCOLS };
static const char *const col_json[NCOLS] = {"connections", "msgs_in", "msgs_out", "queue"};
static const char *const col_names[SUP_NROLES][NCOLS] = {
    [SUP_REGISTER] = {"nodes", "heartbeats", "published", NULL},
    [SUP_GATEWAY] = {"connections", "msgs_in", "msgs_out", "queue_depth"},
    [SUP_WORKER] = {"gateways", "events", "commands_out", "queue_depth"},
};

static uint64_t read_rss(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Takes a snapshot of c's page when c runs; returns 1 when *snap is valid. */
static int child_snapshot(const sup_child *c, gw_shstats_snapshot *snap)
{
    return c->pid != 0 && gw_shstats_read(c->stats, snap) == 0;
}

static int child_busy(const gw_shstats_snapshot *snap, uint64_t now)
{
    return snap->tick_ms != 0 && now > snap->tick_ms && now - snap->tick_ms > SUP_BUSY_MS;
}

static const char *child_state(const sup_child *c, const gw_shstats_snapshot *snap, int valid)
{
    if (c->pid != 0)
        return valid ? gw_shstats_state_name(snap->state) : "starting";
    return c->restart_at != 0 ? "backoff" : "stopped";
}

static json_t *process_json(gw_sup *s, const sup_child *c, gw_shstats_snapshot *snap, uint64_t now)
{
    int valid = child_snapshot(c, snap);
    json_t *p = json_object();
    if (p == NULL)
        return NULL;
    int rc = 0;
    rc |= json_object_set_new(p, "role", json_string(sup_role_name(c->role)));
    rc |= json_object_set_new(p, "index", json_integer(c->index));
    rc |= json_object_set_new(p, "name", json_string(c->name));
    rc |= json_object_set_new(p, "pid", c->pid ? json_integer(c->pid) : json_null());
    rc |= json_object_set_new(p, "state", json_string(child_state(c, snap, valid)));
    rc |= json_object_set_new(p, "busy", json_boolean(valid && child_busy(snap, now)));
    rc |= json_object_set_new(p, "rss",
                              c->pid ? json_integer((json_int_t)read_rss(c->pid)) : json_null());
    for (int k = 0; k < NCOLS; k++) {
        const char *name = col_names[c->role][k];
        int found = 0;
        uint64_t v = valid && name ? gw_shstats_get(snap, name, &found) : 0;
        rc |=
            json_object_set_new(p, col_json[k], found ? json_integer((json_int_t)v) : json_null());
    }
    rc |= json_object_set_new(p, "restarts", json_integer(c->restarts));
    rc |= json_object_set_new(p, "uptime",
                              json_real(c->pid ? (double)(now - c->started_ms) / 1000 : 0));
    if (c->restart_at != 0)
        rc |= json_object_set_new(
            p, "restart_in",
            json_real(c->restart_at > now ? (double)(c->restart_at - now) / 1000 : 0));
    if (c->last_status != -1) {
        char what[96];
        sup_describe_exit(c->last_status, what, sizeof what);
        rc |= json_object_set_new(p, "last_exit", json_string(what));
    }
    json_t *counters = json_object();
    rc |= json_object_set_new(p, "stats", counters);
    for (int i = 0; valid && counters && i < snap->count; i++)
        rc |= json_object_set_new(counters, snap->entries[i].name,
                                  json_integer((json_int_t)snap->entries[i].value));
    if (rc != 0 || counters == NULL) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static const char *state_name(sup_state st)
{
    static const char *const names[] = {"starting", "running", "stopping", "stopped"};
    return (unsigned)st < 4 ? names[st] : "?";
}

json_t *report_status(gw_sup *s)
{
    uint64_t now = gw_now_ms();
    gw_shstats_snapshot *snap = gw_malloc(sizeof *snap);
    json_t *procs = json_array();
    json_t *master =
        json_pack("{s:i, s:s, s:s, s:b, s:f, s:s, s:b}", "pid", (int)getpid(), "state",
                  state_name(s->state), "config", s->cfg.path, "daemon", s->opts.daemon, "uptime",
                  (double)(now - s->started_ms) / 1000, "log_file", s->log.path ? s->log.path : "",
                  "reloading", s->reload.phase != RELOAD_IDLE);
    json_t *st = NULL;
    if (snap == NULL || procs == NULL || master == NULL)
        goto fail;
    for (int i = 0; i < s->n_children; i++) {
        json_t *p = process_json(s, &s->children[i], snap, now);
        if (p == NULL || json_array_append_new(procs, p) < 0)
            goto fail;
    }
    st = json_pack("{s:b, s:o, s:o}", "ok", 1, "master", master, "processes", procs);
    gw_free(snap);
    return st; /* json_pack "o" stole both, also on failure */
fail:
    gw_free(snap);
    json_decref(procs);
    json_decref(master);
    return NULL;
}

void report_status_file(gw_sup *s)
{
    const char *path = s->cfg.supervisor.status_file;
    json_t *st = report_status(s);
    if (st == NULL)
        return;
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        json_decref(st);
        return;
    }
    int rc = json_dump_file(st, tmp, JSON_INDENT(1));
    json_decref(st);
    if (rc != 0 || rename(tmp, path) < 0) {
        LOG_RL(GW_LOG_WARN, "GW-SUP-STATUS", "cannot write supervisor.status_file %s: %s", path,
               strerror(errno));
        unlink(tmp);
    }
}

/* ---- the table (client side) ---------------------------------------------------- */

static void fmt_duration(double secs, char *buf, size_t len)
{
    unsigned long t = secs > 0 ? (unsigned long)secs : 0;
    unsigned long d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;
    if (d)
        snprintf(buf, len, "%lud%02lu:%02lu:%02lu", d, h, m, sec);
    else
        snprintf(buf, len, "%lu:%02lu:%02lu", h, m, sec);
}

static void fmt_bytes(json_t *v, char *buf, size_t len)
{
    if (!json_is_integer(v)) {
        snprintf(buf, len, "-");
        return;
    }
    double b = (double)json_integer_value(v);
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, len, "%.1fG", b / (1024.0 * 1024 * 1024));
    else
        snprintf(buf, len, "%.1fM", b / (1024.0 * 1024));
}

static void fmt_int(json_t *v, char *buf, size_t len)
{
    if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, len, "-");
}

/* obj[key] as a string, "?" when it is missing or not a string. */
static const char *jstr(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "?";
}

void report_print_table(json_t *status, FILE *f)
{
    json_t *m = json_object_get(status, "master");
    json_t *procs = json_object_get(status, "processes");
    char up[32];
    fmt_duration(json_number_value(json_object_get(m, "uptime")), up, sizeof up);
    fprintf(f, "GatewayWorker-C master pid %lld, %s, %s, up %s%s\n",
            (long long)json_integer_value(json_object_get(m, "pid")),
            json_is_true(json_object_get(m, "daemon")) ? "daemon" : "foreground", jstr(m, "state"),
            up, json_is_true(json_object_get(m, "reloading")) ? ", reloading" : "");
    fprintf(f, "config %s\n", jstr(m, "config"));
    const char *log = json_string_value(json_object_get(m, "log_file"));
    if (log && *log)
        fprintf(f, "log    %s\n", log);
    fprintf(f, "\n%-15s %5s %8s %-9s %8s %7s %10s %10s %6s %8s %10s\n", "role", "index", "pid",
            "state", "rss", "conns", "msgs_in", "msgs_out", "queue", "restarts", "uptime");
    size_t i;
    json_t *p;
    int running = 0, busy = 0;
    json_array_foreach(procs, i, p)
    {
        char pid[16], rss[16], conns[24], in[24], out[24], queue[24], rs[16];
        fmt_int(json_object_get(p, "pid"), pid, sizeof pid);
        fmt_bytes(json_object_get(p, "rss"), rss, sizeof rss);
        fmt_int(json_object_get(p, "connections"), conns, sizeof conns);
        fmt_int(json_object_get(p, "msgs_in"), in, sizeof in);
        fmt_int(json_object_get(p, "msgs_out"), out, sizeof out);
        fmt_int(json_object_get(p, "queue"), queue, sizeof queue);
        fmt_int(json_object_get(p, "restarts"), rs, sizeof rs);
        fmt_duration(json_number_value(json_object_get(p, "uptime")), up, sizeof up);
        int is_busy = json_is_true(json_object_get(p, "busy"));
        const char *state = jstr(p, "state");
        fprintf(f, "%-15s %5lld %8s %-9s %8s %7s %10s %10s %6s %8s %10s", jstr(p, "role"),
                (long long)json_integer_value(json_object_get(p, "index")), pid, state, rss, conns,
                in, out, queue, rs, up);
        if (is_busy)
            fprintf(f, " [busy]");
        json_t *rin = json_object_get(p, "restart_in");
        if (json_is_number(rin))
            fprintf(f, " [restart in %.1fs]", json_number_value(rin));
        const char *last = json_string_value(json_object_get(p, "last_exit"));
        if (last && strcmp(state, "running") != 0)
            fprintf(f, " [last: %s]", last);
        fputc('\n', f);
        running += json_is_integer(json_object_get(p, "pid"));
        busy += is_busy;
    }
    fprintf(f, "\n%zu processes, %d running, %d busy\n", json_array_size(procs), running, busy);
}

/* ---- Prometheus ----------------------------------------------------------------- */

typedef struct family {
    const char *name; /* points into a snapshot */
    gw_shstats_kind kind;
} family;

/* Appends "<metric>{role="gateway",index="0"} " for c. 0 or -ENOMEM. */
static int sample(gw_buf *out, const char *metric, const sup_child *c)
{
    return gw_buf_printf(out, "%s{role=\"%s\",index=\"%d\"} ", metric, sup_role_name(c->role),
                         c->index);
}

int report_prometheus(gw_sup *s, gw_buf *out)
{
    uint64_t now = gw_now_ms();
    int n = s->n_children;
    size_t cap = n > 0 ? (size_t)n : 1;
    gw_shstats_snapshot *snaps = gw_calloc(cap, sizeof *snaps);
    int *valid = gw_calloc(cap, sizeof *valid);
    family *fams = gw_calloc(cap * GW_SHSTATS_MAX, sizeof *fams);
    int nfam = 0, err = 0;
    if (snaps == NULL || valid == NULL || fams == NULL) {
        err = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++)
        valid[i] = child_snapshot(&s->children[i], &snaps[i]);

    /* Families the master knows itself: every configured process has up and restarts;
     * the others only while it runs. */
    err |= gw_buf_printf(out, "# HELP gatewayworker_up 1 when the process runs, 0 while it is "
                              "down.\n# TYPE gatewayworker_up gauge\n");
    for (int i = 0; i < n; i++) {
        err |= sample(out, "gatewayworker_up", &s->children[i]);
        err |= gw_buf_printf(out, "%d\n", s->children[i].pid != 0);
    }
    err |= gw_buf_printf(out, "# HELP gatewayworker_restarts_total Restarts after unexpected "
                              "exits.\n# TYPE gatewayworker_restarts_total counter\n");
    for (int i = 0; i < n; i++) {
        err |= sample(out, "gatewayworker_restarts_total", &s->children[i]);
        err |= gw_buf_printf(out, "%u\n", s->children[i].restarts);
    }
    err |= gw_buf_printf(out,
                         "# HELP gatewayworker_busy 1 when the process's loop has not "
                         "ticked for over %d ms.\n# TYPE gatewayworker_busy gauge\n",
                         SUP_BUSY_MS);
    for (int i = 0; i < n; i++) {
        if (!valid[i])
            continue;
        err |= sample(out, "gatewayworker_busy", &s->children[i]);
        err |= gw_buf_printf(out, "%d\n", child_busy(&snaps[i], now));
    }
    err |= gw_buf_printf(out, "# HELP gatewayworker_resident_memory_bytes Resident set size.\n"
                              "# TYPE gatewayworker_resident_memory_bytes gauge\n");
    for (int i = 0; i < n; i++) {
        if (!valid[i])
            continue;
        err |= sample(out, "gatewayworker_resident_memory_bytes", &s->children[i]);
        err |= gw_buf_printf(out, "%llu\n", (unsigned long long)read_rss(s->children[i].pid));
    }
    err |= gw_buf_printf(out, "# HELP gatewayworker_uptime_seconds Time since the process "
                              "started.\n# TYPE gatewayworker_uptime_seconds gauge\n");
    for (int i = 0; i < n; i++) {
        if (!valid[i])
            continue;
        err |= sample(out, "gatewayworker_uptime_seconds", &s->children[i]);
        err |= gw_buf_printf(out, "%.3f\n", (double)(now - s->children[i].started_ms) / 1000);
    }

    /* One family per (name, kind) any process publishes, in first-seen order. */
    for (int i = 0; i < n; i++) {
        for (int e = 0; valid[i] && e < snaps[i].count; e++) {
            const gw_shstats_entry *en = &snaps[i].entries[e];
            int seen = 0;
            for (int f = 0; f < nfam && !seen; f++)
                seen = fams[f].kind == en->kind && strcmp(fams[f].name, en->name) == 0;
            if (!seen)
                fams[nfam++] = (family){en->name, en->kind};
        }
    }
    for (int f = 0; f < nfam; f++) {
        char metric[GW_SHSTATS_NAME_MAX + 32];
        size_t len = strlen(fams[f].name);
        int counter = fams[f].kind == GW_SHSTATS_COUNTER;
        int has_total = len > 6 && strcmp(fams[f].name + len - 6, "_total") == 0;
        snprintf(metric, sizeof metric, "gatewayworker_%s%s", fams[f].name,
                 counter && !has_total ? "_total" : "");
        err |= gw_buf_printf(out, "# TYPE %s %s\n", metric, counter ? "counter" : "gauge");
        for (int i = 0; i < n; i++) {
            for (int e = 0; valid[i] && e < snaps[i].count; e++) {
                const gw_shstats_entry *en = &snaps[i].entries[e];
                if (en->kind != fams[f].kind || strcmp(en->name, fams[f].name) != 0)
                    continue;
                err |= sample(out, metric, &s->children[i]);
                err |= gw_buf_printf(out, "%llu\n", (unsigned long long)en->value);
            }
        }
    }
out:
    gw_free(fams);
    gw_free(valid);
    gw_free(snaps);
    return err ? -ENOMEM : 0;
}

/* ---- banner --------------------------------------------------------------------- */

/* How a person on this host reaches a listener: "localhost" for a wildcard address,
 * "[v6]" for IPv6. */
static void display_host(const gw_listener *l, char *buf, size_t len)
{
    if (strcmp(l->host, "0.0.0.0") == 0 || strcmp(l->host, "::") == 0)
        snprintf(buf, len, "localhost");
    else if (l->family == AF_INET6)
        snprintf(buf, len, "[%s]", l->host);
    else
        snprintf(buf, len, "%s", l->host);
}

int report_banner(gw_sup *s, gw_buf *out)
{
    const gw_config *cfg = &s->cfg;
    gw_buf_printf(out,
                  "GatewayWorker-C started: %d register, %d gateway, %d business worker "
                  "process(es) (master pid %d, %s)\n",
                  cfg->reg.count, cfg->gateway.count, cfg->businessworker.count, (int)getpid(),
                  s->opts.daemon ? "daemon" : "foreground");
    int page = 0;
    for (int i = 0; cfg->gateway.count > 0 && i < cfg->gateway.listen.count; i++) {
        const gw_listener *l = &cfg->gateway.listen.items[i];
        char url[128], host[GW_HOST_MAX + 2];
        gw_listener_format(l, url, sizeof url);
        display_host(l, host, sizeof host);
        if (l->proto != GW_PROTO_WEBSOCKET) {
            gw_buf_printf(out, "  clients:   %s\n", url);
            continue;
        }
        gw_buf_printf(out, "  clients:   %s  ->  ws://%s:%u/\n", url, host, l->port);
        /* The gateway serves static_dir over plain HTTP on its WebSocket listeners. */
        if (cfg->gateway.static_dir[0] && !page++)
            gw_buf_printf(out, "  web page:  http://%s:%u/  (files of %s)\n", host, l->port,
                          cfg->gateway.static_dir);
    }
    if (cfg->supervisor.metrics_listen.port != 0) {
        char a[64];
        gw_addr_format(&cfg->supervisor.metrics_listen, a, sizeof a);
        gw_buf_printf(out, "  metrics:   http://%s/metrics\n", a);
    }
    if (s->log.path != NULL)
        gw_buf_printf(out, "  log:       %s\n", s->log.path);
    gw_buf_printf(out, "  control:   scripts/start_all.sh status | reload | stop%s\n",
                  s->opts.daemon ? "" : "   (or Ctrl-C here)");
    return 0;
}
