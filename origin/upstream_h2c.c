/*
 * c --upstream h2c://: the HTTP/2 side of forwarded requests, with prior
 * knowledge (RFC 9113 §3.3), over one connection to the app shared by
 * every tunnel (a new one once the app sends GOAWAY; old ones finish their
 * streams).  Each tunnel stream becomes one app stream; streams wait on a
 * list for the connection or for a free slot (the app's
 * SETTINGS_MAX_CONCURRENT_STREAMS); trailers and resets pass both ways.
 * The stream record and what it means to p are upstream_common.c's.
 */
#include "origin/upstream_h2c.h"

#include "codec/buf.h"
#include "proto/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- h2c: one HTTP/2 connection to the app ---------------------------- */

enum h2_state {
    H2_CONNECTING = 0,
    H2_UP,
    H2_GONE,
};

struct up_h2 {
    struct tt_upstream *up;
    enum h2_state state;
    int fd;
    struct tt_io io;
    struct tt_timer timer;
    unsigned tries, idx;
    int resolving; /* CONNECTING, waiting for the app's name (fd -1) */
    struct tt_session *s;
    struct tt_h2_conn *h2;
    struct up_stream *streams;
    struct up_h2 *prev, *next;
};

/* The app connection's codec, or NULL when it is not up. */
static struct tt_h2_conn *h2_conn(struct up_h2 *a)
{
    return a->state == H2_UP ? a->h2 : NULL;
}

static void h2_list_remove(struct up_h2 *a)
{
    struct tt_upstream *up = a->up;
    if (a->prev)
        a->prev->next = a->next;
    else if (up->h2all == a)
        up->h2all = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
    if (up->h2cur == a)
        up->h2cur = NULL;
}

static void h2_stream_link(struct up_h2 *a, struct up_stream *st)
{
    st->ah = a;
    st->aprev = NULL;
    st->anext = a->streams;
    if (a->streams)
        a->streams->aprev = st;
    a->streams = st;
}

static void h2_stream_unlink(struct up_stream *st)
{
    struct up_h2 *a = st->ah;
    if (!a)
        return;
    if (st->aprev)
        st->aprev->anext = st->anext;
    else if (a->streams == st)
        a->streams = st->anext;
    if (st->anext)
        st->anext->aprev = st->aprev;
    st->aprev = st->anext = NULL;
    st->ah = NULL;
    st->asid = 0;
}

static void h2_wait_add(struct up_stream *st)
{
    struct tt_upstream *up = st->up;
    st->waiting = 1;
    st->wnext = NULL;
    st->wprev = up->wait_tail;
    if (up->wait_tail)
        up->wait_tail->wnext = st;
    else
        up->wait_head = st;
    up->wait_tail = st;
}

static void h2_wait_remove(struct up_stream *st)
{
    struct tt_upstream *up = st->up;
    if (!st->waiting)
        return;
    if (st->wprev)
        st->wprev->wnext = st->wnext;
    else
        up->wait_head = st->wnext;
    if (st->wnext)
        st->wnext->wprev = st->wprev;
    else
        up->wait_tail = st->wprev;
    st->wprev = st->wnext = NULL;
    st->waiting = 0;
}

/* The app side let go of the stream. */
static void h2_let_go(struct up_stream *st)
{
    if (!st->a_open)
        return;
    /* The app stream may outlive the record (its close is still to come
     * from the codec): it must not point here any more. */
    if (st->ah && st->asid && st->ah->state == H2_UP)
        tt_h2_stream_set_user(st->ah->h2, st->asid, NULL);
    h2_wait_remove(st);
    h2_stream_unlink(st);
    st->a_open = 0;
    tt_up_release(st); /* the app side's hold */
}

static void h2_connect(struct tt_upstream *up);
static void h2_connect_start(struct up_h2 *a);

/* Submits waiting streams while the connection takes them. */
static void h2_submit_waiting(struct tt_upstream *up)
{
    struct up_h2 *a = up->h2cur;
    if (!a || a->state != H2_UP)
        return;
    while (up->wait_head && tt_h2_can_open_stream(a->h2)) {
        struct up_stream *st = up->wait_head;
        /* Whether the app takes extended CONNECT is in its SETTINGS: wait
         * for them (they come first on a new connection). */
        if (st->ext_connect && !tt_h2_remote_settings_received(a->h2))
            break;
        h2_wait_remove(st);
        tt_up_hold(st);
        int end = st->req_ended && tt_buf_len(&st->req_pend) == 0 && !st->req_trailers.h;
        int64_t sid = tt_h2_submit_request(a->h2, st->req_hdrs.h, st->req_hdrs.n, end, st);
        tt_up_hdrs_free(&st->req_hdrs);
        if (sid < 0) {
            h2_let_go(st);
            if (sid == TT_ERR_GOING_AWAY) {
                tt_up_answer(st, 502, "the app at %s is going away", up->url.hostport);
            } else if (sid == TT_ERR_NO_CONNECT_PROTOCOL) {
                tt_up_answer(st, 502,
                             "the app at h2c://%s does not take WebSockets over HTTP/2: it did "
                             "not send SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)",
                             up->url.hostport);
            } else {
                tt_up_answer(st, 502, "the request cannot be sent to the app (%s)",
                          tt_strerror((int)sid));
            }
            tt_up_release(st);
            continue;
        }
        if (end)
            st->req_end_sent = 1;
        h2_stream_link(a, st);
        st->asid = (uint32_t)sid;
        tt_up_h2_push(st);
        tt_up_release(st);
    }
    if (a->s)
        tt_session_flush(a->s);
}

/* Request body (and p's trailers) to the app stream; bytes the app's codec
 * took are given back to p's window. */
void tt_up_h2_push(struct up_stream *st)
{
    struct up_h2 *a = st->ah;
    if (!a || !st->asid || a->state != H2_UP || st->req_end_sent)
        return;
    tt_up_hold(st);
    size_t taken = 0;
    while (st->asid && tt_buf_len(&st->req_pend) > 0) {
        size_t len = tt_buf_len(&st->req_pend);
        int end = st->req_ended && !st->req_trailers.h;
        ssize_t w = tt_h2_send_data(a->h2, st->asid, tt_buf_data(&st->req_pend), len, end);
        if (w < 0) {
            tt_up_h2_abort(st, TT_H2_INTERNAL_ERROR);
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
            goto out;
        }
        if (w == 0)
            break;
        tt_buf_consume(&st->req_pend, (size_t)w);
        taken += (size_t)w;
        if ((size_t)w == len && end)
            st->req_end_sent = 1;
    }
    if (taken)
        tt_ts_consume(tt_up_ts(st), taken);
    if (st->asid && !st->req_end_sent && st->req_ended && tt_buf_len(&st->req_pend) == 0) {
        if (st->req_trailers.h) {
            int rc = tt_h2_submit_headers(a->h2, st->asid, st->req_trailers.h, st->req_trailers.n, 1);
            if (rc == TT_ERR_NOMEM)
                goto out; /* again on_writable */
            tt_up_hdrs_free(&st->req_trailers);
        } else {
            if (tt_h2_send_data(a->h2, st->asid, NULL, 0, 1) < 0) {
                tt_up_h2_abort(st, TT_H2_INTERNAL_ERROR);
                tt_up_reset(st, TT_H2_INTERNAL_ERROR);
                goto out;
            }
        }
        st->req_end_sent = 1;
    }
    if (tt_buf_len(&st->req_pend) == 0)
        tt_buf_shrink(&st->req_pend);
out:
    if (a->s)
        tt_session_flush(a->s);
    tt_up_release(st);
}

/* p's side ended or failed: the app stream goes too. */
void tt_up_h2_abort(struct up_stream *st, uint32_t code)
{
    if (st->waiting) {
        h2_let_go(st);
        return;
    }
    struct up_h2 *a = st->ah;
    if (a && st->asid && a->state == H2_UP) {
        tt_up_hold(st);
        (void)tt_h2_submit_rst(a->h2, st->asid, code); /* fires ah_on_stream_close */
        if (a->s)
            tt_session_flush(a->s);
        tt_up_release(st);
    }
    h2_let_go(st);
}

void tt_up_h2_open(struct up_stream *st, const struct tt_h2_headers *h)
{
    struct tt_upstream *up = st->up;
    if (tt_up_hdrs_copy(&st->req_hdrs, h->hdrs, h->count)) {
        tt_up_reset(st, TT_H2_REFUSED_STREAM);
        return;
    }
    st->ext_connect = h->protocol.len > 0;
    st->a_open = 1;
    tt_up_hold(st); /* the app side's hold */
    h2_wait_add(st);
    if (!up->h2cur)
        h2_connect(up);
    else
        h2_submit_waiting(up);
}

/* ---- h2c: app connection callbacks ---- */

static int ah_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    (void)ud;
    (void)sid;
    struct up_stream *st = sud;
    if (!st)
        return 0;
    tt_up_hold(st);
    if (h->end_stream)
        st->app_ended = 1;
    if (h->kind == TT_H2_HDRS_RESPONSE) {
        tt_up_head(st, h->hdrs, h->count, h->end_stream);
    } else if (h->kind == TT_H2_HDRS_TRAILERS) {
        /* gRPC's grpc-status lives here: passed on after the body. */
        if (!st->resp_ended && st->t_open) {
            if (tt_up_hdrs_copy(&st->resp_trailers, h->hdrs, h->count))
                tt_up_reset(st, TT_H2_INTERNAL_ERROR);
            st->resp_ended = 1;
            tt_up_pump(st);
        }
    } else if (h->kind == TT_H2_HDRS_INFORMATIONAL) {
        tt_up_interim(st, h->status, h->hdrs, h->count);
    }
    tt_up_release(st);
    return 0;
}

static int ah_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    struct up_h2 *a = ud;
    struct up_stream *st = sud;
    if (!st || !st->t_open) {
        tt_h2_consume(a->h2, sid, len);
        return 0;
    }
    tt_up_hold(st);
    if (end_stream)
        st->app_ended = 1;
    ssize_t taken = len ? tt_up_body(st, data, len) : 0;
    if (taken < 0)
        tt_h2_consume(a->h2, sid, len); /* dropped */
    else if (taken > 0)
        tt_h2_consume(a->h2, sid, (size_t)taken);
    if (end_stream && st->t_open) {
        st->resp_ended = 1;
        tt_up_pump(st);
    }
    tt_up_release(st);
    return 0;
}

static void ah_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct up_h2 *a = ud;
    struct up_stream *st = sud;
    if (!st || st->ah != a || st->asid != sid)
        return;
    tt_up_hold(st);
    /* Bytes still waiting for p hold the app's connection window: give it
     * back now, the stream cannot use it any more. */
    if (tt_buf_len(&st->resp_pend))
        tt_h2_consume(a->h2, sid, tt_buf_len(&st->resp_pend));
    h2_let_go(st);
    if (st->t_open && !(flags & TT_H2_CLOSE_RST_SENT) && (code != TT_H2_NO_ERROR || !st->resp_ended)) {
        if (flags & TT_H2_CLOSE_RST_RECEIVED) {
            /* The app reset it: p learns the same code. */
            tt_log_info("stream %" PRIu32 ": the app reset its stream (%s)", st->sid,
                        tt_h2_strerror(code));
            tt_up_reset(st, code);
        } else if (!st->head_sent && !st->head_pending) {
            tt_up_answer(st, 502, "the app at %s closed the connection before answering",
                      a->up->url.hostport);
        } else {
            tt_log_warn("stream %" PRIu32 ": the connection to the app was lost mid-response",
                        st->sid);
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
        }
    }
    tt_up_release(st);
    h2_submit_waiting(a->up);
}

static void ah_on_window_update(void *ud, uint32_t sid, void *sud)
{
    struct up_h2 *a = ud;
    if (sid) {
        if (sud)
            tt_up_h2_push(sud);
        return;
    }
    for (struct up_stream *st = a->streams; st;) {
        struct up_stream *next = st->anext;
        if (tt_buf_len(&st->req_pend) || (st->req_ended && !st->req_end_sent))
            tt_up_h2_push(st);
        st = next;
    }
}

static void ah_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    struct up_h2 *a = ud;
    tt_log_info("the app at %s sent GOAWAY (%s, last stream %" PRIu32 ")%s%.*s",
                a->up->url.hostport, tt_h2_strerror(code), last_sid, debug.len ? ": " : "",
                (int)(debug.len > 100 ? 100 : debug.len), (const char *)debug.base);
    /* New streams go to a new connection; this one finishes its own. */
    if (a->up->h2cur == a)
        a->up->h2cur = NULL;
}

static void ah_on_ping_ack(void *ud, uint64_t opaque)
{
    (void)ud;
    (void)opaque;
}

static void ah_on_remote_settings(void *ud)
{
    struct up_h2 *a = ud;
    h2_submit_waiting(a->up);
}

static void ah_on_writable(void *ud, struct tt_session *s)
{
    (void)s;
    ah_on_window_update(ud, 0, NULL);
}

static void ah_on_closed(void *ud, struct tt_session *s, const char *reason)
{
    (void)s;
    struct up_h2 *a = ud;
    struct tt_upstream *up = a->up;
    tt_log_info("connection to the app at %s closed: %s", up->url.hostport, reason);
    a->state = H2_GONE;
    a->s = NULL;
    a->h2 = NULL;
    while (a->streams) /* normally none: each had on_stream_close */
        h2_let_go(a->streams);
    h2_list_remove(a);
    tt_mem_free(a);
    /* Streams still waiting (no slot was free) get a new connection. */
    if (!up->closing && up->wait_head && !up->h2cur)
        h2_connect(up);
}

static const struct tt_session_callbacks ah_callbacks = {
    .h2 =
        {
            .on_headers = ah_on_headers,
            .on_data = ah_on_data,
            .on_stream_close = ah_on_stream_close,
            .on_window_update = ah_on_window_update,
            .on_goaway = ah_on_goaway,
            .on_ping_ack = ah_on_ping_ack,
            .on_remote_settings = ah_on_remote_settings,
        },
    .on_writable = ah_on_writable,
    .on_closed = ah_on_closed,
};

/* No connection could be made: every waiting stream hears 502. */
static void h2_connect_failed_why(struct up_h2 *a, const char *what, const char *why)
{
    struct tt_upstream *up = a->up;
    tt_log_warn("cannot connect to the app at %s: %s", up->url.hostport, why);
    tt_io_stop(up->loop, &a->io);
    tt_timer_stop(up->loop, &a->timer);
    if (a->fd >= 0)
        close(a->fd);
    h2_list_remove(a);
    tt_mem_free(a);
    while (up->wait_head) {
        struct up_stream *st = up->wait_head;
        tt_up_hold(st);
        h2_let_go(st);
        tt_up_answer(st, 502, "the app at %s %s (%s)", up->url.hostport, what, why);
        tt_up_release(st);
    }
}

static void h2_connect_failed(struct up_h2 *a, int err)
{
    h2_connect_failed_why(a, "refused the connection", strerror(err));
}

static void h2_on_connect_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)events;
    struct up_h2 *a = io->data;
    struct tt_upstream *up = a->up;
    int err = tt_up_connect_result(a->fd);
    tt_io_stop(loop, &a->io);
    if (err) {
        close(a->fd);
        a->tries++;
        a->fd = tt_up_connect(up, &a->tries, &a->idx);
        if (a->fd < 0 || tt_io_start(loop, &a->io, a->fd, TT_IO_WRITE, h2_on_connect_io, a) < 0) {
            if (a->fd >= 0) {
                close(a->fd);
                a->fd = -1;
            }
            h2_connect_failed(a, err);
        }
        return;
    }
    tt_timer_stop(loop, &a->timer);
    up->pref = a->idx;
    struct tt_tls_conn plain;
    tt_tls_conn_init_plain(&plain, a->fd);
    a->fd = -1;
    a->s = tt_session_new(loop, &plain, TT_H2_CLIENT, &up->acfg, &ah_callbacks, a, NULL, 0);
    if (!a->s) {
        h2_connect_failed(a, ENOMEM);
        return;
    }
    a->h2 = tt_session_h2(a->s);
    a->state = H2_UP;
    tt_log_info("connected to the app at %s (h2c)", up->url.hostport);
    h2_submit_waiting(up);
}

static void h2_on_connect_timer(struct tt_loop *loop, struct tt_timer *tm)
{
    (void)loop;
    h2_connect_failed(tm->data, ETIMEDOUT);
}

static void h2_connect(struct tt_upstream *up)
{
    struct up_h2 *a = tt_mem_calloc(1, sizeof *a);
    if (!a) {
        /* Waiting streams time out with 504 (their head timer). */
        return;
    }
    a->up = up;
    a->state = H2_CONNECTING;
    tt_timer_init(&a->timer, h2_on_connect_timer, a);
    a->next = up->h2all;
    if (up->h2all)
        up->h2all->prev = a;
    up->h2all = a;
    up->h2cur = a;
    h2_connect_start(a);
}

static void h2_connect_start(struct up_h2 *a)
{
    struct tt_upstream *up = a->up;
    a->fd = tt_up_connect(up, &a->tries, &a->idx);
    if (a->fd == UP_RESOLVING) {
        a->fd = -1;
        a->resolving = 1; /* up_on_resolved calls again */
        return;
    }
    if (a->fd < 0) {
        h2_connect_failed(a, errno);
        return;
    }
    if (tt_io_start(up->loop, &a->io, a->fd, TT_IO_WRITE, h2_on_connect_io, a) < 0) {
        int err = errno;
        close(a->fd);
        a->fd = -1;
        h2_connect_failed(a, err);
        return;
    }
    tt_timer_start(up->loop, &a->timer, UP_CONNECT_TIMEOUT_MS);
}

/* The tunnel stream closed.  The app stream is let go quietly only when
 * both of its halves are done: the app has the whole request and sent its
 * END_STREAM.  Anything else -- p's reset, the tunnel lost, or a response
 * of c's own (502, 504) that ended the tunnel stream while the app still
 * works -- resets it, so the app stops at once rather than at its own
 * deadline (issue 10). */
void tt_up_h2_stream_closed(struct up_stream *st, uint32_t code, unsigned flags)
{
    uint32_t acode = code;
    if (code == TT_H2_NO_ERROR || (flags & TT_H2_CLOSE_CONN))
        acode = TT_H2_CANCEL;
    if (code != TT_H2_NO_ERROR || !st->req_end_sent || !st->app_ended)
        tt_up_h2_abort(st, acode);
    else
        h2_let_go(st);
}

/* The app's name lookup ended (tt_up_app.resolved): h2c connections that
 * waited for it connect now, or fail. */
static void h2_on_resolved(struct tt_upstream *up, const char *why)
{
    for (;;) {
        if (up->res)
            return;
        struct up_h2 *a = up->h2all;
        while (a && !a->resolving)
            a = a->next;
        if (!a)
            break;
        a->resolving = 0;
        if (up->ai)
            h2_connect_start(a);
        else
            h2_connect_failed_why(a, "could not be resolved", why ? why : "no address");
    }
}

int tt_up_h2_close_sessions(struct tt_upstream *up)
{
    int n = 0;
    for (struct up_h2 *a = up->h2all; a; a = a->next) {
        if (a->s && !tt_session_closing(a->s)) {
            tt_session_close(a->s, "c is exiting");
            n++;
        }
    }
    return n;
}

int tt_up_h2_free_all(struct tt_upstream *up)
{
    /* h2c connections not made yet hold no session: they go now.  Sessions
     * only close at a safe point on the loop (tt_up_h2_close_sessions
     * before the loop's last turn); one still open stays to the process's
     * end. */
    for (struct up_h2 *a = up->h2all, *next; a; a = next) {
        next = a->next;
        if (a->s)
            continue;
        tt_io_stop(up->loop, &a->io);
        tt_timer_stop(up->loop, &a->timer);
        if (a->fd >= 0)
            close(a->fd);
        a->fd = -1;
        if (!a->streams) {
            h2_list_remove(a);
            tt_mem_free(a);
        }
    }
    return up->h2all != NULL;
}

/* tt_up_pump queued `n` bytes of the app's response to p: the app stream
 * gets that much window back, so the app is held by p's pace (the bytes
 * counted against the app connection's receive window until now).
 *
 * The pump mostly runs from the *tunnel's* callbacks (p's WINDOW_UPDATE,
 * the tunnel's output drained), which flush the tunnel session and not this
 * one: without a flush of our own the WINDOW_UPDATE to the app waited for
 * whatever wrote to the app connection next -- its keepalive PING, 15 s
 * later -- and a 16 MiB gRPC message took 15 to 45 s (issue 10). */
static void h2_credit(struct up_stream *st, size_t n)
{
    if (st->ah && st->asid) {
        struct tt_h2_conn *ah2 = h2_conn(st->ah);
        if (ah2) {
            tt_h2_consume(ah2, st->asid, n);
            if (st->ah->s)
                tt_session_flush(st->ah->s);
        }
    }
}

const struct tt_up_app tt_up_h2_app = {
    .credit = h2_credit,
    .resume = NULL, /* nothing is paused: the window holds the app */
    .resolved = h2_on_resolved,
};
