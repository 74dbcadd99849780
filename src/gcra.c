/* gcra.c - the generic cell rate algorithm on one shared atomic word.
 *
 * Internally everything is in nanoseconds. Sums and products saturate at
 * CR_GCRA_INF (about 146 years) so that nothing ever wraps around to "now":
 * a tolerance that saturates (say one per hour with a burst of ten million)
 * is a bucket that never empties in practice, and that is what it does. */
#include "gcra.h"

#include <math.h>

#include "common.h"

/* The shared word must be a real lock-free atomic, or cross-process use
 * would silently depend on a lock that is not shared. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 || sizeof(long) < 8, "64-bit atomics must be lock-free");

#define CR_GCRA_INF (UINT64_C(1) << 62)

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a >= CR_GCRA_INF || b >= CR_GCRA_INF - a ? CR_GCRA_INF : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    if (a != 0 && b >= CR_GCRA_INF / a)
        return CR_GCRA_INF;
    return a * b;
}

static int unlimited(double rate)
{
    return !(rate > 0.0); /* also true for NaN */
}

/* The emission interval, rounded to the nearest nanosecond (at least 1). */
static uint64_t interval_ns(double rate)
{
    double t = 1e9 / rate;

    if (t >= (double)CR_GCRA_INF)
        return CR_GCRA_INF;
    if (t < 1.0)
        return 1;
    return (uint64_t)llround(t);
}

static uint64_t ns_to_us_ceil(uint64_t ns)
{
    if (ns >= CR_GCRA_INF)
        return UINT64_MAX;
    return ns / 1000 + (ns % 1000 != 0);
}

int cr_gcra_take(_Atomic uint64_t *tat, double rate_per_s, uint32_t burst, uint64_t now_us,
                 uint64_t *retry_at_us)
{
    uint64_t t, tau, now, old, base, next;

    if (unlimited(rate_per_s))
        return 0;
    t = interval_ns(rate_per_s);
    tau = sat_mul(t, burst == 0 ? 1 : burst);
    now = sat_mul(now_us, 1000);
    old = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        base = old > now ? old : now;
        next = sat_add(base, t);
        /* next - tau > now, written so that it cannot underflow */
        if (next > sat_add(now, tau)) {
            if (retry_at_us != NULL)
                *retry_at_us = ns_to_us_ceil(next - tau);
            return CR_EAGAIN;
        }
        /* Only this one word is shared, so its modification order is all
         * that matters: relaxed ordering is enough for exact counting. */
        if (atomic_compare_exchange_weak_explicit(tat, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

uint64_t cr_gcra_wait_us(_Atomic uint64_t *tat, double rate_per_s, uint32_t burst, uint64_t now_us,
                         uint32_t n)
{
    uint64_t t, tau, now, cur, at, need;

    if (unlimited(rate_per_s))
        return 0;
    t = interval_ns(rate_per_s);
    tau = sat_mul(t, burst == 0 ? 1 : burst);
    now = sat_mul(now_us, 1000);
    cur = atomic_load_explicit(tat, memory_order_relaxed);
    /* The (n+1)th token from now passes at max(tat, now) + (n+1)T - tau. */
    at = sat_add(cur > now ? cur : now, sat_mul((uint64_t)n + 1, t));
    need = sat_add(now, tau);
    if (at <= need)
        return 0;
    if (at >= CR_GCRA_INF)
        return UINT64_MAX;
    return ns_to_us_ceil(at - need);
}
