/*
 * The pure half of the bridge: which name a request goes to, how an
 * HTTP/1.1 request head becomes an HTTP/2 header list (the HTTP/1.1 rules
 * it applies live in proto/http1.c).  No sockets here, so the unit tests
 * call these directly.
 */
#include "proxy/route.h"

#include "proxy/config.h"

#include "codec/token.h"
#include "proto/http1.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* --- Request target and authority ---------------------------------------- */

/* reg-name = *( unreserved / pct-encoded / sub-delims ) (RFC 3986 §3.2.2);
 * '%' is handled by the caller. */
static int auth_reg_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '-': case '.': case '_': case '~':                       /* unreserved */
    case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=':             /* sub-delims */
        return 1;
    }
    return 0;
}

static int auth_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* IP-literal without its brackets: IPv6address or IPvFuture (RFC 3986
 * §3.2.2).  Zone identifiers (RFC 6874) are not accepted. */
static int auth_ip_literal(const char *s, size_t len)
{
    if (len > 1 && (s[0] == 'v' || s[0] == 'V')) {
        size_t i = 1;
        while (i < len && auth_hex((unsigned char)s[i]))
            i++;
        if (i == 1 || i >= len || s[i] != '.' || i + 1 == len)
            return 0;
        for (i++; i < len; i++)
            if (!auth_reg_char((unsigned char)s[i]) && s[i] != ':')
                return 0;
        return 1;
    }
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a6;
    if (len == 0 || len >= sizeof(buf) || memchr(s, 0, len))
        return 0; /* a NUL would end the text inet_pton reads early */
    memcpy(buf, s, len);
    buf[len] = 0;
    return inet_pton(AF_INET6, buf, &a6) == 1;
}

int tt_px_authority_valid(const char *a, size_t len)
{
    size_t i = 0;
    if (len && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (!close || !auth_ip_literal(a + 1, (size_t)(close - a) - 1))
            return 0;
        i = (size_t)(close - a) + 1;
    } else {
        while (i < len && a[i] != ':') {
            unsigned char c = (unsigned char)a[i];
            if (c == '%') {
                if (i + 2 >= len || !auth_hex((unsigned char)a[i + 1]) ||
                    !auth_hex((unsigned char)a[i + 2]))
                    return 0;
                i += 3;
                continue;
            }
            if (!auth_reg_char(c))
                return 0; /* '@' (userinfo), '/', '?', '#', space, CTLs, ... */
            i++;
        }
    }
    if (i == len)
        return 1;
    if (a[i] != ':')
        return 0;
    /* port = *DIGIT (RFC 3986 §3.2.3); empty is allowed by the grammar.
     * More than a TCP port can hold is not a port. */
    unsigned port = 0;
    size_t digits = 0;
    for (i++; i < len; i++, digits++) {
        if (a[i] < '0' || a[i] > '9' || digits == 5)
            return 0;
        port = port * 10 + (unsigned)(a[i] - '0');
    }
    return port <= 65535;
}

int tt_px_target_split(const char *t, size_t len, struct tt_px_target *out)
{
    out->authority = NULL;
    out->authority_len = 0;
    out->path = t;
    out->path_len = len;
    /* RFC 9112 §3.2: no form of request-target has a fragment. */
    if (memchr(t, '#', len))
        return -1;
    if (len > 0 && (t[0] == '/' || (len == 1 && t[0] == '*')))
        return 0; /* origin-form, asterisk-form */
    /* absolute-form (RFC 9112 §3.2.2); http and https are the schemes
     * an HTTP server is asked for (RFC 9110 §4.2). */
    size_t sl;
    if (len >= 7 && strncasecmp(t, "http://", 7) == 0)
        sl = 7;
    else if (len >= 8 && strncasecmp(t, "https://", 8) == 0)
        sl = 8;
    else
        return -1;
    const char *a = t + sl;
    size_t rest = len - sl;
    size_t al = 0;
    while (al < rest && a[al] != '/' && a[al] != '?') /* RFC 3986 §3.2 */
        al++;
    /* RFC 9110 §4.2.1: an empty host is invalid; §4.2.4: userinfo is an
     * error (tt_px_authority_valid refuses '@'). */
    if (al == 0 || a[0] == ':' || !tt_px_authority_valid(a, al))
        return -1;
    out->authority = a;
    out->authority_len = al;
    /* "http://h?q": the path is empty, the query stays (tt_px_map_request
     * sends "/?q"; an empty path is sent as "/"). */
    out->path = a + al;
    out->path_len = rest - al;
    return 0;
}

/* --- Routing ------------------------------------------------------------ */

int tt_px_route(const struct tt_px_route_cfg *cfg, const char *host, size_t host_len,
                const char *path, size_t path_len, struct tt_px_route *out)
{
    memset(out, 0, sizeof(*out));
    out->path = path;
    out->path_len = path_len;

    /* 1. <name>.DOMAIN by Host (port and a trailing dot ignored). */
    if (cfg->domain && host && host_len > 0 && host[0] != '[') {
        size_t hl = host_len;
        const char *colon = memchr(host, ':', hl);
        if (colon)
            hl = (size_t)(colon - host);
        if (hl > 0 && host[hl - 1] == '.')
            hl--;
        size_t dl = strlen(cfg->domain);
        if (hl > dl + 1 && host[hl - dl - 1] == '.' &&
            strncasecmp(host + hl - dl, cfg->domain, dl) == 0) {
            size_t nl = hl - dl - 1;
            if (tt_px_name_valid(host, nl)) {
                out->name = host;
                out->name_len = nl;
                return 0;
            }
        }
    }

    /* 2. PREFIX<name>[/rest] by path; PREFIX<name> is stripped. */
    if (cfg->path_prefix) {
        size_t pl = strlen(cfg->path_prefix);
        if (path_len > pl && memcmp(path, cfg->path_prefix, pl) == 0) {
            size_t i = pl;
            while (i < path_len && path[i] != '/' && path[i] != '?')
                i++;
            if (tt_px_name_valid(path + pl, i - pl)) {
                out->name = path + pl;
                out->name_len = i - pl;
                out->stripped = 1;
                out->path = path + i;
                out->path_len = path_len - i;
                /* "/t/name" or "/t/name?q": the origin sees "/" (and the query) */
                out->by_path_root = (i == path_len || path[i] == '?');
                return 0;
            }
        }
    }

    /* 3. --default, 4. the only connected name. */
    const char *n = cfg->default_name ? cfg->default_name : cfg->single_name;
    if (n) {
        out->name = n;
        out->name_len = strlen(n);
    }
    return 0;
}

/* --- Header mapping ------------------------------------------------------ */

static const char *scratch_put(struct tt_px_map_out *o, const char *s, size_t len, int lower)
{
    if (o->scratch_cap - o->scratch_len < len)
        return NULL;
    char *d = o->scratch + o->scratch_len;
    for (size_t i = 0; i < len; i++)
        d[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
    o->scratch_len += len;
    return d;
}

static int map_add(struct tt_px_map_out *o, const char *n, size_t nl, const char *v, size_t vl)
{
    if (o->count == o->cap)
        return -1;
    struct tt_header *h = &o->hdrs[o->count++];
    h->name = n;
    h->name_len = (uint32_t)nl;
    h->value = v;
    h->value_len = (uint32_t)vl;
    h->flags = 0;
    return 0;
}

#define MAP_ADD_LIT(o, n, v, vl) map_add(o, n, sizeof(n) - 1, v, vl)

int tt_px_map_request(const struct tt_px_map_in *in, struct tt_px_map_out *o)
{
    o->count = 0;
    o->scratch_len = 0;
    o->te_trailers = 0;
    o->expect_continue = 0;
    o->expect_other = 0;

    /* RFC 9113 §8.3.1 pseudo-headers. */
    if (MAP_ADD_LIT(o, ":method", in->method, in->method_len) < 0)
        return -1;
    /* RFC 9113 §8.5: a CONNECT has :authority, and no :scheme or :path;
     * an extended CONNECT (RFC 8441 §4) has all three and :protocol. */
    int connect = in->method_len == 7 && !memcmp(in->method, "CONNECT", 7) && !in->protocol;
    if (in->protocol && MAP_ADD_LIT(o, ":protocol", in->protocol, strlen(in->protocol)) < 0)
        return -1;
    if (!connect && MAP_ADD_LIT(o, ":scheme", in->scheme, strlen(in->scheme)) < 0)
        return -1;
    if (in->host && in->host_len && MAP_ADD_LIT(o, ":authority", in->host, in->host_len) < 0)
        return -1;
    const char *path = in->path;
    size_t path_len = in->path_len;
    if (connect) {
        path_len = 0;
    } else if (path_len == 0 || path[0] == '?') {
        /* "/t/name" or "/t/name?q" after stripping: the origin's root. */
        char *p = (char *)scratch_put(o, "/", 1, 0);
        if (!p || !scratch_put(o, path, path_len, 0))
            return -1;
        path = p;
        path_len++;
    }
    if (!connect && MAP_ADD_LIT(o, ":path", path, path_len) < 0)
        return -1;

    /* Names listed in Connection are hop-by-hop too (RFC 9110 §7.6.1). */
    tt_iov conn[8];
    size_t nconn = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct tt_token *t = tt_token_find_ci(in->f[i].name, in->f[i].name_len);
        if (!t || t->id != TT_TOK_CONNECTION)
            continue;
        /* More Connection fields than any client sends: refused (431)
         * rather than forwarding what the ninth one names (found by
         * fuzz_request_map). */
        if (nconn == sizeof(conn) / sizeof(conn[0]))
            return -1;
        conn[nconn++] = (tt_iov){(const uint8_t *)in->f[i].value, in->f[i].value_len};
    }

    size_t xff_start = 0, xff_len = 0;
    int have_xff = 0;
    size_t fwd_start = 0, fwd_len = 0;
    int have_fwd = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct tt_px_field *f = &in->f[i];
        /* A name with '_' is dropped, as nginx does: CGI and WSGI apps
         * turn '-' and '_' alike into '_', so "Transfer_Encoding" or
         * "X_Forwarded_For" would pass for the real field there. */
        if (!in->keep_underscores && memchr(f->name, '_', f->name_len)) {
            o->dropped++;
            continue;
        }
        const struct tt_token *t = tt_token_find_ci(f->name, f->name_len);
        int id = t ? t->id : -1;
        /* TE first, whatever Connection says: "te: trailers" is the one
         * hop-by-hop field HTTP/2 carries (RFC 9113 §8.2.2), sent below. */
        if (id == TT_TOK_TE) {
            if (tt_http1_te_trailers(f->value, f->value_len))
                o->te_trailers = 1;
            continue;
        }
        if (id == TT_TOK_EXPECT) {
            /* Expect = #expectation (RFC 9110 §10.1.1): 100-continue is the
             * only one defined; any other member is noted (417). */
            size_t k = 0;
            while (k < f->value_len) {
                while (k < f->value_len && (f->value[k] == ' ' || f->value[k] == '\t' ||
                                            f->value[k] == ','))
                    k++;
                size_t st = k;
                while (k < f->value_len && f->value[k] != ',')
                    k++;
                size_t en = k;
                while (en > st && (f->value[en - 1] == ' ' || f->value[en - 1] == '\t'))
                    en--;
                if (en - st == 12 && strncasecmp(f->value + st, "100-continue", 12) == 0)
                    o->expect_continue = 1;
                else if (en > st)
                    o->expect_other = 1;
            }
            continue;
        }
        if (tt_http1_conn_specific(f->name, f->name_len, conn, nconn))
            continue;
        if (f->name_len == 13 && strncasecmp(f->name, "tether-caller", 13) == 0)
            continue; /* only p says who calls */
        /* Earlier hops' X-Forwarded-For and Forwarded are kept, ours
         * appended (scratch copies joined by ", "). */
        if (id == TT_TOK_X_FORWARDED_FOR || id == TT_TOK_FORWARDED) {
            int is_xff = id == TT_TOK_X_FORWARDED_FOR;
            size_t *st = is_xff ? &xff_start : &fwd_start;
            size_t *ln = is_xff ? &xff_len : &fwd_len;
            int *have = is_xff ? &have_xff : &have_fwd;
            if (*have) {
                /* Only contiguous joins: restart the copy when another
                 * field was put in scratch between two occurrences. */
                if (*st + *ln != o->scratch_len) {
                    const char *old = scratch_put(o, o->scratch + *st, *ln, 0);
                    if (!old)
                        return -1;
                    *st = (size_t)(old - o->scratch);
                }
                if (!scratch_put(o, ", ", 2, 0) || !scratch_put(o, f->value, f->value_len, 0))
                    return -1;
                *ln += 2 + f->value_len;
            } else {
                const char *v = scratch_put(o, f->value, f->value_len, 0);
                if (!v)
                    return -1;
                *st = (size_t)(v - o->scratch);
                *ln = f->value_len;
                *have = 1;
            }
            continue;
        }
        /* The rest of what p writes itself (Host is :authority; the
         * X-Forwarded-* below), and the h2c upgrade's HTTP2-Settings. */
        if (t && (t->flags & (TT_TOKF_PROXY_SETS | TT_TOKF_H2C)))
            continue;
        const char *ln = scratch_put(o, f->name, f->name_len, 1);
        if (!ln || map_add(o, ln, f->name_len, f->value, f->value_len) < 0)
            return -1;
    }
    if (o->te_trailers && MAP_ADD_LIT(o, "te", "trailers", 8) < 0)
        return -1;
    if (in->caller && MAP_ADD_LIT(o, "tether-caller", in->caller, strlen(in->caller)) < 0)
        return -1;

    /* X-Forwarded-For: earlier hops, then the client we saw. */
    size_t ipl = strlen(in->client_ip);
    {
        size_t st = o->scratch_len;
        if (have_xff) {
            if (!scratch_put(o, o->scratch + xff_start, xff_len, 0) || !scratch_put(o, ", ", 2, 0))
                return -1;
        }
        if (!scratch_put(o, in->client_ip, ipl, 0))
            return -1;
        if (MAP_ADD_LIT(o, "x-forwarded-for", o->scratch + st, o->scratch_len - st) < 0)
            return -1;
    }
    if (MAP_ADD_LIT(o, "x-forwarded-proto", in->scheme, strlen(in->scheme)) < 0)
        return -1;
    if (in->host && in->host_len &&
        MAP_ADD_LIT(o, "x-forwarded-host", in->host, in->host_len) < 0)
        return -1;
    if (in->prefix && MAP_ADD_LIT(o, "x-forwarded-prefix", in->prefix, in->prefix_len) < 0)
        return -1;

    /* Forwarded (RFC 7239 §4): an IPv6 node and any host are quoted. */
    {
        size_t st = o->scratch_len;
        int v6 = memchr(in->client_ip, ':', ipl) != NULL;
        if (have_fwd) {
            if (!scratch_put(o, o->scratch + fwd_start, fwd_len, 0) || !scratch_put(o, ", ", 2, 0))
                return -1;
        }
        if (!scratch_put(o, "for=", 4, 0) || (v6 && !scratch_put(o, "\"[", 2, 0)) ||
            !scratch_put(o, in->client_ip, ipl, 0) || (v6 && !scratch_put(o, "]\"", 2, 0)))
            return -1;
        if (in->host && in->host_len) {
            int quotable = 1;
            for (size_t i = 0; i < in->host_len; i++)
                if (in->host[i] == '"' || in->host[i] == '\\')
                    quotable = 0;
            if (quotable && (!scratch_put(o, ";host=\"", 7, 0) ||
                             !scratch_put(o, in->host, in->host_len, 0) ||
                             !scratch_put(o, "\"", 1, 0)))
                return -1;
        }
        if (!scratch_put(o, ";proto=", 7, 0) || !scratch_put(o, in->scheme, strlen(in->scheme), 0))
            return -1;
        if (MAP_ADD_LIT(o, "forwarded", o->scratch + st, o->scratch_len - st) < 0)
            return -1;
    }
    return 0;
}

int tt_px_method_idempotent(const char *m, size_t len)
{
    /* RFC 9110 §9.2.2 */
    static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++)
        if (strlen(idem[i]) == len && memcmp(m, idem[i], len) == 0)
            return 1;
    return 0;
}

int tt_px_call_target(const char *domain, const char *a, size_t len, size_t *name_len)
{
    const char *colon = memchr(a, ':', len);
    size_t hl = colon ? (size_t)(colon - a) : len;
    if (hl > 1 && a[hl - 1] == '.')
        hl--; /* "media." is a fully qualified "media" */
    size_t dl = domain ? strlen(domain) : 0;
    if (dl && hl > dl + 1 && a[hl - dl - 1] == '.' && !strncasecmp(a + hl - dl, domain, dl))
        hl -= dl + 1;
    *name_len = hl;
    return tt_px_name_valid(a, hl);
}

void tt_px_grpc_fields(const struct tt_header *h, size_t n, int last, uint8_t *grpc,
                       int16_t *status)
{
    static const char ct[] = "application/grpc";
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 12 && !memcmp(h[i].name, "content-type", 12) &&
            h[i].value_len >= sizeof ct - 1 && !memcmp(h[i].value, ct, sizeof ct - 1)) {
            *grpc = 1;
        } else if (last && h[i].name_len == 11 && !memcmp(h[i].name, "grpc-status", 11)) {
            int v = 0;
            size_t k = 0;
            while (k < h[i].value_len && k < 4 && h[i].value[k] >= '0' && h[i].value[k] <= '9')
                v = v * 10 + (h[i].value[k++] - '0');
            if (k && k == h[i].value_len)
                *status = (int16_t)v;
        }
    }
}

const struct tt_px_field *tt_px_field_find(const struct tt_px_field *f, size_t n, const char *name)
{
    size_t nl = name ? strlen(name) : 0;
    for (size_t i = 0; name && i < n; i++)
        if (f[i].name_len == nl && !strncasecmp(f[i].name, name, nl))
            return &f[i];
    return NULL;
}

int tt_px_grpc_local(int status, const char *text, char *msg, size_t cap)
{
    /* Percent-encoded, as grpc-message is (gRPC over HTTP/2): printable
     * ASCII but '%' as it is, the rest %XX; the trailing newline dropped. */
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0, len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len && n + 4 < cap; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
            msg[n++] = (char)ch;
        } else {
            msg[n++] = '%';
            msg[n++] = hex[ch >> 4];
            msg[n++] = hex[ch & 15];
        }
    }
    if (cap)
        msg[n < cap ? n : cap - 1] = 0;
    switch (status) {
    case 400: case 417: return 3;  /* INVALID_ARGUMENT */
    case 401: return 16;           /* UNAUTHENTICATED */
    case 403: return 7;            /* PERMISSION_DENIED */
    case 404: return 12;           /* UNIMPLEMENTED */
    case 413: case 431: return 8;  /* RESOURCE_EXHAUSTED */
    case 429: case 502: case 503: return 14; /* UNAVAILABLE: retry */
    case 504: return 4;            /* DEADLINE_EXCEEDED */
    default: return status >= 500 ? 13 : 2; /* INTERNAL, UNKNOWN */
    }
}

int tt_px_route_call(const struct tt_px_token *caller, const char *domain, const char *a,
                     size_t len, const char *path, size_t path_len, struct tt_px_route *rt,
                     char *why, size_t whylen)
{
    size_t hl = 0;
    memset(rt, 0, sizeof(*rt));
    rt->path = path;
    rt->path_len = path_len;
    if (!a || !tt_px_call_target(domain, a, len, &hl)) {
        snprintf(why, whylen, "a call names the origin or service it calls in its Host\n");
        return 400;
    }
    rt->name = a;
    rt->name_len = hl;
    if (!tt_px_token_may_call(caller, a, hl)) {
        snprintf(why, whylen,
                 "name '%s' may not call '%.*s' (the tokens file's calls= column for '%s')\n",
                 caller->name, (int)hl, a, caller->name);
        return 403;
    }
    return 0;
}

size_t tt_px_fields_drop(struct tt_header *h, size_t n, const char *name)
{
    size_t nl = strlen(name), k = 0;
    for (size_t i = 0; i < n; i++)
        if (!(h[i].name_len == nl && !strncasecmp(h[i].name, name, nl)))
            h[k++] = h[i];
    return k;
}
