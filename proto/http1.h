/*
 * HTTP/1.1 rules that p and c share, written once: which fields belong to
 * one connection, the HTTP/1.1 heads made from HTTP/2 ones, and host:port.
 *
 * The field names come from the generated token table (codec/token.h);
 * these functions are the rules over it.  The HTTP/2 side of the same rule
 * (a received message with a connection-specific field is malformed, RFC
 * 9113 §8.2.2) is in codec/h2.c, over the same table, since the codec may
 * not call up into proto.
 *
 * Nothing here allocates, reads a clock or touches a socket.
 */
#ifndef TT_HTTP1_H
#define TT_HTTP1_H

#include "codec/buf.h"
#include "codec/h2.h"
#include "codec/hpack.h"

#include <stddef.h>

/* ---- Connection-specific fields (RFC 9110 §7.6.1) ---------------------- */

/* 1 when `name` (any case) is one of the hop-by-hop fields every HTTP/1.1
 * connection has: Connection, Keep-Alive, Proxy-Connection, TE,
 * Transfer-Encoding, Upgrade. */
int tt_http1_hop_by_hop(const char *name, size_t len);

/* 1 when the value of one Connection field lists `name` as a
 * connection-option (RFC 9110 §7.6.1; any case, "a, b" lists both). */
int tt_http1_connection_lists(const char *conn, size_t conn_len, const char *name, size_t len);

/* 1 when a field named `name` belongs to one HTTP/1.1 connection: it is
 * hop-by-hop, or one of the `nconn` Connection values in `conn` names it.
 * TE is hop-by-hop: a caller that passes "te: trailers" on to HTTP/2 (RFC
 * 9113 §8.2.2) notes it with tt_http1_te_trailers before asking this. */
int tt_http1_conn_specific(const char *name, size_t len, const tt_iov *conn, size_t nconn);

/* 1 when a TE value offers trailers (RFC 9110 §10.1.4: "trailers" among
 * its members, parameters ignored). */
int tt_http1_te_trailers(const char *v, size_t len);

/* ---- HTTP/1.1 heads from HTTP/2 ones ------------------------------------ */

/* The most tt_http1_response_head_put writes for `hdrs`. */
size_t tt_http1_response_head_size(const struct tt_header *hdrs, size_t n);

/* Writes "HTTP/1.1 NNN Reason\r\n" and every regular field of a received
 * HTTP/2 response head (final or 1xx; no Content-Length on a 1xx, RFC 9110
 * §8.6) at p, without the blank line that ends the head (the caller adds
 * its framing fields first).  `status` is the codec-checked :status.
 * Returns the end of what it wrote: at most
 * tt_http1_response_head_size(hdrs, n) bytes. */
char *tt_http1_response_head_put(char *p, int status, const struct tt_header *hdrs, size_t n);

/* How an HTTP/1.1 request carries its body. */
enum tt_http1_body {
    TT_HTTP1_BODY_NONE = 0, /* no body; "Content-Length: 0" for methods that expect one */
    TT_HTTP1_BODY_LENGTH,   /* the Content-Length the request has (kept from the fields) */
    TT_HTTP1_BODY_CHUNKED,  /* Transfer-Encoding: chunked (RFC 9112 §7.1) */
};

/* Appends to `out` the HTTP/1.1 request head for an HTTP/2 request `h`:
 * the request line from :method and :path, Host from :authority (else the
 * host field, else `default_host`), the regular fields except those that
 * belong to one connection (RFC 9110 §7.6.1; te, HTTP2-Settings), cookies
 * joined into one field (RFC 9113 §8.2.3), and the body framing.  Returns
 * 0, or -1 when a field cannot be written in HTTP/1.1 or out is full. */
int tt_http1_request_head(const struct tt_h2_headers *h, enum tt_http1_body body,
                          const char *default_host, tt_buf *out);
/* The same without the blank line, for a caller that adds fields of its
 * own (the WebSocket upgrade's). */
int tt_http1_request_head_open(const struct tt_h2_headers *h, enum tt_http1_body body,
                               const char *default_host, tt_buf *out);

/* ---- host:port ----------------------------------------------------------- */

/* What tt_http1_hostport_parse found; host and port point into its input. */
struct tt_hostport {
    const char *host; /* without the brackets of an IPv6 literal */
    size_t host_len;
    const char *port; /* the text after the colon (empty without one) */
    size_t port_len;
    unsigned port_num; /* with TT_HOSTPORT_STRICT; else 0 */
    int has_port;      /* a ':' introduced a port */
};

/* The callers' rules differ (a listen address may omit its host, a URL its
 * port, a dialled address wants a plain host name and a real port); flags
 * say which apply, and the splitting itself is shared. */
enum tt_hostport_flag {
    TT_HOSTPORT_EMPTY_HOST = 1 << 0,    /* ":port" is allowed (a listen address: all) */
    TT_HOSTPORT_PORT_OPTIONAL = 1 << 1, /* "host" and "[v6]" alone are allowed */
    TT_HOSTPORT_STRICT = 1 << 2,        /* host: no CTL, SP, DEL, non-ASCII, '/', '@';
                                           port: 1 to 5 digits, 1-65535 */
};

/* Why tt_http1_hostport_parse refused its input; each caller turns these
 * into its own message. */
enum tt_hostport_err {
    TT_HOSTPORT_OK = 0,
    TT_HOSTPORT_EEMPTY = -1,   /* no text at all */
    TT_HOSTPORT_EBRACKET = -2, /* "[": no "]", no ":" after it, or an empty or long literal */
    TT_HOSTPORT_EFORM = -3,    /* no ":port", or a host longer than host_max */
    TT_HOSTPORT_ECOLONS = -4,  /* more than one ':' without brackets (an IPv6 address) */
    TT_HOSTPORT_EHOST = -5,    /* an empty host, or (STRICT) a byte a host cannot hold */
    TT_HOSTPORT_EPORT = -6,    /* (STRICT) not a port from 1 to 65535 */
};

/* Splits "host:port" or "[v6]:port" (s[0..len)): the bracketed form ends
 * at the first ']', which must be followed by ':' (or, with
 * PORT_OPTIONAL, by nothing); otherwise the one ':' separates.  The host
 * may be at most host_max bytes.  Returns TT_HOSTPORT_OK with `out` set,
 * or one of enum tt_hostport_err, checked in that order. */
int tt_http1_hostport_parse(const char *s, size_t len, size_t host_max, unsigned flags,
                            struct tt_hostport *out);

#endif
