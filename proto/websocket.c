#include "proto/websocket.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

/* RFC 6455 §1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int tt_ws_key_valid(const char *key, size_t len)
{
    if (len != TT_WS_KEY_LEN || key[22] != '=' || key[23] != '=')
        return 0;
    unsigned char raw[18];
    /* EVP_DecodeBlock counts the padding as data: 16 bytes come out as 18. */
    return EVP_DecodeBlock(raw, (const unsigned char *)key, (int)len) == 18;
}

void tt_ws_accept(const char *key, size_t len, char out[TT_WS_ACCEPT_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) || !EVP_DigestUpdate(ctx, key, len) ||
        !EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) ||
        !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 20) {
        /* No digest: an answer no client accepts, rather than a wrong one
         * that looks right. */
        memset(out, '-', TT_WS_ACCEPT_LEN);
        out[TT_WS_ACCEPT_LEN] = 0;
    } else {
        EVP_EncodeBlock((unsigned char *)out, md, 20);
    }
    EVP_MD_CTX_free(ctx);
}

int tt_ws_key_new(char out[TT_WS_KEY_LEN + 1])
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
    return 0;
}
