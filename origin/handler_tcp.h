/*
 * c --tcp HOST:PORT: the name serves one local TCP service.  p carries each
 * TCP connection a client made to its --tcp-listen as one HTTP/2 CONNECT
 * stream (RFC 9113 §8.5); this handler (handler_tcp.c) connects to the
 * configured service for it and pipes the bytes both ways.
 *
 * Names: tt_tcp_* (the mode and its handler).
 */
#ifndef TT_ORIGIN_HANDLER_TCP_H
#define TT_ORIGIN_HANDLER_TCP_H

#include "origin/handler.h"
#include "proto/loop.h"

#include <stdint.h>

/* How long resolving and connecting to the service may take, in all. */
#define TT_TCP_CONNECT_TIMEOUT_MS 10000u

struct tt_tcp;

/* The mode's state, shared by every tunnel: the service's address as a host
 * (a name, or a numeric address without brackets) and a numeric port, both
 * copied; `connect_timeout_ms` 0 means TT_TCP_CONNECT_TIMEOUT_MS.  The name
 * is looked up for each stream (off the loop; a numeric address at once), so
 * a service whose address changes is followed.  What a request names
 * (:authority) is never a target.  Returns NULL when out of memory or when
 * host or port is too long. */
struct tt_tcp *tt_tcp_new(struct tt_loop *loop, const char *host, const char *port,
                          uint32_t connect_timeout_ms);
/* Turns the mode into WebSockets to an HTTP/1.1 app at that address (c
 * --upstream http://, which hands its extended CONNECT streams here): each
 * stream is an upgraded connection of its own.  `default_host` is the Host
 * of a request without :authority. */
void tt_tcp_set_websocket(struct tt_tcp *t, const char *default_host);
/* After every tunnel is gone. */
void tt_tcp_free(struct tt_tcp *t);

/* The most the handler's part of a record takes, for a handler that hands
 * streams over to it (tt_ts_handover). */
#define TT_TCP_STREAM_SIZE 512

/* The handler (origin/handler.h): start a tunnel server with it and `hctx`
 * the struct tt_tcp. */
extern const struct tt_handler tt_tcp_handler;

#endif
