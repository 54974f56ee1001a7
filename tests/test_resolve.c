/*
 * Tests of proto/resolve: numeric addresses without a thread, names in a
 * helper thread, the timeout, cancel, and owners that go away.
 *
 * Names are only ever "localhost" (from /etc/hosts: no network needed).  A
 * slow resolver is made with the test-only TT_RESOLVE_DELAY_MS (resolve.h).
 * Each test ends by waiting for every helper thread, so that ASan/LSan see
 * none left running and nothing leaked, abandoned lookups included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/loop.h"
#include "proto/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define GUARD_MS 20000u /* a test that hangs fails instead */

struct answer {
    int calls;
    int family;       /* of the first address */
    char addr[64];    /* the first address, as text */
    char why[160];
    int stop;         /* stop the loop once `stop` answers came */
    struct tt_loop *loop;
    int *inside_start; /* set while tt_resolve_start runs */
};

static void first_addr(const struct addrinfo *ai, char *out, size_t outlen)
{
    const void *p = ai->ai_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, p, out, (socklen_t)outlen);
}

static void on_answer(void *arg, struct addrinfo *res, const char *why)
{
    struct answer *a = arg;
    if (a->inside_start)
        assert_int_equal(*a->inside_start, 0); /* never during start */
    a->calls++;
    if (res) {
        assert_null(why);
        a->family = res->ai_family;
        first_addr(res, a->addr, sizeof a->addr);
        assert_int_equal(res->ai_socktype, SOCK_STREAM);
        freeaddrinfo(res);
    } else {
        assert_non_null(why);
        snprintf(a->why, sizeof a->why, "%s", why);
    }
    if (a->stop && a->calls >= a->stop)
        tt_loop_stop(a->loop);
}

static void on_guard(struct tt_loop *loop, struct tt_timer *t)
{
    int *fired = t->data;
    *fired = 1;
    tt_loop_stop(loop);
}

/* Runs the loop until something stops it, or for at most `ms`.  Returns 1
 * when the guard timer stopped it. */
static int run_for(struct tt_loop *loop, uint64_t ms)
{
    int fired = 0;
    struct tt_timer guard;
    tt_timer_init(&guard, on_guard, &fired);
    tt_timer_start(loop, &guard, ms);
    assert_int_equal(tt_loop_run(loop), 0);
    tt_timer_stop(loop, &guard);
    return fired;
}

static int setup(void **state)
{
    unsetenv("TT_RESOLVE_DELAY_MS");
    struct tt_loop *loop = tt_loop_new();
    if (!loop)
        return -1;
    *state = loop;
    return 0;
}

static int teardown(void **state)
{
    /* No helper thread outlives a test, abandoned ones included. */
    int left = tt_resolve_wait_threads(GUARD_MS);
    tt_loop_free(*state);
    unsetenv("TT_RESOLVE_DELAY_MS");
    return left;
}

static void test_numeric_v4(void **state)
{
    struct tt_loop *loop = *state;
    int inside = 1;
    struct answer a = {.stop = 1, .loop = loop, .inside_start = &inside};
    struct tt_resolve *r = tt_resolve_start(loop, "127.0.0.1", "7443", 1000, on_answer, &a);
    inside = 0;
    assert_non_null(r);
    /* No thread for an address. */
    assert_int_equal(tt_resolve_threads(), 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(run_for(loop, GUARD_MS), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.family, AF_INET);
    assert_string_equal(a.addr, "127.0.0.1");
}

static void test_numeric_v6(void **state)
{
    struct tt_loop *loop = *state;
    struct answer a = {.stop = 1, .loop = loop};
    /* Even with a slow resolver an address answers at once. */
    setenv("TT_RESOLVE_DELAY_MS", "60000", 1);
    assert_non_null(tt_resolve_start(loop, "::1", "80", 1000, on_answer, &a));
    assert_int_equal(tt_resolve_threads(), 0);
    assert_int_equal(run_for(loop, GUARD_MS), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.family, AF_INET6);
    assert_string_equal(a.addr, "::1");
}

static void test_numeric_helper(void **state)
{
    (void)state;
    struct addrinfo *ai = NULL;
    assert_int_equal(tt_resolve_numeric("10.1.2.3", "8080", &ai), 0);
    assert_non_null(ai);
    assert_int_equal(ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port), 8080);
    freeaddrinfo(ai);
    assert_int_equal(tt_resolve_numeric("localhost", "8080", &ai), -1);
    assert_null(ai);
}

static void test_name_in_thread(void **state)
{
    struct tt_loop *loop = *state;
    int inside = 1;
    struct answer a = {.stop = 1, .loop = loop, .inside_start = &inside};
    struct tt_resolve *r = tt_resolve_start(loop, "localhost", "7443", 10000, on_answer, &a);
    inside = 0;
    assert_non_null(r);
    assert_int_equal(a.calls, 0);
    assert_int_equal(run_for(loop, GUARD_MS), 0);
    assert_int_equal(a.calls, 1);
    /* localhost is in /etc/hosts; which family comes first is the
     * system's choice. */
    assert_true(strcmp(a.addr, "127.0.0.1") == 0 || strcmp(a.addr, "::1") == 0);
}

/* The loop keeps running while a lookup hangs: a timer due long before the
 * lookup ends fires on time, and the lookup then times out. */
static void test_timeout_loop_not_blocked(void **state)
{
    struct tt_loop *loop = *state;
    setenv("TT_RESOLVE_DELAY_MS", "3000", 1);
    struct answer a = {.stop = 1, .loop = loop};
    assert_non_null(tt_resolve_start(loop, "localhost", "7443", 200, on_answer, &a));
    assert_int_equal(tt_resolve_threads(), 1);
    int fired = 0;
    struct tt_timer t;
    tt_timer_init(&t, on_guard, &fired);
    tt_timer_start(loop, &t, 10);
    assert_int_equal(tt_loop_run(loop), 0); /* stopped by the 10 ms timer */
    assert_int_equal(fired, 1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(run_for(loop, GUARD_MS), 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.why, "timed out");
    /* The abandoned thread is still asleep; it ends alone and frees what
     * it found (teardown waits for it: LSan would see a leak). */
}

static void test_cancel(void **state)
{
    struct tt_loop *loop = *state;
    setenv("TT_RESOLVE_DELAY_MS", "300", 1);
    struct answer a = {.loop = loop};
    struct tt_resolve *r = tt_resolve_start(loop, "localhost", "7443", 10000, on_answer, &a);
    assert_non_null(r);
    tt_resolve_cancel(r);
    /* Past the thread's end: its answer must go nowhere. */
    assert_int_equal(tt_resolve_wait_threads(GUARD_MS), 0);
    assert_int_equal(run_for(loop, 100), 1);
    assert_int_equal(a.calls, 0);

    /* A numeric lookup cancelled before its deferred answer. */
    r = tt_resolve_start(loop, "127.0.0.1", "7443", 10000, on_answer, &a);
    assert_non_null(r);
    tt_resolve_cancel(r);
    assert_int_equal(run_for(loop, 50), 1);
    assert_int_equal(a.calls, 0);
    tt_resolve_cancel(NULL); /* allowed */
}

/* The owner is freed right after cancel, while the thread still runs (the
 * dialer on SIGTERM): ASan would catch a write into it. */
static void test_cancel_owner_freed(void **state)
{
    struct tt_loop *loop = *state;
    setenv("TT_RESOLVE_DELAY_MS", "200", 1);
    struct tt_resolve *rs[8];
    for (int i = 0; i < 8; i++) {
        struct answer *a = calloc(1, sizeof *a);
        assert_non_null(a);
        rs[i] = tt_resolve_start(loop, "localhost", "7443", 10000, on_answer, a);
        assert_non_null(rs[i]);
        tt_resolve_cancel(rs[i]);
        free(a);
    }
    assert_int_equal(tt_resolve_wait_threads(GUARD_MS), 0);
    assert_int_equal(run_for(loop, 50), 1);
}

/* The reconnect pattern: a new lookup started from the callback. */
struct chain {
    struct tt_loop *loop;
    int left;
    int answers;
};

static void on_chain(void *arg, struct addrinfo *res, const char *why)
{
    struct chain *c = arg;
    assert_non_null(res);
    assert_null(why);
    freeaddrinfo(res);
    c->answers++;
    if (--c->left == 0) {
        tt_loop_stop(c->loop);
        return;
    }
    const char *host = (c->left % 2) ? "localhost" : "127.0.0.1";
    assert_non_null(tt_resolve_start(c->loop, host, "1", 10000, on_chain, c));
}

static void test_restart_from_callback(void **state)
{
    struct tt_loop *loop = *state;
    struct chain c = {.loop = loop, .left = 6};
    assert_non_null(tt_resolve_start(loop, "localhost", "1", 10000, on_chain, &c));
    assert_int_equal(run_for(loop, GUARD_MS), 0);
    assert_int_equal(c.answers, 6);
}

static void test_many_at_once(void **state)
{
    struct tt_loop *loop = *state;
    struct answer a = {.stop = 16, .loop = loop};
    for (int i = 0; i < 16; i++)
        assert_non_null(tt_resolve_start(loop, i % 4 ? "localhost" : "::1", "443", 10000,
                                         on_answer, &a));
    assert_int_equal(run_for(loop, GUARD_MS), 0);
    assert_int_equal(a.calls, 16);
}

static void test_bad_input(void **state)
{
    struct tt_loop *loop = *state;
    char host[300];
    memset(host, 'a', sizeof host - 1);
    host[sizeof host - 1] = 0;
    struct answer a = {0};
    errno = 0;
    assert_null(tt_resolve_start(loop, host, "80", 1000, on_answer, &a));
    assert_int_equal(errno, ENAMETOOLONG);
    assert_null(tt_resolve_start(loop, "", "80", 1000, on_answer, &a));
    assert_int_equal(tt_resolve_threads(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_numeric_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numeric_v6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numeric_helper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_in_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_loop_not_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_owner_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests_name("resolve", tests, NULL, NULL);
}
