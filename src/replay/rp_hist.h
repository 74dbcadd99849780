/* rp_hist.h - latency histogram, log-linear buckets (like HdrHistogram:
 * 1 us resolution below 1 ms, <= 1% relative error above, up to 1 hour), fixed size,
 * no allocation after init.
 *
 * Layout: values 0..1023 us have one bucket each (exact). From 1024 us up,
 * each power of two [2^e, 2^(e+1)) is cut into 128 equal buckets, so a bucket
 * is at most 1/128 (0.78%) of its lower edge wide. The top bucket ends at
 * RP_HIST_HIGHEST (2^32 - 1 us, about 71.6 minutes): larger values are
 * clamped into it and still counted (see rp_hist_overflow()). 3840 buckets of
 * 32-bit counters: rp_hist_size() is about 15 KB, whatever is added.
 *
 * A bucket counter saturates at UINT32_MAX (4.29e9 samples of the same
 * bucket, i.e. 12 hours of 100 000 requests per second all within 8 us of
 * each other); the total count is 64-bit.
 *
 * Not thread-safe: one writer, or external locking. The read functions
 * (count, max, quantile, overflow) accept NULL as an empty histogram. */
#ifndef RP_HIST_H
#define RP_HIST_H

#include <stddef.h>
#include <stdint.h>

/* The largest value kept apart from others; larger ones land in its bucket. */
#define RP_HIST_HIGHEST UINT64_C(0xffffffff)

struct rp_hist; /* opaque; fixed size, see rp_hist_size() */

/* An empty histogram. NULL on ENOMEM; caller frees with rp_hist_free. */
struct rp_hist *rp_hist_new(void);

/* Frees h; NULL is a no-op. */
void rp_hist_free(struct rp_hist *h);

/* Bytes one histogram occupies (constant). */
size_t rp_hist_size(void);

/* Empties h (no allocation). */
void rp_hist_reset(struct rp_hist *h);

/* Counts one value, in microseconds. O(1). Values above RP_HIST_HIGHEST are
 * counted in the top bucket and in rp_hist_overflow(); rp_hist_max() keeps
 * the real value. */
void rp_hist_add(struct rp_hist *h, uint64_t usec);

/* Adds every count of `from` to `into` (from == into doubles it; from NULL
 * is a no-op). Costs the span of from's non-empty buckets, at most 3840. */
void rp_hist_merge(struct rp_hist *into, const struct rp_hist *from);

/* Number of values added (including clamped ones). */
uint64_t rp_hist_count(const struct rp_hist *h);

/* Largest value added, unclamped; 0 if empty. */
uint64_t rp_hist_max(const struct rp_hist *h);

/* Number of values that were above RP_HIST_HIGHEST. */
uint64_t rp_hist_overflow(const struct rp_hist *h);

/* q in [0,1]; returns the value (usec) at that quantile (upper edge of its bucket), 0 if empty.
 *
 * The quantile is the nearest-rank one: the value of the ceil(q * count)-th
 * smallest sample (the smallest one for q = 0). The result is the highest
 * value of that sample's bucket, but never more than rp_hist_max(): so it is
 * never below the exact quantile, equal to it below 1024 us, and at most
 * 0.79% above it from there to RP_HIST_HIGHEST. q outside [0,1] (or NaN) is
 * clamped. Costs one walk over the non-empty span of buckets. */
uint64_t rp_hist_quantile(const struct rp_hist *h, double q);

/* Computes n quantiles in one walk: out[i] = rp_hist_quantile(h, qs[i]).
 * Fastest with qs ascending; any order is correct. */
void rp_hist_quantiles(const struct rp_hist *h, const double *qs, uint64_t *out, size_t n);

#endif
