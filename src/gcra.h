/* gcra.h - a host-wide rate limiter: the generic cell rate algorithm.
 *
 * GCRA is a token bucket kept as a single number, the theoretical arrival
 * time (TAT): the time at which the bucket would be full again if nothing
 * more were taken. With an emission interval T = 1/rate and a tolerance
 * tau = burst * T, a request at time `now` is allowed when
 *
 *     max(tat, now) + T - tau <= now,    and then   tat' = max(tat, now) + T
 *
 * which is exactly a bucket of depth `burst` refilled at `rate`: from a full
 * bucket, `burst` requests pass at once, then one every T. Over any window
 * [t0, t1] no more than burst + rate * (t1 - t0) requests pass.
 *
 * Because the state is one word, it can live in memory shared by every
 * worker process and be updated with one compare-and-swap loop: the limit
 * holds for the whole host, exactly, without locks. The clock must be
 * system-wide (CLOCK_MONOTONIC) so that every process reads the same time.
 *
 * The word is opaque to callers: it holds nanoseconds (not microseconds) so
 * that intervals such as 1/3 s are not rounded to whole microseconds, which
 * would drift by a request per few seconds at high rates. A zeroed word is a
 * full bucket. All functions are pure apart from the atomic word: no clock,
 * no I/O, safe to call from any thread or process at any time. */
#ifndef CR_GCRA_H
#define CR_GCRA_H

#include <stdatomic.h>
#include <stdint.h>

/* Takes one token from the bucket whose state is *tat.
 *
 * rate_per_s: the refill rate; <= 0 (or NaN) means unlimited.
 * burst:      the bucket depth, in requests (0 is treated as 1).
 * now_us:     CLOCK_MONOTONIC in microseconds.
 *
 * Returns 0 when the request is allowed (the token is taken: *tat advanced;
 * with an unlimited rate *tat is not touched), or CR_EAGAIN when the bucket is
 * empty; then, if retry_at_us is not NULL, *retry_at_us is the earliest time
 * (us, rounded up) at which one token will be available if no one else takes
 * it first. Lock-free: one CAS loop, retried only when another thread or
 * process changed *tat in between. */
int cr_gcra_take(_Atomic uint64_t *tat, double rate_per_s, uint32_t burst, uint64_t now_us,
                 uint64_t *retry_at_us);

/* Reads *tat without changing it and returns how long (us from now_us,
 * rounded up) until n + 1 tokens will have become available, i.e. the
 * earliest time the request that has n others ahead of it in line could
 * pass if the whole host's rate went to that line. 0 when the first n + 1
 * tokens are available now; always 0 with an unlimited rate. This is a lower
 * bound on the real wait (others may take tokens too), which makes it a safe
 * basis for shedding early: a request whose lower bound exceeds its deadline
 * cannot make it. Saturates at UINT64_MAX. */
uint64_t cr_gcra_wait_us(_Atomic uint64_t *tat, double rate_per_s, uint32_t burst, uint64_t now_us,
                         uint32_t n);

#endif
