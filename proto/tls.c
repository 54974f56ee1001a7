/*
 * TLS over non-blocking fds with OpenSSL 3.
 *
 * Both contexts: TLS 1.2 or newer, ALPN http/1.1 (the handshake is an
 * HTTP/1.1 request before the tunnel turns into HTTP/2), no renegotiation,
 * and three modes for the write path and memory:
 *  - ACCEPT_MOVING_WRITE_BUFFER: the caller retries a write from its output
 *    buffer, which may have moved (grown) in between;
 *  - ENABLE_PARTIAL_WRITE: a write returns as soon as some records went out,
 *    so the driver can account for bytes sent;
 *  - RELEASE_BUFFERS: an idle connection gives its 2 x ~17 KiB record buffers
 *    back, which is what lets p hold a thousand idle tunnels in little memory.
 *
 * Certificate pinning: the client context carries the expected sha256 of the
 * peer's leaf certificate (DER) in its ex_data.  The verify callback accepts
 * whatever the chain looks like (a pinned certificate is usually
 * self-signed) and decides at depth 0 only, by the pin; the handshake result
 * is checked again against the pin once it completes.
 */
#include "tls.h"
#include "text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ALPN wire format: length-prefixed protocol names (RFC 7301 §3.1). */
static const unsigned char tls_alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

/* What a client context remembers about how to verify its peer. */
struct tls_client_policy {
    enum tt_tls_verify mode;
    uint8_t pin[32];
};

static void tls_policy_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    OPENSSL_free(ptr);
}

/* The ex_data slot is allocated once per process; OpenSSL's own index
 * registry is global, so this is not state of ours to pass around. */
static int tls_policy_index(void)
{
    static int idx = -1;
    if (idx < 0)
        idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_policy_free);
    return idx;
}

static const struct tls_client_policy *tls_policy(const SSL_CTX *ctx)
{
    int idx = tls_policy_index();
    return idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, idx);
}

static void tls_set_err(char *err, size_t errlen, const char *what)
{
    if (!err || errlen == 0)
        return;
    unsigned long e = ERR_peek_last_error();
    if (e) {
        char buf[128];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err, errlen, "%s: %s", what, buf);
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

static int tls_ctx_common(SSL_CTX *ctx)
{
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return -1;
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* TLS 1.3: AES-128-GCM first (OpenSSL's default puts AES-256 first).
     * Both are AEAD suites of full strength; 128 runs ~5% faster here and
     * AES-GCM is the largest share of a tunnel's CPU on a download. */
    if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                      "TLS_CHACHA20_POLY1305_SHA256") != 1)
        return -1;
    /* Read ahead into a buffer of several records: without it every record
     * costs two recv() calls (its 5-byte header, then its body), which was
     * most of p's system calls on a download.  tt_tls_pending() then asks
     * SSL_has_pending(), since read-ahead bytes are invisible to epoll. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, TT_TLS_READ_BUF);
    return 0;
}

/* --- Server ------------------------------------------------------------ */

/* What a server offers by ALPN (RFC 7301 §3.2: the server chooses, in its
 * own order) and what happens when the client offers none of it. */
struct tls_alpn_policy {
    const unsigned char *list;
    unsigned int len;
    int on_no_match; /* SSL_TLSEXT_ERR_ALERT_FATAL or SSL_TLSEXT_ERR_NOACK */
};

/* The tunnel: http/1.1 (the PUT) or no_application_protocol. */
static const struct tls_alpn_policy tls_tunnel_alpn = {tls_alpn, sizeof(tls_alpn),
                                                       SSL_TLSEXT_ERR_ALERT_FATAL};

/* p's client front: h2 first.  A client that offers neither h2 nor
 * http/1.1 gets no ALPN rather than a fatal alert: it is served HTTP/1.1,
 * as a client without ALPN is (browsers and players never hit this; odd
 * tools do). */
static const unsigned char tls_front_alpn_list[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
static const struct tls_alpn_policy tls_front_alpn = {tls_front_alpn_list, sizeof(tls_front_alpn_list),
                                                      SSL_TLSEXT_ERR_NOACK};

static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct tls_alpn_policy *pol = arg;
    unsigned char *sel = NULL;
    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, pol->list, pol->len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return pol->on_no_match;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* TLS 1.2 suites for the front: ephemeral ECDH and AEAD only.  RFC 9113
 * §9.2.2 forbids h2 over the suites of its Appendix A (every non-AEAD and
 * every non-ephemeral one); refusing them for HTTP/1.1 too costs nothing
 * (every TLS 1.2 browser has these) and means an h2 connection can never
 * end up on one. */
static const char tls_front_ciphers12[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, int front, char *err,
                               size_t errlen);

SSL_CTX *tt_tls_server_ctx_new(const char *cert_file, const char *key_file, char *err,
                               size_t errlen)
{
    return tls_server_ctx(cert_file, key_file, 0, err, errlen);
}

SSL_CTX *tt_tls_front_ctx_new(const char *cert_file, const char *key_file, char *err,
                              size_t errlen)
{
    return tls_server_ctx(cert_file, key_file, 1, err, errlen);
}

static SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, int front, char *err,
                               size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_set_err(err, errlen, "cannot make a TLS context");
        return NULL;
    }
    if (tls_ctx_common(ctx) < 0) {
        tls_set_err(err, errlen, "cannot set up the TLS context");
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "cannot load certificate %s", cert_file);
        tls_set_err(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "cannot load key %s", key_file);
        tls_set_err(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_set_err(err, errlen, "the key does not match the certificate");
        goto fail;
    }
    if (front) {
        if (SSL_CTX_set_cipher_list(ctx, tls_front_ciphers12) != 1) {
            tls_set_err(err, errlen, "cannot set the TLS 1.2 cipher suites");
            goto fail;
        }
        SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, (void *)&tls_front_alpn);
    } else {
        SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, (void *)&tls_tunnel_alpn);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* --- Self-signed certificate ------------------------------------------- */

static int tls_add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* Writes PEM through a temporary file in the same directory and renames it
 * into place, so a crash never leaves half a key behind. */
static int tls_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -1;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_X509(f, cert);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int tt_tls_ensure_selfsigned(const char *cert_file, const char *key_file,
                             const char *common_name, char *err, size_t errlen)
{
    if (access(cert_file, F_OK) == 0 && access(key_file, F_OK) == 0)
        return 0;
    if (!common_name || !*common_name || strlen(common_name) > 64) {
        snprintf(err, errlen, "bad common name for the certificate");
        return -1;
    }
    ERR_clear_error();
    int ret = -1;
    X509 *cert = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key) {
        tls_set_err(err, errlen, "cannot generate a P-256 key");
        return -1;
    }
    cert = X509_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!cert || RAND_bytes(serial, sizeof(serial)) != 1)
        goto ssl_fail;
    serial[0] &= 0x7f; /* RFC 5280 §4.1.2.2: a positive integer */
    serial[0] |= 0x01;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        goto ssl_fail;
    if (!X509_set_version(cert, 2) ||
        /* An hour back: a peer whose clock is a little behind still accepts it. */
        !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600) ||
        !X509_set_pubkey(cert, key))
        goto ssl_fail;
    X509_NAME *name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *)common_name, -1, -1, 0) ||
        !X509_set_issuer_name(cert, name))
        goto ssl_fail;

    /* Host names are checked against subjectAltName only (RFC 6125 §6.4.4),
     * so the common name, localhost and the loopback addresses go there. */
    char san[256];
    struct in6_addr a6;
    struct in_addr a4;
    int is_ip = inet_pton(AF_INET, common_name, &a4) == 1 ||
                inet_pton(AF_INET6, common_name, &a6) == 1;
    snprintf(san, sizeof(san), "%s:%s,DNS:localhost,IP:127.0.0.1,IP:::1", is_ip ? "IP" : "DNS",
             common_name);
    if (tls_add_ext(cert, NID_subject_alt_name, san) < 0 ||
        tls_add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        tls_add_ext(cert, NID_key_usage, "critical,digitalSignature") < 0 ||
        tls_add_ext(cert, NID_ext_key_usage, "serverAuth") < 0 ||
        tls_add_ext(cert, NID_subject_key_identifier, "hash") < 0)
        goto ssl_fail;
    if (!X509_sign(cert, key, EVP_sha256()))
        goto ssl_fail;

    if (tls_write_pem(key_file, 0600, key, NULL) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", key_file, strerror(errno));
        goto out;
    }
    if (tls_write_pem(cert_file, 0644, NULL, cert) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", cert_file, strerror(errno));
        goto out;
    }
    ret = 1;
    goto out;
ssl_fail:
    tls_set_err(err, errlen, "cannot make the self-signed certificate");
out:
    BN_free(bn);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ret;
}

/* --- Fingerprints ------------------------------------------------------ */

static void tls_format_fp(const uint8_t md[32], char *out)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[7 + 64] = '\0';
}

int tt_tls_file_fingerprint(const char *cert_file, char *out, size_t outlen)
{
    if (outlen < 72)
        return -1;
    FILE *f = fopen(cert_file, "r");
    if (!f)
        return -1;
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert) {
        ERR_clear_error();
        return -1;
    }
    uint8_t md[32];
    unsigned int mdlen = 0;
    int ok = X509_digest(cert, EVP_sha256(), md, &mdlen);
    X509_free(cert);
    if (!ok || mdlen != 32)
        return -1;
    tls_format_fp(md, out);
    return 0;
}

int tt_tls_peer_fingerprint(const struct tt_tls_conn *c, char *out, size_t outlen)
{
    if (!c->ssl || outlen < 72)
        return -1;
    /* After a failed verification OpenSSL has not made the leaf "the peer
     * certificate" yet, but the chain the peer sent is kept: on a client its
     * first element is the leaf. */
    X509 *leaf = SSL_get0_peer_certificate(c->ssl);
    if (!leaf) {
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->ssl);
        if (chain && sk_X509_num(chain) > 0)
            leaf = sk_X509_value(chain, 0);
    }
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (!leaf || !X509_digest(leaf, EVP_sha256(), md, &mdlen) || mdlen != 32)
        return -1;
    tls_format_fp(md, out);
    return 0;
}

int tt_tls_cert_rejected(const struct tt_tls_conn *c)
{
    return c->ssl && !SSL_is_server(c->ssl) && SSL_get_verify_result(c->ssl) != X509_V_OK;
}

int tt_tls_parse_fingerprint(const char *s, uint8_t out[32])
{
    if (!s || strncasecmp(s, "sha256:", 7) != 0)
        return -1;
    s += 7;
    for (int i = 0; i < 32; i++) {
        /* A colon may sit between two pairs, never first, last or doubled. */
        if (i > 0 && *s == ':')
            s++;
        int hi = tt_hex_value(s[0]);
        int lo = hi < 0 ? -1 : tt_hex_value(s[1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    return *s == '\0' ? 0 : -1;
}

/* --- Client ------------------------------------------------------------ */

static int tls_leaf_matches(X509 *cert, const uint8_t pin[32])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (!cert || !X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32)
        return 0;
    return CRYPTO_memcmp(md, pin, 32) == 0;
}

static int tls_verify_pin(int preverify_ok, X509_STORE_CTX *xs)
{
    (void)preverify_ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    const struct tls_client_policy *pol = ssl ? tls_policy(SSL_get_SSL_CTX(ssl)) : NULL;
    if (!pol)
        return 0;
    /* The chain above the leaf does not matter: the pin names the leaf. */
    if (X509_STORE_CTX_get_error_depth(xs) > 0)
        return 1;
    if (tls_leaf_matches(X509_STORE_CTX_get_current_cert(xs), pol->pin)) {
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 1;
    }
    X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
    return 0;
}

SSL_CTX *tt_tls_client_ctx_new(enum tt_tls_verify mode, const char *ca_file,
                               const uint8_t pin[32], char *err, size_t errlen)
{
    ERR_clear_error();
    if (tls_policy_index() < 0) {
        tls_set_err(err, errlen, "cannot allocate OpenSSL ex_data");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        tls_set_err(err, errlen, "cannot make a TLS context");
        return NULL;
    }
    struct tls_client_policy *pol = OPENSSL_zalloc(sizeof(*pol));
    if (!pol || !SSL_CTX_set_ex_data(ctx, tls_policy_index(), pol)) {
        OPENSSL_free(pol);
        tls_set_err(err, errlen, "out of memory");
        goto fail;
    }
    pol->mode = mode;
    if (tls_ctx_common(ctx) < 0 || SSL_CTX_set_alpn_protos(ctx, tls_alpn, sizeof(tls_alpn)) != 0) {
        tls_set_err(err, errlen, "cannot set up the TLS context");
        goto fail;
    }
    switch (mode) {
    case TT_TLS_VERIFY_SYSTEM:
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            tls_set_err(err, errlen, "cannot load the system trust store");
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    case TT_TLS_VERIFY_CA:
        if (!ca_file || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "cannot load CA file %s", ca_file ? ca_file : "(none)");
            tls_set_err(err, errlen, what);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    case TT_TLS_VERIFY_PIN:
        if (!pin) {
            snprintf(err, errlen, "no fingerprint to pin");
            goto fail;
        }
        memcpy(pol->pin, pin, 32);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_pin);
        break;
    case TT_TLS_VERIFY_NONE:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    default:
        snprintf(err, errlen, "unknown verify mode");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* --- Connections ------------------------------------------------------- */

int tt_tls_conn_init(struct tt_tls_conn *c, SSL_CTX *ctx, int fd, int is_server,
                     const char *host)
{
    c->fd = fd;
    c->err[0] = '\0';
    c->read_starved = 0;
    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    if (!c->ssl) {
        tls_set_err(c->err, sizeof(c->err), "SSL_new");
        return -1;
    }
    if (SSL_set_fd(c->ssl, fd) != 1)
        goto fail;
    if (is_server) {
        SSL_set_accept_state(c->ssl);
        return 0;
    }
    SSL_set_connect_state(c->ssl);
    const struct tls_client_policy *pol = tls_policy(ctx);
    int check_host = pol && (pol->mode == TT_TLS_VERIFY_SYSTEM || pol->mode == TT_TLS_VERIFY_CA);
    if (host && *host) {
        struct in6_addr a6;
        struct in_addr a4;
        int is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
        /* RFC 6066 §3: SNI carries DNS names only, never an address. */
        if (!is_ip && SSL_set_tlsext_host_name(c->ssl, host) != 1)
            goto fail;
        if (check_host) {
            int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host)
                           : SSL_set1_host(c->ssl, host);
            if (ok != 1)
                goto fail;
        }
    } else if (check_host) {
        snprintf(c->err, sizeof(c->err), "no host name to verify the certificate against");
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    return 0;
fail:
    tls_set_err(c->err, sizeof(c->err), "cannot set up the TLS connection");
    SSL_free(c->ssl);
    c->ssl = NULL;
    return -1;
}

void tt_tls_conn_init_plain(struct tt_tls_conn *c, int fd)
{
    c->fd = fd;
    c->ssl = NULL;
    c->read_starved = 0;
    c->err[0] = '\0';
}

/* Plain-mode I/O: errno mapped to the TT_TLS_* conventions. */
static ssize_t tls_plain_result(struct tt_tls_conn *c, ssize_t n, const char *op, int want)
{
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return want;
    snprintf(c->err, sizeof(c->err), "%s: %s", op, strerror(errno));
    return TT_TLS_ERROR;
}

static ssize_t tls_plain_read(struct tt_tls_conn *c, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(c->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        snprintf(c->err, sizeof(c->err), "peer closed the connection");
    return tls_plain_result(c, n, "read", TT_TLS_WANT_READ);
}

static ssize_t tls_plain_write(struct tt_tls_conn *c, const void *buf, size_t len)
{
    ssize_t n;
    /* MSG_NOSIGNAL: a peer that is gone is an error to report, not a
     * SIGPIPE; write() for descriptors that are not sockets. */
    do
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) {
        do
            n = write(c->fd, buf, len);
        while (n < 0 && errno == EINTR);
    }
    return tls_plain_result(c, n, "write", TT_TLS_WANT_WRITE);
}

void tt_tls_conn_free(struct tt_tls_conn *c)
{
    if (c->ssl) {
        /* Best effort close_notify, so the peer sees a clean end; skipped
         * after a fatal error (quiet shutdown set) or before the handshake. */
        if (SSL_is_init_finished(c->ssl) && !SSL_get_quiet_shutdown(c->ssl))
            SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

enum tt_tls_alpn tt_tls_alpn(const struct tt_tls_conn *c)
{
    if (!c->ssl)
        return TT_TLS_ALPN_NONE;
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(c->ssl, &p, &n);
    if (!p || n == 0)
        return TT_TLS_ALPN_NONE;
    if (n == 2 && memcmp(p, "h2", 2) == 0)
        return TT_TLS_ALPN_H2;
    if (n == 8 && memcmp(p, "http/1.1", 8) == 0)
        return TT_TLS_ALPN_HTTP11;
    return TT_TLS_ALPN_OTHER;
}

void tt_tls_describe(const struct tt_tls_conn *c, char *out, size_t outlen)
{
    if (!c->ssl) {
        snprintf(out, outlen, "plain");
        return;
    }
    snprintf(out, outlen, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}

int tt_tls_close_notify(struct tt_tls_conn *c)
{
    if (!c->ssl || !SSL_is_init_finished(c->ssl) || SSL_get_quiet_shutdown(c->ssl))
        return 0;
    ERR_clear_error();
    /* 0: sent, the peer's not seen yet (we do not wait for it).  -1 with
     * WANT_WRITE: the socket is full; a later call finishes the alert.  Any
     * other failure: the connection is going anyway. */
    int r = SSL_shutdown(c->ssl);
    if (r < 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return TT_TLS_WANT_WRITE;
    }
    ERR_clear_error();
    SSL_set_quiet_shutdown(c->ssl, 1);
    return 0;
}

void tt_tls_abort(struct tt_tls_conn *c)
{
    if (c->ssl)
        SSL_set_quiet_shutdown(c->ssl, 1);
}

/* Maps a failed SSL call to TT_TLS_WANT_* or TT_TLS_ERROR with a reason. */
static int tls_result(struct tt_tls_conn *c, int ret, const char *op)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TT_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TT_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(c->err, sizeof(c->err), "peer closed the TLS connection");
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno != 0 && ERR_peek_error() == 0)
            snprintf(c->err, sizeof(c->err), "%s: %s", op, strerror(errno));
        else if (ERR_peek_error() == 0)
            snprintf(c->err, sizeof(c->err), "%s: connection closed by peer", op);
        else
            tls_set_err(c->err, sizeof(c->err), op);
        break;
    default: {
        long vr = SSL_get_verify_result(c->ssl);
        const struct tls_client_policy *pol = tls_policy(SSL_get_SSL_CTX(c->ssl));
        if (vr == X509_V_ERR_CERT_REJECTED && pol && pol->mode == TT_TLS_VERIFY_PIN)
            snprintf(c->err, sizeof(c->err),
                     "the peer's certificate does not match the pinned fingerprint");
        else if (vr != X509_V_OK)
            snprintf(c->err, sizeof(c->err), "certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
        else if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            snprintf(c->err, sizeof(c->err),
                     "%s: connection closed by peer (no close_notify)", op);
        else
            tls_set_err(c->err, sizeof(c->err), op);
        break;
    }
    }
    ERR_clear_error();
    /* After a fatal error OpenSSL must not send close_notify. */
    SSL_set_quiet_shutdown(c->ssl, 1);
    return TT_TLS_ERROR;
}

int tt_tls_handshake(struct tt_tls_conn *c)
{
    if (!c->ssl)
        return 1;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        const struct tls_client_policy *pol = SSL_is_server(c->ssl)
                                                  ? NULL
                                                  : tls_policy(SSL_get_SSL_CTX(c->ssl));
        /* Belt and braces: the verify callback already decided, but a pin is
         * checked once more on the certificate the session ended with. */
        if (pol && pol->mode == TT_TLS_VERIFY_PIN &&
            !tls_leaf_matches(SSL_get0_peer_certificate(c->ssl), pol->pin)) {
            snprintf(c->err, sizeof(c->err),
                     "the peer's certificate does not match the pinned fingerprint");
            SSL_set_quiet_shutdown(c->ssl, 1);
            return TT_TLS_ERROR;
        }
        return 1;
    }
    r = tls_result(c, r, "TLS handshake");
    if (r == 0) {
        SSL_set_quiet_shutdown(c->ssl, 1);
        snprintf(c->err, sizeof(c->err), "TLS handshake: connection closed by peer");
        return TT_TLS_ERROR;
    }
    return r;
}

ssize_t tt_tls_read(struct tt_tls_conn *c, void *buf, size_t len)
{
    if (len == 0)
        return TT_TLS_ERROR;
    if (!c->ssl)
        return tls_plain_read(c, buf, len);
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(c->ssl, buf, len, &n);
    if (r == 1) {
        c->read_starved = 0;
        return (ssize_t)n;
    }
    ssize_t rc = tls_result(c, r, "TLS read");
    c->read_starved = rc == TT_TLS_WANT_READ;
    return rc;
}

ssize_t tt_tls_write(struct tt_tls_conn *c, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (!c->ssl)
        return tls_plain_write(c, buf, len);
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(c->ssl, buf, len, &n);
    if (r == 1)
        return (ssize_t)n;
    r = tls_result(c, r, "TLS write");
    if (r == 0) {
        snprintf(c->err, sizeof(c->err), "TLS write: peer closed the connection");
        return TT_TLS_ERROR;
    }
    return r;
}

/* With read-ahead, SSL_has_pending() also counts the start of a record whose
 * rest has not arrived: once a read said WANT_READ the socket was drained, so
 * epoll reports the rest and nothing is pending until then (no busy loop). */
int tt_tls_pending(const struct tt_tls_conn *c)
{
    return c->ssl && !c->read_starved && SSL_has_pending(c->ssl);
}

void tt_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        memset(out, 0, 32); /* cannot be: SHA-256 of memory does not fail */
}

int tt_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return 0;
    if (alen == 0)
        return 1;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int tt_random_bytes(void *p, size_t n)
{
    return n <= INT_MAX && RAND_bytes(p, (int)n) == 1 ? 0 : -1;
}
