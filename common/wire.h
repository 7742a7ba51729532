/* wire.h - the application layer of the internal protocol: what the frames
 * between gateways and business workers mean (proto.h is the framing).
 *
 * Events, gateway -> the client's worker (cmd GWP_EV_*):
 *   conn = connection number, req = session write-back sequence applied so far,
 *   aux  = WIRE_MSG_* bits (EV_MESSAGE),
 *   a    = a WIRE_INFO_LEN client-info block, then the session JSON (may be empty),
 *   b    = EV_MESSAGE: the message; EV_WS_CONNECT: the request as JSON
 *          {"method","uri","path","query","headers":{..},"cookies":{..}}.
 * Commands, worker -> gateway (cmd GWP_CMD_*): see the table in docs/PROTOCOL.md.
 *
 * Client-info block (WIRE_INFO_LEN = 24 bytes, big-endian):
 *   0 u8 protocol (gw_proto)   1 u8 address family (4 or 6)   2 u16 remote port
 *   4 u16 gateway listener port   6 u16 reserved (0)   8 u8[16] remote address
 *   (IPv4: the first 4 bytes).
 * Pure functions.
 */
#ifndef GW_WIRE_H
#define GW_WIRE_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_INFO_LEN 24

/* aux bits of EV_MESSAGE, CMD_SEND, CMD_SEND_ALL, CMD_SEND_UID, CMD_SEND_GROUP */
#define WIRE_MSG_BINARY 0x0001u /* WebSocket binary frame (else text) */
#define WIRE_MSG_RAW 0x0002u    /* bytes go to the socket as they are, unframed */

/* aux bit of EV_WS_CONNECT: the gateway waits for a CMD_WS_VERDICT before 101 */
#define WIRE_WS_AUTH 0x0100u

/* frame flags of CMD_SEND_ALL / CMD_SEND_GROUP: lists at the start of `a` */
#define WIRE_F_INCLUDE 0x01u /* a u32 list of connection numbers to send to */
#define WIRE_F_EXCLUDE 0x02u /* a u32 list of connection numbers to skip */

/* frame flag of CMD_UPDATE_SESSION / CMD_SET_SESSION: a write-back of the client's
 * bound worker, counted by the gateway (reported back in events' `req`) */
#define WIRE_F_SEQ 0x04u

/* frame flags of CMD_CLOSE */
#define WIRE_F_CLOSE_BINARY 0x01u /* the last message (b) is binary */

typedef struct wire_info {
    uint8_t proto;
    uint8_t family; /* 4 or 6 */
    uint16_t remote_port;
    uint16_t gateway_port;
    uint8_t addr[16];
} wire_info;

/* Longest uid or group name (bytes). */
#define WIRE_NAME_MAX 1024

/* Presence index entries (GWP_IDX). */
enum wire_idx_op { WIRE_IDX_ADD = 1, WIRE_IDX_REMOVE = 2, WIRE_IDX_RESET = 3 };
enum wire_idx_kind { WIRE_KIND_UID = 1, WIRE_KIND_GROUP = 2 };

/* Query kinds (GWP_QUERY aux), see docs/PROTOCOL.md. */
enum wire_query {
    WIRE_Q_IS_ONLINE = 1,
    WIRE_Q_SESSION = 2,
    WIRE_Q_UID_OF = 3,
    WIRE_Q_COUNT = 4,
    WIRE_Q_CLIENTS = 5,
    WIRE_Q_SESSIONS = 6,
    WIRE_Q_CLIENTS_BY_UID = 7,
    WIRE_Q_GROUPS = 8,
    WIRE_Q_UIDS = 9,
    WIRE_Q_GROUP_COUNTS = 10,
    WIRE_Q_GROUP_UIDS = 11,
    WIRE_Q_GROUP_CLIENTS = 12,
    WIRE_Q_CONNECTIONS = 13,
    WIRE_Q_MAX = 13,
};

/* 1 when the query kind asks one gateway (about one client). */
static inline int wire_query_single(int kind)
{
    return kind >= WIRE_Q_IS_ONLINE && kind <= WIRE_Q_UID_OF;
}

void wire_info_store(uint8_t out[WIRE_INFO_LEN], const wire_info *in);
/* Returns 0, or -EINVAL when len < WIRE_INFO_LEN or the family is not 4/6. */
int wire_info_load(const uint8_t *p, size_t len, wire_info *out);
/* Formats the remote address as text (out >= 46 bytes). */
void wire_info_addr(const wire_info *in, char *out, size_t outlen);

/* ---- name lists: u32 n, then n x (u16 len, bytes) ---- */

/* Bytes a name list takes. */
size_t wire_names_size(const char *const *names, const size_t *lens, size_t n);
/* Writes a name list at dst (room for wire_names_size bytes); lens may be NULL
 * (strlen is used). Returns bytes written. */
size_t wire_names_store(uint8_t *dst, const char *const *names, const size_t *lens, size_t n);

typedef struct wire_names {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t left;
} wire_names;

/* Validates a name list at the start of src[0..len) (every name 1..WIRE_NAME_MAX
 * bytes, all inside) and prepares iteration; *used gets its size. 0 or -EINVAL. */
int wire_names_open(const uint8_t *src, size_t len, wire_names *it, size_t *used);
/* Next name (pointer into the list, not NUL-terminated): 1, or 0 at the end. */
int wire_names_next(wire_names *it, const char **name, size_t *len);
static inline uint32_t wire_names_count(const wire_names *it)
{
    return it->left;
}

/* ---- presence index entries: u8 op, u8 kind, u16 len, name ---- */

int wire_idx_append(gw_buf *out, int op, int kind, const char *name, size_t len);

typedef struct wire_idx_entry {
    int op;
    int kind;
    const char *name;
    size_t len;
} wire_idx_entry;

/* Iterates entries of src[0..len) from *pos: 1 with *e set, 0 at the end, -EINVAL
 * for a malformed entry (iteration stops). */
int wire_idx_next(const uint8_t *src, size_t len, size_t *pos, wire_idx_entry *e);

#endif
