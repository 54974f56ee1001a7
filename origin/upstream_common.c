/*
 * c --upstream: what the HTTP/1.1 side (upstream_h1.c) and the h2c side
 * (upstream_h2c.c) share, below both: the tunnel half of the stream record
 * (answers of our own, the app's head, 1xx and body towards p, and the pump
 * that moves what waits), and the app's addresses and connecting to them.
 *
 * Calls go down only: upstream.c calls the two sides, the sides call this
 * file, and this file calls back up only through the side's struct
 * tt_up_app (upstream_common.h), which tt_upstream_new picks by scheme.
 * The overview of the mode (the join, backpressure, lifetime, failures) is
 * at the top of upstream.c.
 */
#include "origin/upstream_common.h"

#include "codec/buf.h"
#include "proto/log.h"
#include "proto/resolve.h"

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
#include <unistd.h>

/* ---- the stream record: the tunnel side ------------------------------ */

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
    if (sent && st->up->app->credit)
        st->up->app->credit(st, sent);
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
    /* HTTP/1.1: an app socket paused for lack of room reads again. */
    if (st->up->app->resume)
        st->up->app->resume(st);
    tt_up_release(st);
    return sent;
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
    up->app->resolved(up, why);
}
