/* chat: a chat room, as in GatewayWorker's workerman-chat demo.
 *
 * Client -> server (JSON text frames):
 *   {"type":"login","name":"alice"}     join the room under a name
 *   {"type":"say","content":"hi"}       say something to everyone
 *   {"type":"ping"}                     heartbeat (ignored here)
 * Server -> client:
 *   {"type":"welcome","client_id":"..."}                    on connect
 *   {"type":"login","client_id":"...","name":"alice","time":"..."}   to everyone
 *   {"type":"say","from_client_id":"...","from_name":"alice","content":"hi","time":"..."}
 *   {"type":"logout","client_id":"...","name":"alice","time":"..."}
 *   {"type":"error","message":"..."}
 * The user's name lives in the client's session, so any worker handling the
 * client's next event (or its on_close) knows it.
 */
#include <gatewayworker.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

GW_MODULE_ABI;

#define MAX_NAME 32
#define MAX_CONTENT 2000

static void now_text(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Serializes and sends obj (consumed) to one client, or to everyone (id NULL). */
static void send_json(const char *client_id, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (s == NULL)
        return;
    if (client_id)
        gw_send_to_client(client_id, s, strlen(s));
    else
        gw_send_to_all(s, strlen(s), NULL, 0, NULL, 0);
    free(s);
}

static void send_error(const char *message)
{
    json_t *o = json_pack("{s:s, s:s}", "type", "error", "message", message);
    if (o) {
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (s) {
            gw_send_to_current_client(s, strlen(s));
            free(s);
        }
    }
}

void on_connect(const char *client_id)
{
    send_json(client_id, json_pack("{s:s, s:s}", "type", "welcome", "client_id", client_id));
}

static void login(const char *client_id, json_t *msg)
{
    const char *name = json_string_value(json_object_get(msg, "name"));
    if (name == NULL || name[0] == '\0' || strlen(name) > MAX_NAME) {
        send_error("login needs a name of 1 to 32 bytes");
        return;
    }
    json_object_set_new(gw_session(), "name", json_string(name));
    char t[32];
    now_text(t, sizeof t);
    send_json(NULL, json_pack("{s:s, s:s, s:s, s:s}", "type", "login", "client_id", client_id,
                              "name", name, "time", t));
}

static void say(const char *client_id, json_t *msg)
{
    const char *name = json_string_value(json_object_get(gw_session(), "name"));
    const char *content = json_string_value(json_object_get(msg, "content"));
    if (name == NULL) {
        send_error("log in first");
        return;
    }
    if (content == NULL || strlen(content) > MAX_CONTENT) {
        send_error("say needs a content of at most 2000 bytes");
        return;
    }
    char t[32];
    now_text(t, sizeof t);
    send_json(NULL, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "say", "from_client_id",
                              client_id, "from_name", name, "content", content, "time", t));
}

void on_message(const char *client_id, const char *data, size_t len)
{
    json_t *msg = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type == NULL)
        send_error("messages are JSON objects with a \"type\"");
    else if (strcmp(type, "login") == 0)
        login(client_id, msg);
    else if (strcmp(type, "say") == 0)
        say(client_id, msg);
    else if (strcmp(type, "ping") != 0)
        send_error("unknown message type");
    json_decref(msg);
}

void on_close(const char *client_id)
{
    const char *name = json_string_value(json_object_get(gw_session(), "name"));
    if (name == NULL)
        return; /* never logged in */
    char t[32];
    now_text(t, sizeof t);
    send_json(NULL, json_pack("{s:s, s:s, s:s, s:s}", "type", "logout", "client_id", client_id,
                              "name", name, "time", t));
}
