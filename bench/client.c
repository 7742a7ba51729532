/* client.c - see client.h. */
#include "bench/client.h"

#include "common/alloc.h"
#include "common/base64.h"
#include "common/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define RBUF_SIZE (256 * 1024)
#define MAX_RESPONSE_HEAD 16384

static void closed_cb(uv_handle_t *h);
static void flush_conn(bench_conn *c);

/* ---- loop ---- */

static void prepare_cb(uv_prepare_t *p)
{
    bench_loop *bl = container_of(p, bench_loop, flush);
    bench_loop_flush(bl);
}

int bench_loop_init(bench_loop *bl, int proto, const bench_handlers *h, void *user,
                    const char *path, uint64_t seed)
{
    memset(bl, 0, sizeof *bl);
    bl->proto = proto;
    bl->h = h;
    bl->user = user;
    bl->path = path ? path : "/";
    bl->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    bl->keep_out = 64 * 1024;
    bl->max_message = 64u << 20;
    bl->rbuf_size = RBUF_SIZE;
    bl->rbuf = gw_malloc(bl->rbuf_size);
    if (bl->rbuf == NULL)
        return UV_ENOMEM;
    int rc = uv_loop_init(&bl->loop);
    if (rc < 0)
        goto fail_buf;
    rc = uv_prepare_init(&bl->loop, &bl->flush);
    if (rc < 0)
        goto fail_loop;
    rc = uv_prepare_start(&bl->flush, prepare_cb);
    if (rc < 0)
        goto fail_prepare;
    uv_unref((uv_handle_t *)&bl->flush);
    return 0;
fail_prepare:
    uv_close((uv_handle_t *)&bl->flush, NULL);
    uv_run(&bl->loop, UV_RUN_DEFAULT);
fail_loop:
    uv_loop_close(&bl->loop);
fail_buf:
    gw_free(bl->rbuf);
    bl->rbuf = NULL;
    return rc;
}

void bench_loop_deinit(bench_loop *bl)
{
    if (bl->rbuf == NULL)
        return;
    uv_close((uv_handle_t *)&bl->flush, NULL);
    uv_run(&bl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&bl->loop);
    gw_free(bl->rbuf);
    gw_free(bl->dirty);
    bl->rbuf = NULL;
    bl->dirty = NULL;
}

static void mark_dirty(bench_conn *c)
{
    if (c->flags & BCF_DIRTY)
        return;
    bench_loop *bl = c->bl;
    if (bl->ndirty == bl->dirty_cap) {
        uint32_t cap = bl->dirty_cap ? bl->dirty_cap * 2 : 256;
        bench_conn **d = gw_realloc(bl->dirty, cap * sizeof *d);
        if (d == NULL) {
            flush_conn(c); /* no room to defer: write now */
            return;
        }
        bl->dirty = d;
        bl->dirty_cap = cap;
    }
    bl->dirty[bl->ndirty++] = c;
    c->dirty_idx = bl->ndirty;
    c->flags |= BCF_DIRTY;
}

static void unmark_dirty(bench_conn *c)
{
    if (!(c->flags & BCF_DIRTY))
        return;
    bench_loop *bl = c->bl;
    uint32_t i = c->dirty_idx - 1;
    bench_conn *last = bl->dirty[--bl->ndirty];
    bl->dirty[i] = last;
    last->dirty_idx = i + 1;
    c->flags &= ~BCF_DIRTY;
    c->dirty_idx = 0;
}

void bench_loop_flush(bench_loop *bl)
{
    /* flush_conn may end a connection, which unmarks it: always take the last. */
    while (bl->ndirty) {
        bench_conn *c = bl->dirty[bl->ndirty - 1];
        unmark_dirty(c);
        flush_conn(c);
    }
}

/* ---- ending ---- */

static void conn_end(bench_conn *c, int why, int code, uint64_t now)
{
    if (c->state == BC_ENDED || c->state == BC_FREE)
        return;
    c->state = BC_ENDED;
    unmark_dirty(c);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, closed_cb);
    c->bl->h->on_end(c, why, code, now);
}

static void closed_cb(uv_handle_t *h)
{
    bench_conn *c = container_of((uv_tcp_t *)h, bench_conn, tcp);
    bench_loop *bl = c->bl;
    gw_buf_deinit(&c->in);
    gw_buf_deinit(&c->out);
    gw_buf_deinit(&c->wout);
    if (c->ws) {
        ws_reader_deinit(c->ws);
        gw_free(c->ws);
        c->ws = NULL;
    }
    c->flags = 0;
    if (c->ended) {
        /* A start that failed at once: report it now. */
        c->ended = 0;
        c->state = BC_ENDED;
        bl->h->on_end(c, BE_CONNECT_FAIL, c->err, uv_hrtime());
    }
    c->state = BC_FREE;
    if (bl->h->on_freed)
        bl->h->on_freed(c);
}

void bench_conn_abort(bench_conn *c)
{
    conn_end(c, BE_LOCAL, 0, uv_hrtime());
}

static void queue_close_frame(bench_conn *c, uint16_t code)
{
    uint8_t mask[4];
    uint32_t r = (uint32_t)bench_rand(c->bl);
    memcpy(mask, &r, 4);
    uint8_t f[WS_CLOSE_REPLY_MAX];
    size_t n = ws_close_reply(f, code, mask);
    if (gw_buf_append(&c->out, f, n) == 0)
        mark_dirty(c);
}

void bench_conn_close(bench_conn *c)
{
    if (c->state == BC_OPEN && c->bl->proto == BP_WS) {
        queue_close_frame(c, WS_CLOSE_NORMAL);
        c->state = BC_CLOSING;
        flush_conn(c);
        return;
    }
    if (c->state == BC_OPEN)
        flush_conn(c);
    if (c->state != BC_CLOSING)
        conn_end(c, BE_LOCAL, 0, uv_hrtime());
}

/* ---- output ---- */

static void write_cb(uv_write_t *req, int status)
{
    bench_conn *c = container_of(req, bench_conn, u.wreq);
    c->flags &= ~BCF_WRITING;
    if (c->state == BC_ENDED || c->state == BC_FREE)
        return; /* cancelled by the close */
    if (status < 0) {
        conn_end(c, BE_ERROR, status, uv_hrtime());
        return;
    }
    c->bl->bytes_out += c->wout.len;
    gw_buf_reset(&c->wout, c->bl->keep_out);
    if (c->out.len)
        mark_dirty(c);
}

static void flush_conn(bench_conn *c)
{
    bench_loop *bl = c->bl;
    if ((c->flags & BCF_WRITING) || c->out.len == 0)
        return;
    if (c->state != BC_HANDSHAKE && c->state != BC_OPEN && c->state != BC_CLOSING)
        return;
    uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    bl->writes_try++;
    if (w < 0 && w != UV_EAGAIN) {
        conn_end(c, BE_ERROR, w, uv_hrtime());
        return;
    }
    if (w > 0) {
        bl->bytes_out += (uint64_t)w;
        if ((size_t)w == c->out.len) {
            gw_buf_reset(&c->out, bl->keep_out);
            return;
        }
        gw_buf_consume(&c->out, (size_t)w);
    }
    /* The kernel is full: hand the rest to libuv and queue new output meanwhile. */
    gw_buf t = c->wout;
    c->wout = c->out;
    c->out = t;
    c->out.len = 0;
    b = uv_buf_init((char *)c->wout.data, (unsigned)c->wout.len);
    int rc = uv_write(&c->u.wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    bl->writes_async++;
    if (rc < 0) {
        conn_end(c, BE_ERROR, rc, uv_hrtime());
        return;
    }
    c->flags |= BCF_WRITING;
}

uint8_t *bench_conn_msg_begin(bench_conn *c, size_t len)
{
    bench_loop *bl = c->bl;
    if (gw_buf_reserve(&c->out, len + WS_MAX_HEADER + 1) < 0)
        return NULL;
    uint8_t *p = c->out.data + c->out.len;
    size_t hl = 0;
    switch (bl->proto) {
    case BP_WS: {
        uint32_t r = (uint32_t)bench_rand(bl);
        memcpy(bl->pend_mask, &r, 4);
        hl = ws_frame_header_encode(p, 1, WS_OP_TEXT, len, bl->pend_mask);
        break;
    }
    case BP_FRAME:
        gw_store_be32(p, (uint32_t)(len + 4));
        hl = 4;
        break;
    default:
        break;
    }
    bl->pend_off = c->out.len + hl;
    bl->pend_hlen = len;
    return p + hl;
}

void bench_conn_msg_end(bench_conn *c)
{
    bench_loop *bl = c->bl;
    uint8_t *p = c->out.data + bl->pend_off;
    size_t len = bl->pend_hlen;
    if (bl->proto == BP_WS)
        ws_mask(p, len, bl->pend_mask, 0);
    else if (bl->proto == BP_TEXT)
        p[len++] = '\n';
    c->out.len = bl->pend_off + len;
    mark_dirty(c);
}

int bench_conn_send(bench_conn *c, const void *data, size_t len)
{
    if (c->state != BC_OPEN)
        return -ENOTCONN;
    uint8_t *p = bench_conn_msg_begin(c, len);
    if (p == NULL)
        return -ENOMEM;
    if (len)
        memcpy(p, data, len);
    bench_conn_msg_end(c);
    return 0;
}

static void send_control(bench_conn *c, int opcode, const uint8_t *payload, size_t len)
{
    uint8_t mask[4];
    uint32_t r = (uint32_t)bench_rand(c->bl);
    memcpy(mask, &r, 4);
    if (ws_frame_encode(&c->out, 1, opcode, payload, len, mask) == 0)
        mark_dirty(c);
}

/* ---- connecting ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    bench_conn *c = container_of((uv_tcp_t *)h, bench_conn, tcp);
    (void)suggested;
    buf->base = (char *)c->bl->rbuf;
    buf->len = c->bl->rbuf_size;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static int send_upgrade(bench_conn *c)
{
    bench_loop *bl = c->bl;
    uint64_t r0 = bench_rand(bl), r1 = bench_rand(bl);
    memcpy(c->wskey, &r0, 8);
    memcpy(c->wskey + 8, &r1, 8);
    char key[BASE64_ENCODED_LEN(16) + 1];
    base64_encode(key, c->wskey, 16);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    char host[64] = "127.0.0.1:80";
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(host, sizeof host, "%s:%u", ip, ntohs(a->sin_port));
    }
    return gw_buf_printf(&c->out,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         bl->path, host, key);
}

static void connect_cb(uv_connect_t *req, int status)
{
    bench_conn *c = container_of(req, bench_conn, u.creq);
    bench_loop *bl = c->bl;
    uint64_t now = uv_hrtime();
    if (c->state != BC_CONNECTING)
        return; /* aborted meanwhile */
    if (status < 0) {
        conn_end(c, BE_CONNECT_FAIL, status, now);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc < 0) {
        conn_end(c, BE_CONNECT_FAIL, rc, now);
        return;
    }
    if (bl->proto == BP_WS) {
        c->state = BC_HANDSHAKE;
        if (send_upgrade(c) < 0) {
            conn_end(c, BE_ERROR, UV_ENOMEM, now);
            return;
        }
        mark_dirty(c);
        return;
    }
    c->state = BC_OPEN;
    bl->h->on_open(c, now);
}

int bench_conn_start(bench_conn *c, bench_loop *bl, const struct sockaddr_in *dst,
                     const struct sockaddr_in *src)
{
    c->bl = bl;
    c->flags &= BCF_SILENT;
    c->ended = 0;
    c->dirty_idx = 0;
    gw_buf_init(&c->in);
    gw_buf_init(&c->out);
    gw_buf_init(&c->wout);
    c->ws = NULL;
    int rc = uv_tcp_init_ex(&bl->loop, &c->tcp, AF_INET);
    if (rc < 0)
        return rc;
    c->state = BC_CONNECTING;
    if (src) {
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)src, 0);
    }
    if (rc == 0)
        rc = uv_tcp_connect(&c->u.creq, &c->tcp, (const struct sockaddr *)dst, connect_cb);
    if (rc < 0) {
        c->ended = 1;
        c->err = rc;
        c->state = BC_ENDED;
        uv_close((uv_handle_t *)&c->tcp, closed_cb);
    }
    return 0;
}

/* ---- input ---- */

/* Finds header `name` (with the colon, lower case) in the response head; returns its
 * trimmed value or NULL. */
static const char *find_header(const char *head, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', n);
    const char *end = head + n;
    while (p && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* Returns bytes consumed (> 0), 0 for "need more", -1 when the connection ended. */
static long handshake_next(bench_conn *c, uint8_t *p, size_t len, uint64_t now)
{
    const uint8_t *e = memmem(p, len, "\r\n\r\n", 4);
    if (e == NULL) {
        if (len > MAX_RESPONSE_HEAD) {
            conn_end(c, BE_HANDSHAKE_FAIL, -EPROTO, now);
            return -1;
        }
        return 0;
    }
    size_t hl = (size_t)(e - p) + 4;
    const char *h = (const char *)p;
    int status = 0;
    if (hl > 12 && memcmp(h, "HTTP/1.", 7) == 0 && h[8] == ' ')
        status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    if (status != 101) {
        conn_end(c, BE_HANDSHAKE_FAIL, status > 0 ? status : -EPROTO, now);
        return -1;
    }
    char key[BASE64_ENCODED_LEN(16) + 1];
    char want[HTTP_WS_ACCEPT_LEN + 1];
    base64_encode(key, c->wskey, 16);
    size_t vl = 0;
    const char *v = find_header(h, hl, "sec-websocket-accept:", &vl);
    if (v == NULL || http_ws_accept(key, strlen(key), want) < 0 || vl != HTTP_WS_ACCEPT_LEN ||
        memcmp(v, want, vl) != 0) {
        conn_end(c, BE_HANDSHAKE_FAIL, -EPROTO, now);
        return -1;
    }
    c->ws = gw_malloc(sizeof *c->ws);
    if (c->ws == NULL) {
        conn_end(c, BE_ERROR, UV_ENOMEM, now);
        return -1;
    }
    ws_reader_init(c->ws, c->bl->max_message, 0);
    c->state = BC_OPEN;
    c->bl->h->on_open(c, now);
    return c->state == BC_OPEN || c->state == BC_CLOSING ? (long)hl : -1;
}

static long ws_next(bench_conn *c, uint8_t *p, size_t len, uint64_t now)
{
    bench_loop *bl = c->bl;
    size_t used = 0;
    ws_event ev;
    int t = ws_reader_next(c->ws, p, len, &used, &ev);
    switch (t) {
    case WS_EV_NEED_MORE:
        return 0;
    case WS_EV_NONE:
        break;
    case WS_EV_MESSAGE:
        if (c->state == BC_OPEN)
            bl->h->on_message(c, ev.data, ev.len, ev.opcode, now);
        break;
    case WS_EV_PING:
        bl->pings_rx++;
        if (!(c->flags & BCF_SILENT) && c->state == BC_OPEN) {
            send_control(c, WS_OP_PONG, ev.data, ev.len);
            bl->pongs_tx++;
        }
        if (bl->h->on_ping)
            bl->h->on_ping(c, now);
        break;
    case WS_EV_PONG:
        break;
    case WS_EV_CLOSE:
        if (c->state == BC_CLOSING) {
            conn_end(c, BE_LOCAL, ev.close_code, now);
        } else {
            queue_close_frame(c, ev.close_code);
            flush_conn(c);
            conn_end(c, BE_PEER_CLOSE, ev.close_code, now);
        }
        return -1;
    case WS_EV_ERROR:
    default:
        queue_close_frame(c, ev.close_code);
        flush_conn(c);
        conn_end(c, BE_ERROR, -EPROTO, now);
        return -1;
    }
    return (long)used;
}

static long text_next(bench_conn *c, uint8_t *p, size_t len, uint64_t now)
{
    uint8_t *nl = memchr(p, '\n', len);
    if (nl == NULL) {
        if (len > c->bl->max_message) {
            conn_end(c, BE_ERROR, -EPROTO, now);
            return -1;
        }
        return 0;
    }
    c->bl->h->on_message(c, p, (size_t)(nl - p), WS_OP_TEXT, now);
    return (long)(nl - p) + 1;
}

static long frame_next(bench_conn *c, uint8_t *p, size_t len, uint64_t now)
{
    if (len < 4)
        return 0;
    uint32_t total = gw_load_be32(p);
    if (total < 4 || total - 4 > c->bl->max_message) {
        conn_end(c, BE_ERROR, -EPROTO, now);
        return -1;
    }
    if (len < total)
        return 0;
    c->bl->h->on_message(c, p + 4, total - 4, WS_OP_TEXT, now);
    return (long)total;
}

/* Decodes what it can; returns bytes consumed. Stops when the connection ended. */
static size_t process(bench_conn *c, uint8_t *p, size_t len, uint64_t now)
{
    size_t off = 0;
    int proto = c->bl->proto;
    while (off < len) {
        long r;
        if (c->state == BC_HANDSHAKE)
            r = handshake_next(c, p + off, len - off, now);
        else if (c->state != BC_OPEN && c->state != BC_CLOSING)
            break;
        else if (proto == BP_WS)
            r = ws_next(c, p + off, len - off, now);
        else if (proto == BP_TEXT)
            r = text_next(c, p + off, len - off, now);
        else
            r = frame_next(c, p + off, len - off, now);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    return off;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    bench_conn *c = container_of((uv_tcp_t *)s, bench_conn, tcp);
    bench_loop *bl = c->bl;
    if (nread == 0)
        return;
    uint64_t now = uv_hrtime();
    if (nread < 0) {
        int why = BE_ERROR, code = (int)nread;
        if (c->state == BC_CLOSING) {
            why = BE_LOCAL;
            code = 0;
        } else if (c->state == BC_HANDSHAKE) {
            why = BE_HANDSHAKE_FAIL;
        } else if (nread == UV_EOF || nread == UV_ECONNRESET) {
            why = BE_PEER_CLOSE;
            code = 0;
        }
        conn_end(c, why, code, now);
        return;
    }
    bl->reads++;
    bl->bytes_in += (uint64_t)nread;
    uint8_t *p = (uint8_t *)buf->base;
    size_t len = (size_t)nread;
    int buffered = c->in.len > 0;
    if (buffered) {
        if (gw_buf_append(&c->in, p, len) < 0) {
            conn_end(c, BE_ERROR, UV_ENOMEM, now);
            return;
        }
        p = c->in.data;
        len = c->in.len;
    }
    size_t used = process(c, p, len, now);
    if (c->state == BC_ENDED || c->state == BC_FREE)
        return;
    if (buffered) {
        gw_buf_consume(&c->in, used);
    } else if (used < len && gw_buf_append(&c->in, p + used, len - used) < 0) {
        conn_end(c, BE_ERROR, UV_ENOMEM, now);
        return;
    }
    if (c->in.len == 0)
        gw_buf_reset(&c->in, 0);
}
