/* proto.h - the internal binary protocol (gwp_): gateways, business workers,
 * registers and API clients talk in batches of frames, one batch per nanomsg
 * message. Pure codec: bytes in, frames out; nothing here touches a socket.
 *
 * Wire format (all integers big-endian):
 *
 *   batch header, GWP_HDR_LEN = 24 bytes
 *     0  u8  'G'            1  u8  'W'           2  u8  version (GWP_VERSION)
 *     3  u8  flags (GWP_F_*)                     4  u8  sender role (GWP_ROLE_*)
 *     5  u8  reserved, 0    6  u16 sender inbox port
 *     8  u32 sender IPv4   12  u64 sender boot nonce        20  u32 frame count
 *   then `frame count` frames, each GWP_FRAME_HDR_LEN = 20 bytes of header
 *     0  u8  cmd            1  u8  flags         2  u16 aux
 *     4  u32 conn (connection number on the gateway, or 0)
 *     8  u32 req (request id / sequence, or 0)
 *    12  u32 a_len (parameters)                 16  u32 b_len (body)
 *   followed by a_len bytes of `a` and b_len bytes of `b`;
 *   then, when flags has GWP_F_HMAC, a GWP_TAG_LEN = 32 byte HMAC-SHA256 tag over
 *   every byte from the magic to the end of the last frame (key: secret_key).
 *
 * A reader accepts a batch only if every byte is accounted for: known version
 * and flags, reserved byte 0, known role, exact frame count, every length inside
 * the message, no trailing bytes, and (with a key) a valid tag. Frame `cmd` and
 * frame `flags` are not checked here: unknown commands are the dispatcher's call.
 *
 * Threading: a gwp_writer, gwp_batch or gwp_key is used by one thread at a time.
 * Nothing here blocks; everything may be called from a libuv callback.
 */
#ifndef GW_PROTO_H
#define GW_PROTO_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

#define GWP_MAGIC0 'G'
#define GWP_MAGIC1 'W'
#define GWP_VERSION 1
#define GWP_HDR_LEN 24
#define GWP_FRAME_HDR_LEN 20
#define GWP_TAG_LEN 32

/* Batch flags. */
#define GWP_F_HMAC 0x01u  /* a GWP_TAG_LEN HMAC-SHA256 tag follows the last frame */
#define GWP_F_KNOWN 0x01u /* every flag this version understands */

/* Sender roles. A new role is a protocol change: raise GWP_ROLE_MAX with it. */
enum gwp_role {
    GWP_ROLE_REGISTER = 1,
    GWP_ROLE_GATEWAY = 2,
    GWP_ROLE_WORKER = 3,
    GWP_ROLE_CLIENT = 4,
    GWP_ROLE_MAX = 4,
};

/* Frame commands (u8). Ranges: 1-9 discovery, 10-29 gateway->worker events,
 * 30-59 worker/client->gateway commands, 60-89 queries, 90-99 control. */
enum gwp_cmd {
    GWP_NODE_HEARTBEAT = 1, /* node -> register */
    GWP_ROSTER = 2,         /* register -> nodes */

    GWP_EV_CONNECT = 10,
    GWP_EV_MESSAGE = 11,
    GWP_EV_CLOSE = 12,
    GWP_EV_WS_CONNECT = 13,

    GWP_CMD_SEND = 30, /* to one client */
    GWP_CMD_SEND_ALL = 31,
    GWP_CMD_CLOSE = 32,
    GWP_CMD_DESTROY = 33,
    GWP_CMD_SET_SESSION = 34,
    GWP_CMD_UPDATE_SESSION = 35,
    GWP_CMD_BIND_UID = 36,
    GWP_CMD_UNBIND_UID = 37,
    GWP_CMD_SEND_UID = 38,
    GWP_CMD_JOIN_GROUP = 39,
    GWP_CMD_LEAVE_GROUP = 40,
    GWP_CMD_UNGROUP = 41,
    GWP_CMD_SEND_GROUP = 42,
    GWP_CMD_WS_VERDICT = 43, /* on_websocket_connect's accept/reject */

    GWP_IDX = 50, /* gateway -> workers: uid/group presence deltas */

    GWP_QUERY = 60, /* GWP_Q_* query kinds: to be defined by the lead */
    GWP_REPLY = 61,

    GWP_PING = 90,
    GWP_PONG = 91,
    GWP_DRAIN = 92,
};

/* aux of GWP_DRAIN: a worker asks to drain (REQUEST), the gateway acknowledges on
 * the same ordered link after every event it had sent (ACK), the worker answers
 * the ACK once it has handled all of them (RELEASE): only then does the gateway
 * send its clients' new events to other workers, so a client's events stay in
 * order across the move. */
enum { GWP_DRAIN_REQUEST = 0, GWP_DRAIN_ACK = 1, GWP_DRAIN_RELEASE = 2 };

/* Reader and writer errors: negative, distinct from -errno values. The writer also
 * returns -ENOMEM, -EINVAL (misuse), -E2BIG (a length beyond u32) and -EIO
 * (libcrypto failure). */
enum gwp_err {
    GWP_EMAGIC = -1001,   /* not 'G','W' */
    GWP_EVERSION = -1002, /* a version this build does not speak */
    GWP_ETRUNC = -1003,   /* shorter than its header, a frame or its tag says */
    GWP_EHEADER = -1004,  /* unknown batch flag, reserved byte not 0, unknown role */
    GWP_EAUTH = -1005,    /* key configured: tag missing or wrong */
    GWP_ECOUNT = -1006,   /* fewer frames than the header's count */
    GWP_ETRAILING = -1007 /* bytes left after the counted frames (and tag) */
};

/* Static string for a gwp_err or a negative errno (never NULL). */
const char *gwp_strerror(int err);
/* Static name of a command, e.g. "CMD_SEND", or "UNKNOWN" (never NULL). */
const char *gwp_cmd_name(int cmd);

/* ---- key ---------------------------------------------------------------- */

/* The cluster secret prepared once for HMAC-SHA256 (an OpenSSL EVP_MAC context
 * reused for every batch: measured ~0.9 us cheaper per batch than one-shot HMAC()).
 * Init/deinit pair; a zeroed gwp_key is "no key" and safe to deinit. */
typedef struct gwp_key {
    struct evp_mac_ctx_st *ctx;
} gwp_key;

/* Copies the secret into OpenSSL's context (the caller keeps `secret`).
 * Returns 0, -EINVAL (len 0 or NULL), -ENOMEM or -EIO (libcrypto). On error k is
 * left zeroed. */
int gwp_key_init(gwp_key *k, const void *secret, size_t len);
/* Frees the context (OpenSSL cleanses the key); leaves k zeroed. */
void gwp_key_deinit(gwp_key *k);

/* ---- frames and the sender identity -------------------------------------- */

/* One frame. The reader fills it with pointers into the message (valid while the
 * message is); a and b are never NULL there, even with a length of 0. The writer
 * reads it: a/b may be NULL only with a length of 0. */
typedef struct gwp_frame {
    uint8_t cmd;
    uint8_t flags;
    uint16_t aux;
    uint32_t conn;
    uint32_t req;
    const uint8_t *a;
    size_t a_len;
    const uint8_t *b;
    size_t b_len;
} gwp_frame;

/* Who sent a batch: the header fields other than magic, version, flags, count. */
typedef struct gwp_sender {
    uint8_t role; /* GWP_ROLE_* */
    uint16_t port;
    uint32_t ip;
    uint64_t nonce;
} gwp_sender;

/* Bytes a frame takes in a batch (header + a + b). */
static inline uint64_t gwp_frame_wire_len(size_t a_len, size_t b_len)
{
    return (uint64_t)GWP_FRAME_HDR_LEN + (uint64_t)a_len + (uint64_t)b_len;
}

/* ---- writer --------------------------------------------------------------- */

/* Builds one batch at a time in an owned buffer. States: idle -> begin -> open
 * (add...) -> finish -> finished (bytes/take) -> reset or begin. The batch size
 * limit is the caller's: check gwp_writer_size() + gwp_frame_wire_len() +
 * GWP_TAG_LEN against it before adding, and finish/send/begin anew when full.
 * Embedded object; a zeroed writer is idle and valid. */
typedef struct gwp_writer {
    gw_buf buf;
    uint32_t count;
    int state;
} gwp_writer;

/* Makes w an idle, empty writer (same as zeroing it); allocates nothing. */
void gwp_writer_init(gwp_writer *w);
/* Frees the buffer; leaves w zeroed. Safe on a zeroed writer and twice. */
void gwp_writer_deinit(gwp_writer *w);

/* Starts a new batch from `s` (copied), dropping whatever the writer held but
 * keeping its capacity. Returns 0, -EINVAL (role outside 1..GWP_ROLE_MAX) or
 * -ENOMEM (writer left idle). */
int gwp_writer_begin(gwp_writer *w, const gwp_sender *s);

/* Appends frame `f`, copying f->a and f->b (which must not point into w's own
 * buffer: it may move). Returns 0, -EINVAL (not open, or a NULL pointer with a
 * non-zero length), -E2BIG (a length > UINT32_MAX or 2^32-1 frames already) or
 * -ENOMEM. On error the batch is unchanged. */
int gwp_writer_add(gwp_writer *w, const gwp_frame *f);

/* Like gwp_writer_add but copies nothing: writes the frame header from `f` (f->a
 * and f->b are ignored), reserves f->a_len and f->b_len bytes and returns where
 * they start in *a_out and *b_out (either may be NULL if not wanted). The caller
 * MUST fill all of them before the next call on w; the pointers are invalid after
 * any other call on w. Same returns as gwp_writer_add. */
int gwp_writer_add_inplace(gwp_writer *w, const gwp_frame *f, uint8_t **a_out, uint8_t **b_out);

/* Frames added to the open batch so far. */
uint32_t gwp_writer_count(const gwp_writer *w);
/* Bytes of the batch so far: header and frames (tag not included until finish). */
size_t gwp_writer_size(const gwp_writer *w);

/* Closes the batch: patches the frame count and, with a key, sets GWP_F_HMAC and
 * appends the tag. A batch of zero frames is valid. Returns 0, -EINVAL (not open),
 * -ENOMEM or -EIO (libcrypto); on error the batch is still open and unchanged. */
int gwp_writer_finish(gwp_writer *w, const gwp_key *key_or_null);

/* The finished batch, still owned by the writer (valid until the next call on w),
 * or NULL with *len = 0 if not finished. */
const uint8_t *gwp_writer_bytes(const gwp_writer *w, size_t *len);
/* Hands the finished batch to the caller, who frees it with gw_free; the writer
 * becomes idle with no buffer. NULL with *len = 0 if not finished. */
uint8_t *gwp_writer_take(gwp_writer *w, size_t *len);
/* Drops the batch (finished or not): idle, capacity kept unless it exceeds `keep`
 * bytes (then freed; pass SIZE_MAX to always keep). */
void gwp_writer_reset(gwp_writer *w, size_t keep);

/* ---- reader --------------------------------------------------------------- */

/* A validated batch: header fields, and a cursor over its frames. Points into the
 * message; valid while the message is. */
typedef struct gwp_batch {
    gwp_sender sender;
    uint8_t version;
    uint8_t flags;
    uint32_t count;     /* frames in the batch */
    const uint8_t *pos; /* next frame */
    const uint8_t *end; /* end of the last frame */
    uint32_t left;      /* frames not yet returned by gwp_batch_next */
} gwp_batch;

/* Validates the whole message before any frame is seen, in this order: magic
 * (GWP_EMAGIC), version (GWP_EVERSION), length >= GWP_HDR_LEN (GWP_ETRUNC), tag,
 * flags/reserved/role (GWP_EHEADER), then every frame (GWP_ETRUNC, GWP_ECOUNT,
 * GWP_ETRAILING).
 *  - With a key, the tag is checked right after the version, before any other
 *    field is read: GWP_F_HMAC must be set and the tag valid (constant-time
 *    compare), otherwise GWP_EAUTH (also for a message too short to hold a tag).
 *    So any change after the version byte gives GWP_EAUTH.
 *  - Without a key, a tagged batch is accepted and its tag ignored (it must still
 *    be present in full, else GWP_ETRUNC): a node without a secret can read a
 *    cluster that has one, so configure the key everywhere to enforce it.
 * Borrows msg (not copied). Returns 0 and fills b, a gwp_err, or -EIO (libcrypto
 * failure). On error b is zeroed (gwp_batch_next then returns 0). */
int gwp_batch_open(const uint8_t *msg, size_t len, const gwp_key *key_or_null, gwp_batch *b);

/* Next frame of an opened batch into f: returns 1, or 0 at the end. */
int gwp_batch_next(gwp_batch *b, gwp_frame *f);

/* ---- u32 lists (send-to-list, exclude lists) ------------------------------ */

/* A list of u32 (connection numbers) inside a frame section:
 * u32 n, then n u32, big-endian. Other parameters may follow it. */
static inline uint64_t gwp_u32list_wire_len(size_t n)
{
    return 4u + 4u * (uint64_t)n;
}

/* Appends the list to out. Returns 0, -E2BIG (n > UINT32_MAX) or -ENOMEM (out
 * unchanged). v may be NULL when n is 0. */
int gwp_u32list_append(gw_buf *out, const uint32_t *v, size_t n);
/* Writes the list at dst, which has room for gwp_u32list_wire_len(n) bytes
 * (e.g. from gwp_writer_add_inplace); n <= UINT32_MAX. Returns bytes written. */
size_t gwp_u32list_store(uint8_t *dst, const uint32_t *v, uint32_t n);

/* A list borrowed from a frame section. */
typedef struct gwp_u32list {
    const uint8_t *p; /* first element */
    uint32_t n;
} gwp_u32list;

/* Reads a list at the start of src[0..len): checks that its n elements fit.
 * Returns 0 and sets *l (and *used to the bytes it spans, if used is not NULL),
 * or GWP_ETRUNC. */
int gwp_u32list_view(const uint8_t *src, size_t len, gwp_u32list *l, size_t *used);
/* Element i (the caller checks i < l->n). */
static inline uint32_t gwp_u32list_at(const gwp_u32list *l, uint32_t i)
{
    return gw_load_be32(l->p + 4u * (size_t)i);
}

#endif
