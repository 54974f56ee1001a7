/*
 * The tunnel registry (registry.c): name -> pool of tunnels, and opening a
 * stream on the member that has the fewest.  The tunnels themselves are made
 * and ended by tunnel.c; the registry only holds them.
 */
#ifndef TT_PX_REGISTRY_H
#define TT_PX_REGISTRY_H

#include "codec/h2.h"
#include "proto/list.h"
#include "proto/session.h"
#include "proxy/config.h"

#include <stddef.h>
#include <stdint.h>

struct tt_px_server;

/* Resets p sends c for clients that left (RST_STREAM(CANCEL)) are paced,
 * so no mix of client behaviour p accepts can spend c's rapid-reset budget
 * (400, refilled by completed streams and 100 a second on c): p allows
 * itself half of that, TT_PX_RST_BURST at once and TT_PX_RST_RATE a second,
 * plus one for each stream that completed.  A cancel beyond it is deferred:
 * the stream stays open with no reader, its data is dropped with the
 * connection window given back (so nothing else on the tunnel waits) while
 * its stream window is not (so c stops after a window), and its reset goes
 * out as soon as the budget allows, oldest first. */
/* Response bytes the fronts may hold for one tunnel's streams with their
 * connection window already given back (exchange.h, flow control). */
#define TT_PX_TUNNEL_HOLD_MAX (48u << 20)
/* A tunnel stream starts with a window of TT_PX_STREAM_WINDOW (p's SETTINGS)
 * and grows, doubling up to TT_PX_STREAM_WINDOW_MAX, while its client takes
 * every byte as it comes; the growth of all of a tunnel's streams together
 * is at most TT_PX_TUNNEL_GROW_MAX.  So many slow readers each hold a small
 * window, and a fast one gets a window that fills the link.  Past
 * TT_PX_CROWD open streams the tunnel's SETTINGS drop every stream's window
 * to TT_PX_STREAM_WINDOW_CROWD, back when fewer than half as many are open:
 * what c may send ahead for all of them stays near 16 MiB, however many. */
#define TT_PX_STREAM_WINDOW (64u << 10)
#define TT_PX_STREAM_WINDOW_CROWD (16u << 10)
#define TT_PX_CROWD 256
#define TT_PX_STREAM_WINDOW_MAX (4u << 20)
#define TT_PX_TUNNEL_GROW_MAX (16u << 20)

#define TT_PX_RST_BURST 200
#define TT_PX_RST_RATE 50

struct tt_px_tunnel {
    struct tt_px_server *srv;
    struct tt_px_registry *reg; /* the one it is in: the tunnels', or p's services' */
    /* Told when the tunnel is gone, just before it is freed (c's forward
     * link redials from here); NULL: nobody. */
    void (*on_gone)(void *ud, const char *reason);
    void *gone_ud;
    struct tt_loop *loop;
    struct tt_session *sess; /* NULL in unit tests */
    struct tt_px_pool *pool; /* NULL once out of the registry */
    size_t pool_index;
    uint64_t serial;   /* unique per process: "not that one again" on retry */
    uint64_t up_ms;    /* when it came up (the loop's clock), for the admin pages */
    uint32_t streams;  /* requests bound to this tunnel */
    uint8_t draining;  /* GOAWAY seen (either way): no new streams */
    uint8_t dead;      /* the session is closing */
    uint8_t crowded;   /* its stream window is TT_PX_STREAM_WINDOW_CROWD */
    struct tt_list waiting; /* exchanges whose request body waits for window or room */
    size_t held;            /* bytes held with their connection window back (hold budget) */
    size_t grown;           /* window granted beyond TT_PX_STREAM_WINDOW, all streams */
    /* Reset pacing (see TT_PX_RST_BURST). */
    uint32_t rst_budget;
    uint64_t rst_refill_ms; /* when the budget was last refilled by time */
    uint32_t *deferred;     /* streams whose reset waits, oldest first */
    size_t deferred_n, deferred_cap;
    struct tt_timer rst_timer;
    char name[TT_PX_NAME_MAX + 1];
    char peer[64];
    /* The tokens entry it came in with (its hash): a reload that drops or
     * replaces it closes the tunnel.  has_token 0: a --service, never. */
    uint8_t token_hash[32];
    uint8_t has_token;
};

struct tt_px_pool {
    struct tt_px_pool *next; /* hash chain */
    struct tt_fifo queue;    /* groups of exchanges waiting for a stream, in turn (exchange.h) */
    size_t queued;
    char name[TT_PX_NAME_MAX + 1];
    struct tt_px_tunnel **members;
    size_t n, cap;
    size_t rr; /* where the next tie-break scan starts */
};

#define TT_PX_REG_BUCKETS 256

struct tt_px_registry {
    struct tt_px_pool *buckets[TT_PX_REG_BUCKETS];
    size_t names;   /* pools with at least one member */
    size_t tunnels; /* members in all pools */
    /* The pool when exactly one name is served, else NULL: kept up to date
     * by add and remove, because every request without a route asks. */
    struct tt_px_pool *single;
};

void tt_px_registry_init(struct tt_px_registry *r);
void tt_px_registry_free(struct tt_px_registry *r);
/* Adds a tunnel under t->name.  Returns the pool size, or -1 (no memory). */
int tt_px_registry_add(struct tt_px_registry *r, struct tt_px_tunnel *t);
/* Removes a tunnel from its pool (at once; no-op when not in one).  Returns
 * the pool size left. */
size_t tt_px_registry_remove(struct tt_px_registry *r, struct tt_px_tunnel *t);
struct tt_px_pool *tt_px_registry_find(const struct tt_px_registry *r, const char *name,
                                       size_t len);
/* The only name with members when exactly one has; else NULL. */
const char *tt_px_registry_single_name(const struct tt_px_registry *r);
/* Picks the member with the fewest streams among those `usable` accepts (all
 * when NULL) and not draining/dead, round-robin on ties; skips `avoid`.
 * Returns NULL when none. */
struct tt_px_tunnel *tt_px_pool_pick(struct tt_px_pool *p,
                                     int (*usable)(const struct tt_px_tunnel *),
                                     const struct tt_px_tunnel *avoid);

/* 1 if a new stream can be opened on the tunnel now. */
int tt_px_tunnel_usable(const struct tt_px_tunnel *t);
/* Opens a stream for a request on a member of `pool`: its affinity member
 * (below) when `affinity` is set, else the one with the fewest streams, not the tunnel whose serial is `avoid` while another is
 * there (a retry goes elsewhere), and the next one when a member turns out
 * to be at its stream limit or going away.  On success the stream is counted
 * on the tunnel, the tunnel is flushed, *tun is set and the stream id (> 0)
 * returned.  Returns 0 when no member can take it now, or TT_ERR_BAD_HEADER /
 * TT_ERR_HEADER_TOO_LARGE for a request no tunnel would take. */
int64_t tt_px_pool_open(struct tt_px_pool *pool, uint64_t avoid, uint64_t affinity,
                        const struct tt_header *hdrs, size_t n, int end_stream, void *sud,
                        struct tt_px_tunnel **tun);
/* Affinity (p --affinity-header): a request with key `affinity` (non-zero)
 * opens on the member tt_px_pool_pick_affine gives, the usable one whose
 * hash with the key is highest (rendezvous hashing, Thaler and Ravishankar
 * 1996).  A member that goes moves only its own keys; one that comes takes
 * a fair share.  Members are told apart by serial, so a c that reconnects
 * is a new member.  0 / NULL when none is usable: then the usual pick. */
uint64_t tt_px_affinity_key(const char *v, size_t len);
struct tt_px_tunnel *tt_px_pool_pick_affine(struct tt_px_pool *p,
                                            int (*usable)(const struct tt_px_tunnel *),
                                            uint64_t key, uint64_t avoid);
/* The other end of tt_px_pool_open: a request lets go of its stream on *tun
 * (done, failed or given up).  The stream stops counting on the tunnel,
 * *avoid becomes its serial (a retry goes elsewhere), *tun is NULLed. */
void tt_px_pool_leave(struct tt_px_tunnel **tun, uint64_t *avoid);

/* Sets up a new tunnel's reset pacing (the loop runs its timer). */
void tt_px_tunnel_init(struct tt_px_tunnel *t, struct tt_loop *loop);
/* Frees what the pacing holds (the session is gone). */
void tt_px_tunnel_fini(struct tt_px_tunnel *t);
/* RST_STREAM(CANCEL) for `sid` now, or as soon as the pacing allows (the
 * stream's user data must be cleared already).  `answered`: its response
 * head came, so c counts the reset as a client leaving, not a rapid reset
 * (codec/h2.h, rst_budget), and it goes at once.  Returns 1 when sent now. */
int tt_px_tunnel_cancel(struct tt_px_tunnel *t, uint32_t sid, int answered);
/* A stream of the tunnel closed: a deferred reset for it is not needed any
 * more, and a normal end (both sides done) gives one back to the budget. */
void tt_px_tunnel_stream_closed(struct tt_px_tunnel *t, uint32_t sid, uint32_t code,
                                unsigned flags);

#endif
