/* check_wsh2.c - WebSockets over HTTP/2 through corral (RFC 8441): an
 * HTTP/2 client's extended CONNECT (tests/integration/h2ws.py, with
 * python3-h2) reaches testup's WebSocket echo as an extended CONNECT on
 * corral's HTTP/2 pool when testup advertises it (--connect-protocol);
 * messages come back, either end of the client's stream ends the
 * upstream's, and a client that stops reading holds back the upstream
 * rather than corral's memory. corral advertises
 * SETTINGS_ENABLE_CONNECT_PROTOCOL; a CONNECT without :protocol, and one
 * with another protocol, are refused as before. */
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
static const char *python; /* one that imports h2 */

static void setup(void)
{
    T = h_test_begin();
}
static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

/* testup on T->uport with the extra arguments (NULL-terminated: none or
 * "--connect-protocol"), then corral in front of it, once both workers
 * have connected. */
static pid_t start_http(const char *extra, const char *extra2, const char *http)
{
    ck_assert_int_gt(h_testup_start(T, T->uport, "--quiet", extra, extra2, NULL), 0);
    const char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T, "%sadmin: {address: 127.0.0.1:@PORT2@}\nhttp: {%s}\n", H_CONFIG_BASE, http));
    pid_t master = h_corral_start(T, cfg, T->port);
    ck_assert_int_gt(master, 0);
    const char *up[] = {"connected (h2", NULL};
    ck_assert_msg(h_wait_file_lines(T->error_log, up, 2, H_START_MS),
                  "the workers did not connect to testup: %s", h_file_tail(T, T->error_log, 2000));
    return master;
}

static pid_t start(const char *extra)
{
    /* a client that does not read is not reset while it uploads 64 MB (a
     * sanitizer build is slow) */
    return start_http(extra, NULL, "send_timeout: 120s");
}

/* h2ws.py with its arguments after the port: its JSON line. */
static char *h2ws3(const char *cmd, const char *a, const char *b, const char *c)
{
    char *argv[] = {(char *)python, h_strf(T, "%s/tests/integration/h2ws.py", T->srcdir),
                    (char *)cmd,    h_strf(T, "%d", T->port),
                    (char *)a,      (char *)b,
                    (char *)c,      NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "h2ws.py %s: exit %d: %s", cmd, r.exit_code,
                  r.err);
    return r.out;
}

static char *h2ws(const char *cmd, const char *a, const char *b)
{
    return h2ws3(cmd, a, b, NULL);
}

static void assert_has(const char *out, const char *needle)
{
    ck_assert_msg(out && strstr(out, needle), "expected %s in: %s", needle, out);
}

/* The output of a client spawned with argv (its files NAME.out and
 * NAME.err), once it has a line with needle (at most ms): the caller
 * frees it. */
static void spawn_client(const char *name, char **argv)
{
    ck_assert_int_gt(h_spawn(T, argv, h_path(T, h_strf(T, "%s.out", name)),
                             h_path(T, h_strf(T, "%s.err", name))),
                     0);
}
static char *client_out(const char *name, const char *needle, int ms)
{
    const char *out_path = h_path(T, h_strf(T, "%s.out", name));
    const char *done[] = {needle, NULL};
    ck_assert_msg(h_wait_file_line(out_path, done, ms), "no %s line: %s", name,
                  h_file_tail(T, h_path(T, h_strf(T, "%s.err", name)), 2000));
    return h_read_file(out_path, NULL);
}

/* The access log's line with both needles, waited for. */
static void assert_logged(const char *a, const char *b)
{
    const char *line[] = {a, b, NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, line, 5000), "no line with %s: %s", b,
                  h_file_tail(T, T->access_log, 2000));
}

/* testup's counter `field`, waited for until it is `want` (at most ms). */
static long testup_wait(const char *field, long want, int ms)
{
    long long end = h_now_ms() + ms;
    long v;
    while ((v = h_json_long(h_testup_stats(T, T->uport, false), field)) != want && h_now_ms() < end)
        h_sleep_ms(50);
    return v;
}

/* corral with one worker and one pool connection (to testup, started),
 * once it is up. */
static void start_one_conn(void)
{
    const char *cfg = h_config_write(
        T, "corral.yaml",
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
        "sni: lb.test}\n");
    ck_assert_int_gt(h_corral_start(T, cfg, T->port), 0);
    const char *up[] = {"connected (h2", NULL};
    ck_assert(h_wait_file_line(T->error_log, up, H_START_MS));
}

/* RFC 8441 3: SETTINGS_ENABLE_CONNECT_PROTOCOL (8) = 1 in corral's SETTINGS. */
START_TEST(settings_enable_connect_protocol)
{
    start(NULL);
    assert_has(h2ws("settings", NULL, NULL), "\"8\": 1");
}
END_TEST

/* A plain CONNECT (no :protocol, no :path) is refused as before: 400; an
 * extended CONNECT for another protocol is reset (PROTOCOL_ERROR, 1), and
 * so is a malformed one (no :path). */
START_TEST(other_connects_refused)
{
    start(NULL);
    assert_has(h2ws("connect", "-", "-"), "\"status\": 400");
    assert_has(h2ws("connect", "foo", "/x"), "\"reset\": 1");
    assert_has(h2ws("connect", "websocket", "-"), "\"reset\": 1");
    /* a WebSocket that ends before it starts, or declares a body: 400 */
    assert_has(h2ws3("connect", "websocket", "/ws", "end"), "\"status\": 400");
    assert_has(h2ws3("connect", "websocket", "/ws", "cl"), "\"status\": 400");
    long accepted = h_json_long(h_testup_stats(T, T->uport, false), "ws_total");
    ck_assert_int_le(accepted, 0); /* none reached the upstream */
}
END_TEST

/* wsh2.py (the wsecho branch's RFC 8441 client) through corral: its JSON
 * line; exit 0 means every message came back and the stream ended as it
 * should. */
static char *wsh2(const char *n, const char *size, const char *close_code)
{
    char *argv[] = {(char *)python,
                    h_strf(T, "%s/tests/integration/wsh2.py", T->srcdir),
                    "127.0.0.1",
                    h_strf(T, "%d", T->port),
                    "/ws",
                    "--sni",
                    "edge.test",
                    "--ca",
                    h_strf(T, "%s/ca.crt", T->certs),
                    "--protocol",
                    "chat",
                    "-n",
                    (char *)n,
                    "--size",
                    (char *)size,
                    close_code ? "--close" : NULL,
                    (char *)close_code,
                    NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "wsh2.py: exit %d: %s %s", r.exit_code, r.out,
                  r.err);
    return r.out;
}

/* Messages (small and 200 KB, more than a window) echo through corral onto
 * the pool's extended CONNECT; the client's END_STREAM, and its close
 * frame, end the upstream's stream (testup's ws_open back to 0), the
 * subprotocol is answered, and the access log has the tunnel. */
START_TEST(echo_over_extended_connect)
{
    start("--connect-protocol");
    char *out = wsh2("20", "16", NULL);
    assert_has(out, "\"status\": 200");
    assert_has(out, "\"echoed\": 20");
    assert_has(out, "\"protocol\": \"chat\"");
    out = wsh2("5", "200000", "4000");
    assert_has(out, "\"echoed\": 5");
    assert_has(out, "\"close_code\": 4000");
    ck_assert_int_eq(testup_wait("ws_total", 2, 3000), 2);
    /* on the pool's HTTP/2 connections: no tunnel connection of their own */
    ck_assert_int_eq(h_json_long(h_testup_stats(T, T->uport, false), "h1_connections"), 0);
    ck_assert_int_eq(testup_wait("ws_open", 0, 5000), 0);
    assert_logged("\"method\":\"CONNECT\"", "\"path\":\"/ws\"");
}
END_TEST

/* The client's RST_STREAM ends the upstream's stream too. */
START_TEST(client_reset_ends_upstream_stream)
{
    start("--connect-protocol");
    char *out = h2ws("echo", "3", "rst");
    assert_has(out, "\"echoed\": 3");
    ck_assert_int_eq(testup_wait("ws_total", 1, 3000), 1);
    ck_assert_int_eq(testup_wait("ws_open", 0, 5000), 0);
}
END_TEST

/* Without --connect-protocol no pool connection takes extended CONNECT:
 * the HTTP/2 client's tunnel goes to the upstream as an HTTP/1.1 upgrade
 * on a connection of its own (corral's own key, a GET), and echoes all
 * the same. */
START_TEST(h2_client_over_dedicated_http1)
{
    start(NULL);
    char *out = wsh2("5", "16", "1000");
    assert_has(out, "\"echoed\": 5");
    assert_has(out, "\"protocol\": \"chat\"");
    ck_assert_int_eq(testup_wait("ws_total", 1, 3000), 1);
    ck_assert_int_eq(h_json_long(h_testup_stats(T, T->uport, false), "h1_connections"), 1);
    ck_assert_int_eq(testup_wait("ws_open", 0, 5000), 0);
}
END_TEST

/* An HTTP/1.1 client (python3-websockets, wsclient.py) whose upgrade
 * corral carries as an extended CONNECT on its HTTP/2 pool: the 101 comes
 * from the upstream's 200, and no tunnel connection is opened. */
START_TEST(http1_client_onto_extended_connect)
{
    start("--connect-protocol");
    char *argv[] = {(char *)python, h_strf(T, "%s/tests/integration/wsclient.py", T->srcdir),
                    h_strf(T, "%d", T->port), "echo", NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "wsclient.py: exit %d: %s %s", r.exit_code,
                  r.out, r.err);
    ck_assert_int_eq(testup_wait("ws_total", 1, 3000), 1);
    ck_assert_int_eq(h_json_long(h_testup_stats(T, T->uport, false), "h1_connections"), 0);
    ck_assert_int_eq(h_json_long(h_admin_stats(T, T->port2), "tunnel_connections"), 0);
    ck_assert_int_eq(testup_wait("ws_open", 0, 5000), 0);
}
END_TEST

/* What the workers may grow by while a client does not read a 64 MB echo:
 * they hold 0.4 MB of it (an upstream stream's window and the buffers);
 * were the upstream's window given back as the bytes arrive, what the
 * connection's window allows (2 x 16 MB, upstream_h2.c): 33 MB. Under
 * AddressSanitizer the freed memory it holds back (quarantine_size_mb=16
 * in tools/run-tests) and its shadow come on top: 21-23 MB there, 50 MB
 * without flow control. */
#if defined(__SANITIZE_ADDRESS__)
#define GROWTH_KB (32 * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GROWTH_KB (32 * 1024)
#endif
#endif
#ifndef GROWTH_KB
#define GROWTH_KB (8 * 1024)
#endif

/* The resident memory of master's workers, in KB (summed). */
static long workers_rss_kb(pid_t master)
{
    pid_t kids[H_MAX_PIDS];
    int n = h_children(master, kids, H_MAX_PIDS);
    long kb = 0;
    for (int i = 0; i < n && i < H_MAX_PIDS; i++) {
        char *st = h_read_file(h_strf(T, "/proc/%d/status", (int)kids[i]), NULL);
        const char *p = st ? strstr(st, "VmRSS:") : NULL;
        if (p)
            kb += atol(p + 6);
        free(st);
    }
    return kb;
}

/* A client that sends 64 MB (8 MB messages) and reads none of the echo (no
 * WINDOW_UPDATE): testup echoes all of it (it buffers what it cannot
 * send), and corral takes of the echo only what the upstream stream's
 * window lets through, which it reopens only as the client reads: the
 * workers' memory grows by a fraction of it (GROWTH_KB). */
START_TEST(client_not_reading_is_flow_controlled)
{
    pid_t master = start("--connect-protocol");
    ck_assert_int_eq(h_wait_children(master, 2, 3000, NULL), 2);
    long before = workers_rss_kb(master);
    char *argv[] = {(char *)python,
                    h_strf(T, "%s/tests/integration/h2ws.py", T->srcdir),
                    "stall",
                    h_strf(T, "%d", T->port),
                    "67108864",
                    "20",
                    NULL};
    spawn_client("stall", argv);
    char *out = client_out("stall", "\"sent\": ", 45000);
    assert_has(out, "\"status\": 200");
    const char *p = strstr(out, "\"sent\": ");
    long sent = atol(p + 8);
    p = strstr(out, "\"received\": ");
    ck_assert_ptr_nonnull(p);
    long received = atol(p + 12);
    p = strstr(out, "\"message\": ");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(sent, atol(p + 11)); /* the whole of it went through */
    free(out);
    ck_assert_msg(received <= 65535, "the client's window let through %ld", received);
    ck_assert_int_eq(testup_wait("ws_bytes", 67108864, 10000), 67108864); /* testup has it all */
    long grew = workers_rss_kb(master) - before;
    ck_assert_msg(grew < GROWTH_KB, "the workers grew by %ld KB holding a 64 MB echo", grew);
}
END_TEST

/* testup allows 2 streams a connection (--max-streams 2) and one of them
 * carries a tunnel (an HTTP/1.1 client's, held open): the request
 * capacity is the one stream left, so two requests at once on one worker
 * and one connection take turns; none finds the connection full (a 502
 * "upstream connection lost") because the tunnel's stream was counted as
 * room. */
START_TEST(tunnel_stream_is_not_request_capacity)
{
    ck_assert_int_gt(h_testup_start(T, T->uport, "--quiet", "--connect-protocol", "--max-streams",
                                    "2", "--service-time", "200", NULL),
                     0);
    start_one_conn();
    char *hold_out = h_path(T, "hold.out");
    char *argv[] = {(char *)python,
                    h_strf(T, "%s/tests/integration/wsclient.py", T->srcdir),
                    h_strf(T, "%d", T->port),
                    "hold",
                    "15",
                    NULL};
    ck_assert_int_gt(h_spawn(T, argv, hold_out, h_path(T, "hold.err")), 0);
    const char *open[] = {"\"open\": true", NULL};
    ck_assert_msg(h_wait_file_line(hold_out, open, 10000), "the tunnel did not open: %s",
                  h_file_tail(T, h_path(T, "hold.err"), 2000));
    ck_assert_int_eq(testup_wait("ws_open", 1, 3000), 1);
    char *load[] = {"h2load", "-n", "6", "-c",
                    "1",      "-m", "2", h_strf(T, "https://127.0.0.1:%d/", T->port),
                    NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, load, 30000, &r), 0);
    assert_has(r.out, "6 succeeded");
    assert_has(r.out, "6 2xx");
    ck_assert_int_eq(testup_wait("ws_open", 1, 100), 1); /* the tunnel is still up */
}
END_TEST

/* tunnel_idle_timeout holds for an HTTP/2 client's tunnel as for an
 * HTTP/1.1 one: corral's close (1001) comes after 2 s of silence, the
 * stream ends once the client answers it, and the upstream's side goes. */
START_TEST(h2_tunnel_idle_timeout)
{
    start_http(NULL, NULL, "send_timeout: 120s, tunnel_idle_timeout: 2s");
    char *out = h2ws("idle", "8", NULL);
    assert_has(out, "\"status\": 200");
    assert_has(out, "\"close_code\": 1001");
    assert_has(out, "\"ended\"");
    const char *p = strstr(out, "\"close_ms\": ");
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(atol(p + 12) >= 1500 && atol(p + 12) < 4000, "closed after: %s", out);
    p = strstr(out, "\"ms\": ");
    ck_assert_msg(atol(p + 6) < 6000, "the stream stayed: %s", out);
    ck_assert_int_eq(testup_wait("ws_open", 0, 5000), 0);
    assert_logged("\"method\":\"CONNECT\"", "tunnel idle timeout");
}
END_TEST

/* At a reload the old worker closes an HTTP/2 client's tunnel with 1001
 * before drain_timeout (3 s), as it does an HTTP/1.1 one's. */
START_TEST(h2_tunnel_closed_1001_at_reload)
{
    pid_t master = start_http(NULL, NULL, "send_timeout: 120s");
    char *argv[] = {(char *)python, h_strf(T, "%s/tests/integration/h2ws.py", T->srcdir),
                    "idle",         h_strf(T, "%d", T->port),
                    "10",           NULL};
    spawn_client("idle", argv);
    ck_assert_int_eq(testup_wait("ws_open", 1, 5000), 1);
    ck_assert_int_eq(h_signal(master, SIGHUP), 0);
    char *out = client_out("idle", "\"ms\": ", 15000);
    assert_has(out, "\"close_code\": 1001");
    const char *p = strstr(out, "\"ms\": ");
    ck_assert_msg(atol(p + 6) < 5000, "the stream stayed: %s", out);
    free(out);
}
END_TEST

/* A tunnel the upstream refuses (403) is an ordinary answer: the client's
 * half of the stream, left open, times out like any request body's
 * (body_timeout 2 s) rather than staying for as long as it likes. */
START_TEST(h2_refused_tunnel_body_times_out)
{
    start_http("--ws-refuse", "403", "send_timeout: 120s, body_timeout: 2s, idle_timeout: 2s");
    char *out = h2ws("idle", "8", NULL);
    assert_has(out, "\"status\": 403");
    assert_has(out, "\"ended\"");
    const char *p = strstr(out, "\"ms\": ");
    ck_assert_msg(atol(p + 6) < 5000, "the stream stayed: %s", out);
}
END_TEST

/* An HTTP/2 client's END_STREAM ends its tunnel's dedicated HTTP/1.1
 * connection too (corral's write side shut after what the client sent):
 * the upstream ends its side, and the client's stream ends. */
START_TEST(h2_end_stream_reaches_dedicated_upstream)
{
    start(NULL);
    char *out = h2ws("echo", "1", "fin");
    assert_has(out, "\"echoed\": 1");
    assert_has(out, "\"ended\": \"end_stream\"");
    ck_assert_int_eq(h_json_long(h_testup_stats(T, T->uport, false), "h1_connections"), 1);
    ck_assert_int_eq(testup_wait("ws_open", 0, 5000), 0);
}
END_TEST

/* A client that only answers corral's pings is idle all the same: its
 * pongs do not hold the tunnel past tunnel_idle_timeout (3 s, pings every
 * second). */
START_TEST(h2_pongs_are_not_activity)
{
    start_http(NULL, NULL, "send_timeout: 120s, tunnel_idle_timeout: 3s, tunnel_ping: 1s");
    char *out = h2ws("idle", "10", "pong");
    assert_has(out, "\"close_code\": 1001");
    const char *p = strstr(out, "\"pings\": ");
    ck_assert_msg(atol(p + 9) >= 1, "no ping: %s", out);
    p = strstr(out, "\"close_ms\": ");
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(atol(p + 12) >= 2500 && atol(p + 12) < 5000, "closed after: %s", out);
}
END_TEST

/* A tunnel over the upstream's extended CONNECT (the h2 pool) is closed
 * with 1001 at the idle timeout on both sides: the upstream gets corral's
 * masked close frame too, as a dedicated connection's does. */
START_TEST(extended_connect_upstream_gets_1001)
{
    start_http("--connect-protocol", NULL, "send_timeout: 120s, tunnel_idle_timeout: 2s");
    char *out = h2ws("idle", "8", NULL);
    assert_has(out, "\"close_code\": 1001");
    ck_assert_int_eq(testup_wait("ws_open", 0, 5000), 0);
    char *ts = h_testup_stats(T, T->uport, false);
    ck_assert_int_eq(h_json_long(ts, "h1_connections"), 0);
    assert_has(ts, "\"1001\":1");
}
END_TEST

/* A tunnel the HTTP/2 client ends with RST_STREAM is logged as an
 * HTTP/1.1 one is: status 101, closed by the client, not a reset
 * response (/stats responses.reset stays 0). */
START_TEST(h2_tunnel_reset_by_client_logs_101)
{
    start("--connect-protocol");
    char *out = h2ws("echo", "3", "rst");
    assert_has(out, "\"echoed\": 3");
    assert_logged("\"status\":101", "\"reason\":\"tunnel closed by the client\"");
    char *st = h_admin_stats(T, T->port2);
    ck_assert_msg(st && strstr(st, "\"responses\":{\"reset\":0,"), "%s", st);
}
END_TEST

/* Tunnels take at most half of a pool connection's streams: with the
 * upstream's SETTINGS_MAX_CONCURRENT_STREAMS 2, the first tunnel is an
 * extended CONNECT stream, the second goes to a dedicated connection, and
 * requests still get a stream (they would find capacity 0 otherwise). */
START_TEST(tunnels_take_half_the_pool_streams)
{
    ck_assert_int_gt(h_testup_start(T, T->uport, "--quiet", "--connect-protocol", "--max-streams",
                                    "2", NULL),
                     0);
    start_one_conn();
    for (int i = 0; i < 2; i++) {
        char *name = h_strf(T, "hold%d", i);
        char *argv[] = {(char *)python, h_strf(T, "%s/tests/integration/wsclient.py", T->srcdir),
                        h_strf(T, "%d", T->port), "hold", "15", NULL};
        spawn_client(name, argv);
        free(client_out(name, "\"open\": true", 10000));
        ck_assert_int_eq(testup_wait("ws_open", i + 1, 3000), i + 1);
    }
    char *ts = h_testup_stats(T, T->uport, false);
    ck_assert_int_eq(h_json_long(ts, "h1_connections"), 1);
    ck_assert_int_eq(h_json_long(h_admin_stats(T, T->port2), "tunnel_connections"), 1);
    struct h_http m;
    const char *args[] = {"--resolve", h_strf(T, "edge.test:%d:127.0.0.1", T->port), NULL};
    ck_assert_int_eq(h_curl(T, &m, h_strf(T, "https://edge.test:%d/", T->port), args), 0);
    ck_assert_int_eq(m.status, 200);
}
END_TEST

static Suite *wsh2_suite(void)
{
    Suite *s = suite_create("wsh2");
    TCase *tc = tcase_create("wsh2");
    tcase_set_timeout(tc, 90);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, settings_enable_connect_protocol);
    tcase_add_test(tc, other_connects_refused);
    tcase_add_test(tc, echo_over_extended_connect);
    tcase_add_test(tc, client_reset_ends_upstream_stream);
    tcase_add_test(tc, h2_client_over_dedicated_http1);
    tcase_add_test(tc, http1_client_onto_extended_connect);
    tcase_add_test(tc, client_not_reading_is_flow_controlled);
    tcase_add_test(tc, tunnel_stream_is_not_request_capacity);
    tcase_add_test(tc, h2_tunnel_idle_timeout);
    tcase_add_test(tc, h2_tunnel_closed_1001_at_reload);
    tcase_add_test(tc, h2_refused_tunnel_body_times_out);
    tcase_add_test(tc, h2_end_stream_reaches_dedicated_upstream);
    tcase_add_test(tc, h2_pongs_are_not_activity);
    tcase_add_test(tc, extended_connect_upstream_gets_1001);
    tcase_add_test(tc, h2_tunnel_reset_by_client_logs_101);
    tcase_add_test(tc, tunnels_take_half_the_pool_streams);
    suite_add_tcase(s, tc);
    return s;
}

/* Whether `py -c "import h2"` works. */
static bool imports_h2(const char *py)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1), dup2(fd, 2);
        execlp(py, py, "-c", "import h2.connection", (char *)NULL);
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
        if (imports_h2(pys[i]))
            python = pys[i];
    if (!python) {
        fprintf(stderr,
                "check_wsh2: no python3 imports h2: install python3-h2 (tools/install-deps)\n");
        return 99;
    }
    SRunner *sr = srunner_create(wsh2_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
