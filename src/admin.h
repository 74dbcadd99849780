/* admin.h - the admin endpoint: cleartext HTTP on a loopback address.
 *
 *   GET /stats   JSON counters of the whole host, summed over the workers
 *                from shared memory, and per worker
 *   GET /metrics the same counters and more in the Prometheus text format
 *                (metrics.h)
 *   GET /health  200 "ok" while every worker of the current generation runs
 *                and at least one upstream connection is ready; 503 with
 *                the reason otherwise, and from a drain's start on
 *   GET /live    200 "ok" whenever a worker answers (not the upstream's)
 *   POST /drain  from a loopback peer only (else 403): /health fails at
 *                once, corral serves on for drain_grace, then stops as
 *                SIGTERM does (the master's drain, as SIGUSR2); 202
 *
 * The master binds the socket; every worker accepts on it (the counters are
 * host-wide, so any worker can answer). The connection closes after the
 * answer, which is written as the socket drains when it does not fit at
 * once (within admin.timeout, counted from accept). Limits, so that slow or piled-up clients cannot hold a worker's
 * descriptors:
 *   admin.max_connections  open at once per worker; one more is answered
 *                          503 and closed at once
 *   admin.timeout          from accept to the end of the request's head,
 *                          however slowly bytes keep coming: 408
 *   CR_ADMIN_REQ_MAX       bytes of request head: 431 */
#ifndef CR_ADMIN_H
#define CR_ADMIN_H

#include "tenant.h"
#include "worker.h"

#define CR_ADMIN_REQ_MAX 4096

/* Starts serving the admin socket fd in worker w. Returns 0 or CR_ENOMEM. */
int cr_admin_start(struct cr_worker *w, int fd);

/* Stops accepting (drain). */
void cr_admin_stop(struct cr_worker *w);

/* Writes the /stats document into buf; returns its length (truncated to
 * len - 1). Pure formatting of shm (tenants names the per-tenant slots). */
size_t cr_admin_stats_json(const struct cr_shm *shm, uint32_t nworkers,
                           const struct cr_tenants *tenants, char *buf, size_t len);

/* Why /health fails: the reason into buf (e.g. "draining\n"), its length;
 * 0 when healthy. Reads shm's draining flag, workers_running against
 * workers_configured and the upstream_ready of the first nworkers slots. */
size_t cr_admin_health(const struct cr_shm *shm, uint32_t nworkers, char *buf, size_t len);

#endif
