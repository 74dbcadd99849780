/* check_edge.c - corral behind an L4 balancer, and its access log kept
 * readable (issue 15).
 *
 *   - Tail sampling (log.sample, slow_threshold, keep_tenants): with one
 *     worker the 1-in-N choice is a counter, so the counts are exact: every
 *     5xx, shed (429) and slow request and every request of a kept tenant
 *     is logged with "sample_rate":1, and of 100 plain 200s exactly 10,
 *     each with "sample_rate":10.
 *   - PROXY protocol (listeners[].proxy_protocol, proxy_from): a Python
 *     client (tests/integration/proxyclient.py) writes a v1 or v2 header,
 *     then speaks TLS on the same socket: the access log and the
 *     X-Forwarded-For the upstream sees carry the header's client, v2's
 *     UNIQUE_ID is the line's proxy_id, LOCAL keeps the socket's address;
 *     a garbage header, a v1 line without CRLF and a connection from
 *     outside proxy_from are refused, and the error log says so.
 *   - Log rotation in logrotate's `create` mode: both logs are renamed,
 *     SIGUSR1 makes the master re-open both logs and hand the descriptors
 *     to its (unprivileged) workers; the new files get the new lines.
 *
 * Clients: h2load, curl (--haproxy-protocol too) and proxyclient.py; the
 * real corral in front of tests/testup.
 * Loopback only; every wait is bounded. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct h_test *T;
static const char *tls_extra = ""; /* lines added to the listener's tls mapping */
static bool curl_proxy;            /* curl_status sends a PROXY v1 header */

static void setup(void)
{
    tls_extra = "";
    curl_proxy = false;
    T = h_test_begin();
}

static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

/* One worker in front of testup on T->uport, with `log_extra` inside the
 * log mapping and `extra` appended at the top level. */
static pid_t start_corral(int workers, const char *log_extra, const char *listener_extra,
                          const char *extra)
{
    const char *text = h_strf(T,
                              "workers: %d\n"
                              "drain_timeout: 1s\n"
                              "log: {error: @DIR@/error.log, level: info, "
                              "access: @DIR@/access.log%s}\n"
                              "listeners:\n"
                              "  - name: https\n"
                              "    address: 127.0.0.1:@PORT@\n"
                              "%s"
                              "    tls:\n"
                              "      certificates:\n"
                              "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                              "%s"
                              "upstream:\n"
                              "  addresses: [127.0.0.1:@UPORT@]\n"
                              "  protocol: h2\n"
                              "  connections: 1\n"
                              "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                              "key: @CERTS@/client.key, sni: lb.test}\n"
                              "%s",
                              workers, log_extra, listener_extra, tls_extra, extra);
    char *cfg = h_config_write(T, "corral.yaml", text);
    ck_assert_ptr_nonnull(cfg);
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s", h_file_tail(T, T->error_log, 2000));
    return m;
}

static void curl_status(const char *path, const char *tenant, int want)
{
    struct h_http r;
    const char *args[] = {"-H", h_strf(T, "x-tenant-id: %s", tenant),
                          curl_proxy ? "--haproxy-protocol" : NULL, NULL};
    h_curl_edge(T, &r, T->port, path, args);
    ck_assert_msg(r.status == want, "%s (tenant %s): status %d, want %d (%s)", path, tenant,
                  r.status, want, r.err);
}

/* ------------------------------------------------------------ sampling */

START_TEST(tail_sampling_keeps_what_matters)
{
    ck_assert_int_gt(h_adm_testup_start(T, 100, 0), 0);
    start_corral(1, ", sample: 10, slow_threshold: 200ms, keep_tenants: [vip]", "",
                 "tenants:\n"
                 "  by: header\n"
                 "  defaults: {rate: 100000/s, burst: 100000, queue: 100, max_wait: 3s}\n"
                 "  list: [{name: bulk}, {name: vip}, "
                 "{name: tight, rate: 1/s, burst: 1, queue: 0}]\n");

    /* 100 plain 200s of a tenant that is not kept: exactly 1 in 10 */
    struct h_adm_load l;
    const char *bulk[] = {"-c", "1", "-m", "4", "-n", "100", "-H", "x-tenant-id: bulk", NULL};
    ck_assert_int_eq(h_adm_h2load(T, &l, T->port, "/plain", bulk, 20000), 0);
    ck_assert_int_eq(l.n2xx, 100);
    /* the rest of the kinds, all kept */
    for (int i = 0; i < 5; i++)
        curl_status("/status/500", "bulk", 500);
    for (int i = 0; i < 3; i++)
        curl_status("/delay/300", "bulk", 200);
    for (int i = 0; i < 7; i++)
        curl_status("/vip", "vip", 200);
    struct h_adm_load s;
    const char *shed[] = {"-c", "1", "-m", "1", "-n", "6", "-H", "x-tenant-id: tight", NULL};
    ck_assert_int_eq(h_adm_h2load(T, &s, T->port, "/tight", shed, 20000), 0);
    ck_assert_msg(s.n429 >= 4, "only %ld of 6 requests of a 1/s tenant were shed", s.n429);
    curl_status("/last", "vip", 200); /* the barrier: logged after all the others */
    const char *last[] = {"\"/last\"", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, last, 3000), "no line for /last: %s",
                  h_file_tail(T, T->access_log, 2000));

    const char *plain[] = {"\"/plain\"", NULL};
    const char *plain10[] = {"\"/plain\"", "\"sample_rate\":10}", NULL};
    const char *s500[] = {"\"/status/500\"", "\"status\":500", "\"sample_rate\":1}", NULL};
    const char *slow[] = {"\"/delay/300\"", "\"status\":200", "\"sample_rate\":1}", NULL};
    const char *vip[] = {"\"/vip\"", "\"tenant\":\"vip\"", "\"sample_rate\":1}", NULL};
    const char *shed429[] = {"\"/tight\"", "\"status\":429", "\"sample_rate\":1}", NULL};
    int n = h_file_count_lines(T->access_log, plain);
    char *tail = h_file_tail(T, T->access_log, 3000);
    ck_assert_msg(n == 10, "%d lines of 100 plain requests at sample: 10, want 10: %s", n, tail);
    ck_assert_int_eq(h_file_count_lines(T->access_log, plain10), 10);
    ck_assert_int_eq(h_file_count_lines(T->access_log, s500), 5);
    ck_assert_int_eq(h_file_count_lines(T->access_log, slow), 3);
    ck_assert_int_eq(h_file_count_lines(T->access_log, vip), 7);
    ck_assert_int_eq(h_file_count_lines(T->access_log, shed429), (int)s.n429);
}
END_TEST

/* ------------------------------------------------------------ PROXY protocol */

#define PROXY_LISTENER(from) "    proxy_protocol: true\n    proxy_from: [" from "]\n"

/* proxyclient.py KIND PATH: its output ("status NNN\nBODY" or "refused: ..."). */
static char *proxy_client(const char *kind, const char *path)
{
    char *argv[] = {"python3",
                    h_strf(T, "%s/tests/integration/proxyclient.py", T->srcdir),
                    h_strf(T, "%d", T->port),
                    h_strf(T, "%s/ca.crt", T->certs),
                    (char *)kind,
                    (char *)path,
                    NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 15000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "proxyclient.py %s: exit %d: %s", kind,
                  r.exit_code, r.err);
    return r.out;
}

static void assert_log(const char *path, const char *const *needles, const char *what)
{
    ck_assert_msg(h_wait_file_line(path, needles, 3000), "%s: no line with %s ... %s: %s", what,
                  needles[0], needles[1] ? needles[1] : "", h_file_tail(T, path, 2000));
}

START_TEST(proxy_protocol_names_the_real_client)
{
    ck_assert_int_gt(h_adm_testup_start(T, 100, 0), 0);
    tls_extra = "      handshake_timeout: 1s\n";
    start_corral(1, "", PROXY_LISTENER("10.9.9.9, 127.0.0.0/8"), "");

    char *out = proxy_client("v1", "/headers");
    ck_assert_msg(strncmp(out, "status 200", 10) == 0, "v1: %s", out);
    ck_assert_msg(strstr(out, "203.0.113.7") != NULL,
                  "the upstream's X-Forwarded-For is not the header's client: %s", out);
    const char *v1[] = {"\"/headers\"", "\"client\":\"203.0.113.7:4444\"", NULL};
    assert_log(T->access_log, v1, "v1");

    out = proxy_client("v2", "/v2");
    ck_assert_msg(strncmp(out, "status 200", 10) == 0, "v2: %s", out);
    const char *v2[] = {"\"/v2\"", "\"client\":\"[2001:db8::5]:5555\"",
                        "\"proxy_id\":\"vpce-0abc123\"", NULL};
    assert_log(T->access_log, v2, "v2");

    out = proxy_client("v2-local", "/local");
    ck_assert_msg(strncmp(out, "status 200", 10) == 0, "v2 LOCAL: %s", out);
    out = proxy_client("v1-unknown", "/unknown");
    ck_assert_msg(strncmp(out, "status 200", 10) == 0, "v1 UNKNOWN: %s", out);
    const char *local[] = {"\"/local\"", "\"client\":\"127.0.0.1:", NULL};
    assert_log(T->access_log, local, "v2 LOCAL keeps the socket's address");
    const char *unknown[] = {"\"/unknown\"", "\"client\":\"127.0.0.1:", NULL};
    assert_log(T->access_log, unknown, "v1 UNKNOWN keeps the socket's address");

    out = proxy_client("garbage", "/garbage");
    ck_assert_msg(strncmp(out, "refused", 7) == 0, "a garbage header was served: %s", out);
    const char *said[] = {"PROXY protocol: 1 connection(s) refused", "no PROXY protocol signature",
                          NULL};
    assert_log(T->error_log, said, "garbage");
    out = proxy_client("v1-no-crlf", "/nocrlf");
    ck_assert_msg(strncmp(out, "refused", 7) == 0, "a v1 line without CRLF was served: %s", out);
    ck_assert_msg(!h_file_contains(T->access_log, "/garbage") &&
                      !h_file_contains(T->access_log, "/nocrlf"),
                  "a refused connection was served: %s", h_file_tail(T, T->access_log, 2000));

    /* half a header, then silence: closed after handshake_timeout (1s) */
    int fd = h_connect(T->port, 2000);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "PROXY TCP4 1.2", 14), 14);
    struct timeval tv = {.tv_sec = 5};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    long long t0 = h_now_ms();
    char b;
    ssize_t got = read(fd, &b, 1);
    long long held = h_now_ms() - t0;
    close(fd);
    ck_assert_msg(got <= 0 && held >= 500 && held <= 3000,
                  "a half header was held %lld ms (read %zd), handshake_timeout is 1s", held, got);
}
END_TEST

/* A counter of the total in the admin endpoint's /stats. */
static long total_stat(const char *key)
{
    struct h_http r;
    h_curl(T, &r, h_strf(T, "http://127.0.0.1:%d/stats", T->port2), NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "GET /stats: curl %d, HTTP %d", r.exit_code,
                  r.status);
    const char *p = strstr(r.body, "\"total\":");
    ck_assert_msg(p != NULL, "no total in /stats: %s", r.body);
    const char *k = h_strf(T, "\"%s\":", key);
    p = strstr(p, k);
    ck_assert_msg(p != NULL, "no %s in /stats: %s", key, r.body);
    return strtol(p + strlen(k), NULL, 10);
}

static long proxy_refused(void)
{
    return total_stat("proxy_refused");
}

/* A balancer's health check that speaks PROXY (v2 LOCAL, then a close) is
 * no failed handshake: it filled handshakes_failed and the error log's
 * summaries, hiding real failures. */
START_TEST(proxy_local_health_check_is_no_failure)
{
    ck_assert_int_gt(h_adm_testup_start(T, 100, 0), 0);
    start_corral(1, "", PROXY_LISTENER("127.0.0.0/8"), "admin: {address: 127.0.0.1:@PORT2@}\n");
    long before = total_stat("handshakes_failed");
    for (int i = 0; i < 3; i++) {
        char *out = proxy_client("v2-probe", "/");
        ck_assert_msg(strncmp(out, "probe closed", 12) == 0, "%s", out);
    }
    char *out = proxy_client("v2-local", "/after-probes"); /* the probes were read */
    ck_assert_msg(strncmp(out, "status 200", 10) == 0, "v2 LOCAL: %s", out);
    ck_assert_int_eq(total_stat("handshakes_failed"), before);
}
END_TEST

START_TEST(proxy_protocol_only_from_proxy_from)
{
    ck_assert_int_gt(h_adm_testup_start(T, 100, 0), 0);
    start_corral(1, "", PROXY_LISTENER("10.0.0.0/8, 2001:db8::/32"),
                 "admin: {address: 127.0.0.1:@PORT2@}\n");
    /* the harness's probe of the port, from 127.0.0.1, is one: counted
     * when the worker takes it, which may be after the harness saw the
     * port open */
    long long end = h_now_ms() + 3000;
    while (proxy_refused() < 1 && h_now_ms() < end)
        h_sleep_ms(20);
    long before = proxy_refused();
    ck_assert_int_ge(before, 1);
    char *out = proxy_client("v1", "/elsewhere");
    ck_assert_msg(strncmp(out, "refused", 7) == 0,
                  "a header from outside proxy_from was believed: %s", out);
    const char *said[] = {"PROXY protocol: 1 connection(s) refused",
                          "from 127.0.0.1:", "not in proxy_from", NULL};
    assert_log(T->error_log, said, "outside proxy_from");
    ck_assert(!h_file_contains(T->access_log, "/elsewhere"));
    proxy_client("v2", "/elsewhere-2"); /* the second within 10 s: counted, not logged */
    ck_assert_int_eq(proxy_refused(), before + 2);
}
END_TEST

/* ------------------------------------------------------------ rotation */

/* logrotate's create mode for both logs: rename, SIGUSR1, and the new
 * files (made by the master, which stays root) get the worker's lines. One
 * worker on a PROXY protocol listener (curl --haproxy-protocol): its first
 * line in the access log proves it took the new descriptors (they come in
 * one message, both logs together), and then a garbage header makes it
 * write an error-log line that is the first of its kind (a TLS handshake
 * failure could be held back by the 10 s summary after the harness's own
 * probe; a probe on a PROXY listener is closed quietly). */
START_TEST(sigusr1_reopens_error_and_access_logs)
{
    ck_assert_int_gt(h_adm_testup_start(T, 100, 0), 0);
    pid_t m = start_corral(1, "", PROXY_LISTENER("127.0.0.0/8"), "");
    curl_proxy = true;
    curl_status("/before", "x", 200);
    const char *before[] = {"\"/before\"", NULL};
    ck_assert(h_wait_file_line(T->access_log, before, 3000));

    char *old_acc = h_path(T, "access.log.1"), *old_err = h_path(T, "error.log.1");
    ck_assert_int_eq(rename(T->access_log, old_acc), 0);
    ck_assert_int_eq(rename(T->error_log, old_err), 0);
    ck_assert_int_eq(h_signal(m, SIGUSR1), 0);
    const char *said[] = {"SIGUSR1: log files re-opened", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, said, 3000),
                  "the new error log does not say the logs were re-opened: %s",
                  h_file_tail(T, old_err, 1500));
    curl_status("/after", "x", 200);
    const char *after[] = {"\"/after\"", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, after, 3000),
                  "the new access log lacks the worker's line: %s | old: %s",
                  h_file_tail(T, T->access_log, 2000), h_file_tail(T, old_acc, 2000));

    int fd = h_connect(T->port, 2000);
    ck_assert_int_ge(fd, 0);
    const char junk[] = "GET / HTTP/1.0\r\n\r\n";
    ck_assert_int_eq(write(fd, junk, sizeof(junk) - 1), (ssize_t)(sizeof(junk) - 1));
    char buf[256];
    struct timeval tv = {.tv_sec = 5};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    while (read(fd, buf, sizeof(buf)) > 0) /* until the worker closes it */
        ;
    close(fd);
    const char *refused[] = {"worker 1", "PROXY protocol: 1 connection(s) refused", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, refused, 3000),
                  "the worker's line is not in the new error log: %s | old: %s",
                  h_file_tail(T, T->error_log, 1500), h_file_tail(T, old_err, 1500));
    ck_assert_msg(!h_file_contains(old_acc, "/after"), "the worker still writes to the old file");
    ck_assert_msg(!h_file_contains(old_err, "re-opened"), "the master wrote to the old file");
    ck_assert_msg(!h_file_contains(old_err, "PROXY protocol"),
                  "the worker wrote to the old error log");
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *edge_suite(void)
{
    Suite *s = suite_create("edge");
    TCase *tc = tcase_create("logs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tail_sampling_keeps_what_matters);
    tcase_add_test(tc, sigusr1_reopens_error_and_access_logs);
    suite_add_tcase(s, tc);

    tc = tcase_create("proxy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, proxy_protocol_names_the_real_client);
    tcase_add_test(tc, proxy_protocol_only_from_proxy_from);
    tcase_add_test(tc, proxy_local_health_check_is_no_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(edge_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
