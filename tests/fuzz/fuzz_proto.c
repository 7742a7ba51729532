/* fuzz_proto - libFuzzer target for the internal batch codec (common/proto.c).
 *
 * Input: byte 0 is a control byte, the rest is one nanomsg message as a peer sends it.
 *   bit 0: the harness appends a valid HMAC-SHA256 tag (setting GWP_F_HMAC), so that the
 *          keyed reader gets past authentication and walks the frames;
 *   bit 1: with bit 0, one byte of the message or tag is then flipped (position from the
 *          other bits and the length), which a keyed reader must reject.
 * Checked: the keyless reader and the keyed reader agree whenever the tag is valid; an
 * accepted batch yields exactly `count` frames, all inside the message and back to back;
 * re-encoding the frames with gwp_writer gives the same bytes (decode/encode identity);
 * u32 lists inside every `a` section stay in bounds; any changed byte after the version
 * fails authentication. */
#include "common/alloc.h"
#include "common/buf.h"
#include "common/proto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_secret[] = "fuzz-secret";

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static gwp_key *get_key(void)
{
    static gwp_key key;
    static int ready;
    if (!ready) {
        REQUIRE(gwp_key_init(&key, fuzz_secret, strlen(fuzz_secret)) == 0);
        ready = 1;
    }
    return &key;
}

static int known_error(int rc)
{
    return rc == GWP_EMAGIC || rc == GWP_EVERSION || rc == GWP_ETRUNC || rc == GWP_EHEADER ||
           rc == GWP_EAUTH || rc == GWP_ECOUNT || rc == GWP_ETRAILING;
}

/* Walks an opened batch and re-encodes it; checks everything against msg. */
static void check_batch(const uint8_t *msg, size_t len, gwp_batch *b)
{
    size_t body_end = (b->flags & GWP_F_HMAC) ? len - GWP_TAG_LEN : len;
    REQUIRE(b->end == msg + body_end);
    REQUIRE(b->pos == msg + GWP_HDR_LEN);
    REQUIRE(b->sender.role >= 1 && b->sender.role <= GWP_ROLE_MAX);

    gwp_writer w = {0};
    REQUIRE(gwp_writer_begin(&w, &b->sender) == 0);
    const uint8_t *expect = msg + GWP_HDR_LEN;
    gwp_frame f;
    uint32_t n = 0;
    while (gwp_batch_next(b, &f)) {
        REQUIRE(f.a == expect + GWP_FRAME_HDR_LEN);
        REQUIRE(f.b == f.a + f.a_len);
        REQUIRE(f.b_len <= (size_t)(msg + body_end - f.b));
        expect = f.b + f.b_len;
        (void)gwp_cmd_name(f.cmd);

        gwp_u32list l;
        size_t used = 0;
        if (gwp_u32list_view(f.a, f.a_len, &l, &used) == 0) {
            REQUIRE(used <= f.a_len);
            REQUIRE(used == 4 + 4 * (size_t)l.n);
            /* Re-packing the elements gives the same bytes. */
            uint32_t *v = malloc(l.n ? l.n * sizeof *v : 1);
            REQUIRE(v);
            for (uint32_t i = 0; i < l.n; i++)
                v[i] = gwp_u32list_at(&l, i);
            gw_buf lb = {0};
            REQUIRE(gwp_u32list_append(&lb, v, l.n) == 0);
            REQUIRE(lb.len == used && memcmp(lb.data, f.a, used) == 0);
            gw_buf_deinit(&lb);
            free(v);
        }
        REQUIRE(gwp_writer_add(&w, &f) == 0);
        n++;
    }
    REQUIRE(n == b->count);
    REQUIRE(expect == msg + body_end);
    REQUIRE(gwp_batch_next(b, &f) == 0);

    /* Same bytes out, apart from the flags byte (the writer sets HMAC only with a key). */
    REQUIRE(gwp_writer_finish(&w, NULL) == 0);
    size_t olen;
    const uint8_t *out = gwp_writer_bytes(&w, &olen);
    REQUIRE(olen == body_end);
    REQUIRE(memcmp(out, msg, 3) == 0);
    REQUIRE(memcmp(out + 4, msg + 4, body_end - 4) == 0);
    REQUIRE(out[3] == (msg[3] & ~GWP_F_HMAC));
    gwp_writer_deinit(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    gwp_key *key = get_key();
    gwp_batch b;

    /* 1. The raw input, without and with a key (exact-size copy for ASan). */
    uint8_t *msg = malloc(n ? n : 1);
    REQUIRE(msg);
    if (n)
        memcpy(msg, in, n);
    int rc = gwp_batch_open(msg, n, NULL, &b);
    REQUIRE(rc == 0 || known_error(rc));
    REQUIRE(gwp_strerror(rc) != NULL);
    if (rc == 0)
        check_batch(msg, n, &b);
    int rck = gwp_batch_open(msg, n, key, &b);
    REQUIRE(rck == 0 || known_error(rck));
    if (rck == 0) {
        REQUIRE(rc == 0); /* only a real tag gets here */
        check_batch(msg, n, &b);
    }
    free(msg);

    /* 2. The input with a valid tag appended. */
    if ((ctl & 1) && n >= 4) {
        size_t tlen = n + GWP_TAG_LEN;
        msg = malloc(tlen);
        REQUIRE(msg);
        memcpy(msg, in, n);
        msg[3] |= GWP_F_HMAC;
        unsigned int ol = 0;
        REQUIRE(HMAC(EVP_sha256(), fuzz_secret, (int)strlen(fuzz_secret), msg, n, msg + n, &ol) !=
                NULL);
        REQUIRE(ol == GWP_TAG_LEN);
        rc = gwp_batch_open(msg, tlen, NULL, &b);
        REQUIRE(rc == 0 || known_error(rc));
        if (rc == 0)
            check_batch(msg, tlen, &b);
        rck = gwp_batch_open(msg, tlen, key, &b);
        if (n >= GWP_HDR_LEN) /* past the header: keyed and keyless readers agree */
            REQUIRE(rck == rc);
        else
            REQUIRE(rck == rc || rck == GWP_EAUTH);
        if (rck == 0)
            check_batch(msg, tlen, &b);

        if (ctl & 2) {
            size_t pos = 3 + ((size_t)(ctl >> 2) * 2654435761u) % (tlen - 3);
            msg[pos] ^= (uint8_t)(1u << ((n + (ctl >> 2)) & 7));
            rck = gwp_batch_open(msg, tlen, key, &b);
            REQUIRE(rck != 0);
            if (msg[0] == GWP_MAGIC0 && msg[1] == GWP_MAGIC1 && msg[2] == GWP_VERSION &&
                tlen >= GWP_HDR_LEN)
                REQUIRE(rck == GWP_EAUTH);
        }
        free(msg);
    }
    return 0;
}
