/* check_floods.c - normal clients are served while hostile ones flood.
 *
 * Issue 12: hostile clients cannot crash, freeze or starve a worker. Each
 * test starts the real corral (one worker, so that the flood and the normal
 * client meet in the same event loop) in front of testup, measures a normal
 * client alone, then again while one kind of flood runs against the same
 * worker, and checks that:
 *   - every request of the normal client is answered 200, flood or not;
 *   - its p99 latency under the flood stays within 1.5 x its p99 alone,
 *     plus 20 ms (see P99_FLOOR_MS);
 *   - the worker never restarted (same pid, no exit in the master's log);
 *   - the flood really was one (its counts), and corral ended what it
 *     should end in time (slowloris, silent and half-open connections
 *     within their timeout; HTTP/2 floods by closing the connection).
 *
 * The clients are tests/integration/flood.py (Python 3 standard library:
 * ssl, socket, struct; HTTP/2 frames built by hand): "probe" is the normal
 * client (GET / in turn on new HTTP/1.1 connections and on kept-alive
 * HTTP/1.1 and HTTP/2 ones, at a fixed rate, open loop: a stall delays
 * every request scheduled during it), the other modes are the floods, each
 * bounded in connections, rate and time. A flood prints "flooding" once it
 * is in place; the test starts measuring then and stops the flood (SIGTERM)
 * when the measurement is done. Loopback only.
 *
 * The timeouts are set low (handshake 3 s, request head 2 s) so that a
 * flood meets them within the few seconds it runs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_RATE 100                   /* normal requests a second */
#define PROBE_S 3                        /* seconds of them: 300 samples for each p99 */
#define PROBE_MS ((PROBE_S + 20) * 1000) /* flood.py gives up by itself before */
#define FLOOD_MAX_S 30                   /* a flood's own bound; the test stops it long before */
#define FLOOD_READY_MS 20000             /* until it says "flooding" */

/* The bound on the p99 under a flood: P99_RATIO x the unloaded p99 plus
 * P99_FLOOR_MS. The floor because a loopback p99 is a few ms, and this
 * machine (2 cores, shared with other builds and tests while this runs)
 * adds tens of ms of scheduling noise to it from one second to the next: a
 * pure ratio would measure the neighbours. The defects this test is for
 * cost hundreds of ms to seconds. */
#define P99_RATIO 1.5
#define P99_FLOOR_MS 20.0

#define HANDSHAKE_TIMEOUT_MS 3000
#define HELLO_TIMEOUT_MS 2000 /* tls.client_hello_timeout: silent connections */
#define HEADER_TIMEOUT_MS 2000
#define SLACK_MS 1500 /* a timer's lateness on a loaded machine */

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

/* One worker, low timeouts, testup as the upstream, JSON access log. */
#define CONFIG_FLOODS                                                                              \
    "workers: 1\n"                                                                                 \
    "drain_timeout: 1s\n"                                                                          \
    "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"                       \
    "listeners:\n"                                                                                 \
    "  - name: https\n"                                                                            \
    "    address: 127.0.0.1:@PORT@\n"                                                              \
    "    tls:\n"                                                                                   \
    "      certificates:\n"                                                                        \
    "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"                                  \
    "      handshake_timeout: 3s\n"                                                                \
    "      client_hello_timeout: 2s\n"                                                             \
    "      max_handshakes: 128\n"                                                                  \
    "http:\n"                                                                                      \
    "  header_timeout: 2s\n"                                                                       \
    "upstream:\n"                                                                                  \
    "  addresses: [127.0.0.1:@UPORT@]\n"                                                           \
    "  protocol: h2\n"                                                                             \
    "  connections: 2\n"                                                                           \
    "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: @CERTS@/client.key, "              \
    "sni: lb.test}\n"

/* ------------------------------------------------------------ helpers */

static pid_t master_pid, worker_pid;
static int last_n408; /* the access log's 408 "request header timeout" lines after the flood */

/* testup, then corral; remembers the master and its one worker. */
static void start(void)
{
    ck_assert_msg(h_testup_start(T, T->uport, "--quiet", (char *)NULL) > 0,
                  "testup did not start: %s",
                  h_file_tail(T, h_path(T, h_strf(T, "testup-%d.log", T->uport)), 1500));
    char *cfg = h_config_write(T, "corral.yaml", CONFIG_FLOODS);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    master_pid = h_corral_start(T, cfg, T->port);
    ck_assert_msg(master_pid > 0, "corral did not start: %s | %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    pid_t w[H_MAX_PIDS];
    int n = h_wait_children(master_pid, 1, 5000, w);
    ck_assert_msg(n == 1, "master %d has %d worker(s), expected 1", (int)master_pid, n);
    worker_pid = w[0];
}

static const char *script(void)
{
    return h_strf(T, "%s/tests/integration/flood.py", T->srcdir);
}

/* What flood.py probe printed. */
struct probe {
    int n, ok, fail;
    double p50, p90, p99, max;
    const char *out; /* all of it, for messages */
};

/* Runs the normal client for PROBE_S seconds; its samples go to
 * DIR/probe-LABEL.txt (kept when the test fails). Fails the test when it
 * did not run or printed no summary. */
static void run_probe(const char *label, struct probe *p)
{
    char *argv[] = {"python3",
                    (char *)script(),
                    "probe",
                    h_strf(T, "%d", T->port),
                    h_strf(T, "%d", PROBE_RATE),
                    h_strf(T, "%d", PROBE_S),
                    h_path(T, h_strf(T, "probe-%s.txt", label)),
                    NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, PROBE_MS, &r), 0);
    memset(p, 0, sizeof(*p));
    p->out = h_strf(T, "%s%s", r.out ? r.out : "", r.err ? r.err : "");
    const char *line = r.out ? strstr(r.out, "probe n=") : NULL;
    ck_assert_msg(r.exit_code == 0 && line &&
                      sscanf(line, "probe n=%d ok=%d fail=%d p50=%lf p90=%lf p99=%lf max=%lf",
                             &p->n, &p->ok, &p->fail, &p->p50, &p->p90, &p->p99, &p->max) == 7,
                  "the %s probe failed (exit %d, %s): %s", label, r.exit_code,
                  r.timed_out ? "timed out" : "ran", p->out);
}

/* What a flood.py flood printed at its end. */
struct flood {
    pid_t pid;
    char *out_path, *err_path;
    long conns, frames, closed, goaway, rst, resp, max_hold_ms, overdue, errors;
    char statuses[128], goaway_codes[128];
    const char *line; /* the whole summary line */
};

/* Starts flood.py KIND with its key=value args (NULL-terminated) and waits
 * until it says "flooding". Its output goes to DIR/flood-KIND-ATTEMPT.out
 * and .err. */
static void flood_start(struct flood *f, const char *kind, int attempt, const char *const *args)
{
    memset(f, 0, sizeof(*f));
    f->err_path = h_path(T, h_strf(T, "flood-%s-%d.err", kind, attempt));
    char *argv[16] = {"python3", (char *)script(), (char *)kind, h_strf(T, "%d", T->port),
                      h_strf(T, "%d", FLOOD_MAX_S)};
    int n = 5;
    for (int i = 0; args && args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    f->out_path = h_path(T, h_strf(T, "flood-%s-%d.out", kind, attempt));
    f->pid = h_spawn(T, argv, f->out_path, f->err_path);
    ck_assert_msg(f->pid > 0, "cannot start the %s flood", kind);
    ck_assert_msg(
        h_wait_file_line(f->out_path, (const char *const[]){"flooding", NULL}, FLOOD_READY_MS),
        "the %s flood never started (flood.py %s): %s | %s", kind, h_proc_fate(T, f->pid),
        h_file_tail(T, f->out_path, 1000), h_file_tail(T, f->err_path, 1500));
}

static long field(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void field_str(const char *line, const char *key, char *out, size_t n)
{
    const char *p = strstr(line, key);
    size_t len = 0;
    if (p) {
        p += strlen(key);
        len = strcspn(p, " \n");
        len = len < n - 1 ? len : n - 1;
        memcpy(out, p, len);
    }
    out[len] = '\0';
}

/* SIGTERM, its exit, its summary line. */
static void flood_stop(struct flood *f, const char *kind)
{
    int status = 0;
    h_signal(f->pid, SIGTERM);
    int rc = h_wait_exit(f->pid, 10000, &status);
    ck_assert_msg(rc == 0, "the %s flood did not stop within 10 s of SIGTERM", kind);
    char *text = h_read_file(f->out_path, NULL);
    const char *line = text ? strstr(text, "flood kind=") : NULL;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 && line,
                  "the %s flood failed (status 0x%x): %s | %s", kind, status,
                  text ? text : "(no output)", h_file_tail(T, f->err_path, 1500));
    f->line = h_strf(T, "%.*s", (int)strcspn(line, "\n"), line);
    free(text);
    f->conns = field(f->line, " conns=");
    f->frames = field(f->line, " frames=");
    f->closed = field(f->line, " closed=");
    f->goaway = field(f->line, " goaway=");
    f->rst = field(f->line, " rst=");
    f->resp = field(f->line, " resp=");
    f->max_hold_ms = field(f->line, " max_hold_ms=");
    f->overdue = field(f->line, " overdue=");
    f->errors = field(f->line, " errors=");
    field_str(f->line, " statuses=", f->statuses, sizeof(f->statuses));
    field_str(f->line, " goaway_codes=", f->goaway_codes, sizeof(f->goaway_codes));
}

/* "STATUS reason xN, ..." of the access log's lines, the most frequent
 * first (at most 6), for the report; *n408 gets the 408s whose reason is
 * "request header timeout". */
static const char *access_summary(int *n408)
{
    struct h_adm_entry *e = NULL;
    int n = h_adm_access(T, &e);
    struct outcome {
        int status;
        const char *reason;
        int count;
    } kinds[32];
    int nk = 0;
    *n408 = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].status == 408 && strcmp(e[i].reason, "request header timeout") == 0)
            (*n408)++;
        int k = 0;
        while (k < nk &&
               !(kinds[k].status == e[i].status && strcmp(kinds[k].reason, e[i].reason) == 0))
            k++;
        if (k == nk && nk < 32)
            kinds[nk++] = (struct outcome){e[i].status, e[i].reason, 0};
        if (k < nk)
            kinds[k].count++;
    }
    char *s = h_strf(T, "%d lines", n < 0 ? 0 : n);
    for (int shown = 0; shown < 6 && nk > 0; shown++) {
        int best = 0;
        for (int k = 1; k < nk; k++)
            if (kinds[k].count > kinds[best].count)
                best = k;
        if (kinds[best].count == 0)
            break;
        s = h_strf(T, "%s; %d \"%s\" x%d", s, kinds[best].status, kinds[best].reason,
                   kinds[best].count);
        kinds[best].count = 0;
    }
    return s;
}

/* The worker is the one started first, alive, alone, and the master never
 * saw a worker end. */
static void assert_no_restart(const char *kind)
{
    pid_t w[H_MAX_PIDS];
    int n = h_children(master_pid, w, H_MAX_PIDS);
    ck_assert_msg(n == 1 && w[0] == worker_pid && h_pid_alive(worker_pid),
                  "%s flood: the worker (pid %d) was replaced: %d worker(s) now, the first %d | "
                  "%s",
                  kind, (int)worker_pid, n, n > 0 ? (int)w[0] : 0,
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(!h_file_contains(T->error_log, "killed by signal") &&
                      !h_file_contains(T->error_log, "exited with status") &&
                      !h_file_contains(T->error_log, "restarting it"),
                  "%s flood: a worker ended: %s", kind, h_file_tail(T, T->error_log, 1500));
}

/* The whole test for one flood: corral, the normal client alone, then with
 * the flood, the p99 and restart checks. The flood's counts go to *f for
 * the checks of its kind.
 *
 * A p99 over the bound is measured again (alone, then with the flood), up
 * to FLOOD_ATTEMPTS times, before it fails the test: on a machine shared with other builds a
 * neighbour can stall any process for a second now and then, and the open
 * loop counts such a stall in every request scheduled during it. The
 * defects this test is for come back every time. Failed requests are never
 * given a second chance. */
#define FLOOD_ATTEMPTS 3

static void flood_case(const char *kind, const char *const *args, struct flood *f)
{
    start();
    struct probe base, under;
    double bound = 0;
    for (int attempt = 1; attempt <= FLOOD_ATTEMPTS; attempt++) {
        run_probe(h_strf(T, "base-%d", attempt), &base);
        ck_assert_msg(base.fail == 0 && base.ok == PROBE_RATE * PROBE_S,
                      "the normal client failed without a flood: %s", base.out);

        flood_start(f, kind, attempt, args);
        run_probe(h_strf(T, "flood-%d", attempt), &under);
        flood_stop(f, kind);

        const char *log = access_summary(&last_n408);
        fprintf(stderr,
                "[floods] %-12s p99 %.1f ms alone, %.1f ms under the flood (p50 %.1f/%.1f, max "
                "%.1f/%.1f) | %s | access log: %s\n",
                kind, base.p99, under.p99, base.p50, under.p50, base.max, under.max, f->line, log);
        ck_assert_msg(under.fail == 0, "%s flood: %d of %d normal requests failed: %s", kind,
                      under.fail, under.n, under.out);
        bound = P99_RATIO * base.p99 + P99_FLOOR_MS;
        if (under.p99 <= bound)
            break;
    }
    ck_assert_msg(under.p99 <= bound,
                  "%s flood: the normal client's p99 was %.1f ms, over %.1f ms (%.1f x %.1f ms "
                  "alone + %.0f), %d times | flood: %s | samples in %s",
                  kind, under.p99, bound, P99_RATIO, base.p99, P99_FLOOR_MS, FLOOD_ATTEMPTS,
                  f->line, h_path(T, h_strf(T, "probe-flood-%d.txt", FLOOD_ATTEMPTS)));
    assert_no_restart(kind);
}

/* ------------------------------------------------------------ tests */

/* 100 connections each sending a request head one byte a second, the
 * first byte only 1.8 s after the handshake (ended ones replaced): each
 * must get its 408 "request header timeout" when http.header_timeout runs
 * out counted from the handshake, none held longer (a timer re-armed at
 * the first byte would hold them 3.8 s). */
START_TEST(slowloris)
{
    struct flood f;
    flood_case("slowloris",
               (const char *const[]){"conns=100", "delay=1800",
                                     h_strf(T, "hold=%d", HEADER_TIMEOUT_MS + SLACK_MS), NULL},
               &f);
    ck_assert_msg(f.conns >= 100 && f.frames >= 100, "not a flood: %s", f.line);
    ck_assert_msg(f.overdue == 0 && f.max_hold_ms <= HEADER_TIMEOUT_MS + SLACK_MS,
                  "slowloris connections held for up to %ld ms (%ld still open past %d ms) "
                  "with header_timeout %d ms: %s",
                  f.max_hold_ms, f.overdue, HEADER_TIMEOUT_MS + SLACK_MS, HEADER_TIMEOUT_MS,
                  f.line);
    ck_assert_msg(f.closed >= 100 && strstr(f.statuses, "408:") && last_n408 >= 100,
                  "slowloris connections were not answered 408 \"request header timeout\": "
                  "%d in the access log, %s",
                  last_n408, f.line);
}
END_TEST

/* 200 TCP connections that never send a byte (ended ones replaced), more
 * than max_handshakes (128): they must neither stop the worker accepting
 * the normal client's connections nor stay open past
 * tls.client_hello_timeout. */
START_TEST(silent_tcp)
{
    struct flood f;
    flood_case(
        "silent",
        (const char *const[]){"conns=200", h_strf(T, "hold=%d", HELLO_TIMEOUT_MS + SLACK_MS), NULL},
        &f);
    ck_assert_msg(f.conns >= 200, "not a flood: %s", f.line);
    ck_assert_msg(f.overdue == 0 && f.max_hold_ms <= HELLO_TIMEOUT_MS + SLACK_MS,
                  "silent connections held for up to %ld ms (%ld still open past %d ms) with "
                  "client_hello_timeout %d ms: %s",
                  f.max_hold_ms, f.overdue, HELLO_TIMEOUT_MS + SLACK_MS, HELLO_TIMEOUT_MS, f.line);
}
END_TEST

/* TLS handshakes left unfinished, 20 new ones a second, at most 64 held:
 * every other one a whole ClientHello (the server signs, then waits for
 * the client's Finished), the others its first 16 bytes. None may outlive
 * the handshake timeout. */
START_TEST(half_open_tls)
{
    struct flood f;
    flood_case("halfopen",
               (const char *const[]){"conns=64", "rate=20",
                                     h_strf(T, "hold=%d", HANDSHAKE_TIMEOUT_MS + SLACK_MS), NULL},
               &f);
    ck_assert_msg(f.conns >= 60, "not a flood: %s", f.line);
    ck_assert_msg(
        f.closed >= 1 && f.overdue == 0 && f.max_hold_ms <= HANDSHAKE_TIMEOUT_MS + SLACK_MS,
        "half-open handshakes held for up to %ld ms (%ld still open past %d ms) "
        "with handshake_timeout %d ms: %s",
        f.max_hold_ms, f.overdue, HANDSHAKE_TIMEOUT_MS + SLACK_MS, HANDSHAKE_TIMEOUT_MS, f.line);
}
END_TEST

/* The HTTP/2 floods: what each connection sends costs the worker work
 * (and, for rapid reset, the upstream too) and the client almost nothing,
 * so corral must end such a connection (a GOAWAY, or at least the close)
 * well within the seconds the flood runs. The flood was one when it sent
 * min_frames, or when corral kept ending its connections before it could
 * (at least 3 of them: each one replaced half a second later). */
static void assert_ended(const char *kind, const struct flood *f, long min_frames)
{
    ck_assert_msg(f->frames >= min_frames || (f->closed >= 3 && f->frames >= f->closed),
                  "%s: not a flood (fewer than %ld frames): %s", kind, min_frames, f->line);
    ck_assert_msg(f->closed >= 1,
                  "%s: corral never ended a flooding connection (%ld frames on %ld "
                  "connection(s) in ~%d s): %s",
                  kind, f->frames, f->conns, PROBE_S, f->line);
}

/* HEADERS then RST_STREAM(CANCEL) at once, 5000 streams a second on each
 * of 2 connections (CVE-2023-44487). */
START_TEST(h2_rapid_reset)
{
    struct flood f;
    flood_case("reset", (const char *const[]){"conns=2", "rate=5000", NULL}, &f);
    assert_ended("rapid reset", &f, 2000);
}
END_TEST

/* HEADERS without END_HEADERS, then CONTINUATION frames without end, 20000
 * a second on each of 2 connections (CVE-2024-27316 and kin). */
START_TEST(h2_continuation)
{
    struct flood f;
    flood_case("continuation", (const char *const[]){"conns=2", "rate=20000", NULL}, &f);
    assert_ended("CONTINUATION flood", &f, 2000);
}
END_TEST

/* PINGs, 20000 a second on each of 2 connections, their ACKs read
 * (CVE-2019-9512 without the memory: the cost is the work). */
START_TEST(h2_ping)
{
    struct flood f;
    flood_case("ping", (const char *const[]){"conns=2", "rate=20000", NULL}, &f);
    assert_ended("PING flood", &f, 10000);
}
END_TEST

/* SETTINGS frames of six values, 10000 a second on each of 2 connections
 * (CVE-2019-9515). */
START_TEST(h2_settings)
{
    struct flood f;
    flood_case("settings", (const char *const[]){"conns=2", "rate=10000", NULL}, &f);
    assert_ended("SETTINGS flood", &f, 10000);
}
END_TEST

/* 4 connections with SETTINGS_INITIAL_WINDOW_SIZE 0, each asking for 100
 * large responses and never opening a window: what they hold of the
 * upstream connections' windows must not stall everyone else's responses.
 * Each connection gets at most http.h2_max_stalled_streams (16, the
 * default) requests through; the others are refused (REFUSED_STREAM,
 * "client not reading" in the access log), and the flood opens new ones in
 * their place. */
#define MAX_STALLED 16
START_TEST(h2_zero_window)
{
    struct flood f;
    flood_case("zerowindow", (const char *const[]){"conns=4", "streams=100", NULL}, &f);
    ck_assert_msg(f.frames >= 400, "not a flood: %s", f.line);
    ck_assert_msg(f.resp <= f.conns * MAX_STALLED && f.rst >= 1 &&
                      h_file_contains(T->access_log, "client not reading"),
                  "zero-window connections had more than %d requests each answered, or none "
                  "refused as \"client not reading\": %s",
                  MAX_STALLED, f.line);
}
END_TEST

/* Each flood its own test case, so that the results read one by one. */
#define ADD(s, test)                                                                               \
    do {                                                                                           \
        TCase *tc_ = tcase_create(#test);                                                          \
        tcase_add_checked_fixture(tc_, setup, teardown);                                           \
        tcase_set_timeout(tc_, 90);                                                                \
        tcase_add_test(tc_, test);                                                                 \
        suite_add_tcase(s, tc_);                                                                   \
    } while (0)

static Suite *floods_suite(void)
{
    Suite *s = suite_create("floods");
    ADD(s, slowloris);
    ADD(s, silent_tcp);
    ADD(s, half_open_tls);
    ADD(s, h2_rapid_reset);
    ADD(s, h2_continuation);
    ADD(s, h2_ping);
    ADD(s, h2_settings);
    ADD(s, h2_zero_window);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(floods_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
