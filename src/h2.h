/* h2.h - the HTTP/2 front end of a client connection (nghttp2 server
 * session): many concurrent streams, flow control tied to the upstream's
 * consumption of each body, GOAWAY on drain and when idle. */
#ifndef CR_H2_H
#define CR_H2_H

#include "conn.h"
#include "request.h"

/* Binds the HTTP/2 front end to an open connection (its SETTINGS are queued
 * at once). Each request whose head is complete goes to submit
 * (cr_request_submit in corral; see request.h); requests the front end
 * answers or refuses itself (431, 414, 413, REFUSED_STREAM) never do.
 * Returns 0 or CR_ENOMEM. Such an answer (413, 431, 414) given before the
 * request's body is all in is followed, once its END_STREAM is out, by
 * RST_STREAM NO_ERROR (RFC 9113 8.1): the client stops sending a body
 * nobody reads, and DATA of it already on its way is dropped, the
 * connection's window credited.
 *
 * Limits (the http section of the config, corral.yaml(5)):
 *   - a header list passing max_header_size, counted per RFC 9113 6.5.2
 *     (name + value + 32 a field, pseudo-headers too), is refused with 431
 *     at the field that crosses it, before the field is looked at; the
 *     block's later fields are decoded by nghttp2 and ignored;
 *   - a response whose bytes wait on the client's flow control for
 *     send_timeout is reset (RST_STREAM CANCEL, reason "client send
 *     stalled") and its upstream stream cancelled; the connection's timer
 *     watches for this while it has streams, and counts idleness when not;
 *   - at most h2_max_stalled_streams requests in flight whose responses
 *     the client's flow control holds (a stream window shut or smaller
 *     than what waits for it, or the connection window shut, for a tenth
 *     of send_timeout without the client opening it or taking DATA - a
 *     moment is what every bulk download does - or a stream window never
 *     open; every one once the client has acknowledged next to nothing of
 *     the output for as long, cr_conn_write_stuck_ms, windows or not): a request
 *     arriving past that is refused with RST_STREAM REFUSED_STREAM
 *     (reason "client not reading") and never reaches submit;
 *   - a request body that stops coming (no DATA payload for body_timeout
 *     since the head or the last one, the clock stopped while corral holds
 *     the client's window shut) is answered 408 (RST_STREAM CANCEL once
 *     the response has begun), reason "request body timeout", its
 *     upstream stream cancelled, and the client's half of the stream reset
 *     (NO_ERROR) once the answer is out;
 *   - RST_STREAM, PING, SETTINGS, empty, PRIORITY and WINDOW_UPDATE frames
 *     have per-connection budgets (h2_max_*: per second, bursts of as
 *     many; WINDOW_UPDATEs that reopen windows for DATA sent are free, two
 *     per DATA frame), and a header block a size and CONTINUATION bound
 *     derived from max_header_size, and header_timeout from its HEADERS
 *     to its end: crossing one queues GOAWAY ENHANCE_YOUR_CALM, reading
 *     stops, and the connection closes once the GOAWAY is written; its
 *     open requests are logged with the flood (or "header block timeout")
 *     as their reason.
 * The timeouts are kept by the connection's one timer: while streams are
 * open it runs at least every min(send_timeout, body_timeout,
 * header_timeout) and re-arms for the earliest deadline.
 * Freeing the connection releases its requests in O(open streams). */
int cr_h2_attach(struct cr_conn *c, cr_request_submit_cb submit);

#endif
