/*
 * The accept layer: client listeners, the TLS handshake of the HTTPS front,
 * and choosing the protocol of each connection before any front sees it.
 *
 *   plaintext port: the first bytes decide.  The HTTP/2 connection preface
 *                   (RFC 9113 §3.4, prior knowledge) goes to front_h2.c,
 *                   anything else to front_h1.c.  They are looked at with
 *                   MSG_PEEK, so the front reads them itself; only a client
 *                   that sends a proper prefix of the preface and pauses has
 *                   its bytes read here (else the level-triggered listener
 *                   would spin), to be handed over as `early` bytes.
 *   HTTPS port:     the handshake runs on the loop (10 s at most, so a
 *                   client that stalls in it costs a timer, never a wait);
 *                   ALPN h2 goes to front_h2.c (RFC 9113 §3.2), http/1.1 to
 *                   front_h1.c, and no ALPN is sniffed like plaintext.
 *
 * A connection lives here as a px_pending until then (a socket, maybe a TLS
 * object, a deadline and at most 24 bytes), and is counted in srv->clients
 * like the fronts' connections, so a drain waits for it too.  Every
 * listener, the tunnel's too (tunnel.c), is a tt_px_listener: one accept
 * loop, one way to behave at the fd limit.
 */
#include "proxy.h"

#include "proto/log.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define AC_DEADLINE_MS 10000 /* the handshake, or the first bytes, within this */
#define AC_BATCH 64          /* connections accepted per listener wake-up */
#define AC_PAUSE_MS 250      /* accepting stops this long at the fd limit */
#define AC_PENDING_MAX 1024  /* connections whose protocol is not known yet */

struct px_pending {
    struct tt_px_server *srv;
    struct tt_link link; /* on srv->accepting */
    struct tt_io io;
    struct tt_timer timer;
    struct tt_tls_conn tls; /* ssl NULL: plaintext */
    uint8_t is_tls;
    uint8_t handshaking;
    uint8_t need_proxy; /* --proxy-protocol: the v2 header is still to come */
    uint8_t early_len;
    uint8_t early[TT_PX_H2_PREFACE_LEN];
    char peer[64];
    char ip[48];
};

/* --- Listeners ------------------------------------------------------------------ */

/* Out of descriptors (or of kernel memory for one): the connection waits
 * in the backlog while we pause, rather than the level-triggered listener
 * waking us at once, forever (nginx disables accept events the same way). */
static int ls_out_of_fds(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static void ls_on_resume(struct tt_loop *loop, struct tt_timer *t)
{
    struct tt_px_listener *l = t->data;
    if (l->io.fd >= 0)
        tt_io_modify(loop, &l->io, TT_IO_READ);
}

static void ls_on_accept(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct tt_px_listener *l = io->data;
    (void)events;
    for (int k = 0; k < AC_BATCH && l->io.fd >= 0; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            uint64_t held;
            int pause = ls_out_of_fds(err);
            if (tt_log_limit_pass(&l->log, tt_loop_now(loop), 1000, 1, &held))
                tt_log_warn("%s accept failed: %s%s (%llu more since the last such line)", l->what,
                            strerror(err), pause ? ": pausing accepts for 250 ms" : "",
                            (unsigned long long)held);
            if (pause) {
                tt_io_modify(loop, &l->io, 0);
                tt_timer_start(loop, &l->resume, AC_PAUSE_MS);
            }
            return;
        }
        /* Responses and WINDOW_UPDATEs are small writes that must leave at
         * once: Nagle would hold each behind the last unacked one. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->on_conn(l, fd, &ss);
    }
}

int tt_px_listener_start(struct tt_px_server *srv, struct tt_px_listener *l, int fd,
                         const char *what,
                         void (*on_conn)(struct tt_px_listener *, int, const struct sockaddr_storage *))
{
    l->srv = srv;
    l->what = what;
    l->on_conn = on_conn;
    memset(&l->log, 0, sizeof(l->log));
    tt_timer_init(&l->resume, ls_on_resume, l);
    return tt_io_start(srv->loop, &l->io, fd, TT_IO_READ, ls_on_accept, l);
}

void tt_px_listener_close(struct tt_px_listener *l)
{
    if (l->io.fd < 0)
        return;
    int fd = l->io.fd;
    tt_io_stop(l->srv->loop, &l->io);
    tt_timer_stop(l->srv->loop, &l->resume);
    close(fd);
    l->io.fd = -1;
}

/* --- Sockets ------------------------------------------------------------------------ */

int tt_px_listen_socket(const struct tt_px_addr *a, char *err, size_t errlen)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", a->text, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "%s: %s", a->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* --- Connections whose protocol is not known yet ------------------------------------ */

static void ac_free(struct px_pending *pc, int close_conn)
{
    struct tt_px_server *srv = pc->srv;
    tt_io_stop(srv->loop, &pc->io);
    tt_timer_stop(srv->loop, &pc->timer);
    if (close_conn) {
        if (pc->tls.ssl)
            tt_tls_conn_free(&pc->tls);
        else if (pc->tls.fd >= 0)
            close(pc->tls.fd);
    }
    tt_link_remove(&pc->link);
    srv->accepting_n--;
    srv->clients--;
    tt_mem_free(pc);
}

/* Hands the connection to a front (which takes the socket and TLS). */
static void ac_hand_over(struct px_pending *pc, int h2)
{
    struct tt_px_server *srv = pc->srv;
    struct tt_tls_conn conn = pc->tls;
    uint8_t early[TT_PX_H2_PREFACE_LEN];
    size_t early_len = pc->early_len;
    char peer[sizeof(pc->peer)], ip[sizeof(pc->ip)];
    memcpy(early, pc->early, early_len);
    memcpy(peer, pc->peer, sizeof(peer));
    memcpy(ip, pc->ip, sizeof(ip));
    ac_free(pc, 0);
    int rc = h2 ? tt_px_h2f_adopt(srv, &conn, peer, ip, early, early_len)
                : tt_px_h1_adopt(srv, &conn, peer, ip, early, early_len);
    if (rc < 0)
        tt_log_warn("client dropped client=%s: out of memory", peer);
}

/* Looks at the first bytes (RFC 9113 §3.3: HTTP/2 with prior knowledge
 * starts with the preface).  Returns 1 when the connection was handed over
 * or dropped, 0 to wait for more. */
static int ac_sniff(struct px_pending *pc)
{
    uint8_t buf[TT_PX_H2_PREFACE_LEN];
    size_t have = pc->early_len;
    memcpy(buf, pc->early, have);
    ssize_t n;
    if (!pc->is_tls && have == 0) {
        /* Peeked, not read: the front reads the request itself. */
        do
            n = recv(pc->tls.fd, buf, sizeof(buf), MSG_PEEK);
        while (n < 0 && errno == EINTR);
    } else {
        n = tt_tls_read(&pc->tls, buf + have, sizeof(buf) - have);
        if (n == TT_TLS_WANT_READ || n == TT_TLS_WANT_WRITE)
            n = -1, errno = EAGAIN;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n == 0 && have == 0) {
        ac_free(pc, 1); /* gone before a byte: nothing to answer */
        return 1;
    }
    if (n < 0) {
        tt_log_debug("client gone client=%s: %s", pc->peer,
                     pc->is_tls ? pc->tls.err : strerror(errno));
        ac_free(pc, 1);
        return 1;
    }
    int peeked = !pc->is_tls && have == 0;
    size_t len = peeked ? (size_t)n : have + (size_t)n;
    int r = tt_px_h2f_sniff(buf, len);
    if (r == 0 && n > 0) {
        /* A proper prefix of the preface: keep it and wait for the rest. */
        if (peeked) {
            ssize_t k;
            do
                k = read(pc->tls.fd, pc->early, len);
            while (k < 0 && errno == EINTR);
            if (k != (ssize_t)len) {
                ac_free(pc, 1);
                return 1;
            }
        } else {
            memcpy(pc->early + have, buf + have, (size_t)n);
        }
        pc->early_len = (uint8_t)len;
        return 0;
    }
    if (!peeked)
        memcpy(pc->early + have, buf + have, (size_t)(n > 0 ? n : 0));
    pc->early_len = peeked ? 0 : (uint8_t)len;
    /* At the end of the input (n == 0) a prefix is HTTP/1.1's to refuse. */
    ac_hand_over(pc, r == 1);
    return 1;
}

static void ac_handshake(struct px_pending *pc)
{
    int r = tt_tls_handshake(&pc->tls);
    if (r == TT_TLS_WANT_READ || r == TT_TLS_WANT_WRITE) {
        tt_io_modify(pc->srv->loop, &pc->io, r == TT_TLS_WANT_READ ? TT_IO_READ : TT_IO_WRITE);
        return;
    }
    if (r != 1) {
        /* A plaintext request sent to this port, a client that offers only
         * old protocols or blocklisted suites: just closed. */
        tt_log_debug("TLS handshake failed client=%s: %s", pc->peer,
                     pc->tls.err[0] ? pc->tls.err : "?");
        ac_free(pc, 1);
        return;
    }
    pc->handshaking = 0;
    enum tt_tls_alpn alpn = tt_tls_alpn(&pc->tls);
    if (tt_log_enabled(TT_LOG_DEBUG)) {
        char d[96];
        tt_tls_describe(&pc->tls, d, sizeof(d));
        tt_log_debug("https client client=%s %s alpn=%s", pc->peer, d,
                     alpn == TT_TLS_ALPN_H2       ? "h2"
                     : alpn == TT_TLS_ALPN_HTTP11 ? "http/1.1"
                                                  : "none");
    }
    if (alpn == TT_TLS_ALPN_H2 || alpn == TT_TLS_ALPN_HTTP11) {
        /* ALPN is a promise of the protocol. */
        ac_hand_over(pc, alpn == TT_TLS_ALPN_H2);
        return;
    }
    /* Without ALPN a preface still means HTTP/2 (prior knowledge, as on the
     * plaintext port).  The first bytes may have come with the handshake's
     * last flight: they sit in OpenSSL, so look now. */
    tt_io_modify(pc->srv->loop, &pc->io, TT_IO_READ);
    ac_sniff(pc);
}

/* PROXY protocol v2 (haproxy's proxy-protocol.txt §2.2): a 16-byte head
 * (signature, version 2 and command, family, length) then the addresses.
 * Read whole before anything else, with MSG_PEEK until it is all there, so
 * nothing of the client's own bytes is taken.  Returns 1 when done (the
 * peer is now the balancer's client for PROXY, the balancer itself for
 * LOCAL: its health checks), 0 to wait, -1 when the connection was refused
 * (closed). */
static int ac_proxy_header(struct px_pending *pc)
{
    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    uint8_t b[16 + 216];
    ssize_t n;
    do
        n = recv(pc->tls.fd, b, sizeof b, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    const char *bad = NULL;
    size_t need = 16;
    if (n <= 0)
        bad = "closed before a PROXY protocol header";
    else if (memcmp(b, sig, (size_t)n < 12 ? (size_t)n : 12))
        bad = "no PROXY protocol v2 header (--proxy-protocol is on)";
    else if (n >= 16 && ((b[12] >> 4) != 2 || (b[12] & 0xf) > 1))
        bad = "PROXY protocol header of another version or command";
    else if (n >= 16 && (need = 16 + ((size_t)b[14] << 8 | b[15])) > sizeof b)
        bad = "PROXY protocol header longer than its addresses need";
    if (bad) {
        tt_log_debug("client refused client=%s: %s", pc->peer, bad);
        ac_free(pc, 1);
        return -1;
    }
    if ((size_t)n < need)
        return 0; /* the rest is on its way (the deadline bounds the wait) */
    if (recv(pc->tls.fd, b, need, 0) != (ssize_t)need) {
        ac_free(pc, 1);
        return -1;
    }
    pc->need_proxy = 0;
    if ((b[12] & 0xf) == 0)
        return 1; /* LOCAL */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (b[13] == 0x11 && need >= 16 + 12) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, b + 16, 4);
        memcpy(&s4->sin_port, b + 24, 2);
    } else if (b[13] == 0x21 && need >= 16 + 36) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, b + 16, 16);
        memcpy(&s6->sin6_port, b + 48, 2);
    } else {
        return 1; /* UNSPEC or a UNIX socket: the balancer's own address stays */
    }
    tt_px_sockaddr_text((const struct sockaddr *)&ss, pc->peer, sizeof(pc->peer), pc->ip,
                        sizeof(pc->ip));
    return 1;
}

static void ac_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct px_pending *pc = io->data;
    (void)loop;
    (void)events;
    if (pc->need_proxy && ac_proxy_header(pc) <= 0)
        return;
    if (pc->handshaking)
        ac_handshake(pc);
    else
        ac_sniff(pc);
}

static void ac_on_timeout(struct tt_loop *loop, struct tt_timer *t)
{
    struct px_pending *pc = t->data;
    (void)loop;
    if (pc->need_proxy || pc->handshaking || pc->early_len == 0) {
        tt_log_debug("client dropped client=%s: nothing within %d s", pc->peer,
                     AC_DEADLINE_MS / 1000);
        ac_free(pc, 1);
        return;
    }
    /* A partial preface that stalls: HTTP/1.1 answers it (408). */
    ac_hand_over(pc, 0);
}

static void ac_on_conn(struct tt_px_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct tt_px_server *srv = l->srv;
    SSL_CTX *tls = l == &srv->https_lis ? srv->https_ctx : NULL;
    if (srv->clients >= srv->cfg->max_clients) {
        uint64_t held;
        if (tt_log_limit_pass(&l->log, tt_loop_now(srv->loop), 1000, 1, &held))
            tt_log_warn("client refused: %zu connections open (--max-clients %u; %llu more "
                        "refused since the last such line)",
                        srv->clients, srv->cfg->max_clients, (unsigned long long)held);
        close(fd);
        return;
    }
    if (srv->accepting_n >= AC_PENDING_MAX) {
        /* Connections still in their TLS handshake or first bytes: the
         * oldest goes, so a flood of half-done handshakes cannot keep the
         * others out (each holds an SSL object). */
        struct tt_link *oldest = srv->accepting.first;
        while (oldest && oldest->next)
            oldest = oldest->next;
        if (oldest)
            ac_free(tt_container_of(oldest, struct px_pending, link), 1);
    }
    struct px_pending *pc = tt_mem_calloc(1, sizeof(*pc));
    if (!pc) {
        close(fd);
        return;
    }
    pc->srv = srv;
    tt_px_sockaddr_text((const struct sockaddr *)ss, pc->peer, sizeof(pc->peer), pc->ip,
                        sizeof(pc->ip));
    tt_timer_init(&pc->timer, ac_on_timeout, pc);
    tt_list_push(&srv->accepting, &pc->link);
    srv->accepting_n++;
    srv->clients++;
    if (tls) {
        if (tt_tls_conn_init(&pc->tls, tls, fd, 1, NULL) < 0) {
            tt_log_warn("client dropped client=%s: %s", pc->peer, pc->tls.err);
            close(fd);
            pc->tls.fd = -1;
            ac_free(pc, 0);
            return;
        }
        pc->is_tls = 1;
        pc->handshaking = 1;
    } else {
        tt_tls_conn_init_plain(&pc->tls, fd);
    }
    pc->need_proxy = (uint8_t)srv->cfg->proxy_protocol;
    if (tt_io_start(srv->loop, &pc->io, fd, TT_IO_READ, ac_on_io, pc) < 0) {
        ac_free(pc, 1);
        return;
    }
    tt_timer_start(srv->loop, &pc->timer, AC_DEADLINE_MS);
}

int tt_px_accept_listen(struct tt_px_server *srv, int fd, int tls)
{
    if (tls)
        return tt_px_listener_start(srv, &srv->https_lis, fd, "https client", ac_on_conn);
    return tt_px_listener_start(srv, &srv->client_lis, fd, "client", ac_on_conn);
}

void tt_px_accept_drain(struct tt_px_server *srv, uint32_t grace_ms)
{
    tt_px_listener_close(&srv->client_lis);
    tt_px_listener_close(&srv->https_lis);
    while (srv->accepting.first)
        ac_free(tt_container_of(srv->accepting.first, struct px_pending, link), 1);
    tt_px_h1_drain(srv);
    tt_px_h2f_drain(srv, grace_ms);
}
