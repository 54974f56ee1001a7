/*
 * The HPACK Huffman code (RFC 7541 §5.2, Appendix B), used by hpack.c for
 * string literals and exposed for tests and the benchmark.  No state, no
 * allocation.
 */
#ifndef TT_HUFFMAN_H
#define TT_HUFFMAN_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes a Huffman-coded string.  Returns the decoded length, or
 * TT_ERR_HPACK (bad padding, EOS, code past end) or TT_ERR_HEADER_TOO_LARGE
 * when out_cap is too small. */
long tt_huff_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);
/* Length in bytes of the Huffman encoding of `in`. */
size_t tt_huff_encoded_len(const uint8_t *in, size_t len);
/* Writes the encoding (tt_huff_encoded_len bytes) and returns its length. */
size_t tt_huff_encode(const uint8_t *in, size_t len, uint8_t *out);

#endif
