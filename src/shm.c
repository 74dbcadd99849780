/* shm.c - the shared mapping. */
#include "shm.h"

#include <stddef.h>
#include <sys/mman.h>

const char *const cr_hs_fail_names[CR_HSF_MAX] = {
    "protocol_version", "no_shared_cipher", "unknown_sni", "timeout",
    "client_closed",    "not_tls",          "client_alert", "other",
};

const uint64_t cr_hist_bounds_us[CR_HIST_NBOUNDS] = {
    1000,    2500,    5000,    10000,   25000,   50000,   100000,
    250000,  500000,  1000000, 2500000, 5000000, 10000000,
};

void cr_shm_hist_add(struct cr_shm_hist *h, uint64_t us)
{
    size_t i = 0;
    while (i < CR_HIST_NBOUNDS && us > cr_hist_bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

struct cr_shm *cr_shm_create(void)
{
    void *p = mmap(NULL, sizeof(struct cr_shm), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p; /* anonymous mappings start zeroed */
}

void cr_shm_destroy(struct cr_shm *shm)
{
    if (shm)
        munmap(shm, sizeof(*shm));
}
