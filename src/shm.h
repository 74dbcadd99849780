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
    _Atomic uint64_t tls_handoffs; /* connections moved to tlsrec.h */
    _Atomic uint64_t hs_fail[CR_HSF_MAX];
    _Atomic uint64_t hs_cpu_us_full;    /* CPU spent in full handshakes */
    _Atomic uint64_t hs_cpu_us_resumed; /* and in resumed ones */
    _Atomic uint64_t handshakes_active; /* in progress now */
    _Atomic uint64_t requests;
    _Atomic uint64_t requests_active; /* begun, front end not done with them yet */
    _Atomic uint64_t responses_by_class[6]; /* 1xx..5xx, [0] = reset */
};

/* Host-wide counters of one tenant (index as in tenant.h). */
struct cr_shm_tenant_stats {
    _Atomic uint64_t admitted; /* sent upstream */
    _Atomic uint64_t queued;   /* of which waited in the queue first */
    _Atomic uint64_t shed[CR_ADMIT_NREASONS];
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

struct cr_shm {
    _Atomic uint64_t generation; /* bumped by the master per reload */
    struct cr_shm_worker_stats workers[CR_SHM_MAX_WORKERS];
    struct cr_ticket_ring tickets[CR_SHM_MAX_LISTENERS]; /* per listener */
    struct cr_admit_shared admit;                        /* tenants' rate state */
    struct cr_shm_tenant_stats tenants[CR_ADMIT_MAX_TENANTS];
    struct cr_shm_upflight upflight[CR_SHM_MAX_WORKERS][CR_SHM_GENS];
};

/* Maps a zeroed region (master only). Returns NULL on failure, errno set. */
struct cr_shm *cr_shm_create(void);

/* Unmaps it (master at exit; workers simply exit). */
void cr_shm_destroy(struct cr_shm *shm);

#endif
