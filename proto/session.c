/*
 * The session driver: one HTTP/2 connection (codec/h2.h) on one TLS
 * connection, on the loop.
 *
 * Reading: on readable, read into a 256 KiB buffer on the stack until the
 * socket has nothing more or the buffer is full, feed the codec once, and
 * go again while OpenSSL still holds decrypted bytes (epoll cannot see
 * those) for a few rounds; the rest waits for a deferred read, so one busy
 * tunnel cannot starve the others.  A big buffer matters: the codec hands
 * DATA to on_data per frame per feed, so with large frames p writes to its
 * client once per buffer rather than once per 16 KiB record.  (OpenSSL's
 * read-ahead stays off: with a big read buffer it moves the unread tail to
 * the buffer's front before every record, which cost p more CPU than the
 * second recv() per record it saves.)  The buffer lives on the stack rather
 * than in the session so that an idle session holds no receive buffer at
 * all (with SSL_MODE_RELEASE_BUFFERS, an idle tunnel is the codec state plus
 * a small SSL object).
 *
 * Writing: every submit ends in tt_session_flush(), which only queues a
 * deferred flush; the flush runs once after the loop's batch of events and
 * writes the codec's output until OpenSSL says WANT_WRITE, then waits for
 * the socket.  Producers are told (on_writable) once the output has drained
 * below an eighth of max_output after having been above half of it.
 *
 * Liveness: any byte received counts as life.  After ping_interval_ms of
 * silence we PING; if nothing at all arrives within ping_timeout_ms after
 * that, the peer is dropped -- unless the peer's TCP acknowledged more of
 * our bytes meanwhile: then our PING is queued behind our own data (a busy
 * upload over a slow link, where nothing flows back) and the peer is alive,
 * so the wait starts again.  A hung peer stops acknowledging once its
 * receive buffer is full, and is dropped one timeout later.  With
 * ping_needs_streams, a connection without open streams is not pinged at
 * all (its silence is not a question).  The SETTINGS ACK has its own deadline
 * (RFC 9113 §6.5.3: SETTINGS_TIMEOUT).
 *
 * Closing is always deferred to a safe point (the close defer), so any
 * callback may call tt_session_close(); the sequence there is: a best-effort
 * write of what is pending (a GOAWAY), tt_h2_transport_closed() so every
 * open stream hears TT_H2_CLOSE_CONN, on_closed, then free.
 */
#include "session.h"

#include "codec/buf.h"

#include <openssl/err.h>

#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SS_READ_BUF (256 * 1024)
/* Read rounds per readable event before yielding to other descriptors. */
#define SS_READ_ROUNDS 4
/* Longest wait for the peer's side of a graceful close (see ss_linger). */
#define SS_LINGER_MS 2000

struct tt_session {
    struct tt_loop *loop;
    struct tt_tls_conn tls;
    struct tt_h2_conn *h2;
    struct tt_session_config cfg;
    struct tt_session_callbacks cbs;
    void *ud;

    struct tt_io io;
    struct tt_defer flush_d, read_d, close_d;
    struct tt_timer ka_timer, settings_timer, drain_timer;
    uint64_t refill_ms; /* the reset budget was refilled up to this time */

    uint64_t last_recv_ms;
    uint64_t ping_acked; /* the peer's TCP had acknowledged this many bytes */
    uint8_t *early;
    size_t early_len;

    unsigned ping_outstanding : 1;
    unsigned write_blocked : 1;      /* SSL_write said WANT_WRITE */
    unsigned write_wants_read : 1;   /* SSL_write said WANT_READ */
    unsigned read_wants_write : 1;   /* SSL_read said WANT_WRITE */
    unsigned above_half : 1;         /* output was >= max_output / 2 */
    unsigned draining : 1;
    unsigned close_when_flushed : 1; /* close once the output is written */
    unsigned closing : 1;
    unsigned transport_dead : 1;     /* do not write any more */
    unsigned linger : 1;             /* close gracefully: see ss_linger */
    unsigned lingering : 1;
    unsigned linger_writing : 1;     /* lingering, output still going out */

    char reason[160];
    char peer[64];
};

static void ss_flush(struct tt_session *s);
static void ss_read(struct tt_session *s);

/* --- closing ----------------------------------------------------------- */

static void ss_close(struct tt_session *s, const char *reason)
{
    if (s->closing)
        return;
    s->closing = 1;
    if (!reason)
        reason = "closed";
    if (reason != s->reason) /* ss_flush passes the reason it already stored */
        snprintf(s->reason, sizeof(s->reason), "%s", reason);
    tt_defer_queue(s->loop, &s->close_d);
}

/* A close after which the peer should still get every byte we wrote. */
static void ss_close_gracefully(struct tt_session *s, const char *reason)
{
    if (s->closing)
        return;
    s->linger = 1;
    ss_close(s, reason);
}

/* The transport failed: nothing more can be written. */
static void ss_close_transport(struct tt_session *s, const char *reason)
{
    s->transport_dead = 1;
    ss_close(s, reason);
}

/* Writes what the codec has pending once, without waiting. */
static void ss_write_best_effort(struct tt_session *s)
{
    tt_iov out;
    for (int i = 0; i < 64 && !s->transport_dead && tt_h2_pending_output(s->h2, &out) > 0; i++) {
        ssize_t w = tt_tls_write(&s->tls, out.base, out.len);
        if (w <= 0)
            break;
        tt_h2_output_consumed(s->h2, (size_t)w);
    }
}

/*
 * Lingering close.  Closing a TCP socket that still has unread bytes in its
 * receive buffer makes the kernel send RST instead of FIN, and an RST makes
 * the peer's kernel drop whatever it had received but not yet handed to the
 * peer: the tail of a response, or our GOAWAY.  Unread bytes are likely
 * here (WINDOW_UPDATEs, PING ACKs), so a graceful close sends close_notify,
 * half-closes the socket, and reads and discards until the peer closes its
 * side or SS_LINGER_MS pass; only then is the socket closed.
 */
static void ss_finish(struct tt_session *s);

static void ss_on_linger_timeout(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    ss_finish(t->data);
}

/* Sends close_notify, half-closes and waits (reading) for the peer's close.
 * Returns 1 when waiting, 0 when the socket can be closed now. */
static int ss_linger_shutdown(struct tt_session *s)
{
    if (s->tls.ssl) { /* NULL: a plaintext connection (tt_tls_conn_init_plain) */
        ERR_clear_error();
        SSL_shutdown(s->tls.ssl);
        ERR_clear_error();
        SSL_set_quiet_shutdown(s->tls.ssl, 1);
    }
    if (shutdown(s->tls.fd, SHUT_WR) < 0)
        return 0;
    return tt_io_modify(s->loop, &s->io, TT_IO_READ) == 0;
}

/* Starts a lingering close.  Output still pending (say a GOAWAY queued
 * behind DATA of streams that were just reset) is written first, within the
 * same time limit: dropping it would lose the GOAWAY that tells the peer why
 * (RFC 9113 §5.4.1). */
static int ss_linger(struct tt_session *s)
{
    tt_iov out;
    s->linger_writing = tt_h2_pending_output(s->h2, &out) > 0;
    if (s->linger_writing) {
        if (tt_io_modify(s->loop, &s->io, TT_IO_READ | TT_IO_WRITE) < 0)
            return 0;
    } else if (!ss_linger_shutdown(s)) {
        return 0;
    }
    s->lingering = 1;
    tt_timer_init(&s->drain_timer, ss_on_linger_timeout, s);
    uint32_t ms = SS_LINGER_MS;
    if (s->cfg.ping_timeout_ms && s->cfg.ping_timeout_ms < ms)
        ms = s->cfg.ping_timeout_ms;
    tt_timer_start(s->loop, &s->drain_timer, ms);
    return 1;
}

/* Lingering: reads and discards what the peer still sends (so our close is
 * not turned into a reset), writes what is left, then half-closes. */
static void ss_linger_io(struct tt_session *s, unsigned events)
{
    uint8_t buf[16384];
    int peer_done = 0;
    if (events & (TT_IO_READ | TT_IO_ERROR)) {
        for (int i = 0; i < 64; i++) {
            ssize_t r = tt_tls_read(&s->tls, buf, sizeof(buf));
            if (r > 0)
                continue;
            if (r != TT_TLS_WANT_READ && r != TT_TLS_WANT_WRITE)
                peer_done = 1; /* the peer closed its side (or failed) */
            break;
        }
    }
    if (!peer_done && s->linger_writing) {
        tt_iov out;
        while (tt_h2_pending_output(s->h2, &out) > 0) {
            ssize_t w = tt_tls_write(&s->tls, out.base, out.len);
            if (w == TT_TLS_WANT_WRITE || w == TT_TLS_WANT_READ)
                return;
            if (w <= 0) {
                peer_done = 1;
                break;
            }
            tt_h2_output_consumed(s->h2, (size_t)w);
        }
        if (!peer_done) {
            s->linger_writing = 0;
            if (ss_linger_shutdown(s))
                return;
            peer_done = 1;
        }
    }
    if (!peer_done)
        return;
    tt_timer_stop(s->loop, &s->drain_timer);
    tt_defer_queue(s->loop, &s->close_d);
}

static void ss_on_close_defer(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_session *s = d->data;
    tt_timer_stop(loop, &s->ka_timer);
    tt_timer_stop(loop, &s->settings_timer);
    tt_timer_stop(loop, &s->drain_timer);
    tt_defer_cancel(loop, &s->flush_d);
    tt_defer_cancel(loop, &s->read_d);
    if (s->lingering) {
        ss_finish(s);
        return;
    }
    ss_write_best_effort(s);
    if (s->linger && !s->transport_dead && ss_linger(s))
        return;
    ss_finish(s);
}

static void ss_finish(struct tt_session *s)
{
    struct tt_loop *loop = s->loop;
    tt_io_stop(loop, &s->io);
    tt_timer_stop(loop, &s->drain_timer);
    tt_h2_transport_closed(s->h2);
    if (s->cbs.on_closed)
        s->cbs.on_closed(s->ud, s, s->reason);
    /* Callbacks above may have queued these again. */
    tt_defer_cancel(loop, &s->flush_d);
    tt_defer_cancel(loop, &s->read_d);
    tt_defer_cancel(loop, &s->close_d);
    tt_h2_conn_free(s->h2);
    tt_tls_conn_free(&s->tls);
    tt_mem_free(s->early);
    tt_mem_free(s);
}

/* Closes after the codec failed the connection: its GOAWAY goes out best
 * effort (in the close defer), then the session ends. */
static void ss_close_h2_error(struct tt_session *s, const char *what)
{
    uint32_t code = 0;
    const char *why = NULL;
    char reason[160];
    if (tt_h2_error(s->h2, &code, &why))
        snprintf(reason, sizeof(reason), "%s: %s (%s)", what, why ? why : "error",
                 tt_h2_strerror(code));
    else
        snprintf(reason, sizeof(reason), "%s", what);
    ss_close_gracefully(s, reason);
}

/* --- codec callbacks: forwarded with the user's ud ---------------------- */

static int ss_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct tt_session *s = ud;
    return s->cbs.h2.on_headers ? s->cbs.h2.on_headers(s->ud, sid, sud, h) : 0;
}

static int ss_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    struct tt_session *s = ud;
    return s->cbs.h2.on_data ? s->cbs.h2.on_data(s->ud, sid, sud, data, len, end_stream) : 0;
}

static void ss_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct tt_session *s = ud;
    if (s->cbs.h2.on_stream_close)
        s->cbs.h2.on_stream_close(s->ud, sid, sud, code, flags);
    /* A RST_STREAM may be queued, and a drain may be complete now. */
    if (!s->closing)
        tt_defer_queue(s->loop, &s->flush_d);
}

static void ss_on_window_update(void *ud, uint32_t sid, void *sud)
{
    struct tt_session *s = ud;
    if (s->cbs.h2.on_window_update)
        s->cbs.h2.on_window_update(s->ud, sid, sud);
}

static void ss_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    struct tt_session *s = ud;
    if (s->cbs.h2.on_goaway)
        s->cbs.h2.on_goaway(s->ud, last_sid, code, debug);
    if (!s->closing)
        tt_defer_queue(s->loop, &s->flush_d);
}

static void ss_on_ping_ack(void *ud, uint64_t opaque)
{
    struct tt_session *s = ud;
    if (s->cbs.h2.on_ping_ack)
        s->cbs.h2.on_ping_ack(s->ud, opaque);
}

static void ss_on_remote_settings(void *ud)
{
    struct tt_session *s = ud;
    if (s->cbs.h2.on_remote_settings)
        s->cbs.h2.on_remote_settings(s->ud);
}

static const struct tt_h2_callbacks ss_h2_callbacks = {
    .on_headers = ss_on_headers,
    .on_data = ss_on_data,
    .on_stream_close = ss_on_stream_close,
    .on_window_update = ss_on_window_update,
    .on_goaway = ss_on_goaway,
    .on_ping_ack = ss_on_ping_ack,
    .on_remote_settings = ss_on_remote_settings,
};

/* --- I/O ----------------------------------------------------------------- */

static void ss_update_io(struct tt_session *s)
{
    if (s->closing)
        return;
    unsigned ev = TT_IO_READ;
    if (s->write_blocked || s->read_wants_write)
        ev |= TT_IO_WRITE;
    if (tt_io_modify(s->loop, &s->io, ev) < 0)
        ss_close_transport(s, "epoll_ctl failed");
}

static void ss_update_settings_timer(struct tt_session *s)
{
    if (s->cfg.settings_timeout_ms == 0)
        return;
    int waiting = tt_h2_awaiting_settings_ack(s->h2);
    if (waiting && !tt_timer_active(&s->settings_timer))
        tt_timer_start(s->loop, &s->settings_timer, s->cfg.settings_timeout_ms);
    else if (!waiting)
        tt_timer_stop(s->loop, &s->settings_timer);
}

/* Decides whether the connection has reached its end. */
static void ss_check_done(struct tt_session *s)
{
    if (s->closing || s->close_when_flushed)
        return;
    const char *why = NULL;
    if (tt_h2_is_done(s->h2)) {
        uint32_t code;
        const char *reason;
        if (tt_h2_error(s->h2, &code, &reason)) {
            ss_close_h2_error(s, "HTTP/2 error");
            return;
        }
        why = "connection finished";
    } else if (s->draining && tt_h2_open_streams(s->h2) == 0) {
        why = "drained";
    } else if (tt_h2_goaway_received(s->h2) != UINT32_MAX && tt_h2_open_streams(s->h2) == 0) {
        why = "peer sent GOAWAY";
    }
    if (why) {
        s->close_when_flushed = 1;
        snprintf(s->reason, sizeof(s->reason), "%s", why);
    }
}

static void ss_flush(struct tt_session *s)
{
    if (s->closing || s->transport_dead)
        return;
    size_t half = s->cfg.h2.max_output / 2;
    /* Producers refill once the output is nearly drained: a refill moves
     * the unsent bytes to the buffer's front to make room, so refilling at
     * half would copy half of everything sent once more. */
    size_t low = s->cfg.h2.max_output / 8;
    tt_iov out;
    if (!s->write_blocked && !s->write_wants_read) {
        size_t n;
        while ((n = tt_h2_pending_output(s->h2, &out)) > 0) {
            if (n >= half)
                s->above_half = 1;
            ssize_t w = tt_tls_write(&s->tls, out.base, out.len);
            if (w > 0) {
                tt_h2_output_consumed(s->h2, (size_t)w);
                continue;
            }
            if (w == TT_TLS_WANT_WRITE) {
                s->write_blocked = 1;
            } else if (w == TT_TLS_WANT_READ) {
                s->write_wants_read = 1;
            } else {
                ss_close_transport(s, s->tls.err[0] ? s->tls.err : "TLS write failed");
                return;
            }
            break;
        }
    }
    size_t left = tt_h2_pending_output(s->h2, &out);
    if (left >= half)
        s->above_half = 1;
    ss_update_io(s);
    ss_update_settings_timer(s);
    if (s->above_half && left < low) {
        s->above_half = 0;
        if (s->cbs.on_writable)
            s->cbs.on_writable(s->ud, s);
        if (s->closing)
            return;
        /* Whatever the producer queued goes out in the next flush. */
        if (tt_h2_pending_output(s->h2, &out) > 0)
            tt_defer_queue(s->loop, &s->flush_d);
    }
    ss_check_done(s);
    if (s->close_when_flushed && tt_h2_pending_output(s->h2, &out) == 0)
        ss_close_gracefully(s, s->reason);
}

/* Feeds bytes to the codec; returns 0, or -1 when the session is closing. */
static int ss_feed(struct tt_session *s, const uint8_t *p, size_t n)
{
    s->last_recv_ms = tt_loop_now(s->loop);
    if (s->cfg.rst_refill_per_s) {
        /* The peer's reset budget grows back with time (rst_refill_per_s):
         * counted here, before the bytes that may spend it. */
        uint64_t add = (s->last_recv_ms - s->refill_ms) * s->cfg.rst_refill_per_s / 1000;
        if (add) {
            tt_h2_refill_resets(s->h2, add > UINT32_MAX ? UINT32_MAX : (uint32_t)add);
            s->refill_ms += add * 1000 / s->cfg.rst_refill_per_s;
        }
    }
    if (s->ping_outstanding) {
        /* Answered: the keepalive timer still waits ping_timeout_ms for an
         * answer; from now on it waits for the next ping_interval_ms of
         * silence instead. */
        s->ping_outstanding = 0;
        tt_timer_start(s->loop, &s->ka_timer, s->cfg.ping_interval_ms);
    }
    ssize_t r = tt_h2_recv(s->h2, p, n);
    if (r < 0) {
        /* TT_ERR_CONN, _CALLBACK, _NOMEM: the codec queued a GOAWAY. */
        ss_close_h2_error(s, r == TT_ERR_NOMEM ? "out of memory" : "HTTP/2 error");
        return -1;
    }
    return s->closing ? -1 : 0;
}

static void ss_read(struct tt_session *s)
{
    if (s->closing)
        return;
    if (s->early) {
        uint8_t *e = s->early;
        size_t elen = s->early_len;
        s->early = NULL;
        s->early_len = 0;
        int r = ss_feed(s, e, elen);
        tt_mem_free(e);
        if (r < 0)
            return;
    }
    uint8_t buf[SS_READ_BUF];
    for (int round = 0; round < SS_READ_ROUNDS; round++) {
        size_t n = 0;
        ssize_t r = TT_TLS_WANT_READ;
        while (n < sizeof(buf)) {
            r = tt_tls_read(&s->tls, buf + n, sizeof(buf) - n);
            if (r <= 0)
                break;
            n += (size_t)r;
        }
        if (n > 0 && ss_feed(s, buf, n) < 0)
            return;
        if (n == sizeof(buf))
            continue;
        if (r == 0) {
            ss_close_transport(s, "peer closed the connection");
            return;
        }
        if (r == TT_TLS_ERROR) {
            ss_close_transport(s, s->tls.err[0] ? s->tls.err : "TLS read failed");
            return;
        }
        s->read_wants_write = r == TT_TLS_WANT_WRITE;
        break;
    }
    /* More already buffered: read on after the other descriptors had
     * their turn, or one busy tunnel holds every client up. */
    if (tt_tls_pending(&s->tls))
        tt_defer_queue_next(s->loop, &s->read_d);
    ss_update_settings_timer(s);
    /* ACKs, WINDOW_UPDATEs and responses produced by the callbacks. */
    tt_defer_queue(s->loop, &s->flush_d);
    ss_update_io(s);
}

static void ss_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)loop;
    struct tt_session *s = io->data;
    if (s->lingering) {
        ss_linger_io(s, events);
        return;
    }
    if ((events & TT_IO_WRITE) && s->write_blocked) {
        s->write_blocked = 0;
        ss_flush(s);
    }
    if ((events & TT_IO_WRITE) && s->read_wants_write) {
        s->read_wants_write = 0;
        ss_read(s);
    }
    if (events & (TT_IO_READ | TT_IO_ERROR)) {
        if (s->write_wants_read) {
            s->write_wants_read = 0;
            tt_defer_queue(s->loop, &s->flush_d);
        }
        ss_read(s);
    }
    if ((events & TT_IO_ERROR) && !s->closing)
        ss_close_transport(s, "connection error");
}

static void ss_on_flush_defer(struct tt_loop *loop, struct tt_defer *d)
{
    (void)loop;
    ss_flush(d->data);
}

static void ss_on_read_defer(struct tt_loop *loop, struct tt_defer *d)
{
    (void)loop;
    ss_read(d->data);
}

/* --- timers ------------------------------------------------------------ */

/* How many of our bytes the peer's TCP has acknowledged (0 when the
 * transport is not TCP, as in unit tests over socketpairs). */
static uint64_t ss_bytes_acked(const struct tt_session *s)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(s->tls.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
        return 0;
    return ti.tcpi_bytes_acked;
}

static void ss_on_keepalive(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_session *s = t->data;
    if (s->closing)
        return;
    uint64_t now = tt_loop_now(loop);
    if (s->ping_outstanding) {
        /* Nothing at all arrived since the PING went out. */
        uint64_t acked = ss_bytes_acked(s);
        if (acked > s->ping_acked) {
            s->ping_acked = acked;
            tt_timer_start(loop, t, s->cfg.ping_timeout_ms ? s->cfg.ping_timeout_ms : 1);
            return;
        }
        ss_close_transport(s, "keepalive timeout");
        return;
    }
    uint64_t idle = now - s->last_recv_ms;
    if (idle < s->cfg.ping_interval_ms) {
        tt_timer_start(loop, t, s->cfg.ping_interval_ms - idle);
        return;
    }
    if (s->cfg.ping_needs_streams && tt_h2_open_streams(s->h2) == 0) {
        tt_timer_start(loop, t, s->cfg.ping_interval_ms);
        return;
    }
    if (tt_h2_submit_ping(s->h2, now) != 0) {
        ss_close_h2_error(s, "cannot send PING");
        return;
    }
    s->ping_outstanding = 1;
    s->ping_acked = ss_bytes_acked(s);
    tt_defer_queue(loop, &s->flush_d);
    tt_timer_start(loop, t, s->cfg.ping_timeout_ms ? s->cfg.ping_timeout_ms : 1);
}

static void ss_on_settings_timeout(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    struct tt_session *s = t->data;
    if (s->closing || !tt_h2_awaiting_settings_ack(s->h2))
        return;
    /* RFC 9113 §6.5.3 */
    tt_h2_fail(s->h2, TT_H2_SETTINGS_TIMEOUT, "SETTINGS ACK timeout");
    ss_close_gracefully(s, "SETTINGS ACK timeout");
}

static void ss_on_drain_timeout(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    struct tt_session *s = t->data;
    ss_close(s, "drain grace period over");
}

/* --- public ------------------------------------------------------------ */

void tt_session_config_default(struct tt_session_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    tt_h2_config_default(&cfg->h2);
    cfg->ping_interval_ms = 15000;
    cfg->ping_timeout_ms = 10000;
    cfg->settings_timeout_ms = 10000;
}

static void ss_format_peer(struct tt_session *s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    snprintf(s->peer, sizeof(s->peer), "?");
    if (getpeername(s->tls.fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
            snprintf(s->peer, sizeof(s->peer), "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        if (inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)))
            snprintf(s->peer, sizeof(s->peer), "[%s]:%u", ip, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(s->peer, sizeof(s->peer), "unix");
    }
}

struct tt_session *tt_session_new(struct tt_loop *loop, struct tt_tls_conn *tls,
                                  enum tt_h2_role role, const struct tt_session_config *cfg,
                                  const struct tt_session_callbacks *cbs, void *ud,
                                  const uint8_t *early, size_t early_len)
{
    struct tt_session *s = tt_mem_calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->loop = loop;
    s->tls = *tls;
    /* The session owns the connection now. */
    tls->ssl = NULL;
    tls->fd = -1;
    s->cfg = *cfg;
    s->cbs = *cbs;
    s->ud = ud;
    if (early_len > 0) {
        s->early = tt_mem_alloc(early_len);
        if (!s->early)
            goto fail_s;
        memcpy(s->early, early, early_len);
        s->early_len = early_len;
    }
    s->h2 = tt_h2_conn_new(role, &s->cfg.h2, &ss_h2_callbacks, s);
    if (!s->h2)
        goto fail_s;
    tt_defer_init(&s->flush_d, ss_on_flush_defer, s);
    tt_defer_init(&s->read_d, ss_on_read_defer, s);
    tt_defer_init(&s->close_d, ss_on_close_defer, s);
    tt_timer_init(&s->ka_timer, ss_on_keepalive, s);
    tt_timer_init(&s->settings_timer, ss_on_settings_timeout, s);
    tt_timer_init(&s->drain_timer, ss_on_drain_timeout, s);
    if (tt_io_start(loop, &s->io, s->tls.fd, TT_IO_READ, ss_on_io, s) < 0) {
        tt_h2_conn_free(s->h2);
        goto fail_s;
    }
    ss_format_peer(s);
    s->last_recv_ms = tt_loop_now(loop);
    s->refill_ms = s->last_recv_ms;
    if (s->cfg.ping_interval_ms)
        tt_timer_start(loop, &s->ka_timer, s->cfg.ping_interval_ms);
    ss_update_settings_timer(s);
    /* The preface and SETTINGS go out at once; early bytes and anything
     * OpenSSL already decrypted are read at the first safe point. */
    tt_defer_queue(loop, &s->flush_d);
    if (s->early || tt_tls_pending(&s->tls))
        tt_defer_queue(loop, &s->read_d);
    return s;
fail_s:
    tt_mem_free(s->early);
    tt_tls_conn_free(&s->tls);
    tt_mem_free(s);
    return NULL;
fail:
    tt_tls_conn_free(tls);
    return NULL;
}

struct tt_h2_conn *tt_session_h2(struct tt_session *s) { return s->h2; }

void tt_session_flush(struct tt_session *s)
{
    if (!s->closing)
        tt_defer_queue(s->loop, &s->flush_d);
}

void tt_session_drain(struct tt_session *s, uint32_t grace_ms)
{
    if (s->closing || s->draining)
        return;
    s->draining = 1;
    (void)tt_h2_submit_goaway(s->h2, TT_H2_NO_ERROR, "draining");
    tt_timer_start(s->loop, &s->drain_timer, grace_ms);
    tt_defer_queue(s->loop, &s->flush_d);
}

void tt_session_close(struct tt_session *s, const char *reason) { ss_close(s, reason); }

const char *tt_session_peer(const struct tt_session *s) { return s->peer; }

int tt_session_closing(const struct tt_session *s) { return s->closing; }
