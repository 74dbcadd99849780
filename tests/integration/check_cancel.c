/* check_cancel.c - the upstream cap counts the work the upstream does, also
 * for requests their clients gave up on.
 *
 * corral runs 1 worker in front of testup (--max-streams 128, 20 ms service
 * time, --work-after-reset: a reset or closed request stays in flight there
 * until its answer would have been ready, as behind a load balancer whose
 * backend does not see the reset), with upstream.max_streams 32. cancel.py
 * sends requests and resets each 5 ms after sending it, for CANCEL_S
 * seconds, while flood.py's probe asks steadily. testup's own peak in flight
 * (max_inflight) must stay at or below 32, and the probe must be served.
 * Before the fix corral freed a slot at the client's reset and testup saw
 * 66 in flight here (172 in the issue). Once for an HTTP/2 upstream, once
 * for HTTP/1.1 (32 connections; there main recycled the connection of a
 * cancelled request and testup peaked at 30: a regression check). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP 32
#define CANCEL_S 3
#define PROBE_RATE 40

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

static const char *script(const char *name)
{
    return h_strf(T, "%s/tests/integration/%s", T->srcdir, name);
}

/* Starts testup and corral (drain_timeout drain); returns the master. */
static pid_t start(const char *protocol, int connections, const char *drain)
{
    pid_t up = h_testup_start(T, T->uport, "--max-streams", "128", "--service-time", "20",
                              "--work-after-reset", "--quiet", NULL);
    ck_assert_msg(up > 0, "testup did not start");
    char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T,
               "workers: 1\n"
               "drain_timeout: %s\n"
               "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
               "http: {h2_max_resets: 1000000}\n"
               "listeners:\n"
               "  - name: https\n"
               "    address: 127.0.0.1:@PORT@\n"
               "    tls:\n"
               "      certificates:\n"
               "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
               "upstream:\n"
               "  addresses: [127.0.0.1:@UPORT@]\n"
               "  protocol: %s\n"
               "  connections: %d\n"
               "  max_streams: %d\n"
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: "
               "@CERTS@/client.key, sni: lb.test}\n",
               drain, protocol, connections, CAP));
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s", h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, NULL), 1);
    /* every upstream connection up: capacity is known from the start */
    long long end = h_now_ms() + 5000;
    long open = -1;
    char *js;
    while (h_now_ms() < end) {
        js = h_testup_stats(T, T->uport, false);
        open = js ? h_json_long(js, "connections_open") : -1;
        if (open > connections) /* ours and the query's own */
            break;
        h_sleep_ms(50);
    }
    ck_assert_msg(open > connections, "corral did not connect upstream (%ld open): %s", open,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_ptr_nonnull(h_testup_stats(T, T->uport, true)); /* max_inflight from 0 */
    return m;
}

static void run(const char *protocol, int connections)
{
    start(protocol, connections, "1s");
    char *cout = h_path(T, "cancel.out"), *cerr = h_path(T, "cancel.err");
    char *cargv[] = {"python3", (char *)script("cancel.py"), h_strf(T, "%d", T->port),
                     h_strf(T, "%d", CANCEL_S), "conns=2", "rate=2000", "after_ms=5", NULL};
    pid_t c = h_spawn(T, cargv, cout, cerr);
    ck_assert_msg(c > 0, "cannot start cancel.py");
    ck_assert_msg(h_wait_file_line(cout, (const char *const[]){"cancelling", NULL}, 10000),
                  "cancel.py did not start: %s", h_file_tail(T, cerr, 1000));
    char *pargv[] = {"python3", (char *)script("flood.py"), "probe", h_strf(T, "%d", T->port),
                     h_strf(T, "%d", PROBE_RATE), h_strf(T, "%d", CANCEL_S), NULL};
    struct h_run pr;
    ck_assert_int_eq(h_run(T, pargv, (CANCEL_S + 20) * 1000, &pr), 0);
    int status;
    ck_assert_msg(h_wait_exit(c, 15000, &status) == 0, "cancel.py did not end");
    const char *line = strstr(h_file_tail(T, cout, 2000), "cancel sent=");
    ck_assert_msg(line != NULL, "cancel.py printed no summary: %s", h_file_tail(T, cerr, 1000));
    long sent = strtol(line + strlen("cancel sent="), NULL, 10);
    const char *rs = strstr(line, "reset=");
    long reset = rs ? strtol(rs + 6, NULL, 10) : -1;
    /* the clients gave up on most of what they asked: the test tests cancels */
    ck_assert_msg(sent > 1000 && reset > sent / 2, "too few cancels: %s", line);

    /* testup's own count, its cancelled work included, after the last of it ended */
    h_sleep_ms(200);
    char *js = h_testup_stats(T, T->uport, false);
    ck_assert_ptr_nonnull(js);
    long peak = h_json_long(js, "max_inflight");
    ck_assert_msg(peak > 0 && peak <= CAP,
                  "%s upstream: %ld in flight at testup, corral's cap is %d (%s | %s)",
                  protocol, peak, CAP, js, line);
    const char *pl = pr.out ? strstr(pr.out, "probe n=") : NULL;
    int n = 0, ok = 0, fail = 0;
    ck_assert_msg(pl && sscanf(pl, "probe n=%d ok=%d fail=%d", &n, &ok, &fail) == 3,
                  "the probe did not run: %s %s", pr.out ? pr.out : "", pr.err ? pr.err : "");
    /* the steady client is served (all of it: a cancelled request's slot
     * comes back when its upstream work ends, ~20 ms) */
    ck_assert_msg(n >= PROBE_RATE * CANCEL_S / 2 && fail == 0, "the probe was not served: %s",
                  pl);

    fprintf(stderr, "check_cancel %s: testup max_inflight %ld (cap %d); %s; %.60s\n", protocol,
            peak, CAP, line, pl);
}

START_TEST(cancel_h2_holds_cap)
{
    run("h2", 1);
}
END_TEST

START_TEST(cancel_h1_holds_cap)
{
    run("http/1.1", CAP);
}
END_TEST

/* A worker told to stop (SIGTERM; a reload's old generation the same)
 * whose clients are all gone but which still carries a request its client
 * gave up on, left to finish upstream (it keeps its slot): the worker ends
 * when that exchange ends, not at drain_timeout with a "drain timeout"
 * warning about nothing (before, nothing looked again once the last stream
 * ended, and the worker waited out the whole drain_timeout). */
static void drain_after_cancel(const char *protocol)
{
    pid_t m = start(protocol, 1, "10s");
    struct h_http r;
    const char *args[] = {"--max-time", "0.5", NULL};
    h_curl_edge(T, &r, T->port, "/delay/1500", args);
    ck_assert_msg(r.exit_code == 28, "curl should have given up (exit 28), got %d, status %d",
                  r.exit_code, r.status);
    /* barrier: corral let go of the client (its access-log line) */
    ck_assert_msg(h_wait_file_line(T->access_log, (const char *const[]){"/delay/1500", NULL}, 5000),
                  "no access-log line for the cancelled request: %s",
                  h_file_tail(T, T->error_log, 1000));
    long long t0 = h_now_ms();
    ck_assert_int_eq(h_signal(m, SIGTERM), 0);
    int status;
    ck_assert_msg(h_wait_exit(m, 30000, &status) == 0, "corral did not exit within 30 s");
    long long took = h_now_ms() - t0;
    ck_assert_msg(took < 8000 && !h_file_contains(T->error_log, "drain timeout"),
                  "%s upstream: the stop took %lld ms (the upstream ended the cancelled request "
                  "about 1 s after the SIGTERM; drain_timeout 10 s): %s",
                  protocol, took, h_file_tail(T, T->error_log, 1500));
    fprintf(stderr, "check_cancel drain %s: stopped in %lld ms\n", protocol, took);
}

START_TEST(drain_ends_with_the_cancelled_exchange)
{
    drain_after_cancel(_i == 0 ? "h2" : "http/1.1");
}
END_TEST

/* The same with the upstream slower than drain_timeout: the worker stops
 * at drain_timeout with the cancelled exchange still on its upstream
 * stream, held by nobody but the stream. Its exit must not lose it: in the
 * sanitizer build (tools/run-tests step 4) the worker's leak check runs at
 * that moment, and a request no longer reachable from the pool would be
 * reported. */
START_TEST(drain_timeout_with_a_cancelled_exchange_left)
{
    const char *protocol = _i == 0 ? "h2" : "http/1.1";
    pid_t m = start(protocol, 1, "1s");
    struct h_http r;
    const char *args[] = {"--max-time", "0.5", NULL};
    h_curl_edge(T, &r, T->port, "/delay/20000", args);
    ck_assert_int_eq(r.exit_code, 28);
    ck_assert_msg(h_wait_file_line(T->access_log, (const char *const[]){"/delay/20000", NULL}, 5000),
                  "no access-log line for the cancelled request");
    long long t0 = h_now_ms();
    ck_assert_int_eq(h_signal(m, SIGTERM), 0);
    int status;
    ck_assert_msg(h_wait_exit(m, 15000, &status) == 0, "corral did not exit within 15 s");
    long long took = h_now_ms() - t0;
    ck_assert_msg(took < 6000 && h_file_contains(T->error_log, "drain timeout: closing 0"),
                  "%s upstream: stopped in %lld ms (drain_timeout 1 s): %s", protocol, took,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "corral exited with status %d",
                  status);
}
END_TEST

static Suite *cancel_suite(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc = tcase_create("cap");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cancel_h2_holds_cap);
    tcase_add_test(tc, cancel_h1_holds_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("drain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, drain_ends_with_the_cancelled_exchange, 0, 2);
    tcase_add_loop_test(tc, drain_timeout_with_a_cancelled_exchange_left, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(cancel_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
