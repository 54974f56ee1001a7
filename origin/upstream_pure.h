/*
 * The pure parts of c --upstream (upstream_pure.c): the URL and the
 * response filter, unit-tested, no loop and no sockets.  upstream.h
 * includes this header, so users of the mode find these names there.
 */
#ifndef TT_UPSTREAM_PURE_H
#define TT_UPSTREAM_PURE_H

#include "codec/hpack.h"

#include <stddef.h>

struct tt_upstream_url {
    int h2c;           /* 0: http:// (HTTP/1.1), 1: h2c:// (HTTP/2, prior knowledge) */
    char host[256];    /* without brackets */
    char port[8];
    char hostport[300]; /* "host:port" or "[v6]:port": the Host of a request without one */
};

/* Parses "http://HOST[:PORT][/]" or "h2c://HOST[:PORT][/]" (port 80 when
 * absent; [v6] in brackets).  Returns 0, or -1 with a one-line reason in err
 * (without the flag's name). */
int tt_upstream_parse_url(const char *s, struct tt_upstream_url *u, char *err, size_t errlen);

/* An HTTP/1.1 request head for the app is written by tt_http1_request_head
 * (proto/http1.h), with its body framing as enum tt_http1_body. */

/* Drops from an HTTP/1.1 response's fields (names already lowercase) those
 * that belong to one connection: Connection and every field it names,
 * Keep-Alive, Transfer-Encoding, Upgrade, Proxy-Connection, TE (RFC 9110
 * §7.6.1, RFC 9113 §8.2.2).  Compacts the array; returns the new count. */
size_t tt_upstream_filter_response(struct tt_header *f, size_t n);

#endif
