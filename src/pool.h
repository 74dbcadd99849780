/* pool.h - the pipeliner: a worker's small set of persistent upstream
 * connections that carry the requests of all its client connections.
 *
 * The pool opens cfg->upstream.connections connections when the worker
 * starts (spread over the configured addresses), keeps them alive, and
 * reconnects a lost one with exponential back-off and jitter (cr_pool_lost).
 * A request is
 * put on the connection with the most room below the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS (and the configured max_streams); when
 * every stream is busy it waits in a bounded FIFO queue. The pool never
 * opens more connections than configured.
 *
 * The pool holds the back-end reference of every request it was given
 * (request.h) until the request's upstream stream is gone. */
#ifndef CR_POOL_H
#define CR_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"
#include "worker.h"

struct cr_pool;
struct cr_upconn;

/* Creates the pool of worker w: its tenants, its admission engine and its
 * upstream connections, all idle: nothing connects before cr_pool_start.
 * Returns 0 or CR_ENOMEM. */
int cr_pool_new(struct cr_worker *w, struct cr_pool **out);

/* Starts connecting every connection of the pool. */
void cr_pool_start(struct cr_pool *p);

/* Frees the pool and its connections, closing them at once. Requests still
 * queued or in flight are forgotten (the front ends own them). A worker
 * never needs it (it exits); tests do. NULL is a no-op. */
void cr_pool_free(struct cr_pool *p);

/* Connection i of the pool (0 <= i < upstream.connections), or NULL past
 * the end; the pool keeps owning it. For tests and benchmarks that bring
 * one up over memory instead of a socket (upstream_int.h). */
struct cr_upconn *cr_pool_conn(const struct cr_pool *p, size_t i);

/* Names r's tenant and priority from its head and the TLS SNI name. First
 * rewrites r->path in place in its normal form (cr_tenants_normalize_path:
 * dot segments removed, unreserved characters decoded), which is what
 * prefixes are matched against and what goes upstream and to the access
 * log. */
void cr_pool_classify(struct cr_pool *p, struct cr_request *r, const char *sni);

/* Takes a request whose head is complete and classified (r->be_held is
 * set). Admission sends it upstream, queues it (up to its tenant's
 * max_wait), or answers it at once: 429/503 with Retry-After when its
 * tenant or the upstream is over its share, 502 when no upstream
 * connection is coming. */
void cr_pool_submit(struct cr_pool *p, struct cr_request *r);

/* The tenant table of this worker (for the admin endpoint). */
const struct cr_tenants *cr_pool_tenants(const struct cr_pool *p);

/* The front end is done with r, or r was answered locally: leave the queue
 * or reset the upstream stream, and release the back-end reference. */
void cr_pool_cancel(struct cr_request *r);

/* More request body (or its end) is in r->req_body. */
void cr_pool_req_body(struct cr_request *r);

/* The client took n response bytes: reopen that much upstream window. */
void cr_pool_resp_consumed(struct cr_request *r, size_t n);

/* Graceful stop: no new connections; close each once it carries nothing. */
void cr_pool_drain(struct cr_pool *p);

/* Nothing in flight and nothing queued. */
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
/* A request's upstream exchange completed (its response is whole). */
void cr_pool_done(struct cr_pool *p, struct cr_request *r);
/* A request's stream failed before any response byte; retry or answer. */
void cr_pool_stream_failed(struct cr_pool *p, struct cr_request *r, bool refused);

#endif
