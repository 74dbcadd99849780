/* testup_ws.h - a WebSocket echo (RFC 6455 frames), independent of how
 * the connection was upgraded (HTTP/1.1 101, or an HTTP/2 extended CONNECT
 * stream, RFC 8441).
 *
 * The front end owns the byte streams: it hands tu_ws_feed what the client
 * sent and sends what tu_ws_feed (and tu_ws_ping) appended. The echo:
 *   - text, binary and continuation frames come back with the same opcode,
 *     FIN bit and payload, unmasked;
 *   - a ping is answered with a pong carrying its payload; pongs are
 *     dropped;
 *   - a close is answered with a close of the same code (none: empty), and
 *     then the WebSocket is over;
 *   - a frame that is not masked, has reserved bits or an unknown opcode,
 *     a control frame over 125 bytes or fragmented: close 1002; a payload
 *     over TU_WS_MAX_PAYLOAD: close 1009. Either ends the WebSocket.
 *
 * Stats (srv->stats): ws_open / ws_peak / ws_total from tu_ws_new to
 * tu_ws_free, ws_bytes (payload bytes of the client's data frames) and
 * ws_close_codes (close frames received from the client, by code; 1005 for
 * a close without a code). */
#ifndef TU_WS_H
#define TU_WS_H

#include <event2/buffer.h>

struct tu_server;
struct tu_ws;

#define TU_WS_MAX_PAYLOAD (16u * 1024 * 1024)

/* --ws-ping's timer fired: the front end appends a ping with tu_ws_ping
 * to wherever it sends from and pushes it out. */
typedef void (*tu_ws_ping_cb)(struct tu_ws *ws, void *arg);

/* A new WebSocket on srv, counted as open. With --ws-ping MS and cb not
 * NULL, cb(ws, arg) runs every MS ms until tu_ws_free. Returns NULL when
 * out of memory. */
struct tu_ws *tu_ws_new(struct tu_server *srv, tu_ws_ping_cb cb, void *arg);

/* Frees the WebSocket and its timer (no longer counted as open). NULL is a
 * no-op. */
void tu_ws_free(struct tu_ws *ws);

/* Consumes every whole frame in in (a partial frame stays there) and
 * appends the answers to out. Returns 0 to go on, 1 once a close has been
 * answered (send out, then end; nothing more is read), -1 after a
 * protocol error (a close 1002 or 1009 has been appended: send it, then
 * end), or CR_ENOMEM. After 1 or -1, further calls consume nothing. */
int tu_ws_feed(struct tu_ws *ws, struct evbuffer *in, struct evbuffer *out);

/* Appends a ping (unmasked, 8-byte payload: a counter) to out unless the
 * WebSocket has ended. Returns 0 or CR_ENOMEM. */
int tu_ws_ping(struct tu_ws *ws, struct evbuffer *out);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key +
 * GUID)), NUL-terminated in out. */
void tu_ws_accept(const char *key, size_t klen, char out[29]);

#endif
