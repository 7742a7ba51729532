#include "common/log.h"
#include "common/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int gw_log_level_min = GW_LOG_INFO;
static char log_role[32] = "gw";
static int log_fd = 2;
static char *log_path;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void gw_log_init(const char *role, int level)
{
    snprintf(log_role, sizeof log_role, "%s", role ? role : "gw");
    gw_log_level_min = level;
}

void gw_log_set_level(int level)
{
    gw_log_level_min = level;
}

int gw_log_get_level(void)
{
    return gw_log_level_min;
}

int gw_log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int gw_log_open_file(const char *path)
{
    if (path == NULL) {
        if (log_fd > 2)
            close(log_fd);
        log_fd = 2;
        gw_free(log_path);
        log_path = NULL;
        return 0;
    }
    int fd = open_log(path);
    if (fd < 0)
        return fd;
    char *copy = gw_strdup(path);
    if (copy == NULL) {
        close(fd);
        return -ENOMEM;
    }
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
    gw_free(log_path);
    log_path = copy;
    return 0;
}

int gw_log_reopen(void)
{
    if (log_path == NULL)
        return 0;
    int fd = open_log(log_path);
    if (fd < 0)
        return fd;
    int old = log_fd;
    log_fd = fd;
    if (old > 2)
        close(old);
    return 0;
}

void gw_log_write(int level, const char *id, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (level < 0 || level > GW_LOG_ERROR)
        level = GW_LOG_ERROR;
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_role, (int)getpid(), level_names[level],
                     id ? id : "-");
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* Keep one line per record: control characters from outside input are masked. */
    for (size_t i = (size_t)n; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            line[i] = '?';
    line[len++] = '\n';
    ssize_t w;
    do {
        w = write(log_fd, line, len);
    } while (w < 0 && errno == EINTR);
}

int gw_ratelimit_allow(gw_ratelimit *rl, uint32_t burst, uint32_t period_ms, uint32_t *suppressed)
{
    uint64_t now = gw_now_ms();
    *suppressed = 0;
    if (now - rl->window_start_ms >= period_ms) {
        *suppressed = rl->suppressed;
        rl->window_start_ms = now;
        rl->in_window = 0;
        rl->suppressed = 0;
    }
    if (rl->in_window < burst) {
        rl->in_window++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}

uint64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
