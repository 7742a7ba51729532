/* master.c - the master: start phases, exits and restarts, stop, rolling reload.
 * See supervisor.h for the contract and docs/OPERATIONS.md for the rules. */
#include "common/alloc.h"
#include "common/log.h"
#include "supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void spawn(sup_child *c);
/* Stop order: gateways (they hold the clients), workers, the register; -1 = done. */
static int next_stop_role(int r)
{
    return r == SUP_GATEWAY ? SUP_WORKER : r == SUP_WORKER ? SUP_REGISTER : -1;
}
static void begin_stop_role(gw_sup *s);
static void reload_next(gw_sup *s);
static void reload_end(gw_sup *s, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int role_count(const gw_config *cfg, sup_role r)
{
    switch (r) {
    case SUP_REGISTER:
        return cfg->reg.count;
    case SUP_GATEWAY:
        return cfg->gateway.count;
    case SUP_WORKER:
        return cfg->businessworker.count;
    default:
        return 0;
    }
}

static int alive_in_role(const gw_sup *s, sup_role r)
{
    int n = 0;
    for (int i = 0; i < s->n_children; i++)
        if (s->children[i].role == r && s->children[i].pid != 0)
            n++;
    return n;
}

static int page_state(const sup_child *c, gw_shstats_snapshot *snap)
{
    if (c->pid == 0 || gw_shstats_read(c->stats, snap) != 0)
        return -1;
    return (int)snap->state;
}

/* ---- start-up ------------------------------------------------------------------- */

int sup_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static const char *const bin_names[SUP_NROLES] = {"gw-register", "gw-gateway", "gw-businessworker"};
static const char *const build_dirs[SUP_NROLES] = {"register", "gateway", "businessworker"};

/* Finds the executables: --bin-dir, else next to /proc/self/exe (installed layout),
 * else in the build tree layout (build/supervisor/gw-master -> build/gateway/...). */
static int find_bins(gw_sup *s)
{
    char self[PATH_MAX];
    const char *dir = s->opts.bin_dir;
    if (dir == NULL) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0) {
            fprintf(stderr, "gw-master: cannot read /proc/self/exe: %s; use --bin-dir\n",
                    strerror(errno));
            return -1;
        }
        self[n] = '\0';
        dir = dirname(self);
    }
    for (int r = 0; r < SUP_NROLES; r++) {
        if (role_count(&s->cfg, (sup_role)r) == 0)
            continue;
        char a[PATH_MAX], b[PATH_MAX];
        snprintf(a, sizeof a, "%s/%s", dir, bin_names[r]);
        snprintf(b, sizeof b, "%s/../%s/%s", dir, build_dirs[r], bin_names[r]);
        const char *found = access(a, X_OK) == 0 ? a : access(b, X_OK) == 0 ? b : NULL;
        if (found == NULL || realpath(found, s->bins[r]) == NULL) {
            fprintf(stderr,
                    "gw-master: cannot find the executable %s (looked at %s and %s); "
                    "build the project or pass --bin-dir\n",
                    bin_names[r], a, b);
            return -1;
        }
    }
    return 0;
}

static int make_children(gw_sup *s)
{
    int n = 0;
    for (int r = 0; r < SUP_NROLES; r++)
        n += role_count(&s->cfg, (sup_role)r);
    s->children = gw_calloc(n > 0 ? (size_t)n : 1, sizeof *s->children);
    if (s->children == NULL)
        return -ENOMEM;
    /* Array order = start order of the second phase is irrelevant; keep roles grouped. */
    for (int r = 0; r < SUP_NROLES; r++) {
        for (int i = 0; i < role_count(&s->cfg, (sup_role)r); i++) {
            sup_child *c = &s->children[s->n_children];
            c->sup = s;
            c->role = (sup_role)r;
            c->index = i;
            c->last_status = -1;
            snprintf(c->name, sizeof c->name, "%s#%d", sup_role_name(c->role), i);
            int rc = gw_shstats_create(sup_role_name(c->role), i, &c->stats);
            if (rc < 0)
                return rc;
            uv_timer_init(s->loop, &c->timer);
            s->n_children++;
        }
    }
    return 0;
}

static void report_ready(gw_sup *s)
{
    if (s->ready_reported)
        return;
    s->ready_reported = 1;
    gw_buf banner = {0};
    int all_up = 1;
    gw_shstats_snapshot snap;
    report_banner(s, &banner);
    for (int i = 0; i < s->n_children; i++) {
        sup_child *c = &s->children[i];
        if (page_state(c, &snap) != GW_SHSTATS_RUNNING) {
            all_up = 0;
            char what[96] = "has not reported running yet";
            if (c->last_status != -1)
                sup_describe_exit(c->last_status, what, sizeof what);
            gw_buf_printf(&banner, "warning: %s is not running: %s (see the log)\n", c->name, what);
        }
    }
    LOG_INFO("GW-SUP-READY", "%s: %d processes", all_up ? "all processes running" : "started",
             s->n_children);
    if (s->ready_fd >= 0) {
        gw_buf_append_u8(&banner, 0);
        sup_daemon_report(&s->ready_fd, 1, banner.data ? (const char *)banner.data : "");
    } else {
        fwrite(banner.data, 1, banner.len, stdout);
        fflush(stdout);
    }
    gw_buf_deinit(&banner);
}

static void spawn_role(gw_sup *s, sup_role r)
{
    for (int i = 0; i < s->n_children; i++)
        if (s->children[i].role == r && s->children[i].pid == 0 && s->children[i].restart_at == 0)
            spawn(&s->children[i]);
}

static int all_running(gw_sup *s)
{
    gw_shstats_snapshot snap;
    for (int i = 0; i < s->n_children; i++)
        if (page_state(&s->children[i], &snap) != GW_SHSTATS_RUNNING)
            return 0;
    return 1;
}

static int registers_ready(gw_sup *s)
{
    gw_shstats_snapshot snap;
    for (int i = 0; i < s->n_children; i++) {
        sup_child *c = &s->children[i];
        if (c->role == SUP_REGISTER && c->pid != 0 && page_state(c, &snap) != GW_SHSTATS_RUNNING)
            return 0;
    }
    return 1;
}

static void on_phase_timer(uv_timer_t *t)
{
    gw_sup *s = container_of(t, gw_sup, phase_timer);
    uint64_t waited = gw_now_ms() - s->phase_started_ms;
    if (s->state == SUP_STARTING) {
        /* Phase 0 -> 1: registers are up (or given up on): workers, then gateways, so
         * that the first clients find a worker. */
        if (!registers_ready(s) && waited < SUP_REGISTER_WAIT_MS)
            return;
        spawn_role(s, SUP_WORKER);
        spawn_role(s, SUP_GATEWAY);
        s->state = SUP_RUNNING;
        s->phase_started_ms = gw_now_ms();
        return;
    }
    if (s->state == SUP_RUNNING) {
        if (all_running(s) || waited >= SUP_READY_TIMEOUT_MS) {
            uv_timer_stop(t);
            report_ready(s);
        }
        return;
    }
    if (s->state == SUP_STOPPING && s->stop_role >= 0) {
        /* stop_timeout is over for this role: force. */
        for (int i = 0; i < s->n_children; i++) {
            sup_child *c = &s->children[i];
            if (c->role == (sup_role)s->stop_role && c->pid != 0) {
                LOG_WARN("GW-SUP-KILL", "%s (pid %d) did not stop within %.1f s: SIGKILL", c->name,
                         (int)c->pid, s->cfg.supervisor.stop_timeout);
                kill(c->pid, SIGKILL);
            }
        }
        uv_timer_stop(t);
    }
}

/* ---- exits and restarts --------------------------------------------------------- */

static void on_restart_timer(uv_timer_t *t)
{
    sup_child *c = container_of(t, sup_child, timer);
    c->restart_at = 0;
    if ((c->sup->state == SUP_RUNNING || c->sup->state == SUP_STARTING) && c->pid == 0)
        spawn(c);
}

static void schedule_restart(sup_child *c, uint64_t delay_ms)
{
    c->restart_at = gw_now_ms() + delay_ms;
    uv_timer_start(&c->timer, on_restart_timer, delay_ms, 0);
}

static void spawn(sup_child *c)
{
    int rc = sup_child_spawn(c);
    if (rc == 0)
        return;
    uint64_t max = (uint64_t)(c->sup->cfg.supervisor.restart_backoff_max * 1000);
    uint64_t delay = c->backoff_ms ? c->backoff_ms : SUP_BACKOFF_FIRST_MS;
    c->backoff_ms = delay * 2 > max ? max : delay * 2;
    LOG_ERROR("GW-CHILD-START", "cannot start %s: %s; next attempt in %.1f s", c->name,
              strerror(-rc), (double)delay / 1000);
    schedule_restart(c, delay);
}

/* An exit nobody asked for: log why, restart with backoff. */
static void restart_after_crash(sup_child *c, int status, uint64_t up_ms, const char *what)
{
    gw_sup *s = c->sup;
    uint64_t max = (uint64_t)(s->cfg.supervisor.restart_backoff_max * 1000);
    if (up_ms >= SUP_STABLE_MS)
        c->backoff_ms = 0; /* it had been healthy: this is not a crash loop */
    uint64_t delay = c->backoff_ms;
    int refused = WIFEXITED(status) && up_ms < SUP_STABLE_MS &&
                  (WEXITSTATUS(status) == SUP_CHILD_EXIT_CONFIG ||
                   WEXITSTATUS(status) == SUP_CHILD_EXIT_MODULE);
    if (refused && delay < SUP_REFUSED_MIN_MS)
        delay = SUP_REFUSED_MIN_MS;
    if (delay > max)
        delay = max;
    uint64_t next = delay == 0 ? SUP_BACKOFF_FIRST_MS : delay * 2;
    c->backoff_ms = next > max ? max : next;
    c->restarts++;
    double up = (double)up_ms / 1000;
    if (refused) {
        LOG_ERROR("GW-CHILD-REFUSED",
                  "%s (pid %d) %s %.1f s after start; next attempt in %.1f s (its own log "
                  "lines above say why; fix it and it is picked up at the next attempt)",
                  c->name, (int)c->pid, what, up, (double)delay / 1000);
    } else if (delay == 0) {
        LOG_WARN("GW-CHILD-EXIT", "%s (pid %d) %s after %.1f s; restarting it now", c->name,
                 (int)c->pid, what, up);
    } else {
        LOG_WARN("GW-CHILD-EXIT", "%s (pid %d) %s after %.1f s; restarting in %.1f s (crash loop)",
                 c->name, (int)c->pid, what, up, (double)delay / 1000);
    }
    c->pid = 0;
    if (delay == 0)
        spawn(c);
    else
        schedule_restart(c, delay);
}

static void on_child_exit(gw_sup *s, sup_child *c, int status)
{
    uint64_t up_ms = gw_now_ms() - c->started_ms;
    char what[96];
    sup_describe_exit(status, what, sizeof what);
    c->last_status = status;
    if (s->state == SUP_STOPPING || s->state == SUP_DONE) {
        LOG_INFO("GW-CHILD-EXIT", "%s (pid %d) %s", c->name, (int)c->pid, what);
        c->pid = 0;
        if (s->state == SUP_STOPPING && alive_in_role(s, (sup_role)s->stop_role) == 0) {
            uv_timer_stop(&s->phase_timer);
            s->stop_role = next_stop_role(s->stop_role);
            begin_stop_role(s);
        }
        return;
    }
    if (c->reloading && s->reload.phase == RELOAD_STOPPING_OLD) {
        LOG_INFO("GW-SUP-RELOAD", "%s (pid %d) %s; starting its replacement", c->name, (int)c->pid,
                 what);
        c->pid = 0;
        s->reload.phase = RELOAD_STARTING_NEW;
        s->reload.phase_started_ms = gw_now_ms();
        spawn(c);
        return;
    }
    if (c->reloading) {
        /* The replacement died while starting: the new build is broken. Keep the
         * other workers on the old one. */
        c->reloading = 0;
        reload_end(s, 0,
                   "%s %s while starting during the reload; reload aborted, the "
                   "workers not yet replaced keep running",
                   c->name, what);
    }
    restart_after_crash(c, status, up_ms, what);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    gw_sup *s = container_of(h, gw_sup, sig_chld);
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < s->n_children; i++) {
            if (s->children[i].pid == pid) {
                on_child_exit(s, &s->children[i], status);
                break;
            }
        }
    }
}

/* ---- stop ----------------------------------------------------------------------- */

static void close_child_handles(gw_sup *s)
{
    for (int i = 0; i < s->n_children; i++)
        uv_close((uv_handle_t *)&s->children[i].timer, NULL);
    uv_close((uv_handle_t *)&s->phase_timer, NULL);
    uv_close((uv_handle_t *)&s->status_timer, NULL);
    uv_close((uv_handle_t *)&s->reload.timer, NULL);
    uv_close((uv_handle_t *)&s->sig_chld, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_close((uv_handle_t *)&s->sig_usr1, NULL);
}

static void finish(gw_sup *s)
{
    s->state = SUP_DONE;
    LOG_INFO("GW-SUP-STOPPED", "all processes stopped");
    if (s->cfg.supervisor.status_file[0])
        unlink(s->cfg.supervisor.status_file);
    unlink(s->cfg.supervisor.pid_file);
    if (s->lock_fd >= 0) {
        close(s->lock_fd); /* releases the lock: a new master may start now */
        s->lock_fd = -1;
    }
    json_t *resp = json_pack("{s:b, s:b}", "ok", 1, "stopped", 1);
    if (resp != NULL) {
        ctl_server_answer(s, CTL_WAIT_STOP, resp);
        json_decref(resp);
    }
    ctl_server_close(s);
    metrics_close(s);
    sup_log_close_pipes(&s->log);
    close_child_handles(s);
}

static void begin_stop_role(gw_sup *s)
{
    while (s->stop_role >= 0) {
        sup_role r = (sup_role)s->stop_role;
        int n = 0;
        for (int i = 0; i < s->n_children; i++) {
            sup_child *c = &s->children[i];
            if (c->role == r && c->pid != 0) {
                kill(c->pid, SIGTERM);
                n++;
            }
        }
        if (n > 0) {
            LOG_INFO("GW-SUP-STOP", "SIGTERM sent to %d %s process(es)", n, sup_role_name(r));
            s->phase_started_ms = gw_now_ms();
            uv_timer_start(&s->phase_timer, on_phase_timer,
                           (uint64_t)(s->cfg.supervisor.stop_timeout * 1000), 0);
            return;
        }
        s->stop_role = next_stop_role(r);
    }
    finish(s);
}

void sup_stop(gw_sup *s, const char *why)
{
    if (s->state == SUP_STOPPING || s->state == SUP_DONE)
        return;
    LOG_INFO("GW-SUP-STOP",
             "stopping (%s): gateways first, then business workers, then the "
             "register; SIGKILL after %.1f s each",
             why, s->cfg.supervisor.stop_timeout);
    if (s->reload.phase != RELOAD_IDLE)
        reload_end(s, 0, "the master is stopping");
    if (!s->ready_reported && s->ready_fd >= 0)
        sup_daemon_report(&s->ready_fd, 0, "the master was stopped during start-up");
    s->ready_reported = 1;
    s->state = SUP_STOPPING;
    uv_timer_stop(&s->phase_timer);
    for (int i = 0; i < s->n_children; i++) {
        uv_timer_stop(&s->children[i].timer);
        s->children[i].restart_at = 0;
    }
    s->stop_role = SUP_GATEWAY;
    begin_stop_role(s);
}

/* A second Ctrl-C (or SIGTERM) while stopping: no more waiting. */
static void force_stop(gw_sup *s)
{
    LOG_WARN("GW-SUP-KILL", "second stop request: SIGKILL to every process");
    for (int i = 0; i < s->n_children; i++)
        if (s->children[i].pid != 0)
            kill(s->children[i].pid, SIGKILL);
}

/* ---- reload --------------------------------------------------------------------- */

/* The hook of the draining protocol: SIGTERM makes a worker drain (gw_worker_stop:
 * gateways route nothing new to it and move its clients to other workers, it handles
 * what was already sent, then exits; its page says "draining" meanwhile). The rest of
 * the sequence (wait for the exit, SIGKILL after stop_timeout, start the replacement
 * on the same index and inbox port, wait until it runs) is the master's. */
static void reload_drain_begin(sup_child *c)
{
    kill(c->pid, SIGTERM);
}

static void reload_end(gw_sup *s, int ok, const char *fmt, ...)
{
    char msg[256] = "";
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (ok)
        LOG_INFO("GW-SUP-RELOAD", "reload done: %d business worker(s) replaced", s->reload.done);
    else
        LOG_ERROR("GW-SUP-RELOAD", "reload failed after %d worker(s): %s", s->reload.done, msg);
    for (int i = 0; i < s->n_children; i++)
        s->children[i].reloading = 0;
    uv_timer_stop(&s->reload.timer);
    s->reload.phase = RELOAD_IDLE;
    json_t *resp =
        ok ? json_pack("{s:b, s:i}", "ok", 1, "reloaded", s->reload.done)
           : json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "reloaded", s->reload.done);
    if (resp != NULL) {
        ctl_server_answer(s, CTL_WAIT_RELOAD, resp);
        json_decref(resp);
    }
}

static void on_reload_timer(uv_timer_t *t)
{
    gw_sup *s = container_of(t, gw_sup, reload.timer);
    sup_child *c = &s->children[s->reload.cursor];
    uint64_t waited = gw_now_ms() - s->reload.phase_started_ms;
    if (s->reload.phase == RELOAD_STOPPING_OLD) {
        if (waited >= (uint64_t)(s->cfg.supervisor.stop_timeout * 1000) && c->pid != 0 &&
            !c->killed) {
            LOG_WARN("GW-SUP-KILL", "%s (pid %d) did not stop within %.1f s: SIGKILL", c->name,
                     (int)c->pid, s->cfg.supervisor.stop_timeout);
            kill(c->pid, SIGKILL);
            c->killed = 1;
        }
        return;
    }
    if (s->reload.phase != RELOAD_STARTING_NEW)
        return;
    gw_shstats_snapshot snap;
    if (page_state(c, &snap) == GW_SHSTATS_RUNNING) {
        /* Up; and, if its predecessor had gateways, linked to one again (bounded). */
        int linked = gw_shstats_get(&snap, "gateways", NULL) > 0;
        if (linked || s->reload.prev_gateways == 0 || waited >= SUP_READY_TIMEOUT_MS) {
            if (!linked && s->reload.prev_gateways > 0)
                LOG_WARN("GW-SUP-RELOAD", "%s runs but has no gateway link yet; going on", c->name);
            LOG_INFO("GW-SUP-RELOAD", "%s is running (pid %d)", c->name, (int)c->pid);
            c->reloading = 0;
            s->reload.done++;
            reload_next(s);
        }
        return;
    }
    if (waited >= SUP_READY_TIMEOUT_MS) {
        c->reloading = 0;
        reload_end(s, 0, "%s did not report running within %d s; reload aborted", c->name,
                   SUP_READY_TIMEOUT_MS / 1000);
    }
}

static void reload_next(gw_sup *s)
{
    for (int i = s->reload.cursor + 1; i < s->n_children; i++) {
        sup_child *c = &s->children[i];
        /* A worker waiting for its restart starts with the new build anyway. */
        if (c->role != SUP_WORKER || c->pid == 0)
            continue;
        gw_shstats_snapshot snap;
        page_state(c, &snap);
        s->reload.cursor = i;
        s->reload.phase = RELOAD_STOPPING_OLD;
        s->reload.phase_started_ms = gw_now_ms();
        s->reload.prev_gateways = gw_shstats_get(&snap, "gateways", NULL);
        c->reloading = 1;
        LOG_INFO("GW-SUP-RELOAD", "replacing %s (pid %d)", c->name, (int)c->pid);
        reload_drain_begin(c);
        uv_timer_start(&s->reload.timer, on_reload_timer, SUP_POLL_MS, SUP_POLL_MS);
        return;
    }
    reload_end(s, 1, NULL);
}

static int reload_start(gw_sup *s, const char **err)
{
    if (s->state != SUP_RUNNING) {
        *err = s->state == SUP_STARTING ? "the master is still starting" : "the master is stopping";
        return -1;
    }
    if (s->reload.phase != RELOAD_IDLE) {
        *err = "a reload is already in progress";
        return -1;
    }
    LOG_INFO("GW-SUP-RELOAD", "rolling reload of %d business worker(s), one at a time",
             alive_in_role(s, SUP_WORKER));
    s->reload.done = 0;
    s->reload.cursor = -1;
    s->reload.phase = RELOAD_STOPPING_OLD; /* until reload_next decides */
    reload_next(s);
    return 0;
}

/* ---- commands ------------------------------------------------------------------- */

void sup_cmd_status(gw_sup *s, ctl_conn *c)
{
    ctl_reply(c, report_status(s));
}

void sup_cmd_stop(gw_sup *s, ctl_conn *c)
{
    ctl_conn_wait(c, CTL_WAIT_STOP);
    sup_stop(s, "stop command");
}

void sup_cmd_reload(gw_sup *s, ctl_conn *c)
{
    const char *err = NULL;
    ctl_conn_wait(c, CTL_WAIT_RELOAD);
    if (reload_start(s, &err) < 0) {
        ctl_conn_wait(c, CTL_WAIT_NONE);
        ctl_reply_error(c, err);
    }
}

/* ---- signals and timers --------------------------------------------------------- */

static void on_stop_signal(uv_signal_t *h, int signum)
{
    gw_sup *s = h->data;
    char name[32];
    sup_signal_name(signum, name, sizeof name);
    if (s->state == SUP_STOPPING)
        force_stop(s);
    else
        sup_stop(s, name);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    gw_sup *s = h->data;
    if (s->log.path == NULL) {
        /* Foreground: the terminal went away. */
        sup_stop(s, "SIGHUP: terminal closed");
        return;
    }
    int rc = sup_log_reopen(&s->log);
    if (rc < 0)
        LOG_ERROR("GW-SUP-LOG", "cannot reopen %s: %s", s->log.path, strerror(-rc));
    else
        LOG_INFO("GW-SUP-LOG", "log file reopened (SIGHUP)");
}

static void on_sigusr1(uv_signal_t *h, int signum)
{
    gw_sup *s = h->data;
    const char *err = NULL;
    if (reload_start(s, &err) < 0)
        LOG_WARN("GW-SUP-RELOAD", "SIGUSR1 ignored: %s", err);
}

static void on_status_timer(uv_timer_t *t)
{
    gw_sup *s = container_of(t, gw_sup, status_timer);
    if (s->cfg.supervisor.status_file[0])
        report_status_file(s);
    sup_log_check(&s->log);
}

/* ---- run ------------------------------------------------------------------------ */

static int start_signals(gw_sup *s)
{
    struct {
        uv_signal_t *h;
        uv_signal_cb cb;
        int signum;
    } sigs[] = {
        {&s->sig_chld, on_sigchld, SIGCHLD},     {&s->sig_int, on_stop_signal, SIGINT},
        {&s->sig_term, on_stop_signal, SIGTERM}, {&s->sig_hup, on_sighup, SIGHUP},
        {&s->sig_usr1, on_sigusr1, SIGUSR1},
    };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        uv_signal_init(s->loop, sigs[i].h);
        sigs[i].h->data = s;
    }
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        int rc = uv_signal_start(sigs[i].h, sigs[i].cb, sigs[i].signum);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Start-up failed after the point of no return: tell whoever waits, stop children. */
static void fail_start(gw_sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_start(gw_sup *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    LOG_ERROR("GW-SUP-START", "%s", msg);
    sup_daemon_report(&s->ready_fd, 0, msg);
}

int gw_sup_run(gw_config *cfg, const gw_sup_opts *opts)
{
    gw_sup *s = gw_calloc(1, sizeof *s);
    if (s == NULL) {
        gw_config_deinit(cfg);
        fprintf(stderr, "gw-master: out of memory\n");
        return GW_SUP_EXIT_FAIL;
    }
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->opts = *opts;
    s->lock_fd = -1;
    s->ready_fd = -1;
    s->devnull_fd = -1;
    s->stop_role = -1;
    int exit_code = GW_SUP_EXIT_FAIL;
    int rc;
    gw_log_init("master", s->cfg.cluster.log_level);
    signal(SIGPIPE, SIG_IGN);

    if (find_bins(s) < 0)
        goto out;
    if (gw_sup_socket_path(&s->cfg, s->sock_path, sizeof s->sock_path) < 0) {
        fprintf(stderr,
                "gw-master: %s/%s is too long for a UNIX socket; use a shorter "
                "cluster.run_dir\n",
                s->cfg.cluster.run_dir, GW_SUP_SOCKET_NAME);
        goto out;
    }
    rc = sup_mkdirs(s->cfg.cluster.run_dir);
    if (rc < 0) {
        fprintf(stderr, "gw-master: cannot create cluster.run_dir %s: %s\n", s->cfg.cluster.run_dir,
                strerror(-rc));
        goto out;
    }
    pid_t holder = 0;
    rc = sup_pidfile_lock(s->cfg.supervisor.pid_file, &s->lock_fd, &holder);
    if (rc == 1) {
        fprintf(stderr, "gw-master: already running (pid %d, pid file %s)\n", (int)holder,
                s->cfg.supervisor.pid_file);
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "gw-master: cannot lock the pid file %s: %s\n", s->cfg.supervisor.pid_file,
                strerror(-rc));
        goto out;
    }
    s->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (s->devnull_fd < 0) {
        fprintf(stderr, "gw-master: cannot open /dev/null: %s\n", strerror(errno));
        goto out;
    }
    const char *log_path = s->cfg.supervisor.log_file[0] ? s->cfg.supervisor.log_file : "/dev/null";
    if (s->opts.daemon) {
        int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "gw-master: cannot open supervisor.log_file %s: %s\n", log_path,
                    strerror(errno));
            goto out;
        }
        close(fd);
        if (!s->cfg.supervisor.log_file[0])
            fprintf(stderr, "gw-master: supervisor.log_file is empty: the daemon's output "
                            "is discarded\n");
        rc = sup_daemonize(&s->ready_fd);
        if (rc < 0) {
            fprintf(stderr, "gw-master: cannot daemonize: %s\n", strerror(-rc));
            goto out;
        }
        /* In the daemon now. */
        dup2(s->devnull_fd, 0);
        rc = sup_log_open(&s->log, log_path, s->cfg.supervisor.log_max_size,
                          s->cfg.supervisor.log_keep);
        if (rc < 0) {
            sup_daemon_report(&s->ready_fd, 0, "cannot open the log file");
            goto out;
        }
    }
    rc = sup_pidfile_write(s->lock_fd, getpid());
    if (rc < 0) {
        fail_start(s, "cannot write the pid file %s: %s", s->cfg.supervisor.pid_file,
                   strerror(-rc));
        goto out;
    }
    s->loop = uv_default_loop();
    s->started_ms = gw_now_ms();
    uv_timer_init(s->loop, &s->phase_timer);
    uv_timer_init(s->loop, &s->status_timer);
    uv_timer_init(s->loop, &s->reload.timer);
    rc = start_signals(s);
    if (rc < 0) {
        fail_start(s, "cannot install signal handlers: %s", uv_strerror(rc));
        goto out_loop;
    }
    rc = make_children(s);
    if (rc < 0) {
        fail_start(s, "cannot create the statistics pages: %s", strerror(-rc));
        goto out_loop;
    }
    rc = ctl_server_start(s, s->sock_path);
    if (rc < 0) {
        fail_start(s, "cannot listen on the control socket %s: %s", s->sock_path, uv_strerror(rc));
        goto out_loop;
    }
    if (s->cfg.supervisor.metrics_listen.port != 0) {
        rc = metrics_start(s);
        if (rc < 0) {
            char a[64];
            gw_addr_format(&s->cfg.supervisor.metrics_listen, a, sizeof a);
            fail_start(s, "cannot listen on supervisor.metrics_listen %s: %s", a, uv_strerror(rc));
            goto out_loop;
        }
    }
    LOG_INFO("GW-SUP-START",
             "master started (%s), config %s: %d register, %d gateway, %d "
             "business worker process(es)",
             s->opts.daemon ? "daemon" : "foreground", s->cfg.path, s->cfg.reg.count,
             s->cfg.gateway.count, s->cfg.businessworker.count);
    uv_timer_start(&s->status_timer, on_status_timer, 0, SUP_STATUS_FILE_MS);
    s->state = SUP_STARTING;
    s->phase_started_ms = gw_now_ms();
    spawn_role(s, SUP_REGISTER);
    uv_timer_start(&s->phase_timer, on_phase_timer, 0, SUP_POLL_MS);
    uv_run(s->loop, UV_RUN_DEFAULT);
    exit_code = GW_SUP_EXIT_OK;
    goto out_closed;

out_loop:
    /* Nothing was spawned: close what is open and let the loop finish. */
    for (int i = 0; i < s->n_children; i++)
        uv_close((uv_handle_t *)&s->children[i].timer, NULL);
    ctl_server_close(s);
    metrics_close(s);
    uv_close((uv_handle_t *)&s->phase_timer, NULL);
    uv_close((uv_handle_t *)&s->status_timer, NULL);
    uv_close((uv_handle_t *)&s->reload.timer, NULL);
    uv_close((uv_handle_t *)&s->sig_chld, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_close((uv_handle_t *)&s->sig_usr1, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    unlink(s->cfg.supervisor.pid_file);
out_closed:
    if (uv_loop_close(s->loop) != 0)
        LOG_WARN("GW-SUP-STOP", "some libuv handles were still open at exit");
out:
    for (int i = 0; i < s->n_children; i++)
        gw_shstats_free(s->children[i].stats);
    gw_free(s->children);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->devnull_fd >= 0)
        close(s->devnull_fd);
    sup_daemon_report(&s->ready_fd, 0, "the master exited during start-up (see its log)");
    sup_log_deinit(&s->log);
    gw_config_deinit(&s->cfg);
    gw_free(s);
    return exit_code;
}

int gw_sup_socket_path(const gw_config *cfg, char *buf, size_t len)
{
    size_t max = len < 108 ? len : 108; /* sizeof(sockaddr_un.sun_path) */
    int n = snprintf(buf, max, "%s/%s", cfg->cluster.run_dir, GW_SUP_SOCKET_NAME);
    if (n < 0 || (size_t)n >= max)
        return -ENAMETOOLONG;
    return 0;
}
