/* worker.c - the business worker: events from gateways in, module callbacks, and
 * the session write-back.
 *
 * Sessions: an event carries the client's session as its gateway has it, and the
 * number of this worker's write-backs for that client the gateway had applied when
 * it sent the event (frame `req`). After a callback changed the session, the
 * worker sends the change as a merge patch (counted write-back) and remembers it
 * until an event shows the gateway applied it. A later event that was sent before
 * the patch arrived gets the remembered patches applied on top, so a change made
 * in one callback is visible to the client's next event, in order.
 */
#include "businessworker/worker_int.h"
#include "common/alloc.h"
#include "common/clientid.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/proto.h"
#include "common/session.h"
#include "common/u32map.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

gw_worker *gw_worker_self;

/* ---- session overlay ---- */

static void pending_free(sess_pending *p)
{
    if (p) {
        json_decref(p->patches);
        gw_free(p);
    }
}

/* Forgets patches the gateway has applied (seq <= applied). */
static void pending_trim(gw_worker *w, const char *id, uint32_t applied)
{
    sess_pending *p = smap_get(&w->pending, id, 20);
    if (p == NULL)
        return;
    if (applied + 1 < p->first_seq) {
        /* The gateway's count restarted (the client was re-bound): stale. */
        pending_free(smap_del(&w->pending, id, 20));
        return;
    }
    while (json_array_size(p->patches) > 0 && p->first_seq <= applied) {
        json_array_remove(p->patches, 0);
        p->first_seq++;
    }
    if (json_array_size(p->patches) == 0)
        pending_free(smap_del(&w->pending, id, 20));
}

json_t *gw_session(void)
{
    gw_worker *w = gw_worker_self;
    if (w == NULL || !w->ev.active)
        return NULL;
    ev_ctx *e = &w->ev;
    if (e->session)
        return e->session;
    e->session = session_parse(e->sess_text, e->sess_len);
    if (e->session == NULL) {
        LOG_RL(GW_LOG_WARN, "GW-SESSION", "client %s: session is not a JSON object; starting empty",
               e->client_id);
        e->session = json_object();
        if (e->session == NULL)
            return NULL;
    }
    sess_pending *p = smap_get(&w->pending, e->client_id, 20);
    if (p) {
        size_t i;
        json_t *patch;
        json_array_foreach(p->patches, i, patch) session_merge(&e->session, patch);
    }
    e->session_orig = json_deep_copy(e->session);
    return e->session;
}

/* gw_set_session / gw_update_session on the current client: change the view;
 * the write-back after the callback carries it, counted and in order. */
static int session_hook(gw_api *a, const json_t *value, int merge)
{
    gw_worker *w = container_of(a, gw_worker, api);
    if (w->ev.cmd == GWP_EV_CLOSE)
        return GW_EREADONLY;
    json_t *view = gw_session();
    if (view == NULL)
        return -ENOMEM;
    json_t *next = json_deep_copy(merge ? view : value);
    if (next == NULL || (merge && session_merge(&next, value) < 0)) {
        json_decref(next);
        return -ENOMEM;
    }
    /* As for another client's session: one the gateway would refuse is refused
     * here, and nothing changes. */
    gw_buf text = {0};
    int rc = session_dump(next, &text);
    size_t len = text.len;
    gw_buf_deinit(&text);
    if (rc < 0 || len > w->cfg->gateway.max_message_size) {
        json_decref(next);
        return rc < 0 ? -ENOMEM : GW_ETOOBIG;
    }
    /* In place: the object gw_session() returned stays valid for the module
     * until the end of the callback. */
    json_object_clear(view);
    rc = json_object_update(view, next);
    json_decref(next);
    return rc < 0 ? -ENOMEM : 0;
}

static void write_back_session(gw_worker *w)
{
    ev_ctx *e = &w->ev;
    if (e->session == NULL || e->session_orig == NULL || e->cmd == GWP_EV_CLOSE)
        return;
    if (json_equal(e->session, e->session_orig))
        return;
    if (!json_is_object(e->session)) {
        LOG_RL(GW_LOG_WARN, "GW-SESSION", "client %s: session replaced by a non-object; ignored",
               e->client_id);
        return;
    }
    json_t *patch = session_diff(e->session_orig, e->session);
    char *text = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
    if (text == NULL) {
        json_decref(patch);
        return;
    }
    gwp_frame f = {.cmd = GWP_CMD_UPDATE_SESSION,
                   .flags = WIRE_F_SEQ,
                   .conn = e->conn,
                   .a = (const uint8_t *)text,
                   .a_len = strlen(text)};
    int rc = gw_api_send(&w->api, e->gateway, &f);
    gw_free(text);
    if (rc != 0) {
        json_decref(patch);
        return;
    }
    w->stats.session_writes++;
    /* Later changes in this callback are diffed against what was just sent. */
    json_t *sent = json_deep_copy(e->session);
    if (sent) {
        json_decref(e->session_orig);
        e->session_orig = sent;
    }
    sess_pending *p = smap_get(&w->pending, e->client_id, 20);
    if (p == NULL) {
        p = gw_calloc(1, sizeof *p);
        if (p == NULL || (p->patches = json_array()) == NULL ||
            smap_put(&w->pending, e->client_id, 20, p, NULL) < 0) {
            pending_free(p);
            json_decref(patch);
            return;
        }
        p->sent = e->applied;
        p->first_seq = e->applied + 1;
    }
    json_array_append_new(p->patches, patch);
    p->sent++;
}

static void before_query(gw_api *a)
{
    gw_worker *w = container_of(a, gw_worker, api);
    if (w->ev.active)
        write_back_session(w);
}

/* ---- clients seen, per gateway ----
 *
 * A gateway that dies (SIGKILL, lost host) cannot send on_close for its
 * clients. So each worker remembers the clients it has had events from, per
 * gateway, with their last session, and runs on_close for them itself when that
 * gateway leaves the cluster. When a gateway (re)discovers this worker it sends
 * a presence reset first; at that moment it has no clients bound here, so the
 * list for that gateway starts over (clients that moved to another worker in
 * the meantime are not closed twice). */

typedef struct known_client {
    wire_info info;
    uint32_t sess_len;
    char *sess; /* last session text seen, or NULL */
} known_client;

static u32map *clients_of(gw_worker *w, uint32_t ip, uint16_t port, int create)
{
    if (w->last_clients && w->last_clients_ip == ip && w->last_clients_port == port)
        return w->last_clients;
    char key[16];
    snprintf(key, sizeof key, "%08x%04x", ip, port);
    u32map *m = smap_get(&w->clients, key, 12);
    if (m == NULL && create) {
        m = gw_calloc(1, sizeof *m);
        if (m == NULL || smap_put(&w->clients, key, 12, m, NULL) < 0) {
            gw_free(m);
            return NULL;
        }
    }
    if (m) {
        w->last_clients = m;
        w->last_clients_ip = ip;
        w->last_clients_port = port;
    }
    return m;
}

static void known_free(known_client *k)
{
    if (k) {
        gw_free(k->sess);
        gw_free(k);
    }
}

/* Removes gateway ip:port's list from the worker and returns it (or NULL). */
static u32map *clients_take(gw_worker *w, uint32_t ip, uint16_t port)
{
    char key[16];
    snprintf(key, sizeof key, "%08x%04x", ip, port);
    if (w->last_clients_ip == ip && w->last_clients_port == port)
        w->last_clients = NULL;
    return smap_del(&w->clients, key, 12);
}

static void clients_free(u32map *m)
{
    size_t pos = 0;
    uint32_t conn;
    void *v;
    while (m && u32map_next(m, &pos, &conn, &v))
        known_free(v);
    if (m)
        u32map_deinit(m);
    gw_free(m);
}

/* Notes the client of an event (and its session, when it changed). */
static void track(gw_worker *w, uint32_t ip, uint16_t port, uint32_t conn, const wire_info *info,
                  const uint8_t *sess, size_t sess_len)
{
    u32map *m = clients_of(w, ip, port, 1);
    if (m == NULL)
        return;
    known_client *k = u32map_get(m, conn);
    if (k == NULL) {
        k = gw_calloc(1, sizeof *k);
        if (k == NULL || u32map_put(m, conn, k) < 0) {
            gw_free(k);
            return;
        }
        k->info = *info;
    }
    if (k->sess_len == sess_len && (sess_len == 0 || memcmp(k->sess, sess, sess_len) == 0))
        return;
    char *copy = sess_len ? gw_malloc(sess_len) : NULL;
    if (sess_len && copy == NULL)
        return;
    if (sess_len)
        memcpy(copy, sess, sess_len);
    gw_free(k->sess);
    k->sess = copy;
    k->sess_len = (uint32_t)sess_len;
}

static void untrack(gw_worker *w, uint32_t ip, uint16_t port, uint32_t conn)
{
    u32map *m = clients_of(w, ip, port, 0);
    if (m)
        known_free(u32map_del(m, conn));
}

/* ---- clients closed because their gateway left, which may come back ----
 *
 * A gateway cut off by the network (not restarted) keeps its clients. If it
 * comes back with the same boot nonce and one of the clients the worker closed
 * speaks again, the worker runs on_connect for it first, so no module sees
 * events after on_close without a new on_connect; a late close of such a
 * client is dropped (on_close already ran). Forgotten when the gateway is seen
 * with another nonce (it restarted: those clients are gone), or after an hour. */

#define GHOST_TTL_MS (3600 * 1000)

typedef struct ghost_table {
    uint64_t nonce;
    uint64_t since_ms;
    u32map conns; /* conn -> known_client */
} ghost_table;

static void ghost_free(ghost_table *g)
{
    size_t pos = 0;
    uint32_t conn;
    void *v;
    while (g && u32map_next(&g->conns, &pos, &conn, &v))
        known_free(v);
    if (g)
        u32map_deinit(&g->conns);
    gw_free(g);
}

/* Drops tables of gateways restarted meanwhile (other nonce) and old ones. */
static void ghosts_sweep(gw_worker *w, uint32_t ip, uint16_t port, uint64_t nonce)
{
    char key[16];
    snprintf(key, sizeof key, "%08x%04x", ip, port);
    ghost_table *g = smap_get(&w->ghosts, key, 12);
    if (g && g->nonce != nonce)
        ghost_free(smap_del(&w->ghosts, key, 12));
    uint64_t now = uv_now(w->loop);
    for (size_t pos = 0;;) {
        const smap_entry *e;
        if (!smap_next(&w->ghosts, &pos, &e))
            break;
        ghost_table *t = e->value;
        if (now - t->since_ms > GHOST_TTL_MS) {
            ghost_free(smap_del(&w->ghosts, e->key, e->klen));
            pos = 0; /* the table changed: start over (rare, small) */
        }
    }
}

/* Keeps the clients of list m (now closed) as ghosts of gateway ip:port. */
static void ghosts_keep(gw_worker *w, uint32_t ip, uint16_t port, uint64_t nonce, u32map *m)
{
    char key[16];
    snprintf(key, sizeof key, "%08x%04x", ip, port);
    ghost_table *g = smap_get(&w->ghosts, key, 12);
    if (g && g->nonce != nonce) {
        ghost_free(smap_del(&w->ghosts, key, 12));
        g = NULL;
    }
    if (g == NULL) {
        g = gw_calloc(1, sizeof *g);
        if (g == NULL || smap_put(&w->ghosts, key, 12, g, NULL) < 0) {
            gw_free(g);
            clients_free(m);
            return;
        }
        g->nonce = nonce;
    }
    g->since_ms = uv_now(w->loop);
    size_t pos = 0;
    uint32_t conn;
    void *v;
    while (u32map_next(m, &pos, &conn, &v))
        if (u32map_put(&g->conns, conn, v) < 0)
            known_free(v);
    u32map_deinit(m);
    gw_free(m);
}

/* A client this worker closed when its gateway left, now speaking again. */
static known_client *ghost_take(gw_worker *w, const gwp_sender *from, uint32_t conn)
{
    if (smap_count(&w->ghosts) == 0)
        return NULL;
    char key[16];
    snprintf(key, sizeof key, "%08x%04x", from->ip, from->port);
    ghost_table *g = smap_get(&w->ghosts, key, 12);
    if (g == NULL || g->nonce != from->nonce)
        return NULL;
    return u32map_del(&g->conns, conn);
}

/* ---- events ---- */

static void run_callback(gw_worker *w, cluster_peer *gateway, uint32_t ip, uint16_t port,
                         uint8_t cmd, uint32_t conn, uint32_t applied, uint16_t aux,
                         const wire_info *info, const uint8_t *sess, size_t sess_len,
                         const uint8_t *b, size_t b_len);

/* One event for the module: sets the context, runs the callback, writes the
 * session back. gateway is the link to the client's gateway (ip:port). */
static void run_callback(gw_worker *w, cluster_peer *gateway, uint32_t ip, uint16_t port,
                         uint8_t cmd, uint32_t conn, uint32_t applied, uint16_t aux,
                         const wire_info *info, const uint8_t *sess, size_t sess_len,
                         const uint8_t *b, size_t b_len)
{
    ev_ctx *e = &w->ev;
    /* Field by field: the context holds ~400 bytes of text buffers that are
     * only filled on demand; clearing them per event was measurable. */
    e->session = e->session_orig = NULL;
    e->client_ready = 0;
    e->verdict_reason[0] = '\0';
    e->info = *info;
    e->gateway = gateway;
    gw_client_addr ca = {.ip = ip, .port = port, .conn = conn};
    clientid_encode(&ca, e->client_id);
    e->active = 1;
    e->cmd = cmd;
    e->conn = conn;
    e->applied = applied;
    e->binary = (aux & WIRE_MSG_BINARY) != 0;
    e->sess_text = sess;
    e->sess_len = sess_len;
    e->gateway_ip = ip;
    if (smap_count(&w->pending))
        pending_trim(w, e->client_id, e->applied);
    w->stats.events++;
    w->api.ev_active = 1;
    w->api.ev_client_id = e->client_id;
    w->api.ev_gateway = e->gateway;
    w->api.ev_conn = e->conn;
    e->verdict = 101;

    const gw_module_fns *m = &w->mod;
    switch (cmd) {
    case GWP_EV_CONNECT:
        if (m->on_connect)
            m->on_connect(e->client_id);
        break;
    case GWP_EV_WS_CONNECT:
        if (m->on_websocket_connect) {
            gw_request req = {.root = json_loadb((const char *)b, b_len, 0, NULL)};
            if (req.root == NULL || !json_is_object(req.root)) {
                w->stats.bad_frames++;
                json_decref(req.root);
                req.root = json_object();
            }
            m->on_websocket_connect(e->client_id, &req);
            json_decref(req.root);
        }
        if (aux & WIRE_WS_AUTH) {
            gwp_frame v = {.cmd = GWP_CMD_WS_VERDICT,
                           .conn = e->conn,
                           .aux = (uint16_t)e->verdict,
                           .b = (const uint8_t *)e->verdict_reason,
                           .b_len = e->verdict == 101 ? 0 : strlen(e->verdict_reason)};
            gw_api_send(&w->api, e->gateway, &v);
        }
        break;
    case GWP_EV_MESSAGE:
        /* Text messages get a terminating NUL (not counted) for convenience;
         * the frame's bytes are followed by the batch, so copy small ones. */
        if (!e->binary) {
            char stack[512];
            char *buf = b_len < sizeof stack ? stack : gw_malloc(b_len + 1);
            if (buf == NULL)
                break;
            memcpy(buf, b, b_len);
            buf[b_len] = '\0';
            m->on_message(e->client_id, buf, b_len);
            if (buf != stack)
                gw_free(buf);
        } else {
            m->on_message(e->client_id, (const char *)b, b_len);
        }
        break;
    case GWP_EV_CLOSE:
        if (m->on_close)
            m->on_close(e->client_id);
        pending_free(smap_del(&w->pending, e->client_id, 20));
        break;
    }
    write_back_session(w);
    gw_api_event_end(&w->api);
    w->api.ev_active = 0;
    w->api.ev_client_id = NULL;
    json_decref(e->session);
    json_decref(e->session_orig);
    e->session = e->session_orig = NULL;
    e->active = 0;
}

static void run_event(gw_worker *w, const gwp_sender *from, const gwp_frame *f)
{
    wire_info info;
    if (wire_info_load(f->a, f->a_len, &info) < 0 || info.proto > 2) {
        w->stats.bad_frames++;
        LOG_RL(GW_LOG_WARN, "GW-BAD-EVENT", "%s without a valid client block ignored",
               gwp_cmd_name(f->cmd));
        return;
    }
    /* Replies go back over the link to the gateway that sent the event, which
     * exists even before the roster lists that gateway. */
    cluster_peer *gateway = cluster_peer_get(w->cl, from->ip, from->port, GWP_ROLE_GATEWAY);
    if (gateway == NULL)
        return;
    const uint8_t *sess = f->a + WIRE_INFO_LEN;
    size_t sess_len = f->a_len - WIRE_INFO_LEN;
    known_client *ghost = f->cmd == GWP_EV_CONNECT ? NULL : ghost_take(w, from, f->conn);
    if (ghost) {
        known_free(ghost);
        if (f->cmd == GWP_EV_CLOSE)
            return; /* on_close ran when its gateway left */
        LOG_INFO("GW-CLIENT-BACK", "client of gateway %s, closed when it left, is back: "
                                   "on_connect again",
                 gateway->addr);
        run_callback(w, gateway, from->ip, from->port, GWP_EV_CONNECT, f->conn, f->req, 0, &info,
                     sess, sess_len, NULL, 0);
    }
    if (f->cmd != GWP_EV_CLOSE)
        track(w, from->ip, from->port, f->conn, &info, sess, sess_len);
    run_callback(w, gateway, from->ip, from->port, f->cmd, f->conn, f->req, f->aux, &info, sess,
                 sess_len, f->b, f->b_len);
    if (f->cmd == GWP_EV_CLOSE)
        untrack(w, from->ip, from->port, f->conn);
}

/* The gateway left the cluster: its clients are gone with it. */
static void close_clients_of(gw_worker *w, cluster_peer *gateway)
{
    u32map *m = clients_take(w, gateway->ip, gateway->port);
    if (m == NULL)
        return;
    if (m->count)
        LOG_INFO("GW-GATEWAY-LOST", "gateway %s left the cluster: on_close for its %zu clients",
                 gateway->addr, m->count);
    size_t pos = 0;
    uint32_t conn;
    void *v;
    while (u32map_next(m, &pos, &conn, &v)) {
        known_client *k = v;
        if (!w->stopping)
            run_callback(w, gateway, gateway->ip, gateway->port, GWP_EV_CLOSE, conn, 0, 0,
                         &k->info, (const uint8_t *)k->sess, k->sess_len, NULL, 0);
    }
    ghosts_keep(w, gateway->ip, gateway->port, gateway->nonce, m);
}

static void drain_answer(gw_worker *w, const gwp_sender *from, int phase);

static void on_frame(cluster *cl, const gwp_sender *from, const gwp_frame *f, void *arg)
{
    gw_worker *w = arg;
    (void)cl;
    if (f->cmd == GWP_IDX && from->role == GWP_ROLE_GATEWAY && f->a_len >= 1 &&
        f->a[0] == WIRE_IDX_RESET)
        clients_free(clients_take(w, from->ip, from->port)); /* see "clients seen" */
    if (gw_api_on_frame(&w->api, from, f))
        return;
    switch (f->cmd) {
    case GWP_EV_CONNECT:
    case GWP_EV_MESSAGE:
    case GWP_EV_CLOSE:
    case GWP_EV_WS_CONNECT:
        if (from->role != GWP_ROLE_GATEWAY)
            break;
        if (!w->stopping)
            run_event(w, from, f);
        return;
    case GWP_PONG:
        drain_answer(w, from, 2);
        return;
    case GWP_DRAIN:
        if (from->role == GWP_ROLE_GATEWAY && f->aux == GWP_DRAIN_ACK) {
            /* Every event this gateway sent before the ACK has been handled (the
             * link is ordered) and the commands they caused are queued ahead of
             * this answer: it may give their clients to other workers now. */
            cluster_peer *p = cluster_peer_find(w->cl, from->ip, from->port);
            if (p) {
                gwp_frame rel = {.cmd = GWP_DRAIN, .aux = GWP_DRAIN_RELEASE};
                cluster_send(w->cl, p, &rel);
            }
            drain_answer(w, from, 1);
        }
        return;
    default:
        break;
    }
    w->stats.bad_frames++;
    LOG_RL(GW_LOG_WARN, "GW-BAD-CMD", "unexpected %s frame from a %s ignored",
           gwp_cmd_name(f->cmd), roster_role_name(from->role) ? roster_role_name(from->role) : "?");
}

static void on_peer_up(cluster *cl, cluster_peer *p, void *arg)
{
    gw_worker *w = arg;
    (void)cl;
    ghosts_sweep(w, p->ip, p->port, p->nonce);
    w->stats.gateways++;
}

static void on_peer_down(cluster *cl, cluster_peer *p, void *arg)
{
    gw_worker *w = arg;
    (void)cl;
    close_clients_of(w, p);
    gw_api_on_peer_down(&w->api, p);
    if (w->stats.gateways)
        w->stats.gateways--;
}

int gw_worker_start(gw_worker **out, uv_loop_t *loop, const gw_config *cfg, int index)
{
    *out = NULL;
    if (gw_worker_self)
        return -EBUSY;
    gw_worker *w = gw_calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->loop = loop;
    w->cfg = cfg;
    w->index = index;
    smap_init(&w->pending);
    int rc = module_load(&w->mod, cfg->businessworker.module);
    if (rc < 0)
        goto fail;
    cluster_cfg cc;
    if ((rc = gw_proc_cluster_cfg(cfg, GWP_ROLE_WORKER, index, &cc)) < 0)
        goto fail;
    cluster_cbs cbs = {.on_frame = on_frame, .on_peer_up = on_peer_up, .on_peer_down = on_peer_down};
    rc = cluster_start(&w->cl, loop, &cc, &cbs, w);
    if (rc < 0) {
        LOG_ERROR("GW-BIND", "worker inbox %s:%u: %s", cfg->cluster.lan_ip, cc.inbox_port,
                  strerror(-rc));
        goto fail;
    }
    gw_worker_self = w;
    gw_api_init(&w->api, loop, w->cl, cfg, 1);
    w->api.session_hook = session_hook;
    w->api.before_query = before_query;
    LOG_INFO("GW-START", "business worker %d (%s) started: inbox %s:%u", index,
             cfg->businessworker.name, cfg->cluster.lan_ip, cc.inbox_port);
    if (w->mod.on_worker_start)
        w->mod.on_worker_start();
    w->started = 1;
    *out = w;
    return 0;
fail:
    smap_deinit(&w->pending);
    gw_free(w);
    return rc;
}

static void finish(gw_worker *w)
{
    if (w->pending_closes > 0)
        return;
    void (*done)(void *) = w->done;
    void *arg = w->done_arg;
    size_t pos = 0;
    const smap_entry *e;
    while (smap_next(&w->pending, &pos, &e))
        pending_free(e->value);
    smap_deinit(&w->pending);
    pos = 0;
    while (smap_next(&w->clients, &pos, &e))
        clients_free(e->value);
    smap_deinit(&w->clients);
    pos = 0;
    while (smap_next(&w->ghosts, &pos, &e))
        ghost_free(e->value);
    smap_deinit(&w->ghosts);
    gw_worker_self = NULL;
    gw_free(w);
    if (done)
        done(arg);
}

void worker_release(gw_worker *w)
{
    w->pending_closes--;
    finish(w);
}

static void cluster_stopped(void *arg)
{
    worker_release(arg);
}

static void drain_timer_closed(uv_handle_t *h)
{
    worker_release(h->data);
}

/* The drain is over (or gave up): stop for real. */
static void stop_now(gw_worker *w)
{
    if (w->stopping)
        return;
    if (w->draining) {
        uv_timer_stop(&w->drain_timer);
        w->drain_timer.data = w;
        w->pending_closes++;
        uv_close((uv_handle_t *)&w->drain_timer, drain_timer_closed);
        gw_free(w->drain_wait);
        w->drain_wait = NULL;
        w->ndrain_wait = 0;
    }
    if (w->mod.on_worker_stop)
        w->mod.on_worker_stop();
    w->stopping = 1;
    api_timers_close_all(w);
    gw_api_deinit(&w->api);
    w->pending_closes++;
    cluster_stop(w->cl, cluster_stopped, w);
}

static void note_gateway(cluster_peer *p, void *arg)
{
    gw_worker *w = arg;
    w->drain_wait[w->ndrain_wait++] = (uint64_t)p->ip << 16 | p->port;
    gwp_frame f = {.cmd = w->drain_phase == 1 ? GWP_DRAIN : GWP_PING, .aux = GWP_DRAIN_REQUEST};
    cluster_send(w->cl, p, &f);
}

static void count_gateway(cluster_peer *p, void *arg)
{
    (void)p;
    (*(size_t *)arg)++;
}

/* Sends DRAIN (phase 1) or PING (phase 2) to every gateway and waits for the
 * answers; moves on when there is nobody to wait for. */
static void drain_phase(gw_worker *w, int phase)
{
    w->drain_phase = phase;
    size_t n = 0;
    cluster_foreach_peer(w->cl, GWP_ROLE_GATEWAY, count_gateway, &n);
    gw_free(w->drain_wait);
    w->drain_wait = n ? gw_calloc(n, sizeof *w->drain_wait) : NULL;
    w->ndrain_wait = 0;
    if (w->drain_wait)
        cluster_foreach_peer(w->cl, GWP_ROLE_GATEWAY, note_gateway, w);
    if (w->ndrain_wait > 0)
        return;
    if (phase == 1) {
        LOG_INFO("GW-DRAIN", "no gateway routes to this worker any more");
        drain_phase(w, 2);
    } else {
        stop_now(w);
    }
}

/* A DRAIN acknowledgement or a PONG from gateway `from`. */
static void drain_answer(gw_worker *w, const gwp_sender *from, int phase)
{
    if (!w->draining || w->drain_phase != phase)
        return;
    uint64_t key = (uint64_t)from->ip << 16 | from->port;
    for (size_t i = 0; i < w->ndrain_wait; i++)
        if (w->drain_wait[i] == key) {
            w->drain_wait[i] = w->drain_wait[--w->ndrain_wait];
            break;
        }
    if (w->ndrain_wait > 0)
        return;
    if (phase == 1) {
        LOG_INFO("GW-DRAIN", "every gateway moved this worker's clients; confirming delivery");
        drain_phase(w, 2);
    } else {
        LOG_INFO("GW-DRAIN", "drained: every event handled, every command delivered");
        stop_now(w);
    }
}

/* Every 100 ms while draining: a gateway whose link is gone (it stopped first,
 * as the supervisor does) will not answer; stop waiting for it. */
static void drain_tick(uv_timer_t *t)
{
    gw_worker *w = container_of(t, gw_worker, drain_timer);
    if (uv_now(w->loop) >= w->drain_deadline) {
        LOG_WARN("GW-DRAIN", "drain did not finish in time (%zu gateways did not answer): "
                             "stopping",
                 w->ndrain_wait);
        stop_now(w);
        return;
    }
    for (size_t i = 0; i < w->ndrain_wait;) {
        uint64_t k = w->drain_wait[i];
        cluster_peer *p = cluster_peer_find(w->cl, (uint32_t)(k >> 16), (uint16_t)k);
        if (p == NULL || !mq_peer_connected(&p->mq)) {
            gwp_sender gone = {.role = GWP_ROLE_GATEWAY, .ip = (uint32_t)(k >> 16),
                               .port = (uint16_t)k};
            drain_answer(w, &gone, w->drain_phase);
            if (!w->draining || w->stopping)
                return;
            continue; /* drain_answer moved the last entry here */
        }
        i++;
    }
}

void gw_worker_stop(gw_worker *w, void (*done)(void *), void *arg)
{
    if (w->stopping)
        return;
    if (w->draining) {
        stop_now(w); /* asked twice: do not wait any longer */
        return;
    }
    w->draining = 1;
    w->done = done;
    w->done_arg = arg;
    w->drain_deadline = uv_now(w->loop) + gw_proc_grace_ms(w->cfg);
    uv_timer_init(w->loop, &w->drain_timer);
    uv_timer_start(&w->drain_timer, drain_tick, 100, 100);
    LOG_INFO("GW-DRAIN", "stopping: asking the gateways to move this worker's clients");
    drain_phase(w, 1);
}

static void add_backlog(cluster_peer *p, void *arg)
{
    *(uint64_t *)arg += cluster_peer_backlog(p);
}

const gw_worker_stats *gw_worker_get_stats(gw_worker *w)
{
    uint64_t q = 0;
    if (!w->stopping)
        cluster_foreach_peer(w->cl, 0, add_backlog, &q);
    w->stats.queue_bytes = q;
    w->stats.commands_out = w->api.stats.commands_out;
    w->stats.send_errors = w->api.stats.send_errors;
    w->stats.queries = w->api.stats.queries;
    w->stats.queries_incomplete = w->api.stats.queries_incomplete;
    w->stats.query_us_total = w->api.stats.query_us_total;
    w->stats.query_us_max = w->api.stats.query_us_max;
    if (!w->stopping) {
        const cluster_stats *cs = cluster_get_stats(w->cl);
        w->stats.internal_dropped_auth = cs->dropped_auth;
        w->stats.internal_dropped_malformed = cs->dropped_malformed;
        w->stats.internal_dropped_peer_gone = cs->dropped_peer_gone;
    }
    return &w->stats;
}
