/* testup_h1.h - the HTTP/1.1 front end (http_parser).
 *
 * Keep-alive and pipelining: requests are parsed ahead of the answers and
 * queued; each starts its own wait (--service-time, /delay) as soon as it
 * is complete, and the answers are written strictly in arrival order.
 * Parsing pauses (and the connection stops reading) while 64 requests are
 * queued or while the request being parsed holds TU_ECHO_BUF_MAX bytes of
 * /echo body not yet sent back.
 *
 * Bodies: Content-Length and chunked requests. An answer whose length is
 * unknown (/echo of a chunked request) is sent chunked to HTTP/1.1 clients
 * and delimited by closing the connection to HTTP/1.0 clients.
 * "Expect: 100-continue" is answered with "100 Continue" when the request
 * reaches the head of the queue. A malformed request gets 400 after the
 * answers queued before it, then the connection closes.
 *
 * WebSocket: a GET with Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key is answered (in its
 * turn) with 101 Switching Protocols, Sec-WebSocket-Accept and the first
 * Sec-WebSocket-Protocol offered; nothing more is parsed as HTTP and the
 * connection is a testup_ws echo until the close. --ws-refuse STATUS
 * answers STATUS instead and closes. Any other Upgrade or CONNECT is
 * answered as a request, then the connection closes. */
#ifndef TU_H1_H
#define TU_H1_H

#include "testup_conn.h"

extern const struct tu_proto tu_h1_proto;

#endif
