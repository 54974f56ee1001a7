/*
 * Lookup in the generated token table (codec/token_table.h, made by
 * tools/mktokens.py, which also says how the hash is built).
 */
#include "token.h"

#include <string.h>

#define TT_TOKEN_TABLE_DATA
#include "token_table.h"

static inline uint32_t tk_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? c + 32u : c;
}

/* The generator's slot(): length and the first, middle and last bytes,
 * lowercased, so both lookups land on the same slot for any case. */
static inline const struct tt_token *tk_slot(const char *name, size_t len)
{
    if (len == 0 || len > TT_TOKEN_MAX_LEN)
        return NULL;
    const uint8_t *b = (const uint8_t *)name;
    uint32_t mix = (uint32_t)len | tk_lower(b[0]) << 8 | tk_lower(b[len / 2]) << 16 |
                   tk_lower(b[len - 1]) << 24;
    uint8_t i = tk_slots[(uint32_t)(mix * TK_SEED) >> (32 - TK_SLOT_BITS)];
    if (i == 0xff || tt_tokens[i].len != len)
        return NULL;
    return &tt_tokens[i];
}

const struct tt_token *tt_token_find(const char *name, size_t len)
{
    const struct tt_token *t = tk_slot(name, len);
    return t && memcmp(t->name, name, len) == 0 ? t : NULL;
}

const struct tt_token *tt_token_find_ci(const char *name, size_t len)
{
    const struct tt_token *t = tk_slot(name, len);
    if (!t)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (tk_lower((uint8_t)name[i]) != (uint8_t)t->name[i])
            return NULL;
    return t;
}
