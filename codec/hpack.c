/*
 * HPACK (RFC 7541).
 *
 * The dynamic table, shared by decoder and encoder
 * ------------------------------------------------
 * Entries live in a power-of-two ring of slots.  Every entry gets an id when
 * it is inserted (1, 2, 3, ...: tt_hpack_table.insert_count is the newest),
 * and entry id k lives in slot k & (cap - 1).  Since at most max_size / 32
 * entries can be live (each costs at least 32, §4.1), a ring of that many
 * slots never overwrites a live entry.  HPACK index i (1 = newest dynamic
 * entry, i.e. absolute index 62) is id insert_count + 1 - i.
 *
 * Names and values are stored back to back in a byte ring of max_size bytes
 * (the strings of the live entries never add up to more than max_size - 32 *
 * count).  A string may wrap around the end of the ring; readers copy it in
 * two pieces.  Evicting the oldest entry only moves counters.
 *
 * Both rings are allocated on the first insert (an idle connection, or one
 * whose peer never indexes anything, holds none) and freed when the table's
 * maximum size drops to 0.
 *
 * The encoder adds a hash index (struct hp_index): per slot, the hash of the
 * name and of (name, value) and the id of the next older entry in the same
 * bucket; per bucket, the id of the newest entry.  Chains run newest to
 * oldest, so a walk stops at the first id that has been evicted: eviction
 * never has to unlink anything, and lookups are O(1) on average.
 *
 * Decoding
 * --------
 * Decoded strings go into the caller's scratch area; fields that come from
 * the static table point at the static strings (they live forever), which
 * saves a copy for the most common fields.  When the output does not fit
 * (hdrs, scratch, max_list_size, max_string_len), the decoder keeps going in
 * "overflow" mode, writing strings into private spill buffers (allocated only
 * on this error path), so that the dynamic table stays in step with the
 * peer's encoder; it then returns TT_ERR_HEADER_TOO_LARGE.
 *
 * String literals are Huffman-coded by huffman.c (tt_huff_*), a pure string
 * transform that shares the generated huff_table.h with this file.
 */
#include "hpack.h"

#include "huff_table.h"
#include "huffman.h"

#include <string.h>

struct hpack_entry {
    uint32_t off; /* name then value, in the string ring */
    uint32_t name_len;
    uint32_t value_len;
};

struct hp_link {
    uint32_t hash_nv, hash_n; /* low 32 bits of the hashes */
    uint32_t next_nv, next_n; /* older entry id in the same bucket, 0: none */
};

struct hp_index {
    uint32_t bucket_mask;
    uint32_t *bucket_nv; /* newest entry id in each bucket, 0: none */
    uint32_t *bucket_n;
    struct hp_link *links; /* one per slot */
};

#define HP_DEFAULT_TABLE 4096u /* RFC 7541 §4.2 / RFC 9113 §6.5.2 */

#if defined(__GNUC__)
#define HP_LIKELY(x) __builtin_expect(!!(x), 1)
#define HP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HP_LIKELY(x) (x)
#define HP_UNLIKELY(x) (x)
#endif

/* ------------------------------------------------------------------ hash */

static inline uint64_t hp_load_le(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static inline uint64_t hp_load64_le(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
#else
    return hp_load_le(p, 8);
#endif
}

/* Must stay identical to hp_hash in tools/mkhuff.py (the static table's
 * perfect hash is built with it). */
static inline uint64_t hp_hash(const uint8_t *p, size_t n, uint64_t h)
{
    h ^= (uint64_t)n * HP_HASH_K1;
    while (n >= 8) {
        h = (h ^ hp_load64_le(p)) * HP_HASH_K2;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    if (n) {
        h = (h ^ hp_load_le(p, n)) * HP_HASH_K2;
        h ^= h >> 31;
    }
    h ^= h >> 29;
    h *= HP_HASH_K3;
    h ^= h >> 32;
    return h;
}

/* ------------------------------------------------------------- integers */

int tt_hpack_decode_int(const uint8_t *in, size_t len, unsigned prefix_bits, uint32_t *value)
{
    if (len == 0)
        return 0;
    uint32_t mask = (1u << prefix_bits) - 1;
    uint64_t v = in[0] & mask;
    if (v < mask) {
        *value = (uint32_t)v;
        return 1;
    }
    /* §5.1: 7 bits per continuation byte; 5 of them already pass 2^32, so
     * more (even zero-valued padding bytes) is an error. */
    for (size_t i = 1; i <= 5; i++) {
        if (i >= len)
            return 0;
        v += (uint64_t)(in[i] & 0x7f) << (7 * (i - 1));
        if (v > UINT32_MAX)
            return TT_ERR_HPACK;
        if (!(in[i] & 0x80)) {
            *value = (uint32_t)v;
            return (int)i + 1;
        }
    }
    return TT_ERR_HPACK;
}

size_t tt_hpack_encode_int(uint8_t *out, uint8_t first, unsigned prefix_bits, uint32_t value)
{
    uint32_t mask = (1u << prefix_bits) - 1;
    if (value < mask) {
        out[0] = first | (uint8_t)value;
        return 1;
    }
    out[0] = first | (uint8_t)mask;
    value -= mask;
    size_t n = 1;
    while (value >= 0x80) {
        out[n++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    out[n++] = (uint8_t)value;
    return n;
}

/* Fast path for the decoder: returns the position after the integer, or
 * NULL on truncation or overflow. */
static inline const uint8_t *hp_int(const uint8_t *p, const uint8_t *end, unsigned prefix_bits,
                                    uint32_t *value)
{
    uint32_t mask = (1u << prefix_bits) - 1;
    uint32_t v = *p & mask;
    if (HP_LIKELY(v < mask)) {
        *value = v;
        return p + 1;
    }
    int n = tt_hpack_decode_int(p, (size_t)(end - p), prefix_bits, value);
    return n > 0 ? p + n : NULL;
}

/* ---------------------------------------------------------- the table */

static uint32_t hd_pow2(uint32_t v)
{
    uint32_t c = 1;
    while (c < v)
        c <<= 1;
    return c;
}

static void hd_table_init(struct tt_hpack_table *t, uint32_t max_size, int indexed)
{
    memset(t, 0, sizeof(*t));
    t->max_size = max_size;
    t->indexed = indexed;
}

static void hd_table_release(struct tt_hpack_table *t)
{
    tt_mem_free(t->entries);
    tt_mem_free(t->strings);
    struct hp_index *ix = t->index;
    if (ix) {
        tt_mem_free(ix->bucket_nv);
        tt_mem_free(ix->links);
        tt_mem_free(ix);
    }
    t->entries = NULL;
    t->strings = NULL;
    t->index = NULL;
    t->cap = t->string_cap = 0;
    t->string_head = 0;
}

static inline struct hpack_entry *hd_slot(const struct tt_hpack_table *t, uint32_t id)
{
    return &t->entries[id & (t->cap - 1)];
}

/* Evicts the oldest entry (§4.4). */
static void hd_evict_one(struct tt_hpack_table *t)
{
    uint32_t id = t->insert_count - t->count + 1;
    struct hpack_entry *e = hd_slot(t, id);
    t->size -= e->name_len + e->value_len + TT_HPACK_ENTRY_OVERHEAD;
    t->string_used -= e->name_len + e->value_len;
    t->count--;
}

static void hd_evict_to(struct tt_hpack_table *t, uint32_t limit)
{
    while (t->size > limit)
        hd_evict_one(t);
}

/* §4.3: a new maximum evicts what no longer fits. */
static void hd_set_max(struct tt_hpack_table *t, uint32_t max)
{
    t->max_size = max;
    hd_evict_to(t, max);
    if (max == 0)
        hd_table_release(t);
}

static void hd_copy_out(const struct tt_hpack_table *t, uint32_t off, uint32_t n, uint8_t *dst)
{
    uint32_t first = t->string_cap - off;
    if (n <= first) {
        memcpy(dst, t->strings + off, n);
    } else {
        memcpy(dst, t->strings + off, first);
        memcpy(dst + first, t->strings, n - first);
    }
}

static void hd_copy_in(struct tt_hpack_table *t, const uint8_t *src, uint32_t n)
{
    uint32_t first = t->string_cap - t->string_head;
    if (n <= first) {
        memcpy(t->strings + t->string_head, src, n);
    } else {
        memcpy(t->strings + t->string_head, src, first);
        memcpy(t->strings, src + first, n - first);
    }
    t->string_head += n;
    if (t->string_head >= t->string_cap)
        t->string_head -= t->string_cap;
}

static int hd_equal(const struct tt_hpack_table *t, uint32_t off, const uint8_t *s, uint32_t n)
{
    if (n == 0)
        return 1;
    if (off >= t->string_cap)
        off -= t->string_cap;
    uint32_t first = t->string_cap - off;
    if (n <= first)
        return memcmp(t->strings + off, s, n) == 0;
    return memcmp(t->strings + off, s, first) == 0 &&
           memcmp(t->strings, s + first, n - first) == 0;
}

static void hd_index_link(struct tt_hpack_table *t, uint32_t id)
{
    struct hp_index *ix = t->index;
    struct hp_link *lk = &ix->links[id & (t->cap - 1)];
    uint32_t bn = lk->hash_n & ix->bucket_mask, bnv = lk->hash_nv & ix->bucket_mask;
    lk->next_n = ix->bucket_n[bn];
    ix->bucket_n[bn] = id;
    lk->next_nv = ix->bucket_nv[bnv];
    ix->bucket_nv[bnv] = id;
}

/* Makes room for t->max_size: the rings are (re)allocated and the live
 * entries moved over in order.  Returns 0 or TT_ERR_NOMEM (table unchanged). */
static int hd_reserve(struct tt_hpack_table *t)
{
    uint32_t ecap = hd_pow2(t->max_size / TT_HPACK_ENTRY_OVERHEAD ? t->max_size / TT_HPACK_ENTRY_OVERHEAD : 1);
    uint32_t scap = t->max_size;
    if (t->entries && ecap <= t->cap && scap <= t->string_cap)
        return 0;
    if (ecap < t->cap)
        ecap = t->cap;
    if (scap < t->string_cap)
        scap = t->string_cap;

    struct hpack_entry *ne = tt_mem_calloc(ecap, sizeof(*ne));
    uint8_t *ns = tt_mem_alloc(scap ? scap : 1);
    struct hp_index *nix = NULL;
    if (ne && ns && t->indexed) {
        nix = tt_mem_calloc(1, sizeof(*nix));
        if (nix) {
            nix->bucket_mask = ecap * 2 - 1;
            nix->bucket_nv = tt_mem_calloc((size_t)ecap * 4, sizeof(uint32_t));
            nix->bucket_n = nix->bucket_nv ? nix->bucket_nv + ecap * 2 : NULL;
            nix->links = tt_mem_calloc(ecap, sizeof(struct hp_link));
            if (!nix->bucket_nv || !nix->links) {
                tt_mem_free(nix->bucket_nv);
                tt_mem_free(nix->links);
                tt_mem_free(nix);
                nix = NULL;
            }
        }
    }
    if (!ne || !ns || (t->indexed && !nix)) {
        tt_mem_free(ne);
        tt_mem_free(ns);
        return TT_ERR_NOMEM;
    }

    /* Move live entries, oldest first, strings packed from offset 0. */
    uint32_t pos = 0;
    struct hp_index *oix = t->index;
    for (uint32_t id = t->insert_count - t->count + 1; id != t->insert_count + 1; id++) {
        struct hpack_entry *oe = hd_slot(t, id);
        struct hpack_entry *e = &ne[id & (ecap - 1)];
        uint32_t n = oe->name_len + oe->value_len;
        hd_copy_out(t, oe->off, n, ns + pos);
        e->off = pos;
        e->name_len = oe->name_len;
        e->value_len = oe->value_len;
        pos += n;
        if (nix) {
            struct hp_link *ol = &oix->links[id & (t->cap - 1)];
            nix->links[id & (ecap - 1)].hash_n = ol->hash_n;
            nix->links[id & (ecap - 1)].hash_nv = ol->hash_nv;
        }
    }
    hd_table_release(t);
    t->entries = ne;
    t->strings = ns;
    t->cap = ecap;
    t->string_cap = scap ? scap : 1;
    t->string_head = pos == t->string_cap ? 0 : pos;
    t->index = nix;
    if (nix)
        for (uint32_t id = t->insert_count - t->count + 1; id != t->insert_count + 1; id++)
            hd_index_link(t, id);
    return 0;
}

/* §4.4: evicts until the new entry fits, then adds it; an entry larger than
 * the whole table empties it and is not added.  Returns 0 or TT_ERR_NOMEM. */
static int hd_insert(struct tt_hpack_table *t, const uint8_t *name, uint32_t nlen,
                     const uint8_t *value, uint32_t vlen, uint64_t hn, uint64_t hnv)
{
    uint64_t esize = (uint64_t)nlen + vlen + TT_HPACK_ENTRY_OVERHEAD;
    if (esize > t->max_size) {
        hd_evict_to(t, 0);
        return 0;
    }
    hd_evict_to(t, t->max_size - (uint32_t)esize);
    if (!t->entries || t->string_cap < t->max_size ||
        t->cap < t->max_size / TT_HPACK_ENTRY_OVERHEAD) {
        int rc = hd_reserve(t);
        if (rc)
            return rc;
    }
    uint32_t id = ++t->insert_count;
    struct hpack_entry *e = hd_slot(t, id);
    e->off = t->string_head;
    e->name_len = nlen;
    e->value_len = vlen;
    hd_copy_in(t, name, nlen);
    hd_copy_in(t, value, vlen);
    t->string_used += nlen + vlen;
    t->size += (uint32_t)esize;
    t->count++;
    if (t->index) {
        struct hp_link *lk = &((struct hp_index *)t->index)->links[id & (t->cap - 1)];
        lk->hash_n = (uint32_t)hn;
        lk->hash_nv = (uint32_t)hnv;
        hd_index_link(t, id);
    }
    return 0;
}

/* ------------------------------------------------------------- decoder */

int tt_hpack_decoder_init(struct tt_hpack_decoder *dec, uint32_t max_table_size)
{
    memset(dec, 0, sizeof(*dec));
    /* The peer starts with the protocol default (§4.2 with RFC 9113
     * §6.5.2); until our SETTINGS is acknowledged, the default applies. */
    hd_table_init(&dec->table, HP_DEFAULT_TABLE, 0);
    dec->settings_max = HP_DEFAULT_TABLE;
    dec->min_since_block = HP_DEFAULT_TABLE;
    dec->max_string_len = 0;
    if (max_table_size != HP_DEFAULT_TABLE)
        return tt_hpack_decoder_set_max_table_size(dec, max_table_size);
    return 0;
}

void tt_hpack_decoder_free(struct tt_hpack_decoder *dec) { hd_table_release(&dec->table); }

int tt_hpack_decoder_set_max_table_size(struct tt_hpack_decoder *dec, uint32_t size)
{
    dec->settings_max = size;
    if (size < dec->min_since_block)
        dec->min_since_block = size;
    /* §4.2: after a change the encoder signals the new size in the next
     * block.  As nghttp2 reads the RFC, only a limit below the size in use
     * obliges it to; a larger limit may simply go unused. */
    if (size < dec->table.max_size)
        dec->update_required = 1;
    return 0;
}

struct hp_dec {
    struct tt_hpack_decoder *dec;
    struct tt_hpack_out *out;
    int overflow;         /* output no longer kept: only the table matters */
    uint8_t *spill[2];    /* overflow storage for a name [0] and a value [1] */
    size_t spill_cap[2];
};

/* Storage for `n` bytes of string `which` (0 name, 1 value): the scratch
 * area while the output still fits, a spill buffer once it does not. */
static uint8_t *hp_dec_room(struct hp_dec *d, int which, size_t n)
{
    struct tt_hpack_out *out = d->out;
    if (!d->overflow && out->scratch_cap - out->scratch_len >= n)
        return (uint8_t *)out->scratch + out->scratch_len;
    d->overflow = 1;
    if (d->spill_cap[which] < n) {
        uint8_t *p = tt_mem_realloc(d->spill[which], n ? n : 1);
        if (!p)
            return NULL;
        d->spill[which] = p;
        d->spill_cap[which] = n;
    }
    return d->spill[which];
}

static inline void hp_dec_used(struct hp_dec *d, size_t n)
{
    if (!d->overflow)
        d->out->scratch_len += n;
}

/* Reads a string literal (§5.2).  Returns the position after it, or NULL
 * with *err set. */
static const uint8_t *hp_dec_string(struct hp_dec *d, const uint8_t *p, const uint8_t *end,
                                    int which, const uint8_t **s, uint32_t *slen, int *err)
{
    uint32_t n;
    int huff = *p & 0x80;
    p = hp_int(p, end, 7, &n);
    if (!p || n > (size_t)(end - p)) {
        *err = TT_ERR_HPACK;
        return NULL;
    }
    if (!huff) {
        uint8_t *dst = hp_dec_room(d, which, n);
        if (!dst) {
            *err = TT_ERR_NOMEM;
            return NULL;
        }
        memcpy(dst, p, n);
        hp_dec_used(d, n);
        *s = dst;
        *slen = n;
        return p + n;
    }
    /* The shortest code is 5 bits, so n bytes give at most n * 8 / 5. */
    size_t bound = (size_t)n * 8 / 5;
    long r = -1;
    uint8_t *dst = NULL;
    if (!d->overflow) {
        struct tt_hpack_out *out = d->out;
        size_t room = out->scratch_cap - out->scratch_len;
        dst = (uint8_t *)out->scratch + out->scratch_len;
        r = tt_huff_decode(p, n, dst, room < bound ? room : bound);
        if (r == TT_ERR_HEADER_TOO_LARGE)
            d->overflow = 1;
    }
    if (d->overflow) {
        dst = hp_dec_room(d, which, bound);
        if (!dst) {
            *err = TT_ERR_NOMEM;
            return NULL;
        }
        r = tt_huff_decode(p, n, dst, bound);
    }
    if (r < 0) {
        *err = TT_ERR_HPACK;
        return NULL;
    }
    hp_dec_used(d, (size_t)r);
    *s = dst;
    *slen = (uint32_t)r;
    return p + n;
}

/* Name (and value) of index `idx` (§2.3.3). Dynamic strings are copied out
 * since later inserts of the same block may evict them. */
static int hp_dec_indexed(struct hp_dec *d, uint32_t idx, int want_value, const uint8_t **name,
                          uint32_t *nlen, const uint8_t **value, uint32_t *vlen)
{
    if (idx == 0)
        return TT_ERR_HPACK;
    if (idx <= 61) {
        *name = (const uint8_t *)hp_static[idx].name;
        *nlen = hp_static[idx].name_len;
        if (want_value) {
            *value = (const uint8_t *)hp_static[idx].value;
            *vlen = hp_static[idx].value_len;
        }
        return 0;
    }
    struct tt_hpack_table *t = &d->dec->table;
    uint32_t i = idx - 61;
    if (i > t->count)
        return TT_ERR_HPACK;
    const struct hpack_entry *e = hd_slot(t, t->insert_count + 1 - i);
    uint8_t *dst = hp_dec_room(d, 0, e->name_len);
    if (!dst)
        return TT_ERR_NOMEM;
    hd_copy_out(t, e->off, e->name_len, dst);
    hp_dec_used(d, e->name_len);
    *name = dst;
    *nlen = e->name_len;
    if (want_value) {
        uint32_t voff = e->off + e->name_len;
        if (voff >= t->string_cap)
            voff -= t->string_cap;
        dst = hp_dec_room(d, 1, e->value_len);
        if (!dst)
            return TT_ERR_NOMEM;
        hd_copy_out(t, voff, e->value_len, dst);
        hp_dec_used(d, e->value_len);
        *value = dst;
        *vlen = e->value_len;
    }
    return 0;
}

static inline void hp_dec_emit(struct hp_dec *d, const uint8_t *name, uint32_t nlen,
                               const uint8_t *value, uint32_t vlen, uint32_t flags)
{
    struct tt_hpack_out *out = d->out;
    out->list_size += (size_t)nlen + vlen + TT_HPACK_ENTRY_OVERHEAD;
    uint32_t maxs = d->dec->max_string_len;
    if (d->overflow || out->count == out->hdrs_cap ||
        (out->max_list_size && out->list_size > out->max_list_size) ||
        (maxs && (nlen > maxs || vlen > maxs))) {
        d->overflow = 1;
        return;
    }
    struct tt_header *h = &out->hdrs[out->count++];
    h->name = (const char *)name;
    h->value = (const char *)value;
    h->name_len = nlen;
    h->value_len = vlen;
    h->flags = flags;
}

int tt_hpack_decode_block(struct tt_hpack_decoder *dec, const uint8_t *in, size_t len,
                          struct tt_hpack_out *out)
{
    struct hp_dec d = {.dec = dec, .out = out};
    const uint8_t *p = in, *end = in + len;
    int rc = 0;
    out->count = 0;
    out->scratch_len = 0;
    out->list_size = 0;
    if (!out->scratch)
        out->scratch_cap = 0;

    /* §4.2: dynamic table size updates open the block; after a smaller
     * SETTINGS_HEADER_TABLE_SIZE the first must come and be no larger than
     * the smallest limit in between.  We accept at most two (the smallest,
     * then the final one). */
    int updates = 0;
    while (p < end && (*p & 0xe0) == 0x20) {
        uint32_t v;
        p = hp_int(p, end, 5, &v);
        if (!p || ++updates > 2 || v > dec->settings_max ||
            (updates == 1 && dec->update_required && v > dec->min_since_block))
            return TT_ERR_HPACK;
        hd_set_max(&dec->table, v);
    }
    if (dec->update_required && updates == 0)
        return TT_ERR_HPACK;
    dec->update_required = 0;
    dec->min_since_block = dec->settings_max;

    while (p < end) {
        uint8_t b = *p;
        const uint8_t *name, *value;
        uint32_t nlen, vlen, idx;
        if (b & 0x80) { /* §6.1 indexed field */
            p = hp_int(p, end, 7, &idx);
            if (!p) {
                rc = TT_ERR_HPACK;
                goto out;
            }
            if (HP_LIKELY(idx - 1 < 61)) {
                const struct hp_static_entry *se = &hp_static[idx];
                hp_dec_emit(&d, (const uint8_t *)se->name, se->name_len,
                            (const uint8_t *)se->value, se->value_len, 0);
                continue;
            }
            rc = hp_dec_indexed(&d, idx, 1, &name, &nlen, &value, &vlen);
            if (rc)
                goto out;
            hp_dec_emit(&d, name, nlen, value, vlen, 0);
            continue;
        }
        int incremental = 0;
        uint32_t flags = 0;
        if (b & 0x40) { /* §6.2.1 with incremental indexing */
            incremental = 1;
            p = hp_int(p, end, 6, &idx);
        } else if (b & 0x20) { /* §4.2: a size update after a field */
            rc = TT_ERR_HPACK;
            goto out;
        } else { /* §6.2.2 without indexing, §6.2.3 never indexed */
            if (b & 0x10)
                flags = TT_HDR_NEVER_INDEX;
            p = hp_int(p, end, 4, &idx);
        }
        if (!p || p == end) {
            rc = TT_ERR_HPACK;
            goto out;
        }
        if (idx) {
            rc = hp_dec_indexed(&d, idx, 0, &name, &nlen, NULL, NULL);
            if (rc)
                goto out;
        } else {
            p = hp_dec_string(&d, p, end, 0, &name, &nlen, &rc);
            if (!p)
                goto out;
            if (p == end) {
                rc = TT_ERR_HPACK;
                goto out;
            }
        }
        p = hp_dec_string(&d, p, end, 1, &value, &vlen, &rc);
        if (!p)
            goto out;
        if (incremental) {
            rc = hd_insert(&dec->table, name, nlen, value, vlen, 0, 0);
            if (rc)
                goto out;
        }
        hp_dec_emit(&d, name, nlen, value, vlen, flags);
    }
    if (d.overflow)
        rc = TT_ERR_HEADER_TOO_LARGE;
out:
    tt_mem_free(d.spill[0]);
    tt_mem_free(d.spill[1]);
    return rc;
}

/* ------------------------------------------------------------- encoder */

int tt_hpack_encoder_init(struct tt_hpack_encoder *enc, uint32_t own_max)
{
    memset(enc, 0, sizeof(*enc));
    hd_table_init(&enc->table, HP_DEFAULT_TABLE, 1);
    enc->own_max = own_max;
    enc->peer_max = HP_DEFAULT_TABLE;
    enc->pending_min = HP_DEFAULT_TABLE;
    tt_hpack_encoder_set_peer_max(enc, HP_DEFAULT_TABLE);
    return 0;
}

void tt_hpack_encoder_free(struct tt_hpack_encoder *enc) { hd_table_release(&enc->table); }

void tt_hpack_encoder_set_peer_max(struct tt_hpack_encoder *enc, uint32_t size)
{
    enc->peer_max = size;
    uint32_t eff = size < enc->own_max ? size : enc->own_max;
    if (eff < enc->pending_min)
        enc->pending_min = eff;
    /* Only a change needs signalling (§4.2); a limit that shrank below the
     * table in use, even if it grew back, needs the smallest signalled too. */
    if (eff != enc->table.max_size || enc->pending_min < enc->table.max_size)
        enc->update_pending = 1;
}

/* Fields we never add to the table, whoever asks (§7.1.3). */
static int hp_enc_sensitive(const uint8_t *name, uint32_t nlen, uint32_t vlen)
{
    switch (nlen) {
    case 6: /* short cookies have little entropy: guessable (§7.1.3) */
        return vlen < 20 && memcmp(name, "cookie", 6) == 0;
    case 10:
        return memcmp(name, "set-cookie", 10) == 0;
    case 13:
        return memcmp(name, "authorization", 13) == 0;
    case 19:
        return memcmp(name, "proxy-authorization", 19) == 0;
    }
    return 0;
}

/* Fields whose values are mostly unique per message: indexing them only
 * evicts entries that would have been reused. */
static int hp_enc_volatile(const uint8_t *name, uint32_t nlen)
{
    switch (nlen) {
    case 3:
        return memcmp(name, "age", 3) == 0;
    case 4:
        return memcmp(name, "etag", 4) == 0;
    case 5:
        return memcmp(name, ":path", 5) == 0;
    case 8:
        return memcmp(name, "location", 8) == 0;
    case 13:
        return memcmp(name, "if-none-match", 13) == 0;
    case 14:
        return memcmp(name, "content-length", 14) == 0;
    case 17:
        return memcmp(name, "if-modified-since", 17) == 0;
    }
    return 0;
}

static inline uint8_t *hp_enc_string(uint8_t *o, const uint8_t *s, uint32_t n)
{
    size_t h = tt_huff_encoded_len(s, n);
    if (h < n) {
        o += tt_hpack_encode_int(o, 0x80, 7, (uint32_t)h);
        return o + tt_huff_encode(s, n, o);
    }
    o += tt_hpack_encode_int(o, 0, 7, n);
    memcpy(o, s, n);
    return o + n;
}

int tt_hpack_encode_block(struct tt_hpack_encoder *enc, const struct tt_header *hdrs, size_t n,
                          tt_buf *out)
{
    struct tt_hpack_table *t = &enc->table;
    /* Worst case per field: three 6-byte integers and the raw strings. */
    size_t need = 12;
    for (size_t i = 0; i < n; i++)
        need += (size_t)hdrs[i].name_len + hdrs[i].value_len + 18;
    uint8_t *o0 = tt_buf_reserve(out, need);
    if (!o0)
        return TT_ERR_NOMEM;
    uint32_t eff = enc->peer_max < enc->own_max ? enc->peer_max : enc->own_max;
    /* All the storage this block can need is taken now, before a byte is
     * written: the table then never fails half way. */
    uint32_t target = enc->update_pending ? eff : t->max_size;
    if (target > 0) {
        uint32_t keep = t->max_size;
        if (target > keep)
            t->max_size = target;
        int rc = hd_reserve(t);
        t->max_size = keep;
        if (rc)
            return rc;
    }
    uint8_t *o = o0;
    if (enc->update_pending) { /* §4.2, §6.3: the smallest first, then the final */
        if (enc->pending_min < eff) {
            o += tt_hpack_encode_int(o, 0x20, 5, enc->pending_min);
            hd_evict_to(t, enc->pending_min);
        }
        o += tt_hpack_encode_int(o, 0x20, 5, eff);
        hd_evict_to(t, eff);
        t->max_size = eff;
        if (eff == 0)
            hd_table_release(t);
        enc->update_pending = 0;
        enc->pending_min = eff;
    }
    struct hp_index *ix = t->index;

    for (size_t i = 0; i < n; i++) {
        const struct tt_header *h = &hdrs[i];
        const uint8_t *name = (const uint8_t *)h->name, *value = (const uint8_t *)h->value;
        uint32_t nlen = h->name_len, vlen = h->value_len;
        uint64_t hn = hp_hash(name, nlen, HP_STATIC_SEED);

        /* Static table: perfect hash on the name, then the few values. */
        uint32_t name_idx = 0;
        uint16_t slot = hp_static_slot[hn & (HP_STATIC_SLOTS - 1)];
        if (slot) {
            uint32_t first = slot & 0xff, cnt = slot >> 8;
            const struct hp_static_entry *se = &hp_static[first];
            if (se->name_len == nlen && memcmp(se->name, name, nlen) == 0) {
                name_idx = first;
                if (!(h->flags & TT_HDR_NEVER_INDEX)) {
                    for (uint32_t k = 0; k < cnt; k++, se++) {
                        if (se->value_len == vlen && se->value_len &&
                            memcmp(se->value, value, vlen) == 0) {
                            *o++ = (uint8_t)(0x80 | (first + k));
                            goto next;
                        }
                    }
                }
            }
        }

        int never = (h->flags & TT_HDR_NEVER_INDEX) || hp_enc_sensitive(name, nlen, vlen);
        uint64_t hnv = 0;
        int have_hnv = 0;
        if (t->count && !never) {
            /* Dynamic table: the whole field, else the name. */
            hnv = hp_hash(value, vlen, hn);
            have_hnv = 1;
            uint32_t oldest = t->insert_count - t->count;
            for (uint32_t id = ix->bucket_nv[hnv & ix->bucket_mask]; id > oldest;) {
                const struct hp_link *lk = &ix->links[id & (t->cap - 1)];
                const struct hpack_entry *e = hd_slot(t, id);
                if (lk->hash_nv == (uint32_t)hnv && e->name_len == nlen && e->value_len == vlen &&
                    hd_equal(t, e->off, name, nlen) && hd_equal(t, e->off + nlen, value, vlen)) {
                    o += tt_hpack_encode_int(o, 0x80, 7, 61 + t->insert_count + 1 - id);
                    goto next;
                }
                id = lk->next_nv;
            }
        }
        if (!name_idx && t->count) {
            uint32_t oldest = t->insert_count - t->count;
            for (uint32_t id = ix->bucket_n[hn & ix->bucket_mask]; id > oldest;) {
                const struct hp_link *lk = &ix->links[id & (t->cap - 1)];
                const struct hpack_entry *e = hd_slot(t, id);
                if (lk->hash_n == (uint32_t)hn && e->name_len == nlen &&
                    hd_equal(t, e->off, name, nlen)) {
                    name_idx = 61 + t->insert_count + 1 - id;
                    break;
                }
                id = lk->next_n;
            }
        }

        int incremental = !never && !(h->flags & TT_HDR_NO_INDEX) && t->max_size &&
                          (uint64_t)nlen + vlen + 32 <= (uint64_t)t->max_size * 3 / 4 &&
                          !hp_enc_volatile(name, nlen);
        if (incremental)
            o += tt_hpack_encode_int(o, 0x40, 6, name_idx);
        else
            o += tt_hpack_encode_int(o, never ? 0x10 : 0x00, 4, name_idx);
        if (!name_idx)
            o = hp_enc_string(o, name, nlen);
        o = hp_enc_string(o, value, vlen);
        if (incremental) {
            if (!have_hnv)
                hnv = hp_hash(value, vlen, hn);
            /* Storage was reserved above for the table's whole size, so
             * this cannot fail. */
            if (hd_insert(t, name, nlen, value, vlen, hn, hnv)) {
                tt_buf_commit(out, (size_t)(o - o0));
                return TT_ERR_NOMEM;
            }
            ix = t->index;
        }
    next:;
    }
    tt_buf_commit(out, (size_t)(o - o0));
    return 0;
}
