/*
 * libFuzzer target: HPACK round trip.  Decode a block; if it decodes, encode
 * the fields again with our encoder, decode that with a second decoder and
 * compare the two lists exactly (names, values, and the never-indexed flag,
 * which must survive re-encoding: RFC 7541 §7.1.3).
 *
 * Input: byte 0 picks our encoder's table limit (low 2 bits) and the
 * advertised table of the first decoder (next 2 bits); the rest is blocks,
 * each a length byte and that many bytes, decoded in order, so both tables
 * evolve over several blocks.
 */
#include "codec/hpack.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t enc_sizes[4] = {0, 100, 1024, 4096};
static const uint32_t dec_sizes[4] = {4096, 256, 0, 16384};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tt_header h1[256], h2[256];
static char s1[1 << 16], s2[1 << 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct tt_hpack_decoder d1, d2;
    struct tt_hpack_encoder enc;
    if (tt_hpack_decoder_init(&d1, dec_sizes[(data[0] >> 2) & 3]))
        return 0;
    if (tt_hpack_decoder_init(&d2, 4096) || tt_hpack_encoder_init(&enc, enc_sizes[data[0] & 3]))
        abort();
    struct tt_hpack_out o1 = {.hdrs = h1, .hdrs_cap = 256, .scratch = s1, .scratch_cap = sizeof s1};
    struct tt_hpack_out o2 = {.hdrs = h2, .hdrs_cap = 256, .scratch = s2, .scratch_cap = sizeof s2};
    tt_buf b;
    tt_buf_init(&b, 0);
    size_t i = 1;
    while (i < size) {
        size_t len = data[i++];
        if (len > size - i)
            len = size - i;
        int rc = tt_hpack_decode_block(&d1, data + i, len, &o1);
        i += len;
        if (rc == TT_ERR_HEADER_TOO_LARGE)
            continue;
        if (rc)
            break;
        tt_buf_consume(&b, tt_buf_len(&b));
        if (tt_hpack_encode_block(&enc, h1, o1.count, &b))
            abort();
        rc = tt_hpack_decode_block(&d2, tt_buf_data(&b), tt_buf_len(&b), &o2);
        if (rc || o2.count != o1.count)
            abort();
        for (size_t k = 0; k < o1.count; k++) {
            if (h1[k].name_len != h2[k].name_len || h1[k].value_len != h2[k].value_len ||
                memcmp(h1[k].name, h2[k].name, h1[k].name_len) ||
                memcmp(h1[k].value, h2[k].value, h1[k].value_len))
                abort();
            if ((h1[k].flags & TT_HDR_NEVER_INDEX) && !(h2[k].flags & TT_HDR_NEVER_INDEX))
                abort();
        }
        if (enc.table.count != d2.table.count || enc.table.size != d2.table.size)
            abort();
    }
    tt_buf_free(&b);
    tt_hpack_encoder_free(&enc);
    tt_hpack_decoder_free(&d1);
    tt_hpack_decoder_free(&d2);
    return 0;
}
