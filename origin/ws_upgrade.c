#include "origin/ws_upgrade.h"

#include "llhttp.h"
#include "proto/http1.h"
#include "proto/text.h"
#include "proto/websocket.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct wsu_field {
    uint32_t no, nl, vo, vl; /* offsets into `in` */
};

struct tt_wsu {
    llhttp_t parser;
    tt_buf in;        /* the app's answer as fed */
    const char *base; /* in's bytes while llhttp runs on them */
    struct wsu_field f[TT_WSU_FIELDS_MAX];
    unsigned nf;
    int last_value, head_done, msg_done, too_many;
    size_t head_end; /* ACCEPTED: where the WebSocket's bytes start in `in` */
    tt_buf body;     /* a refusal's */
    char accept[TT_WS_ACCEPT_LEN + 1];
    char why[200];
};

static int wsu_on_field(llhttp_t *p, const char *at, size_t len)
{
    struct tt_wsu *w = p->data;
    if (w->nf && !w->last_value) { /* the same name, split across feeds */
        w->f[w->nf - 1].nl += (uint32_t)len;
        return 0;
    }
    if (w->nf == TT_WSU_FIELDS_MAX) {
        w->too_many = 1;
        return HPE_USER;
    }
    w->f[w->nf++] = (struct wsu_field){(uint32_t)(at - w->base), (uint32_t)len, 0, 0};
    w->last_value = 0;
    return 0;
}

static int wsu_on_value(llhttp_t *p, const char *at, size_t len)
{
    struct tt_wsu *w = p->data;
    struct wsu_field *f = &w->f[w->nf - 1];
    if (w->last_value)
        f->vl += (uint32_t)len;
    else
        *f = (struct wsu_field){f->no, f->nl, (uint32_t)(at - w->base), (uint32_t)len};
    w->last_value = 1;
    return 0;
}

static int wsu_on_headers_complete(llhttp_t *p)
{
    struct tt_wsu *w = p->data;
    w->head_done = 1;
    /* A 101's bytes after the head are the WebSocket's: stop there. */
    return p->status_code == 101 ? HPE_PAUSED : 0;
}

static int wsu_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct tt_wsu *w = p->data;
    return tt_buf_append(&w->body, at, len) ? HPE_USER : 0;
}

static int wsu_on_message_complete(llhttp_t *p)
{
    struct tt_wsu *w = p->data;
    w->msg_done = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t *wsu_settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_header_field = wsu_on_field;
        s.on_header_value = wsu_on_value;
        s.on_headers_complete = wsu_on_headers_complete;
        s.on_body = wsu_on_body;
        s.on_message_complete = wsu_on_message_complete;
        init = 1;
    }
    return &s;
}

struct tt_wsu *tt_wsu_new(const struct tt_h2_headers *h, const char *default_host, tt_buf *out,
                          int *bad)
{
    *bad = 0;
    struct tt_wsu *w = tt_mem_calloc(1, sizeof *w);
    struct tt_header *fl = tt_mem_alloc((h->count ? h->count : 1) * sizeof *fl);
    if (!w || !fl) {
        tt_mem_free(w);
        tt_mem_free(fl);
        return NULL;
    }
    tt_buf_init(&w->in, TT_WSU_HEAD_MAX + TT_WSU_REFUSAL_MAX + 4096);
    tt_buf_init(&w->body, TT_WSU_REFUSAL_MAX);
    llhttp_init(&w->parser, HTTP_RESPONSE, wsu_settings());
    w->parser.data = w;
    char key[TT_WS_KEY_LEN + 1] = "";
    size_t n = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct tt_header *f = &h->hdrs[i];
        if (f->name_len == 17 && !strncasecmp(f->name, "sec-websocket-key", 17)) {
            if (tt_ws_key_valid(f->value, f->value_len) && !key[0])
                snprintf(key, sizeof key, "%.*s", (int)f->value_len, f->value);
            continue;
        }
        if (f->name_len == 21 && !strncasecmp(f->name, "sec-websocket-version", 21))
            continue; /* ours below: the version we speak */
        fl[n++] = *f;
    }
    int rc = 0;
    if (!key[0])
        rc = tt_ws_key_new(key);
    if (rc == 0) {
        tt_ws_accept(key, strlen(key), w->accept);
        struct tt_h2_headers g = *h;
        g.method = (tt_iov){(const uint8_t *)"GET", 3};
        g.hdrs = fl;
        g.count = n;
        rc = tt_http1_request_head_open(&g, TT_HTTP1_BODY_NONE, default_host, out);
        *bad = rc < 0; /* a field HTTP/1.1 cannot carry (the buffer is far larger) */
    }
    tt_mem_free(fl);
    char tail[160];
    int tl = snprintf(tail, sizeof tail,
                      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      key);
    if (rc < 0 || tt_buf_append(out, tail, (size_t)tl)) {
        tt_wsu_free(w);
        return NULL;
    }
    return w;
}

void tt_wsu_free(struct tt_wsu *w)
{
    if (!w)
        return;
    tt_buf_free(&w->in);
    tt_buf_free(&w->body);
    tt_mem_free(w);
}

static int wsu_name_is(const struct tt_wsu *w, const struct wsu_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->nl == n && !strncasecmp((const char *)tt_buf_data(&w->in) + f->no, name, n);
}

static enum tt_wsu_state wsu_fail(struct tt_wsu *w, const char *why)
{
    snprintf(w->why, sizeof w->why, "%s", why);
    return TT_WSU_FAILED;
}

/* A 101 must be the WebSocket's: Upgrade, Connection and our key's accept. */
static enum tt_wsu_state wsu_check_101(struct tt_wsu *w)
{
    int upgrade = 0, conn = 0, accept = 0;
    for (unsigned i = 0; i < w->nf; i++) {
        const struct wsu_field *f = &w->f[i];
        const char *v = (const char *)tt_buf_data(&w->in) + f->vo;
        size_t vl = f->vl;
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (wsu_name_is(w, f, "upgrade"))
            upgrade |= tt_list_has(v, vl, "websocket", 9);
        else if (wsu_name_is(w, f, "connection"))
            conn |= tt_list_has(v, vl, "upgrade", 7);
        else if (wsu_name_is(w, f, "sec-websocket-accept"))
            accept = vl == TT_WS_ACCEPT_LEN && !memcmp(v, w->accept, TT_WS_ACCEPT_LEN);
    }
    if (!upgrade)
        return wsu_fail(w, "the app's 101 is not a WebSocket handshake answer (no Upgrade: websocket)");
    if (!conn)
        return wsu_fail(w, "the app's 101 is not a WebSocket handshake answer (no Connection: upgrade)");
    if (!accept)
        return wsu_fail(w, "the app's 101 is not a WebSocket handshake answer (wrong Sec-WebSocket-Accept)");
    return TT_WSU_ACCEPTED;
}

enum tt_wsu_state tt_wsu_feed(struct tt_wsu *w, const uint8_t *p, size_t n)
{
    llhttp_errno_t e;
    size_t have = tt_buf_len(&w->in);
    if (n == 0) {
        if (!w->head_done)
            return wsu_fail(w, "the app closed the connection before answering the WebSocket upgrade");
        w->base = (const char *)tt_buf_data(&w->in);
        e = llhttp_finish(&w->parser); /* a body that ends with the connection */
    } else {
        if (tt_buf_append(&w->in, p, n))
            return wsu_fail(w, "the app's answer to the WebSocket upgrade is too large");
        w->base = (const char *)tt_buf_data(&w->in);
        e = llhttp_execute(&w->parser, w->base + have, n);
    }
    if (e == HPE_PAUSED && w->head_done && w->parser.status_code == 101) {
        const char *pos = llhttp_get_error_pos(&w->parser);
        w->head_end = pos ? (size_t)(pos - w->base) : tt_buf_len(&w->in);
        return wsu_check_101(w);
    }
    if (w->msg_done && w->parser.status_code < 300) {
        /* On the tunnel a 2xx to CONNECT means "open" (RFC 9113 §8.5): an
         * app that answers 200 did not switch, and must not look as if it
         * had. */
        char why[120];
        snprintf(why, sizeof why, "the app answered %d to the WebSocket upgrade, not 101: it did "
                 "not switch", w->parser.status_code);
        return wsu_fail(w, why);
    }
    if (w->msg_done)
        return TT_WSU_REFUSED;
    if (e != HPE_OK) {
        char why[120];
        snprintf(why, sizeof why, "the app's answer is not valid HTTP/1.1 (%s)",
                 w->too_many ? "too many fields" : llhttp_errno_name(e));
        return wsu_fail(w, why);
    }
    if (n == 0)
        return wsu_fail(w, "the app closed the connection in the middle of its answer");
    if (!w->head_done && tt_buf_len(&w->in) > TT_WSU_HEAD_MAX)
        return wsu_fail(w, "the app's answer head is over 16 KiB");
    return TT_WSU_MORE;
}

int tt_wsu_status(const struct tt_wsu *w) { return w->parser.status_code; }

size_t tt_wsu_fields(struct tt_wsu *w, struct tt_header *out)
{
    static const char *const skip[] = {"connection", "upgrade", "keep-alive", "proxy-connection",
                                       "transfer-encoding", "te", "content-length",
                                       "sec-websocket-accept"};
    char *b = (char *)tt_buf_data(&w->in);
    size_t n = 0;
    for (unsigned i = 0; i < w->nf; i++) {
        const struct wsu_field *f = &w->f[i];
        int keep = f->nl > 0;
        for (size_t k = 0; keep && k < sizeof skip / sizeof skip[0]; k++)
            if (wsu_name_is(w, f, skip[k]))
                keep = 0;
        if (!keep)
            continue;
        for (uint32_t k = 0; k < f->nl; k++) /* RFC 9113 §8.2.1 */
            if (b[f->no + k] >= 'A' && b[f->no + k] <= 'Z')
                b[f->no + k] = (char)(b[f->no + k] + 32);
        uint32_t vl = f->vl;
        while (vl && (b[f->vo + vl - 1] == ' ' || b[f->vo + vl - 1] == '\t'))
            vl--;
        out[n++] = (struct tt_header){b + f->no, b + f->vo, f->nl, vl, 0};
    }
    return n;
}

const uint8_t *tt_wsu_rest(const struct tt_wsu *w, size_t *len)
{
    *len = tt_buf_len(&w->in) - w->head_end;
    return tt_buf_data(&w->in) + w->head_end;
}

const uint8_t *tt_wsu_body(const struct tt_wsu *w, size_t *len)
{
    *len = tt_buf_len(&w->body);
    return tt_buf_data(&w->body);
}

const char *tt_wsu_why(const struct tt_wsu *w) { return w->why; }
