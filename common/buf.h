/* buf.h - byte buffers.
 *
 * gw_buf: a growable owned byte array. A zeroed gw_buf is a valid empty buffer
 * (no allocation until the first append); gw_buf_deinit frees it and leaves it
 * zeroed. Functions that grow return 0 or -ENOMEM (the buffer is then unchanged).
 *
 * gw_sbuf: an immutable, reference-counted byte block shared by many readers
 * (one broadcast frame written to thousands of sockets). Single-threaded
 * reference counting: use from one loop thread only.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} gw_buf;

void gw_buf_init(gw_buf *b);
void gw_buf_deinit(gw_buf *b);
/* Makes room for at least `extra` more bytes after len. */
int gw_buf_reserve(gw_buf *b, size_t extra);
int gw_buf_append(gw_buf *b, const void *p, size_t n);
int gw_buf_append_u8(gw_buf *b, uint8_t v);
int gw_buf_append_be16(gw_buf *b, uint16_t v);
int gw_buf_append_be32(gw_buf *b, uint32_t v);
int gw_buf_append_be64(gw_buf *b, uint64_t v);
int gw_buf_append_str(gw_buf *b, const char *s);
int gw_buf_printf(gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void gw_buf_consume(gw_buf *b, size_t n);
/* Empties the buffer and frees its memory when cap > keep. */
void gw_buf_reset(gw_buf *b, size_t keep);
/* Hands the bytes to the caller (who frees them with gw_free); b becomes empty. */
uint8_t *gw_buf_take(gw_buf *b, size_t *len);

typedef struct gw_sbuf {
    uint32_t refs;
    uint32_t len;
    uint8_t data[];
} gw_sbuf;

/* New block of len bytes (contents uninitialised) with one reference, or NULL. */
gw_sbuf *gw_sbuf_new(size_t len);
static inline gw_sbuf *gw_sbuf_ref(gw_sbuf *s)
{
    s->refs++;
    return s;
}
/* Drops one reference; frees at zero (small blocks go to a per-thread cache of
 * at most 1024 blocks, reused by gw_sbuf_new). NULL is a no-op. */
void gw_sbuf_unref(gw_sbuf *s);
/* Frees this thread's cache of small blocks (at shutdown, for leak checkers). */
void gw_sbuf_cache_drain(void);

/* Big-endian loads and stores used by the codecs. */
static inline uint16_t gw_load_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t gw_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t gw_load_be64(const uint8_t *p)
{
    return (uint64_t)gw_load_be32(p) << 32 | gw_load_be32(p + 4);
}
static inline void gw_store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void gw_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void gw_store_be64(uint8_t *p, uint64_t v)
{
    gw_store_be32(p, (uint32_t)(v >> 32));
    gw_store_be32(p + 4, (uint32_t)v);
}

#endif
