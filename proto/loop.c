/*
 * The event loop.
 *
 * One iteration: wait in epoll_wait (level-triggered) for at most the time to
 * the earliest timer (0 when deferred callbacks are queued), cache the
 * monotonic clock, dispatch the batch of events, fire the timers that are
 * due, then run the deferred callbacks.  Deferred callbacks are how writes
 * are coalesced: many submits in one batch end in one flush.
 *
 * Stopping an io inside a callback: the batch of epoll events is kept in
 * the loop, and tt_io_stop() clears the entries of the stopped io that are
 * still to be dispatched, so its owner may free it right away.
 *
 * Timers live in a binary min-heap ordered by their deadline; each timer
 * knows its slot (heap_index) so stop and re-arm are O(log n).  Timers with
 * equal deadlines fire in no particular order.
 *
 * Signals are blocked and read from one signalfd watched like any fd.
 */
#include "loop.h"
#include "log.h"

#include "codec/buf.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256
/* Deferred callbacks run per iteration before the loop polls again, so that
 * a callback that keeps re-queuing itself cannot starve the descriptors. */
#define LOOP_MAX_DEFERS 4096

struct loop_signal {
    tt_signal_cb cb;
    void *data;
};

struct tt_loop {
    int epfd;
    int stopped;
    uint64_t now_ms;

    /* The batch being dispatched; tt_io_stop() clears its entries. */
    struct epoll_event events[LOOP_MAX_EVENTS];
    int nevents;
    int cur_event;

    struct tt_timer **heap;
    size_t heap_len, heap_cap;

    struct tt_defer *defer_head, *defer_tail;
    struct tt_defer *next_head, *next_tail; /* tt_defer_queue_next */

    int sigfd;
    sigset_t sigmask;
    struct tt_io sig_io;
    struct loop_signal signals[_NSIG];
};

static uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct tt_loop *tt_loop_new(void)
{
    struct tt_loop *loop = tt_mem_calloc(1, sizeof(*loop));
    if (!loop) {
        errno = ENOMEM;
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        int e = errno;
        tt_mem_free(loop);
        errno = e;
        return NULL;
    }
    loop->sigfd = -1;
    sigemptyset(&loop->sigmask);
    loop->now_ms = loop_clock_ms();
    /* A peer that goes away makes write() raise SIGPIPE, which would kill
     * the process; every program on this loop wants EPIPE instead.  Only
     * the default disposition is replaced. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    return loop;
}

void tt_loop_free(struct tt_loop *loop)
{
    if (!loop)
        return;
    if (loop->sigfd >= 0) {
        tt_io_stop(loop, &loop->sig_io);
        close(loop->sigfd);
    }
    for (size_t i = 0; i < loop->heap_len; i++)
        loop->heap[i]->heap_index = SIZE_MAX;
    for (struct tt_defer *d = loop->defer_head; d; d = d->next)
        d->queued = 0;
    for (struct tt_defer *d = loop->next_head; d; d = d->next)
        d->queued = 0;
    tt_mem_free(loop->heap);
    close(loop->epfd);
    tt_mem_free(loop);
}

uint64_t tt_loop_now(struct tt_loop *loop) { return loop->now_ms; }

void tt_loop_stop(struct tt_loop *loop) { loop->stopped = 1; }

/* --- Descriptors ------------------------------------------------------- */

static uint32_t io_epoll_events(unsigned events)
{
    uint32_t e = 0;
    if (events & TT_IO_READ)
        e |= EPOLLIN;
    if (events & TT_IO_WRITE)
        e |= EPOLLOUT;
    return e;
}

/* An io watching nothing is kept out of the epoll set: epoll reports
 * EPOLLHUP/EPOLLERR whatever the mask, which a level-triggered loop would
 * report again and again to an owner that asked for nothing. */
static int io_ctl(struct tt_loop *loop, struct tt_io *io, unsigned old, unsigned events)
{
    struct epoll_event ev = {.events = io_epoll_events(events), .data.ptr = io};
    if (old == 0 && events == 0)
        return 0;
    if (old == 0)
        return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev);
    if (events == 0)
        return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

int tt_io_start(struct tt_loop *loop, struct tt_io *io, int fd, unsigned events, tt_io_cb cb,
                void *data)
{
    io->fd = fd;
    io->cb = cb;
    io->data = data;
    io->events = 0;
    events &= TT_IO_READ | TT_IO_WRITE;
    if (io_ctl(loop, io, 0, events) < 0) {
        io->fd = -1;
        return -1;
    }
    io->events = events;
    return 0;
}

int tt_io_modify(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    events &= TT_IO_READ | TT_IO_WRITE;
    if (io->fd < 0)
        return -1;
    if (events == io->events)
        return 0;
    if (io_ctl(loop, io, io->events, events) < 0)
        return -1;
    io->events = events;
    return 0;
}

void tt_io_stop(struct tt_loop *loop, struct tt_io *io)
{
    if (io->fd >= 0 && io->events != 0)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->events = 0;
    io->fd = -1;
    /* Forget events of this io not yet dispatched in the current batch. */
    for (int i = loop->cur_event; i < loop->nevents; i++)
        if (loop->events[i].data.ptr == io)
            loop->events[i].data.ptr = NULL;
}

/* --- Timers ------------------------------------------------------------ */

static void heap_set(struct tt_loop *loop, size_t i, struct tt_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = i;
}

static void heap_up(struct tt_loop *loop, size_t i)
{
    struct tt_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->when_ms <= t->when_ms)
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct tt_loop *loop, size_t i)
{
    struct tt_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len &&
            loop->heap[child + 1]->when_ms < loop->heap[child]->when_ms)
            child++;
        if (t->when_ms <= loop->heap[child]->when_ms)
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, t);
}

static void heap_remove(struct tt_loop *loop, struct tt_timer *t)
{
    size_t i = t->heap_index;
    struct tt_timer *last = loop->heap[--loop->heap_len];
    t->heap_index = SIZE_MAX;
    if (last == t)
        return;
    heap_set(loop, i, last);
    if (i > 0 && loop->heap[(i - 1) / 2]->when_ms > last->when_ms)
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

void tt_timer_init(struct tt_timer *t, tt_timer_cb cb, void *data)
{
    t->when_ms = 0;
    t->heap_index = SIZE_MAX;
    t->cb = cb;
    t->data = data;
}

int tt_timer_active(const struct tt_timer *t) { return t->heap_index != SIZE_MAX; }

void tt_timer_start(struct tt_loop *loop, struct tt_timer *t, uint64_t after_ms)
{
    if (tt_timer_active(t))
        heap_remove(loop, t);
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct tt_timer **h = tt_mem_realloc(loop->heap, cap * sizeof(*h));
        if (!h) {
            /* The heap cannot grow: there is no way to report it through
             * this void API, and losing a timer silently would hang a
             * connection forever.  Out of memory here is fatal. */
            abort();
        }
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->when_ms = loop->now_ms + after_ms;
    loop->heap[loop->heap_len] = t;
    t->heap_index = loop->heap_len++;
    heap_up(loop, t->heap_index);
}

void tt_timer_stop(struct tt_loop *loop, struct tt_timer *t)
{
    if (tt_timer_active(t))
        heap_remove(loop, t);
}

static void loop_run_timers(struct tt_loop *loop)
{
    /* A timer re-armed with 0 inside its callback is due again at once; the
     * bound makes it wait for the next iteration instead of spinning here. */
    size_t budget = loop->heap_len;
    while (budget-- > 0 && loop->heap_len > 0 && !loop->stopped) {
        struct tt_timer *t = loop->heap[0];
        if (t->when_ms > loop->now_ms)
            break;
        heap_remove(loop, t);
        t->cb(loop, t);
    }
}

/* --- Deferred callbacks ------------------------------------------------ */

void tt_defer_init(struct tt_defer *d, tt_defer_cb cb, void *data)
{
    d->next = NULL;
    d->queued = 0;
    d->cb = cb;
    d->data = data;
}

enum { DEFER_NOW = 1, DEFER_NEXT = 2 }; /* tt_defer.queued: on which list */

static void defer_append(struct tt_defer **head, struct tt_defer **tail, struct tt_defer *d)
{
    d->next = NULL;
    if (*tail)
        (*tail)->next = d;
    else
        *head = d;
    *tail = d;
}

void tt_defer_queue(struct tt_loop *loop, struct tt_defer *d)
{
    if (d->queued)
        return;
    d->queued = DEFER_NOW;
    defer_append(&loop->defer_head, &loop->defer_tail, d);
}

void tt_defer_queue_next(struct tt_loop *loop, struct tt_defer *d)
{
    if (d->queued)
        return;
    d->queued = DEFER_NEXT;
    defer_append(&loop->next_head, &loop->next_tail, d);
}

void tt_defer_cancel(struct tt_loop *loop, struct tt_defer *d)
{
    if (!d->queued)
        return;
    struct tt_defer **head = d->queued == DEFER_NOW ? &loop->defer_head : &loop->next_head;
    struct tt_defer **tail = d->queued == DEFER_NOW ? &loop->defer_tail : &loop->next_tail;
    struct tt_defer *prev = NULL;
    for (struct tt_defer *x = *head; x; prev = x, x = x->next) {
        if (x != d)
            continue;
        if (prev)
            prev->next = d->next;
        else
            *head = d->next;
        if (*tail == d)
            *tail = prev;
        break;
    }
    d->queued = 0;
    d->next = NULL;
}

/* The next iteration's share: behind what is queued now, and the loop
 * polls (without sleeping) before it runs. */
static void loop_take_next(struct tt_loop *loop)
{
    for (struct tt_defer *d = loop->next_head; d; d = d->next)
        d->queued = DEFER_NOW;
    if (!loop->next_head)
        return;
    if (loop->defer_tail)
        loop->defer_tail->next = loop->next_head;
    else
        loop->defer_head = loop->next_head;
    loop->defer_tail = loop->next_tail;
    loop->next_head = loop->next_tail = NULL;
}

static void loop_run_defers(struct tt_loop *loop)
{
    for (int n = 0; n < LOOP_MAX_DEFERS && loop->defer_head; n++) {
        struct tt_defer *d = loop->defer_head;
        loop->defer_head = d->next;
        if (!loop->defer_head)
            loop->defer_tail = NULL;
        d->next = NULL;
        d->queued = 0;
        d->cb(loop, d);
    }
}

/* --- Signals ----------------------------------------------------------- */

static void loop_on_sigfd(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)events;
    struct signalfd_siginfo si[8];
    for (;;) {
        ssize_t n = read(io->fd, si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
            unsigned signo = si[i].ssi_signo;
            if (signo < _NSIG && loop->signals[signo].cb)
                loop->signals[signo].cb(loop, (int)signo, loop->signals[signo].data);
        }
        if ((size_t)n < sizeof(si))
            return;
    }
}

int tt_loop_on_signal(struct tt_loop *loop, int signo, tt_signal_cb cb, void *data)
{
    if (signo <= 0 || signo >= _NSIG) {
        errno = EINVAL;
        return -1;
    }
    sigset_t mask = loop->sigmask;
    sigaddset(&mask, signo);
    /* Blocked first, so a signal between here and the signalfd waits. */
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    int fd = signalfd(loop->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (loop->sigfd < 0) {
        if (tt_io_start(loop, &loop->sig_io, fd, TT_IO_READ, loop_on_sigfd, NULL) < 0) {
            close(fd);
            return -1;
        }
        loop->sigfd = fd;
    }
    loop->sigmask = mask;
    loop->signals[signo].cb = cb;
    loop->signals[signo].data = data;
    return 0;
}

/* --- The loop ---------------------------------------------------------- */

static int loop_timeout(struct tt_loop *loop)
{
    if (loop->defer_head || loop->stopped)
        return 0;
    if (loop->heap_len == 0)
        return -1;
    uint64_t when = loop->heap[0]->when_ms;
    uint64_t now = loop_clock_ms();
    if (when <= now)
        return 0;
    uint64_t d = when - now;
    return d > 60000 ? 60000 : (int)d;
}

int tt_loop_run(struct tt_loop *loop)
{
    loop->stopped = 0;
    /* Callbacks queued before the loop started run first. */
    loop->now_ms = loop_clock_ms();
    loop_run_defers(loop);
    while (!loop->stopped) {
        loop_take_next(loop);
        tt_log_flush(); /* buffered log lines go out before we sleep */
        int n = epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, loop_timeout(loop));
        if (n < 0) {
            if (errno != EINTR)
                return -1;
            n = 0;
        }
        loop->now_ms = loop_clock_ms();
        loop->nevents = n;
        for (loop->cur_event = 0; loop->cur_event < loop->nevents;) {
            struct epoll_event *ev = &loop->events[loop->cur_event++];
            struct tt_io *io = ev->data.ptr;
            if (!io || io->events == 0)
                continue;
            unsigned events = 0;
            if (ev->events & EPOLLIN)
                events |= TT_IO_READ;
            if (ev->events & EPOLLOUT)
                events |= TT_IO_WRITE;
            if (ev->events & (EPOLLERR | EPOLLHUP)) {
                /* The owner learns the reason from its next read or write. */
                events |= TT_IO_ERROR | (io->events & (TT_IO_READ | TT_IO_WRITE));
            }
            events &= io->events | TT_IO_ERROR;
            if (events)
                io->cb(loop, io, events);
        }
        loop->nevents = 0;
        loop->cur_event = 0;
        loop_run_timers(loop);
        loop_run_defers(loop);
    }
    return 0;
}
