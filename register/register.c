#include "register/register.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/mq.h"
#include "common/proto.h"
#include "common/roster.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define EXPIRE_CHECK_MS 100
#define HB_WANT_ROSTER 1u
#define MAX_REPLY_LINKS 64
#define REPLY_IDLE_MS 10000

typedef struct reg_node {
    roster_entry e;
    uint64_t last_ms;
} reg_node;

/* A link to a requester's inbox, to answer "send me the roster". */
typedef struct reply_link {
    uint32_t ip;
    uint16_t port;
    int open;
    uint64_t last_used;
    mq_peer mq;
    gw_register *r;
} reply_link;

struct gw_register {
    uv_loop_t *loop;
    const gw_config *cfg;
    gwp_key key;
    int has_key;
    gwp_sender self;
    mq_inbox inbox;
    mq_pub pub;
    uv_timer_t expire_timer;
    uv_timer_t publish_timer;
    reg_node *nodes;
    size_t nnodes;
    size_t cap;
    uint64_t version;
    int changed;
    reply_link links[MAX_REPLY_LINKS];
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

/* Publishes the roster; a changed roster gets the next version number first,
 * so a node can tell an older roster (arriving late) from a newer one. */
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
    int rc = mq_pub_send(&r->pub, bytes, len);
    if (rc < 0)
        LOG_RL(GW_LOG_WARN, "GW-ROSTER", "publishing the roster failed: %s", strerror(-rc));
    else
        r->stats.published++;
}

static void link_closed(mq_peer *p)
{
    reply_link *l = container_of(p, reply_link, mq);
    gw_register *r = l->r;
    l->r = NULL; /* the slot is free again */
    r->pending--;
}

static void send_roster_to(gw_register *r, uint32_t ip, uint16_t port)
{
    uint64_t now = uv_now(r->loop);
    reply_link *l = NULL, *oldest = NULL, *free_slot = NULL;
    for (size_t i = 0; i < MAX_REPLY_LINKS; i++) {
        reply_link *c = &r->links[i];
        if (c->open && c->ip == ip && c->port == port) {
            l = c;
            break;
        }
        if (!c->open && c->r == NULL && free_slot == NULL)
            free_slot = c;
        if (c->open && (oldest == NULL || c->last_used < oldest->last_used))
            oldest = c;
    }
    if (l == NULL) {
        if (free_slot == NULL) {
            /* Recycle the least recently used link (its close is asynchronous,
             * so skip this request if none is free now). */
            if (oldest) {
                oldest->open = 0;
                r->pending++;
                mq_peer_close(&oldest->mq, link_closed);
            }
            for (size_t i = 0; i < MAX_REPLY_LINKS && free_slot == NULL; i++)
                if (!r->links[i].open && r->links[i].r == NULL)
                    free_slot = &r->links[i];
            if (free_slot == NULL)
                return;
        }
        char url[48];
        mq_tcp_url(url, sizeof url, ip, port);
        mq_peer_opts o = {.reconnect_ivl_ms = 100, .reconnect_ivl_max_ms = 1000};
        if (mq_peer_open(&free_slot->mq, r->loop, url, &o, NULL, NULL) < 0)
            return;
        l = free_slot;
        l->open = 1;
        l->ip = ip;
        l->port = port;
        l->r = r;
    }
    l->last_used = now;
    size_t len;
    const uint8_t *bytes = build_roster(r, &len);
    if (bytes && l->mq.queued_msgs < 4)
        mq_peer_send(&l->mq, bytes, len);
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
            publish(r);
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
    for (size_t i = 0; i < r->nnodes;) {
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
    for (size_t i = 0; i < MAX_REPLY_LINKS; i++) {
        reply_link *l = &r->links[i];
        if (l->open && now - l->last_used > REPLY_IDLE_MS) {
            l->open = 0;
            r->pending++;
            mq_peer_close(&l->mq, link_closed);
        }
    }
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
    r->pub.sock = -1;
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
    mq_tcp_url(url, sizeof url, ip, (uint16_t)(cfg->reg.listen.port + 1));
    rc = mq_pub_open(&r->pub, url);
    if (rc < 0) {
        LOG_ERROR("GW-BIND", "cannot bind the register roster socket %s: %s", url,
                  strerror(-rc));
        goto fail_key;
    }
    mq_tcp_url(url, sizeof url, ip, cfg->reg.listen.port);
    rc = mq_inbox_open(&r->inbox, loop, url, 1u << 20, on_inbox, r);
    if (rc < 0) {
        LOG_ERROR("GW-BIND", "cannot bind the register announce socket %s: %s", url,
                  strerror(-rc));
        goto fail_pub;
    }
    uv_timer_init(loop, &r->expire_timer);
    uv_timer_init(loop, &r->publish_timer);
    uv_timer_start(&r->expire_timer, expire_cb, EXPIRE_CHECK_MS, EXPIRE_CHECK_MS);
    uint64_t pub_ms = (uint64_t)(cfg->reg.publish_interval * 1000);
    uv_timer_start(&r->publish_timer, publish_cb, pub_ms, pub_ms);
    char a[32];
    LOG_INFO("GW-START", "register listening on %s (roster on port %u)%s",
             addr_str(a, sizeof a, ip, cfg->reg.listen.port), cfg->reg.listen.port + 1u,
             r->has_key ? ", secret_key set" : "");
    *out = r;
    return 0;
fail_pub:
    mq_pub_close(&r->pub);
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
    mq_pub_close(&r->pub);
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
    reply_link *l = container_of(p, reply_link, mq);
    gw_register *r = l->r;
    l->r = NULL;
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
    for (size_t i = 0; i < MAX_REPLY_LINKS; i++)
        if (r->links[i].open) {
            r->links[i].open = 0;
            r->pending++;
            mq_peer_close(&r->links[i].mq, link_closed_stop);
        }
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
