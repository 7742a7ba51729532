#include "common/ws.h"
#include "common/utf8.h"

#include <errno.h>
#include <string.h>

/* ---- frame header ---------------------------------------------------------------------- */

int ws_frame_header_decode(const uint8_t *p, size_t n, ws_frame *f)
{
    if (n < 2) {
        f->header_len = 2;
        return 0;
    }
    uint8_t len7 = p[1] & 0x7F;
    size_t hl = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((p[1] & 0x80) ? 4 : 0);
    f->fin = p[0] >> 7;
    f->rsv = (p[0] >> 4) & 7;
    f->opcode = p[0] & 0x0F;
    f->masked = p[1] >> 7;
    f->header_len = hl;
    if (n < hl)
        return 0;
    size_t at = 2;
    if (len7 == 126) {
        f->payload_len = gw_load_be16(p + 2);
        at += 2;
    } else if (len7 == 127) {
        f->payload_len = gw_load_be64(p + 2);
        if (f->payload_len >> 63)
            return -1;
        at += 8;
    } else {
        f->payload_len = len7;
    }
    if (f->masked)
        memcpy(f->mask, p + at, 4);
    else
        memset(f->mask, 0, 4);
    return (int)hl;
}

size_t ws_frame_header_encode(uint8_t out[WS_MAX_HEADER], int fin, int opcode, uint64_t len,
                              const uint8_t *mask_or_null)
{
    size_t at = 2;
    uint8_t mbit = mask_or_null ? 0x80 : 0;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)(mbit | len);
    } else if (len <= 0xFFFF) {
        out[1] = mbit | 126;
        gw_store_be16(out + 2, (uint16_t)len);
        at += 2;
    } else {
        out[1] = mbit | 127;
        gw_store_be64(out + 2, len & ~(UINT64_C(1) << 63));
        at += 8;
    }
    if (mask_or_null) {
        memcpy(out + at, mask_or_null, 4);
        at += 4;
    }
    return at;
}

void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t key_offset)
{
    uint8_t k[8];
    for (size_t j = 0; j < 8; j++)
        k[j] = key[(key_offset + j) & 3];
    uint64_t kw;
    memcpy(&kw, k, 8);
    size_t i = 0;
    for (; n - i >= 16; i += 16) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        a ^= kw;
        b ^= kw;
        memcpy(p + i, &a, 8);
        memcpy(p + i + 8, &b, 8);
    }
    for (; i < n; i++)
        p[i] ^= k[i & 7];
}

int ws_frame_encode(gw_buf *out, int fin, int opcode, const void *payload, size_t len,
                    const uint8_t *mask_or_null)
{
    uint8_t h[WS_MAX_HEADER];
    if (len > SIZE_MAX - WS_MAX_HEADER)
        return -ENOMEM;
    size_t hl = ws_frame_header_encode(h, fin, opcode, len, mask_or_null);
    if (gw_buf_reserve(out, hl + len))
        return -ENOMEM;
    memcpy(out->data + out->len, h, hl);
    if (len) {
        uint8_t *dst = out->data + out->len + hl;
        memcpy(dst, payload, len);
        if (mask_or_null)
            ws_mask(dst, len, mask_or_null, 0);
    }
    out->len += hl + len;
    return 0;
}

int ws_close_code_valid(unsigned code)
{
    /* RFC 6455 7.4 plus the codes IANA registered since (1012 service restart,
     * 1013 try again later, 1014 bad gateway), which browsers may send. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

int ws_close_frame_encode(gw_buf *out, uint16_t code, const void *reason, size_t reason_len,
                          const uint8_t *mask_or_null)
{
    uint8_t pl[WS_MAX_CONTROL_PAYLOAD];
    size_t n = 0;
    if (code == 0) {
        if (reason_len)
            return -EINVAL;
    } else {
        if (!ws_close_code_valid(code))
            return -EINVAL;
        if (!utf8_is_valid(reason, reason_len))
            return -EINVAL;
        if (reason_len > WS_MAX_CONTROL_PAYLOAD - 2)
            reason_len = utf8_valid_prefix(reason, WS_MAX_CONTROL_PAYLOAD - 2);
        gw_store_be16(pl, code);
        if (reason_len)
            memcpy(pl + 2, reason, reason_len);
        n = 2 + reason_len;
    }
    return ws_frame_encode(out, 1, WS_OP_CLOSE, pl, n, mask_or_null);
}

size_t ws_close_reply(uint8_t out[WS_CLOSE_REPLY_MAX], uint16_t code, const uint8_t *mask_or_null)
{
    if (!ws_close_code_valid(code))
        code = WS_CLOSE_NORMAL;
    size_t hl = 2;
    out[0] = 0x80 | WS_OP_CLOSE;
    out[1] = (uint8_t)((mask_or_null ? 0x80 : 0) | 2);
    if (mask_or_null) {
        memcpy(out + 2, mask_or_null, 4);
        hl += 4;
    }
    gw_store_be16(out + hl, code);
    if (mask_or_null)
        ws_mask(out + hl, 2, mask_or_null, 0);
    return hl + 2;
}

/* ---- message reader ------------------------------------------------------------------ */

/* Reassembly memory kept between messages; a larger buffer is freed after delivery. */
#define WS_KEEP_REASSEMBLY 4096

static const uint8_t empty_payload[1];

void ws_reader_init(ws_reader *r, uint64_t max_message_size, int is_server)
{
    memset(r, 0, sizeof *r);
    if (max_message_size > SIZE_MAX / 2)
        max_message_size = SIZE_MAX / 2;
    r->max_message = max_message_size;
    r->is_server = is_server ? 1 : 0;
    r->utf8_state = UTF8_ACCEPT;
}

void ws_reader_deinit(ws_reader *r)
{
    gw_buf_deinit(&r->msg);
    r->msg_len = 0;
    r->msg_opcode = 0;
    r->release = 0;
    r->checked = 0;
    r->utf8_state = UTF8_ACCEPT;
}

static int fail(ws_reader *r, ws_event *ev, uint16_t code)
{
    r->error = code;
    ev->opcode = 0;
    ev->close_code = code;
    return WS_EV_ERROR;
}

/* Checks what the first two header bytes alone decide, so a hostile frame fails before
 * the rest of its header or payload arrives. Returns 0 or the close code. */
static uint16_t check_first_bytes(const ws_reader *r, uint8_t b0, uint8_t b1)
{
    unsigned op = b0 & 0x0F, fin = b0 >> 7, masked = b1 >> 7, len7 = b1 & 0x7F;
    if (b0 & 0x70)
        return WS_CLOSE_PROTOCOL; /* RSV bits: no extension negotiated */
    if (masked != r->is_server)
        return WS_CLOSE_PROTOCOL;
    switch (op) {
    case WS_OP_CONT:
        if (r->msg_opcode == 0)
            return WS_CLOSE_PROTOCOL;
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (r->msg_opcode != 0)
            return WS_CLOSE_PROTOCOL;
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        /* Control frames: never fragmented, <= 125 bytes, and (the length must be minimal)
         * so always in the 7-bit length field. */
        if (!fin || len7 > WS_MAX_CONTROL_PAYLOAD)
            return WS_CLOSE_PROTOCOL;
        break;
    default:
        return WS_CLOSE_PROTOCOL; /* reserved opcodes 3-7, 0xB-0xF */
    }
    return 0;
}

/* Unmasks a copy of payload bytes [from, to) in small chunks and feeds them to the
 * message's UTF-8 state, leaving buf untouched. Returns 0, or -1 on invalid UTF-8. */
static int check_partial_text(ws_reader *r, const ws_frame *f, const uint8_t *payload,
                              uint64_t from, uint64_t to)
{
    uint8_t tmp[256];
    while (from < to) {
        size_t n = to - from > sizeof tmp ? sizeof tmp : (size_t)(to - from);
        memcpy(tmp, payload + from, n);
        if (f->masked)
            ws_mask(tmp, n, f->mask, (size_t)(from & 3));
        r->utf8_state = utf8_validate(r->utf8_state, tmp, n);
        if (r->utf8_state == UTF8_REJECT)
            return -1;
        from += n;
    }
    return 0;
}

static int on_close_frame(ws_reader *r, uint8_t *pl, size_t n, ws_event *ev)
{
    ev->opcode = WS_OP_CLOSE;
    if (n == 0) {
        ev->close_code = WS_CLOSE_NO_STATUS;
        ev->data = pl;
        ev->len = 0;
        return WS_EV_CLOSE;
    }
    if (n == 1)
        return fail(r, ev, WS_CLOSE_PROTOCOL);
    uint16_t code = gw_load_be16(pl);
    if (!ws_close_code_valid(code))
        return fail(r, ev, WS_CLOSE_PROTOCOL);
    if (!utf8_is_valid(pl + 2, n - 2))
        return fail(r, ev, WS_CLOSE_INVALID_DATA);
    ev->close_code = code;
    ev->data = pl + 2;
    ev->len = n - 2;
    return WS_EV_CLOSE;
}

int ws_reader_next(ws_reader *r, uint8_t *buf, size_t len, size_t *consumed, ws_event *ev)
{
    memset(ev, 0, sizeof *ev);
    *consumed = 0;
    if (r->error) {
        ev->close_code = r->error;
        return WS_EV_ERROR;
    }
    if (r->release) {
        /* The previous call handed out the reassembled message; it is dead now. */
        gw_buf_reset(&r->msg, WS_KEEP_REASSEMBLY);
        r->release = 0;
    }
    if (len >= 2) {
        uint16_t code = check_first_bytes(r, buf[0], buf[1]);
        if (code)
            return fail(r, ev, code);
    }

    ws_frame f;
    int hl = ws_frame_header_decode(buf, len, &f);
    if (hl < 0)
        return fail(r, ev, WS_CLOSE_PROTOCOL);
    if (hl == 0) {
        ev->need = f.header_len;
        return WS_EV_NEED_MORE;
    }

    int is_data = f.opcode < WS_OP_CLOSE;
    uint64_t plen = f.payload_len;
    if (is_data) {
        uint64_t before = f.opcode == WS_OP_CONT ? r->msg_len : 0;
        /* before <= max_message <= SIZE_MAX / 2, so the sum cannot wrap */
        if (plen > r->max_message || before + plen > r->max_message)
            return fail(r, ev, WS_CLOSE_TOO_BIG);
    }
    /* plen <= SIZE_MAX / 2 here (control frames: <= 125). */
    size_t total = (size_t)hl + (size_t)plen;
    uint8_t *pl = buf + hl;
    int is_text = f.opcode == WS_OP_TEXT || (f.opcode == WS_OP_CONT && r->msg_opcode == WS_OP_TEXT);

    if (len < total) {
        ev->need = total;
        if (is_text) {
            uint64_t avail = len - (size_t)hl;
            if (avail > r->checked) {
                if (check_partial_text(r, &f, pl, r->checked, avail))
                    return fail(r, ev, WS_CLOSE_INVALID_DATA);
                r->checked = avail;
            }
        }
        return WS_EV_NEED_MORE;
    }

    /* The whole frame is here. */
    size_t n = (size_t)plen;
    size_t done = is_text && r->checked <= plen ? (size_t)r->checked : 0;
    if (f.masked)
        ws_mask(pl, n, f.mask, 0);
    r->checked = 0;
    if (is_text) {
        r->utf8_state = utf8_validate(r->utf8_state, pl + done, n - done);
        if (r->utf8_state == UTF8_REJECT || (f.fin && r->utf8_state != UTF8_ACCEPT))
            return fail(r, ev, WS_CLOSE_INVALID_DATA);
    }

    switch (f.opcode) {
    case WS_OP_PING:
    case WS_OP_PONG:
        ev->opcode = f.opcode;
        ev->data = pl;
        ev->len = n;
        *consumed = total;
        return f.opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
    case WS_OP_CLOSE: {
        int t = on_close_frame(r, pl, n, ev);
        if (t == WS_EV_CLOSE)
            *consumed = total;
        return t;
    }
    default:
        break;
    }

    if (f.opcode != WS_OP_CONT && f.fin) {
        /* Unfragmented message: zero copy. */
        ev->opcode = f.opcode;
        ev->data = pl;
        ev->len = n;
        r->utf8_state = UTF8_ACCEPT;
        *consumed = total;
        return WS_EV_MESSAGE;
    }

    if (gw_buf_append(&r->msg, pl, n))
        return fail(r, ev, WS_CLOSE_INTERNAL);
    if (f.opcode != WS_OP_CONT) {
        r->msg_opcode = f.opcode;
        r->msg_len = 0;
    }
    r->msg_len += n;
    *consumed = total;
    if (!f.fin)
        return WS_EV_NONE;

    ev->opcode = r->msg_opcode;
    ev->data = r->msg.data ? r->msg.data : empty_payload;
    ev->len = r->msg.len;
    r->msg_opcode = 0;
    r->msg_len = 0;
    r->utf8_state = UTF8_ACCEPT;
    r->release = 1;
    return WS_EV_MESSAGE;
}
