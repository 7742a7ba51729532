#include "gateway/members.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/proto.h"
#include "gateway/gateway_int.h"

#include <errno.h>
#include <string.h>

#define SNAPSHOT_CHUNK (60 * 1024)

static smap *map_of(gw_gateway *gw, int kind)
{
    return kind == WIRE_KIND_UID ? &gw->uids : &gw->groups;
}

/* ---- presence deltas to workers ---- */

typedef struct delta_ctx {
    gw_gateway *gw;
    const uint8_t *entry;
    size_t len;
} delta_ctx;

static void delta_to(cluster_peer *p, void *arg)
{
    delta_ctx *d = arg;
    gwp_frame f = {.cmd = GWP_IDX, .a = d->entry, .a_len = d->len};
    cluster_send(d->gw->cl, p, &f);
}

static void announce(gw_gateway *gw, int op, const member_set *s)
{
    gw->members_changes++;
    if (gw->cl == NULL)
        return; /* unit tests run without a cluster */
    uint8_t buf[4 + WIRE_NAME_MAX];
    buf[0] = (uint8_t)op;
    buf[1] = s->kind;
    gw_store_be16(buf + 2, (uint16_t)s->name_len);
    memcpy(buf + 4, s->name, s->name_len);
    delta_ctx d = {gw, buf, 4 + s->name_len};
    cluster_foreach_peer(gw->cl, GWP_ROLE_WORKER, delta_to, &d);
}

void members_snapshot(gw_gateway *gw, void *peer)
{
    gw_buf b = {0};
    wire_idx_append(&b, WIRE_IDX_RESET, WIRE_KIND_UID, "", 0);
    for (int kind = WIRE_KIND_UID; kind <= WIRE_KIND_GROUP; kind++) {
        size_t pos = 0;
        const smap_entry *e;
        while (smap_next(map_of(gw, kind), &pos, &e)) {
            if (b.len > SNAPSHOT_CHUNK) {
                gwp_frame f = {.cmd = GWP_IDX, .a = b.data, .a_len = b.len};
                cluster_send(gw->cl, peer, &f);
                b.len = 0;
            }
            wire_idx_append(&b, WIRE_IDX_ADD, kind, e->key, e->klen);
        }
    }
    gwp_frame f = {.cmd = GWP_IDX, .a = b.data, .a_len = b.len};
    cluster_send(gw->cl, peer, &f);
    gw_buf_deinit(&b);
}

/* ---- sets ---- */

static member_set *set_get(gw_gateway *gw, int kind, const char *name, size_t len, int create)
{
    smap *m = map_of(gw, kind);
    member_set *s = smap_get(m, name, len);
    if (s || !create)
        return s;
    s = gw_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->name = gw_strndup(name, len);
    s->name_len = (uint32_t)len;
    s->kind = (uint8_t)kind;
    if (s->name == NULL || smap_put(m, name, len, s, NULL) < 0) {
        gw_free(s->name);
        gw_free(s);
        return NULL;
    }
    return s;
}

static void set_free(gw_gateway *gw, member_set *s)
{
    smap_del(map_of(gw, s->kind), s->name, s->name_len);
    gw_free(s->conns);
    gw_free(s->name);
    gw_free(s);
}

static int set_add(gw_gateway *gw, member_set *s, gw_conn *c, uint32_t *pos)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        gw_conn **cs = gw_realloc(s->conns, cap * sizeof *cs);
        if (cs == NULL)
            return -ENOMEM;
        s->conns = cs;
        s->cap = cap;
    }
    *pos = s->n;
    s->conns[s->n++] = c;
    if (s->n == 1)
        announce(gw, WIRE_IDX_ADD, s);
    return 0;
}

/* Back-reference of member c into set s. */
static void set_pos(gw_conn *c, member_set *s, uint32_t pos)
{
    if (s->kind == WIRE_KIND_UID) {
        c->uid_pos = pos;
        return;
    }
    for (uint16_t i = 0; i < c->ngroups; i++)
        if (c->groups[i].g == s) {
            c->groups[i].pos = pos;
            return;
        }
}

/* Removes the member at pos; frees the set when it empties. */
static void set_remove(gw_gateway *gw, member_set *s, uint32_t pos)
{
    uint32_t last = --s->n;
    if (pos != last) {
        s->conns[pos] = s->conns[last];
        set_pos(s->conns[pos], s, pos);
    }
    if (s->n == 0) {
        announce(gw, WIRE_IDX_REMOVE, s);
        set_free(gw, s);
    } else if (s->cap > 16 && s->n < s->cap / 4) {
        uint32_t cap = s->cap / 2;
        gw_conn **cs = gw_realloc(s->conns, cap * sizeof *cs);
        if (cs) {
            s->conns = cs;
            s->cap = cap;
        }
    }
}

/* ---- uid ---- */

int members_bind_uid(gw_gateway *gw, gw_conn *c, const char *uid, size_t len)
{
    if (c->uid && c->uid->name_len == len && memcmp(c->uid->name, uid, len) == 0)
        return 0;
    member_set *s = set_get(gw, WIRE_KIND_UID, uid, len, 1);
    if (s == NULL)
        return -ENOMEM;
    uint32_t pos;
    if (set_add(gw, s, c, &pos) < 0) {
        if (s->n == 0)
            set_free(gw, s);
        return -ENOMEM;
    }
    if (c->uid)
        set_remove(gw, c->uid, c->uid_pos);
    c->uid = s;
    c->uid_pos = pos;
    return 0;
}

int members_unbind_uid(gw_gateway *gw, gw_conn *c, const char *uid, size_t len)
{
    if (c->uid && c->uid->name_len == len && memcmp(c->uid->name, uid, len) == 0) {
        set_remove(gw, c->uid, c->uid_pos);
        c->uid = NULL;
    }
    return 0;
}

member_set *members_uid(gw_gateway *gw, const char *uid, size_t len)
{
    return set_get(gw, WIRE_KIND_UID, uid, len, 0);
}

/* ---- groups ---- */

static int group_index(const gw_conn *c, const member_set *s)
{
    for (uint16_t i = 0; i < c->ngroups; i++)
        if (c->groups[i].g == s)
            return i;
    return -1;
}

int members_join(gw_gateway *gw, gw_conn *c, const char *group, size_t len)
{
    member_set *s = set_get(gw, WIRE_KIND_GROUP, group, len, 1);
    if (s == NULL)
        return -ENOMEM;
    if (group_index(c, s) >= 0)
        return 0;
    if (c->ngroups == c->cap_groups) {
        if (c->cap_groups >= 32768)
            return -ENOMEM;
        uint16_t cap = c->cap_groups ? (uint16_t)(c->cap_groups * 2) : 2;
        conn_group *g = gw_realloc(c->groups, cap * sizeof *g);
        if (g == NULL) {
            if (s->n == 0)
                set_free(gw, s);
            return -ENOMEM;
        }
        c->groups = g;
        c->cap_groups = cap;
    }
    uint32_t pos;
    if (set_add(gw, s, c, &pos) < 0) {
        if (s->n == 0)
            set_free(gw, s);
        return -ENOMEM;
    }
    c->groups[c->ngroups++] = (conn_group){s, pos};
    return 0;
}

static void leave_at(gw_gateway *gw, gw_conn *c, int i)
{
    member_set *s = c->groups[i].g;
    uint32_t pos = c->groups[i].pos;
    c->groups[i] = c->groups[--c->ngroups];
    set_remove(gw, s, pos);
    if (c->ngroups == 0) {
        gw_free(c->groups);
        c->groups = NULL;
        c->cap_groups = 0;
    }
}

int members_leave(gw_gateway *gw, gw_conn *c, const char *group, size_t len)
{
    member_set *s = set_get(gw, WIRE_KIND_GROUP, group, len, 0);
    if (s == NULL)
        return 0;
    int i = group_index(c, s);
    if (i >= 0)
        leave_at(gw, c, i);
    return 0;
}

void members_ungroup(gw_gateway *gw, const char *group, size_t len)
{
    member_set *s = set_get(gw, WIRE_KIND_GROUP, group, len, 0);
    /* Each leave shrinks the set; the last one frees it. */
    while (s && s->n > 0) {
        gw_conn *c = s->conns[s->n - 1];
        int last = s->n == 1;
        int i = group_index(c, s);
        if (i < 0)
            break; /* inconsistent: cannot happen */
        leave_at(gw, c, i);
        if (last)
            break;
    }
}

member_set *members_group(gw_gateway *gw, const char *group, size_t len)
{
    return set_get(gw, WIRE_KIND_GROUP, group, len, 0);
}

void members_detach(gw_gateway *gw, gw_conn *c)
{
    if (c->uid) {
        set_remove(gw, c->uid, c->uid_pos);
        c->uid = NULL;
    }
    while (c->ngroups > 0)
        leave_at(gw, c, c->ngroups - 1);
}

void members_free_all(gw_gateway *gw)
{
    for (int kind = WIRE_KIND_UID; kind <= WIRE_KIND_GROUP; kind++) {
        smap *m = map_of(gw, kind);
        size_t pos = 0;
        const smap_entry *e;
        while (smap_next(m, &pos, &e)) {
            member_set *s = e->value;
            gw_free(s->conns);
            gw_free(s->name);
            gw_free(s);
        }
        smap_deinit(m);
    }
}
