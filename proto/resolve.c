/*
 * Name resolution in helper threads (see resolve.h for why).
 *
 * One lookup = one record shared by two owners: the loop side (the handle
 * the caller holds: an io on the eventfd, a timer, a deferred call) and the
 * helper thread.  `refs` counts them; whoever lets go last frees the record,
 * closes the eventfd and frees a list nobody took.  So:
 *
 *   - the thread never touches the caller's memory: it writes only into the
 *     record (answer, then `done`, then one eventfd write) and drops its ref;
 *   - cancel and timeout drop the loop's ref at once and never wait for the
 *     thread; an abandoned thread finishes alone;
 *   - the eventfd stays open while either side may still use it.
 *
 * The record is allocated with libc's calloc/free rather than tt_mem_*: it
 * may be freed on the helper thread, and the tt_mem hooks tests install are
 * not made for threads.
 *
 * Helper threads block every signal, so that SIGTERM and friends keep going
 * to the loop's signalfd, and are detached: nobody joins a thread that may
 * sit in the resolver for half a minute.  A process-wide count of running
 * threads (the only global here: it does not steer anything, it only
 * answers "is any lookup still running?") lets tests wait for them.
 */
#include "resolve.h"

#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define RS_DELAY_MAX_MS 3600000u /* an hour: TT_RESOLVE_DELAY_MS is clamped to it */

struct tt_resolve {
    /* Shared with the thread.  host/port/delay_ms are written before the
     * thread starts and only read afterwards. */
    atomic_int refs;
    atomic_int done; /* release by the thread after res/rc/sys_errno */
    int efd;
    char host[256];
    char port[16];
    uint32_t delay_ms;
    struct addrinfo *res; /* the answer, until the loop takes it */
    int rc;               /* getaddrinfo's return */
    int sys_errno;        /* errno after EAI_SYSTEM */

    /* The loop side only. */
    struct tt_loop *loop;
    struct tt_io io;
    int io_on;
    struct tt_timer timer;
    struct tt_defer defer; /* numeric answers: delivered after start returns */
    tt_resolve_cb cb;
    void *arg;
    char why[160];
};

static atomic_uint rs_threads;

static void rs_unref(struct tt_resolve *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (r->efd >= 0)
        close(r->efd);
    if (r->res)
        freeaddrinfo(r->res);
    free(r);
}

static void rs_hints(struct addrinfo *h, int flags)
{
    memset(h, 0, sizeof *h);
    h->ai_family = AF_UNSPEC;
    h->ai_socktype = SOCK_STREAM;
    h->ai_protocol = IPPROTO_TCP;
    h->ai_flags = flags | AI_NUMERICSERV;
}

int tt_resolve_numeric(const char *host, const char *port, struct addrinfo **out)
{
    struct addrinfo hints;
    rs_hints(&hints, AI_NUMERICHOST);
    *out = NULL;
    if (getaddrinfo(host, port, &hints, out) != 0) {
        *out = NULL;
        return -1;
    }
    return 0;
}

static void *rs_thread(void *p)
{
    struct tt_resolve *r = p;
    if (r->delay_ms) {
        struct timespec ts = {.tv_sec = r->delay_ms / 1000,
                              .tv_nsec = (long)(r->delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    struct addrinfo hints;
    rs_hints(&hints, 0);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(r->host, r->port, &hints, &res);
    r->sys_errno = rc == EAI_SYSTEM ? errno : 0;
    r->rc = rc;
    r->res = rc == 0 ? res : NULL;
    atomic_store_explicit(&r->done, 1, memory_order_release);
    /* Wake the loop.  The eventfd is ours until our ref is dropped; if the
     * loop side is gone nobody reads it, which is fine. */
    uint64_t one = 1;
    ssize_t w = write(r->efd, &one, sizeof one);
    (void)w; /* an eventfd write only fails on overflow, impossible here */
    rs_unref(r);
    atomic_fetch_sub_explicit(&rs_threads, 1, memory_order_release);
    return NULL;
}

/* The loop side lets go: stops its watchers and drops its ref. */
static void rs_release(struct tt_resolve *r)
{
    if (r->io_on) {
        tt_io_stop(r->loop, &r->io);
        r->io_on = 0;
    }
    tt_timer_stop(r->loop, &r->timer);
    tt_defer_cancel(r->loop, &r->defer);
    rs_unref(r);
}

/* Hands the answer to the owner: the handle is released first, so the
 * callback may start another lookup or free the owner. */
static void rs_finish(struct tt_resolve *r, struct addrinfo *res, const char *why)
{
    tt_resolve_cb cb = r->cb;
    void *arg = r->arg;
    char buf[sizeof r->why];
    if (why) {
        snprintf(buf, sizeof buf, "%s", why);
        why = buf;
    }
    rs_release(r);
    cb(arg, res, why);
}

static void rs_take_answer(struct tt_resolve *r)
{
    struct addrinfo *res = r->res;
    r->res = NULL;
    if (r->rc == 0 && res) {
        rs_finish(r, res, NULL);
        return;
    }
    if (r->rc == 0)
        snprintf(r->why, sizeof r->why, "no address");
    else if (r->rc == EAI_SYSTEM)
        snprintf(r->why, sizeof r->why, "%s", strerror(r->sys_errno));
    else
        snprintf(r->why, sizeof r->why, "%s", gai_strerror(r->rc));
    rs_finish(r, NULL, r->why);
}

static void rs_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct tt_resolve *r = io->data;
    uint64_t n;
    ssize_t got = read(r->efd, &n, sizeof n);
    (void)got;
    if (!atomic_load_explicit(&r->done, memory_order_acquire))
        return; /* not for us yet (cannot happen: one write, after done) */
    rs_take_answer(r);
}

static void rs_on_timer(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    struct tt_resolve *r = t->data;
    /* The thread may have answered in this very iteration: prefer it. */
    if (atomic_load_explicit(&r->done, memory_order_acquire)) {
        rs_take_answer(r);
        return;
    }
    rs_finish(r, NULL, "timed out");
}

static void rs_on_defer(struct tt_loop *loop, struct tt_defer *d)
{
    (void)loop;
    rs_take_answer(d->data);
}

static uint32_t rs_test_delay(void)
{
    const char *s = getenv("TT_RESOLVE_DELAY_MS");
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end)
        return 0;
    return v > RS_DELAY_MAX_MS ? RS_DELAY_MAX_MS : (uint32_t)v;
}

struct tt_resolve *tt_resolve_start(struct tt_loop *loop, const char *host, const char *port,
                                    uint32_t timeout_ms, tt_resolve_cb cb, void *arg)
{
    size_t hl = strlen(host), pl = strlen(port);
    if (hl == 0 || hl >= sizeof ((struct tt_resolve *)0)->host ||
        pl >= sizeof ((struct tt_resolve *)0)->port) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    struct tt_resolve *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(r->host, host, hl + 1);
    memcpy(r->port, port, pl + 1);
    r->efd = -1;
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;
    tt_timer_init(&r->timer, rs_on_timer, r);
    tt_defer_init(&r->defer, rs_on_defer, r);
    atomic_init(&r->refs, 1);
    atomic_init(&r->done, 0);

    /* Numeric: the answer is known now; it is delivered from the loop so
     * that the callback never runs inside this call. */
    if (tt_resolve_numeric(host, port, &r->res) == 0) {
        atomic_store_explicit(&r->done, 1, memory_order_relaxed);
        tt_defer_queue(loop, &r->defer);
        return r;
    }

    r->delay_ms = rs_test_delay();
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->efd < 0)
        goto fail;
    if (tt_io_start(loop, &r->io, r->efd, TT_IO_READ, rs_on_io, r) < 0)
        goto fail;
    r->io_on = 1;

    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) {
        errno = ENOMEM;
        goto fail;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The thread inherits our mask: block everything around the create so
     * that no signal is ever delivered to it instead of the loop. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed); /* the thread's */
    atomic_fetch_add_explicit(&rs_threads, 1, memory_order_relaxed);
    pthread_t tid;
    int e = pthread_create(&tid, &attr, rs_thread, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        atomic_fetch_sub_explicit(&r->refs, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&rs_threads, 1, memory_order_relaxed);
        errno = e;
        goto fail;
    }
    tt_timer_start(loop, &r->timer, timeout_ms);
    return r;

fail:;
    int err = errno;
    rs_release(r);
    errno = err;
    return NULL;
}

void tt_resolve_cancel(struct tt_resolve *r)
{
    if (r)
        rs_release(r);
}

unsigned tt_resolve_threads(void)
{
    return atomic_load_explicit(&rs_threads, memory_order_acquire);
}

int tt_resolve_wait_threads(uint32_t max_ms)
{
    for (uint32_t waited = 0;; waited++) {
        if (tt_resolve_threads() == 0)
            return 0;
        if (waited >= max_ms)
            return -1;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000L};
        nanosleep(&ts, NULL);
    }
}
