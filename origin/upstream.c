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
#include "origin/upstream_int.h"

#include "codec/buf.h"
#include "codec/token.h"
#include "proto/http1.h"
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
    /* The bound once left room to append ":80"; kept, so the same input
     * gets the same message. */
    char hp[300];
    if (n == 0 || n + 4 >= sizeof hp)
        return up_fail(err, errlen, "want http://HOST:PORT or h2c://HOST:PORT");
    memcpy(hp, rest, n);
    hp[n] = 0;
    if (strchr(hp, '@'))
        return up_fail(err, errlen, "user:password@ is not supported");
    /* A dialled address (host bytes and port checked), port 80 when absent. */
    struct tt_hostport a;
    if (tt_http1_hostport_parse(hp, n, sizeof u->host - 1,
                                TT_HOSTPORT_STRICT | TT_HOSTPORT_PORT_OPTIONAL, &a))
        return up_fail(err, errlen, "want HOST:PORT (or [IPv6]:PORT) with a port from 1 to 65535");
    memcpy(u->host, a.host, a.host_len);
    u->host[a.host_len] = 0;
    snprintf(u->port, sizeof u->port, "%u", a.has_port ? a.port_num : 80u);
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(u->hostport, sizeof u->hostport, "%s%s%s:%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port);
    return 0;
}

size_t tt_upstream_filter_response(struct tt_header *f, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int drop = tt_http1_hop_by_hop(f[i].name, f[i].name_len);
        /* RFC 9110 §7.6.1: the fields Connection names are hop-by-hop too.
         * Every Connection field counts, however many: this only drops. */
        for (size_t j = 0; j < n && !drop; j++) {
            const struct tt_token *t = tt_token_find_ci(f[j].name, f[j].name_len);
            if (t && t->id == TT_TOK_CONNECTION)
                drop = tt_http1_connection_lists(f[j].value, f[j].value_len, f[i].name,
                                                 f[i].name_len);
        }
        if (!drop)
            f[k++] = f[i];
    }
    /* The Connection fields themselves went last, so the loop above could
     * still read them. */
    return k;
}

/* ---- runtime: the records ------------------------------------------- */

int tt_up_hdrs_copy(struct up_hdrs *d, const struct tt_header *src, size_t n)
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

void tt_up_hdrs_free(struct up_hdrs *d)
{
    tt_mem_free(d->h);
    d->h = NULL;
    d->n = 0;
}

struct tt_ts *tt_up_ts(struct up_stream *st) { return tt_ts_of(st); }

/* The record goes (the tunnel server's `free` op). */
static void st_free(struct up_stream *st)
{
    tt_timer_stop(st->up->loop, &st->head_timer);
    tt_buf_free(&st->req_pend);
    tt_buf_free(&st->resp_pend);
    tt_buf_free(&st->req_trailer_lines);
    tt_buf_free(&st->retry_head);
    tt_up_hdrs_free(&st->resp_head);
    tt_up_hdrs_free(&st->resp_trailers);
    tt_up_hdrs_free(&st->req_hdrs);
    tt_up_hdrs_free(&st->req_trailers);
}

void tt_up_release(struct up_stream *st) { tt_ts_release(tt_up_ts(st)); }

void tt_up_hold(struct up_stream *st) { tt_ts_hold(tt_up_ts(st)); }

void tt_up_reset(struct up_stream *st, uint32_t code)
{
    tt_ts_reset(tt_up_ts(st), code); /* up_close runs inside */
}

/* A plain-text answer of our own (502, 504): only before a head went out;
 * after it, the stream can only be reset. */
void tt_up_answer(struct up_stream *st, int status, const char *fmt, ...)
{
    if (!st->t_open)
        return;
    if (st->head_sent || st->head_pending) {
        tt_up_reset(st, TT_H2_INTERNAL_ERROR);
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
    tt_up_hold(st);
    st->head_sent = 1;
    st->resp_ended = 1;
    st->end_sent = 1;
    tt_buf_consume(&st->resp_pend, tt_buf_len(&st->resp_pend));
    int rc = tt_ts_headers(tt_up_ts(st), h, 3, st->is_head);
    if (rc < 0) {
        tt_up_reset(st, TT_H2_INTERNAL_ERROR);
    } else if (!st->is_head) {
        ssize_t w = tt_ts_send(tt_up_ts(st), body, (size_t)n, 1);
        if (w != n)
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
    }
    tt_up_release(st);
}

/* Response head to p: now, or once the output buffer has room. */
void tt_up_head(struct up_stream *st, const struct tt_header *h, size_t n, int end)
{
    if (!st->t_open || st->head_sent || st->head_pending)
        return;
    tt_timer_stop(st->up->loop, &st->head_timer);
    if (end)
        st->resp_ended = 1;
    int rc = tt_ts_headers(tt_up_ts(st), h, n, end);
    if (rc == TT_ERR_NOMEM && st->t_open) {
        /* The output buffer is full of other streams' DATA: send the
         * head once it drains (tt_up_pump). */
        if (tt_up_hdrs_copy(&st->resp_head, h, n)) {
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
            return;
        }
        st->head_pending = 1;
        return;
    }
    if (rc < 0) {
        tt_log_warn("stream %" PRIu32 ": the app's response head cannot be sent (%s)", st->sid,
                    tt_strerror(rc));
        tt_up_answer(st, 502, "the app's response head cannot be forwarded");
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
void tt_up_interim(struct up_stream *st, int status, const struct tt_header *h, size_t n)
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
    int rc = tt_ts_headers(tt_up_ts(st), kept, k, 0);
    if (rc < 0) {
        tt_log_debug("stream %" PRIu32 ": %d from the app dropped (%s)", st->sid, status,
                     tt_strerror(rc));
    }
}

/* Response body from the app.  Returns the bytes p's stream took at once
 * (h2c gives those back to the app); the rest waits in resp_pend.  Returns
 * -1 when the stream is gone (the caller drops the bytes). */
ssize_t tt_up_body(struct up_stream *st, const uint8_t *p, size_t n)
{
    if (!st->t_open || st->end_sent)
        return -1;
    size_t taken = 0;
    if (st->head_sent && tt_buf_len(&st->resp_pend) == 0) {
        ssize_t w = tt_ts_send(tt_up_ts(st), p, n, 0);
        if (w < 0) {
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
            return -1;
        }
        taken = (size_t)w;
    }
    if (taken < n && tt_buf_append(&st->resp_pend, p + taken, n - taken)) {
        tt_up_reset(st, TT_H2_INTERNAL_ERROR);
        return -1;
    }
    return (ssize_t)taken;
}

/* Moves what waits for p (head, body, end) into the tunnel's output.
 * Returns the body bytes queued. */
size_t tt_up_pump(struct up_stream *st)
{
    struct tt_ts *ts = tt_up_ts(st);
    size_t sent = 0;
    if (!st->t_open)
        return 0;
    tt_up_hold(st);
    if (st->head_pending) {
        int rc = tt_ts_headers(ts, st->resp_head.h, st->resp_head.n,
                                      st->resp_ended && tt_buf_len(&st->resp_pend) == 0 &&
                                          !st->resp_trailers.h);
        if (rc == TT_ERR_NOMEM) {
            tt_up_release(st);
            return 0;
        }
        st->head_pending = 0;
        st->head_sent = 1;
        tt_up_hdrs_free(&st->resp_head);
        if (rc < 0) {
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
            tt_up_release(st);
            return 0;
        }
        if (st->resp_ended && tt_buf_len(&st->resp_pend) == 0 && !st->resp_trailers.h)
            st->end_sent = 1;
    }
    while (st->t_open && tt_buf_len(&st->resp_pend) > 0) {
        ssize_t w = tt_ts_send(ts, tt_buf_data(&st->resp_pend), tt_buf_len(&st->resp_pend), 0);
        if (w < 0) {
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
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
        struct tt_h2_conn *ah2 = tt_up_h2_conn(st->ah);
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
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
    }
out:
    if (st->h1)
        tt_up_h1_update_io(st->h1);
    tt_up_release(st);
    return sent;
}

static void st_head_timeout(struct tt_loop *loop, struct tt_timer *tm)
{
    (void)loop;
    struct up_stream *st = tm->data;
    if (st->head_sent || st->head_pending || !st->t_open)
        return;
    tt_up_hold(st);
    tt_up_answer(st, 504, "the app did not answer within %u s", UP_HEAD_TIMEOUT_MS / 1000);
    if (st->h1)
        tt_up_h1_abort(st->h1);
    else if (st->ah || st->waiting)
        tt_up_h2_abort(st, TT_H2_CANCEL);
    tt_up_release(st);
}

/* ---- addresses and connecting --------------------------------------- */

/* The app's name is looked up off the loop (proto/resolve.h); a numeric
 * address is parsed at once, so the usual 127.0.0.1 never waits.  Connects
 * asked for while a lookup runs wait for it (UP_RESOLVING): up_on_resolved
 * starts them. */

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
int tt_up_connect(struct tt_upstream *up, unsigned *tries, unsigned *idx)
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
int tt_up_connect_result(int fd)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return errno;
    return soerr;
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
    tt_up_h1_on_resolved(up, why);
    tt_up_h2_on_resolved(up, why);
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
    st->is_head = tt_up_iov_is(h->method, "HEAD");
    tt_buf_init(&st->req_pend, UP_PEND_MAX);
    tt_buf_init(&st->resp_pend, UP_PEND_MAX);
    tt_buf_init(&st->req_trailer_lines, 64u << 10);
    tt_buf_init(&st->retry_head, UP_OUT_MAX);
    tt_timer_init(&st->head_timer, st_head_timeout, st);
    /* Pumped whenever the tunnel has room: tt_up_pump moves what waits for p
     * and resumes an HTTP/1.1 app socket paused for lack of room. */
    tt_ts_wait(ts);
    if (tt_log_enabled(TT_LOG_DEBUG))
        tt_log_debug("stream %" PRIu32 ": %.*s %.*s -> app", st->sid, (int)h->method.len,
                     (const char *)h->method.base, (int)(h->path.len > 200 ? 200 : h->path.len),
                     (const char *)h->path.base);
    tt_timer_start(up->loop, &st->head_timer, UP_HEAD_TIMEOUT_MS);
    if (up->url.h2c)
        tt_up_h2_open(st, h);
    else
        tt_up_h1_open(st, h);
}

static void up_trailers(struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct up_stream *st = tt_ts_priv(ts);
    st->req_ended = 1;
    if (st->up->url.h2c) {
        if (!st->req_trailers.h && tt_up_hdrs_copy(&st->req_trailers, h->hdrs, h->count)) {
            tt_up_h2_abort(st, TT_H2_INTERNAL_ERROR);
            tt_up_reset(st, TT_H2_INTERNAL_ERROR);
        } else {
            tt_up_h2_push(st);
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
        tt_up_h1_push(st->h1);
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
            tt_up_h1_abort(st->h1);
        else
            tt_up_h2_abort(st, TT_H2_INTERNAL_ERROR);
        tt_up_reset(st, TT_H2_INTERNAL_ERROR);
        return;
    }
    if (end_stream)
        st->req_ended = 1;
    if (st->h1)
        tt_up_h1_push(st->h1);
    else if (st->ah)
        tt_up_h2_push(st);
}

static size_t up_pump(struct tt_ts *ts) { return tt_up_pump(tt_ts_priv(ts)); }

static void up_close(struct tt_ts *ts, uint32_t code, unsigned flags)
{
    struct up_stream *st = tt_ts_priv(ts);
    st->t_open = 0;
    tt_timer_stop(st->up->loop, &st->head_timer);
    /* Request bytes still held: the tunnel server gives their window back
     * to p once this returns. */
    tt_buf_consume(&st->req_pend, tt_buf_len(&st->req_pend));
    if (st->h1)
        tt_up_h1_stream_closed(st, code);
    else if (st->a_open)
        tt_up_h2_stream_closed(st, code, flags);
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

void tt_upstream_free(struct tt_upstream *up)
{
    if (!up)
        return;
    tt_up_h1_free_all(up);
    int h2_left = tt_up_h2_free_all(up);
    /* A lookup still running finishes alone in its thread. */
    tt_resolve_cancel(up->res);
    up->res = NULL;
    if (up->ai)
        freeaddrinfo(up->ai);
    up->ai = NULL;
    /* Records of h2c connections still point here: they and it are left
     * to the process's end. */
    if (!h2_left)
        tt_mem_free(up);
}
