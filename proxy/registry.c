/*
 * The tunnel registry: name -> pool of tunnels.
 *
 * A fixed table of hash buckets, each a chain of pools; a pool is an array of
 * tunnel pointers and each tunnel remembers its index, so removal is O(1)
 * (the last member moves into the hole).  Names compare case-insensitively
 * because they also arrive as DNS labels in Host.  A pool whose last member
 * leaves is freed, so the registry holds only names that are served.
 *
 * Selection (DESIGN.md "Routing and pools"): the member with the fewest
 * streams wins; among equals the scan starts where the previous pick left
 * off, which spreads ties round-robin.
 */
#include "proxy/registry.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static unsigned reg_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a over the lowercased name */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)tolower((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h % TT_PX_REG_BUCKETS;
}

static void reg_update_single(struct tt_px_registry *r);

void tt_px_registry_init(struct tt_px_registry *r) { memset(r, 0, sizeof(*r)); }

void tt_px_registry_free(struct tt_px_registry *r)
{
    for (size_t b = 0; b < TT_PX_REG_BUCKETS; b++) {
        struct tt_px_pool *p = r->buckets[b];
        while (p) {
            struct tt_px_pool *next = p->next;
            for (size_t i = 0; i < p->n; i++)
                p->members[i]->pool = NULL;
            tt_mem_free(p->members);
            tt_mem_free(p);
            p = next;
        }
    }
    memset(r, 0, sizeof(*r));
}

struct tt_px_pool *tt_px_registry_find(const struct tt_px_registry *r, const char *name,
                                       size_t len)
{
    if (len == 0 || len > TT_PX_NAME_MAX)
        return NULL;
    for (struct tt_px_pool *p = r->buckets[reg_hash(name, len)]; p; p = p->next)
        if (strlen(p->name) == len && strncasecmp(p->name, name, len) == 0)
            return p;
    return NULL;
}

int tt_px_registry_add(struct tt_px_registry *r, struct tt_px_tunnel *t)
{
    size_t len = strlen(t->name);
    struct tt_px_pool *p = tt_px_registry_find(r, t->name, len);
    if (!p) {
        p = tt_mem_calloc(1, sizeof(*p));
        if (!p)
            return -1;
        memcpy(p->name, t->name, len + 1);
        unsigned b = reg_hash(t->name, len);
        p->next = r->buckets[b];
        r->buckets[b] = p;
    }
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 4;
        struct tt_px_tunnel **nm = tt_mem_realloc(p->members, nc * sizeof(*nm));
        if (!nm) {
            if (p->n == 0) { /* a pool made just now: unlink it again */
                unsigned b = reg_hash(p->name, len);
                for (struct tt_px_pool **pp = &r->buckets[b]; *pp; pp = &(*pp)->next)
                    if (*pp == p) {
                        *pp = p->next;
                        break;
                    }
                tt_mem_free(p->members);
                tt_mem_free(p);
            }
            return -1;
        }
        p->members = nm;
        p->cap = nc;
    }
    int new_name = p->n == 0;
    if (new_name)
        r->names++;
    t->pool = p;
    t->pool_index = p->n;
    p->members[p->n++] = t;
    r->tunnels++;
    if (new_name)
        reg_update_single(r);
    return (int)p->n;
}

size_t tt_px_registry_remove(struct tt_px_registry *r, struct tt_px_tunnel *t)
{
    struct tt_px_pool *p = t->pool;
    if (!p)
        return 0;
    size_t i = t->pool_index;
    if (i < p->n && p->members[i] == t) {
        p->members[i] = p->members[p->n - 1];
        p->members[i]->pool_index = i;
        p->n--;
        r->tunnels--;
        if (p->rr > p->n)
            p->rr = 0;
    }
    t->pool = NULL;
    size_t left = p->n;
    if (left == 0) {
        r->names--;
        unsigned b = reg_hash(p->name, strlen(p->name));
        for (struct tt_px_pool **pp = &r->buckets[b]; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        tt_mem_free(p->members);
        tt_mem_free(p);
        reg_update_single(r);
    }
    return left;
}

/* Recomputes r->single after the set of names changed (rare: a name's first
 * tunnel came or its last one left); the scan runs only when one name is left. */
static void reg_update_single(struct tt_px_registry *r)
{
    r->single = NULL;
    if (r->names != 1)
        return;
    for (size_t b = 0; b < TT_PX_REG_BUCKETS; b++)
        for (struct tt_px_pool *p = r->buckets[b]; p; p = p->next)
            if (p->n > 0) {
                r->single = p;
                return;
            }
}

const char *tt_px_registry_single_name(const struct tt_px_registry *r)
{
    return r->single ? r->single->name : NULL;
}

struct tt_px_tunnel *tt_px_pool_pick(struct tt_px_pool *p,
                                     int (*usable)(const struct tt_px_tunnel *),
                                     const struct tt_px_tunnel *avoid)
{
    if (!p || p->n == 0)
        return NULL;
    struct tt_px_tunnel *best = NULL;
    size_t best_i = 0;
    size_t start = p->rr % p->n;
    for (size_t k = 0; k < p->n; k++) {
        size_t i = (start + k) % p->n;
        struct tt_px_tunnel *t = p->members[i];
        if (t == avoid || t->draining || t->dead)
            continue;
        if (usable && !usable(t))
            continue;
        if (!best || t->streams < best->streams) {
            best = t;
            best_i = i;
        }
    }
    if (!best && avoid && !avoid->draining && !avoid->dead && (!usable || usable(avoid)))
        best = (struct tt_px_tunnel *)avoid; /* the only one left */
    else if (best)
        p->rr = best_i + 1;
    return best;
}

/* --- Streams on a pool ---------------------------------------------------------- */

int tt_px_tunnel_usable(const struct tt_px_tunnel *t)
{
    return t->sess && !tt_session_closing(t->sess) && tt_h2_can_open_stream(tt_session_h2(t->sess));
}

/* Stream windows shrink as streams multiply (TT_PX_CROWD).  A change
 * waiting for c's ACK is not stacked: the next open or close asks again. */
static void tun_fit_window(struct tt_px_tunnel *t)
{
    if (!t->sess || tt_session_closing(t->sess))
        return;
    int crowded = t->crowded ? t->streams >= TT_PX_CROWD / 2 : t->streams > TT_PX_CROWD;
    if (crowded == t->crowded)
        return;
    uint32_t w = crowded ? TT_PX_STREAM_WINDOW_CROWD : TT_PX_STREAM_WINDOW;
    if (tt_h2_set_stream_window(tt_session_h2(t->sess), w) == 0) {
        t->crowded = (uint8_t)crowded;
        tt_session_flush(t->sess);
    }
}

static uint64_t mix64(uint64_t z)
{
    /* splitmix64's finaliser: every input bit moves every output bit. */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tt_px_affinity_key(const char *v, size_t len)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)v[i]) * 1099511628211ull;
    return h ? h : 1; /* 0 means "no key" */
}

struct tt_px_tunnel *tt_px_pool_pick_affine(struct tt_px_pool *p,
                                            int (*usable)(const struct tt_px_tunnel *),
                                            uint64_t key, uint64_t avoid)
{
    struct tt_px_tunnel *best = NULL;
    uint64_t best_score = 0;
    for (size_t i = 0; p && i < p->n; i++) {
        struct tt_px_tunnel *t = p->members[i];
        if ((usable && !usable(t)) || (avoid && t->serial == avoid && p->n > 1))
            continue;
        uint64_t score = mix64(key ^ mix64(t->serial));
        if (!best || score > best_score) {
            best = t;
            best_score = score;
        }
    }
    return best;
}

/* A member whose peer has not sent its first SETTINGS yet. */
static int pool_has_unsettled(const struct tt_px_pool *p)
{
    for (size_t i = 0; p && i < p->n; i++) {
        const struct tt_px_tunnel *t = p->members[i];
        if (t->sess && !tt_session_closing(t->sess) &&
            !tt_h2_remote_settings_received(tt_session_h2(t->sess)))
            return 1;
    }
    return 0;
}

int64_t tt_px_pool_open(struct tt_px_pool *pool, uint64_t avoid, uint64_t affinity,
                        const struct tt_header *hdrs, size_t n, int end_stream, void *sud,
                        struct tt_px_tunnel **tun)
{
    struct tt_px_tunnel *t = affinity ? tt_px_pool_pick_affine(pool, tt_px_tunnel_usable, affinity, avoid) : NULL;
    if (!t)
        t = tt_px_pool_pick(pool, tt_px_tunnel_usable, NULL);
    if (t && avoid && t->serial == avoid)
        t = tt_px_pool_pick(pool, tt_px_tunnel_usable, t); /* another, if any */
    int no_xc = 0; /* a member that said it takes no extended CONNECT */
    for (int tries = 0; t && tries < 8; tries++) {
        int64_t sid = tt_h2_submit_request(tt_session_h2(t->sess), hdrs, n, end_stream, sud);
        if (sid > 0) {
            t->streams++;
            tun_fit_window(t);
            tt_session_flush(t->sess);
            *tun = t;
            return sid;
        }
        if (sid == TT_ERR_BAD_HEADER || sid == TT_ERR_HEADER_TOO_LARGE)
            return sid;
        if (sid == TT_ERR_GOING_AWAY || sid == TT_ERR_STREAM_ID_EXHAUSTED)
            t->draining = 1;
        /* Before c's SETTINGS arrive nobody knows yet (RFC 8441 §3): the
         * request waits in line, woken when they come (tunnel.c). */
        if (sid == TT_ERR_NO_CONNECT_PROTOCOL && tt_h2_remote_settings_received(tt_session_h2(t->sess)))
            no_xc = 1;
        t = tt_px_pool_pick(pool, tt_px_tunnel_usable, t);
    }
    return no_xc && !pool_has_unsettled(pool) ? TT_ERR_NO_CONNECT_PROTOCOL : 0;
}

void tt_px_pool_leave(struct tt_px_tunnel **tun, uint64_t *avoid)
{
    struct tt_px_tunnel *t = *tun;
    *avoid = t->serial;
    if (t->streams)
        t->streams--;
    tun_fit_window(t);
    *tun = NULL;
}

/* --- Reset pacing ------------------------------------------------------------------ */

static void tun_refill(struct tt_px_tunnel *t)
{
    uint64_t now = tt_loop_now(t->loop);
    uint64_t add = (now - t->rst_refill_ms) * TT_PX_RST_RATE / 1000;
    if (add == 0)
        return;
    t->rst_refill_ms += add * 1000 / TT_PX_RST_RATE;
    uint64_t b = t->rst_budget + add;
    t->rst_budget = b > TT_PX_RST_BURST ? TT_PX_RST_BURST : (uint32_t)b;
}

static void tun_send_deferred(struct tt_px_tunnel *t)
{
    tun_refill(t);
    struct tt_h2_conn *c = t->sess && !tt_session_closing(t->sess) ? tt_session_h2(t->sess) : NULL;
    int sent = 0;
    while (c && t->deferred_n && t->rst_budget > 0) {
        /* Off the list first: the reset closes the stream, and its close
         * (tt_px_tunnel_stream_closed) looks for it there. */
        uint32_t sid = t->deferred[0];
        memmove(t->deferred, t->deferred + 1, (t->deferred_n - 1) * sizeof(*t->deferred));
        t->deferred_n--;
        t->rst_budget--;
        (void)tt_h2_submit_rst(c, sid, TT_H2_CANCEL);
        sent = 1;
    }
    if (sent)
        tt_session_flush(t->sess);
    if (t->deferred_n && c)
        tt_timer_start(t->loop, &t->rst_timer, 1000 / TT_PX_RST_RATE);
}

static void tun_on_rst_timer(struct tt_loop *loop, struct tt_timer *tm)
{
    (void)loop;
    tun_send_deferred(tm->data);
}

void tt_px_tunnel_init(struct tt_px_tunnel *t, struct tt_loop *loop)
{
    t->loop = loop;
    t->rst_budget = TT_PX_RST_BURST;
    t->rst_refill_ms = tt_loop_now(loop);
    tt_timer_init(&t->rst_timer, tun_on_rst_timer, t);
}

void tt_px_tunnel_fini(struct tt_px_tunnel *t)
{
    if (t->loop)
        tt_timer_stop(t->loop, &t->rst_timer);
    tt_mem_free(t->deferred);
    t->deferred = NULL;
    t->deferred_n = t->deferred_cap = 0;
}

int tt_px_tunnel_cancel(struct tt_px_tunnel *t, uint32_t sid, int answered)
{
    struct tt_h2_conn *c = t->sess && !tt_session_closing(t->sess) ? tt_session_h2(t->sess) : NULL;
    if (!c)
        return 0;
    if (answered || !t->loop) { /* free for c, or not paced (unit tests' hand-made tunnels) */
        (void)tt_h2_submit_rst(c, sid, TT_H2_CANCEL);
        return 1;
    }
    tun_refill(t);
    if (t->deferred_n == 0 && t->rst_budget > 0) {
        t->rst_budget--;
        (void)tt_h2_submit_rst(c, sid, TT_H2_CANCEL);
        return 1;
    }
    if (t->deferred_n == t->deferred_cap) {
        size_t cap = t->deferred_cap ? 2 * t->deferred_cap : 64;
        uint32_t *v = tt_mem_alloc(cap * sizeof(*v));
        if (!v) {
            /* Out of memory: better a reset over budget than a stream that
             * nobody ever ends. */
            (void)tt_h2_submit_rst(c, sid, TT_H2_CANCEL);
            return 1;
        }
        if (t->deferred_n)
            memcpy(v, t->deferred, t->deferred_n * sizeof(*v));
        tt_mem_free(t->deferred);
        t->deferred = v;
        t->deferred_cap = cap;
    }
    t->deferred[t->deferred_n++] = sid;
    if (!tt_timer_active(&t->rst_timer))
        tt_timer_start(t->loop, &t->rst_timer, 1000 / TT_PX_RST_RATE);
    return 0;
}

void tt_px_tunnel_stream_closed(struct tt_px_tunnel *t, uint32_t sid, uint32_t code,
                                unsigned flags)
{
    for (size_t i = 0; i < t->deferred_n; i++) {
        if (t->deferred[i] == sid) {
            memmove(t->deferred + i, t->deferred + i + 1,
                    (t->deferred_n - i - 1) * sizeof(*t->deferred));
            t->deferred_n--;
            break;
        }
    }
    /* c gives a completed stream back to its budget: so do we. */
    if (code == TT_H2_NO_ERROR && flags == 0 && t->rst_budget < TT_PX_RST_BURST)
        t->rst_budget++;
}
