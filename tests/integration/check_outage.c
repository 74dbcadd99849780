/* check_outage.c - short load-balancer outages and connections closed
 * under a request (issue 14).
 *
 *   - The upstream (tests/testup/testup) is SIGKILLed under a steady load of
 *     GETs and back on the same port 2.5 s later: with max_wait 5s and the
 *     default outage_wait, every request gets 200 (queued in admission
 *     while the pool reconnects). For both upstream protocols.
 *   - The upstream stays down longer than outage_wait: what waited gets
 *     503 with Retry-After when the window ends, and later requests get it
 *     at once; nothing hangs.
 *
 * Clients: h2load at a fixed rate (--rps), curl. Loopback only; every wait
 * is bounded. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ------------------------------------------------------------ helpers */

/* One worker, logs in DIR, one listener on @PORT@, the upstream on
 * T->uport with the given protocol and extra lines. */
static pid_t start_corral(const char *protocol, const char *extra)
{
    const char *text = h_strf(T,
                              "workers: 1\n"
                              "drain_timeout: 1s\n"
                              "log: {error: @DIR@/error.log, level: info, "
                              "access: @DIR@/access.log}\n"
                              "listeners:\n"
                              "  - name: https\n"
                              "    address: 127.0.0.1:@PORT@\n"
                              "    tls:\n"
                              "      certificates:\n"
                              "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                              "upstream:\n"
                              "  addresses: [127.0.0.1:%d]\n"
                              "  protocol: %s\n"
                              "  connections: %d\n"
                              "%s"
                              "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                              "key: @CERTS@/client.key, sni: lb.test}\n",
                              T->uport, protocol, strcmp(protocol, "h2") == 0 ? 2 : 16, extra);
    char *cfg = h_config_write(T, "corral.yaml", text);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start serving on port %d: stderr: %s | error log: %s",
                  T->port, h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    return m;
}

static pid_t start_up(void)
{
    pid_t pid = h_up_start(T, T->uport, true, NULL);
    ck_assert_msg(pid > 0, "testup did not start on port %d: %s", T->uport,
                  h_file_tail(T, h_strf(T, "%s/testup-%d.log", T->dir, T->uport), 1500));
    return pid;
}

static struct h_up_stats stats(pid_t up)
{
    struct h_up_stats st;
    ck_assert_msg(h_up_stats(T, up, T->uport, &st) == 0, "cannot read testup's counters");
    return st;
}

/* Waits until the pool's connections are open and have served (a few
 * GETs through corral answered 200). */
static void warm_up(pid_t up, long conns)
{
    struct h_up_stats st;
    ck_assert_msg(h_up_wait_open(T, up, T->uport, conns, 3000, &st),
                  "testup: %ld connection(s) open, expected %ld | error log: %s", st.open, conns,
                  h_file_tail(T, T->error_log, 1500));
    for (int i = 0; i < 4; i++) {
        struct h_http r;
        h_curl_edge(T, &r, T->port, "/warm", NULL);
        ck_assert_msg(r.status == 200, "warm-up GET: HTTP %d (%s)", r.status, r.err);
    }
}

/* The access log's GETs not answered 200: path, status and reason. */
static const char *failures(void)
{
    struct h_adm_entry *e;
    int n = h_adm_access(T, &e);
    const char *out = "";
    for (int i = 0, shown = 0; i < n && shown < 10; i++)
        if (e[i].status != 200 && strcmp(e[i].path, "/delay/3000") != 0) {
            out = h_strf(T, "%s[%s %d %s] ", out, e[i].path, e[i].status, e[i].reason);
            shown++;
        }
    return out;
}

/* ------------------------------------------------------------ short outage */

/* 60 GET/s for 6 s (h2load, 4 clients at 15 req/s each, up to 64 streams
 * each so that waiting requests do not slow the rate); the upstream is
 * SIGKILLed 1.5 s in and back on the same port 2.5 s later. Every request
 * gets 200: those that arrive meanwhile (and those in flight, GETs, retried)
 * wait in admission while the pool reconnects; POSTs in flight when it
 * dies get 502 at once (they may have had an effect). max_wait is 5 s (the
 * default tenant's, as outage_wait). */
static void short_outage(const char *protocol)
{
    pid_t up = start_up();
    start_corral(protocol, "");
    warm_up(up, strcmp(protocol, "h2") == 0 ? 2 : 16);

    struct h_adm_load l;
    const char *args[] = {"-c", "4", "-m", "64", "--rps", "15", "-n", "360", NULL};
    ck_assert_int_eq(h_adm_h2load_start(T, &l, T->port, "/delay/20", args), 0);
    /* and two POSTs in flight upstream when it dies: never replayed */
    static const char *const post_args[] = {"-X", "POST", "--data-binary", "payload", NULL};
    struct h_up_bg post[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(h_up_bg_curl(T, &post[i], T->port, "/delay/3000", post_args), 0);
    h_sleep_ms(1500);
    struct h_up_stats s = stats(up);
    ck_assert_msg(s.requests > 4 + 30 && s.inflight >= 2,
                  "the load is not flowing: %ld requests upstream, %ld in flight", s.requests,
                  s.inflight);
    h_up_kill(T, up);
    long long killed = h_now_ms();
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(h_up_bg_wait(T, &post[i], 3000) == 0, "POST %d hangs", i);
        double after = post[i].t0_ms + post[i].secs * 1000 - killed;
        ck_assert_msg(post[i].status == 502 && after < 1000,
                      "POST %d in flight when the upstream died: HTTP %d %.0f ms after the "
                      "kill (expected 502 at once)",
                      i, post[i].status, after);
    }
    h_sleep_ms(2500);
    up = start_up();
    long long back = h_now_ms();

    int rc = h_adm_h2load_wait(T, &l, 15000);
    ck_assert_msg(rc == 0, "h2load did not finish: %s", h_file_tail(T, l.out_path, 1200));
    fprintf(stderr,
                "outage %s: down %lld ms; %ld done, %ld 2xx, %ld 503, %ld other, "
                "%ld errored; slowest %.0f ms\n",
                protocol, back - killed, l.done, l.n2xx, l.n503, l.nother, l.errored, l.max_ms);
    ck_assert_msg(l.done == 360 && l.n2xx == 360 && l.errored == 0,
                  "%s upstream down %lld ms under 60 GET/s: %ld of 360 done, %ld 2xx, %ld 503, "
                  "%ld other, %ld errored (expected all 2xx): %s",
                  protocol, back - killed, l.done, l.n2xx, l.n503, l.nother, l.errored,
                  failures());
    ck_assert_msg(l.max_ms < 5000, "a request took %.0f ms (max_wait is 5 s)", l.max_ms);
}

START_TEST(short_outage_h2)
{
    short_outage("h2");
}
END_TEST

START_TEST(short_outage_http11)
{
    short_outage("http/1.1");
}
END_TEST

/* ------------------------------------------------------------ long outage */

/* outage_wait 1s, max_wait 5s; the upstream dies and stays down. A GET
 * sent at once waits for the window (about 1 s) and gets 503 with
 * Retry-After; GETs after the window get 503 with Retry-After at once.
 * Nothing hangs. */
static void long_outage(const char *protocol)
{
    pid_t up = start_up();
    start_corral(protocol, "  outage_wait: 1s\n");
    warm_up(up, strcmp(protocol, "h2") == 0 ? 2 : 16);
    h_up_kill(T, up);
    long long killed = h_now_ms();

    struct h_adm_xfer x[1];
    const char *paths1[] = {"/during"};
    h_adm_curl_seq(T, T->port, 1, paths1, NULL, NULL, x);
    long long ms = h_now_ms() - killed;
    ck_assert_msg(x[0].status == 503 && x[0].retry_after >= 1,
                  "a GET during the outage window: HTTP %d, Retry-After %d (expected 503 with "
                  "Retry-After) | %s",
                  x[0].status, x[0].retry_after, h_file_tail(T, T->error_log, 800));
    ck_assert_msg(ms >= 500 && ms < 2500,
                  "the GET sent as the upstream died was answered after %lld ms (expected about "
                  "1 s, outage_wait)",
                  ms);

    const char *paths[] = {"/after-1", "/after-2", "/after-3", "/after-4"};
    struct h_adm_xfer y[4];
    for (int i = 0; i < 4; i++) {
        long long t0 = h_now_ms();
        h_adm_curl_seq(T, T->port, 1, paths + i, NULL, NULL, &y[i]);
        long long took = h_now_ms() - t0;
        ck_assert_msg(y[i].status == 503 && y[i].retry_after >= 1,
                      "GET %d after the window: HTTP %d, Retry-After %d (expected 503 with "
                      "Retry-After)",
                      i, y[i].status, y[i].retry_after);
        ck_assert_msg(took < 1000 && y[i].time_s < 0.5,
                      "GET %d after the window took %.3f s: not a fast answer", i, y[i].time_s);
        h_sleep_ms(300);
    }
}

START_TEST(long_outage_fast_503_h2)
{
    long_outage("h2");
}
END_TEST

START_TEST(long_outage_fast_503_http11)
{
    long_outage("http/1.1");
}
END_TEST

static Suite *outage_suite(void)
{
    Suite *s = suite_create("outage");
    TCase *tc = tcase_create("outage");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, short_outage_h2);
    tcase_add_test(tc, short_outage_http11);
    tcase_add_test(tc, long_outage_fast_503_h2);
    tcase_add_test(tc, long_outage_fast_503_http11);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(outage_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
