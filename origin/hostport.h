/*
 * "host:port" and "[v6]:port" splitting (hostport.c): a leaf both
 * options.c and upstream.c use, so neither needs the other.
 */
#ifndef TT_ORIGIN_HOSTPORT_H
#define TT_ORIGIN_HOSTPORT_H

#include <stddef.h>

/* Splits "host:port", "[v6]:port" into host and port (1-65535).  Returns 0
 * or -1. */
int tt_origin_split_hostport(const char *s, char *host, size_t hostlen, char *port,
                             size_t portlen);

#endif
