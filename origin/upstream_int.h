/*
 * The parts of c's upstream forwarder (upstream.c, upstream_h1.c,
 * upstream_h2c.c) share these; nothing else includes this file.
 *
 *   upstream.c      the pure helpers, the stream record that joins a tunnel
 *                   stream to its app side (st_* -> tt_up_*), addresses and
 *                   connecting, the tunnel handler's ops, the mode's life
 *   upstream_h1.c   the HTTP/1.1 keep-alive pool (tt_up_h1_*)
 *   upstream_h2c.c  the h2c connection to the app (tt_up_h2_*)
 *
 * Names: tt_up_* are internal to these three files (they are not static
 * only because they cross a file).
 */
#ifndef TT_UPSTREAM_INT_H
#define TT_UPSTREAM_INT_H

#include "origin/upstream.h"

#include "proto/resolve.h"

#include <netdb.h>
#include <string.h>
#include <strings.h>

#define UP_CONNECT_TIMEOUT_MS 10000u
#define UP_HEAD_TIMEOUT_MS 60000u
#define UP_IDLE_TIMEOUT_MS 30000u
#define UP_MAX_IDLE 64u          /* idle HTTP/1.1 connections kept */
#define UP_READ 65536u           /* one read from an HTTP/1.1 app */
#define UP_MAX_FIELDS 128u       /* fields of one HTTP/1.1 response head */
#define UP_FIELDS_MAX (64u << 10) /* bytes of them */
#define UP_OUT_MAX (256u << 10)  /* request head + chunk framing */
#define UP_PEND_MAX (32u << 20)  /* bounded by windows anyway; a guard */
#define UP_MAX_INTERIM 8u        /* 1xx passed on per request; an app may not flood p */

/* tt_up_connect: wait for the name lookup (tt_up_on_resolved calls back). */
#define UP_RESOLVING (-2)

/* A header list copied into one allocation (names and values after the
 * array): request heads waiting for an app connection, trailers waiting
 * behind body bytes, response heads waiting for room. */
struct up_hdrs {
    struct tt_header *h;
    size_t n;
};

struct up_h1;
struct up_h2;
struct up_stream;

struct tt_upstream {
    struct tt_loop *loop;
    struct tt_upstream_url url;
    struct addrinfo *ai; /* resolved on first use; looked up again once every address failed */
    int ai_stale;          /* ... which sets this: the next fresh connect looks the name up */
    struct tt_resolve *res; /* a lookup of the app's name in flight (proto/resolve.h) */
    unsigned naddr;
    unsigned pref;          /* the address that worked last */
    struct up_h1 *idle;     /* idle HTTP/1.1 connections, most recent first */
    unsigned nidle;
    struct up_h1 *busy_list; /* connecting or serving */
    struct up_h2 *h2cur;    /* the h2c connection new streams go to */
    struct up_h2 *h2all;    /* every h2c connection (old ones drain) */
    struct up_stream *wait_head, *wait_tail; /* h2c: streams waiting for a connection or a slot */
    struct tt_session_config acfg; /* the app connection's HTTP/2 settings */
    uint64_t conns_made;
    int closing; /* c is exiting (tt_upstream_close_sessions): no new app connection */
};

/* The handler's part of a tunnel stream record (origin/handler.h); the
 * tunnel server owns the record and frees it (up_free) once the tunnel
 * stream has closed and no hold is left.  The app side holds it while
 * a_open. */
struct up_stream {
    struct tt_upstream *up;
    uint32_t sid;             /* the tunnel stream's, for the log */
    unsigned t_open : 1;      /* the tunnel stream is open (up_open to up_close) */
    unsigned a_open : 1;      /* an app side holds the record */
    unsigned req_ended : 1;   /* p's END_STREAM arrived */
    unsigned req_end_sent : 1; /* the app has the whole request (h2c) */
    unsigned head_sent : 1;   /* a response head went to p */
    unsigned head_pending : 1; /* ... or waits in resp_head for room */
    unsigned resp_ended : 1;  /* the app's response is complete */
    unsigned end_sent : 1;    /* END_STREAM (or trailers) went to p */
    unsigned is_head : 1;     /* a HEAD request */
    unsigned chunked : 1;     /* HTTP/1.1 request body in chunks */
    unsigned retried : 1;
    unsigned waiting : 1;     /* on the h2c wait list */
    uint8_t interim;          /* 1xx responses passed on to p */
    tt_buf req_pend;          /* request body from p, not yet with the app */
    tt_buf resp_pend;         /* response body from the app, not yet queued to p */
    struct up_hdrs resp_head; /* head_pending */
    struct up_hdrs resp_trailers;
    struct up_hdrs req_hdrs;     /* h2c: the request head until submitted */
    struct up_hdrs req_trailers; /* h2c: p's trailers, sent after req_pend */
    tt_buf req_trailer_lines;    /* HTTP/1.1: p's trailers as chunked trailer lines */
    tt_buf retry_head;           /* HTTP/1.1: the head, for one retry on a fresh connection */
    struct up_h1 *h1;
    struct up_h2 *ah;            /* h2c connection and stream */
    uint32_t asid;
    struct tt_timer head_timer;
    struct up_stream *wprev, *wnext; /* the h2c wait list */
    struct up_stream *aprev, *anext; /* the h2c connection's streams */
};

/* ---- the stream record (upstream.c) ---- */

struct tt_ts *tt_up_ts(struct up_stream *st);
void tt_up_hold(struct up_stream *st);
/* Lets go; the record may be freed by the tunnel server then. */
void tt_up_release(struct up_stream *st);
/* RST_STREAM to p (up_close runs inside). */
void tt_up_reset(struct up_stream *st, uint32_t code);
/* A plain-text answer of our own (502, 504) before a head went out; a
 * reset after it. */
void tt_up_answer(struct up_stream *st, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The app's response head, now or once the output has room. */
void tt_up_head(struct up_stream *st, const struct tt_header *h, size_t n, int end);
/* An app 1xx passed on to p (not 100; at most UP_MAX_INTERIM). */
void tt_up_interim(struct up_stream *st, int status, const struct tt_header *h, size_t n);
/* Response body: returns the bytes p's stream took at once (the rest waits
 * in resp_pend), or -1 when the stream is gone. */
ssize_t tt_up_body(struct up_stream *st, const uint8_t *p, size_t n);
/* Moves what waits for p into the tunnel's output; returns DATA bytes. */
size_t tt_up_pump(struct up_stream *st);
int tt_up_hdrs_copy(struct up_hdrs *d, const struct tt_header *src, size_t n);
void tt_up_hdrs_free(struct up_hdrs *d);

/* ---- addresses (upstream.c) ---- */

/* A non-blocking connect to the next address; the fd, -1 (errno), or
 * UP_RESOLVING. */
int tt_up_connect(struct tt_upstream *up, unsigned *tries, unsigned *idx);
/* After writable: 0 when connected, else errno. */
int tt_up_connect_result(int fd);

/* ---- HTTP/1.1 (upstream_h1.c) ---- */

void tt_up_h1_open(struct up_stream *st, const struct tt_h2_headers *h);
/* Writes what the request has ready. */
void tt_up_h1_push(struct up_h1 *c);
/* Closes the connection and lets go of its stream. */
void tt_up_h1_abort(struct up_h1 *c);
void tt_up_h1_update_io(struct up_h1 *c);
/* p's stream closed with `code`: the connection finishes alone or goes. */
void tt_up_h1_stream_closed(struct up_stream *st, uint32_t code);
void tt_up_h1_on_resolved(struct tt_upstream *up, const char *why);
void tt_up_h1_free_all(struct tt_upstream *up);

/* ---- h2c (upstream_h2c.c) ---- */

void tt_up_h2_open(struct up_stream *st, const struct tt_h2_headers *h);
/* Request body and trailers to the app stream. */
void tt_up_h2_push(struct up_stream *st);
/* p's side ended or failed: the app stream goes too. */
void tt_up_h2_abort(struct up_stream *st, uint32_t code);
/* The app connection's codec, or NULL when it is not up. */
struct tt_h2_conn *tt_up_h2_conn(struct up_h2 *a);
/* p's stream closed (code and flags as in on_stream_close). */
void tt_up_h2_stream_closed(struct up_stream *st, uint32_t code, unsigned flags);
void tt_up_h2_on_resolved(struct tt_upstream *up, const char *why);
/* Frees the h2c connections that hold no session; returns 1 if any is
 * left (to the process's end). */
int tt_up_h2_free_all(struct tt_upstream *up);

/* Field name and iovec comparisons (the pure section's are static). */
static inline int tt_up_name_is(const struct tt_header *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && !strncasecmp(f->name, name, n);
}

static inline int tt_up_iov_is(tt_iov v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && !memcmp(v.base, s, n);
}

#endif
