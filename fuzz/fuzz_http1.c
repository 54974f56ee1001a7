/* libFuzzer target: the header-token lookups (codec/token.c) and host:port
 * (proto/http1.c), pure functions fed any bytes.
 *
 * Input: one flags byte, then the text.  Checked promises:
 *   - tt_token_find_ci returns what a linear, case-insensitive search of the
 *     table returns; tt_token_find the same or nothing, and only a name
 *     equal byte for byte;
 *   - tt_http1_hostport_parse returns OK or one of its errors; what it
 *     accepts has its views inside the input (the port at its end), a host
 *     within host_max that is empty only with EMPTY_HOST, no ':' in an
 *     unbracketed host, and with STRICT no '@', '/' or control byte in the
 *     host and a port from 1 to 65535. */
#include "codec/token.h"
#include "proto/http1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct tt_token *fz_linear(const char *n, size_t len)
{
    for (size_t i = 0; i < TT_TOK_COUNT; i++)
        if (tt_tokens[i].len == len && strncasecmp(tt_tokens[i].name, n, len) == 0)
            return &tt_tokens[i];
    return NULL;
}

static void fz_token(const char *n, size_t len)
{
    const struct tt_token *want = fz_linear(n, len);
    if (tt_token_find_ci(n, len) != want)
        abort();
    const struct tt_token *exact = tt_token_find(n, len);
    if (exact && (exact != want || memcmp(exact->name, n, len) != 0))
        abort();
    if (!exact && want && memcmp(want->name, n, len) == 0)
        abort();
}

static void fz_hostport(const char *s, size_t len, unsigned flags)
{
    const size_t host_max = 63;
    struct tt_hostport a;
    int rc = tt_http1_hostport_parse(s, len, host_max, flags, &a);
    if (rc > 0 || rc < TT_HOSTPORT_EPORT)
        abort();
    if (rc)
        return;
    if (a.host < s || a.host + a.host_len > s + len || a.port < s || a.port + a.port_len != s + len)
        abort();
    if (a.host_len > host_max || (a.host_len == 0 && !(flags & TT_HOSTPORT_EMPTY_HOST)))
        abort();
    if (!a.has_port && !(flags & TT_HOSTPORT_PORT_OPTIONAL))
        abort();
    if (s[0] != '[' && memchr(a.host, ':', a.host_len))
        abort();
    if (flags & TT_HOSTPORT_STRICT) {
        for (size_t i = 0; i < a.host_len; i++) {
            unsigned char c = (unsigned char)a.host[i];
            if (c <= ' ' || c >= 0x7f || c == '/' || c == '@')
                abort();
        }
        if (a.has_port && (a.port_num < 1 || a.port_num > 65535))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0] & 7;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    fz_token(s, len);
    fz_hostport(s, len, flags);
    return 0;
}
