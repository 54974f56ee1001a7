/* libFuzzer target: both handshake parsers on arbitrary bytes.  Checks the
 * promises of proto/handshake.h: a head length never exceeds the input or
 * TT_HS_MAX_HEAD, views point inside the input, and the result does not
 * depend on bytes after the head. */
#include "proto/handshake.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fz_check_view(tt_iov v, const uint8_t *buf, size_t len)
{
    if (v.len && (v.base < buf || v.base + v.len > buf + len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tt_hs_request req;
    int r = tt_hs_parse_request(data, size, &req);
    if (r > 0) {
        if ((size_t)r > size || r > TT_HS_MAX_HEAD)
            abort();
        fz_check_view(req.method, data, (size_t)r);
        fz_check_view(req.path, data, (size_t)r);
        fz_check_view(req.token, data, (size_t)r);
        fz_check_view(req.name, data, (size_t)r);
        fz_check_view(req.version, data, (size_t)r);
        if (req.content_length > 0)
            abort();
        /* The head alone parses the same. */
        struct tt_hs_request again;
        if (tt_hs_parse_request(data, (size_t)r, &again) != r ||
            again.upgrade_ok != req.upgrade_ok || again.token.len != req.token.len)
            abort();
    } else if (r < TT_HS_TOO_LARGE) {
        abort();
    }
    /* A prefix never gets a different successful parse. */
    if (r > 0 && size > 1) {
        struct tt_hs_request part;
        int p = tt_hs_parse_request(data, (size_t)r - 1, &part);
        if (p > 0)
            abort();
    }

    struct tt_hs_response resp;
    r = tt_hs_parse_response(data, size, &resp);
    if (r > 0) {
        if ((size_t)r > size || r > TT_HS_MAX_HEAD)
            abort();
        fz_check_view(resp.reason, data, (size_t)r);
        if (resp.status < 100 || resp.status > 999)
            abort();
        if (resp.upgrade_ok && resp.status != 101)
            abort();
        struct tt_hs_response again;
        if (tt_hs_parse_response(data, (size_t)r, &again) != r || again.status != resp.status)
            abort();
    } else if (r < TT_HS_TOO_LARGE) {
        abort();
    }
    return 0;
}
