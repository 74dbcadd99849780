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

/* Frame boundaries in one direction of a tunnel, from the frame headers
 * only (2 to 14 bytes; payloads are skipped, never unmasked), so that
 * corral can put its own frames (ping, close) between the peers' frames.
 * Zeroed: at a boundary, before any frame. */
struct cr_ws_track {
    uint8_t hdr[14];  /* the header being read */
    uint8_t hlen;     /* its bytes so far; 0: none */
    uint8_t need;     /* its length, once its second byte is known */
    uint8_t op;       /* the opcode of the frame being passed */
    uint64_t left;    /* payload bytes of that frame still to pass */
    uint64_t closes;  /* close frames passed whole */
};

/* Whether t is between two frames. */
static inline bool cr_ws_at_boundary(const struct cr_ws_track *t)
{
    return t->hlen == 0 && t->left == 0;
}

/* Passes up to n bytes of the stream through t and returns how many it
 * took: all n, or with stop, those up to the end of the frame under way
 * (0 at a boundary). */
size_t cr_ws_track(struct cr_ws_track *t, const uint8_t *p, size_t n, bool stop);

struct evbuffer;
/* cr_ws_track over the first bytes of b, at most max: the caller then
 * moves exactly the returned number of bytes out of b. */
size_t cr_ws_track_buf(struct cr_ws_track *t, struct evbuffer *b, size_t max, bool stop);

/* Appends a frame of corral's own to out: a ping (empty), or a close with
 * code (RFC 6455 5.5.1), masked (toward a server) or not (toward a
 * client). Returns 0 or CR_ENOMEM. */
int cr_ws_ping(struct evbuffer *out, bool masked);
int cr_ws_close(struct evbuffer *out, uint16_t code, bool masked);

#endif
