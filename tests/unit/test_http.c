#include "common/alloc.h"
#include "common/buf.h"
#include "common/http.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char sample[] = "GET /chat?room=1&x=%41 HTTP/1.1\r\n"
                             "Host: server.example.com\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Origin: http://example.com\r\n"
                             "Sec-WebSocket-Protocol: chat, superchat\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "\r\n";

/* Parses s[0..n) from an exact-size heap copy (so a sanitizer build catches over-reads). */
static int parse_n(const char *s, size_t n, http_request *req)
{
    char *copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, n);
    int rc = http_request_parse(copy, n, req);
    free(copy);
    return rc; /* req points into freed memory: only the return value is used */
}

static int parse(const char *s, http_request *req)
{
    return parse_n(s, strlen(s), req);
}

#define ASSERT_STR(p, n, lit)                                                                      \
    do {                                                                                           \
        ck_assert_uint_eq((n), sizeof(lit) - 1);                                                   \
        ck_assert_int_eq(memcmp((p), (lit), sizeof(lit) - 1), 0);                                  \
    } while (0)

/* Every proper prefix needs more; the whole input parses to its full length. */
static void check_all_prefixes(const char *s, size_t n, size_t head_len)
{
    http_request req;
    for (size_t k = 0; k < head_len; k++) {
        int rc = parse_n(s, k, &req);
        ck_assert_msg(rc == 0, "prefix %zu: %d", k, rc);
    }
    for (size_t k = head_len; k <= n; k++)
        ck_assert_int_eq(parse_n(s, k, &req), (int)head_len);
}

START_TEST(test_parse_sample)
{
    http_request req;
    size_t n = sizeof sample - 1;
    ck_assert_int_eq(http_request_parse(sample, n, &req), (int)n);
    ASSERT_STR(req.method, req.method_len, "GET");
    ASSERT_STR(req.target, req.target_len, "/chat?room=1&x=%41");
    ASSERT_STR(req.path, req.path_len, "/chat");
    ASSERT_STR(req.query, req.query_len, "room=1&x=%41");
    ck_assert_int_eq(req.minor_version, 1);
    ck_assert_uint_eq(req.num_headers, 7);
    ASSERT_STR(req.headers[0].name, req.headers[0].name_len, "Host");
    ASSERT_STR(req.headers[0].value, req.headers[0].value_len, "server.example.com");
    ASSERT_STR(req.headers[6].name, req.headers[6].name_len, "Sec-WebSocket-Version");
    ASSERT_STR(req.headers[6].value, req.headers[6].value_len, "13");
    const http_header *h = http_header_find(&req, "sec-websocket-protocol");
    ck_assert_ptr_nonnull(h);
    ASSERT_STR(h->value, h->value_len, "chat, superchat");
    ck_assert_ptr_null(http_header_find(&req, "Cookie"));
    ck_assert_ptr_null(http_header_find(&req, "Hos"));
    ck_assert_ptr_null(http_header_find(&req, "Hostx"));
}
END_TEST

START_TEST(test_parse_split_at_every_byte)
{
    check_all_prefixes(sample, sizeof sample - 1, sizeof sample - 1);
    /* bytes after the head (a pipelined WebSocket frame) are not part of it */
    char withframe[sizeof sample + 6];
    memcpy(withframe, sample, sizeof sample - 1);
    memcpy(withframe + sizeof sample - 1, "\x81\x85\x01\x02\x03\x04", 6);
    check_all_prefixes(withframe, sizeof withframe - 1, sizeof sample - 1);
    /* bare LF line ends, leading empty lines, mixed endings, tabs and odd spacing */
    static const char lf[] = "\r\n\nGET / HTTP/1.0\nHost:x\nX-Empty:\r\nX-Tab:\t a\tb \t\n\n";
    check_all_prefixes(lf, sizeof lf - 1, sizeof lf - 1);
    http_request req;
    ck_assert_int_eq(http_request_parse(lf, sizeof lf - 1, &req), (int)sizeof lf - 1);
    ck_assert_int_eq(req.minor_version, 0);
    ck_assert_uint_eq(req.num_headers, 3);
    ASSERT_STR(req.headers[0].value, req.headers[0].value_len, "x");
    ck_assert_uint_eq(req.headers[1].value_len, 0);
    ASSERT_STR(req.headers[2].value, req.headers[2].value_len, "a\tb");
    ck_assert_ptr_null(req.query);
}
END_TEST

START_TEST(test_parse_targets)
{
    http_request req;
    static const char abs[] = "GET http://example.com:8080/chat?x=1 HTTP/1.1\r\n\r\n";
    ck_assert_int_eq(http_request_parse(abs, sizeof abs - 1, &req), (int)sizeof abs - 1);
    ASSERT_STR(req.target, req.target_len, "http://example.com:8080/chat?x=1");
    ASSERT_STR(req.path, req.path_len, "/chat");
    ASSERT_STR(req.query, req.query_len, "x=1");
    static const char abs_noslash[] = "GET ws://h HTTP/1.1\r\n\r\n";
    ck_assert_int_eq(http_request_parse(abs_noslash, sizeof abs_noslash - 1, &req),
                     (int)sizeof abs_noslash - 1);
    ASSERT_STR(req.path, req.path_len, "/");
    ck_assert_ptr_null(req.query);
    static const char ast[] = "OPTIONS * HTTP/1.1\r\n\r\n";
    ck_assert_int_gt(http_request_parse(ast, sizeof ast - 1, &req), 0);
    ASSERT_STR(req.path, req.path_len, "*");
    static const char emptyq[] = "GET /? HTTP/1.1\r\n\r\n";
    ck_assert_int_gt(http_request_parse(emptyq, sizeof emptyq - 1, &req), 0);
    ASSERT_STR(req.path, req.path_len, "/");
    ck_assert_ptr_nonnull(req.query);
    ck_assert_uint_eq(req.query_len, 0);
    static const char twoq[] = "GET /p?a?b=/ HTTP/1.1\r\n\r\n";
    ck_assert_int_gt(http_request_parse(twoq, sizeof twoq - 1, &req), 0);
    ASSERT_STR(req.path, req.path_len, "/p");
    ASSERT_STR(req.query, req.query_len, "a?b=/");
}
END_TEST

START_TEST(test_parse_malformed)
{
    static const struct {
        const char *s;
        int err;
    } bad[] = {
        {"G@T / HTTP/1.1\r\n\r\n", HTTP_E_METHOD},
        {"G@", HTTP_E_METHOD}, /* fails before the head is complete */
        {" GET / HTTP/1.1\r\n\r\n", HTTP_E_METHOD},
        {"GET\t/ HTTP/1.1\r\n\r\n", HTTP_E_METHOD},
        {"\x16\x03\x01\x02\x00", HTTP_E_METHOD}, /* a TLS ClientHello */
        {"GET  / HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET /\x01 HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET /a#frag HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET foo HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET http:/x HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET http:// HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET 1http://h/ HTTP/1.1\r\n\r\n", HTTP_E_TARGET},
        {"GET /\r\n\r\n", HTTP_E_TARGET}, /* HTTP/0.9 */
        {"GET /a b HTTP/1.1\r\n\r\n", HTTP_E_VERSION},
        {"GET / HTTP/1.1x\r\n\r\n", HTTP_E_VERSION},
        {"GET / HTTP/11\r\n\r\n", HTTP_E_VERSION},
        {"GET / http/1.1\r\n\r\n", HTTP_E_VERSION},
        {"GET / HTTP/1.1 \r\n\r\n", HTTP_E_VERSION},
        {"GET / HTTP/2.0\r\n\r\n", HTTP_E_VERSION_UNSUPPORTED},
        {"GET / HTTP/0.9\r\n\r\n", HTTP_E_VERSION_UNSUPPORTED},
        {"GET / HTTP/1.1\rX", HTTP_E_MALFORMED},
        {"\rGET / HTTP/1.1\r\n\r\n", HTTP_E_MALFORMED},
        {"GET / HTTP/1.1\r\nHost: x\r\n\rX", HTTP_E_MALFORMED},
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", HTTP_E_MALFORMED},
        {"GET / HTTP/1.1\r\nHost example\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nHost\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\n: x\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nHo\xc3\xa9st: x\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nX: a\x1b", HTTP_E_HEADER},
        {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", HTTP_E_HEADER},  /* obs-fold */
        {"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", HTTP_E_HEADER}, /* obs-fold */
        {"GET / HTTP/1.1\r\n Host: x\r\n\r\n", HTTP_E_HEADER},
    };
    http_request req;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i].s, &req);
        ck_assert_msg(rc == bad[i].err, "case %zu: got %d, expected %d", i, rc, bad[i].err);
    }
    /* NUL in a header value */
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    ck_assert_int_eq(parse_n(nul, sizeof nul - 1, &req), HTTP_E_HEADER);
    /* obs-text in values is allowed */
    ck_assert_int_gt(parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", &req), 0);
    /* mapping to statuses */
    ck_assert_int_eq(http_parse_error_status(HTTP_E_HEADER), 400);
    ck_assert_int_eq(http_parse_error_status(HTTP_E_TOO_MANY_HEADERS), 431);
    ck_assert_int_eq(http_parse_error_status(HTTP_E_VERSION_UNSUPPORTED), 505);
    ck_assert_str_eq(http_parse_error_str(HTTP_E_TOO_MANY_HEADERS), "too many header lines");
}
END_TEST

START_TEST(test_parse_header_limit)
{
    gw_buf b = {0};
    ck_assert_int_eq(gw_buf_append_str(&b, "GET / HTTP/1.1\r\n"), 0);
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        ck_assert_int_eq(gw_buf_printf(&b, "X-%d: %d\r\n", i, i), 0);
    size_t at64 = b.len;
    ck_assert_int_eq(gw_buf_append_str(&b, "\r\n"), 0);
    http_request req;
    ck_assert_int_eq(http_request_parse((char *)b.data, b.len, &req), (int)b.len);
    ck_assert_uint_eq(req.num_headers, 64);
    ASSERT_STR(req.headers[63].name, req.headers[63].name_len, "X-63");
    /* a 65th header line fails as soon as it starts */
    b.len = at64;
    ck_assert_int_eq(gw_buf_append_str(&b, "X"), 0);
    ck_assert_int_eq(http_request_parse((char *)b.data, b.len, &req), HTTP_E_TOO_MANY_HEADERS);
    gw_buf_deinit(&b);
}
END_TEST

START_TEST(test_token_lists)
{
    static const struct {
        const char *v;
        const char *tok;
        int want;
    } t[] = {
        {"Upgrade", "upgrade", 1},
        {"keep-alive, Upgrade", "upgrade", 1},
        {"keep-alive,UPGRADE", "upgrade", 1},
        {",, upgrade ,", "upgrade", 1},
        {"\tupgrade\t", "upgrade", 1},
        {"keep-alive", "upgrade", 0},
        {"upgrade-insecure", "upgrade", 0},
        {"upgradex", "upgrade", 0},
        {"x upgrade", "upgrade", 0},
        {"", "upgrade", 0},
        {",", "upgrade", 0},
        {"websocket", "websocket", 1},
        {"h2c, WebSocket", "websocket", 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        ck_assert_msg(http_token_list_contains(t[i].v, strlen(t[i].v), t[i].tok) == t[i].want,
                      "case %zu", i);
    /* across repeated headers */
    static const char two[] = "GET / HTTP/1.1\r\nConnection: keep-alive\r\n"
                              "connection: upgrade\r\n\r\n";
    http_request req;
    ck_assert_int_gt(http_request_parse(two, sizeof two - 1, &req), 0);
    ck_assert_int_eq(http_header_has_token(&req, "Connection", "Upgrade"), 1);
    ck_assert_int_eq(http_header_has_token(&req, "Connection", "close"), 0);
    const http_header *h = http_header_find(&req, "CONNECTION");
    ck_assert_ptr_eq(h, &req.headers[0]);
    ck_assert_ptr_eq(http_header_find_next(&req, h, "connection"), &req.headers[1]);
    ck_assert_ptr_null(http_header_find_next(&req, &req.headers[1], "connection"));
}
END_TEST

START_TEST(test_cookies)
{
    static const char v[] = "a=b; c=d;  sid = \"xyz\" ;;flag; =v; e=; t=a=b;\t";
    http_cookie_iter it;
    http_cookie_iter_init(&it, v, sizeof v - 1);
    static const char *const want[][2] = {{"a", "b"},   {"c", "d"}, {"sid", "xyz"},
                                          {"flag", ""}, {"e", ""},  {"t", "a=b"}};
    const char *n, *val;
    size_t nl, vl;
    for (size_t i = 0; i < 6; i++) {
        ck_assert_int_eq(http_cookie_next(&it, &n, &nl, &val, &vl), 1);
        ck_assert_uint_eq(nl, strlen(want[i][0]));
        ck_assert_int_eq(memcmp(n, want[i][0], nl), 0);
        ck_assert_uint_eq(vl, strlen(want[i][1]));
        ck_assert_int_eq(memcmp(val, want[i][1], vl), 0);
    }
    ck_assert_int_eq(http_cookie_next(&it, &n, &nl, &val, &vl), 0);
    ck_assert_int_eq(http_cookie_next(&it, &n, &nl, &val, &vl), 0);
    http_cookie_iter_init(&it, NULL, 0);
    ck_assert_int_eq(http_cookie_next(&it, &n, &nl, &val, &vl), 0);
    http_cookie_iter_init(&it, "\"", 1);
    ck_assert_int_eq(http_cookie_next(&it, &n, &nl, &val, &vl), 1); /* name "\"", no value */
    ck_assert_uint_eq(nl, 1);
    ck_assert_uint_eq(vl, 0);
}
END_TEST

START_TEST(test_query_decoding)
{
    static const char q[] = "a=1&b=x+y%21&&c&=z&d=%zz&e=%4&f=%&g=%41%42&%6B%65%79=v&n=%00&"
                            "u=%E6%97%A5";
    char scratch[sizeof q];
    http_query_iter it;
    http_query_iter_init(&it, q, sizeof q - 1, scratch);
    static const struct {
        const char *k;
        size_t kl;
        const char *v;
        size_t vl;
    } want[] = {
        {"a", 1, "1", 1},  {"b", 1, "x y!", 4},
        {"c", 1, "", 0},   {"d", 1, "%zz", 3},
        {"e", 1, "%4", 2}, {"f", 1, "%", 1},
        {"g", 1, "AB", 2}, {"key", 3, "v", 1},
        {"n", 1, "\0", 1}, {"u", 1, "\xe6\x97\xa5", 3},
    };
    const char *k, *v;
    size_t kl, vl;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_int_eq(http_query_next(&it, &k, &kl, &v, &vl), 1);
        ck_assert_msg(kl == want[i].kl && memcmp(k, want[i].k, kl) == 0, "key %zu", i);
        ck_assert_msg(vl == want[i].vl && memcmp(v, want[i].v, vl) == 0, "value %zu", i);
    }
    ck_assert_int_eq(http_query_next(&it, &k, &kl, &v, &vl), 0);
    http_query_iter_init(&it, NULL, 0, NULL);
    ck_assert_int_eq(http_query_next(&it, &k, &kl, &v, &vl), 0);

    /* the decoder alone, in place, with and without '+' as space */
    char s[] = "a+b%20c%2";
    ck_assert_uint_eq(http_url_decode(s, s, 9, 1), 7);
    ck_assert_int_eq(memcmp(s, "a b c%2", 7), 0);
    char t[] = "a+b%2B";
    ck_assert_uint_eq(http_url_decode(t, t, 6, 0), 4);
    ck_assert_int_eq(memcmp(t, "a+b+", 4), 0);
}
END_TEST

/* ---- handshake -------------------------------------------------------------------------- */

static int check_hs(const char *req_text, http_ws_result *res)
{
    http_request req;
    size_t n = strlen(req_text);
    int rc = http_request_parse(req_text, n, &req);
    ck_assert_msg(rc == (int)n, "parse: %d", rc);
    return http_ws_handshake_check(&req, res);
}

#define H_HOST "Host: h\r\n"
#define H_UPG "Upgrade: websocket\r\n"
#define H_CONN "Connection: Upgrade\r\n"
#define H_VER "Sec-WebSocket-Version: 13\r\n"
#define H_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

START_TEST(test_handshake_sample_accept)
{
    http_ws_result res;
    ck_assert_int_eq(check_hs(sample, &res), 0);
    ck_assert_int_eq(res.status, 101);
    ck_assert_str_eq(res.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char acc[HTTP_WS_ACCEPT_LEN + 1];
    ck_assert_int_eq(http_ws_accept("x3JJHMbDL1EzLkh9GBhXDw==", 24, acc), 0);
    ck_assert_str_eq(acc, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    char longkey[65];
    memset(longkey, 'A', sizeof longkey);
    ck_assert_int_eq(http_ws_accept(longkey, 64, acc), 0);
    ck_assert_int_eq(http_ws_accept(longkey, 65, acc), -EINVAL);

    gw_buf out = {0};
    static const char *const extra[] = {
        "Sec-WebSocket-Protocol: chat",
        "X-Bad: a\r\nInjected: 1",
        "X-Bad2: b\n",
        NULL,
        "",
        "NoColon",
        "Server: gw",
    };
    ck_assert_int_eq(http_ws_response_101(&out, &res, extra, 7), 0);
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "Server: gw\r\n"
                               "\r\n";
    ck_assert_uint_eq(out.len, sizeof want - 1);
    ck_assert_int_eq(memcmp(out.data, want, out.len), 0);
    out.len = 0;
    ck_assert_int_eq(http_ws_response_101(&out, &res, NULL, 0), 0);
    ck_assert_uint_eq(out.len, sizeof want - 1 - 30 - 12);
    gw_buf_deinit(&out);
}
END_TEST

START_TEST(test_handshake_failures)
{
    static const struct {
        const char *req;
        int status;
    } t[] = {
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER H_KEY "\r\n", 0},
        {"GET / HTTP/1.1\r\nhost: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
         "sec-websocket-version: 13\r\nsec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
         0},
        {"POST / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER H_KEY "\r\n", 400},
        {"get / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.0\r\n" H_HOST H_UPG H_CONN H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_UPG H_CONN H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_HOST H_UPG H_CONN H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_CONN H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST "Upgrade: h2c\r\n" H_CONN H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG "Connection: keep-alive\r\n" H_VER H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN "Sec-WebSocket-Version: 8\r\n" H_KEY "\r\n", 426},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN "Sec-WebSocket-Version: 13, 8\r\n" H_KEY "\r\n",
         426},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER H_VER H_KEY "\r\n", 426},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER H_KEY H_KEY "\r\n", 400},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"
         "\r\n",
         400}, /* 10 bytes */
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER
         "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n",
         400}, /* 18 bytes */
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n\r\n",
         400}, /* unpadded */
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ*=\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\n" H_HOST H_UPG H_CONN H_VER "Sec-WebSocket-Key:\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        http_ws_result res;
        int rc = check_hs(t[i].req, &res);
        ck_assert_msg(rc == t[i].status, "case %zu: %d (%s), expected %d", i, rc, res.reason,
                      t[i].status);
        ck_assert_int_eq(res.status, t[i].status ? t[i].status : 101);
        if (t[i].status)
            ck_assert_str_ne(res.reason, "");
    }
}
END_TEST

START_TEST(test_error_responses)
{
    gw_buf out = {0};
    ck_assert_int_eq(http_error_response(&out, 400, "missing Host header"), 0);
    static const char w400[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 20\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "missing Host header\n";
    ck_assert_uint_eq(out.len, sizeof w400 - 1);
    ck_assert_int_eq(memcmp(out.data, w400, out.len), 0);

    out.len = 0;
    ck_assert_int_eq(http_error_response(&out, 426, NULL), 0);
    static const char w426[] = "HTTP/1.1 426 Upgrade Required\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 17\r\n"
                               "Connection: close\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "\r\n"
                               "Upgrade Required\n";
    ck_assert_uint_eq(out.len, sizeof w426 - 1);
    ck_assert_int_eq(memcmp(out.data, w426, out.len), 0);

    static const int statuses[] = {403, 404, 405, 413, 431, 500, 503};
    static const char *const phrases[] = {"Forbidden",
                                          "Not Found",
                                          "Method Not Allowed",
                                          "Content Too Large",
                                          "Request Header Fields Too Large",
                                          "Internal Server Error",
                                          "Service Unavailable"};
    for (size_t i = 0; i < 7; i++) {
        out.len = 0;
        ck_assert_int_eq(http_error_response(&out, statuses[i], NULL), 0);
        char line[128];
        snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", statuses[i], phrases[i]);
        ck_assert_int_eq(memcmp(out.data, line, strlen(line)), 0);
        ck_assert_str_eq(http_status_phrase(statuses[i]), phrases[i]);
        gw_buf_append_u8(&out, 0);
        ck_assert_ptr_nonnull(strstr((char *)out.data, "Connection: close\r\n"));
        ck_assert_int_eq(strstr((char *)out.data, "Allow: GET\r\n") != NULL, statuses[i] == 405);
    }
    size_t keep = out.len;
    ck_assert_int_eq(http_error_response(&out, 200, NULL), -EINVAL);
    ck_assert_int_eq(http_error_response(&out, 600, NULL), -EINVAL);
    ck_assert_uint_eq(out.len, keep);
    gw_buf_deinit(&out);

    /* out of memory: -ENOMEM and the buffer unchanged */
    gw_buf o2 = {0};
    gw_alloc_fail_after(0);
    ck_assert_int_eq(http_error_response(&o2, 400, NULL), -ENOMEM);
    http_ws_result res = {.status = 101, .reason = "", .accept = "x"};
    ck_assert_int_eq(http_ws_response_101(&o2, &res, NULL, 0), -ENOMEM);
    gw_alloc_fail_after(-1);
    ck_assert_uint_eq(o2.len, 0);
    gw_buf_deinit(&o2);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_sample);
    tcase_add_test(tc, test_parse_split_at_every_byte);
    tcase_add_test(tc, test_parse_targets);
    tcase_add_test(tc, test_parse_malformed);
    tcase_add_test(tc, test_parse_header_limit);
    tcase_add_test(tc, test_token_lists);
    tcase_add_test(tc, test_cookies);
    tcase_add_test(tc, test_query_decoding);
    tcase_add_test(tc, test_handshake_sample_accept);
    tcase_add_test(tc, test_handshake_failures);
    tcase_add_test(tc, test_error_responses);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
