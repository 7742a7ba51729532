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
