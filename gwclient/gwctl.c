/* gwctl - the command line of libgwclient: push to clients and ask the cluster. */
#include "common/config.h"
#include "gwclient.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: gwctl [options] COMMAND [ARGS]\n"
    "commands:\n"
    "  send-to-client ID MSG      send MSG to one client\n"
    "  send-to-uid UID MSG        send MSG to every client bound to UID\n"
    "  send-to-group GROUP MSG    send MSG to every member of GROUP\n"
    "  send-to-all MSG            send MSG to every client\n"
    "  close-client ID [MSG]      close a client (after sending MSG)\n"
    "  is-online ID               true or false\n"
    "  count [--group G]          number of clients (in G)\n"
    "  list [--group G | --uid U] client ids (of G, of U), one per line\n"
    "  session get ID             the client's session (JSON)\n"
    "  session set ID JSON        replace the client's session\n"
    "  connections                every client: id, gateway, address, protocol, uid,\n"
    "                             groups, idle time, queued bytes\n"
    "  gateways                   the gateways the registers know\n"
    "options:\n"
    "  --register HOST:PORT       a register (repeatable; default 127.0.0.1:1238)\n"
    "  --secret-key KEY           the cluster's secret_key\n"
    "  --config FILE              take registers, secret_key and lan_ip from a config file\n"
    "  --lan-ip IP                address the gateways answer to (default 127.0.0.1)\n"
    "  --timeout SECONDS          discovery and query deadline (default 5)\n"
    "  --group G, --uid U         selectors of count and list\n"
    "  --binary                   send MSG as a binary WebSocket frame\n"
    "  --json                     print results as JSON\n"
    "exit status: 0 done, 1 failed (nothing answered, unknown client), 2 usage\n";

static struct {
    const char *registers[16];
    size_t nreg;
    const char *secret;
    const char *lan_ip;
    double timeout;
    const char *group, *uid;
    int json, binary;
} o;

static gw_config cfg;

static void usage(int status)
{
    fputs(usage_text, status ? stderr : stdout);
    exit(status);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "gwctl: %s: %s\n", what, gw_strerror(rc));
    return 1;
}

/* Collects a query; prints a warning for a partial result. NULL when nothing
 * answered (message printed). */
static const gw_result *collect(long id, const char *what)
{
    if (id < 0) {
        fail(what, (int)id);
        return NULL;
    }
    const gw_result *r = gw_wait(id, 0);
    if (r == NULL) {
        fprintf(stderr, "gwctl: %s: query lost\n", what);
        return NULL;
    }
    if (r->asked > 0 && r->answered == 0) {
        fprintf(stderr, "gwctl: %s: no gateway answered within %.1f s\n", what, o.timeout);
        return NULL;
    }
    if (!r->complete)
        fprintf(stderr, "gwctl: warning: %u of %u gateways answered in time; the result is "
                        "incomplete\n",
                r->answered, r->asked);
    return r;
}

static void print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        free(s);
    }
}

static int print_result(const gw_result *r, const char *key)
{
    if (o.json) {
        json_t *out = json_pack("{s:O, s:b, s:i, s:i}", key, r->value, "complete", r->complete,
                                "gateways", r->asked, "answered", r->answered);
        print_json(out);
        json_decref(out);
        return 0;
    }
    if (json_is_array(r->value)) {
        size_t i;
        json_t *v;
        json_array_foreach(r->value, i, v) puts(json_string_value(v) ? json_string_value(v) : "");
    } else if (json_is_object(r->value) || json_is_null(r->value) || json_is_boolean(r->value) ||
               json_is_integer(r->value)) {
        print_json(r->value);
    }
    return 0;
}

static int done_send(const char *what, int rc)
{
    if (rc != 0)
        return fail(what, rc);
    rc = gw_client_flush(o.timeout);
    if (rc != 0) {
        fprintf(stderr, "gwctl: %s: not every gateway took the message within %.1f s\n", what,
                o.timeout);
        return 1;
    }
    if (o.json)
        puts("{\"ok\":true}");
    return 0;
}

static int need(int argc, int n)
{
    if (argc != n)
        usage(2);
    return 0;
}

static int run(int argc, char **argv)
{
    const char *cmd = argv[0];
    unsigned flags = o.binary ? GW_BINARY : 0;
    if (strcmp(cmd, "send-to-client") == 0 && !need(argc, 3))
        return done_send(cmd, gw_send_to_client_ex(argv[1], argv[2], strlen(argv[2]), flags));
    if (strcmp(cmd, "send-to-uid") == 0 && !need(argc, 3)) {
        const char *u = argv[1];
        return done_send(cmd, gw_send_to_uids_ex(&u, 1, argv[2], strlen(argv[2]), flags));
    }
    if (strcmp(cmd, "send-to-group") == 0 && !need(argc, 3)) {
        const char *gname = argv[1];
        return done_send(cmd,
                         gw_send_to_groups_ex(&gname, 1, argv[2], strlen(argv[2]), NULL, 0, flags));
    }
    if (strcmp(cmd, "send-to-all") == 0 && !need(argc, 2))
        return done_send(cmd, gw_send_to_all_ex(argv[1], strlen(argv[1]), NULL, 0, NULL, 0, flags));
    if (strcmp(cmd, "close-client") == 0) {
        if (argc != 2 && argc != 3)
            usage(2);
        const char *msg = argc == 3 ? argv[2] : NULL;
        return done_send(cmd,
                         gw_close_client_ex(argv[1], msg, msg ? strlen(msg) : 0, 0, flags));
    }
    if (strcmp(cmd, "is-online") == 0 && !need(argc, 2)) {
        const gw_result *r = collect(gw_is_online(argv[1], NULL, NULL), cmd);
        return r ? print_result(r, "online") : 1;
    }
    if (strcmp(cmd, "count") == 0 && !need(argc, 1)) {
        long id = o.group ? gw_get_client_count_by_group(o.group, NULL, NULL)
                          : gw_get_all_client_count(NULL, NULL);
        const gw_result *r = collect(id, cmd);
        return r ? print_result(r, "count") : 1;
    }
    if (strcmp(cmd, "list") == 0 && !need(argc, 1)) {
        if (o.group && o.uid)
            usage(2);
        long id = o.group ? gw_get_client_id_list_by_group(o.group, NULL, NULL)
                  : o.uid ? gw_get_client_id_by_uid(o.uid, NULL, NULL)
                          : gw_get_all_client_id_list(NULL, NULL);
        const gw_result *r = collect(id, cmd);
        return r ? print_result(r, "clients") : 1;
    }
    if (strcmp(cmd, "session") == 0 && argc >= 3) {
        if (strcmp(argv[1], "get") == 0 && !need(argc, 3)) {
            const gw_result *r = collect(gw_get_session(argv[2], NULL, NULL), "session get");
            return r ? print_result(r, "session") : 1;
        }
        if (strcmp(argv[1], "set") == 0 && !need(argc, 4)) {
            json_error_t e;
            json_t *v = json_loads(argv[3], 0, &e);
            if (!json_is_object(v)) {
                fprintf(stderr, "gwctl: session set: %s is not a JSON object%s%s\n", argv[3],
                        v ? "" : ": ", v ? "" : e.text);
                json_decref(v);
                return 2;
            }
            int rc = gw_set_session(argv[2], v);
            json_decref(v);
            return done_send("session set", rc);
        }
    }
    if (strcmp(cmd, "connections") == 0 && !need(argc, 1)) {
        const gw_result *r = collect(gw_get_connections(NULL, NULL), cmd);
        if (r == NULL)
            return 1;
        if (o.json)
            return print_result(r, "connections");
        printf("%-20s  %-21s  %-22s  %-9s  %-12s  %8s  %8s  %s\n", "CLIENT_ID", "GATEWAY",
               "REMOTE", "PROTOCOL", "UID", "IDLE_S", "QUEUED", "GROUPS");
        size_t i;
        json_t *row;
        json_array_foreach(r->value, i, row)
        {
            char remote[64], groups[256] = "";
            snprintf(remote, sizeof remote, "%s:%lld",
                     json_string_value(json_object_get(row, "remote")),
                     (long long)json_integer_value(json_object_get(row, "remote_port")));
            size_t k;
            json_t *g;
            json_array_foreach(json_object_get(row, "groups"), k, g)
            {
                size_t used = strlen(groups);
                snprintf(groups + used, sizeof groups - used, "%s%s", k ? "," : "",
                         json_string_value(g));
            }
            const char *uid = json_string_value(json_object_get(row, "uid"));
            printf("%-20s  %-21s  %-22s  %-9s  %-12s  %8.1f  %8lld  %s\n",
                   json_string_value(json_object_get(row, "client_id")),
                   json_string_value(json_object_get(row, "gateway")), remote,
                   json_string_value(json_object_get(row, "protocol")), uid ? uid : "-",
                   (double)json_integer_value(json_object_get(row, "idle_ms")) / 1000.0,
                   (long long)json_integer_value(json_object_get(row, "send_queue")), groups);
        }
        return 0;
    }
    if (strcmp(cmd, "gateways") == 0 && !need(argc, 1)) {
        int n = gw_client_gateway_count();
        for (int i = 0; i < n; i++) {
            char a[32];
            if (gw_client_gateway_addr(i, a, sizeof a) == 0)
                puts(a);
        }
        return 0;
    }
    usage(2);
    return 2;
}

static void load_config(const char *path)
{
    char err[512];
    if (gw_config_load(path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "gwctl: invalid configuration: %s\n", err);
        exit(2);
    }
    static char regs[16][64];
    for (int i = 0; i < cfg.cluster.registers.count && o.nreg < 16; i++) {
        snprintf(regs[o.nreg], sizeof regs[o.nreg], "%s:%u", cfg.cluster.registers.items[i].host,
                 cfg.cluster.registers.items[i].port);
        o.registers[o.nreg] = regs[o.nreg];
        o.nreg++;
    }
    if (o.secret == NULL)
        o.secret = cfg.cluster.secret_key;
    if (o.lan_ip == NULL)
        o.lan_ip = cfg.cluster.lan_ip;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"register", required_argument, NULL, 'r'},
                                         {"secret-key", required_argument, NULL, 's'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"lan-ip", required_argument, NULL, 'l'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"group", required_argument, NULL, 'g'},
                                         {"uid", required_argument, NULL, 'u'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"binary", no_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    o.timeout = 5;
    int ch;
    while ((ch = getopt_long(argc, argv, "r:s:c:l:t:g:u:jbh", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            if (o.nreg == 16) {
                fprintf(stderr, "gwctl: at most 16 registers\n");
                return 2;
            }
            o.registers[o.nreg++] = optarg;
            break;
        case 's':
            o.secret = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'l':
            o.lan_ip = optarg;
            break;
        case 't':
            o.timeout = strtod(optarg, NULL);
            if (!(o.timeout > 0 && o.timeout <= 600)) {
                fprintf(stderr, "gwctl: --timeout must be in (0, 600] seconds\n");
                return 2;
            }
            break;
        case 'g':
            o.group = optarg;
            break;
        case 'u':
            o.uid = optarg;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'b':
            o.binary = 1;
            break;
        case 'h':
            usage(0);
            break;
        default:
            usage(2);
        }
    }
    if (optind >= argc)
        usage(2);
    if (config)
        load_config(config);
    if (o.nreg == 0)
        o.registers[o.nreg++] = "127.0.0.1:1238";
    gw_client_options co = {.registers = o.registers,
                            .n_registers = o.nreg,
                            .secret_key = o.secret,
                            .lan_ip = o.lan_ip,
                            .timeout = o.timeout,
                            .max_message_size = config ? cfg.gateway.max_message_size : 0};
    char err[256];
    int rc = gw_client_init(&co, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "gwctl: cannot reach the cluster: %s\n", err);
        return 1;
    }
    rc = run(argc - optind, argv + optind);
    gw_client_close();
    gw_config_deinit(&cfg);
    return rc;
}
