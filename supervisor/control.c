/* control.c - the control socket: <run_dir>/gatewayworker.sock, mode 0600.
 *
 * Protocol: the client sends one JSON object per line, {"cmd":"status"}; the master
 * answers with one JSON object per line, always with "ok" (true/false) and, when
 * false, "error". Commands are dispatched by name to one handler each (master.c).
 * `stop` is answered when everything has stopped, `reload` when the rolling reload
 * is over; a client sends one request at a time.
 */
#include "common/alloc.h"
#include "common/log.h"
#include "supervisor/sup_int.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTL_MAX_CONNS 32
#define CTL_MAX_LINE 65536

struct ctl_conn {
    uv_pipe_t pipe;
    gw_sup *sup;
    ctl_conn *next;
    gw_buf in;
    ctl_wait wait;
    int closing;
};

typedef struct ctl_write {
    uv_write_t req;
    char *data;
} ctl_write;

typedef void (*ctl_handler)(gw_sup *s, ctl_conn *c);

static const struct {
    const char *name;
    ctl_handler fn;
} ctl_commands[] = {
    {"status", sup_cmd_status},
    {"stop", sup_cmd_stop},
    {"reload", sup_cmd_reload},
};

static void on_conn_closed(uv_handle_t *h)
{
    ctl_conn *c = container_of(h, ctl_conn, pipe);
    gw_buf_deinit(&c->in);
    gw_free(c);
}

static void conn_close(ctl_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    ctl_server *srv = &c->sup->ctl;
    for (ctl_conn **pp = &srv->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            srv->n_conns--;
            break;
        }
    }
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    ctl_write *w = container_of(req, ctl_write, req);
    gw_free(w->data);
    gw_free(w);
}

/* Sends resp as one line. Tries a direct write first: answers are small, and the
 * last one (to `stop`) must leave before the process exits. */
static void conn_reply(ctl_conn *c, const json_t *resp)
{
    if (c->closing)
        return;
    char *text = json_dumps(resp, JSON_COMPACT);
    if (text == NULL) {
        conn_close(c);
        return;
    }
    size_t len = strlen(text);
    char *line = gw_realloc(text, len + 2);
    if (line == NULL) {
        gw_free(text);
        conn_close(c);
        return;
    }
    line[len++] = '\n';
    uv_buf_t b = uv_buf_init(line, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
    if (n == (int)len) {
        gw_free(line);
        return;
    }
    size_t off = n > 0 ? (size_t)n : 0;
    ctl_write *w = gw_malloc(sizeof *w);
    if (w == NULL) {
        gw_free(line);
        conn_close(c);
        return;
    }
    w->data = line;
    b = uv_buf_init(line + off, (unsigned)(len - off));
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
        gw_free(line);
        gw_free(w);
        conn_close(c);
    }
}

void ctl_reply(ctl_conn *c, json_t *resp)
{
    if (resp == NULL) {
        static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}\n";
        uv_buf_t b = uv_buf_init((char *)oom, sizeof oom - 1);
        if (!c->closing)
            uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
        return;
    }
    conn_reply(c, resp);
    json_decref(resp);
}

void ctl_reply_error(ctl_conn *c, const char *msg)
{
    ctl_reply(c, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

void ctl_conn_wait(ctl_conn *c, ctl_wait what)
{
    c->wait = what;
}

static void handle_line(ctl_conn *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(line, len, 0, &jerr);
    const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
    if (cmd == NULL) {
        ctl_reply_error(c, "expected a JSON object with a string \"cmd\"");
        json_decref(req);
        return;
    }
    for (size_t i = 0; i < sizeof ctl_commands / sizeof ctl_commands[0]; i++) {
        if (strcmp(cmd, ctl_commands[i].name) == 0) {
            ctl_commands[i].fn(c->sup, c);
            json_decref(req);
            return;
        }
    }
    char msg[128];
    snprintf(msg, sizeof msg, "unknown command \"%.40s\" (status, stop, reload)", cmd);
    ctl_reply_error(c, msg);
    json_decref(req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ctl_conn *c = container_of(h, ctl_conn, pipe);
    if (gw_buf_reserve(&c->in, 4096) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    ctl_conn *c = container_of(st, ctl_conn, pipe);
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    for (;;) {
        uint8_t *nl = memchr(c->in.data, '\n', c->in.len);
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - c->in.data);
        handle_line(c, (const char *)c->in.data, n);
        if (c->closing)
            return;
        gw_buf_consume(&c->in, n + 1);
    }
    if (c->in.len > CTL_MAX_LINE) {
        ctl_reply_error(c, "request line too long");
        conn_close(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_sup *s = container_of(server, gw_sup, ctl.pipe);
    if (status < 0)
        return;
    ctl_conn *c = gw_calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->sup = s;
    uv_pipe_init(s->loop, &c->pipe, 0);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    c->next = s->ctl.conns;
    s->ctl.conns = c;
    s->ctl.n_conns++;
    if (s->ctl.n_conns > CTL_MAX_CONNS) {
        ctl_reply_error(c, "too many control connections");
        conn_close(c);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
        conn_close(c);
}

int ctl_server_start(gw_sup *s, const char *path)
{
    ctl_server *srv = &s->ctl;
    snprintf(srv->path, sizeof srv->path, "%s", path);
    int rc = uv_pipe_init(s->loop, &srv->pipe, 0);
    if (rc < 0)
        return rc;
    srv->open = 1;
    unlink(path); /* stale: we hold the pid-file lock, no other master is alive */
    mode_t old = umask(077);
    rc = uv_pipe_bind(&srv->pipe, path);
    umask(old);
    if (rc < 0)
        return rc;
    return uv_listen((uv_stream_t *)&srv->pipe, 16, on_connection);
}

void ctl_server_answer(gw_sup *s, ctl_wait what, const json_t *resp)
{
    for (ctl_conn *c = s->ctl.conns, *next; c; c = next) {
        next = c->next;
        if (c->wait == what) {
            c->wait = CTL_WAIT_NONE;
            conn_reply(c, resp);
        }
    }
}

void ctl_server_close(gw_sup *s)
{
    ctl_server *srv = &s->ctl;
    if (!srv->open)
        return;
    srv->open = 0;
    while (srv->conns)
        conn_close(srv->conns);
    uv_close((uv_handle_t *)&srv->pipe, NULL);
    unlink(srv->path);
}
