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
#include "origin/upstream_pure.h"
#include "proto/loop.h"
#include "proto/session.h"

#include <stddef.h>
#include <stdint.h>

/* ---- pure parts (unit-tested): origin/upstream_pure.h ----------------
 * struct tt_upstream_url, tt_upstream_parse_url and
 * tt_upstream_filter_response live there, below the rest of the mode. */

/* ---- runtime --------------------------------------------------------- */

struct tt_upstream;

/* The app connections of the process (the HTTP/1.1 pool or the HTTP/2
 * connection), shared by every tunnel.  `opts` is copied.  Returns NULL
 * when out of memory. */
struct tt_upstream *tt_upstream_new(struct tt_loop *loop, const struct tt_upstream_url *url,
                                    const struct tt_upstream_opts *opts);
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
