/*
 * HPACK tests: RFC 7541 Appendix C, the hpack-test-case corpus (every
 * implementation's stories decoded; raw-data re-encoded and decoded at
 * several table sizes), Huffman round trips, malformed input, never-indexed
 * fields, eviction, size updates and the header-list limit.
 */
#include "codec/hpack.h"
#include "codec/huffman.h"

#include <dirent.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ------------------------------------------------------------ helpers */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        assert_true(sscanf(p, "%2x", &v) == 1);
        assert_true(n < cap);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

struct dec_ctx {
    struct tt_hpack_decoder dec;
    struct tt_header hdrs[512];
    char scratch[1 << 17];
    struct tt_hpack_out out;
};

static struct dec_ctx *dctx_new(uint32_t table)
{
    struct dec_ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tt_hpack_decoder_init(&c->dec, table), 0);
    c->out.hdrs = c->hdrs;
    c->out.hdrs_cap = 512;
    c->out.scratch = c->scratch;
    c->out.scratch_cap = sizeof(c->scratch);
    return c;
}

static void dctx_free(struct dec_ctx *c)
{
    tt_hpack_decoder_free(&c->dec);
    free(c);
}

static int dec_hex(struct dec_ctx *c, const char *hex)
{
    uint8_t buf[4096];
    size_t n = unhex(hex, buf, sizeof(buf));
    return tt_hpack_decode_block(&c->dec, buf, n, &c->out);
}

static int hdr_is(const struct tt_header *h, const char *name, const char *value)
{
    return h->name_len == strlen(name) && memcmp(h->name, name, h->name_len) == 0 &&
           h->value_len == strlen(value) && memcmp(h->value, value, h->value_len) == 0;
}

static void expect_hdrs(struct dec_ctx *c, ...)
{
    va_list ap;
    va_start(ap, c);
    size_t i = 0;
    for (;;) {
        const char *n = va_arg(ap, const char *);
        if (!n)
            break;
        const char *v = va_arg(ap, const char *);
        assert_true(i < c->out.count);
        if (!hdr_is(&c->out.hdrs[i], n, v))
            fail_msg("header %zu: got %.*s: %.*s, want %s: %s", i, (int)c->out.hdrs[i].name_len,
                     c->out.hdrs[i].name, (int)c->out.hdrs[i].value_len, c->out.hdrs[i].value, n, v);
        i++;
    }
    va_end(ap);
    assert_int_equal(i, c->out.count);
}

/* Checks dynamic entry `i` (1 = newest) by decoding an indexed field for it:
 * the table is only read. */
static void expect_entry(struct dec_ctx *c, uint32_t i, const char *name, const char *value)
{
    uint8_t blk[8];
    size_t n = tt_hpack_encode_int(blk, 0x80, 7, 61 + i);
    struct tt_header h[1];
    char scratch[512];
    struct tt_hpack_out o = {.hdrs = h, .hdrs_cap = 1, .scratch = scratch, .scratch_cap = sizeof scratch};
    assert_int_equal(tt_hpack_decode_block(&c->dec, blk, n, &o), 0);
    assert_int_equal(o.count, 1);
    if (!hdr_is(&h[0], name, value))
        fail_msg("entry %u: got %.*s: %.*s, want %s: %s", i, (int)h[0].name_len, h[0].name,
                 (int)h[0].value_len, h[0].value, name, value);
}

static void expect_table(struct dec_ctx *c, uint32_t count, uint32_t size)
{
    assert_int_equal(c->dec.table.count, count);
    assert_int_equal(c->dec.table.size, size);
}

/* ------------------------------------------------------------ C.1 */

static void test_c1_integers(void **state)
{
    (void)state;
    uint8_t b[8];
    uint32_t v;
    /* C.1.1: 10 with a 5-bit prefix */
    assert_int_equal(tt_hpack_encode_int(b, 0, 5, 10), 1);
    assert_int_equal(b[0], 0x0a);
    assert_int_equal(tt_hpack_decode_int(b, 1, 5, &v), 1);
    assert_int_equal(v, 10);
    /* C.1.2: 1337 with a 5-bit prefix: 1f 9a 0a */
    assert_int_equal(tt_hpack_encode_int(b, 0, 5, 1337), 3);
    assert_int_equal(b[0], 0x1f);
    assert_int_equal(b[1], 0x9a);
    assert_int_equal(b[2], 0x0a);
    assert_int_equal(tt_hpack_decode_int(b, 3, 5, &v), 3);
    assert_int_equal(v, 1337);
    assert_int_equal(tt_hpack_decode_int(b, 2, 5, &v), 0); /* needs more */
    /* C.1.3: 42 at an octet boundary */
    assert_int_equal(tt_hpack_encode_int(b, 0, 8, 42), 1);
    assert_int_equal(b[0], 42);
    assert_int_equal(tt_hpack_decode_int(b, 1, 8, &v), 1);
    assert_int_equal(v, 42);
    /* Limits: 2^32-1 round trips, one more overflows, padding bytes too. */
    size_t n = tt_hpack_encode_int(b, 0, 5, UINT32_MAX);
    assert_int_equal(tt_hpack_decode_int(b, n, 5, &v), (int)n);
    assert_int_equal(v, UINT32_MAX);
    const uint8_t over[] = {0x1f, 0xe1, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(tt_hpack_decode_int(over, sizeof over, 5, &v), TT_ERR_HPACK);
    const uint8_t longz[] = {0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(tt_hpack_decode_int(longz, sizeof longz, 5, &v), TT_ERR_HPACK);
    for (uint32_t x = 0; x < 70000; x += 7)
        for (unsigned pb = 1; pb <= 8; pb++) {
            n = tt_hpack_encode_int(b, 0, pb, x);
            assert_int_equal(tt_hpack_decode_int(b, n, pb, &v), (int)n);
            assert_int_equal(v, x);
        }
}

/* ------------------------------------------------------------ C.2 */

static void test_c2_literals(void **state)
{
    (void)state;
    struct dec_ctx *c = dctx_new(4096);
    /* C.2.1 literal with indexing */
    assert_int_equal(dec_hex(c, "400a637573746f6d2d6b65790d637573746f6d2d686561646572"), 0);
    expect_hdrs(c, "custom-key", "custom-header", NULL);
    expect_table(c, 1, 55);
    expect_entry(c, 1, "custom-key", "custom-header");
    dctx_free(c);

    /* C.2.2 literal without indexing */
    c = dctx_new(4096);
    assert_int_equal(dec_hex(c, "040c2f73616d706c652f70617468"), 0);
    expect_hdrs(c, ":path", "/sample/path", NULL);
    assert_int_equal(c->out.hdrs[0].flags & TT_HDR_NEVER_INDEX, 0);
    expect_table(c, 0, 0);
    dctx_free(c);

    /* C.2.3 literal never indexed */
    c = dctx_new(4096);
    assert_int_equal(dec_hex(c, "100870617373776f726406736563726574"), 0);
    expect_hdrs(c, "password", "secret", NULL);
    assert_int_equal(c->out.hdrs[0].flags & TT_HDR_NEVER_INDEX, TT_HDR_NEVER_INDEX);
    expect_table(c, 0, 0);
    dctx_free(c);

    /* C.2.4 indexed */
    c = dctx_new(4096);
    assert_int_equal(dec_hex(c, "82"), 0);
    expect_hdrs(c, ":method", "GET", NULL);
    expect_table(c, 0, 0);
    dctx_free(c);
}

/* ------------------------------------------------------- C.3 and C.4 */

static const char *const c3_blocks[] = {
    "828684410f7777772e6578616d706c652e636f6d",
    "828684be58086e6f2d6361636865",
    "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
};
static const char *const c4_blocks[] = {
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
};

static void check_requests(struct dec_ctx *c, const char *const *blocks)
{
    assert_int_equal(dec_hex(c, blocks[0]), 0);
    expect_hdrs(c, ":method", "GET", ":scheme", "http", ":path", "/", ":authority",
                "www.example.com", NULL);
    expect_table(c, 1, 57);
    expect_entry(c, 1, ":authority", "www.example.com");
    assert_int_equal(dec_hex(c, blocks[1]), 0);
    expect_hdrs(c, ":method", "GET", ":scheme", "http", ":path", "/", ":authority",
                "www.example.com", "cache-control", "no-cache", NULL);
    expect_table(c, 2, 110);
    expect_entry(c, 1, "cache-control", "no-cache");
    expect_entry(c, 2, ":authority", "www.example.com");
    assert_int_equal(dec_hex(c, blocks[2]), 0);
    expect_hdrs(c, ":method", "GET", ":scheme", "https", ":path", "/index.html", ":authority",
                "www.example.com", "custom-key", "custom-value", NULL);
    expect_table(c, 3, 164);
    expect_entry(c, 1, "custom-key", "custom-value");
    expect_entry(c, 2, "cache-control", "no-cache");
    expect_entry(c, 3, ":authority", "www.example.com");
}

static void test_c3_requests(void **state)
{
    (void)state;
    struct dec_ctx *c = dctx_new(4096);
    check_requests(c, c3_blocks);
    dctx_free(c);
}

static void test_c4_requests_huffman(void **state)
{
    (void)state;
    struct dec_ctx *c = dctx_new(4096);
    check_requests(c, c4_blocks);
    dctx_free(c);

    /* Our encoder makes the same choices as the RFC here: byte-exact. */
    struct tt_hpack_encoder enc;
    assert_int_equal(tt_hpack_encoder_init(&enc, 4096), 0);
    const struct tt_header r1[] = {
        {":method", "GET", 7, 3, 0},
        {":scheme", "http", 7, 4, 0},
        {":path", "/", 5, 1, 0},
        {":authority", "www.example.com", 10, 15, 0},
    };
    const struct tt_header r2[] = {
        {":method", "GET", 7, 3, 0},          {":scheme", "http", 7, 4, 0},
        {":path", "/", 5, 1, 0},              {":authority", "www.example.com", 10, 15, 0},
        {"cache-control", "no-cache", 13, 8, 0},
    };
    const struct tt_header r3[] = {
        {":method", "GET", 7, 3, 0},          {":scheme", "https", 7, 5, 0},
        {":path", "/index.html", 5, 11, 0},   {":authority", "www.example.com", 10, 15, 0},
        {"custom-key", "custom-value", 10, 12, 0},
    };
    const struct tt_header *reqs[] = {r1, r2, r3};
    const size_t counts[] = {4, 5, 5};
    for (int i = 0; i < 3; i++) {
        tt_buf b;
        tt_buf_init(&b, 0);
        assert_int_equal(tt_hpack_encode_block(&enc, reqs[i], counts[i], &b), 0);
        uint8_t want[256];
        size_t wn = unhex(c4_blocks[i], want, sizeof want);
        assert_int_equal(tt_buf_len(&b), wn);
        assert_memory_equal(tt_buf_data(&b), want, wn);
        tt_buf_free(&b);
    }
    tt_hpack_encoder_free(&enc);
}

/* ------------------------------------------------------- C.5 and C.6 */

static const char *const c5_blocks[] = {
    "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54"
    "6e1768747470733a2f2f7777772e6578616d706c652e636f6d",
    "4803333037c1c0bf",
    "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f"
    "3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076"
    "657273696f6e3d31",
};
static const char *const c6_blocks[] = {
    "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f"
    "0b97c8e9ae82ae43d3",
    "4883640effc1c0bf",
    "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335df"
    "dfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
};

#define DATE1 "Mon, 21 Oct 2013 20:13:21 GMT"
#define DATE2 "Mon, 21 Oct 2013 20:13:22 GMT"
#define LOC "https://www.example.com"
#define COOKIE "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"

static void check_responses(const char *const *blocks)
{
    /* The RFC's decoder runs with a 256-octet table: we advertise 256, and
     * the encoder says so with an update in an otherwise empty block. */
    struct dec_ctx *c = dctx_new(256);
    assert_int_equal(dec_hex(c, "3fe101"), 0);
    assert_int_equal(c->out.count, 0);
    assert_int_equal(dec_hex(c, blocks[0]), 0);
    expect_hdrs(c, ":status", "302", "cache-control", "private", "date", DATE1, "location", LOC,
                NULL);
    expect_table(c, 4, 222);
    expect_entry(c, 1, "location", LOC);
    expect_entry(c, 2, "date", DATE1);
    expect_entry(c, 3, "cache-control", "private");
    expect_entry(c, 4, ":status", "302");
    assert_int_equal(dec_hex(c, blocks[1]), 0);
    expect_hdrs(c, ":status", "307", "cache-control", "private", "date", DATE1, "location", LOC,
                NULL);
    expect_table(c, 4, 222);
    expect_entry(c, 1, ":status", "307");
    expect_entry(c, 2, "location", LOC);
    expect_entry(c, 3, "date", DATE1);
    expect_entry(c, 4, "cache-control", "private");
    assert_int_equal(dec_hex(c, blocks[2]), 0);
    expect_hdrs(c, ":status", "200", "cache-control", "private", "date", DATE2, "location", LOC,
                "content-encoding", "gzip", "set-cookie", COOKIE, NULL);
    expect_table(c, 3, 215);
    expect_entry(c, 1, "set-cookie", COOKIE);
    expect_entry(c, 2, "content-encoding", "gzip");
    expect_entry(c, 3, "date", DATE2);
    /* Entry 4 was evicted. */
    assert_int_equal(dec_hex(c, "c1"), TT_ERR_HPACK);
    dctx_free(c);
}

static void test_c5_responses(void **state)
{
    (void)state;
    check_responses(c5_blocks);
}

static void test_c6_responses_huffman(void **state)
{
    (void)state;
    check_responses(c6_blocks);
}

/* The Huffman strings of C.4 and C.6, byte-exact both ways. */
static void test_huffman_rfc_strings(void **state)
{
    (void)state;
    static const struct {
        const char *plain, *hex;
    } v[] = {
        {"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"},
        {"no-cache", "a8eb10649cbf"},
        {"custom-key", "25a849e95ba97d7f"},
        {"custom-value", "25a849e95bb8e8b4bf"},
        {"302", "6402"},
        {"307", "640eff"},
        {"private", "aec3771a4b"},
        {DATE1, "d07abe941054d444a8200595040b8166e082a62d1bff"},
        {DATE2, "d07abe941054d444a8200595040b8166e084a62d1bff"},
        {LOC, "9d29ad171863c78f0b97c8e9ae82ae43d3"},
        {"gzip", "9bd9ab"},
        {COOKIE, "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5"
                 "b1063d5007"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t want[128], got[128];
        size_t wn = unhex(v[i].hex, want, sizeof want);
        size_t pn = strlen(v[i].plain);
        assert_int_equal(tt_huff_encoded_len((const uint8_t *)v[i].plain, pn), wn);
        assert_int_equal(tt_huff_encode((const uint8_t *)v[i].plain, pn, got), wn);
        assert_memory_equal(got, want, wn);
        long r = tt_huff_decode(want, wn, got, sizeof got);
        assert_int_equal(r, (long)pn);
        assert_memory_equal(got, v[i].plain, pn);
    }
}

/* ------------------------------------------------------------ Huffman */

static void huff_roundtrip(const uint8_t *in, size_t n)
{
    uint8_t enc[4 * 1024 + 64], dec[1024 + 64];
    size_t el = tt_huff_encoded_len(in, n);
    assert_true(el <= sizeof enc);
    assert_int_equal(tt_huff_encode(in, n, enc), el);
    long r = tt_huff_decode(enc, el, dec, sizeof dec);
    assert_int_equal(r, (long)n);
    assert_memory_equal(dec, in, n);
    /* Exactly enough room works; one less says so. */
    if (n) {
        assert_int_equal(tt_huff_decode(enc, el, dec, n), (long)n);
        assert_int_equal(tt_huff_decode(enc, el, dec, n - 1), TT_ERR_HEADER_TOO_LARGE);
    }
}

static void test_huffman_all_bytes(void **state)
{
    (void)state;
    uint8_t s[1024];
    for (int c = 0; c < 256; c++) {
        s[0] = (uint8_t)c;
        huff_roundtrip(s, 1);
        for (int k = 0; k < 20; k++)
            s[k] = (uint8_t)c;
        huff_roundtrip(s, 20);
    }
    for (int c = 0; c < 256; c++)
        s[c] = (uint8_t)c;
    huff_roundtrip(s, 256);
    for (int c = 0; c < 256; c++)
        s[c] = (uint8_t)(255 - c);
    huff_roundtrip(s, 256);
    /* Pseudo-random strings of every length up to 300, mixed alphabets. */
    uint32_t x = 12345;
    for (size_t n = 0; n < 300; n++) {
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245 + 12345;
            s[i] = (x >> 20) & 1 ? (uint8_t)(x >> 24) : (uint8_t)('a' + (x >> 24) % 26);
        }
        huff_roundtrip(s, n);
    }
}

static void test_huffman_bad(void **state)
{
    (void)state;
    uint8_t out[64];
    /* EOS (30 ones) inside the string, then 2 bits of padding. */
    const uint8_t eos[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(tt_huff_decode(eos, 4, out, sizeof out), TT_ERR_HPACK);
    /* 'a' (00011) then EOS then padding */
    const uint8_t a_eos[] = {0x1f, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(tt_huff_decode(a_eos, 5, out, sizeof out), TT_ERR_HPACK);
    /* 'a' then 11 one bits: padding longer than 7 bits (§5.2) */
    const uint8_t longpad[] = {0x1f, 0xff};
    assert_int_equal(tt_huff_decode(longpad, 2, out, sizeof out), TT_ERR_HPACK);
    /* 8 ones alone: too much padding */
    const uint8_t onlypad[] = {0xff};
    assert_int_equal(tt_huff_decode(onlypad, 1, out, sizeof out), TT_ERR_HPACK);
    /* 'a' then 000: padding that is not a prefix of EOS */
    const uint8_t zeropad[] = {0x18};
    assert_int_equal(tt_huff_decode(zeropad, 1, out, sizeof out), TT_ERR_HPACK);
    /* 'a' then 111: fine */
    const uint8_t okpad[] = {0x1f};
    assert_int_equal(tt_huff_decode(okpad, 1, out, sizeof out), 1);
    assert_int_equal(out[0], 'a');
    /* A long code cut off by the end of the string. */
    uint8_t enc[8];
    const uint8_t nul = 0; /* 13-bit code */
    size_t el = tt_huff_encode(&nul, 1, enc);
    assert_int_equal(el, 2);
    assert_int_equal(tt_huff_decode(enc, 1, out, sizeof out), TT_ERR_HPACK);
    /* The same errors inside a header block are COMPRESSION_ERRORs. */
    struct dec_ctx *c = dctx_new(4096);
    assert_int_equal(dec_hex(c, "0084ffffffff0161"), TT_ERR_HPACK);
    assert_int_equal(dec_hex(c, "00016181ff"), TT_ERR_HPACK);
    assert_int_equal(dec_hex(c, "0001618118"), TT_ERR_HPACK);
    assert_int_equal(dec_hex(c, "000161811f"), 0);
    expect_hdrs(c, "a", "a", NULL);
    dctx_free(c);
}

/* --------------------------------------------------------- bad blocks */

static void test_bad_blocks(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "80",                 /* index 0 (§6.1) */
        "be",                 /* index 62 of an empty table */
        "ff80808080808000",   /* integer padding past 2^32 */
        "fffffffffff0",       /* integer overflow */
        "ff",                 /* truncated integer */
        "40",                 /* literal with no name */
        "4001",               /* name length past the end */
        "400161",             /* no value */
        "40016105",           /* value length past the end */
        "7f00",               /* name index 63 past the table */
        "0f2f",               /* never-indexed name index past the table... */
        "8220",               /* size update after a field (§4.2) */
        "3fe21f",             /* size update above SETTINGS (4097) */
        "202020",             /* three updates */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dec_ctx *c = dctx_new(4096);
        int rc = dec_hex(c, bad[i]);
        if (rc != TT_ERR_HPACK)
            fail_msg("block %s: rc %d, want TT_ERR_HPACK", bad[i], rc);
        dctx_free(c);
    }
}

static void truncate_all(const char *const *blocks, size_t nblocks, uint32_t table,
                         const char *prefix)
{
    uint8_t buf[1024];
    for (size_t b = 0; b < nblocks; b++) {
        size_t n = unhex(blocks[b], buf, sizeof buf);
        for (size_t cut = 0; cut <= n; cut++) {
            struct dec_ctx *c = dctx_new(table);
            if (prefix)
                assert_int_equal(dec_hex(c, prefix), 0);
            for (size_t k = 0; k < b; k++)
                assert_int_equal(dec_hex(c, blocks[k]), 0);
            int rc = tt_hpack_decode_block(&c->dec, buf, cut, &c->out);
            assert_true(rc == 0 || rc == TT_ERR_HPACK);
            if (cut == n)
                assert_int_equal(rc, 0);
            dctx_free(c);
        }
    }
}

static void test_truncated_blocks(void **state)
{
    (void)state;
    truncate_all(c3_blocks, 3, 4096, NULL);
    truncate_all(c4_blocks, 3, 4096, NULL);
    truncate_all(c5_blocks, 3, 256, "3fe101");
    truncate_all(c6_blocks, 3, 256, "3fe101");
}

/* -------------------------------------------------- never-indexed */

static int encode_one(struct tt_hpack_encoder *enc, const struct tt_header *h, size_t n,
                      struct dec_ctx *c)
{
    tt_buf b;
    tt_buf_init(&b, 0);
    int rc = tt_hpack_encode_block(enc, h, n, &b);
    assert_int_equal(rc, 0);
    rc = tt_hpack_decode_block(&c->dec, tt_buf_data(&b), tt_buf_len(&b), &c->out);
    tt_buf_free(&b);
    return rc;
}

static void test_never_indexed(void **state)
{
    (void)state;
    struct tt_hpack_encoder enc;
    assert_int_equal(tt_hpack_encoder_init(&enc, 4096), 0);
    struct dec_ctx *c = dctx_new(4096);
    const struct tt_header h[] = {
        {"authorization", "Bearer abc", 13, 10, 0},
        {"proxy-authorization", "Basic xyz", 19, 9, 0},
        {"cookie", "sid=1", 6, 5, 0},
        {"set-cookie", "a=b; Path=/", 10, 11, 0},
        {"x-secret", "hunter2", 8, 7, TT_HDR_NEVER_INDEX},
        {":method", "GET", 7, 3, TT_HDR_NEVER_INDEX}, /* a static match, still literal */
        {"x-plain", "v", 7, 1, 0},
        {"cookie", "a-long-cookie-value-that-is-worth-indexing", 6, 42, 0},
        {"x-not-indexed", "w", 13, 1, TT_HDR_NO_INDEX},
    };
    for (int round = 0; round < 2; round++) {
        assert_int_equal(encode_one(&enc, h, 9, c), 0);
        assert_int_equal(c->out.count, 9);
        for (int i = 0; i < 9; i++) {
            assert_memory_equal(c->out.hdrs[i].name, h[i].name, h[i].name_len);
            assert_memory_equal(c->out.hdrs[i].value, h[i].value, h[i].value_len);
            int never = i <= 5;
            assert_int_equal(c->out.hdrs[i].flags & TT_HDR_NEVER_INDEX,
                             never ? TT_HDR_NEVER_INDEX : 0);
        }
        /* Only x-plain and the long cookie entered the table. */
        expect_table(c, 2, 32 + 8 + 32 + 48);
        expect_entry(c, 1, "cookie", "a-long-cookie-value-that-is-worth-indexing");
        expect_entry(c, 2, "x-plain", "v");
    }
    tt_hpack_encoder_free(&enc);
    dctx_free(c);
}

/* ---------------------------------------------------- eviction */

static void test_eviction(void **state)
{
    (void)state;
    /* 4096 table: entries of 32 + 8 + 60 = 100 octets, 40 fit. */
    struct tt_hpack_encoder enc;
    assert_int_equal(tt_hpack_encoder_init(&enc, 4096), 0);
    struct dec_ctx *c = dctx_new(4096);
    char names[200][16], values[200][64];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], "x-h%05d", i);
        memset(values[i], 'a' + i % 26, 60);
        values[i][60] = 0;
        snprintf(values[i], 16, "%06d", i);
        values[i][6] = 'z';
    }
    for (int i = 0; i < 200; i++) {
        struct tt_header h = {names[i], values[i], 8, 60, 0};
        assert_int_equal(encode_one(&enc, &h, 1, c), 0);
        uint32_t live = i + 1 < 40 ? (uint32_t)i + 1 : 40;
        expect_table(c, live, live * 100);
        assert_int_equal(enc.table.count, live);
        expect_entry(c, 1, names[i], values[i]);
        expect_entry(c, live, names[i + 1 - live], values[i + 1 - live]);
    }
    /* Re-sending recent fields uses the index: one byte each. */
    tt_buf b;
    tt_buf_init(&b, 0);
    struct tt_header again[3] = {{names[199], values[199], 8, 60, 0},
                                 {names[180], values[180], 8, 60, 0},
                                 {names[160], values[160], 8, 60, 0}};
    assert_int_equal(tt_hpack_encode_block(&enc, again, 3, &b), 0);
    assert_int_equal(tt_buf_len(&b), 3);
    assert_int_equal(tt_hpack_decode_block(&c->dec, tt_buf_data(&b), tt_buf_len(&b), &c->out), 0);
    assert_true(hdr_is(&c->out.hdrs[2], names[160], values[160]));
    tt_buf_free(&b);
    /* An entry bigger than the table empties it (§4.4). */
    static char big[5000];
    memset(big, 'q', sizeof big);
    uint8_t blk[6000];
    size_t n = 0;
    blk[n++] = 0x40;
    blk[n++] = 1;
    blk[n++] = 'q';
    n += tt_hpack_encode_int(blk + n, 0, 7, sizeof big);
    memcpy(blk + n, big, sizeof big);
    n += sizeof big;
    assert_int_equal(tt_hpack_decode_block(&c->dec, blk, n, &c->out), 0);
    expect_table(c, 0, 0);
    tt_hpack_encoder_free(&enc);
    dctx_free(c);
}

/* ------------------------------------------------- size updates */

static void test_size_updates(void **state)
{
    (void)state;
    struct dec_ctx *c = dctx_new(4096);
    assert_int_equal(dec_hex(c, "400161016240016301644001650166"), 0);
    expect_table(c, 3, 3 * 34);
    /* The limit shrinks: the next block must open with an update. */
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 68), 0);
    assert_int_equal(dec_hex(c, "82"), TT_ERR_HPACK);
    dctx_free(c);

    c = dctx_new(4096);
    assert_int_equal(dec_hex(c, "400161016240016301644001650166"), 0);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 68), 0);
    assert_int_equal(dec_hex(c, "3f2582"), 0); /* update to 68: evicts the oldest */
    expect_table(c, 2, 68);
    expect_entry(c, 1, "e", "f");
    expect_entry(c, 2, "c", "d");
    assert_int_equal(dec_hex(c, "82"), 0); /* no longer required */
    assert_int_equal(dec_hex(c, "3f26"), TT_ERR_HPACK); /* 69 > 68 */
    assert_int_equal(dec_hex(c, "3f0182"), 0);           /* 32: fine */
    expect_table(c, 0, 0);
    dctx_free(c);

    /* 4096 -> 0 -> 4096 between blocks: the first update must be <= 0. */
    c = dctx_new(4096);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 0), 0);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 4096), 0);
    assert_int_equal(dec_hex(c, "3fe11f82"), TT_ERR_HPACK);
    dctx_free(c);
    c = dctx_new(4096);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 0), 0);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 4096), 0);
    assert_int_equal(dec_hex(c, "203fe11f82"), 0);
    assert_int_equal(c->dec.table.max_size, 4096);
    dctx_free(c);
    /* A larger limit needs no update. */
    c = dctx_new(4096);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 8192), 0);
    assert_int_equal(dec_hex(c, "82"), 0);
    assert_int_equal(dec_hex(c, "3fe13f82"), 0); /* 8192 now allowed */
    assert_int_equal(c->dec.table.max_size, 8192);
    dctx_free(c);

    /* The encoder emits the updates itself. */
    struct tt_hpack_encoder enc;
    assert_int_equal(tt_hpack_encoder_init(&enc, 4096), 0);
    c = dctx_new(4096);
    struct tt_header h = {"x-a", "b", 3, 1, 0};
    assert_int_equal(encode_one(&enc, &h, 1, c), 0);
    expect_table(c, 1, 36);
    tt_hpack_encoder_set_peer_max(&enc, 0);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 0), 0);
    tt_hpack_encoder_set_peer_max(&enc, 2000);
    assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 2000), 0);
    tt_buf b;
    tt_buf_init(&b, 0);
    assert_int_equal(tt_hpack_encode_block(&enc, &h, 1, &b), 0);
    assert_int_equal(tt_buf_data(&b)[0], 0x20); /* 0 first, then 2000 */
    assert_int_equal(tt_hpack_decode_block(&c->dec, tt_buf_data(&b), tt_buf_len(&b), &c->out), 0);
    expect_hdrs(c, "x-a", "b", NULL);
    assert_int_equal(c->dec.table.max_size, 2000);
    expect_table(c, 1, 36);
    tt_buf_free(&b);
    tt_hpack_encoder_free(&enc);
    dctx_free(c);

    /* own_max 0: the first block says so, nothing is ever indexed. */
    assert_int_equal(tt_hpack_encoder_init(&enc, 0), 0);
    c = dctx_new(4096);
    assert_int_equal(encode_one(&enc, &h, 1, c), 0);
    assert_int_equal(c->dec.table.max_size, 0);
    expect_table(c, 0, 0);
    assert_null(enc.table.entries);
    tt_hpack_encoder_free(&enc);
    dctx_free(c);
}

/* ------------------------------------------------- limits */

static void test_list_size_limit(void **state)
{
    (void)state;
    /* Three indexed literals (34 each) and an indexed field. */
    const char *blk = "40016101624001630164400165016682";
    struct dec_ctx *c = dctx_new(4096);
    c->out.max_list_size = 80;
    assert_int_equal(dec_hex(c, blk), TT_ERR_HEADER_TOO_LARGE);
    expect_table(c, 3, 102); /* still in step */
    c->out.max_list_size = 0;
    assert_int_equal(dec_hex(c, "bebfc0"), 0);
    expect_hdrs(c, "e", "f", "c", "d", "a", "b", NULL);
    dctx_free(c);

    /* Too few header slots. */
    c = dctx_new(4096);
    c->out.hdrs_cap = 2;
    assert_int_equal(dec_hex(c, blk), TT_ERR_HEADER_TOO_LARGE);
    expect_table(c, 3, 102);
    dctx_free(c);

    /* Scratch too small: strings spill, the table still learns them. */
    c = dctx_new(4096);
    c->out.scratch_cap = 3;
    assert_int_equal(dec_hex(c, "400a637573746f6d2d6b65790d637573746f6d2d686561646572"),
                     TT_ERR_HEADER_TOO_LARGE);
    expect_table(c, 1, 55);
    c->out.scratch_cap = sizeof c->scratch;
    expect_entry(c, 1, "custom-key", "custom-header");
    /* Huffman strings too (C.4.1 then C.4.2 against the same table). */
    c->out.scratch_cap = 5;
    assert_int_equal(dec_hex(c, c4_blocks[0]), TT_ERR_HEADER_TOO_LARGE);
    c->out.scratch_cap = sizeof c->scratch;
    expect_entry(c, 1, ":authority", "www.example.com");
    dctx_free(c);

    /* max_string_len */
    c = dctx_new(4096);
    c->dec.max_string_len = 12;
    assert_int_equal(dec_hex(c, "400a637573746f6d2d6b65790d637573746f6d2d686561646572"),
                     TT_ERR_HEADER_TOO_LARGE);
    expect_table(c, 1, 55);
    assert_int_equal(dec_hex(c, "82"), 0);
    dctx_free(c);
}

/* Allocation failure on the first insert is reported, never a crash. */
static void *fail_malloc(size_t s, void *ud)
{
    (void)s;
    (void)ud;
    return NULL;
}
static void *fail_realloc(void *p, size_t s, void *ud)
{
    (void)p;
    (void)s;
    (void)ud;
    return NULL;
}
static void plain_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

static void test_nomem(void **state)
{
    (void)state;
    struct dec_ctx *c = dctx_new(4096);
    struct tt_hpack_encoder enc;
    assert_int_equal(tt_hpack_encoder_init(&enc, 4096), 0);
    static const struct tt_mem_hooks fail = {fail_malloc, fail_realloc, plain_free, NULL};
    tt_mem_set_hooks(&fail);
    assert_int_equal(dec_hex(c, "400161016240016301644001650166"), TT_ERR_NOMEM);
    tt_buf b;
    tt_buf_init(&b, 0);
    struct tt_header h = {"x-a", "b", 3, 1, 0};
    assert_int_equal(tt_hpack_encode_block(&enc, &h, 1, &b), TT_ERR_NOMEM);
    tt_mem_set_hooks(NULL);
    tt_buf_free(&b);
    tt_hpack_encoder_free(&enc);
    dctx_free(c);
}

/* -------------------------------------------- hpack-test-case stories */

static char *testdata_dir(void)
{
    static char path[4096];
    const char *env = getenv("TT_HPACK_TESTDATA");
    const char *cands[] = {env, "../shared/testdata/hpack-test-case",
                           "../../shared/testdata/hpack-test-case"};
    for (size_t i = 0; i < 3; i++) {
        if (!cands[i])
            continue;
        DIR *d = opendir(cands[i]);
        if (d) {
            closedir(d);
            snprintf(path, sizeof path, "%s", cands[i]);
            return path;
        }
    }
    return NULL;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of entries of `dir` starting with `prefix`; NULL-terminated. */
static char **list_dir(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t n = 0, cap = 64;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (n + 1 >= cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmpstr);
    v[n] = NULL;
    return v;
}

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Compares decoded fields with a story's [{"name": "value"}, ...]. */
static int same_headers(const struct tt_hpack_out *o, json_t *want)
{
    if (json_array_size(want) != o->count)
        return 0;
    for (size_t i = 0; i < o->count; i++) {
        json_t *obj = json_array_get(want, i);
        const char *k;
        json_t *v;
        int seen = 0;
        json_object_foreach(obj, k, v)
        {
            const char *s = json_string_value(v);
            size_t sl = json_string_length(v);
            const struct tt_header *h = &o->hdrs[i];
            if (!s || h->name_len != strlen(k) || memcmp(h->name, k, h->name_len) ||
                h->value_len != sl || memcmp(h->value, s, sl))
                return 0;
            seen++;
        }
        if (seen != 1)
            return 0;
    }
    return 1;
}

static void test_stories_decode(void **state)
{
    (void)state;
    char *root = testdata_dir();
    if (!root) {
        printf("hpack-test-case: SKIPPED: ../shared/testdata/hpack-test-case not found "
               "(set TT_HPACK_TESTDATA)\n");
        skip();
    }
    char **impls = list_dir(root, "");
    size_t stories = 0, cases = 0, passed = 0, failed_stories = 0;
    static uint8_t wire[1 << 16];
    for (size_t i = 0; impls[i]; i++) {
        char dir[4600];
        snprintf(dir, sizeof dir, "%s/%s", root, impls[i]);
        char **files = list_dir(dir, "story_");
        for (size_t f = 0; files && files[f]; f++) {
            char path[4800];
            snprintf(path, sizeof path, "%s/%s", dir, files[f]);
            json_error_t jerr;
            json_t *story = json_load_file(path, 0, &jerr);
            assert_non_null(story);
            json_t *cs = json_object_get(story, "cases");
            if (!json_array_size(cs) || !json_object_get(json_array_get(cs, 0), "wire")) {
                json_decref(story);
                continue;
            }
            stories++;
            struct dec_ctx *c = dctx_new(4096);
            int ok_story = 1;
            for (size_t k = 0; k < json_array_size(cs); k++) {
                json_t *cse = json_array_get(cs, k);
                cases++;
                json_t *hts = json_object_get(cse, "header_table_size");
                if (json_is_integer(hts))
                    assert_int_equal(tt_hpack_decoder_set_max_table_size(
                                         &c->dec, (uint32_t)json_integer_value(hts)),
                                     0);
                const char *hex = json_string_value(json_object_get(cse, "wire"));
                size_t n = hex ? strlen(hex) / 2 : 0;
                assert_true(n <= sizeof wire);
                for (size_t b = 0; b < n; b++) {
                    unsigned v;
                    sscanf(hex + 2 * b, "%2x", &v);
                    wire[b] = (uint8_t)v;
                }
                int rc = tt_hpack_decode_block(&c->dec, wire, n, &c->out);
                if (rc == 0 && same_headers(&c->out, json_object_get(cse, "headers"))) {
                    passed++;
                } else {
                    if (ok_story)
                        print_message("story %s case %zu failed (rc %d)\n", path, k, rc);
                    ok_story = 0;
                }
            }
            if (!ok_story)
                failed_stories++;
            dctx_free(c);
            json_decref(story);
        }
        free_list(files);
    }
    free_list(impls);
    printf("hpack-test-case: %zu stories (%zu cases) checked, %zu passed\n", stories, cases,
           passed);
    assert_true(stories > 0);
    assert_int_equal(failed_stories, 0);
    assert_int_equal(passed, cases);
}

/* Encode every raw-data story with our encoder and decode it again. */
struct story_hdrs {
    size_t ncases;
    size_t *counts;
    struct tt_header **hdrs;
};

static void load_raw_story(json_t *story, struct story_hdrs *s)
{
    json_t *cs = json_object_get(story, "cases");
    s->ncases = json_array_size(cs);
    s->counts = calloc(s->ncases, sizeof *s->counts);
    s->hdrs = calloc(s->ncases, sizeof *s->hdrs);
    for (size_t k = 0; k < s->ncases; k++) {
        json_t *hs = json_object_get(json_array_get(cs, k), "headers");
        s->counts[k] = json_array_size(hs);
        s->hdrs[k] = calloc(s->counts[k] + 1, sizeof(struct tt_header));
        for (size_t i = 0; i < s->counts[k]; i++) {
            const char *key;
            json_t *v;
            json_object_foreach(json_array_get(hs, i), key, v)
            {
                s->hdrs[k][i].name = key;
                s->hdrs[k][i].name_len = (uint32_t)strlen(key);
                s->hdrs[k][i].value = json_string_value(v);
                s->hdrs[k][i].value_len = (uint32_t)json_string_length(v);
            }
        }
    }
}

static void free_raw_story(struct story_hdrs *s)
{
    for (size_t k = 0; k < s->ncases; k++)
        free(s->hdrs[k]);
    free(s->hdrs);
    free(s->counts);
}

static void roundtrip_story(const struct story_hdrs *s, uint32_t own, int change, size_t *bytes)
{
    struct tt_hpack_encoder enc;
    assert_int_equal(tt_hpack_encoder_init(&enc, own), 0);
    struct dec_ctx *c = dctx_new(4096);
    tt_buf b;
    tt_buf_init(&b, 0);
    for (size_t k = 0; k < s->ncases; k++) {
        if (change && k == s->ncases / 3) {
            tt_hpack_encoder_set_peer_max(&enc, 512);
            assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 512), 0);
        }
        if (change && k == 2 * s->ncases / 3) {
            /* Down and up again between two blocks: two updates. */
            tt_hpack_encoder_set_peer_max(&enc, 100);
            assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 100), 0);
            tt_hpack_encoder_set_peer_max(&enc, 3000);
            assert_int_equal(tt_hpack_decoder_set_max_table_size(&c->dec, 3000), 0);
        }
        tt_buf_consume(&b, tt_buf_len(&b));
        assert_int_equal(tt_hpack_encode_block(&enc, s->hdrs[k], s->counts[k], &b), 0);
        *bytes += tt_buf_len(&b);
        assert_int_equal(tt_hpack_decode_block(&c->dec, tt_buf_data(&b), tt_buf_len(&b), &c->out),
                         0);
        assert_int_equal(c->out.count, s->counts[k]);
        for (size_t i = 0; i < s->counts[k]; i++) {
            const struct tt_header *w = &s->hdrs[k][i], *g = &c->out.hdrs[i];
            assert_int_equal(g->name_len, w->name_len);
            assert_int_equal(g->value_len, w->value_len);
            assert_memory_equal(g->name, w->name, w->name_len);
            assert_memory_equal(g->value, w->value, w->value_len);
        }
        /* Encoder and decoder agree on the table. */
        assert_int_equal(enc.table.count, c->dec.table.count);
        assert_int_equal(enc.table.size, c->dec.table.size);
    }
    tt_buf_free(&b);
    tt_hpack_encoder_free(&enc);
    dctx_free(c);
}

static void test_stories_roundtrip(void **state)
{
    (void)state;
    char *root = testdata_dir();
    if (!root) {
        printf("hpack-test-case raw-data: SKIPPED: folder not found (set TT_HPACK_TESTDATA)\n");
        skip();
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/raw-data", root);
    char **files = list_dir(dir, "story_");
    assert_non_null(files);
    size_t stories = 0, bytes[4] = {0};
    for (size_t f = 0; files[f]; f++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        json_error_t jerr;
        json_t *story = json_load_file(path, 0, &jerr);
        assert_non_null(story);
        struct story_hdrs s;
        load_raw_story(story, &s);
        roundtrip_story(&s, 0, 0, &bytes[0]);
        roundtrip_story(&s, 256, 0, &bytes[1]);
        roundtrip_story(&s, 4096, 0, &bytes[2]);
        roundtrip_story(&s, 4096, 1, &bytes[3]);
        free_raw_story(&s);
        json_decref(story);
        stories++;
    }
    free_list(files);
    printf("hpack-test-case raw-data: %zu stories round-tripped at tables 0/256/4096/changing: "
           "%zu/%zu/%zu/%zu bytes\n",
           stories, bytes[0], bytes[1], bytes[2], bytes[3]);
    assert_true(stories > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c1_integers),
        cmocka_unit_test(test_c2_literals),
        cmocka_unit_test(test_c3_requests),
        cmocka_unit_test(test_c4_requests_huffman),
        cmocka_unit_test(test_c5_responses),
        cmocka_unit_test(test_c6_responses_huffman),
        cmocka_unit_test(test_huffman_rfc_strings),
        cmocka_unit_test(test_huffman_all_bytes),
        cmocka_unit_test(test_huffman_bad),
        cmocka_unit_test(test_bad_blocks),
        cmocka_unit_test(test_truncated_blocks),
        cmocka_unit_test(test_never_indexed),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_size_updates),
        cmocka_unit_test(test_list_size_limit),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_stories_decode),
        cmocka_unit_test(test_stories_roundtrip),
    };
    return cmocka_run_group_tests_name("hpack", tests, NULL, NULL);
}
