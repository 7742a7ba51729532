#include "common/http.h"
#include "common/base64.h"

#include <errno.h>
#include <limits.h>
#include <openssl/sha.h>
#include <string.h>

/* ---- character classes ----------------------------------------------------------------- */

/* RFC 7230 tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" /
 * "`" / "|" / "~" / DIGIT / ALPHA */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Characters allowed in a request-target: visible ASCII except '#' (a fragment is never
 * sent). Stricter than "anything but SP": no bytes >= 0x80, no controls. */
static int is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7F && c != '#';
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive comparison of p[0..n) with the NUL-terminated s. */
static int eq_nocase(const char *p, size_t n, const char *s)
{
    size_t i = 0;
    for (; i < n; i++)
        if (s[i] == '\0' || lower((unsigned char)p[i]) != lower((unsigned char)s[i]))
            return 0;
    return s[i] == '\0';
}

/* ---- request parser --------------------------------------------------------------------- */

/* At buf[i], which is '\r' or '\n': returns the index after the line end, 0 when more bytes
 * are needed, or HTTP_E_MALFORMED for a CR without LF. */
static long line_end(const char *buf, size_t len, size_t i)
{
    if (buf[i] == '\n')
        return (long)(i + 1);
    if (i + 1 >= len)
        return 0;
    return buf[i + 1] == '\n' ? (long)(i + 2) : HTTP_E_MALFORMED;
}

/* Splits the request target into path and query. Returns 0 or HTTP_E_TARGET. */
static int split_target(http_request *req)
{
    const char *t = req->target, *end = t + req->target_len;
    const char *p;
    if (t[0] == '/') {
        p = t;
    } else if (req->target_len == 1 && t[0] == '*') {
        req->path = t;
        req->path_len = 1;
        req->query = NULL;
        req->query_len = 0;
        return 0;
    } else {
        /* absolute-form: scheme "://" authority [path-abempty] ["?" query] */
        const char *s = t;
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return HTTP_E_TARGET;
        while (s < end && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                           (*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.'))
            s++;
        if (end - s < 3 || memcmp(s, "://", 3) != 0)
            return HTTP_E_TARGET;
        s += 3;
        const char *auth = s;
        while (s < end && *s != '/' && *s != '?')
            s++;
        if (s == auth)
            return HTTP_E_TARGET;
        p = s;
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    const char *pend = q ? q : end;
    if (pend == p) {
        req->path = "/";
        req->path_len = 1;
    } else {
        req->path = p;
        req->path_len = (size_t)(pend - p);
    }
    if (q) {
        req->query = q + 1;
        req->query_len = (size_t)(end - q - 1);
    } else {
        req->query = NULL;
        req->query_len = 0;
    }
    return 0;
}

int http_request_parse(const char *buf, size_t len, http_request *req)
{
    size_t i = 0;
    long r;
    if (len > INT_MAX)
        len = INT_MAX;
    req->num_headers = 0;

    /* RFC 7230 §3.5: ignore empty lines before the request line. */
    while (i < len && (buf[i] == '\r' || buf[i] == '\n')) {
        if ((r = line_end(buf, len, i)) <= 0)
            return (int)r;
        i = (size_t)r;
    }

    /* method SP */
    size_t start = i;
    while (i < len && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == len)
        return 0;
    if (i == start || buf[i] != ' ')
        return HTTP_E_METHOD;
    req->method = buf + start;
    req->method_len = i - start;
    i++;

    /* request-target SP */
    start = i;
    while (i < len && is_target_char((unsigned char)buf[i]))
        i++;
    if (i == len)
        return 0;
    if (i == start || buf[i] != ' ')
        return HTTP_E_TARGET;
    req->target = buf + start;
    req->target_len = i - start;
    i++;

    /* "HTTP/" DIGIT "." DIGIT, checked byte by byte so garbage fails early */
    static const char proto[] = "HTTP/0.0";
    for (size_t k = 0; k < 8; k++, i++) {
        if (i == len)
            return 0;
        unsigned char c = (unsigned char)buf[i];
        int ok = proto[k] == '0' ? (c >= '0' && c <= '9') : c == (unsigned char)proto[k];
        if (!ok)
            return HTTP_E_VERSION;
    }
    if (i == len)
        return 0;
    if (buf[i] != '\r' && buf[i] != '\n')
        return HTTP_E_VERSION;
    if (buf[i - 3] != '1')
        return HTTP_E_VERSION_UNSUPPORTED;
    req->minor_version = buf[i - 1] - '0';
    if ((r = line_end(buf, len, i)) <= 0)
        return (int)r;
    i = (size_t)r;
    if (split_target(req))
        return HTTP_E_TARGET;

    /* header lines, then the empty line */
    for (;;) {
        if (i == len)
            return 0;
        if (buf[i] == '\r' || buf[i] == '\n')
            return (int)line_end(buf, len, i); /* the empty line: head complete */
        if (is_ows(buf[i]))
            return HTTP_E_HEADER; /* obs-fold (RFC 7230 §3.2.4) */
        if (req->num_headers == HTTP_MAX_HEADERS)
            return HTTP_E_TOO_MANY_HEADERS;
        http_header *h = &req->headers[req->num_headers];
        start = i;
        while (i < len && is_tchar((unsigned char)buf[i]))
            i++;
        if (i == len)
            return 0;
        if (i == start || buf[i] != ':')
            return HTTP_E_HEADER;
        h->name = buf + start;
        h->name_len = i - start;
        i++;
        while (i < len && is_ows(buf[i]))
            i++;
        start = i;
        for (; i < len; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (c == '\r' || c == '\n')
                break;
            if ((c < 0x20 && c != '\t') || c == 0x7F)
                return HTTP_E_HEADER;
        }
        if (i == len)
            return 0;
        size_t end = i;
        while (end > start && is_ows(buf[end - 1]))
            end--;
        h->value = buf + start;
        h->value_len = end - start;
        if ((r = line_end(buf, len, i)) <= 0)
            return (int)r;
        i = (size_t)r;
        req->num_headers++;
    }
}

int http_parse_error_status(int err)
{
    switch (err) {
    case HTTP_E_TOO_MANY_HEADERS:
        return 431;
    case HTTP_E_VERSION_UNSUPPORTED:
        return 505;
    default:
        return 400;
    }
}

const char *http_parse_error_str(int err)
{
    switch (err) {
    case HTTP_E_MALFORMED:
        return "malformed line ending";
    case HTTP_E_METHOD:
        return "bad method";
    case HTTP_E_TARGET:
        return "bad request target";
    case HTTP_E_VERSION:
        return "bad HTTP version";
    case HTTP_E_VERSION_UNSUPPORTED:
        return "unsupported HTTP version";
    case HTTP_E_HEADER:
        return "bad header line";
    case HTTP_E_TOO_MANY_HEADERS:
        return "too many header lines";
    default:
        return "unknown error";
    }
}

/* ---- header helpers --------------------------------------------------------------------- */

const http_header *http_header_find_next(const http_request *req, const http_header *prev,
                                         const char *name)
{
    size_t i = prev ? (size_t)(prev - req->headers) + 1 : 0;
    for (; i < req->num_headers; i++)
        if (eq_nocase(req->headers[i].name, req->headers[i].name_len, name))
            return &req->headers[i];
    return NULL;
}

const http_header *http_header_find(const http_request *req, const char *name)
{
    return http_header_find_next(req, NULL, name);
}

int http_token_list_contains(const char *value, size_t len, const char *token)
{
    size_t i = 0;
    while (i <= len) {
        size_t s = i;
        while (i < len && value[i] != ',')
            i++;
        size_t e = i;
        while (s < e && is_ows(value[s]))
            s++;
        while (e > s && is_ows(value[e - 1]))
            e--;
        if (e > s && eq_nocase(value + s, e - s, token))
            return 1;
        i++; /* past the ',' (or past the end) */
    }
    return 0;
}

int http_header_has_token(const http_request *req, const char *name, const char *token)
{
    for (const http_header *h = http_header_find(req, name); h;
         h = http_header_find_next(req, h, name))
        if (http_token_list_contains(h->value, h->value_len, token))
            return 1;
    return 0;
}

/* ---- cookies and query strings -------------------------------------------------------------- */

void http_cookie_iter_init(http_cookie_iter *it, const char *value, size_t len)
{
    it->p = value;
    it->end = value ? value + len : value;
}

int http_cookie_next(http_cookie_iter *it, const char **name, size_t *name_len, const char **value,
                     size_t *value_len)
{
    while (it->p < it->end) {
        const char *s = it->p;
        const char *semi = memchr(s, ';', (size_t)(it->end - s));
        const char *e = semi ? semi : it->end;
        it->p = semi ? semi + 1 : it->end;
        while (s < e && is_ows(*s))
            s++;
        while (e > s && is_ows(e[-1]))
            e--;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        const char *ne = eq ? eq : e;
        while (ne > s && is_ows(ne[-1]))
            ne--;
        if (ne == s)
            continue; /* empty pair or empty name */
        const char *vs = eq ? eq + 1 : e, *ve = e;
        while (vs < ve && is_ows(*vs))
            vs++;
        if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
            vs++;
            ve--;
        }
        *name = s;
        *name_len = (size_t)(ne - s);
        *value = vs;
        *value_len = (size_t)(ve - vs);
        return 1;
    }
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

size_t http_url_decode(char *dst, const char *src, size_t n, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%' && n - i >= 3) {
            int h = hexval((unsigned char)src[i + 1]), l = hexval((unsigned char)src[i + 2]);
            if (h >= 0 && l >= 0) {
                dst[o++] = (char)(h << 4 | l);
                i += 2;
                continue;
            }
        }
        dst[o++] = (plus_is_space && c == '+') ? ' ' : c;
    }
    return o;
}

void http_query_iter_init(http_query_iter *it, const char *query, size_t len, char *scratch)
{
    it->p = query;
    it->end = query ? query + len : query;
    it->out = scratch;
}

int http_query_next(http_query_iter *it, const char **key, size_t *key_len, const char **value,
                    size_t *value_len)
{
    while (it->p < it->end) {
        const char *s = it->p;
        const char *amp = memchr(s, '&', (size_t)(it->end - s));
        const char *e = amp ? amp : it->end;
        it->p = amp ? amp + 1 : it->end;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        const char *ke = eq ? eq : e;
        if (ke == s)
            continue; /* empty pair or empty key */
        /* Decoded text is never longer than its source, and the pairs are disjoint parts of
         * the query, so the scratch space (>= query length) always suffices. */
        *key = it->out;
        *key_len = http_url_decode(it->out, s, (size_t)(ke - s), 1);
        it->out += *key_len;
        *value = it->out;
        *value_len = eq ? http_url_decode(it->out, eq + 1, (size_t)(e - eq - 1), 1) : 0;
        it->out += *value_len;
        return 1;
    }
    return 0;
}

/* ---- WebSocket handshake ---------------------------------------------------------------- */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int http_ws_accept(const char *key, size_t key_len, char out[HTTP_WS_ACCEPT_LEN + 1])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned char tmp[64 + sizeof ws_guid - 1]; /* key (<= 64) + GUID */
    size_t glen = sizeof ws_guid - 1;
    if (key_len > sizeof tmp - glen)
        return -EINVAL; /* a real key has 24 characters */
    memcpy(tmp, key, key_len);
    memcpy(tmp + key_len, ws_guid, glen);
    if (SHA1(tmp, key_len + glen, md) == NULL)
        return -EIO;
    base64_encode(out, md, sizeof md);
    return 0;
}

static int reject(http_ws_result *res, int status, const char *reason)
{
    res->status = status;
    res->reason = reason;
    return status;
}

/* Returns the only header named `name`, or NULL when it is missing or repeated. */
static const http_header *single_header(const http_request *req, const char *name, int *count)
{
    const http_header *h = http_header_find(req, name);
    *count = 0;
    if (h == NULL)
        return NULL;
    *count = http_header_find_next(req, h, name) ? 2 : 1;
    return *count == 1 ? h : NULL;
}

int http_ws_handshake_check(const http_request *req, http_ws_result *res)
{
    const http_header *h;
    int count;
    res->status = 0;
    res->reason = "";
    res->accept[0] = '\0';

    if (!(req->method_len == 3 && memcmp(req->method, "GET", 3) == 0))
        return reject(res, 400, "WebSocket upgrade requires the GET method");
    if (req->minor_version < 1)
        return reject(res, 400, "WebSocket upgrade requires HTTP/1.1");
    single_header(req, "Host", &count);
    if (count != 1)
        return reject(res, 400, count ? "more than one Host header" : "missing Host header");
    if (!http_header_has_token(req, "Upgrade", "websocket"))
        return reject(res, 400, "This is a WebSocket service: missing Upgrade: websocket");
    if (!http_header_has_token(req, "Connection", "upgrade"))
        return reject(res, 400, "missing Connection: Upgrade");
    h = single_header(req, "Sec-WebSocket-Version", &count);
    if (count == 0)
        return reject(res, 400, "missing Sec-WebSocket-Version header");
    if (h == NULL || !(h->value_len == 2 && memcmp(h->value, "13", 2) == 0))
        return reject(res, 426, "unsupported Sec-WebSocket-Version (13 is supported)");
    h = single_header(req, "Sec-WebSocket-Key", &count);
    if (h == NULL)
        return reject(res, 400,
                      count ? "more than one Sec-WebSocket-Key header"
                            : "missing Sec-WebSocket-Key header");
    uint8_t raw[18];
    if (base64_decode(raw, sizeof raw, h->value, h->value_len) != 16)
        return reject(res, 400, "Sec-WebSocket-Key is not the base64 of 16 bytes");
    if (http_ws_accept(h->value, h->value_len, res->accept)) {
        reject(res, 500, "SHA-1 failed");
        return -EIO;
    }
    res->status = 101;
    return 0;
}

/* ---- responses -------------------------------------------------------------------------- */

const char *http_status_phrase(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized"; /* the usual refusal of on_websocket_connect */
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static int header_line_ok(const char *line)
{
    if (line == NULL || line[0] == '\0' || strpbrk(line, "\r\n") != NULL)
        return 0;
    return strchr(line, ':') != NULL;
}

int http_ws_response_101(gw_buf *out, const http_ws_result *res, const char *const *extra,
                         size_t n_extra)
{
    size_t old = out->len;
    int rc = gw_buf_printf(out,
                           "HTTP/1.1 101 Switching Protocols\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: %s\r\n",
                           res->accept);
    for (size_t i = 0; rc == 0 && i < n_extra; i++)
        if (header_line_ok(extra[i]))
            rc = gw_buf_printf(out, "%s\r\n", extra[i]);
    if (rc == 0)
        rc = gw_buf_append(out, "\r\n", 2);
    if (rc) {
        out->len = old;
        return -ENOMEM;
    }
    return 0;
}

int http_error_response(gw_buf *out, int status, const char *body)
{
    if (status < 400 || status > 599)
        return -EINVAL;
    const char *phrase = http_status_phrase(status);
    if (body == NULL)
        body = phrase;
    size_t old = out->len;
    const char *more = status == 426   ? "Sec-WebSocket-Version: 13\r\n"
                       : status == 405 ? "Allow: GET\r\n"
                                       : "";
    int rc = gw_buf_printf(out,
                           "HTTP/1.1 %d %s\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: %zu\r\n"
                           "Connection: close\r\n"
                           "%s"
                           "\r\n"
                           "%s\n",
                           status, phrase, strlen(body) + 1, more, body);
    if (rc) {
        out->len = old;
        return -ENOMEM;
    }
    return 0;
}
