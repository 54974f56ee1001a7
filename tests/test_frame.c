/* Frame layer (codec/frame.c): encode/decode round trips of every frame
 * type and the §6 length / stream-id / flag errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec/frame.h"

#include <string.h>

static long decode_one(tt_buf *b, struct tt_frame *f)
{
    struct tt_frame_err e;
    long n = tt_frame_decode(tt_buf_data(b), tt_buf_len(b), TT_H2_MAX_FRAME_SIZE, f, &e);
    assert_true(n > 0);
    /* Every shorter prefix is "need more". */
    for (long k = 0; k < n; k++)
        assert_int_equal(tt_frame_decode(tt_buf_data(b), (size_t)k, TT_H2_MAX_FRAME_SIZE, f, &e), 0);
    n = tt_frame_decode(tt_buf_data(b), tt_buf_len(b), TT_H2_MAX_FRAME_SIZE, f, &e);
    tt_buf_consume(b, (size_t)n);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    tt_buf b;
    tt_buf_init(&b, 0);
    struct tt_frame f;

    assert_int_equal(tt_frame_pack_data(&b, 3, "hello", 5, 1, 0), 0);
    assert_int_equal(decode_one(&b, &f), 14);
    assert_int_equal(f.hdr.type, TT_H2_DATA);
    assert_int_equal(f.hdr.sid, 3);
    assert_int_equal(f.hdr.flags, TT_FLAG_END_STREAM);
    assert_int_equal(f.data.len, 5);
    assert_memory_equal(f.data.base, "hello", 5);

    assert_int_equal(tt_frame_pack_data(&b, 5, "abc", 3, 0, 10), 0);
    assert_int_equal(decode_one(&b, &f), 9 + 13);
    assert_int_equal(f.pad_len, 9);
    assert_int_equal(f.data.len, 3);
    assert_memory_equal(f.data.base, "abc", 3);

    struct tt_frame_priority pr = {7, 200, 1};
    assert_int_equal(tt_frame_pack_headers(&b, 9, "\x82\x84", 2, 1, 1, &pr, 4), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_HEADERS);
    assert_int_equal(f.hdr.flags,
                     TT_FLAG_END_STREAM | TT_FLAG_END_HEADERS | TT_FLAG_PADDED | TT_FLAG_PRIORITY);
    assert_true(f.has_priority);
    assert_int_equal(f.priority.dependency, 7);
    assert_int_equal(f.priority.weight, 200);
    assert_int_equal(f.priority.exclusive, 1);
    assert_int_equal(f.pad_len, 3);
    assert_int_equal(f.data.len, 2);
    assert_memory_equal(f.data.base, "\x82\x84", 2);

    assert_int_equal(tt_frame_pack_continuation(&b, 9, "xyz", 3, 1), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_CONTINUATION);
    assert_int_equal(f.hdr.flags, TT_FLAG_END_HEADERS);
    assert_memory_equal(f.data.base, "xyz", 3);

    assert_int_equal(tt_frame_pack_priority(&b, 11, &pr), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_PRIORITY);
    assert_int_equal(f.priority.dependency, 7);
    assert_int_equal(f.priority.weight, 200);

    assert_int_equal(tt_frame_pack_rst(&b, 13, TT_H2_CANCEL), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_RST_STREAM);
    assert_int_equal(f.error_code, TT_H2_CANCEL);

    struct tt_setting s[3] = {{TT_SETTINGS_ENABLE_PUSH, 0},
                              {TT_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
                              {0x99, 12345}};
    assert_int_equal(tt_frame_pack_settings(&b, s, 3), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_SETTINGS);
    assert_int_equal(f.nsettings, 3);
    for (uint32_t i = 0; i < 3; i++) {
        struct tt_setting g;
        tt_frame_setting(f.settings, i, &g);
        assert_int_equal(g.id, s[i].id);
        assert_int_equal(g.value, s[i].value);
    }
    assert_int_equal(tt_frame_pack_settings_ack(&b), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.flags, TT_FLAG_ACK);
    assert_int_equal(f.hdr.length, 0);

    assert_int_equal(tt_frame_pack_push_promise(&b, 1, 2, "ab", 2, 1), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_PUSH_PROMISE);
    assert_int_equal(f.promised_sid, 2);
    assert_memory_equal(f.data.base, "ab", 2);

    assert_int_equal(tt_frame_pack_ping(&b, 1, 0x0102030405060708ull), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_PING);
    assert_int_equal(f.hdr.flags, TT_FLAG_ACK);
    assert_true(f.opaque == 0x0102030405060708ull);

    assert_int_equal(tt_frame_pack_goaway(&b, 77, TT_H2_ENHANCE_YOUR_CALM, "calm", 4), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_GOAWAY);
    assert_int_equal(f.last_sid, 77);
    assert_int_equal(f.error_code, TT_H2_ENHANCE_YOUR_CALM);
    assert_int_equal(f.data.len, 4);
    assert_memory_equal(f.data.base, "calm", 4);

    assert_int_equal(tt_frame_pack_window_update(&b, 0, TT_H2_MAX_WINDOW), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.type, TT_H2_WINDOW_UPDATE);
    assert_int_equal(f.increment, TT_H2_MAX_WINDOW);
    assert_int_equal(tt_buf_len(&b), 0);
    tt_buf_free(&b);
}

static void test_header_block_split(void **state)
{
    (void)state;
    uint8_t block[40000];
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (uint8_t)i;
    tt_buf b;
    tt_buf_init(&b, 0);
    assert_int_equal(tt_frame_pack_header_block(&b, 1, block, sizeof(block), 1, 16384), 0);
    struct tt_frame f;
    uint8_t got[40000];
    size_t off = 0;
    int n = 0;
    while (tt_buf_len(&b)) {
        decode_one(&b, &f);
        assert_int_equal(f.hdr.type, n == 0 ? TT_H2_HEADERS : TT_H2_CONTINUATION);
        assert_int_equal(!!(f.hdr.flags & TT_FLAG_END_STREAM), n == 0);
        memcpy(got + off, f.data.base, f.data.len);
        off += f.data.len;
        assert_int_equal(!!(f.hdr.flags & TT_FLAG_END_HEADERS), off == sizeof(block));
        n++;
    }
    assert_int_equal(n, 3);
    assert_memory_equal(got, block, sizeof(block));
    /* An empty block is one HEADERS with END_HEADERS. */
    assert_int_equal(tt_frame_pack_header_block(&b, 1, "", 0, 0, 16384), 0);
    decode_one(&b, &f);
    assert_int_equal(f.hdr.flags, TT_FLAG_END_HEADERS);
    tt_buf_free(&b);
}

static void test_cap(void **state)
{
    (void)state;
    tt_buf b;
    tt_buf_init(&b, 20);
    assert_int_equal(tt_frame_pack_ping(&b, 0, 1), 0);
    assert_int_equal(tt_frame_pack_ping(&b, 0, 1), TT_ERR_NOMEM);
    assert_int_equal(tt_buf_len(&b), 17);
    tt_buf_free(&b);
}

struct err_case {
    const char *name;
    uint32_t len;
    uint8_t type, flags;
    uint32_t sid;
    const char *payload; /* NULL: zeros */
    int want;            /* 0 ok, 1 conn error, 2 stream error */
    uint32_t code;
};

static const struct err_case err_cases[] = {
    {"DATA on stream 0", 1, TT_H2_DATA, 0, 0, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"DATA padded, no pad byte", 0, TT_H2_DATA, TT_FLAG_PADDED, 1, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"DATA pad too long", 3, TT_H2_DATA, TT_FLAG_PADDED, 1, "\x03xx", 1, TT_H2_PROTOCOL_ERROR},
    {"DATA pad exactly fills", 3, TT_H2_DATA, TT_FLAG_PADDED, 1, "\x02xx", 0, 0},
    {"HEADERS on stream 0", 1, TT_H2_HEADERS, 4, 0, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"HEADERS priority short", 4, TT_H2_HEADERS, TT_FLAG_PRIORITY, 1, NULL, 1,
     TT_H2_FRAME_SIZE_ERROR},
    {"HEADERS padded+priority short", 5, TT_H2_HEADERS, TT_FLAG_PRIORITY | TT_FLAG_PADDED, 1, NULL,
     1, TT_H2_FRAME_SIZE_ERROR},
    {"HEADERS pad too long", 2, TT_H2_HEADERS, TT_FLAG_PADDED, 1, "\x02x", 1, TT_H2_PROTOCOL_ERROR},
    {"PRIORITY on stream 0", 5, TT_H2_PRIORITY, 0, 0, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"PRIORITY length 4", 4, TT_H2_PRIORITY, 0, 1, NULL, 2, TT_H2_FRAME_SIZE_ERROR},
    {"PRIORITY length 6", 6, TT_H2_PRIORITY, 0, 1, NULL, 2, TT_H2_FRAME_SIZE_ERROR},
    {"RST_STREAM on stream 0", 4, TT_H2_RST_STREAM, 0, 0, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"RST_STREAM length 3", 3, TT_H2_RST_STREAM, 0, 1, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"RST_STREAM length 5", 5, TT_H2_RST_STREAM, 0, 1, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"SETTINGS on stream 1", 0, TT_H2_SETTINGS, 0, 1, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"SETTINGS length 5", 5, TT_H2_SETTINGS, 0, 0, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"SETTINGS ACK with payload", 6, TT_H2_SETTINGS, TT_FLAG_ACK, 0, NULL, 1,
     TT_H2_FRAME_SIZE_ERROR},
    {"PUSH_PROMISE on stream 0", 4, TT_H2_PUSH_PROMISE, 0, 0, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"PUSH_PROMISE short", 3, TT_H2_PUSH_PROMISE, 0, 1, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"PING on stream 1", 8, TT_H2_PING, 0, 1, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"PING length 7", 7, TT_H2_PING, 0, 0, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"PING length 9", 9, TT_H2_PING, 0, 0, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"GOAWAY on stream 1", 8, TT_H2_GOAWAY, 0, 1, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"GOAWAY length 7", 7, TT_H2_GOAWAY, 0, 0, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"WINDOW_UPDATE length 3", 3, TT_H2_WINDOW_UPDATE, 0, 0, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"WINDOW_UPDATE length 5 on stream", 5, TT_H2_WINDOW_UPDATE, 0, 3, NULL, 1,
     TT_H2_FRAME_SIZE_ERROR},
    {"CONTINUATION on stream 0", 0, TT_H2_CONTINUATION, 0, 0, NULL, 1, TT_H2_PROTOCOL_ERROR},
    {"frame over max size", 16385, TT_H2_DATA, 0, 1, NULL, 1, TT_H2_FRAME_SIZE_ERROR},
    {"unknown type passes", 3, 0x42, 0xff, 0, NULL, 0, 0},
    {"unknown flags pass", 8, TT_H2_PING, 0xfe, 0, NULL, 0, 0},
};

static void test_errors(void **state)
{
    (void)state;
    static uint8_t buf[TT_FRAME_HEADER_LEN + 17000];
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *k = &err_cases[i];
        memset(buf, 0, sizeof(buf));
        tt_frame_pack_header(buf, k->len, k->type, k->flags, k->sid);
        if (k->payload)
            memcpy(buf + 9, k->payload, k->len);
        struct tt_frame f;
        struct tt_frame_err e = {0, 0, NULL};
        long n = tt_frame_decode(buf, 9 + k->len, 16384, &f, &e);
        if (k->want == 0) {
            if (n != (long)(9 + k->len))
                fail_msg("%s: want ok, got %ld (%s)", k->name, n, e.desc ? e.desc : "");
            continue;
        }
        if (n != -1)
            fail_msg("%s: want an error, got %ld", k->name, n);
        if (e.conn != (k->want == 1) || e.code != k->code)
            fail_msg("%s: got conn=%d code=%s", k->name, e.conn, tt_h2_strerror(e.code));
        assert_non_null(e.desc);
    }
}

static void test_setting_ranges(void **state)
{
    (void)state;
    struct tt_frame_err e;
    struct {
        uint16_t id;
        uint32_t v;
        int client;
        int ok;
        uint32_t code;
    } cases[] = {
        {TT_SETTINGS_ENABLE_PUSH, 0, 1, 1, 0},
        {TT_SETTINGS_ENABLE_PUSH, 1, 0, 1, 0},
        {TT_SETTINGS_ENABLE_PUSH, 1, 1, 0, TT_H2_PROTOCOL_ERROR},
        {TT_SETTINGS_ENABLE_PUSH, 2, 0, 0, TT_H2_PROTOCOL_ERROR},
        {TT_SETTINGS_INITIAL_WINDOW_SIZE, 0x7fffffff, 0, 1, 0},
        {TT_SETTINGS_INITIAL_WINDOW_SIZE, 0x80000000u, 0, 0, TT_H2_FLOW_CONTROL_ERROR},
        {TT_SETTINGS_MAX_FRAME_SIZE, 16383, 0, 0, TT_H2_PROTOCOL_ERROR},
        {TT_SETTINGS_MAX_FRAME_SIZE, 16384, 0, 1, 0},
        {TT_SETTINGS_MAX_FRAME_SIZE, 16777215, 0, 1, 0},
        {TT_SETTINGS_MAX_FRAME_SIZE, 16777216, 0, 0, TT_H2_PROTOCOL_ERROR},
        {TT_SETTINGS_ENABLE_CONNECT_PROTOCOL, 2, 0, 0, TT_H2_PROTOCOL_ERROR},
        {0xabcd, 0xffffffffu, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tt_setting s = {cases[i].id, cases[i].v};
        int rc = tt_frame_check_setting(&s, cases[i].client, &e);
        assert_int_equal(rc == 0, cases[i].ok);
        if (!cases[i].ok) {
            assert_int_equal(e.conn, 1);
            assert_int_equal(e.code, cases[i].code);
        }
    }
}

static void test_reserved_bit(void **state)
{
    (void)state;
    uint8_t p[9] = {0, 0, 4, TT_H2_WINDOW_UPDATE, 0, 0x80, 0, 0, 5};
    struct tt_frame_hdr h;
    tt_frame_parse_header(p, &h);
    assert_int_equal(h.sid, 5);
    assert_int_equal(h.length, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_header_block_split),
        cmocka_unit_test(test_cap),            cmocka_unit_test(test_errors),
        cmocka_unit_test(test_setting_ranges), cmocka_unit_test(test_reserved_bit),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
