/*
 * TLS under the protocol code: OpenSSL, non-blocking, on plain fds.
 * Only proto/ and the mains see SSL; bridges and the codec see plaintext.
 */
#ifndef TT_TLS_H
#define TT_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Results of the I/O calls besides a byte count. */
#define TT_TLS_WANT_READ (-2)
#define TT_TLS_WANT_WRITE (-3)
#define TT_TLS_ERROR (-1)

struct tt_tls_conn {
    int fd;
    SSL *ssl;
    int read_starved; /* the last read wanted more bytes from the socket */
    char err[160];    /* last error, for the log */
};

/* OpenSSL's read-ahead buffer: a few records per recv().  Kept under 64 KiB:
 * SSL_MODE_RELEASE_BUFFERS frees it whenever it drains (idle tunnels hold
 * none), and glibc consolidates its heap on every free of 64 KiB or more
 * (128 KiB cost p 1.6% of a small request in malloc_consolidate; 48 KiB
 * keeps scenario 1 at the same CPU per GiB). */
#define TT_TLS_READ_BUF (48 * 1024)

/* Server context (TLS 1.2+, ALPN http/1.1) from PEM files.  Returns NULL and
 * writes a one-line reason to err on failure. */
SSL_CTX *tt_tls_server_ctx_new(const char *cert_file, const char *key_file, char *err,
                               size_t errlen);
/* Server context for p's client front (HTTPS): the same as above, but ALPN
 * selects "h2" before "http/1.1" (a client offering neither gets no ALPN and
 * is served HTTP/1.1), and TLS 1.2 is limited to ECDHE key exchange with
 * AEAD ciphers, so no cipher suite of RFC 9113 Appendix A can be chosen
 * (RFC 9113 §9.2.2); TLS 1.3 suites are all AEAD.  Compression and
 * renegotiation are off (§9.2.1).  Returns NULL with a one-line err. */
SSL_CTX *tt_tls_front_ctx_new(const char *cert_file, const char *key_file, char *err,
                              size_t errlen);

/* The application protocol a finished handshake agreed on (RFC 7301). */
enum tt_tls_alpn {
    TT_TLS_ALPN_NONE = 0, /* no ALPN (or a plaintext connection) */
    TT_TLS_ALPN_HTTP11,
    TT_TLS_ALPN_H2,
    TT_TLS_ALPN_OTHER,
};
enum tt_tls_alpn tt_tls_alpn(const struct tt_tls_conn *c);
/* "TLSv1.3 TLS_AES_128_GCM_SHA256" for the log; "plain" without TLS. */
void tt_tls_describe(const struct tt_tls_conn *c, char *out, size_t outlen);
/* Sends close_notify now, once, without waiting for the peer's;
 * tt_tls_conn_free will not send another.  Returns 0, or TT_TLS_WANT_WRITE
 * when the socket is full: call again once it is writable.  No-op (0)
 * without TLS or before the handshake finished. */
int tt_tls_close_notify(struct tt_tls_conn *c);
/* Marks the connection so that it ends without close_notify: an aborted
 * response must not look like a clean end to the peer. */
void tt_tls_abort(struct tt_tls_conn *c);

/* Makes `cert_file`/`key_file` (a self-signed P-256 certificate for
 * `common_name`, valid 10 years, key mode 0600) unless both already exist.
 * Returns 1 when created, 0 when reused, -1 with err on failure. */
int tt_tls_ensure_selfsigned(const char *cert_file, const char *key_file,
                             const char *common_name, char *err, size_t errlen);
/* Writes "sha256:<64 lowercase hex>" of the DER certificate in `cert_file`
 * into out (at least 72 bytes).  Returns 0 or -1. */
int tt_tls_file_fingerprint(const char *cert_file, char *out, size_t outlen);
/* Parses "sha256:HEX" (colons between hex pairs allowed) into 32 bytes.
 * Returns 0 or -1. */
int tt_tls_parse_fingerprint(const char *s, uint8_t out[32]);
/* "sha256:<64 hex>" of the leaf certificate the peer presented, also after
 * the handshake failed on it (so a log can say what it was).  Returns 0, or
 * -1 when the peer sent none. */
int tt_tls_peer_fingerprint(const struct tt_tls_conn *c, char *out, size_t outlen);
/* 1 when a client's handshake failed because it did not trust the peer's
 * certificate (the chain, the host name or the pin), not the network. */
int tt_tls_cert_rejected(const struct tt_tls_conn *c);

enum tt_tls_verify {
    TT_TLS_VERIFY_SYSTEM = 0, /* the system trust store + host name */
    TT_TLS_VERIFY_CA,         /* a CA file + host name */
    TT_TLS_VERIFY_PIN,        /* the leaf certificate's sha256 must match */
    TT_TLS_VERIFY_NONE,       /* --insecure */
};

/* Client context.  `ca_file` for VERIFY_CA, `pin` for VERIFY_PIN.
 * Returns NULL with err on failure. */
SSL_CTX *tt_tls_client_ctx_new(enum tt_tls_verify mode, const char *ca_file,
                               const uint8_t pin[32], char *err, size_t errlen);

/* Wraps a connected non-blocking fd.  `host` (client only) is used for SNI
 * and host name verification.  Returns 0 or -1. */
int tt_tls_conn_init(struct tt_tls_conn *c, SSL_CTX *ctx, int fd, int is_server,
                     const char *host);
/* Wraps a connected non-blocking fd without TLS (HTTP/2 with prior
 * knowledge on p's client port, RFC 9113 §3.3): ssl stays NULL and the I/O
 * calls below do plain read()/write() with the same return conventions
 * (WANT_READ/WANT_WRITE on EAGAIN, 0 on EOF, TT_TLS_ERROR with a reason in
 * err); tt_tls_handshake returns 1 at once and tt_tls_pending 0. */
void tt_tls_conn_init_plain(struct tt_tls_conn *c, int fd);
/* Closes the fd and frees the SSL. */
void tt_tls_conn_free(struct tt_tls_conn *c);
/* Drives the handshake.  Returns 1 when done, TT_TLS_WANT_READ,
 * TT_TLS_WANT_WRITE, or TT_TLS_ERROR (reason in c->err). */
int tt_tls_handshake(struct tt_tls_conn *c);
/* Returns bytes read (> 0), 0 on a clean close by the peer, TT_TLS_WANT_*,
 * or TT_TLS_ERROR. */
ssize_t tt_tls_read(struct tt_tls_conn *c, void *buf, size_t len);
/* Returns bytes written (> 0), TT_TLS_WANT_*, or TT_TLS_ERROR.  After a
 * WANT, call again with the same buffer (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
 * is on, so its address may change but its first bytes may not). */
ssize_t tt_tls_write(struct tt_tls_conn *c, const void *buf, size_t len);
/* 1 when OpenSSL holds decrypted bytes not yet read (epoll cannot see them). */
int tt_tls_pending(const struct tt_tls_conn *c);

/* Constant-time comparison of two byte strings (length leaks, contents do
 * not).  Returns 1 when equal. */
/* `n` bytes from the system's cryptographic random source (tokens, keys).
 * Returns 0, or -1 when none could be had. */
int tt_random_bytes(void *p, size_t n);

int tt_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* SHA-256 of n bytes (tokens at rest are kept as their hash). */
void tt_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
