/* gw-master: the supervisor, and the client of a running one. See supervisor.h. */
#include "common/alloc.h"
#include "supervisor/supervisor.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [options] [start | stop | status | reload]\n"
            "  start           run the master (default): spawns and supervises the processes\n"
            "  stop            graceful stop of a running master and all its processes\n"
            "  status          per process: role, pid, memory, connections, messages, restarts\n"
            "  reload          rolling restart of the business workers, one at a time\n"
            "options:\n"
            "  --config FILE   configuration file (default config/gatewayworker.json)\n"
            "  -d, --daemon    start in the background (pid file and log file per config)\n"
            "  --bin-dir DIR   where gw-register, gw-gateway and gw-businessworker are\n"
            "                  (default: next to this executable, or the build tree layout)\n"
            "  --json          print the master's answer as JSON (stop, status, reload)\n",
            prog);
}

int main(int argc, char **argv)
{
    gw_sup_opts opts = {.config_path = "config/gatewayworker.json"};
    int json = 0;
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},  {"daemon", no_argument, NULL, 'd'},
        {"bin-dir", required_argument, NULL, 'b'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:dh", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            opts.config_path = optarg;
            break;
        case 'd':
            opts.daemon = 1;
            break;
        case 'b':
            opts.bin_dir = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout, argv[0]);
            return GW_SUP_EXIT_OK;
        default:
            usage(stderr, argv[0]);
            return GW_SUP_EXIT_CONFIG;
        }
    }
    const char *cmd = optind < argc ? argv[optind++] : "start";
    static const char *const cmds[] = {"start", "stop", "status", "reload"};
    int known = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        known |= strcmp(cmd, cmds[i]) == 0;
    if (!known || optind != argc) {
        usage(stderr, argv[0]);
        return GW_SUP_EXIT_CONFIG;
    }

    gw_alloc_install();
    gw_config cfg;
    char err[512];
    if (gw_config_load(opts.config_path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "gw-master: invalid configuration: %s\n", err);
        return GW_SUP_EXIT_CONFIG;
    }
    if (strcmp(cmd, "start") == 0)
        return gw_sup_run(&cfg, &opts); /* takes cfg */
    int rc = gw_sup_command(&cfg, cmd, json);
    gw_config_deinit(&cfg);
    return rc;
}
