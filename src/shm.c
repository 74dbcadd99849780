/* shm.c - the shared mapping. */
#include "shm.h"

#include <stddef.h>
#include <sys/mman.h>

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
