/*
 * The admin listeners' HTTP (p --admin-listen, c --admin-listen): one GET
 * or HEAD per connection, parsed with llhttp, answered by the program's
 * page function and closed.  At most TT_ADMIN_CONNS connections at once,
 * each with TT_ADMIN_TIMEOUT_MS to send its head; others are closed at
 * accept.  Meant for loopback: it answers anyone who connects.
 */
#ifndef TT_PX_ADMIN_HTTP_H
#define TT_PX_ADMIN_HTTP_H

#include "codec/buf.h"
#include "proto/loop.h"

#include <stddef.h>

#define TT_ADMIN_CONNS 32
#define TT_ADMIN_TIMEOUT_MS 5000
#define TT_ADMIN_BODY_MAX (64u << 20)

/* Writes the page for `path` (without the query) into body and sets *type;
 * returns its status (404 for a path it does not know). */
typedef int (*tt_admin_page_fn)(void *ud, const char *path, size_t path_len, tt_buf *body,
                                const char **type);

/* Appends printf-style text to a page (cut short past the body's bound). */
void tt_admin_put(tt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s escaped for HTML text (html) or a JSON string (!html). */
void tt_admin_put_escaped(tt_buf *b, const char *s, int html);
/* The process's resident set size in bytes (0 when unknown). */
unsigned long long tt_admin_rss(void);

/* Serves `fd` (a listening socket, taken) on `loop` until exit.  Returns 0
 * or -1. */
int tt_admin_http_start(struct tt_loop *loop, int fd, tt_admin_page_fn page, void *ud);

#endif
