/* sup_int.h - internals of the supervisor library, shared by its files:
 *
 *   master.c   the master object: start phases, exits and restarts, stop, reload
 *   child.c    fork+exec of one child, exit-status wording
 *   control.c  the UNIX control socket: one JSON request per line, dispatch by command
 *   report.c   status JSON, the status table, Prometheus text, the start banner
 *   metrics.c  the HTTP endpoint serving report.c's Prometheus text
 *   logsink.c  daemon mode: the log file (size rotation, SIGHUP reopen) and the pipes
 *              carrying the children's stdout/stderr into it
 *   daemon.c   pid file with its lock, daemonising
 *   client.c   the blocking client of the control socket (gw-master stop|status|reload)
 *
 * Everything runs on the master's single loop thread; nothing here blocks except
 * short local syscalls (fork, waitpid WNOHANG, /proc reads, log writes).
 */
#ifndef GW_SUP_INT_H
#define GW_SUP_INT_H

#include "common/buf.h"
#include "common/config.h"
#include "common/shstats.h"
#include "supervisor/supervisor.h"

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Timing rules (docs/OPERATIONS.md). */
#define SUP_STABLE_MS 10000        /* a child up this long is healthy: backoff resets */
#define SUP_BACKOFF_FIRST_MS 100   /* first delay of a crash loop, doubled each time */
#define SUP_REFUSED_MIN_MS 1000    /* floor of the delay after exit 2 (config) / 3 (module) */
#define SUP_BUSY_MS 2000           /* a stats tick older than this: the loop is busy */
#define SUP_READY_TIMEOUT_MS 10000 /* reload: a new worker must be running within this */
#define SUP_REGISTER_WAIT_MS 3000  /* start: at most this long for registers before others */
#define SUP_POLL_MS 50             /* polling period of start/reload phases */
#define SUP_STATUS_FILE_MS 2000    /* status_file refresh period */

/* Exit statuses of the children with a meaning (gw_proc_init, businessworker/main.c). */
#define SUP_CHILD_EXIT_CONFIG 2
#define SUP_CHILD_EXIT_MODULE 3

typedef enum sup_role {
    SUP_REGISTER = 0,
    SUP_GATEWAY = 1,
    SUP_WORKER = 2,
    SUP_NROLES = 3,
} sup_role;

/* "register", "gateway", "businessworker": the role names of gw_proc_init's tags. */
const char *sup_role_name(sup_role r);

typedef struct gw_sup gw_sup;
typedef struct sup_logpipe sup_logpipe;
typedef struct ctl_conn ctl_conn;

typedef struct sup_child {
    gw_sup *sup;
    sup_role role;
    int index;
    char name[32];       /* "gateway#0", as the child's own log tag */
    pid_t pid;           /* 0: not running */
    uint64_t started_ms; /* monotonic, start of the current (or last) run */
    int reloading;       /* it is the worker being replaced by the rolling reload */
    int killed;          /* SIGKILL was sent to the current run */
    unsigned restarts;   /* restarts after unexpected exits */
    uint64_t backoff_ms; /* delay of the next restart if it crashes soon again */
    uint64_t restart_at; /* monotonic time of the pending restart, 0 = none */
    int last_status;     /* wait status of the last exit, -1 = none */
    uv_timer_t timer;    /* pending restart */
    gw_shstats *stats;   /* its page (created once per slot, reset per run) */
} sup_child;

/* ---- logsink.c ---- */

typedef struct sup_log {
    char *path;         /* NULL: no file (foreground): fd 2 is the terminal */
    size_t max_size;    /* rotate above this; 0 = never */
    int keep;           /* rotated files kept */
    sup_logpipe *pipes; /* live child output pipes */
} sup_log;

/* Opens path (append, create 0644) onto fds 1 and 2, so the master's own log lines
 * and anything else it prints land there. Returns 0 or -errno. */
int sup_log_open(sup_log *l, const char *path, size_t max_size, int keep);
/* Reopens the file (after an outside tool moved it). 0 or -errno. */
int sup_log_reopen(sup_log *l);
/* Rotates when the file is over max_size (LOG -> LOG.1 -> ... -> LOG.keep). */
void sup_log_check(sup_log *l);
/* Writes bytes (whole lines) to the log, rotating first when needed. */
void sup_log_write(sup_log *l, const void *p, size_t n);
/* Starts forwarding what arrives on fd (the read end of a child's output pipe; taken)
 * line by line into the log. The reader closes itself at EOF. 0 or a UV_E* code (fd
 * closed). */
int sup_log_add_pipe(sup_log *l, uv_loop_t *loop, int fd);
/* Flushes and closes every pipe reader (at master exit). */
void sup_log_close_pipes(sup_log *l);
void sup_log_deinit(sup_log *l);

/* ---- control.c ---- */

typedef enum ctl_wait {
    CTL_WAIT_NONE = 0,
    CTL_WAIT_STOP = 1,   /* answered when the master has stopped */
    CTL_WAIT_RELOAD = 2, /* answered when the rolling reload is over */
} ctl_wait;

typedef struct ctl_server {
    uv_pipe_t pipe;
    int open;
    char path[108];
    ctl_conn *conns;
    int n_conns;
} ctl_server;

/* Binds and listens on path (a stale socket file is replaced: the pid-file lock
 * proves no other master is alive). 0 or a UV_E* code. */
int ctl_server_start(gw_sup *s, const char *path);
/* Answers every connection waiting for `what` with resp (sent to each; not stolen). */
void ctl_server_answer(gw_sup *s, ctl_wait what, const json_t *resp);
/* Answers one request: resp is stolen; NULL (allocation failed) sends an "out of
 * memory" error. */
void ctl_reply(ctl_conn *c, json_t *resp);
void ctl_reply_error(ctl_conn *c, const char *msg);
/* The request will be answered later by ctl_server_answer(s, what, ...). Call it
 * before starting what may answer synchronously. */
void ctl_conn_wait(ctl_conn *c, ctl_wait what);
/* Closes the listener and every connection; unlinks the socket file. */
void ctl_server_close(gw_sup *s);

/* ---- metrics.c ---- */

typedef struct metrics_conn metrics_conn;
typedef struct metrics_server {
    uv_tcp_t tcp;
    int open;
    uv_timer_t sweep; /* closes connections idle for too long */
    metrics_conn *conns;
    int n_conns;
} metrics_server;

/* Listens on supervisor.metrics_listen. 0 or a UV_E* code. */
int metrics_start(gw_sup *s);
void metrics_close(gw_sup *s);

/* ---- the master (master.c) ---- */

typedef enum sup_state {
    SUP_STARTING = 0, /* spawning, phase by phase */
    SUP_RUNNING = 1,
    SUP_STOPPING = 2,
    SUP_DONE = 3, /* everything stopped, handles closing */
} sup_state;

typedef enum reload_phase {
    RELOAD_IDLE = 0,
    RELOAD_STOPPING_OLD = 1, /* the old worker was asked to go; waiting for its exit */
    RELOAD_STARTING_NEW = 2, /* replacement spawned; waiting until its page says running */
} reload_phase;

struct gw_sup {
    uv_loop_t *loop;
    gw_config cfg;
    gw_sup_opts opts;
    char bins[SUP_NROLES][PATH_MAX]; /* executables per role */
    sup_child *children;
    int n_children;
    sup_state state;
    int stop_role;      /* role being stopped (gateway -> worker -> register), -1 = none */
    int ready_reported; /* the start result was reported (daemon parent / banner) */
    int ready_fd;       /* daemon: write end of the pipe the waiting parent reads; -1 */
    uint64_t started_ms;
    uint64_t phase_started_ms;
    uv_timer_t phase_timer; /* start phases, stop timeouts */
    uv_timer_t status_timer;
    uv_signal_t sig_chld, sig_int, sig_term, sig_hup, sig_usr1;
    int devnull_fd; /* children's stdin */
    int lock_fd;    /* pid file, locked */
    char sock_path[108];
    ctl_server ctl;
    metrics_server metrics;
    sup_log log;
    struct {
        reload_phase phase;
        int cursor; /* slot being reloaded */
        int done;   /* workers replaced so far */
        uint64_t phase_started_ms;
        uint64_t prev_gateways; /* links the old worker had: the new one should reach them */
        uv_timer_t timer;
        char error[256];
    } reload;
};

/* Control commands, dispatched by control.c. Each answers with ctl_reply() now or
 * registers the connection with ctl_conn_wait() to be answered later. */
void sup_cmd_status(gw_sup *s, ctl_conn *c);
void sup_cmd_stop(gw_sup *s, ctl_conn *c);
void sup_cmd_reload(gw_sup *s, ctl_conn *c);
/* Starts the graceful stop (idempotent); `why` goes to the log. */
void sup_stop(gw_sup *s, const char *why);

/* ---- child.c ---- */

/* Forks and execs the child's binary with --config/--index, its stats page in
 * $GW_STATS_FD, PR_SET_PDEATHSIG=SIGKILL, stdin on /dev/null and, in daemon mode,
 * stdout/stderr into a log pipe. Sets c->pid and c->started_ms. Returns 0 or -errno
 * (nothing started). */
int sup_child_spawn(sup_child *c);
/* "exited with status 3 (business module refused)", "killed by signal SIGKILL",
 * ... for a wait status. */
void sup_describe_exit(int status, char *buf, size_t len);
/* "SIGKILL" etc. (or "signal 42"). */
void sup_signal_name(int sig, char *buf, size_t len);

/* ---- report.c ---- */

/* The status object: {"ok":true,"master":{...},"processes":[...]}. New reference
 * or NULL (-ENOMEM). */
json_t *report_status(gw_sup *s);
/* Prometheus text exposition (version 0.0.4) of every page. 0 or -ENOMEM. */
int report_prometheus(gw_sup *s, gw_buf *out);
/* What a person needs after start: processes, client URLs, the demo page. */
int report_banner(gw_sup *s, gw_buf *out);
/* Writes report_status to cfg.supervisor.status_file (temporary file + rename). */
void report_status_file(gw_sup *s);
/* Prints a status object as the operator's table (client side). */
void report_print_table(json_t *status, FILE *f);

/* ---- daemon.c ---- */

/* Opens and locks the pid file (creating run_dir and the file). Returns 0 with *fd,
 * 1 when another live master holds it (*holder = its pid, or 0 if unreadable), or
 * -errno. */
int sup_pidfile_lock(const char *path, int *fd, pid_t *holder);
/* Writes "<pid>\n" into the locked pid file. 0 or -errno. */
int sup_pidfile_write(int fd, pid_t pid);
/* Double fork + setsid. In the caller's process: waits for the daemon's start report
 * on a pipe, prints it and exits (0 when the master came up). Returns (only) in the
 * daemon, with *ready_fd the write end of that pipe. -errno when fork/pipe fails. */
int sup_daemonize(int *ready_fd);
/* Sends the start result to the waiting parent ("OK <text>" or "ERR <text>") and
 * closes *ready_fd (set to -1). No-op when *ready_fd is -1. */
void sup_daemon_report(int *ready_fd, int ok, const char *text);

/* ---- small helpers ---- */
/* mkdir -p with mode 0755. 0 or -errno. */
int sup_mkdirs(const char *path);

#endif
