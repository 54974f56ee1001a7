/* libFuzzer target: what p does with an HTTP/1.1 client's request head
 * before anything reaches a tunnel (proxy/route.c, proto/text.c).
 *
 * Input: lines split at '\n': the request-target, the Host value, then
 * "name:value" fields.  Checked promises:
 *   - tt_px_target_split refuses any target with a fragment; an authority it
 *     returns passes tt_px_authority_valid; its views lie inside the target;
 *   - tt_px_authority_valid never accepts whitespace, '/', '?', '#', '@' or
 *     a control byte (what would let a proxy and an origin disagree);
 *   - tt_list_next ends, and yields non-empty elements inside the value
 *     with no comma and no whitespace at either end;
 *   - tt_px_map_request puts pseudo-headers first, never forwards a
 *     hop-by-hop field (RFC 9110 §7.6.1) nor one its Connection names, and
 *     its names are lowercase. */
#include "proto/text.h"
#include "proxy/config.h"
#include "proxy/route.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FZ_FIELDS 64

static int fz_inside(const char *p, size_t n, const char *base, size_t len)
{
    return n == 0 || (p >= base && p + n <= base + len);
}

static int fz_ci(const char *a, size_t n, const char *b)
{
    return n == strlen(b) && strncasecmp(a, b, n) == 0;
}

static void fz_target(const char *t, size_t n)
{
    struct tt_px_target out;
    if (tt_px_target_split(t, n, &out) != 0)
        return;
    if (memchr(t, '#', n))
        abort();
    if (out.authority && (!fz_inside(out.authority, out.authority_len, t, n) ||
                          !tt_px_authority_valid(out.authority, out.authority_len)))
        abort();
    if (!fz_inside(out.path, out.path_len, t, n))
        abort();
}

static void fz_authority(const char *a, size_t n)
{
    if (!tt_px_authority_valid(a, n))
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '@')
            abort();
    }
}

static void fz_list(const char *v, size_t n)
{
    size_t pos = 0, len, rounds = 0;
    const char *el;
    while (tt_list_next(v, n, &pos, &el, &len)) {
        if (++rounds > n || len == 0 || !fz_inside(el, len, v, n) || memchr(el, ',', len) ||
            el[0] == ' ' || el[0] == '\t' || el[len - 1] == ' ' || el[len - 1] == '\t')
            abort();
    }
}

static void fz_map(const char *target, size_t tlen, const char *host, size_t hlen,
                   const struct tt_px_field *f, size_t nf)
{
    static const char *const hop[] = {"connection", "keep-alive",       "proxy-connection",
                                      "upgrade",    "transfer-encoding", "host"};
    struct tt_header hdrs[FZ_FIELDS + 16];
    static char scratch[1 << 16];
    struct tt_px_map_in in = {
        .method = "GET", .method_len = 3, .path = tlen ? target : "/", .path_len = tlen ? tlen : 1,
        .host = host, .host_len = hlen, .scheme = "http", .client_ip = "127.0.0.1",
        .f = f, .n = nf,
    };
    struct tt_px_map_out out = {.hdrs = hdrs, .cap = sizeof(hdrs) / sizeof(hdrs[0]),
                                .scratch = scratch, .scratch_cap = sizeof(scratch)};
    if (tt_px_map_request(&in, &out) != 0)
        return;
    int regular = 0;
    for (size_t i = 0; i < out.count; i++) {
        const struct tt_header *h = &out.hdrs[i];
        if (h->name_len && h->name[0] == ':') {
            if (regular)
                abort(); /* RFC 9113 §8.3: pseudo-headers first */
            continue;
        }
        regular = 1;
        for (uint32_t k = 0; k < h->name_len; k++)
            if (h->name[k] >= 'A' && h->name[k] <= 'Z')
                abort();
        for (size_t k = 0; k < sizeof(hop) / sizeof(hop[0]); k++)
            if (fz_ci(h->name, h->name_len, hop[k]))
                abort();
        if (fz_ci(h->name, h->name_len, "te") && !fz_ci(h->value, h->value_len, "trailers"))
            abort();
        /* A field the client's Connection names is hop-by-hop too; TE is
         * always named there (RFC 9110 §10.1.4) and goes on as "trailers"
         * alone, checked above. */
        if (fz_ci(h->name, h->name_len, "te"))
            continue;
        for (size_t j = 0; j < nf; j++)
            if (fz_ci(f[j].name, f[j].name_len, "connection") &&
                tt_list_has(f[j].value, f[j].value_len, h->name, h->name_len) &&
                !fz_ci(h->name, h->name_len, "x-forwarded-for") &&
                !fz_ci(h->name, h->name_len, "x-forwarded-proto") &&
                !fz_ci(h->name, h->name_len, "x-forwarded-host") &&
                !fz_ci(h->name, h->name_len, "x-forwarded-prefix") &&
                !fz_ci(h->name, h->name_len, "forwarded"))
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *end = s + size;
    const char *line[2 + FZ_FIELDS];
    size_t llen[2 + FZ_FIELDS], nl = 0;
    while (nl < 2 + FZ_FIELDS) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        line[nl] = s;
        llen[nl] = e ? (size_t)(e - s) : (size_t)(end - s);
        nl++;
        if (!e)
            break;
        s = e + 1;
    }
    fz_target(line[0], llen[0]);
    if (nl > 1)
        fz_authority(line[1], llen[1]);
    struct tt_px_field f[FZ_FIELDS];
    size_t nf = 0;
    for (size_t i = 2; i < nl; i++) {
        const char *colon = memchr(line[i], ':', llen[i]);
        if (!colon || colon == line[i])
            continue;
        f[nf].name = line[i];
        f[nf].name_len = (size_t)(colon - line[i]);
        f[nf].value = colon + 1;
        f[nf].value_len = llen[i] - f[nf].name_len - 1;
        fz_list(f[nf].value, f[nf].value_len);
        nf++;
    }
    fz_map(line[0], llen[0], nl > 1 ? line[1] : NULL, nl > 1 ? llen[1] : 0, f, nf);
    return 0;
}
