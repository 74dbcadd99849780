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
static pid_t corral(const char *proto, const char *upstream_extra, const char *extra)
{
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
               "  protocol: %s\n"
               "  connections: 1\n"
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: @CERTS@/client.key, "
               "sni: lb.test}\n"
               "%s%s",
               proto, upstream_extra ? upstream_extra : "", extra ? extra : ""));
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_int_gt(m, 0);
    const char *upl[] = {h_strf(T, "connected (%s", proto), NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, upl, H_START_MS), "no upstream: %s",
                  h_file_tail(T, T->error_log, 2000));
    return m;
}

static pid_t start(const char *upstream_extra, const char *extra, const char *const *testup_args)
{
    pid_t up;
    if (testup_args && testup_args[0])
        up = h_testup_start(T, T->uport, testup_args[0], testup_args[1], NULL);
    else
        up = h_testup_start(T, T->uport, NULL);
    ck_assert_int_gt(up, 0);
    return corral("h2", upstream_extra, extra);
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

/* The subprotocol the upstream chose reaches the client; text, binary and
 * 1 MB messages come back as they were sent, and the close handshake goes
 * through both ways (testup counts the client's 1000). */
START_TEST(echo_text_binary_and_a_megabyte)
{
    start(NULL, NULL, NULL);
    int rc;
    char *out = client("echo", NULL, &rc);
    ck_assert_msg(rc == 0, "echo failed (%d): %s", rc, out);
    assert_has(out, "\"subprotocol\": \"chat.v1\""); /* the upstream's choice came through */
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
    char *ts = h_testup_stats(T, T->uport, false);
    long upstream = ts ? h_json_long(ts, "ws_bytes") : -1;
    printf("noread: the client pushed %ld bytes in 3 s, testup took %ld; worker RSS %ld -> %ld KB\n",
           pushed, upstream, before, after);
    /* unbounded, loopback would take gigabytes in 3 s; the bound on RSS
     * is check_datapath's (ASan's quarantine counts in it) */
    ck_assert_msg(pushed < 32L << 20, "the client pushed %ld bytes without reading", pushed);
    ck_assert_msg(upstream >= 0 && upstream < 32L << 20, "testup took %ld bytes", upstream);
    ck_assert_msg(after - before < 32 * 1024, "corral grew from %ld to %ld KB", before, after);
}
END_TEST

/* A client that sends its close frame and goes at once: the close still
 * reaches the upstream (testup counts its code), and the tunnel's upstream
 * connection goes with the client's. */
START_TEST(client_close_then_gone_reaches_upstream)
{
    start(NULL, NULL, NULL);
    int rc;
    char *out = client("abrupt", "4000", &rc);
    ck_assert_msg(rc == 0, "%s", out);
    char *st = NULL;
    for (int i = 0; i < 100; i++) { /* bounded: 2 s */
        st = h_testup_stats(T, T->uport, false);
        if (st && strstr(st, "\"4000\":1") && h_json_long(st, "ws_open") == 0)
            break;
        h_sleep_ms(20);
    }
    ck_assert_ptr_nonnull(st);
    assert_has(st, "\"4000\":1");
    ck_assert_int_eq(h_json_long(st, "ws_open"), 0);
    ck_assert_int_eq(h_admin_stat_wait(T, T->port2, "tunnel_connections", 0, 3000), 0);
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

/* A handshake with Expect: 100-continue gets its 101 first: an upgrade's
 * "body" is the tunnel, nothing the client waits to send. */
START_TEST(expect_continue_gets_101_first)
{
    start(NULL, NULL, NULL);
    int rc;
    char *out = client("expect", NULL, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    assert_has(out, "\"open\": true");
}
END_TEST

/* An upstream whose 101 carries a Sec-WebSocket-Accept that is not its
 * key's: no tunnel, the client gets 502 and the error log says why. */
static void wrong_accept_is_502(const char *mode)
{
    char *argv[] = {(char *)python, h_strf(T, "%s/tests/integration/wsbadup.py", T->srcdir),
                    h_strf(T, "%d", T->uport), T->certs, (char *)mode, NULL};
    char *log = h_path(T, "wsbadup.log");
    ck_assert_int_gt(h_spawn(T, argv, log, log), 0);
    ck_assert_msg(h_wait_port(T->uport, true, H_START_MS), "%s", h_file_tail(T, log, 1000));
    corral("http/1.1", NULL, NULL);
    int rc;
    char *out = client("status", NULL, &rc);
    assert_has(out, "\"status\": 502");
    const char *why[] = {"without the right Sec-WebSocket-Accept", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, why, 3000), "%s",
                  h_file_tail(T, T->error_log, 2000));
}

START_TEST(wrong_accept_upstream_is_502)
{
    wrong_accept_is_502(NULL);
}
END_TEST

/* An interim "100 Continue" carrying the right Accept, then a 101 without
 * one: what a 1xx said does not count for the 101 (502). */
START_TEST(interim_answer_does_not_make_the_101)
{
    wrong_accept_is_502("interim");
}
END_TEST

/* A dedicated connection's upgrade that cannot be made (no key: strace
 * fails the worker's getrandom(2) with EIO) is a 502 at once, not a 504
 * after upstream.response_timeout (5 s here). */
START_TEST(tunnel_key_failure_is_502_at_once)
{
    pid_t m = start("  response_timeout: 5s\n", NULL, NULL);
    pid_t kids[H_MAX_PIDS];
    int n = h_children(m, kids, H_MAX_PIDS);
    ck_assert_int_gt(n, 0);
    char *argv[5 + 2 * H_MAX_PIDS + 1] = {"strace", "-e", "trace=getrandom", "-e",
                                          "inject=getrandom:error=EIO"};
    int k = 5;
    for (int i = 0; i < n && i < H_MAX_PIDS; i++) {
        argv[k++] = "-p";
        argv[k++] = h_strf(T, "%d", (int)kids[i]);
    }
    argv[k] = NULL;
    const char *errp = h_path(T, "strace.err");
    ck_assert_int_gt(h_spawn(T, argv, h_path(T, "strace.out"), errp), 0);
    const char *attached[] = {"attached", NULL};
    ck_assert_msg(h_wait_file_lines(errp, attached, n, 10000), "strace: %s",
                  h_file_tail(T, errp, 1000));
    long long t0 = h_now_ms();
    int rc;
    char *out = client("status", NULL, &rc);
    long long took = h_now_ms() - t0;
    assert_has(out, "\"status\": 502");
    ck_assert_msg(took < 3000, "answered after %lld ms", took);
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
    struct h_http m;
    ck_assert_int_eq(h_curl(T, &m, h_strf(T, "http://127.0.0.1:%d/metrics", T->port2), NULL), 0);
    assert_has(m.body, "corral_tenant_tunnels_open{tenant=\"default\"} 1\n");
    assert_has(m.body, "corral_tenant_tunnels_opened_total{tenant=\"default\"} 1\n");
    assert_has(m.body, "corral_tenant_tunnels_refused_total{tenant=\"default\"} 1\n");
    assert_has(m.body, "corral_upstream_tunnel_connections 1\n");
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

/* ------------------------------------------------------------ idle, ping, reload */

/* http.tunnel_idle_timeout 1s, no pings: a tunnel nobody uses is closed
 * by corral with a close frame 1001 (going away), to the client and to the
 * upstream. */
START_TEST(idle_tunnel_is_closed_1001)
{
    start(NULL, "http: {tunnel_idle_timeout: 1s, tunnel_ping: 0s}\n", NULL);
    int rc;
    char *out = client("hold", "8", &rc);
    assert_has(out, "\"closed_by\": \"server\", \"code\": 1001");
    const char *secs = strstr(out, "\"secs\": ");
    ck_assert_msg(secs && atof(secs + 8) < 4.0, "closed late: %s", out);
    char *st = h_testup_stats(T, T->uport, false);
    assert_has(st, "\"1001\":1");
}
END_TEST

/* tunnel_ping 300ms under the same idle timeout: corral pings the quiet
 * client, whose pongs (python3-websockets answers each) are no traffic:
 * a client that only answers corral's pings is idle, and closed (1001)
 * at the idle timeout all the same. */
START_TEST(pinged_client_only_ponging_is_idle)
{
    start(NULL, "http: {tunnel_idle_timeout: 1s, tunnel_ping: 300ms}\n", NULL);
    int rc;
    char *out = client("hold", "3", &rc);
    assert_has(out, "\"closed_by\": \"server\", \"code\": 1001");
    const char *secs = strstr(out, "\"secs\": ");
    ck_assert_msg(secs && atof(secs + 8) < 2.5, "closed late: %s", out);
}
END_TEST

/* A reload: the old worker keeps the tunnel until drain_timeout (2 s),
 * then closes it with 1001 both ways at a frame boundary; the client sees
 * 1001 and testup counts the 1001 corral sent it. The access log has the
 * tunnel's one line: 101, its bytes, who closed it. */
START_TEST(reload_closes_tunnels_1001_after_drain_timeout)
{
    pid_t m = start(NULL, NULL, NULL);
    char *argv[] = {(char *)python, client_path(), h_strf(T, "%d", T->port), "wait-close", "15",
                    NULL};
    char *outp = h_path(T, "wait.out");
    pid_t c = h_spawn(T, argv, outp, h_path(T, "wait.err"));
    const char *open[] = {"\"open\": true", NULL};
    ck_assert_msg(h_wait_file_line(outp, open, 15000), "%s", h_file_tail(T, h_path(T, "wait.err"), 900));
    long long t0 = h_now_ms();
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    int st;
    ck_assert_int_eq(h_wait_exit(c, 15000, &st), 0);
    long long took = h_now_ms() - t0;
    char *out = h_read_file(outp, NULL);
    ck_assert_msg(strstr(out, "\"close_code\": 1001"), "%s", out);
    free(out);
    ck_assert_msg(took >= 1000 && took < 6000, "closed after %lld ms", took);
    char *ts = h_testup_stats(T, T->uport, false);
    assert_has(ts, "\"1001\":1");
    const char *line[] = {"\"status\":101", "\"reason\":\"draining\"", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, line, 5000), "no tunnel line: %s",
                  h_file_tail(T, T->access_log, 2000));
}
END_TEST

/* The access log's line for a tunnel comes at its close: 101, the bytes
 * each way, and who closed it. */
START_TEST(access_log_line_at_close)
{
    start(NULL, NULL, NULL);
    int rc;
    char *out = client("echo", NULL, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    const char *line[] = {"\"status\":101", "\"reason\":\"tunnel closed by the client\"", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, line, 5000), "no tunnel line: %s",
                  h_file_tail(T, T->access_log, 2000));
    char *log = h_read_file(T->access_log, NULL);
    const char *p = strstr(log, "\"status\":101");
    const char *bi = strstr(p, "\"bytes_in\":"), *bo = strstr(p, "\"bytes_out\":");
    ck_assert_ptr_nonnull(bi);
    ck_assert_ptr_nonnull(bo);
    ck_assert_int_gt(atol(bi + 11), 1 << 20); /* the megabyte went up */
    ck_assert_int_gt(atol(bo + 12), 1 << 20); /* and came back */
    free(log);
}
END_TEST

/* ------------------------------------------------------------ upstream TLS */

/* Lines of the log at path with a on them, and b after it on the same line. */
static int count_lines(const char *path, const char *a, const char *b)
{
    char *log = h_read_file(path, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, a)) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        const char *q = b ? strstr(p, b) : p;
        if (q && (!eol || q < eol))
            n++;
    }
    free(log);
    return n;
}

/* Each tunnel has its own HTTP/1.1 TLS connection to the upstream; the
 * first is a full handshake and the ones after it resume a session (a
 * ticket) the tunnel connections before them were given: corral's info log
 * says ", resumed" on their "connected (http/1.1" lines. */
START_TEST(tunnel_connections_resume_tls_sessions)
{
    start(NULL, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        int rc;
        char *out = client("echo", NULL, &rc);
        ck_assert_msg(rc == 0, "tunnel %d: %s", i, out);
    }
    const char *line[] = {"connected (http/1.1", NULL};
    ck_assert(h_wait_file_line(T->error_log, line, 5000));
    int all = count_lines(T->error_log, "connected (http/1.1", NULL);
    int resumed = count_lines(T->error_log, "connected (http/1.1", ", resumed)");
    ck_assert_msg(all == 4, "%d tunnel connections: %s", all, h_file_tail(T, T->error_log, 2000));
    ck_assert_msg(resumed == 3, "%d of the 4 tunnel connections resumed: %s", resumed,
                  h_file_tail(T, T->error_log, 2000));
}
END_TEST

/* A worker killed with tunnels open: the master takes them out of the
 * tenant's open gauge (they were cut with the worker), and the new worker
 * admits a tunnel again under tunnels: 1. */
START_TEST(killed_worker_gives_back_its_tunnels)
{
    pid_t m = start(NULL, "tenants:\n  defaults: {tunnels: 1}\n", NULL);
    hold("hold1.out", 30);
    long open = h_admin_stat_wait(T, T->port2, "tunnels_open", 1, 5000);
    ck_assert_int_eq(open, 1);
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_children(m, w, H_MAX_PIDS), 1);
    ck_assert_int_eq(h_signal(w[0], SIGKILL), 0);
    const char *up[] = {"connected (h2", NULL};
    ck_assert_msg(h_wait_file_lines(T->error_log, up, 2, H_START_MS),
                  "no new worker connected upstream: %s", h_file_tail(T, T->error_log, 2000));
    struct h_http mt;
    ck_assert_int_eq(h_curl(T, &mt, h_strf(T, "http://127.0.0.1:%d/metrics", T->port2), NULL), 0);
    const char *g = strstr(mt.body, "corral_tenant_tunnels_open{tenant=\"default\"} ");
    ck_assert_msg(g != NULL, "no tunnels_open gauge in /metrics");
    ck_assert_msg(strncmp(g + strcspn(g, " ") + 1, "0\n", 2) == 0,
                  "the dead worker's tunnel is still counted: %.60s", g);
    int rc;
    char *out = client("status", NULL, &rc);
    assert_has(out, "\"status\": 101");
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
    tcase_add_test(tc, client_close_then_gone_reaches_upstream);
    tcase_add_test(tc, upstream_refusal_reaches_the_client);
    tcase_add_test(tc, wrong_accept_upstream_is_502);
    tcase_add_test(tc, tenant_tunnel_cap_refuses_429);
    tcase_add_test(tc, tenant_tunnel_rate_refuses_429);
    tcase_add_test(tc, tunnel_connections_cap_refuses_503);
    tcase_add_test(tc, tunnel_takes_no_request_capacity);
    tcase_add_test(tc, idle_tunnel_is_closed_1001);
    tcase_add_test(tc, pinged_client_only_ponging_is_idle);
    tcase_add_test(tc, reload_closes_tunnels_1001_after_drain_timeout);
    tcase_add_test(tc, access_log_line_at_close);
    tcase_add_test(tc, tunnel_connections_resume_tls_sessions);
    tcase_add_test(tc, killed_worker_gives_back_its_tunnels);
    tcase_add_test(tc, expect_continue_gets_101_first);
    tcase_add_test(tc, interim_answer_does_not_make_the_101);
    tcase_add_test(tc, tunnel_key_failure_is_502_at_once);
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
