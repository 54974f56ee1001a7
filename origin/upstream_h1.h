/*
 * c --upstream http://: the HTTP/1.1 keep-alive pool (upstream_h1.c), as
 * upstream.c calls it.  It sits on upstream_common.h and calls nothing
 * above it; the shared code reaches it only through tt_up_h1_app.
 */
#ifndef TT_UPSTREAM_H1_H
#define TT_UPSTREAM_H1_H

#include "origin/upstream_common.h"

#include <stdint.h>

/* The side's answers to the shared code (upstream_common.h). */
extern const struct tt_up_app tt_up_h1_app;

void tt_up_h1_open(struct up_stream *st, const struct tt_h2_headers *h);
/* Writes what the request has ready. */
void tt_up_h1_push(struct up_h1 *c);
/* Closes the connection and lets go of its stream. */
void tt_up_h1_abort(struct up_h1 *c);
/* p's stream closed with `code`: the connection finishes alone or goes. */
void tt_up_h1_stream_closed(struct up_stream *st, uint32_t code);
void tt_up_h1_free_all(struct tt_upstream *up);

#endif
