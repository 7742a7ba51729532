#include "common/cluster.h"
#include "common/alloc.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define NBUCKETS 256
#define CHECK_MS 250
#define ONDEMAND_IDLE_MS 30000
#define WRITER_KEEP (256 * 1024)
/* Heartbeat frame aux bit: please answer with the roster to my inbox. */
#define HB_WANT_ROSTER 1u
/* A node missing from every fresh roster for this long beyond node_timeout is
 * dropped even if a register's removal notice was lost. */
#define ROSTER_GRACE_MS 1000

typedef struct cluster_reg {
    cluster_addr addr;
    int configured;
    int hb_open;
    uint64_t silent_since_ms; /* start of the current stretch without a roster */
    uint64_t warned_ms;
    uint64_t hb_opened_ms;
    mq_peer *hb; /* heap: replaced by a fresh link while the old one closes */
    uint64_t last_roster_ms; /* 0 = never */
    uint64_t version;
    uint64_t nonce; /* the register's boot nonce (versions restart with it) */
    uint64_t since_ms; /* first roster of this register after a gap or a restart */
    roster_entry *entries;
    size_t n;
} cluster_reg;

/* A frame put aside while a blocking wait ran (see cluster_recv_sync). */
typedef struct stashed {
    struct stashed *next;
    gwp_sender from;
    gwp_frame f;
    uint8_t data[]; /* a then b */
} stashed;

typedef struct merged_entry {
    roster_entry e;
    uint64_t last_heard_ms;
} merged_entry;

struct cluster {
    uv_loop_t *loop;
    cluster_cfg cfg;
    char *name;
    cluster_cbs cbs;
    void *arg;
    gwp_key key;
    int has_key;
    gwp_sender self;
    char self_addr[24];

    mq_inbox inbox;
    uv_prepare_t flush;
    uv_timer_t hb_timer;
    uv_timer_t check_timer;

    cluster_reg regs[2 * CLUSTER_MAX_REGISTERS];
    size_t nregs;

    cluster_peer *buckets[NBUCKETS];
    size_t npeers;
    cluster_peer *dirty;

    roster_entry *merged;
    size_t nmerged;
    uint64_t last_roster_ms;

    stashed *stash_head, *stash_tail;
    uv_idle_t stash_idle;
    int stash_idle_on;

    cluster_stats stats;
    int stopping;
    int pending;
    void (*done)(void *);
    void *done_arg;
};

static unsigned bucket_of(uint32_t ip, uint16_t port)
{
    uint32_t h = ip * 2654435761u ^ (uint32_t)port * 40503u;
    return (h >> 8) % NBUCKETS;
}

static void format_addr(char *out, size_t n, uint32_t ip, uint16_t port)
{
    char a[16];
    mq_format_ipv4(a, sizeof a, ip);
    snprintf(out, n, "%s:%u", a, (unsigned)port);
}

/* ---- closing and freeing ---- */

static void maybe_finish_stop(cluster *c);

static void peer_free(cluster_peer *p)
{
    gwp_writer_deinit(&p->w);
    gw_free(p);
}

static void peer_mq_closed(mq_peer *mq)
{
    cluster_peer *p = container_of(mq, cluster_peer, mq);
    cluster *c = p->c;
    peer_free(p);
    c->pending--;
    maybe_finish_stop(c);
}

static void hash_remove(cluster *c, cluster_peer *p)
{
    cluster_peer **pp = &c->buckets[bucket_of(p->ip, p->port)];
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = p->hnext;
        c->npeers--;
    }
    p->hnext = NULL;
}

static void dirty_remove(cluster *c, cluster_peer *p)
{
    if (!p->dirty)
        return;
    cluster_peer **pp = &c->dirty;
    while (*pp && *pp != p)
        pp = &(*pp)->dnext;
    if (*pp)
        *pp = p->dnext;
    p->dirty = 0;
    p->dnext = NULL;
}

/* Removes the peer from every list and closes its socket; freed in the close
 * callback. Frames not yet sent are dropped (counted by mq). */
static void peer_close(cluster *c, cluster_peer *p)
{
    hash_remove(c, p);
    dirty_remove(c, p);
    c->stats.dropped_peer_gone += p->mq.queued_msgs + (gwp_writer_count(&p->w) > 0);
    gwp_writer_reset(&p->w, 0);
    if (p->mq_open) {
        p->mq_open = 0;
        c->pending++;
        mq_peer_close(&p->mq, peer_mq_closed);
    } else {
        peer_free(p);
    }
}

/* ---- sending ---- */

static void flush_peer(cluster *c, cluster_peer *p)
{
    if (gwp_writer_count(&p->w) == 0) {
        gwp_writer_reset(&p->w, WRITER_KEEP);
        return;
    }
    int rc = gwp_writer_finish(&p->w, c->has_key ? &c->key : NULL);
    if (rc == 0) {
        size_t len;
        const uint8_t *bytes = gwp_writer_bytes(&p->w, &len);
        rc = mq_peer_send(&p->mq, bytes, len);
        if (rc == 0) {
            c->stats.batches_out++;
            c->stats.frames_out += gwp_writer_count(&p->w);
        }
    }
    if (rc < 0) {
        c->stats.send_errors++;
        LOG_RL(GW_LOG_WARN, "GW-SEND-FAIL", "batch of %u frames to %s dropped: %s",
               gwp_writer_count(&p->w), p->addr, gwp_strerror(rc));
    }
    gwp_writer_reset(&p->w, WRITER_KEEP);
}

void cluster_flush(cluster *c)
{
    while (c->dirty) {
        cluster_peer *p = c->dirty;
        c->dirty = p->dnext;
        p->dnext = NULL;
        p->dirty = 0;
        flush_peer(c, p);
    }
}

static void flush_cb(uv_prepare_t *h)
{
    cluster_flush(container_of(h, cluster, flush));
}

static int prepare_frame(cluster *c, cluster_peer *p, const gwp_frame *f)
{
    if (!p->mq_open)
        return -EPIPE;
    uint64_t need = gwp_frame_wire_len(f->a_len, f->b_len);
    if (need + GWP_HDR_LEN + GWP_TAG_LEN > c->cfg.max_msg)
        return -EMSGSIZE;
    uint32_t count = gwp_writer_count(&p->w);
    if (count > 0 && gwp_writer_size(&p->w) + need + GWP_TAG_LEN > c->cfg.max_batch) {
        dirty_remove(c, p);
        flush_peer(c, p);
        count = 0;
    }
    if (count == 0 && gwp_writer_size(&p->w) == 0) {
        int rc = gwp_writer_begin(&p->w, &c->self);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void mark_dirty(cluster *c, cluster_peer *p)
{
    p->last_used_ms = uv_now(c->loop);
    if (!p->dirty) {
        p->dirty = 1;
        p->dnext = c->dirty;
        c->dirty = p;
    }
}

int cluster_send(cluster *c, cluster_peer *p, const gwp_frame *f)
{
    int rc = prepare_frame(c, p, f);
    if (rc == 0)
        rc = gwp_writer_add(&p->w, f);
    if (rc == 0)
        mark_dirty(c, p);
    return rc;
}

int cluster_send_inplace(cluster *c, cluster_peer *p, const gwp_frame *f, uint8_t **a,
                         uint8_t **b)
{
    int rc = prepare_frame(c, p, f);
    if (rc == 0)
        rc = gwp_writer_add_inplace(&p->w, f, a, b);
    if (rc == 0)
        mark_dirty(c, p);
    return rc;
}

size_t cluster_peer_backlog(const cluster_peer *p)
{
    return gwp_writer_size(&p->w) + p->mq.queued_bytes;
}

static void drain_batch(const uint8_t *bytes, size_t len, void (*fn)(const gwp_frame *, void *),
                        void *arg)
{
    gwp_batch b;
    gwp_frame f;
    if (gwp_batch_open(bytes, len, NULL, &b) < 0)
        return;
    while (gwp_batch_next(&b, &f) == 1)
        fn(&f, arg);
}

void cluster_peer_drain_frames(cluster *c, cluster_peer *p,
                               void (*fn)(const gwp_frame *f, void *arg), void *arg)
{
    /* Queue first (older), then the open batch. */
    for (mq_msg *m = p->mq.head; m; m = m->next)
        drain_batch(m->data, m->len, fn, arg);
    if (gwp_writer_count(&p->w) > 0 && gwp_writer_finish(&p->w, NULL) == 0) {
        size_t len;
        const uint8_t *bytes = gwp_writer_bytes(&p->w, &len);
        drain_batch(bytes, len, fn, arg);
    }
    gwp_writer_reset(&p->w, WRITER_KEEP);
    dirty_remove(c, p);
    while (p->mq.head) {
        mq_msg *m = p->mq.head;
        p->mq.head = m->next;
        p->mq.queued_bytes -= m->len;
        p->mq.queued_msgs--;
        gw_free(m);
    }
    p->mq.tail = NULL;
}

/* ---- peers ---- */

cluster_peer *cluster_peer_find(cluster *c, uint32_t ip, uint16_t port)
{
    for (cluster_peer *p = c->buckets[bucket_of(ip, port)]; p; p = p->hnext)
        if (p->ip == ip && p->port == port)
            return p;
    return NULL;
}

static void peer_drained(mq_peer *mq, void *arg)
{
    cluster_peer *p = container_of(mq, cluster_peer, mq);
    cluster *c = arg;
    if (c->cbs.on_peer_drain && !c->stopping)
        c->cbs.on_peer_drain(c, p, c->arg);
}

static cluster_peer *peer_create(cluster *c, uint32_t ip, uint16_t port, uint8_t role)
{
    cluster_peer *p = gw_calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->c = c;
    p->ip = ip;
    p->port = port;
    p->role = role;
    format_addr(p->addr, sizeof p->addr, ip, port);
    char url[48];
    mq_tcp_url(url, sizeof url, ip, port);
    mq_peer_opts o = {.reconnect_ivl_ms = 100, .reconnect_ivl_max_ms = 1000};
    int rc = mq_peer_open(&p->mq, c->loop, url, &o, peer_drained, c);
    if (rc < 0) {
        LOG_ERROR("GW-PEER-OPEN", "cannot open a link to %s: %s", p->addr, strerror(-rc));
        gw_free(p);
        return NULL;
    }
    p->mq_open = 1;
    p->last_used_ms = uv_now(c->loop);
    unsigned b = bucket_of(ip, port);
    p->hnext = c->buckets[b];
    c->buckets[b] = p;
    c->npeers++;
    return p;
}

cluster_peer *cluster_peer_get(cluster *c, uint32_t ip, uint16_t port, uint8_t role)
{
    if (c->stopping)
        return NULL;
    cluster_peer *p = cluster_peer_find(c, ip, port);
    if (p == NULL)
        p = peer_create(c, ip, port, role);
    return p;
}

void cluster_foreach_peer(cluster *c, uint8_t role, void (*fn)(cluster_peer *p, void *arg),
                          void *arg)
{
    for (unsigned i = 0; i < NBUCKETS; i++)
        for (cluster_peer *p = c->buckets[i], *next; p; p = next) {
            next = p->hnext;
            if (p->up && (role == 0 || p->role == role))
                fn(p, arg);
        }
}

/* ---- roster merge ---- */

static int merged_cmp(const void *a, const void *b)
{
    const merged_entry *x = a, *y = b;
    if (x->e.ip != y->e.ip)
        return x->e.ip < y->e.ip ? -1 : 1;
    if (x->e.port != y->e.port)
        return x->e.port < y->e.port ? -1 : 1;
    if (x->last_heard_ms != y->last_heard_ms) /* freshest first */
        return x->last_heard_ms > y->last_heard_ms ? -1 : 1;
    return 0;
}

static int interested(const cluster *c, uint8_t role)
{
    return role <= GWP_ROLE_MAX && (c->cfg.interest & (1u << role));
}

static int is_self(const cluster *c, const roster_entry *e)
{
    return e->ip == c->self.ip && e->port == c->self.port;
}

static void peer_down(cluster *c, cluster_peer *p)
{
    if (p->up) {
        p->up = 0;
        LOG_INFO("GW-PEER-DOWN", "%s %s left the cluster", roster_role_name(p->role), p->addr);
        if (c->cbs.on_peer_down)
            c->cbs.on_peer_down(c, p, c->arg);
    }
    p->in_roster = 0;
    peer_close(c, p);
}

static void peer_up(cluster *c, const roster_entry *e)
{
    cluster_peer *p = cluster_peer_find(c, e->ip, e->port);
    if (p == NULL)
        p = peer_create(c, e->ip, e->port, e->role);
    if (p == NULL)
        return;
    p->role = e->role;
    p->nonce = e->nonce;
    p->in_roster = 1;
    p->load = e->load;
    p->pid = e->pid;
    memcpy(p->name, e->name, sizeof p->name);
    p->up = 1;
    LOG_INFO("GW-PEER-UP", "%s %s joined (pid %d)", roster_role_name(p->role), p->addr,
             (int)p->pid);
    if (c->cbs.on_peer_up)
        c->cbs.on_peer_up(c, p, c->arg);
}

static void recompute(cluster *c)
{
    uint64_t now = uv_now(c->loop);
    size_t total = 0;
    int any_fresh = 0, settled = 0;
    for (size_t i = 0; i < c->nregs; i++) {
        cluster_reg *r = &c->regs[i];
        if (r->last_roster_ms && now - r->last_roster_ms <= c->cfg.node_timeout_ms) {
            any_fresh = 1;
            total += r->n;
            if (now - r->since_ms >= c->cfg.node_timeout_ms)
                settled = 1;
        }
    }
    if (!any_fresh)
        return; /* no register heard from: keep the last view */
    /* A register heard again after a restart or a silence (its own, or this
     * node's: a cut link) may not have heard every live node yet: its roster
     * can add peers but, until node_timeout has passed and unless another
     * register vouches for it, it removes none (only restarts, a new nonce at a
     * known address, are certain). Otherwise a register coming back alone would
     * make every node drop, and run on_close for, peers that never left. */

    merged_entry *m = total ? gw_malloc(total * sizeof *m) : NULL;
    if (total && m == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i < c->nregs; i++) {
        cluster_reg *r = &c->regs[i];
        if (!r->last_roster_ms || now - r->last_roster_ms > c->cfg.node_timeout_ms)
            continue;
        for (size_t j = 0; j < r->n; j++) {
            m[n].e = r->entries[j];
            uint64_t age = r->entries[j].age_ms;
            m[n].last_heard_ms = r->last_roster_ms > age ? r->last_roster_ms - age : 0;
            n++;
        }
    }
    qsort(m, n, sizeof *m, merged_cmp);
    roster_entry *view = n ? gw_malloc(n * sizeof *view) : NULL;
    if (n && view == NULL) {
        gw_free(m);
        return;
    }
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && m[i].e.ip == m[i - 1].e.ip && m[i].e.port == m[i - 1].e.port)
            continue; /* an older report of the same node */
        if (now - m[i].last_heard_ms > (uint64_t)c->cfg.node_timeout_ms + ROSTER_GRACE_MS)
            continue;
        view[nv] = m[i].e;
        view[nv].age_ms = (uint32_t)(now - m[i].last_heard_ms);
        nv++;
    }
    gw_free(m);
    gw_free(c->merged);
    c->merged = view;
    c->nmerged = nv;

    /* Peers that left or restarted. Collect first: peer_down edits the table. */
    cluster_peer **gone = c->npeers ? gw_malloc(c->npeers * sizeof *gone) : NULL;
    size_t ngone = 0;
    if (gone) {
        for (unsigned b = 0; b < NBUCKETS; b++)
            for (cluster_peer *p = c->buckets[b]; p; p = p->hnext) {
                if (!p->in_roster)
                    continue;
                int found = 0, restarted = 0;
                for (size_t i = 0; i < nv && !found; i++) {
                    int here = view[i].ip == p->ip && view[i].port == p->port;
                    found = here && view[i].nonce == p->nonce;
                    restarted |= here && !found;
                }
                if (!found && (settled || restarted))
                    gone[ngone++] = p;
            }
        for (size_t i = 0; i < ngone; i++)
            peer_down(c, gone[i]);
        gw_free(gone);
    }
    for (size_t i = 0; i < nv && !c->stopping; i++) {
        const roster_entry *e = &view[i];
        if (!interested(c, e->role) || is_self(c, e))
            continue;
        cluster_peer *p = cluster_peer_find(c, e->ip, e->port);
        if (p && p->in_roster) {
            p->load = e->load;
            continue;
        }
        peer_up(c, e);
    }
}

static cluster_reg *reg_for(cluster *c, const gwp_sender *s)
{
    for (size_t i = 0; i < c->nregs; i++)
        if (c->regs[i].addr.ip == s->ip && c->regs[i].addr.port == s->port)
            return &c->regs[i];
    if (c->nregs == sizeof c->regs / sizeof c->regs[0])
        return NULL;
    /* A register that publishes under another address than the one configured
     * (e.g. it listens on 0.0.0.0): track it separately. */
    cluster_reg *r = &c->regs[c->nregs++];
    memset(r, 0, sizeof *r);
    r->addr.ip = s->ip;
    r->addr.port = s->port;
    return r;
}

static void handle_roster(cluster *c, const gwp_sender *from, const gwp_frame *f)
{
    uint64_t version;
    roster_entry *e;
    size_t n;
    if (roster_decode(f->a, f->a_len, &version, &e, &n) < 0) {
        c->stats.dropped_malformed++;
        LOG_RL(GW_LOG_WARN, "GW-BAD-ROSTER", "malformed roster from register ignored");
        return;
    }
    cluster_reg *r = reg_for(c, from);
    if (r == NULL) {
        gw_free(e);
        return;
    }
    /* A roster can arrive late (published and also answered to a request): never
     * go back to an older version of the same register's view. */
    if (r->last_roster_ms && r->nonce == from->nonce && version < r->version) {
        gw_free(e);
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (r->last_roster_ms == 0 || r->nonce != from->nonce ||
        now - r->last_roster_ms > c->cfg.node_timeout_ms)
        r->since_ms = now; /* see recompute */
    r->nonce = from->nonce;
    gw_free(r->entries);
    r->entries = e;
    r->n = n;
    r->version = version;
    r->last_roster_ms = uv_now(c->loop);
    c->last_roster_ms = r->last_roster_ms;
    c->stats.rosters_in++;
    recompute(c);
    if (c->cbs.on_roster && !c->stopping)
        c->cbs.on_roster(c, c->arg);
}

/* ---- receiving ---- */

static int open_batch(cluster *c, const uint8_t *msg, size_t len, gwp_batch *b, const char *what)
{
    int rc = gwp_batch_open(msg, len, c->has_key ? &c->key : NULL, b);
    if (rc == 0)
        return 0;
    if (rc == GWP_EAUTH) {
        c->stats.dropped_auth++;
        LOG_RL(GW_LOG_WARN, "GW-AUTH-FAIL",
               "%s batch rejected: HMAC tag missing or wrong (sender claims %s); check "
               "secret_key on every node",
               what,
               len >= GWP_HDR_LEN ? roster_role_name(msg[4]) ? roster_role_name(msg[4]) : "?"
                                  : "?");
    } else {
        c->stats.dropped_malformed++;
        LOG_RL(GW_LOG_WARN, "GW-BAD-BATCH", "%s: malformed batch of %zu bytes dropped: %s", what,
               len, gwp_strerror(rc));
    }
    return rc;
}

static void dispatch(cluster *c, const gwp_sender *from, const gwp_frame *f)
{
    if (f->cmd == GWP_ROSTER) {
        if (from->role == GWP_ROLE_REGISTER)
            handle_roster(c, from, f);
        return;
    }
    c->cbs.on_frame(c, from, f, c->arg);
}

/* Frames put aside by a blocking wait are older than anything received after
 * it: hand them over first. A nested wait may append more; they follow. */
static void replay_stash(cluster *c)
{
    while (c->stash_head && !c->stopping) {
        stashed *s = c->stash_head;
        c->stash_head = s->next;
        if (c->stash_head == NULL)
            c->stash_tail = NULL;
        dispatch(c, &s->from, &s->f);
        gw_free(s);
    }
    if (c->stash_head == NULL && c->stash_idle_on) {
        uv_idle_stop(&c->stash_idle);
        c->stash_idle_on = 0;
    }
}

static void stash_idle_cb(uv_idle_t *h)
{
    replay_stash(container_of(h, cluster, stash_idle));
}

static int stash_frame(cluster *c, const gwp_sender *from, const gwp_frame *f)
{
    stashed *s = gw_malloc(sizeof *s + f->a_len + f->b_len);
    if (s == NULL)
        return -ENOMEM;
    s->next = NULL;
    s->from = *from;
    s->f = *f;
    memcpy(s->data, f->a, f->a_len);
    memcpy(s->data + f->a_len, f->b, f->b_len);
    s->f.a = s->data;
    s->f.b = s->data + f->a_len;
    if (c->stash_tail)
        c->stash_tail->next = s;
    else
        c->stash_head = s;
    c->stash_tail = s;
    if (!c->stash_idle_on) {
        uv_idle_start(&c->stash_idle, stash_idle_cb);
        c->stash_idle_on = 1;
    }
    return 0;
}

static void on_inbox(mq_inbox *ib, const uint8_t *msg, size_t len, void *arg)
{
    cluster *c = arg;
    (void)ib;
    if (c->stash_head)
        replay_stash(c);
    gwp_batch b;
    if (c->stopping || open_batch(c, msg, len, &b, "inbox") < 0)
        return;
    c->stats.batches_in++;
    gwp_frame f;
    while (!c->stopping && gwp_batch_next(&b, &f) == 1) {
        c->stats.frames_in++;
        dispatch(c, &b.sender, &f);
    }
}

int cluster_recv_sync(cluster *c, uint64_t timeout_ms,
                      int (*want)(const gwp_sender *from, const gwp_frame *f, void *arg),
                      void *arg)
{
    if (c->stopping)
        return -EPIPE;
    uint64_t deadline = gw_now_ms() + timeout_ms;
    int fd = mq_inbox_fd(&c->inbox);
    if (fd < 0)
        return -EBADF;
    for (;;) {
        cluster_flush(c);
        for (unsigned b = 0; b < NBUCKETS; b++)
            for (cluster_peer *p = c->buckets[b]; p; p = p->hnext)
                if (p->mq.head)
                    mq_peer_kick(&p->mq);
        void *msg;
        long n = mq_inbox_recv(&c->inbox, &msg);
        if (n == -EAGAIN) {
            uint64_t now = gw_now_ms();
            if (now >= deadline)
                return 0;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            uint64_t wait = deadline - now;
            poll(&pfd, 1, wait > 10 ? 10 : (int)wait); /* 10 ms: also retry sends */
            continue;
        }
        if (n < 0)
            return (int)n;
        gwp_batch b;
        int stop = 0;
        if (open_batch(c, msg, (size_t)n, &b, "inbox") == 0) {
            c->stats.batches_in++;
            gwp_frame f;
            while (gwp_batch_next(&b, &f) == 1) {
                c->stats.frames_in++;
                int r = stop ? 0 : want(&b.sender, &f, arg);
                if (r == 2)
                    stop = 1;
                else if (r == 0 && stash_frame(c, &b.sender, &f) < 0)
                    LOG_RL(GW_LOG_ERROR, "GW-STASH", "out of memory: %s frame lost",
                           gwp_cmd_name(f.cmd));
            }
        }
        mq_msg_free(msg);
        if (stop)
            return 1;
    }
}

/* ---- register links ---- */

static void reg_link_open(cluster *c, cluster_reg *r)
{
    char url[48];
    mq_tcp_url(url, sizeof url, r->addr.ip, r->addr.port);
    mq_peer_opts o = {.reconnect_ivl_ms = 100, .reconnect_ivl_max_ms = 1000};
    mq_peer *p = gw_calloc(1, sizeof *p);
    if (p && mq_peer_open(p, c->loop, url, &o, NULL, NULL) == 0) {
        r->hb = p;
        r->hb_open = 1;
        r->hb_opened_ms = uv_now(c->loop);
        return;
    }
    gw_free(p);
    r->hb = NULL;
    r->hb_open = 0;
    LOG_ERROR("GW-REG-LINK", "cannot open a link to register %s", url);
}

static void reg_link_dropped(mq_peer *p)
{
    cluster *c = p->arg;
    gw_free(p);
    c->pending--;
}

/* A register silent for longer than node_timeout: replace the link. After a
 * network cut the old TCP connection may sit in retransmission backoff for many
 * seconds; a fresh one is tried at once, so a host whose link came back rejoins
 * without that wait. */
static void reg_links_refresh(cluster *c, uint64_t now)
{
    for (size_t i = 0; i < c->nregs; i++) {
        cluster_reg *r = &c->regs[i];
        if (!r->configured || !r->hb_open)
            continue;
        int silent = r->last_roster_ms == 0 || now - r->last_roster_ms > c->cfg.node_timeout_ms;
        if (!silent || now - r->hb_opened_ms < c->cfg.node_timeout_ms)
            continue;
        mq_peer *old = r->hb;
        old->arg = c;
        c->pending++;
        mq_peer_close(old, reg_link_dropped);
        reg_link_open(c, r);
    }
}

/* ---- heartbeats ---- */

static void send_heartbeats(cluster *c)
{
    gw_buf json = {0};
    uint32_t load = c->cbs.load ? c->cbs.load(c, c->arg) : 0;
    if (roster_heartbeat_encode(c->name, (int32_t)getpid(), load, &json) < 0)
        return;
    gwp_writer w = {0};
    for (size_t i = 0; i < c->nregs; i++) {
        cluster_reg *r = &c->regs[i];
        if (!r->hb_open)
            continue;
        /* One pending heartbeat per register at most: while a register is
         * unreachable the old one waits and newer ones are skipped. */
        if (r->hb->queued_msgs > 0)
            continue;
        int want = r->last_roster_ms == 0 ||
                   uv_now(c->loop) - r->last_roster_ms > c->cfg.node_timeout_ms;
        gwp_frame f = {.cmd = GWP_NODE_HEARTBEAT,
                       .aux = want ? HB_WANT_ROSTER : 0,
                       .a = json.data,
                       .a_len = json.len};
        size_t len;
        if (gwp_writer_begin(&w, &c->self) < 0 || gwp_writer_add(&w, &f) < 0 ||
            gwp_writer_finish(&w, c->has_key ? &c->key : NULL) < 0)
            break;
        const uint8_t *bytes = gwp_writer_bytes(&w, &len);
        mq_peer_send(r->hb, bytes, len);
    }
    gwp_writer_deinit(&w);
    gw_buf_deinit(&json);
}

static void hb_cb(uv_timer_t *t)
{
    cluster *c = container_of(t, cluster, hb_timer);
    if (!c->stopping)
        send_heartbeats(c);
}

/* A register that takes our heartbeats (the TCP link is up) but never sends a
 * roster is almost always one that refuses them: a different secret_key. The
 * register logs GW-AUTH-FAIL; say it here too, where the operator is looking. */
static void warn_silent_registers(cluster *c, uint64_t now)
{
    uint64_t quiet = 2 * (uint64_t)c->cfg.node_timeout_ms;
    if (quiet < 5000)
        quiet = 5000;
    for (size_t i = 0; i < c->nregs; i++) {
        cluster_reg *r = &c->regs[i];
        if (!r->configured || !r->hb_open)
            continue;
        if (r->last_roster_ms && now - r->last_roster_ms <= c->cfg.node_timeout_ms) {
            r->silent_since_ms = 0;
            continue;
        }
        if (!mq_peer_connected(r->hb)) {
            r->silent_since_ms = 0; /* unreachable: nothing to say beyond the obvious */
            continue;
        }
        if (r->silent_since_ms == 0)
            r->silent_since_ms = now;
        if (now - r->silent_since_ms >= quiet && now - r->warned_ms >= 30000) {
            char a[24];
            format_addr(a, sizeof a, r->addr.ip, r->addr.port);
            LOG_WARN("GW-NO-ROSTER",
                     "register %s accepts this node's heartbeats but has sent no roster for "
                     "%llu ms: is secret_key the same on every node? (a register logs "
                     "GW-AUTH-FAIL for heartbeats it refuses)",
                     a, (unsigned long long)(now - r->silent_since_ms));
            r->warned_ms = now;
        }
    }
}

static void check_cb(uv_timer_t *t)
{
    cluster *c = container_of(t, cluster, check_timer);
    if (c->stopping)
        return;
    uint64_t now = uv_now(c->loop);
    recompute(c);
    warn_silent_registers(c, now);
    reg_links_refresh(c, now);
    /* Clients do not heartbeat: ask again while no roster is known. */
    if (c->cfg.heartbeat_ms == 0 && (c->last_roster_ms == 0))
        send_heartbeats(c);
    /* Idle on-demand links. */
    cluster_peer *idle[64];
    size_t nidle = 0;
    for (unsigned b = 0; b < NBUCKETS && nidle < 64; b++)
        for (cluster_peer *p = c->buckets[b]; p && nidle < 64; p = p->hnext)
            if (!p->in_roster && now - p->last_used_ms > ONDEMAND_IDLE_MS &&
                cluster_peer_backlog(p) == 0)
                idle[nidle++] = p;
    for (size_t i = 0; i < nidle; i++)
        peer_close(c, idle[i]);
}

/* ---- start / stop ---- */

static int pick_free_port(uint32_t ip, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(ip)};
    socklen_t sl = sizeof sa;
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        rc = -errno;
    else
        *port = ntohs(sa.sin_port);
    close(fd);
    return rc;
}

static int open_inbox(cluster *c)
{
    uint32_t bind_ip = c->cfg.bind_any ? 0 : c->cfg.inbox_bind ? c->cfg.inbox_bind : c->cfg.lan_ip;
    for (int attempt = 0; attempt < 20; attempt++) {
        uint16_t port = c->cfg.inbox_port;
        if (port == 0) {
            int rc = pick_free_port(c->cfg.lan_ip, &port);
            if (rc < 0)
                return rc;
        }
        char url[48];
        mq_tcp_url(url, sizeof url, bind_ip, port);
        int rc = mq_inbox_open(&c->inbox, c->loop, url, c->cfg.max_msg, on_inbox, c);
        if (rc == 0) {
            c->self.port = port;
            return 0;
        }
        if (rc != -EADDRINUSE || c->cfg.inbox_port != 0)
            return rc;
    }
    return -EADDRINUSE;
}

int cluster_start(cluster **out, uv_loop_t *loop, const cluster_cfg *cfg, const cluster_cbs *cbs,
                  void *arg)
{
    *out = NULL;
    int rc = -ENOMEM;
    cluster *c = gw_calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->cfg = *cfg;
    c->cbs = *cbs;
    c->arg = arg;
    c->name = gw_strdup(cfg->name ? cfg->name : "");
    if (c->name == NULL)
        goto fail_free;
    c->cfg.name = c->name;
    c->cfg.secret = NULL;
    if (c->cfg.max_batch == 0 || c->cfg.max_batch > c->cfg.max_msg)
        c->cfg.max_batch = c->cfg.max_msg < 256 * 1024 ? c->cfg.max_msg : 256 * 1024;
    if (cfg->secret && cfg->secret[0]) {
        rc = gwp_key_init(&c->key, cfg->secret, strlen(cfg->secret));
        if (rc < 0)
            goto fail_name;
        c->has_key = 1;
    }
    c->self.role = cfg->role;
    c->self.ip = cfg->lan_ip;
    if (getrandom(&c->self.nonce, sizeof c->self.nonce, 0) != sizeof c->self.nonce)
        c->self.nonce = (uint64_t)getpid() << 32 ^ gw_now_ms();

    rc = open_inbox(c);
    if (rc < 0)
        goto fail_key;
    format_addr(c->self_addr, sizeof c->self_addr, c->self.ip, c->self.port);

    c->nregs = cfg->n_registers > CLUSTER_MAX_REGISTERS ? CLUSTER_MAX_REGISTERS : cfg->n_registers;
    for (size_t i = 0; i < c->nregs; i++) {
        cluster_reg *r = &c->regs[i];
        r->addr = cfg->registers[i];
        r->configured = 1;
        reg_link_open(c, r);
    }

    uv_prepare_init(loop, &c->flush);
    uv_prepare_start(&c->flush, flush_cb);
    uv_idle_init(loop, &c->stash_idle);
    uv_timer_init(loop, &c->hb_timer);
    uv_timer_init(loop, &c->check_timer);
    if (cfg->heartbeat_ms)
        uv_timer_start(&c->hb_timer, hb_cb, 0, cfg->heartbeat_ms);
    else
        send_heartbeats(c); /* a client: ask for the roster once now */
    uv_timer_start(&c->check_timer, check_cb, CHECK_MS, CHECK_MS);
    *out = c;
    return 0;

fail_key:
    gwp_key_deinit(&c->key);
fail_name:
    gw_free(c->name);
fail_free:
    gw_free(c);
    return rc;
}

static void maybe_finish_stop(cluster *c)
{
    if (!c->stopping || c->pending > 0)
        return;
    void (*done)(void *) = c->done;
    void *done_arg = c->done_arg;
    for (size_t i = 0; i < c->nregs; i++)
        gw_free(c->regs[i].entries);
    while (c->stash_head) {
        stashed *s = c->stash_head;
        c->stash_head = s->next;
        gw_free(s);
    }
    gw_free(c->merged);
    gwp_key_deinit(&c->key);
    gw_free(c->name);
    gw_free(c);
    if (done)
        done(done_arg);
}

static void handle_closed(uv_handle_t *h)
{
    cluster *c = h->data;
    c->pending--;
    maybe_finish_stop(c);
}

static void inbox_closed(mq_inbox *ib)
{
    cluster *c = ib->arg;
    c->pending--;
    maybe_finish_stop(c);
}

static void reg_closed(mq_peer *p)
{
    cluster *c = p->arg;
    gw_free(p);
    c->pending--;
    maybe_finish_stop(c);
}

void cluster_stop(cluster *c, void (*done)(void *arg), void *arg)
{
    if (c->stopping)
        return;
    cluster_flush(c);
    c->stopping = 1;
    c->done = done;
    c->done_arg = arg;
    c->pending = 1; /* held until the end of this function */
    for (unsigned b = 0; b < NBUCKETS; b++)
        while (c->buckets[b]) {
            cluster_peer *p = c->buckets[b];
            p->up = 0;
            peer_close(c, p);
        }
    for (size_t i = 0; i < c->nregs; i++)
        if (c->regs[i].hb_open) {
            c->regs[i].hb_open = 0;
            c->regs[i].hb->arg = c;
            c->pending++;
            mq_peer_close(c->regs[i].hb, reg_closed);
        }
    c->pending++;
    mq_inbox_close(&c->inbox, inbox_closed);
    uv_handle_t *hs[] = {(uv_handle_t *)&c->flush, (uv_handle_t *)&c->hb_timer,
                         (uv_handle_t *)&c->check_timer, (uv_handle_t *)&c->stash_idle};
    for (size_t i = 0; i < 4; i++) {
        hs[i]->data = c;
        c->pending++;
        uv_close(hs[i], handle_closed);
    }
    c->pending--;
    maybe_finish_stop(c);
}

const gwp_sender *cluster_self(const cluster *c)
{
    return &c->self;
}

const cluster_stats *cluster_get_stats(const cluster *c)
{
    return &c->stats;
}

const gwp_key *cluster_key(const cluster *c)
{
    return c->has_key ? &c->key : NULL;
}

int cluster_has_roster(const cluster *c)
{
    return c->last_roster_ms != 0;
}

uint64_t cluster_roster_age_ms(const cluster *c)
{
    if (c->last_roster_ms == 0)
        return UINT64_MAX;
    return uv_now(c->loop) - c->last_roster_ms;
}

long cluster_roster_snapshot(const cluster *c, roster_entry **out)
{
    *out = NULL;
    if (c->nmerged == 0)
        return 0;
    *out = gw_malloc(c->nmerged * sizeof **out);
    if (*out == NULL)
        return -ENOMEM;
    memcpy(*out, c->merged, c->nmerged * sizeof **out);
    return (long)c->nmerged;
}
