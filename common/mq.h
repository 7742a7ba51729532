/* mq.h - nanomsg sockets driven by a libuv loop.
 *
 * The transport of the cluster (ARCHITECTURE.md, "Internal transport"): every
 * process binds one NN_PULL inbox; for every peer it talks to it opens one
 * NN_PUSH connected to that peer's inbox only. That gives targeted, per-pair
 * ordered delivery and EAGAIN as backpressure. This module knows nothing of the
 * bytes it carries.
 *
 * Rules kept here once (see shared/reference/nanomsg-facts.md):
 *  - NN_RCVFD/NN_SNDFD are polled for UV_READABLE only; never read/written/closed;
 *  - every nn_send/nn_recv uses NN_DONTWAIT; work per callback is bounded;
 *  - socket options are set before bind/connect; NN_RCVMAXSIZE is always set;
 *  - shutdown order: uv_poll_stop, uv_close, and nn_close in the close callback;
 *  - a message is owned by nanomsg only once nn_send succeeded.
 * Create sockets only after any fork(). Single-threaded: call from the loop thread.
 */
#ifndef GW_MQ_H
#define GW_MQ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct mq_inbox mq_inbox;
typedef struct mq_peer mq_peer;

/* Called once per received message. `msg` is valid only during the call (it is a
 * nanomsg chunk freed afterwards). The callback may close the inbox. */
typedef void (*mq_inbox_cb)(mq_inbox *ib, const uint8_t *msg, size_t len, void *arg);

struct mq_inbox {
    uv_poll_t poll; /* on NN_RCVFD */
    int sock;
    int active;
    mq_inbox_cb cb;
    void *arg;
    void (*close_cb)(mq_inbox *);
    uint64_t msgs_in;
    uint64_t bytes_in;
};

/* Binds an NN_PULL socket to `url` ("tcp://ip:port") and starts delivering
 * messages to cb. max_msg sets NN_RCVMAXSIZE (a larger message makes nanomsg drop
 * the sender's connection). Returns 0, or a negative errno (-EADDRINUSE, ...);
 * on failure nothing is left open and cb is never called. */
int mq_inbox_open(mq_inbox *ib, uv_loop_t *loop, const char *url, size_t max_msg,
                  mq_inbox_cb cb, void *arg);
/* Stops delivery and releases the socket; close_cb (may be NULL) runs once the
 * libuv handle is closed, after which `ib` may be freed. Idempotent. */
void mq_inbox_close(mq_inbox *ib, void (*close_cb)(mq_inbox *));

/* An NN_PUSH socket connected to exactly one inbox, with an application-level FIFO
 * of messages that nanomsg refused with EAGAIN (no connection yet, or kernel
 * buffers full). Messages are never dropped silently: they wait in the queue
 * until sent, or until the peer is closed (then they are counted as dropped). */
typedef struct mq_msg {
    struct mq_msg *next;
    size_t len;
    uint8_t data[];
} mq_msg;

typedef void (*mq_peer_drain_cb)(mq_peer *p, void *arg);

struct mq_peer {
    uv_poll_t poll; /* on NN_SNDFD, started only while the queue is non-empty */
    int sock;
    int active;
    int polling;
    mq_msg *head, *tail;
    size_t queued_bytes;
    size_t queued_msgs;
    mq_peer_drain_cb drain_cb; /* queue became empty (may be NULL) */
    void *arg;
    void (*close_cb)(mq_peer *);
    uint64_t msgs_out;
    uint64_t bytes_out;
    uint64_t dropped_msgs; /* discarded at close */
};

typedef struct mq_peer_opts {
    int reconnect_ivl_ms;     /* first reconnect delay (default 100) */
    int reconnect_ivl_max_ms; /* backoff cap (default 2000) */
    int sndbuf;               /* NN_SNDBUF bytes, 0 = nanomsg default */
} mq_peer_opts;

/* Opens a PUSH socket connected to `url`. The connection is made in the
 * background; sends before it exists are queued. Returns 0 or a negative errno. */
int mq_peer_open(mq_peer *p, uv_loop_t *loop, const char *url, const mq_peer_opts *opts,
                 mq_peer_drain_cb drain_cb, void *arg);
/* Sends `len` bytes (copied). If the queue is empty, tries nn_send at once;
 * otherwise, or on EAGAIN, appends to the queue. Returns 0 (sent or queued) or
 * -ENOMEM / -EPIPE (peer closed); the bytes are not kept on error. */
int mq_peer_send(mq_peer *p, const void *data, size_t len);
/* Sends only if nanomsg takes the message now and nothing is queued; never
 * queues. Returns 0, -EAGAIN (not sent) or another negative errno. For messages
 * that are useless when late (heartbeats). */
int mq_peer_try_send(mq_peer *p, const void *data, size_t len);
/* Tries to send queued messages now (without waiting for the poll callback).
 * For code that waits synchronously. */
void mq_peer_kick(mq_peer *p);
/* The inbox's NN_RCVFD (readable while a message is waiting), for poll(2). */
int mq_inbox_fd(const mq_inbox *ib);
/* Receives one message without blocking: returns its length and sets *msg (free
 * it with mq_msg_free), or -EAGAIN, or another negative errno. */
long mq_inbox_recv(mq_inbox *ib, void **msg);
void mq_msg_free(void *msg);

/* 1 if nanomsg currently has a live connection to the peer (a hint only). */
int mq_peer_connected(const mq_peer *p);
/* Drops the queue (counted in dropped_msgs), closes the socket; close_cb (may be
 * NULL) runs when `p` may be freed. Idempotent. */
void mq_peer_close(mq_peer *p, void (*close_cb)(mq_peer *));

/* Formats "tcp://a.b.c.d:port" from a host-order IPv4 address. */
void mq_tcp_url(char *out, size_t outlen, uint32_t ip, uint16_t port);
/* Parses a dotted IPv4 literal into host order; 0 on success, -EINVAL otherwise. */
int mq_parse_ipv4(const char *s, uint32_t *ip);
/* Formats a host-order IPv4 address as dotted text (out >= 16 bytes). */
void mq_format_ipv4(char *out, size_t outlen, uint32_t ip);

#endif
