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

#define CR_SHM_MAX_WORKERS 256

struct cr_shm_worker_stats {
    _Atomic uint64_t conns_accepted;
    _Atomic uint64_t conns_open;
    _Atomic uint64_t handshakes_full;
    _Atomic uint64_t handshakes_resumed;
    _Atomic uint64_t handshakes_failed;
    _Atomic uint64_t requests;
    _Atomic uint64_t responses_by_class[6]; /* 1xx..5xx, [0] = reset */
};

struct cr_shm {
    _Atomic uint64_t generation;            /* bumped by the master per reload */
    struct cr_shm_worker_stats workers[CR_SHM_MAX_WORKERS];
};

/* Maps a zeroed region (master only). Returns NULL on failure, errno set. */
struct cr_shm *cr_shm_create(void);

/* Unmaps it (master at exit; workers simply exit). */
void cr_shm_destroy(struct cr_shm *shm);

#endif
