/*
 * The pure parts of c --upstream (upstream_pure.c): the URL, the mode's
 * options and the response filter, unit-tested, no loop and no sockets.
 * upstream.h includes this header, so users of the mode find these names
 * there.
 */
#ifndef TT_UPSTREAM_PURE_H
#define TT_UPSTREAM_PURE_H

#include "codec/hpack.h"

#include <stddef.h>
#include <stdint.h>

struct tt_upstream_url {
    int h2c;           /* 0: http:// (HTTP/1.1), 1: h2c:// (HTTP/2, prior knowledge) */
    char host[256];    /* without brackets */
    char port[8];
    char hostport[300]; /* "host:port" or "[v6]:port": the Host of a request without one */
};

/* How long an HTTP/1.1 app may take to begin its answer when
 * --upstream-timeout is not given.  An h2c app gets no limit by default: it
 * is typically a gRPC server, whose calls may rightly run for minutes, each
 * bounded by its own deadline (grpc-timeout) that the client and the app
 * enforce. */
#define TT_UPSTREAM_H1_HEAD_TIMEOUT_MS 60000u

struct tt_upstream_opts {
    /* The app's response head must begin within this (504 and the app's
     * request cancelled otherwise); 0: no limit. */
    uint32_t head_timeout_ms;
    /* h2c: PING the app connection after this long with nothing from it,
     * while a stream is open on it; 0: never.  gRPC servers punish pings
     * more often than every 5 minutes with GOAWAY ENHANCE_YOUR_CALM
     * ("too_many_pings"), so this is off unless asked for. */
    uint32_t ping_interval_ms;
    /* ... and close the connection when nothing answers within this. */
    uint32_t ping_timeout_ms;
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
