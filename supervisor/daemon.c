/* daemon.c - the pid file with its lock, and daemonising.
 *
 * The pid file is also the lock: a master holds flock(LOCK_EX) on it for its whole
 * life (the descriptor is close-on-exec, so children do not inherit it), which makes
 * "is a master running?" a question the kernel answers, stale files included. The
 * lock is taken before daemonising: the open file description is shared by the
 * forks, so the daemon inherits it and "already running" is reported on the terminal.
 */
#include "supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DAEMON_REPORT_TIMEOUT_MS 60000

int sup_pidfile_lock(const char *path, int *fd_out, pid_t *holder)
{
    *fd_out = -1;
    *holder = 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        int rc = sup_mkdirs(dir);
        if (rc < 0)
            return rc;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            char buf[32] = "";
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            if (n > 0) {
                buf[n] = '\0';
                *holder = (pid_t)atoi(buf);
            }
            close(fd);
            return 1;
        }
        close(fd);
        return -err;
    }
    *fd_out = fd;
    return 0;
}

int sup_pidfile_write(int fd, pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        return -errno;
    return 0;
}

/* The original process: wait for the daemon's report, print it, exit. */
static void wait_for_report(int rfd, pid_t first)
{
    int status;
    while (waitpid(first, &status, 0) < 0 && errno == EINTR)
        ;
    char buf[8192];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = rfd, .events = POLLIN};
        int r = poll(&p, 1, DAEMON_REPORT_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "gw-master: no word from the daemon within %d s; check its log\n",
                    DAEMON_REPORT_TIMEOUT_MS / 1000);
            exit(GW_SUP_EXIT_FAIL);
        }
        ssize_t n = read(rfd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (len += (size_t)n) == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    if (strncmp(buf, "OK ", 3) == 0) {
        fputs(buf + 3, stdout);
        exit(GW_SUP_EXIT_OK);
    }
    if (strncmp(buf, "ERR ", 4) == 0)
        fprintf(stderr, "gw-master: %s\n", buf + 4);
    else
        fprintf(stderr, "gw-master: the daemon exited during start-up; check its log\n");
    exit(GW_SUP_EXIT_FAIL);
}

int sup_daemonize(int *ready_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    fflush(stdout);
    fflush(stderr);
    pid_t first = fork();
    if (first < 0) {
        int err = errno;
        close(p[0]);
        close(p[1]);
        return -err;
    }
    if (first > 0) {
        close(p[1]);
        wait_for_report(p[0], first); /* does not return */
    }
    close(p[0]);
    if (setsid() < 0)
        _exit(GW_SUP_EXIT_FAIL);
    pid_t second = fork();
    if (second < 0)
        _exit(GW_SUP_EXIT_FAIL);
    if (second > 0)
        _exit(GW_SUP_EXIT_OK); /* the daemon is re-parented to init */
    umask(022);
    if (chdir("/") < 0) {
        /* cannot happen for "/"; the config holds absolute paths anyway */
    }
    *ready_fd = p[1];
    return 0;
}

void sup_daemon_report(int *ready_fd, int ok, const char *text)
{
    if (*ready_fd < 0)
        return;
    const char *prefix = ok ? "OK " : "ERR ";
    size_t tl = strlen(text);
    ssize_t w = write(*ready_fd, prefix, strlen(prefix));
    if (w >= 0)
        w = write(*ready_fd, text, tl);
    (void)w;
    close(*ready_fd);
    *ready_fd = -1;
}
