/* api.c - the gw_* functions that address gateways (include/gatewayworker.h),
 * shared by gw-businessworker and libgwclient. */
#include "api/api.h"
#include "common/alloc.h"
#include "common/clientid.h"
#include "common/jutil.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/utf8.h"
#include "common/wire.h"
#include "gatewayworker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VISIBLE __attribute__((visibility("default")))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

gw_api *gw_api_self;

/* ---- errors ---- */

VISIBLE const char *gw_strerror(int err)
{
    if (err < 0 && -err >= GW_EINVAL && -err <= GW_ENOQUERY)
        err = -err; /* query functions return -GW_E* */
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_EINVAL:
        return "invalid argument (malformed client_id, name or missing data)";
    case GW_ETOOBIG:
        return "message larger than gateway.max_message_size";
    case GW_EUTF8:
        return "text that is not valid UTF-8 (send messages as binary)";
    case GW_EUNREACHABLE:
        return "the client's gateway is not in the cluster";
    case GW_ENOCONTEXT:
        return "no current client here (or no worker/client initialised)";
    case GW_EREADONLY:
        return "the session is read-only in on_close";
    case GW_ENOQUERY:
        return "unknown query id (or its result was collected already)";
    default:
        return err < 0 ? strerror(-err) : "unknown error";
    }
}

/* ---- plumbing ---- */

static void addr_key(char *out, size_t n, uint32_t ip, uint16_t port)
{
    snprintf(out, n, "%08x:%04x", ip, port);
}

int gw_api_send(gw_api *a, cluster_peer *gw, const gwp_frame *f)
{
    int rc = cluster_send(a->cl, gw, f);
    if (rc == 0) {
        a->stats.commands_out++;
        if (a->autoflush)
            cluster_flush(a->cl);
        return 0;
    }
    a->stats.send_errors++;
    if (rc == -EMSGSIZE)
        return GW_ETOOBIG;
    if (rc == -EPIPE)
        return GW_EUNREACHABLE;
    return rc;
}

static int resolve(gw_api *a, const char *client_id, cluster_peer **gw, uint32_t *conn)
{
    gw_client_addr ca;
    if (client_id == NULL || clientid_decode(client_id, &ca) < 0)
        return GW_EINVAL;
    cluster_peer *p = cluster_peer_find(a->cl, ca.ip, ca.port);
    if (p == NULL)
        return GW_EUNREACHABLE;
    *gw = p;
    *conn = ca.conn;
    return 0;
}

static int check_payload(gw_api *a, const void *data, size_t len, unsigned flags)
{
    if (data == NULL && len > 0)
        return GW_EINVAL;
    if (len > a->max_message)
        return GW_ETOOBIG;
    if (!(flags & (GW_BINARY | GW_RAW)) && len > 0 &&
        utf8_validate(UTF8_ACCEPT, data, len) != UTF8_ACCEPT)
        return GW_EUTF8;
    return 0;
}

static int check_name(const char *name)
{
    if (name == NULL)
        return GW_EINVAL;
    size_t n = strlen(name);
    if (n == 0 || n > WIRE_NAME_MAX)
        return GW_EINVAL;
    if (utf8_validate(UTF8_ACCEPT, (const uint8_t *)name, n) != UTF8_ACCEPT)
        return GW_EUTF8;
    return 0;
}

static int check_names(const char *const *names, size_t n)
{
    if (names == NULL && n > 0)
        return GW_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = check_name(names[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static uint16_t wire_aux(unsigned flags)
{
    return (uint16_t)(((flags & GW_BINARY) ? WIRE_MSG_BINARY : 0) |
                      ((flags & GW_RAW) ? WIRE_MSG_RAW : 0));
}

static gw_api *self(void)
{
    return gw_api_self;
}

/* ---- presence index ---- */

typedef struct presence {
    smap uids;
    smap groups;
    int synced; /* a full list (reset) was received */
} presence;

static presence *presence_of(gw_api *a, uint32_t ip, uint16_t port, int create)
{
    char key[24];
    addr_key(key, sizeof key, ip, port);
    presence *p = smap_get(&a->presence, key, strlen(key));
    if (p || !create)
        return p;
    p = gw_calloc(1, sizeof *p);
    if (p && smap_put(&a->presence, key, strlen(key), p, NULL) < 0) {
        gw_free(p);
        return NULL;
    }
    return p;
}

static void presence_free(presence *p)
{
    if (p == NULL)
        return;
    smap_deinit(&p->uids);
    smap_deinit(&p->groups);
    gw_free(p);
}

static void presence_apply(gw_api *a, const gwp_sender *from, const gwp_frame *f)
{
    presence *p = presence_of(a, from->ip, from->port, 1);
    if (p == NULL)
        return;
    size_t pos = 0;
    wire_idx_entry e;
    int rc;
    while ((rc = wire_idx_next(f->a, f->a_len, &pos, &e)) == 1) {
        smap *m = e.kind == WIRE_KIND_UID ? &p->uids : &p->groups;
        if (e.op == WIRE_IDX_RESET) {
            smap_deinit(&p->uids);
            smap_deinit(&p->groups);
            p->synced = 1;
        } else if (e.op == WIRE_IDX_ADD) {
            smap_put(m, e.name, e.len, (void *)1, NULL);
        } else {
            smap_del(m, e.name, e.len);
        }
    }
    if (rc < 0)
        LOG_RL(GW_LOG_WARN, "GW-BAD-IDX", "malformed presence index frame ignored");
}

/* Whether gateway p may hold any of the names (1 when unknown). */
static int presence_any(gw_api *a, const cluster_peer *gw, int kind, const char *const *names,
                        size_t n)
{
    if (!a->use_index)
        return 1;
    presence *p = presence_of(a, gw->ip, gw->port, 0);
    if (p == NULL || !p->synced)
        return 1;
    smap *m = kind == WIRE_KIND_UID ? &p->uids : &p->groups;
    for (size_t i = 0; i < n; i++)
        if (smap_get(m, names[i], strlen(names[i])))
            return 1;
    return 0;
}

/* A bind/join this process asked for: known before the gateway's notice comes
 * back, so a send right after it is not skipped. */
static void presence_local_add(gw_api *a, const cluster_peer *gw, int kind, const char *name)
{
    presence *p = presence_of(a, gw->ip, gw->port, 0);
    if (p)
        smap_put(kind == WIRE_KIND_UID ? &p->uids : &p->groups, name, strlen(name), (void *)1,
                 NULL);
}

/* ---- sending ---- */

VISIBLE int gw_send_to_client_ex(const char *client_id, const void *data, size_t len,
                                 unsigned flags)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    int rc = check_payload(a, data, len, flags);
    cluster_peer *gw;
    uint32_t conn;
    if (rc == 0)
        rc = resolve(a, client_id, &gw, &conn);
    if (rc != 0) {
        a->stats.send_errors++;
        return rc;
    }
    gwp_frame f = {.cmd = GWP_CMD_SEND, .aux = wire_aux(flags), .conn = conn, .b = data, .b_len = len};
    return gw_api_send(a, gw, &f);
}

VISIBLE int gw_send_to_client(const char *client_id, const void *data, size_t len)
{
    return gw_send_to_client_ex(client_id, data, len, 0);
}

VISIBLE int gw_send_to_current_client_ex(const void *data, size_t len, unsigned flags)
{
    gw_api *a = self();
    if (a == NULL || !a->ev_active)
        return GW_ENOCONTEXT;
    /* The hot path of every echo: no client_id text round trip. */
    int rc = check_payload(a, data, len, flags);
    if (rc != 0) {
        a->stats.send_errors++;
        return rc;
    }
    gwp_frame f = {.cmd = GWP_CMD_SEND, .aux = wire_aux(flags), .conn = a->ev_conn, .b = data,
                   .b_len = len};
    return gw_api_send(a, a->ev_gateway, &f);
}

VISIBLE int gw_send_to_current_client(const void *data, size_t len)
{
    return gw_send_to_current_client_ex(data, len, 0);
}

/* A resolved client id, for grouping by gateway. */
typedef struct target {
    cluster_peer *gw;
    uint32_t conn;
} target;

static int cmp_target(const void *x, const void *y)
{
    const target *p = x, *q = y;
    if (p->gw != q->gw)
        return (uintptr_t)p->gw < (uintptr_t)q->gw ? -1 : 1;
    return p->conn < q->conn ? -1 : p->conn > q->conn;
}

/* Resolves ids, skipping those of unknown gateways; sorted by gateway. Returns
 * the count, or a negative GW_EINVAL / -ENOMEM. */
static long resolve_all(gw_api *a, const char *const *ids, size_t n, target **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (ids == NULL)
        return -GW_EINVAL;
    target *t = gw_malloc(n * sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = resolve(a, ids[i], &t[k].gw, &t[k].conn);
        if (rc == GW_EINVAL) {
            gw_free(t);
            return -GW_EINVAL;
        }
        if (rc == 0)
            k++;
    }
    qsort(t, k, sizeof *t, cmp_target);
    *out = t;
    return (long)k;
}

/* One multi-target send: message, flags, exclusions; used per gateway. */
typedef struct multi {
    gw_api *a;
    uint8_t cmd;
    const void *data;
    size_t len;
    uint16_t aux;
    const target *excl;
    size_t nexcl;
    const char *const *names; /* CMD_SEND_UID / CMD_SEND_GROUP */
    size_t nnames;
    int kind;
    int rc;
} multi;

static void store_u32list(uint8_t *p, const target *t, size_t n)
{
    gw_store_be32(p, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        gw_store_be32(p + 4 + 4 * i, t[i].conn);
}

/* Sends one frame of m to gateway gw; incl (may be NULL) lists its targets. */
static int multi_frame(multi *m, cluster_peer *gw, const target *incl, size_t nincl)
{
    size_t nex = 0, first = 0;
    for (size_t i = 0; i < m->nexcl; i++)
        if (m->excl[i].gw == gw) {
            if (nex == 0)
                first = i;
            nex++;
        }
    size_t names_len = m->names ? wire_names_size(m->names, NULL, m->nnames) : 0;
    gwp_frame f = {.cmd = m->cmd, .aux = m->aux, .b_len = m->len};
    f.a_len = (incl ? gwp_u32list_wire_len(nincl) : 0) + (nex ? gwp_u32list_wire_len(nex) : 0) +
              names_len;
    f.flags = (uint8_t)((incl ? WIRE_F_INCLUDE : 0) | (nex ? WIRE_F_EXCLUDE : 0));
    uint8_t *pa, *pb;
    int rc = cluster_send_inplace(m->a->cl, gw, &f, &pa, &pb);
    if (rc < 0) {
        m->a->stats.send_errors++;
        return rc == -EMSGSIZE ? GW_ETOOBIG : rc == -EPIPE ? GW_EUNREACHABLE : rc;
    }
    if (incl) {
        store_u32list(pa, incl, nincl);
        pa += gwp_u32list_wire_len(nincl);
    }
    if (nex) {
        store_u32list(pa, m->excl + first, nex);
        pa += gwp_u32list_wire_len(nex);
    }
    if (m->names)
        wire_names_store(pa, m->names, NULL, m->nnames);
    if (m->len)
        memcpy(pb, m->data, m->len);
    m->a->stats.commands_out++;
    return 0;
}

static void multi_to_gateway(cluster_peer *gw, void *arg)
{
    multi *m = arg;
    if (m->names && !presence_any(m->a, gw, m->kind, m->names, m->nnames))
        return;
    int rc = multi_frame(m, gw, NULL, 0);
    if (rc != 0 && m->rc == 0)
        m->rc = rc;
}

/* Sends m to every gateway (filtered by presence for uid/group sends). */
static int multi_all(multi *m, const char *const *exclude, size_t n_exclude)
{
    target *excl = NULL;
    long nex = resolve_all(m->a, exclude, exclude ? n_exclude : 0, &excl);
    if (nex < 0)
        return nex == -ENOMEM ? -ENOMEM : GW_EINVAL;
    m->excl = excl;
    m->nexcl = (size_t)nex;
    cluster_foreach_peer(m->a->cl, GWP_ROLE_GATEWAY, multi_to_gateway, m);
    gw_free(excl);
    if (m->a->autoflush)
        cluster_flush(m->a->cl);
    return m->rc;
}

VISIBLE int gw_send_to_all_ex(const void *data, size_t len, const char *const *client_ids,
                              size_t n_ids, const char *const *exclude, size_t n_exclude,
                              unsigned flags)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    int rc = check_payload(a, data, len, flags);
    if (rc != 0)
        return rc;
    multi m = {.a = a, .cmd = GWP_CMD_SEND_ALL, .data = data, .len = len, .aux = wire_aux(flags)};
    if (client_ids == NULL)
        return multi_all(&m, exclude, n_exclude);
    target *excl = NULL, *incl = NULL;
    long nex = resolve_all(a, exclude, exclude ? n_exclude : 0, &excl);
    long nin = nex < 0 ? 0 : resolve_all(a, client_ids, n_ids, &incl);
    if (nex < 0 || nin < 0) {
        gw_free(excl);
        return (nex == -ENOMEM || nin == -ENOMEM) ? -ENOMEM : GW_EINVAL;
    }
    m.excl = excl;
    m.nexcl = (size_t)nex;
    for (long i = 0; i < nin;) {
        long j = i;
        while (j < nin && incl[j].gw == incl[i].gw)
            j++;
        int r = multi_frame(&m, incl[i].gw, incl + i, (size_t)(j - i));
        if (r != 0 && m.rc == 0)
            m.rc = r;
        i = j;
    }
    gw_free(incl);
    gw_free(excl);
    if (a->autoflush)
        cluster_flush(a->cl);
    return m.rc;
}

VISIBLE int gw_send_to_all(const void *data, size_t len, const char *const *client_ids,
                           size_t n_ids, const char *const *exclude, size_t n_exclude)
{
    return gw_send_to_all_ex(data, len, client_ids, n_ids, exclude, n_exclude, 0);
}

VISIBLE int gw_send_to_uids_ex(const char *const *uids, size_t n_uids, const void *data,
                               size_t len, unsigned flags)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    int rc = check_payload(a, data, len, flags);
    if (rc == 0)
        rc = check_names(uids, n_uids);
    if (rc != 0 || n_uids == 0)
        return rc;
    multi m = {.a = a,
               .cmd = GWP_CMD_SEND_UID,
               .data = data,
               .len = len,
               .aux = wire_aux(flags),
               .names = uids,
               .nnames = n_uids,
               .kind = WIRE_KIND_UID};
    return multi_all(&m, NULL, 0);
}

VISIBLE int gw_send_to_uid(const char *uid, const void *data, size_t len)
{
    return gw_send_to_uids_ex(&uid, 1, data, len, 0);
}

VISIBLE int gw_send_to_groups_ex(const char *const *groups, size_t n_groups, const void *data,
                                 size_t len, const char *const *exclude, size_t n_exclude,
                                 unsigned flags)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    int rc = check_payload(a, data, len, flags);
    if (rc == 0)
        rc = check_names(groups, n_groups);
    if (rc != 0 || n_groups == 0)
        return rc;
    multi m = {.a = a,
               .cmd = GWP_CMD_SEND_GROUP,
               .data = data,
               .len = len,
               .aux = wire_aux(flags),
               .names = groups,
               .nnames = n_groups,
               .kind = WIRE_KIND_GROUP};
    return multi_all(&m, exclude, n_exclude);
}

VISIBLE int gw_send_to_group(const char *group, const void *data, size_t len)
{
    return gw_send_to_groups_ex(&group, 1, data, len, NULL, 0, 0);
}

/* ---- closing ---- */

VISIBLE int gw_close_client_ex(const char *client_id, const void *last_message, size_t len,
                               uint16_t code, unsigned flags)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    if (code != 0 && !((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                       (code >= 3000 && code <= 4999)))
        return GW_EINVAL;
    int rc = check_payload(a, last_message, len, flags);
    cluster_peer *gw;
    uint32_t conn;
    if (rc == 0)
        rc = resolve(a, client_id, &gw, &conn);
    if (rc != 0)
        return rc;
    gwp_frame f = {.cmd = GWP_CMD_CLOSE,
                   .flags = (flags & GW_BINARY) ? WIRE_F_CLOSE_BINARY : 0,
                   .aux = code,
                   .conn = conn,
                   .b = last_message,
                   .b_len = len};
    return gw_api_send(a, gw, &f);
}

VISIBLE int gw_close_client(const char *client_id, const void *last_message, size_t len)
{
    return gw_close_client_ex(client_id, last_message, len, 0, 0);
}

VISIBLE int gw_close_current_client(const void *last_message, size_t len)
{
    gw_api *a = self();
    if (a == NULL || !a->ev_active)
        return GW_ENOCONTEXT;
    return gw_close_client_ex(a->ev_client_id, last_message, len, 0, 0);
}

/* `named`: the command carries a uid/group (a NULL name is then GW_EINVAL). */
static int simple_cmd(const char *client_id, uint8_t cmd, const char *name, int named)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    int rc = named ? check_name(name) : 0;
    cluster_peer *gw;
    uint32_t conn;
    if (rc == 0)
        rc = resolve(a, client_id, &gw, &conn);
    if (rc != 0)
        return rc;
    gwp_frame f = {.cmd = cmd,
                   .conn = conn,
                   .a = (const uint8_t *)name,
                   .a_len = name ? strlen(name) : 0};
    rc = gw_api_send(a, gw, &f);
    if (rc == 0 && (cmd == GWP_CMD_BIND_UID || cmd == GWP_CMD_JOIN_GROUP))
        presence_local_add(a, gw, cmd == GWP_CMD_BIND_UID ? WIRE_KIND_UID : WIRE_KIND_GROUP,
                           name);
    return rc;
}

VISIBLE int gw_destroy_client(const char *client_id)
{
    return simple_cmd(client_id, GWP_CMD_DESTROY, NULL, 0);
}

VISIBLE int gw_destroy_current_client(void)
{
    gw_api *a = self();
    if (a == NULL || !a->ev_active)
        return GW_ENOCONTEXT;
    return gw_destroy_client(a->ev_client_id);
}

/* ---- membership ---- */

VISIBLE int gw_bind_uid(const char *client_id, const char *uid)
{
    return simple_cmd(client_id, GWP_CMD_BIND_UID, uid, 1);
}

VISIBLE int gw_unbind_uid(const char *client_id, const char *uid)
{
    return simple_cmd(client_id, GWP_CMD_UNBIND_UID, uid, 1);
}

VISIBLE int gw_join_group(const char *client_id, const char *group)
{
    return simple_cmd(client_id, GWP_CMD_JOIN_GROUP, group, 1);
}

VISIBLE int gw_leave_group(const char *client_id, const char *group)
{
    return simple_cmd(client_id, GWP_CMD_LEAVE_GROUP, group, 1);
}

typedef struct ungroup_ctx {
    gw_api *a;
    gwp_frame f;
    int rc;
} ungroup_ctx;

static void ungroup_to(cluster_peer *gw, void *arg)
{
    ungroup_ctx *u = arg;
    const char *name = (const char *)u->f.a;
    if (!presence_any(u->a, gw, WIRE_KIND_GROUP, &name, 1))
        return;
    int rc = gw_api_send(u->a, gw, &u->f);
    if (rc != 0 && u->rc == 0)
        u->rc = rc;
}

VISIBLE int gw_ungroup(const char *group)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    int rc = check_name(group);
    if (rc != 0)
        return rc;
    ungroup_ctx u = {.a = a,
                     .f = {.cmd = GWP_CMD_UNGROUP, .a = (const uint8_t *)group, .a_len = strlen(group)}};
    cluster_foreach_peer(a->cl, GWP_ROLE_GATEWAY, ungroup_to, &u);
    return u.rc;
}

/* ---- sessions ---- */

static int session_cmd(const char *client_id, const json_t *value, uint8_t cmd)
{
    gw_api *a = self();
    if (a == NULL)
        return GW_ENOCONTEXT;
    if (!json_is_object(value))
        return GW_EINVAL;
    if (a->ev_active && a->session_hook && client_id && strcmp(client_id, a->ev_client_id) == 0)
        return a->session_hook(a, value, cmd == GWP_CMD_UPDATE_SESSION);
    cluster_peer *gw;
    uint32_t conn;
    int rc = resolve(a, client_id, &gw, &conn);
    if (rc != 0)
        return rc;
    gw_buf text = {0};
    if (jutil_dump(value, &text) < 0)
        return -ENOMEM;
    if (text.len > a->max_message) {
        gw_buf_deinit(&text);
        return GW_ETOOBIG;
    }
    gwp_frame f = {.cmd = cmd, .conn = conn, .a = text.data, .a_len = text.len};
    rc = gw_api_send(a, gw, &f);
    gw_buf_deinit(&text);
    return rc;
}

VISIBLE int gw_set_session(const char *client_id, const json_t *session)
{
    return session_cmd(client_id, session, GWP_CMD_SET_SESSION);
}

VISIBLE int gw_update_session(const char *client_id, const json_t *patch)
{
    return session_cmd(client_id, patch, GWP_CMD_UPDATE_SESSION);
}

/* ---- queries ---- */

enum finish_kind {
    FIN_NONE,
    FIN_SET_ARRAY,   /* {k: true} -> [k] */
    FIN_SET_COUNT,   /* {k: true} -> n */
    FIN_UID_ONLINE,  /* {uid: [ids]} -> bool */
    FIN_SETS_ARRAYS, /* {g: {k: true}} -> {g: [k]} */
    FIN_ONE_ARRAY,   /* {uid: [ids]} (one uid asked) -> [ids] */
};

struct gw_query {
    uv_timer_t timer;
    gw_api *a;
    uint64_t started_us;
    uint32_t id;
    int kind;
    int finish;
    gw_result_cb cb;
    void *arg;
    uint64_t *asked; /* gateway keys (ip << 16 | port) still expected */
    unsigned nasked;
    unsigned answered;
    unsigned total;
    uint64_t deadline_ms;
    json_t *acc;
    int done;
    int closing;
    gw_result result;
};

static char *id_key(char *buf, size_t n, uint32_t id)
{
    snprintf(buf, n, "%u", id);
    return buf;
}

static gw_query *query_find(gw_api *a, uint32_t id)
{
    char k[12];
    id_key(k, sizeof k, id);
    return smap_get(&a->queries, k, strlen(k));
}

static void query_closed(uv_handle_t *h)
{
    gw_query *q = container_of((uv_timer_t *)h, gw_query, timer);
    json_decref(q->acc);
    gw_free(q->asked);
    gw_free(q);
}

/* Removes q from the table and frees it (after its timer handle closed). */
static void query_free(gw_query *q)
{
    char k[12];
    id_key(k, sizeof k, q->id);
    smap_del(&q->a->queries, k, strlen(k));
    if (!q->closing) {
        q->closing = 1;
        uv_close((uv_handle_t *)&q->timer, query_closed);
    }
}

static json_t *set_to_array(json_t *set)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) json_array_append_new(arr, json_string(k));
    return arr;
}

static void query_finish(gw_query *q)
{
    json_t *v = q->acc;
    switch (q->finish) {
    case FIN_SET_ARRAY:
        v = set_to_array(q->acc);
        break;
    case FIN_SET_COUNT:
        v = json_integer((json_int_t)json_object_size(q->acc));
        break;
    case FIN_UID_ONLINE: {
        int online = 0;
        const char *k;
        json_t *ids;
        json_object_foreach(q->acc, k, ids) online |= json_array_size(ids) > 0;
        v = json_boolean(online);
        break;
    }
    case FIN_ONE_ARRAY: {
        /* The one key asked for; absent when no gateway answered. */
        void *it = json_object_iter(q->acc);
        v = it ? json_incref(json_object_iter_value(it)) : json_array();
        break;
    }
    case FIN_SETS_ARRAYS: {
        v = json_object();
        const char *k;
        json_t *set;
        json_object_foreach(q->acc, k, set) json_object_set_new(v, k, set_to_array(set));
        break;
    }
    default:
        json_incref(v);
        break;
    }
    json_decref(q->acc);
    q->acc = v;
}

static void query_complete(gw_query *q)
{
    if (q->done)
        return;
    q->done = 1;
    uv_timer_stop(&q->timer);
    query_finish(q);
    q->result.asked = q->total;
    q->result.answered = q->answered;
    q->result.complete = q->answered == q->total;
    q->result.value = q->acc;
    if (!q->result.complete)
        q->a->stats.queries_incomplete++;
    uint64_t took = uv_hrtime() / 1000 - q->started_us;
    q->a->stats.query_us_total += took;
    if (took > q->a->stats.query_us_max)
        q->a->stats.query_us_max = took;
    if (q->cb) {
        q->cb(&q->result, q->arg);
        query_free(q);
    }
}

static void query_timeout(uv_timer_t *t)
{
    query_complete(container_of(t, gw_query, timer));
}

static char *client_id_of(char out[21], uint32_t ip, uint16_t port, uint32_t conn)
{
    gw_client_addr ca = {.ip = ip, .port = port, .conn = conn};
    clientid_encode(&ca, out);
    return out;
}

/* [conn, ...] from gateway (ip, port) -> client_id strings appended to arr. */
static void append_ids(json_t *arr, const json_t *conns, uint32_t ip, uint16_t port)
{
    size_t i;
    json_t *v;
    char id[21];
    json_array_foreach(conns, i, v)
    {
        json_int_t n = json_integer_value(v);
        if (json_is_integer(v) && n >= 0 && n <= UINT32_MAX)
            json_array_append_new(arr, json_string(client_id_of(id, ip, port, (uint32_t)n)));
    }
}

static void set_add_all(json_t *set, const json_t *names)
{
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) if (json_is_string(v))
        json_object_set_new(set, json_string_value(v), json_true());
}

/* Merges one gateway's answer into q->acc. */
static void query_merge(gw_query *q, const json_t *r, uint32_t ip, uint16_t port)
{
    const char *k;
    json_t *v;
    char id[21];
    switch (q->kind) {
    case WIRE_Q_IS_ONLINE:
    case WIRE_Q_SESSION:
    case WIRE_Q_UID_OF:
        json_decref(q->acc);
        q->acc = json_deep_copy(r);
        break;
    case WIRE_Q_COUNT:
        if (json_is_integer(r)) {
            json_t *sum = json_integer(json_integer_value(q->acc) + json_integer_value(r));
            if (sum) {
                json_decref(q->acc); /* was leaked: one integer per answer */
                q->acc = sum;
            }
        }
        break;
    case WIRE_Q_CLIENTS:
        append_ids(q->acc, r, ip, port);
        break;
    case WIRE_Q_CONNECTIONS: {
        /* rows carry the connection number: turn it into the client_id */
        size_t i;
        char gwaddr[24];
        snprintf(gwaddr, sizeof gwaddr, "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255,
                 (ip >> 8) & 255, ip & 255, (unsigned)port);
        json_array_foreach((json_t *)r, i, v)
        {
            json_int_t n = json_integer_value(json_object_get(v, "conn"));
            json_t *row = json_deep_copy(v);
            if (row == NULL)
                continue;
            json_object_del(row, "conn");
            json_object_set_new(row, "client_id",
                                json_string(client_id_of(id, ip, port, (uint32_t)n)));
            json_object_set_new(row, "gateway", json_string(gwaddr));
            json_array_append_new(q->acc, row);
        }
        break;
    }
    case WIRE_Q_SESSIONS:
        json_object_foreach((json_t *)r, k, v)
        {
            unsigned long n = strtoul(k, NULL, 10);
            json_object_set(q->acc, client_id_of(id, ip, port, (uint32_t)n), v);
        }
        break;
    case WIRE_Q_CLIENTS_BY_UID:
    case WIRE_Q_GROUP_CLIENTS:
        json_object_foreach((json_t *)r, k, v)
        {
            json_t *arr = json_object_get(q->acc, k);
            if (arr == NULL) {
                arr = json_array();
                json_object_set_new(q->acc, k, arr);
            }
            append_ids(arr, v, ip, port);
        }
        break;
    case WIRE_Q_GROUPS:
    case WIRE_Q_UIDS:
        set_add_all(q->acc, r);
        break;
    case WIRE_Q_GROUP_COUNTS:
        json_object_foreach((json_t *)r, k, v)
        {
            json_int_t sum = json_integer_value(json_object_get(q->acc, k)) + json_integer_value(v);
            json_object_set_new(q->acc, k, json_integer(sum));
        }
        break;
    case WIRE_Q_GROUP_UIDS:
        json_object_foreach((json_t *)r, k, v)
        {
            json_t *set = json_object_get(q->acc, k);
            if (set == NULL) {
                set = json_object();
                json_object_set_new(q->acc, k, set);
            }
            set_add_all(set, v);
        }
        break;
    }
}

/* Returns 1 when the reply was taken (and 2 when it completed the query). */
static int query_reply(gw_api *a, const gwp_sender *from, const gwp_frame *f, gw_query *q)
{
    uint64_t key = (uint64_t)from->ip << 16 | from->port;
    unsigned i;
    for (i = 0; i < q->nasked; i++)
        if (q->asked[i] == key)
            break;
    if (i == q->nasked || q->done) {
        a->stats.replies_late++;
        return 1;
    }
    q->asked[i] = q->asked[--q->nasked];
    json_t *r = json_loadb((const char *)f->b, f->b_len, JSON_DECODE_ANY, NULL);
    if (r)
        query_merge(q, r, from->ip, from->port);
    json_decref(r);
    q->answered++;
    if (q->nasked == 0) {
        query_complete(q); /* with a callback this also frees q */
        return 2;
    }
    return 1;
}

typedef struct ask_ctx {
    gw_query *q;
    gwp_frame f;
} ask_ctx;

static void ask_one(cluster_peer *gw, void *arg)
{
    ask_ctx *c = arg;
    gw_query *q = c->q;
    if (cluster_send(q->a->cl, gw, &c->f) < 0)
        return;
    uint64_t key = (uint64_t)gw->ip << 16 | gw->port;
    q->asked[q->nasked++] = key;
}

static void count_gateways(cluster_peer *gw, void *arg)
{
    (void)gw;
    (*(unsigned *)arg)++;
}

static json_t *initial_acc(int kind)
{
    switch (kind) {
    case WIRE_Q_IS_ONLINE:
        return json_false();
    case WIRE_Q_SESSION:
    case WIRE_Q_UID_OF:
        return json_null();
    case WIRE_Q_COUNT:
        return json_integer(0);
    case WIRE_Q_CLIENTS:
    case WIRE_Q_CONNECTIONS:
        return json_array();
    default:
        return json_object();
    }
}

/* Starts a query: one gateway (client_id not NULL) or all gateways. */
static long query_start(int kind, int finish, const char *client_id, const char *const *names,
                        size_t nnames, gw_result_cb cb, void *arg)
{
    gw_api *a = self();
    if (a == NULL)
        return -GW_ENOCONTEXT;
    int rc = check_names(names, nnames);
    if (rc != 0)
        return -rc;
    cluster_peer *one = NULL;
    uint32_t conn = 0;
    if (client_id) {
        rc = resolve(a, client_id, &one, &conn);
        if (rc == GW_EINVAL)
            return -GW_EINVAL;
    }
    if (a->before_query)
        a->before_query(a);
    gw_query *q = gw_calloc(1, sizeof *q);
    if (q == NULL)
        return -ENOMEM;
    q->a = a;
    q->started_us = uv_hrtime() / 1000;
    q->kind = kind;
    q->finish = finish;
    q->cb = cb;
    q->arg = arg;
    q->acc = initial_acc(kind);
    do
        q->id = ++a->next_query_id;
    while (q->id == 0 || query_find(a, q->id));
    unsigned n = 0;
    if (client_id)
        n = one ? 1 : 0;
    else
        cluster_foreach_peer(a->cl, GWP_ROLE_GATEWAY, count_gateways, &n);
    q->asked = gw_calloc(n ? n : 1, sizeof *q->asked);
    gw_buf args = {0};
    char k[12];
    id_key(k, sizeof k, q->id);
    if (q->asked == NULL || q->acc == NULL ||
        (nnames && gw_buf_reserve(&args, wire_names_size(names, NULL, nnames)) < 0) ||
        smap_put(&a->queries, k, strlen(k), q, NULL) < 0) {
        gw_buf_deinit(&args);
        json_decref(q->acc);
        gw_free(q->asked);
        gw_free(q);
        return -ENOMEM;
    }
    if (nnames)
        args.len = wire_names_store(args.data, names, NULL, nnames);
    uv_timer_init(a->loop, &q->timer);
    ask_ctx c = {.q = q,
                 .f = {.cmd = GWP_QUERY,
                       .aux = (uint16_t)kind,
                       .req = q->id,
                       .conn = conn,
                       .a = args.data,
                       .a_len = args.len}};
    if (one)
        ask_one(one, &c);
    else if (!client_id)
        cluster_foreach_peer(a->cl, GWP_ROLE_GATEWAY, ask_one, &c);
    gw_buf_deinit(&args);
    q->total = q->nasked;
    a->stats.queries++;
    if (a->autoflush)
        cluster_flush(a->cl);
    q->deadline_ms = uv_now(a->loop) + a->query_timeout_ms;
    /* Nobody to ask: complete on the next loop turn (never inside this call). */
    uv_timer_start(&q->timer, query_timeout, q->nasked ? a->query_timeout_ms : 0, 0);
    return (long)q->id;
}

static int want_reply(const gwp_sender *from, const gwp_frame *f, void *arg)
{
    gw_query *q = arg;
    if (f->cmd != GWP_REPLY || f->req != q->id)
        return 0;
    return query_reply(q->a, from, f, q);
}

VISIBLE const gw_result *gw_wait(long id, double timeout)
{
    gw_api *a = self();
    if (a == NULL || id <= 0 || id > UINT32_MAX)
        return NULL;
    gw_query *q = query_find(a, (uint32_t)id);
    if (q == NULL || q->cb != NULL)
        return NULL;
    if (!q->done && q->nasked > 0) {
        /* uv_now is frozen while we block: measure with the monotonic clock. */
        uv_update_time(a->loop);
        uint64_t now = uv_now(a->loop);
        uint64_t left = q->deadline_ms > now ? q->deadline_ms - now : 0;
        if (timeout > 0 && timeout * 1000 < (double)left)
            left = (uint64_t)(timeout * 1000);
        cluster_recv_sync(a->cl, left, want_reply, q);
        uv_update_time(a->loop);
    }
    query_complete(q);
    /* The previous collected result goes now; this one stays until the next wait
     * or the end of the current callback. */
    if (a->collected)
        query_free(a->collected);
    a->collected = q;
    char k[12];
    id_key(k, sizeof k, q->id);
    smap_del(&a->queries, k, strlen(k));
    return &q->result;
}

void gw_api_event_end(gw_api *a)
{
    if (a->collected) {
        gw_query *q = a->collected;
        a->collected = NULL;
        q->closing = 1;
        uv_close((uv_handle_t *)&q->timer, query_closed);
    }
}

/* The query functions. */

VISIBLE long gw_is_online(const char *client_id, gw_result_cb cb, void *arg)
{
    return client_id ? query_start(WIRE_Q_IS_ONLINE, FIN_NONE, client_id, NULL, 0, cb, arg)
                     : -GW_EINVAL;
}

VISIBLE long gw_get_session(const char *client_id, gw_result_cb cb, void *arg)
{
    return client_id ? query_start(WIRE_Q_SESSION, FIN_NONE, client_id, NULL, 0, cb, arg)
                     : -GW_EINVAL;
}

VISIBLE long gw_get_uid_by_client_id(const char *client_id, gw_result_cb cb, void *arg)
{
    return client_id ? query_start(WIRE_Q_UID_OF, FIN_NONE, client_id, NULL, 0, cb, arg)
                     : -GW_EINVAL;
}

VISIBLE long gw_get_all_client_count(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_COUNT, FIN_NONE, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_client_count_by_group(const char *group, gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_COUNT, FIN_NONE, NULL, &group, 1, cb, arg);
}

VISIBLE long gw_get_all_client_id_list(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_CLIENTS, FIN_NONE, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_client_id_list_by_group(const char *group, gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_CLIENTS, FIN_NONE, NULL, &group, 1, cb, arg);
}

VISIBLE long gw_get_all_client_sessions(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_SESSIONS, FIN_NONE, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_client_sessions_by_group(const char *group, gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_SESSIONS, FIN_NONE, NULL, &group, 1, cb, arg);
}

VISIBLE long gw_get_client_id_by_uid(const char *uid, gw_result_cb cb, void *arg)
{
    /* {uid: [ids]} reduced to the one array */
    return query_start(WIRE_Q_CLIENTS_BY_UID, FIN_ONE_ARRAY, NULL, &uid, 1, cb, arg);
}

VISIBLE long gw_is_uid_online(const char *uid, gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_CLIENTS_BY_UID, FIN_UID_ONLINE, NULL, &uid, 1, cb, arg);
}

VISIBLE long gw_get_all_uid_list(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_UIDS, FIN_SET_ARRAY, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_all_uid_count(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_UIDS, FIN_SET_COUNT, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_uid_list_by_group(const char *group, gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_UIDS, FIN_SET_ARRAY, NULL, &group, 1, cb, arg);
}

VISIBLE long gw_get_uid_count_by_group(const char *group, gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_UIDS, FIN_SET_COUNT, NULL, &group, 1, cb, arg);
}

VISIBLE long gw_get_all_group_id_list(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_GROUPS, FIN_SET_ARRAY, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_all_group_uid_list(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_GROUP_UIDS, FIN_SETS_ARRAYS, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_all_group_client_id_list(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_GROUP_CLIENTS, FIN_NONE, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_get_connections(gw_result_cb cb, void *arg)
{
    return query_start(WIRE_Q_CONNECTIONS, FIN_NONE, NULL, NULL, 0, cb, arg);
}

VISIBLE long gw_batch_get_client_id_by_uid(const char *const *uids, size_t n, gw_result_cb cb,
                                           void *arg)
{
    if (n == 0 || uids == NULL)
        return -GW_EINVAL;
    return query_start(WIRE_Q_CLIENTS_BY_UID, FIN_NONE, NULL, uids, n, cb, arg);
}

VISIBLE long gw_batch_get_client_count_by_group(const char *const *groups, size_t n,
                                                gw_result_cb cb, void *arg)
{
    if (n == 0 || groups == NULL)
        return -GW_EINVAL;
    return query_start(WIRE_Q_GROUP_COUNTS, FIN_NONE, NULL, groups, n, cb, arg);
}

/* ---- lifecycle and frames ---- */

int gw_api_init(gw_api *a, uv_loop_t *loop, cluster *cl, const gw_config *cfg, int use_index)
{
    memset(a, 0, sizeof *a);
    a->loop = loop;
    a->cl = cl;
    a->max_message = cfg->gateway.max_message_size;
    a->query_timeout_ms = (uint64_t)(cfg->businessworker.query_timeout * 1000);
    a->use_index = use_index;
    smap_init(&a->presence);
    smap_init(&a->queries);
    gw_api_self = a;
    return 0;
}

void gw_api_deinit(gw_api *a)
{
    gw_api_event_end(a);
    smap *qs = &a->queries;
    /* Collect first: query_free edits the table. */
    size_t n = smap_count(qs), k = 0, pos = 0;
    gw_query **all = n ? gw_malloc(n * sizeof *all) : NULL;
    const smap_entry *e;
    while (all && smap_next(qs, &pos, &e))
        all[k++] = e->value;
    for (size_t i = 0; i < k; i++)
        query_free(all[i]);
    gw_free(all);
    smap_deinit(qs);
    pos = 0;
    while (smap_next(&a->presence, &pos, &e))
        presence_free(e->value);
    smap_deinit(&a->presence);
    if (gw_api_self == a)
        gw_api_self = NULL;
}

int gw_api_on_frame(gw_api *a, const gwp_sender *from, const gwp_frame *f)
{
    if (f->cmd == GWP_IDX && from->role == GWP_ROLE_GATEWAY) {
        presence_apply(a, from, f);
        return 1;
    }
    if (f->cmd == GWP_REPLY && from->role == GWP_ROLE_GATEWAY) {
        gw_query *q = query_find(a, f->req);
        if (q == NULL) {
            a->stats.replies_late++; /* unknown or already collected */
            return 1;
        }
        query_reply(a, from, f, q);
        return 1;
    }
    return 0;
}

typedef struct down_ctx {
    uint64_t key;
    gw_query **done;
    size_t n;
} down_ctx;

void gw_api_on_peer_down(gw_api *a, cluster_peer *p)
{
    char key[24];
    addr_key(key, sizeof key, p->ip, p->port);
    presence_free(smap_del(&a->presence, key, strlen(key)));
    /* Queries waiting for this gateway: stop waiting for it (incomplete). */
    uint64_t k = (uint64_t)p->ip << 16 | p->port;
    smap *qs = &a->queries;
    size_t n = smap_count(qs), m = 0, pos = 0;
    gw_query **finished = n ? gw_malloc(n * sizeof *finished) : NULL;
    const smap_entry *e;
    while (finished && smap_next(qs, &pos, &e)) {
        gw_query *q = e->value;
        for (unsigned i = 0; i < q->nasked; i++)
            if (q->asked[i] == k) {
                q->asked[i] = q->asked[--q->nasked];
                if (q->nasked == 0 && q->cb)
                    finished[m++] = q;
                break;
            }
    }
    for (size_t i = 0; i < m; i++)
        query_complete(finished[i]);
    gw_free(finished);
}
