/* gateway.c - the gateway process: listeners, the connection table, routing of
 * client events to business workers, and the workers' commands.
 *
 * Routing (ARCHITECTURE.md): a client is bound to one worker at its first event
 * (the live worker this gateway bound the fewest clients to, or a random one);
 * all its events go there in order, over the one PUSH socket to that worker. When
 * the worker leaves the roster, the frames not yet handed to nanomsg are taken
 * back and re-sent to the clients' new workers, in order, and every client bound
 * to it is re-bound at its next event. While no worker is alive, events wait in a
 * bounded hold queue for worker_wait_timeout, then their clients are closed.
 */
#include "common/alloc.h"
#include "common/clientid.h"
#include "common/log.h"
#include "common/mq.h"
#include "common/proc.h"
#include "common/proto.h"
#include "common/session.h"
#include "gateway/gateway_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define WHEEL_TICK_MS 50
#define WHEEL_SLOTS 4096
#define RBUF_SIZE (64 * 1024)
#define HOLD_MAX_EVENTS 100000
#define LISTEN_BACKLOG 4096

/* ---- connection table ---- */

static uint32_t slot_of(uint32_t id, uint32_t cap)
{
    return (id * 2654435761u) & (cap - 1);
}

gw_conn *gw_conn_find(gw_gateway *gw, uint32_t id)
{
    if (gw->table_cap == 0)
        return NULL;
    uint32_t mask = gw->table_cap - 1;
    for (uint32_t i = slot_of(id, gw->table_cap);; i = (i + 1) & mask) {
        gw_conn *c = gw->table[i];
        if (c == NULL)
            return NULL;
        if (c != TOMB && c->id == id)
            return c;
    }
}

static int table_grow(gw_gateway *gw, uint32_t cap)
{
    gw_conn **t = gw_calloc(cap, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < gw->table_cap; i++) {
        gw_conn *c = gw->table[i];
        if (c == NULL || c == TOMB)
            continue;
        uint32_t j = slot_of(c->id, cap);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = c;
    }
    gw_free(gw->table);
    gw->table = t;
    gw->table_cap = cap;
    gw->table_tombs = 0;
    return 0;
}

int gw_conn_insert(gw_gateway *gw, gw_conn *c)
{
    if ((gw->nconns + gw->table_tombs + 1) * 10 > gw->table_cap * 7) {
        uint32_t cap = gw->table_cap ? gw->table_cap : 1024;
        while ((gw->nconns + 1) * 10 > cap * 5)
            cap *= 2;
        if (table_grow(gw, cap) < 0)
            return -ENOMEM;
    }
    /* Connection numbers never repeat within a process (and, via the boot
     * counter, across restarts); skip any still in use after a 2^32 wrap. */
    do
        c->id = clientid_counter_next(&gw->next_id);
    while (gw_conn_find(gw, c->id));
    uint32_t mask = gw->table_cap - 1;
    uint32_t i = slot_of(c->id, gw->table_cap);
    while (gw->table[i] != NULL && gw->table[i] != TOMB)
        i = (i + 1) & mask;
    if (gw->table[i] == TOMB)
        gw->table_tombs--;
    gw->table[i] = c;
    gw->nconns++;
    gw->stats.connections = gw->nconns;
    return 0;
}

void gw_conn_remove(gw_gateway *gw, gw_conn *c)
{
    if (gw->table_cap == 0)
        return;
    uint32_t mask = gw->table_cap - 1;
    for (uint32_t i = slot_of(c->id, gw->table_cap);; i = (i + 1) & mask) {
        gw_conn *x = gw->table[i];
        if (x == NULL)
            return;
        if (x == c) {
            gw->table[i] = TOMB;
            gw->table_tombs++;
            gw->nconns--;
            gw->stats.connections = gw->nconns;
            return;
        }
    }
}

/* ---- flushing and deadlines ---- */

void gw_mark_dirty(gw_gateway *gw, gw_conn *c)
{
    if (c->dirty_idx)
        return;
    if (gw->ndirty == gw->dirty_cap) {
        uint32_t cap = gw->dirty_cap ? gw->dirty_cap * 2 : 256;
        gw_conn **d = gw_realloc(gw->dirty, cap * sizeof *d);
        if (d == NULL) {
            conn_flush(c); /* cannot defer: write now */
            return;
        }
        gw->dirty = d;
        gw->dirty_cap = cap;
    }
    gw->dirty[gw->ndirty++] = c;
    c->dirty_idx = gw->ndirty;
}

void gw_unmark_dirty(gw_gateway *gw, gw_conn *c)
{
    if (c->dirty_idx) {
        gw->dirty[c->dirty_idx - 1] = NULL;
        c->dirty_idx = 0;
    }
}

static void flush_cb(uv_prepare_t *h)
{
    gw_gateway *gw = container_of(h, gw_gateway, flush);
    /* conn_flush may mark other connections dirty (never this list's own
     * entries twice), so walk by index. */
    for (uint32_t i = 0; i < gw->ndirty; i++) {
        gw_conn *c = gw->dirty[i];
        if (c == NULL)
            continue;
        c->dirty_idx = 0;
        gw->dirty[i] = NULL;
        conn_flush(c);
    }
    gw->ndirty = 0;
    if (gw->dirty_cap > 4096) {
        gw_free(gw->dirty);
        gw->dirty = NULL;
        gw->dirty_cap = 0;
    }
}

static void wheel_fire(wheel_node *n, void *arg)
{
    (void)arg;
    conn_on_deadline(container_of(n, gw_conn, hb));
}

static void release_held_if_expired(gw_gateway *gw);

static void wheel_timer_cb(uv_timer_t *t)
{
    gw_gateway *gw = container_of(t, gw_gateway, wheel_timer);
    wheel_advance(&gw->wheel, uv_now(gw->loop), wheel_fire, gw);
    release_held_if_expired(gw);
    if (wheel_count(&gw->wheel) == 0 && gw->held_head == NULL) {
        uv_timer_stop(&gw->wheel_timer);
        gw->wheel_timer_on = 0;
    }
}

static void ensure_timer(gw_gateway *gw)
{
    if (!gw->wheel_timer_on && !gw->stopping) {
        uv_timer_start(&gw->wheel_timer, wheel_timer_cb, WHEEL_TICK_MS, WHEEL_TICK_MS);
        gw->wheel_timer_on = 1;
    }
}

void gw_schedule(gw_gateway *gw, gw_conn *c, uint64_t deadline_ms)
{
    wheel_remove(&gw->wheel, &c->hb);
    wheel_add(&gw->wheel, &c->hb, deadline_ms);
    ensure_timer(gw);
}

/* ---- workers ---- */

static worker_slot *slot_of_peer(gw_gateway *gw, cluster_peer *p)
{
    uintptr_t idx = (uintptr_t)p->user;
    return idx ? &gw->workers[idx - 1] : NULL;
}

static int routable(const worker_slot *w)
{
    return w->peer != NULL && !w->draining;
}

static worker_slot *pick_worker(gw_gateway *gw)
{
    if (gw->nworkers_routable == 0)
        return NULL;
    uint32_t n = gw->nworkers_cap;
    uint32_t start = (uint32_t)random() % n;
    worker_slot *best = NULL;
    if (gw->cfg->gateway.router == GW_ROUTER_RANDOM) {
        uint32_t k = (uint32_t)random() % gw->nworkers_routable;
        for (uint32_t i = 0; i < n; i++) {
            worker_slot *w = &gw->workers[(start + i) % n];
            if (routable(w) && k-- == 0)
                return w;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        worker_slot *w = &gw->workers[(start + i) % n];
        if (routable(w) && (best == NULL || w->bound < best->bound))
            best = w;
    }
    return best;
}

static void unbind_worker(gw_gateway *gw, gw_conn *c);

static worker_slot *bind_worker(gw_gateway *gw, gw_conn *c)
{
    if (c->worker) {
        worker_slot *w = &gw->workers[c->worker - 1];
        if (w->peer != NULL && w->gen == c->worker_gen) {
            if (!w->draining)
                return w;
            if (w->handoff)
                return NULL; /* held: its worker has not handled the earlier ones yet */
        }
        unbind_worker(gw, c);
    }
    worker_slot *w = pick_worker(gw);
    if (w == NULL)
        return NULL;
    c->worker = (uint16_t)(w - gw->workers + 1);
    c->worker_gen = w->gen;
    c->sess_seq = 0;
    w->bound++;
    return w;
}

static void unbind_worker(gw_gateway *gw, gw_conn *c)
{
    if (c->worker) {
        worker_slot *w = &gw->workers[c->worker - 1];
        if (w->peer && w->gen == c->worker_gen && w->bound)
            w->bound--;
        c->worker = 0;
    }
}

/* ---- hold queue (no worker alive) ---- */

static void hold(gw_gateway *gw, uint8_t cmd, uint16_t aux, uint32_t conn, const uint8_t *a,
                 size_t a_len, const uint8_t *b, size_t b_len)
{
    if (gw->held_count >= HOLD_MAX_EVENTS ||
        gw->held_bytes + a_len + b_len > gw->cfg->gateway.worker_queue_limit) {
        gw->stats.events_dropped++;
        LOG_RL(GW_LOG_WARN, "GW-HOLD-FULL", "the hold queue is full (no business worker "
                                            "alive, or clients moving): %s for client %u dropped",
               gwp_cmd_name(cmd), conn);
        gw_conn *c = gw_conn_find(gw, conn);
        if (c)
            conn_destroy(c, "event lost: the hold queue was full");
        return;
    }
    held_event *h = gw_malloc(sizeof *h + a_len + b_len);
    if (h == NULL) {
        gw->stats.events_dropped++;
        return;
    }
    h->next = NULL;
    h->at_ms = uv_now(gw->loop);
    h->conn = conn;
    h->cmd = cmd;
    h->aux = aux;
    h->a_len = (uint32_t)a_len;
    h->b_len = (uint32_t)b_len;
    if (a_len)
        memcpy(h->data, a, a_len);
    if (b_len)
        memcpy(h->data + a_len, b, b_len);
    if (gw->held_tail)
        gw->held_tail->next = h;
    else
        gw->held_head = h;
    gw->held_tail = h;
    gw->held_bytes += a_len + b_len;
    gw->held_count++;
    gw->stats.events_held++;
    if (gw->held_count == 1 && gw->nworkers_routable == 0)
        LOG_WARN("GW-NO-WORKER", "no business worker alive: holding client events for up to %.1f s",
                 gw->cfg->gateway.worker_wait_timeout);
    ensure_timer(gw);
}

static void send_frame_to(gw_gateway *gw, worker_slot *w, const gwp_frame *f)
{
    int rc = cluster_send(gw->cl, w->peer, f);
    if (rc < 0) {
        gw->stats.events_dropped++;
        LOG_RL(GW_LOG_WARN, "GW-EVENT-DROP", "%s for client %u to worker %s dropped: %s",
               gwp_cmd_name(f->cmd), f->conn, w->peer->addr, gwp_strerror(rc));
    } else {
        gw->stats.events_out++;
    }
}

/* Sends a frame for client f->conn to its (possibly new) worker, or holds it. */
static void route_frame(const gwp_frame *f, void *arg)
{
    gw_gateway *gw = arg;
    gw_conn *c = gw_conn_find(gw, f->conn);
    worker_slot *w = c ? bind_worker(gw, c) : pick_worker(gw);
    if (w == NULL) {
        hold(gw, f->cmd, f->aux, f->conn, f->a, f->a_len, f->b, f->b_len);
        return;
    }
    gwp_frame g = *f;
    if (c)
        g.req = c->sess_seq;
    send_frame_to(gw, w, &g);
}

static void replay_held(gw_gateway *gw)
{
    held_event *h = gw->held_head;
    gw->held_head = gw->held_tail = NULL;
    gw->held_bytes = 0;
    gw->held_count = 0;
    while (h) {
        held_event *next = h->next;
        gwp_frame f = {.cmd = h->cmd,
                       .aux = h->aux,
                       .conn = h->conn,
                       .a = h->data,
                       .a_len = h->a_len,
                       .b = h->data + h->a_len,
                       .b_len = h->b_len};
        route_frame(&f, gw);
        gw_free(h);
        h = next;
    }
}

/* Held events go out once a worker can take them and no draining worker still
 * has earlier events of its clients (a handoff). */
static void replay_held_if_ready(gw_gateway *gw)
{
    if (gw->held_head && gw->nworkers_routable > 0 && gw->nhandoff == 0) {
        LOG_INFO("GW-WORKER-BACK", "%u workers available: delivering %u held events",
                 gw->nworkers_routable, gw->held_count);
        replay_held(gw);
    }
}

static void release_held_if_expired(gw_gateway *gw)
{
    if (gw->held_head == NULL)
        return;
    uint64_t limit = (uint64_t)(gw->cfg->gateway.worker_wait_timeout * 1000);
    if (uv_now(gw->loop) - gw->held_head->at_ms < limit)
        return;
    LOG_WARN("GW-NO-WORKER", "no business worker for %.1f s: closing %u waiting client events",
             gw->cfg->gateway.worker_wait_timeout, gw->held_count);
    held_event *h = gw->held_head;
    gw->held_head = gw->held_tail = NULL;
    gw->held_bytes = 0;
    gw->held_count = 0;
    while (h) {
        held_event *next = h->next;
        gw->stats.events_dropped++;
        gw_conn *c = gw_conn_find(gw, h->conn);
        if (c)
            conn_destroy(c, "no business worker available");
        gw_free(h);
        h = next;
    }
    /* Those closes were held too (no worker): drop them with the rest. */
    h = gw->held_head;
    gw->held_head = gw->held_tail = NULL;
    gw->held_bytes = 0;
    gw->held_count = 0;
    while (h) {
        held_event *next = h->next;
        gw_free(h);
        h = next;
    }
}

/* ---- events to workers ---- */

void gw_forward_event(gw_gateway *gw, gw_conn *c, uint8_t cmd, uint16_t aux, const uint8_t *b,
                      size_t b_len)
{
    worker_slot *w = bind_worker(gw, c);
    size_t a_len = WIRE_INFO_LEN + c->session_len;
    if (w == NULL) {
        uint8_t *a = gw_malloc(a_len);
        if (a == NULL) {
            gw->stats.events_dropped++;
            return;
        }
        wire_info_store(a, &c->info);
        if (c->session_len)
            memcpy(a + WIRE_INFO_LEN, c->session, c->session_len);
        hold(gw, cmd, aux, c->id, a, a_len, b, b_len);
        gw_free(a);
        c->flags |= CF_HELD;
        return;
    }
    gwp_frame f = {.cmd = cmd,
                   .aux = aux,
                   .conn = c->id,
                   .req = c->sess_seq,
                   .a_len = a_len,
                   .b_len = b_len};
    uint8_t *pa, *pb;
    int rc = cluster_send_inplace(gw->cl, w->peer, &f, &pa, &pb);
    if (rc < 0) {
        gw->stats.events_dropped++;
        LOG_RL(GW_LOG_WARN, "GW-EVENT-DROP", "%s for client %u dropped: %s", gwp_cmd_name(cmd),
               c->id, gwp_strerror(rc));
        return;
    }
    wire_info_store(pa, &c->info);
    if (c->session_len)
        memcpy(pa + WIRE_INFO_LEN, c->session, c->session_len);
    if (b_len)
        memcpy(pb, b, b_len);
    gw->stats.events_out++;
}

void gw_check_backpressure(gw_gateway *gw, gw_conn *c)
{
    if (c->worker == 0 || c->state != CONN_OPEN)
        return;
    worker_slot *w = &gw->workers[c->worker - 1];
    if (w->peer == NULL)
        return;
    if (!w->congested) {
        if (cluster_peer_backlog(w->peer) <= gw->cfg->gateway.worker_queue_limit)
            return;
        w->congested = 1;
        LOG_RL(GW_LOG_WARN, "GW-BACKPRESSURE",
               "worker %s is %zu bytes behind: pausing reads from its clients", w->peer->addr,
               cluster_peer_backlog(w->peer));
    }
    if (w->npaused == w->cap_paused) {
        uint32_t cap = w->cap_paused ? w->cap_paused * 2 : 64;
        uint32_t *p = gw_realloc(w->paused, cap * sizeof *p);
        if (p == NULL)
            return;
        w->paused = p;
        w->cap_paused = cap;
    }
    w->paused[w->npaused++] = c->id;
    c->flags |= CF_READ_PAUSED;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void resume_paused(gw_gateway *gw, worker_slot *w)
{
    uint32_t *ids = w->paused;
    uint32_t n = w->npaused;
    w->paused = NULL;
    w->npaused = w->cap_paused = 0;
    w->congested = 0;
    for (uint32_t i = 0; i < n; i++) {
        gw_conn *c = gw_conn_find(gw, ids[i]);
        if (c)
            conn_resume(c);
    }
    gw_free(ids);
}

void gw_conn_detach(gw_gateway *gw, gw_conn *c)
{
    gw_conn_remove(gw, c);
    members_detach(gw, c);
    if (c->flags & CF_EVENTS) {
        c->flags &= ~CF_EVENTS;
        gw_forward_event(gw, c, GWP_EV_CLOSE, 0, NULL, 0);
    }
    unbind_worker(gw, c);
}

/* ---- cluster callbacks ---- */

static void on_peer_up(cluster *cl, cluster_peer *p, void *arg)
{
    gw_gateway *gw = arg;
    (void)cl;
    if (p->role != GWP_ROLE_WORKER)
        return;
    uint32_t i;
    for (i = 0; i < gw->nworkers_cap; i++)
        if (gw->workers[i].peer == NULL)
            break;
    if (i == gw->nworkers_cap) {
        uint32_t cap = gw->nworkers_cap ? gw->nworkers_cap * 2 : 8;
        if (cap > 65535)
            return;
        worker_slot *ws = gw_realloc(gw->workers, cap * sizeof *ws);
        if (ws == NULL)
            return;
        memset(ws + gw->nworkers_cap, 0, (cap - gw->nworkers_cap) * sizeof *ws);
        gw->workers = ws;
        gw->nworkers_cap = cap;
    }
    worker_slot *w = &gw->workers[i];
    w->peer = p;
    w->gen++;
    w->bound = 0;
    w->congested = 0;
    w->draining = 0;
    w->handoff = 0;
    p->user = (void *)(uintptr_t)(i + 1);
    gw->nworkers_alive++;
    gw->nworkers_routable++;
    gw->stats.workers = gw->nworkers_alive;
    members_snapshot(gw, p);
}

/* After a roster was applied: events held while no worker was alive go out now,
 * spread over every worker the roster brought (not all to the first one). */
static void on_roster(cluster *cl, void *arg)
{
    gw_gateway *gw = arg;
    (void)cl;
    replay_held_if_ready(gw);
}

static void on_peer_down(cluster *cl, cluster_peer *p, void *arg)
{
    gw_gateway *gw = arg;
    worker_slot *w = slot_of_peer(gw, p);
    if (w == NULL)
        return;
    /* Take the slot out of service first so re-routing picks other workers. */
    if (!w->draining)
        gw->nworkers_routable--;
    if (w->handoff) {
        w->handoff = 0;
        gw->nhandoff--;
    }
    w->peer = NULL;
    w->gen++;
    w->bound = 0;
    w->draining = 0;
    gw->nworkers_alive--;
    gw->stats.workers = gw->nworkers_alive;
    p->user = NULL;
    cluster_peer_drain_frames(cl, p, route_frame, gw);
    resume_paused(gw, w);
    /* Gone before it released its clients: what was held for them follows the
     * frames it never got. */
    replay_held_if_ready(gw);
}

void gw_worker_drain(gw_gateway *gw, cluster_peer *p)
{
    worker_slot *w = slot_of_peer(gw, p);
    if (w && !w->draining) {
        w->draining = 1;
        w->handoff = 1;
        gw->nworkers_routable--;
        gw->nhandoff++;
        LOG_INFO("GW-WORKER-DRAIN", "worker %s is draining: its %u clients move to other workers "
                                    "once it has handled their earlier events",
                 p->addr, w->bound);
    }
    /* Acknowledge after everything already queued for it (same ordered link). */
    gwp_frame ack = {.cmd = GWP_DRAIN, .aux = GWP_DRAIN_ACK};
    cluster_send(gw->cl, p, &ack);
}

void gw_worker_released(gw_gateway *gw, cluster_peer *p)
{
    worker_slot *w = slot_of_peer(gw, p);
    if (w == NULL || !w->handoff)
        return;
    w->handoff = 0;
    gw->nhandoff--;
    LOG_INFO("GW-WORKER-DRAIN", "worker %s handled its clients' earlier events: %u held "
                                "events go to other workers",
             p->addr, gw->held_count);
    replay_held_if_ready(gw);
}

static void on_peer_drain(cluster *cl, cluster_peer *p, void *arg)
{
    gw_gateway *gw = arg;
    (void)cl;
    worker_slot *w = slot_of_peer(gw, p);
    if (w && w->congested)
        resume_paused(gw, w);
}

static uint32_t load_cb(cluster *cl, void *arg)
{
    (void)cl;
    return ((gw_gateway *)arg)->nconns;
}

/* ---- listeners ---- */

static void on_connection(uv_stream_t *server, int status)
{
    listener *l = container_of((uv_tcp_t *)server, listener, tcp);
    if (status < 0) {
        LOG_RL(GW_LOG_WARN, "GW-ACCEPT", "listener %s:%u: %s", l->cfg.host, l->cfg.port,
               uv_strerror(status));
        return;
    }
    if (l->gw->stopping)
        return;
    conn_accept(l->gw, l);
}

static int open_listener(gw_gateway *gw, listener *l)
{
    struct sockaddr_storage ss;
    int rc = l->cfg.family == AF_INET6
                 ? uv_ip6_addr(l->cfg.host, l->cfg.port, (struct sockaddr_in6 *)&ss)
                 : uv_ip4_addr(l->cfg.host, l->cfg.port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (gw->cfg->gateway.reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    socklen_t sl = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if ((rc = uv_tcp_init(gw->loop, &l->tcp)) < 0) {
        close(fd);
        return rc;
    }
    l->gw = gw;
    if ((rc = uv_tcp_open(&l->tcp, fd)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection)) < 0) {
        uv_close((uv_handle_t *)&l->tcp, NULL);
        return rc;
    }
    return 0;
}

/* ---- start / stop ---- */

static gw_sbuf *ping_block(int proto, const char *data, int control)
{
    if (control) {
        uint8_t f[2] = {0x80 | WS_OP_PING, 0};
        gw_sbuf *sb = gw_sbuf_new(2);
        if (sb)
            memcpy(sb->data, f, 2);
        return sb;
    }
    if (data[0] == '\0')
        return NULL;
    return conn_frame_shared(proto, (const uint8_t *)data, strlen(data), 0);
}

int gw_gateway_start(gw_gateway **out, uv_loop_t *loop, const gw_config *cfg, int index)
{
    *out = NULL;
    int rc = -ENOMEM;
    gw_gateway *gw = gw_calloc(1, sizeof *gw);
    if (gw == NULL)
        return -ENOMEM;
    gw->loop = loop;
    gw->cfg = cfg;
    gw->index = index;
    gw->next_id = clientid_boot_counter();
    /* pick_worker breaks ties (and `router: random` chooses) with random():
     * unseeded, every gateway process would make the same choices in the same
     * order and pile its first clients on the same workers. */
    unsigned seed;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
        seed = (unsigned)getpid() ^ (unsigned)uv_hrtime();
    srandom(seed);
    const gw_gateway_config *g = &cfg->gateway;
    gw->ping_interval_ms = (uint64_t)(g->ping_interval * 1000);
    gw->close_after_ms = g->ping_not_response_limit > 0
                             ? (uint64_t)(g->ping_interval * 1000 * g->ping_not_response_limit)
                             : 0;
    gw->handshake_ms = (uint64_t)(g->handshake_timeout * 1000);
    gw->rbuf_size = RBUF_SIZE;
    gw->rbuf = gw_malloc(gw->rbuf_size);
    if (gw->rbuf == NULL)
        goto fail_gw;
    if (gw->ping_interval_ms) {
        gw->ping_ws = ping_block(GW_PROTO_WEBSOCKET, g->ping_data, 0);
        gw->ping_text = ping_block(GW_PROTO_TEXT, g->ping_data, 0);
        gw->ping_frame = ping_block(GW_PROTO_FRAME, g->ping_data, 0);
        if (g->ws_ping)
            gw->ping_wsctl = ping_block(GW_PROTO_WEBSOCKET, "", 1);
    }
    if ((rc = wheel_init(&gw->wheel, WHEEL_TICK_MS, WHEEL_SLOTS, uv_now(loop))) < 0)
        goto fail_bufs;

    cluster_cfg cc;
    if ((rc = gw_proc_cluster_cfg(cfg, GWP_ROLE_GATEWAY, index, &cc)) < 0)
        goto fail_wheel;
    gw->lan_ip = cc.lan_ip;
    gw->inbox_port = cc.inbox_port;
    cluster_cbs cbs = {.on_frame = gw_on_frame,
                       .on_peer_up = on_peer_up,
                       .on_peer_down = on_peer_down,
                       .on_peer_drain = on_peer_drain,
                       .on_roster = on_roster,
                       .load = load_cb};
    rc = cluster_start(&gw->cl, loop, &cc, &cbs, gw);
    if (rc < 0) {
        LOG_ERROR("GW-BIND", "gateway inbox %s:%u: %s", cfg->cluster.lan_ip, cc.inbox_port,
                  strerror(-rc));
        goto fail_wheel;
    }

    gw->listeners = gw_calloc(g->listen.count ? (size_t)g->listen.count : 1, sizeof *gw->listeners);
    if (gw->listeners == NULL) {
        rc = -ENOMEM;
        goto fail_cluster;
    }
    for (int i = 0; i < g->listen.count; i++) {
        listener *l = &gw->listeners[i];
        l->cfg = g->listen.items[i];
        rc = open_listener(gw, l);
        char url[80];
        gw_listener_format(&l->cfg, url, sizeof url);
        if (rc < 0) {
            LOG_ERROR("GW-BIND", "cannot listen on %s: %s", url, uv_strerror(rc));
            goto fail_listeners;
        }
        gw->nlisteners++;
        LOG_INFO("GW-LISTEN", "listening on %s", url);
    }
    uv_prepare_init(loop, &gw->flush);
    uv_prepare_start(&gw->flush, flush_cb);
    uv_timer_init(loop, &gw->wheel_timer);
    LOG_INFO("GW-START", "gateway %d started: inbox %s:%u, heartbeat %s", index,
             cfg->cluster.lan_ip, gw->inbox_port,
             gw->ping_interval_ms ? (gw->close_after_ms ? "close after silence" : "ping only")
                                  : "off");
    *out = gw;
    return 0;

fail_listeners:
    /* Listener handles close asynchronously; the caller exits after a failed
     * start, so their memory is left to the process exit. */
    for (int i = 0; i < gw->nlisteners; i++)
        uv_close((uv_handle_t *)&gw->listeners[i].tcp, NULL);
    return rc;
fail_cluster:
    cluster_stop(gw->cl, NULL, NULL);
fail_wheel:
    wheel_deinit(&gw->wheel);
fail_bufs:
    gw_sbuf_unref(gw->ping_ws);
    gw_sbuf_unref(gw->ping_text);
    gw_sbuf_unref(gw->ping_frame);
    gw_sbuf_unref(gw->ping_wsctl);
    gw_free(gw->rbuf);
fail_gw:
    gw_free(gw);
    return rc;
}

static void finish_stop(gw_gateway *gw);

static void cluster_stopped(void *arg)
{
    gw_gateway *gw = arg;
    gw->cl = NULL;
    gw->pending--;
    finish_stop(gw);
}

static void handle_closed(uv_handle_t *h)
{
    gw_gateway *gw = h->data;
    gw->pending--;
    finish_stop(gw);
}

static void finish_stop(gw_gateway *gw)
{
    if (gw->pending > 0)
        return;
    void (*done)(void *) = gw->done;
    void *arg = gw->done_arg;
    held_event *h = gw->held_head;
    while (h) {
        held_event *n = h->next;
        gw_free(h);
        h = n;
    }
    for (uint32_t i = 0; i < gw->nworkers_cap; i++)
        gw_free(gw->workers[i].paused);
    gw_free(gw->workers);
    members_free_all(gw);
    gw_free(gw->table);
    gw_free(gw->dirty);
    gw_free(gw->listeners);
    wheel_deinit(&gw->wheel);
    gw_sbuf_unref(gw->ping_ws);
    gw_sbuf_unref(gw->ping_text);
    gw_sbuf_unref(gw->ping_frame);
    gw_sbuf_unref(gw->ping_wsctl);
    gw_free(gw->rbuf);
    gw_free(gw);
    gw_sbuf_cache_drain();
    if (done)
        done(arg);
}

static void destroy_fired(wheel_node *n, void *arg)
{
    (void)arg;
    conn_destroy(container_of(n, gw_conn, hb), "gateway stopping");
}

/* Second phase: every client is gone (or the timeout passed). */
static void stop_rest(gw_gateway *gw)
{
    for (uint32_t i = 0; i < gw->table_cap; i++) {
        gw_conn *c = gw->table[i];
        if (c && c != TOMB)
            conn_destroy(c, "gateway stopping");
    }
    /* Connections already closing are not in the table, but each waits in the
     * wheel for its close deadline: end them all now. */
    wheel_advance(&gw->wheel, UINT64_MAX / 2, destroy_fired, gw);
    /* Closing connections not in the table any more (CLOSING state). */
    flush_cb(&gw->flush);
    uv_handle_t *hs[] = {(uv_handle_t *)&gw->flush, (uv_handle_t *)&gw->wheel_timer};
    for (int i = 0; i < 2; i++) {
        hs[i]->data = gw;
        gw->pending++;
        uv_close(hs[i], handle_closed);
    }
    gw->pending++;
    cluster_stop(gw->cl, cluster_stopped, gw);
}

static void stop_timer_closed(uv_handle_t *h)
{
    gw_free(h);
}

static void stop_timer_cb(uv_timer_t *t)
{
    gw_gateway *gw = t->data;
    /* Clients that did not finish their close handshake in time. */
    for (uint32_t i = 0; i < gw->table_cap; i++) {
        gw_conn *c = gw->table[i];
        if (c && c != TOMB)
            conn_destroy(c, "stop timeout");
    }
    gw->stop_timer = NULL;
    uv_close((uv_handle_t *)t, stop_timer_closed);
    stop_rest(gw);
}

void gw_conn_freed(gw_gateway *gw)
{
    if (gw->stopping && gw->live_conns == 0 && gw->stop_timer) {
        uv_timer_t *t = gw->stop_timer;
        gw->stop_timer = NULL;
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, stop_timer_closed);
        stop_rest(gw);
    }
}

void gw_gateway_stop(gw_gateway *gw, uint64_t timeout_ms, void (*done)(void *), void *arg)
{
    if (gw->stopping)
        return;
    gw->stopping = 1;
    gw->done = done;
    gw->done_arg = arg;
    for (int i = 0; i < gw->nlisteners; i++) {
        gw->listeners[i].tcp.data = gw;
        gw->pending++;
        uv_close((uv_handle_t *)&gw->listeners[i].tcp, handle_closed);
    }
    /* Close every client with a close frame; events (on_close) still flow to the
     * workers while the cluster is up. */
    for (uint32_t i = 0; i < gw->table_cap; i++) {
        gw_conn *c = gw->table[i];
        if (c && c != TOMB)
            conn_close(c, WS_CLOSE_GOING_AWAY, NULL, 0, 0);
    }
    cluster_flush(gw->cl);
    uv_timer_t *t = gw_malloc(sizeof *t);
    if (t == NULL) {
        stop_rest(gw);
        return;
    }
    uv_timer_init(gw->loop, t);
    t->data = gw;
    gw->stop_timer = t;
    if (gw->live_conns == 0) {
        gw_conn_freed(gw);
        return;
    }
    uv_timer_start(t, stop_timer_cb, timeout_ms, 0);
}

const gw_gateway_stats *gw_gateway_get_stats(gw_gateway *gw)
{
    uint64_t q = gw->held_bytes;
    for (uint32_t i = 0; i < gw->nworkers_cap; i++)
        if (gw->workers[i].peer)
            q += cluster_peer_backlog(gw->workers[i].peer);
    gw->stats.queue_bytes = q;
    if (gw->cl) {
        const cluster_stats *cs = cluster_get_stats(gw->cl);
        gw->stats.internal_dropped_auth = cs->dropped_auth;
        gw->stats.internal_dropped_malformed = cs->dropped_malformed;
        gw->stats.internal_dropped_peer_gone = cs->dropped_peer_gone;
    }
    return &gw->stats;
}
