/* rand.h - the one pseudo-random generator of corral: xorshift128+, seeded
 * through splitmix64.
 *
 * For what needs numbers that differ, not numbers nobody can guess: request
 * ids and traceparents, the jitter of Retry-After and of reconnect
 * back-offs. Never for keys or anything secret (tls.c and ticket.c use
 * OpenSSL's RAND_bytes). A generator is a plain struct owned by whoever
 * uses it; nothing here is shared or locked. */
#ifndef CR_RAND_H
#define CR_RAND_H

#include <stdbool.h>
#include <stdint.h>

struct cr_rand {
    uint64_t s[2]; /* never both 0 once seeded */
};

/* Seeds g from seed: the same seed gives the same sequence (tests, the
 * micro-benchmark); any seed, 0 included, is fine. */
void cr_rand_seed(struct cr_rand *g, uint64_t seed);

/* Seeds g from getrandom(2), or from the clock if that fails. */
void cr_rand_seed_random(struct cr_rand *g);

/* Whether g was seeded (a zeroed struct is not). */
static inline bool cr_rand_seeded(const struct cr_rand *g)
{
    return g->s[0] || g->s[1];
}

/* The next 64 random bits. g must be seeded. */
static inline uint64_t cr_rand_next(struct cr_rand *g)
{
    uint64_t s1 = g->s[0];
    const uint64_t s0 = g->s[1];
    g->s[0] = s0;
    s1 ^= s1 << 23;
    g->s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return g->s[1] + s0;
}

/* Uniform in [0, 1), from the 53 high bits. */
static inline double cr_rand_01(struct cr_rand *g)
{
    return (double)(cr_rand_next(g) >> 11) * 0x1.0p-53;
}

#endif
