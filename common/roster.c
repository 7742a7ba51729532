#include "common/roster.h"
#include "common/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {NULL, "register", "gateway", "businessworker", "client"};

const char *roster_role_name(int role)
{
    if (role < 1 || role > 4)
        return NULL;
    return role_names[role];
}

int roster_role_parse(const char *name)
{
    for (int i = 1; i <= 4; i++)
        if (strcmp(name, role_names[i]) == 0)
            return i;
    return 0;
}

static int append_json(json_t *v, gw_buf *out)
{
    if (v == NULL)
        return -ENOMEM;
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (s == NULL)
        return -ENOMEM;
    int rc = gw_buf_append_str(out, s);
    gw_free(s); /* json_dumps allocates through json_set_alloc_funcs = gw_malloc */
    return rc;
}

int roster_heartbeat_encode(const char *name, int32_t pid, uint32_t load, gw_buf *out)
{
    return append_json(json_pack("{s:s, s:i, s:I}", "name", name ? name : "", "pid", (int)pid,
                                 "load", (json_int_t)load),
                       out);
}

static int copy_name(const json_t *v, char *dst)
{
    if (v == NULL) {
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= ROSTER_NAME_MAX)
        return -EINVAL;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    if (strlen(dst) != json_string_length(v)) /* embedded NUL */
        return -EINVAL;
    return 0;
}

static int get_uint(const json_t *obj, const char *key, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return -EINVAL;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int roster_heartbeat_decode(const uint8_t *json, size_t len, roster_entry *e)
{
    json_t *o = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, NULL);
    if (o == NULL)
        return -EINVAL;
    int rc = -EINVAL;
    uint64_t pid, load;
    if (!json_is_object(o) || copy_name(json_object_get(o, "name"), e->name) < 0 ||
        get_uint(o, "pid", INT32_MAX, &pid) < 0 || get_uint(o, "load", UINT32_MAX, &load) < 0)
        goto out;
    e->pid = (int32_t)pid;
    e->load = (uint32_t)load;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int roster_encode(uint64_t version, const roster_entry *e, size_t n, gw_buf *out)
{
    json_t *nodes = json_array();
    json_t *root = json_pack("{s:I, s:o}", "version", (json_int_t)version, "nodes", nodes);
    if (root == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char addr[32], ipbuf[INET_ADDRSTRLEN], nonce[17];
        struct in_addr a = {.s_addr = htonl(e[i].ip)};
        inet_ntop(AF_INET, &a, ipbuf, sizeof ipbuf);
        snprintf(addr, sizeof addr, "%s:%u", ipbuf, (unsigned)e[i].port);
        snprintf(nonce, sizeof nonce, "%016" PRIx64, e[i].nonce);
        const char *role = roster_role_name(e[i].role);
        json_t *node = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:s}", "role", role ? role : "",
                                 "addr", addr, "nonce", nonce, "age_ms", (json_int_t)e[i].age_ms,
                                 "load", (json_int_t)e[i].load, "pid", (int)e[i].pid, "name",
                                 e[i].name);
        if (node == NULL || json_array_append_new(nodes, node) < 0) {
            json_decref(root);
            return -ENOMEM;
        }
    }
    return append_json(root, out);
}

static int parse_addr(const char *s, uint32_t *ip, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= INET_ADDRSTRLEN)
        return -EINVAL;
    char host[INET_ADDRSTRLEN];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return -EINVAL;
    char *end;
    if (colon[1] < '0' || colon[1] > '9')
        return -EINVAL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535)
        return -EINVAL;
    *ip = ntohl(a.s_addr);
    *port = (uint16_t)p;
    return 0;
}

static int parse_nonce(const char *s, uint64_t *nonce)
{
    if (strlen(s) != 16)
        return -EINVAL;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint64_t)d;
    }
    *nonce = v;
    return 0;
}

static int decode_node(json_t *node, roster_entry *e)
{
    const char *role, *addr, *nonce;
    json_t *name = NULL;
    json_int_t age = 0, load = 0, pid = 0;
    if (json_unpack(node, "{s:s, s:s, s:s, s?I, s?I, s?I, s?o}", "role", &role, "addr", &addr,
                    "nonce", &nonce, "age_ms", &age, "load", &load, "pid", &pid, "name",
                    &name) < 0)
        return -EINVAL;
    memset(e, 0, sizeof *e);
    int r = roster_role_parse(role);
    if (r == 0 || age < 0 || age > UINT32_MAX || load < 0 || load > UINT32_MAX || pid < 0 ||
        pid > INT32_MAX)
        return -EINVAL;
    e->role = (uint8_t)r;
    e->age_ms = (uint32_t)age;
    e->load = (uint32_t)load;
    e->pid = (int32_t)pid;
    if (parse_addr(addr, &e->ip, &e->port) < 0 || parse_nonce(nonce, &e->nonce) < 0 ||
        copy_name(name, e->name) < 0)
        return -EINVAL;
    return 0;
}

int roster_decode(const uint8_t *json, size_t len, uint64_t *version, roster_entry **out,
                  size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *root = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL)
        return -EINVAL;
    int rc = -EINVAL;
    json_t *nodes;
    json_int_t ver;
    if (json_unpack(root, "{s:I, s:o}", "version", &ver, "nodes", &nodes) < 0 ||
        !json_is_array(nodes) || ver < 0 || json_array_size(nodes) > ROSTER_MAX_NODES)
        goto out;
    size_t count = json_array_size(nodes);
    roster_entry *arr = NULL;
    if (count) {
        arr = gw_calloc(count, sizeof *arr);
        if (arr == NULL) {
            rc = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (decode_node(json_array_get(nodes, i), &arr[i]) < 0) {
            gw_free(arr);
            goto out;
        }
    }
    *out = arr;
    *n = count;
    *version = (uint64_t)ver;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
