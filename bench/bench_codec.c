/*
 * bench_codec: our HPACK (and HTTP/2 frame path) against libnghttp2's, on
 * the same input in the same run.
 *
 *   build/bench/bench_codec [hpack-test-case dir] [seconds per measurement]
 *
 * Decode: every story of every implementation folder that has "wire" data,
 * each story with a fresh decoder, cases in order.  MB/s counts wire bytes.
 * Encode: every raw-data story with a fresh encoder (table 4096).  MB/s
 * counts the plain name+value bytes.  Each figure is the best and the median
 * of several runs; the ratio is ours/nghttp2 on the best run (>1: we are
 * faster).  Sizes: total compressed bytes, ours/nghttp2 (<1: we are smaller).
 */
#include "codec/h2.h"
#include "codec/hpack.h"

#include <dirent.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------ corpus */

struct wcase {
    uint8_t *wire;
    size_t len;
    long table_size; /* -1: unchanged */
    size_t nhdrs;
};
struct wstory {
    struct wcase *cases;
    size_t n;
};
struct rcase {
    struct tt_header *hdrs;
    nghttp2_nv *nv;
    size_t n;
};
struct rstory {
    struct rcase *cases;
    size_t n;
};

static struct wstory *wstories;
static size_t nwstories, wire_bytes, wire_hdrs;
static struct rstory *rstories;
static size_t nrstories, raw_bytes, raw_hdrs;

static int cmpstr(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static char **list_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t cap = 64;
    char **v = xmalloc(cap * sizeof *v);
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, *n, sizeof *v, cmpstr);
    return v;
}

static void load(const char *root)
{
    size_t nimpl;
    char **impls = list_dir(root, &nimpl);
    if (!impls) {
        fprintf(stderr, "bench_codec: %s not found\n", root);
        exit(2);
    }
    for (size_t i = 0; i < nimpl; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, impls[i]);
        size_t nf;
        char **files = list_dir(dir, &nf);
        int raw = strcmp(impls[i], "raw-data") == 0;
        for (size_t f = 0; files && f < nf; f++) {
            if (strncmp(files[f], "story_", 6) != 0)
                continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, files[f]);
            json_error_t err;
            json_t *js = json_load_file(path, 0, &err);
            if (!js)
                continue;
            json_t *cs = json_object_get(js, "cases");
            size_t nc = json_array_size(cs);
            if (raw) {
                rstories = realloc(rstories, (nrstories + 1) * sizeof *rstories);
                struct rstory *s = &rstories[nrstories++];
                s->n = nc;
                s->cases = xmalloc(nc * sizeof *s->cases);
                for (size_t k = 0; k < nc; k++) {
                    json_t *hs = json_object_get(json_array_get(cs, k), "headers");
                    struct rcase *rc = &s->cases[k];
                    rc->n = json_array_size(hs);
                    rc->hdrs = xmalloc(rc->n * sizeof *rc->hdrs);
                    rc->nv = xmalloc(rc->n * sizeof *rc->nv);
                    for (size_t h = 0; h < rc->n; h++) {
                        const char *key;
                        json_t *v;
                        json_object_foreach(json_array_get(hs, h), key, v)
                        {
                            char *name = strdup(key);
                            size_t vl = json_string_length(v);
                            char *val = xmalloc(vl + 1);
                            memcpy(val, json_string_value(v), vl + 1);
                            rc->hdrs[h] = (struct tt_header){name, val, (uint32_t)strlen(name),
                                                             (uint32_t)vl, 0};
                            rc->nv[h] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)val,
                                                     strlen(name), vl, NGHTTP2_NV_FLAG_NONE};
                            raw_bytes += strlen(name) + vl;
                        }
                    }
                    raw_hdrs += rc->n;
                }
            } else if (nc && json_object_get(json_array_get(cs, 0), "wire")) {
                wstories = realloc(wstories, (nwstories + 1) * sizeof *wstories);
                struct wstory *s = &wstories[nwstories++];
                s->n = nc;
                s->cases = xmalloc(nc * sizeof *s->cases);
                for (size_t k = 0; k < nc; k++) {
                    json_t *c = json_array_get(cs, k);
                    const char *hex = json_string_value(json_object_get(c, "wire"));
                    struct wcase *w = &s->cases[k];
                    w->len = strlen(hex) / 2;
                    w->wire = xmalloc(w->len);
                    for (size_t b = 0; b < w->len; b++) {
                        unsigned x;
                        sscanf(hex + 2 * b, "%2x", &x);
                        w->wire[b] = (uint8_t)x;
                    }
                    json_t *ts = json_object_get(c, "header_table_size");
                    w->table_size = json_is_integer(ts) ? (long)json_integer_value(ts) : -1;
                    w->nhdrs = json_array_size(json_object_get(c, "headers"));
                    wire_bytes += w->len;
                    wire_hdrs += w->nhdrs;
                }
            }
            json_decref(js);
        }
        for (size_t f = 0; files && f < nf; f++)
            free(files[f]);
        free(files);
    }
    for (size_t i = 0; i < nimpl; i++)
        free(impls[i]);
    free(impls);
}

/* ------------------------------------------------------ one pass each */

static struct tt_header out_hdrs[1024];
static char out_scratch[1 << 18];
static size_t sink;

static void ours_decode_all(void)
{
    struct tt_hpack_out out = {.hdrs = out_hdrs, .hdrs_cap = 1024, .scratch = out_scratch,
                               .scratch_cap = sizeof out_scratch};
    for (size_t s = 0; s < nwstories; s++) {
        struct tt_hpack_decoder dec;
        if (tt_hpack_decoder_init(&dec, 4096))
            abort();
        for (size_t k = 0; k < wstories[s].n; k++) {
            const struct wcase *w = &wstories[s].cases[k];
            if (w->table_size >= 0 && tt_hpack_decoder_set_max_table_size(&dec, (uint32_t)w->table_size))
                abort();
            if (tt_hpack_decode_block(&dec, w->wire, w->len, &out) || out.count != w->nhdrs) {
                fprintf(stderr, "ours: decode failed\n");
                exit(1);
            }
            sink += out.count;
        }
        tt_hpack_decoder_free(&dec);
    }
}

static void ng_decode_all(void)
{
    for (size_t s = 0; s < nwstories; s++) {
        nghttp2_hd_inflater *inf;
        if (nghttp2_hd_inflate_new(&inf))
            abort();
        for (size_t k = 0; k < wstories[s].n; k++) {
            const struct wcase *w = &wstories[s].cases[k];
            if (w->table_size >= 0 && nghttp2_hd_inflate_change_table_size(inf, (size_t)w->table_size))
                abort();
            const uint8_t *in = w->wire;
            size_t left = w->len, n = 0;
            for (;;) {
                nghttp2_nv nv;
                int fl = 0;
                ssize_t r = nghttp2_hd_inflate_hd2(inf, &nv, &fl, in, left, 1);
                if (r < 0) {
                    fprintf(stderr, "nghttp2: inflate failed\n");
                    exit(1);
                }
                in += r;
                left -= (size_t)r;
                if (fl & NGHTTP2_HD_INFLATE_EMIT)
                    n++;
                if (fl & NGHTTP2_HD_INFLATE_FINAL) {
                    nghttp2_hd_inflate_end_headers(inf);
                    break;
                }
                if (r == 0 && !(fl & NGHTTP2_HD_INFLATE_EMIT))
                    break;
            }
            if (n != w->nhdrs) {
                fprintf(stderr, "nghttp2: decoded %zu headers, want %zu\n", n, w->nhdrs);
                exit(1);
            }
            sink += n;
        }
        nghttp2_hd_inflate_del(inf);
    }
}

static size_t enc_total;

static void ours_encode_all(void)
{
    tt_buf b;
    tt_buf_init(&b, 0);
    size_t total = 0;
    for (size_t s = 0; s < nrstories; s++) {
        struct tt_hpack_encoder enc;
        if (tt_hpack_encoder_init(&enc, 4096))
            abort();
        for (size_t k = 0; k < rstories[s].n; k++) {
            tt_buf_consume(&b, tt_buf_len(&b));
            if (tt_hpack_encode_block(&enc, rstories[s].cases[k].hdrs, rstories[s].cases[k].n, &b))
                abort();
            total += tt_buf_len(&b);
        }
        tt_hpack_encoder_free(&enc);
    }
    tt_buf_free(&b);
    enc_total = total;
}

static size_t ng_total;

static void ng_encode_all(void)
{
    static uint8_t buf[1 << 18];
    size_t total = 0;
    for (size_t s = 0; s < nrstories; s++) {
        nghttp2_hd_deflater *def;
        if (nghttp2_hd_deflate_new(&def, 4096))
            abort();
        for (size_t k = 0; k < rstories[s].n; k++) {
            ssize_t r = nghttp2_hd_deflate_hd(def, buf, sizeof buf, rstories[s].cases[k].nv,
                                              rstories[s].cases[k].n);
            if (r < 0)
                abort();
            total += (size_t)r;
        }
        nghttp2_hd_deflate_del(def);
    }
    ng_total = total;
}

/* ---------------------------------------------------------- measuring */

static double budget = 0.3; /* seconds per run */

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Seconds per pass: best and median of RUNS runs. */
static void measure(void (*fn)(void), double *best, double *median)
{
    fn(); /* warm up */
    double t0 = now();
    int iters = 0;
    while (now() - t0 < budget / 4 || iters < 1) {
        fn();
        iters++;
    }
    double per = (now() - t0) / iters;
    int n = (int)(budget / per) + 1;
    double r[RUNS];
    for (int i = 0; i < RUNS; i++) {
        double s = now();
        for (int k = 0; k < n; k++)
            fn();
        r[i] = (now() - s) / n;
    }
    qsort(r, RUNS, sizeof r[0], cmpd);
    *best = r[0];
    *median = r[RUNS / 2];
}

static void report(const char *what, void (*ours)(void), void (*ng)(void), size_t bytes,
                   size_t hdrs, const char *unit)
{
    double ob, om, nb, nm;
    measure(ours, &ob, &om);
    measure(ng, &nb, &nm);
    printf("%-22s ours    %8.1f MB/s %7.2f M%s/s (median %8.1f MB/s)\n", what, bytes / ob / 1e6,
           hdrs / ob / 1e6, unit, bytes / om / 1e6);
    printf("%-22s nghttp2 %8.1f MB/s %7.2f M%s/s (median %8.1f MB/s)\n", "", bytes / nb / 1e6,
           hdrs / nb / 1e6, unit, bytes / nm / 1e6);
    printf("%-22s ratio ours/nghttp2: %.2f (best), %.2f (median)\n", "", nb / ob, nm / om);
}

/* ================================================================
 * Decode a long stream of mixed frames: the whole tt_h2 receive path
 * (frame parsing, HPACK, header validation, stream states, flow control)
 * against nghttp2_session_mem_recv on the same bytes, server role.
 * The stream: client preface, SETTINGS, SETTINGS ACK, then for each
 * request of the raw-data stories (request stories only, 8 times over, one
 * connection) HEADERS, two
 * DATA frames (1 KiB and 300 bytes, END_STREAM), a PING now and then.
 * Each side answers every request with a bare 200 (END_STREAM) so streams
 * close; output is drained and discarded.
 * ================================================================ */

static uint8_t *mixed;
static size_t mixed_len, mixed_frames, mixed_requests;

static void put_frame(tt_buf *b, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid,
                      const void *payload)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                    (uint8_t)(sid >> 24 & 0x7f), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8),
                    (uint8_t)sid};
    if (tt_buf_append(b, h, 9) || (len && tt_buf_append(b, payload, len)))
        abort();
    mixed_frames++;
}

static int is_request_story(const struct rstory *s)
{
    return s->n && s->cases[0].n && s->cases[0].hdrs[0].name_len == 7 &&
           memcmp(s->cases[0].hdrs[0].name, ":method", 7) == 0;
}

/* Fields RFC 9113 §8.2.2 forbids (the stories come from HTTP/1.1
 * captures), and content-length, which our fixed bodies would contradict. */
static int h2_unfit(const struct tt_header *h)
{
    static const char *const bad[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "upgrade", "te", "content-length"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (h->name_len == strlen(bad[i]) && memcmp(h->name, bad[i], h->name_len) == 0)
            return 1;
    for (uint32_t i = 0; i < h->name_len; i++)
        if (h->name[i] >= 'A' && h->name[i] <= 'Z')
            return 1;
    return 0;
}

static void build_mixed(void)
{
    struct tt_header fit[256];
    tt_buf b, blk;
    tt_buf_init(&b, 0);
    tt_buf_init(&blk, 0);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (tt_buf_append(&b, preface, 24))
        abort();
    put_frame(&b, 0, TT_H2_SETTINGS, 0, 0, NULL);
    put_frame(&b, 0, TT_H2_SETTINGS, 1, 0, NULL); /* ACK of the server's */
    struct tt_hpack_encoder enc;
    if (tt_hpack_encoder_init(&enc, 4096))
        abort();
    static uint8_t body[1024];
    memset(body, 'x', sizeof body);
    uint32_t sid = 1;
    for (int pass = 0; pass < 8; pass++) {
        for (size_t s = 0; s < nrstories; s++) {
            if (!is_request_story(&rstories[s]))
                continue;
            for (size_t k = 0; k < rstories[s].n; k++) {
                tt_buf_consume(&blk, tt_buf_len(&blk));
                size_t nfit = 0;
                for (size_t h = 0; h < rstories[s].cases[k].n && nfit < 256; h++)
                    if (!h2_unfit(&rstories[s].cases[k].hdrs[h]))
                        fit[nfit++] = rstories[s].cases[k].hdrs[h];
                if (tt_hpack_encode_block(&enc, fit, nfit, &blk))
                    abort();
                put_frame(&b, (uint32_t)tt_buf_len(&blk), TT_H2_HEADERS, 0x4, sid, tt_buf_data(&blk));
                put_frame(&b, sizeof body, TT_H2_DATA, 0, sid, body);
                put_frame(&b, 300, TT_H2_DATA, 0x1, sid, body);
                if (sid % 64 == 1) {
                    uint8_t ping[8] = {0};
                    put_frame(&b, 8, TT_H2_PING, 0, 0, ping);
                }
                sid += 2;
                mixed_requests++;
            }
        }
    }
    tt_hpack_encoder_free(&enc);
    mixed_len = tt_buf_len(&b);
    mixed = xmalloc(mixed_len);
    memcpy(mixed, tt_buf_data(&b), mixed_len);
    tt_buf_free(&b);
    tt_buf_free(&blk);
}

static struct tt_h2_conn *tt_conn;
static size_t answered;
static const struct tt_header resp200[] = {{":status", "200", 7, 3, 0}};

static int tt_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    (void)ud;
    (void)sud;
    (void)sid;
    sink += h->count;
    return 0;
}

static int tt_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    (void)ud;
    (void)sud;
    (void)data;
    tt_h2_consume(tt_conn, sid, len);
    if (end_stream) {
        answered++;
        if (tt_h2_submit_headers(tt_conn, sid, resp200, 1, 1))
            return -1;
    }
    return 0;
}

static void ours_mixed(void)
{
    struct tt_h2_config cfg;
    tt_h2_config_default(&cfg);
    struct tt_h2_callbacks cbs = {.on_headers = tt_on_headers, .on_data = tt_on_data};
    tt_conn = tt_h2_conn_new(TT_H2_SERVER, &cfg, &cbs, NULL);
    if (!tt_conn)
        abort();
    size_t off = 0;
    while (off < mixed_len) {
        size_t chunk = mixed_len - off < 16384 ? mixed_len - off : 16384;
        ssize_t r = tt_h2_recv(tt_conn, mixed + off, chunk);
        if (r < 0) {
            uint32_t code;
            const char *why = "";
            tt_h2_error(tt_conn, &code, &why);
            fprintf(stderr, "ours: tt_h2_recv failed: %zd (%s)\n", r, why);
            exit(1);
        }
        off += (size_t)r;
        tt_iov o;
        size_t n;
        while ((n = tt_h2_pending_output(tt_conn, &o)) > 0)
            tt_h2_output_consumed(tt_conn, n);
    }
    tt_h2_conn_free(tt_conn);
    if (answered != mixed_requests) {
        fprintf(stderr, "ours: answered %zu of %zu requests\n", answered, mixed_requests);
        exit(1);
    }
    answered = 0;
}

static nghttp2_session *ng_sess;

static int ng_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *ud)
{
    (void)s;
    (void)f;
    (void)name;
    (void)namelen;
    (void)value;
    (void)valuelen;
    (void)flags;
    (void)ud;
    sink++;
    return 0;
}

static int ng_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE};
        answered++;
        if (nghttp2_submit_response(s, f->hd.stream_id, &nv, 1, NULL))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static void ng_mixed(void)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, ng_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, ng_on_frame);
    if (nghttp2_session_server_new(&ng_sess, cb, NULL))
        abort();
    nghttp2_session_callbacks_del(cb);
    /* The same windows as ours (1 MiB streams, 16 MiB connection). */
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
                                   {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 256}};
    nghttp2_submit_settings(ng_sess, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(ng_sess, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    size_t off = 0;
    while (off < mixed_len) {
        size_t chunk = mixed_len - off < 16384 ? mixed_len - off : 16384;
        ssize_t r = nghttp2_session_mem_recv(ng_sess, mixed + off, chunk);
        if (r < 0) {
            fprintf(stderr, "nghttp2: mem_recv failed: %s\n", nghttp2_strerror((int)r));
            exit(1);
        }
        off += (size_t)r;
        const uint8_t *o;
        while (nghttp2_session_mem_send(ng_sess, &o) > 0)
            ;
    }
    nghttp2_session_del(ng_sess);
    if (answered != mixed_requests) {
        fprintf(stderr, "nghttp2: answered %zu of %zu requests\n", answered, mixed_requests);
        exit(1);
    }
    answered = 0;
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "../shared/testdata/hpack-test-case";
    if (argc > 2)
        budget = atof(argv[2]);
    if (getenv("BENCH_QUICK"))
        budget = 0.02;
    load(root);
    printf("bench_codec: %zu wire stories (%zu bytes, %zu headers), %zu raw-data stories "
           "(%zu bytes, %zu headers); best of %d runs of ~%.2fs\n",
           nwstories, wire_bytes, wire_hdrs, nrstories, raw_bytes, raw_hdrs, RUNS, budget);
    report("HPACK decode", ours_decode_all, ng_decode_all, wire_bytes, wire_hdrs, "hdr");
    report("HPACK encode", ours_encode_all, ng_encode_all, raw_bytes, raw_hdrs, "hdr");
    ours_encode_all();
    ng_encode_all();
    printf("%-22s ours %zu bytes, nghttp2 %zu bytes: ratio %.3f\n", "HPACK encoded size", enc_total,
           ng_total, (double)enc_total / ng_total);

    build_mixed();
    printf("mixed frames: %zu bytes, %zu frames, %zu requests\n", mixed_len, mixed_frames,
           mixed_requests);
    report("h2 server recv (mixed)", ours_mixed, ng_mixed, mixed_len, mixed_frames, "frame");
    return (int)(sink & 0);
}
