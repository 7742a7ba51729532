/* fuzz_http - libFuzzer target for the HTTP request head parser and the WebSocket handshake
 * (common/http.c, common/base64.c).
 *
 * Input: byte 0 picks a prefix length to cross-check, the rest is what a client sends. Checked:
 * results are 0 / head length / a documented error; a prefix of a complete head is never an
 * error; all pointers stay inside the input; a complete head goes through the handshake check,
 * the response builders, and the cookie and query iterators. */
#include "common/alloc.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/http.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *buf, size_t len, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (p < buf || p > buf + len || n > (size_t)(buf + len - p))
        abort();
}

static void check_request(const char *buf, size_t head, const http_request *req)
{
    inside(buf, head, req->method, req->method_len);
    inside(buf, head, req->target, req->target_len);
    if (req->method_len == 0 || req->target_len == 0)
        abort();
    if (!(req->path_len == 1 && (req->path[0] == '/' || req->path[0] == '*')))
        inside(buf, head, req->path, req->path_len);
    if (req->query)
        inside(buf, head, req->query, req->query_len);
    if (req->minor_version < 0 || req->minor_version > 9 || req->num_headers > HTTP_MAX_HEADERS)
        abort();
    for (size_t i = 0; i < req->num_headers; i++) {
        const http_header *h = &req->headers[i];
        inside(buf, head, h->name, h->name_len);
        inside(buf, head, h->value, h->value_len);
        if (h->name_len == 0)
            abort();
        for (size_t k = 0; k < h->value_len; k++)
            if (h->value[k] == '\r' || h->value[k] == '\n' || h->value[k] == '\0')
                abort();
    }
}

static void exercise(const http_request *req)
{
    http_ws_result res;
    int rc = http_ws_handshake_check(req, &res);
    gw_buf out = {0};
    if (rc == 0) {
        if (res.status != 101 || strlen(res.accept) != HTTP_WS_ACCEPT_LEN)
            abort();
        static const char *const extra[] = {"Server: fuzz", "X-Bad: a\r\nb: c"};
        if (http_ws_response_101(&out, &res, extra, 2))
            abort();
    } else if (rc == 400 || rc == 426) {
        if (res.status != rc || res.reason == NULL || res.reason[0] == '\0')
            abort();
        if (http_error_response(&out, rc, res.reason))
            abort();
    } else {
        abort(); /* -EIO: libcrypto failed, not expected here */
    }
    gw_buf_deinit(&out);

    /* cookies from every Cookie header */
    for (const http_header *h = http_header_find(req, "Cookie"); h;
         h = http_header_find_next(req, h, "cookie")) {
        http_cookie_iter it;
        http_cookie_iter_init(&it, h->value, h->value_len);
        const char *n, *v;
        size_t nl, vl, count = 0;
        while (http_cookie_next(&it, &n, &nl, &v, &vl)) {
            inside(h->value, h->value_len, n, nl);
            inside(h->value, h->value_len, v, vl);
            if (nl == 0 || ++count > h->value_len)
                abort();
        }
    }
    /* query pairs, decoded into a scratch buffer of exactly query_len bytes */
    if (req->query) {
        char *scratch = malloc(req->query_len ? req->query_len : 1);
        if (!scratch)
            abort();
        http_query_iter it;
        http_query_iter_init(&it, req->query, req->query_len, scratch);
        const char *k, *v;
        size_t kl, vl, total = 0;
        while (http_query_next(&it, &k, &kl, &v, &vl)) {
            inside(scratch, req->query_len, k, kl);
            inside(scratch, req->query_len, v, vl);
            total += kl + vl;
            if (kl == 0 || total > req->query_len)
                abort();
        }
        free(scratch);
    }
    /* the accept key and the token lists on every header value */
    for (size_t i = 0; i < req->num_headers; i++) {
        const http_header *h = &req->headers[i];
        (void)http_token_list_contains(h->value, h->value_len, "upgrade");
        uint8_t raw[64];
        long d = base64_decode(raw, sizeof raw, h->value, h->value_len);
        if (d > (long)sizeof raw)
            abort();
        if (d >= 0) {
            /* strict decoding is canonical: re-encoding gives the input back */
            char enc[BASE64_ENCODED_LEN(sizeof raw) + 1];
            size_t e = base64_encode(enc, raw, (size_t)d);
            if (e != h->value_len || memcmp(enc, h->value, e) != 0)
                abort();
        }
    }
}

/* Structure-aware mode: the input is '\n'-separated field values put into an upgrade request
 * template (missing fields get valid defaults), so the handshake checks past the parser are
 * reached far more often than by raw mutation. */
static char *templated(const char *in, size_t n, size_t *out_len)
{
    static const char *const names[] = {"GET /",
                                        " HTTP/1.1\r\nHost: ",
                                        "\r\nUpgrade: ",
                                        "\r\nConnection: ",
                                        "\r\nSec-WebSocket-Version: ",
                                        "\r\nSec-WebSocket-Key: ",
                                        "\r\nCookie: "};
    static const char *const defaults[] = {
        "chat?a=1&b=%41+c",         "h",           "websocket", "Upgrade", "13",
        "dGhlIHNhbXBsZSBub25jZQ==", "a=b; c=\"d\""};
    gw_buf b = {0};
    size_t at = 0;
    for (size_t i = 0; i < 7; i++) {
        if (gw_buf_append_str(&b, names[i]))
            abort();
        const char *nl = at < n ? memchr(in + at, '\n', n - at) : NULL;
        if (at < n) {
            size_t e = nl ? (size_t)(nl - in) : n;
            if (gw_buf_append(&b, in + at, e - at))
                abort();
            at = e + 1;
        } else if (gw_buf_append_str(&b, defaults[i])) {
            abort();
        }
    }
    if (gw_buf_append_str(&b, "\r\n\r\n"))
        abort();
    return (char *)gw_buf_take(&b, out_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut_seed = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    char *owned = NULL;
    if (cut_seed >= 0xF0) {
        owned = templated(buf, len, &len);
        buf = owned;
    }
    http_request *req = malloc(sizeof *req);
    if (!req)
        abort();

    int rc = http_request_parse(buf, len, req);
    if (rc > 0) {
        size_t head = (size_t)rc;
        if (head > len)
            abort();
        check_request(buf, head, req);
        exercise(req);
    } else if (rc < 0) {
        if (rc < HTTP_E_TOO_MANY_HEADERS)
            abort();
        int st = http_parse_error_status(rc);
        if ((st != 400 && st != 431 && st != 505) || http_parse_error_str(rc)[0] == '\0')
            abort();
        gw_buf out = {0};
        if (http_error_response(&out, st, http_parse_error_str(rc)))
            abort();
        gw_buf_deinit(&out);
    }

    /* a shorter read: never a different verdict, only "need more" earlier */
    size_t k = len ? cut_seed * 257 % (len + 1) : 0;
    int rk = http_request_parse(buf, k, req);
    if (rc > 0) {
        if ((size_t)rc <= k ? rk != rc : rk != 0)
            abort();
    } else if (rc == 0) {
        if (rk != 0)
            abort();
    } else if (rk != 0 && rk != rc) {
        abort();
    }
    if (rc > 0 && http_request_parse(buf, (size_t)rc - 1, req) != 0)
        abort();

    /* the percent-decoder on the raw input, in place on a copy */
    char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    if (http_url_decode(copy, copy, len, cut_seed & 1) > len)
        abort();
    free(copy);
    free(req);
    gw_free(owned);
    return 0;
}
