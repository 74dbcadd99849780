/* rp_rand.h - a small seeded pseudo-random generator (splitmix64): the
 * same seed gives the same run plan (template choice, Poisson arrivals,
 * jitter, which connections resume). Not for anything secret. */
#ifndef RP_RAND_H
#define RP_RAND_H

#include <stdint.h>

struct rp_rand {
    uint64_t s;
};

static inline void rp_rand_seed(struct rp_rand *r, uint64_t seed)
{
    r->s = seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
}

static inline uint64_t rp_rand_next(struct rp_rand *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double rp_rand_unit(struct rp_rand *r)
{
    return (double)(rp_rand_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
