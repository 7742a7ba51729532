#include "common/clientid.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static const char hexdig[16] = "0123456789abcdef";

void clientid_encode(const gw_client_addr *a, char out[CLIENTID_LEN + 1])
{
    uint64_t hi = (uint64_t)a->ip << 16 | a->port; /* 48 bits: ip | port */
    for (int i = 11; i >= 0; i--) {
        out[i] = hexdig[hi & 0xf];
        hi >>= 4;
    }
    uint32_t c = a->conn;
    for (int i = 19; i >= 12; i--) {
        out[i] = hexdig[c & 0xf];
        c >>= 4;
    }
    out[CLIENTID_LEN] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int clientid_decode_n(const char *s, size_t len, gw_client_addr *a)
{
    if (s == NULL || len != CLIENTID_LEN)
        return -EINVAL;
    uint64_t hi = 0;
    uint32_t conn = 0;
    for (size_t i = 0; i < CLIENTID_LEN; i++) {
        int v = hexval(s[i]);
        if (v < 0)
            return -EINVAL;
        if (i < 12)
            hi = hi << 4 | (uint64_t)v;
        else
            conn = conn << 4 | (uint32_t)v;
    }
    if (conn == 0)
        return -EINVAL;
    a->ip = (uint32_t)(hi >> 16);
    a->port = (uint16_t)hi;
    a->conn = conn;
    return 0;
}

int clientid_decode(const char *s, gw_client_addr *a)
{
    if (s == NULL)
        return -EINVAL;
    return clientid_decode_n(s, strnlen(s, CLIENTID_LEN + 1), a);
}

uint32_t clientid_boot_counter_at(uint64_t unix_ms)
{
    /* No 64-bit overflow for the next ~140,000 years. */
    uint32_t v = (uint32_t)(unix_ms * CLIENTID_NUMBERS_PER_SEC / 1000u);
    return v ? v : 1;
}

uint32_t clientid_boot_counter(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 1;
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return clientid_boot_counter_at(ms);
}
