/* members.h - uid and group membership of the gateway's clients.
 *
 * A client has at most one uid; a uid may have many clients. A client may be in
 * any number of groups. Every operation is O(1) (plus the client's own group
 * count): sets keep their members in arrays and each client remembers its
 * position in them. When a uid or group gets its first member on this gateway, or
 * loses its last, every worker is told (GWP_IDX), so workers send uid/group
 * messages only to gateways that hold members.
 */
#ifndef GW_MEMBERS_H
#define GW_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_gateway gw_gateway;
typedef struct gw_conn gw_conn;

typedef struct member_set {
    char *name;
    uint32_t name_len;
    uint8_t kind; /* WIRE_KIND_UID or WIRE_KIND_GROUP */
    gw_conn **conns;
    uint32_t n, cap;
} member_set;

typedef struct conn_group {
    member_set *g;
    uint32_t pos;
} conn_group;

/* Binds c to uid (replacing its previous uid). 0 or -ENOMEM. */
int members_bind_uid(gw_gateway *gw, gw_conn *c, const char *uid, size_t len);
/* Unbinds c from uid if that is its uid; 0 (also when it was not). */
int members_unbind_uid(gw_gateway *gw, gw_conn *c, const char *uid, size_t len);
int members_join(gw_gateway *gw, gw_conn *c, const char *group, size_t len);
int members_leave(gw_gateway *gw, gw_conn *c, const char *group, size_t len);
/* Removes every member from the group (the clients stay connected). */
void members_ungroup(gw_gateway *gw, const char *group, size_t len);
/* Drops c from its uid and all its groups (the client is closing). */
void members_detach(gw_gateway *gw, gw_conn *c);
member_set *members_uid(gw_gateway *gw, const char *uid, size_t len);
member_set *members_group(gw_gateway *gw, const char *group, size_t len);
/* Sends the full presence list (reset, then every name) to one worker peer. */
void members_snapshot(gw_gateway *gw, void *peer);
/* Frees every set (at gateway shutdown). */
void members_free_all(gw_gateway *gw);

#endif
