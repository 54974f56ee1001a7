/*
 * bin/c, the origin connector: what its parts share.
 *
 *   options.c       flags -> struct tt_origin_opts (pure but for reading the
 *                   token file and resolving --root; unit-tested)
 *   hostport.c      "host:port" splitting, shared by options.c and upstream.c
 *   dialer.c        one per tunnel: resolve, connect, TLS, the PUT, the 101,
 *                   then hand the connection to tunnel_srv.c; reconnect with
 *                   backoff
 *   tunnel_srv.c    one per live tunnel: c's HTTP/2 server (stream records,
 *                   lifetime, waiting-to-send list, drain), handing each
 *                   stream to a handler (handler.h)
 *   handler_files.c the --root handler: streams <-> origin/fileserver.h
 *                   (fileserver.c, listing.c, mime.c)
 *   upstream.c      the --upstream handler: streams <-> a local app, over
 *                   upstream_h1.c (HTTP/1.1 pool) or upstream_h2c.c (h2c)
 *   handler_tcp.c   the --tcp handler: CONNECT streams <-> TCP connections
 *                   to one local service (handler_tcp.h)
 *   main.c          wires them on one loop, signals, drain, exit code
 *
 * Names: tt_origin_* (options and the shared context), tt_backoff_*,
 * tt_dialer_*, tt_tunnel_srv_* and tt_ts_* (tunnel_srv.h, handler.h),
 * tt_files_* (the file handler), tt_upstream_* (upstream.h), tt_tcp_*
 * (handler_tcp.h).
 */
#ifndef TT_ORIGIN_H
#define TT_ORIGIN_H

#include "origin/fileserver.h"
#include "origin/handler_tcp.h"
#include "origin/hostport.h"
#include "origin/tunnel_srv.h"
#include "origin/upstream.h"
#include "proto/session.h"
#include "proto/tls.h"

#include <stddef.h>
#include <stdint.h>

/* ---- Options (options.c) --------------------------------------------- */

#define TT_ORIGIN_MAX_CONNECTIONS 256
#define TT_ORIGIN_MAX_PROXIES 8
#define TT_ORIGIN_MAX_NAME 63
#define TT_ORIGIN_MAX_TOKEN 4096
#define TT_ORIGIN_LOCAL_TCP_MAX 16

struct tt_origin_str;

struct tt_origin_opts {
    /* Every --proxy (repeatable: one c holds its tunnels to each p); the
     * first is also proxy/proxy_host/proxy_port below (the forward link's). */
    struct tt_origin_proxy {
        char text[300], host[256], port[8];
    } proxies[TT_ORIGIN_MAX_PROXIES];
    unsigned n_proxies;
    char proxy[300];      /* as given: "host:port" or "[v6]:port" (for logs) */
    char proxy_host[256]; /* host without brackets: getaddrinfo, SNI, Host */
    char proxy_port[8];
    char name[TT_ORIGIN_MAX_NAME + 1];
    char *token; /* owned (tt_mem_alloc); never logged */
    enum tt_tls_verify verify;
    const char *ca_file;
    uint8_t pin[32];
    char root[4096]; /* realpath of --root; empty with --upstream */
    int has_upstream; /* --upstream given (then no --root) */
    int has_tcp;      /* --tcp given (then neither --root nor --upstream) */
    char tcp[300];      /* --tcp as given, for the log */
    char tcp_host[256]; /* its host without brackets */
    char tcp_port[8];
    struct tt_upstream_url upstream_url;
    /* --upstream-timeout (its default by the URL's scheme), --upstream-ping,
     * and --ping-timeout for the app's pings too. */
    struct tt_upstream_opts upstream;
    int allow_put;
    unsigned connections;    /* tunnels; 0 when c only calls out */
    char local_listen[96];   /* --local-listen ADDR; "" when none */
    char admin_listen[96];   /* --admin-listen ADDR; "" when none */
    char local_to[TT_ORIGIN_MAX_NAME + 1]; /* --local-to NAME; "" when by Host */
    /* --local-tcp ADDR=NAME: local TCP clients reach NAME's TCP service */
    struct {
        char addr[96];
        char name[TT_ORIGIN_MAX_NAME + 1];
    } local_tcp[TT_ORIGIN_LOCAL_TCP_MAX];
    unsigned n_local_tcp;
    int log_level;           /* enum tt_log_level */
    int log_json;            /* --log-format json */
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    uint32_t auth_backoff_ms;
    struct tt_origin_str *owned; /* values read from --config FILE */
};

/* What tt_origin_parse_args found. */
#define TT_ORIGIN_RUN 0
#define TT_ORIGIN_HELP 1    /* --help: print tt_origin_usage(), exit 0 */
#define TT_ORIGIN_VERSION 2 /* --version */
#define TT_ORIGIN_BAD (-1)  /* err holds a one-line reason: exit 2 */

/* Parses argv (argv[0] skipped).  `env_token` is $TETHER_TOKEN or NULL.
 * Returns TT_ORIGIN_RUN with `o` filled (free with tt_origin_opts_free),
 * TT_ORIGIN_HELP, TT_ORIGIN_VERSION, or TT_ORIGIN_BAD with a reason in err
 * (without the "c: " prefix). */
int tt_origin_parse_args(int argc, char **argv, const char *env_token,
                         struct tt_origin_opts *o, char *err, size_t errlen);
void tt_origin_opts_free(struct tt_origin_opts *o);
/* The --help text: every flag with its default. */
const char *tt_origin_usage(void);

/* ---- Backoff (dialer.c) ---------------------------------------------- */

/* docs/DESIGN.md "Liveness": wait = uniform(0, min(30 s, 0.2 s *
 * 2^failures)), at least 50 ms; failures reset once a tunnel has stayed up
 * 30 s. */
#define TT_BACKOFF_BASE_MS 200u
#define TT_BACKOFF_CAP_MS 30000u
#define TT_BACKOFF_MIN_MS 50u
#define TT_BACKOFF_RESET_MS 30000u

struct tt_backoff {
    unsigned failures;
    uint64_t (*rand)(void *ud); /* uniform 64-bit values; injected by tests */
    void *rand_ud;
};

/* A default random source (xorshift seeded from getrandom): `state` points
 * to a uint64_t the caller keeps. */
uint64_t tt_backoff_default_rand(void *state);
/* The upper bound of the next wait, without drawing. */
uint64_t tt_backoff_ceiling_ms(unsigned failures);
/* Draws the wait before the next try and counts one more failure. */
uint64_t tt_backoff_next_ms(struct tt_backoff *b);
/* A tunnel that was up for `up_ms` went down: resets the failure count when
 * it stayed up long enough. */
void tt_backoff_was_up(struct tt_backoff *b, uint64_t up_ms);

/* ---- The shared context (main.c owns it) ----------------------------- */

struct tt_dialer;

struct tt_origin {
    struct tt_loop *loop;
    const struct tt_origin_opts *opts;
    SSL_CTX *ssl_ctx;
    struct tt_fs_config fs;
    struct tt_upstream *upstream; /* --upstream: tunnels forward to the app */
    /* What serves each tunnel's streams (tunnel_srv.h): tt_files_handler
     * with a struct tt_files, tt_upstream_handler with `upstream`, or
     * tt_tcp_handler with a struct tt_tcp. */
    const struct tt_handler *handler;
    void *hctx;
    struct tt_session_config scfg;
    int draining;
    unsigned live; /* dialers not yet stopped */
    /* Called once `live` drops to 0 while draining. */
    void (*on_all_stopped)(struct tt_origin *o);
};

/* Fills o->scfg from the options (c is the HTTP/2 server of the tunnel). */
void tt_origin_session_config(const struct tt_origin_opts *opts, struct tt_session_config *cfg);

/* ---- Dialer (dialer.c) ----------------------------------------------- */

/* Makes tunnel number `index` (1-based, for the log) to `px` (one of
 * opts->proxies; NULL: the first) and starts dialing at once.  Returns NULL
 * when out of memory. */
struct tt_dialer *tt_dialer_new(struct tt_origin *o, unsigned index,
                                const struct tt_origin_proxy *px);
/* A forward link (DESIGN.md "The forward link"): the same dialing, PUT and
 * backoff, asking for tether-h2; after the 101 the connection goes to
 * `up` (c is its HTTP/2 client: main.c runs it with proxy's machinery),
 * which returns a handle for `drain`, or NULL when out of memory.  The
 * owner reports the link's end with tt_dialer_link_closed. */
struct tt_dialer_forward {
    void *ud;
    void *(*up)(void *ud, struct tt_dialer *d, struct tt_tls_conn *tls, const uint8_t *early,
                size_t early_len); /* takes tls (a tt_mem_alloc'ed holder) */
    void (*drain)(void *ud, void *link, uint32_t grace_ms);
};
struct tt_dialer *tt_dialer_new_forward(struct tt_origin *o, unsigned index,
                                        const struct tt_dialer_forward *fw);
/* What a dialer is doing, for c's admin listener (strings are the
 * dialer's, valid until it changes). */
struct tt_dialer_info {
    unsigned index;
    int forward;           /* a forward link, not a tunnel */
    const char *state;     /* "up", "connecting", "waiting" (to redial)... */
    const char *proxy;     /* the p it dials, as given */
    uint64_t up_ms;        /* when it came up (the loop's clock); 0: not up */
    unsigned ups, downs;   /* times it came up, attempts that failed or ended */
    const char *last_error; /* why the last one did; "" when none */
    uint64_t last_error_ms;
};
void tt_dialer_info(const struct tt_dialer *d, struct tt_dialer_info *out);

/* The forward link `up` made is gone: wait and dial again (or stop). */
void tt_dialer_link_closed(struct tt_dialer *d, const char *reason);
/* Stops reconnecting; a live tunnel drains (GOAWAY, streams finish within
 * grace_ms).  o->live drops when this dialer is done. */
void tt_dialer_drain(struct tt_dialer *d, uint32_t grace_ms);
/* Frees a stopped dialer (after the loop ended). */
void tt_dialer_free(struct tt_dialer *d);

/* ---- The --root handler (handler_files.c) ----------------------------- */

struct tt_files;

/* Streams answered by the file server (origin/handler.h); its `hctx` is a
 * struct tt_files. */
extern const struct tt_handler tt_files_handler;
/* The handler's state, shared by every tunnel: `fs` (kept, must outlive
 * it) and one 256 KiB read buffer.  Returns NULL when out of memory. */
struct tt_files *tt_files_new(const struct tt_fs_config *fs);
void tt_files_free(struct tt_files *f);

#endif
