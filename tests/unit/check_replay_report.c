/* check_replay_report.c - corral-replay's latency histogram against exact
 * quantiles of known distributions, and its text, CSV and HTML reports of a
 * small synthetic run. */
#include "ac_config.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay/rp_hist.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ histogram */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) /* xorshift64*: deterministic across runs */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static double rng_unit(void) /* (0, 1) */
{
    return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Quantiles given in parts per 100 000 so that the exact nearest rank,
 * ceil(q * n), is computed in integers here. */
static const unsigned q_ppm[] = {0,     1,     100,   1000,  10000, 25000, 50000, 75000,
                                 90000, 95000, 99000, 99900, 99990, 99999, 100000};

static uint64_t exact_quantile(const uint64_t *sorted, size_t n, unsigned ppm)
{
    uint64_t rank = ((uint64_t)ppm * n + 99999) / 100000;

    return sorted[rank == 0 ? 0 : rank - 1];
}

/* Adds the n values to a new histogram and checks every quantile against the
 * exact one: never below, equal under 1024 us, at most 1/128 above. */
static void check_against_exact(uint64_t *v, size_t n, const char *what)
{
    struct rp_hist *h = rp_hist_new();
    uint64_t max = 0;

    ck_assert_ptr_nonnull(h);
    for (size_t i = 0; i < n; i++) {
        rp_hist_add(h, v[i]);
        if (v[i] > max)
            max = v[i];
    }
    qsort(v, n, sizeof(v[0]), cmp_u64);
    ck_assert_uint_eq(rp_hist_count(h), n);
    ck_assert_uint_eq(rp_hist_max(h), max);
    for (size_t j = 0; j < N_ELEMS(q_ppm); j++) {
        uint64_t want = exact_quantile(v, n, q_ppm[j]);
        uint64_t got = rp_hist_quantile(h, q_ppm[j] / 100000.0);

        ck_assert_msg(got >= want, "%s q=%u: %llu below exact %llu", what, q_ppm[j],
                      (unsigned long long)got, (unsigned long long)want);
        if (q_ppm[j] == 100000) /* the largest value is kept exactly */
            ck_assert_msg(got == max, "%s: q=1 gives %llu, max is %llu", what,
                          (unsigned long long)got, (unsigned long long)max);
        else if (want < 1024)
            ck_assert_msg(got == want, "%s q=%u: %llu, exact %llu", what, q_ppm[j],
                          (unsigned long long)got, (unsigned long long)want);
        else
            ck_assert_msg(got - want <= want / 128, "%s q=%u: %llu, exact %llu (> 0.78%%)", what,
                          q_ppm[j], (unsigned long long)got, (unsigned long long)want);
    }
    rp_hist_free(h);
}

START_TEST(hist_uniform_small_is_exact)
{
    size_t n = 5000;
    uint64_t *v = malloc(n * sizeof(*v));

    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        v[i] = rng() % 1000;
    check_against_exact(v, n, "uniform 0..999 us");
    free(v);
}
END_TEST

START_TEST(hist_lognormal_within_error)
{
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof(*v));

    ck_assert_ptr_nonnull(v);
    /* median 20 ms, sigma 1.5: spans ~50 us .. ~10 s */
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(rng_unit())), t = 2.0 * M_PI * rng_unit();

        v[i] = (uint64_t)(20000.0 * exp(1.5 * r * cos(t)));
        v[i + 1] = (uint64_t)(20000.0 * exp(1.5 * r * sin(t)));
    }
    check_against_exact(v, n, "lognormal");
    free(v);
}
END_TEST

START_TEST(hist_bimodal_and_exponential)
{
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof(*v));

    ck_assert_ptr_nonnull(v);
    /* 90% fast answers around 2 ms, 10% queued ones around 1.5 s */
    for (size_t i = 0; i < n; i++)
        v[i] = (rng() % 10 == 0) ? 1500000 + rng() % 500000 : 1800 + rng() % 400;
    check_against_exact(v, n, "bimodal");
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)(-50000.0 * log(rng_unit()));
    check_against_exact(v, n, "exponential mean 50 ms");
    free(v);
}
END_TEST

/* The bucket of v, seen from outside: with v and a value w a few buckets
 * higher, the 50% quantile is the top of v's bucket. */
static uint64_t top_of(struct rp_hist *h, uint64_t v)
{
    rp_hist_reset(h);
    rp_hist_add(h, v);
    rp_hist_add(h, v + v / 32 + 2);
    return rp_hist_quantile(h, 0.5);
}

START_TEST(hist_bucket_edges)
{
    struct rp_hist *h = rp_hist_new();
    uint64_t prev_top = 0;

    ck_assert_ptr_nonnull(h);
    /* every value up to 2^21: buckets contiguous, tops within the error */
    for (uint64_t v = 0; v <= (1u << 21); v++) {
        uint64_t top = top_of(h, v);

        ck_assert_msg(top >= v && (v < 1024 ? top == v : top - v <= v / 128), "v=%llu top=%llu",
                      (unsigned long long)v, (unsigned long long)top);
        /* v is in the previous value's bucket exactly when that bucket
         * reaches v */
        if (v > 0)
            ck_assert_msg(prev_top >= v ? top == prev_top : top > prev_top, "v=%llu",
                          (unsigned long long)v);
        prev_top = top;
    }
    /* around every power of two and its eighths, up to the top */
    for (unsigned e = 21; e < 32; e++)
        for (uint64_t k = 0; k < 8; k++) {
            uint64_t base = (UINT64_C(1) << e) + k * (UINT64_C(1) << (e - 3));

            for (uint64_t v = base - 2; v <= base + 2; v++) {
                uint64_t top = top_of(h, v);

                ck_assert_msg(top >= v && top - v <= v / 128, "v=%llu top=%llu",
                              (unsigned long long)v, (unsigned long long)top);
            }
        }
    rp_hist_free(h);
}
END_TEST

START_TEST(hist_merge_equals_union)
{
    struct rp_hist *a = rp_hist_new(), *b = rp_hist_new(), *all = rp_hist_new();
    const double qs[] = {0.0, 0.5, 0.9, 0.99, 0.999, 1.0};

    ck_assert(a && b && all);
    for (int i = 0; i < 30000; i++) {
        uint64_t fast = 300 + rng() % 2000, slow = 40000 + rng() % 900000;

        rp_hist_add(a, fast);
        rp_hist_add(all, fast);
        if (i % 3 == 0) {
            rp_hist_add(b, slow);
            rp_hist_add(all, slow);
        }
    }
    ck_assert(rp_hist_quantile(a, 0.99) < rp_hist_quantile(all, 0.99));
    /* the low one into the high one */
    rp_hist_merge(b, a);
    ck_assert_uint_eq(rp_hist_count(b), 40000);
    for (size_t i = 0; i < N_ELEMS(qs); i++)
        ck_assert_uint_eq(rp_hist_quantile(b, qs[i]), rp_hist_quantile(all, qs[i]));
    /* and the high one into the low one */
    rp_hist_reset(b);
    for (int i = 0; i < 30000; i += 3)
        rp_hist_add(b, 40000 + rng() % 900000);
    rp_hist_reset(all);
    rp_hist_merge(all, a);
    rp_hist_merge(all, b);
    rp_hist_merge(a, b);
    ck_assert_uint_eq(rp_hist_count(a), 40000);
    ck_assert_uint_eq(rp_hist_max(a), rp_hist_max(all));
    for (size_t i = 0; i < N_ELEMS(qs); i++)
        ck_assert_uint_eq(rp_hist_quantile(a, qs[i]), rp_hist_quantile(all, qs[i]));

    /* merging into an empty one copies; merging NULL or empty changes nothing */
    rp_hist_reset(b);
    rp_hist_merge(b, all);
    rp_hist_merge(b, NULL);
    rp_hist_reset(a);
    rp_hist_merge(b, a);
    ck_assert_uint_eq(rp_hist_count(b), 40000);
    for (size_t i = 0; i < N_ELEMS(qs); i++)
        ck_assert_uint_eq(rp_hist_quantile(b, qs[i]), rp_hist_quantile(all, qs[i]));

    /* into itself: twice the counts, same shape */
    rp_hist_merge(b, b);
    ck_assert_uint_eq(rp_hist_count(b), 80000);
    for (size_t i = 0; i < N_ELEMS(qs); i++)
        ck_assert_uint_eq(rp_hist_quantile(b, qs[i]), rp_hist_quantile(all, qs[i]));
    rp_hist_free(a);
    rp_hist_free(b);
    rp_hist_free(all);
}
END_TEST

START_TEST(hist_clamps_beyond_range)
{
    struct rp_hist *h = rp_hist_new();
    uint64_t five_hours = UINT64_C(5) * 3600 * 1000000;

    ck_assert_ptr_nonnull(h);
    for (int i = 0; i < 9; i++)
        rp_hist_add(h, 1000);
    rp_hist_add(h, five_hours);
    rp_hist_add(h, UINT64_MAX);
    ck_assert_uint_eq(rp_hist_count(h), 11);
    ck_assert_uint_eq(rp_hist_overflow(h), 2);
    ck_assert_uint_eq(rp_hist_max(h), UINT64_MAX);
    ck_assert_uint_eq(rp_hist_quantile(h, 0.5), 1000);
    /* 10th of 11 values: clamped into the top bucket, reported as its top */
    ck_assert_uint_eq(rp_hist_quantile(h, 10.0 / 11.0), RP_HIST_HIGHEST);
    ck_assert_uint_eq(rp_hist_quantile(h, 1.0), RP_HIST_HIGHEST);
    /* a value of exactly one hour is still inside the range */
    rp_hist_reset(h);
    rp_hist_add(h, UINT64_C(3600) * 1000000);
    rp_hist_add(h, RP_HIST_HIGHEST);
    ck_assert_uint_eq(rp_hist_overflow(h), 0);
    ck_assert(rp_hist_quantile(h, 0.5) < RP_HIST_HIGHEST);
    rp_hist_free(h);
}
END_TEST

START_TEST(hist_empty_reset_and_null)
{
    struct rp_hist *h = rp_hist_new();
    const double qs[] = {0.5, 0.99};
    uint64_t out[2] = {7, 7};

    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(rp_hist_count(h), 0);
    ck_assert_uint_eq(rp_hist_quantile(h, 0.5), 0);
    ck_assert_uint_eq(rp_hist_max(h), 0);
    ck_assert_uint_eq(rp_hist_count(NULL), 0);
    ck_assert_uint_eq(rp_hist_quantile(NULL, 0.99), 0);
    rp_hist_quantiles(NULL, qs, out, 2);
    ck_assert(out[0] == 0 && out[1] == 0);

    for (int i = 0; i < 1000; i++)
        rp_hist_add(h, 900000 + (uint64_t)i);
    rp_hist_reset(h);
    ck_assert_uint_eq(rp_hist_count(h), 0);
    ck_assert_uint_eq(rp_hist_quantile(h, 1.0), 0);
    rp_hist_add(h, 5);
    rp_hist_add(h, 7);
    ck_assert_uint_eq(rp_hist_quantile(h, 0.0), 5);
    ck_assert_uint_eq(rp_hist_quantile(h, 0.5), 5);
    ck_assert_uint_eq(rp_hist_quantile(h, 0.51), 7);
    ck_assert_uint_eq(rp_hist_quantile(h, 1.0), 7);
    ck_assert_uint_eq(rp_hist_max(h), 7);
    /* out-of-range and NaN q are clamped */
    ck_assert_uint_eq(rp_hist_quantile(h, -1.0), 5);
    ck_assert_uint_eq(rp_hist_quantile(h, 2.0), 7);
    ck_assert_uint_eq(rp_hist_quantile(h, NAN), 5);
    rp_hist_free(h);
    rp_hist_free(NULL);
}
END_TEST

/* Nearest rank on 1..100: the k-th percentile is k, even where k / 100.0 *
 * 100 is not k in doubles (7.000000000000001, 56.99999999999999). */
START_TEST(hist_nearest_rank)
{
    struct rp_hist *h = rp_hist_new();

    ck_assert_ptr_nonnull(h);
    for (uint64_t v = 1; v <= 100; v++)
        rp_hist_add(h, v);
    for (int k = 0; k <= 100; k++)
        ck_assert_msg(rp_hist_quantile(h, k / 100.0) == (uint64_t)(k > 0 ? k : 1), "q=%d%%: %llu",
                      k, (unsigned long long)rp_hist_quantile(h, k / 100.0));
    ck_assert_uint_eq(rp_hist_quantile(h, 0.505), 51);
    ck_assert_uint_eq(rp_hist_quantile(h, 0.999), 100);
    rp_hist_free(h);
}
END_TEST

START_TEST(hist_quantiles_any_order)
{
    struct rp_hist *h = rp_hist_new();
    const double qs[] = {0.99, 0.5, 0.999, 0.0, 0.9, 0.9, 1.0, 0.25};
    uint64_t out[N_ELEMS(qs)];

    ck_assert_ptr_nonnull(h);
    for (int i = 0; i < 20000; i++)
        rp_hist_add(h, rng() % 3000000);
    rp_hist_quantiles(h, qs, out, N_ELEMS(qs));
    for (size_t i = 0; i < N_ELEMS(qs); i++)
        ck_assert_uint_eq(out[i], rp_hist_quantile(h, qs[i]));
    ck_assert(out[3] < out[7] && out[7] < out[1] && out[1] < out[4] && out[4] < out[0]);
    rp_hist_free(h);
}
END_TEST

START_TEST(hist_fixed_size_and_saturation)
{
    struct rp_hist *h = rp_hist_new();

    ck_assert_ptr_nonnull(h);
    ck_assert_msg(rp_hist_size() <= 32 * 1024, "%zu bytes", rp_hist_size());
    /* adding never allocates: the size is the same whatever was added */
    rp_hist_add(h, 12345);
    rp_hist_add(h, 2000);
    /* 2^40 values in two buckets saturate their 32-bit counters; quantiles
     * stay within the two values and the 64-bit count stays right */
    for (int i = 0; i < 39; i++)
        rp_hist_merge(h, h);
    ck_assert_uint_eq(rp_hist_count(h), UINT64_C(1) << 40);
    ck_assert_uint_eq(rp_hist_quantile(h, 0.0), 2007); /* top of [2000, 2008) */
    ck_assert_uint_eq(rp_hist_quantile(h, 1.0), 12345);
    rp_hist_free(h);
}
END_TEST

static Suite *hist_suite(void)
{
    Suite *s = suite_create("replay_report");
    TCase *tc = tcase_create("hist");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hist_uniform_small_is_exact);
    tcase_add_test(tc, hist_lognormal_within_error);
    tcase_add_test(tc, hist_bimodal_and_exponential);
    tcase_add_test(tc, hist_bucket_edges);
    tcase_add_test(tc, hist_merge_equals_union);
    tcase_add_test(tc, hist_clamps_beyond_range);
    tcase_add_test(tc, hist_empty_reset_and_null);
    tcase_add_test(tc, hist_nearest_rank);
    tcase_add_test(tc, hist_quantiles_any_order);
    tcase_add_test(tc, hist_fixed_size_and_saturation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hist_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
