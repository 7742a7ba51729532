/* roster.h - the register's view of the cluster, as carried on the wire.
 *
 * A node's heartbeat (GWP_NODE_HEARTBEAT) carries its role, inbox address and
 * boot nonce in the batch header and a small JSON object in the frame:
 *   {"name":"BusinessWorker","pid":123,"load":42,"clients":42}
 * A roster (GWP_ROSTER) is a JSON object:
 *   {"version":7,"nodes":[{"role":"gateway","addr":"10.0.0.5:2900",
 *     "nonce":"9f3c...","age_ms":120,"load":42,"pid":123,"name":"Gateway"}]}
 * age_ms: how long ago the register last heard from the node.
 * Pure functions: no I/O, no globals.
 */
#ifndef GW_ROSTER_H
#define GW_ROSTER_H

#include "common/buf.h"
#include "common/proto.h"

#include <stddef.h>
#include <stdint.h>

#define ROSTER_NAME_MAX 48
#define ROSTER_MAX_NODES 4096

typedef struct roster_entry {
    uint8_t role; /* GWP_ROLE_* */
    uint16_t port;
    uint32_t ip;
    uint64_t nonce;
    uint32_t age_ms;
    uint32_t load;
    int32_t pid;
    char name[ROSTER_NAME_MAX];
} roster_entry;

/* "register", "gateway", "businessworker", "client"; NULL for unknown. */
const char *roster_role_name(int role);
/* Inverse of roster_role_name; 0 when unknown. */
int roster_role_parse(const char *name);

/* Writes the heartbeat JSON object into out (appended). 0 or -ENOMEM. */
int roster_heartbeat_encode(const char *name, int32_t pid, uint32_t load, gw_buf *out);
/* Parses heartbeat JSON into e->name/pid/load (other fields untouched).
 * Returns 0, or -EINVAL for malformed input (wrong types, name too long). */
int roster_heartbeat_decode(const uint8_t *json, size_t len, roster_entry *e);

/* Appends the roster JSON for n entries. 0 or -ENOMEM. */
int roster_encode(uint64_t version, const roster_entry *e, size_t n, gw_buf *out);
/* Parses a roster. On success *out is a gw_malloc'd array (caller frees with
 * gw_free) of *n entries, and *version is set. Returns 0 or -EINVAL (malformed,
 * unknown role, bad address, more than ROSTER_MAX_NODES nodes) or -ENOMEM. */
int roster_decode(const uint8_t *json, size_t len, uint64_t *version, roster_entry **out,
                  size_t *n);

#endif
