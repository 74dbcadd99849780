/* check_quota - the lease accounting of global rates (quota.h), with a fake
 * clock and no Redis: the fleet's bucket is the same GCRA the Lua script
 * runs (gcra.h on one word), granted the way the script grants. */
#include "ac_config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "common.h"
#include "config.h"
#include "gcra.h"
#include "quota.h"
#include "tenant.h"

#define MS 1000ULL
#define SEC 1000000ULL

struct env {
    struct cr_cfg_tenant list[2];
    struct cr_cfg_quota qcfg;
    struct cr_tenants *t;
    struct cr_quota *q;
};

/* Tenant 1 "g": rate, burst, global; tenant 2 "l": local, same limits. */
static void env_init(struct env *e, double rate, uint32_t burst, uint32_t hosts, uint32_t lease,
                     uint32_t nworkers)
{
    memset(e, 0, sizeof(*e));
    struct cr_cfg_limits lim = {.rate = rate, .burst = burst, .queue = 0, .weight = 1};
    e->list[0] = (struct cr_cfg_tenant){.name = "g", .limits = lim, .global = true};
    e->list[1] = (struct cr_cfg_tenant){.name = "l", .limits = lim};
    e->qcfg = (struct cr_cfg_quota){.enabled = true, .hosts = hosts, .lease = lease};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_HEADER,
                                 .header = "X-Tenant-Id",
                                 .defaults = lim,
                                 .list = e->list,
                                 .nlist = 2,
                                 .global = e->qcfg};
    ck_assert_int_eq(cr_tenants_new(&cfg, &e->t), 0);
    ck_assert_int_eq(cr_quota_new(&e->qcfg, e->t, nworkers, &e->q), 0);
}

static void env_free(struct env *e)
{
    cr_quota_free(e->q);
    cr_tenants_free(e->t);
}

/* What the script does: up to want tokens from the fleet's bucket at now,
 * and how long until the next one when it granted fewer. */
static uint32_t script(_Atomic uint64_t *tat, double rate, uint32_t burst, uint32_t want,
                       uint64_t now, uint64_t *wait_us)
{
    uint32_t n = 0;
    uint64_t at = now;
    while (n < want && cr_gcra_take(tat, rate, burst, now, &at) == 0)
        n++;
    *wait_us = n < want ? at - now : 0;
    return n;
}

START_TEST(lease_sizes)
{
    struct env e;
    env_init(&e, 300, 1000, 2, 0, 1);
    ck_assert(cr_quota_is_global(e.q, 1));
    ck_assert(!cr_quota_is_global(e.q, 2));
    ck_assert(!cr_quota_is_global(e.q, 0));
    ck_assert_uint_eq(cr_quota_lease_size(e.q, 1), 50); /* 300 / (3 x 2 x 1) */
    env_free(&e);
    env_init(&e, 300, 10, 2, 0, 1);
    ck_assert_uint_eq(cr_quota_lease_size(e.q, 1), 10); /* at most the burst */
    env_free(&e);
    env_init(&e, 2, 10, 4, 0, 8);
    ck_assert_uint_eq(cr_quota_lease_size(e.q, 1), 1); /* at least one */
    env_free(&e);
    env_init(&e, 300, 1000, 2, 7, 1);
    ck_assert_uint_eq(cr_quota_lease_size(e.q, 1), 7); /* as configured */
    env_free(&e);
}
END_TEST

START_TEST(fallback_until_granted)
{
    struct env e;
    uint32_t i, want;
    uint64_t next, retry = 0;
    env_init(&e, 300, 100, 3, 0, 1);
    ck_assert(!cr_quota_up(e.q));
    ck_assert_int_eq(cr_quota_take(e.q, 1, 0, &retry), CR_QUOTA_LOCAL);
    ck_assert(fabs(cr_quota_local_rate(e.q, 300) - 100.0) < 1e-9);
    ck_assert_uint_eq(cr_quota_local_burst(e.q, 100), 33);
    ck_assert_uint_eq(cr_quota_local_burst(e.q, 2), 1);
    /* nothing is asked before the link is up */
    ck_assert(!cr_quota_due(e.q, 0, &i, &want, &next));
    ck_assert(!cr_quota_set_link(e.q, true)); /* connected, not yet answered */
    ck_assert_int_eq(cr_quota_take(e.q, 1, 0, &retry), CR_QUOTA_LOCAL);
    /* every global tenant asks at once, for a lease and a half */
    ck_assert(cr_quota_due(e.q, 0, &i, &want, NULL));
    ck_assert_uint_eq(i, 1);
    ck_assert_uint_eq(want, 49);                        /* 33 + 16 */
    ck_assert(!cr_quota_due(e.q, 0, &i, &want, &next)); /* one ask at a time */
    ck_assert_uint_eq(next, UINT64_MAX);
    cr_quota_grant(e.q, 1, 49, 0, 1 * MS);
    ck_assert(cr_quota_up(e.q));
    ck_assert_int_eq(cr_quota_take(e.q, 1, 1 * MS, &retry), CR_QUOTA_LEASED);
    /* the link goes: local again, and that is a change */
    ck_assert(cr_quota_set_link(e.q, false));
    ck_assert(!cr_quota_up(e.q));
    ck_assert_int_eq(cr_quota_take(e.q, 1, 2 * MS, &retry), CR_QUOTA_LOCAL);
    ck_assert(!cr_quota_set_link(e.q, false));
    /* back, with 48 tokens still leased: it asks anyway (for one), since
     * only an answer ends the fallback */
    cr_quota_set_link(e.q, true);
    ck_assert(cr_quota_due(e.q, 3 * MS, &i, &want, NULL));
    ck_assert_uint_eq(want, 1);
    cr_quota_grant(e.q, 1, 1, 0, 4 * MS);
    ck_assert(cr_quota_up(e.q));
    env_free(&e);
}
END_TEST

START_TEST(spend_refill_empty)
{
    struct env e;
    uint32_t i, want;
    uint64_t retry = 0, next;
    env_init(&e, 100, 100, 1, 10, 1);
    cr_quota_set_link(e.q, true);
    ck_assert(cr_quota_due(e.q, 0, &i, &want, NULL));
    ck_assert_uint_eq(want, 15);
    cr_quota_grant(e.q, 1, 10, 0, 0);
    /* 10 tokens: after 5 it is at the low-water mark and asks */
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(cr_quota_take(e.q, 1, 1 * MS, &retry), CR_QUOTA_LEASED);
    ck_assert(cr_quota_due(e.q, 1 * MS, &i, &want, NULL));
    ck_assert_uint_eq(want, 10); /* 15 - the 5 left */
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(cr_quota_take(e.q, 1, 2 * MS, &retry), CR_QUOTA_LEASED);
    ck_assert_int_eq(cr_quota_take(e.q, 1, 2 * MS, &retry), CR_QUOTA_EMPTY);
    ck_assert_uint_ge(retry, 2 * MS + CR_QUOTA_RETRY_US);
    ck_assert_uint_eq(cr_quota_wait_us(e.q, 1, 2 * MS, 0), CR_QUOTA_RETRY_US);
    /* Redis had 3 left: it says the next comes in 10 ms; the next ask waits
     * for about half a lease more to refill (50 ms at 100/s, x 0.5..1.5) */
    cr_quota_grant(e.q, 1, 3, 10 * MS, 3 * MS);
    ck_assert_uint_eq(cr_quota_wait_us(e.q, 1, 3 * MS, 2), 0);
    uint64_t w = cr_quota_wait_us(e.q, 1, 3 * MS, 3);
    ck_assert_uint_ge(w, 10 * MS + 25 * MS);
    ck_assert_uint_le(w, 10 * MS + 75 * MS);
    ck_assert(!cr_quota_due(e.q, 4 * MS, &i, &want, &next));
    ck_assert_uint_eq(next, 3 * MS + w);
    ck_assert(!cr_quota_due(e.q, next - 1, &i, &want, NULL));
    ck_assert(cr_quota_due(e.q, next, &i, &want, NULL));
    env_free(&e);
}
END_TEST

/* The bound quota.h documents: hosts x workers engines share one bucket
 * through 1 ms round trips, each driven at 3 x its share of the rate for
 * 10 s. Admitted <= burst + R x T + R x 0.5 s, and >= 95% of R x T. */
START_TEST(fleet_error_bound)
{
    enum { HOSTS = 3, WORKERS = 2, N = HOSTS * WORKERS };
    const double rate = 600;
    const uint32_t burst = 50;
    struct env e[N];
    _Atomic uint64_t bucket = 0;
    uint64_t reply_at[N], granted[N], waits[N];
    uint32_t asked[N], idx[N];
    long admitted = 0, each[N] = {0};
    const uint64_t rtt = 1 * MS, end = 10 * SEC;
    /* each engine's own arrivals: 3 x rate / N per s */
    const uint64_t gap = (uint64_t)(1e6 / (3.0 * rate / N));

    for (int k = 0; k < N; k++) {
        env_init(&e[k], rate, burst, HOSTS, 0, WORKERS);
        cr_quota_seed(e[k].q, 100 + (uint64_t)k);
        cr_quota_set_link(e[k].q, true);
        reply_at[k] = UINT64_MAX;
    }
    ck_assert_uint_eq(cr_quota_lease_size(e[0].q, 1), 33);
    for (uint64_t now = 0; now <= end; now += 100) {
        for (int k = 0; k < N; k++) {
            if (reply_at[k] <= now) {
                cr_quota_grant(e[k].q, idx[k], (uint32_t)granted[k], waits[k], now);
                reply_at[k] = UINT64_MAX;
            }
            if (reply_at[k] == UINT64_MAX && cr_quota_due(e[k].q, now, &idx[k], &asked[k], NULL)) {
                /* Redis runs the script half a round trip later */
                granted[k] = script(&bucket, rate, burst, asked[k], now + rtt / 2, &waits[k]);
                reply_at[k] = now + rtt;
            }
            if ((now + (uint64_t)k * 37) % gap < 100 &&
                cr_quota_take(e[k].q, 1, now, NULL) == CR_QUOTA_LEASED) {
                admitted++;
                each[k]++;
            }
        }
    }
    double rt = rate * (double)end / 1e6;
    ck_assert_msg(admitted <= (long)(burst + rt + rate * 0.5), "admitted %ld, R x T %.0f", admitted,
                  rt);
    ck_assert_msg(admitted >= (long)(0.95 * rt), "admitted %ld, R x T %.0f", admitted, rt);
    /* equal demand, fair shares: none gets less than 2/3 of its share
     * (without the jitter the first to ask took most, the last ~10%) */
    for (int k = 0; k < N; k++)
        ck_assert_msg(each[k] * 3 * N >= 2 * admitted, "engine %d admitted %ld of %ld", k, each[k],
                      admitted);
    for (int k = 0; k < N; k++)
        env_free(&e[k]);
}
END_TEST

/* The admission engine: a global tenant at the per-host share while in
 * fallback, from its lease (and nothing more) once up; local tenants as
 * before. */
START_TEST(admit_takes_from_lease)
{
    struct env e;
    struct cr_admit *a;
    struct cr_admit_shared *shm = calloc(1, sizeof(*shm));
    struct cr_admit_item it[64];
    struct cr_admit_shed why;
    uint32_t i, want;
    int go = 0;

    ck_assert_ptr_nonnull(shm);
    env_init(&e, 10, 8, 2, 4, 1);
    ck_assert_int_eq(cr_admit_new(e.t, shm, 1, 1, &a), 0);
    cr_admit_set_quota(a, e.q);
    cr_admit_set_capacity(a, 1000);
    /* fallback: burst 8 / 2 hosts = 4 at once */
    for (int k = 0; k < 10; k++) {
        cr_admit_item_init(&it[k], NULL);
        enum cr_admit_verdict v =
            cr_admit_arrive(a, &it[k], cr_tenants_at(e.t, 1), CR_PRIO_NORMAL, 1 * SEC, &why);
        go += v == CR_ADMIT_GO;
        if (v == CR_ADMIT_SHED)
            ck_assert_int_eq(why.status, 429);
    }
    ck_assert_int_eq(go, 4);
    /* the local tenant still has its whole burst */
    go = 0;
    for (int k = 10; k < 20; k++) {
        cr_admit_item_init(&it[k], NULL);
        go += cr_admit_arrive(a, &it[k], cr_tenants_at(e.t, 2), CR_PRIO_NORMAL, 1 * SEC, &why) ==
              CR_ADMIT_GO;
    }
    ck_assert_int_eq(go, 8);
    /* up, with a lease of 4 (+2): exactly what was granted goes */
    cr_quota_set_link(e.q, true);
    ck_assert(cr_quota_due(e.q, 1 * SEC, &i, &want, NULL));
    ck_assert_uint_eq(want, 6);
    cr_quota_grant(e.q, 1, 6, 0, 1 * SEC);
    go = 0;
    for (int k = 20; k < 40; k++) {
        cr_admit_item_init(&it[k], NULL);
        enum cr_admit_verdict v =
            cr_admit_arrive(a, &it[k], cr_tenants_at(e.t, 1), CR_PRIO_NORMAL, 2 * SEC, &why);
        go += v == CR_ADMIT_GO;
        if (v == CR_ADMIT_SHED)
            ck_assert_msg(why.status == 429 && why.kind == CR_ADMIT_SHED_RATE, "%d %s", why.status,
                          why.reason);
    }
    ck_assert_int_eq(go, 6);
    cr_admit_free(a);
    free(shm);
    env_free(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quota");
    TCase *tc = tcase_create("lease");
    tcase_add_test(tc, lease_sizes);
    tcase_add_test(tc, fallback_until_granted);
    tcase_add_test(tc, spend_refill_empty);
    tcase_add_test(tc, fleet_error_bound);
    tcase_add_test(tc, admit_takes_from_lease);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
