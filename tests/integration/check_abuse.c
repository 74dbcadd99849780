/* check_abuse.c - the real corral against clients that hold or waste a
 * worker cheaply (issue 12): a TLS 1.3 client streaming KeyUpdates or
 * empty records after the handoff to corral's record layer (tls_abuse, a
 * raw client of ours), silent TCP connections that never send a
 * ClientHello, and slow or piled-up connections to the admin endpoint.
 * Each time a normal client must still be served at once and the worker
 * must not restart. Upstream: tests/testup/testup. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/* testup, then corral with one worker, the admin endpoint on port2 and
 * extra lines: tls_extra under the listener's tls: (indent 6), top_extra
 * at the top level. Returns the worker's pid. */
static pid_t start(const char *tls_extra, const char *top_extra)
{
    ck_assert_msg(h_testup_start(T, T->uport, (char *)NULL) > 0, "testup did not start");
    char *yaml = h_strf(T,
                        "workers: 1\n"
                        "drain_timeout: 1s\n"
                        "log: {error: @DIR@/error.log, level: debug, access: @DIR@/access.log}\n"
                        "listeners:\n"
                        "  - name: https\n"
                        "    address: 127.0.0.1:@PORT@\n"
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
                        tls_extra, top_extra);
    char *cfg = h_config_write(T, "corral.yaml", yaml);
    ck_assert(cfg != NULL);
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s | %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_wait_children(m, 1, 5000, w), 1);
    return w[0];
}

/* A normal client gets its answer, within ms. */
static void served_within(int ms)
{
    struct h_http r;
    long long t0 = h_now_ms();
    const char *args[] = {"--max-time", h_strf(T, "%.3f", ms / 1000.0), NULL};
    h_curl_edge(T, &r, T->port, "/status/200", args);
    ck_assert_msg(r.exit_code == 0 && r.status == 200,
                  "a normal client: curl exit %d, HTTP %d after %lld ms (limit %d ms): %s | %s",
                  r.exit_code, r.status, h_now_ms() - t0, ms, r.err,
                  h_file_tail(T, T->error_log, 1500));
}

/* The worker is still the one started (no crash, no respawn). */
static void same_worker(pid_t worker)
{
    ck_assert_msg(h_pid_alive(worker), "worker %d is gone: %s", (int)worker,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(!h_file_contains(T->error_log, "killed by signal"), "a worker crashed: %s",
                  h_file_tail(T, T->error_log, 1500));
}

/* tls_abuse, built next to this program. */
static char *abuse_bin(void)
{
    char *dir = h_strf(T, "%s", T->bin); /* builddir/corral */
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return h_strf(T, "%s/tests/integration/tls_abuse", slash ? dir : ".");
}

/* Starts tls_abuse PORT mode n in the background; its line goes to
 * DIR/abuse-mode.out. */
static pid_t abuse_start(const char *mode, long n)
{
    char *argv[] = {abuse_bin(), h_strf(T, "%d", T->port), (char *)mode, h_strf(T, "%ld", n), NULL};
    pid_t pid = h_spawn(T, argv, h_path(T, h_strf(T, "abuse-%s.out", mode)),
                        h_path(T, h_strf(T, "abuse-%s.err", mode)));
    ck_assert_msg(pid > 0, "cannot start %s", argv[0]);
    return pid;
}

/* Waits for it and returns its line. */
static char *abuse_wait(pid_t pid, const char *mode)
{
    int status;
    ck_assert_msg(h_wait_exit(pid, 20000, &status) == 0, "tls_abuse %s did not finish", mode);
    char *out = h_read_file(h_path(T, h_strf(T, "abuse-%s.out", mode)), NULL);
    char *line = h_strf(T, "%s", out ? out : "");
    free(out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tls_abuse %s failed: %s %s", mode,
                  line, h_file_tail(T, h_path(T, h_strf(T, "abuse-%s.err", mode)), 500));
    return line;
}

/* ------------------------------------------------------------ item 5: records */

/* A client streaming KeyUpdates after the handoff is cut off with an
 * unexpected_message alert (10) once past CR_TLSREC_MAX_KEY_UPDATES in a
 * second (20000 come), while a normal client is served at once and the
 * worker lives on. */
START_TEST(key_update_flood_gets_an_alert)
{
    pid_t worker = start("", "");
    pid_t flood = abuse_start("keyupdate", 20000);
    served_within(2000);
    char *line = abuse_wait(flood, "keyupdate");
    ck_assert_msg(strstr(line, "get=200 ") != NULL, "the flood's first request failed: %s", line);
    ck_assert_msg(strstr(line, "result=alert:10") != NULL,
                  "a KeyUpdate flood was not refused with unexpected_message: %s | %s", line,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(h_file_contains(T->error_log, "too many KeyUpdates"), "no reason logged: %s",
                  h_file_tail(T, T->error_log, 1500));
    served_within(2000);
    same_worker(worker);
}
END_TEST

/* Many empty records and a request in one write: corral opens a bounded
 * number per turn of its loop and must come back for the rest by itself
 * (no more bytes come from the client), so the request is answered. */
START_TEST(empty_records_then_a_request_is_answered)
{
    pid_t worker = start("", "");
    pid_t pid = abuse_start("empty", 2000);
    char *line = abuse_wait(pid, "empty");
    ck_assert_msg(strstr(line, "get=200 sent=2000 result=response:200") != NULL,
                  "the request behind 2000 empty records: %s | %s", line,
                  h_file_tail(T, T->error_log, 1500));
    same_worker(worker);
}
END_TEST

/* ------------------------------------------------------------ item 8: silent connections */

#define ADMIN "admin: {address: 127.0.0.1:@PORT2@}\n"

/* Waits until the peer closes fd (EOF or reset), for at most ms; returns
 * h_now_ms() then, or -1. */
static long long wait_closed(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char b[64];
    ssize_t n = recv(fd, b, sizeof(b), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
        return h_now_ms();
    return -1;
}

/* Connections that never send a byte are not handshakes: more of them than
 * max_handshakes do not stop accepting (a TLS client is served at once)
 * and each is closed client_hello_timeout after it was accepted. */
START_TEST(silent_connections_do_not_block_accepting)
{
    enum { SILENT = 24 }; /* max_handshakes 4 */
    pid_t worker = start("      max_handshakes: 4\n      client_hello_timeout: 1500ms\n", ADMIN);
    int fds[SILENT];
    long long t0 = h_now_ms();
    for (int i = 0; i < SILENT; i++) {
        fds[i] = h_connect(T->port, 2000);
        ck_assert_msg(fds[i] >= 0, "connection %d: %s", i, strerror(errno));
    }
    long open = h_admin_stat_wait(T, T->port2, "conns_open", SILENT, 1000);
    ck_assert_msg(open == SILENT,
                  "%ld of %d silent connections accepted: they hold max_handshakes (4) | %s", open,
                  SILENT, h_file_tail(T, T->error_log, 1000));
    ck_assert_int_eq(h_json_long(h_admin_stats(T, T->port2), "handshakes_active"), 0);
    served_within(1000);
    for (int i = 0; i < SILENT; i++) {
        long long at = wait_closed(fds[i], 5000);
        ck_assert_msg(at >= 0, "silent connection %d still open after client_hello_timeout", i);
        ck_assert_msg(at - t0 >= 1300 && at - t0 <= 4000,
                      "silent connection %d closed %lld ms after it connected, expected about "
                      "1500 (client_hello_timeout)",
                      i, at - t0);
        close(fds[i]);
    }
    ck_assert_int_eq(h_admin_stat_wait(T, T->port2, "timeout", SILENT, 2000), SILENT);
    same_worker(worker);
}
END_TEST

/* B connects and stays silent (accepted, not a handshake); once told (the
 * file argv[2] appears) it does its TLS handshake. */
static const char WAITER_PY[] = "import os, socket, ssl, sys, time\n"
                                "port, go = int(sys.argv[1]), sys.argv[2]\n"
                                "s = socket.create_connection(('127.0.0.1', port), timeout=15)\n"
                                "end = time.monotonic() + 10\n"
                                "while not os.path.exists(go) and time.monotonic() < end:\n"
                                "    time.sleep(0.01)\n"
                                "ctx = ssl.create_default_context()\n"
                                "ctx.check_hostname = False\n"
                                "ctx.verify_mode = ssl.CERT_NONE\n"
                                "ctx.wrap_socket(s, server_hostname='edge.test')\n";

/* A ClientHello that arrives while max_handshakes are in progress waits,
 * unread, for one to end, and is then served: the cap holds for
 * connections already accepted too. */
START_TEST(hello_waits_for_a_handshake_slot)
{
    pid_t worker = start("      max_handshakes: 1\n      handshake_timeout: 2s\n", ADMIN);
    char *script = h_path(T, "waiter.py"), *go = h_path(T, "go");
    ck_assert_int_eq(h_write_file(script, WAITER_PY), 0);
    char *argv[] = {"python3", script, h_strf(T, "%d", T->port), go, NULL};
    pid_t b = h_spawn(T, argv, h_path(T, "waiter.out"), h_path(T, "waiter.err"));
    ck_assert(b > 0);
    ck_assert_int_eq(h_admin_stat_wait(T, T->port2, "conns_open", 1, 3000), 1);
    /* A: the start of a ClientHello, then nothing: holds the one slot */
    static const unsigned char half[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    int a = h_connect(T->port, 1000);
    ck_assert(a >= 0 && write(a, half, sizeof(half)) == (ssize_t)sizeof(half));
    ck_assert_int_eq(h_admin_stat_wait(T, T->port2, "handshakes_active", 1, 2000), 1);
    long long t0 = h_now_ms();
    ck_assert_int_eq(h_write_file(go, "go"), 0);
    int st;
    ck_assert_msg(h_wait_exit(b, 10000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "B's handshake failed: %s | %s", h_file_tail(T, h_path(T, "waiter.err"), 800),
                  h_file_tail(T, T->error_log, 1000));
    long long took = h_now_ms() - t0;
    ck_assert_msg(took >= 1200,
                  "B's handshake took %lld ms while A held the only slot until its 2 s timeout",
                  took);
    ck_assert_int_eq(h_admin_stat_wait(T, T->port2, "timeout", 1, 2000), 1); /* A's */
    close(a);
    same_worker(worker);
}
END_TEST

/* ------------------------------------------------------------ item 15: admin */

#define ADMIN_LIMITS "admin: {address: 127.0.0.1:@PORT2@, max_connections: 4, timeout: 1500ms}\n"

/* Sends req on a new admin connection; returns what came back (at most
 * 2 s), owned by the test. */
static char *admin_raw(const char *req, size_t len)
{
    int fd = h_connect(T->port2, 1000);
    ck_assert_msg(fd >= 0, "cannot connect to the admin port: %s", strerror(errno));
    ck_assert(send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return h_strf(T, "%s", buf);
}

/* Slow admin clients (a byte every 250 ms, never a whole request) fill
 * admin.max_connections: one more is refused at once with 503; each slow
 * one is cut off with 408 at admin.timeout after it connected, although it
 * keeps sending; then the endpoint serves again. A request past 4 KB is
 * 431. */
START_TEST(admin_slow_clients_are_capped_and_cut_off)
{
    enum { SLOW = 4 };
    pid_t worker = start("", ADMIN_LIMITS);
    int fds[SLOW];
    long long t0 = h_now_ms(), closed[SLOW];
    char got[SLOW][64];
    for (int i = 0; i < SLOW; i++) {
        fds[i] = h_connect(T->port2, 1000);
        ck_assert(fds[i] >= 0 && send(fds[i], "G", 1, MSG_NOSIGNAL) == 1);
        closed[i] = -1;
        got[i][0] = '\0';
    }
    static const char health[] = "GET /health HTTP/1.0\r\n\r\n";
    char *r = admin_raw(health, sizeof(health) - 1);
    ck_assert_msg(strncmp(r, "HTTP/1.1 503", 12) == 0,
                  "a fifth admin connection while four are held: \"%.60s\"", r);
    int open = SLOW;
    for (int step = 0; open > 0 && step < 20; step++) {
        h_sleep_ms(250); /* the slow client's pace, not a barrier */
        for (int i = 0; i < SLOW; i++) {
            if (closed[i] >= 0)
                continue;
            (void)send(fds[i], "E", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            ssize_t n = recv(fds[i], got[i], sizeof(got[i]) - 1, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || n > 0) {
                got[i][n > 0 ? n : 0] = '\0';
                closed[i] = h_now_ms();
                open--;
            }
        }
    }
    for (int i = 0; i < SLOW; i++) {
        ck_assert_msg(closed[i] >= 0, "slow admin connection %d still open after %lld ms", i,
                      h_now_ms() - t0);
        ck_assert_msg(closed[i] - t0 >= 1200 && closed[i] - t0 <= 3000,
                      "slow admin connection %d cut off after %lld ms, expected about 1500 "
                      "(admin.timeout)",
                      i, closed[i] - t0);
        ck_assert_msg(strncmp(got[i], "HTTP/1.1 408", 12) == 0,
                      "slow admin connection %d got \"%.40s\", expected a 408", i, got[i]);
        close(fds[i]);
    }
    r = admin_raw(health, sizeof(health) - 1);
    ck_assert_msg(strncmp(r, "HTTP/1.1 200", 12) == 0, "/health after the slow ones: \"%.60s\"", r);
    char big[5000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    r = admin_raw(big, sizeof(big));
    ck_assert_msg(strncmp(r, "HTTP/1.1 431", 12) == 0, "a 5000-byte admin request: \"%.60s\"", r);
    same_worker(worker);
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *abuse_suite(void)
{
    Suite *s = suite_create("abuse");
    TCase *tc = tcase_create("records");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, key_update_flood_gets_an_alert);
    tcase_add_test(tc, empty_records_then_a_request_is_answered);
    suite_add_tcase(s, tc);
    tc = tcase_create("accept");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, silent_connections_do_not_block_accepting);
    tcase_add_test(tc, hello_waits_for_a_handshake_slot);
    suite_add_tcase(s, tc);
    tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, admin_slow_clients_are_capped_and_cut_off);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(abuse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
