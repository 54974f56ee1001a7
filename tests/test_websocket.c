/*
 * Unit tests of the WebSocket handshake pieces (proto/websocket.h): the
 * accept of RFC 6455's own example, keys that are and are not 16 bytes of
 * base64, and fresh keys (valid, different each time).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/websocket.h"

#include <string.h>

static void test_accept_rfc_example(void **state)
{
    (void)state;
    /* RFC 6455 §1.3 */
    char out[TT_WS_ACCEPT_LEN + 1];
    tt_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_key_valid(void **state)
{
    (void)state;
    assert_true(tt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24));
    assert_false(tt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23));  /* short */
    assert_false(tt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==x", 25)); /* long */
    assert_false(tt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQxx", 24)); /* 18 bytes, no padding */
    assert_false(tt_ws_key_valid("dGhlIHNhbXBsZSBub25j*Q==", 24)); /* not base64 */
    assert_false(tt_ws_key_valid("", 0));
}

static void test_key_new(void **state)
{
    (void)state;
    char a[TT_WS_KEY_LEN + 1], b[TT_WS_KEY_LEN + 1];
    assert_int_equal(tt_ws_key_new(a), 0);
    assert_int_equal(tt_ws_key_new(b), 0);
    assert_int_equal(strlen(a), TT_WS_KEY_LEN);
    assert_true(tt_ws_key_valid(a, strlen(a)));
    assert_true(tt_ws_key_valid(b, strlen(b)));
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_rfc_example),
        cmocka_unit_test(test_key_valid),
        cmocka_unit_test(test_key_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
