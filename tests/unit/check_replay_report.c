/* check_replay_report.c - corral-replay's latency histogram against exact
 * quantiles of known distributions, and its text, CSV and HTML reports of a
 * small synthetic run (written to memory streams and read back). */
#include "ac_config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay/rp_hist.h"
#include "replay/rp_report.h"
#include "replay/rp_svg.h"

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

        /* (ck_assert writes to Check's pipe each time: too slow here) */
        if (!(top >= v && (v < 1024 ? top == v : top - v <= v / 128)))
            ck_abort_msg("v=%llu top=%llu", (unsigned long long)v, (unsigned long long)top);
        /* v is in the previous value's bucket exactly when that bucket
         * reaches v */
        if (v > 0 && !(prev_top >= v ? top == prev_top : top > prev_top))
            ck_abort_msg("v=%llu top=%llu, previous top %llu", (unsigned long long)v,
                         (unsigned long long)top, (unsigned long long)prev_top);
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

/* ------------------------------------------------------------ a small run */

/* Three seconds, two phases, four tenants:
 *   alpha          second 1 is fully known (see CSV_ALPHA_1); second 2 has
 *                  requests but no answer (empty latency); timeline 3 s
 *   <script>...    HTML must show it as text; timeline only 2 s
 *   comma, "q"     CSV must quote it
 *   idle           nothing at all, every lat NULL */
#define NSEC 3
#define NTEN 4
#define TENANT_SCRIPT "<script>alert(\"x\")</script>"
#define TENANT_COMMA "comma, \"quoted\""
#define CSV_HEADER                                                                                 \
    "second,tenant,offered,sent,ok,s429,s503,other,conn_errors,timeouts,gave_up,full_hs,"          \
    "resumed_hs,p50_ms,p90_ms,p99_ms,p999_ms\n"
#define CSV_ALPHA_1 "\n1,alpha,10,9,6,2,1,0,0,0,1,3,4,0.300,0.600,0.600,0.600\n"
#define CSV_ALPHA_2 "\n2,alpha,5,5,0,0,0,0,0,5,0,0,0,,,,\n"

static const struct rp_phase_def phases[2] = {{"warm-up", 0.0, 1.0}, {"burst & decay", 1.0, 3.0}};

struct fixture {
    struct rp_cell sec[NTEN][NSEC];
    struct rp_cell phase[NTEN][2];
    struct rp_series series[NTEN];
    struct rp_run run;
};

static void fixture_free(struct fixture *x)
{
    for (int t = 0; t < NTEN; t++) {
        for (int i = 0; i < NSEC; i++)
            rp_hist_free(x->sec[t][i].lat);
        for (int k = 0; k < 2; k++)
            rp_hist_free(x->phase[t][k].lat);
        rp_hist_free(x->series[t].total.lat);
    }
    free(x);
}

/* Counts c into the phase and total cells of tenant t (counters and latency). */
static void account(struct fixture *x, int t, int k, const struct rp_cell *c)
{
    struct rp_cell *into[2] = {&x->phase[t][k], &x->series[t].total};

    for (int j = 0; j < 2; j++) {
        into[j]->offered += c->offered;
        into[j]->sent += c->sent;
        into[j]->ok += c->ok;
        into[j]->s429 += c->s429;
        into[j]->s503 += c->s503;
        into[j]->timeouts += c->timeouts;
        into[j]->gave_up += c->gave_up;
        into[j]->full_hs += c->full_hs;
        into[j]->resumed_hs += c->resumed_hs;
        if (c->lat != NULL) {
            if (into[j]->lat == NULL)
                into[j]->lat = rp_hist_new();
            rp_hist_merge(into[j]->lat, c->lat);
        }
    }
}

static struct fixture *fixture_new(void)
{
    static const char *const names[NTEN] = {"alpha", TENANT_SCRIPT, TENANT_COMMA, "idle"};
    struct fixture *x = calloc(1, sizeof(*x));

    ck_assert_ptr_nonnull(x);
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < NSEC; i++) {
            struct rp_cell *c = &x->sec[t][i];

            c->lat = rp_hist_new();
            c->offered = c->sent = c->ok = 4;
            for (uint64_t v = 1; v <= 4; v++)
                rp_hist_add(c->lat, 1000 * v + 100 * (uint64_t)t);
        }
    /* alpha, second 1: everything known */
    x->sec[0][1] = (struct rp_cell){.offered = 10,
                                    .sent = 9,
                                    .ok = 6,
                                    .s429 = 2,
                                    .s503 = 1,
                                    .gave_up = 1,
                                    .full_hs = 3,
                                    .resumed_hs = 4,
                                    .lat = x->sec[0][1].lat};
    rp_hist_reset(x->sec[0][1].lat);
    for (uint64_t v = 100; v <= 600; v += 100)
        rp_hist_add(x->sec[0][1].lat, v);
    /* alpha, second 2: five requests, all timed out */
    x->sec[0][2] =
        (struct rp_cell){.offered = 5, .sent = 5, .timeouts = 5, .lat = x->sec[0][2].lat};
    rp_hist_reset(x->sec[0][2].lat);
    for (int t = 0; t < NTEN; t++) {
        x->series[t] = (struct rp_series){.tenant = names[t],
                                          .nsec = t == 1 ? 2 : NSEC,
                                          .sec = x->sec[t],
                                          .nphase = 2,
                                          .phase = x->phase[t]};
        for (int i = 0; i < NSEC; i++)
            account(x, t, i == 0 ? 0 : 1, &x->sec[t][i]);
    }
    x->run = (struct rp_run){.title = "push <burst>",
                             .source = "profiles/push.yaml",
                             .target = "127.0.0.1:8443",
                             .started = 1714560000,
                             .duration_s = 3.2,
                             .nphase = 2,
                             .phases = phases,
                             .ntenant = NTEN,
                             .tenants = x->series};
    return x;
}

typedef int (*writer_fn)(FILE *, const struct rp_run *);

/* What w writes for r, NUL-terminated (caller frees); its return in *rc. */
static char *render(writer_fn w, const struct rp_run *r, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(f);
    *rc = w(f, r);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ------------------------------------------------------------ CSV */

/* Splits one RFC 4180 line into fields (quotes removed, "" unescaped);
 * returns the number of fields, or -1 on a malformed line. */
static int csv_parse(const char *line, char fields[][64], int max)
{
    int n = 0;
    const char *p = line;

    for (;;) {
        size_t len = 0;

        if (n == max)
            return -1;
        if (*p == '"') {
            for (p++;; p++) {
                if (*p == '\0')
                    return -1;
                if (*p == '"' && p[1] != '"')
                    break;
                if (*p == '"')
                    p++;
                if (len < 63)
                    fields[n][len++] = *p;
            }
            p++;
        } else {
            for (; *p != ',' && *p != '\n' && *p != '\0'; p++)
                if (len < 63)
                    fields[n][len++] = *p;
        }
        fields[n++][len] = '\0';
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == '\n' || *p == '\0' ? n : -1;
    }
}

START_TEST(csv_header_and_rows)
{
    struct fixture *x = fixture_new();
    int rc, rows = 0;
    char *out = render(rp_report_csv, &x->run, &rc), fields[20][64];
    const char *expect_tenant[] = {"alpha", TENANT_SCRIPT, TENANT_COMMA, "idle"};

    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strncmp(out, CSV_HEADER, strlen(CSV_HEADER)) == 0, "%.200s", out);
    ck_assert_msg(strstr(out, CSV_ALPHA_1) != NULL, "%s", out);
    /* requests but no answer: empty latency fields, not zeros */
    ck_assert_msg(strstr(out, CSV_ALPHA_2) != NULL, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\n0,\"comma, \"\"quoted\"\"\",4,4,4,"));
    ck_assert_ptr_nonnull(strstr(out, "\n2,idle,0,0,0,0,0,0,0,0,0,0,0,,,,\n"));
    /* every row parses to 17 fields; second-major order; the script
     * tenant's timeline ends after 2 s */
    for (const char *line = strchr(out, '\n') + 1; *line != '\0'; line = strchr(line, '\n') + 1) {
        int second = rows < 4 ? 0 : rows < 8 ? 1 : 2;
        int t = second < 2 ? rows % 4 : (rows - 8) == 0 ? 0 : (rows - 8) + 1;

        ck_assert_int_eq(csv_parse(line, fields, 20), 17);
        ck_assert_int_eq(atoi(fields[0]), second);
        ck_assert_str_eq(fields[1], expect_tenant[t]);
        rows++;
    }
    ck_assert_int_eq(rows, 3 + 2 + 3 + 3);
    free(out);
    fixture_free(x);
}
END_TEST

/* ------------------------------------------------------------ text */

START_TEST(text_table_aligned)
{
    struct fixture *x = fixture_new();
    int rc;
    char *out = render(rp_report_text, &x->run, &rc), *table, *line;
    size_t width = 0, lines = 0;

    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "push <burst>"));
    ck_assert_ptr_nonnull(strstr(out, "127.0.0.1:8443"));
    ck_assert_ptr_nonnull(strstr(out, "warm-up 0-1 s, burst & decay 1-3 s"));
    table = strstr(out, "\ntenant ");
    ck_assert_ptr_nonnull(table);
    /* header, 3 rows per tenant, 3 for all of them; every line as wide as
     * the header since the last column is right-aligned */
    for (line = table + 1; *line != '\n'; line = strchr(line, '\n') + 1) {
        size_t len = (size_t)(strchr(line, '\n') - line);

        if (width == 0)
            width = len;
        ck_assert_msg(len == width, "%zu != %zu: %.*s", len, width, (int)len, line);
        lines++;
    }
    ck_assert_uint_eq(lines, 1 + 3 * NTEN + 3);
    ck_assert_ptr_nonnull(strstr(table, "p50 ms"));
    ck_assert_ptr_nonnull(strstr(table, "p99.9 ms"));
    ck_assert_ptr_nonnull(strstr(table, "resumed hs"));
    ck_assert_ptr_nonnull(strstr(table, "(all tenants)"));
    /* alpha's burst & decay: 9+4 offered, 14 sent... and its latencies */
    ck_assert_msg(strstr(table, "alpha                        burst & decay") != NULL, "%s", table);
    /* the idle tenant has no latency: dashes, not 0.00 */
    line = strstr(table, "\nidle ");
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(strstr(line, "  -  "));
    ck_assert_ptr_null(strstr(strtok(line + 1, "\n"), "0.00"));
    free(out);
    fixture_free(x);
}
END_TEST

START_TEST(text_control_characters)
{
    struct fixture *x = fixture_new();
    int rc;
    char *out;

    x->series[0].tenant = "bad\x1b[31mname";
    out = render(rp_report_text, &x->run, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_null(strchr(out, '\x1b'));
    ck_assert_ptr_nonnull(strstr(out, "bad?[31mname"));
    free(out);
    fixture_free(x);
}
END_TEST

/* ------------------------------------------------------------ HTML */

START_TEST(html_self_contained)
{
    struct fixture *x = fixture_new();
    int rc;
    char *out = render(rp_report_html, &x->run, &rc), *p;

    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strncmp(out, "<!DOCTYPE html>\n<html", 21) == 0, "%.40s", out);
    ck_assert_ptr_nonnull(strstr(out, "</html>\n"));
    /* two charts for all tenants, two per tenant */
    ck_assert_uint_eq(count(out, "<svg"), 2 + 2 * NTEN);
    ck_assert_uint_eq(count(out, "</svg>"), 2 + 2 * NTEN);
    /* no script, no network: the only URL is the SVG namespace */
    ck_assert_ptr_null(strstr(out, "<script"));
    ck_assert_uint_eq(count(out, "xmlns=\"http://www.w3.org/2000/svg\""), 2 + 2 * NTEN);
    for (p = out; (p = strstr(p, "xmlns=\"http://www.w3.org/2000/svg\"")) != NULL;)
        memset(p, '_', strlen("xmlns=\"http://www.w3.org/2000/svg\""));
    ck_assert_ptr_null(strstr(out, "http://"));
    ck_assert_ptr_null(strstr(out, "https://"));
    ck_assert_ptr_null(strstr(out, "<link"));
    ck_assert_ptr_null(strstr(out, "src="));
    ck_assert_ptr_null(strstr(out, "url("));
    free(out);
    fixture_free(x);
}
END_TEST

START_TEST(html_escapes_and_labels)
{
    struct fixture *x = fixture_new();
    int rc;
    char *out = render(rp_report_html, &x->run, &rc);

    ck_assert_int_eq(rc, 0);
    /* the script tenant is text: in the headings, tables and chart titles */
    ck_assert_uint_ge(count(out, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), 4);
    ck_assert_ptr_null(strstr(out, TENANT_SCRIPT));
    ck_assert_ptr_nonnull(strstr(out, "push &lt;burst&gt;"));
    ck_assert_ptr_nonnull(strstr(out, "comma, &quot;quoted&quot;"));
    /* phase names in the header, the table and every chart's phase bands */
    ck_assert_uint_ge(count(out, "warm-up"), 2 + 2 * NTEN);
    ck_assert_uint_ge(count(out, "burst &amp; decay"), 2 + 2 * NTEN);
    ck_assert_ptr_null(strstr(out, "burst & decay"));
    /* phase boundary at 1 s, dashed, in every chart */
    ck_assert_uint_eq(count(out, "stroke-dasharray=\"4 3\""), 2 + 2 * NTEN);
    /* legends and axes */
    ck_assert_uint_eq(count(out, ">served (2xx)</text>"), 1 + NTEN);
    ck_assert_uint_eq(count(out, ">shed (429+503)</text>"), 1 + NTEN);
    ck_assert_uint_eq(count(out, ">p99.9</text>"), 1);
    ck_assert_uint_eq(count(out, ">p99</text>"), 1 + NTEN);
    ck_assert_uint_ge(count(out, " ms</text>"), 2 + NTEN);
    ck_assert_uint_ge(count(out, ">0s</text>"), 2 + 2 * NTEN);
    ck_assert_uint_ge(count(out, ">3s</text>"), 2 + 2 * NTEN);
    ck_assert_uint_eq(count(out, ">time since start</text>"), 2 + 2 * NTEN);
    /* the idle tenant's latency chart says so rather than drawing zeros */
    ck_assert_uint_eq(count(out, ">no data</text>"), 1);
    /* the summary table: a row per tenant and phase, and totals */
    ck_assert_uint_eq(count(out, "<tr class=\"total\">"), NTEN + 1);
    ck_assert_ptr_nonnull(strstr(out, "<td>0.30</td><td>0.60</td>"));
    free(out);
    fixture_free(x);
}
END_TEST

START_TEST(html_parses_as_xml)
{
    struct fixture *x = fixture_new();
    char path[] = "/tmp/check_replay_report.XXXXXX";
    int fd, rc;
    FILE *f;

    if (system("command -v xmllint >/dev/null 2>&1") != 0) {
        fixture_free(x);
        return; /* optional: libxml2-utils is not installed */
    }
    x->series[3].tenant = "bad \xff\xfe utf-8 & \x01 control";
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    rc = rp_report_html(f, &x->run);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rc, 0);
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "xmllint --noout %s", path);
        rc = system(cmd);
    }
    unlink(path);
    ck_assert_msg(rc == 0, "xmllint rejected the report");
    fixture_free(x);
}
END_TEST

/* ------------------------------------------------------------ SVG */

START_TEST(svg_gaps_are_not_zeros)
{
    const double y[6] = {2.0, NAN, 3.0, 4.0, NAN, 5.0};
    const double none[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    struct rp_svg_line lines[2] = {{"p50", "#123456", 0, y}, {"p99", "red", 1, none}};
    struct rp_svg_chart c = {.title = "t",
                             .y_title = "latency",
                             .scale = RP_SVG_MS,
                             .width = 400,
                             .height = 200,
                             .npoints = 6,
                             .x_max = 6,
                             .nline = 2,
                             .lines = lines};
    char *buf = NULL, *d;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(f);
    rp_svg_chart(f, &c);
    ck_assert_int_eq(fclose(f), 0);
    /* p50: a dot at second 0, a segment over 2..3, a dot at 5 */
    d = strstr(buf, "stroke=\"#123456\"");
    ck_assert_ptr_nonnull(d);
    d = strstr(d, " d=\"");
    ck_assert_ptr_nonnull(d);
    *strchr(d + 4, '"') = '\0';
    ck_assert_msg(count(d, "M") == 3 && count(d, "L") == 1 && count(d, "h0") == 2, "%s", d);
    /* p99 has no value at all: an empty path */
    d = strstr(d + strlen(d) + 1, "stroke=\"red\"");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(strstr(d, " d=\"\""));
    /* log axis over one decade: 1, 2, 5 and 10 ms labelled */
    ck_assert_ptr_nonnull(strstr(buf, ">1 ms</text>"));
    ck_assert_ptr_nonnull(strstr(buf, ">2 ms</text>"));
    ck_assert_ptr_nonnull(strstr(buf, ">5 ms</text>"));
    ck_assert_ptr_nonnull(strstr(buf, ">10 ms</text>"));
    ck_assert_ptr_null(strstr(buf, ">20 ms</text>"));
    ck_assert_ptr_null(strstr(d, "no data"));
    free(buf);
}
END_TEST

START_TEST(svg_text_escaping)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(f);
    rp_svg_text(f, "a<b>&'\"\x01\t\xc3\xa9\xff|\xed\xa0\x80|\xc0\xaf|\xef\xbf\xbf|");
    fputc('#', f);
    rp_svg_text(f, NULL);
    rp_svg_text_cut(f, "h\xc3\xa9llo world", 5);
    fputc('#', f);
    rp_svg_text_cut(f, "h\xc3\xa9llo", 5);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_str_eq(buf, "a&lt;b&gt;&amp;&#39;&quot;&#xFFFD;\t\xc3\xa9&#xFFFD;|"
                          "&#xFFFD;&#xFFFD;&#xFFFD;|&#xFFFD;&#xFFFD;|&#xFFFD;|#"
                          "h\xc3\xa9ll&#x2026;#h\xc3\xa9llo");
    free(buf);
}
END_TEST

/* ------------------------------------------------------------ edges */

START_TEST(empty_runs)
{
    struct rp_run none = {.title = NULL, .duration_s = 0.0};
    struct rp_series empty = {.tenant = NULL, .nsec = 0, .sec = NULL};
    struct rp_run one = {.title = "x", .ntenant = 1, .tenants = &empty};
    writer_fn writers[3] = {rp_report_text, rp_report_csv, rp_report_html};
    int rc;
    char *out;

    for (int w = 0; w < 3; w++) {
        out = render(writers[w], &none, &rc);
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(count(out, "<svg"), 0);
        free(out);
        out = render(writers[w], &one, &rc);
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(count(out, "<svg"), w == 2 ? 4 : 0);
        free(out);
    }
    out = render(rp_report_csv, &none, &rc);
    ck_assert_str_eq(out, CSV_HEADER);
    free(out);
    out = render(rp_report_text, &none, &rc);
    ck_assert_ptr_nonnull(strstr(out, "no tenants"));
    free(out);
    out = render(rp_report_html, &one, &rc);
    ck_assert_uint_eq(count(out, ">no data</text>"), 4);
    free(out);
}
END_TEST

/* Whether printf wrote a NaN or an infinity somewhere in out: "nan" or
 * "inf" not inside a word ("tenant" holds "nan"). */
static int printed_non_finite(const char *out)
{
    const char *words[2] = {"nan", "inf"};

    for (int w = 0; w < 2; w++)
        for (const char *p = out; (p = strstr(p, words[w])) != NULL; p++)
            if (p == out || !isalpha((unsigned char)p[-1]))
                return 1;
    return 0;
}

/* Phases with unknown or inverted times, a run of unknown duration: shown by
 * name, never drawn, no NaN or infinity in the numbers written. */
START_TEST(odd_phases)
{
    struct fixture *x = fixture_new();
    const struct rp_phase_def odd[2] = {{"unknown", NAN, 5.0}, {"inverted", 2.0, -INFINITY}};
    writer_fn writers[3] = {rp_report_text, rp_report_csv, rp_report_html};
    int rc;
    char *out;

    x->run.phases = odd;
    x->run.duration_s = NAN;
    for (int w = 0; w < 3; w++) {
        out = render(writers[w], &x->run, &rc);
        ck_assert_int_eq(rc, 0);
        ck_assert_msg(!printed_non_finite(out), "%s", out);
        if (w != 1) {
            ck_assert_ptr_nonnull(strstr(out, "unknown"));
            ck_assert_ptr_nonnull(strstr(out, "inverted"));
        }
        if (w == 2) {
            ck_assert_uint_eq(count(out, "<svg"), 2 + 2 * NTEN);
            ck_assert_ptr_null(strstr(out, "<title>phase "));
        }
        free(out);
    }
    fixture_free(x);
}
END_TEST

START_TEST(bad_input_is_einval)
{
    struct fixture *x = fixture_new();
    writer_fn writers[3] = {rp_report_text, rp_report_csv, rp_report_html};
    struct rp_run bad;
    int rc;
    char *out;

    for (int w = 0; w < 3; w++) {
        ck_assert_int_eq(writers[w](stdout, NULL), -EINVAL);
        ck_assert_int_eq(writers[w](NULL, &x->run), -EINVAL);
        bad = x->run;
        bad.tenants = NULL;
        out = render(writers[w], &bad, &rc);
        ck_assert_int_eq(rc, -EINVAL);
        ck_assert_str_eq(out, ""); /* nothing written */
        free(out);
        bad = x->run;
        x->series[2].nphase = 1;
        out = render(writers[w], &bad, &rc);
        ck_assert_int_eq(rc, -EINVAL);
        free(out);
        x->series[2].nphase = 2;
        x->series[1].sec = NULL;
        out = render(writers[w], &bad, &rc);
        ck_assert_int_eq(rc, -EINVAL);
        free(out);
        x->series[1].sec = x->sec[1];
    }
    fixture_free(x);
}
END_TEST

START_TEST(write_errors_are_reported)
{
    struct fixture *x = fixture_new();
    writer_fn writers[3] = {rp_report_text, rp_report_csv, rp_report_html};

    for (int w = 0; w < 3; w++) {
        FILE *f = fopen("/dev/full", "w");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(writers[w](f, &x->run), -ENOSPC);
        fclose(f);
    }
    fixture_free(x);
}
END_TEST

/* The largest campaign the report is meant for: 600 s, 20 tenants. */
START_TEST(html_large_run)
{
    enum { SECS = 600, TENANTS = 20 };
    struct rp_cell *cells = calloc(SECS * TENANTS, sizeof(*cells));
    struct rp_series *series = calloc(TENANTS, sizeof(*series));
    struct rp_cell phase[TENANTS][1];
    struct rp_phase_def all = {"all", 0, SECS};
    struct rp_run r = {.title = "big",
                       .duration_s = SECS,
                       .nphase = 1,
                       .phases = &all,
                       .ntenant = TENANTS,
                       .tenants = series};
    char names[TENANTS][24];
    struct rp_hist *h = rp_hist_new();
    int rc;
    char *out;

    ck_assert(cells && series && h);
    for (int i = 0; i < 1000; i++)
        rp_hist_add(h, 1000 + (uint64_t)i * 37);
    memset(phase, 0, sizeof(phase));
    for (int t = 0; t < TENANTS; t++) {
        snprintf(names[t], sizeof(names[t]), "tenant-%02d", t);
        series[t] = (struct rp_series){.tenant = names[t],
                                       .nsec = SECS,
                                       .sec = cells + t * SECS,
                                       .nphase = 1,
                                       .phase = phase[t]};
        for (int i = 0; i < SECS; i++)
            cells[t * SECS + i] = (struct rp_cell){
                .offered = 100, .sent = 100, .ok = 100, .lat = (i + t) % 7 == 0 ? NULL : h};
    }
    out = render(rp_report_html, &r, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(count(out, "<svg"), 2 + 2 * TENANTS);
    ck_assert_uint_eq(count(out, ">tenant-19</h3>"), 1);
    free(out);
    rp_hist_free(h);
    free(series);
    free(cells);
}
END_TEST

static Suite *replay_report_suite(void)
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

    tc = tcase_create("writers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, csv_header_and_rows);
    tcase_add_test(tc, text_table_aligned);
    tcase_add_test(tc, text_control_characters);
    tcase_add_test(tc, html_self_contained);
    tcase_add_test(tc, html_escapes_and_labels);
    tcase_add_test(tc, html_parses_as_xml);
    tcase_add_test(tc, svg_gaps_are_not_zeros);
    tcase_add_test(tc, svg_text_escaping);
    tcase_add_test(tc, empty_runs);
    tcase_add_test(tc, odd_phases);
    tcase_add_test(tc, bad_input_is_einval);
    tcase_add_test(tc, write_errors_are_reported);
    tcase_add_test(tc, html_large_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(replay_report_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
