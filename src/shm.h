/* shm.h - the memory every worker shares, set up by the master.
 *
 * One anonymous MAP_SHARED mapping created by the master before it forks the
 * first worker; it lives as long as the master and survives reloads, so the
 * statistics and ticket keys are continuous. Fields are updated with C11
 * atomics only; nothing here takes a lock. */
#ifndef CR_SHM_H
#define CR_SHM_H

#include <stdatomic.h>
#include <stdint.h>

#include "admit.h"
#include "ticket.h"

#define CR_SHM_MAX_WORKERS 256
#define CR_SHM_MAX_LISTENERS 64
#define CR_SHM_MAX_UPADDRS 16 /* upstream.addrs counted per address; more share the last */
#define CR_SHM_UP_NSTATES 5   /* enum cr_up_state (upstream.h) */

/* Latency histograms (metrics.h renders them): fixed buckets, counts per
 * bucket (not cumulative), the last one past the largest bound. */
#define CR_HIST_NBOUNDS 13
#define CR_HIST_NBUCKETS (CR_HIST_NBOUNDS + 1)
extern const uint64_t cr_hist_bounds_us[CR_HIST_NBOUNDS]; /* 1 ms .. 10 s */
enum cr_hist_kind { CR_HIST_QUEUE = 0, CR_HIST_UPSTREAM, CR_HIST_TOTAL, CR_HIST_N };
struct cr_shm_hist {
    _Atomic uint64_t bucket[CR_HIST_NBUCKETS];
    _Atomic uint64_t sum_us;
};
/* Counts one observation of us microseconds (relaxed atomics). */
void cr_shm_hist_add(struct cr_shm_hist *h, uint64_t us);

/* Why a TLS handshake failed, as counted per worker. */
enum cr_hs_fail {
    CR_HSF_VERSION = 0, /* protocol version refused (TLS 1.0/1.1, SSLv3) */
    CR_HSF_CIPHER,      /* no shared cipher suite, group or signature algorithm */
    CR_HSF_SNI,         /* the client named a host we have no certificate for, then gave up */
    CR_HSF_TIMEOUT,     /* silent past client_hello_timeout, or not done in handshake_timeout */
    CR_HSF_EOF,         /* the client closed mid-handshake */
    CR_HSF_NOT_TLS,     /* plain HTTP or garbage on the TLS port */
    CR_HSF_ALERT,       /* the client refused us with an alert (e.g. unknown CA) */
    CR_HSF_OTHER,
    CR_HSF_MAX
};
extern const char *const cr_hs_fail_names[CR_HSF_MAX];

struct cr_shm_worker_stats {
    _Atomic uint64_t conns_accepted;
    _Atomic uint64_t conns_open;
    _Atomic uint64_t conns_max;       /* the worker's max_connections, as it applies it */
    _Atomic uint64_t conns_lingering; /* of conns_open, in a lingering close now */
    _Atomic uint64_t handshakes_full;
    _Atomic uint64_t handshakes_resumed;
    _Atomic uint64_t handshakes_failed;
    _Atomic uint64_t tls_handoffs;  /* connections moved to tlsrec.h */
    _Atomic uint64_t proxy_refused; /* PROXY protocol: from outside proxy_from,
                                     * or no valid header in time */
    _Atomic uint64_t hs_fail[CR_HSF_MAX];
    _Atomic uint64_t hs_cpu_us_full;    /* CPU spent in full handshakes */
    _Atomic uint64_t hs_cpu_us_resumed; /* and in resumed ones */
    _Atomic uint64_t handshakes_active; /* in progress now */
    _Atomic uint64_t requests;
    _Atomic uint64_t requests_active; /* begun, front end not done with them yet */
    _Atomic uint64_t responses_by_class[6]; /* 1xx..5xx, [0] = reset */
    _Atomic uint64_t admit_capacity; /* streams admission may hand out now (gate.c) */
    _Atomic uint64_t upstream_ready;        /* upstream connections READY now (/health) */
    _Atomic uint64_t quota_fallback;  /* workers in this slot whose global rates use the
                                       * per-host share (quota.h): 1 while this one's do,
                                       * added and taken back, as a reload's generations
                                       * share the slot */
    _Atomic uint64_t tunnel_connections;    /* tunnels' own upstream connections now (pool.c) */
    _Atomic uint64_t tunnels_open;          /* tunnels admitted and not ended (gate.c) */
    _Atomic uint64_t quota_fallbacks; /* times it went to the per-host share */
    _Atomic uint64_t quota_asks;      /* lease scripts sent to Redis */
    _Atomic uint64_t quota_tokens;    /* tokens Redis granted */
    /* upstream.adaptive (gate.c, adapt.h), 0 when it is off: the limit is a
     * gauge added to and subtracted from like admit_capacity, so the sum
     * over workers is the host's limit; min_rtt and gradient are the last
     * values this slot's worker wrote (their sum means nothing) */
    _Atomic uint64_t adaptive_limit;
    _Atomic uint64_t adaptive_min_rtt_us;
    _Atomic uint64_t adaptive_gradient_milli; /* gradient x 1000 */
};

/* One worker's counts for one listener (conn.c). */
struct cr_shm_listener_stats {
    _Atomic uint64_t conns_accepted;
    _Atomic uint64_t conns_open;
    _Atomic uint64_t handshakes_full;
    _Atomic uint64_t handshakes_resumed;
    _Atomic uint64_t hs_fail[CR_HSF_MAX];
    _Atomic uint64_t hs_cpu_us_full;
    _Atomic uint64_t hs_cpu_us_resumed;
};

/* One worker's counts for one upstream address (upstream.c, pool.c,
 * request.c). conns and inflight are gauges. */
struct cr_shm_up_stats {
    _Atomic uint64_t conns[CR_SHM_UP_NSTATES]; /* connections in each state now */
    _Atomic uint64_t inflight;                 /* streams on them now */
    _Atomic uint64_t reconnects;               /* connection attempts after the first */
    _Atomic uint64_t retries;                  /* requests moved to another connection */
    _Atomic uint64_t responses_502;
    _Atomic uint64_t responses_504;
};

/* Host-wide counters of one tenant (index as in tenant.h). */
struct cr_shm_tenant_stats {
    _Atomic uint64_t admitted; /* sent upstream */
    _Atomic uint64_t queued;   /* of which waited in the queue first */
    _Atomic uint64_t shed[CR_ADMIT_NREASONS];
    _Atomic uint64_t responses_by_class[6]; /* as in the worker stats, [0] = reset */
    _Atomic uint64_t tunnels_opened;  /* tunnels admitted (gate.c) */
    _Atomic uint64_t tunnels_refused; /* refused by tunnels / tunnel_rate (429) */
    _Atomic uint64_t tunnels_open;    /* admitted and not ended, over the workers */
    _Atomic uint64_t tunnel_tat;      /* tunnel_rate's bucket (gcra.h), shared by the workers */
    struct cr_shm_hist hist[CR_HIST_N];     /* queue wait, upstream, total latency */
    /* the streaming class (gate.h): responses in it now (a gauge, each
     * worker adds its own and takes it out when it exits), moved to it,
     * and kept in the request class because it was full */
    _Atomic uint64_t streaming_open;
    _Atomic uint64_t streaming_moved;
    _Atomic uint64_t streaming_over_cap;
    _Atomic uint64_t streaming_refused; /* accept: text/event-stream, class full: 429 */
    _Atomic uint64_t streaming_client_bound; /* open past streaming_after, but its bytes
                                              * wait on the client: kept (gate.c) */
};

/* The requests one worker has in flight upstream (its admission's count:
 * a request counts until the upstream ends its exchange), published for
 * the workers of other generations in the same worker slot. During a
 * reload's handoff and drain the old and new worker of a slot both talk to
 * the upstream: each admits only upstream.max_streams minus what the
 * others of its slot still have there (gate.c), so the upstream never sees
 * more than the cap per worker slot. A worker sets its entry up when it
 * starts (row[generation % CR_SHM_GENS]); the master clears it when the
 * worker is reaped. With more than CR_SHM_GENS generations alive at once
 * (reloads faster than drains) the oldest one's entry is taken over and
 * it is no longer counted. */
#define CR_SHM_GENS 4
struct cr_shm_upflight {
    _Atomic uint64_t generation; /* whose entry this is; 0 = nobody's */
    _Atomic uint64_t inflight;
};

/* What one worker slot holds open per tenant: the worker adds and takes its
 * own here beside the tenants' sums (cr_shm_tenant_stats tunnels_open,
 * streaming_open), so that the master can take a worker that died without
 * saying out of those sums (master.c lost()). */
struct cr_shm_tenant_open {
    _Atomic uint32_t tunnels;
    _Atomic uint32_t streaming;
};

struct cr_shm {
    _Atomic uint64_t generation; /* bumped by the master per reload */
    _Atomic uint64_t reloads;         /* reloads that started a new generation (master) */
    _Atomic uint64_t worker_restarts; /* workers restarted after dying (master) */
    /* each running worker's open descriptors and their limit, refreshed
     * every second by the master (0, 0: no worker runs in the slot) */
    _Atomic uint64_t worker_fds[CR_SHM_MAX_WORKERS];
    _Atomic uint64_t worker_max_fds[CR_SHM_MAX_WORKERS];
    /* Written by the master (the workers only read them), for /health: */
    _Atomic uint64_t workers_configured; /* the current generation's workers */
    _Atomic uint64_t workers_running;    /* of those, running now */
    /* Set at a drain's start (SIGUSR2, or a worker's POST /drain, which
     * sets it itself before it tells the master): /health answers 503
     * from then on. */
    _Atomic uint64_t draining;
    struct cr_shm_worker_stats workers[CR_SHM_MAX_WORKERS];
    struct cr_shm_listener_stats listeners[CR_SHM_MAX_WORKERS][CR_SHM_MAX_LISTENERS];
    struct cr_shm_up_stats upstreams[CR_SHM_MAX_WORKERS][CR_SHM_MAX_UPADDRS];
    struct cr_ticket_ring tickets[CR_SHM_MAX_LISTENERS]; /* per listener */
    struct cr_admit_shared admit;                        /* tenants' rate state */
    struct cr_shm_tenant_stats tenants[CR_ADMIT_MAX_TENANTS];
    struct cr_shm_upflight upflight[CR_SHM_MAX_WORKERS][CR_SHM_GENS];
    struct cr_shm_tenant_open tenant_open[CR_SHM_MAX_WORKERS][CR_ADMIT_MAX_TENANTS];
};

/* Maps a zeroed region (master only). Returns NULL on failure, errno set. */
struct cr_shm *cr_shm_create(void);

/* Unmaps it (master at exit; workers simply exit). */
void cr_shm_destroy(struct cr_shm *shm);

#endif
