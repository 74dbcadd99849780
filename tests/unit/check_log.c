/* check_log.c - the access log's tail sampling (cr_log_sample): which
 * requests are always kept, and the exact 1-in-N of the rest. */
#include "ac_config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "log.h"

static char *keep[] = {"vip", "ops"};

static const struct cr_cfg_log cfg10 = {
    .sample = 10, .slow_threshold_ms = 500, .keep_tenants = keep, .nkeep_tenants = 2};

static struct cr_access req(int status, const char *reason, double total_ms, const char *tenant)
{
    struct cr_access a = {
        .status = status, .reason = reason, .total_ms = total_ms, .tenant = tenant};
    return a;
}

START_TEST(always_kept)
{
    uint64_t seq = 0;
    const struct cr_access kept[] = {
        req(0, NULL, 1, "bulk"),   /* no response */
        req(500, NULL, 1, "bulk"), /* the upstream's 5xx */
        req(502, "upstream unavailable", 1, "bulk"),
        req(429, "rate limited", 1, "bulk"), /* a shed */
        req(503, "queue full", 1, "bulk"),
        req(413, "request body too large", 1, "bulk"), /* corral's own 4xx */
        req(200, NULL, 500, "bulk"),                   /* slow: at the threshold */
        req(200, NULL, 1, "vip"),
        req(404, NULL, 1, "ops"),
    };
    for (size_t i = 0; i < CR_ARRAY_LEN(kept); i++)
        ck_assert_msg(cr_log_sample(&cfg10, &kept[i], &seq) == 1, "case %zu", i);
    ck_assert_uint_eq(seq, 0); /* none of them counts against the 1 in N */
}
END_TEST

START_TEST(one_in_n_of_the_rest)
{
    uint64_t seq = 0;
    unsigned logged = 0;
    /* 200s, the upstream's own 4xx (no reason), fast, other tenants */
    for (int i = 0; i < 1000; i++) {
        struct cr_access a = req(i % 3 ? 200 : 404, NULL, 499.9, i % 2 ? "bulk" : NULL);
        uint32_t rate = cr_log_sample(&cfg10, &a, &seq);
        ck_assert(rate == 0 || rate == 10);
        logged += rate ? 1 : 0;
    }
    ck_assert_uint_eq(logged, 100);
    struct cr_cfg_log all = cfg10;
    all.sample = 1;
    struct cr_access a = req(200, NULL, 1, "bulk");
    ck_assert_uint_eq(cr_log_sample(&all, &a, &seq), 1);
    all.slow_threshold_ms = 0; /* nothing is slow */
    all.sample = 2;
    a.total_ms = 1e9;
    seq = 1;
    ck_assert_uint_eq(cr_log_sample(&all, &a, &seq), 0);
    ck_assert_uint_eq(cr_log_sample(&all, &a, &seq), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("sample");
    tcase_add_test(tc, always_kept);
    tcase_add_test(tc, one_in_n_of_the_rest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
