/* check_sendrate.c - send_timeout and send_min_rate against clients that
 * read steadily but slowly, on the real binary (testup as the upstream,
 * steady.py as the client):
 *   - a client reading at a modest, steady rate (steady.py) gets
 *     its whole response over HTTP/1.1 and HTTP/2, although corral's
 *     socket is not writable again for far longer than send_timeout
 *     (the kernel's send buffer, autotuned to megabytes, must drain a
 *     third first): what the client's TCP acknowledged decides;
 * drip.py (check_h2abuse, check_h1hostile) checks that the clients that
 * move less than send_min_rate are still cut. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* testup and corral with one worker, one upstream HTTP/2 connection and
 * the http: lines given. */
static void start(const char *http)
{
    pid_t up = h_testup_start(T, T->uport, (char *)NULL);
    ck_assert_msg(up > 0, "testup did not start: %s",
                  h_file_tail(T, h_strf(T, "%s/testup-%d.log", T->dir, T->uport), 1500));
    char *yaml = h_strf(T,
                        "workers: 1\n"
                        "drain_timeout: 1s\n"
                        "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
                        "listeners:\n"
                        "  - name: https\n"
                        "    address: 127.0.0.1:@PORT@\n"
                        "    tls:\n"
                        "      certificates:\n"
                        "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                        "upstream:\n"
                        "  addresses: [127.0.0.1:@UPORT@]\n"
                        "  protocol: h2\n"
                        "  connections: 1\n"
                        "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                        "key: @CERTS@/client.key, sni: lb.test}\n"
                        "http:\n%s",
                        http);
    char *cfg = h_config_write(T, "corral.yaml", yaml);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s | %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, NULL), 1);
}

/* ------------------------------------------------------------ steady readers */

/* Runs steady.py MODE STREAMS STEP EVERY HOLD BYTES against corral; its
 * stdout. */
static char *steady(const char *mode, int streams, int step, const char *every, int hold_s,
                    long bytes)
{
    char *script = h_strf(T, "%s/tests/integration/steady.py", T->srcdir);
    char *const argv[] = {"python3",
                          script,
                          h_strf(T, "%d", T->port),
                          (char *)mode,
                          h_strf(T, "%d", streams),
                          h_strf(T, "%d", step),
                          (char *)every,
                          h_strf(T, "%d", hold_s),
                          h_strf(T, "%ld", bytes),
                          NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, (hold_s + 10) * 1000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "steady.py %s: exit %d: %s | %s", mode,
                  r.exit_code, r.out, r.err);
    return r.out;
}

/* A client reading 6.5 MB at 1 MB/s, steadily (steady.py: 100 KB off its
 * socket every 0.1 s), far above send_min_rate, with send_timeout and
 * body_timeout 500ms: corral's writes block once the buffers are full, and
 * its socket is writable again only once a third of its send buffer (up
 * to megabytes, autotuned) has drained, longer than the timeouts. The
 * connection used to be closed ("client not reading") when the wait for
 * writability timed out, send_timeout (HTTP/1.1) or body_timeout (HTTP/2)
 * after the write blocked: nothing looked at what the client had
 * acknowledged meanwhile. */
static void steady_reader_completes(const char *mode)
{
    start("  send_timeout: 500ms\n  body_timeout: 500ms\n");
    char *out = steady(mode, 1, 100000, "0.1", 30, 6500000);
    ck_assert_msg(strstr(out, "stream 1 complete") && strstr(out, "done"),
                  "%s: the steady reader did not get its response: %s | %s", mode, out,
                  h_file_tail(T, T->access_log, 600));
    const char *const cut[] = {"client not reading", NULL};
    ck_assert_msg(!h_file_has_line(T->access_log, cut), "cut: %s",
                  h_file_tail(T, T->access_log, 600));
}

START_TEST(steady_reader_completes_h1)
{
    steady_reader_completes("h1");
}
END_TEST

START_TEST(steady_reader_completes_h2)
{
    steady_reader_completes("h2");
}
END_TEST

/* How many of steady.py's lines in out begin with what */
static int count_lines(const char *out, const char *what)
{
    int n = 0;
    size_t len = strlen(what);
    for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, what, len) == 0;
    return n;
}

/* HTTP/2, 8 streams of 2 MB, every window opened wide (2^30), and the
 * client reading its socket at 20 KB/s: send_min_rate 8k over
 * send_timeout 2s asks 16 KB per stream, 128 KB of the connection in each
 * 2 s (64 KB/s). No window holds the responses (they wait in corral's
 * buffers, behind the socket), so no stream counted as held: they used to
 * keep their upstream streams for as long as the connection clock allowed
 * (16 KB per body_timeout, 30 s, for all of them). Each is reset ("client
 * send stalled") and its upstream stream let go within seconds. (The
 * client sees the resets late: they queue behind what it has not read.) */
START_TEST(open_windows_slow_socket_streams_reset)
{
    start("  send_timeout: 2s\n  send_min_rate: 8k\n");
    char *script = h_strf(T, "%s/tests/integration/steady.py", T->srcdir);
    char *const argv[] = {"python3", script, h_strf(T, "%d", T->port), "h2", "8", "2000", "0.1",
                          "30",      "2000000", NULL};
    pid_t cl = h_spawn(T, argv, h_path(T, "steady.out"), h_path(T, "steady.err"));
    ck_assert_int_gt(cl, 0);
    long inflight = -1;
    for (long long end = h_now_ms() + 5000; inflight != 8 && h_now_ms() < end; h_sleep_ms(50))
        inflight = h_json_long(h_testup_stats(T, T->uport, false), "inflight");
    ck_assert_msg(inflight == 8, "the 8 requests did not reach testup: %ld in flight", inflight);
    long long t0 = h_now_ms();
    for (long long end = t0 + 12000; inflight != 0 && h_now_ms() < end; h_sleep_ms(100))
        inflight = h_json_long(h_testup_stats(T, T->uport, false), "inflight");
    ck_assert_msg(inflight == 0, "%ld upstream requests still held after 12 s: %s | %s", inflight,
                  h_file_tail(T, h_path(T, "steady.out"), 300),
                  h_file_tail(T, T->access_log, 600));
    h_signal(cl, SIGKILL);
    const char *const stalled[] = {"client send stalled", NULL};
    ck_assert_msg(h_wait_file_lines(T->access_log, stalled, 8, 5000), "not logged as stalled: %s",
                  h_file_tail(T, T->access_log, 800));
    fprintf(stderr, "sendrate: upstream let go %lld ms after the 8 requests were in flight\n",
            h_now_ms() - t0);
}
END_TEST

/* The same 8 streams of 1 MB to a client reading at 1 MB/s, 16 times the
 * connection's due: all complete, none reset. */
START_TEST(open_windows_fast_socket_streams_complete)
{
    start("  send_timeout: 2s\n  send_min_rate: 8k\n");
    char *out = steady("h2", 8, 100000, "0.1", 30, 1000000);
    ck_assert_msg(count_lines(out, "stream ") == 8 && strstr(out, "done") &&
                      !strstr(out, " reset "),
                  "want all 8 streams complete: %s | %s", out, h_file_tail(T, T->access_log, 800));
}
END_TEST

/* HTTP/2 with the default windows (64 KB, given back as read, as browsers
 * do), 6 streams of 600 KB each depending exclusively on the one before
 * (RFC 7540 priorities: sent one after the other), the client reading at
 * 1 MB/s, send_timeout 2s: the later streams get no byte for seconds,
 * held by the connection's window that the earlier ones use, while the
 * connection moves at full speed. Counting the connection's window
 * against each stream reset them ("client send stalled"); judged by the
 * connection's TCP, all complete. */
START_TEST(chained_streams_on_a_fast_connection_complete)
{
    start("  send_timeout: 2s\n");
    char *out = steady("h2chain", 6, 100000, "0.1", 30, 600000);
    ck_assert_msg(count_lines(out, "stream ") == 6 && strstr(out, "done") &&
                      !strstr(out, " reset "),
                  "want all 6 streams complete: %s | %s", out, h_file_tail(T, T->access_log, 800));
    const char *const stalled[] = {"client send stalled", NULL};
    ck_assert_int_eq(h_file_count_lines(T->access_log, stalled), 0);
}
END_TEST

/* ------------------------------------------------------------ suite */

int main(void)
{
    h_init();
    Suite *s = suite_create("sendrate");
    TCase *steady = tcase_create("steady");
    tcase_add_checked_fixture(steady, setup, teardown);
    tcase_set_timeout(steady, 120);
    tcase_add_test(steady, steady_reader_completes_h1);
    tcase_add_test(steady, steady_reader_completes_h2);
    suite_add_tcase(s, steady);
    TCase *conn = tcase_create("connection");
    tcase_add_checked_fixture(conn, setup, teardown);
    tcase_set_timeout(conn, 120);
    tcase_add_test(conn, open_windows_slow_socket_streams_reset);
    tcase_add_test(conn, open_windows_fast_socket_streams_complete);
    tcase_add_test(conn, chained_streams_on_a_fast_connection_complete);
    suite_add_tcase(s, conn);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
