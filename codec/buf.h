/*
 * Borrowed views and the one growable byte buffer of the project.
 *
 * A tt_buf holds bytes [base+off, base+off+len).  Writers reserve room, fill
 * it, then commit; readers look at tt_buf_data() and consume from the front.
 * Consumed space is reclaimed by sliding the live bytes down when a reserve
 * needs room, so a buffer that is drained as fast as it is filled never grows.
 * Every buffer has a cap: a reserve past it fails instead of growing without
 * bound.
 *
 * All allocation of the project goes through tt_mem_* so that tests can make
 * it fail (tt_mem_set_hooks).
 */
#ifndef TT_BUF_H
#define TT_BUF_H

#include <stddef.h>
#include <stdint.h>

#define TT_WUR __attribute__((warn_unused_result))

/* A borrowed view: the lifetime is stated wherever one is handed out. */
typedef struct tt_iov {
    const uint8_t *base;
    size_t len;
} tt_iov;

struct tt_mem_hooks {
    void *(*malloc)(size_t size, void *ud);
    void *(*realloc)(void *p, size_t size, void *ud);
    void (*free)(void *p, void *ud);
    void *ud;
};

/* Replaces the allocator for the whole process (NULL restores libc). */
void tt_mem_set_hooks(const struct tt_mem_hooks *hooks);
void *tt_mem_alloc(size_t size) TT_WUR;
void *tt_mem_calloc(size_t n, size_t size) TT_WUR;
void *tt_mem_realloc(void *p, size_t size) TT_WUR;
void tt_mem_free(void *p);

typedef struct tt_buf {
    uint8_t *base;
    size_t off;  /* start of live bytes */
    size_t len;  /* live bytes */
    size_t cap;  /* allocated size */
    size_t max;  /* hard cap on cap; 0 means SIZE_MAX */
} tt_buf;

void tt_buf_init(tt_buf *b, size_t max);
void tt_buf_free(tt_buf *b);

/* Returns a pointer to at least `want` writable bytes after the live bytes,
 * or NULL when that would pass the cap or memory ran out.  The pointer is
 * valid until the next call that changes the buffer. */
uint8_t *tt_buf_reserve(tt_buf *b, size_t want) TT_WUR;
/* Marks `n` reserved bytes as written. */
void tt_buf_commit(tt_buf *b, size_t n);
/* Appends bytes; returns 0, or TT_ERR_NOMEM when the cap or memory says no. */
int tt_buf_append(tt_buf *b, const void *data, size_t len) TT_WUR;
/* The same for bytes that are the last this buffer will take (a short
 * local answer): an empty buffer gets exactly their size, not 4 KiB. */
int tt_buf_append_last(tt_buf *b, const void *data, size_t len) TT_WUR;
/* Drops `n` bytes from the front. */
void tt_buf_consume(tt_buf *b, size_t n);
/* Frees the storage of an empty buffer, so that idle connections hold none. */
void tt_buf_shrink(tt_buf *b);

/* NULL when the buffer has no storage (NULL + 0 is undefined in C). */
static inline uint8_t *tt_buf_data(const tt_buf *b) { return b->base ? b->base + b->off : NULL; }
static inline size_t tt_buf_len(const tt_buf *b) { return b->len; }
/* Bytes that can still be appended before the cap. */
static inline size_t tt_buf_room(const tt_buf *b)
{
    return b->max == 0 ? SIZE_MAX - b->len : (b->max > b->len ? b->max - b->len : 0);
}

#endif
