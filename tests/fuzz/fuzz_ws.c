/* fuzz_ws - libFuzzer target for the WebSocket reader (common/ws.c) and frame encoder.
 *
 * Input: byte 0 picks the message size limit and the read pattern, the rest is the byte
 * stream a peer sends. The stream goes to a server-side and a client-side reader, once in a
 * single read and once in pieces (first cut derived from byte 0, then chunks of a size
 * derived from it), like a socket delivers it. Checked: the documented contract of
 * ws_reader_next (consumed, need, close codes, limits, UTF-8 of text), and that both reads
 * give exactly the same events. */
#include "common/buf.h"
#include "common/utf8.h"
#include "common/ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 256

typedef struct rec {
    int type;
    int opcode;
    unsigned code;
    size_t len;
    uint64_t hash;
} rec;

typedef struct evlog {
    rec ev[MAX_EVENTS];
    size_t n;
    int failed;
    int closed;
} evlog;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(1099511628211);
    return h;
}

static void check_event(int t, const ws_event *ev, uint64_t max)
{
    switch (t) {
    case WS_EV_MESSAGE:
        if (ev->opcode != WS_OP_TEXT && ev->opcode != WS_OP_BINARY)
            abort();
        if (ev->data == NULL || ev->len > max)
            abort();
        if (ev->opcode == WS_OP_TEXT && !utf8_is_valid(ev->data, ev->len))
            abort();
        break;
    case WS_EV_PING:
    case WS_EV_PONG:
        if (ev->data == NULL || ev->len > WS_MAX_CONTROL_PAYLOAD)
            abort();
        break;
    case WS_EV_CLOSE:
        if (ev->data == NULL || ev->len > WS_MAX_CONTROL_PAYLOAD - 2)
            abort();
        if (ev->close_code != WS_CLOSE_NO_STATUS && !ws_close_code_valid(ev->close_code))
            abort();
        if (!utf8_is_valid(ev->data, ev->len))
            abort();
        break;
    case WS_EV_ERROR:
        if (ev->close_code != 1002 && ev->close_code != 1007 && ev->close_code != 1009 &&
            ev->close_code != 1011)
            abort();
        break;
    case WS_EV_NONE:
        break;
    default:
        abort();
    }
}

/* Drives the reader over `in` like a connection: returns when it needs more bytes. */
static void drive(ws_reader *r, gw_buf *in, uint64_t max, evlog *l)
{
    while (!l->failed && !l->closed) {
        size_t used = (size_t)-1;
        ws_event ev;
        int t = ws_reader_next(r, in->data, in->len, &used, &ev);
        if (t == WS_EV_NEED_MORE) {
            if (used != 0 || ev.need <= in->len)
                abort();
            return;
        }
        check_event(t, &ev, max);
        if (t == WS_EV_ERROR) {
            if (used != 0)
                abort();
            /* sticky */
            ws_event ev2;
            size_t used2;
            if (ws_reader_next(r, in->data, in->len, &used2, &ev2) != WS_EV_ERROR ||
                ev2.close_code != ev.close_code || used2 != 0)
                abort();
        } else if (used == 0 || used > in->len) {
            abort();
        }
        if (l->n < MAX_EVENTS) {
            rec *x = &l->ev[l->n++];
            x->type = t;
            x->opcode = ev.opcode;
            x->code = ev.close_code;
            x->len = ev.len;
            x->hash = ev.data ? fnv(ev.data, ev.len) : 0;
        }
        if (t == WS_EV_ERROR) {
            l->failed = 1;
            return;
        }
        if (t == WS_EV_CLOSE)
            l->closed = 1; /* a connection stops reading after a close */
        gw_buf_consume(in, used);
    }
}

static void run(int is_server, uint64_t max, const uint8_t *p, size_t n, size_t first, size_t chunk,
                evlog *l)
{
    ws_reader r;
    gw_buf in = {0};
    ws_reader_init(&r, max, is_server);
    size_t at = 0;
    for (int i = 0; i == 0 || at < n; i++) {
        size_t k = i == 0 ? first : chunk;
        if (k > n - at)
            k = n - at;
        if (gw_buf_append(&in, p + at, k))
            abort();
        at += k;
        drive(&r, &in, max, l);
        if (l->failed || l->closed)
            break;
    }
    ws_reader_deinit(&r);
    gw_buf_deinit(&in);
}

static void same(const evlog *a, const evlog *b)
{
    if (a->n != b->n)
        abort();
    for (size_t i = 0; i < a->n; i++)
        if (a->ev[i].type != b->ev[i].type || a->ev[i].opcode != b->ev[i].opcode ||
            a->ev[i].code != b->ev[i].code || a->ev[i].len != b->ev[i].len ||
            a->ev[i].hash != b->ev[i].hash)
            abort();
}

/* The encoder's output always decodes back to the same frame. */
static void check_encoder(const uint8_t *p, size_t n, uint8_t ctl)
{
    static const uint8_t key[4] = {0xa1, 0x00, 0x7f, 0xff};
    gw_buf b = {0};
    int op = (ctl & 1) ? WS_OP_BINARY : WS_OP_PING;
    size_t len = op == WS_OP_PING && n > 125 ? 125 : n;
    if (ws_frame_encode(&b, 1, op, p, len, (ctl & 2) ? key : NULL))
        abort();
    ws_reader r;
    ws_reader_init(&r, n, (ctl & 2) ? 1 : 0);
    size_t used;
    ws_event ev;
    int t = ws_reader_next(&r, b.data, b.len, &used, &ev);
    if (t != (op == WS_OP_PING ? WS_EV_PING : WS_EV_MESSAGE) || used != b.len || ev.len != len ||
        (len && memcmp(ev.data, p, len) != 0))
        abort();
    ws_reader_deinit(&r);
    gw_buf_deinit(&b);
}

/* Decodes one frame from b with a fresh reader of the given side; returns the event type. */
static int decode_one(const gw_buf *b, int is_server, ws_event *ev)
{
    ws_reader r;
    size_t used;
    ws_reader_init(&r, 1 << 20, is_server);
    int t = ws_reader_next(&r, b->data, b->len, &used, ev);
    if (t != WS_EV_ERROR && t != WS_EV_NEED_MORE && used != b->len)
        abort();
    ws_reader_deinit(&r); /* ev->data points into b (control frames are never reassembled) */
    return t;
}

/* Close frames we build are accepted by the other side with the same code and reason. */
static void check_close_builders(const uint8_t *p, size_t n, uint8_t ctl)
{
    static const uint8_t key[4] = {0x00, 0xff, 0x5a, 0xa5};
    uint16_t code = n >= 2 ? gw_load_be16(p) : (uint16_t)(ctl * 17);
    uint8_t out[WS_CLOSE_REPLY_MAX];
    gw_buf b = {0};
    ws_event ev;
    size_t len = ws_close_reply(out, code, (ctl & 4) ? key : NULL);
    if (gw_buf_append(&b, out, len))
        abort();
    if (decode_one(&b, (ctl & 4) ? 1 : 0, &ev) != WS_EV_CLOSE || ev.len != 0 ||
        ev.close_code != (ws_close_code_valid(code) ? code : 1000))
        abort();
    /* the reason is cut to <= 123 bytes at a character boundary */
    b.len = 0;
    int rc = ws_close_frame_encode(&b, 1000, p, n, (ctl & 4) ? key : NULL);
    if (!utf8_is_valid(p, n)) {
        if (rc != -EINVAL || b.len != 0)
            abort();
    } else {
        size_t want = n > 123 ? utf8_valid_prefix(p, 123) : n;
        if (rc != 0 || decode_one(&b, (ctl & 4) ? 1 : 0, &ev) != WS_EV_CLOSE ||
            ev.close_code != 1000 || ev.len != want || (want && memcmp(ev.data, p, want) != 0))
            abort();
    }
    gw_buf_deinit(&b);
}

/* utf8: chunked validation equals whole validation; the valid prefix is valid. */
static void check_utf8(const uint8_t *p, size_t n, size_t cut)
{
    uint32_t whole = utf8_validate(UTF8_ACCEPT, p, n);
    uint32_t parts = utf8_validate(utf8_validate(UTF8_ACCEPT, p, cut), p + cut, n - cut);
    if (whole != parts)
        abort();
    size_t k = utf8_valid_prefix(p, n);
    if (k > n || !utf8_is_valid(p, k) || (k == n) != (whole == UTF8_ACCEPT))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t limits[8] = {0, 1, 125, 126, 1000, 65535, 65536, 1 << 20};
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint64_t max = limits[ctl & 7];
    size_t first = n ? (size_t)ctl * 131 % (n + 1) : 0;
    size_t chunk = 1 + (ctl >> 3) * 3;

    for (int is_server = 1; is_server >= 0; is_server--) {
        evlog *whole = calloc(1, sizeof *whole), *pieces = calloc(1, sizeof *pieces);
        if (!whole || !pieces)
            abort();
        run(is_server, max, p, n, n, n, whole);
        run(is_server, max, p, n, first, chunk, pieces);
        same(whole, pieces);
        free(whole);
        free(pieces);
    }
    check_encoder(p, n, ctl);
    check_close_builders(p, n, ctl);
    check_utf8(p, n, first);

    /* header codec: decode never reads past n, and re-encoding a decoded header of a
     * minimal encoding gives the same bytes */
    ws_frame f;
    int hl = ws_frame_header_decode(p, n, &f);
    if (hl > 0) {
        if ((size_t)hl > n || (size_t)hl != f.header_len)
            abort();
        uint8_t h[WS_MAX_HEADER];
        size_t hl2 =
            ws_frame_header_encode(h, f.fin, f.opcode, f.payload_len, f.masked ? f.mask : NULL);
        ws_frame g;
        if (ws_frame_header_decode(h, hl2, &g) != (int)hl2 || g.payload_len != f.payload_len ||
            g.opcode != f.opcode || g.fin != f.fin || g.masked != f.masked || hl2 > (size_t)hl)
            abort();
    }
    return 0;
}
