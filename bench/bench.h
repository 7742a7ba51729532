/* bench.h - state shared by the load generator's files (not a library).
 *
 * gw-bench.c  options, threads, the phase machine, the summary
 * modes.c     one set of handlers per mode (echo, broadcast, idle, connect, heartbeat)
 *
 * A run has one bthread per --threads, each with its own libuv loop (bench_loop) and
 * its share of the connections. Every thread goes through the same phases, driven by
 * a 10 ms tick: CONNECT (open its connections, bounded concurrency) -> BARRIER (wait
 * for every thread) -> WARMUP -> MEASURE -> DRAIN (no new load; wait for answers
 * still owed) -> CLOSE -> DONE. Only broadcast crosses threads (the completion
 * counters below, atomics, and a uv_async to wake the sender's thread).
 */
#ifndef GW_BENCH_BENCH_H
#define GW_BENCH_BENCH_H

#include "bench/client.h"
#include "bench/hist.h"
#include "bench/pstat.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define MAX_PORTS 64
#define MAX_SOURCES 4096
#define MAX_PIDS 16
#define PAYLOAD_HEAD 32 /* ts (16 hex) + seq (8 hex) + connection id (8 hex) */
#define PATTERN_PERIOD 64
#define TICK_MS 10

enum bench_mode {
    MODE_ECHO = 0,
    MODE_BROADCAST,
    MODE_IDLE,
    MODE_CONNECT,
    MODE_HEARTBEAT,
};

enum phase {
    P_CONNECT = 0,
    P_BARRIER,
    P_WARMUP,
    P_MEASURE,
    P_DRAIN,
    P_CLOSE,
    P_DONE,
};

/* Connection roles (bench_conn.role). */
enum role {
    R_NONE = 0,
    R_RECEIVER, /* broadcast */
    R_SENDER,   /* broadcast */
    R_SILENT,   /* heartbeat: never sends, never answers pings */
    R_BEATING,  /* heartbeat: sends the heartbeat message */
};

typedef struct opts {
    int mode;
    int proto;
    const char *host;
    struct sockaddr_in dst[MAX_PORTS];
    int ndst;
    struct sockaddr_in *src; /* NULL: kernel's choice */
    int nsrc;
    const char *path;
    uint32_t conns;
    uint32_t offset;
    uint32_t threads;
    uint32_t concurrency;
    uint32_t inflight;
    uint32_t size;
    double duration; /* < 0: not given */
    double warmup;
    double timeout;    /* connect phase and drain */
    uint64_t messages; /* 0: run for the duration */
    double rate;
    uint32_t window;
    const char *prefix;
    const char *hb_msg;
    double hb_interval;
    uint32_t beating;
    double interval;
    uint32_t limit;
    double early_tolerance; /* seconds */
    int from_handshake;     /* heartbeat: silent clients send nothing at all */
    double spread; /* heartbeat: seconds over which silent clients send their last message */
    uint32_t msgs_per_conn;
    int json;
    int verbose;
    pid_t pids[MAX_PIDS];
    int npids;
} opts;

typedef struct stats {
    uint64_t conn_ok, conn_fail, hs_fail;
    uint64_t closed_early;             /* ended by the server or an error while it should be open */
    uint64_t msgs_tx, msgs_rx;         /* during the measured window */
    uint64_t msgs_tx_all, msgs_rx_all; /* whole run */
    uint64_t mismatches, lost;
    uint64_t bc_sent, bc_done, stalls;
    uint64_t hb_sent, server_msgs;
    uint64_t handshakes; /* connect mode, in the window */
    uint64_t silent_closed, silent_early, not_closed, beating_closed;
    uint64_t silent_msgs;        /* heartbeat: last messages sent by silent clients */
    int64_t early_min_ns;        /* smallest close delay seen, signed (heartbeat) */
    uint64_t closes_by_code[3];  /* heartbeat: close frame / EOF / error */
    uint64_t pings_rx, pongs_tx; /* WebSocket pings from the server */
    uint64_t bytes_in, bytes_out, reads, writes; /* the generator's own i/o */
} stats;

typedef struct run run;

typedef struct bthread {
    run *r;
    int index;
    uv_thread_t tid;
    bench_loop bl;
    bench_conn *conns;
    uint32_t nconns; /* slots */
    uint32_t first;  /* global number of conns[0] (before --conn-offset) */
    uint32_t next_start;
    uint32_t connecting, live, resolved;
    uint64_t attempts; /* connect mode */
    uint64_t quota;    /* connect mode with --messages: this thread's handshakes */
    uv_timer_t tick;
    uv_timer_t pace; /* broadcast rate / heartbeat messages */
    uv_async_t wake; /* broadcast: completions from other threads */
    int pace_on, wake_on;
    int phase;
    int measuring;
    int stopping; /* no new load */
    uint64_t t_phase_deadline;
    uint64_t t_meas_start, t_meas_end;
    uint64_t t_load_start;
    uint64_t t_last_rx; /* last message received (ends a --messages window) */
    uint64_t pace_last;
    double tokens;
    uint32_t hb_pos;
    double hb_carry;
    uint32_t silent_pos; /* heartbeat: next silent client to send its last message */
    double silent_carry;
    bench_conn *sender;
    stats st;
    hist lat;  /* echo RTT, broadcast fan-out, connect-mode handshake, heartbeat delay */
    hist conn; /* connect time of persistent connections */
    hist aux;  /* broadcast: time until the last receiver got it */
} bthread;

struct run {
    opts o;
    bthread *threads;
    atomic_uint ready;
    atomic_uint receivers; /* broadcast: receivers open at load start */
    /* broadcast completion ring, o.window slots */
    atomic_uint *bc_left;
    _Atomic uint64_t *bc_ts; /* send time per slot (read by the receivers' threads) */
    atomic_int bc_outstanding;
    atomic_uint bc_total; /* broadcasts sent, final once bc_done_sending */
    atomic_int bc_done_sending;
    uint8_t *pattern; /* PATTERN_PERIOD + max payload bytes */
    /* accounting (thread 0) */
    pstat p_start[MAX_PIDS], p_m0[MAX_PIDS], p_m1[MAX_PIDS];
    double self_m0, self_m1;
};

/* ---- modes.c ---- */
typedef struct mode_ops {
    const char *name;
    bench_handlers h;
    /* on the thread, before its CONNECT phase (may be NULL) */
    void (*thread_start)(bthread *t);
    /* after the barrier; may start load at once */
    void (*load_start)(bthread *t);
    /* the measured window begins / ends (stop generating load at the end) */
    void (*measure_start)(bthread *t);
    void (*measure_end)(bthread *t);
    /* count-limited runs: 1 when all load was generated and answered (NULL: never) */
    int (*finished)(bthread *t);
    /* 1 when nothing is owed anymore */
    int (*drained)(bthread *t);
    /* drain over (drained or timed out): count what is missing */
    void (*drain_end)(bthread *t);
} mode_ops;

/* Call once before any thread starts. */
void modes_init(void);
const mode_ops *mode_get(int mode);

/* gw-bench.c services used by the modes */
/* A persistent connection of the CONNECT phase was resolved (opened or failed):
 * starts more, and moves to the barrier when all are resolved. */
void bench_connect_resolved(bthread *t);
/* Starts (or restarts) slot c with global number `id`; returns 0 or a negative error. */
int bench_start_conn(bthread *t, bench_conn *c, uint64_t id);

/* Payload helpers. Layout: 16 hex digits of send time, 8 of sequence number, 8 of
 * connection number, then the pattern (from an offset that depends on both). */
void payload_fill(const run *r, uint8_t *p, size_t len, uint64_t ts, uint32_t seq, uint32_t cid);
/* Parses and checks a payload; returns 0 and sets ts, seq and cid, or -1 when malformed
 * (not the expected layout or pattern). */
int payload_check(const run *r, const uint8_t *p, size_t len, uint64_t *ts, uint32_t *seq,
                  uint32_t *cid);

#endif
