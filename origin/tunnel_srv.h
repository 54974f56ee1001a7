/*
 * c's HTTP/2 server on one live tunnel (tunnel_srv.c): the session's
 * callbacks, one record per stream, its lifetime, the waiting-to-send list
 * and drain.  It knows no file server and no upstream: each stream goes to
 * the handler it was started with (origin/handler.h).
 */
#ifndef TT_ORIGIN_TUNNEL_SRV_H
#define TT_ORIGIN_TUNNEL_SRV_H

#include "origin/handler.h"
#include "proto/session.h"

struct tt_tunnel_srv;

typedef void (*tt_tunnel_srv_closed_cb)(void *owner, const char *reason);

/* Starts HTTP/2 (server role) on a tunnel whose PUT got its 101, every
 * stream answered by `h` (which, like `hctx`, must outlive the tunnel).
 * Takes `tls` (allocated with tt_mem_alloc).  `early` are the bytes read
 * past the 101 head; the session feeds them at the loop's next safe point,
 * so no stream arrives during this call.  `on_closed` fires once when the
 * tunnel is gone (never during this call), after every stream had its
 * `close`.  Returns NULL when out of memory (tls is then freed). */
struct tt_tunnel_srv *tt_tunnel_srv_start(struct tt_loop *loop, struct tt_tls_conn *tls,
                                          const struct tt_session_config *cfg,
                                          const struct tt_handler *h, void *hctx,
                                          const uint8_t *early, size_t early_len,
                                          tt_tunnel_srv_closed_cb on_closed, void *owner);
/* Graceful drain: GOAWAY, in-flight streams finish within grace_ms. */
void tt_tunnel_srv_drain(struct tt_tunnel_srv *srv, uint32_t grace_ms);
/* Streams with a record (open, or closed but still held); for tests. */
unsigned tt_tunnel_srv_streams(const struct tt_tunnel_srv *srv);

#endif
