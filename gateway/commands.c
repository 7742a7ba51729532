/* commands.c - what workers and API clients ask of a gateway: one small handler
 * per command (sends, closes, sessions, uid/group membership, multi-target sends,
 * the handshake verdict) and per query kind. */
#include "common/alloc.h"
#include "common/jutil.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/session.h"
#include "gateway/gateway_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef void (*cmd_handler)(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f);

static void bad_command(gw_gateway *gw, const gwp_frame *f, const char *why)
{
    gw->stats.bad_commands++;
    LOG_RL(GW_LOG_WARN, "GW-BAD-CMD", "%s refused: %s", gwp_cmd_name(f->cmd), why);
}

static gw_conn *target(gw_gateway *gw, const gwp_frame *f)
{
    gw_conn *c = gw_conn_find(gw, f->conn);
    if (c == NULL || c->state >= CONN_CLOSING) {
        gw->stats.unknown_client++;
        return NULL;
    }
    return c;
}

/* The single name in `a` (uid or group): 1..WIRE_NAME_MAX bytes. */
static int one_name(gw_gateway *gw, const gwp_frame *f)
{
    if (f->a_len == 0 || f->a_len > WIRE_NAME_MAX) {
        bad_command(gw, f, "name must be 1..1024 bytes");
        return -1;
    }
    return 0;
}

/* ---- one client ---- */

static void cmd_send(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c = target(gw, f);
    if (c)
        conn_send(c, f->b, f->b_len, f->aux);
}

static void cmd_close(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c = target(gw, f);
    if (c == NULL)
        return;
    uint16_t code = f->aux && ws_close_code_valid(f->aux) ? f->aux : WS_CLOSE_NORMAL;
    conn_close(c, code, f->b, f->b_len, (f->flags & WIRE_F_CLOSE_BINARY) ? WIRE_MSG_BINARY : 0);
}

static void cmd_destroy(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c = target(gw, f);
    if (c)
        conn_destroy(c, "destroyed by a worker");
}

static void cmd_ws_verdict(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c = gw_conn_find(gw, f->conn);
    if (c == NULL || c->state != CONN_AUTH) {
        gw->stats.unknown_client++;
        return;
    }
    conn_auth_verdict(c, f->aux, f->b, f->b_len);
}

/* ---- sessions ---- */

/* Counts a session write-back of the client's bound worker (see worker.c). */
static void count_write_back(gw_gateway *gw, gw_conn *c, const gwp_sender *from,
                             const gwp_frame *f)
{
    if (!(f->flags & WIRE_F_SEQ) || c->worker == 0)
        return;
    worker_slot *w = &gw->workers[c->worker - 1];
    if (w->peer && w->gen == c->worker_gen && w->peer->ip == from->ip &&
        w->peer->port == from->port)
        c->sess_seq++;
}

static int store_session(gw_gateway *gw, gw_conn *c, const uint8_t *text, size_t len)
{
    if (len > gw->cfg->gateway.max_message_size) {
        LOG_RL(GW_LOG_WARN, "GW-SESSION", "client %u: session of %zu bytes refused (limit %zu)",
               c->id, len, gw->cfg->gateway.max_message_size);
        return -EMSGSIZE;
    }
    char *copy = NULL;
    if (len) {
        copy = gw_malloc(len);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, text, len);
    }
    gw_free(c->session);
    c->session = copy;
    c->session_len = (uint32_t)len;
    return 0;
}

static void cmd_set_session(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    gw_conn *c = target(gw, f);
    if (c == NULL)
        return;
    json_t *o = session_parse(f->a, f->a_len);
    if (o == NULL) {
        bad_command(gw, f, "the session is not a JSON object");
        return;
    }
    gw_buf text = {0};
    /* Counted also when refused (too big): the worker must stop applying it to
     * the events it gets (it would see a session the gateway does not have). */
    if (session_dump(o, &text) == 0 && store_session(gw, c, text.data, text.len) != -ENOMEM)
        count_write_back(gw, c, from, f);
    gw_buf_deinit(&text);
    json_decref(o);
}

static void cmd_update_session(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    gw_conn *c = target(gw, f);
    if (c == NULL)
        return;
    json_t *patch = json_loadb((const char *)f->a, f->a_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(patch)) {
        json_decref(patch);
        bad_command(gw, f, "the patch is not a JSON object");
        return;
    }
    json_t *cur = session_parse((const uint8_t *)c->session, c->session_len);
    if (cur == NULL)
        cur = json_object();
    gw_buf text = {0};
    if (cur && session_merge(&cur, patch) == 0 && session_dump(cur, &text) == 0 &&
        store_session(gw, c, text.data, text.len) != -ENOMEM) /* counted if too big: above */
        count_write_back(gw, c, from, f);
    gw_buf_deinit(&text);
    json_decref(cur);
    json_decref(patch);
}

/* ---- membership ---- */

static void cmd_bind_uid(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c;
    if (one_name(gw, f) == 0 && (c = target(gw, f)))
        members_bind_uid(gw, c, (const char *)f->a, f->a_len);
}

static void cmd_unbind_uid(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c;
    if (one_name(gw, f) == 0 && (c = target(gw, f)))
        members_unbind_uid(gw, c, (const char *)f->a, f->a_len);
}

static void cmd_join_group(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c;
    if (one_name(gw, f) == 0 && (c = target(gw, f)))
        members_join(gw, c, (const char *)f->a, f->a_len);
}

static void cmd_leave_group(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    gw_conn *c;
    if (one_name(gw, f) == 0 && (c = target(gw, f)))
        members_leave(gw, c, (const char *)f->a, f->a_len);
}

static void cmd_ungroup(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    if (one_name(gw, f) == 0)
        members_ungroup(gw, (const char *)f->a, f->a_len);
}

/* ---- sends to many: one framed block per protocol, shared ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct bcast {
    gw_gateway *gw;
    const gwp_frame *f;
    gw_sbuf *framed[3];
    uint32_t *excl;
    uint32_t nexcl;
    uint32_t mark; /* 0: no de-duplication */
} bcast;

static void bcast_one(bcast *bc, gw_conn *c)
{
    if (c->state >= CONN_CLOSING)
        return;
    if (bc->mark) {
        if (c->mark == bc->mark)
            return;
        c->mark = bc->mark;
    }
    if (bc->nexcl && bsearch(&c->id, bc->excl, bc->nexcl, sizeof *bc->excl, cmp_u32))
        return;
    int p = c->proto;
    if (bc->framed[p] == NULL) {
        bc->framed[p] = conn_frame_shared(p, bc->f->b, bc->f->b_len, bc->f->aux);
        if (bc->framed[p] == NULL)
            return;
    }
    conn_send_shared(c, bc->framed[p]);
}

static void bcast_done(bcast *bc)
{
    for (int i = 0; i < 3; i++)
        gw_sbuf_unref(bc->framed[i]);
    gw_free(bc->excl);
}

/* Reads an exclude list at a[*off] into bc (sorted for bsearch). */
static int bcast_exclude(bcast *bc, const gwp_frame *f, size_t *off)
{
    gwp_u32list excl;
    size_t used;
    if (gwp_u32list_view(f->a + *off, f->a_len - *off, &excl, &used) < 0)
        return -1;
    *off += used;
    if (excl.n == 0)
        return 0;
    bc->excl = gw_malloc(excl.n * sizeof *bc->excl);
    if (bc->excl == NULL)
        return -1;
    for (uint32_t i = 0; i < excl.n; i++)
        bc->excl[i] = gwp_u32list_at(&excl, i);
    qsort(bc->excl, excl.n, sizeof *bc->excl, cmp_u32);
    bc->nexcl = excl.n;
    return 0;
}

static uint32_t next_mark(gw_gateway *gw)
{
    if (++gw->mark_gen == 0)
        ++gw->mark_gen;
    return gw->mark_gen;
}

static void cmd_send_all(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    bcast bc = {.gw = gw, .f = f};
    gwp_u32list incl = {0};
    size_t off = 0, used;
    if (f->flags & WIRE_F_INCLUDE) {
        if (gwp_u32list_view(f->a, f->a_len, &incl, &used) < 0)
            goto bad;
        off += used;
    }
    if ((f->flags & WIRE_F_EXCLUDE) && bcast_exclude(&bc, f, &off) < 0)
        goto bad;
    if (f->flags & WIRE_F_INCLUDE) {
        bc.mark = next_mark(gw);
        for (uint32_t i = 0; i < incl.n; i++) {
            gw_conn *c = gw_conn_find(gw, gwp_u32list_at(&incl, i));
            if (c)
                bcast_one(&bc, c);
        }
    } else {
        for (uint32_t i = 0; i < gw->table_cap; i++) {
            gw_conn *c = gw->table[i];
            if (c && c != TOMB)
                bcast_one(&bc, c);
        }
    }
    bcast_done(&bc);
    return;
bad:
    bcast_done(&bc);
    bad_command(gw, f, "malformed client list");
}

static void send_to_sets(gw_gateway *gw, const gwp_frame *f, int kind)
{
    bcast bc = {.gw = gw, .f = f};
    size_t off = 0, used;
    if ((f->flags & WIRE_F_EXCLUDE) && bcast_exclude(&bc, f, &off) < 0)
        goto bad;
    wire_names names;
    if (wire_names_open(f->a + off, f->a_len - off, &names, &used) < 0)
        goto bad;
    bc.mark = next_mark(gw);
    const char *name;
    size_t len;
    while (wire_names_next(&names, &name, &len)) {
        member_set *s =
            kind == WIRE_KIND_UID ? members_uid(gw, name, len) : members_group(gw, name, len);
        for (uint32_t i = 0; s && i < s->n; i++)
            bcast_one(&bc, s->conns[i]);
    }
    bcast_done(&bc);
    return;
bad:
    bcast_done(&bc);
    bad_command(gw, f, "malformed name or exclude list");
}

static void cmd_send_uid(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    send_to_sets(gw, f, WIRE_KIND_UID);
}

static void cmd_send_group(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    (void)from;
    send_to_sets(gw, f, WIRE_KIND_GROUP);
}

/* ---- queries ---- */

static json_t *conn_session_json(const gw_conn *c)
{
    json_t *s = session_parse((const uint8_t *)c->session, c->session_len);
    return s ? s : json_object();
}

static int live(const gw_conn *c)
{
    return c != NULL && c != TOMB && c->state < CONN_CLOSING;
}

/* Calls fn for each distinct live client in the groups of `names` (or every
 * client when the list is empty). */
static void each_client(gw_gateway *gw, wire_names *names, void (*fn)(gw_conn *, void *),
                        void *arg)
{
    if (wire_names_count(names) == 0) {
        for (uint32_t i = 0; i < gw->table_cap; i++)
            if (live(gw->table[i]))
                fn(gw->table[i], arg);
        return;
    }
    uint32_t mark = next_mark(gw);
    const char *name;
    size_t len;
    while (wire_names_next(names, &name, &len)) {
        member_set *s = members_group(gw, name, len);
        for (uint32_t i = 0; s && i < s->n; i++) {
            gw_conn *c = s->conns[i];
            if (!live(c) || c->mark == mark)
                continue;
            c->mark = mark;
            fn(c, arg);
        }
    }
}

static void count_fn(gw_conn *c, void *arg)
{
    (void)c;
    (*(json_int_t *)arg)++;
}

static void ids_fn(gw_conn *c, void *arg)
{
    json_array_append_new(arg, json_integer(c->id));
}

static void sessions_fn(gw_conn *c, void *arg)
{
    char key[16];
    snprintf(key, sizeof key, "%u", c->id);
    json_object_set_new(arg, key, conn_session_json(c));
}

static json_t *names_of(smap *m)
{
    json_t *a = json_array();
    size_t pos = 0;
    const smap_entry *e;
    while (a && smap_next(m, &pos, &e))
        json_array_append_new(a, jutil_string_lossy(e->key, e->klen));
    return a;
}

static json_t *ids_of(const member_set *s)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && s && i < s->n; i++)
        if (live(s->conns[i]))
            json_array_append_new(a, json_integer(s->conns[i]->id));
    return a;
}

/* Distinct uids of the members of s (or of every client when s is NULL). */
static json_t *uids_of_set(gw_gateway *gw, const member_set *s)
{
    json_t *seen = json_object();
    if (seen == NULL)
        return NULL;
    if (s == NULL) {
        size_t pos = 0;
        const smap_entry *e;
        while (smap_next(&gw->uids, &pos, &e))
            jutil_set_lossy(seen, e->key, e->klen, json_true());
    } else {
        for (uint32_t i = 0; i < s->n; i++) {
            gw_conn *c = s->conns[i];
            if (live(c) && c->uid)
                jutil_set_lossy(seen, c->uid->name, c->uid->name_len, json_true());
        }
    }
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(seen, k, v) json_array_append_new(a, json_string(k));
    json_decref(seen);
    return a;
}

/* One row of `connections`: what an operator wants to see of a client. */
static void conn_row(gw_conn *c, void *arg)
{
    json_t *rows = arg;
    char addr[46];
    wire_info_addr(&c->info, addr, sizeof addr);
    json_t *groups = json_array();
    for (uint16_t i = 0; groups && i < c->ngroups; i++)
        json_array_append_new(groups,
                              jutil_string_lossy(c->groups[i].g->name, c->groups[i].g->name_len));
    uint64_t now = uv_now(c->gw->loop);
    json_t *row = json_pack("{s:I, s:s, s:i, s:s, s:o, s:o, s:I, s:I}", "conn", (json_int_t)c->id,
                            "remote", addr, "remote_port", c->info.remote_port, "protocol",
                            gw_proto_name(c->proto), "uid",
                            c->uid ? jutil_string_lossy(c->uid->name, c->uid->name_len)
                                   : json_null(),
                            "groups", groups ? groups : json_array(), "idle_ms",
                            (json_int_t)(now - c->last_rx_ms), "send_queue",
                            (json_int_t)c->out_bytes);
    if (row)
        json_array_append_new(rows, row);
}

static json_t *run_query(gw_gateway *gw, const gwp_frame *f)
{
    wire_names names = {0};
    if (f->a_len && wire_names_open(f->a, f->a_len, &names, NULL) < 0)
        return NULL;
    const char *name;
    size_t len;
    switch (f->aux) {
    case WIRE_Q_IS_ONLINE: {
        gw_conn *c = gw_conn_find(gw, f->conn);
        return json_boolean(live(c));
    }
    case WIRE_Q_SESSION: {
        gw_conn *c = gw_conn_find(gw, f->conn);
        return live(c) ? conn_session_json(c) : json_null();
    }
    case WIRE_Q_UID_OF: {
        gw_conn *c = gw_conn_find(gw, f->conn);
        return live(c) && c->uid ? jutil_string_lossy(c->uid->name, c->uid->name_len) : json_null();
    }
    case WIRE_Q_COUNT: {
        json_int_t n = 0;
        if (wire_names_count(&names) == 0)
            n = gw->nconns;
        else
            each_client(gw, &names, count_fn, &n);
        return json_integer(n);
    }
    case WIRE_Q_CLIENTS: {
        json_t *a = json_array();
        if (a)
            each_client(gw, &names, ids_fn, a);
        return a;
    }
    case WIRE_Q_SESSIONS: {
        json_t *o = json_object();
        if (o)
            each_client(gw, &names, sessions_fn, o);
        return o;
    }
    case WIRE_Q_CLIENTS_BY_UID: {
        json_t *o = json_object();
        while (o && wire_names_next(&names, &name, &len))
            jutil_set_lossy(o, name, len, ids_of(members_uid(gw, name, len)));
        return o;
    }
    case WIRE_Q_GROUPS:
        return names_of(&gw->groups);
    case WIRE_Q_UIDS: {
        if (wire_names_count(&names) == 0)
            return uids_of_set(gw, NULL);
        json_t *seen = json_object();
        while (seen && wire_names_next(&names, &name, &len)) {
            member_set *s = members_group(gw, name, len);
            if (s == NULL)
                continue; /* no such group here (NULL would mean every client) */
            json_t *a = uids_of_set(gw, s);
            size_t i;
            json_t *v;
            json_array_foreach(a, i, v) json_object_set_new(seen, json_string_value(v), json_true());
            json_decref(a);
        }
        json_t *out = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(seen, k, v) json_array_append_new(out, json_string(k));
        json_decref(seen);
        return out;
    }
    case WIRE_Q_GROUP_COUNTS: {
        json_t *o = json_object();
        while (o && wire_names_next(&names, &name, &len)) {
            member_set *s = members_group(gw, name, len);
            jutil_set_lossy(o, name, len, json_integer(s ? s->n : 0));
        }
        return o;
    }
    case WIRE_Q_GROUP_UIDS:
    case WIRE_Q_GROUP_CLIENTS: {
        json_t *o = json_object();
        size_t pos = 0;
        const smap_entry *e;
        while (o && smap_next(&gw->groups, &pos, &e)) {
            member_set *s = e->value;
            json_t *v = f->aux == WIRE_Q_GROUP_UIDS ? uids_of_set(gw, s) : ids_of(s);
            jutil_set_lossy(o, e->key, e->klen, v);
        }
        return o;
    }
    case WIRE_Q_CONNECTIONS: {
        json_t *a = json_array();
        if (a)
            each_client(gw, &names, conn_row, a);
        return a;
    }
    default:
        return NULL;
    }
}

static void cmd_query(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    json_t *result = run_query(gw, f);
    if (result == NULL) {
        bad_command(gw, f, "unknown query kind or malformed arguments");
        result = json_null();
    }
    gw_buf out = {0};
    int rc = jutil_dump(result, &out);
    json_decref(result);
    cluster_peer *p = cluster_peer_get(gw->cl, from->ip, from->port, from->role);
    if (rc == 0 && p) {
        gwp_frame r = {.cmd = GWP_REPLY, .aux = f->aux, .req = f->req, .b = out.data,
                       .b_len = out.len};
        rc = cluster_send(gw->cl, p, &r);
        if (rc < 0)
            LOG_RL(GW_LOG_WARN, "GW-QUERY", "reply of %zu bytes to %s not sent: %s", out.len,
                   p->addr, gwp_strerror(rc));
    }
    gw_buf_deinit(&out);
}

static void cmd_ping(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    cluster_peer *p = cluster_peer_get(gw->cl, from->ip, from->port, from->role);
    if (p == NULL)
        return;
    gwp_frame r = {.cmd = GWP_PONG, .req = f->req};
    cluster_send(gw->cl, p, &r);
}

/* DRAIN from a worker: aux 0 asks to drain, aux 2 releases its clients (it has
 * handled every event sent before our acknowledgement, aux 1). */
static void cmd_drain(gw_gateway *gw, const gwp_sender *from, const gwp_frame *f)
{
    if (from->role != GWP_ROLE_WORKER)
        return;
    cluster_peer *p = cluster_peer_get(gw->cl, from->ip, from->port, from->role);
    if (p == NULL)
        return;
    if (f->aux == GWP_DRAIN_RELEASE)
        gw_worker_released(gw, p);
    else
        gw_worker_drain(gw, p);
}

static const cmd_handler handlers[256] = {
    [GWP_CMD_SEND] = cmd_send,
    [GWP_CMD_SEND_ALL] = cmd_send_all,
    [GWP_CMD_CLOSE] = cmd_close,
    [GWP_CMD_DESTROY] = cmd_destroy,
    [GWP_CMD_SET_SESSION] = cmd_set_session,
    [GWP_CMD_UPDATE_SESSION] = cmd_update_session,
    [GWP_CMD_BIND_UID] = cmd_bind_uid,
    [GWP_CMD_UNBIND_UID] = cmd_unbind_uid,
    [GWP_CMD_SEND_UID] = cmd_send_uid,
    [GWP_CMD_JOIN_GROUP] = cmd_join_group,
    [GWP_CMD_LEAVE_GROUP] = cmd_leave_group,
    [GWP_CMD_UNGROUP] = cmd_ungroup,
    [GWP_CMD_SEND_GROUP] = cmd_send_group,
    [GWP_CMD_WS_VERDICT] = cmd_ws_verdict,
    [GWP_QUERY] = cmd_query,
    [GWP_PING] = cmd_ping,
    [GWP_DRAIN] = cmd_drain,
};

void gw_on_frame(cluster *cl, const gwp_sender *from, const gwp_frame *f, void *arg)
{
    gw_gateway *gw = arg;
    (void)cl;
    gw->stats.commands_in++;
    cmd_handler h = handlers[f->cmd];
    if (h == NULL || from->role == GWP_ROLE_REGISTER) {
        gw->stats.bad_commands++;
        LOG_RL(GW_LOG_WARN, "GW-BAD-CMD", "unexpected %s (%u) from a %s ignored",
               gwp_cmd_name(f->cmd), f->cmd,
               roster_role_name(from->role) ? roster_role_name(from->role) : "?");
        return;
    }
    h(gw, from, f);
}
