/*
 * --config FILE for both programs (conffile.c): "key = value" lines, read
 * with inih (Debian's libinih), each key the name of a flag without its
 * "--".  `#` and `;` start a comment line; `;` after a space ends a value.
 * No [sections].  The caller turns each key into its flag, so a file says
 * nothing a command line could not, and flags given too override it.
 */
#ifndef TT_CONFFILE_H
#define TT_CONFFILE_H

#include <stddef.h>

/* One key: returns 0, or -1 with a reason in err (without the file, the
 * line or the key: tt_conffile_read adds them). */
typedef int (*tt_conffile_key)(void *ud, const char *key, const char *value, char *err,
                               size_t errlen);

/* Reads `path` and calls on_key for each "key = value" in order.  Returns
 * 0, or -1 with err "PATH:LINE: key 'KEY': reason" (or "PATH:LINE: reason"
 * for a line that is not key = value, "PATH: reason" when unreadable): the
 * first error only. */
int tt_conffile_read(const char *path, tt_conffile_key on_key, void *ud, char *err,
                     size_t errlen);

#endif
