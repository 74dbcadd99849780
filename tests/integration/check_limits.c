/* check_limits.c - corral against its open files limit, and under a
 * flood of handshakes.
 *
 * Every client connection takes a descriptor in a worker. These tests run
 * the real corral with small limits (set with prlimit(1) around it, as a
 * service manager's LimitNOFILE= would) and check from outside, through
 * /proc, the admin /stats and the error log, that:
 *   - the master raises the soft limit to the hard one for the workers;
 *   - a worker stops accepting at the connection cap the limit allows
 *     (max_connections: auto), keeps descriptors for its upstream, and
 *     starts again when connections close;
 *   - when accept(2) fails for want of descriptors (an explicit
 *     max_connections above the limit), the worker rests instead of
 *     spinning on the readable listening socket and logging each attempt;
 *   - a request on an open connection is answered at once while a flood
 *     of new clients' RSA-4096 handshakes keeps the worker busy. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NOFILE_CAP 128  /* the limit of the cap test: room for ~90 connections */
#define NOFILE_TIGHT 64 /* the limit of the EMFILE test */
#define EXTRA 20        /* connections beyond the cap, left in the backlog */

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

/* One worker, the admin endpoint on port2, a minute before a silent
 * connection is closed (the test's raw TCP connections never send a
 * ClientHello), testup upstream. */
#define CONFIG_LIMITS                                                                              \
    "workers: 1\n"                                                                                 \
    "drain_timeout: 1s\n"                                                                          \
    "log: {error: @DIR@/error.log, level: info}\n"                                                 \
    "listeners:\n"                                                                                 \
    "  - name: https\n"                                                                            \
    "    address: 127.0.0.1:@PORT@\n"                                                              \
    "    tls:\n"                                                                                   \
    "      certificates:\n"                                                                        \
    "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"                                  \
    "      handshake_timeout: 60s\n"                                                               \
    "      client_hello_timeout: 60s\n"                                                            \
    "upstream:\n"                                                                                  \
    "  addresses: [127.0.0.1:@UPORT@]\n"                                                           \
    "  protocol: h2\n"                                                                             \
    "  connections: 2\n"                                                                           \
    "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: @CERTS@/client.key, "              \
    "sni: lb.test}\n"                                                                              \
    "admin: {address: 127.0.0.1:@PORT2@}\n"

/* Starts testup and corral (config tmpl) under `prlimit --nofile=N:N`
 * (prlimit execs corral: the pid is the master's); waits for its one
 * worker, whose pid goes to *worker. Returns the master. */
static pid_t start_limited(const char *tmpl, int nofile, pid_t *worker)
{
    ck_assert_msg(h_testup_start(T, T->uport, (char *)NULL) > 0, "testup did not start: %s",
                  h_file_tail(T, h_path(T, h_strf(T, "testup-%d.log", T->uport)), 1500));
    char *cfg = h_config_write(T, "corral.yaml", tmpl);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    char *lim = h_strf(T, "--nofile=%d:%d", nofile, nofile);
    char *const argv[] = {"prlimit", lim, "--", (char *)T->bin, "-c", cfg, NULL};
    pid_t m = h_spawn(T, argv, h_path(T, "corral.out"), h_path(T, "corral.err"));
    ck_assert_msg(m > 0, "cannot start prlimit");
    ck_assert_msg(h_wait_port(T->port, true, H_START_MS) && h_wait_port(T->port2, true, 2000),
                  "corral did not listen: stderr: %s | error log: %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    pid_t w[H_MAX_PIDS];
    int n = h_wait_children(m, 1, 5000, w);
    ck_assert_msg(n == 1, "master %d has %d worker(s), expected 1", (int)m, n);
    *worker = w[0];
    return m;
}

/* The soft and hard "Max open files" of pid, from /proc/PID/limits. */
static void read_nofile(pid_t pid, long *soft, long *hard)
{
    char *text = h_read_file(h_strf(T, "/proc/%d/limits", (int)pid), NULL);
    ck_assert_msg(text != NULL, "cannot read /proc/%d/limits", (int)pid);
    char *line = strstr(text, "Max open files");
    ck_assert_msg(line && sscanf(line, "Max open files %ld %ld", soft, hard) == 2,
                  "no open files limit in /proc/%d/limits", (int)pid);
    free(text);
}

/* user + system CPU of pid, in clock ticks (/proc/PID/stat fields 14, 15). */
static long cpu_ticks(pid_t pid)
{
    char *text = h_read_file(h_strf(T, "/proc/%d/stat", (int)pid), NULL);
    ck_assert_msg(text != NULL, "cannot read /proc/%d/stat", (int)pid);
    char *p = strrchr(text, ')'); /* the command may hold spaces */
    unsigned long ut = 0, st = 0;
    ck_assert(p &&
              sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2);
    free(text);
    return (long)(ut + st);
}

/* Lines of the error log that contain needle. */
static int log_count(const char *needle)
{
    char *text = h_read_file(T->error_log, NULL);
    int n = 0;
    for (char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

/* Opens n TCP connections to corral's listener (no TLS: each one is a
 * handshake in progress for a minute, or a connection in the backlog). */
static void connect_n(int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = h_connect(T->port, 2000);
        ck_assert_msg(fds[i] >= 0, "connection %d of %d: %m", i + 1, n);
    }
}

static void assert_serves(void)
{
    struct h_http r;
    h_curl_edge(T, &r, T->port, "/status/200", NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200,
                  "GET /status/200: curl exit %d, HTTP %d, %s | error log: %s", r.exit_code,
                  r.status, r.err, h_file_tail(T, T->error_log, 1500));
}

/* ------------------------------------------------------------ tests */

/* systemd gives services a soft limit of 1024 under a much higher hard
 * one: corral's workers must not be held to the soft one. */
START_TEST(soft_open_files_limit_is_raised_to_the_hard_one)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_max >= 256, "hard open files limit %llu is too low for this test",
                  (unsigned long long)rl.rlim_max);
    rl.rlim_cur = rl.rlim_max / 2; /* corral inherits this soft limit */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

    ck_assert_msg(h_testup_start(T, T->uport, (char *)NULL) > 0, "testup did not start");
    char *cfg = h_config_write(T, "corral.yaml", CONFIG_LIMITS);
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s", h_file_tail(T, T->error_log, 1500));
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_wait_children(m, 1, 5000, w), 1);

    long soft, hard;
    read_nofile(w[0], &soft, &hard);
    ck_assert_msg(soft == (long)rl.rlim_max && hard == (long)rl.rlim_max,
                  "worker's open files limit %ld/%ld, expected the hard limit %llu for both", soft,
                  hard, (unsigned long long)rl.rlim_max);
    char *line = h_strf(T, "open files limit %llu: at most ", (unsigned long long)rl.rlim_max);
    ck_assert_msg(h_file_contains(T->error_log, line), "no '%s' in the error log: %s", line,
                  h_file_tail(T, T->error_log, 1500));
    /* auto: the limit less what the worker keeps for itself */
    long max = h_json_long(h_admin_stats(T, T->port2), "conns_max");
    ck_assert_msg(max > (long)rl.rlim_max - 100 && max < (long)rl.rlim_max,
                  "conns_max %ld for an open files limit of %llu", max,
                  (unsigned long long)rl.rlim_max);
    assert_serves();
}
END_TEST

/* At the cap the worker stops accepting (the rest wait in the backlog),
 * never reaches EMFILE, still reaches its upstream, and accepts again as
 * connections close. */
START_TEST(worker_stops_accepting_at_its_connection_cap)
{
    pid_t worker;
    start_limited(CONFIG_LIMITS, NOFILE_CAP, &worker);
    long max = h_json_long(h_admin_stats(T, T->port2), "conns_max");
    ck_assert_msg(max > 0 && max < NOFILE_CAP - 16,
                  "conns_max %ld under an open files limit of %d: nothing kept for the upstream",
                  max, NOFILE_CAP);
    int n = (int)max + EXTRA;
    int *fds = calloc((size_t)n, sizeof(int));
    ck_assert_ptr_nonnull(fds);
    connect_n(fds, n);

    long open = h_admin_stat_wait(T, T->port2, "conns_open", max, 5000);
    ck_assert_msg(open == max, "%ld connections open, expected the cap %ld | error log: %s", open,
                  max, h_file_tail(T, T->error_log, 1500));
    h_sleep_ms(300); /* nothing more is taken meanwhile */
    ck_assert_int_eq(h_json_long(h_admin_stats(T, T->port2), "conns_open"), max);
    ck_assert_msg(log_count("max_connections reached") == 1, "error log: %s",
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(log_count("Too many open files") == 0, "the worker ran out of descriptors: %s",
                  h_file_tail(T, T->error_log, 1500));

    /* the first connections were accepted first (the backlog is a FIFO):
     * closing 30 of them lets the EXTRA waiting ones in */
    for (int i = 0; i < 30; i++)
        close(fds[i]);
    open = h_admin_stat_wait(T, T->port2, "conns_open", max - 30 + EXTRA, 5000);
    ck_assert_msg(open == max - 30 + EXTRA, "%ld connections open after 30 closed, expected %ld",
                  open, max - 30 + EXTRA);
    assert_serves(); /* a new client, through the upstream */
    for (int i = 30; i < n; i++)
        close(fds[i]);
    free(fds);
}
END_TEST

/* With max_connections above what the limit allows, accept(2) fails with
 * EMFILE while connections wait: the worker must rest, not spin on the
 * readable socket writing a log line per attempt, and take the waiting
 * connections once descriptors are free again. */
START_TEST(accept_without_descriptors_backs_off)
{
    pid_t worker;
    start_limited(CONFIG_LIMITS "max_connections: 1000\n", NOFILE_TIGHT, &worker);
    ck_assert_msg(log_count("max_connections 1000 is more than the open files limit 64") == 1,
                  "no warning about max_connections: %s", h_file_tail(T, T->error_log, 1500));
    int fds[100];
    connect_n(fds, 100);
    ck_assert_msg(
        h_wait_file_line(T->error_log, (const char *const[]){"Too many open files", NULL}, 5000),
        "accept never failed: %s", h_file_tail(T, T->error_log, 1500));
    /* (no /stats while the worker has no descriptor for the admin request) */

    long t0 = cpu_ticks(worker);
    h_sleep_ms(1000);
    long used = cpu_ticks(worker) - t0;
    long hz = sysconf(_SC_CLK_TCK);
    ck_assert_msg(used * 5 < hz, "the worker used %ld of %ld ticks in 1 s with accept failing",
                  used, hz);
    int lines = log_count("Too many open files");
    ck_assert_msg(lines >= 1 && lines <= 2, "%d log lines about accept failing", lines);

    for (int i = 0; i < 100; i++)
        close(fds[i]);
    long open = h_admin_stat_wait(T, T->port2, "conns_open", 0, 5000);
    ck_assert_msg(open == 0, "%ld connections still open after the clients left", open);
    assert_serves(); /* accepting again */
}
END_TEST

/* ------------------------------------------------------------ main */

/* ------------------------------------------------------------ priorities */

/* A client with an open connection, then FLOOD ClientHellos at once (each
 * an RSA-4096 signature for the one worker), then a request on the open
 * connection: prints "req_ms=A flood_ms=B done=N". */
#define FLOOD 150
static const char FLOOD_PY[] =
    "import socket, ssl, sys, time, select\n"
    "port, n = int(sys.argv[1]), int(sys.argv[2])\n"
    "ctx = ssl.create_default_context()\n"
    "ctx.check_hostname = False\n"
    "ctx.verify_mode = ssl.CERT_NONE\n"
    "ctx.set_alpn_protocols(['http/1.1'])\n"
    "def recv(c):\n"
    "    b = c.recv(65536)\n"
    "    if not b:\n"
    "        sys.exit('the connection closed mid-response')\n"
    "    return b\n"
    "def get(c):\n"
    "    c.sendall(b'GET / HTTP/1.1\\r\\nHost: edge.test\\r\\n\\r\\n')\n"
    "    buf = b''\n"
    "    while b'\\r\\n\\r\\n' not in buf:\n"
    "        buf += recv(c)\n"
    "    head, body = buf.split(b'\\r\\n\\r\\n', 1)\n"
    "    assert head.startswith(b'HTTP/1.1 200'), head\n"
    "    cl = [l for l in head.split(b'\\r\\n') if l.lower().startswith(b'content-length:')]\n"
    "    want = int(cl[0].split(b':')[1])\n"
    "    while len(body) < want:\n"
    "        body += recv(c)\n"
    "c = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=30),\n"
    "                    server_hostname='edge.test')\n"
    "get(c)\n"
    "flood = []\n"
    "t0 = time.monotonic()\n"
    "for _ in range(n):\n"
    "    s = socket.create_connection(('127.0.0.1', port), timeout=30)\n"
    "    s.setblocking(False)\n"
    "    t = ctx.wrap_socket(s, server_hostname='edge.test', do_handshake_on_connect=False)\n"
    "    try:\n"
    "        t.do_handshake()\n"
    "    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):\n"
    "        pass\n"
    "    flood.append(t)\n"
    "t1 = time.monotonic()\n"
    "get(c)\n"
    "req_ms = (time.monotonic() - t1) * 1000\n"
    "pending, done = list(flood), 0\n"
    "while pending and time.monotonic() - t0 < 60:\n"
    "    r, _, _ = select.select(pending, [], [], 1)\n"
    "    for t in r:\n"
    "        try:\n"
    "            t.do_handshake()\n"
    "            pending.remove(t)\n"
    "            done += 1\n"
    "        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):\n"
    "            pass\n"
    "flood_ms = (time.monotonic() - t0) * 1000\n"
    "print('req_ms=%.1f flood_ms=%.1f done=%d' % (req_ms, flood_ms, done))\n";

/* Requests on an open connection go before handshakes: a flood of new
 * clients, each an RSA-4096 signature, does not delay the answer to a
 * client already connected by more than a tenth of the flood (the event
 * loop's levels, worker.h: measured 3-6 ms during a 0.5 s flood; 177 ms
 * with the levels merged, 34-44 ms when libevent ran every ready
 * handshake before polling again). Compared with the flood's own length,
 * so that the machine's speed does not matter. */
START_TEST(open_connections_outrank_a_handshake_flood)
{
    ck_assert_msg(h_testup_start(T, T->uport, (char *)NULL) > 0, "testup did not start");
    char *cfg = h_config_write(T, "corral.yaml", CONFIG_LIMITS);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    ck_assert_msg(h_corral_start(T, cfg, T->port) > 0, "corral did not start: %s",
                  h_file_tail(T, T->error_log, 1500));
    char *script = h_path(T, "flood.py");
    ck_assert_int_eq(h_write_file(script, FLOOD_PY), 0);
    char *argv[] = {"python3", script, h_strf(T, "%d", T->port), h_strf(T, "%d", FLOOD), NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 90000, &r), 0);
    double req_ms = -1, flood_ms = -1;
    int done = -1;
    ck_assert_msg(r.exit_code == 0 && r.out &&
                      sscanf(r.out, "req_ms=%lf flood_ms=%lf done=%d", &req_ms, &flood_ms, &done) ==
                          3,
                  "the flood script failed (exit %d): %s %s", r.exit_code, r.out ? r.out : "",
                  r.err ? r.err : "");
    fprintf(stderr,
            "[limits] a request during a flood of %d handshakes: %.1f ms (the flood: %.0f ms)\n",
            FLOOD, req_ms, flood_ms);
    ck_assert_msg(done == FLOOD, "%d of %d flood handshakes completed: %s", done, FLOOD,
                  h_file_tail(T, T->error_log, 1500));
    /* 150 signatures are ~0.5 s of one core here; less means no flood */
    ck_assert_msg(flood_ms >= 250, "the flood took only %.0f ms: not a flood", flood_ms);
    ck_assert_msg(req_ms < flood_ms / 10,
                  "the open connection's request took %.0f ms during a %.0f ms handshake flood",
                  req_ms, flood_ms);
}
END_TEST

static Suite *limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("open_files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, soft_open_files_limit_is_raised_to_the_hard_one);
    tcase_add_test(tc, worker_stops_accepting_at_its_connection_cap);
    tcase_add_test(tc, accept_without_descriptors_backs_off);
    suite_add_tcase(s, tc);
    tc = tcase_create("priorities");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, open_connections_outrank_a_handshake_flood);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(limits_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
