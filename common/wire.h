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

#include <stddef.h>
#include <stdint.h>

#define WIRE_INFO_LEN 24

/* aux bits of EV_MESSAGE, CMD_SEND, CMD_SEND_ALL, CMD_SEND_UID, CMD_SEND_GROUP */
#define WIRE_MSG_BINARY 0x0001u /* WebSocket binary frame (else text) */
#define WIRE_MSG_RAW 0x0002u    /* bytes go to the socket as they are, unframed */

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

void wire_info_store(uint8_t out[WIRE_INFO_LEN], const wire_info *in);
/* Returns 0, or -EINVAL when len < WIRE_INFO_LEN or the family is not 4/6. */
int wire_info_load(const uint8_t *p, size_t len, wire_info *out);
/* Formats the remote address as text (out >= 46 bytes). */
void wire_info_addr(const wire_info *in, char *out, size_t outlen);

#endif
