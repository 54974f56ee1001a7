/*
 * What c's tunnel server (tunnel_srv.c) asks of whatever answers its
 * streams -- the file server (handler_files.c), the upstream forwarder
 * (upstream.c) -- and what it offers them back.  The shape is h2o's
 * handler/generator split: the tunnel server owns the HTTP/2 side of each
 * stream (the record, its lifetime, flow-control bookkeeping, the queue of
 * streams waiting for room); a handler owns what the request means.
 *
 * One record per stream.  The tunnel server allocates it when a request
 * head arrives, with `stream_size` zeroed bytes for the handler
 * (tt_ts_priv), and frees it once the stream has closed *and* nobody holds
 * it.  A handler that keeps a stream across calls into the codec, or that
 * reaches it from outside the tunnel's callbacks (an app connection, a
 * timer), holds it (tt_ts_hold / tt_ts_release): a submit can close the
 * stream under its caller (END_STREAM on a half-closed stream, a reset),
 * and the record must not vanish then.  Every op below is called with the
 * record held, so inside an op the handler needs no hold of its own.
 *
 * Ops may call any tt_ts_* function on any stream of theirs, and must not
 * free the record themselves.  Ops are never called again on a stream
 * after `close`, except `free`.
 */
#ifndef TT_ORIGIN_HANDLER_H
#define TT_ORIGIN_HANDLER_H

#include "codec/h2.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tt_ts; /* one stream of a tunnel (tunnel_srv.c) */

struct tt_handler {
    /* Bytes of per-stream state the handler wants in each record. */
    size_t stream_size;
    /* A request head arrived on a new stream (`h` valid during the call;
     * copy what must outlive it).  The handler answers now or later; it
     * may also reset the stream from here. */
    void (*open)(void *hctx, struct tt_ts *ts, const struct tt_h2_headers *h);
    /* Request body bytes (valid during the call); `end`: p's END_STREAM.
     * Each byte holds receive window until the handler gives it back with
     * tt_ts_consume() -- after passing it on, which is what makes a slow
     * consumer slow the sender.  Bytes not consumed by `close` are given
     * back by the tunnel server then.  May be NULL: bytes are consumed. */
    void (*data)(struct tt_ts *ts, const uint8_t *p, size_t n, int end);
    /* Request trailers, which also end the request.  May be NULL. */
    void (*trailers)(struct tt_ts *ts, const struct tt_h2_headers *h);
    /* Called for a stream on the waiting list (tt_ts_wait) when there may
     * be room to send (a WINDOW_UPDATE, the output buffer drained).
     * Produce one chunk (the handler's unit of fairness) and return the
     * DATA bytes queued; 0 means blocked or nothing to send.  The tunnel
     * server goes round the waiting streams, one chunk each per round,
     * until none makes progress (RFC 9113 §5.2: one stream must not take
     * the whole connection window). */
    size_t (*pump)(struct tt_ts *ts);
    /* The stream closed: both ends finished (code TT_H2_NO_ERROR), a reset
     * either way, the tunnel gone (flags as on_stream_close in codec/h2.h).
     * Called exactly once per stream.  The handler must let go of every
     * link to the stream from elsewhere (app connections, timers) here or
     * keep a hold; tt_ts_* calls on it are harmless no-ops from now on. */
    void (*close)(struct tt_ts *ts, uint32_t code, unsigned flags);
    /* The record is about to be freed (closed, no holder): free what the
     * handler's part owns.  May be NULL. */
    void (*free)(struct tt_ts *ts);
};

/* ---- the stream API (tunnel_srv.c) --------------------------------------
 * Anything that queues output also schedules the session's write, so
 * handlers never flush.  On a closed stream every call does nothing and
 * the ones that return report TT_ERR_STREAM_CLOSED (or 0 room). */

/* From `open` only: the stream is another handler's from now on (its open
 * runs inside this call, with `h`).  The record must have room for its
 * part: the first handler's stream_size is at least `hd`'s. */
void tt_ts_handover(struct tt_ts *ts, const struct tt_handler *hd, void *hctx,
                    const struct tt_h2_headers *h);

/* The handler's part of the record, and back. */
void *tt_ts_priv(struct tt_ts *ts);
struct tt_ts *tt_ts_of(void *priv);
/* The `hctx` given to tt_tunnel_srv_start. */
void *tt_ts_hctx(const struct tt_ts *ts);
uint32_t tt_ts_id(const struct tt_ts *ts);
/* 1 once `close` has run. */
int tt_ts_closed(const struct tt_ts *ts);

void tt_ts_hold(struct tt_ts *ts);
/* Lets go; frees the record if it was the last hold of a closed stream. */
void tt_ts_release(struct tt_ts *ts);

/* Response head (":status" first), a 1xx, or trailers (after the head, with
 * end).  Returns 0, or TT_ERR_NOMEM when the output buffer is full (retry
 * from `pump`: stay on the waiting list), or another TT_ERR_*. */
int tt_ts_headers(struct tt_ts *ts, const struct tt_header *h, size_t n, int end);
/* DATA, copied: as tt_h2_send_data (returns the bytes taken, 0 blocked). */
ssize_t tt_ts_send(struct tt_ts *ts, const void *p, size_t n, int end);
/* Room to send now (the least of both windows and the output buffer). */
size_t tt_ts_room(const struct tt_ts *ts);
/* Zero-copy DATA, as tt_h2_data_reserve/commit: nothing but filling the
 * returned bytes may happen between the two. */
uint8_t *tt_ts_reserve(struct tt_ts *ts, size_t len, size_t *room);
int tt_ts_commit(struct tt_ts *ts, size_t n, int end);
/* RST_STREAM(code); `close` runs inside this call. */
void tt_ts_reset(struct tt_ts *ts, uint32_t code);
/* Gives back receive window for `n` request bytes the handler passed on
 * (never more than `data` delivered). */
void tt_ts_consume(struct tt_ts *ts, size_t n);
/* Joins / leaves the waiting list: `pump` is called when room may have
 * opened, until the handler leaves (or the stream closes). */
void tt_ts_wait(struct tt_ts *ts);
void tt_ts_unwait(struct tt_ts *ts);

#endif
