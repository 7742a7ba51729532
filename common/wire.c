#include "common/wire.h"
#include "common/buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

void wire_info_store(uint8_t out[WIRE_INFO_LEN], const wire_info *in)
{
    out[0] = in->proto;
    out[1] = in->family;
    gw_store_be16(out + 2, in->remote_port);
    gw_store_be16(out + 4, in->gateway_port);
    gw_store_be16(out + 6, 0);
    memcpy(out + 8, in->addr, 16);
}

int wire_info_load(const uint8_t *p, size_t len, wire_info *out)
{
    if (len < WIRE_INFO_LEN || (p[1] != 4 && p[1] != 6))
        return -EINVAL;
    out->proto = p[0];
    out->family = p[1];
    out->remote_port = gw_load_be16(p + 2);
    out->gateway_port = gw_load_be16(p + 4);
    memcpy(out->addr, p + 8, 16);
    return 0;
}

void wire_info_addr(const wire_info *in, char *out, size_t outlen)
{
    if (inet_ntop(in->family == 6 ? AF_INET6 : AF_INET, in->addr, out, (socklen_t)outlen) == NULL &&
        outlen > 0)
        out[0] = '\0';
}

size_t wire_names_size(const char *const *names, const size_t *lens, size_t n)
{
    size_t total = 4;
    for (size_t i = 0; i < n; i++)
        total += 2 + (lens ? lens[i] : strlen(names[i]));
    return total;
}

size_t wire_names_store(uint8_t *dst, const char *const *names, const size_t *lens, size_t n)
{
    uint8_t *p = dst;
    gw_store_be32(p, (uint32_t)n);
    p += 4;
    for (size_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(names[i]);
        gw_store_be16(p, (uint16_t)l);
        memcpy(p + 2, names[i], l);
        p += 2 + l;
    }
    return (size_t)(p - dst);
}

int wire_names_open(const uint8_t *src, size_t len, wire_names *it, size_t *used)
{
    if (len < 4)
        return -EINVAL;
    uint32_t n = gw_load_be32(src);
    const uint8_t *p = src + 4, *end = src + len;
    for (uint32_t i = 0; i < n; i++) {
        if ((size_t)(end - p) < 2)
            return -EINVAL;
        uint16_t l = gw_load_be16(p);
        if (l == 0 || l > WIRE_NAME_MAX || (size_t)(end - p) - 2 < l)
            return -EINVAL;
        p += 2 + l;
    }
    it->p = src + 4;
    it->end = p;
    it->left = n;
    if (used)
        *used = (size_t)(p - src);
    return 0;
}

int wire_names_next(wire_names *it, const char **name, size_t *len)
{
    if (it->left == 0)
        return 0;
    uint16_t l = gw_load_be16(it->p);
    *name = (const char *)it->p + 2;
    *len = l;
    it->p += 2 + l;
    it->left--;
    return 1;
}

int wire_idx_append(gw_buf *out, int op, int kind, const char *name, size_t len)
{
    if (len > WIRE_NAME_MAX)
        return -EINVAL;
    int rc = gw_buf_reserve(out, 4 + len);
    if (rc < 0)
        return rc;
    gw_buf_append_u8(out, (uint8_t)op);
    gw_buf_append_u8(out, (uint8_t)kind);
    gw_buf_append_be16(out, (uint16_t)len);
    return gw_buf_append(out, name, len);
}

int wire_idx_next(const uint8_t *src, size_t len, size_t *pos, wire_idx_entry *e)
{
    if (*pos >= len)
        return 0;
    if (len - *pos < 4)
        return -EINVAL;
    const uint8_t *p = src + *pos;
    uint16_t l = gw_load_be16(p + 2);
    if (len - *pos - 4 < l || p[0] < WIRE_IDX_ADD || p[0] > WIRE_IDX_RESET ||
        p[1] < WIRE_KIND_UID || p[1] > WIRE_KIND_GROUP || l > WIRE_NAME_MAX)
        return -EINVAL;
    e->op = p[0];
    e->kind = p[1];
    e->name = (const char *)p + 4;
    e->len = l;
    *pos += 4 + (size_t)l;
    return 1;
}
