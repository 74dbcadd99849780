/* testup_h2.h - the HTTP/2 front end (nghttp2 server session).
 *
 * SETTINGS: MAX_CONCURRENT_STREAMS = --max-streams (nghttp2 refuses
 * streams beyond it with REFUSED_STREAM), INITIAL_WINDOW_SIZE = 256 KB,
 * connection window 1 MB.
 *
 * Flow control is manual: a request body is acknowledged (WINDOW_UPDATE)
 * only once it has been consumed - at once for every endpoint but /echo,
 * and for /echo when the bytes have been sent back. A client uploading to
 * /echo faster than it reads the answer is therefore held back by its own
 * stream and connection windows, and testup holds at most one window of
 * body per stream. Frames are produced only while the connection's output
 * holds less than TU_OUT_HIGH bytes.
 *
 * Trailers are accepted and ignored; /headers reports the pseudo-headers
 * :scheme and :authority (and :protocol) as fields.
 *
 * --connect-protocol: SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 too, and a
 * stream with :method CONNECT and :protocol websocket is a WebSocket
 * (RFC 8441): :status 200 (with the first Sec-WebSocket-Protocol offered)
 * without END_STREAM, then its DATA both ways is a testup_ws echo. Its
 * DATA is acknowledged at once (the echo is not bounded by the window).
 * The stream ends (END_STREAM) after the echo's close, or after the
 * client's END_STREAM; a reset frees it. */
#ifndef TU_H2_H
#define TU_H2_H

#include "testup_conn.h"

extern const struct tu_proto tu_h2_proto;

#endif
