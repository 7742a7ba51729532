/* modes.c - the load generator's modes: one set of handlers each (see bench.h). */
#include "bench/bench.h"

#include "common/alloc.h"

#include <errno.h>
#include <string.h>

/* ---- payload ---- */

static const char hexdig[16] = "0123456789abcdef";

/* Value of a lowercase hex digit, or 0xff. Filled on first use (no static init order). */
static uint8_t hexval[256];
static uint16_t hexpair[256]; /* byte -> its two digits, in memory order */

static void hex_tables(void)
{
    if (hexval['1'] == 1)
        return;
    memset(hexval, 0xff, sizeof hexval);
    for (int i = 0; i < 16; i++)
        hexval[(uint8_t)hexdig[i]] = (uint8_t)i;
    for (int b = 0; b < 256; b++) {
        uint8_t d[2] = {(uint8_t)hexdig[b >> 4], (uint8_t)hexdig[b & 15]};
        memcpy(&hexpair[b], d, 2);
    }
}

static void put_hex(uint8_t *p, uint64_t v, int digits)
{
    for (int i = digits - 2; i >= 0; i -= 2) {
        memcpy(p + i, &hexpair[v & 0xff], 2);
        v >>= 8;
    }
}

static int get_hex(const uint8_t *p, int digits, uint64_t *out)
{
    uint64_t v = 0;
    unsigned bad = 0;
    for (int i = 0; i < digits; i++) {
        uint8_t d = hexval[p[i]];
        bad |= d;
        v = v << 4 | (d & 15);
    }
    if (bad & 0xf0)
        return -1;
    *out = v;
    return 0;
}

static size_t pattern_off(uint32_t seq, uint32_t cid)
{
    return (seq + cid * 7u) % PATTERN_PERIOD;
}

void payload_fill(const run *r, uint8_t *p, size_t len, uint64_t ts, uint32_t seq, uint32_t cid)
{
    put_hex(p, ts, 16);
    put_hex(p + 16, seq, 8);
    put_hex(p + 24, cid, 8);
    if (len > PAYLOAD_HEAD)
        memcpy(p + PAYLOAD_HEAD, r->pattern + pattern_off(seq, cid), len - PAYLOAD_HEAD);
}

int payload_check(const run *r, const uint8_t *p, size_t len, uint64_t *ts, uint32_t *seq,
                  uint32_t *cid)
{
    uint64_t s, c;
    if (len < PAYLOAD_HEAD || get_hex(p, 16, ts) < 0 || get_hex(p + 16, 8, &s) < 0 ||
        get_hex(p + 24, 8, &c) < 0)
        return -1;
    *seq = (uint32_t)s;
    *cid = (uint32_t)c;
    if (len > PAYLOAD_HEAD &&
        memcmp(p + PAYLOAD_HEAD, r->pattern + pattern_off(*seq, *cid), len - PAYLOAD_HEAD) != 0)
        return -1;
    return 0;
}

/* ---- shared connection bookkeeping ---- */

/* A persistent connection opened (CONNECT phase or later). */
static void common_open(bthread *t, bench_conn *c, uint64_t now)
{
    c->t1 = now;
    t->st.conn_ok++;
    hist_record(&t->conn, now - c->t0);
    bench_connect_resolved(t);
}

/* Returns 1 when the connection had been open (the mode then judges the end). */
static int common_end(bthread *t, bench_conn *c, int why)
{
    if (c->t1 != 0)
        return 1;
    t->st.conn_fail++;
    if (why == BE_HANDSHAKE_FAIL)
        t->st.hs_fail++;
    bench_connect_resolved(t);
    return 0;
}

static void common_freed(bench_conn *c)
{
    bthread *t = c->bl->user;
    t->live--;
}

/* An end while the connection should be open. */
static void end_early(bthread *t, bench_conn *c, int why)
{
    if (why != BE_LOCAL && t->phase < P_CLOSE)
        t->st.closed_early++;
    (void)c;
}

/* Checks a message's sequence number against the next one expected: a skip counts the
 * skipped messages as lost (returns 0: accept, rx moves on), an older number is a
 * mismatch (duplicate or reordered; returns -1). */
static int seq_gap(bthread *t, bench_conn *c, uint32_t seq)
{
    if (seq == c->rx)
        return 0;
    if ((int32_t)(seq - c->rx) > 0) {
        t->st.lost += seq - c->rx;
        return 0;
    }
    t->st.mismatches++;
    return -1;
}

static int nothing_owed(bthread *t)
{
    (void)t;
    return 1;
}

static void nop(bthread *t)
{
    (void)t;
}

/* ---- echo ---- */

static void echo_send(bthread *t, bench_conn *c, uint64_t now)
{
    run *r = t->r;
    uint8_t *p = bench_conn_msg_begin(c, r->o.size);
    if (p == NULL) {
        bench_conn_abort(c);
        return;
    }
    payload_fill(r, p, r->o.size, now, c->tx, c->id);
    bench_conn_msg_end(c);
    c->tx++;
    t->st.msgs_tx_all++;
    if (t->measuring)
        t->st.msgs_tx++;
}

static void echo_open(bench_conn *c, uint64_t now)
{
    common_open(c->bl->user, c, now);
}

static void echo_message(bench_conn *c, const uint8_t *data, size_t len, int opcode, uint64_t now)
{
    bthread *t = c->bl->user;
    run *r = t->r;
    (void)opcode;
    uint64_t ts;
    uint32_t seq, cid;
    t->st.msgs_rx_all++;
    t->t_last_rx = now;
    if (len != r->o.size || payload_check(r, data, len, &ts, &seq, &cid) < 0 || cid != c->id) {
        t->st.mismatches++;
        c->rx++;
    } else {
        if (seq_gap(t, c, seq) == 0)
            c->rx = seq + 1;
        if (t->measuring) {
            t->st.msgs_rx++;
            hist_record(&t->lat, now - ts);
        }
    }
    if (!t->stopping && c->tx < c->aux)
        echo_send(t, c, now);
}

static void echo_end(bench_conn *c, int why, int code, uint64_t now)
{
    bthread *t = c->bl->user;
    (void)code;
    (void)now;
    if (common_end(t, c, why))
        end_early(t, c, why);
}

static void echo_load_start(bthread *t)
{
    uint64_t now = uv_hrtime();
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->state != BC_OPEN)
            continue;
        for (uint32_t k = 0; k < t->r->o.inflight && c->tx < c->aux; k++)
            echo_send(t, c, now);
    }
}

static void echo_measure_end(bthread *t)
{
    t->stopping = 1;
}

static int echo_drained(bthread *t)
{
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->state == BC_OPEN && c->rx != c->tx)
            return 0;
    }
    return 1;
}

static int echo_finished(bthread *t)
{
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->state == BC_OPEN && (c->tx < c->aux || c->rx != c->tx))
            return 0;
    }
    return 1;
}

static void echo_drain_end(bthread *t)
{
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->tx > c->rx)
            t->st.lost += c->tx - c->rx;
    }
}

/* ---- broadcast ---- */

static void bc_send_more(bthread *t);

static void bc_publish_done(bthread *t)
{
    run *r = t->r;
    if (atomic_load(&r->bc_done_sending))
        return;
    atomic_store(&r->bc_total, (unsigned)t->st.bc_sent);
    atomic_store(&r->bc_done_sending, 1);
}

static void bc_send_more(bthread *t)
{
    run *r = t->r;
    bench_conn *s = t->sender;
    if (s == NULL || s->state != BC_OPEN)
        return;
    size_t plen = strlen(r->o.prefix);
    uint64_t now = uv_hrtime();
    while (!t->stopping && atomic_load(&r->bc_outstanding) < (int)r->o.window) {
        if (r->o.messages && t->st.bc_sent >= r->o.messages) {
            bc_publish_done(t);
            return;
        }
        if (r->o.rate > 0) {
            if (t->tokens < 1.0)
                return;
            t->tokens -= 1.0;
        }
        uint32_t seq = (uint32_t)t->st.bc_sent;
        uint32_t slot = seq % r->o.window;
        atomic_store(&r->bc_left[slot], atomic_load(&r->receivers));
        atomic_store_explicit(&r->bc_ts[slot], now, memory_order_relaxed);
        atomic_fetch_add(&r->bc_outstanding, 1);
        uint8_t *p = bench_conn_msg_begin(s, plen + r->o.size);
        if (p == NULL) {
            bench_conn_abort(s);
            return;
        }
        memcpy(p, r->o.prefix, plen);
        payload_fill(r, p + plen, r->o.size, now, seq, s->id);
        bench_conn_msg_end(s);
        t->st.bc_sent++;
        t->st.msgs_tx_all++;
        if (t->measuring)
            t->st.msgs_tx++;
        s->aux = (uint32_t)(now / 1000000); /* last progress, ms */
    }
}

static void bc_wake_cb(uv_async_t *a)
{
    bthread *t = container_of(a, bthread, wake);
    bc_send_more(t);
}

static void bc_pace_cb(uv_timer_t *tm)
{
    bthread *t = container_of(tm, bthread, pace);
    uint64_t now = uv_hrtime();
    t->tokens += t->r->o.rate * (double)(now - t->pace_last) / 1e9;
    if (t->tokens > t->r->o.window)
        t->tokens = t->r->o.window;
    t->pace_last = now;
    bc_send_more(t);
}

/* One receiver is done with broadcast `seq`; the last one completes it. */
static void bc_delivered(bthread *t, uint32_t seq, uint64_t now)
{
    run *r = t->r;
    uint32_t slot = seq % r->o.window;
    if (atomic_fetch_sub(&r->bc_left[slot], 1) != 1)
        return;
    t->st.bc_done++;
    if (t->measuring)
        hist_record(&t->aux, now - atomic_load_explicit(&r->bc_ts[slot], memory_order_relaxed));
    atomic_fetch_sub(&r->bc_outstanding, 1);
    if (t->index == 0)
        bc_send_more(t);
    else
        uv_async_send(&r->threads[0].wake);
}

static void bc_open(bench_conn *c, uint64_t now)
{
    common_open(c->bl->user, c, now);
}

static void bc_message(bench_conn *c, const uint8_t *data, size_t len, int opcode, uint64_t now)
{
    bthread *t = c->bl->user;
    run *r = t->r;
    (void)opcode;
    if (c->role != R_RECEIVER) {
        t->st.server_msgs++; /* the sender is excluded by the module: unexpected */
        return;
    }
    size_t plen = strlen(r->o.prefix);
    uint64_t ts;
    uint32_t seq, cid;
    t->st.msgs_rx_all++;
    t->t_last_rx = now;
    if (len != plen + r->o.size || memcmp(data, r->o.prefix, plen) != 0 ||
        payload_check(r, data + plen, len - plen, &ts, &seq, &cid) < 0 ||
        cid != r->threads[0].sender->id) {
        t->st.mismatches++;
        return;
    }
    uint32_t expected = c->rx;
    if (seq_gap(t, c, seq) < 0)
        return; /* a duplicate: its slot was counted already */
    /* Broadcasts this receiver missed (counted lost) are done as far as it goes. */
    for (uint32_t s = expected; s != seq && seq - s <= r->o.window; s++)
        bc_delivered(t, s, now);
    c->rx = seq + 1;
    if (t->measuring) {
        t->st.msgs_rx++;
        hist_record(&t->lat, now - ts);
    }
    bc_delivered(t, seq, now);
}

static void bc_end(bench_conn *c, int why, int code, uint64_t now)
{
    bthread *t = c->bl->user;
    (void)code;
    (void)now;
    if (common_end(t, c, why))
        end_early(t, c, why);
    if (c->role == R_RECEIVER && c->t1 != 0)
        atomic_fetch_sub(&t->r->receivers, 1);
}

static void bc_load_start(bthread *t)
{
    if (t->index != 0)
        return;
    t->pace_last = uv_hrtime();
    t->sender->aux = (uint32_t)(t->pace_last / 1000000);
    if (t->r->o.rate > 0) {
        t->tokens = 1.0;
        uv_timer_start(&t->pace, bc_pace_cb, 1, 1);
        t->pace_on = 1;
    }
    bc_send_more(t);
}

static void bc_measure_end(bthread *t)
{
    t->stopping = 1;
    if (t->index == 0)
        bc_publish_done(t);
}

/* Thread 0 also watches for a stall (a broadcast not complete after the timeout). */
static int bc_stalled(bthread *t)
{
    run *r = t->r;
    if (t->index != 0 || t->sender == NULL || atomic_load(&r->bc_outstanding) == 0)
        return 0;
    uint32_t now_ms = (uint32_t)(uv_hrtime() / 1000000);
    if ((double)(now_ms - t->sender->aux) < r->o.timeout * 1000)
        return 0;
    t->st.stalls++;
    t->stopping = 1;
    bc_publish_done(t);
    return 1;
}

static int bc_drained(bthread *t)
{
    run *r = t->r;
    bc_stalled(t);
    if (!atomic_load(&r->bc_done_sending))
        return 0;
    uint32_t total = atomic_load(&r->bc_total);
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->role == R_RECEIVER && c->state == BC_OPEN && c->rx != total)
            return 0;
    }
    return 1;
}

static void bc_drain_end(bthread *t)
{
    run *r = t->r;
    if (t->index == 0)
        bc_publish_done(t);
    uint32_t total = atomic_load(&r->bc_total);
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->role == R_RECEIVER && c->t1 != 0 && c->rx < total)
            t->st.lost += total - c->rx;
    }
}

static int bc_finished(bthread *t)
{
    return bc_drained(t);
}

/* ---- idle and heartbeat: holding connections ---- */

/* Sends the heartbeat message to the share of (beating) connections due this tick. */
/* Heartbeat mode: each silent client sends one last message, spread over the first
 * second of the load (a quarter of interval x limit if shorter; --spread), and its close delay is
 * measured from that send rather than from the handshake: the send time is taken while
 * the generator's loop is quiet and always precedes the server's read of it, so a close
 * measured as early really was early. */
static void silent_last_messages(bthread *t, size_t len)
{
    run *r = t->r;
    if (t->silent_pos >= t->nconns)
        return;
    double spread = r->o.spread; /* --spread; default min(1 s, interval x limit / 4) */
    double per_tick = (double)t->nconns * (TICK_MS * 5 / 1000.0) / spread + t->silent_carry;
    uint32_t n = (uint32_t)per_tick;
    t->silent_carry = per_tick - n;
    uint64_t now = uv_hrtime();
    for (; n > 0 && t->silent_pos < t->nconns; n--) {
        bench_conn *c = &t->conns[t->silent_pos++];
        if (c->state != BC_OPEN || c->role != R_SILENT)
            continue;
        if (bench_conn_send(c, r->o.hb_msg, len) == 0) {
            c->t1 = now; /* written in this loop iteration's flush */
            t->st.silent_msgs++;
        }
    }
}

/* Sends the heartbeat message to the share of (beating) connections due this tick. */
static void hb_pace_cb(uv_timer_t *tm)
{
    bthread *t = container_of(tm, bthread, pace);
    run *r = t->r;
    if (t->nconns == 0 || t->phase >= P_DRAIN)
        return;
    size_t len = strlen(r->o.hb_msg);
    if (r->o.mode == MODE_HEARTBEAT && !r->o.from_handshake && t->phase == P_MEASURE)
        silent_last_messages(t, len);
    if (r->o.hb_interval <= 0)
        return;
    double per_tick = (double)t->nconns * (TICK_MS * 5 / 1000.0) / r->o.hb_interval + t->hb_carry;
    uint32_t n = (uint32_t)per_tick;
    t->hb_carry = per_tick - n;
    if (n > t->nconns)
        n = t->nconns;
    for (uint32_t i = 0; i < n; i++) {
        bench_conn *c = &t->conns[t->hb_pos];
        t->hb_pos = (t->hb_pos + 1) % t->nconns;
        if (c->state != BC_OPEN || c->role == R_SILENT)
            continue;
        if (bench_conn_send(c, r->o.hb_msg, len) == 0)
            t->st.hb_sent++;
    }
}

static void hb_thread_start(bthread *t)
{
    run *r = t->r;
    if (r->o.hb_msg == NULL || r->o.hb_msg[0] == '\0')
        return;
    if (r->o.hb_interval <= 0 && (r->o.mode != MODE_HEARTBEAT || r->o.from_handshake))
        return;
    uv_timer_start(&t->pace, hb_pace_cb, TICK_MS * 5, TICK_MS * 5);
    t->pace_on = 1;
}

static void idle_open(bench_conn *c, uint64_t now)
{
    common_open(c->bl->user, c, now);
}

static void idle_message(bench_conn *c, const uint8_t *data, size_t len, int opcode, uint64_t now)
{
    bthread *t = c->bl->user;
    (void)data;
    (void)len;
    (void)opcode;
    (void)now;
    t->st.server_msgs++;
    t->st.msgs_rx_all++;
}

static void idle_end(bench_conn *c, int why, int code, uint64_t now)
{
    bthread *t = c->bl->user;
    (void)code;
    (void)now;
    if (common_end(t, c, why))
        end_early(t, c, why);
}

static void hb_end(bench_conn *c, int why, int code, uint64_t now)
{
    bthread *t = c->bl->user;
    run *r = t->r;
    if (!common_end(t, c, why))
        return;
    if (c->role == R_BEATING) {
        if (why != BE_LOCAL)
            t->st.beating_closed++;
        return;
    }
    if (why == BE_LOCAL)
        return; /* still open at the end: counted by hb_drain_end */
    t->st.silent_closed++;
    t->st.closes_by_code[why == BE_PEER_CLOSE ? (code ? 0 : 1) : 2]++;
    int64_t expect = (int64_t)(r->o.interval * r->o.limit * 1e9);
    int64_t delay = (int64_t)(now - c->t1) - expect;
    if (delay < t->st.early_min_ns)
        t->st.early_min_ns = delay;
    /* The client sees the handshake end a little after the server does. */
    if (delay < -(int64_t)(r->o.early_tolerance * 1e9))
        t->st.silent_early++;
    hist_record(&t->lat, delay > 0 ? (uint64_t)delay : 0);
}

static void hb_drain_end(bthread *t)
{
    for (uint32_t i = 0; i < t->nconns; i++) {
        bench_conn *c = &t->conns[i];
        if (c->role == R_SILENT && c->state == BC_OPEN)
            t->st.not_closed++;
    }
}

/* ---- connect ---- */

static void cn_open(bench_conn *c, uint64_t now)
{
    bthread *t = c->bl->user;
    run *r = t->r;
    c->t1 = now;
    t->st.conn_ok++;
    if (t->measuring) {
        t->st.handshakes++;
        hist_record(&t->lat, now - c->t0);
    }
    hist_record(&t->conn, now - c->t0);
    c->tx = c->rx = 0;
    if (r->o.msgs_per_conn == 0) {
        bench_conn_close(c);
        return;
    }
    echo_send(t, c, now);
}

static void cn_message(bench_conn *c, const uint8_t *data, size_t len, int opcode, uint64_t now)
{
    bthread *t = c->bl->user;
    run *r = t->r;
    uint64_t ts;
    uint32_t seq, cid;
    (void)opcode;
    t->st.msgs_rx_all++;
    if (len != r->o.size || payload_check(r, data, len, &ts, &seq, &cid) < 0 || cid != c->id ||
        seq != c->rx)
        t->st.mismatches++;
    c->rx++;
    if (c->rx >= r->o.msgs_per_conn)
        bench_conn_close(c);
    else
        echo_send(t, c, now);
}

static void cn_end(bench_conn *c, int why, int code, uint64_t now)
{
    bthread *t = c->bl->user;
    (void)code;
    (void)now;
    if (c->t1 == 0) {
        t->st.conn_fail++;
        if (why == BE_HANDSHAKE_FAIL)
            t->st.hs_fail++;
        return;
    }
    if (why != BE_LOCAL)
        t->st.closed_early++;
    if (c->rx < c->tx)
        t->st.lost += c->tx - c->rx;
}

static void cn_freed(bench_conn *c)
{
    bthread *t = c->bl->user;
    t->live--;
    if (t->stopping || t->phase >= P_DRAIN)
        return;
    if (t->quota && t->attempts >= t->quota)
        return;
    uint64_t id = t->r->o.offset + (uint64_t)t->index + t->attempts * t->r->o.threads;
    t->attempts++;
    if (bench_start_conn(t, c, id) < 0)
        t->st.conn_fail++;
}

static void cn_load_start(bthread *t)
{
    for (uint32_t i = 0; i < t->nconns && (t->quota == 0 || t->attempts < t->quota); i++) {
        uint64_t id = t->r->o.offset + (uint64_t)t->index + t->attempts * t->r->o.threads;
        t->attempts++;
        if (bench_start_conn(t, &t->conns[i], id) < 0)
            t->st.conn_fail++;
    }
}

static void cn_measure_end(bthread *t)
{
    t->stopping = 1;
}

static int cn_drained(bthread *t)
{
    return t->live == 0;
}

static int cn_finished(bthread *t)
{
    return t->quota && t->attempts >= t->quota && t->live == 0;
}

/* ---- table ---- */

static void bc_thread_start(bthread *t)
{
    if (t->index == 0) {
        uv_async_init(&t->bl.loop, &t->wake, bc_wake_cb);
        t->wake_on = 1;
    }
}

static const mode_ops modes[] = {
    [MODE_ECHO] =
        {
            .name = "echo",
            .h = {.on_open = echo_open,
                  .on_message = echo_message,
                  .on_end = echo_end,
                  .on_freed = common_freed},
            .load_start = echo_load_start,
            .measure_start = nop,
            .measure_end = echo_measure_end,
            .finished = echo_finished,
            .drained = echo_drained,
            .drain_end = echo_drain_end,
        },
    [MODE_BROADCAST] =
        {
            .name = "broadcast",
            .h = {.on_open = bc_open,
                  .on_message = bc_message,
                  .on_end = bc_end,
                  .on_freed = common_freed},
            .thread_start = bc_thread_start,
            .load_start = bc_load_start,
            .measure_start = nop,
            .measure_end = bc_measure_end,
            .finished = bc_finished,
            .drained = bc_drained,
            .drain_end = bc_drain_end,
        },
    [MODE_IDLE] =
        {
            .name = "idle",
            .h = {.on_open = idle_open,
                  .on_message = idle_message,
                  .on_end = idle_end,
                  .on_freed = common_freed},
            .thread_start = hb_thread_start,
            .load_start = nop,
            .measure_start = nop,
            .measure_end = nop,
            .drained = nothing_owed,
            .drain_end = nop,
        },
    [MODE_CONNECT] =
        {
            .name = "connect",
            .h = {.on_open = cn_open,
                  .on_message = cn_message,
                  .on_end = cn_end,
                  .on_freed = cn_freed},
            .load_start = cn_load_start,
            .measure_start = nop,
            .measure_end = cn_measure_end,
            .finished = cn_finished,
            .drained = cn_drained,
            .drain_end = nop,
        },
    [MODE_HEARTBEAT] =
        {
            .name = "heartbeat",
            .h = {.on_open = idle_open,
                  .on_message = idle_message,
                  .on_end = hb_end,
                  .on_freed = common_freed},
            .thread_start = hb_thread_start,
            .load_start = nop,
            .measure_start = nop,
            .measure_end = nop,
            .drained = nothing_owed,
            .drain_end = hb_drain_end,
        },
};

void modes_init(void)
{
    hex_tables();
}

const mode_ops *mode_get(int mode)
{
    return &modes[mode];
}
