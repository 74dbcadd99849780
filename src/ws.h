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
    uint64_t data;    /* bytes of data frames (opcode < 8) passed */
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
/* The same close frame into f; returns its length (4, or 8 masked). */
#define CR_WS_CLOSE_MAX 8
size_t cr_ws_close_bytes(uint8_t f[CR_WS_CLOSE_MAX], uint16_t code, bool masked);

/* One tunnel's timers and corral's own frames, whatever the client's
 * protocol (h1.c, h2.c): the frames each way, the peers' last activity
 * (data frames only: pings and pongs, corral's own answered, are not),
 * corral's ping to the client every ping interval of silence, the close
 * (1001) at the idle timeout or the drain, then the wait for the client's
 * close frame. Zeroed, then cr_ws_tun_start once the tunnel is open. */
struct cr_ws_tun {
    struct cr_ws_track to_client;   /* frames upstream -> client */
    struct cr_ws_track from_client; /* frames client -> upstream */
    char first_close;               /* who sent the first close frame: 'c', 'u', 0 */
    uint64_t last_us;               /* the peers' last data */
    uint64_t pinged_us;             /* corral's last ping to the client */
    uint64_t drain_at_us;           /* draining: when corral closes it; 0: not */
    uint64_t closed_us;             /* when corral decided to close it */
    uint16_t close;                 /* corral's close code, once it closes the tunnel */
    const char *why;                /* and why (the access log's reason) */
    bool ping_due;                  /* a ping waits for a frame boundary */
    bool close_sent;                /* corral's close frame is out to the client */
};

/* When corral closes a tunnel it waits this long at most for the client's
 * close frame; a draining worker closes tunnels that long before
 * drain_timeout (half of drain_timeout when that is shorter). */
#define CR_WS_CLOSE_WAIT_MS 1000

/* What the tunnel's timer asks for (cr_ws_tun_timer). */
enum cr_ws_tun_act {
    CR_WS_TUN_NONE,  /* nothing yet: re-arm (cr_ws_tun_next) */
    CR_WS_TUN_PING,  /* a ping is due (ping_due): move the upstream's bytes */
    CR_WS_TUN_CLOSE, /* corral closes it (close, why): move bytes, tell the back end */
    CR_WS_TUN_GONE,  /* the client's close frame did not come in time: end it */
};

void cr_ws_tun_start(struct cr_ws_tun *t, uint64_t now);
/* The drain: corral closes the tunnel CR_WS_CLOSE_WAIT_MS before
 * drain_ms from now. */
void cr_ws_tun_drain(struct cr_ws_tun *t, uint64_t now, uint64_t drain_ms);
/* When the timer is next due (us, absolute), UINT64_MAX: never. */
uint64_t cr_ws_tun_next(const struct cr_ws_tun *t, uint64_t idle_ms, uint64_t ping_ms);
enum cr_ws_tun_act cr_ws_tun_timer(struct cr_ws_tun *t, uint64_t now, uint64_t idle_ms,
                                   uint64_t ping_ms);
/* Corral closes the tunnel with code (false: it is closing already). */
bool cr_ws_tun_close(struct cr_ws_tun *t, uint16_t code, const char *why, uint64_t now);
/* The client's n bytes at p pass; returns true when they end with the
 * answer to corral's close frame (the closing handshake is over). */
bool cr_ws_tun_in(struct cr_ws_tun *t, const uint8_t *p, size_t n, uint64_t now);
/* Upstream bytes to the client: corral's own frame when one is due and
 * the stream is at a frame boundary, into f (6 bytes at most; returns its
 * length, 0: none), ... */
size_t cr_ws_tun_own(struct cr_ws_tun *t, uint8_t f[6]);
/* ... then how many of the first bytes of b (at most max) may go now,
 * stopping at a frame's end when corral's frame waits. After corral's
 * close nothing of the upstream's goes (0: the caller drops b's bytes). */
size_t cr_ws_tun_out(struct cr_ws_tun *t, struct evbuffer *b, size_t max, uint64_t now);
/* Who ended the tunnel, for its access log line (eof: the upstream's end
 * was seen). */
const char *cr_ws_tun_reason(const struct cr_ws_tun *t, bool upstream_eof);

#endif
