/* http.h - HTTP/1.1 request head parser and the WebSocket opening handshake (RFC 7230,
 * RFC 6455 §4.2). I/O-free.
 *
 * The parser allocates nothing: an http_request holds pointers and lengths into the caller's
 * buffer, valid as long as that buffer is unchanged. Every function here is pure (no I/O,
 * never blocks) and may be called from any callback; only the response builders allocate,
 * through the gw_buf they append to.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Header lines one request head may have; one more is HTTP_E_TOO_MANY_HEADERS. */
#define HTTP_MAX_HEADERS 64

/* http_request_parse errors (negative). http_parse_error_status() maps them to a status. */
enum http_parse_error {
    HTTP_E_MALFORMED = -1,           /* bad line ending (CR not followed by LF)       -> 400 */
    HTTP_E_METHOD = -2,              /* method not a token, or not followed by one SP -> 400 */
    HTTP_E_TARGET = -3,              /* bad request target                            -> 400 */
    HTTP_E_VERSION = -4,             /* not "HTTP/" DIGIT "." DIGIT                   -> 400 */
    HTTP_E_VERSION_UNSUPPORTED = -5, /* HTTP/x.y with x != 1                          -> 505 */
    HTTP_E_HEADER = -6,              /* header without colon, space before the colon, bad
                                        name character (RFC 7230 tchar), control character
                                        in a value, obs-fold continuation line    -> 400 */
    HTTP_E_TOO_MANY_HEADERS = -7,    /* more than HTTP_MAX_HEADERS header lines       -> 431 */
};

typedef struct http_header {
    const char *name; /* as sent (compare case-insensitively) */
    size_t name_len;
    const char *value; /* without leading and trailing SP/HTAB; may be empty */
    size_t value_len;
} http_header;

typedef struct http_request {
    const char *method; /* a token, case-sensitive ("GET") */
    size_t method_len;
    const char *target; /* the request-target as sent */
    size_t target_len;
    const char *path; /* origin-form: target up to '?'; absolute-form: the path part ("/" if
                         empty, then a static string); asterisk-form: "*" */
    size_t path_len;
    const char *query; /* after the first '?', without it; NULL (len 0) when there is no '?' */
    size_t query_len;
    int minor_version; /* HTTP/1.<minor_version> */
    size_t num_headers;
    http_header headers[HTTP_MAX_HEADERS];
} http_request;

/* Parses one request head (request line and header lines, up to and including the empty
 * line) at buf[0..len) (read only; need not be NUL-terminated) into *req. Line ends are CRLF
 * or bare LF; empty lines before the request line are skipped. Strict: see enum
 * http_parse_error. Malformed input is reported as soon as the offending byte is seen, even
 * before the head is complete.
 * Returns the head length (> 0) when complete (a body or WebSocket frames may follow), 0 when
 * more bytes are needed (the caller enforces its handshake size limit meanwhile; heads longer
 * than INT_MAX are never complete), or a negative HTTP_E_* error. *req is meaningful only
 * after a positive return. Each call parses from the start (cost O(len)). */
int http_request_parse(const char *buf, size_t len, http_request *req);

/* The response status for a negative http_request_parse result (400, 431 or 505). */
int http_parse_error_status(int err);
/* A static English description of a parse error. */
const char *http_parse_error_str(int err);

/* Returns the first header named `name` (NUL-terminated, ASCII case-insensitive), or NULL. */
const http_header *http_header_find(const http_request *req, const char *name);
/* Returns the next header after `prev` (an element of req->headers) with the same name rule,
 * or NULL. */
const http_header *http_header_find_next(const http_request *req, const http_header *prev,
                                         const char *name);
/* Returns 1 when the comma-separated list value[0..len) has an element equal to `token`
 * (ASCII case-insensitive, OWS around elements ignored, empty elements allowed), else 0. */
int http_token_list_contains(const char *value, size_t len, const char *token);
/* Returns 1 when any header named `name` contains `token` as above, else 0. */
int http_header_has_token(const http_request *req, const char *name, const char *token);

/* Iterates the pairs of a Cookie header value "a=b; c=d" (RFC 6265 §5.4 splitting, lenient):
 * pairs are split at ';', trimmed of SP/HTAB, split at the first '='; a value in double
 * quotes loses them; a pair without '=' has an empty value; pairs with an empty name are
 * skipped. Names and values are raw (not percent-decoded: use http_url_decode if wanted). */
typedef struct http_cookie_iter {
    const char *p;
    const char *end;
} http_cookie_iter;
/* value (read only) must outlive the iteration. */
void http_cookie_iter_init(http_cookie_iter *it, const char *value, size_t len);
/* Stores the next pair (pointers into the value) and returns 1, or returns 0 at the end. */
int http_cookie_next(http_cookie_iter *it, const char **name, size_t *name_len, const char **value,
                     size_t *value_len);

/* Iterates the key/value pairs of a query string "a=1&b=x+y%21" (application/x-www-form-
 * urlencoded, as PHP's $_GET): split at '&', then at the first '='; a pair without '=' has
 * an empty value; empty pairs and pairs with an empty key are skipped. Keys and values are
 * percent-decoded with '+' as space into the caller's scratch buffer, which must hold at
 * least len bytes and outlive the use of the results. */
typedef struct http_query_iter {
    const char *p;
    const char *end;
    char *out;
} http_query_iter;
void http_query_iter_init(http_query_iter *it, const char *query, size_t len, char *scratch);
/* Stores the next decoded pair (pointers into scratch, not NUL-terminated; may contain NUL
 * bytes from %00) and returns 1, or returns 0 at the end. */
int http_query_next(http_query_iter *it, const char **key, size_t *key_len, const char **value,
                    size_t *value_len);

/* Percent-decodes src[0..n) into dst (at least n bytes; dst == src is allowed). '+' becomes
 * a space when plus_is_space. An invalid escape ("%zz", "%4", a final "%") is copied as is,
 * like PHP's urldecode. Returns the decoded length (<= n). */
size_t http_url_decode(char *dst, const char *src, size_t n, int plus_is_space);

/* ---- WebSocket handshake --------------------------------------------------------------- */

/* Length of a Sec-WebSocket-Accept value: base64 of a 20-byte SHA-1. */
#define HTTP_WS_ACCEPT_LEN 28

typedef struct http_ws_result {
    int status;         /* 101 when the request is a valid upgrade, else the status to send */
    const char *reason; /* static English text: why it failed ("" on success) */
    char accept[HTTP_WS_ACCEPT_LEN + 1]; /* on success: Sec-WebSocket-Accept, NUL-terminated */
} http_ws_result;

/* Computes the Sec-WebSocket-Accept value for key[0..key_len) (read only):
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), NUL-terminated in out.
 * Returns 0, -EINVAL when key_len > 64 (a valid key has 24 characters), or -EIO when
 * libcrypto fails. */
int http_ws_accept(const char *key, size_t key_len, char out[HTTP_WS_ACCEPT_LEN + 1]);

/* Checks a parsed request (read only) against RFC 6455 §4.2.1, in this order, and fills *res:
 *   method GET                                      else 400 (as GatewayWorker; not 405)
 *   HTTP/1.1 or later                               else 400
 *   exactly one Host header                         else 400
 *   Upgrade has the token "websocket"               else 400
 *   Connection has the token "upgrade"              else 400
 *   one Sec-WebSocket-Version header                else 400 (missing, as Workerman 5)
 *   ... equal to "13"                               else 426 (send Sec-WebSocket-Version: 13)
 *   one Sec-WebSocket-Key, strict base64 of 16 bytes else 400
 * Origin and Sec-WebSocket-Protocol are left to the caller. Returns 0 (res->status 101 and
 * res->accept set), the failing status (> 0, also in res->status), or -EIO when libcrypto
 * fails (res->status 500). */
int http_ws_handshake_check(const http_request *req, http_ws_result *res);

/* Appends the 101 Switching Protocols response for a successful check (res read only) to
 * out, followed by the caller's extra header lines (each "Name: value" without line end,
 * read only; NULL entries, empty lines, lines without ':' and lines containing CR, LF or NUL
 * are dropped), then the empty line. extra may be NULL when n_extra == 0.
 * Returns 0, or -ENOMEM (out unchanged). */
int http_ws_response_101(gw_buf *out, const http_ws_result *res, const char *const *extra,
                         size_t n_extra);

/* Appends an error response to out: status line, Content-Type: text/plain, Content-Length,
 * Connection: close (plus Sec-WebSocket-Version: 13 for 426, Allow: GET for 405), then body
 * (read only, NUL-terminated; NULL means the reason phrase) followed by "\n".
 * status must be 400..599. Returns 0, -EINVAL (bad status), or -ENOMEM (out unchanged). */
int http_error_response(gw_buf *out, int status, const char *body);

/* The reason phrase of a status code ("Bad Request"), "Unknown" for one not in the table. */
const char *http_status_phrase(int status);

#endif
