/* gateway_int.h - state shared by the gateway's source files (not installed).
 *
 * gateway.c  start/stop, listeners, accept, cluster callbacks, worker routing,
 *            the hold queue, command dispatch
 * conn.c     one client connection: read and decode per protocol, output queue
 *            and write coalescing, heartbeat deadlines, closing
 */
#ifndef GW_GATEWAY_INT_H
#define GW_GATEWAY_INT_H

#include "common/buf.h"
#include "common/cluster.h"
#include "common/config.h"
#include "common/wheel.h"
#include "common/wire.h"
#include "common/smap.h"
#include "common/ws.h"
#include "gateway/gateway.h"
#include "gateway/members.h"

#include <stdint.h>
#include <uv.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct gw_conn gw_conn;

/* A deleted slot of the connection table. */
#define TOMB ((gw_conn *)1)

enum conn_state {
    CONN_HANDSHAKE = 0, /* WebSocket: waiting for the upgrade request */
    CONN_AUTH,          /* WebSocket: waiting for on_websocket_connect's verdict */
    CONN_OPEN,
    CONN_CLOSING, /* close frame / last message queued; no more input or events */
    CONN_CLOSED,  /* uv_close called; freed in the close callback */
};

enum conn_flag {
    CF_READ_PAUSED = 0x01, /* uv_read_stop because its worker is congested */
    CF_WRITING = 0x02,     /* a uv_write is in flight */
    CF_SHUTDOWN = 0x04,    /* close once the output queue is empty */
    CF_CLOSE_SENT = 0x08,  /* a WebSocket close frame was queued */
    CF_EVENTS = 0x10,      /* on_connect was sent: on_close is owed */
    CF_HELD = 0x20,        /* has events in the no-worker hold queue */
};

/* One queued output block: a shared buffer and the offset already written. */
typedef struct out_chunk {
    gw_sbuf *sb;
    uint32_t off;
} out_chunk;

struct gw_conn {
    uv_tcp_t tcp; /* first: the handle's data is unused, container_of gets us back */
    gw_gateway *gw;
    uint32_t id; /* connection number (low 32 bits of the client_id) */
    uint8_t proto;
    uint8_t state;
    uint8_t flags;
    uint8_t pings; /* heartbeat pings sent since the last client message */
    uint16_t listener_port;
    uint16_t worker;     /* worker slot + 1; 0 = not bound */
    uint32_t worker_gen; /* generation of the slot when bound */
    uint32_t dirty_idx;  /* position + 1 in gw->dirty, 0 = not there */
    uint32_t sess_seq;   /* session write-backs applied from the bound worker */
    uint64_t last_rx_ms; /* last complete client message (or accept) */
    wire_info info;
    gw_buf in;    /* bytes of an incomplete frame/line/request, on demand */
    ws_reader *ws; /* WebSocket reader, after the handshake */
    out_chunk *out;
    uint32_t out_n, out_cap;
    uint32_t inflight_n; /* chunks [0, inflight_n) belong to the uv_write in flight */
    size_t out_bytes;
    uv_write_t *wreq;
    wheel_node hb;
    char *session;     /* JSON object text, NULL = empty */
    uint32_t session_len;
    member_set *uid;   /* NULL = no uid */
    uint32_t uid_pos;
    uint16_t ngroups, cap_groups;
    uint32_t mark; /* de-duplication stamp of multi-target sends */
    conn_group *groups;
    struct http_ws_result *auth; /* CONN_AUTH: the accepted handshake, kept for 101 */
};

typedef struct worker_slot {
    cluster_peer *peer; /* NULL: free slot */
    uint32_t gen;
    uint32_t bound; /* clients this gateway bound to it */
    int congested;
    int draining; /* it asked for no more clients (stopping or reloading) */
    int handoff;  /* draining, and its clients' new events wait in the hold queue
                   * until it has handled the ones it already has (RELEASE) */
    uint32_t *paused; /* ids of clients whose reads are paused for it */
    uint32_t npaused, cap_paused;
} worker_slot;

typedef struct listener {
    uv_tcp_t tcp;
    gw_gateway *gw;
    gw_listener cfg;
} listener;

/* One event waiting for a worker to appear. */
typedef struct held_event {
    struct held_event *next;
    uint64_t at_ms;
    uint32_t conn;
    uint8_t cmd;
    uint16_t aux;
    uint32_t a_len, b_len;
    uint8_t data[]; /* a then b */
} held_event;

struct gw_gateway {
    uv_loop_t *loop;
    const gw_config *cfg;
    int index;
    cluster *cl;
    uint32_t lan_ip;
    uint16_t inbox_port;
    uint32_t next_id;

    listener *listeners;
    int nlisteners;

    /* connections by id: open addressing, linear probing, power-of-two size */
    gw_conn **table;
    uint32_t table_cap;
    uint32_t nconns;
    uint32_t table_tombs;

    worker_slot *workers;
    uint32_t nworkers_cap;
    uint32_t nworkers_alive;
    uint32_t nworkers_routable; /* alive and not draining */
    uint32_t nhandoff;          /* slots with handoff set */

    held_event *held_head, *held_tail;
    size_t held_bytes;
    uint32_t held_count;

    gw_conn **dirty; /* connections with output to flush this iteration */
    uint32_t ndirty, dirty_cap;
    uv_prepare_t flush;

    wheel wheel;
    uv_timer_t wheel_timer;
    int wheel_timer_on;

    uint8_t *rbuf; /* shared read buffer */
    size_t rbuf_size;

    /* pre-built heartbeat output per protocol (NULL if not configured) */
    gw_sbuf *ping_ws, *ping_text, *ping_frame, *ping_wsctl;
    uint64_t ping_interval_ms;
    uint64_t close_after_ms; /* interval x limit, 0 = never */
    uint64_t handshake_ms;

    smap uids;   /* uid -> member_set */
    smap groups; /* group -> member_set */
    uint32_t mark_gen;
    uint64_t members_changes; /* presence notices sent (first member in, last out) */

    gw_gateway_stats stats;
    uint32_t live_conns; /* accepted and not yet freed */
    uv_timer_t *stop_timer;
    int stopping;
    int pending;
    void (*done)(void *);
    void *done_arg;
};

/* ---- conn.c ---- */
/* Accepts a connection on `l`; on failure logs and drops it. */
void conn_accept(gw_gateway *gw, listener *l);
/* Queues a message for the client, framed for its protocol (copied). aux: WIRE_MSG_*.
 * Returns 0, or a positive reason when dropped (slow client, closing). */
int conn_send(gw_conn *c, const uint8_t *data, size_t len, uint16_t aux);
/* Queues an already framed shared block (broadcast); takes a reference. */
int conn_send_shared(gw_conn *c, gw_sbuf *sb);
/* Graceful close: optional last message, WebSocket close frame with code (0 = 1000),
 * then TCP close once flushed. on_close is sent to the worker. Idempotent. */
void conn_close(gw_conn *c, uint16_t code, const uint8_t *last, size_t last_len, uint16_t aux);
/* Immediate close, queued output discarded. on_close is sent. Idempotent. */
void conn_destroy(gw_conn *c, const char *why);
/* Writes queued output (uv_try_write, then uv_write for the rest). */
void conn_flush(gw_conn *c);
/* Heartbeat/handshake/closing deadline handling from the wheel. */
void conn_on_deadline(gw_conn *c);
/* Resumes reading after worker backpressure ended. */
void conn_resume(gw_conn *c);
/* Frees per-connection memory (after libuv closed the handle). */
void conn_free(gw_conn *c);
/* Framed bytes of `data` for a protocol (for broadcasts): a new shared block. */
gw_sbuf *conn_frame_shared(int proto, const uint8_t *data, size_t len, uint16_t aux);

/* ---- gateway.c ---- */
gw_conn *gw_conn_find(gw_gateway *gw, uint32_t id);
int gw_conn_insert(gw_gateway *gw, gw_conn *c);
void gw_conn_remove(gw_gateway *gw, gw_conn *c);
/* Forwards a client event to the client's worker (binding it first), or holds it
 * while no worker is alive. a2/b may be NULL with 0 length. */
void gw_forward_event(gw_gateway *gw, gw_conn *c, uint8_t cmd, uint16_t aux, const uint8_t *b,
                      size_t b_len);
/* Marks a connection as having output to flush this loop iteration. */
void gw_mark_dirty(gw_gateway *gw, gw_conn *c);
void gw_unmark_dirty(gw_gateway *gw, gw_conn *c);
/* Schedules c's wheel node at deadline_ms (starts the wheel timer if needed). */
void gw_schedule(gw_gateway *gw, gw_conn *c, uint64_t deadline_ms);
/* Called by conn.c once a connection left OPEN: drops it from the indexes. */
void gw_conn_detach(gw_gateway *gw, gw_conn *c);
/* A worker asked to drain: route nothing new to it, hold its clients' new events
 * until it releases them (gw_worker_released; or it leaves), and acknowledge on
 * the same link (after every event already sent to it). */
void gw_worker_drain(gw_gateway *gw, cluster_peer *p);
/* The draining worker p handled every event sent to it before the drain
 * acknowledgement: its clients' held events go to other workers now. */
void gw_worker_released(gw_gateway *gw, cluster_peer *p);

/* commands.c: a frame from a worker or API client. */
void gw_on_frame(cluster *cl, const gwp_sender *from, const gwp_frame *f, void *arg);
/* conn.c: completes (101) or refuses a handshake waiting in CONN_AUTH. */
void conn_auth_verdict(gw_conn *c, int status, const uint8_t *reason, size_t len);

/* conn.c calls this after freeing a connection. */
void gw_conn_freed(gw_gateway *gw);
/* Pauses c's reads if its worker is congested (after an event was queued). */
void gw_check_backpressure(gw_gateway *gw, gw_conn *c);

#endif
