/*
 * The event loop: epoll for descriptors, a binary heap of timers, deferred
 * callbacks that run once the current batch of events is handled (used to
 * coalesce writes), and signals through signalfd.  One loop per process,
 * passed explicitly; no globals.
 */
#ifndef TT_LOOP_H
#define TT_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct tt_loop;
struct tt_io;
struct tt_timer;
struct tt_defer;

#define TT_IO_READ 0x1
#define TT_IO_WRITE 0x2
/* Reported in `events` when the descriptor hung up or errored. */
#define TT_IO_ERROR 0x4

typedef void (*tt_io_cb)(struct tt_loop *loop, struct tt_io *io, unsigned events);
typedef void (*tt_timer_cb)(struct tt_loop *loop, struct tt_timer *t);
typedef void (*tt_defer_cb)(struct tt_loop *loop, struct tt_defer *d);
typedef void (*tt_signal_cb)(struct tt_loop *loop, int signo, void *data);

/* Embed these in your own structs; `data` is yours. */
struct tt_io {
    int fd;
    unsigned events; /* currently watched: TT_IO_READ | TT_IO_WRITE */
    tt_io_cb cb;
    void *data;
};

struct tt_timer {
    uint64_t when_ms;
    size_t heap_index; /* SIZE_MAX when not armed */
    tt_timer_cb cb;
    void *data;
};

struct tt_defer {
    struct tt_defer *next;
    int queued;
    tt_defer_cb cb;
    void *data;
};

/* Returns a new loop, or NULL (errno set). */
struct tt_loop *tt_loop_new(void);
void tt_loop_free(struct tt_loop *loop);

/* Runs until tt_loop_stop().  Returns 0, or -1 on an epoll failure. */
int tt_loop_run(struct tt_loop *loop);
void tt_loop_stop(struct tt_loop *loop);
/* Milliseconds on a monotonic clock, cached once per loop iteration. */
uint64_t tt_loop_now(struct tt_loop *loop);

/* Starts watching `fd` (made non-blocking by the caller).  Returns 0 or -1. */
int tt_io_start(struct tt_loop *loop, struct tt_io *io, int fd, unsigned events, tt_io_cb cb,
                void *data);
/* Changes the watched events (0 is allowed: watch nothing for now). */
int tt_io_modify(struct tt_loop *loop, struct tt_io *io, unsigned events);
/* Stops watching; does not close the descriptor.  Safe to call from inside
 * any callback, also for an io whose events are pending in this batch. */
void tt_io_stop(struct tt_loop *loop, struct tt_io *io);

void tt_timer_init(struct tt_timer *t, tt_timer_cb cb, void *data);
/* (Re)arms the timer to fire once, `after_ms` from now. */
void tt_timer_start(struct tt_loop *loop, struct tt_timer *t, uint64_t after_ms);
void tt_timer_stop(struct tt_loop *loop, struct tt_timer *t);
int tt_timer_active(const struct tt_timer *t);

void tt_defer_init(struct tt_defer *d, tt_defer_cb cb, void *data);
/* Queues the callback to run once after the current events; queuing an
 * already queued one does nothing. */
void tt_defer_queue(struct tt_loop *loop, struct tt_defer *d);
/* Queues it for the next iteration instead, after the descriptors ready by
 * then: for work that continues a batch (more input already buffered) and
 * would starve every other descriptor if it ran again at once. */
void tt_defer_queue_next(struct tt_loop *loop, struct tt_defer *d);
void tt_defer_cancel(struct tt_loop *loop, struct tt_defer *d);

/* Calls cb when signo arrives (signal blocked and read through signalfd).
 * Returns 0 or -1. */
int tt_loop_on_signal(struct tt_loop *loop, int signo, tt_signal_cb cb, void *data);

#endif
