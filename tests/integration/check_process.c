/* check_process.c - corral's processes: master, workers, signals, reload.
 *
 * Each test starts the demo upstream and the real corral on free loopback
 * ports, drives them with curl and signals, and checks what can be seen from
 * outside: exit statuses, /proc, open ports, responses, logs. The harness
 * kills everything a test started, even when an assertion fails. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DRAIN_MS 3000 /* drain_timeout in H_CONFIG_BASE */

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

/* Starts the upstream and corral with config tmpl on T->port; waits until the
 * master has `workers` children; their pids go to w. Returns the master. */
static pid_t start_corral(const char *tmpl, int workers, pid_t *w)
{
    ck_assert_msg(h_upstream_start(T) == 0, "demo upstream did not start: %s",
                  h_file_tail(T, h_path(T, "upstream.log"), 1500));
    char *cfg = h_config_write(T, "corral.yaml", tmpl);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start serving on port %d: stderr: %s | error log: %s",
                  T->port, h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    int n = h_wait_children(m, workers, 5000, w);
    ck_assert_msg(n == workers, "master %d has %d worker(s), expected %d", (int)m, n, workers);
    return m;
}

/* One request through corral on port: 200 with the upstream's JSON echoing
 * the path. */
static void assert_serves(int port, const char *path)
{
    struct h_http r;
    h_curl_edge(T, &r, port, path, NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200,
                  "GET %s via port %d: curl exit %d, HTTP %d, %s | body: %.300s | error log: %s",
                  path, port, r.exit_code, r.status, r.err, r.body,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(strstr(r.body, "\"upstream\":\"demo\"") != NULL,
                  "GET %s: the body is not the upstream's: %.300s", path, r.body);
    char *uri = h_strf(T, "\"uri\":\"%s\"", path);
    ck_assert_msg(strstr(r.body, uri) != NULL, "GET %s: upstream saw another uri: %.300s", path,
                  r.body);
}

/* One request through corral on T->port to testup: 200. */
static void assert_serves_any(const char *path)
{
    struct h_http r;
    h_curl_edge(T, &r, T->port, path, NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200,
                  "GET %s: curl exit %d, HTTP %d, %s | error log: %s", path, r.exit_code, r.status,
                  r.err, h_file_tail(T, T->error_log, 1500));
}

/* Waits (bounded) until none of the n pids is alive. */
static bool wait_all_gone(const pid_t *pids, int n, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++)
            alive += h_pid_alive(pids[i]);
        if (alive == 0)
            return true;
        if (h_now_ms() >= end)
            return false;
        h_sleep_ms(20);
    }
}

/* ------------------------------------------------------------ in flight
 *
 * Graceful stops and reloads are judged by requests in flight: testup
 * (tests/testup) is the upstream, /delay/MS holds a request MS ms, and its
 * /__stats says when the request has reached it. */

/* Starts testup on T->uport and corral (H_CONFIG_BASE + extra) with
 * `workers` workers, their pids in w. Returns the master. */
static pid_t start_testup_corral(int workers, const char *extra, pid_t *w)
{
    ck_assert_msg(h_testup_start(T, T->uport, "--quiet", (char *)NULL) > 0,
                  "testup did not start: %s",
                  h_file_tail(T, h_path(T, h_strf(T, "testup-%d.log", T->uport)), 1000));
    char *cfg =
        h_config_write(T, "corral.yaml",
                       h_strf(T, "%s\n%s", H_CONFIG_BASE,
                              extra ? extra : "")); /* H_CONFIG_BASE's last line has no newline */
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start serving on port %d: stderr: %s | error log: %s",
                  T->port, h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    int n = h_wait_children(m, workers, 5000, w);
    ck_assert_msg(n == workers, "master %d has %d worker(s), expected %d", (int)m, n, workers);
    return m;
}

/* Waits (bounded) until testup has n requests in flight. */
static void wait_upstream_inflight(long n, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    long have = -1;
    while (h_now_ms() < end) {
        char *js = h_testup_stats(T, T->uport, false);
        if (js && (have = h_json_long(js, "inflight")) >= n)
            return;
        h_sleep_ms(30);
    }
    ck_abort_msg("testup has %ld request(s) in flight after %d ms, expected %ld | error log: %s",
                 have, timeout_ms, n, h_file_tail(T, T->error_log, 1500));
}

/* Starts a curl over HTTP/2 or HTTP/1.1 for a request the upstream holds
 * delay_ms, and waits until the upstream has it. */
static void start_slow(struct h_up_bg *b, bool h2, int delay_ms)
{
    const char *args[] = {h2 ? "--http2" : "--http1.1", NULL};
    ck_assert_int_eq(h_up_bg_curl(T, b, T->port, h_strf(T, "/delay/%d", delay_ms), args), 0);
    wait_upstream_inflight(1, 3000);
}

static void assert_slow_ok(struct h_up_bg *b, const char *what)
{
    ck_assert_msg(h_up_bg_wait(T, b, 8000) == 0, "%s: curl did not finish", what);
    ck_assert_msg(b->exit_code == 0 && b->status == 200,
                  "%s: the request in flight got curl exit %d, HTTP %d: %s | error log: %s", what,
                  b->exit_code, b->status, h_file_tail(T, b->out, 300),
                  h_file_tail(T, T->error_log, 1500));
}

/* A request in flight (1.5 s at the upstream) across sig: it gets its 200;
 * the port refuses new connections within 1 s, the master exits 0 well
 * before its own kill deadline (drain_timeout + 2 s), every worker goes. */
static void check_graceful_stop(int sig, bool h2)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_testup_corral(2, NULL, w);
    struct h_up_bg b;
    start_slow(&b, h2, 1500);
    long long t0 = h_now_ms();
    ck_assert_int_eq(h_signal(m, sig), 0);
    ck_assert_msg(h_wait_port(T->port, false, 1000),
                  "port %d still accepts 1 s after signal %d (master %s)", T->port, sig,
                  h_pid_alive(m) ? "alive" : "gone");
    assert_slow_ok(&b, h2 ? "h2" : "http/1.1");
    int st = 0;
    ck_assert_msg(h_wait_exit(m, DRAIN_MS, &st) == 0,
                  "master still running %d ms after signal %d | error log: %s", DRAIN_MS, sig,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "master did not exit 0 after signal %d: %s %d (after %lld ms) | error log: %s",
                  sig, WIFEXITED(st) ? "exit" : "killed by signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), h_now_ms() - t0,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(wait_all_gone(w, 2, 1000), "worker %d or %d outlived the master", (int)w[0],
                  (int)w[1]);
    const char *killed[] = {"drain timeout", NULL};
    ck_assert_msg(!h_file_has_line(T->error_log, killed), "the drain timed out: %s",
                  h_file_tail(T, T->error_log, 1500));
}

/* The same across SIGHUP: the request in flight is answered by the old
 * worker, new requests by the new generation, and the old workers exit by
 * themselves (no drain timeout). */
static void check_reload_inflight(bool h2)
{
    pid_t w[H_MAX_PIDS], now[H_MAX_PIDS];
    pid_t m = start_testup_corral(2, NULL, w);
    struct h_up_bg b;
    start_slow(&b, h2, 1500);
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    const char *rl[] = {"reloaded", "generation 2", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, rl, 3000), "no reload logged: %s",
                  h_file_tail(T, T->error_log, 1500));
    struct h_http r;
    h_curl_edge(T, &r, T->port, "/after-reload", NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "after the reload: curl exit %d, HTTP %d",
                  r.exit_code, r.status);
    assert_slow_ok(&b, h2 ? "h2 across SIGHUP" : "http/1.1 across SIGHUP");
    ck_assert_msg(wait_all_gone(w, 2, DRAIN_MS), "the old workers did not exit | error log: %s",
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 2, 2000, now), 2);
    const char *killed[] = {"drain timeout", NULL};
    ck_assert_msg(!h_file_has_line(T->error_log, killed), "the drain timed out: %s",
                  h_file_tail(T, T->error_log, 1500));
    ck_assert(h_pid_alive(m));
}

/* ------------------------------------------------------------ harness */

/* The harness's own plumbing against the demo upstream alone: certs, ports,
 * nginx start, curl with a client certificate, stub_status counting, /proc
 * children. If this fails, the process tests below say nothing. */
START_TEST(harness_upstream_direct)
{
    ck_assert_msg(h_upstream_start(T) == 0, "demo upstream did not start: %s",
                  h_file_tail(T, h_path(T, "upstream.log"), 1500));
    long a0 = h_upstream_accepts(T);
    ck_assert_int_eq(a0, 0);

    const char *args[] = {"--resolve", h_strf(T, "lb.test:%d:127.0.0.1", T->uport),
                          "--cert",    h_strf(T, "%s/client.crt", T->certs),
                          "--key",     h_strf(T, "%s/client.key", T->certs),
                          NULL};
    struct h_http r;
    h_curl(T, &r, h_strf(T, "https://lb.test:%d/direct?x=1", T->uport), args);
    ck_assert_msg(r.exit_code == 0, "curl exit %d: %s", r.exit_code, r.err);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.version, "2");
    ck_assert_msg(strstr(r.body, "\"uri\":\"/direct?x=1\"") != NULL, "body: %s", r.body);
    ck_assert_msg(strstr(r.body, "client.test") != NULL, "no client cert seen: %s", r.body);
    ck_assert_int_eq(h_upstream_accepts(T), 1);

    /* HTTP/1.1 and no client certificate: nginx refuses (400) */
    const char *args11[] = {"--http1.1", "--resolve", args[1], NULL};
    h_curl(T, &r, h_strf(T, "https://lb.test:%d/", T->uport), args11);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.version, "1.1");
    ck_assert_int_eq(h_upstream_accepts(T), 2);

    /* nginx master + 1 worker, seen through /proc */
    pid_t kids[H_MAX_PIDS];
    ck_assert_int_eq(h_children(T->upstream, kids, H_MAX_PIDS), 1);
    ck_assert(h_pid_alive(kids[0]));

    /* a config template expands */
    char *cfg = h_config_write(T, "x.yaml", "a: @PORT@ @DIR@ @CERTS@ @UPORT@ @x@\n");
    ck_assert_ptr_nonnull(cfg);
    char *want = h_strf(T, "a: %d %s %s %d @x@\n", T->port, T->dir, T->certs, T->uport);
    ck_assert_msg(h_file_contains(cfg, want), "expanded: %s", h_file_tail(T, cfg, 500));

    /* stop: the port closes, nginx's worker goes too */
    h_upstream_stop(T);
    ck_assert(!h_port_open(T->uport));
    ck_assert(!h_pid_alive(kids[0]));
}
END_TEST

/* ------------------------------------------------------------ process */

/* 1. SIGTERM and SIGINT: a request in flight is answered, then a graceful
 * stop, exit 0, workers gone, port closed; over HTTP/1.1 and HTTP/2. */
START_TEST(sigterm_stops_gracefully)
{
    check_graceful_stop(SIGTERM, false);
}
END_TEST

START_TEST(sigterm_stops_gracefully_h2)
{
    check_graceful_stop(SIGTERM, true);
}
END_TEST

/* 5a. SIGINT behaves like SIGTERM. */
START_TEST(sigint_stops_gracefully)
{
    check_graceful_stop(SIGINT, true);
}
END_TEST

START_TEST(reload_keeps_inflight_h1)
{
    check_reload_inflight(false);
}
END_TEST

START_TEST(reload_keeps_inflight_h2)
{
    check_reload_inflight(true);
}
END_TEST

/* CPU ticks (user + system) the process has used, from /proc/PID/stat. */
static long cpu_ticks(pid_t pid)
{
    char *st = h_read_file(h_strf(T, "/proc/%d/stat", (int)pid), NULL);
    ck_assert_msg(st != NULL, "cannot read /proc/%d/stat", (int)pid);
    const char *p = strrchr(st, ')'); /* the command may hold spaces */
    unsigned long ut = 0, stime = 0;
    ck_assert(p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                                  &stime) == 2);
    free(st);
    return (long)(ut + stime);
}

/* A stop right after a reload, while the old workers still wait for the
 * handoff and one drains a 2.5 s request: the master waits in poll for its
 * children, it does not spin on a deadline it never acts on (it used to
 * burn a whole core until the old workers were gone). */
START_TEST(stop_during_handoff_does_not_spin)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_testup_corral(2, NULL, w);
    struct h_up_bg b;
    start_slow(&b, false, 2500);
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    ck_assert_int_eq(h_signal(m, SIGTERM), 0);
    h_sleep_ms(300); /* the stop taken in */
    long t0 = cpu_ticks(m);
    h_sleep_ms(1500);
    long used = cpu_ticks(m) - t0;
    ck_assert_msg(h_pid_alive(m), "the master is gone before its worker drained");
    ck_assert_msg(used < 30, "the master used %ld ticks of CPU in 1.5 s while waiting (a spin)",
                  used);
    assert_slow_ok(&b, "http/1.1 across SIGHUP then SIGTERM");
    int st = 0;
    ck_assert_msg(h_wait_exit(m, DRAIN_MS, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the master did not exit 0 | error log: %s", h_file_tail(T, T->error_log, 1500));
}
END_TEST

/* A request longer than drain_timeout: the worker gives up on it at
 * drain_timeout (the client's connection is closed: no answer), says so in
 * the error log with what it cut, and the master still exits 0, before its
 * own kill deadline. */
START_TEST(drain_timeout_cuts_the_rest)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_testup_corral(2, NULL, w);
    struct h_up_bg b;
    start_slow(&b, false, 8000);
    long long t0 = h_now_ms();
    ck_assert_int_eq(h_signal(m, SIGTERM), 0);
    ck_assert_msg(h_up_bg_wait(T, &b, DRAIN_MS + 3000) == 0, "curl still waits %d ms after SIGTERM",
                  DRAIN_MS + 3000);
    long long took = h_now_ms() - t0;
    ck_assert_msg(b.exit_code != 0 && b.status == 0,
                  "the request cut by the drain timeout got curl exit %d, HTTP %d", b.exit_code,
                  b.status);
    ck_assert_msg(took >= DRAIN_MS - 200 && took < DRAIN_MS + 1500,
                  "the request was cut after %lld ms, drain_timeout is %d ms", took, DRAIN_MS);
    int st = 0;
    ck_assert_msg(h_wait_exit(m, 3000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "master did not exit 0 | error log: %s", h_file_tail(T, T->error_log, 1500));
    const char *line[] = {"drain timeout: closing 1 connection(s) still open, with 1 request(s) "
                          "in flight",
                          NULL};
    ck_assert_msg(h_file_has_line(T->error_log, line), "the drain timeout is not logged: %s",
                  h_file_tail(T, T->error_log, 1500));
}
END_TEST

/* Five reloads under HTTP/2 (h2load, 8 connections x 4 streams) and
 * HTTP/1.1 keep-alive (wrk, 8 connections) load: not one HTTP/1.1 request
 * fails, and no drain needs its timeout (nothing hangs). */
START_TEST(reloads_under_load_lose_nothing)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_testup_corral(2, NULL, w);
    struct h_adm_load l;
    const char *h2args[] = {"-c", "8", "-m", "4", "-D", "6", NULL};
    ck_assert_int_eq(h_adm_h2load_start(T, &l, T->port, "/", h2args), 0);
    char *wout = h_path(T, "wrk.out");
    char *wrk[] = {
        "wrk", "-c", "8", "-t", "1", "-d", "6s", h_strf(T, "https://127.0.0.1:%d/", T->port), NULL};
    pid_t wp = h_spawn(T, wrk, wout, wout);
    ck_assert(wp > 0);
    h_sleep_ms(700); /* pacing the reloads, not a barrier */
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(h_signal(m, SIGHUP), 0);
        const char *rl[] = {"reloaded", h_strf(T, "generation %d,", i + 2), NULL};
        ck_assert_msg(h_wait_file_line(T->error_log, rl, 3000), "reload %d not logged: %s", i + 1,
                      h_file_tail(T, T->error_log, 1500));
        h_sleep_ms(900);
    }
    ck_assert_int_eq(h_adm_h2load_wait(T, &l, 15000), 0);
    int st = 0;
    ck_assert_msg(h_wait_exit(wp, 10000, &st) == 0, "wrk did not finish");
    char *wtext = h_read_file(wout, NULL);
    /* h2load (nghttp2 1.52) does not open a new connection after a GOAWAY
     * and counts as failed what it tries to send after one: its h2 figures
     * are the client's, not asserted here */
    ck_assert_msg(l.done > 1000 && l.timeouts == 0,
                  "h2load across 5 reloads: %ld done, %ld failed, %ld errored, %ld timeouts | "
                  "error log: %s",
                  l.done, l.failed, l.errored, l.timeouts, h_file_tail(T, T->error_log, 1500));
    const char *cut[] = {"drain timeout", NULL};
    ck_assert_msg(!h_file_has_line(T->error_log, cut), "a drain timed out under load: %s",
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(wtext && strstr(wtext, "requests in") && !strstr(wtext, "Socket errors") &&
                      !strstr(wtext, "Non-2xx"),
                  "wrk across 5 reloads: %s", wtext ? wtext : "(no output)");
    free(wtext);
}
END_TEST

/* ------------------------------------------------------------ handoff */

#define RCAP 4 /* upstream.max_streams of start_capped */

/* testup (--work-after-reset: a request abandoned by corral stays in flight
 * there until its answer would have been ready) behind corral with 1 worker,
 * upstream.max_streams RCAP over RCAP connections of protocol, and
 * drain_timeout drain_s. */
static pid_t start_capped(const char *protocol, int drain_s, pid_t *w)
{
    ck_assert_msg(h_testup_start(T, T->uport, "--max-streams", "128", "--work-after-reset",
                                 "--quiet", (char *)NULL) > 0,
                  "testup did not start");
    char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T,
               "workers: 1\n"
               "drain_timeout: %ds\n"
               "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
               "listeners:\n"
               "  - name: https\n"
               "    address: 127.0.0.1:@PORT@\n"
               "    tls:\n"
               "      certificates:\n"
               "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
               "upstream:\n"
               "  addresses: [127.0.0.1:@UPORT@]\n"
               "  protocol: %s\n"
               "  connections: %d\n"
               "  max_streams: %d\n"
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: "
               "@CERTS@/client.key, sni: lb.test}\n",
               drain_s, protocol, RCAP, RCAP));
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s", h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, w), 1);
    return m;
}

/* SIGHUP to m, then waits until the reload is logged and the old worker
 * drains (its listener closed: new connections reach the new worker). */
static void reload_and_wait_drain(pid_t m)
{
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    const char *rl[] = {"reloaded", "generation 2,", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, rl, 5000), "the reload is not logged: %s",
                  h_file_tail(T, T->error_log, 1500));
    const char *dr[] = {"draining", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, dr, 5000), "the old worker does not drain: %s",
                  h_file_tail(T, T->error_log, 1500));
}

/* The cap through a reload: the old worker holds RCAP requests at the
 * upstream when the new one takes over; the new worker's requests wait
 * until the old one's are done instead of going out beside them, so the
 * upstream never sees more than upstream.max_streams, and every request
 * gets its 200 (the new worker used to send its RCAP at once: testup peaked
 * at 2 x RCAP). */
static void check_reload_cap(const char *protocol)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_capped(protocol, 10, w);
    struct h_up_bg old[RCAP], nw[RCAP];
    const char *args[] = {"--http1.1", NULL};
    for (int i = 0; i < RCAP; i++)
        ck_assert_int_eq(h_up_bg_curl(T, &old[i], T->port, "/delay/1500", args), 0);
    wait_upstream_inflight(RCAP, 4000);
    reload_and_wait_drain(m);
    for (int i = 0; i < RCAP; i++)
        ck_assert_int_eq(h_up_bg_curl(T, &nw[i], T->port, "/delay/300", args), 0);
    for (int i = 0; i < RCAP; i++) {
        assert_slow_ok(&old[i], "a request of the old worker");
        assert_slow_ok(&nw[i], "a request of the new worker");
    }
    char *js = h_testup_stats(T, T->uport, false);
    ck_assert_msg(js != NULL, "no testup stats");
    long peak = h_json_long(js, "max_inflight");
    ck_assert_msg(peak == RCAP,
                  "upstream %s: testup peaked at %ld in flight across the reload, the cap is %d "
                  "| %s",
                  protocol, peak, RCAP, js);
}

START_TEST(reload_holds_the_cap_h2)
{
    check_reload_cap("h2");
}
END_TEST

START_TEST(reload_holds_the_cap_h1)
{
    check_reload_cap("http/1.1");
}
END_TEST

/* A drained worker whose last upstream exchange ends after its last client
 * left exits then, not at drain_timeout (10 s here): the client abandons a
 * 2.5 s request after 0.5 s, the upstream goes on with it. */
static void check_drained_exit(const char *protocol)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_capped(protocol, 10, w);
    struct h_up_bg b;
    const char *args[] = {"--http1.1", "--max-time", "0.5", NULL};
    ck_assert_int_eq(h_up_bg_curl(T, &b, T->port, "/delay/2500", args), 0);
    ck_assert(h_up_bg_wait(T, &b, 3000) == 0);
    ck_assert_msg(b.status == 0, "the abandoned request got HTTP %d", b.status);
    long long t0 = h_now_ms();
    reload_and_wait_drain(m);
    ck_assert_msg(wait_all_gone(w, 1, 8000), "the old worker %d is still there 8 s after SIGHUP",
                  (int)w[0]);
    long long took = h_now_ms() - t0;
    ck_assert_msg(took < 4500,
                  "upstream %s: the old worker exited %lld ms after SIGHUP (its last upstream "
                  "exchange ended at about 2 s, drain_timeout is 10 s)",
                  protocol, took);
    const char *cut[] = {"drain timeout", NULL};
    ck_assert_msg(!h_file_has_line(T->error_log, cut), "the drain timed out: %s",
                  h_file_tail(T, T->error_log, 1500));
    assert_serves_any("/after");
}

START_TEST(drained_worker_exits_when_upstream_done_h2)
{
    check_drained_exit("h2");
}
END_TEST

START_TEST(drained_worker_exits_when_upstream_done_h1)
{
    check_drained_exit("http/1.1");
}
END_TEST

/* A request that crosses the idle close on the wire is answered, not
 * dropped (idle_timeout 1 s): over HTTP/1.1, one whose TLS record is half
 * in when the idle timer fires (corral used to close at once, the rest
 * met a closed socket); over HTTP/2, one sent before the client read the
 * close (corral's final GOAWAY left it out and the connection closed
 * under it; now the idle close is the drain's notice and PING first).
 * tests/integration/idlerace.py is the client. */
static void check_idle_race(const char *proto)
{
    pid_t w[H_MAX_PIDS];
    start_testup_corral(2, "http: {idle_timeout: 1s}\n", w);
    char *argv[] = {"python3",     h_strf(T, "%s/tests/integration/idlerace.py", T->srcdir),
                    (char *)proto, h_strf(T, "%d", T->port),
                    "1000",        NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 15000, &r), 0);
    ck_assert_msg(r.exit_code == 0 && strstr(r.out, "status=200"),
                  "%s: the request that crossed the idle close: exit %d: %s %s | error log: %s",
                  proto, r.exit_code, r.out, r.err, h_file_tail(T, T->error_log, 1000));
}

START_TEST(idle_close_race_h1)
{
    check_idle_race("h1");
}
END_TEST

START_TEST(idle_close_race_h2)
{
    check_idle_race("h2");
}
END_TEST

/* A connection corral closes for a limit while a request is in flight:
 * the access log says which limit (it said "connection closed before the
 * response was sent", as if the client had left). Here a client that asks
 * for 200 MB and never reads, with body_timeout 1 s. */
START_TEST(limit_close_names_the_limit)
{
    pid_t w[H_MAX_PIDS];
    start_testup_corral(2, "http: {body_timeout: 1s}\n", w);
    const char *py = "import socket, ssl, sys, time\n"
                     "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
                     "ctx.check_hostname = False\n"
                     "ctx.verify_mode = ssl.CERT_NONE\n"
                     "ctx.set_alpn_protocols(['http/1.1'])\n"
                     "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', "
                     "int(sys.argv[1])), timeout=5), server_hostname='edge.test')\n"
                     "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n"
                     "s.sendall(b'GET /bytes/200000000 HTTP/1.1\\r\\nHost: edge.test\\r\\n\\r\\n')\n"
                     "time.sleep(6)\n";
    char *argv[] = {"python3", "-c", (char *)py, h_strf(T, "%d", T->port), NULL};
    pid_t p = h_spawn(T, argv, h_path(T, "noread.out"), h_path(T, "noread.out"));
    ck_assert(p > 0);
    const char *line[] = {"\"/bytes/200000000\"", "\"reason\":\"client not reading\"", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, line, 8000),
                  "the access log does not say the request was cut for not reading: %s",
                  h_file_tail(T, T->access_log, 1000));
}
END_TEST

/* A stop while a connection lingers (its answer, 413, went out before the
 * client's body, which it keeps sending): the worker lets the lingering
 * close run (2 s at most, within drain_timeout) instead of exiting at
 * once - its exit closed the socket with the client's bytes unread, and
 * the reset cut the client's upload and could destroy the answer it had not
 * read yet. The client uploads for 1 s after the SIGTERM, then reads. */
START_TEST(stop_lets_lingering_closes_finish)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_testup_corral(2, "http: {max_body: 1k, lingering_time: 5s}\n", w);
    char *ready = h_path(T, "uploading");
    const char *py =
        "import os, socket, ssl, sys, time\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
        "ctx.check_hostname = False\n"
        "ctx.verify_mode = ssl.CERT_NONE\n"
        "ctx.set_alpn_protocols(['http/1.1'])\n"
        "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1])), "
        "timeout=5), server_hostname='edge.test')\n"
        "s.sendall(b'POST /echo HTTP/1.1\\r\\nHost: edge.test\\r\\n"
        "Content-Length: 100000000\\r\\n\\r\\n')\n"
        "chunk = b'x' * 4096\n"
        "def upload(secs):\n"
        "    end = time.monotonic() + secs\n"
        "    while time.monotonic() < end:\n"
        "        s.sendall(chunk)\n"
        "        time.sleep(0.01)\n"
        "try:\n"
        "    upload(1.0)\n"
        "    open(sys.argv[2], 'w').close()\n"
        "    while not os.path.exists(sys.argv[2] + '.go'):\n"
        "        upload(0.05)\n"
        "    upload(1.0)\n"
        "    print('answer', s.recv(200)[:12])\n"
        "except OSError as e:\n"
        "    print('error', e)\n";
    char *argv[] = {"python3", "-c", (char *)py, h_strf(T, "%d", T->port), ready, NULL};
    char *out = h_path(T, "upload.out");
    pid_t p = h_spawn(T, argv, out, out);
    ck_assert(p > 0);
    long long end = h_now_ms() + 8000;
    while (h_now_ms() < end && access(ready, F_OK) != 0)
        h_sleep_ms(20);
    ck_assert_msg(access(ready, F_OK) == 0, "the client did not start uploading: %s",
                  h_file_tail(T, out, 500));
    const char *l413[] = {"\"status\":413", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, l413, 3000), "no 413 in the access log: %s",
                  h_file_tail(T, T->access_log, 500));
    ck_assert_int_eq(h_signal(m, SIGTERM), 0);
    FILE *go = fopen(h_strf(T, "%s.go", ready), "w");
    ck_assert(go != NULL);
    fclose(go);
    int st = 0;
    ck_assert_msg(h_wait_exit(p, 8000, &st) == 0, "the client did not finish");
    char *text = h_read_file(out, NULL);
    ck_assert_msg(text && strstr(text, "answer b'HTTP/1.1 413'"),
                  "the lingering client, uploading across the stop: %s | error log: %s",
                  text ? text : "(nothing)", h_file_tail(T, T->error_log, 1000));
    free(text);
    ck_assert_msg(h_wait_exit(m, 8000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the master did not exit 0");
}
END_TEST

/* A worker killed with requests in flight: the error log says how many
 * connections and requests it held, the other worker keeps accepting, the
 * master restarts it. */
static int count_sockets(pid_t pid)
{
    char dir[64], path[320], target[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    int n = 0;
    for (int fd = 0; fd < 512; fd++) {
        snprintf(path, sizeof(path), "%s/%d", dir, fd);
        ssize_t k = readlink(path, target, sizeof(target) - 1);
        if (k > 0) {
            target[k] = 0;
            n += strncmp(target, "socket:", 7) == 0;
        }
    }
    return n;
}

START_TEST(killed_worker_reports_what_it_held)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_testup_corral(2, NULL, w);
    enum { N = 6 };
    struct h_up_bg b[N];
    const char *args[] = {"--http1.1", NULL};
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(h_up_bg_curl(T, &b[i], T->port, "/delay/2500", args), 0);
    wait_upstream_inflight(N, 4000);
    /* the worker with more sockets holds some of them */
    pid_t victim = count_sockets(w[0]) >= count_sockets(w[1]) ? w[0] : w[1];
    ck_assert_int_eq(h_signal(victim, SIGKILL), 0);
    for (int i = 0; i < 3; i++) /* the other worker keeps accepting */
        assert_serves_any(h_strf(T, "/after-kill-%d", i));
    int cut = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(h_up_bg_wait(T, &b[i], 6000) == 0);
        cut += b[i].status != 200;
    }
    ck_assert_msg(cut > 0, "no request was cut by the worker's death");
    const char *line[] = {h_strf(T, "(pid %d) killed by signal 9", (int)victim),
                          h_strf(T, "holding %d client connection(s) and %d request(s)", cut, cut),
                          NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, line, 3000),
                  "the error log does not say worker %d held %d connection(s) and request(s): %s",
                  (int)victim, cut, h_file_tail(T, T->error_log, 1500));
    pid_t now[H_MAX_PIDS];
    long long end = h_now_ms() + 5000;
    int n = 0;
    while (h_now_ms() < end &&
           ((n = h_children(m, now, H_MAX_PIDS)) != 2 || h_pid_in(victim, now, n)))
        h_sleep_ms(20);
    ck_assert_msg(n == 2 && !h_pid_in(victim, now, n), "worker %d was not replaced", (int)victim);
}
END_TEST

/* 2. A worker killed with SIGKILL is replaced and the exit is logged. */
START_TEST(killed_worker_is_replaced)
{
    pid_t w[H_MAX_PIDS], now[H_MAX_PIDS];
    pid_t m = start_corral(H_CONFIG_BASE, 2, w);
    assert_serves(T->port, "/before-kill");

    pid_t victim = w[0];
    ck_assert_int_eq(h_signal(victim, SIGKILL), 0);
    long long end = h_now_ms() + 10000;
    int n = 0;
    bool replaced = false;
    while (!replaced && h_now_ms() < end) {
        n = h_children(m, now, H_MAX_PIDS);
        replaced = n == 2 && !h_pid_in(victim, now, n) &&
                   (!h_pid_in(now[0], w, 2) || !h_pid_in(now[1], w, 2));
        if (!replaced)
            h_sleep_ms(20);
    }
    ck_assert_msg(h_pid_alive(m), "the master died with its worker");
    ck_assert_msg(replaced,
                  "worker %d was not replaced within 10 s: master has %d children "
                  "(first %d) | error log: %s",
                  (int)victim, n, n > 0 ? (int)now[0] : 0, h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(h_pid_in(w[1], now, n), "the surviving worker %d was restarted too", (int)w[1]);

    for (int i = 0; i < 4; i++) /* a new connection each: both workers get some */
        assert_serves(T->port, h_strf(T, "/after-kill-%d", i));

    const char *line[] = {h_strf(T, "%d", (int)victim), "signal 9", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, line, 3000),
                  "the error log does not name worker %d's death by signal 9: %s", (int)victim,
                  h_file_tail(T, T->error_log, 1500));
}
END_TEST

/* 3. SIGHUP with a broken config: logged with positions, old workers serve. */
START_TEST(reload_bad_config_keeps_old)
{
    pid_t w[H_MAX_PIDS], now[H_MAX_PIDS];
    pid_t m = start_corral(H_CONFIG_BASE, 2, w);
    assert_serves(T->port, "/before-reload");

    /* H_CONFIG_BASE with two mistakes: an unknown key on line 1 (column 1)
     * and a bad protocol on line 12 */
    const char *broken = "wrokers: 2\n"
                         "drain_timeout: 3s\n"
                         "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
                         "listeners:\n"
                         "  - name: https\n"
                         "    address: 127.0.0.1:@PORT2@\n"
                         "    tls:\n"
                         "      certificates:\n"
                         "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                         "upstream:\n"
                         "  addresses: [127.0.0.1:@UPORT@]\n"
                         "  protocol: h3\n"
                         "  connections: 2\n"
                         "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                         "key: @CERTS@/client.key, sni: lb.test}\n";
    char *cfg = h_config_write(T, "corral.yaml", broken);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);

    const char *failed[] = {"reload failed", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, failed, 5000),
                  "no \"reload failed\" in the error log: %s", h_file_tail(T, T->error_log, 1500));
    const char *diag1[] = {h_strf(T, "%s:1:1:", cfg), "wrokers", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, diag1, 1000),
                  "the error log lacks \"%s\" ... wrokers: %s", diag1[0],
                  h_file_tail(T, T->error_log, 1500));
    const char *diag2[] = {h_strf(T, "%s:12:", cfg), NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, diag2, 1000),
                  "the error log lacks the second problem (\"%s\"): %s", diag2[0],
                  h_file_tail(T, T->error_log, 1500));

    h_sleep_ms(300); /* room for a wrong swap to show */
    ck_assert_msg(h_pid_alive(m), "the master died on a bad reload");
    int n = h_children(m, now, H_MAX_PIDS);
    ck_assert_msg(n == 2 && now[0] == w[0] && now[1] == w[1],
                  "workers changed on a failed reload: %d children (%d %d), before %d %d", n,
                  n > 0 ? (int)now[0] : 0, n > 1 ? (int)now[1] : 0, (int)w[0], (int)w[1]);
    ck_assert_msg(!h_port_open(T->port2), "the broken config's port %d was opened", T->port2);
    for (int i = 0; i < 3; i++)
        assert_serves(T->port, h_strf(T, "/after-bad-reload-%d", i));
}
END_TEST

/* 4. SIGHUP with a good config: new port and worker count take effect, the
 * old port closes, the old workers go. */
START_TEST(reload_good_config_applies)
{
    pid_t w[H_MAX_PIDS], now[H_MAX_PIDS];
    pid_t m = start_corral(H_CONFIG_BASE, 2, w);
    assert_serves(T->port, "/before-reload");

    const char *next = "workers: 1\n"
                       "drain_timeout: 3s\n"
                       "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
                       "listeners:\n"
                       "  - name: https\n"
                       "    address: 127.0.0.1:@PORT2@\n"
                       "    tls:\n"
                       "      certificates:\n"
                       "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                       "upstream:\n"
                       "  addresses: [127.0.0.1:@UPORT@]\n"
                       "  protocol: h2\n"
                       "  connections: 2\n"
                       "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                       "key: @CERTS@/client.key, sni: lb.test}\n";
    ck_assert_ptr_nonnull(h_config_write(T, "corral.yaml", next));
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);

    ck_assert_msg(h_wait_port(T->port2, true, 10000),
                  "the new port %d does not accept 10 s after SIGHUP | error log: %s", T->port2,
                  h_file_tail(T, T->error_log, 1500));
    assert_serves(T->port2, "/after-reload");
    ck_assert_msg(h_wait_port(T->port, false, DRAIN_MS + 5000),
                  "the old port %d still accepts %d ms after the reload", T->port, DRAIN_MS + 5000);
    int n = h_wait_children(m, 1, DRAIN_MS + 5000, now);
    ck_assert_msg(n == 1, "master has %d workers after the reload, expected 1", n);
    ck_assert_msg(!h_pid_in(now[0], w, 2), "worker %d is an old one, not a new one", (int)now[0]);
    ck_assert_msg(wait_all_gone(w, 2, 1000), "an old worker is still alive");
    ck_assert_msg(h_pid_alive(m), "the master died");
    assert_serves(T->port2, "/after-reload-2");
}
END_TEST

/* 5b. SIGUSR1 reopens the access log. */
START_TEST(sigusr1_reopens_access_log)
{
    pid_t w[H_MAX_PIDS];
    pid_t m = start_corral(H_CONFIG_BASE, 2, w);
    assert_serves(T->port, "/before-rotate");
    const char *before[] = {"/before-rotate", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, before, 3000),
                  "the access log has no line for /before-rotate: %s",
                  h_file_tail(T, T->access_log, 1000));

    char *rotated = h_path(T, "access.log.1");
    ck_assert_int_eq(rename(T->access_log, rotated), 0);
    ck_assert_int_eq(h_signal(m, SIGUSR1), 0);
    /* reopen is asynchronous (master -> workers): give it a bounded moment */
    for (long long end = h_now_ms() + 1000; access(T->access_log, F_OK) != 0 && h_now_ms() < end;)
        h_sleep_ms(20);
    h_sleep_ms(200);

    for (int i = 0; i < 4; i++) /* new connections: reach both workers */
        assert_serves(T->port, h_strf(T, "/after-rotate-%d", i));
    const char *after[] = {"/after-rotate-", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, after, 3000),
                  "no new access.log with the request after SIGUSR1 (exists: %s); "
                  "rotated file: %s",
                  access(T->access_log, F_OK) == 0 ? "yes" : "no", h_file_tail(T, rotated, 1000));
    ck_assert_msg(!h_file_contains(rotated, "/after-rotate-"),
                  "a worker still writes to the renamed file: %s", h_file_tail(T, rotated, 1000));
    ck_assert_msg(h_file_contains(rotated, "/before-rotate"), "the old lines are lost");
    ck_assert_msg(h_pid_alive(m), "the master died on SIGUSR1");
}
END_TEST

/* ------------------------------------------------------------ privileges */

/* "Uid:" or "Gid:" of /proc/PID/status: real, effective, saved, fs; true
 * when all four are read. */
static bool proc_ids(pid_t pid, const char *field, long ids[4])
{
    char *path = h_strf(T, "/proc/%d/status", (int)pid);
    char *text = h_read_file(path, NULL);
    bool ok = false;
    if (text == NULL)
        return false;
    const char *p = strstr(text, field);
    if (p != NULL)
        ok = sscanf(p + strlen(field), "%ld %ld %ld %ld", &ids[0], &ids[1], &ids[2], &ids[3]) == 4;
    free(text);
    return ok;
}

/* 6. Started as root without 'user', the workers run unprivileged (and say
 * so); the master stays root to reload and reopen logs. The certificates,
 * read by the master, still serve; a worker still dies with its master
 * (the parent-death signal is cleared by the switch of user: re-armed). */
START_TEST(workers_drop_root_by_default)
{
    if (geteuid() != 0) {
        fprintf(stderr, "workers_drop_root_by_default: not root, nothing to drop: skipped\n");
        return;
    }
    pid_t w[H_MAX_PIDS];
    pid_t m = start_corral(H_CONFIG_BASE, 2, w);
    assert_serves(T->port, "/unprivileged");
    long ids[4];
    ck_assert(proc_ids(m, "Uid:", ids));
    ck_assert_msg(ids[0] == 0 && ids[1] == 0, "the master is not root: uid %ld/%ld", ids[0],
                  ids[1]);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(proc_ids(w[i], "Uid:", ids), "no /proc/%d/status", (int)w[i]);
        ck_assert_msg(ids[0] != 0 && ids[1] != 0 && ids[2] != 0 && ids[3] != 0,
                      "worker %d runs as uid %ld/%ld/%ld/%ld", (int)w[i], ids[0], ids[1], ids[2],
                      ids[3]);
        ck_assert(proc_ids(w[i], "Gid:", ids));
        ck_assert_msg(ids[0] != 0 && ids[1] != 0 && ids[2] != 0 && ids[3] != 0,
                      "worker %d runs as gid %ld/%ld/%ld/%ld", (int)w[i], ids[0], ids[1], ids[2],
                      ids[3]);
    }
    const char *said[] = {"workers run as user ", "started as root without 'user'", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, said, 2000), "the log does not say so: %s",
                  h_file_tail(T, T->error_log, 1500));

    ck_assert_int_eq(h_signal(m, SIGKILL), 0);
    ck_assert_int_eq(h_wait_exit(m, 3000, NULL), 0);
    ck_assert_msg(wait_all_gone(w, 2, 3000), "a worker outlived its master killed with SIGKILL");
}
END_TEST

/* Runs corral on config tmpl (written to DIR/corral.yaml), expecting it to
 * refuse to start: exits non-zero within 10 s, and the error log or stderr
 * holds every needle. */
static void assert_refused(const char *tmpl, const char *const *needles)
{
    char *cfg = h_config_write(T, "corral.yaml", tmpl);
    ck_assert_ptr_nonnull(cfg);
    char *const argv[] = {(char *)T->bin, "-c", cfg, NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 10000, &r), 0);
    char *log = h_file_tail(T, T->error_log, 3000);
    ck_assert_msg(!r.timed_out && r.exit_code > 0,
                  "corral started (exit %d, timed out %d) | stderr: %s | error log: %s",
                  r.exit_code, r.timed_out, r.err, log);
    char *both = h_strf(T, "%s\n%s", r.err, log);
    bool found = false;
    for (char *line = strtok(both, "\n"); line != NULL && !found; line = strtok(NULL, "\n")) {
        found = true;
        for (int i = 0; needles[i] != NULL; i++)
            found = found && strstr(line, needles[i]) != NULL;
    }
    ck_assert_msg(found, "no line with '%s'... | stderr: %s | error log: %s", needles[0], r.err,
                  log);
}

/* 7. pid_file and log files are opened as root: a symbolic link planted
 * there (by whoever can write the directory) must not make corral write
 * through it, and the pid file must be a regular file. */
START_TEST(symlinked_files_are_refused)
{
    char *victim = h_path(T, "victim");
    ck_assert_int_eq(h_write_file(victim, "precious\n"), 0);
    const char *rest = strstr(H_CONFIG_BASE, "listeners:\n");
    const char *head = "workers: 2\ndrain_timeout: 3s\n";

    ck_assert_int_eq(symlink(victim, h_path(T, "corral.pid")), 0);
    const char *pid_link[] = {"pid file", "corral.pid", "symbolic link", NULL};
    assert_refused(h_strf(T, "%spid_file: @DIR@/corral.pid\n", H_CONFIG_BASE), pid_link);

    ck_assert_int_eq(mkfifo(h_path(T, "fifo.pid"), 0600), 0);
    const char *pid_fifo[] = {"pid file", "fifo.pid", "not a regular file", NULL};
    assert_refused(h_strf(T, "%spid_file: @DIR@/fifo.pid\n", H_CONFIG_BASE), pid_fifo);

    ck_assert_int_eq(symlink(victim, h_path(T, "link.log")), 0);
    const char *acc_link[] = {"access log", "link.log", "symbolic link", NULL};
    assert_refused(h_strf(T,
                          "%slog: {error: @DIR@/error.log, level: info, "
                          "access: @DIR@/link.log}\n%s",
                          head, rest),
                   acc_link);
    const char *err_link[] = {"error log", "link.log", "symbolic link", NULL};
    assert_refused(h_strf(T, "%slog: {error: @DIR@/link.log, level: info}\n%s", head, rest),
                   err_link);

    char *left = h_read_file(victim, NULL);
    ck_assert_msg(left != NULL && strcmp(left, "precious\n") == 0,
                  "the file behind the links was written: '%s'", left ? left : "(gone)");
    free(left);
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *process_suite(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("harness");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, harness_upstream_direct);
    suite_add_tcase(s, tc);

    tc = tcase_create("signals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, sigterm_stops_gracefully);
    tcase_add_test(tc, sigterm_stops_gracefully_h2);
    tcase_add_test(tc, reload_keeps_inflight_h1);
    tcase_add_test(tc, reload_keeps_inflight_h2);
    tcase_add_test(tc, drain_timeout_cuts_the_rest);
    tcase_add_test(tc, stop_during_handoff_does_not_spin);
    tcase_add_test(tc, reloads_under_load_lose_nothing);
    tcase_add_test(tc, killed_worker_reports_what_it_held);
    tcase_add_test(tc, killed_worker_is_replaced);
    tcase_add_test(tc, reload_bad_config_keeps_old);
    tcase_add_test(tc, reload_good_config_applies);
    tcase_add_test(tc, sigint_stops_gracefully);
    tcase_add_test(tc, sigusr1_reopens_access_log);
    suite_add_tcase(s, tc);

    tc = tcase_create("handoff");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, reload_holds_the_cap_h2);
    tcase_add_test(tc, reload_holds_the_cap_h1);
    tcase_add_test(tc, drained_worker_exits_when_upstream_done_h2);
    tcase_add_test(tc, drained_worker_exits_when_upstream_done_h1);
    tcase_add_test(tc, idle_close_race_h1);
    tcase_add_test(tc, idle_close_race_h2);
    tcase_add_test(tc, limit_close_names_the_limit);
    tcase_add_test(tc, stop_lets_lingering_closes_finish);
    suite_add_tcase(s, tc);

    tc = tcase_create("privileges");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, workers_drop_root_by_default);
    tcase_add_test(tc, symlinked_files_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(process_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
