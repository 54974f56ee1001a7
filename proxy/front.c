/*
 * The client front (HTTP/1.1, llhttp) and the live half of the bridge.
 *
 * One client connection has at most one request in flight: llhttp is paused
 * at the end of each message and resumed once the response is written, so
 * pipelined requests wait in the connection's input buffer (RFC 9112 §9.3.2
 * answers in order; doing one at a time is the simple way to keep it).
 *
 * Flow, request side: the head's fields are kept (offsets into one buffer)
 * until the response head arrives, so a request can be opened again on
 * another tunnel.  Body bytes from llhttp go straight into DATA when the
 * stream's send window allows; what does not fit waits in a small buffer and
 * the client socket is not read until it drains (backpressure toward the
 * client).
 *
 * Flow, response side: DATA is written to the client socket from the codec
 * callback when the socket takes it; what it does not take waits in the
 * output buffer.  tt_h2_consume() is called only for DATA bytes that reached
 * the socket, so the tunnel window is what bounds p's memory per stream.
 *
 * HTTPS (--https-listen): the same connection object with a TLS connection
 * in `tls`.  The handshake runs on the loop (FR_HANDSHAKE_TIMEOUT_MS at
 * most, so a client that stalls in it costs a timer, never a wait); ALPN h2
 * hands the connection to front_h2.c, anything else stays here.  Reads and
 * writes then go through tt_tls_read/tt_tls_write: a write gathers the
 * pieces in `out` first (one SSL_write, so a small response is one record),
 * and reads are resumed from a deferred call while OpenSSL holds decrypted
 * bytes (epoll cannot see those).  Every TLS branch is on `cl->is_tls`, so
 * the plaintext path keeps its syscalls and copies as they were.
 */
#include "proxy.h"

#include "llhttp.h"
#include "proto/log.h"
#include "proto/text.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#define FR_READ_CHUNK (64 * 1024)
#define FR_IN_MAX (128 * 1024)     /* unparsed input kept (pipelined requests) */
#define FR_HEAD_MAX (64 * 1024)    /* request line + fields: more -> 431 */
#define FR_URL_MAX (16 * 1024)     /* request target: more -> 414 */
#define FR_FIELDS_MAX 128          /* fields: more -> 431 */
#define FR_OUT_MAX (6u << 20)      /* stream window (4 MiB, main.c) + heads + framing, with room */
#define FR_HEAD_TIMEOUT_MS 10000   /* a request head must be complete within this */
#define FR_HANDSHAKE_TIMEOUT_MS 10000 /* a TLS handshake must be done within this */
#define FR_LINGER_MS 2000          /* read and drop after our last byte, then close */
#define FR_REPLAY_MAX (64 * 1024) /* request body kept for a refused stream */
#define FR_RETRIES 4               /* extra attempts to open a request on a tunnel */
#define FR_METHOD_NONE 0xff        /* rq->method before the head is parsed (llhttp's 0 is DELETE) */

enum fr_timer_kind {
    FR_T_NONE = 0,
    FR_T_HEAD,
    FR_T_IDLE,
    FR_T_LINGER,
    FR_T_RETRY,
};

struct fr_field {
    uint32_t no, nl, vo, vl;
};

struct tt_px_req {
    enum tt_px_front_kind kind; /* first: see tt_px_sud_is_h2 */
    struct tt_px_client *cl;
    struct tt_px_tunnel *tun; /* the stream's tunnel; NULL when not bound */
    uint32_t sid;
    struct tt_link blk; /* on tun->blocked */

    /* The head as received (offsets into `head`). */
    tt_buf head;
    struct fr_field f[FR_FIELDS_MAX];
    uint32_t nf;
    uint32_t url_len;
    uint8_t last_was_value;
    uint8_t in_head; /* between message begin and headers complete */
    uint8_t method;
    uint8_t minor;

    /* Routing. */
    char name[TT_PX_NAME_MAX + 1];

    uint8_t active;        /* a request is being handled */
    uint8_t has_body;      /* the request has a body (CL > 0 or chunked) */
    uint8_t body_done;     /* the request body ended (message complete) */
    uint8_t end_sent;      /* END_STREAM sent to c */
    uint8_t local;         /* we answer ourselves: the body is dropped */
    uint8_t expect;        /* Expect: 100-continue */
    uint8_t sent_continue;
    uint8_t te_trailers;
    uint8_t keepalive;
    uint8_t resp_head;     /* the response head is on its way to the client */
    uint8_t interim;       /* 1xx heads passed on (TT_PX_MAX_INTERIM at most) */
    uint8_t resp_done;     /* the whole response is in `out` */
    uint8_t resp_chunked;
    uint8_t resp_nobody;
    uint8_t refused;       /* the peer refused it (REFUSED_STREAM / GOAWAY) */
    uint8_t attempts;
    uint64_t avoid;        /* serial of the tunnel that lost this request */
    uint64_t body_sent;    /* request body bytes handed to the tunnel */
    tt_buf body;           /* request body bytes waiting for window */
    tt_buf replay;         /* body bytes sent before the response head, kept
                              (up to FR_REPLAY_MAX) to send again if refused */
    uint8_t replay_lost;   /* more was sent than kept: no replay */
    size_t unconsumed;     /* response DATA bytes in `out`, window not returned */
    int status;
    uint64_t bytes;        /* response body bytes written */
    uint64_t start_ms;
};

struct tt_px_client {
    struct tt_px_server *srv;
    struct tt_link link; /* on srv->client_list */
    struct tt_io io;
    struct tt_timer timer;
    struct tt_defer work;
    struct tt_defer wdefer; /* writes a response head held back in `out` */
    enum fr_timer_kind tkind;
    llhttp_t parser;
    int fd;
    uint8_t dead;      /* gone: freed by the deferred work */
    uint8_t paused;    /* llhttp paused at a message end */
    uint8_t read_eof;
    uint8_t read_err;  /* the read that ended it failed (a reset): gone */
    uint8_t closing;   /* close once `out` is written */
    uint8_t lingering;
    uint8_t notify_wait; /* close_notify waits for room in the socket */
    uint8_t parse_err;
    uint8_t sniffed;   /* the first bytes were looked at (HTTP/2 or not) */
    uint8_t wblocked;  /* the socket took less than asked: wait for EPOLLOUT */
    uint8_t is_tls;      /* came in on the HTTPS front */
    uint8_t handshaking; /* TLS handshake not finished */
    uint8_t tls_wwr;     /* SSL_write wants the socket readable first */
    struct tt_tls_conn tls; /* ssl NULL: plaintext (or handed over) */
    struct tt_defer rdefer; /* TLS: reads what OpenSSL already holds */
    int err_status; /* our own refusal from an llhttp callback */
    const char *err_why;
    /* RFC 9112 §7.1: chunk-data is followed by CRLF.  llhttp 8.1 steps
     * over those two bytes without looking at them, so we do: crlf_need is
     * how many of them are still to be seen (they may come in a later
     * read), exec_end the end of the input llhttp is running on. */
    uint8_t crlf_need;
    const char *exec_end;
    tt_buf in;
    tt_buf out;
    char peer[64];
    char ip[48];
    struct tt_px_req req;
};

static const llhttp_settings_t *fr_settings(void);
static void fr_update_io(struct tt_px_client *cl);
static void fr_flush(struct tt_px_client *cl);
static void fr_abort(struct tt_px_client *cl, const char *why);
static void fr_parse(struct tt_px_client *cl);
static void fr_req_finished(struct tt_px_client *cl);
static int fr_open_stream(struct tt_px_req *rq);

static const char *fr_h(const struct tt_px_req *rq, uint32_t off)
{
    return (const char *)tt_buf_data(&rq->head) + off;
}

/* --- Tunnel binding ---------------------------------------------------------- */

static void fr_unblock(struct tt_px_req *rq) { tt_link_remove(&rq->blk); }

static void fr_block(struct tt_px_req *rq)
{
    if (rq->tun)
        tt_list_push(&rq->tun->blocked, &rq->blk);
}

static struct tt_h2_conn *fr_conn(const struct tt_px_req *rq)
{
    return rq->tun && rq->tun->sess ? tt_session_h2(rq->tun->sess) : NULL;
}

static void fr_detach(struct tt_px_req *rq)
{
    fr_unblock(rq);
    if (rq->tun) {
        tt_px_pool_leave(&rq->tun, &rq->avoid);
        rq->sid = 0;
    }
}

/* Gives back window for response bytes still buffered and resets the stream:
 * the client is gone or will not get them.  RST_STREAM(CANCEL): RFC 9113
 * §8.7 (the client is no longer interested). */
static void fr_cancel_stream(struct tt_px_req *rq)
{
    struct tt_h2_conn *c = fr_conn(rq);
    if (!c) {
        fr_detach(rq);
        return;
    }
    struct tt_px_tunnel *t = rq->tun;
    uint32_t sid = rq->sid;
    if (rq->unconsumed) {
        tt_h2_consume(c, sid, rq->unconsumed);
        rq->unconsumed = 0;
    }
    tt_h2_stream_set_user(c, sid, NULL);
    fr_detach(rq);
    tt_h2_submit_rst(c, sid, TT_H2_CANCEL);
    tt_session_flush(t->sess);
}

/* --- Output -------------------------------------------------------------------- */

static void fr_client_gone(struct tt_px_client *cl, const char *why);

/* Writes iov to the socket now unless the socket is known to be full,
 * behind whatever `out` holds (a response head held back so that it leaves
 * with the first DATA in one writev: one syscall per small response instead
 * of two); buffers the rest.  Returns how many of iov's bytes reached the
 * socket, or -1 when the client is gone. */
static ssize_t fr_send_tls(struct tt_px_client *cl, struct iovec *iov, int iovcnt);

static ssize_t fr_send(struct tt_px_client *cl, struct iovec *iov, int iovcnt)
{
    if (cl->is_tls)
        return fr_send_tls(cl, iov, iovcnt);
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    size_t done = 0;
    size_t pend = tt_buf_len(&cl->out);
    if (!cl->dead && !cl->wblocked && iovcnt <= 4) {
        struct iovec v[5];
        int k = 0;
        if (pend)
            v[k++] = (struct iovec){tt_buf_data(&cl->out), pend};
        for (int i = 0; i < iovcnt; i++)
            v[k++] = iov[i];
        ssize_t n;
        do
            n = writev(cl->fd, v, k);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            fr_client_gone(cl, strerror(errno));
            return -1;
        }
        size_t w = n > 0 ? (size_t)n : 0;
        if (w < pend + total)
            cl->wblocked = 1;
        /* `out` holds only heads and framing here (DATA waits in it only
         * while wblocked), so no window is owed for what leaves it. */
        size_t from_out = w < pend ? w : pend;
        tt_buf_consume(&cl->out, from_out);
        done = w - from_out;
        if (pend && tt_buf_len(&cl->out) == 0)
            fr_update_io(cl); /* no EPOLLOUT wanted for the head any more */
    }
    if (done < total) {
        size_t skip = done;
        for (int i = 0; i < iovcnt; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            if (tt_buf_append(&cl->out, (const uint8_t *)iov[i].iov_base + skip,
                              iov[i].iov_len - skip) != 0) {
                fr_client_gone(cl, "output buffer full");
                return -1;
            }
            skip = 0;
        }
        fr_update_io(cl);
    }
    return (ssize_t)done;
}

/* TLS: writes `out` until it is empty or the socket is full.  Returns the
 * bytes written, or -1 when the client is gone.  After a WANT the next call
 * starts from the same bytes (only appended to since), as OpenSSL asks. */
static ssize_t fr_tls_write_out(struct tt_px_client *cl)
{
    size_t done = 0;
    while (tt_buf_len(&cl->out) > 0) {
        ssize_t n = tt_tls_write(&cl->tls, tt_buf_data(&cl->out), tt_buf_len(&cl->out));
        if (n > 0) {
            tt_buf_consume(&cl->out, (size_t)n);
            done += (size_t)n;
            continue;
        }
        if (n == TT_TLS_WANT_WRITE || n == TT_TLS_WANT_READ) {
            cl->wblocked = 1;
            cl->tls_wwr = n == TT_TLS_WANT_READ;
            break;
        }
        fr_client_gone(cl, cl->tls.err[0] ? cl->tls.err : "TLS write failed");
        return -1;
    }
    return (ssize_t)done;
}

/* fr_send over TLS: the pieces are gathered behind what `out` holds and
 * written in one go (one copy, TLS only: OpenSSL encrypts from one buffer
 * anyway, and one SSL_write makes one record of a small response). */
static ssize_t fr_send_tls(struct tt_px_client *cl, struct iovec *iov, int iovcnt)
{
    size_t pend = tt_buf_len(&cl->out);
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len && tt_buf_append(&cl->out, iov[i].iov_base, iov[i].iov_len) != 0) {
            fr_client_gone(cl, "output buffer full");
            return -1;
        }
        total += iov[i].iov_len;
    }
    size_t done = 0;
    if (!cl->dead && !cl->wblocked) {
        ssize_t w = fr_tls_write_out(cl);
        if (w < 0)
            return -1;
        /* As in fr_send: what leaves first is `out`'s old part (heads and
         * framing), then the new bytes. */
        size_t from_out = (size_t)w < pend ? (size_t)w : pend;
        done = (size_t)w - from_out;
        if (done > total)
            done = total;
    }
    fr_update_io(cl);
    return (ssize_t)done;
}

static int fr_send_buf(struct tt_px_client *cl, const void *p, size_t len)
{
    struct iovec iov = {(void *)p, len};
    return fr_send(cl, &iov, 1) < 0 ? -1 : 0;
}

/* --- Access log ------------------------------------------------------------------- */

static void fr_access_log(struct tt_px_client *cl)
{
    struct tt_px_req *rq = &cl->req;
    if (!rq->active)
        return;
    uint64_t now = tt_loop_now(cl->srv->loop);
    int ul = (int)(rq->url_len > 512 ? 512 : rq->url_len);
    tt_log_info("access client=%s method=%s path=%.*s status=%d bytes=%llu dur_ms=%llu origin=%s%s",
                cl->peer,
                rq->method == FR_METHOD_NONE ? "-" : llhttp_method_name((llhttp_method_t)rq->method),
                ul,
                ul ? fr_h(rq, 0) : "", rq->status, (unsigned long long)rq->bytes,
                (unsigned long long)(now - rq->start_ms), rq->name[0] ? rq->name : "-",
                cl->is_tls ? " tls=1" : "");
    rq->active = 0;
}

/* --- Lifetime -------------------------------------------------------------------- */

static void fr_timer_set(struct tt_px_client *cl, enum fr_timer_kind k, uint64_t ms)
{
    cl->tkind = k;
    if (k == FR_T_NONE)
        tt_timer_stop(cl->srv->loop, &cl->timer);
    else
        tt_timer_start(cl->srv->loop, &cl->timer, ms);
}

static void fr_req_reset(struct tt_px_req *rq)
{
    fr_unblock(rq);
    tt_buf_consume(&rq->head, tt_buf_len(&rq->head));
    tt_buf_consume(&rq->body, tt_buf_len(&rq->body));
    rq->nf = 0;
    rq->url_len = 0;
    rq->method = FR_METHOD_NONE;
    rq->last_was_value = 0;
    rq->in_head = 0;
    rq->name[0] = 0;
    rq->active = rq->has_body = rq->body_done = rq->end_sent = rq->local = 0;
    rq->expect = rq->sent_continue = rq->te_trailers = rq->keepalive = 0;
    rq->resp_head = rq->resp_done = rq->resp_chunked = rq->resp_nobody = rq->interim = 0;
    rq->refused = rq->attempts = 0;
    rq->avoid = 0;
    rq->body_sent = 0;
    tt_buf_consume(&rq->replay, tt_buf_len(&rq->replay));
    rq->replay_lost = 0;
    rq->unconsumed = 0;
    rq->status = 0;
    rq->bytes = 0;
}

static void fr_free(struct tt_px_client *cl)
{
    struct tt_px_server *srv = cl->srv;
    if (cl->req.tun)
        fr_cancel_stream(&cl->req);
    tt_defer_cancel(srv->loop, &cl->wdefer);
    tt_defer_cancel(srv->loop, &cl->rdefer);
    if (cl->tls.ssl) /* not reached through fr_kill (a failed start) */
        tt_tls_conn_free(&cl->tls);
    tt_buf_free(&cl->in);
    tt_buf_free(&cl->out);
    tt_buf_free(&cl->req.head);
    tt_buf_free(&cl->req.body);
    tt_buf_free(&cl->req.replay);
    tt_link_remove(&cl->link);
    srv->clients--;
    tt_mem_free(cl);
}

static void fr_work(struct tt_loop *loop, struct tt_defer *d);

/* Ends the connection now (no lingering): the socket is closed at once, the
 * struct is freed from the deferred work so that callers up the stack (a
 * codec callback) never see it vanish. */
static void fr_kill(struct tt_px_client *cl)
{
    if (cl->dead)
        return;
    cl->dead = 1;
    tt_io_stop(cl->srv->loop, &cl->io);
    tt_timer_stop(cl->srv->loop, &cl->timer);
    if (cl->tls.ssl) {
        /* close_notify unless the connection failed or was cut
         * (tt_tls_abort) or it was sent already (fr_close_after). */
        tt_tls_conn_free(&cl->tls);
        cl->fd = -1;
    } else if (cl->fd >= 0) {
        close(cl->fd);
        cl->fd = -1;
    }
    tt_defer_queue(cl->srv->loop, &cl->work);
}

static void fr_client_gone(struct tt_px_client *cl, const char *why)
{
    struct tt_px_req *rq = &cl->req;
    if (cl->dead)
        return;
    tt_log_debug("client gone client=%s: %s", cl->peer, why);
    if (rq->active) {
        if (!rq->resp_head)
            rq->status = 499; /* nginx's word for "client closed request" */
        fr_access_log(cl);
    }
    fr_kill(cl);
}

/* Closes after `out` is written: shut our side, read and drop what the
 * client still sends for a moment (so a reset does not eat our last bytes,
 * RFC 9112 §9.6), then close. */
static void fr_close_after(struct tt_px_client *cl)
{
    cl->closing = 1;
    if (tt_buf_len(&cl->out) == 0 && !cl->lingering && !cl->dead) {
        /* RFC 9112 §9.8: a clean TLS end, so a close-delimited body can be
         * told from a cut one; a full socket delays it (the linger timer
         * still bounds the wait). */
        if (cl->is_tls && tt_tls_close_notify(&cl->tls) == TT_TLS_WANT_WRITE) {
            if (!cl->notify_wait)
                fr_timer_set(cl, FR_T_LINGER, FR_LINGER_MS);
            cl->notify_wait = 1;
            fr_update_io(cl);
            return;
        }
        cl->notify_wait = 0;
        cl->lingering = 1;
        shutdown(cl->fd, SHUT_WR);
        fr_timer_set(cl, FR_T_LINGER, FR_LINGER_MS);
    }
    fr_update_io(cl);
}

/* The response cannot complete: cut the connection before the body's end
 * (never a final chunk), after what is already buffered. */
static void fr_abort(struct tt_px_client *cl, const char *why)
{
    struct tt_px_req *rq = &cl->req;
    tt_log_debug("response aborted client=%s: %s", cl->peer, why);
    fr_access_log(cl);
    rq->keepalive = 0;
    if (rq->tun)
        fr_cancel_stream(rq);
    /* No close_notify after a cut response: an "incomplete close" (RFC 9112
     * §9.8) tells the client the body is not whole. */
    tt_tls_abort(&cl->tls);
    cl->closing = 1;
    /* Buffered bytes may still go; no lingering read, just close after. */
    fr_update_io(cl);
    if (tt_buf_len(&cl->out) == 0)
        fr_kill(cl);
}

/* --- Local answers ----------------------------------------------------------------- */

static void fr_local(struct tt_px_client *cl, int status, const char *body, int retry_after)
{
    struct tt_px_req *rq = &cl->req;
    char head[512], ra[16];
    size_t bl = strlen(body);
    snprintf(ra, sizeof(ra), "%d", retry_after);
    rq->local = 1;
    rq->status = status;
    rq->resp_head = 1;
    /* The body of a request we answer ourselves is not read: close after. */
    if (rq->has_body && !rq->body_done)
        rq->keepalive = 0;
    if (cl->srv->draining)
        rq->keepalive = 0;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n%s%s%s%s\r\n",
                     status, tt_http_reason(status), bl,
                     retry_after >= 0 ? "retry-after: " : "", retry_after >= 0 ? ra : "",
                     retry_after >= 0 ? "\r\n" : "",
                     rq->keepalive ? "" : "connection: close\r\n");
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, rq->method == HTTP_HEAD ? 0 : bl}};
    if (fr_send(cl, iov, 2) < 0)
        return;
    rq->bytes = iov[1].iov_len;
    rq->resp_done = 1;
    fr_req_finished(cl);
}

/* A request that llhttp or our limits refused: answer and close. */
static void fr_reject(struct tt_px_client *cl, int status, const char *why)
{
    struct tt_px_req *rq = &cl->req;
    tt_log_debug("bad request client=%s status=%d: %s", cl->peer, status, why);
    if (!rq->active) {
        rq->active = 1;
        rq->start_ms = tt_loop_now(cl->srv->loop);
    }
    rq->keepalive = 0;
    if (rq->resp_head) {
        /* Our answer has begun: all that is left is to cut it short. */
        fr_abort(cl, why);
        return;
    }
    /* No response head went out yet, so the client can still get its 400
     * (RFC 9112 §6.3, §7.1); the origin's half-sent request is reset. */
    if (rq->tun)
        fr_cancel_stream(rq);
    if (cl->tkind == FR_T_RETRY)
        fr_timer_set(cl, FR_T_NONE, 0);
    char body[160];
    snprintf(body, sizeof(body), "%s\n", why);
    fr_local(cl, status, body, -1);
}

/* --- Request side ------------------------------------------------------------------ */

static int fr_is_idempotent(uint8_t m)
{
    /* RFC 9110 §9.2.2 */
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_TRACE ||
           m == HTTP_PUT || m == HTTP_DELETE;
}

/* Notes body bytes handed to the tunnel; a copy is kept until the response
 * head so a refused stream (RFC 9113 §8.7) can be sent again elsewhere. */
static void fr_body_sent(struct tt_px_req *rq, const void *p, size_t n)
{
    rq->body_sent += n;
    if (!rq->replay_lost && (rq->resp_head || tt_buf_len(&rq->replay) + n > FR_REPLAY_MAX ||
                             tt_buf_append(&rq->replay, p, n) != 0)) {
        rq->replay_lost = 1;
        tt_buf_free(&rq->replay);
    }
}

/* Puts the kept body bytes back in front of the unsent ones.  Returns 0, or
 * -1 when they were not all kept. */
static int fr_body_rewind(struct tt_px_req *rq)
{
    if (rq->body_sent == 0)
        return 0;
    if (rq->replay_lost)
        return -1;
    if (tt_buf_append(&rq->replay, tt_buf_data(&rq->body), tt_buf_len(&rq->body)) != 0)
        return -1;
    tt_buf tmp = rq->body;
    rq->body = rq->replay;
    rq->replay = tmp;
    tt_buf_consume(&rq->replay, tt_buf_len(&rq->replay));
    rq->body_sent = 0;
    rq->end_sent = 0;
    return 0;
}

/* Sends buffered body bytes while the window allows; END_STREAM once the body
 * is complete. */
static void fr_pump_body(struct tt_px_req *rq)
{
    struct tt_h2_conn *c = fr_conn(rq);
    if (!c || rq->end_sent || rq->local)
        return;
    int sent_any = 0;
    while (tt_buf_len(&rq->body) > 0) {
        size_t room = tt_h2_data_room(c, rq->sid);
        if (room == 0)
            break;
        size_t len = tt_buf_len(&rq->body);
        if (len > room)
            len = room;
        int end = rq->body_done && len == tt_buf_len(&rq->body);
        ssize_t n = tt_h2_send_data(c, rq->sid, tt_buf_data(&rq->body), len, end);
        if (n < 0) {
            fr_abort(rq->cl, "tunnel refused request body");
            return;
        }
        if (n == 0)
            break;
        sent_any = 1;
        fr_body_sent(rq, tt_buf_data(&rq->body), (size_t)n);
        tt_buf_consume(&rq->body, (size_t)n);
        if (end && tt_buf_len(&rq->body) == 0)
            rq->end_sent = 1;
    }
    if (tt_buf_len(&rq->body) == 0) {
        tt_buf_shrink(&rq->body);
        if (rq->body_done && !rq->end_sent) {
            ssize_t n = tt_h2_send_data(c, rq->sid, NULL, 0, 1);
            if (n >= 0) {
                rq->end_sent = 1;
                sent_any = 1;
            }
        }
        fr_unblock(rq);
    } else {
        fr_block(rq);
    }
    if (sent_any && rq->tun)
        tt_session_flush(rq->tun->sess);
}

/* Maps the head and opens it on a tunnel of the request's pool.  Returns 0
 * when opened, 1 when no tunnel could take it now, -1 on a bad head (an
 * answer was sent). */
static int fr_open_stream(struct tt_px_req *rq)
{
    struct tt_px_client *cl = rq->cl;
    struct tt_px_server *srv = cl->srv;
    const struct tt_px_config *cfg = srv->cfg;

    struct tt_px_field fl[FR_FIELDS_MAX];
    const char *host = NULL;
    size_t host_len = 0;
    for (uint32_t i = 0; i < rq->nf; i++) {
        fl[i].name = fr_h(rq, rq->f[i].no);
        fl[i].name_len = rq->f[i].nl;
        fl[i].value = fr_h(rq, rq->f[i].vo);
        fl[i].value_len = rq->f[i].vl;
        /* Optional whitespace after a value is not part of it. */
        while (fl[i].value_len && (fl[i].value[fl[i].value_len - 1] == ' ' ||
                                   fl[i].value[fl[i].value_len - 1] == '\t'))
            fl[i].value_len--;
        if (fl[i].name_len == 4 && strncasecmp(fl[i].name, "host", 4) == 0) {
            host = fl[i].value;
            host_len = fl[i].value_len;
        }
    }
    /* Absolute form (RFC 9112 §3.2.2): its authority wins over Host.  The
     * target was checked in fr_on_headers_complete. */
    struct tt_px_target tg;
    (void)tt_px_target_split(fr_h(rq, 0), rq->url_len, &tg);
    if (tg.authority) {
        host = tg.authority;
        host_len = tg.authority_len;
    }
    const char *url = tg.path;
    size_t url_len = tg.path_len;

    struct tt_px_route_cfg rc = {
        .domain = cfg->domain,
        .path_prefix = cfg->path_prefix,
        .default_name = cfg->default_name,
        .single_name = tt_px_registry_single_name(&srv->reg),
    };
    struct tt_px_route rt;
    tt_px_route(&rc, host, host_len, url, url_len, &rt);
    if (!rt.name) {
        fr_local(cl, 503, "no origin is connected for this request\n", 5);
        return -1;
    }
    size_t nl = rt.name_len > TT_PX_NAME_MAX ? TT_PX_NAME_MAX : rt.name_len;
    memcpy(rq->name, rt.name, nl);
    rq->name[nl] = 0;

    struct tt_px_pool *pool = tt_px_registry_find(&srv->reg, rq->name, nl);
    if (!pool || pool->n == 0)
        return 1; /* before the work of mapping the head */

    char prefix[TT_PX_NAME_MAX + 256];
    size_t prefix_len = 0;
    if (rt.stripped)
        prefix_len = (size_t)snprintf(prefix, sizeof(prefix), "%s%s", cfg->path_prefix, rq->name);

    struct tt_header hdrs[FR_FIELDS_MAX + 12];
    char scratch[FR_HEAD_MAX + 1024];
    struct tt_px_map_in in = {
        .method = llhttp_method_name((llhttp_method_t)rq->method),
        .path = rt.path,
        .path_len = rt.path_len,
        .host = host,
        .host_len = host_len,
        .scheme = cl->is_tls ? "https" : "http",
        .client_ip = cl->ip,
        .prefix = rt.stripped ? prefix : NULL,
        .prefix_len = prefix_len,
        .f = fl,
        .n = rq->nf,
    };
    in.method_len = strlen(in.method);
    struct tt_px_map_out out = {
        .hdrs = hdrs, .cap = sizeof(hdrs) / sizeof(hdrs[0]),
        .scratch = scratch, .scratch_cap = sizeof(scratch),
    };
    if (tt_px_map_request(&in, &out) < 0) {
        fr_reject(cl, 431, "request header fields too large");
        return -1;
    }
    rq->te_trailers = (uint8_t)out.te_trailers;
    if (out.expect_other) {
        /* RFC 9110 §10.1.1: an expectation we cannot meet MAY get 417. */
        fr_local(cl, 417, "only Expect: 100-continue is supported\n", -1);
        return -1;
    }
    /* RFC 9110 §10.1.1: 100-continue in an HTTP/1.0 request is ignored
     * (and §15.2: no 1xx to an HTTP/1.0 client). */
    rq->expect = (uint8_t)(out.expect_continue && rq->minor >= 1);

    int end = !rq->has_body || (rq->body_done && tt_buf_len(&rq->body) == 0);
    struct tt_px_tunnel *t = NULL;
    int64_t sid = tt_px_pool_open(pool, rq->avoid, hdrs, out.count, end, rq, &t);
    if (sid == TT_ERR_BAD_HEADER || sid == TT_ERR_HEADER_TOO_LARGE) {
        fr_reject(cl, sid == TT_ERR_BAD_HEADER ? 400 : 431,
                  sid == TT_ERR_BAD_HEADER ? "request header not allowed"
                                           : "request header fields too large");
        return -1;
    }
    if (sid <= 0)
        return 1;
    rq->tun = t;
    rq->sid = (uint32_t)sid;
    rq->end_sent = (uint8_t)end;
    if (rq->expect && !rq->sent_continue && !rq->body_done) {
        /* RFC 9110 §10.1.1: we are the one that will read the body, so we
         * say 100 once the request has a place. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        rq->sent_continue = 1;
        if (fr_send_buf(cl, cont, sizeof(cont) - 1) < 0)
            return 0;
    }
    fr_pump_body(rq);
    return 0;
}

static void fr_no_tunnel(struct tt_px_client *cl)
{
    char body[160];
    snprintf(body, sizeof(body), "no origin is connected for name '%s'\n", cl->req.name);
    fr_local(cl, 503, body, 5);
}

/* A request was refused or lost before its response head: try again or 502. */
static void fr_retry_or_fail(struct tt_px_req *rq)
{
    struct tt_px_client *cl = rq->cl;
    int safe = rq->body_sent == 0 && (fr_is_idempotent(rq->method) || rq->refused);
    if (safe && rq->attempts < FR_RETRIES && !cl->srv->draining) {
        rq->attempts++;
        /* Immediately when another member is there, else give a
         * reconnecting c a moment. */
        struct tt_px_pool *pool = tt_px_registry_find(&cl->srv->reg, rq->name, strlen(rq->name));
        int other = tt_px_pool_pick(pool, tt_px_tunnel_usable, NULL) != NULL;
        fr_timer_set(cl, FR_T_RETRY, other ? 0 : 250u << rq->attempts);
        return;
    }
    fr_local(cl, 502, "the origin's tunnel closed before it answered\n", -1);
}

/* --- llhttp callbacks ------------------------------------------------------------ */

#define FR_CL(p) ((struct tt_px_client *)(p)->data)

/* Refuses the request from inside llhttp: the status and reason are kept
 * here (llhttp replaces the reason of some callbacks' errors). */
static int fr_cb_fail(llhttp_t *p, int status, const char *why)
{
    struct tt_px_client *cl = FR_CL(p);
    cl->err_status = status;
    cl->err_why = why;
    llhttp_set_error_reason(p, why);
    return HPE_USER;
}

static int fr_on_message_begin(llhttp_t *p)
{
    struct tt_px_client *cl = FR_CL(p);
    struct tt_px_req *rq = &cl->req;
    fr_req_reset(rq);
    cl->crlf_need = 0;
    rq->active = 1;
    rq->in_head = 1;
    rq->start_ms = tt_loop_now(cl->srv->loop);
    fr_timer_set(cl, FR_T_HEAD, FR_HEAD_TIMEOUT_MS);
    return 0;
}

static int fr_head_append(llhttp_t *p, const char *at, size_t len)
{
    struct tt_px_req *rq = &FR_CL(p)->req;
    if (tt_buf_append(&rq->head, at, len) != 0)
        return fr_cb_fail(p, 431, "request header fields too large");
    return 0;
}

static int fr_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct tt_px_req *rq = &FR_CL(p)->req;
    if (rq->url_len + len > FR_URL_MAX)
        return fr_cb_fail(p, 414, "request target too long");
    rq->url_len += (uint32_t)len;
    return fr_head_append(p, at, len);
}

static int fr_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct tt_px_req *rq = &FR_CL(p)->req;
    if (!rq->in_head)
        return 0; /* trailers of a chunked request body: not forwarded */
    if (rq->nf == 0 || rq->last_was_value) {
        if (rq->nf == FR_FIELDS_MAX)
            return fr_cb_fail(p, 431, "too many request header fields");
        struct fr_field *f = &rq->f[rq->nf++];
        f->no = (uint32_t)tt_buf_len(&rq->head);
        f->nl = 0;
        f->vo = f->no;
        f->vl = 0;
        rq->last_was_value = 0;
    }
    rq->f[rq->nf - 1].nl += (uint32_t)len;
    return fr_head_append(p, at, len);
}

static int fr_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct tt_px_req *rq = &FR_CL(p)->req;
    if (!rq->in_head || rq->nf == 0)
        return 0;
    struct fr_field *f = &rq->f[rq->nf - 1];
    if (!rq->last_was_value) {
        f->vo = (uint32_t)tt_buf_len(&rq->head);
        f->vl = 0;
        rq->last_was_value = 1;
    }
    f->vl += (uint32_t)len;
    return fr_head_append(p, at, len);
}

/* 1 when a field name is `lit` (lower case, ASCII-case-insensitive). */
static int fr_name_is(const struct tt_px_req *rq, const struct fr_field *f, const char *lit,
                      size_t n)
{
    return f->nl == n && strncasecmp(fr_h(rq, f->no), lit, n) == 0;
}

/* A field's value without trailing whitespace (llhttp drops the leading). */
static size_t fr_value_len(const struct tt_px_req *rq, const struct fr_field *f)
{
    const char *v = fr_h(rq, f->vo);
    size_t n = f->vl;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n;
}

/* 1 when every coding in the Transfer-Encoding fields is chunked: we
 * decode chunked and nothing else (llhttp has checked it is the last). */
static int fr_te_only_chunked(const struct tt_px_req *rq)
{
    for (uint32_t i = 0; i < rq->nf; i++) {
        const struct fr_field *f = &rq->f[i];
        if (!fr_name_is(rq, f, "transfer-encoding", 17))
            continue;
        size_t pos = 0, n;
        const char *coding;
        while (tt_list_next(fr_h(rq, f->vo), f->vl, &pos, &coding, &n))
            if (!(n == 7 && strncasecmp(coding, "chunked", 7) == 0))
                return 0;
    }
    return 1;
}

static int fr_on_headers_complete(llhttp_t *p)
{
    struct tt_px_client *cl = FR_CL(p);
    struct tt_px_req *rq = &cl->req;
    rq->in_head = 0;
    rq->method = (uint8_t)llhttp_get_method(p);
    rq->minor = llhttp_get_http_minor(p);
    fr_timer_set(cl, FR_T_NONE, 0);

    /* RFC 9110 §15.6.6, RFC 9112 §2.3: this syntax is HTTP/1 only; an
     * "HTTP/2.0" (or 0.9) request line is a version we do not serve here. */
    if (llhttp_get_http_major(p) != 1)
        return fr_cb_fail(p, 505, "HTTP version not supported on this syntax");

    /* Request smuggling (RFC 9112 §6.3): both framings, or a framing we do
     * not know, is an error.  llhttp 8.1 runs its own Transfer-Encoding
     * checks only after this callback, when the request would already be
     * on its way to the origin, so they are made here. */
    if ((p->flags & F_CONTENT_LENGTH) && (p->flags & F_TRANSFER_ENCODING))
        return fr_cb_fail(p, 400, "Content-Length together with Transfer-Encoding");
    if ((p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED)) {
        /* RFC 9112 §6.3 (4): chunked is not the final coding: 400, close. */
        return fr_cb_fail(p, 400, "Transfer-Encoding without chunked last");
    }
    if ((p->flags & F_CHUNKED) && !fr_te_only_chunked(rq)) {
        /* RFC 9112 §6.1: a coding we do not decode (gzip, chunked) cannot
         * be forwarded as if the body were plain. */
        return fr_cb_fail(p, 501, "transfer coding not implemented");
    }
    int hosts = 0;
    for (uint32_t i = 0; i < rq->nf; i++) {
        const struct fr_field *f = &rq->f[i];
        if (!fr_name_is(rq, f, "host", 4))
            continue;
        hosts++;
        /* RFC 9112 §3.2: a Host with an invalid value -> 400. */
        if (!tt_px_authority_valid(fr_h(rq, f->vo), fr_value_len(rq, f)))
            return fr_cb_fail(p, 400, "invalid Host");
    }
    if (hosts > 1 || (hosts == 0 && rq->minor >= 1)) {
        /* RFC 9112 §3.2: exactly one Host in HTTP/1.1 */
        return fr_cb_fail(p, 400, "missing or repeated Host");
    }
    rq->has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    rq->keepalive = (uint8_t)llhttp_should_keep_alive(p);
    /* RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing may
     * be read differently by an HTTP/1.0 hop before us: close after it. */
    if ((p->flags & F_TRANSFER_ENCODING) && rq->minor == 0)
        rq->keepalive = 0;
    if (p->upgrade || cl->srv->draining)
        rq->keepalive = 0; /* we do not switch protocols: one request, then close */
    if (rq->method == HTTP_CONNECT) {
        rq->keepalive = 0;
        fr_local(cl, 405, "CONNECT is not supported here\n", -1);
        return 0;
    }
    /* RFC 9112 §3.2: origin-form, absolute-form (http/https, no userinfo,
     * a valid authority) or "*" for OPTIONS; a fragment is in no form.
     * §3: an invalid request-line SHOULD get 400. */
    struct tt_px_target tg;
    if (tt_px_target_split(fr_h(rq, 0), rq->url_len, &tg) < 0 ||
        (tg.path_len == 1 && tg.path[0] == '*' && !tg.authority && rq->method != HTTP_OPTIONS))
        return fr_cb_fail(p, 400, "invalid request target");
    if (cl->srv->draining) {
        fr_local(cl, 503, "the proxy is shutting down\n", 5);
        return 0;
    }
    if (rq->has_body)
        fr_timer_set(cl, FR_T_IDLE, cl->srv->cfg->client_idle_s * 1000u);
    int r = fr_open_stream(rq);
    if (r == 1)
        fr_no_tunnel(cl);
    return 0;
}

/* Checks the bytes after a chunk's data against the CRLF still expected
 * (RFC 9112 §7.1).  Returns 0, or -1 on any other byte. */
static int fr_crlf_check(struct tt_px_client *cl, const char *d, size_t avail)
{
    while (cl->crlf_need && avail) {
        if (*d != (cl->crlf_need == 2 ? '\r' : '\n'))
            return -1;
        cl->crlf_need--;
        d++;
        avail--;
    }
    return 0;
}

static int fr_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct tt_px_client *cl = FR_CL(p);
    struct tt_px_req *rq = &cl->req;
    if ((p->flags & F_CHUNKED) && p->content_length == 0) {
        /* This chunk's data ends here (llhttp counts it down before the
         * callback): the next two bytes must be CRLF.  Checked before the
         * bytes go anywhere; what this input lacks, fr_parse checks in the
         * next. */
        cl->crlf_need = 2;
        const char *end = at + len;
        if (fr_crlf_check(cl, end, (size_t)(cl->exec_end - end)) < 0)
            return fr_cb_fail(p, 400, "chunk data not followed by CRLF");
    }
    if (rq->local || rq->resp_done || cl->dead)
        return 0;
    struct tt_h2_conn *c = fr_conn(rq);
    size_t taken = 0;
    /* A client that stops sending its body is dropped after the idle time. */
    if (cl->tkind == FR_T_NONE || cl->tkind == FR_T_IDLE)
        fr_timer_set(cl, FR_T_IDLE, cl->srv->cfg->client_idle_s * 1000u);
    if (c && tt_buf_len(&rq->body) == 0 && !rq->end_sent) {
        size_t room = tt_h2_data_room(c, rq->sid);
        size_t n = len < room ? len : room;
        if (n) {
            ssize_t r = tt_h2_send_data(c, rq->sid, at, n, 0);
            if (r > 0) {
                taken = (size_t)r;
                fr_body_sent(rq, at, taken);
                tt_session_flush(rq->tun->sess);
            }
        }
    }
    if (taken < len) {
        if (tt_buf_append(&rq->body, at + taken, len - taken) != 0)
            return fr_cb_fail(p, 500, "out of memory");
        fr_block(rq); /* woken by window or output room */
    }
    return 0;
}

static int fr_on_message_complete(llhttp_t *p)
{
    struct tt_px_client *cl = FR_CL(p);
    struct tt_px_req *rq = &cl->req;
    rq->body_done = 1;
    if (cl->tkind == FR_T_IDLE)
        fr_timer_set(cl, FR_T_NONE, 0);
    if (rq->has_body && rq->tun && !rq->end_sent)
        fr_pump_body(rq);
    /* One request at a time: the next waits until this response is done. */
    return HPE_PAUSED;
}

static const llhttp_settings_t *fr_settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_message_begin = fr_on_message_begin;
        s.on_url = fr_on_url;
        s.on_header_field = fr_on_header_field;
        s.on_header_value = fr_on_header_value;
        s.on_headers_complete = fr_on_headers_complete;
        s.on_body = fr_on_body;
        s.on_message_complete = fr_on_message_complete;
        init = 1;
    }
    return &s;
}

/* tchar (RFC 9110 §5.6.2) */
static int fr_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* llhttp 8.1 knows a fixed list of methods and refuses any other before a
 * single callback.  A well-formed method token it does not know is a
 * method we do not implement: 501 (RFC 9110 §9.1), not 400.  `d` is the
 * input of the failed llhttp_execute: only empty lines and a valid prefix
 * of a known method can have been consumed before it. */
static int fr_method_token(const char *d, size_t len)
{
    size_t i = 0;
    while (i < len && (d[i] == '\r' || d[i] == '\n'))
        i++;
    size_t st = i;
    while (i < len && fr_tchar((unsigned char)d[i]))
        i++;
    return i > st && (i == len || d[i] == ' ');
}

/* Feeds buffered input to llhttp while a request can take it. */
static void fr_parse(struct tt_px_client *cl)
{
    struct tt_px_req *rq = &cl->req;
    while (!cl->dead && !cl->closing && !cl->paused && tt_buf_len(&cl->in) > 0 &&
           tt_buf_len(&rq->body) == 0) {
        char *d = (char *)tt_buf_data(&cl->in);
        size_t len = tt_buf_len(&cl->in);
        llhttp_errno_t e;
        /* No message under way (and llhttp pauses at each message's end):
         * whatever llhttp refuses in a request line was all in `d`. */
        int fresh = !rq->in_head && !rq->has_body;
        if (cl->crlf_need && fr_crlf_check(cl, d, len) < 0) {
            cl->err_status = 400;
            cl->err_why = "chunk data not followed by CRLF";
            e = HPE_USER;
        } else {
            cl->exec_end = d + len;
            e = llhttp_execute(&cl->parser, d, len);
        }
        if (cl->dead)
            return;
        if (e == HPE_OK) {
            tt_buf_consume(&cl->in, len);
            continue;
        }
        if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
            const char *pos = llhttp_get_error_pos(&cl->parser);
            size_t used = pos ? (size_t)(pos - d) : len;
            tt_buf_consume(&cl->in, used);
            if (e == HPE_PAUSED_UPGRADE)
                tt_buf_consume(&cl->in, tt_buf_len(&cl->in));
            cl->paused = 1;
            if (!cl->req.active || cl->req.resp_done)
                fr_req_finished(cl);
            break;
        }
        int status = cl->err_status ? cl->err_status : 400;
        const char *why = cl->err_why;
        if (e == HPE_INVALID_VERSION) {
            /* llhttp 8.1 takes only 0.9, 1.0, 1.1 and 2.0 (see
             * fr_on_headers_complete for those), and has read the digits. */
            char *pos = (char *)llhttp_get_error_pos(&cl->parser);
            unsigned major = cl->parser.http_major, minor = cl->parser.http_minor;
            if (major == 1 && minor >= 2 && minor <= 9 && fresh && pos && pos > d &&
                pos <= d + len && pos[-1] == (char)('0' + minor) && (pos == d + len || *pos == '\r')) {
                /* RFC 9110 §2.5: a later minor version of HTTP/1 is served
                 * as the highest we know, 1.1.  The whole head so far is in
                 * `d`: the digit is rewritten and it is parsed again. */
                pos[-1] = '1';
                llhttp_reset(&cl->parser);
                continue;
            }
            if (major != 1) {
                status = 505; /* RFC 9110 §15.6.6 */
                why = "HTTP version not supported";
            }
        } else if (e == HPE_INVALID_METHOD && fr_method_token(d, len)) {
            status = 501;
            why = "method not implemented";
        }
        /* A parse error: 400 (431/414 from our limits), then close. */
        if (!why)
            why = llhttp_get_error_reason(&cl->parser);
        if (!why)
            why = "bad request";
        tt_buf_consume(&cl->in, tt_buf_len(&cl->in));
        cl->parse_err = 1;
        char msg[128];
        snprintf(msg, sizeof(msg), "%s", why);
        fr_reject(cl, status, msg);
        return;
    }
    fr_update_io(cl);
}

/* The response is fully in `out` (or the request was answered): once it is
 * written, log it and go on with the next request or close. */
static void fr_req_finished(struct tt_px_client *cl)
{
    struct tt_px_req *rq = &cl->req;
    if (cl->dead || !rq->resp_done || tt_buf_len(&cl->out) > 0)
        return;
    if (!rq->body_done) {
        /* A request without a body is answered from inside llhttp (a local
         * 503): its message end follows at once, and fr_parse calls again. */
        if (!rq->has_body && !cl->parse_err && rq->keepalive && !cl->paused)
            return;
        /* The response ended before the request body: we cannot find the
         * next request's start without reading the rest, so close. */
        rq->keepalive = 0;
    }
    if (rq->active)
        fr_access_log(cl);
    if (rq->tun && rq->unconsumed) {
        tt_h2_consume(fr_conn(rq), rq->sid, rq->unconsumed);
        rq->unconsumed = 0;
    }
    if (rq->tun && !rq->end_sent) {
        /* c answered before the whole body: stop the upload. */
        fr_cancel_stream(rq);
    } else if (rq->tun) {
        /* Both ends are done; the stream's close follows without us. */
        struct tt_h2_conn *c = fr_conn(rq);
        if (c)
            tt_h2_stream_set_user(c, rq->sid, NULL);
        fr_detach(rq);
    }
    if (!rq->keepalive || cl->srv->draining || cl->read_eof) {
        fr_close_after(cl);
        return;
    }
    if (!rq->body_done) /* paused mid-message is impossible here */
        return;
    if (!cl->paused)
        return; /* llhttp not yet at the message end: it will call again */
    fr_req_reset(rq);
    tt_buf_shrink(&rq->head);
    tt_buf_shrink(&rq->body);
    cl->paused = 0;
    llhttp_resume(&cl->parser);
    fr_timer_set(cl, FR_T_IDLE, cl->srv->cfg->client_idle_s * 1000u);
    tt_defer_queue(cl->srv->loop, &cl->work);
}

/* --- Socket --------------------------------------------------------------------- */

static void fr_update_io(struct tt_px_client *cl)
{
    if (cl->dead)
        return;
    unsigned ev = 0;
    if (tt_buf_len(&cl->out) > 0 || cl->notify_wait)
        ev |= cl->tls_wwr ? TT_IO_READ : TT_IO_WRITE;
    if (cl->lingering)
        ev |= TT_IO_READ;
    else if (!cl->read_eof && !cl->closing && tt_buf_len(&cl->req.body) == 0 &&
             tt_buf_len(&cl->in) < FR_IN_MAX)
        ev |= TT_IO_READ;
    tt_io_modify(cl->srv->loop, &cl->io, ev);
    /* Bytes OpenSSL decrypted ahead make no epoll event: read them from a
     * deferred call once reading is wanted again. */
    if (cl->is_tls && (ev & TT_IO_READ) && !cl->handshaking && tt_tls_pending(&cl->tls))
        tt_defer_queue(cl->srv->loop, &cl->rdefer);
}

static void fr_flush(struct tt_px_client *cl)
{
    struct tt_px_req *rq = &cl->req;
    cl->wblocked = 0;
    cl->tls_wwr = 0;
    while (tt_buf_len(&cl->out) > 0) {
        ssize_t n;
        if (cl->is_tls) {
            n = tt_tls_write(&cl->tls, tt_buf_data(&cl->out), tt_buf_len(&cl->out));
            if (n == TT_TLS_WANT_WRITE || n == TT_TLS_WANT_READ) {
                cl->wblocked = 1;
                cl->tls_wwr = n == TT_TLS_WANT_READ;
                break;
            }
            if (n <= 0) {
                fr_client_gone(cl, cl->tls.err[0] ? cl->tls.err : "TLS write failed");
                return;
            }
        } else {
            n = write(cl->fd, tt_buf_data(&cl->out), tt_buf_len(&cl->out));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                cl->wblocked = 1;
                break;
            }
            if (n <= 0) {
                fr_client_gone(cl, strerror(errno));
                return;
            }
        }
        tt_buf_consume(&cl->out, (size_t)n);
        /* Window back for DATA bytes that left (framing bytes are few, so
         * crediting them first errs by at most a chunk header per frame). */
        if (rq->unconsumed && rq->tun) {
            size_t k = (size_t)n < rq->unconsumed ? (size_t)n : rq->unconsumed;
            rq->unconsumed -= k;
            tt_h2_consume(fr_conn(rq), rq->sid, k);
            tt_session_flush(rq->tun->sess);
        }
    }
    if (tt_buf_len(&cl->out) == 0) {
        tt_buf_shrink(&cl->out);
        if (rq->unconsumed && rq->tun) {
            tt_h2_consume(fr_conn(rq), rq->sid, rq->unconsumed);
            tt_session_flush(rq->tun->sess);
        }
        rq->unconsumed = 0;
        if (cl->closing && !rq->resp_done) {
            fr_kill(cl); /* an aborted response: its buffered part is out */
            return;
        }
        if (rq->resp_done)
            fr_req_finished(cl);
        else if (cl->closing)
            fr_close_after(cl);
    }
    fr_update_io(cl);
}

/* Gives the connection (socket and TLS, if any) to front_h2.c with the
 * plaintext bytes read so far; the caller then kills what is left here. */
static void fr_hand_to_h2(struct tt_px_client *cl, const uint8_t *early, size_t len)
{
    struct tt_tls_conn conn;
    tt_io_stop(cl->srv->loop, &cl->io);
    if (cl->is_tls) {
        conn = cl->tls;
        cl->tls.ssl = NULL;
        cl->tls.fd = -1;
    } else {
        tt_tls_conn_init_plain(&conn, cl->fd);
    }
    cl->fd = -1;
    if (tt_px_h2f_adopt(cl->srv, &conn, cl->peer, cl->ip, early, len) < 0)
        tt_log_warn("client dropped client=%s: out of memory for HTTP/2", cl->peer);
}

/* HTTP/2 with prior knowledge (RFC 9113 §3.3): a connection whose first
 * bytes are the preface goes to front_h2.c, bytes read so far included.
 * Returns 1 when the connection is no longer parsed here (handed over, or
 * waiting for the rest of a partial preface). */
static int fr_sniff_h2(struct tt_px_client *cl)
{
    size_t len = tt_buf_len(&cl->in);
    int r = len ? tt_px_h2f_sniff(tt_buf_data(&cl->in), len) : 0;
    if (r == 0 && !cl->read_eof) {
        fr_update_io(cl);
        return 1;
    }
    cl->sniffed = 1;
    if (r != 1)
        return 0;
    fr_hand_to_h2(cl, tt_buf_data(&cl->in), len);
    tt_buf_consume(&cl->in, len);
    fr_kill(cl);
    return 1;
}

/* The shared read buffer (tt_px_server.front_rbuf): lent to a connection
 * whose input is empty for the length of one fr_read, then taken back; what
 * is left unparsed then (an incomplete or pipelined request) is copied into
 * a buffer of the connection's own.  Nothing keeps pointers into `in` past a
 * parse (fields are copied into req.head), as a reallocation would move it. */
static uint8_t *fr_in_borrow(struct tt_px_client *cl)
{
    struct tt_px_server *srv = cl->srv;
    if (cl->in.base || (!srv->front_rbuf && srv->front_rbuf_made))
        return NULL;
    if (!srv->front_rbuf) {
        srv->front_rbuf = tt_mem_alloc(FR_READ_CHUNK);
        if (!srv->front_rbuf)
            return NULL;
        srv->front_rbuf_made = 1;
    }
    cl->in.base = srv->front_rbuf;
    cl->in.cap = FR_READ_CHUNK;
    cl->in.off = cl->in.len = 0;
    srv->front_rbuf = NULL;
    return cl->in.base;
}

/* Gives the shared buffer back; returns -1 when the unparsed rest could not
 * be kept (out of memory: the input is then lost). */
static int fr_in_return(struct tt_px_client *cl)
{
    tt_buf rest = cl->in;
    tt_buf_init(&cl->in, rest.max);
    cl->srv->front_rbuf = rest.base;
    if (rest.len && tt_buf_append(&cl->in, rest.base + rest.off, rest.len))
        return -1;
    return 0;
}

static void fr_read_inner(struct tt_px_client *cl, int lent);

static void fr_read(struct tt_px_client *cl)
{
    uint8_t *lent = fr_in_borrow(cl);
    fr_read_inner(cl, lent != NULL);
    if (lent && cl->in.base == lent && fr_in_return(cl) && !cl->dead)
        fr_client_gone(cl, "out of memory");
    /* Still more decrypted in OpenSSL (this read stopped at its bound):
     * go on after the other descriptors had their turn. */
    if (cl->is_tls && !cl->dead && (cl->io.events & TT_IO_READ) && tt_tls_pending(&cl->tls))
        tt_defer_queue(cl->srv->loop, &cl->rdefer);
}

/* TLS: one read into p.  Returns bytes (> 0), 0 at the end, or -1 for "no
 * more now".  Only close_notify is a clean end (a TLS half-close, answered
 * like a TCP one); a reset or a close without it marks the client gone, as
 * a failed read does on plaintext, so its stream is cancelled at once. */
static ssize_t fr_tls_read(struct tt_px_client *cl, uint8_t *p, size_t len)
{
    ssize_t n = tt_tls_read(&cl->tls, p, len);
    if (n == TT_TLS_WANT_READ || n == TT_TLS_WANT_WRITE)
        return -1;
    if (n < 0) {
        tt_log_debug("client TLS read failed client=%s: %s", cl->peer, cl->tls.err);
        cl->read_err = 1;
        return 0;
    }
    return n;
}

static void fr_read_inner(struct tt_px_client *cl, int lent)
{
    for (int k = 0; k < 4; k++) {
        if (tt_buf_len(&cl->in) >= FR_IN_MAX)
            break;
        /* TLS reads a record (16 KiB at most) at a time: the shared buffer
         * takes several before it counts as full. */
        size_t want = FR_READ_CHUNK;
        if (lent && cl->is_tls) {
            want = cl->in.cap - cl->in.off - cl->in.len;
            if (want < 16384)
                want = 0;
        }
        if (lent && tt_buf_len(&cl->in) && (!cl->is_tls || want == 0)) {
            /* The shared buffer is full: go on in a buffer of our own. */
            if (fr_in_return(cl)) {
                fr_client_gone(cl, "out of memory");
                return;
            }
            lent = 0;
            want = FR_READ_CHUNK;
        }
        uint8_t *p = tt_buf_reserve(&cl->in, want);
        if (!p) {
            fr_client_gone(cl, "out of memory");
            return;
        }
        if (cl->is_tls) {
            /* A record at a time (16 KiB at most): go on until OpenSSL
             * has nothing, within the same bounds. */
            ssize_t n = fr_tls_read(cl, p, want);
            if (n < 0)
                break;
            if (n == 0) {
                cl->read_eof = 1;
                break;
            }
            if (!cl->lingering)
                tt_buf_commit(&cl->in, (size_t)n);
            continue;
        }
        ssize_t n = read(cl->fd, p, FR_READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            cl->read_eof = 1;
            cl->read_err = n < 0;
            break;
        }
        if (cl->lingering)
            continue; /* dropped */
        tt_buf_commit(&cl->in, (size_t)n);
        if ((size_t)n < FR_READ_CHUNK)
            break;
    }
    if (cl->lingering) {
        tt_buf_consume(&cl->in, tt_buf_len(&cl->in));
        if (cl->read_eof)
            fr_kill(cl);
        return;
    }
    if (!cl->sniffed && fr_sniff_h2(cl))
        return;
    fr_parse(cl);
    if (cl->dead)
        return;
    if (cl->read_eof) {
        struct tt_px_req *rq = &cl->req;
        if (rq->active && !rq->resp_done) {
            if (cl->read_err || rq->in_head || (rq->has_body && !rq->body_done)) {
                /* The client left mid-request, or reset the connection: it
                 * cannot read a response (RFC 9113 §8.7 CANCEL upstream). */
                fr_client_gone(cl, cl->read_err ? "reset by client" : "closed by client");
                return;
            }
            /* RFC 9112 §9.6: a half-close after a whole request is not an
             * abort; the response is still owed (§9.3).  It goes out, then
             * the connection closes (fr_req_finished sees read_eof).  A
             * client that really left shows up as a failed write. */
            rq->keepalive = 0;
            fr_update_io(cl);
            return;
        }
        if (tt_buf_len(&cl->out) == 0) {
            fr_kill(cl);
            return;
        }
        cl->closing = 1;
    }
    if (tt_buf_len(&cl->in) == 0 && !lent)
        tt_buf_shrink(&cl->in);
    fr_update_io(cl);
}

/* A held-back response head whose DATA did not come in the same batch. */
static void fr_on_wdefer(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_px_client *cl = d->data;
    (void)loop;
    if (!cl->dead && !cl->wblocked && tt_buf_len(&cl->out) > 0)
        fr_flush(cl);
}

static void fr_handshake(struct tt_px_client *cl);

static void fr_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct tt_px_client *cl = io->data;
    (void)loop;
    if (cl->handshaking) {
        fr_handshake(cl);
        return;
    }
    if (cl->tls_wwr && (events & (TT_IO_READ | TT_IO_ERROR)))
        fr_flush(cl); /* the write waited for the socket to be readable */
    if (!cl->dead && (events & TT_IO_WRITE) && cl->notify_wait)
        fr_close_after(cl); /* everything else is out: only the alert is left */
    else if (!cl->dead && (events & TT_IO_WRITE))
        fr_flush(cl);
    if (!cl->dead && (events & (TT_IO_READ | TT_IO_ERROR)))
        fr_read(cl);
}

static void fr_on_timer(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_px_client *cl = t->data;
    (void)loop;
    enum fr_timer_kind k = cl->tkind;
    cl->tkind = FR_T_NONE;
    switch (k) {
    case FR_T_HEAD:
        if (cl->req.active && !cl->req.resp_head) {
            cl->paused = 1; /* stop parsing the slow head */
            fr_reject(cl, 408, "request head not complete in time");
        } else {
            fr_kill(cl);
        }
        break;
    case FR_T_IDLE:
        fr_client_gone(cl, "idle timeout");
        break;
    case FR_T_LINGER:
        fr_kill(cl);
        break;
    case FR_T_RETRY: {
        struct tt_px_req *rq = &cl->req;
        int r = fr_open_stream(rq);
        if (r == 1) {
            if (rq->attempts < FR_RETRIES) {
                rq->attempts++;
                fr_timer_set(cl, FR_T_RETRY, 250u << rq->attempts);
            } else {
                fr_local(cl, 502, "the origin's tunnel closed before it answered\n", -1);
            }
        }
        break;
    }
    case FR_T_NONE:
        break;
    }
}

static void fr_work(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_px_client *cl = d->data;
    (void)loop;
    if (cl->dead) {
        fr_free(cl);
        return;
    }
    if (cl->req.tun)
        fr_pump_body(&cl->req);
    if (!cl->dead) {
        fr_parse(cl);
        if (!cl->dead)
            fr_update_io(cl);
    }
}

/* TLS: drives the handshake from the loop (never waits on the socket).
 * Done: ALPN h2 goes to front_h2.c (RFC 9113 §3.2), http/1.1 or nothing
 * stays here; any failure (a plaintext request sent to this port, a client
 * that offers only old protocols or blocklisted suites) just closes. */
static void fr_handshake(struct tt_px_client *cl)
{
    int r = tt_tls_handshake(&cl->tls);
    if (r == TT_TLS_WANT_READ || r == TT_TLS_WANT_WRITE) {
        tt_io_modify(cl->srv->loop, &cl->io, r == TT_TLS_WANT_READ ? TT_IO_READ : TT_IO_WRITE);
        return;
    }
    if (r != 1) {
        tt_log_debug("TLS handshake failed client=%s: %s", cl->peer,
                     cl->tls.err[0] ? cl->tls.err : "?");
        fr_kill(cl);
        return;
    }
    cl->handshaking = 0;
    enum tt_tls_alpn alpn = tt_tls_alpn(&cl->tls);
    if (tt_log_enabled(TT_LOG_DEBUG)) {
        char d[96];
        tt_tls_describe(&cl->tls, d, sizeof(d));
        tt_log_debug("https client client=%s %s alpn=%s", cl->peer, d,
                     alpn == TT_TLS_ALPN_H2       ? "h2"
                     : alpn == TT_TLS_ALPN_HTTP11 ? "http/1.1"
                                                  : "none");
    }
    if (alpn == TT_TLS_ALPN_H2) {
        fr_hand_to_h2(cl, NULL, 0);
        fr_kill(cl);
        return;
    }
    /* ALPN http/1.1 is a promise of HTTP/1.1; without ALPN a preface still
     * means HTTP/2 (prior knowledge, as on the plaintext port). */
    if (alpn == TT_TLS_ALPN_HTTP11)
        cl->sniffed = 1;
    fr_timer_set(cl, FR_T_HEAD, FR_HEAD_TIMEOUT_MS);
    /* The request may have come with the handshake's last flight: it sits
     * in OpenSSL, so read now rather than wait for an event. */
    fr_read(cl);
    if (!cl->dead)
        fr_update_io(cl);
}

static void fr_on_rdefer(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_px_client *cl = d->data;
    (void)loop;
    if (!cl->dead && !cl->handshaking && (cl->io.events & TT_IO_READ))
        fr_read(cl);
}

static void fr_accept(struct tt_loop *loop, struct tt_io *io, SSL_CTX *tls)
{
    struct tt_px_server *srv = io->data;
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                tt_log_warn("client accept failed: %s", strerror(errno));
            return;
        }
        struct tt_px_client *cl = tt_mem_calloc(1, sizeof(*cl));
        if (!cl) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        cl->srv = srv;
        cl->fd = fd;
        cl->tls.fd = -1;
        cl->req.kind = TT_PX_FRONT_H1;
        cl->req.cl = cl;
        cl->req.method = FR_METHOD_NONE;
        tt_buf_init(&cl->in, FR_IN_MAX + FR_READ_CHUNK);
        tt_buf_init(&cl->out, FR_OUT_MAX);
        tt_buf_init(&cl->req.head, FR_HEAD_MAX);
        tt_buf_init(&cl->req.body, FR_IN_MAX + FR_READ_CHUNK + FR_REPLAY_MAX);
        tt_buf_init(&cl->req.replay, FR_IN_MAX + FR_READ_CHUNK + FR_REPLAY_MAX);
        tt_px_sockaddr_text((struct sockaddr *)&ss, cl->peer, sizeof(cl->peer), cl->ip,
                            sizeof(cl->ip));
        llhttp_init(&cl->parser, HTTP_REQUEST, fr_settings());
        cl->parser.data = cl;
        tt_timer_init(&cl->timer, fr_on_timer, cl);
        tt_defer_init(&cl->work, fr_work, cl);
        tt_defer_init(&cl->wdefer, fr_on_wdefer, cl);
        tt_defer_init(&cl->rdefer, fr_on_rdefer, cl);
        tt_list_push(&srv->client_list, &cl->link);
        srv->clients++;
        if (tls) {
            if (tt_tls_conn_init(&cl->tls, tls, fd, 1, NULL) < 0) {
                tt_log_warn("client dropped client=%s: %s", cl->peer, cl->tls.err);
                close(fd);
                cl->fd = -1;
                fr_free(cl);
                continue;
            }
            cl->is_tls = 1;
            cl->handshaking = 1;
        }
        if (tt_io_start(loop, &cl->io, fd, TT_IO_READ, fr_on_io, cl) < 0) {
            if (!tls)
                close(fd);
            cl->fd = -1;
            fr_free(cl); /* frees the TLS connection and its fd */
            continue;
        }
        /* For TLS, the same deadline covers the handshake (slowloris). */
        fr_timer_set(cl, FR_T_HEAD, tls ? FR_HANDSHAKE_TIMEOUT_MS : FR_HEAD_TIMEOUT_MS);
    }
}

static void fr_on_accept(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)events;
    fr_accept(loop, io, NULL);
}

static void fr_on_accept_tls(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct tt_px_server *srv = io->data;
    (void)events;
    fr_accept(loop, io, srv->https_ctx);
}

int tt_px_front_listen(struct tt_px_server *srv, int fd)
{
    return tt_io_start(srv->loop, &srv->client_io, fd, TT_IO_READ, fr_on_accept, srv);
}

int tt_px_front_listen_tls(struct tt_px_server *srv, int fd)
{
    return tt_io_start(srv->loop, &srv->https_io, fd, TT_IO_READ, fr_on_accept_tls, srv);
}

void tt_px_front_drain(struct tt_px_server *srv)
{
    struct tt_io *lis[2] = {&srv->client_io, &srv->https_io};
    for (int i = 0; i < 2; i++) {
        if (lis[i]->fd >= 0) {
            int fd = lis[i]->fd;
            tt_io_stop(srv->loop, lis[i]);
            close(fd);
            lis[i]->fd = -1;
        }
    }
    for (struct tt_link *l = srv->client_list.first; l; l = l->next) {
        struct tt_px_client *cl = tt_container_of(l, struct tt_px_client, link);
        if (cl->dead)
            continue;
        if (!cl->req.active || (cl->req.in_head && !cl->req.nf))
            fr_kill(cl); /* idle: nothing in flight */
        else
            cl->req.keepalive = 0;
    }
}

/* --- The tunnel's stream callbacks --------------------------------------------------- */

static void fr_put(char **p, const char *s, size_t n)
{
    memcpy(*p, s, n);
    *p += n;
}

/* An interim (1xx) response from the tunnel, before the final head: written
 * to the client at once, as a head of its own with no body (RFC 9110 §15.2,
 * RFC 9112 §4).  Not to an HTTP/1.0 client (§15.2: a server MUST NOT send
 * it one), not a 100 when we said 100 ourselves (fr_open), and at most
 * TT_PX_MAX_INTERIM per request, so an app cannot flood the client. */
static void fr_interim(struct tt_px_req *rq, const struct tt_h2_headers *h)
{
    struct tt_px_client *cl = rq->cl;
    if (rq->resp_head || rq->minor == 0 || (h->status == 100 && rq->sent_continue))
        return;
    if (rq->interim >= TT_PX_MAX_INTERIM) {
        tt_log_debug("%d from the origin dropped (more than %d 1xx) client=%s", h->status,
                     TT_PX_MAX_INTERIM, cl->peer);
        return;
    }
    rq->interim++;
    if (h->status == 100)
        rq->sent_continue = 1;
    size_t need = tt_http1_response_head_size(h->hdrs, h->count) + 2;
    char stackbuf[4096];
    char *buf = need <= sizeof(stackbuf) ? stackbuf : tt_mem_alloc(need);
    if (!buf) {
        fr_abort(cl, "out of memory");
        return;
    }
    char *p = tt_http1_response_head_put(buf, h->status, h->hdrs, h->count);
    fr_put(&p, "\r\n", 2);
    (void)fr_send_buf(cl, buf, (size_t)(p - buf));
    if (buf != stackbuf)
        tt_mem_free(buf);
}

int tt_px_bridge_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct tt_px_req *rq = sud;
    (void)ud;
    (void)sid;
    if (!rq)
        return 0;
    struct tt_px_client *cl = rq->cl;
    if (cl->dead)
        return 0;
    if (h->kind == TT_H2_HDRS_INFORMATIONAL) {
        fr_interim(rq, h);
        return 0;
    }
    if (h->kind == TT_H2_HDRS_RESPONSE) {
        if (rq->resp_head)
            return 0;
        rq->resp_head = 1;
        rq->status = h->status;
        tt_buf_free(&rq->replay); /* processed: never sent again */
        rq->replay_lost = 1;
        rq->resp_nobody = rq->method == HTTP_HEAD || h->status == 204 || h->status == 304 ||
                          h->status < 200;
        int cl_known = h->content_length >= 0;
        int zero = !cl_known && h->end_stream && !rq->resp_nobody;
        if (!rq->resp_nobody && !cl_known && !zero) {
            if (rq->minor >= 1)
                rq->resp_chunked = 1;
            else
                rq->keepalive = 0; /* HTTP/1.0: the close ends the body */
        }
        if (!rq->body_done && !rq->resp_nobody && h->end_stream)
            rq->keepalive = 0;
        size_t need = tt_http1_response_head_size(h->hdrs, h->count) + 80;
        char stackbuf[8192];
        char *buf = need <= sizeof(stackbuf) ? stackbuf : tt_mem_alloc(need);
        if (!buf) {
            fr_abort(cl, "out of memory");
            return 0;
        }
        char *p = tt_http1_response_head_put(buf, h->status, h->hdrs, h->count);
        if (zero)
            fr_put(&p, "content-length: 0\r\n", 19);
        if (rq->resp_chunked)
            fr_put(&p, "transfer-encoding: chunked\r\n", 28);
        if (!rq->keepalive)
            fr_put(&p, "connection: close\r\n", 19);
        else if (rq->minor == 0)
            fr_put(&p, "connection: keep-alive\r\n", 24);
        fr_put(&p, "\r\n", 2);
        int rc;
        if (!h->end_stream && !rq->resp_nobody && tt_buf_len(&cl->out) == 0 && !cl->wblocked) {
            /* DATA usually follows in the same read: hold the head back so
             * both leave in one writev (fr_send); the deferred write sends
             * it alone otherwise. */
            rc = tt_buf_append(&cl->out, buf, (size_t)(p - buf));
            if (rc == 0)
                tt_defer_queue(cl->srv->loop, &cl->wdefer);
            else
                fr_client_gone(cl, "out of memory");
            rc = rc == 0 ? 0 : -1;
        } else {
            rc = fr_send_buf(cl, buf, (size_t)(p - buf));
        }
        if (buf != stackbuf)
            tt_mem_free(buf);
        if (rc < 0)
            return 0;
        if (h->end_stream) {
            rq->resp_done = 1;
            fr_req_finished(cl);
        }
        return 0;
    }
    if (h->kind == TT_H2_HDRS_TRAILERS) {
        if (!rq->resp_head || rq->resp_done)
            return 0;
        if (rq->resp_chunked) {
            /* RFC 9112 §7.1.2: trailers only for a client that said TE:
             * trailers; else dropped. */
            char buf[8192];
            char *p = buf;
            fr_put(&p, "0\r\n", 3);
            if (rq->te_trailers)
                for (size_t i = 0; i < h->count; i++) {
                    const struct tt_header *f = &h->hdrs[i];
                    if (f->name_len == 0 || f->name[0] == ':')
                        continue;
                    if ((size_t)(p - buf) + f->name_len + f->value_len + 8 > sizeof(buf))
                        break;
                    fr_put(&p, f->name, f->name_len);
                    fr_put(&p, ": ", 2);
                    fr_put(&p, f->value, f->value_len);
                    fr_put(&p, "\r\n", 2);
                }
            fr_put(&p, "\r\n", 2);
            if (fr_send_buf(cl, buf, (size_t)(p - buf)) < 0)
                return 0;
        }
        rq->resp_done = 1;
        fr_req_finished(cl);
    }
    return 0;
}

int tt_px_bridge_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                         int end_stream)
{
    struct tt_px_tunnel *t = ud;
    struct tt_px_req *rq = sud;
    struct tt_h2_conn *c = t->sess ? tt_session_h2(t->sess) : NULL;
    if (!rq || rq->cl->dead || !rq->resp_head || rq->resp_done || rq->resp_nobody) {
        /* Nobody will read these bytes: give the window back now. */
        if (c && len)
            tt_h2_consume(c, sid, len);
        if (rq && !rq->cl->dead && rq->resp_head && !rq->resp_done && end_stream) {
            rq->resp_done = 1;
            fr_req_finished(rq->cl);
        }
        return 0;
    }
    struct tt_px_client *cl = rq->cl;
    char chead[24], ctail[8];
    struct iovec iov[3];
    int n = 0;
    size_t pre = 0;
    if (rq->resp_chunked && len) {
        pre = (size_t)snprintf(chead, sizeof(chead), "%zx\r\n", len);
        iov[n++] = (struct iovec){chead, pre};
    }
    iov[n++] = (struct iovec){(void *)data, len};
    if (rq->resp_chunked) {
        size_t tl = 0;
        if (len)
            memcpy(ctail, "\r\n", 2), tl = 2;
        if (end_stream)
            memcpy(ctail + tl, "0\r\n\r\n", 5), tl += 5;
        if (tl)
            iov[n++] = (struct iovec){ctail, tl};
    }
    ssize_t w = fr_send(cl, iov, n);
    if (w < 0)
        return 0; /* the client is gone: fr_work resets the stream */
    size_t data_written = (size_t)w > pre ? (size_t)w - pre : 0;
    if (data_written > len)
        data_written = len;
    if (data_written && c)
        tt_h2_consume(c, sid, data_written);
    rq->unconsumed += len - data_written;
    rq->bytes += len;
    if (end_stream) {
        rq->resp_done = 1;
        fr_req_finished(cl);
    }
    return 0;
}

void tt_px_bridge_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code,
                                  unsigned flags)
{
    struct tt_px_tunnel *t = ud;
    struct tt_px_req *rq = sud;
    (void)sid;
    if (flags & TT_H2_CLOSE_CONN)
        t->dead = 1;
    if (!rq || rq->tun != t)
        return;
    struct tt_px_client *cl = rq->cl;
    /* Window for buffered bytes: the stream is gone, the connection window
     * is still ours to credit while the session lives. */
    if (rq->unconsumed && !(flags & TT_H2_CLOSE_CONN) && t->sess && !tt_session_closing(t->sess))
        tt_h2_consume(tt_session_h2(t->sess), rq->sid, rq->unconsumed);
    rq->unconsumed = 0;
    fr_detach(rq);
    if (cl->dead)
        return;
    if (rq->resp_done)
        return;
    if (!rq->resp_head) {
        if ((flags & TT_H2_CLOSE_GOAWAY) ||
            ((flags & TT_H2_CLOSE_RST_RECEIVED) && code == TT_H2_REFUSED_STREAM))
            rq->refused = 1; /* never processed: safe to retry (RFC 9113 §8.7) */
        tt_log_debug("stream lost before response client=%s origin=%s code=%s flags=%u",
                     cl->peer, rq->name, tt_h2_strerror(code), flags);
        if (!rq->refused && !(flags & TT_H2_CLOSE_CONN)) {
            /* The origin answered with a reset, or we reset its invalid
             * response: that is its answer, not a lost tunnel, and sending
             * the request again would only repeat it (DESIGN.md retries
             * only lost or refused requests). */
            fr_local(cl, 502,
                     (flags & TT_H2_CLOSE_RST_SENT) ? "the origin sent an invalid response\n"
                                                    : "the origin reset the request\n",
                     -1);
            return;
        }
        if (rq->body_sent == 0 || rq->refused) {
            if (rq->refused && fr_body_rewind(rq) < 0) {
                /* Not processed, but more body went out than we kept. */
                fr_local(cl, 502, "the origin refused the request\n", -1);
                return;
            }
            fr_retry_or_fail(rq);
            return;
        }
        fr_local(cl, 502, "the origin's tunnel closed before it answered\n", -1);
        return;
    }
    /* Mid-body: cut the client's connection before the body's end. */
    fr_abort(cl, "tunnel closed mid-response");
}

static void fr_wake(struct tt_px_req *rq)
{
    fr_unblock(rq);
    tt_defer_queue(rq->cl->srv->loop, &rq->cl->work);
}

/* Wakes every request of the tunnel that waited for window or room. */
static void fr_wake_blocked(struct tt_px_tunnel *t)
{
    while (t->blocked.first)
        fr_wake(tt_container_of(t->blocked.first, struct tt_px_req, blk));
}

void tt_px_bridge_on_window_update(void *ud, uint32_t sid, void *sud)
{
    struct tt_px_tunnel *t = ud;
    if (sid == 0) {
        fr_wake_blocked(t);
        return;
    }
    struct tt_px_req *rq = sud;
    if (rq && rq->tun == t && tt_link_linked(&rq->blk))
        fr_wake(rq);
}

void tt_px_bridge_on_writable(void *ud, struct tt_session *s)
{
    struct tt_px_tunnel *t = ud;
    (void)s;
    fr_wake_blocked(t);
}
