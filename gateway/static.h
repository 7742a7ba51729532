/* static.h - plain HTTP GET/HEAD of files under gateway.static_dir on WebSocket
 * listeners (the demo page and its script). Small files only: they are read with
 * one blocking read (at most STATIC_MAX_FILE bytes, from the page cache in
 * practice); put a real web server in front for anything bigger.
 * Pure request -> response logic; the caller writes the bytes and closes. */
#ifndef GW_STATIC_H
#define GW_STATIC_H

#include "common/buf.h"
#include "common/http.h"

#define STATIC_MAX_FILE (8u << 20)

/* Builds the whole response (status line, headers, body for GET) for req into
 * out. root is the static directory (absolute). Returns the HTTP status, or a
 * negative errno when out of memory. Never escapes root: "..", hidden path
 * segments, NUL bytes and symbolic links leading outside are refused. */
int static_respond(const char *root, const http_request *req, gw_buf *out);
/* The Content-Type for a file name ("application/octet-stream" if unknown). */
const char *static_content_type(const char *path);

#endif
