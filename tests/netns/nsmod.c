/* nsmod.c - the business module of the network-namespace suite (tests/netns/).
 *
 * Every reply names the host and the worker that produced it, so the test can
 * tell which host's worker a client is bound to, and the sequenced commands let
 * it count messages end to end. module_config: {"host": "A", "event_log": PATH};
 * connect and close events are appended to PATH as JSON lines (one write(2) each,
 * O_APPEND; the hosts share the file system) with CLOCK_MONOTONIC times, the clock
 * of Python's time.monotonic().
 *
 * Text commands (replies are text messages):
 *   who                  {"id":client_id,"host":H,"worker":W}
 *   seq:N                ack:N:H:W                  (to the sender)
 *   uid:U                bind the uid, reply ok:uid:H:W
 *   join:G               join the group, reply ok:join:H:W
 *   say:G:N              send "msg:<sender id>:N" to group G (a chat line)
 *   touid:U:X            send X to uid U,            reply rc:<rc>:H
 *   togroup:G:X          send X to group G,          reply rc:<rc>:H
 *   toall:X              send X to every client,     reply rc:<rc>:H
 *   tocid:ID:X           send X to client ID,        reply rc:<rc>:H
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

static char host[32] = "?";
static int log_fd = -1;

static void log_line(const char *ev, const char *client_id)
{
    if (log_fd < 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"ev\":\"%s\",\"id\":\"%s\",\"host\":\"%s\",\"worker\":%d,\"pid\":%d,"
                     "\"t\":%.6f}\n",
                     ev, client_id, host, gw_worker_id(), (int)getpid(),
                     (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w;
        do
            w = write(log_fd, line, (size_t)n);
        while (w < 0 && errno == EINTR);
    }
}

void on_worker_start(void)
{
    const json_t *cfg = gw_module_config();
    const char *h = json_string_value(json_object_get(cfg, "host"));
    if (h)
        snprintf(host, sizeof host, "%s", h);
    const char *path = json_string_value(json_object_get(cfg, "event_log"));
    if (path)
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void on_worker_stop(void)
{
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}

void on_connect(const char *client_id)
{
    log_line("connect", client_id);
}

void on_close(const char *client_id)
{
    log_line("close", client_id);
}

static void reply(const char *s)
{
    gw_send_to_current_client(s, strlen(s));
}

static void reply_rc(int rc)
{
    char out[64];
    snprintf(out, sizeof out, "rc:%d:%s", rc, host);
    reply(out);
}

/* Splits "A:REST" at the first ':' into a (copied to buf) and *rest. */
static int split(const char *s, char *buf, size_t n, const char **rest)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= n)
        return -1;
    memcpy(buf, s, (size_t)(colon - s));
    buf[colon - s] = '\0';
    *rest = colon + 1;
    return 0;
}

void on_message(const char *client_id, const char *data, size_t len)
{
    char out[512], name[128];
    const char *rest;
    if (gw_message_is_binary() || memchr(data, '\0', len))
        return;
    if (strcmp(data, "who") == 0) {
        snprintf(out, sizeof out, "{\"id\":\"%s\",\"host\":\"%s\",\"worker\":%d}", client_id, host,
                 gw_worker_id());
        reply(out);
    } else if (strncmp(data, "seq:", 4) == 0) {
        snprintf(out, sizeof out, "ack:%.64s:%s:%d", data + 4, host, gw_worker_id());
        reply(out);
    } else if (strncmp(data, "uid:", 4) == 0) {
        int rc = gw_bind_uid(client_id, data + 4);
        snprintf(out, sizeof out, rc == 0 ? "ok:uid:%s:%d" : "err:uid:%s:%d", host,
                 rc == 0 ? gw_worker_id() : rc);
        reply(out);
    } else if (strncmp(data, "join:", 5) == 0) {
        int rc = gw_join_group(client_id, data + 5);
        snprintf(out, sizeof out, rc == 0 ? "ok:join:%s:%d" : "err:join:%s:%d", host,
                 rc == 0 ? gw_worker_id() : rc);
        reply(out);
    } else if (strncmp(data, "say:", 4) == 0 && split(data + 4, name, sizeof name, &rest) == 0) {
        int n = snprintf(out, sizeof out, "msg:%s:%.200s", client_id, rest);
        gw_send_to_group(name, out, (size_t)n);
    } else if (strncmp(data, "touid:", 6) == 0 && split(data + 6, name, sizeof name, &rest) == 0) {
        reply_rc(gw_send_to_uid(name, rest, strlen(rest)));
    } else if (strncmp(data, "togroup:", 8) == 0 &&
               split(data + 8, name, sizeof name, &rest) == 0) {
        reply_rc(gw_send_to_group(name, rest, strlen(rest)));
    } else if (strncmp(data, "toall:", 6) == 0) {
        reply_rc(gw_send_to_all(data + 6, len - 6, NULL, 0, NULL, 0));
    } else if (strncmp(data, "tocid:", 6) == 0 && split(data + 6, name, sizeof name, &rest) == 0) {
        reply_rc(gw_send_to_client(name, rest, strlen(rest)));
    } else {
        reply("unknown");
    }
}
