/* check_websocket.c - WebSocket tunnels through corral over HTTP/1.1
 * (issue 17) with a real client (python3-websockets, driven by
 * tests/integration/wsclient.py) and testup's WebSocket echo as the
 * upstream: messages of every kind and size come back whole, a client that
 * does not read holds corral's memory bounded, a refusal upstream reaches
 * the client, the tenant's tunnel cap and upstream.tunnel_connections
 * refuse, and an open tunnel takes no request capacity. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct h_test *T;
static const char *python; /* one that imports websockets (main) */

static void setup(void)
{
    T = h_test_begin();
}
static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

/* One worker (the caps below are per worker), testup as the upstream over
 * h2 (no extended CONNECT: tunnels get their own HTTP/1.1 connection),
 * admin on PORT2, then `extra` (keys of its own sections, e.g.
 * "tenants:\n ..."); upstream_extra goes inside upstream:. */
static pid_t start(const char *upstream_extra, const char *extra, const char *const *testup_args)
{
    pid_t up;
    if (testup_args && testup_args[0])
        up = h_testup_start(T, T->uport, testup_args[0], testup_args[1], NULL);
    else
        up = h_testup_start(T, T->uport, NULL);
    ck_assert_int_gt(up, 0);
    const char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T,
               "workers: 1\n"
               "drain_timeout: 2s\n"
               "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
               "admin: {address: 127.0.0.1:@PORT2@}\n"
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
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: @CERTS@/client.key, "
               "sni: lb.test}\n"
               "%s%s",
               upstream_extra ? upstream_extra : "", extra ? extra : ""));
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_int_gt(m, 0);
    const char *upl[] = {"connected (h2", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, upl, H_START_MS), "no upstream: %s",
                  h_file_tail(T, T->error_log, 2000));
    return m;
}

static char *client_path(void)
{
    return h_strf(T, "%s/tests/integration/wsclient.py", T->srcdir);
}

/* wsclient.py PORT MODE [ARG]: its output (exit code in *rc). */
static char *client(const char *mode, const char *arg, int *rc)
{
    char *argv[] = {(char *)python, client_path(), h_strf(T, "%d", T->port), (char *)mode,
                    (char *)arg, NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 40000, &r), 0);
    ck_assert_msg(!r.timed_out, "wsclient %s timed out: %s %s", mode, r.out, r.err);
    *rc = r.exit_code;
    return h_strf(T, "%s%s", r.out, r.err);
}

/* A tunnel held open in the background (wsclient hold SECS): returns once
 * it is open; its output goes to DIR/NAME. */
static pid_t hold(const char *name, int secs)
{
    char *argv[] = {(char *)python, client_path(), h_strf(T, "%d", T->port), "hold",
                    h_strf(T, "%d", secs), NULL};
    char *outp = h_path(T, name);
    pid_t pid = h_spawn(T, argv, outp, h_path(T, h_strf(T, "%s.err", name)));
    ck_assert_int_gt(pid, 0);
    const char *open[] = {"\"open\": true", NULL};
    ck_assert_msg(h_wait_file_line(outp, open, 15000), "the held tunnel did not open: %s %s",
                  h_file_tail(T, outp, 1000),
                  h_file_tail(T, h_path(T, h_strf(T, "%s.err", name)), 1000));
    return pid;
}

static void assert_has(const char *out, const char *needle)
{
    ck_assert_msg(strstr(out, needle), "expected %s in: %s", needle, out);
}

/* ------------------------------------------------------------ relay */

/* Text, binary and 1 MB messages come back as they were sent, and the
 * close handshake goes through both ways (testup counts the client's
 * 1000). */
START_TEST(echo_text_binary_and_a_megabyte)
{
    start(NULL, NULL, NULL);
    int rc;
    char *out = client("echo", NULL, &rc);
    ck_assert_msg(rc == 0, "echo failed (%d): %s", rc, out);
    assert_has(out, "\"sent\": 1048576, \"kind\": \"bytes\", \"echoed\": true");
    assert_has(out, "\"close_code\": 1000");
    char *st = h_testup_stats(T, T->uport, false);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(h_json_long(st, "ws_total"), 1);
    assert_has(st, "\"1000\":1");
}
END_TEST

/* A client that sends and never reads: the echoes pile up in front of it,
 * corral stops reading the upstream (and the upstream the client), so the
 * client can only push what the sockets and corral's bounded buffers hold,
 * and corral's memory stays where it was. */
START_TEST(client_that_does_not_read_is_held_back)
{
    pid_t m = start(NULL, NULL, NULL);
    long before = -1;
    {
        pid_t w[4];
        ck_assert_int_eq(h_wait_children(m, 1, 5000, w), 1);
        char *s = h_read_file(h_strf(T, "/proc/%d/status", (int)w[0]), NULL);
        ck_assert_ptr_nonnull(s);
        sscanf(strstr(s, "VmRSS:"), "VmRSS: %ld", &before);
        free(s);
    }
    char *argv[] = {(char *)python, client_path(), h_strf(T, "%d", T->port), "noread", "3", "3",
                    NULL};
    char *outp = h_path(T, "noread.out");
    pid_t c = h_spawn(T, argv, outp, h_path(T, "noread.err"));
    ck_assert_int_gt(c, 0);
    const char *sent[] = {"\"sent\":", NULL};
    ck_assert_msg(h_wait_file_line(outp, sent, 15000), "noread: %s %s", h_file_tail(T, outp, 500),
                  h_file_tail(T, h_path(T, "noread.err"), 1000));
    pid_t w[4];
    ck_assert_int_eq(h_children(m, w, 4), 1);
    char *s = h_read_file(h_strf(T, "/proc/%d/status", (int)w[0]), NULL);
    long after = -1;
    sscanf(strstr(s, "VmRSS:"), "VmRSS: %ld", &after);
    free(s);
    char *o = h_read_file(outp, NULL);
    long pushed = atol(strstr(o, "\"sent\":") + 8);
    free(o);
    /* unbounded, loopback would take gigabytes in 3 s */
    ck_assert_msg(pushed < 32L << 20, "the client pushed %ld bytes without reading", pushed);
    ck_assert_msg(after - before < 16 * 1024, "corral grew from %ld to %ld KB", before, after);
}
END_TEST

/* ------------------------------------------------------------ refusals */

/* The upstream refuses the upgrade: the client gets that status. */
START_TEST(upstream_refusal_reaches_the_client)
{
    const char *args[] = {"--ws-refuse", "403"};
    start(NULL, NULL, args);
    int rc;
    char *out = client("status", NULL, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    assert_has(out, "\"status\": 403");
}
END_TEST

/* tenants.defaults.tunnels 1: a second tunnel is refused 429 with
 * Retry-After while the first is open, and admitted once it has closed. */
START_TEST(tenant_tunnel_cap_refuses_429)
{
    start(NULL, "tenants:\n  defaults: {tunnels: 1}\n", NULL);
    pid_t h = hold("hold1.out", 2);
    int rc;
    char *out = client("status", NULL, &rc);
    assert_has(out, "\"status\": 429");
    assert_has(out, "\"retry_after\": \"1\"");
    int st;
    ck_assert_int_eq(h_wait_exit(h, 10000, &st), 0);
    long left = h_admin_stat_wait(T, T->port2, "tunnels_open", 0, 5000);
    ck_assert_int_eq(left, 0);
    out = client("status", NULL, &rc);
    assert_has(out, "\"status\": 101");
}
END_TEST

/* tunnel_rate 1/s, burst 1: a second new tunnel within the second is
 * refused 429. */
START_TEST(tenant_tunnel_rate_refuses_429)
{
    start(NULL, "tenants:\n  defaults: {tunnel_rate: 1/s, tunnel_burst: 1}\n", NULL);
    int rc;
    char *out = client("status", NULL, &rc);
    assert_has(out, "\"status\": 101");
    out = client("status", NULL, &rc);
    assert_has(out, "\"status\": 429");
}
END_TEST

/* upstream.tunnel_connections 1: the second tunnel finds no upstream
 * connection for it: 503 + Retry-After. */
START_TEST(tunnel_connections_cap_refuses_503)
{
    start("  tunnel_connections: 1\n", NULL, NULL);
    hold("hold1.out", 3);
    int rc;
    char *out = client("status", NULL, &rc);
    assert_has(out, "\"status\": 503");
    assert_has(out, "\"retry_after\": \"1\"");
    char *st = h_admin_stats(T, T->port2);
    ck_assert_int_eq(h_json_long(st, "tunnel_connections"), 1);
}
END_TEST

/* upstream.max_streams 1 and a tunnel open: requests still get the one
 * stream (the tunnel holds its own connection, not a capacity unit), and
 * tenants.defaults.concurrency 1 does not count it either. */
START_TEST(tunnel_takes_no_request_capacity)
{
    start("  max_streams: 1\n", "tenants:\n  defaults: {concurrency: 1, max_wait: 0s}\n", NULL);
    hold("hold1.out", 5);
    for (int i = 0; i < 3; i++) {
        struct h_http r;
        ck_assert_int_eq(h_curl_edge(T, &r, T->port, "/", NULL), 0);
        ck_assert_msg(r.status == 200, "request %d: %d %s", i, r.status, r.body);
    }
}
END_TEST

static Suite *ws_suite(void)
{
    Suite *s = suite_create("websocket");
    TCase *tc = tcase_create("websocket");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, echo_text_binary_and_a_megabyte);
    tcase_add_test(tc, client_that_does_not_read_is_held_back);
    tcase_add_test(tc, upstream_refusal_reaches_the_client);
    tcase_add_test(tc, tenant_tunnel_cap_refuses_429);
    tcase_add_test(tc, tenant_tunnel_rate_refuses_429);
    tcase_add_test(tc, tunnel_connections_cap_refuses_503);
    tcase_add_test(tc, tunnel_takes_no_request_capacity);
    suite_add_tcase(s, tc);
    return s;
}

static bool imports_websockets(const char *py)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp(py, py, "-c", "import websockets", (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
    h_init();
    /* python3 in PATH may be another build than Debian's (pyenv) */
    static const char *const pys[] = {"python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof(pys) / sizeof(pys[0]) && !python; i++)
        if (imports_websockets(pys[i]))
            python = pys[i];
    if (!python) {
        fprintf(stderr, "check_websocket: no python3 imports websockets: install "
                        "python3-websockets (tools/install-deps)\n");
        return 99;
    }
    SRunner *sr = srunner_create(ws_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
