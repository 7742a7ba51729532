/* config.h - the configuration of every process, loaded from one JSON file.
 *
 * One file (config/gatewayworker.json by default) with a section per role:
 * "cluster" (shared by all), "register", "gateway", "businessworker",
 * "supervisor". Every process (gw-register, gw-gateway, gw-businessworker, the
 * supervisor, gwctl) loads the whole file with gw_config_load() and uses its
 * section. docs/CONFIG.md is the reference of every key.
 *
 * The loader is table-driven (config.c): each key has a type, a default, a range
 * and an optional validator. Unknown keys, wrong types and out-of-range values are
 * rejected field by field, then the whole config is checked (port collisions,
 * heartbeat consistency, reachability of lan_ip from the registers, ...).
 * Error messages name the file, the key path and the reason:
 *
 *     config/gatewayworker.json: gateway.ping_interval: must be >= 0 (got -1)
 *
 * Relative paths in the file are resolved against the directory of the file
 * (supervisor.pid_file, log_file and status_file against cluster.run_dir) and
 * stored as absolute, lexically normalised paths ("a/../b" -> "b"). An empty
 * path means "off" where the key allows it.
 *
 * A gw_config owns its strings and the module_config JSON reference; free them with
 * gw_config_deinit(). A zeroed gw_config is valid to deinit. None of these
 * functions keep global state; they may be called from any thread on distinct
 * configs. gw_config_load() reads a file (blocks on disk I/O): call it at start-up
 * or on reload, not from a latency-sensitive callback.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "common/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returned by gw_config_load() for any problem with the file's content. */
#define GW_CONFIG_INVALID 1

#define GW_HOST_MAX 46 /* INET6_ADDRSTRLEN: longest textual IPv6 address + NUL */
#define GW_CONFIG_MAX_REGISTERS 16
#define GW_CONFIG_MAX_LISTENERS 16

/* ---- addresses ------------------------------------------------------------------ */

/* "host:port" with an IPv4 literal host, or "[IPv6]:port". host is stored without
 * brackets; family is AF_INET or AF_INET6 (0 for an unset optional address). */
typedef struct gw_addr {
    char host[GW_HOST_MAX];
    uint16_t port;
    int family;
} gw_addr;

typedef struct gw_addr_list {
    int count;
    gw_addr items[GW_CONFIG_MAX_REGISTERS];
} gw_addr_list;

typedef enum gw_proto {
    GW_PROTO_WEBSOCKET = 0, /* websocket://  */
    GW_PROTO_TEXT = 1,      /* text://  lines ending in "\n" */
    GW_PROTO_FRAME = 2,     /* frame:// 4-byte big-endian length (itself included) + body */
} gw_proto;

/* A client listener "websocket://0.0.0.0:8282", "text://[::]:5678", ... */
typedef struct gw_listener {
    gw_proto proto;
    char host[GW_HOST_MAX];
    uint16_t port;
    int family;
} gw_listener;

typedef struct gw_listener_list {
    int count;
    gw_listener items[GW_CONFIG_MAX_LISTENERS];
} gw_listener_list;

/* Error codes of the two parsers below (positive, expected errors). */
enum {
    GW_ADDR_ESYNTAX = 1, /* not host:port at all */
    GW_ADDR_EHOST = 2,   /* host is not an IPv4 literal or [IPv6] literal */
    GW_ADDR_EPORT = 3,   /* port missing, not decimal, or outside 1..65535 */
    GW_ADDR_ESCHEME = 4, /* listener URL scheme unknown */
};

/* Parses "a.b.c.d:port" or "[v6]:port" (no host names, no zone ids). On success
 * writes the host without brackets (NUL-terminated) and the port, and returns 0;
 * otherwise returns a GW_ADDR_E* code and leaves the outputs unspecified.
 * hostlen should be GW_HOST_MAX. Pure function: no allocation, no blocking. */
int gw_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);
/* Parses "websocket://host:port", "text://host:port", "frame://host:port" into *out.
 * Returns 0 or a GW_ADDR_E* code. Pure function. */
int gw_listener_parse(const char *url, gw_listener *out);
/* Writes "websocket://0.0.0.0:8282" (IPv6 hosts bracketed) into buf; returns the
 * length snprintf would have written. */
int gw_listener_format(const gw_listener *l, char *buf, size_t len);
/* Writes "127.0.0.1:1238" or "[::1]:1238"; "" for an unset address. */
int gw_addr_format(const gw_addr *a, char *buf, size_t len);
/* Static text of a GW_ADDR_E* code ("port must be 1..65535", ...). */
const char *gw_addr_strerror(int code);
/* "websocket", "text", "frame". */
const char *gw_proto_name(gw_proto p);

/* ---- sections ------------------------------------------------------------------- */

typedef enum gw_slow_policy {
    GW_SLOW_CLOSE = 0, /* close the client once send_buffer_limit is exceeded */
    GW_SLOW_DROP = 1,  /* drop messages to it while over the limit */
} gw_slow_policy;

typedef enum gw_router {
    GW_ROUTER_LEAST_CONNECTIONS = 0,
    GW_ROUTER_RANDOM = 1,
} gw_router;

/* Strings are owned by the config, never NULL after a successful load or
 * gw_config_defaults(); "" means unset/off. Seconds are doubles. */
typedef struct gw_cluster_config {
    char *secret_key;          /* "" = no HMAC on internal traffic */
    char *lan_ip;              /* IPv4 literal advertised to peers, never 0.0.0.0 */
    gw_addr_list registers;    /* 1..16 IPv4 host:port */
    double heartbeat_interval; /* 0.05..60 */
    double node_timeout;       /* > heartbeat_interval, <= 600 */
    int log_level;             /* enum gw_log_level (common/log.h): DEBUG..ERROR */
    char *run_dir;             /* absolute; pid, log and status files */
} gw_cluster_config;

typedef struct gw_register_config {
    int count;               /* 0 or 1: whether this host runs a register */
    gw_addr listen;          /* IPv4; announce port; roster published on port+1 */
    double publish_interval; /* 0.05..60 */
} gw_register_config;

typedef struct gw_gateway_config {
    int count;                   /* 0..256 gateway processes on this host */
    gw_listener_list listen;     /* 0..16 client listeners */
    uint16_t start_port;         /* inbox port of gateway i = start_port + i */
    char *inbox_bind;            /* "" = bind the inbox on cluster.lan_ip */
    double ping_interval;        /* 0 = off */
    int ping_not_response_limit; /* 0 = never close for silence */
    char *ping_data;             /* "" = send no application ping */
    bool ws_ping;                /* also send WebSocket ping frames */
    char *heartbeat_message;     /* "" = every message goes to the worker */
    size_t max_message_size;
    size_t max_handshake_size;
    double handshake_timeout;
    size_t send_buffer_limit;
    gw_slow_policy slow_client_policy;
    double worker_wait_timeout;
    size_t worker_queue_limit;
    gw_router router;
    bool websocket_auth;
    char *static_dir; /* absolute, or "" = off */
    bool reuse_port;
} gw_gateway_config;

typedef struct gw_businessworker_config {
    int count;             /* 0..256 worker processes on this host */
    char *name;            /* process name in logs and status */
    char *module;          /* absolute path of the module .so ("" only when count == 0) */
    json_t *module_config; /* a JSON object, handed to the module as is (borrowed by
                              users; the config holds one reference) */
    uint16_t start_port;   /* inbox port of worker i = start_port + i */
    char *inbox_bind;      /* "" = bind the inbox on cluster.lan_ip */
    double query_timeout;
} gw_businessworker_config;

typedef struct gw_supervisor_config {
    double stop_timeout;
    double restart_backoff_max;
    char *pid_file;         /* absolute (relative ones are taken from cluster.run_dir) */
    char *log_file;         /* absolute, or "" = children log to stderr */
    size_t log_max_size;    /* bytes, 0 = no rotation */
    int log_keep;           /* rotated files kept: LOG.1 .. LOG.<log_keep> */
    gw_addr metrics_listen; /* port 0 (family 0) = off */
    char *status_file;      /* absolute, or "" = off */
} gw_supervisor_config;

typedef struct gw_config {
    char *path; /* absolute path of the loaded file; "" for gw_config_defaults() */
    char *dir;  /* absolute directory relative paths were resolved against */
    gw_cluster_config cluster;
    gw_register_config reg; /* JSON section "register" (a C keyword) */
    gw_gateway_config gateway;
    gw_businessworker_config businessworker;
    gw_supervisor_config supervisor;
} gw_config;

/* ---- lifecycle ------------------------------------------------------------------ */

/* Fills *cfg (whose previous content is ignored, not freed) with the defaults of
 * every key; relative default paths are resolved against the current working
 * directory as if the config file were in it. No whole-config checks are run (the
 * defaults alone need businessworker.module). Returns 0, or -ENOMEM / -errno
 * (getcwd) with *cfg zeroed. */
int gw_config_defaults(gw_config *cfg);

/* Loads path (JSON, duplicate keys rejected) over the defaults, validates every key
 * and then the whole config. *cfg's previous content is ignored, not freed.
 * Returns 0 on success (err gets ""); GW_CONFIG_INVALID when the file is not valid
 * (malformed JSON: "file:line:column: text"; otherwise "file: key.path: reason");
 * -errno when the file cannot be read (err: "file: strerror"); -ENOMEM. On any
 * failure *cfg is left zeroed. err may be NULL; errlen 256 or more is plenty. */
int gw_config_load(const char *path, gw_config *cfg, char *err, size_t errlen);

/* Frees everything cfg owns and zeroes it. Safe on a zeroed config and twice. */
void gw_config_deinit(gw_config *cfg);

/* ---- helpers -------------------------------------------------------------------- */

/* The section struct for a JSON section name: "cluster" -> gw_cluster_config*,
 * "register" -> gw_register_config*, "gateway", "businessworker", "supervisor".
 * Returns a pointer into cfg, or NULL for an unknown name. */
const void *gw_config_section(const gw_config *cfg, const char *name);

/* How many processes of a role this host runs: register.count, gateway.count or
 * businessworker.count by name; -1 for a name without a count. */
int gw_config_role_count(const gw_config *cfg, const char *role);

/* Appends the effective config (every key, defaults included, paths resolved) as
 * indented JSON and a newline to out; cluster.secret_key is masked as "********"
 * when set. The dump of a loaded config loads back to the same config (secret
 * aside). Returns 0 or -ENOMEM (out may then hold a partial document). */
int gw_config_dump(const gw_config *cfg, gw_buf *out);

#endif
