/*
 * c --upstream h2c://: the HTTP/2 connection to the app (upstream_h2c.c),
 * as upstream.c calls it.  It sits on upstream_common.h and calls nothing
 * above it; the shared code reaches it only through tt_up_h2_app.
 */
#ifndef TT_UPSTREAM_H2C_H
#define TT_UPSTREAM_H2C_H

#include "origin/upstream_common.h"

#include <stdint.h>

/* The side's answers to the shared code (upstream_common.h). */
extern const struct tt_up_app tt_up_h2_app;

void tt_up_h2_open(struct up_stream *st, const struct tt_h2_headers *h);
/* Request body and trailers to the app stream. */
void tt_up_h2_push(struct up_stream *st);
/* p's side ended or failed: the app stream goes too. */
void tt_up_h2_abort(struct up_stream *st, uint32_t code);
/* p's stream closed (code and flags as in on_stream_close). */
void tt_up_h2_stream_closed(struct up_stream *st, uint32_t code, unsigned flags);
/* Frees the h2c connections that hold no session; returns 1 if any is
 * left (to the process's end). */
int tt_up_h2_free_all(struct tt_upstream *up);
/* c is exiting: closes the app connections' sessions (on the loop,
 * deferred); returns how many (tt_upstream_close_sessions). */
int tt_up_h2_close_sessions(struct tt_upstream *up);

#endif
