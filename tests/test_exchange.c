/* Tests of proxy/exchange: a fake front (records what the exchange asks of
 * it) and fake origins (real HTTP/2 server sessions, scripted) on real
 * tunnel sessions over socketpairs, in one loop.  The tunnel side is p's own
 * (tt_px_tunnel_cbs, the registry, pool_open), so what is tested is the
 * policy every front gets: retry and replay, local answers, window given
 * back only for bytes the front took, cancel, interim limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/log.h"
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- fake origins ---------------------------------------------------------- */

enum fc_mode {
    FC_ANSWER = 0,  /* 200 with the request body echoed, or "hello" */
    FC_RESET,       /* RST_STREAM(INTERNAL_ERROR) on the request head */
    FC_REFUSE_ONCE, /* RST_STREAM(REFUSED_STREAM) the first time, then answer */
    FC_CLOSE,       /* the tunnel goes away on the request head */
    FC_HOLD,        /* never answers */
    FC_BIG,         /* 200 with BIG_LEN bytes */
    FC_INTERIM,     /* ten 103s, then answer */
    FC_CUT,         /* a head and part of the body, then the tunnel goes */
    FC_GRPC_CUT,    /* the same for a gRPC response */
    FC_RESET_MID,   /* a head and part of the body, then RST_STREAM(CANCEL) */
};

#define BIG_LEN (1024 * 1024)
#define MAX_TUNNELS 3

struct fakec {
    struct tt_session *sess;
    enum fc_mode mode;
    int requests;       /* request heads seen */
    int resets_seen;    /* RST_STREAM from p, and its last code */
    uint32_t last_rst_code;
    uint8_t body[256];
    size_t body_len;
    uint32_t big_sid;
    size_t big_sent;
    int closed;
};

static void fc_answer(struct fakec *f, uint32_t sid)
{
    struct tt_h2_conn *c = tt_session_h2(f->sess);
    const uint8_t *b = f->body_len ? f->body : (const uint8_t *)"hello";
    size_t n = f->body_len ? f->body_len : 5;
    char len[24];
    snprintf(len, sizeof(len), "%zu", n);
    struct tt_header h[2] = {{":status", "200", 7, 3, 0},
                             {"content-length", len, 14, (uint32_t)strlen(len), 0}};
    assert_int_equal(tt_h2_submit_headers(c, sid, h, 2, 0), 0);
    assert_int_equal(tt_h2_send_data(c, sid, b, n, 1), (ssize_t)n);
    tt_session_flush(f->sess);
}

static void fc_pump_big(struct fakec *f)
{
    if (!f->big_sid || f->closed)
        return;
    static uint8_t chunk[16384];
    struct tt_h2_conn *c = tt_session_h2(f->sess);
    while (f->big_sent < BIG_LEN) {
        size_t want = BIG_LEN - f->big_sent < sizeof(chunk) ? BIG_LEN - f->big_sent : sizeof(chunk);
        ssize_t n = tt_h2_send_data(c, f->big_sid, chunk, want, f->big_sent + want == BIG_LEN);
        if (n <= 0)
            break;
        f->big_sent += (size_t)n;
    }
    if (f->big_sent == BIG_LEN)
        f->big_sid = 0;
    tt_session_flush(f->sess);
}

static int fc_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct fakec *f = ud;
    (void)sud;
    if (h->kind != TT_H2_HDRS_REQUEST)
        return 0;
    f->requests++;
    f->body_len = 0;
    struct tt_h2_conn *c = tt_session_h2(f->sess);
    switch (f->mode) {
    case FC_RESET:
        tt_h2_submit_rst(c, sid, TT_H2_INTERNAL_ERROR);
        break;
    case FC_REFUSE_ONCE:
        if (f->requests == 1) {
            tt_h2_submit_rst(c, sid, TT_H2_REFUSED_STREAM);
            break;
        }
        if (h->end_stream)
            fc_answer(f, sid);
        break;
    case FC_CLOSE:
        tt_session_close(f->sess, "fake origin leaves");
        break;
    case FC_HOLD:
        break;
    case FC_BIG: {
        struct tt_header hd[1] = {{":status", "200", 7, 3, 0}};
        assert_int_equal(tt_h2_submit_headers(c, sid, hd, 1, 0), 0);
        f->big_sid = sid;
        f->big_sent = 0;
        fc_pump_big(f);
        break;
    }
    case FC_INTERIM: {
        struct tt_header eh[2] = {{":status", "103", 7, 3, 0}, {"link", "</a>", 4, 4, 0}};
        for (int i = 0; i < 10; i++)
            assert_int_equal(tt_h2_submit_headers(c, sid, eh, 2, 0), 0);
        fc_answer(f, sid);
        break;
    }
    case FC_CUT: {
        struct tt_header hd[2] = {{":status", "200", 7, 3, 0}, {"content-length", "100", 14, 3, 0}};
        assert_int_equal(tt_h2_submit_headers(c, sid, hd, 2, 0), 0);
        assert_int_equal(tt_h2_send_data(c, sid, "part", 4, 0), 4);
        tt_session_flush(f->sess);
        tt_session_close(f->sess, "cut mid-body");
        break;
    }
    case FC_GRPC_CUT: {
        struct tt_header hd[2] = {{":status", "200", 7, 3, 0},
                                  {"content-type", "application/grpc", 12, 16, 0}};
        assert_int_equal(tt_h2_submit_headers(c, sid, hd, 2, 0), 0);
        assert_int_equal(tt_h2_send_data(c, sid, "\0\0\0\0\x09half", 9, 0), 9);
        tt_session_flush(f->sess);
        tt_session_close(f->sess, "cut mid-message");
        break;
    }
    case FC_RESET_MID: {
        struct tt_header hd[1] = {{":status", "200", 7, 3, 0}};
        assert_int_equal(tt_h2_submit_headers(c, sid, hd, 1, 0), 0);
        assert_int_equal(tt_h2_send_data(c, sid, "part", 4, 0), 4);
        assert_int_equal(tt_h2_submit_rst(c, sid, TT_H2_CANCEL), 0);
        break;
    }
    case FC_ANSWER:
        if (h->end_stream)
            fc_answer(f, sid);
        break;
    }
    tt_session_flush(f->sess);
    return 0;
}

static int fc_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    struct fakec *f = ud;
    (void)sud;
    struct tt_h2_conn *c = tt_session_h2(f->sess);
    if (f->body_len + len <= sizeof(f->body)) {
        memcpy(f->body + f->body_len, data, len);
        f->body_len += len;
    }
    tt_h2_consume(c, sid, len);
    if (end_stream && (f->mode == FC_ANSWER || (f->mode == FC_REFUSE_ONCE && f->requests > 1)))
        fc_answer(f, sid);
    tt_session_flush(f->sess);
    return 0;
}

static void fc_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct fakec *f = ud;
    (void)sid, (void)sud;
    if (flags & TT_H2_CLOSE_RST_RECEIVED) {
        f->resets_seen++;
        f->last_rst_code = code;
    }
    if (sid == f->big_sid)
        f->big_sid = 0;
}

static void fc_on_window_update(void *ud, uint32_t sid, void *sud)
{
    (void)sid, (void)sud;
    fc_pump_big(ud);
}

static void fc_on_writable(void *ud, struct tt_session *s)
{
    (void)s;
    fc_pump_big(ud);
}

static void fc_noop_goaway(void *ud, uint32_t l, uint32_t c, tt_iov d) { (void)ud, (void)l, (void)c, (void)d; }
static void fc_noop_ping(void *ud, uint64_t o) { (void)ud, (void)o; }
static void fc_noop_settings(void *ud) { (void)ud; }

static void fc_on_closed(void *ud, struct tt_session *s, const char *reason)
{
    struct fakec *f = ud;
    (void)s, (void)reason;
    f->sess = NULL;
    f->closed = 1;
}

static const struct tt_session_callbacks fc_cbs = {
    .h2 = {.on_headers = fc_on_headers, .on_data = fc_on_data,
           .on_stream_close = fc_on_stream_close, .on_window_update = fc_on_window_update,
           .on_goaway = fc_noop_goaway, .on_ping_ack = fc_noop_ping,
           .on_remote_settings = fc_noop_settings},
    .on_writable = fc_on_writable,
    .on_closed = fc_on_closed,
};

/* ---- the fake front -------------------------------------------------------------- */

struct front {
    struct tt_px_exchange x;
    int status;            /* of the final head */
    int heads, interims, aborts, ended;
    char body[64];
    size_t body_len, total;
    size_t req_taken;
    int take_none;         /* data op takes nothing: the bytes wait, window owed */
    size_t held;           /* bytes taken "later" */
    size_t release_at;     /* once this much is held, hand it all back */
    int abort_at_first_data; /* the client leaves when the body starts */
    int order;             /* when its response ended, counting from 1 */
    char trailers[128];    /* the trailers the exchange passed on, "name: value;..." */
};

static int g_ended; /* responses ended so far (front.order) */

#define FRONT(xp) tt_container_of((xp), struct front, x)

static struct tt_loop *g_loop;

static void fr_stop(void) { tt_loop_stop(g_loop); }

static void ff_interim(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    (void)h;
    FRONT(x)->interims++;
}

static void ff_head(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    struct front *f = FRONT(x);
    f->heads++;
    f->status = h->status;
    if (h->end_stream) {
        f->ended = 1;
        fr_stop();
    }
}

static ssize_t ff_data(struct tt_px_exchange *x, const uint8_t *p, size_t len, int end)
{
    struct front *f = FRONT(x);
    if (f->abort_at_first_data) {
        f->abort_at_first_data = 0;
        tt_px_exchange_end(x, 1);
        fr_stop();
        return -1;
    }
    size_t k = len < sizeof(f->body) - f->body_len ? len : sizeof(f->body) - f->body_len;
    memcpy(f->body + f->body_len, p, k);
    f->body_len += k;
    f->total += len;
    if (end) {
        f->ended = 1;
        f->order = ++g_ended;
        fr_stop();
    }
    if (!f->take_none)
        return (ssize_t)len;
    f->held += len;
    if (f->held >= f->release_at) {
        /* The client took what waited: only now may c send more. */
        f->held = 0;
        tt_px_exchange_taken(x, SIZE_MAX);
    }
    return 0;
}

static void ff_trailers(struct tt_px_exchange *x, const struct tt_header *h, size_t n)
{
    struct front *f = FRONT(x);
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(f->trailers);
        snprintf(f->trailers + used, sizeof f->trailers - used, "%.*s: %.*s;", (int)h[i].name_len,
                 h[i].name, (int)h[i].value_len, h[i].value);
    }
    f->ended = 1;
    fr_stop();
}

static void ff_abort(struct tt_px_exchange *x, const char *why)
{
    (void)why;
    FRONT(x)->aborts++;
    tt_px_exchange_end(x, 0);
    fr_stop();
}

static void ff_req_taken(struct tt_px_exchange *x, size_t n, int drained)
{
    (void)drained;
    FRONT(x)->req_taken += n;
}

static const struct tt_px_front_ops ff_ops = {
    .interim = ff_interim, .head = ff_head, .data = ff_data,
    .trailers = ff_trailers, .abort = ff_abort, .req_taken = ff_req_taken,
};

/* ---- the world ------------------------------------------------------------------- */

struct world {
    struct tt_px_config cfg;
    struct tt_px_server srv;
    struct fakec fc[MAX_TUNNELS];
    struct tt_px_tunnel *tun[MAX_TUNNELS];
    int ntun;
    struct tt_timer guard;
    int timed_out;
};

static void on_guard(struct tt_loop *loop, struct tt_timer *t)
{
    struct world *w = t->data;
    w->timed_out = 1;
    tt_loop_stop(loop);
}

/* Runs the loop until the front stops it (or 10 s, a failure). */
static void run(struct world *w)
{
    w->timed_out = 0;
    tt_timer_start(g_loop, &w->guard, 10000);
    assert_int_equal(tt_loop_run(g_loop), 0);
    tt_timer_stop(g_loop, &w->guard);
    assert_false(w->timed_out);
}

/* Lets the loop turn for a moment (frames in flight are delivered). */
static void settle(struct world *w, uint64_t ms)
{
    tt_timer_start(g_loop, &w->guard, ms);
    assert_int_equal(tt_loop_run(g_loop), 0);
}

static void add_tunnel(struct world *w, enum fc_mode mode)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    int i = w->ntun++;
    struct tt_px_tunnel *t = tt_mem_calloc(1, sizeof(*t));
    assert_non_null(t);
    t->srv = &w->srv;
    t->reg = &w->srv.reg;
    t->serial = ++w->srv.tunnel_serial;
    snprintf(t->name, sizeof(t->name), "media");
    snprintf(t->peer, sizeof(t->peer), "test:%d", i);
    struct tt_tls_conn p_end, c_end;
    tt_tls_conn_init_plain(&p_end, sv[0]);
    tt_tls_conn_init_plain(&c_end, sv[1]);
    w->fc[i].mode = mode;
    w->fc[i].sess = tt_session_new(g_loop, &c_end, TT_H2_SERVER, &w->srv.scfg, &fc_cbs, &w->fc[i],
                                   NULL, 0);
    t->sess = tt_session_new(g_loop, &p_end, TT_H2_CLIENT, &w->srv.scfg, &tt_px_tunnel_cbs, t, NULL, 0);
    assert_non_null(w->fc[i].sess);
    assert_non_null(t->sess);
    assert_true(tt_px_registry_add(&w->srv.reg, t) > 0);
    w->tun[i] = t;
    settle(w, 50); /* the prefaces and SETTINGS */
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    g_loop = tt_loop_new();
    if (!w || !g_loop)
        return -1;
    w->srv.loop = g_loop;
    w->srv.cfg = &w->cfg;
    w->srv.env.loop = g_loop;
    w->srv.env.reg = &w->srv.reg;
    w->srv.env.route.default_name = "media";
    tt_session_config_default(&w->srv.scfg);
    w->srv.scfg.h2.initial_window_size = 65535;
    w->srv.scfg.h2.connection_window = 256 * 1024;
    tt_px_registry_init(&w->srv.reg);
    tt_timer_init(&w->guard, on_guard, w);
    tt_log_init("test_exchange", TT_LOG_ERROR);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    for (int i = 0; i < w->ntun; i++) {
        if (w->fc[i].sess)
            tt_session_close(w->fc[i].sess, "test over");
    }
    settle(w, 50);
    tt_px_registry_free(&w->srv.reg);
    tt_loop_free(g_loop);
    free(w);
    return 0;
}

static void front_init(struct world *w, struct front *f)
{
    memset(f, 0, sizeof(*f));
    tt_px_exchange_init(&f->x, &w->srv.env, &ff_ops, "127.0.0.1:1", "127.0.0.1", 64 * 1024);
}

/* Starts a request; a body (body != NULL) follows the head at once. */
static void front_start(struct front *f, const char *method, const char *body)
{
    struct tt_px_exchange *x = &f->x;
    tt_px_exchange_begin(x);
    assert_int_equal(tt_px_exchange_set_line(x, method, strlen(method), "/x", 2), 0);
    struct tt_px_request rq = {
        .authority = "media", .authority_len = 5, .path = "/x", .path_len = 2, .end = body == NULL,
    };
    (void)tt_px_exchange_start(x, &rq);
    if (body && x->active) {
        assert_int_equal(tt_px_exchange_req_body(x, (const uint8_t *)body, strlen(body)), 0);
        tt_px_exchange_req_end(x, NULL, 0);
    }
}

static void front_done(struct front *f)
{
    tt_px_exchange_end(&f->x, 0);
    tt_px_exchange_free(&f->x);
}

/* ---- cases ---------------------------------------------------------------------- */

static void test_get_answered(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_ANSWER);
    struct front f;
    front_init(w, &f);
    front_start(&f, "GET", NULL);
    run(w);
    assert_int_equal(f.status, 200);
    assert_int_equal(f.body_len, 5);
    assert_memory_equal(f.body, "hello", 5);
    assert_int_equal(w->fc[0].requests, 1);
    front_done(&f);
    assert_int_equal(w->srv.env.counters.by_class[TT_PX_FRONT_HTTP1][2], 1);
    assert_null(f.x.tun);
}

/* The pool's queue takes client connections in turn: a connection with one
 * request waits behind one request of a connection with many, not all. */
static void test_queue_takes_turns(void **state)
{
    struct world *w = *state;
    w->srv.scfg.h2.max_concurrent_streams = 1; /* c takes one stream at a time */
    add_tunnel(w, FC_ANSWER);
    struct tt_px_qgroup busy = {0}, calm = {0};
    struct front f[4]; /* 0-2: the busy connection's; 3: the calm one's */
    g_ended = 0;
    for (int i = 0; i < 4; i++) {
        front_init(w, &f[i]);
        tt_px_exchange_set_group(&f[i].x, i < 3 ? &busy : &calm);
        front_start(&f[i], "GET", NULL);
    }
    for (int k = 0; k < 4 && g_ended < 4; k++)
        run(w);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f[i].status, 200);
    assert_int_equal(f[0].order, 1); /* it opened at once */
    assert_int_equal(f[1].order, 2); /* the busy connection's turn */
    assert_int_equal(f[3].order, 3); /* the calm one's, before the busy one's third */
    assert_int_equal(f[2].order, 4);
    for (int i = 0; i < 4; i++)
        front_done(&f[i]);
}

/* Past TT_PX_CROWD open streams a tunnel's stream windows shrink, and grow
 * back once fewer than half as many are open. */
static void test_windows_shrink_when_crowded(void **state)
{
    struct world *w = *state;
    w->srv.scfg.h2.max_concurrent_streams = 1000;
    add_tunnel(w, FC_HOLD);
    enum { N = TT_PX_CROWD + 44 };
    struct front *f = calloc(N, sizeof(*f));
    assert_non_null(f);
    for (int i = 0; i < N; i++) {
        front_init(w, &f[i]);
        front_start(&f[i], "GET", NULL);
    }
    settle(w, 100); /* c's ACK */
    assert_int_equal(w->fc[0].requests, N);
    assert_int_equal(w->tun[0]->crowded, 1);
    for (int i = 0; i < N - TT_PX_CROWD / 2 + 1; i++)
        front_done(&f[i]);
    settle(w, 100);
    assert_int_equal(w->tun[0]->crowded, 0);
    for (int i = N - TT_PX_CROWD / 2 + 1; i < N; i++)
        front_done(&f[i]);
    free(f);
}

static void test_no_origin_503(void **state)
{
    struct world *w = *state;
    struct front f;
    front_init(w, &f);
    front_start(&f, "GET", NULL);
    /* Answered at once, from inside start. */
    assert_int_equal(f.status, 503);
    assert_true(f.x.local);
    assert_non_null(strstr(f.body, "no origin is connected for name 'media'"));
    front_done(&f);
}

static void test_reset_is_final(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_RESET);
    add_tunnel(w, FC_RESET);
    struct front f;
    front_init(w, &f);
    front_start(&f, "GET", NULL);
    run(w);
    /* The origin's own answer: 502, not sent to the other member. */
    assert_int_equal(f.status, 502);
    assert_non_null(strstr(f.body, "the origin reset the request"));
    assert_int_equal(w->fc[0].requests + w->fc[1].requests, 1);
    assert_int_equal(w->srv.env.counters.retries, 0);
    front_done(&f);
}

static void test_refused_replays_body(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_REFUSE_ONCE);
    struct front f;
    front_init(w, &f);
    front_start(&f, "POST", "abc");
    run(w);
    assert_int_equal(f.status, 200);
    assert_int_equal(f.body_len, 3);
    assert_memory_equal(f.body, "abc", 3);
    assert_int_equal(w->fc[0].requests, 2);
    assert_int_equal(w->srv.env.counters.retries, 1);
    /* Every body byte's window went back to the client side once. */
    assert_int_equal(f.req_taken, 3);
    front_done(&f);
}

static void test_lost_get_retried_elsewhere(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_CLOSE);
    struct front f;
    front_init(w, &f);
    /* Only the closing member is there at first: the retry waits for a c
     * that comes back, here the second tunnel added while it waits. */
    front_start(&f, "GET", NULL);
    settle(w, 100);
    assert_int_equal(f.heads, 0);
    assert_true(f.x.retrying);
    add_tunnel(w, FC_ANSWER);
    run(w);
    assert_int_equal(f.status, 200);
    assert_int_equal(w->fc[1].requests, 1);
    assert_int_equal(w->srv.env.counters.retries, 1);
    front_done(&f);
}

static void test_retry_wait_bounded(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_CLOSE);
    struct front f;
    front_init(w, &f);
    /* The only member goes and no c comes back: the waits for one stop at
     * the bound, then 502. */
    front_start(&f, "GET", NULL);
    run(w);
    assert_int_equal(f.status, 502);
    assert_int_equal(f.x.waited_ms, TT_PX_RETRY_WAIT_MS);
    assert_true(f.x.attempts <= TT_PX_RETRIES);
    front_done(&f);
}

static void test_lost_post_not_retried(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_CLOSE);
    add_tunnel(w, FC_ANSWER);
    struct front f;
    front_init(w, &f);
    /* Pick the closing member first: it is the only one with no stream
     * after the second gets one of its own. */
    w->tun[1]->streams = 5;
    front_start(&f, "POST", "not-idempotent");
    run(w);
    assert_int_equal(f.status, 502);
    assert_non_null(strstr(f.body, "tunnel closed before it answered"));
    assert_int_equal(w->fc[1].requests, 0);
    w->tun[1]->streams = 0;
    front_done(&f);
}

static void test_window_only_for_taken_bytes(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_BIG);
    struct front f;
    front_init(w, &f);
    /* The front holds what it gets and hands it back in batches: c can go
     * on only because of those, and the whole body arrives. */
    f.take_none = 1;
    f.release_at = 48 * 1024;
    front_start(&f, "GET", NULL);
    run(w);
    assert_int_equal(f.status, 200);
    assert_int_equal(f.total, BIG_LEN);
    front_done(&f);
}

static void test_window_stalls_without_taken(void **state)
{
    struct world *w = *state;
    /* A connection window little more than one stream's: a download that
     * cannot get back what a cancelled stream held would stall. */
    w->srv.scfg.h2.connection_window = 65535 + 16384;
    add_tunnel(w, FC_BIG);
    struct front f;
    front_init(w, &f);
    f.take_none = 1;
    f.release_at = SIZE_MAX; /* never */
    front_start(&f, "GET", NULL);
    settle(w, 300);
    /* At most the stream window came: nothing was given back. */
    assert_false(f.ended);
    assert_true(f.total <= 65535);
    assert_int_equal(f.x.unconsumed, f.total);
    /* The client leaves: the stream is cancelled, and the connection window
     * for every held byte comes back, so a second download completes. */
    tt_px_exchange_end(&f.x, 1);
    settle(w, 100);
    assert_int_equal(w->fc[0].resets_seen, 1);
    assert_int_equal(w->fc[0].last_rst_code, TT_H2_CANCEL);
    assert_int_equal(f.x.unconsumed, 0);
    for (int k = 0; k < 3; k++) {
        struct front g;
        front_init(w, &g);
        front_start(&g, "GET", NULL);
        run(w);
        assert_int_equal(g.total, BIG_LEN);
        front_done(&g);
    }
    tt_px_exchange_free(&f.x);
}

static void test_client_gone_before_head(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_HOLD);
    struct front f;
    front_init(w, &f);
    front_start(&f, "GET", NULL);
    settle(w, 100);
    assert_non_null(f.x.tun);
    assert_int_equal(w->tun[0]->streams, 1);
    tt_px_exchange_end(&f.x, 1);
    assert_int_equal(f.x.status, 499);
    assert_null(f.x.tun);
    assert_int_equal(w->tun[0]->streams, 0);
    settle(w, 100);
    assert_int_equal(w->fc[0].resets_seen, 1);
    assert_int_equal(w->fc[0].last_rst_code, TT_H2_CANCEL);
    assert_int_equal(w->srv.env.counters.cancels, 1);
    tt_px_exchange_free(&f.x);
}

static void test_client_gone_mid_body(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_BIG);
    struct front f;
    front_init(w, &f);
    f.abort_at_first_data = 1;
    front_start(&f, "GET", NULL);
    run(w);
    assert_int_equal(f.x.status, 200); /* the head went out: not a 499 */
    settle(w, 100);
    assert_int_equal(w->fc[0].last_rst_code, TT_H2_CANCEL);
    /* The window for what arrived was returned: the next download is whole. */
    struct front g;
    front_init(w, &g);
    front_start(&g, "GET", NULL);
    run(w);
    assert_int_equal(g.total, BIG_LEN);
    front_done(&g);
    tt_px_exchange_free(&f.x);
}

static void test_cut_mid_body_aborts(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_CUT);
    struct front f;
    front_init(w, &f);
    front_start(&f, "GET", NULL);
    run(w);
    /* Never a short body that looks whole. */
    assert_int_equal(f.status, 200);
    assert_int_equal(f.aborts, 1);
    assert_false(f.ended);
    tt_px_exchange_free(&f.x);
}

/* A gRPC response whose tunnel goes mid-message ends with grpc-status 14
 * for an h2 client that takes trailers (UNAVAILABLE, retried by gRPC
 * clients), not with a reset read as INTERNAL. */
static void test_grpc_cut_unavailable(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_GRPC_CUT);
    add_tunnel(w, FC_GRPC_CUT);
    static const struct tt_px_field te = {"te", "trailers", 2, 8};
    for (int h2 = 0; h2 < 2; h2++) {
        struct front f;
        front_init(w, &f);
        f.x.proto = h2 ? "h2" : NULL;
        tt_px_exchange_begin(&f.x);
        assert_int_equal(tt_px_exchange_set_line(&f.x, "POST", 4, "/x", 2), 0);
        struct tt_px_request rq = {
            .authority = "media", .authority_len = 5, .path = "/x", .path_len = 2,
            .f = &te, .n = 1, .end = 1,
        };
        (void)tt_px_exchange_start(&f.x, &rq);
        run(w);
        assert_int_equal(f.status, 200);
        if (h2) {
            assert_int_equal(f.aborts, 0);
            assert_string_equal(f.trailers, "grpc-status: 14;grpc-message: the origin's tunnel "
                                            "closed mid-response;");
            assert_int_equal(f.x.end_how, TT_PX_END_TUNNEL_LOST);
            assert_int_equal(f.x.grpc_status, 14);
            front_done(&f);
        } else {
            /* HTTP/1.1 may not be able to frame trailers: cut. */
            assert_int_equal(f.aborts, 1);
            assert_string_equal(f.trailers, "");
            tt_px_exchange_free(&f.x);
        }
    }
}

/* c resets a stream mid-response: the front is told c's code (an h2 front
 * passes it on), and the access line says who ended it. */
static void test_reset_mid_body_keeps_code(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_RESET_MID);
    struct front f;
    front_init(w, &f);
    front_start(&f, "GET", NULL);
    run(w);
    assert_int_equal(f.status, 200);
    assert_int_equal(f.aborts, 1);
    assert_int_equal(f.x.end_how, TT_PX_END_ORIGIN_RESET);
    assert_int_equal(f.x.end_code, TT_H2_CANCEL);
    tt_px_exchange_free(&f.x);
}

static void test_local_after_head_fails(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_BIG);
    struct front f;
    front_init(w, &f);
    f.take_none = 1;
    f.release_at = SIZE_MAX;
    front_start(&f, "GET", NULL);
    settle(w, 100);
    assert_int_equal(f.heads, 1);
    tt_px_exchange_local(&f.x, 502, "too late\n", -1);
    assert_int_equal(f.heads, 1); /* no second head */
    assert_int_equal(f.aborts, 1);
    assert_null(f.x.tun);
    tt_px_exchange_free(&f.x);
}

static void test_interim_limited(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_INTERIM);
    struct front f;
    front_init(w, &f);
    front_start(&f, "GET", NULL);
    run(w);
    assert_int_equal(f.interims, TT_PX_MAX_INTERIM);
    assert_int_equal(f.status, 200);
    front_done(&f);
    /* Not at all to a client that may not get them (HTTP/1.0). */
    front_init(w, &f);
    f.x.interim_ok = 0;
    front_start(&f, "GET", NULL);
    run(w);
    assert_int_equal(f.interims, 0);
    front_done(&f);
}

static void test_expect_continue(void **state)
{
    struct world *w = *state;
    add_tunnel(w, FC_ANSWER);
    struct front f;
    front_init(w, &f);
    struct tt_px_exchange *x = &f.x;
    tt_px_exchange_begin(x);
    assert_int_equal(tt_px_exchange_set_line(x, "PUT", 3, "/x", 2), 0);
    struct tt_px_field fl[1] = {{"expect", "100-continue", 6, 12}};
    struct tt_px_request rq = {.authority = "media", .authority_len = 5, .path = "/x",
                               .path_len = 2, .f = fl, .n = 1};
    assert_int_equal(tt_px_exchange_start(x, &rq), 0);
    /* We read the body, so we say 100 once the request has a tunnel. */
    assert_int_equal(f.interims, 1);
    assert_int_equal(tt_px_exchange_req_body(x, (const uint8_t *)"up", 2), 0);
    tt_px_exchange_req_end(x, NULL, 0);
    run(w);
    assert_int_equal(f.status, 200);
    assert_memory_equal(f.body, "up", 2);
    front_done(&f);
    /* Another expectation: 417. */
    front_init(w, &f);
    tt_px_exchange_begin(x);
    assert_int_equal(tt_px_exchange_set_line(x, "PUT", 3, "/x", 2), 0);
    fl[0] = (struct tt_px_field){"expect", "teapot", 6, 6};
    assert_int_equal(tt_px_exchange_start(x, &rq), -1);
    assert_int_equal(f.status, 417);
    front_done(&f);
}

static void test_head_gets_no_local_body(void **state)
{
    struct world *w = *state;
    struct front f;
    front_init(w, &f);
    front_start(&f, "HEAD", NULL);
    assert_int_equal(f.status, 503);
    assert_true(f.ended);
    assert_int_equal(f.body_len, 0);
    front_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_takes_turns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_shrink_when_crowded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_origin_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_is_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_replays_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_get_retried_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_wait_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_post_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_only_for_taken_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_stalls_without_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_before_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_mid_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_mid_body_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_cut_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_mid_body_keeps_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_after_head_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interim_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_gets_no_local_body, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
