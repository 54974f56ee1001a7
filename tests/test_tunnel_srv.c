/* Tests of origin/tunnel_srv: c's HTTP/2 server on a tunnel, driven with a
 * fake handler.  The tunnel is a socketpair: the tunnel server's session on
 * one end (plaintext), a bare codec client connection (p's role) on the
 * other, both on one loop.  Checked: a stream reaches the handler and its
 * answer reaches the client; a reset from the peer calls `close` exactly
 * once and a held record outlives it until released; request window comes
 * back for the bytes the handler consumed, and for the rest when the stream
 * closes; the tunnel going away closes open streams; drain; the access
 * line says how each stream ended, with grpc-status from the trailers.
 * Records must all be freed (ASan checks for leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec/buf.h"
#include "origin/tunnel_srv.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the fake handler ----------------------------------------------------- */

struct fake {
    /* what the test asks for */
    int answer;       /* open: respond 200 with "hello" at once */
    int trailers;     /* ... and end it with trailers grpc-status: 7 */
    int hold;         /* open: keep a hold on the record */
    size_t consume;   /* data: consume at most this many bytes in total */
    /* what happened */
    unsigned opens, closes, frees, pumps;
    uint32_t close_code;
    unsigned close_flags;
    size_t data_bytes, consumed;
    int data_end;
    struct tt_ts *last; /* the last stream opened (held when `hold`) */
};

struct fake_stream {
    struct fake *f;
    int magic;
};

static void fk_open(void *hctx, struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct fake *f = hctx;
    struct fake_stream *st = tt_ts_priv(ts);
    assert_int_equal(st->magic, 0); /* zeroed */
    assert_ptr_equal(tt_ts_of(st), ts);
    assert_ptr_equal(tt_ts_hctx(ts), f);
    assert_int_equal(h->kind, TT_H2_HDRS_REQUEST);
    st->f = f;
    st->magic = 42;
    f->opens++;
    f->last = ts;
    if (f->hold)
        tt_ts_hold(ts);
    if (f->answer) {
        static const struct tt_header resp[] = {{":status", "200", 7, 3, 0}};
        assert_int_equal(tt_ts_headers(ts, resp, 1, 0), 0);
        assert_int_equal(tt_ts_send(ts, "hello", 5, !f->trailers), 5);
        static const struct tt_header trl[] = {{"grpc-status", "7", 11, 1, 0}};
        if (f->trailers)
            assert_int_equal(tt_ts_headers(ts, trl, 1, 1), 0);
    }
}

static void fk_data(struct tt_ts *ts, const uint8_t *p, size_t n, int end)
{
    (void)p;
    struct fake_stream *st = tt_ts_priv(ts);
    struct fake *f = st->f;
    f->data_bytes += n;
    f->data_end |= end;
    size_t take = f->consume > f->consumed ? f->consume - f->consumed : 0;
    if (take > n)
        take = n;
    f->consumed += take;
    tt_ts_consume(ts, take);
}

static size_t fk_pump(struct tt_ts *ts)
{
    struct fake_stream *st = tt_ts_priv(ts);
    st->f->pumps++;
    tt_ts_unwait(ts);
    return 0;
}

static void fk_close(struct tt_ts *ts, uint32_t code, unsigned flags)
{
    struct fake_stream *st = tt_ts_priv(ts);
    assert_int_equal(st->magic, 42);
    assert_true(tt_ts_closed(ts));
    st->f->closes++;
    st->f->close_code = code;
    st->f->close_flags = flags;
    /* Harmless once closed. */
    assert_int_equal(tt_ts_send(ts, "x", 1, 1), TT_ERR_STREAM_CLOSED);
    assert_int_equal(tt_ts_room(ts), 0);
}

static void fk_free(struct tt_ts *ts)
{
    struct fake_stream *st = tt_ts_priv(ts);
    assert_int_equal(st->magic, 42);
    st->magic = -1;
    st->f->frees++;
}

static const struct tt_handler fk_handler = {
    .stream_size = sizeof(struct fake_stream),
    .open = fk_open,
    .data = fk_data,
    .pump = fk_pump,
    .close = fk_close,
    .free = fk_free,
};

/* ---- p's end: a bare codec client on the other end of the socketpair ----- */

struct env {
    struct tt_loop *loop;
    struct fake f;
    struct tt_tunnel_srv *srv;
    int srv_closed;
    char reason[160];
    /* client */
    int fd;
    struct tt_io io;
    struct tt_h2_conn *c;
    int status;
    size_t body;
    int stream_closed;
    uint32_t stream_code;
    int goaway;
    int pings_acked;
    /* driving */
    struct tt_timer tick, guard;
    int (*until)(struct env *e);
};

static void cl_flush(struct env *e)
{
    tt_iov out;
    while (e->fd >= 0 && tt_h2_pending_output(e->c, &out) > 0) {
        ssize_t w = write(e->fd, out.base, out.len);
        if (w <= 0)
            break; /* full: the next tick tries again */
        tt_h2_output_consumed(e->c, (size_t)w);
    }
}

static void cl_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)events;
    struct env *e = io->data;
    uint8_t buf[65536];
    for (;;) {
        ssize_t r = read(e->fd, buf, sizeof buf);
        if (r > 0) {
            assert_true(tt_h2_recv(e->c, buf, (size_t)r) == r);
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            /* The server closed (a drain): close our side too, so its
             * lingering close ends at once. */
            tt_io_stop(loop, io);
            close(e->fd);
            e->fd = -1;
            return;
        }
        break;
    }
    cl_flush(e);
}

static int cl_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    (void)sid;
    (void)sud;
    struct env *e = ud;
    if (h->kind == TT_H2_HDRS_RESPONSE)
        e->status = h->status;
    return 0;
}

static int cl_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    (void)sud;
    (void)data;
    (void)end_stream;
    struct env *e = ud;
    e->body += len;
    tt_h2_consume(e->c, sid, len);
    return 0;
}

static void cl_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    (void)sid;
    (void)sud;
    (void)flags;
    struct env *e = ud;
    e->stream_closed++;
    e->stream_code = code;
}

static void cl_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    (void)last_sid;
    (void)code;
    (void)debug;
    struct env *e = ud;
    e->goaway = 1;
}

static void cl_on_ping_ack(void *ud, uint64_t opaque)
{
    (void)opaque;
    struct env *e = ud;
    e->pings_acked++;
}

static const struct tt_h2_callbacks cl_callbacks = {
    .on_headers = cl_on_headers,
    .on_data = cl_on_data,
    .on_stream_close = cl_on_stream_close,
    .on_goaway = cl_on_goaway,
    .on_ping_ack = cl_on_ping_ack,
};

static void on_srv_closed(void *owner, const char *reason)
{
    struct env *e = owner;
    e->srv_closed = 1;
    e->srv = NULL;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
}

/* Every millisecond: write what the client has, stop once `until` holds. */
static void on_tick(struct tt_loop *loop, struct tt_timer *t)
{
    struct env *e = t->data;
    cl_flush(e);
    if (e->until(e)) {
        tt_loop_stop(loop);
        return;
    }
    tt_timer_start(loop, t, 1);
}

static void on_guard(struct tt_loop *loop, struct tt_timer *t)
{
    (void)t;
    tt_loop_stop(loop);
}

/* Runs the loop until `until` holds; fails if it never does (a generous
 * guard against a hang, not a timing assertion). */
static void run_until(struct env *e, int (*until)(struct env *e))
{
    e->until = until;
    tt_timer_start(e->loop, &e->tick, 0);
    tt_timer_start(e->loop, &e->guard, 10000);
    tt_loop_run(e->loop);
    tt_timer_stop(e->loop, &e->tick);
    tt_timer_stop(e->loop, &e->guard);
    assert_true(until(e));
}

static void env_start(struct env *e, uint32_t window)
{
    memset(e, 0, sizeof *e);
    e->loop = tt_loop_new();
    assert_non_null(e->loop);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct tt_session_config cfg;
    tt_session_config_default(&cfg);
    if (window) {
        cfg.h2.initial_window_size = window;
        cfg.h2.connection_window = window;
    }
    struct tt_tls_conn *tls = tt_mem_alloc(sizeof *tls);
    assert_non_null(tls);
    tt_tls_conn_init_plain(tls, sv[0]);
    e->srv = tt_tunnel_srv_start(e->loop, tls, &cfg, &fk_handler, &e->f, NULL, 0, on_srv_closed, e);
    assert_non_null(e->srv);

    struct tt_h2_config ccfg;
    tt_h2_config_default(&ccfg);
    e->c = tt_h2_conn_new(TT_H2_CLIENT, &ccfg, &cl_callbacks, e);
    assert_non_null(e->c);
    e->fd = sv[1];
    assert_int_equal(tt_io_start(e->loop, &e->io, e->fd, TT_IO_READ, cl_on_io, e), 0);
    tt_timer_init(&e->tick, on_tick, e);
    tt_timer_init(&e->guard, on_guard, e);
}

static int srv_gone(struct env *e) { return e->srv_closed; }

/* Closes p's end and lets the tunnel server see it go. */
static void env_end(struct env *e)
{
    if (e->fd >= 0) {
        tt_io_stop(e->loop, &e->io);
        close(e->fd);
        e->fd = -1;
    }
    if (!e->srv_closed)
        run_until(e, srv_gone);
    tt_h2_conn_free(e->c);
    tt_loop_free(e->loop);
    /* Every record the tunnel made is gone. */
    assert_int_equal(e->f.frees, e->f.opens);
    assert_int_equal(e->f.closes, e->f.opens);
}

static const struct tt_header get_req[] = {
    {":method", "GET", 7, 3, 0},
    {":scheme", "https", 7, 5, 0},
    {":authority", "x", 10, 1, 0},
    {":path", "/", 5, 1, 0},
};
static const struct tt_header post_req[] = {
    {":method", "POST", 7, 4, 0},
    {":scheme", "https", 7, 5, 0},
    {":authority", "x", 10, 1, 0},
    {":path", "/up", 5, 3, 0},
};

static int got_answer(struct env *e) { return e->stream_closed > 0; }
static int opened(struct env *e) { return e->f.opens > 0; }
static int opened2(struct env *e) { return e->f.opens > 1; }
static int opened3(struct env *e) { return e->f.opens > 2; }
static int closed_once(struct env *e) { return e->f.closes > 0; }
static int closed_twice(struct env *e) { return e->f.closes > 1; }

/* ---- cases ---------------------------------------------------------------- */

static void test_stream_reaches_handler(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 0);
    e.f.answer = 1;
    int64_t sid = tt_h2_submit_request(e.c, get_req, 4, 1, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, got_answer);
    assert_int_equal(e.f.opens, 1);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body, 5);
    assert_int_equal(e.stream_code, TT_H2_NO_ERROR);
    /* Both ends finished: closed with NO_ERROR, record freed at once. */
    assert_int_equal(e.f.closes, 1);
    assert_int_equal(e.f.close_code, TT_H2_NO_ERROR);
    assert_int_equal(e.f.frees, 1);
    assert_int_equal(tt_tunnel_srv_streams(e.srv), 0);
    env_end(&e);
}

static void test_peer_reset_closes_once(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 0);
    e.f.hold = 1;
    int64_t sid = tt_h2_submit_request(e.c, post_req, 4, 0, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, opened);
    assert_int_equal(tt_tunnel_srv_streams(e.srv), 1);
    assert_int_equal(tt_h2_submit_rst(e.c, (uint32_t)sid, TT_H2_CANCEL), 0);
    cl_flush(&e);
    run_until(&e, closed_once);
    assert_int_equal(e.f.closes, 1);
    assert_int_equal(e.f.close_code, TT_H2_CANCEL);
    assert_true(e.f.close_flags & TT_H2_CLOSE_RST_RECEIVED);
    assert_int_equal(tt_tunnel_srv_streams(e.srv), 0);
    /* Our hold keeps the record past its close; calls on it are no-ops. */
    assert_int_equal(e.f.frees, 0);
    tt_ts_reset(e.f.last, TT_H2_INTERNAL_ERROR);
    tt_ts_consume(e.f.last, 10);
    assert_int_equal(e.f.closes, 1);
    tt_ts_release(e.f.last);
    assert_int_equal(e.f.frees, 1);
    env_end(&e);
    assert_int_equal(e.f.closes, 1);
}

static size_t g_room_sid;
static int ping_acked(struct env *e) { return e->pings_acked > 0; }
static int client_unblocked(struct env *e)
{
    return tt_h2_data_room(e->c, (uint32_t)g_room_sid) > 0;
}

/* Sends DATA until the client's windows are spent. */
static size_t fill_window(struct env *e, uint32_t sid)
{
    static uint8_t chunk[16384];
    size_t sent = 0;
    for (;;) {
        ssize_t w = tt_h2_send_data(e->c, sid, chunk, sizeof chunk, 0);
        assert_true(w >= 0);
        if (w == 0)
            break;
        sent += (size_t)w;
        cl_flush(e);
    }
    return sent;
}

static int all_data_in(struct env *e) { return e->f.data_bytes == 65535; }

static void test_window_back_for_consumed_bytes(void **state)
{
    (void)state;
    struct env e;
    /* 64 KiB windows, stream and connection: the client blocks after one
     * window of DATA, until the server gives it back. */
    env_start(&e, 65535);
    e.f.hold = 1;
    e.f.consume = 0;
    int64_t sid = tt_h2_submit_request(e.c, post_req, 4, 0, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, opened); /* and the server's SETTINGS are in */
    g_room_sid = (size_t)sid;
    assert_int_equal(fill_window(&e, (uint32_t)sid), 65535);
    run_until(&e, all_data_in);
    /* Nothing consumed: no window came back.  A PING's ACK is written
     * after anything the server queued while it took the DATA, so once
     * it is in, a WINDOW_UPDATE would have been too. */
    assert_int_equal(tt_h2_submit_ping(e.c, 7), 0);
    cl_flush(&e);
    run_until(&e, ping_acked);
    assert_int_equal(tt_h2_data_room(e.c, (uint32_t)sid), 0);
    /* The handler passes the bytes on: window comes back. */
    e.f.consumed = 65535;
    tt_ts_consume(e.f.last, 65535);
    run_until(&e, client_unblocked);
    tt_ts_release(e.f.last);
    env_end(&e);
}

static int conn_window_back(struct env *e)
{
    /* A fresh stream can send: the connection window is open again. */
    return e->f.closes > 0 && e->stream_closed > 0;
}

static void test_window_back_at_close(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 65535);
    e.f.consume = 1000; /* the handler keeps the rest */
    int64_t sid = tt_h2_submit_request(e.c, post_req, 4, 0, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, opened);
    assert_int_equal(fill_window(&e, (uint32_t)sid), 65535);
    run_until(&e, all_data_in);
    assert_int_equal(tt_tunnel_srv_streams(e.srv), 1);
    /* The stream is reset with 64 KiB still held by the handler: the
     * tunnel server gives it back, or the connection would stall. */
    assert_int_equal(tt_h2_submit_rst(e.c, (uint32_t)sid, TT_H2_CANCEL), 0);
    cl_flush(&e);
    run_until(&e, conn_window_back);
    int64_t sid2 = tt_h2_submit_request(e.c, post_req, 4, 0, NULL);
    assert_true(sid2 > 0);
    g_room_sid = (size_t)sid2;
    cl_flush(&e);
    run_until(&e, client_unblocked);
    env_end(&e);
}

static int goaway_seen(struct env *e) { return e->goaway && e->f.opens > 0; }

static void test_drain(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 0);
    e.f.hold = 1;
    int64_t sid = tt_h2_submit_request(e.c, get_req, 4, 1, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, opened);
    tt_tunnel_srv_drain(e.srv, 60000);
    run_until(&e, goaway_seen);
    assert_false(e.srv_closed); /* the stream in flight still runs */
    /* It finishes: the tunnel closes on its own. */
    static const struct tt_header resp[] = {{":status", "204", 7, 3, 0}};
    assert_int_equal(tt_ts_headers(e.f.last, resp, 1, 1), 0);
    tt_ts_release(e.f.last);
    run_until(&e, srv_gone);
    assert_string_equal(e.reason, "drained");
    assert_int_equal(e.status, 204);
    env_end(&e);
}

static void test_tunnel_loss_closes_streams(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 0);
    int64_t sid = tt_h2_submit_request(e.c, post_req, 4, 0, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, opened);
    env_end(&e); /* p's end closes with the stream open */
    assert_int_equal(e.f.closes, 1);
    assert_true(e.f.close_flags & TT_H2_CLOSE_CONN);
}

/* stderr into a pipe while a case runs; returns what was logged. */
static int cap_saved = -1, cap_pipe[2];

static void capture_start(void)
{
    tt_log_init("c", TT_LOG_INFO);
    assert_int_equal(pipe2(cap_pipe, O_NONBLOCK), 0);
    fcntl(cap_pipe[1], F_SETPIPE_SZ, 1 << 20);
    cap_saved = dup(STDERR_FILENO);
    dup2(cap_pipe[1], STDERR_FILENO);
}

static void capture_end(char *out, size_t cap)
{
    dup2(cap_saved, STDERR_FILENO);
    close(cap_saved);
    close(cap_pipe[1]);
    ssize_t n = read(cap_pipe[0], out, cap - 1);
    close(cap_pipe[0]);
    out[n > 0 ? n : 0] = 0;
}

static void expect_line(const char *log, const char *want)
{
    if (!strstr(log, want))
        fail_msg("no line with '%s' in:\n%s", want, log);
}

/* What became of each stream, in one line each: an answer with trailers
 * (grpc-status noted), a reset by p, the tunnel lost. */
static void test_access_line(void **state)
{
    (void)state;
    static char log[65536];
    struct env e;
    capture_start();
    env_start(&e, 0);
    e.f.answer = 1;
    e.f.trailers = 1;
    assert_true(tt_h2_submit_request(e.c, post_req, 4, 1, NULL) > 0);
    cl_flush(&e);
    run_until(&e, got_answer);
    e.f.answer = 0;
    int64_t sid = tt_h2_submit_request(e.c, get_req, 4, 1, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, opened2);
    assert_int_equal(tt_h2_submit_rst(e.c, (uint32_t)sid, TT_H2_CANCEL), 0);
    cl_flush(&e);
    run_until(&e, closed_twice);
    assert_true(tt_h2_submit_request(e.c, post_req, 4, 0, NULL) > 0);
    cl_flush(&e);
    run_until(&e, opened3);
    env_end(&e);
    capture_end(log, sizeof log);
    expect_line(log, "access stream=1 method=POST path=/up status=200 bytes=5 dur_ms=");
    expect_line(log, " end=ok grpc-status=7\n");
    expect_line(log, "access stream=3 method=GET path=/ status=0 bytes=0 dur_ms=");
    expect_line(log, " end=reset-by-p(CANCEL)\n");
    expect_line(log, "access stream=5 method=POST path=/up status=0 bytes=0 dur_ms=");
    expect_line(log, " end=tunnel-lost\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_reaches_handler),
        cmocka_unit_test(test_peer_reset_closes_once),
        cmocka_unit_test(test_window_back_for_consumed_bytes),
        cmocka_unit_test(test_window_back_at_close),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_tunnel_loss_closes_streams),
        cmocka_unit_test(test_access_line),
    };
    return cmocka_run_group_tests_name("tunnel_srv", tests, NULL, NULL);
}
