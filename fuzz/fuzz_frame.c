/* libFuzzer: the frame layer (codec/frame.c).  Decodes frames back to back
 * from the input at several max frame sizes; every frame that decodes is
 * packed again and must decode to the same fields. */
#include "codec/frame.h"

#include <stdlib.h>
#include <string.h>

static void repack(const struct tt_frame *f)
{
    tt_buf b;
    tt_buf_init(&b, 0);
    int rc = 0;
    const struct tt_frame_hdr *h = &f->hdr;
    switch (h->type) {
    case TT_H2_DATA:
        rc = tt_frame_pack_data(&b, h->sid, f->data.base, f->data.len, h->flags & TT_FLAG_END_STREAM,
                                (h->flags & TT_FLAG_PADDED) ? f->pad_len + 1 : 0);
        break;
    case TT_H2_HEADERS:
        rc = tt_frame_pack_headers(&b, h->sid, f->data.base, f->data.len,
                                   h->flags & TT_FLAG_END_STREAM, h->flags & TT_FLAG_END_HEADERS,
                                   f->has_priority ? &f->priority : NULL,
                                   (h->flags & TT_FLAG_PADDED) ? f->pad_len + 1 : 0);
        break;
    case TT_H2_PRIORITY:
        rc = tt_frame_pack_priority(&b, h->sid, &f->priority);
        break;
    case TT_H2_RST_STREAM:
        rc = tt_frame_pack_rst(&b, h->sid, f->error_code);
        break;
    case TT_H2_SETTINGS:
        if (h->flags & TT_FLAG_ACK) {
            rc = tt_frame_pack_settings_ack(&b);
        } else {
            static struct tt_setting s[TT_H2_MIN_FRAME_SIZE / 6];
            uint32_t n = f->nsettings;
            if (n > TT_H2_MIN_FRAME_SIZE / 6)
                break;
            for (uint32_t i = 0; i < n; i++) {
                tt_frame_setting(f->settings, i, &s[i]);
                struct tt_frame_err e;
                (void)tt_frame_check_setting(&s[i], i & 1, &e);
            }
            rc = tt_frame_pack_settings(&b, s, n);
        }
        break;
    case TT_H2_PING:
        rc = tt_frame_pack_ping(&b, h->flags & TT_FLAG_ACK, f->opaque);
        break;
    case TT_H2_GOAWAY:
        rc = tt_frame_pack_goaway(&b, f->last_sid, f->error_code, f->data.base, f->data.len);
        break;
    case TT_H2_WINDOW_UPDATE:
        rc = tt_frame_pack_window_update(&b, h->sid, f->increment);
        break;
    case TT_H2_CONTINUATION:
        rc = tt_frame_pack_continuation(&b, h->sid, f->data.base, f->data.len,
                                        h->flags & TT_FLAG_END_HEADERS);
        break;
    case TT_H2_PUSH_PROMISE:
        rc = tt_frame_pack_push_promise(&b, h->sid, f->promised_sid, f->data.base, f->data.len,
                                        h->flags & TT_FLAG_END_HEADERS);
        break;
    default:
        tt_buf_free(&b);
        return;
    }
    if (rc == 0) {
        struct tt_frame g;
        struct tt_frame_err e;
        long n = tt_frame_decode(tt_buf_data(&b), tt_buf_len(&b), TT_H2_MAX_FRAME_SIZE, &g, &e);
        if (n != (long)tt_buf_len(&b) || g.hdr.type != h->type || g.hdr.sid != h->sid ||
            g.data.len != f->data.len ||
            (f->data.len && memcmp(g.data.base, f->data.base, f->data.len) != 0) ||
            g.error_code != f->error_code || g.opaque != f->opaque || g.increment != f->increment ||
            g.last_sid != f->last_sid || g.nsettings != f->nsettings)
            abort();
    }
    tt_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t maxes[] = {16384, 100, TT_H2_MAX_FRAME_SIZE};
    for (size_t m = 0; m < 3; m++) {
        size_t off = 0;
        while (off < size) {
            struct tt_frame f;
            struct tt_frame_err e;
            long n = tt_frame_decode(data + off, size - off, maxes[m], &f, &e);
            if (n < 0) {
                if (!e.desc || e.code > TT_H2_HTTP_1_1_REQUIRED)
                    abort();
                /* Skip the bad frame's header and go on. */
                off += TT_FRAME_HEADER_LEN;
                continue;
            }
            if (n == 0)
                break;
            if (f.data.len && (f.data.base < data || f.data.base + f.data.len > data + size))
                abort();
            repack(&f);
            off += (size_t)n;
        }
    }
    return 0;
}
