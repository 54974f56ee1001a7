/*
 * HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte header, the generic checks
 * every frame passes before its handler runs, payload parsers and one pack
 * function per frame type.
 *
 * The checks are table-driven: each known type has a definition (which
 * stream ids it may carry, its fixed or minimum length, the flags it knows)
 * and tt_frame_check() applies it, so the connection's handlers only deal
 * with what depends on state.  A violation is reported as a tt_frame_err: a
 * connection error or a stream error, the RFC's code, and a static string
 * that becomes the GOAWAY debug data.
 *
 * Pack functions append whole frames to a tt_buf and return 0 or
 * TT_ERR_NOMEM (the buffer's cap or memory said no; nothing is appended).
 */
#ifndef TT_FRAME_H
#define TT_FRAME_H

#include "buf.h"
#include "err.h"
#include "h2_types.h"

#include <stddef.h>
#include <stdint.h>

#define TT_FRAME_HEADER_LEN 9

/* Flags (RFC 9113 §6). */
#define TT_FLAG_END_STREAM 0x01
#define TT_FLAG_ACK 0x01
#define TT_FLAG_END_HEADERS 0x04
#define TT_FLAG_PADDED 0x08
#define TT_FLAG_PRIORITY 0x20

/* Setting identifiers (RFC 9113 §6.5.2, RFC 8441, RFC 9218). */
enum tt_setting_id {
    TT_SETTINGS_HEADER_TABLE_SIZE = 0x1,
    TT_SETTINGS_ENABLE_PUSH = 0x2,
    TT_SETTINGS_MAX_CONCURRENT_STREAMS = 0x3,
    TT_SETTINGS_INITIAL_WINDOW_SIZE = 0x4,
    TT_SETTINGS_MAX_FRAME_SIZE = 0x5,
    TT_SETTINGS_MAX_HEADER_LIST_SIZE = 0x6,
    TT_SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8,
    TT_SETTINGS_NO_RFC7540_PRIORITIES = 0x9,
};

struct tt_frame_hdr {
    uint32_t length; /* 24 bits */
    uint8_t type;
    uint8_t flags;
    uint32_t sid; /* reserved bit cleared */
};

struct tt_setting {
    uint16_t id;
    uint32_t value;
};

struct tt_frame_priority {
    uint32_t dependency;
    uint8_t weight; /* wire value: weight - 1 */
    uint8_t exclusive;
};

/* A frame error: `conn` 1 for a connection error, 0 for a stream error on
 * the frame's stream; `code` an RFC 9113 §7 code; `desc` static. */
struct tt_frame_err {
    int conn;
    uint32_t code;
    const char *desc;
};

/* One decoded frame.  Views point into the payload given to the parser. */
struct tt_frame {
    struct tt_frame_hdr hdr;
    tt_iov data;         /* DATA payload, header block fragment, GOAWAY debug */
    uint32_t pad_len;    /* value of the Pad Length field (0 when not padded) */
    int has_priority;    /* HEADERS with PRIORITY flag, or PRIORITY frame */
    struct tt_frame_priority priority;
    uint32_t error_code; /* RST_STREAM, GOAWAY */
    uint32_t last_sid;   /* GOAWAY */
    uint32_t promised_sid; /* PUSH_PROMISE */
    uint64_t opaque;     /* PING */
    uint32_t increment;  /* WINDOW_UPDATE */
    const uint8_t *settings; /* SETTINGS: nsettings entries of 6 bytes */
    uint32_t nsettings;
};

static inline uint32_t tt_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t tt_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void tt_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Reads a 9-byte frame header. */
void tt_frame_parse_header(const uint8_t *p, struct tt_frame_hdr *h);
/* Writes a 9-byte frame header. */
void tt_frame_pack_header(uint8_t *p, uint32_t length, uint8_t type, uint8_t flags, uint32_t sid);

/* The generic checks of RFC 9113 §4.2 and §6 that need only the header:
 * length against `max_frame_size` (what we advertised) and the type's fixed
 * or minimum length, stream id zero or not, the ACK rules of SETTINGS.
 * Unknown types pass (they are ignored, §4.1).  Returns 0, or -1 with `err`
 * set. */
int tt_frame_check(const struct tt_frame_hdr *h, uint32_t max_frame_size, struct tt_frame_err *err);

/* The bytes at the start of a payload that carry fixed fields before the
 * variable part (Pad Length, priority, promised id...): what a streaming
 * reader must collect before it can find the variable part.  Only valid
 * after tt_frame_check passed. */
uint32_t tt_frame_prefix_len(const struct tt_frame_hdr *h);

/* Parses a complete payload of `h->length` bytes whose header passed
 * tt_frame_check.  Fills `f`.  Returns 0, or -1 with `err` set (padding
 * longer than the payload; a setting value out of range is checked by
 * tt_frame_check_setting, not here). */
int tt_frame_parse_payload(const struct tt_frame_hdr *h, const uint8_t *payload, struct tt_frame *f,
                           struct tt_frame_err *err);

/* Decodes one whole frame from `in`: header, generic check, payload.
 * Returns the bytes it spans (9 + length), 0 when `in` holds less than a
 * whole frame, or -1 with `err` set. */
long tt_frame_decode(const uint8_t *in, size_t len, uint32_t max_frame_size, struct tt_frame *f,
                     struct tt_frame_err *err);

/* Reads setting `i` of a SETTINGS payload. */
void tt_frame_setting(const uint8_t *settings, uint32_t i, struct tt_setting *s);
/* RFC 9113 §6.5.2 value ranges; `is_client` tells whether we are the
 * receiver in the client role (ENABLE_PUSH=1 is then an error).  Unknown ids
 * pass.  Returns 0, or -1 with `err` set (always a connection error). */
int tt_frame_check_setting(const struct tt_setting *s, int is_client, struct tt_frame_err *err);

/* Pack functions: append one frame to `out`.  Each returns 0 or
 * TT_ERR_NOMEM (TT_ERR_INVALID_ARG for a payload past 2^24-1).  `pad_len`
 * is the whole padding overhead: 0 not padded, else the Pad Length byte
 * plus pad_len - 1 zero bytes (at most 256). */
int tt_frame_pack_data(tt_buf *out, uint32_t sid, const void *data, size_t len, int end_stream,
                       uint32_t pad_len) TT_WUR;
/* One HEADERS frame carrying `frag`; END_HEADERS is set when `end_headers`. */
int tt_frame_pack_headers(tt_buf *out, uint32_t sid, const void *frag, size_t len, int end_stream,
                          int end_headers, const struct tt_frame_priority *prio,
                          uint32_t pad_len) TT_WUR;
int tt_frame_pack_continuation(tt_buf *out, uint32_t sid, const void *frag, size_t len,
                               int end_headers) TT_WUR;
/* A whole header block as HEADERS + CONTINUATION frames of at most
 * `max_frame_size` payload bytes each. */
int tt_frame_pack_header_block(tt_buf *out, uint32_t sid, const void *block, size_t len,
                               int end_stream, uint32_t max_frame_size) TT_WUR;
int tt_frame_pack_priority(tt_buf *out, uint32_t sid, const struct tt_frame_priority *prio) TT_WUR;
int tt_frame_pack_rst(tt_buf *out, uint32_t sid, uint32_t code) TT_WUR;
int tt_frame_pack_settings(tt_buf *out, const struct tt_setting *s, size_t n) TT_WUR;
int tt_frame_pack_settings_ack(tt_buf *out) TT_WUR;
int tt_frame_pack_push_promise(tt_buf *out, uint32_t sid, uint32_t promised, const void *frag,
                               size_t len, int end_headers) TT_WUR;
int tt_frame_pack_ping(tt_buf *out, int ack, uint64_t opaque) TT_WUR;
int tt_frame_pack_goaway(tt_buf *out, uint32_t last_sid, uint32_t code, const void *debug,
                         size_t debug_len) TT_WUR;
int tt_frame_pack_window_update(tt_buf *out, uint32_t sid, uint32_t increment) TT_WUR;

#endif
