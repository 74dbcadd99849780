/* adapt.h - the adaptive upstream limit: how many requests admission may
 * have at the upstream at once, learned from the upstream's latency
 * (upstream.adaptive in the config).
 *
 * A gradient in the spirit of TCP Vegas, Netflix's Gradient2 and Envoy's
 * adaptive concurrency filter, written for corral's gate (gate.c, which
 * owns one per worker and gives admission min(pool capacity, limit)).
 * Pure logic: no I/O, no timers, no logging, no clock of its own. Every
 * call takes times in microseconds (CLOCK_MONOTONIC, never decreasing
 * between calls on one object).
 *
 * THE ALGORITHM. The caller feeds one sample per completed upstream
 * exchange: when it was sent, when its answer began, and whether it was an
 * error (an upstream 5xx, a timeout or a lost connection: congestion).
 * Samples are gathered in windows of `interval`; a window closes with the
 * first sample after `interval` once it holds CR_ADAPT_MIN_SAMPLES, and its
 * MEDIAN latency is what the window says (a single outlier moves no
 * median). An error counts as a sample of at least 4 x min_rtt.
 *
 *   - PROBE (at start, then every `probe_interval`): the limit is pinned to
 *     `min` while one window is measured; only exchanges sent after the
 *     probe began count. Its median becomes min_rtt, the latency of an
 *     upstream that is not queueing. The limit then returns to where it
 *     was before the probe.
 *   - RUN: each closed window with median m gives
 *         gradient = clamp(tolerance * min_rtt / m, 0.5, 1.5)
 *         target   = limit * gradient + sqrt(limit)       (headroom)
 *         limit   += (target - limit) * k                 (smoothing)
 *     with k = 1/4 up and 1/2 down, clamped to [min, max]. While m stays
 *     within `tolerance` of min_rtt the limit grows (by about 6% and
 *     sqrt(limit)/4 a window: the knee is approached, not jumped past, as
 *     the latency that says "past it" comes a window late); when latency grows
 *     past it the limit is cut, by at most a quarter a window. A window
 *     whose median is below min_rtt lowers min_rtt. A window in which
 *     fewer than half the limit were ever in flight does not raise it: low
 *     latency at low demand says nothing of the knee (without this, a
 *     quiet hour would leave the limit at max for the next burst).
 *
 * Bounds: the limit is always in [min, max(min, max)], max being set by the
 * caller (the pool's capacity: upstream.max_streams or what the
 * connections allow). */
#ifndef CR_ADAPT_H
#define CR_ADAPT_H

#include <stdbool.h>
#include <stdint.h>

/* Samples a window must hold before it closes. */
#define CR_ADAPT_MIN_SAMPLES 5
/* Samples a window keeps for its median; later ones overwrite in turn. */
#define CR_ADAPT_WINDOW_MAX 256

struct cr_adapt;

struct cr_adapt_params {
    uint32_t min;           /* the floor, >= 1 (upstream.adaptive.min) */
    uint32_t tolerance_pct; /* latency counted as "near" min_rtt, >= 100 */
    uint64_t interval_us;   /* a sample window, > 0 */
    uint64_t probe_us;      /* between two min_rtt probes, > 0 */
};

/* What /stats and /metrics show. */
struct cr_adapt_view {
    uint32_t limit;
    uint64_t min_rtt_us; /* 0 until the first probe closed */
    double gradient;     /* of the last window, 1.0 before the first */
    bool probing;
};

/* Creates a limiter at `min`, probing from now_us. The caller owns *out
 * (cr_adapt_free). Returns 0, CR_EINVAL (a parameter out of its range) or
 * CR_ENOMEM; *out is NULL on error. */
int cr_adapt_new(const struct cr_adapt_params *p, uint64_t now_us, struct cr_adapt **out);

/* Frees a; NULL is a no-op. */
void cr_adapt_free(struct cr_adapt *a);

/* Sets the ceiling (0 or below min: min). A limit above it comes down at
 * once. */
void cr_adapt_set_max(struct cr_adapt *a, uint32_t max);

/* One completed upstream exchange: sent at sent_us, its answer (or its
 * failure) at done_us; ok false for congestion (error, timeout); inflight
 * the requests in flight upstream as it ended, itself included. Returns
 * true when the limit changed (a window closed, a probe began or ended). */
bool cr_adapt_sample(struct cr_adapt *a, uint64_t sent_us, uint64_t done_us, bool ok,
                     uint32_t inflight);

/* The limit now, in [min, max]. */
uint32_t cr_adapt_limit(const struct cr_adapt *a);

/* Fills v with the state now. */
void cr_adapt_view(const struct cr_adapt *a, struct cr_adapt_view *v);

#endif
