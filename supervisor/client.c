/* client.c - `gw-master stop|status|reload`: one request on the control socket.
 * Plain blocking sockets with poll() deadlines; no loop, no child processes. */
#include "common/log.h"
#include "supervisor/sup_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Reads one line (up to "\n") into buf before the deadline. Returns its length, 0 at
 * EOF before any byte, -ETIMEDOUT, -EMSGSIZE or -errno. */
static ssize_t read_line(int fd, char *buf, size_t cap, uint64_t deadline)
{
    size_t len = 0;
    for (;;) {
        uint64_t now = gw_now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return (ssize_t)len; /* EOF */
        len += (size_t)n;
        buf[len] = '\0';
        if (memchr(buf, '\n', len) != NULL)
            return (ssize_t)len;
        if (len == cap - 1)
            return -EMSGSIZE;
    }
}

/* Waits until the master closes the connection (it exits), up to the deadline. */
static void wait_eof(int fd, uint64_t deadline)
{
    char buf[256];
    while (read_line(fd, buf, sizeof buf, deadline) > 0)
        ;
}

int gw_sup_command(const gw_config *cfg, const char *cmd, int json)
{
    char path[108];
    if (gw_sup_socket_path(cfg, path, sizeof path) < 0) {
        fprintf(stderr, "gw-master: control socket path too long (cluster.run_dir %s)\n",
                cfg->cluster.run_dir);
        return GW_SUP_EXIT_FAIL;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "gw-master: socket: %s\n", strerror(errno));
        return GW_SUP_EXIT_FAIL;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int err = errno;
        close(fd);
        if (err == ENOENT || err == ECONNREFUSED)
            fprintf(stderr, "GatewayWorker-C is not running (no master listens on %s)\n", path);
        else
            fprintf(stderr, "gw-master: cannot connect to %s: %s\n", path, strerror(err));
        return GW_SUP_EXIT_FAIL;
    }
    char req[64];
    int n = snprintf(req, sizeof req, "{\"cmd\":\"%s\"}\n", cmd);
    if (write(fd, req, (size_t)n) != n) {
        fprintf(stderr, "gw-master: cannot send the command: %s\n", strerror(errno));
        close(fd);
        return GW_SUP_EXIT_FAIL;
    }
    /* stop: every role gets stop_timeout, then SIGKILL. reload: the same per worker
     * plus the time a new one needs to come up. */
    double st = cfg->supervisor.stop_timeout;
    uint64_t budget_ms = 10000;
    if (strcmp(cmd, "stop") == 0)
        budget_ms = (uint64_t)(3 * st * 1000) + 10000;
    else if (strcmp(cmd, "reload") == 0)
        budget_ms = (uint64_t)(cfg->businessworker.count > 0 ? cfg->businessworker.count : 1) *
                        ((uint64_t)(st * 1000) + SUP_READY_TIMEOUT_MS + 1000) +
                    5000;
    uint64_t deadline = gw_now_ms() + budget_ms;
    static char line[1 << 20];
    ssize_t len = read_line(fd, line, sizeof line, deadline);
    if (len <= 0) {
        if (len == 0 && strcmp(cmd, "stop") == 0) {
            /* The master went away without a word: it is stopped all the same. */
            close(fd);
            if (!json)
                printf("GatewayWorker-C stopped\n");
            return GW_SUP_EXIT_OK;
        }
        fprintf(stderr, "gw-master: no answer to \"%s\": %s\n", cmd,
                len == 0 ? "connection closed" : strerror((int)-len));
        close(fd);
        return GW_SUP_EXIT_FAIL;
    }
    json_error_t jerr;
    json_t *resp = json_loadb(line, (size_t)len, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!json_is_object(resp)) {
        fprintf(stderr, "gw-master: unreadable answer: %s\n", jerr.text);
        json_decref(resp);
        close(fd);
        return GW_SUP_EXIT_FAIL;
    }
    int ok = json_is_true(json_object_get(resp, "ok"));
    if (json) {
        fwrite(line, 1, (size_t)len, stdout);
    } else if (!ok) {
        const char *err = json_string_value(json_object_get(resp, "error"));
        fprintf(stderr, "gw-master: %s failed: %s\n", cmd, err ? err : "unknown error");
    } else if (strcmp(cmd, "status") == 0) {
        report_print_table(resp, stdout);
    } else if (strcmp(cmd, "stop") == 0) {
        printf("GatewayWorker-C stopped\n");
    } else if (strcmp(cmd, "reload") == 0) {
        printf("reload done: %lld business worker(s) replaced\n",
               (long long)json_integer_value(json_object_get(resp, "reloaded")));
    }
    if (ok && strcmp(cmd, "stop") == 0)
        wait_eof(fd, gw_now_ms() + 5000); /* the master has released its lock: exiting */
    json_decref(resp);
    close(fd);
    return ok ? GW_SUP_EXIT_OK : GW_SUP_EXIT_FAIL;
}
