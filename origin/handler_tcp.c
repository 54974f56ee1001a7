/*
 * The --tcp handler: each CONNECT stream (RFC 9113 §8.5) is one TCP
 * connection to the configured service, never to what the request names.
 *
 *   p's stream                                    the service's socket
 *     CONNECT head  ---------------------------->  non-blocking connect
 *     200 (no END_STREAM)  <----------------------  connected
 *     502, text body, END_STREAM  <---------------  refused, timed out (10 s)
 *     DATA  -> out ------------------------------>  send()
 *     END_STREAM  ------------------------------->  shutdown(SHUT_WR) after `out`
 *     DATA  <-------------------------------------  recv()
 *     END_STREAM  <-------------------------------  FIN (recv() == 0)
 *     RST_STREAM from p (any code), tunnel lost  ->  close with SO_LINGER {1, 0}:
 *                                                   an RST to the service
 *     RST_STREAM(CONNECT_ERROR)  <----------------  ECONNRESET, any socket error
 *
 * Backpressure, both ways.  The socket is read only while the stream has
 * room (tt_ts_room: both windows and the output buffer), straight into the
 * codec's output behind a DATA frame header (tt_ts_reserve/commit), so the
 * handler holds no byte of the service's: when room runs out the socket is
 * no longer watched for reading and the stream waits on the tunnel's list
 * (tt_ts_wait); the kernel's buffers then fill and the service's writes
 * block.  `pump` reads one chunk and the readable event at most a few, so
 * one busy service cannot starve the tunnel's other streams.  Request bytes
 * are written to the socket as they come and given back to p's window
 * (tt_ts_consume) only once written: what the socket does not take waits in
 * `out`, which p's stream window bounds (a slow service slows the client).
 *
 * Half-closes are kept: a FIN either way is an END_STREAM the other way,
 * and the other direction goes on until it ends too.  p's END_STREAM can
 * close the stream (both ends done) while `out` still holds bytes; the
 * handler then keeps its hold on the record and finishes writing them, then
 * sends its FIN and closes.  A clean end closes the socket with both FINs
 * exchanged.
 *
 * No idle timeout: an SSH session may sit quiet for hours.  The tunnel's
 * PINGs and p's client idle rules say when the far side is gone.
 *
 * Anything that is not a plain CONNECT gets a short text answer: 405 with
 * `allow: CONNECT` for another method, 501 for an extended CONNECT
 * (RFC 8441's :protocol, which names a protocol this mode does not speak).
 *
 * Lifetime.  While the stream has a lookup, a timer or a socket of its own,
 * the handler holds the record (`held`); the callbacks from the loop hold it
 * too while they run, since a send can close the stream under them.
 * tcp_let_go ends all of that, and is the one place that closes the socket.
 */
#include "origin/handler_tcp.h"
#include "origin/ws_upgrade.h"

#include "codec/buf.h"
#include "proto/http1.h"
#include "proto/log.h"
#include "proto/resolve.h"
#include "proto/text.h"
#include "proto/websocket.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_CHUNK (64u << 10)    /* one chunk read from the service */
#define TCP_ROUNDS 4u            /* chunks per readable event */
#define TCP_PEND_MAX (32u << 20) /* `out`: p's stream window bounds it; a guard */

struct tt_tcp {
    struct tt_loop *loop;
    uint32_t connect_timeout_ms;
    int websocket;           /* WebSockets to an HTTP/1.1 app (tt_tcp_set_websocket) */
    char default_host[300];  /* ... the Host of a request without :authority */
    char host[256]; /* without brackets */
    char port[8];
    char target[272]; /* host:port or [v6]:port, for the log and answers */
};

enum tcp_state {
    TCP_IDLE = 0,   /* answered (405, 501) or not started */
    TCP_RESOLVING,  /* the service's name is being looked up */
    TCP_CONNECTING, /* a connect is in progress */
    TCP_HANDSHAKE,  /* WebSocket: the upgrade went to the app, its answer is awaited */
    TCP_OPEN,       /* connected: bytes flow */
    TCP_DONE,       /* the socket is closed (tcp_let_go) */
};

enum tcp_answer {
    ANS_NONE = 0,
    ANS_HEAD, /* our answer's head is still to go */
    ANS_BODY, /* ... its body */
    ANS_SENT,
};

/* The handler's part of a tunnel stream record. */
struct tcp_stream {
    struct tt_tcp *t;
    enum tcp_state state;
    int fd;
    struct tt_io io;
    struct tt_timer timer;   /* the connect's deadline */
    struct tt_resolve *res;  /* the lookup in flight */
    struct addrinfo *ai;     /* the service's addresses, until connected */
    struct addrinfo *next;   /* the next one to try */
    int last_err;            /* why the last address failed */
    tt_buf out;              /* p's bytes the socket has not taken yet */
    uint64_t to_service;     /* bytes written to the service, for the debug log */
    size_t own;              /* the first bytes of `out` are ours (the upgrade head), not p's */
    struct tt_wsu *ws;       /* WebSocket: the upgrade under way (or its refusal going to p) */
    uint8_t ws_answer;       /* ... the refusal: its head sent (2) or to send (1) */
    size_t ws_answer_off;    /* ... its body bytes sent */
    unsigned held : 1;       /* our hold on the record */
    unsigned watching : 1;   /* io is started */
    unsigned head_pending : 1; /* the 200 did not fit: pump sends it */
    unsigned rd_blocked : 1; /* no room towards p: not reading, on the waiting list */
    unsigned rd_eof : 1;     /* the service's FIN was read */
    unsigned end_pending : 1; /* ... and its END_STREAM did not fit */
    unsigned end_sent : 1;   /* END_STREAM went to p */
    unsigned req_ended : 1;  /* p's END_STREAM arrived */
    unsigned wr_shut : 1;    /* the service has our FIN */
    unsigned closed : 1;     /* the stream closed cleanly; `out` is still being written */
    /* A text answer of our own (405, 501, 502). */
    uint8_t ans;
    uint16_t ans_status;
    uint16_t ans_len, ans_off;
    const char *ans_allow;
    char ans_text[240];
};

_Static_assert(sizeof(struct tcp_stream) <= TT_TCP_STREAM_SIZE, "raise TT_TCP_STREAM_SIZE");

static struct tt_ts *tcp_ts(struct tcp_stream *st) { return tt_ts_of(st); }

static int iov_is(tt_iov v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && !memcmp(v.base, s, n);
}

/* ---- the record's life ---------------------------------------------------- */

static void tcp_hold(struct tcp_stream *st)
{
    if (!st->held) {
        st->held = 1;
        tt_ts_hold(tcp_ts(st));
    }
}

/* Ends everything the stream has outside the tunnel: the lookup, the timer,
 * the socket (`rst`: with SO_LINGER {1, 0}, so the service gets an RST
 * rather than a FIN), and our hold.  The record may be freed inside when
 * nobody else holds it: callers hold it or touch nothing after. */
static void tcp_let_go(struct tcp_stream *st, int rst)
{
    struct tt_tcp *t = st->t;
    st->state = TCP_DONE;
    tt_timer_stop(t->loop, &st->timer);
    if (st->res) {
        tt_resolve_cancel(st->res);
        st->res = NULL;
    }
    if (st->ai) {
        freeaddrinfo(st->ai);
        st->ai = st->next = NULL;
    }
    if (st->watching) {
        tt_io_stop(t->loop, &st->io);
        st->watching = 0;
    }
    if (st->fd >= 0) {
        if (rst) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(st->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(st->fd);
        st->fd = -1;
    }
    tt_buf_consume(&st->out, tt_buf_len(&st->out));
    tt_buf_shrink(&st->out);
    st->rd_blocked = 0;
    tt_ts_unwait(tcp_ts(st));
    if (st->held) {
        st->held = 0;
        tt_ts_release(tcp_ts(st));
    }
}

/* ---- our own answers ------------------------------------------------------ */

/* Sends what is left of the answer; returns the DATA bytes queued. */
static size_t tcp_answer_push(struct tcp_stream *st)
{
    struct tt_ts *ts = tcp_ts(st);
    if (st->ans == ANS_HEAD) {
        char status[8], clen[16];
        snprintf(status, sizeof status, "%u", st->ans_status);
        snprintf(clen, sizeof clen, "%u", st->ans_len);
        struct tt_header h[4] = {
            {":status", status, 7, (uint32_t)strlen(status), 0},
            {"content-type", "text/plain; charset=utf-8", 12, 25, 0},
            {"content-length", clen, 14, (uint32_t)strlen(clen), 0},
        };
        size_t n = 3;
        if (st->ans_allow) /* RFC 9110 §15.5.6: a 405 says what is allowed */
            h[n++] = (struct tt_header){"allow", st->ans_allow, 5,
                                        (uint32_t)strlen(st->ans_allow), 0};
        int rc = tt_ts_headers(ts, h, n, 0);
        if (rc == TT_ERR_NOMEM && !tt_ts_closed(ts)) {
            /* The output is full of other streams' DATA: the pump retries. */
            tt_ts_wait(ts);
            return 0;
        }
        if (rc < 0) {
            tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
            return 0;
        }
        st->ans = ANS_BODY;
    }
    if (st->ans != ANS_BODY)
        return 0;
    ssize_t w = tt_ts_send(ts, st->ans_text + st->ans_off, st->ans_len - st->ans_off, 1);
    if (w < 0) {
        if (w == TT_ERR_NOMEM && !tt_ts_closed(ts)) {
            tt_ts_wait(ts);
            return 0;
        }
        tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
        return 0;
    }
    st->ans_off += (uint16_t)w;
    if (st->ans_off < st->ans_len) {
        tt_ts_wait(ts);
        return (size_t)w;
    }
    st->ans = ANS_SENT;
    tt_ts_unwait(ts);
    /* RFC 9113 §8.1: the answer is complete; p need not send the rest of a
     * request nobody will read. */
    if (!st->req_ended && !tt_ts_closed(ts))
        tt_ts_reset(ts, TT_H2_NO_ERROR);
    return (size_t)w;
}

static void tcp_answer(struct tcp_stream *st, int status, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void tcp_answer(struct tcp_stream *st, int status, const char *allow, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(st->ans_text, sizeof st->ans_text - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof st->ans_text - 2)
        n = (int)sizeof st->ans_text - 2;
    st->ans_text[n++] = '\n';
    st->ans_text[n] = 0;
    st->ans_len = (uint16_t)n;
    st->ans_off = 0;
    st->ans_status = (uint16_t)status;
    st->ans_allow = allow;
    st->ans = ANS_HEAD;
    tcp_answer_push(st);
}

/* The connect failed: the socket goes, p gets 502 saying why. */
static void tcp_fail(struct tcp_stream *st, const char *why)
{
    tt_log_info("stream %" PRIu32 ": CONNECT to %s failed: %s", tt_ts_id(tcp_ts(st)),
                st->t->target, why);
    tcp_let_go(st, 0);
    tcp_answer(st, 502, NULL, "c could not connect to the TCP service at %s: %s", st->t->target,
               why);
}

/* The connection broke after the 200: RFC 9113 §8.5, CONNECT_ERROR. */
static void tcp_conn_error(struct tcp_stream *st, const char *doing, int err)
{
    struct tt_ts *ts = tcp_ts(st);
    tt_log_info("stream %" PRIu32 ": %s the TCP service at %s failed (%s): resetting the stream",
                tt_ts_id(ts), doing, st->t->target, strerror(err));
    tcp_let_go(st, 0);
    tt_ts_reset(ts, TT_H2_CONNECT_ERROR);
}

/* ---- the socket ------------------------------------------------------------ */

static void tcp_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events);

static void tcp_update_io(struct tcp_stream *st)
{
    if (st->fd < 0 || st->state == TCP_DONE)
        return;
    unsigned ev = 0;
    if (st->state == TCP_CONNECTING) {
        ev = TT_IO_WRITE;
    } else if (st->state == TCP_OPEN) {
        if (tt_buf_len(&st->out))
            ev |= TT_IO_WRITE;
        if (!st->closed && !st->head_pending && !st->rd_eof && !st->rd_blocked)
            ev |= TT_IO_READ;
    } else if (st->state == TCP_HANDSHAKE) {
        if (st->own)
            ev |= TT_IO_WRITE; /* the rest of the upgrade head */
        if (!st->ws_answer)
            ev |= TT_IO_READ; /* the app's answer */
    }
    int rc;
    if (!st->watching) {
        rc = tt_io_start(st->t->loop, &st->io, st->fd, ev, tcp_on_io, st);
        st->watching = rc == 0;
    } else {
        rc = tt_io_modify(st->t->loop, &st->io, ev);
    }
    if (rc < 0) {
        if (st->state == TCP_OPEN)
            tcp_conn_error(st, "watching", errno);
        else
            tcp_fail(st, "the event loop could not watch the socket");
    }
}

/* Both directions are done: the socket closes with both FINs exchanged. */
static void tcp_check_done(struct tcp_stream *st)
{
    if (st->state == TCP_OPEN && st->end_sent && st->wr_shut)
        tcp_let_go(st, 0);
}

/* The service's FIN as END_STREAM (again from the pump when the output was
 * full). */
static void tcp_send_end(struct tcp_stream *st)
{
    struct tt_ts *ts = tcp_ts(st);
    ssize_t w = tt_ts_send(ts, NULL, 0, 1);
    if (w == TT_ERR_NOMEM && !tt_ts_closed(ts)) {
        st->end_pending = 1;
        tt_ts_wait(ts);
        return;
    }
    st->end_pending = 0;
    if (w < 0 && !tt_ts_closed(ts)) {
        tcp_let_go(st, 1);
        tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
        return;
    }
    st->end_sent = 1;
    tcp_check_done(st);
}

/* Reading stopped for lack of room: the pump resumes it. */
static void tcp_block(struct tcp_stream *st)
{
    st->rd_blocked = 1;
    tt_ts_wait(tcp_ts(st));
}

/* Reads one chunk (at most TCP_CHUNK, never more than the room) from the
 * service straight into DATA frames.  Returns the bytes queued; the state
 * says what stopped it (rd_blocked, rd_eof, an error, or nothing: the
 * socket had no more for now). */
static size_t tcp_read_chunk(struct tcp_stream *st)
{
    struct tt_ts *ts = tcp_ts(st);
    size_t total = 0;
    while (total < TCP_CHUNK && st->state == TCP_OPEN) {
        size_t room = tt_ts_room(ts);
        if (room == 0) {
            tcp_block(st);
            break;
        }
        size_t want = TCP_CHUNK - total, granted = 0;
        uint8_t *dst = tt_ts_reserve(ts, want < room ? want : room, &granted);
        if (!dst || granted == 0) {
            if (dst)
                (void)tt_ts_commit(ts, 0, 0);
            tcp_block(st); /* the output buffer is full: on_writable pumps */
            break;
        }
        /* Nothing but filling the reserved bytes between reserve and commit. */
        ssize_t r = recv(st->fd, dst, granted, 0);
        int err = errno;
        if (tt_ts_commit(ts, r > 0 ? (size_t)r : 0, 0) < 0) {
            tcp_let_go(st, 1);
            tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
            break;
        }
        if (r > 0) {
            total += (size_t)r;
            if ((size_t)r < granted)
                break; /* the socket is most likely empty */
            continue;
        }
        if (r == 0) {
            st->rd_eof = 1;
            tcp_send_end(st);
            break;
        }
        if (err == EINTR)
            continue;
        if (err != EAGAIN && err != EWOULDBLOCK)
            tcp_conn_error(st, "reading from", err);
        break;
    }
    return total;
}

/* After `out` is written: p's END_STREAM becomes our FIN. */
static void tcp_maybe_shut(struct tcp_stream *st)
{
    if (st->state != TCP_OPEN || !st->req_ended || st->wr_shut || tt_buf_len(&st->out))
        return;
    if (shutdown(st->fd, SHUT_WR) < 0) {
        tcp_conn_error(st, "shutting down the write side to", errno);
        return;
    }
    st->wr_shut = 1;
    tt_log_debug("stream %" PRIu32 ": p ended its side: FIN to the service after %" PRIu64
                 " bytes",
                 tt_ts_id(tcp_ts(st)), st->to_service);
    tcp_check_done(st);
}

/* Writes `n` bytes to the service as far as it takes them, giving p's
 * window back for each byte written.  Returns the bytes written, or -1
 * after a socket error (the stream is reset then). */
static ssize_t tcp_send_bytes(struct tcp_stream *st, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(st->fd, p + done, n - done, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            tcp_conn_error(st, "writing to", errno);
            return -1;
        }
        done += (size_t)w;
    }
    st->to_service += done;
    /* In the service's socket: now p may send more (for p's bytes, not for
     * the upgrade head that went before them). */
    size_t ours = done < st->own ? done : st->own;
    st->own -= ours;
    tt_ts_consume(tcp_ts(st), done - ours);
    return (ssize_t)done;
}

static void tcp_write(struct tcp_stream *st)
{
    if (st->state != TCP_OPEN && st->state != TCP_HANDSHAKE)
        return;
    /* During the handshake only the upgrade head goes: p's bytes wait for
     * the app's 101 (RFC 6455 §4.1), or an app that ignores Upgrade would
     * read them as a request of their own, past p's routing. */
    size_t len = st->state == TCP_HANDSHAKE && st->own < tt_buf_len(&st->out) ? st->own
                                                                             : tt_buf_len(&st->out);
    if (len) {
        ssize_t w = tcp_send_bytes(st, tt_buf_data(&st->out), len);
        if (w < 0)
            return;
        tt_buf_consume(&st->out, (size_t)w);
        if (tt_buf_len(&st->out) == 0)
            tt_buf_shrink(&st->out);
    }
    tcp_maybe_shut(st);
    tcp_update_io(st);
}

/* ---- connecting ------------------------------------------------------------ */

static void tcp_send_head(struct tcp_stream *st)
{
    static const struct tt_header ok[] = {{":status", "200", 7, 3, 0}};
    struct tt_ts *ts = tcp_ts(st);
    int rc = tt_ts_headers(ts, ok, 1, 0);
    if (rc == TT_ERR_NOMEM && !tt_ts_closed(ts)) {
        st->head_pending = 1;
        tt_ts_wait(ts);
        return;
    }
    st->head_pending = 0;
    if (rc < 0) {
        tcp_let_go(st, 1);
        tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
        return;
    }
    tt_ts_unwait(ts);
}

static void tcp_connected(struct tcp_stream *st)
{
    freeaddrinfo(st->ai);
    st->ai = st->next = NULL;
    int one = 1; /* interactive protocols (SSH) want their small writes sent at once */
    setsockopt(st->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    tt_log_debug("stream %" PRIu32 ": connected to %s", tt_ts_id(tcp_ts(st)), st->t->target);
    if (st->ws) {
        /* The upgrade head goes, then the app's answer is awaited; the
         * connect's deadline now bounds the handshake too. */
        st->state = TCP_HANDSHAKE;
        tcp_write(st);
        return;
    }
    tt_timer_stop(st->t->loop, &st->timer);
    st->state = TCP_OPEN;
    tcp_send_head(st);
    if (st->state != TCP_OPEN)
        return;
    /* Bytes p sent before the 200 go first. */
    tcp_write(st);
}

/* Starts a connect to the next address; without one, the stream fails. */
static void tcp_connect_next(struct tcp_stream *st)
{
    while (st->next) {
        struct addrinfo *a = st->next;
        st->next = a->ai_next;
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            st->last_err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            st->fd = fd;
            tcp_connected(st);
            return;
        }
        if (errno == EINPROGRESS) {
            st->fd = fd;
            st->state = TCP_CONNECTING;
            tcp_update_io(st);
            return;
        }
        st->last_err = errno;
        close(fd);
    }
    tcp_fail(st, strerror(st->last_err));
}

static void tcp_connect_done(struct tcp_stream *st)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(st->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr == 0) {
        tcp_connected(st);
        return;
    }
    st->last_err = soerr;
    if (st->watching) {
        tt_io_stop(st->t->loop, &st->io);
        st->watching = 0;
    }
    close(st->fd);
    st->fd = -1;
    tcp_connect_next(st);
}

static void tcp_on_resolved(void *arg, struct addrinfo *res, const char *why)
{
    struct tcp_stream *st = arg;
    struct tt_ts *ts = tcp_ts(st);
    st->res = NULL;
    tt_ts_hold(ts);
    if (!res) {
        char msg[256];
        snprintf(msg, sizeof msg, "looking up %.120s failed (%.60s)", st->t->host, why);
        tcp_fail(st, msg);
    } else {
        st->ai = st->next = res;
        tcp_connect_next(st);
    }
    tt_ts_release(ts);
}

/* ---- a WebSocket to an HTTP/1.1 app (tt_tcp_set_websocket) ---------------
 *
 * p's extended CONNECT (RFC 8441) becomes the app's opening handshake on a
 * connection of its own (origin/ws_upgrade.h says what is sent and how
 * the answer is read); here is the I/O:
 *   a valid 101    -> 200 to p with the app's fields, then bytes both ways
 *                     (as --tcp from here on);
 *   a refusal      -> passed to p as it is (its body whole), the app's
 *                     connection closed;
 *   anything else  -> 502 saying what was wrong (a 101 that is not a
 *                     WebSocket's, no answer, a broken one). */

static void ws_free(struct tcp_stream *st)
{
    tt_wsu_free(st->ws);
    st->ws = NULL;
}

static void ws_fail(struct tcp_stream *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The upgrade cannot go through: 502 with why (logged too). */
static void ws_fail(struct tcp_stream *st, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    tt_log_info("stream %" PRIu32 ": WebSocket to %s failed: %s", tt_ts_id(tcp_ts(st)),
                st->t->target, why);
    tcp_let_go(st, 0);
    ws_free(st);
    tcp_answer(st, 502, NULL, "%s", why);
}

/* Sends what is left of a refusal (again from the pump). */
static size_t ws_answer_push(struct tcp_stream *st)
{
    struct tt_ts *ts = tcp_ts(st);
    size_t blen;
    const uint8_t *body = tt_wsu_body(st->ws, &blen);
    if (st->ws_answer == 1) {
        char status[8], clen[24];
        struct tt_header h[TT_WSU_FIELDS_MAX + 2];
        int code = tt_wsu_status(st->ws);
        snprintf(status, sizeof status, "%d", code);
        snprintf(clen, sizeof clen, "%zu", blen);
        h[0] = (struct tt_header){":status", status, 7, (uint32_t)strlen(status), 0};
        size_t n = 1 + tt_wsu_fields(st->ws, h + 1);
        /* RFC 9110 §8.6: never on a 204; on a 304 it would describe the
         * representation, which the refusal did not carry. */
        if (code != 204 && code != 304)
            h[n++] = (struct tt_header){"content-length", clen, 14, (uint32_t)strlen(clen), 0};
        int rc = tt_ts_headers(ts, h, n, blen == 0);
        if (rc == TT_ERR_NOMEM && !tt_ts_closed(ts)) {
            tt_ts_wait(ts);
            return 0;
        }
        if (rc < 0) {
            st->ws_answer = 0;
            ws_free(st);
            tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
            return 0;
        }
        st->ws_answer = 2;
    }
    ssize_t sent = 0;
    if (st->ws_answer_off < blen) {
        sent = tt_ts_send(ts, body + st->ws_answer_off, blen - st->ws_answer_off, 1);
        if (sent < 0 && !(sent == TT_ERR_NOMEM && !tt_ts_closed(ts))) {
            st->ws_answer = 0;
            ws_free(st);
            tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
            return 0;
        }
        if (sent > 0)
            st->ws_answer_off += (size_t)sent;
        if (st->ws_answer_off < blen) {
            tt_ts_wait(ts);
            return sent > 0 ? (size_t)sent : 0;
        }
    }
    tt_ts_unwait(ts);
    st->ws_answer = 0;
    ws_free(st);
    if (!st->req_ended && !tt_ts_closed(ts))
        tt_ts_reset(ts, TT_H2_NO_ERROR); /* RFC 9113 §8.1: answered, the rest is not needed */
    return sent > 0 ? (size_t)sent : 0;
}

/* The app's valid 101: 200 to p and the bytes that came with the head, and
 * the stream is a pipe from now on. */
static void ws_accepted(struct tcp_stream *st)
{
    struct tt_header h[TT_WSU_FIELDS_MAX + 1];
    h[0] = (struct tt_header){":status", "200", 7, 3, 0};
    size_t n = 1 + tt_wsu_fields(st->ws, h + 1);
    struct tt_ts *ts = tcp_ts(st);
    int rc = tt_ts_headers(ts, h, n, 0);
    if (rc < 0) {
        /* The output is full right now: rare enough to fail than to queue. */
        ws_fail(st, "c could not send the answer head (%s)", tt_strerror(rc));
        return;
    }
    tt_timer_stop(st->t->loop, &st->timer);
    st->state = TCP_OPEN;
    size_t rest;
    const uint8_t *p = tt_wsu_rest(st->ws, &rest);
    if (rest) {
        /* The app's first bytes came with its head: the stream has a whole
         * window now, so they fit. */
        ssize_t sent = tt_ts_send(ts, p, rest, 0);
        if (sent < 0 || (size_t)sent < rest) {
            ws_free(st);
            tcp_conn_error(st, "passing on the first bytes of", ENOBUFS);
            return;
        }
    }
    ws_free(st);
    tt_log_debug("stream %" PRIu32 ": WebSocket to %s open", tt_ts_id(ts), st->t->target);
    tcp_write(st); /* p's bytes that waited behind the head */
}

/* Reads the app's answer to the upgrade. */
static void ws_read(struct tcp_stream *st)
{
    uint8_t buf[4096];
    ssize_t r = recv(st->fd, buf, sizeof buf, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r < 0) {
        ws_fail(st, "reading the app's answer failed: %s", strerror(errno));
        return;
    }
    switch (tt_wsu_feed(st->ws, buf, (size_t)r)) {
    case TT_WSU_MORE:
        break;
    case TT_WSU_ACCEPTED:
        ws_accepted(st);
        break;
    case TT_WSU_REFUSED:
        tt_log_info("stream %" PRIu32 ": the app at %s refused the WebSocket upgrade: %d",
                    tt_ts_id(tcp_ts(st)), st->t->target, tt_wsu_status(st->ws));
        tcp_let_go(st, 0); /* the app's connection; its answer is all in st->ws */
        st->ws_answer = 1;
        ws_answer_push(st);
        break;
    case TT_WSU_FAILED:
        ws_fail(st, "%s", tt_wsu_why(st->ws));
        break;
    }
}

/* Sets up the handshake: the upgrade head waits in `out` for the connect. */
static int ws_start(struct tcp_stream *st, const struct tt_h2_headers *h)
{
    int bad;
    st->ws = tt_wsu_new(h, st->t->default_host, &st->out, &bad);
    if (!st->ws)
        return bad ? -2 : -1;
    st->own = tt_buf_len(&st->out);
    return 0;
}

static void tcp_on_timer(struct tt_loop *loop, struct tt_timer *tm)
{
    (void)loop;
    struct tcp_stream *st = tm->data;
    struct tt_ts *ts = tcp_ts(st);
    tt_ts_hold(ts);
    if (st->state == TCP_RESOLVING || st->state == TCP_CONNECTING) {
        char msg[64];
        snprintf(msg, sizeof msg, "timed out after %g s", st->t->connect_timeout_ms / 1000.0);
        tcp_fail(st, msg);
    } else if (st->state == TCP_HANDSHAKE && !st->ws_answer) {
        ws_fail(st, "the app did not answer the WebSocket upgrade within %g s",
                st->t->connect_timeout_ms / 1000.0);
    }
    tt_ts_release(ts);
}

static void tcp_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)loop;
    struct tcp_stream *st = io->data;
    struct tt_ts *ts = tcp_ts(st);
    tt_ts_hold(ts); /* a send may close the stream under us */
    if (st->state == TCP_CONNECTING) {
        tcp_connect_done(st);
    } else if (st->state == TCP_HANDSHAKE) {
        if ((events & (TT_IO_WRITE | TT_IO_ERROR)) && st->own)
            tcp_write(st);
        if ((events & (TT_IO_READ | TT_IO_ERROR)) && st->state == TCP_HANDSHAKE && !st->ws_answer)
            ws_read(st);
        tcp_update_io(st);
    } else if (st->state == TCP_OPEN) {
        if ((events & (TT_IO_WRITE | TT_IO_ERROR)) && tt_buf_len(&st->out))
            tcp_write(st);
        if ((events & (TT_IO_READ | TT_IO_ERROR)) && st->state == TCP_OPEN && !st->closed &&
            !st->head_pending && !st->rd_eof && !st->rd_blocked) {
            /* A few chunks, then the loop's other descriptors; the socket
             * stays readable (level-triggered) if there is more. */
            for (unsigned i = 0; i < TCP_ROUNDS && st->state == TCP_OPEN && !st->rd_eof &&
                                 !st->rd_blocked;
                 i++)
                if (tcp_read_chunk(st) < TCP_CHUNK)
                    break;
        }
        tcp_update_io(st);
    }
    tt_ts_release(ts);
}

/* ---- handler ops ------------------------------------------------------------- */

static void tcp_open(void *hctx, struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct tt_tcp *t = hctx;
    struct tcp_stream *st = tt_ts_priv(ts);
    st->t = t;
    st->fd = -1;
    st->req_ended = h->end_stream != 0;
    tt_buf_init(&st->out, TCP_PEND_MAX);
    tt_timer_init(&st->timer, tcp_on_timer, st);
    if (!iov_is(h->method, "CONNECT")) {
        tcp_answer(st, 405, "CONNECT",
                   "this name serves a TCP service: only CONNECT is allowed here, not %.*s",
                   (int)(h->method.len > 32 ? 32 : h->method.len), (const char *)h->method.base);
        return;
    }
    int websocket = h->protocol.len == 9 && !strncasecmp((const char *)h->protocol.base, "websocket", 9);
    if (t->websocket != websocket) {
        if (t->websocket)
            tcp_answer(st, 501, NULL, "only WebSocket is carried to the app here, not %s",
                       h->protocol.len ? "this protocol" : "a plain CONNECT (c --tcp serves TCP)");
        else
            tcp_answer(st, 501, NULL,
                       "extended CONNECT (:protocol %.*s) is not supported: this name serves plain TCP",
                       (int)(h->protocol.len > 32 ? 32 : h->protocol.len),
                       (const char *)h->protocol.base);
        return;
    }
    if (websocket) {
        int rc = ws_start(st, h);
        if (rc < 0) {
            ws_free(st);
            tcp_answer(st, rc == -2 ? 400 : 500, NULL, "%s",
                       rc == -2 ? "a request field cannot be written in HTTP/1.1"
                                : "c is out of memory");
            return;
        }
    }
    tt_log_debug("stream %" PRIu32 ": CONNECT -> %s", tt_ts_id(ts), t->target);
    tcp_hold(st);
    tt_timer_start(t->loop, &st->timer, t->connect_timeout_ms);
    struct addrinfo *ai;
    if (tt_resolve_numeric(t->host, t->port, &ai) == 0) {
        st->ai = st->next = ai;
        tcp_connect_next(st);
        return;
    }
    st->state = TCP_RESOLVING;
    st->res = tt_resolve_start(t->loop, t->host, t->port, t->connect_timeout_ms, tcp_on_resolved, st);
    if (!st->res) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot start looking up %.120s (%.60s)", t->host, strerror(errno));
        tcp_fail(st, msg);
    }
}

static void tcp_data(struct tt_ts *ts, const uint8_t *p, size_t n, int end)
{
    struct tcp_stream *st = tt_ts_priv(ts);
    if (end)
        st->req_ended = 1;
    if (st->ans != ANS_NONE || st->state == TCP_DONE || st->state == TCP_IDLE) {
        /* Answered, or the socket is gone: nobody takes these bytes. */
        tt_ts_consume(ts, n);
        return;
    }
    if (n) {
        size_t w = 0;
        if (st->state == TCP_OPEN && tt_buf_len(&st->out) == 0) {
            /* Usually the socket takes them at once: no copy. */
            ssize_t r = tcp_send_bytes(st, p, n);
            if (r < 0)
                return;
            w = (size_t)r;
        }
        if (w < n && tt_buf_append(&st->out, p + w, n - w)) {
            tt_log_warn("stream %" PRIu32 ": more unwritten bytes than allowed: resetting it",
                        tt_ts_id(ts));
            tcp_let_go(st, 1);
            tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
            return;
        }
    }
    tcp_write(st);
}

/* Trailers on a CONNECT stream carry nothing for TCP; they end p's side. */
static void tcp_trailers(struct tt_ts *ts, const struct tt_h2_headers *h)
{
    (void)h;
    tcp_data(ts, NULL, 0, 1);
}

static size_t tcp_pump(struct tt_ts *ts)
{
    struct tcp_stream *st = tt_ts_priv(ts);
    if (st->ws_answer)
        return ws_answer_push(st);
    if (st->ans == ANS_HEAD || st->ans == ANS_BODY)
        return tcp_answer_push(st);
    if (st->state != TCP_OPEN) {
        tt_ts_unwait(ts);
        return 0;
    }
    if (st->head_pending) {
        tcp_send_head(st);
        if (st->head_pending || st->state != TCP_OPEN)
            return 0;
        tcp_update_io(st); /* now the socket is read */
        return 0;
    }
    if (st->end_pending) {
        tcp_send_end(st);
        return 0;
    }
    if (!st->rd_blocked) {
        tt_ts_unwait(ts);
        return 0;
    }
    if (tt_ts_room(ts) == 0)
        return 0; /* still no room: stay on the list */
    st->rd_blocked = 0;
    size_t n = tcp_read_chunk(st);
    if (!st->rd_blocked && !st->end_pending)
        tt_ts_unwait(ts);
    tcp_update_io(st);
    return n;
}

static void tcp_close(struct tt_ts *ts, uint32_t code, unsigned flags)
{
    struct tcp_stream *st = tt_ts_priv(ts);
    int clean = code == TT_H2_NO_ERROR &&
                !(flags & (TT_H2_CLOSE_RST_RECEIVED | TT_H2_CLOSE_RST_SENT | TT_H2_CLOSE_CONN));
    st->head_pending = st->end_pending = 0;
    st->rd_blocked = 0;
    if (st->state == TCP_DONE || st->state == TCP_IDLE)
        return;
    if (clean && st->state == TCP_OPEN && !st->wr_shut) {
        /* Both ends sent END_STREAM, but the service has not taken all of
         * p's bytes yet: keep the record and finish, then FIN. */
        st->closed = 1;
        tcp_update_io(st);
        return;
    }
    if (!clean)
        tt_log_debug("stream %" PRIu32 ": %s: RST to the service", tt_ts_id(ts),
                     (flags & TT_H2_CLOSE_CONN) ? "tunnel lost" : "reset");
    /* A reset by p is the client's connection torn down: the service hears
     * it the same way, as an RST. */
    tcp_let_go(st, !clean);
}

static void tcp_free(struct tt_ts *ts)
{
    struct tcp_stream *st = tt_ts_priv(ts);
    ws_free(st);
    tt_buf_free(&st->out);
}

const struct tt_handler tt_tcp_handler = {
    .stream_size = sizeof(struct tcp_stream),
    .open = tcp_open,
    .data = tcp_data,
    .trailers = tcp_trailers,
    .pump = tcp_pump,
    .close = tcp_close,
    .free = tcp_free,
};

struct tt_tcp *tt_tcp_new(struct tt_loop *loop, const char *host, const char *port,
                          uint32_t connect_timeout_ms)
{
    struct tt_tcp *t = tt_mem_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (strlen(host) >= sizeof t->host || strlen(port) >= sizeof t->port) {
        tt_mem_free(t);
        return NULL;
    }
    t->loop = loop;
    t->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : TT_TCP_CONNECT_TIMEOUT_MS;
    snprintf(t->host, sizeof t->host, "%s", host);
    snprintf(t->port, sizeof t->port, "%s", port);
    snprintf(t->target, sizeof t->target, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    return t;
}

void tt_tcp_set_websocket(struct tt_tcp *t, const char *default_host)
{
    t->websocket = 1;
    snprintf(t->default_host, sizeof t->default_host, "%s", default_host);
}

void tt_tcp_free(struct tt_tcp *t) { tt_mem_free(t); }
