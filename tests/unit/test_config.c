/* test_config.c - the configuration loader (common/config.c).
 *
 * Every test runs in its own temporary directory; config files are written there
 * from the strings below. Rejections assert the exact message: "file: key: reason". */
#include "common/alloc.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERRLEN 1024
#define MODULE "\"businessworker\": {\"module\": \"m.so\"}"

static char tmpdir[PATH_MAX]; /* realpath of the per-test directory */
static char cfgpath[PATH_MAX + 16];

static void setup(void)
{
    char t[] = "/tmp/gwcfgtest.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(t));
    ck_assert_ptr_nonnull(realpath(t, tmpdir));
    snprintf(cfgpath, sizeof cfgpath, "%s/t.json", tmpdir);
    gw_alloc_install();
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

static int load_text(const char *text, gw_config *cfg, char *err)
{
    write_file(cfgpath, text);
    return gw_config_load(cfgpath, cfg, err, ERRLEN);
}

static void assert_zeroed(const gw_config *cfg)
{
    static const gw_config zero;
    ck_assert_int_eq(memcmp(cfg, &zero, sizeof zero), 0);
}

/* Loads text and asserts it is rejected with "<cfgpath>: <reason>". */
static void expect_reject(const char *text, const char *reason)
{
    gw_config cfg;
    char err[ERRLEN], want[ERRLEN + PATH_MAX];
    int rc = load_text(text, &cfg, err);
    snprintf(want, sizeof want, "%s: %s", cfgpath, reason);
    ck_assert_msg(rc == GW_CONFIG_INVALID, "rc %d for %s (err: %s)", rc, text, err);
    ck_assert_str_eq(err, want);
    assert_zeroed(&cfg);
}

static void expect_accept(const char *text, gw_config *cfg)
{
    char err[ERRLEN];
    int rc = load_text(text, cfg, err);
    ck_assert_msg(rc == 0, "rc %d for %s: %s", rc, text, err);
    ck_assert_str_eq(err, "");
}

/* ---- defaults ----------------------------------------------------------------------- */

START_TEST(test_defaults)
{
    gw_config cfg;
    char cwd[PATH_MAX], want[PATH_MAX + 64];
    ck_assert_int_eq(chdir(tmpdir), 0);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(gw_config_defaults(&cfg), 0);

    ck_assert_str_eq(cfg.path, "");
    ck_assert_str_eq(cfg.dir, cwd);
    const gw_cluster_config *cl = &cfg.cluster;
    ck_assert_str_eq(cl->secret_key, "");
    ck_assert_str_eq(cl->lan_ip, "127.0.0.1");
    ck_assert_int_eq(cl->registers.count, 1);
    ck_assert_str_eq(cl->registers.items[0].host, "127.0.0.1");
    ck_assert_uint_eq(cl->registers.items[0].port, 1238);
    ck_assert_int_eq(cl->registers.items[0].family, AF_INET);
    ck_assert_double_eq(cl->heartbeat_interval, 1.0);
    ck_assert_double_eq(cl->node_timeout, 2.5);
    ck_assert_int_eq(cl->log_level, GW_LOG_INFO);
    /* "../run" relative to the (imaginary) config file in the cwd */
    char *slash = strrchr(cwd, '/');
    snprintf(want, sizeof want, "%.*s/run", (int)(slash - cwd), cwd);
    ck_assert_str_eq(cl->run_dir, want);

    ck_assert_int_eq(cfg.reg.count, 1);
    ck_assert_str_eq(cfg.reg.listen.host, "127.0.0.1");
    ck_assert_uint_eq(cfg.reg.listen.port, 1238);
    ck_assert_double_eq(cfg.reg.publish_interval, 1.0);

    const gw_gateway_config *g = &cfg.gateway;
    ck_assert_int_eq(g->count, 1);
    ck_assert_int_eq(g->listen.count, 1);
    ck_assert_int_eq(g->listen.items[0].proto, GW_PROTO_WEBSOCKET);
    ck_assert_str_eq(g->listen.items[0].host, "0.0.0.0");
    ck_assert_uint_eq(g->listen.items[0].port, 8282);
    ck_assert_uint_eq(g->start_port, 2900);
    ck_assert_str_eq(g->inbox_bind, "");
    ck_assert_double_eq(g->ping_interval, 0);
    ck_assert_int_eq(g->ping_not_response_limit, 0);
    ck_assert_str_eq(g->ping_data, "");
    ck_assert(!g->ws_ping);
    ck_assert_str_eq(g->heartbeat_message, "");
    ck_assert_uint_eq(g->max_message_size, 1048576);
    ck_assert_uint_eq(g->max_handshake_size, 8192);
    ck_assert_double_eq(g->handshake_timeout, 10.0);
    ck_assert_uint_eq(g->send_buffer_limit, 4194304);
    ck_assert_int_eq(g->slow_client_policy, GW_SLOW_CLOSE);
    ck_assert_double_eq(g->worker_wait_timeout, 10.0);
    ck_assert_uint_eq(g->worker_queue_limit, 67108864);
    ck_assert_int_eq(g->router, GW_ROUTER_LEAST_CONNECTIONS);
    ck_assert(!g->websocket_auth);
    ck_assert_str_eq(g->static_dir, "");
    ck_assert(g->reuse_port);

    const gw_businessworker_config *b = &cfg.businessworker;
    ck_assert_int_eq(b->count, 1);
    ck_assert_str_eq(b->name, "BusinessWorker");
    ck_assert_str_eq(b->module, "");
    ck_assert(json_is_object(b->module_config));
    ck_assert_uint_eq(json_object_size(b->module_config), 0);
    ck_assert_uint_eq(b->start_port, 3900);
    ck_assert_str_eq(b->inbox_bind, "");
    ck_assert_double_eq(b->query_timeout, 5.0);

    const gw_supervisor_config *s = &cfg.supervisor;
    ck_assert_double_eq(s->stop_timeout, 5.0);
    ck_assert_double_eq(s->restart_backoff_max, 30.0);
    snprintf(want, sizeof want, "%s/gatewayworker.pid", cl->run_dir);
    ck_assert_str_eq(s->pid_file, want);
    snprintf(want, sizeof want, "%s/gatewayworker.log", cl->run_dir);
    ck_assert_str_eq(s->log_file, want);
    ck_assert_uint_eq(s->log_max_size, 10485760);
    ck_assert_uint_eq(s->metrics_listen.port, 0);
    ck_assert_int_eq(s->metrics_listen.family, 0);
    snprintf(want, sizeof want, "%s/gatewayworker.status", cl->run_dir);
    ck_assert_str_eq(s->status_file, want);

    gw_config_deinit(&cfg);
    assert_zeroed(&cfg);
    gw_config_deinit(&cfg); /* safe twice */
}
END_TEST

/* An empty object and a file with only the module are the defaults. */
START_TEST(test_minimal_file)
{
    gw_config cfg;
    expect_accept("{" MODULE "}", &cfg);
    ck_assert_str_eq(cfg.path, cfgpath);
    ck_assert_str_eq(cfg.dir, tmpdir);
    ck_assert_int_eq(cfg.gateway.count, 1);
    ck_assert_uint_eq(cfg.gateway.listen.items[0].port, 8282);
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/m.so", tmpdir);
    ck_assert_str_eq(cfg.businessworker.module, want);
    gw_config_deinit(&cfg);
}
END_TEST

/* ---- a full valid file -------------------------------------------------------------- */

static const char full_config[] =
    "{\n"
    "  \"cluster\": {\"secret_key\": \"s3cret\", \"lan_ip\": \"10.0.0.5\",\n"
    "    \"registers\": [\"10.0.0.1:1300\", \"10.0.0.2:1300\"], \"heartbeat_interval\": 0.5,\n"
    "    \"node_timeout\": 1.5, \"log_level\": \"debug\", \"run_dir\": \"/var/run/gw\"},\n"
    "  \"register\": {\"count\": 0, \"listen\": \"0.0.0.0:1300\", \"publish_interval\": 2},\n"
    "  \"gateway\": {\"count\": 4,\n"
    "    \"listen\": [\"websocket://0.0.0.0:8080\", \"text://127.0.0.1:5678\", "
    "\"frame://[::]:5679\"],\n"
    "    \"start_port\": 4000, \"inbox_bind\": \"0.0.0.0\", \"ping_interval\": 25,\n"
    "    \"ping_not_response_limit\": 2, \"ping_data\": \"{\\\"type\\\":\\\"ping\\\"}\",\n"
    "    \"ws_ping\": true, \"heartbeat_message\": \"ping\", \"max_message_size\": 65536,\n"
    "    \"max_handshake_size\": 4096, \"handshake_timeout\": 5, \"send_buffer_limit\": 1048576,\n"
    "    \"slow_client_policy\": \"drop\", \"worker_wait_timeout\": 3,\n"
    "    \"worker_queue_limit\": 1048576, \"router\": \"random\", \"websocket_auth\": true,\n"
    "    \"static_dir\": \"/srv/www\", \"reuse_port\": true},\n"
    "  \"businessworker\": {\"count\": 8, \"name\": \"ChatWorker\", \"module\": "
    "\"/opt/gw/libchat.so\",\n"
    "    \"module_config\": {\"rooms\": [\"a\", \"b\"], \"max\": 3}, \"start_port\": 4100,\n"
    "    \"inbox_bind\": \"10.0.0.5\", \"query_timeout\": 2.5},\n"
    "  \"supervisor\": {\"stop_timeout\": 10, \"restart_backoff_max\": 60, \"pid_file\": "
    "\"gw.pid\",\n"
    "    \"log_file\": \"/var/log/gw.log\", \"log_max_size\": 0, \"metrics_listen\": "
    "\"127.0.0.1:9100\",\n"
    "    \"status_file\": \"\"}\n"
    "}\n";

START_TEST(test_full_file)
{
    gw_config cfg;
    expect_accept(full_config, &cfg);
    const gw_cluster_config *cl = &cfg.cluster;
    ck_assert_str_eq(cl->secret_key, "s3cret");
    ck_assert_str_eq(cl->lan_ip, "10.0.0.5");
    ck_assert_int_eq(cl->registers.count, 2);
    ck_assert_str_eq(cl->registers.items[1].host, "10.0.0.2");
    ck_assert_uint_eq(cl->registers.items[1].port, 1300);
    ck_assert_double_eq(cl->heartbeat_interval, 0.5);
    ck_assert_double_eq(cl->node_timeout, 1.5);
    ck_assert_int_eq(cl->log_level, GW_LOG_DEBUG);
    ck_assert_str_eq(cl->run_dir, "/var/run/gw");

    ck_assert_int_eq(cfg.reg.count, 0);
    ck_assert_str_eq(cfg.reg.listen.host, "0.0.0.0");
    ck_assert_uint_eq(cfg.reg.listen.port, 1300);
    ck_assert_double_eq(cfg.reg.publish_interval, 2.0);

    const gw_gateway_config *g = &cfg.gateway;
    ck_assert_int_eq(g->count, 4);
    ck_assert_int_eq(g->listen.count, 3);
    ck_assert_int_eq(g->listen.items[1].proto, GW_PROTO_TEXT);
    ck_assert_str_eq(g->listen.items[1].host, "127.0.0.1");
    ck_assert_uint_eq(g->listen.items[1].port, 5678);
    ck_assert_int_eq(g->listen.items[2].proto, GW_PROTO_FRAME);
    ck_assert_str_eq(g->listen.items[2].host, "::");
    ck_assert_int_eq(g->listen.items[2].family, AF_INET6);
    ck_assert_uint_eq(g->start_port, 4000);
    ck_assert_str_eq(g->inbox_bind, "0.0.0.0");
    ck_assert_double_eq(g->ping_interval, 25);
    ck_assert_int_eq(g->ping_not_response_limit, 2);
    ck_assert_str_eq(g->ping_data, "{\"type\":\"ping\"}");
    ck_assert(g->ws_ping);
    ck_assert_str_eq(g->heartbeat_message, "ping");
    ck_assert_uint_eq(g->max_message_size, 65536);
    ck_assert_uint_eq(g->max_handshake_size, 4096);
    ck_assert_double_eq(g->handshake_timeout, 5);
    ck_assert_uint_eq(g->send_buffer_limit, 1048576);
    ck_assert_int_eq(g->slow_client_policy, GW_SLOW_DROP);
    ck_assert_double_eq(g->worker_wait_timeout, 3);
    ck_assert_uint_eq(g->worker_queue_limit, 1048576);
    ck_assert_int_eq(g->router, GW_ROUTER_RANDOM);
    ck_assert(g->websocket_auth);
    ck_assert_str_eq(g->static_dir, "/srv/www");
    ck_assert(g->reuse_port);

    const gw_businessworker_config *b = &cfg.businessworker;
    ck_assert_int_eq(b->count, 8);
    ck_assert_str_eq(b->name, "ChatWorker");
    ck_assert_str_eq(b->module, "/opt/gw/libchat.so");
    ck_assert_int_eq(json_integer_value(json_object_get(b->module_config, "max")), 3);
    ck_assert_uint_eq(b->start_port, 4100);
    ck_assert_str_eq(b->inbox_bind, "10.0.0.5");
    ck_assert_double_eq(b->query_timeout, 2.5);

    const gw_supervisor_config *s = &cfg.supervisor;
    ck_assert_double_eq(s->stop_timeout, 10);
    ck_assert_double_eq(s->restart_backoff_max, 60);
    ck_assert_str_eq(s->pid_file, "/var/run/gw/gw.pid");
    ck_assert_str_eq(s->log_file, "/var/log/gw.log");
    ck_assert_uint_eq(s->log_max_size, 0);
    ck_assert_str_eq(s->metrics_listen.host, "127.0.0.1");
    ck_assert_uint_eq(s->metrics_listen.port, 9100);
    ck_assert_str_eq(s->status_file, "");

    ck_assert_ptr_eq(gw_config_section(&cfg, "gateway"), &cfg.gateway);
    ck_assert_ptr_eq(gw_config_section(&cfg, "register"), &cfg.reg);
    ck_assert_ptr_eq(gw_config_section(&cfg, "cluster"), &cfg.cluster);
    ck_assert_ptr_eq(gw_config_section(&cfg, "businessworker"), &cfg.businessworker);
    ck_assert_ptr_eq(gw_config_section(&cfg, "supervisor"), &cfg.supervisor);
    ck_assert_ptr_null(gw_config_section(&cfg, "worker"));
    ck_assert_int_eq(gw_config_role_count(&cfg, "register"), 0);
    ck_assert_int_eq(gw_config_role_count(&cfg, "gateway"), 4);
    ck_assert_int_eq(gw_config_role_count(&cfg, "businessworker"), 8);
    ck_assert_int_eq(gw_config_role_count(&cfg, "supervisor"), -1);
    ck_assert_int_eq(gw_config_role_count(&cfg, "x"), -1);
    gw_config_deinit(&cfg);
}
END_TEST

/* The shipped demo config loads and is what the docs say. */
START_TEST(test_shipped_config)
{
    /* __FILE__ is this source, relative to the build root (meson) or absolute; the
     * build root is three levels above this executable (tests/unit/test_config). */
    char path[2 * PATH_MAX], root[PATH_MAX] = "", err[ERRLEN];
    const char *src = __FILE__;
    const char *cut = strstr(src, "tests/unit/test_config.c");
    ck_assert_ptr_nonnull(cut);
    if (src[0] != '/') {
        ssize_t n = readlink("/proc/self/exe", root, sizeof root - 1);
        ck_assert_int_gt(n, 0);
        root[n] = '\0';
        for (int up = 0; up < 3; up++)
            *strrchr(root, '/') = '\0';
        strcat(root, "/");
    }
    snprintf(path, sizeof path, "%s%.*sconfig/gatewayworker.json", root, (int)(cut - src), src);
    gw_config cfg;
    int rc = gw_config_load(path, &cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(cfg.reg.count, 1);
    ck_assert_uint_eq(cfg.reg.listen.port, 1238);
    ck_assert_int_eq(cfg.gateway.listen.count, 1);
    ck_assert_uint_eq(cfg.gateway.listen.items[0].port, 8282);
    ck_assert_double_eq(cfg.gateway.ping_interval, 15);
    ck_assert_int_eq(cfg.gateway.ping_not_response_limit, 1);
    ck_assert_uint_eq(cfg.gateway.start_port, 2900);
    ck_assert_str_eq(strrchr(cfg.gateway.static_dir, '/'), "/web");
    ck_assert_int_eq(cfg.businessworker.count, 1);
    ck_assert_ptr_nonnull(strstr(cfg.businessworker.module, "/build/examples/chat/libgw_chat.so"));
    ck_assert_str_eq(strrchr(cfg.cluster.run_dir, '/'), "/run");
    gw_config_deinit(&cfg);
}
END_TEST

/* ---- relative paths and module_config ----------------------------------------------- */

START_TEST(test_relative_paths)
{
    char sub[PATH_MAX + 8], path[PATH_MAX + 16], want[PATH_MAX + 64], err[ERRLEN];
    snprintf(sub, sizeof sub, "%s/etc", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/gw.json", sub);
    write_file(path, "{\"cluster\": {\"run_dir\": \"../var//run/./\"},\n"
                     " \"gateway\": {\"static_dir\": \"./web/\"},\n"
                     " \"businessworker\": {\"module\": \"../lib/../lib/libm.so\"},\n"
                     " \"supervisor\": {\"pid_file\": \"pids/../gw.pid\", \"log_file\": \"\",\n"
                     "   \"status_file\": \"/abs/../st\"}}\n");
    /* load through a relative path from another directory */
    ck_assert_int_eq(chdir(tmpdir), 0);
    gw_config cfg;
    ck_assert_int_eq(gw_config_load("etc/../etc/gw.json", &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg.path, path);
    ck_assert_str_eq(cfg.dir, sub);
    snprintf(want, sizeof want, "%s/var/run", tmpdir);
    ck_assert_str_eq(cfg.cluster.run_dir, want);
    snprintf(want, sizeof want, "%s/etc/web", tmpdir);
    ck_assert_str_eq(cfg.gateway.static_dir, want);
    snprintf(want, sizeof want, "%s/lib/libm.so", tmpdir);
    ck_assert_str_eq(cfg.businessworker.module, want);
    snprintf(want, sizeof want, "%s/var/run/gw.pid", tmpdir);
    ck_assert_str_eq(cfg.supervisor.pid_file, want);
    ck_assert_str_eq(cfg.supervisor.log_file, "");
    ck_assert_str_eq(cfg.supervisor.status_file, "/st");
    gw_config_deinit(&cfg);

    /* ".." never climbs above / */
    write_file(path,
               "{\"cluster\": {\"run_dir\": \"../../../../../../../../../../../..\"}," MODULE "}");
    ck_assert_int_eq(gw_config_load(path, &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg.cluster.run_dir, "/");
    ck_assert_str_eq(cfg.supervisor.pid_file, "/gatewayworker.pid");
    gw_config_deinit(&cfg);
}
END_TEST

START_TEST(test_module_config_passthrough)
{
    gw_config cfg;
    expect_accept("{\"businessworker\": {\"module\": \"m.so\", \"module_config\":\n"
                  "  {\"db\": {\"host\": \"x\", \"port\": 5432}, \"list\": [1, 2.5, null, true],\n"
                  "   \"unknown_to_us\": \"kept\"}}}",
                  &cfg);
    json_t *want = json_loads("{\"db\": {\"host\": \"x\", \"port\": 5432}, \"list\": [1, 2.5, "
                              "null, true], \"unknown_to_us\": \"kept\"}",
                              0, NULL);
    ck_assert_ptr_nonnull(want);
    ck_assert(json_equal(cfg.businessworker.module_config, want));
    ck_assert_int_eq(cfg.businessworker.module_config->refcount, 1);
    json_decref(want);
    gw_config_deinit(&cfg);
    ck_assert_ptr_null(cfg.businessworker.module_config);
}
END_TEST

/* ---- dump ---------------------------------------------------------------------------- */

START_TEST(test_dump_roundtrip)
{
    gw_config cfg, cfg2;
    gw_buf out = {0}, out2 = {0};
    char err[ERRLEN];
    expect_accept(full_config, &cfg);
    ck_assert_int_eq(gw_config_dump(&cfg, &out), 0);
    ck_assert_int_eq(gw_buf_append_u8(&out, 0), 0);
    const char *text = (const char *)out.data;
    ck_assert_ptr_null(strstr(text, "s3cret"));
    ck_assert_ptr_nonnull(strstr(text, "\"secret_key\": \"********\""));
    ck_assert_ptr_nonnull(strstr(text, "\"frame://[::]:5679\""));
    ck_assert_ptr_nonnull(strstr(text, "\"log_level\": \"debug\""));
    ck_assert_ptr_nonnull(strstr(text, "\"heartbeat_interval\": 0.5,"));
    ck_assert_ptr_nonnull(strstr(text, "\"ping_interval\": 25.0,"));
    ck_assert_ptr_nonnull(strstr(text, "\"metrics_listen\": \"127.0.0.1:9100\""));
    ck_assert_ptr_nonnull(strstr(text, "\"pid_file\": \"/var/run/gw/gw.pid\""));
    ck_assert_int_eq(text[out.len - 2], '\n');

    /* the dump loads back to the same config (secret masked) */
    char path2[PATH_MAX + 16];
    snprintf(path2, sizeof path2, "%s/dump.json", tmpdir);
    write_file(path2, text);
    ck_assert_msg(gw_config_load(path2, &cfg2, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(cfg2.cluster.secret_key, "********");
    ck_assert(json_equal(cfg2.businessworker.module_config, cfg.businessworker.module_config));
    ck_assert_int_eq(gw_config_dump(&cfg2, &out2), 0);
    ck_assert_int_eq(gw_buf_append_u8(&out2, 0), 0);
    ck_assert_str_eq((const char *)out2.data, text);

    gw_buf_deinit(&out);
    gw_buf_deinit(&out2);
    gw_config_deinit(&cfg);
    gw_config_deinit(&cfg2);
}
END_TEST

START_TEST(test_dump_defaults)
{
    gw_config cfg;
    gw_buf out = {0};
    ck_assert_int_eq(gw_config_defaults(&cfg), 0);
    ck_assert_int_eq(gw_config_dump(&cfg, &out), 0);
    ck_assert_int_eq(gw_buf_append_u8(&out, 0), 0);
    json_error_t je;
    json_t *j = json_loads((const char *)out.data, 0, &je);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "cluster"), "secret_key")), "");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "supervisor"), "metrics_listen")), "");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(j, "gateway"), "listen"), 0)),
                     "websocket://0.0.0.0:8282");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "gateway"), "router")),
                     "least_connections");
    ck_assert_uint_eq(json_object_size(j), 5);
    json_decref(j);
    gw_buf_deinit(&out);
    gw_config_deinit(&cfg);
}
END_TEST

/* ---- ranges ---------------------------------------------------------------------------- */

typedef struct range_case {
    const char *section, *key;
    const char *below, *min, *max, *above; /* JSON texts */
    const char *extra;                     /* JSON object merged into the file, or NULL */
} range_case;

static const range_case range_cases[] = {
    {"cluster", "heartbeat_interval", "0.04", "0.05", "60", "60.5",
     "{\"cluster\": {\"node_timeout\": 600}}"},
    {"cluster", "node_timeout", "0.09", "0.1", "600", "600.5",
     "{\"cluster\": {\"heartbeat_interval\": 0.05}}"},
    {"register", "count", "-1", "0", "1", "2", NULL},
    {"register", "publish_interval", "0.04", "0.05", "60", "60.5", NULL},
    {"gateway", "count", "-1", "0", "256", "257", NULL},
    {"gateway", "start_port", "0", "1", "65535", "65536", NULL},
    {"gateway", "ping_interval", "-1", "0", "86400", "86400.5", NULL},
    {"gateway", "ping_not_response_limit", "-1", "0", "1000", "1001",
     "{\"gateway\": {\"ping_interval\": 1}}"},
    {"gateway", "max_message_size", "15", "16", "67108864", "67108865", NULL},
    {"gateway", "max_handshake_size", "511", "512", "1048576", "1048577", NULL},
    {"gateway", "handshake_timeout", "0.09", "0.1", "3600", "3600.5", NULL},
    {"gateway", "send_buffer_limit", "1023", "1024", "1073741824", "1073741825", NULL},
    {"gateway", "worker_wait_timeout", "-0.5", "0", "3600", "3600.5", NULL},
    {"gateway", "worker_queue_limit", "65535", "65536", "1073741824", "1073741825", NULL},
    {"businessworker", "count", "-1", "0", "256", "257", NULL},
    {"businessworker", "start_port", "0", "1", "65535", "65536", NULL},
    {"businessworker", "query_timeout", "0.009", "0.01", "600", "600.5", NULL},
    {"supervisor", "stop_timeout", "0.09", "0.1", "300", "300.5", NULL},
    {"supervisor", "restart_backoff_max", "0.09", "0.1", "3600", "3600.5", NULL},
    {"supervisor", "log_max_size", "-1", "0", "1099511627776", "1099511627777", NULL},
};
#define NRANGE (int)(sizeof range_cases / sizeof range_cases[0])

/* {"businessworker": {"module": "m.so"}} + extra + {section: {key: value}} */
static char *range_file(const range_case *rc, const char *value)
{
    json_t *root = json_loads("{" MODULE "}", 0, NULL);
    if (rc->extra) {
        json_t *e = json_loads(rc->extra, 0, NULL);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(json_object_update_recursive(root, e), 0);
        json_decref(e);
    }
    json_t *sec = json_object_get(root, rc->section);
    if (sec == NULL) {
        sec = json_object();
        json_object_set_new(root, rc->section, sec);
    }
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(v);
    json_object_set_new(sec, rc->key, v);
    char *text = json_dumps(root, 0);
    json_decref(root);
    return text;
}

static void free_json_text(char *text)
{
    json_free_t f;
    json_get_alloc_funcs(NULL, &f);
    f(text);
}

static void range_reject(const range_case *rc, const char *value, const char *op, const char *bound)
{
    char reason[256];
    snprintf(reason, sizeof reason, "%s.%s: must be %s %s (got %s)", rc->section, rc->key, op,
             bound, value);
    char *text = range_file(rc, value);
    expect_reject(text, reason);
    free_json_text(text);
}

static void range_accept(const range_case *rc, const char *value)
{
    gw_config cfg;
    gw_buf out = {0};
    char *text = range_file(rc, value);
    expect_accept(text, &cfg);
    free_json_text(text);
    /* the value is stored as given: read it back through the dump */
    ck_assert_int_eq(gw_config_dump(&cfg, &out), 0);
    json_t *d = json_loadb((const char *)out.data, out.len, 0, NULL);
    ck_assert_ptr_nonnull(d);
    json_t *got = json_object_get(json_object_get(d, rc->section), rc->key);
    json_t *want = json_loads(value, JSON_DECODE_ANY, NULL);
    ck_assert_double_eq(json_number_value(got), json_number_value(want));
    json_decref(d);
    json_decref(want);
    gw_buf_deinit(&out);
    gw_config_deinit(&cfg);
}

START_TEST(test_ranges)
{
    const range_case *rc = &range_cases[_i];
    range_reject(rc, rc->below, ">=", rc->min);
    range_accept(rc, rc->min);
    range_accept(rc, rc->max);
    range_reject(rc, rc->above, "<=", rc->max);
}
END_TEST

static void list_file(char *buf, size_t len, const char *section, const char *key,
                      const char *prefix, int n)
{
    size_t o = (size_t)snprintf(buf, len, "{" MODULE ", \"%s\": {\"%s\": [", section, key);
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(buf + o, len - o, i ? ", \"" : "\"");
        o += (size_t)snprintf(buf + o, len - o, "%s%d", prefix, 2000 + i);
        o += (size_t)snprintf(buf + o, len - o, "\"");
    }
    snprintf(buf + o, len - o, "]}}");
}

START_TEST(test_list_lengths)
{
    char text[4096];
    gw_config cfg;
    list_file(text, sizeof text, "cluster", "registers", "127.0.0.1:", 0);
    expect_reject(text, "cluster.registers: must have 1..16 entries (got 0)");
    list_file(text, sizeof text, "cluster", "registers", "127.0.0.1:", 16);
    expect_accept(text, &cfg);
    ck_assert_int_eq(cfg.cluster.registers.count, 16);
    ck_assert_uint_eq(cfg.cluster.registers.items[15].port, 2015);
    gw_config_deinit(&cfg);
    list_file(text, sizeof text, "cluster", "registers", "127.0.0.1:", 17);
    expect_reject(text, "cluster.registers: must have 1..16 entries (got 17)");

    list_file(text, sizeof text, "gateway", "listen", "text://0.0.0.0:", 0);
    expect_accept(text, &cfg);
    ck_assert_int_eq(cfg.gateway.listen.count, 0);
    gw_config_deinit(&cfg);
    list_file(text, sizeof text, "gateway", "listen", "text://0.0.0.0:", 16);
    expect_accept(text, &cfg);
    ck_assert_int_eq(cfg.gateway.listen.count, 16);
    ck_assert_uint_eq(cfg.gateway.listen.items[15].port, 2015);
    gw_config_deinit(&cfg);
    list_file(text, sizeof text, "gateway", "listen", "text://0.0.0.0:", 17);
    expect_reject(text, "gateway.listen: must have 0..16 entries (got 17)");
}
END_TEST

/* ---- rejections: exact messages --------------------------------------------------------- */

typedef struct reject_case {
    const char *text;
    const char *reason; /* after "<file>: " */
} reject_case;

static const reject_case reject_cases[] = {
    /* unknown keys, in each section and at the top */
    {"{\"cluster\": {\"lan\": \"1.2.3.4\"}}", "cluster.lan: unknown key"},
    {"{\"register\": {\"port\": 1}}", "register.port: unknown key"},
    {"{\"gateway\": {\"pong\": 1}}", "gateway.pong: unknown key"},
    {"{\"businessworker\": {\"modul\": \"m.so\"}}", "businessworker.modul: unknown key"},
    {"{\"supervisor\": {\"pidfile\": \"x\"}}", "supervisor.pidfile: unknown key"},
    {"{\"gateways\": {}}", "gateways: unknown key"},
    /* wrong types */
    {"[]", "must be a JSON object (got an array)"},
    {"{\"gateway\": [1]}", "gateway: must be an object (got an array)"},
    {"{\"gateway\": {\"ws_ping\": \"yes\"}}",
     "gateway.ws_ping: must be true or false (got a string)"},
    {"{\"gateway\": {\"reuse_port\": 1}}",
     "gateway.reuse_port: must be true or false (got an integer)"},
    {"{\"gateway\": {\"count\": 1.5}}", "gateway.count: must be an integer (got a real number)"},
    {"{\"gateway\": {\"count\": \"1\"}}", "gateway.count: must be an integer (got a string)"},
    {"{\"gateway\": {\"start_port\": null}}", "gateway.start_port: must be an integer (got null)"},
    {"{\"supervisor\": {\"log_max_size\": 1e6}}",
     "supervisor.log_max_size: must be an integer (got a real number)"},
    {"{\"gateway\": {\"ping_interval\": \"15\"}}",
     "gateway.ping_interval: must be a number of seconds (got a string)"},
    {"{\"gateway\": {\"ping_interval\": true}}",
     "gateway.ping_interval: must be a number of seconds (got a boolean)"},
    {"{\"cluster\": {\"secret_key\": 123}}",
     "cluster.secret_key: must be a string (got an integer)"},
    {"{\"gateway\": {\"ping_data\": {}}}", "gateway.ping_data: must be a string (got an object)"},
    {"{\"cluster\": {\"log_level\": \"verbose\"}}",
     "cluster.log_level: must be one of debug, info, warn, error (got \"verbose\")"},
    {"{\"cluster\": {\"log_level\": 1}}",
     "cluster.log_level: must be one of debug, info, warn, error (got an integer)"},
    {"{\"gateway\": {\"slow_client_policy\": \"block\"}}",
     "gateway.slow_client_policy: must be one of close, drop (got \"block\")"},
    {"{\"gateway\": {\"router\": \"round_robin\"}}",
     "gateway.router: must be one of least_connections, random (got \"round_robin\")"},
    {"{\"cluster\": {\"registers\": \"127.0.0.1:1238\"}}",
     "cluster.registers: must be an array (got a string)"},
    {"{\"cluster\": {\"registers\": [1238]}}",
     "cluster.registers[0]: must be a \"host:port\" string (got an integer)"},
    {"{\"register\": {\"listen\": 1238}}",
     "register.listen: must be a \"host:port\" string (got an integer)"},
    {"{\"gateway\": {\"listen\": \"websocket://0.0.0.0:8282\"}}",
     "gateway.listen: must be an array (got a string)"},
    {"{\"gateway\": {\"listen\": [8282]}}",
     "gateway.listen[0]: must be a \"proto://host:port\" string (got an integer)"},
    {"{\"businessworker\": {\"module_config\": []}}",
     "businessworker.module_config: must be an object (got an array)"},
    {"{\"businessworker\": {\"module_config\": \"{}\"}}",
     "businessworker.module_config: must be an object (got a string)"},
    /* listener URLs */
    {"{\"gateway\": {\"listen\": [\"ws://0.0.0.0:8282\"]}}",
     "gateway.listen[0]: scheme must be websocket://, text:// or frame:// (got "
     "\"ws://0.0.0.0:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket:/0.0.0.0:8282\"]}}",
     "gateway.listen[0]: scheme must be websocket://, text:// or frame:// (got "
     "\"websocket:/0.0.0.0:8282\")"},
    {"{\"gateway\": {\"listen\": [\"0.0.0.0:8282\"]}}",
     "gateway.listen[0]: scheme must be websocket://, text:// or frame:// (got \"0.0.0.0:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://0.0.0.0\"]}}",
     "gateway.listen[0]: expected host:port (got \"websocket://0.0.0.0\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://0.0.0.0:\"]}}",
     "gateway.listen[0]: port must be 1..65535 (got \"websocket://0.0.0.0:\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://0.0.0.0:0\"]}}",
     "gateway.listen[0]: port must be 1..65535 (got \"websocket://0.0.0.0:0\")"},
    {"{\"gateway\": {\"listen\": [\"text://0.0.0.0:70000\"]}}",
     "gateway.listen[0]: port must be 1..65535 (got \"text://0.0.0.0:70000\")"},
    {"{\"gateway\": {\"listen\": [\"text://0.0.0.0:65536\"]}}",
     "gateway.listen[0]: port must be 1..65535 (got \"text://0.0.0.0:65536\")"},
    {"{\"gateway\": {\"listen\": [\"text://0.0.0.0:-80\"]}}",
     "gateway.listen[0]: port must be 1..65535 (got \"text://0.0.0.0:-80\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://0.0.0.0:8282/chat\"]}}",
     "gateway.listen[0]: port must be 1..65535 (got \"websocket://0.0.0.0:8282/chat\")"},
    {"{\"gateway\": {\"listen\": [\"frame://256.0.0.1:8282\"]}}",
     "gateway.listen[0]: host must be an IPv4 address or a [bracketed] IPv6 address (got "
     "\"frame://256.0.0.1:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://localhost:8282\"]}}",
     "gateway.listen[0]: host must be an IPv4 address or a [bracketed] IPv6 address (got "
     "\"websocket://localhost:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://:8282\"]}}",
     "gateway.listen[0]: host must be an IPv4 address or a [bracketed] IPv6 address (got "
     "\"websocket://:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://::1:8282\"]}}",
     "gateway.listen[0]: host must be an IPv4 address or a [bracketed] IPv6 address (got "
     "\"websocket://::1:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://[::1:8282\"]}}",
     "gateway.listen[0]: host must be an IPv4 address or a [bracketed] IPv6 address (got "
     "\"websocket://[::1:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://[1.2.3.4]:8282\"]}}",
     "gateway.listen[0]: host must be an IPv4 address or a [bracketed] IPv6 address (got "
     "\"websocket://[1.2.3.4]:8282\")"},
    {"{\"gateway\": {\"listen\": [\"websocket://[::1]8282\"]}}",
     "gateway.listen[0]: expected host:port (got \"websocket://[::1]8282\")"},
    {"{\"gateway\": {\"listen\": [\"text://0.0.0.0:1\", \"websocket://0.0.0.0:8282\", "
     "\"text://0.0.0.0:8282\"]}}",
     "gateway.listen[2]: duplicate of gateway.listen[1]"},
    /* addresses */
    {"{\"cluster\": {\"registers\": [\"10.0.0.1\"]}}",
     "cluster.registers[0]: expected host:port (got \"10.0.0.1\")"},
    {"{\"cluster\": {\"registers\": [\"[::1]:1238\"]}}",
     "cluster.registers[0]: host must be an IPv4 address (got \"[::1]:1238\")"},
    {"{\"cluster\": {\"registers\": [\"10.0.0.1:1238\", \"reg.example.com:1238\"]}}",
     "cluster.registers[1]: host must be an IPv4 address (got \"reg.example.com:1238\")"},
    {"{\"cluster\": {\"registers\": [\"10.0.0.1:99999\"]}}",
     "cluster.registers[0]: port must be 1..65535 (got \"10.0.0.1:99999\")"},
    {"{\"cluster\": {\"registers\": [\"10.0.0.1:1238\", \"10.0.0.1:1238\"]}}",
     "cluster.registers[1]: duplicate of cluster.registers[0]"},
    {"{\"cluster\": {\"registers\": [\"127.0.0.1:1238\", \"0.0.0.0:1238\"]}}",
     "cluster.registers[1]: 0.0.0.0 is a bind address, not one to connect to (got "
     "\"0.0.0.0:1238\")"},
    {"{\"register\": {\"listen\": \"\"}}", "register.listen: expected host:port (got \"\")"},
    {"{\"supervisor\": {\"metrics_listen\": \"9100\"}}",
     "supervisor.metrics_listen: expected host:port (got \"9100\")"},
    {"{\"cluster\": {\"lan_ip\": \"0.0.0.0\"}}",
     "cluster.lan_ip: 0.0.0.0 is not an address peers can connect to; set it to this host's LAN "
     "address (127.0.0.1 on a single host)"},
    {"{\"cluster\": {\"lan_ip\": \"localhost\"}}",
     "cluster.lan_ip: must be an IPv4 address (got \"localhost\")"},
    {"{\"cluster\": {\"lan_ip\": \"::1\"}}",
     "cluster.lan_ip: must be an IPv4 address (got \"::1\")"},
    {"{\"gateway\": {\"inbox_bind\": \"::\"}}",
     "gateway.inbox_bind: must be \"\" or an IPv4 address (got \"::\")"},
    {"{\"businessworker\": {\"inbox_bind\": \"eth0\"}}",
     "businessworker.inbox_bind: must be \"\" or an IPv4 address (got \"eth0\")"},
    /* other validators */
    {"{\"businessworker\": {\"name\": \"\"}}",
     "businessworker.name: must be 1..64 printable characters without spaces (got \"\")"},
    {"{\"businessworker\": {\"name\": \"my worker\"}}",
     "businessworker.name: must be 1..64 printable characters without spaces (got \"my worker\")"},
    {"{\"cluster\": {\"run_dir\": \"\"}}", "cluster.run_dir: must not be empty"},
    {"{\"supervisor\": {\"pid_file\": \"\"}}", "supervisor.pid_file: must not be empty"},
    {"{\"supervisor\": {\"log_max_size\": 1000}}",
     "supervisor.log_max_size: must be 0 (no rotation) or >= 65536 (got 1000)"},
    /* whole-config checks */
    {"{}",
     "businessworker.module: required when businessworker.count > 0 (path of the module .so)"},
    {"{\"businessworker\": {\"count\": 2, \"module\": \"\"}}",
     "businessworker.module: required when businessworker.count > 0 (path of the module .so)"},
    {"{" MODULE ", \"cluster\": {\"heartbeat_interval\": 2, \"node_timeout\": 2}}",
     "cluster.node_timeout: must be greater than cluster.heartbeat_interval (2) (got 2)"},
    {"{" MODULE ", \"gateway\": {\"ping_not_response_limit\": 2}}",
     "gateway.ping_not_response_limit: 2 requires gateway.ping_interval > 0 (a client is closed "
     "after ping_interval x limit seconds of silence)"},
    {"{" MODULE ", \"gateway\": {\"ping_interval\": 5, \"ping_not_response_limit\": 1, "
     "\"ws_ping\": true}}",
     "gateway.ws_ping: needs gateway.ping_not_response_limit >= 2 (or 0): a ping is sent after "
     "ping_interval of silence, and with limit 1 the client is closed at that same moment, before "
     "its pong can arrive"},
    {"{" MODULE ", \"gateway\": {\"count\": 2, \"reuse_port\": false}}",
     "gateway.reuse_port: must be true when gateway.count > 1: every gateway process binds the "
     "client ports itself and shares them with SO_REUSEPORT"},
    {"{" MODULE ", \"cluster\": {\"registers\": [\"10.0.0.2:1238\"]}}",
     "cluster.lan_ip: 127.0.0.1 cannot be reached from remote register 10.0.0.2:1238; set it to "
     "this host's LAN address"},
    {"{" MODULE ", \"cluster\": {\"lan_ip\": \"127.0.0.5\", \"registers\": [\"127.0.0.1:1238\", "
     "\"192.168.1.2:1238\"]}}",
     "cluster.lan_ip: 127.0.0.5 cannot be reached from remote register 192.168.1.2:1238; set it to "
     "this host's LAN address"},
    {"{" MODULE ", \"gateway\": {\"start_port\": 65535, \"count\": 2}}",
     "gateway.start_port: inbox ports 65535-65536 of 2 gateway processes exceed 65535"},
    {"{\"businessworker\": {\"module\": \"m.so\", \"start_port\": 65500, \"count\": 100}}",
     "businessworker.start_port: inbox ports 65500-65599 of 100 businessworker processes exceed "
     "65535"},
    {"{\"businessworker\": {\"module\": \"m.so\", \"start_port\": 2902}, \"gateway\": {\"count\": "
     "4}}",
     "businessworker.start_port: businessworker inbox port 2902 on 127.0.0.1 collides with "
     "gateway.start_port (gateway inbox ports 2900-2903 on 127.0.0.1)"},
    {"{\"businessworker\": {\"module\": \"m.so\", \"start_port\": 2890, \"count\": 20, "
     "\"inbox_bind\": \"0.0.0.0\"}}",
     "businessworker.start_port: businessworker inbox ports 2890-2909 on 0.0.0.0 collides with "
     "gateway.start_port (gateway inbox port 2900 on 127.0.0.1)"},
    {"{" MODULE ", \"register\": {\"listen\": \"127.0.0.1:2900\"}}",
     "gateway.start_port: gateway inbox port 2900 on 127.0.0.1 collides with register.listen "
     "(register port 2900 on 127.0.0.1)"},
    {"{" MODULE ", \"register\": {\"listen\": \"0.0.0.0:3900\"}}",
     "businessworker.start_port: businessworker inbox port 3900 on 127.0.0.1 collides with "
     "register.listen (register port 3900 on 0.0.0.0)"},
    {"{" MODULE ", \"gateway\": {\"listen\": [\"websocket://0.0.0.0:3900\"]}}",
     "gateway.listen[0]: listener port 3900 on 0.0.0.0 collides with businessworker.start_port "
     "(businessworker inbox port 3900 on 127.0.0.1)"},
    {"{" MODULE ", \"gateway\": {\"listen\": [\"websocket://[::]:1238\"]}}",
     "gateway.listen[0]: listener port 1238 on :: collides with register.listen (register port "
     "1238 on 127.0.0.1)"},
    {"{" MODULE
     ", \"gateway\": {\"listen\": [\"websocket://0.0.0.0:8282\", \"text://127.0.0.1:8282\"]}}",
     "gateway.listen[1]: listener port 8282 on 127.0.0.1 collides with gateway.listen[0] (listener "
     "port 8282 on 0.0.0.0)"},
    {"{" MODULE ", \"supervisor\": {\"metrics_listen\": \"[::]:8282\"}}",
     "supervisor.metrics_listen: metrics port 8282 on :: collides with gateway.listen[0] (listener "
     "port 8282 on 0.0.0.0)"},
    {"{" MODULE ", \"supervisor\": {\"metrics_listen\": \"127.0.0.1:1238\"}}",
     "supervisor.metrics_listen: metrics port 1238 on 127.0.0.1 collides with register.listen "
     "(register port 1238 on 127.0.0.1)"},
};
#define NREJECT (int)(sizeof reject_cases / sizeof reject_cases[0])

START_TEST(test_reject)
{
    expect_reject(reject_cases[_i].text, reject_cases[_i].reason);
}
END_TEST

/* Configurations near the rules above that must load. */
static const char *const accept_cases[] = {
    /* remote registers with a LAN lan_ip; no register on this host */
    "{" MODULE ", \"cluster\": {\"lan_ip\": \"10.0.0.1\", \"registers\": [\"10.0.0.2:1238\", "
    "\"10.0.0.3:1238\"]}, \"register\": {\"count\": 0}}",
    /* remote register on loopback lan_ip is fine when all registers are loopback */
    "{" MODULE ", \"cluster\": {\"registers\": [\"127.0.0.2:1238\", \"127.0.0.1:1240\"]}}",
    /* the same ports on different IPs do not collide */
    "{\"businessworker\": {\"module\": \"m.so\", \"start_port\": 2900, \"inbox_bind\": "
    "\"127.0.0.2\"}}",
    /* IPv4 listener and IPv6 specific address on the same port */
    "{" MODULE ", \"gateway\": {\"listen\": [\"websocket://127.0.0.1:8282\", "
    "\"websocket://[::1]:8282\"]}}",
    /* roles with count 0 take no ports */
    "{\"businessworker\": {\"count\": 0, \"start_port\": 2900}, \"register\": {\"count\": 0, "
    "\"listen\": \"127.0.0.1:2900\"}}",
    "{" MODULE ", \"gateway\": {\"count\": 0, \"listen\": [\"websocket://0.0.0.0:3900\"], "
    "\"start_port\": 65535}}",
    /* adjacent ranges */
    "{\"businessworker\": {\"module\": \"m.so\", \"start_port\": 2904}, \"gateway\": {\"count\": "
    "4}}",
    /* ping data / ws_ping with the interval, limit 0 (never close) */
    "{" MODULE ", \"gateway\": {\"ping_interval\": 0.5, \"ping_data\": \"p\", \"ws_ping\": "
    "true}}",
    /* a register on the last port */
    "{" MODULE ", \"register\": {\"listen\": \"127.0.0.1:65535\"}, \"cluster\": {\"registers\": "
    "[\"127.0.0.1:65535\"]}}",
    /* metrics on IPv6 loopback, log rotation at the smallest size */
    "{" MODULE ", \"supervisor\": {\"metrics_listen\": \"[::1]:9100\", \"log_max_size\": 65536}}",
    /* seconds given as integers, sizes at their bounds */
    "{" MODULE ", \"cluster\": {\"heartbeat_interval\": 1, \"node_timeout\": 3}}",
    /* the two multi-host examples of docs/CONFIG.md */
    "{ \"cluster\":  {\"secret_key\": \"change-me\", \"lan_ip\": \"10.0.0.1\",\n"
    "               \"registers\": [\"10.0.0.1:1238\"]},\n"
    "  \"register\": {\"count\": 1, \"listen\": \"10.0.0.1:1238\"},\n"
    "  \"gateway\":  {\"count\": 4, \"listen\": [\"websocket://0.0.0.0:8282\"]},\n"
    "  \"businessworker\": {\"count\": 0} }\n",
    "{ \"cluster\":  {\"secret_key\": \"change-me\", \"lan_ip\": \"10.0.0.2\",\n"
    "               \"registers\": [\"10.0.0.1:1238\"]},\n"
    "  \"register\": {\"count\": 0},\n"
    "  \"gateway\":  {\"count\": 0},\n"
    "  \"businessworker\": {\"count\": 8, \"module\": \"/opt/app/libapp.so\"} }\n",
    /* an empty module_config, all sections empty */
    "{\"cluster\": {}, \"register\": {}, \"gateway\": {}, \"supervisor\": {}, \"businessworker\": "
    "{\"module\": \"m.so\", \"module_config\": {}}}",
};
#define NACCEPT (int)(sizeof accept_cases / sizeof accept_cases[0])

START_TEST(test_accept)
{
    gw_config cfg;
    expect_accept(accept_cases[_i], &cfg);
    gw_config_deinit(&cfg);
}
END_TEST

/* ---- JSON syntax and file errors -------------------------------------------------------- */

START_TEST(test_duplicate_key)
{
    char want[PATH_MAX + 128];
    snprintf(want, sizeof want, "%s:3:9: duplicate object key near '\"count\"'", cfgpath);
    gw_config cfg;
    char err[ERRLEN];
    int rc = load_text("{\"gateway\": {\n  \"count\": 1,\n  \"count\": 2}}", &cfg, err);
    ck_assert_int_eq(rc, GW_CONFIG_INVALID);
    ck_assert_str_eq(err, want);
    /* duplicate sections too */
    snprintf(want, sizeof want, "%s:1:25: duplicate object key near '\"gateway\"'", cfgpath);
    rc = load_text("{\"gateway\": {}, \"gateway\": {}}", &cfg, err);
    ck_assert_int_eq(rc, GW_CONFIG_INVALID);
    ck_assert_str_eq(err, want);
    assert_zeroed(&cfg);
}
END_TEST

START_TEST(test_malformed_json)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\n  \"gateway\": {\n    \"count\": 1,\n  }\n}\n",
         "4:3: string or '}' expected near '}'"},
        {"{\"gateway\": {\"count\": 1}\n", "2:0: '}' expected near end of file"},
        {"", "1:0: '[' or '{' expected near end of file"},
        {"{\"cluster\": {\"lan_ip\": '127.0.0.1'}}", "1:24: invalid token near '''"},
        {"{} {}", "1:4: end of file expected near '{'"},
        {"{\"gateway\": {\"ping_data\": \"a\\u0000b\"}}",
         "1:36: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'"},
    };
    char want[PATH_MAX + 128], err[ERRLEN];
    gw_config cfg;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(want, sizeof want, "%s:%s", cfgpath, cases[i].msg);
        ck_assert_int_eq(load_text(cases[i].text, &cfg, err), GW_CONFIG_INVALID);
        ck_assert_str_eq(err, want);
        assert_zeroed(&cfg);
    }
}
END_TEST

START_TEST(test_file_errors)
{
    char path[PATH_MAX + 32], want[PATH_MAX + 128], err[ERRLEN];
    gw_config cfg;
    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    ck_assert_int_eq(gw_config_load(path, &cfg, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    ck_assert_str_eq(err, want);
    assert_zeroed(&cfg);

    ck_assert_int_eq(gw_config_load(tmpdir, &cfg, err, sizeof err), -EISDIR);
    snprintf(want, sizeof want, "%s: Is a directory", tmpdir);
    ck_assert_str_eq(err, want);

    /* err may be NULL; a tiny buffer is truncated, never overrun */
    ck_assert_int_eq(gw_config_load(path, &cfg, NULL, 0), -ENOENT);
    char small[8];
    memset(small, 'x', sizeof small);
    ck_assert_int_eq(load_text("{\"gateway\": {\"pong\": 1}}", &cfg, NULL), GW_CONFIG_INVALID);
    ck_assert_int_eq(gw_config_load(cfgpath, &cfg, small, 5), GW_CONFIG_INVALID);
    ck_assert_int_eq(strlen(small), 4);
    ck_assert_int_eq(small[5], 'x');
}
END_TEST

/* Messages name the file as the caller spelled it (the example in docs/CONFIG.md). */
START_TEST(test_message_uses_given_path)
{
    char dir[PATH_MAX + 16], err[ERRLEN];
    gw_config cfg;
    snprintf(dir, sizeof dir, "%s/config", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(chdir(tmpdir), 0);
    write_file("config/gatewayworker.json", "{\"gateway\": {\"ping_interval\": -1}}");
    ck_assert_int_eq(gw_config_load("config/gatewayworker.json", &cfg, err, sizeof err),
                     GW_CONFIG_INVALID);
    ck_assert_str_eq(err,
                     "config/gatewayworker.json: gateway.ping_interval: must be >= 0 (got -1)");
}
END_TEST

/* ---- address helpers ---------------------------------------------------------------------- */

START_TEST(test_parse_hostport)
{
    static const struct {
        const char *in;
        int rc;
        const char *host;
        unsigned port;
    } cases[] = {
        {"127.0.0.1:1238", 0, "127.0.0.1", 1238},
        {"0.0.0.0:65535", 0, "0.0.0.0", 65535},
        {"[::1]:80", 0, "::1", 80},
        {"[2001:db8::1]:8282", 0, "2001:db8::1", 8282},
        {"10.0.0.1:00080", 0, "10.0.0.1", 80},
        {"10.0.0.1", GW_ADDR_ESYNTAX, NULL, 0},
        {"[::1]", GW_ADDR_ESYNTAX, NULL, 0},
        {"", GW_ADDR_ESYNTAX, NULL, 0},
        {":80", GW_ADDR_EHOST, NULL, 0},
        {"host:80", GW_ADDR_EHOST, NULL, 0},
        {"1.2.3:80", GW_ADDR_EHOST, NULL, 0},
        {"1.2.3.4.5:80", GW_ADDR_EHOST, NULL, 0},
        {" 1.2.3.4:80", GW_ADDR_EHOST, NULL, 0},
        {"::1:80", GW_ADDR_EHOST, NULL, 0},
        {"[::1:80", GW_ADDR_EHOST, NULL, 0},
        {"[]:80", GW_ADDR_EHOST, NULL, 0},
        {"[fe80::1%eth0]:80", GW_ADDR_EHOST, NULL, 0},
        {"1.2.3.4:0", GW_ADDR_EPORT, NULL, 0},
        {"1.2.3.4:65536", GW_ADDR_EPORT, NULL, 0},
        {"1.2.3.4:123456", GW_ADDR_EPORT, NULL, 0},
        {"1.2.3.4:+80", GW_ADDR_EPORT, NULL, 0},
        {"1.2.3.4:80 ", GW_ADDR_EPORT, NULL, 0},
        {"1.2.3.4:", GW_ADDR_EPORT, NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[GW_HOST_MAX];
        uint16_t port = 0;
        int rc = gw_parse_hostport(cases[i].in, host, sizeof host, &port);
        ck_assert_msg(rc == cases[i].rc, "%s: rc %d", cases[i].in, rc);
        if (rc == 0) {
            ck_assert_str_eq(host, cases[i].host);
            ck_assert_uint_eq(port, cases[i].port);
        }
    }
    char tiny[4];
    uint16_t port;
    ck_assert_int_eq(gw_parse_hostport("1.2.3.4:5", tiny, sizeof tiny, &port), GW_ADDR_EHOST);
    ck_assert_str_eq(gw_addr_strerror(GW_ADDR_EPORT), "port must be 1..65535");
}
END_TEST

START_TEST(test_listener_parse_format)
{
    static const char *const good[] = {"websocket://0.0.0.0:8282", "text://127.0.0.1:1",
                                       "frame://[::]:65535", "websocket://[2001:db8::2]:443"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        gw_listener l;
        char buf[128];
        ck_assert_int_eq(gw_listener_parse(good[i], &l), 0);
        gw_listener_format(&l, buf, sizeof buf);
        ck_assert_str_eq(buf, good[i]);
    }
    gw_listener l;
    ck_assert_int_eq(gw_listener_parse("frame://[::]:5", &l), 0);
    ck_assert_int_eq(l.proto, GW_PROTO_FRAME);
    ck_assert_int_eq(l.family, AF_INET6);
    ck_assert_str_eq(l.host, "::");
    ck_assert_int_eq(gw_listener_parse("WEBSOCKET://0.0.0.0:1", &l), GW_ADDR_ESCHEME);
    ck_assert_int_eq(gw_listener_parse("wss://0.0.0.0:1", &l), GW_ADDR_ESCHEME);
    ck_assert_int_eq(gw_listener_parse("text://0.0.0.0", &l), GW_ADDR_ESYNTAX);
    ck_assert_str_eq(gw_proto_name(GW_PROTO_TEXT), "text");

    gw_addr a = {.host = "::1", .port = 9, .family = AF_INET6};
    char buf[64];
    gw_addr_format(&a, buf, sizeof buf);
    ck_assert_str_eq(buf, "[::1]:9");
    gw_addr unset = {0};
    gw_addr_format(&unset, buf, sizeof buf);
    ck_assert_str_eq(buf, "");
}
END_TEST

/* ---- memory ------------------------------------------------------------------------------ */

START_TEST(test_no_leaks)
{
    gw_config cfg;
    char err[ERRLEN];
    write_file(cfgpath, full_config);
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(gw_config_load(cfgpath, &cfg, err, sizeof err), 0);
        gw_config_deinit(&cfg);
        ck_assert_int_eq(gw_config_defaults(&cfg), 0);
        gw_config_deinit(&cfg);
    }
    /* failures free everything too */
    ck_assert_int_eq(load_text("{\"gateway\": {\"listen\": [\"ws://x\"]}}", &cfg, err),
                     GW_CONFIG_INVALID);
    ck_assert_int_eq(load_text("{\"gateway\": {\"count\": 1, \"count\": 1}}", &cfg, err),
                     GW_CONFIG_INVALID);
    ck_assert_int_eq(
        load_text("{" MODULE ", \"cluster\": {\"registers\": [\"10.0.0.2:1238\"]}}", &cfg, err),
        GW_CONFIG_INVALID);
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    gw_alloc_track(0);
}
END_TEST

/* Every allocation failure is reported (never a crash, never a leak). */
START_TEST(test_alloc_failures)
{
    gw_config cfg;
    char err[ERRLEN];
    write_file(cfgpath, full_config);
    gw_alloc_track(1);
    long before = gw_alloc_outstanding();
    int n, succeeded = 0, nomem = 0;
    for (n = 0; n < 5000 && !succeeded; n++) {
        gw_alloc_fail_after(n);
        int rc = gw_config_load(cfgpath, &cfg, err, sizeof err);
        gw_alloc_fail_after(-1);
        if (rc == 0) {
            succeeded = 1;
            gw_config_deinit(&cfg);
        } else {
            /* jansson's lexer reports some of its allocation failures as syntax
             * errors ("file:line:col: ..."); everything else is -ENOMEM */
            if (rc == GW_CONFIG_INVALID)
                ck_assert_int_eq(err[strlen(cfgpath)], ':');
            else
                ck_assert_msg(rc == -ENOMEM, "n=%d rc=%d: %s", n, rc, err);
            nomem += rc == -ENOMEM;
            assert_zeroed(&cfg);
        }
        ck_assert_int_eq(gw_alloc_outstanding(), before);
    }
    ck_assert(succeeded);
    ck_assert_int_gt(nomem, 50);
    for (n = 0; n < 1000; n++) {
        gw_alloc_fail_after(n);
        int rc = gw_config_defaults(&cfg);
        gw_alloc_fail_after(-1);
        if (rc == 0) {
            gw_buf out = {0};
            for (int m = 0; m < 200; m++) {
                gw_alloc_fail_after(m);
                rc = gw_config_dump(&cfg, &out);
                gw_alloc_fail_after(-1);
                gw_buf_deinit(&out);
                if (rc == 0)
                    break;
                ck_assert_int_eq(rc, -ENOMEM);
            }
            ck_assert_int_eq(rc, 0);
            gw_config_deinit(&cfg);
            break;
        }
        ck_assert_int_eq(rc, -ENOMEM);
        ck_assert_int_eq(gw_alloc_outstanding(), before);
    }
    ck_assert_int_eq(gw_alloc_outstanding(), before);
    gw_alloc_track(0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_minimal_file);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_shipped_config);
    tcase_add_test(tc, test_relative_paths);
    tcase_add_test(tc, test_module_config_passthrough);
    tcase_add_test(tc, test_dump_roundtrip);
    tcase_add_test(tc, test_dump_defaults);
    tcase_add_loop_test(tc, test_ranges, 0, NRANGE);
    tcase_add_test(tc, test_list_lengths);
    tcase_add_loop_test(tc, test_reject, 0, NREJECT);
    tcase_add_loop_test(tc, test_accept, 0, NACCEPT);
    tcase_add_test(tc, test_duplicate_key);
    tcase_add_test(tc, test_malformed_json);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_message_uses_given_path);
    tcase_add_test(tc, test_parse_hostport);
    tcase_add_test(tc, test_listener_parse_format);
    tcase_add_test(tc, test_no_leaks);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
