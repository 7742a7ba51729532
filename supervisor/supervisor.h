/* supervisor.h - gw-master: the per-host supervisor of register, gateway and
 * business worker processes, and the client of its control socket.
 *
 * The master is started once per host (scripts/start_all.sh start [-d]). It forks
 * and execs the configured processes (the sibling binaries gw-register, gw-gateway,
 * gw-businessworker), restarts the ones that die (with backoff when they crash-loop),
 * stops them in order (gateways, workers, register), rolls business workers one at a
 * time on reload, and answers `status` and a Prometheus endpoint from shared stats
 * pages (common/shstats.h) without asking any child. Children get
 * PR_SET_PDEATHSIG=SIGKILL: they never outlive the master. docs/OPERATIONS.md is the
 * operator's reference.
 *
 * Commands reach a running master through a UNIX socket, <run_dir>/gatewayworker.sock
 * (mode 0600): one JSON object per line each way, e.g. {"cmd":"status"} ->
 * {"ok":true,...}.
 */
#ifndef GW_SUPERVISOR_H
#define GW_SUPERVISOR_H

#include "common/config.h"

/* Exit statuses of gw-master. */
enum {
    GW_SUP_EXIT_OK = 0,
    GW_SUP_EXIT_FAIL = 1,   /* start-up failed, command failed, master not running */
    GW_SUP_EXIT_CONFIG = 2, /* invalid configuration or command line */
};

#define GW_SUP_SOCKET_NAME "gatewayworker.sock"

typedef struct gw_sup_opts {
    const char *config_path; /* as given; the loaded config keeps the absolute path */
    int daemon;              /* detach (double fork + setsid), log to supervisor.log_file */
    const char *bin_dir;     /* where gw-register etc. are; NULL: next to this executable */
} gw_sup_opts;

/* Runs the master until it is stopped. Takes the pid-file lock, optionally
 * daemonises (the calling process then waits until the master is up, prints the
 * result and exits), spawns the children and runs the loop. Blocks for the life of
 * the master. cfg is taken (deinitialised before returning). Returns a GW_SUP_EXIT_*
 * status for main() to exit with. */
int gw_sup_run(gw_config *cfg, const gw_sup_opts *opts);

/* Sends `cmd` ("stop", "status", "reload") to the running master of cfg and prints
 * the result on stdout (status as a table, or the raw JSON line when json is set);
 * errors go to stderr. Blocks (bounded by timeouts derived from the config).
 * Returns GW_SUP_EXIT_OK, or GW_SUP_EXIT_FAIL (not running, timeout, refused). */
int gw_sup_command(const gw_config *cfg, const char *cmd, int json);

/* The control socket path of cfg into buf. Returns 0, or -ENAMETOOLONG when it does
 * not fit a UNIX socket address. */
int gw_sup_socket_path(const gw_config *cfg, char *buf, size_t len);

#endif
