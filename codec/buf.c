#include "buf.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

static const struct tt_mem_hooks *mem_hooks;

void tt_mem_set_hooks(const struct tt_mem_hooks *hooks) { mem_hooks = hooks; }

void *tt_mem_alloc(size_t size)
{
    return mem_hooks ? mem_hooks->malloc(size, mem_hooks->ud) : malloc(size);
}

void *tt_mem_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = tt_mem_alloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *tt_mem_realloc(void *p, size_t size)
{
    return mem_hooks ? mem_hooks->realloc(p, size, mem_hooks->ud) : realloc(p, size);
}

void tt_mem_free(void *p)
{
    if (mem_hooks)
        mem_hooks->free(p, mem_hooks->ud);
    else
        free(p);
}

void tt_buf_init(tt_buf *b, size_t max)
{
    b->base = NULL;
    b->off = b->len = b->cap = 0;
    b->max = max;
}

void tt_buf_free(tt_buf *b)
{
    tt_mem_free(b->base);
    tt_buf_init(b, b->max);
}

uint8_t *tt_buf_reserve(tt_buf *b, size_t want)
{
    if (b->base && b->cap - b->off - b->len >= want)
        return b->base + b->off + b->len;
    if (b->max != 0 && (want > b->max || b->len > b->max - want))
        return NULL;
    if (b->off != 0 && b->cap - b->len >= want) {
        memmove(b->base, b->base + b->off, b->len);
        b->off = 0;
        return b->base + b->len;
    }
    size_t need = b->len + want;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (b->max != 0 && ncap > b->max)
        ncap = b->max;
    uint8_t *nb = tt_mem_alloc(ncap);
    if (!nb)
        return NULL;
    if (b->len)
        memcpy(nb, b->base + b->off, b->len);
    tt_mem_free(b->base);
    b->base = nb;
    b->off = 0;
    b->cap = ncap;
    return b->base + b->len;
}

void tt_buf_commit(tt_buf *b, size_t n) { b->len += n; }

int tt_buf_append_last(tt_buf *b, const void *data, size_t len)
{
    if (b->base || len == 0 || len >= 4096 || (b->max && len > b->max))
        return tt_buf_append(b, data, len);
    b->base = tt_mem_alloc(len);
    if (!b->base)
        return TT_ERR_NOMEM;
    memcpy(b->base, data, len);
    b->off = 0;
    b->cap = b->len = len;
    return 0;
}

int tt_buf_append(tt_buf *b, const void *data, size_t len)
{
    uint8_t *p = tt_buf_reserve(b, len);
    if (!p)
        return TT_ERR_NOMEM;
    if (len)
        memcpy(p, data, len);
    b->len += len;
    return 0;
}

void tt_buf_consume(tt_buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}

void tt_buf_shrink(tt_buf *b)
{
    if (b->len == 0) {
        tt_mem_free(b->base);
        b->base = NULL;
        b->off = b->cap = 0;
    }
}
