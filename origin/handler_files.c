/*
 * The --root handler: tunnel streams (origin/handler.h) answered by the
 * file server (origin/fileserver.h).
 *
 * Sending bodies.  A stream whose response has a body waits on the tunnel
 * server's list (tt_ts_wait) until its last byte is queued.  Pumping a
 * stream reads the file straight into the codec's output buffer behind a
 * DATA frame header (tt_ts_reserve/commit) when the peer allows big frames,
 * else into one reusable buffer (no allocation per chunk) that is then
 * copied into frames; either way as much as tt_ts_room() allows: the least
 * of the stream window, the connection window and the room in the codec's
 * output buffer.  That room is what bounds c's memory per stream: nothing
 * is read from disk that cannot be queued at once.  When room runs out the
 * stream waits; the tunnel server resumes the waiting streams in
 * round-robin order, one chunk (fl_pump with max_chunks 1) each per round.
 *
 * The copying buffer and the response-head scratch are one per process,
 * not per tunnel: each is filled and emptied within one call (a read and
 * the copy into frames; tt_fs_open and the HEADERS submit), and c runs one
 * thread, so no two streams ever use them at once.
 *
 * In the rare case the codec takes fewer bytes than it said it had room for,
 * the rest is kept per stream (`left`) rather than lost.
 *
 * A response head that does not fit (the output buffer full of other
 * streams' DATA: a burst of requests) is copied and kept on the waiting
 * list: the next pump sends it.
 *
 * Uploads (PUT, --allow-put): DATA is written to the file server's temporary
 * file and only then consumed (tt_ts_consume), so receive window is returned
 * for bytes that are on disk: a slow disk slows the sender.  A stream that
 * ends any other way than by END_STREAM (reset, tunnel gone) closes the
 * upload, which leaves nothing behind.
 */
#include "origin/origin.h"

#include "codec/buf.h"
#include "proto/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FL_CHUNK (256u * 1024u)
/* Smallest frame worth reading into directly (below it, one read fills
 * several frames through the copying path). */
#define FL_DIRECT_MIN (64u * 1024u)

struct tt_files {
    const struct tt_fs_config *fs;
    uint8_t *buf; /* FL_CHUNK bytes: see above */
    /* One response head at a time: used where it is filled (it points into
     * itself). */
    struct tt_fs_response resp;
};

/* The handler's part of a tunnel stream record. */
struct fl_stream {
    struct tt_files *f;
    unsigned sending : 1;      /* the body is not all queued yet */
    unsigned upload : 1;       /* fs takes the request body */
    unsigned req_ended : 1;    /* p's END_STREAM seen */
    unsigned eof : 1;          /* the producer has no more bytes */
    unsigned head_pending : 1; /* the response head did not fit: pend_resp, sent by the next pump */
    struct tt_fs_stream *fs;
    int64_t remaining; /* body bytes the producer still owes; -1: unknown */
    struct tt_fs_response *pend_resp;
    uint8_t *left; /* bytes the codec did not take */
    size_t left_off, left_len;
};

static struct tt_ts *fl_ts(struct fl_stream *st) { return tt_ts_of(st); }

/* On the tunnel's waiting list exactly while there is something to send. */
static void fl_wait_update(struct fl_stream *st)
{
    if (st->sending || st->head_pending)
        tt_ts_wait(fl_ts(st));
    else
        tt_ts_unwait(fl_ts(st));
}

static void fl_reset(struct fl_stream *st, uint32_t code)
{
    st->sending = 0;
    tt_ts_reset(fl_ts(st), code); /* fl_close runs inside */
}

/* The body is all queued (or given up): the file side is done. */
static void fl_body_done(struct fl_stream *st)
{
    st->sending = 0;
    fl_wait_update(st);
    if (st->fs) {
        tt_fs_close(st->fs);
        st->fs = NULL;
    }
}

static int fl_keep_left(struct fl_stream *st, const uint8_t *p, size_t n)
{
    if (!st->left && !(st->left = tt_mem_alloc(FL_CHUNK)))
        return -1;
    memmove(st->left, p, n);
    st->left_off = 0;
    st->left_len = n;
    return 0;
}

/* Queues DATA for one stream: at most `max_chunks` chunks (0: as much as
 * room allows).  Returns the bytes queued.  The caller holds the stream. */
static size_t fl_pump(struct fl_stream *st, unsigned max_chunks)
{
    struct tt_ts *ts = fl_ts(st);
    uint8_t *buf = st->f->buf;
    size_t total = 0;
    for (unsigned chunks = 0;
         !tt_ts_closed(ts) && st->sending && (max_chunks == 0 || chunks < max_chunks); chunks++) {
        size_t room = tt_ts_room(ts);
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
            size_t want = room < FL_CHUNK ? room : FL_CHUNK;
            if (st->remaining >= 0 && (uint64_t)st->remaining < want)
                want = (size_t)st->remaining;
            size_t granted = 0;
            uint8_t *dst = want ? tt_ts_reserve(ts, want, &granted) : NULL;
            if (dst && (granted == want || granted >= FL_DIRECT_MIN)) {
                ssize_t r = tt_fs_read(st->fs, dst, granted);
                if (r < 0 || (r == 0 && st->remaining > 0)) {
                    tt_log_warn("read error on stream %" PRIu32 ": resetting it", tt_ts_id(ts));
                    fl_reset(st, TT_H2_INTERNAL_ERROR);
                    break;
                }
                if (st->remaining >= 0)
                    st->remaining -= r;
                if (r == 0 || st->remaining == 0)
                    st->eof = 1;
                if (tt_ts_commit(ts, (size_t)r, st->eof) < 0) {
                    fl_reset(st, TT_H2_INTERNAL_ERROR);
                    break;
                }
                total += (size_t)r;
                if (st->eof) {
                    fl_body_done(st);
                    break;
                }
                continue;
            }
        }
        if (from_left) {
            p = st->left + st->left_off;
            n = st->left_len < room ? st->left_len : room;
        } else if (!st->eof) {
            size_t cap = room < FL_CHUNK ? room : FL_CHUNK;
            if (st->remaining >= 0 && (uint64_t)st->remaining < cap)
                cap = (size_t)st->remaining;
            ssize_t r = cap ? tt_fs_read(st->fs, buf, cap) : 0;
            if (r < 0 || (r == 0 && st->remaining > 0)) {
                /* RFC 9113 §8.1: a response cut short must not end
                 * cleanly, or the client would take it as complete. */
                tt_log_warn("read error on stream %" PRIu32 ": resetting it", tt_ts_id(ts));
                fl_reset(st, TT_H2_INTERNAL_ERROR);
                break;
            }
            p = buf;
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
        ssize_t w = tt_ts_send(ts, p, n, end);
        if (w < 0) {
            fl_reset(st, TT_H2_INTERNAL_ERROR);
            break;
        }
        total += (size_t)w;
        if (from_left) {
            st->left_off += (size_t)w;
            st->left_len -= (size_t)w;
        } else if ((size_t)w < n) {
            if (fl_keep_left(st, p + w, n - (size_t)w)) {
                fl_reset(st, TT_H2_INTERNAL_ERROR);
                break;
            }
        }
        if (end && (size_t)w == n) {
            fl_body_done(st);
            break;
        }
        if ((size_t)w < n || (n == 0 && w == 0 && !end))
            break; /* blocked */
    }
    return total;
}

/* ---- answering ---------------------------------------------------------- */

static int fl_has_field(const struct tt_fs_response *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->count; i++)
        if (r->hdrs[i].name_len == n && !memcmp(r->hdrs[i].name, name, n))
            return 1;
    return 0;
}

/* A response head kept for later.  Its values point into its own strbuf
 * (or at static strings), so a copy must be rebased, not just memcpy'd. */
static struct tt_fs_response *fl_resp_copy(const struct tt_fs_response *r)
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
 * `resp` is the shared scratch or the stream's pend_resp.  Returns the body
 * bytes queued.  The caller holds the stream. */
static size_t fl_respond(struct fl_stream *st, const struct tt_fs_response *resp)
{
    struct tt_ts *ts = fl_ts(st);
    struct tt_header hdrs[TT_FS_MAX_RESP_HDRS + 2];
    char status[8], clen[24];
    size_t n = 0;
    snprintf(status, sizeof status, "%d", resp->status);
    hdrs[n++] = (struct tt_header){":status", status, 7, (uint32_t)strlen(status), 0};
    for (size_t i = 0; i < resp->count; i++)
        hdrs[n++] = resp->hdrs[i];
    if (resp->content_length >= 0 && resp->status != 204 && resp->status != 304 &&
        !fl_has_field(resp, "content-length")) {
        snprintf(clen, sizeof clen, "%" PRId64, resp->content_length);
        hdrs[n++] = (struct tt_header){"content-length", clen, 14, (uint32_t)strlen(clen), 0};
    }
    /* A body comes from a producer; anything else ends with the head. */
    int body = resp->has_body && st->fs && !st->upload && resp->content_length != 0;
    if (!body && st->fs && !st->upload) {
        tt_fs_close(st->fs);
        st->fs = NULL;
    }
    tt_log_debug("stream %" PRIu32 ": %d", tt_ts_id(ts), resp->status);
    int rc = tt_ts_headers(ts, hdrs, n, !body);
    if (rc == TT_ERR_NOMEM && !tt_ts_closed(ts)) {
        /* The output buffer is full of other streams' DATA (a burst of
         * requests): answer once it drains rather than failing this one. */
        if (resp != st->pend_resp && !(st->pend_resp = fl_resp_copy(resp))) {
            fl_reset(st, TT_H2_INTERNAL_ERROR);
            return 0;
        }
        if (!st->head_pending)
            tt_log_debug("stream %" PRIu32 ": output full, response head deferred", tt_ts_id(ts));
        st->head_pending = 1;
        fl_wait_update(st);
        return 0;
    }
    if (rc < 0) {
        fl_reset(st, TT_H2_INTERNAL_ERROR);
        return 0;
    }
    if (!body || tt_ts_closed(ts))
        return 0;
    st->remaining = resp->content_length;
    st->sending = 1;
    fl_wait_update(st);
    return fl_pump(st, 0);
}

static void fl_answer_500(struct fl_stream *st)
{
    struct tt_fs_response *r = &st->f->resp;
    r->status = 500;
    r->count = 0;
    r->strbuf_len = 0;
    r->content_length = 0;
    r->has_body = 0;
    fl_respond(st, r);
}

/* The upload's last byte arrived: move the file into place and answer. */
static void fl_finish_upload(struct fl_stream *st)
{
    struct tt_fs_response *r = &st->f->resp;
    tt_fs_finish_upload(st->fs, r);
    tt_fs_close(st->fs);
    st->fs = NULL;
    st->upload = 0;
    fl_respond(st, r);
}

/* ---- handler ops -------------------------------------------------------- */

static void fl_open(void *hctx, struct tt_ts *ts, const struct tt_h2_headers *h)
{
    struct tt_files *f = hctx;
    struct fl_stream *st = tt_ts_priv(ts);
    st->f = f;
    st->remaining = -1;
    st->req_ended = h->end_stream != 0;
    struct tt_fs_request req = {
        .method = h->method, .path = h->path, .hdrs = h->hdrs, .count = h->count};
    if (tt_log_enabled(TT_LOG_DEBUG))
        tt_log_debug("stream %" PRIu32 ": %.*s %.*s", tt_ts_id(ts), (int)h->method.len,
                     (const char *)h->method.base, (int)(h->path.len > 200 ? 200 : h->path.len),
                     (const char *)h->path.base);
    st->fs = tt_fs_open(f->fs, &req, &f->resp);
    st->upload = st->fs && tt_fs_is_upload(st->fs);
    if (st->upload) {
        if (st->req_ended)
            fl_finish_upload(st);
    } else {
        fl_respond(st, &f->resp);
    }
}

/* Request trailers end the request body; the file server has no use for
 * their fields. */
static void fl_trailers(struct tt_ts *ts, const struct tt_h2_headers *h)
{
    (void)h;
    struct fl_stream *st = tt_ts_priv(ts);
    st->req_ended = 1;
    if (st->upload && st->fs)
        fl_finish_upload(st);
}

static void fl_data(struct tt_ts *ts, const uint8_t *data, size_t len, int end_stream)
{
    struct fl_stream *st = tt_ts_priv(ts);
    if (end_stream)
        st->req_ended = 1;
    if (!st->upload || !st->fs) {
        /* A body nobody asked for (GET with a body, a refused PUT): taken
         * and dropped, so p's window keeps moving. */
        tt_ts_consume(ts, len);
        return;
    }
    if (len && tt_fs_write(st->fs, data, len) < 0) {
        tt_log_warn("stream %" PRIu32 ": writing the upload failed: answering 500", tt_ts_id(ts));
        tt_fs_close(st->fs); /* removes the temporary file */
        st->fs = NULL;
        st->upload = 0;
        tt_ts_consume(ts, len);
        fl_answer_500(st);
        return;
    }
    /* On disk: now the window may open again. */
    tt_ts_consume(ts, len);
    if (end_stream)
        fl_finish_upload(st);
}

static size_t fl_pump_op(struct tt_ts *ts)
{
    struct fl_stream *st = tt_ts_priv(ts);
    if (!st->head_pending)
        return fl_pump(st, 1);
    /* A head that did not fit before. */
    struct tt_fs_response *r = st->pend_resp;
    st->head_pending = 0;
    size_t sent = fl_respond(st, r);
    if (!tt_ts_closed(ts) && !st->head_pending && st->pend_resp == r) {
        st->pend_resp = NULL;
        tt_mem_free(r);
    }
    fl_wait_update(st);
    return sent;
}

static void fl_close(struct tt_ts *ts, uint32_t code, unsigned flags)
{
    (void)code;
    (void)flags;
    struct fl_stream *st = tt_ts_priv(ts);
    st->sending = 0;
    st->head_pending = 0;
    if (st->fs) {
        tt_fs_close(st->fs); /* an unfinished upload leaves nothing */
        st->fs = NULL;
    }
}

static void fl_free(struct tt_ts *ts)
{
    struct fl_stream *st = tt_ts_priv(ts);
    tt_mem_free(st->pend_resp);
    tt_mem_free(st->left);
}

const struct tt_handler tt_files_handler = {
    .stream_size = sizeof(struct fl_stream),
    .open = fl_open,
    .data = fl_data,
    .trailers = fl_trailers,
    .pump = fl_pump_op,
    .close = fl_close,
    .free = fl_free,
};

struct tt_files *tt_files_new(const struct tt_fs_config *fs)
{
    struct tt_files *f = tt_mem_calloc(1, sizeof *f);
    if (!f || !(f->buf = tt_mem_alloc(FL_CHUNK))) {
        tt_mem_free(f);
        return NULL;
    }
    f->fs = fs;
    return f;
}

void tt_files_free(struct tt_files *f)
{
    if (!f)
        return;
    tt_mem_free(f->buf);
    tt_mem_free(f);
}
