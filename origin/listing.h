/*
 * Directory listings of the --root file server, and the path checks the
 * listing shares with the server.
 */
#ifndef TT_LISTING_H
#define TT_LISTING_H

#include "codec/buf.h"

#include <stddef.h>

/* Most entries a listing shows; past that it says it was cut short.  Bounds
 * the memory one listing takes. */
#define TT_FS_LISTING_MAX_ENTRIES 10000

/* 1 when the canonical path `path` is `root` or below it (root is canonical,
 * without a trailing slash except for "/" itself). */
int tt_fs_under_root(const char *root, size_t root_len, const char *path);

/* Appends `s` (length `len`) with HTML's special characters escaped.
 * Returns 0 or TT_ERR_NOMEM. */
int tt_fs_html_escape(tt_buf *out, const char *s, size_t len) TT_WUR;
/* Appends `s` percent-encoded for use as one path segment of a relative URL
 * (everything but RFC 3986 unreserved characters is encoded).  Returns 0 or
 * TT_ERR_NOMEM. */
int tt_fs_url_encode(tt_buf *out, const char *s, size_t len) TT_WUR;

/* Appends the HTML listing of the open directory `dirfd` (canonical path
 * `dir_real` under `root`) to `out`.  `shown` is the decoded request path, for
 * the title.  Links are relative so that they work under any path prefix; no
 * parent link when `at_root`.  Entries that are dangling, special files,
 * upload temporaries or symlinks leading outside the root are left out.
 * Returns 0, or -1 when memory ran out or the directory cannot be read. */
int tt_fs_listing(tt_buf *out, int dirfd, const char *root, size_t root_len, const char *dir_real,
                  const char *shown, int at_root) TT_WUR;

#endif
