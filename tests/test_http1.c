/*
 * Unit tests of the generated token table (codec/token.h) and the HTTP/1.1
 * rules over it (proto/http1.h): lookups (every name, any case, near
 * misses, and against a linear search on pseudo-random names), the
 * hop-by-hop rule with Connection and TE, both HTTP/1.1 head writers, and
 * host:port with each caller's flags.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec/token.h"
#include "proto/http1.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- token table --------------------------------------------------------- */

/* The reference: a linear search, case-insensitive. */
static const struct tt_token *lin_find_ci(const char *n, size_t len)
{
    for (size_t i = 0; i < TT_TOK_COUNT; i++)
        if (tt_tokens[i].len == len && strncasecmp(tt_tokens[i].name, n, len) == 0)
            return &tt_tokens[i];
    return NULL;
}

static void test_token_every_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < TT_TOK_COUNT; i++) {
        const struct tt_token *t = &tt_tokens[i];
        assert_int_equal(t->id, i);
        assert_int_equal(t->len, strlen(t->name));
        assert_true(t->len <= TT_TOKEN_MAX_LEN);
        assert_ptr_equal(tt_token_find(t->name, t->len), t);
        assert_ptr_equal(tt_token_find_ci(t->name, t->len), t);
        /* HTTP/1 names in any case; HTTP/2 names are lowercase or nothing. */
        char up[64], mixed[64];
        for (size_t k = 0; k < t->len; k++) {
            up[k] = (char)toupper((unsigned char)t->name[k]);
            mixed[k] = k % 2 ? up[k] : t->name[k];
        }
        assert_ptr_equal(tt_token_find_ci(up, t->len), t);
        assert_ptr_equal(tt_token_find_ci(mixed, t->len), t);
        if (memcmp(up, t->name, t->len) != 0)
            assert_null(tt_token_find(up, t->len));
        /* Near misses: a prefix, one byte more, each byte changed. */
        assert_ptr_equal(tt_token_find_ci(t->name, t->len - 1), lin_find_ci(t->name, t->len - 1));
        char longer[64];
        memcpy(longer, t->name, t->len);
        longer[t->len] = 'x';
        assert_true(tt_token_find_ci(longer, t->len + 1) == lin_find_ci(longer, t->len + 1));
        for (size_t k = 0; k < t->len; k++) {
            char m[64];
            memcpy(m, t->name, t->len);
            for (int c = 1; c < 256; c++) {
                if (tolower(c) == t->name[k])
                    continue;
                m[k] = (char)c;
                assert_ptr_equal(tt_token_find_ci(m, t->len), lin_find_ci(m, t->len));
                assert_true(tt_token_find(m, t->len) != t);
            }
        }
    }
    assert_null(tt_token_find("", 0));
    assert_null(tt_token_find_ci("", 0));
    assert_null(tt_token_find_ci("x-forwarded-fo", 14));
    assert_null(tt_token_find_ci("content-lengths", 15));
    assert_null(tt_token_find_ci("proxy-connection-x", 18));
    assert_null(tt_token_find_ci("a-name-longer-than-any-token", 28));
    assert_null(tt_token_find_ci("te\0", 3));
}

static void test_token_flags(void **state)
{
    (void)state;
    /* RFC 9110 §7.6.1's fields, and nothing else, are hop-by-hop. */
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "te",
                                      "transfer-encoding", "upgrade"};
    size_t nhop = 0;
    for (size_t i = 0; i < TT_TOK_COUNT; i++)
        if (tt_tokens[i].flags & TT_TOKF_HOP_BY_HOP)
            nhop++;
    assert_int_equal(nhop, sizeof hop / sizeof hop[0]);
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++) {
        const struct tt_token *t = tt_token_find(hop[i], strlen(hop[i]));
        assert_non_null(t);
        assert_true(t->flags & TT_TOKF_HOP_BY_HOP);
    }
    assert_int_equal(tt_token_find("http2-settings", 14)->flags, TT_TOKF_H2C);
    assert_true(tt_token_find("host", 4)->flags & TT_TOKF_PROXY_SETS);
    assert_true(tt_token_find("x-forwarded-prefix", 18)->flags & TT_TOKF_PROXY_SETS);
    assert_int_equal(tt_token_find("trailer", 7)->flags, 0); /* end to end (RFC 9110 §6.6.2) */
    assert_int_equal(tt_token_find("cookie", 6)->id, TT_TOK_COOKIE);
}

/* Deterministic pseudo-random names from the bytes names are made of:
 * the hash must agree with a linear search on names it was not built for. */
static void test_token_random(void **state)
{
    (void)state;
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzACEKT-2_ ";
    uint32_t x = 0x12345678u;
    char n[TT_TOKEN_MAX_LEN + 2];
    for (int round = 0; round < 200000; round++) {
        x = x * 1664525u + 1013904223u;
        size_t len = 1 + (x >> 8) % (TT_TOKEN_MAX_LEN + 1);
        for (size_t k = 0; k < len; k++) {
            x = x * 1664525u + 1013904223u;
            n[k] = alpha[(x >> 16) % (sizeof alpha - 1)];
        }
        if (round % 4 == 0) { /* start from a real name, change one byte */
            const struct tt_token *t = &tt_tokens[(x >> 4) % TT_TOK_COUNT];
            len = t->len;
            memcpy(n, t->name, len);
            n[(x >> 12) % len] = alpha[(x >> 20) % (sizeof alpha - 1)];
        }
        const struct tt_token *want = lin_find_ci(n, len);
        assert_ptr_equal(tt_token_find_ci(n, len), want);
        const struct tt_token *exact = tt_token_find(n, len);
        assert_true(exact == NULL || (exact == want && memcmp(exact->name, n, len) == 0));
    }
}

/* ---- connection-specific fields ------------------------------------------ */

#define IOV(s) ((tt_iov){(const uint8_t *)(s), sizeof(s) - 1})

static void test_hop_by_hop(void **state)
{
    (void)state;
    assert_true(tt_http1_hop_by_hop("Connection", 10));
    assert_true(tt_http1_hop_by_hop("KEEP-ALIVE", 10));
    assert_true(tt_http1_hop_by_hop("proxy-connection", 16));
    assert_true(tt_http1_hop_by_hop("Transfer-Encoding", 17));
    assert_true(tt_http1_hop_by_hop("upgrade", 7));
    assert_true(tt_http1_hop_by_hop("TE", 2));
    assert_false(tt_http1_hop_by_hop("trailer", 7));
    assert_false(tt_http1_hop_by_hop("host", 4));
    assert_false(tt_http1_hop_by_hop("http2-settings", 14));
    assert_false(tt_http1_hop_by_hop("x-private", 9));
    assert_false(tt_http1_hop_by_hop("connectio", 9));

    /* RFC 9110 §7.6.1: what Connection names is the connection's too. */
    tt_iov conn[] = {IOV("keep-alive, X-Private"), IOV(" close ,, x-other;p=1")};
    assert_true(tt_http1_conn_specific("x-private", 9, conn, 2));
    assert_true(tt_http1_conn_specific("X-PRIVATE", 9, conn, 2));
    assert_true(tt_http1_conn_specific("x-other", 7, conn, 2));
    assert_true(tt_http1_conn_specific("close", 5, conn, 2));
    assert_true(tt_http1_conn_specific("upgrade", 7, conn, 2)); /* hop-by-hop anyway */
    assert_false(tt_http1_conn_specific("x-privat", 8, conn, 2));
    assert_false(tt_http1_conn_specific("x-private", 9, conn, 0));
    assert_false(tt_http1_conn_specific("content-type", 12, conn, 2));
    assert_true(tt_http1_connection_lists("a,b", 3, "B", 1));
    assert_false(tt_http1_connection_lists("ab", 2, "a", 1));
    assert_false(tt_http1_connection_lists("", 0, "a", 1));

    /* TE is hop-by-hop; "trailers" among its members is what p passes on
     * to HTTP/2 (RFC 9113 §8.2.2). */
    assert_true(tt_http1_conn_specific("te", 2, NULL, 0));
    assert_true(tt_http1_te_trailers("trailers", 8));
    assert_true(tt_http1_te_trailers("gzip, Trailers;q=1", 18));
    assert_false(tt_http1_te_trailers("trailer", 7));
    assert_false(tt_http1_te_trailers("gzip", 4));
    assert_false(tt_http1_te_trailers("", 0));
}

/* ---- response heads -------------------------------------------------------- */

#define HDR(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1, 0}

static void expect_response(int status, const struct tt_header *h, size_t n, const char *want)
{
    char buf[1024];
    size_t need = tt_http1_response_head_size(h, n);
    assert_true(need <= sizeof buf);
    memset(buf, 'Z', sizeof buf);
    char *end = tt_http1_response_head_put(buf, status, h, n);
    assert_true((size_t)(end - buf) <= need);
    assert_int_equal((size_t)(end - buf), strlen(want));
    assert_memory_equal(buf, want, strlen(want));
    assert_int_equal(*end, 'Z');
}

static void test_response_head(void **state)
{
    (void)state;
    const struct tt_header ok[] = {
        HDR(":status", "200"), HDR("content-type", "text/html"),
        HDR("content-length", "5"), HDR("set-cookie", "a=1"), HDR("set-cookie", "b=2"),
    };
    expect_response(200, ok, 5,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5\r\n"
                    "set-cookie: a=1\r\nset-cookie: b=2\r\n");
    /* RFC 9110 §8.6: a 1xx never carries Content-Length. */
    const struct tt_header early[] = {
        HDR(":status", "103"), HDR("content-length", "0"), HDR("link", "</a.css>"),
    };
    expect_response(103, early, 3, "HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n");
    expect_response(102, early, 1, "HTTP/1.1 102 Processing\r\n");
    expect_response(599, early, 0, "HTTP/1.1 599 Server Error\r\n");
    /* A long field: the size bound still holds. */
    char big[600];
    memset(big, 'v', sizeof big);
    const struct tt_header lng[] = {{"x-big", big, 5, sizeof big, 0}};
    char buf[1024];
    char *end = tt_http1_response_head_put(buf, 404, lng, 1);
    assert_true((size_t)(end - buf) <= tt_http1_response_head_size(lng, 1));
    assert_memory_equal(buf, "HTTP/1.1 404 Not Found\r\nx-big: vvv", 34);
}

/* ---- request heads ----------------------------------------------------------- */

static const char *request_of(const struct tt_header *f, size_t n, enum tt_http1_body body,
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
    }
    tt_buf_init(out, 1 << 16);
    if (tt_http1_request_head(&h, body, "app:80", out) || tt_buf_append(out, "", 1))
        return NULL;
    return (const char *)tt_buf_data(out);
}

static void test_request_head(void **state)
{
    (void)state;
    /* The connection's own fields stay behind, even in an h2 list that a
     * lenient peer let through; cookies are joined; Host from the field
     * when there is no :authority. */
    struct tt_header f[] = {
        HDR(":method", "PUT"),          HDR(":scheme", "http"),
        HDR(":path", "/u"),             HDR("cookie", "a=1"),
        HDR("Host", "h.example"),       HDR("te", "trailers"),
        HDR("http2-settings", "AAMA"),  HDR("connection", "close"),
        HDR("keep-alive", "1"),         HDR("upgrade", "h2c"),
        HDR("transfer-encoding", "x"),  HDR("proxy-connection", "y"),
        HDR("content-length", "3"),     HDR("Cookie", "b=2"),
        HDR("x-forwarded-for", "10.1"), HDR("trailer", "x-sum"),
    };
    size_t n = sizeof f / sizeof f[0];
    tt_buf out;
    const char *s = request_of(f, n, TT_HTTP1_BODY_LENGTH, &out);
    assert_non_null(s);
    assert_string_equal(s, "PUT /u HTTP/1.1\r\nHost: h.example\r\n"
                           "content-length: 3\r\nx-forwarded-for: 10.1\r\ntrailer: x-sum\r\n"
                           "cookie: a=1; b=2\r\n\r\n");
    tt_buf_free(&out);
    s = request_of(f, n, TT_HTTP1_BODY_CHUNKED, &out);
    assert_string_equal(s, "PUT /u HTTP/1.1\r\nHost: h.example\r\n"
                           "x-forwarded-for: 10.1\r\ntrailer: x-sum\r\n"
                           "cookie: a=1; b=2\r\nTransfer-Encoding: chunked\r\n\r\n");
    tt_buf_free(&out);
    s = request_of(f, n, TT_HTTP1_BODY_NONE, &out);
    assert_string_equal(s, "PUT /u HTTP/1.1\r\nHost: h.example\r\n"
                           "x-forwarded-for: 10.1\r\ntrailer: x-sum\r\n"
                           "cookie: a=1; b=2\r\nContent-Length: 0\r\n\r\n");
    tt_buf_free(&out);

    /* :authority over host; the default when neither. */
    struct tt_header g[] = {
        HDR(":method", "GET"), HDR(":path", "/"), HDR(":authority", "a.example:8"),
        HDR("host", "other"),
    };
    s = request_of(g, 4, TT_HTTP1_BODY_NONE, &out);
    assert_string_equal(s, "GET / HTTP/1.1\r\nHost: a.example:8\r\n\r\n");
    tt_buf_free(&out);
    s = request_of(g, 2, TT_HTTP1_BODY_NONE, &out);
    assert_string_equal(s, "GET / HTTP/1.1\r\nHost: app:80\r\n\r\n");
    tt_buf_free(&out);

    /* What HTTP/1.1 cannot carry is refused, not cut. */
    struct tt_header bad[] = {HDR(":method", "GET"), HDR(":path", "/"), HDR("a\x7f", "1")};
    assert_null(request_of(bad, 3, TT_HTTP1_BODY_NONE, &out));
    tt_buf_free(&out);
    struct tt_header sp[] = {HDR(":method", "G T"), HDR(":path", "/")};
    assert_null(request_of(sp, 2, TT_HTTP1_BODY_NONE, &out));
    tt_buf_free(&out);
}

/* ---- host:port ---------------------------------------------------------------- */

static int hp(const char *s, unsigned flags, struct tt_hostport *a)
{
    return tt_http1_hostport_parse(s, strlen(s), 63, flags, a);
}

static void expect_hp(const char *s, unsigned flags, const char *host, const char *port,
                      unsigned num)
{
    struct tt_hostport a;
    int rc = hp(s, flags, &a);
    if (rc != 0)
        fail_msg("%s: %d", s, rc);
    assert_int_equal(a.host_len, strlen(host));
    assert_memory_equal(a.host, host, a.host_len);
    assert_int_equal(a.port_len, strlen(port));
    assert_memory_equal(a.port, port, a.port_len);
    assert_int_equal(a.port_num, num);
}

static void test_hostport(void **state)
{
    (void)state;
    const unsigned S = TT_HOSTPORT_STRICT;
    struct tt_hostport a;
    expect_hp("127.0.0.1:8080", S, "127.0.0.1", "8080", 8080);
    expect_hp("example.org:443", S, "example.org", "443", 443);
    expect_hp("[::1]:443", S, "::1", "443", 443);
    expect_hp("[fe80::1]:7443", 0, "fe80::1", "7443", 0);
    expect_hp("h:65535", S, "h", "65535", 65535);
    expect_hp("h:00080", S, "h", "00080", 80);
    /* Without STRICT the port is the caller's to check. */
    expect_hp("h:x", 0, "h", "x", 0);
    expect_hp("h:", 0, "h", "", 0);
    /* A listen address may leave its host out. */
    expect_hp(":9000", TT_HOSTPORT_EMPTY_HOST, "", "9000", 0);
    assert_int_equal(hp(":9000", S, &a), TT_HOSTPORT_EHOST);
    /* A URL may leave its port out. */
    expect_hp("app", S | TT_HOSTPORT_PORT_OPTIONAL, "app", "", 0);
    expect_hp("[::1]", S | TT_HOSTPORT_PORT_OPTIONAL, "::1", "", 0);
    assert_int_equal(hp("[::1]", S | TT_HOSTPORT_PORT_OPTIONAL, &a), 0);
    assert_int_equal(a.has_port, 0);
    assert_int_equal(hp("[::1]:1", S | TT_HOSTPORT_PORT_OPTIONAL, &a), 0);
    assert_int_equal(a.has_port, 1);
    assert_int_equal(hp("app", S, &a), TT_HOSTPORT_EFORM);
    assert_int_equal(hp("[::1]", S, &a), TT_HOSTPORT_EBRACKET);
    assert_int_equal(hp("[::1]x", S | TT_HOSTPORT_PORT_OPTIONAL, &a), TT_HOSTPORT_EBRACKET);

    assert_int_equal(hp("", 0, &a), TT_HOSTPORT_EEMPTY);
    assert_int_equal(hp("[::1]443", 0, &a), TT_HOSTPORT_EBRACKET);
    assert_int_equal(hp("[::1", 0, &a), TT_HOSTPORT_EBRACKET);
    assert_int_equal(hp("[]:1", TT_HOSTPORT_EMPTY_HOST, &a), TT_HOSTPORT_EBRACKET);
    assert_int_equal(hp("::1:443", 0, &a), TT_HOSTPORT_ECOLONS);
    assert_int_equal(hp("h:", S, &a), TT_HOSTPORT_EPORT);
    assert_int_equal(hp("h:0", S, &a), TT_HOSTPORT_EPORT);
    assert_int_equal(hp("h:65536", S, &a), TT_HOSTPORT_EPORT);
    assert_int_equal(hp("h:123456", S, &a), TT_HOSTPORT_EPORT);
    assert_int_equal(hp("h:+80", S, &a), TT_HOSTPORT_EPORT);
    assert_int_equal(hp("user@h:1", S, &a), TT_HOSTPORT_EHOST);
    assert_int_equal(hp("a/b:1", S, &a), TT_HOSTPORT_EHOST);
    assert_int_equal(hp("a b:1", S, &a), TT_HOSTPORT_EHOST);
    assert_int_equal(hp("user@h:1", 0, &a), TT_HOSTPORT_OK);

    /* host_max: a host of 63 bytes fits, 64 do not (p's "too long" is the
     * shape error, checked before the colons). */
    char h63[64], h64[65], s[80];
    memset(h63, 'h', 63);
    h63[63] = 0;
    memset(h64, 'h', 64);
    h64[64] = 0;
    snprintf(s, sizeof s, "%s:1", h63);
    assert_int_equal(hp(s, S, &a), TT_HOSTPORT_OK);
    snprintf(s, sizeof s, "%s:1", h64);
    assert_int_equal(hp(s, S, &a), TT_HOSTPORT_EFORM);
    snprintf(s, sizeof s, ":%s:1", h63);
    assert_int_equal(hp(s, 0, &a), TT_HOSTPORT_EFORM);
    snprintf(s, sizeof s, "[%s]:1", h63);
    assert_int_equal(hp(s, 0, &a), TT_HOSTPORT_OK);
    snprintf(s, sizeof s, "[%s]:1", h64);
    assert_int_equal(hp(s, 0, &a), TT_HOSTPORT_EBRACKET);
}

/* Pseudo-random inputs over the bytes that matter: whatever the flags, an
 * accepted address has its views inside the input, a host without the
 * separators, and (STRICT) a real port. */
static void test_hostport_random(void **state)
{
    (void)state;
    static const char alpha[] = "[]:0123456789ah@/ ";
    uint32_t x = 0x9e3779b9u;
    char s[16];
    for (int round = 0; round < 200000; round++) {
        x = x * 1664525u + 1013904223u;
        size_t len = (x >> 8) % sizeof s;
        for (size_t k = 0; k < len; k++) {
            x = x * 1664525u + 1013904223u;
            s[k] = alpha[(x >> 16) % (sizeof alpha - 1)];
        }
        unsigned flags = (x >> 4) & 7;
        struct tt_hostport a;
        int rc = tt_http1_hostport_parse(s, len, 8, flags, &a);
        assert_true(rc <= 0 && rc >= TT_HOSTPORT_EPORT);
        if (rc)
            continue;
        assert_true(a.host >= s && a.host + a.host_len <= s + len);
        assert_true(a.port >= s && a.port + a.port_len == s + len);
        assert_true(a.host_len <= 8);
        assert_true(a.host_len > 0 || (flags & TT_HOSTPORT_EMPTY_HOST));
        assert_true(a.has_port || (flags & TT_HOSTPORT_PORT_OPTIONAL));
        if (s[0] != '[')
            assert_null(memchr(a.host, ':', a.host_len));
        if (s[0] == '[')
            assert_null(memchr(a.host, ']', a.host_len));
        if (flags & TT_HOSTPORT_STRICT) {
            assert_null(memchr(a.host, '@', a.host_len));
            assert_null(memchr(a.host, '/', a.host_len));
            assert_null(memchr(a.host, ' ', a.host_len));
            if (a.has_port)
                assert_true(a.port_num >= 1 && a.port_num <= 65535);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_every_name), cmocka_unit_test(test_token_flags),
        cmocka_unit_test(test_token_random),     cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_response_head),    cmocka_unit_test(test_request_head),
        cmocka_unit_test(test_hostport),         cmocka_unit_test(test_hostport_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
