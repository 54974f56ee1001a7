/*
 * The tunnel listener: TLS accept, the PUT handshake (DESIGN.md), and the
 * tunnels that come out of it.
 *
 * A connection is a tt_px_hs while it does TLS and the PUT: it holds the
 * read buffer for the head (at most TT_HS_MAX_HEAD plus one read) and a 10 s
 * deadline.  After the 101 is written the hs is freed and what remains is a
 * tt_px_tunnel (name, peer, pool slot, a few counters) plus the session: an
 * idle tunnel holds no handshake state.
 */
#include "proxy.h"

#include "proto/handshake.h"
#include "proto/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HS_TIMEOUT_MS 5000     /* TLS and the PUT within this, or the slot goes */
#define HS_BUF (TT_HS_MAX_HEAD + 4096)
#define HS_MAX 1024            /* handshakes under way in all (~12 KiB each) */
#define HS_PER_PEER_MAX 32     /* ... from one address */
#define HS_FAIL_FREE 10        /* refused PUTs per address per minute before answers slow */
#define HS_FAIL_WINDOW_MS 60000
#define HS_SLOW_MS 1000        /* then each refusal waits this long before it is sent */
#define HS_PEERS 4096          /* addresses tracked */
#define HS_PEER_PROBE 8

/* What p remembers of a source address for the tunnel listener: handshakes
 * it has under way (a cap, so one address cannot hold the slots a real c
 * needs) and PUTs refused lately (a back-off, so wrong tokens cost the
 * guesser time, not p log lines).  A fixed table: an address that finds no
 * slot is not tracked, which errs toward letting it in. */
struct tt_px_hs_peer {
    char ip[48];
    uint32_t pending;
    uint32_t fails;
    uint64_t fail_ms;
};

struct px_hs {
    struct tt_px_server *srv;
    struct tt_link link; /* on srv->hs_list, newest first */
    struct tt_px_hs_peer *from;
    uint8_t slowed;      /* a refusal held back (HS_SLOW_MS) */
    struct tt_tls_conn *tls;
    struct tt_io io;
    struct tt_timer timer;
    int tls_done;
    int status; /* 0 while reading the head */
    int forward; /* the PUT asked for a forward link (tether-h2) */
    size_t head_len;
    tt_buf out;
    const char *why;
    const struct tt_px_token *caller; /* forward: the tokens entry of the name */
    uint8_t token_hash[32];           /* 101: the hash of the entry the token matched */
    char name[TT_PX_NAME_MAX + 1];
    char peer[64];
    char ip[48];
    size_t in_len;
    uint8_t in[HS_BUF];
};

static uint64_t hs_now(const struct tt_px_server *srv) { return tt_loop_now(srv->loop); }

/* Refusals are a peer's to cause at will: ten lines a second at most, and
 * a line after some were held back says how many. */
#define hs_refused(srv, fmt, ...)                                                              \
    do {                                                                                       \
        uint64_t held_;                                                                        \
        if (tt_log_limit_pass(&(srv)->hs_log, hs_now(srv), 1000, 10, &held_)) {                \
            if (held_)                                                                         \
                tt_log_info("tunnel refused " fmt " (and %llu more not logged)", __VA_ARGS__,  \
                            (unsigned long long)held_);                                        \
            else                                                                               \
                tt_log_info("tunnel refused " fmt, __VA_ARGS__);                               \
        }                                                                                      \
    } while (0)

static struct tt_px_hs_peer *hs_peer(struct tt_px_server *srv, const char *ip)
{
    if (!srv->hs_peers && !(srv->hs_peers = tt_mem_calloc(HS_PEERS, sizeof(*srv->hs_peers))))
        return NULL;
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    uint64_t now = hs_now(srv);
    struct tt_px_hs_peer *free_slot = NULL;
    for (unsigned k = 0; k < HS_PEER_PROBE; k++) {
        struct tt_px_hs_peer *e = &srv->hs_peers[(h + k) % HS_PEERS];
        if (e->ip[0] && !strcmp(e->ip, ip))
            return e;
        int unused = !e->ip[0] || (e->pending == 0 && now - e->fail_ms > HS_FAIL_WINDOW_MS);
        if (unused && !free_slot)
            free_slot = e;
    }
    if (free_slot) {
        memset(free_slot, 0, sizeof(*free_slot));
        snprintf(free_slot->ip, sizeof(free_slot->ip), "%s", ip);
    }
    return free_slot;
}

static void hs_free(struct px_hs *hs, int close_tls)
{
    struct tt_loop *loop = hs->srv->loop;
    tt_link_remove(&hs->link);
    if (hs->from && hs->from->pending)
        hs->from->pending--;
    tt_io_stop(loop, &hs->io);
    tt_timer_stop(loop, &hs->timer);
    if (close_tls && hs->tls) {
        tt_tls_conn_free(hs->tls);
        tt_mem_free(hs->tls);
    }
    tt_buf_free(&hs->out);
    hs->srv->handshakes--;
    if (hs->status == 101)
        hs->srv->granted--;
    /* The head held a token: do not leave it in freed memory. */
    memset(hs->in, 0, hs->in_len);
    tt_mem_free(hs);
}

/* --- The tunnel after the 101 --------------------------------------------- */

/* Stream callbacks go to the stream's exchange (its user data): the tunnel
 * knows no front. */
static int tun_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    (void)sid;
    tt_px_exchange_on_headers(ud, sud, h);
    return 0;
}

static int tun_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                       int end_stream)
{
    tt_px_exchange_on_data(ud, sid, sud, data, len, end_stream);
    return 0;
}

static void tun_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct tt_px_tunnel *t = ud;
    if (flags & TT_H2_CLOSE_CONN)
        t->dead = 1;
    tt_px_tunnel_stream_closed(t, sid, code, flags);
    tt_px_exchange_on_stream_close(t, sud, code, flags);
    if (!(flags & TT_H2_CLOSE_CONN))
        tt_px_exchange_slot_free(t);
}

static void tun_on_window_update(void *ud, uint32_t sid, void *sud)
{
    tt_px_exchange_wake(ud, sid == 0 ? NULL : sud);
}

static void tun_on_writable(void *ud, struct tt_session *s)
{
    (void)s;
    tt_px_exchange_wake(ud, NULL);
}

static void tun_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    struct tt_px_tunnel *t = ud;
    (void)debug;
    t->draining = 1;
    tt_log_info("tunnel draining name=%s peer=%s last_stream=%u code=%s", t->name, t->peer,
                last_sid, tt_h2_strerror(code));
}

static void tun_on_ping_ack(void *ud, uint64_t opaque)
{
    (void)ud;
    (void)opaque;
}

/* c's first SETTINGS say whether it takes extended CONNECT: a WebSocket
 * that came before them waits in the pool's queue until now. */
static void tun_on_remote_settings(void *ud) { tt_px_exchange_slot_free(ud); }

static void tun_on_closed(void *ud, struct tt_session *s, const char *reason)
{
    struct tt_px_tunnel *t = ud;
    (void)s;
    t->dead = 1;
    if (t->pool && t->pool->n == 1)
        tt_px_exchange_pool_gone(t->pool);
    size_t left = tt_px_registry_remove(t->reg, t);
    tt_log_info("tunnel down name=%s peer=%s reason=%s pool=%zu", t->name, t->peer,
                reason && *reason ? reason : "closed", left);
    if (t->on_gone)
        t->on_gone(t->gone_ud, reason && *reason ? reason : "closed");
    t->sess = NULL;
    tt_px_tunnel_fini(t);
    tt_mem_free(t);
}

const struct tt_session_callbacks tt_px_tunnel_cbs = {
    .h2 =
        {
            .on_headers = tun_on_headers,
            .on_data = tun_on_data,
            .on_stream_close = tun_on_stream_close,
            .on_window_update = tun_on_window_update,
            .on_goaway = tun_on_goaway,
            .on_ping_ack = tun_on_ping_ack,
            .on_remote_settings = tun_on_remote_settings,
        },
    .on_writable = tun_on_writable,
    .on_closed = tun_on_closed,
};

void tt_px_tunnel_session_config(struct tt_session_config *scfg, uint32_t ping_interval_ms,
                                 uint32_t ping_timeout_ms)
{
    /* A stream starts with TT_PX_STREAM_WINDOW and grows to 4 MiB while its
     * client keeps up (proxy/registry.h): 4 MiB rather than 1 took one
     * download from 1.09 to 1.22 GB/s (c waited less for WINDOW_UPDATE),
     * and a small start keeps what many slow readers make p hold small.
     * FR_OUT_MAX in front_h1.c follows the 4 MiB. */
    tt_session_config_default(scfg);
    scfg->h2.initial_window_size = TT_PX_STREAM_WINDOW;
    scfg->h2.connection_window = 16u << 20;
    /* Large DATA frames: the codec hands DATA to the bridge per frame per
     * read, so c's 256 KiB chunks arriving as one frame become one write to
     * the client instead of sixteen.  Nothing here buffers a whole frame. */
    scfg->h2.max_frame_size = 256u << 10;
    /* We open the streams: as many as the server allows (c says 1000),
     * not the codec's default of 256 (the server never opens one). */
    scfg->h2.max_concurrent_streams = 1024;
    scfg->ping_interval_ms = ping_interval_ms;
    scfg->ping_timeout_ms = ping_timeout_ms;
}

struct tt_px_tunnel *tt_px_tunnel_adopt(struct tt_px_server *srv, struct tt_px_registry *reg,
                                        struct tt_tls_conn *conn, const char *name,
                                        const char *peer, const uint8_t *early, size_t early_len)
{
    struct tt_px_tunnel *t = tt_mem_calloc(1, sizeof(*t));
    if (!t) {
        tt_tls_conn_free(conn);
        tt_log_error("tunnel refused peer=%s status=503 reason=out of memory", peer);
        return NULL;
    }
    t->srv = srv;
    t->reg = reg;
    tt_px_tunnel_init(t, srv->loop);
    t->serial = ++srv->tunnel_serial;
    srv->tunnels_up++;
    t->up_ms = tt_loop_now(srv->loop);
    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(t->peer, sizeof(t->peer), "%s", peer);
    t->sess = tt_session_new(srv->loop, conn, TT_H2_CLIENT, &srv->scfg, &tt_px_tunnel_cbs, t, early,
                             early_len);
    if (!t->sess) {
        tt_log_error("tunnel refused peer=%s status=503 reason=out of memory", t->peer);
        tt_px_tunnel_fini(t);
        tt_mem_free(t);
        return NULL;
    }
    int n = tt_px_registry_add(reg, t);
    if (n < 0) {
        tt_log_error("tunnel dropped name=%s peer=%s reason=out of memory", t->name, t->peer);
        t->dead = 1;
        tt_session_close(t->sess, "out of memory");
        return NULL;
    }
    tt_log_info("tunnel up name=%s peer=%s pool=%d", t->name, t->peer, n);
    tt_px_exchange_slot_free(t); /* requests waiting for a stream of the name */
    tt_session_flush(t->sess);
    if (srv->env.draining)
        tt_session_drain(t->sess, 10000);
    return t;
}

static void hs_become_tunnel(struct px_hs *hs)
{
    struct tt_px_server *srv = hs->srv;
    char name[TT_PX_NAME_MAX + 1], peer[64];
    memcpy(name, hs->name, sizeof(name));
    memcpy(peer, hs->peer, sizeof(peer));
    /* Bytes c sent after its head belong to HTTP/2 (DESIGN.md step 4). */
    const uint8_t *early = hs->in + hs->head_len;
    size_t early_len = hs->in_len - hs->head_len;
    struct tt_tls_conn *tls = hs->tls;
    hs->tls = NULL;
    tt_io_stop(srv->loop, &hs->io);
    /* The session copies the early bytes and takes the fd and SSL (it
     * copies the struct and clears ours); the holder itself is still ours. */
    uint8_t hash[32];
    memcpy(hash, hs->token_hash, 32);
    struct tt_px_tunnel *t = tt_px_tunnel_adopt(srv, &srv->reg, tls, name, peer, early, early_len);
    if (t) {
        memcpy(t->token_hash, hash, 32);
        t->has_token = 1;
    }
    tt_mem_free(tls);
    hs_free(hs, 0);
}

/* A forward link: c is the HTTP/2 client now, and the h2 front serves it,
 * its requests routed as calls of hs->caller (exchange.h). */
static void hs_become_forward(struct px_hs *hs)
{
    struct tt_px_server *srv = hs->srv;
    const uint8_t *early = hs->in + hs->head_len;
    size_t early_len = hs->in_len - hs->head_len;
    struct tt_tls_conn *tls = hs->tls;
    const struct tt_px_token *caller = hs->caller;
    char peer[64], ip[48];
    memcpy(peer, hs->peer, sizeof(peer));
    memcpy(ip, hs->ip, sizeof(ip));
    hs->tls = NULL;
    tt_io_stop(srv->loop, &hs->io);
    /* The early bytes live in hs: the session copies them before hs goes. */
    int rc = tt_px_h2f_adopt_forward(srv, tls, peer, ip, early, early_len, caller);
    tt_mem_free(tls);
    hs_free(hs, 0);
    if (rc < 0) {
        tt_log_error("forward link refused peer=%s reason=out of memory", peer);
        return;
    }
    srv->forward_links++; /* back down when the h2 front lets it go */
    tt_log_info("forward link up name=%s peer=%s", caller->name, peer);
}

/* --- The handshake ---------------------------------------------------------- */

static void hs_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events);

static void hs_set_io(struct px_hs *hs, int rc)
{
    unsigned ev = rc == TT_TLS_WANT_WRITE ? TT_IO_WRITE : TT_IO_READ;
    tt_io_modify(hs->srv->loop, &hs->io, ev);
}

/* Decides the answer to a complete head (DESIGN.md step 3). */
static void hs_decide(struct px_hs *hs, int head_len, const struct tt_hs_request *rq)
{
    struct tt_px_server *srv = hs->srv;
    int retry = -1;
    if (head_len < 0) {
        hs->status = 400;
        hs->why = head_len == TT_HS_TOO_LARGE ? "request head too large" : "malformed request";
    } else if (rq->method.len != 3 || memcmp(rq->method.base, "PUT", 3) != 0 ||
               rq->path.len != sizeof(TT_HS_PATH) - 1 ||
               memcmp(rq->path.base, TT_HS_PATH, rq->path.len) != 0) {
        hs->status = 400;
        hs->why = "not a tunnel request (want PUT " TT_HS_PATH ")";
    } else if (!rq->upgrade_ok) {
        hs->status = 426;
        hs->why = "upgrade to " TT_HS_UPGRADE " required";
    } else if (rq->version.len != 1 || rq->version.base[0] != '1') {
        hs->status = 400;
        hs->why = "unsupported Tether-Version (want 1)";
    } else if (!tt_px_name_valid((const char *)rq->name.base, rq->name.len)) {
        hs->status = 400;
        hs->why = "missing or invalid Tether-Name";
    } else if (!rq->has_authorization || rq->token.len == 0) {
        hs->status = 401;
        hs->why = "missing bearer token";
    } else {
        int v = tt_px_tokens_check(&srv->tokens, (const char *)rq->name.base, rq->name.len,
                                   rq->token.base, rq->token.len);
        if (v == 401) {
            hs->status = 401;
            hs->why = "unknown name or wrong token";
        } else if (v == 403) {
            hs->status = 403;
            hs->why = "the token belongs to another name";
        } else if (srv->env.draining) {
            hs->status = 503;
            hs->why = "proxy is shutting down";
            retry = 5;
        } else if (rq->forward &&
                   !(hs->caller = tt_px_tokens_find(&srv->tokens, (const char *)rq->name.base,
                                                    rq->name.len))) {
            hs->status = 401; /* cannot be: the token was just found for the name */
            hs->why = "unknown name";
        } else if (srv->reg.tunnels + srv->forward_links + srv->granted >= srv->cfg->max_tunnels) {
            /* Count the 101s still being written too, or two handshakes
             * finishing together would both pass the limit. */
            hs->status = 503;
            hs->why = "too many tunnels";
            retry = 5;
        } else {
            const struct tt_px_token *e =
                tt_px_tokens_find(&srv->tokens, (const char *)rq->name.base, rq->name.len);
            if (e)
                memcpy(hs->token_hash, e->hash, 32);
            hs->status = 101;
            hs->why = "ok";
            srv->granted++;
        }
    }
    hs->forward = head_len >= 0 && rq->forward;
    if (head_len >= 0 && rq->name.len > 0 && tt_px_name_valid((const char *)rq->name.base,
                                                                rq->name.len))
        memcpy(hs->name, rq->name.base, rq->name.len);
    hs->head_len = head_len > 0 ? (size_t)head_len : 0;
    if (hs->status != 101) {
        srv->tun_refused[hs->status == 401   ? TT_PX_REFUSE_TOKEN
                         : hs->status == 403 ? TT_PX_REFUSE_NAME
                         : hs->status == 503 ? TT_PX_REFUSE_LIMIT
                                             : TT_PX_REFUSE_REQUEST]++;
        hs_refused(srv, "peer=%s status=%d%s%s reason=%s", hs->peer, hs->status,
                   hs->name[0] ? " name=" : "", hs->name, hs->why);
    }
    if (tt_hs_build_response(&hs->out, hs->status, hs->status == 101 ? NULL : hs->why, retry, hs->forward) !=
        0) {
        hs_free(hs, 1);
        return;
    }
    if ((hs->status == 401 || hs->status == 403) && hs->from) {
        /* Wrong tokens from one address: after a few, each answer waits,
         * so guessing costs time (a valid token never waits). */
        struct tt_px_hs_peer *e = hs->from;
        uint64_t now = hs_now(srv);
        if (now - e->fail_ms > HS_FAIL_WINDOW_MS)
            e->fails = 0;
        e->fails++;
        e->fail_ms = now;
        if (e->fails == HS_FAIL_FREE + 1)
            tt_log_warn("tunnel handshakes from %s slowed: %d refused within %d s; each "
                        "refusal now waits %d ms",
                        e->ip, HS_FAIL_FREE + 1, HS_FAIL_WINDOW_MS / 1000, HS_SLOW_MS);
        if (e->fails > HS_FAIL_FREE) {
            hs->slowed = 1;
            tt_io_modify(srv->loop, &hs->io, 0);
            tt_timer_start(srv->loop, &hs->timer, HS_SLOW_MS);
            return;
        }
    }
    tt_io_modify(srv->loop, &hs->io, TT_IO_WRITE);
}

/* Returns 1 when hs was freed or handed over. */
static int hs_write(struct px_hs *hs)
{
    while (tt_buf_len(&hs->out) > 0) {
        ssize_t n = tt_tls_write(hs->tls, tt_buf_data(&hs->out), tt_buf_len(&hs->out));
        if (n == TT_TLS_WANT_WRITE || n == TT_TLS_WANT_READ) {
            hs_set_io(hs, (int)n);
            return 0;
        }
        if (n < 0) {
            tt_log_debug("tunnel handshake write failed peer=%s: %s", hs->peer, hs->tls->err);
            hs_free(hs, 1);
            return 1;
        }
        tt_buf_consume(&hs->out, (size_t)n);
    }
    if (hs->status == 101 && hs->forward)
        hs_become_forward(hs);
    else if (hs->status == 101)
        hs_become_tunnel(hs);
    else
        hs_free(hs, 1);
    return 1;
}

static void hs_read(struct px_hs *hs)
{
    for (;;) {
        if (hs->in_len == sizeof(hs->in)) {
            hs_decide(hs, TT_HS_TOO_LARGE, NULL);
            return;
        }
        ssize_t n = tt_tls_read(hs->tls, hs->in + hs->in_len, sizeof(hs->in) - hs->in_len);
        if (n == TT_TLS_WANT_READ || n == TT_TLS_WANT_WRITE) {
            hs_set_io(hs, (int)n);
            return;
        }
        if (n <= 0) {
            /* At info, as a failed TLS handshake is: an operator sees a
             * link that flaps between TLS and the PUT. */
            hs->srv->tun_refused[TT_PX_REFUSE_OTHER]++;
            hs_refused(hs->srv, "peer=%s status=0 reason=connection lost before the request: %s",
                       hs->peer, n == 0 ? "closed" : hs->tls->err);
            hs_free(hs, 1);
            return;
        }
        hs->in_len += (size_t)n;
        struct tt_hs_request rq;
        memset(&rq, 0, sizeof(rq));
        int r = tt_hs_parse_request(hs->in, hs->in_len, &rq);
        if (r == TT_HS_NEED_MORE)
            continue;
        hs_decide(hs, r, &rq);
        return;
    }
}

static void hs_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct px_hs *hs = io->data;
    (void)loop;
    (void)events;
    if (!hs->tls_done) {
        int rc = tt_tls_handshake(hs->tls);
        if (rc == TT_TLS_WANT_READ || rc == TT_TLS_WANT_WRITE) {
            hs_set_io(hs, rc);
            return;
        }
        if (rc != 1) {
            hs->srv->tun_refused[TT_PX_REFUSE_TLS]++;
            /* A c that does not trust p's certificate ends the handshake
             * with an alert about it (bad certificate for a pin that does
             * not match, unknown ca without one): say what to look at. */
            const char *e = hs->tls->err;
            int untrusted = strstr(e, "alert bad certificate") || strstr(e, "alert unknown ca") ||
                            strstr(e, "alert certificate");
            hs_refused(hs->srv, "peer=%s status=0 reason=TLS handshake failed: %s%s%s%s", hs->peer,
                       e, untrusted ? " (the c there does not trust this certificate: give it "
                                      "--fingerprint "
                                    : "",
                       untrusted ? hs->srv->tunnel_fp : "",
                       untrusted ? ", or its pin is stale)" : "");
            hs_free(hs, 1);
            return;
        }
        hs->tls_done = 1;
    }
    if (hs->status == 0)
        hs_read(hs);
    else
        hs_write(hs);
}

static void hs_on_timeout(struct tt_loop *loop, struct tt_timer *t)
{
    struct px_hs *hs = t->data;
    (void)loop;
    if (hs->slowed) {
        /* The refusal waited its time: now it goes. */
        hs->slowed = 0;
        tt_timer_start(loop, &hs->timer, HS_TIMEOUT_MS);
        tt_io_modify(loop, &hs->io, TT_IO_WRITE);
        return;
    }
    hs->srv->tun_refused[TT_PX_REFUSE_OTHER]++;
    hs_refused(hs->srv, "peer=%s status=408 reason=handshake not done within %d s", hs->peer,
               HS_TIMEOUT_MS / 1000);
    hs_free(hs, 1);
}

static void tun_on_conn(struct tt_px_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct tt_px_server *srv = l->srv;
    struct tt_loop *loop = srv->loop;
    if (srv->env.draining) {
        close(fd);
        return;
    }
    char ip[48];
    char peer[64];
    tt_px_sockaddr_text((const struct sockaddr *)ss, peer, sizeof(peer), ip, sizeof(ip));
    struct tt_px_hs_peer *from = hs_peer(srv, ip);
    if (from && from->pending >= HS_PER_PEER_MAX) {
        srv->tun_refused[TT_PX_REFUSE_OTHER]++;
        hs_refused(srv, "peer=%s status=0 reason=%u handshakes already under way from this address",
                   peer, (unsigned)from->pending);
        close(fd);
        return;
    }
    if (srv->handshakes >= HS_MAX) {
        /* Full: the oldest handshake goes, so a new one (a real c) always
         * gets its turn; a stalled one has had the longest time. */
        struct tt_link *oldest = srv->hs_list.first;
        while (oldest && oldest->next)
            oldest = oldest->next;
        if (oldest) {
            struct px_hs *old = tt_container_of(oldest, struct px_hs, link);
            srv->tun_refused[TT_PX_REFUSE_OTHER]++;
            hs_refused(srv, "peer=%s status=0 reason=dropped for a newer one (%d under way)",
                       old->peer, HS_MAX);
            hs_free(old, 1);
        }
    }
    struct px_hs *hs = tt_mem_alloc(sizeof(*hs));
    struct tt_tls_conn *tls = tt_mem_calloc(1, sizeof(*tls));
    if (!hs || !tls) {
        tt_mem_free(hs);
        tt_mem_free(tls);
        close(fd);
        return;
    }
    memset(hs, 0, offsetof(struct px_hs, in));
    hs->srv = srv;
    hs->tls = tls;
    tt_buf_init(&hs->out, 4096);
    memcpy(hs->peer, peer, sizeof(hs->peer));
    memcpy(hs->ip, ip, sizeof(hs->ip));
    if (tt_tls_conn_init(tls, srv->tls_ctx, fd, 1, NULL) < 0) {
        tt_log_warn("tunnel TLS setup failed peer=%s: %s", hs->peer, tls->err);
        tt_tls_conn_free(tls);
        tt_mem_free(tls);
        tt_mem_free(hs);
        return;
    }
    srv->handshakes++;
    tt_list_push(&srv->hs_list, &hs->link);
    if ((hs->from = from) != NULL)
        from->pending++;
    tt_timer_init(&hs->timer, hs_on_timeout, hs);
    tt_timer_start(loop, &hs->timer, HS_TIMEOUT_MS);
    if (tt_io_start(loop, &hs->io, fd, TT_IO_READ, hs_on_io, hs) < 0) {
        hs->io.fd = -1;
        hs_free(hs, 1);
        return;
    }
    hs_on_io(loop, &hs->io, TT_IO_READ);
}

int tt_px_tunnel_listen(struct tt_px_server *srv, int fd)
{
    return tt_px_listener_start(srv, &srv->tunnel_lis, fd, "tunnel", tun_on_conn);
}

void tt_px_tunnel_drain(struct tt_px_server *srv, uint32_t grace_ms)
{
    tt_px_listener_close(&srv->tunnel_lis);
    /* Collect first: a drained session may close (and leave its pool)
     * while we walk. */
    size_t n = 0, k = 0;
    struct tt_px_tunnel **all = tt_mem_calloc(srv->reg.tunnels + 1, sizeof(*all));
    if (!all)
        return;
    for (size_t b = 0; b < TT_PX_REG_BUCKETS; b++)
        for (struct tt_px_pool *p = srv->reg.buckets[b]; p; p = p->next)
            for (size_t i = 0; i < p->n && n < srv->reg.tunnels; i++)
                all[n++] = p->members[i];
    for (k = 0; k < n; k++)
        all[k]->draining = 1;
    for (k = 0; k < n; k++)
        if (all[k]->sess && !tt_session_closing(all[k]->sess))
            tt_session_drain(all[k]->sess, grace_ms);
    tt_mem_free(all);
}

size_t tt_px_tunnel_count(const struct tt_px_server *srv) { return srv->reg.tunnels; }

size_t tt_px_tunnel_revoke(struct tt_px_server *srv, const struct tt_px_tokens *now)
{
    /* Collect first: a closed session leaves its pool while we walk. */
    size_t n = 0;
    struct tt_px_tunnel **all = tt_mem_calloc(srv->reg.tunnels + 1, sizeof(*all));
    if (!all)
        return 0;
    for (size_t b = 0; b < TT_PX_REG_BUCKETS; b++)
        for (struct tt_px_pool *p = srv->reg.buckets[b]; p; p = p->next)
            for (size_t i = 0; i < p->n && n < srv->reg.tunnels; i++)
                if (p->members[i]->has_token &&
                    !tt_px_tokens_still(now, p->members[i]->name, p->members[i]->token_hash))
                    all[n++] = p->members[i];
    for (size_t k = 0; k < n; k++) {
        struct tt_px_tunnel *t = all[k];
        if (!t->sess || tt_session_closing(t->sess))
            continue;
        tt_log_warn("tunnel closed name=%s peer=%s reason=its token was revoked (reload)", t->name,
                    t->peer);
        t->dead = 1;
        tt_session_close(t->sess, "token revoked");
    }
    tt_mem_free(all);
    return n;
}
