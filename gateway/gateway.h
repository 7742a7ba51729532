/* gateway.h - a gateway process: holds client sockets (WebSocket, text, frame),
 * runs their heartbeat deadlines, forwards their events to business workers over
 * the cluster and executes the workers' commands (send, broadcast, close, ...).
 *
 * One gateway per process (gateway.count processes share the client ports with
 * SO_REUSEPORT, each with inbox port start_port + index). Single-threaded.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include "common/config.h"

#include <stdint.h>
#include <uv.h>

typedef struct gw_gateway gw_gateway;

typedef struct gw_gateway_stats {
    uint64_t accepted;
    uint64_t closed;
    uint64_t heartbeat_closes;   /* closed for silence (ping_interval x limit) */
    uint64_t handshake_failures; /* bad upgrade requests, handshake timeouts */
    uint64_t protocol_errors;    /* malformed frames, oversize messages */
    uint64_t msgs_in;            /* complete client messages */
    uint64_t msgs_out;           /* messages queued to clients */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t dropped_slow;     /* messages not queued: client over send_buffer_limit */
    uint64_t slow_closes;      /* clients closed for exceeding send_buffer_limit */
    uint64_t events_out;       /* events forwarded to workers */
    uint64_t events_held;      /* events held while no worker was alive */
    uint64_t events_dropped;   /* events lost: hold limit or timeout */
    uint64_t commands_in;      /* commands from workers */
    uint64_t unknown_client;   /* commands for a client that is not (or no longer) here */
    uint64_t bad_commands;     /* malformed or unknown commands */
    uint64_t pings_sent;
    uint64_t http_requests; /* static files served (gateway.static_dir) */
    uint64_t internal_dropped_auth;      /* internal batches refused: HMAC missing or wrong */
    uint64_t internal_dropped_malformed; /* internal batches refused: malformed */
    uint64_t internal_dropped_peer_gone; /* batches for a peer that left, dropped */
    uint64_t queue_bytes; /* bytes waiting for workers (sent queues and the hold queue) */
    uint32_t connections;
    uint32_t workers;
} gw_gateway_stats;

/* Binds the client listeners and the inbox, joins the cluster. cfg is borrowed for
 * the gateway's life; index selects the inbox port. Returns 0 or a negative errno;
 * on error nothing is left open. */
int gw_gateway_start(gw_gateway **out, uv_loop_t *loop, const gw_config *cfg, int index);
/* Graceful stop: stops accepting, closes every client with a WebSocket close frame
 * (1001 going away), waits for them (at most `timeout_ms`), leaves the cluster;
 * `done` runs once the object is freed. Idempotent. */
void gw_gateway_stop(gw_gateway *gw, uint64_t timeout_ms, void (*done)(void *), void *arg);
/* Current figures (queue_bytes is computed on each call). */
const gw_gateway_stats *gw_gateway_get_stats(gw_gateway *gw);

#endif
