/* config.c - table-driven configuration loader (see config.h, docs/CONFIG.md).
 *
 * Each section has a static table of keys: {name, type, offset, default as JSON
 * text, range, validator, flags}. One generic loop applies defaults and then the
 * file's values through a per-type interface (set / dump / free); paths are
 * resolved afterwards; then whole-config checks run. Adding a key = one table line
 * (+ docs/CONFIG.md + a test).
 */
#include "common/config.h"
#include "common/alloc.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(gw_slow_policy) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(gw_router) == sizeof(int), "enum fields are stored as int");
_Static_assert(GW_LOG_DEBUG == 0 && GW_LOG_INFO == 1 && GW_LOG_WARN == 2 && GW_LOG_ERROR == 3,
               "cluster.log_level names are indexed by enum gw_log_level");

/* ---- addresses ------------------------------------------------------------------ */

static int is_ipv4(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1;
}

static int is_ipv6(const char *s)
{
    struct in6_addr a;
    return inet_pton(AF_INET6, s, &a) == 1;
}

static int is_loopback4(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int gw_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *hs, *he, *ps;
    int v6 = 0;
    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (he == NULL)
            return GW_ADDR_EHOST;
        if (he[1] != ':')
            return GW_ADDR_ESYNTAX;
        ps = he + 2;
        v6 = 1;
    } else {
        he = strrchr(s, ':');
        if (he == NULL)
            return GW_ADDR_ESYNTAX;
        hs = s;
        ps = he + 1;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostlen)
        return GW_ADDR_EHOST;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (v6 ? !is_ipv6(host) : !is_ipv4(host))
        return GW_ADDR_EHOST;
    unsigned long p = 0;
    size_t n = 0;
    for (; ps[n] != '\0'; n++) {
        if (ps[n] < '0' || ps[n] > '9' || n >= 5)
            return GW_ADDR_EPORT;
        p = p * 10 + (unsigned long)(ps[n] - '0');
    }
    if (n == 0 || p == 0 || p > 65535)
        return GW_ADDR_EPORT;
    *port = (uint16_t)p;
    return 0;
}

static const char *const proto_names[] = {
    [GW_PROTO_WEBSOCKET] = "websocket",
    [GW_PROTO_TEXT] = "text",
    [GW_PROTO_FRAME] = "frame",
};
#define NPROTOS (sizeof proto_names / sizeof proto_names[0])

const char *gw_proto_name(gw_proto p)
{
    return (unsigned)p < NPROTOS ? proto_names[p] : "?";
}

int gw_listener_parse(const char *url, gw_listener *out)
{
    for (size_t i = 0; i < NPROTOS; i++) {
        size_t n = strlen(proto_names[i]);
        if (strncmp(url, proto_names[i], n) != 0 || strncmp(url + n, "://", 3) != 0)
            continue;
        int rc = gw_parse_hostport(url + n + 3, out->host, sizeof out->host, &out->port);
        if (rc)
            return rc;
        out->proto = (gw_proto)i;
        out->family = strchr(out->host, ':') ? AF_INET6 : AF_INET;
        return 0;
    }
    return GW_ADDR_ESCHEME;
}

int gw_listener_format(const gw_listener *l, char *buf, size_t len)
{
    int v6 = l->family == AF_INET6;
    return snprintf(buf, len, "%s://%s%s%s:%u", gw_proto_name(l->proto), v6 ? "[" : "", l->host,
                    v6 ? "]" : "", (unsigned)l->port);
}

int gw_addr_format(const gw_addr *a, char *buf, size_t len)
{
    if (a->port == 0)
        return snprintf(buf, len, "%s", "");
    int v6 = a->family == AF_INET6;
    return snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", a->host, v6 ? "]" : "",
                    (unsigned)a->port);
}

const char *gw_addr_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case GW_ADDR_ESYNTAX:
        return "expected host:port";
    case GW_ADDR_EHOST:
        return "host must be an IPv4 address or a [bracketed] IPv6 address";
    case GW_ADDR_EPORT:
        return "port must be 1..65535";
    case GW_ADDR_ESCHEME:
        return "scheme must be websocket://, text:// or frame://";
    default:
        return "invalid address";
    }
}

/* ---- error reporting ------------------------------------------------------------ */

typedef struct cfg_ctx {
    const char *file; /* as the caller spelled it, for messages */
    char *err;
    size_t errlen;
    gw_config *cfg;
} cfg_ctx;

__attribute__((format(printf, 3, 0))) static void vreport(cfg_ctx *c, const char *key,
                                                          const char *fmt, va_list ap)
{
    if (c->err == NULL || c->errlen == 0)
        return;
    int n = key ? snprintf(c->err, c->errlen, "%s: %s: ", c->file, key)
                : snprintf(c->err, c->errlen, "%s: ", c->file);
    if (n >= 0 && (size_t)n < c->errlen)
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
}

/* Writes "file: key: reason" and returns GW_CONFIG_INVALID. */
__attribute__((format(printf, 3, 4))) static int fail(cfg_ctx *c, const char *key, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, key, fmt, ap);
    va_end(ap);
    return GW_CONFIG_INVALID;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* ---- the key tables ------------------------------------------------------------- */

typedef enum cfg_type {
    T_BOOL,      /* bool */
    T_INT,       /* int, range min..max */
    T_SIZE,      /* size_t (bytes), range min..max */
    T_PORT,      /* uint16_t, range min..max */
    T_SECONDS,   /* double, range dmin..dmax */
    T_STRING,    /* char * (owned) */
    T_ENUM,      /* int: index into names */
    T_ADDR,      /* gw_addr */
    T_ADDR_LIST, /* gw_addr_list, min..max entries */
    T_LISTENERS, /* gw_listener_list, min..max entries */
    T_OBJECT,    /* json_t * (one reference), a JSON object */
    T_COUNT_
} cfg_type;

enum {
    F_PATH_CONFIG = 1u << 0, /* string: a path relative to the config file's directory */
    F_PATH_RUN = 1u << 1,    /* string: a path relative to cluster.run_dir */
    F_IPV4 = 1u << 2,        /* address: IPv4 hosts only */
    F_OPTIONAL = 1u << 3,    /* address: "" allowed (= off) */
    F_SECRET = 1u << 4,      /* masked by gw_config_dump */
};

typedef int (*cfg_validator)(cfg_ctx *c, const char *key, const void *field);

typedef struct cfg_field {
    const char *name;
    cfg_type type;
    size_t offset;            /* within the section struct */
    const char *def;          /* default, as JSON text */
    long long min, max;       /* integers: value range; lists: number of entries */
    double dmin, dmax;        /* seconds */
    const char *const *names; /* enums, NULL-terminated */
    cfg_validator validate;   /* runs after the value is stored */
    unsigned flags;
} cfg_field;

static int v_nonempty(cfg_ctx *c, const char *key, const void *field)
{
    if (**(char *const *)field == '\0')
        return fail(c, key, "must not be empty");
    return 0;
}

static int v_lan_ip(cfg_ctx *c, const char *key, const void *field)
{
    const char *s = *(char *const *)field;
    if (!is_ipv4(s))
        return fail(c, key, "must be an IPv4 address (got \"%s\")", s);
    if (strcmp(s, "0.0.0.0") == 0)
        return fail(c, key,
                    "0.0.0.0 is not an address peers can connect to; set it to this host's "
                    "LAN address (127.0.0.1 on a single host)");
    return 0;
}

static int v_bind_ip(cfg_ctx *c, const char *key, const void *field)
{
    const char *s = *(char *const *)field;
    if (*s != '\0' && !is_ipv4(s))
        return fail(c, key, "must be \"\" or an IPv4 address (got \"%s\")", s);
    return 0;
}

static int v_registers(cfg_ctx *c, const char *key, const void *field)
{
    const gw_addr_list *l = field;
    for (int i = 0; i < l->count; i++) {
        if (strcmp(l->items[i].host, "0.0.0.0") == 0) {
            char ekey[300];
            snprintf(ekey, sizeof ekey, "%s[%d]", key, i);
            return fail(c, ekey,
                        "0.0.0.0 is a bind address, not one to connect to (got \"0.0.0.0:%u\")",
                        (unsigned)l->items[i].port);
        }
    }
    return 0;
}

static int v_name(cfg_ctx *c, const char *key, const void *field)
{
    const char *s = *(char *const *)field;
    size_t n = strlen(s);
    int ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] > 0x20 && s[i] < 0x7f;
    if (!ok)
        return fail(c, key, "must be 1..64 printable characters without spaces (got \"%s\")", s);
    return 0;
}

static int v_log_max_size(cfg_ctx *c, const char *key, const void *field)
{
    size_t v = *(const size_t *)field;
    if (v != 0 && v < 65536)
        return fail(c, key, "must be 0 (no rotation) or >= 65536 (got %zu)", v);
    return 0;
}

static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const slow_policy_names[] = {"close", "drop", NULL};
static const char *const router_names[] = {"least_connections", "random", NULL};

/* One key: name, type, offset in the section struct, default (JSON text), then
 * optional designated members (.min/.max, .dmin/.dmax, .names, .validate, .flags). */
#define KEY(n, t, off, d, ...)                                                                     \
    {                                                                                              \
        .name = (n), .type = (t), .offset = (off), .def = (d), __VA_ARGS__                         \
    }

#define CL(m) offsetof(gw_cluster_config, m)
static const cfg_field cluster_fields[] = {
    KEY("secret_key", T_STRING, CL(secret_key), "\"\"", .flags = F_SECRET),
    KEY("lan_ip", T_STRING, CL(lan_ip), "\"127.0.0.1\"", .validate = v_lan_ip),
    KEY("registers", T_ADDR_LIST, CL(registers), "[\"127.0.0.1:1238\"]", .min = 1,
        .max = GW_CONFIG_MAX_REGISTERS, .validate = v_registers, .flags = F_IPV4),
    KEY("heartbeat_interval", T_SECONDS, CL(heartbeat_interval), "1.0", .dmin = 0.05, .dmax = 60),
    KEY("node_timeout", T_SECONDS, CL(node_timeout), "2.5", .dmin = 0.1, .dmax = 600),
    KEY("log_level", T_ENUM, CL(log_level), "\"info\"", .names = log_level_names),
    KEY("run_dir", T_STRING, CL(run_dir), "\"../run\"", .validate = v_nonempty,
        .flags = F_PATH_CONFIG),
};

#define RG(m) offsetof(gw_register_config, m)
static const cfg_field register_fields[] = {
    KEY("count", T_INT, RG(count), "1", .min = 0, .max = 1),
    KEY("listen", T_ADDR, RG(listen), "\"127.0.0.1:1238\"", .flags = F_IPV4),
    KEY("publish_interval", T_SECONDS, RG(publish_interval), "1.0", .dmin = 0.05, .dmax = 60),
};

#define GT(m) offsetof(gw_gateway_config, m)
static const cfg_field gateway_fields[] = {
    KEY("count", T_INT, GT(count), "1", .min = 0, .max = 256),
    KEY("listen", T_LISTENERS, GT(listen), "[\"websocket://0.0.0.0:8282\"]", .min = 0,
        .max = GW_CONFIG_MAX_LISTENERS),
    KEY("start_port", T_PORT, GT(start_port), "2900", .min = 1, .max = 65535),
    KEY("inbox_bind", T_STRING, GT(inbox_bind), "\"\"", .validate = v_bind_ip),
    KEY("ping_interval", T_SECONDS, GT(ping_interval), "0", .dmin = 0, .dmax = 86400),
    KEY("ping_not_response_limit", T_INT, GT(ping_not_response_limit), "0", .min = 0, .max = 1000),
    KEY("ping_data", T_STRING, GT(ping_data), "\"\""),
    KEY("ws_ping", T_BOOL, GT(ws_ping), "false"),
    KEY("heartbeat_message", T_STRING, GT(heartbeat_message), "\"\""),
    KEY("max_message_size", T_SIZE, GT(max_message_size), "1048576", .min = 16, .max = 67108864),
    KEY("max_handshake_size", T_SIZE, GT(max_handshake_size), "8192", .min = 512, .max = 1048576),
    KEY("handshake_timeout", T_SECONDS, GT(handshake_timeout), "10.0", .dmin = 0.1, .dmax = 3600),
    KEY("send_buffer_limit", T_SIZE, GT(send_buffer_limit), "4194304", .min = 1024,
        .max = 1073741824),
    KEY("slow_client_policy", T_ENUM, GT(slow_client_policy), "\"close\"",
        .names = slow_policy_names),
    KEY("worker_wait_timeout", T_SECONDS, GT(worker_wait_timeout), "10.0", .dmin = 0, .dmax = 3600),
    KEY("worker_queue_limit", T_SIZE, GT(worker_queue_limit), "67108864", .min = 65536,
        .max = 1073741824),
    KEY("router", T_ENUM, GT(router), "\"least_connections\"", .names = router_names),
    KEY("websocket_auth", T_BOOL, GT(websocket_auth), "false"),
    KEY("static_dir", T_STRING, GT(static_dir), "\"\"", .flags = F_PATH_CONFIG),
    KEY("reuse_port", T_BOOL, GT(reuse_port), "true"),
};

#define BW(m) offsetof(gw_businessworker_config, m)
static const cfg_field businessworker_fields[] = {
    KEY("count", T_INT, BW(count), "1", .min = 0, .max = 256),
    KEY("name", T_STRING, BW(name), "\"BusinessWorker\"", .validate = v_name),
    KEY("module", T_STRING, BW(module), "\"\"", .flags = F_PATH_CONFIG),
    KEY("module_config", T_OBJECT, BW(module_config), "{}"),
    KEY("start_port", T_PORT, BW(start_port), "3900", .min = 1, .max = 65535),
    KEY("inbox_bind", T_STRING, BW(inbox_bind), "\"\"", .validate = v_bind_ip),
    KEY("query_timeout", T_SECONDS, BW(query_timeout), "5.0", .dmin = 0.01, .dmax = 600),
};

#define SV(m) offsetof(gw_supervisor_config, m)
static const cfg_field supervisor_fields[] = {
    KEY("stop_timeout", T_SECONDS, SV(stop_timeout), "5.0", .dmin = 0.1, .dmax = 300),
    KEY("restart_backoff_max", T_SECONDS, SV(restart_backoff_max), "30.0", .dmin = 0.1,
        .dmax = 3600),
    KEY("pid_file", T_STRING, SV(pid_file), "\"gatewayworker.pid\"", .validate = v_nonempty,
        .flags = F_PATH_RUN),
    KEY("log_file", T_STRING, SV(log_file), "\"gatewayworker.log\"", .flags = F_PATH_RUN),
    KEY("log_max_size", T_SIZE, SV(log_max_size), "10485760", .min = 0, .max = 1099511627776LL,
        .validate = v_log_max_size),
    KEY("log_keep", T_INT, SV(log_keep), "5", .min = 0, .max = 100),
    KEY("metrics_listen", T_ADDR, SV(metrics_listen), "\"\"", .flags = F_OPTIONAL),
    KEY("status_file", T_STRING, SV(status_file), "\"gatewayworker.status\"", .flags = F_PATH_RUN),
};

typedef struct cfg_section {
    const char *name;
    size_t offset; /* within gw_config */
    const cfg_field *fields;
    size_t nfields;
    long count_offset; /* offset of the int "count" in the section, or -1 */
} cfg_section;

#define SECTION(name, member, fields, count)                                                       \
    {                                                                                              \
        name, offsetof(gw_config, member), fields, sizeof fields / sizeof fields[0], count         \
    }
static const cfg_section sections[] = {
    SECTION("cluster", cluster, cluster_fields, -1),
    SECTION("register", reg, register_fields, (long)RG(count)),
    SECTION("gateway", gateway, gateway_fields, (long)GT(count)),
    SECTION("businessworker", businessworker, businessworker_fields, (long)BW(count)),
    SECTION("supervisor", supervisor, supervisor_fields, -1),
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

static void *field_ptr(gw_config *cfg, const cfg_section *s, const cfg_field *f)
{
    return (char *)cfg + s->offset + f->offset;
}

/* ---- the type interface --------------------------------------------------------- */

typedef struct cfg_type_if {
    /* Checks v and stores it at dst (replacing and freeing the old value). Returns 0,
     * GW_CONFIG_INVALID (err written) or -ENOMEM. */
    int (*set)(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst);
    /* New JSON value for the dump, or NULL on allocation failure. */
    json_t *(*dump)(const cfg_field *f, const void *src);
    void (*free)(void *dst);
} cfg_type_if;

static int set_bool(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    (void)f;
    if (!json_is_boolean(v))
        return fail(c, key, "must be true or false (got %s)", json_kind(v));
    *(bool *)dst = json_is_true(v);
    return 0;
}

static json_t *dump_bool(const cfg_field *f, const void *src)
{
    (void)f;
    return json_boolean(*(const bool *)src);
}

static int get_integer(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, long long *out)
{
    if (!json_is_integer(v))
        return fail(c, key, "must be an integer (got %s)", json_kind(v));
    long long x = json_integer_value(v);
    if (x < f->min)
        return fail(c, key, "must be >= %lld (got %lld)", f->min, x);
    if (x > f->max)
        return fail(c, key, "must be <= %lld (got %lld)", f->max, x);
    *out = x;
    return 0;
}

static int set_int(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    long long x = 0;
    int rc = get_integer(c, f, key, v, &x);
    if (rc == 0)
        *(int *)dst = (int)x;
    return rc;
}

static json_t *dump_int(const cfg_field *f, const void *src)
{
    (void)f;
    return json_integer(*(const int *)src);
}

static int set_size(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    long long x = 0;
    int rc = get_integer(c, f, key, v, &x);
    if (rc == 0)
        *(size_t *)dst = (size_t)x;
    return rc;
}

static json_t *dump_size(const cfg_field *f, const void *src)
{
    (void)f;
    return json_integer((json_int_t) * (const size_t *)src);
}

static int set_port(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    long long x = 0;
    int rc = get_integer(c, f, key, v, &x);
    if (rc == 0)
        *(uint16_t *)dst = (uint16_t)x;
    return rc;
}

static json_t *dump_port(const cfg_field *f, const void *src)
{
    (void)f;
    return json_integer(*(const uint16_t *)src);
}

static int set_seconds(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    if (!json_is_number(v))
        return fail(c, key, "must be a number of seconds (got %s)", json_kind(v));
    double x = json_number_value(v);
    if (!(x >= f->dmin))
        return fail(c, key, "must be >= %.15g (got %.15g)", f->dmin, x);
    if (!(x <= f->dmax))
        return fail(c, key, "must be <= %.15g (got %.15g)", f->dmax, x);
    *(double *)dst = x;
    return 0;
}

static json_t *dump_seconds(const cfg_field *f, const void *src)
{
    (void)f;
    return json_real(*(const double *)src);
}

static int set_string(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    (void)f;
    if (!json_is_string(v))
        return fail(c, key, "must be a string (got %s)", json_kind(v));
    /* No NUL inside: the parser runs without JSON_ALLOW_NUL. */
    char *copy = gw_strdup(json_string_value(v));
    if (copy == NULL)
        return -ENOMEM;
    gw_free(*(char **)dst);
    *(char **)dst = copy;
    return 0;
}

static json_t *dump_string(const cfg_field *f, const void *src)
{
    const char *s = *(char *const *)src;
    if (s == NULL)
        s = "";
    if ((f->flags & F_SECRET) && *s != '\0')
        s = "********";
    return json_string(s);
}

static void free_string(void *dst)
{
    gw_free(*(char **)dst);
    *(char **)dst = NULL;
}

static int set_enum(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    for (int i = 0; s != NULL && f->names[i] != NULL; i++) {
        if (strcmp(s, f->names[i]) == 0) {
            *(int *)dst = i;
            return 0;
        }
    }
    char list[128] = "";
    size_t n = 0;
    for (int i = 0; f->names[i] != NULL && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", f->names[i]);
    if (s == NULL)
        return fail(c, key, "must be one of %s (got %s)", list, json_kind(v));
    return fail(c, key, "must be one of %s (got \"%s\")", list, s);
}

static json_t *dump_enum(const cfg_field *f, const void *src)
{
    return json_string(f->names[*(const int *)src]);
}

/* Parses one address string into *a (key names the value in messages). */
static int parse_addr(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, gw_addr *a)
{
    if (!json_is_string(v))
        return fail(c, key, "must be a \"host:port\" string (got %s)", json_kind(v));
    const char *s = json_string_value(v);
    memset(a, 0, sizeof *a);
    if (*s == '\0' && (f->flags & F_OPTIONAL))
        return 0;
    int rc = gw_parse_hostport(s, a->host, sizeof a->host, &a->port);
    if (rc == 0)
        a->family = strchr(a->host, ':') ? AF_INET6 : AF_INET;
    if ((f->flags & F_IPV4) && (rc == GW_ADDR_EHOST || (rc == 0 && a->family != AF_INET)))
        return fail(c, key, "host must be an IPv4 address (got \"%s\")", s);
    if (rc)
        return fail(c, key, "%s (got \"%s\")", gw_addr_strerror(rc), s);
    return 0;
}

static int set_addr(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    gw_addr a;
    int rc = parse_addr(c, f, key, v, &a);
    if (rc == 0)
        *(gw_addr *)dst = a;
    return rc;
}

static json_t *dump_addr(const cfg_field *f, const void *src)
{
    (void)f;
    char s[GW_HOST_MAX + 16];
    gw_addr_format(src, s, sizeof s);
    return json_string(s);
}

static int check_list(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v)
{
    if (!json_is_array(v))
        return fail(c, key, "must be an array (got %s)", json_kind(v));
    long long n = (long long)json_array_size(v);
    if (n < f->min || n > f->max)
        return fail(c, key, "must have %lld..%lld entries (got %lld)", f->min, f->max, n);
    return 0;
}

static int set_addr_list(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    int rc = check_list(c, f, key, v);
    if (rc)
        return rc;
    gw_addr_list l = {0};
    char ekey[300];
    for (size_t i = 0; i < json_array_size(v); i++) {
        snprintf(ekey, sizeof ekey, "%s[%zu]", key, i);
        gw_addr *a = &l.items[i];
        rc = parse_addr(c, f, ekey, json_array_get(v, i), a);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(l.items[j].host, a->host) == 0 && l.items[j].port == a->port)
                return fail(c, ekey, "duplicate of %s[%zu]", key, j);
        l.count++;
    }
    *(gw_addr_list *)dst = l;
    return 0;
}

static json_t *dump_addr_list(const cfg_field *f, const void *src)
{
    const gw_addr_list *l = src;
    json_t *arr = json_array();
    for (int i = 0; arr != NULL && i < l->count; i++) {
        if (json_array_append_new(arr, dump_addr(f, &l->items[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static int set_listeners(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    int rc = check_list(c, f, key, v);
    if (rc)
        return rc;
    gw_listener_list l = {0};
    char ekey[300];
    for (size_t i = 0; i < json_array_size(v); i++) {
        snprintf(ekey, sizeof ekey, "%s[%zu]", key, i);
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return fail(c, ekey, "must be a \"proto://host:port\" string (got %s)", json_kind(e));
        gw_listener *li = &l.items[i];
        rc = gw_listener_parse(json_string_value(e), li);
        if (rc)
            return fail(c, ekey, "%s (got \"%s\")", gw_addr_strerror(rc), json_string_value(e));
        for (size_t j = 0; j < i; j++)
            if (strcmp(l.items[j].host, li->host) == 0 && l.items[j].port == li->port)
                return fail(c, ekey, "duplicate of %s[%zu]", key, j);
        l.count++;
    }
    *(gw_listener_list *)dst = l;
    return 0;
}

static json_t *dump_listeners(const cfg_field *f, const void *src)
{
    (void)f;
    const gw_listener_list *l = src;
    json_t *arr = json_array();
    char s[GW_HOST_MAX + 32];
    for (int i = 0; arr != NULL && i < l->count; i++) {
        gw_listener_format(&l->items[i], s, sizeof s);
        if (json_array_append_new(arr, json_string(s)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static int set_object(cfg_ctx *c, const cfg_field *f, const char *key, json_t *v, void *dst)
{
    (void)f;
    if (!json_is_object(v))
        return fail(c, key, "must be an object (got %s)", json_kind(v));
    json_decref(*(json_t **)dst);
    *(json_t **)dst = json_incref(v);
    return 0;
}

static json_t *dump_object(const cfg_field *f, const void *src)
{
    (void)f;
    json_t *o = *(json_t *const *)src;
    return o ? json_incref(o) : json_object();
}

static void free_object(void *dst)
{
    json_decref(*(json_t **)dst);
    *(json_t **)dst = NULL;
}

static const cfg_type_if types[T_COUNT_] = {
    [T_BOOL] = {set_bool, dump_bool, NULL},
    [T_INT] = {set_int, dump_int, NULL},
    [T_SIZE] = {set_size, dump_size, NULL},
    [T_PORT] = {set_port, dump_port, NULL},
    [T_SECONDS] = {set_seconds, dump_seconds, NULL},
    [T_STRING] = {set_string, dump_string, free_string},
    [T_ENUM] = {set_enum, dump_enum, NULL},
    [T_ADDR] = {set_addr, dump_addr, NULL},
    [T_ADDR_LIST] = {set_addr_list, dump_addr_list, NULL},
    [T_LISTENERS] = {set_listeners, dump_listeners, NULL},
    [T_OBJECT] = {set_object, dump_object, free_object},
};

/* ---- the generic loop ----------------------------------------------------------- */

static int apply_field(cfg_ctx *c, const cfg_section *s, const cfg_field *f, const char *key,
                       json_t *v)
{
    void *dst = field_ptr(c->cfg, s, f);
    int rc = types[f->type].set(c, f, key, v, dst);
    if (rc == 0 && f->validate != NULL)
        rc = f->validate(c, key, dst);
    return rc;
}

static int apply_defaults(cfg_ctx *c)
{
    char key[128];
    for (size_t i = 0; i < NSECTIONS; i++) {
        const cfg_section *s = &sections[i];
        for (size_t j = 0; j < s->nfields; j++) {
            const cfg_field *f = &s->fields[j];
            snprintf(key, sizeof key, "%s.%s", s->name, f->name);
            json_error_t je;
            json_t *v = json_loads(f->def, JSON_DECODE_ANY, &je);
            if (v == NULL) /* the defaults are valid JSON (test_defaults) */
                return -ENOMEM;
            int rc = apply_field(c, s, f, key, v);
            json_decref(v);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int apply_section(cfg_ctx *c, const cfg_section *s, json_t *obj)
{
    if (!json_is_object(obj))
        return fail(c, s->name, "must be an object (got %s)", json_kind(obj));
    const char *k;
    json_t *v;
    char key[300];
    json_object_foreach(obj, k, v)
    {
        snprintf(key, sizeof key, "%s.%s", s->name, k);
        const cfg_field *f = NULL;
        for (size_t j = 0; j < s->nfields && f == NULL; j++)
            if (strcmp(s->fields[j].name, k) == 0)
                f = &s->fields[j];
        if (f == NULL)
            return fail(c, key, "unknown key");
        int rc = apply_field(c, s, f, key, v);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_root(cfg_ctx *c, json_t *root)
{
    if (!json_is_object(root))
        return fail(c, NULL, "must be a JSON object (got %s)", json_kind(root));
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        const cfg_section *s = NULL;
        for (size_t i = 0; i < NSECTIONS && s == NULL; i++)
            if (strcmp(sections[i].name, k) == 0)
                s = &sections[i];
        if (s == NULL)
            return fail(c, k, "unknown key");
        int rc = apply_section(c, s, v);
        if (rc)
            return rc;
    }
    return 0;
}

/* Joins base (absolute) and rel, resolving "." and ".." lexically, into out.
 * An absolute rel ignores base. Returns 0 or -ENAMETOOLONG. */
static int path_join(const char *base, const char *rel, char *out, size_t outlen)
{
    const char *parts[2] = {rel[0] == '/' ? "" : base, rel};
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        const char *p = parts[i];
        for (;;) {
            while (*p == '/')
                p++;
            const char *e = p;
            while (*e != '\0' && *e != '/')
                e++;
            size_t l = (size_t)(e - p);
            if (l == 0)
                break;
            if (l == 2 && p[0] == '.' && p[1] == '.') {
                while (n > 0 && out[n - 1] != '/')
                    n--;
                if (n > 0)
                    n--;
            } else if (!(l == 1 && p[0] == '.')) {
                if (n + 1 + l + 1 > outlen)
                    return -ENAMETOOLONG;
                out[n++] = '/';
                memcpy(out + n, p, l);
                n += l;
            }
            p = e;
        }
    }
    if (n == 0) {
        if (outlen < 2)
            return -ENAMETOOLONG;
        out[n++] = '/';
    }
    out[n] = '\0';
    return 0;
}

/* Replaces every non-empty path field with `flag` by its absolute form. */
static int resolve_paths(cfg_ctx *c, unsigned flag, const char *base)
{
    char key[128];
    char buf[PATH_MAX];
    for (size_t i = 0; i < NSECTIONS; i++) {
        const cfg_section *s = &sections[i];
        for (size_t j = 0; j < s->nfields; j++) {
            const cfg_field *f = &s->fields[j];
            if (!(f->flags & flag))
                continue;
            char **p = field_ptr(c->cfg, s, f);
            if (**p == '\0')
                continue;
            snprintf(key, sizeof key, "%s.%s", s->name, f->name);
            if (path_join(base, *p, buf, sizeof buf) != 0)
                return fail(c, key, "path too long");
            char *copy = gw_strdup(buf);
            if (copy == NULL)
                return -ENOMEM;
            gw_free(*p);
            *p = copy;
        }
    }
    return 0;
}

static int resolve_all(cfg_ctx *c)
{
    int rc = resolve_paths(c, F_PATH_CONFIG, c->cfg->dir);
    if (rc == 0)
        rc = resolve_paths(c, F_PATH_RUN, c->cfg->cluster.run_dir);
    return rc;
}

/* ---- whole-config checks -------------------------------------------------------- */

/* Whether two bind addresses can clash on one host: equal addresses, or one is a
 * wildcard covering the other (:: covers IPv4 too: Linux sockets are dual-stack). */
static int ip_conflict(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    int fa = is_ipv4(a) ? AF_INET : AF_INET6;
    int fb = is_ipv4(b) ? AF_INET : AF_INET6;
    if (inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
        return 0;
    static const unsigned char zero[16];
    if ((fa == AF_INET6 && memcmp(x, zero, 16) == 0) ||
        (fb == AF_INET6 && memcmp(y, zero, 16) == 0))
        return 1;
    if (fa != fb)
        return 0;
    size_t len = fa == AF_INET ? 4 : 16;
    if (memcmp(x, zero, len) == 0 || memcmp(y, zero, len) == 0)
        return 1;
    return memcmp(x, y, len) == 0;
}

typedef struct port_use {
    char key[48];
    const char *what;
    const char *host;
    unsigned lo, hi;
} port_use;

static void port_use_desc(const port_use *u, char *buf, size_t len)
{
    if (u->lo == u->hi)
        snprintf(buf, len, "%s port %u on %s", u->what, u->lo, u->host);
    else
        snprintf(buf, len, "%s ports %u-%u on %s", u->what, u->lo, u->hi, u->host);
}

static int check_ports(cfg_ctx *c)
{
    const gw_config *g = c->cfg;
    port_use u[4 + GW_CONFIG_MAX_LISTENERS];
    size_t n = 0;
    if (g->reg.count > 0)
        u[n++] = (port_use){"register.listen", "register", g->reg.listen.host, g->reg.listen.port,
                            g->reg.listen.port};
    if (g->gateway.count > 0) {
        const char *h = *g->gateway.inbox_bind ? g->gateway.inbox_bind : g->cluster.lan_ip;
        u[n++] = (port_use){"gateway.start_port", "gateway inbox", h, g->gateway.start_port,
                            g->gateway.start_port + (unsigned)g->gateway.count - 1};
    }
    if (g->businessworker.count > 0) {
        const gw_businessworker_config *b = &g->businessworker;
        const char *h = *b->inbox_bind ? b->inbox_bind : g->cluster.lan_ip;
        u[n++] = (port_use){"businessworker.start_port", "businessworker inbox", h, b->start_port,
                            b->start_port + (unsigned)b->count - 1};
    }
    for (int i = 0; g->gateway.count > 0 && i < g->gateway.listen.count; i++) {
        const gw_listener *l = &g->gateway.listen.items[i];
        u[n] = (port_use){"", "listener", l->host, l->port, l->port};
        snprintf(u[n].key, sizeof u[n].key, "gateway.listen[%d]", i);
        n++;
    }
    if (g->supervisor.metrics_listen.port != 0)
        u[n++] =
            (port_use){"supervisor.metrics_listen", "metrics", g->supervisor.metrics_listen.host,
                       g->supervisor.metrics_listen.port, g->supervisor.metrics_listen.port};
    for (size_t j = 1; j < n; j++) {
        for (size_t i = 0; i < j; i++) {
            if (u[i].hi < u[j].lo || u[j].hi < u[i].lo || !ip_conflict(u[i].host, u[j].host))
                continue;
            char di[128], dj[128];
            port_use_desc(&u[i], di, sizeof di);
            port_use_desc(&u[j], dj, sizeof dj);
            return fail(c, u[j].key, "%s collides with %s (%s)", dj, u[i].key, di);
        }
    }
    return 0;
}

static int check_inbox_range(cfg_ctx *c, const char *key, const char *role, unsigned start,
                             int count)
{
    if (count > 0 && start + (unsigned)count - 1 > 65535)
        return fail(c, key, "inbox ports %u-%u of %d %s processes exceed 65535", start,
                    start + (unsigned)count - 1, count, role);
    return 0;
}

static int check_whole(cfg_ctx *c)
{
    const gw_config *g = c->cfg;
    const gw_cluster_config *cl = &g->cluster;
    int rc;
    if (!(cl->node_timeout > cl->heartbeat_interval))
        return fail(c, "cluster.node_timeout",
                    "must be greater than cluster.heartbeat_interval (%.15g) (got %.15g)",
                    cl->heartbeat_interval, cl->node_timeout);
    if (g->gateway.ping_not_response_limit > 0 && g->gateway.ping_interval <= 0)
        return fail(c, "gateway.ping_not_response_limit",
                    "%d requires gateway.ping_interval > 0 (a client is closed after "
                    "ping_interval x limit seconds of silence)",
                    g->gateway.ping_not_response_limit);
    if (g->gateway.ws_ping && g->gateway.ping_not_response_limit == 1)
        return fail(c, "gateway.ws_ping",
                    "needs gateway.ping_not_response_limit >= 2 (or 0): a ping is sent after "
                    "ping_interval of silence, and with limit 1 the client is closed at that "
                    "same moment, before its pong can arrive");
    if (g->gateway.count > 1 && g->gateway.listen.count > 0 && !g->gateway.reuse_port)
        return fail(c, "gateway.reuse_port",
                    "must be true when gateway.count > 1: every gateway process binds the "
                    "client ports itself and shares them with SO_REUSEPORT");
    if (g->businessworker.count > 0 && *g->businessworker.module == '\0')
        return fail(c, "businessworker.module",
                    "required when businessworker.count > 0 (path of the module .so)");
    for (int i = 0; i < cl->registers.count; i++) {
        const gw_addr *r = &cl->registers.items[i];
        if (!is_loopback4(r->host) && is_loopback4(cl->lan_ip))
            return fail(c, "cluster.lan_ip",
                        "%s cannot be reached from remote register %s:%u; set it to this "
                        "host's LAN address",
                        cl->lan_ip, r->host, (unsigned)r->port);
    }
    if ((rc = check_inbox_range(c, "gateway.start_port", "gateway", g->gateway.start_port,
                                g->gateway.count)) != 0 ||
        (rc = check_inbox_range(c, "businessworker.start_port", "businessworker",
                                g->businessworker.start_port, g->businessworker.count)) != 0)
        return rc;
    return check_ports(c);
}

/* ---- public entry points -------------------------------------------------------- */

/* Zeroes cfg, records path and dir, applies every default (paths not resolved). */
static int config_init(cfg_ctx *c, const char *path, const char *dir)
{
    gw_config *cfg = c->cfg;
    memset(cfg, 0, sizeof *cfg);
    cfg->path = gw_strdup(path);
    cfg->dir = gw_strdup(dir);
    if (cfg->path == NULL || cfg->dir == NULL)
        return -ENOMEM;
    return apply_defaults(c);
}

int gw_config_defaults(gw_config *cfg)
{
    char dir[PATH_MAX];
    cfg_ctx c = {"(defaults)", NULL, 0, cfg};
    memset(cfg, 0, sizeof *cfg);
    if (getcwd(dir, sizeof dir) == NULL)
        return -errno;
    int rc = config_init(&c, "", dir);
    if (rc == 0)
        rc = resolve_all(&c);
    if (rc != 0) {
        gw_config_deinit(cfg);
        return rc > 0 ? -EINVAL : rc;
    }
    return 0;
}

/* Absolute directory of path (symlinks in the directory part resolved, not in the
 * file name) into dir, and the absolute file path into abs. */
static int locate(const char *path, char *dir, char *abs)
{
    char dpart[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash == NULL)
        snprintf(dpart, sizeof dpart, ".");
    else if (slash == path)
        snprintf(dpart, sizeof dpart, "/");
    else if ((size_t)(slash - path) < sizeof dpart)
        snprintf(dpart, sizeof dpart, "%.*s", (int)(slash - path), path);
    else
        return -ENAMETOOLONG;
    if (realpath(dpart, dir) == NULL)
        return -errno;
    return path_join(dir, base, abs, PATH_MAX);
}

int gw_config_load(const char *path, gw_config *cfg, char *err, size_t errlen)
{
    cfg_ctx c = {path, err, errlen, cfg};
    char dir[PATH_MAX], abs[PATH_MAX];
    memset(cfg, 0, sizeof *cfg);
    if (err != NULL && errlen > 0)
        err[0] = '\0';

    FILE *fp = fopen(path, "re");
    if (fp == NULL) {
        int e = errno;
        fail(&c, NULL, "%s", strerror(e));
        return -e;
    }
    struct stat st;
    int rc = fstat(fileno(fp), &st) != 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (rc == 0)
        rc = locate(path, dir, abs);
    if (rc != 0) {
        fclose(fp);
        fail(&c, NULL, "%s", strerror(-rc));
        return rc;
    }
    json_error_t je;
    json_t *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &je);
    fclose(fp);
    if (root == NULL) {
        /* jansson leaves the text empty when its first allocation fails */
        if (json_error_code(&je) == json_error_out_of_memory || je.text[0] == '\0') {
            fail(&c, NULL, "out of memory");
            return -ENOMEM;
        }
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return GW_CONFIG_INVALID;
    }

    rc = config_init(&c, abs, dir);
    if (rc == 0)
        rc = apply_root(&c, root);
    if (rc == 0)
        rc = resolve_all(&c);
    if (rc == 0)
        rc = check_whole(&c);
    json_decref(root);
    if (rc != 0) {
        if (rc == -ENOMEM)
            fail(&c, NULL, "out of memory");
        gw_config_deinit(cfg);
    }
    return rc;
}

void gw_config_deinit(gw_config *cfg)
{
    for (size_t i = 0; i < NSECTIONS; i++) {
        const cfg_section *s = &sections[i];
        for (size_t j = 0; j < s->nfields; j++)
            if (types[s->fields[j].type].free != NULL)
                types[s->fields[j].type].free(field_ptr(cfg, s, &s->fields[j]));
    }
    gw_free(cfg->path);
    gw_free(cfg->dir);
    memset(cfg, 0, sizeof *cfg);
}

const void *gw_config_section(const gw_config *cfg, const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(sections[i].name, name) == 0)
            return (const char *)cfg + sections[i].offset;
    return NULL;
}

int gw_config_role_count(const gw_config *cfg, const char *role)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(sections[i].name, role) == 0 && sections[i].count_offset >= 0)
            return *(const int *)((const char *)cfg + sections[i].offset +
                                  (size_t)sections[i].count_offset);
    return -1;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return gw_buf_append(data, buffer, size) == 0 ? 0 : -1;
}

int gw_config_dump(const gw_config *cfg, gw_buf *out)
{
    json_t *root = json_object();
    int rc = root ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < NSECTIONS; i++) {
        const cfg_section *s = &sections[i];
        json_t *sec = json_object();
        if (json_object_set_new(root, s->name, sec) != 0) {
            rc = -ENOMEM;
            break;
        }
        for (size_t j = 0; rc == 0 && j < s->nfields; j++) {
            const cfg_field *f = &s->fields[j];
            json_t *v = types[f->type].dump(f, (const char *)cfg + s->offset + f->offset);
            if (json_object_set_new(sec, f->name, v) != 0)
                rc = -ENOMEM;
        }
    }
    if (rc == 0 &&
        json_dump_callback(root, dump_cb, out,
                           JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) != 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = gw_buf_append(out, "\n", 1);
    json_decref(root);
    return rc;
}
