/* Tests of proto/session: two sessions over a loopback TLS connection in one
 * loop (p's role: TLS server and HTTP/2 client; c's: the reverse), a request
 * and a 1 MiB response with consume-driven windows, keepalive dropping a
 * silent peer (and not pinging one with no stream open when asked not
 * to), the PING interval after an answered PING, the SETTINGS ACK
 * deadline, drain, and a transport loss. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_LEN (1024 * 1024)

struct env {
    char dir[64], cert[128], key[128];
    SSL_CTX *sctx, *cctx;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/tt-sess-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->cert, sizeof(e->cert), "%s/cert.pem", e->dir);
    snprintf(e->key, sizeof(e->key), "%s/key.pem", e->dir);
    char err[256];
    if (tt_tls_ensure_selfsigned(e->cert, e->key, "localhost", err, sizeof(err)) != 1)
        return -1;
    e->sctx = tt_tls_server_ctx_new(e->cert, e->key, err, sizeof(err));
    e->cctx = tt_tls_client_ctx_new(TT_TLS_VERIFY_CA, e->cert, NULL, err, sizeof(err));
    if (!e->sctx || !e->cctx)
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    SSL_CTX_free(e->sctx);
    SSL_CTX_free(e->cctx);
    unlink(e->cert);
    unlink(e->key);
    rmdir(e->dir);
    free(e);
    return 0;
}

/* A connected loopback TCP pair, both ends non-blocking, and a finished
 * TLS handshake on it.  `p` is the TLS server end, `c` the client end. */
static void tls_pair(struct env *e, struct tt_tls_conn *p, struct tt_tls_conn *c)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int r = connect(cfd, (struct sockaddr *)&a, sizeof(a));
    assert_true(r == 0 || errno == EINPROGRESS);
    int pfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(pfd >= 0);
    close(lfd);
    assert_int_equal(tt_tls_conn_init(p, e->sctx, pfd, 1, NULL), 0);
    assert_int_equal(tt_tls_conn_init(c, e->cctx, cfd, 0, "localhost"), 0);
    int rp = 0, rc = 0;
    for (int i = 0; i < 200 && !(rp == 1 && rc == 1); i++) {
        if (rp != 1)
            rp = tt_tls_handshake(p);
        if (rc != 1)
            rc = tt_tls_handshake(c);
        if (rp == TT_TLS_ERROR || rc == TT_TLS_ERROR)
            fail_msg("handshake: %s / %s", p->err, c->err);
        struct pollfd pf[2] = {{p->fd, rp == TT_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0},
                               {c->fd, rc == TT_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0}};
        if (!(rp == 1 && rc == 1))
            poll(pf, 2, 1000);
    }
    assert_true(rp == 1 && rc == 1);
}

/* --- the two ends --- */

struct side {
    struct tt_loop *loop;
    struct tt_session *s;
    const char *name;
    int closed;
    char reason[160];
    /* client (p) side */
    int64_t sid;
    int got_response;
    int status;
    size_t received, unconsumed, max_unconsumed;
    int body_ok;
    int stream_closed;
    unsigned close_flags;
    uint32_t close_code;
    struct tt_defer consume_d;
    int goaway_seen;
    /* server (c) side */
    uint32_t serving_sid;
    size_t sent;
    int writable_calls;
    int drain_on_request;
    int close_on_request;
    struct side *other;
    int stop_when_both_closed;
};

static uint8_t body_byte(size_t i) { return (uint8_t)(i * 31 + (i >> 12)); }

static void on_closed(void *ud, struct tt_session *s, const char *reason)
{
    struct side *sd = ud;
    (void)s;
    sd->closed = 1;
    sd->s = NULL;
    snprintf(sd->reason, sizeof(sd->reason), "%s", reason);
    if (!sd->other || sd->other->closed || !sd->stop_when_both_closed)
        tt_loop_stop(sd->loop);
}

/* c: produce DATA while there is room. */
static void c_produce(struct side *c)
{
    if (!c->s || !c->serving_sid || c->sent >= BODY_LEN)
        return;
    struct tt_h2_conn *h2 = tt_session_h2(c->s);
    uint8_t chunk[16384];
    for (;;) {
        size_t room = tt_h2_data_room(h2, c->serving_sid);
        size_t n = BODY_LEN - c->sent;
        if (n > room)
            n = room;
        if (n > sizeof(chunk))
            n = sizeof(chunk);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            chunk[i] = body_byte(c->sent + i);
        ssize_t w = tt_h2_send_data(h2, c->serving_sid, chunk, n, c->sent + n == BODY_LEN);
        assert_true(w >= 0);
        if (w == 0)
            break;
        c->sent += (size_t)w;
        if (c->sent == BODY_LEN)
            break;
    }
    tt_session_flush(c->s);
}

static int c_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    (void)sud;
    struct side *c = ud;
    assert_int_equal(h->kind, TT_H2_HDRS_REQUEST);
    assert_int_equal(h->path.len, 4);
    assert_memory_equal(h->path.base, "/big", 4);
    if (c->close_on_request) {
        tt_session_close(c->s, "test closes");
        return 0;
    }
    if (c->drain_on_request)
        tt_session_drain(c->s, 10000);
    c->serving_sid = sid;
    static const struct tt_header resp[] = {
        {":status", "200", 7, 3, 0},
        {"content-length", "1048576", 14, 7, 0},
    };
    assert_int_equal(tt_h2_submit_headers(tt_session_h2(c->s), sid, resp, 2, 0), 0);
    c_produce(c);
    return 0;
}

static void c_on_window_update(void *ud, uint32_t sid, void *sud)
{
    (void)sid, (void)sud;
    c_produce(ud);
}

static void c_on_writable(void *ud, struct tt_session *s)
{
    (void)s;
    struct side *c = ud;
    c->writable_calls++;
    c_produce(c);
}

/* p: consume after the batch, as a proxy does once it wrote to its client. */
static void p_consume(struct tt_loop *loop, struct tt_defer *d)
{
    (void)loop;
    struct side *p = d->data;
    if (!p->s)
        return;
    tt_h2_consume(tt_session_h2(p->s), (uint32_t)p->sid, p->unconsumed);
    p->unconsumed = 0;
    tt_session_flush(p->s);
}

static int p_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    (void)sud;
    struct side *p = ud;
    assert_int_equal(sid, (uint32_t)p->sid);
    assert_int_equal(h->kind, TT_H2_HDRS_RESPONSE);
    p->got_response = 1;
    p->status = h->status;
    return 0;
}

static int p_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                     int end_stream)
{
    (void)sud, (void)sid, (void)end_stream;
    struct side *p = ud;
    for (size_t i = 0; i < len; i++)
        if (data[i] != body_byte(p->received + i))
            p->body_ok = 0;
    p->received += len;
    p->unconsumed += len;
    if (p->unconsumed > p->max_unconsumed)
        p->max_unconsumed = p->unconsumed;
    tt_defer_queue(p->loop, &p->consume_d);
    return 0;
}

static void p_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    (void)sud;
    struct side *p = ud;
    if (sid != (uint32_t)p->sid)
        return;
    p->stream_closed = 1;
    p->close_code = code;
    p->close_flags = flags;
    if (!flags && code == TT_H2_NO_ERROR && !p->stop_when_both_closed)
        tt_loop_stop(p->loop);
}

static void p_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    (void)last_sid, (void)debug;
    struct side *p = ud;
    assert_int_equal(code, TT_H2_NO_ERROR);
    p->goaway_seen = 1;
}

static void p_send_request(struct side *p)
{
    static const struct tt_header req[] = {
        {":method", "GET", 7, 3, 0},
        {":scheme", "https", 7, 5, 0},
        {":authority", "media", 10, 5, 0},
        {":path", "/big", 5, 4, 0},
    };
    p->sid = tt_h2_submit_request(tt_session_h2(p->s), req, 4, 1, NULL);
    assert_true(p->sid > 0);
    tt_session_flush(p->s);
}

static void on_guard(struct tt_loop *loop, struct tt_timer *t)
{
    int *fired = t->data;
    *fired = 1;
    tt_loop_stop(loop);
}

struct two {
    struct tt_loop *loop;
    struct side p, c;
    struct tt_timer guard;
    int guard_fired;
};

static void two_start(struct env *e, struct two *t, const struct tt_session_config *pcfg,
                      const struct tt_session_config *ccfg)
{
    memset(t, 0, sizeof(*t));
    t->loop = tt_loop_new();
    assert_non_null(t->loop);
    struct tt_tls_conn pt, ct;
    tls_pair(e, &pt, &ct);
    t->p = (struct side){.loop = t->loop, .name = "p", .body_ok = 1, .other = &t->c};
    t->c = (struct side){.loop = t->loop, .name = "c", .other = &t->p};
    tt_defer_init(&t->p.consume_d, p_consume, &t->p);
    struct tt_session_callbacks pcb = {
        .h2 = {.on_headers = p_on_headers,
               .on_data = p_on_data,
               .on_stream_close = p_on_stream_close,
               .on_goaway = p_on_goaway},
        .on_closed = on_closed,
    };
    struct tt_session_callbacks ccb = {
        .h2 = {.on_headers = c_on_headers, .on_window_update = c_on_window_update},
        .on_writable = c_on_writable,
        .on_closed = on_closed,
    };
    t->p.s = tt_session_new(t->loop, &pt, TT_H2_CLIENT, pcfg, &pcb, &t->p, NULL, 0);
    t->c.s = tt_session_new(t->loop, &ct, TT_H2_SERVER, ccfg, &ccb, &t->c, NULL, 0);
    assert_non_null(t->p.s);
    assert_non_null(t->c.s);
    assert_int_equal(pt.fd, -1); /* ownership moved */
    tt_timer_init(&t->guard, on_guard, &t->guard_fired);
    tt_timer_start(t->loop, &t->guard, 30000); /* a hang guard, not a timing check */
}

/* Closes whatever is left and frees the loop. */
static void two_end(struct two *t)
{
    for (int i = 0; i < 2; i++) {
        struct side *sd = i ? &t->c : &t->p;
        if (sd->s)
            tt_session_close(sd->s, "test over");
    }
    tt_timer_stop(t->loop, &t->guard);
    tt_defer_cancel(t->loop, &t->p.consume_d);
    /* Let the close defers run. */
    struct tt_timer quit;
    tt_timer_init(&quit, on_guard, &t->guard_fired);
    tt_timer_start(t->loop, &quit, 0);
    tt_loop_run(t->loop);
    assert_null(t->p.s);
    assert_null(t->c.s);
    tt_loop_free(t->loop);
}

static void test_request_1mib(void **state)
{
    struct env *e = *state;
    struct tt_session_config pcfg, ccfg;
    tt_session_config_default(&pcfg);
    tt_session_config_default(&ccfg);
    /* Small windows on p and a small output buffer on c, so that the body
     * moves only as p consumes and c hears on_writable many times. */
    pcfg.h2.initial_window_size = 65536;
    pcfg.h2.connection_window = 131072;
    ccfg.h2.max_output = 32768;
    struct two t;
    two_start(e, &t, &pcfg, &ccfg);
    assert_string_not_equal(tt_session_peer(t.p.s), "?");
    assert_non_null(strstr(tt_session_peer(t.p.s), "127.0.0.1:"));
    p_send_request(&t.p);
    assert_int_equal(tt_loop_run(t.loop), 0);
    assert_false(t.guard_fired);
    assert_true(t.p.got_response);
    assert_int_equal(t.p.status, 200);
    assert_int_equal(t.p.received, BODY_LEN);
    assert_true(t.p.body_ok);
    assert_true(t.p.stream_closed);
    assert_int_equal(t.p.close_code, TT_H2_NO_ERROR);
    /* Flow control held: p never had more unconsumed than its window. */
    assert_true(t.p.max_unconsumed <= 65536);
    assert_true(t.c.writable_calls > 0);
    assert_false(t.p.closed);
    assert_false(t.c.closed);
    two_end(&t);
}

static void test_drain(void **state)
{
    struct env *e = *state;
    struct tt_session_config cfg;
    tt_session_config_default(&cfg);
    struct two t;
    two_start(e, &t, &cfg, &cfg);
    t.c.drain_on_request = 1;
    t.p.stop_when_both_closed = 1;
    t.c.stop_when_both_closed = 1;
    p_send_request(&t.p);
    assert_int_equal(tt_loop_run(t.loop), 0);
    assert_false(t.guard_fired);
    /* The stream in flight finished, then both ends closed. */
    assert_true(t.p.goaway_seen);
    if (t.p.received != BODY_LEN)
        fail_msg("received %zu; p: %s; c: %s; stream close %u/%u", t.p.received, t.p.reason,
                 t.c.reason, t.p.close_code, t.p.close_flags);
    assert_true(t.p.body_ok);
    assert_int_equal(t.p.close_code, TT_H2_NO_ERROR);
    assert_true(t.c.closed);
    assert_string_equal(t.c.reason, "drained");
    assert_true(t.p.closed);
    two_end(&t);
}

static void test_transport_loss(void **state)
{
    struct env *e = *state;
    struct tt_session_config cfg;
    tt_session_config_default(&cfg);
    struct two t;
    two_start(e, &t, &cfg, &cfg);
    t.c.close_on_request = 1;
    t.p.stop_when_both_closed = 1;
    t.c.stop_when_both_closed = 1;
    p_send_request(&t.p);
    assert_int_equal(tt_loop_run(t.loop), 0);
    assert_false(t.guard_fired);
    assert_true(t.c.closed);
    assert_string_equal(t.c.reason, "test closes");
    /* p's open stream heard the connection end before on_closed. */
    assert_true(t.p.closed);
    assert_true(t.p.stream_closed);
    assert_true(t.p.close_flags & TT_H2_CLOSE_CONN);
    assert_false(t.p.got_response);
    two_end(&t);
}

/* A peer that finished TLS but then never reads nor answers. */
static void silent_peer_case(struct env *e, uint32_t ping_interval, uint32_t settings_timeout,
                             const char *want)
{
    struct tt_loop *loop = tt_loop_new();
    struct tt_tls_conn pt, raw;
    tls_pair(e, &pt, &raw);
    struct tt_session_config cfg;
    tt_session_config_default(&cfg);
    cfg.ping_interval_ms = ping_interval;
    cfg.ping_timeout_ms = 50;
    cfg.settings_timeout_ms = settings_timeout;
    struct side p = {.loop = loop, .name = "p"};
    struct tt_session_callbacks cb = {.on_closed = on_closed};
    p.s = tt_session_new(loop, &pt, TT_H2_CLIENT, &cfg, &cb, &p, NULL, 0);
    assert_non_null(p.s);
    int guard_fired = 0;
    struct tt_timer guard;
    tt_timer_init(&guard, on_guard, &guard_fired);
    tt_timer_start(loop, &guard, 30000);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_false(guard_fired);
    assert_true(p.closed);
    assert_string_equal(p.reason, want);
    tt_timer_stop(loop, &guard);
    tt_tls_conn_free(&raw);
    tt_loop_free(loop);
}

static void test_keepalive_drops_silent_peer(void **state)
{
    silent_peer_case(*state, 30, 60000, "keepalive timeout");
}

static void test_settings_ack_timeout(void **state)
{
    silent_peer_case(*state, 60000, 40, "SETTINGS ACK timeout");
}

/* An idle pair with a short PING interval stays up: PINGs are answered. */
static void on_stop(struct tt_loop *loop, struct tt_timer *t)
{
    (void)t;
    tt_loop_stop(loop);
}

/* ping_needs_streams (c's app connection): a connection with no stream
 * open is never pinged, so the same silent peer that keepalive drops
 * within 80 ms is still there after 500 ms. */
static void test_keepalive_needs_streams(void **state)
{
    struct env *e = *state;
    struct tt_loop *loop = tt_loop_new();
    struct tt_tls_conn pt, raw;
    tls_pair(e, &pt, &raw);
    struct tt_session_config cfg;
    tt_session_config_default(&cfg);
    cfg.ping_interval_ms = 30;
    cfg.ping_timeout_ms = 50;
    cfg.settings_timeout_ms = 60000;
    cfg.ping_needs_streams = 1;
    struct side p = {.loop = loop, .name = "p"};
    struct tt_session_callbacks cb = {.on_closed = on_closed};
    p.s = tt_session_new(loop, &pt, TT_H2_CLIENT, &cfg, &cb, &p, NULL, 0);
    assert_non_null(p.s);
    struct tt_timer stop;
    tt_timer_init(&stop, on_stop, NULL);
    tt_timer_start(loop, &stop, 500);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_false(p.closed);
    tt_session_close(p.s, "test over");
    tt_timer_start(loop, &stop, 50);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_true(p.closed);
    tt_tls_conn_free(&raw);
    tt_loop_free(loop);
}

static void test_keepalive_answered(void **state)
{
    struct env *e = *state;
    struct tt_session_config cfg;
    tt_session_config_default(&cfg);
    cfg.ping_interval_ms = 20;
    cfg.ping_timeout_ms = 500;
    struct two t;
    two_start(e, &t, &cfg, &cfg);
    struct tt_timer stop;
    tt_timer_init(&stop, on_stop, NULL);
    tt_timer_start(t.loop, &stop, 1000);
    assert_int_equal(tt_loop_run(t.loop), 0);
    assert_false(t.p.closed);
    assert_false(t.c.closed);
    two_end(&t);
}

/* After an answered PING the next one goes ping_interval_ms after the
 * ACK (the interval is silence, and the ACK ends it), not ping_timeout_ms
 * after the PING: the timeout only bounds the wait for an answer.  Only p
 * pings; with a timeout of a minute, three PINGs answered before the hang
 * guard (10 s) can only come from the interval.  The PING payloads are
 * their send times, which also shows no PING went early. */
struct ping_count {
    struct tt_loop *loop;
    int acks;
    uint64_t sent[3];
    int closed;
};

static void p_on_ping_ack(void *ud, uint64_t opaque)
{
    struct ping_count *pings = ud;
    if (pings->acks < 3)
        pings->sent[pings->acks] = opaque;
    if (++pings->acks == 3)
        tt_loop_stop(pings->loop);
}

static void count_closed(void *ud, struct tt_session *s, const char *reason)
{
    (void)s, (void)reason;
    ((struct ping_count *)ud)->closed++;
}

static void test_keepalive_interval_after_ack(void **state)
{
    struct env *e = *state;
    struct tt_loop *loop = tt_loop_new();
    struct tt_tls_conn pt, ct;
    tls_pair(e, &pt, &ct);
    struct tt_session_config pcfg, ccfg;
    tt_session_config_default(&pcfg);
    tt_session_config_default(&ccfg);
    pcfg.ping_interval_ms = 20;
    pcfg.ping_timeout_ms = 60000;
    ccfg.ping_interval_ms = 0;
    struct ping_count pings = {.loop = loop};
    struct tt_session_callbacks pcb = {.h2 = {.on_ping_ack = p_on_ping_ack},
                                       .on_closed = count_closed};
    struct tt_session_callbacks ccb = {.on_closed = count_closed};
    struct tt_session *ps = tt_session_new(loop, &pt, TT_H2_CLIENT, &pcfg, &pcb, &pings, NULL, 0);
    struct tt_session *cs = tt_session_new(loop, &ct, TT_H2_SERVER, &ccfg, &ccb, &pings, NULL, 0);
    assert_non_null(ps);
    assert_non_null(cs);
    int guard_fired = 0;
    struct tt_timer guard;
    tt_timer_init(&guard, on_guard, &guard_fired);
    tt_timer_start(loop, &guard, 10000); /* a hang guard: the bug waits 60 s */
    assert_int_equal(tt_loop_run(loop), 0);
    if (guard_fired)
        fail_msg("%d PING(s) answered in 10 s with a %u ms interval", pings.acks,
                 pcfg.ping_interval_ms);
    assert_int_equal(pings.closed, 0);
    assert_int_equal(pings.acks, 3);
    assert_true(pings.sent[1] >= pings.sent[0] + pcfg.ping_interval_ms);
    assert_true(pings.sent[2] >= pings.sent[1] + pcfg.ping_interval_ms);
    tt_timer_stop(loop, &guard);
    tt_session_close(ps, "test over");
    tt_session_close(cs, "test over");
    struct tt_timer quit;
    tt_timer_init(&quit, on_stop, NULL);
    tt_timer_start(loop, &quit, 0);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_int_equal(pings.closed, 2);
    tt_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_1mib),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_transport_loss),
        cmocka_unit_test(test_keepalive_drops_silent_peer),
        cmocka_unit_test(test_settings_ack_timeout),
        cmocka_unit_test(test_keepalive_answered),
        cmocka_unit_test(test_keepalive_interval_after_ack),
        cmocka_unit_test(test_keepalive_needs_streams),
    };
    return cmocka_run_group_tests_name("session", tests, setup, teardown);
}
