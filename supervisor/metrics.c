/* metrics.c - the Prometheus endpoint: HTTP/1.1 on supervisor.metrics_listen.
 *
 * GET (or HEAD) /metrics (or /) answers the text exposition format 0.0.4 built by
 * report_prometheus() from the shared stats pages; anything else gets 404 / 405 /
 * 400. One request per connection (Connection: close). The master serves it from
 * its own loop: the children's data paths are never involved. Bounded: at most
 * METRICS_MAX_CONNS connections, request heads up to 8 KiB, 10 s per connection.
 */
#include "common/alloc.h"
#include "common/http.h"
#include "common/log.h"
#include "supervisor/sup_int.h"

#include <string.h>
#include <sys/socket.h>

#define METRICS_MAX_CONNS 64
#define METRICS_MAX_HEAD 8192
#define METRICS_IDLE_MS 10000

struct metrics_conn {
    uv_tcp_t tcp;
    gw_sup *sup;
    metrics_conn *next;
    uint64_t since_ms;
    int closing;
    int answered;
    uv_write_t wreq;
    uint8_t *resp;
    size_t len;
    char head[METRICS_MAX_HEAD];
};

static void on_closed(uv_handle_t *h)
{
    metrics_conn *c = container_of(h, metrics_conn, tcp);
    gw_free(c->resp);
    gw_free(c);
}

static void conn_close(metrics_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    metrics_server *m = &c->sup->metrics;
    for (metrics_conn **pp = &m->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            m->n_conns--;
            break;
        }
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status)
{
    conn_close(container_of(req, metrics_conn, wreq));
}

static void respond(metrics_conn *c, int code, const char *reason, const char *ctype,
                    const gw_buf *body, int head_only)
{
    gw_buf out = {0};
    size_t blen = body ? body->len : 0;
    int rc = gw_buf_printf(&out,
                           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\n\r\n",
                           code, reason, ctype, blen);
    if (rc == 0 && body && !head_only)
        rc = gw_buf_append(&out, body->data, body->len);
    if (rc < 0) {
        gw_buf_deinit(&out);
        conn_close(c);
        return;
    }
    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->resp = gw_buf_take(&out, &c->len);
    uv_buf_t b = uv_buf_init((char *)c->resp, (unsigned)c->len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        conn_close(c);
}

static void respond_text(metrics_conn *c, int code, const char *reason, const char *text)
{
    gw_buf body = {0};
    if (gw_buf_append_str(&body, text) < 0) {
        conn_close(c);
        return;
    }
    respond(c, code, reason, "text/plain; charset=utf-8", &body, 0);
    gw_buf_deinit(&body);
}

static void handle_request(metrics_conn *c, const http_request *req)
{
    int get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
    int head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    if (!get && !head) {
        respond_text(c, 405, "Method Not Allowed", "only GET and HEAD\n");
        return;
    }
    int metrics = (req->path_len == 8 && memcmp(req->path, "/metrics", 8) == 0) ||
                  (req->path_len == 1 && req->path[0] == '/');
    if (!metrics) {
        respond_text(c, 404, "Not Found", "not found; the metrics are at /metrics\n");
        return;
    }
    gw_buf body = {0};
    if (report_prometheus(c->sup, &body) < 0) {
        gw_buf_deinit(&body);
        respond_text(c, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body, head);
    gw_buf_deinit(&body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    metrics_conn *c = container_of(h, metrics_conn, tcp);
    *buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof c->head - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    metrics_conn *c = container_of(st, metrics_conn, tcp);
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->answered)
        return;
    c->len += (size_t)nread;
    http_request req;
    int rc = http_request_parse(c->head, c->len, &req);
    if (rc > 0) {
        handle_request(c, &req);
    } else if (rc < 0) {
        respond_text(c, http_parse_error_status(rc), "Bad Request", "bad request\n");
    } else if (c->len == sizeof c->head) {
        respond_text(c, 431, "Request Header Fields Too Large", "request head too large\n");
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_sup *s = container_of(server, gw_sup, metrics.tcp);
    if (status < 0)
        return;
    metrics_conn *c = gw_calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->sup = s;
    c->since_ms = gw_now_ms();
    uv_tcp_init(s->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    c->next = s->metrics.conns;
    s->metrics.conns = c;
    s->metrics.n_conns++;
    if (s->metrics.n_conns > METRICS_MAX_CONNS) {
        conn_close(c);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void on_sweep(uv_timer_t *t)
{
    gw_sup *s = container_of(t, gw_sup, metrics.sweep);
    uint64_t now = gw_now_ms();
    for (metrics_conn *c = s->metrics.conns, *next; c; c = next) {
        next = c->next;
        if (now - c->since_ms > METRICS_IDLE_MS)
            conn_close(c);
    }
}

int metrics_start(gw_sup *s)
{
    metrics_server *m = &s->metrics;
    const gw_addr *a = &s->cfg.supervisor.metrics_listen;
    struct sockaddr_storage ss;
    int rc = a->family == AF_INET6 ? uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss)
                                   : uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        return rc;
    rc = uv_tcp_init(s->loop, &m->tcp);
    if (rc < 0)
        return rc;
    uv_timer_init(s->loop, &m->sweep);
    m->open = 1;
    rc = uv_tcp_bind(&m->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->tcp, 64, on_connection);
    if (rc < 0)
        return rc;
    uv_timer_start(&m->sweep, on_sweep, 1000, 1000);
    char text[64];
    gw_addr_format(a, text, sizeof text);
    LOG_INFO("GW-SUP-METRICS", "Prometheus metrics on http://%s/metrics", text);
    return 0;
}

void metrics_close(gw_sup *s)
{
    metrics_server *m = &s->metrics;
    if (!m->open)
        return;
    m->open = 0;
    while (m->conns)
        conn_close(m->conns);
    uv_close((uv_handle_t *)&m->tcp, NULL);
    uv_close((uv_handle_t *)&m->sweep, NULL);
}
