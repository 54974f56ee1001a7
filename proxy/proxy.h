/*
 * bin/p internals: the server, its listeners, the tunnel listener and the
 * two fronts.  Below them: the configuration (proxy/config.h), the tunnel
 * registry (proxy/registry.h), routing and mapping (proxy/route.h) and the
 * exchange, one per request (proxy/exchange.h).
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
#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/registry.h"
#include "proxy/route.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

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

struct tt_px_hs_peer;

/* Why a tunnel handshake was refused (tt_px_server.tun_refused). */
enum tt_px_refuse {
    TT_PX_REFUSE_TOKEN,   /* 401: no token, unknown name or wrong token */
    TT_PX_REFUSE_NAME,    /* 403: a token of another name */
    TT_PX_REFUSE_LIMIT,   /* 503: --max-tunnels, or p is draining */
    TT_PX_REFUSE_REQUEST, /* 400, 426: not a tunnel request */
    TT_PX_REFUSE_TLS,     /* the TLS handshake failed (a wrong pin at c, a scanner) */
    TT_PX_REFUSE_OTHER,   /* timed out, dropped, lost before the request */
    TT_PX_REFUSE_N
};

/* --- The server (main.c builds it; accept.c, the fronts and tunnel.c run it) */

struct tt_px_server {
    struct tt_loop *loop;
    const struct tt_px_config *cfg;
    struct tt_px_tokens tokens;
    struct tt_px_registry reg;
    struct tt_px_registry services; /* --service names, each a tunnel to origin's server (main.c) */
    struct tt_session_config scfg;
    SSL_CTX *tls_ctx;
    char tunnel_fp[80]; /* "sha256:..." of the tunnel certificate, for hints in the log */
    SSL_CTX *https_ctx; /* the HTTPS client front's; NULL when off */
    struct tt_px_listener tunnel_lis, client_lis, https_lis;
    size_t handshakes;   /* TLS + PUT in progress (tunnel.c) */
    struct tt_list hs_list;            /* ... newest first */
    struct tt_px_hs_peer *hs_peers;    /* per source address: under way, refused */
    struct tt_log_limit hs_log;        /* refusal lines */
    size_t granted;      /* of those, answered 101 but not yet registered */
    size_t forward_links; /* live forward links: with tunnels, at most --max-tunnels */
    uint64_t tunnels_up;  /* tunnels (and forward links) that came up, in all */
    int unready;          /* SIGTERM's --drain-delay: /ready says 503, the drain follows */
    /* Tunnel handshakes refused, by reason (the admin listener's /metrics). */
    uint64_t tun_refused[TT_PX_REFUSE_N];
    size_t clients;      /* client connections open (accepting, HTTP/1.1 or HTTP/2) */
    struct tt_list accepting;   /* connections whose protocol is not known yet (accept.c) */
    size_t accepting_n;
    struct tt_list client_list; /* HTTP/1.1 client connections (front_h1.c) */
    struct tt_list h2_list;     /* HTTP/2 client connections (front_h2.c) */
    struct tt_list tcp_list;    /* --tcp-listen connections (front_tcp.c) */
    struct tt_px_listener *tcp_lis[TT_PX_TCP_LISTEN_MAX];
    size_t n_tcp_lis;
    /* What every exchange shares: the loop, the registry, routing, the
     * drain flag (env.draining) and the counters. */
    struct tt_px_exchange_env env;
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
/* The session settings of a connection whose streams we open: a tunnel to
 * c, a --service, c's forward link to p. */
void tt_px_tunnel_session_config(struct tt_session_config *scfg, uint32_t ping_interval_ms,
                                 uint32_t ping_timeout_ms);
/* Makes a tunnel of `conn` (p the HTTP/2 client; `early`: bytes already
 * read from it) and adds it to `reg` under `name`: a c after its handshake,
 * or a --service (main.c).  Takes `conn` either way (its holder stays the
 * caller's).  Returns the tunnel, or NULL when out of memory (logged). */
struct tt_px_tunnel *tt_px_tunnel_adopt(struct tt_px_server *srv, struct tt_px_registry *reg,
                                        struct tt_tls_conn *conn, const char *name,
                                        const char *peer, const uint8_t *early, size_t early_len);
/* Drain: GOAWAY every tunnel (grace), stop accepting. */
void tt_px_tunnel_drain(struct tt_px_server *srv, uint32_t grace_ms);
size_t tt_px_tunnel_count(const struct tt_px_server *srv);
/* A reload made `now` the tokens: closes each tunnel whose name has no
 * entry there, or one that checks another token, with a log line.
 * Returns how many. */
size_t tt_px_tunnel_revoke(struct tt_px_server *srv, const struct tt_px_tokens *now);

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
/* The same for a forward link (DESIGN.md "The forward link"): the HTTP/2
 * connection of an origin that calls names through p, authenticated as
 * `caller` (its tokens entry, which outlives it). */
int tt_px_h2f_adopt_forward(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                            const char *ip, const uint8_t *early, size_t early_len,
                            const struct tt_px_token *caller);
/* A reload made `now` the tokens (the old set stays alive: exchanges under
 * way point into it): each forward link takes its name's new entry (its
 * calls=), or is closed, with a log line, when the entry is gone or checks
 * another token. */
void tt_px_h2f_retoken(struct tt_px_server *srv, const struct tt_px_tokens *now);
/* Drain: HTTP/1.1 connections close after the request under way (idle ones
 * at once). */
void tt_px_h1_drain(struct tt_px_server *srv);
/* Drain: GOAWAY every HTTP/2 client connection; each closes once its streams
 * are done or after grace_ms. */
void tt_px_h2f_drain(struct tt_px_server *srv, uint32_t grace_ms);
/* Turns p's session settings (made for tunnels) into those of an HTTP/2
 * client connection: the client's windows and frame size. */
void tt_px_h2f_client_config(struct tt_session_config *scfg);

/* --- Byte streams: the TCP front (front_tcp.c) and WebSockets (front_pipe.c) ---- */

/* Accepts TCP connections on `fd` (taken) for def->name: each is a CONNECT
 * stream on a tunnel of the name, bytes both ways.  Returns 0 or -1. */
int tt_px_tcp_listen(struct tt_px_server *srv, const struct tt_px_tcp_listen *def, int fd);
/* Drain: stop accepting; open connections go on until the drain ends. */
void tt_px_tcp_drain(struct tt_px_server *srv);

/* One accepted --tcp-listen connection `fd` (taken) for `name`, through
 * pool `via` when not NULL (front_pipe.c). */
void tt_px_pipe_tcp(struct tt_px_server *srv, int fd, const char *peer, const char *ip,
                    const char *name, const char *via);

/* A WebSocket upgrade the HTTP/1.1 front checked (RFC 6455 §4.2.1), handed
 * over with its connection.  Everything is borrowed for the call. */
struct tt_px_ws_request {
    struct tt_px_request rq; /* authority, path, fields as received */
    const char *target;      /* the request target, for the access line */
    size_t target_len;
    const char *key; /* Sec-WebSocket-Key */
    size_t key_len;
    const uint8_t *early; /* bytes the client sent after the head */
    size_t early_len;
    uint64_t start_ms; /* when the request began */
};

/* Takes over `conn` (plaintext or TLS) for the WebSocket: an extended
 * CONNECT on a tunnel, 101 to the client once c accepts, then bytes both
 * ways.  Returns 0, or -1 (conn freed). */
int tt_px_ws_adopt(struct tt_px_server *srv, struct tt_tls_conn *conn, const char *peer,
                   const char *ip, const struct tt_px_ws_request *wr);

/* --- The admin listener (admin.c) ------------------------------------------------- */

/* Serves /metrics, /status, /api/tunnels, /ready and /live on `fd` (taken).
 * Returns 0 or -1. */
int tt_px_admin_listen(struct tt_px_server *srv, int fd);

/* --- Sockets (accept.c) ---------------------------------------------------------- */

/* Opens a listening socket (SO_REUSEADDR, non-blocking).  Returns the fd or
 * -1 with err. */
int tt_px_listen_socket(const struct tt_px_addr *a, char *err, size_t errlen);

#endif
