/* Tests of origin/handler_tcp (c --tcp): CONNECT streams piped to a TCP
 * service.  The tunnel is a socketpair with the tunnel server on one end
 * and a bare codec client (p's role) on the other; the service is a real
 * TCP socket on 127.0.0.1 that the test drives by hand, all on one loop.
 * Checked: CONNECT gets 200 and bytes flow both ways intact; p's
 * END_STREAM becomes the service's EOF while the service's rest still
 * flows back, and the service's FIN becomes END_STREAM while p's rest still
 * flows in; a refused connect and a timed-out one get 502 with a reason; a
 * non-CONNECT gets 405 with allow, an extended CONNECT 501; p's reset
 * reaches the service as an RST, the service's RST reaches p as
 * CONNECT_ERROR; the socket is not read while the stream has no room, and
 * request bytes are given back to p only once the service's socket took
 * them (bounded memory); the access line.  Records must all be freed (ASan
 * checks for leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec/buf.h"
#include "origin/handler_tcp.h"
#include "origin/tunnel_srv.h"
#include "proto/log.h"
#include "proto/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct env {
    struct tt_loop *loop;
    struct tt_tcp *tcp;
    struct tt_tunnel_srv *srv;
    int srv_closed;
    /* p's end */
    int fd;
    struct tt_io io;
    struct tt_h2_conn *c;
    uint32_t sid;
    int status;
    char allow[64];
    tt_buf body;       /* DATA received */
    int consume;       /* give window back as DATA arrives */
    size_t held;       /* DATA not given back */
    int got_end;       /* END_STREAM received */
    int stream_closed;
    uint32_t stream_code;
    unsigned close_flags;
    int pings;
    const uint8_t *cl_data; /* request bytes to send, as windows allow */
    size_t cl_len, cl_off;
    int cl_end, cl_end_sent;
    /* the service */
    int lfd, sfd;
    uint16_t port;
    int svc_read;      /* read what arrives */
    tt_buf svc_in;
    int svc_eof, svc_err;
    const uint8_t *svc_data; /* bytes to write, as the socket takes them */
    size_t svc_len, svc_off;
    int svc_shut_after; /* shutdown(SHUT_WR) once all is written */
    int svc_blocked;    /* a write met EAGAIN */
    /* driving */
    struct tt_timer tick, guard;
    int (*until)(struct env *e);
};

/* ---- p's end ----------------------------------------------------------------- */

static void cl_send_more(struct env *e)
{
    while (e->cl_data && e->cl_off < e->cl_len) {
        ssize_t w = tt_h2_send_data(e->c, e->sid, e->cl_data + e->cl_off, e->cl_len - e->cl_off,
                                    e->cl_end);
        assert_true(w >= 0);
        if (w == 0)
            break;
        e->cl_off += (size_t)w;
    }
    if (e->cl_end && !e->cl_end_sent && e->cl_off == e->cl_len) {
        if (e->cl_len == 0 || !e->cl_data)
            assert_true(tt_h2_send_data(e->c, e->sid, NULL, 0, 1) == 0);
        e->cl_end_sent = 1;
    }
}

static void cl_flush(struct env *e)
{
    tt_iov out;
    if (e->fd >= 0 && e->sid)
        cl_send_more(e);
    while (e->fd >= 0 && tt_h2_pending_output(e->c, &out) > 0) {
        ssize_t w = write(e->fd, out.base, out.len);
        if (w <= 0)
            break;
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
    if (h->kind == TT_H2_HDRS_RESPONSE) {
        e->status = h->status;
        for (size_t i = 0; i < h->count; i++)
            if (!strcmp(h->hdrs[i].name, "allow"))
                snprintf(e->allow, sizeof e->allow, "%.*s", (int)h->hdrs[i].value_len,
                         h->hdrs[i].value);
    }
    if (h->end_stream)
        e->got_end = 1;
    return 0;
}

static int cl_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    (void)sud;
    struct env *e = ud;
    assert_int_equal(tt_buf_append(&e->body, data, len), 0);
    if (e->consume)
        tt_h2_consume(e->c, sid, len);
    else
        e->held += len;
    if (end_stream)
        e->got_end = 1;
    return 0;
}

static void cl_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    (void)sid;
    (void)sud;
    struct env *e = ud;
    e->stream_closed++;
    e->stream_code = code;
    e->close_flags = flags;
}

static void cl_on_ping_ack(void *ud, uint64_t opaque)
{
    (void)opaque;
    struct env *e = ud;
    e->pings++;
}

static const struct tt_h2_callbacks cl_callbacks = {
    .on_headers = cl_on_headers,
    .on_data = cl_on_data,
    .on_stream_close = cl_on_stream_close,
    .on_ping_ack = cl_on_ping_ack,
};

static void on_srv_closed(void *owner, const char *reason)
{
    (void)reason;
    struct env *e = owner;
    e->srv_closed = 1;
    e->srv = NULL;
}

/* ---- the service ----------------------------------------------------------- */

static void svc_step(struct env *e)
{
    if (e->lfd >= 0 && e->sfd < 0) {
        e->sfd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (e->sfd < 0)
            return;
    }
    if (e->sfd < 0)
        return;
    while (e->svc_data && e->svc_off < e->svc_len) {
        ssize_t w = send(e->sfd, e->svc_data + e->svc_off, e->svc_len - e->svc_off, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EAGAIN)
                e->svc_blocked = 1;
            break;
        }
        e->svc_off += (size_t)w;
    }
    if (e->svc_shut_after && e->svc_data && e->svc_off == e->svc_len) {
        assert_int_equal(shutdown(e->sfd, SHUT_WR), 0);
        e->svc_shut_after = 0;
    }
    while (e->svc_read && !e->svc_eof && !e->svc_err) {
        uint8_t buf[65536];
        ssize_t r = recv(e->sfd, buf, sizeof buf, 0);
        if (r > 0)
            assert_int_equal(tt_buf_append(&e->svc_in, buf, (size_t)r), 0);
        else if (r == 0)
            e->svc_eof = 1;
        else if (errno != EAGAIN)
            e->svc_err = errno;
        else
            break;
    }
}

/* ---- driving ------------------------------------------------------------- */

static void on_tick(struct tt_loop *loop, struct tt_timer *t)
{
    struct env *e = t->data;
    cl_flush(e);
    svc_step(e);
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

/* Runs the loop until `until` holds; a generous guard against a hang, not a
 * timing assertion. */
static void run_until(struct env *e, int (*until)(struct env *e))
{
    e->until = until;
    tt_timer_start(e->loop, &e->tick, 0);
    tt_timer_start(e->loop, &e->guard, 20000);
    tt_loop_run(e->loop);
    tt_timer_stop(e->loop, &e->tick);
    tt_timer_stop(e->loop, &e->guard);
    assert_true(until(e));
}

/* A listening service on 127.0.0.1 (listen: 0 = no listener, the port
 * closed; `rcvbuf` > 0 shrinks the accepted socket's receive buffer). */
static void env_start_ex(struct env *e, int listen_too, int rcvbuf, uint32_t client_window,
                         uint32_t connect_timeout_ms)
{
    memset(e, 0, sizeof *e);
    e->fd = e->lfd = e->sfd = -1;
    e->consume = 1;
    tt_buf_init(&e->body, 0);
    tt_buf_init(&e->svc_in, 0);
    e->loop = tt_loop_new();
    assert_non_null(e->loop);

    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    e->port = ntohs(a.sin_port);
    if (listen_too) {
        assert_int_equal(listen(l, 0 + 8), 0);
        e->lfd = l;
    } else {
        close(l); /* nobody listens there now: connects are refused */
    }
    char port[8];
    snprintf(port, sizeof port, "%u", e->port);
    e->tcp = tt_tcp_new(e->loop, "127.0.0.1", port, connect_timeout_ms);
    assert_non_null(e->tcp);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct tt_session_config cfg;
    tt_session_config_default(&cfg);
    cfg.h2.initial_window_size = 1u << 20; /* c's, as tt_origin_session_config */
    cfg.h2.enable_connect_protocol = 1;     /* likewise */
    struct tt_tls_conn *tls = tt_mem_alloc(sizeof *tls);
    assert_non_null(tls);
    tt_tls_conn_init_plain(tls, sv[0]);
    e->srv = tt_tunnel_srv_start(e->loop, tls, &cfg, &tt_tcp_handler, e->tcp, NULL, 0,
                                 on_srv_closed, e);
    assert_non_null(e->srv);

    struct tt_h2_config ccfg;
    tt_h2_config_default(&ccfg);
    if (client_window)
        ccfg.initial_window_size = client_window;
    e->c = tt_h2_conn_new(TT_H2_CLIENT, &ccfg, &cl_callbacks, e);
    assert_non_null(e->c);
    e->fd = sv[1];
    assert_int_equal(tt_io_start(e->loop, &e->io, e->fd, TT_IO_READ, cl_on_io, e), 0);
    tt_timer_init(&e->tick, on_tick, e);
    tt_timer_init(&e->guard, on_guard, e);
}

static void env_start(struct env *e) { env_start_ex(e, 1, 0, 0, 0); }

static int srv_gone(struct env *e) { return e->srv_closed; }

static void env_end(struct env *e)
{
    if (e->fd >= 0) {
        tt_io_stop(e->loop, &e->io);
        close(e->fd);
        e->fd = -1;
    }
    if (!e->srv_closed)
        run_until(e, srv_gone);
    assert_int_equal(tt_resolve_wait_threads(5000), 0);
    tt_h2_conn_free(e->c);
    tt_loop_free(e->loop);
    tt_tcp_free(e->tcp);
    if (e->sfd >= 0)
        close(e->sfd);
    if (e->lfd >= 0)
        close(e->lfd);
    tt_buf_free(&e->body);
    tt_buf_free(&e->svc_in);
}

static const struct tt_header connect_req[] = {
    {":method", "CONNECT", 7, 7, 0},
    {":authority", "ssh.example:22", 10, 14, 0},
};

/* Opens a CONNECT stream. */
static void cl_connect(struct env *e, int end)
{
    int64_t sid = tt_h2_submit_request(e->c, connect_req, 2, end, NULL);
    assert_true(sid > 0);
    e->sid = (uint32_t)sid;
    cl_flush(e);
}

/* Queues request bytes (sent as windows allow), then END_STREAM if `end`. */
static void cl_send(struct env *e, const void *p, size_t n, int end)
{
    e->cl_data = p;
    e->cl_len = n;
    e->cl_off = 0;
    e->cl_end = end;
    e->cl_end_sent = 0;
    cl_flush(e);
}

static int body_is(struct env *e, const char *s)
{
    return tt_buf_len(&e->body) == strlen(s) && !memcmp(tt_buf_data(&e->body), s, strlen(s));
}

static int svc_in_is(struct env *e, const char *s)
{
    return tt_buf_len(&e->svc_in) == strlen(s) && !memcmp(tt_buf_data(&e->svc_in), s, strlen(s));
}

static int stream_done(struct env *e) { return e->stream_closed > 0; }
static int connected(struct env *e) { return e->status == 200 && e->sfd >= 0; }
static int svc_got_hello(struct env *e) { return svc_in_is(e, "hello"); }
static int cl_got_world(struct env *e) { return body_is(e, "world"); }
static int svc_got_eof(struct env *e) { return e->svc_eof; }
static int svc_got_err(struct env *e) { return e->svc_err != 0; }

/* ---- cases ------------------------------------------------------------------- */

static void test_connect_and_bytes(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    e.svc_read = 1;
    cl_connect(&e, 0);
    run_until(&e, connected);
    assert_int_equal(e.status, 200);
    assert_false(e.got_end); /* a tunnel: no END_STREAM with the head */
    cl_send(&e, "hello", 5, 0);
    run_until(&e, svc_got_hello);
    e.svc_data = (const uint8_t *)"world";
    e.svc_len = 5;
    run_until(&e, cl_got_world);
    assert_false(e.got_end);
    assert_false(e.svc_eof);
    assert_int_equal(e.stream_closed, 0);
    env_end(&e);
}

/* p's END_STREAM: the service sees EOF, and what it sends after still
 * reaches p, then its FIN ends the stream. */
static int cl_got_rest_end(struct env *e) { return body_is(e, "the rest") && e->stream_closed; }

static void test_half_close_from_p(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    e.svc_read = 1;
    cl_connect(&e, 0);
    run_until(&e, connected);
    cl_send(&e, "hello", 5, 1);
    run_until(&e, svc_got_eof);
    assert_true(svc_in_is(&e, "hello"));
    assert_int_equal(e.stream_closed, 0);
    e.svc_data = (const uint8_t *)"the rest";
    e.svc_len = 8;
    e.svc_shut_after = 1;
    run_until(&e, cl_got_rest_end);
    assert_true(e.got_end);
    assert_int_equal(e.stream_code, TT_H2_NO_ERROR);
    assert_int_equal(e.close_flags, 0);
    env_end(&e);
}

/* The service's FIN: END_STREAM to p, and p's bytes after it still reach
 * the service, then its EOF. */
static int cl_got_bye_end(struct env *e) { return body_is(e, "bye") && e->got_end; }
static int svc_got_late_eof(struct env *e) { return e->svc_eof && e->stream_closed; }

static void test_half_close_from_service(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    cl_connect(&e, 0);
    run_until(&e, connected);
    e.svc_data = (const uint8_t *)"bye";
    e.svc_len = 3;
    e.svc_shut_after = 1;
    run_until(&e, cl_got_bye_end);
    assert_int_equal(e.stream_closed, 0);
    e.svc_read = 1;
    cl_send(&e, "late words", 10, 1);
    run_until(&e, svc_got_late_eof);
    assert_true(svc_in_is(&e, "late words"));
    assert_int_equal(e.stream_code, TT_H2_NO_ERROR);
    env_end(&e);
}

/* A CONNECT with END_STREAM on its head: connected, the service sees EOF
 * at once and can still answer. */
static void test_connect_with_end_stream(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    e.svc_read = 1;
    cl_connect(&e, 1);
    run_until(&e, svc_got_eof);
    assert_int_equal(tt_buf_len(&e.svc_in), 0);
    e.svc_data = (const uint8_t *)"the rest";
    e.svc_len = 8;
    e.svc_shut_after = 1;
    run_until(&e, cl_got_rest_end);
    assert_int_equal(e.status, 200);
    env_end(&e);
}

static void test_refused_is_502(void **state)
{
    (void)state;
    struct env e;
    env_start_ex(&e, 0, 0, 0, 0);
    cl_connect(&e, 0);
    run_until(&e, stream_done);
    assert_int_equal(e.status, 502);
    assert_true(e.got_end);
    assert_int_equal(tt_buf_append(&e.body, "", 1), 0);
    const char *text = (const char *)tt_buf_data(&e.body);
    if (!strstr(text, "refused") || !strstr(text, "127.0.0.1:"))
        fail_msg("502 body: %s", text);
    env_end(&e);
}

/* A listener whose accept queue is full drops further SYNs: the connect
 * neither succeeds nor fails, and the deadline answers. */
static void test_connect_timeout_is_502(void **state)
{
    (void)state;
    struct env e;
    env_start_ex(&e, 1, 0, 0, 300);
    assert_int_equal(listen(e.lfd, 0), 0);
    /* Fill the queue (never accepted). */
    int fillers[4];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons(e.port)};
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    int lfd = e.lfd;
    e.lfd = -1; /* the test does not accept */
    cl_connect(&e, 0);
    run_until(&e, stream_done);
    assert_int_equal(e.status, 502);
    assert_int_equal(tt_buf_append(&e.body, "", 1), 0);
    const char *text = (const char *)tt_buf_data(&e.body);
    if (!strstr(text, "timed out"))
        fail_msg("502 body: %s", text);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    e.lfd = lfd;
    env_end(&e);
}

static void test_not_connect_is_405(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    static const struct tt_header get[] = {
        {":method", "GET", 7, 3, 0},
        {":scheme", "https", 7, 5, 0},
        {":authority", "x", 10, 1, 0},
        {":path", "/", 5, 1, 0},
    };
    int64_t sid = tt_h2_submit_request(e.c, get, 4, 1, NULL);
    assert_true(sid > 0);
    cl_flush(&e);
    run_until(&e, stream_done);
    assert_int_equal(e.status, 405);
    assert_string_equal(e.allow, "CONNECT");
    assert_true(tt_buf_len(&e.body) > 0);
    assert_int_equal(e.stream_code, TT_H2_NO_ERROR);
    assert_true(e.sfd < 0); /* nothing connected to the service */
    svc_step(&e);
    assert_true(e.sfd < 0);
    env_end(&e);
}

static int settled(struct env *e) { return tt_h2_peer_allows_extended_connect(e->c); }

/* --tcp serves plain TCP: a WebSocket (extended CONNECT) is not its to take. */
static void test_extended_connect_is_501(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    cl_flush(&e);
    run_until(&e, settled); /* c's SETTINGS said it takes extended CONNECT */
    static const struct tt_header ws[] = {
        {":method", "CONNECT", 7, 7, 0},   {":protocol", "websocket", 9, 9, 0},
        {":scheme", "https", 7, 5, 0},     {":authority", "x", 10, 1, 0},
        {":path", "/chat", 5, 5, 0},
    };
    int64_t sid = tt_h2_submit_request(e.c, ws, 5, 0, NULL);
    assert_true(sid > 0);
    e.sid = (uint32_t)sid;
    cl_flush(&e);
    run_until(&e, stream_done);
    assert_int_equal(e.status, 501);
    assert_true(e.got_end);
    /* The request had not ended: c let p off sending the rest. */
    assert_int_equal(e.stream_code, TT_H2_NO_ERROR);
    svc_step(&e);
    assert_true(e.sfd < 0);
    env_end(&e);
}

/* p resets the stream (its client vanished): the service reads an RST. */
static void test_reset_by_p_is_rst(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    cl_connect(&e, 0);
    run_until(&e, connected);
    assert_int_equal(tt_h2_submit_rst(e.c, e.sid, TT_H2_CANCEL), 0);
    cl_flush(&e);
    e.svc_read = 1;
    run_until(&e, svc_got_err);
    assert_int_equal(e.svc_err, ECONNRESET);
    assert_false(e.svc_eof);
    env_end(&e);
}

/* The service resets its connection: p's stream is reset with
 * CONNECT_ERROR (RFC 9113 §8.5). */
static void test_service_rst_is_connect_error(void **state)
{
    (void)state;
    struct env e;
    env_start(&e);
    cl_connect(&e, 0);
    run_until(&e, connected);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(e.sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(e.sfd);
    e.sfd = -1;
    close(e.lfd);
    e.lfd = -1;
    run_until(&e, stream_done);
    assert_int_equal(e.stream_code, TT_H2_CONNECT_ERROR);
    assert_true(e.close_flags & TT_H2_CLOSE_RST_RECEIVED);
    env_end(&e);
}

/* c's own end of the service connection, found among the process's
 * descriptors by its addresses. */
static int find_c_fd(struct env *e)
{
    struct sockaddr_in me, peer;
    socklen_t l = sizeof me;
    assert_int_equal(getsockname(e->sfd, (struct sockaddr *)&me, &l), 0);
    l = sizeof peer;
    assert_int_equal(getpeername(e->sfd, (struct sockaddr *)&peer, &l), 0);
    for (int fd = 3; fd < 4096; fd++) {
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        if (fd == e->sfd || getsockname(fd, (struct sockaddr *)&a, &al) || a.sin_family != AF_INET)
            continue;
        if (a.sin_port == peer.sin_port && a.sin_addr.s_addr == peer.sin_addr.s_addr)
            return fd;
    }
    return -1;
}

static uint8_t pattern(size_t i) { return (uint8_t)((i * 7 + i / 251) & 0xff); }

#define BIG (4u << 20)
static uint8_t *g_big;

/* p took a window's worth and the service's socket is full. */
static int stalled_full(struct env *e) { return tt_buf_len(&e->body) >= 65535 && e->svc_blocked; }
static int pinged(struct env *e) { return e->pings > 0; }
static int big_done(struct env *e) { return tt_buf_len(&e->body) == BIG && e->got_end; }

/* The service sends faster than p takes: c stops reading its socket when
 * the stream's window is spent (the bytes wait in the kernel, not in c),
 * and everything arrives, in order, once p reads on. */
static void test_backpressure_to_p(void **state)
{
    (void)state;
    struct env e;
    env_start_ex(&e, 1, 0, 65535, 0);
    g_big = malloc(BIG);
    assert_non_null(g_big);
    for (size_t i = 0; i < BIG; i++)
        g_big[i] = pattern(i);
    e.consume = 0;
    cl_connect(&e, 0);
    run_until(&e, connected);
    e.svc_data = g_big;
    e.svc_len = BIG;
    e.svc_shut_after = 1;
    run_until(&e, stalled_full);
    /* Everything c will ever queue before p gives window back is in: a
     * PING's ACK comes after whatever c had queued when it read it. */
    assert_int_equal(tt_h2_submit_ping(e.c, 1), 0);
    cl_flush(&e);
    run_until(&e, pinged);
    assert_int_equal(tt_buf_len(&e.body), 65535); /* exactly the window */
    /* c left the rest unread in its socket. */
    int cfd = find_c_fd(&e);
    assert_true(cfd >= 0);
    int unread = 0;
    assert_int_equal(ioctl(cfd, FIONREAD, &unread), 0);
    assert_true(unread > 0);
    /* p reads on: the rest flows, in order, then the FIN's END_STREAM. */
    e.consume = 1;
    tt_h2_consume(e.c, e.sid, e.held);
    e.held = 0;
    cl_flush(&e);
    run_until(&e, big_done);
    assert_true(e.got_end);
    assert_memory_equal(tt_buf_data(&e.body), g_big, BIG);
    env_end(&e);
    free(g_big);
}

#define UP (12u << 20)
static int g_room_checks;

/* p's end is blocked by c's window for good: no room with its output all
 * sent, and a PING sent since came back (c had read everything before it). */
static int up_stalled(struct env *e)
{
    if (e->cl_off == e->cl_len)
        return 1; /* everything went: c took more than it wrote */
    /* Blocked by c's window, not by p's own output waiting to go out. */
    tt_iov out;
    if (tt_h2_data_room(e->c, e->sid) > 0 || tt_h2_pending_output(e->c, &out) > 0) {
        e->pings = 0;
        g_room_checks = 0;
        return 0;
    }
    if (!g_room_checks) {
        assert_int_equal(tt_h2_submit_ping(e->c, 2), 0);
        g_room_checks = 1;
        return 0;
    }
    return e->pings > 0;
}

static int up_done(struct env *e) { return e->svc_eof; }

/* p sends faster than the service reads: c gives window back only for
 * bytes the service's socket took, so p blocks with at most c's window
 * unwritten; every byte arrives in order once the service reads, then EOF. */
static void test_backpressure_from_p(void **state)
{
    (void)state;
    struct env e;
    env_start_ex(&e, 1, 4096, 0, 0);
    g_big = malloc(UP);
    assert_non_null(g_big);
    for (size_t i = 0; i < UP; i++)
        g_big[i] = pattern(i);
    cl_connect(&e, 0);
    run_until(&e, connected);
    cl_send(&e, g_big, UP, 1);
    g_room_checks = 0;
    e.pings = 0;
    run_until(&e, up_stalled);
    assert_true(e.cl_off < UP); /* p is held back */
    /* What c holds unwritten is bounded by its stream window: the rest is
     * in the service's socket or in c's send queue. */
    int cfd = find_c_fd(&e);
    assert_true(cfd >= 0);
    int in_svc = 0, in_c = 0;
    assert_int_equal(ioctl(e.sfd, FIONREAD, &in_svc), 0);
    assert_int_equal(ioctl(cfd, SIOCOUTQ, &in_c), 0);
    assert_true(e.cl_off <= (size_t)in_svc + (size_t)in_c + (1u << 20));
    /* The service reads (with room to read fast now): all of it, in
     * order, then EOF. */
    int big = 4 << 20;
    assert_int_equal(setsockopt(e.sfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big), 0);
    e.svc_read = 1;
    run_until(&e, up_done);
    assert_int_equal(tt_buf_len(&e.svc_in), UP);
    assert_memory_equal(tt_buf_data(&e.svc_in), g_big, UP);
    env_end(&e);
    free(g_big);
}

/* stderr into a pipe while a case runs. */
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

/* The access line names CONNECT and its authority, the status, and the
 * bytes both ways. */
static void test_access_line(void **state)
{
    (void)state;
    static char log[65536];
    struct env e;
    capture_start();
    env_start(&e);
    e.svc_read = 1;
    cl_connect(&e, 0);
    run_until(&e, connected);
    cl_send(&e, "hello", 5, 1);
    run_until(&e, svc_got_eof);
    e.svc_data = (const uint8_t *)"the rest";
    e.svc_len = 8;
    e.svc_shut_after = 1;
    run_until(&e, cl_got_rest_end);
    env_end(&e);
    capture_end(log, sizeof log);
    expect_line(log, "access stream=1 method=CONNECT path=ssh.example:22 status=200 bytes=8 "
                     "req_bytes=5 dur_ms=");
    expect_line(log, " end=ok\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_and_bytes),
        cmocka_unit_test(test_half_close_from_p),
        cmocka_unit_test(test_half_close_from_service),
        cmocka_unit_test(test_connect_with_end_stream),
        cmocka_unit_test(test_refused_is_502),
        cmocka_unit_test(test_connect_timeout_is_502),
        cmocka_unit_test(test_not_connect_is_405),
        cmocka_unit_test(test_extended_connect_is_501),
        cmocka_unit_test(test_reset_by_p_is_rst),
        cmocka_unit_test(test_service_rst_is_connect_error),
        cmocka_unit_test(test_backpressure_to_p),
        cmocka_unit_test(test_backpressure_from_p),
        cmocka_unit_test(test_access_line),
    };
    return cmocka_run_group_tests_name("handler_tcp", tests, NULL, NULL);
}
