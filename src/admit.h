/* admit.h - per-tenant admission: the queues in front of the upstream pool,
 * the engine of the worker's gate (gate.h, which owns it and does what it
 * decides).
 *
 * One struct cr_admit per worker. It decides, for each request that has been
 * given a tenant (tenant.h) and a priority, whether it goes upstream now,
 * waits in its tenant's queue, or is refused with 429 or 503 and a
 * Retry-After. It is pure logic: no sockets, no timers, no logging, no clock
 * of its own. Every call takes `now_us` (CLOCK_MONOTONIC, microseconds,
 * never decreasing between calls on one engine) and the caller owns the
 * event loop:
 *
 *   - on a request:        cr_admit_arrive(); GO -> send it upstream;
 *                          QUEUED -> park it; SHED -> answer why->status.
 *   - when a dispatched request ends:  cr_admit_done(), then drain
 *                          cr_admit_next() until NULL, sending each upstream.
 *   - when the pool's capacity changes: cr_admit_set_capacity(), then drain
 *                          cr_admit_next().
 *   - when a queued client goes away:  cr_admit_cancel().
 *   (Draining cr_admit_next after every done and capacity change is part of
 *   the contract: a new request only jumps ahead of queued ones when none of
 *   them can be dispatched.)
 *   - one timer, re-armed after each of the above at cr_admit_next_wakeup():
 *                          drain cr_admit_expire() (answer each), then drain
 *                          cr_admit_next().
 *
 * Every operation is O(1) or O(log tenants); nothing scans the queued
 * requests. Requests are never allocated here: the caller embeds a struct
 * cr_admit_item in its own request struct (intrusive links).
 *
 * LIMITS ACROSS WORKERS. corral runs one engine per worker process:
 *   - rate and burst hold for the whole host, exactly: each tenant's GCRA
 *     state (gcra.h) is one word in memory shared by all workers;
 *   - concurrency and queue are split evenly: each worker allows
 *     ceil(limit / nworkers) (at least 1 when the limit is not 0). Error
 *     bound: the host-wide total never exceeds limit + nworkers - 1 (the
 *     rounding), but a tenant whose connections land unevenly on workers may
 *     be held to its per-worker share on a busy worker while another worker
 *     has free slots, i.e. it may get as little as limit / nworkers in
 *     flight when all its traffic is on one worker. Keeping these exact
 *     would take a cross-process lock or counter on every dispatch and done;
 *     the split errs on the side of protecting the upstream.
 *   - capacity (cr_admit_set_capacity) is this worker's own upstream streams.
 *
 * ORDER. Strict priority: CR_PRIO_HIGH before NORMAL before LOW. Within a
 * priority, deficit round robin across tenants with a quantum of `weight`
 * requests: under contention each backlogged tenant gets dispatches in
 * proportion to its weight. FIFO within a tenant. A tenant is skipped (and
 * parked until it can go again, so it costs nothing) while it is at its
 * concurrency share, while HEADROOM holds it back (at any priority) or, for
 * NORMAL and LOW, while its GCRA bucket is empty; the GCRA token is taken
 * at dispatch. A new request goes straight upstream only if nobody of its tenant at equal
 * or higher priority is queued, no other tenant at equal or higher priority
 * is waiting for capacity (a tenant held back by HEADROOM is not), and
 * HEADROOM does not hold its tenant back.
 *
 * HEADROOM (cr_admit_set_headroom, upstream.headroom). With every slot
 * taken by one tenant and a fixed service time, slots free in waves and a
 * request of a quiet tenant would wait up to one service time. So a tenant
 * at or over its fair share never takes the last R slots while another
 * tenant is active:
 *   - R = round(capacity * percent / 100), at least 1 (0 when percent is 0);
 *   - a tenant is active while it has a request queued or in flight, and
 *     for CR_ADMIT_ACTIVE_MS after its last arrival or done;
 *   - its fair share is capacity * weight / (the sum of the weights of the
 *     active tenants, its own included);
 *   - it is held back when in flight + R >= capacity (one more would leave
 *     fewer than R free), another tenant is active, and its in flight >=
 *     its fair share. A tenant with nothing in flight is never held back.
 * Held back, it waits like one waiting for capacity (503 when refused); it
 * goes again when a done brings in flight + R below capacity, one of its
 * own requests ends, or a tenant stops being active. Work-conserving when
 * only one tenant is active; the cost to a burst is at most R slots, and
 * only while others are active.
 *
 * PRIORITIES.
 *   - HIGH requests bypass the tenant's rate (they take no GCRA token and are
 *     never refused for rate), never wait behind NORMAL or LOW queued
 *     requests, and have a queue allowance of their own (the tenant's queue
 *     share again, counted over HIGH requests only), so a queue full of
 *     NORMAL requests never refuses them; they still respect the worker's
 *     capacity, the tenant's concurrency share and HEADROOM.
 *   - LOW requests are shed first: while capacity is saturated (in flight >=
 *     capacity) a LOW request is refused at arrival with 503 and is never
 *     queued. LOW requests queued earlier (for their tenant's own limits)
 *     are dispatched only when no HIGH or NORMAL request can be.
 *
 * REFUSALS (struct cr_admit_shed). A request that cannot go now is queued
 * unless its tenant's queue share is full (or queue or max_wait is 0), or
 * the wait predicted for it already exceeds max_wait (not while the
 * capacity is 0: the upstream is reconnecting, and the dispatch rate says
 * nothing about when it is back; the deadline decides). The status says whose
 * limit it is: 429 when the tenant's own rate or concurrency holds it back,
 * 503 when the upstream's capacity does.
 *   reason                    status  when
 *   "tenant rate limit"       429     over rate, queue full
 *   "tenant queue full"       429     over concurrency share, queue full
 *   "upstream saturated"      503     capacity saturated (or HEADROOM), queue
 *                                     full; or LOW
 *   "deadline cannot be met"  429/503 the predicted wait exceeds max_wait
 *   "queue deadline exceeded" 429/503 from cr_admit_expire: waited > max_wait
 * A queued request may wait max_wait exactly; it expires once it has waited
 * longer. The predicted wait of a request with n requests of its tenant
 * ahead of it (same or higher priority) is the larger of:
 *   - (n + 1) * the tenant's measured dispatch interval: an EWMA (weight
 *     1/8) of the time between dispatches from its queue while it is
 *     backlogged, each gap counted as at most max_wait; while dispatches
 *     stall it is projected as if one happened now. Unknown, so unused,
 *     until the first dispatch from the queue. Because of the cap, the first
 *     in line is never refused on this estimate, so it keeps being measured
 *     and recovers (1/8 per dispatch) when the upstream does;
 *   - for NORMAL and LOW with a rate, the exact GCRA lower bound for n + 1
 *     more tokens (cr_gcra_wait_us): a request refused on it could not have
 *     been served in time even with the whole host's rate.
 * Retry-After is the prediction for the back of the queue (at least 1 s),
 * plus 0..50% uniform random jitter so that a refused herd does not come
 * back in lockstep, rounded stochastically to whole seconds (so the mean is
 * kept), at most CR_ADMIT_RETRY_MAX_S.
 *
 * RELOADS. Tenant i's rate state is shm->tat[i]; a new config that renumbers
 * tenants inherits the old numbers' states. A stale state is at most one
 * burst of the old tenant's intervals in the future; zero the array on
 * reload if that matters. */
#ifndef CR_ADMIT_H
#define CR_ADMIT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

#include "config.h"
#include "tenant.h"

/* Most tenants (default included) an engine accepts; the shared array's size. */
#define CR_ADMIT_MAX_TENANTS 1024

/* How long a tenant stays active for HEADROOM after its last arrival or done. */
#define CR_ADMIT_ACTIVE_MS 1000

/* Upper bound of Retry-After, in seconds. */
#define CR_ADMIT_RETRY_MAX_S 3600

/* The host-wide part: one GCRA state per tenant index. The caller puts it in
 * memory shared by every worker (zeroed = every bucket full) and keeps it
 * alive as long as any engine uses it. Opaque values, see gcra.h. */
struct cr_admit_shared {
    _Atomic uint64_t tat[CR_ADMIT_MAX_TENANTS];
};

/* A request's place in admission, embedded in the caller's request struct.
 * Zero it (or cr_admit_item_init) before its first cr_admit_arrive; an item
 * may arrive again once it is idle (shed, expired, cancelled or done). All
 * fields but `owner` are private to admit.c. */
struct cr_admit_item {
    TAILQ_ENTRY(cr_admit_item) link; /* in its tenant's queue */
    uint64_t arrived_us;
    uint64_t deadline_us; /* arrived + tenant max_wait */
    uint64_t dispatched_us;
    uint32_t tenant;    /* index */
    uint8_t prio;       /* enum cr_priority */
    uint8_t state;      /* idle, queued, in flight */
    uint8_t dispatched; /* dispatched_us is valid */
    void *owner;        /* the caller's, never touched */
};

enum cr_admit_verdict {
    CR_ADMIT_GO = 0, /* dispatch now; call cr_admit_done when it ends */
    CR_ADMIT_QUEUED, /* waits: comes back from cr_admit_next or cr_admit_expire */
    CR_ADMIT_SHED,   /* refused: answer why->status now; the item is idle */
};

enum cr_admit_reason {
    CR_ADMIT_SHED_RATE = 0,   /* "tenant rate limit" */
    CR_ADMIT_SHED_QUEUE_FULL, /* "tenant queue full" */
    CR_ADMIT_SHED_SATURATED,  /* "upstream saturated" */
    CR_ADMIT_SHED_DEADLINE,   /* "deadline cannot be met" (predicted at arrival) */
    CR_ADMIT_SHED_EXPIRED,    /* "queue deadline exceeded" (cr_admit_expire) */
    CR_ADMIT_NREASONS
};

struct cr_admit_shed {
    int status; /* 429 or 503 */
    enum cr_admit_reason kind;
    const char *reason;     /* static string, for logs and the body */
    uint32_t retry_after_s; /* 1..CR_ADMIT_RETRY_MAX_S, for Retry-After */
};

/* Counters of one tenant on this engine. */
struct cr_admit_stats {
    uint64_t admitted;                /* dispatched, at arrival or from the queue */
    uint64_t queued;                  /* arrivals that waited in the queue */
    uint64_t shed[CR_ADMIT_NREASONS]; /* refusals (and expiries) by reason */
    uint64_t cancelled;               /* left the queue by cr_admit_cancel */
    uint32_t queue_len;               /* waiting now */
    uint32_t inflight;                /* dispatched and not done now */
};

struct cr_admit;

/* Creates a worker's engine for the tenants of t (which must outlive it; the
 * engine keeps a copy of their limits, not a pointer). shm is the host-wide
 * array (must outlive it too). nworkers >= 1 is how many workers split the
 * concurrency and queue limits. seed seeds the Retry-After jitter (give each
 * worker a different one, e.g. pid ^ time). Capacity starts at 0: nothing is
 * dispatched until cr_admit_set_capacity.
 *
 * Returns 0 and *out owns the engine (cr_admit_free), or CR_EINVAL (a NULL
 * argument, nworkers 0), CR_ELIMIT (more than CR_ADMIT_MAX_TENANTS tenants,
 * default included), CR_ENOMEM. On error *out is NULL. */
int cr_admit_new(const struct cr_tenants *t, struct cr_admit_shared *shm, uint32_t nworkers,
                 uint64_t seed, struct cr_admit **out);

/* Frees the engine. Items still queued or in flight are simply forgotten
 * (they belong to the caller). NULL is a no-op. */
void cr_admit_free(struct cr_admit *a);

/* Zeroes an item and sets its owner. */
void cr_admit_item_init(struct cr_admit_item *item, void *owner);

/* Sets how many requests this worker may have in flight upstream now (the
 * pool's connections times the server's SETTINGS_MAX_CONCURRENT_STREAMS, or
 * whatever the pool allows). Lowering it below the current in-flight count
 * cancels nothing: no dispatch happens until in flight < capacity again. A
 * change from 0 (no upstream connection up) to more restarts every
 * tenant's drain-rate clock: time spent waiting for a connection is not an
 * interval between dispatches. O(tenants) then, O(1) otherwise. */
void cr_admit_set_capacity(struct cr_admit *a, uint32_t streams);

/* Sets HEADROOM's percent of the capacity (0: off, the default; more than
 * 100 counts as 100). O(held tenants). */
void cr_admit_set_headroom(struct cr_admit *a, uint32_t percent);

/* Admits a new request. item must be idle; tenant must come from the table
 * the engine was built from (cr_tenants_identify). Returns CR_ADMIT_GO (item
 * now in flight: a GCRA token was taken unless prio is HIGH), CR_ADMIT_QUEUED
 * (item now queued), or CR_ADMIT_SHED with *why filled in (item idle). why
 * must not be NULL. */
enum cr_admit_verdict cr_admit_arrive(struct cr_admit *a, struct cr_admit_item *item,
                                      const struct cr_tenant *tenant, enum cr_priority prio,
                                      uint64_t now_us, struct cr_admit_shed *why);

/* The item arrives again: a request let through before, whose upstream
 * stream failed, retried through admission (cr_gate_readmit). As
 * cr_admit_arrive, but it keeps the deadline of its first arrival: its
 * tenant's max_wait counts from then, not once per attempt. It may wait
 * only what is left of it (the predicted wait must fit in that), queues
 * before the items that arrived after it, and is shed at once ("queue
 * deadline exceeded") when it must wait and nothing is left. item must be
 * idle and not re-initialised since its first arrival. */
enum cr_admit_verdict cr_admit_arrive_again(struct cr_admit *a, struct cr_admit_item *item,
                                            const struct cr_tenant *tenant, enum cr_priority prio,
                                            uint64_t now_us, struct cr_admit_shed *why);

/* Dequeues the next item to dispatch now, in the ORDER above, and marks it
 * in flight (taking its GCRA token); or returns NULL when capacity is
 * saturated or no queued tenant may go now. Call it repeatedly until NULL. */
struct cr_admit_item *cr_admit_next(struct cr_admit *a, uint64_t now_us);

/* A dispatched item finished (any outcome): frees its capacity unit and its
 * tenant's concurrency slot; the item is idle again. Then drain
 * cr_admit_next. The dispatch-interval estimate is sampled at each dispatch
 * from a queue, which is what a done makes possible. No-op unless the item
 * is in flight. */
void cr_admit_done(struct cr_admit *a, struct cr_admit_item *item, uint64_t now_us);

/* A queued item leaves without being dispatched (its client went away); the
 * item is idle again. On an in-flight item it is cr_admit_done; on an idle
 * one a no-op. */
void cr_admit_cancel(struct cr_admit *a, struct cr_admit_item *item);

/* Dequeues one item whose deadline (arrival + its tenant's max_wait) has
 * passed (deadline < now_us), earliest deadline first, or returns NULL. The
 * item is idle; when why is not NULL it says how to refuse it
 * (CR_ADMIT_SHED_EXPIRED). Call it repeatedly until NULL. */
struct cr_admit_item *cr_admit_expire(struct cr_admit *a, uint64_t now_us,
                                      struct cr_admit_shed *why);

/* The earliest time at which cr_admit_expire or cr_admit_next may return
 * something without any other call in between: just past the earliest
 * queue-head deadline, or the earliest time a tenant held back by its rate
 * gets a token (a lower bound: other workers may take it first, and then
 * the next call parks the tenant again with a later time). UINT64_MAX when
 * none. May be <= now: then call them now. */
uint64_t cr_admit_next_wakeup(const struct cr_admit *a);

/* Milliseconds the item waited in the queue: until its dispatch if it was
 * dispatched, else until now_us (for refused or expired items). 0 for an item
 * that went straight upstream. */
double cr_admit_wait_ms(const struct cr_admit_item *item, uint64_t now_us);

/* Copies the counters of tenant index into *out. 0, or CR_EINVAL when the
 * index is out of range. */
int cr_admit_stats(const struct cr_admit *a, uint32_t tenant, struct cr_admit_stats *out);

struct cr_quota;

/* Makes the tenants that q says are global (quota.h) take their rate tokens
 * from q's leases while it is up, and from the host-wide GCRA at their
 * per-host share (rate / hosts) while it is not. q must outlive the engine.
 * Call once, before the first arrival. */
void cr_admit_set_quota(struct cr_admit *a, struct cr_quota *q);

/* Totals of this engine: in flight, queued, capacity. */
uint32_t cr_admit_inflight(const struct cr_admit *a);
uint32_t cr_admit_queued(const struct cr_admit *a);
uint32_t cr_admit_capacity(const struct cr_admit *a);

#endif
