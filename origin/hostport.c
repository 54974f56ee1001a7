/*
 * "host:port" for the addresses c dials, on its own so that both the flags
 * (options.c) and the --upstream URL parser (upstream.c) can use it without
 * depending on each other.  The syntax itself is proto/http1.c's, the one
 * host:port parser of both programs.
 */
#include "origin/hostport.h"

#include "proto/http1.h"

#include <stdio.h>
#include <string.h>

int tt_origin_split_hostport(const char *s, char *host, size_t hostlen, char *port,
                             size_t portlen)
{
    /* A plain host name and a real port; copied into the caller's buffers
     * whole or not at all. */
    struct tt_hostport a;
    if (hostlen == 0 ||
        tt_http1_hostport_parse(s, strlen(s), hostlen - 1, TT_HOSTPORT_STRICT, &a) ||
        a.port_len >= portlen)
        return -1;
    memcpy(host, a.host, a.host_len);
    host[a.host_len] = 0;
    snprintf(port, portlen, "%u", a.port_num);
    return 0;
}
