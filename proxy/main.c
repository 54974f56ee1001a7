/*
 * bin/p: the proxy.  Reads the flags, prepares the state directory (the
 * self-signed tunnel certificate and the tokens file), opens both listeners
 * and runs the loop until SIGTERM/SIGINT have drained it.
 */
#include "proxy.h"

#include "origin/handler_tcp.h"
#include "origin/hostport.h"
#include "origin/origin.h"
#include "origin/tunnel_srv.h"
#include "origin/upstream.h"

#include "proto/log.h"
#include "proto/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DRAIN_GRACE_MS 10000

static int ensure_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
    }
    snprintf(err, errlen, "--state-dir %s: %s", dir, errno ? strerror(errno) : "not a directory");
    return -1;
}

/* Makes <dir>/tokens with one random token for "default" unless it exists,
 * and c's token file for it (c_token_path).  Returns 1 when made, 0 when
 * the tokens file was there, -1 on error. */
static int make_tokens_file(const char *path, const char *state_dir, char *err, size_t errlen)
{
    unsigned char rnd[32]; /* 256 bits */
    char tok[2 * sizeof(rnd) + 2];
    if (tt_random_bytes(rnd, sizeof(rnd)) != 0) {
        snprintf(err, errlen, "no randomness for a token");
        return -1;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(tok + 2 * i, 3, "%02x", rnd[i]);
    memset(rnd, 0, sizeof(rnd));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        memset(tok, 0, sizeof(tok));
        if (errno == EEXIST)
            return 0;
        snprintf(err, errlen, "tokens %s: %s", path, strerror(errno));
        return -1;
    }
    char text[512];
    int n = tt_px_tokens_header(text, sizeof(text));
    n += tt_px_tokens_line(text + n, sizeof(text) - (size_t)n, "default", tok, strlen(tok), NULL);
    ssize_t w = write(fd, text, (size_t)n);
    memset(text, 0, sizeof(text));
    if (w != n || fsync(fd) != 0) {
        snprintf(err, errlen, "tokens %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        memset(tok, 0, sizeof(tok));
        return -1;
    }
    close(fd);
    char cpath[4200];
    tt_px_c_token_path(cpath, sizeof(cpath), state_dir, "default");
    size_t tl = strlen(tok);
    tok[tl++] = '\n';
    int rc = tt_px_write_file(cpath, tok, tl, 0600, err, errlen);
    memset(tok, 0, sizeof(tok));
    if (rc < 0) {
        unlink(path);
        return -1;
    }
    return 1;
}

/* Every start says how an origin connects (README "Running it for real"):
 * for each name whose c token file is in the state folder, the exact c
 * command on stdout; for the others where their token is not. */
static void print_c_commands(const struct tt_px_tokens *tokens, const char *state_dir,
                             const char *tokens_file, const char *taddr, const char *fp)
{
    size_t shown = 0, hidden = 0;
    char first_hidden[TT_PX_NAME_MAX + 1] = "";
    for (size_t i = 0; i < tokens->n; i++) {
        char cpath[4200], cmd[9000];
        tt_px_c_token_path(cpath, sizeof(cpath), state_dir, tokens->v[i].name);
        if (access(cpath, F_OK) != 0) {
            if (!hidden++)
                snprintf(first_hidden, sizeof(first_hidden), "%s", tokens->v[i].name);
            continue;
        }
        if (tt_px_c_command(cmd, sizeof(cmd), taddr, tokens->v[i].name, cpath, fp) > 0) {
            fputs(cmd, stdout);
            shown++;
        }
        tt_log_info("c for name %s reads its token from %s", tokens->v[i].name, cpath);
    }
    fflush(stdout);
    if (hidden)
        tt_log_info("%zu name(s) (%s%s) have no c token file in %s: their c holds the token, "
                    "%s has only what checks it; 'p token add NAME' makes a new name with its "
                    "c token file",
                    hidden, first_hidden, hidden > 1 ? ", ..." : "", state_dir, tokens_file);
}

/* Every client connection is a descriptor: the soft limit (often 1024) is
 * raised to the hard one, which is what the administrator allows. */
static uint64_t raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            tt_log_warn("cannot raise the open-file limit from %llu: %s",
                        (unsigned long long)was, strerror(errno));
            return was;
        }
    }
    tt_log_debug("open-file limit %llu", (unsigned long long)rl.rlim_cur);
    return rl.rlim_cur;
}

/* A tokens set a reload replaced: forward links and exchanges under way
 * may point at its entries (their caller), so it lives until p exits.
 * Reloads are rare and a set is small. */
struct retired_tokens {
    struct retired_tokens *next;
    struct tt_px_tokens t;
};

/* A configuration a reload replaced: tunnels, TCP listeners, services and
 * exchanges keep pointers into it (names, routes), so it lives until exit. */
struct retired_cfg {
    struct retired_cfg *next;
    struct tt_px_config *cfg;
};

struct main_state {
    struct tt_px_server *srv;
    int argc;
    char **argv;
    struct retired_cfg *old_cfgs;
    struct tt_px_config *heap_cfg; /* the one in use when a reload made it */
    uint64_t drain_deadline;
    struct tt_timer delay; /* --drain-delay */
    struct tt_timer trim_timer;
    size_t peak_clients; /* since the last trim */
    const char *tokens_path;
    const char *state_dir; /* NULL: p keeps no state folder (no pid file) */
    struct retired_tokens *retired;
};

/* One warning for a file that still holds tokens in plain text. */
static void warn_tokens(const struct tt_px_tokens *t, const char *file)
{
    if (t->n_plain)
        tt_log_warn("tokens %s:%zu: %zu token(s) kept in plain text (the first on this line): "
                    "p still reads them, but whoever reads the file has them; 'p token revoke "
                    "NAME' and 'p token add NAME' replace one with a hashed entry",
                    file, t->first_plain_line, t->n_plain);
    if (!t->n)
        tt_log_warn("tokens %s has no names: every tunnel is refused ('p token add NAME')", file);
}

/* SIGHUP: the tokens file again.  A file that does not parse changes
 * nothing; otherwise the new set takes over and every tunnel or forward
 * link whose entry is gone or checks another token now is closed. */
/* What a reload cannot change (a listener, an identity, a service): said,
 * not done. */
static void reload_restart_only(const struct tt_px_config *a, const struct tt_px_config *b)
{
#define RL_STR(field, key)                                                                    \
    if (!!a->field != !!b->field || (a->field && strcmp(a->field, b->field)))                 \
        tt_log_warn("reload: %s changed: that takes a restart of p (kept as it was)", key);
    RL_STR(listen, "listen")
    RL_STR(https_listen, "https-listen")
    RL_STR(https_cert, "https-cert")
    RL_STR(https_key, "https-key")
    RL_STR(tunnel_listen, "tunnel-listen")
    RL_STR(admin_listen, "admin-listen")
    RL_STR(cert, "cert")
    RL_STR(key, "key")
    RL_STR(state_dir, "state-dir")
#undef RL_STR
    int svc = a->n_services != b->n_services, tcp = a->n_tcp != b->n_tcp;
    for (size_t i = 0; !svc && i < a->n_services; i++)
        svc = strcmp(a->services[i].name, b->services[i].name) ||
              strcmp(a->services[i].url, b->services[i].url);
    for (size_t i = 0; !tcp && i < a->n_tcp; i++)
        tcp = strcmp(a->tcp[i].name, b->tcp[i].name) || strcmp(a->tcp[i].addr.text, b->tcp[i].addr.text);
    if (svc)
        tt_log_warn("reload: service changed: that takes a restart of p (kept as it was)");
    if (tcp)
        tt_log_warn("reload: tcp-listen changed: that takes a restart of p (kept as it was)");
}

static void reload(struct main_state *ms)
{
    struct tt_px_server *srv = ms->srv;
    char err[8192];
    struct tt_px_tokens nt;
    struct tt_px_config *nc = NULL;
    char tokens_path[4200];
    snprintf(tokens_path, sizeof(tokens_path), "%s", ms->tokens_path);
    if (srv->cfg->config_file) {
        /* The same command line again: its flags still override the file. */
        nc = tt_mem_calloc(1, sizeof(*nc));
        if (!nc || tt_px_config_parse(nc, ms->argc, ms->argv, err, sizeof(err)) != 0) {
            tt_log_error("reload failed: %s; the configuration in use stays",
                         nc ? err : "out of memory");
            if (nc)
                tt_px_config_free(nc);
            tt_mem_free(nc);
            return;
        }
        if (nc->tokens_file)
            snprintf(tokens_path, sizeof(tokens_path), "%s", nc->tokens_file);
        else if (srv->cfg->tokens_file)
            snprintf(tokens_path, sizeof(tokens_path), "%s/tokens", nc->state_dir);
    }
    struct retired_tokens *old = tt_mem_calloc(1, sizeof(*old));
    struct retired_cfg *oc = nc ? tt_mem_calloc(1, sizeof(*oc)) : NULL;
    if (!old || (nc && !oc)) {
        tt_mem_free(old);
        tt_mem_free(oc);
        if (nc)
            tt_px_config_free(nc);
        tt_mem_free(nc);
        tt_log_error("reload failed: out of memory; the configuration in use stays");
        return;
    }
    if (tt_px_tokens_load(&nt, tokens_path, err, sizeof(err)) < 0) {
        tt_mem_free(old);
        tt_mem_free(oc);
        if (nc)
            tt_px_config_free(nc);
        tt_mem_free(nc);
        tt_log_error("reload failed: %s; the configuration in use stays", err);
        return;
    }
    warn_tokens(&nt, tokens_path);
    if (nc) {
        /* Routes and limits are read through srv->cfg and env at each use;
         * what points into the old configuration keeps it alive. */
        reload_restart_only(srv->cfg, nc);
        nc->max_clients = nc->max_clients ? nc->max_clients : srv->cfg->max_clients;
        oc->cfg = ms->heap_cfg; /* NULL: main's own, freed by p_exit */
        oc->next = ms->old_cfgs;
        ms->old_cfgs = oc;
        ms->heap_cfg = nc;
        srv->cfg = nc;
        srv->env.route = (struct tt_px_route_cfg){
            .domain = nc->domain, .path_prefix = nc->path_prefix, .default_name = nc->default_name,
        };
        srv->env.keep_underscores = nc->keep_underscores;
        srv->env.affinity_header = nc->affinity_header;
        tt_px_tunnel_session_config(&srv->scfg, nc->ping_interval_s * 1000, nc->ping_timeout_s * 1000);
        tt_log_init("p", (enum tt_log_level)nc->log_level);
        tt_log_set_json(nc->log_json);
        tt_log_info("reloaded --config %s: routes and limits as it says now", nc->config_file);
    }
    old->t = srv->tokens;
    old->next = ms->retired;
    ms->retired = old;
    srv->tokens = nt;
    size_t closed = tt_px_tunnel_revoke(srv, &srv->tokens);
    tt_px_h2f_retoken(srv, &srv->tokens);
    tt_log_info("reloaded tokens %s: %zu name(s), %zu tunnel(s) closed", tokens_path,
                srv->tokens.n, closed);
}

static void retired_free(struct main_state *ms)
{
    while (ms->old_cfgs) {
        struct retired_cfg *r = ms->old_cfgs;
        ms->old_cfgs = r->next;
        if (r->cfg) {
            tt_px_config_free(r->cfg);
            tt_mem_free(r->cfg);
        }
        tt_mem_free(r);
    }
    if (ms->heap_cfg) {
        tt_px_config_free(ms->heap_cfg);
        tt_mem_free(ms->heap_cfg);
        ms->heap_cfg = NULL;
    }
    while (ms->retired) {
        struct retired_tokens *r = ms->retired;
        ms->retired = r->next;
        tt_px_tokens_free(&r->t);
        tt_mem_free(r);
    }
}

static void on_hup(struct tt_loop *loop, int signo, void *data)
{
    (void)loop;
    (void)signo;
    struct main_state *ms = data;
    if (ms->srv->env.draining)
        return;
    tt_log_info("signal %d: reloading", signo);
    reload(ms);
}

/* STATE/p.pid: how `p token` finds the p to reload.  Written once SIGHUP
 * is handled; removed at exit when it is still ours. */
static void pid_file(const char *state_dir, int make)
{
    char path[4200], text[32];
    snprintf(path, sizeof(path), "%s/p.pid", state_dir);
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (make) {
        char err[4400];
        if (tt_px_write_file(path, text, (size_t)n, 0644, err, sizeof(err)) < 0)
            tt_log_warn("cannot write the pid file: %s ('p token' cannot signal this p)", err);
        return;
    }
    char buf[32] = "";
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = 0;
        fclose(f);
        if (!strcmp(buf, text))
            unlink(path);
    }
}

/* After a load has come and gone, the allocator keeps what the peak took
 * (buffers of thousands of connections) unless told to hand it back. */
#define TRIM_EVERY_MS 5000
static void on_trim_tick(struct tt_loop *loop, struct tt_timer *t)
{
    struct main_state *ms = t->data;
    size_t now = ms->srv->clients;
    if (now > ms->peak_clients)
        ms->peak_clients = now;
    if (ms->peak_clients >= 64 && now <= ms->peak_clients / 4) {
        malloc_trim(0);
        tt_log_debug("memory trimmed: %zu client connections, %zu at the peak", now,
                     ms->peak_clients);
        ms->peak_clients = now;
    }
    tt_timer_start(loop, t, TRIM_EVERY_MS);
}

static void on_drain_tick(struct tt_loop *loop, struct tt_timer *t)
{
    struct main_state *ms = t->data;
    struct tt_px_server *srv = ms->srv;
    if ((srv->clients == 0 && tt_px_tunnel_count(srv) == 0) ||
        tt_loop_now(loop) >= ms->drain_deadline) {
        tt_loop_stop(loop);
        return;
    }
    tt_timer_start(loop, t, 100);
}

static void drain_now(struct main_state *ms, struct tt_loop *loop)
{
    struct tt_px_server *srv = ms->srv;
    tt_log_info("draining (grace %d s)", DRAIN_GRACE_MS / 1000);
    srv->env.draining = 1;
    tt_px_accept_drain(srv, DRAIN_GRACE_MS);
    tt_px_tcp_drain(srv);
    tt_px_tunnel_drain(srv, DRAIN_GRACE_MS);
    ms->drain_deadline = tt_loop_now(loop) + DRAIN_GRACE_MS + 500;
    tt_timer_start(loop, &srv->drain_timer, 50);
}

static void on_drain_delay(struct tt_loop *loop, struct tt_timer *t)
{
    drain_now(t->data, loop);
}

static void on_signal(struct tt_loop *loop, int signo, void *data)
{
    struct main_state *ms = data;
    struct tt_px_server *srv = ms->srv;
    if (srv->env.draining || srv->unready) {
        tt_log_info("second signal %d: exiting now", signo);
        tt_loop_stop(loop);
        return;
    }
    if (srv->cfg->drain_delay_s) {
        /* A balancer polling /ready stops sending first; requests that
         * still come are served as usual meanwhile. */
        srv->unready = 1;
        tt_log_info("signal %d: /ready says 503 for %u s (--drain-delay), then draining", signo,
                    srv->cfg->drain_delay_s);
        tt_timer_init(&ms->delay, on_drain_delay, ms);
        tt_timer_start(loop, &ms->delay, (uint64_t)srv->cfg->drain_delay_s * 1000u);
        return;
    }
    tt_log_info("signal %d", signo);
    drain_now(ms, loop);
}

static int bound_text(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    tt_px_sockaddr_text((struct sockaddr *)&ss, out, outlen, NULL, 0);
    return 0;
}

/* Frees what main made for the whole run, on every way out once the TLS
 * context exists: nothing needs it after exit, but LeakSanitizer (make
 * check-asan) then shows only real leaks. */
/* --- Services (--service NAME=URL) ---------------------------------------------
 *
 * A service is served the way c serves --upstream, by origin's own tunnel
 * server and upstream forwarder, in this process: one socketpair, c's half
 * (tt_tunnel_srv with tt_upstream_handler) on one end, a tunnel in
 * srv->services on the other.  So a call to a service gets every rule a
 * call to an origin gets (the exchange's flow control, retries, limits,
 * access lines on both halves), and the app's connections are c's (the
 * HTTP/1.1 pool, the h2c connection, --upstream-timeout's defaults). */
#define SVC_RESTART_MS 1000

struct p_service {
    struct tt_px_server *srv;
    const struct tt_px_service *def;
    const struct tt_handler *handler; /* tt_upstream_handler or tt_tcp_handler */
    void *hctx;
    struct tt_upstream *up; /* http://, h2c:// */
    struct tt_tcp *tcp;     /* tcp:// */
    struct tt_session_config ocfg; /* the origin half's session */
    struct tt_timer again;
    int live;
};

static void svc_start(struct p_service *s);

static void svc_on_again(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    svc_start(t->data);
}

static void svc_closed(void *owner, const char *reason)
{
    struct p_service *s = owner;
    s->live = 0;
    if (s->srv->env.draining)
        return;
    tt_log_warn("service %s: its in-process server closed (%s): again in %d ms", s->def->name,
                reason ? reason : "closed", SVC_RESTART_MS);
    tt_timer_start(s->srv->loop, &s->again, SVC_RESTART_MS);
}

static void svc_start(struct p_service *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        tt_log_error("service %s: socketpair: %s", s->def->name, strerror(errno));
        tt_timer_start(s->srv->loop, &s->again, SVC_RESTART_MS);
        return;
    }
    struct tt_tls_conn *half = tt_mem_alloc(sizeof(*half));
    struct tt_tls_conn ours;
    tt_tls_conn_init_plain(&ours, sv[0]);
    if (!half) {
        close(sv[1]);
        tt_tls_conn_free(&ours);
        tt_timer_start(s->srv->loop, &s->again, SVC_RESTART_MS);
        return;
    }
    tt_tls_conn_init_plain(half, sv[1]);
    if (!tt_tunnel_srv_start(s->srv->loop, half, &s->ocfg, s->handler, s->hctx, NULL, 0,
                             svc_closed, s)) {
        tt_tls_conn_free(&ours);
        tt_timer_start(s->srv->loop, &s->again, SVC_RESTART_MS);
        return;
    }
    char peer[64];
    snprintf(peer, sizeof(peer), "service:%.50s", s->def->url);
    s->live = tt_px_tunnel_adopt(s->srv, &s->srv->services, &ours, s->def->name, peer, NULL, 0) !=
              NULL;
}

/* Checks every --service URL and starts each.  Returns 0, or -1 with err. */
static int svc_start_all(struct tt_px_server *srv, const struct tt_px_config *cfg,
                         struct p_service **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->n_services)
        return 0;
    struct p_service *v = tt_mem_calloc(cfg->n_services, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = v;
    struct tt_origin_opts none;
    memset(&none, 0, sizeof(none)); /* no pings on a socketpair */
    for (size_t i = 0; i < cfg->n_services; i++) {
        struct p_service *s = &v[i];
        struct tt_upstream_url url;
        char why[200];
        s->srv = srv;
        s->def = &cfg->services[i];
        tt_origin_session_config(&none, &s->ocfg);
        tt_timer_init(&s->again, svc_on_again, s);
        if (!strncmp(s->def->url, "tcp://", 6)) {
            char host[256], port[8];
            if (tt_origin_split_hostport(s->def->url + 6, host, sizeof(host), port, sizeof(port)) <
                0) {
                snprintf(err, errlen, "--service %s: '%s' is not tcp://HOST:PORT", s->def->name,
                         s->def->url);
                return -1;
            }
            if (!(s->tcp = tt_tcp_new(srv->loop, host, port, 0))) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            s->handler = &tt_tcp_handler;
            s->hctx = s->tcp;
            svc_start(s);
            tt_log_info("service %s: %s, for origins whose calls= allow it", s->def->name,
                        s->def->url);
            continue;
        }
        if (tt_upstream_parse_url(cfg->services[i].url, &url, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "--service %s: %s", cfg->services[i].name, why);
            return -1;
        }
        struct tt_upstream_opts uo = {
            .head_timeout_ms = url.h2c ? 0 : TT_UPSTREAM_H1_HEAD_TIMEOUT_MS,
        };
        if (!(s->up = tt_upstream_new(srv->loop, &url, &uo))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->handler = &tt_upstream_handler;
        s->hctx = s->up;
        svc_start(s);
        tt_log_info("service %s: %s, for origins whose calls= allow it", s->def->name,
                    s->def->url);
    }
    return 0;
}

static int p_exit(struct tt_px_server *srv, struct tt_px_config *cfg, int rc)
{
    tt_px_config_free(cfg);
    tt_px_registry_free(&srv->reg);
    tt_px_registry_free(&srv->services);
    tt_mem_free(srv->hs_peers);
    tt_px_tokens_free(&srv->tokens);
    tt_mem_free(srv->front_rbuf);
    SSL_CTX_free(srv->https_ctx);
    SSL_CTX_free(srv->tls_ctx);
    tt_loop_free(srv->loop);
    srv->loop = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "token"))
        return tt_px_token_cmd(argc, argv);
    struct tt_px_config cfg;
    char err[8192];
    int rc = tt_px_config_parse(&cfg, argc, argv, err, sizeof(err));
    if (rc == 1)
        return tt_px_config_free(&cfg), 0;
    if (rc < 0) {
        fprintf(stderr, "p: %s\n", err);
        tt_px_config_free(&cfg);
        return 2;
    }
    tt_log_init("p", (enum tt_log_level)cfg.log_level);
    tt_log_set_json(cfg.log_json);
    uint64_t nofile = raise_fd_limit();
    if (!cfg.max_clients) {
        /* A quarter of the descriptors stays for tunnels, handshakes and
         * the listeners. */
        uint64_t m = nofile / 4 * 3;
        cfg.max_clients = m < 16 ? 16 : m > 10000000 ? 10000000 : (uint32_t)m;
    }
    /* Buffers are freed when they drain (idle connections hold none) and
     * taken again by the next request: without these, glibc gave the top
     * of the heap back to the kernel about once every 30 small requests
     * (brk, then page faults to get it again).  Blocks up to 8 MiB (a
     * client's output buffer at its largest) stay in the heap too. */
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    signal(SIGPIPE, SIG_IGN);

    /* The tunnel identity. */
    char cert_path[4096], key_path[4096];
    const char *cert = cfg.cert, *key = cfg.key;
    if (!cert || !cfg.tokens_file) {
        if (ensure_dir(cfg.state_dir, err, sizeof(err)) < 0) {
            fprintf(stderr, "p: %s\n", err);
            return tt_px_config_free(&cfg), 2;
        }
    }
    if (!cert) {
        snprintf(cert_path, sizeof(cert_path), "%s/tunnel-cert.pem", cfg.state_dir);
        snprintf(key_path, sizeof(key_path), "%s/tunnel-key.pem", cfg.state_dir);
        cert = cert_path;
        key = key_path;
        int made = tt_tls_ensure_selfsigned(cert, key, "tether-proxy", err, sizeof(err));
        if (made < 0) {
            fprintf(stderr, "p: %s\n", err);
            return tt_px_config_free(&cfg), 2;
        }
        if (made == 1)
            tt_log_info("made a self-signed tunnel certificate %s", cert);
    }
    char fp[80];
    if (tt_tls_file_fingerprint(cert, fp, sizeof(fp)) < 0) {
        fprintf(stderr, "p: --cert %s: cannot read the certificate\n", cert);
        return tt_px_config_free(&cfg), 2;
    }
    struct tt_px_server srv;
    memset(&srv, 0, sizeof(srv));
    srv.cfg = &cfg;
    snprintf(srv.tunnel_fp, sizeof(srv.tunnel_fp), "%s", fp);
    srv.tls_ctx = tt_tls_server_ctx_new(cert, key, err, sizeof(err));
    if (!srv.tls_ctx) {
        fprintf(stderr, "p: %s\n", err);
        return p_exit(&srv, &cfg, 2);
    }
    /* The HTTPS front's identity: its own, or the tunnel's (said once). */
    if (cfg.https_listen) {
        const char *hc = cfg.https_cert ? cfg.https_cert : cert;
        const char *hk = cfg.https_key ? cfg.https_key : key;
        srv.https_ctx = tt_tls_front_ctx_new(hc, hk, err, sizeof(err));
        if (!srv.https_ctx) {
            fprintf(stderr, "p: %s: %s\n", cfg.https_cert ? "--https-cert/--https-key" : "--cert/--key",
                    err);
            return p_exit(&srv, &cfg, 2);
        }
    }

    /* Who may serve which name. */
    char tokens_path[4096];
    const char *tokens = cfg.tokens_file;
    if (!tokens) {
        snprintf(tokens_path, sizeof(tokens_path), "%s/tokens", cfg.state_dir);
        tokens = tokens_path;
        int m = make_tokens_file(tokens, cfg.state_dir, err, sizeof(err));
        if (m < 0) {
            fprintf(stderr, "p: %s\n", err);
            return p_exit(&srv, &cfg, 2);
        }
        if (m == 1)
            tt_log_info("made tokens file %s with a new token for name default, and c's token "
                        "file for it in %s",
                        tokens, cfg.state_dir);
    }
    if (tt_px_tokens_load(&srv.tokens, tokens, err, sizeof(err)) < 0) {
        fprintf(stderr, "p: %s\n", err);
        return p_exit(&srv, &cfg, 2);
    }
    warn_tokens(&srv.tokens, tokens);

    tt_px_tunnel_session_config(&srv.scfg, cfg.ping_interval_s * 1000, cfg.ping_timeout_s * 1000);
    tt_px_registry_init(&srv.reg);
    tt_px_registry_init(&srv.services);
    srv.env.reg = &srv.reg;
    srv.env.services = cfg.n_services ? &srv.services : NULL;
    srv.env.route = (struct tt_px_route_cfg){
        .domain = cfg.domain, .path_prefix = cfg.path_prefix, .default_name = cfg.default_name,
    };
    srv.env.keep_underscores = cfg.keep_underscores;
    srv.env.affinity_header = cfg.affinity_header;

    srv.loop = tt_loop_new();
    if (!srv.loop) {
        fprintf(stderr, "p: cannot make the event loop: %s\n", strerror(errno));
        return p_exit(&srv, &cfg, 1);
    }
    srv.env.loop = srv.loop;
    int tfd = tt_px_listen_socket(&cfg.tunnel_addr, err, sizeof(err));
    if (tfd < 0) {
        fprintf(stderr, "p: --tunnel-listen %s\n", err);
        return p_exit(&srv, &cfg, 2);
    }
    int cfd = -1, hfd = -1;
    if (!cfg.listen_off) {
        cfd = tt_px_listen_socket(&cfg.listen_addr, err, sizeof(err));
        if (cfd < 0) {
            fprintf(stderr, "p: --listen %s\n", err);
            return p_exit(&srv, &cfg, 2);
        }
    }
    if (cfg.https_listen) {
        hfd = tt_px_listen_socket(&cfg.https_addr, err, sizeof(err));
        if (hfd < 0) {
            fprintf(stderr, "p: --https-listen %s\n", err);
            return p_exit(&srv, &cfg, 2);
        }
    }
    srv.tunnel_lis.io.fd = srv.client_lis.io.fd = srv.https_lis.io.fd = -1;
    if (tt_px_tunnel_listen(&srv, tfd) < 0 || (cfd >= 0 && tt_px_accept_listen(&srv, cfd, 0) < 0) ||
        (hfd >= 0 && tt_px_accept_listen(&srv, hfd, 1) < 0)) {
        fprintf(stderr, "p: cannot watch the listeners: %s\n", strerror(errno));
        return p_exit(&srv, &cfg, 1);
    }
    for (size_t i = 0; i < cfg.n_tcp; i++) {
        int fd = tt_px_listen_socket(&cfg.tcp[i].addr, err, sizeof(err));
        if (fd < 0) {
            fprintf(stderr, "p: --tcp-listen %s\n", err);
            return p_exit(&srv, &cfg, 2);
        }
        char at[96];
        bound_text(fd, at, sizeof(at));
        if (tt_px_tcp_listen(&srv, &cfg.tcp[i], fd) < 0) {
            fprintf(stderr, "p: cannot watch the --tcp-listen listener: %s\n", strerror(errno));
            return p_exit(&srv, &cfg, 1);
        }
        tt_log_info("listening for tcp clients on %s for name %s", at, cfg.tcp[i].name);
    }
    if (cfg.admin_listen) {
        int afd = tt_px_listen_socket(&cfg.admin_addr, err, sizeof(err));
        if (afd < 0) {
            fprintf(stderr, "p: --admin-listen %s\n", err);
            return p_exit(&srv, &cfg, 2);
        }
        char at[96];
        bound_text(afd, at, sizeof(at));
        if (tt_px_admin_listen(&srv, afd) < 0) {
            fprintf(stderr, "p: cannot watch the --admin-listen listener: %s\n", strerror(errno));
            return p_exit(&srv, &cfg, 1);
        }
        tt_log_info("admin pages on http://%s/status (and /metrics, /api/tunnels, /ready, /live)",
                    at);
    }
    struct p_service *services = NULL;
    if (svc_start_all(&srv, &cfg, &services, err, sizeof(err)) < 0) {
        fprintf(stderr, "p: %s\n", err);
        return p_exit(&srv, &cfg, 2);
    }
    char taddr[96], caddr[96];
    bound_text(tfd, taddr, sizeof(taddr));
    tt_log_info("tunnel certificate fingerprint %s", fp);
    tt_log_info("listening for tunnels on %s", taddr);
    if (cfd >= 0) {
        bound_text(cfd, caddr, sizeof(caddr));
        tt_log_info("listening for clients on %s", caddr);
    }
    if (hfd >= 0) {
        bound_text(hfd, caddr, sizeof(caddr));
        if (!cfg.https_cert)
            tt_log_warn("the https front uses the tunnel certificate %s: give --https-cert "
                        "and --https-key for a certificate that browsers trust",
                        cert);
        tt_log_info("listening for https clients on %s", caddr);
    }
    if (!cfg.tokens_file || access(cfg.state_dir, F_OK) == 0)
        print_c_commands(&srv.tokens, cfg.state_dir, tokens, taddr, fp);

    struct main_state ms = {.srv = &srv, .tokens_path = tokens, .argc = argc, .argv = argv};
    if (!cfg.tokens_file || access(cfg.state_dir, F_OK) == 0)
        ms.state_dir = cfg.state_dir;
    tt_timer_init(&srv.drain_timer, on_drain_tick, &ms);
    tt_timer_init(&ms.trim_timer, on_trim_tick, &ms);
    tt_timer_start(srv.loop, &ms.trim_timer, TRIM_EVERY_MS);
    if (tt_loop_on_signal(srv.loop, SIGTERM, on_signal, &ms) < 0 ||
        tt_loop_on_signal(srv.loop, SIGINT, on_signal, &ms) < 0 ||
        tt_loop_on_signal(srv.loop, SIGHUP, on_hup, &ms) < 0) {
        fprintf(stderr, "p: cannot handle signals: %s\n", strerror(errno));
        return p_exit(&srv, &cfg, 1);
    }
    if (ms.state_dir)
        pid_file(ms.state_dir, 1);
    tt_log_set_buffered(1); /* access lines: one write a loop iteration */
    rc = tt_loop_run(srv.loop) < 0 ? 1 : 0;
    if (rc)
        tt_log_error("event loop failed: %s", strerror(errno));
    else
        tt_log_info("stopped");
    if (ms.state_dir)
        pid_file(ms.state_dir, 0);
    rc = p_exit(&srv, &cfg, rc);
    retired_free(&ms);
    return rc;
}
