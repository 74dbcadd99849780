/* admit.c - per-tenant queues, deficit round robin, deadlines, shedding.
 *
 * A tenant has one FIFO "flow" per priority. A non-empty flow is in exactly
 * one place, which says why it is waiting:
 *   FL_ACTIVE - in its priority's DRR list, waiting for capacity (or its turn);
 *   FL_RATE   - in the rate heap, keyed by when its GCRA bucket has a token;
 *   FL_CONC   - parked: its tenant is at its concurrency share; cr_admit_done
 *               of that tenant puts it back in the DRR list.
 *   FL_HELD   - parked in the held list: its tenant is over its fair share
 *               and only the headroom is left (admit.h, HEADROOM); back to
 *               the DRR list when a done frees a slot below the headroom or
 *               is its own, or when the set of active tenants shrinks.
 * The active tenants (admit.h) are in a list ordered by when they were last
 * seen, so the ones that stopped being active are found at its head.
 * Every non-empty flow is also in the deadline heap, keyed by its head's
 * deadline (a flow's deadlines are sorted: one max_wait per tenant, arrivals
 * in time order). cr_admit_next only looks at heads of DRR lists; a flow
 * found blocked leaves the list at once, so each look is paid for by an event
 * (a queueing, a done, a token) and nothing is ever scanned. */
#include "admit.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common.h"
#include "gcra.h"
#include "quota.h"
#include "rand.h"

#define NPRIO 3
#define NOIDX UINT32_MAX
#define US_PER_S 1000000.0

enum { IT_IDLE = 0, IT_QUEUED, IT_INFLIGHT };
enum { FL_EMPTY = 0, FL_ACTIVE, FL_RATE, FL_CONC, FL_HELD };
enum { H_DEADLINE = 0, H_RATE = 1 };

/* What holds a request back. */
enum cause { C_NONE = 0, C_CAPACITY, C_RATE, C_CONC, C_HELD };

#define ACTIVE_US ((uint64_t)CR_ADMIT_ACTIVE_MS * 1000)

struct flow {
    TAILQ_HEAD(cr_admit_q, cr_admit_item) items; /* FIFO, deadlines in order */
    uint32_t len;
    uint32_t deficit;       /* requests left in its DRR turn */
    TAILQ_ENTRY(flow) link; /* in the DRR list (FL_ACTIVE) or held list (FL_HELD) */
    uint64_t retry_at_us;   /* FL_RATE */
    uint32_t hidx[2];       /* positions in the two heaps, NOIDX if absent */
    uint32_t tenant;
    uint8_t prio;
    uint8_t state;
};

struct tstate {
    double rate; /* the local GCRA's: a global tenant's per-host share */
    uint32_t burst;
    bool global; /* leased from a.quota while it is up (quota.h) */
    uint32_t weight;
    uint32_t conc; /* this worker's share, UINT32_MAX = unlimited */
    uint32_t qcap; /* this worker's queue share */
    uint64_t max_wait_us;
    uint32_t inflight;
    uint32_t queued;
    /* Dispatch interval while backlogged (see admit.h): EWMA and the time
     * of the last dispatch from the queue or of the start of the backlog. */
    double ival_us;
    bool has_ival;
    bool primed; /* false: the next dispatch restarts the clock, no sample */
    bool fresh;  /* the next sample is the backlog's first */
    uint64_t mark_us;
    /* HEADROOM: in the active list while active, seen_us its last event */
    TAILQ_ENTRY(tstate) alink;
    uint64_t seen_us;
    bool active;
    struct cr_admit_stats stats;
    struct flow flows[NPRIO];
};

struct dlist {
    TAILQ_HEAD(, flow) q;
    uint32_t n;
};

struct heap {
    struct flow **v;
    uint32_t n;
    int which;
};

struct cr_admit {
    struct tstate *ts;
    uint32_t n;
    struct cr_admit_shared *shm;
    struct cr_quota *quota; /* cr_admit_set_quota, NULL = none */
    uint32_t capacity;
    uint32_t inflight;
    uint32_t queued;
    struct dlist active[NPRIO];
    TAILQ_HEAD(, flow) held;      /* FL_HELD flows, in the order they were held */
    TAILQ_HEAD(, tstate) actives; /* active tenants, least recently seen first */
    uint64_t active_weight;       /* the sum of their weights */
    uint32_t headroom_pct;        /* cr_admit_set_headroom */
    struct heap deadlines;
    struct heap rates;
    struct cr_rand rng;
};

static const char *const reasons[CR_ADMIT_NREASONS] = {
    [CR_ADMIT_SHED_RATE] = "tenant rate limit",
    [CR_ADMIT_SHED_QUEUE_FULL] = "tenant queue full",
    [CR_ADMIT_SHED_SATURATED] = "upstream saturated",
    [CR_ADMIT_SHED_DEADLINE] = "deadline cannot be met",
    [CR_ADMIT_SHED_EXPIRED] = "queue deadline exceeded",
};

/* ------------------------------------------------------------ small helpers */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static uint32_t share(uint32_t limit, uint32_t nworkers)
{
    return limit == 0 ? 0 : (uint32_t)(((uint64_t)limit + nworkers - 1) / nworkers);
}

/* ------------------------------------------------------------ DRR lists */

static void list_append(struct dlist *l, struct flow *f)
{
    TAILQ_INSERT_TAIL(&l->q, f, link);
    l->n++;
}

static void list_remove(struct dlist *l, struct flow *f)
{
    TAILQ_REMOVE(&l->q, f, link);
    l->n--;
}

/* ------------------------------------------------------------ heaps */

static uint64_t key(const struct heap *h, const struct flow *f)
{
    return h->which == H_DEADLINE ? TAILQ_FIRST(&f->items)->deadline_us : f->retry_at_us;
}

static void heap_set(struct heap *h, uint32_t i, struct flow *f)
{
    h->v[i] = f;
    f->hidx[h->which] = i;
}

static void sift_up(struct heap *h, uint32_t i)
{
    struct flow *f = h->v[i];

    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (key(h, h->v[up]) <= key(h, f))
            break;
        heap_set(h, i, h->v[up]);
        i = up;
    }
    heap_set(h, i, f);
}

static void sift_down(struct heap *h, uint32_t i)
{
    struct flow *f = h->v[i];

    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && key(h, h->v[c + 1]) < key(h, h->v[c]))
            c++;
        if (key(h, f) <= key(h, h->v[c]))
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, f);
}

/* The heap holds at most one entry per flow and was sized for all of them. */
static void heap_push(struct heap *h, struct flow *f)
{
    heap_set(h, h->n++, f);
    sift_up(h, h->n - 1);
}

static void heap_fix(struct heap *h, struct flow *f)
{
    uint32_t i = f->hidx[h->which];

    sift_up(h, i);
    sift_down(h, f->hidx[h->which]);
}

static void heap_remove(struct heap *h, struct flow *f)
{
    uint32_t i = f->hidx[h->which];
    struct flow *last = h->v[--h->n];

    f->hidx[h->which] = NOIDX;
    if (last != f) {
        heap_set(h, i, last);
        heap_fix(h, last);
    }
}

static struct flow *heap_top(const struct heap *h)
{
    return h->n > 0 ? h->v[0] : NULL;
}

/* ------------------------------------------------------------ flows */

/* Takes a non-empty flow out of wherever it waits (not the deadline heap). */
static void flow_detach(struct cr_admit *a, struct flow *f)
{
    if (f->state == FL_ACTIVE)
        list_remove(&a->active[f->prio], f);
    else if (f->state == FL_RATE)
        heap_remove(&a->rates, f);
    else if (f->state == FL_HELD)
        TAILQ_REMOVE(&a->held, f, link);
    f->deficit = 0;
    f->state = FL_EMPTY;
}

/* Puts a detached non-empty flow where `why` says it must wait. */
static void flow_place(struct cr_admit *a, struct flow *f, enum cause why, uint64_t retry_at_us)
{
    switch (why) {
    case C_RATE:
        f->state = FL_RATE;
        f->retry_at_us = retry_at_us;
        heap_push(&a->rates, f);
        break;
    case C_CONC:
        f->state = FL_CONC;
        break;
    case C_HELD:
        f->state = FL_HELD;
        TAILQ_INSERT_TAIL(&a->held, f, link);
        break;
    default:
        f->state = FL_ACTIVE;
        list_append(&a->active[f->prio], f);
        break;
    }
}

static enum cause flow_cause(const struct flow *f)
{
    return f->state == FL_RATE   ? C_RATE
           : f->state == FL_CONC ? C_CONC
           : f->state == FL_HELD ? C_HELD
                                 : C_CAPACITY;
}

static void item_enqueue(struct cr_admit *a, struct tstate *t, struct cr_admit_item *it,
                         enum cause why, uint64_t retry_at_us, uint64_t now_us)
{
    struct flow *f = &t->flows[it->prio];
    struct cr_admit_item *at = TAILQ_LAST(&f->items, cr_admit_q);

    /* A flow's items keep their deadlines in order (the heap and
     * cr_admit_expire look at its head only). A new arrival's is the
     * latest; one that arrives again (cr_admit_arrive_again) keeps its
     * first, which is earlier than those of the items that came after it:
     * it goes before them - from the head, as they are usually all of
     * them. */
    if (at != NULL && at->deadline_us > it->deadline_us) {
        at = TAILQ_FIRST(&f->items);
        if (at->deadline_us > it->deadline_us) {
            at = NULL;
        } else {
            struct cr_admit_item *nx;
            while ((nx = TAILQ_NEXT(at, link)) != NULL && nx->deadline_us <= it->deadline_us)
                at = nx;
        }
    }
    if (at != NULL)
        TAILQ_INSERT_AFTER(&f->items, at, it, link);
    else
        TAILQ_INSERT_HEAD(&f->items, it, link);
    it->state = IT_QUEUED;
    if (f->len++ == 0) {
        heap_push(&a->deadlines, f);
        flow_place(a, f, why, retry_at_us);
    } else if (TAILQ_FIRST(&f->items) == it) {
        heap_fix(&a->deadlines, f);
    }
    if (t->queued++ == 0) {
        t->mark_us = now_us; /* a backlog starts */
        t->primed = true;
        t->fresh = true;
    }
    a->queued++;
}

/* Unlinks a queued item; an emptied flow leaves every structure. */
static void item_unlink(struct cr_admit *a, struct tstate *t, struct cr_admit_item *it)
{
    struct flow *f = &t->flows[it->prio];
    bool was_head = TAILQ_FIRST(&f->items) == it;

    TAILQ_REMOVE(&f->items, it, link);
    it->state = IT_IDLE;
    f->len--;
    t->queued--;
    a->queued--;
    if (f->len == 0) {
        flow_detach(a, f);
        heap_remove(&a->deadlines, f);
    } else if (was_head) {
        heap_fix(&a->deadlines, f);
    }
}

static void item_dispatch(struct cr_admit *a, struct tstate *t, struct cr_admit_item *it,
                          uint64_t now_us)
{
    it->state = IT_INFLIGHT;
    it->dispatched_us = now_us;
    it->dispatched = 1;
    a->inflight++;
    t->inflight++;
    t->stats.admitted++;
}

/* ------------------------------------------------------------ headroom */

/* t had an event at now_us: it is active (again) and the most recent. */
static void touch(struct cr_admit *a, struct tstate *t, uint64_t now_us)
{
    if (now_us > t->seen_us)
        t->seen_us = now_us;
    if (t->active && TAILQ_NEXT(t, alink) == NULL)
        return; /* already the most recent: the common case under load */
    if (t->active) {
        TAILQ_REMOVE(&a->actives, t, alink);
    } else {
        t->active = true;
        a->active_weight += t->weight;
    }
    TAILQ_INSERT_TAIL(&a->actives, t, alink);
}

/* Held flows go back to the DRR list (the caller drains cr_admit_next, which
 * holds again those that still may not go). */
static void release_held(struct cr_admit *a)
{
    struct flow *f;

    while ((f = TAILQ_FIRST(&a->held)) != NULL) {
        flow_detach(a, f);
        flow_place(a, f, C_CAPACITY, 0);
    }
}

/* Tenants idle (nothing queued or in flight) for CR_ADMIT_ACTIVE_MS stop
 * being active; a busy one found at the head counts as seen now. Each
 * tenant is looked at at most once: amortized O(1) per event. */
static void prune(struct cr_admit *a, uint64_t now_us)
{
    uint32_t n = a->n;
    bool gone = false;
    struct tstate *t;

    while (n-- > 0 && (t = TAILQ_FIRST(&a->actives)) != NULL &&
           sat_add(t->seen_us, ACTIVE_US) <= now_us) {
        TAILQ_REMOVE(&a->actives, t, alink);
        if (t->inflight + t->queued > 0) {
            TAILQ_INSERT_TAIL(&a->actives, t, alink);
            t->seen_us = now_us;
            continue;
        }
        t->active = false;
        a->active_weight -= t->weight;
        gone = true;
    }
    if (gone) /* the others' shares grew */
        release_held(a);
}

/* The slots kept free for tenants below their fair share (0: off). */
static uint32_t reserve(const struct cr_admit *a)
{
    uint64_t r;

    if (a->headroom_pct == 0 || a->capacity == 0)
        return 0;
    r = ((uint64_t)a->capacity * a->headroom_pct + 50) / 100;
    return r == 0 ? 1 : (uint32_t)CR_MIN(r, (uint64_t)a->capacity);
}

/* HEADROOM (admit.h): t (active) may not take one more slot now. */
static bool held_back(const struct cr_admit *a, const struct tstate *t)
{
    uint32_t r = reserve(a);

    if (r == 0 || a->inflight + r < a->capacity)
        return false; /* the headroom is left either way */
    if (a->active_weight <= t->weight)
        return false; /* nobody else is active: work-conserving */
    /* at or over its share: inflight >= capacity * weight / active_weight */
    return (uint64_t)t->inflight * a->active_weight >= (uint64_t)a->capacity * t->weight;
}

/* ------------------------------------------------------------ estimates */

#define STALL_FLOOR_US 1000.0 /* a sample may always reach 1 ms over 4 intervals */
#define STALL_GRACE_US 50000  /* shorter dispatch pauses are not a hang */

/* A gap between dispatches counts for at most max_wait: nobody waits longer
 * than that, so a longer gap says nothing more ("not in time") and would
 * only make the estimate slow to recover. The cap also means that the first
 * in line is never shed on the estimate alone ((0 + 1) * ival <= max_wait),
 * so samples keep coming even while the estimate sheds the rest. */
static double gap_us(const struct tstate *t, uint64_t now_us)
{
    double dt = now_us > t->mark_us ? (double)(now_us - t->mark_us) : 0.0;

    return CR_MIN(dt, (double)t->max_wait_us);
}

/* One more dispatch from t's queue at now_us. */
static void drain_sample(struct tstate *t, uint64_t now_us, uint32_t inflight)
{
    double dt = gap_us(t, now_us);

    /* The backlog's first gap runs from its start to the first of the
     * requests then in flight finishing: with n of them racing, that is
     * about n intervals' worth of latency, not one interval. */
    if (t->fresh) {
        t->fresh = false;
        dt /= CR_MAX(inflight, 1u);
    }

    /* Time spent with no capacity at all (the upstream connecting or down)
     * says nothing about the drain rate: the first dispatch after it only
     * restarts the clock (see cr_admit_set_capacity). */
    if (!t->primed) {
        t->primed = true;
        t->mark_us = now_us;
        return;
    }
    /* One long gap is more often this worker not running (descheduled, a
     * burst of handshakes) than the upstream slowing down: a sample counts
     * for at most four intervals, so a real slowdown still raises the
     * estimate (by 3/8 per dispatch) while one hiccup cannot shed a herd. */
    if (t->has_ival)
        t->ival_us += (CR_MIN(dt, 4.0 * t->ival_us + STALL_FLOOR_US) - t->ival_us) / 8.0;
    else
        t->ival_us = dt;
    t->has_ival = true;
    t->mark_us = now_us;
}

/* The dispatch interval, as it would be if a dispatch happened now: a stall
 * longer than the estimate raises it. 0 while unknown. */
static double drain_ival(const struct tstate *t, uint64_t now_us)
{
    double stall;

    if (!t->has_ival)
        return 0.0;
    stall = t->queued > 0 ? gap_us(t, now_us) : 0.0;
    /* a pause shorter than a tenth of max_wait (and than STALL_GRACE_US) is
     * as likely this worker as the upstream: not a hang yet */
    if (stall < CR_MAX((double)STALL_GRACE_US, (double)t->max_wait_us / 10.0))
        return t->ival_us;
    return stall > t->ival_us ? t->ival_us + (stall - t->ival_us) / 8.0 : t->ival_us;
}

/* The rate's source: a global tenant's lease while Redis is up, else the
 * local GCRA (for a global tenant, at its per-host share). */
static uint64_t tok_wait(struct cr_admit *a, const struct tstate *t, uint64_t now_us, uint32_t n)
{
    uint32_t i = (uint32_t)(t - a->ts);
    if (t->global && cr_quota_up(a->quota))
        return cr_quota_wait_us(a->quota, i, now_us, n);
    return cr_gcra_wait_us(&a->shm->tat[i], t->rate, t->burst, now_us, n);
}

static int tok_take(struct cr_admit *a, const struct tstate *t, uint64_t now_us,
                    uint64_t *retry_at_us)
{
    uint32_t i = (uint32_t)(t - a->ts);
    if (t->global) {
        switch (cr_quota_take(a->quota, i, now_us, retry_at_us)) {
        case CR_QUOTA_LEASED:
            return 0;
        case CR_QUOTA_EMPTY:
            return CR_EAGAIN;
        case CR_QUOTA_LOCAL:
            break;
        }
    }
    return cr_gcra_take(&a->shm->tat[i], t->rate, t->burst, now_us, retry_at_us);
}

/* Predicted wait (us) of a request of t at priority p joining the back of
 * its queue now. */
/* The part of the wait that the tenant's own rate imposes (0 unrated). */
static double rate_wait(struct cr_admit *a, const struct tstate *t, int p, uint64_t now_us)
{
    if (p == CR_PRIO_HIGH || t->rate <= 0.0)
        return 0.0;
    uint32_t ahead_rated =
        t->flows[CR_PRIO_NORMAL].len + (p == CR_PRIO_LOW ? t->flows[CR_PRIO_LOW].len : 0);
    return (double)tok_wait(a, t, now_us, ahead_rated);
}

static double predict_wait(struct cr_admit *a, const struct tstate *t, int p, uint64_t now_us)
{
    uint32_t ahead = 0;
    double w;

    for (int q = 0; q <= p; q++)
        ahead += t->flows[q].len;
    w = (double)(ahead + 1) * drain_ival(t, now_us);
    return CR_MAX(w, rate_wait(a, t, p, now_us));
}

static void fill_shed(struct cr_admit *a, struct tstate *t, struct cr_admit_shed *why,
                      enum cr_admit_reason kind, enum cause c, double wait_us)
{
    double x = CR_MAX(wait_us, US_PER_S) / US_PER_S;

    x *= 1.0 + 0.5 * cr_rand_01(&a->rng); /* jitter: 0..50% */
    x = floor(x + cr_rand_01(&a->rng));   /* stochastic rounding: mean preserved */
    why->kind = kind;
    why->reason = reasons[kind];
    why->status = c == C_CAPACITY || c == C_HELD ? 503 : 429;
    why->retry_after_s =
        x >= CR_ADMIT_RETRY_MAX_S ? CR_ADMIT_RETRY_MAX_S : (uint32_t)CR_MAX(x, 1.0);
    t->stats.shed[kind]++;
}

/* ------------------------------------------------------------ lifecycle */

int cr_admit_new(const struct cr_tenants *t, struct cr_admit_shared *shm, uint32_t nworkers,
                 uint64_t seed, struct cr_admit **out)
{
    struct cr_admit *a;
    uint32_t n;
    int rc = CR_ENOMEM;

    if (out == NULL)
        return CR_EINVAL;
    *out = NULL;
    if (t == NULL || shm == NULL || nworkers == 0)
        return CR_EINVAL;
    n = cr_tenants_count(t);
    if (n > CR_ADMIT_MAX_TENANTS)
        return CR_ELIMIT;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return CR_ENOMEM;
    a->n = n;
    a->shm = shm;
    a->ts = calloc(n, sizeof(*a->ts));
    if (a->ts == NULL)
        goto fail;
    a->deadlines.v = calloc((size_t)n * NPRIO, sizeof(*a->deadlines.v));
    if (a->deadlines.v == NULL)
        goto fail;
    a->rates.v = calloc((size_t)n * NPRIO, sizeof(*a->rates.v));
    if (a->rates.v == NULL)
        goto fail;
    a->deadlines.which = H_DEADLINE;
    a->rates.which = H_RATE;
    for (int p = 0; p < NPRIO; p++)
        TAILQ_INIT(&a->active[p].q);
    TAILQ_INIT(&a->held);
    TAILQ_INIT(&a->actives);
    for (uint32_t i = 0; i < n; i++) {
        const struct cr_cfg_limits *l = &cr_tenants_at(t, i)->limits;
        struct tstate *ts = &a->ts[i];

        ts->rate = l->rate;
        ts->burst = l->burst == 0 ? 1 : l->burst;
        ts->weight = l->weight == 0 ? 1 : l->weight;
        ts->conc = l->concurrency == 0 ? UINT32_MAX : share(l->concurrency, nworkers);
        ts->qcap = share(l->queue, nworkers);
        ts->max_wait_us = l->max_wait_ms > UINT64_MAX / 1000 ? UINT64_MAX : l->max_wait_ms * 1000;
        for (int p = 0; p < NPRIO; p++) {
            TAILQ_INIT(&ts->flows[p].items);
            ts->flows[p].tenant = i;
            ts->flows[p].prio = (uint8_t)p;
            ts->flows[p].hidx[0] = ts->flows[p].hidx[1] = NOIDX;
        }
    }
    cr_rand_seed(&a->rng, seed); /* for the jitter only */
    *out = a;
    return 0;

fail:
    cr_admit_free(a);
    return rc;
}

void cr_admit_free(struct cr_admit *a)
{
    if (a == NULL)
        return;
    free(a->rates.v);
    free(a->deadlines.v);
    free(a->ts);
    free(a);
}

void cr_admit_item_init(struct cr_admit_item *item, void *owner)
{
    memset(item, 0, sizeof(*item));
    item->owner = owner;
}

void cr_admit_set_capacity(struct cr_admit *a, uint32_t streams)
{
    if (a->capacity == 0 && streams > 0) /* rare: the upstream came (back) up */
        for (uint32_t i = 0; i < a->n; i++)
            a->ts[i].primed = false;
    if (streams != a->capacity) /* the headroom and the shares change */
        release_held(a);
    a->capacity = streams;
}

void cr_admit_set_headroom(struct cr_admit *a, uint32_t percent)
{
    a->headroom_pct = CR_MIN(percent, 100u);
    release_held(a);
}

/* ------------------------------------------------------------ arrival */

/* Why a new request of t at priority p cannot go now (C_NONE: it can, and
 * its token, if any, is taken). *retry_at_us is set for C_RATE. */
static enum cause arrival_cause(struct cr_admit *a, struct tstate *t, int p, uint64_t now_us,
                                uint64_t *retry_at_us)
{
    bool rated = p != CR_PRIO_HIGH && t->rate > 0.0;
    uint64_t w;

    /* FIFO: behind its own tenant's queue at this priority or above. */
    for (int q = 0; q <= p; q++) {
        if (t->flows[q].len > 0) {
            *retry_at_us = t->flows[q].retry_at_us;
            return flow_cause(&t->flows[q]);
        }
    }
    /* The tenant's own limits first, so that the status says whose fault. */
    if (t->inflight >= t->conc)
        return C_CONC;
    if (rated && (w = tok_wait(a, t, now_us, 0)) > 0) {
        *retry_at_us = sat_add(now_us, w);
        return C_RATE;
    }
    if (a->inflight >= a->capacity)
        return C_CAPACITY;
    for (int q = 0; q <= p; q++)
        if (a->active[q].n > 0)
            return C_CAPACITY; /* others wait for capacity ahead of it */
    if (held_back(a, t))
        return C_HELD;
    /* Another worker may have taken the token since the check above. */
    if (rated && tok_take(a, t, now_us, retry_at_us) != 0)
        return C_RATE;
    return C_NONE;
}

/* cr_admit_arrive, and cr_admit_arrive_again with again true: the item
 * keeps the deadline of its first arrival, and what is left of its
 * max_wait (left) is what the predicted wait must fit in. */
static enum cr_admit_verdict arrive(struct cr_admit *a, struct cr_admit_item *item,
                                    const struct cr_tenant *tenant, enum cr_priority prio,
                                    uint64_t now_us, bool again, struct cr_admit_shed *why)
{
    uint32_t idx = tenant != NULL && tenant->index < a->n ? tenant->index : 0;
    struct tstate *t = &a->ts[idx];
    int p = prio >= CR_PRIO_HIGH && prio <= CR_PRIO_LOW ? (int)prio : CR_PRIO_NORMAL;
    uint64_t retry_at = 0;
    enum cause c;
    double wait;

    assert(item->state == IT_IDLE);
    item->tenant = idx;
    item->prio = (uint8_t)p;
    item->arrived_us = now_us;
    if (!again)
        item->deadline_us = sat_add(now_us, t->max_wait_us);
    double left = item->deadline_us > now_us ? (double)(item->deadline_us - now_us) : 0.0;
    item->dispatched = 0;
    item->dispatched_us = 0;
    prune(a, now_us);
    touch(a, t, now_us);

    if (p == CR_PRIO_LOW && a->inflight >= a->capacity) {
        fill_shed(a, t, why, CR_ADMIT_SHED_SATURATED, C_CAPACITY, predict_wait(a, t, p, now_us));
        return CR_ADMIT_SHED;
    }
    c = arrival_cause(a, t, p, now_us, &retry_at);
    if (c == C_NONE) {
        item_dispatch(a, t, item, now_us);
        return CR_ADMIT_GO;
    }
    wait = predict_wait(a, t, p, now_us);
    /* High priority has a queue allowance of its own: a campaign filling
     * its tenant's queue with normal requests never locks out a login or a
     * health check. */
    uint32_t high = t->flows[CR_PRIO_HIGH].len;
    uint32_t ahead = p == CR_PRIO_HIGH ? high : t->queued - high;
    if (t->qcap == 0 || t->max_wait_us == 0 || ahead >= t->qcap) {
        enum cr_admit_reason r = c == C_RATE   ? CR_ADMIT_SHED_RATE
                                 : c == C_CONC ? CR_ADMIT_SHED_QUEUE_FULL
                                               : CR_ADMIT_SHED_SATURATED; /* or C_HELD */
        fill_shed(a, t, why, r, c, wait);
        return CR_ADMIT_SHED;
    }
    if (left == 0.0) { /* arriving again, its max_wait all spent */
        fill_shed(a, t, why, CR_ADMIT_SHED_EXPIRED, c, wait);
        return CR_ADMIT_SHED;
    }
    if (wait > left && a->capacity > 0) {
        fill_shed(a, t, why, CR_ADMIT_SHED_DEADLINE, c, wait);
        return CR_ADMIT_SHED;
    }
    /* With no capacity at all (the upstream is reconnecting) the dispatch
     * rate says nothing and the request waits, up to its deadline, unless
     * its tenant's own rate already puts it past that: the tenant's limit. */
    if (a->capacity == 0 && (wait = rate_wait(a, t, p, now_us)) > left) {
        fill_shed(a, t, why, CR_ADMIT_SHED_DEADLINE, C_RATE, wait);
        return CR_ADMIT_SHED;
    }
    item_enqueue(a, t, item, c, retry_at, now_us);
    t->stats.queued++;
    return CR_ADMIT_QUEUED;
}

enum cr_admit_verdict cr_admit_arrive(struct cr_admit *a, struct cr_admit_item *item,
                                      const struct cr_tenant *tenant, enum cr_priority prio,
                                      uint64_t now_us, struct cr_admit_shed *why)
{
    return arrive(a, item, tenant, prio, now_us, false, why);
}

enum cr_admit_verdict cr_admit_arrive_again(struct cr_admit *a, struct cr_admit_item *item,
                                            const struct cr_tenant *tenant, enum cr_priority prio,
                                            uint64_t now_us, struct cr_admit_shed *why)
{
    return arrive(a, item, tenant, prio, now_us, true, why);
}

/* ------------------------------------------------------------ dispatch */

/* Tenants whose token time has come go back to their DRR list's tail. */
static void promote_due(struct cr_admit *a, uint64_t now_us)
{
    struct flow *f;

    while ((f = heap_top(&a->rates)) != NULL && f->retry_at_us <= now_us) {
        flow_detach(a, f);
        flow_place(a, f, C_CAPACITY, 0);
    }
}

struct cr_admit_item *cr_admit_next(struct cr_admit *a, uint64_t now_us)
{
    prune(a, now_us);
    promote_due(a, now_us);
    for (int p = 0; p < NPRIO; p++) {
        struct flow *f;

        while ((f = TAILQ_FIRST(&a->active[p].q)) != NULL) {
            struct tstate *t = &a->ts[f->tenant];
            struct cr_admit_item *it;
            uint64_t retry_at = 0;
            bool rotate;

            if (a->inflight >= a->capacity)
                return NULL;
            if (t->inflight >= t->conc) {
                flow_detach(a, f);
                flow_place(a, f, C_CONC, 0);
                continue;
            }
            if (held_back(a, t)) {
                flow_detach(a, f);
                flow_place(a, f, C_HELD, 0);
                continue;
            }
            if (p != CR_PRIO_HIGH && t->rate > 0.0 && tok_take(a, t, now_us, &retry_at) != 0) {
                flow_detach(a, f);
                flow_place(a, f, C_RATE, retry_at);
                continue;
            }
            if (f->deficit == 0)
                f->deficit = t->weight; /* its turn starts */
            f->deficit--;
            it = TAILQ_FIRST(&f->items);
            rotate = f->deficit == 0 && f->len > 1;
            drain_sample(t, now_us, a->inflight + 1);
            item_unlink(a, t, it);
            if (rotate) {
                list_remove(&a->active[p], f);
                list_append(&a->active[p], f);
            }
            item_dispatch(a, t, it, now_us);
            return it;
        }
    }
    return NULL;
}

/* An in-flight item ends: its slots are free. */
static void release(struct cr_admit *a, struct tstate *t, struct cr_admit_item *item)
{
    item->state = IT_IDLE;
    a->inflight--;
    t->inflight--;
    if (!TAILQ_EMPTY(&a->held) && a->inflight + reserve(a) < a->capacity)
        release_held(a); /* below the headroom again: anybody may go */
    for (int p = 0; t->queued > 0 && p < NPRIO; p++) {
        struct flow *f = &t->flows[p];
        /* a slot of its own: under its concurrency or, maybe, its share */
        if ((f->state == FL_CONC && t->inflight < t->conc) || f->state == FL_HELD) {
            flow_detach(a, f);
            flow_place(a, f, C_CAPACITY, 0);
        }
    }
}

void cr_admit_done(struct cr_admit *a, struct cr_admit_item *item, uint64_t now_us)
{
    struct tstate *t;

    if (item->state != IT_INFLIGHT)
        return;
    t = &a->ts[item->tenant];
    release(a, t, item);
    touch(a, t, now_us);
}

void cr_admit_cancel(struct cr_admit *a, struct cr_admit_item *item)
{
    if (item->state == IT_INFLIGHT) {
        release(a, &a->ts[item->tenant], item);
    } else if (item->state == IT_QUEUED) {
        struct tstate *t = &a->ts[item->tenant];
        item_unlink(a, t, item);
        t->stats.cancelled++;
    }
}

struct cr_admit_item *cr_admit_expire(struct cr_admit *a, uint64_t now_us,
                                      struct cr_admit_shed *why)
{
    struct flow *f = heap_top(&a->deadlines);
    struct cr_admit_item *it;
    struct tstate *t;
    enum cause c;

    if (f == NULL || TAILQ_FIRST(&f->items)->deadline_us >= now_us)
        return NULL;
    it = TAILQ_FIRST(&f->items);
    t = &a->ts[f->tenant];
    c = flow_cause(f);
    item_unlink(a, t, it);
    if (why != NULL) {
        fill_shed(a, t, why, CR_ADMIT_SHED_EXPIRED, c, predict_wait(a, t, it->prio, now_us));
    } else {
        t->stats.shed[CR_ADMIT_SHED_EXPIRED]++;
    }
    return it;
}

uint64_t cr_admit_next_wakeup(const struct cr_admit *a)
{
    const struct flow *d = heap_top(&a->deadlines), *r = heap_top(&a->rates);
    uint64_t at = UINT64_MAX;

    if (d != NULL)
        at = sat_add(TAILQ_FIRST(&d->items)->deadline_us, 1); /* expires once past it */
    if (r != NULL && r->retry_at_us < at)
        at = r->retry_at_us;
    /* a held flow may go when the first active tenant stops being active */
    if (!TAILQ_EMPTY(&a->held) && !TAILQ_EMPTY(&a->actives))
        at = CR_MIN(at, sat_add(TAILQ_FIRST(&a->actives)->seen_us, ACTIVE_US));
    return at;
}

double cr_admit_wait_ms(const struct cr_admit_item *item, uint64_t now_us)
{
    uint64_t end = item->dispatched ? item->dispatched_us : now_us;

    return end > item->arrived_us ? (double)(end - item->arrived_us) / 1000.0 : 0.0;
}

int cr_admit_stats(const struct cr_admit *a, uint32_t tenant, struct cr_admit_stats *out)
{
    const struct tstate *t;

    if (tenant >= a->n || out == NULL)
        return CR_EINVAL;
    t = &a->ts[tenant];
    *out = t->stats;
    out->queue_len = t->queued;
    out->inflight = t->inflight;
    return 0;
}

uint32_t cr_admit_inflight(const struct cr_admit *a)
{
    return a->inflight;
}

uint32_t cr_admit_queued(const struct cr_admit *a)
{
    return a->queued;
}

void cr_admit_set_quota(struct cr_admit *a, struct cr_quota *q)
{
    a->quota = q;
    for (uint32_t i = 0; i < a->n; i++) {
        struct tstate *t = &a->ts[i];
        if (q == NULL || t->global || !cr_quota_is_global(q, i))
            continue;
        t->global = true;
        t->rate = cr_quota_local_rate(q, t->rate);
        t->burst = cr_quota_local_burst(q, t->burst);
    }
}

uint32_t cr_admit_capacity(const struct cr_admit *a)
{
    return a->capacity;
}
