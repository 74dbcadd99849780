/* rp_curve.h - the campaign's arrival-rate curve and its open-loop arrival
 * schedule.
 *
 * Pure computation with an injected clock: nothing here reads a clock,
 * sleeps or does I/O. Times are microseconds since the start of the run.
 *
 * The curve. Tenant i offers baseline_i x m_i(t) requests per second, where
 * m_i(t) = 1 + sum over i's events of (factor - 1) x shape(t), and shape is
 * 0 before the event's `at`, climbs linearly to 1 over `ramp` (a step when
 * ramp is 0), stays 1 for `hold`, then halves every `half_life` (stays 1
 * when half_life is 0). Negative sums clamp to 0. Then the cap: when the
 * tenants' rates together pass caps.rate, every tenant is scaled by the same
 * factor so that they sum to the cap.
 *
 * The schedule. Arrivals are the points where the integral of a tenant's
 * (capped) rate crosses successive thresholds: evenly spaced thresholds
 * (1 apart, the first at 0.5) for `arrivals: uniform`, exponentially
 * distributed ones for `arrivals: poisson` (a Poisson process of that
 * intensity). The integral is taken in steps of at most 1 ms with the rate
 * at each step's midpoint. Arrivals are produced in time order across
 * tenants, only in [0, duration), and do not depend on when the caller
 * asks: the schedule is open-loop, a late caller only gets them late. */
#ifndef RP_CURVE_H
#define RP_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "rp_profile.h"

/* Tenant's rate (requests/s) at t_us before the cap. */
double rp_curve_raw(const struct rp_profile *p, size_t tenant, uint64_t t_us);

/* Tenant's rate at t_us after the cap. */
double rp_curve_rate(const struct rp_profile *p, size_t tenant, uint64_t t_us);

/* One planned request. */
struct rp_arrival {
    size_t tenant;  /* index into the profile's tenants */
    size_t tpl;     /* index into that tenant's request templates (by weight) */
    uint64_t at_us; /* intended send time */
};

struct rp_sched;

/* A schedule for profile p (borrowed: it must outlive the schedule), seeded
 * from p->seed. NULL on out of memory. */
struct rp_sched *rp_sched_new(const struct rp_profile *p);
void rp_sched_free(struct rp_sched *s);

/* The earliest arrival not yet taken if it is due at or before now_us: 1
 * and *a filled, or 0 when none is due yet (or the schedule is over). Call
 * again until it returns 0. */
int rp_sched_next(struct rp_sched *s, uint64_t now_us, struct rp_arrival *a);

/* When the next arrival is due, looking no further than horizon_us:
 * its time, or UINT64_MAX when there is none by then. */
uint64_t rp_sched_peek(struct rp_sched *s, uint64_t horizon_us);

/* true once every arrival of [0, duration) has been taken. */
int rp_sched_done(const struct rp_sched *s);

#endif
