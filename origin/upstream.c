/*
 * c --upstream URL: every request of a tunnel forwarded to a local app.
 *
 * One record per tunnel stream (struct up_stream) joins the two sides:
 *
 *   tunnel side (HTTP/2 server, p's streams)      app side
 *     request head  ------------------------->  HTTP/1.1 head on a pooled
 *     DATA  -> req_pend ---------------------->  connection, or an HTTP/2
 *     trailers ------------------------------>  stream on the one h2c link
 *     1xx HEADERS  <---------------------------  102, 103 ... (not 100, 101)
 *     response head  <-------------------------  head
 *     DATA <- resp_pend <----------------------  body
 *     END_STREAM or trailers <-----------------  end of body / trailers
 *
 * Backpressure, both ways.  Request bytes are given back to p's window
 * (tt_h2_consume on the tunnel) only once they left for the app: written
 * to the app's socket (HTTP/1.1) or taken by the app connection's codec
 * (h2c, which is itself held by the app's window).  Response bytes wait in
 * resp_pend when the tunnel stream cannot take them; while they wait, an
 * HTTP/1.1 app socket is not read at all, and an h2c app stream gets no
 * window back.  So each direction holds at most one window (h2c) or one
 * read (64 KiB, HTTP/1.1) per stream.
 *
 * Lifetime.  A record lives while either side holds it: t_open until the
 * tunnel stream closes, a_open while an app connection or app stream (or
 * the wait for one) is attached; `busy` guards the calls that may close a
 * side from under us (a submit can fire on_stream_close).
 *
 * Files, bottom up (calls go down only; see tools/layers.sh):
 *
 *   upstream_pure.c    the URL and the response filter (no I/O)
 *   upstream_common.c  the tunnel half of the record (tt_up_answer, _head,
 *                      _interim, _body, _pump) and connecting (tt_up_connect)
 *   upstream_h1.c      the HTTP/1.1 keep-alive pool (tt_up_h1_*)
 *   upstream_h2c.c     the h2c connection to the app (tt_up_h2_*)
 *   upstream.c         this file: the handler ops, start-up and shutdown
 *
 * Failures are never silent: no app connection, or the app closed it before
 * the head -> 502; no head within --upstream-timeout (HTTP/1.1: 60 s unless
 * set; h2c: none unless set) -> 504, the app's request cancelled first (its
 * connection closed, or its stream reset); the app gone
 * mid-body -> RST_STREAM(INTERNAL_ERROR) to p, never a clean end (RFC 9113
 * §8.1); p reset the stream -> the app connection is closed (HTTP/1.1: it
 * cannot be reused mid-message) or the app stream reset with the same code.
 */
#include "origin/upstream.h"

#include "origin/handler_tcp.h"
#include "origin/upstream_common.h"
#include "origin/upstream_h1.h"
#include "origin/upstream_h2c.h"

#include "codec/buf.h"
#include "proto/log.h"
#include "proto/resolve.h"

#include <inttypes.h>
#include <netdb.h>
#include <string.h>
#include <strings.h>

/* ---- the record's life ------------------------------------------------ */

/* The record goes (the tunnel server's `free` op). */
static void st_free(struct up_stream *st)
{
    tt_timer_stop(st->up->loop, &st->head_timer);
    tt_buf_free(&st->req_pend);
    tt_buf_free(&st->resp_pend);
    tt_buf_free(&st->req_trailer_lines);
    tt_buf_free(&st->retry_head);
    tt_up_hdrs_free(&st->resp_head);
    tt_up_hdrs_free(&st->resp_trailers);
    tt_up_hdrs_free(&st->req_hdrs);
    tt_up_hdrs_free(&st->req_trailers);
}

/* c gives up on the app: the app hears it first, then p gets 504.  In that
 * order: the 504 ends the tunnel stream, and its close would otherwise take
 * the app's side for finished (the request was sent, the response "ended")
 * and let go of the app stream without a reset, leaving the app to work on
 * until its own deadline. */
static void st_head_timeout(struct tt_loop *loop, struct tt_timer *tm)
{
    (void)loop;
    struct up_stream *st = tm->data;
    if (st->head_sent || st->head_pending || !st->t_open)
        return;
    tt_up_hold(st);
    if (st->h1)
        tt_up_h1_abort(st->h1); /* HTTP/1.1 cancels by closing */
    else if (st->ah || st->waiting)
        tt_up_h2_abort(st, TT_H2_CANCEL);
    tt_up_answer(st, 504, "the app did not answer within %g s (--upstream-timeout)",
                 st->up->opts.head_timeout_ms / 1000.0);
    tt_up_release(st);
}

/* ---- the tunnel side: the handler ops (origin/handler.h) ---------------- */

static void up_open(void *hctx, struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct tt_upstream *up = hctx;
    int websocket = tt_up_iov_is(h->method, "CONNECT") && h->protocol.len == 9 &&
                    !strncasecmp((const char *)h->protocol.base, "websocket", 9);
    if (websocket && !up->url.h2c && up->ws) {
        /* RFC 8441 to an HTTP/1.1 app: an upgraded connection of its own,
         * bytes both ways (handler_tcp.c's WebSocket mode). */
        tt_ts_handover(ts, &tt_tcp_handler, up->ws, h);
        return;
    }
    struct up_stream *st = tt_ts_priv(ts);
    st->up = up;
    st->sid = tt_ts_id(ts);
    st->t_open = 1;
    st->req_ended = h->end_stream != 0;
    st->is_head = tt_up_iov_is(h->method, "HEAD");
    tt_buf_init(&st->req_pend, UP_PEND_MAX);
    tt_buf_init(&st->resp_pend, UP_PEND_MAX);
    tt_buf_init(&st->req_trailer_lines, 64u << 10);
    tt_buf_init(&st->retry_head, UP_OUT_MAX);
    tt_timer_init(&st->head_timer, st_head_timeout, st);
    /* Pumped whenever the tunnel has room: tt_up_pump moves what waits for p
     * and resumes an HTTP/1.1 app socket paused for lack of room. */
    tt_ts_wait(ts);
    if (tt_log_enabled(TT_LOG_DEBUG))
        tt_log_debug("stream %" PRIu32 ": %.*s %.*s -> app", st->sid, (int)h->method.len,
                     (const char *)h->method.base, (int)(h->path.len > 200 ? 200 : h->path.len),
                     (const char *)h->path.base);
    if (up->opts.head_timeout_ms)
        tt_timer_start(up->loop, &st->head_timer, up->opts.head_timeout_ms);
    if (tt_up_iov_is(h->method, "CONNECT") && !websocket) {
        /* A CONNECT (RFC 9113 §8.5) asks for a tunnel of bytes, not a
         * request: an HTTP/1.1 app would read it as a request line to
         * some host, and an h2c app as a tunnel to wherever :authority
         * points, which is p's name for us, not a target anyone chose.
         * Neither is what --upstream serves (--tcp is). */
        tt_up_answer(st, 501, "CONNECT is not forwarded to the app%s (c serves TCP with --tcp)",
                     h->protocol.len ? " (of extended CONNECT, only WebSocket is)" : "");
        return;
    }
    if (up->url.h2c)
        tt_up_h2_open(st, h);
    else
        tt_up_h1_open(st, h);
}

static void up_trailers(struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct up_stream *st = tt_ts_priv(ts);
    st->req_ended = 1;
    if (st->up->url.h2c) {
        if (!st->req_trailers.h && tt_up_hdrs_copy(&st->req_trailers, h->hdrs, h->count)) {
            tt_up_h2_abort(st, TT_H2_INTERNAL_ERROR);
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
        } else {
            tt_up_h2_push(st);
        }
        return;
    }
    if (st->chunked) {
        for (size_t i = 0; i < h->count; i++) {
            const struct tt_header *f = &h->hdrs[i];
            if (tt_buf_append(&st->req_trailer_lines, f->name, f->name_len) ||
                tt_buf_append(&st->req_trailer_lines, ": ", 2) ||
                tt_buf_append(&st->req_trailer_lines, f->value, f->value_len) ||
                tt_buf_append(&st->req_trailer_lines, "\r\n", 2))
                break;
        }
    }
    if (st->h1)
        tt_up_h1_push(st->h1);
}

static void up_data(struct tt_ts *ts, const uint8_t *data, size_t len, int end_stream)
{
    struct up_stream *st = tt_ts_priv(ts);
    if (!st->a_open || st->req_ended) {
        /* Nobody takes these bytes any more: dropped, window given back. */
        tt_ts_consume(ts, len);
        if (end_stream)
            st->req_ended = 1;
        return;
    }
    if (len && tt_buf_append(&st->req_pend, data, len)) {
        tt_ts_consume(ts, len);
        if (st->h1)
            tt_up_h1_abort(st->h1);
        else
            tt_up_h2_abort(st, TT_H2_INTERNAL_ERROR);
        tt_up_reset(st, TT_H2_INTERNAL_ERROR);
        return;
    }
    if (end_stream)
        st->req_ended = 1;
    if (st->h1)
        tt_up_h1_push(st->h1);
    else if (st->ah)
        tt_up_h2_push(st);
}

static size_t up_pump(struct tt_ts *ts) { return tt_up_pump(tt_ts_priv(ts)); }

static void up_close(struct tt_ts *ts, uint32_t code, unsigned flags)
{
    struct up_stream *st = tt_ts_priv(ts);
    st->t_open = 0;
    tt_timer_stop(st->up->loop, &st->head_timer);
    /* Request bytes still held: the tunnel server gives their window back
     * to p once this returns. */
    tt_buf_consume(&st->req_pend, tt_buf_len(&st->req_pend));
    if (st->h1)
        tt_up_h1_stream_closed(st, code);
    else if (st->a_open)
        tt_up_h2_stream_closed(st, code, flags);
}

static void up_free(struct tt_ts *ts) { st_free(tt_ts_priv(ts)); }

const struct tt_handler tt_upstream_handler = {
    /* Room for handler_tcp.c's part too: WebSockets are handed over to it. */
    .stream_size = sizeof(struct up_stream) > TT_TCP_STREAM_SIZE ? sizeof(struct up_stream)
                                                                 : TT_TCP_STREAM_SIZE,
    .open = up_open,
    .data = up_data,
    .trailers = up_trailers,
    .pump = up_pump,
    .close = up_close,
    .free = up_free,
};

struct tt_upstream *tt_upstream_new(struct tt_loop *loop, const struct tt_upstream_url *url,
                                    const struct tt_upstream_opts *opts)
{
    struct tt_upstream *up = tt_mem_calloc(1, sizeof *up);
    if (!up)
        return NULL;
    up->loop = loop;
    up->url = *url;
    up->opts = *opts;
    /* What the shared code calls back up into (upstream_common.h). */
    up->app = url->h2c ? &tt_up_h2_app : &tt_up_h1_app;
    if (!url->h2c) {
        up->ws = tt_tcp_new(loop, url->host, url->port, 0);
        if (!up->ws) {
            tt_mem_free(up);
            return NULL;
        }
        tt_tcp_set_websocket(up->ws, url->hostport);
    }
    tt_session_config_default(&up->acfg);
    /* c is the HTTP/2 client of the app.  The receive window bounds what
     * one app stream may have in flight towards a slow p. */
    up->acfg.h2.initial_window_size = 1u << 20;
    up->acfg.h2.max_output = 1u << 20;
    up->acfg.h2.max_concurrent_streams = 100; /* push is off; this limits nothing we use */
    /* No PING unless asked for (--upstream-ping): the app is local, its
     * death closes the socket, and gRPC servers answer pings on a quiet
     * connection with GOAWAY ENHANCE_YOUR_CALM, which killed idle streams
     * (grpc core and grpc-go allow one per 5 minutes without data, none
     * while no call is open).  When asked for, none while no stream is
     * open, so an idle app connection is never pinged. */
    up->acfg.ping_interval_ms = opts->ping_interval_ms;
    up->acfg.ping_timeout_ms = opts->ping_timeout_ms;
    up->acfg.ping_needs_streams = 1;
    return up;
}

int tt_upstream_close_sessions(struct tt_upstream *up)
{
    if (!up)
        return 0;
    up->closing = 1;
    return tt_up_h2_close_sessions(up);
}

void tt_upstream_free(struct tt_upstream *up)
{
    if (!up)
        return;
    tt_up_h1_free_all(up);
    int h2_left = tt_up_h2_free_all(up);
    /* A lookup still running finishes alone in its thread. */
    tt_resolve_cancel(up->res);
    up->res = NULL;
    if (up->ai)
        freeaddrinfo(up->ai);
    up->ai = NULL;
    /* Records of h2c connections still point here: they and it are left
     * to the process's end. */
    tt_tcp_free(up->ws);
    up->ws = NULL;
    if (!h2_left)
        tt_mem_free(up);
}

