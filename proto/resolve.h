/*
 * Name resolution off the loop.
 *
 * getaddrinfo() blocks for as long as the system's resolver takes: with a
 * slow or dead DNS server that is its whole timeout (5 s per try and server
 * in glibc), and every tunnel on the loop would stop for it (no PINGs, no
 * DATA).  So a name is looked up in a short-lived helper thread, one per
 * lookup, which hands the answer back through an eventfd watched by the
 * loop; the callback then runs on the loop like any other event.
 *
 * Numeric addresses ("127.0.0.1", "::1") are parsed at once (AI_NUMERICHOST)
 * with no thread: the common case costs one getaddrinfo that never blocks.
 *
 * A lookup has its own timeout.  A lookup whose owner gave up (cancel, or
 * the timeout) is abandoned, not interrupted: getaddrinfo cannot be stopped,
 * so its thread runs on until the resolver answers and then frees what it
 * held, touching nothing of the owner's.  Threads are detached; one still
 * blocked in the resolver when the process exits dies with it.
 *
 * Test-only: when the environment variable TT_RESOLVE_DELAY_MS holds a
 * number, each helper thread sleeps that long before it calls getaddrinfo.
 * Integration tests use it to make a lookup hang without touching the
 * network or the system's resolver configuration.  Numeric addresses are
 * never delayed.  Do not set it in production.
 *
 * Names: tt_resolve_*.
 */
#ifndef TT_RESOLVE_H
#define TT_RESOLVE_H

#include <netdb.h>
#include <stdint.h>

struct tt_loop;
struct tt_resolve;

/* A lookup's timeout that callers use unless they have a reason not to. */
#define TT_RESOLVE_TIMEOUT_MS 10000u

/* The answer, on the loop.  On success `res` is the list in getaddrinfo's
 * order and now belongs to the callee (freeaddrinfo it); `why` is NULL.  On
 * failure `res` is NULL and `why` says why in a few words ("timed out",
 * "Name or service not known", ...), valid during the call.  The handle is
 * already gone when this runs: do not cancel it. */
typedef void (*tt_resolve_cb)(void *arg, struct addrinfo *res, const char *why);

/* Looks up `host` (a name or a numeric address, without brackets) and the
 * numeric `port`, for TCP, any family.  `cb` fires exactly once, on the
 * loop and never during this call, unless the lookup is cancelled first;
 * after `timeout_ms` it fires with "timed out".  Returns a handle, or NULL
 * with errno set (ENOMEM, EAGAIN when no thread or eventfd could be made;
 * ENAMETOOLONG for a host over 255 bytes). */
struct tt_resolve *tt_resolve_start(struct tt_loop *loop, const char *host, const char *port,
                                    uint32_t timeout_ms, tt_resolve_cb cb, void *arg);

/* Abandons a lookup whose callback has not fired: it never will.  The
 * handle is invalid afterwards.  Never blocks. */
void tt_resolve_cancel(struct tt_resolve *r);

/* Parses a numeric `host` and `port` without any lookup.  Returns 0 with
 * the list in *out (freeaddrinfo it), or -1 when `host` is not a numeric
 * address (then a lookup is needed). */
int tt_resolve_numeric(const char *host, const char *port, struct addrinfo **out);

/* How many helper threads are still running (abandoned lookups included). */
unsigned tt_resolve_threads(void);

/* Waits up to `max_ms` for every helper thread to end; for tests and tidy
 * exits.  Returns 0 when none is left, -1 when some still run. */
int tt_resolve_wait_threads(uint32_t max_ms);

#endif
