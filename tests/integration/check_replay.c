/* check_replay.c - corral-replay end to end: the real binary against the
 * real corral in front of a real upstream (tests/testup/testup).
 *
 * testup runs with --count-header x-tenant-id: it counts the requests it
 * served per tenant, read from its stats file (SIGUSR1, no connection of
 * the harness's own), so the replay's report is checked against what the
 * upstream saw, not against itself. corral's access log (each request's
 * start and end, its X-Request-Id "rp-<request>.<attempt>") shows when
 * each retry really came. Every run is short (a few seconds) and bounded. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* ------------------------------------------------------------ helpers */

/* corral-replay: $CORRAL_REPLAY, or next to $CORRAL_BIN. */
static const char *replay_bin(void)
{
    const char *e = getenv("CORRAL_REPLAY");
    if (e != NULL && *e != '\0')
        return e;
    char *dir = h_strf(T, "%s", T->bin);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return "corral-replay";
    *slash = '\0';
    return h_strf(T, "%s/corral-replay", dir);
}

/* testup on T->uport counting per tenant; returns its pid. */
static pid_t upstream(void)
{
    const char *args[] = {"--count-header", "x-tenant-id", NULL};
    pid_t pid = h_up_start(T, T->uport, true, args);
    ck_assert_msg(pid > 0, "testup did not start: %s",
                  h_file_tail(T, h_strf(T, "%s/testup-%d.log", T->dir, T->uport), 1000));
    return pid;
}

/* corral (one worker, one HTTP/2 connection to testup) with `tenants`;
 * returns the master's pid. */
static pid_t corral(const char *tenants)
{
    char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T,
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
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: "
               "@CERTS@/client.key, sni: lb.test}\n"
               "%s",
               tenants));
    ck_assert_ptr_nonnull(cfg);
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s | %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1000),
                  h_file_tail(T, T->error_log, 1000));
    return m;
}

/* The first lines of a profile aimed at corral. */
#define TARGET_CORRAL                                                                              \
    "target: {address: 127.0.0.1:@PORT@, sni: edge.test, ca: @CERTS@/ca.crt, http2: 0.5}\n"

/* Runs corral-replay with args (NULL-terminated) then the profile (a
 * template written to DIR/name). */
static void replay(struct h_run *r, const char *name, const char *profile, const char *const *args)
{
    char *path = h_config_write(T, name, profile);
    char *argv[16];
    int n = 0;

    ck_assert_ptr_nonnull(path);
    argv[n++] = (char *)replay_bin();
    for (; args != NULL && *args != NULL && n < 14; args++)
        argv[n++] = (char *)*args;
    argv[n++] = path;
    argv[n] = NULL;
    ck_assert_int_eq(h_run(T, argv, 60000, r), 0);
    ck_assert_msg(!r->timed_out, "corral-replay did not finish: %s", r->err);
}

/* Sums of the timeline CSV's columns for one tenant. */
struct sums {
    long offered, sent, ok, s429, s503, other, conn_errors, timeouts, gave_up, full_hs, resumed_hs;
};

static struct sums csv_sums(const char *csv_path, const char *tenant)
{
    char *text = h_read_file(csv_path, NULL);
    struct sums s = {0};

    ck_assert_msg(text != NULL, "no %s", csv_path);
    const char *head = "second,tenant,offered,sent,ok,s429,s503,other,conn_errors,timeouts,"
                       "gave_up,full_hs,resumed_hs,";
    ck_assert_msg(strncmp(text, head, strlen(head)) == 0, "unexpected CSV header: %.200s", text);
    for (char *line = strchr(text, '\n'); line != NULL && line[1] != '\0';
         line = strchr(line + 1, '\n')) {
        char name[64];
        long v[11];
        if (sscanf(line + 1, "%*[^,],%63[^,],%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld", name,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                   &v[10]) != 12 ||
            strcmp(name, tenant) != 0)
            continue;
        s.offered += v[0], s.sent += v[1], s.ok += v[2], s.s429 += v[3], s.s503 += v[4];
        s.other += v[5], s.conn_errors += v[6], s.timeouts += v[7], s.gave_up += v[8];
        s.full_hs += v[9], s.resumed_hs += v[10];
    }
    free(text);
    return s;
}

static const char *sums_str(const struct sums *s)
{
    return h_strf(T,
                  "offered %ld sent %ld ok %ld 429 %ld 503 %ld other %ld conn errors %ld "
                  "timeouts %ld gave up %ld handshakes %ld full %ld resumed",
                  s->offered, s->sent, s->ok, s->s429, s->s503, s->other, s->conn_errors,
                  s->timeouts, s->gave_up, s->full_hs, s->resumed_hs);
}

/* testup's count of requests served with x-tenant-id: value (-1: none),
 * and its total, from its stats file. */
static long upstream_count(pid_t up, const char *value, long *total)
{
    struct h_up_stats st;
    ck_assert_int_eq(h_up_stats(T, up, T->uport, &st), 0);
    char *json = h_read_file(h_strf(T, "%s/testup-%d.stats", T->dir, T->uport), NULL);
    ck_assert_ptr_nonnull(json);
    const char *by = strstr(json, "\"by_header\":{");
    ck_assert_msg(by != NULL, "no by_header in %s", json);
    long n = h_json_long(by, value);
    if (total != NULL)
        *total = st.requests;
    free(json);
    return n;
}

/* One line of corral's access log: the replay's request id and attempt,
 * the status, when it started and ended (ms since the epoch). */
struct line {
    long id, attempt;
    int status;
    double start_ms, end_ms;
    char tenant[32], protocol[16];
};

static double epoch_ms(const char *t)
{
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p != NULL && *p == '.')
        ms = atoi(p + 1);
    return (double)timegm(&tm) * 1000.0 + ms;
}

static int access_lines(struct line **out)
{
    char *text = h_read_file(T->access_log, NULL);
    int n = 0, cap = 0;
    struct line *v = NULL;

    ck_assert_msg(text != NULL, "no access log");
    for (char *l = strtok(text, "\n"); l != NULL; l = strtok(NULL, "\n")) {
        struct line x;
        char rid[64] = "", tm[64] = "";
        double num;
        memset(&x, 0, sizeof(x));
        if (!h_adm_json_str(l, "time", tm, sizeof(tm)) || !h_adm_json_num(l, "total_ms", &num))
            continue;
        x.end_ms = epoch_ms(tm);
        x.start_ms = x.end_ms - num;
        x.status = h_adm_json_num(l, "status", &num) ? (int)num : -1;
        h_adm_json_str(l, "tenant", x.tenant, sizeof(x.tenant));
        h_adm_json_str(l, "protocol", x.protocol, sizeof(x.protocol));
        if (!h_adm_json_str(l, "request_id", rid, sizeof(rid)) ||
            sscanf(rid, "rp-%ld.%ld", &x.id, &x.attempt) != 2)
            x.id = x.attempt = -1;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            v = realloc(v, (size_t)cap * sizeof(*v));
            ck_assert_ptr_nonnull(v);
        }
        v[n++] = x;
    }
    free(text);
    *out = v;
    return n;
}

static int by_start(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    return x->start_ms < y->start_ms ? -1 : x->start_ms > y->start_ms;
}

/* The gaps, in ms, between an attempt refused with 429 and the next
 * attempt of the same request (end of one to start of the next). */
static int retry_gaps(double *gaps, int max)
{
    struct line *v;
    int n = access_lines(&v), k = 0;

    for (int i = 0; i < n; i++) {
        if (v[i].status != 429 || v[i].id < 0)
            continue;
        for (int j = 0; j < n; j++) {
            if (v[j].id == v[i].id && v[j].attempt == v[i].attempt + 1 && k < max)
                gaps[k++] = v[j].start_ms - v[i].end_ms;
        }
    }
    free(v);
    return k;
}

/* ------------------------------------------------------------ tests */

/* A short campaign through corral: the replay's per-tenant 2xx counts are
 * exactly the upstream's per-tenant counts; the rate-limited tenant is
 * shed with 429 (and, told to, gives up), the other is served in full;
 * both protocols and resumed handshakes happen; the reports are written. */
START_TEST(report_counts_match_the_upstream)
{
    pid_t up = upstream();
    corral("tenants:\n"
           "  by: header\n"
           "  defaults: {rate: 10000/s, burst: 1000}\n"
           "  list:\n"
           "    - {name: alpha, rate: 10/s, burst: 5, queue: 0}\n"
           "    - {name: bravo}\n");
    struct h_run r;
    const char *args[] = {"-q", "-o", h_path(T, "out"), NULL};
    replay(&r, "campaign.yaml",
           "duration: 3s\n" TARGET_CORRAL "caps: {rate: 500/s, connections: 100}\n"
           "client: {requests_per_connection: 3, resume: 50%, on_refusal: give_up}\n"
           "tenants:\n"
           "  list:\n"
           "    - {name: alpha, baseline: 40/s}\n"
           "    - name: bravo\n"
           "      baseline: 20/s\n"
           "      requests: [{path: /echo, method: POST, body: 2k}, {path: /}]\n",
           args);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);

    char *csv = h_path(T, "out/timeline.csv");
    struct sums a = csv_sums(csv, "alpha"), b = csv_sums(csv, "bravo");
    long total = 0, ua = upstream_count(up, "alpha", &total),
         ub = upstream_count(up, "bravo", NULL);
    ck_assert_msg(a.ok == ua && b.ok == ub,
                  "report: alpha %ld, bravo %ld 2xx; upstream served alpha %ld, bravo %ld", a.ok,
                  b.ok, ua, ub);
    ck_assert_int_eq(total, ua + ub); /* nothing else reached it */
    /* bravo: every arrival of 20/s for 3 s served */
    ck_assert_msg(b.offered == 60 && b.sent == 60 && b.ok == 60, "bravo: %s", sums_str(&b));
    /* alpha: 40/s offered, corral admits 10/s (burst 5), refuses the rest
     * with 429, and each refused client gives up */
    ck_assert_msg(a.offered == 120 && a.sent == 120 && a.ok + a.s429 == 120, "alpha: %s",
                  sums_str(&a));
    ck_assert_msg(a.ok >= 25 && a.ok <= 40 && a.gave_up == a.s429, "alpha: %s", sums_str(&a));
    /* half the new connections resume the saved session */
    ck_assert_msg(a.resumed_hs + b.resumed_hs > 0 && a.full_hs + b.full_hs > 0, "%s | %s",
                  sums_str(&a), sums_str(&b));

    struct line *v;
    int n = access_lines(&v), h1 = 0, h2 = 0;
    for (int i = 0; i < n; i++) {
        h1 += strcmp(v[i].protocol, "HTTP/1.1") == 0;
        h2 += strcmp(v[i].protocol, "HTTP/2") == 0;
        ck_assert_msg(v[i].id > 0, "a request without the replay's X-Request-Id");
    }
    free(v);
    ck_assert_int_eq(n, 180);
    ck_assert_msg(h1 > 20 && h2 > 20, "HTTP/1.1 %d, HTTP/2 %d of %d", h1, h2, n);

    ck_assert(h_file_contains(h_path(T, "out/report.html"), "<svg"));
    ck_assert(h_file_contains(h_path(T, "out/report.html"), "bravo"));
    ck_assert(h_file_contains(h_path(T, "out/report.txt"), "alpha"));
    ck_assert_msg(strstr(r.out, "alpha") != NULL && strstr(r.out, "p99") != NULL, "%s", r.out);
}
END_TEST

/* A tenant limited to 2/s gets 429 with Retry-After (1 or 2 s from
 * corral). Told to obey, each client comes back no sooner than that and
 * no later than Retry-After x 1.2 (the jitter, plus a handshake); told to
 * retry at once, it comes back within a handshake's time. */
static const char *const noisy = "tenants:\n"
                                 "  by: header\n"
                                 "  list: [{name: noisy, rate: 2/s, burst: 1, queue: 0}]\n";

static const char *retry_profile(const char *policy)
{
    return h_strf(T,
                  "duration: 6s\n" TARGET_CORRAL "caps: {rate: 100/s, connections: 50}\n"
                  "client: {on_refusal: %s, retry_jitter: 20%%, max_retries: 3}\n"
                  "tenants: {list: [{name: noisy, baseline: 5/s}]}\n"
                  "events: [{at: 2s, tenant: noisy, factor: 0}]\n",
                  policy);
}

START_TEST(retry_after_is_obeyed)
{
    upstream();
    corral(noisy);
    struct h_run r;
    const char *args[] = {"-q", "-o", h_path(T, "out"), NULL};
    replay(&r, "retry.yaml", retry_profile("obey_retry_after"), args);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);

    double gaps[256];
    int n = retry_gaps(gaps, 256);
    double lo = 1e9, hi = 0;
    for (int i = 0; i < n; i++) {
        lo = gaps[i] < lo ? gaps[i] : lo;
        hi = gaps[i] > hi ? gaps[i] : hi;
    }
    ck_assert_msg(n >= 5, "only %d retries in corral's access log", n);
    /* at most 2 s x 1.2, plus a new connection's handshake on a busy machine */
    ck_assert_msg(lo >= 950.0 && hi <= 3400.0,
                  "%d retries came %.0f to %.0f ms after their 429 (Retry-After is 1 or 2 s, "
                  "jitter up to 20%%)",
                  n, lo, hi);
    struct sums s = csv_sums(h_path(T, "out/timeline.csv"), "noisy");
    ck_assert_msg(s.offered == 10 && s.sent > s.offered && s.s429 > 0, "%s", sums_str(&s));
}
END_TEST

START_TEST(retry_now_ignores_retry_after)
{
    upstream();
    corral(noisy);
    struct h_run r;
    const char *args[] = {"-q", NULL};
    replay(&r, "retry.yaml", retry_profile("retry_now"), args);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);

    double gaps[256], hi = 0;
    int n = retry_gaps(gaps, 256);
    for (int i = 0; i < n; i++)
        hi = gaps[i] > hi ? gaps[i] : hi;
    ck_assert_msg(n >= 10, "only %d retries in corral's access log", n);
    ck_assert_msg(hi < 600.0, "a retry came %.0f ms after its 429: not at once", hi);
}
END_TEST

/* The dry run prints the plan and opens no connection. */
START_TEST(dry_run_sends_nothing)
{
    pid_t up = upstream();
    struct h_run r;
    const char *args[] = {"--dry-run", NULL};
    replay(&r, "plan.yaml",
           "duration: 4s\n"
           "target: {address: 127.0.0.1:@UPORT@, sni: lb.test, ca: @CERTS@/ca.crt}\n"
           "caps: {rate: 1000/s, connections: 10}\n"
           "tenants: {list: [{name: alpha, baseline: 10/s}, {name: bravo, baseline: 5/s}]}\n"
           "events: [{at: 2s, tenant: bravo, factor: 10}]\n",
           args);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.out, "second\tphase\talpha\tbravo\ttotal\n"
                                "0\tbaseline\t10\t5\t15\n"
                                "1\tbaseline\t10\t5\t15\n"
                                "2\tsurge\t10\t50\t60\n"
                                "3\tdecay\t10\t50\t60\n") != NULL,
                  "%s", r.out);
    struct h_up_stats st;
    ck_assert_int_eq(h_up_stats(T, up, T->uport, &st), 0);
    ck_assert_msg(st.accepted == 0 && st.requests == 0, "the dry run made %ld connections",
                  st.accepted);
}
END_TEST

/* A plan needs no certificate: the dry run loads a profile whose CA file
 * does not exist (as on a laptop planning a campaign), while a real run's
 * --check still refuses it. */
START_TEST(dry_run_needs_no_ca_file)
{
    static const char profile[] =
        "duration: 2s\n"
        "target: {address: 127.0.0.1:@UPORT@, sni: lb.test, ca: @DIR@/no-such/ca.crt}\n"
        "caps: {rate: 1000/s, connections: 10}\n"
        "tenants: {list: [{name: alpha, baseline: 10/s}]}\n";
    struct h_run r;
    const char *dry[] = {"--dry-run", NULL};
    replay(&r, "plan.yaml", profile, dry);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.out, "0\tsteady\t10\t10\n1\tsteady\t10\t10\n") != NULL, "%s", r.out);
    const char *check[] = {"--check", NULL};
    replay(&r, "plan.yaml", profile, check);
    ck_assert_msg(r.exit_code != 0 && strstr(r.err, "no-such/ca.crt") != NULL,
                  "--check accepted a missing CA file: exit %d: %s", r.exit_code, r.err);
}
END_TEST

/* corral's own access log, replayed twice as fast: the same requests per
 * tenant reach the upstream, at half their original spacing. */
START_TEST(access_log_replay)
{
    pid_t up = upstream();
    pid_t m = corral("tenants: {by: header, list: [{name: alpha}, {name: bravo}]}\n");
    struct h_run r;
    const char *args[] = {"-q", NULL};
    replay(&r, "record.yaml",
           "duration: 2s\n" TARGET_CORRAL "caps: {rate: 500/s, connections: 50}\n"
           "tenants: {list: [{name: alpha, baseline: 10/s}, {name: bravo, baseline: 20/s, "
           "requests: [{path: /echo, method: PUT, body: 1k}]}]}\n",
           args);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    struct line *orig;
    int norig = access_lines(&orig);
    ck_assert_int_eq(norig, 60);
    long a0 = upstream_count(up, "alpha", NULL), b0 = upstream_count(up, "bravo", NULL);
    ck_assert_int_eq(a0 + b0, 60);

    /* the recorded log; the replay's own requests go to a new one */
    char *recorded = h_path(T, "recorded.log");
    ck_assert_int_eq(rename(T->access_log, recorded), 0);
    ck_assert_int_eq(h_signal(m, SIGUSR1), 0); /* corral reopens its logs */
    long long end = h_now_ms() + 5000;
    while (access(T->access_log, F_OK) != 0 && h_now_ms() < end)
        h_sleep_ms(20);
    ck_assert_msg(access(T->access_log, F_OK) == 0, "corral did not reopen its access log");
    const char *args2[] = {"-q", "-o", h_path(T, "out"), "--access-log", recorded, "--speedup",
                           "2",  NULL};
    replay(&r, "replay.yaml",
           "duration: 10s\n" TARGET_CORRAL "caps: {rate: 500/s, connections: 50}\n", args2);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.err, "60 requests from") != NULL, "%s", r.err);

    long a1 = upstream_count(up, "alpha", NULL), b1 = upstream_count(up, "bravo", NULL);
    ck_assert_msg(a1 - a0 == a0 && b1 - b0 == b0, "replayed alpha %ld, bravo %ld of %ld, %ld",
                  a1 - a0, b1 - b0, a0, b0);
    /* at half the original spacing: the k-th request to start, in both */
    struct line *rep;
    int nrep = access_lines(&rep);
    ck_assert_int_eq(nrep, 60);
    qsort(orig, 60, sizeof(*orig), by_start);
    qsort(rep, 60, sizeof(*rep), by_start);
    double ospan = orig[59].start_ms - orig[0].start_ms, rspan = rep[59].start_ms - rep[0].start_ms;
    ck_assert_msg(ospan > 1800.0 && rspan > ospan / 2 - 250.0 && rspan < ospan / 2 + 250.0,
                  "the original requests spanned %.0f ms, the replayed ones %.0f ms", ospan, rspan);
    for (int i = 0; i < 60; i++) {
        double want = (orig[i].start_ms - orig[0].start_ms) / 2,
               got = rep[i].start_ms - rep[0].start_ms;
        ck_assert_msg(got > want - 250.0 && got < want + 250.0,
                      "request %d started %.0f ms into the replay, %.0f ms expected", i, got, want);
    }
    free(rep);
    struct sums sa = csv_sums(h_path(T, "out/timeline.csv"), "alpha");
    struct sums sb = csv_sums(h_path(T, "out/timeline.csv"), "bravo");
    ck_assert_msg(sa.sent == a0 && sb.sent == b0 && sb.ok == b0, "%s | %s", sums_str(&sa),
                  sums_str(&sb));
    free(orig);
}
END_TEST

/* Large bodies both ways, on both protocols: every answer is read to its
 * end (an answer longer than one read event's share once stalled in
 * OpenSSL's read-ahead buffer until the client timeout). */
START_TEST(large_bodies)
{
    const char *targs[] = {"--count-header", "x-tenant-id", NULL};
    ck_assert_int_gt(h_up_start(T, T->uport, false, targs), 0);
    struct h_run r;
    const char *args[] = {"-q", "-o", h_path(T, "out"), NULL};
    replay(&r, "large.yaml",
           "duration: 3s\n"
           "target: {address: 127.0.0.1:@UPORT@, sni: lb.test, ca: @CERTS@/ca.crt, http2: 0.5}\n"
           "caps: {rate: 100/s, connections: 20}\n"
           "client: {requests_per_connection: 3, timeout: 5s}\n"
           "tenants:\n"
           "  list:\n"
           "    - name: big\n"
           "      baseline: 10/s\n"
           "      requests: [{method: POST, path: /echo, body: 1m}, {path: /bytes/2000000},\n"
           "                 {method: HEAD, path: /bytes/1000}]\n",
           args);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    struct sums s = csv_sums(h_path(T, "out/timeline.csv"), "big");
    ck_assert_msg(s.offered == 30 && s.ok == 30 && s.timeouts == 0 && s.conn_errors == 0, "%s",
                  sums_str(&s));
}
END_TEST

/* A profile without caps is refused with the place to fix, and nothing
 * is sent; so is one aimed at a port where nothing listens: every request
 * fails, exit status 3. */
START_TEST(unbounded_and_unreachable)
{
    pid_t up = upstream();
    struct h_run r;
    replay(&r, "nocaps.yaml",
           "duration: 2s\n"
           "target: {address: 127.0.0.1:@UPORT@, sni: lb.test, ca: @CERTS@/ca.crt}\n"
           "tenants: {list: [{name: alpha, baseline: 10/s}]}\n",
           NULL);
    ck_assert_int_eq(r.exit_code, 2);
    ck_assert_msg(strstr(r.err, "nocaps.yaml:1:1: error: missing required key 'caps'") != NULL,
                  "%s", r.err);
    struct h_up_stats st;
    ck_assert_int_eq(h_up_stats(T, up, T->uport, &st), 0);
    ck_assert_int_eq(st.accepted, 0);

    const char *args[] = {"-q", NULL};
    replay(&r, "closed.yaml",
           "duration: 1s\n"
           "target: {address: 127.0.0.1:@PORT2@, insecure: true}\n"
           "caps: {rate: 100/s, connections: 10}\n"
           "tenants: {list: [{name: alpha, baseline: 10/s}]}\n",
           args);
    ck_assert_msg(r.exit_code == 3, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.err, "connect: Connection refused") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.out, "alpha") != NULL, "%s", r.out);
}
END_TEST

/* target.addresses: one profile spread round robin over two testups and
 * a port where nothing listens. Each testup gets exactly its third of the
 * connections and requests, and the report's per-target lines say where
 * the answers and the refused connects were. */
START_TEST(spread_over_addresses)
{
    pid_t a = h_up_start(T, T->uport, false, NULL), b = h_up_start(T, T->port, false, NULL);
    ck_assert_int_gt(a, 0);
    ck_assert_int_gt(b, 0);
    struct h_run r;
    const char *args[] = {"-q", NULL};
    replay(&r, "spread.yaml",
           "duration: 3s\n"
           "target:\n"
           "  addresses: [127.0.0.1:@UPORT@, 127.0.0.1:@PORT@, 127.0.0.1:@PORT2@]\n"
           "  sni: lb.test\n"
           "  ca: @CERTS@/ca.crt\n"
           "  http2: 0.5\n"
           "caps: {rate: 100/s, connections: 20}\n"
           "client: {requests_per_connection: 1, timeout: 3s}\n"
           "tenants: {list: [{name: alpha, baseline: 10/s, requests: [{path: /x}]}]}\n",
           args);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    struct h_up_stats sa, sb;
    ck_assert_int_eq(h_up_stats(T, a, T->uport, &sa), 0);
    ck_assert_int_eq(h_up_stats(T, b, T->port, &sb), 0);
    ck_assert_msg(sa.accepted == 10 && sa.requests == 10 && sb.accepted == 10 && sb.requests == 10,
                  "testup A %ld connections %ld requests, B %ld %ld: %s", sa.accepted, sa.requests,
                  sb.accepted, sb.requests, r.out);
    char *la = h_strf(T, "127.0.0.1:%d ", T->uport), *lb = h_strf(T, "127.0.0.1:%d ", T->port),
         *lc = h_strf(T, "127.0.0.1:%d ", T->port2);
    const char *rows = strstr(r.out, "per target:");
    ck_assert_msg(rows != NULL, "%s", r.out);
    long v[3][7];
    const char *lines[3] = {la, lb, lc};
    for (int i = 0; i < 3; i++) {
        const char *l = strstr(rows, lines[i]);
        ck_assert_msg(l != NULL, "no line for %s: %s", lines[i], r.out);
        ck_assert_int_eq(sscanf(l + strlen(lines[i]), "%ld %ld %ld %ld %ld %ld %ld", &v[i][0],
                                &v[i][1], &v[i][2], &v[i][3], &v[i][4], &v[i][5], &v[i][6]),
                         7);
    }
    /* connections, 2xx, 429, 503, other, connection errors, timeouts */
    ck_assert_msg(v[0][0] == 10 && v[0][1] == 10 && v[0][5] == 0 && v[1][0] == 10 &&
                      v[1][1] == 10 && v[1][5] == 0 && v[2][0] == 10 && v[2][1] == 0 &&
                      v[2][5] == 10,
                  "%s", r.out);
    ck_assert_msg(strstr(r.err, h_strf(T, "127.0.0.1:%d: connect: Connection refused", T->port2)) !=
                      NULL,
                  "%s", r.err);
}
END_TEST

static Suite *replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("replay");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, report_counts_match_the_upstream);
    tcase_add_test(tc, retry_after_is_obeyed);
    tcase_add_test(tc, retry_now_ignores_retry_after);
    tcase_add_test(tc, dry_run_sends_nothing);
    tcase_add_test(tc, dry_run_needs_no_ca_file);
    tcase_add_test(tc, access_log_replay);
    tcase_add_test(tc, large_bodies);
    tcase_add_test(tc, unbounded_and_unreachable);
    tcase_add_test(tc, spread_over_addresses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(replay_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
