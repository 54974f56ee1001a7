/*
 * Library error codes (negative) and HTTP/2 wire error codes (RFC 9113 §7).
 *
 * Every function of the codec that can fail returns 0 (or a count) on
 * success and one of TT_ERR_* on failure.  Codes below TT_ERR_FATAL mean the
 * connection is unusable and must be closed once its pending output (a
 * GOAWAY) has been written.
 */
#ifndef TT_ERR_H
#define TT_ERR_H

#define TT_ERR_MAP(X)                                                          \
    X(INVALID_ARG, -1, "invalid argument")                                     \
    X(WOULD_BLOCK, -2, "no window or output room")                             \
    X(STREAM_CLOSED, -3, "stream is closed or unknown")                        \
    X(STREAM_ID_EXHAUSTED, -4, "no stream ids left on this connection")        \
    X(TOO_MANY_STREAMS, -5, "peer's SETTINGS_MAX_CONCURRENT_STREAMS reached")  \
    X(GOING_AWAY, -6, "connection is going away: no new streams")              \
    X(HEADER_TOO_LARGE, -7, "header list larger than allowed")                 \
    X(HPACK, -8, "HPACK compression error")                                    \
    X(BAD_HEADER, -9, "header field not allowed in HTTP/2")                    \
    X(NEED_MORE, -10, "need more input")                                       \
    X(NO_CONNECT_PROTOCOL, -11, "peer did not enable extended CONNECT")        \
    X(NOMEM, -901, "out of memory")                                            \
    X(CONN, -902, "connection error: GOAWAY queued")                           \
    X(CALLBACK, -903, "callback failed")

enum tt_err {
    TT_OK = 0,
#define TT_ERR_ENUM(name, val, msg) TT_ERR_##name = (val),
    TT_ERR_MAP(TT_ERR_ENUM)
#undef TT_ERR_ENUM
};

#define TT_ERR_FATAL (-900)

/* Returns a static description of a TT_ERR_* code. */
const char *tt_strerror(int err);

/* RFC 9113 §7 error codes, as they appear on the wire. */
enum tt_h2_error_code {
    TT_H2_NO_ERROR = 0x0,
    TT_H2_PROTOCOL_ERROR = 0x1,
    TT_H2_INTERNAL_ERROR = 0x2,
    TT_H2_FLOW_CONTROL_ERROR = 0x3,
    TT_H2_SETTINGS_TIMEOUT = 0x4,
    TT_H2_STREAM_CLOSED = 0x5,
    TT_H2_FRAME_SIZE_ERROR = 0x6,
    TT_H2_REFUSED_STREAM = 0x7,
    TT_H2_CANCEL = 0x8,
    TT_H2_COMPRESSION_ERROR = 0x9,
    TT_H2_CONNECT_ERROR = 0xa,
    TT_H2_ENHANCE_YOUR_CALM = 0xb,
    TT_H2_INADEQUATE_SECURITY = 0xc,
    TT_H2_HTTP_1_1_REQUIRED = 0xd,
};

/* Returns the RFC name of a wire error code ("PROTOCOL_ERROR"), or "UNKNOWN". */
const char *tt_h2_strerror(unsigned code);

#endif
