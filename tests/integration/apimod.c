/* apimod.c - the business module of the API integration tests (test_api*.py):
 * every gw_* function of include/gatewayworker.h reachable from a client as a
 * JSON command, with its return code in the reply.
 *
 * A client sends one JSON object per message:
 *
 *   {"op": NAME, "seq": any, ...arguments}
 *
 * and gets {"op": NAME, "seq": same, "rc": return value, ...} back (queries in
 * "async" mode answer later, from the query's callback). Arguments:
 *
 *   strings (client ids, uids, groups, data) are JSON strings, or
 *     null                 a NULL pointer
 *     {"hex": "ff00"}      raw bytes (for non-UTF-8 names and messages)
 *     {"fill": "x", "n": N}  N bytes of x (oversize messages and names)
 *     "self"               (client ids only) the client of the current event
 *   lists are JSON arrays of such strings; "<name>_n" overrides the count
 *     given to the function (a NULL list with a count, a shorter count)
 *   "flags": 0, 1 (GW_BINARY), 2 (GW_RAW)
 *
 * Operations (rc = the gw_* return value):
 *
 *   whoami                     client_id, worker, pid, protocol, gateway, remote
 *   echo {data}                gw_send_to_current_client(data)
 *   send_to_client {id, data, flags}        send_to_current {data, flags}
 *   send_to_all {data, ids?, exclude?, flags}   (ids absent: NULL = everyone)
 *   send_to_uid {uid, data}    send_to_uids {uids, data, flags}
 *   send_to_group {group, data}   send_to_groups {groups, data, exclude?, flags}
 *   close_client {id, data?, code?, flags?}  close_current {data?}
 *   destroy_client {id}        destroy_current
 *   bind_uid / unbind_uid {id, uid}   join_group / leave_group {id, group}
 *   ungroup {group}
 *   set_session {id, session}  update_session {id, patch}
 *                              (in session, patch and set, {"$fill": "c", "$n": N}
 *                              stands for a string of N times c)
 *   update_many {id, prefix, n}   n gw_update_session calls {prefix<i>: i}
 *   session_put {set: {k: v}}  changes gw_session() in place (null deletes)
 *   session_hold {session, merge?}  keeps gw_session(), calls gw_set_session (or
 *                              gw_update_session) on the current client, then
 *                              sets "held": true through the kept pointer
 *   session_get {keys_only?}   {"session": gw_session()} (or its "keys")
 *   q {q: QUERY, id?, uid?, group?, uids?, groups?, mode: "async"|"wait",
 *      timeout?, keys_only?}   a query: {"id": query id, "result", "complete",
 *                              "asked", "answered", "ms": time to the result}
 *   wait_bad                   gw_wait on ids it must refuse
 *   timer_ctx                  the *_current_client functions from a timer
 *   timer_bad                  gw_timer_add / gw_timer_del with bad arguments
 *   ws_reject {status}         gw_websocket_reject outside on_websocket_connect
 *   strerror {codes}           gw_strerror of each
 *   batch {ops: [...]}         runs the operations in one callback, in order;
 *                              {"results": [reply, ...]}
 *
 * Every event is logged as one JSON line to module_config "event_log" (like
 * testmod.c): {"ev", "id", "worker", "pid", "t0" (start), "t" (end), "msg",
 * "session", ...}. on_close also logs what the session functions return there
 * ("rc_set", "rc_update"). on_websocket_connect rejects with 401 when
 * module_config "ws_token" is set and the query has no token=<ws_token>; a query
 * parameter try_status=N first calls gw_websocket_reject(N, ...) (its rc is
 * logged as "rc_try"; a refused call must leave the handshake accepted).
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

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- event log ---- */

static void write_line(json_t *obj)
{
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

static json_t *event(const char *ev, const char *client_id, double t0)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "ev", json_string(ev));
    if (client_id)
        json_object_set_new(o, "id", json_string(client_id));
    json_object_set_new(o, "worker", json_integer(gw_worker_id()));
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(o, "t0", json_real(t0));
    const gw_client *c = gw_current_client();
    if (c) {
        json_object_set_new(o, "proto", json_string(c->protocol));
        json_object_set_new(o, "gateway", json_string(c->gateway_addr));
    }
    json_t *s = gw_session();
    if (s)
        json_object_set_new(o, "session", json_deep_copy(s));
    return o;
}

static void log_event(json_t *o)
{
    if (o == NULL)
        return;
    json_object_set_new(o, "t", json_real(mono_now()));
    write_line(o);
}

/* ---- arguments ---- */

/* Allocations of one command, freed when it is done. */
typedef struct arena {
    void *p[256];
    size_t n;
} arena;

static void *arena_alloc(arena *a, size_t n)
{
    if (a->n == sizeof a->p / sizeof a->p[0])
        return NULL;
    void *p = calloc(1, n ? n : 1);
    if (p)
        a->p[a->n++] = p;
    return p;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    a->n = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A string argument: *out (NUL-terminated, NULL for JSON null or absent) and its
 * length. `current` replaces "self" for client ids. Returns 0, or -1 when the
 * argument cannot be decoded. */
static int str_arg(arena *a, const json_t *v, const char *current, const char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (current && strcmp(s, "self") == 0)
            s = current;
        *out = s;
        *len = strlen(s);
        if (s != current)
            *len = json_string_length(v);
        return 0;
    }
    if (!json_is_object(v))
        return -1;
    const char *hex = json_string_value(json_object_get(v, "hex"));
    if (hex) {
        size_t n = strlen(hex) / 2;
        char *b = arena_alloc(a, n + 1);
        if (b == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            b[i] = (char)(hi << 4 | lo);
        }
        *out = b;
        *len = n;
        return 0;
    }
    const char *fill = json_string_value(json_object_get(v, "fill"));
    if (fill && fill[0]) {
        size_t n = (size_t)json_integer_value(json_object_get(v, "n"));
        char *b = arena_alloc(a, n + 1);
        if (b == NULL)
            return -1;
        memset(b, fill[0], n);
        *out = b;
        *len = n;
        return 0;
    }
    return -1;
}

/* A list argument `key` of req: *out is NULL when absent or null. The count is
 * "<key>_n" when given. */
static int list_arg(arena *a, const json_t *req, const char *key, const char *current,
                    const char *const **out, size_t *n)
{
    const json_t *v = json_object_get(req, key);
    *out = NULL;
    *n = 0;
    if (v && json_is_array(v)) {
        size_t k = json_array_size(v);
        const char **arr = arena_alloc(a, (k ? k : 1) * sizeof *arr);
        if (arr == NULL)
            return -1;
        for (size_t i = 0; i < k; i++) {
            size_t len;
            if (str_arg(a, json_array_get(v, i), current, &arr[i], &len) < 0)
                return -1;
        }
        *out = arr;
        *n = k;
    } else if (v && !json_is_null(v)) {
        return -1;
    }
    char nkey[64];
    snprintf(nkey, sizeof nkey, "%s_n", key);
    const json_t *nv = json_object_get(req, nkey);
    if (json_is_integer(nv))
        *n = (size_t)json_integer_value(nv);
    return 0;
}

/* A copy of v where every {"$fill": "c", "$n": N} is a string of N times c (big
 * sessions without big requests). */
static json_t *expand(const json_t *v)
{
    if (json_is_object(v)) {
        const char *f = json_string_value(json_object_get(v, "$fill"));
        if (f && f[0] && json_object_size(v) == 2) {
            size_t n = (size_t)json_integer_value(json_object_get(v, "$n"));
            char *b = malloc(n + 1);
            if (b == NULL)
                return NULL;
            memset(b, f[0], n);
            json_t *s = json_stringn(b, n);
            free(b);
            return s;
        }
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) json_object_set_new(o, k, expand(x));
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, expand(x));
        return a;
    }
    return v ? json_deep_copy(v) : NULL;
}

/* ---- replies ---- */

static int send_json_to(const char *client_id, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(o);
    if (s == NULL)
        return -ENOMEM;
    int rc = client_id ? gw_send_to_client(client_id, s, strlen(s))
                       : gw_send_to_current_client(s, strlen(s));
    free(s);
    return rc;
}

static json_t *reply_for(const json_t *req)
{
    json_t *r = json_object();
    json_object_set(r, "op", json_object_get(req, "op"));
    json_t *seq = json_object_get(req, "seq");
    if (seq)
        json_object_set(r, "seq", seq);
    return r;
}

/* ---- queries ---- */

typedef struct pending_q {
    char asker[21];
    json_t *head; /* op, seq, q */
    double t0;
    struct pending_q *next, *prev;
} pending_q;

static pending_q *pendings;

static void pending_unlink(pending_q *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        pendings = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void pending_free(pending_q *p)
{
    json_decref(p->head);
    free(p);
}

/* The keys of an object, as an array (null for anything else). */
static json_t *keys_of(const json_t *o)
{
    if (!json_is_object(o))
        return json_null();
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) json_array_append_new(a, json_string(k));
    return a;
}

static void put_result(json_t *r, const gw_result *res, double t0)
{
    if (json_is_true(json_object_get(r, "keys_only")))
        json_object_set_new(r, "result", keys_of(res->value));
    else
        json_object_set_new(r, "result", res->value ? json_deep_copy(res->value) : json_null());
    json_object_del(r, "keys_only");
    json_object_set_new(r, "complete", json_boolean(res->complete));
    json_object_set_new(r, "asked", json_integer(res->asked));
    json_object_set_new(r, "answered", json_integer(res->answered));
    json_object_set_new(r, "ms", json_integer((json_int_t)((mono_now() - t0) * 1000)));
}

static void query_cb(const gw_result *res, void *arg)
{
    pending_q *p = arg;
    pending_unlink(p);
    json_t *r = json_deep_copy(p->head);
    put_result(r, res, p->t0);
    /* No current client inside a query callback. */
    json_object_set_new(r, "cur_null", json_boolean(gw_current_client() == NULL));
    json_object_set_new(r, "session_null", json_boolean(gw_session() == NULL));
    json_object_set_new(r, "cb", json_true());
    send_json_to(p->asker, r);
    pending_free(p);
}

/* Starts the query named in req; returns its id (or the negative error). */
static long start_query(arena *a, const json_t *req, const char *cur, gw_result_cb cb, void *arg,
                        int *known)
{
    const char *q = json_string_value(json_object_get(req, "q"));
    const char *id = NULL, *uid = NULL, *group = NULL;
    size_t len, nuids = 0, ngroups = 0;
    const char *const *uids = NULL, *const *groups = NULL;
    *known = 1;
    if (q == NULL || str_arg(a, json_object_get(req, "id"), cur, &id, &len) < 0 ||
        str_arg(a, json_object_get(req, "uid"), NULL, &uid, &len) < 0 ||
        str_arg(a, json_object_get(req, "group"), NULL, &group, &len) < 0 ||
        list_arg(a, req, "uids", NULL, &uids, &nuids) < 0 ||
        list_arg(a, req, "groups", NULL, &groups, &ngroups) < 0) {
        *known = 0;
        return 0;
    }
#define Q0(name)                                                                                   \
    if (strcmp(q, #name) == 0)                                                                     \
        return gw_##name(cb, arg);
#define Q1(name, x)                                                                                \
    if (strcmp(q, #name) == 0)                                                                     \
        return gw_##name(x, cb, arg);
    Q1(is_online, id)
    Q1(get_session, id)
    Q1(get_uid_by_client_id, id)
    Q0(get_all_client_count)
    Q1(get_client_count_by_group, group)
    Q0(get_all_client_id_list)
    Q1(get_client_id_list_by_group, group)
    Q0(get_all_client_sessions)
    Q1(get_client_sessions_by_group, group)
    Q1(get_client_id_by_uid, uid)
    Q1(is_uid_online, uid)
    Q0(get_all_uid_list)
    Q0(get_all_uid_count)
    Q1(get_uid_list_by_group, group)
    Q1(get_uid_count_by_group, group)
    Q0(get_all_group_id_list)
    Q0(get_all_group_uid_list)
    Q0(get_all_group_client_id_list)
    Q0(get_connections)
    if (strcmp(q, "batch_get_client_id_by_uid") == 0)
        return gw_batch_get_client_id_by_uid(uids, nuids, cb, arg);
    if (strcmp(q, "batch_get_client_count_by_group") == 0)
        return gw_batch_get_client_count_by_group(groups, ngroups, cb, arg);
#undef Q0
#undef Q1
    *known = 0;
    return 0;
}

/* Runs a query; for "async" the reply comes from query_cb (NULL returned). */
static json_t *op_query(arena *a, const json_t *req, const char *cur, json_t *r)
{
    const char *mode = json_string_value(json_object_get(req, "mode"));
    int wait = mode && strcmp(mode, "wait") == 0;
    double t0 = mono_now();
    json_object_set(r, "q", json_object_get(req, "q"));
    if (json_is_true(json_object_get(req, "keys_only")))
        json_object_set_new(r, "keys_only", json_true());
    pending_q *p = NULL;
    if (!wait) {
        p = calloc(1, sizeof *p);
        if (p == NULL) {
            json_object_set_new(r, "rc", json_integer(-ENOMEM));
            return r;
        }
        snprintf(p->asker, sizeof p->asker, "%s", cur);
        p->head = json_deep_copy(r);
        p->t0 = t0;
    }
    int known;
    long id = start_query(a, req, cur, p ? query_cb : NULL, p, &known);
    if (!known) {
        if (p)
            pending_free(p);
        json_object_set_new(r, "error", json_string("unknown query or bad arguments"));
        return r;
    }
    json_object_set_new(r, "rc", json_integer(id));
    json_object_set_new(r, "id", json_integer(id));
    if (id <= 0) {
        if (p)
            pending_free(p);
        return r;
    }
    if (p) {
        json_object_set_new(p->head, "rc", json_integer(id));
        json_object_set_new(p->head, "id", json_integer(id));
        p->next = pendings;
        if (pendings)
            pendings->prev = p;
        pendings = p;
        json_decref(r);
        return NULL; /* answered by query_cb */
    }
    double timeout = json_number_value(json_object_get(req, "timeout"));
    const gw_result *res = gw_wait(id, timeout);
    if (res == NULL) {
        json_object_set_new(r, "wait_null", json_true());
        return r;
    }
    put_result(r, res, t0);
    json_object_set_new(r, "t_end", json_real(mono_now()));
    /* The result stays valid until the next gw_wait: waiting again for the same id
     * must be refused. */
    json_object_set_new(r, "again_null", json_boolean(gw_wait(id, 0) == NULL));
    return r;
}

static void ignore_cb(const gw_result *res, void *arg)
{
    (void)res;
    pending_q *p = arg;
    pending_unlink(p);
    pending_free(p);
}

static json_t *op_wait_bad(const char *cur, json_t *r)
{
    json_object_set_new(r, "zero", json_boolean(gw_wait(0, 0.1) == NULL));
    json_object_set_new(r, "negative", json_boolean(gw_wait(-5, 0.1) == NULL));
    json_object_set_new(r, "unknown", json_boolean(gw_wait(999999999L, 0.1) == NULL));
    /* A query started with a callback cannot be waited for. */
    pending_q *p = calloc(1, sizeof *p);
    if (p) {
        snprintf(p->asker, sizeof p->asker, "%s", cur);
        p->head = json_object();
        p->next = pendings;
        if (pendings)
            pendings->prev = p;
        pendings = p;
        long id = gw_get_all_client_count(ignore_cb, p);
        json_object_set_new(r, "with_cb", json_boolean(id > 0 && gw_wait(id, 0.1) == NULL));
        if (id <= 0) {
            pending_unlink(p);
            pending_free(p);
        }
    }
    json_object_set_new(r, "rc", json_integer(0));
    return r;
}

/* ---- timers ---- */

static void timer_ctx_fire(void *arg)
{
    char *asker = arg;
    json_t *r = json_pack("{s:s}", "op", "timer_ctx");
    json_object_set_new(r, "send_current", json_integer(gw_send_to_current_client("x", 1)));
    json_object_set_new(r, "send_current_ex",
                        json_integer(gw_send_to_current_client_ex("x", 1, GW_BINARY)));
    json_object_set_new(r, "close_current", json_integer(gw_close_current_client(NULL, 0)));
    json_object_set_new(r, "destroy_current", json_integer(gw_destroy_current_client()));
    json_object_set_new(r, "ws_reject", json_integer(gw_websocket_reject(401, "no")));
    json_object_set_new(r, "current_null", json_boolean(gw_current_client() == NULL));
    json_object_set_new(r, "session_null", json_boolean(gw_session() == NULL));
    json_object_set_new(r, "is_binary", json_integer(gw_message_is_binary()));
    json_object_set_new(r, "rc", json_integer(0));
    send_json_to(asker, r);
    free(asker);
}

static void never_cb(void *arg)
{
    (void)arg;
}

/* ---- operations ---- */

static json_t *run_op(const json_t *req, const char *cur);

static int flags_of(const json_t *req)
{
    return (int)json_integer_value(json_object_get(req, "flags"));
}

/* Returns the reply (NULL when the operation answers later). */
static json_t *run_op_in(arena *a, const json_t *req, const char *cur)
{
    json_t *r = reply_for(req);
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *id = NULL, *data = NULL, *uid = NULL, *group = NULL;
    size_t id_len, dlen, nlen;
    const char *const *ids = NULL, *const *ex = NULL, *const *names = NULL;
    size_t nids = 0, nex = 0, nnames = 0;
    int bad = op == NULL ||
              str_arg(a, json_object_get(req, "id"), cur, &id, &id_len) < 0 ||
              str_arg(a, json_object_get(req, "data"), NULL, &data, &dlen) < 0 ||
              str_arg(a, json_object_get(req, "uid"), NULL, &uid, &nlen) < 0 ||
              str_arg(a, json_object_get(req, "group"), NULL, &group, &nlen) < 0 ||
              list_arg(a, req, "ids", cur, &ids, &nids) < 0 ||
              list_arg(a, req, "exclude", cur, &ex, &nex) < 0;
    if (bad) {
        json_object_set_new(r, "error", json_string("bad arguments"));
        return r;
    }
    /* An explicit "len" overrides the data length (NULL data with a length). */
    if (json_is_integer(json_object_get(req, "len")))
        dlen = (size_t)json_integer_value(json_object_get(req, "len"));
    unsigned flags = (unsigned)flags_of(req);
    long rc = 0;
    int known = 1;

    if (strcmp(op, "whoami") == 0) {
        const gw_client *c = gw_current_client();
        json_object_set_new(r, "client_id", json_string(cur));
        json_object_set_new(r, "worker", json_integer(gw_worker_id()));
        json_object_set_new(r, "pid", json_integer((json_int_t)getpid()));
        json_object_set_new(r, "protocol", json_string(c ? c->protocol : ""));
        json_object_set_new(r, "gateway", json_string(c ? c->gateway_addr : ""));
        json_object_set_new(r, "gateway_port", json_integer(c ? c->gateway_port : 0));
        json_object_set_new(r, "remote", json_string(c ? c->remote_addr : ""));
    } else if (strcmp(op, "echo") == 0) {
        rc = gw_send_to_current_client_ex(data, dlen, flags);
    } else if (strcmp(op, "send_to_client") == 0) {
        rc = gw_send_to_client_ex(id, data, dlen, flags);
    } else if (strcmp(op, "send_to_current") == 0) {
        rc = gw_send_to_current_client_ex(data, dlen, flags);
    } else if (strcmp(op, "send_to_all") == 0) {
        rc = gw_send_to_all_ex(data, dlen, ids, nids, ex, nex, flags);
    } else if (strcmp(op, "send_to_uid") == 0) {
        rc = gw_send_to_uid(uid, data, dlen);
    } else if (strcmp(op, "send_to_uids") == 0) {
        if (list_arg(a, req, "uids", NULL, &names, &nnames) < 0)
            known = 0;
        else
            rc = gw_send_to_uids_ex(names, nnames, data, dlen, flags);
    } else if (strcmp(op, "send_to_group") == 0) {
        rc = gw_send_to_group(group, data, dlen);
    } else if (strcmp(op, "send_to_groups") == 0) {
        if (list_arg(a, req, "groups", NULL, &names, &nnames) < 0)
            known = 0;
        else
            rc = gw_send_to_groups_ex(names, nnames, data, dlen, ex, nex, flags);
    } else if (strcmp(op, "close_client") == 0) {
        rc = gw_close_client_ex(id, data, dlen,
                                (uint16_t)json_integer_value(json_object_get(req, "code")), flags);
    } else if (strcmp(op, "close_current") == 0) {
        rc = gw_close_current_client(data, dlen);
    } else if (strcmp(op, "destroy_client") == 0) {
        rc = gw_destroy_client(id);
    } else if (strcmp(op, "destroy_current") == 0) {
        rc = gw_destroy_current_client();
    } else if (strcmp(op, "bind_uid") == 0) {
        rc = gw_bind_uid(id, uid);
    } else if (strcmp(op, "unbind_uid") == 0) {
        rc = gw_unbind_uid(id, uid);
    } else if (strcmp(op, "join_group") == 0) {
        rc = gw_join_group(id, group);
    } else if (strcmp(op, "leave_group") == 0) {
        rc = gw_leave_group(id, group);
    } else if (strcmp(op, "ungroup") == 0) {
        rc = gw_ungroup(group);
    } else if (strcmp(op, "set_session") == 0) {
        json_t *v = expand(json_object_get(req, "session"));
        rc = gw_set_session(id, v);
        json_decref(v);
    } else if (strcmp(op, "update_session") == 0) {
        json_t *v = expand(json_object_get(req, "patch"));
        rc = gw_update_session(id, v);
        json_decref(v);
    } else if (strcmp(op, "update_many") == 0) {
        const char *prefix = json_string_value(json_object_get(req, "prefix"));
        json_int_t n = json_integer_value(json_object_get(req, "n"));
        for (json_int_t i = 0; i < n && rc == 0; i++) {
            char key[128];
            snprintf(key, sizeof key, "%s%lld", prefix ? prefix : "k", (long long)i);
            json_t *patch = json_pack("{s:I}", key, i);
            rc = gw_update_session(id, patch);
            json_decref(patch);
        }
    } else if (strcmp(op, "session_put") == 0) {
        json_t *s = gw_session();
        json_t *set = expand(json_object_get(req, "set"));
        const char *k;
        json_t *v;
        if (s == NULL)
            rc = -1;
        else
            json_object_foreach(set, k, v)
            {
                if (json_is_null(v))
                    json_object_del(s, k);
                else
                    json_object_set(s, k, v);
            }
        json_decref(set);
    } else if (strcmp(op, "session_hold") == 0) {
        /* The object gw_session() returned stays the session for the whole
         * callback (README: valid until the end of the callback), also across
         * gw_set_session / gw_update_session of the current client. */
        json_t *held = gw_session();
        json_t *v = expand(json_object_get(req, "session"));
        if (json_is_true(json_object_get(req, "merge")))
            rc = gw_update_session(cur, v);
        else
            rc = gw_set_session(cur, v);
        json_decref(v);
        if (held)
            json_object_set_new(held, "held", json_true());
        json_object_set_new(r, "same", json_boolean(held == gw_session()));
    } else if (strcmp(op, "session_get") == 0) {
        json_t *s = gw_session();
        if (json_is_true(json_object_get(req, "keys_only")))
            json_object_set_new(r, "keys", keys_of(s));
        else
            json_object_set_new(r, "session", s ? json_deep_copy(s) : json_null());
    } else if (strcmp(op, "q") == 0) {
        return op_query(a, req, cur, r);
    } else if (strcmp(op, "wait_bad") == 0) {
        return op_wait_bad(cur, r);
    } else if (strcmp(op, "timer_ctx") == 0) {
        char *asker = strdup(cur);
        rc = asker ? gw_timer_add(0, 0, timer_ctx_fire, asker) : -ENOMEM;
        if (rc <= 0) {
            free(asker);
        } else {
            json_decref(r);
            return NULL; /* the timer answers */
        }
    } else if (strcmp(op, "timer_bad") == 0) {
        json_object_set_new(r, "negative", json_integer(gw_timer_add(-1, 0, never_cb, NULL)));
        json_object_set_new(r, "null_cb", json_integer(gw_timer_add(1, 0, NULL, NULL)));
        json_object_set_new(r, "del_unknown", json_integer(gw_timer_del(987654321L)));
        long t = gw_timer_add(60, 1, never_cb, NULL);
        json_object_set_new(r, "add", json_integer(t));
        json_object_set_new(r, "del", json_integer(gw_timer_del(t)));
        json_object_set_new(r, "del_again", json_integer(gw_timer_del(t)));
    } else if (strcmp(op, "ws_reject") == 0) {
        rc = gw_websocket_reject((int)json_integer_value(json_object_get(req, "status")), "no");
    } else if (strcmp(op, "strerror") == 0) {
        json_t *out = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(req, "codes"), i, c)
        {
            const char *s = gw_strerror((int)json_integer_value(c));
            json_array_append_new(out, s ? json_string(s) : json_null());
        }
        json_object_set_new(r, "texts", out);
    } else if (strcmp(op, "batch") == 0) {
        json_t *results = json_array();
        size_t i;
        json_t *sub;
        json_array_foreach(json_object_get(req, "ops"), i, sub)
        {
            json_t *sr = run_op(sub, cur);
            json_array_append_new(results, sr ? sr : json_null());
        }
        json_object_set_new(r, "results", results);
    } else {
        known = 0;
    }
    if (!known)
        json_object_set_new(r, "error", json_string("unknown op or bad arguments"));
    else if (!json_object_get(r, "rc"))
        json_object_set_new(r, "rc", json_integer(rc));
    return r;
}

static json_t *run_op(const json_t *req, const char *cur)
{
    arena a = {0};
    json_t *r = json_is_object(req) ? run_op_in(&a, req, cur) : NULL;
    arena_free(&a);
    return r;
}

/* ---- callbacks ---- */

void on_worker_start(void)
{
    const char *path = json_string_value(json_object_get(gw_module_config(), "event_log"));
    if (path)
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    log_event(event("worker_start", NULL, mono_now()));
}

void on_worker_stop(void)
{
    log_event(event("worker_stop", NULL, mono_now()));
    /* Queries that never completed: their callbacks will not run. */
    while (pendings) {
        pending_q *p = pendings;
        pending_unlink(p);
        pending_free(p);
    }
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}

void on_connect(const char *client_id)
{
    log_event(event("connect", client_id, mono_now()));
}

void on_websocket_connect(const char *client_id, const gw_request *req)
{
    double t0 = mono_now();
    json_t *o = event("ws_connect", client_id, t0);
    const char *path = gw_request_path(req), *query = gw_request_query_string(req);
    json_object_set_new(o, "path", path ? json_string(path) : json_null());
    json_object_set_new(o, "query", query ? json_string(query) : json_null());
    const char *try_status = gw_request_get(req, "try_status");
    if (try_status)
        json_object_set_new(o, "rc_try",
                            json_integer(gw_websocket_reject(atoi(try_status), "tried")));
    const char *want = json_string_value(json_object_get(gw_module_config(), "ws_token"));
    if (want) {
        const char *token = gw_request_get(req, "token");
        if (token == NULL || strcmp(token, want) != 0)
            json_object_set_new(o, "rc_reject",
                                json_integer(gw_websocket_reject(401, "token required")));
    }
    log_event(o);
}

void on_close(const char *client_id)
{
    json_t *o = event("close", client_id, mono_now());
    /* Read-only here: every change must be refused, in place changes dropped. */
    json_t *patch = json_pack("{s:b}", "changed_in_close", 1);
    json_object_set_new(o, "rc_set", json_integer(gw_set_session(client_id, patch)));
    json_object_set_new(o, "rc_update", json_integer(gw_update_session(client_id, patch)));
    json_decref(patch);
    json_t *s = gw_session();
    if (s)
        json_object_set_new(s, "changed_in_close", json_true());
    log_event(o);
}

void on_message(const char *client_id, const char *data, size_t len)
{
    double t0 = mono_now();
    json_t *req = json_loadb(data, len, 0, NULL);
    json_t *o = event("message", client_id, t0);
    if (o) {
        size_t n = len < LOG_MSG_MAX ? len : LOG_MSG_MAX;
        json_t *text = json_stringn(data, n);
        json_object_set_new(o, "msg", text ? text : json_null());
        json_object_set_new(o, "len", json_integer((json_int_t)len));
        if (req && json_object_get(req, "seq"))
            json_object_set(o, "seq", json_object_get(req, "seq"));
    }
    if (!json_is_object(req)) {
        json_t *r = json_pack("{s:s, s:i}", "op", "error", "len", (int)len);
        send_json_to(NULL, r);
    } else {
        json_t *r = run_op(req, client_id);
        if (r) {
            int rc = send_json_to(NULL, r);
            if (rc != 0 && o)
                json_object_set_new(o, "reply_rc", json_integer(rc));
        }
    }
    json_decref(req);
    /* Logged with the session as the callback leaves it. */
    if (o) {
        json_t *s = gw_session();
        if (s)
            json_object_set_new(o, "session_after", json_deep_copy(s));
    }
    log_event(o);
}
