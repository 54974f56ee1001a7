/*
 * One exchange per client request: the protocol-neutral half of a request on
 * p, in the shape of nghttpx's Downstream and h2o's h2o_req_t.
 *
 *   front (HTTP/1.1 or HTTP/2)            exchange                     tunnel
 *   parses the client's protocol  ──start──▶ route, map, open ───────▶ stream
 *   request body bytes            ──body───▶ send / wait for window ─▶ DATA
 *   writes heads and bytes        ◀──ops──── response, local answers ◀ HEADERS, DATA
 *   says which bytes left         ──taken──▶ WINDOW_UPDATE to c
 *   client gone / done            ──end────▶ RST_STREAM(CANCEL), access line
 *
 * A front embeds one struct tt_px_exchange in its request record and
 * implements struct tt_px_front_ops; the tunnel's stream user data is the
 * exchange, and proxy/tunnel.c calls the tt_px_exchange_on_* functions
 * below, never a front.  So a rule written here (retries, flow control,
 * local answers, logging, counters) holds for every front at once.
 *
 * Retry and replay policy (DESIGN.md "Failures are never silent"), for a
 * stream that closes before its response head:
 *   - Refused: c sent RST_STREAM(REFUSED_STREAM), or the stream was above
 *     c's GOAWAY last-stream-id.  c never processed it (RFC 9113 §8.7), so
 *     it is sent again whatever its method, with its body when every byte
 *     sent so far was kept (up to TT_PX_REPLAY_MAX; trailers are never
 *     kept).  A body that was not all kept gets 502 "refused".
 *   - Lost: the tunnel itself went away.  Sent again only when that is safe:
 *     an idempotent method (RFC 9110 §9.2.2) and no body byte sent.  Else
 *     502 "tunnel closed before it answered".
 *   - Reset by the origin (any other RST_STREAM), or reset by us because its
 *     response was invalid: that is the origin's answer, and sending it
 *     again would only repeat it.  502, never retried.
 * A stream that closes after its response head cuts the response: the
 * client sees a reset (h2: c's own code when c reset it) or a closed
 * connection, never an end that looks whole.  But a gRPC response whose
 * tunnel went away ends with trailers grpc-status 14 (UNAVAILABLE), what a
 * gRPC client retries on, where a reset would read as INTERNAL.
 * A retry goes to another pool member at once when one can take it, else
 * waits for a reconnecting c: 250 ms, 500 ms, 1 s, then what is left of
 * TT_PX_RETRY_WAIT_MS (3 s in all for one request, whatever happens), at
 * most TT_PX_RETRIES attempts, then 502.  No retry while p drains.
 *
 * When every member of a pool is at c's stream limit, a request waits in the
 * pool's queue (TT_PX_QUEUE_MAX at most, TT_PX_QUEUE_WAIT_MS each) and opens
 * when a stream of the pool closes; past either bound it gets 503 "busy"
 * with Retry-After.  The queue takes client connections in turn, each's own
 * requests first in first out (a tt_px_qgroup per connection), so a client
 * with one request waits behind one request of each other client, never
 * behind a flood's thousands.  A client connection's share of streams is
 * bounded by its front (HTTP/1.1: one; h2: 100 streams).
 *
 * A call (a request over a forward link, x->caller set) names its target
 * by its Host without port (and without ".DOMAIN"): a --service of p's of
 * that name, else the tunnel pool of that name (origin to origin).  The
 * tokens file's calls= column for the caller must list it (or be "*"),
 * else 403.  The origin called learns who calls from Tether-Caller.
 *
 * Flow control: stream window goes back to the tunnel only for response
 * bytes the client took; connection window goes back as soon as the front
 * holds them, within a hold budget per tunnel (TT_PX_TUNNEL_HOLD_MAX, 48 MiB), so a
 * client that stops reading stalls its own stream, not the tunnel.  The front's data op says how many it wrote at once; the rest
 * it keeps and reports with tt_px_exchange_taken() as they leave.  When the
 * tunnel stream closes, or the client goes, the connection window for every
 * byte still held is returned at once (the stream's own window dies with
 * it).  Request body bytes the tunnel cannot take yet wait in the exchange
 * (bounded by `body_max`), and the exchange waits on its tunnel's one
 * waiting list until a WINDOW_UPDATE or output room wakes it.
 */
#ifndef TT_PX_EXCHANGE_H
#define TT_PX_EXCHANGE_H

#include "codec/buf.h"
#include "codec/h2.h"
#include "proto/arena.h"
#include "proto/list.h"
#include "proto/loop.h"
#include "proxy/config.h"
#include "proxy/queue.h"
#include "proxy/route.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TT_PX_RETRIES 4             /* extra attempts to open a lost or refused request */
#define TT_PX_RETRY_WAIT_MS 3000    /* what one request may wait in all for a c to come back */
#define TT_PX_QUEUE_MAX 4096        /* requests waiting for a stream, per name */
#define TT_PX_QUEUE_WAIT_MS 5000    /* ... each at most this long, then 503 "busy" */
#define TT_PX_REPLAY_MAX (64 * 1024) /* request body kept to send again after a refusal */
#define TT_PX_MAX_INTERIM 8         /* 1xx heads passed to a client per request; more are dropped */
#define TT_PX_LOG_PATH_MAX 512      /* target bytes kept for the access line */

struct tt_px_registry;
struct tt_px_tunnel;
struct tt_px_exchange;

/* What a front implements so that the exchange can answer its client.  Every
 * op may be called from inside a tunnel callback or from inside a call the
 * front made into the exchange; none may free the exchange (fronts free
 * their records from deferred work). */
struct tt_px_front_ops {
    /* An interim (1xx) head, already limited by the exchange (never after
     * the final head, never a second 100, at most TT_PX_MAX_INTERIM). */
    void (*interim)(struct tt_px_exchange *x, const struct tt_h2_headers *h);
    /* The final head, from the origin or a local answer.  h->end_stream:
     * no body or trailers follow. */
    void (*head)(struct tt_px_exchange *x, const struct tt_h2_headers *h);
    /* Response body bytes (len may be 0 with end).  Returns how many reached
     * the client now; the front keeps the rest and reports each as it leaves
     * with tt_px_exchange_taken().  Returns -1 when the client is gone (the
     * front then ends the exchange). */
    ssize_t (*data)(struct tt_px_exchange *x, const uint8_t *p, size_t len, int end);
    /* Trailers end the response (fields only, no pseudo-headers). */
    void (*trailers)(struct tt_px_exchange *x, const struct tt_header *h, size_t n);
    /* The response cannot complete: the client must see it cut (HTTP/1.1:
     * the connection closed before the body's end; h2: RST_STREAM), never a
     * short body that looks whole.  The tunnel side is already let go. */
    void (*abort)(struct tt_px_exchange *x, const char *why);
    /* `n` request body bytes left the exchange (to the tunnel, or dropped
     * because nobody wants them): an h2 front gives its client that much
     * window back.  `drained`: nothing of the body waits in the exchange
     * any more (an HTTP/1.1 front reads on). */
    void (*req_taken)(struct tt_px_exchange *x, size_t n, int drained);
};

/* A request as a front hands it over: borrowed, valid during the call. */
struct tt_px_request {
    const char *authority; /* Host, :authority or the absolute-form's; NULL if none */
    size_t authority_len;
    const char *path; /* origin-form path and query, or "*" */
    size_t path_len;
    const struct tt_px_field *f; /* the regular fields as received */
    size_t n;
    int end; /* the request has no body (or it has all arrived already) */
    const char *name; /* go to this name, whatever the authority (--tcp-listen); NULL: route */
    const char *protocol; /* an extended CONNECT's :protocol ("websocket"); NULL: none */
};

enum { TT_PX_FRONT_HTTP1, TT_PX_FRONT_H2, TT_PX_FRONT_TCP, TT_PX_FRONT_N };

#define TT_PX_DUR_BUCKETS 12
extern const uint32_t TT_PX_DUR_BOUNDS_MS[TT_PX_DUR_BUCKETS - 1];

/* Per-server counters of what exchanges did (the admin listener's /metrics). */
struct tt_px_counters {
    uint64_t requests;
    /* By front (TT_PX_FRONT_*) and class: [1] 1xx ... [5] 5xx; [0] no status
     * (the client left first). */
    uint64_t by_class[TT_PX_FRONT_N][6];
    uint64_t local;       /* answered by p itself */
    uint64_t retries;
    uint64_t cancels;     /* RST_STREAM(CANCEL) sent to c for a client that left */
    uint64_t bytes_in, bytes_out; /* request and response body bytes */
    uint64_t no_origin;   /* answered 503: no tunnel for the name */
    uint64_t busy;        /* answered 503: every stream of the name in use past the queue's wait */
    uint64_t queued;      /* requests that waited in a pool's queue ... */
    uint64_t queue_wait_ms; /* ... and how long in all */
    /* Requests (not byte streams) by duration: le TT_PX_DUR_BOUNDS_MS[i], the last +Inf. */
    uint64_t dur[TT_PX_DUR_BUCKETS];
    uint64_t dur_sum_ms;
};

/* What the exchanges of one p share; the server embeds it. */
struct tt_px_exchange_env {
    struct tt_loop *loop;
    struct tt_px_registry *reg;
    struct tt_px_route_cfg route; /* domain, path prefix, default name (single_name unused) */
    struct tt_px_registry *services; /* p's --service names (calls only); NULL: none */
    const char *authority;        /* sent as every request's :authority (c --local-to); NULL: the client's */
    const char *down_why;         /* the 503 body when the pool is empty (c's link); NULL: by name */
    int draining;                 /* p is shutting down: no new requests, no retries */
    int keep_underscores;         /* --underscore-fields keep */
    const char *affinity_header;  /* --affinity-header; NULL: none */
    struct tt_px_counters counters;
};

/* What became of a response (the access line's end=). */
enum tt_px_end {
    TT_PX_END_OK,           /* delivered whole (p's own answers too) */
    TT_PX_END_CLIENT_GONE,  /* the client left before the end */
    TT_PX_END_CLIENT_STALLED, /* p cut it: the client took none of it for --client-idle */
    TT_PX_END_ORIGIN_RESET, /* c reset the stream mid-response (end_code) */
    TT_PX_END_TUNNEL_LOST,  /* the tunnel closed mid-response */
    TT_PX_END_FAILED,       /* p could not deliver it (an invalid head, memory) */
    TT_PX_END_STREAM_IDLE,  /* a byte stream p cut: no byte either way for --stream-idle */
};

struct tt_px_exchange {
    struct tt_px_exchange_env *env;
    const struct tt_px_front_ops *ops;
    const char *peer;  /* the client's "ip:port" (the front's, outlives us) */
    const char *ip;    /* its address alone */
    const char *proto; /* access line tag: NULL for HTTP/1.x, "h2" */
    const char *upgrade; /* a byte stream of this protocol ("websocket"), set by start; else NULL */
    uint8_t byte_stream; /* bytes both ways (CONNECT, WebSocket): the log counts req_bytes */
    const struct tt_px_token *caller; /* over a forward link: the calling origin; else NULL */
    uint8_t tls;       /* came over the HTTPS front */
    uint8_t interim_ok; /* 1xx may go to this client (not HTTP/1.0, RFC 9110 §15.2) */

    /* The tunnel half: bound to stream `sid` of `tun`, or tun == NULL. */
    struct tt_px_tunnel *tun;
    uint32_t sid;
    struct tt_link wait; /* on tun->waiting: request body waits for window or room */
    struct tt_link qlink; /* on qgroup->waiting: waiting for a stream */
    struct tt_px_pool *qpool;
    uint64_t queued_at;  /* when it joined qpool's queue */
    struct tt_px_qgroup *group;  /* its connection's group (the front's), or &own */
    struct tt_px_qgroup *qgroup; /* the group it waits in */
    struct tt_px_qgroup own;     /* a connection without a group of its own, or a second pool */
    struct tt_timer retry;

    /* The request, in the arena. */
    struct tt_arena arena;
    const char *method; /* NULL until known ("-" in the log) */
    const char *log_path;
    char name[TT_PX_NAME_MAX + 1]; /* the routed name; "" before routing */
    struct tt_px_registry *reg;    /* where `name`'s pool is: env's, or its services */
    struct tt_header *hdrs; /* the mapped head, kept until the response head for a retry */
    size_t hdrs_n;
    struct tt_header *req_trl; /* request trailers waiting behind body bytes */
    size_t req_trl_n;

    /* Request body. */
    tt_buf body;           /* bytes the tunnel has not taken yet */
    tt_buf replay;         /* bytes sent before the response head, kept for a refusal */
    uint64_t body_sent;    /* bytes handed to the tunnel */
    size_t replayed;       /* the first bytes of `body` are a replay: already reported taken */
    uint64_t avoid;        /* serial of the tunnel that lost this request */
    uint64_t affinity;     /* key of its --affinity-header value; 0: none */
    size_t unconsumed;     /* response bytes the front holds, stream window not yet returned */
    size_t early;          /* ... of which the connection window went back (tun->held) */
    size_t grown;          /* stream window granted beyond the start (tun->grown) */

    uint64_t start_ms;
    uint64_t bytes;        /* response body bytes passed to the front */
    int status;
    uint8_t active;        /* between begin and end */
    uint8_t idempotent;
    uint8_t head_method;   /* HEAD: no body in our own answers */
    uint8_t body_done;     /* the client's request ended */
    uint8_t end_sent;      /* END_STREAM (or trailers) went to the tunnel */
    uint8_t replay_lost;   /* more body went out than `replay` kept */
    uint8_t expect;        /* Expect: 100-continue, and we may say 100 */
    uint8_t sent_continue;
    uint8_t te_trailers;   /* the client said TE: trailers */
    uint8_t expect_other;  /* an expectation other than 100-continue */
    uint8_t interim;       /* 1xx heads passed on */
    uint8_t attempts;
    uint8_t waits;         /* retry waits so far (each doubles) */
    uint32_t waited_ms;    /* their sum, at most TT_PX_RETRY_WAIT_MS */
    uint8_t resp_head;     /* a final head went to the front */
    uint8_t resp_done;     /* the whole response went to the front */
    uint8_t local;         /* answered by p itself */
    uint8_t close_after;   /* refused for its head: an HTTP/1.1 connection closes after */
    uint8_t retrying;      /* unbound, waiting for the retry timer (or in a queue) */
    uint8_t queue_expired; /* waited TT_PX_QUEUE_WAIT_MS in a queue: answered busy */
    uint8_t logged;
    uint8_t grpc;          /* the response is gRPC (content-type application/grpc...) */
    uint8_t req_grpc;      /* ... the request is: p's own answers are gRPC ones */
    uint8_t end_how;       /* enum tt_px_end: what became of the response */
    int16_t grpc_status;   /* from the trailers or a trailers-only head; -1: none */
    uint32_t end_code;     /* TT_PX_END_ORIGIN_RESET: c's RST_STREAM code */
    struct tt_px_exchange *wake_next; /* a wake-up batch (tt_px_exchange_wake) */
};

/* Sets up an exchange inside a front's record (once; it is then reused by
 * begin/end for each request).  `body_max` bounds the request body bytes it
 * holds while the tunnel has no window. */
void tt_px_exchange_init(struct tt_px_exchange *x, struct tt_px_exchange_env *env,
                         const struct tt_px_front_ops *ops, const char *peer, const char *ip,
                         size_t body_max);
/* The front's group for the client connection's requests (h2: many at
 * once) in a pool's queue; NULL: the exchange's own.  It must outlive every
 * request of the connection. */
void tt_px_exchange_set_group(struct tt_px_exchange *x, struct tt_px_qgroup *g);
/* Ends a request that never reached a tunnel, without an access line: it
 * moved to another front (an HTTP/1.1 upgrade to front_pipe.c), which
 * counts it as its own request. */
void tt_px_exchange_forget(struct tt_px_exchange *x);
/* Frees what the exchange holds; it must not be bound (end it first). */
void tt_px_exchange_free(struct tt_px_exchange *x);

/* A new request starts (its clock too). */
void tt_px_exchange_begin(struct tt_px_exchange *x);
/* The method and target as received, for the access line and the method's
 * rules.  Returns 0, or -1 when out of memory. */
int tt_px_exchange_set_line(struct tt_px_exchange *x, const char *method, size_t method_len,
                            const char *target, size_t target_len);
/* Routes, maps and opens the request on a tunnel of its pool.  Every failure
 * is answered here (503 no route or no origin, 431, 417, 400): the caller
 * just goes on.  Returns 0 (opened, or waiting for a retry) or -1 when it
 * was answered locally. */
int tt_px_exchange_start(struct tt_px_exchange *x, const struct tt_px_request *rq);
/* Answers the request ourselves (a text/plain body; retry_after >= 0 adds
 * Retry-After).  A stream bound to a tunnel is cancelled.  Once a response
 * head has gone out this fails the exchange instead. */
void tt_px_exchange_local(struct tt_px_exchange *x, int status, const char *body,
                          int retry_after);
/* The front cannot deliver the response (out of memory, its own protocol
 * failed): cancels the tunnel stream and aborts through the front. */
void tt_px_exchange_fail(struct tt_px_exchange *x, const char *why);
/* tt_px_exchange_local with one more response field (426's
 * Sec-WebSocket-Version, RFC 6455 §4.2.2). */
void tt_px_exchange_local_with(struct tt_px_exchange *x, int status, const char *body,
                               const char *name, const char *value);

/* Request body bytes from the client.  They go to the tunnel when it has
 * window, else wait in the exchange.  Returns 0, or -1 when more arrived
 * than `body_max` allows (the front fails the request). */
int tt_px_exchange_req_body(struct tt_px_exchange *x, const uint8_t *p, size_t len);
/* The request ended, with trailers (h2) or without (n == 0). */
void tt_px_exchange_req_end(struct tt_px_exchange *x, const struct tt_header *trl, size_t n);
/* Request body bytes waiting in the exchange. */
static inline size_t tt_px_exchange_req_buffered(const struct tt_px_exchange *x)
{
    return tt_buf_len(&x->body);
}

/* `n` of the response bytes the front kept have reached the client: their
 * window goes back to the tunnel.  SIZE_MAX: all of them. */
void tt_px_exchange_taken(struct tt_px_exchange *x, size_t n);
/* The front is done with the request: the response was written, or the
 * client left (then the status is 499, nginx's "client closed request",
 * when no head went out).  Writes the access line, cancels a stream still
 * open (RST_STREAM(CANCEL), RFC 9113 §8.7), returns window, stops a retry. */
void tt_px_exchange_end(struct tt_px_exchange *x, int client_gone);


/* The tunnel's stream callbacks (tunnel.c): `x` is the stream's user data. */
void tt_px_exchange_on_headers(struct tt_px_tunnel *t, struct tt_px_exchange *x,
                               const struct tt_h2_headers *h);
void tt_px_exchange_on_data(struct tt_px_tunnel *t, uint32_t sid, struct tt_px_exchange *x,
                            const uint8_t *data, size_t len, int end_stream);
void tt_px_exchange_on_stream_close(struct tt_px_tunnel *t, struct tt_px_exchange *x,
                                    uint32_t code, unsigned flags);
/* A stream of `t` closed: requests queued for its pool may open now. */
void tt_px_exchange_slot_free(struct tt_px_tunnel *t);
/* The last member of `pool` is going: its queued requests are answered. */
void tt_px_exchange_pool_gone(struct tt_px_pool *pool);
/* Window or output room on the tunnel: `x` is the one stream that got window,
 * or NULL for every exchange waiting on the tunnel. */
void tt_px_exchange_wake(struct tt_px_tunnel *t, struct tt_px_exchange *x);

/* --- What p says itself (answer.c) ---------------------------------------- */

/* The head of one of p's own answers, and what it points into. */
struct tt_px_local_head {
    struct tt_h2_headers hh;
    struct tt_header h[4];
    char st[8], cl[24], ra[16], gm[256];
    size_t body_len; /* the text body's (0 for gRPC: its message is in the head) */
};
/* Composes it: the text and its length, retry-after when >= 0 or `extra`
 * (NULL: none) in its place; for a gRPC request a trailers-only answer
 * (x->grpc, x->grpc_status and x->status set to match). */
void tt_px_local_head(struct tt_px_exchange *x, int status, const char *body, int retry_after,
                      const struct tt_header *extra, struct tt_px_local_head *o);
/* Counts a finished request's duration in the /metrics histogram. */
void tt_px_count_duration(struct tt_px_counters *k, uint64_t ms);
/* Writes the access line of a finished exchange. */
void tt_px_access_line(const struct tt_px_exchange *x, uint64_t now);

#endif
