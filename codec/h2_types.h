/*
 * HTTP/2 wire constants (RFC 9113) that both the frame layer and the
 * connection need: frame type codes and the window and frame size limits.
 *
 * They live here, below both, so that codec/frame.h does not have to include
 * codec/h2.h (which includes the connection API and HPACK) while codec/h2.c
 * includes codec/frame.h: the includes go one way.  codec/h2.h includes this
 * header, so every name stays where users of the connection API find it.
 */
#ifndef TT_H2_TYPES_H
#define TT_H2_TYPES_H

/* Frame types (RFC 9113 §6). */
enum tt_h2_frame_type {
    TT_H2_DATA = 0x0,
    TT_H2_HEADERS = 0x1,
    TT_H2_PRIORITY = 0x2,
    TT_H2_RST_STREAM = 0x3,
    TT_H2_SETTINGS = 0x4,
    TT_H2_PUSH_PROMISE = 0x5,
    TT_H2_PING = 0x6,
    TT_H2_GOAWAY = 0x7,
    TT_H2_WINDOW_UPDATE = 0x8,
    TT_H2_CONTINUATION = 0x9,
};

/* Flow-control window bounds (RFC 9113 §6.9.1, §6.9.2) and the range of
 * SETTINGS_MAX_FRAME_SIZE (§4.2, §6.5.2). */
#define TT_H2_MAX_WINDOW 0x7fffffff
#define TT_H2_DEFAULT_WINDOW 65535
#define TT_H2_MIN_FRAME_SIZE 16384
#define TT_H2_MAX_FRAME_SIZE 16777215

#endif
