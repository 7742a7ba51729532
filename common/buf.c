#include "common/buf.h"
#include "common/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gw_buf_init(gw_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void gw_buf_deinit(gw_buf *b)
{
    gw_free(b->data);
    gw_buf_init(b);
}

int gw_buf_reserve(gw_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return -ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = gw_realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int gw_buf_append(gw_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = gw_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int gw_buf_append_u8(gw_buf *b, uint8_t v)
{
    return gw_buf_append(b, &v, 1);
}

int gw_buf_append_be16(gw_buf *b, uint16_t v)
{
    uint8_t t[2];
    gw_store_be16(t, v);
    return gw_buf_append(b, t, 2);
}

int gw_buf_append_be32(gw_buf *b, uint32_t v)
{
    uint8_t t[4];
    gw_store_be32(t, v);
    return gw_buf_append(b, t, 4);
}

int gw_buf_append_be64(gw_buf *b, uint64_t v)
{
    uint8_t t[8];
    gw_store_be64(t, v);
    return gw_buf_append(b, t, 8);
}

int gw_buf_append_str(gw_buf *b, const char *s)
{
    return gw_buf_append(b, s, strlen(s));
}

int gw_buf_printf(gw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = gw_buf_reserve(b, (size_t)n + 1);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void gw_buf_consume(gw_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void gw_buf_reset(gw_buf *b, size_t keep)
{
    b->len = 0;
    if (b->cap > keep)
        gw_buf_deinit(b);
}

uint8_t *gw_buf_take(gw_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    gw_buf_init(b);
    return p;
}

/* Small blocks (every unicast message of a chat or echo) are recycled through a
 * per-thread free list: a block of at most SBUF_SMALL bytes is always allocated
 * with room for SBUF_SMALL, so any small block fits any small request. */
#define SBUF_SMALL 480
#define SBUF_CACHE 1024

typedef struct sbuf_free {
    struct sbuf_free *next;
} sbuf_free;

static _Thread_local sbuf_free *sbuf_cache;
static _Thread_local unsigned sbuf_cached;

gw_sbuf *gw_sbuf_new(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    gw_sbuf *s;
    if (len <= SBUF_SMALL && sbuf_cache) {
        s = (gw_sbuf *)sbuf_cache;
        sbuf_cache = sbuf_cache->next;
        sbuf_cached--;
    } else {
        s = gw_malloc(sizeof *s + (len <= SBUF_SMALL ? SBUF_SMALL : len));
        if (s == NULL)
            return NULL;
    }
    s->refs = 1;
    s->len = (uint32_t)len;
    return s;
}

void gw_sbuf_unref(gw_sbuf *s)
{
    if (s == NULL || --s->refs != 0)
        return;
    if (s->len <= SBUF_SMALL && sbuf_cached < SBUF_CACHE) {
        sbuf_free *f = (sbuf_free *)s;
        f->next = sbuf_cache;
        sbuf_cache = f;
        sbuf_cached++;
        return;
    }
    gw_free(s);
}

void gw_sbuf_cache_drain(void)
{
    while (sbuf_cache) {
        sbuf_free *f = sbuf_cache;
        sbuf_cache = f->next;
        gw_free(f);
    }
    sbuf_cached = 0;
}
