/*
 * c --upstream URL: every request of a tunnel forwarded to a local app.
 *
 * One record per tunnel stream (struct up_stream) joins the two sides:
 *
 *   tunnel side (HTTP/2 server, p's streams)      app side
 *     request head  ------------------------->  HTTP/1.1 head on a pooled
 *     DATA  -> req_pend ---------------------->  connection, or an HTTP/2
 *     trailers ------------------------------>  stream on the one h2c link
 *     1xx HEADERS  <---------------------------  102, 103 ... (not 100, 101)
 *     response head  <-------------------------  head
 *     DATA <- resp_pend <----------------------  body
 *     END_STREAM or trailers <-----------------  end of body / trailers
 *
 * Backpressure, both ways.  Request bytes are given back to p's window
 * (tt_h2_consume on the tunnel) only once they left for the app: written
 * to the app's socket (HTTP/1.1) or taken by the app connection's codec
 * (h2c, which is itself held by the app's window).  Response bytes wait in
 * resp_pend when the tunnel stream cannot take them; while they wait, an
 * HTTP/1.1 app socket is not read at all, and an h2c app stream gets no
 * window back.  So each direction holds at most one window (h2c) or one
 * read (64 KiB, HTTP/1.1) per stream.
 *
 * Lifetime.  A record lives while either side holds it: t_open until the
 * tunnel stream closes, a_open while an app connection or app stream (or
 * the wait for one) is attached; `busy` guards the calls that may close a
 * side from under us (a submit can fire on_stream_close).
 *
 * Failures are never silent: no app connection, or the app closed it before
 * the head -> 502; no head within UP_HEAD_TIMEOUT_MS -> 504; the app gone
 * mid-body -> RST_STREAM(INTERNAL_ERROR) to p, never a clean end (RFC 9113
 * §8.1); p reset the stream -> the app connection is closed (HTTP/1.1: it
 * cannot be reused mid-message) or the app stream reset with the same code.
 */
#include "origin/upstream.h"

#include "origin/hostport.h"

#include "codec/buf.h"
#include "proto/log.h"
#include "proto/resolve.h"
#include "proto/text.h"

#include "llhttp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define UP_CONNECT_TIMEOUT_MS 10000u
#define UP_HEAD_TIMEOUT_MS 60000u
#define UP_IDLE_TIMEOUT_MS 30000u
#define UP_MAX_IDLE 64u          /* idle HTTP/1.1 connections kept */
#define UP_READ 65536u           /* one read from an HTTP/1.1 app */
#define UP_MAX_FIELDS 128u       /* fields of one HTTP/1.1 response head */
#define UP_FIELDS_MAX (64u << 10) /* bytes of them */
#define UP_OUT_MAX (256u << 10)  /* request head + chunk framing */
#define UP_PEND_MAX (32u << 20)  /* bounded by windows anyway; a guard */
#define UP_MAX_INTERIM 8u        /* 1xx passed on per request; an app may not flood p */

/* ---- pure parts ----------------------------------------------------- */

static int up_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int up_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int tt_upstream_parse_url(const char *s, struct tt_upstream_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *rest;
    if (!strncasecmp(s, "http://", 7)) {
        rest = s + 7;
    } else if (!strncasecmp(s, "h2c://", 6)) {
        u->h2c = 1;
        rest = s + 6;
    } else if (!strncasecmp(s, "https://", 8)) {
        return up_fail(err, errlen,
                       "https is not supported: c talks to a local app in plaintext "
                       "(http://HOST:PORT or h2c://HOST:PORT)");
    } else {
        return up_fail(err, errlen, "want http://HOST:PORT or h2c://HOST:PORT");
    }
    size_t n = strcspn(rest, "/?#");
    if (rest[n] && strcmp(rest + n, "/") != 0)
        return up_fail(err, errlen,
                       "a path is not supported: requests keep the path the client asked for");
    char hp[300];
    if (n == 0 || n + 4 >= sizeof hp)
        return up_fail(err, errlen, "want http://HOST:PORT or h2c://HOST:PORT");
    memcpy(hp, rest, n);
    hp[n] = 0;
    if (strchr(hp, '@'))
        return up_fail(err, errlen, "user:password@ is not supported");
    int has_port = hp[0] == '[' ? strstr(hp, "]:") != NULL : strchr(hp, ':') != NULL;
    if (!has_port)
        memcpy(hp + n, ":80", 4);
    if (tt_origin_split_hostport(hp, u->host, sizeof u->host, u->port, sizeof u->port))
        return up_fail(err, errlen, "want HOST:PORT (or [IPv6]:PORT) with a port from 1 to 65535");
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(u->hostport, sizeof u->hostport, "%s%s%s:%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port);
    return 0;
}

static int up_name_is(const struct tt_header *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && !strncasecmp(f->name, name, n);
}

static int up_iov_is(tt_iov v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && !memcmp(v.base, s, n);
}

/* Bytes that may appear in a request line's method or target. */
static int up_token_ok(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
    return n > 0;
}

#define UP_PUT(out, s, n)                                                                          \
    do {                                                                                           \
        if (tt_buf_append((out), (s), (n)))                                                        \
            return -1;                                                                             \
    } while (0)
#define UP_PUTS(out, s) UP_PUT(out, s, strlen(s))

int tt_upstream_h1_head(const struct tt_h2_headers *h, enum tt_upstream_body body,
                        const char *default_host, tt_buf *out)
{
    if (!up_token_ok(h->method.base, h->method.len) || !up_token_ok(h->path.base, h->path.len))
        return -1;
    UP_PUT(out, h->method.base, h->method.len);
    UP_PUTS(out, " ");
    UP_PUT(out, h->path.base, h->path.len);
    UP_PUTS(out, " HTTP/1.1\r\nHost: ");
    /* RFC 9113 §8.3.1: :authority stands for Host. */
    const char *host = default_host;
    size_t host_len = strlen(default_host);
    if (h->authority.len) {
        host = (const char *)h->authority.base;
        host_len = h->authority.len;
    } else {
        for (size_t i = 0; i < h->count; i++)
            if (up_name_is(&h->hdrs[i], "host")) {
                host = h->hdrs[i].value;
                host_len = h->hdrs[i].value_len;
                break;
            }
    }
    UP_PUT(out, host, host_len);
    UP_PUTS(out, "\r\n");
    int cookies = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->name_len == 0 || f->name[0] == ':')
            continue;
        if (up_name_is(f, "host") || up_name_is(f, "te") || up_name_is(f, "connection") ||
            up_name_is(f, "keep-alive") || up_name_is(f, "proxy-connection") ||
            up_name_is(f, "transfer-encoding") || up_name_is(f, "upgrade") ||
            up_name_is(f, "http2-settings"))
            continue;
        if (up_name_is(f, "content-length") && body != TT_UPSTREAM_BODY_LENGTH)
            continue;
        if (up_name_is(f, "cookie")) {
            cookies++;
            continue;
        }
        if (!up_token_ok((const uint8_t *)f->name, f->name_len))
            return -1;
        UP_PUT(out, f->name, f->name_len);
        UP_PUTS(out, ": ");
        UP_PUT(out, f->value, f->value_len);
        UP_PUTS(out, "\r\n");
    }
    if (cookies) {
        /* RFC 9113 §8.2.3: HTTP/2 may split cookies; HTTP/1.1 wants one
         * field, the crumbs joined by "; ". */
        UP_PUTS(out, "cookie: ");
        int first = 1;
        for (size_t i = 0; i < h->count; i++) {
            const struct tt_header *f = &h->hdrs[i];
            if (!up_name_is(f, "cookie"))
                continue;
            if (!first)
                UP_PUTS(out, "; ");
            UP_PUT(out, f->value, f->value_len);
            first = 0;
        }
        UP_PUTS(out, "\r\n");
    }
    if (body == TT_UPSTREAM_BODY_CHUNKED) {
        UP_PUTS(out, "Transfer-Encoding: chunked\r\n");
    } else if (body == TT_UPSTREAM_BODY_NONE &&
               (up_iov_is(h->method, "POST") || up_iov_is(h->method, "PUT") ||
                up_iov_is(h->method, "PATCH"))) {
        /* RFC 9110 §8.6: say so when a method that usually has a body has
         * none, or the app might wait for one. */
        UP_PUTS(out, "Content-Length: 0\r\n");
    }
    UP_PUTS(out, "\r\n");
    return 0;
}

size_t tt_upstream_filter_response(struct tt_header *f, size_t n)
{
    static const char *const hop[] = {"connection",       "keep-alive", "transfer-encoding",
                                      "upgrade",          "te",         "proxy-connection"};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int drop = 0;
        for (size_t j = 0; j < sizeof hop / sizeof hop[0] && !drop; j++)
            drop = up_name_is(&f[i], hop[j]);
        /* RFC 9110 §7.6.1: the fields Connection names are hop-by-hop too. */
        for (size_t j = 0; j < n && !drop; j++)
            if (up_name_is(&f[j], "connection"))
                drop = tt_list_has(f[j].value, f[j].value_len, f[i].name, f[i].name_len);
        if (!drop)
            f[k++] = f[i];
    }
    /* The Connection fields themselves went last, so the loop above could
     * still read them. */
    return k;
}

/* ---- runtime: the records ------------------------------------------- */

/* A header list copied into one allocation (names and values after the
 * array): request heads waiting for an app connection, trailers waiting
 * behind body bytes, response heads waiting for room. */
struct up_hdrs {
    struct tt_header *h;
    size_t n;
};

struct up_h1;
struct up_h2;
struct up_stream;

struct tt_upstream {
    struct tt_loop *loop;
    struct tt_upstream_url url;
    struct addrinfo *ai; /* resolved on first use; looked up again once every address failed */
    int ai_stale;          /* ... which sets this: the next fresh connect looks the name up */
    struct tt_resolve *res; /* a lookup of the app's name in flight (proto/resolve.h) */
    unsigned naddr;
    unsigned pref;          /* the address that worked last */
    struct up_h1 *idle;     /* idle HTTP/1.1 connections, most recent first */
    unsigned nidle;
    struct up_h1 *busy_list; /* connecting or serving */
    struct up_h2 *h2cur;    /* the h2c connection new streams go to */
    struct up_h2 *h2all;    /* every h2c connection (old ones drain) */
    struct up_stream *wait_head, *wait_tail; /* h2c: streams waiting for a connection or a slot */
    struct tt_session_config acfg; /* the app connection's HTTP/2 settings */
    uint64_t conns_made;
    int closing; /* c is exiting (tt_upstream_close_sessions): no new app connection */
};

/* The handler's part of a tunnel stream record (origin/handler.h); the
 * tunnel server owns the record and frees it (up_free) once the tunnel
 * stream has closed and no hold is left.  The app side holds it while
 * a_open. */
struct up_stream {
    struct tt_upstream *up;
    uint32_t sid;             /* the tunnel stream's, for the log */
    unsigned t_open : 1;      /* the tunnel stream is open (up_open to up_close) */
    unsigned a_open : 1;      /* an app side holds the record */
    unsigned req_ended : 1;   /* p's END_STREAM arrived */
    unsigned req_end_sent : 1; /* the app has the whole request (h2c) */
    unsigned head_sent : 1;   /* a response head went to p */
    unsigned head_pending : 1; /* ... or waits in resp_head for room */
    unsigned resp_ended : 1;  /* the app's response is complete */
    unsigned end_sent : 1;    /* END_STREAM (or trailers) went to p */
    unsigned is_head : 1;     /* a HEAD request */
    unsigned chunked : 1;     /* HTTP/1.1 request body in chunks */
    unsigned retried : 1;
    unsigned waiting : 1;     /* on the h2c wait list */
    uint8_t interim;          /* 1xx responses passed on to p */
    tt_buf req_pend;          /* request body from p, not yet with the app */
    tt_buf resp_pend;         /* response body from the app, not yet queued to p */
    struct up_hdrs resp_head; /* head_pending */
    struct up_hdrs resp_trailers;
    struct up_hdrs req_hdrs;     /* h2c: the request head until submitted */
    struct up_hdrs req_trailers; /* h2c: p's trailers, sent after req_pend */
    tt_buf req_trailer_lines;    /* HTTP/1.1: p's trailers as chunked trailer lines */
    tt_buf retry_head;           /* HTTP/1.1: the head, for one retry on a fresh connection */
    struct up_h1 *h1;
    struct up_h2 *ah;            /* h2c connection and stream */
    uint32_t asid;
    struct tt_timer head_timer;
    struct up_stream *wprev, *wnext; /* the h2c wait list */
    struct up_stream *aprev, *anext; /* the h2c connection's streams */
};

static size_t st_pump(struct up_stream *st);
static void st_release(struct up_stream *st);
static void st_answer(struct up_stream *st, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void st_reset(struct up_stream *st, uint32_t code);
static void h1_open(struct up_stream *st, const struct tt_h2_headers *h);
static void h1_abort(struct up_h1 *c);
static void h1_push(struct up_h1 *c);
static void h1_update_io(struct up_h1 *c);
static void h2_open(struct up_stream *st, const struct tt_h2_headers *h);
static void h2_push(struct up_stream *st);
static void h2_abort(struct up_stream *st, uint32_t code);
static void h2_wait_remove(struct up_stream *st);
static struct tt_h2_conn *up_h2_conn(struct up_h2 *a);

static int hdrs_copy(struct up_hdrs *d, const struct tt_header *src, size_t n)
{
    size_t bytes = n * sizeof(struct tt_header);
    for (size_t i = 0; i < n; i++)
        bytes += src[i].name_len + src[i].value_len + 2;
    uint8_t *m = tt_mem_alloc(bytes ? bytes : 1);
    if (!m)
        return -1;
    struct tt_header *h = (struct tt_header *)m;
    char *p = (char *)(m + n * sizeof(struct tt_header));
    for (size_t i = 0; i < n; i++) {
        h[i] = src[i];
        memcpy(p, src[i].name, src[i].name_len);
        p[src[i].name_len] = 0;
        h[i].name = p;
        p += src[i].name_len + 1;
        memcpy(p, src[i].value, src[i].value_len);
        p[src[i].value_len] = 0;
        h[i].value = p;
        p += src[i].value_len + 1;
    }
    d->h = h;
    d->n = n;
    return 0;
}

static void hdrs_free(struct up_hdrs *d)
{
    tt_mem_free(d->h);
    d->h = NULL;
    d->n = 0;
}

static struct tt_ts *st_ts(struct up_stream *st) { return tt_ts_of(st); }

/* The record goes (the tunnel server's `free` op). */
static void st_free(struct up_stream *st)
{
    tt_timer_stop(st->up->loop, &st->head_timer);
    tt_buf_free(&st->req_pend);
    tt_buf_free(&st->resp_pend);
    tt_buf_free(&st->req_trailer_lines);
    tt_buf_free(&st->retry_head);
    hdrs_free(&st->resp_head);
    hdrs_free(&st->resp_trailers);
    hdrs_free(&st->req_hdrs);
    hdrs_free(&st->req_trailers);
}

static void st_release(struct up_stream *st) { tt_ts_release(st_ts(st)); }

static void st_hold(struct up_stream *st) { tt_ts_hold(st_ts(st)); }

static void st_reset(struct up_stream *st, uint32_t code)
{
    tt_ts_reset(st_ts(st), code); /* up_close runs inside */
}

/* A plain-text answer of our own (502, 504): only before a head went out;
 * after it, the stream can only be reset. */
static void st_answer(struct up_stream *st, int status, const char *fmt, ...)
{
    if (!st->t_open)
        return;
    if (st->head_sent || st->head_pending) {
        st_reset(st, TT_H2_INTERNAL_ERROR);
        return;
    }
    char body[400], code[8], clen[16];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof body - 2)
        n = (int)sizeof body - 2;
    tt_log_warn("stream %" PRIu32 ": %d: %s", st->sid, status, body);
    body[n++] = '\n';
    body[n] = 0;
    snprintf(code, sizeof code, "%d", status);
    snprintf(clen, sizeof clen, "%d", n);
    struct tt_header h[] = {
        {":status", code, 7, (uint32_t)strlen(code), 0},
        {"content-type", "text/plain; charset=utf-8", 12, 25, 0},
        {"content-length", clen, 14, (uint32_t)strlen(clen), 0},
    };
    st_hold(st);
    st->head_sent = 1;
    st->resp_ended = 1;
    st->end_sent = 1;
    tt_buf_consume(&st->resp_pend, tt_buf_len(&st->resp_pend));
    int rc = tt_ts_headers(st_ts(st), h, 3, st->is_head);
    if (rc < 0) {
        st_reset(st, TT_H2_INTERNAL_ERROR);
    } else if (!st->is_head) {
        ssize_t w = tt_ts_send(st_ts(st), body, (size_t)n, 1);
        if (w != n)
            st_reset(st, TT_H2_INTERNAL_ERROR);
    }
    st_release(st);
}

/* Response head to p: now, or once the output buffer has room. */
static void st_head(struct up_stream *st, const struct tt_header *h, size_t n, int end)
{
    if (!st->t_open || st->head_sent || st->head_pending)
        return;
    tt_timer_stop(st->up->loop, &st->head_timer);
    if (end)
        st->resp_ended = 1;
    int rc = tt_ts_headers(st_ts(st), h, n, end);
    if (rc == TT_ERR_NOMEM && st->t_open) {
        /* The output buffer is full of other streams' DATA: send the
         * head once it drains (st_pump). */
        if (hdrs_copy(&st->resp_head, h, n)) {
            st_reset(st, TT_H2_INTERNAL_ERROR);
            return;
        }
        st->head_pending = 1;
        return;
    }
    if (rc < 0) {
        tt_log_warn("stream %" PRIu32 ": the app's response head cannot be sent (%s)", st->sid,
                    tt_strerror(rc));
        st_answer(st, 502, "the app's response head cannot be forwarded");
        return;
    }
    st->head_sent = 1;
    if (end)
        st->end_sent = 1;
}

/* An interim (1xx) response from the app, passed on to p as HEADERS
 * without END_STREAM (RFC 9113 §8.1: zero or more 1xx heads may precede the
 * final one; RFC 9110 §15.2).  `h` starts with :status; the codec refuses
 * fields it could not carry, and then the 1xx is dropped: it is advisory,
 * the final response still comes.
 *
 * 100 Continue is not passed on: p answers a client's Expect itself when it
 * opens the stream and never forwards Expect (bridge.c drops it), so a 100
 * from the app answers nothing the client asked; passing it on would at best
 * be a second 100.  101 never comes here (RFC 9113 §8.6: HTTP/2 has no
 * Upgrade).  After the final head, or past UP_MAX_INTERIM, 1xx are dropped. */
static void st_interim(struct up_stream *st, int status, const struct tt_header *h, size_t n)
{
    if (!st->t_open || st->head_sent || st->head_pending || status == 100)
        return;
    if (st->interim >= UP_MAX_INTERIM) {
        tt_log_debug("stream %" PRIu32 ": %d from the app dropped (more than %u 1xx)", st->sid,
                     status, UP_MAX_INTERIM);
        return;
    }
    st->interim++;
    /* RFC 9110 §8.6: a 1xx carries no Content-Length; an app's goes no
     * further (h1_on_headers_complete already ignored it for framing). */
    struct tt_header kept[UP_MAX_FIELDS + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof(kept) / sizeof(kept[0]); i++)
        if (!(h[i].name_len == 14 && strncasecmp(h[i].name, "content-length", 14) == 0))
            kept[k++] = h[i];
    int rc = tt_ts_headers(st_ts(st), kept, k, 0);
    if (rc < 0) {
        tt_log_debug("stream %" PRIu32 ": %d from the app dropped (%s)", st->sid, status,
                     tt_strerror(rc));
    }
}

/* Response body from the app.  Returns the bytes p's stream took at once
 * (h2c gives those back to the app); the rest waits in resp_pend.  Returns
 * -1 when the stream is gone (the caller drops the bytes). */
static ssize_t st_body(struct up_stream *st, const uint8_t *p, size_t n)
{
    if (!st->t_open || st->end_sent)
        return -1;
    size_t taken = 0;
    if (st->head_sent && tt_buf_len(&st->resp_pend) == 0) {
        ssize_t w = tt_ts_send(st_ts(st), p, n, 0);
        if (w < 0) {
            st_reset(st, TT_H2_INTERNAL_ERROR);
            return -1;
        }
        taken = (size_t)w;
    }
    if (taken < n && tt_buf_append(&st->resp_pend, p + taken, n - taken)) {
        st_reset(st, TT_H2_INTERNAL_ERROR);
        return -1;
    }
    return (ssize_t)taken;
}

/* Moves what waits for p (head, body, end) into the tunnel's output.
 * Returns the body bytes queued. */
static size_t st_pump(struct up_stream *st)
{
    struct tt_ts *ts = st_ts(st);
    size_t sent = 0;
    if (!st->t_open)
        return 0;
    st_hold(st);
    if (st->head_pending) {
        int rc = tt_ts_headers(ts, st->resp_head.h, st->resp_head.n,
                                      st->resp_ended && tt_buf_len(&st->resp_pend) == 0 &&
                                          !st->resp_trailers.h);
        if (rc == TT_ERR_NOMEM) {
            st_release(st);
            return 0;
        }
        st->head_pending = 0;
        st->head_sent = 1;
        hdrs_free(&st->resp_head);
        if (rc < 0) {
            st_reset(st, TT_H2_INTERNAL_ERROR);
            st_release(st);
            return 0;
        }
        if (st->resp_ended && tt_buf_len(&st->resp_pend) == 0 && !st->resp_trailers.h)
            st->end_sent = 1;
    }
    while (st->t_open && tt_buf_len(&st->resp_pend) > 0) {
        ssize_t w = tt_ts_send(ts, tt_buf_data(&st->resp_pend), tt_buf_len(&st->resp_pend), 0);
        if (w < 0) {
            st_reset(st, TT_H2_INTERNAL_ERROR);
            break;
        }
        if (w == 0)
            break;
        tt_buf_consume(&st->resp_pend, (size_t)w);
        sent += (size_t)w;
    }
    if (tt_buf_len(&st->resp_pend) == 0)
        tt_buf_shrink(&st->resp_pend);
    /* h2c: window back to the app for what p's stream took. */
    if (sent && st->ah && st->asid) {
        struct tt_h2_conn *ah2 = up_h2_conn(st->ah);
        if (ah2)
            tt_h2_consume(ah2, st->asid, sent);
    }
    if (st->t_open && st->resp_ended && !st->end_sent && tt_buf_len(&st->resp_pend) == 0) {
        int rc;
        if (st->resp_trailers.h) {
            rc = tt_ts_headers(ts, st->resp_trailers.h, st->resp_trailers.n, 1);
            if (rc == TT_ERR_NOMEM)
                goto out; /* again on_writable */
        } else {
            ssize_t w = tt_ts_send(ts, NULL, 0, 1);
            rc = w < 0 ? (int)w : 0;
        }
        st->end_sent = 1;
        if (rc < 0)
            st_reset(st, TT_H2_INTERNAL_ERROR);
    }
out:
    if (st->h1)
        h1_update_io(st->h1);
    st_release(st);
    return sent;
}

static void st_head_timeout(struct tt_loop *loop, struct tt_timer *tm)
{
    (void)loop;
    struct up_stream *st = tm->data;
    if (st->head_sent || st->head_pending || !st->t_open)
        return;
    st_hold(st);
    st_answer(st, 504, "the app did not answer within %u s", UP_HEAD_TIMEOUT_MS / 1000);
    if (st->h1)
        h1_abort(st->h1);
    else if (st->ah || st->waiting)
        h2_abort(st, TT_H2_CANCEL);
    st_release(st);
}

/* ---- addresses and connecting --------------------------------------- */

/* The app's name is looked up off the loop (proto/resolve.h); a numeric
 * address is parsed at once, so the usual 127.0.0.1 never waits.  Connects
 * asked for while a lookup runs wait for it (UP_RESOLVING): up_on_resolved
 * starts them. */
#define UP_RESOLVING (-2)

static void up_on_resolved(void *arg, struct addrinfo *res, const char *why);

static void up_set_addrs(struct tt_upstream *up, struct addrinfo *ai)
{
    if (up->ai)
        freeaddrinfo(up->ai);
    up->ai = ai;
    up->ai_stale = 0;
    up->naddr = 0;
    for (struct addrinfo *a = up->ai; a; a = a->ai_next)
        up->naddr++;
    up->pref = 0;
}

/* Returns 0 when up->ai is ready, 1 when a lookup runs, -1 when none could
 * be started and no list is known. */
static int up_resolve(struct tt_upstream *up)
{
    if (up->ai && !up->ai_stale)
        return 0;
    if (up->res)
        return 1;
    struct addrinfo *ai;
    if (tt_resolve_numeric(up->url.host, up->url.port, &ai) == 0) {
        up_set_addrs(up, ai);
        return 0;
    }
    up->res = tt_resolve_start(up->loop, up->url.host, up->url.port, TT_RESOLVE_TIMEOUT_MS,
                               up_on_resolved, up);
    if (up->res)
        return 1;
    tt_log_warn("upstream %s: resolving %s: cannot start the lookup: %s", up->url.hostport,
                up->url.host, strerror(errno));
    return up->ai ? 0 : -1; /* an old list beats none */
}

static struct addrinfo *up_addr(struct tt_upstream *up, unsigned i)
{
    struct addrinfo *a = up->ai;
    for (unsigned k = 0; a && k < i; k++)
        a = a->ai_next;
    return a;
}

/* Starts a non-blocking connect to the `*tries`-th address after the
 * preferred one, advancing past addresses that fail at once.  Returns the
 * fd (connect in progress or done), -1 with errno when none is left, or
 * UP_RESOLVING when the caller must wait for up_on_resolved. */
static int up_connect(struct tt_upstream *up, unsigned *tries, unsigned *idx)
{
    /* A connect moving on to its next address keeps the list it started
     * with, even when another one found them all dead. */
    if (!(*tries > 0 && up->ai)) {
        int r = up_resolve(up);
        if (r < 0)
            return errno = EHOSTUNREACH, -1;
        if (r > 0)
            return UP_RESOLVING;
    }
    int err = ECONNREFUSED;
    for (; *tries < up->naddr; (*tries)++) {
        unsigned i = (up->pref + *tries) % up->naddr;
        struct addrinfo *a = up_addr(up, i);
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            *idx = i;
            up->conns_made++;
            return fd;
        }
        err = errno;
        close(fd);
    }
    /* Every address failed: the name may have moved. */
    up->ai_stale = 1;
    errno = err;
    return -1;
}

/* After the socket became writable: 0 when connected, else errno. */
static int up_connect_result(int fd)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return errno;
    return soerr;
}

/* ---- HTTP/1.1 --------------------------------------------------------- */

enum h1_state {
    H1_CONNECTING = 0,
    H1_BUSY,
    H1_IDLE,
};

struct h1_field {
    uint32_t no, nl, vo, vl;
};

struct up_h1 {
    struct tt_upstream *up;
    enum h1_state state;
    int fd;
    struct tt_io io;
    struct tt_timer timer; /* connect, then idle */
    unsigned tries, idx;
    int reused;
    struct up_stream *st;
    llhttp_t parser;
    tt_buf out;          /* request head and chunk framing, written before body bytes */
    uint64_t chunk_left; /* body bytes still owed to the open chunk */
    unsigned chunk_open : 1;
    unsigned final_queued : 1; /* the request's end is in `out` */
    unsigned req_done : 1;     /* ... and written */
    unsigned got_bytes : 1;    /* any response byte arrived */
    unsigned in_value : 1;
    unsigned in_trailers : 1;
    unsigned msg_done : 1;
    unsigned dead : 1; /* closed; the record waits for `hold` to drop */
    unsigned resolving : 1; /* CONNECTING, waiting for the app's name (fd -1) */
    unsigned hold;
    tt_buf fields;
    struct h1_field f[UP_MAX_FIELDS];
    size_t nf;
    int status;
    struct up_h1 *prev, *next;
};

static llhttp_settings_t h1_settings;
static int h1_settings_ready;

static void h1_list_remove(struct up_h1 **head, struct up_h1 *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (*head == c)
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void h1_list_add(struct up_h1 **head, struct up_h1 *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void h1_free(struct up_h1 *c)
{
    struct tt_upstream *up = c->up;
    if (!c->dead) {
        if (c->state == H1_IDLE) {
            h1_list_remove(&up->idle, c);
            up->nidle--;
        } else {
            h1_list_remove(&up->busy_list, c);
        }
        tt_io_stop(up->loop, &c->io);
        tt_timer_stop(up->loop, &c->timer);
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        c->dead = 1;
    }
    /* Still on the stack of a caller (h1_on_io): freed when it lets go. */
    if (c->hold)
        return;
    tt_buf_free(&c->out);
    tt_buf_free(&c->fields);
    tt_mem_free(c);
}

static void h1_unhold(struct up_h1 *c)
{
    if (--c->hold == 0 && c->dead)
        h1_free(c);
}

/* Lets go of the stream (the app side of it is done). */
static struct up_stream *h1_detach(struct up_h1 *c)
{
    struct up_stream *st = c->st;
    if (!st)
        return NULL;
    c->st = NULL;
    st->h1 = NULL;
    st->a_open = 0;
    return st;
}

/* The connection failed (`why` for the log and the 502). */
static void h1_fail(struct up_h1 *c, const char *why);

static void h1_update_io(struct up_h1 *c)
{
    if (c->dead || c->fd < 0)
        return;
    unsigned ev = 0;
    if (c->state == H1_CONNECTING) {
        ev = TT_IO_WRITE;
    } else if (c->state == H1_IDLE) {
        ev = TT_IO_READ; /* the app closing it, or talking out of turn */
    } else {
        struct up_stream *st = c->st;
        if (tt_buf_len(&c->out) || (st && tt_buf_len(&st->req_pend)))
            ev |= TT_IO_WRITE;
        /* Backpressure: no reading while p's stream cannot take more. */
        int blocked = st && st->t_open && (st->head_pending || tt_buf_len(&st->resp_pend) > 0 ||
                                           (st->head_sent && !st->end_sent &&
                                            tt_ts_room(st_ts(st)) == 0));
        if (!blocked)
            ev |= TT_IO_READ;
    }
    if (ev != c->io.events && tt_io_modify(c->up->loop, &c->io, ev) < 0)
        h1_fail(c, "epoll_ctl failed");
}

static void h1_close_idle(struct up_h1 *c) { h1_free(c); }

/* The exchange is over: back to the pool, or closed. */
static void h1_finish(struct up_h1 *c, int reusable)
{
    struct up_stream *st = h1_detach(c);
    struct tt_upstream *up = c->up;
    if (!reusable || up->nidle >= UP_MAX_IDLE) {
        h1_free(c);
    } else {
        h1_list_remove(&up->busy_list, c);
        c->state = H1_IDLE;
        c->reused = 1;
        h1_list_add(&up->idle, c);
        up->nidle++;
        tt_buf_shrink(&c->out);
        tt_buf_consume(&c->fields, tt_buf_len(&c->fields));
        tt_buf_shrink(&c->fields);
        tt_timer_start(up->loop, &c->timer, UP_IDLE_TIMEOUT_MS);
        h1_update_io(c);
    }
    if (st)
        st_release(st);
}

static void h1_abort(struct up_h1 *c)
{
    struct up_stream *st = h1_detach(c);
    h1_free(c);
    if (st)
        st_release(st);
}

static struct up_h1 *h1_new_conn(struct tt_upstream *up);
static int h1_attach(struct up_h1 *c, struct up_stream *st);

static void h1_fail(struct up_h1 *c, const char *why)
{
    struct up_stream *st = h1_detach(c);
    int reused = c->reused, got = c->got_bytes;
    struct tt_upstream *up = c->up;
    h1_free(c);
    if (!st)
        return;
    st_hold(st);
    st_release(st); /* the app side's hold, taken in h1_attach */
    if (st->t_open && !st->head_sent && !st->head_pending) {
        if (reused && !got && !st->retried && tt_buf_len(&st->retry_head)) {
            /* RFC 9112 §9.3.1: an idle connection the app closed as we
             * wrote to it; a request without a body is safe to send again,
             * on a fresh connection. */
            tt_log_debug("stream %" PRIu32 ": kept-alive connection to the app failed (%s): retrying",
                         st->sid, why);
            st->retried = 1;
            struct up_h1 *n = h1_new_conn(up);
            if (n && !tt_buf_append(&n->out, tt_buf_data(&st->retry_head),
                                    tt_buf_len(&st->retry_head)) &&
                !h1_attach(n, st)) {
                st_release(st);
                return;
            }
            if (n)
                h1_free(n);
        }
        st_answer(st, 502, "the app at %s %s", up->url.hostport, why);
    } else if (st->t_open && !st->end_sent) {
        tt_log_warn("stream %" PRIu32 ": the app at %s %s mid-response: resetting the stream",
                    st->sid, up->url.hostport, why);
        st_reset(st, TT_H2_INTERNAL_ERROR);
    }
    st_release(st);
}

/* ---- HTTP/1.1: writing the request ---- */

static int h1_frame(struct up_h1 *c)
{
    struct up_stream *st = c->st;
    if (!st->chunked) {
        if (st->req_ended && tt_buf_len(&st->req_pend) == 0)
            c->final_queued = 1;
        return 0;
    }
    if (!c->chunk_open && tt_buf_len(&st->req_pend) > 0) {
        char hd[24];
        int n = snprintf(hd, sizeof hd, "%zx\r\n", tt_buf_len(&st->req_pend));
        if (tt_buf_append(&c->out, hd, (size_t)n))
            return -1;
        c->chunk_left = tt_buf_len(&st->req_pend);
        c->chunk_open = 1;
    }
    if (!c->chunk_open && st->req_ended && !c->final_queued) {
        /* RFC 9112 §7.1: the last chunk, trailer fields, the end. */
        if (tt_buf_append(&c->out, "0\r\n", 3) ||
            tt_buf_append(&c->out, tt_buf_data(&st->req_trailer_lines),
                          tt_buf_len(&st->req_trailer_lines)) ||
            tt_buf_append(&c->out, "\r\n", 2))
            return -1;
        c->final_queued = 1;
    }
    return 0;
}

/* Writes head, framing and body bytes; body bytes written are given back
 * to p's window. */
static void h1_push(struct up_h1 *c)
{
    struct up_stream *st = c->st;
    if (c->state != H1_BUSY || !st || c->dead)
        return;
    st_hold(st);
    for (;;) {
        if (h1_frame(c)) {
            h1_fail(c, "request framing ran out of memory");
            goto done;
        }
        struct iovec iov[2];
        int n = 0;
        size_t body = tt_buf_len(&st->req_pend);
        if (st->chunked && body > c->chunk_left)
            body = (size_t)c->chunk_left;
        if (tt_buf_len(&c->out))
            iov[n++] = (struct iovec){tt_buf_data(&c->out), tt_buf_len(&c->out)};
        if (body)
            iov[n++] = (struct iovec){tt_buf_data(&st->req_pend), body};
        if (n == 0)
            break;
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            char why[120];
            snprintf(why, sizeof why, "failed while we sent the request (%s)", strerror(errno));
            h1_fail(c, why);
            goto done;
        }
        size_t left = (size_t)w;
        size_t o = tt_buf_len(&c->out) < left ? tt_buf_len(&c->out) : left;
        tt_buf_consume(&c->out, o);
        left -= o;
        if (left) {
            tt_buf_consume(&st->req_pend, left);
            if (st->chunked) {
                c->chunk_left -= left;
                if (c->chunk_left == 0) {
                    c->chunk_open = 0;
                    if (tt_buf_append(&c->out, "\r\n", 2)) {
                        h1_fail(c, "request framing ran out of memory");
                        goto done;
                    }
                }
            }
            /* On the app's socket: now p may send more. */
            tt_ts_consume(st_ts(st), left);
        }
    }
    if (c->final_queued && tt_buf_len(&c->out) == 0)
        c->req_done = 1;
    if (tt_buf_len(&st->req_pend) == 0)
        tt_buf_shrink(&st->req_pend);
    h1_update_io(c);
done:
    st_release(st);
}

/* ---- HTTP/1.1: reading the response ---- */

static int h1_on_message_begin(llhttp_t *p)
{
    struct up_h1 *c = p->data;
    c->nf = 0;
    c->in_value = 0;
    c->in_trailers = 0;
    tt_buf_consume(&c->fields, tt_buf_len(&c->fields));
    return 0;
}

static int h1_on_field(llhttp_t *p, const char *at, size_t len)
{
    struct up_h1 *c = p->data;
    if (c->nf == 0 || c->in_value) {
        if (c->nf == UP_MAX_FIELDS)
            return HPE_USER;
        c->f[c->nf++] = (struct h1_field){(uint32_t)tt_buf_len(&c->fields), 0, 0, 0};
        c->in_value = 0;
    }
    uint8_t *d = tt_buf_reserve(&c->fields, len);
    if (!d)
        return HPE_USER;
    /* RFC 9113 §8.2.2: field names are lowercase in HTTP/2. */
    for (size_t i = 0; i < len; i++) {
        char ch = at[i];
        d[i] = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    tt_buf_commit(&c->fields, len);
    c->f[c->nf - 1].nl += (uint32_t)len;
    return 0;
}

static int h1_on_value(llhttp_t *p, const char *at, size_t len)
{
    struct up_h1 *c = p->data;
    if (c->nf == 0)
        return HPE_USER;
    struct h1_field *f = &c->f[c->nf - 1];
    if (!c->in_value) {
        c->in_value = 1;
        f->vo = (uint32_t)tt_buf_len(&c->fields);
    }
    if (tt_buf_append(&c->fields, at, len))
        return HPE_USER;
    f->vl += (uint32_t)len;
    return 0;
}

/* The collected fields as HTTP/2 headers, values trimmed; returns the
 * count written after `h` (which has room for UP_MAX_FIELDS). */
static size_t h1_fields(struct up_h1 *c, struct tt_header *h)
{
    const char *base = (const char *)tt_buf_data(&c->fields);
    size_t n = 0;
    for (size_t i = 0; i < c->nf; i++) {
        const struct h1_field *f = &c->f[i];
        const char *v = base + f->vo;
        uint32_t vl = f->vl;
        while (vl && (v[0] == ' ' || v[0] == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (f->nl == 0)
            continue;
        h[n++] = (struct tt_header){base + f->no, vl ? v : "", f->nl, vl, 0};
    }
    return n;
}

static int h1_on_headers_complete(llhttp_t *p)
{
    struct up_h1 *c = p->data;
    struct up_stream *st = c->st;
    c->status = llhttp_get_status_code(p);
    if (c->status == 101 || (c->status >= 200 && llhttp_get_upgrade(p))) {
        /* No upgrades through a tunnel stream (RFC 9113 §8.6), and we never
         * asked for one (RFC 9110 §15.2.2). */
        llhttp_set_error_reason(p, "101 Switching Protocols, which we did not ask for");
        return HPE_USER;
    }
    struct tt_header h[UP_MAX_FIELDS + 1];
    char code[8];
    snprintf(code, sizeof code, "%d", c->status);
    h[0] = (struct tt_header){":status", code, 7, (uint32_t)strlen(code), 0};
    if (c->status < 200) {
        /* 1xx: no body follows; the final response is the next message
         * (h1_on_message_begin collects its fields afresh). */
        if (st && st->t_open && !st->head_sent && !st->head_pending && c->status != 100) {
            size_t k = h1_fields(c, h + 1);
            k = tt_upstream_filter_response(h + 1, k) + 1;
            st_interim(st, c->status, h, k);
        }
        /* RFC 9112 §6.3 (1): a 1xx ends at its empty line, whatever
         * Content-Length or Transfer-Encoding it carries: 1 tells llhttp
         * there is no body. */
        return 1;
    }
    c->in_trailers = 1;
    if (!st)
        return 0;
    size_t n = h1_fields(c, h + 1);
    n = tt_upstream_filter_response(h + 1, n) + 1;
    /* RFC 9110 §6.4.1: HEAD, 204 and 304 have no body. */
    int end = st->is_head || c->status == 204 || c->status == 304;
    st_head(st, h, n, end);
    /* Trailers, if any, are collected afresh. */
    c->nf = 0;
    c->in_value = 0;
    tt_buf_consume(&c->fields, tt_buf_len(&c->fields));
    return st->is_head ? 1 : 0; /* 1: llhttp expects no body */
}

static int h1_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct up_h1 *c = p->data;
    if (c->st)
        (void)st_body(c->st, (const uint8_t *)at, len);
    return 0;
}

static int h1_on_message_complete(llhttp_t *p)
{
    struct up_h1 *c = p->data;
    if (c->status < 200) {
        c->nf = 0;
        return 0;
    }
    struct up_stream *st = c->st;
    if (st && st->t_open && !st->resp_ended) {
        if (c->nf) {
            struct tt_header h[UP_MAX_FIELDS];
            size_t n = h1_fields(c, h);
            n = tt_upstream_filter_response(h, n);
            /* Fields HTTP/2 forbids in trailers are left out (RFC 9110 §6.5.1). */
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (!up_name_is(&h[i], "content-length") && !up_name_is(&h[i], "host"))
                    h[k++] = h[i];
            if (k && hdrs_copy(&st->resp_trailers, h, k))
                st_reset(st, TT_H2_INTERNAL_ERROR);
        }
        st->resp_ended = 1;
    }
    c->msg_done = 1;
    return HPE_PAUSED; /* one response per request: stop here */
}

/* Reads and parses the app's response.  The stream may be gone (p reset
 * it, or a HEAD answer ended it from inside the parser's callbacks): the
 * connection then still reads to the response's end, to be reused. */
static void h1_read(struct up_h1 *c)
{
    uint8_t buf[UP_READ];
    for (int round = 0; round < 4 && !c->dead; round++) {
        if (c->state == H1_IDLE) {
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            /* Closed by the app, or bytes nobody asked for: not reusable. */
            h1_close_idle(c);
            return;
        }
        struct up_stream *st = c->st;
        size_t want = sizeof buf;
        if (st && st->head_sent && st->t_open) {
            size_t room = tt_ts_room(st_ts(st));
            if (tt_buf_len(&st->resp_pend) || room == 0) {
                h1_update_io(c);
                return;
            }
            if (room < want)
                want = room < 4096 ? 4096 : room;
        }
        ssize_t r = read(c->fd, buf, want);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            char why[120];
            snprintf(why, sizeof why, "failed (%s)", strerror(errno));
            h1_fail(c, why);
            return;
        }
        if (st)
            st_hold(st);
        llhttp_errno_t e;
        size_t used = (size_t)r;
        if (r == 0) {
            /* EOF ends a body that runs to the close (RFC 9112 §6.3). */
            e = llhttp_finish(&c->parser);
        } else {
            c->got_bytes = 1;
            e = llhttp_execute(&c->parser, (const char *)buf, (size_t)r);
            if (e == HPE_PAUSED)
                used = (size_t)(llhttp_get_error_pos(&c->parser) - (const char *)buf);
        }
        if (c->dead) {
            /* Closed from a callback (the stream was reset). */
        } else if (c->msg_done && (e == HPE_OK || e == HPE_PAUSED)) {
            int reusable = r > 0 && used == (size_t)r && llhttp_should_keep_alive(&c->parser) &&
                           c->req_done;
            int req_done = c->req_done;
            /* Let go of the stream first: ending it may close it, and its
             * close must not find this connection attached. */
            h1_finish(c, reusable);
            if (st) {
                st_pump(st);
                if (!req_done && st->t_open && !st->req_ended && st->end_sent) {
                    /* The app answered before the request's end: p need not
                     * send the rest (RFC 9113 §8.1). */
                    st_reset(st, TT_H2_NO_ERROR);
                }
            }
        } else if (r == 0 || e != HPE_OK) {
            char why[160];
            if (r == 0)
                snprintf(why, sizeof why, "closed the connection");
            else
                snprintf(why, sizeof why, "sent a malformed response (%s)",
                         llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser)
                                                             : llhttp_errno_name(e));
            h1_fail(c, why);
        } else if (st) {
            st_pump(st);
        }
        if (st)
            st_release(st);
        if (c->dead || c->state != H1_BUSY)
            return;
    }
    h1_update_io(c);
}

static void h1_on_connected(struct up_h1 *c)
{
    tt_timer_stop(c->up->loop, &c->timer);
    c->up->pref = c->idx;
    c->state = H1_BUSY;
    h1_push(c);
}

static void h1_io(struct up_h1 *c, unsigned events);

static void h1_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)loop;
    struct up_h1 *c = io->data;
    c->hold++;
    h1_io(c, events);
    h1_unhold(c);
}

static void h1_io(struct up_h1 *c, unsigned events)
{
    if (c->state == H1_CONNECTING) {
        int err = up_connect_result(c->fd);
        if (err == 0) {
            h1_on_connected(c);
            return;
        }
        tt_io_stop(c->up->loop, &c->io);
        close(c->fd);
        c->tries++;
        c->fd = up_connect(c->up, &c->tries, &c->idx);
        if (c->fd < 0 || tt_io_start(c->up->loop, &c->io, c->fd, TT_IO_WRITE, h1_on_io, c) < 0) {
            char why[120];
            snprintf(why, sizeof why, "refused the connection (%s)", strerror(err));
            h1_fail(c, why);
        }
        return;
    }
    if (events & TT_IO_WRITE)
        h1_push(c);
    if ((events & (TT_IO_READ | TT_IO_ERROR)) && !c->dead)
        h1_read(c);
}

static void h1_on_timer(struct tt_loop *loop, struct tt_timer *tm)
{
    (void)loop;
    struct up_h1 *c = tm->data;
    if (c->state == H1_IDLE)
        h1_close_idle(c);
    else if (c->state == H1_CONNECTING)
        h1_fail(c, "did not accept the connection within 10 s");
}

static struct up_h1 *h1_new_conn(struct tt_upstream *up)
{
    struct up_h1 *c = tt_mem_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->up = up;
    c->fd = -1;
    tt_buf_init(&c->out, UP_OUT_MAX);
    tt_buf_init(&c->fields, UP_FIELDS_MAX);
    tt_timer_init(&c->timer, h1_on_timer, c);
    c->state = H1_CONNECTING;
    h1_list_add(&up->busy_list, c);
    c->fd = up_connect(up, &c->tries, &c->idx);
    if (c->fd == UP_RESOLVING) {
        /* The lookup has its own timeout; the connect timer starts with
         * the connect (h1_resolved). */
        c->fd = -1;
        c->resolving = 1;
        return c;
    }
    if (c->fd < 0 || tt_io_start(up->loop, &c->io, c->fd, TT_IO_WRITE, h1_on_io, c) < 0) {
        /* Failing at once: answered by the caller's st_answer through
         * h1_attach's caller. */
        int err = errno;
        h1_free(c);
        errno = err;
        return NULL;
    }
    tt_timer_start(up->loop, &c->timer, UP_CONNECT_TIMEOUT_MS);
    return c;
}

/* The app's name lookup ended (up->ai is NULL when it failed and no older
 * list is known): the waiting connection connects now, or fails. */
static void h1_resolved(struct up_h1 *c, const char *why)
{
    struct tt_upstream *up = c->up;
    char msg[200];
    c->resolving = 0;
    if (!up->ai) {
        snprintf(msg, sizeof msg, "could not be resolved (%s)", why ? why : "no address");
        h1_fail(c, msg);
        return;
    }
    c->fd = up_connect(up, &c->tries, &c->idx);
    if (c->fd == UP_RESOLVING) { /* another waiter found every address dead */
        c->fd = -1;
        c->resolving = 1;
        return;
    }
    if (c->fd < 0 || tt_io_start(up->loop, &c->io, c->fd, TT_IO_WRITE, h1_on_io, c) < 0) {
        snprintf(msg, sizeof msg, "refused the connection (%s)", strerror(errno));
        if (c->fd < 0)
            c->fd = -1;
        h1_fail(c, msg);
        return;
    }
    tt_timer_start(up->loop, &c->timer, UP_CONNECT_TIMEOUT_MS);
}

/* Joins a stream and a connection whose `out` holds the request head.
 * Returns 0 or -1. */
static int h1_attach(struct up_h1 *c, struct up_stream *st)
{
    if (!h1_settings_ready) {
        llhttp_settings_init(&h1_settings);
        h1_settings.on_message_begin = h1_on_message_begin;
        h1_settings.on_header_field = h1_on_field;
        h1_settings.on_header_value = h1_on_value;
        h1_settings.on_headers_complete = h1_on_headers_complete;
        h1_settings.on_body = h1_on_body;
        h1_settings.on_message_complete = h1_on_message_complete;
        h1_settings_ready = 1;
    }
    llhttp_init(&c->parser, HTTP_RESPONSE, &h1_settings);
    c->parser.data = c;
    c->st = st;
    st->h1 = c;
    st->a_open = 1;
    st_hold(st); /* the app side's hold */
    c->chunk_left = 0;
    c->chunk_open = c->final_queued = c->req_done = c->got_bytes = c->msg_done = 0;
    c->nf = 0;
    c->status = 0;
    if (c->state == H1_BUSY)
        h1_push(c);
    return 0;
}

static void h1_open(struct up_stream *st, const struct tt_h2_headers *h)
{
    struct tt_upstream *up = st->up;
    if (up_iov_is(h->method, "CONNECT")) {
        st_answer(st, 501, "CONNECT is not forwarded to the app");
        return;
    }
    enum tt_upstream_body body = h->end_stream           ? TT_UPSTREAM_BODY_NONE
                                 : h->content_length >= 0 ? TT_UPSTREAM_BODY_LENGTH
                                                          : TT_UPSTREAM_BODY_CHUNKED;
    st->chunked = body == TT_UPSTREAM_BODY_CHUNKED;
    struct up_h1 *c = up->idle;
    if (c) {
        h1_list_remove(&up->idle, c);
        up->nidle--;
        tt_timer_stop(up->loop, &c->timer);
        c->state = H1_BUSY;
        h1_list_add(&up->busy_list, c);
    } else if (!(c = h1_new_conn(up))) {
        st_answer(st, 502, "the app at %s refused the connection (%s)", up->url.hostport,
                  strerror(errno));
        return;
    }
    tt_buf_consume(&c->out, tt_buf_len(&c->out));
    if (tt_upstream_h1_head(h, body, up->url.hostport, &c->out)) {
        h1_free(c);
        st_answer(st, 400, "the request cannot be written as HTTP/1.1");
        return;
    }
    if (c->reused && body == TT_UPSTREAM_BODY_NONE &&
        tt_buf_append(&st->retry_head, tt_buf_data(&c->out), tt_buf_len(&c->out)))
        tt_buf_free(&st->retry_head); /* no retry then */
    h1_attach(c, st);
}

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

static struct tt_h2_conn *up_h2_conn(struct up_h2 *a)
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
    st_release(st); /* the app side's hold */
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
        h2_wait_remove(st);
        st_hold(st);
        int end = st->req_ended && tt_buf_len(&st->req_pend) == 0 && !st->req_trailers.h;
        int64_t sid = tt_h2_submit_request(a->h2, st->req_hdrs.h, st->req_hdrs.n, end, st);
        hdrs_free(&st->req_hdrs);
        if (sid < 0) {
            h2_let_go(st);
            if (sid == TT_ERR_GOING_AWAY) {
                st_answer(st, 502, "the app at %s is going away", up->url.hostport);
            } else {
                st_answer(st, 502, "the request cannot be sent to the app (%s)",
                          tt_strerror((int)sid));
            }
            st_release(st);
            continue;
        }
        if (end)
            st->req_end_sent = 1;
        h2_stream_link(a, st);
        st->asid = (uint32_t)sid;
        h2_push(st);
        st_release(st);
    }
    if (a->s)
        tt_session_flush(a->s);
}

/* Request body (and p's trailers) to the app stream; bytes the app's codec
 * took are given back to p's window. */
static void h2_push(struct up_stream *st)
{
    struct up_h2 *a = st->ah;
    if (!a || !st->asid || a->state != H2_UP || st->req_end_sent)
        return;
    st_hold(st);
    size_t taken = 0;
    while (st->asid && tt_buf_len(&st->req_pend) > 0) {
        size_t len = tt_buf_len(&st->req_pend);
        int end = st->req_ended && !st->req_trailers.h;
        ssize_t w = tt_h2_send_data(a->h2, st->asid, tt_buf_data(&st->req_pend), len, end);
        if (w < 0) {
            h2_abort(st, TT_H2_INTERNAL_ERROR);
            st_reset(st, TT_H2_INTERNAL_ERROR);
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
        tt_ts_consume(st_ts(st), taken);
    if (st->asid && !st->req_end_sent && st->req_ended && tt_buf_len(&st->req_pend) == 0) {
        if (st->req_trailers.h) {
            int rc = tt_h2_submit_headers(a->h2, st->asid, st->req_trailers.h, st->req_trailers.n, 1);
            if (rc == TT_ERR_NOMEM)
                goto out; /* again on_writable */
            hdrs_free(&st->req_trailers);
        } else {
            if (tt_h2_send_data(a->h2, st->asid, NULL, 0, 1) < 0) {
                h2_abort(st, TT_H2_INTERNAL_ERROR);
                st_reset(st, TT_H2_INTERNAL_ERROR);
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
    st_release(st);
}

/* p's side ended or failed: the app stream goes too. */
static void h2_abort(struct up_stream *st, uint32_t code)
{
    if (st->waiting) {
        h2_let_go(st);
        return;
    }
    struct up_h2 *a = st->ah;
    if (a && st->asid && a->state == H2_UP) {
        st_hold(st);
        (void)tt_h2_submit_rst(a->h2, st->asid, code); /* fires ah_on_stream_close */
        if (a->s)
            tt_session_flush(a->s);
        st_release(st);
    }
    h2_let_go(st);
}

static void h2_open(struct up_stream *st, const struct tt_h2_headers *h)
{
    struct tt_upstream *up = st->up;
    if (hdrs_copy(&st->req_hdrs, h->hdrs, h->count)) {
        st_reset(st, TT_H2_REFUSED_STREAM);
        return;
    }
    st->a_open = 1;
    st_hold(st); /* the app side's hold */
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
    st_hold(st);
    if (h->kind == TT_H2_HDRS_RESPONSE) {
        st_head(st, h->hdrs, h->count, h->end_stream);
    } else if (h->kind == TT_H2_HDRS_TRAILERS) {
        /* gRPC's grpc-status lives here: passed on after the body. */
        if (!st->resp_ended && st->t_open) {
            if (hdrs_copy(&st->resp_trailers, h->hdrs, h->count))
                st_reset(st, TT_H2_INTERNAL_ERROR);
            st->resp_ended = 1;
            st_pump(st);
        }
    } else if (h->kind == TT_H2_HDRS_INFORMATIONAL) {
        st_interim(st, h->status, h->hdrs, h->count);
    }
    st_release(st);
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
    st_hold(st);
    ssize_t taken = len ? st_body(st, data, len) : 0;
    if (taken < 0)
        tt_h2_consume(a->h2, sid, len); /* dropped */
    else if (taken > 0)
        tt_h2_consume(a->h2, sid, (size_t)taken);
    if (end_stream && st->t_open) {
        st->resp_ended = 1;
        st_pump(st);
    }
    st_release(st);
    return 0;
}

static void ah_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct up_h2 *a = ud;
    struct up_stream *st = sud;
    if (!st || st->ah != a || st->asid != sid)
        return;
    st_hold(st);
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
            st_reset(st, code);
        } else if (!st->head_sent && !st->head_pending) {
            st_answer(st, 502, "the app at %s closed the connection before answering",
                      a->up->url.hostport);
        } else {
            tt_log_warn("stream %" PRIu32 ": the connection to the app was lost mid-response",
                        st->sid);
            st_reset(st, TT_H2_INTERNAL_ERROR);
        }
    }
    st_release(st);
    h2_submit_waiting(a->up);
}

static void ah_on_window_update(void *ud, uint32_t sid, void *sud)
{
    struct up_h2 *a = ud;
    if (sid) {
        if (sud)
            h2_push(sud);
        return;
    }
    for (struct up_stream *st = a->streams; st;) {
        struct up_stream *next = st->anext;
        if (tt_buf_len(&st->req_pend) || (st->req_ended && !st->req_end_sent))
            h2_push(st);
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
        st_hold(st);
        h2_let_go(st);
        st_answer(st, 502, "the app at %s %s (%s)", up->url.hostport, what, why);
        st_release(st);
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
    int err = up_connect_result(a->fd);
    tt_io_stop(loop, &a->io);
    if (err) {
        close(a->fd);
        a->tries++;
        a->fd = up_connect(up, &a->tries, &a->idx);
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
    a->fd = up_connect(up, &a->tries, &a->idx);
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

/* The lookup of the app's name ended: connections that waited for it go on
 * (with the old list when the lookup failed but one is known), or fail. */
static void up_on_resolved(void *arg, struct addrinfo *res, const char *why)
{
    struct tt_upstream *up = arg;
    up->res = NULL;
    if (res) {
        up_set_addrs(up, res);
    } else {
        tt_log_warn("upstream %s: resolving %s: %s%s", up->url.hostport, up->url.host, why,
                    up->ai ? " (using the addresses found before)" : "");
        /* The old list serves until its addresses fail again; the waiters
         * below must connect, not start another lookup. */
        up->ai_stale = 0;
    }
    /* Each pass takes one waiter off; the lists may change under a failing
     * connection's answers, so start again from the head each time.  When
     * a waiter's connect found every address dead at once, a new lookup
     * runs (up->res): the rest wait for that one. */
    for (;;) {
        if (up->res)
            return;
        struct up_h1 *c = up->busy_list;
        while (c && !c->resolving)
            c = c->next;
        if (!c)
            break;
        h1_resolved(c, why);
    }
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

/* ---- the tunnel side: the handler ops (origin/handler.h) ---------------- */

static void up_open(void *hctx, struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct tt_upstream *up = hctx;
    struct up_stream *st = tt_ts_priv(ts);
    st->up = up;
    st->sid = tt_ts_id(ts);
    st->t_open = 1;
    st->req_ended = h->end_stream != 0;
    st->is_head = up_iov_is(h->method, "HEAD");
    tt_buf_init(&st->req_pend, UP_PEND_MAX);
    tt_buf_init(&st->resp_pend, UP_PEND_MAX);
    tt_buf_init(&st->req_trailer_lines, 64u << 10);
    tt_buf_init(&st->retry_head, UP_OUT_MAX);
    tt_timer_init(&st->head_timer, st_head_timeout, st);
    /* Pumped whenever the tunnel has room: st_pump moves what waits for p
     * and resumes an HTTP/1.1 app socket paused for lack of room. */
    tt_ts_wait(ts);
    if (tt_log_enabled(TT_LOG_DEBUG))
        tt_log_debug("stream %" PRIu32 ": %.*s %.*s -> app", st->sid, (int)h->method.len,
                     (const char *)h->method.base, (int)(h->path.len > 200 ? 200 : h->path.len),
                     (const char *)h->path.base);
    tt_timer_start(up->loop, &st->head_timer, UP_HEAD_TIMEOUT_MS);
    if (up->url.h2c)
        h2_open(st, h);
    else
        h1_open(st, h);
}

static void up_trailers(struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct up_stream *st = tt_ts_priv(ts);
    st->req_ended = 1;
    if (st->up->url.h2c) {
        if (!st->req_trailers.h && hdrs_copy(&st->req_trailers, h->hdrs, h->count)) {
            h2_abort(st, TT_H2_INTERNAL_ERROR);
            st_reset(st, TT_H2_INTERNAL_ERROR);
        } else {
            h2_push(st);
        }
        return;
    }
    if (st->chunked) {
        for (size_t i = 0; i < h->count; i++) {
            const struct tt_header *f = &h->hdrs[i];
            if (tt_buf_append(&st->req_trailer_lines, f->name, f->name_len) ||
                tt_buf_append(&st->req_trailer_lines, ": ", 2) ||
                tt_buf_append(&st->req_trailer_lines, f->value, f->value_len) ||
                tt_buf_append(&st->req_trailer_lines, "\r\n", 2))
                break;
        }
    }
    if (st->h1)
        h1_push(st->h1);
}

static void up_data(struct tt_ts *ts, const uint8_t *data, size_t len, int end_stream)
{
    struct up_stream *st = tt_ts_priv(ts);
    if (!st->a_open || st->req_ended) {
        /* Nobody takes these bytes any more: dropped, window given back. */
        tt_ts_consume(ts, len);
        if (end_stream)
            st->req_ended = 1;
        return;
    }
    if (len && tt_buf_append(&st->req_pend, data, len)) {
        tt_ts_consume(ts, len);
        if (st->h1)
            h1_abort(st->h1);
        else
            h2_abort(st, TT_H2_INTERNAL_ERROR);
        st_reset(st, TT_H2_INTERNAL_ERROR);
        return;
    }
    if (end_stream)
        st->req_ended = 1;
    if (st->h1)
        h1_push(st->h1);
    else if (st->ah)
        h2_push(st);
}

static size_t up_pump(struct tt_ts *ts) { return st_pump(tt_ts_priv(ts)); }

static void up_close(struct tt_ts *ts, uint32_t code, unsigned flags)
{
    struct up_stream *st = tt_ts_priv(ts);
    st->t_open = 0;
    tt_timer_stop(st->up->loop, &st->head_timer);
    /* Request bytes still held: the tunnel server gives their window back
     * to p once this returns. */
    tt_buf_consume(&st->req_pend, tt_buf_len(&st->req_pend));
    if (st->h1) {
        struct up_h1 *c = st->h1;
        if (code == TT_H2_NO_ERROR && st->end_sent && c->req_done) {
            /* A head that ended the stream (HEAD, 204, 304) while the
             * parser is still in the response: the connection finishes
             * it alone and may then be reused. */
            h1_detach(c);
            st_release(st);
        } else {
            /* Mid-exchange: an HTTP/1.1 connection cannot be reused. */
            h1_abort(c);
        }
    } else if (st->a_open) {
        uint32_t acode = code;
        if (code == TT_H2_NO_ERROR || (flags & TT_H2_CLOSE_CONN))
            acode = TT_H2_CANCEL;
        if (code != TT_H2_NO_ERROR || !st->req_end_sent || !st->resp_ended)
            h2_abort(st, acode);
        else
            h2_let_go(st);
    }
}

static void up_free(struct tt_ts *ts) { st_free(tt_ts_priv(ts)); }

const struct tt_handler tt_upstream_handler = {
    .stream_size = sizeof(struct up_stream),
    .open = up_open,
    .data = up_data,
    .trailers = up_trailers,
    .pump = up_pump,
    .close = up_close,
    .free = up_free,
};

struct tt_upstream *tt_upstream_new(struct tt_loop *loop, const struct tt_upstream_url *url)
{
    struct tt_upstream *up = tt_mem_calloc(1, sizeof *up);
    if (!up)
        return NULL;
    up->loop = loop;
    up->url = *url;
    tt_session_config_default(&up->acfg);
    /* c is the HTTP/2 client of the app.  The receive window bounds what
     * one app stream may have in flight towards a slow p. */
    up->acfg.h2.initial_window_size = 1u << 20;
    up->acfg.h2.max_output = 1u << 20;
    up->acfg.h2.max_concurrent_streams = 100; /* push is off; this limits nothing we use */
    return up;
}

int tt_upstream_close_sessions(struct tt_upstream *up)
{
    int n = 0;
    if (!up)
        return 0;
    up->closing = 1;
    for (struct up_h2 *a = up->h2all; a; a = a->next) {
        if (a->s && !tt_session_closing(a->s)) {
            tt_session_close(a->s, "c is exiting");
            n++;
        }
    }
    return n;
}

void tt_upstream_free(struct tt_upstream *up)
{
    if (!up)
        return;
    while (up->idle)
        h1_free(up->idle);
    while (up->busy_list)
        h1_free(up->busy_list);
    /* h2c connections not made yet hold no session: they go now.  Sessions
     * only close at a safe point on the loop (tt_upstream_close_sessions
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
    /* A lookup still running finishes alone in its thread. */
    tt_resolve_cancel(up->res);
    up->res = NULL;
    if (up->ai)
        freeaddrinfo(up->ai);
    up->ai = NULL;
    /* Records of h2c connections still point here: they and it are left
     * to the process's end. */
    if (!up->h2all)
        tt_mem_free(up);
}
