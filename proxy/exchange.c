/*
 * The exchange: one client request's life on the tunnel (see exchange.h for
 * the policy; this file is its only implementation).
 */
#include "proxy/exchange.h"

#include "proto/log.h"
#include "proto/session.h"
#include "proto/text.h"
#include "proxy/registry.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static void xc_pump(struct tt_px_exchange *x);
static int xc_open(struct tt_px_exchange *x);
static void xc_on_retry(struct tt_loop *loop, struct tt_timer *tm);

/* --- The tunnel side -------------------------------------------------------- */

static struct tt_h2_conn *xc_conn(const struct tt_px_exchange *x)
{
    return x->tun && x->tun->sess && !tt_session_closing(x->tun->sess)
               ? tt_session_h2(x->tun->sess)
               : NULL;
}

static void xc_flush(const struct tt_px_exchange *x)
{
    if (x->tun && x->tun->sess)
        tt_session_flush(x->tun->sess);
}

static void xc_wait(struct tt_px_exchange *x)
{
    if (x->tun)
        tt_list_push(&x->tun->waiting, &x->wait);
}

/* Lets go of the stream: it stops counting on its tunnel, and a retry will
 * prefer another member. */
static void xc_detach(struct tt_px_exchange *x)
{
    tt_link_remove(&x->wait);
    if (x->tun) {
        tt_px_pool_leave(&x->tun, &x->avoid);
        x->sid = 0;
    }
}

/* Lets go of a stream that is still open.  `reset`: RST_STREAM(CANCEL), the
 * client is no longer interested (RFC 9113 §8.7); else both ends are done
 * and the close follows without us.  Either way the window for response
 * bytes the front still holds goes back: nobody reads them on this stream. */
/* The held bytes are no longer counted against the tunnel's hold budget. */
static void xc_forget_held(struct tt_px_exchange *x)
{
    if (x->tun) {
        x->tun->held -= x->early < x->tun->held ? x->early : x->tun->held;
        x->tun->grown -= x->grown < x->tun->grown ? x->grown : x->tun->grown;
    }
    x->early = 0;
    x->grown = 0;
    x->unconsumed = 0;
}

static void xc_release(struct tt_px_exchange *x, int reset)
{
    struct tt_h2_conn *c = xc_conn(x);
    if (!c) {
        xc_forget_held(x);
        xc_detach(x);
        return;
    }
    struct tt_px_tunnel *t = x->tun;
    uint32_t sid = x->sid;
    /* The connection window only: the stream ends (or, its reset deferred,
     * should not be sent more than its window). */
    if (x->unconsumed)
        tt_h2_consume_connection(c, sid, x->unconsumed);
    xc_forget_held(x);
    tt_h2_stream_set_user(c, sid, NULL);
    xc_detach(x);
    if (reset) {
        x->env->counters.cancels++;
        (void)tt_px_tunnel_cancel(t, sid, x->resp_head);
    }
    tt_session_flush(t->sess);
}

/* In line on `pool`: behind its own connection's requests, and the
 * connection takes its turn among the others (proxy/queue.h). */
static void xc_enqueue(struct tt_px_exchange *x, struct tt_px_pool *pool)
{
    struct tt_px_qgroup *g = x->group;
    if (g->in && g->in != pool)
        g = &x->own; /* the connection already waits on another name */
    tt_px_queue_push(&pool->queue, pool, g, &x->qlink);
    x->qgroup = g;
    x->qpool = pool;
    x->queued_at = tt_loop_now(x->env->loop);
    pool->queued++;
}

static void xc_unqueue(struct tt_px_exchange *x)
{
    if (!x->qpool)
        return;
    tt_px_queue_remove(&x->qpool->queue, x->qgroup, &x->qlink);
    x->qpool->queued--;
    x->env->counters.queued++;
    x->env->counters.queue_wait_ms += tt_loop_now(x->env->loop) - x->queued_at;
    x->qpool = NULL;
    x->qgroup = NULL;
}

static struct tt_px_exchange *xc_queue_next(struct tt_px_pool *pool)
{
    struct tt_link *l = tt_px_queue_next(&pool->queue);
    return l ? tt_container_of(l, struct tt_px_exchange, qlink) : NULL;
}

static void xc_stop_retry(struct tt_px_exchange *x)
{
    tt_timer_stop(x->env->loop, &x->retry);
    xc_unqueue(x);
}

/* `n` body bytes left the buffer: the front hears of those it has not heard
 * of yet (replayed bytes were reported when they first went). */
static void xc_body_left(struct tt_px_exchange *x, size_t n)
{
    size_t again = n < x->replayed ? n : x->replayed;
    x->replayed -= again;
    if (n > again)
        x->ops->req_taken(x, n - again, tt_buf_len(&x->body) == 0);
}

/* Request body bytes that nobody will forward any more: the front gets
 * their window back. */
static void xc_drop_body(struct tt_px_exchange *x)
{
    size_t n = tt_buf_len(&x->body);
    tt_buf_consume(&x->body, n);
    tt_buf_shrink(&x->body);
    x->req_trl = NULL;
    xc_body_left(x, n);
}

/* --- Lifetime ------------------------------------------------------------------ */

void tt_px_exchange_init(struct tt_px_exchange *x, struct tt_px_exchange_env *env,
                         const struct tt_px_front_ops *ops, const char *peer, const char *ip,
                         size_t body_max)
{
    memset(x, 0, sizeof(*x));
    x->env = env;
    x->ops = ops;
    x->peer = peer;
    x->ip = ip;
    x->interim_ok = 1;
    tt_arena_init(&x->arena, 0);
    tt_buf_init(&x->body, body_max);
    tt_buf_init(&x->replay, TT_PX_REPLAY_MAX);
    tt_timer_init(&x->retry, xc_on_retry, x);
    x->group = &x->own;
}

void tt_px_exchange_set_group(struct tt_px_exchange *x, struct tt_px_qgroup *g)
{
    x->group = g ? g : &x->own;
}

void tt_px_exchange_free(struct tt_px_exchange *x)
{
    if (x->tun)
        xc_release(x, 1);
    xc_stop_retry(x);
    tt_arena_reset(&x->arena);
    tt_buf_free(&x->body);
    tt_buf_free(&x->replay);
}

void tt_px_exchange_begin(struct tt_px_exchange *x)
{
    if (x->tun)
        xc_release(x, 1);
    xc_stop_retry(x);
    tt_arena_reset(&x->arena);
    tt_buf_consume(&x->body, tt_buf_len(&x->body));
    tt_buf_shrink(&x->body);
    tt_buf_free(&x->replay);
    x->method = x->log_path = NULL;
    x->name[0] = 0;
    x->reg = x->env->reg;
    x->hdrs = x->req_trl = NULL;
    x->hdrs_n = x->req_trl_n = 0;
    x->body_sent = x->avoid = x->bytes = x->affinity = 0;
    x->replayed = 0;
    x->unconsumed = 0;
    x->early = 0;
    x->grown = 0;
    x->status = 0;
    x->idempotent = x->head_method = x->body_done = x->end_sent = 0;
    x->replay_lost = x->expect = x->sent_continue = x->te_trailers = x->expect_other = 0;
    x->interim = x->attempts = x->resp_head = x->resp_done = x->local = x->logged = 0;
    x->close_after = x->retrying = 0;
    x->waits = 0;
    x->waited_ms = 0;
    x->queue_expired = 0;
    x->grpc = x->req_grpc = 0;
    x->end_how = TT_PX_END_OK;
    x->grpc_status = -1;
    x->end_code = 0;
    x->active = 1;
    x->start_ms = tt_loop_now(x->env->loop);
    x->env->counters.requests++;
}

int tt_px_exchange_set_line(struct tt_px_exchange *x, const char *method, size_t method_len,
                            const char *target, size_t target_len)
{
    if (method) {
        if (!(x->method = tt_arena_strndup(&x->arena, method, method_len)))
            return -1;
        x->idempotent = (uint8_t)tt_px_method_idempotent(method, method_len);
        x->head_method = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
    }
    size_t pl = target_len < TT_PX_LOG_PATH_MAX ? target_len : TT_PX_LOG_PATH_MAX;
    if (!(x->log_path = tt_arena_strndup(&x->arena, target ? target : "", target ? pl : 0)))
        return -1;
    return 0;
}

static void xc_log(struct tt_px_exchange *x)
{
    if (x->logged || !x->active)
        return;
    x->logged = 1;
    struct tt_px_counters *k = &x->env->counters;
    int cls = x->status >= 100 && x->status < 600 ? x->status / 100 : 0;
    int front = !x->proto ? TT_PX_FRONT_HTTP1 : x->proto[0] == 'h' ? TT_PX_FRONT_H2 : TT_PX_FRONT_TCP;
    k->by_class[front][cls]++;
    uint64_t now = tt_loop_now(x->env->loop);
    if (!x->byte_stream)
        tt_px_count_duration(k, now - x->start_ms);
    tt_px_access_line(x, now);
}

void tt_px_exchange_forget(struct tt_px_exchange *x)
{
    if (x->active)
        x->env->counters.requests--; /* the front it moved to counts it */
    x->logged = 1;
    tt_px_exchange_end(x, 0);
}

void tt_px_exchange_end(struct tt_px_exchange *x, int client_gone)
{
    if (!x->active)
        return;
    if (client_gone && !x->resp_head && !x->status)
        x->status = 499; /* nginx's word for "client closed request" */
    if (client_gone && x->end_how == TT_PX_END_OK)
        x->end_how = TT_PX_END_CLIENT_GONE;
    xc_stop_retry(x);
    x->retrying = 0;
    xc_log(x);
    if (x->tun)
        xc_release(x, client_gone || !x->resp_done || !x->end_sent);
    xc_drop_body(x);
    x->active = 0;
}

/* --- Answers ------------------------------------------------------------------- */

/* The tunnel half is given up before p answers itself: no retry or queue,
 * the stream reset, the request body not wanted. */
static void xc_let_go(struct tt_px_exchange *x)
{
    xc_stop_retry(x);
    x->retrying = 0;
    if (x->tun)
        xc_release(x, 1);
    xc_drop_body(x);
}

void tt_px_exchange_fail(struct tt_px_exchange *x, const char *why)
{
    if (!x->active)
        return;
    if (x->end_how == TT_PX_END_OK)
        x->end_how = TT_PX_END_FAILED;
    xc_let_go(x);
    x->resp_done = 1;
    x->ops->abort(x, why);
}

static void xc_local(struct tt_px_exchange *x, int status, const char *body, int retry_after,
                     const struct tt_header *extra);

void tt_px_exchange_local(struct tt_px_exchange *x, int status, const char *body,
                          int retry_after)
{
    xc_local(x, status, body, retry_after, NULL);
}

void tt_px_exchange_local_with(struct tt_px_exchange *x, int status, const char *body,
                               const char *name, const char *value)
{
    struct tt_header f = {name, value, (uint32_t)strlen(name), (uint32_t)strlen(value), 0};
    xc_local(x, status, body, -1, &f);
}

static void xc_local(struct tt_px_exchange *x, int status, const char *body, int retry_after,
                     const struct tt_header *extra)
{
    if (!x->active)
        return;
    if (x->resp_head) {
        /* Our answer would follow one already begun: cut it instead. */
        tt_px_exchange_fail(x, body);
        return;
    }
    xc_let_go(x);
    x->local = 1;
    x->status = status;
    x->resp_head = 1;
    x->resp_done = 1;
    x->env->counters.local++;

    struct tt_px_local_head lh;
    tt_px_local_head(x, status, body, retry_after, extra, &lh);
    x->ops->head(x, &lh.hh);
    if (!lh.hh.end_stream && x->active)
        (void)x->ops->data(x, (const uint8_t *)body, lh.body_len, 1);
}

/* A request we refuse for what it is (its head): answered, and an HTTP/1.1
 * connection is closed after it, since what follows may not be a request. */
static void xc_reject(struct tt_px_exchange *x, int status, const char *body)
{
    x->close_after = 1;
    tt_px_exchange_local(x, status, body, -1);
}

static void xc_no_tunnel(struct tt_px_exchange *x)
{
    char body[160];
    struct tt_px_pool *pool = tt_px_registry_find(x->reg, x->name, strlen(x->name));
    if (pool && pool->n > 0 && !x->env->draining && pool->queued < TT_PX_QUEUE_MAX &&
        !x->queue_expired) {
        /* Connected but full: wait in line for a stream. */
        xc_enqueue(x, pool);
        x->retrying = 1;
        tt_timer_start(x->env->loop, &x->retry, TT_PX_QUEUE_WAIT_MS);
        return;
    }
    if (pool && pool->n > 0) {
        /* Connected, but no member can open a stream now (each at c's
         * stream limit, or going away). */
        x->env->counters.busy++;
        snprintf(body, sizeof(body), "the origin for name '%s' is busy\n", x->name);
        tt_px_exchange_local(x, 503, body, 1);
        return;
    }
    x->env->counters.no_origin++;
    snprintf(body, sizeof(body), "no origin is connected for name '%s'\n", x->name);
    tt_px_exchange_local(x, 503, x->env->down_why ? x->env->down_why : body, 5);
}

/* --- Opening ----------------------------------------------------------------- */

int tt_px_exchange_start(struct tt_px_exchange *x, const struct tt_px_request *rq)
{
    struct tt_px_exchange_env *env = x->env;
    if (rq->end)
        x->body_done = 1;
    x->upgrade = rq->protocol;
    x->byte_stream = rq->protocol || (x->method && !strcmp(x->method, "CONNECT"));
    const struct tt_px_field *ct = tt_px_field_find(rq->f, rq->n, "content-type");
    x->req_grpc = ct && ct->value_len >= 16 && !strncasecmp(ct->value, "application/grpc", 16);
    if (env->draining) {
        tt_px_exchange_local(x, 503, "the proxy is shutting down\n", 5);
        return -1;
    }
    struct tt_px_route_cfg rc = env->route;
    rc.single_name = tt_px_registry_single_name(env->reg);
    struct tt_px_route rt;
    if (x->caller) {
        char why[256];
        int st = tt_px_route_call(x->caller, rc.domain, rq->authority, rq->authority_len, rq->path,
                                  rq->path_len, &rt, why, sizeof(why));
        if (st) {
            snprintf(x->name, sizeof(x->name), "%.*s", (int)rt.name_len, rt.name ? rt.name : "");
            if (st == 400)
                xc_reject(x, st, why);
            else
                tt_px_exchange_local(x, st, why, -1);
            return -1;
        }
    } else if (rq->name) {
        rt = (struct tt_px_route){.name = rq->name, .name_len = strlen(rq->name)};
    } else {
        tt_px_route(&rc, rq->authority, rq->authority_len, rq->path, rq->path_len, &rt);
    }
    if (!rt.name) {
        env->counters.no_origin++;
        tt_px_exchange_local(x, 503, "no origin is connected for this request\n", 5);
        return -1;
    }
    size_t nl = rt.name_len > TT_PX_NAME_MAX ? TT_PX_NAME_MAX : rt.name_len;
    memcpy(x->name, rt.name, nl);
    x->name[nl] = 0;
    if (x->caller && env->services && tt_px_registry_find(env->services, x->name, nl))
        x->reg = env->services;
    struct tt_px_pool *pool = tt_px_registry_find(x->reg, x->name, nl);
    if (!pool || pool->n == 0) {
        xc_no_tunnel(x); /* before the work of mapping the head */
        return -1;
    }

    const struct tt_px_field *af = tt_px_field_find(rq->f, rq->n, env->affinity_header);
    x->affinity = af ? tt_px_affinity_key(af->value, af->value_len) : 0;
    char prefix[TT_PX_NAME_MAX + 256];
    size_t prefix_len = 0;
    if (rt.stripped)
        prefix_len = (size_t)snprintf(prefix, sizeof(prefix), "%s%s", rc.path_prefix, x->name);
    /* Lowercased names and built values (X-Forwarded-For, Forwarded) go to
     * the scratch: at most twice what came in, and the authority a few
     * times over. */
    size_t need = 2048 + 4 * rq->authority_len;
    for (size_t i = 0; i < rq->n; i++)
        need += 2 * (rq->f[i].name_len + rq->f[i].value_len);
    size_t cap = rq->n + 16;
    struct tt_header *hdrs = tt_arena_alloc(&x->arena, cap * sizeof(*hdrs));
    char *scratch = tt_arena_alloc(&x->arena, need);
    if (!hdrs || !scratch) {
        tt_px_exchange_local(x, 500, "out of memory\n", -1);
        return -1;
    }
    /* An HTTP/1.1 client's WebSocket is a GET (logged so); on the tunnel
     * it is an extended CONNECT (RFC 8441 §4). */
    const char *method = rq->protocol ? "CONNECT" : x->method ? x->method : "GET";
    struct tt_px_map_in in = {
        .method = method,
        .method_len = strlen(method),
        .path = rt.path,
        .path_len = rt.path_len,
        .host = env->authority && !rq->name ? env->authority : rq->authority,
        .host_len = env->authority && !rq->name ? strlen(env->authority) : rq->authority_len,
        .scheme = x->tls ? "https" : "http",
        .client_ip = x->ip,
        .prefix = rt.stripped ? prefix : NULL,
        .prefix_len = prefix_len,
        .f = rq->f,
        .n = rq->n,
        .keep_underscores = env->keep_underscores,
        .caller = x->caller ? x->caller->name : NULL,
        .protocol = rq->protocol,
    };
    struct tt_px_map_out out = {
        .hdrs = hdrs, .cap = cap, .scratch = scratch, .scratch_cap = need,
    };
    if (tt_px_map_request(&in, &out) < 0) {
        xc_reject(x, 431, "request header fields too large\n");
        return -1;
    }
    if (out.dropped)
        tt_log_debug("client=%s: %zu request fields with '_' in their names dropped", x->peer,
                     out.dropped);
    /* The mapped values still point into the front's input (the h2 codec's
     * decoded-header scratch is rewritten by the connection's next header
     * block), but a request that waits in its pool's queue or is retried is
     * opened after this returns: it keeps its own copy. */
    x->hdrs = tt_arena_headers_dup(&x->arena, out.hdrs, out.count);
    if (!x->hdrs) {
        tt_px_exchange_local(x, 500, "out of memory\n", -1);
        return -1;
    }
    x->hdrs_n = out.count;
    x->te_trailers = (uint8_t)out.te_trailers;
    if (out.expect_other) {
        /* RFC 9110 §10.1.1: an expectation we cannot meet MAY get 417. */
        tt_px_exchange_local(x, 417, "only Expect: 100-continue is supported\n", -1);
        return -1;
    }
    /* RFC 9110 §10.1.1: 100-continue from an HTTP/1.0 client is ignored
     * (and §15.2: no 1xx to it). */
    x->expect = (uint8_t)(out.expect_continue && x->interim_ok);
    int r = xc_open(x);
    if (r == 1) {
        xc_no_tunnel(x);
        return -1;
    }
    return r;
}

/* Opens the mapped head on a member of the name's pool.  Returns 0 when
 * opened, 1 when no member can take it now, -1 when answered. */
static int xc_open(struct tt_px_exchange *x)
{
    struct tt_px_pool *pool = tt_px_registry_find(x->reg, x->name, strlen(x->name));
    int end = x->body_done && tt_buf_len(&x->body) == 0 && !x->req_trl;
    struct tt_px_tunnel *t = NULL;
    int64_t sid = tt_px_pool_open(pool, x->avoid, x->affinity, x->hdrs, x->hdrs_n, end, x, &t);
    if (sid == TT_ERR_BAD_HEADER) {
        xc_reject(x, 400, "request header not allowed\n");
        return -1;
    }
    if (sid == TT_ERR_HEADER_TOO_LARGE) {
        xc_reject(x, 431, "request header fields too large\n");
        return -1;
    }
    if (sid == TT_ERR_NO_CONNECT_PROTOCOL) {
        /* RFC 8441 §3: this c did not offer extended CONNECT (older than
         * WebSocket support). */
        char body[200];
        snprintf(body, sizeof body,
                 "the origin connected for '%s' does not carry %s: upgrade its c\n", x->name,
                 x->upgrade ? x->upgrade : "extended CONNECT");
        tt_px_exchange_local(x, 501, body, -1);
        return -1;
    }
    if (sid <= 0)
        return 1;
    x->tun = t;
    x->sid = (uint32_t)sid;
    x->end_sent = (uint8_t)end;
    if (x->expect && !x->sent_continue && !x->body_done) {
        /* RFC 9110 §10.1.1: we are the one that reads the body, so we say
         * 100 once the request has somewhere to go. */
        static const struct tt_header cont[] = {{":status", "100", 7, 3, 0}};
        struct tt_h2_headers h = {
            .kind = TT_H2_HDRS_INFORMATIONAL, .hdrs = cont, .count = 1, .status = 100,
            .content_length = -1,
        };
        x->sent_continue = 1;
        x->ops->interim(x, &h);
        if (!x->active || !x->tun)
            return 0;
    }
    xc_pump(x);
    return 0;
}

/* Schedules the next attempt: at once when another member can take it,
 * else after a wait for a reconnecting c that doubles from 250 ms, the
 * waits of one request adding up to TT_PX_RETRY_WAIT_MS at most.  Returns 0,
 * or -1 when no attempt or wait is left (or p drains). */
static int xc_schedule_retry(struct tt_px_exchange *x, int at_once)
{
    if (x->attempts >= TT_PX_RETRIES || x->env->draining)
        return -1;
    uint32_t wait = 0;
    if (!at_once) {
        uint32_t left = TT_PX_RETRY_WAIT_MS - x->waited_ms;
        if (left == 0)
            return -1;
        wait = 250u << x->waits;
        if (wait > left)
            wait = left;
        x->waits++;
        x->waited_ms += wait;
    }
    x->attempts++;
    x->retrying = 1;
    tt_timer_start(x->env->loop, &x->retry, wait);
    return 0;
}

static void xc_on_retry(struct tt_loop *loop, struct tt_timer *tm)
{
    struct tt_px_exchange *x = tm->data;
    (void)loop;
    x->retrying = 0;
    if (!x->active)
        return;
    if (x->qpool) {
        /* Waited its time in the queue. */
        xc_unqueue(x);
        x->queue_expired = 1;
        xc_no_tunnel(x);
        return;
    }
    if (xc_open(x) != 1)
        return;
    if (xc_schedule_retry(x, 0) < 0)
        tt_px_exchange_local(x, 502, "the origin's tunnel closed before it answered\n", -1);
}

/* --- Request body ---------------------------------------------------------------- */

/* Notes body bytes handed to the tunnel; a copy is kept until the response
 * head so a refused stream (RFC 9113 §8.7) can be sent again elsewhere. */
static void xc_body_sent(struct tt_px_exchange *x, const uint8_t *p, size_t n)
{
    x->body_sent += n;
    if (!x->replay_lost && (x->resp_head || tt_buf_len(&x->replay) + n > TT_PX_REPLAY_MAX ||
                            tt_buf_append(&x->replay, p, n) != 0)) {
        x->replay_lost = 1;
        tt_buf_free(&x->replay);
    }
}

/* Puts the kept body bytes back in front of the unsent ones.  Returns 0, or
 * -1 when they were not all kept. */
static int xc_body_rewind(struct tt_px_exchange *x)
{
    if (x->body_sent == 0)
        return 0;
    if (x->replay_lost)
        return -1;
    if (tt_buf_append(&x->replay, tt_buf_data(&x->body), tt_buf_len(&x->body)) != 0)
        return -1;
    tt_buf tmp = x->body;
    x->body = x->replay;
    x->replay = tmp;
    tt_buf_consume(&x->replay, tt_buf_len(&x->replay));
    x->replayed = (size_t)x->body_sent;
    x->body_sent = 0;
    x->end_sent = 0;
    return 0;
}

/* Sends waiting body bytes while the stream has window; the end (trailers or
 * END_STREAM) once the body is complete. */
static void xc_pump(struct tt_px_exchange *x)
{
    struct tt_h2_conn *c = xc_conn(x);
    if (!c || x->end_sent || x->local)
        return;
    size_t taken = 0;
    int sent = 0;
    while (tt_buf_len(&x->body) > 0) {
        size_t room = tt_h2_data_room(c, x->sid);
        if (room == 0)
            break;
        size_t len = tt_buf_len(&x->body);
        if (len > room)
            len = room;
        int end = x->body_done && !x->req_trl && len == tt_buf_len(&x->body);
        ssize_t n = tt_h2_send_data(c, x->sid, tt_buf_data(&x->body), len, end);
        if (n < 0) {
            tt_px_exchange_fail(x, "tunnel refused request body");
            return;
        }
        if (n == 0)
            break;
        sent = 1;
        xc_body_sent(x, tt_buf_data(&x->body), (size_t)n);
        tt_buf_consume(&x->body, (size_t)n);
        taken += (size_t)n;
        if (end && tt_buf_len(&x->body) == 0)
            x->end_sent = 1;
        if (!x->tun)
            break; /* the send closed the stream */
    }
    if (tt_buf_len(&x->body) == 0) {
        tt_buf_shrink(&x->body);
        tt_link_remove(&x->wait);
        if (x->tun && x->body_done && !x->end_sent) {
            x->end_sent = 1;
            sent = 1;
            int rc = -1;
            if (x->req_trl) {
                rc = tt_h2_submit_headers(c, x->sid, x->req_trl, x->req_trl_n, 1);
                x->req_trl = NULL;
                x->replay_lost = 1; /* trailers are not kept: never replay this */
                tt_buf_free(&x->replay);
            }
            if (rc < 0 && tt_h2_send_data(c, x->sid, NULL, 0, 1) < 0) {
                /* The request cannot be ended: the origin must not take a
                 * cut one for complete. */
                tt_px_exchange_fail(x, "the request could not be ended");
                return;
            }
        }
    } else {
        xc_wait(x);
    }
    if (sent)
        xc_flush(x);
    if (taken)
        xc_body_left(x, taken);
}

int tt_px_exchange_req_body(struct tt_px_exchange *x, const uint8_t *p, size_t len)
{
    if (!x->active || x->local || x->end_sent || (!x->tun && !x->retrying)) {
        /* Nobody will forward these bytes. */
        if (len)
            x->ops->req_taken(x, len, tt_buf_len(&x->body) == 0);
        return 0;
    }
    x->env->counters.bytes_in += len;
    size_t taken = 0;
    struct tt_h2_conn *c = xc_conn(x);
    if (c && len && tt_buf_len(&x->body) == 0) {
        size_t room = tt_h2_data_room(c, x->sid);
        size_t n = len < room ? len : room;
        if (n) {
            ssize_t r = tt_h2_send_data(c, x->sid, p, n, 0);
            if (r > 0) {
                taken = (size_t)r;
                xc_body_sent(x, p, taken);
                xc_flush(x);
            }
        }
    }
    if (taken < len) {
        if (tt_buf_append(&x->body, p + taken, len - taken) != 0)
            return -1;
        xc_wait(x); /* woken by window or output room */
    }
    if (taken)
        xc_body_left(x, taken);
    return 0;
}

void tt_px_exchange_req_end(struct tt_px_exchange *x, const struct tt_header *trl, size_t n)
{
    if (x->body_done)
        return;
    x->body_done = 1;
    if (!x->active || x->local || x->end_sent)
        return;
    if (n && (x->tun || x->retrying)) {
        /* Only p says who calls, in trailers too. */
        x->req_trl = tt_arena_headers_dup(&x->arena, trl, n);
        x->req_trl_n = x->req_trl ? tt_px_fields_drop(x->req_trl, n, "tether-caller") : 0;
        if (!x->req_trl_n)
            x->req_trl = NULL;
    }
    xc_pump(x);
}

/* Window back for `n` of the bytes the front holds; `flush` sends the
 * WINDOW_UPDATE now (a tunnel callback needs not: the session writes after
 * its callbacks anyway). */
static void xc_consume(struct tt_px_exchange *x, size_t n, int flush)
{
    if (!x->unconsumed)
        return;
    struct tt_h2_conn *c = xc_conn(x);
    size_t k = n < x->unconsumed ? n : x->unconsumed;
    x->unconsumed -= k;
    /* The codec credits the connection only for what it was still owed:
     * bytes whose connection window went back early stay "early" while
     * any of them is held. */
    if (x->early > x->unconsumed) {
        size_t d = x->early - x->unconsumed;
        x->tun->held -= d < x->tun->held ? d : x->tun->held;
        x->early = x->unconsumed;
    }
    if (c) {
        tt_h2_consume(c, x->sid, k);
        /* The client took all there was: it keeps up, so its window may
         * grow (doubling) within the tunnel's budget, once half of it came
         * (a small answer would send c a WINDOW_UPDATE it never uses). */
        size_t win = (x->tun->crowded ? TT_PX_STREAM_WINDOW_CROWD : TT_PX_STREAM_WINDOW) + x->grown;
        if (x->unconsumed == 0 && k && win < TT_PX_STREAM_WINDOW_MAX && x->bytes >= win / 2) {
            size_t add = win;
            if (win + add > TT_PX_STREAM_WINDOW_MAX)
                add = TT_PX_STREAM_WINDOW_MAX - win;
            if (x->tun->grown + add <= TT_PX_TUNNEL_GROW_MAX) {
                tt_h2_stream_grow(c, x->sid, (uint32_t)add);
                x->grown += add;
                x->tun->grown += add;
            }
        }
        if (flush)
            xc_flush(x);
    }
}

void tt_px_exchange_taken(struct tt_px_exchange *x, size_t n) { xc_consume(x, n, 1); }

/* --- Tunnel callbacks -------------------------------------------------------------- */

/* The tunnel went away mid-response.  A gRPC client that takes trailers
 * gets a proper gRPC end, grpc-status 14 (UNAVAILABLE: "retry elsewhere"),
 * rather than a reset it would report as INTERNAL.  Returns 1 when ended so. */
static int xc_grpc_unavailable(struct tt_px_exchange *x)
{
    if (!x->grpc || !x->te_trailers || !x->proto)
        return 0; /* not gRPC, or an HTTP/1.1 front that may not frame trailers */
    static const struct tt_header trl[] = {
        {"grpc-status", "14", 11, 2, 0},
        {"grpc-message", "the origin's tunnel closed mid-response", 12, 39, 0},
    };
    x->resp_done = 1;
    x->grpc_status = 14;
    xc_drop_body(x);
    x->ops->trailers(x, trl, 2);
    return 1;
}

void tt_px_exchange_on_headers(struct tt_px_tunnel *t, struct tt_px_exchange *x,
                               const struct tt_h2_headers *h)
{
    if (!x || x->tun != t || !x->active || x->local)
        return;
    if (h->kind == TT_H2_HDRS_INFORMATIONAL) {
        /* RFC 9110 §15.2: 1xx before the final head (103 Early Hints), but
         * not a second 100, not to an HTTP/1.0 client, and not more than
         * TT_PX_MAX_INTERIM, so an app cannot flood the client. */
        if (x->resp_head || !x->interim_ok || (h->status == 100 && x->sent_continue))
            return;
        if (x->interim >= TT_PX_MAX_INTERIM) {
            tt_log_debug("%d from the origin dropped (more than %d 1xx) client=%s", h->status,
                         TT_PX_MAX_INTERIM, x->peer);
            return;
        }
        x->interim++;
        if (h->status == 100)
            x->sent_continue = 1;
        x->ops->interim(x, h);
        return;
    }
    if (h->kind == TT_H2_HDRS_RESPONSE) {
        if (x->resp_head)
            return;
        x->resp_head = 1;
        x->status = h->status;
        tt_px_grpc_fields(h->hdrs, h->count, h->end_stream, &x->grpc, &x->grpc_status);
        tt_buf_free(&x->replay); /* processed: never sent again */
        x->replay_lost = 1;
        if (h->end_stream)
            x->resp_done = 1;
        x->ops->head(x, h);
        return;
    }
    if (h->kind == TT_H2_HDRS_TRAILERS && x->resp_head && !x->resp_done) {
        x->resp_done = 1;
        tt_px_grpc_fields(h->hdrs, h->count, 1, &x->grpc, &x->grpc_status);
        x->ops->trailers(x, h->hdrs, h->count);
    }
}

void tt_px_exchange_on_data(struct tt_px_tunnel *t, uint32_t sid, struct tt_px_exchange *x,
                            const uint8_t *data, size_t len, int end_stream)
{
    struct tt_h2_conn *c = t->sess ? tt_session_h2(t->sess) : NULL;
    if (!x || x->tun != t || !x->active || !x->resp_head || x->resp_done || x->local) {
        /* Nobody will read these bytes: the connection window goes back
         * now; a stream still open (its reset deferred) keeps its own. */
        if (c && len)
            tt_h2_consume_connection(c, sid, len);
        return;
    }
    x->bytes += len;
    x->env->counters.bytes_out += len;
    if (end_stream)
        x->resp_done = 1;
    /* Counted as held first, so that whatever the front reports as taken
     * from inside the call is matched, and a release from inside it (the
     * client left, the response ended) returns these bytes too. */
    x->unconsumed += len;
    ssize_t took = x->ops->data(x, data, len, end_stream);
    if (x->tun != t || x->sid != sid)
        return;
    if (took > 0)
        xc_consume(x, (size_t)took < len ? (size_t)took : len, 0);
    /* What the front keeps gives the connection window back at once, within
     * the tunnel's hold budget: a client that stops reading then holds its
     * own stream window, never every other stream's connection window. */
    size_t owed = x->unconsumed - x->early;
    if (owed && c && t->held + owed <= TT_PX_TUNNEL_HOLD_MAX) {
        tt_h2_consume_connection(c, sid, owed);
        x->early += owed;
        t->held += owed;
    }
}

void tt_px_exchange_on_stream_close(struct tt_px_tunnel *t, struct tt_px_exchange *x,
                                    uint32_t code, unsigned flags)
{
    if (!x || x->tun != t)
        return;
    /* The stream is gone: credit the connection window for what the front
     * still holds (no more can come on this stream, so its buffer stays
     * bounded) while the session lives. */
    if (x->unconsumed > x->early && !(flags & TT_H2_CLOSE_CONN) && t->sess &&
        !tt_session_closing(t->sess))
        tt_h2_consume(tt_session_h2(t->sess), x->sid, x->unconsumed - x->early);
    xc_forget_held(x);
    xc_detach(x);
    if (!x->active)
        return;
    if (x->resp_done) {
        /* Complete: the rest goes out as the client takes it; request bytes
         * still waiting are not wanted any more. */
        xc_drop_body(x);
        return;
    }
    if (x->resp_head) {
        tt_log_debug("response aborted client=%s path=%s: tunnel stream closed (%s)", x->peer,
                     x->log_path ? x->log_path : "", tt_h2_strerror(code));
        if (flags & TT_H2_CLOSE_RST_RECEIVED) {
            x->end_how = TT_PX_END_ORIGIN_RESET;
            x->end_code = code;
        } else if (flags & TT_H2_CLOSE_CONN) {
            x->end_how = TT_PX_END_TUNNEL_LOST;
            if (xc_grpc_unavailable(x))
                return;
        } /* else we reset it (its response was invalid): failed */
        tt_px_exchange_fail(x, "tunnel closed mid-response");
        return;
    }
    int refused = (flags & TT_H2_CLOSE_GOAWAY) ||
                  ((flags & TT_H2_CLOSE_RST_RECEIVED) && code == TT_H2_REFUSED_STREAM);
    tt_log_debug("stream lost before response client=%s origin=%s code=%s flags=%u", x->peer,
                 x->name, tt_h2_strerror(code), flags);
    if (!refused && !(flags & TT_H2_CLOSE_CONN)) {
        /* The origin answered with a reset, or we reset its invalid
         * response: that is its answer, not a lost tunnel. */
        tt_px_exchange_local(x,
                             502,
                             (flags & TT_H2_CLOSE_RST_SENT) ? "the origin sent an invalid response\n"
                                                            : "the origin reset the request\n",
                             -1);
        return;
    }
    if (refused) {
        if (xc_body_rewind(x) < 0) {
            /* Not processed, but more body went out than we kept. */
            tt_px_exchange_local(x, 502, "the origin refused the request\n", -1);
            return;
        }
    } else if (x->body_sent > 0 || !x->idempotent) {
        tt_px_exchange_local(x, 502, "the origin's tunnel closed before it answered\n", -1);
        return;
    }
    struct tt_px_pool *pool = tt_px_registry_find(x->reg, x->name, strlen(x->name));
    int other = tt_px_pool_pick(pool, tt_px_tunnel_usable, NULL) != NULL;
    if (xc_schedule_retry(x, other) < 0) {
        tt_px_exchange_local(x, 502, "the origin's tunnel closed before it answered\n", -1);
        return;
    }
    x->env->counters.retries++;
}

void tt_px_exchange_slot_free(struct tt_px_tunnel *t)
{
    struct tt_px_pool *pool = t->pool;
    struct tt_px_exchange *x;
    while (pool && tt_px_tunnel_usable(t) && (x = xc_queue_next(pool))) {
        xc_stop_retry(x); /* off the queue, no deadline */
        x->retrying = 0;
        if (xc_open(x) == 1) {
            xc_no_tunnel(x); /* not after all (the tunnel is going): in line again */
            break;
        }
    }
}

void tt_px_exchange_pool_gone(struct tt_px_pool *pool)
{
    struct tt_px_exchange *x;
    while ((x = xc_queue_next(pool))) {
        xc_stop_retry(x);
        x->retrying = 0;
        char body[160];
        snprintf(body, sizeof(body), "no origin is connected for name '%s'\n", x->name);
        tt_px_exchange_local(x, 503, body, 5);
    }
}

void tt_px_exchange_wake(struct tt_px_tunnel *t, struct tt_px_exchange *x)
{
    if (x) {
        if (x->tun == t && tt_link_linked(&x->wait)) {
            tt_link_remove(&x->wait);
            xc_pump(x);
        }
        return;
    }
    /* Pumping may put an exchange back on the list: take the batch off
     * first. */
    struct tt_px_exchange *batch = NULL;
    while (t->waiting.first) {
        struct tt_px_exchange *w = tt_container_of(t->waiting.first, struct tt_px_exchange, wait);
        tt_link_remove(&w->wait);
        w->wake_next = batch;
        batch = w;
    }
    while (batch) {
        struct tt_px_exchange *w = batch;
        batch = w->wake_next;
        xc_pump(w);
    }
}
