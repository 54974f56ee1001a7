/*
 * The pure parts of c --upstream (no loop, no sockets; unit-tested through
 * origin/upstream.h): the URL and the response filter.  A module of their
 * own below upstream_common.h (struct tt_upstream keeps the URL) and
 * upstream_h1.c (which filters every response head), so that neither has
 * to include upstream.h, which sits on top of them.
 */
#include "origin/upstream_pure.h"

#include "codec/token.h"
#include "proto/http1.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int up_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int up_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int tt_upstream_parse_url(const char *s, struct tt_upstream_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *rest;
    if (!strncasecmp(s, "http://", 7)) {
        rest = s + 7;
    } else if (!strncasecmp(s, "h2c://", 6)) {
        u->h2c = 1;
        rest = s + 6;
    } else if (!strncasecmp(s, "https://", 8)) {
        return up_fail(err, errlen,
                       "https is not supported: c talks to a local app in plaintext "
                       "(http://HOST:PORT or h2c://HOST:PORT)");
    } else {
        return up_fail(err, errlen, "want http://HOST:PORT or h2c://HOST:PORT");
    }
    size_t n = strcspn(rest, "/?#");
    if (rest[n] && strcmp(rest + n, "/") != 0)
        return up_fail(err, errlen,
                       "a path is not supported: requests keep the path the client asked for");
    /* The bound once left room to append ":80"; kept, so the same input
     * gets the same message. */
    char hp[300];
    if (n == 0 || n + 4 >= sizeof hp)
        return up_fail(err, errlen, "want http://HOST:PORT or h2c://HOST:PORT");
    memcpy(hp, rest, n);
    hp[n] = 0;
    if (strchr(hp, '@'))
        return up_fail(err, errlen, "user:password@ is not supported");
    /* A dialled address (host bytes and port checked), port 80 when absent. */
    struct tt_hostport a;
    if (tt_http1_hostport_parse(hp, n, sizeof u->host - 1,
                                TT_HOSTPORT_STRICT | TT_HOSTPORT_PORT_OPTIONAL, &a))
        return up_fail(err, errlen, "want HOST:PORT (or [IPv6]:PORT) with a port from 1 to 65535");
    memcpy(u->host, a.host, a.host_len);
    u->host[a.host_len] = 0;
    snprintf(u->port, sizeof u->port, "%u", a.has_port ? a.port_num : 80u);
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(u->hostport, sizeof u->hostport, "%s%s%s:%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port);
    return 0;
}

size_t tt_upstream_filter_response(struct tt_header *f, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int drop = tt_http1_hop_by_hop(f[i].name, f[i].name_len);
        /* RFC 9110 §7.6.1: the fields Connection names are hop-by-hop too.
         * Every Connection field counts, however many: this only drops. */
        for (size_t j = 0; j < n && !drop; j++) {
            const struct tt_token *t = tt_token_find_ci(f[j].name, f[j].name_len);
            if (t && t->id == TT_TOK_CONNECTION)
                drop = tt_http1_connection_lists(f[j].value, f[j].value_len, f[i].name,
                                                 f[i].name_len);
        }
        if (!drop)
            f[k++] = f[i];
    }
    /* The Connection fields themselves went last, so the loop above could
     * still read them. */
    return k;
}

