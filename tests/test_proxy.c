/*
 * bin/p's pure parts: flags and addresses, the tokens file (every malformed
 * case names its line), token checks (401 vs 403), routing, the HTTP/1.1 ->
 * HTTP/2 header mapping and pool selection.  The live paths (sockets, TLS,
 * llhttp, tunnels) are tested end to end by integration-tests/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/proxy.h"
#include "proto/text.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ---- flags and addresses ------------------------------------------------ */

static int parse_args(struct tt_px_config *cfg, char *err, size_t errlen, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "p";
    va_list ap;
    va_start(ap, errlen);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return tt_px_config_parse(cfg, argc, argv, err, errlen);
}

/* ---- HTTP/1.1 heads from HTTP/2 ones (final and 1xx) -------------------- */

static void test_h1_head(void **state)
{
    (void)state;
    const struct tt_header h103[] = {
        {":status", "103", 7, 3, 0},
        {"link", "</style.css>; rel=preload", 4, 25, 0},
        {"link", "</app.js>; rel=preload; as=script", 4, 33, 0},
    };
    char buf[512];
    size_t need = tt_http1_response_head_size(h103, 3);
    assert_true(need <= sizeof(buf));
    memset(buf, 'Z', sizeof(buf));
    char *end = tt_http1_response_head_put(buf, 103, h103, 3);
    const char want[] = "HTTP/1.1 103 Early Hints\r\n"
                        "link: </style.css>; rel=preload\r\n"
                        "link: </app.js>; rel=preload; as=script\r\n";
    assert_int_equal((size_t)(end - buf), sizeof(want) - 1);
    assert_memory_equal(buf, want, sizeof(want) - 1);
    assert_true((size_t)(end - buf) <= need);
    assert_int_equal(buf[end - buf], 'Z'); /* nothing past the end */

    /* 102 by name, an unnamed 1xx by class; a head with no field. */
    const struct tt_header h102[] = {{":status", "102", 7, 3, 0}};
    end = tt_http1_response_head_put(buf, 102, h102, 1);
    assert_int_equal((size_t)(end - buf), strlen("HTTP/1.1 102 Processing\r\n"));
    assert_memory_equal(buf, "HTTP/1.1 102 Processing\r\n", (size_t)(end - buf));
    assert_true((size_t)(end - buf) <= tt_http1_response_head_size(h102, 1));
    end = tt_http1_response_head_put(buf, 199, h102, 1);
    assert_memory_equal(buf, "HTTP/1.1 199 Informational\r\n", (size_t)(end - buf));

    /* A final head takes the same path: every regular field, empty values
     * kept, pseudo-headers never. */
    const struct tt_header h200[] = {
        {":status", "200", 7, 3, 0},
        {"content-type", "text/plain", 12, 10, 0},
        {"x-empty", "", 7, 0, 0},
    };
    end = tt_http1_response_head_put(buf, 200, h200, 3);
    const char want200[] = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-empty: \r\n";
    assert_int_equal((size_t)(end - buf), sizeof(want200) - 1);
    assert_memory_equal(buf, want200, sizeof(want200) - 1);
    assert_true((size_t)(end - buf) <= tt_http1_response_head_size(h200, 3));
}

static void test_defaults(void **state)
{
    (void)state;
    struct tt_px_config cfg;
    char err[256];
    assert_int_equal(parse_args(&cfg, err, sizeof(err), NULL), 0);
    assert_string_equal(cfg.listen, "0.0.0.0:8080");
    assert_string_equal(cfg.tunnel_listen, "0.0.0.0:7443");
    assert_string_equal(cfg.state_dir, "./tether-state");
    assert_int_equal(cfg.ping_interval_s, 15);
    assert_int_equal(cfg.ping_timeout_s, 10);
    assert_int_equal(cfg.max_tunnels, 10000);
    assert_null(cfg.domain);
    assert_null(cfg.tokens_file);
    struct sockaddr_in *in = (struct sockaddr_in *)&cfg.listen_addr.ss;
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 8080);
}

static void test_flags(void **state)
{
    (void)state;
    struct tt_px_config cfg;
    char err[256];
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--listen", "127.0.0.1:0",
                                "--tunnel-listen=[::1]:7000", "--domain", "example.com",
                                "--path-prefix", "/t/", "--default", "media", "--ping-interval",
                                "3", "--ping-timeout=2", "--max-tunnels", "5", "--log-level",
                                "debug", "--tokens", "/x", NULL),
                     0);
    assert_string_equal(cfg.domain, "example.com");
    assert_string_equal(cfg.path_prefix, "/t/");
    assert_string_equal(cfg.default_name, "media");
    assert_int_equal(cfg.ping_interval_s, 3);
    assert_int_equal(cfg.ping_timeout_s, 2);
    assert_int_equal(cfg.max_tunnels, 5);
    assert_string_equal(cfg.tokens_file, "/x");
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&cfg.tunnel_addr.ss;
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 7000);
}

static void test_bad_flags(void **state)
{
    (void)state;
    struct tt_px_config cfg;
    char err[256];
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--bogus", NULL), -1);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--listen", NULL), -1);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--ping-interval", "abc", NULL), -1);
    assert_non_null(strstr(err, "--ping-interval"));
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--ping-timeout", "-1", NULL), -1);
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--max-tunnels", "0", NULL), -1);
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--log-level", "loud", NULL), -1);
    assert_non_null(strstr(err, "--log-level"));
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--listen", "1.2.3.4", NULL), -1);
    assert_non_null(strstr(err, "--listen"));
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--listen", "1.2.3.4:99999", NULL), -1);
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--cert", "a.pem", NULL), -1);
    assert_non_null(strstr(err, "--key"));
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--path-prefix", "t/", NULL), -1);
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--default", "a b", NULL), -1);
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--domain", "ex ample", NULL), -1);
    /* one line: no newline in the reason */
    assert_null(strchr(err, '\n'));
}

static void test_https_flags(void **state)
{
    (void)state;
    struct tt_px_config cfg;
    char err[256];
    /* Off by default. */
    assert_int_equal(parse_args(&cfg, err, sizeof(err), NULL), 0);
    assert_null(cfg.https_listen);
    assert_int_equal(cfg.listen_off, 0);
    /* Both fronts; the tunnel identity when no --https-cert. */
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--https-listen", "127.0.0.1:8443", NULL),
                     0);
    assert_string_equal(cfg.https_listen, "127.0.0.1:8443");
    assert_null(cfg.https_cert);
    assert_int_equal(ntohs(((struct sockaddr_in *)&cfg.https_addr.ss)->sin_port), 8443);
    /* HTTPS only, with its own identity. */
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--listen", "off", "--https-listen=[::1]:443",
                                "--https-cert", "c.pem", "--https-key", "k.pem", NULL),
                     0);
    assert_int_equal(cfg.listen_off, 1);
    assert_int_equal(cfg.https_addr.ss.ss_family, AF_INET6);
    assert_string_equal(cfg.https_cert, "c.pem");
    assert_string_equal(cfg.https_key, "k.pem");
    /* "--https-listen off" is the default spelled out. */
    assert_int_equal(parse_args(&cfg, err, sizeof(err), "--https-listen", "off", NULL), 0);
    assert_null(cfg.https_listen);

    struct {
        const char *a[6];
        const char *want;
    } bad[] = {
        {{"--listen", "off"}, "add --https-listen"},
        {{"--listen", "off", "--https-listen", "off"}, "add --https-listen"},
        {{"--https-listen", "1.2.3.4"}, "--https-listen:"},
        {{"--https-listen", ":1", "--https-cert", "c.pem"}, "go together"},
        {{"--https-listen", ":1", "--https-key", "k.pem"}, "go together"},
        {{"--https-cert", "c.pem", "--https-key", "k.pem"}, "need --https-listen"},
        {{"--listen", "nope"}, "or 'off'"},
        {{"--https-listen"}, "needs a value"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_args(&cfg, err, sizeof(err), bad[i].a[0], bad[i].a[1], bad[i].a[2],
                                    bad[i].a[3], bad[i].a[4], bad[i].a[5]),
                         -1);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].want);
        assert_null(strchr(err, '\n'));
    }
}

/* The scheme a front passes on: :scheme, x-forwarded-proto, forwarded. */
static void test_map_https(void **state)
{
    (void)state;
    struct tt_px_field f[] = {{"X-Forwarded-Proto", "http", 17, 4}};
    struct tt_px_map_in in = {
        .method = "GET", .method_len = 3, .path = "/a", .path_len = 2,
        .host = "example.com", .host_len = 11, .scheme = "https", .client_ip = "127.0.0.1",
        .f = f, .n = 1,
    };
    struct tt_header h[32];
    char scratch[1024];
    struct tt_px_map_out out = {.hdrs = h, .cap = 32, .scratch = scratch, .scratch_cap = 1024};
    assert_int_equal(tt_px_map_request(&in, &out), 0);
    int scheme = 0, xfp = 0, fwd = 0;
    for (size_t i = 0; i < out.count; i++) {
        const struct tt_header *x = &h[i];
        if (x->name_len == 7 && !memcmp(x->name, ":scheme", 7)) {
            assert_int_equal(x->value_len, 5);
            assert_memory_equal(x->value, "https", 5);
            scheme++;
        }
        if (x->name_len == 17 && !memcmp(x->name, "x-forwarded-proto", 17)) {
            /* ours, not the client's claim */
            assert_int_equal(x->value_len, 5);
            assert_memory_equal(x->value, "https", 5);
            xfp++;
        }
        if (x->name_len == 9 && !memcmp(x->name, "forwarded", 9)) {
            assert_int_equal(x->value_len, strlen("for=127.0.0.1;host=\"example.com\";proto=https"));
            assert_memory_equal(x->value, "for=127.0.0.1;host=\"example.com\";proto=https",
                                x->value_len);
            fwd++;
        }
    }
    assert_int_equal(scheme, 1);
    assert_int_equal(xfp, 1);
    assert_int_equal(fwd, 1);
}

static void test_addr(void **state)
{
    (void)state;
    struct tt_px_addr a;
    char err[128];
    assert_int_equal(tt_px_parse_addr(":9000", &a, err, sizeof(err)), 0);
    assert_int_equal(((struct sockaddr_in *)&a.ss)->sin_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 9000);
    assert_int_equal(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(tt_px_parse_addr("127.0.0.1:80", &a, err, sizeof(err)), 0);
    assert_int_equal(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(tt_px_parse_addr("[::1]:443", &a, err, sizeof(err)), 0);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(tt_px_parse_addr("::1:443", &a, err, sizeof(err)), -1);
    assert_int_equal(tt_px_parse_addr("[::1]443", &a, err, sizeof(err)), -1);
    assert_int_equal(tt_px_parse_addr("127.0.0.1:", &a, err, sizeof(err)), -1);
    assert_int_equal(tt_px_parse_addr("127.0.0.1:x", &a, err, sizeof(err)), -1);
    assert_int_equal(tt_px_parse_addr("", &a, err, sizeof(err)), -1);
}

/* ---- tokens file -------------------------------------------------------- */

static void expect_tokens_error(const char *text, const char *want)
{
    struct tt_px_tokens t;
    char err[256];
    assert_int_equal(tt_px_tokens_parse(&t, text, strlen(text), "T", err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
    assert_null(t.v);
}

static void test_tokens_ok(void **state)
{
    (void)state;
    const char *text = "# comment\n\n  media  0123456789abcdef  # trailing comment\n"
                       "\tcam\tsecret-token-2\r\nlast token-without-newline";
    struct tt_px_tokens t;
    char err[256];
    assert_int_equal(tt_px_tokens_parse(&t, text, strlen(text), "T", err, sizeof(err)), 0);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.v[0].name, "media");
    assert_string_equal(t.v[1].name, "cam");
    /* Plain tokens are read, hashed, and counted for the warning. */
    assert_int_equal(t.n_plain, 3);
    assert_int_equal(t.first_plain_line, 3);
    uint8_t h[32];
    tt_sha256("secret-token-2", 14, h);
    assert_memory_equal(t.v[1].hash, h, 32);
    assert_true(t.v[1].plain);

    const uint8_t *good = (const uint8_t *)"0123456789abcdef";
    assert_int_equal(tt_px_tokens_check(&t, "media", 5, good, 16), 0);
    assert_int_equal(tt_px_tokens_check(&t, "MEDIA", 5, good, 16), 0);
    /* a valid token for another name: 403 */
    assert_int_equal(tt_px_tokens_check(&t, "cam", 3, good, 16), 403);
    /* wrong token, unknown name: 401 */
    assert_int_equal(tt_px_tokens_check(&t, "media", 5, (const uint8_t *)"0123456789abcdeX", 16),
                     401);
    assert_int_equal(tt_px_tokens_check(&t, "nobody", 6, (const uint8_t *)"whatever", 8), 401);
    assert_int_equal(tt_px_tokens_check(&t, "media", 5, good, 15), 401);
    tt_px_tokens_free(&t);
}

/* The calls= column: who a name's forward link may call. */
static void test_tokens_calls(void **state)
{
    (void)state;
    const char *text = "laptop 0123456789abcdef calls=media,svc\n"
                       "hub fedcba9876543210 calls=*\nmedia 1111222233334444\n";
    struct tt_px_tokens t;
    char err[256];
    assert_int_equal(tt_px_tokens_parse(&t, text, strlen(text), "T", err, sizeof(err)), 0);
    const struct tt_px_token *lap = tt_px_tokens_find(&t, "LAPTOP", 6);
    assert_non_null(lap);
    assert_true(tt_px_token_may_call(lap, "media", 5));
    assert_true(tt_px_token_may_call(lap, "SVC", 3));
    assert_false(tt_px_token_may_call(lap, "med", 3));
    assert_false(tt_px_token_may_call(lap, "other", 5));
    assert_true(tt_px_token_may_call(tt_px_tokens_find(&t, "hub", 3), "anything", 8));
    assert_false(tt_px_token_may_call(tt_px_tokens_find(&t, "media", 5), "laptop", 6));
    assert_null(tt_px_tokens_find(&t, "nobody", 6));
    tt_px_tokens_free(&t);
    expect_tokens_error("a 12345678 calls=\n", "T:1: bad calls= list");
    expect_tokens_error("a 12345678 calls=x,,y\n", "T:1: bad calls= list");
    expect_tokens_error("a 12345678 call=x\n", "T:1: too many fields");
    expect_tokens_error("a 12345678 calls=x y\n", "T:1: too many fields");
}

/* p's own answers to a gRPC request: the grpc-status saying the same, the
 * text percent-encoded. */
static void test_grpc_local(void **state)
{
    (void)state;
    char m[64];
    assert_int_equal(tt_px_grpc_local(403, "may not call 'x' (100%)\n", m, sizeof(m)), 7);
    assert_string_equal(m, "may not call 'x' (100%25)");
    assert_int_equal(tt_px_grpc_local(503, "busy\n", m, sizeof(m)), 14);
    assert_int_equal(tt_px_grpc_local(400, "bad", m, sizeof(m)), 3);
    assert_int_equal(tt_px_grpc_local(500, "x", m, sizeof(m)), 13);
    assert_int_equal(tt_px_grpc_local(504, "x", m, sizeof(m)), 4);
    assert_int_equal(tt_px_grpc_local(503, "caf\xc3\xa9", m, sizeof(m)), 14);
    assert_string_equal(m, "caf%C3%A9");
    char small[6];
    (void)tt_px_grpc_local(403, "abcdefghij", small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
}

/* What p writes (issue 12 B): NAME sha256:HEX, the hash of the token; the
 * token checks against it in constant time, the hash itself does not. */
static void test_tokens_hashed(void **state)
{
    (void)state;
    const char *tok = "c1856ece6039670d526f756bf2654bfd86370ffc0b5b443c9803a4787394ea5c";
    uint8_t h[32];
    tt_sha256(tok, strlen(tok), h);
    char text[512], hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(text, sizeof(text), "# made by p\nmedia sha256:%s calls=svc\nold plain-token-1\n", hex);
    struct tt_px_tokens t;
    char err[256];
    assert_int_equal(tt_px_tokens_parse(&t, text, strlen(text), "T", err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    assert_false(t.v[0].plain);
    assert_int_equal(t.v[0].line, 2);
    assert_int_equal(t.n_plain, 1);
    assert_int_equal(t.first_plain_line, 3);
    assert_int_equal(tt_px_tokens_check(&t, "media", 5, (const uint8_t *)tok, strlen(tok)), 0);
    assert_int_equal(tt_px_tokens_check(&t, "old", 3, (const uint8_t *)tok, strlen(tok)), 403);
    char hashed[80];
    snprintf(hashed, sizeof(hashed), "sha256:%s", hex);
    /* Knowing the file is not knowing the token. */
    assert_int_equal(tt_px_tokens_check(&t, "media", 5, (const uint8_t *)hashed, strlen(hashed)), 401);
    assert_int_equal(tt_px_tokens_check(&t, "old", 3, (const uint8_t *)"plain-token-1", 13), 0);
    assert_true(tt_px_tokens_still(&t, "MEDIA", h));
    h[0] ^= 1;
    assert_false(tt_px_tokens_still(&t, "media", h));
    assert_false(tt_px_tokens_still(&t, "nobody", h));
    assert_true(tt_px_token_may_call(tt_px_tokens_find(&t, "media", 5), "svc", 3));
    tt_px_tokens_free(&t);
    /* A file with no line left (its last name revoked) refuses everyone. */
    assert_int_equal(tt_px_tokens_parse(&t, "# none\n", 7, "T", err, sizeof(err)), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(tt_px_tokens_check(&t, "media", 5, (const uint8_t *)tok, strlen(tok)), 401);
    tt_px_tokens_free(&t);
}

static void test_tokens_bad(void **state)
{
    (void)state;
    expect_tokens_error("media\n", "T:1: missing token");
    expect_tokens_error("# c\n\nmedia tok12345 extra\n", "T:3: too many fields");
    expect_tokens_error("a b\n", "T:1: token too short");
    expect_tokens_error("ok 12345678\nbad/name 12345678x\n", "T:2: bad name");
    expect_tokens_error("a 12345678\na 87654321\n", "T:2: name a appears twice");
    expect_tokens_error("a 12345678\nb 12345678\n", "T:2: this token is already given to name a");
    expect_tokens_error("a 1234567\x01x\n", "T:1: token has a character");
    expect_tokens_error("a sha256:0123\n", "T:1: sha256: wants 64 hex digits");
    expect_tokens_error("a sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",
                        "T:1: sha256: wants 64 hex digits");
    /* A plain token and the hash of the same token: one token, two names. */
    expect_tokens_error("a 0123456789abcdef\n"
                        "b sha256:9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f\n",
                        "T:2: this token is already given to name a");
    char big[2000];
    memset(big, 'x', sizeof(big));
    memcpy(big, "n ", 2);
    big[sizeof(big) - 1] = 0;
    expect_tokens_error(big, "T:1: token too long");
    char nul[] = "a 12345678\nb 1234\0 5678\n";
    struct tt_px_tokens t;
    char err[256];
    assert_int_equal(tt_px_tokens_parse(&t, nul, sizeof(nul) - 1, "T", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "T:2: NUL"));
}

/* The c command p prints (issue 12 C.1, C.3): a token file, never the
 * token; a wildcard listener gets loopback and a line about the public
 * name. */
static void test_c_command(void **state)
{
    (void)state;
    char out[1024];
    int n = tt_px_c_command(out, sizeof(out), "127.0.0.1:7443", "media", "/s/c-media.token",
                            "sha256:ab");
    assert_true(n > 0);
    assert_string_equal(out, "bin/c --proxy 127.0.0.1:7443 --name media --token-file "
                             "/s/c-media.token --fingerprint sha256:ab --root DIR\n");
    n = tt_px_c_command(out, sizeof(out), "0.0.0.0:7443", "media", "/s/c-media.token", "sha256:ab");
    assert_true(n > 0);
    assert_non_null(strstr(out, "--proxy 127.0.0.1:7443 "));
    const char *second = strchr(out, '\n');
    assert_non_null(second);
    assert_non_null(strstr(second, "public name"));
    assert_null(strstr(second, "--proxy"));
    n = tt_px_c_command(out, sizeof(out), "[::]:7443", "m", "/t", "sha256:ab");
    assert_non_null(strstr(out, "--proxy 127.0.0.1:7443 "));
    assert_int_equal(tt_px_c_command(out, 20, "127.0.0.1:7443", "m", "/t", "sha256:ab"), -1);
}

static void test_name_valid(void **state)
{
    (void)state;
    assert_true(tt_px_name_valid("media", 5));
    assert_true(tt_px_name_valid("a-b_C9", 6));
    assert_false(tt_px_name_valid("", 0));
    assert_false(tt_px_name_valid("a.b", 3));
    assert_false(tt_px_name_valid("a/b", 3));
    assert_false(tt_px_name_valid("a b", 3));
    char n[70];
    memset(n, 'a', sizeof(n));
    assert_true(tt_px_name_valid(n, 63));
    assert_false(tt_px_name_valid(n, 64));
}

/* ---- routing ------------------------------------------------------------- */

static struct tt_px_route route(const struct tt_px_route_cfg *c, const char *host,
                                const char *path)
{
    struct tt_px_route r;
    tt_px_route(c, host, host ? strlen(host) : 0, path, strlen(path), &r);
    return r;
}

#define ASSERT_NAME(r, want)                                                                    \
    do {                                                                                        \
        assert_non_null((r).name);                                                              \
        assert_int_equal((r).name_len, strlen(want));                                           \
        assert_memory_equal((r).name, want, strlen(want));                                      \
    } while (0)

#define ASSERT_PATH(r, want)                                                                    \
    do {                                                                                        \
        assert_int_equal((r).path_len, strlen(want));                                           \
        assert_memory_equal((r).path, want, strlen(want));                                      \
    } while (0)

static void test_route(void **state)
{
    (void)state;
    struct tt_px_route_cfg c = {.domain = "example.com", .path_prefix = "/t/"};
    struct tt_px_route r = route(&c, "media.example.com", "/a/b?x=1");
    ASSERT_NAME(r, "media");
    ASSERT_PATH(r, "/a/b?x=1");
    assert_false(r.stripped);
    r = route(&c, "Media.EXAMPLE.com:8080", "/");
    ASSERT_NAME(r, "Media");
    r = route(&c, "media.example.com.", "/");
    ASSERT_NAME(r, "media");
    /* two labels, or the bare domain: not a name */
    r = route(&c, "a.b.example.com", "/");
    assert_null(r.name);
    r = route(&c, "example.com", "/");
    assert_null(r.name);
    r = route(&c, "notexample.com", "/");
    assert_null(r.name);

    r = route(&c, "other.host", "/t/cam/live/x.mp4");
    ASSERT_NAME(r, "cam");
    ASSERT_PATH(r, "/live/x.mp4");
    assert_true(r.stripped);
    r = route(&c, "other.host", "/t/cam");
    ASSERT_NAME(r, "cam");
    ASSERT_PATH(r, "");
    assert_true(r.by_path_root);
    r = route(&c, "other.host", "/t/cam?q=1");
    ASSERT_NAME(r, "cam");
    ASSERT_PATH(r, "?q=1");
    r = route(&c, "other.host", "/t/");
    assert_null(r.name);
    r = route(&c, "other.host", "/tx/cam");
    assert_null(r.name);

    c.default_name = "dflt";
    c.single_name = "only";
    r = route(&c, "other.host", "/x");
    ASSERT_NAME(r, "dflt");
    ASSERT_PATH(r, "/x");
    c.default_name = NULL;
    r = route(&c, NULL, "/x");
    ASSERT_NAME(r, "only");
    c.single_name = NULL;
    r = route(&c, "other.host", "/x");
    assert_null(r.name);
}

/* ---- header mapping --------------------------------------------------------- */

struct mapped {
    struct tt_header h[64];
    char scratch[4096];
    struct tt_px_map_out out;
};

static int map(struct mapped *m, const char *path, const char *host, const char *ip,
               const char *prefix, const struct tt_px_field *f, size_t n)
{
    struct tt_px_map_in in = {
        .method = "GET", .method_len = 3,
        .path = path, .path_len = strlen(path),
        .host = host, .host_len = host ? strlen(host) : 0,
        .scheme = "http", .client_ip = ip,
        .prefix = prefix, .prefix_len = prefix ? strlen(prefix) : 0,
        .f = f, .n = n,
    };
    memset(&m->out, 0, sizeof(m->out));
    m->out.hdrs = m->h;
    m->out.cap = 64;
    m->out.scratch = m->scratch;
    m->out.scratch_cap = sizeof(m->scratch);
    return tt_px_map_request(&in, &m->out);
}

static const char *find(const struct mapped *m, const char *name, int *count)
{
    const char *v = NULL;
    static char buf[1024];
    int c = 0;
    for (size_t i = 0; i < m->out.count; i++) {
        const struct tt_header *h = &m->h[i];
        if (h->name_len == strlen(name) && memcmp(h->name, name, h->name_len) == 0) {
            c++;
            snprintf(buf, sizeof(buf), "%.*s", (int)h->value_len, h->value);
            v = buf;
        }
    }
    if (count)
        *count = c;
    return v;
}

#define F(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1}

static void test_map_basic(void **state)
{
    (void)state;
    struct mapped m;
    struct tt_px_field f[] = {
        F("Host", "media.example.com"),
        F("User-Agent", "curl/8"),
        F("Connection", "keep-alive, X-Secret-Hop"),
        F("Keep-Alive", "timeout=5"),
        F("X-Secret-Hop", "1"),
        F("Proxy-Connection", "close"),
        F("Transfer-Encoding", "chunked"),
        F("Upgrade", "websocket"),
        F("TE", "gzip"),
        F("Accept", "*/*"),
    };
    assert_int_equal(map(&m, "/a?b", "media.example.com", "10.0.0.7", NULL, f, 10), 0);
    /* pseudo-headers first */
    assert_int_equal(m.h[0].name_len, 7);
    assert_memory_equal(m.h[0].name, ":method", 7);
    assert_memory_equal(m.h[1].name, ":scheme", 7);
    assert_memory_equal(m.h[2].name, ":authority", 10);
    assert_memory_equal(m.h[3].name, ":path", 5);
    assert_string_equal(find(&m, ":path", NULL), "/a?b");
    assert_string_equal(find(&m, ":authority", NULL), "media.example.com");
    assert_string_equal(find(&m, "user-agent", NULL), "curl/8"); /* lowercased */
    assert_string_equal(find(&m, "accept", NULL), "*/*");
    const char *gone[] = {"host", "connection", "keep-alive", "x-secret-hop", "proxy-connection",
                          "transfer-encoding", "upgrade", "te", "Host", "User-Agent"};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        if (find(&m, gone[i], NULL))
            fail_msg("%s was forwarded", gone[i]);
    assert_string_equal(find(&m, "x-forwarded-for", NULL), "10.0.0.7");
    assert_string_equal(find(&m, "x-forwarded-proto", NULL), "http");
    assert_string_equal(find(&m, "x-forwarded-host", NULL), "media.example.com");
    assert_string_equal(find(&m, "forwarded", NULL),
                        "for=10.0.0.7;host=\"media.example.com\";proto=http");
    assert_null(find(&m, "x-forwarded-prefix", NULL));
    assert_false(m.out.te_trailers);
    assert_false(m.out.expect_continue);
    /* Nine Connection fields: refused whole (431), never a field the
     * ninth names forwarded (fuzz_request_map). */
    struct tt_px_field many[10];
    for (int i = 0; i < 9; i++)
        many[i] = (struct tt_px_field)F("Connection", "keep-alive");
    many[8] = (struct tt_px_field)F("Connection", "X-Secret-Hop");
    many[9] = (struct tt_px_field)F("X-Secret-Hop", "1");
    struct mapped m9;
    assert_int_equal(map(&m9, "/", "h", "10.0.0.7", NULL, many, 10), -1);
    /* no upper case in any name */
    for (size_t i = 0; i < m.out.count; i++)
        for (size_t k = 0; k < m.h[i].name_len; k++)
            assert_false(m.h[i].name[k] >= 'A' && m.h[i].name[k] <= 'Z');
}

/* Names with '_' are dropped unless asked for: a CGI or WSGI app reads
 * Transfer_Encoding as Transfer-Encoding (nginx drops them too). */
static void test_map_underscores(void **state)
{
    (void)state;
    struct tt_px_field f[] = {
        F("Transfer_Encoding", "chunked"),
        F("X_Forwarded_For", "6.6.6.6"),
        F("X-Plain", "1"),
    };
    struct mapped m;
    assert_int_equal(map(&m, "/", "h", "10.0.0.7", NULL, f, 3), 0);
    assert_null(find(&m, "transfer_encoding", NULL));
    assert_null(find(&m, "x_forwarded_for", NULL));
    assert_string_equal(find(&m, "x-plain", NULL), "1");
    assert_string_equal(find(&m, "x-forwarded-for", NULL), "10.0.0.7");
    assert_int_equal(m.out.dropped, 2);
    struct tt_px_map_in in = {
        .method = "GET", .method_len = 3, .path = "/", .path_len = 1, .host = "h",
        .host_len = 1, .scheme = "http", .client_ip = "10.0.0.7", .f = f, .n = 3,
        .keep_underscores = 1,
    };
    memset(&m.out, 0, sizeof(m.out));
    m.out.hdrs = m.h;
    m.out.cap = 64;
    m.out.scratch = m.scratch;
    m.out.scratch_cap = sizeof(m.scratch);
    assert_int_equal(tt_px_map_request(&in, &m.out), 0);
    assert_string_equal(find(&m, "x_forwarded_for", NULL), "6.6.6.6");
    assert_int_equal(m.out.dropped, 0);
}

/* Tether-Caller is p's to write: a client's is dropped, a call's added. */
static void test_map_caller(void **state)
{
    (void)state;
    struct tt_px_field f[] = {F("Tether-Caller", "admin"), F("X-Plain", "1")};
    struct mapped m;
    assert_int_equal(map(&m, "/", "h", "10.0.0.7", NULL, f, 2), 0);
    assert_null(find(&m, "tether-caller", NULL));
    struct tt_px_map_in in = {
        .method = "GET", .method_len = 3, .path = "/", .path_len = 1, .host = "h",
        .host_len = 1, .scheme = "https", .client_ip = "10.0.0.7", .f = f, .n = 2,
        .caller = "laptop",
    };
    memset(&m.out, 0, sizeof(m.out));
    m.out.hdrs = m.h;
    m.out.cap = 64;
    m.out.scratch = m.scratch;
    m.out.scratch_cap = sizeof(m.scratch);
    assert_int_equal(tt_px_map_request(&in, &m.out), 0);
    assert_string_equal(find(&m, "tether-caller", NULL), "laptop");
    size_t n = 0;
    for (size_t i = 0; i < m.out.count; i++)
        n += m.out.hdrs[i].name_len == 13 && !memcmp(m.out.hdrs[i].name, "tether-caller", 13);
    assert_int_equal(n, 1);
}

static void test_fields_drop(void **state)
{
    (void)state;
    struct tt_header h[3] = {{"x-a", "1", 3, 1, 0}, {"Tether-Caller", "admin", 13, 5, 0},
                             {"x-b", "2", 3, 1, 0}};
    assert_int_equal(tt_px_fields_drop(h, 3, "tether-caller"), 2);
    assert_string_equal(h[0].name, "x-a");
    assert_string_equal(h[1].name, "x-b");
    assert_int_equal(tt_px_fields_drop(h, 2, "tether-caller"), 2);
}

/* RFC 9113 §8.5: a CONNECT (p --tcp-listen) carries :method and
 * :authority only. */
static void test_map_connect(void **state)
{
    (void)state;
    struct mapped m;
    struct tt_px_map_in in = {
        .method = "CONNECT", .method_len = 7, .path = "", .path_len = 0, .host = "ssh",
        .host_len = 3, .scheme = "http", .client_ip = "10.0.0.7",
    };
    memset(&m.out, 0, sizeof(m.out));
    m.out.hdrs = m.h;
    m.out.cap = 64;
    m.out.scratch = m.scratch;
    m.out.scratch_cap = sizeof(m.scratch);
    assert_int_equal(tt_px_map_request(&in, &m.out), 0);
    assert_string_equal(find(&m, ":method", NULL), "CONNECT");
    assert_string_equal(find(&m, ":authority", NULL), "ssh");
    assert_null(find(&m, ":scheme", NULL));
    assert_null(find(&m, ":path", NULL));
}

/* A WebSocket: extended CONNECT (RFC 8441 §4) keeps :scheme and :path and
 * the client's Sec-WebSocket-* fields; Upgrade and Connection do not pass. */
static void test_map_extended_connect(void **state)
{
    (void)state;
    struct mapped m;
    static const struct tt_px_field f[] = {
        F("Upgrade", "websocket"), F("Connection", "Upgrade"),
        F("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), F("Sec-WebSocket-Version", "13"),
        F("Sec-WebSocket-Protocol", "chat"),
    };
    struct tt_px_map_in in = {
        .method = "CONNECT", .method_len = 7, .path = "/chat", .path_len = 5, .host = "media",
        .host_len = 5, .scheme = "https", .client_ip = "10.0.0.7", .f = f, .n = 5,
        .protocol = "websocket",
    };
    memset(&m.out, 0, sizeof(m.out));
    m.out.hdrs = m.h;
    m.out.cap = 64;
    m.out.scratch = m.scratch;
    m.out.scratch_cap = sizeof(m.scratch);
    assert_int_equal(tt_px_map_request(&in, &m.out), 0);
    assert_string_equal(find(&m, ":method", NULL), "CONNECT");
    assert_string_equal(find(&m, ":protocol", NULL), "websocket");
    assert_string_equal(find(&m, ":scheme", NULL), "https");
    assert_string_equal(find(&m, ":path", NULL), "/chat");
    assert_string_equal(find(&m, ":authority", NULL), "media");
    assert_string_equal(find(&m, "sec-websocket-key", NULL), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(find(&m, "sec-websocket-protocol", NULL), "chat");
    assert_null(find(&m, "upgrade", NULL));
    assert_null(find(&m, "connection", NULL));
    /* Pseudo-headers first, in the codec's order of checks. */
    assert_true(m.h[0].name[0] == ':' && m.h[4].name[0] == ':' && m.h[5].name[0] != ':');
}

/* A call's target: its :authority without port or ".DOMAIN". */
static void test_call_target(void **state)
{
    (void)state;
    size_t n;
    assert_true(tt_px_call_target(NULL, "media:8080", 10, &n));
    assert_int_equal(n, 5);
    assert_true(tt_px_call_target("example.com", "media.example.com", 17, &n));
    assert_int_equal(n, 5);
    assert_true(tt_px_call_target("example.com", "svc", 3, &n));
    assert_int_equal(n, 3);
    assert_true(tt_px_call_target("example.com", "media.example.com.:80", 21, &n));
    assert_int_equal(n, 5);
    assert_true(tt_px_call_target(NULL, "media.", 6, &n));
    assert_int_equal(n, 5);
    assert_false(tt_px_call_target(NULL, "[::1]:80", 8, &n));
    assert_false(tt_px_call_target(NULL, "", 0, &n));
    assert_false(tt_px_call_target(NULL, "a.b", 3, &n));
}

static void test_map_forwarded_chain(void **state)
{
    (void)state;
    struct mapped m;
    struct tt_px_field f[] = {
        F("X-Forwarded-For", "1.1.1.1"),
        F("Accept", "x"),
        F("x-forwarded-for", "2.2.2.2, 3.3.3.3"),
        F("Forwarded", "for=1.1.1.1"),
        F("X-Forwarded-Proto", "https"),
        F("X-Forwarded-Host", "spoof"),
        F("X-Forwarded-Prefix", "/spoof"),
        F("TE", "trailers, deflate;q=0.5"),
        F("Expect", "100-continue"),
    };
    int count;
    assert_int_equal(map(&m, "/x", "h", "::1", "/t/cam", f, 9), 0);
    assert_string_equal(find(&m, "x-forwarded-for", &count), "1.1.1.1, 2.2.2.2, 3.3.3.3, ::1");
    assert_int_equal(count, 1);
    assert_string_equal(find(&m, "forwarded", &count),
                        "for=1.1.1.1, for=\"[::1]\";host=\"h\";proto=http");
    assert_int_equal(count, 1);
    assert_string_equal(find(&m, "x-forwarded-proto", &count), "http");
    assert_int_equal(count, 1);
    assert_string_equal(find(&m, "x-forwarded-host", &count), "h");
    assert_int_equal(count, 1);
    assert_string_equal(find(&m, "x-forwarded-prefix", &count), "/t/cam");
    assert_int_equal(count, 1);
    assert_string_equal(find(&m, "te", &count), "trailers");
    assert_int_equal(count, 1);
    assert_true(m.out.te_trailers);
    assert_true(m.out.expect_continue);
    assert_null(find(&m, "expect", NULL));
}

static void test_map_root_path_and_room(void **state)
{
    (void)state;
    struct mapped m;
    assert_int_equal(map(&m, "?q=1", "h", "1.2.3.4", "/t/x", NULL, 0), 0);
    assert_string_equal(find(&m, ":path", NULL), "/?q=1");
    assert_int_equal(map(&m, "", "h", "1.2.3.4", "/t/x", NULL, 0), 0);
    assert_string_equal(find(&m, ":path", NULL), "/");
    /* out of room: an error, not a truncated list */
    struct tt_px_field many[80];
    for (int i = 0; i < 80; i++)
        many[i] = (struct tt_px_field)F("X-A", "1");
    assert_int_equal(map(&m, "/", "h", "1.2.3.4", NULL, many, 80), -1);
}

static void test_list_has(void **state)
{
    (void)state;
    assert_true(tt_list_has("close", 5, "close", 5));
    assert_true(tt_list_has(" Keep-Alive ,  Upgrade", 22, "upgrade", 7));
    assert_true(tt_list_has("gzip, trailers;q=1", 18, "trailers", 8));
    assert_false(tt_list_has("closed", 6, "close", 5));
    assert_false(tt_list_has("", 0, "close", 5));
    /* The walker: empty elements skipped, whitespace trimmed. */
    const char *list = " gzip ,, chunked\t,", *el;
    size_t pos = 0, n;
    assert_true(tt_list_next(list, strlen(list), &pos, &el, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(el, "gzip", 4);
    assert_true(tt_list_next(list, strlen(list), &pos, &el, &n));
    assert_int_equal(n, 7);
    assert_memory_equal(el, "chunked", 7);
    assert_false(tt_list_next(list, strlen(list), &pos, &el, &n));
}

static void test_expect(void **state)
{
    (void)state;
    struct mapped m;
    struct tt_px_field e1[] = {F("Expect", "100-Continue")};
    assert_int_equal(map(&m, "/", "h", "1.2.3.4", NULL, e1, 1), 0);
    assert_true(m.out.expect_continue);
    assert_false(m.out.expect_other);
    struct tt_px_field e2[] = {F("Expect", "teapot")};
    assert_int_equal(map(&m, "/", "h", "1.2.3.4", NULL, e2, 1), 0);
    assert_false(m.out.expect_continue);
    assert_true(m.out.expect_other);
    struct tt_px_field e3[] = {F("Expect", "100-continue , foo=1"), F("Expect", "")};
    assert_int_equal(map(&m, "/", "h", "1.2.3.4", NULL, e3, 2), 0);
    assert_true(m.out.expect_continue);
    assert_true(m.out.expect_other);
    assert_null(find(&m, "expect", NULL));
}

static int av(const char *s) { return tt_px_authority_valid(s, strlen(s)); }

static void test_authority_valid(void **state)
{
    (void)state;
    const char *good[] = {"", "a", "example.com", "example.com:8080", "example.com:",
                          "EX-am_ple.com.", "127.0.0.1", "127.0.0.1:65535", "[::1]",
                          "[::1]:80", "[2001:db8::7]", "[v1.fe80::a+en1]", "ex%41mple",
                          "a!$&'()*+,;=~b"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!av(good[i]))
            fail_msg("'%s' refused", good[i]);
    const char *bad[] = {"a b", "a\tb", "evil.example/@x", "u@example.com", "u:pw@h",
                         "h?x", "h#x", "h:8o", "h:65536", "h:123456", "h:1:2", "[::1",
                         "[::1]x", "[::g]", "[]", "[v.x]", "ex%4", "ex%zzmple", "a\"b",
                         "a<b", "a\\b", "h\x80", "a{b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (av(bad[i]))
            fail_msg("'%s' accepted", bad[i]);
    assert_false(tt_px_authority_valid("a\0b", 3));
    /* Found by fuzz_request_map: a NUL inside brackets ended the address
     * inet_pton read, so "[::1<NUL><ctl>]" passed as "[::1]". */
    assert_false(tt_px_authority_valid("[::1\0\x05]:443", 12));
}

static void test_target_split(void **state)
{
    (void)state;
    struct tt_px_target t;
#define SPLIT(s) tt_px_target_split(s, strlen(s), &t)
    assert_int_equal(SPLIT("/a?b"), 0);
    assert_null(t.authority);
    assert_int_equal(t.path_len, 4);
    assert_int_equal(SPLIT("*"), 0);
    assert_null(t.authority);
    assert_int_equal(SPLIT("http://example.com/x?y"), 0);
    assert_int_equal(t.authority_len, 11);
    assert_memory_equal(t.authority, "example.com", 11);
    assert_int_equal(t.path_len, 4);
    assert_memory_equal(t.path, "/x?y", 4);
    assert_int_equal(SPLIT("HTTPS://example.com:8443"), 0);
    assert_memory_equal(t.authority, "example.com:8443", 16);
    assert_int_equal(t.path_len, 0);
    assert_int_equal(SPLIT("http://h?q=1"), 0);
    assert_int_equal(t.authority_len, 1);
    assert_memory_equal(t.path, "?q=1", 4);
    assert_int_equal(SPLIT("http://[::1]:80/"), 0);
    assert_int_equal(t.authority_len, 8); /* [::1]:80 */
    const char *bad[] = {"/a#b", "http://h/#x", "http://u:pw@h/", "http:///x", "http://:80/",
                         "http://a b/", "ftp://h/x", "h/x", "", "**", "http:/h/x", "http://h:x/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (SPLIT(bad[i]) != -1)
            fail_msg("'%s' accepted", bad[i]);
#undef SPLIT
}

/* ---- pools ------------------------------------------------------------------- */

static struct tt_px_tunnel *mk(const char *name)
{
    static struct tt_px_tunnel ts[16];
    static int next;
    struct tt_px_tunnel *t = &ts[next++ % 16];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    return t;
}

/* Rendezvous hashing: a key stays on its member while that member is
 * there; when one goes, only its keys move, spread over the others. */
static void test_affinity_moves_only_lost_keys(void **state)
{
    (void)state;
    struct tt_px_registry r;
    tt_px_registry_init(&r);
    struct tt_px_tunnel *m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = mk("media");
        m[i]->serial = 100 + (uint64_t)i;
        assert_int_equal(tt_px_registry_add(&r, m[i]), i + 1);
    }
    struct tt_px_pool *p = tt_px_registry_find(&r, "media", 5);
    enum { KEYS = 300 };
    struct tt_px_tunnel *before[KEYS];
    int count[3] = {0};
    char k[24];
    for (int i = 0; i < KEYS; i++) {
        snprintf(k, sizeof(k), "user-%d", i);
        uint64_t key = tt_px_affinity_key(k, strlen(k));
        before[i] = tt_px_pool_pick_affine(p, NULL, key, 0);
        assert_ptr_equal(tt_px_pool_pick_affine(p, NULL, key, 0), before[i]); /* stable */
        count[before[i] == m[0] ? 0 : before[i] == m[1] ? 1 : 2]++;
    }
    for (int i = 0; i < 3; i++)
        assert_true(count[i] > KEYS / 6); /* each member gets a fair share */
    tt_px_registry_remove(&r, m[1]);
    int moved = 0, went_to[3] = {0};
    for (int i = 0; i < KEYS; i++) {
        snprintf(k, sizeof(k), "user-%d", i);
        struct tt_px_tunnel *t = tt_px_pool_pick_affine(p, NULL, tt_px_affinity_key(k, strlen(k)), 0);
        assert_true(t == m[0] || t == m[2]);
        if (before[i] != m[1]) {
            assert_ptr_equal(t, before[i]); /* the others' keys stay */
        } else {
            moved++;
            went_to[t == m[0] ? 0 : 2]++;
        }
    }
    assert_int_equal(moved, count[1]);
    assert_true(went_to[0] > 0 && went_to[2] > 0);
    tt_px_registry_free(&r);
}

static void test_pool(void **state)
{
    (void)state;
    struct tt_px_registry r;
    tt_px_registry_init(&r);
    struct tt_px_tunnel *a = mk("media"), *b = mk("media"), *c = mk("Media"), *o = mk("other");
    assert_int_equal(tt_px_registry_add(&r, a), 1);
    assert_string_equal(tt_px_registry_single_name(&r), "media");
    assert_int_equal(tt_px_registry_add(&r, b), 2);
    assert_int_equal(tt_px_registry_add(&r, c), 3); /* names are case-insensitive */
    assert_int_equal(tt_px_registry_add(&r, o), 1);
    assert_null(tt_px_registry_single_name(&r));
    assert_int_equal(r.names, 2);
    assert_int_equal(r.tunnels, 4);

    struct tt_px_pool *p = tt_px_registry_find(&r, "MEDIA", 5);
    assert_non_null(p);
    assert_int_equal(p->n, 3);
    assert_null(tt_px_registry_find(&r, "nobody", 6));

    /* ties: round-robin over all three */
    int seen[3] = {0};
    for (int i = 0; i < 6; i++) {
        struct tt_px_tunnel *t = tt_px_pool_pick(p, NULL, NULL);
        seen[t == a ? 0 : t == b ? 1 : 2]++;
    }
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], 2);
    assert_int_equal(seen[2], 2);

    /* fewest streams wins */
    a->streams = 3;
    b->streams = 1;
    c->streams = 2;
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(tt_px_pool_pick(p, NULL, NULL), b);
    b->streams = 5;
    assert_ptr_equal(tt_px_pool_pick(p, NULL, NULL), c);
    /* draining and dead members are skipped; avoid skips one */
    c->draining = 1;
    assert_ptr_equal(tt_px_pool_pick(p, NULL, NULL), a);
    assert_ptr_equal(tt_px_pool_pick(p, NULL, a), b);
    c->draining = 0;
    c->dead = 1;
    a->dead = 1;
    b->dead = 1;
    assert_null(tt_px_pool_pick(p, NULL, NULL));
    a->dead = b->dead = c->dead = 0;

    /* removal: at once, others stay, empty pools vanish */
    assert_int_equal(tt_px_registry_remove(&r, b), 2);
    assert_null(b->pool);
    a->streams = c->streams = 0;
    for (int i = 0; i < 4; i++)
        assert_ptr_not_equal(tt_px_pool_pick(p, NULL, NULL), b);
    assert_int_equal(tt_px_registry_remove(&r, b), 0); /* twice: no-op */
    assert_int_equal(tt_px_registry_remove(&r, a), 1);
    assert_int_equal(tt_px_registry_remove(&r, c), 0);
    assert_null(tt_px_registry_find(&r, "media", 5));
    assert_string_equal(tt_px_registry_single_name(&r), "other");
    assert_int_equal(r.tunnels, 1);
    assert_int_equal(tt_px_registry_remove(&r, o), 0);
    assert_int_equal(r.names, 0);
    assert_null(tt_px_registry_single_name(&r));
    tt_px_registry_free(&r);
}

static void test_pool_many(void **state)
{
    (void)state;
    /* many names across buckets, added and removed in mixed order */
    struct tt_px_registry r;
    tt_px_registry_init(&r);
    static struct tt_px_tunnel ts[600];
    for (int i = 0; i < 600; i++) {
        memset(&ts[i], 0, sizeof(ts[i]));
        snprintf(ts[i].name, sizeof(ts[i].name), "n%d", i % 300);
        assert_true(tt_px_registry_add(&r, &ts[i]) > 0);
    }
    assert_int_equal(r.names, 300);
    for (int i = 0; i < 600; i += 2) /* even: both members of even names */
        tt_px_registry_remove(&r, &ts[i]);
    assert_int_equal(r.names, 150);
    for (int i = 0; i < 300; i += 2) /* add the even names back, once */
        assert_true(tt_px_registry_add(&r, &ts[i]) > 0);
    assert_int_equal(r.tunnels, 450);
    for (int i = 0; i < 300; i++) {
        char n[16];
        snprintf(n, sizeof(n), "n%d", i);
        struct tt_px_pool *p = tt_px_registry_find(&r, n, strlen(n));
        assert_non_null(p);
        assert_int_equal(p->n, i % 2 ? 2 : 1);
    }
    tt_px_registry_free(&r);
}

/* front_h2.c: the preface is recognised as bytes arrive, at every split,
 * and anything else (an HTTP/1.1 request, even "PRI" of another kind) is not. */
static void test_h2_sniff(void **state)
{
    (void)state;
    const char *pre = TT_PX_H2_PREFACE;
    assert_int_equal(strlen(pre), TT_PX_H2_PREFACE_LEN);
    for (size_t n = 1; n < TT_PX_H2_PREFACE_LEN; n++)
        assert_int_equal(tt_px_h2f_sniff((const uint8_t *)pre, n), 0);
    assert_int_equal(tt_px_h2f_sniff((const uint8_t *)pre, TT_PX_H2_PREFACE_LEN), 1);
    uint8_t more[64];
    memcpy(more, pre, TT_PX_H2_PREFACE_LEN);
    memset(more + TT_PX_H2_PREFACE_LEN, 0, sizeof(more) - TT_PX_H2_PREFACE_LEN);
    assert_int_equal(tt_px_h2f_sniff(more, sizeof(more)), 1); /* SETTINGS follows */
    const char *h1 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tt_px_h2f_sniff((const uint8_t *)h1, strlen(h1)), -1);
    assert_int_equal(tt_px_h2f_sniff((const uint8_t *)"G", 1), -1);
    assert_int_equal(tt_px_h2f_sniff((const uint8_t *)"PUT", 3), -1);
    const char *pri11 = "PRI * HTTP/1.1\r\n\r\n";
    assert_int_equal(tt_px_h2f_sniff((const uint8_t *)pri11, strlen(pri11)), -1);
    /* One wrong byte anywhere. */
    for (size_t i = 0; i < TT_PX_H2_PREFACE_LEN; i++) {
        memcpy(more, pre, TT_PX_H2_PREFACE_LEN);
        more[i] ^= 0x20;
        assert_int_equal(tt_px_h2f_sniff(more, TT_PX_H2_PREFACE_LEN), -1);
        assert_int_equal(tt_px_h2f_sniff(more, i + 1), -1);
    }
}

/* front_h2.c: a client connection gets the client windows, and accepts
 * frames of the RFC 9113 §4.2 minimum only: the big frames p allows on its
 * tunnels are not offered to clients (a client's larger HEADERS frame is a
 * FRAME_SIZE_ERROR, as conformance suites such as h2spec expect). */
static void test_h2_client_config(void **state)
{
    (void)state;
    struct tt_session_config scfg;
    memset(&scfg, 0, sizeof(scfg));
    tt_h2_config_default(&scfg.h2);
    scfg.h2.max_frame_size = 256u << 10; /* as main.c sets for tunnels */
    scfg.h2.initial_window_size = 4u << 20;
    scfg.h2.header_table_size = 4096;
    tt_px_h2f_client_config(&scfg);
    assert_int_equal(scfg.h2.max_frame_size, TT_H2_MIN_FRAME_SIZE);
    assert_int_equal(scfg.h2.initial_window_size, 1u << 20);
    assert_int_equal(scfg.h2.connection_window, 8u << 20);
    assert_int_equal(scfg.h2.header_table_size, 4096); /* the rest is kept */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_https_flags),
        cmocka_unit_test(test_map_https),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_tokens_ok),
        cmocka_unit_test(test_tokens_bad),
        cmocka_unit_test(test_tokens_calls),
        cmocka_unit_test(test_grpc_local),
        cmocka_unit_test(test_fields_drop),
        cmocka_unit_test(test_map_connect),
        cmocka_unit_test(test_map_extended_connect),
        cmocka_unit_test(test_map_caller),
        cmocka_unit_test(test_call_target),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_c_command),
        cmocka_unit_test(test_tokens_hashed),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_map_basic),
        cmocka_unit_test(test_map_underscores),
        cmocka_unit_test(test_map_forwarded_chain),
        cmocka_unit_test(test_map_root_path_and_room),
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_authority_valid),
        cmocka_unit_test(test_target_split),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_affinity_moves_only_lost_keys),
        cmocka_unit_test(test_pool_many),
        cmocka_unit_test(test_h2_sniff),
        cmocka_unit_test(test_h2_client_config),
        cmocka_unit_test(test_h1_head),
    };
    return cmocka_run_group_tests_name("proxy", tests, NULL, NULL);
}
