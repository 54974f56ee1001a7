/*
 * HTTP/1.1 rules shared by p and c (see http1.h): connection-specific
 * fields over the token table, the two HTTP/1.1 head writers, host:port.
 */
#include "proto/http1.h"

#include "codec/token.h"
#include "proto/text.h"

#include <string.h>

/* ---- Connection-specific fields ----------------------------------------- */

int tt_http1_hop_by_hop(const char *name, size_t len)
{
    const struct tt_token *t = tt_token_find_ci(name, len);
    return t && (t->flags & TT_TOKF_HOP_BY_HOP);
}

int tt_http1_connection_lists(const char *conn, size_t conn_len, const char *name, size_t len)
{
    /* connection-option = token (RFC 9110 §7.6.1); tt_list_has also
     * ignores a ";param", which a token cannot hold anyway. */
    return tt_list_has(conn, conn_len, name, len);
}

int tt_http1_conn_specific(const char *name, size_t len, const tt_iov *conn, size_t nconn)
{
    if (tt_http1_hop_by_hop(name, len))
        return 1;
    for (size_t i = 0; i < nconn; i++)
        if (tt_http1_connection_lists((const char *)conn[i].base, conn[i].len, name, len))
            return 1;
    return 0;
}

int tt_http1_te_trailers(const char *v, size_t len)
{
    return tt_list_has(v, len, "trailers", 8);
}

/* ---- Response heads: HTTP/2 -> HTTP/1.1 (p's HTTP/1.1 front) ------------ */

size_t tt_http1_response_head_size(const struct tt_header *hdrs, size_t n)
{
    size_t need = 9 + 4 + 40 + 2; /* "HTTP/1.1 ", "NNN ", reason, CRLF */
    for (size_t i = 0; i < n; i++)
        need += hdrs[i].name_len + hdrs[i].value_len + 4;
    return need;
}

char *tt_http1_response_head_put(char *p, int status, const struct tt_header *hdrs, size_t n)
{
    /* By hand, not snprintf: this runs once a response.  The codec checked
     * :status is three digits (RFC 9113 §8.3.2).  proto/text.c knows no
     * 1xx past 101 by name; the reason phrase is for humans only (RFC 9112
     * §4), but the usual one reads better in curl -v. */
    const char *reason = status == 102   ? "Processing"
                         : status == 103 ? "Early Hints"
                                         : tt_http_reason(status);
    memcpy(p, "HTTP/1.1 ", 9);
    p += 9;
    *p++ = (char)('0' + status / 100 % 10);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    size_t rl = strnlen(reason, 40);
    memcpy(p, reason, rl);
    p += rl;
    *p++ = '\r';
    *p++ = '\n';
    /* Only pseudo-headers are left out: the codec already refused every
     * connection-specific field in a received head (RFC 9113 §8.2.2), so
     * what remains may go to an HTTP/1.1 client as it is. */
    for (size_t i = 0; i < n; i++) {
        const struct tt_header *f = &hdrs[i];
        if (f->name_len == 0 || f->name[0] == ':')
            continue;
        /* RFC 9110 §8.6: never a Content-Length on a 1xx. */
        if (status < 200 && f->name_len == 14 && memcmp(f->name, "content-length", 14) == 0)
            continue;
        memcpy(p, f->name, f->name_len);
        p += f->name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, f->value, f->value_len);
        p += f->value_len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return p;
}

/* ---- Request heads: HTTP/2 -> HTTP/1.1 (c's upstream) ------------------- */

static int h1_iov_is(tt_iov v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && !memcmp(v.base, s, n);
}

/* Bytes that may appear in a request line's method or target, and in a
 * field name we write. */
static int h1_token_ok(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
    return n > 0;
}

static int h1_tok_is(const struct tt_header *f, enum tt_token_id id)
{
    const struct tt_token *t = tt_token_find_ci(f->name, f->name_len);
    return t && t->id == id;
}

#define H1_PUT(out, s, n)                                                                          \
    do {                                                                                           \
        if (tt_buf_append((out), (s), (n)))                                                        \
            return -1;                                                                             \
    } while (0)
#define H1_PUTS(out, s) H1_PUT(out, s, strlen(s))

int tt_http1_request_head(const struct tt_h2_headers *h, enum tt_http1_body body,
                          const char *default_host, tt_buf *out)
{
    if (tt_http1_request_head_open(h, body, default_host, out) < 0)
        return -1;
    H1_PUTS(out, "\r\n");
    return 0;
}

int tt_http1_request_head_open(const struct tt_h2_headers *h, enum tt_http1_body body,
                               const char *default_host, tt_buf *out)
{
    if (!h1_token_ok(h->method.base, h->method.len) || !h1_token_ok(h->path.base, h->path.len))
        return -1;
    H1_PUT(out, h->method.base, h->method.len);
    H1_PUTS(out, " ");
    H1_PUT(out, h->path.base, h->path.len);
    H1_PUTS(out, " HTTP/1.1\r\nHost: ");
    /* RFC 9113 §8.3.1: :authority stands for Host. */
    const char *host = default_host;
    size_t host_len = strlen(default_host);
    if (h->authority.len) {
        host = (const char *)h->authority.base;
        host_len = h->authority.len;
    } else {
        for (size_t i = 0; i < h->count; i++)
            if (h1_tok_is(&h->hdrs[i], TT_TOK_HOST)) {
                host = h->hdrs[i].value;
                host_len = h->hdrs[i].value_len;
                break;
            }
    }
    H1_PUT(out, host, host_len);
    H1_PUTS(out, "\r\n");
    int cookies = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->name_len == 0 || f->name[0] == ':')
            continue;
        const struct tt_token *t = tt_token_find_ci(f->name, f->name_len);
        if (t) {
            /* Host went first; the connection's own fields stay behind
             * (HTTP/2 has none but te, and the h2c upgrade's settings). */
            if (t->id == TT_TOK_HOST || (t->flags & (TT_TOKF_HOP_BY_HOP | TT_TOKF_H2C)))
                continue;
            if (t->id == TT_TOK_CONTENT_LENGTH && body != TT_HTTP1_BODY_LENGTH)
                continue;
            if (t->id == TT_TOK_COOKIE) {
                cookies++;
                continue;
            }
        }
        if (!h1_token_ok((const uint8_t *)f->name, f->name_len))
            return -1;
        H1_PUT(out, f->name, f->name_len);
        H1_PUTS(out, ": ");
        H1_PUT(out, f->value, f->value_len);
        H1_PUTS(out, "\r\n");
    }
    if (cookies) {
        /* RFC 9113 §8.2.3: HTTP/2 may split cookies; HTTP/1.1 wants one
         * field, the crumbs joined by "; ". */
        H1_PUTS(out, "cookie: ");
        int first = 1;
        for (size_t i = 0; i < h->count; i++) {
            const struct tt_header *f = &h->hdrs[i];
            if (!h1_tok_is(f, TT_TOK_COOKIE))
                continue;
            if (!first)
                H1_PUTS(out, "; ");
            H1_PUT(out, f->value, f->value_len);
            first = 0;
        }
        H1_PUTS(out, "\r\n");
    }
    if (body == TT_HTTP1_BODY_CHUNKED) {
        H1_PUTS(out, "Transfer-Encoding: chunked\r\n");
    } else if (body == TT_HTTP1_BODY_NONE &&
               (h1_iov_is(h->method, "POST") || h1_iov_is(h->method, "PUT") ||
                h1_iov_is(h->method, "PATCH"))) {
        /* RFC 9110 §8.6: say so when a method that usually has a body has
         * none, or the app might wait for one. */
        H1_PUTS(out, "Content-Length: 0\r\n");
    }
    return 0;
}

/* ---- host:port ------------------------------------------------------------ */

int tt_http1_hostport_parse(const char *s, size_t len, size_t host_max, unsigned flags,
                            struct tt_hostport *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return TT_HOSTPORT_EEMPTY;
    const char *end = s + len;
    if (s[0] == '[') {
        /* RFC 3986 §3.2.2: an IPv6 literal goes in brackets, so its
         * colons are not the port's. */
        const char *rb = memchr(s, ']', len);
        if (!rb || rb == s + 1 || (size_t)(rb - s - 1) > host_max)
            return TT_HOSTPORT_EBRACKET;
        if (rb + 1 == end && (flags & TT_HOSTPORT_PORT_OPTIONAL)) {
            out->port = end;
        } else if (rb + 1 == end || rb[1] != ':') {
            return TT_HOSTPORT_EBRACKET;
        } else {
            out->port = rb + 2;
            out->has_port = 1;
        }
        out->host = s + 1;
        out->host_len = (size_t)(rb - s - 1);
    } else {
        const char *colon = memrchr(s, ':', len);
        if (!colon && !(flags & TT_HOSTPORT_PORT_OPTIONAL))
            return TT_HOSTPORT_EFORM;
        size_t hl = colon ? (size_t)(colon - s) : len;
        if (hl > host_max)
            return TT_HOSTPORT_EFORM;
        /* Two colons without brackets: an IPv6 address whose port cannot
         * be told apart. */
        if (colon && memchr(s, ':', hl))
            return TT_HOSTPORT_ECOLONS;
        out->host = s;
        out->host_len = hl;
        out->port = colon ? colon + 1 : end;
        out->has_port = colon != NULL;
        if (hl == 0 && !(flags & TT_HOSTPORT_EMPTY_HOST))
            return TT_HOSTPORT_EHOST;
    }
    out->port_len = (size_t)(end - out->port);
    if (!(flags & TT_HOSTPORT_STRICT))
        return TT_HOSTPORT_OK;
    for (size_t i = 0; i < out->host_len; i++) {
        unsigned char c = (unsigned char)out->host[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == '@')
            return TT_HOSTPORT_EHOST;
    }
    if (!out->has_port)
        return TT_HOSTPORT_OK;
    if (out->port_len == 0 || out->port_len > 5)
        return TT_HOSTPORT_EPORT;
    unsigned v = 0;
    for (size_t i = 0; i < out->port_len; i++) {
        if (out->port[i] < '0' || out->port[i] > '9')
            return TT_HOSTPORT_EPORT;
        v = v * 10 + (unsigned)(out->port[i] - '0');
    }
    if (v == 0 || v > 65535)
        return TT_HOSTPORT_EPORT;
    out->port_num = v;
    return TT_HOSTPORT_OK;
}
