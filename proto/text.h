/* Small text helpers that several modules need the same way. */
#ifndef TT_TEXT_H
#define TT_TEXT_H

/* The value of a hex digit (either case), or -1. */
int tt_hex_value(int c);

/* The reason phrase of an HTTP status code (RFC 9110 §15), or a generic one
 * for its class. */
const char *tt_http_reason(int status);

#endif
