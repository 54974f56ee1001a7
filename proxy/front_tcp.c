/*
 * The TCP front (p --tcp-listen ADDR=NAME): accepts connections and hands
 * each to front_pipe.c as a CONNECT stream (RFC 9113 §8.5) on a tunnel of
 * NAME, which c --tcp joins to its one local service.  Client connections
 * count against --max-clients like the HTTP fronts'.
 */
#include "proxy.h"

#include "proto/log.h"

#include <stdio.h>
#include <unistd.h>

struct tt_px_tcp_listener {
    struct tt_px_listener l;
    char name[TT_PX_NAME_MAX + 1];
    const char *via; /* the pool (c's forward link), or NULL: the name's */
};

static void tcp_on_conn(struct tt_px_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct tt_px_server *srv = l->srv;
    struct tt_px_tcp_listener *tl = tt_container_of(l, struct tt_px_tcp_listener, l);
    if (srv->clients >= srv->cfg->max_clients || srv->env.draining) {
        uint64_t held;
        if (tt_log_limit_pass(&l->log, tt_loop_now(srv->loop), 1000, 1, &held))
            tt_log_warn("tcp client refused for %s: %s (%llu more since the last such line)",
                        tl->name, srv->env.draining ? "p is shutting down" : "--max-clients",
                        (unsigned long long)held);
        close(fd);
        return;
    }
    char peer[64], ip[48];
    tt_px_sockaddr_text((const struct sockaddr *)ss, peer, sizeof(peer), ip, sizeof(ip));
    tt_px_pipe_tcp(srv, fd, peer, ip, tl->name, tl->via);
}

int tt_px_tcp_listen(struct tt_px_server *srv, const struct tt_px_tcp_listen *def, int fd)
{
    struct tt_px_tcp_listener *tl = tt_mem_calloc(1, sizeof(*tl));
    if (!tl) {
        close(fd);
        return -1;
    }
    snprintf(tl->name, sizeof(tl->name), "%s", def->name);
    tl->via = def->via;
    tl->l.io.fd = -1;
    if (tt_px_listener_start(srv, &tl->l, fd, "tcp client", tcp_on_conn) < 0) {
        close(fd);
        tt_mem_free(tl);
        return -1;
    }
    srv->tcp_lis[srv->n_tcp_lis++] = &tl->l;
    return 0;
}

void tt_px_tcp_drain(struct tt_px_server *srv)
{
    /* No new connections; those open go on until the drain's deadline. */
    for (size_t i = 0; i < srv->n_tcp_lis; i++) {
        tt_px_listener_close(srv->tcp_lis[i]);
        tt_mem_free(tt_container_of(srv->tcp_lis[i], struct tt_px_tcp_listener, l));
    }
    srv->n_tcp_lis = 0;
}
