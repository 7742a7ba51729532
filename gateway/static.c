#include "gateway/static.h"
#include "common/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".wasm", "application/wasm"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
};

const char *static_content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (slash == NULL || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static int error_page(gw_buf *out, int status, const char *body)
{
    int rc = http_error_response(out, status, body);
    return rc < 0 ? rc : status;
}

/* Percent-decodes the request path and checks every segment; writes the
 * relative path (no leading '/') into rel. 0, or the status to answer. */
static int clean_path(const http_request *req, char *rel, size_t cap)
{
    if (req->path_len == 0 || req->path[0] != '/' || req->path_len >= cap)
        return 400;
    size_t n = http_url_decode(rel, req->path + 1, req->path_len - 1, 0);
    rel[n] = '\0';
    if (memchr(rel, '\0', n))
        return 400;
    /* Every segment: not empty (except a trailing one), not "." / ".." or hidden. */
    const char *seg = rel;
    while (*seg) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 && end)
            return 404;
        if (len > 0 && seg[0] == '.')
            return 404;
        if (end == NULL)
            break;
        seg = end + 1;
    }
    return 0;
}

int static_respond(const char *root, const http_request *req, gw_buf *out)
{
    int head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    int get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
    if (!head && !get)
        return error_page(out, 405, "only GET and HEAD are served here");
    char rel[PATH_MAX];
    int st = clean_path(req, rel, sizeof rel - 16);
    if (st)
        return error_page(out, st, NULL);
    size_t rl = strlen(rel);
    if (rl == 0 || rel[rl - 1] == '/')
        strcat(rel, "index.html");
    char path[PATH_MAX], real[PATH_MAX], realroot[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", root, rel) >= (int)sizeof path ||
        realpath(root, realroot) == NULL)
        return error_page(out, 404, NULL);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (strlen(path) + sizeof "/index.html" > sizeof path)
            return error_page(out, 404, NULL);
        strcat(path, "/index.html");
    }
    /* Symbolic links may not lead outside the root. */
    size_t rootlen = strlen(realroot);
    if (realpath(path, real) == NULL || strncmp(real, realroot, rootlen) != 0 ||
        (real[rootlen] != '/' && real[rootlen] != '\0'))
        return error_page(out, 404, NULL);
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return error_page(out, errno == EACCES ? 403 : 404, NULL);
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return error_page(out, 404, NULL);
    }
    if ((size_t)sb.st_size > STATIC_MAX_FILE) {
        close(fd);
        return error_page(out, 403, "file too large for the gateway's static server");
    }
    size_t size = (size_t)sb.st_size;
    int rc = gw_buf_printf(out,
                           "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
                           "Connection: close\r\n\r\n",
                           static_content_type(real), size);
    if (rc == 0 && get && size > 0 && (rc = gw_buf_reserve(out, size)) == 0) {
        size_t got = 0;
        while (got < size) {
            ssize_t r = read(fd, out->data + out->len + got, size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got != size) {
            close(fd);
            out->len = 0;
            return error_page(out, 500, "could not read the file");
        }
        out->len += size;
    }
    close(fd);
    return rc < 0 ? rc : 200;
}
