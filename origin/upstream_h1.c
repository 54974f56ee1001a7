/*
 * c --upstream http://: the HTTP/1.1 side of a forwarded request, over a
 * small pool of keep-alive connections to the app, one request at a time
 * on each (RFC 9112 §9.3).  The stream record and what it means to p are
 * upstream_common.c's; this file writes the request (head, body with Content-
 * Length or in chunks, trailers), parses the response with llhttp, and
 * keeps, reuses, retries (once, a request without a body on a kept-alive
 * connection the app closed: RFC 9112 §9.3.1) or closes the connection.
 */
#include "origin/upstream_h1.h"

#include "codec/buf.h"
#include "proto/http1.h"
#include "proto/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "llhttp.h"

#include <sys/uio.h>

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
                                            tt_ts_room(tt_up_ts(st)) == 0));
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
        tt_up_release(st);
}

void tt_up_h1_abort(struct up_h1 *c)
{
    struct up_stream *st = h1_detach(c);
    h1_free(c);
    if (st)
        tt_up_release(st);
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
    tt_up_hold(st);
    tt_up_release(st); /* the app side's hold, taken in h1_attach */
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
                tt_up_release(st);
                return;
            }
            if (n)
                h1_free(n);
        }
        tt_up_answer(st, 502, "the app at %s %s", up->url.hostport, why);
    } else if (st->t_open && !st->end_sent) {
        tt_log_warn("stream %" PRIu32 ": the app at %s %s mid-response: resetting the stream",
                    st->sid, up->url.hostport, why);
        tt_up_reset(st, TT_H2_INTERNAL_ERROR);
    }
    tt_up_release(st);
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
void tt_up_h1_push(struct up_h1 *c)
{
    struct up_stream *st = c->st;
    if (c->state != H1_BUSY || !st || c->dead)
        return;
    tt_up_hold(st);
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
            tt_ts_consume(tt_up_ts(st), left);
        }
    }
    if (c->final_queued && tt_buf_len(&c->out) == 0)
        c->req_done = 1;
    if (tt_buf_len(&st->req_pend) == 0)
        tt_buf_shrink(&st->req_pend);
    h1_update_io(c);
done:
    tt_up_release(st);
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
            tt_up_interim(st, c->status, h, k);
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
    tt_up_head(st, h, n, end);
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
        (void)tt_up_body(c->st, (const uint8_t *)at, len);
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
                if (!tt_up_name_is(&h[i], "content-length") && !tt_up_name_is(&h[i], "host"))
                    h[k++] = h[i];
            if (k && tt_up_hdrs_copy(&st->resp_trailers, h, k))
                tt_up_reset(st, TT_H2_INTERNAL_ERROR);
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
            size_t room = tt_ts_room(tt_up_ts(st));
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
            tt_up_hold(st);
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
                tt_up_pump(st);
                if (!req_done && st->t_open && !st->req_ended && st->end_sent) {
                    /* The app answered before the request's end: p need not
                     * send the rest (RFC 9113 §8.1). */
                    tt_up_reset(st, TT_H2_NO_ERROR);
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
            tt_up_pump(st);
        }
        if (st)
            tt_up_release(st);
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
    tt_up_h1_push(c);
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
        int err = tt_up_connect_result(c->fd);
        if (err == 0) {
            h1_on_connected(c);
            return;
        }
        tt_io_stop(c->up->loop, &c->io);
        close(c->fd);
        c->tries++;
        c->fd = tt_up_connect(c->up, &c->tries, &c->idx);
        if (c->fd < 0 || tt_io_start(c->up->loop, &c->io, c->fd, TT_IO_WRITE, h1_on_io, c) < 0) {
            char why[120];
            snprintf(why, sizeof why, "refused the connection (%s)", strerror(err));
            h1_fail(c, why);
        }
        return;
    }
    if (events & TT_IO_WRITE)
        tt_up_h1_push(c);
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
    c->fd = tt_up_connect(up, &c->tries, &c->idx);
    if (c->fd == UP_RESOLVING) {
        /* The lookup has its own timeout; the connect timer starts with
         * the connect (h1_resolved). */
        c->fd = -1;
        c->resolving = 1;
        return c;
    }
    if (c->fd < 0 || tt_io_start(up->loop, &c->io, c->fd, TT_IO_WRITE, h1_on_io, c) < 0) {
        /* Failing at once: answered by the caller's tt_up_answer through
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
    c->fd = tt_up_connect(up, &c->tries, &c->idx);
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
    tt_up_hold(st); /* the app side's hold */
    c->chunk_left = 0;
    c->chunk_open = c->final_queued = c->req_done = c->got_bytes = c->msg_done = 0;
    c->nf = 0;
    c->status = 0;
    if (c->state == H1_BUSY)
        tt_up_h1_push(c);
    return 0;
}

void tt_up_h1_open(struct up_stream *st, const struct tt_h2_headers *h)
{
    struct tt_upstream *up = st->up;
    enum tt_http1_body body = h->end_stream           ? TT_HTTP1_BODY_NONE
                                 : h->content_length >= 0 ? TT_HTTP1_BODY_LENGTH
                                                          : TT_HTTP1_BODY_CHUNKED;
    st->chunked = body == TT_HTTP1_BODY_CHUNKED;
    struct up_h1 *c = up->idle;
    if (c) {
        h1_list_remove(&up->idle, c);
        up->nidle--;
        tt_timer_stop(up->loop, &c->timer);
        c->state = H1_BUSY;
        h1_list_add(&up->busy_list, c);
    } else if (!(c = h1_new_conn(up))) {
        tt_up_answer(st, 502, "the app at %s refused the connection (%s)", up->url.hostport,
                  strerror(errno));
        return;
    }
    tt_buf_consume(&c->out, tt_buf_len(&c->out));
    if (tt_http1_request_head(h, body, up->url.hostport, &c->out)) {
        h1_free(c);
        tt_up_answer(st, 400, "the request cannot be written as HTTP/1.1");
        return;
    }
    if (c->reused && body == TT_HTTP1_BODY_NONE &&
        tt_buf_append(&st->retry_head, tt_buf_data(&c->out), tt_buf_len(&c->out)))
        tt_buf_free(&st->retry_head); /* no retry then */
    h1_attach(c, st);
}

/* The app's name lookup ended (tt_up_app.resolved): HTTP/1.1 connections
 * that waited for it connect now, or fail. */
static void h1_on_resolved(struct tt_upstream *up, const char *why)
{
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
}

void tt_up_h1_stream_closed(struct up_stream *st, uint32_t code)
{
    struct up_h1 *c = st->h1;
    if (code == TT_H2_NO_ERROR && st->end_sent && c->req_done) {
        /* A head that ended the stream (HEAD, 204, 304) while the parser
         * is still in the response: the connection finishes it alone and
         * may then be reused. */
        h1_detach(c);
        tt_up_release(st);
    } else {
        /* Mid-exchange: an HTTP/1.1 connection cannot be reused. */
        tt_up_h1_abort(c);
    }
}

void tt_up_h1_free_all(struct tt_upstream *up)
{
    while (up->idle)
        h1_free(up->idle);
    while (up->busy_list)
        h1_free(up->busy_list);
}

/* tt_up_pump moved what waited for p: a socket paused for lack of room in
 * the tunnel is read again. */
static void h1_resume(struct up_stream *st)
{
    if (st->h1)
        h1_update_io(st->h1);
}

const struct tt_up_app tt_up_h1_app = {
    .credit = NULL, /* an HTTP/1.1 app has no window: a paused read holds it */
    .resume = h1_resume,
    .resolved = h1_on_resolved,
};
