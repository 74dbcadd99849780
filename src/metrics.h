/* metrics.h - the shared-memory counters in the Prometheus text exposition
 * format 0.0.4, for GET /metrics on the admin listener (admin.c routes).
 *
 * Everything rendered is read from shared memory (shm.h) with relaxed
 * loads and summed over the workers, so a scrape does no work on the data
 * path: the workers only do the atomic increments they do anyway. Counters
 * end in _total, durations are in seconds, histograms have the fixed
 * buckets of cr_hist_bounds_us (1 ms .. 10 s). Label values are bounded by
 * the configuration: tenant (the config's tenants and "default", whatever
 * ids clients send), listener (listeners[].name), upstream
 * (upstream.addrs as written, the first CR_SHM_MAX_UPADDRS; further
 * addresses are counted with the last of those), worker (1..workers).
 *
 * The families, by prefix corral_:
 *   tenant_requests_admitted_total, tenant_requests_queued_total,
 *   tenant_requests_shed_total{reason}, tenant_responses_total{class},
 *   tenant_queue_wait_seconds, tenant_upstream_latency_seconds,
 *   tenant_request_duration_seconds (histograms)          label tenant
 *   listener_connections_accepted_total, listener_connections_open,
 *   listener_handshakes_total{type}, listener_handshake_failures_total{reason},
 *   listener_handshake_cpu_seconds_total{type}             label listener
 *   upstream_connections{state}, upstream_streams_in_flight,
 *   upstream_reconnects_total, upstream_retries_total,
 *   upstream_gateway_errors_total{code}                    label upstream
 *   upstream_admission_capacity (the pool's, all addresses)
 *   workers, worker_restarts_total, generation, reloads_total,
 *   worker_open_fds{worker}, worker_max_fds{worker}         process
 *   (the descriptor gauges as the master last counted them, each second;
 *   a worker slot with no count is left out) */
#ifndef CR_METRICS_H
#define CR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "shm.h"
#include "tenant.h"

/* The content type of the rendered document. */
#define CR_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What a rendering reads; nothing is written. */
struct cr_metrics_src {
    const struct cr_shm *shm;
    const struct cr_config *cfg;       /* listeners' names, upstream addresses, workers */
    const struct cr_tenants *tenants;  /* tenant names by index (NULL: only "default") */
};

/* Renders the whole document into a new buffer: *out (NUL-terminated,
 * the caller frees it) of *len bytes. Returns 0, or CR_ENOMEM (*out NULL). */
int cr_metrics_render(const struct cr_metrics_src *src, char **out, size_t *len);

/* Counts process pid's open descriptors (/proc/PID/fd) and reads its soft
 * RLIMIT_NOFILE (/proc/PID/limits), for the master to publish in shm.
 * Returns 0, or CR_EIO when either cannot be read. */
int cr_metrics_proc_fds(long pid, uint64_t *open, uint64_t *max);

#endif
