/* proc.h - what every cluster binary does at start-up, in one place.
 *
 * gw_proc_init parses the common command line
 *     --config FILE   (default config/gatewayworker.json)
 *     --index N       which process of its role this is (inbox port = start_port + N)
 *     --print-config  print the effective configuration and exit
 *     --help
 * loads the configuration (exits with status 2 and a message naming file, key
 * and reason when it is invalid), sets up logging (role tag "gateway#0" etc.),
 * ignores SIGPIPE, raises RLIMIT_NOFILE to its hard limit and installs the
 * project allocator. It may block (file I/O); call it first in main().
 */
#ifndef GW_PROC_H
#define GW_PROC_H

#include "common/cluster.h"
#include "common/config.h"
#include "common/shstats.h"

typedef struct gw_proc {
    const char *role; /* "gateway", ... (static) */
    const char *config_path;
    int index;
    gw_config cfg;
    char tag[48];
} gw_proc;

/* Returns 0 to go on; exits the process for --help, --print-config and errors.
 * `extra_usage` (may be NULL) is printed under the common options. */
int gw_proc_init(gw_proc *p, int argc, char **argv, const char *role, const char *extra_usage);
void gw_proc_deinit(gw_proc *p);

/* The inbox message limit (NN_RCVMAXSIZE) every node uses: large enough for a
 * batch carrying one maximal client message plus its parameters. */
size_t gw_proc_max_msg(const gw_config *cfg);

/* What a process role plugs into gw_proc_run. */
typedef struct gw_service {
    /* Starts the role; returns 0 and sets *obj, or a negative errno. */
    int (*start)(void **obj, uv_loop_t *loop, const gw_config *cfg, int index);
    /* Graceful stop; done(arg) runs once everything is closed. Called again on a
     * second signal (the role then skips what is left of its grace period). */
    void (*stop)(void *obj, const gw_config *cfg, void (*done)(void *), void *arg);
    /* Copies the role's figures into the supervisor's stats page. */
    void (*publish)(void *obj, gw_shstats *s);
    gw_shstats_state stopping_state; /* published while stopping */
    /* Exit status for a failed start (rc < 0); NULL: 1. */
    int (*start_failed)(int rc);
} gw_service;

/* Runs a process of the role after gw_proc_init: starts it, stops it gracefully
 * on SIGINT/SIGTERM (again on a second one), reopens the log on SIGHUP, publishes
 * statistics every 250 ms for the supervisor, runs the loop until everything is
 * closed. Returns the exit status; blocks until then. */
int gw_proc_run(gw_proc *p, const gw_service *svc);

/* How long a process may spend stopping gracefully: supervisor.stop_timeout
 * minus half a second (at least half of it), so that it is done before the
 * supervisor's SIGKILL. */
uint64_t gw_proc_grace_ms(const gw_config *cfg);

/* Fills a cluster configuration for `role` process number `index`. The strings
 * point into cfg. Returns 0 or -EINVAL (bad lan_ip/register address, message
 * logged). */
int gw_proc_cluster_cfg(const gw_config *cfg, uint8_t role, int index, cluster_cfg *out);

#endif
