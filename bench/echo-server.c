/* gw-echo-server: a trivial single-process WebSocket / text / frame echo server on libuv.
 *
 * The "physical ceiling" reference of the benchmarks: the same codecs as the gateway
 * (common/http.h for the upgrade, common/ws.h for frames), no gateway -> worker hop.
 * Reads go to one shared buffer and are decoded in place; every connection's output
 * is appended to its buffer and written once per loop iteration (uv_prepare):
 * uv_try_write first, one uv_write for the rest.
 *
 * A message starting with --prefix ("B:" by default) is not echoed but sent to every
 * other open client of the same loop (what bench/bcast_module.c does through the
 * cluster), so `gw-bench broadcast` has a reference too.
 */
#include "common/alloc.h"
#include "common/http.h"
#include "common/ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <uv.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define RBUF_SIZE (256 * 1024)
#define MAX_HANDSHAKE 8192
#define MAX_MESSAGE (64u << 20)
#define KEEP_OUT (64 * 1024)
#define MAX_THREADS 64

enum proto { PR_WS = 0, PR_TEXT, PR_FRAME, PR_COUNT };
static const char *proto_names[PR_COUNT] = {"ws", "text", "frame"};

enum state { ST_HANDSHAKE = 0, ST_OPEN, ST_CLOSING, ST_CLOSED };

enum flag {
    F_DIRTY = 0x01,
    F_WRITING = 0x02,
    F_CLOSE_AFTER = 0x04, /* close once the output is written */
};

typedef struct server server;

typedef struct conn {
    uv_tcp_t tcp;
    server *srv;
    uint8_t proto, state, flags;
    uint32_t dirty_idx;
    struct conn *prev, *next; /* open connections of the loop (broadcast) */
    gw_buf in, out, wout;
    uv_write_t wreq;
    ws_reader ws;
} conn;

typedef struct listener {
    uv_tcp_t tcp;
    server *srv;
    int proto;
} listener;

struct server {
    uv_loop_t loop;
    uv_prepare_t flush;
    uv_async_t stop;
    uv_thread_t tid;
    listener ls[PR_COUNT];
    int nls;
    uint8_t *rbuf;
    conn **dirty;
    uint32_t ndirty, dirty_cap;
    conn *open; /* list head */
    uint64_t accepted, msgs, bcasts, deliveries, bytes_in, bytes_out, writes;
    int stopping;
};

typedef struct options {
    const char *host;
    int port[PR_COUNT]; /* -1: not listening */
    int threads;
    const char *prefix;
    int quiet;
} options;

static options opt;
static server servers[MAX_THREADS];
static uv_barrier_t started;

static void conn_flush(conn *c);
static void conn_kill(conn *c);

/* ---- output ---- */

static void mark_dirty(conn *c)
{
    if (c->flags & F_DIRTY)
        return;
    server *s = c->srv;
    if (s->ndirty == s->dirty_cap) {
        uint32_t cap = s->dirty_cap ? s->dirty_cap * 2 : 256;
        conn **d = gw_realloc(s->dirty, cap * sizeof *d);
        if (d == NULL) {
            conn_flush(c);
            return;
        }
        s->dirty = d;
        s->dirty_cap = cap;
    }
    s->dirty[s->ndirty++] = c;
    c->dirty_idx = s->ndirty;
    c->flags |= F_DIRTY;
}

static void unmark_dirty(conn *c)
{
    if (!(c->flags & F_DIRTY))
        return;
    server *s = c->srv;
    conn *last = s->dirty[--s->ndirty];
    s->dirty[c->dirty_idx - 1] = last;
    last->dirty_idx = c->dirty_idx;
    c->flags &= ~F_DIRTY;
    c->dirty_idx = 0;
}

static void prepare_cb(uv_prepare_t *p)
{
    server *s = container_of(p, server, flush);
    while (s->ndirty) {
        conn *c = s->dirty[s->ndirty - 1];
        unmark_dirty(c);
        conn_flush(c);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    conn *c = container_of(req, conn, wreq);
    c->flags &= ~F_WRITING;
    if (c->state == ST_CLOSED)
        return;
    if (status < 0) {
        conn_kill(c);
        return;
    }
    c->srv->bytes_out += c->wout.len;
    gw_buf_reset(&c->wout, KEEP_OUT);
    if (c->out.len || (c->flags & F_CLOSE_AFTER))
        mark_dirty(c);
}

static void conn_flush(conn *c)
{
    if (c->state == ST_CLOSED || (c->flags & F_WRITING))
        return;
    server *s = c->srv;
    if (c->out.len) {
        uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        s->writes++;
        if (w < 0 && w != UV_EAGAIN) {
            conn_kill(c);
            return;
        }
        if (w > 0) {
            s->bytes_out += (uint64_t)w;
            if ((size_t)w == c->out.len)
                gw_buf_reset(&c->out, KEEP_OUT);
            else
                gw_buf_consume(&c->out, (size_t)w);
        }
    }
    if (c->out.len) {
        gw_buf t = c->wout;
        c->wout = c->out;
        c->out = t;
        c->out.len = 0;
        uv_buf_t b = uv_buf_init((char *)c->wout.data, (unsigned)c->wout.len);
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb) < 0) {
            conn_kill(c);
            return;
        }
        c->flags |= F_WRITING;
        return;
    }
    if (c->flags & F_CLOSE_AFTER)
        conn_kill(c);
}

static int out_append(conn *c, const void *p, size_t n)
{
    if (gw_buf_append(&c->out, p, n) < 0)
        return -ENOMEM;
    mark_dirty(c);
    return 0;
}

/* Appends one message framed for c's protocol. */
static int send_message(conn *c, int opcode, const uint8_t *data, size_t len)
{
    int rc = 0;
    switch (c->proto) {
    case PR_WS:
        rc = ws_frame_encode(&c->out, 1, opcode, data, len, NULL);
        break;
    case PR_TEXT:
        if ((rc = gw_buf_reserve(&c->out, len + 1)) == 0) {
            memcpy(c->out.data + c->out.len, data, len);
            c->out.data[c->out.len + len] = '\n';
            c->out.len += len + 1;
        }
        break;
    default:
        if ((rc = gw_buf_reserve(&c->out, len + 4)) == 0) {
            gw_store_be32(c->out.data + c->out.len, (uint32_t)(len + 4));
            memcpy(c->out.data + c->out.len + 4, data, len);
            c->out.len += len + 4;
        }
        break;
    }
    if (rc == 0)
        mark_dirty(c);
    return rc;
}

/* ---- closing ---- */

static void closed_cb(uv_handle_t *h)
{
    conn *c = container_of((uv_tcp_t *)h, conn, tcp);
    gw_buf_deinit(&c->in);
    gw_buf_deinit(&c->out);
    gw_buf_deinit(&c->wout);
    ws_reader_deinit(&c->ws);
    gw_free(c);
}

static void list_remove(conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->srv->open == c)
        c->srv->open = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void conn_kill(conn *c)
{
    if (c->state == ST_CLOSED)
        return;
    list_remove(c);
    c->state = ST_CLOSED;
    unmark_dirty(c);
    uv_close((uv_handle_t *)&c->tcp, closed_cb);
}

/* Stops reading and closes once the output is written. */
static void conn_finish(conn *c)
{
    if (c->state == ST_CLOSED)
        return;
    list_remove(c);
    c->state = ST_CLOSING;
    c->flags |= F_CLOSE_AFTER;
    uv_read_stop((uv_stream_t *)&c->tcp);
    mark_dirty(c);
}

/* ---- input ---- */

static void broadcast(conn *from, int opcode, const uint8_t *data, size_t len)
{
    server *s = from->srv;
    s->bcasts++;
    for (conn *c = s->open; c; c = c->next) {
        if (c == from || c->state != ST_OPEN)
            continue;
        if (send_message(c, opcode, data, len) == 0)
            s->deliveries++;
    }
}

static void on_message(conn *c, int opcode, const uint8_t *data, size_t len)
{
    size_t pl = strlen(opt.prefix);
    c->srv->msgs++;
    if (pl && len >= pl && memcmp(data, opt.prefix, pl) == 0) {
        broadcast(c, opcode, data, len);
        return;
    }
    if (send_message(c, opcode, data, len) < 0)
        conn_kill(c);
}

static long handshake_next(conn *c, uint8_t *p, size_t len)
{
    http_request req;
    int n = http_request_parse((const char *)p, len, &req);
    if (n == 0) {
        if (len < MAX_HANDSHAKE)
            return 0;
        n = HTTP_E_TOO_MANY_HEADERS;
    }
    gw_buf resp = {0};
    http_ws_result res;
    int status = n < 0 ? http_parse_error_status(n) : http_ws_handshake_check(&req, &res);
    if (status != 0) {
        if (status < 0)
            status = 500;
        if (http_error_response(&resp, status, NULL) == 0)
            out_append(c, resp.data, resp.len);
        gw_buf_deinit(&resp);
        conn_finish(c);
        return -1;
    }
    if (http_ws_response_101(&resp, &res, NULL, 0) < 0 || out_append(c, resp.data, resp.len) < 0) {
        gw_buf_deinit(&resp);
        conn_kill(c);
        return -1;
    }
    gw_buf_deinit(&resp);
    ws_reader_init(&c->ws, MAX_MESSAGE, 1);
    c->state = ST_OPEN;
    return n;
}

static long ws_next(conn *c, uint8_t *p, size_t len)
{
    size_t used = 0;
    ws_event ev;
    uint8_t f[WS_CLOSE_REPLY_MAX];
    switch (ws_reader_next(&c->ws, p, len, &used, &ev)) {
    case WS_EV_NEED_MORE:
        return 0;
    case WS_EV_NONE:
    case WS_EV_PONG:
        break;
    case WS_EV_MESSAGE:
        on_message(c, ev.opcode, ev.data, ev.len);
        break;
    case WS_EV_PING:
        if (ws_frame_encode(&c->out, 1, WS_OP_PONG, ev.data, ev.len, NULL) == 0)
            mark_dirty(c);
        break;
    case WS_EV_CLOSE:
    case WS_EV_ERROR:
    default:
        out_append(c, f, ws_close_reply(f, ev.close_code, NULL));
        conn_finish(c);
        return -1;
    }
    return (long)used;
}

static long text_next(conn *c, uint8_t *p, size_t len)
{
    uint8_t *nl = memchr(p, '\n', len);
    if (nl == NULL) {
        if (len > MAX_MESSAGE) {
            conn_kill(c);
            return -1;
        }
        return 0;
    }
    on_message(c, WS_OP_TEXT, p, (size_t)(nl - p));
    return (long)(nl - p) + 1;
}

static long frame_next(conn *c, uint8_t *p, size_t len)
{
    if (len < 4)
        return 0;
    uint32_t total = gw_load_be32(p);
    if (total < 4 || total - 4 > MAX_MESSAGE) {
        conn_kill(c);
        return -1;
    }
    if (len < total)
        return 0;
    on_message(c, WS_OP_TEXT, p + 4, total - 4);
    return (long)total;
}

static size_t process(conn *c, uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len && (c->state == ST_HANDSHAKE || c->state == ST_OPEN)) {
        long r;
        if (c->state == ST_HANDSHAKE)
            r = handshake_next(c, p + off, len - off);
        else if (c->proto == PR_WS)
            r = ws_next(c, p + off, len - off);
        else if (c->proto == PR_TEXT)
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
    conn *c = container_of((uv_tcp_t *)h, conn, tcp);
    (void)suggested;
    buf->base = (char *)c->srv->rbuf;
    buf->len = RBUF_SIZE;
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = container_of((uv_tcp_t *)st, conn, tcp);
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_kill(c);
        return;
    }
    c->srv->bytes_in += (uint64_t)nread;
    uint8_t *p = (uint8_t *)buf->base;
    size_t len = (size_t)nread;
    int buffered = c->in.len > 0;
    if (buffered) {
        if (gw_buf_append(&c->in, p, len) < 0) {
            conn_kill(c);
            return;
        }
        p = c->in.data;
        len = c->in.len;
    }
    size_t used = process(c, p, len);
    if (c->state != ST_HANDSHAKE && c->state != ST_OPEN)
        return;
    if (buffered)
        gw_buf_consume(&c->in, used);
    else if (used < len && gw_buf_append(&c->in, p + used, len - used) < 0)
        conn_kill(c);
    if (c->in.len == 0)
        gw_buf_reset(&c->in, 0);
}

/* ---- accept ---- */

static void on_connection(uv_stream_t *ls, int status)
{
    listener *l = container_of((uv_tcp_t *)ls, listener, tcp);
    server *s = l->srv;
    if (status < 0)
        return;
    conn *c = gw_calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->srv = s;
    c->proto = (uint8_t)l->proto;
    if (uv_tcp_init(&s->loop, &c->tcp) < 0) {
        gw_free(c);
        return;
    }
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) < 0) {
        c->state = ST_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, closed_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    s->accepted++;
    c->state = c->proto == PR_WS ? ST_HANDSHAKE : ST_OPEN;
    c->next = s->open;
    if (s->open)
        s->open->prev = c;
    s->open = c;
}

static int open_listener(server *s, listener *l, int proto)
{
    struct sockaddr_in a;
    int rc = uv_ip4_addr(opt.host, opt.port[proto], &a);
    if (rc < 0)
        return rc;
    l->srv = s;
    l->proto = proto;
    rc = uv_tcp_init_ex(&s->loop, &l->tcp, AF_INET);
    if (rc < 0)
        return rc;
    uv_os_fd_t fd;
    int one = 1;
    if (opt.threads > 1 && uv_fileno((uv_handle_t *)&l->tcp, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&a, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 4096, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&l->tcp, NULL);
        return rc;
    }
    if (opt.port[proto] == 0) {
        /* Port 0 (one thread only): report the port the kernel chose. */
        struct sockaddr_in got;
        int len = sizeof got;
        if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &len) == 0)
            opt.port[proto] = ntohs(got.sin_port);
    }
    return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    server *s = arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP) {
        int is_listener = 0;
        for (int i = 0; i < s->nls; i++)
            is_listener |= h == (uv_handle_t *)&s->ls[i].tcp;
        if (!is_listener) {
            conn_kill(container_of((uv_tcp_t *)h, conn, tcp));
            return;
        }
    }
    uv_close(h, NULL);
}

static void stop_cb(uv_async_t *a)
{
    server *s = container_of(a, server, stop);
    /* Every handle: connections through conn_kill (their close callback frees them). */
    s->stopping = 1;
    uv_walk(&s->loop, walk_close, s);
}

static void server_main(void *arg)
{
    server *s = arg;
    uv_barrier_wait(&started);
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

static int server_init(server *s)
{
    int rc = uv_loop_init(&s->loop);
    if (rc < 0)
        return rc;
    s->rbuf = gw_malloc(RBUF_SIZE);
    if (s->rbuf == NULL)
        return UV_ENOMEM;
    uv_prepare_init(&s->loop, &s->flush);
    uv_prepare_start(&s->flush, prepare_cb);
    uv_async_init(&s->loop, &s->stop, stop_cb);
    for (int p = 0; p < PR_COUNT; p++) {
        if (opt.port[p] < 0)
            continue;
        rc = open_listener(s, &s->ls[s->nls], p);
        if (rc < 0) {
            fprintf(stderr, "gw-echo-server: listen %s %s:%d: %s\n", proto_names[p], opt.host,
                    opt.port[p], uv_strerror(rc));
            return rc;
        }
        s->nls++;
    }
    return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fputs("usage: gw-echo-server [--ws PORT] [--text PORT] [--frame PORT] [options]\n"
          "\n"
          "A single-process WebSocket / text / frame echo server: the reference ceiling for\n"
          "gw-bench. Every message is sent back to its sender, except messages starting with\n"
          "the broadcast prefix, which go to every other client of the same thread.\n"
          "\n"
          "  --ws PORT        WebSocket listener (RFC 6455; 0 = any free port)\n"
          "  --text PORT      text listener (lines ending in \\n)\n"
          "  --frame PORT     frame listener (4-byte big-endian length including itself)\n"
          "  --host IP        address to listen on (default 127.0.0.1)\n"
          "  --threads N      loops with SO_REUSEPORT listeners (default 1; ports must not be 0)\n"
          "  --prefix STR     broadcast prefix (default \"B:\"; \"\" = echo everything)\n"
          "  --quiet          no statistics on exit\n"
          "  -h, --help       this text\n"
          "\n"
          "At start it prints one line per listener, \"listening PROTO HOST:PORT\", on stdout.\n"
          "SIGINT or SIGTERM stops it (statistics on stderr).\n"
          "At least one listener is required; with none given, --ws 8282.\n",
          f);
}

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535) {
        fprintf(stderr, "gw-echo-server: bad port %s\n", s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"ws", required_argument, NULL, 'W'},
        {"text", required_argument, NULL, 'T'},
        {"frame", required_argument, NULL, 'F'},
        {"host", required_argument, NULL, 'H'},
        {"threads", required_argument, NULL, 't'},
        {"prefix", required_argument, NULL, 'x'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opt.host = "127.0.0.1";
    opt.threads = 1;
    opt.prefix = "B:";
    for (int p = 0; p < PR_COUNT; p++)
        opt.port[p] = -1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'W':
            opt.port[PR_WS] = parse_port(optarg);
            break;
        case 'T':
            opt.port[PR_TEXT] = parse_port(optarg);
            break;
        case 'F':
            opt.port[PR_FRAME] = parse_port(optarg);
            break;
        case 'H':
            opt.host = optarg;
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > MAX_THREADS) {
                fprintf(stderr, "gw-echo-server: --threads must be 1..%d\n", MAX_THREADS);
                return 2;
            }
            opt.threads = (int)v;
            break;
        }
        case 'x':
            opt.prefix = optarg;
            break;
        case 'q':
            opt.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (opt.port[PR_WS] < 0 && opt.port[PR_TEXT] < 0 && opt.port[PR_FRAME] < 0)
        opt.port[PR_WS] = 8282;
    for (int p = 0; p < PR_COUNT; p++)
        if (opt.port[p] == 0 && opt.threads > 1) {
            fprintf(stderr, "gw-echo-server: port 0 needs --threads 1\n");
            return 2;
        }
    gw_alloc_install();
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* SIGINT/SIGTERM are taken by sigwait in main (threads inherit the mask). */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    if (uv_barrier_init(&started, (unsigned)opt.threads + 1) < 0)
        return 1;
    for (int i = 0; i < opt.threads; i++)
        if (server_init(&servers[i]) < 0)
            return 1;
    for (int p = 0; p < PR_COUNT; p++)
        if (opt.port[p] >= 0)
            printf("listening %s %s:%d\n", proto_names[p], opt.host, opt.port[p]);
    fflush(stdout);
    for (int i = 0; i < opt.threads; i++)
        if (uv_thread_create(&servers[i].tid, server_main, &servers[i]) < 0)
            return 1;
    uv_barrier_wait(&started);
    int sig;
    sigwait(&stop_sigs, &sig);
    uint64_t acc = 0, msgs = 0, bc = 0, del = 0, bin = 0, bout = 0, wr = 0;
    for (int i = 0; i < opt.threads; i++) {
        uv_async_send(&servers[i].stop);
        uv_thread_join(&servers[i].tid);
        server *s = &servers[i];
        acc += s->accepted;
        msgs += s->msgs;
        bc += s->bcasts;
        del += s->deliveries;
        bin += s->bytes_in;
        bout += s->bytes_out;
        wr += s->writes;
        uv_loop_close(&s->loop);
        gw_free(s->rbuf);
        gw_free(s->dirty);
    }
    if (!opt.quiet)
        fprintf(stderr,
                "gw-echo-server: %" PRIu64 " connections, %" PRIu64 " messages, %" PRIu64
                " broadcasts (%" PRIu64 " deliveries), %" PRIu64 " bytes in, %" PRIu64
                " bytes out, %" PRIu64 " write calls\n",
                acc, msgs, bc, del, bin, bout, wr);
    return 0;
}
