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

/* The same document in steps, so that a large one (a thousand tenants
 * make 4 MB, about 20 ms of rendering) never holds a worker's loop for
 * long: the admin listener renders a step each time the client has taken
 * the last. cr_metrics_begin starts one (*out owns it: cr_metrics_end;
 * src is copied, what it points to must outlive it) and returns 0 or
 * CR_ENOMEM. Each cr_metrics_step renders the next part into a new buffer
 * (*out, NUL-terminated, the caller frees it; *len bytes): up to budget
 * (at least 1) tenants' series of one family or more, and, once the
 * tenant families are done, the rest at once. Returns 1 when that was the
 * last part, 0 when more is to come, CR_ENOMEM (*out NULL; the rendering
 * may not go on). The parts, concatenated, are cr_metrics_render's
 * document, read at the times of the steps. */
struct cr_metrics_render;
int cr_metrics_begin(const struct cr_metrics_src *src, struct cr_metrics_render **out);
int cr_metrics_step(struct cr_metrics_render *m, uint32_t budget, char **out, size_t *len);
void cr_metrics_end(struct cr_metrics_render *m);

/* Tenants a step of the admin listener's rendering covers: about 0.3 ms of
 * the worker's loop for a histogram family. */
#define CR_METRICS_STEP 64

/* Counts process pid's open descriptors (/proc/PID/fd) and reads its soft
 * RLIMIT_NOFILE (/proc/PID/limits), for the master to publish in shm.
 * Returns 0, or CR_EIO when either cannot be read. */
int cr_metrics_proc_fds(long pid, uint64_t *open, uint64_t *max);

#endif
