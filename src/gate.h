/* gate.h - admission: what stands between a request whose head is complete
 * and the upstream pool.
 *
 * A worker has one gate. It owns the worker's tenant table (tenant.h), its
 * admission engine (admit.h: pure logic, clock injected) and the engine's
 * timer. For each request it
 *   - names the tenant and the priority (cr_gate_classify);
 *   - decides (cr_gate_submit): the request goes to the pool now
 *     (cr_pool_place), waits in its tenant's queue, or is answered at once -
 *     429/503 with Retry-After when its tenant or the upstream is over its
 *     share ("shed"), 502 when no upstream connection is coming;
 *   - sends queued requests to the pool as capacity frees up
 *     (cr_gate_dispatch), answers those that waited past their tenant's
 *     max_wait (the timer), and takes out those whose client went away
 *     (cr_gate_cancel).
 *
 * The pool places what the gate lets through on its connections, and keeps
 * the gate told: cr_pool_capacity is what its connections can carry (read
 * by the gate before each decision), and the pool calls the functions at
 * the end of this file when that changes or a request's upstream exchange
 * ends. The capacity the engine gets is the pool's less what the workers
 * of other generations in this worker's slot (a reload's old or new
 * worker) have in flight upstream, which each gate publishes in shared
 * memory (shm.h, cr_shm_upflight) and re-reads every 10 ms while it is not
 * 0: the two share upstream.max_streams until the old one is done.
 *
 * With upstream.adaptive the pool's capacity is first capped by the
 * worker's adaptive limit (adapt.h), which cr_gate_done feeds the latency
 * of each exchange (from its stream to its answer's head; a 5xx or an end
 * without an answer is congestion). Each worker learns its own limit; the
 * host's is the sum of the workers' (shm adaptive_limit, /stats total).
 *
 * The gate holds no reference of its own: a request it was given is held
 * by the back end (request.h, be_held) from cr_request_submit on, and the
 * gate either hands that hold to the pool or lets go of it when it answers
 * (cr_request_be_respond) or the request leaves the queue. */
#ifndef CR_GATE_H
#define CR_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"
#include "tenant.h"
#include "worker.h"

struct cr_gate;

/* Creates the gate of worker w: its tenants (from w->cfg), its admission
 * engine (capacity 0 until the pool has a connection up) and its timer on
 * w->base. Returns 0 or CR_ENOMEM (CR_ELIMIT: more tenants than
 * CR_ADMIT_MAX_TENANTS); *out is the gate, or NULL. */
int cr_gate_new(struct cr_worker *w, struct cr_gate **out);

/* Frees the gate. Requests still queued are forgotten (their front ends own
 * them). A worker never needs it (it exits); tests do. NULL is a no-op. */
void cr_gate_free(struct cr_gate *g);

/* Names r's tenant and priority from its head and the TLS SNI name. First
 * rewrites r->path in place in its normal form (cr_tenants_normalize_path:
 * dot segments removed, unreserved characters decoded), which is what
 * prefixes are matched against and what goes upstream and to the access
 * log. */
void cr_gate_classify(struct cr_gate *g, struct cr_request *r, const char *sni);

/* Takes a request whose head is complete and classified (r->be_held is
 * set). It goes to the pool now, waits (CR_REQ_QUEUED, up to its tenant's
 * max_wait and within upstream.queue for the worker), or is answered at
 * once (see the top of this file); r may be freed on return when its
 * front end had let go. A tunnel (r->upgrade, request.h) never waits and
 * never meets the engine: its tenant's tunnels and tunnel_rate admit it
 * (429 + Retry-After otherwise) and the pool opens its own connection for
 * it (cr_pool_tunnel; 503 + Retry-After at upstream.tunnel_connections);
 * cr_gate_done takes it out of its tenant's open tunnels. */
void cr_gate_submit(struct cr_gate *g, struct cr_request *r);

/* The front end is done with r, or r is being answered locally: a queued r
 * leaves the queue and the back end lets go of it; one already given to
 * the pool is cancelled there (cr_pool_cancel). No-op unless r->be_held. */
void cr_gate_cancel(struct cr_gate *g, struct cr_request *r);

/* Nothing queued here and nothing in flight in the pool (cr_pool_idle):
 * a draining worker may stop. */
bool cr_gate_idle(const struct cr_gate *g);

/* The tenant table of this worker (for the admin endpoint). */
const struct cr_tenants *cr_gate_tenants(const struct cr_gate *g);

/* ---- for pool.c: the upstream's news ---- */

/* The pool can carry more (a connection came up, a stream ended): sends
 * every queued request the engine lets go now to the pool, then re-arms
 * the timer. */
void cr_gate_dispatch(struct cr_gate *g);

/* A request the gate let through is done upstream (answered, failed or
 * cancelled): its capacity unit and its tenant's concurrency slot come
 * back. The caller then releases r and calls cr_gate_dispatch. */
void cr_gate_done(struct cr_gate *g, struct cr_request *r);

/* r's stream failed and the pool has no room to retry it on another
 * connection now: its capacity unit comes back and it goes through
 * admission again (cr_admit_arrive_again), so that a refused burst waits
 * instead of failing - within the deadline of its first arrival: its
 * tenant's max_wait bounds its waits all told, not each one; then
 * cr_gate_dispatch. */
void cr_gate_readmit(struct cr_gate *g, struct cr_request *r);

/* r's response head came (through cr_pool_response_head, before its
 * front end sees it). A response with content-type text/event-stream moves
 * at once to its tenant's streaming class; any other is watched and moves
 * if it is still open upstream.streaming_after later (0: never). A moved
 * response leaves the request capacity: its unit in upstream.max_streams
 * and its tenant's concurrency slot come back now (queued requests go),
 * and it counts in its tenant's streaming class until its exchange ends
 * (cr_gate_done). A watched response whose bytes wait on its client at
 * that time (a slow download, not a long poll) stays in the request class
 * for good (streaming_client_bound). The class holds at most
 * tenants[].streaming per host (each worker its share, as concurrency),
 * upstream.max_streaming per worker for all tenants, and, while
 * max_streams is set, only what the connections can carry beyond it
 * (cr_pool_may_move); past that a response stays in the request class - a
 * response already started is never cut - and streaming_over_cap counts
 * it. A request that asks for an event stream
 * (accept: text/event-stream) while its tenant's class is full is refused
 * by cr_gate_submit: 429 "tenant streaming limit", Retry-After 5
 * (streaming_refused). On its upstream connection a moved stream
 * still takes its place in the server's stream limit (pool.h). */
void cr_gate_response_head(struct cr_gate *g, struct cr_request *r);
/* The pool's capacity changed without a stream ending (a connection was
 * lost): the engine takes the new value. Nothing is dispatched. */
void cr_gate_capacity_changed(struct cr_gate *g);

/* The worker is exiting: takes its share out of the capacity, adaptive
 * limit and quota fallback gauges in shared memory (which a worker of the
 * next generation may share). */
void cr_gate_unpublish(struct cr_gate *g);

/* No upstream connection is usable now (cr_pool_available is false).
 * Within the pool's outage window (cr_pool_outage_until) queued requests
 * keep waiting, each up to its max_wait, and new ones queue too; when the
 * window ends with the upstream still down, every queued request is
 * answered 503 "upstream unavailable" with Retry-After, as is each new one
 * until a connection is back. Without a window (outage_wait 0, or an
 * upstream that never served) they get 502 "upstream unavailable" now. */
void cr_gate_upstream_down(struct cr_gate *g);

#endif
