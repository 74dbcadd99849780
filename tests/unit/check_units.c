/* check_units.c - durations, sizes and rates: every accepted form and every
 * error message, word for word. */
#include "ac_config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "units.h"

struct ok_u64 {
    const char *in;
    uint64_t want;
};

struct bad {
    const char *in;
    const char *msg;
};

/* ------------------------------------------------------------ durations */

static const struct ok_u64 durations[] = {
    {"0", 0},
    {"0.0", 0},
    {"0s", 0},
    {"0us", 0},
    {"1us", 1}, /* non-zero microseconds round up to 1 ms */
    {"500us", 1},
    {"1000us", 1},
    {"1001us", 2},
    {"1500us", 2},
    {"1ms", 1},
    {"250ms", 250},
    {"1.5ms", 2},
    {"2s", 2000},
    {"0.5s", 500},
    {"0.0001s", 1},
    {"1.25s", 1250},
    {"1m", 60000},
    {"1min", 60000},
    {"1.5m", 90000},
    {"1h", 3600000},
    {"1.25h", 4500000},
    {"12h", 43200000},
    {"1d", 86400000},
    {"7d", 604800000},
    {"0.000001d", 87}, /* 86.4 ms, rounded up */
    {"1000000000000000us", 1000000000000ULL},
};

START_TEST(duration_valid)
{
    const struct ok_u64 *t = &durations[_i];
    char err[128] = "untouched";
    uint64_t ms = 12345;

    ck_assert_msg(cr_parse_duration_ms(t->in, &ms, err, sizeof(err)) == 0, "%s: %s", t->in, err);
    ck_assert_msg(ms == t->want, "%s: got %llu, want %llu", t->in, (unsigned long long)ms,
                  (unsigned long long)t->want);
    ck_assert_str_eq(err, "untouched");
}
END_TEST

static const struct bad bad_durations[] = {
    {"", "empty value"},
    {"abc", "expected a number and a unit, e.g. 250ms, 2s, 1h"},
    {".5s", "expected a number and a unit, e.g. 250ms, 2s, 1h"},
    {"+5s", "expected a number and a unit, e.g. 250ms, 2s, 1h"},
    {" 5s", "expected a number and a unit, e.g. 250ms, 2s, 1h"},
    {"-5s", "must not be negative"},
    {"5", "missing unit (use us, ms, s, m, h, d)"},
    {"1.5", "missing unit (use us, ms, s, m, h, d)"},
    {"5x", "unknown unit 'x' (use us, ms, s, m, h, d)"},
    {"5S", "unknown unit 'S' (use us, ms, s, m, h, d)"},
    {"5 s", "unknown unit ' s' (use us, ms, s, m, h, d)"},
    {"5sec", "unknown unit 'sec' (use us, ms, s, m, h, d)"},
    {"1s2", "unknown unit 's2' (use us, ms, s, m, h, d)"},
    {"1.s", "expected digits after '.'"},
    {"1.1234567s", "at most 6 decimal places"},
    {"99999999999999999999s", "number too large"},
    {"1000000000000001us", "number too large"},
    {"1000000000000000d", "duration too large"},
};

START_TEST(duration_invalid)
{
    const struct bad *t = &bad_durations[_i];
    char err[128] = "";
    uint64_t ms = 12345;

    ck_assert_int_eq(cr_parse_duration_ms(t->in, &ms, err, sizeof(err)), CR_EINVAL);
    ck_assert_str_eq(err, t->msg);
    ck_assert_msg(ms == 12345, "%s: output written on error", t->in);
}
END_TEST

START_TEST(duration_null_and_short_err)
{
    char err[8];
    uint64_t ms;

    ck_assert_int_eq(cr_parse_duration_ms(NULL, &ms, err, sizeof(err)), CR_EINVAL);
    ck_assert_str_eq(err, "empty v"); /* truncated, still terminated */
    ck_assert_int_eq(cr_parse_duration_ms("5x", &ms, NULL, 0), CR_EINVAL);
    ck_assert_int_eq(cr_parse_duration_ms("5x", &ms, err, 0), CR_EINVAL);
}
END_TEST

/* ------------------------------------------------------------ sizes */

static const struct ok_u64 sizes[] = {
    {"0", 0},
    {"1", 1},
    {"512", 512},
    {"512b", 512},
    {"512B", 512},
    {"16k", 16384},
    {"16K", 16384},
    {"16kb", 16384},
    {"16KB", 16384},
    {"16kib", 16384},
    {"16KiB", 16384},
    {"1m", 1048576},
    {"1M", 1048576},
    {"1mb", 1048576},
    {"1MiB", 1048576},
    {"1g", 1073741824},
    {"1GB", 1073741824},
    {"1GiB", 1073741824},
    {"0k", 0},
    {"17179869183g", 17179869183ULL << 30},
    {"18446744073709551615", UINT64_MAX},
};

START_TEST(size_valid)
{
    const struct ok_u64 *t = &sizes[_i];
    char err[128] = "untouched";
    uint64_t v = 12345;

    ck_assert_msg(cr_parse_size(t->in, &v, err, sizeof(err)) == 0, "%s: %s", t->in, err);
    ck_assert_msg(v == t->want, "%s: got %llu", t->in, (unsigned long long)v);
    ck_assert_str_eq(err, "untouched");
}
END_TEST

static const struct bad bad_sizes[] = {
    {"", "empty value"},
    {"k", "expected a number and an optional unit, e.g. 512, 16k, 1m"},
    {"abc", "expected a number and an optional unit, e.g. 512, 16k, 1m"},
    {"-1k", "must not be negative"},
    {"1.5m", "must be a whole number (write 1536k, not 1.5m)"},
    {"16q", "unknown unit 'q' (use b, k, m, g)"},
    {"16kbb", "unknown unit 'kbb' (use b, k, m, g)"},
    {"16ib", "unknown unit 'ib' (use b, k, m, g)"},
    {"16ki", "unknown unit 'ki' (use b, k, m, g)"},
    {"16t", "unknown unit 't' (use b, k, m, g)"},
    {"16 k", "unknown unit ' k' (use b, k, m, g)"},
    {"18446744073709551616", "size too large"},
    {"17179869184g", "size too large"},
};

START_TEST(size_invalid)
{
    const struct bad *t = &bad_sizes[_i];
    char err[128] = "";
    uint64_t v = 12345;

    ck_assert_int_eq(cr_parse_size(t->in, &v, err, sizeof(err)), CR_EINVAL);
    ck_assert_str_eq(err, t->msg);
    ck_assert(v == 12345);
}
END_TEST

/* ------------------------------------------------------------ rates */

struct ok_rate {
    const char *in;
    double want;
};

static const struct ok_rate rates[] = {
    {"unlimited", 0},  {"1000/s", 1000}, {"1/sec", 1},     {"1/second", 1},
    {"0.5/s", 0.5},    {"1.5/s", 1.5},   {"60/m", 1},      {"60/min", 1},
    {"120/minute", 2}, {"3600/h", 1},    {"7200/hour", 2}, {"30/min", 0.5},
};

START_TEST(rate_valid)
{
    const struct ok_rate *t = &rates[_i];
    char err[128] = "untouched";
    double v = -1;

    ck_assert_msg(cr_parse_rate(t->in, &v, err, sizeof(err)) == 0, "%s: %s", t->in, err);
    ck_assert_double_eq_tol(v, t->want, 1e-9);
    ck_assert_str_eq(err, "untouched");
}
END_TEST

static const struct bad bad_rates[] = {
    {"", "empty value"},
    {"fast", "expected NUMBER/UNIT, e.g. 100/s or 60/min, or unlimited"},
    {"Unlimited", "expected NUMBER/UNIT, e.g. 100/s or 60/min, or unlimited"},
    {"/s", "expected NUMBER/UNIT, e.g. 100/s or 60/min, or unlimited"},
    {"-1/s", "must not be negative"},
    {"100", "missing '/UNIT' after the number, e.g. 100/s or 60/min"},
    {"100 /s", "missing '/UNIT' after the number, e.g. 100/s or 60/min"},
    {"100s", "missing '/UNIT' after the number, e.g. 100/s or 60/min"},
    {"100/", "missing unit after '/' (use s, min or h)"},
    {"100/x", "unknown unit 'x' (use s, min or h)"},
    {"100/d", "unknown unit 'd' (use s, min or h)"},
    {"100/S", "unknown unit 'S' (use s, min or h)"},
    {"0/s", "must be greater than 0 (use 'unlimited' for no limit)"},
    {"0.0/min", "must be greater than 0 (use 'unlimited' for no limit)"},
    {"1.1234567/s", "at most 6 decimal places"},
    {"1./s", "expected digits after '.'"},
};

START_TEST(rate_invalid)
{
    const struct bad *t = &bad_rates[_i];
    char err[128] = "";
    double v = -1;

    ck_assert_int_eq(cr_parse_rate(t->in, &v, err, sizeof(err)), CR_EINVAL);
    ck_assert_str_eq(err, t->msg);
    ck_assert(v == -1);
}
END_TEST

/* ------------------------------------------------------------ formatting */

START_TEST(format_duration)
{
    static const struct {
        uint64_t ms;
        const char *want;
    } cases[] = {
        {0, "0"},          {1, "1ms"},       {999, "999ms"},    {1500, "1500ms"},  {1000, "1s"},
        {2000, "2s"},      {90000, "90s"},   {60000, "1m"},     {5400000, "90m"},  {3600000, "1h"},
        {43200000, "12h"}, {86400000, "1d"}, {90000000, "25h"}, {604800000, "7d"},
    };
    char buf[32];

    for (size_t i = 0; i < CR_ARRAY_LEN(cases); i++) {
        ck_assert_str_eq(cr_format_duration(cases[i].ms, buf, sizeof(buf)), cases[i].want);
        ck_assert_ptr_eq(cr_format_duration(cases[i].ms, buf, sizeof(buf)), buf);
    }
    /* Truncated into a short buffer, still terminated. */
    ck_assert_str_eq(cr_format_duration(1500, buf, 4), "150");
}
END_TEST

START_TEST(format_round_trip)
{
    static const uint64_t values[] = {
        0,       1,       7,        1000,     1001,      59999,           60000,
        3599999, 3600000, 86399999, 86400000, 604800000, 1000000000000ULL};
    char buf[32], err[128];
    uint64_t back;

    for (size_t i = 0; i < CR_ARRAY_LEN(values); i++) {
        cr_format_duration(values[i], buf, sizeof(buf));
        ck_assert_msg(cr_parse_duration_ms(buf, &back, err, sizeof(err)) == 0, "%s: %s", buf, err);
        ck_assert_msg(back == values[i], "%s read back as %llu", buf, (unsigned long long)back);
    }
}
END_TEST

static Suite *units_suite(void)
{
    Suite *s = suite_create("units");
    TCase *tc = tcase_create("durations");

    tcase_add_loop_test(tc, duration_valid, 0, (int)CR_ARRAY_LEN(durations));
    tcase_add_loop_test(tc, duration_invalid, 0, (int)CR_ARRAY_LEN(bad_durations));
    tcase_add_test(tc, duration_null_and_short_err);
    suite_add_tcase(s, tc);
    tc = tcase_create("sizes");
    tcase_add_loop_test(tc, size_valid, 0, (int)CR_ARRAY_LEN(sizes));
    tcase_add_loop_test(tc, size_invalid, 0, (int)CR_ARRAY_LEN(bad_sizes));
    suite_add_tcase(s, tc);
    tc = tcase_create("rates");
    tcase_add_loop_test(tc, rate_valid, 0, (int)CR_ARRAY_LEN(rates));
    tcase_add_loop_test(tc, rate_invalid, 0, (int)CR_ARRAY_LEN(bad_rates));
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_test(tc, format_duration);
    tcase_add_test(tc, format_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(units_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
