#include "common/alloc.h"
#include "common/buf.h"
#include "common/ws.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 §5.7 example key */

/* ---- helpers: frames --------------------------------------------------------------- */

/* Appends a client frame (masked with KEY) or a server frame (unmasked). */
static void frame(gw_buf *b, int masked, int fin, int op, const void *p, size_t n)
{
    ck_assert_int_eq(ws_frame_encode(b, fin, op, p, n, masked ? KEY : NULL), 0);
}

/* Client frame with a string payload. */
static void cf(gw_buf *b, int fin, int op, const char *s)
{
    frame(b, 1, fin, op, s, strlen(s));
}

/* ---- helpers: an event log and the stream runner ------------------------------------- */

#define MAX_EVENTS 64

typedef struct rec {
    int type;
    int opcode;
    uint16_t code;
    size_t off; /* into log.data */
    size_t len;
} rec;

typedef struct evlog {
    rec ev[MAX_EVENTS];
    size_t n;
    gw_buf data;
    int failed;
} evlog;

static void log_add(evlog *l, int type, const ws_event *ev)
{
    ck_assert_uint_lt(l->n, MAX_EVENTS);
    rec *r = &l->ev[l->n++];
    r->type = type;
    r->opcode = ev->opcode;
    r->code = ev->close_code;
    r->off = l->data.len;
    r->len = 0;
    if (type == WS_EV_MESSAGE || type == WS_EV_PING || type == WS_EV_PONG || type == WS_EV_CLOSE) {
        ck_assert_ptr_nonnull(ev->data);
        ck_assert_int_eq(gw_buf_append(&l->data, ev->data, ev->len), 0);
        r->len = ev->len;
    }
}

/* Drives the reader over everything in `in` (consuming frames like a connection would). */
static void drive(ws_reader *r, gw_buf *in, evlog *l)
{
    if (l->failed) {
        /* the error is sticky */
        size_t used = 99;
        ws_event ev;
        ck_assert_int_eq(ws_reader_next(r, in->data, in->len, &used, &ev), WS_EV_ERROR);
        ck_assert_uint_eq(used, 0);
        ck_assert_uint_eq(ev.close_code, l->ev[l->n - 1].code);
        return;
    }
    for (;;) {
        size_t used = 99;
        ws_event ev;
        int t = ws_reader_next(r, in->data, in->len, &used, &ev);
        if (t == WS_EV_NEED_MORE) {
            ck_assert_uint_eq(used, 0);
            ck_assert_uint_gt(ev.need, in->len);
            return;
        }
        log_add(l, t, &ev);
        if (t == WS_EV_ERROR) {
            ck_assert_uint_eq(used, 0);
            l->failed = 1;
            return;
        }
        ck_assert_uint_gt(used, 0);
        ck_assert_uint_le(used, in->len);
        gw_buf_consume(in, used);
    }
}

/* Feeds input[0..n) to a fresh reader in pieces ending at the offsets in cuts[] (the last
 * piece ends at n). */
static void run_pieces(int is_server, uint64_t max, const uint8_t *input, size_t n,
                       const size_t *cuts, size_t ncuts, evlog *l)
{
    ws_reader r;
    gw_buf in = {0};
    ws_reader_init(&r, max, is_server);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        ck_assert_int_eq(gw_buf_append(&in, input + at, to - at), 0);
        at = to;
        drive(&r, &in, l);
    }
    ws_reader_deinit(&r);
    gw_buf_deinit(&in);
}

static void log_free(evlog *l)
{
    gw_buf_deinit(&l->data);
    memset(l, 0, sizeof *l);
}

static void log_assert_same(const evlog *a, const evlog *b, const char *what, size_t k)
{
    ck_assert_msg(a->n == b->n, "%s %zu: %zu events, expected %zu", what, k, b->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        const rec *x = &a->ev[i], *y = &b->ev[i];
        ck_assert_msg(
            x->type == y->type && x->opcode == y->opcode && x->code == y->code &&
                x->len == y->len &&
                (x->len == 0 || memcmp(a->data.data + x->off, b->data.data + y->off, x->len) == 0),
            "%s %zu: event %zu differs", what, k, i);
    }
}

/* Expected events. data NULL: no payload check beyond len. */
typedef struct want {
    int type;
    int opcode;
    uint16_t code;
    const char *data;
    size_t len;
} want;

/* Runs input whole, byte by byte, and split in two at every byte boundary (for large inputs
 * at every boundary near frame starts and a sample elsewhere), and checks that every run
 * produces exactly the expected events. */
static void check_stream(int is_server, uint64_t max, const gw_buf *input, const want *w, size_t nw)
{
    const uint8_t *p = input->data;
    size_t n = input->len;
    evlog whole = {0};
    run_pieces(is_server, max, p, n, NULL, 0, &whole);
    ck_assert_msg(whole.n == nw, "got %zu events, expected %zu", whole.n, nw);
    for (size_t i = 0; i < nw; i++) {
        const rec *x = &whole.ev[i];
        ck_assert_msg(x->type == w[i].type, "event %zu: type %d, expected %d", i, x->type,
                      w[i].type);
        ck_assert_msg(x->opcode == w[i].opcode, "event %zu: opcode %d", i, x->opcode);
        ck_assert_msg(x->code == w[i].code, "event %zu: code %u, expected %u", i, x->code,
                      w[i].code);
        ck_assert_msg(x->len == w[i].len, "event %zu: len %zu, expected %zu", i, x->len, w[i].len);
        if (w[i].data && w[i].len)
            ck_assert_int_eq(memcmp(whole.data.data + x->off, w[i].data, w[i].len), 0);
    }

    /* byte by byte: every boundary at once */
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    ck_assert_ptr_nonnull(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    evlog l = {0};
    run_pieces(is_server, max, p, n, cuts, n, &l);
    log_assert_same(&whole, &l, "byte by byte", 0);
    log_free(&l);
    free(cuts);

    /* two pieces, at every boundary */
    for (size_t k = 0; k <= n; k++) {
        if (n > 4096 && (k % 997) != 0 && k > 64 && n - k > 64)
            continue;
        evlog m = {0};
        run_pieces(is_server, max, p, n, &k, 1, &m);
        log_assert_same(&whole, &m, "split at", k);
        log_free(&m);
    }
    log_free(&whole);
}

#define W_MSG(op, s)                                                                               \
    {                                                                                              \
        WS_EV_MESSAGE, op, 0, s, sizeof(s) - 1                                                     \
    }
#define W_NONE                                                                                     \
    {                                                                                              \
        WS_EV_NONE, 0, 0, NULL, 0                                                                  \
    }
#define W_ERR(c)                                                                                   \
    {                                                                                              \
        WS_EV_ERROR, 0, c, NULL, 0                                                                 \
    }

/* ---- frame header codec -------------------------------------------------------------- */

START_TEST(test_header_decode_lengths)
{
    ws_frame f;
    /* 7-bit, unmasked */
    static const uint8_t h7[] = {0x81, 0x05};
    ck_assert_int_eq(ws_frame_header_decode(h7, 2, &f), 2);
    ck_assert_uint_eq(f.fin, 1);
    ck_assert_uint_eq(f.opcode, 1);
    ck_assert_uint_eq(f.masked, 0);
    ck_assert_uint_eq(f.payload_len, 5);
    ck_assert_uint_eq(f.header_len, 2);
    /* 16-bit, masked */
    static const uint8_t h16[] = {0x02, 0xFE, 0x01, 0x00, 1, 2, 3, 4};
    for (size_t n = 0; n < sizeof h16; n++) {
        ck_assert_int_eq(ws_frame_header_decode(h16, n, &f), 0);
        ck_assert_uint_eq(f.header_len, n < 2 ? 2 : 8);
    }
    ck_assert_int_eq(ws_frame_header_decode(h16, sizeof h16, &f), 8);
    ck_assert_uint_eq(f.fin, 0);
    ck_assert_uint_eq(f.opcode, 2);
    ck_assert_uint_eq(f.masked, 1);
    ck_assert_uint_eq(f.payload_len, 256);
    ck_assert_int_eq(memcmp(f.mask, "\x01\x02\x03\x04", 4), 0);
    /* 64-bit, masked: 14 bytes */
    static const uint8_t h64[] = {0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 9, 8, 7, 6};
    ck_assert_int_eq(ws_frame_header_decode(h64, 13, &f), 0);
    ck_assert_uint_eq(f.header_len, 14);
    ck_assert_int_eq(ws_frame_header_decode(h64, 14, &f), 14);
    ck_assert_uint_eq(f.payload_len, UINT64_C(1) << 32);
    /* RSV bits are reported, not judged */
    static const uint8_t rsv[] = {0xF1, 0x00};
    ck_assert_int_eq(ws_frame_header_decode(rsv, 2, &f), 2);
    ck_assert_uint_eq(f.rsv, 7);
    /* non-minimal length encoding is accepted by the decoder */
    static const uint8_t nm[] = {0x82, 0x7E, 0x00, 0x05};
    ck_assert_int_eq(ws_frame_header_decode(nm, 4, &f), 4);
    ck_assert_uint_eq(f.payload_len, 5);
    /* 64-bit length with the most significant bit set */
    static const uint8_t msb[] = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1};
    ck_assert_int_eq(ws_frame_header_decode(msb, sizeof msb, &f), -1);
}
END_TEST

START_TEST(test_header_encode_roundtrip)
{
    static const uint64_t lens[] = {
        0, 1, 125, 126, 127, 65535, 65536, UINT64_C(1) << 32, (UINT64_C(1) << 63) - 1};
    static const size_t hl_plain[] = {2, 2, 2, 4, 4, 4, 10, 10, 10};
    uint8_t h[WS_MAX_HEADER];
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int m = 0; m < 2; m++) {
            size_t hl = ws_frame_header_encode(h, i & 1, WS_OP_BINARY, lens[i], m ? KEY : NULL);
            ck_assert_uint_eq(hl, hl_plain[i] + (m ? 4 : 0));
            ws_frame f;
            ck_assert_int_eq(ws_frame_header_decode(h, hl, &f), (int)hl);
            ck_assert_uint_eq(f.payload_len, lens[i]);
            ck_assert_uint_eq(f.fin, i & 1);
            ck_assert_uint_eq(f.opcode, WS_OP_BINARY);
            ck_assert_uint_eq(f.masked, m);
            ck_assert_uint_eq(f.rsv, 0);
            if (m)
                ck_assert_int_eq(memcmp(f.mask, KEY, 4), 0);
        }
    }
    /* exact bytes: RFC 6455 §5.7 "Hello" examples */
    gw_buf b = {0};
    ck_assert_int_eq(ws_frame_encode(&b, 1, WS_OP_TEXT, "Hello", 5, NULL), 0);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_int_eq(memcmp(b.data, "\x81\x05\x48\x65\x6c\x6c\x6f", 7), 0);
    b.len = 0;
    ck_assert_int_eq(ws_frame_encode(&b, 1, WS_OP_TEXT, "Hello", 5, KEY), 0);
    ck_assert_uint_eq(b.len, 11);
    ck_assert_int_eq(memcmp(b.data, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11), 0);
    b.len = 0;
    ck_assert_int_eq(ws_frame_encode(&b, 0, WS_OP_TEXT, "Hel", 3, NULL), 0);
    ck_assert_int_eq(memcmp(b.data, "\x01\x03\x48\x65\x6c", 5), 0);
    b.len = 0;
    ck_assert_int_eq(ws_frame_encode(&b, 1, WS_OP_PING, "Hello", 5, NULL), 0);
    ck_assert_int_eq(memcmp(b.data, "\x89\x05\x48\x65\x6c\x6c\x6f", 7), 0);
    gw_buf_deinit(&b);
}
END_TEST

START_TEST(test_mask_matches_naive)
{
    uint8_t buf[80], ref[80];
    for (size_t align = 0; align < 8; align++)
        for (size_t off = 0; off < 8; off++)
            for (size_t n = 0; n <= 64; n++) {
                for (size_t i = 0; i < sizeof buf; i++)
                    buf[i] = ref[i] = (uint8_t)(i * 31 + 7);
                ws_mask(buf + align, n, KEY, off);
                for (size_t i = 0; i < n; i++)
                    ref[align + i] ^= KEY[(off + i) % 4];
                ck_assert_int_eq(memcmp(buf, ref, sizeof buf), 0);
            }
    /* masking in pieces with the payload offset equals masking at once */
    uint8_t whole[100], parts[100];
    for (size_t i = 0; i < 100; i++)
        whole[i] = parts[i] = (uint8_t)i;
    ws_mask(whole, 100, KEY, 0);
    ws_mask(parts, 13, KEY, 0);
    ws_mask(parts + 13, 50, KEY, 13);
    ws_mask(parts + 63, 37, KEY, 63);
    ck_assert_int_eq(memcmp(whole, parts, 100), 0);
    ws_mask(NULL, 0, KEY, 0);
}
END_TEST

/* ---- reader: messages -------------------------------------------------------------------- */

START_TEST(test_reader_simple_messages)
{
    gw_buf in = {0};
    cf(&in, 1, WS_OP_TEXT, "Hello");
    cf(&in, 1, WS_OP_BINARY, "\x00\x01\x02");
    frame(&in, 1, 1, WS_OP_BINARY, "\x00\xff", 2);
    cf(&in, 1, WS_OP_TEXT, "");
    cf(&in, 1, WS_OP_TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
    static const want w[] = {
        W_MSG(WS_OP_TEXT, "Hello"),
        {WS_EV_MESSAGE, WS_OP_BINARY, 0, "", 0},
        {WS_EV_MESSAGE, WS_OP_BINARY, 0, "\x00\xff", 2},
        W_MSG(WS_OP_TEXT, ""),
        W_MSG(WS_OP_TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
    };
    check_stream(1, 1000, &in, w, 5);
    gw_buf_deinit(&in);
}
END_TEST

START_TEST(test_reader_zero_copy_and_consumed)
{
    gw_buf in = {0};
    cf(&in, 1, WS_OP_TEXT, "Hello");
    cf(&in, 1, WS_OP_PING, "p");
    ws_reader r;
    ws_reader_init(&r, 100, 1);
    size_t used;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, in.data, in.len, &used, &ev), WS_EV_MESSAGE);
    ck_assert_uint_eq(used, 11);
    ck_assert_ptr_eq(ev.data, in.data + 6); /* into the caller's buffer, unmasked in place */
    ck_assert_int_eq(memcmp(in.data + 6, "Hello", 5), 0);
    ck_assert_int_eq(ws_reader_next(&r, in.data + used, in.len - used, &used, &ev), WS_EV_PING);
    ck_assert_uint_eq(used, 7);
    ck_assert_ptr_eq(ev.data, in.data + 11 + 6);
    ck_assert_uint_eq(ev.len, 1);
    ck_assert_int_eq(ev.data[0], 'p');
    ws_reader_deinit(&r);
    gw_buf_deinit(&in);
}
END_TEST

START_TEST(test_reader_fragmentation_with_control_frames)
{
    gw_buf in = {0};
    cf(&in, 0, WS_OP_TEXT, "Hel");
    cf(&in, 1, WS_OP_PING, "ping!");
    cf(&in, 0, WS_OP_CONT, "lo ");
    cf(&in, 1, WS_OP_PONG, "");
    cf(&in, 0, WS_OP_CONT, "");
    cf(&in, 1, WS_OP_CONT, "W\xc3\xb6rld"); /* ö */
    cf(&in, 0, WS_OP_BINARY, "ab");
    cf(&in, 1, WS_OP_CLOSE, "\x03\xe8");
    cf(&in, 1, WS_OP_CONT, "cd");
    /* a multi-byte character split across fragments: E2 82 | AC (euro sign) */
    cf(&in, 0, WS_OP_TEXT, "x\xe2\x82");
    cf(&in, 1, WS_OP_CONT, "\xac");
    /* an empty fragmented message */
    cf(&in, 0, WS_OP_BINARY, "");
    cf(&in, 1, WS_OP_CONT, "");
    static const want w[] = {
        W_NONE,
        {WS_EV_PING, WS_OP_PING, 0, "ping!", 5},
        W_NONE,
        {WS_EV_PONG, WS_OP_PONG, 0, "", 0},
        W_NONE,
        W_MSG(WS_OP_TEXT, "Hello W\xc3\xb6rld"),
        W_NONE,
        {WS_EV_CLOSE, WS_OP_CLOSE, 1000, "", 0},
        W_MSG(WS_OP_BINARY, "abcd"),
        W_NONE,
        W_MSG(WS_OP_TEXT, "x\xe2\x82\xac"),
        W_NONE,
        W_MSG(WS_OP_BINARY, ""),
    };
    check_stream(1, 1000, &in, w, sizeof w / sizeof w[0]);
    gw_buf_deinit(&in);
}
END_TEST

static void check_length(size_t n, size_t expect_header)
{
    gw_buf in = {0};
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)('a' + i % 26);
    frame(&in, 1, 1, WS_OP_TEXT, p, n);
    ck_assert_uint_eq(in.len, expect_header + n);
    cf(&in, 1, WS_OP_TEXT, "tail");
    want w[2] = {{WS_EV_MESSAGE, WS_OP_TEXT, 0, (const char *)p, n}, W_MSG(WS_OP_TEXT, "tail")};
    check_stream(1, 1 << 20, &in, w, 2);
    gw_buf_deinit(&in);
    free(p);
}

START_TEST(test_reader_7_16_64_bit_lengths)
{
    check_length(0, 6);
    check_length(125, 6);
    check_length(126, 8);
    check_length(65535, 8);
    check_length(65536, 14);
    check_length(70000, 14);
}
END_TEST

START_TEST(test_reader_max_size_limit)
{
    char big[102];
    memset(big, 'x', sizeof big);
    gw_buf in = {0};
    /* exactly at the limit */
    frame(&in, 1, 1, WS_OP_BINARY, big, 100);
    want ok[] = {{WS_EV_MESSAGE, WS_OP_BINARY, 0, big, 100}};
    check_stream(1, 100, &in, ok, 1);
    /* one over */
    in.len = 0;
    frame(&in, 1, 1, WS_OP_BINARY, big, 101);
    static const want over[] = {W_ERR(1009)};
    check_stream(1, 100, &in, over, 1);
    /* fragments summed: 50 + 50 at the limit, 50 + 51 over */
    in.len = 0;
    frame(&in, 1, 0, WS_OP_TEXT, big, 50);
    frame(&in, 1, 1, WS_OP_CONT, big, 50);
    want frag_ok[] = {W_NONE, {WS_EV_MESSAGE, WS_OP_TEXT, 0, big, 100}};
    check_stream(1, 100, &in, frag_ok, 2);
    in.len = 0;
    frame(&in, 1, 0, WS_OP_TEXT, big, 50);
    cf(&in, 1, WS_OP_PING, "");
    frame(&in, 1, 1, WS_OP_CONT, big, 51);
    static const want frag_over[] = {W_NONE, {WS_EV_PING, WS_OP_PING, 0, "", 0}, W_ERR(1009)};
    check_stream(1, 100, &in, frag_over, 3);
    /* limit 0: only empty messages */
    in.len = 0;
    cf(&in, 1, WS_OP_TEXT, "");
    cf(&in, 1, WS_OP_TEXT, "a");
    static const want zero[] = {W_MSG(WS_OP_TEXT, ""), W_ERR(1009)};
    check_stream(1, 0, &in, zero, 2);
    gw_buf_deinit(&in);
}
END_TEST

/* A huge declared length fails from the header alone: nothing is buffered. */
START_TEST(test_reader_too_big_detected_from_header)
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, 1, WS_OP_BINARY, UINT64_C(1) << 40, KEY);
    ws_reader r;
    ws_reader_init(&r, 1 << 20, 1);
    size_t used;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, h, hl - 1, &used, &ev), WS_EV_NEED_MORE);
    ck_assert_uint_eq(ev.need, hl);
    ck_assert_int_eq(ws_reader_next(&r, h, hl, &used, &ev), WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1009);
    ck_assert_uint_eq(used, 0);
    ws_reader_deinit(&r);
}
END_TEST

/* ev.need: the header length while the header is incomplete, then header + payload. */
START_TEST(test_reader_need)
{
    gw_buf in = {0};
    char p[300];
    memset(p, 'z', sizeof p);
    frame(&in, 1, 1, WS_OP_BINARY, p, sizeof p); /* 2 + 2 + 4 + 300 = 308 */
    ck_assert_uint_eq(in.len, 308);
    ws_reader r;
    ws_reader_init(&r, 1000, 1);
    size_t used;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, NULL, 0, &used, &ev), WS_EV_NEED_MORE);
    ck_assert_uint_eq(ev.need, 2);
    ck_assert_int_eq(ws_reader_next(&r, in.data, 1, &used, &ev), WS_EV_NEED_MORE);
    ck_assert_uint_eq(ev.need, 2);
    for (size_t n = 2; n < 8; n++) {
        ck_assert_int_eq(ws_reader_next(&r, in.data, n, &used, &ev), WS_EV_NEED_MORE);
        ck_assert_uint_eq(ev.need, 8);
    }
    for (size_t n = 8; n < 308; n++) {
        ck_assert_int_eq(ws_reader_next(&r, in.data, n, &used, &ev), WS_EV_NEED_MORE);
        ck_assert_uint_eq(ev.need, 308);
        ck_assert_uint_eq(used, 0);
    }
    ck_assert_int_eq(ws_reader_next(&r, in.data, 308, &used, &ev), WS_EV_MESSAGE);
    ck_assert_uint_eq(used, 308);
    ck_assert_uint_eq(ev.len, 300);
    ws_reader_deinit(&r);
    gw_buf_deinit(&in);
}
END_TEST

START_TEST(test_masking_roundtrip_both_directions)
{
    uint8_t payload[1000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    static const uint8_t keys[][4] = {{0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {1, 2, 3, 4}};
    for (size_t k = 0; k < 3; k++) {
        for (size_t n = 0; n <= sizeof payload; n += 37) {
            /* client -> server */
            gw_buf b = {0};
            ck_assert_int_eq(ws_frame_encode(&b, 1, WS_OP_BINARY, payload, n, keys[k]), 0);
            ws_reader r;
            ws_reader_init(&r, 1 << 20, 1);
            size_t used;
            ws_event ev;
            ck_assert_int_eq(ws_reader_next(&r, b.data, b.len, &used, &ev), WS_EV_MESSAGE);
            ck_assert_uint_eq(used, b.len);
            ck_assert_uint_eq(ev.len, n);
            ck_assert_int_eq(memcmp(ev.data, payload, n), 0);
            ws_reader_deinit(&r);
            /* server -> client */
            b.len = 0;
            ck_assert_int_eq(ws_frame_encode(&b, 1, WS_OP_BINARY, payload, n, NULL), 0);
            ws_reader_init(&r, 1 << 20, 0);
            ck_assert_int_eq(ws_reader_next(&r, b.data, b.len, &used, &ev), WS_EV_MESSAGE);
            ck_assert_uint_eq(ev.len, n);
            ck_assert_int_eq(memcmp(ev.data, payload, n), 0);
            ws_reader_deinit(&r);
            gw_buf_deinit(&b);
        }
    }
}
END_TEST

START_TEST(test_client_side_reader)
{
    gw_buf in = {0};
    frame(&in, 0, 1, WS_OP_TEXT, "hi", 2);
    frame(&in, 0, 1, WS_OP_PING, "", 0);
    frame(&in, 0, 0, WS_OP_BINARY, "a", 1);
    frame(&in, 0, 1, WS_OP_CONT, "b", 1);
    frame(&in, 0, 1, WS_OP_CLOSE, "\x03\xe9", 2);
    static const want w[] = {W_MSG(WS_OP_TEXT, "hi"),
                             {WS_EV_PING, WS_OP_PING, 0, "", 0},
                             W_NONE,
                             W_MSG(WS_OP_BINARY, "ab"),
                             {WS_EV_CLOSE, WS_OP_CLOSE, 1001, "", 0}};
    check_stream(0, 100, &in, w, 5);
    /* a masked frame from the server is a protocol error */
    in.len = 0;
    frame(&in, 0, 1, WS_OP_TEXT, "ok", 2);
    frame(&in, 1, 1, WS_OP_TEXT, "hi", 2);
    static const want w2[] = {W_MSG(WS_OP_TEXT, "ok"), W_ERR(1002)};
    check_stream(0, 100, &in, w2, 2);
    gw_buf_deinit(&in);
}
END_TEST

/* ---- reader: errors -------------------------------------------------------------------- */

/* One valid message, then `bad`: expects MESSAGE then ERROR(code), at every split. */
static void expect_error_after_ok(const gw_buf *bad, uint16_t code)
{
    gw_buf in = {0};
    cf(&in, 1, WS_OP_TEXT, "ok");
    ck_assert_int_eq(gw_buf_append(&in, bad->data, bad->len), 0);
    want w[2] = {W_MSG(WS_OP_TEXT, "ok"), W_ERR(code)};
    check_stream(1, 1000, &in, w, 2);
    gw_buf_deinit(&in);
}

START_TEST(test_error_unmasked_client_frame)
{
    gw_buf b = {0};
    frame(&b, 0, 1, WS_OP_TEXT, "hi", 2);
    expect_error_after_ok(&b, 1002);
    b.len = 0;
    frame(&b, 0, 1, WS_OP_PING, "", 0);
    expect_error_after_ok(&b, 1002);
    gw_buf_deinit(&b);
}
END_TEST

START_TEST(test_error_rsv_bits)
{
    for (int bit = 4; bit <= 6; bit++) {
        gw_buf b = {0};
        cf(&b, 1, WS_OP_TEXT, "hi");
        b.data[0] |= (uint8_t)(1 << bit);
        expect_error_after_ok(&b, 1002);
        gw_buf_deinit(&b);
    }
}
END_TEST

START_TEST(test_error_reserved_opcodes)
{
    static const int ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        gw_buf b = {0};
        cf(&b, 1, ops[i], "");
        expect_error_after_ok(&b, 1002);
        gw_buf_deinit(&b);
    }
}
END_TEST

START_TEST(test_error_control_frames)
{
    char p[126];
    memset(p, 'p', sizeof p);
    static const int ops[] = {WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE};
    for (size_t i = 0; i < 3; i++) {
        gw_buf b = {0};
        /* fragmented control frame */
        cf(&b, 0, ops[i], "");
        expect_error_after_ok(&b, 1002);
        /* payload > 125 */
        b.len = 0;
        frame(&b, 1, 1, ops[i], p, 126);
        expect_error_after_ok(&b, 1002);
        gw_buf_deinit(&b);
    }
    /* 125 bytes is fine */
    gw_buf in = {0};
    frame(&in, 1, 1, WS_OP_PING, p, 125);
    want w[] = {{WS_EV_PING, WS_OP_PING, 0, p, 125}};
    check_stream(1, 10, &in, w, 1);
    gw_buf_deinit(&in);
}
END_TEST

START_TEST(test_error_fragment_sequence)
{
    gw_buf b = {0};
    /* continuation without a started message */
    cf(&b, 1, WS_OP_CONT, "x");
    expect_error_after_ok(&b, 1002);
    b.len = 0;
    cf(&b, 0, WS_OP_CONT, "x");
    expect_error_after_ok(&b, 1002);
    /* a new data frame while a fragmented message is open */
    b.len = 0;
    cf(&b, 0, WS_OP_TEXT, "a");
    cf(&b, 1, WS_OP_TEXT, "b");
    gw_buf in = {0};
    ck_assert_int_eq(gw_buf_append(&in, b.data, b.len), 0);
    static const want w[] = {W_NONE, W_ERR(1002)};
    check_stream(1, 100, &in, w, 2);
    in.len = 0;
    cf(&in, 0, WS_OP_BINARY, "a");
    cf(&in, 0, WS_OP_BINARY, "b");
    check_stream(1, 100, &in, w, 2);
    /* after a complete fragmented message, a continuation is an error again */
    in.len = 0;
    cf(&in, 0, WS_OP_BINARY, "a");
    cf(&in, 1, WS_OP_CONT, "b");
    cf(&in, 1, WS_OP_CONT, "c");
    static const want w2[] = {W_NONE, W_MSG(WS_OP_BINARY, "ab"), W_ERR(1002)};
    check_stream(1, 100, &in, w2, 3);
    gw_buf_deinit(&in);
    gw_buf_deinit(&b);
}
END_TEST

START_TEST(test_error_64bit_msb)
{
    gw_buf b = {0};
    static const uint8_t h[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    ck_assert_int_eq(gw_buf_append(&b, h, sizeof h), 0);
    expect_error_after_ok(&b, 1002);
    gw_buf_deinit(&b);
}
END_TEST

START_TEST(test_close_frames)
{
    gw_buf in = {0};
    cf(&in, 1, WS_OP_CLOSE, "");
    static const want w0[] = {{WS_EV_CLOSE, WS_OP_CLOSE, 1005, "", 0}};
    check_stream(1, 100, &in, w0, 1);
    in.len = 0;
    cf(&in, 1, WS_OP_CLOSE,
       "\x03\xe8"
       "bye \xc3\xa9");
    static const want w1[] = {{WS_EV_CLOSE, WS_OP_CLOSE, 1000, "bye \xc3\xa9", 6}};
    check_stream(1, 100, &in, w1, 1);
    /* 1-byte payload */
    gw_buf b = {0};
    cf(&b, 1, WS_OP_CLOSE, "\x03");
    expect_error_after_ok(&b, 1002);
    /* invalid UTF-8 in the reason */
    b.len = 0;
    cf(&b, 1, WS_OP_CLOSE, "\x03\xe8\xff");
    expect_error_after_ok(&b, 1007);
    b.len = 0;
    cf(&b, 1, WS_OP_CLOSE,
       "\x03\xe8"
       "ab\xe2\x82");
    expect_error_after_ok(&b, 1007);
    gw_buf_deinit(&b);
    gw_buf_deinit(&in);
}
END_TEST

START_TEST(test_close_codes)
{
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const unsigned invalid[] = {0,    1,    999,  1004, 1005, 1006,
                                       1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        ck_assert_msg(ws_close_code_valid(valid[i]), "%u", valid[i]);
        uint8_t pl[2] = {(uint8_t)(valid[i] >> 8), (uint8_t)valid[i]};
        gw_buf in = {0};
        frame(&in, 1, 1, WS_OP_CLOSE, pl, 2);
        want w[] = {{WS_EV_CLOSE, WS_OP_CLOSE, (uint16_t)valid[i], "", 0}};
        check_stream(1, 100, &in, w, 1);
        gw_buf_deinit(&in);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        ck_assert_msg(!ws_close_code_valid(invalid[i]), "%u", invalid[i]);
        uint8_t pl[2] = {(uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i]};
        gw_buf b = {0};
        frame(&b, 1, 1, WS_OP_CLOSE, pl, 2);
        expect_error_after_ok(&b, 1002);
        gw_buf_deinit(&b);
    }
}
END_TEST

START_TEST(test_error_invalid_utf8_text)
{
    gw_buf b = {0};
    cf(&b, 1, WS_OP_TEXT, "abc\xff");
    expect_error_after_ok(&b, 1007);
    /* ends inside a sequence */
    b.len = 0;
    cf(&b, 1, WS_OP_TEXT, "abc\xe2\x82");
    expect_error_after_ok(&b, 1007);
    /* surrogate, overlong, > U+10FFFF */
    b.len = 0;
    cf(&b, 1, WS_OP_TEXT, "\xed\xa0\x80");
    expect_error_after_ok(&b, 1007);
    b.len = 0;
    cf(&b, 1, WS_OP_TEXT, "\xc0\xaf");
    expect_error_after_ok(&b, 1007);
    b.len = 0;
    cf(&b, 1, WS_OP_TEXT, "\xf4\x90\x80\x80");
    expect_error_after_ok(&b, 1007);
    /* fragmented text that ends inside a sequence */
    gw_buf in = {0};
    cf(&in, 0, WS_OP_TEXT, "a\xe2");
    cf(&in, 1, WS_OP_CONT, "\x82");
    static const want w[] = {W_NONE, W_ERR(1007)};
    check_stream(1, 100, &in, w, 2);
    /* invalid bytes in a binary message are fine */
    in.len = 0;
    cf(&in, 1, WS_OP_BINARY, "\xff\xfe");
    static const want wb[] = {{WS_EV_MESSAGE, WS_OP_BINARY, 0, "\xff\xfe", 2}};
    check_stream(1, 100, &in, wb, 1);
    gw_buf_deinit(&in);
    gw_buf_deinit(&b);
}
END_TEST

/* Invalid UTF-8 fails at the fragment that carries it, before later fragments, and even
 * before the rest of that frame has arrived. */
START_TEST(test_utf8_fail_fast)
{
    /* 1: fragment 2 of 3 carries the bad byte; fragment 3 is never needed */
    gw_buf in = {0};
    cf(&in, 0, WS_OP_TEXT, "good ");
    cf(&in, 0, WS_OP_CONT, "bad \xed\xa0\x80 more");
    size_t upto = in.len;
    cf(&in, 1, WS_OP_CONT, "end");
    ws_reader r;
    ws_reader_init(&r, 1000, 1);
    size_t used;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, in.data, upto, &used, &ev), WS_EV_NONE);
    ck_assert_int_eq(ws_reader_next(&r, in.data + used, upto - used, &used, &ev), WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1007);
    ws_reader_deinit(&r);

    /* 2: a 1000-byte text frame whose payload starts with F4 90: failing after 2 payload
     * bytes, with 998 still to come */
    in.len = 0;
    char p[1000];
    memset(p, 'a', sizeof p);
    p[0] = (char)0xF4;
    p[1] = (char)0x90;
    frame(&in, 1, 1, WS_OP_TEXT, p, sizeof p);
    ws_reader_init(&r, 2000, 1);
    size_t hl = 8;
    ck_assert_int_eq(ws_reader_next(&r, in.data, hl + 1, &used, &ev), WS_EV_NEED_MORE);
    ck_assert_uint_eq(ev.need, hl + 1000);
    ck_assert_int_eq(ws_reader_next(&r, in.data, hl + 2, &used, &ev), WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1007);
    ws_reader_deinit(&r);

    /* 3: NEED_MORE leaves the caller's bytes untouched (still masked) */
    in.len = 0;
    memset(p, 'a', sizeof p);
    frame(&in, 1, 1, WS_OP_TEXT, p, sizeof p);
    uint8_t copy[1008];
    memcpy(copy, in.data, in.len);
    ws_reader_init(&r, 2000, 1);
    for (size_t n = 0; n < in.len; n += 100)
        ck_assert_int_eq(ws_reader_next(&r, in.data, n, &used, &ev), WS_EV_NEED_MORE);
    ck_assert_int_eq(memcmp(copy, in.data, in.len), 0);
    ck_assert_int_eq(ws_reader_next(&r, in.data, in.len, &used, &ev), WS_EV_MESSAGE);
    ck_assert_int_eq(memcmp(ev.data, p, 1000), 0);
    ws_reader_deinit(&r);
    gw_buf_deinit(&in);
}
END_TEST

START_TEST(test_error_is_sticky)
{
    gw_buf in = {0};
    cf(&in, 1, WS_OP_CONT, "x");
    ws_reader r;
    ws_reader_init(&r, 100, 1);
    size_t used;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, in.data, in.len, &used, &ev), WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1002);
    in.len = 0;
    cf(&in, 1, WS_OP_TEXT, "fine");
    ck_assert_int_eq(ws_reader_next(&r, in.data, in.len, &used, &ev), WS_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, 1002);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(ws_reader_next(&r, NULL, 0, &used, &ev), WS_EV_ERROR);
    ws_reader_deinit(&r);
    gw_buf_deinit(&in);
}
END_TEST

START_TEST(test_reassembly_out_of_memory_and_leaks)
{
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    gw_buf in = {0};
    char big[5000];
    memset(big, 'q', sizeof big);
    frame(&in, 1, 0, WS_OP_BINARY, big, sizeof big);
    frame(&in, 1, 1, WS_OP_CONT, big, sizeof big);
    cf(&in, 0, WS_OP_TEXT, "a");
    cf(&in, 1, WS_OP_CONT, "b");
    ws_reader r;
    ws_reader_init(&r, 1 << 20, 1);
    size_t used, off = 0;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, in.data, in.len, &used, &ev), WS_EV_NONE);
    off += used;
    ck_assert_int_eq(ws_reader_next(&r, in.data + off, in.len - off, &used, &ev), WS_EV_MESSAGE);
    ck_assert_uint_eq(ev.len, 10000);
    off += used;
    ck_assert_int_eq(ws_reader_next(&r, in.data + off, in.len - off, &used, &ev), WS_EV_NONE);
    ck_assert_uint_le(r.msg.cap, 4096); /* the big reassembly buffer was released */
    off += used;
    ck_assert_int_eq(ws_reader_next(&r, in.data + off, in.len - off, &used, &ev), WS_EV_MESSAGE);
    ck_assert_int_eq(memcmp(ev.data, "ab", 2), 0);
    ws_reader_deinit(&r);
    ws_reader_deinit(&r);                                 /* twice is fine */
    ck_assert_int_eq(gw_alloc_outstanding(), before + 1); /* only `in` */

    /* allocation failure while reassembling: 1011 */
    ws_reader_init(&r, 1 << 20, 1);
    gw_alloc_fail_after(0);
    ck_assert_int_eq(ws_reader_next(&r, in.data, in.len, &used, &ev), WS_EV_ERROR);
    gw_alloc_fail_after(-1);
    ck_assert_uint_eq(ev.close_code, 1011);
    ws_reader_deinit(&r);
    gw_buf_deinit(&in);
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    gw_alloc_track(0);

    ws_reader z;
    memset(&z, 0, sizeof z);
    ws_reader_deinit(&z); /* safe on a zeroed reader */
}
END_TEST

/* ---- building close frames ----------------------------------------------------------- */

START_TEST(test_close_reply)
{
    uint8_t out[WS_CLOSE_REPLY_MAX];
    ck_assert_uint_eq(ws_close_reply(out, 1005, NULL), 4);
    ck_assert_int_eq(memcmp(out, "\x88\x02\x03\xe8", 4), 0); /* no status -> 1000 */
    ck_assert_uint_eq(ws_close_reply(out, 1001, NULL), 4);
    ck_assert_int_eq(memcmp(out, "\x88\x02\x03\xe9", 4), 0); /* echoed */
    ck_assert_uint_eq(ws_close_reply(out, 4321, NULL), 4);
    ck_assert_int_eq(memcmp(out, "\x88\x02\x10\xe1", 4), 0);
    ck_assert_uint_eq(ws_close_reply(out, 1002, NULL), 4);
    ck_assert_int_eq(memcmp(out, "\x88\x02\x03\xea", 4), 0);
    ck_assert_uint_eq(ws_close_reply(out, 1009, NULL), 4);
    ck_assert_int_eq(memcmp(out, "\x88\x02\x03\xf1", 4), 0);
    ck_assert_uint_eq(ws_close_reply(out, 1006, NULL), 4);
    ck_assert_int_eq(memcmp(out, "\x88\x02\x03\xe8", 4), 0);
    /* client side: masked, and a server reader decodes it */
    ck_assert_uint_eq(ws_close_reply(out, 1001, KEY), 8);
    ck_assert_int_eq(memcmp(out, "\x88\x82\x37\xfa\x21\x3d", 6), 0);
    ws_reader r;
    ws_reader_init(&r, 10, 1);
    size_t used;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, out, 8, &used, &ev), WS_EV_CLOSE);
    ck_assert_uint_eq(ev.close_code, 1001);
    ck_assert_uint_eq(used, 8);
    ws_reader_deinit(&r);
}
END_TEST

START_TEST(test_close_frame_encode)
{
    gw_buf b = {0};
    ck_assert_int_eq(ws_close_frame_encode(&b, 1000, "bye", 3, NULL), 0);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_int_eq(memcmp(b.data,
                            "\x88\x05\x03\xe8"
                            "bye",
                            7),
                     0);
    b.len = 0;
    ck_assert_int_eq(ws_close_frame_encode(&b, 0, NULL, 0, NULL), 0);
    ck_assert_int_eq(memcmp(b.data, "\x88\x00", 2), 0);
    ck_assert_uint_eq(b.len, 2);
    /* errors leave the buffer unchanged */
    ck_assert_int_eq(ws_close_frame_encode(&b, 0, "x", 1, NULL), -EINVAL);
    ck_assert_int_eq(ws_close_frame_encode(&b, 1005, NULL, 0, NULL), -EINVAL);
    ck_assert_int_eq(ws_close_frame_encode(&b, 999, NULL, 0, NULL), -EINVAL);
    ck_assert_int_eq(ws_close_frame_encode(&b, 1000, "\xff", 1, NULL), -EINVAL);
    ck_assert_uint_eq(b.len, 2);
    /* a long reason is cut to <= 123 bytes at a character boundary: 100 x "é" (200 bytes)
     * -> 61 characters = 122 bytes */
    char reason[200];
    for (int i = 0; i < 100; i++)
        memcpy(reason + 2 * i, "\xc3\xa9", 2);
    b.len = 0;
    ck_assert_int_eq(ws_close_frame_encode(&b, 4000, reason, sizeof reason, KEY), 0);
    ck_assert_uint_eq(b.len, 2 + 4 + 2 + 122);
    ws_reader r;
    ws_reader_init(&r, 10, 1);
    size_t used;
    ws_event ev;
    ck_assert_int_eq(ws_reader_next(&r, b.data, b.len, &used, &ev), WS_EV_CLOSE);
    ck_assert_uint_eq(ev.close_code, 4000);
    ck_assert_uint_eq(ev.len, 122);
    ck_assert_int_eq(memcmp(ev.data, reason, 122), 0);
    ws_reader_deinit(&r);
    gw_buf_deinit(&b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("ws");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_header_decode_lengths);
    tcase_add_test(tc, test_header_encode_roundtrip);
    tcase_add_test(tc, test_mask_matches_naive);
    tcase_add_test(tc, test_reader_simple_messages);
    tcase_add_test(tc, test_reader_zero_copy_and_consumed);
    tcase_add_test(tc, test_reader_fragmentation_with_control_frames);
    tcase_add_test(tc, test_reader_7_16_64_bit_lengths);
    tcase_add_test(tc, test_reader_max_size_limit);
    tcase_add_test(tc, test_reader_too_big_detected_from_header);
    tcase_add_test(tc, test_reader_need);
    tcase_add_test(tc, test_masking_roundtrip_both_directions);
    tcase_add_test(tc, test_client_side_reader);
    tcase_add_test(tc, test_error_unmasked_client_frame);
    tcase_add_test(tc, test_error_rsv_bits);
    tcase_add_test(tc, test_error_reserved_opcodes);
    tcase_add_test(tc, test_error_control_frames);
    tcase_add_test(tc, test_error_fragment_sequence);
    tcase_add_test(tc, test_error_64bit_msb);
    tcase_add_test(tc, test_close_frames);
    tcase_add_test(tc, test_close_codes);
    tcase_add_test(tc, test_error_invalid_utf8_text);
    tcase_add_test(tc, test_utf8_fail_fast);
    tcase_add_test(tc, test_error_is_sticky);
    tcase_add_test(tc, test_reassembly_out_of_memory_and_leaks);
    tcase_add_test(tc, test_close_reply);
    tcase_add_test(tc, test_close_frame_encode);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
