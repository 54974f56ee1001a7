/*
 * The HTTP/1.1 client front (llhttp): a protocol adapter over exchanges.
 * accept.c hands a connection here once it knows it is not HTTP/2; this
 * file parses requests, writes responses and owns the socket (plaintext or
 * TLS), and the request's life on the tunnel is its exchange's
 * (proxy/exchange.h): routing, opening, retries, flow control, local
 * answers and the access line.
 *
 * size: one connection's llhttp callbacks, writer and socket state share
 * one private struct and call each other both ways (a read parses, a parse
 * answers, a write that empties the buffer starts the next request); split
 * in two, that struct and a dozen functions would become an interface of
 * their own for no second user.
 *
 * One client connection has at most one request in flight: llhttp is paused
 * at the end of each message and resumed once the response is written, so
 * pipelined requests wait in the connection's input buffer (RFC 9112 §9.3.2
 * answers in order; doing one at a time is the simple way to keep it).
 *
 * Flow, request side: body bytes from llhttp go to the exchange, which sends
 * them when the stream's send window allows and keeps the rest; while it
 * holds any, the client socket is not read (backpressure toward the client).
 *
 * Flow, response side: DATA is written to the client socket from the
 * exchange's data op when the socket takes it; what it does not take waits
 * in the output buffer, and the exchange hears of each byte as it leaves
 * (tt_px_exchange_taken), so the tunnel window is what bounds p's memory
 * per stream.
 *
 * TLS (--https-listen): reads and writes go through tt_tls_read and
 * tt_tls_write: a write gathers the pieces in `out` first (one SSL_write, so
 * a small response is one record), and reads are resumed from a deferred
 * call while OpenSSL holds decrypted bytes (epoll cannot see those).  Every
 * TLS branch is on `cl->is_tls`, so the plaintext path keeps its syscalls
 * and copies as they were.
 */
#include "proxy.h"

#include "llhttp.h"
#include "proto/log.h"
#include "proto/text.h"
#include "proto/websocket.h"

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
#define FR_LINGER_MS 2000          /* read and drop after our last byte, then close */
#define FR_METHOD_NONE 0xff        /* rq->method before the head is parsed (llhttp's 0 is DELETE) */

enum fr_timer_kind {
    FR_T_NONE = 0,
    FR_T_HEAD,
    FR_T_IDLE,
    FR_T_LINGER,
};

struct fr_field {
    uint32_t no, nl, vo, vl;
};

struct tt_px_req {
    struct tt_px_exchange x; /* the request's life on the tunnel */
    struct tt_px_client *cl;

    /* The head as received (offsets into `head`). */
    tt_buf head;
    struct fr_field f[FR_FIELDS_MAX];
    uint32_t nf;
    uint32_t url_len;
    uint8_t last_was_value;
    uint8_t in_head; /* between message begin and headers complete */
    uint8_t method;
    uint8_t minor;

    uint8_t has_body;      /* the request has a body (CL > 0 or chunked) */
    uint8_t body_done;     /* the request body ended (message complete) */
    uint8_t body_stalled;  /* the exchange holds body bytes: the socket is not read */
    uint8_t keepalive;
    uint8_t resp_head;     /* the response head is on its way to the client */
    uint8_t resp_done;     /* the whole response is in `out` */
    uint8_t resp_chunked;
    uint8_t resp_nobody;
    uint8_t ws;            /* a WebSocket upgrade: handed to front_pipe.c at the message end */
    uint32_t ws_key;       /* its Sec-WebSocket-Key field (an index into f) */
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
    uint8_t wblocked;  /* the socket took less than asked: wait for EPOLLOUT */
    uint8_t is_tls;      /* came in on the HTTPS front */
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
    /* RFC 9112 §7.1, §2.2: after the last chunk, the trailer section and the
     * empty line that ends the message are CRLF-terminated lines; llhttp 8.1
     * takes a bare LF there.  llhttp is paused at the last chunk's header
     * (trl_pause) and the section's bytes are checked before it reads them
     * (trl_scan, trl_cr: the byte before was CR, trl_len: bytes in the line). */
    uint8_t trl_pause, trl_scan, trl_cr;
    uint32_t trl_len;
    /* The last bytes of the input llhttp already ran on, so a check can look
     * behind the start of the current input (obs-fold across reads). */
    const char *exec_start;
    uint8_t tail[64];
    uint8_t tail_len;
    tt_buf in;
    tt_buf out;
    char peer[64];
    char ip[48];
    struct tt_px_req req;
};

static const llhttp_settings_t *fr_settings(void);
static void fr_update_io(struct tt_px_client *cl);
static void fr_flush(struct tt_px_client *cl);
static void fr_write_waits(struct tt_px_client *cl);
static void fr_abort(struct tt_px_client *cl, const char *why);
static void fr_parse(struct tt_px_client *cl);
static void fr_req_finished(struct tt_px_client *cl);

static const char *fr_h(const struct tt_px_req *rq, uint32_t off)
{
    return (const char *)tt_buf_data(&rq->head) + off;
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
        if (w < pend + total) {
            cl->wblocked = 1;
            fr_write_waits(cl);
        }
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
            fr_write_waits(cl);
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

/* --- Lifetime -------------------------------------------------------------------- */

static void fr_timer_set(struct tt_px_client *cl, enum fr_timer_kind k, uint64_t ms)
{
    cl->tkind = k;
    if (k == FR_T_NONE)
        tt_timer_stop(cl->srv->loop, &cl->timer);
    else
        tt_timer_start(cl->srv->loop, &cl->timer, ms);
}

/* A client that takes no bytes of its response for --client-idle is closed
 * (it holds a stream window at p and a request at c): the idle timer runs
 * while the socket is full and starts again at each write that moves. */
static void fr_write_waits(struct tt_px_client *cl)
{
    if (cl->tkind == FR_T_NONE || cl->tkind == FR_T_IDLE)
        fr_timer_set(cl, FR_T_IDLE, cl->srv->cfg->client_idle_s * 1000u);
}

static void fr_req_reset(struct tt_px_req *rq)
{
    tt_buf_consume(&rq->head, tt_buf_len(&rq->head));
    rq->nf = 0;
    rq->url_len = 0;
    rq->method = FR_METHOD_NONE;
    rq->last_was_value = 0;
    rq->in_head = 0;
    rq->has_body = rq->body_done = rq->body_stalled = rq->keepalive = 0;
    rq->resp_head = rq->resp_done = rq->resp_chunked = rq->resp_nobody = 0;
    rq->ws = 0;
}

static void fr_free(struct tt_px_client *cl)
{
    struct tt_px_server *srv = cl->srv;
    tt_px_exchange_end(&cl->req.x, 1);
    tt_px_exchange_free(&cl->req.x);
    tt_defer_cancel(srv->loop, &cl->wdefer);
    tt_defer_cancel(srv->loop, &cl->rdefer);
    if (cl->tls.ssl) /* not reached through fr_kill (a failed start) */
        tt_tls_conn_free(&cl->tls);
    tt_buf_free(&cl->in);
    tt_buf_free(&cl->out);
    tt_buf_free(&cl->req.head);
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
    if (cl->dead)
        return;
    tt_log_debug("client gone client=%s: %s", cl->peer, why);
    tt_px_exchange_end(&cl->req.x, 1);
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
    tt_px_exchange_end(&rq->x, 0);
    rq->keepalive = 0;
    /* No close_notify after a cut response: an "incomplete close" (RFC 9112
     * §9.8) tells the client the body is not whole. */
    tt_tls_abort(&cl->tls);
    cl->closing = 1;
    /* Buffered bytes may still go; no lingering read, just close after. */
    fr_update_io(cl);
    if (tt_buf_len(&cl->out) == 0)
        fr_kill(cl);
}

/* A request that llhttp or our limits refused: answer and close. */
static void fr_reject(struct tt_px_client *cl, int status, const char *why)
{
    struct tt_px_req *rq = &cl->req;
    tt_log_debug("bad request client=%s status=%d: %s", cl->peer, status, why);
    if (!rq->x.active)
        tt_px_exchange_begin(&rq->x);
    if (!rq->x.log_path)
        (void)tt_px_exchange_set_line(&rq->x, NULL, 0, rq->url_len ? fr_h(rq, 0) : "",
                                      rq->url_len);
    rq->keepalive = 0;
    if (rq->resp_head) {
        /* Our answer has begun: all that is left is to cut it short. */
        fr_abort(cl, why);
        return;
    }
    /* No response head went out yet, so the client can still get its 400
     * (RFC 9112 §6.3, §7.1); the origin's half-sent request is reset. */
    char body[160];
    snprintf(body, sizeof(body), "%s\n", why);
    tt_px_exchange_local(&rq->x, status, body, -1);
}

/* --- Request side ------------------------------------------------------------------ */

/* Hands the parsed head to the exchange: the fields as offsets become views
 * (in the exchange's arena), and an absolute-form target's authority plays
 * Host (RFC 9112 §3.2.2).  The target was checked in
 * fr_on_headers_complete. */
static int fr_request(struct tt_px_req *rq, struct tt_px_request *out)
{
    struct tt_px_exchange *x = &rq->x;
    struct tt_px_field *fl = tt_arena_alloc(&x->arena, (rq->nf ? rq->nf : 1) * sizeof(*fl));
    if (!fl) {
        tt_px_exchange_local(x, 500, "out of memory\n", -1);
        return -1;
    }
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
    struct tt_px_target tg;
    (void)tt_px_target_split(fr_h(rq, 0), rq->url_len, &tg);
    if (tg.authority) {
        host = tg.authority;
        host_len = tg.authority_len;
    }
    *out = (struct tt_px_request){
        .authority = host,
        .authority_len = host_len,
        .path = tg.path,
        .path_len = tg.path_len,
        .f = fl,
        .n = rq->nf,
        .end = !rq->has_body,
    };
    return 0;
}

static void fr_start(struct tt_px_req *rq)
{
    struct tt_px_request req;
    if (fr_request(rq, &req) == 0)
        (void)tt_px_exchange_start(&rq->x, &req);
}

/* --- Upgrades ----------------------------------------------------------------------- */

static int fr_name_is(const struct tt_px_req *rq, const struct fr_field *f, const char *lit,
                      size_t n);
static size_t fr_value_len(const struct tt_px_req *rq, const struct fr_field *f);

/* What an Upgrade request asks (RFC 9110 §7.8; it takes Connection: upgrade
 * too, else Upgrade is just a field).  A WebSocket (RFC 6455 §4.1) is
 * checked here and carried (1); h2c is ignored, the request answered as
 * HTTP/1.1, as RFC 9110 §7.8 lets a server do and as RFC 9113 §3.1 retired
 * it (0); any other protocol is refused (-1, answered).  A refused
 * handshake closes the connection after its answer. */
static int fr_upgrade(struct tt_px_client *cl, struct tt_px_req *rq)
{
    int conn_upgrade = 0, upgrades = 0, websocket = 0, h2c = 0, keys = 0, v13 = 0, versions = 0;
    for (uint32_t i = 0; i < rq->nf; i++) {
        const struct fr_field *f = &rq->f[i];
        const char *v = fr_h(rq, f->vo);
        size_t vl = fr_value_len(rq, f);
        if (fr_name_is(rq, f, "connection", 10)) {
            conn_upgrade |= tt_list_has(v, vl, "upgrade", 7);
        } else if (fr_name_is(rq, f, "upgrade", 7)) {
            upgrades++;
            websocket |= tt_list_has(v, vl, "websocket", 9);
            h2c |= tt_list_has(v, vl, "h2c", 3);
        } else if (fr_name_is(rq, f, "sec-websocket-key", 17)) {
            keys++;
            rq->ws_key = i;
        } else if (fr_name_is(rq, f, "sec-websocket-version", 21)) {
            versions++;
            v13 = vl == 2 && !memcmp(v, "13", 2);
        }
    }
    if (!upgrades || !conn_upgrade)
        return 0;
    struct tt_px_exchange *x = &rq->x;
    rq->keepalive = 0;
    if (!websocket) {
        if (h2c) {
            rq->keepalive = (uint8_t)llhttp_should_keep_alive(&cl->parser);
            return 0;
        }
        tt_px_exchange_local(x, 501,
                             "p carries only WebSocket upgrades (Upgrade: websocket, RFC 6455)\n",
                             -1);
        return -1;
    }
    const char *bad = NULL;
    if (rq->method != HTTP_GET)
        bad = "a WebSocket opening handshake is a GET (RFC 6455 §4.1)";
    else if (rq->minor < 1)
        bad = "a WebSocket opening handshake needs HTTP/1.1 (RFC 6455 §4.1)";
    else if (rq->has_body)
        bad = "a WebSocket opening handshake has no body";
    else if (keys != 1 ||
             !tt_ws_key_valid(fr_h(rq, rq->f[rq->ws_key].vo), fr_value_len(rq, &rq->f[rq->ws_key])))
        bad = "Sec-WebSocket-Key must be one base64 value of 16 bytes (RFC 6455 §4.1)";
    if (bad) {
        char body[160];
        snprintf(body, sizeof body, "%s\n", bad);
        tt_px_exchange_local(x, 400, body, -1);
        return -1;
    }
    if (versions != 1 || !v13) {
        /* RFC 6455 §4.2.2: say which version we speak. */
        tt_px_exchange_local_with(x, 426, "only WebSocket version 13 is supported (RFC 6455)\n",
                                  "sec-websocket-version", "13");
        return -1;
    }
    rq->ws = 1;
    return 1;
}

/* The upgrade's message ended (llhttp paused there, `in` holds what the
 * client sent after the head): the connection and the request go to
 * front_pipe.c, and this record goes without closing the socket. */
static void fr_ws_handover(struct tt_px_client *cl)
{
    struct tt_px_req *rq = &cl->req;
    struct tt_px_ws_request wr = {
        .target = fr_h(rq, 0),
        .target_len = rq->url_len,
        .key = fr_h(rq, rq->f[rq->ws_key].vo),
        .key_len = fr_value_len(rq, &rq->f[rq->ws_key]),
        .early = tt_buf_data(&cl->in),
        .early_len = tt_buf_len(&cl->in),
        .start_ms = rq->x.start_ms,
    };
    if (fr_request(rq, &wr.rq) < 0)
        return; /* answered */
    struct tt_tls_conn conn;
    if (cl->is_tls)
        conn = cl->tls;
    else
        tt_tls_conn_init_plain(&conn, cl->fd);
    tt_io_stop(cl->srv->loop, &cl->io);
    cl->tls.ssl = NULL;
    cl->tls.fd = -1;
    cl->fd = -1;
    tt_px_exchange_forget(&rq->x);
    (void)tt_px_ws_adopt(cl->srv, &conn, cl->peer, cl->ip, &wr); /* takes conn, copies the rest */
    tt_buf_consume(&cl->in, tt_buf_len(&cl->in));
    fr_kill(cl);
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
    tt_px_exchange_begin(&rq->x);
    cl->crlf_need = 0;
    rq->in_head = 1;
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

/* The byte `k` (>= 1) before `at` in the input: from the current input or
 * the tail kept from the last; -1 when not kept. */
static int fr_byte_before(const struct tt_px_client *cl, const char *at, size_t k)
{
    size_t here = (size_t)(at - cl->exec_start);
    if (k <= here)
        return (unsigned char)at[-(ptrdiff_t)k];
    k -= here;
    return k <= cl->tail_len ? cl->tail[cl->tail_len - k] : -1;
}

static int fr_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct tt_px_client *cl = FR_CL(p);
    struct tt_px_req *rq = &cl->req;
    /* RFC 9112 §5.2: a line folded onto the next (obs-fold: CRLF, then SP
     * or HTAB) is refused with 400.  llhttp 8.1 accepts it and hands the
     * continuation over as more of the value, right after a line end. */
    size_t k = 1;
    int b;
    while ((b = fr_byte_before(cl, at, k)) == ' ' || b == '\t')
        k++;
    if (b == '\n')
        return fr_cb_fail(p, 400, "obs-fold in a field line");
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
    const char *mname = llhttp_method_name((llhttp_method_t)rq->method);
    if (tt_px_exchange_set_line(&rq->x, mname, strlen(mname), fr_h(rq, 0), rq->url_len) < 0)
        return fr_cb_fail(p, 500, "out of memory");
    /* RFC 9110 §15.2: no 1xx to an HTTP/1.0 client. */
    rq->x.interim_ok = rq->minor >= 1;

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
    if (cl->srv->env.draining)
        rq->keepalive = 0;
    if (rq->method == HTTP_CONNECT) {
        rq->keepalive = 0;
        tt_px_exchange_local(&rq->x, 405, "CONNECT is not supported here\n", -1);
        return 0;
    }
    /* RFC 9112 §3.2: origin-form, absolute-form (http/https, no userinfo,
     * a valid authority) or "*" for OPTIONS; a fragment is in no form.
     * §3: an invalid request-line SHOULD get 400.  Upgrades too. */
    struct tt_px_target tg;
    if (tt_px_target_split(fr_h(rq, 0), rq->url_len, &tg) < 0 ||
        (tg.path_len == 1 && tg.path[0] == '*' && !tg.authority && rq->method != HTTP_OPTIONS))
        return fr_cb_fail(p, 400, "invalid request target");
    int up = fr_upgrade(cl, rq);
    if (up < 0)
        return 0; /* refused, answered */
    if (up > 0)
        return 0; /* handed over at the message's end (fr_parse) */
    if (rq->has_body && !cl->srv->env.draining)
        fr_timer_set(cl, FR_T_IDLE, cl->srv->cfg->client_idle_s * 1000u);
    fr_start(rq);
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
    if (rq->x.local || rq->resp_done || cl->dead)
        return 0;
    /* A client that stops sending its body is dropped after the idle time. */
    if (cl->tkind == FR_T_NONE || cl->tkind == FR_T_IDLE)
        fr_timer_set(cl, FR_T_IDLE, cl->srv->cfg->client_idle_s * 1000u);
    if (tt_px_exchange_req_body(&rq->x, (const uint8_t *)at, len) < 0)
        return fr_cb_fail(p, 500, "out of memory");
    if (tt_px_exchange_req_buffered(&rq->x))
        rq->body_stalled = 1; /* woken by req_taken once it drains */
    return 0;
}

static int fr_on_chunk_header(llhttp_t *p)
{
    struct tt_px_client *cl = FR_CL(p);
    if (p->content_length != 0)
        return 0;
    /* The last chunk: check the trailer section before llhttp reads it. */
    cl->trl_pause = 1;
    cl->trl_scan = 1;
    cl->trl_cr = 0;
    cl->trl_len = 0;
    return HPE_PAUSED;
}

/* Checks trailer-section bytes (see trl_scan).  Returns how many belong to
 * the section (all of `len` while it goes on), or -1 on a bare LF. */
static ssize_t fr_trailer_scan(struct tt_px_client *cl, const char *d, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '\n') {
            if (!cl->trl_cr)
                return -1;
            if (cl->trl_len == 0) {
                cl->trl_scan = 0; /* the empty line: the message ends here */
                return (ssize_t)i + 1;
            }
            cl->trl_len = 0;
            cl->trl_cr = 0;
            continue;
        }
        if (cl->trl_cr)
            return -1; /* CR not followed by LF */
        if (d[i] == '\r')
            cl->trl_cr = 1;
        else
            cl->trl_len++;
    }
    return (ssize_t)len;
}

static int fr_on_message_complete(llhttp_t *p)
{
    struct tt_px_client *cl = FR_CL(p);
    struct tt_px_req *rq = &cl->req;
    rq->body_done = 1;
    if (cl->tkind == FR_T_IDLE)
        fr_timer_set(cl, FR_T_NONE, 0);
    if (rq->has_body)
        tt_px_exchange_req_end(&rq->x, NULL, 0);
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
        s.on_chunk_header = fr_on_chunk_header;
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

/* Keeps the last bytes of what llhttp ran on (see fr_byte_before). */
static void fr_keep_tail(struct tt_px_client *cl, const char *d, size_t used)
{
    size_t cap = sizeof(cl->tail);
    if (used >= cap) {
        memcpy(cl->tail, d + used - cap, cap);
        cl->tail_len = (uint8_t)cap;
        return;
    }
    size_t keep = cl->tail_len + used > cap ? cap - used : cl->tail_len;
    memmove(cl->tail, cl->tail + cl->tail_len - keep, keep);
    memcpy(cl->tail + keep, d, used);
    cl->tail_len = (uint8_t)(keep + used);
}

/* Feeds buffered input to llhttp while a request can take it. */
static void fr_parse(struct tt_px_client *cl)
{
    struct tt_px_req *rq = &cl->req;
    while (!cl->dead && !cl->closing && !cl->paused && tt_buf_len(&cl->in) > 0 &&
           tt_px_exchange_req_buffered(&rq->x) == 0) {
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
        } else if (cl->trl_scan && fr_trailer_scan(cl, d, len) < 0) {
            cl->err_status = 400;
            cl->err_why = "trailer section line not ended by CRLF";
            e = HPE_USER;
        } else {
            cl->exec_start = d;
            cl->exec_end = d + len;
            e = llhttp_execute(&cl->parser, d, len);
        }
        if (cl->dead)
            return;
        if (e == HPE_OK) {
            fr_keep_tail(cl, d, len);
            tt_buf_consume(&cl->in, len);
            continue;
        }
        if (e == HPE_PAUSED_UPGRADE) {
            /* llhttp stops once more after a request that asked for an
             * Upgrade; we did not switch (see fr_on_headers_complete), so
             * the bytes after it are the next request. */
            llhttp_resume_after_upgrade(&cl->parser);
            continue;
        }
        if (e == HPE_PAUSED && cl->trl_pause) {
            /* At the last chunk: the rest is checked, then parsed. */
            const char *pos = llhttp_get_error_pos(&cl->parser);
            size_t used = pos ? (size_t)(pos - d) : len;
            fr_keep_tail(cl, d, used);
            tt_buf_consume(&cl->in, used);
            cl->trl_pause = 0;
            llhttp_resume(&cl->parser);
            continue;
        }
        if (e == HPE_PAUSED) {
            const char *pos = llhttp_get_error_pos(&cl->parser);
            size_t used = pos ? (size_t)(pos - d) : len;
            fr_keep_tail(cl, d, used);
            tt_buf_consume(&cl->in, used);
            cl->paused = 1;
            if (cl->req.ws && cl->req.x.active && !cl->req.x.local) {
                fr_ws_handover(cl);
                return;
            }
            if (!cl->req.x.active || cl->req.resp_done)
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
    /* Logged, and the stream let go: reset when c answered before the
     * whole body (the upload stops), else it closes without us. */
    tt_px_exchange_end(&rq->x, 0);
    if (!rq->keepalive || cl->srv->env.draining || cl->read_eof) {
        fr_close_after(cl);
        return;
    }
    if (!rq->body_done) /* paused mid-message is impossible here */
        return;
    if (!cl->paused)
        return; /* llhttp not yet at the message end: it will call again */
    fr_req_reset(rq);
    tt_buf_shrink(&rq->head);
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
    else if (!cl->read_eof && !cl->closing && tt_px_exchange_req_buffered(&cl->req.x) == 0 &&
             tt_buf_len(&cl->in) < FR_IN_MAX)
        ev |= TT_IO_READ;
    tt_io_modify(cl->srv->loop, &cl->io, ev);
    /* Bytes OpenSSL decrypted ahead make no epoll event: read them from a
     * deferred call once reading is wanted again. */
    if (cl->is_tls && (ev & TT_IO_READ) && tt_tls_pending(&cl->tls))
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
        tt_px_exchange_taken(&rq->x, (size_t)n);
        if (cl->tkind == FR_T_IDLE)
            fr_timer_set(cl, FR_T_IDLE, cl->srv->cfg->client_idle_s * 1000u);
    }
    if (cl->wblocked)
        fr_write_waits(cl);
    if (tt_buf_len(&cl->out) == 0) {
        tt_buf_shrink(&cl->out);
        tt_px_exchange_taken(&rq->x, SIZE_MAX);
        if (cl->tkind == FR_T_IDLE && rq->x.active && rq->body_done)
            fr_timer_set(cl, FR_T_NONE, 0); /* the client reads: no stall */
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
        tt_defer_queue_next(cl->srv->loop, &cl->rdefer);
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
    fr_parse(cl);
    if (cl->dead)
        return;
    if (cl->read_eof) {
        struct tt_px_req *rq = &cl->req;
        if (rq->x.active && !rq->resp_done) {
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


static void fr_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct tt_px_client *cl = io->data;
    (void)loop;
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
        if (cl->req.x.active && !cl->req.resp_head) {
            cl->paused = 1; /* stop parsing the slow head */
            fr_reject(cl, 408, "request head not complete in time");
        } else {
            fr_kill(cl);
        }
        break;
    case FR_T_IDLE:
        if (cl->req.x.active && cl->req.x.end_how == TT_PX_END_OK)
            cl->req.x.end_how = TT_PX_END_CLIENT_STALLED; /* took none of its answer */
        fr_client_gone(cl, "idle timeout");
        break;
    case FR_T_LINGER:
        fr_kill(cl);
        break;
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
    fr_parse(cl);
    if (!cl->dead)
        fr_update_io(cl);
}

static void fr_on_rdefer(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_px_client *cl = d->data;
    (void)loop;
    if (!cl->dead && (cl->io.events & TT_IO_READ))
        fr_read(cl);
}


/* --- The exchange's ops ------------------------------------------------------------ */

static void fr_put(char **p, const char *s, size_t n)
{
    memcpy(*p, s, n);
    *p += n;
}

#define FR_RQ(x) tt_container_of((x), struct tt_px_req, x)

/* An interim (1xx) response, before the final head: written to the client
 * at once, as a head of its own with no body (RFC 9110 §15.2, RFC 9112 §4).
 * The exchange has kept it from HTTP/1.0 clients and counted it. */
static void fr_op_interim(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    struct tt_px_req *rq = FR_RQ(x);
    struct tt_px_client *cl = rq->cl;
    if (rq->resp_head || cl->dead)
        return;
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

/* The final head, from the origin or the exchange's own answer. */
static void fr_op_head(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    struct tt_px_req *rq = FR_RQ(x);
    struct tt_px_client *cl = rq->cl;
    if (cl->dead || rq->resp_head)
        return;
    {
        rq->resp_head = 1;
        /* Our own answer leaves the request body unread, and a refused head
         * leaves the next request's start unknown: close after either. */
        if ((x->local && rq->has_body && !rq->body_done) || x->close_after || cl->srv->env.draining)
            rq->keepalive = 0;
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
            return;
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
            return;
        if (h->end_stream) {
            rq->resp_done = 1;
            fr_req_finished(cl);
        }
    }
}

/* Trailers end the response. */
static void fr_op_trailers(struct tt_px_exchange *x, const struct tt_header *hdrs, size_t count)
{
    struct tt_px_req *rq = FR_RQ(x);
    struct tt_px_client *cl = rq->cl;
    if (cl->dead || !rq->resp_head || rq->resp_done)
        return;
    {
        if (rq->resp_chunked) {
            /* RFC 9112 §7.1.2: trailers only for a client that said TE:
             * trailers; else dropped. */
            char buf[8192];
            char *p = buf;
            fr_put(&p, "0\r\n", 3);
            if (x->te_trailers)
                for (size_t i = 0; i < count; i++) {
                    const struct tt_header *f = &hdrs[i];
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
                return;
        }
        rq->resp_done = 1;
        fr_req_finished(cl);
    }
}

/* Body bytes: framed (chunked when the length is unknown) and written as
 * far as the socket takes them; the rest waits in `out`. */
static ssize_t fr_op_data(struct tt_px_exchange *x, const uint8_t *data, size_t len,
                          int end_stream)
{
    struct tt_px_req *rq = FR_RQ(x);
    if (rq->cl->dead)
        return -1;
    if (!rq->resp_head || rq->resp_done || rq->resp_nobody) {
        /* Nobody will read these bytes (a HEAD, 204 or 304 response): all
         * taken at once. */
        if (rq->resp_head && !rq->resp_done && end_stream) {
            rq->resp_done = 1;
            fr_req_finished(rq->cl);
        }
        return (ssize_t)len;
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
        return -1; /* the client is gone */
    size_t data_written = (size_t)w > pre ? (size_t)w - pre : 0;
    if (data_written > len)
        data_written = len;
    if (end_stream) {
        rq->resp_done = 1;
        fr_req_finished(cl);
    }
    return (ssize_t)data_written;
}

static void fr_op_abort(struct tt_px_exchange *x, const char *why)
{
    struct tt_px_req *rq = FR_RQ(x);
    if (!rq->cl->dead)
        fr_abort(rq->cl, why);
}

/* Body bytes left the exchange: once it holds none, read the client again. */
static void fr_op_req_taken(struct tt_px_exchange *x, size_t n, int drained)
{
    struct tt_px_req *rq = FR_RQ(x);
    (void)n;
    if (drained && rq->body_stalled) {
        rq->body_stalled = 0;
        tt_defer_queue(rq->cl->srv->loop, &rq->cl->work);
    }
}

static const struct tt_px_front_ops fr_ops = {
    .interim = fr_op_interim,
    .head = fr_op_head,
    .data = fr_op_data,
    .trailers = fr_op_trailers,
    .abort = fr_op_abort,
    .req_taken = fr_op_req_taken,
};


/* --- Taking over a connection -------------------------------------------------- */

int tt_px_h1_adopt(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                   const char *ip, const uint8_t *early, size_t early_len)
{
    struct tt_px_client *cl = tt_mem_calloc(1, sizeof(*cl));
    if (!cl) {
        tt_tls_conn_free(conn);
        return -1;
    }
    cl->srv = srv;
    cl->fd = conn->fd;
    cl->tls.fd = -1;
    if (conn->ssl) {
        cl->tls = *conn;
        cl->is_tls = 1;
    }
    conn->ssl = NULL;
    conn->fd = -1;
    cl->req.cl = cl;
    cl->req.method = FR_METHOD_NONE;
    snprintf(cl->peer, sizeof(cl->peer), "%s", peer);
    snprintf(cl->ip, sizeof(cl->ip), "%s", ip);
    tt_buf_init(&cl->in, FR_IN_MAX + FR_READ_CHUNK);
    tt_buf_init(&cl->out, FR_OUT_MAX);
    tt_buf_init(&cl->req.head, FR_HEAD_MAX);
    tt_px_exchange_init(&cl->req.x, &srv->env, &fr_ops, cl->peer, cl->ip,
                        FR_IN_MAX + FR_READ_CHUNK + TT_PX_REPLAY_MAX);
    cl->req.x.tls = cl->is_tls;
    llhttp_init(&cl->parser, HTTP_REQUEST, fr_settings());
    cl->parser.data = cl;
    tt_timer_init(&cl->timer, fr_on_timer, cl);
    tt_defer_init(&cl->work, fr_work, cl);
    tt_defer_init(&cl->wdefer, fr_on_wdefer, cl);
    tt_defer_init(&cl->rdefer, fr_on_rdefer, cl);
    tt_list_push(&srv->client_list, &cl->link);
    srv->clients++;
    if ((early_len && tt_buf_append(&cl->in, early, early_len) != 0) ||
        tt_io_start(srv->loop, &cl->io, cl->fd, TT_IO_READ, fr_on_io, cl) < 0) {
        if (cl->is_tls) {
            tt_tls_conn_free(&cl->tls);
        } else {
            close(cl->fd);
        }
        cl->fd = -1;
        fr_free(cl);
        return -1;
    }
    fr_timer_set(cl, FR_T_HEAD, FR_HEAD_TIMEOUT_MS);
    /* A request may be waiting already: in the socket, in what accept.c
     * read, or decrypted in OpenSSL (no epoll event for that one). */
    fr_read(cl);
    if (!cl->dead)
        fr_update_io(cl);
    return 0;
}

void tt_px_h1_drain(struct tt_px_server *srv)
{
    for (struct tt_link *l = srv->client_list.first; l; l = l->next) {
        struct tt_px_client *cl = tt_container_of(l, struct tt_px_client, link);
        if (cl->dead)
            continue;
        if (!cl->req.x.active || (cl->req.in_head && !cl->req.nf))
            fr_kill(cl); /* idle: nothing in flight */
        else
            cl->req.keepalive = 0;
    }
}
