/* Tests of proto/handshake: the PUT and its answer, both directions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/err.h"
#include "proto/handshake.h"

static const char good_req[] = "PUT /.well-known/tether/tunnel HTTP/1.1\r\n"
                               "Host: proxy.example:7443\r\n"
                               "Authorization: Bearer s3cr3t-T0ken\r\n"
                               "Tether-Name: media\r\n"
                               "Tether-Version: 1\r\n"
                               "Connection: Upgrade\r\n"
                               "Upgrade: tether-h2r\r\n"
                               "Content-Length: 0\r\n"
                               "\r\n";

static int iov_is(tt_iov v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.base, s, v.len) == 0;
}

static int parse_req(const char *s, struct tt_hs_request *req)
{
    return tt_hs_parse_request((const uint8_t *)s, strlen(s), req);
}

static int parse_resp(const char *s, struct tt_hs_response *resp)
{
    return tt_hs_parse_response((const uint8_t *)s, strlen(s), resp);
}

static void test_request_valid(void **state)
{
    (void)state;
    struct tt_hs_request req;
    assert_int_equal(parse_req(good_req, &req), (int)strlen(good_req));
    assert_true(iov_is(req.method, "PUT"));
    assert_true(iov_is(req.path, TT_HS_PATH));
    assert_true(iov_is(req.token, "s3cr3t-T0ken"));
    assert_true(iov_is(req.name, "media"));
    assert_true(iov_is(req.version, "1"));
    assert_int_equal(req.has_authorization, 1);
    assert_int_equal(req.upgrade_ok, 1);
    assert_int_equal(req.content_length, 0);
}

static void test_request_case_and_lists(void **state)
{
    (void)state;
    const char *s = "PUT /.well-known/tether/tunnel HTTP/1.1\r\n"
                    "hOsT: x\r\n"
                    "AUTHORIZATION: bearer   abc  \r\n"
                    "tether-name:\tmedia \r\n"
                    "connection: keep-alive, , UPGRADE\r\n"
                    "UPGRADE: Tether-H2R\r\n"
                    "X-Other: whatever: here\r\n"
                    "\r\n";
    struct tt_hs_request req;
    assert_int_equal(parse_req(s, &req), (int)strlen(s));
    assert_true(iov_is(req.token, "abc"));
    assert_true(iov_is(req.name, "media"));
    assert_int_equal(req.version.len, 0);
    assert_int_equal(req.upgrade_ok, 1);
    assert_int_equal(req.content_length, -1);
}

static void test_request_missing_parts(void **state)
{
    (void)state;
    struct tt_hs_request req;
    const char *noauth = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n"
                         "Tether-Name: a\r\nConnection: Upgrade\r\nUpgrade: tether-h2r\r\n\r\n";
    assert_true(parse_req(noauth, &req) > 0);
    assert_int_equal(req.has_authorization, 0);
    assert_int_equal(req.token.len, 0);
    assert_int_equal(req.upgrade_ok, 1);

    const char *basic = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: Basic YTpi\r\n\r\n";
    assert_true(parse_req(basic, &req) > 0);
    assert_int_equal(req.has_authorization, 1);
    assert_int_equal(req.token.len, 0);

    const char *spaced = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n"
                         "Authorization: Bearer a b\r\n\r\n";
    assert_true(parse_req(spaced, &req) > 0);
    assert_int_equal(req.has_authorization, 1);
    assert_int_equal(req.token.len, 0);

    const char *noup = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer t\r\nConnection: Upgrade\r\n\r\n";
    assert_true(parse_req(noup, &req) > 0);
    assert_int_equal(req.upgrade_ok, 0);

    const char *noconn = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n"
                         "Upgrade: tether-h2r\r\n\r\n";
    assert_true(parse_req(noconn, &req) > 0);
    assert_int_equal(req.upgrade_ok, 0);

    const char *otherup = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n"
                          "Connection: upgrade\r\nUpgrade: h2c\r\n\r\n";
    assert_true(parse_req(otherup, &req) > 0);
    assert_int_equal(req.upgrade_ok, 0);
}

static void test_request_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* request line */
        "GET /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n\r\n",
        "put /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n\r\n",
        "PUT /other HTTP/1.1\r\nHost: x\r\n\r\n",
        "PUT /.well-known/tether/tunnel?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.0\r\nHost: x\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/2\r\nHost: x\r\n\r\n",
        "PUT  /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n\r\n",
        "PUT /.well-known/tether/tunnel  HTTP/1.1\r\nHost: x\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1 \r\nHost: x\r\n\r\n",
        " PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\nPUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n\r\n",
        /* line endings */
        "PUT /.well-known/tether/tunnel HTTP/1.1\nHost: x\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
        /* fields */
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nX-A: a\x01z\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nX-A: a\x7fz\r\n\r\n",
        /* Host */
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        /* duplicates of our fields */
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n"
        "Authorization: Bearer b\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nTether-Name: a\r\n"
        "Tether-Name: b\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nTether-Version: 1\r\n"
        "Tether-Version: 1\r\n\r\n",
        /* a body */
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        "Content-Length: 0\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: -0\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 0x0\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\ntransfer-encoding: identity\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tt_hs_request req;
        int r = parse_req(bad[i], &req);
        if (r != TT_HS_MALFORMED)
            fail_msg("case %zu: got %d for %s", i, r, bad[i]);
    }
    /* NUL inside a value and inside the request line. */
    char withnul[sizeof(good_req)];
    memcpy(withnul, good_req, sizeof(good_req));
    char *p = strstr(withnul, "media");
    p[2] = '\0';
    struct tt_hs_request req;
    assert_int_equal(tt_hs_parse_request((uint8_t *)withnul, sizeof(good_req) - 1, &req),
                     TT_HS_MALFORMED);
    memcpy(withnul, good_req, sizeof(good_req));
    withnul[5] = '\0';
    assert_int_equal(tt_hs_parse_request((uint8_t *)withnul, sizeof(good_req) - 1, &req),
                     TT_HS_MALFORMED);
}

static void test_request_too_large(void **state)
{
    (void)state;
    struct tt_hs_request req;
    size_t n = TT_HS_MAX_HEAD + 100;
    char *big = malloc(n + 1);
    int off = snprintf(big, n, "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + off, 'a', n - (size_t)off);
    big[n] = '\0';
    /* No end of head within the limit: too large, never "need more". */
    assert_int_equal(tt_hs_parse_request((uint8_t *)big, n, &req), TT_HS_TOO_LARGE);
    assert_int_equal(tt_hs_parse_request((uint8_t *)big, TT_HS_MAX_HEAD - 1, &req),
                     TT_HS_NEED_MORE);
    /* A head of exactly the limit is fine; one byte more is not. */
    size_t tail = strlen("\r\n\r\n");
    memcpy(big + TT_HS_MAX_HEAD - tail, "\r\n\r\n", tail);
    assert_int_equal(tt_hs_parse_request((uint8_t *)big, n, &req), TT_HS_MAX_HEAD);
    memset(big + off, 'a', n - (size_t)off);
    memcpy(big + TT_HS_MAX_HEAD + 1 - tail, "\r\n\r\n", tail);
    assert_int_equal(tt_hs_parse_request((uint8_t *)big, n, &req), TT_HS_TOO_LARGE);
    free(big);
}

static void test_request_every_split(void **state)
{
    (void)state;
    size_t n = strlen(good_req);
    struct tt_hs_request full;
    assert_int_equal(parse_req(good_req, &full), (int)n);
    /* The parser is fed growing prefixes from a heap copy of exactly that
     * size, so ASan catches any read past what it was given. */
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = malloc(i ? i : 1);
        memcpy(p, good_req, i);
        struct tt_hs_request req;
        int r = tt_hs_parse_request(p, i, &req);
        free(p);
        if (r != TT_HS_NEED_MORE)
            fail_msg("prefix %zu: got %d", i, r);
    }
    struct tt_hs_request req;
    assert_int_equal(tt_hs_parse_request((const uint8_t *)good_req, n, &req), (int)n);
    assert_int_equal(req.upgrade_ok, full.upgrade_ok);
    assert_true(iov_is(req.token, "s3cr3t-T0ken"));
}

static void test_request_trailing_bytes(void **state)
{
    (void)state;
    /* The HTTP/2 preface may arrive in the same read: untouched, not counted. */
    char buf[sizeof(good_req) + 64];
    size_t n = strlen(good_req);
    memcpy(buf, good_req, n);
    memcpy(buf + n, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    char copy[sizeof(buf)];
    memcpy(copy, buf, sizeof(buf));
    struct tt_hs_request req;
    assert_int_equal(tt_hs_parse_request((uint8_t *)buf, n + 24, &req), (int)n);
    assert_memory_equal(buf, copy, n + 24);
    /* Even garbage (a bare LF, a NUL) after the head does not matter. */
    memcpy(buf + n, "\n\0\n", 3);
    assert_int_equal(tt_hs_parse_request((uint8_t *)buf, n + 3, &req), (int)n);
}

static void test_response_parse(void **state)
{
    (void)state;
    struct tt_hs_response resp;
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     "Upgrade: tether-h2r\r\n\r\n";
    assert_int_equal(parse_resp(ok, &resp), (int)strlen(ok));
    assert_int_equal(resp.status, 101);
    assert_int_equal(resp.upgrade_ok, 1);
    assert_int_equal(resp.retry_after, -1);
    assert_true(iov_is(resp.reason, "Switching Protocols"));

    const char *noup = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    assert_true(parse_resp(noup, &resp) > 0);
    assert_int_equal(resp.upgrade_ok, 0);

    const char *unauth = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n"
                         "Connection: close\r\n\r\nbad\n";
    assert_int_equal(parse_resp(unauth, &resp), (int)strlen(unauth) - 4);
    assert_int_equal(resp.status, 401);
    assert_int_equal(resp.upgrade_ok, 0);
    assert_true(iov_is(resp.reason, "Unauthorized"));

    const char *full = "HTTP/1.1 503 Service Unavailable\r\nRetry-After:  7 \r\n\r\n";
    assert_true(parse_resp(full, &resp) > 0);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.retry_after, 7);

    const char *date = "HTTP/1.1 503 x\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n";
    assert_true(parse_resp(date, &resp) > 0);
    assert_int_equal(resp.retry_after, -1);

    const char *noreason = "HTTP/1.1 403 \r\n\r\n";
    assert_true(parse_resp(noreason, &resp) > 0);
    assert_int_equal(resp.status, 403);
    assert_int_equal(resp.reason.len, 0);

    static const char *const bad[] = {
        "HTTP/1.0 101 Switching Protocols\r\n\r\n",
        "HTTP/1.1 1011 x\r\n\r\n",
        "HTTP/1.1 10 x\r\n\r\n",
        "HTTP/1.1 abc x\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
        "HTTP/1.1 101 x\nUpgrade: tether-h2r\r\n\r\n",
        "HTTP/1.1 101 x\r\nUpgrade: tether-h2r\r\n folded\r\n\r\n",
        "HTTP/1.1 101 x\r\nUpgrade : tether-h2r\r\n\r\n",
        "HTTP/1.1 101 x\r\nUpgrade: tether-h2r\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 101 x\r\nUpgrade: tether-h2r\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 x\r\nContent-Length: abc\r\n\r\n",
        "HTTP/1.1 200 x\x01\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse_resp(bad[i], &resp);
        if (r != TT_HS_MALFORMED)
            fail_msg("case %zu: got %d for %s", i, r, bad[i]);
    }
    /* Every split of the 101, then the HTTP/2 bytes after it kept aside. */
    size_t n = strlen(ok);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tt_hs_parse_response((const uint8_t *)ok, i, &resp), TT_HS_NEED_MORE);
    char buf[256];
    memcpy(buf, ok, n);
    memcpy(buf + n, "\0\0\x12\x04", 4);
    assert_int_equal(tt_hs_parse_response((uint8_t *)buf, n + 4, &resp), (int)n);
}

static void test_builders_round_trip(void **state)
{
    (void)state;
    tt_buf b;
    tt_buf_init(&b, 0);
    assert_int_equal(tt_hs_build_request(&b, "proxy.example", "tok-123", "media", 0), 0);
    struct tt_hs_request req;
    assert_int_equal(tt_hs_parse_request(tt_buf_data(&b), tt_buf_len(&b), &req),
                     (int)tt_buf_len(&b));
    assert_true(iov_is(req.token, "tok-123"));
    assert_true(iov_is(req.name, "media"));
    assert_true(iov_is(req.version, TT_HS_VERSION));
    assert_int_equal(req.upgrade_ok, 1);
    assert_int_equal(req.content_length, 0);
    /* Exactly what DESIGN.md shows. */
    const char *expect = "PUT /.well-known/tether/tunnel HTTP/1.1\r\n"
                         "Host: proxy.example\r\n"
                         "Authorization: Bearer tok-123\r\n"
                         "Tether-Name: media\r\n"
                         "Tether-Version: 1\r\n"
                         "Connection: Upgrade\r\n"
                         "Upgrade: tether-h2r\r\n"
                         "Content-Length: 0\r\n\r\n";
    assert_int_equal(tt_buf_len(&b), strlen(expect));
    assert_memory_equal(tt_buf_data(&b), expect, strlen(expect));
    /* Values that would break the head are refused, the buffer unchanged. */
    size_t before = tt_buf_len(&b);
    assert_int_equal(tt_hs_build_request(&b, "h", "a\r\nX: y", "n", 0), TT_ERR_INVALID_ARG);
    assert_int_equal(tt_hs_build_request(&b, "h", "t", "a b", 0), TT_ERR_INVALID_ARG);
    assert_int_equal(tt_buf_len(&b), before);
    tt_buf_free(&b);

    tt_buf_init(&b, 0);
    assert_int_equal(tt_hs_build_response(&b, 101, NULL, -1, 0), 0);
    struct tt_hs_response resp;
    assert_int_equal(tt_hs_parse_response(tt_buf_data(&b), tt_buf_len(&b), &resp),
                     (int)tt_buf_len(&b));
    assert_int_equal(resp.status, 101);
    assert_int_equal(resp.upgrade_ok, 1);
    tt_buf_free(&b);

    static const int codes[] = {400, 401, 403, 426, 503};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        tt_buf_init(&b, 0);
        int ra = codes[i] == 503 ? 5 : -1;
        assert_int_equal(tt_hs_build_response(&b, codes[i], "no such thing", ra, 0), 0);
        int r = tt_hs_parse_response(tt_buf_data(&b), tt_buf_len(&b), &resp);
        assert_true(r > 0);
        assert_int_equal(resp.status, codes[i]);
        assert_int_equal(resp.upgrade_ok, 0);
        assert_int_equal(resp.retry_after, ra);
        /* The body after the head is the reason, one line. */
        assert_int_equal(tt_buf_len(&b) - (size_t)r, strlen("no such thing\n"));
        assert_memory_equal(tt_buf_data(&b) + r, "no such thing\n", 14);
        assert_non_null(memmem(tt_buf_data(&b), (size_t)r, "Connection: close\r\n", 19));
        tt_buf_free(&b);
    }
}

/* The forward link asks for tether-h2 and is answered in kind; a request
 * naming both directions is none of them. */
static void test_forward_round_trip(void **state)
{
    (void)state;
    tt_buf b;
    tt_buf_init(&b, 0);
    assert_int_equal(tt_hs_build_request(&b, "proxy.example", "tok", "laptop", 1), 0);
    assert_non_null(memmem(tt_buf_data(&b), tt_buf_len(&b), "Upgrade: tether-h2\r\n", 20));
    struct tt_hs_request req;
    assert_int_equal(tt_hs_parse_request(tt_buf_data(&b), tt_buf_len(&b), &req),
                     (int)tt_buf_len(&b));
    assert_int_equal(req.upgrade_ok, 1);
    assert_int_equal(req.forward, 1);
    tt_buf_free(&b);

    tt_buf_init(&b, 0);
    assert_int_equal(tt_hs_build_request(&b, "proxy.example", "tok", "media", 0), 0);
    assert_int_equal(tt_hs_parse_request(tt_buf_data(&b), tt_buf_len(&b), &req),
                     (int)tt_buf_len(&b));
    assert_int_equal(req.upgrade_ok, 1);
    assert_int_equal(req.forward, 0);
    tt_buf_free(&b);

    const char *both = "PUT /.well-known/tether/tunnel HTTP/1.1\r\nHost: h\r\n"
                       "Connection: Upgrade\r\nUpgrade: tether-h2r, tether-h2\r\n\r\n";
    assert_true(tt_hs_parse_request((const uint8_t *)both, strlen(both), &req) > 0);
    assert_int_equal(req.upgrade_ok, 0);

    struct tt_hs_response resp;
    for (int fwd = 0; fwd < 2; fwd++) {
        tt_buf_init(&b, 0);
        assert_int_equal(tt_hs_build_response(&b, 101, NULL, -1, fwd), 0);
        assert_int_equal(tt_hs_parse_response(tt_buf_data(&b), tt_buf_len(&b), &resp),
                         (int)tt_buf_len(&b));
        assert_int_equal(resp.upgrade_ok, 1);
        assert_int_equal(resp.forward, fwd);
        tt_buf_free(&b);
    }
}

static void test_builders_nomem(void **state)
{
    (void)state;
    tt_buf b;
    tt_buf_init(&b, 64); /* too small for any head */
    assert_int_equal(tt_hs_build_request(&b, "h", "t", "n", 0), TT_ERR_NOMEM);
    assert_int_equal(tt_buf_len(&b), 0);
    assert_int_equal(tt_hs_build_response(&b, 503, "full", 3, 0), TT_ERR_NOMEM);
    assert_int_equal(tt_buf_len(&b), 0);
    tt_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_valid),
        cmocka_unit_test(test_request_case_and_lists),
        cmocka_unit_test(test_request_missing_parts),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_request_too_large),
        cmocka_unit_test(test_request_every_split),
        cmocka_unit_test(test_request_trailing_bytes),
        cmocka_unit_test(test_response_parse),
        cmocka_unit_test(test_builders_round_trip),
        cmocka_unit_test(test_forward_round_trip),
        cmocka_unit_test(test_builders_nomem),
    };
    return cmocka_run_group_tests_name("handshake", tests, NULL, NULL);
}
