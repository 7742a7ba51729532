#include "common/alloc.h"
#include "common/buf.h"
#include "common/proto.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const gwp_sender test_sender = {
    .role = GWP_ROLE_GATEWAY,
    .port = 2300,
    .ip = 0x7f000001u,
    .nonce = 0x0102030405060708ull,
};

static const char secret[] = "cluster-secret";

/* A batch of two frames: SEND with a and b, then an empty PING. */
static uint8_t *make_batch(const gwp_key *key, size_t *len)
{
    gwp_writer w = {0};
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0);
    gwp_frame f1 = {.cmd = GWP_CMD_SEND,
                    .flags = 0x80,
                    .aux = 0x1234,
                    .conn = 7,
                    .req = 0x0a0b0c0d,
                    .a = (const uint8_t *)"ab",
                    .a_len = 2,
                    .b = (const uint8_t *)"hello",
                    .b_len = 5};
    gwp_frame f2 = {.cmd = GWP_PING};
    ck_assert_int_eq(gwp_writer_add(&w, &f1), 0);
    ck_assert_int_eq(gwp_writer_add(&w, &f2), 0);
    ck_assert_int_eq(gwp_writer_finish(&w, key), 0);
    uint8_t *p = gwp_writer_take(&w, len);
    ck_assert_ptr_nonnull(p);
    gwp_writer_deinit(&w);
    return p;
}

static const uint8_t expected_plain[] = {
    /* header */
    'G', 'W', 1, 0, 2, 0, 0x08, 0xfc, 0x7f, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2,
    /* frame 1 */
    30, 0x80, 0x12, 0x34, 0, 0, 0, 7, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 2, 0, 0, 0, 5, 'a', 'b', 'h',
    'e', 'l', 'l', 'o',
    /* frame 2 */
    90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static void init_key(gwp_key *k)
{
    ck_assert_int_eq(gwp_key_init(k, secret, strlen(secret)), 0);
}

START_TEST(test_encode_exact_bytes)
{
    size_t len;
    uint8_t *p = make_batch(NULL, &len);
    ck_assert_uint_eq(len, sizeof expected_plain);
    ck_assert_uint_eq(len, GWP_HDR_LEN + 2 * GWP_FRAME_HDR_LEN + 7);
    ck_assert_mem_eq(p, expected_plain, len);
    gw_free(p);
}
END_TEST

START_TEST(test_encode_hmac_bytes)
{
    gwp_key k;
    init_key(&k);
    size_t len;
    uint8_t *p = make_batch(&k, &len);
    ck_assert_uint_eq(len, sizeof expected_plain + GWP_TAG_LEN);
    ck_assert_uint_eq(p[3], GWP_F_HMAC);
    ck_assert_mem_eq(p + 4, expected_plain + 4, sizeof expected_plain - 4);

    /* The tag is HMAC-SHA256(secret, bytes up to the tag), computed independently. */
    uint8_t tag[32];
    unsigned int tlen = 0;
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha256(), secret, (int)strlen(secret), p, len - GWP_TAG_LEN, tag, &tlen));
    ck_assert_uint_eq(tlen, 32);
    ck_assert_mem_eq(p + len - GWP_TAG_LEN, tag, 32);

    /* The reused context gives the same tag on a second batch. */
    uint8_t *q = make_batch(&k, &len);
    ck_assert_mem_eq(q + len - GWP_TAG_LEN, tag, 32);
    gw_free(q);
    gw_free(p);
    gwp_key_deinit(&k);
}
END_TEST

START_TEST(test_hmac_rfc4231)
{
    /* RFC 4231 test case 2 through gwp_key: the MAC of an empty batch with key
     * "Jefe" must equal HMAC() of the same bytes; and HMAC() itself is checked. */
    static const uint8_t rfc[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                    0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                    0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                    0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    uint8_t out[32];
    unsigned int ol;
    const char *data = "what do ya want for nothing?";
    HMAC(EVP_sha256(), "Jefe", 4, (const uint8_t *)data, strlen(data), out, &ol);
    ck_assert_mem_eq(out, rfc, 32);

    gwp_key k;
    ck_assert_int_eq(gwp_key_init(&k, "Jefe", 4), 0);
    gwp_writer w = {0};
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0);
    ck_assert_int_eq(gwp_writer_finish(&w, &k), 0);
    size_t len;
    const uint8_t *p = gwp_writer_bytes(&w, &len);
    ck_assert_uint_eq(len, GWP_HDR_LEN + GWP_TAG_LEN);
    HMAC(EVP_sha256(), "Jefe", 4, p, GWP_HDR_LEN, out, &ol);
    ck_assert_mem_eq(p + GWP_HDR_LEN, out, 32);
    gwp_batch b;
    ck_assert_int_eq(gwp_batch_open(p, len, &k, &b), 0);
    ck_assert_uint_eq(b.count, 0);
    gwp_frame f;
    ck_assert_int_eq(gwp_batch_next(&b, &f), 0);
    gwp_writer_deinit(&w);
    gwp_key_deinit(&k);
}
END_TEST

START_TEST(test_decode_roundtrip)
{
    gwp_key k;
    init_key(&k);
    for (int keyed = 0; keyed < 2; keyed++) {
        size_t len;
        uint8_t *p = make_batch(keyed ? &k : NULL, &len);
        gwp_batch b;
        ck_assert_int_eq(gwp_batch_open(p, len, keyed ? &k : NULL, &b), 0);
        ck_assert_uint_eq(b.version, GWP_VERSION);
        ck_assert_uint_eq(b.flags, keyed ? GWP_F_HMAC : 0);
        ck_assert_uint_eq(b.sender.role, GWP_ROLE_GATEWAY);
        ck_assert_uint_eq(b.sender.port, 2300);
        ck_assert_uint_eq(b.sender.ip, 0x7f000001u);
        ck_assert_uint_eq(b.sender.nonce, 0x0102030405060708ull);
        ck_assert_uint_eq(b.count, 2);
        gwp_frame f;
        ck_assert_int_eq(gwp_batch_next(&b, &f), 1);
        ck_assert_uint_eq(f.cmd, GWP_CMD_SEND);
        ck_assert_uint_eq(f.flags, 0x80);
        ck_assert_uint_eq(f.aux, 0x1234);
        ck_assert_uint_eq(f.conn, 7);
        ck_assert_uint_eq(f.req, 0x0a0b0c0d);
        ck_assert_uint_eq(f.a_len, 2);
        ck_assert_mem_eq(f.a, "ab", 2);
        ck_assert_uint_eq(f.b_len, 5);
        ck_assert_mem_eq(f.b, "hello", 5);
        ck_assert_int_eq(gwp_batch_next(&b, &f), 1);
        ck_assert_uint_eq(f.cmd, GWP_PING);
        ck_assert_uint_eq(f.a_len, 0);
        ck_assert_uint_eq(f.b_len, 0);
        ck_assert_ptr_nonnull(f.a);
        ck_assert_ptr_nonnull(f.b);
        ck_assert_int_eq(gwp_batch_next(&b, &f), 0);
        ck_assert_int_eq(gwp_batch_next(&b, &f), 0);
        gw_free(p);
    }
    gwp_key_deinit(&k);
}
END_TEST

START_TEST(test_hmac_reject)
{
    gwp_key k, other;
    init_key(&k);
    ck_assert_int_eq(gwp_key_init(&other, "cluster-secreT", 14), 0);
    size_t len, plen;
    uint8_t *p = make_batch(&k, &len);
    uint8_t *plain = make_batch(NULL, &plen);
    gwp_batch b;

    ck_assert_int_eq(gwp_batch_open(p, len, &k, &b), 0);
    ck_assert_int_eq(gwp_batch_open(p, len, &other, &b), GWP_EAUTH);
    /* Untagged batch while a key is configured. */
    ck_assert_int_eq(gwp_batch_open(plain, plen, &k, &b), GWP_EAUTH);

    /* Flip every bit of every byte: the magic and version bytes give their own
     * errors; every other byte, tag included, gives GWP_EAUTH. */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            int rc = gwp_batch_open(p, len, &k, &b);
            if (i < 2)
                ck_assert_int_eq(rc, GWP_EMAGIC);
            else if (i == 2)
                ck_assert_int_eq(rc, GWP_EVERSION);
            else
                ck_assert_int_eq(rc, GWP_EAUTH);
            ck_assert_uint_eq(b.count, 0);
            ck_assert_ptr_null(b.pos);
            p[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Truncated tag, extended tag. */
    for (size_t cut = 1; cut <= GWP_TAG_LEN; cut++)
        ck_assert_int_eq(gwp_batch_open(p, len - cut, &k, &b), GWP_EAUTH);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    ck_assert_int_eq(gwp_batch_open(longer, len + 1, &k, &b), GWP_EAUTH);
    free(longer);
    /* Tag stripped but flag kept. */
    ck_assert_int_eq(gwp_batch_open(p, len - GWP_TAG_LEN, &k, &b), GWP_EAUTH);

    ck_assert_int_eq(gwp_batch_open(p, len, &k, &b), 0);
    gw_free(p);
    gw_free(plain);
    gwp_key_deinit(&k);
    gwp_key_deinit(&other);
}
END_TEST

START_TEST(test_nokey_reader_accepts_tagged)
{
    gwp_key k;
    init_key(&k);
    size_t len;
    uint8_t *p = make_batch(&k, &len);
    gwp_batch b;
    gwp_frame f;
    ck_assert_int_eq(gwp_batch_open(p, len, NULL, &b), 0);
    ck_assert_uint_eq(b.flags, GWP_F_HMAC);
    ck_assert_int_eq(gwp_batch_next(&b, &f), 1);
    ck_assert_mem_eq(f.b, "hello", 5);
    ck_assert_int_eq(gwp_batch_next(&b, &f), 1);
    ck_assert_int_eq(gwp_batch_next(&b, &f), 0);
    /* A wrong tag is ignored without a key... */
    p[len - 1] ^= 1;
    ck_assert_int_eq(gwp_batch_open(p, len, NULL, &b), 0);
    /* ...but it must be there in full: a cut tag leaves the frames short. */
    ck_assert_int_eq(gwp_batch_open(p, len - 1, NULL, &b), GWP_ETRUNC);
    ck_assert_int_eq(gwp_batch_open(p, GWP_HDR_LEN + 5, NULL, &b), GWP_ETRUNC);
    gw_free(p);
    gwp_key_deinit(&k);
}
END_TEST

START_TEST(test_every_truncation_rejected)
{
    gwp_key k;
    init_key(&k);
    for (int keyed = 0; keyed < 2; keyed++) {
        size_t len;
        uint8_t *p = make_batch(keyed ? &k : NULL, &len);
        for (size_t n = 0; n < len; n++) {
            /* An exact-size heap copy so ASan catches any read past n. */
            uint8_t *c = malloc(n ? n : 1);
            memcpy(c, p, n);
            gwp_batch b;
            int rc = gwp_batch_open(c, n, keyed ? &k : NULL, &b);
            ck_assert_int_lt(rc, 0);
            if (n < GWP_HDR_LEN)
                ck_assert_int_eq(rc, GWP_ETRUNC);
            if (keyed) {
                if (n >= GWP_HDR_LEN)
                    ck_assert_int_eq(rc, GWP_EAUTH);
                /* The keyless reader of a tagged batch also rejects every cut. */
                ck_assert_int_lt(gwp_batch_open(c, n, NULL, &b), 0);
            }
            free(c);
        }
        gw_free(p);
    }
    gwp_key_deinit(&k);
}
END_TEST

/* Builds a raw batch: header with `count`, then raw frame bytes. */
static size_t raw_batch(uint8_t *out, uint32_t count, const uint8_t *frames, size_t flen)
{
    memcpy(out, expected_plain, GWP_HDR_LEN);
    gw_store_be32(out + 20, count);
    memcpy(out + GWP_HDR_LEN, frames, flen);
    return GWP_HDR_LEN + flen;
}

static void frame_hdr(uint8_t *h, uint32_t a_len, uint32_t b_len)
{
    memset(h, 0, GWP_FRAME_HDR_LEN);
    h[0] = GWP_CMD_SEND;
    gw_store_be32(h + 12, a_len);
    gw_store_be32(h + 16, b_len);
}

START_TEST(test_length_overflow)
{
    uint8_t fr[GWP_FRAME_HDR_LEN + 16] = {0};
    uint8_t msg[256];
    gwp_batch b;
    struct {
        uint32_t a, b;
    } cases[] = {
        {0xffffffffu, 0xffffffffu},
        {0xffffffffu, 0},
        {0, 0xffffffffu},
        /* a + b wraps in u32 to exactly the 16 bytes present */
        {0xfffffff8u, 0x18u},
        {0x18u, 0xfffffff8u},
        {0x80000000u, 0x80000010u},
        {17, 0},
        {0, 17},
        {9, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        frame_hdr(fr, cases[i].a, cases[i].b);
        size_t n = raw_batch(msg, 1, fr, sizeof fr);
        ck_assert_int_eq(gwp_batch_open(msg, n, NULL, &b), GWP_ETRUNC);
    }
    /* The control case: exactly 16 bytes. */
    frame_hdr(fr, 7, 9);
    size_t n = raw_batch(msg, 1, fr, sizeof fr);
    ck_assert_int_eq(gwp_batch_open(msg, n, NULL, &b), 0);
    gwp_frame f;
    ck_assert_int_eq(gwp_batch_next(&b, &f), 1);
    ck_assert_uint_eq(f.a_len, 7);
    ck_assert_uint_eq(f.b_len, 9);
    ck_assert_ptr_eq(f.b + 9, msg + n);
}
END_TEST

START_TEST(test_frame_count_mismatch)
{
    uint8_t fr[2 * GWP_FRAME_HDR_LEN];
    frame_hdr(fr, 0, 0);
    frame_hdr(fr + GWP_FRAME_HDR_LEN, 0, 0);
    uint8_t msg[128];
    gwp_batch b;
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 2, fr, sizeof fr), NULL, &b), 0);
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 3, fr, sizeof fr), NULL, &b), GWP_ECOUNT);
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 1, fr, sizeof fr), NULL, &b),
                     GWP_ETRAILING);
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 0, fr, sizeof fr), NULL, &b),
                     GWP_ETRAILING);
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 0xffffffffu, fr, sizeof fr), NULL, &b),
                     GWP_ECOUNT);
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 0xffffffffu, fr, 0), NULL, &b), GWP_ECOUNT);
    /* Count 2 with half a second frame header. */
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 2, fr, sizeof fr - 10), NULL, &b),
                     GWP_ETRUNC);
    /* Trailing byte after a correct batch. */
    size_t n = raw_batch(msg, 2, fr, sizeof fr);
    msg[n] = 0;
    ck_assert_int_eq(gwp_batch_open(msg, n + 1, NULL, &b), GWP_ETRAILING);
    /* An empty batch (0 frames) is valid. */
    ck_assert_int_eq(gwp_batch_open(msg, raw_batch(msg, 0, fr, 0), NULL, &b), 0);
    gwp_frame f;
    ck_assert_int_eq(gwp_batch_next(&b, &f), 0);
}
END_TEST

START_TEST(test_header_errors)
{
    uint8_t msg[GWP_HDR_LEN];
    gwp_batch b;
    memcpy(msg, expected_plain, GWP_HDR_LEN);
    gw_store_be32(msg + 20, 0);
    ck_assert_int_eq(gwp_batch_open(msg, sizeof msg, NULL, &b), 0);
    struct {
        size_t off;
        uint8_t v;
        int rc;
    } cases[] = {
        {0, 'g', GWP_EMAGIC},    {1, 'X', GWP_EMAGIC},      {2, 0, GWP_EVERSION},
        {2, 2, GWP_EVERSION},    {3, 0x02, GWP_EHEADER},    {3, 0x80, GWP_EHEADER},
        {4, 0, GWP_EHEADER},     {4, 5, GWP_EHEADER},       {5, 1, GWP_EHEADER},
        {4, GWP_ROLE_CLIENT, 0}, {4, GWP_ROLE_REGISTER, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t m[GWP_HDR_LEN];
        memcpy(m, msg, sizeof m);
        m[cases[i].off] = cases[i].v;
        ck_assert_int_eq(gwp_batch_open(m, sizeof m, NULL, &b), cases[i].rc);
    }
    /* Errors on short input are reported from the bytes present. */
    ck_assert_int_eq(gwp_batch_open(NULL, 0, NULL, &b), GWP_ETRUNC);
    ck_assert_int_eq(gwp_batch_open((const uint8_t *)"X", 1, NULL, &b), GWP_EMAGIC);
    ck_assert_int_eq(gwp_batch_open((const uint8_t *)"GW", 2, NULL, &b), GWP_ETRUNC);
    ck_assert_int_eq(gwp_batch_open((const uint8_t *)"GW\x02", 3, NULL, &b), GWP_EVERSION);
    ck_assert_int_eq(gwp_batch_open((const uint8_t *)"GW\x01", 3, NULL, &b), GWP_ETRUNC);
}
END_TEST

START_TEST(test_garbage_rejected)
{
    srand(12345);
    uint8_t buf[512];
    gwp_key k;
    init_key(&k);
    long accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        /* Half the inputs get a plausible header so the frame walk is exercised,
         * with small lengths so that some frames fit. */
        if (iter & 1 && n >= GWP_HDR_LEN) {
            memcpy(buf, expected_plain, 20);
            gw_store_be32(buf + 20, (uint32_t)rand() % 4);
            for (size_t off = GWP_HDR_LEN; off + GWP_FRAME_HDR_LEN <= n; off += 29) {
                gw_store_be32(buf + off + 12, (uint32_t)rand() % 8);
                gw_store_be32(buf + off + 16, (uint32_t)rand() % 8);
            }
        }
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, buf, n);
        gwp_batch b;
        int rc = gwp_batch_open(c, n, NULL, &b);
        if (rc == 0) {
            accepted++;
            gwp_frame f;
            uint32_t seen = 0;
            while (gwp_batch_next(&b, &f)) {
                ck_assert(f.a >= c && f.b + f.b_len <= c + n);
                seen++;
            }
            ck_assert_uint_eq(seen, b.count);
        } else {
            ck_assert(rc == GWP_EMAGIC || rc == GWP_EVERSION || rc == GWP_ETRUNC ||
                      rc == GWP_EHEADER || rc == GWP_ECOUNT || rc == GWP_ETRAILING);
        }
        ck_assert_int_lt(gwp_batch_open(c, n, &k, &b), 0);
        free(c);
    }
    ck_assert_int_gt(accepted, 0); /* the structured half reaches success sometimes */
    gwp_key_deinit(&k);
}
END_TEST

START_TEST(test_writer_states)
{
    gwp_writer w;
    gwp_writer_init(&w);
    gwp_frame f = {.cmd = GWP_CMD_SEND, .b = (const uint8_t *)"x", .b_len = 1};
    size_t len = 99;
    ck_assert_int_eq(gwp_writer_add(&w, &f), -EINVAL);
    ck_assert_int_eq(gwp_writer_finish(&w, NULL), -EINVAL);
    ck_assert_ptr_null(gwp_writer_bytes(&w, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(gwp_writer_take(&w, &len));

    gwp_sender bad = test_sender;
    bad.role = 0;
    ck_assert_int_eq(gwp_writer_begin(&w, &bad), -EINVAL);
    bad.role = GWP_ROLE_MAX + 1;
    ck_assert_int_eq(gwp_writer_begin(&w, &bad), -EINVAL);
    ck_assert_int_eq(gwp_writer_add(&w, &f), -EINVAL);

    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0);
    ck_assert_uint_eq(gwp_writer_count(&w), 0);
    ck_assert_uint_eq(gwp_writer_size(&w), GWP_HDR_LEN);
    ck_assert_ptr_null(gwp_writer_bytes(&w, &len)); /* not finished */
    gwp_frame bad_f = {.cmd = 1, .a = NULL, .a_len = 3};
    ck_assert_int_eq(gwp_writer_add(&w, &bad_f), -EINVAL);
    bad_f = (gwp_frame){.cmd = 1, .b = NULL, .b_len = 3};
    ck_assert_int_eq(gwp_writer_add(&w, &bad_f), -EINVAL);
#if SIZE_MAX > UINT32_MAX
    bad_f = (gwp_frame){.cmd = 1, .a = (const uint8_t *)"", .a_len = (size_t)UINT32_MAX + 1};
    ck_assert_int_eq(gwp_writer_add(&w, &bad_f), -E2BIG);
#endif
    ck_assert_uint_eq(gwp_writer_size(&w), GWP_HDR_LEN);
    ck_assert_int_eq(gwp_writer_add(&w, &f), 0);
    ck_assert_uint_eq(gwp_writer_count(&w), 1);
    ck_assert_uint_eq(gwp_writer_size(&w), GWP_HDR_LEN + GWP_FRAME_HDR_LEN + 1);
    ck_assert_uint_eq(gwp_writer_size(&w), GWP_HDR_LEN + gwp_frame_wire_len(0, 1));
    ck_assert_int_eq(gwp_writer_finish(&w, NULL), 0);
    ck_assert_int_eq(gwp_writer_finish(&w, NULL), -EINVAL);
    ck_assert_int_eq(gwp_writer_add(&w, &f), -EINVAL);
    const uint8_t *bytes = gwp_writer_bytes(&w, &len);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_uint_eq(len, GWP_HDR_LEN + GWP_FRAME_HDR_LEN + 1);
    ck_assert_uint_eq(gw_load_be32(bytes + 20), 1);

    /* reset keeps capacity; begin after finish reuses the buffer. */
    uint8_t *data = w.buf.data;
    gwp_writer_reset(&w, SIZE_MAX);
    ck_assert_ptr_eq(w.buf.data, data);
    ck_assert_ptr_null(gwp_writer_bytes(&w, &len));
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0);
    ck_assert_ptr_eq(w.buf.data, data);
    ck_assert_int_eq(gwp_writer_add(&w, &f), 0);
    ck_assert_int_eq(gwp_writer_finish(&w, NULL), 0);
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0); /* drops the finished batch */
    ck_assert_uint_eq(gwp_writer_count(&w), 0);
    ck_assert_uint_eq(gwp_writer_size(&w), GWP_HDR_LEN);
    gwp_writer_reset(&w, 0);
    ck_assert_ptr_null(w.buf.data);
    gwp_writer_deinit(&w);
    gwp_writer_deinit(&w);
}
END_TEST

START_TEST(test_writer_inplace)
{
    gwp_writer w = {0};
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0);
    uint8_t *a = NULL, *bb = NULL;
    gwp_frame f = {.cmd = GWP_CMD_SEND,
                   .flags = 0x80,
                   .aux = 0x1234,
                   .conn = 7,
                   .req = 0x0a0b0c0d,
                   .a_len = 2,
                   .b_len = 5};
    ck_assert_int_eq(gwp_writer_add_inplace(&w, &f, &a, &bb), 0);
    memcpy(a, "ab", 2);
    memcpy(bb, "hello", 5);
    gwp_frame f2 = {.cmd = GWP_PING};
    ck_assert_int_eq(gwp_writer_add_inplace(&w, &f2, NULL, NULL), 0);
    ck_assert_int_eq(gwp_writer_finish(&w, NULL), 0);
    size_t len;
    const uint8_t *p = gwp_writer_bytes(&w, &len);
    ck_assert_uint_eq(len, sizeof expected_plain);
    ck_assert_mem_eq(p, expected_plain, len);
    gwp_writer_deinit(&w);
}
END_TEST

START_TEST(test_writer_batch_limit)
{
    /* The caller's size limit: add while header + frames + tag fit. */
    const size_t max = 1000;
    gwp_key k;
    init_key(&k);
    gwp_writer w = {0};
    uint8_t payload[64];
    memset(payload, 'p', sizeof payload);
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0);
    uint32_t added = 0;
    while (gwp_writer_size(&w) + gwp_frame_wire_len(0, sizeof payload) + GWP_TAG_LEN <= max) {
        gwp_frame f = {
            .cmd = GWP_EV_MESSAGE, .conn = added + 1, .b = payload, .b_len = sizeof payload};
        ck_assert_int_eq(gwp_writer_add(&w, &f), 0);
        added++;
    }
    ck_assert_uint_eq(added, (max - GWP_HDR_LEN - GWP_TAG_LEN) / (GWP_FRAME_HDR_LEN + 64));
    ck_assert_uint_eq(gwp_writer_count(&w), added);
    ck_assert_int_eq(gwp_writer_finish(&w, &k), 0);
    size_t len;
    const uint8_t *p = gwp_writer_bytes(&w, &len);
    ck_assert_uint_le(len, max);
    gwp_batch b;
    ck_assert_int_eq(gwp_batch_open(p, len, &k, &b), 0);
    gwp_frame f;
    uint32_t i = 0;
    while (gwp_batch_next(&b, &f)) {
        ck_assert_uint_eq(f.conn, i + 1);
        ck_assert_mem_eq(f.b, payload, sizeof payload);
        i++;
    }
    ck_assert_uint_eq(i, added);
    gwp_writer_deinit(&w);
    gwp_key_deinit(&k);
}
END_TEST

START_TEST(test_writer_alloc_failure)
{
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    gwp_writer w = {0};
    gw_alloc_fail_after(0);
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), -ENOMEM);
    gw_alloc_fail_after(-1);
    ck_assert_int_eq(gwp_writer_add(&w, &(gwp_frame){.cmd = 1}), -EINVAL); /* left idle */
    ck_assert_int_eq(gwp_writer_begin(&w, &test_sender), 0);
    static uint8_t big[4096];
    gwp_frame f = {.cmd = GWP_CMD_SEND, .b = big, .b_len = sizeof big};
    gw_alloc_fail_after(0);
    ck_assert_int_eq(gwp_writer_add(&w, &f), -ENOMEM);
    gw_alloc_fail_after(-1);
    ck_assert_uint_eq(gwp_writer_count(&w), 0);
    ck_assert_uint_eq(gwp_writer_size(&w), GWP_HDR_LEN);
    ck_assert_int_eq(gwp_writer_add(&w, &f), 0);
    /* finish with a key needs 32 more bytes: make that fail, then succeed. */
    gwp_key k;
    init_key(&k);
    w.buf.cap = w.buf.len; /* force a reallocation for the tag */
    gw_alloc_fail_after(0);
    ck_assert_int_eq(gwp_writer_finish(&w, &k), -ENOMEM);
    gw_alloc_fail_after(-1);
    ck_assert_uint_eq(w.buf.data[3], 0); /* flag not left set */
    ck_assert_int_eq(gwp_writer_finish(&w, &k), 0);
    size_t len;
    uint8_t *p = gwp_writer_take(&w, &len);
    gwp_batch b;
    ck_assert_int_eq(gwp_batch_open(p, len, &k, &b), 0);
    gw_free(p);
    gwp_writer_deinit(&w);
    gwp_key_deinit(&k);
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    gw_alloc_track(0);
}
END_TEST

START_TEST(test_key_init)
{
    gwp_key k = {0};
    gwp_key_deinit(&k); /* zeroed is fine */
    ck_assert_int_eq(gwp_key_init(&k, "", 0), -EINVAL);
    ck_assert_ptr_null(k.ctx);
    ck_assert_int_eq(gwp_key_init(&k, NULL, 5), -EINVAL);
    /* A key longer than the SHA-256 block (hashed first) works too. */
    char longkey[200];
    memset(longkey, 'k', sizeof longkey);
    ck_assert_int_eq(gwp_key_init(&k, longkey, sizeof longkey), 0);
    size_t len;
    uint8_t *p = make_batch(&k, &len);
    uint8_t tag[32];
    unsigned int tl;
    HMAC(EVP_sha256(), longkey, sizeof longkey, p, len - 32, tag, &tl);
    ck_assert_mem_eq(p + len - 32, tag, 32);
    gw_free(p);
    gwp_key_deinit(&k);
    gwp_key_deinit(&k);
}
END_TEST

START_TEST(test_u32list)
{
    gw_buf out = {0};
    uint32_t v[] = {1, 0xdeadbeefu, 0, 0xffffffffu};
    ck_assert_int_eq(gwp_u32list_append(&out, v, 4), 0);
    ck_assert_int_eq(gw_buf_append_str(&out, "{\"x\":1}"), 0); /* other params follow */
    ck_assert_uint_eq(out.len, gwp_u32list_wire_len(4) + 7);
    static const uint8_t want[] = {0,    0,    0, 4, 0, 0, 0,    1,    0xde, 0xad,
                                   0xbe, 0xef, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    ck_assert_mem_eq(out.data, want, sizeof want);

    gwp_u32list l;
    size_t used = 0;
    ck_assert_int_eq(gwp_u32list_view(out.data, out.len, &l, &used), 0);
    ck_assert_uint_eq(l.n, 4);
    ck_assert_uint_eq(used, 20);
    for (uint32_t i = 0; i < 4; i++)
        ck_assert_uint_eq(gwp_u32list_at(&l, i), v[i]);

    /* Every truncation of the list itself is rejected. */
    for (size_t n = 0; n < 20; n++) {
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, out.data, n);
        ck_assert_int_eq(gwp_u32list_view(c, n, &l, NULL), GWP_ETRUNC);
        ck_assert_uint_eq(l.n, 0);
        free(c);
    }
    /* A count that would overflow 32-bit arithmetic. */
    uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    ck_assert_int_eq(gwp_u32list_view(huge, sizeof huge, &l, NULL), GWP_ETRUNC);
    gw_store_be32(huge, 0x40000001u); /* 4 * n wraps to 4 in u32 */
    ck_assert_int_eq(gwp_u32list_view(huge, sizeof huge, &l, NULL), GWP_ETRUNC);

    /* Empty list; store into a reserved section. */
    gw_buf_reset(&out, 0);
    ck_assert_int_eq(gwp_u32list_append(&out, NULL, 0), 0);
    ck_assert_uint_eq(out.len, 4);
    ck_assert_int_eq(gwp_u32list_view(out.data, out.len, &l, &used), 0);
    ck_assert_uint_eq(l.n, 0);
    uint8_t dst[12];
    ck_assert_uint_eq(gwp_u32list_store(dst, v, 2), 12);
    ck_assert_uint_eq(gw_load_be32(dst), 2);
    ck_assert_mem_eq(dst + 4, want + 4, 8);
    gw_buf_deinit(&out);
}
END_TEST

START_TEST(test_names)
{
    int errs[] = {GWP_EMAGIC, GWP_EVERSION, GWP_ETRUNC,   GWP_EHEADER,
                  GWP_EAUTH,  GWP_ECOUNT,   GWP_ETRAILING};
    size_t n = sizeof errs / sizeof errs[0];
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_lt(errs[i], -133); /* clear of -errno values */
        ck_assert_str_ne(gwp_strerror(errs[i]), "unknown error");
        for (size_t j = 0; j < i; j++) {
            ck_assert_int_ne(errs[i], errs[j]);
            ck_assert_str_ne(gwp_strerror(errs[i]), gwp_strerror(errs[j]));
        }
    }
    ck_assert_str_eq(gwp_strerror(-ENOMEM), "out of memory");
    ck_assert_str_eq(gwp_strerror(-99999), "unknown error");
    ck_assert_str_eq(gwp_cmd_name(GWP_CMD_SEND), "CMD_SEND");
    ck_assert_str_eq(gwp_cmd_name(GWP_EV_WS_CONNECT), "EV_WS_CONNECT");
    ck_assert_str_eq(gwp_cmd_name(GWP_DRAIN), "DRAIN");
    ck_assert_str_eq(gwp_cmd_name(0), "UNKNOWN");
    ck_assert_str_eq(gwp_cmd_name(255), "UNKNOWN");
    ck_assert_str_eq(gwp_cmd_name(-1), "UNKNOWN");
    /* Every defined command has a name. */
    int cmds[] = {1,  2,  10, 11, 12, 13, 30, 31, 32, 33, 34, 35,
                  36, 37, 38, 39, 40, 41, 42, 60, 61, 90, 91, 92};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        ck_assert_str_ne(gwp_cmd_name(cmds[i]), "UNKNOWN");
}
END_TEST

START_TEST(test_next_on_unopened_batch)
{
    gwp_batch b = {0};
    gwp_frame f;
    ck_assert_int_eq(gwp_batch_next(&b, &f), 0);
    /* After a failed open, b is zeroed. */
    ck_assert_int_eq(gwp_batch_open((const uint8_t *)"nope", 4, NULL, &b), GWP_EMAGIC);
    ck_assert_int_eq(gwp_batch_next(&b, &f), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_encode_exact_bytes);
    tcase_add_test(tc, test_encode_hmac_bytes);
    tcase_add_test(tc, test_hmac_rfc4231);
    tcase_add_test(tc, test_decode_roundtrip);
    tcase_add_test(tc, test_hmac_reject);
    tcase_add_test(tc, test_nokey_reader_accepts_tagged);
    tcase_add_test(tc, test_every_truncation_rejected);
    tcase_add_test(tc, test_length_overflow);
    tcase_add_test(tc, test_frame_count_mismatch);
    tcase_add_test(tc, test_header_errors);
    tcase_add_test(tc, test_garbage_rejected);
    tcase_add_test(tc, test_writer_states);
    tcase_add_test(tc, test_writer_inplace);
    tcase_add_test(tc, test_writer_batch_limit);
    tcase_add_test(tc, test_writer_alloc_failure);
    tcase_add_test(tc, test_key_init);
    tcase_add_test(tc, test_u32list);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_next_on_unopened_batch);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
