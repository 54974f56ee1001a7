#include "proto/arena.h"

#include "codec/buf.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#define ARENA_DEFAULT_CHUNK 4096
#define ARENA_ALIGN alignof(max_align_t)

struct tt_arena_chunk {
    struct tt_arena_chunk *next;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

void tt_arena_init(struct tt_arena *a, size_t chunk_size)
{
    a->chunks = NULL;
    a->chunk_size = chunk_size ? chunk_size : ARENA_DEFAULT_CHUNK;
}

void *tt_arena_alloc(struct tt_arena *a, size_t n)
{
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (n == 0)
        n = ARENA_ALIGN;
    struct tt_arena_chunk *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        /* A request bigger than a chunk gets a chunk of its own, put behind
         * the current one so the current one's free room is not lost. */
        size_t cap = n > a->chunk_size ? n : a->chunk_size;
        struct tt_arena_chunk *nc = tt_mem_alloc(sizeof(*nc) + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        if (c && cap > a->chunk_size) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->chunks = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *tt_arena_strndup(struct tt_arena *a, const char *s, size_t n)
{
    char *p = tt_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void tt_arena_reset(struct tt_arena *a)
{
    while (a->chunks) {
        struct tt_arena_chunk *c = a->chunks;
        a->chunks = c->next;
        tt_mem_free(c);
    }
}

struct tt_header *tt_arena_headers_dup(struct tt_arena *a, const struct tt_header *h, size_t n)
{
    struct tt_header *v = tt_arena_alloc(a, (n ? n : 1) * sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = h[i];
        if (!(v[i].name = tt_arena_strndup(a, h[i].name, h[i].name_len)) ||
            !(v[i].value = tt_arena_strndup(a, h[i].value, h[i].value_len)))
            return NULL;
    }
    return v;
}
