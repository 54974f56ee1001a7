/* Shared body of fuzz_conn_server.c and fuzz_conn_client.c: one connection
 * in the given role, brought past the preface and SETTINGS, then fed the
 * fuzz input in chunks whose sizes come from the input's first byte, with
 * callbacks that sometimes answer, send data, reset or consume, and output
 * drained on most chunks (not all: the ACK limits must hold). */
#include "codec/frame.h"
#include "codec/h2.h"

#include <stdlib.h>
#include <string.h>

struct fz {
    struct tt_h2_conn *c;
    uint32_t rng;
    int depth;
};

static uint32_t fz_rand(struct fz *f)
{
    f->rng = f->rng * 1103515245u + 12345u;
    return f->rng >> 16;
}

static int fz_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct fz *f = ud;
    (void)sud;
    if (h->count && !h->hdrs)
        abort();
    for (size_t i = 0; i < h->count; i++)
        if (h->hdrs[i].name_len == 0)
            abort();
    uint32_t r = fz_rand(f) % 8;
    if (h->kind == TT_H2_HDRS_REQUEST && r < 5) {
        struct tt_header resp[] = {{":status", "200", 7, 3, 0}, {"server", "fz", 6, 2, 0}};
        if (tt_h2_submit_headers(f->c, sid, resp, 2, r == 0) == 0 && r > 1) {
            static const uint8_t body[40000];
            ssize_t n = tt_h2_send_data(f->c, sid, body, fz_rand(f) % sizeof(body), r == 2);
            (void)n;
        }
    } else if (r == 5) {
        (void)tt_h2_submit_rst(f->c, sid, TT_H2_CANCEL);
    } else if (r == 6) {
        tt_h2_stream_set_user(f->c, sid, f);
    }
    return 0;
}

static int fz_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len, int end)
{
    struct fz *f = ud;
    (void)sud;
    (void)end;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= data[i];
    (void)sink;
    uint32_t r = fz_rand(f) % 8;
    if (r < 5)
        tt_h2_consume(f->c, sid, len);
    else if (r == 5)
        (void)tt_h2_submit_rst(f->c, sid, TT_H2_INTERNAL_ERROR);
    else if (r == 6)
        (void)tt_h2_send_data(f->c, sid, data, len, 1);
    return 0;
}

static void fz_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct fz *f = ud;
    (void)sid, (void)sud, (void)code, (void)flags;
    if (tt_h2_stream_get_user(f->c, sid))
        abort(); /* forgotten before this fires */
}

static void fz_window(void *ud, uint32_t sid, void *sud)
{
    struct fz *f = ud;
    (void)sud;
    if (sid && fz_rand(f) % 2) {
        static const uint8_t body[20000];
        size_t room = tt_h2_data_room(f->c, sid);
        (void)tt_h2_send_data(f->c, sid, body, room < sizeof(body) ? room : sizeof(body), 0);
    }
}

static void fz_goaway(void *ud, uint32_t last, uint32_t code, tt_iov dbg)
{
    (void)ud, (void)last, (void)code;
    if (dbg.len > 128)
        abort();
}

static void fz_ping(void *ud, uint64_t o) { (void)ud, (void)o; }
static void fz_settings(void *ud) { (void)ud; }

static void fz_drain(struct tt_h2_conn *c)
{
    tt_iov o;
    size_t n = tt_h2_pending_output(c, &o);
    if (n) {
        volatile uint8_t x = o.base[0] ^ o.base[n - 1];
        (void)x;
        tt_h2_output_consumed(c, n);
    }
}

static int fz_run(enum tt_h2_role role, const uint8_t *data, size_t size)
{
    static const struct tt_h2_callbacks cbs = {fz_headers, fz_data,  fz_close,   fz_window,
                                               fz_goaway,  fz_ping,  fz_settings};
    if (size < 1)
        return 0;
    struct fz f = {NULL, 0, 0};
    struct tt_h2_config cfg;
    tt_h2_config_default(&cfg);
    cfg.initial_window_size = 65535 + (data[0] & 1) * 200000;
    cfg.connection_window = 100000;
    cfg.max_concurrent_streams = 16;
    cfg.max_header_list_size = 4096;
    cfg.max_header_block = 8192;
    cfg.max_output = 64 * 1024;
    cfg.max_pending_acks = 8;
    cfg.rst_budget = 50;
    cfg.empty_frame_budget = 100;
    for (size_t i = 0; i < size && i < 16; i++)
        f.rng = f.rng * 31 + data[i];
    f.c = tt_h2_conn_new(role, &cfg, &cbs, &f);
    if (!f.c)
        return 0;
    uint8_t pre[64];
    size_t pl = 0;
    if (role == TT_H2_SERVER) {
        memcpy(pre, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
        pl = 24;
    }
    tt_frame_pack_header(pre + pl, 0, TT_H2_SETTINGS, 0, 0);
    pl += 9;
    tt_frame_pack_header(pre + pl, 0, TT_H2_SETTINGS, TT_FLAG_ACK, 0);
    pl += 9;
    if (tt_h2_recv(f.c, pre, pl) < 0)
        abort();
    if (role == TT_H2_CLIENT) {
        struct tt_header req[] = {{":method", "GET", 7, 3, 0},
                                  {":scheme", "https", 7, 5, 0},
                                  {":authority", "a", 10, 1, 0},
                                  {":path", "/", 5, 1, 0}};
        for (int i = 0; i < 4; i++)
            if (tt_h2_submit_request(f.c, req, 4, i & 1, NULL) < 0)
                abort();
        (void)tt_h2_send_data(f.c, 3, "body", 4, 0);
    }
    fz_drain(f.c);
    size_t chunk = (data[0] >> 1) % 64;
    data++;
    size--;
    size_t off = 0;
    int k = 0;
    while (off < size) {
        size_t n = chunk == 0 ? size - off : (chunk + (size_t)k) % 97 + 1;
        if (n > size - off)
            n = size - off;
        ssize_t r = tt_h2_recv(f.c, data + off, n);
        off += n;
        if (k++ % 4 != 3)
            fz_drain(f.c);
        if (role == TT_H2_CLIENT && tt_h2_can_open_stream(f.c) && fz_rand(&f) % 4 == 0) {
            struct tt_header req[] = {{":method", "POST", 7, 4, 0},
                                      {":scheme", "https", 7, 5, 0},
                                      {":authority", "a", 10, 1, 0},
                                      {":path", "/x", 5, 2, 0}};
            (void)tt_h2_submit_request(f.c, req, 4, 0, NULL);
        }
        if (r < 0) {
            if (r != TT_ERR_CONN && r != TT_ERR_NOMEM)
                abort();
            if (tt_h2_recv(f.c, data, 1) != TT_ERR_CONN || !tt_h2_is_done(f.c) ||
                tt_h2_open_streams(f.c) != 0)
                abort();
            break;
        }
    }
    fz_drain(f.c);
    if (fz_rand(&f) % 2)
        tt_h2_transport_closed(f.c);
    else
        (void)tt_h2_submit_goaway(f.c, TT_H2_NO_ERROR, "fz");
    tt_h2_conn_free(f.c);
    return 0;
}
