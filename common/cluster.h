/* cluster.h - membership and messaging of one cluster process.
 *
 * A gateway, a business worker or an API client (gwctl) runs one `cluster`:
 *  - an inbox (NN_PULL) on its LAN address, where verified batches arrive and are
 *    handed to on_frame frame by frame;
 *  - heartbeats to every configured register (one NN_PUSH each, never queued);
 *  - rosters, which registers send to the inbox (on change, periodically, and
 *    in answer to a heartbeat that asks), are merged (union over the registers
 *    heard from recently, freshest entry per node wins) and turned into
 *    on_peer_up / on_peer_down calls for the roles it is interested in.
 *    While no register is heard from, the view is frozen: traffic between
 *    gateways and workers never depends on a register being up;
 *  - one cluster_peer (NN_PUSH to that peer's inbox) per peer, with frames
 *    batched per peer and sent once per loop iteration (uv_prepare), signed with
 *    HMAC-SHA256 when a secret is configured.
 * Peers that are not in the roster (an API client asking a query) are reached
 * through on-demand peers, closed again after some idle time.
 *
 * Single-threaded: every call from the loop thread. Nothing blocks.
 */
#ifndef GW_CLUSTER_H
#define GW_CLUSTER_H

#include "common/mq.h"
#include "common/proto.h"
#include "common/roster.h"

#include <stdint.h>
#include <uv.h>

typedef struct cluster cluster;
typedef struct cluster_peer cluster_peer;

#define CLUSTER_MAX_REGISTERS 16

typedef struct cluster_addr {
    uint32_t ip; /* host order */
    uint16_t port;
} cluster_addr;

typedef struct cluster_cfg {
    uint8_t role;          /* GWP_ROLE_GATEWAY / WORKER / CLIENT */
    const char *name;      /* shown in the roster */
    uint32_t lan_ip;       /* advertised inbox address */
    uint16_t inbox_port;   /* 0 for a client: a free port is picked */
    uint32_t inbox_bind;   /* address to bind the inbox on (0 = 0.0.0.0) */
    int bind_any;          /* bind 0.0.0.0 instead of lan_ip */
    cluster_addr registers[CLUSTER_MAX_REGISTERS];
    size_t n_registers;
    const char *secret;    /* NULL or "" = no HMAC */
    uint32_t heartbeat_ms; /* 0 = no heartbeats (clients) */
    uint32_t node_timeout_ms;
    size_t max_msg;        /* NN_RCVMAXSIZE of the inbox */
    size_t max_batch;      /* a batch is sent early when it grows past this */
    unsigned interest;     /* bit (1 << GWP_ROLE_x) for each role to connect to */
} cluster_cfg;

typedef struct cluster_stats {
    uint64_t batches_in;
    uint64_t frames_in;
    uint64_t dropped_auth;      /* batches with a missing or wrong HMAC tag */
    uint64_t dropped_malformed; /* batches that failed validation */
    uint64_t batches_out;
    uint64_t frames_out;
    uint64_t send_errors;
    uint64_t dropped_peer_gone; /* batches still waiting for a peer that left: dropped */
    uint64_t rosters_in;
} cluster_stats;

typedef struct cluster_cbs {
    /* One frame of a verified batch from `from`. Must not close the cluster. */
    void (*on_frame)(cluster *c, const gwp_sender *from, const gwp_frame *f, void *arg);
    /* A roster node of an interesting role appeared (or came back with a new
     * boot nonce, after an on_peer_down for the old one). */
    void (*on_peer_up)(cluster *c, cluster_peer *p, void *arg);
    /* The node left the roster. Called before the peer is closed: drop every
     * reference to p; cluster_peer_drain_frames may recover unsent frames. */
    void (*on_peer_down)(cluster *c, cluster_peer *p, void *arg);
    /* The peer's send queue became empty after backpressure (may be NULL). */
    void (*on_peer_drain)(cluster *c, cluster_peer *p, void *arg);
    /* Load figure put in each heartbeat (may be NULL: 0). */
    uint32_t (*load)(cluster *c, void *arg);
    /* A roster arrived (may be NULL), after up/down calls were made. */
    void (*on_roster)(cluster *c, void *arg);
} cluster_cbs;

struct cluster_peer {
    uint8_t role;
    uint16_t port;
    uint32_t ip;
    uint64_t nonce;
    uint32_t load;
    int32_t pid;
    char name[ROSTER_NAME_MAX];
    char addr[24]; /* "ip:port" for logs */
    unsigned in_roster : 1;
    unsigned up : 1;    /* on_peer_up was called and on_peer_down not yet */
    unsigned dirty : 1; /* on the flush list */
    unsigned mq_open : 1;
    uint64_t last_used_ms;
    void *user; /* for the owner of the cluster */
    /* private */
    cluster *c;
    cluster_peer *hnext;
    cluster_peer *dnext;
    gwp_writer w;
    mq_peer mq;
};

/* Opens the inbox (port chosen when cfg->inbox_port is 0), the register links
 * and starts heartbeating. cfg and its strings are copied. Returns 0 or a
 * negative errno (-EADDRINUSE when the inbox port is taken); on error nothing is
 * left open and *out is NULL. */
int cluster_start(cluster **out, uv_loop_t *loop, const cluster_cfg *cfg, const cluster_cbs *cbs,
                  void *arg);
/* Sends what is batched (best effort), leaves the roster, closes every socket;
 * `done` (may be NULL) runs once all libuv handles are closed and the object is
 * freed. No callback runs after this call. */
void cluster_stop(cluster *c, void (*done)(void *arg), void *arg);

/* Flushes every batched frame now (normally done once per loop iteration). */
void cluster_flush(cluster *c);

const gwp_sender *cluster_self(const cluster *c);
const cluster_stats *cluster_get_stats(const cluster *c);
/* The prepared HMAC key, or NULL when no secret is configured. */
const gwp_key *cluster_key(const cluster *c);
/* 1 once at least one register's roster has been received. */
int cluster_has_roster(const cluster *c);
/* Milliseconds since a roster was last received from any register (UINT64_MAX if
 * never). */
uint64_t cluster_roster_age_ms(const cluster *c);

/* The peer with this inbox address, or NULL. */
cluster_peer *cluster_peer_find(cluster *c, uint32_t ip, uint16_t port);
/* The peer with this address, created on demand (not in the roster; closed
 * after being idle for a while) to answer a sender. NULL on -ENOMEM or socket
 * failure. */
cluster_peer *cluster_peer_get(cluster *c, uint32_t ip, uint16_t port, uint8_t role);
/* Calls fn for every peer that is up (in the roster) with the given role
 * (0 = any). fn must not stop the cluster. */
void cluster_foreach_peer(cluster *c, uint8_t role, void (*fn)(cluster_peer *p, void *arg),
                          void *arg);

/* Appends a frame (copied) to the peer's batch of this loop iteration. Returns 0,
 * -EMSGSIZE (the frame alone exceeds the inbox limit of the peer), -ENOMEM or
 * -EPIPE (the peer is closed). */
int cluster_send(cluster *c, cluster_peer *p, const gwp_frame *f);
/* As cluster_send, but reserves the sections and returns pointers to fill in
 * (see gwp_writer_add_inplace); fill them before any other call on the cluster. */
int cluster_send_inplace(cluster *c, cluster_peer *p, const gwp_frame *f, uint8_t **a,
                         uint8_t **b);
/* Bytes waiting for the peer: the open batch plus the send queue. */
size_t cluster_peer_backlog(const cluster_peer *p);
/* Takes back every frame not yet handed to nanomsg for this peer (the open batch
 * and the queue), calling fn for each in order, then forgets them. For
 * re-routing events of a worker that left. fn must not send to p. */
void cluster_peer_drain_frames(cluster *c, cluster_peer *p,
                               void (*fn)(const gwp_frame *f, void *arg), void *arg);

/* Waits up to timeout_ms for frames, synchronously (the loop does not run):
 * flushes what is batched, then receives from the inbox; each frame is offered to
 * want(), which returns 1 when it consumed it (and may then return 2 to stop
 * waiting). Every other frame is kept, in order, and handed to on_frame once the
 * loop runs again, before anything received later. Returns 1 when want() said
 * stop, 0 at the timeout, or a negative errno. For blocking queries. */
int cluster_recv_sync(cluster *c, uint64_t timeout_ms,
                      int (*want)(const gwp_sender *from, const gwp_frame *f, void *arg),
                      void *arg);

/* Copies the merged view of live nodes (all roles, including this process if a
 * register reported it). *out is gw_malloc'd (caller frees); returns the count or
 * a negative errno. */
long cluster_roster_snapshot(const cluster *c, roster_entry **out);

#endif
