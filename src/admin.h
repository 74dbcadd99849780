/* admin.h - the admin endpoint: cleartext HTTP on a loopback address.
 *
 *   GET /stats   JSON counters of the whole host, summed over the workers
 *                from shared memory, and per worker
 *   GET /health  "ok"
 *
 * The master binds the socket; every worker accepts on it (the counters are
 * host-wide, so any worker can answer). Requests are read with a small
 * bounded buffer and a timeout; the connection closes after the answer. */
#ifndef CR_ADMIN_H
#define CR_ADMIN_H

#include "tenant.h"
#include "worker.h"

/* Starts serving the admin socket fd in worker w. Returns 0 or CR_ENOMEM. */
int cr_admin_start(struct cr_worker *w, int fd);

/* Stops accepting (drain). */
void cr_admin_stop(struct cr_worker *w);

/* Writes the /stats document into buf; returns its length (truncated to
 * len - 1). Pure formatting of shm (tenants names the per-tenant slots). */
size_t cr_admin_stats_json(const struct cr_shm *shm, uint32_t nworkers,
                           const struct cr_tenants *tenants, char *buf, size_t len);

#endif
