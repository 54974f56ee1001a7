/*
 * libFuzzer target: the HPACK decoder on arbitrary header blocks.
 *
 * Input: byte 0 picks the table size we advertise (low 3 bits) and how
 * cramped the output is (high bits: scratch and header slots, list-size
 * limit, string limit), so the overflow path that keeps the table in step
 * is fuzzed too.  The rest is a sequence of blocks, each `len` (1 byte)
 * then `len` bytes, decoded in order by one decoder; a length byte of 0xff
 * instead announces a SETTINGS_HEADER_TABLE_SIZE change (next byte * 32).
 */
#include "codec/hpack.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t table_sizes[8] = {0, 32, 64, 256, 1024, 4096, 8192, 65536};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static struct tt_header hdrs[128];
    static char scratch[16384];
    struct tt_hpack_decoder dec;
    if (tt_hpack_decoder_init(&dec, table_sizes[data[0] & 7]))
        return 0;
    struct tt_hpack_out out = {.hdrs = hdrs, .hdrs_cap = 128, .scratch = scratch,
                               .scratch_cap = sizeof scratch};
    if (data[0] & 0x08)
        out.scratch_cap = 40;
    if (data[0] & 0x10)
        out.hdrs_cap = 3;
    if (data[0] & 0x20)
        out.max_list_size = 200;
    if (data[0] & 0x40)
        dec.max_string_len = 16;
    size_t i = 1;
    while (i < size) {
        uint8_t len = data[i++];
        if (len == 0xff) {
            if (i < size && tt_hpack_decoder_set_max_table_size(&dec, (uint32_t)data[i++] * 32))
                break;
            continue;
        }
        if (len > size - i)
            len = (uint8_t)(size - i);
        int rc = tt_hpack_decode_block(&dec, data + i, len, &out);
        i += len;
        if (rc == 0 || rc == TT_ERR_HEADER_TOO_LARGE) {
            if (rc == 0) {
                /* Touch every byte so ASan checks the views. */
                size_t sum = 0;
                for (size_t k = 0; k < out.count; k++) {
                    for (uint32_t b = 0; b < hdrs[k].name_len; b++)
                        sum += (uint8_t)hdrs[k].name[b];
                    for (uint32_t b = 0; b < hdrs[k].value_len; b++)
                        sum += (uint8_t)hdrs[k].value[b];
                }
                if (sum == 1)
                    out.list_size = 0;
            }
            if (dec.table.size > dec.table.max_size)
                abort();
            continue;
        }
        if (rc != TT_ERR_HPACK && rc != TT_ERR_NOMEM)
            abort();
        break; /* a connection error: the context is dead */
    }
    tt_hpack_decoder_free(&dec);
    return 0;
}
