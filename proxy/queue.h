/*
 * A fair queue (queue.c): groups take turns, each group's items first in
 * first out.  A pool's requests waiting for a stream use it with one group
 * per client connection, so a client with one request waits behind one
 * request of each other client, never behind a flood's thousands.
 */
#ifndef TT_PX_QUEUE_H
#define TT_PX_QUEUE_H

#include "proto/list.h"

#include <stddef.h>

struct tt_px_qgroup {
    struct tt_link turn;    /* on the queue while it has items waiting */
    struct tt_fifo waiting; /* its items, oldest first */
    const void *in;         /* the queue's owner while it waits there, else NULL */
    size_t n;
};

/* Puts `item` last in `g`, and `g` in line on `q` (owned by `owner`) if it
 * was not waiting yet.  A group waits in one queue at a time. */
void tt_px_queue_push(struct tt_fifo *q, const void *owner, struct tt_px_qgroup *g,
                      struct tt_link *item);
/* Takes `item` out of `g`, and `g` out of line when it has no more. */
void tt_px_queue_remove(struct tt_fifo *q, struct tt_px_qgroup *g, struct tt_link *item);
/* Whose turn it is: the first group's oldest item (left in place: remove
 * it to take it); the group goes to the back of the line when it has more.
 * NULL when nobody waits. */
struct tt_link *tt_px_queue_next(struct tt_fifo *q);

#endif
