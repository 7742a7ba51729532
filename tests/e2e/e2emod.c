/* e2emod.c - the business module of the browser end-to-end tests (tests/e2e/).
 *
 * Records every event as one JSON line, appended (O_APPEND, one write(2) per
 * line) to the file named by module_config "event_log", so that the test can
 * assert on what the server saw and when:
 *
 *   {"ev":"worker_start|connect|message|close","id":client_id,"t":ms,"len":bytes,
 *    "msg":text (first 200 bytes)}
 *
 * "t" is CLOCK_REALTIME in milliseconds (JavaScript's Date.now() clock).
 *
 * Answers, as JSON text messages:
 *   on connect:  {"type":"welcome","client_id":ID}
 *   a message:   {"type":"echo","client_id":ID,"data":the message}
 * so that a page always knows its client_id (and sees it change on reconnect).
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

#define LOG_MSG_MAX 200

static int log_fd = -1;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The first LOG_MSG_MAX bytes of a message (cut at a UTF-8 character boundary),
 * or "<binary>" when that is not valid UTF-8. */
static json_t *msg_excerpt(const char *data, size_t len)
{
    size_t cut = len < LOG_MSG_MAX ? len : LOG_MSG_MAX;
    while (cut > 0 && cut < len && ((unsigned char)data[cut] & 0xC0) == 0x80)
        cut--;
    json_t *s = json_stringn(data, cut);
    return s ? s : json_string("<binary>");
}

/* Appends one event as one line. */
static void log_event(const char *ev, const char *client_id, const char *data, size_t len)
{
    json_t *o = json_object();
    if (o == NULL)
        return;
    json_object_set_new(o, "ev", json_string(ev));
    json_object_set_new(o, "t", json_real(now_ms()));
    if (client_id)
        json_object_set_new(o, "id", json_string(client_id));
    if (data) {
        json_object_set_new(o, "len", json_integer((json_int_t)len));
        json_object_set_new(o, "msg", msg_excerpt(data, len));
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    char *line = malloc(n + 1);
    if (line && log_fd >= 0) {
        memcpy(line, text, n);
        line[n] = '\n';
        ssize_t w;
        do {
            w = write(log_fd, line, n + 1);
        } while (w < 0 && errno == EINTR);
    }
    free(line);
    free(text);
}

static void reply(const char *client_id, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (s)
        gw_send_to_client(client_id, s, strlen(s));
    free(s);
}

void on_worker_start(void)
{
    const char *path = json_string_value(json_object_get(gw_module_config(), "event_log"));
    if (path)
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    log_event("worker_start", NULL, NULL, 0);
}

void on_worker_stop(void)
{
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}

void on_connect(const char *client_id)
{
    log_event("connect", client_id, NULL, 0);
    reply(client_id, json_pack("{s:s, s:s}", "type", "welcome", "client_id", client_id));
}

void on_message(const char *client_id, const char *data, size_t len)
{
    log_event("message", client_id, data, len);
    /* Binary or invalid UTF-8 text is answered with its length only. */
    json_t *text = json_stringn(data, len);
    reply(client_id, json_pack("{s:s, s:s, s:o}", "type", "echo", "client_id", client_id, "data",
                               text ? text : json_integer((json_int_t)len)));
}

void on_close(const char *client_id)
{
    log_event("close", client_id, NULL, 0);
}
