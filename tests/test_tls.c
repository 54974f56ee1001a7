/* Tests of proto/tls: certificates, fingerprints, real non-blocking
 * handshakes over a socketpair, verify modes, and I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/tls.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char cert[128], key[128];
    char fp[80];
    SSL_CTX *server;
};

static int setup(void **state)
{
    /* What tt_loop_new() does in the programs: EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tt-tls-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->cert, sizeof(f->cert), "%s/cert.pem", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
    char err[256];
    if (tt_tls_ensure_selfsigned(f->cert, f->key, "tether.test", err, sizeof(err)) != 1)
        return -1;
    if (tt_tls_file_fingerprint(f->cert, f->fp, sizeof(f->fp)) != 0)
        return -1;
    f->server = tt_tls_server_ctx_new(f->cert, f->key, err, sizeof(err));
    if (!f->server)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    SSL_CTX_free(f->server);
    unlink(f->cert);
    unlink(f->key);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_selfsigned_reuse(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct stat st;
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Both exist: reused, not regenerated. */
    assert_int_equal(tt_tls_ensure_selfsigned(f->cert, f->key, "tether.test", err, sizeof(err)),
                     0);
    char fp2[80];
    assert_int_equal(tt_tls_file_fingerprint(f->cert, fp2, sizeof(fp2)), 0);
    assert_string_equal(f->fp, fp2);

    /* "sha256:" and 64 lowercase hex digits. */
    assert_int_equal(strlen(f->fp), 71);
    assert_memory_equal(f->fp, "sha256:", 7);
    for (int i = 7; i < 71; i++)
        assert_non_null(strchr("0123456789abcdef", f->fp[i]));

    /* A second pair in the same directory is a different certificate. */
    char c2[160], k2[160], fp3[80];
    snprintf(c2, sizeof(c2), "%s/c2.pem", f->dir);
    snprintf(k2, sizeof(k2), "%s/k2.pem", f->dir);
    assert_int_equal(tt_tls_ensure_selfsigned(c2, k2, "other", err, sizeof(err)), 1);
    assert_int_equal(tt_tls_file_fingerprint(c2, fp3, sizeof(fp3)), 0);
    assert_string_not_equal(f->fp, fp3);
    /* Only one of the two files present: both are made again. */
    unlink(k2);
    assert_int_equal(tt_tls_ensure_selfsigned(c2, k2, "other", err, sizeof(err)), 1);
    unlink(c2);
    unlink(k2);

    assert_int_equal(tt_tls_file_fingerprint("/nonexistent/cert.pem", fp2, sizeof(fp2)), -1);
    assert_int_equal(tt_tls_file_fingerprint(f->cert, fp2, 10), -1);
    /* A directory that does not exist: an error with a reason. */
    err[0] = '\0';
    assert_int_equal(
        tt_tls_ensure_selfsigned("/nonexistent/c.pem", "/nonexistent/k.pem", "x", err, sizeof(err)),
        -1);
    assert_true(strlen(err) > 0);
    /* A key file that does not match: the server context refuses. */
    assert_null(tt_tls_server_ctx_new(f->cert, "/nonexistent/k.pem", err, sizeof(err)));
    assert_non_null(strstr(err, "key"));
}

static void test_fingerprint_parse(void **state)
{
    struct fixture *f = *state;
    uint8_t a[32], b[32];
    assert_int_equal(tt_tls_parse_fingerprint(f->fp, a), 0);
    /* The same with colons between pairs and in upper case. */
    char colons[128] = "SHA256:";
    size_t n = 7;
    for (int i = 0; i < 32; i++) {
        if (i)
            colons[n++] = ':';
        colons[n++] = (char)toupper((unsigned char)f->fp[7 + 2 * i]);
        colons[n++] = (char)toupper((unsigned char)f->fp[8 + 2 * i]);
    }
    colons[n] = '\0';
    assert_int_equal(tt_tls_parse_fingerprint(colons, b), 0);
    assert_memory_equal(a, b, 32);
    /* Round trip: the bytes print back to the file's fingerprint. */
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", a[i]);
    assert_string_equal(hex, f->fp + 7);

    char buf[160];
    const char *hex64 = f->fp + 7;
    static const char *const bad[] = {"", "sha256:", "md5:00", "sha1:", "sha256:0", "sha256:zz"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tt_tls_parse_fingerprint(bad[i], a), -1);
    snprintf(buf, sizeof(buf), "%s", hex64); /* no prefix */
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
    snprintf(buf, sizeof(buf), "sha256:%.62s", hex64); /* short */
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
    snprintf(buf, sizeof(buf), "sha256:%s00", hex64); /* long */
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
    snprintf(buf, sizeof(buf), "sha256::%s", hex64); /* leading colon */
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
    snprintf(buf, sizeof(buf), "sha256:%s:", hex64); /* trailing colon */
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
    snprintf(buf, sizeof(buf), "sha256:%.2s::%s", hex64, hex64 + 2); /* double colon */
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
    snprintf(buf, sizeof(buf), "sha256:%.1s:%s", hex64, hex64 + 1); /* colon inside a pair */
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
    snprintf(buf, sizeof(buf), "sha256:%s ", hex64);
    assert_int_equal(tt_tls_parse_fingerprint(buf, a), -1);
}

/* --- a little poll loop driving two TLS ends --- */

struct pair {
    struct tt_tls_conn s, c;
    SSL_CTX *cctx;
};

static int pair_open(struct pair *p, SSL_CTX *server, SSL_CTX *client, const char *host)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p->cctx = client;
    assert_int_equal(tt_tls_conn_init(&p->s, server, sv[0], 1, NULL), 0);
    return tt_tls_conn_init(&p->c, client, sv[1], 0, host);
}

static void pair_close(struct pair *p)
{
    tt_tls_conn_free(&p->c);
    tt_tls_conn_free(&p->s);
    SSL_CTX_free(p->cctx);
}

static short want_events(int r)
{
    return r == TT_TLS_WANT_WRITE ? POLLOUT : POLLIN;
}

/* Returns 1 when both ends finished, 0 when either failed. */
static int pair_handshake(struct pair *p)
{
    int rs = 0, rc = 0;
    for (int i = 0; i < 200; i++) {
        if (rs != 1)
            rs = tt_tls_handshake(&p->s);
        if (rc != 1)
            rc = tt_tls_handshake(&p->c);
        if (rs == 1 && rc == 1)
            return 1;
        if (rs == TT_TLS_ERROR || rc == TT_TLS_ERROR)
            return 0;
        struct pollfd pfd[2] = {{p->s.fd, rs == 1 ? 0 : want_events(rs), 0},
                                {p->c.fd, rc == 1 ? 0 : want_events(rc), 0}};
        poll(pfd, 2, 1000);
    }
    fail_msg("handshake did not finish");
    return 0;
}

static SSL_CTX *client_ctx(enum tt_tls_verify mode, const char *ca, const uint8_t *pin)
{
    char err[256];
    SSL_CTX *ctx = tt_tls_client_ctx_new(mode, ca, pin, err, sizeof(err));
    if (!ctx)
        fail_msg("client ctx: %s", err);
    return ctx;
}

/* Sends `len` bytes from one end to the other through the poll loop,
 * with both ends non-blocking and the writer retrying on WANT. */
static void pair_transfer(struct tt_tls_conn *from, struct tt_tls_conn *to, size_t len)
{
    uint8_t *src = malloc(len), *dst = malloc(len);
    for (size_t i = 0; i < len; i++)
        src[i] = (uint8_t)(i * 7 + (i >> 9));
    size_t sent = 0, got = 0;
    for (int spins = 0; got < len; spins++) {
        assert_true(spins < 100000);
        short fev = 0, tev = POLLIN;
        int progress = 0;
        if (sent < len) {
            ssize_t w = tt_tls_write(from, src + sent, len - sent);
            if (w > 0)
                sent += (size_t)w, progress = 1;
            else if (w == TT_TLS_WANT_WRITE)
                fev = POLLOUT;
            else if (w == TT_TLS_WANT_READ)
                fev = POLLIN;
            else
                fail_msg("write: %zd %s", w, from->err);
        }
        for (;;) {
            ssize_t r = tt_tls_read(to, dst + got, len - got);
            if (r > 0) {
                got += (size_t)r;
                if (got == len)
                    break;
                continue;
            }
            if (r == TT_TLS_WANT_WRITE)
                tev = POLLOUT;
            else if (r != TT_TLS_WANT_READ)
                fail_msg("read: %zd %s", r, to->err);
            break;
        }
        if (got == len)
            break;
        struct pollfd pfd[2] = {{from->fd, fev, 0}, {to->fd, tev, 0}};
        poll(pfd, 2, progress ? 0 : 1000);
    }
    assert_int_equal(sent, len);
    assert_memory_equal(src, dst, len);
    free(src);
    free(dst);
}

static void check_alpn(struct tt_tls_conn *c)
{
    const unsigned char *proto = NULL;
    unsigned int plen = 0;
    SSL_get0_alpn_selected(c->ssl, &proto, &plen);
    assert_int_equal(plen, 8);
    assert_memory_equal(proto, "http/1.1", 8);
}

static void test_pin_match_and_io(void **state)
{
    struct fixture *f = *state;
    uint8_t pin[32];
    assert_int_equal(tt_tls_parse_fingerprint(f->fp, pin), 0);
    struct pair p;
    assert_int_equal(pair_open(&p, f->server, client_ctx(TT_TLS_VERIFY_PIN, NULL, pin),
                               "proxy.example"),
                     0);
    assert_int_equal(pair_handshake(&p), 1);
    check_alpn(&p.c);
    check_alpn(&p.s);
    assert_true(SSL_version(p.c.ssl) >= TLS1_2_VERSION);

    /* Small both ways, then 1 MiB through the partial-write path. */
    pair_transfer(&p.c, &p.s, 100);
    pair_transfer(&p.s, &p.c, 5);
    pair_transfer(&p.s, &p.c, 1 << 20);
    assert_int_equal(tt_tls_pending(&p.c), 0);

    /* Nothing to read yet: WANT_READ, not an error. */
    uint8_t buf[64];
    assert_int_equal(tt_tls_read(&p.s, buf, sizeof(buf)), TT_TLS_WANT_READ);

    /* A small write, then a read smaller than the record: the rest sits in
     * OpenSSL, which tt_tls_pending reports. */
    assert_int_equal(tt_tls_write(&p.c, "0123456789", 10), 10);
    struct pollfd pfd = {p.s.fd, POLLIN, 0};
    poll(&pfd, 1, 1000);
    assert_int_equal(tt_tls_read(&p.s, buf, 4), 4);
    assert_int_equal(tt_tls_pending(&p.s), 1);
    assert_int_equal(tt_tls_read(&p.s, buf + 4, sizeof(buf) - 4), 6);
    assert_memory_equal(buf, "0123456789", 10);

    /* A clean close (close_notify) reads as 0 at the other end. */
    int sfd = p.s.fd;
    tt_tls_conn_free(&p.c);
    assert_int_equal(p.c.fd, -1);
    assert_null(p.c.ssl);
    pfd = (struct pollfd){sfd, POLLIN, 0};
    poll(&pfd, 1, 1000);
    assert_int_equal(tt_tls_read(&p.s, buf, sizeof(buf)), 0);
    pair_close(&p);
}

static void test_pin_mismatch(void **state)
{
    struct fixture *f = *state;
    uint8_t pin[32];
    assert_int_equal(tt_tls_parse_fingerprint(f->fp, pin), 0);
    pin[31] ^= 1;
    struct pair p;
    assert_int_equal(pair_open(&p, f->server, client_ctx(TT_TLS_VERIFY_PIN, NULL, pin), "x"), 0);
    assert_int_equal(pair_handshake(&p), 0);
    assert_non_null(strstr(p.c.err, "pinned fingerprint"));
    pair_close(&p);
}

static void test_ca_mode(void **state)
{
    struct fixture *f = *state;
    /* The self-signed certificate as the CA; names in its subjectAltName
     * (tether.test, localhost, 127.0.0.1) pass, any other fails. */
    static const char *const good[] = {"tether.test", "localhost", "127.0.0.1"};
    for (size_t i = 0; i < 3; i++) {
        struct pair p;
        assert_int_equal(pair_open(&p, f->server, client_ctx(TT_TLS_VERIFY_CA, f->cert, NULL),
                                   good[i]),
                         0);
        if (pair_handshake(&p) != 1)
            fail_msg("host %s: %s", good[i], p.c.err);
        pair_transfer(&p.c, &p.s, 1000);
        pair_close(&p);
    }
    static const char *const bad[] = {"wrong.example", "127.0.0.2"};
    for (size_t i = 0; i < 2; i++) {
        struct pair p;
        assert_int_equal(pair_open(&p, f->server, client_ctx(TT_TLS_VERIFY_CA, f->cert, NULL),
                                   bad[i]),
                         0);
        assert_int_equal(pair_handshake(&p), 0);
        assert_non_null(strstr(p.c.err, "certificate verify failed"));
        pair_close(&p);
    }
    /* CA and system modes need a host name to check. */
    struct tt_tls_conn c;
    SSL_CTX *ctx = client_ctx(TT_TLS_VERIFY_CA, f->cert, NULL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(tt_tls_conn_init(&c, ctx, sv[0], 0, NULL), -1);
    assert_true(strlen(c.err) > 0);
    close(sv[0]);
    close(sv[1]);
    SSL_CTX_free(ctx);
    /* A CA file that does not exist. */
    char err[256];
    assert_null(tt_tls_client_ctx_new(TT_TLS_VERIFY_CA, "/nonexistent.pem", NULL, err,
                                      sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent.pem"));
}

static void test_system_and_none(void **state)
{
    struct fixture *f = *state;
    /* The system store does not know our self-signed certificate. */
    struct pair p;
    assert_int_equal(
        pair_open(&p, f->server, client_ctx(TT_TLS_VERIFY_SYSTEM, NULL, NULL), "tether.test"), 0);
    assert_int_equal(pair_handshake(&p), 0);
    assert_non_null(strstr(p.c.err, "certificate verify failed"));
    pair_close(&p);
    /* --insecure accepts anything. */
    assert_int_equal(pair_open(&p, f->server, client_ctx(TT_TLS_VERIFY_NONE, NULL, NULL), NULL),
                     0);
    assert_int_equal(pair_handshake(&p), 1);
    pair_transfer(&p.s, &p.c, 3000);
    pair_close(&p);
}

static void test_peer_gone(void **state)
{
    struct fixture *f = *state;
    struct pair p;
    assert_int_equal(pair_open(&p, f->server, client_ctx(TT_TLS_VERIFY_NONE, NULL, NULL), NULL),
                     0);
    assert_int_equal(pair_handshake(&p), 1);
    /* The client's socket closes without close_notify (kill -9). */
    close(p.c.fd);
    p.c.fd = -1;
    uint8_t buf[16];
    struct pollfd pfd = {p.s.fd, POLLIN, 0};
    poll(&pfd, 1, 1000);
    ssize_t r = tt_tls_read(&p.s, buf, sizeof(buf));
    assert_int_equal(r, TT_TLS_ERROR);
    assert_true(strlen(p.s.err) > 0);
    /* Writing to it fails too. */
    ssize_t w = 0;
    for (int i = 0; i < 10 && w != TT_TLS_ERROR; i++)
        w = tt_tls_write(&p.s, "hello", 5);
    assert_int_equal(w, TT_TLS_ERROR);
    pair_close(&p);
}

/* Plain mode (ssl NULL): the same return conventions over read()/write(). */
static void test_plain_io(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct tt_tls_conn a, b;
    tt_tls_conn_init_plain(&a, sv[0]);
    tt_tls_conn_init_plain(&b, sv[1]);
    assert_null(a.ssl);
    assert_int_equal(tt_tls_handshake(&a), 1);
    uint8_t buf[65536];
    assert_int_equal(tt_tls_read(&b, buf, sizeof(buf)), TT_TLS_WANT_READ);
    assert_int_equal(tt_tls_write(&a, "PRI * HTTP/2.0", 14), 14);
    assert_int_equal(tt_tls_read(&b, buf, sizeof(buf)), 14);
    assert_memory_equal(buf, "PRI * HTTP/2.0", 14);
    assert_int_equal(tt_tls_pending(&b), 0);
    /* Fill the socket until it pushes back. */
    memset(buf, 'x', sizeof(buf));
    ssize_t w = 1;
    size_t sent = 0;
    for (int i = 0; i < 10000 && w > 0; i++) {
        w = tt_tls_write(&a, buf, sizeof(buf));
        if (w > 0)
            sent += (size_t)w;
    }
    assert_int_equal(w, TT_TLS_WANT_WRITE);
    assert_true(sent > 0);
    /* The reader gets every byte, then WANT_READ. */
    size_t got = 0;
    ssize_t r;
    while ((r = tt_tls_read(&b, buf, sizeof(buf))) > 0)
        got += (size_t)r;
    assert_int_equal(r, TT_TLS_WANT_READ);
    assert_int_equal(got, sent);
    /* The peer closes: 0 on read; writing fails without SIGPIPE. */
    tt_tls_conn_free(&a);
    assert_int_equal(a.fd, -1);
    assert_int_equal(tt_tls_read(&b, buf, sizeof(buf)), 0);
    w = tt_tls_write(&b, "x", 1);
    assert_int_equal(w, TT_TLS_ERROR);
    assert_true(strlen(b.err) > 0);
    tt_tls_conn_free(&b);
}

/* A bare client context for the front tests: no verification, the given
 * ALPN list (wire format, NULL for none), TLS versions and 1.2 suites. */
static SSL_CTX *front_client(const unsigned char *alpn, unsigned alen, int max_version,
                             const char *ciphers12)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (alpn)
        assert_int_equal(SSL_CTX_set_alpn_protos(ctx, alpn, alen), 0);
    if (max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    if (ciphers12)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers12), 1);
    return ctx;
}

static void test_front_alpn(void **state)
{
    struct fixture *f = *state;
    char err[256];
    SSL_CTX *front = tt_tls_front_ctx_new(f->cert, f->key, err, sizeof(err));
    assert_non_null(front);
    static const unsigned char both[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1', 2, 'h', '2'};
    static const unsigned char h11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    static const unsigned char spdy[] = {6, 's', 'p', 'd', 'y', '/', '3'};
    struct {
        const unsigned char *alpn;
        unsigned len;
        enum tt_tls_alpn want;
    } cases[] = {
        {both, sizeof(both), TT_TLS_ALPN_H2},       /* server preference: h2 */
        {both + 9, 3, TT_TLS_ALPN_H2},
        {h11, sizeof(h11), TT_TLS_ALPN_HTTP11},
        {NULL, 0, TT_TLS_ALPN_NONE},
        {spdy, sizeof(spdy), TT_TLS_ALPN_NONE},     /* no ALPN, not an alert */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pair p;
        assert_int_equal(pair_open(&p, front, front_client(cases[i].alpn, cases[i].len, 0, NULL),
                                   NULL),
                         0);
        if (pair_handshake(&p) != 1)
            fail_msg("case %zu: %s / %s", i, p.s.err, p.c.err);
        assert_int_equal(tt_tls_alpn(&p.s), cases[i].want);
        assert_int_equal(SSL_version(p.s.ssl), TLS1_3_VERSION); /* 1.3 when both can */
        char d[96];
        tt_tls_describe(&p.s, d, sizeof(d));
        assert_non_null(strstr(d, "TLSv1.3"));
        pair_transfer(&p.c, &p.s, 5000);
        pair_close(&p);
    }
    /* The tunnel's context is unchanged: http/1.1 only, even when h2 is
     * offered first. */
    struct pair p;
    assert_int_equal(pair_open(&p, f->server, front_client(both + 9, 3, 0, NULL), NULL), 0);
    assert_int_equal(pair_handshake(&p), 0);
    pair_close(&p);
    assert_int_equal(pair_open(&p, f->server, front_client(both, sizeof(both), 0, NULL), NULL), 0);
    assert_int_equal(pair_handshake(&p), 1);
    assert_int_equal(tt_tls_alpn(&p.s), TT_TLS_ALPN_HTTP11);
    pair_close(&p);
    /* Plain connections have no ALPN and describe themselves as such. */
    struct tt_tls_conn plain;
    tt_tls_conn_init_plain(&plain, -1);
    assert_int_equal(tt_tls_alpn(&plain), TT_TLS_ALPN_NONE);
    char d[32];
    tt_tls_describe(&plain, d, sizeof(d));
    assert_string_equal(d, "plain");
    tt_tls_close_notify(&plain); /* no-ops */
    tt_tls_abort(&plain);
    SSL_CTX_free(front);
}

/* RFC 9113 §9.2.2: over TLS 1.2, only ephemeral AEAD suites. */
static void test_front_tls12_suites(void **state)
{
    struct fixture *f = *state;
    char err[256];
    SSL_CTX *front = tt_tls_front_ctx_new(f->cert, f->key, err, sizeof(err));
    assert_non_null(front);
    static const unsigned char h2[] = {2, 'h', '2'};
    /* Blocklisted (RFC 9113 Appendix A): CBC with ECDHE, and static RSA
     * key exchange even with GCM. */
    static const char *const refused[] = {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                                          "AES128-GCM-SHA256"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct pair p;
        assert_int_equal(
            pair_open(&p, front, front_client(h2, sizeof(h2), TLS1_2_VERSION, refused[i]), NULL),
            0);
        if (pair_handshake(&p) != 0)
            fail_msg("TLS 1.2 with %s was accepted", refused[i]);
        pair_close(&p);
    }
    static const char *const allowed[] = {"ECDHE-ECDSA-AES128-GCM-SHA256",
                                          "ECDHE-ECDSA-AES256-GCM-SHA384",
                                          "ECDHE-ECDSA-CHACHA20-POLY1305"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        struct pair p;
        assert_int_equal(
            pair_open(&p, front, front_client(h2, sizeof(h2), TLS1_2_VERSION, allowed[i]), NULL),
            0);
        if (pair_handshake(&p) != 1)
            fail_msg("TLS 1.2 with %s: %s", allowed[i], p.s.err);
        assert_int_equal(SSL_version(p.s.ssl), TLS1_2_VERSION);
        assert_int_equal(tt_tls_alpn(&p.s), TT_TLS_ALPN_H2);
        assert_string_equal(SSL_get_cipher_name(p.s.ssl), allowed[i]);
        /* No compression, no renegotiation (RFC 9113 §9.2.1). */
        assert_null(SSL_get_current_compression(p.s.ssl));
        assert_true(SSL_get_options(p.s.ssl) & SSL_OP_NO_RENEGOTIATION);
        pair_close(&p);
    }
    /* Below TLS 1.2: refused. */
    struct pair p;
    SSL_CTX *old = front_client(NULL, 0, TLS1_1_VERSION, NULL);
    SSL_CTX_set_security_level(old, 0);
    assert_int_equal(pair_open(&p, front, old, NULL), 0);
    assert_int_equal(pair_handshake(&p), 0);
    pair_close(&p);
    SSL_CTX_free(front);
}

/* close_notify once, at once; an aborted connection sends none. */
static void test_front_close_notify(void **state)
{
    struct fixture *f = *state;
    char err[256];
    SSL_CTX *front = tt_tls_front_ctx_new(f->cert, f->key, err, sizeof(err));
    assert_non_null(front);
    uint8_t buf[64];
    for (int abort_it = 0; abort_it < 2; abort_it++) {
        struct pair p;
        assert_int_equal(pair_open(&p, front, front_client(NULL, 0, 0, NULL), NULL), 0);
        assert_int_equal(pair_handshake(&p), 1);
        pair_transfer(&p.s, &p.c, 100);
        if (abort_it)
            tt_tls_abort(&p.s);
        tt_tls_close_notify(&p.s);
        tt_tls_close_notify(&p.s); /* a second call sends nothing more */
        /* The server side still reads what the client sends. */
        assert_int_equal(tt_tls_write(&p.c, "late", 4), 4);
        struct pollfd pfd = {p.s.fd, POLLIN, 0};
        poll(&pfd, 1, 1000);
        assert_int_equal(tt_tls_read(&p.s, buf, sizeof(buf)), 4);
        if (!abort_it) {
            pfd = (struct pollfd){p.c.fd, POLLIN, 0};
            poll(&pfd, 1, 1000);
            assert_int_equal(tt_tls_read(&p.c, buf, sizeof(buf)), 0); /* clean end */
        } else {
            /* Nothing was sent: the client sees the socket close without
             * close_notify, an error, once the fd goes. */
            assert_int_equal(tt_tls_read(&p.c, buf, sizeof(buf)), TT_TLS_WANT_READ);
            tt_tls_conn_free(&p.s);
            pfd = (struct pollfd){p.c.fd, POLLIN, 0};
            poll(&pfd, 1, 1000);
            assert_int_equal(tt_tls_read(&p.c, buf, sizeof(buf)), TT_TLS_ERROR);
        }
        pair_close(&p);
    }
    SSL_CTX_free(front);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_int_equal(tt_ct_equal("abc", 3, "abc", 3), 1);
    assert_int_equal(tt_ct_equal("abc", 3, "abd", 3), 0);
    assert_int_equal(tt_ct_equal("abc", 3, "abcd", 4), 0);
    assert_int_equal(tt_ct_equal("", 0, "", 0), 1);
    assert_int_equal(tt_ct_equal("a", 1, "", 0), 0);
    assert_int_equal(tt_ct_equal("\0x", 2, "\0y", 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selfsigned_reuse),
        cmocka_unit_test(test_fingerprint_parse),
        cmocka_unit_test(test_pin_match_and_io),
        cmocka_unit_test(test_pin_mismatch),
        cmocka_unit_test(test_ca_mode),
        cmocka_unit_test(test_system_and_none),
        cmocka_unit_test(test_peer_gone),
        cmocka_unit_test(test_plain_io),
        cmocka_unit_test(test_front_alpn),
        cmocka_unit_test(test_front_tls12_suites),
        cmocka_unit_test(test_front_close_notify),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests_name("tls", tests, setup, teardown);
}
