/* quota.h - global tenant rates: tokens leased in batches from Redis.
 *
 * A tenant marked global (tenants[].global, or tenants.global.all) has its
 * rate and burst held for every corral host that points at the same Redis
 * (tenants.global). Nothing on the request path waits for Redis:
 *
 *   - each worker keeps, per global tenant, a LEASE: tokens already taken
 *     from the fleet's bucket. Admission (admit.c) takes one token from it
 *     per request (cr_quota_take), in memory;
 *   - when the lease falls to its low-water mark (half a lease) the worker
 *     asks Redis for another, asynchronously (hiredis on the worker's event
 *     base): one atomic Lua script, a GCRA bucket per tenant kept on Redis
 *     TIME, so the hosts' clocks do not matter. It grants up to `lease`
 *     tokens and says when to ask again when it granted fewer;
 *   - a request that finds its lease empty is over the tenant's rate: it
 *     waits in its queue or gets 429 with Retry-After, as with a local rate.
 *
 * ERROR BOUND. Tokens come out of one bucket of depth `burst` refilled at
 * `rate`, so the fleet never spends more than it was granted; what a window
 * of time can see beyond burst + rate x window is what was leased before it
 * and spent in it: at most 1.5 leases per worker (a lease at its low-water
 * mark plus the one being asked for). The automatic lease size (lease: 0) is
 * rate / (3 x hosts x workers), at least 1, at most burst, so the fleet-wide
 * excess is at most rate x 0.5 s: 5% over any 10 s window. A host that dies
 * strands (never spends) at most 1.5 leases per worker of each tenant.
 *
 * FALLBACK. While Redis is not connected, has not yet answered, or a command
 * is older than command_timeout (then the connection is dropped), every
 * global tenant is limited by the local GCRA (gcra.h) at the per-host
 * share: rate / hosts, burst / hosts (at least 1). Each worker logs the
 * change once each way, counts it (shm quota_fallbacks, quota_fallback) and
 * reconnects with exponential back-off (100 ms doubling to reconnect_max)
 * and 50% jitter.
 *
 * The accounting part (cr_quota_new .. cr_quota_grant) is pure: no I/O, no
 * clock of its own (the caller passes now_us, CLOCK_MONOTONIC). The Redis
 * part starts with cr_quota_start. */
#ifndef CR_QUOTA_H
#define CR_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "tenant.h"

struct event_base;
struct cr_shm_worker_stats;
struct cr_quota;

/* How long an empty lease sends a request back before trying again. */
#define CR_QUOTA_RETRY_US 5000

enum cr_quota_take {
    CR_QUOTA_LEASED = 0, /* a token came from the lease */
    CR_QUOTA_EMPTY,      /* the lease is empty: over the global rate */
    CR_QUOTA_LOCAL,      /* fallback: use the local GCRA at the per-host share */
};

/* Creates a worker's leases for the global tenants of t (both must outlive
 * the quota). cfg->enabled false makes a quota with no global tenant.
 * nworkers >= 1 sizes the automatic lease. Starts in fallback.
 * Returns 0 and *out owns it (cr_quota_free), CR_EINVAL, CR_ENOMEM. */
int cr_quota_new(const struct cr_cfg_quota *cfg, const struct cr_tenants *t, uint32_t nworkers,
                 struct cr_quota **out);

/* Closes the Redis connection (if started) and frees. NULL is a no-op. */
void cr_quota_free(struct cr_quota *q);

/* Seeds the ask jitter (cr_quota_grant); cr_quota_start seeds it at random. */
void cr_quota_seed(struct cr_quota *q, uint64_t seed);

/* Whether tenant index's rate is global (and rated). */
bool cr_quota_is_global(const struct cr_quota *q, uint32_t index);

/* The per-host share used in fallback: rate / hosts, burst / hosts (>= 1). */
double cr_quota_local_rate(const struct cr_quota *q, double rate);
uint32_t cr_quota_local_burst(const struct cr_quota *q, uint32_t burst);

/* The lease size of tenant index (0 when not global). */
uint32_t cr_quota_lease_size(const struct cr_quota *q, uint32_t index);

/* Takes a token for one request of global tenant index. EMPTY sets
 * *retry_at_us (if not NULL) to when it is worth trying again. Below the
 * low-water mark it asks for a refill (through the Redis part, if
 * started). */
enum cr_quota_take cr_quota_take(struct cr_quota *q, uint32_t index, uint64_t now_us,
                                 uint64_t *retry_at_us);

/* A lower bound (us from now_us) on when n + 1 tokens of the lease will be
 * there: 0 when the lease holds more than n. Meaningless in fallback. */
uint64_t cr_quota_wait_us(const struct cr_quota *q, uint32_t index, uint64_t now_us, uint32_t n);

/* Whether leases are being granted (false: fallback). */
bool cr_quota_up(const struct cr_quota *q);

/* --- the exchange with Redis, public for the unit tests --- */

/* The next tenant that should ask for a lease now: returns true with *index
 * and *want (tokens to ask for) and marks it asking; false when none, and
 * then *next_us (if not NULL) is when one may be (UINT64_MAX: none). */
bool cr_quota_due(struct cr_quota *q, uint64_t now_us, uint32_t *index, uint32_t *want,
                  uint64_t *next_us);

/* Redis answered tenant index's ask: granted tokens, and wait_us until its
 * bucket has a token again (0 when it granted all it was asked). Sets up.
 * After a short grant the next ask waits wait_us plus the time the fleet's
 * rate takes to refill half a lease, times a random 0.5..1.5 (so that the
 * workers that found the bucket empty do not ask again in the same order,
 * the first one taking nearly everything each time). */
void cr_quota_grant(struct cr_quota *q, uint32_t index, uint32_t granted, uint64_t wait_us,
                    uint64_t now_us);

/* The connection to Redis came up (every global tenant asks for a lease, so
 * that the first request finds one, and a tenant whose lease is still full
 * asks for a token, so that the answer ends the fallback) or went down (fallback; asks in flight
 * are forgotten). Returns true when the fallback state changed. */
bool cr_quota_set_link(struct cr_quota *q, bool connected);

/* Connects to cfg->addr on base and keeps leases filled; stats (may be
 * NULL) gets the quota counters (shm.h). Returns 0, CR_ENOMEM. Connection
 * failures are not errors: it falls back and retries. */
int cr_quota_start(struct cr_quota *q, struct event_base *base, struct cr_shm_worker_stats *stats);

/* The worker is going: takes its part of stats->quota_fallback back (the
 * slot outlives it, and the next generation's worker of the same id
 * shares it, with global quotas or without). cr_quota_free does it too. */
void cr_quota_unpublish(struct cr_quota *q);

#endif
