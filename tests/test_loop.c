/* Tests of proto/loop: timers, deferred callbacks, descriptors, signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/loop.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* A record of what fired, in order. */
struct trace {
    int seq[32];
    int n;
};

static void trace_add(struct trace *t, int v)
{
    if (t->n < 32)
        t->seq[t->n++] = v;
}

struct ttimer {
    struct tt_timer t;
    struct trace *trace;
    int id;
    int stop_loop;
};

static void on_ttimer(struct tt_loop *loop, struct tt_timer *t)
{
    struct ttimer *tt = t->data;
    trace_add(tt->trace, tt->id);
    if (tt->stop_loop)
        tt_loop_stop(loop);
}

static void test_timers_order(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    assert_non_null(loop);
    struct trace tr = {0};
    static const int after[] = {30, 5, 20, 1, 10, 25, 15};
    struct ttimer ts[7];
    for (int i = 0; i < 7; i++) {
        ts[i] = (struct ttimer){.trace = &tr, .id = after[i]};
        tt_timer_init(&ts[i].t, on_ttimer, &ts[i]);
        assert_false(tt_timer_active(&ts[i].t));
        tt_timer_start(loop, &ts[i].t, (uint64_t)after[i]);
        assert_true(tt_timer_active(&ts[i].t));
    }
    ts[0].stop_loop = 1; /* the last one (30 ms) stops the loop */
    assert_int_equal(tt_loop_run(loop), 0);
    assert_int_equal(tr.n, 7);
    static const int want[] = {1, 5, 10, 15, 20, 25, 30};
    assert_memory_equal(tr.seq, want, sizeof(want));
    for (int i = 0; i < 7; i++)
        assert_false(tt_timer_active(&ts[i].t));
    tt_loop_free(loop);
}

static void test_timers_cancel_rearm(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    struct trace tr = {0};
    struct ttimer a = {.trace = &tr, .id = 1}, b = {.trace = &tr, .id = 2},
                  c = {.trace = &tr, .id = 3}, end = {.trace = &tr, .id = 9, .stop_loop = 1};
    tt_timer_init(&a.t, on_ttimer, &a);
    tt_timer_init(&b.t, on_ttimer, &b);
    tt_timer_init(&c.t, on_ttimer, &c);
    tt_timer_init(&end.t, on_ttimer, &end);
    tt_timer_start(loop, &a.t, 5);
    tt_timer_start(loop, &b.t, 10);
    tt_timer_start(loop, &c.t, 15);
    tt_timer_start(loop, &end.t, 40);
    tt_timer_stop(loop, &b.t);           /* cancelled: never fires */
    tt_timer_stop(loop, &b.t);           /* twice is harmless */
    tt_timer_start(loop, &a.t, 20);      /* re-armed later than c */
    tt_timer_start(loop, &c.t, 15);      /* re-armed in place */
    assert_false(tt_timer_active(&b.t));
    assert_int_equal(tt_loop_run(loop), 0);
    static const int want[] = {3, 1, 9};
    assert_int_equal(tr.n, 3);
    assert_memory_equal(tr.seq, want, sizeof(want));
    tt_loop_free(loop);
}

/* A timer that re-arms itself a few times from its own callback. */
struct repeat {
    struct tt_timer t;
    int count;
    uint64_t first, last;
};

static void on_repeat(struct tt_loop *loop, struct tt_timer *t)
{
    struct repeat *r = t->data;
    if (r->count++ == 0)
        r->first = tt_loop_now(loop);
    r->last = tt_loop_now(loop);
    if (r->count < 5)
        tt_timer_start(loop, t, r->count == 2 ? 0 : 3);
    else
        tt_loop_stop(loop);
}

static void test_timer_rearm_in_callback(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    struct repeat r = {0};
    tt_timer_init(&r.t, on_repeat, &r);
    tt_timer_start(loop, &r.t, 0);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_int_equal(r.count, 5);
    /* The loop clock moves forward, never back. */
    assert_true(r.last >= r.first);
    tt_loop_free(loop);
}

/* --- defer --- */

struct tdefer {
    struct tt_defer d;
    struct trace *trace;
    int id;
    struct tdefer *queue_other; /* queued from inside this callback */
    struct tt_defer *cancel_other;
};

static void on_tdefer(struct tt_loop *loop, struct tt_defer *d)
{
    struct tdefer *td = d->data;
    trace_add(td->trace, td->id);
    if (td->queue_other)
        tt_defer_queue(loop, &td->queue_other->d);
    if (td->cancel_other)
        tt_defer_cancel(loop, td->cancel_other);
}

static void on_stop_timer(struct tt_loop *loop, struct tt_timer *t)
{
    (void)t;
    tt_loop_stop(loop);
}

static void test_defer(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    struct trace tr = {0};
    struct tdefer a = {.trace = &tr, .id = 1}, b = {.trace = &tr, .id = 2},
                  c = {.trace = &tr, .id = 3}, d = {.trace = &tr, .id = 4},
                  e = {.trace = &tr, .id = 5};
    tt_defer_init(&a.d, on_tdefer, &a);
    tt_defer_init(&b.d, on_tdefer, &b);
    tt_defer_init(&c.d, on_tdefer, &c);
    tt_defer_init(&d.d, on_tdefer, &d);
    tt_defer_init(&e.d, on_tdefer, &e);
    a.queue_other = &d;     /* queued while running: runs after the others */
    a.cancel_other = &c.d;  /* cancelled before its turn */
    tt_defer_queue(loop, &a.d);
    tt_defer_queue(loop, &b.d);
    tt_defer_queue(loop, &a.d); /* already queued: once only */
    tt_defer_queue(loop, &c.d);
    tt_defer_queue(loop, &e.d);
    tt_defer_cancel(loop, &e.d); /* the tail, cancelled */
    assert_int_equal(e.d.queued, 0);
    struct tt_timer stop;
    tt_timer_init(&stop, on_stop_timer, NULL);
    tt_timer_start(loop, &stop, 10);
    assert_int_equal(tt_loop_run(loop), 0);
    static const int want[] = {1, 2, 4};
    assert_int_equal(tr.n, 3);
    assert_memory_equal(tr.seq, want, sizeof(want));
    assert_int_equal(a.d.queued, 0);
    tt_loop_free(loop);
}

/* --- io --- */

struct pipe_reader {
    struct tt_io io;
    struct tt_defer after; /* proves defers run after the batch */
    char got[64];
    size_t len;
    int events_seen;
    int defer_ran_after_read;
};

static void on_after(struct tt_loop *loop, struct tt_defer *d)
{
    struct pipe_reader *pr = d->data;
    pr->defer_ran_after_read = pr->len > 0;
    if (pr->len >= 5)
        tt_loop_stop(loop);
}

static void on_pipe_read(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct pipe_reader *pr = io->data;
    pr->events_seen |= (int)events;
    ssize_t n = read(io->fd, pr->got + pr->len, sizeof(pr->got) - pr->len);
    if (n > 0)
        pr->len += (size_t)n;
    tt_defer_queue(loop, &pr->after);
}

struct pipe_writer {
    struct tt_io io;
    const char *msg;
    int writes;
};

static void on_pipe_write(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct pipe_writer *pw = io->data;
    assert_true(events & TT_IO_WRITE);
    assert_int_equal(write(io->fd, pw->msg, strlen(pw->msg)), (ssize_t)strlen(pw->msg));
    pw->writes++;
    /* Writable is level-triggered: stop watching once written. */
    assert_int_equal(tt_io_modify(loop, io, 0), 0);
}

static void test_io_pipe(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    int fds[2];
    assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    struct pipe_reader pr = {0};
    struct pipe_writer pw = {.msg = "hello"};
    tt_defer_init(&pr.after, on_after, &pr);
    assert_int_equal(tt_io_start(loop, &pr.io, fds[0], TT_IO_READ, on_pipe_read, &pr), 0);
    assert_int_equal(tt_io_start(loop, &pw.io, fds[1], TT_IO_WRITE, on_pipe_write, &pw), 0);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_int_equal(pr.len, 5);
    assert_memory_equal(pr.got, "hello", 5);
    assert_int_equal(pw.writes, 1);
    assert_true(pr.events_seen & TT_IO_READ);
    assert_true(pr.defer_ran_after_read);

    /* Closing the write end: the reader hears a hang-up. */
    tt_io_stop(loop, &pw.io);
    close(fds[1]);
    pr.events_seen = 0;
    pr.len = 5;
    struct tt_timer stop;
    tt_timer_init(&stop, on_stop_timer, NULL);
    tt_timer_start(loop, &stop, 50);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_true(pr.events_seen & TT_IO_READ);
    tt_io_stop(loop, &pr.io);
    close(fds[0]);
    tt_loop_free(loop);
}

/* Two readable pipes in one batch: the first callback stops (and poisons)
 * the second io, whose event is still pending. */
struct stopper {
    struct tt_io io;
    struct stopper *victim;
    int calls;
};

static void on_stopper(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)events;
    struct stopper *s = io->data;
    s->calls++;
    char buf[8];
    (void)!read(io->fd, buf, sizeof(buf));
    if (s->victim && s->victim->io.fd >= 0) {
        int fd = s->victim->io.fd;
        tt_io_stop(loop, &s->victim->io);
        close(fd);
        s->victim->io.cb = NULL; /* a dispatch to it would crash */
    }
    tt_loop_stop(loop);
}

static void test_io_stop_inside_callback(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    int p1[2], p2[2];
    assert_int_equal(pipe2(p1, O_NONBLOCK), 0);
    assert_int_equal(pipe2(p2, O_NONBLOCK), 0);
    struct stopper a = {0}, b = {0};
    a.victim = &b;
    b.victim = &a;
    assert_int_equal(tt_io_start(loop, &a.io, p1[0], TT_IO_READ, on_stopper, &a), 0);
    assert_int_equal(tt_io_start(loop, &b.io, p2[0], TT_IO_READ, on_stopper, &b), 0);
    /* Both readable before the loop polls: one batch holds both. */
    assert_int_equal(write(p1[1], "x", 1), 1);
    assert_int_equal(write(p2[1], "y", 1), 1);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_int_equal(a.calls + b.calls, 1);
    struct stopper *alive = a.calls ? &a : &b;
    int alive_fd = alive == &a ? p1[0] : p2[0];
    tt_io_stop(loop, &alive->io);
    close(alive_fd);
    close(p1[1]);
    close(p2[1]);
    tt_loop_free(loop);
}

/* --- signals --- */

struct sigrec {
    int signo;
    int count;
};

static void on_signal(struct tt_loop *loop, int signo, void *data)
{
    struct sigrec *r = data;
    r->signo = signo;
    r->count++;
    tt_loop_stop(loop);
}

static void on_raise(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop, (void)t;
    raise(SIGUSR1);
}

static void test_signal(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    struct sigrec r = {0}, r2 = {0};
    assert_int_equal(tt_loop_on_signal(loop, SIGUSR1, on_signal, &r), 0);
    assert_int_equal(tt_loop_on_signal(loop, SIGUSR2, on_signal, &r2), 0);
    assert_int_equal(tt_loop_on_signal(loop, 0, on_signal, &r), -1);
    struct tt_timer t;
    tt_timer_init(&t, on_raise, NULL);
    tt_timer_start(loop, &t, 1);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.signo, SIGUSR1);
    assert_int_equal(r2.count, 0);
    /* Raised outside the loop: blocked, then delivered by the next run. */
    raise(SIGUSR2);
    assert_int_equal(tt_loop_run(loop), 0);
    assert_int_equal(r2.count, 1);
    assert_int_equal(r2.signo, SIGUSR2);
    tt_loop_free(loop);
}

static void test_now_cached(void **state)
{
    (void)state;
    struct tt_loop *loop = tt_loop_new();
    uint64_t a = tt_loop_now(loop);
    usleep(20000);
    /* No iteration ran: the cached time has not moved. */
    assert_int_equal(tt_loop_now(loop), a);
    tt_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_order),
        cmocka_unit_test(test_timers_cancel_rearm),
        cmocka_unit_test(test_timer_rearm_in_callback),
        cmocka_unit_test(test_defer),
        cmocka_unit_test(test_io_pipe),
        cmocka_unit_test(test_io_stop_inside_callback),
        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_now_cached),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
