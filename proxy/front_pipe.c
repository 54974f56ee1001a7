/*
 * Byte streams from clients: each is one exchange whose request and
 * response bodies are opaque bytes, both ways, with backpressure.  Two kinds
 * come here:
 *
 *   - a connection to --tcp-listen ADDR=NAME: a CONNECT stream (RFC 9113
 *     §8.5) on a tunnel of NAME, which c --tcp joins to its one service;
 *   - a WebSocket (RFC 6455) that the HTTP/1.1 front (front_h1.c) took an
 *     upgrade for, plaintext or TLS: an extended CONNECT stream (RFC 8441,
 *     :protocol websocket) which c joins to its app.  p answers the client
 *     101 with Sec-WebSocket-Accept itself: the tunnel hop has no key (RFC
 *     8441 §5), so only the front that read the client's key can.
 *
 *   client socket ── tt_px_pipe { exchange } ── stream ── c
 *     bytes read       → tt_px_exchange_req_body (reading pauses while the
 *                        exchange holds PIPE_BODY_PAUSE of them)
 *     FIN read         → the request ends (END_STREAM)
 *     2xx head         ← connected: bytes flow (a WebSocket gets its 101)
 *     other head       ← TCP: refused (no origin, busy, c could not connect),
 *                        the connection closed and the reason logged;
 *                        WebSocket: the answer goes to the client as an
 *                        HTTP/1.1 response (the app refused the upgrade)
 *     DATA             ← written; the window goes back as they leave
 *     END_STREAM       ← FIN (TLS: close_notify) once all before it is out
 *     reset, tunnel gone ← the connection is closed with an RST
 *     client RST       → the stream is cancelled
 *
 * The connection ends when both directions have.  A quiet stream is not
 * cut by --client-idle (an SSH session or a chat socket may sit quiet for
 * hours); a client that takes no byte while some wait for it is, as on the
 * other fronts, and --stream-idle SECS (off by default) cuts a stream that
 * moved no byte either way for that long.
 */
#include "proxy.h"

#include "proto/http1.h"
#include "proto/log.h"
#include "proto/websocket.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIPE_READ_CHUNK (256u << 10)
#define PIPE_BODY_MAX (512u << 10)   /* client bytes the exchange may hold */
#define PIPE_BODY_PAUSE (256u << 10) /* ... reading stops at this much */
/* Bytes from c the client has not taken: at most the stream's window, which
 * grows to TT_PX_STREAM_WINDOW_MAX while the client keeps up, plus a frame
 * and a response head. */
#define PIPE_OUT_MAX (TT_PX_STREAM_WINDOW_MAX + (320u << 10))
#define PIPE_EARLY_MAX (64u << 10) /* WebSocket bytes read before the 101 */
#define PIPE_WHY_MAX 160           /* a TCP refusal's text kept for the log */

struct tt_px_pipe {
    struct tt_px_exchange x;
    struct tt_px_server *srv;
    struct tt_link link; /* on srv->tcp_list */
    struct tt_io io;
    struct tt_tls_conn conn; /* ssl NULL: plaintext */
    struct tt_defer free_d;
    struct tt_defer rdefer; /* TLS: reads what OpenSSL already holds */
    struct tt_timer idle;   /* --stream-idle */
    struct tt_timer stall;  /* bytes wait for a client that takes none (--client-idle) */
    uint64_t last_ms;       /* the last byte either way */
    tt_buf out;   /* bytes for the client the socket has not taken */
    tt_buf early; /* WebSocket: client bytes read before the 101 */
    int status;   /* of c's head; 0 before */
    uint8_t rd_eof, resp_end, wr_done, dead, paused, wwr;
    uint8_t ws;      /* a WebSocket (else --tcp-listen) */
    uint8_t flowing; /* bytes flow: a 2xx came (and a WebSocket's 101 went) */
    uint8_t answer;  /* WebSocket: a refusal goes to the client as a response */
    char why[PIPE_WHY_MAX];
    size_t why_len;
    char name[TT_PX_NAME_MAX + 1];
    char peer[64], ip[48];
    char accept[TT_WS_ACCEPT_LEN + 1];
};

#define PIPE(xp) tt_container_of((xp), struct tt_px_pipe, x)

static void pipe_update_io(struct tt_px_pipe *c);
static void pipe_read(struct tt_px_pipe *c);

static const char *pipe_what(const struct tt_px_pipe *c) { return c->ws ? "websocket" : "tcp"; }

static void pipe_on_free(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_px_pipe *c = d->data;
    (void)loop;
    tt_px_exchange_free(&c->x);
    tt_buf_free(&c->out);
    tt_buf_free(&c->early);
    tt_mem_free(c);
}

/* Ends the connection (once): the exchange with `gone` (the client left or
 * was cut), the socket with an RST when `rst`. */
static void pipe_close(struct tt_px_pipe *c, int gone, int rst)
{
    if (c->dead)
        return;
    c->dead = 1;
    tt_px_exchange_end(&c->x, gone);
    tt_timer_stop(c->srv->loop, &c->idle);
    tt_timer_stop(c->srv->loop, &c->stall);
    tt_defer_cancel(c->srv->loop, &c->rdefer);
    if (c->conn.fd >= 0) {
        tt_io_stop(c->srv->loop, &c->io); /* forgets the fd */
        if (rst) {
            struct linger lg = {1, 0}; /* close sends RST: the client sees the cut */
            setsockopt(c->conn.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            tt_tls_abort(&c->conn); /* no close_notify after a cut */
        }
        tt_tls_conn_free(&c->conn); /* close_notify (TLS, clean end), close */
    }
    tt_link_remove(&c->link);
    c->srv->clients--;
    tt_defer_queue(c->srv->loop, &c->free_d);
}

static void pipe_maybe_done(struct tt_px_pipe *c)
{
    if (!c->dead && c->rd_eof && c->wr_done)
        pipe_close(c, 0, 0);
}

static void pipe_moved(struct tt_px_pipe *c) { c->last_ms = tt_loop_now(c->srv->loop); }

/* --stream-idle: the timer runs at the deadline of the last move, and
 * starts again for what is left when bytes moved since. */
static void pipe_on_idle(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_px_pipe *c = t->data;
    uint64_t limit = (uint64_t)c->srv->cfg->stream_idle_s * 1000u;
    uint64_t quiet = tt_loop_now(loop) - c->last_ms;
    if (c->dead)
        return;
    if (quiet < limit) {
        tt_timer_start(loop, &c->idle, limit - quiet);
        return;
    }
    tt_log_info("%s client=%s name=%s: no byte either way for %u s (--stream-idle): closed",
                pipe_what(c), c->peer, c->name, c->srv->cfg->stream_idle_s);
    if (c->x.end_how == TT_PX_END_OK)
        c->x.end_how = TT_PX_END_STREAM_IDLE;
    pipe_close(c, 1, 1);
}

/* A client that takes no byte of what waits for --client-idle is cut, as
 * on the other fronts: it holds a stream window at p and a stream at c. */
static void pipe_on_stall(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_px_pipe *c = t->data;
    (void)loop;
    if (c->dead || tt_buf_len(&c->out) == 0)
        return;
    tt_log_debug("%s client=%s name=%s: took nothing for %u s: closed", pipe_what(c), c->peer,
                 c->name, c->srv->cfg->client_idle_s);
    if (c->x.end_how == TT_PX_END_OK)
        c->x.end_how = TT_PX_END_CLIENT_STALLED;
    pipe_close(c, 1, 1);
}

/* Bytes wait: the stall clock starts, and starts again at each write that
 * moves some. */
static void pipe_stall_watch(struct tt_px_pipe *c, int moved)
{
    if (tt_buf_len(&c->out) == 0)
        tt_timer_stop(c->srv->loop, &c->stall);
    else if (moved || !tt_timer_active(&c->stall))
        tt_timer_start(c->srv->loop, &c->stall, (uint64_t)c->srv->cfg->client_idle_s * 1000u);
}

static void pipe_shut_write(struct tt_px_pipe *c)
{
    c->wr_done = 1;
    if (c->conn.ssl)
        (void)tt_tls_close_notify(&c->conn); /* TLS's half-close */
    else
        shutdown(c->conn.fd, SHUT_WR);
    pipe_maybe_done(c);
}

/* Writes what waits for the socket; FIN after the last of it.  Returns -1
 * when the client is gone (closed). */
static int pipe_flush(struct tt_px_pipe *c)
{
    size_t sent = 0;
    c->wwr = 0;
    while (tt_buf_len(&c->out) > sent) {
        ssize_t n = tt_tls_write(&c->conn, tt_buf_data(&c->out) + sent, tt_buf_len(&c->out) - sent);
        if (n == TT_TLS_WANT_WRITE || n == TT_TLS_WANT_READ) {
            c->wwr = n == TT_TLS_WANT_READ;
            break;
        }
        if (n <= 0) {
            tt_log_debug("%s client=%s name=%s: write failed: %s", pipe_what(c), c->peer, c->name,
                         c->conn.err);
            pipe_close(c, 1, 1);
            return -1;
        }
        sent += (size_t)n;
    }
    if (sent) {
        tt_buf_consume(&c->out, sent);
        tt_px_exchange_taken(&c->x, sent);
        pipe_moved(c);
    }
    pipe_stall_watch(c, sent > 0);
    if (tt_buf_len(&c->out) == 0) {
        tt_buf_shrink(&c->out);
        if (c->resp_end && !c->wr_done) {
            if (c->answer) {
                /* A refused upgrade's response is out: the connection
                 * ends (what the client sent after is not ours to read). */
                pipe_close(c, 0, 0);
                return -1;
            }
            pipe_shut_write(c); /* the service said FIN */
        }
    }
    return 0;
}

/* Client bytes: to the exchange, or (a WebSocket before its 101) kept. */
static int pipe_take(struct tt_px_pipe *c, const uint8_t *p, size_t n)
{
    pipe_moved(c);
    if (c->ws && !c->flowing) {
        if (tt_buf_append(&c->early, p, n) != 0)
            return -1;
        if (tt_buf_len(&c->early) >= PIPE_EARLY_MAX)
            c->paused = 1; /* resumed after the 101 */
        return 0;
    }
    if (tt_px_exchange_req_body(&c->x, p, n) < 0)
        return -1;
    if (tt_px_exchange_req_buffered(&c->x) >= PIPE_BODY_PAUSE)
        c->paused = 1; /* the tunnel is behind: let the client's window fill */
    return 0;
}

static void pipe_read(struct tt_px_pipe *c)
{
    static uint8_t buf[PIPE_READ_CHUNK]; /* one loop, one read at a time */
    /* One chunk a wake-up: the loop's other connections get their turn.
     * Never more than the exchange may still hold. */
    size_t held = tt_px_exchange_req_buffered(&c->x) + tt_buf_len(&c->early);
    size_t room = held < PIPE_BODY_MAX ? PIPE_BODY_MAX - held : 0;
    if (room > sizeof(buf))
        room = sizeof(buf);
    size_t got = 0;
    int eof = 0, err = 0;
    while (got < room) {
        ssize_t n = tt_tls_read(&c->conn, buf + got, room - got);
        if (n > 0) {
            got += (size_t)n;
            if (!c->conn.ssl)
                break; /* one recv: the socket is likely empty now */
            continue;  /* TLS: a record at a time */
        }
        if (n == 0)
            eof = 1;
        else if (n != TT_TLS_WANT_READ && n != TT_TLS_WANT_WRITE)
            err = 1;
        break;
    }
    if (got && pipe_take(c, buf, got) < 0) {
        pipe_close(c, 1, 1);
        return;
    }
    if (err) {
        tt_log_debug("%s client=%s name=%s: read failed: %s", pipe_what(c), c->peer, c->name,
                     c->conn.err);
        pipe_close(c, 1, 1);
        return;
    }
    if (eof) {
        c->rd_eof = 1;
        if (c->ws && !c->flowing) {
            /* Gone before the 101: nobody to answer. */
            pipe_close(c, 1, 0);
            return;
        }
        /* FIN: the request ends, the service's rest still comes. */
        tt_px_exchange_req_end(&c->x, NULL, 0);
        pipe_maybe_done(c);
        return;
    }
    if (c->conn.ssl && !c->dead && !c->paused && tt_tls_pending(&c->conn))
        tt_defer_queue_next(c->srv->loop, &c->rdefer);
}

static void pipe_on_rdefer(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_px_pipe *c = d->data;
    (void)loop;
    if (!c->dead && !c->rd_eof && !c->paused) {
        pipe_read(c);
        if (!c->dead)
            pipe_update_io(c);
    }
}

static void pipe_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct tt_px_pipe *c = io->data;
    (void)loop;
    if (((events & TT_IO_WRITE) || (c->wwr && (events & TT_IO_READ))) && pipe_flush(c) < 0)
        return;
    if (!c->dead && (events & (TT_IO_READ | TT_IO_ERROR)) && !c->rd_eof && !c->paused)
        pipe_read(c);
    if (!c->dead)
        pipe_update_io(c);
}

static void pipe_update_io(struct tt_px_pipe *c)
{
    unsigned ev = 0;
    if ((!c->rd_eof && !c->paused) || c->wwr)
        ev |= TT_IO_READ;
    if (tt_buf_len(&c->out) && !c->wwr)
        ev |= TT_IO_WRITE;
    if (ev != c->io.events)
        tt_io_modify(c->srv->loop, &c->io, ev);
}

/* Queues `len` bytes for the client behind what waits; writes now if
 * nothing does.  Returns the bytes that reached the socket, or -1 when the
 * client is gone (closed). */
static ssize_t pipe_send(struct tt_px_pipe *c, const uint8_t *p, size_t len)
{
    size_t taken = 0;
    if (len && tt_buf_len(&c->out) == 0) {
        ssize_t n = tt_tls_write(&c->conn, p, len);
        if (n > 0) {
            taken = (size_t)n;
            pipe_moved(c);
        } else if (n == TT_TLS_WANT_READ) {
            c->wwr = 1;
        } else if (n != TT_TLS_WANT_WRITE) {
            pipe_close(c, 1, 1);
            return -1;
        }
    }
    if (taken < len && tt_buf_append(&c->out, p + taken, len - taken) != 0) {
        /* More than the window we gave: cannot happen with a codec that
         * enforces it; cut rather than lose bytes, and say so. */
        tt_log_warn("%s client=%s name=%s: cut: %zu bytes from c over the buffer", pipe_what(c),
                    c->peer, c->name, len - taken);
        tt_px_exchange_fail(&c->x, "response buffer full");
        return -1;
    }
    pipe_stall_watch(c, taken > 0);
    return (ssize_t)taken;
}

/* --- What the exchange asks of us -------------------------------------------- */

static void pipe_op_interim(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    (void)x, (void)h;
}

/* Fields of c's head a WebSocket's 101 must not repeat: ours (the accept,
 * the upgrade) and the framing of a body that is not one. */
static int pipe_ws_own_field(const struct tt_header *f)
{
    static const char *const own[] = {"sec-websocket-accept", "content-length", "upgrade",
                                      "connection"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (f->name_len == strlen(own[i]) && !memcmp(f->name, own[i], f->name_len))
            return 1;
    return 0;
}

/* The WebSocket is accepted: 101 with the app's fields (its subprotocol,
 * extensions, cookies) and our accept; then the bytes the client sent
 * early, and reading from the client. */
static void pipe_ws_accepted(struct tt_px_pipe *c, const struct tt_h2_headers *h)
{
    struct tt_header keep[64];
    size_t n = 0;
    for (size_t i = 0; i < h->count && n < sizeof(keep) / sizeof(keep[0]); i++)
        if (!pipe_ws_own_field(&h->hdrs[i]))
            keep[n++] = h->hdrs[i];
    size_t need = tt_http1_response_head_size(keep, n) + 128;
    char stackbuf[8192];
    char *buf = need <= sizeof(stackbuf) ? stackbuf : tt_mem_alloc(need);
    if (!buf) {
        tt_px_exchange_fail(&c->x, "out of memory");
        return;
    }
    char *p = tt_http1_response_head_put(buf, 101, keep, n);
    p += sprintf(p, "upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: %s\r\n\r\n",
                 c->accept);
    c->x.status = 101; /* what the client saw, for the access line */
    c->flowing = 1;
    ssize_t w = pipe_send(c, (const uint8_t *)buf, (size_t)(p - buf));
    if (buf != stackbuf)
        tt_mem_free(buf);
    if (w < 0)
        return;
    /* The head is no DATA: the exchange is told only of body bytes. */
    if (tt_buf_len(&c->early)) {
        int rc = tt_px_exchange_req_body(&c->x, tt_buf_data(&c->early), tt_buf_len(&c->early));
        tt_buf_free(&c->early);
        if (rc < 0) {
            pipe_close(c, 1, 1);
            return;
        }
    }
    c->paused = 0;
    if (c->srv->cfg->stream_idle_s)
        tt_timer_start(c->srv->loop, &c->idle, (uint64_t)c->srv->cfg->stream_idle_s * 1000u);
    /* Bytes OpenSSL decrypted while we waited make no epoll event. */
    if (c->conn.ssl && tt_tls_pending(&c->conn))
        tt_defer_queue(c->srv->loop, &c->rdefer);
}

/* The upgrade was refused (by the app, by c, by p): the client gets the
 * answer as an ordinary HTTP/1.1 response, and the connection closes
 * after its body. */
static void pipe_ws_refused(struct tt_px_pipe *c, const struct tt_h2_headers *h)
{
    size_t need = tt_http1_response_head_size(h->hdrs, h->count) + 64;
    char stackbuf[8192];
    char *buf = need <= sizeof(stackbuf) ? stackbuf : tt_mem_alloc(need);
    if (!buf) {
        tt_px_exchange_fail(&c->x, "out of memory");
        return;
    }
    char *p = tt_http1_response_head_put(buf, h->status, h->hdrs, h->count);
    /* No length known: the close ends the body (RFC 9112 §6.3 (8)). */
    p += sprintf(p, "%sconnection: close\r\n\r\n",
                 h->content_length < 0 && h->end_stream ? "content-length: 0\r\n" : "");
    c->answer = 1;
    ssize_t w = pipe_send(c, (const uint8_t *)buf, (size_t)(p - buf));
    if (buf != stackbuf)
        tt_mem_free(buf);
    if (w < 0)
        return;
    tt_buf_free(&c->early);
    c->paused = 1; /* nothing more is read from this client */
    if (h->end_stream) {
        c->resp_end = 1;
        (void)pipe_flush(c);
    }
}

static void pipe_op_head(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    struct tt_px_pipe *c = PIPE(x);
    c->status = h->status;
    if (c->ws) {
        if (h->status >= 200 && h->status < 300 && !h->end_stream)
            pipe_ws_accepted(c, h);
        else
            pipe_ws_refused(c, h);
        if (!c->dead)
            pipe_update_io(c);
        return;
    }
    if (h->status >= 200 && h->status < 300) {
        c->flowing = 1;
        if (c->srv->cfg->stream_idle_s)
            tt_timer_start(c->srv->loop, &c->idle, (uint64_t)c->srv->cfg->stream_idle_s * 1000u);
        if (h->end_stream) {
            c->resp_end = 1;
            (void)pipe_flush(c);
        }
        return;
    }
    if (h->end_stream) {
        tt_log_info("tcp client=%s name=%s: refused, %d", c->peer, c->name, h->status);
        pipe_close(c, 0, 0);
    }
    /* else the reason follows as the body: logged at its end */
}

static ssize_t pipe_op_data(struct tt_px_exchange *x, const uint8_t *p, size_t len, int end)
{
    struct tt_px_pipe *c = PIPE(x);
    if (c->dead)
        return -1;
    if (!c->ws && (c->status < 200 || c->status >= 300)) {
        /* A refusal's text (p's own 503, c's 502): one log line, then the
         * connection closes, as a client of a dead port would see. */
        size_t k = len < sizeof(c->why) - 1 - c->why_len ? len : sizeof(c->why) - 1 - c->why_len;
        memcpy(c->why + c->why_len, p, k);
        c->why_len += k;
        if (end) {
            while (c->why_len && (c->why[c->why_len - 1] == '\n' || c->why[c->why_len - 1] == '\r'))
                c->why_len--;
            c->why[c->why_len] = 0;
            tt_log_info("tcp client=%s name=%s: refused, %d: %s", c->peer, c->name, c->status,
                        c->why);
            pipe_close(c, 0, 0);
        }
        return (ssize_t)len;
    }
    ssize_t taken = pipe_send(c, p, len);
    if (taken < 0)
        return c->dead ? -1 : 0;
    if (end)
        c->resp_end = 1;
    if (tt_buf_len(&c->out) == 0 && c->resp_end)
        (void)pipe_flush(c); /* the FIN */
    if (!c->dead)
        pipe_update_io(c);
    return taken;
}

static void pipe_op_trailers(struct tt_px_exchange *x, const struct tt_header *h, size_t n)
{
    (void)h, (void)n;
    struct tt_px_pipe *c = PIPE(x);
    c->resp_end = 1;
    if (pipe_flush(c) == 0 && !c->dead)
        pipe_update_io(c);
}

static void pipe_op_abort(struct tt_px_exchange *x, const char *why)
{
    struct tt_px_pipe *c = PIPE(x);
    tt_log_debug("%s client=%s name=%s: cut: %s", pipe_what(c), c->peer, c->name, why);
    pipe_close(c, 0, 1); /* the stream was reset or its tunnel went: RST */
}

static void pipe_op_req_taken(struct tt_px_exchange *x, size_t n, int drained)
{
    struct tt_px_pipe *c = PIPE(x);
    (void)n;
    if (c->paused && drained && !c->dead && !c->answer && (c->flowing || !c->ws)) {
        c->paused = 0;
        pipe_update_io(c);
    }
}

static const struct tt_px_front_ops pipe_ops = {
    .interim = pipe_op_interim,
    .head = pipe_op_head,
    .data = pipe_op_data,
    .trailers = pipe_op_trailers,
    .abort = pipe_op_abort,
    .req_taken = pipe_op_req_taken,
};

/* --- Starting ----------------------------------------------------------------- */

/* A record for connection `conn` (taken over), or NULL (conn freed). */
static struct tt_px_pipe *pipe_new(struct tt_px_server *srv, struct tt_tls_conn *conn,
                                   const char *peer, const char *ip, const char *name)
{
    struct tt_px_pipe *c = tt_mem_calloc(1, sizeof(*c));
    if (!c) {
        tt_tls_conn_free(conn);
        return NULL;
    }
    c->srv = srv;
    c->conn = *conn;
    conn->ssl = NULL;
    conn->fd = -1;
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    tt_buf_init(&c->out, PIPE_OUT_MAX);
    tt_buf_init(&c->early, PIPE_EARLY_MAX + PIPE_READ_CHUNK);
    tt_defer_init(&c->free_d, pipe_on_free, c);
    tt_defer_init(&c->rdefer, pipe_on_rdefer, c);
    tt_timer_init(&c->idle, pipe_on_idle, c);
    tt_timer_init(&c->stall, pipe_on_stall, c);
    c->last_ms = tt_loop_now(srv->loop);
    if (tt_io_start(srv->loop, &c->io, c->conn.fd, TT_IO_READ, pipe_on_io, c) < 0) {
        tt_tls_conn_free(&c->conn);
        tt_mem_free(c);
        return NULL;
    }
    srv->clients++;
    tt_list_push(&srv->tcp_list, &c->link);
    tt_px_exchange_init(&c->x, &srv->env, &pipe_ops, c->peer, c->ip, PIPE_BODY_MAX);
    return c;
}

void tt_px_pipe_tcp(struct tt_px_server *srv, int fd, const char *peer, const char *ip,
                    const char *name, const char *via)
{
    struct tt_tls_conn conn;
    tt_tls_conn_init_plain(&conn, fd);
    struct tt_px_pipe *c = pipe_new(srv, &conn, peer, ip, name);
    if (!c)
        return;
    struct tt_px_exchange *x = &c->x;
    x->proto = "tcp";
    tt_px_exchange_begin(x);
    if (tt_px_exchange_set_line(x, "CONNECT", 7, c->name, strlen(c->name)) < 0) {
        pipe_close(c, 1, 0);
        return;
    }
    struct tt_px_request rq = {
        .authority = c->name, .authority_len = strlen(c->name), .path = "",
        .name = via ? via : c->name,
    };
    (void)tt_px_exchange_start(x, &rq); /* a refusal closes c from inside */
}

int tt_px_ws_adopt(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                   const char *ip, const struct tt_px_ws_request *wr)
{
    struct tt_px_pipe *c = pipe_new(srv, conn, peer, ip, "");
    if (!c)
        return -1;
    c->ws = 1;
    tt_ws_accept(wr->key, wr->key_len, c->accept);
    if (wr->early_len && tt_buf_append(&c->early, wr->early, wr->early_len) != 0) {
        pipe_close(c, 1, 0);
        return -1;
    }
    struct tt_px_exchange *x = &c->x;
    x->tls = c->conn.ssl != NULL;
    x->interim_ok = 0; /* a 1xx before the 101 would end the client's handshake */
    tt_px_exchange_begin(x);
    x->start_ms = wr->start_ms;
    if (tt_px_exchange_set_line(x, "GET", 3, wr->target, wr->target_len) < 0) {
        pipe_close(c, 1, 0);
        return -1;
    }
    struct tt_px_request rq = wr->rq;
    rq.protocol = "websocket";
    rq.end = 0;
    (void)tt_px_exchange_start(x, &rq); /* a refusal is answered from inside */
    snprintf(c->name, sizeof(c->name), "%s", x->name[0] ? x->name : "-");
    if (!c->dead)
        pipe_update_io(c);
    return 0;
}
