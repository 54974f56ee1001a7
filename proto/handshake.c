/*
 * The tunnel handshake: strict parsers and builders for exactly one HTTP/1.1
 * request (c's PUT) and its answer (p's 101 or error).
 *
 * Both parsers are stateless: each call rescans the bytes from the start
 * (a head is at most TT_HS_MAX_HEAD bytes, so this costs little) and walks
 * complete lines only.  The result for a given prefix therefore does not
 * depend on how the bytes arrived, and a malformed line is reported as soon
 * as it is complete instead of after the whole head.
 *
 * Strictness (RFC 9112 unless said): lines end in CRLF, a bare LF or a CR
 * not followed by LF is malformed (§2.2 allows a recipient to reject them);
 * no obs-fold (§5.2); no whitespace between a field name and its colon
 * (§5.1); field values are VCHAR / obs-text / SP / HTAB only, so NUL and
 * other controls are refused (RFC 9110 §5.5).  The request must be
 *   PUT /.well-known/tether/tunnel HTTP/1.1
 * with one Host, and carry no body: Content-Length above 0 or any
 * Transfer-Encoding is malformed (the bytes after the head are HTTP/2).
 */
#include "handshake.h"
#include "text.h"

#include "codec/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Field names are tokens (RFC 9110 §5.6.2). */
static int hs_is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB (RFC 9110 §5.5). */
static int hs_is_value_char(uint8_t c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int hs_is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

static int hs_iov_ieq(tt_iov v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && strncasecmp((const char *)v.base, s, n) == 0;
}

static tt_iov hs_trim(const uint8_t *p, size_t len)
{
    while (len > 0 && hs_is_ows(p[0]))
        p++, len--;
    while (len > 0 && hs_is_ows(p[len - 1]))
        len--;
    return (tt_iov){p, len};
}

/* 1 if the comma-separated list `v` holds `want` (case-insensitive); empty
 * elements are allowed and skipped (RFC 9110 §5.6.1). */
static int hs_list_has(tt_iov v, const char *want)
{
    size_t i = 0;
    while (i <= v.len) {
        size_t j = i;
        while (j < v.len && v.base[j] != ',')
            j++;
        if (hs_iov_ieq(hs_trim(v.base + i, j - i), want))
            return 1;
        i = j + 1;
    }
    return 0;
}

/* Parses 1*DIGIT into *out; returns 0, or -1 when not digits or too big. */
static int hs_parse_uint(tt_iov v, int64_t max, int64_t *out)
{
    if (v.len == 0 || v.len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return -1;
        n = n * 10 + (v.base[i] - '0');
    }
    if (n > max)
        return -1;
    *out = n;
    return 0;
}

/* The line walker shared by both parsers. */
struct hs_scan {
    const uint8_t *buf;
    size_t len; /* bytes that may belong to the head: min(len, MAX_HEAD) */
    size_t total;
    size_t pos;
};

/* Finds the next complete line.  Returns 1 with *line (without its CRLF),
 * 0 when more bytes are needed, TT_HS_MALFORMED or TT_HS_TOO_LARGE. */
static int hs_next_line(struct hs_scan *s, tt_iov *line)
{
    for (size_t i = s->pos; i < s->len; i++) {
        uint8_t c = s->buf[i];
        if (c == '\r') {
            if (i + 1 >= s->len)
                break;
            if (s->buf[i + 1] != '\n')
                return TT_HS_MALFORMED;
            *line = (tt_iov){s->buf + s->pos, i - s->pos};
            s->pos = i + 2;
            return 1;
        }
        if (c == '\n' || c == '\0')
            return TT_HS_MALFORMED;
    }
    return s->total >= TT_HS_MAX_HEAD ? TT_HS_TOO_LARGE : TT_HS_NEED_MORE;
}

/* Splits a header line into a name and a trimmed value. */
static int hs_split_field(tt_iov line, tt_iov *name, tt_iov *value)
{
    size_t i = 0;
    while (i < line.len && hs_is_tchar(line.base[i]))
        i++;
    /* obs-fold (a leading SP/HTAB), an empty name, or a space before the
     * colon all land here. */
    if (i == 0 || i >= line.len || line.base[i] != ':')
        return -1;
    *name = (tt_iov){line.base, i};
    for (size_t j = i + 1; j < line.len; j++)
        if (!hs_is_value_char(line.base[j]))
            return -1;
    *value = hs_trim(line.base + i + 1, line.len - i - 1);
    return 0;
}

static void hs_scan_init(struct hs_scan *s, const uint8_t *buf, size_t len)
{
    s->buf = buf;
    s->total = len;
    s->len = len < TT_HS_MAX_HEAD ? len : TT_HS_MAX_HEAD;
    s->pos = 0;
}

/* --- Request ----------------------------------------------------------- */

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3). */
static int hs_request_line(tt_iov line, struct tt_hs_request *req)
{
    size_t i = 0;
    while (i < line.len && hs_is_tchar(line.base[i]))
        i++;
    if (i == 0 || i >= line.len || line.base[i] != ' ')
        return -1;
    req->method = (tt_iov){line.base, i};
    size_t t = ++i;
    while (i < line.len && line.base[i] > 0x20 && line.base[i] < 0x7f)
        i++;
    if (i == t || i >= line.len || line.base[i] != ' ')
        return -1;
    req->path = (tt_iov){line.base + t, i - t};
    tt_iov ver = {line.base + i + 1, line.len - i - 1};
    if (ver.len != 8 || memcmp(ver.base, "HTTP/1.1", 8) != 0)
        return -1;
    /* The method is case-sensitive (RFC 9110 §9.1); only our PUT exists. */
    if (req->method.len != 3 || memcmp(req->method.base, "PUT", 3) != 0)
        return -1;
    if (req->path.len != strlen(TT_HS_PATH) || memcmp(req->path.base, TT_HS_PATH, req->path.len))
        return -1;
    return 0;
}

int tt_hs_parse_request(const uint8_t *buf, size_t len, struct tt_hs_request *req)
{
    struct hs_scan s;
    tt_iov line, name, value;
    int r, nhost = 0, nname = 0, nversion = 0, conn_upgrade = 0, up_tether = 0, up_forward = 0;

    memset(req, 0, sizeof(*req));
    req->content_length = -1;
    hs_scan_init(&s, buf, len);
    if ((r = hs_next_line(&s, &line)) != 1)
        return r;
    if (hs_request_line(line, req) < 0)
        return TT_HS_MALFORMED;
    for (;;) {
        if ((r = hs_next_line(&s, &line)) != 1)
            return r;
        if (line.len == 0)
            break;
        if (hs_split_field(line, &name, &value) < 0)
            return TT_HS_MALFORMED;
        if (hs_iov_ieq(name, "host")) {
            if (nhost++) /* RFC 9112 §3.2: more than one Host is a 400 */
                return TT_HS_MALFORMED;
        } else if (hs_iov_ieq(name, "authorization")) {
            if (req->has_authorization++)
                return TT_HS_MALFORMED;
            /* credentials = auth-scheme 1*SP token68 (RFC 9110 §11.4);
             * a different scheme or a malformed token leaves token empty,
             * which the caller answers with 401. */
            if (value.len > 7 && strncasecmp((const char *)value.base, "bearer ", 7) == 0) {
                tt_iov tok = hs_trim(value.base + 7, value.len - 7);
                int ok = tok.len > 0;
                for (size_t i = 0; i < tok.len; i++)
                    if (tok.base[i] <= 0x20 || tok.base[i] >= 0x7f)
                        ok = 0;
                if (ok)
                    req->token = tok;
            }
        } else if (hs_iov_ieq(name, "tether-name")) {
            if (nname++)
                return TT_HS_MALFORMED;
            req->name = value;
        } else if (hs_iov_ieq(name, "tether-version")) {
            if (nversion++)
                return TT_HS_MALFORMED;
            req->version = value;
        } else if (hs_iov_ieq(name, "connection")) {
            conn_upgrade |= hs_list_has(value, "upgrade");
        } else if (hs_iov_ieq(name, "upgrade")) {
            up_tether |= hs_list_has(value, TT_HS_UPGRADE);
            up_forward |= hs_list_has(value, TT_HS_UPGRADE_FORWARD);
        } else if (hs_iov_ieq(name, "content-length")) {
            int64_t n;
            /* One Content-Length, and it must be 0: the bytes after the
             * head are HTTP/2 and must not be taken for a body. */
            if (req->content_length >= 0 || hs_parse_uint(value, INT64_MAX / 10, &n) < 0 || n > 0)
                return TT_HS_MALFORMED;
            req->content_length = n;
        } else if (hs_iov_ieq(name, "transfer-encoding")) {
            return TT_HS_MALFORMED;
        }
    }
    if (nhost != 1)
        return TT_HS_MALFORMED;
    /* Both directions at once is no request we know. */
    req->upgrade_ok = conn_upgrade && (up_tether != up_forward);
    req->forward = req->upgrade_ok && up_forward;
    return (int)s.pos;
}

/* --- Response ---------------------------------------------------------- */

/* status-line = HTTP-version SP status-code SP [ reason-phrase ]
 * (RFC 9112 §4); a missing final SP is tolerated. */
static int hs_status_line(tt_iov line, struct tt_hs_response *resp)
{
    if (line.len < 12 || memcmp(line.base, "HTTP/1.1 ", 9) != 0)
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (line.base[i] < '0' || line.base[i] > '9')
            return -1;
        st = st * 10 + (line.base[i] - '0');
    }
    if (st < 100)
        return -1;
    resp->status = st;
    if (line.len == 12) {
        resp->reason = (tt_iov){line.base + 12, 0};
        return 0;
    }
    if (line.base[12] != ' ')
        return -1;
    for (size_t i = 13; i < line.len; i++)
        if (!hs_is_value_char(line.base[i]))
            return -1;
    resp->reason = (tt_iov){line.base + 13, line.len - 13};
    return 0;
}

int tt_hs_parse_response(const uint8_t *buf, size_t len, struct tt_hs_response *resp)
{
    struct hs_scan s;
    tt_iov line, name, value;
    int r, up_tether = 0, up_forward = 0, has_body = 0;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    hs_scan_init(&s, buf, len);
    if ((r = hs_next_line(&s, &line)) != 1)
        return r;
    if (hs_status_line(line, resp) < 0)
        return TT_HS_MALFORMED;
    for (;;) {
        if ((r = hs_next_line(&s, &line)) != 1)
            return r;
        if (line.len == 0)
            break;
        if (hs_split_field(line, &name, &value) < 0)
            return TT_HS_MALFORMED;
        if (hs_iov_ieq(name, "upgrade")) {
            up_tether |= hs_list_has(value, TT_HS_UPGRADE);
            up_forward |= hs_list_has(value, TT_HS_UPGRADE_FORWARD);
        } else if (hs_iov_ieq(name, "retry-after")) {
            /* Only delay-seconds; an HTTP-date stays -1 (RFC 9110 §10.2.3). */
            int64_t n;
            if (resp->retry_after < 0 && hs_parse_uint(value, 86400 * 7, &n) == 0)
                resp->retry_after = (int)n;
        } else if (hs_iov_ieq(name, "content-length")) {
            int64_t n;
            if (hs_parse_uint(value, INT64_MAX / 10, &n) < 0)
                return TT_HS_MALFORMED;
            has_body |= n > 0;
        } else if (hs_iov_ieq(name, "transfer-encoding")) {
            has_body = 1;
        }
    }
    /* A 1xx has no content (RFC 9110 §15.2): after a 101 the next bytes are
     * HTTP/2, so a 101 announcing a body is malformed. */
    if (resp->status == 101 && has_body)
        return TT_HS_MALFORMED;
    resp->upgrade_ok = resp->status == 101 && (up_tether != up_forward);
    resp->forward = resp->upgrade_ok && up_forward;
    return (int)s.pos;
}

/* --- Builders ---------------------------------------------------------- */

/* A value we put in a header must not break the head. */
static int hs_safe_word(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

static int hs_append(tt_buf *out, const char *s) { return tt_buf_append(out, s, strlen(s)); }

int tt_hs_build_request(tt_buf *out, const char *host, const char *token, const char *name,
                        int forward)
{
    if (!hs_safe_word(host) || !hs_safe_word(token) || !hs_safe_word(name))
        return TT_ERR_INVALID_ARG;
    size_t old = out->len;
    const char *parts[] = {"PUT " TT_HS_PATH " HTTP/1.1\r\nHost: ",
                           host,
                           "\r\nAuthorization: Bearer ",
                           token,
                           "\r\nTether-Name: ",
                           name,
                           "\r\nTether-Version: " TT_HS_VERSION "\r\n"
                           "Connection: Upgrade\r\n"
                           "Upgrade: ",
                           forward ? TT_HS_UPGRADE_FORWARD : TT_HS_UPGRADE,
                           "\r\nContent-Length: 0\r\n\r\n"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (hs_append(out, parts[i]) != 0) {
            out->len = old;
            return TT_ERR_NOMEM;
        }
    }
    return 0;
}

int tt_hs_build_response(tt_buf *out, int status, const char *why, int retry_after, int forward)
{
    if (status < 100 || status > 999)
        return TT_ERR_INVALID_ARG;
    if (status == 101) {
        static const char up[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Upgrade: " TT_HS_UPGRADE "\r\n\r\n";
        static const char fwd[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Upgrade: " TT_HS_UPGRADE_FORWARD "\r\n\r\n";
        int r = forward ? tt_buf_append(out, fwd, sizeof(fwd) - 1)
                        : tt_buf_append(out, up, sizeof(up) - 1);
        return r == 0 ? 0 : TT_ERR_NOMEM;
    }
    const char *reason = tt_http_reason(status);
    if (!why || !*why)
        why = reason;
    /* The body is one line of text; a stray control character in `why`
     * would only garble it, but keep it out of the head length anyway. */
    size_t why_len = strlen(why);
    for (size_t i = 0; i < why_len; i++)
        if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f)
            return TT_ERR_INVALID_ARG;
    char head[512];
    char extra[128] = "";
    size_t el = 0;
    if (status == 401) /* RFC 9110 §15.5.2: a 401 names its scheme */
        el += (size_t)snprintf(extra + el, sizeof(extra) - el,
                               "WWW-Authenticate: Bearer realm=\"tether\"\r\n");
    if (status == 426) /* RFC 9110 §15.5.22: a 426 says what to upgrade to */
        el += (size_t)snprintf(extra + el, sizeof(extra) - el, "Upgrade: " TT_HS_UPGRADE "\r\n");
    if (retry_after >= 0)
        snprintf(extra + el, sizeof(extra) - el, "Retry-After: %d\r\n", retry_after);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "%s\r\n",
                     status, reason, why_len + 1, extra);
    if (n < 0 || (size_t)n >= sizeof(head))
        return TT_ERR_INVALID_ARG;
    size_t old = out->len;
    if (tt_buf_append(out, head, (size_t)n) != 0 || tt_buf_append(out, why, why_len) != 0 ||
        tt_buf_append(out, "\n", 1) != 0) {
        out->len = old;
        return TT_ERR_NOMEM;
    }
    return 0;
}
