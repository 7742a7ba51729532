/* worker_int.h - state shared by the worker's source files (not installed).
 *   worker.c  cluster callbacks, event dispatch, session write-back, timers
 *   module.c  loading and checking the business module
 *   api.c     the gw_* functions of include/gatewayworker.h
 */
#ifndef GW_WORKER_INT_H
#define GW_WORKER_INT_H

#include "api/api.h"
#include "businessworker/worker.h"
#include "common/cluster.h"
#include "common/smap.h"
#include "common/wire.h"
#include "gatewayworker.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct gw_module_fns {
    void *handle;
    const char *path;
    void (*on_worker_start)(void);
    void (*on_worker_stop)(void);
    void (*on_connect)(const char *client_id);
    void (*on_websocket_connect)(const char *client_id, const gw_request *req);
    void (*on_message)(const char *client_id, const char *data, size_t len);
    void (*on_close)(const char *client_id);
} gw_module_fns;

struct gw_request {
    json_t *root;
};

/* The event being handled. */
typedef struct ev_ctx {
    int active;
    uint8_t cmd;
    int binary;
    char client_id[21];
    cluster_peer *gateway;
    uint32_t conn;
    uint32_t applied; /* session write-backs the gateway applied (frame req) */
    wire_info info;
    uint32_t gateway_ip;
    int client_ready; /* `client` and its address texts filled (gw_current_client) */
    gw_client client;
    char remote_addr[46];
    char gateway_addr[16];
    const uint8_t *sess_text;
    size_t sess_len;
    json_t *session;      /* parsed on first gw_session() */
    json_t *session_orig; /* deep copy to diff against */
    int verdict;          /* EV_WS_CONNECT with auth: 101 or a refusal status */
    char verdict_reason[128];
} ev_ctx;

/* Session writes of one client not yet confirmed by an event (see worker.c). */
typedef struct sess_pending {
    uint32_t sent; /* write-backs sent for this client (counted by the gateway) */
    uint32_t first_seq;
    json_t *patches; /* array of patches, seq first_seq, first_seq+1, ... */
} sess_pending;

typedef struct gw_timer {
    uv_timer_t t;
    long id;
    int repeat;
    gw_timer_cb cb;
    void *arg;
    struct gw_timer *next, *prev;
} gw_timer;

struct gw_worker {
    uv_loop_t *loop;
    const gw_config *cfg;
    int index;
    cluster *cl;
    gw_api api;
    gw_module_fns mod;
    ev_ctx ev;
    smap pending; /* client_id -> sess_pending */
    smap clients; /* gateway "ipport" -> u32map of known_client (see worker.c) */
    smap ghosts;  /* gateway "ipport" -> ghost_table: clients closed because it left */
    struct u32map *last_clients;
    uint32_t last_clients_ip;
    uint16_t last_clients_port;
    gw_timer *timers;
    long next_timer_id;
    gw_worker_stats stats;
    int started;
    int draining;         /* stop requested: gateways asked to route nothing new */
    uint64_t *drain_wait; /* gateways (ip << 16 | port) whose ack/pong is awaited */
    size_t ndrain_wait;
    int drain_phase;      /* 1: waiting for DRAIN acks, 2: for PONGs */
    uv_timer_t drain_timer;
    uint64_t drain_deadline;
    int stopping;
    int pending_closes;
    void (*done)(void *);
    void *done_arg;
};

/* The worker of this process (the module API needs it), or NULL. */
extern gw_worker *gw_worker_self;

/* module.c: 0, or -ENOEXEC with the reason logged. */
int module_load(gw_module_fns *m, const char *path);

/* module_api.c: closes every module timer; each close is counted in w->pending_closes and
 * released with worker_release. */
void api_timers_close_all(gw_worker *w);
/* worker.c: one asynchronous close finished. */
void worker_release(gw_worker *w);

#endif
