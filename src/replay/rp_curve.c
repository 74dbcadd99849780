/* rp_curve.c - the arrival-rate curve and the open-loop schedule. */
#include "rp_curve.h"

#include <math.h>
#include <stdlib.h>

#include "common.h"
#include "rp_rand.h"

#define STEP_US 1000.0 /* integration step */

/* Where one tenant's integral stands. */
struct tstate {
    double cursor_us; /* integrated up to here */
    double acc;       /* expected arrivals since the last arrival */
    double thr;       /* the next arrival when acc reaches it */
    double next_us;   /* the next arrival, once found; < 0 = not yet */
    struct rp_rand rng;
    uint64_t wsum; /* sum of template weights */
};

struct rp_sched {
    const struct rp_profile *p;
    double end_us;
    struct tstate *t;
};

/* 0 .. 1: how far event e has come at t (seconds). */
static double shape(const struct rp_event *e, double t)
{
    double at = (double)e->at_ms / 1e3, ramp = (double)e->ramp_ms / 1e3;
    double hold = (double)e->hold_ms / 1e3, hl = (double)e->half_life_ms / 1e3;

    if (t < at)
        return 0.0;
    if (t < at + ramp)
        return (t - at) / ramp;
    if (t < at + ramp + hold || hl <= 0.0)
        return 1.0;
    return exp2(-(t - at - ramp - hold) / hl);
}

double rp_curve_raw(const struct rp_profile *p, size_t tenant, uint64_t t_us)
{
    double t = (double)t_us / 1e6, m = 1.0;

    for (size_t i = 0; i < p->nevents; i++) {
        const struct rp_event *e = &p->events[i];
        if (e->tenant_index == tenant)
            m += (e->factor - 1.0) * shape(e, t);
    }
    return m > 0.0 ? p->tenants.list[tenant].baseline * m : 0.0;
}

double rp_curve_rate(const struct rp_profile *p, size_t tenant, uint64_t t_us)
{
    double sum = 0.0, mine = rp_curve_raw(p, tenant, t_us);

    for (size_t i = 0; i < p->tenants.nlist; i++)
        sum += i == tenant ? mine : rp_curve_raw(p, i, t_us);
    if (sum > p->caps.rate && sum > 0.0)
        return mine * (p->caps.rate / sum);
    return mine;
}

/* The next threshold: 1 (uniform) or Exp(1) (Poisson). */
static double threshold(const struct rp_sched *s, struct tstate *t)
{
    if (s->p->arrivals == RP_ARRIVALS_POISSON)
        return -log(1.0 - rp_rand_unit(&t->rng));
    return 1.0;
}

struct rp_sched *rp_sched_new(const struct rp_profile *p)
{
    struct rp_sched *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->t = calloc(p->tenants.nlist ? p->tenants.nlist : 1, sizeof(*s->t));
    if (s->t == NULL) {
        free(s);
        return NULL;
    }
    s->p = p;
    s->end_us = (double)p->duration_ms * 1e3;
    for (size_t i = 0; i < p->tenants.nlist; i++) {
        struct tstate *t = &s->t[i];
        rp_rand_seed(&t->rng, ((uint64_t)p->seed << 16) ^ (uint64_t)i);
        t->next_us = -1.0;
        t->thr = p->arrivals == RP_ARRIVALS_POISSON ? threshold(s, t) : 0.5;
        for (size_t j = 0; j < p->tenants.list[i].nrequests; j++)
            t->wsum += p->tenants.list[i].requests[j].weight;
    }
    return s;
}

void rp_sched_free(struct rp_sched *s)
{
    if (s == NULL)
        return;
    free(s->t);
    free(s);
}

/* Integrates tenant i until its next arrival is found or the integral
 * passes limit_us. Steps always end on the STEP_US grid (or at the end of
 * the run), whatever limit_us is, so the arrivals do not depend on when
 * the caller asks. */
static void advance(struct rp_sched *s, size_t i, double limit_us)
{
    struct tstate *t = &s->t[i];

    limit_us = CR_MIN(limit_us, s->end_us);
    while (t->next_us < 0.0 && t->cursor_us < s->end_us && t->cursor_us <= limit_us) {
        double end = CR_MIN((floor(t->cursor_us / STEP_US) + 1.0) * STEP_US, s->end_us);
        double mid = (t->cursor_us + end) / 2.0;
        double r = rp_curve_rate(s->p, i, (uint64_t)mid);
        double gain = r * (end - t->cursor_us) / 1e6;

        if (r > 0.0 && t->acc + gain >= t->thr) {
            double at = t->cursor_us + (t->thr - t->acc) / r * 1e6;
            t->next_us = CR_MIN(CR_MAX(at, t->cursor_us), end);
            t->cursor_us = t->next_us;
            t->acc = 0.0;
            if (t->next_us >= s->end_us) {
                t->next_us = -1.0;
                t->cursor_us = s->end_us;
            }
            return;
        }
        t->acc += gain;
        t->cursor_us = end;
    }
}

/* The tenant whose found arrival is earliest, or -1. */
static long earliest(struct rp_sched *s, double limit_us)
{
    long best = -1;

    for (size_t i = 0; i < s->p->tenants.nlist; i++) {
        advance(s, i, limit_us);
        if (s->t[i].next_us >= 0.0 && s->t[i].next_us <= limit_us &&
            (best < 0 || s->t[i].next_us < s->t[best].next_us))
            best = (long)i;
    }
    return best;
}

static size_t pick_template(const struct rp_profile *p, size_t i, struct tstate *t)
{
    const struct rp_tenant *tn = &p->tenants.list[i];
    uint64_t x;

    if (tn->nrequests <= 1 || t->wsum == 0)
        return 0;
    x = rp_rand_next(&t->rng) % t->wsum;
    for (size_t j = 0; j < tn->nrequests; j++) {
        if (x < tn->requests[j].weight)
            return j;
        x -= tn->requests[j].weight;
    }
    return tn->nrequests - 1;
}

int rp_sched_next(struct rp_sched *s, uint64_t now_us, struct rp_arrival *a)
{
    long i = earliest(s, (double)now_us);
    struct tstate *t;

    if (i < 0)
        return 0;
    t = &s->t[i];
    a->tenant = (size_t)i;
    a->at_us = (uint64_t)llround(t->next_us);
    a->tpl = pick_template(s->p, (size_t)i, t);
    t->next_us = -1.0;
    t->thr = threshold(s, t);
    return 1;
}

uint64_t rp_sched_peek(struct rp_sched *s, uint64_t horizon_us)
{
    long i = earliest(s, (double)horizon_us);

    return i < 0 ? UINT64_MAX : (uint64_t)llround(s->t[i].next_us);
}

int rp_sched_done(const struct rp_sched *s)
{
    for (size_t i = 0; i < s->p->tenants.nlist; i++)
        if (s->t[i].next_us >= 0.0 || s->t[i].cursor_us < s->end_us)
            return 0;
    return 1;
}
