/*
 * p --admin-listen ADDR: what p is doing, for operators and their tools.
 *
 *   /metrics      Prometheus text exposition (version 0.0.4)
 *   /api/tunnels  the names, their pools and each tunnel, as JSON
 *   /status       the same as a page that refreshes itself (no assets)
 *   /ready        200 while serving, 503 once draining (a balancer's check)
 *   /live         200 while the loop runs
 *
 * Off by default, and meant for loopback or a private network: it names
 * every origin and its address.  One request per connection (HTTP/1.1,
 * llhttp), answered from the server's own state and closed; at most
 * ADMIN_CONNS_MAX at once, each with ADMIN_TIMEOUT_MS to send its head.
 */
#include "proxy.h"

#include "llhttp.h"
#include "proto/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ADMIN_CONNS_MAX 32
#define ADMIN_HEAD_MAX 8192
#define ADMIN_TIMEOUT_MS 5000
#define ADMIN_OUT_MAX (64u << 20) /* the JSON of 10^5 tunnels fits */

struct adm_conn {
    struct tt_px_server *srv;
    struct tt_link link;
    struct tt_io io;
    struct tt_timer timer;
    struct tt_defer free_d;
    llhttp_t parser;
    char url[512];
    size_t url_len;
    uint8_t done, dead, head_only;
    size_t in_len;
    tt_buf out;
};

static struct tt_px_listener adm_lis;
static struct tt_list adm_conns;
static size_t adm_n;

static void adm_on_free(struct tt_loop *loop, struct tt_defer *d)
{
    struct adm_conn *a = d->data;
    (void)loop;
    tt_buf_free(&a->out);
    tt_mem_free(a);
}

static void adm_close(struct adm_conn *a)
{
    if (a->dead)
        return;
    a->dead = 1;
    tt_timer_stop(a->srv->loop, &a->timer);
    int fd = a->io.fd;
    tt_io_stop(a->srv->loop, &a->io);
    if (fd >= 0)
        close(fd);
    tt_link_remove(&a->link);
    adm_n--;
    tt_defer_queue(a->srv->loop, &a->free_d);
}

/* --- What is said --------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void put(tt_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Past the buffer's bound the page is cut short: adm_respond sees it. */
    if (n > 0 && tt_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1))
        return;
}

/* Names and peers are [A-Za-z0-9_-] and "ip:port", but an escape costs
 * nothing and keeps the page and the JSON well formed whatever they hold. */
static void put_escaped(tt_buf *b, const char *s, int html)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (html && (ch == '<' || ch == '>' || ch == '&' || ch == '"'))
            put(b, "&#%u;", ch);
        else if (!html && (ch == '"' || ch == '\\' || ch < 0x20))
            put(b, "\\u%04x", ch);
        else if (tt_buf_append(b, s, 1))
            return;
    }
}

static uint64_t adm_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
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
    put(b, "tether_%s{name=\"", what);
    put_escaped(b, p->name, 0);
    if (!strcmp(what, "tunnels"))
        put(b, "\"} %zu\n", p->n);
    else if (!strcmp(what, "streams_open"))
        put(b, "\"} %llu\n", (unsigned long long)pool_streams(p));
    else
        put(b, "\"} %zu\n", p->queued);
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
        put(b, "# HELP tether_%s %s\n# TYPE tether_%s gauge\n", pools[i].name, pools[i].help,
            pools[i].name);
        each_pool(&srv->reg, b, metric_pool, (void *)pools[i].name);
    }
    put(b, "# HELP tether_names Names with at least one tunnel.\n# TYPE tether_names gauge\n"
           "tether_names %zu\n", srv->reg.names);
    put(b, "# HELP tether_requests_total Requests begun, all fronts.\n"
           "# TYPE tether_requests_total counter\ntether_requests_total %llu\n",
        (unsigned long long)k->requests);
    put(b, "# HELP tether_responses_total Responses by status class (none: the client left "
           "first).\n# TYPE tether_responses_total counter\n");
    static const char *const cls[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    static const char *const fronts[TT_PX_FRONT_N] = {"http1", "h2", "tcp"};
    for (int f = 0; f < TT_PX_FRONT_N; f++)
        for (int i = 0; i < 6; i++)
            put(b, "tether_responses_total{front=\"%s\",class=\"%s\"} %llu\n", fronts[f],
                cls[i], (unsigned long long)k->by_class[f][i]);
    put(b, "# HELP tether_local_answers_total Requests p answered itself (no origin, busy, "
           "refused).\n# TYPE tether_local_answers_total counter\n"
           "tether_local_answers_total %llu\n", (unsigned long long)k->local);
    put(b, "# HELP tether_retries_total Requests opened again after a lost or refused stream.\n"
           "# TYPE tether_retries_total counter\ntether_retries_total %llu\n",
        (unsigned long long)k->retries);
    put(b, "# HELP tether_cancels_total Streams p reset for a client that left.\n"
           "# TYPE tether_cancels_total counter\ntether_cancels_total %llu\n",
        (unsigned long long)k->cancels);
    put(b, "# HELP tether_body_bytes_total Body bytes through p, by direction.\n"
           "# TYPE tether_body_bytes_total counter\n"
           "tether_body_bytes_total{direction=\"to_origin\"} %llu\n"
           "tether_body_bytes_total{direction=\"to_client\"} %llu\n",
        (unsigned long long)k->bytes_in, (unsigned long long)k->bytes_out);
    put(b, "# HELP tether_refusals_total Requests and tunnels p refused, by reason: token (401), "
           "name (403), limit (--max-tunnels, draining), request (not a tunnel request), tls "
           "(the handshake failed), other (timed out, dropped) for tunnels; no_origin and busy "
           "(503) for requests.\n# TYPE tether_refusals_total counter\n");
    static const char *const why[TT_PX_REFUSE_N] = {"token", "name", "limit", "request", "tls",
                                                    "other"};
    for (int i = 0; i < TT_PX_REFUSE_N; i++)
        put(b, "tether_refusals_total{what=\"tunnel\",reason=\"%s\"} %llu\n", why[i],
            (unsigned long long)srv->tun_refused[i]);
    put(b, "tether_refusals_total{what=\"request\",reason=\"no_origin\"} %llu\n"
           "tether_refusals_total{what=\"request\",reason=\"busy\"} %llu\n",
        (unsigned long long)k->no_origin, (unsigned long long)k->busy);
    put(b, "# HELP tether_tunnels_up_total Tunnels and forward links that came up.\n"
           "# TYPE tether_tunnels_up_total counter\ntether_tunnels_up_total %llu\n",
        (unsigned long long)srv->tunnels_up);
    put(b, "# HELP tether_queue_wait_seconds Time requests waited in a name's queue for a "
           "stream.\n# TYPE tether_queue_wait_seconds summary\n"
           "tether_queue_wait_seconds_count %llu\ntether_queue_wait_seconds_sum %.3f\n",
        (unsigned long long)k->queued, (double)k->queue_wait_ms / 1000);
    put(b, "# HELP tether_request_duration_seconds Requests from their head to their access "
           "line (WebSockets and TCP streams not counted).\n"
           "# TYPE tether_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < TT_PX_DUR_BUCKETS; i++) {
        cum += k->dur[i];
        if (i < TT_PX_DUR_BUCKETS - 1)
            put(b, "tether_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                TT_PX_DUR_BOUNDS_MS[i] / 1000.0, (unsigned long long)cum);
        else
            put(b, "tether_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    put(b, "tether_request_duration_seconds_count %llu\ntether_request_duration_seconds_sum %.3f\n",
        (unsigned long long)cum, (double)k->dur_sum_ms / 1000);
    put(b, "# HELP tether_client_connections Client connections open, all fronts.\n"
           "# TYPE tether_client_connections gauge\ntether_client_connections %zu\n",
        srv->clients);
    put(b, "# HELP tether_tunnel_handshakes Tunnel handshakes (TLS and PUT) under way.\n"
           "# TYPE tether_tunnel_handshakes gauge\ntether_tunnel_handshakes %zu\n",
        srv->handshakes);
    put(b, "# HELP tether_forward_links Forward links (c --local-listen) connected.\n"
           "# TYPE tether_forward_links gauge\ntether_forward_links %zu\n", srv->forward_links);
    put(b, "# HELP tether_draining 1 once p is shutting down.\n# TYPE tether_draining gauge\n"
           "tether_draining %d\n", srv->env.draining ? 1 : 0);
    put(b, "# HELP tether_resident_memory_bytes Resident set size of p.\n"
           "# TYPE tether_resident_memory_bytes gauge\ntether_resident_memory_bytes %llu\n",
        (unsigned long long)adm_rss());
}

struct adm_walk {
    uint64_t now;
    int first;
};

static void json_pool(tt_buf *b, const struct tt_px_pool *p, void *arg)
{
    struct adm_walk *w = arg;
    put(b, "%s{\"name\":\"", w->first ? "" : ",");
    w->first = 0;
    put_escaped(b, p->name, 0);
    put(b, "\",\"streams\":%llu,\"queued\":%zu,\"tunnels\":[", (unsigned long long)pool_streams(p),
        p->queued);
    for (size_t i = 0; i < p->n; i++) {
        const struct tt_px_tunnel *t = p->members[i];
        put(b, "%s{\"id\":%llu,\"peer\":\"", i ? "," : "", (unsigned long long)t->serial);
        put_escaped(b, t->peer, 0);
        put(b, "\",\"up_seconds\":%llu,\"streams\":%u,\"draining\":%s}",
            (unsigned long long)((w->now - t->up_ms) / 1000), t->streams,
            t->draining || t->dead ? "true" : "false");
    }
    put(b, "]}");
}

static void adm_json(struct tt_px_server *srv, tt_buf *b)
{
    struct adm_walk w = {tt_loop_now(srv->loop), 1};
    put(b, "{\"draining\":%s,\"tunnels\":%zu,\"clients\":%zu,\"names\":[",
        srv->env.draining ? "true" : "false", srv->reg.tunnels, srv->clients);
    each_pool(&srv->reg, b, json_pool, &w);
    put(b, "]}\n");
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
    put(b, "<tr class=name><td colspan=4><b>");
    put_escaped(b, p->name, 1);
    put(b, "</b> &middot; %zu tunnel%s &middot; %llu open &middot; %zu waiting</td></tr>\n",
        p->n, p->n == 1 ? "" : "s", (unsigned long long)pool_streams(p), p->queued);
    for (size_t i = 0; i < p->n; i++) {
        const struct tt_px_tunnel *t = p->members[i];
        uint64_t up = (w->now - t->up_ms) / 1000;
        put(b, "<tr><td>#%llu</td><td>", (unsigned long long)t->serial);
        put_escaped(b, t->peer, 1);
        put(b, "</td><td>%lluh %02llum %02llus</td><td>%u%s</td></tr>\n",
            (unsigned long long)(up / 3600), (unsigned long long)(up / 60 % 60),
            (unsigned long long)(up % 60), t->streams, t->draining || t->dead ? " (draining)" : "");
    }
}

static void adm_html(struct tt_px_server *srv, tt_buf *b)
{
    const struct tt_px_counters *k = &srv->env.counters;
    put(b, "<!doctype html><html lang=en><head><meta charset=utf-8>"
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
    put(b, "<h1>tether p</h1><div class=state>%s</div><div class=tiles>",
        srv->env.draining ? "draining: finishing requests, taking no new ones" : "serving");
    put(b, "<div class=tile><b>%zu</b>names</div><div class=tile><b>%zu</b>tunnels</div>"
           "<div class=tile><b>%zu</b>client connections</div>"
           "<div class=tile><b>%llu</b>requests</div>"
           "<div class=tile><b>%llu</b>answered by p</div>"
           "<div class=tile><b>%.1f MiB</b>memory</div></div>\n",
        srv->reg.names, srv->reg.tunnels, srv->clients, (unsigned long long)k->requests,
        (unsigned long long)k->local, (double)adm_rss() / (1 << 20));
    struct adm_top top = {{0}, 0};
    each_pool(&srv->reg, b, top_pool, &top);
    if (top.n) {
        put(b, "<h2>Busiest names</h2><table><tr><th>name</th><th>open requests</th>"
               "<th>waiting</th></tr>\n");
        for (size_t i = 0; i < top.n; i++) {
            put(b, "<tr><td>");
            put_escaped(b, top.p[i]->name, 1);
            put(b, "</td><td>%llu</td><td>%zu</td></tr>\n",
                (unsigned long long)pool_streams(top.p[i]), top.p[i]->queued);
        }
        put(b, "</table>\n");
    }
    put(b, "<h2>Tunnels</h2><table><tr><th>tunnel</th><th>origin address</th><th>up</th>"
           "<th>open requests</th></tr>\n");
    struct adm_walk w = {tt_loop_now(srv->loop), 1};
    each_pool(&srv->reg, b, html_pool, &w);
    if (!srv->reg.tunnels)
        put(b, "<tr><td colspan=4>no origin is connected</td></tr>\n");
    put(b, "</table><p><small>refreshes every 5 s &middot; <a href=/metrics>/metrics</a> "
           "&middot; <a href=/api/tunnels>/api/tunnels</a></small></p></body></html>\n");
}

/* --- The connection ------------------------------------------------------- */

static void adm_respond(struct adm_conn *a, int status, const char *type, tt_buf *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n",
                     status, status == 200 ? "OK" : status == 404 ? "Not Found"
                                                  : status == 405 ? "Method Not Allowed"
                                                  : status == 503 ? "Service Unavailable"
                                                                  : "Bad Request",
                     type, tt_buf_len(body));
    if (tt_buf_append(&a->out, head, (size_t)n) ||
        (!a->head_only && tt_buf_append(&a->out, tt_buf_data(body), tt_buf_len(body))))
        tt_buf_consume(&a->out, tt_buf_len(&a->out)); /* over the bound: say nothing */
}

static void adm_answer(struct adm_conn *a)
{
    struct tt_px_server *srv = a->srv;
    tt_buf body;
    tt_buf_init(&body, ADMIN_OUT_MAX);
    const char *path = a->url;
    size_t pl = strcspn(path, "?");
    int method = llhttp_get_method(&a->parser);
    a->head_only = method == HTTP_HEAD;
#define IS(p) (pl == strlen(p) && !strncmp(path, p, pl))
    if (method != HTTP_GET && method != HTTP_HEAD) {
        put(&body, "only GET and HEAD here\n");
        adm_respond(a, 405, "text/plain; charset=utf-8", &body);
    } else if (IS("/metrics")) {
        adm_metrics(srv, &body);
        adm_respond(a, 200, "text/plain; version=0.0.4; charset=utf-8", &body);
    } else if (IS("/api/tunnels")) {
        adm_json(srv, &body);
        adm_respond(a, 200, "application/json", &body);
    } else if (IS("/status") || IS("/")) {
        adm_html(srv, &body);
        adm_respond(a, 200, "text/html; charset=utf-8", &body);
    } else if (IS("/ready")) {
        put(&body, srv->env.draining ? "draining\n" : "ready\n");
        adm_respond(a, srv->env.draining ? 503 : 200, "text/plain; charset=utf-8", &body);
    } else if (IS("/live")) {
        put(&body, "live\n");
        adm_respond(a, 200, "text/plain; charset=utf-8", &body);
    } else {
        put(&body, "not here: /metrics /status /api/tunnels /ready /live\n");
        adm_respond(a, 404, "text/plain; charset=utf-8", &body);
    }
#undef IS
    tt_buf_free(&body);
}

static int adm_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct adm_conn *a = p->data;
    if (a->url_len + len >= sizeof a->url)
        return HPE_USER;
    memcpy(a->url + a->url_len, at, len);
    a->url_len += len;
    a->url[a->url_len] = 0;
    return 0;
}

static int adm_on_headers_complete(llhttp_t *p)
{
    struct adm_conn *a = p->data;
    a->done = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t *adm_settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_url = adm_on_url;
        s.on_headers_complete = adm_on_headers_complete;
        init = 1;
    }
    return &s;
}

static void adm_write(struct adm_conn *a)
{
    while (tt_buf_len(&a->out)) {
        ssize_t n = write(a->io.fd, tt_buf_data(&a->out), tt_buf_len(&a->out));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            tt_io_modify(a->srv->loop, &a->io, TT_IO_WRITE);
            return;
        }
        if (n <= 0)
            break;
        tt_buf_consume(&a->out, (size_t)n);
    }
    adm_close(a);
}

static void adm_on_io(struct tt_loop *loop, struct tt_io *io, unsigned events)
{
    struct adm_conn *a = io->data;
    (void)loop;
    if (a->done) {
        if (events & (TT_IO_WRITE | TT_IO_ERROR))
            adm_write(a);
        return;
    }
    char buf[2048];
    ssize_t n = read(io->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 || (a->in_len += (size_t)n) > ADMIN_HEAD_MAX) {
        adm_close(a);
        return;
    }
    llhttp_errno_t e = llhttp_execute(&a->parser, buf, (size_t)n);
    if (a->done) {
        adm_answer(a);
        adm_write(a);
    } else if (e != HPE_OK) {
        adm_close(a);
    }
}

static void adm_on_timer(struct tt_loop *loop, struct tt_timer *t)
{
    (void)loop;
    adm_close(t->data);
}

static void adm_on_conn(struct tt_px_listener *l, int fd, const struct sockaddr_storage *ss)
{
    (void)ss;
    struct tt_px_server *srv = l->srv;
    struct adm_conn *a = adm_n < ADMIN_CONNS_MAX ? tt_mem_calloc(1, sizeof *a) : NULL;
    if (!a) {
        close(fd);
        return;
    }
    a->srv = srv;
    tt_buf_init(&a->out, ADMIN_OUT_MAX + 512);
    tt_defer_init(&a->free_d, adm_on_free, a);
    tt_timer_init(&a->timer, adm_on_timer, a);
    llhttp_init(&a->parser, HTTP_REQUEST, adm_settings());
    a->parser.data = a;
    if (tt_io_start(srv->loop, &a->io, fd, TT_IO_READ, adm_on_io, a) < 0) {
        close(fd);
        tt_mem_free(a);
        return;
    }
    adm_n++;
    tt_list_push(&adm_conns, &a->link);
    tt_timer_start(srv->loop, &a->timer, ADMIN_TIMEOUT_MS);
}

int tt_px_admin_listen(struct tt_px_server *srv, int fd)
{
    adm_lis.io.fd = -1;
    return tt_px_listener_start(srv, &adm_lis, fd, "admin client", adm_on_conn);
}
