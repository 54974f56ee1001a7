/*
 * bin/p internals: the configuration, the tunnel registry, the tunnel
 * listener, the accept layer and the two fronts.  Requests themselves are
 * exchanges (proxy/exchange.h).
 *
 * Ownership, in one picture:
 *
 *   tt_px_server (one, made by main)
 *     ├── registry: name -> pool (array of tunnel pointers)
 *     ├── tunnel listener -> handshakes (tt_px_hs, freed after the 101)
 *     │                      -> tunnels (tt_px_tunnel: a session + its pool slot)
 *     └── client listeners (accept.c) -> a connection until its protocol is
 *           known, then HTTP/1.1 (front_h1.c: one socket, llhttp, the one
 *           request in flight) or HTTP/2 (front_h2.c: a session, a record
 *           per stream); each request embeds its tt_px_exchange
 *
 * A request in flight is bound to one HTTP/2 stream of one tunnel; the
 * stream's user data is the exchange, which knows its tunnel and stream id.
 * Either side may go first: a tunnel that closes closes its streams
 * (on_stream_close detaches the exchange), a client that goes resets its
 * stream (RST_STREAM(CANCEL)) before its record is freed.
 */
#ifndef TT_PROXY_H
#define TT_PROXY_H

#include "codec/buf.h"
#include "codec/h2.h"
#include "proto/http1.h"
#include "proto/list.h"
#include "proto/log.h"
#include "proto/loop.h"
#include "proto/session.h"
#include "proto/tls.h"
#include "proxy/exchange.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

/* --- Configuration (config.c) ----------------------------------------- */

struct tt_px_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[80]; /* "host:port" as given, for the log */
};

struct tt_px_token {
    char name[TT_PX_NAME_MAX + 1];
    char *token;
    size_t token_len;
};

struct tt_px_tokens {
    struct tt_px_token *v;
    size_t n, cap;
};

struct tt_px_config {
    const char *listen;        /* "0.0.0.0:8080"; "off": no plaintext front */
    const char *https_listen;  /* NULL: no HTTPS front */
    const char *https_cert, *https_key; /* NULL: the tunnel identity */
    int listen_off;
    const char *tunnel_listen; /* "0.0.0.0:7443" */
    const char *cert, *key;
    const char *state_dir; /* "./tether-state" */
    const char *tokens_file;
    const char *domain;      /* lowercase, no leading dot */
    const char *path_prefix; /* starts with '/' */
    const char *default_name;
    int log_level;
    uint32_t ping_interval_s, ping_timeout_s;
    uint32_t client_idle_s; /* a client connection with no request under way */
    uint32_t max_tunnels;
    struct tt_px_addr listen_addr, tunnel_addr, https_addr;
};

/* Parses argv into cfg.  Returns 0 to run, 1 when --help/--version printed
 * (exit 0), or -1 with a one-line reason in err (exit 2). */
int tt_px_config_parse(struct tt_px_config *cfg, int argc, char **argv, char *err, size_t errlen);
void tt_px_config_usage(FILE *out);
/* "host:port", "[v6]:port", ":port" (all addresses).  Returns 0 or -1. */
int tt_px_parse_addr(const char *s, struct tt_px_addr *out, char *err, size_t errlen);
/* A name usable in a tokens file, a Host label and a path segment. */
int tt_px_name_valid(const char *s, size_t len);

/* Parses a tokens file's text.  `file` is used in messages only: "FILE:LINE:
 * why".  Returns 0, or -1 with err set (tokens freed). */
int tt_px_tokens_parse(struct tt_px_tokens *t, const char *text, size_t len, const char *file,
                       char *err, size_t errlen);
int tt_px_tokens_load(struct tt_px_tokens *t, const char *file, char *err, size_t errlen);
void tt_px_tokens_free(struct tt_px_tokens *t);
/* The outcome of checking a PUT's name and token, in constant time over all
 * tokens: 0 valid for the name, 401 unknown name or token, 403 the token is
 * valid but for another name. */
int tt_px_tokens_check(const struct tt_px_tokens *t, const char *name, size_t name_len,
                       const uint8_t *token, size_t token_len);

/* --- Registry (registry.c) -------------------------------------------- */

struct tt_px_server;

struct tt_px_tunnel {
    struct tt_px_server *srv;
    struct tt_session *sess; /* NULL in unit tests */
    struct tt_px_pool *pool; /* NULL once out of the registry */
    size_t pool_index;
    uint64_t serial;   /* unique per process: "not that one again" on retry */
    uint32_t streams;  /* requests bound to this tunnel */
    uint8_t draining;  /* GOAWAY seen (either way): no new streams */
    uint8_t dead;      /* the session is closing */
    struct tt_list waiting; /* exchanges whose request body waits for window or room */
    char name[TT_PX_NAME_MAX + 1];
    char peer[64];
};

struct tt_px_pool {
    struct tt_px_pool *next; /* hash chain */
    char name[TT_PX_NAME_MAX + 1];
    struct tt_px_tunnel **members;
    size_t n, cap;
    size_t rr; /* where the next tie-break scan starts */
};

#define TT_PX_REG_BUCKETS 256

struct tt_px_registry {
    struct tt_px_pool *buckets[TT_PX_REG_BUCKETS];
    size_t names;   /* pools with at least one member */
    size_t tunnels; /* members in all pools */
    /* The pool when exactly one name is served, else NULL: kept up to date
     * by add and remove, because every request without a route asks. */
    struct tt_px_pool *single;
};

void tt_px_registry_init(struct tt_px_registry *r);
void tt_px_registry_free(struct tt_px_registry *r);
/* Adds a tunnel under t->name.  Returns the pool size, or -1 (no memory). */
int tt_px_registry_add(struct tt_px_registry *r, struct tt_px_tunnel *t);
/* Removes a tunnel from its pool (at once; no-op when not in one).  Returns
 * the pool size left. */
size_t tt_px_registry_remove(struct tt_px_registry *r, struct tt_px_tunnel *t);
struct tt_px_pool *tt_px_registry_find(const struct tt_px_registry *r, const char *name,
                                       size_t len);
/* The only name with members when exactly one has; else NULL. */
const char *tt_px_registry_single_name(const struct tt_px_registry *r);
/* Picks the member with the fewest streams among those `usable` accepts (all
 * when NULL) and not draining/dead, round-robin on ties; skips `avoid`.
 * Returns NULL when none. */
struct tt_px_tunnel *tt_px_pool_pick(struct tt_px_pool *p,
                                     int (*usable)(const struct tt_px_tunnel *),
                                     const struct tt_px_tunnel *avoid);

/* 1 if a new stream can be opened on the tunnel now (tunnel.c). */
int tt_px_tunnel_usable(const struct tt_px_tunnel *t);
/* Opens a stream for a request on a member of `pool`: the one with the
 * fewest streams, not the tunnel whose serial is `avoid` while another is
 * there (a retry goes elsewhere), and the next one when a member turns out
 * to be at its stream limit or going away.  On success the stream is counted
 * on the tunnel, the tunnel is flushed, *tun is set and the stream id (> 0)
 * returned.  Returns 0 when no member can take it now, or TT_ERR_BAD_HEADER /
 * TT_ERR_HEADER_TOO_LARGE for a request no tunnel would take (tunnel.c). */
int64_t tt_px_pool_open(struct tt_px_pool *pool, uint64_t avoid, const struct tt_header *hdrs,
                        size_t n, int end_stream, void *sud, struct tt_px_tunnel **tun);
/* The other end of tt_px_pool_open: a request lets go of its stream on *tun
 * (done, failed or given up).  The stream stops counting on the tunnel,
 * *avoid becomes its serial (a retry goes elsewhere), *tun is NULLed. */
void tt_px_pool_leave(struct tt_px_tunnel **tun, uint64_t *avoid);

/* --- Routing and header mapping (bridge.c, pure parts) ----------------- */

struct tt_px_route_cfg {
    const char *domain;
    const char *path_prefix;
    const char *default_name;
    const char *single_name; /* the only connected name, or NULL */
};

struct tt_px_route {
    const char *name; /* points into host/path/cfg; NULL: no route */
    size_t name_len;
    const char *path; /* the :path to send (points into the input path) */
    size_t path_len;
    int stripped;     /* 1: routed by path prefix (x-forwarded-prefix) */
    int by_path_root; /* "PREFIX<name>" with nothing after: path "/" */
};

/* Decides the name for a request from its Host and path.  Returns 0 and
 * fills `out` (out->name NULL when nothing routes it). */
int tt_px_route(const struct tt_px_route_cfg *cfg, const char *host, size_t host_len,
                const char *path, size_t path_len, struct tt_px_route *out);

struct tt_px_map_in {
    const char *method;
    size_t method_len;
    const char *path; /* after prefix stripping */
    size_t path_len;
    const char *host; /* the Host field; NULL when absent */
    size_t host_len;
    const char *scheme;    /* "http" */
    const char *client_ip; /* "127.0.0.1" or "::1" */
    const char *prefix;    /* x-forwarded-prefix value, or NULL */
    size_t prefix_len;
    const struct tt_px_field *f; /* the request's fields as received */
    size_t n;
};

struct tt_px_map_out {
    struct tt_header *hdrs;
    size_t cap, count;
    char *scratch; /* lowercased names and built values live here */
    size_t scratch_cap, scratch_len;
    int te_trailers;     /* the client sent TE: trailers */
    int expect_continue; /* the client sent Expect: 100-continue */
    int expect_other;    /* ... or another expectation (417, RFC 9110 §10.1.1) */
};

/* Maps an HTTP/1.1 request head to HTTP/2 fields (pseudo-headers first):
 * hop-by-hop fields dropped (also those named by Connection), names
 * lowercased, X-Forwarded-* and Forwarded added.  Returns 0, or -1 when
 * out of room (431). */
int tt_px_map_request(const struct tt_px_map_in *in, struct tt_px_map_out *out);

/* 1 when `a` is a valid Host / :authority value: uri-host [ ":" port ]
 * (RFC 9110 §7.2, §4.2.3; RFC 3986 §3.2.2-3): a reg-name (unreserved,
 * pct-encoded, sub-delims; empty allowed), an IPv4 address, or an IPv6 /
 * IPvFuture literal in brackets; a port of digits up to 65535.  Userinfo,
 * '/', '?', '#', whitespace and control bytes make it invalid.  Both fronts
 * use it, so HTTP/1.1 and HTTP/2 agree. */
int tt_px_authority_valid(const char *a, size_t len);

struct tt_px_target {
    const char *authority; /* absolute-form: its authority; else NULL */
    size_t authority_len;
    const char *path; /* origin-form path + query, "*", or after the authority */
    size_t path_len;
};

/* Splits an HTTP/1.1 request-target (RFC 9112 §3.2): origin-form ("/..."),
 * asterisk-form ("*") or absolute-form with http or https (authority up to
 * the first '/' or '?'; the path may then be empty or start with '?').
 * Returns 0, or -1 for a target to answer 400: a fragment, another form or
 * scheme, userinfo, an empty or invalid authority. */
int tt_px_target_split(const char *t, size_t len, struct tt_px_target *out);

/* HTTP/2 response heads for an HTTP/1.1 client are written by
 * tt_http1_response_head_size/_put (proto/http1.h), final and 1xx alike. */

/* --- Listeners (accept.c) ---------------------------------------------------- */

/* A listening socket and its accept loop.  At the fd limit (EMFILE and its
 * kin) it stops accepting for a moment instead of spinning on a listener
 * that stays readable, and says so in one line a second, with a count. */
struct tt_px_listener {
    struct tt_px_server *srv;
    struct tt_io io;             /* fd -1: not listening */
    struct tt_timer resume;      /* accepting paused */
    struct tt_log_limit log;
    const char *what;            /* "client", "https client", "tunnel" (the log) */
    void (*on_conn)(struct tt_px_listener *l, int fd, const struct sockaddr_storage *ss);
};

/* Starts accepting on `fd` (the listener takes it): each connection, non-
 * blocking with TCP_NODELAY, goes to on_conn.  Returns 0 or -1. */
int tt_px_listener_start(struct tt_px_server *srv, struct tt_px_listener *l, int fd,
                         const char *what,
                         void (*on_conn)(struct tt_px_listener *, int, const struct sockaddr_storage *));
/* Stops accepting and closes the socket (no-op when not listening). */
void tt_px_listener_close(struct tt_px_listener *l);

/* --- The server (main.c builds it; accept.c, the fronts and tunnel.c run it) */

struct tt_px_server {
    struct tt_loop *loop;
    const struct tt_px_config *cfg;
    struct tt_px_tokens tokens;
    struct tt_px_registry reg;
    struct tt_session_config scfg;
    SSL_CTX *tls_ctx;
    SSL_CTX *https_ctx; /* the HTTPS client front's; NULL when off */
    struct tt_px_listener tunnel_lis, client_lis, https_lis;
    size_t handshakes;   /* TLS + PUT in progress */
    size_t granted;      /* of those, answered 101 but not yet registered */
    size_t clients;      /* client connections open (accepting, HTTP/1.1 or HTTP/2) */
    struct tt_list accepting;   /* connections whose protocol is not known yet (accept.c) */
    struct tt_list client_list; /* HTTP/1.1 client connections (front_h1.c) */
    struct tt_list h2_list;     /* HTTP/2 client connections (front_h2.c) */
    struct tt_px_counters counters;
    int draining;
    uint64_t tunnel_serial;
    struct tt_timer drain_timer;
    /* One read buffer that HTTP/1.1 client connections borrow for a read
     * (front_h1.c): a connection keeps input of its own only while a
     * request is incomplete, so requests cost no allocation.  NULL while
     * lent. */
    uint8_t *front_rbuf;
    int front_rbuf_made;
};

/* --- The tunnel listener (tunnel.c) ---------------------------------------- */

int tt_px_tunnel_listen(struct tt_px_server *srv, int fd);
/* A tunnel session's callbacks (ud: the tt_px_tunnel, freed when the
 * session closes): stream events go to the exchanges. */
extern const struct tt_session_callbacks tt_px_tunnel_cbs;
/* Drain: GOAWAY every tunnel (grace), stop accepting. */
void tt_px_tunnel_drain(struct tt_px_server *srv, uint32_t grace_ms);
size_t tt_px_tunnel_count(const struct tt_px_server *srv);

/* --- Accepting clients (accept.c) ------------------------------------------- */

/* Listens for clients on `fd`: plaintext (HTTP/1.1, or h2c with prior
 * knowledge on the same port), or with `tls` (srv->https_ctx) HTTPS: a TLS
 * handshake on the loop, 10 s at most, then h2 by ALPN.  Each connection is
 * handed to the front of its protocol once that is known.  Returns 0 or -1. */
int tt_px_accept_listen(struct tt_px_server *srv, int fd, int tls);
/* Drain: stop accepting, close connections whose protocol is not known yet,
 * and let each front finish what it has. */
void tt_px_accept_drain(struct tt_px_server *srv, uint32_t grace_ms);

/* RFC 9113 §3.4: what an HTTP/2 client sends first. */
#define TT_PX_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define TT_PX_H2_PREFACE_LEN 24

/* Looks at the first bytes of a client connection.  Returns 1 when they
 * start with the whole HTTP/2 preface, 0 when they are a proper prefix of it
 * (read more), -1 when they are not HTTP/2 (serve HTTP/1.1). */
int tt_px_h2f_sniff(const uint8_t *p, size_t len);

/* --- The fronts: protocol adapters over exchanges ----------------------------- */

/* Both take over a client connection: `conn` is plaintext
 * (tt_tls_conn_init_plain) or TLS with its handshake done (requests then go
 * on with :scheme https).  `early` holds plaintext bytes already read from
 * it.  `peer` is "ip:port", `ip` the address alone.  They take ownership of
 * `conn` either way.  Return 0, or -1 when out of memory (the connection is
 * closed then). */
int tt_px_h1_adopt(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                   const char *ip, const uint8_t *early, size_t early_len);
int tt_px_h2f_adopt(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                    const char *ip, const uint8_t *early, size_t early_len);
/* Drain: HTTP/1.1 connections close after the request under way (idle ones
 * at once). */
void tt_px_h1_drain(struct tt_px_server *srv);
/* Drain: GOAWAY every HTTP/2 client connection; each closes once its streams
 * are done or after grace_ms. */
void tt_px_h2f_drain(struct tt_px_server *srv, uint32_t grace_ms);
/* Turns p's session settings (made for tunnels) into those of an HTTP/2
 * client connection: the client's windows and frame size. */
void tt_px_h2f_client_config(struct tt_session_config *scfg);

/* --- Sockets (main.c) ------------------------------------------------------------ */

/* Opens a listening socket (SO_REUSEADDR, non-blocking).  Returns the fd or
 * -1 with err. */
int tt_px_listen_socket(const struct tt_px_addr *a, char *err, size_t errlen);
/* "ip:port" of a sockaddr. */
void tt_px_sockaddr_text(const struct sockaddr *sa, char *out, size_t outlen, char *ip,
                         size_t iplen);

#endif
