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
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
