/* check_adapt.c - the adaptive upstream limit (adapt.h) on synthetic
 * latencies with an injected clock: it converges to the knee of an
 * upstream whose latency grows past a concurrency, backs off when the knee
 * moves down, recovers when it moves back, stays in its bounds, and a
 * single outlier moves nothing. */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "adapt.h"
#include "common.h"

#define MS 1000ULL
#define SEC 1000000ULL

/* The knee upstream of testup --knee: 20 ms up to knee in flight, then
 * slope_ms more for each request above it. */
struct knee {
    uint32_t knee;
    uint64_t slope_us;
};

static uint64_t latency(const struct knee *k, uint32_t inflight)
{
    uint64_t us = 20 * MS;
    if (inflight > k->knee)
        us += (inflight - k->knee) * k->slope_us;
    return us;
}

static const struct cr_adapt_params P = {
    .min = 4, .tolerance_pct = 125, .interval_us = 100 * MS, .probe_us = 10 * SEC};

static struct cr_adapt *mk(uint64_t now, uint32_t max)
{
    struct cr_adapt *a;
    ck_assert_int_eq(cr_adapt_new(&P, now, &a), 0);
    cr_adapt_set_max(a, max);
    return a;
}

/* Runs a saturated upstream for `for_us` from *now: every 10 ms, `limit`
 * samples at the latency the knee gives `limit` in flight. Asserts the
 * bounds on every step; returns the highest limit seen. */
static uint32_t run(struct cr_adapt *a, const struct knee *k, uint64_t *now, uint64_t for_us,
                    uint32_t max)
{
    uint32_t hi = 0;
    for (uint64_t end = *now + for_us; *now < end; *now += 10 * MS) {
        uint32_t l = cr_adapt_limit(a);
        uint64_t lat = latency(k, l);
        for (uint32_t i = 0; i < l; i++)
            cr_adapt_sample(a, *now - lat, *now, true, l);
        l = cr_adapt_limit(a);
        ck_assert_uint_ge(l, P.min);
        ck_assert_uint_le(l, max);
        hi = l > hi ? l : hi;
    }
    return hi;
}

START_TEST(bad_params)
{
    struct cr_adapt *a = (void *)1;
    struct cr_adapt_params p = P;
    p.min = 0;
    ck_assert_int_eq(cr_adapt_new(&p, 0, &a), CR_EINVAL);
    ck_assert_ptr_null(a);
    p = P;
    p.tolerance_pct = 99;
    ck_assert_int_eq(cr_adapt_new(&p, 0, &a), CR_EINVAL);
}
END_TEST

START_TEST(starts_at_min_and_probes)
{
    struct cr_adapt *a = mk(SEC, 1000);
    struct cr_adapt_view v;
    cr_adapt_view(a, &v);
    ck_assert_uint_eq(v.limit, 4);
    ck_assert(v.probing);
    ck_assert_uint_eq(v.min_rtt_us, 0);
    /* sent before the probe began: not a floor measurement */
    for (int i = 0; i < 20; i++)
        ck_assert(!cr_adapt_sample(a, SEC - 1, 2 * SEC, true, 4));
    cr_adapt_view(a, &v);
    ck_assert(v.probing);
    for (int i = 0; i < 5; i++)
        cr_adapt_sample(a, 2 * SEC, 2 * SEC + 20 * MS, true, 4);
    cr_adapt_view(a, &v);
    ck_assert(!v.probing);
    ck_assert_uint_eq(v.min_rtt_us, 20 * MS);
    cr_adapt_free(a);
}
END_TEST

START_TEST(converges_to_knee)
{
    struct knee k = {40, 2 * MS};
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 1000);
    run(a, &k, &now, 3 * SEC, 1000);
    /* settled: near the knee and above it by less than half */
    uint32_t hi = run(a, &k, &now, 5 * SEC, 1000);
    uint32_t l = cr_adapt_limit(a);
    ck_assert_msg(l >= 32 && l <= 60, "limit %u, knee 40", l);
    ck_assert_msg(hi <= 60, "peak %u, knee 40", hi);
    struct cr_adapt_view v;
    cr_adapt_view(a, &v);
    ck_assert_uint_eq(v.min_rtt_us, 20 * MS);
    ck_assert(v.gradient < 1.5);
    cr_adapt_free(a);
}
END_TEST

START_TEST(backs_off_and_recovers)
{
    struct knee k = {40, 2 * MS};
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 1000);
    run(a, &k, &now, 5 * SEC, 1000);
    uint32_t before = cr_adapt_limit(a);
    k.knee = 20; /* the API's cache went cold */
    run(a, &k, &now, 3 * SEC, 1000);
    uint32_t after = cr_adapt_limit(a);
    ck_assert_msg(after <= 30 && after < before, "limit %u after the knee halved (was %u)", after,
                  before);
    k.knee = 40;
    run(a, &k, &now, 3 * SEC, 1000);
    ck_assert_msg(cr_adapt_limit(a) >= 32, "limit %u after the knee came back", cr_adapt_limit(a));
    cr_adapt_free(a);
}
END_TEST

START_TEST(follows_fast)
{
    /* the knee halves: within 2 s the limit is within 1.5x the new one */
    struct knee k = {40, 2 * MS};
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 1000);
    run(a, &k, &now, 5 * SEC, 1000);
    k.knee = 20;
    run(a, &k, &now, 2 * SEC, 1000);
    ck_assert_uint_le(cr_adapt_limit(a), 30);
    cr_adapt_free(a);
}
END_TEST

START_TEST(never_outside_bounds)
{
    /* flat latency: grows to max and no further; then max drops */
    struct knee flat = {100000, 0};
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 50);
    run(a, &flat, &now, 5 * SEC, 50);
    ck_assert_uint_eq(cr_adapt_limit(a), 50);
    cr_adapt_set_max(a, 30);
    ck_assert_uint_eq(cr_adapt_limit(a), 30);
    /* steep latency: cut to min and no further */
    struct knee steep = {1, 100 * MS};
    run(a, &steep, &now, 5 * SEC, 30);
    ck_assert_uint_eq(cr_adapt_limit(a), 4);
    /* errors only: congestion, held at min */
    for (int i = 0; i < 200; i++, now += 5 * MS)
        cr_adapt_sample(a, now - 20 * MS, now, false, 30);
    ck_assert_uint_eq(cr_adapt_limit(a), 4);
    /* a max below min: min */
    cr_adapt_set_max(a, 0);
    ck_assert_uint_eq(cr_adapt_limit(a), 4);
    cr_adapt_free(a);
}
END_TEST

START_TEST(errors_cut)
{
    struct knee flat = {100000, 0};
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 200);
    run(a, &flat, &now, 2 * SEC, 200);
    uint32_t before = cr_adapt_limit(a);
    /* fast errors (a 503 at once) still count as congestion */
    for (int i = 0; i < 100; i++, now += 2 * MS)
        cr_adapt_sample(a, now - MS, now, false, 200);
    ck_assert_uint_lt(cr_adapt_limit(a), before);
    cr_adapt_free(a);
}
END_TEST

START_TEST(ignores_single_outlier)
{
    struct knee k = {40, 2 * MS};
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 1000);
    run(a, &k, &now, 5 * SEC, 1000);
    /* one more window at the settled latency, with one 5 s outlier in it,
     * against the same window without: the same limit */
    uint32_t l = cr_adapt_limit(a);
    uint64_t lat = latency(&k, l);
    struct cr_adapt_view v0, v1;
    cr_adapt_view(a, &v0);
    cr_adapt_sample(a, now - 5 * SEC, now, true, l);
    cr_adapt_sample(a, now - lat, now, false, l); /* and one error */
    for (uint32_t i = 0; i < 20; i++)
        cr_adapt_sample(a, now + 100 * MS - lat, now + 100 * MS, true, l);
    cr_adapt_view(a, &v1);
    /* the window closed and judged the latency by its median */
    double g = 1.25 * (double)v0.min_rtt_us / (double)lat;
    g = g > 1.5 ? 1.5 : g < 0.5 ? 0.5 : g;
    ck_assert_msg(v1.gradient > g - 0.01 && v1.gradient < g + 0.01, "gradient %f, want %f",
                  v1.gradient, g);
    ck_assert_uint_ge(v1.limit, v0.limit * 9 / 10);
    cr_adapt_free(a);
}
END_TEST

START_TEST(app_limited_does_not_grow)
{
    /* 20 ms at any load, but only 5 ever in flight: a limit far above
     * what is used would let the next burst straight into the upstream */
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 1000);
    for (uint64_t end = now + 5 * SEC; now < end; now += 10 * MS)
        for (int i = 0; i < 5; i++)
            cr_adapt_sample(a, now - 20 * MS, now, true, 5);
    ck_assert_msg(cr_adapt_limit(a) <= 12, "limit %u with 5 in flight", cr_adapt_limit(a));
    /* the burst comes: it grows from there */
    struct knee flat = {100000, 0};
    run(a, &flat, &now, 2 * SEC, 1000);
    ck_assert_uint_gt(cr_adapt_limit(a), 20);
    cr_adapt_free(a);
}
END_TEST

START_TEST(reprobes_min_rtt)
{
    /* the upstream got faster for good: the next probe finds it */
    struct knee k = {40, 2 * MS};
    uint64_t now = SEC;
    struct cr_adapt *a = mk(now, 1000);
    run(a, &k, &now, 5 * SEC, 1000);
    struct cr_adapt_view v;
    cr_adapt_view(a, &v);
    ck_assert_uint_eq(v.min_rtt_us, 20 * MS);
    /* slower for good (30 ms unloaded): the probe after probe_us sees it */
    bool probed = false;
    for (uint64_t end = now + 12 * SEC; now < end; now += 10 * MS) {
        uint32_t l = cr_adapt_limit(a);
        uint64_t lat = latency(&k, l) + 10 * MS;
        for (uint32_t i = 0; i < l; i++)
            cr_adapt_sample(a, now - lat, now, true, l);
        cr_adapt_view(a, &v);
        probed |= v.probing;
    }
    ck_assert(probed);
    ck_assert_uint_eq(v.min_rtt_us, 30 * MS);
    cr_adapt_free(a);
}
END_TEST

static Suite *adapt_suite(void)
{
    Suite *s = suite_create("adapt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bad_params);
    tcase_add_test(tc, starts_at_min_and_probes);
    tcase_add_test(tc, converges_to_knee);
    tcase_add_test(tc, backs_off_and_recovers);
    tcase_add_test(tc, follows_fast);
    tcase_add_test(tc, never_outside_bounds);
    tcase_add_test(tc, errors_cut);
    tcase_add_test(tc, ignores_single_outlier);
    tcase_add_test(tc, app_limited_does_not_grow);
    tcase_add_test(tc, reprobes_min_rtt);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(adapt_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
