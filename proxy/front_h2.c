/*
 * The HTTP/2 client front: h2c with prior knowledge (RFC 9113 §3.3) on the
 * same port as the HTTP/1.1 front, and h2 over TLS (RFC 9113 §3.2, chosen by
 * ALPN) on the HTTPS front.  front.c reads a new connection's first bytes
 * (or finishes its TLS handshake); when they are the connection preface (or
 * ALPN said h2) it hands the connection here.
 *
 * A client connection is a tt_session (proto/session.c) in the server role
 * over a tt_tls_conn (plaintext or TLS), so everything at the connection level
 * (SETTINGS, PING, GOAWAY, flow control, limits, errors) is the codec's.
 * This file only bridges streams: one client stream = one tunnel stream.
 *
 *   client conn (server role)                 tunnel (client role)
 *   stream csid ── tt_px_h2s ───────────────── stream tsid
 *     request HEADERS  → route, map ──────────→ submit_request
 *     request DATA     → s->req (if no room) ─→ send_data; consume(client)
 *     response HEADERS ←──────────────────────  on_headers
 *     response DATA    ← s->resp (if no room) ← on_data; consume(tunnel)
 *     trailers both ways, kept until the DATA before them is out
 *
 * Backpressure: window is given back on one side only for bytes the other
 * side's connection took (tt_h2_send_data), so each buffer is bounded by the
 * window its sender was granted: s->req by the client conn's stream window,
 * s->resp by the tunnel's.  A stream whose bytes did not fit waits on a
 * list (the tunnel's h2_blocked, the client conn's blocked) and is pumped
 * again from on_window_update / on_writable.
 *
 * Lifetime: a stream record is attached to its client stream (csid != 0)
 * and to its tunnel stream (tun != NULL).  Each side's close detaches it;
 * detached from both, it goes on the connection's reap list and is freed
 * from a deferred call, so a callback that closes a stream (a send with
 * END_STREAM may fire on_stream_close) never sees its record vanish.  The
 * tunnel's user data is the record itself, tagged TT_PX_FRONT_H2.
 */
#include "proxy.h"

#include "proto/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define H2F_RETRIES 4         /* extra attempts to open a request on a tunnel */
#define H2F_PATH_LOG 512      /* :path bytes kept for the access log */
#define H2F_FIELDS_MAX 512    /* request fields: more -> 431 */
#define H2F_CLIENT_WINDOW (1u << 20)      /* per-stream receive window for bodies */
#define H2F_CLIENT_CONN_WINDOW (8u << 20) /* the client connection's */

struct tt_px_h2c {
    struct tt_px_server *srv;
    struct tt_session *sess;
    struct tt_link link;            /* on srv->h2_list */
    struct tt_list blocked;         /* tt_px_h2s waiting for room on this connection */
    struct tt_px_h2s *reap;         /* detached from both sides, to free */
    struct tt_defer reap_d;
    size_t resp_max; /* bound of a stream's response buffer */
    uint8_t tls;     /* came over the HTTPS front (ALPN h2): :scheme https */
    struct tt_timer idle;  /* --client-idle with no stream open: GOAWAY */
    uint64_t last_busy_ms; /* a stream opened or closed */
    char peer[64];
    char ip[48];
};

struct tt_px_h2s {
    enum tt_px_front_kind kind; /* first: see tt_px_sud_is_h2 */
    struct tt_px_h2c *cc;
    uint32_t csid;            /* client stream; 0 once closed */
    struct tt_px_tunnel *tun; /* NULL when not bound to a tunnel stream */
    uint32_t tsid;
    struct tt_link cb; /* on cc->blocked */
    struct tt_link tb; /* on tun->h2_blocked */
    struct tt_px_h2s *wk_next;            /* a wake-up batch */
    struct tt_px_h2s *reap_next;
    struct tt_timer retry;

    tt_buf req;  /* request DATA the tunnel has not taken (client window owed) */
    tt_buf resp; /* response DATA the client conn has not taken (tunnel window owed) */
    struct tt_header *req_hdrs; /* the mapped request, kept until the response head */
    size_t req_n;
    struct tt_header *req_trl, *resp_trl; /* trailers waiting behind DATA */
    size_t req_trl_n, resp_trl_n;

    uint8_t req_end;      /* the client ended its request */
    uint8_t req_end_sent; /* END_STREAM (or trailers) sent to the tunnel */
    uint8_t resp_head;    /* a final response head went to the client */
    uint8_t resp_end;     /* the response is complete (bytes may still wait) */
    uint8_t resp_end_sent;
    uint8_t local;        /* we answer ourselves */
    uint8_t idempotent;
    uint8_t expect;
    uint8_t sent_continue;
    uint8_t interim;      /* 1xx heads passed on (TT_PX_MAX_INTERIM at most) */
    uint8_t attempts;
    uint8_t retry_on;
    uint8_t logged;
    uint8_t reaped;
    uint64_t avoid;     /* serial of the tunnel that lost this request */
    uint64_t body_sent; /* request body bytes the tunnel took */
    int status;
    uint64_t bytes; /* response body bytes the client conn took */
    uint64_t start_ms;
    char method[24];
    char path[H2F_PATH_LOG + 1];
    char name[TT_PX_NAME_MAX + 1];
};

static void h2f_pump_req(struct tt_px_h2s *s);
static void h2f_pump_resp(struct tt_px_h2s *s);
static void h2f_local(struct tt_px_h2s *s, int status, const char *body, int retry_after);

/* --- Pure helpers -------------------------------------------------------- */

int tt_px_h2f_sniff(const uint8_t *p, size_t len)
{
    size_t n = len < TT_PX_H2_PREFACE_LEN ? len : TT_PX_H2_PREFACE_LEN;
    if (memcmp(p, TT_PX_H2_PREFACE, n) != 0)
        return -1;
    return n == TT_PX_H2_PREFACE_LEN ? 1 : 0;
}

/* A deep copy of a header list in one allocation (array, then the bytes).
 * Returns NULL when out of memory. */
static struct tt_header *h2f_hdrs_dup(const struct tt_header *h, size_t n)
{
    size_t bytes = n * sizeof(*h);
    for (size_t i = 0; i < n; i++)
        bytes += (size_t)h[i].name_len + h[i].value_len;
    struct tt_header *v = tt_mem_alloc(bytes ? bytes : 1);
    if (!v)
        return NULL;
    char *p = (char *)(v + n);
    for (size_t i = 0; i < n; i++) {
        v[i] = h[i];
        memcpy(p, h[i].name, h[i].name_len);
        v[i].name = p;
        p += h[i].name_len;
        if (h[i].value_len)
            memcpy(p, h[i].value, h[i].value_len);
        v[i].value = p;
        p += h[i].value_len;
    }
    return v;
}

static int h2f_is_idempotent(const char *m)
{
    /* RFC 9110 §9.2.2 */
    static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++)
        if (strcmp(m, idem[i]) == 0)
            return 1;
    return 0;
}

/* --- Sides --------------------------------------------------------------- */

static int h2f_client_ok(const struct tt_px_h2s *s)
{
    return s->csid && s->cc->sess && !tt_session_closing(s->cc->sess);
}

static struct tt_h2_conn *h2f_cconn(const struct tt_px_h2s *s)
{
    return h2f_client_ok(s) ? tt_session_h2(s->cc->sess) : NULL;
}

static struct tt_h2_conn *h2f_tconn(const struct tt_px_h2s *s)
{
    return s->tun && s->tun->sess && !tt_session_closing(s->tun->sess)
               ? tt_session_h2(s->tun->sess)
               : NULL;
}

static void h2f_cflush(struct tt_px_h2s *s)
{
    if (s->cc->sess)
        tt_session_flush(s->cc->sess);
}

static void h2f_tflush(struct tt_px_h2s *s)
{
    if (s->tun && s->tun->sess)
        tt_session_flush(s->tun->sess);
}

static void h2f_cunblock(struct tt_px_h2s *s) { tt_link_remove(&s->cb); }

static void h2f_cblock(struct tt_px_h2s *s)
{
    if (s->csid)
        tt_list_push(&s->cc->blocked, &s->cb);
}

static void h2f_tunblock(struct tt_px_h2s *s) { tt_link_remove(&s->tb); }

static void h2f_tblock(struct tt_px_h2s *s)
{
    if (s->tun)
        tt_list_push(&s->tun->h2_blocked, &s->tb);
}

static void h2f_on_reap(struct tt_loop *loop, struct tt_defer *d);

static void h2f_free(struct tt_px_h2s *s)
{
    tt_timer_stop(s->cc->srv->loop, &s->retry);
    tt_buf_free(&s->req);
    tt_buf_free(&s->resp);
    tt_mem_free(s->req_hdrs);
    tt_mem_free(s->req_trl);
    tt_mem_free(s->resp_trl);
    tt_mem_free(s);
}

/* Frees the record (deferred) once neither side holds it. */
static void h2f_release(struct tt_px_h2s *s)
{
    if (s->csid || s->tun || s->reaped)
        return;
    s->reaped = 1;
    s->retry_on = 0;
    tt_timer_stop(s->cc->srv->loop, &s->retry);
    s->reap_next = s->cc->reap;
    s->cc->reap = s;
    tt_defer_queue(s->cc->srv->loop, &s->cc->reap_d);
}

static void h2f_access_log(struct tt_px_h2s *s)
{
    if (s->logged)
        return;
    s->logged = 1;
    uint64_t now = tt_loop_now(s->cc->srv->loop);
    tt_log_info("access client=%s method=%s path=%s status=%d bytes=%llu dur_ms=%llu origin=%s "
                "proto=h2%s",
                s->cc->peer, s->method, s->path, s->status, (unsigned long long)s->bytes,
                (unsigned long long)(now - s->start_ms), s->name[0] ? s->name : "-",
                s->cc->tls ? " tls=1" : "");
}

/* The tunnel side is gone or given up: forget it. */
static void h2f_tdetach(struct tt_px_h2s *s)
{
    h2f_tunblock(s);
    if (s->tun) {
        tt_px_pool_leave(&s->tun, &s->avoid);
        s->tsid = 0;
    }
}

/* Resets the tunnel stream (RFC 9113 §8.7: CANCEL, nobody wants the
 * response any more) and gives back window for response bytes it held. */
static void h2f_tcancel(struct tt_px_h2s *s, uint32_t code)
{
    struct tt_h2_conn *t = h2f_tconn(s);
    if (!t) {
        tt_buf_consume(&s->resp, tt_buf_len(&s->resp));
        h2f_tdetach(s);
        return;
    }
    struct tt_session *sess = s->tun->sess;
    uint32_t sid = s->tsid;
    if (tt_buf_len(&s->resp)) {
        tt_h2_consume(t, sid, tt_buf_len(&s->resp));
        tt_buf_consume(&s->resp, tt_buf_len(&s->resp));
    }
    tt_h2_stream_set_user(t, sid, NULL);
    h2f_tdetach(s);
    (void)tt_h2_submit_rst(t, sid, code);
    tt_session_flush(sess);
}

/* The client side is gone: log, give back window for request bytes held. */
static void h2f_cdetach(struct tt_px_h2s *s)
{
    if (!s->csid)
        return;
    struct tt_h2_conn *c = h2f_cconn(s);
    if (c && tt_buf_len(&s->req))
        tt_h2_consume(c, s->csid, tt_buf_len(&s->req));
    tt_buf_consume(&s->req, tt_buf_len(&s->req));
    if (!s->resp_head && !s->status)
        s->status = 499; /* nginx's word for "client closed request" */
    h2f_access_log(s);
    h2f_cunblock(s);
    s->csid = 0;
    s->retry_on = 0;
    tt_timer_stop(s->cc->srv->loop, &s->retry);
}

/* Resets the client stream (a response that cannot complete: the client
 * sees an aborted stream, never a clean END_STREAM). */
static void h2f_creset(struct tt_px_h2s *s, uint32_t code)
{
    struct tt_h2_conn *c = h2f_cconn(s);
    uint32_t sid = s->csid;
    h2f_cdetach(s);
    if (c) {
        tt_h2_stream_set_user(c, sid, NULL);
        (void)tt_h2_submit_rst(c, sid, code);
        tt_session_flush(s->cc->sess);
    }
}

/* Both sides fail: the tunnel stream is cancelled, the client's reset. */
static void h2f_fail(struct tt_px_h2s *s)
{
    h2f_tcancel(s, TT_H2_CANCEL);
    h2f_creset(s, TT_H2_INTERNAL_ERROR);
    h2f_release(s);
}

/* --- Pumps ------------------------------------------------------------- */

/* Request DATA (and the end) from s->req to the tunnel while it has room. */
static void h2f_pump_req(struct tt_px_h2s *s)
{
    struct tt_h2_conn *t = h2f_tconn(s);
    if (!t || s->req_end_sent)
        return;
    struct tt_h2_conn *c = h2f_cconn(s);
    int sent = 0;
    while (tt_buf_len(&s->req) > 0) {
        ssize_t n = tt_h2_send_data(t, s->tsid, tt_buf_data(&s->req), tt_buf_len(&s->req), 0);
        if (n <= 0)
            break;
        sent = 1;
        s->body_sent += (uint64_t)n;
        if (c)
            tt_h2_consume(c, s->csid, (size_t)n);
        tt_buf_consume(&s->req, (size_t)n);
    }
    if (tt_buf_len(&s->req) == 0) {
        h2f_tunblock(s);
        tt_buf_shrink(&s->req);
        if (s->req_end && !s->req_end_sent) {
            s->req_end_sent = 1;
            sent = 1;
            int rc = -1;
            if (s->req_trl) {
                rc = tt_h2_submit_headers(t, s->tsid, s->req_trl, s->req_trl_n, 1);
                tt_mem_free(s->req_trl);
                s->req_trl = NULL;
                s->body_sent++; /* trailers are gone too: never replay this */
            }
            if (rc < 0 && tt_h2_send_data(t, s->tsid, NULL, 0, 1) < 0) {
                /* The request cannot be ended: the origin must not take a
                 * cut one for complete. */
                h2f_fail(s);
                return;
            }
        }
    } else {
        h2f_tblock(s);
    }
    if (sent) {
        h2f_tflush(s);
        h2f_cflush(s);
    }
}

/* Response DATA (then trailers or the end) from s->resp to the client
 * while its connection has room. */
static void h2f_pump_resp(struct tt_px_h2s *s)
{
    struct tt_h2_conn *c = h2f_cconn(s);
    if (!c || s->resp_end_sent)
        return;
    struct tt_h2_conn *t = s->local ? NULL : h2f_tconn(s);
    int sent = 0;
    while (tt_buf_len(&s->resp) > 0) {
        ssize_t n = tt_h2_send_data(c, s->csid, tt_buf_data(&s->resp), tt_buf_len(&s->resp), 0);
        if (n <= 0)
            break;
        sent = 1;
        s->bytes += (uint64_t)n;
        if (t)
            tt_h2_consume(t, s->tsid, (size_t)n);
        tt_buf_consume(&s->resp, (size_t)n);
    }
    if (sent && t)
        h2f_tflush(s);
    if (tt_buf_len(&s->resp) == 0) {
        h2f_cunblock(s);
        tt_buf_shrink(&s->resp);
        if (s->resp_end && !s->resp_end_sent) {
            s->resp_end_sent = 1;
            sent = 1;
            if (s->resp_trl) {
                struct tt_header *trl = s->resp_trl;
                s->resp_trl = NULL;
                int rc = tt_h2_submit_headers(c, s->csid, trl, s->resp_trl_n, 1);
                tt_mem_free(trl);
                if (rc < 0) {
                    /* grpc-status would be lost: say the stream failed. */
                    h2f_fail(s);
                    return;
                }
            } else if (tt_h2_send_data(c, s->csid, NULL, 0, 1) < 0) {
                h2f_fail(s);
                return;
            }
        }
    } else {
        h2f_cblock(s);
    }
    if (sent)
        h2f_cflush(s);
}

/* --- Opening the tunnel stream ------------------------------------------ */

/* Opens s->req_hdrs on a tunnel of the name's pool.  Returns 0 when opened,
 * 1 when no tunnel could take it now, -1 when answered (a bad request). */
static int h2f_open(struct tt_px_h2s *s)
{
    struct tt_px_server *srv = s->cc->srv;
    struct tt_px_pool *pool = tt_px_registry_find(&srv->reg, s->name, strlen(s->name));
    int end = s->req_end && tt_buf_len(&s->req) == 0 && !s->req_trl;
    struct tt_px_tunnel *t = NULL;
    int64_t sid = tt_px_pool_open(pool, s->avoid, s->req_hdrs, s->req_n, end, s, &t);
    if (sid == TT_ERR_BAD_HEADER || sid == TT_ERR_HEADER_TOO_LARGE) {
        h2f_local(s, sid == TT_ERR_BAD_HEADER ? 400 : 431, "the request cannot be forwarded\n",
                  -1);
        return -1;
    }
    if (sid <= 0)
        return 1;
    s->tun = t;
    s->tsid = (uint32_t)sid;
    s->req_end_sent = (uint8_t)end;
    if (s->expect && !s->sent_continue && !s->req_end) {
        /* RFC 9110 §10.1.1: we read the body, so we say 100 once the request
         * has somewhere to go. */
        static const struct tt_header cont[] = {{":status", "100", 7, 3, 0}};
        s->sent_continue = 1;
        struct tt_h2_conn *c = h2f_cconn(s);
        if (c && tt_h2_submit_headers(c, s->csid, cont, 1, 0) == 0)
            h2f_cflush(s);
    }
    h2f_pump_req(s);
    return 0;
}

static void h2f_no_tunnel(struct tt_px_h2s *s)
{
    char body[160];
    snprintf(body, sizeof(body), "no origin is connected for name '%s'\n", s->name);
    h2f_local(s, 503, body, 5);
}

static void h2f_on_retry(struct tt_loop *loop, struct tt_timer *tm)
{
    struct tt_px_h2s *s = tm->data;
    (void)loop;
    s->retry_on = 0;
    if (!s->csid)
        return;
    int r = h2f_open(s);
    if (r != 1)
        return;
    if (s->attempts < H2F_RETRIES && !s->cc->srv->draining) {
        s->attempts++;
        s->retry_on = 1;
        tt_timer_start(s->cc->srv->loop, &s->retry, 250u << s->attempts);
        return;
    }
    h2f_local(s, 502, "the origin's tunnel closed before it answered\n", -1);
}

/* A request was refused or lost before its response head (DESIGN.md): try
 * again on a member of the pool when that is safe, else 502. */
static void h2f_retry_or_fail(struct tt_px_h2s *s, int refused)
{
    struct tt_px_server *srv = s->cc->srv;
    int safe = s->body_sent == 0 && (s->idempotent || refused) && s->req_hdrs;
    if (safe && s->attempts < H2F_RETRIES && !srv->draining) {
        s->attempts++;
        struct tt_px_pool *pool = tt_px_registry_find(&srv->reg, s->name, strlen(s->name));
        int other = tt_px_pool_pick(pool, tt_px_tunnel_usable, NULL) != NULL;
        s->retry_on = 1;
        /* At once when another member is there, else give a reconnecting
         * c a moment. */
        tt_timer_start(srv->loop, &s->retry, other ? 0 : 250u << s->attempts);
        return;
    }
    h2f_local(s, 502, "the origin's tunnel closed before it answered\n", -1);
}

/* --- Local answers ------------------------------------------------------- */

static void h2f_local(struct tt_px_h2s *s, int status, const char *body, int retry_after)
{
    struct tt_h2_conn *c = h2f_cconn(s);
    if (!c)
        return;
    if (s->resp_head) {
        h2f_fail(s);
        return;
    }
    s->local = 1;
    s->status = status;
    s->resp_head = 1;
    s->retry_on = 0;
    tt_timer_stop(s->cc->srv->loop, &s->retry);
    tt_mem_free(s->req_hdrs);
    s->req_hdrs = NULL;
    if (s->tun)
        h2f_tcancel(s, TT_H2_CANCEL);
    /* The request body is not wanted: its window goes back as it comes. */
    if (tt_buf_len(&s->req))
        tt_h2_consume(c, s->csid, tt_buf_len(&s->req));
    tt_buf_consume(&s->req, tt_buf_len(&s->req));
    tt_mem_free(s->req_trl);
    s->req_trl = NULL;

    size_t bl = strlen(body);
    char st[8], cl[24], ra[16];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(cl, sizeof(cl), "%zu", bl);
    snprintf(ra, sizeof(ra), "%d", retry_after);
    struct tt_header h[4] = {
        {":status", st, 7, (uint32_t)strlen(st), 0},
        {"content-type", "text/plain; charset=utf-8", 12, 25, 0},
        {"content-length", cl, 14, (uint32_t)strlen(cl), 0},
        {"retry-after", ra, 11, (uint32_t)strlen(ra), 0},
    };
    int head_only = strcmp(s->method, "HEAD") == 0 || bl == 0;
    if (tt_h2_submit_headers(c, s->csid, h, retry_after >= 0 ? 4 : 3, head_only) < 0) {
        h2f_fail(s);
        return;
    }
    h2f_cflush(s);
    if (head_only) {
        s->resp_end = s->resp_end_sent = 1;
        return;
    }
    if (tt_buf_append(&s->resp, body, bl) != 0) {
        h2f_fail(s);
        return;
    }
    s->resp_end = 1;
    h2f_pump_resp(s);
}

/* --- The client connection's callbacks ----------------------------------- */

static void h2f_request(struct tt_px_h2c *cc, uint32_t sid, const struct tt_h2_headers *h)
{
    struct tt_px_server *srv = cc->srv;
    const struct tt_px_config *cfg = srv->cfg;
    struct tt_h2_conn *c = tt_session_h2(cc->sess);
    struct tt_px_h2s *s = tt_mem_calloc(1, sizeof(*s));
    if (!s) {
        (void)tt_h2_submit_rst(c, sid, TT_H2_INTERNAL_ERROR);
        return;
    }
    s->kind = TT_PX_FRONT_H2;
    s->cc = cc;
    s->csid = sid;
    s->start_ms = tt_loop_now(srv->loop);
    cc->last_busy_ms = s->start_ms;
    s->req_end = (uint8_t)h->end_stream;
    tt_buf_init(&s->req, H2F_CLIENT_WINDOW + 16384);
    tt_buf_init(&s->resp, cc->resp_max);
    tt_timer_init(&s->retry, h2f_on_retry, s);
    tt_h2_stream_set_user(c, sid, s);
    size_t ml = h->method.len < sizeof(s->method) - 1 ? h->method.len : sizeof(s->method) - 1;
    memcpy(s->method, h->method.base, ml);
    s->method[ml] = 0;
    size_t pl = h->path.len < H2F_PATH_LOG ? h->path.len : H2F_PATH_LOG;
    if (pl)
        memcpy(s->path, h->path.base, pl);
    s->path[pl] = 0;
    s->idempotent = (uint8_t)h2f_is_idempotent(s->method);

    if (srv->draining) {
        h2f_local(s, 503, "the proxy is shutting down\n", 5);
        return;
    }
    if (strcmp(s->method, "CONNECT") == 0) {
        h2f_local(s, 405, "CONNECT is not supported here\n", -1);
        return;
    }

    /* The fields as received, for routing and mapping; :authority plays
     * Host (RFC 9113 §8.3.1), a host field stands in when it is absent. */
    const char *host = h->authority.len ? (const char *)h->authority.base : NULL;
    size_t host_len = h->authority.len;
    size_t nf = 0, need = 2048;
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->name_len && f->name[0] == ':')
            continue;
        nf++;
        need += 2 * ((size_t)f->name_len + f->value_len);
        if (!host && f->name_len == 4 && memcmp(f->name, "host", 4) == 0) {
            host = f->value;
            host_len = f->value_len;
        }
    }
    if (nf > H2F_FIELDS_MAX) {
        h2f_local(s, 431, "too many request header fields\n", -1);
        return;
    }
    /* RFC 9113 §8.3.1 / RFC 9110 §4.2.3: the authority has the URI syntax,
     * checked as the HTTP/1.1 front checks Host (a malformed request MAY
     * get a response before its stream ends, RFC 9113 §8.1.1). */
    if (host && !tt_px_authority_valid(host, host_len)) {
        h2f_local(s, 400, "invalid :authority or host\n", -1);
        return;
    }
    need += 4 * host_len;

    struct tt_px_route_cfg rc = {
        .domain = cfg->domain,
        .path_prefix = cfg->path_prefix,
        .default_name = cfg->default_name,
        .single_name = tt_px_registry_single_name(&srv->reg),
    };
    struct tt_px_route rt;
    tt_px_route(&rc, host, host_len, (const char *)h->path.base, h->path.len, &rt);
    if (!rt.name) {
        h2f_local(s, 503, "no origin is connected for this request\n", 5);
        return;
    }
    size_t nl = rt.name_len > TT_PX_NAME_MAX ? TT_PX_NAME_MAX : rt.name_len;
    memcpy(s->name, rt.name, nl);
    s->name[nl] = 0;

    char prefix[TT_PX_NAME_MAX + 256];
    size_t prefix_len = 0;
    if (rt.stripped)
        prefix_len = (size_t)snprintf(prefix, sizeof(prefix), "%s%s", cfg->path_prefix, s->name);

    struct tt_px_field *fl = tt_mem_calloc(nf + 1, sizeof(*fl));
    struct tt_header *hdrs = tt_mem_calloc(nf + 16, sizeof(*hdrs));
    char *scratch = tt_mem_alloc(need);
    if (!fl || !hdrs || !scratch) {
        tt_mem_free(fl);
        tt_mem_free(hdrs);
        tt_mem_free(scratch);
        h2f_local(s, 500, "out of memory\n", -1);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->name_len && f->name[0] == ':')
            continue;
        fl[k].name = f->name;
        fl[k].name_len = f->name_len;
        fl[k].value = f->value;
        fl[k].value_len = f->value_len;
        k++;
    }
    struct tt_px_map_in in = {
        .method = s->method,
        .method_len = strlen(s->method),
        .path = rt.path,
        .path_len = rt.path_len,
        .host = host,
        .host_len = host_len,
        .scheme = cc->tls ? "https" : "http",
        .client_ip = cc->ip,
        .prefix = rt.stripped ? prefix : NULL,
        .prefix_len = prefix_len,
        .f = fl,
        .n = nf,
    };
    struct tt_px_map_out out = {
        .hdrs = hdrs, .cap = nf + 16, .scratch = scratch, .scratch_cap = need,
    };
    int mr = tt_px_map_request(&in, &out);
    if (mr == 0) {
        s->req_hdrs = h2f_hdrs_dup(out.hdrs, out.count);
        s->req_n = out.count;
        s->expect = (uint8_t)out.expect_continue;
    }
    tt_mem_free(fl);
    tt_mem_free(hdrs);
    tt_mem_free(scratch);
    if (mr < 0) {
        h2f_local(s, 431, "request header fields too large\n", -1);
        return;
    }
    if (out.expect_other) {
        /* RFC 9110 §10.1.1: an expectation we cannot meet MAY get 417. */
        h2f_local(s, 417, "only Expect: 100-continue is supported\n", -1);
        return;
    }
    if (!s->req_hdrs) {
        h2f_local(s, 500, "out of memory\n", -1);
        return;
    }
    if (h2f_open(s) == 1)
        h2f_no_tunnel(s);
}

static int h2f_c_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct tt_px_h2c *cc = ud;
    struct tt_px_h2s *s = sud;
    if (h->kind == TT_H2_HDRS_REQUEST) {
        h2f_request(cc, sid, h);
        return 0;
    }
    if (h->kind != TT_H2_HDRS_TRAILERS || !s)
        return 0;
    /* Request trailers: after the body bytes still waiting, if any. */
    s->req_end = 1;
    if (s->local || (!s->tun && !s->retry_on) || s->req_end_sent)
        return 0;
    s->req_trl = h2f_hdrs_dup(h->hdrs, h->count);
    s->req_trl_n = s->req_trl ? h->count : 0;
    h2f_pump_req(s);
    return 0;
}

static int h2f_c_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                         int end_stream)
{
    struct tt_px_h2c *cc = ud;
    struct tt_px_h2s *s = sud;
    struct tt_h2_conn *c = tt_session_h2(cc->sess);
    if (s && end_stream)
        s->req_end = 1;
    if (!s || s->local || s->req_end_sent || (!s->tun && !s->retry_on)) {
        /* Nobody will forward these bytes: the window goes back now. */
        if (len)
            tt_h2_consume(c, sid, len);
        return 0;
    }
    size_t taken = 0;
    struct tt_h2_conn *t = h2f_tconn(s);
    if (t && len && tt_buf_len(&s->req) == 0) {
        ssize_t n = tt_h2_send_data(t, s->tsid, data, len, 0);
        if (n > 0) {
            taken = (size_t)n;
            s->body_sent += taken;
            tt_h2_consume(c, sid, taken);
            h2f_tflush(s);
        }
    }
    if (taken < len && tt_buf_append(&s->req, data + taken, len - taken) != 0) {
        /* More than the window we granted: cannot happen with a codec that
         * enforces it; fail the stream rather than lose bytes. */
        tt_h2_consume(c, sid, len - taken);
        h2f_fail(s);
        return 0;
    }
    h2f_pump_req(s);
    return 0;
}

static void h2f_c_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code,
                                  unsigned flags)
{
    struct tt_px_h2s *s = sud;
    (void)ud;
    (void)sid;
    if (!s || !s->csid)
        return;
    if (flags & (TT_H2_CLOSE_RST_RECEIVED | TT_H2_CLOSE_CONN))
        tt_log_debug("h2 client stream closed client=%s path=%s code=%s flags=%u", s->cc->peer,
                     s->path, tt_h2_strerror(code), flags);
    s->cc->last_busy_ms = tt_loop_now(s->cc->srv->loop);
    /* Window for request bytes held goes back while the connection lives. */
    if ((flags & TT_H2_CLOSE_CONN) && tt_buf_len(&s->req))
        tt_buf_consume(&s->req, tt_buf_len(&s->req));
    h2f_cdetach(s);
    /* Client gone or done: the tunnel stream, if still open, is not
     * wanted (RFC 9113 §8.7: CANCEL). */
    if (s->tun)
        h2f_tcancel(s, TT_H2_CANCEL);
    h2f_release(s);
}

/* Pumps a batch of streams taken off a blocked list (pumping may put a
 * stream back on it, so the batch is detached first). */
static void h2f_wake_client(struct tt_px_h2c *cc)
{
    struct tt_px_h2s *batch = NULL;
    while (cc->blocked.first) {
        struct tt_px_h2s *s = tt_container_of(cc->blocked.first, struct tt_px_h2s, cb);
        h2f_cunblock(s);
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
        h2f_cunblock(s);
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
}

int tt_px_h2f_adopt(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                    const char *ip, const uint8_t *early, size_t early_len)
{
    struct tt_px_h2c *cc = tt_mem_calloc(1, sizeof(*cc));
    if (!cc) {
        tt_tls_conn_free(conn);
        return -1;
    }
    cc->srv = srv;
    cc->tls = conn->ssl != NULL;
    snprintf(cc->peer, sizeof(cc->peer), "%s", peer);
    snprintf(cc->ip, sizeof(cc->ip), "%s", ip);
    tt_defer_init(&cc->reap_d, h2f_on_reap, cc);
    tt_timer_init(&cc->idle, h2f_on_idle, cc);
    cc->last_busy_ms = tt_loop_now(srv->loop);
    /* A stream's response buffer holds at most what the tunnel's stream
     * window let c send beyond what the client took. */
    cc->resp_max = (size_t)srv->scfg.h2.initial_window_size + 16384;
    struct tt_session_config scfg = srv->scfg;
    tt_px_h2f_client_config(&scfg);
    cc->sess = tt_session_new(srv->loop, conn, TT_H2_SERVER, &scfg, &h2f_client_cbs, cc, early,
                              early_len);
    if (!cc->sess) {
        tt_mem_free(cc);
        return -1;
    }
    tt_list_push(&srv->h2_list, &cc->link);
    srv->clients++;
    tt_timer_start(srv->loop, &cc->idle, srv->cfg->client_idle_s * 1000u);
    tt_log_debug("h2 client connected client=%s%s", cc->peer, cc->tls ? " tls=1" : "");
    tt_session_flush(cc->sess);
    if (srv->draining)
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

/* --- The tunnel's stream callbacks (tagged user data) -------------------- */

int tt_px_h2f_on_headers(struct tt_px_tunnel *t, uint32_t sid, void *sud,
                         const struct tt_h2_headers *h)
{
    struct tt_px_h2s *s = sud;
    (void)t;
    (void)sid;
    struct tt_h2_conn *c = s ? h2f_cconn(s) : NULL;
    if (!c || s->local)
        return 0;
    if (h->kind == TT_H2_HDRS_INFORMATIONAL) {
        /* 1xx go through as HEADERS without END_STREAM (RFC 9113 §8.1;
         * 103 Early Hints), but not a second 100, and not more than
         * TT_PX_MAX_INTERIM: an app cannot flood the client.  Advisory:
         * when the client's output is full it is dropped. */
        if (s->resp_head || (h->status == 100 && s->sent_continue))
            return 0;
        if (s->interim >= TT_PX_MAX_INTERIM) {
            tt_log_debug("h2 %d from the origin dropped (more than %d 1xx) client=%s", h->status,
                         TT_PX_MAX_INTERIM, s->cc->peer);
            return 0;
        }
        s->interim++;
        if (h->status == 100)
            s->sent_continue = 1;
        if (tt_h2_submit_headers(c, s->csid, h->hdrs, h->count, 0) == 0)
            h2f_cflush(s);
        return 0;
    }
    if (h->kind == TT_H2_HDRS_RESPONSE) {
        if (s->resp_head)
            return 0;
        s->resp_head = 1;
        s->status = h->status;
        tt_mem_free(s->req_hdrs); /* processed: never sent again */
        s->req_hdrs = NULL;
        if (tt_h2_submit_headers(c, s->csid, h->hdrs, h->count, h->end_stream) < 0) {
            tt_log_debug("h2 response head not forwarded client=%s path=%s", s->cc->peer,
                         s->path);
            h2f_fail(s);
            return 0;
        }
        if (h->end_stream)
            s->resp_end = s->resp_end_sent = 1;
        h2f_cflush(s);
        return 0;
    }
    if (h->kind == TT_H2_HDRS_TRAILERS && s->resp_head && !s->resp_end) {
        s->resp_end = 1;
        s->resp_trl = h2f_hdrs_dup(h->hdrs, h->count);
        s->resp_trl_n = s->resp_trl ? h->count : 0;
        if (!s->resp_trl) {
            h2f_fail(s);
            return 0;
        }
        h2f_pump_resp(s);
    }
    return 0;
}

int tt_px_h2f_on_data(struct tt_px_tunnel *t, uint32_t sid, void *sud, const uint8_t *data,
                      size_t len, int end_stream)
{
    struct tt_px_h2s *s = sud;
    struct tt_h2_conn *tc = t->sess ? tt_session_h2(t->sess) : NULL;
    struct tt_h2_conn *c = s ? h2f_cconn(s) : NULL;
    if (!c || s->local || !s->resp_head || s->resp_end) {
        /* Nobody will read these bytes: give the window back now. */
        if (tc && len)
            tt_h2_consume(tc, sid, len);
        return 0;
    }
    size_t taken = 0;
    if (len && tt_buf_len(&s->resp) == 0) {
        ssize_t n = tt_h2_send_data(c, s->csid, data, len, 0);
        if (n > 0) {
            taken = (size_t)n;
            s->bytes += taken;
            if (tc)
                tt_h2_consume(tc, sid, taken);
            h2f_cflush(s);
        }
    }
    if (taken < len && tt_buf_append(&s->resp, data + taken, len - taken) != 0) {
        /* c sent past the window we gave: cannot happen with our codec. */
        if (tc)
            tt_h2_consume(tc, sid, len - taken);
        h2f_fail(s);
        return 0;
    }
    if (end_stream)
        s->resp_end = 1;
    h2f_pump_resp(s);
    return 0;
}

void tt_px_h2f_on_stream_close(struct tt_px_tunnel *t, uint32_t sid, void *sud, uint32_t code,
                               unsigned flags)
{
    struct tt_px_h2s *s = sud;
    if (flags & TT_H2_CLOSE_CONN)
        t->dead = 1;
    if (!s || s->tun != t)
        return;
    /* The stream is gone on the tunnel: credit the connection window for
     * the bytes still waiting for the client now (no more can come on this
     * stream, so the buffer stays bounded) while the session lives. */
    if (tt_buf_len(&s->resp) && !(flags & TT_H2_CLOSE_CONN) && t->sess &&
        !tt_session_closing(t->sess))
        tt_h2_consume(tt_session_h2(t->sess), sid, tt_buf_len(&s->resp));
    h2f_tdetach(s);
    if (!s->csid) {
        h2f_release(s);
        return;
    }
    if (s->resp_end) {
        /* Complete: the rest goes out as the client takes it.  Request
         * bytes still held are not wanted any more. */
        struct tt_h2_conn *c = h2f_cconn(s);
        if (c && tt_buf_len(&s->req))
            tt_h2_consume(c, s->csid, tt_buf_len(&s->req));
        tt_buf_consume(&s->req, tt_buf_len(&s->req));
        h2f_pump_resp(s);
        return;
    }
    if (!s->resp_head) {
        int refused = (flags & TT_H2_CLOSE_GOAWAY) ||
                      ((flags & TT_H2_CLOSE_RST_RECEIVED) && code == TT_H2_REFUSED_STREAM);
        tt_log_debug("stream lost before response client=%s origin=%s code=%s flags=%u proto=h2",
                     s->cc->peer, s->name, tt_h2_strerror(code), flags);
        h2f_retry_or_fail(s, refused);
        return;
    }
    /* Mid-body: the client must see an aborted stream (DESIGN.md). */
    tt_log_debug("response aborted client=%s path=%s: tunnel stream closed (%s) proto=h2",
                 s->cc->peer, s->path, tt_h2_strerror(code));
    tt_buf_consume(&s->resp, tt_buf_len(&s->resp));
    h2f_creset(s, TT_H2_INTERNAL_ERROR);
    h2f_release(s);
}

static void h2f_wake_tunnel(struct tt_px_tunnel *t)
{
    struct tt_px_h2s *batch = NULL;
    while (t->h2_blocked.first) {
        struct tt_px_h2s *s = tt_container_of(t->h2_blocked.first, struct tt_px_h2s, tb);
        h2f_tunblock(s);
        s->wk_next = batch;
        batch = s;
    }
    while (batch) {
        struct tt_px_h2s *s = batch;
        batch = s->wk_next;
        h2f_pump_req(s);
    }
}

void tt_px_h2f_on_window_update(struct tt_px_tunnel *t, uint32_t sid, void *sud)
{
    if (sid == 0) {
        h2f_wake_tunnel(t);
        return;
    }
    struct tt_px_h2s *s = sud;
    if (s && s->tun == t && tt_link_linked(&s->tb)) {
        h2f_tunblock(s);
        h2f_pump_req(s);
    }
}

void tt_px_h2f_on_writable(struct tt_px_tunnel *t) { h2f_wake_tunnel(t); }
