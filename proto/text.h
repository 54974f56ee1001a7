/* Small text helpers that several modules need the same way. */
#ifndef TT_TEXT_H
#define TT_TEXT_H

/* The value of a hex digit (either case), or -1. */
int tt_hex_value(int c);

/* The reason phrase of an HTTP status code (RFC 9110 §15), or a generic one
 * for its class. */
const char *tt_http_reason(int status);

#include <stddef.h>

/* Walks a comma-separated field value (RFC 9110 §5.6.1): each call sets
 * *el and *el_len to the next element with the whitespace around it
 * trimmed, skipping empty ones, and returns 1; 0 at the end.  *pos starts
 * at 0. */
int tt_list_next(const char *list, size_t len, size_t *pos, const char **el, size_t *el_len);

/* 1 if the list holds `tok` (case-insensitive); a parameter after ';' does
 * not change an element's name ("trailers;q=1" holds "trailers"). */
int tt_list_has(const char *list, size_t len, const char *tok, size_t tok_len);

#endif
