/* adapt.c - the adaptive upstream limit (see adapt.h for the algorithm). */
#include "adapt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define GRADIENT_MIN 0.5
#define GRADIENT_MAX 1.5
/* a window moves the limit this part of the way to its target: slowly up,
 * so that the knee is approached rather than jumped past, fast down */
#define SMOOTHING_UP 0.25
#define SMOOTHING_DOWN 0.5
#define ERROR_RTT_FACTOR 4

struct cr_adapt {
    struct cr_adapt_params p;
    uint32_t max;
    double limit;
    double saved;     /* the limit before the probe */
    double gradient;  /* of the last closed window */
    uint64_t min_rtt; /* us, 0 = not measured yet */
    bool probing;
    uint64_t probe_start;
    uint64_t next_probe;
    uint64_t window_start;
    uint32_t seen;    /* samples in this window */
    uint32_t busiest; /* the most in flight a sample of this window saw */
    uint64_t s[CR_ADAPT_WINDOW_MAX];
};

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static uint64_t median(struct cr_adapt *a)
{
    uint32_t n = a->seen < CR_ADAPT_WINDOW_MAX ? a->seen : CR_ADAPT_WINDOW_MAX;
    qsort(a->s, n, sizeof(a->s[0]), cmp_u64);
    return a->s[n / 2];
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static double ceiling(const struct cr_adapt *a)
{
    return a->max > a->p.min ? a->max : a->p.min;
}

int cr_adapt_new(const struct cr_adapt_params *p, uint64_t now_us, struct cr_adapt **out)
{
    *out = NULL;
    if (p->min == 0 || p->tolerance_pct < 100 || p->interval_us == 0 || p->probe_us == 0)
        return CR_EINVAL;
    struct cr_adapt *a = calloc(1, sizeof(*a));
    if (!a)
        return CR_ENOMEM;
    a->p = *p;
    a->max = p->min;
    a->limit = a->saved = p->min;
    a->gradient = 1.0;
    a->probing = true;
    a->probe_start = a->window_start = now_us;
    *out = a;
    return 0;
}

void cr_adapt_free(struct cr_adapt *a)
{
    free(a);
}

void cr_adapt_set_max(struct cr_adapt *a, uint32_t max)
{
    a->max = max;
    a->limit = clampd(a->limit, a->p.min, ceiling(a));
    a->saved = clampd(a->saved, a->p.min, ceiling(a));
}

/* A closed window's median m moves the limit (RUN). */
static void adjust(struct cr_adapt *a, uint64_t m)
{
    if (m < a->min_rtt)
        a->min_rtt = m;
    double g = (double)a->p.tolerance_pct / 100.0 * (double)a->min_rtt / (double)(m ? m : 1);
    a->gradient = clampd(g, GRADIENT_MIN, GRADIENT_MAX);
    double target = a->limit * a->gradient + sqrt(a->limit);
    if (target > a->limit && 2.0 * a->busiest < a->limit)
        return; /* not using it: no reason to give more */
    double k = target > a->limit ? SMOOTHING_UP : SMOOTHING_DOWN;
    a->limit = clampd(a->limit + k * (target - a->limit), a->p.min, ceiling(a));
}

bool cr_adapt_sample(struct cr_adapt *a, uint64_t sent_us, uint64_t done_us, bool ok,
                     uint32_t inflight)
{
    uint32_t before = cr_adapt_limit(a);
    if (a->probing && sent_us < a->probe_start)
        return false; /* sent above the floor: says nothing of the floor */
    uint64_t rtt = done_us > sent_us ? done_us - sent_us : 0;
    if (!ok && a->min_rtt && rtt < ERROR_RTT_FACTOR * a->min_rtt)
        rtt = ERROR_RTT_FACTOR * a->min_rtt;
    a->s[a->seen % CR_ADAPT_WINDOW_MAX] = rtt;
    a->seen++;
    if (inflight > a->busiest)
        a->busiest = inflight;
    if (done_us < a->window_start + a->p.interval_us || a->seen < CR_ADAPT_MIN_SAMPLES)
        return false;
    uint64_t m = median(a);
    if (a->probing) {
        a->min_rtt = m ? m : 1;
        a->probing = false;
        a->limit = a->saved;
        a->next_probe = done_us + a->p.probe_us;
    } else {
        adjust(a, m);
        if (done_us >= a->next_probe) {
            a->probing = true;
            a->saved = a->limit;
            a->limit = a->p.min;
            a->probe_start = done_us;
        }
    }
    a->seen = a->busiest = 0;
    a->window_start = done_us;
    return cr_adapt_limit(a) != before;
}

uint32_t cr_adapt_limit(const struct cr_adapt *a)
{
    return (uint32_t)a->limit;
}

void cr_adapt_view(const struct cr_adapt *a, struct cr_adapt_view *v)
{
    v->limit = cr_adapt_limit(a);
    v->min_rtt_us = a->min_rtt;
    v->gradient = a->gradient;
    v->probing = a->probing;
}
