/*
 * The TCP front (p --tcp-listen ADDR=NAME): each connection accepted there
 * is one exchange, a CONNECT stream (RFC 9113 §8.5) on a tunnel of NAME,
 * which c --tcp joins to its one local service.  The bytes are opaque:
 *
 *   client socket ── tt_px_tcp { exchange } ── CONNECT stream ── c --tcp
 *     bytes read       → tt_px_exchange_req_body (reading pauses while the
 *                        exchange holds TCP_BODY_PAUSE of them: backpressure)
 *     FIN read         → the request ends (END_STREAM)
 *     2xx head         ← the service is connected: bytes flow
 *     other head       ← refused (no origin, busy, c could not connect):
 *                        the connection is closed and the reason logged
 *     DATA             ← written; the window goes back as they leave
 *     END_STREAM       ← FIN once everything before it is written
 *     reset, tunnel gone ← the connection is closed with an RST
 *     client RST       → the stream is cancelled
 *
 * The connection ends when both directions have: FIN read and FIN sent.
 * No idle timeout: an SSH session may sit quiet for hours.
 */
#include "proxy.h"

#include "proto/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_READ_CHUNK (256u << 10)
#define TCP_BODY_MAX (512u << 10) /* client bytes the exchange may hold */
#define TCP_BODY_PAUSE (256u << 10) /* ... reading stops at this much */
/* Bytes from c the client has not taken: at most the stream's window, which
 * grows to TT_PX_STREAM_WINDOW_MAX while the client keeps up, plus a frame. */
#define TCP_OUT_MAX (TT_PX_STREAM_WINDOW_MAX + (256u << 10))
#define TCP_WHY_MAX 160             /* a refusal's text kept for the log */

struct tt_px_tcp_listener {
    struct tt_px_listener l;
    char name[TT_PX_NAME_MAX + 1];
    const char *via; /* the pool (c's forward link), or NULL: the name's */
};

struct tt_px_tcp {
    struct tt_px_exchange x;
    struct tt_px_server *srv;
    struct tt_link link; /* on srv->tcp_list */
    struct tt_io io;
    struct tt_defer free_d;
    tt_buf out; /* bytes from c the socket has not taken */
    int status; /* of c's head; 0 before */
    uint8_t rd_eof, resp_end, wr_done, dead, paused, rst;
    char why[TCP_WHY_MAX];
    size_t why_len;
    char name[TT_PX_NAME_MAX + 1];
    char peer[64], ip[48];
};

#define TCP(xp) tt_container_of((xp), struct tt_px_tcp, x)

static void tcp_update_io(struct tt_px_tcp *c);

static void tcp_on_free(struct tt_loop *loop, struct tt_defer *d)
{
    struct tt_px_tcp *c = d->data;
    (void)loop;
    tt_px_exchange_free(&c->x);
    tt_buf_free(&c->out);
    tt_mem_free(c);
}

/* Ends the connection (once): the exchange with `gone` (the client left or
 * was cut), the socket with an RST when `rst`. */
static void tcp_close(struct tt_px_tcp *c, int gone, int rst)
{
    if (c->dead)
        return;
    c->dead = 1;
    tt_px_exchange_end(&c->x, gone);
    int fd = c->io.fd;
    if (fd >= 0) {
        if (rst) {
            struct linger lg = {1, 0}; /* close sends RST: the client sees the cut */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        tt_io_stop(c->srv->loop, &c->io); /* forgets the fd */
        close(fd);
    }
    tt_link_remove(&c->link);
    c->srv->clients--;
    tt_defer_queue(c->srv->loop, &c->free_d);
}

static void tcp_maybe_done(struct tt_px_tcp *c)
{
    if (!c->dead && c->rd_eof && c->wr_done)
        tcp_close(c, 0, 0);
}

/* Writes what waits for the socket; FIN after the last of it.  Returns -1
 * when the client is gone (closed). */
static int tcp_flush(struct tt_px_tcp *c)
{
    size_t sent = 0;
    while (tt_buf_len(&c->out) > sent) {
        ssize_t n = send(c->io.fd, tt_buf_data(&c->out) + sent, tt_buf_len(&c->out) - sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            tt_log_debug("tcp client=%s name=%s: write failed: %s", c->peer, c->name,
                         strerror(errno));
            tcp_close(c, 1, 1);
            return -1;
        }
        sent += (size_t)n;
    }
    if (sent) {
        tt_buf_consume(&c->out, sent);
        tt_px_exchange_taken(&c->x, sent);
    }
    if (tt_buf_len(&c->out) == 0) {
        tt_buf_shrink(&c->out);
        if (c->resp_end && !c->wr_done) {
            c->wr_done = 1;
            shutdown(c->io.fd, SHUT_WR); /* the service said FIN */
            tcp_maybe_done(c);
        }
    }
    return 0;
}

static void tcp_read(struct tt_px_tcp *c)
{
    static uint8_t buf[TCP_READ_CHUNK]; /* one loop, one read at a time */
    /* One chunk a wake-up: the loop's other connections get their turn.
     * Never more than the exchange may still hold. */
    size_t room = TCP_BODY_MAX - tt_px_exchange_req_buffered(&c->x);
    ssize_t n = recv(c->io.fd, buf, room < sizeof(buf) ? room : sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        tt_log_debug("tcp client=%s name=%s: read failed: %s", c->peer, c->name, strerror(errno));
        tcp_close(c, 1, 1);
        return;
    }
    if (n == 0) {
        c->rd_eof = 1; /* FIN: the request ends, the service's rest still comes */
        tt_px_exchange_req_end(&c->x, NULL, 0);
        tcp_maybe_done(c);
        return;
    }
    if (tt_px_exchange_req_body(&c->x, buf, (size_t)n) < 0) {
        tcp_close(c, 1, 1);
        return;
    }
    if (tt_px_exchange_req_buffered(&c->x) >= TCP_BODY_PAUSE)
        c->paused = 1; /* the tunnel is behind: let the client's window fill */
}

static void tcp_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct tt_px_tcp *c = io->data;
    (void)loop;
    if ((events & TT_IO_WRITE) && tcp_flush(c) < 0)
        return;
    if (!c->dead && (events & (TT_IO_READ | TT_IO_ERROR)) && !c->rd_eof && !c->paused)
        tcp_read(c);
    if (!c->dead)
        tcp_update_io(c);
}

static void tcp_update_io(struct tt_px_tcp *c)
{
    unsigned ev = 0;
    if (!c->rd_eof && !c->paused)
        ev |= TT_IO_READ;
    if (tt_buf_len(&c->out))
        ev |= TT_IO_WRITE;
    if (ev != c->io.events)
        tt_io_modify(c->srv->loop, &c->io, ev);
}

/* --- What the exchange asks of us -------------------------------------------- */

static void tcp_op_interim(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    (void)x, (void)h;
}

static void tcp_op_head(struct tt_px_exchange *x, const struct tt_h2_headers *h)
{
    struct tt_px_tcp *c = TCP(x);
    c->status = h->status;
    if (h->status >= 200 && h->status < 300) {
        if (h->end_stream) {
            c->resp_end = 1;
            (void)tcp_flush(c);
        }
        return;
    }
    if (h->end_stream) {
        tt_log_info("tcp client=%s name=%s: refused, %d", c->peer, c->name, h->status);
        tcp_close(c, 0, 0);
    }
    /* else the reason follows as the body: logged at its end */
}

static ssize_t tcp_op_data(struct tt_px_exchange *x, const uint8_t *p, size_t len, int end)
{
    struct tt_px_tcp *c = TCP(x);
    if (c->dead)
        return -1;
    if (c->status < 200 || c->status >= 300) {
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
            tcp_close(c, 0, 0);
        }
        return (ssize_t)len;
    }
    size_t taken = 0;
    if (len && tt_buf_len(&c->out) == 0) {
        ssize_t n = send(c->io.fd, p, len, MSG_NOSIGNAL);
        if (n > 0)
            taken = (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            tcp_close(c, 1, 1);
            return -1;
        }
    }
    if (taken < len && tt_buf_append(&c->out, p + taken, len - taken) != 0) {
        /* More than the window we gave: cannot happen with a codec that
         * enforces it; cut rather than lose bytes, and say so. */
        tt_log_warn("tcp client=%s name=%s: cut: %zu bytes from c over the buffer", c->peer,
                    c->name, len - taken);
        tt_px_exchange_fail(x, "response buffer full");
        return (ssize_t)taken;
    }
    if (end)
        c->resp_end = 1;
    if (tt_buf_len(&c->out) == 0 && c->resp_end)
        (void)tcp_flush(c); /* the FIN */
    if (!c->dead)
        tcp_update_io(c);
    return (ssize_t)taken;
}

static void tcp_op_trailers(struct tt_px_exchange *x, const struct tt_header *h, size_t n)
{
    (void)h, (void)n;
    struct tt_px_tcp *c = TCP(x);
    c->resp_end = 1;
    if (tcp_flush(c) == 0 && !c->dead)
        tcp_update_io(c);
}

static void tcp_op_abort(struct tt_px_exchange *x, const char *why)
{
    struct tt_px_tcp *c = TCP(x);
    tt_log_debug("tcp client=%s name=%s: cut: %s", c->peer, c->name, why);
    tcp_close(c, 0, 1); /* the stream was reset or its tunnel went: RST */
}

static void tcp_op_req_taken(struct tt_px_exchange *x, size_t n, int drained)
{
    struct tt_px_tcp *c = TCP(x);
    (void)n;
    if (c->paused && drained && !c->dead) {
        c->paused = 0;
        tcp_update_io(c);
    }
}

static const struct tt_px_front_ops tcp_ops = {
    .interim = tcp_op_interim,
    .head = tcp_op_head,
    .data = tcp_op_data,
    .trailers = tcp_op_trailers,
    .abort = tcp_op_abort,
    .req_taken = tcp_op_req_taken,
};

/* --- Accepting ---------------------------------------------------------------- */

static void tcp_on_conn(struct tt_px_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct tt_px_server *srv = l->srv;
    struct tt_px_tcp_listener *tl = tt_container_of(l, struct tt_px_tcp_listener, l);
    if (srv->clients >= srv->cfg->max_clients || srv->env.draining) {
        uint64_t held;
        if (tt_log_limit_pass(&l->log, tt_loop_now(srv->loop), 1000, 1, &held))
            tt_log_warn("tcp client refused for %s: %s (%llu more since the last such line)",
                        tl->name, srv->env.draining ? "p is shutting down" : "--max-clients",
                        (unsigned long long)held);
        close(fd);
        return;
    }
    struct tt_px_tcp *c = tt_mem_calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    snprintf(c->name, sizeof(c->name), "%s", tl->name);
    tt_px_sockaddr_text((const struct sockaddr *)ss, c->peer, sizeof(c->peer), c->ip,
                        sizeof(c->ip));
    tt_buf_init(&c->out, TCP_OUT_MAX);
    tt_defer_init(&c->free_d, tcp_on_free, c);
    if (tt_io_start(srv->loop, &c->io, fd, TT_IO_READ, tcp_on_io, c) < 0) {
        close(fd);
        tt_mem_free(c);
        return;
    }
    srv->clients++;
    tt_list_push(&srv->tcp_list, &c->link);
    struct tt_px_exchange *x = &c->x;
    tt_px_exchange_init(x, &srv->env, &tcp_ops, c->peer, c->ip, TCP_BODY_MAX);
    x->proto = "tcp";
    tt_px_exchange_begin(x);
    if (tt_px_exchange_set_line(x, "CONNECT", 7, c->name, strlen(c->name)) < 0) {
        tcp_close(c, 1, 0);
        return;
    }
    struct tt_px_request rq = {
        .authority = c->name, .authority_len = strlen(c->name), .path = "",
        .name = tl->via ? tl->via : c->name,
    };
    (void)tt_px_exchange_start(x, &rq); /* a refusal closes c from inside */
}

int tt_px_tcp_listen(struct tt_px_server *srv, const struct tt_px_tcp_listen *def, int fd)
{
    struct tt_px_tcp_listener *tl = tt_mem_calloc(1, sizeof(*tl));
    if (!tl) {
        close(fd);
        return -1;
    }
    snprintf(tl->name, sizeof(tl->name), "%s", def->name);
    tl->via = def->via;
    tl->l.io.fd = -1;
    if (tt_px_listener_start(srv, &tl->l, fd, "tcp client", tcp_on_conn) < 0) {
        close(fd);
        tt_mem_free(tl);
        return -1;
    }
    srv->tcp_lis[srv->n_tcp_lis++] = &tl->l;
    return 0;
}

void tt_px_tcp_drain(struct tt_px_server *srv)
{
    /* No new connections; those open go on until the drain's deadline. */
    for (size_t i = 0; i < srv->n_tcp_lis; i++) {
        tt_px_listener_close(srv->tcp_lis[i]);
        tt_mem_free(tt_container_of(srv->tcp_lis[i], struct tt_px_tcp_listener, l));
    }
    srv->n_tcp_lis = 0;
}
