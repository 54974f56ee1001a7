/*
 * c's one HTTP/2 server on a tunnel: p opens streams, a handler
 * (origin/handler.h) answers them.
 *
 * Records.  One per stream, allocated when the request head arrives: the
 * tunnel's part (struct tt_ts) followed by the handler's (stream_size
 * bytes), one allocation.  A record is on `all` while its stream is open
 * and on `wait` while the handler has something to send and no room.  It
 * is freed when the stream has closed and the last hold is let go: every
 * callback into a handler holds it, so a submit that closes the stream
 * inside the handler (END_STREAM on a half-closed stream, a reset) never
 * frees memory a caller is still using.
 *
 * Flow control.  Request bytes are counted as delivered to the handler
 * (`unconsumed`) and given back as the handler consumes them; whatever is
 * left when the stream closes is given back then, so a handler cannot leak
 * connection window (codec/h2.h, tt_h2_consume) by forgetting bytes it
 * dropped.
 *
 * Sending.  A handler whose stream has DATA but no room joins `wait`.  A
 * WINDOW_UPDATE for one stream pumps that stream while it makes progress;
 * one for the whole connection, or the session's on_writable (the output
 * buffer drained), goes round every waiting stream in order, one chunk
 * each per round, moving a stream that sent to the back, until no one can
 * send: one big download cannot starve the others of connection window.
 *
 * Streams never arrive before the session is known: tt_session_new feeds
 * the bytes read past the 101 at the loop's next safe point, not inside
 * the call (proto/session.c), so the stream user data is always set.
 *
 * The access line.  One per stream, written here, so that every handler
 * gets it; it goes out when the record is freed, after the stream closed:
 * a send that ends the stream closes it inside the send, before the caller
 * could count what it sent.  It says the request's method and path (a
 * CONNECT's :authority), the final status the handler sent (0: none), the
 * DATA bytes (for CONNECT both ways: bytes= to p, req_bytes= from p), the
 * time, and what became of
 * the stream -- end=ok when both sides ended it, end=reset-by-p(CODE) or
 * end=reset-by-c(CODE) for a reset either way, end=tunnel-lost -- plus
 * grpc-status when the response's trailers (or a trailers-only head)
 * carried one.  A status alone says little for gRPC: 200 goes out first,
 * and what happened after is the stream's end and grpc-status (issue 10).
 */
#include "origin/tunnel_srv.h"

#include "codec/buf.h"
#include "proto/list.h"
#include "proto/log.h"

#include <inttypes.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

/* The access line keeps this much of the method and of the path. */
#define TS_LOG_METHOD_MAX 32u
#define TS_LOG_PATH_MAX 256u

struct tt_ts {
    struct tt_tunnel_srv *srv; /* not to be used once closed: it may be gone */
    const struct tt_handler *hd;
    void *hctx;
    uint32_t sid;
    unsigned busy;
    unsigned closed : 1;
    struct tt_link all;  /* srv->all while open */
    struct tt_link wait; /* srv->wait */
    uint64_t unconsumed; /* request bytes delivered and not yet consumed */
    /* The access line (ts_log). */
    uint64_t start_ms, end_ms;
    uint32_t end_code;    /* how the stream closed (on_stream_close's code, flags) */
    unsigned end_flags;
    uint64_t bytes;       /* response DATA queued */
    uint64_t req_bytes;   /* request DATA received (logged for CONNECT) */
    int status;           /* the final status sent; 0: none */
    int grpc_status;      /* from the response's trailers; -1: none */
    uint8_t method_len;
    uint8_t connect;      /* a CONNECT stream: a tunnel of bytes both ways */
    uint16_t path_len;
    const char *log;      /* method then path, after the handler's part */
};

/* Where the handler's part starts: after the record, aligned for anything. */
#define TS_HDR ((sizeof(struct tt_ts) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

struct tt_tunnel_srv {
    struct tt_loop *loop;
    struct tt_session *s;
    struct tt_h2_conn *h2;
    const struct tt_handler *hd;
    void *hctx;
    tt_tunnel_srv_closed_cb on_closed;
    void *owner;
    struct tt_list all;
    /* Round-robin order: appended at the tail (tt_list only pushes at the
     * head, so the tail is kept here). */
    struct tt_list wait;
    struct tt_link *wait_last;
    unsigned nopen;
};

static struct tt_ts *ts_of_all(struct tt_link *l) { return tt_container_of(l, struct tt_ts, all); }
static struct tt_ts *ts_of_wait(struct tt_link *l) { return tt_container_of(l, struct tt_ts, wait); }

/* ---- the waiting list ---------------------------------------------------- */

static void ts_wait_add(struct tt_tunnel_srv *srv, struct tt_ts *ts)
{
    struct tt_link *l = &ts->wait;
    if (tt_link_linked(l))
        return;
    if (!srv->wait_last) {
        tt_list_push(&srv->wait, l);
    } else {
        l->next = NULL;
        l->pprev = &srv->wait_last->next;
        srv->wait_last->next = l;
    }
    srv->wait_last = l;
}

static void ts_wait_remove(struct tt_tunnel_srv *srv, struct tt_ts *ts)
{
    struct tt_link *l = &ts->wait;
    if (!tt_link_linked(l))
        return;
    if (srv->wait_last == l) /* `next` is a link's first member: pprev is the previous link */
        srv->wait_last =
            l->pprev == &srv->wait.first ? NULL : tt_container_of(l->pprev, struct tt_link, next);
    tt_link_remove(l);
}

/* ---- records ------------------------------------------------------------- */

void *tt_ts_priv(struct tt_ts *ts) { return (char *)ts + TS_HDR; }
struct tt_ts *tt_ts_of(void *priv) { return (struct tt_ts *)((char *)priv - TS_HDR); }
void *tt_ts_hctx(const struct tt_ts *ts) { return ts->hctx; }
uint32_t tt_ts_id(const struct tt_ts *ts) { return ts->sid; }
int tt_ts_closed(const struct tt_ts *ts) { return ts->closed; }

/* ---- the access line ------------------------------------------------------ */

/* A field value of 1 to 3 digits (values need not end in NUL), or -1. */
static int ts_small_int(const struct tt_header *f)
{
    if (f->value_len < 1 || f->value_len > 3)
        return -1;
    int v = 0;
    for (uint32_t i = 0; i < f->value_len; i++) {
        if (f->value[i] < '0' || f->value[i] > '9')
            return -1;
        v = v * 10 + (f->value[i] - '0');
    }
    return v;
}

/* Notes what a head the handler sent says: the final status, and
 * grpc-status (trailers, or a trailers-only response). */
static void ts_note_head(struct tt_ts *ts, const struct tt_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 7 && !memcmp(h[i].name, ":status", 7)) {
            int st = ts_small_int(&h[i]);
            if (st < 200)
                return; /* an interim response */
            if (!ts->status)
                ts->status = st;
        } else if (h[i].name_len == 11 && !memcmp(h[i].name, "grpc-status", 11)) {
            ts->grpc_status = ts_small_int(&h[i]);
        }
    }
}

static void ts_log(const struct tt_ts *ts)
{
    uint32_t code = ts->end_code;
    unsigned flags = ts->end_flags;
    char end[48], grpc[24] = "";
    if (flags & TT_H2_CLOSE_CONN)
        snprintf(end, sizeof end, "tunnel-lost");
    else if (flags & (TT_H2_CLOSE_RST_RECEIVED | TT_H2_CLOSE_RST_SENT))
        snprintf(end, sizeof end, "reset-by-%s(%s)", (flags & TT_H2_CLOSE_RST_RECEIVED) ? "p" : "c",
                 tt_h2_strerror(code));
    else if (code != TT_H2_NO_ERROR)
        snprintf(end, sizeof end, "error(%s)", tt_h2_strerror(code));
    else
        snprintf(end, sizeof end, "ok");
    if (ts->grpc_status >= 0)
        snprintf(grpc, sizeof grpc, " grpc-status=%d", ts->grpc_status);
    /* A CONNECT stream carries bytes both ways: what p sent counts too. */
    char req[32] = "";
    if (ts->connect)
        snprintf(req, sizeof req, " req_bytes=%" PRIu64, ts->req_bytes);
    tt_log_info("access stream=%" PRIu32 " method=%.*s path=%.*s status=%d bytes=%" PRIu64
                "%s dur_ms=%" PRIu64 " end=%s%s",
                ts->sid, (int)ts->method_len, ts->log, (int)ts->path_len, ts->log + ts->method_len,
                ts->status, ts->bytes, req, ts->end_ms - ts->start_ms, end, grpc);
}

void tt_ts_hold(struct tt_ts *ts) { ts->busy++; }

void tt_ts_handover(struct tt_ts *ts, const struct tt_handler *hd, void *hctx,
                    const struct tt_h2_headers *h)
{
    if (hd->stream_size > ts->srv->hd->stream_size) {
        /* The record has no room for that handler's part: a bug of ours. */
        tt_log_error("stream %" PRIu32 ": handover to a handler with a larger record", ts->sid);
        tt_ts_reset(ts, TT_H2_INTERNAL_ERROR);
        return;
    }
    memset(tt_ts_priv(ts), 0, hd->stream_size);
    ts->hd = hd;
    ts->hctx = hctx;
    hd->open(hctx, ts, h);
}

void tt_ts_release(struct tt_ts *ts)
{
    if (--ts->busy > 0 || !ts->closed)
        return;
    ts_log(ts);
    if (ts->hd->free)
        ts->hd->free(ts);
    tt_mem_free(ts);
}

/* The stream is gone: off the lists, window back, the handler told. */
static void ts_close(struct tt_ts *ts, uint32_t code, unsigned flags)
{
    struct tt_tunnel_srv *srv = ts->srv;
    if (ts->closed)
        return;
    ts->end_ms = tt_loop_now(srv->loop);
    ts->end_code = code;
    ts->end_flags = flags;
    ts->busy++;
    ts->closed = 1;
    ts_wait_remove(srv, ts);
    tt_link_remove(&ts->all);
    srv->nopen--;
    ts->hd->close(ts, code, flags);
    /* Request bytes the handler still held count against p's connection
     * window (valid on a closing stream: codec/h2.h). */
    if (ts->unconsumed && srv->h2) {
        tt_h2_consume(srv->h2, ts->sid, (size_t)ts->unconsumed);
        ts->unconsumed = 0;
    }
    tt_ts_release(ts);
}

static void ts_flush(struct tt_tunnel_srv *srv)
{
    if (srv->s)
        tt_session_flush(srv->s);
}

/* ---- the stream API ------------------------------------------------------ */

int tt_ts_headers(struct tt_ts *ts, const struct tt_header *h, size_t n, int end)
{
    if (ts->closed)
        return TT_ERR_STREAM_CLOSED;
    int rc = tt_h2_submit_headers(ts->srv->h2, ts->sid, h, n, end);
    if (rc == 0) {
        ts_note_head(ts, h, n);
        ts_flush(ts->srv);
    }
    return rc;
}

ssize_t tt_ts_send(struct tt_ts *ts, const void *p, size_t n, int end)
{
    if (ts->closed)
        return TT_ERR_STREAM_CLOSED;
    struct tt_tunnel_srv *srv = ts->srv; /* the send may close ts */
    ssize_t w = tt_h2_send_data(srv->h2, ts->sid, p, n, end);
    if (w > 0)
        ts->bytes += (uint64_t)w;
    ts_flush(srv);
    return w;
}

size_t tt_ts_room(const struct tt_ts *ts)
{
    return ts->closed ? 0 : tt_h2_data_room(ts->srv->h2, ts->sid);
}

uint8_t *tt_ts_reserve(struct tt_ts *ts, size_t len, size_t *room)
{
    *room = 0;
    return ts->closed ? NULL : tt_h2_data_reserve(ts->srv->h2, ts->sid, len, room);
}

int tt_ts_commit(struct tt_ts *ts, size_t n, int end)
{
    if (ts->closed)
        return TT_ERR_STREAM_CLOSED;
    struct tt_tunnel_srv *srv = ts->srv;
    int rc = tt_h2_data_commit(srv->h2, ts->sid, n, end);
    if (rc >= 0)
        ts->bytes += n;
    ts_flush(srv);
    return rc;
}

void tt_ts_reset(struct tt_ts *ts, uint32_t code)
{
    if (ts->closed)
        return;
    struct tt_tunnel_srv *srv = ts->srv;
    ts->busy++;
    (void)tt_h2_submit_rst(srv->h2, ts->sid, code); /* fires on_stream_close */
    /* The codec no longer knew the stream (it cannot happen, but then
     * nothing else would ever close the record). */
    ts_close(ts, code, TT_H2_CLOSE_RST_SENT);
    ts_flush(srv);
    tt_ts_release(ts);
}

void tt_ts_consume(struct tt_ts *ts, size_t n)
{
    if (ts->closed || n == 0)
        return;
    if (n > ts->unconsumed)
        n = (size_t)ts->unconsumed;
    ts->unconsumed -= n;
    tt_h2_consume(ts->srv->h2, ts->sid, n);
    ts_flush(ts->srv);
}

void tt_ts_wait(struct tt_ts *ts)
{
    if (!ts->closed)
        ts_wait_add(ts->srv, ts);
}

void tt_ts_unwait(struct tt_ts *ts)
{
    if (!ts->closed)
        ts_wait_remove(ts->srv, ts);
}

/* ---- sending ------------------------------------------------------------- */

/* One stream's window opened: pump it while it makes progress. */
static void ts_pump_one(struct tt_ts *ts)
{
    ts->busy++;
    while (!ts->closed && tt_link_linked(&ts->wait))
        if (ts->hd->pump(ts) == 0)
            break;
    tt_ts_release(ts);
}

/* Round-robin over the waiting streams, one chunk each per round, until no
 * one can send.  O(waiting) per round. */
static void ts_pump_all(struct tt_tunnel_srv *srv)
{
    for (;;) {
        size_t progress = 0;
        struct tt_link *l = srv->wait.first;
        struct tt_link *last = srv->wait_last;
        while (l) {
            struct tt_ts *ts = ts_of_wait(l);
            struct tt_ts *next = l == last || !l->next ? NULL : ts_of_wait(l->next);
            ts->busy++;
            if (next)
                next->busy++; /* pumping ts must not free the next one */
            size_t sent = ts->hd->pump(ts);
            progress += sent;
            /* Served this round: to the back of the line. */
            if (sent && !ts->closed && tt_link_linked(&ts->wait) && srv->wait_last != &ts->wait) {
                ts_wait_remove(srv, ts);
                ts_wait_add(srv, ts);
            }
            tt_ts_release(ts);
            l = NULL;
            if (next) {
                /* Off the list meanwhile: this round ends here. */
                if (!next->closed && tt_link_linked(&next->wait))
                    l = &next->wait;
                tt_ts_release(next);
            }
        }
        if (!progress || !srv->wait.first)
            break;
    }
    ts_flush(srv);
}

/* ---- session callbacks --------------------------------------------------- */

static int ts_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct tt_tunnel_srv *srv = ud;
    struct tt_ts *ts = sud;
    if (h->kind == TT_H2_HDRS_TRAILERS) {
        if (!ts || ts->closed || !ts->hd->trailers)
            return 0;
        ts->busy++;
        ts->hd->trailers(ts, h);
        tt_ts_release(ts);
        ts_flush(srv);
        return 0;
    }
    if (h->kind != TT_H2_HDRS_REQUEST)
        return 0;
    /* The access line's method and path ride in the same allocation.  A
     * CONNECT has no :path; its target is the :authority (RFC 9113 §8.5,
     * the authority-form of RFC 9110 §9.3.6), logged in the path's place. */
    int connect = h->method.len == 7 && !memcmp(h->method.base, "CONNECT", 7);
    tt_iov target = connect && !h->path.len ? h->authority : h->path;
    size_t ml = h->method.len < TS_LOG_METHOD_MAX ? h->method.len : TS_LOG_METHOD_MAX;
    size_t pl = target.len < TS_LOG_PATH_MAX ? target.len : TS_LOG_PATH_MAX;
    ts = tt_mem_calloc(1, TS_HDR + srv->hd->stream_size + ml + pl);
    if (!ts) {
        (void)tt_h2_submit_rst(srv->h2, sid, TT_H2_REFUSED_STREAM);
        ts_flush(srv);
        return 0;
    }
    char *lg = (char *)ts + TS_HDR + srv->hd->stream_size;
    if (ml)
        memcpy(lg, h->method.base, ml);
    if (pl)
        memcpy(lg + ml, target.base, pl);
    ts->log = lg;
    ts->connect = (uint8_t)connect;
    ts->method_len = (uint8_t)ml;
    ts->path_len = (uint16_t)pl;
    ts->grpc_status = -1;
    ts->start_ms = tt_loop_now(srv->loop);
    ts->srv = srv;
    ts->hd = srv->hd;
    ts->hctx = srv->hctx;
    ts->sid = sid;
    tt_list_push(&srv->all, &ts->all);
    srv->nopen++;
    tt_h2_stream_set_user(srv->h2, sid, ts);
    ts->busy++;
    srv->hd->open(srv->hctx, ts, h);
    tt_ts_release(ts);
    ts_flush(srv);
    return 0;
}

static int ts_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    struct tt_tunnel_srv *srv = ud;
    struct tt_ts *ts = sud;
    if (!ts || ts->closed || !ts->hd->data) {
        /* Nobody takes these bytes: dropped, so p's window keeps moving. */
        tt_h2_consume(srv->h2, sid, len);
        ts_flush(srv);
        return 0;
    }
    ts->unconsumed += len;
    ts->req_bytes += len;
    ts->busy++;
    ts->hd->data(ts, data, len, end_stream);
    tt_ts_release(ts);
    ts_flush(srv);
    return 0;
}

static void ts_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    (void)ud;
    struct tt_ts *ts = sud;
    if (!ts)
        return;
    if (code != TT_H2_NO_ERROR)
        tt_log_debug("stream %" PRIu32 " closed: %s%s", sid, tt_h2_strerror(code),
                     (flags & TT_H2_CLOSE_RST_RECEIVED) ? " (reset by the proxy)" : "");
    ts_close(ts, code, flags);
}

static void ts_on_window_update(void *ud, uint32_t sid, void *sud)
{
    struct tt_tunnel_srv *srv = ud;
    if (sid == 0) {
        ts_pump_all(srv);
        return;
    }
    struct tt_ts *ts = sud;
    if (ts && !ts->closed && tt_link_linked(&ts->wait)) {
        ts_pump_one(ts);
        ts_flush(srv);
    }
}

static void ts_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    (void)ud;
    tt_log_info("proxy sent GOAWAY (%s, last stream %" PRIu32 ")%s%.*s", tt_h2_strerror(code),
                last_sid, debug.len ? ": " : "", (int)(debug.len > 100 ? 100 : debug.len),
                (const char *)debug.base);
}

static void ts_on_writable(void *ud, struct tt_session *s)
{
    (void)s;
    ts_pump_all(ud);
}

static void ts_on_closed(void *ud, struct tt_session *s, const char *reason)
{
    (void)s;
    struct tt_tunnel_srv *srv = ud;
    /* Every stream had on_stream_close already (tt_h2_transport_closed);
     * anything left is closed here all the same. */
    while (srv->all.first)
        ts_close(ts_of_all(srv->all.first), TT_H2_CANCEL, TT_H2_CLOSE_CONN);
    srv->s = NULL;
    srv->h2 = NULL;
    srv->on_closed(srv->owner, reason);
    tt_mem_free(srv);
}

static const struct tt_session_callbacks ts_callbacks = {
    .h2 =
        {
            .on_headers = ts_on_headers,
            .on_data = ts_on_data,
            .on_stream_close = ts_on_stream_close,
            .on_window_update = ts_on_window_update,
            .on_goaway = ts_on_goaway,
        },
    .on_writable = ts_on_writable,
    .on_closed = ts_on_closed,
};

struct tt_tunnel_srv *tt_tunnel_srv_start(struct tt_loop *loop, struct tt_tls_conn *tls,
                                          const struct tt_session_config *cfg,
                                          const struct tt_handler *h, void *hctx,
                                          const uint8_t *early, size_t early_len,
                                          tt_tunnel_srv_closed_cb on_closed, void *owner)
{
    struct tt_tunnel_srv *srv = tt_mem_calloc(1, sizeof *srv);
    if (!srv) {
        tt_tls_conn_free(tls);
        tt_mem_free(tls);
        return NULL;
    }
    srv->loop = loop;
    srv->hd = h;
    srv->hctx = hctx;
    srv->on_closed = on_closed;
    srv->owner = owner;
    srv->s = tt_session_new(loop, tls, TT_H2_SERVER, cfg, &ts_callbacks, srv, early, early_len);
    /* The session took the connection by value (or freed it): the struct
     * itself is still ours. */
    tt_mem_free(tls);
    if (!srv->s) {
        tt_mem_free(srv);
        return NULL;
    }
    srv->h2 = tt_session_h2(srv->s);
    return srv;
}

void tt_tunnel_srv_drain(struct tt_tunnel_srv *srv, uint32_t grace_ms)
{
    if (srv->s && !tt_session_closing(srv->s))
        tt_session_drain(srv->s, grace_ms);
}

unsigned tt_tunnel_srv_streams(const struct tt_tunnel_srv *srv) { return srv->nopen; }
