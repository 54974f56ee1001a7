/*
 * The HTTP/2 client front: h2c with prior knowledge (RFC 9113 §3.3) on the
 * same port as the HTTP/1.1 front, and h2 over TLS (RFC 9113 §3.2, chosen by
 * ALPN) on the HTTPS front.  accept.c hands a connection here once its first
 * bytes are the connection preface (or ALPN said h2).
 *
 * A client connection is a tt_session (proto/session.c) in the server role
 * over a tt_tls_conn (plaintext or TLS), so everything at the connection
 * level (SETTINGS, PING, GOAWAY, flow control, limits, errors) is the
 * codec's.  This file is a protocol adapter only: each client stream is one
 * exchange (proxy/exchange.h), which owns the request's tunnel half.
 *
 *   client stream csid ── tt_px_h2s { exchange } ── tunnel stream
 *     request HEADERS  → checks, then tt_px_exchange_start
 *     request DATA     → tt_px_exchange_req_body; window back on req_taken
 *     response HEADERS ← ops.head
 *     response DATA    ← ops.data; s->resp while the client has no window,
 *                        reported to the exchange as it leaves
 *     trailers both ways, kept until the DATA before them is out
 *
 * Lifetime: a record lives as long as its client stream.  When the stream
 * closes (or is reset by us) the exchange is ended, which lets go of the
 * tunnel stream, and the record goes on the connection's reap list to be
 * freed from a deferred call, so a callback that closes a stream (a send
 * with END_STREAM may fire on_stream_close) never sees its record vanish.
 */
#include "proxy.h"

#include "proto/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define H2F_FIELDS_MAX 512    /* request fields: more -> 431 */
#define H2F_CLIENT_WINDOW (1u << 20)      /* per-stream receive window for bodies */
#define H2F_CLIENT_CONN_WINDOW (8u << 20) /* the client connection's */

struct tt_px_h2c {
    struct tt_px_server *srv;
    struct tt_session *sess;
    struct tt_link link;            /* on srv->h2_list */
    struct tt_list blocked;         /* tt_px_h2s waiting for room on this connection */
    struct tt_px_h2s *reap;         /* closed, to free */
    struct tt_defer reap_d;
    size_t resp_max; /* bound of a stream's response buffer */
    uint8_t tls;     /* came over the HTTPS front (ALPN h2): :scheme https */
    struct tt_timer idle;  /* --client-idle with no stream open: GOAWAY */
    uint64_t last_busy_ms; /* a stream opened or closed */
    struct tt_px_qgroup turn; /* its requests waiting in a pool's queue take turns with others' */
    const struct tt_px_token *caller; /* a forward link: the origin that calls; NULL: a client */
    char peer[64];
    char ip[48];
};

struct tt_px_h2s {
    struct tt_px_exchange x; /* the request's life on the tunnel */
    struct tt_px_h2c *cc;
    uint32_t csid;           /* the client stream; 0 once closed */
    struct tt_link cb;       /* on cc->blocked */
    struct tt_px_h2s *wk_next; /* a wake-up batch */
    struct tt_px_h2s *reap_next;
    tt_buf resp; /* response DATA the client conn has not taken (tunnel window owed) */
    struct tt_header *resp_trl; /* trailers waiting behind DATA (in the exchange's arena) */
    size_t resp_trl_n;
    struct tt_timer stall; /* response bytes wait for the client's window */
    struct tt_timer idle;  /* a WebSocket with --stream-idle: no byte either way */
    uint64_t moved_ms;     /* ... the last byte, either way */
    uint8_t resp_end;      /* the response is complete (bytes may still wait) */
    uint8_t resp_end_sent; /* ... and its end went to the client */
    uint8_t reaped;
};

#define H2S(x) tt_container_of((x), struct tt_px_h2s, x)

static void h2f_pump_resp(struct tt_px_h2s *s);

int tt_px_h2f_sniff(const uint8_t *p, size_t len)
{
    size_t n = len < TT_PX_H2_PREFACE_LEN ? len : TT_PX_H2_PREFACE_LEN;
    if (memcmp(p, TT_PX_H2_PREFACE, n) != 0)
        return -1;
    return n == TT_PX_H2_PREFACE_LEN ? 1 : 0;
}

/* --- The client side ------------------------------------------------------- */

static struct tt_h2_conn *h2f_cconn(const struct tt_px_h2s *s)
{
    return s->csid && s->cc->sess && !tt_session_closing(s->cc->sess)
               ? tt_session_h2(s->cc->sess)
               : NULL;
}

static void h2f_cflush(struct tt_px_h2s *s)
{
    if (s->cc->sess)
        tt_session_flush(s->cc->sess);
}

/* Waiting for the client's window.  A client that takes no byte of this
 * response for --client-idle has it reset: it holds a stream window at p
 * and a request at c for nothing. */
static void h2f_cblock(struct tt_px_h2s *s, int moved)
{
    if (!s->csid)
        return;
    tt_list_push(&s->cc->blocked, &s->cb);
    if (moved || !tt_timer_active(&s->stall))
        tt_timer_start(s->cc->srv->loop, &s->stall, s->cc->srv->cfg->client_idle_s * 1000u);
}

static void h2f_close(struct tt_px_h2s *s, int gone);

static void h2f_on_stall(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_px_h2s *s = t->data;
    (void)loop;
    if (!s->csid || !tt_link_linked(&s->cb))
        return;
    tt_log_debug("h2 client took nothing for %u s client=%s path=%s: stream reset",
                 s->cc->srv->cfg->client_idle_s, s->cc->peer, s->x.log_path ? s->x.log_path : "");
    if (s->x.active) {
        s->x.end_how = TT_PX_END_CLIENT_STALLED;
        tt_px_exchange_fail(&s->x, "the client took nothing for --client-idle");
        return;
    }
    struct tt_h2_conn *c = s->cc->sess ? tt_session_h2(s->cc->sess) : NULL;
    uint32_t sid = s->csid;
    h2f_close(s, 1);
    if (c) {
        tt_h2_stream_set_user(c, sid, NULL);
        (void)tt_h2_submit_rst(c, sid, TT_H2_CANCEL);
        tt_session_flush(s->cc->sess);
    }
}

/* --stream-idle, as on the HTTP/1.1 front's WebSockets (front_pipe.c): the
 * timer runs to the deadline of the last move and starts again for what is
 * left when bytes moved since. */
static void h2f_on_stream_idle(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_px_h2s *s = t->data;
    uint64_t limit = (uint64_t)s->cc->srv->cfg->stream_idle_s * 1000u;
    uint64_t quiet = tt_loop_now(loop) - s->moved_ms;
    if (!s->csid || !s->x.active)
        return;
    if (quiet < limit) {
        tt_timer_start(loop, t, limit - quiet);
        return;
    }
    tt_log_info("websocket client=%s name=%s: no byte either way for %u s (--stream-idle): "
                "closed", s->cc->peer, s->x.name, s->cc->srv->cfg->stream_idle_s);
    s->x.end_how = TT_PX_END_STREAM_IDLE;
    tt_px_exchange_fail(&s->x, "--stream-idle");
}

static void h2f_moved(struct tt_px_h2s *s)
{
    if (s->x.upgrade)
        s->moved_ms = tt_loop_now(s->cc->srv->loop);
}

static void h2f_on_reap(struct tt_loop *loop, struct tt_defer *d);

static void h2f_free(struct tt_px_h2s *s)
{
    tt_timer_stop(s->cc->srv->loop, &s->idle);
    tt_timer_stop(s->cc->srv->loop, &s->stall);
    tt_px_exchange_free(&s->x);
    tt_buf_free(&s->resp);
    tt_mem_free(s);
}

/* The client stream is gone (closed, or reset by us): the exchange ends
 * (`gone`: before the response was complete) and the record is freed from
 * deferred work. */
static void h2f_close(struct tt_px_h2s *s, int gone)
{
    if (s->reaped)
        return;
    s->reaped = 1;
    s->csid = 0;
    tt_link_remove(&s->cb);
    tt_timer_stop(s->cc->srv->loop, &s->stall);
    tt_timer_stop(s->cc->srv->loop, &s->idle);
    tt_px_exchange_end(&s->x, gone);
    tt_buf_consume(&s->resp, tt_buf_len(&s->resp));
    s->reap_next = s->cc->reap;
    s->cc->reap = s;
    tt_defer_queue(s->cc->srv->loop, &s->cc->reap_d);
}

/* --- The exchange's ops ------------------------------------------------------- */

static void h2f_op_interim(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    struct tt_px_h2s *s = H2S(x);
    struct tt_h2_conn *c = h2f_cconn(s);
    /* 1xx go through as HEADERS without END_STREAM (RFC 9113 §8.1).
     * Advisory: when the client's output is full it is dropped. */
    if (c && tt_h2_submit_headers(c, s->csid, h->hdrs, h->count, 0) == 0)
        h2f_cflush(s);
}

static void h2f_op_head(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    struct tt_px_h2s *s = H2S(x);
    struct tt_h2_conn *c = h2f_cconn(s);
    if (!c)
        return;
    if (tt_h2_submit_headers(c, s->csid, h->hdrs, h->count, h->end_stream) < 0) {
        tt_log_debug("h2 response head not forwarded client=%s path=%s", s->cc->peer,
                     x->log_path ? x->log_path : "");
        tt_px_exchange_fail(x, "response head not forwarded");
        return;
    }
    if (h->end_stream)
        s->resp_end = s->resp_end_sent = 1;
    h2f_cflush(s);
}

static ssize_t h2f_op_data(struct tt_px_exchange *x, const uint8_t *p, size_t len, int end)
{
    struct tt_px_h2s *s = H2S(x);
    h2f_moved(s);
    struct tt_h2_conn *c = h2f_cconn(s);
    if (!c)
        return -1;
    size_t taken = 0;
    if (len && tt_buf_len(&s->resp) == 0) {
        ssize_t n = tt_h2_send_data(c, s->csid, p, len, 0);
        if (n > 0) {
            taken = (size_t)n;
            h2f_cflush(s);
        }
    }
    int last = end; /* nothing follows: a short answer gets a buffer its size */
    if (taken < len && (last ? tt_buf_append_last(&s->resp, p + taken, len - taken)
                             : tt_buf_append(&s->resp, p + taken, len - taken)) != 0) {
        /* More than the window we gave: cannot happen with a codec that
         * enforces it; fail the stream rather than lose bytes. */
        tt_px_exchange_fail(x, "response buffer full");
        return (ssize_t)taken;
    }
    if (end)
        s->resp_end = 1;
    h2f_pump_resp(s);
    return (ssize_t)taken;
}

static void h2f_op_trailers(struct tt_px_exchange *x, const struct tt_header *h, size_t n)
{
    struct tt_px_h2s *s = H2S(x);
    if (s->resp_end)
        return;
    s->resp_end = 1;
    /* The values point into the tunnel's input: copied, since they may wait
     * behind DATA the client has no window for. */
    if (!(s->resp_trl = tt_arena_headers_dup(&x->arena, h, n))) {
        tt_px_exchange_fail(x, "out of memory");
        return;
    }
    s->resp_trl_n = n;
    h2f_pump_resp(s);
}

/* The response cannot complete: the client sees a reset stream, never a
 * clean END_STREAM.  When c reset it, with c's code (a gRPC client reads
 * CANCEL as CANCELLED, REFUSED_STREAM as UNAVAILABLE), else INTERNAL_ERROR. */
static void h2f_op_abort(struct tt_px_exchange *x, const char *why)
{
    struct tt_px_h2s *s = H2S(x);
    struct tt_h2_conn *c = h2f_cconn(s);
    uint32_t sid = s->csid;
    uint32_t code = x->end_how == TT_PX_END_ORIGIN_RESET && x->end_code != TT_H2_NO_ERROR
                        ? x->end_code
                        : TT_H2_INTERNAL_ERROR;
    tt_log_debug("h2 response aborted client=%s path=%s: %s", s->cc->peer,
                 x->log_path ? x->log_path : "", why);
    h2f_close(s, 1);
    if (c) {
        tt_h2_stream_set_user(c, sid, NULL);
        (void)tt_h2_submit_rst(c, sid, code);
        tt_session_flush(s->cc->sess);
    }
}

static void h2f_op_req_taken(struct tt_px_exchange *x, size_t n, int drained)
{
    struct tt_px_h2s *s = H2S(x);
    struct tt_h2_conn *c = h2f_cconn(s);
    (void)drained;
    if (c) {
        tt_h2_consume(c, s->csid, n);
        h2f_cflush(s);
    } else if (s->cc->sess && !tt_session_closing(s->cc->sess) && s->reaped) {
        /* The stream is closed: its bytes still count on the connection's
         * window.  Flushed like the branch above: this may run from the
         * tunnel's callbacks, which write only the tunnel. */
        tt_h2_consume(tt_session_h2(s->cc->sess), 0, n);
        h2f_cflush(s);
    }
}

static const struct tt_px_front_ops h2f_ops = {
    .interim = h2f_op_interim,
    .head = h2f_op_head,
    .data = h2f_op_data,
    .trailers = h2f_op_trailers,
    .abort = h2f_op_abort,
    .req_taken = h2f_op_req_taken,
};

/* Response DATA (then trailers or the end) from s->resp to the client
 * while its connection has room. */
static void h2f_pump_resp(struct tt_px_h2s *s)
{
    struct tt_h2_conn *c = h2f_cconn(s);
    if (!c || s->resp_end_sent)
        return;
    int sent = 0;
    while (tt_buf_len(&s->resp) > 0) {
        ssize_t n = tt_h2_send_data(c, s->csid, tt_buf_data(&s->resp), tt_buf_len(&s->resp), 0);
        if (n <= 0)
            break;
        sent = 1;
        tt_buf_consume(&s->resp, (size_t)n);
        tt_px_exchange_taken(&s->x, (size_t)n);
    }
    if (tt_buf_len(&s->resp) == 0) {
        tt_link_remove(&s->cb);
        tt_timer_stop(s->cc->srv->loop, &s->stall);
        tt_buf_shrink(&s->resp);
        if (s->resp_end && !s->resp_end_sent) {
            s->resp_end_sent = 1;
            sent = 1;
            int rc;
            if (s->resp_trl) {
                struct tt_header *trl = s->resp_trl;
                s->resp_trl = NULL;
                rc = tt_h2_submit_headers(c, s->csid, trl, s->resp_trl_n, 1);
            } else {
                rc = tt_h2_send_data(c, s->csid, NULL, 0, 1) < 0 ? -1 : 0;
            }
            if (rc < 0) {
                /* grpc-status would be lost: say the stream failed. */
                tt_px_exchange_fail(&s->x, "response end not forwarded");
                return;
            }
        }
    } else {
        h2f_cblock(s, sent);
    }
    if (sent)
        h2f_cflush(s);
}

/* --- The client connection's callbacks ----------------------------------- */

static void h2f_request(struct tt_px_h2c *cc, uint32_t sid, const struct tt_h2_headers *h)
{
    struct tt_px_server *srv = cc->srv;
    struct tt_h2_conn *c = tt_session_h2(cc->sess);
    struct tt_px_h2s *s = tt_mem_calloc(1, sizeof(*s));
    if (!s) {
        (void)tt_h2_submit_rst(c, sid, TT_H2_INTERNAL_ERROR);
        return;
    }
    struct tt_px_exchange *x = &s->x;
    s->cc = cc;
    s->csid = sid;
    tt_timer_init(&s->stall, h2f_on_stall, s);
    tt_timer_init(&s->idle, h2f_on_stream_idle, s);
    tt_buf_init(&s->resp, cc->resp_max);
    tt_px_exchange_init(x, &srv->env, &h2f_ops, cc->peer, cc->ip, H2F_CLIENT_WINDOW + 16384);
    tt_px_exchange_set_group(x, &cc->turn);
    x->caller = cc->caller;
    x->proto = "h2";
    x->tls = cc->tls;
    tt_px_exchange_begin(x);
    cc->last_busy_ms = x->start_ms;
    tt_h2_stream_set_user(c, sid, s);
    if (tt_px_exchange_set_line(x, (const char *)h->method.base, h->method.len,
                                (const char *)h->path.base, h->path.len) < 0) {
        tt_px_exchange_local(x, 500, "out of memory\n", -1);
        return;
    }
    if (h->too_large) {
        /* As the HTTP/1.1 front answers a head over its limits. */
        tt_px_exchange_local(x, 431, "request header fields too large\n", -1);
        return;
    }
    int connect = h->method.len == 7 && memcmp(h->method.base, "CONNECT", 7) == 0;
    const char *protocol = NULL;
    if (connect && h->protocol.len) {
        /* RFC 8441: a WebSocket over this stream (the codec checked
         * :scheme, :path and that we offered it).  Other protocols are
         * not carried. */
        if (h->protocol.len != 9 || strncasecmp((const char *)h->protocol.base, "websocket", 9)) {
            tt_px_exchange_local(x, 501, "p carries only the websocket protocol (RFC 8441)\n", -1);
            return;
        }
        protocol = "websocket";
        connect = 0; /* an extended CONNECT has a path, like a request */
    } else if (connect && !cc->caller) {
        /* A plain CONNECT is a call's (c --local-tcp) to a TCP service by
         * name; clients have --tcp-listen for that. */
        tt_px_exchange_local(x, 405, "CONNECT is not supported here\n", -1);
        return;
    }

    /* The fields as received, for routing and mapping; :authority plays
     * Host (RFC 9113 §8.3.1), a host field stands in when it is absent. */
    const char *host = h->authority.len ? (const char *)h->authority.base : NULL;
    size_t host_len = h->authority.len;
    size_t nf = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->name_len && f->name[0] == ':')
            continue;
        nf++;
        if (!host && f->name_len == 4 && memcmp(f->name, "host", 4) == 0) {
            host = f->value;
            host_len = f->value_len;
        }
    }
    if (nf > H2F_FIELDS_MAX) {
        tt_px_exchange_local(x, 431, "too many request header fields\n", -1);
        return;
    }
    /* RFC 9113 §8.3.1 / RFC 9110 §4.2.3: the authority has the URI syntax,
     * checked as the HTTP/1.1 front checks Host (a malformed request MAY
     * get a response before its stream ends, RFC 9113 §8.1.1). */
    if (host && !tt_px_authority_valid(host, host_len)) {
        tt_px_exchange_local(x, 400, "invalid :authority or host\n", -1);
        return;
    }
    struct tt_px_field *fl = tt_arena_alloc(&x->arena, (nf ? nf : 1) * sizeof(*fl));
    if (!fl) {
        tt_px_exchange_local(x, 500, "out of memory\n", -1);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->name_len && f->name[0] == ':')
            continue;
        fl[k++] = (struct tt_px_field){f->name, f->value, f->name_len, f->value_len};
    }
    struct tt_px_request rq = {
        .authority = host,
        .authority_len = host_len,
        .path = connect ? "" : (const char *)h->path.base,
        .path_len = connect ? 0 : h->path.len,
        .f = fl,
        .n = nf,
        .end = h->end_stream,
        .protocol = protocol,
    };
    if (tt_px_exchange_start(x, &rq) == 0 && protocol && srv->cfg->stream_idle_s) {
        s->moved_ms = tt_loop_now(srv->loop);
        tt_timer_start(srv->loop, &s->idle, (uint64_t)srv->cfg->stream_idle_s * 1000u);
    }
}

static int h2f_c_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct tt_px_h2c *cc = ud;
    struct tt_px_h2s *s = sud;
    if (h->kind == TT_H2_HDRS_REQUEST) {
        h2f_request(cc, sid, h);
        return 0;
    }
    /* Request trailers: they go after the body bytes still waiting. */
    if (h->kind == TT_H2_HDRS_TRAILERS && s)
        tt_px_exchange_req_end(&s->x, h->hdrs, h->count);
    return 0;
}

static int h2f_c_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                         int end_stream)
{
    struct tt_px_h2c *cc = ud;
    struct tt_px_h2s *s = sud;
    if (!s || s->reaped) {
        /* Nobody will forward these bytes: the window goes back now. */
        if (len)
            tt_h2_consume(tt_session_h2(cc->sess), sid, len);
        return 0;
    }
    h2f_moved(s);
    if (tt_px_exchange_req_body(&s->x, data, len) < 0) {
        /* More than the window we granted: cannot happen with a codec that
         * enforces it; fail the stream rather than lose bytes. */
        tt_h2_consume(tt_session_h2(cc->sess), sid, len);
        tt_px_exchange_fail(&s->x, "request body past the window");
        return 0;
    }
    if (end_stream)
        tt_px_exchange_req_end(&s->x, NULL, 0);
    return 0;
}

static void h2f_c_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code,
                                  unsigned flags)
{
    struct tt_px_h2s *s = sud;
    (void)ud;
    (void)sid;
    if (!s || s->reaped)
        return;
    if (flags & (TT_H2_CLOSE_RST_RECEIVED | TT_H2_CLOSE_CONN))
        tt_log_debug("h2 client stream closed client=%s path=%s code=%s flags=%u", s->cc->peer,
                     s->x.log_path ? s->x.log_path : "", tt_h2_strerror(code), flags);
    s->cc->last_busy_ms = tt_loop_now(s->cc->srv->loop);
    /* Client gone or done: a tunnel stream still open is not wanted (RFC
     * 9113 §8.7: CANCEL). */
    h2f_close(s, !s->resp_end_sent);
}

/* Pumps a batch of streams taken off the blocked list (pumping may put a
 * stream back on it, so the batch is detached first). */
static void h2f_wake_client(struct tt_px_h2c *cc)
{
    struct tt_px_h2s *batch = NULL;
    while (cc->blocked.first) {
        struct tt_px_h2s *s = tt_container_of(cc->blocked.first, struct tt_px_h2s, cb);
        tt_link_remove(&s->cb);
        s->wk_next = batch;
        batch = s;
    }
    while (batch) {
        struct tt_px_h2s *s = batch;
        batch = s->wk_next;
        h2f_pump_resp(s);
    }
}

static void h2f_c_on_window_update(void *ud, uint32_t sid, void *sud)
{
    struct tt_px_h2c *cc = ud;
    struct tt_px_h2s *s = sud;
    if (sid == 0) {
        h2f_wake_client(cc);
        return;
    }
    if (s && tt_link_linked(&s->cb)) {
        tt_link_remove(&s->cb);
        h2f_pump_resp(s);
    }
}

static void h2f_c_on_writable(void *ud, struct tt_session *sess)
{
    (void)sess;
    h2f_wake_client(ud);
}

static void h2f_c_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    (void)ud, (void)last_sid, (void)code, (void)debug;
}

static void h2f_c_on_ping_ack(void *ud, uint64_t opaque) { (void)ud, (void)opaque; }

static void h2f_c_on_remote_settings(void *ud) { (void)ud; }

static void h2f_reap_all(struct tt_px_h2c *cc)
{
    while (cc->reap) {
        struct tt_px_h2s *s = cc->reap;
        cc->reap = s->reap_next;
        h2f_free(s);
    }
}

static void h2f_on_reap(struct tt_loop *loop, struct tt_defer *d)
{
    (void)loop;
    h2f_reap_all(d->data);
}

static void h2f_c_on_closed(void *ud, struct tt_session *sess, const char *reason)
{
    struct tt_px_h2c *cc = ud;
    (void)sess;
    if (cc->caller) {
        cc->srv->forward_links--;
        tt_log_info("forward link down name=%s peer=%s reason=%s", cc->caller->name, cc->peer,
                    reason && *reason ? reason : "closed");
    }
    else
        tt_log_debug("h2 client gone client=%s: %s", cc->peer, reason ? reason : "closed");
    /* Every stream has had on_stream_close, so every record is detached. */
    cc->sess = NULL;
    tt_timer_stop(cc->srv->loop, &cc->idle);
    tt_defer_cancel(cc->srv->loop, &cc->reap_d);
    h2f_reap_all(cc);
    tt_link_remove(&cc->link);
    cc->srv->clients--;
    tt_mem_free(cc);
}

/* RFC 9113 §9.1: a server may close an idle connection, with a GOAWAY
 * so the client knows no stream was lost.  PINGs do not count as use. */
static void h2f_on_idle(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_px_h2c *cc = t->data;
    uint64_t idle_ms = (uint64_t)cc->srv->cfg->client_idle_s * 1000u;
    uint64_t quiet = tt_loop_now(loop) - cc->last_busy_ms;
    if (!cc->sess || tt_session_closing(cc->sess))
        return;
    if (tt_h2_open_streams(tt_session_h2(cc->sess)) > 0 || quiet < idle_ms) {
        tt_timer_start(loop, t, quiet < idle_ms ? idle_ms - quiet : idle_ms);
        return;
    }
    tt_log_debug("h2 client idle client=%s: closing", cc->peer);
    tt_session_drain(cc->sess, 1000); /* no stream open: it closes once the GOAWAY is out */
}

static const struct tt_session_callbacks h2f_client_cbs = {
    .h2 =
        {
            .on_headers = h2f_c_on_headers,
            .on_data = h2f_c_on_data,
            .on_stream_close = h2f_c_on_stream_close,
            .on_window_update = h2f_c_on_window_update,
            .on_goaway = h2f_c_on_goaway,
            .on_ping_ack = h2f_c_on_ping_ack,
            .on_remote_settings = h2f_c_on_remote_settings,
        },
    .on_writable = h2f_c_on_writable,
    .on_closed = h2f_c_on_closed,
};

void tt_px_h2f_client_config(struct tt_session_config *scfg)
{
    scfg->h2.initial_window_size = H2F_CLIENT_WINDOW;
    scfg->h2.connection_window = H2F_CLIENT_CONN_WINDOW;
    /* Clients get the RFC 9113 §4.2 default frame size, not the tunnels'
     * big frames: what p sends is bounded by the client's own setting
     * anyway, and client uploads gain nothing from larger frames, while a
     * client HEADERS frame over 16384 octets is then a FRAME_SIZE_ERROR,
     * as conformance suites (h2spec 4.2/3) expect of a server. */
    scfg->h2.max_frame_size = TT_H2_MIN_FRAME_SIZE;
    /* A head over the header list limit gets 431, as on HTTP/1.1. */
    scfg->h2.deliver_too_large = 1;
    /* Streams at once per client connection, as most servers allow: one
     * connection can never hold all of a tunnel's (c allows 1000). */
    scfg->h2.max_concurrent_streams = 100;
    /* WebSockets over HTTP/2 (RFC 8441), as browsers open them. */
    scfg->h2.enable_connect_protocol = 1;
}

int tt_px_h2f_adopt(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                    const char *ip, const uint8_t *early, size_t early_len)
{
    return tt_px_h2f_adopt_forward(srv, conn, peer, ip, early, early_len, NULL);
}

int tt_px_h2f_adopt_forward(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                            const char *ip, const uint8_t *early, size_t early_len,
                            const struct tt_px_token *caller)
{
    struct tt_px_h2c *cc = tt_mem_calloc(1, sizeof(*cc));
    if (!cc) {
        tt_tls_conn_free(conn);
        return -1;
    }
    cc->srv = srv;
    cc->caller = caller;
    cc->tls = conn->ssl != NULL;
    snprintf(cc->peer, sizeof(cc->peer), "%s", peer);
    snprintf(cc->ip, sizeof(cc->ip), "%s", ip);
    tt_defer_init(&cc->reap_d, h2f_on_reap, cc);
    tt_timer_init(&cc->idle, h2f_on_idle, cc);
    cc->last_busy_ms = tt_loop_now(srv->loop);
    /* A stream's response buffer holds at most what the tunnel's stream
     * window let c send beyond what the client took. */
    cc->resp_max = (size_t)TT_PX_STREAM_WINDOW_MAX + 16384;
    struct tt_session_config scfg = srv->scfg;
    tt_px_h2f_client_config(&scfg);
    if (caller) {
        /* c paces the resets it sends for its local clients that left
         * (TT_PX_RST_BURST at once, TT_PX_RST_RATE a second, as p does
         * towards c): the link allows twice that, as c's tunnel server does,
         * so no mix of local clients c accepts makes p drop the link. */
        scfg.h2.rst_budget = 2 * TT_PX_RST_BURST;
        scfg.rst_refill_per_s = 2 * TT_PX_RST_RATE;
    }
    cc->sess = tt_session_new(srv->loop, conn, TT_H2_SERVER, &scfg, &h2f_client_cbs, cc, early,
                              early_len);
    if (!cc->sess) {
        tt_mem_free(cc);
        return -1;
    }
    tt_list_push(&srv->h2_list, &cc->link);
    srv->clients++;
    /* A forward link stays while its c keeps it: c pings it, as p pings a
     * tunnel, and --client-idle is for clients. */
    if (!caller)
        tt_timer_start(srv->loop, &cc->idle, srv->cfg->client_idle_s * 1000u);
    tt_log_debug("h2 client connected client=%s%s", cc->peer, cc->tls ? " tls=1" : "");
    tt_session_flush(cc->sess);
    if (srv->env.draining)
        tt_session_drain(cc->sess, 10000);
    return 0;
}

void tt_px_h2f_drain(struct tt_px_server *srv, uint32_t grace_ms)
{
    for (struct tt_link *l = srv->h2_list.first; l; l = l->next) {
        struct tt_px_h2c *cc = tt_container_of(l, struct tt_px_h2c, link);
        if (cc->sess && !tt_session_closing(cc->sess))
            tt_session_drain(cc->sess, grace_ms);
    }
}


void tt_px_h2f_retoken(struct tt_px_server *srv, const struct tt_px_tokens *now)
{
    struct tt_link *next;
    for (struct tt_link *l = srv->h2_list.first; l; l = next) {
        next = l->next;
        struct tt_px_h2c *cc = tt_container_of(l, struct tt_px_h2c, link);
        if (!cc->caller || !cc->sess || tt_session_closing(cc->sess))
            continue;
        const struct tt_px_token *e =
            tt_px_tokens_find(now, cc->caller->name, strlen(cc->caller->name));
        if (e && tt_ct_equal(e->hash, 32, cc->caller->hash, 32)) {
            cc->caller = e; /* its calls= as the file says now */
            continue;
        }
        tt_log_warn("forward link closed name=%s peer=%s reason=its token was revoked (reload)",
                    cc->caller->name, cc->peer);
        tt_session_close(cc->sess, "token revoked");
    }
}
