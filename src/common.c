/* common.c - the few helpers every module shares. */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t cr_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int cr_grow(char **buf, size_t *len, size_t *cap, const char *at, size_t n, size_t max)
{
    if (*len + n > max)
        return CR_ELIMIT;
    if (*len + n + 1 > *cap) {
        size_t nc = CR_MAX(CR_MAX(*cap * 2, *len + n + 1), (size_t)64);
        char *p = realloc(*buf, nc);
        if (!p)
            return CR_ENOMEM;
        *buf = p;
        *cap = nc;
    }
    memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}
