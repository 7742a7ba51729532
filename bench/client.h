/* client.h - the load generator's wire-level client connections.
 *
 * One bench_loop per thread: a libuv loop, one shared read buffer, a list of
 * connections with output to write, and a fast PRNG for WebSocket mask keys. Many
 * bench_conn per loop, each speaking one protocol:
 *
 *   BP_WS     RFC 6455 client: HTTP upgrade with a random Sec-WebSocket-Key whose
 *             Sec-WebSocket-Accept is checked; every frame masked with a fresh key;
 *             server frames read with ws_reader (is_server = 0); pings answered with
 *             pongs (unless the connection is told to stay silent); close handshake.
 *   BP_TEXT   lines ending in "\n".
 *   BP_FRAME  4-byte big-endian length that includes itself, then the body.
 *
 * Output is coalesced: messages are appended to the connection's output buffer and
 * written once per loop iteration (a uv_prepare): uv_try_write first, one uv_write
 * for what the kernel did not take. Input is read into the loop's shared buffer and
 * decoded in place; only an incomplete frame is copied into the connection.
 *
 * Lifecycle of a connection slot: bench_conn_start -> on_open (WebSocket: after the
 * handshake; text/frame: once TCP connected) -> on_message* -> on_end (exactly once)
 * -> on_freed (libuv closed the handle; the slot may be started again). Everything
 * runs on the loop's thread; no function here blocks. Handlers may call any function
 * of this header, including bench_conn_close/abort on the connection being handled.
 */
#ifndef GW_BENCH_CLIENT_H
#define GW_BENCH_CLIENT_H

#include "common/buf.h"
#include "common/ws.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum bench_proto {
    BP_WS = 0,
    BP_TEXT = 1,
    BP_FRAME = 2,
};

enum bench_conn_state {
    BC_FREE = 0,   /* never started, or freed */
    BC_CONNECTING, /* TCP connect in progress */
    BC_HANDSHAKE,  /* WebSocket: upgrade request sent, waiting for 101 */
    BC_OPEN,
    BC_CLOSING, /* WebSocket: our close frame sent, waiting for the server's */
    BC_ENDED,   /* on_end called, uv_close requested */
};

/* Why a connection ended (on_end's `why`). */
enum bench_end {
    BE_CONNECT_FAIL = 1, /* TCP connect failed (code = UV error) */
    BE_HANDSHAKE_FAIL,   /* bad or refused upgrade response, or the server hung up first */
    BE_PEER_CLOSE,       /* server closed: close frame (code = its close code) or EOF (0) */
    BE_ERROR,            /* read/write error (code = UV error) or protocol error (-EPROTO) */
    BE_LOCAL,            /* we closed it (bench_conn_close/abort) */
};

enum bench_conn_flag {
    BCF_DIRTY = 0x01,   /* in the loop's dirty list */
    BCF_WRITING = 0x02, /* a uv_write is in flight */
    BCF_SILENT = 0x04,  /* do not answer pings (a "dead" client for heartbeat tests) */
};

typedef struct bench_loop bench_loop;
typedef struct bench_conn bench_conn;

typedef struct bench_handlers {
    /* The connection is usable (handshake done). `now` is uv_hrtime(). */
    void (*on_open)(bench_conn *c, uint64_t now);
    /* One complete message (data valid during the call; opcode WS_OP_TEXT/BINARY, or
     * WS_OP_TEXT for text/frame). */
    void (*on_message)(bench_conn *c, const uint8_t *data, size_t len, int opcode, uint64_t now);
    /* Called once per started connection (see enum bench_end for why/code). */
    void (*on_end)(bench_conn *c, int why, int code, uint64_t now);
    /* Optional: the handle is closed; the slot may be reused. */
    void (*on_freed)(bench_conn *c);
    /* Optional: a WebSocket ping arrived (already answered unless BCF_SILENT). */
    void (*on_ping)(bench_conn *c, uint64_t now);
} bench_handlers;

struct bench_conn {
    uv_tcp_t tcp; /* container_of gets us back */
    bench_loop *bl;
    uint8_t state; /* enum bench_conn_state */
    uint8_t flags; /* enum bench_conn_flag */
    uint8_t role;  /* free for the mode */
    uint8_t ended; /* start failed at once: report err from the close callback */
    int32_t err;
    uint32_t id; /* global connection number (set by the caller) */
    uint32_t dirty_idx;
    gw_buf in;   /* bytes of an incomplete frame/line/response */
    gw_buf out;  /* queued output */
    gw_buf wout; /* output handed to the uv_write in flight */
    union {
        uv_connect_t creq; /* while connecting */
        uv_write_t wreq;   /* afterwards */
    } u;
    ws_reader *ws; /* WebSocket, after the handshake */
    uint8_t wskey[16];
    /* Free for the mode: */
    uint64_t t0, t1;
    uint32_t tx, rx;
    uint32_t aux;
};

struct bench_loop {
    uv_loop_t loop;
    uv_prepare_t flush;
    const bench_handlers *h;
    void *user;
    int proto;
    const char *path; /* WebSocket request path */
    uint8_t *rbuf;
    size_t rbuf_size;
    bench_conn **dirty;
    uint32_t ndirty, dirty_cap;
    uint64_t rng;
    size_t keep_out;      /* output buffer capacity kept between writes */
    uint64_t max_message; /* WebSocket reader limit */
    /* msg_begin/msg_end state */
    size_t pend_off;
    size_t pend_hlen;
    uint8_t pend_mask[4];
    /* counters */
    uint64_t bytes_in, bytes_out, reads, writes_try, writes_async;
    uint64_t pings_rx, pongs_tx;
};

/* Prepares a loop (uv_loop_init, the flush prepare handle, a 256 KiB read buffer).
 * h and path (read only) must outlive the loop. seed picks the mask key sequence.
 * Returns 0 or a negative UV error (nothing to deinit then). Call from the thread
 * that will run it. */
int bench_loop_init(bench_loop *bl, int proto, const bench_handlers *h, void *user,
                    const char *path, uint64_t seed);

/* Closes the loop's own handles, runs the loop until every handle is closed and
 * frees its memory. Every connection must have been freed (or aborted) first. */
void bench_loop_deinit(bench_loop *bl);

/* A fast PRNG (xorshift64*). */
static inline uint64_t bench_rand(bench_loop *bl)
{
    uint64_t x = bl->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    bl->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Starts connecting c (a zeroed or freed slot; c->id and the mode fields are the
 * caller's) to dst, from src when not NULL (bound before connect with
 * IP_BIND_ADDRESS_NO_PORT, so the port is chosen per destination). Returns 0 when
 * the attempt is under way: on_end and on_freed then follow exactly once each (also
 * for failures found at once, which are reported from the next loop iteration).
 * Returns a negative UV error (EMFILE...) when no handle could be made: no callback
 * follows and the slot stays free. */
int bench_conn_start(bench_conn *c, bench_loop *bl, const struct sockaddr_in *dst,
                     const struct sockaddr_in *src);

/* Reserves room for one message of len payload bytes in c's output, writes its header
 * and returns where the payload goes (len writable bytes), or NULL when out of memory.
 * Fill it, then call bench_conn_msg_end (before any other send on this loop). */
uint8_t *bench_conn_msg_begin(bench_conn *c, size_t len);
/* Completes the message begun last: masks it (WebSocket), adds the line end (text)
 * and queues it for this iteration's write. */
void bench_conn_msg_end(bench_conn *c);

/* Queues one message (copied). Returns 0, -ENOMEM, or -ENOTCONN when c is not open. */
int bench_conn_send(bench_conn *c, const void *data, size_t len);

/* Closes gracefully: WebSocket sends a close frame (1000) and waits for the server's
 * close frame or EOF, then on_end(BE_LOCAL) (bench_conn_abort ends the wait);
 * text/frame try to write what is queued and call on_end(BE_LOCAL) before returning.
 * Idempotent. */
void bench_conn_close(bench_conn *c);

/* Closes at once (queued output dropped). on_end(BE_LOCAL) is called before it
 * returns, unless on_end was already called. Idempotent. */
void bench_conn_abort(bench_conn *c);

/* Writes the output of every dirty connection now (also done by the loop's prepare
 * handle once per iteration). */
void bench_loop_flush(bench_loop *bl);

#endif
