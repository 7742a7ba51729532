/* api.c - the gw_* functions business modules call (include/gatewayworker.h). */
#include "businessworker/worker_int.h"
#include "common/alloc.h"
#include "common/clientid.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VISIBLE __attribute__((visibility("default")))

VISIBLE const char *gw_strerror(int err)
{
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_EINVAL:
        return "invalid argument (malformed client_id or missing data)";
    case GW_ETOOBIG:
        return "message larger than gateway.max_message_size";
    case GW_EUTF8:
        return "text message is not valid UTF-8 (send it as binary)";
    case GW_EUNREACHABLE:
        return "the client's gateway is not in the cluster";
    case GW_ENOCONTEXT:
        return "no current client outside an event callback";
    case GW_EREADONLY:
        return "the session is read-only in on_close";
    default:
        return err < 0 ? strerror(-err) : "unknown error";
    }
}

/* ---- current event ---- */

VISIBLE const gw_client *gw_current_client(void)
{
    gw_worker *w = gw_worker_self;
    return w && w->ev.active ? &w->ev.client : NULL;
}

VISIBLE int gw_message_is_binary(void)
{
    gw_worker *w = gw_worker_self;
    return w && w->ev.active && w->ev.cmd == GWP_EV_MESSAGE && w->ev.binary;
}

static const char *obj_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

VISIBLE const char *gw_request_method(const gw_request *r)
{
    return obj_str(r->root, "method");
}

VISIBLE const char *gw_request_uri(const gw_request *r)
{
    return obj_str(r->root, "uri");
}

VISIBLE const char *gw_request_path(const gw_request *r)
{
    return obj_str(r->root, "path");
}

VISIBLE const char *gw_request_query_string(const gw_request *r)
{
    return obj_str(r->root, "query");
}

VISIBLE const char *gw_request_get(const gw_request *r, const char *name)
{
    return obj_str(json_object_get(r->root, "get"), name);
}

VISIBLE const char *gw_request_header(const gw_request *r, const char *name)
{
    const json_t *h = json_object_get(r->root, "headers");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)h, key, v)
    {
        if (strcasecmp(key, name) == 0)
            return json_string_value(v);
    }
    return NULL;
}

VISIBLE const char *gw_request_cookie(const gw_request *r, const char *name)
{
    return obj_str(json_object_get(r->root, "cookies"), name);
}

VISIBLE const json_t *gw_request_json(const gw_request *r)
{
    return r->root;
}

/* ---- plumbing ---- */

int api_resolve(gw_worker *w, const char *client_id, cluster_peer **gw, uint32_t *conn)
{
    gw_client_addr a;
    if (client_id == NULL || clientid_decode(client_id, &a) < 0)
        return GW_EINVAL;
    cluster_peer *p = cluster_peer_find(w->cl, a.ip, a.port);
    if (p == NULL)
        return GW_EUNREACHABLE;
    *gw = p;
    *conn = a.conn;
    return 0;
}

int api_send_frame(gw_worker *w, cluster_peer *gw, const gwp_frame *f)
{
    int rc = cluster_send(w->cl, gw, f);
    if (rc == 0) {
        w->stats.commands_out++;
        return 0;
    }
    w->stats.send_errors++;
    if (rc == -EMSGSIZE)
        return GW_ETOOBIG;
    if (rc == -EPIPE)
        return GW_EUNREACHABLE;
    return rc;
}

static int check_payload(gw_worker *w, const void *data, size_t len, unsigned flags)
{
    if (data == NULL && len > 0)
        return GW_EINVAL;
    if (len > w->cfg->gateway.max_message_size)
        return GW_ETOOBIG;
    if (!(flags & (GW_BINARY | GW_RAW)) && len > 0 &&
        utf8_validate(UTF8_ACCEPT, data, len) != UTF8_ACCEPT)
        return GW_EUTF8;
    return 0;
}

static uint16_t wire_aux(unsigned flags)
{
    return (uint16_t)(((flags & GW_BINARY) ? WIRE_MSG_BINARY : 0) |
                      ((flags & GW_RAW) ? WIRE_MSG_RAW : 0));
}

static gw_worker *self_or_null(void)
{
    return gw_worker_self;
}

/* ---- sending ---- */

VISIBLE int gw_send_to_client_ex(const char *client_id, const void *data, size_t len,
                                 unsigned flags)
{
    gw_worker *w = self_or_null();
    if (w == NULL)
        return GW_ENOCONTEXT;
    int rc = check_payload(w, data, len, flags);
    cluster_peer *gw;
    uint32_t conn;
    if (rc == 0)
        rc = api_resolve(w, client_id, &gw, &conn);
    if (rc != 0) {
        w->stats.send_errors++;
        return rc;
    }
    gwp_frame f = {.cmd = GWP_CMD_SEND, .aux = wire_aux(flags), .conn = conn, .b = data, .b_len = len};
    return api_send_frame(w, gw, &f);
}

VISIBLE int gw_send_to_client(const char *client_id, const void *data, size_t len)
{
    return gw_send_to_client_ex(client_id, data, len, 0);
}

VISIBLE int gw_send_to_current_client_ex(const void *data, size_t len, unsigned flags)
{
    gw_worker *w = self_or_null();
    if (w == NULL || !w->ev.active)
        return GW_ENOCONTEXT;
    return gw_send_to_client_ex(w->ev.client_id, data, len, flags);
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

static int cmp_target(const void *a, const void *b)
{
    const target *x = a, *y = b;
    if (x->gw != y->gw)
        return (uintptr_t)x->gw < (uintptr_t)y->gw ? -1 : 1;
    return x->conn < y->conn ? -1 : x->conn > y->conn;
}

/* Resolves ids (skipping unknown gateways and malformed ids when lenient);
 * returns the count or a GW error. */
static long resolve_all(gw_worker *w, const char *const *ids, size_t n, target **out)
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
        int rc = api_resolve(w, ids[i], &t[k].gw, &t[k].conn);
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

typedef struct bcast_ctx {
    gw_worker *w;
    const void *data;
    size_t len;
    uint16_t aux;
    const target *excl;
    size_t nexcl;
    int rc;
} bcast_ctx;

/* Sends one CMD_SEND_ALL to gateway `gw` with an optional include list
 * (incl[0..nincl)) and the exclude entries that belong to this gateway. */
static int send_all_frame(bcast_ctx *b, cluster_peer *gw, const target *incl, size_t nincl,
                          int has_incl)
{
    size_t nex = 0, first = 0;
    for (size_t i = 0; i < b->nexcl; i++)
        if (b->excl[i].gw == gw) {
            if (nex == 0)
                first = i;
            nex++;
        }
    gwp_frame f = {.cmd = GWP_CMD_SEND_ALL, .aux = b->aux, .b = b->data, .b_len = b->len};
    f.a_len = (has_incl ? gwp_u32list_wire_len(nincl) : 0) + (nex ? gwp_u32list_wire_len(nex) : 0);
    f.flags = (uint8_t)((has_incl ? WIRE_F_INCLUDE : 0) | (nex ? WIRE_F_EXCLUDE : 0));
    uint8_t *a, *bp;
    int rc = cluster_send_inplace(b->w->cl, gw, &f, &a, &bp);
    if (rc < 0)
        return rc == -EMSGSIZE ? GW_ETOOBIG : rc == -EPIPE ? GW_EUNREACHABLE : rc;
    if (has_incl) {
        uint8_t *p = a;
        gw_store_be32(p, (uint32_t)nincl);
        for (size_t i = 0; i < nincl; i++)
            gw_store_be32(p + 4 + 4 * i, incl[i].conn);
        a += gwp_u32list_wire_len(nincl);
    }
    if (nex) {
        gw_store_be32(a, (uint32_t)nex);
        for (size_t i = 0; i < nex; i++)
            gw_store_be32(a + 4 + 4 * i, b->excl[first + i].conn);
    }
    if (b->len)
        memcpy(bp, b->data, b->len);
    b->w->stats.commands_out++;
    return 0;
}

static void bcast_to_gateway(cluster_peer *gw, void *arg)
{
    bcast_ctx *b = arg;
    int rc = send_all_frame(b, gw, NULL, 0, 0);
    if (rc != 0 && b->rc == 0)
        b->rc = rc;
}

VISIBLE int gw_send_to_all_ex(const void *data, size_t len, const char *const *client_ids,
                              size_t n_ids, const char *const *exclude, size_t n_exclude,
                              unsigned flags)
{
    gw_worker *w = self_or_null();
    if (w == NULL)
        return GW_ENOCONTEXT;
    int rc = check_payload(w, data, len, flags);
    if (rc != 0)
        return rc;
    bcast_ctx b = {.w = w, .data = data, .len = len, .aux = wire_aux(flags)};
    target *excl = NULL, *incl = NULL;
    long nex = resolve_all(w, exclude, exclude ? n_exclude : 0, &excl);
    if (nex < 0)
        return nex == -ENOMEM ? -ENOMEM : GW_EINVAL;
    b.excl = excl;
    b.nexcl = (size_t)nex;
    if (client_ids == NULL) {
        cluster_foreach_peer(w->cl, GWP_ROLE_GATEWAY, bcast_to_gateway, &b);
    } else {
        long nin = resolve_all(w, client_ids, n_ids, &incl);
        if (nin < 0) {
            gw_free(excl);
            return nin == -ENOMEM ? -ENOMEM : GW_EINVAL;
        }
        for (long i = 0; i < nin;) {
            long j = i;
            while (j < nin && incl[j].gw == incl[i].gw)
                j++;
            int r = send_all_frame(&b, incl[i].gw, incl + i, (size_t)(j - i), 1);
            if (r != 0 && b.rc == 0)
                b.rc = r;
            i = j;
        }
        gw_free(incl);
    }
    gw_free(excl);
    if (b.rc != 0)
        w->stats.send_errors++;
    return b.rc;
}

VISIBLE int gw_send_to_all(const void *data, size_t len, const char *const *client_ids,
                           size_t n_ids, const char *const *exclude, size_t n_exclude)
{
    return gw_send_to_all_ex(data, len, client_ids, n_ids, exclude, n_exclude, 0);
}

VISIBLE int gw_close_client_ex(const char *client_id, const void *last_message, size_t len,
                               uint16_t code, unsigned flags)
{
    gw_worker *w = self_or_null();
    if (w == NULL)
        return GW_ENOCONTEXT;
    if (code != 0 && !((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                       (code >= 3000 && code <= 4999)))
        return GW_EINVAL;
    int rc = check_payload(w, last_message, len, flags);
    cluster_peer *gw;
    uint32_t conn;
    if (rc == 0)
        rc = api_resolve(w, client_id, &gw, &conn);
    if (rc != 0)
        return rc;
    gwp_frame f = {.cmd = GWP_CMD_CLOSE,
                   .flags = (flags & GW_BINARY) ? WIRE_F_CLOSE_BINARY : 0,
                   .aux = code,
                   .conn = conn,
                   .b = last_message,
                   .b_len = len};
    return api_send_frame(w, gw, &f);
}

VISIBLE int gw_close_client(const char *client_id, const void *last_message, size_t len)
{
    return gw_close_client_ex(client_id, last_message, len, 0, 0);
}

VISIBLE int gw_close_current_client(const void *last_message, size_t len)
{
    gw_worker *w = self_or_null();
    if (w == NULL || !w->ev.active)
        return GW_ENOCONTEXT;
    return gw_close_client_ex(w->ev.client_id, last_message, len, 0, 0);
}

VISIBLE int gw_destroy_client(const char *client_id)
{
    gw_worker *w = self_or_null();
    if (w == NULL)
        return GW_ENOCONTEXT;
    cluster_peer *gw;
    uint32_t conn;
    int rc = api_resolve(w, client_id, &gw, &conn);
    if (rc != 0)
        return rc;
    gwp_frame f = {.cmd = GWP_CMD_DESTROY, .conn = conn};
    return api_send_frame(w, gw, &f);
}

VISIBLE int gw_destroy_current_client(void)
{
    gw_worker *w = self_or_null();
    if (w == NULL || !w->ev.active)
        return GW_ENOCONTEXT;
    return gw_destroy_client(w->ev.client_id);
}

/* ---- worker facts, timers, loop ---- */

VISIBLE int gw_worker_id(void)
{
    gw_worker *w = self_or_null();
    return w ? w->index : -1;
}

VISIBLE const json_t *gw_module_config(void)
{
    gw_worker *w = self_or_null();
    return w ? w->cfg->businessworker.module_config : NULL;
}

VISIBLE void *gw_loop(void)
{
    gw_worker *w = self_or_null();
    return w ? w->loop : NULL;
}

static void timer_unlink(gw_worker *w, gw_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        w->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

static void timer_closed(uv_handle_t *h)
{
    gw_timer *t = container_of((uv_timer_t *)h, gw_timer, t);
    gw_worker *w = h->data;
    gw_free(t);
    if (w)
        worker_release(w);
}

static void timer_fire(uv_timer_t *h)
{
    gw_timer *t = container_of(h, gw_timer, t);
    gw_worker *w = gw_worker_self;
    gw_timer_cb cb = t->cb;
    void *arg = t->arg;
    if (!t->repeat) {
        timer_unlink(w, t);
        h->data = NULL;
        uv_close((uv_handle_t *)h, timer_closed);
    }
    cb(arg);
}

VISIBLE long gw_timer_add(double seconds, int repeat, gw_timer_cb cb, void *arg)
{
    gw_worker *w = self_or_null();
    if (w == NULL || w->stopping)
        return -GW_ENOCONTEXT;
    if (cb == NULL || !(seconds >= 0) || seconds > 1e9)
        return -GW_EINVAL;
    gw_timer *t = gw_calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    uv_timer_init(w->loop, &t->t);
    t->id = ++w->next_timer_id;
    t->repeat = repeat;
    t->cb = cb;
    t->arg = arg;
    uint64_t ms = (uint64_t)(seconds * 1000 + 0.5);
    uv_timer_start(&t->t, timer_fire, ms, repeat ? (ms ? ms : 1) : 0);
    t->next = w->timers;
    if (w->timers)
        w->timers->prev = t;
    w->timers = t;
    return t->id;
}

VISIBLE int gw_timer_del(long id)
{
    gw_worker *w = self_or_null();
    if (w == NULL)
        return GW_ENOCONTEXT;
    for (gw_timer *t = w->timers; t; t = t->next)
        if (t->id == id) {
            timer_unlink(w, t);
            t->t.data = NULL;
            uv_close((uv_handle_t *)&t->t, timer_closed);
            return 0;
        }
    return GW_EINVAL;
}

void api_timers_close_all(gw_worker *w)
{
    while (w->timers) {
        gw_timer *t = w->timers;
        timer_unlink(w, t);
        t->t.data = w;
        w->pending_closes++;
        uv_close((uv_handle_t *)&t->t, timer_closed);
    }
}
