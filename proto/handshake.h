/*
 * The tunnel handshake (DESIGN.md): c sends one HTTP/1.1 PUT with its token
 * and name and asks to upgrade to tether-h2r; p answers 101 and both ends
 * switch to HTTP/2 on the same TLS connection with the roles flipped.
 *
 * Small strict parsers for exactly this exchange (not general HTTP/1.1).
 * Both return the length of the head (including the blank line) once it is
 * complete, so the caller keeps the bytes after it: they are HTTP/2.
 */
#ifndef TT_HANDSHAKE_H
#define TT_HANDSHAKE_H

#include "codec/buf.h"

#include <stddef.h>
#include <stdint.h>

#define TT_HS_PATH "/.well-known/tether/tunnel"
#define TT_HS_UPGRADE "tether-h2r"        /* the tunnel: HTTP/2 with roles flipped */
#define TT_HS_UPGRADE_FORWARD "tether-h2"  /* the forward link: HTTP/2, c the client */
#define TT_HS_VERSION "1"
#define TT_HS_MAX_HEAD 8192

/* Parse results besides a head length. */
#define TT_HS_NEED_MORE 0
#define TT_HS_MALFORMED (-1)  /* answer 400 */
#define TT_HS_TOO_LARGE (-2)  /* answer 400 (head over TT_HS_MAX_HEAD) */

struct tt_hs_request {
    tt_iov method, path;
    tt_iov token;  /* from "Authorization: Bearer X"; empty when absent */
    tt_iov name;   /* Tether-Name */
    tt_iov version; /* Tether-Version */
    int has_authorization; /* an Authorization header was present */
    int upgrade_ok;        /* Upgrade: tether-h2r or tether-h2, and Connection: upgrade */
    int forward;           /* ... tether-h2: a forward link (DESIGN.md "The forward link") */
    int64_t content_length; /* -1 when absent */
};

/* Parses the PUT.  Views point into `buf`.  Returns the head length,
 * TT_HS_NEED_MORE, TT_HS_MALFORMED or TT_HS_TOO_LARGE. */
int tt_hs_parse_request(const uint8_t *buf, size_t len, struct tt_hs_request *req);

/* Appends the PUT for `host`, `token`, `name` to out: a tunnel, or with
 * `forward` a forward link.  Returns 0 or TT_ERR_NOMEM. */
int tt_hs_build_request(tt_buf *out, const char *host, const char *token, const char *name,
                        int forward);

struct tt_hs_response {
    int status;
    int retry_after; /* seconds, -1 when absent */
    int upgrade_ok;  /* 101 with Upgrade: tether-h2r or tether-h2 */
    int forward;     /* ... tether-h2 */
    tt_iov reason;   /* the reason phrase */
};

/* Parses p's answer.  Returns the head length, TT_HS_NEED_MORE,
 * TT_HS_MALFORMED or TT_HS_TOO_LARGE. */
int tt_hs_parse_response(const uint8_t *buf, size_t len, struct tt_hs_response *resp);

/* Appends p's answer: 101 with the upgrade headers (tether-h2 with
 * `forward`), or an error status with a short plain-text body saying why,
 * "Connection: close", and Retry-After when retry_after >= 0.  Returns 0 or
 * TT_ERR_NOMEM. */
int tt_hs_build_response(tt_buf *out, int status, const char *why, int retry_after, int forward);

#endif
