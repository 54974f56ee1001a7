/*
 * A memory arena for the small allocations of one short-lived object (an
 * exchange on p: its mapped request head, copies of method and path,
 * trailers), in the spirit of h2o's h2o_mem_pool_t: allocations are bumps in
 * a chunk, nothing is freed alone, and tt_arena_reset() gives everything
 * back at once.  One malloc serves a typical request instead of one per
 * piece, and no caller has to pair each allocation with a free.
 *
 * An arena holds no memory until its first allocation, so an idle owner
 * (a keep-alive connection between requests) costs only the struct.
 */
#ifndef TT_ARENA_H
#define TT_ARENA_H

#include "codec/hpack.h"

#include <stddef.h>

struct tt_arena_chunk;

struct tt_arena {
    struct tt_arena_chunk *chunks; /* newest first */
    size_t chunk_size;             /* the usual chunk; bigger requests get their own */
};

/* An empty arena whose chunks are `chunk_size` bytes (0: 4 KiB). */
void tt_arena_init(struct tt_arena *a, size_t chunk_size);
/* `n` bytes aligned for any type, valid until the next reset.  Returns NULL
 * when out of memory. */
void *tt_arena_alloc(struct tt_arena *a, size_t n) __attribute__((warn_unused_result));
/* A copy of `n` bytes of `s` with a NUL after them, or NULL. */
char *tt_arena_strndup(struct tt_arena *a, const char *s, size_t n)
    __attribute__((warn_unused_result));
/* Frees every chunk: the arena is empty again (and may be used on). */
void tt_arena_reset(struct tt_arena *a);
/* Copies n fields, names and values too, into the arena.  NULL when out
 * of room. */
struct tt_header *tt_arena_headers_dup(struct tt_arena *a, const struct tt_header *h, size_t n);

#endif
