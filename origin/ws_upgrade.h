/*
 * The WebSocket opening handshake with an HTTP/1.1 app (RFC 6455 §4.1, the
 * client's part), without I/O: c --upstream http:// turns p's extended
 * CONNECT (RFC 8441) into this request on a connection of its own, feeds
 * the app's answer in as it is read, and learns what became of it.
 *
 * Names: tt_wsu_* (origin/ws_upgrade.c); handler_tcp.c does the I/O.
 */
#ifndef TT_ORIGIN_WS_UPGRADE_H
#define TT_ORIGIN_WS_UPGRADE_H

#include "codec/buf.h"
#include "codec/h2.h"

#include <stddef.h>

#define TT_WSU_HEAD_MAX (16u << 10)    /* the app's answer head */
#define TT_WSU_REFUSAL_MAX (64u << 10) /* a refusal's body, passed on whole */
#define TT_WSU_FIELDS_MAX 64

struct tt_wsu;

enum tt_wsu_state {
    TT_WSU_MORE = 0, /* feed more */
    TT_WSU_ACCEPTED, /* a valid 101: tt_wsu_rest has the app's first bytes */
    TT_WSU_REFUSED,  /* another answer, whole: status, fields, body */
    TT_WSU_FAILED,   /* no answer that can be passed on: tt_wsu_why */
};

/* Appends the upgrade request for `h` (p's extended CONNECT: :path,
 * :authority or else `default_host`, the end-to-end fields) to `out`: a
 * GET with Upgrade and the client's Sec-WebSocket-Key when it sent a valid
 * one (the app then sees what the client sent), else a fresh key.  Returns
 * the handshake, or NULL with *bad set when a field cannot be written in
 * HTTP/1.1 (else out of memory). */
struct tt_wsu *tt_wsu_new(const struct tt_h2_headers *h, const char *default_host, tt_buf *out,
                          int *bad);
void tt_wsu_free(struct tt_wsu *w);

/* The app's answer: `n` more bytes, or n == 0 for its end of stream. */
enum tt_wsu_state tt_wsu_feed(struct tt_wsu *w, const uint8_t *p, size_t n);

/* After ACCEPTED or REFUSED: the app's status and its fields that may go
 * to p (lowercased; no connection fields, no Content-Length, no
 * Sec-WebSocket-Accept), at most TT_WSU_FIELDS_MAX. */
int tt_wsu_status(const struct tt_wsu *w);
size_t tt_wsu_fields(struct tt_wsu *w, struct tt_header *out);
/* ACCEPTED: bytes the app sent after its head (the WebSocket's first). */
const uint8_t *tt_wsu_rest(const struct tt_wsu *w, size_t *len);
/* REFUSED: its body, de-chunked. */
const uint8_t *tt_wsu_body(const struct tt_wsu *w, size_t *len);
/* FAILED: why, for the 502 and the log. */
const char *tt_wsu_why(const struct tt_wsu *w);

#endif
