/*
 * "host:port" splitting, on its own so that both the flags (options.c) and
 * the --upstream URL parser (upstream.c) can use it without depending on
 * each other.
 */
#include "origin/hostport.h"

#include <stdio.h>
#include <string.h>

int tt_origin_split_hostport(const char *s, char *host, size_t hostlen, char *port,
                             size_t portlen)
{
    const char *h, *p;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        p = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return -1;
        /* Two colons without brackets: an IPv6 address whose port cannot be
         * told apart. */
        if (memchr(s, ':', (size_t)(colon - s)))
            return -1;
        h = s;
        hl = (size_t)(colon - s);
        p = colon + 1;
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '@')
            return -1;
    }
    size_t pl = strlen(p);
    if (pl == 0 || pl > 5 || pl >= portlen)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    snprintf(port, portlen, "%lu", v);
    return 0;
}
