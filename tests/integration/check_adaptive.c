/* check_adaptive.c - upstream.adaptive keeps the upstream at its knee.
 *
 * testup plays a load balancer with a knee (--knee 30 --knee-slope 4:
 * 20 ms up to 30 requests in flight, 4 ms more per request above) and
 * offers 128 streams on each of corral's 2 connections, so corral's pool
 * capacity is 256 and no upstream.max_streams is set. h2load keeps 200
 * requests open through corral (1 worker). testup's own peak in flight
 * (max_inflight) must stay near the knee: at most 1.5 x 30. Without the
 * adaptive limit it is the 200 h2load holds open. The second test halves
 * the knee mid-run (--knee-after) and the limit must follow it down within
 * a few seconds: the limit corral reports in /stats, and testup's peak
 * measured after the move. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KNEE 30
#define KNEE2 15
#define CONNS 2

#define H_STR_(x) #x
#define H_STR(x) H_STR_(x)

static struct h_test *T;

static void setup(void)
{
    T = h_test_begin();
}

static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

/* Starts testup with the knee (and knee_after, "S:K2", or NULL) and corral
 * in front of it; returns when corral's upstream connections are up. */
static void start(const char *knee_after)
{
    pid_t up = knee_after
                   ? h_testup_start(T, T->uport, "--max-streams", "128", "--service-time", "20",
                                    "--knee", H_STR(KNEE), "--knee-slope", "4", "--knee-after",
                                    knee_after, "--quiet", NULL)
                   : h_testup_start(T, T->uport, "--max-streams", "128", "--service-time", "20",
                                    "--knee", H_STR(KNEE), "--knee-slope", "4", "--quiet", NULL);
    ck_assert_msg(up > 0, "testup did not start");
    char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T,
               "workers: 1\n"
               "drain_timeout: 1s\n"
               "log: {error: @DIR@/error.log, level: debug, access: @DIR@/access.log}\n"
               "listeners:\n"
               "  - name: https\n"
               "    address: 127.0.0.1:@PORT@\n"
               "    tls:\n"
               "      certificates:\n"
               "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
               "admin: {address: 127.0.0.1:@PORT2@}\n"
               "tenants: {defaults: {max_wait: 30s, queue: 100000}}\n"
               "upstream:\n"
               "  addresses: [127.0.0.1:@UPORT@]\n"
               "  connections: %d\n"
               "  queue: 100000\n"
               "  adaptive: {enabled: true, min: 4, interval: 100ms}\n"
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: "
               "@CERTS@/client.key, sni: lb.test}\n",
               CONNS));
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s", h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, NULL), 1);
    long long end = h_now_ms() + 5000;
    long open = -1;
    char *js;
    while (h_now_ms() < end) {
        js = h_testup_stats(T, T->uport, false);
        open = js ? h_json_long(js, "connections_open") : -1;
        if (open > CONNS) /* ours and the query's own */
            break;
        h_sleep_ms(50);
    }
    ck_assert_msg(open > CONNS, "corral did not connect upstream (%ld open): %s", open,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_ptr_nonnull(h_testup_stats(T, T->uport, true)); /* max_inflight from 0 */
}

static void load(struct h_adm_load *l, int secs)
{
    const char *args[] = {"-c", "4", "-m", "50", "-D", h_strf(T, "%d", secs), NULL};
    ck_assert_int_eq(h_adm_h2load_start(T, l, T->port, "/", args), 0);
}

/* The adaptive limit of the worker in /stats (its first "limit": the total,
 * the worker's own with one worker). */
static long limit_now(void)
{
    const char *js = strstr(h_admin_stats(T, T->port2), "\"adaptive\":");
    return js ? h_json_long(js, "limit") : -1;
}

START_TEST(holds_the_knee)
{
    start(NULL);
    struct h_adm_load l;
    load(&l, 6);
    ck_assert_int_eq(h_adm_h2load_wait(T, &l, 30000), 0);
    char *js = h_testup_stats(T, T->uport, false);
    ck_assert_ptr_nonnull(js);
    long peak = h_json_long(js, "max_inflight"), lim = limit_now();
    fprintf(stderr, "check_adaptive knee %d: testup max_inflight %ld, limit %ld, %ld of %ld ok\n",
            KNEE, peak, lim, l.succeeded, l.started);
    ck_assert_msg(peak > KNEE / 2 && peak <= KNEE * 3 / 2,
                  "testup peaked at %ld in flight, its knee is %d (limit %ld; %s)", peak, KNEE, lim,
                  js);
    ck_assert_msg(lim >= 4 && lim <= KNEE * 3 / 2, "limit %ld", lim);
    /* it served: about the knee's throughput (30 per 20 ms) over 6 s */
    ck_assert_msg(l.succeeded > 3000, "%ld of %ld requests served", l.succeeded, l.started);
    ck_assert(h_file_contains(T->error_log, "adaptive limit"));
    char *st = h_admin_stats(T, T->port2);
    const char *mr = strstr(st, "\"min_rtt_ms\":");
    double min_rtt = mr ? strtod(mr + strlen("\"min_rtt_ms\":"), NULL) : -1;
    ck_assert_msg(min_rtt >= 15 && min_rtt < 30, "min rtt %.3f ms, not ~20 ms: %.300s", min_rtt,
                  mr ? mr : st);
    /* /stats stays JSON with the new object in it */
    char *py[] = {"python3", "-c",
                  "import json,sys; d=json.load(sys.stdin); "
                  "print(d['total']['adaptive']['limit'], d['workers'][0]['adaptive']['gradient'])",
                  NULL};
    struct h_run pr;
    ck_assert_int_eq(h_run_in(T, py, st, 10000, &pr), 0);
    ck_assert_msg(pr.exit_code == 0, "/stats is not JSON: %s\n%s", pr.err, st);
}
END_TEST

START_TEST(follows_the_knee_down)
{
    start("5:" H_STR(KNEE2));
    struct h_adm_load l;
    load(&l, 10);
    /* the knee moves at 5 s (testup's clock, started first); at 8 s the
     * limit has followed */
    h_sleep_ms(4500);
    long before = limit_now();
    h_sleep_ms(3500);
    long after = limit_now();
    ck_assert_ptr_nonnull(h_testup_stats(T, T->uport, true)); /* peak from here */
    ck_assert_int_eq(h_adm_h2load_wait(T, &l, 30000), 0);
    char *js = h_testup_stats(T, T->uport, false);
    long peak = h_json_long(js, "max_inflight");
    fprintf(stderr, "check_adaptive knee %d -> %d: limit %ld -> %ld, testup peak after %ld\n", KNEE,
            KNEE2, before, after, peak);
    ck_assert_msg(after < before && after <= KNEE2 * 3 / 2, "limit %ld -> %ld, knee %d -> %d",
                  before, after, KNEE, KNEE2);
    ck_assert_msg(peak > KNEE2 / 2 && peak <= KNEE2 * 3 / 2,
                  "testup peaked at %ld in flight, its knee is %d", peak, KNEE2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("adaptive");
    TCase *tc = tcase_create("knee");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, holds_the_knee);
    tcase_add_test(tc, follows_the_knee_down);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
