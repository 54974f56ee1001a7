/*
 * bin/c, the origin connector: holds --connections tunnels to p and serves
 * --root, --upstream or --tcp through them.  See origin/origin.h for the parts.
 *
 * Exit codes: 0 after a drain (SIGTERM/SIGINT), 1 when the runtime fails
 * (no loop, no TLS context), 2 for a bad command line.
 */
#include "origin/origin.h"
#include "proxy/admin_http.h"
#include "proxy/proxy.h"

#include "codec/buf.h"
#include "proto/log.h"
#include "proto/loop.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIN_GRACE_MS 10000u
/* The drain's last resort, should a session outlive its own grace. */
#define MAIN_HARD_STOP_MS (MAIN_GRACE_MS + 2000u)

/* --- Calls out (--local-listen) -------------------------------------------------
 *
 * c calls names through p with p's own request path, run here: proxy's
 * listener and fronts (HTTP/1.1 and h2c) take local apps' requests, each an
 * exchange, and the one pool they go to holds the forward link, a tunnel in
 * the normal direction (c the HTTP/2 client) that a dialer keeps up like a
 * tunnel (DESIGN.md "The forward link"). */
#define LOCAL_POOL "forward-link"

struct local_side {
    struct tt_px_server srv;
    struct tt_px_config cfg;
    struct tt_dialer *dialer;
    struct tt_dialer_forward fw;
    char peer[320];
};

static void local_gone(void *ud, const char *reason)
{
    struct local_side *l = ud;
    tt_dialer_link_closed(l->dialer, reason);
}

static void *local_up(void *ud, struct tt_dialer *d, struct tt_tls_conn *tls,
                      const uint8_t *early, size_t early_len)
{
    struct local_side *l = ud;
    (void)d;
    struct tt_px_tunnel *t =
        tt_px_tunnel_adopt(&l->srv, &l->srv.reg, tls, LOCAL_POOL, l->peer, early, early_len);
    tt_mem_free(tls);
    if (t) {
        t->on_gone = local_gone;
        t->gone_ud = l;
    }
    return t;
}

static void local_drain(void *ud, void *link, uint32_t grace_ms)
{
    struct tt_px_tunnel *t = link;
    (void)ud;
    if (t->sess && !tt_session_closing(t->sess))
        tt_session_drain(t->sess, grace_ms);
}

static void local_bound(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        tt_px_sockaddr_text((struct sockaddr *)&ss, out, outlen, NULL, 0);
}

/* Listens on --local-listen (HTTP) and each --local-tcp, and starts the
 * forward link.  Returns 0, or -1 with err. */
static int local_start(struct local_side *l, struct tt_origin *o, char *err, size_t errlen)
{
    const struct tt_origin_opts *opts = o->opts;
    memset(&l->cfg, 0, sizeof(l->cfg));
    l->cfg.client_idle_s = 60;
    l->cfg.max_clients = 1024;
    l->cfg.max_tunnels = 1;
    char why[160];
    if (opts->local_listen[0] &&
        tt_px_parse_addr(opts->local_listen, &l->cfg.listen_addr, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "--local-listen %s: %s", opts->local_listen, why);
        return -1;
    }
    for (unsigned i = 0; i < opts->n_local_tcp; i++) {
        struct tt_px_tcp_listen *t = &l->cfg.tcp[l->cfg.n_tcp++];
        if (tt_px_parse_addr(opts->local_tcp[i].addr, &t->addr, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "--local-tcp %s: %s", opts->local_tcp[i].addr, why);
            return -1;
        }
        snprintf(t->name, sizeof(t->name), "%s", opts->local_tcp[i].name);
        t->via = LOCAL_POOL; /* over the forward link; p routes by the name */
    }
    struct tt_px_server *srv = &l->srv;
    memset(srv, 0, sizeof(*srv));
    srv->loop = o->loop;
    srv->cfg = &l->cfg;
    tt_px_tunnel_session_config(&srv->scfg, opts->ping_interval_ms, opts->ping_timeout_ms);
    tt_px_registry_init(&srv->reg);
    srv->env.loop = o->loop;
    srv->env.reg = &srv->reg;
    srv->env.route = (struct tt_px_route_cfg){.default_name = LOCAL_POOL};
    srv->env.authority = opts->local_to[0] ? opts->local_to : NULL;
    srv->env.down_why = "c's forward link to p is down (c is dialing it again)\n";
    srv->tunnel_lis.io.fd = srv->client_lis.io.fd = srv->https_lis.io.fd = -1;
    char bound[96] = "?";
    for (size_t i = 0; i < l->cfg.n_tcp; i++) {
        int tfd = tt_px_listen_socket(&l->cfg.tcp[i].addr, why, sizeof(why));
        if (tfd < 0 || tt_px_tcp_listen(srv, &l->cfg.tcp[i], tfd) < 0) {
            snprintf(err, errlen, "--local-tcp %s", tfd < 0 ? why : "cannot watch the listener");
            return -1;
        }
        local_bound(tfd, bound, sizeof(bound));
        tt_log_info("listening for local tcp clients on %s for name %s", bound, l->cfg.tcp[i].name);
    }
    int fd = -1;
    if (opts->local_listen[0]) {
        fd = tt_px_listen_socket(&l->cfg.listen_addr, why, sizeof(why));
        if (fd < 0) {
            snprintf(err, errlen, "--local-listen %s", why);
            return -1;
        }
        if (tt_px_accept_listen(srv, fd, 0) < 0) {
            snprintf(err, errlen, "--local-listen: cannot watch the listener");
            return -1;
        }
    }
    snprintf(l->peer, sizeof(l->peer), "%s", opts->proxy);
    l->fw = (struct tt_dialer_forward){.ud = l, .up = local_up, .drain = local_drain};
    if (!(l->dialer = tt_dialer_new_forward(o, 0, &l->fw))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (fd >= 0) {
        local_bound(fd, bound, sizeof(bound));
        tt_log_info("listening for local calls on %s%s%s", bound,
                    opts->local_to[0] ? ", all to " : "", opts->local_to);
    }
    return 0;
}

struct main_ctx {
    struct tt_origin o;
    struct local_side *local; /* --local-listen */
    struct tt_files *files; /* --root: the file handler's state */
    struct tt_tcp *tcp;     /* --tcp: the TCP handler's */
    struct tt_dialer **dialers;
    unsigned ndialers;
    struct tt_timer hard_stop;
    int signals;
};

/* --- c --admin-listen: its tunnels (and forward link), why they went down --- */

/* Every dialer: the tunnels, then the forward link. */
static size_t main_dialers(struct main_ctx *m, struct tt_dialer_info *out, size_t cap)
{
    size_t n = 0;
    for (unsigned i = 0; i < m->ndialers && n < cap; i++)
        tt_dialer_info(m->dialers[i], &out[n++]);
    if (m->local && m->local->dialer && n < cap)
        tt_dialer_info(m->local->dialer, &out[n++]);
    return n;
}

static int main_page(void *ud, const char *path, size_t pl, tt_buf *b, const char **type)
{
    struct main_ctx *m = ud;
    /* Every dialer c can have: one loop, one page at a time. */
    static struct tt_dialer_info d[TT_ORIGIN_MAX_PROXIES * TT_ORIGIN_MAX_CONNECTIONS + 1];
    size_t n = main_dialers(m, d, sizeof d / sizeof d[0]);
    uint64_t now = tt_loop_now(m->o.loop);
    unsigned up = 0, ups = 0, downs = 0;
    for (size_t i = 0; i < n; i++) {
        up += d[i].up_ms != 0 && !d[i].forward;
        ups += d[i].ups;
        downs += d[i].downs;
    }
    const char *name = m->o.opts->name;
#define IS(p) (pl == strlen(p) && !strncmp(path, p, pl))
    if (IS("/metrics")) {
        *type = "text/plain; version=0.0.4; charset=utf-8";
        tt_admin_put(b, "# HELP tether_c_tunnels_up Tunnels to p that are up.\n"
                        "# TYPE tether_c_tunnels_up gauge\ntether_c_tunnels_up{name=\"");
        tt_admin_put_escaped(b, name, 0);
        tt_admin_put(b, "\"} %u\n", up);
        tt_admin_put(b, "# HELP tether_c_tunnels_wanted Tunnels c holds when it can "
                        "(--connections).\n# TYPE tether_c_tunnels_wanted gauge\n"
                        "tether_c_tunnels_wanted %u\n", m->ndialers);
        tt_admin_put(b, "# HELP tether_c_connects_total Tunnels and links that came up.\n"
                        "# TYPE tether_c_connects_total counter\ntether_c_connects_total %u\n"
                        "# HELP tether_c_disconnects_total Attempts that failed and tunnels that "
                        "went down (each is a reconnect).\n# TYPE tether_c_disconnects_total "
                        "counter\ntether_c_disconnects_total %u\n", ups, downs);
        tt_admin_put(b, "# HELP tether_c_draining 1 once c is shutting down.\n"
                        "# TYPE tether_c_draining gauge\ntether_c_draining %d\n",
                     m->o.draining ? 1 : 0);
        tt_admin_put(b, "# HELP tether_c_resident_memory_bytes Resident set size of c.\n"
                        "# TYPE tether_c_resident_memory_bytes gauge\n"
                        "tether_c_resident_memory_bytes %llu\n", tt_admin_rss());
    } else if (IS("/api/tunnels")) {
        *type = "application/json";
        tt_admin_put(b, "{\"name\":\"");
        tt_admin_put_escaped(b, name, 0);
        tt_admin_put(b, "\",\"proxy\":\"");
        tt_admin_put_escaped(b, m->o.opts->proxy, 0);
        tt_admin_put(b, "\",\"draining\":%s,\"tunnels\":[", m->o.draining ? "true" : "false");
        for (size_t i = 0; i < n; i++) {
            tt_admin_put(b, "%s{\"index\":%u,\"proxy\":\"", i ? "," : "", d[i].index);
            tt_admin_put_escaped(b, d[i].proxy, 0);
            tt_admin_put(b, "\",\"kind\":\"%s\",\"state\":\"%s\",\"up_seconds\":%llu,"
                            "\"connects\":%u,\"disconnects\":%u,\"last_error\":\"",
                         d[i].forward ? "forward-link" : "tunnel",
                         d[i].state,
                         d[i].up_ms ? (unsigned long long)((now - d[i].up_ms) / 1000) : 0ULL,
                         d[i].ups, d[i].downs);
            tt_admin_put_escaped(b, d[i].last_error, 0);
            tt_admin_put(b, "\",\"last_error_seconds_ago\":%lld}",
                         d[i].last_error_ms ? (long long)((now - d[i].last_error_ms) / 1000) : -1LL);
        }
        tt_admin_put(b, "]}\n");
    } else if (IS("/status") || IS("/")) {
        *type = "text/html; charset=utf-8";
        tt_admin_put(b, "<!doctype html><html lang=en><head><meta charset=utf-8><meta "
                        "http-equiv=refresh content=5><title>tether c status</title><style>"
                        "body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;"
                        "background:#fafafa;color:#222}table{border-collapse:collapse;width:100%%;"
                        "background:#fff;border:1px solid #ddd}td,th{padding:.35em .7em;"
                        "border-bottom:1px solid #eee;text-align:left}.up{color:#080}"
                        ".down{color:#b00}</style></head><body><h1>tether c: ");
        tt_admin_put_escaped(b, name, 1);
        tt_admin_put(b, "</h1><p>%u of %u tunnel%s up to ", up, m->ndialers, m->ndialers == 1 ? "" : "s");
        tt_admin_put_escaped(b, m->o.opts->proxy, 1);
        tt_admin_put(b, "%s</p><table><tr><th>#</th><th>kind</th><th>state</th><th>up</th>"
                        "<th>connects</th><th>disconnects</th><th>last error</th></tr>\n",
                     m->o.draining ? " (draining)" : "");
        for (size_t i = 0; i < n; i++) {
            tt_admin_put(b, "<tr><td>%u</td><td>%s</td><td class=%s>%s</td><td>%llus</td><td>%u</td>"
                            "<td>%u</td><td>", d[i].index, d[i].forward ? "forward link" : "tunnel",
                         d[i].up_ms ? "up" : "down", d[i].state,
                         d[i].up_ms ? (unsigned long long)((now - d[i].up_ms) / 1000) : 0ULL,
                         d[i].ups, d[i].downs);
            tt_admin_put_escaped(b, d[i].last_error[0] ? d[i].last_error : "-", 1);
            tt_admin_put(b, "</td></tr>\n");
        }
        tt_admin_put(b, "</table><p><small>refreshes every 5 s &middot; <a href=/metrics>/metrics"
                        "</a> &middot; <a href=/api/tunnels>/api/tunnels</a></small></p></body></html>\n");
    } else if (IS("/ready")) {
        /* Serving: at least one tunnel up and not shutting down. */
        int ready = up > 0 && !m->o.draining;
        tt_admin_put(b, ready ? "ready\n" : m->o.draining ? "draining\n" : "no tunnel is up\n");
        return ready ? 200 : 503;
    } else if (IS("/live")) {
        tt_admin_put(b, "live\n");
    } else {
        tt_admin_put(b, "not here: /metrics /status /api/tunnels /ready /live\n");
        return 404;
    }
#undef IS
    return 200;
}

static int main_admin_start(struct main_ctx *m, char *err, size_t errlen)
{
    struct tt_px_addr a;
    char why[160];
    if (tt_px_parse_addr(m->o.opts->admin_listen, &a, why, sizeof why) < 0) {
        snprintf(err, errlen, "--admin-listen %s: %s", m->o.opts->admin_listen, why);
        return -1;
    }
    int fd = tt_px_listen_socket(&a, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "--admin-listen %s", why);
        return -1;
    }
    if (tt_admin_http_start(m->o.loop, fd, main_page, m) < 0) {
        snprintf(err, errlen, "--admin-listen: cannot watch the listener");
        return -1;
    }
    tt_log_info("admin pages on http://%s/status (and /metrics, /api/tunnels, /ready, /live)",
                m->o.opts->admin_listen);
    return 0;
}

static void main_all_stopped(struct tt_origin *o)
{
    tt_log_info("all tunnels closed: exiting");
    tt_loop_stop(o->loop);
}

static void main_hard_stop(struct tt_loop *loop, struct tt_timer *t)
{
    (void)t;
    tt_log_warn("drain took too long: exiting");
    tt_loop_stop(loop);
}

static void main_stop_defer(struct tt_loop *loop, struct tt_defer *d)
{
    (void)d;
    tt_loop_stop(loop);
}

static void main_on_signal(struct tt_loop *loop, int signo, void *data)
{
    struct main_ctx *m = data;
    if (m->signals++ > 0) {
        /* A second signal: the person wants out now. */
        tt_log_warn("second %s: exiting without waiting", signo == SIGINT ? "SIGINT" : "SIGTERM");
        tt_loop_stop(loop);
        return;
    }
    tt_log_info("%s: draining (in-flight requests get %u s)", signo == SIGINT ? "SIGINT" : "SIGTERM",
                MAIN_GRACE_MS / 1000);
    m->o.draining = 1;
    tt_timer_start(loop, &m->hard_stop, MAIN_HARD_STOP_MS);
    if (m->o.live == 0) {
        tt_loop_stop(loop);
        return;
    }
    for (unsigned i = 0; i < m->ndialers; i++)
        tt_dialer_drain(m->dialers[i], MAIN_GRACE_MS);
    if (m->local) {
        m->local->srv.env.draining = 1;
        tt_px_accept_drain(&m->local->srv, MAIN_GRACE_MS);
        tt_px_tcp_drain(&m->local->srv);
        tt_dialer_drain(m->local->dialer, MAIN_GRACE_MS);
    }
}

int main(int argc, char **argv)
{
    struct tt_origin_opts opts;
    char err[512];
    int rc = tt_origin_parse_args(argc, argv, getenv("TETHER_TOKEN"), &opts, err, sizeof err);
    if (rc == TT_ORIGIN_HELP) {
        fputs(tt_origin_usage(), stdout);
        return 0;
    }
    if (rc == TT_ORIGIN_VERSION) {
        printf("tether-c %s\n", TT_VERSION);
        return 0;
    }
    if (rc != TT_ORIGIN_RUN) {
        fprintf(stderr, "c: %s\n", err);
        return 2;
    }

    tt_log_init("c", (enum tt_log_level)opts.log_level);
    tt_log_set_json(opts.log_json);
    /* The codec frees its output buffer whenever it drains (idle tunnels
     * hold none) and a busy tunnel allocates it again at once: keep blocks
     * of that size (1 MiB and up) in the heap rather than mmap'ing them
     * fresh, which costs a page fault per 4 KiB on every refill. */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* A peer that vanishes mid-write must be an error code, not a death. */
    signal(SIGPIPE, SIG_IGN);

    SSL_CTX *ctx = tt_tls_client_ctx_new(opts.verify, opts.ca_file,
                                         opts.verify == TT_TLS_VERIFY_PIN ? opts.pin : NULL, err,
                                         sizeof err);
    if (!ctx) {
        fprintf(stderr, "c: %s\n", err);
        tt_origin_opts_free(&opts);
        return opts.verify == TT_TLS_VERIFY_CA ? 2 : 1;
    }
    struct tt_loop *loop = tt_loop_new();
    if (!loop) {
        fprintf(stderr, "c: cannot make the event loop\n");
        SSL_CTX_free(ctx);
        tt_origin_opts_free(&opts);
        return 1;
    }

    struct main_ctx m;
    memset(&m, 0, sizeof m);
    m.o.loop = loop;
    m.o.opts = &opts;
    m.o.ssl_ctx = ctx;
    m.o.fs.root = opts.root;
    m.o.fs.root_fd = tt_fs_open_root(opts.root); /* -1: realpath() resolution, slower but the same */
    m.o.fs.allow_put = opts.allow_put;
    tt_origin_session_config(&opts, &m.o.scfg);
    if (!opts.connections) {
        /* Only calls out: nothing is served. */
    } else if (opts.has_upstream) {
        m.o.upstream = tt_upstream_new(loop, &opts.upstream_url, &opts.upstream);
        m.o.handler = &tt_upstream_handler;
        m.o.hctx = m.o.upstream;
    } else if (opts.has_tcp) {
        m.tcp = tt_tcp_new(loop, opts.tcp_host, opts.tcp_port, 0);
        m.o.handler = &tt_tcp_handler;
        m.o.hctx = m.tcp;
    } else {
        m.files = tt_files_new(&m.o.fs);
        m.o.handler = &tt_files_handler;
        m.o.hctx = m.files;
    }
    if (opts.connections && !m.o.hctx) {
        fprintf(stderr, "c: out of memory\n");
        return 1;
    }
    m.o.on_all_stopped = main_all_stopped;
    tt_timer_init(&m.hard_stop, main_hard_stop, &m);

    if (tt_loop_on_signal(loop, SIGTERM, main_on_signal, &m) ||
        tt_loop_on_signal(loop, SIGINT, main_on_signal, &m)) {
        fprintf(stderr, "c: cannot watch signals\n");
        return 1;
    }

    const char *trust = opts.verify == TT_TLS_VERIFY_PIN    ? "pinned certificate fingerprint"
                        : opts.verify == TT_TLS_VERIFY_CA   ? "CA file"
                        : opts.verify == TT_TLS_VERIFY_NONE ? "NOTHING (--insecure)"
                                                            : "system trust store";
    char what[4400];
    if (!opts.connections)
        snprintf(what, sizeof what, "nothing (calls out only)");
    else if (opts.has_upstream)
        snprintf(what, sizeof what, "the app at %s://%s", opts.upstream_url.h2c ? "h2c" : "http",
                 opts.upstream_url.hostport);
    else if (opts.has_tcp)
        snprintf(what, sizeof what, "tcp %s", opts.tcp);
    else
        snprintf(what, sizeof what, "%s%s", opts.root, opts.allow_put ? " (PUT allowed)" : "");
    unsigned nproxies = opts.n_proxies ? opts.n_proxies : 1;
    tt_log_info("tether-c %s: serving %s as %s through %s%s, %u tunnel%s, trust: %s", TT_VERSION,
                what, opts.name, opts.proxy, nproxies > 1 ? " and the other --proxy" : "",
                opts.connections * nproxies, opts.connections * nproxies == 1 ? "" : "s", trust);
    if (opts.verify == TT_TLS_VERIFY_NONE)
        tt_log_warn("WARNING: --insecure: the proxy's certificate is NOT verified; anyone on the "
                    "path can read this tunnel and impersonate the proxy. Use --fingerprint.");

    if (opts.local_listen[0] || opts.n_local_tcp) {
        if (!(m.local = tt_mem_calloc(1, sizeof(*m.local))) ||
            local_start(m.local, &m.o, err, sizeof err) < 0) {
            fprintf(stderr, "c: %s\n", m.local ? err : "out of memory");
            return 2;
        }
    }
    /* --connections tunnels to each --proxy: every p can serve the name. */
    unsigned np = opts.n_proxies ? opts.n_proxies : 1;
    m.dialers = tt_mem_calloc(np * opts.connections + 1, sizeof *m.dialers);
    if (!m.dialers) {
        fprintf(stderr, "c: out of memory\n");
        return 1;
    }
    for (unsigned k = 0; k < np; k++)
        for (unsigned i = 0; i < opts.connections; i++) {
            m.dialers[m.ndialers] =
                tt_dialer_new(&m.o, m.ndialers + 1, opts.n_proxies ? &opts.proxies[k] : NULL);
            if (!m.dialers[m.ndialers]) {
                fprintf(stderr, "c: out of memory\n");
                return 1;
            }
            m.ndialers++;
        }

    if (opts.admin_listen[0] && main_admin_start(&m, err, sizeof err) < 0) {
        fprintf(stderr, "c: %s\n", err);
        return 2;
    }
    tt_log_set_buffered(1); /* access lines: one write a loop iteration */
    rc = tt_loop_run(loop);
    /* The app's h2c connections close on the loop: queued behind their
     * closes, a stop gives the loop one more turn to run them, so that
     * nothing of theirs is left at exit. */
    if (rc == 0 && tt_upstream_close_sessions(m.o.upstream) > 0) {
        struct tt_defer stop;
        tt_defer_init(&stop, main_stop_defer, NULL);
        tt_defer_queue(loop, &stop);
        rc = tt_loop_run(loop);
    }

    for (unsigned i = 0; i < m.ndialers; i++)
        tt_dialer_free(m.dialers[i]);
    tt_mem_free(m.dialers);
    if (m.local) {
        tt_dialer_free(m.local->dialer);
        tt_px_registry_free(&m.local->srv.reg);
        tt_mem_free(m.local->srv.front_rbuf);
        tt_mem_free(m.local);
    }
    tt_upstream_free(m.o.upstream);
    tt_files_free(m.files);
    tt_tcp_free(m.tcp);
    tt_loop_free(loop);
    SSL_CTX_free(ctx);
    tt_origin_opts_free(&opts);
    return rc == 0 ? 0 : 1;
}
