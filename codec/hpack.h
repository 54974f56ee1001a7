/*
 * HPACK (RFC 7541): header compression for HTTP/2.
 *
 * The decoder takes one complete header block (the HTTP/2 layer joins
 * HEADERS and CONTINUATION fragments first) and writes the fields into a
 * caller-provided list whose storage is a caller-provided scratch area, so
 * decoding allocates nothing per header.  The dynamic table is a ring of
 * entries in one allocation sized by the table's limit.
 *
 * The encoder writes one header block into a tt_buf.  It indexes what is
 * worth indexing, never indexes secrets (authorization, proxy-authorization,
 * cookie, set-cookie, and any field the caller flags TT_HDR_NEVER_INDEX), and
 * chooses Huffman only when it is shorter.
 */
#ifndef TT_HPACK_H
#define TT_HPACK_H

#include "buf.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>

/* Header field flags. */
#define TT_HDR_NEVER_INDEX 0x1 /* literal never indexed (RFC 7541 §6.2.3) */
#define TT_HDR_NO_INDEX 0x2    /* encoder: do not add to the dynamic table */

struct tt_header {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
    uint32_t flags;
};

#define TT_HPACK_ENTRY_OVERHEAD 32 /* RFC 7541 §4.1 */

/* The dynamic table (RFC 7541 §2.3.2): a ring of entries, newest first.
 * `size` is the RFC size (name + value + 32 per entry). */
struct hpack_entry;
struct tt_hpack_table {
    struct hpack_entry *entries; /* ring of `cap` slots */
    uint8_t *strings;            /* ring of bytes, `string_cap` long */
    uint32_t cap, head, count;
    uint32_t string_cap, string_head, string_used;
    uint32_t size, max_size;
    uint32_t insert_count; /* entries ever inserted: ids for the encoder index */
    void *index;           /* encoder only: hash index over entries */
};

struct tt_hpack_decoder {
    struct tt_hpack_table table;
    uint32_t settings_max;     /* SETTINGS_HEADER_TABLE_SIZE we advertised */
    uint32_t min_since_block;  /* smallest settings_max since the last block */
    int update_required;       /* a size update must open the next block */
    uint32_t max_string_len;   /* longest name or value accepted */
};

/* The output of one decode: fields point into `scratch`, valid until the
 * scratch area is reused. */
struct tt_hpack_out {
    struct tt_header *hdrs;
    size_t hdrs_cap;
    size_t count;
    char *scratch;
    size_t scratch_cap;
    size_t scratch_len;
    size_t list_size;     /* RFC 9113 §6.5.2 size of what was decoded */
    size_t max_list_size; /* 0: no limit other than scratch/hdrs */
};

/* Returns 0, or TT_ERR_NOMEM. `max_table_size` is the
 * SETTINGS_HEADER_TABLE_SIZE we advertise (4096 by default). */
int tt_hpack_decoder_init(struct tt_hpack_decoder *dec, uint32_t max_table_size) TT_WUR;
void tt_hpack_decoder_free(struct tt_hpack_decoder *dec);
/* Call when the peer has acknowledged a new SETTINGS_HEADER_TABLE_SIZE: the
 * next block must then start with a size update no larger (RFC 7541 §4.2).
 * Returns 0, or TT_ERR_NOMEM. */
int tt_hpack_decoder_set_max_table_size(struct tt_hpack_decoder *dec, uint32_t size) TT_WUR;

/* Decodes one complete header block into `out` (count reset to 0 first).
 * Returns 0; TT_ERR_HPACK on any compression error (a connection error,
 * COMPRESSION_ERROR); TT_ERR_HEADER_TOO_LARGE when the fields do not fit in
 * `out` or pass max_list_size: the whole block is still decoded so that the
 * dynamic table stays in step, and the caller treats it as a stream error. */
int tt_hpack_decode_block(struct tt_hpack_decoder *dec, const uint8_t *in, size_t len,
                          struct tt_hpack_out *out) TT_WUR;

struct tt_hpack_encoder {
    struct tt_hpack_table table;
    uint32_t own_max;         /* the most table we are willing to keep */
    uint32_t peer_max;        /* peer's SETTINGS_HEADER_TABLE_SIZE */
    uint32_t pending_min;     /* smallest size since last block (for updates) */
    int update_pending;
};

/* Returns 0, or TT_ERR_NOMEM. `own_max` bounds the encoder's table whatever
 * the peer allows (4096 is a good default). */
int tt_hpack_encoder_init(struct tt_hpack_encoder *enc, uint32_t own_max) TT_WUR;
void tt_hpack_encoder_free(struct tt_hpack_encoder *enc);
/* Call when the peer's SETTINGS_HEADER_TABLE_SIZE arrives; the encoder emits
 * the size update(s) at the start of its next block. */
void tt_hpack_encoder_set_peer_max(struct tt_hpack_encoder *enc, uint32_t size);

/* Appends one header block for `hdrs` to `out`.  Names must already be
 * lowercase.  Returns 0, or TT_ERR_NOMEM (the table is then left unchanged
 * only if nothing was appended; the caller must treat it as fatal). */
int tt_hpack_encode_block(struct tt_hpack_encoder *enc, const struct tt_header *hdrs,
                          size_t n, tt_buf *out) TT_WUR;

/* Primitives, exposed for tests and the benchmark. */

/* Decodes an HPACK integer with an N-bit prefix.  Returns bytes used, 0 when
 * more input is needed, or TT_ERR_HPACK on overflow past 2^32-1. */
int tt_hpack_decode_int(const uint8_t *in, size_t len, unsigned prefix_bits, uint32_t *value);
/* Encodes; `first` carries the high bits of the first byte. Returns bytes
 * written (at most 6). */
size_t tt_hpack_encode_int(uint8_t *out, uint8_t first, unsigned prefix_bits, uint32_t value);

/* Huffman (RFC 7541 §5.2, Appendix B). decode returns the decoded length,
 * or TT_ERR_HPACK (bad padding, EOS, code past end) or TT_ERR_HEADER_TOO_LARGE
 * when out_cap is too small. */
long tt_huff_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);
/* Length in bytes of the Huffman encoding of `in`. */
size_t tt_huff_encoded_len(const uint8_t *in, size_t len);
/* Writes the encoding (tt_huff_encoded_len bytes) and returns its length. */
size_t tt_huff_encode(const uint8_t *in, size_t len, uint8_t *out);

#endif
