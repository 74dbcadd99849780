/* check_ops.c - what the L4 balancer in front and systemd see (issue 15).
 *
 *   - GET /health on the admin listener: 503 with the reason while no
 *     upstream connection is ready (testup not started yet, then killed),
 *     200 once one is; GET /live stays 200 throughout.
 *   - A drain (SIGUSR2 to the master, or POST /drain on the admin
 *     listener): /health answers 503 "draining" at once while requests are
 *     still served, and corral stops by itself after drain_grace.
 *   - sd_notify: with NOTIFY_SOCKET naming a datagram socket the test binds,
 *     corral sends READY=1 once its listener accepts, RELOADING=1 and
 *     READY=1 around a SIGHUP, STOPPING=1 at SIGTERM.
 *   - etc/corral.service.in passes `systemd-analyze verify`.
 *
 * Real corral, tests/testup/testup as the upstream, curl as the client.
 * Loopback only; every wait is bounded. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static struct h_test *T;

static void setup(void)
{
    T = h_test_begin();
}

static void teardown(void)
{
    unsetenv("NOTIFY_SOCKET");
    h_test_end(T);
    T = NULL;
}

/* ------------------------------------------------------------ helpers */

/* Two workers, the admin endpoint on @PORT2@, the upstream on T->uport
 * (testup, h2), drain_grace as given. Waits for the listener only: the
 * upstream may not be there. */
static pid_t start_corral_admin(const char *grace, const char *admin_host)
{
    const char *text = h_strf(T,
                              "workers: 2\n"
                              "drain_timeout: 2s\n"
                              "drain_grace: %s\n"
                              "log: {error: @DIR@/error.log, level: info, "
                              "access: @DIR@/access.log}\n"
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
                              "  reconnect_min: 50ms\n"
                              "  reconnect_max: 200ms\n"
                              "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                              "key: @CERTS@/client.key, sni: lb.test}\n"
                              "admin: {address: '%s:@PORT2@'}\n",
                              grace, admin_host);
    char *cfg = h_config_write(T, "corral.yaml", text);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start serving on port %d: stderr: %s | error log: %s",
                  T->port, h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(h_wait_port(T->port2, true, 5000), "the admin port never opened");
    return m;
}

static pid_t start_corral(const char *grace)
{
    return start_corral_admin(grace, "127.0.0.1");
}

static pid_t start_up(void)
{
    pid_t pid = h_up_start(T, T->uport, true, NULL);
    ck_assert_msg(pid > 0, "testup did not start on port %d: %s", T->uport,
                  h_file_tail(T, h_strf(T, "%s/testup-%d.log", T->dir, T->uport), 1500));
    return pid;
}

/* An admin request: method GET or POST on path. */
static int admin(struct h_http *r, const char *method, const char *path)
{
    const char *const post[] = {"-X", "POST", NULL};
    return h_curl(T, r, h_strf(T, "http://127.0.0.1:%d%s", T->port2, path),
                  strcmp(method, "POST") == 0 ? post : NULL);
}

/* Polls GET /health every 20 ms until it answers status, for at most
 * timeout_ms; r keeps the last answer. */
static bool wait_health(struct h_http *r, int status, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    do {
        if (admin(r, "GET", "/health") == 0 && r->status == status)
            return true;
        h_sleep_ms(20);
    } while (h_now_ms() < end);
    return false;
}

/* ------------------------------------------------------------ /health, /live */

START_TEST(health_follows_the_upstream)
{
    struct h_http r;
    start_corral("10s");
    /* no upstream yet: not healthy, but alive */
    ck_assert_int_eq(admin(&r, "GET", "/health"), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "no upstream connection ready\n");
    ck_assert_int_eq(admin(&r, "GET", "/live"), 0);
    ck_assert_int_eq(r.status, 200);

    pid_t up = start_up();
    ck_assert_msg(wait_health(&r, 200, 5000), "/health never 200 with the upstream up: %d %s",
                  r.status, r.body);
    ck_assert_str_eq(r.body, "ok\n");
    /* each worker's one connection, in /stats too */
    ck_assert_int_eq(h_admin_stat_wait(T, T->port2, "upstream_ready", 2, 3000), 2);

    /* the upstream dies: every connection to it is gone */
    h_up_kill(T, up);
    ck_assert_msg(wait_health(&r, 503, 3000), "/health still %d with the upstream dead",
                  r.status);
    ck_assert_str_eq(r.body, "no upstream connection ready\n");
    ck_assert_int_eq(h_json_long(h_admin_stats(T, T->port2), "upstream_ready"), 0);
    ck_assert_int_eq(admin(&r, "GET", "/live"), 0);
    ck_assert_int_eq(r.status, 200);

    /* and back */
    start_up();
    ck_assert_msg(wait_health(&r, 200, 5000), "/health not 200 again: %d %s", r.status, r.body);
}
END_TEST

/* A worker that dies takes its upstream connections with it, and /health
 * says a worker is missing until the master has started it again. The
 * same slot is killed four times, so that its restart back-off (100 ms
 * doubling) is 800 ms by then: long enough to look. */
START_TEST(health_fails_while_a_worker_is_down)
{
    struct h_http r;
    start_up();
    pid_t m = start_corral("10s");
    ck_assert_msg(wait_health(&r, 200, 5000), "/health never 200: %d %s", r.status, r.body);
    pid_t kids[8], victim;
    ck_assert_int_eq(h_wait_children(m, 2, 3000, kids), 2);
    victim = kids[0];
    const char *const restart[] = {"worker", "restarting it in", NULL};
    for (int i = 1; i <= 4; i++) {
        pid_t before[8];
        memcpy(before, kids, sizeof(kids));
        ck_assert_int_eq(kill(victim, SIGKILL), 0);
        ck_assert(h_wait_file_lines(T->error_log, restart, i, 3000));
        if (i == 4)
            break;
        ck_assert_int_eq(h_wait_children(m, 2, 3000, kids), 2);
        for (int k = 0; k < 2; k++)
            if (!h_pid_in(kids[k], before, 2))
                victim = kids[k];
    }
    const char *const backoff[] = {"restarting it in 800 ms", NULL};
    ck_assert(h_file_has_line(T->error_log, backoff));
    ck_assert_int_eq(admin(&r, "GET", "/health"), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "1 of 2 workers not running\n");
    ck_assert_int_eq(admin(&r, "GET", "/live"), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(wait_health(&r, 200, 5000), "/health not 200 after the restart: %d %s",
                  r.status, r.body);
}
END_TEST

/* ------------------------------------------------------------ drain */

static void drain_serves_then_stops(bool by_signal)
{
    struct h_http r;
    start_up();
    pid_t m = start_corral("1500ms");
    ck_assert_msg(wait_health(&r, 200, 5000), "/health never 200: %d %s", r.status, r.body);
    long long t0 = h_now_ms();
    if (by_signal) {
        ck_assert_int_eq(h_signal(m, SIGUSR2), 0);
        const char *const started[] = {"SIGUSR2: draining", NULL};
        ck_assert(h_wait_file_line(T->error_log, started, 2000));
    } else {
        ck_assert_int_eq(admin(&r, "GET", "/drain"), 0);
        ck_assert_int_eq(r.status, 405);
        ck_assert_int_eq(admin(&r, "POST", "/drain"), 0);
        ck_assert_int_eq(r.status, 202);
        ck_assert_str_eq(r.body, "draining: stopping in 1500 ms\n");
    }
    /* at once, whichever worker answers */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(admin(&r, "GET", "/health"), 0);
        ck_assert_int_eq(r.status, 503);
        ck_assert_str_eq(r.body, "draining\n");
    }
    /* still serving */
    ck_assert_int_eq(h_curl_edge(T, &r, T->port, "/drain-test", NULL), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(admin(&r, "GET", "/live"), 0);
    ck_assert_int_eq(r.status, 200);
    int status = -1;
    ck_assert_int_eq(h_wait_exit(m, 6000, &status), 0);
    long long took = h_now_ms() - t0;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x", status);
    ck_assert_msg(took >= 1400, "stopped after %lld ms, before drain_grace (1500 ms)", took);
    const char *const over[] = {"drain_grace over: stopping", NULL};
    ck_assert(h_file_has_line(T->error_log, over));
}

START_TEST(drain_by_sigusr2)
{
    drain_serves_then_stops(true);
}
END_TEST

START_TEST(drain_by_post)
{
    drain_serves_then_stops(false);
}
END_TEST

/* The admin address written as IPv4 loopback mapped into IPv6: corral
 * binds it (a socket for a v4-mapped address cannot be IPv6-only), and an
 * IPv4 client on 127.0.0.1 shows there as ::ffff:127.0.0.1, which is
 * loopback: POST /drain is taken, not refused with 403. */
START_TEST(drain_by_post_from_mapped_loopback)
{
    struct h_http r;
    start_up();
    start_corral_admin("1500ms", "[::ffff:127.0.0.1]");
    ck_assert_msg(wait_health(&r, 200, 5000), "/health never 200: %d %s", r.status, r.body);
    ck_assert_int_eq(admin(&r, "POST", "/drain"), 0);
    ck_assert_msg(r.status == 202, "POST /drain from ::ffff:127.0.0.1: %d %s", r.status, r.body);
    ck_assert_int_eq(admin(&r, "GET", "/health"), 0);
    ck_assert_int_eq(r.status, 503);
}
END_TEST

/* ------------------------------------------------------------ systemd */

/* Binds DIR/notify as a datagram socket and points NOTIFY_SOCKET at it. */
static int notify_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = h_path(T, "notify");
    ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
    return fd;
}

/* The next message on fd within timeout_ms, into buf ("" on timeout). */
static const char *notify_next(int fd, char *buf, size_t len, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    buf[0] = '\0';
    if (poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = recv(fd, buf, len - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
    return buf;
}

START_TEST(sd_notify_ready_reload_stop)
{
    char msg[256];
    struct h_http r;
    start_up();
    int fd = notify_socket();
    pid_t m = start_corral("10s");
    /* h_corral_start saw the port open; READY=1 may come a little later
     * (the pools connect), never before the port accepts */
    ck_assert_msg(strstr(notify_next(fd, msg, sizeof(msg), 5000), "READY=1") != NULL,
                  "no READY=1 from corral: '%s' (error log: %s)", msg,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert(h_port_open(T->port));
    ck_assert_int_eq(admin(&r, "GET", "/health"), 0);
    ck_assert_int_eq(r.status, 200);

    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    ck_assert_str_eq(notify_next(fd, msg, sizeof(msg), 3000), "RELOADING=1");
    ck_assert_msg(strstr(notify_next(fd, msg, sizeof(msg), 5000), "READY=1") != NULL,
                  "no READY=1 after the reload: '%s'", msg);
    const char *const reloaded[] = {"reloaded", "generation 2", NULL};
    ck_assert(h_file_has_line(T->error_log, reloaded));

    ck_assert_int_eq(h_signal(m, SIGTERM), 0);
    ck_assert_str_eq(notify_next(fd, msg, sizeof(msg), 3000), "STOPPING=1");
    ck_assert_int_eq(h_wait_exit(m, 6000, NULL), 0);
    close(fd);
}
END_TEST

/* The unit as installed (the sbin path pointed at the binary under test),
 * through systemd's own checker. */
START_TEST(unit_file_verifies)
{
    size_t len;
    char *in = h_read_file(h_strf(T, "%s/etc/corral.service.in", T->srcdir), &len);
    ck_assert_ptr_nonnull(in);
    char bindir[512];
    snprintf(bindir, sizeof(bindir), "%s", T->bin);
    *strrchr(bindir, '/') = '\0';
    /* @sbindir@ and @sysconfdir@, as make substitutes them */
    char *out = malloc(len * 2 + 4096), *o = out;
    for (const char *p = in; *p;) {
        if (strncmp(p, "@sbindir@", 9) == 0) {
            o += sprintf(o, "%s", bindir);
            p += 9;
        } else if (strncmp(p, "@sysconfdir@", 12) == 0) {
            o += sprintf(o, "%s", T->dir);
            p += 12;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    /* the binary is named corral: verify checks that ExecStart exists */
    ck_assert_msg(strcmp(strrchr(T->bin, '/'), "/corral") == 0, "CORRAL_BIN is not .../corral");
    const char *unit = h_path(T, "corral.service");
    ck_assert_int_eq(h_write_file(unit, out), 0);
    free(out);
    free(in);
    char *const argv[] = {"systemd-analyze", "verify", "--man=no", (char *)unit, NULL};
    struct h_run rr;
    ck_assert_int_eq(h_run(T, argv, 30000, &rr), 0);
    ck_assert_msg(rr.exit_code == 0 && rr.err[0] == '\0',
                  "systemd-analyze verify: exit %d: %s%s", rr.exit_code, rr.out, rr.err);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, health_follows_the_upstream);
    tcase_add_test(tc, health_fails_while_a_worker_is_down);
    tcase_add_test(tc, drain_by_sigusr2);
    tcase_add_test(tc, drain_by_post);
    tcase_add_test(tc, drain_by_post_from_mapped_loopback);
    tcase_add_test(tc, sd_notify_ready_reload_stop);
    tcase_add_test(tc, unit_file_verifies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
