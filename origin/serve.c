/*
 * A live tunnel of c: HTTP/2 streams opened by p, answered by the file
 * server (origin/fileserver.h).
 *
 * Sending bodies.  A stream whose response has a body sits on the `sending`
 * list until its last byte is queued.  Pumping a stream reads the file
 * straight into the codec's output buffer behind a DATA frame header
 * (tt_h2_data_reserve/commit) when the peer allows big frames, else into one
 * reusable buffer per tunnel (no allocation per chunk) that is then copied
 * into frames; either way as much as tt_h2_data_room() allows: the least of
 * the stream window, the connection window and the room in the codec's
 * output buffer.  That room is what bounds c's memory per stream: nothing is
 * read from disk that cannot be queued at once.  When room runs out the
 * stream waits; on_window_update (one stream or the whole connection) and
 * on_writable (output drained) resume exactly the waiting streams, in
 * round-robin order, one chunk each per round, so one big download cannot
 * starve the others of connection window.
 *
 * In the rare case the codec takes fewer bytes than it said it had room for,
 * the rest is kept per stream (`left`) rather than lost.
 *
 * Uploads (PUT, --allow-put): DATA is written to the file server's temporary
 * file and only then consumed (tt_h2_consume), so receive window is returned
 * for bytes that are on disk: a slow disk slows the sender.  A stream that
 * ends any other way than by END_STREAM (reset, tunnel gone) closes the
 * upload, which leaves nothing behind.
 *
 * Lifetime.  The codec may close a stream inside a call we make (submitting
 * END_STREAM on a half-closed stream, a reset), and calls on_stream_close
 * then.  A stream record we are working on is held (`busy`) and freed when
 * the last holder lets go.
 *
 * Bytes p sent right after the 101 are fed to the codec while the session is
 * being made, before we know the session: requests that arrive then are
 * opened at once but answered right after tt_session_new returns (`kick`).
 */
#include "origin/origin.h"

#include "codec/buf.h"
#include "proto/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SV_CHUNK (256u * 1024u)
/* Smallest frame worth reading into directly (below it, one read fills
 * several frames through the copying path). */
#define SV_DIRECT_MIN (64u * 1024u)

struct sv_stream {
    uint32_t sid;
    unsigned busy;
    unsigned dead : 1;      /* on_stream_close happened */
    unsigned sending : 1;   /* on the sending list */
    unsigned upload : 1;    /* fs takes the request body */
    unsigned req_ended : 1; /* p's END_STREAM seen */
    unsigned eof : 1;       /* the producer has no more bytes */
    unsigned kick : 1;      /* opened before the session was known */
    unsigned head_pending : 1; /* the response head did not fit: retried on_writable */
    struct tt_fs_stream *fs;
    int64_t remaining; /* body bytes the producer still owes; -1: unknown */
    struct sv_stream *prev, *next;         /* sending list */
    struct sv_stream *all_prev, *all_next; /* every stream of the tunnel */
    struct tt_fs_response *early_resp;     /* the answer while kick or head_pending is set */
    size_t owed;                           /* consumed before the session was known */
    uint8_t *left;                         /* bytes the codec did not take */
    size_t left_off, left_len;
};

struct tt_serve {
    struct tt_loop *loop;
    struct tt_session *s;
    struct tt_h2_conn *h2;
    const struct tt_fs_config *fs;
    tt_serve_closed_cb on_closed;
    void *owner;
    struct sv_stream *head, *tail; /* sending, round-robin order */
    struct sv_stream *all;
    unsigned heads_pending; /* streams with head_pending */
    uint8_t *buf; /* SV_CHUNK bytes, shared by the tunnel's streams */
    /* One response head at a time: used where it is filled (it points into
     * itself), so one per tunnel is enough. */
    struct tt_fs_response resp;
};

/* ---- stream records ---------------------------------------------------- */

static void sv_unlink_sending(struct tt_serve *sv, struct sv_stream *st)
{
    if (!st->sending)
        return;
    if (st->prev)
        st->prev->next = st->next;
    else
        sv->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    else
        sv->tail = st->prev;
    st->prev = st->next = NULL;
    st->sending = 0;
}

static void sv_link_sending(struct tt_serve *sv, struct sv_stream *st)
{
    if (st->sending)
        return;
    st->prev = sv->tail;
    st->next = NULL;
    if (sv->tail)
        sv->tail->next = st;
    else
        sv->head = st;
    sv->tail = st;
    st->sending = 1;
}

static void sv_stream_free(struct sv_stream *st)
{
    tt_mem_free(st->early_resp);
    tt_mem_free(st->left);
    tt_mem_free(st);
}

/* Lets go of a held stream; returns 1 if it is gone. */
static int sv_release(struct sv_stream *st)
{
    if (--st->busy == 0 && st->dead) {
        sv_stream_free(st);
        return 1;
    }
    return 0;
}

/* Forgets a stream: leaves both lists, closes the file side. */
static void sv_forget(struct tt_serve *sv, struct sv_stream *st)
{
    sv_unlink_sending(sv, st);
    if (st->all_prev)
        st->all_prev->all_next = st->all_next;
    else if (sv->all == st)
        sv->all = st->all_next;
    if (st->all_next)
        st->all_next->all_prev = st->all_prev;
    st->all_prev = st->all_next = NULL;
    if (st->head_pending) {
        st->head_pending = 0;
        sv->heads_pending--;
    }
    if (st->fs) {
        tt_fs_close(st->fs); /* an unfinished upload leaves nothing */
        st->fs = NULL;
    }
    st->dead = 1;
    if (st->busy == 0)
        sv_stream_free(st);
}

/* The stream record of a callback.  `sud` is it, except for streams opened
 * before the session was known, whose user data could not be set yet. */
static struct sv_stream *sv_find(struct tt_serve *sv, uint32_t sid, void *sud)
{
    if (sud)
        return sud;
    if (sv->h2)
        return NULL;
    for (struct sv_stream *st = sv->all; st; st = st->all_next)
        if (st->sid == sid)
            return st;
    return NULL;
}

static void sv_consume(struct tt_serve *sv, struct sv_stream *st, uint32_t sid, size_t n)
{
    if (n == 0)
        return;
    if (sv->h2)
        tt_h2_consume(sv->h2, sid, n);
    else if (st)
        st->owed += n;
}

static void sv_flush(struct tt_serve *sv)
{
    if (sv->s)
        tt_session_flush(sv->s);
}

/* ---- sending ------------------------------------------------------------ */

static void sv_reset(struct tt_serve *sv, struct sv_stream *st, uint32_t code)
{
    tt_h2_submit_rst(sv->h2, st->sid, code);
    /* on_stream_close ran (or the stream was already gone): make sure. */
    sv_unlink_sending(sv, st);
}

/* The body is all queued (or given up): the file side is done. */
static void sv_body_done(struct tt_serve *sv, struct sv_stream *st)
{
    sv_unlink_sending(sv, st);
    if (st->fs) {
        tt_fs_close(st->fs);
        st->fs = NULL;
    }
}

static int sv_keep_left(struct sv_stream *st, const uint8_t *p, size_t n)
{
    if (!st->left && !(st->left = tt_mem_alloc(SV_CHUNK)))
        return -1;
    memmove(st->left, p, n);
    st->left_off = 0;
    st->left_len = n;
    return 0;
}

/* Queues DATA for one stream: at most `max_chunks` chunks (0: as much as
 * room allows).  Returns the bytes queued.  The caller holds st. */
static size_t sv_pump(struct tt_serve *sv, struct sv_stream *st, unsigned max_chunks)
{
    size_t total = 0;
    for (unsigned chunks = 0; !st->dead && st->sending && (max_chunks == 0 || chunks < max_chunks);
         chunks++) {
        size_t room = tt_h2_data_room(sv->h2, st->sid);
        if (room == 0)
            break;
        const uint8_t *p;
        size_t n;
        int from_left = st->left_len > 0;
        if (!from_left && !st->eof) {
            /* Read straight into the output buffer behind a DATA frame
             * header: no copy between the file and the TLS write.  Taken
             * when one frame holds the whole chunk or a big part of it (p
             * advertises large frames); else the copying path below. */
            size_t want = room < SV_CHUNK ? room : SV_CHUNK;
            if (st->remaining >= 0 && (uint64_t)st->remaining < want)
                want = (size_t)st->remaining;
            size_t granted = 0;
            uint8_t *dst = want ? tt_h2_data_reserve(sv->h2, st->sid, want, &granted) : NULL;
            if (dst && (granted == want || granted >= SV_DIRECT_MIN)) {
                ssize_t r = tt_fs_read(st->fs, dst, granted);
                if (r < 0 || (r == 0 && st->remaining > 0)) {
                    tt_log_warn("read error on stream %" PRIu32 ": resetting it", st->sid);
                    sv_reset(sv, st, TT_H2_INTERNAL_ERROR);
                    break;
                }
                if (st->remaining >= 0)
                    st->remaining -= r;
                if (r == 0 || st->remaining == 0)
                    st->eof = 1;
                if (tt_h2_data_commit(sv->h2, st->sid, (size_t)r, st->eof) < 0) {
                    if (!st->dead)
                        sv_reset(sv, st, TT_H2_INTERNAL_ERROR);
                    break;
                }
                total += (size_t)r;
                if (st->eof) {
                    sv_body_done(sv, st);
                    break;
                }
                continue;
            }
        }
        if (from_left) {
            p = st->left + st->left_off;
            n = st->left_len < room ? st->left_len : room;
        } else if (!st->eof) {
            size_t cap = room < SV_CHUNK ? room : SV_CHUNK;
            if (st->remaining >= 0 && (uint64_t)st->remaining < cap)
                cap = (size_t)st->remaining;
            ssize_t r = cap ? tt_fs_read(st->fs, sv->buf, cap) : 0;
            if (r < 0 || (r == 0 && st->remaining > 0)) {
                /* RFC 9113 §8.1: a response cut short must not end
                 * cleanly, or the client would take it as complete. */
                tt_log_warn("read error on stream %" PRIu32 ": resetting it", st->sid);
                sv_reset(sv, st, TT_H2_INTERNAL_ERROR);
                break;
            }
            p = sv->buf;
            n = (size_t)r;
            if (st->remaining >= 0)
                st->remaining -= r;
            if (r == 0 || st->remaining == 0)
                st->eof = 1;
        } else {
            p = NULL;
            n = 0; /* the end of a body of unknown length: empty END_STREAM */
        }
        int end = st->eof && (!from_left || n == st->left_len);
        ssize_t w = tt_h2_send_data(sv->h2, st->sid, p, n, end);
        if (w < 0) {
            if (!st->dead)
                sv_reset(sv, st, TT_H2_INTERNAL_ERROR);
            break;
        }
        total += (size_t)w;
        if (from_left) {
            st->left_off += (size_t)w;
            st->left_len -= (size_t)w;
        } else if ((size_t)w < n) {
            if (sv_keep_left(st, p + w, n - (size_t)w)) {
                sv_reset(sv, st, TT_H2_INTERNAL_ERROR);
                break;
            }
        }
        if (end && (size_t)w == n) {
            sv_body_done(sv, st);
            break;
        }
        if ((size_t)w < n || (n == 0 && w == 0 && !end))
            break; /* blocked */
    }
    return total;
}

/* Round-robin over the waiting streams, one chunk each per round, until no
 * one can send.  O(waiting) per round. */
static void sv_pump_all(struct tt_serve *sv)
{
    if (!sv->h2)
        return;
    for (;;) {
        size_t progress = 0;
        struct sv_stream *st = sv->head;
        struct sv_stream *last = sv->tail;
        while (st) {
            struct sv_stream *next = st == last ? NULL : st->next;
            st->busy++;
            size_t sent = sv_pump(sv, st, 1);
            progress += sent;
            /* Served this round: to the back of the line. */
            if (sent && st->sending && !st->dead && sv->tail != st) {
                sv_unlink_sending(sv, st);
                sv_link_sending(sv, st);
            }
            sv_release(st);
            st = next;
        }
        if (!progress || !sv->head)
            break;
    }
    sv_flush(sv);
}

/* ---- answering ---------------------------------------------------------- */

static int sv_has_field(const struct tt_fs_response *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->count; i++)
        if (r->hdrs[i].name_len == n && !memcmp(r->hdrs[i].name, name, n))
            return 1;
    return 0;
}

/* A response head kept for later.  Its values point into its own strbuf
 * (or at static strings), so a copy must be rebased, not just memcpy'd. */
static struct tt_fs_response *sv_resp_copy(const struct tt_fs_response *r)
{
    struct tt_fs_response *c = tt_mem_alloc(sizeof *c);
    if (!c)
        return NULL;
    memcpy(c, r, sizeof *c);
    for (size_t i = 0; i < c->count; i++) {
        const char *v = r->hdrs[i].value;
        if (v >= r->strbuf && v < r->strbuf + sizeof r->strbuf)
            c->hdrs[i].value = c->strbuf + (v - r->strbuf);
    }
    return c;
}

/* Sends the response head and, when there is a body, starts pumping it.
 * `resp` may be sv->resp or a stream's early_resp.  The caller holds st. */
static void sv_respond(struct tt_serve *sv, struct sv_stream *st, const struct tt_fs_response *resp)
{
    struct tt_header hdrs[TT_FS_MAX_RESP_HDRS + 2];
    char status[8], clen[24];
    size_t n = 0;
    snprintf(status, sizeof status, "%d", resp->status);
    hdrs[n++] = (struct tt_header){":status", status, 7, (uint32_t)strlen(status), 0};
    for (size_t i = 0; i < resp->count; i++)
        hdrs[n++] = resp->hdrs[i];
    if (resp->content_length >= 0 && resp->status != 204 && resp->status != 304 &&
        !sv_has_field(resp, "content-length")) {
        snprintf(clen, sizeof clen, "%" PRId64, resp->content_length);
        hdrs[n++] = (struct tt_header){"content-length", clen, 14, (uint32_t)strlen(clen), 0};
    }
    /* A body comes from a producer; anything else ends with the head. */
    int body = resp->has_body && st->fs && !st->upload && resp->content_length != 0;
    if (!body && st->fs && !st->upload) {
        tt_fs_close(st->fs);
        st->fs = NULL;
    }
    tt_log_debug("stream %" PRIu32 ": %d", st->sid, resp->status);
    int rc = tt_h2_submit_headers(sv->h2, st->sid, hdrs, n, !body);
    if (rc == TT_ERR_NOMEM && !st->dead) {
        /* The output buffer is full of other streams' DATA (a burst of
         * requests): answer once it drains rather than failing this one. */
        if (resp != st->early_resp && !(st->early_resp = sv_resp_copy(resp))) {
            sv_reset(sv, st, TT_H2_INTERNAL_ERROR);
            return;
        }
        if (!st->head_pending) {
            tt_log_debug("stream %" PRIu32 ": output full, response head deferred", st->sid);
            st->head_pending = 1;
            sv->heads_pending++;
        }
        return;
    }
    if (rc < 0) {
        if (!st->dead)
            sv_reset(sv, st, TT_H2_INTERNAL_ERROR);
        return;
    }
    if (!body || st->dead)
        return;
    st->remaining = resp->content_length;
    sv_link_sending(sv, st);
    sv_pump(sv, st, 0);
}

static void sv_answer_500(struct tt_serve *sv, struct sv_stream *st)
{
    struct tt_fs_response *r = &sv->resp;
    r->status = 500;
    r->count = 0;
    r->strbuf_len = 0;
    r->content_length = 0;
    r->has_body = 0;
    sv_respond(sv, st, r);
}

/* The upload's last byte arrived: move the file into place and answer. */
static void sv_finish_upload(struct tt_serve *sv, struct sv_stream *st)
{
    tt_fs_finish_upload(st->fs, &sv->resp);
    tt_fs_close(st->fs);
    st->fs = NULL;
    st->upload = 0;
    sv_respond(sv, st, &sv->resp);
}

/* Answers what was opened before the session was known. */
static void sv_kick(struct tt_serve *sv)
{
    struct sv_stream *st = sv->all;
    while (st) {
        struct sv_stream *next = st->all_next; /* st may leave the list */
        st->busy++;
        if (st->kick) {
            st->kick = 0;
            tt_h2_stream_set_user(sv->h2, st->sid, st);
            if (st->owed) {
                tt_h2_consume(sv->h2, st->sid, st->owed);
                st->owed = 0;
            }
            if (st->early_resp) {
                struct tt_fs_response *r = st->early_resp;
                st->early_resp = NULL;
                sv_respond(sv, st, r);
                tt_mem_free(r);
            } else if (st->upload && st->req_ended) {
                sv_finish_upload(sv, st);
            }
        }
        sv_release(st);
        st = next;
    }
}

/* ---- codec callbacks ---------------------------------------------------- */

static int sv_on_headers(void *ud, uint32_t sid, void *sud, const struct tt_h2_headers *h)
{
    struct tt_serve *sv = ud;
    struct sv_stream *st;

    if (h->kind == TT_H2_HDRS_TRAILERS) {
        /* Request trailers end the request body; the file server has no
         * use for their fields. */
        st = sv_find(sv, sid, sud);
        if (!st)
            return 0;
        st->req_ended = 1;
        if (st->upload && st->fs && sv->h2) {
            st->busy++;
            sv_finish_upload(sv, st);
            sv_release(st);
            sv_flush(sv);
        }
        return 0;
    }
    if (h->kind != TT_H2_HDRS_REQUEST)
        return 0;

    st = tt_mem_calloc(1, sizeof *st);
    if (!st) {
        if (sv->h2)
            tt_h2_submit_rst(sv->h2, sid, TT_H2_REFUSED_STREAM);
        return 0;
    }
    st->sid = sid;
    st->remaining = -1;
    st->req_ended = h->end_stream != 0;
    st->all_next = sv->all;
    if (sv->all)
        sv->all->all_prev = st;
    sv->all = st;

    struct tt_fs_request req = {
        .method = h->method, .path = h->path, .hdrs = h->hdrs, .count = h->count};
    struct tt_fs_response *resp = &sv->resp;
    if (!sv->h2) {
        /* Answered later: the response must live in a place of its own. */
        resp = st->early_resp = tt_mem_alloc(sizeof *st->early_resp);
        if (!resp) {
            sv_forget(sv, st);
            return -1;
        }
        st->kick = 1;
    }
    if (tt_log_enabled(TT_LOG_DEBUG))
        tt_log_debug("stream %" PRIu32 ": %.*s %.*s", sid, (int)h->method.len,
                     (const char *)h->method.base, (int)(h->path.len > 200 ? 200 : h->path.len),
                     (const char *)h->path.base);
    st->fs = tt_fs_open(sv->fs, &req, resp);
    st->upload = st->fs && tt_fs_is_upload(st->fs);
    if (!sv->h2) {
        if (st->upload) {
            tt_mem_free(st->early_resp);
            st->early_resp = NULL;
        }
        return 0;
    }
    tt_h2_stream_set_user(sv->h2, sid, st);
    st->busy++;
    if (st->upload) {
        if (st->req_ended)
            sv_finish_upload(sv, st);
    } else {
        sv_respond(sv, st, resp);
    }
    sv_release(st);
    sv_flush(sv);
    return 0;
}

static int sv_on_data(void *ud, uint32_t sid, void *sud, const uint8_t *data, size_t len,
                      int end_stream)
{
    struct tt_serve *sv = ud;
    struct sv_stream *st = sv_find(sv, sid, sud);
    if (!st || st->dead) {
        sv_consume(sv, NULL, sid, len);
        return 0;
    }
    if (end_stream)
        st->req_ended = 1;
    if (!st->upload || !st->fs) {
        /* A body nobody asked for (GET with a body, a refused PUT): taken
         * and dropped, so p's window keeps moving. */
        sv_consume(sv, st, sid, len);
        return 0;
    }
    st->busy++;
    if (len && tt_fs_write(st->fs, data, len) < 0) {
        tt_log_warn("stream %" PRIu32 ": writing the upload failed: answering 500", sid);
        tt_fs_close(st->fs); /* removes the temporary file */
        st->fs = NULL;
        st->upload = 0;
        sv_consume(sv, st, sid, len);
        if (sv->h2)
            sv_answer_500(sv, st);
        sv_release(st);
        sv_flush(sv);
        return 0;
    }
    /* On disk: now the window may open again. */
    sv_consume(sv, st, sid, len);
    if (end_stream && sv->h2)
        sv_finish_upload(sv, st);
    sv_release(st);
    sv_flush(sv);
    return 0;
}

static void sv_on_stream_close(void *ud, uint32_t sid, void *sud, uint32_t code, unsigned flags)
{
    struct tt_serve *sv = ud;
    struct sv_stream *st = sv_find(sv, sid, sud);
    if (!st)
        return;
    if (code != TT_H2_NO_ERROR)
        tt_log_debug("stream %" PRIu32 " closed: %s%s", sid, tt_h2_strerror(code),
                     (flags & TT_H2_CLOSE_RST_RECEIVED) ? " (reset by the proxy)" : "");
    sv_forget(sv, st);
}

static void sv_on_window_update(void *ud, uint32_t sid, void *sud)
{
    struct tt_serve *sv = ud;
    if (!sv->h2)
        return;
    if (sid == 0) {
        sv_pump_all(sv);
        return;
    }
    struct sv_stream *st = sud;
    if (!st || !st->sending || st->dead)
        return;
    st->busy++;
    sv_pump(sv, st, 0);
    sv_release(st);
    sv_flush(sv);
}

static void sv_on_goaway(void *ud, uint32_t last_sid, uint32_t code, tt_iov debug)
{
    (void)ud;
    tt_log_info("proxy sent GOAWAY (%s, last stream %" PRIu32 ")%s%.*s", tt_h2_strerror(code),
                last_sid, debug.len ? ": " : "", (int)(debug.len > 100 ? 100 : debug.len),
                (const char *)debug.base);
}

static void sv_on_ping_ack(void *ud, uint64_t opaque)
{
    (void)ud;
    (void)opaque;
}

static void sv_on_remote_settings(void *ud) { (void)ud; }

/* Response heads that did not fit earlier, oldest streams last (the list
 * is newest first; order does not matter for correctness). */
static void sv_retry_heads(struct tt_serve *sv)
{
    struct sv_stream *st = sv->all;
    while (st && sv->heads_pending) {
        struct sv_stream *next = st->all_next; /* st may leave the list */
        st->busy++;
        if (st->head_pending && !st->dead) {
            st->head_pending = 0;
            sv->heads_pending--;
            struct tt_fs_response *r = st->early_resp;
            sv_respond(sv, st, r);
            if (!st->dead && !st->head_pending && st->early_resp == r) {
                st->early_resp = NULL;
                tt_mem_free(r);
            }
        }
        sv_release(st);
        st = next;
    }
}

static void sv_on_writable(void *ud, struct tt_session *s)
{
    (void)s;
    struct tt_serve *sv = ud;
    if (sv->heads_pending && sv->h2)
        sv_retry_heads(sv);
    sv_pump_all(sv);
}

static void sv_on_closed(void *ud, struct tt_session *s, const char *reason)
{
    (void)s;
    struct tt_serve *sv = ud;
    sv->s = NULL;
    sv->h2 = NULL;
    /* Every stream had on_stream_close already; anything left is closed
     * here all the same (an upload leaves nothing). */
    while (sv->all)
        sv_forget(sv, sv->all);
    sv->on_closed(sv->owner, reason);
    tt_mem_free(sv->buf);
    tt_mem_free(sv);
}

static const struct tt_session_callbacks sv_callbacks = {
    .h2 =
        {
            .on_headers = sv_on_headers,
            .on_data = sv_on_data,
            .on_stream_close = sv_on_stream_close,
            .on_window_update = sv_on_window_update,
            .on_goaway = sv_on_goaway,
            .on_ping_ack = sv_on_ping_ack,
            .on_remote_settings = sv_on_remote_settings,
        },
    .on_writable = sv_on_writable,
    .on_closed = sv_on_closed,
};

struct tt_serve *tt_serve_start(struct tt_loop *loop, struct tt_tls_conn *tls,
                                const struct tt_session_config *cfg,
                                const struct tt_fs_config *fs, const uint8_t *early,
                                size_t early_len, tt_serve_closed_cb on_closed, void *owner)
{
    struct tt_serve *sv = tt_mem_calloc(1, sizeof *sv);
    if (!sv || !(sv->buf = tt_mem_alloc(SV_CHUNK))) {
        tt_mem_free(sv);
        tt_tls_conn_free(tls);
        tt_mem_free(tls);
        return NULL;
    }
    sv->loop = loop;
    sv->fs = fs;
    sv->on_closed = on_closed;
    sv->owner = owner;
    struct tt_session *s =
        tt_session_new(loop, tls, TT_H2_SERVER, cfg, &sv_callbacks, sv, early, early_len);
    /* The session took the connection by value (or freed it): the struct
     * itself is still ours. */
    tt_mem_free(tls);
    if (!s) {
        while (sv->all)
            sv_forget(sv, sv->all);
        tt_mem_free(sv->buf);
        tt_mem_free(sv);
        return NULL;
    }
    sv->s = s;
    sv->h2 = tt_session_h2(s);
    if (sv->all) {
        sv_kick(sv);
        sv_flush(sv);
    }
    return sv;
}

void tt_serve_drain(struct tt_serve *sv, uint32_t grace_ms)
{
    if (sv->s && !tt_session_closing(sv->s))
        tt_session_drain(sv->s, grace_ms);
}
