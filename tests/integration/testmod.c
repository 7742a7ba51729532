/* testmod.c - the business module of the integration tests.
 *
 * Every event is appended as one JSON line to the file named by
 * module_config "event_log" (O_APPEND, one write(2) per line), so that tests
 * (tests/integration/gwtest.py) can see which worker handled which event, when
 * (CLOCK_MONOTONIC, the clock of Python's time.monotonic()), in which order and
 * with which session:
 *
 *   {"ev":"connect|ws_connect|message|close|worker_start|worker_stop",
 *    "id":client_id, "worker":gw_worker_id(), "pid":getpid(), "t":seconds,
 *    "msg":text (first 256 bytes), "len":bytes, "binary":0|1, "rc":result of the command,
 *    "session":{...}, "proto":"websocket|text|frame", ...}
 *
 * Text messages are commands (anything else is echoed back as it came, binary
 * as binary):
 *
 *   echo:X               send X back
 *   all:X                gw_send_to_all(X)
 *   allx:X               gw_send_to_all(X) excluding the sender
 *   list:ID1,ID2,...:X   gw_send_to_all(X) to the listed clients only
 *   to:ID:X              gw_send_to_client(ID, X)
 *   close:X              gw_close_current_client(X) ("close:" = no last message)
 *   closeid:ID           gw_close_client(ID, NULL, 0)
 *   destroy              gw_destroy_current_client()
 *   destroyid:ID         gw_destroy_client(ID)
 *   whoami               {"client_id":..,"worker":..,"pid":..,"protocol":..}
 *   sess:set:K=V         gw_session()[K] = V, reply "ok"
 *   sess:del:K           delete gw_session()[K], reply "ok"
 *   sess:get:K           reply the value of K (JSON), or "null"
 *   bin                  reply a binary message of the bytes 0..255
 *   big:N                reply N bytes of 'x'
 *   rc:CMD               run CMD and reply "rc=<return value>" (for error paths)
 */
#include <gatewayworker.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

GW_MODULE_ABI;

#define LOG_MSG_MAX 256
#define MAX_IDS 64

static int log_fd = -1;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes obj (consumed) as one line. */
static void log_event(json_t *obj)
{
    if (obj == NULL)
        return;
    json_object_set_new(obj, "worker", json_integer(gw_worker_id()));
    json_object_set_new(obj, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(obj, "t", json_real(mono_now()));
    const gw_client *c = gw_current_client();
    if (c) {
        json_object_set_new(obj, "proto", json_string(c->protocol));
        json_object_set_new(obj, "remote", json_string(c->remote_addr));
        json_object_set_new(obj, "gateway", json_string(c->gateway_addr));
        json_object_set_new(obj, "gateway_port", json_integer(c->gateway_port));
    }
    json_t *s = gw_session();
    if (s)
        json_object_set(obj, "session", s);
    char *text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(obj);
    if (text == NULL || log_fd < 0) {
        free(text);
        return;
    }
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    if (line) {
        memcpy(line, text, n);
        line[n] = '\n';
        ssize_t w;
        do {
            w = write(log_fd, line, n + 1);
        } while (w < 0 && errno == EINTR);
        free(line);
    }
    free(text);
}

static json_t *event(const char *ev, const char *client_id)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "ev", json_string(ev));
    if (client_id)
        json_object_set_new(o, "id", json_string(client_id));
    return o;
}

static int send_text(const char *s)
{
    return gw_send_to_current_client(s, strlen(s));
}

void on_worker_start(void)
{
    const json_t *cfg = gw_module_config();
    const char *path = json_string_value(json_object_get(cfg, "event_log"));
    if (path)
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    log_event(event("worker_start", NULL));
}

void on_worker_stop(void)
{
    log_event(event("worker_stop", NULL));
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}

void on_connect(const char *client_id)
{
    log_event(event("connect", client_id));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

void on_websocket_connect(const char *client_id, const gw_request *req)
{
    json_t *o = event("ws_connect", client_id);
    if (o == NULL)
        return;
    json_object_set_new(o, "method", str_or_null(gw_request_method(req)));
    json_object_set_new(o, "uri", str_or_null(gw_request_uri(req)));
    json_object_set_new(o, "path", str_or_null(gw_request_path(req)));
    json_object_set_new(o, "query", str_or_null(gw_request_query_string(req)));
    /* The names the tests use (test_websocket.py). */
    json_object_set_new(o, "get_a", str_or_null(gw_request_get(req, "a")));
    json_object_set_new(o, "get_b", str_or_null(gw_request_get(req, "b")));
    json_object_set_new(o, "header_x_test", str_or_null(gw_request_header(req, "X-Test")));
    json_object_set_new(o, "header_host", str_or_null(gw_request_header(req, "host")));
    json_object_set_new(o, "cookie_sid", str_or_null(gw_request_cookie(req, "sid")));
    json_object_set_new(o, "cookie_lang", str_or_null(gw_request_cookie(req, "lang")));
    const json_t *all = gw_request_json(req);
    if (all)
        json_object_set_new(o, "request", json_deep_copy(all));
    log_event(o);
}

void on_close(const char *client_id)
{
    /* The session (read-only here) is logged with the event. */
    log_event(event("close", client_id));
}

/* Splits "A,B,C" into ids (pointers into buf, which is modified). */
static size_t split_ids(char *buf, const char **ids, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        ids[n++] = t;
    return n;
}

/* Runs one text command; returns the gw_* result, or -1000 for "not a command". */
static int run_command(const char *client_id, const char *m, size_t len, int *replied)
{
    *replied = 0;
    if (strncmp(m, "echo:", 5) == 0)
        return gw_send_to_current_client(m + 5, len - 5);
    if (strncmp(m, "all:", 4) == 0)
        return gw_send_to_all(m + 4, len - 4, NULL, 0, NULL, 0);
    if (strncmp(m, "allx:", 5) == 0) {
        const char *ex[1] = {client_id};
        return gw_send_to_all(m + 5, len - 5, NULL, 0, ex, 1);
    }
    if (strncmp(m, "list:", 5) == 0) {
        const char *colon = strchr(m + 5, ':');
        if (colon == NULL)
            return -1001;
        char buf[MAX_IDS * 21 + 1];
        size_t n = (size_t)(colon - (m + 5));
        if (n >= sizeof buf)
            return -1001;
        memcpy(buf, m + 5, n);
        buf[n] = '\0';
        const char *ids[MAX_IDS];
        size_t k = split_ids(buf, ids, MAX_IDS);
        return gw_send_to_all(colon + 1, len - (size_t)(colon + 1 - m), ids, k, NULL, 0);
    }
    if (strncmp(m, "to:", 3) == 0) {
        const char *colon = strchr(m + 3, ':');
        if (colon == NULL)
            return -1001;
        char id[64];
        size_t n = (size_t)(colon - (m + 3));
        if (n >= sizeof id)
            return -1001;
        memcpy(id, m + 3, n);
        id[n] = '\0';
        return gw_send_to_client(id, colon + 1, len - (size_t)(colon + 1 - m));
    }
    if (strncmp(m, "close:", 6) == 0)
        return gw_close_current_client(len > 6 ? m + 6 : NULL, len - 6);
    if (strncmp(m, "closeid:", 8) == 0)
        return gw_close_client(m + 8, NULL, 0);
    if (strcmp(m, "destroy") == 0)
        return gw_destroy_current_client();
    if (strncmp(m, "destroyid:", 10) == 0)
        return gw_destroy_client(m + 10);
    if (strcmp(m, "whoami") == 0) {
        const gw_client *c = gw_current_client();
        json_t *o = json_pack("{s:s, s:i, s:I, s:s, s:s, s:i}", "client_id", client_id, "worker",
                              gw_worker_id(), "pid", (json_int_t)getpid(), "protocol",
                              c ? c->protocol : "", "gateway", c ? c->gateway_addr : "",
                              "gateway_port", c ? c->gateway_port : 0);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        int rc = s ? send_text(s) : -ENOMEM;
        free(s);
        *replied = 1;
        return rc;
    }
    if (strncmp(m, "sess:set:", 9) == 0) {
        const char *eq = strchr(m + 9, '=');
        json_t *s = gw_session();
        if (eq == NULL || s == NULL)
            return -1001;
        char key[128];
        size_t n = (size_t)(eq - (m + 9));
        if (n >= sizeof key)
            return -1001;
        memcpy(key, m + 9, n);
        key[n] = '\0';
        json_object_set_new(s, key, json_string(eq + 1));
        *replied = 1;
        return send_text("ok");
    }
    if (strncmp(m, "sess:del:", 9) == 0) {
        json_t *s = gw_session();
        if (s == NULL)
            return -1001;
        json_object_del(s, m + 9);
        *replied = 1;
        return send_text("ok");
    }
    if (strncmp(m, "sess:get:", 9) == 0) {
        json_t *s = gw_session();
        json_t *v = s ? json_object_get(s, m + 9) : NULL;
        char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        int rc = send_text(text ? text : "null");
        free(text);
        *replied = 1;
        return rc;
    }
    if (strcmp(m, "bin") == 0) {
        unsigned char b[256];
        for (int i = 0; i < 256; i++)
            b[i] = (unsigned char)i;
        *replied = 1;
        return gw_send_to_current_client_ex(b, sizeof b, GW_BINARY);
    }
    if (strncmp(m, "big:", 4) == 0) {
        size_t n = strtoul(m + 4, NULL, 10);
        char *b = malloc(n ? n : 1);
        if (b == NULL)
            return -ENOMEM;
        memset(b, 'x', n);
        int rc = gw_send_to_current_client(b, n);
        free(b);
        *replied = 1;
        return rc;
    }
    if (strncmp(m, "rc:", 3) == 0) {
        int inner;
        int rc = run_command(client_id, m + 3, len - 3, &inner);
        char out[64];
        snprintf(out, sizeof out, "rc=%d", rc);
        send_text(out);
        *replied = 1;
        return rc;
    }
    return -1000;
}

static json_t *hex(const char *data, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *h = malloc(2 * n + 1);
    if (h == NULL)
        return json_null();
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[(unsigned char)data[i] >> 4];
        h[2 * i + 1] = digits[(unsigned char)data[i] & 15];
    }
    h[2 * n] = '\0';
    json_t *s = json_string(h);
    free(h);
    return s;
}

void on_message(const char *client_id, const char *data, size_t len)
{
    json_t *o = event("message", client_id);
    int binary = gw_message_is_binary();
    int rc, replied = 0;
    if (!binary && memchr(data, '\0', len) == NULL)
        rc = run_command(client_id, data, len, &replied);
    else
        rc = -1000;
    if (rc == -1000) {
        /* Not a command: echo as it came (text that is not UTF-8, e.g. from a
         * frame client, goes back as binary). */
        rc = gw_send_to_current_client_ex(data, len, binary ? GW_BINARY : 0);
        if (rc == GW_EUTF8)
            rc = gw_send_to_current_client_ex(data, len, GW_BINARY);
    }
    if (o) {
        size_t n = len < LOG_MSG_MAX ? len : LOG_MSG_MAX;
        json_t *text = json_stringn(data, n); /* NULL when not UTF-8 */
        if (text)
            json_object_set_new(o, "msg", text);
        else
            json_object_set_new(o, "msg_hex", hex(data, n));
        json_object_set_new(o, "len", json_integer((json_int_t)len));
        json_object_set_new(o, "binary", json_integer(binary));
        json_object_set_new(o, "rc", json_integer(rc));
        (void)replied;
    }
    log_event(o);
}
