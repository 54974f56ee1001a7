/*
 * Failing allocations (nghttp2's failmalloc): every allocation of the
 * project goes through tt_mem_*, so a hook can make the Nth one fail.  Each
 * scenario runs once with no failure for a reference, then again for
 * N = 1, 2, 3, ... with the Nth allocation failing (and, in a second mode,
 * every allocation from the Nth on), until a run makes fewer than N
 * allocations.  For every N: no crash, no leak (the hook counts live blocks
 * and they return to zero after the frees; LSan checks the rest at exit),
 * and either an error surfaces (TT_ERR_NOMEM, a failed connection, a
 * stream reset, a 500) or the output is exactly the reference: a failure
 * never turns into silently wrong output.  For HTTP/2 a submit call that
 * returns TT_ERR_NOMEM without failing the connection is retried, and the
 * exchange must then be the reference (this found tt_h2_submit_request
 * queuing HEADERS for a stream it then forgot when the stream table could
 * not grow, so that a retry reused the stream id).
 *
 * Scenarios: an HTTP/2 client and server wired in memory (preface,
 * SETTINGS, a request whose headers insert into the HPACK tables, a body,
 * a response with DATA and trailers, GOAWAY both ways); the HPACK encoder
 * and decoder alone; the --root file server (file, gzip, ranges, listing,
 * redirect).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec/frame.h"
#include "codec/h2.h"
#include "codec/hpack.h"
#include "origin/fileserver.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the failing allocator -------------------------------------------- */

struct fm {
    unsigned long calls;  /* allocations attempted (malloc, and realloc that grows) */
    unsigned long fail_at; /* 0: never fail */
    int sticky;            /* fail every allocation from fail_at on */
    unsigned long failed;  /* allocations refused */
    long live;             /* blocks handed out and not freed */
};

static struct fm g_fm;

static int fm_refuse(void)
{
    g_fm.calls++;
    if (g_fm.fail_at &&
        (g_fm.calls == g_fm.fail_at || (g_fm.sticky && g_fm.calls > g_fm.fail_at))) {
        g_fm.failed++;
        return 1;
    }
    return 0;
}

static void *fm_malloc(size_t n, void *ud)
{
    (void)ud;
    if (fm_refuse())
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        g_fm.live++;
    return p;
}

static void *fm_realloc(void *q, size_t n, void *ud)
{
    (void)ud;
    if (fm_refuse())
        return NULL;
    void *p = realloc(q, n ? n : 1);
    if (p && !q)
        g_fm.live++;
    return p;
}

static void fm_free(void *q, void *ud)
{
    (void)ud;
    if (!q)
        return;
    g_fm.live--;
    free(q);
}

static const struct tt_mem_hooks fm_hooks = {fm_malloc, fm_realloc, fm_free, NULL};

static void fm_start(unsigned long fail_at, int sticky)
{
    memset(&g_fm, 0, sizeof g_fm);
    g_fm.fail_at = fail_at;
    g_fm.sticky = sticky;
    tt_mem_set_hooks(&fm_hooks);
}

static void fm_stop(void)
{
    tt_mem_set_hooks(NULL);
}

/* Runs `scenario(fail_at, sticky)` for the reference and then for every N
 * until one run needs fewer than N allocations.  The scenario returns 1 when
 * an error surfaced, 0 when it completed, and checks the rest itself. */
static void fm_sweep(int (*scenario)(unsigned long, int, void *), void *arg, const char *name)
{
    fm_start(0, 0);
    assert_int_equal(scenario(0, 0, arg), 0);
    unsigned long total = g_fm.calls;
    fm_stop();
    assert_int_equal(g_fm.live, 0);
    assert_true(total > 0);
    for (int sticky = 0; sticky < 2; sticky++) {
        unsigned long n, absorbed = 0;
        for (n = 1;; n++) {
            fm_start(n, sticky);
            int err = scenario(n, sticky, arg);
            fm_stop();
            if (g_fm.live != 0)
                fail_msg("%s: N=%lu%s leaks %ld blocks", name, n, sticky ? "+" : "", g_fm.live);
            if (g_fm.failed == 0) {
                /* Past the last allocation: the run must be the reference. */
                assert_int_equal(err, 0);
                break;
            }
            /* A refused allocation may be absorbed (a retry later, a
             * buffer the code can do without): then the scenario checked
             * the output equal to the reference. */
            absorbed += !err;
        }
        print_message("%s: %lu allocations, each failed in turn (%s): %lu surfaced, %lu absorbed\n",
                      name, n - 1, sticky ? "and all after it" : "alone", n - 1 - absorbed, absorbed);
        assert_int_equal(n - 1, total);
    }
}

/* ---- HTTP/2: a scripted exchange between two connections -------------- */

struct ep {
    struct tt_h2_conn *c;
    char log[16384];
    size_t len;
    int bad_close; /* a stream closed with an error code */
    int64_t got_request;
};

static void ep_log(struct ep *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ep_log(struct ep *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->log + e->len, sizeof e->log - e->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        e->len += (size_t)n < sizeof e->log - e->len ? (size_t)n : sizeof e->log - e->len - 1;
}

static int ep_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct ep *e = ud;
    (void)sud;
    ep_log(e, "H%u k%d e%d s%d:", sid, (int)h->kind, h->end_stream, h->status);
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->value_len > 64) { /* a sum rather than the bytes, to keep the log short */
            unsigned long sum = 0;
            for (uint32_t k = 0; k < f->value_len; k++)
                sum = sum * 31 + (uint8_t)f->value[k];
            ep_log(e, " %.*s=<%u bytes, %lx>", (int)f->name_len, f->name, f->value_len, sum);
        } else {
            ep_log(e, " %.*s=%.*s", (int)f->name_len, f->name, (int)f->value_len, f->value);
        }
    }
    ep_log(e, "\n");
    if (h->kind == TT_H2_HDRS_REQUEST)
        e->got_request = sid;
    return 0;
}

static int ep_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len, int end)
{
    struct ep *e = ud;
    (void)sud;
    ep_log(e, "D%u %.*s%s\n", sid, (int)len, (const char *)data, end ? " END" : "");
    tt_h2_consume(e->c, sid, len);
    return 0;
}

static void ep_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct ep *e = ud;
    (void)sud;
    ep_log(e, "C%u %u %x\n", sid, code, flags);
    if (code != TT_H2_NO_ERROR)
        e->bad_close = 1;
}

static void ep_goaway(void *ud, uint32_t last, uint32_t code, tt_iov dbg)
{
    struct ep *e = ud;
    ep_log(e, "G%u %u %.*s\n", last, code, (int)dbg.len, (const char *)dbg.base);
}

static void ep_settings(void *ud)
{
    struct ep *e = ud;
    ep_log(e, "S\n");
}

static const struct tt_h2_callbacks ep_cbs = {ep_headers, ep_data, ep_close, NULL, ep_goaway, NULL,
                                              ep_settings};

static struct tt_header hd(const char *n, const char *v)
{
    struct tt_header h = {n, v, (uint32_t)strlen(n), (uint32_t)strlen(v), 0};
    return h;
}

/* Moves output both ways until quiet.  Returns 0, or the first error of
 * tt_h2_recv (which must be one that announces itself). */
static int ep_pump(struct ep *a, struct ep *b)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        int moved = 0;
        struct ep *from[2] = {a, b}, *to[2] = {b, a};
        for (int k = 0; k < 2; k++) {
            tt_iov o;
            if (tt_h2_pending_output(from[k]->c, &o)) {
                ssize_t r = tt_h2_recv(to[k]->c, o.base, o.len);
                tt_h2_output_consumed(from[k]->c, o.len);
                moved = 1;
                if (r < 0) {
                    if (r != TT_ERR_NOMEM && r != TT_ERR_CONN)
                        fail_msg("tt_h2_recv: unexpected %zd", r);
                    return (int)r;
                }
                if ((size_t)r != o.len)
                    fail_msg("tt_h2_recv took %zd of %zu", r, o.len);
            }
        }
        if (!moved)
            return 0;
    }
    fail_msg("pump did not settle");
    return -1;
}

static char h2_ref_client[16384], h2_ref_server[16384];

/* 1 when either connection recorded a connection error or reset a stream. */
static int ep_failed(const struct ep *cl, const struct ep *sv)
{
    return tt_h2_error(cl->c, NULL, NULL) || tt_h2_error(sv->c, NULL, NULL) || cl->bad_close ||
           sv->bad_close;
}

/* A submit call that returned TT_ERR_NOMEM either failed the connection
 * (the error is then visible: tt_h2_error) or left it as it was, so that the
 * caller may simply try again.  The script retries a few times: in the
 * "alone" mode the retry succeeds and the exchange must then come out
 * exactly as the reference; a connection that took half of a refused call
 * (a HEADERS queued for a stream it forgot) shows up as a difference. */
#define H2_RETRIES 3
#define H2_CALL(rc, call)                                                                            \
    do {                                                                                             \
        for (int try_ = 0;; try_++) {                                                                \
            rc = (call);                                                                             \
            if (rc >= 0)                                                                             \
                break;                                                                               \
            if (rc != TT_ERR_NOMEM && !ep_failed(cl, sv))                                            \
                fail_msg("N=%lu: %s returned %lld\nclient:\n%s\nserver:\n%s", g_fm.fail_at, #call,      \
                         (long long)rc, cl->log, sv->log);                                           \
            if (rc != TT_ERR_NOMEM || try_ == H2_RETRIES || ep_failed(cl, sv))                       \
                return 1;                                                                            \
        }                                                                                            \
    } while (0)

static char h2_big[20001];

static int h2_script(struct ep *cl, struct ep *sv)
{
    int64_t rc;

    if (!h2_big[0])
        for (size_t i = 0; i < sizeof h2_big - 1; i++)
            h2_big[i] = (char)('a' + (i * 7) % 26);

    for (int try_ = 0; !cl->c && try_ <= H2_RETRIES; try_++)
        cl->c = tt_h2_conn_new(TT_H2_CLIENT, NULL, &ep_cbs, cl);
    for (int try_ = 0; !sv->c && try_ <= H2_RETRIES; try_++)
        sv->c = tt_h2_conn_new(TT_H2_SERVER, NULL, &ep_cbs, sv);
    if (!cl->c || !sv->c)
        return 1;
    if (ep_pump(cl, sv) != 0)
        return 1;
    /* Fields the encoder indexes (they land in both HPACK tables), one it
     * must never index, and a second request that reuses the entries. */
    struct tt_header req[] = {hd(":method", "POST"),         hd(":scheme", "https"),
                              hd(":authority", "tunnel.example"), hd(":path", "/upload?id=42"),
                              hd("user-agent", "failmalloc/1.0"), hd("x-request-id", "0123456789abcdef"),
                              hd("authorization", "Bearer s3cr3t"), hd("content-type", "text/plain"),
                              hd("x-big", h2_big)};
    int64_t sid;
    /* The first request carries a field larger than a frame: HEADERS plus
     * CONTINUATION, and a header-block buffer that grows on receipt. */
    H2_CALL(sid, tt_h2_submit_request(cl->c, req, 9, 0, NULL));
    H2_CALL(rc, tt_h2_send_data(cl->c, (uint32_t)sid, "hello body", 10, 1));
    assert_int_equal(rc, 10);
    if (ep_pump(cl, sv) != 0)
        return 1;
    if (sv->got_request != sid) {
        if (!ep_failed(cl, sv))
            fail_msg("request lost without an error");
        return 1;
    }

    struct tt_header resp[] = {hd(":status", "200"), hd("content-type", "text/plain"),
                               hd("x-request-id", "0123456789abcdef"), hd("cache-control", "no-store")};
    H2_CALL(rc, tt_h2_submit_headers(sv->c, (uint32_t)sid, resp, 4, 0));
    H2_CALL(rc, tt_h2_send_data(sv->c, (uint32_t)sid, "response data", 13, 0));
    assert_int_equal(rc, 13);
    struct tt_header trl[] = {hd("grpc-status", "0"), hd("x-checksum", "abc123")};
    H2_CALL(rc, tt_h2_submit_headers(sv->c, (uint32_t)sid, trl, 2, 1));
    if (ep_pump(cl, sv) != 0)
        return 1;

    /* More requests: the HPACK entries are used from the tables, and the
     * stream table grows past its first size. */
    req[0] = hd(":method", "GET");
    for (int i = 0; i < 9; i++) {
        int64_t sid2;
        H2_CALL(sid2, tt_h2_submit_request(cl->c, req, 8, 1, NULL));
        if (ep_pump(cl, sv) != 0)
            return 1;
        if (sv->got_request != sid2) {
            if (!ep_failed(cl, sv))
                fail_msg("request %d lost without an error", i);
            return 1;
        }
    }
    for (uint32_t s2 = 3; s2 <= 19; s2 += 2)
        H2_CALL(rc, tt_h2_submit_headers(sv->c, s2, resp, 1, 1));
    H2_CALL(rc, tt_h2_submit_goaway(sv->c, TT_H2_NO_ERROR, "bye"));
    H2_CALL(rc, tt_h2_submit_goaway(cl->c, TT_H2_NO_ERROR, "bye"));
    if (ep_pump(cl, sv) != 0)
        return 1;
    if (ep_failed(cl, sv))
        return 1;
    assert_true(tt_h2_is_done(cl->c));
    assert_true(tt_h2_is_done(sv->c));
    return 0;
}

static int h2_scenario(unsigned long fail_at, int sticky, void *arg)
{
    (void)arg;
    static struct ep cl, sv;
    memset(&cl, 0, sizeof cl);
    memset(&sv, 0, sizeof sv);
    int err = h2_script(&cl, &sv);
    if (fail_at == 0) {
        memcpy(h2_ref_client, cl.log, sizeof cl.log);
        memcpy(h2_ref_server, sv.log, sizeof sv.log);
    } else if (!err || (!sticky && !tt_h2_error(cl.c, NULL, NULL) && !tt_h2_error(sv.c, NULL, NULL))) {
        /* No error surfaced, or one refused allocation that did not fail a
         * connection (the call was retried): then what both sides saw is
         * exactly the reference. */
        if (strcmp(cl.log, h2_ref_client) != 0 || strcmp(sv.log, h2_ref_server) != 0)
            fail_msg("N=%lu: no connection failed, yet the exchange differs:\nclient:\n%s\nserver:\n%s",
                     fail_at, cl.log, sv.log);
        assert_int_equal(err, 0);
    } else {
        /* Whatever was delivered before the failure is a prefix of the
         * reference: nothing was made up or corrupted on the way. */
        if (strncmp(cl.log, h2_ref_client, strlen(cl.log)) != 0 &&
            !tt_h2_error(cl.c, NULL, NULL) && !cl.bad_close && !sv.bad_close)
            fail_msg("N=%lu: client saw\n%s\nexpected a prefix of\n%s", fail_at, cl.log, h2_ref_client);
    }
    tt_h2_conn_free(cl.c);
    tt_h2_conn_free(sv.c);
    return err;
}

static void test_h2_exchange(void **state)
{
    (void)state;
    fm_sweep(h2_scenario, NULL, "h2 exchange");
    assert_non_null(strstr(h2_ref_client, "x-checksum=abc123"));
    assert_non_null(strstr(h2_ref_server, "D1 hello body END"));
    assert_non_null(strstr(h2_ref_server, "x-big=<20000 bytes"));
    assert_non_null(strstr(h2_ref_client, "H19 k1 e1 s200"));
}

/* ---- HPACK: encoder and decoder alone --------------------------------- */

static const struct tt_header hp_blocks[3][5] = {
    {{":method", "GET", 7, 3, 0},
     {":path", "/index.html", 5, 11, 0},
     {"x-custom-key", "custom-value", 12, 12, 0},
     {"cookie", "a-long-cookie-value-that-gets-indexed", 6, 37, 0},
     {"authorization", "secret", 13, 6, 0}},
    {{":method", "GET", 7, 3, 0},
     {":path", "/other", 5, 6, 0},
     {"x-custom-key", "custom-value", 12, 12, 0},
     {"cookie", "a-long-cookie-value-that-gets-indexed", 6, 37, 0},
     {"x-new", "another-entry-for-the-table", 5, 27, 0}},
    {{":status", "404", 7, 3, 0},
     {"x-custom-key", "custom-value-2", 12, 14, 0},
     {"x-new", "another-entry-for-the-table", 5, 27, 0},
     {"server", "tether", 6, 6, 0},
     {"x-big", "0123456789012345678901234567890123456789012345678901234567890123456789", 5, 70, 0}},
};

static int hp_scenario(unsigned long fail_at, int sticky, void *arg)
{
    (void)fail_at, (void)sticky, (void)arg;
    struct tt_hpack_encoder enc;
    struct tt_hpack_decoder dec;
    int err = 0, enc_ok = 0, dec_ok = 0;

    if (tt_hpack_encoder_init(&enc, 4096) != 0)
        err = 1;
    else
        enc_ok = 1;
    if (!err && tt_hpack_decoder_init(&dec, 4096) != 0)
        err = 1;
    else if (!err)
        dec_ok = 1;
    /* A smaller table from the peer's SETTINGS, then back: the size
     * updates make the encoder reshape its table. */
    if (!err) {
        tt_hpack_encoder_set_peer_max(&enc, 256);
        tt_hpack_encoder_set_peer_max(&enc, 4096);
    }
    for (int b = 0; b < 3 && !err; b++) {
        tt_buf out;
        tt_buf_init(&out, 0);
        int rc = tt_hpack_encode_block(&enc, hp_blocks[b], 5, &out);
        if (rc) {
            assert_int_equal(rc, TT_ERR_NOMEM);
            err = 1;
        } else {
            struct tt_header hdrs[16];
            char scratch[2048];
            struct tt_hpack_out o = {.hdrs = hdrs, .hdrs_cap = 16, .scratch = scratch,
                                     .scratch_cap = sizeof scratch};
            rc = tt_hpack_decode_block(&dec, tt_buf_data(&out), tt_buf_len(&out), &o);
            if (rc) {
                assert_int_equal(rc, TT_ERR_NOMEM);
                err = 1;
            } else {
                /* Decoded: exactly what was encoded. */
                assert_int_equal(o.count, 5);
                for (size_t i = 0; i < 5; i++) {
                    assert_int_equal(hdrs[i].name_len, hp_blocks[b][i].name_len);
                    assert_int_equal(hdrs[i].value_len, hp_blocks[b][i].value_len);
                    assert_memory_equal(hdrs[i].name, hp_blocks[b][i].name, hdrs[i].name_len);
                    assert_memory_equal(hdrs[i].value, hp_blocks[b][i].value, hdrs[i].value_len);
                }
            }
        }
        tt_buf_free(&out);
    }
    if (!err) {
        /* The decoder's own limit shrinks and grows back. */
        if (tt_hpack_decoder_set_max_table_size(&dec, 100) || tt_hpack_decoder_set_max_table_size(&dec, 8192))
            err = 1;
    }
    if (enc_ok)
        tt_hpack_encoder_free(&enc);
    if (dec_ok)
        tt_hpack_decoder_free(&dec);
    return err;
}

static void test_hpack_roundtrip(void **state)
{
    (void)state;
    fm_sweep(hp_scenario, NULL, "hpack");
}

/* ---- the file server -------------------------------------------------- */

static char fs_root[PATH_MAX];
static uint8_t fs_bin[70000];

static void fs_put(const char *rel, const void *data, size_t len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", fs_root, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

struct fs_case {
    const char *method, *path, *range, *accept_encoding;
    int status; /* the answer without failures */
};

static const struct fs_case fs_cases[] = {
    {"GET", "/bin.dat", NULL, NULL, 200},
    {"GET", "/page.html", NULL, "gzip", 200},
    {"GET", "/bin.dat", "bytes=0-99,1000-1099,-10", NULL, 206},
    {"GET", "/bin.dat", "bytes=5-10", NULL, 206},
    {"GET", "/dir/", NULL, NULL, 200},
    {"GET", "/dir/", NULL, "gzip", 200},
    {"GET", "/dir?x=1", NULL, NULL, 301},
    {"HEAD", "/page.html", NULL, NULL, 200},
    {"GET", "/missing", NULL, NULL, 404},
};

static uint8_t fs_ref_body[200000];
static size_t fs_ref_len;
static struct tt_fs_response fs_ref_resp;

/* The multipart boundary is random: compare bodies with it masked. */
static void fs_mask_boundary(uint8_t *b, size_t n, const struct tt_fs_response *r)
{
    for (size_t i = 0; i < r->count; i++) {
        const struct tt_header *h = &r->hdrs[i];
        const char *bd = h->value_len > 9 ? memmem(h->value, h->value_len, "boundary=", 9) : NULL;
        if (!bd || strcmp(h->name, "content-type") != 0)
            continue;
        size_t bl = h->value_len - (size_t)(bd + 9 - h->value);
        for (size_t k = 0; k + bl <= n; k++)
            if (memcmp(b + k, bd + 9, bl) == 0)
                memset(b + k, 'B', bl);
    }
}

static int fs_scenario(unsigned long fail_at, int sticky, void *arg)
{
    (void)sticky;
    const struct fs_case *fc = arg;
    struct tt_fs_config cfg = {fs_root, -1, 0};
    struct tt_header hdrs[2];
    size_t nh = 0;
    if (fc->range)
        hdrs[nh++] = hd("range", fc->range);
    if (fc->accept_encoding)
        hdrs[nh++] = hd("accept-encoding", fc->accept_encoding);
    struct tt_fs_request req = {{(const uint8_t *)fc->method, strlen(fc->method)},
                                {(const uint8_t *)fc->path, strlen(fc->path)}, hdrs, nh};
    static struct tt_fs_response resp;
    static uint8_t body[200000];
    size_t len = 0;
    int err = 0;

    cfg.root_fd = tt_fs_open_root(fs_root);
    struct tt_fs_stream *s = tt_fs_open(&cfg, &req, &resp);
    if (resp.status == 500) {
        assert_null(s);
        err = 1;
    }
    if (s) {
        for (;;) {
            assert_true(len + 1000 <= sizeof body);
            ssize_t r = tt_fs_read(s, body + len, 1000);
            if (r < 0) {
                err = 1; /* the caller resets the stream */
                break;
            }
            if (r == 0)
                break;
            len += (size_t)r;
        }
        tt_fs_close(s);
    }
    close(cfg.root_fd);
    if (fail_at == 0) {
        assert_int_equal(resp.status, fc->status);
        memcpy(&fs_ref_resp, &resp, sizeof resp);
        fs_mask_boundary(body, len, &resp);
        memcpy(fs_ref_body, body, len);
        fs_ref_len = len;
    } else if (!err) {
        assert_int_equal(resp.status, fs_ref_resp.status);
        assert_int_equal(resp.content_length, fs_ref_resp.content_length);
        assert_int_equal(resp.count, fs_ref_resp.count);
        assert_int_equal(len, fs_ref_len);
        fs_mask_boundary(body, len, &resp);
        assert_memory_equal(body, fs_ref_body, len);
    }
    return err;
}

static int fs_setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/tt-failmalloc-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, fs_root));
    for (size_t i = 0; i < sizeof fs_bin; i++)
        fs_bin[i] = (uint8_t)(i * 13 + (i >> 7));
    fs_put("bin.dat", fs_bin, sizeof fs_bin);
    static char page[20000];
    size_t off = 0;
    while (off + 40 < sizeof page)
        off += (size_t)snprintf(page + off, sizeof page - off, "<p>paragraph %zu</p>\n", off);
    fs_put("page.html", page, off);
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/dir", fs_root);
    assert_int_equal(mkdir(path, 0755), 0);
    for (int i = 0; i < 40; i++) {
        char name[64];
        snprintf(name, sizeof name, "dir/file %02d <&>.txt", i);
        fs_put(name, "x", 1);
    }
    return 0;
}

static int fs_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int fs_teardown(void **state)
{
    (void)state;
    return nftw(fs_root, fs_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_fileserver(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fs_cases / sizeof fs_cases[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "fileserver %s %s%s%s", fs_cases[i].method, fs_cases[i].path,
                 fs_cases[i].range ? " range" : "", fs_cases[i].accept_encoding ? " gzip" : "");
        /* Requests that allocate nothing (404, HEAD) have no N to fail. */
        fm_start(0, 0);
        assert_int_equal(fs_scenario(0, 0, (void *)&fs_cases[i]), 0);
        fm_stop();
        assert_int_equal(g_fm.live, 0);
        if (g_fm.calls == 0) {
            print_message("%s: no allocation\n", name);
            continue;
        }
        fm_sweep(fs_scenario, (void *)&fs_cases[i], name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h2_exchange),
        cmocka_unit_test(test_hpack_roundtrip),
        cmocka_unit_test_setup_teardown(test_fileserver, fs_setup, fs_teardown),
    };
    return cmocka_run_group_tests_name("failmalloc", tests, NULL, NULL);
}
