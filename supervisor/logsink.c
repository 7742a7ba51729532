/* logsink.c - the daemon's log file.
 *
 * The file is opened onto the master's fds 1 and 2, so the master's own log lines
 * (common/log.c writes to fd 2) and anything else it prints go there. Each child's
 * stdout and stderr are one pipe to the master; the master forwards complete lines
 * (so lines of different children never interleave), rotating the file by size
 * first: LOG -> LOG.1 -> ... -> LOG.<keep>, the oldest dropped. SIGHUP reopens the
 * file (for an outside logrotate). Only the master writes the file, so rotation needs
 * no cooperation from the children.
 */
#include "common/alloc.h"
#include "common/log.h"
#include "supervisor/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGPIPE_READ 16384
#define LOGPIPE_MAX_PARTIAL 16384 /* a longer line without "\n" is cut */

struct sup_logpipe {
    uv_pipe_t pipe;
    sup_log *log;
    sup_logpipe *next;
    gw_buf partial; /* bytes after the last "\n" */
    int closing;
    char rbuf[LOGPIPE_READ];
};

static int open_onto_stdio(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int sup_log_open(sup_log *l, const char *path, size_t max_size, int keep)
{
    char *copy = gw_strdup(path);
    if (copy == NULL)
        return -ENOMEM;
    int rc = open_onto_stdio(path);
    if (rc < 0) {
        gw_free(copy);
        return rc;
    }
    gw_free(l->path);
    l->path = copy;
    l->max_size = max_size;
    l->keep = keep;
    return 0;
}

int sup_log_reopen(sup_log *l)
{
    return l->path ? open_onto_stdio(l->path) : 0;
}

static void rotate(sup_log *l)
{
    char from[PATH_MAX], to[PATH_MAX];
    for (int i = l->keep - 1; i >= 1; i--) {
        snprintf(from, sizeof from, "%s.%d", l->path, i);
        snprintf(to, sizeof to, "%s.%d", l->path, i + 1);
        if (rename(from, to) < 0 && errno != ENOENT)
            break;
    }
    snprintf(to, sizeof to, "%s.1", l->path);
    int rc = l->keep > 0 ? (rename(l->path, to) < 0 ? -errno : 0)
                         : (truncate(l->path, 0) < 0 ? -errno : 0);
    if (rc == 0)
        rc = open_onto_stdio(l->path);
    if (rc < 0)
        LOG_ERROR("GW-SUP-LOG", "cannot rotate %s: %s", l->path, strerror(-rc));
    else
        LOG_INFO("GW-SUP-LOG", "log rotated (over %zu bytes); previous file is %s", l->max_size,
                 l->keep > 0 ? to : "truncated");
}

void sup_log_check(sup_log *l)
{
    struct stat st;
    if (l->path == NULL || l->max_size == 0 || fstat(2, &st) < 0)
        return;
    if ((size_t)st.st_size >= l->max_size)
        rotate(l);
}

void sup_log_write(sup_log *l, const void *p, size_t n)
{
    struct stat st;
    if (l->max_size && fstat(2, &st) == 0 && st.st_size > 0 && (size_t)st.st_size + n > l->max_size)
        rotate(l);
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(2, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* disk full or similar: nowhere to report it */
        c += w;
        n -= (size_t)w;
    }
}

/* ---- child output pipes --------------------------------------------------------- */

static void on_pipe_closed(uv_handle_t *h)
{
    sup_logpipe *lp = container_of(h, sup_logpipe, pipe);
    gw_buf_deinit(&lp->partial);
    gw_free(lp);
}

static void pipe_close(sup_logpipe *lp)
{
    if (lp->closing)
        return;
    lp->closing = 1;
    if (lp->partial.len > 0) {
        gw_buf_append_u8(&lp->partial, '\n');
        sup_log_write(lp->log, lp->partial.data, lp->partial.len);
        lp->partial.len = 0;
    }
    for (sup_logpipe **pp = &lp->log->pipes; *pp; pp = &(*pp)->next) {
        if (*pp == lp) {
            *pp = lp->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&lp->pipe, on_pipe_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sup_logpipe *lp = container_of(h, sup_logpipe, pipe);
    *buf = uv_buf_init(lp->rbuf, sizeof lp->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sup_logpipe *lp = container_of(st, sup_logpipe, pipe);
    if (nread < 0) {
        pipe_close(lp); /* EOF: the child and everything it spawned closed the pipe */
        return;
    }
    const char *data = buf->base;
    size_t n = (size_t)nread;
    const char *last = n ? memrchr(data, '\n', n) : NULL;
    if (last == NULL) {
        if (gw_buf_append(&lp->partial, data, n) < 0 || lp->partial.len > LOGPIPE_MAX_PARTIAL) {
            gw_buf_append_u8(&lp->partial, '\n');
            sup_log_write(lp->log, lp->partial.data, lp->partial.len);
            gw_buf_reset(&lp->partial, LOGPIPE_MAX_PARTIAL);
        }
        return;
    }
    size_t upto = (size_t)(last - data) + 1;
    if (lp->partial.len > 0) {
        /* Complete the pending line first, as one write with what follows. */
        if (gw_buf_append(&lp->partial, data, upto) == 0) {
            sup_log_write(lp->log, lp->partial.data, lp->partial.len);
        } else {
            sup_log_write(lp->log, lp->partial.data, lp->partial.len);
            sup_log_write(lp->log, data, upto);
        }
        gw_buf_reset(&lp->partial, LOGPIPE_MAX_PARTIAL);
    } else {
        sup_log_write(lp->log, data, upto);
    }
    if (upto < n)
        gw_buf_append(&lp->partial, data + upto, n - upto);
}

int sup_log_add_pipe(sup_log *l, uv_loop_t *loop, int fd)
{
    sup_logpipe *lp = gw_calloc(1, sizeof *lp);
    if (lp == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    lp->log = l;
    int rc = uv_pipe_init(loop, &lp->pipe, 0);
    if (rc < 0) {
        close(fd);
        gw_free(lp);
        return rc;
    }
    rc = uv_pipe_open(&lp->pipe, fd);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&lp->pipe, on_alloc, on_read);
    if (rc < 0) {
        lp->closing = 1;
        uv_close((uv_handle_t *)&lp->pipe, on_pipe_closed); /* closes fd when opened */
        return rc;
    }
    lp->next = l->pipes;
    l->pipes = lp;
    return 0;
}

void sup_log_close_pipes(sup_log *l)
{
    while (l->pipes) {
        /* Read what is still buffered in the pipe before closing it. */
        sup_logpipe *lp = l->pipes;
        char buf[4096];
        int fd = -1;
        if (uv_fileno((uv_handle_t *)&lp->pipe, &fd) == 0) {
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0) {
                uv_buf_t b = uv_buf_init(buf, (unsigned)n);
                on_read((uv_stream_t *)&lp->pipe, n, &b);
            }
        }
        pipe_close(lp);
    }
}

void sup_log_deinit(sup_log *l)
{
    gw_free(l->path);
    l->path = NULL;
}
