/* ws.h - RFC 6455 WebSocket framing, server and client side. I/O-free.
 *
 * The codec never touches a socket and never blocks: bytes in, an event or bytes out.
 * No extension is negotiated, so every RSV bit set is a protocol error. All functions
 * may be called from any callback; a ws_reader is used by one thread at a time.
 *
 * Typical gateway loop (one ws_reader per connection, `in` = the connection's read buffer):
 *
 *     for (;;) {
 *         size_t used;
 *         ws_event ev;
 *         int t = ws_reader_next(&r, in.data, in.len, &used, &ev);
 *         if (t == WS_EV_NEED_MORE) { gw_buf_reserve(&in, ev.need - in.len); break; }
 *         ... handle t / ev (ev.data may point into `in`) ...
 *         gw_buf_consume(&in, used);    // only after ev.data is no longer needed
 *         if (t == WS_EV_ERROR || t == WS_EV_CLOSE) break;
 *     }
 */
#ifndef GW_WS_H
#define GW_WS_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never sent: "the close frame had no payload" */
    WS_CLOSE_ABNORMAL = 1006,  /* never sent: "the connection dropped without a close" */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_EXTENSION = 1010,
    WS_CLOSE_INTERNAL = 1011,
};

/* Largest frame header: 2 + 8 (64-bit length) + 4 (mask). */
#define WS_MAX_HEADER 14
/* Largest control frame payload. */
#define WS_MAX_CONTROL_PAYLOAD 125
/* Largest close frame ws_close_reply builds: 2 + 4 (mask) + 2 (code). */
#define WS_CLOSE_REPLY_MAX 8

/* ---- frame header ---------------------------------------------------------------------- */

typedef struct ws_frame {
    uint8_t fin;    /* 0 or 1 */
    uint8_t rsv;    /* RSV1..RSV3 as bits 2..0 ((byte0 >> 4) & 7) */
    uint8_t opcode; /* 0..15, unchecked */
    uint8_t masked; /* 0 or 1 */
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len; /* 2..14 */
} ws_frame;

/* Decodes the frame header at p[0..n) (read only) into *f. Structural checks only (the
 * reader does the protocol checks); non-minimal length encodings are accepted.
 * Returns the header length (2..14) when complete; 0 when more bytes are needed (then
 * f->header_len is the header length needed: 2 while n < 2, then the exact length);
 * -1 when a 64-bit length has its most significant bit set. */
int ws_frame_header_decode(const uint8_t *p, size_t n, ws_frame *f);

/* Writes a minimal frame header to out: FIN bit from `fin`, the low 4 bits of `opcode`,
 * the shortest length encoding of len (len must be < 2^63), and the mask key when
 * mask_or_null is not NULL (client frames; server frames are unmasked). The payload is not
 * touched: mask it separately with ws_mask(payload, len, mask, 0). Returns the header
 * length (2..14). */
size_t ws_frame_header_encode(uint8_t out[WS_MAX_HEADER], int fin, int opcode, uint64_t len,
                              const uint8_t *mask_or_null);

/* XORs p[0..n) in place with the key, starting at key byte key_offset % 4 (so a payload
 * can be unmasked in pieces: pass the payload offset of the piece). Word at a time. */
void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t key_offset);

/* Appends one whole frame (header, then payload masked with mask_or_null if not NULL) to
 * out. payload is read only (copied, never modified) and may be NULL when len == 0.
 * The caller chooses a fresh random mask key per client frame (this codec holds no RNG).
 * Returns 0, or -ENOMEM (out is then unchanged). */
int ws_frame_encode(gw_buf *out, int fin, int opcode, const void *payload, size_t len,
                    const uint8_t *mask_or_null);

/* Appends a close frame to out. code 0 means "no status" (empty payload; reason must then be
 * empty). Otherwise code must satisfy ws_close_code_valid(). The reason (read only, UTF-8)
 * is cut to at most 123 bytes at a character boundary. Returns 0, -EINVAL (bad code, or
 * a reason without a code, or a reason that is not valid UTF-8), or -ENOMEM; out is
 * unchanged on error. */
int ws_close_frame_encode(gw_buf *out, uint16_t code, const void *reason, size_t reason_len,
                          const uint8_t *mask_or_null);

/* Builds the close frame an endpoint sends in reply to a received close (the
 * WS_EV_CLOSE close_code, which it echoes), or to fail the connection (the WS_EV_ERROR
 * close_code). A code that may not be sent (1005 "no status", or anything
 * ws_close_code_valid() rejects) becomes 1000. Masked with mask_or_null when not NULL.
 * Returns the frame length (4, or 8 with a mask). */
size_t ws_close_reply(uint8_t out[WS_CLOSE_REPLY_MAX], uint16_t code, const uint8_t *mask_or_null);

/* Returns 1 when `code` may appear in a close frame on the wire: 1000-1003, 1007-1014
 * (1012-1014 are IANA-registered), 3000-4999. Else 0 (so 1004, 1005, 1006, 1015, <1000 and
 * 1016-2999 are invalid). */
int ws_close_code_valid(unsigned code);

/* ---- message reader ------------------------------------------------------------------ */

enum ws_event_type {
    WS_EV_NEED_MORE = 0, /* *consumed == 0; ev->need says how many bytes the caller needs */
    WS_EV_NONE,          /* a non-final fragment was absorbed; call again */
    WS_EV_MESSAGE,       /* ev->opcode TEXT or BINARY, ev->data/len the whole message */
    WS_EV_PING,          /* ev->data/len = ping payload (<= 125 bytes); answer with a pong */
    WS_EV_PONG,          /* ev->data/len = pong payload */
    WS_EV_CLOSE,         /* ev->close_code (1005: no payload); ev->data/len = UTF-8 reason */
    WS_EV_ERROR,         /* fail the connection: send a close with ev->close_code, then close */
};

typedef struct ws_event {
    int opcode;          /* opcode of the message or control frame (MESSAGE/PING/PONG/CLOSE) */
    const uint8_t *data; /* payload; never NULL for MESSAGE/PING/PONG/CLOSE (may be len 0) */
    size_t len;
    uint16_t close_code; /* CLOSE: the received code; ERROR: the code to send */
    size_t need;         /* NEED_MORE: total bytes, counted from buf[0], that the current
                            frame needs (header only while the header is incomplete, then
                            header + payload): reserve once, not repeatedly */
} ws_event;

typedef struct ws_reader {
    uint64_t max_message; /* limit on a message's payload length, fragments summed */
    gw_buf msg;           /* reassembly of a fragmented message */
    uint64_t msg_len;     /* payload bytes of the open fragmented message so far */
    uint64_t checked;     /* payload bytes of the incomplete current text frame already
                             validated (fail-fast UTF-8 while the frame is still arriving) */
    uint32_t utf8_state;  /* UTF-8 state of the open text message */
    uint8_t msg_opcode;   /* 0: no message open; TEXT/BINARY while a fragmented one is */
    uint8_t is_server;    /* 1: expect masked frames (server side); 0: unmasked (client side) */
    uint8_t release;      /* msg was handed out by the previous call; reset it on the next */
    uint16_t error;       /* nonzero: failed with this close code (sticky) */
} ws_reader;

/* Prepares an embedded reader (no allocation). Messages whose payload, fragments summed,
 * would exceed max_message_size bytes fail with 1009 (0 allows only empty messages; values
 * above SIZE_MAX/2 are clamped to it). is_server: 1 for the gateway side (client frames must
 * be masked), 0 for the client side (server frames must not be). Never fails. */
void ws_reader_init(ws_reader *r, uint64_t max_message_size, int is_server);

/* Frees the reassembly buffer. Safe on a zeroed reader and twice. */
void ws_reader_deinit(ws_reader *r);

/* Looks at buf[0..len): unmasks in place, so buf must be writable. Never blocks.
 *
 * Returns WS_EV_NEED_MORE with *consumed == 0 when buf does not yet hold a whole frame
 * (ev->need > len then is the total the frame needs). The caller keeps the bytes and calls
 * again with the same bytes at the same offset plus whatever arrived since: the reader
 * remembers how much of an incomplete text frame it has already validated, so invalid UTF-8
 * is reported as soon as it arrives (buf is not modified while NEED_MORE is returned).
 *
 * Otherwise consumes exactly one frame (*consumed = its length) and returns its event:
 * NONE, MESSAGE, PING, PONG or CLOSE (see enum ws_event_type). For an unfragmented message and
 * for control frames ev->data points INTO buf (zero copy, unmasked in place), valid as long
 * as those bytes are; for a fragmented message it points into the reader's reassembly
 * buffer, valid until the next call on this reader. Control frames may arrive between the
 * fragments of a message.
 *
 * WS_EV_ERROR (*consumed == 0) means the peer broke the protocol; ev->close_code is what to
 * send: 1002 (unmasked frame on the server side, masked on the client side, RSV bits, reserved
 * opcode, fragmented control frame or one longer than 125 bytes (a control frame must use the
 * 7-bit length field: RFC 6455 §5.2 requires minimal length encodings), continuation with no open
 * message, new data frame while a fragmented one is open, close payload of 1 byte, invalid
 * close code, 64-bit length with MSB set), 1007 (invalid UTF-8 in a text message or close
 * reason), 1009 (message longer than max_message_size, detected from the header before the
 * payload is buffered) or 1011 (out of memory reassembling a fragmented message). The error
 * is sticky: later calls return it again. buf may have been partly unmasked when ERROR is
 * returned. After CLOSE the caller stops feeding the reader. */
int ws_reader_next(ws_reader *r, uint8_t *buf, size_t len, size_t *consumed, ws_event *ev);

#endif
