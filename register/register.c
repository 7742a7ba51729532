#include "register/register.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/mq.h"
#include "common/proto.h"
#include "common/roster.h"
#include "common/smap.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define EXPIRE_CHECK_MS 100
#define HB_WANT_ROSTER 1u
/* A link to an inbox that is not a roster node (gwctl asking once) is closed
 * after this long unused. */
#define REPLY_IDLE_MS 10000
/* The expiry timer runs every EXPIRE_CHECK_MS; a longer gap means the loop did
 * not run (SIGSTOP, a paused VM, swapping) while heartbeats piled up unread. */
#define STALL_MS 1000

typedef struct reg_node {
    roster_entry e;
    uint64_t last_ms;
} reg_node;

/* A PUSH link to a node's (or an API client's) inbox: rosters go there. The
 * register exposes no other socket than its announce inbox: an NN_PUB socket
 * aborts the process when a peer subscribes and sends (nanomsg xpub.c). */
typedef struct reg_link {
    uint32_t ip;
    uint16_t port;
    uint64_t last_used;
    mq_peer mq;
    gw_register *r;
} reg_link;

struct gw_register {
    uv_loop_t *loop;
    const gw_config *cfg;
    gwp_key key;
    int has_key;
    gwp_sender self;
    mq_inbox inbox;
    uv_timer_t expire_timer;
    uv_timer_t publish_timer;
    reg_node *nodes;
    size_t nnodes;
    size_t cap;
    uint64_t version;
    int changed;
    /* After a stall (heartbeats piled up unread), nobody is expired until then. */
    uint64_t no_expiry_until_ms;
    uint64_t last_check_ms;
    smap links; /* "ipport" -> reg_link */
    gwp_writer w;
    gw_buf json;
    gw_register_stats stats;
    int stopping;
    int pending;
    void (*done)(void *);
    void *done_arg;
};

static char *addr_str(char *buf, size_t n, uint32_t ip, uint16_t port)
{
    char a[16];
    mq_format_ipv4(a, sizeof a, ip);
    snprintf(buf, n, "%s:%u", a, (unsigned)port);
    return buf;
}

/* Builds the roster batch into r->w; returns its bytes or NULL. */
static const uint8_t *build_roster(gw_register *r, size_t *len)
{
    uint64_t now = uv_now(r->loop);
    roster_entry *tmp = r->nnodes ? gw_malloc(r->nnodes * sizeof *tmp) : NULL;
    if (r->nnodes && tmp == NULL)
        return NULL;
    for (size_t i = 0; i < r->nnodes; i++) {
        tmp[i] = r->nodes[i].e;
        uint64_t age = now - r->nodes[i].last_ms;
        tmp[i].age_ms = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
    }
    r->json.len = 0;
    int rc = roster_encode(r->version, tmp, r->nnodes, &r->json);
    gw_free(tmp);
    if (rc < 0)
        return NULL;
    gwp_frame f = {.cmd = GWP_ROSTER, .a = r->json.data, .a_len = r->json.len};
    if (gwp_writer_begin(&r->w, &r->self) < 0 || gwp_writer_add(&r->w, &f) < 0 ||
        gwp_writer_finish(&r->w, r->has_key ? &r->key : NULL) < 0)
        return NULL;
    return gwp_writer_bytes(&r->w, len);
}

static void link_key(char *key, uint32_t ip, uint16_t port)
{
    snprintf(key, 16, "%08x%04x", ip, port);
}

static void finish(gw_register *r);

static void link_closed(mq_peer *p)
{
    reg_link *l = container_of(p, reg_link, mq);
    gw_register *r = l->r;
    gw_free(l);
    r->pending--;
    if (r->stopping)
        finish(r);
}

static void link_close(gw_register *r, reg_link *l)
{
    char key[16];
    link_key(key, l->ip, l->port);
    smap_del(&r->links, key, 12);
    r->pending++;
    mq_peer_close(&l->mq, link_closed);
}

static reg_link *link_get(gw_register *r, uint32_t ip, uint16_t port)
{
    char key[16];
    link_key(key, ip, port);
    reg_link *l = smap_get(&r->links, key, 12);
    if (l)
        return l;
    l = gw_calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    char url[48];
    mq_tcp_url(url, sizeof url, ip, port);
    mq_peer_opts o = {.reconnect_ivl_ms = 100, .reconnect_ivl_max_ms = 1000};
    if (mq_peer_open(&l->mq, r->loop, url, &o, NULL, NULL) < 0) {
        gw_free(l);
        return NULL;
    }
    l->ip = ip;
    l->port = port;
    l->r = r;
    if (smap_put(&r->links, key, 12, l, NULL) < 0) {
        r->pending++;
        mq_peer_close(&l->mq, link_closed);
        return NULL;
    }
    return l;
}

/* At most one roster waits in a link's queue: a node that is slow or away gets
 * the next one when it reads again (rosters are repeated anyway). */
static void link_send(reg_link *l, const uint8_t *bytes, size_t len)
{
    l->last_used = uv_now(l->r->loop);
    if (l->mq.queued_msgs == 0)
        mq_peer_send(&l->mq, bytes, len);
}

/* Sends the roster to every node's inbox; a changed roster gets the next
 * version number first, so a node can tell an older roster (arriving late)
 * from a newer one. */
static void publish(gw_register *r)
{
    if (r->changed) {
        r->version++;
        r->changed = 0;
    }
    size_t len;
    const uint8_t *bytes = build_roster(r, &len);
    if (bytes == NULL) {
        LOG_RL(GW_LOG_ERROR, "GW-ROSTER", "cannot build the roster (out of memory)");
        return;
    }
    for (size_t i = 0; i < r->nnodes; i++) {
        reg_link *l = link_get(r, r->nodes[i].e.ip, r->nodes[i].e.port);
        if (l)
            link_send(l, bytes, len);
    }
    r->stats.published++;
}

static void send_roster_to(gw_register *r, uint32_t ip, uint16_t port)
{
    reg_link *l = link_get(r, ip, port);
    size_t len;
    const uint8_t *bytes = l ? build_roster(r, &len) : NULL;
    if (bytes)
        link_send(l, bytes, len);
}

static reg_node *find_node(gw_register *r, uint32_t ip, uint16_t port)
{
    for (size_t i = 0; i < r->nnodes; i++)
        if (r->nodes[i].e.ip == ip && r->nodes[i].e.port == port)
            return &r->nodes[i];
    return NULL;
}

static void handle_heartbeat(gw_register *r, const gwp_sender *s, const gwp_frame *f)
{
    char addr[32];
    roster_entry e = {.role = s->role, .ip = s->ip, .port = s->port, .nonce = s->nonce};
    if (roster_heartbeat_decode(f->a, f->a_len, &e) < 0) {
        r->stats.malformed++;
        LOG_RL(GW_LOG_WARN, "GW-BAD-HEARTBEAT", "malformed heartbeat from %s ignored",
               addr_str(addr, sizeof addr, s->ip, s->port));
        return;
    }
    r->stats.heartbeats++;
    if (s->role == GWP_ROLE_GATEWAY || s->role == GWP_ROLE_WORKER) {
        if (s->ip == 0 || s->port == 0) {
            LOG_RL(GW_LOG_WARN, "GW-BAD-HEARTBEAT", "heartbeat with no inbox address ignored");
            return;
        }
        reg_node *n = find_node(r, s->ip, s->port);
        if (n == NULL) {
            if (r->nnodes == ROSTER_MAX_NODES) {
                LOG_RL(GW_LOG_ERROR, "GW-ROSTER-FULL", "roster full (%d nodes): %s refused",
                       ROSTER_MAX_NODES, addr_str(addr, sizeof addr, s->ip, s->port));
                return;
            }
            if (r->nnodes == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 16;
                reg_node *nn = gw_realloc(r->nodes, cap * sizeof *nn);
                if (nn == NULL)
                    return;
                r->nodes = nn;
                r->cap = cap;
            }
            n = &r->nodes[r->nnodes++];
            r->stats.joins++;
            r->changed = 1;
            LOG_INFO("GW-NODE-JOIN", "%s %s joined (pid %d, %s)", roster_role_name(s->role),
                     addr_str(addr, sizeof addr, s->ip, s->port), (int)e.pid, e.name);
        } else if (n->e.nonce != s->nonce || n->e.role != s->role) {
            r->changed = 1;
            LOG_INFO("GW-NODE-RESTART", "%s %s restarted (pid %d)", roster_role_name(s->role),
                     addr_str(addr, sizeof addr, s->ip, s->port), (int)e.pid);
        }
        n->e = e;
        n->last_ms = uv_now(r->loop);
    }
    if (f->aux & HB_WANT_ROSTER) {
        if (r->changed)
            publish(r); /* this node included */
        else
            send_roster_to(r, s->ip, s->port);
    }
}

static void on_inbox(mq_inbox *ib, const uint8_t *msg, size_t len, void *arg)
{
    gw_register *r = arg;
    (void)ib;
    gwp_batch b;
    int rc = gwp_batch_open(msg, len, r->has_key ? &r->key : NULL, &b);
    if (rc < 0) {
        char addr[32] = "?";
        if (len >= GWP_HDR_LEN)
            addr_str(addr, sizeof addr, gw_load_be32(msg + 8), gw_load_be16(msg + 6));
        if (rc == GWP_EAUTH) {
            r->stats.auth_failures++;
            LOG_RL(GW_LOG_WARN, "GW-AUTH-FAIL",
                   "node %s refused: heartbeat without a valid HMAC (wrong secret_key)", addr);
        } else {
            r->stats.malformed++;
            LOG_RL(GW_LOG_WARN, "GW-BAD-BATCH", "malformed message of %zu bytes dropped: %s",
                   len, gwp_strerror(rc));
        }
        return;
    }
    gwp_frame f;
    while (gwp_batch_next(&b, &f) == 1) {
        if (f.cmd == GWP_NODE_HEARTBEAT)
            handle_heartbeat(r, &b.sender, &f);
        else
            LOG_RL(GW_LOG_WARN, "GW-BAD-CMD", "unexpected %s frame at the register ignored",
                   gwp_cmd_name(f.cmd));
    }
    if (r->changed)
        publish(r);
}

static void expire_cb(uv_timer_t *t)
{
    gw_register *r = container_of(t, gw_register, expire_timer);
    uint64_t now = uv_now(r->loop);
    uint64_t timeout = (uint64_t)(r->cfg->cluster.node_timeout * 1000);
    char addr[32];
    if (now - r->last_check_ms > STALL_MS) {
        /* The heartbeats of that time are still unread: expiring now would drop
         * live nodes. Give every node node_timeout to be heard again. */
        LOG_WARN("GW-REG-STALL", "the register did not run for %llu ms: expiring nobody for "
                                 "the next %llu ms",
                 (unsigned long long)(now - r->last_check_ms), (unsigned long long)timeout);
        r->no_expiry_until_ms = now + timeout;
    }
    r->last_check_ms = now;
    for (size_t i = 0; i < r->nnodes && now >= r->no_expiry_until_ms;) {
        reg_node *n = &r->nodes[i];
        if (now - n->last_ms > timeout) {
            LOG_INFO("GW-NODE-EXPIRE", "%s %s expired after %llu ms of silence",
                     roster_role_name(n->e.role), addr_str(addr, sizeof addr, n->e.ip, n->e.port),
                     (unsigned long long)(now - n->last_ms));
            r->nodes[i] = r->nodes[--r->nnodes];
            r->stats.expiries++;
            r->changed = 1;
            continue;
        }
        i++;
    }
    /* Links of nodes that left, and of API clients that asked once. */
    reg_link *idle[64];
    size_t nidle = 0, pos = 0;
    const smap_entry *e;
    while (nidle < 64 && smap_next(&r->links, &pos, &e)) {
        reg_link *l = e->value;
        if (now - l->last_used > REPLY_IDLE_MS && find_node(r, l->ip, l->port) == NULL)
            idle[nidle++] = l;
    }
    for (size_t i = 0; i < nidle; i++)
        link_close(r, idle[i]);
    if (r->changed)
        publish(r);
    r->stats.nodes = (uint32_t)r->nnodes;
}

static void publish_cb(uv_timer_t *t)
{
    gw_register *r = container_of(t, gw_register, publish_timer);
    publish(r);
}

int gw_register_start(gw_register **out, uv_loop_t *loop, const gw_config *cfg)
{
    *out = NULL;
    gw_register *r = gw_calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->loop = loop;
    r->cfg = cfg;
    int rc;
    if (cfg->cluster.secret_key[0]) {
        rc = gwp_key_init(&r->key, cfg->cluster.secret_key, strlen(cfg->cluster.secret_key));
        if (rc < 0)
            goto fail_free;
        r->has_key = 1;
    }
    uint32_t ip;
    if (mq_parse_ipv4(cfg->reg.listen.host, &ip) < 0) {
        rc = -EINVAL;
        goto fail_key;
    }
    if (ip == 0 && mq_parse_ipv4(cfg->cluster.lan_ip, &r->self.ip) < 0) {
        rc = -EINVAL;
        goto fail_key;
    }
    if (ip != 0)
        r->self.ip = ip;
    r->self.role = GWP_ROLE_REGISTER;
    r->self.port = cfg->reg.listen.port;
    if (getrandom(&r->self.nonce, sizeof r->self.nonce, 0) != sizeof r->self.nonce)
        r->self.nonce = (uint64_t)getpid() << 32 ^ gw_now_ms();
    r->version = 1;

    char url[48];
    mq_tcp_url(url, sizeof url, ip, cfg->reg.listen.port);
    rc = mq_inbox_open(&r->inbox, loop, url, 1u << 20, on_inbox, r);
    if (rc < 0) {
        LOG_ERROR("GW-BIND", "cannot bind the register socket %s: %s", url, strerror(-rc));
        goto fail_key;
    }
    uv_timer_init(loop, &r->expire_timer);
    uv_timer_init(loop, &r->publish_timer);
    r->last_check_ms = uv_now(loop);
    uv_timer_start(&r->expire_timer, expire_cb, EXPIRE_CHECK_MS, EXPIRE_CHECK_MS);
    uint64_t pub_ms = (uint64_t)(cfg->reg.publish_interval * 1000);
    uv_timer_start(&r->publish_timer, publish_cb, pub_ms, pub_ms);
    char a[32];
    LOG_INFO("GW-START", "register listening on %s%s",
             addr_str(a, sizeof a, ip, cfg->reg.listen.port),
             r->has_key ? ", secret_key set" : "");
    *out = r;
    return 0;
fail_key:
    gwp_key_deinit(&r->key);
fail_free:
    gw_free(r);
    return rc;
}

static void finish(gw_register *r)
{
    if (r->pending > 0)
        return;
    void (*done)(void *) = r->done;
    void *arg = r->done_arg;
    smap_deinit(&r->links);
    gwp_writer_deinit(&r->w);
    gw_buf_deinit(&r->json);
    gwp_key_deinit(&r->key);
    gw_free(r->nodes);
    gw_free(r);
    if (done)
        done(arg);
}

static void handle_closed(uv_handle_t *h)
{
    gw_register *r = h->data;
    r->pending--;
    finish(r);
}

static void inbox_closed(mq_inbox *ib)
{
    gw_register *r = ib->arg;
    r->pending--;
    finish(r);
}

static void link_closed_stop(mq_peer *p)
{
    reg_link *l = container_of(p, reg_link, mq);
    gw_register *r = l->r;
    gw_free(l);
    r->pending--;
    finish(r);
}

void gw_register_stop(gw_register *r, void (*done)(void *), void *arg)
{
    if (r->stopping)
        return;
    r->stopping = 1;
    r->done = done;
    r->done_arg = arg;
    r->pending++;
    size_t pos = 0;
    const smap_entry *e;
    while (smap_next(&r->links, &pos, &e)) {
        reg_link *l = e->value;
        r->pending++;
        mq_peer_close(&l->mq, link_closed_stop);
    }
    smap_deinit(&r->links);
    r->pending++;
    mq_inbox_close(&r->inbox, inbox_closed);
    uv_handle_t *hs[] = {(uv_handle_t *)&r->expire_timer, (uv_handle_t *)&r->publish_timer};
    for (int i = 0; i < 2; i++) {
        hs[i]->data = r;
        r->pending++;
        uv_close(hs[i], handle_closed);
    }
    r->pending--;
    finish(r);
}

const gw_register_stats *gw_register_get_stats(const gw_register *r)
{
    return &r->stats;
}
