/* upstream.h - one persistent upstream connection: TCP, TLS (verified, with
 * our client certificate, session resumed on reconnect) and the protocol
 * spoken over it, chosen by upstream.protocol: HTTP/2 (upstream_h2.c, an
 * nghttp2 client session whose streams carry requests from any client
 * connection) or HTTP/1.1 (upstream_h1.c, keep-alive with optional
 * pipelining). "Stream" below means an HTTP/2 stream or one HTTP/1.1
 * exchange.
 *
 * States: IDLE (not connected; waiting for a reconnect) -> CONNECTING ->
 * HANDSHAKE -> READY -> GOAWAY (the server retires it: no new streams) ->
 * IDLE again. The pool owns every cr_upconn for the worker's lifetime and
 * hears of its news through pool.h's "for upstream.c" functions. */
#ifndef CR_UPSTREAM_H
#define CR_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "request.h"
#include "tls.h"

struct cr_pool;
struct cr_worker;
struct cr_upconn;

enum cr_up_state {
    CR_UP_IDLE = 0,
    CR_UP_CONNECTING,
    CR_UP_HANDSHAKE,
    CR_UP_READY,
    CR_UP_GOAWAY,
};

/* A connection of pool p to addr (which must outlive it), IDLE: nothing
 * happens before cr_upconn_connect. Returns NULL when out of memory. */
struct cr_upconn *cr_upconn_new(struct cr_worker *w, struct cr_pool *p,
                                const struct cr_addr *addr);
/* A connection of pool p to addr for one tunnel (request.h): HTTP/1.1
 * over TLS with the pool's TLS settings, whatever upstream.protocol says,
 * IDLE until cr_upconn_open_tunnel. The pool owns it, as its own; it never
 * reconnects. Its handshake resumes a session taken out of sessions (one
 * the tunnel connections to addr before it were given) and the sessions
 * the upstream gives it go there; sessions stays the caller's and must
 * outlive it. Returns NULL when out of memory. */
struct cr_upconn *cr_upconn_new_tunnel(struct cr_worker *w, struct cr_pool *p,
                                       const struct cr_addr *addr,
                                       struct cr_tls_sessions *sessions);
/* Carries tunnel r on u (new, IDLE): r is on it (CR_REQ_UPSTREAM, the
 * response deadline armed) and u connects; the upgrade request (its own
 * Sec-WebSocket-Key, Version 13) goes once TLS is up. The upstream's 101
 * with the right Sec-WebSocket-Accept makes r->status 101 and the bytes
 * flow both ways from then on; another answer is r's response; a wrong or
 * missing Accept, or a failure before the answer, is a 502 (the pool's,
 * never retried). When the exchange ends u is lost (cr_pool_lost) and the
 * pool frees it. r may be answered (and u lost) on return. */
void cr_upconn_open_tunnel(struct cr_upconn *u, struct cr_request *r);
/* Whether u is a tunnel's own connection. */
bool cr_upconn_is_tunnel(const struct cr_upconn *u);

/* Closes it at once and frees it. Its requests are not failed: the back
 * end lets go of each (cr_request_release_be), which frees one its front
 * end had already let go of (a cancelled exchange left to finish, see
 * cr_upconn_cancel); the others stay with their front ends. NULL is a
 * no-op. */
void cr_upconn_free(struct cr_upconn *u);

/* Starts connecting now (from IDLE) or after delay_ms. A failure on the
 * way (connect, TLS, ALPN) is not returned: the pool hears of it
 * (cr_pool_lost) and decides when to try again. */
void cr_upconn_connect(struct cr_upconn *u, uint64_t delay_ms);

enum cr_up_state cr_upconn_state(const struct cr_upconn *u);
/* The worker is exiting without freeing u: takes u out of the gauges in
 * shared memory (connections by state, streams in flight). Once, after
 * the worker's loop has ended: nothing may touch u afterwards but its free. */
void cr_upconn_unpublish(struct cr_upconn *u);
/* Streams it can take now (0 unless READY and not retiring). */
uint32_t cr_upconn_room(const struct cr_upconn *u);
/* Streams on it now. */
uint32_t cr_upconn_inflight(const struct cr_upconn *u);
/* Of those, the streams moved to the streaming class (gate.h): they still
 * take a place in the server's SETTINGS_MAX_CONCURRENT_STREAMS (room), not
 * in the request capacity (cr_pool_capacity). */
uint32_t cr_upconn_streaming(const struct cr_upconn *u);
/* One of its streams (r->streaming now CR_REQ_STREAM_MOVED) moved; it is
 * counted out again when that stream ends (cr_up_stream_done) or the
 * connection goes. */
void cr_upconn_stream_moved(struct cr_upconn *u);
/* The request capacity it offers (cr_pool_capacity's share: its streams
 * in flight, but the moved and tunnel ones, plus its room) if `more` more
 * of its streams moved. An HTTP/1.1 connection carrying a moved stream has
 * no room: nothing is pipelined behind a response that may never end. */
uint32_t cr_upconn_request_room(const struct cr_upconn *u, uint32_t more);
/* Whether it can carry a tunnel (r->upgrade) as an RFC 8441 extended
 * CONNECT stream: an HTTP/2 connection whose peer sent
 * SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (its latest SETTINGS). */
bool cr_upconn_ext_connect(const struct cr_upconn *u);
/* Of its streams (cr_upconn_inflight), those that carry tunnels: they
 * take none of the request capacity (cr_pool_capacity). */
uint32_t cr_upconn_tunnel_streams(const struct cr_upconn *u);
/* A number identifying this connection (changes on each reconnect). */
int64_t cr_upconn_id(const struct cr_upconn *u);
/* Whether the connection proved that the upstream serves on it: it
 * completed a response, or it has been (or was, until it was lost just
 * now) READY for at least min_up_ms. Reset when it connects again. */
bool cr_upconn_proven(const struct cr_upconn *u, uint64_t min_up_ms);
/* Whether the peer has already closed or reset this READY connection
 * although its event has not run yet (one poll(2), no read): when it has,
 * the connection takes no more requests (cr_upconn_room is 0) until the
 * event loop gets to it and it reconnects. For the retry path (a process
 * that died closes all its connections at once), not the hot path. */
bool cr_upconn_check_hangup(struct cr_upconn *u);

/* Opens a stream for r (CR_REQ_UPSTREAM, r->up = u, the response deadline
 * upstream.response_timeout armed); the head is written at the next flush.
 * From then on u reports r's end to the pool (cr_pool_done or
 * cr_pool_stream_failed). Returns 0; CR_EAGAIN when u has no room (not
 * READY, retiring, at the server's stream limit, or nghttp2 refused a new
 * stream); CR_ENOMEM. On an error r is untouched. */
int cr_upconn_submit(struct cr_upconn *u, struct cr_request *r);
/* The front end gave up on r (r->up_cancelled is set): its answer is
 * discarded from now on, and r stays on u, holding its capacity unit and
 * tenant slot, until the upstream ends the exchange; u then releases it
 * through the pool (cr_pool_done) like any other. An exchange the upstream
 * is still working on (no response head, the whole request sent, the
 * response deadline not passed) is left to finish; otherwise, and when
 * called again at the deadline, HTTP/2 resets its stream (released when
 * nghttp2 closes it) and HTTP/1.1, which cannot abandon an exchange,
 * recycles the connection (r released at once). r may be freed on return
 * when its front end had let go. */
void cr_upconn_cancel(struct cr_upconn *u, struct cr_request *r);
/* r->req_body has more bytes or its end: sends them as the flow-control
 * window allows. A no-op unless READY. */
void cr_upconn_resume(struct cr_upconn *u, struct cr_request *r);
/* n bytes of r's response reached the client: HTTP/2 reopens that much of
 * the stream's window, HTTP/1.1 reads again if it had stopped. */
void cr_upconn_consumed(struct cr_upconn *u, struct cr_request *r, size_t n);
/* Graceful close once no stream is left (HTTP/2 GOAWAY first); no
 * reconnect. One not READY closes at once. */
void cr_upconn_retire(struct cr_upconn *u);

#endif
