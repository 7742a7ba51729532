/* conn.c - one client connection of the gateway.
 *
 * Input: libuv reads into the gateway's shared buffer; complete messages are
 * decoded in place (WebSocket payloads unmasked in place) and forwarded at once;
 * only the bytes of an incomplete frame/line are copied into the connection's own
 * buffer, which exists only while such a partial frame does.
 *
 * Output: every message is a reference to a shared block (gw_sbuf), so a
 * broadcast is framed once and queued to every client by reference. Queued
 * blocks are written once per loop iteration (gateway.c's uv_prepare) with
 * uv_try_write (writev) and, for what the kernel does not take, one uv_write.
 *
 * Heartbeat: a message stores its arrival time (O(1)); the connection's wheel
 * entry fires at its next deadline and is moved only then.
 */
#include "common/alloc.h"
#include "common/http.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/jutil.h"
#include "gateway/static.h"
#include "gateway/gateway_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#define IOV_BATCH 64
#define CLOSE_LINGER_MS 2000

static void conn_closed_cb(uv_handle_t *h);
static void leave_open(gw_conn *c);

/* ---- framing ---- */

gw_sbuf *conn_frame_shared(int proto, const uint8_t *data, size_t len, uint16_t aux)
{
    if (aux & WIRE_MSG_RAW) {
        gw_sbuf *sb = gw_sbuf_new(len);
        if (sb && len)
            memcpy(sb->data, data, len);
        return sb;
    }
    uint8_t hdr[WS_MAX_HEADER];
    size_t hlen = 0, tlen = 0;
    switch (proto) {
    case GW_PROTO_WEBSOCKET:
        hlen = ws_frame_header_encode(hdr, 1, (aux & WIRE_MSG_BINARY) ? WS_OP_BINARY : WS_OP_TEXT,
                                      len, NULL);
        break;
    case GW_PROTO_TEXT:
        tlen = 1;
        break;
    case GW_PROTO_FRAME:
        if (len > UINT32_MAX - 4)
            return NULL;
        gw_store_be32(hdr, (uint32_t)(len + 4));
        hlen = 4;
        break;
    }
    gw_sbuf *sb = gw_sbuf_new(hlen + len + tlen);
    if (sb == NULL)
        return NULL;
    memcpy(sb->data, hdr, hlen);
    if (len)
        memcpy(sb->data + hlen, data, len);
    if (tlen)
        sb->data[hlen + len] = '\n';
    return sb;
}

static gw_sbuf *sbuf_copy(const void *p, size_t n)
{
    gw_sbuf *sb = gw_sbuf_new(n);
    if (sb && n)
        memcpy(sb->data, p, n);
    return sb;
}

/* ---- output queue ---- */

static int out_push(gw_conn *c, gw_sbuf *sb, int front)
{
    if (c->out_n == c->out_cap) {
        uint32_t cap = c->out_cap ? c->out_cap * 2 : 4;
        out_chunk *o = gw_realloc(c->out, cap * sizeof *o);
        if (o == NULL)
            return -ENOMEM;
        c->out = o;
        c->out_cap = cap;
    }
    if (front) {
        /* Only before anything was written (the handshake response). */
        memmove(c->out + 1, c->out, c->out_n * sizeof *c->out);
        c->out[0] = (out_chunk){sb, 0};
    } else {
        c->out[c->out_n] = (out_chunk){sb, 0};
    }
    c->out_n++;
    c->out_bytes += sb->len;
    gw_mark_dirty(c->gw, c);
    return 0;
}

static void out_release(gw_conn *c, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        c->out_bytes -= c->out[i].sb->len - c->out[i].off;
        gw_sbuf_unref(c->out[i].sb);
    }
}

static void out_clear(gw_conn *c)
{
    out_release(c, 0, c->out_n);
    c->out_n = 0;
    c->inflight_n = 0;
    c->out_bytes = 0;
    gw_free(c->out);
    c->out = NULL;
    c->out_cap = 0;
}

/* Drops `n` written bytes from the head of the queue. */
static void out_advance(gw_conn *c, size_t n)
{
    uint32_t done = 0;
    while (done < c->out_n && n > 0) {
        out_chunk *o = &c->out[done];
        size_t left = o->sb->len - o->off;
        if (n >= left) {
            n -= left;
            c->out_bytes -= left;
            gw_sbuf_unref(o->sb);
            done++;
        } else {
            o->off += (uint32_t)n;
            c->out_bytes -= n;
            n = 0;
        }
    }
    if (done) {
        memmove(c->out, c->out + done, (c->out_n - done) * sizeof *c->out);
        c->out_n -= done;
    }
    if (c->out_n == 0 && c->out_cap > 8) {
        gw_free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
}

static uint32_t fill_iov(gw_conn *c, uv_buf_t *iov, uint32_t max)
{
    uint32_t n = c->out_n < max ? c->out_n : max;
    for (uint32_t i = 0; i < n; i++)
        iov[i] = uv_buf_init((char *)c->out[i].sb->data + c->out[i].off,
                             c->out[i].sb->len - c->out[i].off);
    return n;
}

static void finish_output(gw_conn *c);

static void write_cb(uv_write_t *req, int status)
{
    gw_conn *c = req->data;
    c->flags &= ~CF_WRITING;
    if (c->state == CONN_CLOSED)
        return; /* cancelled by the close: chunks already released */
    uint32_t n = c->inflight_n;
    c->inflight_n = 0;
    if (status < 0) {
        conn_destroy(c, uv_strerror(status));
        return;
    }
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += c->out[i].sb->len - c->out[i].off;
    c->gw->stats.bytes_out += bytes;
    out_advance(c, bytes);
    if (c->out_n)
        gw_mark_dirty(c->gw, c);
    else
        finish_output(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    gw_conn *c = req->data;
    gw_free(req);
    if (c->state == CONN_CLOSED)
        return;
    if (status < 0)
        conn_destroy(c, NULL);
    /* Otherwise wait for the client's EOF (read_cb) or the linger deadline. */
}

/* The queue is empty: release the write request; close if a close was asked. */
static void finish_output(gw_conn *c)
{
    if (c->wreq && !(c->flags & CF_WRITING)) {
        gw_free(c->wreq);
        c->wreq = NULL;
    }
    if (!(c->flags & CF_SHUTDOWN) || c->state != CONN_CLOSING)
        return;
    c->flags &= ~CF_SHUTDOWN;
    uv_shutdown_t *sr = gw_malloc(sizeof *sr);
    if (sr == NULL) {
        conn_destroy(c, NULL);
        return;
    }
    sr->data = c;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
        gw_free(sr);
        conn_destroy(c, NULL);
    }
}

void conn_flush(gw_conn *c)
{
    if (c->flags & CF_WRITING)
        return;
    if (c->state != CONN_OPEN && c->state != CONN_CLOSING)
        return; /* held until the WebSocket handshake is answered */
    if (c->out_n == 0) {
        finish_output(c);
        return;
    }
    uv_buf_t iov[IOV_BATCH];
    uint32_t n = fill_iov(c, iov, IOV_BATCH);
    int w = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
    if (w < 0 && w != UV_EAGAIN) {
        conn_destroy(c, uv_strerror(w));
        return;
    }
    if (w > 0) {
        c->gw->stats.bytes_out += (uint64_t)w;
        out_advance(c, (size_t)w);
    }
    if (c->out_n == 0) {
        finish_output(c);
        return;
    }
    /* The kernel is full: hand the rest (one batch) to libuv. */
    if (c->wreq == NULL) {
        c->wreq = gw_malloc(sizeof *c->wreq);
        if (c->wreq == NULL) {
            conn_destroy(c, "out of memory");
            return;
        }
    }
    c->wreq->data = c;
    n = fill_iov(c, iov, IOV_BATCH);
    int rc = uv_write(c->wreq, (uv_stream_t *)&c->tcp, iov, n, write_cb);
    if (rc < 0) {
        conn_destroy(c, uv_strerror(rc));
        return;
    }
    c->inflight_n = n;
    c->flags |= CF_WRITING;
}

static int over_limit(gw_conn *c, size_t add)
{
    const gw_gateway_config *g = &c->gw->cfg->gateway;
    if (c->out_bytes + add <= g->send_buffer_limit)
        return 0;
    if (g->slow_client_policy == GW_SLOW_DROP) {
        c->gw->stats.dropped_slow++;
        return 1;
    }
    c->gw->stats.slow_closes++;
    LOG_RL(GW_LOG_WARN, "GW-SLOW-CLIENT",
           "client %u closed: %zu bytes queued exceed send_buffer_limit %zu", c->id,
           c->out_bytes + add, g->send_buffer_limit);
    conn_destroy(c, NULL);
    return 2;
}

int conn_send(gw_conn *c, const uint8_t *data, size_t len, uint16_t aux)
{
    if (c->state >= CONN_CLOSING)
        return 1;
    int r = over_limit(c, len);
    if (r)
        return r;
    gw_sbuf *sb = conn_frame_shared(c->proto, data, len, aux);
    if (sb == NULL || out_push(c, sb, 0) < 0) {
        gw_sbuf_unref(sb);
        conn_destroy(c, "out of memory");
        return 2;
    }
    c->gw->stats.msgs_out++;
    return 0;
}

int conn_send_shared(gw_conn *c, gw_sbuf *sb)
{
    if (c->state >= CONN_CLOSING)
        return 1;
    int r = over_limit(c, sb->len);
    if (r)
        return r;
    if (out_push(c, gw_sbuf_ref(sb), 0) < 0) {
        gw_sbuf_unref(sb);
        conn_destroy(c, "out of memory");
        return 2;
    }
    c->gw->stats.msgs_out++;
    return 0;
}

static void send_control(gw_conn *c, int opcode, const uint8_t *payload, size_t len)
{
    gw_buf b = {0};
    if (ws_frame_encode(&b, 1, opcode, payload, len, NULL) == 0) {
        gw_sbuf *sb = sbuf_copy(b.data, b.len);
        if (sb && out_push(c, sb, 0) < 0)
            gw_sbuf_unref(sb);
    }
    gw_buf_deinit(&b);
}

static void queue_close_frame(gw_conn *c, uint16_t code)
{
    if (c->proto != GW_PROTO_WEBSOCKET || (c->flags & CF_CLOSE_SENT) || c->ws == NULL)
        return;
    uint8_t f[WS_CLOSE_REPLY_MAX];
    size_t n = ws_close_reply(f, code, NULL);
    gw_sbuf *sb = sbuf_copy(f, n);
    if (sb && out_push(c, sb, 0) < 0)
        gw_sbuf_unref(sb);
    c->flags |= CF_CLOSE_SENT;
}

/* ---- closing ---- */

/* OPEN/HANDSHAKE -> CLOSING: no more input, events or commands for this client. */
static void leave_open(gw_conn *c)
{
    if (c->state >= CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    gw_conn_detach(c->gw, c);
}

/* Stops taking input and events, writes what is queued, then shuts the TCP
 * connection down and waits (at most CLOSE_LINGER_MS) for the client's EOF. */
static void close_after_flush(gw_conn *c)
{
    leave_open(c);
    c->flags |= CF_SHUTDOWN;
    gw_mark_dirty(c->gw, c);
    gw_schedule(c->gw, c, uv_now(c->gw->loop) + CLOSE_LINGER_MS);
}

/* An HTTP answer instead of the upgrade (an error, or a static file): replaces
 * whatever a worker queued for after the handshake, then closes. b is emptied. */
static void respond_and_close(gw_conn *c, gw_buf *b)
{
    out_clear(c);
    gw_sbuf *sb = sbuf_copy(b->data, b->len);
    gw_buf_deinit(b);
    if (sb == NULL || out_push(c, sb, 0) < 0) {
        gw_sbuf_unref(sb);
        conn_destroy(c, "out of memory");
        return;
    }
    close_after_flush(c);
}

void conn_close(gw_conn *c, uint16_t code, const uint8_t *last, size_t last_len, uint16_t aux)
{
    if (c->state >= CONN_CLOSING)
        return;
    if (c->state != CONN_OPEN) {
        /* No handshake answered yet: nothing can be delivered. */
        conn_destroy(c, NULL);
        return;
    }
    if (last_len)
        conn_send(c, last, last_len, aux);
    if (c->state >= CONN_CLOSING)
        return; /* the last message overflowed the client */
    queue_close_frame(c, code ? code : WS_CLOSE_NORMAL);
    close_after_flush(c);
}

void conn_destroy(gw_conn *c, const char *why)
{
    if (c->state == CONN_CLOSED)
        return;
    if (why)
        LOG_DEBUG("client %u closed: %s", c->id, why);
    leave_open(c);
    c->state = CONN_CLOSED;
    gw_unmark_dirty(c->gw, c);
    wheel_remove(&c->gw->wheel, &c->hb);
    out_clear(c);
    c->gw->stats.closed++;
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void conn_closed_cb(uv_handle_t *h)
{
    gw_conn *c = container_of((uv_tcp_t *)h, gw_conn, tcp);
    conn_free(c);
}

void conn_free(gw_conn *c)
{
    gw_gateway *gw = c->gw;
    out_clear(c);
    gw_buf_deinit(&c->in);
    if (c->ws) {
        ws_reader_deinit(c->ws);
        gw_free(c->ws);
    }
    gw_free(c->wreq);
    gw_free(c->auth);
    gw_free(c->session);
    gw_free(c);
    gw->pending--;
    gw->live_conns--;
    gw_conn_freed(gw);
}

/* ---- input ---- */

static void deliver(gw_conn *c, const uint8_t *data, size_t len, uint16_t aux)
{
    gw_gateway *gw = c->gw;
    c->last_rx_ms = uv_now(gw->loop);
    c->pings = 0;
    gw->stats.msgs_in++;
    const char *hb = gw->cfg->gateway.heartbeat_message;
    if (hb[0]) {
        size_t hl = strlen(hb);
        size_t ml = len > 0 && data[len - 1] == '\n' ? len - 1 : len; /* "hb\n" too */
        if (ml == hl && memcmp(data, hb, hl) == 0)
            return; /* absorbed: a heartbeat only */
    }
    gw_forward_event(gw, c, GWP_EV_MESSAGE, aux, data, len);
    gw_check_backpressure(gw, c);
}

static void protocol_error(gw_conn *c, const char *what)
{
    c->gw->stats.protocol_errors++;
    LOG_RL(GW_LOG_INFO, "GW-CLIENT-PROTO", "client %u (%s): %s; closing", c->id,
           gw_proto_name(c->proto), what);
    conn_destroy(c, NULL);
}

/* Returns bytes consumed (> 0), 0 for "need more", -1 when the connection failed. */
static long text_next(gw_conn *c, uint8_t *p, size_t len)
{
    size_t max = c->gw->cfg->gateway.max_message_size;
    uint8_t *nl = memchr(p, '\n', len);
    if (nl == NULL) {
        if (len > max + 1) {
            protocol_error(c, "line longer than max_message_size");
            return -1;
        }
        return 0;
    }
    size_t mlen = (size_t)(nl - p);
    size_t used = mlen + 1;
    while (mlen > 0 && p[mlen - 1] == '\r')
        mlen--;
    if (mlen > max) {
        protocol_error(c, "line longer than max_message_size");
        return -1;
    }
    deliver(c, p, mlen, 0);
    return (long)used;
}

static long frame_next(gw_conn *c, uint8_t *p, size_t len)
{
    if (len < 4)
        return 0;
    uint32_t total = gw_load_be32(p);
    if (total < 4) {
        protocol_error(c, "frame length below 4");
        return -1;
    }
    if (total - 4 > c->gw->cfg->gateway.max_message_size) {
        protocol_error(c, "frame longer than max_message_size");
        return -1;
    }
    if (len < total)
        return 0;
    deliver(c, p + 4, total - 4, 0);
    return (long)total;
}

static long ws_next(gw_conn *c, uint8_t *p, size_t len)
{
    size_t consumed = 0;
    ws_event ev;
    int t = ws_reader_next(c->ws, p, len, &consumed, &ev);
    switch (t) {
    case WS_EV_NEED_MORE:
        return 0;
    case WS_EV_NONE:
        break;
    case WS_EV_MESSAGE:
        deliver(c, ev.data, ev.len, ev.opcode == WS_OP_BINARY ? WIRE_MSG_BINARY : 0);
        break;
    case WS_EV_PING:
        c->last_rx_ms = uv_now(c->gw->loop); /* a ping is a heartbeat too */
        c->pings = 0;
        send_control(c, WS_OP_PONG, ev.data, ev.len);
        break;
    case WS_EV_PONG:
        c->last_rx_ms = uv_now(c->gw->loop);
        c->pings = 0;
        break;
    case WS_EV_CLOSE:
        /* Echo the code, then close once it is written. */
        queue_close_frame(c, ev.close_code);
        close_after_flush(c);
        return (long)consumed;
    case WS_EV_ERROR:
    default: {
        c->gw->stats.protocol_errors++;
        LOG_RL(GW_LOG_INFO, "GW-CLIENT-PROTO", "client %u: WebSocket protocol error, close %u",
               c->id, ev.close_code);
        queue_close_frame(c, ev.close_code);
        close_after_flush(c);
        return -1;
    }
    }
    return (long)consumed;
}

static void reject_handshake(gw_conn *c, int status, const char *reason)
{
    gw_gateway *gw = c->gw;
    gw->stats.handshake_failures++;
    LOG_RL(GW_LOG_INFO, "GW-HANDSHAKE", "client %u: upgrade refused with %d: %s", c->id, status,
           reason ? reason : http_status_phrase(status));
    gw_buf b = {0};
    if (http_error_response(&b, status, reason) < 0) {
        gw_buf_deinit(&b);
        conn_destroy(c, NULL);
        return;
    }
    respond_and_close(c, &b);
}

/* Answers a plain HTTP request with a file of gateway.static_dir, then closes. */
static void serve_static(gw_conn *c, const http_request *req)
{
    gw_gateway *gw = c->gw;
    gw_buf b = {0};
    int status = static_respond(gw->cfg->gateway.static_dir, req, &b);
    if (status < 0) {
        gw_buf_deinit(&b);
        conn_destroy(c, "out of memory");
        return;
    }
    gw->stats.http_requests++;
    LOG_DEBUG("client %u: HTTP %.*s %.*s -> %d", c->id, (int)req->method_len, req->method,
              (int)req->path_len, req->path, status);
    respond_and_close(c, &b);
}

static int json_set_str(json_t *o, const char *k, size_t klen, const char *v, size_t vlen)
{
    return jutil_set_lossy(o, k, klen, jutil_string_lossy(v, vlen));
}

/* The request as the worker's on_websocket_connect sees it (JSON). Header and
 * cookie names are kept as sent (headers lower-cased), values as strings. */
static int request_json(const http_request *req, gw_buf *out)
{
    json_t *root = json_object();
    json_t *headers = json_object();
    json_t *cookies = json_object();
    json_t *get = json_object();
    if (!root || !headers || !cookies || !get)
        goto fail;
    if (req->query_len) {
        char *scratch = gw_malloc(req->query_len);
        if (scratch == NULL)
            goto fail;
        http_query_iter it;
        const char *k, *v;
        size_t kl, vl;
        http_query_iter_init(&it, req->query, req->query_len, scratch);
        while (http_query_next(&it, &k, &kl, &v, &vl))
            if (json_set_str(get, k, kl, v, vl) < 0) {
                gw_free(scratch);
                goto fail;
            }
        gw_free(scratch);
    }
    for (size_t i = 0; i < req->num_headers; i++) {
        const http_header *h = &req->headers[i];
        char name[256];
        size_t nl = h->name_len < sizeof name - 1 ? h->name_len : sizeof name - 1;
        for (size_t j = 0; j < nl; j++) {
            char ch = h->name[j];
            name[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        if (json_set_str(headers, name, nl, h->value, h->value_len) < 0)
            goto fail;
        if (nl == 6 && memcmp(name, "cookie", 6) == 0) {
            http_cookie_iter it;
            const char *cn, *cv;
            size_t cnl, cvl;
            http_cookie_iter_init(&it, h->value, h->value_len);
            while (http_cookie_next(&it, &cn, &cnl, &cv, &cvl))
                if (json_set_str(cookies, cn, cnl, cv, cvl) < 0)
                    goto fail;
        }
    }
    json_object_set_new(root, "method", jutil_string_lossy(req->method, req->method_len));
    json_object_set_new(root, "uri", jutil_string_lossy(req->target, req->target_len));
    json_object_set_new(root, "path", jutil_string_lossy(req->path, req->path_len));
    json_object_set_new(root, "query", jutil_string_lossy(req->query ? req->query : "", req->query_len));
    json_object_set_new(root, "get", get);
    json_object_set_new(root, "headers", headers);
    json_object_set_new(root, "cookies", cookies);
    headers = cookies = get = NULL;
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    if (s == NULL)
        return -ENOMEM;
    int rc = gw_buf_append_str(out, s);
    gw_free(s);
    return rc;
fail:
    json_decref(get);
    json_decref(headers);
    json_decref(cookies);
    json_decref(root);
    return -ENOMEM;
}

/* Completes the upgrade: 101 first in the queue, then what workers queued. */
static void accept_upgrade(gw_conn *c, const http_ws_result *res)
{
    gw_gateway *gw = c->gw;
    gw_buf b = {0};
    if (http_ws_response_101(&b, res, NULL, 0) < 0) {
        gw_buf_deinit(&b);
        conn_destroy(c, "out of memory");
        return;
    }
    gw_sbuf *sb = sbuf_copy(b.data, b.len);
    gw_buf_deinit(&b);
    c->ws = gw_malloc(sizeof *c->ws);
    if (sb == NULL || c->ws == NULL || out_push(c, sb, 1) < 0) {
        gw_sbuf_unref(sb);
        conn_destroy(c, "out of memory");
        return;
    }
    ws_reader_init(c->ws, gw->cfg->gateway.max_message_size, 1);
    c->state = CONN_OPEN;
    c->last_rx_ms = uv_now(gw->loop);
    wheel_remove(&gw->wheel, &c->hb);
    if (gw->ping_interval_ms)
        gw_schedule(gw, c, c->last_rx_ms + gw->ping_interval_ms);
    gw_mark_dirty(gw, c);
}

static long handshake_next(gw_conn *c, uint8_t *p, size_t len)
{
    gw_gateway *gw = c->gw;
    size_t max = gw->cfg->gateway.max_handshake_size;
    http_request req;
    int n = http_request_parse((const char *)p, len, &req);
    if (n == 0) {
        if (len >= max) {
            reject_handshake(c, 431, "request header too large");
            return -1;
        }
        return 0;
    }
    if (n < 0) {
        reject_handshake(c, http_parse_error_status(n), http_parse_error_str(n));
        return -1;
    }
    if ((size_t)n > max) {
        reject_handshake(c, 431, "request header too large");
        return -1;
    }
    if (gw->cfg->gateway.static_dir[0] && !http_header_has_token(&req, "Upgrade", "websocket")) {
        serve_static(c, &req);
        return -1;
    }
    http_ws_result res;
    int rc = http_ws_handshake_check(&req, &res);
    if (rc != 0) {
        reject_handshake(c, res.status, res.reason);
        return -1;
    }
    /* A WebSocket client: its worker hears of it now (for text and frame
     * clients at accept), then of the handshake. */
    c->flags |= CF_EVENTS;
    gw_forward_event(gw, c, GWP_EV_CONNECT, 0, NULL, 0);
    gw_buf rj = {0};
    if (request_json(&req, &rj) < 0) {
        gw_buf_deinit(&rj);
        conn_destroy(c, "out of memory");
        return -1;
    }
    if (gw->cfg->gateway.websocket_auth) {
        /* on_websocket_connect decides before anything is answered; input waits. */
        c->auth = gw_malloc(sizeof *c->auth);
        if (c->auth == NULL) {
            gw_buf_deinit(&rj);
            conn_destroy(c, "out of memory");
            return -1;
        }
        *c->auth = res;
        c->state = CONN_AUTH;
        uv_read_stop((uv_stream_t *)&c->tcp);
        gw_forward_event(gw, c, GWP_EV_WS_CONNECT, WIRE_WS_AUTH, rj.data, rj.len);
        gw_buf_deinit(&rj);
        return n;
    }
    accept_upgrade(c, &res);
    if (c->state == CONN_OPEN)
        gw_forward_event(gw, c, GWP_EV_WS_CONNECT, 0, rj.data, rj.len);
    gw_buf_deinit(&rj);
    return c->state == CONN_OPEN ? n : -1;
}

static size_t process(gw_conn *c, uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        long r;
        if (c->state == CONN_HANDSHAKE)
            r = handshake_next(c, p + off, len - off);
        else if (c->state != CONN_OPEN || (c->flags & CF_READ_PAUSED))
            break;
        else if (c->proto == GW_PROTO_WEBSOCKET)
            r = ws_next(c, p + off, len - off);
        else if (c->proto == GW_PROTO_TEXT)
            r = text_next(c, p + off, len - off);
        else
            r = frame_next(c, p + off, len - off);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    return off;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_conn *c = container_of((uv_tcp_t *)h, gw_conn, tcp);
    (void)suggested;
    buf->base = (char *)c->gw->rbuf;
    buf->len = c->gw->rbuf_size;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_conn *c = container_of((uv_tcp_t *)s, gw_conn, tcp);
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_destroy(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    if (c->state >= CONN_CLOSING)
        return; /* draining until the client's EOF */
    c->gw->stats.bytes_in += (uint64_t)nread;
    /* uv_now is the start of this loop iteration; heartbeat deadlines are counted
     * from the message's arrival, so take the time now (a coarse clock read). */
    uv_update_time(c->gw->loop);
    uint8_t *p = (uint8_t *)buf->base;
    size_t len = (size_t)nread;
    int buffered = c->in.len > 0;
    if (buffered) {
        if (gw_buf_append(&c->in, p, len) < 0) {
            conn_destroy(c, "out of memory");
            return;
        }
        p = c->in.data;
        len = c->in.len;
    }
    size_t used = process(c, p, len);
    if (c->state >= CONN_CLOSING)
        return;
    if (buffered) {
        gw_buf_consume(&c->in, used);
    } else if (used < len && gw_buf_append(&c->in, p + used, len - used) < 0) {
        conn_destroy(c, "out of memory");
        return;
    }
    if (c->in.len == 0)
        gw_buf_reset(&c->in, 0); /* idle connections keep no buffer */
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Input that waited (handshake verdict, worker backpressure). */
static void process_buffered(gw_conn *c)
{
    if (c->in.len == 0)
        return;
    size_t used = process(c, c->in.data, c->in.len);
    if (c->state < CONN_CLOSING) {
        gw_buf_consume(&c->in, used);
        if (c->in.len == 0)
            gw_buf_reset(&c->in, 0);
    }
}

void conn_auth_verdict(gw_conn *c, int status, const uint8_t *reason, size_t len)
{
    http_ws_result *res = c->auth;
    c->auth = NULL;
    if (status == 101) {
        accept_upgrade(c, res);
        gw_free(res);
        if (c->state != CONN_OPEN)
            return;
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) < 0) {
            conn_destroy(c, "cannot read");
            return;
        }
        process_buffered(c);
        return;
    }
    gw_free(res);
    if (status < 400 || status > 599)
        status = 403;
    char text[256];
    if (len >= sizeof text)
        len = sizeof text - 1;
    for (size_t i = 0; i < len; i++) /* one line of plain text */
        text[i] = reason[i] < 0x20 || reason[i] == 0x7f ? ' ' : (char)reason[i];
    text[len] = '\0';
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb); /* to see the client's EOF */
    reject_handshake(c, status, len ? text : NULL);
}

void conn_resume(gw_conn *c)
{
    if (!(c->flags & CF_READ_PAUSED) || c->state != CONN_OPEN)
        return;
    c->flags &= ~CF_READ_PAUSED;
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) < 0) {
        conn_destroy(c, "cannot resume reading");
        return;
    }
    process_buffered(c); /* messages that arrived while paused */
}

/* ---- accept ---- */

void conn_accept(gw_gateway *gw, listener *l)
{
    gw_conn *c = gw_calloc(1, sizeof *c);
    if (c == NULL) {
        LOG_RL(GW_LOG_ERROR, "GW-ACCEPT", "out of memory accepting a client");
        return;
    }
    c->gw = gw;
    if (uv_tcp_init(gw->loop, &c->tcp) < 0) {
        gw_free(c);
        return;
    }
    gw->pending++;
    gw->live_conns++;
    int rc = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        LOG_RL(GW_LOG_WARN, "GW-ACCEPT", "accept failed: %s", uv_strerror(rc));
        c->state = CONN_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    c->info.family = 4;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            c->info.family = 6;
            memcpy(c->info.addr, &s6->sin6_addr, 16);
            c->info.remote_port = ntohs(s6->sin6_port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            memcpy(c->info.addr, &s4->sin_addr, 4);
            c->info.remote_port = ntohs(s4->sin_port);
        }
    }
    c->proto = (uint8_t)l->cfg.proto;
    c->listener_port = l->cfg.port;
    c->info.proto = c->proto;
    c->info.gateway_port = l->cfg.port;
    c->state = c->proto == GW_PROTO_WEBSOCKET ? CONN_HANDSHAKE : CONN_OPEN;
    c->last_rx_ms = uv_now(gw->loop);
    if (gw_conn_insert(gw, c) < 0) {
        c->state = CONN_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
        return;
    }
    gw->stats.accepted++;
    rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc < 0) {
        conn_destroy(c, uv_strerror(rc));
        return;
    }
    if (c->state == CONN_OPEN) {
        c->flags |= CF_EVENTS;
        gw_forward_event(gw, c, GWP_EV_CONNECT, 0, NULL, 0);
    }
    if (c->state == CONN_HANDSHAKE)
        gw_schedule(gw, c, c->last_rx_ms + gw->handshake_ms);
    else if (gw->ping_interval_ms)
        gw_schedule(gw, c, c->last_rx_ms + gw->ping_interval_ms);
}

/* ---- deadlines ---- */

static void send_ping(gw_conn *c)
{
    gw_gateway *gw = c->gw;
    gw_sbuf *pings[2] = {NULL, NULL};
    if (c->proto == GW_PROTO_WEBSOCKET) {
        pings[0] = gw->ping_ws;
        pings[1] = gw->ping_wsctl;
    } else {
        pings[0] = c->proto == GW_PROTO_TEXT ? gw->ping_text : gw->ping_frame;
    }
    for (int i = 0; i < 2; i++)
        if (pings[i] && out_push(c, gw_sbuf_ref(pings[i]), 0) < 0)
            gw_sbuf_unref(pings[i]);
    gw->stats.pings_sent++;
}

void conn_on_deadline(gw_conn *c)
{
    gw_gateway *gw = c->gw;
    uint64_t now = uv_now(gw->loop);
    switch (c->state) {
    case CONN_HANDSHAKE:
    case CONN_AUTH:
        gw->stats.handshake_failures++;
        conn_destroy(c, "handshake timeout");
        return;
    case CONN_CLOSING:
        conn_destroy(c, "close timeout");
        return;
    case CONN_OPEN:
        break;
    default:
        return;
    }
    if (gw->ping_interval_ms == 0)
        return;
    uint64_t close_at = gw->close_after_ms ? c->last_rx_ms + gw->close_after_ms : UINT64_MAX;
    if (now >= close_at) {
        gw->stats.heartbeat_closes++;
        LOG_DEBUG("client %u: no message for %llu ms, closing", c->id,
                  (unsigned long long)(now - c->last_rx_ms));
        /* The peer is presumably gone: tell it (best effort) and close now. */
        queue_close_frame(c, WS_CLOSE_GOING_AWAY);
        conn_flush(c);
        conn_destroy(c, NULL);
        return;
    }
    int pinging = gw->ping_ws || gw->ping_wsctl || gw->ping_text || gw->ping_frame;
    uint64_t next_ping = c->last_rx_ms + gw->ping_interval_ms * (uint64_t)(c->pings + 1);
    if (pinging && now >= next_ping) {
        if (next_ping < close_at)
            send_ping(c);
        if (c->pings < 255)
            c->pings++;
        next_ping = c->last_rx_ms + gw->ping_interval_ms * (uint64_t)(c->pings + 1);
    }
    uint64_t next = close_at;
    if (pinging && next_ping < next)
        next = next_ping;
    if (next == UINT64_MAX)
        return; /* L = 0 and nothing to send: no deadline at all */
    gw_schedule(gw, c, next);
}
