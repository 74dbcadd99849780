/* rand.c - seeding the generator of rand.h. */
#include "rand.h"

#include <sys/random.h>

#include "common.h"

void cr_rand_seed(struct cr_rand *g, uint64_t seed)
{
    /* splitmix64, twice */
    for (int i = 0; i < 2; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        g->s[i] = z ^ (z >> 31);
    }
    if (!cr_rand_seeded(g))
        g->s[0] = 1;
}

void cr_rand_seed_random(struct cr_rand *g)
{
    if (getrandom(g->s, sizeof(g->s), 0) != sizeof(g->s) || !cr_rand_seeded(g))
        cr_rand_seed(g, cr_now_us());
}
