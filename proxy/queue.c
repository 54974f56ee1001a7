/* The fair queue: see queue.h. */
#include "proxy/queue.h"

void tt_px_queue_push(struct tt_fifo *q, const void *owner, struct tt_px_qgroup *g,
                      struct tt_link *item)
{
    if (g->n++ == 0) {
        g->in = owner;
        tt_fifo_push(q, &g->turn);
    }
    tt_fifo_push(&g->waiting, item);
}

void tt_px_queue_remove(struct tt_fifo *q, struct tt_px_qgroup *g, struct tt_link *item)
{
    tt_fifo_remove(&g->waiting, item);
    if (--g->n == 0) {
        tt_fifo_remove(q, &g->turn);
        g->in = NULL;
    }
}

struct tt_link *tt_px_queue_next(struct tt_fifo *q)
{
    if (!q->first)
        return NULL;
    struct tt_px_qgroup *g = tt_container_of(q->first, struct tt_px_qgroup, turn);
    if (g->n > 1) {
        tt_fifo_remove(q, &g->turn);
        tt_fifo_push(q, &g->turn);
    }
    return g->waiting.first;
}
