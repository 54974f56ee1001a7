/*
 * Routing and header mapping (route.c): which name a request goes to, and
 * the HTTP/2 head it is sent to c with.  Pure functions over borrowed
 * views, so the unit tests and a fuzzer call them directly.
 */
#ifndef TT_PX_ROUTE_H
#define TT_PX_ROUTE_H

#include "codec/h2.h"

#include <stddef.h>

/* A field as a front received it: borrowed, valid during the call. */
struct tt_px_field {
    const char *name, *value;
    size_t name_len, value_len;
};

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
    int keep_underscores; /* pass on names with '_' (dropped by default) */
    const char *caller;   /* a call over a forward link: Tether-Caller; else NULL */
    const char *protocol; /* extended CONNECT's :protocol (RFC 8441), e.g. "websocket"; else NULL */
};

struct tt_px_map_out {
    struct tt_header *hdrs;
    size_t cap, count;
    char *scratch; /* lowercased names and built values live here */
    size_t scratch_cap, scratch_len;
    int te_trailers;     /* the client sent TE: trailers */
    int expect_continue; /* the client sent Expect: 100-continue */
    int expect_other;    /* ... or another expectation (417, RFC 9110 §10.1.1) */
    size_t dropped;      /* fields dropped for a '_' in their names */
};

/* Maps an HTTP/1.1 request head to HTTP/2 fields (pseudo-headers first):
 * hop-by-hop fields dropped (also those named by Connection), names
 * lowercased, X-Forwarded-* and Forwarded added.  Tether-Caller is p's to
 * say: one a client sent is dropped, and a call gets its caller's name.  Returns 0, or -1 when
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

/* The first of `f` named `name` (any case), or NULL (also for name NULL). */
const struct tt_px_field *tt_px_field_find(const struct tt_px_field *f, size_t n, const char *name);

/* p's own answer `status` with text `text` to a gRPC request: writes the
 * text percent-encoded as a grpc-message into `msg` and returns the
 * grpc-status that says the same (403 PERMISSION_DENIED, 503 UNAVAILABLE,
 * ...). */
int tt_px_grpc_local(int status, const char *text, char *msg, size_t cap);

/* Drops the fields named `name` (any case) from h[0..n), keeping the order;
 * returns how many are left. */
size_t tt_px_fields_drop(struct tt_header *h, size_t n, const char *name);

/* RFC 9110 §9.2.2 */
int tt_px_method_idempotent(const char *m, size_t len);

/* A call's target (a request over a forward link): the name its
 * :authority gives, without port and without ".DOMAIN".  Sets *name_len
 * (the name starts at `a`); returns 1 when it is a valid name. */
int tt_px_call_target(const char *domain, const char *a, size_t len, size_t *name_len);

struct tt_px_token;
/* Routes a call of `caller` (its tokens entry) to the name of its
 * :authority `a` (tt_px_call_target).  Returns 0 with `rt` set; 400 (no
 * name there) or 403 (its calls= does not list it; rt->name set) with the
 * answer's text in `why`. */
int tt_px_route_call(const struct tt_px_token *caller, const char *domain, const char *a,
                     size_t len, const char *path, size_t path_len, struct tt_px_route *rt,
                     char *why, size_t whylen);

/* A response head (`last`: trailers-only) or its trailers: *grpc = 1 for a
 * gRPC content-type, *status = its grpc-status when `last` carries one. */
void tt_px_grpc_fields(const struct tt_header *h, size_t n, int last, uint8_t *grpc,
                       int16_t *status);

#endif
