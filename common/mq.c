#include "common/mq.h"
#include "common/alloc.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/tcp.h>
#include <stdio.h>
#include <string.h>

/* Messages handled per poll callback: the fd is level-triggered, so whatever is
 * left makes the loop call us again after other handles had their turn. */
#define MQ_RECV_BUDGET 256
#define MQ_SEND_BUDGET 256

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static int nn_fd(int sock, int opt, int *fd)
{
    size_t sz = sizeof *fd;
    if (nn_getsockopt(sock, NN_SOL_SOCKET, opt, fd, &sz) < 0)
        return -nn_errno();
    return 0;
}

static void inbox_poll_cb(uv_poll_t *h, int status, int events)
{
    mq_inbox *ib = container_of(h, mq_inbox, poll);
    (void)events;
    if (status < 0) {
        LOG_RL(GW_LOG_WARN, "GW-MQ-POLL", "inbox poll error: %s", uv_strerror(status));
        return;
    }
    for (int i = 0; i < MQ_RECV_BUDGET && ib->active; i++) {
        void *msg = NULL;
        int n = nn_recv(ib->sock, &msg, NN_MSG, NN_DONTWAIT);
        if (n < 0) {
            int e = nn_errno();
            if (e != EAGAIN && e != EINTR)
                LOG_RL(GW_LOG_WARN, "GW-MQ-RECV", "inbox receive failed: %s", nn_strerror(e));
            return;
        }
        ib->msgs_in++;
        ib->bytes_in += (uint64_t)n;
        ib->cb(ib, msg, (size_t)n, ib->arg);
        nn_freemsg(msg);
    }
}

int mq_inbox_open(mq_inbox *ib, uv_loop_t *loop, const char *url, size_t max_msg,
                  mq_inbox_cb cb, void *arg)
{
    memset(ib, 0, sizeof *ib);
    ib->sock = -1;
    int rc;
    int s = nn_socket(AF_SP, NN_PULL);
    if (s < 0)
        return -nn_errno();
    int maxsz = max_msg > (size_t)INT32_MAX ? INT32_MAX : (int)max_msg;
    if (nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz, sizeof maxsz) < 0)
        goto fail_errno;
    if (nn_bind(s, url) < 0)
        goto fail_errno;
    int fd;
    if ((rc = nn_fd(s, NN_RCVFD, &fd)) < 0)
        goto fail_rc;
    if ((rc = uv_poll_init(loop, &ib->poll, fd)) < 0)
        goto fail_rc;
    ib->sock = s;
    ib->cb = cb;
    ib->arg = arg;
    ib->active = 1;
    rc = uv_poll_start(&ib->poll, UV_READABLE, inbox_poll_cb);
    if (rc < 0) {
        /* The handle exists: close it through libuv, nn_close follows in the cb. */
        mq_inbox_close(ib, NULL);
        return rc;
    }
    return 0;
fail_errno:
    rc = -nn_errno();
fail_rc:
    nn_close(s);
    return rc;
}


static void inbox_closed(uv_handle_t *h)
{
    mq_inbox *ib = container_of((uv_poll_t *)h, mq_inbox, poll);
    nn_close(ib->sock);
    ib->sock = -1;
    if (ib->close_cb)
        ib->close_cb(ib);
}

void mq_inbox_close(mq_inbox *ib, void (*close_cb)(mq_inbox *))
{
    if (!ib->active)
        return;
    ib->active = 0;
    ib->close_cb = close_cb;
    uv_poll_stop(&ib->poll);
    uv_close((uv_handle_t *)&ib->poll, inbox_closed);
}

/* ---- peers ---- */

static void peer_queue_push(mq_peer *p, mq_msg *m)
{
    m->next = NULL;
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    p->queued_bytes += m->len;
    p->queued_msgs++;
}

static void peer_queue_pop(mq_peer *p)
{
    mq_msg *m = p->head;
    p->head = m->next;
    if (p->head == NULL)
        p->tail = NULL;
    p->queued_bytes -= m->len;
    p->queued_msgs--;
    gw_free(m);
}

static void peer_poll_cb(uv_poll_t *h, int status, int events);

static void peer_start_poll(mq_peer *p)
{
    if (p->polling)
        return;
    int rc = uv_poll_start(&p->poll, UV_READABLE, peer_poll_cb);
    if (rc < 0) {
        LOG_RL(GW_LOG_ERROR, "GW-MQ-POLL", "cannot poll peer send fd: %s", uv_strerror(rc));
        return;
    }
    p->polling = 1;
}

static void peer_flush(mq_peer *p)
{
    for (int i = 0; i < MQ_SEND_BUDGET && p->head; i++) {
        mq_msg *m = p->head;
        if (nn_send(p->sock, m->data, m->len, NN_DONTWAIT) < 0) {
            int e = nn_errno();
            if (e == EAGAIN || e == EINTR)
                return;
            LOG_RL(GW_LOG_WARN, "GW-MQ-SEND", "peer send failed: %s; message dropped",
                   nn_strerror(e));
            p->dropped_msgs++;
        } else {
            p->msgs_out++;
            p->bytes_out += m->len;
        }
        peer_queue_pop(p);
    }
    if (p->head == NULL && p->polling) {
        uv_poll_stop(&p->poll);
        p->polling = 0;
        if (p->drain_cb)
            p->drain_cb(p, p->arg);
    }
}

static void peer_poll_cb(uv_poll_t *h, int status, int events)
{
    mq_peer *p = container_of(h, mq_peer, poll);
    (void)events;
    if (status < 0) {
        LOG_RL(GW_LOG_WARN, "GW-MQ-POLL", "peer poll error: %s", uv_strerror(status));
        return;
    }
    if (p->active)
        peer_flush(p);
}

int mq_peer_open(mq_peer *p, uv_loop_t *loop, const char *url, const mq_peer_opts *opts,
                 mq_peer_drain_cb drain_cb, void *arg)
{
    memset(p, 0, sizeof *p);
    p->sock = -1;
    int rc;
    int s = nn_socket(AF_SP, NN_PUSH);
    if (s < 0)
        return -nn_errno();
    int ivl = opts && opts->reconnect_ivl_ms > 0 ? opts->reconnect_ivl_ms : 100;
    int ivl_max = opts && opts->reconnect_ivl_max_ms > 0 ? opts->reconnect_ivl_max_ms : 2000;
    int one = 1;
    if (nn_setsockopt(s, NN_SOL_SOCKET, NN_RECONNECT_IVL, &ivl, sizeof ivl) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) < 0 ||
        nn_setsockopt(s, NN_TCP, NN_TCP_NODELAY, &one, sizeof one) < 0)
        goto fail_errno;
    if (opts && opts->sndbuf > 0 &&
        nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDBUF, &opts->sndbuf, sizeof opts->sndbuf) < 0)
        goto fail_errno;
    if (nn_connect(s, url) < 0)
        goto fail_errno;
    int fd;
    if ((rc = nn_fd(s, NN_SNDFD, &fd)) < 0)
        goto fail_rc;
    if ((rc = uv_poll_init(loop, &p->poll, fd)) < 0)
        goto fail_rc;
    p->sock = s;
    p->drain_cb = drain_cb;
    p->arg = arg;
    p->active = 1;
    return 0;
fail_errno:
    rc = -nn_errno();
fail_rc:
    nn_close(s);
    return rc;
}

int mq_peer_send(mq_peer *p, const void *data, size_t len)
{
    if (!p->active)
        return -EPIPE;
    if (p->head == NULL) {
        if (nn_send(p->sock, data, len, NN_DONTWAIT) >= 0) {
            p->msgs_out++;
            p->bytes_out += len;
            return 0;
        }
        int e = nn_errno();
        if (e != EAGAIN && e != EINTR)
            return -e;
    }
    mq_msg *m = gw_malloc(sizeof *m + len);
    if (m == NULL)
        return -ENOMEM;
    m->len = len;
    memcpy(m->data, data, len);
    peer_queue_push(p, m);
    peer_start_poll(p);
    return 0;
}

void mq_peer_kick(mq_peer *p)
{
    if (p->active && p->head)
        peer_flush(p);
}

int mq_inbox_fd(const mq_inbox *ib)
{
    int fd = -1;
    size_t sz = sizeof fd;
    if (nn_getsockopt(ib->sock, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0)
        return -1;
    return fd;
}

long mq_inbox_recv(mq_inbox *ib, void **msg)
{
    if (!ib->active)
        return -EPIPE;
    int n = nn_recv(ib->sock, msg, NN_MSG, NN_DONTWAIT);
    if (n < 0)
        return -nn_errno();
    ib->msgs_in++;
    ib->bytes_in += (uint64_t)n;
    return n;
}

void mq_msg_free(void *msg)
{
    nn_freemsg(msg);
}

int mq_peer_try_send(mq_peer *p, const void *data, size_t len)
{
    if (!p->active)
        return -EPIPE;
    if (p->head != NULL)
        return -EAGAIN;
    if (nn_send(p->sock, data, len, NN_DONTWAIT) < 0)
        return -nn_errno();
    p->msgs_out++;
    p->bytes_out += len;
    return 0;
}

int mq_peer_connected(const mq_peer *p)
{
    if (!p->active)
        return 0;
    return nn_get_statistic(p->sock, NN_STAT_CURRENT_CONNECTIONS) > 0;
}

static void peer_closed(uv_handle_t *h)
{
    mq_peer *p = container_of((uv_poll_t *)h, mq_peer, poll);
    nn_close(p->sock);
    p->sock = -1;
    if (p->close_cb)
        p->close_cb(p);
}

void mq_peer_close(mq_peer *p, void (*close_cb)(mq_peer *))
{
    if (!p->active)
        return;
    p->active = 0;
    p->close_cb = close_cb;
    while (p->head) {
        p->dropped_msgs++;
        peer_queue_pop(p);
    }
    if (p->polling)
        uv_poll_stop(&p->poll);
    p->polling = 0;
    uv_close((uv_handle_t *)&p->poll, peer_closed);
}

void mq_tcp_url(char *out, size_t outlen, uint32_t ip, uint16_t port)
{
    char a[16];
    mq_format_ipv4(a, sizeof a, ip);
    snprintf(out, outlen, "tcp://%s:%u", a, (unsigned)port);
}

int mq_parse_ipv4(const char *s, uint32_t *ip)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -EINVAL;
    *ip = ntohl(a.s_addr);
    return 0;
}

void mq_format_ipv4(char *out, size_t outlen, uint32_t ip)
{
    snprintf(out, outlen, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

