/*
 * p --admin-listen ADDR: what p is doing, for operators and their tools.
 *
 *   /metrics      Prometheus text exposition (version 0.0.4)
 *   /api/tunnels  the names, their pools and each tunnel, as JSON
 *   /status       the same as a page that refreshes itself (no assets)
 *   /ready        200 while p holds a tunnel and is not draining, else 503
 *                 (a balancer's check)
 *   /live         200 while the loop runs
 *
 * Off by default, and meant for loopback or a private network: it names
 * every origin and its address.  The HTTP is admin_http.c's (c's admin
 * listener shares it); the pages are read from the server's own state.
 */
#include "proxy.h"

#include "proxy/admin_http.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* --- What is said --------------------------------------------------------- */

/* Why /ready says 503, or NULL when it says 200.  Without a tunnel every
 * request would be answered 503 "no origin": a p just (re)started, whose c
 * have not dialled in yet (their backoff may be seconds), or one whose
 * tunnels all went, must not be sent requests another p could serve.  Like
 * cloudflared's /ready: at least one connection up.  Forward links do not
 * count: they serve no public request. */
static const char *adm_unready(const struct tt_px_server *srv)
{
    if (srv->env.draining || srv->unready)
        return "draining\n";
    if (tt_px_tunnel_count(srv) == 0)
        return "no tunnel is up\n";
    return NULL;
}

typedef void (*pool_fn)(tt_buf *b, const struct tt_px_pool *p, void *arg);

static void each_pool(const struct tt_px_registry *r, tt_buf *b, pool_fn fn, void *arg)
{
    for (size_t i = 0; i < TT_PX_REG_BUCKETS; i++)
        for (const struct tt_px_pool *p = r->buckets[i]; p; p = p->next)
            if (p->n)
                fn(b, p, arg);
}

static uint64_t pool_streams(const struct tt_px_pool *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->members[i]->streams;
    return n;
}

static void metric_pool(tt_buf *b, const struct tt_px_pool *p, void *arg)
{
    const char *what = arg;
    tt_admin_put(b, "tether_%s{name=\"", what);
    tt_admin_put_escaped(b, p->name, 0);
    if (!strcmp(what, "tunnels"))
        tt_admin_put(b, "\"} %zu\n", p->n);
    else if (!strcmp(what, "streams_open"))
        tt_admin_put(b, "\"} %llu\n", (unsigned long long)pool_streams(p));
    else
        tt_admin_put(b, "\"} %zu\n", p->queued);
}

static void adm_metrics(struct tt_px_server *srv, tt_buf *b)
{
    const struct tt_px_counters *k = &srv->env.counters;
    static const struct {
        const char *name, *help;
    } pools[] = {
        {"tunnels", "Tunnels connected, by name (the name's pool)."},
        {"streams_open", "Requests bound to a tunnel now, by name."},
        {"queue_waiting", "Requests waiting for a stream of the name's pool."},
    };
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        tt_admin_put(b, "# HELP tether_%s %s\n# TYPE tether_%s gauge\n", pools[i].name, pools[i].help,
            pools[i].name);
        each_pool(&srv->reg, b, metric_pool, (void *)pools[i].name);
    }
    tt_admin_put(b, "# HELP tether_names Names with at least one tunnel.\n# TYPE tether_names gauge\n"
           "tether_names %zu\n", srv->reg.names);
    tt_admin_put(b, "# HELP tether_requests_total Requests begun, all fronts.\n"
           "# TYPE tether_requests_total counter\ntether_requests_total %llu\n",
        (unsigned long long)k->requests);
    tt_admin_put(b, "# HELP tether_responses_total Responses by status class (none: the client left "
           "first).\n# TYPE tether_responses_total counter\n");
    static const char *const cls[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    static const char *const fronts[TT_PX_FRONT_N] = {"http1", "h2", "tcp"};
    for (int f = 0; f < TT_PX_FRONT_N; f++)
        for (int i = 0; i < 6; i++)
            tt_admin_put(b, "tether_responses_total{front=\"%s\",class=\"%s\"} %llu\n", fronts[f],
                cls[i], (unsigned long long)k->by_class[f][i]);
    tt_admin_put(b, "# HELP tether_local_answers_total Requests p answered itself (no origin, busy, "
           "refused).\n# TYPE tether_local_answers_total counter\n"
           "tether_local_answers_total %llu\n", (unsigned long long)k->local);
    tt_admin_put(b, "# HELP tether_retries_total Requests opened again after a lost or refused stream.\n"
           "# TYPE tether_retries_total counter\ntether_retries_total %llu\n",
        (unsigned long long)k->retries);
    tt_admin_put(b, "# HELP tether_cancels_total Streams p reset for a client that left.\n"
           "# TYPE tether_cancels_total counter\ntether_cancels_total %llu\n",
        (unsigned long long)k->cancels);
    tt_admin_put(b, "# HELP tether_body_bytes_total Body bytes through p, by direction.\n"
           "# TYPE tether_body_bytes_total counter\n"
           "tether_body_bytes_total{direction=\"to_origin\"} %llu\n"
           "tether_body_bytes_total{direction=\"to_client\"} %llu\n",
        (unsigned long long)k->bytes_in, (unsigned long long)k->bytes_out);
    tt_admin_put(b, "# HELP tether_refusals_total Requests and tunnels p refused, by reason: token (401), "
           "name (403), limit (--max-tunnels, draining), request (not a tunnel request), tls "
           "(the handshake failed), other (timed out, dropped) for tunnels; no_origin and busy "
           "(503) for requests.\n# TYPE tether_refusals_total counter\n");
    static const char *const why[TT_PX_REFUSE_N] = {"token", "name", "limit", "request", "tls",
                                                    "other"};
    for (int i = 0; i < TT_PX_REFUSE_N; i++)
        tt_admin_put(b, "tether_refusals_total{what=\"tunnel\",reason=\"%s\"} %llu\n", why[i],
            (unsigned long long)srv->tun_refused[i]);
    tt_admin_put(b, "tether_refusals_total{what=\"request\",reason=\"no_origin\"} %llu\n"
           "tether_refusals_total{what=\"request\",reason=\"busy\"} %llu\n",
        (unsigned long long)k->no_origin, (unsigned long long)k->busy);
    tt_admin_put(b, "# HELP tether_tunnels_up_total Tunnels and forward links that came up.\n"
           "# TYPE tether_tunnels_up_total counter\ntether_tunnels_up_total %llu\n",
        (unsigned long long)srv->tunnels_up);
    tt_admin_put(b, "# HELP tether_queue_wait_seconds Time requests waited in a name's queue for a "
           "stream.\n# TYPE tether_queue_wait_seconds summary\n"
           "tether_queue_wait_seconds_count %llu\ntether_queue_wait_seconds_sum %.3f\n",
        (unsigned long long)k->queued, (double)k->queue_wait_ms / 1000);
    tt_admin_put(b, "# HELP tether_request_duration_seconds Requests from their head to their access "
           "line (WebSockets and TCP streams not counted).\n"
           "# TYPE tether_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < TT_PX_DUR_BUCKETS; i++) {
        cum += k->dur[i];
        if (i < TT_PX_DUR_BUCKETS - 1)
            tt_admin_put(b, "tether_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                TT_PX_DUR_BOUNDS_MS[i] / 1000.0, (unsigned long long)cum);
        else
            tt_admin_put(b, "tether_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    tt_admin_put(b, "tether_request_duration_seconds_count %llu\ntether_request_duration_seconds_sum %.3f\n",
        (unsigned long long)cum, (double)k->dur_sum_ms / 1000);
    tt_admin_put(b, "# HELP tether_client_connections Client connections open, all fronts.\n"
           "# TYPE tether_client_connections gauge\ntether_client_connections %zu\n",
        srv->clients);
    tt_admin_put(b, "# HELP tether_tunnel_handshakes Tunnel handshakes (TLS and PUT) under way.\n"
           "# TYPE tether_tunnel_handshakes gauge\ntether_tunnel_handshakes %zu\n",
        srv->handshakes);
    tt_admin_put(b, "# HELP tether_forward_links Forward links (c --local-listen) connected.\n"
           "# TYPE tether_forward_links gauge\ntether_forward_links %zu\n", srv->forward_links);
    tt_admin_put(b, "# HELP tether_draining 1 once p is shutting down.\n# TYPE tether_draining gauge\n"
           "tether_draining %d\n", srv->env.draining ? 1 : 0);
    tt_admin_put(b, "# HELP tether_ready 1 while /ready says 200.\n# TYPE tether_ready gauge\n"
                    "tether_ready %d\n", adm_unready(srv) ? 0 : 1);
    tt_admin_put(b, "# HELP tether_resident_memory_bytes Resident set size of p.\n"
           "# TYPE tether_resident_memory_bytes gauge\ntether_resident_memory_bytes %llu\n",
        (unsigned long long)tt_admin_rss());
}

struct adm_walk {
    uint64_t now;
    int first;
};

static void json_pool(tt_buf *b, const struct tt_px_pool *p, void *arg)
{
    struct adm_walk *w = arg;
    tt_admin_put(b, "%s{\"name\":\"", w->first ? "" : ",");
    w->first = 0;
    tt_admin_put_escaped(b, p->name, 0);
    tt_admin_put(b, "\",\"streams\":%llu,\"queued\":%zu,\"tunnels\":[", (unsigned long long)pool_streams(p),
        p->queued);
    for (size_t i = 0; i < p->n; i++) {
        const struct tt_px_tunnel *t = p->members[i];
        tt_admin_put(b, "%s{\"id\":%llu,\"peer\":\"", i ? "," : "", (unsigned long long)t->serial);
        tt_admin_put_escaped(b, t->peer, 0);
        tt_admin_put(b, "\",\"up_seconds\":%llu,\"streams\":%u,\"draining\":%s}",
            (unsigned long long)((w->now - t->up_ms) / 1000), t->streams,
            t->draining || t->dead ? "true" : "false");
    }
    tt_admin_put(b, "]}");
}

static void adm_json(struct tt_px_server *srv, tt_buf *b)
{
    struct adm_walk w = {tt_loop_now(srv->loop), 1};
    tt_admin_put(b, "{\"draining\":%s,\"tunnels\":%zu,\"clients\":%zu,\"names\":[",
        srv->env.draining ? "true" : "false", srv->reg.tunnels, srv->clients);
    each_pool(&srv->reg, b, json_pool, &w);
    tt_admin_put(b, "]}\n");
}

#define ADM_BUSIEST 10

struct adm_top {
    const struct tt_px_pool *p[ADM_BUSIEST];
    size_t n;
};

static void top_pool(tt_buf *b, const struct tt_px_pool *p, void *arg)
{
    (void)b;
    struct adm_top *t = arg;
    uint64_t s = pool_streams(p);
    size_t i = t->n;
    if (i == ADM_BUSIEST) {
        if (pool_streams(t->p[i - 1]) >= s)
            return;
        i--; /* the least busy of the ten gives way */
    } else {
        t->n++;
    }
    for (; i > 0 && pool_streams(t->p[i - 1]) < s; i--) /* kept sorted, busiest first */
        t->p[i] = t->p[i - 1];
    t->p[i] = p;
}

static void html_pool(tt_buf *b, const struct tt_px_pool *p, void *arg)
{
    struct adm_walk *w = arg;
    tt_admin_put(b, "<tr class=name><td colspan=4><b>");
    tt_admin_put_escaped(b, p->name, 1);
    tt_admin_put(b, "</b> &middot; %zu tunnel%s &middot; %llu open &middot; %zu waiting</td></tr>\n",
        p->n, p->n == 1 ? "" : "s", (unsigned long long)pool_streams(p), p->queued);
    for (size_t i = 0; i < p->n; i++) {
        const struct tt_px_tunnel *t = p->members[i];
        uint64_t up = (w->now - t->up_ms) / 1000;
        tt_admin_put(b, "<tr><td>#%llu</td><td>", (unsigned long long)t->serial);
        tt_admin_put_escaped(b, t->peer, 1);
        tt_admin_put(b, "</td><td>%lluh %02llum %02llus</td><td>%u%s</td></tr>\n",
            (unsigned long long)(up / 3600), (unsigned long long)(up / 60 % 60),
            (unsigned long long)(up % 60), t->streams, t->draining || t->dead ? " (draining)" : "");
    }
}

static void adm_html(struct tt_px_server *srv, tt_buf *b)
{
    const struct tt_px_counters *k = &srv->env.counters;
    tt_admin_put(b, "<!doctype html><html lang=en><head><meta charset=utf-8>"
           "<meta http-equiv=refresh content=5><title>tether p status</title><style>"
           "body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222;"
           "background:#fafafa}h1{font-size:1.4em;margin:0 0 .2em}"
           ".tiles{display:flex;gap:1em;margin:1em 0;flex-wrap:wrap}"
           ".tile{background:#fff;border:1px solid #ddd;border-radius:8px;padding:.6em 1em;"
           "min-width:8em}.tile b{display:block;font-size:1.6em}"
           "table{border-collapse:collapse;width:100%%;background:#fff;border:1px solid #ddd}"
           "td,th{padding:.35em .7em;border-bottom:1px solid #eee;text-align:left}"
           "tr.name td{background:#eef3fb}.state{color:%s}</style></head><body>\n",
        srv->env.draining ? "#b00" : "#080");
    tt_admin_put(b, "<h1>tether p</h1><div class=state>%s</div><div class=tiles>",
        srv->env.draining ? "draining: finishing requests, taking no new ones" : "serving");
    tt_admin_put(b, "<div class=tile><b>%zu</b>names</div><div class=tile><b>%zu</b>tunnels</div>"
           "<div class=tile><b>%zu</b>client connections</div>"
           "<div class=tile><b>%llu</b>requests</div>"
           "<div class=tile><b>%llu</b>answered by p</div>"
           "<div class=tile><b>%.1f MiB</b>memory</div></div>\n",
        srv->reg.names, srv->reg.tunnels, srv->clients, (unsigned long long)k->requests,
        (unsigned long long)k->local, (double)tt_admin_rss() / (1 << 20));
    struct adm_top top = {{0}, 0};
    each_pool(&srv->reg, b, top_pool, &top);
    if (top.n) {
        tt_admin_put(b, "<h2>Busiest names</h2><table><tr><th>name</th><th>open requests</th>"
               "<th>waiting</th></tr>\n");
        for (size_t i = 0; i < top.n; i++) {
            tt_admin_put(b, "<tr><td>");
            tt_admin_put_escaped(b, top.p[i]->name, 1);
            tt_admin_put(b, "</td><td>%llu</td><td>%zu</td></tr>\n",
                (unsigned long long)pool_streams(top.p[i]), top.p[i]->queued);
        }
        tt_admin_put(b, "</table>\n");
    }
    tt_admin_put(b, "<h2>Tunnels</h2><table><tr><th>tunnel</th><th>origin address</th><th>up</th>"
           "<th>open requests</th></tr>\n");
    struct adm_walk w = {tt_loop_now(srv->loop), 1};
    each_pool(&srv->reg, b, html_pool, &w);
    if (!srv->reg.tunnels)
        tt_admin_put(b, "<tr><td colspan=4>no origin is connected</td></tr>\n");
    tt_admin_put(b, "</table><p><small>refreshes every 5 s &middot; <a href=/metrics>/metrics</a> "
           "&middot; <a href=/api/tunnels>/api/tunnels</a></small></p></body></html>\n");
}

/* --- The pages ----------------------------------------------------------- */

static int adm_page(void *ud, const char *path, size_t pl, tt_buf *body, const char **type)
{
    struct tt_px_server *srv = ud;
#define IS(p) (pl == strlen(p) && !strncmp(path, p, pl))
    if (IS("/metrics")) {
        adm_metrics(srv, body);
        *type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (IS("/api/tunnels")) {
        adm_json(srv, body);
        *type = "application/json";
    } else if (IS("/status") || IS("/")) {
        adm_html(srv, body);
        *type = "text/html; charset=utf-8";
    } else if (IS("/ready")) {
        const char *why = adm_unready(srv);
        tt_admin_put(body, why ? why : "ready\n");
        return why ? 503 : 200;
    } else if (IS("/live")) {
        tt_admin_put(body, "live\n");
    } else {
        tt_admin_put(body, "not here: /metrics /status /api/tunnels /ready /live\n");
        return 404;
    }
#undef IS
    return 200;
}

int tt_px_admin_listen(struct tt_px_server *srv, int fd)
{
    return tt_admin_http_start(srv->loop, fd, adm_page, srv);
}
