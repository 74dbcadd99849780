/* shm.c - the shared mapping. */
#include "shm.h"

#include <stddef.h>
#include <sys/mman.h>

const char *const cr_hs_fail_names[CR_HSF_MAX] = {
    "protocol_version", "no_shared_cipher", "unknown_sni", "timeout",
    "client_closed",    "not_tls",          "client_alert", "other",
};

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
