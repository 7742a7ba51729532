#include "common/proto.h"
#include "common/alloc.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

enum { W_IDLE = 0, W_OPEN = 1, W_FINISHED = 2 };

/* Offsets in the batch header. */
enum {
    H_MAGIC = 0,
    H_VERSION = 2,
    H_FLAGS = 3,
    H_ROLE = 4,
    H_RESERVED = 5,
    H_PORT = 6,
    H_IP = 8,
    H_NONCE = 12,
    H_COUNT = 20,
};

/* Offsets in the frame header. */
enum {
    F_CMD = 0,
    F_FLAGS = 1,
    F_AUX = 2,
    F_CONN = 4,
    F_REQ = 8,
    F_ALEN = 12,
    F_BLEN = 16,
};

const char *gwp_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case GWP_EMAGIC:
        return "not a gwp batch (bad magic)";
    case GWP_EVERSION:
        return "unsupported gwp version";
    case GWP_ETRUNC:
        return "truncated batch";
    case GWP_EHEADER:
        return "bad batch header (flags, reserved byte or role)";
    case GWP_EAUTH:
        return "batch authentication failed (tag missing or wrong)";
    case GWP_ECOUNT:
        return "fewer frames than the batch count";
    case GWP_ETRAILING:
        return "trailing bytes after the last frame";
    case -ENOMEM:
        return "out of memory";
    case -EINVAL:
        return "invalid argument";
    case -E2BIG:
        return "length too large";
    case -EIO:
        return "crypto library failure";
    default:
        return "unknown error";
    }
}

const char *gwp_cmd_name(int cmd)
{
    switch (cmd) {
    case GWP_NODE_HEARTBEAT:
        return "NODE_HEARTBEAT";
    case GWP_ROSTER:
        return "ROSTER";
    case GWP_EV_CONNECT:
        return "EV_CONNECT";
    case GWP_EV_MESSAGE:
        return "EV_MESSAGE";
    case GWP_EV_CLOSE:
        return "EV_CLOSE";
    case GWP_EV_WS_CONNECT:
        return "EV_WS_CONNECT";
    case GWP_CMD_SEND:
        return "CMD_SEND";
    case GWP_CMD_SEND_ALL:
        return "CMD_SEND_ALL";
    case GWP_CMD_CLOSE:
        return "CMD_CLOSE";
    case GWP_CMD_DESTROY:
        return "CMD_DESTROY";
    case GWP_CMD_SET_SESSION:
        return "CMD_SET_SESSION";
    case GWP_CMD_UPDATE_SESSION:
        return "CMD_UPDATE_SESSION";
    case GWP_CMD_BIND_UID:
        return "CMD_BIND_UID";
    case GWP_CMD_UNBIND_UID:
        return "CMD_UNBIND_UID";
    case GWP_CMD_SEND_UID:
        return "CMD_SEND_UID";
    case GWP_CMD_JOIN_GROUP:
        return "CMD_JOIN_GROUP";
    case GWP_CMD_LEAVE_GROUP:
        return "CMD_LEAVE_GROUP";
    case GWP_CMD_UNGROUP:
        return "CMD_UNGROUP";
    case GWP_CMD_SEND_GROUP:
        return "CMD_SEND_GROUP";
    case GWP_CMD_WS_VERDICT:
        return "CMD_WS_VERDICT";
    case GWP_IDX:
        return "IDX";
    case GWP_QUERY:
        return "QUERY";
    case GWP_REPLY:
        return "REPLY";
    case GWP_PING:
        return "PING";
    case GWP_PONG:
        return "PONG";
    case GWP_DRAIN:
        return "DRAIN";
    default:
        return "UNKNOWN";
    }
}

/* ---- key ------------------------------------------------------------------ */

int gwp_key_init(gwp_key *k, const void *secret, size_t len)
{
    k->ctx = NULL;
    if (secret == NULL || len == 0)
        return -EINVAL;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        return -EIO;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (ctx == NULL)
        return -ENOMEM;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_init(ctx, secret, len, params)) {
        EVP_MAC_CTX_free(ctx);
        return -EIO;
    }
    k->ctx = ctx;
    return 0;
}

void gwp_key_deinit(gwp_key *k)
{
    EVP_MAC_CTX_free(k->ctx);
    k->ctx = NULL;
}

/* HMAC-SHA256 of p[0..n) into out. Re-initialising with a NULL key reuses the key
 * prepared by gwp_key_init (its inner/outer pad state) instead of rehashing it. */
static int key_mac(const gwp_key *k, const uint8_t *p, size_t n, uint8_t out[GWP_TAG_LEN])
{
    size_t outl = 0;
    if (k->ctx == NULL || !EVP_MAC_init(k->ctx, NULL, 0, NULL) || !EVP_MAC_update(k->ctx, p, n) ||
        !EVP_MAC_final(k->ctx, out, &outl, GWP_TAG_LEN) || outl != GWP_TAG_LEN)
        return -EIO;
    return 0;
}

/* ---- writer --------------------------------------------------------------- */

void gwp_writer_init(gwp_writer *w)
{
    gw_buf_init(&w->buf);
    w->count = 0;
    w->state = W_IDLE;
}

void gwp_writer_deinit(gwp_writer *w)
{
    gw_buf_deinit(&w->buf);
    gwp_writer_init(w);
}

int gwp_writer_begin(gwp_writer *w, const gwp_sender *s)
{
    w->buf.len = 0;
    w->count = 0;
    w->state = W_IDLE;
    if (s->role < 1 || s->role > GWP_ROLE_MAX)
        return -EINVAL;
    int rc = gw_buf_reserve(&w->buf, GWP_HDR_LEN);
    if (rc)
        return rc;
    uint8_t *h = w->buf.data;
    h[H_MAGIC] = GWP_MAGIC0;
    h[H_MAGIC + 1] = GWP_MAGIC1;
    h[H_VERSION] = GWP_VERSION;
    h[H_FLAGS] = 0;
    h[H_ROLE] = s->role;
    h[H_RESERVED] = 0;
    gw_store_be16(h + H_PORT, s->port);
    gw_store_be32(h + H_IP, s->ip);
    gw_store_be64(h + H_NONCE, s->nonce);
    gw_store_be32(h + H_COUNT, 0);
    w->buf.len = GWP_HDR_LEN;
    w->state = W_OPEN;
    return 0;
}

/* Checks, reserves and writes the frame header; *at = start of the a section. */
static int writer_frame(gwp_writer *w, const gwp_frame *f, uint8_t **at)
{
    if (w->state != W_OPEN)
        return -EINVAL;
    if (f->a_len > UINT32_MAX || f->b_len > UINT32_MAX || w->count == UINT32_MAX)
        return -E2BIG;
    uint64_t need = gwp_frame_wire_len(f->a_len, f->b_len);
    if (need > SIZE_MAX)
        return -E2BIG;
    int rc = gw_buf_reserve(&w->buf, (size_t)need);
    if (rc)
        return rc;
    uint8_t *h = w->buf.data + w->buf.len;
    h[F_CMD] = f->cmd;
    h[F_FLAGS] = f->flags;
    gw_store_be16(h + F_AUX, f->aux);
    gw_store_be32(h + F_CONN, f->conn);
    gw_store_be32(h + F_REQ, f->req);
    gw_store_be32(h + F_ALEN, (uint32_t)f->a_len);
    gw_store_be32(h + F_BLEN, (uint32_t)f->b_len);
    w->buf.len += (size_t)need;
    w->count++;
    *at = h + GWP_FRAME_HDR_LEN;
    return 0;
}

int gwp_writer_add(gwp_writer *w, const gwp_frame *f)
{
    if ((f->a == NULL && f->a_len) || (f->b == NULL && f->b_len))
        return -EINVAL;
    uint8_t *p;
    int rc = writer_frame(w, f, &p);
    if (rc)
        return rc;
    if (f->a_len)
        memcpy(p, f->a, f->a_len);
    if (f->b_len)
        memcpy(p + f->a_len, f->b, f->b_len);
    return 0;
}

int gwp_writer_add_inplace(gwp_writer *w, const gwp_frame *f, uint8_t **a_out, uint8_t **b_out)
{
    uint8_t *p;
    int rc = writer_frame(w, f, &p);
    if (rc)
        return rc;
    if (a_out)
        *a_out = p;
    if (b_out)
        *b_out = p + f->a_len;
    return 0;
}

uint32_t gwp_writer_count(const gwp_writer *w)
{
    return w->count;
}

size_t gwp_writer_size(const gwp_writer *w)
{
    return w->buf.len;
}

int gwp_writer_finish(gwp_writer *w, const gwp_key *key_or_null)
{
    if (w->state != W_OPEN)
        return -EINVAL;
    uint8_t *h = w->buf.data;
    gw_store_be32(h + H_COUNT, w->count);
    if (key_or_null) {
        int rc = gw_buf_reserve(&w->buf, GWP_TAG_LEN);
        if (rc)
            return rc;
        h = w->buf.data;
        h[H_FLAGS] |= GWP_F_HMAC;
        rc = key_mac(key_or_null, h, w->buf.len, h + w->buf.len);
        if (rc) {
            h[H_FLAGS] &= (uint8_t)~GWP_F_HMAC;
            return rc;
        }
        w->buf.len += GWP_TAG_LEN;
    }
    w->state = W_FINISHED;
    return 0;
}

const uint8_t *gwp_writer_bytes(const gwp_writer *w, size_t *len)
{
    if (w->state != W_FINISHED) {
        *len = 0;
        return NULL;
    }
    *len = w->buf.len;
    return w->buf.data;
}

uint8_t *gwp_writer_take(gwp_writer *w, size_t *len)
{
    if (w->state != W_FINISHED) {
        *len = 0;
        return NULL;
    }
    uint8_t *p = gw_buf_take(&w->buf, len);
    w->count = 0;
    w->state = W_IDLE;
    return p;
}

void gwp_writer_reset(gwp_writer *w, size_t keep)
{
    gw_buf_reset(&w->buf, keep);
    w->count = 0;
    w->state = W_IDLE;
}

/* ---- reader --------------------------------------------------------------- */

int gwp_batch_open(const uint8_t *msg, size_t len, const gwp_key *key_or_null, gwp_batch *b)
{
    memset(b, 0, sizeof *b);
    if ((len >= 1 && msg[0] != GWP_MAGIC0) || (len >= 2 && msg[1] != GWP_MAGIC1))
        return GWP_EMAGIC;
    if (len >= 3 && msg[H_VERSION] != GWP_VERSION)
        return GWP_EVERSION;
    if (len < GWP_HDR_LEN)
        return GWP_ETRUNC;
    uint8_t flags = msg[H_FLAGS];
    size_t body_end = len; /* end of the last frame */
    if (key_or_null) {
        /* Authenticate before reading any other field. */
        if (!(flags & GWP_F_HMAC) || len < GWP_HDR_LEN + GWP_TAG_LEN)
            return GWP_EAUTH;
        body_end = len - GWP_TAG_LEN;
        uint8_t tag[GWP_TAG_LEN];
        int rc = key_mac(key_or_null, msg, body_end, tag);
        if (rc)
            return rc;
        if (CRYPTO_memcmp(tag, msg + body_end, GWP_TAG_LEN) != 0)
            return GWP_EAUTH;
    }
    uint8_t role = msg[H_ROLE];
    if ((flags & ~GWP_F_KNOWN) || msg[H_RESERVED] != 0 || role < 1 || role > GWP_ROLE_MAX)
        return GWP_EHEADER;
    if (!key_or_null && (flags & GWP_F_HMAC)) {
        if (len < GWP_HDR_LEN + GWP_TAG_LEN)
            return GWP_ETRUNC;
        body_end = len - GWP_TAG_LEN;
    }

    uint32_t count = gw_load_be32(msg + H_COUNT);
    const uint8_t *p = msg + GWP_HDR_LEN;
    const uint8_t *end = msg + body_end;
    for (uint32_t i = 0; i < count; i++) {
        size_t room = (size_t)(end - p);
        if (room == 0)
            return GWP_ECOUNT;
        if (room < GWP_FRAME_HDR_LEN)
            return GWP_ETRUNC;
        uint64_t flen = gwp_frame_wire_len(gw_load_be32(p + F_ALEN), gw_load_be32(p + F_BLEN));
        if (flen > room)
            return GWP_ETRUNC;
        p += flen;
    }
    if (p != end)
        return GWP_ETRAILING;

    b->sender.role = role;
    b->sender.port = gw_load_be16(msg + H_PORT);
    b->sender.ip = gw_load_be32(msg + H_IP);
    b->sender.nonce = gw_load_be64(msg + H_NONCE);
    b->version = msg[H_VERSION];
    b->flags = flags;
    b->count = count;
    b->pos = msg + GWP_HDR_LEN;
    b->end = end;
    b->left = count;
    return 0;
}

int gwp_batch_next(gwp_batch *b, gwp_frame *f)
{
    /* gwp_batch_open proved every frame fits; the checks below only guard a
     * gwp_batch that did not come from a successful open. */
    if (b->left == 0 || b->pos == NULL || (size_t)(b->end - b->pos) < GWP_FRAME_HDR_LEN)
        return 0;
    const uint8_t *h = b->pos;
    uint32_t a_len = gw_load_be32(h + F_ALEN);
    uint32_t b_len = gw_load_be32(h + F_BLEN);
    uint64_t flen = gwp_frame_wire_len(a_len, b_len);
    if (flen > (size_t)(b->end - h))
        return 0;
    f->cmd = h[F_CMD];
    f->flags = h[F_FLAGS];
    f->aux = gw_load_be16(h + F_AUX);
    f->conn = gw_load_be32(h + F_CONN);
    f->req = gw_load_be32(h + F_REQ);
    f->a = h + GWP_FRAME_HDR_LEN;
    f->a_len = a_len;
    f->b = f->a + a_len;
    f->b_len = b_len;
    b->pos = h + flen;
    b->left--;
    return 1;
}

/* ---- u32 lists ------------------------------------------------------------ */

int gwp_u32list_append(gw_buf *out, const uint32_t *v, size_t n)
{
    if (n > UINT32_MAX || gwp_u32list_wire_len(n) > SIZE_MAX)
        return -E2BIG;
    size_t need = (size_t)gwp_u32list_wire_len(n);
    int rc = gw_buf_reserve(out, need);
    if (rc)
        return rc;
    gwp_u32list_store(out->data + out->len, v, (uint32_t)n);
    out->len += need;
    return 0;
}

size_t gwp_u32list_store(uint8_t *dst, const uint32_t *v, uint32_t n)
{
    gw_store_be32(dst, n);
    for (uint32_t i = 0; i < n; i++)
        gw_store_be32(dst + 4 + 4 * (size_t)i, v[i]);
    return (size_t)gwp_u32list_wire_len(n);
}

int gwp_u32list_view(const uint8_t *src, size_t len, gwp_u32list *l, size_t *used)
{
    l->p = NULL;
    l->n = 0;
    if (len < 4)
        return GWP_ETRUNC;
    uint32_t n = gw_load_be32(src);
    uint64_t need = gwp_u32list_wire_len(n);
    if (need > len)
        return GWP_ETRUNC;
    l->p = src + 4;
    l->n = n;
    if (used)
        *used = (size_t)need;
    return 0;
}
