/* register.h - the register: the roster of live gateways and business workers.
 *
 * Binds an NN_PULL "announce" socket (heartbeats in) at register.listen and an
 * NN_PUB "roster" socket at listen port + 1. Every gateway and worker heartbeats
 * every cluster.heartbeat_interval with its role, inbox address, boot nonce and
 * load; a node silent for cluster.node_timeout is expired. The whole roster is
 * published at once on every change and every register.publish_interval. A
 * heartbeat asking for it (or an API client's request) gets the roster sent
 * straight to the sender's inbox. With a secret_key, heartbeats without a valid
 * HMAC are refused, counted and logged (GW-AUTH-FAIL).
 *
 * No data-plane traffic passes through a register. Single-threaded.
 */
#ifndef GW_REGISTER_H
#define GW_REGISTER_H

#include "common/config.h"

#include <stdint.h>
#include <uv.h>

typedef struct gw_register gw_register;

typedef struct gw_register_stats {
    uint64_t heartbeats;
    uint64_t auth_failures;
    uint64_t malformed;
    uint64_t published;
    uint64_t joins;
    uint64_t expiries;
    uint32_t nodes;
} gw_register_stats;

/* Binds both sockets and starts. cfg is borrowed for the life of the register.
 * Returns 0 or a negative errno (-EADDRINUSE ...); on error nothing is left open. */
int gw_register_start(gw_register **out, uv_loop_t *loop, const gw_config *cfg);
/* Closes everything; `done` runs once the object is freed. Idempotent. */
void gw_register_stop(gw_register *r, void (*done)(void *), void *arg);
const gw_register_stats *gw_register_get_stats(const gw_register *r);

#endif
