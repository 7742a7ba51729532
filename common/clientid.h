/* clientid.h - GatewayWorker's client_id and the gateway's connection numbers.
 *
 * A client_id is 20 lowercase hex characters encoding 10 big-endian bytes:
 *   u32 gateway LAN IPv4 | u16 gateway inbox port | u32 connection number.
 * Example: 127.0.0.1, port 2300, conn 1 -> "7f00000108fc00000001". Any process
 * can tell from it which gateway (ip:port) holds the client, with no lookup.
 *
 * Connection numbers: a gateway starts its counter at clientid_boot_counter() and
 * takes numbers with clientid_counter_next(). Scheme: the start is the wall clock
 * scaled to CLIENTID_NUMBERS_PER_SEC (4096) numbers per second, modulo 2^32:
 *     start = floor(unix_ms * 4096 / 1000) mod 2^32   (0 is mapped to 1)
 * So a gateway restarted T seconds after its previous run started begins 4096*T
 * numbers further on, beyond every number the previous run used as long as it
 * averaged fewer than 4096 new connections per second of its life (a busy gateway
 * at 1000 connections/s uses 86M numbers a day, a quarter of that budget; a
 * reconnect storm of 100k clients is covered by a restart 25 s later).
 * Wrap: the start comes round every 2^32 / 4096 s = 2^20 s, about 12.1 days, and
 * a running counter wraps from 2^32-1 to 1 (0 is never a connection number: frames
 * use it for "no connection"). Collisions are possible only with a number issued
 * about 12 days (or a multiple) earlier, after a burst above the budget, or if the
 * wall clock steps backwards across a restart. The gateway must still skip numbers
 * in use by its own live connections after a wrap.
 *
 * Pure functions except clientid_boot_counter (reads CLOCK_REALTIME). None block;
 * all may be called from any thread and from callbacks.
 */
#ifndef GW_CLIENTID_H
#define GW_CLIENTID_H

#include <stddef.h>
#include <stdint.h>

#define CLIENTID_LEN 20
#define CLIENTID_NUMBERS_PER_SEC 4096u

typedef struct gw_client_addr {
    uint32_t ip;   /* gateway LAN IPv4, host byte order (127.0.0.1 = 0x7f000001) */
    uint16_t port; /* gateway inbox port */
    uint32_t conn; /* connection number on that gateway, never 0 */
} gw_client_addr;

/* Writes the 20 lowercase hex characters and a NUL into out. Never fails (a
 * conn of 0 is encoded, but clientid_decode rejects it). */
void clientid_encode(const gw_client_addr *a, char out[CLIENTID_LEN + 1]);

/* Strict decode of s[0..len): exactly 20 characters from [0-9a-f]. Uppercase hex
 * is rejected (gateways only issue lowercase, and one spelling per client keeps
 * client_ids usable as map keys), as is a connection number of 0. Returns 0 and
 * fills *a, or -EINVAL (a untouched). */
int clientid_decode_n(const char *s, size_t len, gw_client_addr *a);
/* Same for a NUL-terminated string (reads at most 21 bytes of it); NULL -> -EINVAL. */
int clientid_decode(const char *s, gw_client_addr *a);

/* The counter start for a gateway booting now (see the scheme above); never 0. */
uint32_t clientid_boot_counter(void);
/* The same for a given wall clock time in milliseconds since the Unix epoch. */
uint32_t clientid_boot_counter_at(uint64_t unix_ms);

/* Returns *counter and advances it, wrapping from UINT32_MAX to 1 (skips 0).
 * A counter of 0 (zeroed state) yields 1. */
static inline uint32_t clientid_counter_next(uint32_t *counter)
{
    uint32_t v = *counter ? *counter : 1;
    *counter = v == UINT32_MAX ? 1 : v + 1;
    return v;
}

#endif
