/*
 * The HTTP/2 connection (RFC 9113), sans-IO, one type for both roles.
 *
 * The driver feeds received bytes to tt_h2_recv() at any split; the
 * connection calls back with stream events; bytes to send accumulate in an
 * output buffer the driver drains with tt_h2_pending_output() /
 * tt_h2_output_consumed().  No sockets, TLS, clocks or threads in here: the
 * driver owns time (keepalive PING, SETTINGS ACK timeout) and asks the
 * connection what it is waiting for.
 *
 * Flow control is explicit.  Received DATA shrinks the receive windows; the
 * window is given back (WINDOW_UPDATE) only when the user calls
 * tt_h2_consume() for bytes it has really passed on.  A proxy thus has
 * backpressure end to end.
 *
 * Memory per connection: the struct itself, the output buffer (capped by
 * config.max_output plus one frame), one header-block buffer (capped by
 * config.max_header_block), the HPACK tables (header_table_size each way plus
 * a ring of entries), the decoded-header scratch (max_header_list_size), and
 * one stream record per open stream plus closed-stream tombstones, both
 * bounded by max_concurrent_streams.  tt_h2_memory_bound() states the sum.
 */
#ifndef TT_H2_H
#define TT_H2_H

#include "buf.h"
#include "err.h"
#include "h2_types.h"
#include "hpack.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum tt_h2_role {
    TT_H2_CLIENT = 0,
    TT_H2_SERVER = 1,
};

/* The settings and limits of one connection.  tt_h2_config_default() fills
 * proxy-sized values; the driver may change any before tt_h2_conn_init(). */
struct tt_h2_config {
    /* What we advertise in our SETTINGS (RFC 9113 §6.5.2). */
    uint32_t header_table_size;      /* default 4096 */
    uint32_t max_concurrent_streams; /* default 256 */
    uint32_t initial_window_size;    /* default 1 MiB: per-stream receive window */
    uint32_t max_frame_size;         /* default 16384; we accept up to this */
    uint32_t max_header_list_size;   /* default 64 KiB */
    /* Receive window for the whole connection (raised by a WINDOW_UPDATE on
     * stream 0 right after the preface).  Default 16 MiB. */
    uint32_t connection_window;
    /* Send side. */
    uint32_t encoder_table_size; /* most HPACK table we keep for the peer, 4096 */
    size_t max_output;           /* tt_h2_data_room() is 0 past this; 1 MiB */
    /* Abuse limits: exceeding any ends the connection with GOAWAY
     * ENHANCE_YOUR_CALM (CVE-2023-44487, CVE-2024-27316 and floods). */
    uint32_t max_header_block;        /* bytes of one HEADERS+CONTINUATION block, 128 KiB */
    uint32_t max_continuations;       /* CONTINUATION frames in one block, 64 */
    uint32_t max_pending_acks;        /* SETTINGS and PING ACKs queued unsent, 64 */
    uint32_t rst_budget;              /* peer-caused resets before calm; refilled by completed streams, 200.
                                         A server does not count a reset that comes after its
                                         response head left: that is a client leaving, not a flood */
    uint32_t empty_frame_budget;      /* empty DATA without END_STREAM, zero WINDOW_UPDATE increments
                                         and other no-progress frames, 1000; refilled by useful frames */
    uint32_t max_settings_entries;    /* entries in one SETTINGS frame, 32 */
    /* Server: a request whose header list is over max_header_list_size is
     * delivered with `too_large` set and no fields, so that it can be
     * answered 431 (RFC 6585 §5, RFC 9113 §10.5.1); 0 resets it
     * (PROTOCOL_ERROR).  Default 0. */
    uint8_t deliver_too_large;
    /* Server: advertise SETTINGS_ENABLE_CONNECT_PROTOCOL=1 and accept
     * extended CONNECT (RFC 8441 §3, §4: `:protocol`, with :scheme and
     * :path).  Without it a request carrying :protocol is malformed.
     * Default 0. */
    uint8_t enable_connect_protocol;
};

void tt_h2_config_default(struct tt_h2_config *cfg);

/* What a HEADERS block means for the stream it arrives on. */
enum tt_h2_headers_kind {
    TT_H2_HDRS_REQUEST = 0,   /* server: a new request */
    TT_H2_HDRS_RESPONSE,      /* client: the final response (status >= 200) */
    TT_H2_HDRS_INFORMATIONAL, /* client: a 1xx response (100, 103); more follow */
    TT_H2_HDRS_TRAILERS,      /* either: trailers, always with end_stream */
};

/* One validated header block (RFC 9113 §8.2-8.3 checked).  Pseudo-headers are
 * split out for convenience and also remain first in `hdrs`.  All pointers
 * are valid only during the callback. */
struct tt_h2_headers {
    enum tt_h2_headers_kind kind;
    int end_stream;
    const struct tt_header *hdrs; /* all fields, pseudo-headers first */
    size_t count;
    tt_iov method, scheme, authority, path, protocol; /* requests; empty if absent
                                                         (authority: then see `host`) */
    int status;                                       /* responses; 0 otherwise */
    int64_t content_length;                           /* -1 when absent */
    int too_large; /* a request over our header list limit: no fields (deliver_too_large) */
};

/* Flags passed to on_stream_close. */
#define TT_H2_CLOSE_RST_RECEIVED 0x1 /* the peer sent RST_STREAM with `code` */
#define TT_H2_CLOSE_RST_SENT 0x2     /* we sent RST_STREAM with `code` */
#define TT_H2_CLOSE_GOAWAY 0x4       /* above the peer's GOAWAY last-stream-id: never processed, safe to retry */
#define TT_H2_CLOSE_CONN 0x8         /* the connection ended (error or close) */

/* Callbacks.  `ud` is the connection's user data, `sud` the stream's
 * (tt_h2_stream_set_user), NULL until set.  A callback returning non-zero
 * makes tt_h2_recv() fail with TT_ERR_CALLBACK (the connection is then
 * failed with INTERNAL_ERROR).  Callbacks may call the submit functions,
 * tt_h2_consume, tt_h2_fail and tt_h2_transport_closed, but never
 * tt_h2_conn_free or tt_h2_recv on the same connection. */
struct tt_h2_callbacks {
    /* A complete, validated header block arrived. */
    int (*on_headers)(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h);
    /* DATA payload (padding stripped); `len` may be 0 with end_stream.  The
     * bytes count against the receive windows until tt_h2_consume(). */
    int (*on_data)(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                   int end_stream);
    /* The stream is closed and forgotten after this returns. code is
     * TT_H2_NO_ERROR when both sides ended it normally. */
    void (*on_stream_close)(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags);
    /* The peer's send window opened for `sid` (0: the connection window). */
    void (*on_window_update)(void *ud, uint32_t sid, void *sud);
    /* The peer sent GOAWAY.  Streams above last_sid are closed with
     * TT_H2_CLOSE_GOAWAY right after this returns. */
    void (*on_goaway)(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug);
    /* The peer acknowledged our PING. */
    void (*on_ping_ack)(void *ud, uint64_t opaque);
    /* The peer's SETTINGS arrived (the first one completes the handshake). */
    void (*on_remote_settings)(void *ud);
};

struct h2_stream;
struct tt_h2_conn;

/* Allocates and initialises a connection.  A client queues its preface;
 * both queue their SETTINGS and the connection WINDOW_UPDATE.  Returns NULL
 * when out of memory. */
struct tt_h2_conn *tt_h2_conn_new(enum tt_h2_role role, const struct tt_h2_config *cfg,
                                  const struct tt_h2_callbacks *cbs, void *ud) TT_WUR;
/* Frees everything; no callbacks fire. */
void tt_h2_conn_free(struct tt_h2_conn *c);

/* Feeds received bytes.  Returns the bytes consumed (always all of them
 * unless an error), or: TT_ERR_CONN (a connection error: GOAWAY is queued,
 * write the pending output and close), TT_ERR_CALLBACK, TT_ERR_NOMEM. */
ssize_t tt_h2_recv(struct tt_h2_conn *c, const uint8_t *data, size_t len) TT_WUR;

/* Bytes waiting to be written, as one contiguous view valid until the next
 * call on the connection.  Returns its length (0: nothing to write). */
size_t tt_h2_pending_output(struct tt_h2_conn *c, tt_iov *out);
/* Marks `n` bytes of the pending output as written. */
void tt_h2_output_consumed(struct tt_h2_conn *c, size_t n);

/* 1 if the connection still wants to read / has output to write. */
int tt_h2_want_read(const struct tt_h2_conn *c);
int tt_h2_want_write(const struct tt_h2_conn *c);
/* 1 once the connection is finished: a connection error happened, or GOAWAY
 * was sent and received and no stream is open.  Close after the output is
 * written. */
int tt_h2_is_done(const struct tt_h2_conn *c);
/* The connection error that ended it, if any (code and a static reason). */
int tt_h2_error(const struct tt_h2_conn *c, uint32_t *code, const char **reason);

/* --- Streams ---------------------------------------------------------- */

/* Client: opens a stream with a request.  Returns the new stream id (> 0),
 * or TT_ERR_TOO_MANY_STREAMS, TT_ERR_GOING_AWAY, TT_ERR_STREAM_ID_EXHAUSTED,
 * TT_ERR_BAD_HEADER, TT_ERR_NOMEM.  `sud` becomes the stream's user data. */
int64_t tt_h2_submit_request(struct tt_h2_conn *c, const struct tt_header *hdrs, size_t n,
                             int end_stream, void *sud) TT_WUR;
/* Server: sends response headers (":status" first), or a 1xx.  Client or
 * server: sends trailers when called after headers with end_stream=1.
 * Returns 0, or TT_ERR_STREAM_CLOSED, TT_ERR_BAD_HEADER, TT_ERR_NOMEM. */
int tt_h2_submit_headers(struct tt_h2_conn *c, uint32_t sid, const struct tt_header *hdrs,
                         size_t n, int end_stream) TT_WUR;
/* How many DATA bytes may be sent on `sid` now: the least of the stream and
 * connection send windows and the room left in the output buffer. */
size_t tt_h2_data_room(const struct tt_h2_conn *c, uint32_t sid);
/* Queues up to `len` bytes of DATA (split at the peer's max frame size) and
 * END_STREAM when end_stream is set and all bytes were taken.  Returns the
 * bytes taken (0 when blocked: wait for on_window_update or output drain), or
 * TT_ERR_STREAM_CLOSED, TT_ERR_NOMEM. */
ssize_t tt_h2_send_data(struct tt_h2_conn *c, uint32_t sid, const void *data, size_t len,
                        int end_stream) TT_WUR;
/* Zero-copy DATA, for a producer that reads its bytes from somewhere (a
 * file) and would otherwise copy them once more into the output buffer.
 * tt_h2_data_reserve() returns where up to *room bytes of one DATA frame's
 * payload go, right in the output buffer behind room for the frame header;
 * *room is the least of `len`, tt_h2_data_room() and the peer's max frame
 * size (so peers that allow big frames get big writes).  Returns NULL with
 * *room 0 when the stream cannot send (closed, blocked: nothing to commit
 * then) or memory ran out; may return a pointer with *room 0, which only an
 * empty END_STREAM can use.  The pointer is valid until the next call on
 * the connection: fill it, then call tt_h2_data_commit() next, with no other
 * call on the connection in between.
 * tt_h2_data_commit() queues the first `n` (<= *room) reserved bytes as one
 * DATA frame, with END_STREAM when end_stream is set; n 0 without
 * end_stream queues nothing.  Returns 0, or TT_ERR_STREAM_CLOSED. */
uint8_t *tt_h2_data_reserve(struct tt_h2_conn *c, uint32_t sid, size_t len, size_t *room) TT_WUR;
int tt_h2_data_commit(struct tt_h2_conn *c, uint32_t sid, size_t n, int end_stream) TT_WUR;
/* Resets a stream: queues RST_STREAM(code), fires on_stream_close.  Returns 0
 * or TT_ERR_STREAM_CLOSED. */
int tt_h2_submit_rst(struct tt_h2_conn *c, uint32_t sid, uint32_t code);
/* Gives back receive window for `n` bytes of DATA the user has passed on
 * (also valid after the stream closed: the connection window is credited).
 * Sends WINDOW_UPDATE once enough is owed (half a window).  Call it for
 * every byte on_data delivered, including bytes dropped because the stream
 * was reset or closed: until then they hold connection window, and a
 * connection that leaks window stalls every stream. */
void tt_h2_consume(struct tt_h2_conn *c, uint32_t sid, size_t n);
/* Gives back the connection window only, for `n` bytes delivered on `sid`
 * that the user keeps (a proxy buffering for a slow reader): the stream's
 * own window waits for tt_h2_consume() of the same bytes, which then
 * credits the stream alone.  So one stalled stream holds its stream window,
 * never the connection's (on a closed stream this is tt_h2_consume). */
void tt_h2_consume_connection(struct tt_h2_conn *c, uint32_t sid, size_t n);
/* Opens the stream's receive window by `n` beyond what was consumed (a
 * stream whose reader keeps up may be given a bigger window than the
 * SETTINGS one).  No-op on a closed stream. */
void tt_h2_stream_grow(struct tt_h2_conn *c, uint32_t sid, uint32_t n);
/* Sends SETTINGS_INITIAL_WINDOW_SIZE = n: every stream's receive window,
 * open ones too, moves by the difference (a smaller one once the peer ACKs).
 * Returns 0 (sent, or n is in force already), 1 while an earlier SETTINGS
 * awaits its ACK (ask again later), TT_ERR_CONN, _INVALID_ARG or _NOMEM. */
int tt_h2_set_stream_window(struct tt_h2_conn *c, uint32_t n);
/* Gives `n` back to the budget of peer-caused resets (rst_budget, at most
 * its configured size): a driver refills it with time, so a long-lived
 * connection is judged on its rate of resets, not on their sum. */
void tt_h2_refill_resets(struct tt_h2_conn *c, uint32_t n);

void tt_h2_stream_set_user(struct tt_h2_conn *c, uint32_t sid, void *sud);
void *tt_h2_stream_get_user(const struct tt_h2_conn *c, uint32_t sid);
/* Open streams (any state but idle and closed). */
uint32_t tt_h2_open_streams(const struct tt_h2_conn *c);
/* 1 if a new stream could be opened now (client role). */
int tt_h2_can_open_stream(const struct tt_h2_conn *c);

/* --- Connection ------------------------------------------------------- */

int tt_h2_submit_ping(struct tt_h2_conn *c, uint64_t opaque);
/* Queues GOAWAY with the highest peer stream id we processed.  NO_ERROR
 * starts a graceful drain: open streams finish, new ones are refused. */
int tt_h2_submit_goaway(struct tt_h2_conn *c, uint32_t code, const char *debug);
/* Fails the connection now (e.g. the driver's SETTINGS ACK timer fired):
 * queues GOAWAY(code, reason), closes every stream with TT_H2_CLOSE_CONN. */
void tt_h2_fail(struct tt_h2_conn *c, uint32_t code, const char *reason);
/* Tells the connection the transport is gone: every open stream is closed
 * with TT_H2_CLOSE_CONN (code CANCEL), so users can answer their clients. */
void tt_h2_transport_closed(struct tt_h2_conn *c);
/* 1 while a SETTINGS we sent has not been acknowledged (the driver times
 * this: RFC 9113 §6.5.3, SETTINGS_TIMEOUT). */
int tt_h2_awaiting_settings_ack(const struct tt_h2_conn *c);
/* 1 once the peer (a server) has sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1:
 * extended CONNECT (RFC 8441) may be sent to it. */
int tt_h2_peer_allows_extended_connect(const struct tt_h2_conn *c);

/* 1 once the peer's first SETTINGS has arrived. */
int tt_h2_remote_settings_received(const struct tt_h2_conn *c);
/* The peer's GOAWAY last-stream-id, or UINT32_MAX when none arrived. */
uint32_t tt_h2_goaway_received(const struct tt_h2_conn *c);
/* Upper bound of this connection's memory in bytes under its config. */
size_t tt_h2_memory_bound(const struct tt_h2_config *cfg);

#endif
