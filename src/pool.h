/* pool.h - the pipeliner: a worker's small set of persistent upstream
 * connections that carry the requests of all its client connections.
 *
 * The pool opens cfg->upstream.connections connections when the worker
 * starts (spread over the configured addresses), keeps them alive, and
 * reconnects a lost one with exponential back-off and jitter (cr_pool_lost).
 * The gate (gate.h) admits requests up to what the connections can carry
 * (cr_pool_capacity: the server's SETTINGS_MAX_CONCURRENT_STREAMS per
 * connection, at most upstream.max_streams) and keeps the others in its
 * queues; the pool puts each request it is given on the connection with
 * the most room (cr_pool_place), retries one whose stream failed when that
 * is safe, and tells the gate when a stream ends or a connection comes or
 * goes. The pool never opens more connections than configured.
 *
 * The pool holds the back-end reference of every request placed on it
 * (request.h) until the request's upstream stream is gone. */
#ifndef CR_POOL_H
#define CR_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"
#include "worker.h"

struct cr_pool;
struct cr_upconn;

/* Creates the pool of worker w: its upstream connections, all idle: nothing
 * connects before cr_pool_start. w->gate must be set before the first
 * connection is up (the pool tells it). Returns 0 or CR_ENOMEM. */
int cr_pool_new(struct cr_worker *w, struct cr_pool **out);

/* Starts connecting every connection of the pool. */
void cr_pool_start(struct cr_pool *p);

/* Frees the pool and its connections, closing them at once. Requests still
 * in flight are let go by the back end (cr_upconn_free): those only it
 * held (cancelled, left to finish) are freed, the rest stay with their
 * front ends. A worker never needs it (it exits; everything is still
 * reachable at its leak check); tests do. NULL is a no-op. */
void cr_pool_free(struct cr_pool *p);

/* Connection i of the pool (0 <= i < upstream.connections), or NULL past
 * the end; the pool keeps owning it. For tests and benchmarks that bring
 * one up over memory instead of a socket (upstream_int.h). */
struct cr_upconn *cr_pool_conn(const struct cr_pool *p, size_t i);

/* ---- for gate.c: what the connections can take ---- */

/* How many streams the connections can carry now: those in flight (but
 * the streams moved to the streaming class, gate.h, and those carrying
 * tunnels, cr_upconn_tunnel_streams) plus the room of every READY
 * connection, at most upstream.max_streams when it is set; 0 while
 * draining. A moved stream still takes its place in its connection's
 * room: what is placed respects the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS, on another connection or by waiting. */
uint32_t cr_pool_capacity(const struct cr_pool *p);
/* Whether r's stream (its head come) may move to the streaming class
 * without taking from the request capacity: while upstream.max_streams is
 * set, the connections must still offer it whole afterwards (moved
 * streams only take the server's room beyond max_streams, so the class
 * can never bring cr_pool_capacity to 0). False when r is on no stream. */
bool cr_pool_may_move(const struct cr_pool *p, const struct cr_request *r);

/* Will some connection be able to take streams soon? A READY one, or one
 * connecting (or waiting to) whose slot is not failing; a slot that keeps
 * failing does not count, so that an unreachable upstream gets a fast 502
 * instead of a wait. */
bool cr_pool_available(const struct cr_pool *p);

/* Until when (cr_now_us's clock) requests may wait for an upstream that is
 * not available: upstream.outage_wait from the loss of the last connection
 * that had proved itself (cr_upconn_proven). 0 when there was no such loss
 * (outage_wait 0, or the upstream never served); a time in the past once
 * the outage has lasted longer. */
uint64_t cr_pool_outage_until(const struct cr_pool *p);

/* Puts an admitted request (be_held set) on the connection with the most
 * room, which holds it from now on (CR_REQ_UPSTREAM). Returns 0, or
 * CR_EAGAIN (no connection has room) or CR_ENOMEM: r is then untouched and
 * the caller answers it. */
int cr_pool_place(struct cr_pool *p, struct cr_request *r);

/* Puts tunnel r (request.h; be_held set) on a pool connection whose peer
 * takes extended CONNECT (cr_upconn_ext_connect) and has room, as such a
 * stream (RFC 8441), where the pool's requests do not count it
 * (cr_upconn_tunnel_streams); else opens a tunnel's own upstream
 * connection for r and puts r on it (cr_upconn_open_tunnel): an HTTP/1.1
 * upgrade over TLS with the pool's TLS settings, never counted in
 * cr_pool_capacity. From then on the pool holds r as any placed request
 * (cr_pool_done or a 502 when the connection fails before the upstream
 * answers; never retried) and frees the connection when the tunnel ends.
 * Returns 0 (r may be answered already), CR_ELIMIT (upstream.tunnel_connections
 * of them are open), CR_EAGAIN (draining) or CR_ENOMEM: r is then
 * untouched and the caller answers it. */
int cr_pool_tunnel(struct cr_pool *p, struct cr_request *r);
/* Tunnel connections open (or connecting) now. */
uint32_t cr_pool_tunnels(const struct cr_pool *p);
/* The worker is exiting, maybe with tunnels or GOAWAY'd connections still
 * open (its drain timed out): takes the connections it holds outside its
 * slots out of the gauges in shared memory, as cr_upconn_unpublish does
 * for the slots'. Once, after the loop. */
void cr_pool_unpublish_held(struct cr_pool *p);

/* r, placed earlier, is being given up (its client left, or it is answered
 * locally): resets its upstream stream if it is still on one, then as
 * cr_pool_done. */
void cr_pool_cancel(struct cr_pool *p, struct cr_request *r);

/* More request body (or its end) is in r->req_body. */
void cr_pool_req_body(struct cr_request *r);

/* The client took n response bytes: reopen that much upstream window. */
void cr_pool_resp_consumed(struct cr_request *r, size_t n);

/* Graceful stop: no new connections; close each once it carries nothing. */
void cr_pool_drain(struct cr_pool *p);

/* No stream in flight on any connection (the gate's queue is
 * cr_gate_idle's business). */
bool cr_pool_idle(const struct cr_pool *p);

/* ---- for upstream.c: a connection's news ---- */

/* c can take streams (connected, SETTINGS received, or a stream ended). */
void cr_pool_room(struct cr_pool *p, struct cr_upconn *c);
/* How a connection was lost. */
enum cr_pool_loss {
    CR_POOL_LOST_FAILED,   /* an error, a timeout, a close in mid-exchange */
    CR_POOL_LOST_CLOSED,   /* the upstream ended it cleanly: GOAWAY, an idle
                            * close, Connection: close */
    CR_POOL_LOST_RECYCLED, /* we ended it: a request abandoned mid-exchange */
};

/* The upstream sent c GOAWAY: it takes no new stream. If streams are still
 * on it (tunnels, event streams, long polls may last hours), a new
 * connection takes its slot - at once if c proved itself
 * (cr_upconn_proven), else after the slot's back-off as in cr_pool_lost -
 * and c is held outside the slots until its last stream ends; else c keeps
 * its slot, closes once empty, and cr_pool_lost reconnects it. */
void cr_pool_goaway(struct cr_pool *p, struct cr_upconn *c);
/* c is gone; the pool reconnects it. A connection we recycled, or one the
 * upstream closed cleanly after it proved itself (cr_upconn_proven with
 * upstream.reconnect_max: it completed a response, or it stayed up at
 * least that long), reconnects at once, and its slot's back-off starts
 * again from upstream.reconnect_min. Any other loss - a failure, or a
 * clean close of a young connection that carried nothing, as from a load
 * balancer that closes or GOAWAYs every new connection - waits the slot's
 * back-off, +-25% jitter, and doubles it up to upstream.reconnect_max: such
 * an upstream sees a few connections a second at first, then one per
 * reconnect_max, never a tight TLS reconnect loop. */
void cr_pool_lost(struct cr_pool *p, struct cr_upconn *c, enum cr_pool_loss how);
/* A request's upstream exchange ended (its response is whole, or it was
 * cancelled): the gate gets its capacity unit back, the back end lets go
 * of r (which may free it), and queued requests may go. */
void cr_pool_done(struct cr_pool *p, struct cr_request *r);
/* r's response head came (upstream.c, before the front end sees it): the
 * gate decides whether it is a stream that leaves the request capacity
 * (cr_gate_response_head). */
void cr_pool_response_head(struct cr_pool *p, struct cr_request *r);
/* The gate moved r, on its stream, to the streaming class: its connection
 * counts it out of the request capacity (cr_upconn_stream_moved). */
void cr_pool_stream_moved(struct cr_pool *p, struct cr_request *r);
/* A request's stream failed. Before any response byte: retried (twice at
 * most) when that is safe (refused by the server or idempotent, and no
 * body byte sent on the stream that failed), on another connection now (not one the peer has
 * already closed, cr_upconn_check_hangup) or through the gate again, where
 * it may wait out an outage (cr_pool_outage_until); else answered 502.
 * After: its response is cut short. */
void cr_pool_stream_failed(struct cr_pool *p, struct cr_request *r, bool refused);

#endif
