/*
 * An intrusive list: the link lives inside the element, so linking and
 * unlinking allocate nothing and an element can leave from anywhere in O(1).
 * The head is one pointer, and an all-zero head or link is a valid empty
 * list / unlinked element, so structs from calloc need no set-up.  `pprev`
 * points at whatever points at this link (the head or the previous link),
 * which is what makes removal O(1) without a back pointer to the list.
 */
#ifndef TT_LIST_H
#define TT_LIST_H

#include <stddef.h>

struct tt_link {
    struct tt_link *next;
    struct tt_link **pprev; /* NULL when not on a list */
};

struct tt_list {
    struct tt_link *first;
};

#define tt_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline int tt_link_linked(const struct tt_link *l) { return l->pprev != NULL; }

/* Puts `l` first on `list`; does nothing if it is already on a list. */
static inline void tt_list_push(struct tt_list *list, struct tt_link *l)
{
    if (l->pprev)
        return;
    l->next = list->first;
    if (l->next)
        l->next->pprev = &l->next;
    list->first = l;
    l->pprev = &list->first;
}

/* Takes `l` off its list; does nothing if it is on none. */
static inline void tt_link_remove(struct tt_link *l)
{
    if (!l->pprev)
        return;
    *l->pprev = l->next;
    if (l->next)
        l->next->pprev = l->pprev;
    l->next = NULL;
    l->pprev = NULL;
}

/* A FIFO of the same links: push at the back, take from the front, remove
 * anywhere (through the fifo, which keeps where the back is).  Zeroed, it
 * is empty. */
struct tt_fifo {
    struct tt_link *first;
    struct tt_link **tail; /* the last link's next, or &first; NULL when never used */
};

static inline void tt_fifo_push(struct tt_fifo *f, struct tt_link *l)
{
    if (l->pprev)
        return;
    if (!f->tail)
        f->tail = &f->first;
    l->next = NULL;
    l->pprev = f->tail;
    *f->tail = l;
    f->tail = &l->next;
}

static inline void tt_fifo_remove(struct tt_fifo *f, struct tt_link *l)
{
    if (!l->pprev)
        return;
    if (f->tail == &l->next)
        f->tail = l->pprev;
    *l->pprev = l->next;
    if (l->next)
        l->next->pprev = l->pprev;
    l->next = NULL;
    l->pprev = NULL;
}
#endif
