/* rp_hist.c - log-linear latency histogram.
 *
 * Bucket index of a value v (us):
 *   v < 1024:  v itself (1 us wide buckets);
 *   otherwise: with e = floor(log2 v) in 10..31, the bucket is
 *              1024 + (e - 10) * 128 + the 7 bits of v below its top bit,
 *              i.e. bucket width 2^(e-7), at most 1/128 of v.
 * The non-empty span [lo, hi] is kept so that walks, merges and resets skip
 * the empty ends (a typical latency distribution fills a few hundred). */
#include "rp_hist.h"

#include <stdlib.h>
#include <string.h>

#define LINEAR 1024u /* buckets of 1 us */
#define LINEAR_BITS 10u
#define SUB_BITS 7u
#define SUB (1u << SUB_BITS) /* buckets per power of two above LINEAR */
#define OCTAVES (32u - LINEAR_BITS)
#define NBUCKETS (LINEAR + OCTAVES * SUB)

struct rp_hist {
    uint64_t count;
    uint64_t max;
    uint64_t overflow;
    uint32_t lo, hi; /* non-empty span; meaningful only when count > 0 */
    uint32_t b[NBUCKETS];
};

static uint32_t bucket_of(uint64_t v)
{
    unsigned e;

    if (v < LINEAR)
        return (uint32_t)v;
    if (v > RP_HIST_HIGHEST)
        v = RP_HIST_HIGHEST;
    e = 63u - (unsigned)__builtin_clzll(v);
    return LINEAR + (e - LINEAR_BITS) * SUB + (uint32_t)((v >> (e - SUB_BITS)) & (SUB - 1));
}

/* The highest value that lands in bucket i. */
static uint64_t bucket_top(uint32_t i)
{
    uint32_t k, e, sub;
    uint64_t lower;

    if (i < LINEAR)
        return i;
    k = i - LINEAR;
    e = LINEAR_BITS + k / SUB;
    sub = k % SUB;
    lower = (UINT64_C(1) << e) + ((uint64_t)sub << (e - SUB_BITS));
    return lower + (UINT64_C(1) << (e - SUB_BITS)) - 1;
}

static uint32_t sat_add32(uint32_t a, uint64_t b)
{
    return b >= (uint64_t)(UINT32_MAX - a) ? UINT32_MAX : a + (uint32_t)b;
}

struct rp_hist *rp_hist_new(void)
{
    return calloc(1, sizeof(struct rp_hist));
}

void rp_hist_free(struct rp_hist *h)
{
    free(h);
}

size_t rp_hist_size(void)
{
    return sizeof(struct rp_hist);
}

void rp_hist_reset(struct rp_hist *h)
{
    if (h->count > 0)
        memset(&h->b[h->lo], 0, (size_t)(h->hi - h->lo + 1) * sizeof(h->b[0]));
    h->count = 0;
    h->max = 0;
    h->overflow = 0;
    h->lo = h->hi = 0;
}

static void widen(struct rp_hist *h, uint32_t lo, uint32_t hi)
{
    if (h->count == 0) {
        h->lo = lo;
        h->hi = hi;
        return;
    }
    if (lo < h->lo)
        h->lo = lo;
    if (hi > h->hi)
        h->hi = hi;
}

void rp_hist_add(struct rp_hist *h, uint64_t usec)
{
    uint32_t i = bucket_of(usec);

    widen(h, i, i);
    h->b[i] = sat_add32(h->b[i], 1);
    h->count++;
    if (usec > h->max)
        h->max = usec;
    if (usec > RP_HIST_HIGHEST)
        h->overflow++;
}

void rp_hist_merge(struct rp_hist *into, const struct rp_hist *from)
{
    uint32_t lo, hi;

    if (from == NULL || from->count == 0)
        return;
    lo = from->lo; /* read before widen(): into may be from */
    hi = from->hi;
    for (uint32_t i = lo; i <= hi; i++)
        if (from->b[i] != 0)
            into->b[i] = sat_add32(into->b[i], from->b[i]);
    widen(into, lo, hi);
    into->count += from->count;
    into->overflow += from->overflow;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t rp_hist_count(const struct rp_hist *h)
{
    return h != NULL ? h->count : 0;
}

uint64_t rp_hist_max(const struct rp_hist *h)
{
    return h != NULL ? h->max : 0;
}

uint64_t rp_hist_overflow(const struct rp_hist *h)
{
    return h != NULL ? h->overflow : 0;
}

/* ceil(q * n), at least 1, without being pushed one rank up by the rounding
 * error of q * n (0.29 * 100 is 28.999999999999996 in doubles). */
static uint64_t rank_of(double q, uint64_t n)
{
    double r;
    uint64_t k;

    if (!(q > 0.0)) /* also NaN */
        return 1;
    if (q >= 1.0)
        return n;
    r = q * (double)n;
    k = (uint64_t)r;
    if ((double)k < r * (1.0 - 1e-12))
        k++;
    if (k < 1)
        k = 1;
    return k > n ? n : k;
}

void rp_hist_quantiles(const struct rp_hist *h, const double *qs, uint64_t *out, size_t n)
{
    uint32_t i = 0;
    uint64_t seen = 0, prev_rank = UINT64_MAX;

    for (size_t j = 0; j < n; j++) {
        uint64_t rank, top;

        if (h == NULL || h->count == 0) {
            out[j] = 0;
            continue;
        }
        rank = rank_of(qs[j], h->count);
        if (rank < prev_rank) { /* first query, or qs not ascending: restart */
            i = h->lo;
            seen = h->b[i];
        }
        prev_rank = rank;
        /* Saturated counters can sum to less than count: stop at hi. */
        while (seen < rank && i < h->hi)
            seen += h->b[++i];
        top = bucket_top(i);
        out[j] = top < h->max ? top : h->max;
    }
}

uint64_t rp_hist_quantile(const struct rp_hist *h, double q)
{
    uint64_t v;

    rp_hist_quantiles(h, &q, &v, 1);
    return v;
}
