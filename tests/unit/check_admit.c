/* check_admit.c - the host-wide rate limiter (GCRA) and the per-worker
 * admission engine: limits, queues, deadlines, shedding, fairness, priority.
 *
 * Time is simulated: every call gets an explicit now_us. The only real
 * concurrency is the two-thread GCRA test (pthreads, here only). */
#include "ac_config.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "common.h"
#include "config.h"
#include "gcra.h"
#include "tenant.h"

#define MS 1000ULL
#define SEC 1000000ULL

/* ------------------------------------------------------------ fixtures */

static struct cr_cfg_limits L(double rate, uint32_t burst, uint32_t conc, uint32_t queue,
                              uint64_t max_wait_ms, uint32_t weight) {
    struct cr_cfg_limits l = {.rate = rate,
                              .burst = burst,
                              .concurrency = conc,
                              .queue = queue,
                              .max_wait_ms = max_wait_ms,
                              .weight = weight};
    return l;
}

/* Unlimited everything but a deep queue and a long deadline. */
#define OPEN L(0, 100, 0, 100000, 3600 * 1000, 1)

#define MAXT 8

struct env {
    struct cr_cfg_tenant list[MAXT];
    char names[MAXT][16];
    struct cr_tenants *t;
    struct cr_admit_shared *shm;
    struct cr_admit *a;
};

/* lim[0] is the default tenant's limits, lim[1..n-1] those of tenants
 * "t1".."t<n-1>" (identified by header). */
static void env_init(struct env *e, const struct cr_cfg_limits *lim, size_t n, uint32_t nworkers)
{
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_HEADER, .header = "X-Tenant-Id"};

    memset(e, 0, sizeof(*e));
    ck_assert_uint_le(n, MAXT);
    cfg.defaults = lim[0];
    for (size_t i = 1; i < n; i++) {
        snprintf(e->names[i], sizeof(e->names[i]), "t%zu", i);
        e->list[i - 1].name = e->names[i];
        e->list[i - 1].limits = lim[i];
    }
    cfg.list = e->list;
    cfg.nlist = n - 1;
    ck_assert_int_eq(cr_tenants_new(&cfg, &e->t), 0);
    e->shm = calloc(1, sizeof(*e->shm));
    ck_assert_ptr_nonnull(e->shm);
    ck_assert_int_eq(cr_admit_new(e->t, e->shm, nworkers, 42, &e->a), 0);
}

static void env_free(struct env *e)
{
    cr_admit_free(e->a);
    cr_tenants_free(e->t);
    free(e->shm);
}

static const struct cr_tenant *T(const struct env *e, uint32_t i)
{
    return cr_tenants_at(e->t, i);
}

static enum cr_admit_verdict arrive(struct env *e, struct cr_admit_item *it, uint32_t tenant,
                                    enum cr_priority p, uint64_t now, struct cr_admit_shed *why)
{
    struct cr_admit_shed scratch;

    cr_admit_item_init(it, it);
    return cr_admit_arrive(e->a, it, T(e, tenant), p, now, why != NULL ? why : &scratch);
}

static struct cr_admit_stats stats(const struct env *e, uint32_t tenant)
{
    struct cr_admit_stats s;

    ck_assert_int_eq(cr_admit_stats(e->a, tenant, &s), 0);
    return s;
}

/* ------------------------------------------------------------ GCRA */

/* From a full bucket, over [0, 60 s] with attempts every millisecond (three
 * at a time), exactly burst + rate * 60 pass, and burst pass at t = 0. */
START_TEST(gcra_rate_and_burst_exact_over_a_minute)
{
    static const struct {
        double rate;
        uint32_t burst;
    } cases[] = {{100, 1}, {100, 20}, {3, 20}, {1000, 7}, {0.5, 2}, {2500, 3}};

    for (size_t c = 0; c < CR_ARRAY_LEN(cases); c++) {
        _Atomic uint64_t tat = 0;
        uint64_t passed = 0, at_zero = 0;

        for (uint64_t ms = 0; ms <= 60000; ms++) {
            for (int j = 0; j < (ms == 0 ? 100 : 3); j++) {
                if (cr_gcra_take(&tat, cases[c].rate, cases[c].burst, ms * MS, NULL) == 0) {
                    passed++;
                    at_zero += ms == 0;
                }
            }
        }
        ck_assert_uint_eq(at_zero, cases[c].burst);
        ck_assert_uint_eq(passed, cases[c].burst + (uint64_t)floor(cases[c].rate * 60 + 1e-9));
    }
}
END_TEST

/* Sustained: no window of one second ever holds more than rate + burst. */
START_TEST(gcra_no_window_exceeds_rate_plus_burst)
{
    _Atomic uint64_t tat = 0;
    static uint64_t times[20000];
    size_t n = 0;

    for (uint64_t us = 0; us <= 60 * SEC && n < CR_ARRAY_LEN(times); us += 250)
        if (cr_gcra_take(&tat, 50, 10, us, NULL) == 0)
            times[n++] = us;
    ck_assert_uint_eq(n, 10 + 50 * 60);
    for (size_t i = 0, j = 0; i < n; i++) {
        while (times[i] - times[j] >= SEC)
            j++;
        ck_assert_uint_le(i - j + 1, 50 + 10);
    }
}
END_TEST

START_TEST(gcra_retry_at_is_exact)
{
    _Atomic uint64_t tat = 0;
    uint64_t retry = 0;

    ck_assert_int_eq(cr_gcra_take(&tat, 10, 1, 0, &retry), 0);
    ck_assert_int_eq(cr_gcra_take(&tat, 10, 1, 0, &retry), CR_EAGAIN);
    ck_assert_uint_eq(retry, 100 * MS);
    ck_assert_int_eq(cr_gcra_take(&tat, 10, 1, 100 * MS - 1, &retry), CR_EAGAIN);
    ck_assert_uint_eq(retry, 100 * MS);
    ck_assert_int_eq(cr_gcra_take(&tat, 10, 1, 100 * MS, &retry), 0);

    /* a third of a second: rounded up to the microsecond */
    tat = 0;
    ck_assert_int_eq(cr_gcra_take(&tat, 3, 2, 5 * SEC, NULL), 0);
    ck_assert_int_eq(cr_gcra_take(&tat, 3, 2, 5 * SEC, NULL), 0);
    ck_assert_int_eq(cr_gcra_take(&tat, 3, 2, 5 * SEC, &retry), CR_EAGAIN);
    ck_assert_uint_eq(retry, 5 * SEC + 333334);
    ck_assert_int_eq(cr_gcra_take(&tat, 3, 2, retry - 1, NULL), CR_EAGAIN);
    ck_assert_int_eq(cr_gcra_take(&tat, 3, 2, retry, NULL), 0);
}
END_TEST

START_TEST(gcra_unlimited_and_degenerate)
{
    _Atomic uint64_t tat = 0;
    uint64_t retry = 7;

    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(cr_gcra_take(&tat, 0, 1, 0, &retry), 0);
    ck_assert_uint_eq(tat, 0);
    ck_assert_uint_eq(retry, 7);
    ck_assert_int_eq(cr_gcra_take(&tat, -1, 1, 0, NULL), 0);
    ck_assert_int_eq(cr_gcra_take(&tat, NAN, 1, 0, NULL), 0);
    ck_assert_uint_eq(cr_gcra_wait_us(&tat, 0, 1, 0, 1000), 0);
    /* burst 0 behaves as 1 */
    ck_assert_int_eq(cr_gcra_take(&tat, 1, 0, 0, NULL), 0);
    ck_assert_int_eq(cr_gcra_take(&tat, 1, 0, 0, &retry), CR_EAGAIN);
    ck_assert_uint_eq(retry, SEC);
    /* one per hour with a huge burst does not wrap around */
    tat = 0;
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(cr_gcra_take(&tat, 1.0 / 3600, 10000000, 1, NULL), 0);
    /* a very slow rate refuses with a far but finite retry time */
    tat = 0;
    ck_assert_int_eq(cr_gcra_take(&tat, 1e-9, 1, 0, NULL), 0);
    ck_assert_int_eq(cr_gcra_take(&tat, 1e-9, 1, 0, &retry), CR_EAGAIN);
    ck_assert_uint_gt(retry, 1000000 * SEC);
}
END_TEST

START_TEST(gcra_wait_is_a_tight_lower_bound)
{
    _Atomic uint64_t tat = 0;

    for (uint32_t n = 0; n < 5; n++)
        ck_assert_uint_eq(cr_gcra_wait_us(&tat, 10, 5, 0, n), 0);
    ck_assert_uint_eq(cr_gcra_wait_us(&tat, 10, 5, 0, 5), 100 * MS);
    ck_assert_uint_eq(cr_gcra_wait_us(&tat, 10, 5, 0, 9), 500 * MS);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(cr_gcra_take(&tat, 10, 5, 0, NULL), 0);
    ck_assert_uint_eq(cr_gcra_wait_us(&tat, 10, 5, 0, 0), 100 * MS);
    ck_assert_uint_eq(cr_gcra_wait_us(&tat, 10, 5, 30 * MS, 2), 270 * MS);
    /* and it is exact: the (n+1)th token really comes then */
    for (uint32_t n = 0; n < 3; n++) {
        uint64_t at = 30 * MS + cr_gcra_wait_us(&tat, 10, 5, 30 * MS, 0);
        ck_assert_int_eq(cr_gcra_take(&tat, 10, 5, at - 1, NULL), CR_EAGAIN);
        ck_assert_int_eq(cr_gcra_take(&tat, 10, 5, at, NULL), 0);
    }
}
END_TEST

/* Two threads hammer one word; simulated time is derived from the total
 * number of attempts, so both threads are always at the same frontier and
 * race for the same tokens. The word's final value bounds the count:
 * admitted <= rate * T + burst. */
static _Atomic uint64_t race_tat;
static _Atomic uint64_t race_clock;

#define RACE_RATE 100000.0 /* one per 10 us */
#define RACE_BURST 10
#define RACE_PER_US 4
#define RACE_ATTEMPTS 2000000

static void *race(void *arg)
{
    uint64_t *admitted = arg;

    for (int i = 0; i < RACE_ATTEMPTS; i++) {
        uint64_t now = atomic_fetch_add(&race_clock, 1) / RACE_PER_US;
        if (cr_gcra_take(&race_tat, RACE_RATE, RACE_BURST, now, NULL) == 0)
            (*admitted)++;
    }
    return NULL;
}

START_TEST(gcra_two_threads_never_over_admit)
{
    pthread_t th[2];
    uint64_t admitted[2] = {0, 0};
    uint64_t end_us, bound, total;

    for (int round = 0; round < 3; round++) {
        atomic_store(&race_tat, 0);
        atomic_store(&race_clock, 0);
        admitted[0] = admitted[1] = 0;
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, race, &admitted[i]), 0);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        end_us = (2ULL * RACE_ATTEMPTS - 1) / RACE_PER_US;
        bound = (uint64_t)(RACE_RATE * (double)end_us / 1e6) + RACE_BURST;
        total = admitted[0] + admitted[1];
        ck_assert_uint_le(total, bound);
        ck_assert_uint_ge(total, bound - bound / 100); /* and the test is not vacuous */
    }
}
END_TEST

/* Two workers' engines share the array: the tenant's rate holds host-wide. */
START_TEST(rate_is_host_wide_across_workers)
{
    struct cr_cfg_limits lim[] = {L(10, 5, 0, 1000, 3600 * 1000, 1)};
    struct env e;
    struct cr_admit *b;
    struct cr_admit_item *items = calloc(4000, sizeof(*items));
    uint64_t dispatched = 0;
    int k = 0;

    env_init(&e, lim, 1, 2);
    ck_assert_int_eq(cr_admit_new(e.t, e.shm, 2, 7, &b), 0);
    cr_admit_set_capacity(e.a, 100);
    cr_admit_set_capacity(b, 100);
    for (uint64_t ms = 0; ms <= 10000; ms += 5) {
        struct cr_admit *w = (ms / 5) % 2 ? b : e.a;
        struct cr_admit_shed why;
        struct cr_admit_item *it;

        cr_admit_item_init(&items[k], NULL);
        if (cr_admit_arrive(w, &items[k], T(&e, 0), CR_PRIO_NORMAL, ms * MS, &why) == CR_ADMIT_GO) {
            dispatched++;
            cr_admit_done(w, &items[k], ms * MS);
        }
        k++;
        for (int i = 0; i < 2; i++) {
            struct cr_admit *x = i ? b : e.a;
            while (cr_admit_expire(x, ms * MS, NULL) != NULL)
                ;
            while ((it = cr_admit_next(x, ms * MS)) != NULL) {
                dispatched++;
                cr_admit_done(x, it, ms * MS);
            }
        }
    }
    ck_assert_uint_le(dispatched, 5 + 10 * 10);
    ck_assert_uint_ge(dispatched, 5 + 10 * 10 - 1);
    cr_admit_free(b);
    env_free(&e);
    free(items);
}
END_TEST

/* ------------------------------------------------------------ engine basics */

START_TEST(new_checks_its_arguments)
{
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_HEADER, .defaults = OPEN};
    struct cr_cfg_tenant *list = calloc(CR_ADMIT_MAX_TENANTS, sizeof(*list));
    struct cr_admit_shared *shm = calloc(1, sizeof(*shm));
    struct cr_tenants *t;
    struct cr_admit *a = (struct cr_admit *)&a;
    char(*names)[16] = calloc(CR_ADMIT_MAX_TENANTS, 16);

    for (int i = 0; i < CR_ADMIT_MAX_TENANTS; i++) {
        snprintf(names[i], 16, "t%d", i);
        list[i].name = names[i];
        list[i].limits = OPEN;
    }
    cfg.list = list;
    /* 1023 + the default = 1024: fits */
    cfg.nlist = CR_ADMIT_MAX_TENANTS - 1;
    ck_assert_int_eq(cr_tenants_new(&cfg, &t), 0);
    ck_assert_int_eq(cr_admit_new(t, shm, 1, 0, &a), 0);
    cr_admit_free(a);
    ck_assert_int_eq(cr_admit_new(t, shm, 0, 0, &a), CR_EINVAL);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(cr_admit_new(t, NULL, 1, 0, &a), CR_EINVAL);
    ck_assert_int_eq(cr_admit_new(NULL, shm, 1, 0, &a), CR_EINVAL);
    cr_tenants_free(t);
    /* one more: refused */
    cfg.nlist = CR_ADMIT_MAX_TENANTS;
    ck_assert_int_eq(cr_tenants_new(&cfg, &t), 0);
    a = (struct cr_admit *)&a;
    ck_assert_int_eq(cr_admit_new(t, shm, 1, 0, &a), CR_ELIMIT);
    ck_assert_ptr_null(a);
    cr_tenants_free(t);
    cr_admit_free(NULL);
    free(names);
    free(list);
    free(shm);
}
END_TEST

START_TEST(capacity_starts_at_zero)
{
    struct cr_cfg_limits lim[] = {OPEN};
    struct env e;
    struct cr_admit_item it;

    env_init(&e, lim, 1, 1);
    ck_assert_uint_eq(cr_admit_capacity(e.a), 0);
    ck_assert_int_eq(arrive(&e, &it, 0, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_ptr_null(cr_admit_next(e.a, 0));
    cr_admit_set_capacity(e.a, 1);
    ck_assert_ptr_eq(cr_admit_next(e.a, 0), &it);
    ck_assert_uint_eq(cr_admit_inflight(e.a), 1);
    ck_assert_uint_eq(cr_admit_queued(e.a), 0);
    env_free(&e);
}
END_TEST

/* ------------------------------------------------------------ refusals */

START_TEST(rate_queue_full_is_429_with_retry_after)
{
    struct cr_cfg_limits lim[] = {OPEN, L(1, 1, 0, 10, 3600 * 1000, 1)};
    struct env e;
    struct cr_admit_item it[12];
    struct cr_admit_shed why;
    struct cr_admit_stats s;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 100);
    ck_assert_int_eq(arrive(&e, &it[0], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    for (int i = 1; i <= 10; i++)
        ck_assert_int_eq(arrive(&e, &it[i], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &it[11], 1, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
    ck_assert_int_eq(why.status, 429);
    ck_assert_int_eq(why.kind, CR_ADMIT_SHED_RATE);
    ck_assert_str_eq(why.reason, "tenant rate limit");
    /* 10 queued at one per second: the back of the line is 11 s away */
    ck_assert_uint_ge(why.retry_after_s, 11);
    ck_assert_uint_le(why.retry_after_s, 17);
    s = stats(&e, 1);
    ck_assert_uint_eq(s.admitted, 1);
    ck_assert_uint_eq(s.queued, 10);
    ck_assert_uint_eq(s.queue_len, 10);
    ck_assert_uint_eq(s.inflight, 1);
    ck_assert_uint_eq(s.shed[CR_ADMIT_SHED_RATE], 1);
    ck_assert_uint_eq(stats(&e, 0).shed[CR_ADMIT_SHED_RATE], 0);
    env_free(&e);
}
END_TEST

START_TEST(concurrency_queue_full_is_429)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0, 1, 1, 2, 3600 * 1000, 1)};
    struct env e;
    struct cr_admit_item it[4];
    struct cr_admit_shed why;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 100);
    ck_assert_int_eq(arrive(&e, &it[0], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &it[1], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &it[2], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &it[3], 1, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
    ck_assert_int_eq(why.status, 429);
    ck_assert_str_eq(why.reason, "tenant queue full");
    ck_assert_uint_ge(why.retry_after_s, 1);
    ck_assert_uint_eq(stats(&e, 1).shed[CR_ADMIT_SHED_QUEUE_FULL], 1);
    env_free(&e);
}
END_TEST

START_TEST(saturated_queue_full_is_503)
{
    struct cr_cfg_limits lim[] = {L(0, 1, 0, 2, 3600 * 1000, 1)};
    struct env e;
    struct cr_admit_item it[4];
    struct cr_admit_shed why;

    env_init(&e, lim, 1, 1);
    cr_admit_set_capacity(e.a, 1);
    ck_assert_int_eq(arrive(&e, &it[0], 0, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &it[1], 0, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &it[2], 0, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &it[3], 0, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
    ck_assert_int_eq(why.status, 503);
    ck_assert_str_eq(why.reason, "upstream saturated");
    ck_assert_uint_ge(why.retry_after_s, 1);
    env_free(&e);
}
END_TEST

/* queue: 0 and max_wait: 0 never wait. */
START_TEST(no_queue_means_no_waiting)
{
    struct cr_cfg_limits lim[] = {OPEN, L(1, 1, 0, 0, 5000, 1), L(1, 1, 0, 100, 0, 1)};
    struct env e;
    struct cr_admit_item it[4];
    struct cr_admit_shed why;

    env_init(&e, lim, 3, 1);
    cr_admit_set_capacity(e.a, 100);
    for (uint32_t t = 1; t <= 2; t++) {
        ck_assert_int_eq(arrive(&e, &it[2 * t - 2], t, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
        ck_assert_int_eq(arrive(&e, &it[2 * t - 1], t, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
        ck_assert_int_eq(why.status, 429);
        ck_assert_str_eq(why.reason, "tenant rate limit");
        ck_assert_uint_ge(why.retry_after_s, 1);
        ck_assert_uint_le(why.retry_after_s, 2);
    }
    ck_assert_uint_eq(cr_admit_queued(e.a), 0);
    env_free(&e);
}
END_TEST

/* Retry-After carries 0..50% jitter: a refused herd spreads out. */
START_TEST(retry_after_is_jittered)
{
    struct cr_cfg_limits lim[] = {OPEN, L(1, 1, 0, 10, 3600 * 1000, 1)};
    struct env e;
    struct cr_admit_item it[11], x;
    struct cr_admit_shed why;
    unsigned seen[32] = {0}, distinct = 0;
    double sum = 0;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 100);
    for (int i = 0; i <= 10; i++)
        ck_assert_int_ne(arrive(&e, &it[i], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_SHED);
    for (int i = 0; i < 400; i++) {
        ck_assert_int_eq(arrive(&e, &x, 1, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
        ck_assert_uint_ge(why.retry_after_s, 11);
        ck_assert_uint_le(why.retry_after_s, 17);
        sum += why.retry_after_s;
        if (seen[why.retry_after_s]++ == 0)
            distinct++;
    }
    ck_assert_uint_ge(distinct, 5);
    ck_assert_double_ge(sum / 400, 11 * 1.25 - 0.5);
    ck_assert_double_le(sum / 400, 11 * 1.25 + 0.5);
    env_free(&e);
}
END_TEST

/* ------------------------------------------------------------ deadlines */

START_TEST(deadlines_expire_in_order)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0, 1, 0, 100, 3000, 1), L(0, 1, 0, 100, 1000, 1),
                                  L(0, 1, 0, 100, 2000, 1)};
    struct env e;
    struct cr_admit_item a1, a2, b1, b2, c1, c2;
    struct cr_admit_item *want[] = {&b1, &b2, &c1, &c2, &a1, &a2};
    struct cr_admit_shed why;
    struct cr_admit_item *got;

    env_init(&e, lim, 4, 1);
    /* capacity 0: everything waits */
    ck_assert_int_eq(arrive(&e, &a1, 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &b1, 2, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &c1, 3, CR_PRIO_HIGH, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &a2, 1, CR_PRIO_NORMAL, 500 * MS, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &b2, 2, CR_PRIO_HIGH, 500 * MS, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &c2, 3, CR_PRIO_NORMAL, 500 * MS, NULL), CR_ADMIT_QUEUED);
    /* a request may wait max_wait exactly: it expires once past it */
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 1000 * MS + 1);
    ck_assert_ptr_null(cr_admit_expire(e.a, 1000 * MS, &why));

    /* just past 2 s: b1 (1 s), b2 (1.5 s), c1 (2 s); not c2 (2.5 s) */
    for (int i = 0; i < 3; i++) {
        got = cr_admit_expire(e.a, 2000 * MS + 1, &why);
        ck_assert_ptr_eq(got, want[i]);
        ck_assert_int_eq(why.status, 503);
        ck_assert_str_eq(why.reason, "queue deadline exceeded");
        ck_assert_uint_ge(why.retry_after_s, 1);
    }
    ck_assert_double_eq_tol(cr_admit_wait_ms(&b1, 2000 * MS), 2000, 1e-9);
    ck_assert_ptr_null(cr_admit_expire(e.a, 2000 * MS + 1, &why));
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 2500 * MS + 1);
    for (int i = 3; i < 6; i++)
        ck_assert_ptr_eq(cr_admit_expire(e.a, 10 * SEC, NULL), want[i]);
    ck_assert_ptr_null(cr_admit_expire(e.a, 10 * SEC, NULL));
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), UINT64_MAX);
    ck_assert_uint_eq(stats(&e, 2).shed[CR_ADMIT_SHED_EXPIRED], 2);
    ck_assert_uint_eq(stats(&e, 1).queue_len, 0);
    ck_assert_uint_eq(cr_admit_queued(e.a), 0);
    /* expired items are idle and can arrive again */
    cr_admit_set_capacity(e.a, 1);
    ck_assert_int_eq(arrive(&e, &a1, 1, CR_PRIO_NORMAL, 11 * SEC, NULL), CR_ADMIT_GO);
    env_free(&e);
}
END_TEST

/* An item let through, whose upstream stream then failed, arrives again
 * (cr_admit_arrive_again) while nothing can go: it keeps its first
 * deadline (arrival 0 + max_wait 1 s), queues before the item that came
 * after it, and expires at that deadline, not max_wait after the retry;
 * arriving again with its max_wait spent, it is shed at once; and with
 * room it goes at once, whatever is left. */
START_TEST(arriving_again_keeps_the_first_deadline)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0, 1, 0, 100, 1000, 1)};
    struct env e;
    struct cr_admit_item x, y;
    struct cr_admit_shed why;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 1);
    ck_assert_int_eq(arrive(&e, &x, 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &y, 1, CR_PRIO_NORMAL, 100 * MS, NULL), CR_ADMIT_QUEUED);
    /* x's connection fails at 600 ms, and with it all capacity */
    cr_admit_set_capacity(e.a, 0);
    cr_admit_done(e.a, &x, 600 * MS);
    ck_assert_int_eq(cr_admit_arrive_again(e.a, &x, T(&e, 1), CR_PRIO_NORMAL, 600 * MS, &why),
                     CR_ADMIT_QUEUED);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 1000 * MS + 1);
    ck_assert_ptr_null(cr_admit_expire(e.a, 1000 * MS, &why));
    ck_assert_ptr_eq(cr_admit_expire(e.a, 1000 * MS + 1, &why), &x);
    ck_assert_str_eq(why.reason, "queue deadline exceeded");
    ck_assert_ptr_null(cr_admit_expire(e.a, 1100 * MS, &why));
    ck_assert_ptr_eq(cr_admit_expire(e.a, 1100 * MS + 1, &why), &y);

    /* back at 1.2 s: spent, it is shed without waiting */
    ck_assert_int_eq(cr_admit_arrive_again(e.a, &x, T(&e, 1), CR_PRIO_NORMAL, 1200 * MS, &why),
                     CR_ADMIT_SHED);
    ck_assert_str_eq(why.reason, "queue deadline exceeded");
    ck_assert_uint_eq(cr_admit_queued(e.a), 0);
    /* with room, it goes */
    cr_admit_set_capacity(e.a, 1);
    ck_assert_int_eq(cr_admit_arrive_again(e.a, &x, T(&e, 1), CR_PRIO_NORMAL, 1300 * MS, &why),
                     CR_ADMIT_GO);
    cr_admit_done(e.a, &x, 1400 * MS);

    /* retried before a later arrival, it goes first */
    ck_assert_int_eq(arrive(&e, &x, 1, CR_PRIO_NORMAL, 2000 * MS, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &y, 1, CR_PRIO_NORMAL, 2100 * MS, NULL), CR_ADMIT_QUEUED);
    cr_admit_set_capacity(e.a, 0);
    cr_admit_done(e.a, &x, 2200 * MS);
    ck_assert_int_eq(cr_admit_arrive_again(e.a, &x, T(&e, 1), CR_PRIO_NORMAL, 2200 * MS, &why),
                     CR_ADMIT_QUEUED);
    cr_admit_set_capacity(e.a, 1);
    ck_assert_ptr_eq(cr_admit_next(e.a, 2300 * MS), &x);
    cr_admit_done(e.a, &x, 2400 * MS);
    ck_assert_ptr_eq(cr_admit_next(e.a, 2400 * MS), &y);
    cr_admit_done(e.a, &y, 2500 * MS);
    env_free(&e);
}
END_TEST

/* A tenant held back by its own rate expires with 429. */
START_TEST(expiry_status_follows_the_cause)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0.1, 1, 0, 100, 1000, 1)};
    struct env e;
    struct cr_admit_item it[2];
    struct cr_admit_shed why;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 10);
    ck_assert_int_eq(arrive(&e, &it[0], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    /* the GCRA bound (10 s) already exceeds max_wait (1 s): shed early */
    ck_assert_int_eq(arrive(&e, &it[1], 1, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
    ck_assert_int_eq(why.status, 429);
    ck_assert_str_eq(why.reason, "deadline cannot be met");
    env_free(&e);

    lim[1] = L(1, 1, 0, 100, 1500, 1);
    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 10);
    ck_assert_int_eq(arrive(&e, &it[0], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &it[1], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    /* another worker takes the tokens: it cannot go and expires */
    e.shm->tat[1] += 10ULL * SEC * 1000;
    ck_assert_ptr_null(cr_admit_next(e.a, 1 * SEC));
    ck_assert_ptr_null(cr_admit_expire(e.a, 1500 * MS, &why));
    ck_assert_ptr_eq(cr_admit_expire(e.a, 1500 * MS + 1, &why), &it[1]);
    ck_assert_int_eq(why.status, 429);
    env_free(&e);
}
END_TEST

/* With capacity 1 and a request finishing every 100 ms, the queue drains
 * at 10/s: with max_wait 1 s, the 11th in line cannot make it and is shed
 * at arrival; every one that was queued does make it. */
START_TEST(shed_early_from_measured_drain_rate)
{
    struct cr_cfg_limits lim[] = {L(0, 1, 0, 1000, 1000, 1)};
    struct env e;
    struct cr_admit_item pool[64], *inflight;
    struct cr_admit_shed why;
    uint64_t now = 0;
    int k = 0, queued;

    env_init(&e, lim, 1, 1);
    cr_admit_set_capacity(e.a, 1);
    ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    inflight = &pool[0];
    ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
    /* steady state: one done and one dispatch every 100 ms, one waiting */
    for (int i = 0; i < 20; i++) {
        now += 100 * MS;
        cr_admit_done(e.a, inflight, now);
        inflight = cr_admit_next(e.a, now);
        ck_assert_ptr_nonnull(inflight);
        ck_assert_int_eq(arrive(&e, &pool[k++ % 64], 0, CR_PRIO_NORMAL, now, NULL),
                         CR_ADMIT_QUEUED);
    }
    /* a herd: one is already waiting; 9 more fit in 1 s, the next does not */
    for (queued = 1;; queued++) {
        enum cr_admit_verdict v = arrive(&e, &pool[k++ % 64], 0, CR_PRIO_NORMAL, now, &why);
        if (v == CR_ADMIT_SHED)
            break;
        ck_assert_int_eq(v, CR_ADMIT_QUEUED);
    }
    ck_assert_int_eq(queued, 10);
    ck_assert_int_eq(why.status, 503);
    ck_assert_int_eq(why.kind, CR_ADMIT_SHED_DEADLINE);
    ck_assert_str_eq(why.reason, "deadline cannot be met");
    ck_assert_uint_ge(why.retry_after_s, 1);
    ck_assert_uint_eq(stats(&e, 0).shed[CR_ADMIT_SHED_DEADLINE], 1);
    /* and the prediction was right: all ten are served in time */
    for (int i = 0; i < 10; i++) {
        now += 100 * MS;
        cr_admit_done(e.a, inflight, now);
        inflight = cr_admit_next(e.a, now);
        ck_assert_ptr_nonnull(inflight);
        ck_assert_double_le(cr_admit_wait_ms(inflight, now), 1000.0);
        ck_assert_ptr_null(cr_admit_expire(e.a, now, NULL));
    }
    ck_assert_uint_eq(cr_admit_queued(e.a), 0);
    ck_assert_uint_eq(stats(&e, 0).shed[CR_ADMIT_SHED_EXPIRED], 0);
    env_free(&e);
}
END_TEST

/* When dispatches stall, the estimate rises with the stall: dispatches every
 * 10 ms would let ~99 wait for 1 s, but after a 5 s hang (counted as at most
 * max_wait = 1 s) the interval is projected at 10 + (1000 - 10) / 8 =
 * 133.75 ms, so the queue is held to 7. */
START_TEST(shed_early_when_drain_stalls)
{
    struct cr_cfg_limits lim[] = {L(0, 1, 0, 1000, 1000, 1)};
    struct env e;
    static struct cr_admit_item pool[256];
    struct cr_admit_item *inflight;
    struct cr_admit_shed why;
    uint64_t now = 0;
    int k;

    env_init(&e, lim, 1, 1);
    cr_admit_set_capacity(e.a, 1);
    ck_assert_int_eq(arrive(&e, &pool[0], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    inflight = &pool[0];
    for (k = 1; k < 6; k++) {
        ck_assert_int_eq(arrive(&e, &pool[k], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
        now += 10 * MS;
        cr_admit_done(e.a, inflight, now);
        inflight = cr_admit_next(e.a, now);
        ck_assert_ptr_nonnull(inflight);
    }
    ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
    now += 5 * SEC; /* the upstream hangs */
    while (k < 255 && arrive(&e, &pool[k], 0, CR_PRIO_NORMAL, now, &why) == CR_ADMIT_QUEUED)
        k++;
    ck_assert_str_eq(why.reason, "deadline cannot be met");
    ck_assert_uint_eq(cr_admit_queued(e.a), 7);
    /* the upstream recovers: the estimate follows (1/8 per dispatch) and
     * a herd may queue ~99 deep again */
    for (int i = 0; i < 60; i++) {
        now += 10 * MS;
        cr_admit_done(e.a, inflight, now);
        inflight = cr_admit_next(e.a, now);
        ck_assert_ptr_nonnull(inflight);
        if (cr_admit_queued(e.a) == 0)
            ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
    }
    while (k < 255 && arrive(&e, &pool[k], 0, CR_PRIO_NORMAL, now, &why) == CR_ADMIT_QUEUED)
        k++;
    ck_assert_str_eq(why.reason, "deadline cannot be met");
    ck_assert_uint_ge(cr_admit_queued(e.a), 95);
    ck_assert_uint_le(cr_admit_queued(e.a), 100);
    env_free(&e);
}
END_TEST

/* A herd drains fast (a dispatch every 30 us, 200 in flight) and 800 wait;
 * then this worker does not run for 100 ms (descheduled on a busy host).
 * Neither the pause, seen by the arrivals that wake up with it, nor the one
 * long sample it leaves may shed the herd: with max_wait 5 s the queue
 * still drains in well under a second. A real hang is the test above. */
START_TEST(worker_pause_does_not_shed)
{
    struct cr_cfg_limits lim[] = {L(0, 1, 0, 100000, 5000, 1)};
    struct env e;
    static struct cr_admit_item pool[1600];
    struct cr_admit_item *inflight[200];
    uint64_t now = 0;
    int k = 0;

    env_init(&e, lim, 1, 1);
    cr_admit_set_capacity(e.a, 200);
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(arrive(&e, &pool[k], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
        inflight[i] = &pool[k++];
    }
    for (int i = 0; i < 800; i++)
        ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
    /* steady state: each completion lets the next one go 30 us later */
    for (int i = 0; i < 400; i++) {
        now += 30;
        cr_admit_done(e.a, inflight[i % 200], now);
        inflight[i % 200] = cr_admit_next(e.a, now);
        ck_assert_ptr_nonnull(inflight[i % 200]);
        ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
    }
    now += 100 * MS; /* the pause */
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
    for (int i = 0; i < 50; i++) { /* the completions that piled up meanwhile */
        cr_admit_done(e.a, inflight[i], now);
        inflight[i] = cr_admit_next(e.a, now);
        ck_assert_ptr_nonnull(inflight[i]);
        ck_assert_int_eq(arrive(&e, &pool[k++], 0, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_QUEUED);
    }
    ck_assert_uint_eq(stats(&e, 0).shed[CR_ADMIT_SHED_DEADLINE], 0);
    env_free(&e);
}
END_TEST

/* The GCRA lower bound: at 10/s with max_wait 1 s, ten fit behind the
 * first, the eleventh is shed at once; the ten are all dispatched in time,
 * each exactly when next_wakeup said. */
START_TEST(shed_early_from_rate)
{
    struct cr_cfg_limits lim[] = {OPEN, L(10, 1, 0, 100, 1000, 1)};
    struct env e;
    struct cr_admit_item it[12], *got;
    struct cr_admit_shed why;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 100);
    ck_assert_int_eq(arrive(&e, &it[0], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    for (int i = 1; i <= 10; i++)
        ck_assert_int_eq(arrive(&e, &it[i], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &it[11], 1, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
    ck_assert_int_eq(why.status, 429);
    ck_assert_str_eq(why.reason, "deadline cannot be met");
    for (int i = 1; i <= 10; i++) {
        uint64_t at = cr_admit_next_wakeup(e.a);
        ck_assert_uint_eq(at, (uint64_t)i * 100 * MS);
        ck_assert_ptr_null(cr_admit_next(e.a, at - 1));
        ck_assert_ptr_null(cr_admit_expire(e.a, at, NULL)); /* waited <= max_wait */
        got = cr_admit_next(e.a, at);
        ck_assert_ptr_eq(got, &it[i]);
        ck_assert_ptr_null(cr_admit_next(e.a, at));
        ck_assert_double_eq_tol(cr_admit_wait_ms(got, at + 5 * SEC), i * 100.0, 1e-9);
    }
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), UINT64_MAX);
    env_free(&e);
}
END_TEST

/* ------------------------------------------------------------ fairness */

START_TEST(drr_shares_follow_weights)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0, 1, 0, 10000, 3600 * 1000, 1),
                                  L(0, 1, 0, 10000, 3600 * 1000, 2),
                                  L(0, 1, 0, 10000, 3600 * 1000, 5)};
    enum { PER = 6000, N = 8000 };
    struct env e;
    struct cr_admit_item *items = calloc(3 * PER, sizeof(*items));
    uint64_t got[4] = {0}, last[4] = {0};

    env_init(&e, lim, 4, 1);
    /* capacity 0 while they pile up, interleaved */
    for (int i = 0; i < PER; i++)
        for (uint32_t t = 1; t <= 3; t++)
            ck_assert_int_eq(arrive(&e, &items[i * 3 + (t - 1)], t, CR_PRIO_NORMAL, 0, NULL),
                             CR_ADMIT_QUEUED);
    cr_admit_set_capacity(e.a, 1);
    for (int i = 0; i < N; i++) {
        struct cr_admit_item *it = cr_admit_next(e.a, (uint64_t)i);
        uint64_t seq;
        ck_assert_ptr_nonnull(it);
        ck_assert_ptr_null(cr_admit_next(e.a, (uint64_t)i)); /* capacity 1 */
        seq = (uint64_t)(it - items) + 1;
        ck_assert_uint_gt(seq, last[it->tenant]); /* FIFO within a tenant */
        last[it->tenant] = seq;
        got[it->tenant]++;
        cr_admit_done(e.a, it, (uint64_t)i);
    }
    ck_assert_double_le(fabs((double)got[1] / N - 1.0 / 8), 0.01);
    ck_assert_double_le(fabs((double)got[2] / N - 2.0 / 8), 0.01);
    ck_assert_double_le(fabs((double)got[3] / N - 5.0 / 8), 0.01);
    env_free(&e);
    free(items);
}
END_TEST

/* DRR turns: a tenant that empties its queue leaves the round and does not
 * bank credit; coming back, it waits for the current turn to end. */
START_TEST(drr_turns_and_no_banked_credit)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0, 1, 0, 10000, 3600 * 1000, 1),
                                  L(0, 1, 0, 10000, 3600 * 1000, 9)};
    struct env e;
    struct cr_admit_item a[40], b[5];
    char seq[64] = "";
    size_t n = 0;
    struct cr_admit_item *it;

    env_init(&e, lim, 3, 1);
    for (int i = 0; i < 40; i++)
        arrive(&e, &a[i], 1, CR_PRIO_NORMAL, 0, NULL);
    for (int i = 0; i < 3; i++)
        arrive(&e, &b[i], 2, CR_PRIO_NORMAL, 0, NULL);
    cr_admit_set_capacity(e.a, 1);
    for (int i = 0; i < 14; i++) {
        it = cr_admit_next(e.a, 0);
        ck_assert_ptr_nonnull(it);
        seq[n++] = it->tenant == 1 ? 'a' : 'b';
        cr_admit_done(e.a, it, 0);
    }
    /* b had 3 of its 9 and left; it comes back with 2 */
    arrive(&e, &b[3], 2, CR_PRIO_NORMAL, 0, NULL);
    arrive(&e, &b[4], 2, CR_PRIO_NORMAL, 0, NULL);
    for (int i = 0; i < 6; i++) {
        it = cr_admit_next(e.a, 0);
        ck_assert_ptr_nonnull(it);
        seq[n++] = it->tenant == 1 ? 'a' : 'b';
        cr_admit_done(e.a, it, 0);
    }
    ck_assert_str_eq(seq, "abbbaaaaaaaaaa"
                          "abbaaa");
    env_free(&e);
}
END_TEST

START_TEST(fifo_within_a_tenant)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0, 1, 1, 100, 3600 * 1000, 1)};
    struct env e;
    struct cr_admit_item it[6], *cur;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 100);
    ck_assert_int_eq(arrive(&e, &it[0], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    for (int i = 1; i < 6; i++)
        ck_assert_int_eq(arrive(&e, &it[i], 1, CR_PRIO_NORMAL, (uint64_t)i, NULL), CR_ADMIT_QUEUED);
    cur = &it[0];
    for (int i = 1; i < 6; i++) {
        ck_assert_ptr_null(cr_admit_next(e.a, 10));
        cr_admit_done(e.a, cur, 10);
        cur = cr_admit_next(e.a, 10);
        ck_assert_ptr_eq(cur, &it[i]);
        ck_assert_ptr_eq(cur->owner, &it[i]);
    }
    env_free(&e);
}
END_TEST

/* ------------------------------------------------------------ limits */

START_TEST(concurrency_is_split_across_workers)
{
    /* 10 over 4 workers: 3 here; 2 over 4: at least 1; queue 10 over 4: 3 */
    struct cr_cfg_limits lim[] = {OPEN, L(0, 1, 10, 10, 3600 * 1000, 1),
                                  L(0, 1, 2, 100, 3600 * 1000, 1)};
    struct env e;
    struct cr_admit_item it[8], *got;
    struct cr_admit_shed why;

    env_init(&e, lim, 3, 4);
    cr_admit_set_capacity(e.a, 100);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(arrive(&e, &it[i], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    for (int i = 3; i < 6; i++)
        ck_assert_int_eq(arrive(&e, &it[i], 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &it[6], 1, CR_PRIO_NORMAL, 0, &why), CR_ADMIT_SHED);
    ck_assert_str_eq(why.reason, "tenant queue full");
    ck_assert_uint_eq(stats(&e, 1).inflight, 3);
    ck_assert_ptr_null(cr_admit_next(e.a, 0));
    cr_admit_done(e.a, &it[1], 1);
    got = cr_admit_next(e.a, 1);
    ck_assert_ptr_eq(got, &it[3]);
    ck_assert_ptr_null(cr_admit_next(e.a, 1));
    ck_assert_uint_eq(stats(&e, 1).inflight, 3);
    /* high priority is bounded by concurrency too */
    ck_assert_int_eq(arrive(&e, &it[7], 1, CR_PRIO_HIGH, 2, NULL), CR_ADMIT_QUEUED);
    cr_admit_done(e.a, &it[0], 3);
    ck_assert_ptr_eq(cr_admit_next(e.a, 3), &it[7]);
    ck_assert_ptr_null(cr_admit_next(e.a, 3));

    ck_assert_int_eq(arrive(&e, &it[0], 2, CR_PRIO_NORMAL, 4, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &it[1], 2, CR_PRIO_NORMAL, 4, NULL), CR_ADMIT_QUEUED);
    ck_assert_uint_eq(cr_admit_inflight(e.a), 4);
    env_free(&e);
}
END_TEST

/* Capacity bounds the worker whatever the tenants; lowering it cancels
 * nothing but stops dispatches until in flight drops below it. */
START_TEST(capacity_bounds_dispatch)
{
    struct cr_cfg_limits lim[] = {OPEN, OPEN, OPEN};
    struct env e;
    struct cr_admit_item it[10];

    env_init(&e, lim, 3, 1);
    cr_admit_set_capacity(e.a, 4);
    for (int i = 0; i < 10; i++)
        arrive(&e, &it[i], 1 + (uint32_t)i % 2, CR_PRIO_NORMAL, 0, NULL);
    ck_assert_uint_eq(cr_admit_inflight(e.a), 4);
    ck_assert_uint_eq(cr_admit_queued(e.a), 6);
    ck_assert_ptr_null(cr_admit_next(e.a, 0));
    cr_admit_set_capacity(e.a, 2);
    cr_admit_done(e.a, &it[0], 0);
    ck_assert_ptr_null(cr_admit_next(e.a, 0)); /* 3 in flight > 2 */
    cr_admit_done(e.a, &it[1], 0);
    cr_admit_done(e.a, &it[2], 0);
    ck_assert_ptr_nonnull(cr_admit_next(e.a, 0));
    ck_assert_ptr_null(cr_admit_next(e.a, 0));
    ck_assert_uint_eq(cr_admit_inflight(e.a), 2);
    env_free(&e);
}
END_TEST

/* A flood of made-up tenant ids lands on the default tenant: one queue, one
 * share of limits, no new state; real tenants are untouched. */
START_TEST(unknown_tenant_flood_is_one_tenant)
{
    struct cr_cfg_limits lim[] = {L(0, 1, 0, 50, 3600 * 1000, 1), L(0, 1, 0, 50, 3600 * 1000, 1)};
    enum { N = 10000 };
    struct env e;
    struct cr_admit_item *items = calloc(N + 1, sizeof(*items));
    struct cr_admit_stats s;
    char id[32];
    int queued = 0, shed = 0;

    env_init(&e, lim, 2, 1);
    for (int i = 0; i < N; i++) {
        struct cr_tenant_key k = {.header_value = id};
        const struct cr_tenant *tn;
        struct cr_admit_shed why;

        snprintf(id, sizeof(id), "made-up-%d", i);
        tn = cr_tenants_identify(e.t, &k);
        ck_assert_uint_eq(tn->index, 0);
        cr_admit_item_init(&items[i], NULL);
        switch (cr_admit_arrive(e.a, &items[i], tn, CR_PRIO_NORMAL, 0, &why)) {
        case CR_ADMIT_QUEUED:
            queued++;
            break;
        case CR_ADMIT_SHED:
            ck_assert_int_eq(why.status, 503);
            shed++;
            break;
        default:
            ck_abort_msg("capacity is 0: nothing may go");
        }
    }
    ck_assert_int_eq(queued, 50);
    ck_assert_int_eq(shed, N - 50);
    ck_assert_uint_eq(cr_tenants_count(e.t), 2);
    s = stats(&e, 0);
    ck_assert_uint_eq(s.queue_len, 50);
    ck_assert_uint_eq(s.shed[CR_ADMIT_SHED_SATURATED], N - 50);
    s = stats(&e, 1);
    ck_assert_uint_eq(s.queue_len + s.queued + s.shed[CR_ADMIT_SHED_SATURATED], 0);
    /* the real tenant still gets its own queue, and its fair turn */
    {
        struct cr_tenant_key k = {.header_value = "t1"};
        struct cr_admit_item *got;
        ck_assert_int_eq(cr_admit_arrive(e.a, &items[N], cr_tenants_identify(e.t, &k),
                                         CR_PRIO_NORMAL, 0, &(struct cr_admit_shed){0}),
                         CR_ADMIT_QUEUED);
        cr_admit_set_capacity(e.a, 1);
        got = cr_admit_next(e.a, 0);
        cr_admit_done(e.a, got, 0);
        got = cr_admit_next(e.a, 0);
        ck_assert_ptr_eq(got, &items[N]);
    }
    env_free(&e);
    free(items);
}
END_TEST

/* ------------------------------------------------------------ priority */

START_TEST(high_before_normal)
{
    struct cr_cfg_limits lim[] = {OPEN, OPEN, OPEN};
    struct env e;
    struct cr_admit_item n1, n2, n3, h1, h2;
    struct cr_admit_item *want[] = {&h1, &h2, &n1, &n2, &n3};

    env_init(&e, lim, 3, 1);
    arrive(&e, &n1, 1, CR_PRIO_NORMAL, 0, NULL);
    arrive(&e, &n2, 1, CR_PRIO_NORMAL, 1, NULL);
    arrive(&e, &h1, 2, CR_PRIO_HIGH, 2, NULL);
    arrive(&e, &n3, 1, CR_PRIO_NORMAL, 3, NULL);
    arrive(&e, &h2, 1, CR_PRIO_HIGH, 4, NULL);
    cr_admit_set_capacity(e.a, 1);
    for (size_t i = 0; i < CR_ARRAY_LEN(want); i++) {
        struct cr_admit_item *it = cr_admit_next(e.a, 10);
        ck_assert_ptr_eq(it, want[i]);
        cr_admit_done(e.a, it, 10);
    }
    ck_assert_ptr_null(cr_admit_next(e.a, 10));
    env_free(&e);
}
END_TEST

/* High priority is not limited by the tenant's rate and does not wait
 * behind the tenant's normal queue. */
START_TEST(high_ignores_rate)
{
    struct cr_cfg_limits lim[] = {OPEN, L(1, 1, 0, 100, 60000, 1)};
    struct env e;
    struct cr_admit_item n1, n2, h[5];

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 10);
    ck_assert_int_eq(arrive(&e, &n1, 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &n2, 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(arrive(&e, &h[i], 1, CR_PRIO_HIGH, 0, NULL), CR_ADMIT_GO);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 1 * SEC);
    ck_assert_ptr_eq(cr_admit_next(e.a, 1 * SEC), &n2);
    env_free(&e);
}
END_TEST

START_TEST(low_is_shed_under_saturation)
{
    struct cr_cfg_limits lim[] = {OPEN};
    struct env e;
    struct cr_admit_item n[3], l1, l2;
    struct cr_admit_shed why;

    env_init(&e, lim, 1, 1);
    cr_admit_set_capacity(e.a, 2);
    ck_assert_int_eq(arrive(&e, &l1, 0, CR_PRIO_LOW, 0, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &n[0], 0, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    /* saturated: low is refused at once though the queue has room */
    ck_assert_int_eq(arrive(&e, &l2, 0, CR_PRIO_LOW, 0, &why), CR_ADMIT_SHED);
    ck_assert_int_eq(why.status, 503);
    ck_assert_str_eq(why.reason, "upstream saturated");
    ck_assert_uint_ge(why.retry_after_s, 1);
    /* normal still queues */
    ck_assert_int_eq(arrive(&e, &n[1], 0, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    cr_admit_done(e.a, &l1, 1);
    ck_assert_ptr_eq(cr_admit_next(e.a, 1), &n[1]);
    cr_admit_done(e.a, &n[0], 2);
    ck_assert_int_eq(arrive(&e, &l2, 0, CR_PRIO_LOW, 2, NULL), CR_ADMIT_GO);
    ck_assert_uint_eq(stats(&e, 0).shed[CR_ADMIT_SHED_SATURATED], 1);
    env_free(&e);
}
END_TEST

/* Low waits (for its tenant's rate) behind normal that came later. */
START_TEST(low_after_normal)
{
    struct cr_cfg_limits lim[] = {OPEN, L(1, 1, 0, 100, 60000, 1)};
    struct env e;
    struct cr_admit_item n1, n2, l1;

    env_init(&e, lim, 2, 1);
    cr_admit_set_capacity(e.a, 10);
    ck_assert_int_eq(arrive(&e, &n1, 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &l1, 1, CR_PRIO_LOW, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_int_eq(arrive(&e, &n2, 1, CR_PRIO_NORMAL, 1, NULL), CR_ADMIT_QUEUED);
    ck_assert_ptr_null(cr_admit_next(e.a, SEC - 1));
    ck_assert_ptr_eq(cr_admit_next(e.a, SEC), &n2);
    ck_assert_ptr_null(cr_admit_next(e.a, SEC));
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 2 * SEC);
    ck_assert_ptr_eq(cr_admit_next(e.a, 2 * SEC), &l1);
    env_free(&e);
}
END_TEST

/* ------------------------------------------------------------ wakeups */

START_TEST(next_wakeup_tracks_rate_and_deadlines)
{
    struct cr_cfg_limits lim[] = {L(0, 1, 0, 100, 5000, 1), L(10, 1, 0, 100, 5000, 1)};
    struct env e;
    struct cr_admit *other;
    struct cr_admit_item a, b, c, d;

    env_init(&e, lim, 2, 2);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), UINT64_MAX);
    cr_admit_set_capacity(e.a, 10);
    ck_assert_int_eq(arrive(&e, &a, 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_GO);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), UINT64_MAX);
    ck_assert_int_eq(arrive(&e, &b, 1, CR_PRIO_NORMAL, 0, NULL), CR_ADMIT_QUEUED);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 100 * MS); /* its token, before its deadline */
    ck_assert_ptr_null(cr_admit_next(e.a, 100 * MS - 1));
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 100 * MS);
    ck_assert_ptr_eq(cr_admit_next(e.a, 100 * MS), &b);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), UINT64_MAX);

    /* another worker takes the token first: the wakeup moves on */
    ck_assert_int_eq(cr_admit_new(e.t, e.shm, 2, 9, &other), 0);
    cr_admit_set_capacity(other, 10);
    ck_assert_int_eq(arrive(&e, &c, 1, CR_PRIO_NORMAL, 100 * MS, NULL), CR_ADMIT_QUEUED);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 200 * MS);
    cr_admit_item_init(&d, NULL);
    ck_assert_int_eq(
        cr_admit_arrive(other, &d, T(&e, 1), CR_PRIO_NORMAL, 200 * MS, &(struct cr_admit_shed){0}),
        CR_ADMIT_GO);
    ck_assert_ptr_null(cr_admit_next(e.a, 200 * MS));
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 300 * MS);
    ck_assert_ptr_eq(cr_admit_next(e.a, 300 * MS), &c);
    cr_admit_free(other);

    /* deadlines: capacity 0, the default tenant waits */
    cr_admit_set_capacity(e.a, 0);
    ck_assert_int_eq(arrive(&e, &d, 0, CR_PRIO_NORMAL, 1 * SEC, NULL), CR_ADMIT_QUEUED);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 6 * SEC + 1);
    ck_assert_ptr_null(cr_admit_expire(e.a, 6 * SEC, NULL));
    ck_assert_ptr_eq(cr_admit_expire(e.a, 6 * SEC + 1, NULL), &d);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), UINT64_MAX);
    env_free(&e);
}
END_TEST

START_TEST(cancel_leaves_the_queue)
{
    struct cr_cfg_limits lim[] = {L(0, 1, 0, 100, 5000, 1)};
    struct env e;
    struct cr_admit_item it[4];

    env_init(&e, lim, 1, 1);
    for (int i = 0; i < 4; i++)
        arrive(&e, &it[i], 0, CR_PRIO_NORMAL, (uint64_t)i * SEC, NULL);
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 5 * SEC + 1);
    cr_admit_cancel(e.a, &it[0]); /* the head: the deadline moves */
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), 6 * SEC + 1);
    cr_admit_cancel(e.a, &it[2]); /* the middle */
    cr_admit_cancel(e.a, &it[2]); /* twice: no-op */
    ck_assert_uint_eq(stats(&e, 0).cancelled, 2);
    ck_assert_uint_eq(stats(&e, 0).queue_len, 2);
    cr_admit_set_capacity(e.a, 10);
    ck_assert_ptr_eq(cr_admit_next(e.a, 4 * SEC), &it[1]);
    ck_assert_ptr_eq(cr_admit_next(e.a, 4 * SEC), &it[3]);
    ck_assert_ptr_null(cr_admit_next(e.a, 4 * SEC));
    ck_assert_uint_eq(cr_admit_next_wakeup(e.a), UINT64_MAX);
    /* cancel of an in-flight item is done */
    cr_admit_cancel(e.a, &it[1]);
    ck_assert_uint_eq(cr_admit_inflight(e.a), 1);
    cr_admit_done(e.a, &it[1], 5 * SEC); /* already done: no-op */
    ck_assert_uint_eq(cr_admit_inflight(e.a), 1);
    ck_assert_double_eq_tol(cr_admit_wait_ms(&it[3], 9 * SEC), 1000.0, 1e-9);
    env_free(&e);
}
END_TEST

/* ------------------------------------------------------------ randomized */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The test's own record of every item: its state, and per state a vector
 * of items (swap-remove) to pick a random one from. */
enum { M_IDLE, M_QUEUED, M_INFLIGHT };

struct model {
    struct cr_admit_item *items;
    int *state;
    size_t *pos;
    size_t *vec[3];
    size_t n[3];
};

static void model_init(struct model *m, size_t n)
{
    m->items = calloc(n, sizeof(*m->items));
    m->state = calloc(n, sizeof(*m->state));
    m->pos = calloc(n, sizeof(*m->pos));
    for (int s = 0; s < 3; s++) {
        m->vec[s] = calloc(n, sizeof(size_t));
        m->n[s] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        m->pos[i] = i;
        m->vec[M_IDLE][m->n[M_IDLE]++] = i;
    }
}

static void model_free(struct model *m)
{
    for (int s = 0; s < 3; s++)
        free(m->vec[s]);
    free(m->items);
    free(m->state);
    free(m->pos);
}

static void model_set(struct model *m, size_t i, int to)
{
    int from = m->state[i];
    size_t last = m->vec[from][--m->n[from]];

    m->vec[from][m->pos[i]] = last;
    m->pos[last] = m->pos[i];
    m->pos[i] = m->n[to];
    m->vec[to][m->n[to]++] = i;
    m->state[i] = to;
}

/* A random item in state s, or SIZE_MAX. */
static size_t model_pick(const struct model *m, int s)
{
    return m->n[s] == 0 ? SIZE_MAX : m->vec[s][rnd() % m->n[s]];
}

/* 100 000 random operations (arrivals at every priority from six tenants
 * with every kind of limit, dones, cancels, capacity changes, time, the
 * timer) against a model of every item's state. Throughout: the engine's
 * counts match the model, nothing is ever dispatched beyond capacity or a
 * tenant's concurrency share, only queued items come out of next/expire,
 * only past their deadline out of expire; and after draining next() with
 * capacity to spare, every tenant still queued is held back by its own
 * limits (nothing is stuck). */
START_TEST(randomized_capacity_never_exceeded)
{
    enum { NI = 3000, OPS = 100000, NT = 6 };
    struct cr_cfg_limits lim[NT] = {L(0, 100, 0, 200, 300, 1),   L(200, 20, 0, 100, 200, 3),
                                    L(0, 1, 4, 50, 500, 2),      L(50, 5, 3, 30, 1000, 1),
                                    L(1000, 50, 0, 400, 50, 10), L(20, 2, 0, 0, 100, 1)};
    static const uint32_t conc_share[NT] = {UINT32_MAX, UINT32_MAX, 2, 2, UINT32_MAX, UINT32_MAX};
    struct env e;
    struct model m;
    uint32_t capacity = 8, queued_by[NT][3];
    uint64_t now = 1, dispatched = 0, expired = 0, verdicts[3] = {0}, status[2] = {0};
    struct cr_admit_item *it;
    size_t i;

    rng_state = 0x9e3779b97f4a7c15ULL;
    memset(queued_by, 0, sizeof(queued_by));
    model_init(&m, NI);
    env_init(&e, lim, NT, 2);
    cr_admit_set_capacity(e.a, capacity);

    for (int op = 0; op < OPS; op++) {
        uint64_t r = rnd() % 100;

        if (r < 40 && (i = model_pick(&m, M_IDLE)) != SIZE_MAX) {
            uint32_t t = (uint32_t)(rnd() % NT);
            enum cr_priority p = (enum cr_priority)(rnd() % 3);
            struct cr_admit_shed why;
            enum cr_admit_verdict v = arrive(&e, &m.items[i], t, p, now, &why);

            verdicts[v]++;
            if (v == CR_ADMIT_GO) {
                model_set(&m, i, M_INFLIGHT);
                dispatched++;
                ck_assert_uint_le(m.n[M_INFLIGHT], capacity);
            } else if (v == CR_ADMIT_QUEUED) {
                model_set(&m, i, M_QUEUED);
                queued_by[t][p]++;
            } else {
                ck_assert(why.status == 429 || why.status == 503);
                status[why.status == 503]++;
                ck_assert_uint_ge(why.retry_after_s, 1);
                ck_assert_uint_le(why.retry_after_s, CR_ADMIT_RETRY_MAX_S);
                ck_assert_ptr_nonnull(why.reason);
            }
        } else if (r < 65 && (i = model_pick(&m, M_INFLIGHT)) != SIZE_MAX) {
            cr_admit_done(e.a, &m.items[i], now);
            model_set(&m, i, M_IDLE);
        } else if (r < 70 && (i = model_pick(&m, M_QUEUED)) != SIZE_MAX) {
            cr_admit_cancel(e.a, &m.items[i]);
            model_set(&m, i, M_IDLE);
            queued_by[m.items[i].tenant][m.items[i].prio]--;
        } else if (r < 73) {
            capacity = (uint32_t)(rnd() % 24);
            cr_admit_set_capacity(e.a, capacity);
        } else if (r < 80) {
            uint64_t at = cr_admit_next_wakeup(e.a);
            if (at != UINT64_MAX && at > now && at - now < 2 * SEC)
                now = at;
        } else {
            now += rnd() % (2 * MS);
        }

        /* what the caller does after every event: expire, then dispatch */
        while ((it = cr_admit_expire(e.a, now, NULL)) != NULL) {
            i = (size_t)(it - m.items);
            ck_assert_int_eq(m.state[i], M_QUEUED);
            ck_assert_uint_lt(it->deadline_us, now);
            model_set(&m, i, M_IDLE);
            queued_by[it->tenant][it->prio]--;
            expired++;
        }
        while ((it = cr_admit_next(e.a, now)) != NULL) {
            i = (size_t)(it - m.items);
            ck_assert_int_eq(m.state[i], M_QUEUED);
            model_set(&m, i, M_INFLIGHT);
            queued_by[it->tenant][it->prio]--;
            dispatched++;
            ck_assert_uint_le(m.n[M_INFLIGHT], capacity);
        }

        ck_assert_uint_eq(cr_admit_inflight(e.a), m.n[M_INFLIGHT]);
        ck_assert_uint_eq(cr_admit_queued(e.a), m.n[M_QUEUED]);
        for (uint32_t t = 0; t < NT; t++) {
            struct cr_admit_stats s = stats(&e, t);
            uint32_t q = queued_by[t][0] + queued_by[t][1] + queued_by[t][2];

            ck_assert_uint_eq(s.queue_len, q);
            ck_assert_uint_le(s.inflight, conc_share[t]);
            if (q == 0 || m.n[M_INFLIGHT] >= capacity || s.inflight >= conc_share[t])
                continue;
            /* capacity to spare, yet queued: only its rate may hold it */
            ck_assert_uint_eq(queued_by[t][CR_PRIO_HIGH], 0);
            ck_assert_uint_gt(cr_gcra_wait_us(&e.shm->tat[t], lim[t].rate, lim[t].burst, now, 0),
                              0);
        }
    }
    /* the run went through every path */
    ck_assert_uint_gt(verdicts[CR_ADMIT_GO], 5000);
    ck_assert_uint_gt(verdicts[CR_ADMIT_QUEUED], 5000);
    ck_assert_uint_gt(verdicts[CR_ADMIT_SHED], 1000);
    ck_assert_uint_gt(status[0], 100);
    ck_assert_uint_gt(status[1], 100);
    ck_assert_uint_gt(expired, 100);
    ck_assert_uint_gt(dispatched, 20000);
    env_free(&e);
    model_free(&m);
}
END_TEST

/* ------------------------------------------------------------ main */

/* ------------------------------------------------------------ headroom */

/* HEADROOM, step by step: capacity 32, 12% -> 4 slots kept. b and c were
 * seen, so a burst of t1 stops at 28; b and c then go at once, up to the
 * whole capacity; a done of the burst's inside the headroom frees nothing
 * for it. When b and c have been idle for CR_ADMIT_ACTIVE_MS, the
 * burst gets all 32 (the wakeup says when). */
START_TEST(headroom_steps)
{
    struct cr_cfg_limits lim[] = {OPEN, OPEN, OPEN, OPEN};
    struct env e;
    struct cr_admit_item a[100], b[4], c[2];
    struct cr_admit_item *it;
    uint64_t now = 0;

    env_init(&e, lim, 4, 1);
    cr_admit_set_headroom(e.a, 12);
    cr_admit_set_capacity(e.a, 32);
    ck_assert_int_eq(arrive(&e, &b[0], 2, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &c[0], 3, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    now += 20 * MS;
    cr_admit_done(e.a, &b[0], now);
    cr_admit_done(e.a, &c[0], now);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(arrive(&e, &a[i], 1, CR_PRIO_NORMAL, now, NULL),
                         i < 28 ? CR_ADMIT_GO : CR_ADMIT_QUEUED);
    ck_assert_ptr_null(cr_admit_next(e.a, now));
    ck_assert_uint_eq(cr_admit_inflight(e.a), 28);
    /* the quiet ones go straight upstream, into the headroom */
    now += MS;
    ck_assert_int_eq(arrive(&e, &b[1], 2, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &c[1], 3, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &b[2], 2, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    ck_assert_int_eq(arrive(&e, &b[3], 2, CR_PRIO_NORMAL, now, NULL), CR_ADMIT_GO);
    ck_assert_uint_eq(cr_admit_inflight(e.a), 32);
    /* one of the burst's ends: 31 in flight, still inside the headroom */
    cr_admit_done(e.a, &a[0], now);
    ck_assert_ptr_null(cr_admit_next(e.a, now));
    ck_assert_uint_eq(cr_admit_inflight(e.a), 31);
    /* b and c end: 27 in flight, below the headroom, the burst takes one
     * more (its 28th) and no other */
    cr_admit_done(e.a, &b[1], now);
    cr_admit_done(e.a, &b[2], now);
    cr_admit_done(e.a, &b[3], now);
    cr_admit_done(e.a, &c[1], now);
    it = cr_admit_next(e.a, now);
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(it->tenant, 1);
    ck_assert_ptr_null(cr_admit_next(e.a, now));
    ck_assert_uint_eq(cr_admit_inflight(e.a), 28);
    /* b and c idle for a second: the burst is alone and takes the rest */
    ck_assert_uint_le(cr_admit_next_wakeup(e.a), now + CR_ADMIT_ACTIVE_MS * MS);
    ck_assert_ptr_null(cr_admit_next(e.a, now + CR_ADMIT_ACTIVE_MS * MS - 1));
    now += CR_ADMIT_ACTIVE_MS * MS;
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_nonnull(cr_admit_next(e.a, now));
    ck_assert_ptr_null(cr_admit_next(e.a, now));
    ck_assert_uint_eq(cr_admit_inflight(e.a), 32);
    env_free(&e);
}
END_TEST

/* A burst alone uses the whole capacity, headroom or not; and headroom 0
 * is off. */
START_TEST(headroom_lone_burst_uses_everything)
{
    struct cr_cfg_limits lim[] = {OPEN, OPEN, OPEN};
    struct env e;
    struct cr_admit_item a[40];

    for (uint32_t pct = 0; pct <= 50; pct += 12) {
        env_init(&e, lim, 3, 1);
        cr_admit_set_headroom(e.a, pct);
        cr_admit_set_capacity(e.a, 32);
        for (int i = 0; i < 40; i++)
            ck_assert_int_eq(arrive(&e, &a[i], 1, CR_PRIO_NORMAL, 0, NULL),
                             i < 32 ? CR_ADMIT_GO : CR_ADMIT_QUEUED);
        ck_assert_uint_eq(cr_admit_inflight(e.a), 32);
        env_free(&e);
    }
}
END_TEST

/* The campaign in the engine: capacity 32, 20 ms service time; t1 sends 3
 * requests every millisecond (20 x), t2 and t3 one every 20 ms each. With
 * the headroom every request of t2 and t3 goes upstream at once and t1 never
 * has more than 32 - 4 in flight while they are active; without it (0),
 * they wait for the burst's next wave. Returns the longest wait of t2/t3 in
 * ms, *burst_peak t1's most in flight. */
static double campaign(uint32_t pct, uint32_t *burst_peak)
{
    struct cr_cfg_limits lim[] = {OPEN, L(0, 100, 0, 100, 500, 1), OPEN, OPEN};
    enum { MS_RUN = 2000, NA = 3 * MS_RUN, NB = MS_RUN / 20 + 1 };
    struct env e;
    struct cr_admit_item *items = calloc(NA + 2 * NB, sizeof(*items));
    struct cr_admit_item *fly[64];
    uint64_t due[64];
    uint32_t nfly = 0, na = 0, nb = 0;
    double worst = 0.0;
    struct cr_admit_item *it;
    struct cr_admit_shed why;

    ck_assert_ptr_nonnull(items);
    env_init(&e, lim, 4, 1);
    cr_admit_set_headroom(e.a, pct);
    cr_admit_set_capacity(e.a, 32);
    *burst_peak = 0;
    for (uint64_t ms = 0; ms < MS_RUN; ms++) {
        uint64_t now = ms * MS;
        /* dones, each followed by a drain */
        for (uint32_t i = 0; i < nfly;) {
            if (due[i] > now) {
                i++;
                continue;
            }
            cr_admit_done(e.a, fly[i], now);
            fly[i] = fly[--nfly];
            due[i] = due[nfly];
            while ((it = cr_admit_next(e.a, now)) != NULL) {
                ck_assert_uint_lt(nfly, 64);
                fly[nfly] = it;
                due[nfly++] = now + 20 * MS;
            }
        }
        while ((it = cr_admit_expire(e.a, now, &why)) != NULL)
            ck_assert_uint_eq(it->tenant, 1);
        /* arrivals */
        /* b and c between two waves: at first the burst takes 3 slots a
         * millisecond for 11 ms, and they free (and are taken) in step;
         * b and c are seen from the start */
        for (uint32_t k = 0; k < 3u + 2u * (ms % 20 == 13 || ms == 0); k++) {
            uint32_t t = k < 3 ? 1 : k - 1;
            struct cr_admit_item *x = t == 1 ? &items[na++] : &items[NA + nb++];
            enum cr_admit_verdict v = arrive(&e, x, t, CR_PRIO_NORMAL, now, NULL);
            if (v == CR_ADMIT_GO) {
                ck_assert_uint_lt(nfly, 64);
                fly[nfly] = x;
                due[nfly++] = now + 20 * MS;
            } else if (t != 1) { /* b and c wait only without headroom */
                ck_assert_uint_eq(pct, 0);
                ck_assert_int_eq(v, CR_ADMIT_QUEUED);
            }
        }
        while ((it = cr_admit_next(e.a, now)) != NULL) {
            ck_assert_uint_lt(nfly, 64);
            fly[nfly] = it;
            due[nfly++] = now + 20 * MS;
        }
        ck_assert_uint_le(cr_admit_inflight(e.a), 32);
        if (stats(&e, 1).inflight > *burst_peak)
            *burst_peak = stats(&e, 1).inflight;
    }
    for (uint32_t i = 0; i < 2 * NB; i++)
        if (items[NA + i].dispatched)
            worst = CR_MAX(worst, cr_admit_wait_ms(&items[NA + i], 0));
    ck_assert_uint_gt(stats(&e, 2).admitted, NB / 2 - 2);
    env_free(&e);
    free(items);
    return worst;
}

START_TEST(headroom_campaign)
{
    uint32_t peak;
    double w = campaign(12, &peak);

    ck_assert_double_eq(w, 0.0); /* b and c: every request at once */
    ck_assert_uint_eq(peak, 28); /* the burst: capacity - headroom */
    w = campaign(0, &peak);
    ck_assert_double_ge(w, 5.0); /* without: they wait for a wave */
    ck_assert_uint_ge(peak, 30);
}
END_TEST

static Suite *admit_suite(void)
{
    Suite *s = suite_create("admit");
    TCase *tc = tcase_create("gcra");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gcra_rate_and_burst_exact_over_a_minute);
    tcase_add_test(tc, gcra_no_window_exceeds_rate_plus_burst);
    tcase_add_test(tc, gcra_retry_at_is_exact);
    tcase_add_test(tc, gcra_unlimited_and_degenerate);
    tcase_add_test(tc, gcra_wait_is_a_tight_lower_bound);
    tcase_add_test(tc, gcra_two_threads_never_over_admit);
    tcase_add_test(tc, rate_is_host_wide_across_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("engine");
    tcase_add_test(tc, new_checks_its_arguments);
    tcase_add_test(tc, capacity_starts_at_zero);
    tcase_add_test(tc, capacity_bounds_dispatch);
    tcase_add_test(tc, concurrency_is_split_across_workers);
    tcase_add_test(tc, unknown_tenant_flood_is_one_tenant);
    tcase_add_test(tc, cancel_leaves_the_queue);
    suite_add_tcase(s, tc);

    tc = tcase_create("refusals");
    tcase_add_test(tc, rate_queue_full_is_429_with_retry_after);
    tcase_add_test(tc, concurrency_queue_full_is_429);
    tcase_add_test(tc, saturated_queue_full_is_503);
    tcase_add_test(tc, no_queue_means_no_waiting);
    tcase_add_test(tc, retry_after_is_jittered);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_add_test(tc, deadlines_expire_in_order);
    tcase_add_test(tc, arriving_again_keeps_the_first_deadline);
    tcase_add_test(tc, expiry_status_follows_the_cause);
    tcase_add_test(tc, shed_early_from_measured_drain_rate);
    tcase_add_test(tc, shed_early_when_drain_stalls);
    tcase_add_test(tc, worker_pause_does_not_shed);
    tcase_add_test(tc, shed_early_from_rate);
    tcase_add_test(tc, next_wakeup_tracks_rate_and_deadlines);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_add_test(tc, drr_shares_follow_weights);
    tcase_add_test(tc, drr_turns_and_no_banked_credit);
    tcase_add_test(tc, fifo_within_a_tenant);
    tcase_add_test(tc, high_before_normal);
    tcase_add_test(tc, high_ignores_rate);
    tcase_add_test(tc, low_is_shed_under_saturation);
    tcase_add_test(tc, low_after_normal);
    suite_add_tcase(s, tc);

    tc = tcase_create("headroom");
    tcase_add_test(tc, headroom_steps);
    tcase_add_test(tc, headroom_lone_burst_uses_everything);
    tcase_add_test(tc, headroom_campaign);
    suite_add_tcase(s, tc);

    tc = tcase_create("randomized");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, randomized_capacity_never_exceeded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(admit_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
