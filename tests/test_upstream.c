/*
 * Unit tests of c --upstream's pure parts: the URL (what a person typing it
 * sees), the HTTP/1.1 request head made from a tunnel request (request
 * line, Host from :authority, hop-by-hop fields out, cookies joined, body
 * framing), and the response fields kept for HTTP/2 (hop-by-hop out,
 * including those Connection names).  The forwarding itself is tested end
 * to end by integration-tests/test-40 and test-41.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "origin/origin.h"
#include "origin/upstream.h"
#include "proto/http1.h"

#include <string.h>

static void test_url_ok(void **state)
{
    (void)state;
    struct tt_upstream_url u;
    char err[200];
    assert_int_equal(tt_upstream_parse_url("http://127.0.0.1:8000", &u, err, sizeof err), 0);
    assert_int_equal(u.h2c, 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "8000");
    assert_string_equal(u.hostport, "127.0.0.1:8000");
    assert_int_equal(tt_upstream_parse_url("h2c://localhost:50051/", &u, err, sizeof err), 0);
    assert_int_equal(u.h2c, 1);
    assert_string_equal(u.host, "localhost");
    assert_string_equal(u.port, "50051");
    assert_int_equal(tt_upstream_parse_url("HTTP://app", &u, err, sizeof err), 0);
    assert_string_equal(u.port, "80");
    assert_string_equal(u.hostport, "app:80");
    assert_int_equal(tt_upstream_parse_url("http://[::1]:9000", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.hostport, "[::1]:9000");
    assert_int_equal(tt_upstream_parse_url("h2c://[::1]", &u, err, sizeof err), 0);
    assert_string_equal(u.port, "80");
}

static void expect_url_bad(const char *url, const char *want)
{
    struct tt_upstream_url u;
    char err[200] = "";
    if (tt_upstream_parse_url(url, &u, err, sizeof err) != -1 || !strstr(err, want))
        fail_msg("%s: want a failure saying '%s', got '%s'", url, want, err);
}

static void test_url_bad(void **state)
{
    (void)state;
    expect_url_bad("127.0.0.1:8000", "want http://HOST:PORT or h2c://HOST:PORT");
    expect_url_bad("ftp://a:1", "want http://");
    expect_url_bad("https://a:443", "https is not supported");
    expect_url_bad("http://a:1/x", "a path is not supported");
    expect_url_bad("http://a:1?q", "a path is not supported");
    expect_url_bad("http://", "want http://");
    expect_url_bad("http://a:0", "port from 1 to 65535");
    expect_url_bad("http://a:65536", "port from 1 to 65535");
    expect_url_bad("http://a:http", "port from 1 to 65535");
    expect_url_bad("http://u:p@a:1", "user:password@");
    expect_url_bad("http://::1:80", "[IPv6]:PORT");
}

#define HDR(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1, 0}

static const char *head_of(const struct tt_header *f, size_t n, enum tt_http1_body body,
                           tt_buf *out)
{
    struct tt_h2_headers h;
    memset(&h, 0, sizeof h);
    h.kind = TT_H2_HDRS_REQUEST;
    h.hdrs = f;
    h.count = n;
    h.content_length = -1;
    for (size_t i = 0; i < n; i++) {
        tt_iov v = {(const uint8_t *)f[i].value, f[i].value_len};
        if (!strcmp(f[i].name, ":method"))
            h.method = v;
        else if (!strcmp(f[i].name, ":path"))
            h.path = v;
        else if (!strcmp(f[i].name, ":authority"))
            h.authority = v;
        else if (!strcmp(f[i].name, ":scheme"))
            h.scheme = v;
    }
    tt_buf_init(out, 1 << 16);
    if (tt_http1_request_head(&h, body, "app:80", out))
        return NULL;
    if (tt_buf_append(out, "", 1))
        return NULL;
    return (const char *)tt_buf_data(out);
}

static void test_head_get(void **state)
{
    (void)state;
    struct tt_header f[] = {
        HDR(":method", "GET"),          HDR(":scheme", "http"),
        HDR(":authority", "a.example"), HDR(":path", "/x?y=1"),
        HDR("accept", "*/*"),           HDR("te", "trailers"),
        HDR("cookie", "a=1"),           HDR("x-forwarded-for", "10.0.0.1"),
        HDR("cookie", "b=2"),           HDR("content-length", "0"),
    };
    tt_buf out;
    const char *s = head_of(f, sizeof f / sizeof f[0], TT_HTTP1_BODY_NONE, &out);
    assert_non_null(s);
    assert_string_equal(s, "GET /x?y=1 HTTP/1.1\r\n"
                           "Host: a.example\r\n"
                           "accept: */*\r\n"
                           "x-forwarded-for: 10.0.0.1\r\n"
                           "cookie: a=1; b=2\r\n"
                           "\r\n");
    tt_buf_free(&out);
}

static void test_head_bodies(void **state)
{
    (void)state;
    struct tt_header post_cl[] = {
        HDR(":method", "POST"), HDR(":scheme", "http"), HDR(":path", "/echo"),
        HDR("host", "h.example"), HDR("content-length", "5"),
    };
    tt_buf out;
    const char *s = head_of(post_cl, 5, TT_HTTP1_BODY_LENGTH, &out);
    assert_non_null(s);
    assert_string_equal(s, "POST /echo HTTP/1.1\r\nHost: h.example\r\ncontent-length: 5\r\n\r\n");
    tt_buf_free(&out);

    struct tt_header post[] = {
        HDR(":method", "POST"), HDR(":scheme", "http"), HDR(":path", "/echo"),
    };
    s = head_of(post, 3, TT_HTTP1_BODY_CHUNKED, &out);
    assert_string_equal(s, "POST /echo HTTP/1.1\r\nHost: app:80\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
    tt_buf_free(&out);
    /* No body for a POST: the app is told, so it does not wait for one. */
    s = head_of(post, 3, TT_HTTP1_BODY_NONE, &out);
    assert_string_equal(s, "POST /echo HTTP/1.1\r\nHost: app:80\r\nContent-Length: 0\r\n\r\n");
    tt_buf_free(&out);
}

static void test_head_refused(void **state)
{
    (void)state;
    struct tt_header sp[] = {
        HDR(":method", "GET"), HDR(":scheme", "http"), HDR(":path", "/a b"),
    };
    tt_buf out;
    assert_null(head_of(sp, 3, TT_HTTP1_BODY_NONE, &out));
    tt_buf_free(&out);
    struct tt_header bad[] = {
        HDR(":method", "GET"), HDR(":scheme", "http"), HDR(":path", "/"), HDR("a b", "1"),
    };
    assert_null(head_of(bad, 4, TT_HTTP1_BODY_NONE, &out));
    tt_buf_free(&out);
    /* A full buffer fails rather than cutting the head. */
    struct tt_header ok[] = {
        HDR(":method", "GET"), HDR(":scheme", "http"), HDR(":path", "/"),
    };
    struct tt_h2_headers h;
    memset(&h, 0, sizeof h);
    h.hdrs = ok;
    h.count = 3;
    h.method = (tt_iov){(const uint8_t *)"GET", 3};
    h.path = (tt_iov){(const uint8_t *)"/", 1};
    tt_buf_init(&out, 10);
    assert_int_equal(tt_http1_request_head(&h, TT_HTTP1_BODY_NONE, "app:80", &out), -1);
    tt_buf_free(&out);
}

static void test_filter_response(void **state)
{
    (void)state;
    struct tt_header f[] = {
        HDR("content-type", "text/plain"),
        HDR("connection", "keep-alive, X-Private"),
        HDR("x-private", "secret"),
        HDR("keep-alive", "timeout=5"),
        HDR("transfer-encoding", "chunked"),
        HDR("upgrade", "h2c"),
        HDR("proxy-connection", "close"),
        HDR("content-length", "10"),
        HDR("trailer", "x-checksum"),
        HDR("x-kept", "1"),
    };
    size_t n = tt_upstream_filter_response(f, sizeof f / sizeof f[0]);
    assert_int_equal(n, 4);
    assert_string_equal(f[0].name, "content-type");
    assert_string_equal(f[1].name, "content-length");
    assert_string_equal(f[2].name, "trailer");
    assert_string_equal(f[3].name, "x-kept");
    struct tt_header none[] = {HDR("x-a", "1")};
    assert_int_equal(tt_upstream_filter_response(none, 1), 1);
    assert_int_equal(tt_upstream_filter_response(none, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_ok),          cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_head_get),        cmocka_unit_test(test_head_bodies),
        cmocka_unit_test(test_head_refused),    cmocka_unit_test(test_filter_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
