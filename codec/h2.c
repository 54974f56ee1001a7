/*
 * The HTTP/2 connection (RFC 9113), sans-IO, one code path for both roles.
 *
 * Receiving.  tt_h2_recv() runs a byte-level state machine: preface (server
 * role), 9-byte frame header, then the payload in three parts: a fixed
 * "prefix" (Pad Length, priority fields, or the whole payload of small
 * control frames) collected into rx_small, the variable body handed to the
 * type's handler chunk by chunk as it arrives (DATA goes straight to
 * on_data without a copy; header block fragments are appended to the one
 * header-block buffer), and padding, skipped.  So no frame payload is ever
 * buffered whole and the parser resumes at any byte boundary.  Each frame
 * first passes the table-driven generic checks of frame.c, then the per-type
 * handlers of rx_handlers[] (begin / prefix / body / end).
 *
 * Errors are state.  A connection error queues GOAWAY with a static reason,
 * closes every stream (TT_H2_CLOSE_CONN) and marks the connection dead: no
 * more input is processed.  A stream error queues RST_STREAM, closes that
 * stream (TT_H2_CLOSE_RST_SENT) and makes the rest of the frame be skipped.
 *
 * Streams.  One record per open stream (open, half-closed either way;
 * idle streams have no record and reserved states cannot happen since push
 * is off), found by id in an open-addressing table and linked in a list for
 * walks.  A closed stream is freed at once; its id goes into a small ring of
 * recently closed ids with how it closed, so that late frames get the
 * RFC 9113 §5.1 answer: ignored after we reset it, STREAM_CLOSED otherwise.
 * Ids are idle above the highest id opened (per parity), closed below it.
 *
 * Flow control (§5.2, §6.9).  Send windows are int64 (they may go negative
 * after SETTINGS_INITIAL_WINDOW_SIZE shrinks).  Receive windows shrink with
 * every DATA byte including padding; padding and anything we drop are
 * credited back at once, delivered bytes only through tt_h2_consume().  A
 * WINDOW_UPDATE is sent once half a window is owed.
 *
 * size: one file on purpose: the receive handlers, the output queue and the
 * send calls all work on the private struct tt_h2_conn and its stream table,
 * and splitting them means publishing that struct to several files (the
 * header validation, about 230 lines, is the one part that could leave whole).
 */
#include "h2.h"

#include "frame.h"
#include "token.h"

#include <string.h>

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define H2_CLOSED_RING 128  /* recently closed stream ids remembered */
#define H2_GOAWAY_DEBUG 128 /* GOAWAY debug bytes kept for on_goaway */
#define H2_OUT_SLACK (64 * 1024) /* control frames past max_output */
#define H2_MAX_ACKS 4096

enum { RX_PREFACE = 0, RX_HEAD, RX_FRAME, RX_DEAD };
enum { ST_OPEN = 1, ST_HALF_LOCAL, ST_HALF_REMOTE };
enum { CL_NORMAL = 1, CL_RST_SENT, CL_RST_RECV, CL_IGNORED };
enum { HB_DELIVER = 0, HB_DROP };

struct h2_stream {
    uint32_t id;
    uint8_t state;
    uint8_t local;        /* we opened it */
    uint8_t got_headers;  /* request, or final response, received */
    uint8_t sent_headers; /* request, or final response, sent */
    uint8_t no_length_check; /* response to HEAD, or 304: DATA need not match */
    uint8_t req_head;     /* client: the request was HEAD */
    /* Server: the output offset past our final response HEADERS (0: none
     * queued).  Once out_written reaches it the answer has left, and a
     * reset of the stream is a client giving up on a response under way,
     * not a rapid reset: it spends nothing. */
    uint64_t answer_end;
    int64_t send_window;
    int64_t recv_window;
    uint64_t recv_unacked; /* consumed, not yet given back */
    uint64_t recv_pending; /* delivered, not yet consumed */
    uint64_t conn_owed;    /* ... of which the connection window is still owed */
    uint64_t grown;        /* window opened beyond the SETTINGS one (tt_h2_stream_grow) */
    int64_t content_length;
    uint64_t data_received;
    void *sud;
    struct h2_stream *prev, *next;
};

struct h2_peer_settings {
    uint32_t header_table_size;
    uint32_t max_concurrent_streams;
    uint32_t initial_window_size;
    uint32_t max_frame_size;
    uint32_t max_header_list_size;
    uint32_t enable_connect_protocol; /* RFC 8441 §3 */
};

struct h2_closed {
    uint32_t sid;
    uint8_t how;
};

struct tt_h2_conn {
    enum tt_h2_role role;
    struct tt_h2_config cfg;
    struct tt_h2_callbacks cb;
    void *ud;

    /* Output. */
    tt_buf out;
    uint64_t out_written; /* bytes ever consumed from out */
    uint64_t *ack_ends;   /* ring: end offsets of unsent SETTINGS/PING ACKs */
    uint32_t ack_head, ack_count, ack_cap;

    /* Receive state machine. */
    uint8_t rx_state;
    uint8_t rx_hlen;
    uint8_t rx_discard;   /* skip the rest of this frame's body */
    uint8_t rx_first;     /* the next frame must be SETTINGS (§3.4) */
    uint8_t rx_end_sent;  /* DATA: end_stream already delivered */
    uint8_t rx_hbuf[TT_FRAME_HEADER_LEN];
    uint8_t rx_small[16];
    uint8_t rx_set[6];
    uint8_t rx_set_len;
    struct tt_frame_hdr fh;
    uint32_t rx_pos, rx_prefix, rx_body_end;
    uint32_t rx_uncredited; /* DATA bytes neither delivered nor credited */
    struct h2_peer_settings rx_settings; /* SETTINGS being received */
    uint8_t dbg[H2_GOAWAY_DEBUG];
    uint32_t dbg_len;

    /* The header block being collected (HEADERS + CONTINUATION). */
    tt_buf hblock;
    uint8_t hb_active, hb_mode, hb_end_stream, hb_new;
    uint32_t hb_sid, hb_conts;

    struct tt_hpack_decoder dec;
    struct tt_hpack_encoder enc;
    struct tt_header *hd_hdrs; /* decode scratch, while streams are open */
    char *hd_scratch;
    size_t hd_hdrs_cap;

    /* Settings. */
    struct h2_peer_settings remote;
    uint32_t rx_initial_window; /* stream receive window now in force */
    uint32_t settings_unacked;  /* our SETTINGS frames not yet ACKed */
    uint8_t remote_settings_seen;
    uint8_t dead;
    uint8_t transport_gone;
    uint8_t goaway_sent;
    uint32_t goaway_sent_last;
    uint32_t goaway_recv_last;
    uint32_t err_code;
    const char *err_desc;
    uint8_t has_err;

    /* Streams. */
    struct h2_stream **tab;
    uint32_t tab_cap, nstreams;
    struct h2_stream *list;
    uint32_t n_local, n_peer;
    uint32_t next_local_sid;
    uint32_t max_peer_sid;    /* highest id the peer opened (idle above) */
    uint32_t last_processed;  /* highest peer id we accepted (GOAWAY) */
    struct h2_closed closed[H2_CLOSED_RING];
    uint32_t closed_head, closed_count;

    /* Connection flow control. */
    int64_t send_window;
    int64_t recv_window;
    uint64_t recv_unacked;
    uint64_t recv_pending;
    uint32_t conn_window_max;

    /* Abuse budgets. */
    uint32_t rst_budget;
    uint32_t empty_budget;
};

void tt_h2_config_default(struct tt_h2_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->header_table_size = 4096;
    cfg->max_concurrent_streams = 256;
    cfg->initial_window_size = 1u << 20;
    cfg->max_frame_size = TT_H2_MIN_FRAME_SIZE;
    cfg->max_header_list_size = 64 * 1024;
    cfg->connection_window = 16u << 20;
    cfg->encoder_table_size = 4096;
    cfg->max_output = 1u << 20;
    cfg->max_header_block = 128 * 1024;
    cfg->max_continuations = 64;
    cfg->max_pending_acks = 64;
    cfg->rst_budget = 200;
    cfg->empty_frame_budget = 1000;
    cfg->max_settings_entries = 32;
}

static size_t out_cap(const struct tt_h2_config *cfg)
{
    /* max_output of DATA, one header block split into frames, and room for
     * the control frames a peer can provoke (bounded by the ACK queue and
     * the reset budget). */
    size_t hb = (size_t)cfg->max_header_block;
    return cfg->max_output + hb + (hb / TT_H2_MIN_FRAME_SIZE + 1) * TT_FRAME_HEADER_LEN +
           H2_OUT_SLACK + (size_t)cfg->rst_budget * 13 + (size_t)cfg->max_pending_acks * 17;
}

size_t tt_h2_memory_bound(const struct tt_h2_config *cfg)
{
    size_t n = sizeof(struct tt_h2_conn);
    n += out_cap(cfg);
    n += cfg->max_header_block;
    /* HPACK: strings up to the table size plus a ring of entries (at most
     * size/32 of them), each way. */
    n += (size_t)cfg->header_table_size * 2 + (size_t)cfg->encoder_table_size * 3;
    n += cfg->max_header_list_size + (cfg->max_header_list_size / 32 + 1) * sizeof(struct tt_header);
    /* Streams: ours are capped by our own max_concurrent_streams as well as
     * the peer's, so both directions together hold 2x; the table doubles. */
    size_t ns = 2 * (size_t)cfg->max_concurrent_streams;
    n += ns * (sizeof(struct h2_stream) + 4 * sizeof(void *));
    n += (cfg->max_pending_acks < H2_MAX_ACKS ? cfg->max_pending_acks : H2_MAX_ACKS) * 8;
    return n;
}

/* tt_buf_data() of a buffer that holds no storage would be NULL + 0 (UB
 * that UBSan flags): views of possibly empty buffers go through here. */
static const uint8_t *buf_view(const tt_buf *b)
{
    static const uint8_t empty[1];
    return b->base ? tt_buf_data(b) : empty;
}

/* --- Streams table ------------------------------------------------------ */

/* Ids of live streams all have one parity (no push) and are handed out in
 * sequence, so sid/2 spreads perfectly over a power-of-two table. */
static uint32_t st_slot(uint32_t sid, uint32_t mask) { return (sid >> 1) & mask; }

static struct h2_stream *st_find(const struct tt_h2_conn *c, uint32_t sid)
{
    if (!c->tab || sid == 0)
        return NULL;
    uint32_t mask = c->tab_cap - 1;
    for (uint32_t i = st_slot(sid, mask);; i = (i + 1) & mask) {
        struct h2_stream *s = c->tab[i];
        if (!s)
            return NULL;
        if (s->id == sid)
            return s;
    }
}

static void st_put(struct h2_stream **tab, uint32_t cap, struct h2_stream *s)
{
    uint32_t mask = cap - 1;
    uint32_t i = st_slot(s->id, mask);
    while (tab[i])
        i = (i + 1) & mask;
    tab[i] = s;
}

/* Makes room for one more stream, so that the st_insert() that follows
 * cannot fail.  Returns 0 or TT_ERR_NOMEM. */
static int st_reserve(struct tt_h2_conn *c)
{
    if ((c->nstreams + 1) * 2 > c->tab_cap) {
        uint32_t ncap = c->tab_cap ? c->tab_cap * 2 : 16;
        struct h2_stream **nt = tt_mem_calloc(ncap, sizeof(*nt));
        if (!nt)
            return TT_ERR_NOMEM;
        for (uint32_t i = 0; i < c->tab_cap; i++)
            if (c->tab[i])
                st_put(nt, ncap, c->tab[i]);
        tt_mem_free(c->tab);
        c->tab = nt;
        c->tab_cap = ncap;
    }
    return 0;
}

static int st_insert(struct tt_h2_conn *c, struct h2_stream *s)
{
    if (st_reserve(c) < 0)
        return TT_ERR_NOMEM;
    st_put(c->tab, c->tab_cap, s);
    c->nstreams++;
    s->prev = NULL;
    s->next = c->list;
    if (c->list)
        c->list->prev = s;
    c->list = s;
    if (s->local)
        c->n_local++;
    else
        c->n_peer++;
    return 0;
}

/* Linear probing with backward-shift deletion: no tombstones to clean. */
static void st_remove(struct tt_h2_conn *c, struct h2_stream *s)
{
    uint32_t mask = c->tab_cap - 1;
    uint32_t i = st_slot(s->id, mask);
    while (c->tab[i] != s)
        i = (i + 1) & mask;
    uint32_t j = i;
    for (;;) {
        c->tab[i] = NULL;
        for (;;) {
            j = (j + 1) & mask;
            if (!c->tab[j])
                goto unlinked;
            uint32_t k = st_slot(c->tab[j]->id, mask);
            /* Move j back to i unless its home k lies cyclically in (i, j]. */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        c->tab[i] = c->tab[j];
        i = j;
    }
unlinked:
    c->nstreams--;
    if (c->nstreams == 0 && tt_buf_len(&c->out) == 0)
        tt_buf_shrink(&c->out); /* idle now: see tt_h2_output_consumed */
    if (s->prev)
        s->prev->next = s->next;
    else
        c->list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->local)
        c->n_local--;
    else
        c->n_peer--;
}

static void closed_add(struct tt_h2_conn *c, uint32_t sid, uint8_t how)
{
    uint32_t i = (c->closed_head + c->closed_count) % H2_CLOSED_RING;
    if (c->closed_count == H2_CLOSED_RING)
        c->closed_head = (c->closed_head + 1) % H2_CLOSED_RING;
    else
        c->closed_count++;
    c->closed[i].sid = sid;
    c->closed[i].how = how;
}

/* How a closed stream closed, or 0 when it is no longer remembered. */
static uint8_t closed_how(const struct tt_h2_conn *c, uint32_t sid)
{
    for (uint32_t n = 0; n < c->closed_count; n++) {
        const struct h2_closed *e = &c->closed[(c->closed_head + n) % H2_CLOSED_RING];
        if (e->sid == sid)
            return e->how;
    }
    return 0;
}

static int is_local_sid(const struct tt_h2_conn *c, uint32_t sid)
{
    /* Clients open odd ids, servers even (§5.1.1). */
    return (sid & 1) == (c->role == TT_H2_CLIENT ? 1u : 0u);
}

/* §6.8: once we sent GOAWAY, frames on streams the peer opened above its
 * last-stream-id are ignored.  Decided by id, not by the closed ring, which
 * a peer opening many streams would overflow. */
static int ignored_after_goaway(const struct tt_h2_conn *c, uint32_t sid)
{
    return c->goaway_sent && !is_local_sid(c, sid) && sid > c->goaway_sent_last;
}

/* §5.1: idle means never opened; ids below the highest opened are closed. */
static int is_idle(const struct tt_h2_conn *c, uint32_t sid)
{
    if (is_local_sid(c, sid))
        return sid >= c->next_local_sid;
    return sid > c->max_peer_sid;
}

static void free_scratch(struct tt_h2_conn *c)
{
    tt_mem_free(c->hd_hdrs);
    tt_mem_free(c->hd_scratch);
    c->hd_hdrs = NULL;
    c->hd_scratch = NULL;
    c->hd_hdrs_cap = 0;
}

/* Forgets a stream and tells the user.  `how` goes to the closed ring. */
static void stream_close(struct tt_h2_conn *c, struct h2_stream *s, uint32_t code, unsigned flags,
                         uint8_t how)
{
    uint32_t sid = s->id;
    void *sud = s->sud;
    st_remove(c, s);
    closed_add(c, sid, how);
    tt_mem_free(s);
    if (c->cb.on_stream_close)
        c->cb.on_stream_close(c->ud, sid, sud, code, flags);
}

static void close_all(struct tt_h2_conn *c, uint32_t code, unsigned flags)
{
    while (c->list)
        stream_close(c, c->list, code, flags, CL_IGNORED);
}

/* --- Output ------------------------------------------------------------- */

static void fail_conn(struct tt_h2_conn *c, uint32_t code, const char *desc, int send_goaway);

/* Any failure to queue a frame means the output cap was hit or memory ran
 * out: either way the connection cannot keep its promises. */
static int out_check(struct tt_h2_conn *c, int rc)
{
    if (rc < 0) {
        fail_conn(c, TT_H2_INTERNAL_ERROR, "output buffer full", 0);
        return TT_ERR_NOMEM;
    }
    return 0;
}

static int conn_error(struct tt_h2_conn *c, uint32_t code, const char *desc)
{
    fail_conn(c, code, desc, 1);
    return TT_ERR_CONN;
}

/* Queues a SETTINGS or PING ACK, refusing more than max_pending_acks still
 * unsent: a peer that floods us while not reading our output would
 * otherwise grow the output without bound. */
static int queue_ack(struct tt_h2_conn *c, int ping, uint64_t opaque)
{
    while (c->ack_count && c->ack_ends[c->ack_head] <= c->out_written) {
        c->ack_head = (c->ack_head + 1) % c->ack_cap;
        c->ack_count--;
    }
    if (c->ack_count >= c->ack_cap)
        return conn_error(c, TT_H2_ENHANCE_YOUR_CALM, "too many unsent SETTINGS/PING ACKs");
    int rc = ping ? tt_frame_pack_ping(&c->out, 1, opaque) : tt_frame_pack_settings_ack(&c->out);
    if (out_check(c, rc))
        return TT_ERR_NOMEM;
    c->ack_ends[(c->ack_head + c->ack_count) % c->ack_cap] = c->out_written + tt_buf_len(&c->out);
    c->ack_count++;
    return 0;
}

static void conn_credit(struct tt_h2_conn *c, uint64_t n)
{
    if (c->dead || n == 0)
        return;
    c->recv_unacked += n;
    if (c->recv_unacked >= c->conn_window_max / 2) {
        uint32_t inc = (uint32_t)c->recv_unacked;
        if (out_check(c, tt_frame_pack_window_update(&c->out, 0, inc)))
            return;
        c->recv_window += inc;
        c->recv_unacked = 0;
    }
}

static void stream_credit(struct tt_h2_conn *c, struct h2_stream *s, uint64_t n)
{
    /* No point opening a window the peer will never use again. */
    if (c->dead || n == 0 || s->state == ST_HALF_REMOTE)
        return;
    s->recv_unacked += n;
    /* Half the stream's window, as it is now: a stream grown to 4 MiB gets
     * its WINDOW_UPDATEs as rarely as one that started there. */
    if (s->recv_unacked >= (c->rx_initial_window + s->grown) / 2) {
        if (s->recv_window + (int64_t)s->recv_unacked <= 0)
            return; /* still owed after a window shrink: nothing to open */
        uint32_t inc = (uint32_t)s->recv_unacked;
        if (out_check(c, tt_frame_pack_window_update(&c->out, s->id, inc)))
            return;
        s->recv_window += inc;
        s->recv_unacked = 0;
    }
}

/* Counts a reset the peer caused (RST_STREAM received, or a stream error
 * of theirs): CVE-2023-44487 rapid reset.  Completed streams refill. */
static int spend_rst(struct tt_h2_conn *c)
{
    if (c->rst_budget == 0 || --c->rst_budget == 0)
        return conn_error(c, TT_H2_ENHANCE_YOUR_CALM, "too many stream resets");
    return 0;
}

static int spend_empty(struct tt_h2_conn *c)
{
    if (c->empty_budget == 0 || --c->empty_budget == 0)
        return conn_error(c, TT_H2_ENHANCE_YOUR_CALM, "too many frames that make no progress");
    return 0;
}

static void refill(struct tt_h2_conn *c)
{
    if (c->empty_budget < c->cfg.empty_frame_budget)
        c->empty_budget++;
}

/* A stream error (§5.4.2): RST_STREAM, the stream closed, the rest of the
 * current frame skipped when it is on that stream. */
static int stream_error(struct tt_h2_conn *c, uint32_t sid, uint32_t code, const char *desc)
{
    (void)desc;
    if (out_check(c, tt_frame_pack_rst(&c->out, sid, code)))
        return TT_ERR_NOMEM;
    if (c->rx_state == RX_FRAME && c->fh.sid == sid) {
        if (c->fh.type == TT_H2_DATA && !c->rx_discard) {
            conn_credit(c, c->rx_uncredited);
            c->rx_uncredited = 0;
        }
        c->rx_discard = 1;
        if (c->hb_active && c->hb_sid == sid)
            c->hb_mode = HB_DROP;
    }
    /* Looked up only now: a credit that could not be queued fails the
     * connection, which frees every stream. */
    if (c->dead)
        return TT_ERR_CONN;
    struct h2_stream *s = st_find(c, sid);
    if (s)
        stream_close(c, s, code, TT_H2_CLOSE_RST_SENT, CL_RST_SENT);
    else if (!closed_how(c, sid))
        closed_add(c, sid, CL_RST_SENT);
    return spend_rst(c);
}

static void fail_conn(struct tt_h2_conn *c, uint32_t code, const char *desc, int send_goaway)
{
    if (c->dead)
        return;
    c->dead = 1;
    c->rx_state = RX_DEAD;
    c->has_err = 1;
    c->err_code = code;
    c->err_desc = desc;
    if (send_goaway && !c->transport_gone) {
        /* Best effort: if even this does not fit, the driver closes anyway. */
        if (tt_frame_pack_goaway(&c->out, c->last_processed, code, desc, desc ? strlen(desc) : 0) ==
            0)
            c->goaway_sent = 1;
    }
    close_all(c, code, TT_H2_CLOSE_CONN);
}

/* --- Header validation (RFC 9113 §8.2, §8.3) ----------------------------- */

enum { HV_REQUEST = 0, HV_RESPONSE, HV_TRAILERS };

static int iov_eq(const char *p, uint32_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static int64_t parse_length(const char *p, uint32_t n)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static int iov_caseeq(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++) {
        uint8_t x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (uint8_t)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (uint8_t)(y + 32);
        if (x != y)
            return 0;
    }
    return 1;
}

/* 1 for the bytes a field name may hold (RFC 9113 §8.2.1: no controls, SP,
 * uppercase, DEL, non-ASCII, and no colon outside a pseudo-header's first
 * byte), by table: this runs over every byte of every name. */
static const uint8_t hv_name_ok[256] = {
#define HV_R4(c) [c] = 1, [c + 1] = 1, [c + 2] = 1, [c + 3] = 1
    HV_R4(0x21), HV_R4(0x25), HV_R4(0x29), HV_R4(0x2d), HV_R4(0x31), HV_R4(0x35), [0x39] = 1,
    /* 0x3a ':' is not */ HV_R4(0x3b), [0x3f] = 1, [0x40] = 1, /* 'A'..'Z' are not */
    HV_R4(0x5b), HV_R4(0x5f), HV_R4(0x63), HV_R4(0x67), HV_R4(0x6b), HV_R4(0x6f), HV_R4(0x73),
    HV_R4(0x77), HV_R4(0x7b) /* to 0x7e; 0x7f DEL is not */
#undef HV_R4
};

/* 1 when the value holds NUL, CR or LF (§8.2.1).  Eight bytes at a time:
 * a word with no byte below 0x0e holds none of them (the usual case; a tab
 * is the one such byte a value may hold, and sends its word to the slow
 * check). */
static int hv_value_bad(const uint8_t *v, uint32_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint32_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t x;
        memcpy(&x, v + k, 8);
        if (((x - ones * 0x0e) & ~x & highs) == 0)
            continue;
        for (uint32_t j = k; j < k + 8; j++)
            if (v[j] == 0 || v[j] == '\r' || v[j] == '\n')
                return 1;
    }
    for (; k < n; k++)
        if (v[k] <= '\r' && (v[k] == 0 || v[k] == '\r' || v[k] == '\n'))
            return 1;
    return 0;
}

/* Validates one header list and fills `h` (kind set by the caller from the
 * stream's state; a response may become INFORMATIONAL).  `rx`: the list was
 * received, so the rules that protect routing from a peer apply too (one
 * unambiguous authority); lists we send keep the rules of valid HTTP/2.
 * Returns NULL, or a static reason the list is malformed. */
static const char *hv_validate(const struct tt_header *hdrs, size_t n, int hv, int rx,
                               struct tt_h2_headers *h)
{
    tt_iov host = {NULL, 0};
    int has_host = 0;
    int regular = 0;
    unsigned seen = 0;
    h->status = 0;
    h->content_length = -1;
    h->method = h->scheme = h->authority = h->path = h->protocol = (tt_iov){NULL, 0};
    for (size_t i = 0; i < n; i++) {
        const struct tt_header *f = &hdrs[i];
        const char *nm = f->name;
        const uint8_t *v = (const uint8_t *)f->value;
        if (f->name_len == 0)
            return "empty header name";
        /* §8.2.1: no NUL, CR, LF in values, no whitespace at either end. */
        if (hv_value_bad(v, f->value_len))
            return "CR, LF or NUL in header value";
        if (f->value_len &&
            (v[0] == ' ' || v[0] == '\t' || v[f->value_len - 1] == ' ' || v[f->value_len - 1] == '\t'))
            return "whitespace around header value";
        if (nm[0] == ':') {
            /* §8.3: pseudo-headers first, known, once, none in trailers. */
            if (regular)
                return "pseudo-header after regular header";
            if (hv == HV_TRAILERS)
                return "pseudo-header in trailers";
            tt_iov *slot = NULL;
            unsigned bit = 0;
            tt_iov val = {v, f->value_len};
            if (hv == HV_REQUEST) {
                if (iov_eq(nm, f->name_len, ":method"))
                    slot = &h->method, bit = 1;
                else if (iov_eq(nm, f->name_len, ":scheme"))
                    slot = &h->scheme, bit = 2;
                else if (iov_eq(nm, f->name_len, ":authority"))
                    slot = &h->authority, bit = 4;
                else if (iov_eq(nm, f->name_len, ":path"))
                    slot = &h->path, bit = 8;
                else if (iov_eq(nm, f->name_len, ":protocol"))
                    slot = &h->protocol, bit = 16;
            } else if (iov_eq(nm, f->name_len, ":status")) {
                bit = 32;
            }
            if (!bit)
                return "unknown pseudo-header";
            if (seen & bit)
                return "repeated pseudo-header";
            seen |= bit;
            if (slot)
                *slot = val;
            else {
                if (f->value_len != 3 || v[0] < '1' || v[0] > '9' || v[1] < '0' || v[1] > '9' ||
                    v[2] < '0' || v[2] > '9')
                    return "bad :status";
                h->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
            }
            continue;
        }
        regular = 1;
        for (uint32_t k = 0; k < f->name_len; k++)
            if (!hv_name_ok[(uint8_t)nm[k]])
                return "invalid character in header name";
        /* One lookup sorts out the names the rules below care about; most
         * fields are none of them. */
        const struct tt_token *tok = tt_token_find(nm, f->name_len);
        if (!tok)
            continue;
        if (tok->flags & TT_TOKF_HOP_BY_HOP) {
            /* §8.2.2: connection-specific fields make the message
             * malformed; TE alone may appear, and only as "trailers". */
            if (tok->id != TT_TOK_TE)
                return "connection-specific header field";
            if (!iov_eq(f->value, f->value_len, "trailers"))
                return "te other than trailers";
        } else if (tok->id == TT_TOK_HOST) {
            if (has_host && !iov_caseeq(host.base, host.len, v, f->value_len))
                return "conflicting host";
            host = (tt_iov){v, f->value_len};
            has_host = 1;
        } else if (tok->id == TT_TOK_CONTENT_LENGTH) {
            int64_t cl = parse_length(f->value, f->value_len);
            if (cl < 0)
                return "bad content-length";
            if (h->content_length >= 0 && h->content_length != cl)
                return "conflicting content-length";
            h->content_length = cl;
        }
    }
    if (hv == HV_REQUEST) {
        if (!(seen & 1))
            return "missing :method";
        int connect = iov_eq((const char *)h->method.base, (uint32_t)h->method.len, "CONNECT");
        if ((seen & 16) && h->protocol.len == 0)
            return "empty :protocol"; /* RFC 8441 §4: an Upgrade token, never empty */
        if (connect && !(seen & 16)) {
            /* §8.5 */
            if (!(seen & 4))
                return "CONNECT without :authority";
            if (seen & (2 | 8))
                return "CONNECT with :scheme or :path";
        } else {
            if ((seen & 16) && !connect)
                return ":protocol without CONNECT";
            if (!(seen & 2) || !(seen & 8))
                return "missing :scheme or :path";
            if (h->path.len == 0)
                return "empty :path";
            int http = iov_eq((const char *)h->scheme.base, (uint32_t)h->scheme.len, "http") ||
                       iov_eq((const char *)h->scheme.base, (uint32_t)h->scheme.len, "https");
            if (http && h->path.base[0] != '/' &&
                !(h->path.len == 1 && h->path.base[0] == '*' &&
                  iov_eq((const char *)h->method.base, (uint32_t)h->method.len, "OPTIONS")))
                return "bad :path";
            /* §8.3.1: when :authority and host are both present they
             * must name the same thing, or a proxy routing on one and an
             * origin reading the other would disagree; no userinfo.  A
             * request with neither (which the sender MUST NOT make) is
             * still accepted: it cannot be routed two ways, and p forwards
             * HTTP/1.0 requests that have no Host that way. */
            if (rx && http) {
                if ((seen & 4) && has_host &&
                    !iov_caseeq(h->authority.base, h->authority.len, host.base, host.len))
                    return "host differs from :authority";
                if ((seen & 4) && memchr(h->authority.base, '@', h->authority.len))
                    return "userinfo in :authority";
            }
        }
        h->kind = TT_H2_HDRS_REQUEST;
    } else if (hv == HV_RESPONSE) {
        if (!(seen & 32))
            return "missing :status";
        if (h->status == 101)
            return "101 is not allowed in HTTP/2"; /* §8.6 */
        h->kind = h->status < 200 ? TT_H2_HDRS_INFORMATIONAL : TT_H2_HDRS_RESPONSE;
    } else {
        h->kind = TT_H2_HDRS_TRAILERS;
    }
    return NULL;
}

/* --- Receiving: frame handlers ------------------------------------------- */

struct rx_handler {
    int (*begin)(struct tt_h2_conn *c);
    int (*prefix)(struct tt_h2_conn *c);
    int (*body)(struct tt_h2_conn *c, const uint8_t *p, size_t n);
    int (*end)(struct tt_h2_conn *c);
};

/* Answers a frame that names a stream we hold no record of (§5.1).
 * Returns 0 (the frame is to be ignored; rx_discard set) or an error. */
static int rx_no_stream(struct tt_h2_conn *c, uint32_t sid, int may_be_late)
{
    c->rx_discard = 1;
    if (is_idle(c, sid))
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "frame on an idle stream");
    if (ignored_after_goaway(c, sid))
        return 0;
    uint8_t how = closed_how(c, sid);
    if (how == CL_RST_SENT || how == CL_IGNORED)
        return 0; /* §5.1: frames in flight when we reset are ignored */
    if (may_be_late)
        return 0;
    if (how == 0 && is_local_sid(c, sid))
        /* One of ours, closed so long ago that the ring forgot how: most
         * likely frames in flight after our RST_STREAM while many other
         * streams closed.  §5.1 lets us stop telling them apart; killing
         * the connection (and every other stream) for them would not do. */
        return 0;
    if (how == CL_NORMAL)
        /* §5.1 closed: frames after END_STREAM both ways. */
        return conn_error(c, TT_H2_STREAM_CLOSED, "frame on a closed stream");
    return stream_error(c, sid, TT_H2_STREAM_CLOSED, "frame on a closed stream");
}

static int remote_end(struct tt_h2_conn *c, struct h2_stream *s)
{
    if (s->state == ST_HALF_LOCAL) {
        if (c->rst_budget < c->cfg.rst_budget)
            c->rst_budget++;
        stream_close(c, s, TT_H2_NO_ERROR, 0, CL_NORMAL);
    } else {
        s->state = ST_HALF_REMOTE;
    }
    return 0;
}

static int local_end(struct tt_h2_conn *c, struct h2_stream *s)
{
    if (s->state == ST_HALF_REMOTE) {
        if (c->rst_budget < c->cfg.rst_budget)
            c->rst_budget++;
        stream_close(c, s, TT_H2_NO_ERROR, 0, CL_NORMAL);
    } else {
        s->state = ST_HALF_LOCAL;
    }
    return 0;
}

/* DATA (§6.1) */
/* Checks DATA against content-length (§8.1.1) before the user sees it. */
static int data_length_ok(const struct h2_stream *s, uint64_t more, int end)
{
    /* §8.1.1: a response to HEAD, a 204 or a 304 has no content whatever
     * its content-length says (RFC 9110 §6.4.1, §8.6). */
    if (s->no_length_check)
        return s->data_received + more == 0;
    if (s->content_length < 0)
        return 1;
    uint64_t total = s->data_received + more;
    if (total > (uint64_t)s->content_length)
        return 0;
    return !end || total == (uint64_t)s->content_length;
}

/* Once the data length of the frame is known (after Pad Length), checks it
 * against content-length as a whole, so that the outcome does not depend
 * on how the input was split. */
static int rx_data_known(struct tt_h2_conn *c)
{
    if (c->rx_discard)
        return 0;
    struct h2_stream *s = st_find(c, c->fh.sid);
    uint32_t dlen = c->rx_body_end - c->rx_prefix;
    if (s && !data_length_ok(s, dlen, (c->fh.flags & TT_FLAG_END_STREAM) != 0))
        return stream_error(c, s->id, TT_H2_PROTOCOL_ERROR, "DATA does not match content-length");
    return 0;
}

static int rx_data_begin(struct tt_h2_conn *c)
{
    uint32_t len = c->fh.length;
    c->rx_uncredited = len;
    c->rx_end_sent = 0;
    if ((int64_t)len > c->recv_window)
        return conn_error(c, TT_H2_FLOW_CONTROL_ERROR, "connection receive window exceeded");
    c->recv_window -= len;
    if (len == 0 && !(c->fh.flags & TT_FLAG_END_STREAM)) {
        int rc = spend_empty(c);
        if (rc)
            return rc;
    }
    struct h2_stream *s = st_find(c, c->fh.sid);
    int rc = 0;
    if (!s)
        rc = rx_no_stream(c, c->fh.sid, 0);
    else if (s->state == ST_HALF_REMOTE)
        rc = stream_error(c, s->id, TT_H2_STREAM_CLOSED, "DATA after END_STREAM");
    else if (!s->got_headers)
        rc = stream_error(c, s->id, TT_H2_PROTOCOL_ERROR, "DATA before HEADERS"); /* §8.1 */
    else if ((int64_t)len > s->recv_window)
        rc = stream_error(c, s->id, TT_H2_FLOW_CONTROL_ERROR, "stream receive window exceeded");
    else
        s->recv_window -= len;
    if (c->rx_discard && c->rx_uncredited) {
        conn_credit(c, c->rx_uncredited);
        c->rx_uncredited = 0;
    }
    if (!rc && !(c->fh.flags & TT_FLAG_PADDED))
        rc = rx_data_known(c);
    return rc;
}

static int rx_data_prefix(struct tt_h2_conn *c)
{
    if (!(c->fh.flags & TT_FLAG_PADDED))
        return 0;
    uint32_t pad = c->rx_small[0];
    if (pad > c->fh.length - 1)
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "padding exceeds the payload");
    c->rx_body_end = c->fh.length - pad;
    if (c->rx_discard)
        return 0;
    /* Padding is flow-controlled but never reaches the user (§6.1): give
     * it back at once. */
    struct h2_stream *s = st_find(c, c->fh.sid);
    c->rx_uncredited -= 1 + pad;
    conn_credit(c, 1 + pad);
    if (s)
        stream_credit(c, s, 1 + pad);
    return rx_data_known(c);
}

static int rx_data_body(struct tt_h2_conn *c, const uint8_t *p, size_t n)
{
    struct h2_stream *s = st_find(c, c->fh.sid);
    if (!s) { /* reset by the user during an earlier chunk */
        conn_credit(c, c->rx_uncredited);
        c->rx_uncredited = 0;
        c->rx_discard = 1;
        return 0;
    }
    int end = (c->fh.flags & TT_FLAG_END_STREAM) && c->rx_pos + n == c->rx_body_end &&
              c->rx_body_end == c->fh.length;
    if (!data_length_ok(s, n, end))
        return stream_error(c, s->id, TT_H2_PROTOCOL_ERROR, "DATA does not match content-length");
    if (n)
        refill(c);
    s->data_received += n;
    s->recv_pending += n;
    s->conn_owed += n;
    c->recv_pending += n;
    c->rx_uncredited -= (uint32_t)n;
    c->rx_end_sent = (uint8_t)end;
    uint32_t sid = s->id;
    if (c->cb.on_data && c->cb.on_data(c->ud, sid, s->sud, p, n, end))
        return TT_ERR_CALLBACK;
    if (c->dead)
        return TT_ERR_CONN;
    if (end && (s = st_find(c, sid)) != NULL)
        return remote_end(c, s);
    return 0;
}

static int rx_data_end(struct tt_h2_conn *c)
{
    if (!(c->fh.flags & TT_FLAG_END_STREAM) || c->rx_end_sent)
        return 0;
    struct h2_stream *s = st_find(c, c->fh.sid);
    if (!s)
        return 0;
    if (!data_length_ok(s, 0, 1))
        return stream_error(c, s->id, TT_H2_PROTOCOL_ERROR, "DATA does not match content-length");
    uint32_t sid = s->id;
    if (c->cb.on_data && c->cb.on_data(c->ud, sid, s->sud, (const uint8_t *)"", 0, 1))
        return TT_ERR_CALLBACK;
    if (c->dead)
        return TT_ERR_CONN;
    if ((s = st_find(c, sid)) != NULL)
        return remote_end(c, s);
    return 0;
}

/* HEADERS (§6.2) and CONTINUATION (§6.10) */
static int rx_headers_begin(struct tt_h2_conn *c)
{
    uint32_t sid = c->fh.sid;
    c->hb_active = 1;
    c->hb_sid = sid;
    c->hb_conts = 0;
    c->hb_mode = HB_DELIVER;
    c->hb_new = 0;
    c->hb_end_stream = (c->fh.flags & TT_FLAG_END_STREAM) != 0;
    if (c->fh.length == 0 && !(c->fh.flags & TT_FLAG_END_HEADERS)) {
        int rc = spend_empty(c);
        if (rc)
            return rc;
    }
    struct h2_stream *s = st_find(c, sid);
    if (s) {
        if (s->state == ST_HALF_REMOTE) {
            c->hb_mode = HB_DROP;
            return stream_error(c, sid, TT_H2_STREAM_CLOSED, "HEADERS after END_STREAM");
        }
        return 0;
    }
    if (is_local_sid(c, sid) ? is_idle(c, sid) : c->role == TT_H2_CLIENT)
        /* An id of ours we never opened, or a server opening a stream
         * (only push could, and push is off: §8.4). */
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "HEADERS on an idle stream");
    if (is_local_sid(c, sid) || sid <= c->max_peer_sid) {
        /* Closed: the block is still decoded, then dropped.  A peer id we
         * have no memory of is most likely one it skipped and now reuses
         * (§5.1.1); every id of ours below next_local_sid was really used,
         * so rx_no_stream treats a forgotten one as closed. */
        c->hb_mode = HB_DROP;
        if (!is_local_sid(c, sid) && !closed_how(c, sid) && !ignored_after_goaway(c, sid))
            return conn_error(c, TT_H2_PROTOCOL_ERROR, "HEADERS on a stream id already used");
        return rx_no_stream(c, sid, 0);
    }
    /* §5.1.1: a new stream, id greater than every one before it. */
    c->max_peer_sid = sid;
    c->hb_new = 1;
    if (c->goaway_sent) {
        /* §6.8: streams above our last-stream-id are ignored. */
        c->hb_mode = HB_DROP;
        closed_add(c, sid, CL_IGNORED);
    }
    return 0;
}

static int rx_headers_prefix(struct tt_h2_conn *c)
{
    uint32_t off = 0, pad = 0;
    if (c->fh.flags & TT_FLAG_PADDED) {
        pad = c->rx_small[off++];
        if (pad > c->fh.length - c->rx_prefix)
            return conn_error(c, TT_H2_PROTOCOL_ERROR, "padding exceeds the payload");
        c->rx_body_end = c->fh.length - pad;
    }
    if (c->fh.flags & TT_FLAG_PRIORITY) {
        /* §5.3.1: a stream cannot depend on itself. */
        if ((tt_get32(c->rx_small + off) & 0x7fffffffu) == c->fh.sid && c->hb_mode == HB_DELIVER) {
            int rc = stream_error(c, c->fh.sid, TT_H2_PROTOCOL_ERROR, "stream depends on itself");
            c->rx_discard = 0;
            c->hb_mode = HB_DROP;
            return rc;
        }
    }
    return 0;
}

static int rx_block_body(struct tt_h2_conn *c, const uint8_t *p, size_t n)
{
    if (tt_buf_len(&c->hblock) + n > c->cfg.max_header_block)
        return conn_error(c, TT_H2_ENHANCE_YOUR_CALM, "header block too large"); /* CVE-2024-27316 */
    if (n && tt_buf_append(&c->hblock, p, n) < 0)
        return TT_ERR_NOMEM;
    return 0;
}

static int hb_scratch(struct tt_h2_conn *c)
{
    if (c->hd_hdrs)
        return 0;
    size_t cap = c->cfg.max_header_list_size / 32 + 1;
    c->hd_hdrs = tt_mem_alloc(cap * sizeof(struct tt_header));
    c->hd_scratch = tt_mem_alloc(c->cfg.max_header_list_size + 1);
    if (!c->hd_hdrs || !c->hd_scratch) {
        free_scratch(c);
        return TT_ERR_NOMEM;
    }
    c->hd_hdrs_cap = cap;
    return 0;
}

static int hb_deliver(struct tt_h2_conn *c, struct tt_hpack_out *o, int too_large)
{
    uint32_t sid = c->hb_sid;
    struct tt_h2_headers h;
    memset(&h, 0, sizeof(h));
    h.end_stream = c->hb_end_stream;
    struct h2_stream *s = NULL;
    int hv;
    if (c->hb_new) {
        /* §5.1.2: REFUSED_STREAM past our SETTINGS_MAX_CONCURRENT_STREAMS;
         * safe for the peer to retry. */
        if (c->n_peer >= c->cfg.max_concurrent_streams)
            return stream_error(c, sid, TT_H2_REFUSED_STREAM, "too many concurrent streams");
        hv = HV_REQUEST;
    } else {
        s = st_find(c, sid);
        if (!s)
            return 0;
        if (c->role == TT_H2_CLIENT && !s->got_headers)
            hv = HV_RESPONSE;
        else
            hv = HV_TRAILERS;
    }
    const char *why = NULL;
    if (too_large && !(hv == HV_REQUEST && c->cfg.deliver_too_large))
        return stream_error(c, sid, TT_H2_PROTOCOL_ERROR, "header list too large");
    if (too_large) {
        /* What was decoded is not a whole list: none of it is passed on. */
        h.kind = TT_H2_HDRS_REQUEST;
        h.too_large = 1;
        h.content_length = -1;
        o->count = 0;
    } else {
        why = hv_validate(o->hdrs, o->count, hv, 1, &h);
        /* RFC 8441 §3: :protocol is only for a server that offered it. */
        if (!why && hv == HV_REQUEST && h.protocol.len && !c->cfg.enable_connect_protocol)
            why = ":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL";
    }
    if (!why && hv == HV_TRAILERS && !h.end_stream)
        why = "trailers without END_STREAM"; /* §8.1 */
    if (!why && h.kind == TT_H2_HDRS_INFORMATIONAL && h.end_stream)
        why = "1xx response with END_STREAM";
    if (why)
        return stream_error(c, sid, TT_H2_PROTOCOL_ERROR, why); /* §8.1.1 malformed */
    h.hdrs = o->hdrs;
    h.count = o->count;
    if (c->hb_new) {
        s = tt_mem_calloc(1, sizeof(*s));
        if (!s)
            return TT_ERR_NOMEM;
        s->id = sid;
        s->state = ST_OPEN;
        s->send_window = c->remote.initial_window_size;
        s->recv_window = c->rx_initial_window;
        if (st_insert(c, s) < 0) {
            tt_mem_free(s);
            return TT_ERR_NOMEM;
        }
        c->last_processed = sid;
        refill(c);
    }
    if (h.kind != TT_H2_HDRS_INFORMATIONAL && h.kind != TT_H2_HDRS_TRAILERS) {
        s->got_headers = 1;
        s->content_length = h.content_length;
        /* §8.1.1: a response to HEAD, or a 304, carries no body whatever
         * its content-length says (RFC 9110 §8.6). */
        if (h.kind == TT_H2_HDRS_RESPONSE && (s->req_head || h.status == 304 || h.status == 204))
            s->no_length_check = 1;
    }
    if (h.end_stream && s->content_length >= 0 && !s->no_length_check &&
        s->data_received != (uint64_t)s->content_length)
        return stream_error(c, sid, TT_H2_PROTOCOL_ERROR, "DATA does not match content-length");
    if (c->cb.on_headers && c->cb.on_headers(c->ud, sid, s->sud, &h))
        return TT_ERR_CALLBACK;
    if (c->dead)
        return TT_ERR_CONN;
    if (h.end_stream && (s = st_find(c, sid)) != NULL)
        return remote_end(c, s);
    return 0;
}

/* END_HEADERS: decode the block (always: the HPACK context must stay in step
 * with the peer's even for streams we drop) and deliver it. */
static int hb_complete(struct tt_h2_conn *c)
{
    c->hb_active = 0;
    int rc = hb_scratch(c);
    if (rc)
        return rc;
    struct tt_hpack_out o;
    memset(&o, 0, sizeof(o));
    o.hdrs = c->hd_hdrs;
    o.hdrs_cap = c->hd_hdrs_cap;
    o.scratch = c->hd_scratch;
    o.scratch_cap = c->cfg.max_header_list_size + 1;
    o.max_list_size = c->cfg.max_header_list_size;
    rc = tt_hpack_decode_block(&c->dec, buf_view(&c->hblock), tt_buf_len(&c->hblock), &o);
    /* Emptied but kept while streams are open (a request each would
     * otherwise cost a malloc and a free); freed below when idle. */
    tt_buf_consume(&c->hblock, tt_buf_len(&c->hblock));
    if (rc == TT_ERR_NOMEM)
        return rc;
    if (rc < 0 && rc != TT_ERR_HEADER_TOO_LARGE)
        return conn_error(c, TT_H2_COMPRESSION_ERROR, "HPACK decoding failed");
    if (c->hb_mode == HB_DELIVER)
        rc = hb_deliver(c, &o, rc == TT_ERR_HEADER_TOO_LARGE);
    else
        rc = 0;
    return rc;
}

static int rx_headers_end(struct tt_h2_conn *c)
{
    if (c->fh.flags & TT_FLAG_END_HEADERS)
        return hb_complete(c);
    return 0;
}

static int rx_cont_begin(struct tt_h2_conn *c)
{
    if (!c->hb_active || c->fh.sid != c->hb_sid)
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "unexpected CONTINUATION");
    if (++c->hb_conts > c->cfg.max_continuations)
        return conn_error(c, TT_H2_ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
    if (c->fh.length == 0 && !(c->fh.flags & TT_FLAG_END_HEADERS))
        return spend_empty(c);
    return 0;
}

/* PRIORITY (§6.3): parsed and ignored (§5.3.2), except self-dependency. */
static int rx_priority_end(struct tt_h2_conn *c)
{
    int rc = spend_empty(c);
    if (rc)
        return rc;
    if ((tt_get32(c->rx_small) & 0x7fffffffu) != c->fh.sid)
        return 0;
    /* RST_STREAM may not name an idle stream (§6.4): escalate there. */
    if (st_find(c, c->fh.sid))
        return stream_error(c, c->fh.sid, TT_H2_PROTOCOL_ERROR, "stream depends on itself");
    if (is_idle(c, c->fh.sid))
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "stream depends on itself");
    return 0;
}

/* RST_STREAM (§6.4) */
static int rx_rst_end(struct tt_h2_conn *c)
{
    uint32_t sid = c->fh.sid;
    struct h2_stream *s = st_find(c, sid);
    if (!s) {
        if (is_idle(c, sid))
            return conn_error(c, TT_H2_PROTOCOL_ERROR, "RST_STREAM on an idle stream");
        return 0;
    }
    uint32_t code = tt_get32(c->rx_small);
    int answered = s->answer_end && c->out_written >= s->answer_end;
    stream_close(c, s, code, TT_H2_CLOSE_RST_RECEIVED, CL_RST_RECV);
    return answered ? 0 : spend_rst(c);
}

/* SETTINGS (§6.5) */
static int rx_settings_begin(struct tt_h2_conn *c)
{
    if (c->fh.flags & TT_FLAG_ACK)
        return 0;
    if (c->fh.length / 6 > c->cfg.max_settings_entries)
        return conn_error(c, TT_H2_ENHANCE_YOUR_CALM, "too many SETTINGS entries");
    if (c->fh.length == 0) {
        int rc = spend_empty(c);
        if (rc)
            return rc;
    }
    c->rx_settings = c->remote;
    c->rx_set_len = 0;
    return 0;
}

static int rx_settings_body(struct tt_h2_conn *c, const uint8_t *p, size_t n)
{
    while (n) {
        size_t take = 6 - c->rx_set_len;
        if (take > n)
            take = n;
        memcpy(c->rx_set + c->rx_set_len, p, take);
        c->rx_set_len += (uint8_t)take;
        p += take;
        n -= take;
        if (c->rx_set_len < 6)
            break;
        c->rx_set_len = 0;
        struct tt_setting st;
        struct tt_frame_err e;
        tt_frame_setting(c->rx_set, 0, &st);
        if (tt_frame_check_setting(&st, c->role == TT_H2_CLIENT, &e) < 0)
            return conn_error(c, e.code, e.desc);
        struct h2_peer_settings *r = &c->rx_settings;
        switch (st.id) {
        case TT_SETTINGS_HEADER_TABLE_SIZE:
            r->header_table_size = st.value;
            break;
        case TT_SETTINGS_MAX_CONCURRENT_STREAMS:
            r->max_concurrent_streams = st.value;
            break;
        case TT_SETTINGS_INITIAL_WINDOW_SIZE:
            r->initial_window_size = st.value;
            break;
        case TT_SETTINGS_MAX_FRAME_SIZE:
            r->max_frame_size = st.value;
            break;
        case TT_SETTINGS_MAX_HEADER_LIST_SIZE:
            r->max_header_list_size = st.value;
            break;
        case TT_SETTINGS_ENABLE_CONNECT_PROTOCOL:
            /* RFC 8441 §3: once 1, a later 0 is a PROTOCOL_ERROR. */
            if (c->remote.enable_connect_protocol && !st.value)
                return conn_error(c, TT_H2_PROTOCOL_ERROR,
                                  "SETTINGS_ENABLE_CONNECT_PROTOCOL went back to 0");
            r->enable_connect_protocol = st.value;
            break;
        default:
            break; /* §6.5.2: unknown settings are ignored */
        }
    }
    return 0;
}

static int on_settings_ack(struct tt_h2_conn *c)
{
    if (c->settings_unacked == 0)
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "SETTINGS ACK without SETTINGS");
    c->settings_unacked--;
    /* Our settings are now in force at the peer (§6.5.3). */
    if (c->cfg.header_table_size != 4096 &&
        tt_hpack_decoder_set_max_table_size(&c->dec, c->cfg.header_table_size) < 0)
        return TT_ERR_NOMEM;
    int64_t delta = (int64_t)c->cfg.initial_window_size - c->rx_initial_window;
    if (delta) {
        c->rx_initial_window = c->cfg.initial_window_size;
        for (struct h2_stream *s = c->list; s; s = s->next)
            s->recv_window += delta;
    }
    return 0;
}

static int rx_settings_end(struct tt_h2_conn *c)
{
    if (c->fh.flags & TT_FLAG_ACK)
        return on_settings_ack(c);
    struct h2_peer_settings *n = &c->rx_settings;
    /* §6.9.2: the change applies to every stream's send window, which may
     * go negative; past 2^31-1 is a connection FLOW_CONTROL_ERROR. */
    int64_t delta = (int64_t)n->initial_window_size - c->remote.initial_window_size;
    if (delta) {
        for (struct h2_stream *s = c->list; s; s = s->next)
            if (s->send_window + delta > TT_H2_MAX_WINDOW)
                return conn_error(c, TT_H2_FLOW_CONTROL_ERROR, "stream window overflow");
        for (struct h2_stream *s = c->list; s; s = s->next)
            s->send_window += delta;
    }
    if (n->header_table_size != c->remote.header_table_size || !c->remote_settings_seen)
        tt_hpack_encoder_set_peer_max(&c->enc, n->header_table_size);
    c->remote = *n;
    c->remote_settings_seen = 1;
    int rc = queue_ack(c, 0, 0);
    if (rc)
        return rc;
    if (c->cb.on_remote_settings)
        c->cb.on_remote_settings(c->ud);
    if (c->dead)
        return TT_ERR_CONN;
    /* Streams' windows grew: one connection-level signal tells the driver
     * to retry its blocked streams (a per-stream walk could not survive
     * callbacks that close streams). */
    if (delta > 0 && c->cb.on_window_update) {
        c->cb.on_window_update(c->ud, 0, NULL);
        if (c->dead)
            return TT_ERR_CONN;
    }
    return 0;
}

static int rx_push_begin(struct tt_h2_conn *c)
{
    /* §8.4: we advertise SETTINGS_ENABLE_PUSH=0 as a client, and a client
     * never pushes. */
    return conn_error(c, TT_H2_PROTOCOL_ERROR, "PUSH_PROMISE with push disabled");
}

/* PING (§6.7) */
static int rx_ping_end(struct tt_h2_conn *c)
{
    uint64_t opaque = (uint64_t)tt_get32(c->rx_small) << 32 | tt_get32(c->rx_small + 4);
    if (c->fh.flags & TT_FLAG_ACK) {
        if (c->cb.on_ping_ack)
            c->cb.on_ping_ack(c->ud, opaque);
        return c->dead ? TT_ERR_CONN : 0;
    }
    return queue_ack(c, 1, opaque);
}

/* GOAWAY (§6.8) */
static int rx_goaway_body(struct tt_h2_conn *c, const uint8_t *p, size_t n)
{
    size_t room = sizeof(c->dbg) - c->dbg_len;
    if (n > room)
        n = room;
    memcpy(c->dbg + c->dbg_len, p, n);
    c->dbg_len += (uint32_t)n;
    return 0;
}

static int rx_goaway_begin(struct tt_h2_conn *c)
{
    c->dbg_len = 0;
    return 0;
}

static int rx_goaway_end(struct tt_h2_conn *c)
{
    uint32_t last = tt_get32(c->rx_small) & 0x7fffffffu;
    uint32_t code = tt_get32(c->rx_small + 4);
    /* The id may only go down (§6.8); keep the least. */
    if (c->goaway_recv_last != UINT32_MAX && last > c->goaway_recv_last)
        last = c->goaway_recv_last;
    c->goaway_recv_last = last;
    if (c->cb.on_goaway) {
        tt_iov dbg = {c->dbg, c->dbg_len};
        c->cb.on_goaway(c->ud, last, code, dbg);
    }
    if (c->dead)
        return TT_ERR_CONN;
    /* Our streams above `last` were never processed: safe to retry. */
    for (struct h2_stream *s = c->list, *next; s; s = next) {
        next = s->next;
        if (s->local && s->id > last) {
            stream_close(c, s, TT_H2_REFUSED_STREAM, TT_H2_CLOSE_GOAWAY, CL_IGNORED);
            next = c->list; /* the user may have closed others meanwhile */
        }
    }
    return c->dead ? TT_ERR_CONN : 0;
}

/* WINDOW_UPDATE (§6.9) */
static int rx_wu_end(struct tt_h2_conn *c)
{
    uint32_t inc = tt_get32(c->rx_small) & 0x7fffffffu;
    uint32_t sid = c->fh.sid;
    if (inc == 0) {
        int rc = spend_empty(c);
        if (rc)
            return rc;
    }
    if (sid == 0) {
        if (inc == 0)
            return conn_error(c, TT_H2_PROTOCOL_ERROR, "WINDOW_UPDATE increment of 0");
        if (c->send_window + inc > TT_H2_MAX_WINDOW)
            return conn_error(c, TT_H2_FLOW_CONTROL_ERROR, "connection window overflow");
        c->send_window += inc;
        if (c->send_window > 0 && c->cb.on_window_update)
            c->cb.on_window_update(c->ud, 0, NULL);
        return c->dead ? TT_ERR_CONN : 0;
    }
    struct h2_stream *s = st_find(c, sid);
    if (!s)
        return rx_no_stream(c, sid, 1);
    if (inc == 0)
        return stream_error(c, sid, TT_H2_PROTOCOL_ERROR, "WINDOW_UPDATE increment of 0");
    if (s->send_window + inc > TT_H2_MAX_WINDOW)
        return stream_error(c, sid, TT_H2_FLOW_CONTROL_ERROR, "stream window overflow");
    s->send_window += inc;
    if (s->send_window > 0 && c->cb.on_window_update)
        c->cb.on_window_update(c->ud, sid, s->sud);
    return c->dead ? TT_ERR_CONN : 0;
}

static int rx_unknown_begin(struct tt_h2_conn *c)
{
    c->rx_discard = 1;
    return spend_empty(c);
}

/* Handlers by frame type (h2o FRAME_HANDLERS style). */
static const struct rx_handler rx_handlers[] = {
    [TT_H2_DATA] = {rx_data_begin, rx_data_prefix, rx_data_body, rx_data_end},
    [TT_H2_HEADERS] = {rx_headers_begin, rx_headers_prefix, rx_block_body, rx_headers_end},
    [TT_H2_PRIORITY] = {NULL, NULL, NULL, rx_priority_end},
    [TT_H2_RST_STREAM] = {NULL, NULL, NULL, rx_rst_end},
    [TT_H2_SETTINGS] = {rx_settings_begin, NULL, rx_settings_body, rx_settings_end},
    [TT_H2_PUSH_PROMISE] = {rx_push_begin, NULL, NULL, NULL},
    [TT_H2_PING] = {NULL, NULL, NULL, rx_ping_end},
    [TT_H2_GOAWAY] = {rx_goaway_begin, NULL, rx_goaway_body, rx_goaway_end},
    [TT_H2_WINDOW_UPDATE] = {NULL, NULL, NULL, rx_wu_end},
    [TT_H2_CONTINUATION] = {rx_cont_begin, NULL, rx_block_body, rx_headers_end},
};
static const struct rx_handler rx_unknown = {rx_unknown_begin, NULL, NULL, NULL};

static const struct rx_handler *rx_handler_of(uint8_t type)
{
    return type < sizeof(rx_handlers) / sizeof(rx_handlers[0]) ? &rx_handlers[type] : &rx_unknown;
}

/* A frame header is complete: generic checks, then the type's begin. */
static int rx_frame_begin(struct tt_h2_conn *c)
{
    struct tt_frame_err e;
    tt_frame_parse_header(c->rx_hbuf, &c->fh);
    c->rx_pos = 0;
    c->rx_discard = 0;
    c->rx_state = RX_FRAME;
    if (c->rx_first && (c->fh.type != TT_H2_SETTINGS || (c->fh.flags & TT_FLAG_ACK)))
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "first frame is not SETTINGS"); /* §3.4 */
    c->rx_first = 0;
    /* §6.10: nothing may come between HEADERS and its CONTINUATIONs. */
    if (c->hb_active && c->fh.type != TT_H2_CONTINUATION)
        return conn_error(c, TT_H2_PROTOCOL_ERROR, "expected CONTINUATION");
    if (tt_frame_check(&c->fh, c->cfg.max_frame_size, &e) < 0) {
        if (e.conn)
            return conn_error(c, e.code, e.desc);
        /* Only PRIORITY of the wrong length gets here.  RST_STREAM may
         * not name an idle stream (§6.4), so there the stream error
         * becomes a connection error (§5.4.1 allows it). */
        c->rx_prefix = 0;
        c->rx_body_end = c->fh.length;
        if (is_idle(c, c->fh.sid))
            return conn_error(c, e.code, e.desc);
        int rc = stream_error(c, c->fh.sid, e.code, e.desc);
        c->rx_discard = 1;
        return rc;
    }
    c->rx_prefix = tt_frame_prefix_len(&c->fh);
    c->rx_body_end = c->fh.length;
    const struct rx_handler *h = rx_handler_of(c->fh.type);
    return h->begin ? h->begin(c) : 0;
}

static int rx_frame_end(struct tt_h2_conn *c)
{
    const struct rx_handler *h = rx_handler_of(c->fh.type);
    c->rx_state = RX_HEAD;
    c->rx_hlen = 0;
    int discard = c->rx_discard;
    c->rx_discard = 0;
    if (c->fh.type == TT_H2_HEADERS || c->fh.type == TT_H2_CONTINUATION)
        discard = 0; /* the block is decoded whatever becomes of the stream */
    if (discard || !h->end)
        return 0;
    return h->end(c);
}

ssize_t tt_h2_recv(struct tt_h2_conn *c, const uint8_t *data, size_t len)
{
    size_t i = 0;
    int rc = 0;
    if (c->dead)
        return TT_ERR_CONN;
    while (i < len || (c->rx_state == RX_FRAME && c->rx_pos == c->fh.length)) {
        if (c->dead)
            return TT_ERR_CONN;
        switch (c->rx_state) {
        case RX_PREFACE: {
            size_t n = H2_PREFACE_LEN - c->rx_hlen;
            if (n > len - i)
                n = len - i;
            if (memcmp(data + i, &H2_PREFACE[c->rx_hlen], n) != 0) {
                conn_error(c, TT_H2_PROTOCOL_ERROR, "bad connection preface");
                return TT_ERR_CONN;
            }
            i += n;
            c->rx_hlen += (uint8_t)n;
            if (c->rx_hlen == H2_PREFACE_LEN) {
                c->rx_hlen = 0;
                c->rx_state = RX_HEAD;
            }
            continue;
        }
        case RX_HEAD: {
            size_t n = TT_FRAME_HEADER_LEN - c->rx_hlen;
            if (n > len - i)
                n = len - i;
            memcpy(c->rx_hbuf + c->rx_hlen, data + i, n);
            i += n;
            c->rx_hlen += (uint8_t)n;
            if (c->rx_hlen == TT_FRAME_HEADER_LEN)
                rc = rx_frame_begin(c);
            break;
        }
        case RX_FRAME: {
            const struct rx_handler *h = rx_handler_of(c->fh.type);
            if (c->rx_pos == c->fh.length) {
                rc = rx_frame_end(c);
                break;
            }
            size_t avail = len - i;
            if (c->rx_pos < c->rx_prefix) {
                size_t n = c->rx_prefix - c->rx_pos;
                if (n > avail)
                    n = avail;
                memcpy(c->rx_small + c->rx_pos, data + i, n);
                i += n;
                c->rx_pos += (uint32_t)n;
                if (c->rx_pos == c->rx_prefix && h->prefix)
                    rc = h->prefix(c);
            } else if (c->rx_pos < c->rx_body_end) {
                size_t n = c->rx_body_end - c->rx_pos;
                if (n > avail)
                    n = avail;
                const uint8_t *p = data + i;
                i += n;
                int skip = c->rx_discard && c->fh.type != TT_H2_HEADERS &&
                           c->fh.type != TT_H2_CONTINUATION;
                if (!skip && h->body)
                    rc = h->body(c, p, n);
                c->rx_pos += (uint32_t)n;
            } else {
                size_t n = c->fh.length - c->rx_pos;
                if (n > avail)
                    n = avail;
                i += n;
                c->rx_pos += (uint32_t)n;
            }
            break;
        }
        default:
            return TT_ERR_CONN;
        }
        if (rc) {
            if (rc == TT_ERR_CALLBACK || rc == TT_ERR_NOMEM)
                fail_conn(c, TT_H2_INTERNAL_ERROR,
                          rc == TT_ERR_CALLBACK ? "callback failed" : "out of memory", 1);
            return rc;
        }
    }
    /* An idle connection keeps no decode scratch (safe here: no callback
     * is running that could still look at decoded headers). */
    if (c->nstreams == 0 && !c->hb_active) {
        free_scratch(c);
        tt_buf_shrink(&c->hblock);
    }
    return (ssize_t)len;
}

/* --- Lifetime ------------------------------------------------------------ */

struct tt_h2_conn *tt_h2_conn_new(enum tt_h2_role role, const struct tt_h2_config *cfg,
                                  const struct tt_h2_callbacks *cbs, void *ud)
{
    struct tt_h2_conn *c = tt_mem_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->role = role;
    if (cfg)
        c->cfg = *cfg;
    else
        tt_h2_config_default(&c->cfg);
    struct tt_h2_config *k = &c->cfg;
    if (k->max_frame_size < TT_H2_MIN_FRAME_SIZE)
        k->max_frame_size = TT_H2_MIN_FRAME_SIZE;
    if (k->max_frame_size > TT_H2_MAX_FRAME_SIZE)
        k->max_frame_size = TT_H2_MAX_FRAME_SIZE;
    if (k->initial_window_size > TT_H2_MAX_WINDOW)
        k->initial_window_size = TT_H2_MAX_WINDOW;
    if (k->connection_window > TT_H2_MAX_WINDOW)
        k->connection_window = TT_H2_MAX_WINDOW;
    if (k->max_pending_acks == 0)
        k->max_pending_acks = 1;
    if (k->max_pending_acks > H2_MAX_ACKS)
        k->max_pending_acks = H2_MAX_ACKS;
    if (cbs)
        c->cb = *cbs;
    c->ud = ud;
    tt_buf_init(&c->out, out_cap(k));
    tt_buf_init(&c->hblock, k->max_header_block);
    c->ack_cap = k->max_pending_acks;
    c->ack_ends = tt_mem_calloc(c->ack_cap, sizeof(uint64_t));
    if (!c->ack_ends)
        goto fail;
    /* The decoder starts at the protocol default; our advertised size takes
     * effect when the peer ACKs it. */
    if (tt_hpack_decoder_init(&c->dec, 4096) < 0)
        goto fail;
    if (tt_hpack_encoder_init(&c->enc, k->encoder_table_size) < 0) {
        tt_hpack_decoder_free(&c->dec);
        goto fail;
    }
    c->remote.header_table_size = 4096;
    c->remote.max_concurrent_streams = UINT32_MAX;
    c->remote.initial_window_size = TT_H2_DEFAULT_WINDOW;
    c->remote.max_frame_size = TT_H2_MIN_FRAME_SIZE;
    c->remote.max_header_list_size = UINT32_MAX;
    /* Until the peer ACKs our SETTINGS it may use the default window. */
    c->rx_initial_window =
        k->initial_window_size > TT_H2_DEFAULT_WINDOW ? k->initial_window_size : TT_H2_DEFAULT_WINDOW;
    c->send_window = TT_H2_DEFAULT_WINDOW;
    c->recv_window = TT_H2_DEFAULT_WINDOW;
    c->conn_window_max =
        k->connection_window > TT_H2_DEFAULT_WINDOW ? k->connection_window : TT_H2_DEFAULT_WINDOW;
    c->next_local_sid = role == TT_H2_CLIENT ? 1 : 2;
    c->goaway_recv_last = UINT32_MAX;
    c->rst_budget = k->rst_budget ? k->rst_budget : 1;
    c->empty_budget = k->empty_frame_budget ? k->empty_frame_budget : 1;
    c->rx_first = 1;
    c->rx_state = role == TT_H2_SERVER ? RX_PREFACE : RX_HEAD;

    /* Preface (client), SETTINGS, connection WINDOW_UPDATE (§3.4). */
    struct tt_setting s[8];
    size_t n = 0;
    if (k->header_table_size != 4096)
        s[n++] = (struct tt_setting){TT_SETTINGS_HEADER_TABLE_SIZE, k->header_table_size};
    if (role == TT_H2_CLIENT)
        s[n++] = (struct tt_setting){TT_SETTINGS_ENABLE_PUSH, 0};
    s[n++] = (struct tt_setting){TT_SETTINGS_MAX_CONCURRENT_STREAMS, k->max_concurrent_streams};
    s[n++] = (struct tt_setting){TT_SETTINGS_INITIAL_WINDOW_SIZE, k->initial_window_size};
    if (k->max_frame_size != TT_H2_MIN_FRAME_SIZE)
        s[n++] = (struct tt_setting){TT_SETTINGS_MAX_FRAME_SIZE, k->max_frame_size};
    s[n++] = (struct tt_setting){TT_SETTINGS_MAX_HEADER_LIST_SIZE, k->max_header_list_size};
    if (role == TT_H2_SERVER && k->enable_connect_protocol)
        s[n++] = (struct tt_setting){TT_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
    if (role == TT_H2_CLIENT && tt_buf_append(&c->out, H2_PREFACE, H2_PREFACE_LEN) < 0)
        goto fail_hpack;
    if (tt_frame_pack_settings(&c->out, s, n) < 0)
        goto fail_hpack;
    c->settings_unacked = 1;
    if (c->conn_window_max > TT_H2_DEFAULT_WINDOW) {
        if (tt_frame_pack_window_update(&c->out, 0, c->conn_window_max - TT_H2_DEFAULT_WINDOW) < 0)
            goto fail_hpack;
        c->recv_window = c->conn_window_max;
    }
    return c;
fail_hpack:
    tt_hpack_decoder_free(&c->dec);
    tt_hpack_encoder_free(&c->enc);
fail:
    tt_mem_free(c->ack_ends);
    tt_buf_free(&c->out);
    tt_mem_free(c);
    return NULL;
}

void tt_h2_conn_free(struct tt_h2_conn *c)
{
    if (!c)
        return;
    while (c->list) {
        struct h2_stream *s = c->list;
        c->list = s->next;
        tt_mem_free(s);
    }
    tt_mem_free(c->tab);
    tt_mem_free(c->ack_ends);
    free_scratch(c);
    tt_buf_free(&c->out);
    tt_buf_free(&c->hblock);
    tt_hpack_decoder_free(&c->dec);
    tt_hpack_encoder_free(&c->enc);
    tt_mem_free(c);
}

size_t tt_h2_pending_output(struct tt_h2_conn *c, tt_iov *out)
{
    if (c->transport_gone) {
        out->base = NULL;
        out->len = 0;
        return 0;
    }
    out->base = buf_view(&c->out);
    out->len = tt_buf_len(&c->out);
    return out->len;
}

void tt_h2_output_consumed(struct tt_h2_conn *c, size_t n)
{
    if (n > tt_buf_len(&c->out))
        n = tt_buf_len(&c->out);
    tt_buf_consume(&c->out, n);
    c->out_written += n;
    /* Idle connections hold no output buffer.  A connection with open
     * streams keeps it: freeing it on every drain made each refill rebuild
     * it from 4 KiB (page faults and copies on every doubling). */
    if (tt_buf_len(&c->out) == 0 && c->nstreams == 0)
        tt_buf_shrink(&c->out);
}

int tt_h2_want_read(const struct tt_h2_conn *c) { return !c->dead && !c->transport_gone; }

int tt_h2_want_write(const struct tt_h2_conn *c)
{
    return !c->transport_gone && tt_buf_len(&c->out) > 0;
}

int tt_h2_is_done(const struct tt_h2_conn *c)
{
    if (c->dead || c->transport_gone)
        return 1;
    return c->goaway_sent && c->goaway_recv_last != UINT32_MAX && c->nstreams == 0;
}

int tt_h2_error(const struct tt_h2_conn *c, uint32_t *code, const char **reason)
{
    if (!c->has_err)
        return 0;
    if (code)
        *code = c->err_code;
    if (reason)
        *reason = c->err_desc;
    return 1;
}

/* --- Sending ------------------------------------------------------------- */

/* RFC 9113 §6.5.2 header list size of what we would send. */
static uint64_t list_size(const struct tt_header *h, size_t n)
{
    uint64_t sz = 0;
    for (size_t i = 0; i < n; i++)
        sz += (uint64_t)h[i].name_len + h[i].value_len + 32;
    return sz;
}

/* Encodes `hdrs` straight into the output behind a HEADERS frame header
 * and splits it into CONTINUATION frames in place when it passes the peer's
 * max frame size. */
static int send_header_block(struct tt_h2_conn *c, uint32_t sid, const struct tt_header *hdrs,
                             size_t n, int end_stream)
{
    /* HPACK never expands a field by more than a few bytes of prefix; if
     * even the raw size does not fit, refuse before the encoder's table
     * changes (a half-written block would desynchronise the peer). */
    uint64_t raw = 0;
    for (size_t i = 0; i < n; i++)
        raw += (uint64_t)hdrs[i].name_len + hdrs[i].value_len + 12;
    uint64_t mf = c->remote.max_frame_size;
    if (raw > c->cfg.max_header_block)
        return TT_ERR_HEADER_TOO_LARGE;
    if (raw + (raw / mf + 2) * TT_FRAME_HEADER_LEN + 16 > tt_buf_room(&c->out))
        return TT_ERR_NOMEM;
    size_t start = tt_buf_len(&c->out);
    uint8_t *p = tt_buf_reserve(&c->out, TT_FRAME_HEADER_LEN);
    if (!p)
        return TT_ERR_NOMEM;
    tt_buf_commit(&c->out, TT_FRAME_HEADER_LEN);
    if (tt_hpack_encode_block(&c->enc, hdrs, n, &c->out) < 0) {
        c->out.len = start;
        fail_conn(c, TT_H2_INTERNAL_ERROR, "HPACK encoder failed", 1);
        return TT_ERR_NOMEM;
    }
    size_t blen = tt_buf_len(&c->out) - start - TT_FRAME_HEADER_LEN;
    size_t k = blen == 0 ? 1 : (blen + mf - 1) / mf;
    if (k > 1) {
        if (!tt_buf_reserve(&c->out, (k - 1) * TT_FRAME_HEADER_LEN)) {
            c->out.len = start;
            fail_conn(c, TT_H2_INTERNAL_ERROR, "output buffer full", 1);
            return TT_ERR_NOMEM;
        }
        tt_buf_commit(&c->out, (k - 1) * TT_FRAME_HEADER_LEN);
    }
    uint8_t *base = tt_buf_data(&c->out) + start;
    /* Move fragments back to front so that none is overwritten. */
    for (size_t i = k; i-- > 0;) {
        size_t off = i * mf;
        size_t fl = blen - off < mf ? blen - off : mf;
        uint8_t *dst = base + i * (mf + TT_FRAME_HEADER_LEN);
        if (i)
            memmove(dst + TT_FRAME_HEADER_LEN, base + TT_FRAME_HEADER_LEN + off, fl);
        uint8_t flags = (i == k - 1 ? TT_FLAG_END_HEADERS : 0) |
                        (i == 0 && end_stream ? TT_FLAG_END_STREAM : 0);
        tt_frame_pack_header(dst, (uint32_t)fl, i ? TT_H2_CONTINUATION : TT_H2_HEADERS, flags, sid);
    }
    return 0;
}

int64_t tt_h2_submit_request(struct tt_h2_conn *c, const struct tt_header *hdrs, size_t n,
                             int end_stream, void *sud)
{
    if (c->role != TT_H2_CLIENT)
        return TT_ERR_INVALID_ARG;
    if (c->dead || c->transport_gone || c->goaway_sent || c->goaway_recv_last != UINT32_MAX)
        return TT_ERR_GOING_AWAY;
    if (c->next_local_sid > 0x7fffffffu)
        return TT_ERR_STREAM_ID_EXHAUSTED;
    if (!tt_h2_can_open_stream(c))
        return TT_ERR_TOO_MANY_STREAMS;
    struct tt_h2_headers h;
    if (hv_validate(hdrs, n, HV_REQUEST, 0, &h))
        return TT_ERR_BAD_HEADER;
    /* RFC 8441 §3: :protocol only to a server that said it takes it. */
    if (h.protocol.len && !tt_h2_peer_allows_extended_connect(c))
        return TT_ERR_NO_CONNECT_PROTOCOL;
    if (list_size(hdrs, n) > c->remote.max_header_list_size)
        return TT_ERR_HEADER_TOO_LARGE;
    struct h2_stream *s = tt_mem_calloc(1, sizeof(*s));
    if (!s)
        return TT_ERR_NOMEM;
    uint32_t sid = c->next_local_sid;
    s->id = sid;
    s->local = 1;
    s->state = ST_OPEN;
    s->sent_headers = 1;
    s->sud = sud;
    s->content_length = -1;
    s->send_window = c->remote.initial_window_size;
    s->recv_window = c->rx_initial_window;
    s->req_head = iov_eq((const char *)h.method.base, (uint32_t)h.method.len, "HEAD");
    /* Room in the stream table first: once the HEADERS are queued (and the
     * HPACK tables have moved on) the stream cannot be taken back, and
     * forgetting it would make a retry reuse its id. */
    int rc = st_reserve(c);
    if (rc < 0 || (rc = send_header_block(c, sid, hdrs, n, end_stream)) < 0) {
        tt_mem_free(s);
        return rc;
    }
    (void)st_insert(c, s); /* cannot fail after st_reserve */
    c->next_local_sid += 2;
    if (end_stream)
        s->state = ST_HALF_LOCAL;
    return sid;
}

int tt_h2_submit_headers(struct tt_h2_conn *c, uint32_t sid, const struct tt_header *hdrs,
                         size_t n, int end_stream)
{
    struct h2_stream *s = st_find(c, sid);
    if (!s || c->dead || s->state == ST_HALF_LOCAL)
        return TT_ERR_STREAM_CLOSED;
    struct tt_h2_headers h;
    int hv = s->sent_headers ? HV_TRAILERS : HV_RESPONSE;
    if (hv == HV_RESPONSE && c->role == TT_H2_CLIENT)
        return TT_ERR_INVALID_ARG;
    if (hv_validate(hdrs, n, hv, 0, &h))
        return TT_ERR_BAD_HEADER;
    if (hv == HV_TRAILERS && !end_stream)
        return TT_ERR_BAD_HEADER;
    if (h.kind == TT_H2_HDRS_INFORMATIONAL && end_stream)
        return TT_ERR_BAD_HEADER;
    if (list_size(hdrs, n) > c->remote.max_header_list_size)
        return TT_ERR_HEADER_TOO_LARGE;
    int rc = send_header_block(c, sid, hdrs, n, end_stream);
    if (rc < 0)
        return rc;
    if (h.kind == TT_H2_HDRS_RESPONSE) {
        s->sent_headers = 1;
        s->answer_end = c->out_written + tt_buf_len(&c->out);
    }
    if (end_stream)
        local_end(c, s);
    return 0;
}

size_t tt_h2_data_room(const struct tt_h2_conn *c, uint32_t sid)
{
    const struct h2_stream *s = st_find(c, sid);
    if (!s || c->dead || c->transport_gone || s->state == ST_HALF_LOCAL || !s->sent_headers)
        return 0;
    int64_t w = s->send_window < c->send_window ? s->send_window : c->send_window;
    size_t used = tt_buf_len(&c->out);
    if (w <= 0 || used >= c->cfg.max_output)
        return 0;
    size_t room = c->cfg.max_output - used;
    return (uint64_t)w < room ? (size_t)w : room;
}

ssize_t tt_h2_send_data(struct tt_h2_conn *c, uint32_t sid, const void *data, size_t len,
                        int end_stream)
{
    struct h2_stream *s = st_find(c, sid);
    if (!s || c->dead || s->state == ST_HALF_LOCAL || !s->sent_headers)
        return TT_ERR_STREAM_CLOSED;
    size_t room = tt_h2_data_room(c, sid);
    size_t n = len < room ? len : room;
    if (n == 0 && !(len == 0 && end_stream))
        return 0;
    int fin = end_stream && n == len;
    const uint8_t *p = data;
    size_t off = 0;
    do {
        size_t fl = n - off < c->remote.max_frame_size ? n - off : c->remote.max_frame_size;
        int last = off + fl == n;
        int rc = tt_frame_pack_data(&c->out, sid, p + off, fl, fin && last, 0);
        if (rc < 0) {
            if (off == 0)
                return TT_ERR_NOMEM;
            break;
        }
        off += fl;
    } while (off < n);
    s->send_window -= (int64_t)off;
    c->send_window -= (int64_t)off;
    if (fin && off == n)
        local_end(c, s);
    return (ssize_t)off;
}

uint8_t *tt_h2_data_reserve(struct tt_h2_conn *c, uint32_t sid, size_t len, size_t *room)
{
    *room = 0;
    struct h2_stream *s = st_find(c, sid);
    if (!s || c->dead || s->state == ST_HALF_LOCAL || !s->sent_headers)
        return NULL;
    size_t n = tt_h2_data_room(c, sid);
    if (n > len)
        n = len;
    if (n > c->remote.max_frame_size)
        n = c->remote.max_frame_size;
    /* Room for the frame header even when n is 0 (an empty END_STREAM). */
    uint8_t *p = tt_buf_reserve(&c->out, TT_FRAME_HEADER_LEN + n);
    if (!p)
        return NULL;
    *room = n;
    return p + TT_FRAME_HEADER_LEN;
}

int tt_h2_data_commit(struct tt_h2_conn *c, uint32_t sid, size_t n, int end_stream)
{
    struct h2_stream *s = st_find(c, sid);
    if (!s || c->dead || s->state == ST_HALF_LOCAL || !s->sent_headers)
        return TT_ERR_STREAM_CLOSED;
    if (n == 0 && !end_stream)
        return 0;
    /* The payload is already in place behind the header's room (the caller
     * keeps n within what tt_h2_data_reserve granted). */
    uint8_t *p = tt_buf_data(&c->out) + tt_buf_len(&c->out);
    tt_frame_pack_header(p, (uint32_t)n, TT_H2_DATA, end_stream ? TT_FLAG_END_STREAM : 0, sid);
    tt_buf_commit(&c->out, TT_FRAME_HEADER_LEN + n);
    s->send_window -= (int64_t)n;
    c->send_window -= (int64_t)n;
    if (end_stream)
        local_end(c, s);
    return 0;
}

int tt_h2_submit_rst(struct tt_h2_conn *c, uint32_t sid, uint32_t code)
{
    struct h2_stream *s = st_find(c, sid);
    if (!s)
        return TT_ERR_STREAM_CLOSED;
    if (!c->dead && tt_frame_pack_rst(&c->out, sid, code) < 0) {
        fail_conn(c, TT_H2_INTERNAL_ERROR, "output buffer full", 0);
        return TT_ERR_NOMEM;
    }
    stream_close(c, s, code, TT_H2_CLOSE_RST_SENT, CL_RST_SENT);
    return 0;
}

void tt_h2_consume(struct tt_h2_conn *c, uint32_t sid, size_t n)
{
    uint64_t nc = n;
    struct h2_stream *s = st_find(c, sid);
    if (s) {
        uint64_t ns = n < s->recv_pending ? n : s->recv_pending;
        s->recv_pending -= ns;
        stream_credit(c, s, ns);
        /* Only what tt_h2_consume_connection has not given back already. */
        nc = n < s->conn_owed ? n : s->conn_owed;
        s->conn_owed -= nc;
    }
    if (nc > c->recv_pending)
        nc = c->recv_pending;
    c->recv_pending -= nc;
    conn_credit(c, nc);
}

void tt_h2_consume_connection(struct tt_h2_conn *c, uint32_t sid, size_t n)
{
    struct h2_stream *s = st_find(c, sid);
    if (!s) {
        tt_h2_consume(c, sid, n); /* closed: only the connection is left */
        return;
    }
    uint64_t nc = n < s->conn_owed ? n : s->conn_owed;
    if (nc > c->recv_pending)
        nc = c->recv_pending;
    s->conn_owed -= nc;
    c->recv_pending -= nc;
    conn_credit(c, nc);
}

int tt_h2_set_stream_window(struct tt_h2_conn *c, uint32_t n)
{
    if (c->dead)
        return TT_ERR_CONN;
    if (n > TT_H2_MAX_WINDOW)
        return TT_ERR_INVALID_ARG;
    if (c->settings_unacked)
        return 1; /* one change in flight at a time: its ACK says which value holds */
    if (n == c->cfg.initial_window_size)
        return 0;
    struct tt_setting st = {TT_SETTINGS_INITIAL_WINDOW_SIZE, n};
    if (out_check(c, tt_frame_pack_settings(&c->out, &st, 1)))
        return TT_ERR_NOMEM;
    c->settings_unacked = 1;
    /* A larger window is in force at once: the peer may use it as soon as
     * it reads the SETTINGS, before we see its ACK.  A smaller one only
     * from the ACK (on_settings_ack), since until then the peer may still
     * send to the old one (§6.9.2). */
    if (n > c->rx_initial_window) {
        int64_t delta = (int64_t)n - c->rx_initial_window;
        c->rx_initial_window = n;
        for (struct h2_stream *s = c->list; s; s = s->next)
            s->recv_window += delta;
    }
    c->cfg.initial_window_size = n;
    return 0;
}

void tt_h2_stream_grow(struct tt_h2_conn *c, uint32_t sid, uint32_t n)
{
    struct h2_stream *s = st_find(c, sid);
    if (s) {
        s->grown += n;
        stream_credit(c, s, n);
    }
}

void tt_h2_refill_resets(struct tt_h2_conn *c, uint32_t n)
{
    uint64_t b = (uint64_t)c->rst_budget + n;
    c->rst_budget = b > c->cfg.rst_budget ? c->cfg.rst_budget : (uint32_t)b;
}

void tt_h2_stream_set_user(struct tt_h2_conn *c, uint32_t sid, void *sud)
{
    struct h2_stream *s = st_find(c, sid);
    if (s)
        s->sud = sud;
}

void *tt_h2_stream_get_user(const struct tt_h2_conn *c, uint32_t sid)
{
    const struct h2_stream *s = st_find(c, sid);
    return s ? s->sud : NULL;
}

uint32_t tt_h2_open_streams(const struct tt_h2_conn *c) { return c->nstreams; }

int tt_h2_can_open_stream(const struct tt_h2_conn *c)
{
    if (c->role != TT_H2_CLIENT || c->dead || c->transport_gone || c->goaway_sent ||
        c->goaway_recv_last != UINT32_MAX || c->next_local_sid > 0x7fffffffu)
        return 0;
    /* Ours are bounded by the peer's limit and, for memory, by our own. */
    return c->n_local < c->remote.max_concurrent_streams &&
           c->n_local < c->cfg.max_concurrent_streams;
}

int tt_h2_submit_ping(struct tt_h2_conn *c, uint64_t opaque)
{
    if (c->dead || c->transport_gone)
        return TT_ERR_CONN;
    return out_check(c, tt_frame_pack_ping(&c->out, 0, opaque));
}

int tt_h2_submit_goaway(struct tt_h2_conn *c, uint32_t code, const char *debug)
{
    if (c->dead || c->transport_gone)
        return TT_ERR_CONN;
    if (code != TT_H2_NO_ERROR) {
        fail_conn(c, code, debug, 1);
        return 0;
    }
    if (out_check(c, tt_frame_pack_goaway(&c->out, c->last_processed, code, debug,
                                          debug ? strlen(debug) : 0)))
        return TT_ERR_NOMEM;
    c->goaway_sent = 1;
    c->goaway_sent_last = c->last_processed;
    return 0;
}

void tt_h2_fail(struct tt_h2_conn *c, uint32_t code, const char *reason)
{
    fail_conn(c, code, reason, 1);
}

void tt_h2_transport_closed(struct tt_h2_conn *c)
{
    c->transport_gone = 1;
    c->rx_state = RX_DEAD;
    /* Dead before the callbacks run, so that what they try to send is
     * refused instead of queued into an output nobody will write. */
    c->dead = 1;
    tt_buf_free(&c->out);
    close_all(c, TT_H2_CANCEL, TT_H2_CLOSE_CONN);
}

int tt_h2_awaiting_settings_ack(const struct tt_h2_conn *c) { return c->settings_unacked > 0; }

int tt_h2_remote_settings_received(const struct tt_h2_conn *c) { return c->remote_settings_seen; }

int tt_h2_peer_allows_extended_connect(const struct tt_h2_conn *c)
{
    return c->remote_settings_seen && c->remote.enable_connect_protocol;
}

uint32_t tt_h2_goaway_received(const struct tt_h2_conn *c) { return c->goaway_recv_last; }
