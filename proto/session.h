/*
 * The session driver: binds one HTTP/2 connection (codec/h2.h) to one TLS
 * connection on the loop.  It reads into the codec, writes the codec's output
 * (coalesced: one flush per loop iteration), keeps the link alive with PING
 * when idle and drops a peer that stops answering, times out a missing
 * SETTINGS ACK, and drains on request (GOAWAY, then close once the streams
 * are done or the grace period ends).
 *
 * Users get the codec's callbacks (with their own `ud`) plus on_writable
 * (the output buffer drained: produce more DATA) and on_closed (the session
 * is gone; every open stream has already had on_stream_close).
 */
#ifndef TT_SESSION_H
#define TT_SESSION_H

#include "codec/h2.h"
#include "proto/loop.h"
#include "proto/tls.h"

struct tt_session;

struct tt_session_config {
    struct tt_h2_config h2;
    uint32_t ping_interval_ms;   /* idle time before we PING (0: never); default 15000 */
    uint32_t ping_timeout_ms;    /* no bytes from the peer for this long after a PING: dead; default 10000 */
    uint32_t settings_timeout_ms; /* SETTINGS ACK deadline; default 10000 */
    uint32_t rst_refill_per_s;    /* peer-caused resets given back to h2.rst_budget a second; 0 */
    /* 1: no PING while no stream is open (a gRPC server refuses pings on a
     * connection without calls, and its GOAWAY would end the connection);
     * default 0: an idle connection is pinged too. */
    unsigned ping_needs_streams : 1;
};

void tt_session_config_default(struct tt_session_config *cfg);

struct tt_session_callbacks {
    struct tt_h2_callbacks h2; /* called with the session's `ud` */
    /* Output drained below max_output / 8 after having been above half:
     * producers may send more. */
    void (*on_writable)(void *ud, struct tt_session *s);
    /* The session closed (`reason` says why, for the log).  The session is
     * freed right after this returns. */
    void (*on_closed)(void *ud, struct tt_session *s, const char *reason);
};

/* Takes ownership of `tls` (handshake done; its fd stays non-blocking) and
 * starts HTTP/2 in `role`.  `early`/`early_len` are plaintext bytes already
 * read past the HTTP/1.1 head: they are fed to the codec first.  Returns NULL
 * when out of memory (tls is then freed). */
struct tt_session *tt_session_new(struct tt_loop *loop, struct tt_tls_conn *tls,
                                  enum tt_h2_role role, const struct tt_session_config *cfg,
                                  const struct tt_session_callbacks *cbs, void *ud,
                                  const uint8_t *early, size_t early_len);

struct tt_h2_conn *tt_session_h2(struct tt_session *s);
/* Schedules a write of the codec's pending output (call after submitting). */
void tt_session_flush(struct tt_session *s);
/* GOAWAY(NO_ERROR); the session closes when no stream is open or after
 * grace_ms. */
void tt_session_drain(struct tt_session *s, uint32_t grace_ms);
/* Closes now (deferred to a safe point; on_closed fires then). */
void tt_session_close(struct tt_session *s, const char *reason);
/* "ip:port" of the peer. */
const char *tt_session_peer(const struct tt_session *s);
/* 1 once on_closed is pending or done: do not submit anything. */
int tt_session_closing(const struct tt_session *s);

#endif
