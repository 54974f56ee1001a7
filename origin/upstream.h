/*
 * c --upstream URL: the tunnel's requests forwarded to a local application
 * instead of the file server.
 *
 *   http://HOST:PORT   HTTP/1.1 to the app over a small pool of keep-alive
 *                      connections (one request at a time on each).
 *   h2c://HOST:PORT    HTTP/2 with prior knowledge (RFC 9113 §3.3) over one
 *                      connection shared by every tunnel, e.g. a gRPC server:
 *                      each tunnel stream becomes one app stream, trailers
 *                      and resets pass both ways.
 *
 * Names: tt_upstream_* (the mode, its pure helpers and its handler).
 */
#ifndef TT_UPSTREAM_H
#define TT_UPSTREAM_H

#include "codec/buf.h"
#include "codec/h2.h"
#include "origin/handler.h"
#include "proto/loop.h"
#include "proto/session.h"

#include <stddef.h>
#include <stdint.h>

/* ---- pure parts (unit-tested) ---------------------------------------- */

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

/* ---- runtime --------------------------------------------------------- */

struct tt_upstream;

/* The app connections of the process (the HTTP/1.1 pool or the HTTP/2
 * connection), shared by every tunnel.  Returns NULL when out of memory. */
struct tt_upstream *tt_upstream_new(struct tt_loop *loop, const struct tt_upstream_url *url);
/* c is exiting: closes the h2c app connections, which happens on the loop
 * (deferred); returns how many, so the caller knows to run the loop's
 * deferred work once more before tt_upstream_free. */
int tt_upstream_close_sessions(struct tt_upstream *up);
/* Closes every app connection (after the loop ended). */
void tt_upstream_free(struct tt_upstream *up);

/* The handler that forwards a tunnel's streams to the app (origin/handler.h):
 * start a tunnel server with it and `hctx` the struct tt_upstream. */
extern const struct tt_handler tt_upstream_handler;

#endif
