/*
 * One tunnel of c: dial p, prove who we are, serve, and when anything goes
 * wrong, wait and dial again, forever.
 *
 *   IDLE --timer--> RESOLVING --> CONNECTING --writable--> TLS --done--> SEND
 *     ^                 |             |                     |              |
 *     |                 |             +-- next address      |              v
 *     +---- backoff <---+-------------+---------------------+-- error -- RECV
 *     |                                                      | 101
 *     +---- backoff <-- tunnel_srv.c: the tunnel closed <-- UP
 *
 * Every state change is one log line (docs/DESIGN.md "Liveness":
 * connecting, up, down with the reason and the next wait, closed).  The
 * wait between attempts is exponential backoff with full jitter
 * ("Exponential Backoff And Jitter", AWS architecture blog, 2015): many c
 * behind one NAT that lost p at the same moment do not come back in
 * lockstep.  A tunnel that stayed up 30 s starts again from the small
 * wait (the formula: docs/DESIGN.md "Liveness", origin.h).  After 401
 * or 403 the token is wrong, and retrying fast cannot fix that: we wait
 * --auth-backoff and say so plainly.
 *
 * --proxy is resolved again before every attempt (a name may move), off
 * the loop (proto/resolve.h): a dead DNS server must not stop the other
 * tunnels' PINGs and downloads.  A lookup that does not answer within
 * DL_RESOLVE_TIMEOUT_MS is a failed attempt like a refused connect.  Every
 * address is tried in the resolver's order before the attempt counts as
 * failed.
 */
#include "origin/origin.h"

#include "codec/buf.h"
#include "proto/handshake.h"
#include "proto/log.h"
#include "proto/loop.h"
#include "proto/resolve.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define DL_RESOLVE_TIMEOUT_MS TT_RESOLVE_TIMEOUT_MS
#define DL_CONNECT_TIMEOUT_MS 10000u  /* per address */
#define DL_HANDSHAKE_TIMEOUT_MS 15000u /* TLS + PUT + 101 */
#define DL_IN_MAX (1u << 20)           /* the head, plus h2 bytes p sent right after it */
#define DL_RETRY_AFTER_MAX_S 600       /* a 503's Retry-After we honour at most */

/* ---- Backoff (pure) -------------------------------------------------- */

uint64_t tt_backoff_default_rand(void *state)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    uint64_t *s = state;
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint64_t tt_backoff_ceiling_ms(unsigned failures)
{
    /* 200 ms * 2^8 is already past the cap: no shift can overflow. */
    if (failures >= 8)
        return TT_BACKOFF_CAP_MS;
    uint64_t c = (uint64_t)TT_BACKOFF_BASE_MS << failures;
    return c < TT_BACKOFF_CAP_MS ? c : TT_BACKOFF_CAP_MS;
}

uint64_t tt_backoff_next_ms(struct tt_backoff *b)
{
    uint64_t ceiling = tt_backoff_ceiling_ms(b->failures);
    uint64_t r = b->rand(b->rand_ud);
    /* Full jitter: uniform over [0, ceiling]. */
    uint64_t wait = r % (ceiling + 1);
    if (wait < TT_BACKOFF_MIN_MS)
        wait = TT_BACKOFF_MIN_MS;
    if (b->failures < 64)
        b->failures++;
    return wait;
}

void tt_backoff_was_up(struct tt_backoff *b, uint64_t up_ms)
{
    if (up_ms >= TT_BACKOFF_RESET_MS)
        b->failures = 0;
}

/* ---- The dialer ------------------------------------------------------ */

enum dl_state {
    DL_IDLE = 0,  /* waiting for the timer */
    DL_RESOLVING, /* the lookup of --proxy runs in a helper thread */
    DL_CONNECTING,
    DL_TLS,
    DL_SEND,
    DL_RECV,
    DL_UP,
    DL_STOPPED,
};

struct tt_dialer {
    struct tt_origin *o;
    const struct tt_origin_proxy *px; /* the p it dials: one of opts->proxies, or `first` */
    struct tt_origin_proxy first;     /* opts' first --proxy (the forward link's) */
    unsigned index;
    enum dl_state state;
    int draining;

    struct tt_resolve *res; /* while DL_RESOLVING */
    struct addrinfo *ai_list, *ai_cur;
    int last_errno; /* of the last failed connect, for the log */
    int fd;
    struct tt_io io;
    int io_on;
    struct tt_timer timer;
    struct tt_tls_conn *tls;
    tt_buf out;
    size_t out_off;
    tt_buf in;

    struct tt_backoff bo;
    uint64_t rand_state;
    uint64_t up_at;
    struct tt_tunnel_srv *serve; /* DL_UP: the HTTP/2 server on the tunnel */
    /* A forward link (c the HTTP/2 client): who takes the connection after
     * the 101, and its handle while up; NULL for a tunnel. */
    const struct tt_dialer_forward *fw;
    void *fw_link;
    /* For c's admin listener: how often it came up and went down, and why
     * the last time. */
    unsigned ups, downs;
    char last_error[200];
    uint64_t last_error_ms;
};

static void dl_note(struct tt_dialer *d, const char *why)
{
    d->downs++;
    snprintf(d->last_error, sizeof d->last_error, "%s", why);
    d->last_error_ms = tt_loop_now(d->o->loop);
}

void tt_dialer_info(const struct tt_dialer *d, struct tt_dialer_info *out)
{
    static const char *const states[] = {"waiting", "resolving", "connecting", "tls",
                                         "sending",  "receiving", "up",         "stopped"};
    out->index = d->index;
    out->proxy = d->px->text;
    out->forward = d->fw != NULL;
    out->state = (size_t)d->state < sizeof states / sizeof states[0] ? states[d->state] : "?";
    out->up_ms = d->state == DL_UP ? d->up_at : 0;
    out->ups = d->ups;
    out->downs = d->downs;
    out->last_error = d->last_error;
    out->last_error_ms = d->last_error_ms;
}

static void dl_attempt(struct tt_dialer *d);
static void dl_try_address(struct tt_dialer *d);
static void dl_step(struct tt_dialer *d);

static void dl_cleanup(struct tt_dialer *d)
{
    struct tt_loop *loop = d->o->loop;
    if (d->io_on) {
        tt_io_stop(loop, &d->io);
        d->io_on = 0;
    }
    tt_timer_stop(loop, &d->timer);
    if (d->res) {
        /* The helper thread finishes alone; it holds nothing of ours. */
        tt_resolve_cancel(d->res);
        d->res = NULL;
    }
    if (d->tls) {
        tt_tls_conn_free(d->tls); /* closes the fd too */
        tt_mem_free(d->tls);
        d->tls = NULL;
        d->fd = -1;
    }
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
    if (d->ai_list) {
        freeaddrinfo(d->ai_list);
        d->ai_list = d->ai_cur = NULL;
    }
    tt_buf_free(&d->out);
    tt_buf_free(&d->in);
    d->out_off = 0;
}

static void dl_stopped(struct tt_dialer *d)
{
    dl_cleanup(d);
    if (d->state == DL_STOPPED)
        return;
    d->state = DL_STOPPED;
    struct tt_origin *o = d->o;
    if (o->live > 0 && --o->live == 0 && o->on_all_stopped)
        o->on_all_stopped(o);
}

static void dl_wait(struct tt_dialer *d, uint64_t ms)
{
    d->state = DL_IDLE;
    tt_timer_start(d->o->loop, &d->timer, ms);
}

/* The attempt failed or the tunnel went down: one log line, then wait. */
static void dl_down(struct tt_dialer *d, const char *why)
{
    dl_note(d, why);
    dl_cleanup(d);
    if (d->draining) {
        dl_stopped(d);
        return;
    }
    uint64_t wait = tt_backoff_next_ms(&d->bo);
    tt_log_warn("%s down (tunnel %u): %s; next try in %.1f s", d->fw ? "forward link" : "tunnel", d->index, why,
                (double)wait / 1000.0);
    dl_wait(d, wait);
}

/* p's reason phrase, made safe for one log line. */
static void dl_reason(tt_iov r, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < r.len && n + 1 < outlen && n < 60; i++) {
        unsigned char ch = r.base[i];
        out[n++] = (ch >= ' ' && ch < 0x7f) ? (char)ch : '?';
    }
    out[n] = 0;
}

static void dl_refused(struct tt_dialer *d, const struct tt_hs_response *resp)
{
    const struct tt_origin_opts *opts = d->o->opts;
    char why[200], reason[64];
    dl_reason(resp->reason, reason, sizeof reason);

    if (resp->status == 401 || resp->status == 403) {
        dl_note(d, resp->status == 401 ? "proxy rejected the token (401)"
                                       : "the token is not valid for this name (403)");
        dl_cleanup(d);
        if (d->draining) {
            dl_stopped(d);
            return;
        }
        /* A wrong token stays wrong: retrying at the normal pace would only
         * fill p's log.  Counted as a failure so that a later network error
         * does not restart from the smallest wait either. */
        uint64_t wait = opts->auth_backoff_ms;
        if (wait < TT_BACKOFF_MIN_MS)
            wait = TT_BACKOFF_MIN_MS;
        if (d->bo.failures < 64)
            d->bo.failures++;
        if (resp->status == 401)
            tt_log_error("proxy rejected the token for name %s (401 Unauthorized): check --token; "
                         "next try in %g s",
                         opts->name, (double)wait / 1000.0);
        else
            tt_log_error("proxy refused the tunnel: the token is not valid for name %s "
                         "(403 Forbidden): check --name and --token; next try in %g s",
                         opts->name, (double)wait / 1000.0);
        dl_wait(d, wait);
        return;
    }
    if (resp->status == 503) {
        snprintf(why, sizeof why, "proxy is full (503 %s)", reason);
        dl_note(d, why);
        dl_cleanup(d);
        if (d->draining) {
            dl_stopped(d);
            return;
        }
        uint64_t wait = tt_backoff_next_ms(&d->bo);
        if (resp->retry_after > 0) {
            int ra = resp->retry_after < DL_RETRY_AFTER_MAX_S ? resp->retry_after
                                                             : DL_RETRY_AFTER_MAX_S;
            if ((uint64_t)ra * 1000u > wait)
                wait = (uint64_t)ra * 1000u;
        }
        tt_log_warn("tunnel down (tunnel %u): proxy %s is full (503 %s); next try in %.1f s",
                    d->index, d->px->text, reason, (double)wait / 1000.0);
        dl_wait(d, wait);
        return;
    }
    if (resp->status == 101)
        snprintf(why, sizeof why, "proxy answered 101 without 'Upgrade: %s'", TT_HS_UPGRADE);
    else
        snprintf(why, sizeof why, "proxy answered the tunnel request with %d %s%s", resp->status,
                 reason,
                 resp->status == 400   ? " (malformed request: versions of p and c differ?)"
                 : resp->status == 426 ? " (upgrade required)"
                                       : "");
    dl_down(d, why);
}

/* c did not trust p's certificate.  Only a new flag or a new certificate
 * fixes that, so like a refused token it waits --auth-backoff, and it says
 * what p presented: the fingerprint p logs at start ("tunnel certificate
 * fingerprint sha256:...") is what to compare it with.  A proxy that closed
 * or reset the handshake (busy, a flood) does not come here. */
static void dl_untrusted(struct tt_dialer *d)
{
    const struct tt_origin_opts *opts = d->o->opts;
    char fp[80], why[1400];
    if (tt_tls_peer_fingerprint(d->tls, fp, sizeof fp) < 0)
        snprintf(fp, sizeof fp, "(none)");
    if (opts->verify == TT_TLS_VERIFY_PIN)
        snprintf(why, sizeof why,
                 "the proxy %s presented certificate %s, not the one --fingerprint pins: compare "
                 "it with the 'tunnel certificate fingerprint' line p logs at start (p made a new "
                 "certificate, or --fingerprint is stale or mistyped)",
                 d->px->text, fp);
    else
        snprintf(why, sizeof why,
                 "the proxy %s presented a certificate this host does not trust (%s): %s; if p "
                 "made it itself (self-signed, the default), pin it: --fingerprint %s, after "
                 "checking it against the 'tunnel certificate fingerprint' line p logs at start%s",
                 d->px->text, fp, d->tls->err, fp,
                 opts->verify == TT_TLS_VERIFY_CA ? " (or give --ca the CA that signed it)"
                                                  : " (or --ca FILE for a private CA)");
    dl_cleanup(d);
    if (d->draining) {
        dl_stopped(d);
        return;
    }
    uint64_t wait = opts->auth_backoff_ms < TT_BACKOFF_MIN_MS ? TT_BACKOFF_MIN_MS
                                                              : opts->auth_backoff_ms;
    if (d->bo.failures < 64)
        d->bo.failures++;
    tt_log_error("%s; next try in %g s (--auth-backoff)", why, (double)wait / 1000.0);
    dl_wait(d, wait);
}

static void dl_on_serve_closed(void *owner, const char *reason)
{
    struct tt_dialer *d = owner;
    d->serve = NULL;
    d->fw_link = NULL;
    if (d->draining) {
        tt_log_info("%s closed (tunnel %u): %s", d->fw ? "forward link" : "tunnel", d->index,
                    reason);
        dl_stopped(d);
        return;
    }
    tt_backoff_was_up(&d->bo, tt_loop_now(d->o->loop) - d->up_at);
    d->state = DL_IDLE;
    dl_down(d, reason && *reason ? reason : "closed");
}

static void dl_up(struct tt_dialer *d, size_t head_len)
{
    struct tt_origin *o = d->o;
    /* Bytes OpenSSL decrypted but we did not read yet belong to HTTP/2 as
     * well, and epoll cannot see them: collect them with the rest. */
    while (tt_tls_pending(d->tls)) {
        uint8_t *p = tt_buf_reserve(&d->in, 16384);
        if (!p)
            break;
        ssize_t r = tt_tls_read(d->tls, p, 16384);
        if (r <= 0)
            break;
        tt_buf_commit(&d->in, (size_t)r);
    }
    if (d->io_on) {
        tt_io_stop(o->loop, &d->io);
        d->io_on = 0;
    }
    tt_timer_stop(o->loop, &d->timer);

    struct tt_tls_conn *tls = d->tls;
    d->tls = NULL;
    d->fd = -1;
    freeaddrinfo(d->ai_list);
    d->ai_list = d->ai_cur = NULL;
    tt_buf_free(&d->out);

    d->state = DL_UP;
    d->ups++;
    d->up_at = tt_loop_now(o->loop);
    if (d->fw) {
        tt_log_info("forward link up to %s as %s", d->px->text, o->opts->name);
        d->fw_link = d->fw->up(d->fw->ud, d, tls, tt_buf_data(&d->in) + head_len,
                               tt_buf_len(&d->in) - head_len);
        tt_buf_free(&d->in);
        if (!d->fw_link)
            dl_down(d, "out of memory starting HTTP/2");
        return;
    }
    tt_log_info("tunnel up to %s as %s (tunnel %u)", d->px->text, o->opts->name, d->index);
    d->serve = tt_tunnel_srv_start(o->loop, tls, &o->scfg, o->handler, o->hctx,
                                   tt_buf_data(&d->in) + head_len, tt_buf_len(&d->in) - head_len,
                                   dl_on_serve_closed, d);
    tt_buf_free(&d->in);
    if (!d->serve)
        dl_down(d, "out of memory starting HTTP/2");
}

static void dl_watch(struct tt_dialer *d, unsigned events)
{
    if (!d->io_on) {
        if (tt_io_start(d->o->loop, &d->io, d->fd, events, d->io.cb, d) == 0)
            d->io_on = 1;
    } else if (d->io.events != events) {
        tt_io_modify(d->o->loop, &d->io, events);
    }
}

static void dl_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct tt_dialer *d = io->data;
    if (d->state == DL_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0 && (events & TT_IO_WRITE)) {
            tt_timer_stop(d->o->loop, &d->timer);
            struct tt_tls_conn *tls = tt_mem_calloc(1, sizeof *tls);
            if (!tls || tt_tls_conn_init(tls, d->o->ssl_ctx, d->fd, 0, d->px->host)) {
                tt_mem_free(tls);
                dl_down(d, "cannot set up TLS (out of memory?)");
                return;
            }
            d->tls = tls;
            d->state = DL_TLS;
            tt_timer_start(d->o->loop, &d->timer, DL_HANDSHAKE_TIMEOUT_MS);
            dl_step(d);
            return;
        }
        if (err == 0)
            return;
        d->last_errno = err;
        tt_io_stop(d->o->loop, &d->io);
        d->io_on = 0;
        close(d->fd);
        d->fd = -1;
        d->ai_cur = d->ai_cur->ai_next;
        dl_try_address(d);
        return;
    }
    dl_step(d);
}

/* TLS handshake, the PUT, p's answer: each step resumes where the socket
 * made it stop. */
static void dl_step(struct tt_dialer *d)
{
    struct tt_origin *o = d->o;
    char why[800];

    if (d->state == DL_TLS) {
        int r = tt_tls_handshake(d->tls);
        if (r == TT_TLS_WANT_READ) {
            dl_watch(d, TT_IO_READ);
            return;
        }
        if (r == TT_TLS_WANT_WRITE) {
            dl_watch(d, TT_IO_WRITE);
            return;
        }
        if (r != 1) {
            if (tt_tls_cert_rejected(d->tls)) {
                dl_untrusted(d);
                return;
            }
            const char *e = d->tls->err[0] ? d->tls->err : "unknown error";
            snprintf(why, sizeof why, "TLS handshake with %s failed: %s", d->px->text, e);
            dl_down(d, why);
            return;
        }
        tt_buf_init(&d->out, TT_HS_MAX_HEAD + TT_ORIGIN_MAX_TOKEN);
        if (tt_hs_build_request(&d->out, d->px->host, o->opts->token, o->opts->name,
                                d->fw != NULL)) {
            dl_down(d, "cannot build the tunnel request (out of memory)");
            return;
        }
        d->out_off = 0;
        d->state = DL_SEND;
    }

    if (d->state == DL_SEND) {
        while (d->out_off < tt_buf_len(&d->out)) {
            ssize_t w = tt_tls_write(d->tls, tt_buf_data(&d->out) + d->out_off,
                                     tt_buf_len(&d->out) - d->out_off);
            if (w == TT_TLS_WANT_WRITE || w == TT_TLS_WANT_READ) {
                dl_watch(d, w == TT_TLS_WANT_WRITE ? TT_IO_WRITE : TT_IO_READ);
                return;
            }
            if (w < 0) {
                snprintf(why, sizeof why, "sending the tunnel request failed: %s", d->tls->err);
                dl_down(d, why);
                return;
            }
            d->out_off += (size_t)w;
        }
        /* The request holds the token: do not keep it around. */
        memset(tt_buf_data(&d->out), 0, tt_buf_len(&d->out));
        tt_buf_free(&d->out);
        tt_buf_init(&d->in, DL_IN_MAX);
        d->state = DL_RECV;
        dl_watch(d, TT_IO_READ);
    }

    if (d->state == DL_RECV) {
        for (;;) {
            uint8_t *p = tt_buf_reserve(&d->in, 4096);
            if (!p) {
                dl_down(d, "proxy's answer to the tunnel request is too large");
                return;
            }
            ssize_t r = tt_tls_read(d->tls, p, 4096);
            if (r == TT_TLS_WANT_READ || r == TT_TLS_WANT_WRITE) {
                dl_watch(d, r == TT_TLS_WANT_READ ? TT_IO_READ : TT_IO_WRITE);
                return;
            }
            if (r == 0) {
                dl_down(d, "proxy closed the connection before answering the tunnel request");
                return;
            }
            if (r < 0) {
                snprintf(why, sizeof why, "reading the proxy's answer failed: %s", d->tls->err);
                dl_down(d, why);
                return;
            }
            tt_buf_commit(&d->in, (size_t)r);
            struct tt_hs_response resp;
            int n = tt_hs_parse_response(tt_buf_data(&d->in), tt_buf_len(&d->in), &resp);
            if (n == TT_HS_NEED_MORE)
                continue;
            if (n < 0) {
                dl_down(d, n == TT_HS_TOO_LARGE
                               ? "proxy's answer to the tunnel request is too large"
                               : "proxy's answer to the tunnel request is malformed (is "
                                 "--proxy the tunnel port of bin/p?)");
                return;
            }
            if (resp.status == 101 && resp.upgrade_ok && resp.forward != (d->fw != NULL))
                dl_down(d, "proxy answered 101 for the other direction (tunnel / forward link)");
            else if (resp.status == 101 && resp.upgrade_ok)
                dl_up(d, (size_t)n);
            else
                dl_refused(d, &resp);
            return;
        }
    }
}

static void dl_try_address(struct tt_dialer *d)
{
    struct tt_origin *o = d->o;
    for (; d->ai_cur; d->ai_cur = d->ai_cur->ai_next) {
        struct addrinfo *ai = d->ai_cur;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            d->last_errno = errno;
            continue;
        }
        int one = 1;
        /* Small frames (WINDOW_UPDATE, HEADERS) must not wait for Nagle. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            d->last_errno = errno;
            close(fd);
            continue;
        }
        /* Connected or in progress: either way writable tells. */
        d->fd = fd;
        d->io.cb = dl_on_io;
        dl_watch(d, TT_IO_WRITE);
        if (!d->io_on) {
            d->last_errno = errno;
            close(fd);
            d->fd = -1;
            continue;
        }
        tt_timer_start(o->loop, &d->timer, DL_CONNECT_TIMEOUT_MS);
        return;
    }
    char why[800];
    snprintf(why, sizeof why, "connect to %s failed: %s", d->px->text,
             d->last_errno == ETIMEDOUT ? "timed out" : strerror(d->last_errno));
    dl_down(d, why);
}

static void dl_on_resolved(void *arg, struct addrinfo *res, const char *why)
{
    struct tt_dialer *d = arg;
    d->res = NULL;
    if (!res) {
        char msg[800];
        snprintf(msg, sizeof msg, "resolving %s: %s", d->px->host, why);
        dl_down(d, msg);
        return;
    }
    d->state = DL_CONNECTING;
    d->ai_list = d->ai_cur = res;
    d->last_errno = EHOSTUNREACH;
    dl_try_address(d);
}

static void dl_attempt(struct tt_dialer *d)
{
    struct tt_origin *o = d->o;
    const struct tt_origin_opts *opts = o->opts;
    tt_log_info("connecting to %s (tunnel %u)", d->px->text, d->index);
    if (opts->verify == TT_TLS_VERIFY_NONE)
        tt_log_warn("WARNING: --insecure: the proxy's certificate is NOT verified; anyone on "
                    "the path can read this tunnel and impersonate the proxy");

    d->state = DL_RESOLVING;
    d->res = tt_resolve_start(o->loop, d->px->host, d->px->port, DL_RESOLVE_TIMEOUT_MS,
                              dl_on_resolved, d);
    if (!d->res) {
        char why[800];
        snprintf(why, sizeof why, "resolving %s: cannot start the lookup: %s", d->px->host,
                 strerror(errno));
        dl_down(d, why);
    }
}

static void dl_on_timer(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    struct tt_dialer *d = t->data;
    char why[800];
    switch (d->state) {
    case DL_IDLE:
        dl_attempt(d);
        break;
    case DL_CONNECTING:
        /* This address did not answer: try the next one. */
        tt_io_stop(d->o->loop, &d->io);
        d->io_on = 0;
        close(d->fd);
        d->fd = -1;
        d->last_errno = ETIMEDOUT;
        d->ai_cur = d->ai_cur->ai_next;
        dl_try_address(d);
        break;
    case DL_TLS:
    case DL_SEND:
    case DL_RECV:
        snprintf(why, sizeof why, "%s with %s timed out after %u s",
                 d->state == DL_TLS ? "TLS handshake" : "tunnel request", d->px->text,
                 DL_HANDSHAKE_TIMEOUT_MS / 1000);
        dl_down(d, why);
        break;
    default:
        break;
    }
}

static struct tt_dialer *dl_new(struct tt_origin *o, unsigned index,
                                const struct tt_origin_proxy *px,
                                const struct tt_dialer_forward *fw);

struct tt_dialer *tt_dialer_new(struct tt_origin *o, unsigned index,
                                const struct tt_origin_proxy *px)
{
    return dl_new(o, index, px, NULL);
}

void tt_dialer_link_closed(struct tt_dialer *d, const char *reason)
{
    dl_on_serve_closed(d, reason);
}

struct tt_dialer *tt_dialer_new_forward(struct tt_origin *o, unsigned index,
                                        const struct tt_dialer_forward *fw)
{
    return dl_new(o, index, NULL, fw);
}

static struct tt_dialer *dl_new(struct tt_origin *o, unsigned index,
                                const struct tt_origin_proxy *px,
                                const struct tt_dialer_forward *fw)
{
    struct tt_dialer *d = tt_mem_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->first.text, sizeof d->first.text, "%s", o->opts->proxy);
    snprintf(d->first.host, sizeof d->first.host, "%s", o->opts->proxy_host);
    snprintf(d->first.port, sizeof d->first.port, "%s", o->opts->proxy_port);
    d->px = px ? px : &d->first;
    d->fw = fw;
    d->o = o;
    d->index = index;
    d->fd = -1;
    d->io.fd = -1;
    tt_timer_init(&d->timer, dl_on_timer, d);
    tt_buf_init(&d->out, 0);
    tt_buf_init(&d->in, 0);
    if (getrandom(&d->rand_state, sizeof d->rand_state, 0) != sizeof d->rand_state)
        d->rand_state = tt_loop_now(o->loop) * 2654435761u + index;
    d->rand_state ^= index;
    d->bo.rand = tt_backoff_default_rand;
    d->bo.rand_ud = &d->rand_state;
    o->live++;
    dl_attempt(d);
    return d;
}

void tt_dialer_drain(struct tt_dialer *d, uint32_t grace_ms)
{
    if (d->draining)
        return;
    d->draining = 1;
    /* An up tunnel closes when its streams are done (dl_on_serve_closed);
     * only a dialer with no tunnel stops at once. */
    if (d->state == DL_UP && d->serve)
        tt_tunnel_srv_drain(d->serve, grace_ms);
    else if (d->state == DL_UP && d->fw_link)
        d->fw->drain(d->fw->ud, d->fw_link, grace_ms);
    else if (d->state != DL_STOPPED)
        dl_stopped(d);
}

void tt_dialer_free(struct tt_dialer *d)
{
    if (!d)
        return;
    dl_cleanup(d);
    tt_mem_free(d);
}
