/* chat: a chat with rooms and private messages, after GatewayWorker's
 * workerman-chat demo, using the whole Gateway API.
 *
 *   rooms             = groups ("room:<name>")
 *   private messages  = sends to a uid (the user's name is their uid, so every
 *                       tab a user has open gets them)
 *   who is here       = a query (sessions of the room's members), answered
 *                       asynchronously: no other client waits for it
 *   the user's name   = the session, which every later event and on_close see
 *
 * Client -> server (JSON text frames):
 *   {"type":"login","name":"alice","room":"lobby"}
 *   {"type":"say","content":"hi"}                     to the room
 *   {"type":"say","to":"bob","content":"hi"}          private, to every tab of bob
 *   {"type":"join","room":"games"}                    change room
 *   {"type":"users"}                                  ask who is in the room
 *   {"type":"ping"}                                   heartbeat (ignored)
 * Server -> client:
 *   {"type":"welcome","client_id":"..."}
 *   {"type":"login"|"logout","client_id","name","room","time"}   to the room
 *   {"type":"say","from_client_id","from_name","room","content","time"}
 *   {"type":"say","private":true,"from_name","to","content","time"}
 *   {"type":"users","room","users":[{"client_id","name"}],"complete":true}
 *   {"type":"error","message":"..."}
 */
#include <gatewayworker.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

GW_MODULE_ABI;

#define MAX_NAME 32
#define MAX_ROOM 32
#define MAX_CONTENT 2000

static void now_text(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static char *dump(json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return s;
}

static void send_to(const char *client_id, json_t *obj)
{
    char *s = dump(obj);
    if (s)
        gw_send_to_client(client_id, s, strlen(s));
    free(s);
}

static void send_to_room(const char *room, json_t *obj)
{
    char group[MAX_ROOM + 8];
    snprintf(group, sizeof group, "room:%s", room);
    char *s = dump(obj);
    if (s)
        gw_send_to_group(group, s, strlen(s));
    free(s);
}

static void send_error(const char *message)
{
    char *s = dump(json_pack("{s:s, s:s}", "type", "error", "message", message));
    if (s)
        gw_send_to_current_client(s, strlen(s));
    free(s);
}

/* A name or room: 1..max bytes of printable characters. */
static int valid_label(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

void on_connect(const char *client_id)
{
    send_to(client_id, json_pack("{s:s, s:s}", "type", "welcome", "client_id", client_id));
}

/* The answer to "who is in the room": runs later, from the loop. */
typedef struct users_req {
    char client_id[21];
    char room[MAX_ROOM + 1];
} users_req;

static void users_done(const gw_result *r, void *arg)
{
    users_req *q = arg;
    json_t *users = json_array();
    const char *id;
    json_t *session;
    json_object_foreach((json_t *)r->value, id, session)
    {
        const char *name = json_string_value(json_object_get(session, "name"));
        if (name)
            json_array_append_new(users, json_pack("{s:s, s:s}", "client_id", id, "name", name));
    }
    send_to(q->client_id, json_pack("{s:s, s:s, s:o, s:b}", "type", "users", "room", q->room,
                                    "users", users, "complete", r->complete));
    free(q);
}

static void ask_users(const char *client_id, const char *room)
{
    users_req *q = malloc(sizeof *q);
    if (q == NULL)
        return;
    snprintf(q->client_id, sizeof q->client_id, "%s", client_id);
    snprintf(q->room, sizeof q->room, "%s", room);
    char group[MAX_ROOM + 8];
    snprintf(group, sizeof group, "room:%s", room);
    if (gw_get_client_sessions_by_group(group, users_done, q) < 0)
        free(q);
}

static void enter_room(const char *client_id, const char *name, const char *room)
{
    char group[MAX_ROOM + 8], t[32];
    snprintf(group, sizeof group, "room:%s", room);
    gw_join_group(client_id, group);
    json_object_set_new(gw_session(), "room", json_string(room));
    now_text(t, sizeof t);
    send_to_room(room, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "login", "client_id",
                                 client_id, "name", name, "room", room, "time", t));
    ask_users(client_id, room);
}

static void leave_room(const char *client_id, const char *name, const char *room)
{
    char group[MAX_ROOM + 8], t[32];
    snprintf(group, sizeof group, "room:%s", room);
    gw_leave_group(client_id, group);
    now_text(t, sizeof t);
    send_to_room(room, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "logout", "client_id",
                                 client_id, "name", name, "room", room, "time", t));
}

static void login(const char *client_id, json_t *msg)
{
    const char *name = json_string_value(json_object_get(msg, "name"));
    const char *room = json_string_value(json_object_get(msg, "room"));
    if (room == NULL)
        room = "lobby";
    if (!valid_label(name, MAX_NAME) || !valid_label(room, MAX_ROOM)) {
        send_error("login needs a name and a room of 1 to 32 characters");
        return;
    }
    json_t *session = gw_session();
    const char *old_room = json_string_value(json_object_get(session, "room"));
    const char *old_name = json_string_value(json_object_get(session, "name"));
    if (old_room && old_name)
        leave_room(client_id, old_name, old_room);
    json_object_set_new(session, "name", json_string(name));
    gw_bind_uid(client_id, name);
    enter_room(client_id, name, room);
}

static void say(const char *client_id, json_t *msg)
{
    json_t *session = gw_session();
    const char *name = json_string_value(json_object_get(session, "name"));
    const char *room = json_string_value(json_object_get(session, "room"));
    const char *content = json_string_value(json_object_get(msg, "content"));
    const char *to = json_string_value(json_object_get(msg, "to"));
    char t[32];
    if (name == NULL || room == NULL) {
        send_error("log in first");
        return;
    }
    if (content == NULL || strlen(content) > MAX_CONTENT) {
        send_error("say needs a content of at most 2000 bytes");
        return;
    }
    now_text(t, sizeof t);
    if (to) {
        if (!valid_label(to, MAX_NAME)) {
            send_error("bad recipient");
            return;
        }
        char *s = dump(json_pack("{s:s, s:b, s:s, s:s, s:s, s:s}", "type", "say", "private", 1,
                                 "from_name", name, "to", to, "content", content, "time", t));
        if (s) {
            gw_send_to_uid(to, s, strlen(s));
            if (strcmp(to, name) != 0)
                gw_send_to_uid(name, s, strlen(s)); /* the sender's tabs see it too */
        }
        free(s);
        return;
    }
    send_to_room(room, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "say",
                                 "from_client_id", client_id, "from_name", name, "room", room,
                                 "content", content, "time", t));
}

static void join(const char *client_id, json_t *msg)
{
    json_t *session = gw_session();
    const char *name = json_string_value(json_object_get(session, "name"));
    const char *room = json_string_value(json_object_get(msg, "room"));
    const char *old = json_string_value(json_object_get(session, "room"));
    if (name == NULL) {
        send_error("log in first");
        return;
    }
    if (!valid_label(room, MAX_ROOM)) {
        send_error("a room is 1 to 32 characters");
        return;
    }
    if (old && strcmp(old, room) == 0)
        return;
    if (old)
        leave_room(client_id, name, old);
    enter_room(client_id, name, room);
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
    else if (strcmp(type, "join") == 0)
        join(client_id, msg);
    else if (strcmp(type, "users") == 0) {
        const char *room = json_string_value(json_object_get(gw_session(), "room"));
        if (room)
            ask_users(client_id, room);
        else
            send_error("log in first");
    } else if (strcmp(type, "ping") != 0)
        send_error("unknown message type");
    json_decref(msg);
}

void on_close(const char *client_id)
{
    json_t *session = gw_session();
    const char *name = json_string_value(json_object_get(session, "name"));
    const char *room = json_string_value(json_object_get(session, "room"));
    if (name == NULL || room == NULL)
        return; /* never logged in */
    char t[32];
    now_text(t, sizeof t);
    /* The gateway already removed the client from its room. */
    send_to_room(room, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "logout", "client_id",
                                 client_id, "name", name, "room", room, "time", t));
}
