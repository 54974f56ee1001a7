/*
 * The two pieces of the WebSocket opening handshake (RFC 6455 §4) that
 * tether itself must do: p answers an HTTP/1.1 client's upgrade with 101
 * and Sec-WebSocket-Accept (the tunnel hop is RFC 8441 extended CONNECT,
 * which has no key), and c makes a key for an HTTP/1.1 app when the client
 * came over HTTP/2 and checks the app's answer.  Frames are never parsed:
 * after the handshake the bytes are opaque.
 */
#ifndef TT_WEBSOCKET_H
#define TT_WEBSOCKET_H

#include <stddef.h>

#define TT_WS_KEY_LEN 24    /* base64 of 16 bytes */
#define TT_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */

/* 1 when `key` is a Sec-WebSocket-Key a server may accept: the base64 of
 * 16 bytes (RFC 6455 §4.1 step 7, §4.2.1 step 5). */
int tt_ws_key_valid(const char *key, size_t len);

/* Writes the Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2 step 5.4:
 * base64(SHA-1(key + the protocol's GUID))) and a NUL to out[29]. */
void tt_ws_accept(const char *key, size_t len, char out[TT_WS_ACCEPT_LEN + 1]);

/* Writes a fresh random key and a NUL to out[25].  Returns 0, or -1 when
 * the random generator fails. */
int tt_ws_key_new(char out[TT_WS_KEY_LEN + 1]);

#endif
