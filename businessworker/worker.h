/* worker.h - a business worker process: loads the user's module and runs its
 * callbacks for the events gateways send, carrying out its gw_* calls.
 * Single-threaded; one worker per process (the gw_* API refers to it).
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include "common/config.h"

#include <stdint.h>
#include <uv.h>

typedef struct gw_worker gw_worker;

typedef struct gw_worker_stats {
    uint64_t events;         /* callbacks run */
    uint64_t commands_out;   /* frames sent to gateways */
    uint64_t send_errors;    /* gw_* calls that failed */
    uint64_t bad_frames;     /* unexpected or malformed frames received */
    uint64_t session_writes; /* session write-backs */
    uint64_t queries;        /* queries started */
    uint64_t queries_incomplete; /* completed at the deadline without every gateway */
    uint64_t query_us_total;     /* summed query durations (µs): with queries, the mean */
    uint64_t query_us_max;       /* the longest query (µs) */
    uint64_t internal_dropped_auth;
    uint64_t internal_dropped_malformed;
    uint64_t internal_dropped_peer_gone; /* batches for a peer that left, dropped */
    uint64_t queue_bytes;        /* bytes waiting to be sent to gateways */
    uint32_t gateways;
} gw_worker_stats;

/* Loads the module (refusing it with a message naming the file and the problem:
 * missing symbol, ABI mismatch, dlopen error), binds the inbox, joins the cluster
 * and calls on_worker_start. cfg is borrowed for the worker's life. Returns 0, or
 * a negative errno (-ENOEXEC for a module that was refused). */
int gw_worker_start(gw_worker **out, uv_loop_t *loop, const gw_config *cfg, int index);
/* Graceful stop (also what a reload does): asks every gateway to route no new
 * clients here and to move this worker's clients to other workers; keeps
 * handling the events the gateways had already sent until each acknowledged
 * (the acknowledgement follows the last such event on the same ordered link),
 * and answers each acknowledgement with a release, after which that gateway
 * sends the clients' held new events to other workers (in order); then checks
 * that its own last commands arrived (ping/pong), calls on_worker_stop and leaves the cluster. No event is lost and no client is
 * disconnected. Bounded by supervisor.stop_timeout. `done` runs once everything
 * is closed. A second call skips whatever is left of the drain. */
void gw_worker_stop(gw_worker *w, void (*done)(void *), void *arg);
/* Current figures (refreshed on each call). */
const gw_worker_stats *gw_worker_get_stats(gw_worker *w);

#endif
