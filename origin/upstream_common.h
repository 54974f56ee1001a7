/*
 * What the parts of c's upstream forwarder share, below the two app sides;
 * nothing outside upstream*.c includes this file.  Bottom up:
 *
 *   upstream_pure.c    the URL and the response filter (upstream_pure.h)
 *   upstream_common.c  this header's functions: the tunnel half of the
 *                      stream record, the app's addresses and connecting
 *   upstream_h1.c      the HTTP/1.1 keep-alive pool (upstream_h1.h)
 *   upstream_h2c.c     the h2c connection to the app (upstream_h2c.h)
 *   upstream.c         the tunnel handler's ops, the mode's life
 *                      (upstream.h)
 *
 * Each file calls only those below it.  Where upstream_common.c needs the
 * app side (the pump's end, a finished name lookup), it goes through the
 * struct tt_up_app of the mode, which each side defines and upstream.c
 * picks: a pointer up, not a call, so there is no loop between the files.
 *
 * Names: tt_up_* are internal to these files (they are not static only
 * because they cross a file).
 */
#ifndef TT_UPSTREAM_COMMON_H
#define TT_UPSTREAM_COMMON_H

#include "origin/handler.h"
#include "origin/upstream_pure.h"

#include "codec/buf.h"
#include "codec/h2.h"
#include "proto/loop.h"
#include "proto/resolve.h"
#include "proto/session.h"

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define UP_CONNECT_TIMEOUT_MS 10000u
#define UP_IDLE_TIMEOUT_MS 30000u
#define UP_MAX_IDLE 64u          /* idle HTTP/1.1 connections kept */
#define UP_READ 65536u           /* one read from an HTTP/1.1 app */
#define UP_MAX_FIELDS 128u       /* fields of one HTTP/1.1 response head */
#define UP_FIELDS_MAX (64u << 10) /* bytes of them */
#define UP_OUT_MAX (256u << 10)  /* request head + chunk framing */
#define UP_PEND_MAX (32u << 20)  /* bounded by windows anyway; a guard */
#define UP_MAX_INTERIM 8u        /* 1xx passed on per request; an app may not flood p */

/* tt_up_connect: wait for the name lookup (its end calls tt_up_app.resolved). */
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
struct tt_upstream;

/* What the shared code needs from the app side above it.  upstream_h1.c
 * (tt_up_h1_app) and upstream_h2c.c (tt_up_h2_app) each fill one, and
 * tt_upstream_new keeps the one of the URL's scheme in tt_upstream.app. */
struct tt_up_app {
    /* tt_up_pump queued `n` (> 0) response body bytes to p: h2c gives the
     * app stream that much window back.  NULL: nothing to do. */
    void (*credit)(struct up_stream *st, size_t n);
    /* tt_up_pump is done: an HTTP/1.1 app socket paused for lack of room
     * may be read again.  NULL: nothing to do. */
    void (*resume)(struct up_stream *st);
    /* The lookup of the app's name ended (`why` says how it failed, or
     * NULL): connections that waited for it connect now, or fail. */
    void (*resolved)(struct tt_upstream *up, const char *why);
};

struct tt_upstream {
    struct tt_loop *loop;
    struct tt_upstream_url url;
    struct tt_upstream_opts opts;
    const struct tt_up_app *app; /* the side of url's scheme */
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
    struct tt_tcp *ws; /* http://: WebSockets, each on a connection of its own (handler_tcp.c) */
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
    unsigned resp_ended : 1;  /* the response is complete: the app's, or our own answer */
    unsigned app_ended : 1;   /* h2c: the app's END_STREAM arrived (its stream needs no reset) */
    unsigned end_sent : 1;    /* END_STREAM (or trailers) went to p */
    unsigned is_head : 1;     /* a HEAD request */
    unsigned chunked : 1;     /* HTTP/1.1 request body in chunks */
    unsigned retried : 1;
    unsigned waiting : 1;     /* on the h2c wait list */
    unsigned ext_connect : 1; /* h2c: an extended CONNECT (a WebSocket, RFC 8441) */
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

/* ---- the stream record (upstream_common.c) ---- */

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

/* ---- addresses (upstream_common.c) ---- */

/* A non-blocking connect to the next address; the fd, -1 (errno), or
 * UP_RESOLVING. */
int tt_up_connect(struct tt_upstream *up, unsigned *tries, unsigned *idx);
/* After writable: 0 when connected, else errno. */
int tt_up_connect_result(int fd);

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
