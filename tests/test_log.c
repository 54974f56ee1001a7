/* Tests of proto/log: the line format, levels, one line per event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/log.h"

#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr sent to a pipe; returns what was written. */
static size_t capture(void (*fn)(void), char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20); /* room for test_buffered's many lines */
    int saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, cap - 1);
    close(p[0]);
    if (n < 0)
        n = 0;
    out[n] = '\0';
    return (size_t)n;
}

static void log_info_line(void) { tt_log_info("tunnel up name=%s peer=%s", "media", "1.2.3.4:5"); }
static void log_debug_line(void) { tt_log_debug("hidden %d", 1); }
static void log_injection(void) { tt_log_warn("name=%s", "evil\nfake line\r"); }

static void test_format(void **state)
{
    (void)state;
    tt_log_init("/usr/bin/p", TT_LOG_INFO);
    char buf[4096];
    capture(log_info_line, buf, sizeof(buf));
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "p info tunnel up name=media peer=1\\.2\\.3\\.4:5\n$",
                             REG_EXTENDED),
                     0);
    if (regexec(&re, buf, 0, NULL, 0) != 0)
        fail_msg("unexpected line: %s", buf);
    regfree(&re);
}

static void log_json_lines(void)
{
    tt_log_info("access client=%s method=GET path=/a%%20b status=200 bytes=5 end=ok", "1.2.3.4:5");
    tt_log_warn("odd name=%s", "q\"uote\\back\x01\xc3\xa9");
}

/* --log-format json: one object per line, valid whatever the message holds;
 * the key=value pairs as fields, the words before them as the event. */
static void test_json(void **state)
{
    (void)state;
    tt_log_init("p", TT_LOG_INFO);
    tt_log_set_json(1);
    char buf[8192];
    capture(log_json_lines, buf, sizeof(buf));
    tt_log_set_json(0);
    char *second = strchr(buf, '\n');
    assert_non_null(second);
    *second++ = 0;
    json_error_t e;
    json_t *a = json_loads(buf, 0, &e);
    if (!a)
        fail_msg("not JSON (%s): %s", e.text, buf);
    assert_string_equal(json_string_value(json_object_get(a, "prog")), "p");
    assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(a, "event")), "access");
    assert_string_equal(json_string_value(json_object_get(a, "client")), "1.2.3.4:5");
    assert_string_equal(json_string_value(json_object_get(a, "path")), "/a%20b");
    assert_string_equal(json_string_value(json_object_get(a, "status")), "200");
    assert_non_null(strstr(json_string_value(json_object_get(a, "ts")), "Z"));
    json_decref(a);
    json_t *b = json_loads(second, 0, &e);
    if (!b)
        fail_msg("not JSON (%s): %s", e.text, second);
    assert_string_equal(json_string_value(json_object_get(b, "event")), "odd");
    const char *name = json_string_value(json_object_get(b, "name"));
    assert_non_null(name);
    assert_non_null(strstr(name, "q\"uote\\back")); /* quote and backslash kept, escaped */
    assert_null(strchr(name, '\n'));
    json_decref(b);
}

static void test_levels(void **state)
{
    (void)state;
    char buf[4096];
    tt_log_init("c", TT_LOG_INFO);
    assert_int_equal(capture(log_debug_line, buf, sizeof(buf)), 0);
    assert_false(tt_log_enabled(TT_LOG_DEBUG));
    assert_true(tt_log_enabled(TT_LOG_ERROR));
    tt_log_init("c", TT_LOG_DEBUG);
    assert_true(capture(log_debug_line, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, " c debug hidden 1\n"));
    assert_int_equal(tt_log_parse_level("error"), TT_LOG_ERROR);
    assert_int_equal(tt_log_parse_level("warn"), TT_LOG_WARN);
    assert_int_equal(tt_log_parse_level("INFO"), TT_LOG_INFO);
    assert_int_equal(tt_log_parse_level("debug"), TT_LOG_DEBUG);
    assert_int_equal(tt_log_parse_level("loud"), -1);
    assert_int_equal(tt_log_parse_level(""), -1);
}

static void test_one_line(void **state)
{
    (void)state;
    char buf[4096];
    tt_log_init("p", TT_LOG_INFO);
    size_t n = capture(log_injection, buf, sizeof(buf));
    assert_true(n > 0);
    /* Exactly one newline, at the end. */
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
    assert_non_null(strstr(buf, "name=evil?fake line?\n"));
}

/* Buffered mode: info lines wait for tt_log_flush (the loop calls it before
 * it sleeps); a warning flushes them first, so the order holds; many lines
 * come out whole and in order when the buffer fills. */
static void log_buffered_some(void)
{
    tt_log_set_buffered(1);
    tt_log_info("first %d", 1);
    tt_log_info("second %d", 2);
}
static void log_buffered_warn(void)
{
    tt_log_info("third %d", 3);
    tt_log_warn("fourth %d", 4);
}
static void log_flush(void) { tt_log_flush(); }
static void log_many(void)
{
    for (int i = 0; i < 2000; i++)
        tt_log_info("line %04d %s", i, "0123456789012345678901234567890123456789");
    tt_log_set_buffered(0);
}

static void test_buffered(void **state)
{
    (void)state;
    static char buf[1 << 18];
    tt_log_init("p", TT_LOG_INFO);
    assert_int_equal(capture(log_buffered_some, buf, sizeof(buf)), 0);
    assert_true(capture(log_flush, buf, sizeof(buf)) > 0);
    char *a = strstr(buf, " p info first 1\n"), *b = strstr(buf, " p info second 2\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_true(capture(log_buffered_warn, buf, sizeof(buf)) > 0);
    a = strstr(buf, " p info third 3\n");
    b = strstr(buf, " p warn fourth 4\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    size_t n = capture(log_many, buf, sizeof(buf));
    size_t lines = 0;
    const char *p = buf;
    for (int i = 0; i < 2000; i++) {
        char want[96];
        snprintf(want, sizeof(want), " p info line %04d 0123456789012345678901234567890123456789\n", i);
        const char *q = strstr(p, want);
        if (!q)
            fail_msg("line %d missing or out of order", i);
        p = q + strlen(want);
        lines++;
    }
    assert_int_equal(p, buf + n);
    assert_int_equal(lines, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_buffered),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
