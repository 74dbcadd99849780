/* ws.h - the WebSocket pieces a tunnel needs (RFC 6455): the opening
 * handshake's key and accept values. corral relays a WebSocket's bytes
 * unchanged once each hop has done its handshake (request.h: a tunnel);
 * it never unmasks or reassembles a message. No I/O, no clock. */
#ifndef CR_WS_H
#define CR_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of a Sec-WebSocket-Key (16 bytes, base64) and of an Accept
 * (20 bytes of SHA-1, base64), without the NUL. */
#define CR_WS_KEY_LEN 24
#define CR_WS_ACCEPT_LEN 28

/* Whether the len bytes at key are a valid Sec-WebSocket-Key: the base64
 * of 16 bytes (RFC 6455 4.2.1 point 5), 24 characters ending in "==". */
bool cr_ws_key_valid(const char *key, size_t len);

/* The Sec-WebSocket-Accept for key (RFC 6455 4.2.2: base64 of the SHA-1 of
 * the key followed by the protocol's GUID) into out, NUL-terminated.
 * Returns 0, or CR_ENOMEM when the digest cannot be made. */
int cr_ws_accept(const char *key, size_t len, char out[CR_WS_ACCEPT_LEN + 1]);

/* A new key from 16 random bytes (getrandom(2)), NUL-terminated. Returns
 * 0 or CR_EIO. */
int cr_ws_new_key(char out[CR_WS_KEY_LEN + 1]);

/* Whether the comma-separated list v (a Connection or Upgrade value)
 * holds token, case-insensitively. */
bool cr_ws_has_token(const char *v, const char *token);

#endif
