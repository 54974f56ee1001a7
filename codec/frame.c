/*
 * HTTP/2 frame header, generic checks, payload parsers and packers
 * (RFC 9113 §4, §6).
 */
#include "frame.h"

#include <string.h>

/*
 * Per-type definitions for the checks that need only the frame header.
 *
 * sid: which stream ids the type may carry.  len_min / len_max: the payload
 * length range before padding and priority fields are added (the flags that
 * add fixed fields are handled in tt_frame_check).  len_stream_err: a wrong
 * length is a stream error rather than a connection error (only PRIORITY,
 * §6.3; every other type here either alters connection state or the RFC
 * names a connection error).  flags: the flags the type defines; others are
 * ignored (§4.1) and masked off.
 */
enum { SID_ANY = 0, SID_ZERO = 1, SID_NONZERO = 2 };

struct frame_def {
    uint8_t known;
    uint8_t sid;
    uint8_t len_stream_err;
    uint8_t flags;
    uint32_t len_min, len_max;
};

#define LEN_ANY 0xffffffffu

static const struct frame_def frame_defs[] = {
    [TT_H2_DATA] = {1, SID_NONZERO, 0, TT_FLAG_END_STREAM | TT_FLAG_PADDED, 0, LEN_ANY},
    [TT_H2_HEADERS] = {1, SID_NONZERO, 0,
                       TT_FLAG_END_STREAM | TT_FLAG_END_HEADERS | TT_FLAG_PADDED | TT_FLAG_PRIORITY,
                       0, LEN_ANY},
    [TT_H2_PRIORITY] = {1, SID_NONZERO, 1, 0, 5, 5},
    [TT_H2_RST_STREAM] = {1, SID_NONZERO, 0, 0, 4, 4},
    [TT_H2_SETTINGS] = {1, SID_ZERO, 0, TT_FLAG_ACK, 0, LEN_ANY},
    [TT_H2_PUSH_PROMISE] = {1, SID_NONZERO, 0, TT_FLAG_END_HEADERS | TT_FLAG_PADDED, 4, LEN_ANY},
    [TT_H2_PING] = {1, SID_ZERO, 0, TT_FLAG_ACK, 8, 8},
    [TT_H2_GOAWAY] = {1, SID_ZERO, 0, 0, 8, LEN_ANY},
    [TT_H2_WINDOW_UPDATE] = {1, SID_ANY, 0, 0, 4, 4},
    [TT_H2_CONTINUATION] = {1, SID_NONZERO, 0, TT_FLAG_END_HEADERS, 0, LEN_ANY},
};

#define NDEFS (sizeof(frame_defs) / sizeof(frame_defs[0]))

void tt_frame_parse_header(const uint8_t *p, struct tt_frame_hdr *h)
{
    h->length = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    h->type = p[3];
    h->flags = p[4];
    h->sid = tt_get32(p + 5) & 0x7fffffffu; /* §4.1: the R bit is ignored */
}

void tt_frame_pack_header(uint8_t *p, uint32_t length, uint8_t type, uint8_t flags, uint32_t sid)
{
    p[0] = (uint8_t)(length >> 16);
    p[1] = (uint8_t)(length >> 8);
    p[2] = (uint8_t)length;
    p[3] = type;
    p[4] = flags;
    tt_put32(p + 5, sid & 0x7fffffffu);
}

static int set_err(struct tt_frame_err *e, int conn, uint32_t code, const char *desc)
{
    e->conn = conn;
    e->code = code;
    e->desc = desc;
    return -1;
}

uint32_t tt_frame_prefix_len(const struct tt_frame_hdr *h)
{
    uint32_t n = 0;
    switch (h->type) {
    case TT_H2_DATA:
        n = (h->flags & TT_FLAG_PADDED) ? 1 : 0;
        break;
    case TT_H2_HEADERS:
        n = ((h->flags & TT_FLAG_PADDED) ? 1 : 0) + ((h->flags & TT_FLAG_PRIORITY) ? 5 : 0);
        break;
    case TT_H2_PUSH_PROMISE:
        n = ((h->flags & TT_FLAG_PADDED) ? 1 : 0) + 4;
        break;
    case TT_H2_PRIORITY:
    case TT_H2_RST_STREAM:
    case TT_H2_PING:
    case TT_H2_WINDOW_UPDATE:
        n = h->length;
        break;
    case TT_H2_GOAWAY:
        n = 8;
        break;
    default:
        break;
    }
    return n;
}

int tt_frame_check(const struct tt_frame_hdr *h, uint32_t max_frame_size, struct tt_frame_err *err)
{
    /* §4.2: larger than we advertised.  A connection error in every case
     * keeps one rule (the RFC allows it for all types). */
    if (h->length > max_frame_size)
        return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE");
    if (h->type >= NDEFS || !frame_defs[h->type].known)
        return 0; /* §4.1: unknown types are ignored */
    const struct frame_def *d = &frame_defs[h->type];
    if (d->sid == SID_ZERO && h->sid != 0)
        return set_err(err, 1, TT_H2_PROTOCOL_ERROR, "frame must be on stream 0");
    if (d->sid == SID_NONZERO && h->sid == 0)
        return set_err(err, 1, TT_H2_PROTOCOL_ERROR, "frame must not be on stream 0");
    if (h->type == TT_H2_SETTINGS) {
        /* §6.5 */
        if ((h->flags & TT_FLAG_ACK) && h->length != 0)
            return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
        if (h->length % 6 != 0)
            return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
        return 0;
    }
    uint32_t need = d->len_min;
    if (h->type == TT_H2_DATA || h->type == TT_H2_HEADERS || h->type == TT_H2_PUSH_PROMISE) {
        need = tt_frame_prefix_len(h);
        if (h->length < need)
            return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "frame too short for its fields");
        return 0;
    }
    if (h->length < need || (d->len_max != LEN_ANY && h->length > d->len_max)) {
        if (d->len_stream_err)
            return set_err(err, 0, TT_H2_FRAME_SIZE_ERROR, "PRIORITY length is not 5");
        switch (h->type) {
        case TT_H2_RST_STREAM:
            return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "RST_STREAM length is not 4");
        case TT_H2_PING:
            return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "PING length is not 8");
        case TT_H2_GOAWAY:
            return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "GOAWAY shorter than 8");
        default:
            return set_err(err, 1, TT_H2_FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4");
        }
    }
    return 0;
}

static void parse_priority(const uint8_t *p, struct tt_frame_priority *pr)
{
    uint32_t v = tt_get32(p);
    pr->exclusive = (uint8_t)(v >> 31);
    pr->dependency = v & 0x7fffffffu;
    pr->weight = p[4];
}

int tt_frame_parse_payload(const struct tt_frame_hdr *h, const uint8_t *p, struct tt_frame *f,
                           struct tt_frame_err *err)
{
    memset(f, 0, sizeof(*f));
    f->hdr = *h;
    uint32_t len = h->length, off = 0;
    switch (h->type) {
    case TT_H2_DATA:
    case TT_H2_HEADERS:
    case TT_H2_PUSH_PROMISE:
        if (h->flags & TT_FLAG_PADDED)
            f->pad_len = p[off++];
        if (h->type == TT_H2_HEADERS && (h->flags & TT_FLAG_PRIORITY)) {
            f->has_priority = 1;
            parse_priority(p + off, &f->priority);
            off += 5;
        }
        if (h->type == TT_H2_PUSH_PROMISE) {
            f->promised_sid = tt_get32(p + off) & 0x7fffffffu;
            off += 4;
        }
        /* §6.1, §6.2, §6.6: padding that covers the rest (or more) of the
         * payload is a connection PROTOCOL_ERROR. */
        if (f->pad_len > len - off)
            return set_err(err, 1, TT_H2_PROTOCOL_ERROR, "padding exceeds the payload");
        f->data.base = p + off;
        f->data.len = len - off - f->pad_len;
        return 0;
    case TT_H2_CONTINUATION:
        f->data.base = p;
        f->data.len = len;
        return 0;
    case TT_H2_PRIORITY:
        f->has_priority = 1;
        parse_priority(p, &f->priority);
        return 0;
    case TT_H2_RST_STREAM:
        f->error_code = tt_get32(p);
        return 0;
    case TT_H2_SETTINGS:
        f->settings = p;
        f->nsettings = len / 6;
        return 0;
    case TT_H2_PING:
        f->opaque = (uint64_t)tt_get32(p) << 32 | tt_get32(p + 4);
        return 0;
    case TT_H2_GOAWAY:
        f->last_sid = tt_get32(p) & 0x7fffffffu;
        f->error_code = tt_get32(p + 4);
        f->data.base = p + 8;
        f->data.len = len - 8;
        return 0;
    case TT_H2_WINDOW_UPDATE:
        f->increment = tt_get32(p) & 0x7fffffffu;
        return 0;
    default:
        f->data.base = p;
        f->data.len = len;
        return 0;
    }
}

long tt_frame_decode(const uint8_t *in, size_t len, uint32_t max_frame_size, struct tt_frame *f,
                     struct tt_frame_err *err)
{
    struct tt_frame_hdr h;
    if (len < TT_FRAME_HEADER_LEN)
        return 0;
    tt_frame_parse_header(in, &h);
    if (tt_frame_check(&h, max_frame_size, err) < 0)
        return -1;
    if (len - TT_FRAME_HEADER_LEN < h.length)
        return 0;
    if (tt_frame_parse_payload(&h, in + TT_FRAME_HEADER_LEN, f, err) < 0)
        return -1;
    return (long)(TT_FRAME_HEADER_LEN + h.length);
}

void tt_frame_setting(const uint8_t *settings, uint32_t i, struct tt_setting *s)
{
    const uint8_t *p = settings + (size_t)i * 6;
    s->id = tt_get16(p);
    s->value = tt_get32(p + 2);
}

int tt_frame_check_setting(const struct tt_setting *s, int is_client, struct tt_frame_err *err)
{
    /* RFC 9113 §6.5.2 */
    switch (s->id) {
    case TT_SETTINGS_ENABLE_PUSH:
        if (s->value > 1)
            return set_err(err, 1, TT_H2_PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1");
        if (is_client && s->value == 1)
            return set_err(err, 1, TT_H2_PROTOCOL_ERROR, "server sent SETTINGS_ENABLE_PUSH=1");
        return 0;
    case TT_SETTINGS_INITIAL_WINDOW_SIZE:
        if (s->value > TT_H2_MAX_WINDOW)
            return set_err(err, 1, TT_H2_FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large");
        return 0;
    case TT_SETTINGS_MAX_FRAME_SIZE:
        if (s->value < TT_H2_MIN_FRAME_SIZE || s->value > TT_H2_MAX_FRAME_SIZE)
            return set_err(err, 1, TT_H2_PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
        return 0;
    case TT_SETTINGS_ENABLE_CONNECT_PROTOCOL: /* RFC 8441 §3 */
    case TT_SETTINGS_NO_RFC7540_PRIORITIES:   /* RFC 9218 §2.1 */
        if (s->value > 1)
            return set_err(err, 1, TT_H2_PROTOCOL_ERROR, "boolean setting not 0 or 1");
        return 0;
    default:
        return 0;
    }
}

/* Reserves a whole frame (header + payload) or fails without appending. */
static uint8_t *frame_reserve(tt_buf *out, size_t payload)
{
    return tt_buf_reserve(out, TT_FRAME_HEADER_LEN + payload);
}

int tt_frame_pack_data(tt_buf *out, uint32_t sid, const void *data, size_t len, int end_stream,
                       uint32_t pad_len)
{
    size_t plen = len + pad_len;
    if (plen > TT_H2_MAX_FRAME_SIZE || pad_len > 256)
        return TT_ERR_INVALID_ARG;
    uint8_t *p = frame_reserve(out, plen);
    if (!p)
        return TT_ERR_NOMEM;
    uint8_t flags = (end_stream ? TT_FLAG_END_STREAM : 0) | (pad_len ? TT_FLAG_PADDED : 0);
    tt_frame_pack_header(p, (uint32_t)plen, TT_H2_DATA, flags, sid);
    uint8_t *q = p + TT_FRAME_HEADER_LEN;
    if (pad_len)
        *q++ = (uint8_t)(pad_len - 1);
    if (len)
        memcpy(q, data, len);
    if (pad_len > 1)
        memset(q + len, 0, pad_len - 1);
    tt_buf_commit(out, TT_FRAME_HEADER_LEN + plen);
    return 0;
}

int tt_frame_pack_headers(tt_buf *out, uint32_t sid, const void *frag, size_t len, int end_stream,
                          int end_headers, const struct tt_frame_priority *prio, uint32_t pad_len)
{
    size_t plen = len + (prio ? 5 : 0) + (pad_len ? pad_len : 0);
    if (plen > TT_H2_MAX_FRAME_SIZE || pad_len > 256)
        return TT_ERR_INVALID_ARG;
    uint8_t *p = frame_reserve(out, plen);
    if (!p)
        return TT_ERR_NOMEM;
    uint8_t flags = (end_stream ? TT_FLAG_END_STREAM : 0) | (end_headers ? TT_FLAG_END_HEADERS : 0) |
                    (pad_len ? TT_FLAG_PADDED : 0) | (prio ? TT_FLAG_PRIORITY : 0);
    tt_frame_pack_header(p, (uint32_t)plen, TT_H2_HEADERS, flags, sid);
    uint8_t *q = p + TT_FRAME_HEADER_LEN;
    if (pad_len)
        *q++ = (uint8_t)(pad_len - 1);
    if (prio) {
        tt_put32(q, (prio->dependency & 0x7fffffffu) | (prio->exclusive ? 0x80000000u : 0));
        q[4] = prio->weight;
        q += 5;
    }
    if (len)
        memcpy(q, frag, len);
    if (pad_len > 1)
        memset(q + len, 0, pad_len - 1);
    tt_buf_commit(out, TT_FRAME_HEADER_LEN + plen);
    return 0;
}

int tt_frame_pack_continuation(tt_buf *out, uint32_t sid, const void *frag, size_t len,
                               int end_headers)
{
    if (len > TT_H2_MAX_FRAME_SIZE)
        return TT_ERR_INVALID_ARG;
    uint8_t *p = frame_reserve(out, len);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, (uint32_t)len, TT_H2_CONTINUATION, end_headers ? TT_FLAG_END_HEADERS : 0,
                         sid);
    if (len)
        memcpy(p + TT_FRAME_HEADER_LEN, frag, len);
    tt_buf_commit(out, TT_FRAME_HEADER_LEN + len);
    return 0;
}

int tt_frame_pack_header_block(tt_buf *out, uint32_t sid, const void *block, size_t len,
                               int end_stream, uint32_t max_frame_size)
{
    const uint8_t *b = block;
    size_t nframes = len / max_frame_size + (len % max_frame_size || len == 0 ? 1 : 0);
    /* Reserve everything first so that a failure appends nothing. */
    size_t total = len + nframes * TT_FRAME_HEADER_LEN;
    uint8_t *p = tt_buf_reserve(out, total);
    if (!p)
        return TT_ERR_NOMEM;
    size_t off = 0;
    int first = 1;
    do {
        size_t n = len - off > max_frame_size ? max_frame_size : len - off;
        int last = off + n == len;
        uint8_t flags = last ? TT_FLAG_END_HEADERS : 0;
        if (first && end_stream)
            flags |= TT_FLAG_END_STREAM;
        tt_frame_pack_header(p, (uint32_t)n, first ? TT_H2_HEADERS : TT_H2_CONTINUATION, flags, sid);
        if (n)
            memcpy(p + TT_FRAME_HEADER_LEN, b + off, n);
        p += TT_FRAME_HEADER_LEN + n;
        off += n;
        first = 0;
    } while (off < len);
    tt_buf_commit(out, total);
    return 0;
}

int tt_frame_pack_priority(tt_buf *out, uint32_t sid, const struct tt_frame_priority *prio)
{
    uint8_t *p = frame_reserve(out, 5);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, 5, TT_H2_PRIORITY, 0, sid);
    tt_put32(p + 9, (prio->dependency & 0x7fffffffu) | (prio->exclusive ? 0x80000000u : 0));
    p[13] = prio->weight;
    tt_buf_commit(out, 14);
    return 0;
}

int tt_frame_pack_rst(tt_buf *out, uint32_t sid, uint32_t code)
{
    uint8_t *p = frame_reserve(out, 4);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, 4, TT_H2_RST_STREAM, 0, sid);
    tt_put32(p + 9, code);
    tt_buf_commit(out, 13);
    return 0;
}

int tt_frame_pack_settings(tt_buf *out, const struct tt_setting *s, size_t n)
{
    if (n * 6 > TT_H2_MIN_FRAME_SIZE)
        return TT_ERR_INVALID_ARG;
    uint8_t *p = frame_reserve(out, n * 6);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, (uint32_t)(n * 6), TT_H2_SETTINGS, 0, 0);
    uint8_t *q = p + TT_FRAME_HEADER_LEN;
    for (size_t i = 0; i < n; i++, q += 6) {
        q[0] = (uint8_t)(s[i].id >> 8);
        q[1] = (uint8_t)s[i].id;
        tt_put32(q + 2, s[i].value);
    }
    tt_buf_commit(out, TT_FRAME_HEADER_LEN + n * 6);
    return 0;
}

int tt_frame_pack_settings_ack(tt_buf *out)
{
    uint8_t *p = frame_reserve(out, 0);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, 0, TT_H2_SETTINGS, TT_FLAG_ACK, 0);
    tt_buf_commit(out, TT_FRAME_HEADER_LEN);
    return 0;
}

int tt_frame_pack_push_promise(tt_buf *out, uint32_t sid, uint32_t promised, const void *frag,
                               size_t len, int end_headers)
{
    if (len + 4 > TT_H2_MAX_FRAME_SIZE)
        return TT_ERR_INVALID_ARG;
    uint8_t *p = frame_reserve(out, len + 4);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, (uint32_t)(len + 4), TT_H2_PUSH_PROMISE,
                         end_headers ? TT_FLAG_END_HEADERS : 0, sid);
    tt_put32(p + 9, promised & 0x7fffffffu);
    if (len)
        memcpy(p + 13, frag, len);
    tt_buf_commit(out, 13 + len);
    return 0;
}

int tt_frame_pack_ping(tt_buf *out, int ack, uint64_t opaque)
{
    uint8_t *p = frame_reserve(out, 8);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, 8, TT_H2_PING, ack ? TT_FLAG_ACK : 0, 0);
    tt_put32(p + 9, (uint32_t)(opaque >> 32));
    tt_put32(p + 13, (uint32_t)opaque);
    tt_buf_commit(out, 17);
    return 0;
}

int tt_frame_pack_goaway(tt_buf *out, uint32_t last_sid, uint32_t code, const void *debug,
                         size_t debug_len)
{
    if (debug_len > TT_H2_MIN_FRAME_SIZE - 8)
        debug_len = TT_H2_MIN_FRAME_SIZE - 8;
    uint8_t *p = frame_reserve(out, 8 + debug_len);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, (uint32_t)(8 + debug_len), TT_H2_GOAWAY, 0, 0);
    tt_put32(p + 9, last_sid & 0x7fffffffu);
    tt_put32(p + 13, code);
    if (debug_len)
        memcpy(p + 17, debug, debug_len);
    tt_buf_commit(out, 17 + debug_len);
    return 0;
}

int tt_frame_pack_window_update(tt_buf *out, uint32_t sid, uint32_t increment)
{
    uint8_t *p = frame_reserve(out, 4);
    if (!p)
        return TT_ERR_NOMEM;
    tt_frame_pack_header(p, 4, TT_H2_WINDOW_UPDATE, 0, sid);
    tt_put32(p + 9, increment & 0x7fffffffu);
    tt_buf_commit(out, 13);
    return 0;
}
