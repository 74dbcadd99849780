/* check_quota - global tenant rates through Redis (quota.h, tenants.global).
 *
 * Two corral processes (two hosts of a fleet: their own listener, admin
 * port, logs and workers) in front of one testup, pointing at one
 * redis-server that the test starts on a free loopback port. Tenant G has a
 * global rate R: driven at 3 x R over both hosts, the two together admit
 * R x T + burst within 5% (each host alone would admit R x T: twice that).
 * With Redis killed mid-run both keep serving (2xx or 429 only), count the
 * fallback, and go back to global rates when Redis is back; with Redis
 * frozen no request waits for it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 100 /* G's global rate, per s */
#define BURST 20

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

struct host {
    int port, admin;
    char *access, *error;
    pid_t pid;
};

static pid_t redis_start_pass(int port, const char *pass)
{
    char *argv[] = {"redis-server", "--port", h_strf(T, "%d", port), "--bind", "127.0.0.1",
                    "--save",       "",       "--appendonly",        "no",     "--daemonize",
                    "no",           pass ? "--requirepass" : NULL, (char *)pass, NULL};
    pid_t pid = h_spawn(T, argv, h_path(T, "redis.log"), h_path(T, "redis.log"));
    ck_assert_msg(pid > 0, "cannot run redis-server (apt-get install redis-server)");
    ck_assert_msg(h_wait_port(port, true, 5000), "redis-server did not listen on %d: %s", port,
                  h_file_tail(T, h_path(T, "redis.log"), 800));
    return pid;
}

static pid_t redis_start(int port)
{
    return redis_start_pass(port, NULL);
}

/* Writes host h's config NAME.yaml: tenant G global (through Redis on
 * redis_port), or (global false) no global quotas at all. */
static char *host_config(const struct host *h, const char *name, int redis_port, bool global)
{
    char *cfg = h_config_write(
        T, h_strf(T, "%s.yaml", name),
        h_strf(T,
               "workers: 1\n"
               "drain_timeout: 1s\n"
               "log: {error: %s, level: info, access: %s}\n"
               "listeners:\n"
               "  - name: https\n"
               "    address: 127.0.0.1:%d\n"
               "    tls:\n"
               "      certificates:\n"
               "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
               "upstream:\n"
               "  addresses: [127.0.0.1:@UPORT@]\n"
               "  protocol: h2\n"
               "  connections: 1\n"
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: "
               "@CERTS@/client.key, sni: lb.test}\n"
               "admin: {address: 127.0.0.1:%d}\n"
               "tenants:\n"
               "  by: header\n"
               "  defaults: {rate: 100000/s, burst: 100000}\n"
               "  global: {address: 127.0.0.1:%d, hosts: 2, command_timeout: 200ms,\n"
               "           reconnect_max: 500ms}\n"
               "  list: [{name: G, rate: %d/s, burst: %d, queue: 0, global: %s}]\n",
               h->error, h->access, h->port, h->admin, redis_port, RATE, BURST,
               global ? "true" : "false"));
    ck_assert_msg(cfg != NULL, "cannot write the config");
    return cfg;
}

static void host_start(struct host *h, const char *name, int port, int redis_port)
{
    h->port = port;
    h->admin = h_free_port();
    h->access = h_path(T, h_strf(T, "%s-access.log", name));
    h->error = h_path(T, h_strf(T, "%s-error.log", name));
    char *cfg = host_config(h, name, redis_port, true);
    h->pid = h_corral_start(T, cfg, port);
    ck_assert_msg(h->pid > 0, "corral %s did not start: %s | %s", name,
                  h_file_tail(T, h_path(T, "corral.err"), 1500), h_file_tail(T, h->error, 1500));
}

static long quota_field(const struct host *h, const char *key)
{
    return h_json_long(h_admin_stats(T, h->admin), key);
}

/* Waits until the host's worker has global rates (fallback 0) or not. */
static bool wait_fallback(const struct host *h, long want, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        if (quota_field(h, "fallback") == want)
            return true;
        if (h_now_ms() >= end)
            return false;
        h_sleep_ms(50);
    }
}

static void start_fleet(struct host *a, struct host *b, int *redis_port, pid_t *redis)
{
    ck_assert_msg(h_adm_testup_start(T, 128, 0) > 0, "testup did not start: %s",
                  h_file_tail(T, h_path(T, "testup.log"), 1500));
    *redis_port = h_free_port();
    *redis = redis_start(*redis_port);
    host_start(a, "a", T->port, *redis_port);
    host_start(b, "b", h_free_port(), *redis_port);
    ck_assert_msg(wait_fallback(a, 0, 5000) && wait_fallback(b, 0, 5000),
                  "the hosts did not lease from Redis: %s | %s", h_file_tail(T, a->error, 800),
                  h_file_tail(T, b->error, 800));
}

static const char *load_str(const struct h_adm_load *l)
{
    return h_strf(T,
                  "exit %d, %ld started, %ld done, %ld errored; 2xx %ld, 429 %ld, 503 %ld, "
                  "other %ld; max %.1f ms; in %lld ms",
                  l->exit_code, l->started, l->done, l->errored, l->n2xx, l->n429, l->n503,
                  l->nother, l->max_ms, l->ran_ms);
}

/* h2load at rps on one host for seconds (two clients). */
static void drive_at(struct h_adm_load *l, const struct host *h, int seconds, int rps)
{
    const char *args[] = {"-c",    "2",
                          "-m",    "1",
                          "--rps", h_strf(T, "%d", rps / 2),
                          "-D",    h_strf(T, "%d", seconds),
                          "-H",    "x-tenant-id: G",
                          NULL};
    ck_assert_int_eq(h_adm_h2load_start(T, l, h->port, "/g", args), 0);
}

/* 3 x RATE / 2 on one host: 3 x RATE over two. */
static void drive(struct h_adm_load *l, const struct host *h, int seconds)
{
    drive_at(l, h, seconds, 3 * RATE / 2);
}

static void finish(struct h_adm_load *l, const char *who, int seconds)
{
    int rc = h_adm_h2load_wait(T, l, (seconds + 20) * 1000);
    ck_assert_msg(rc == 0 && l->exit_code == 0, "h2load on %s failed: %s", who, load_str(l));
}

/* Admitted requests of G in one host's access log, and the span of the
 * log's G lines (first to last, ms). */
static long admitted(const struct host *h, long long *first, long long *last)
{
    char saved[sizeof(T->access_log)];
    memcpy(saved, T->access_log, sizeof(saved));
    snprintf(T->access_log, sizeof(T->access_log), "%s", h->access);
    struct h_adm_entry *e = NULL;
    int n = h_adm_access(T, &e);
    memcpy(T->access_log, saved, sizeof(saved));
    ck_assert_msg(n >= 0, "cannot read %s", h->access);
    long ok = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(e[i].tenant, "G") != 0)
            continue;
        if (*first == 0 || e[i].time_ms < *first)
            *first = e[i].time_ms;
        if (e[i].time_ms > *last)
            *last = e[i].time_ms;
        ok += e[i].status >= 200 && e[i].status < 300;
    }
    return ok;
}

/* 3 x R over two hosts for 10 s: R x T + burst, within 5%. */
START_TEST(global_rate_across_hosts)
{
    struct host a, b;
    int rport;
    pid_t redis;
    start_fleet(&a, &b, &rport, &redis);

    struct h_adm_load la, lb;
    drive(&la, &a, 10);
    drive(&lb, &b, 10);
    finish(&la, "a", 10);
    finish(&lb, "b", 10);
    long long first = 0, last = 0;
    long na = admitted(&a, &first, &last), nb = admitted(&b, &first, &last);
    double secs = (double)(last - first) / 1000.0;
    double want = RATE * secs;
    ck_assert_msg(secs > 8.0, "the run lasted %.1f s", secs);
    /* h2load -D does not count the requests in flight when its time is up
     * (-c 2 -m 1: two per host), which corral may still have answered */
    ck_assert_msg(na + nb >= la.n2xx + lb.n2xx && na + nb <= la.n2xx + lb.n2xx + 4,
                  "h2load counted %ld 2xx, the logs %ld", la.n2xx + lb.n2xx, na + nb);
    ck_assert_msg(la.n2xx + la.n429 == la.done && lb.n2xx + lb.n429 == lb.done,
                  "only 2xx and 429 expected: a: %s | b: %s", load_str(&la), load_str(&lb));
    ck_assert_msg(na + nb <= (long)(1.05 * want) + BURST && na + nb >= (long)(0.95 * want),
                  "admitted %ld + %ld = %ld in %.2f s; global rate %d/s, burst %d: want %.0f "
                  "within 5%% (+ burst): a: %s | b: %s",
                  na, nb, na + nb, secs, RATE, BURST, want, load_str(&la), load_str(&lb));
    ck_assert_msg(na > want / 4 && nb > want / 4, "one host starved: a %ld, b %ld", na, nb);
    long asks = quota_field(&a, "asks") + quota_field(&b, "asks");
    fprintf(stderr,
            "check_quota: admitted %ld + %ld = %ld in %.2f s (R x T = %.0f, %+.1f%%), %ld lease "
            "scripts (%.1f/s)\n",
            na, nb, na + nb, secs, want, 100.0 * ((double)(na + nb) - want) / want, asks,
            (double)asks / secs);
}
END_TEST

/* All of the load on one host (3 x R), none on the other: that host gets
 * the whole global rate, not its share (rate / hosts = R / 2). */
START_TEST(one_host_takes_whole_rate)
{
    struct host a, b;
    int rport;
    pid_t redis;
    start_fleet(&a, &b, &rport, &redis);

    struct h_adm_load la;
    drive_at(&la, &a, 8, 3 * RATE);
    finish(&la, "a", 8);
    long long first = 0, last = 0;
    long na = admitted(&a, &first, &last);
    double secs = (double)(last - first) / 1000.0, want = RATE * secs;
    ck_assert_msg(la.n2xx + la.n429 == la.done, "only 2xx and 429 expected: %s", load_str(&la));
    ck_assert_msg(na <= (long)(1.05 * want) + BURST && na >= (long)(0.95 * want),
                  "one host alone admitted %ld in %.2f s; global rate %d/s: want %.0f within "
                  "5%% (its share alone would be %.0f): %s",
                  na, secs, RATE, want, want / 2, load_str(&la));
}
END_TEST

/* Redis killed for 3 s in the middle of a 9 s run: only 2xx and 429, the
 * fallback counted by both hosts, global again once Redis is back. */
START_TEST(redis_outage_falls_back)
{
    struct host a, b;
    int rport;
    pid_t redis;
    start_fleet(&a, &b, &rport, &redis);

    struct h_adm_load la, lb;
    drive(&la, &a, 9);
    drive(&lb, &b, 9);
    h_sleep_ms(3000);
    h_signal(redis, SIGKILL);
    h_wait_exit(redis, 3000, NULL);
    long long down_at = h_now_ms();
    ck_assert_msg(wait_fallback(&a, 1, 2000) && wait_fallback(&b, 1, 2000),
                  "no fallback within 2 s of Redis dying: %s", h_file_tail(T, a.error, 800));
    ck_assert_int_ge(quota_field(&a, "fallbacks"), 1);
    ck_assert_int_ge(quota_field(&b, "fallbacks"), 1);
    long long left = 3000 - (h_now_ms() - down_at);
    if (left > 0)
        h_sleep_ms((int)left);
    redis = redis_start(rport);
    ck_assert_msg(wait_fallback(&a, 0, 3000) && wait_fallback(&b, 0, 3000),
                  "not back to global rates within 3 s of Redis returning: %s | %s",
                  h_file_tail(T, a.error, 800), h_file_tail(T, b.error, 800));
    finish(&la, "a", 9);
    finish(&lb, "b", 9);
    ck_assert_msg(la.errored == 0 && lb.errored == 0 && la.n2xx + la.n429 == la.done &&
                      lb.n2xx + lb.n429 == lb.done && la.done > 0 && lb.done > 0,
                  "only 2xx and 429 expected through the outage: a: %s | b: %s", load_str(&la),
                  load_str(&lb));
    const char *down[] = {"global quotas: Redis at", "per-host share", NULL};
    const char *back[] = {"global quotas: Redis at", "global rates", NULL};
    ck_assert_int_eq(h_file_count_lines(a.error, down), 1);
    ck_assert_int_ge(h_file_count_lines(a.error, back), 2); /* at start and after */
    ck_assert_msg(strstr(h_admin_stats(T, a.admin), "\"fallbacks\":1") != NULL, "stats: %s",
                  h_admin_stats(T, a.admin));
}
END_TEST

/* A Redis that takes the connection and refuses every command (it wants
 * a password corral was not given: NOAUTH): corral serves on the per-host
 * share and reconnects with a growing back-off (reconnect_max 500 ms here),
 * logging the refusal once - not at network speed with an error line per
 * attempt, which a connection reset the back-off on used to do. */
START_TEST(refusing_redis_is_retried_with_back_off)
{
    struct host a;
    ck_assert_msg(h_adm_testup_start(T, 128, 0) > 0, "testup did not start: %s",
                  h_file_tail(T, h_path(T, "testup.log"), 1500));
    int rport = h_free_port();
    redis_start_pass(rport, "sesame");
    host_start(&a, "a", T->port, rport);
    ck_assert_msg(wait_fallback(&a, 1, 3000), "no fallback: %s", h_file_tail(T, a.error, 800));
    h_sleep_ms(3000); /* nothing to wait for: the attempts are what is counted */
    char *argv[] = {"redis-cli", "-p", h_strf(T, "%d", rport), "-a", "sesame",
                    "--no-auth-warning", "INFO", "stats", NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 5000, &r), 0);
    const char *k = strstr(r.out, "total_connections_received:");
    ck_assert_msg(k != NULL, "redis-cli: %s %s", r.out, r.err);
    long conns = atol(k + strlen("total_connections_received:"));
    /* 100 ms doubling to 500 ms, +-50%: about 10 in 3.5 s */
    ck_assert_msg(conns <= 25, "%ld connections to Redis in about 3.5 s", conns);
    const char *refused[] = {"global quotas: Redis at", "NOAUTH", NULL};
    ck_assert_int_eq(h_file_count_lines(a.error, refused), 1);
    struct h_http resp;
    const char *hdr[] = {"-H", "x-tenant-id: G", NULL};
    h_curl_edge(T, &resp, T->port, "/", hdr);
    ck_assert_int_eq(resp.status, 200);
}
END_TEST

/* Redis unreachable (nothing listens on its port): the worker is in
 * fallback (corral_quota_fallback 1). A reload to a config without global
 * quotas ends it: the new generation's worker uses no Redis, and the old
 * one, gone after its drain, takes its fallback with it - the gauge is 0
 * again, where it used to stay 1 for good. */
START_TEST(reload_without_global_quotas_ends_fallback)
{
    struct host a;
    ck_assert_msg(h_adm_testup_start(T, 128, 0) > 0, "testup did not start: %s",
                  h_file_tail(T, h_path(T, "testup.log"), 1500));
    int rport = h_free_port(); /* nothing listens there */
    host_start(&a, "a", T->port, rport);
    ck_assert_msg(wait_fallback(&a, 1, 3000), "no fallback: %s", h_file_tail(T, a.error, 800));
    host_config(&a, "a", rport, false);
    ck_assert_int_eq(h_signal(a.pid, SIGHUP), 0);
    const char *const gen2[] = {"generation 2", NULL};
    ck_assert_msg(h_wait_file_line(a.error, gen2, 10000), "no second generation: %s",
                  h_file_tail(T, a.error, 800));
    /* the old worker drains for at most drain_timeout (1 s) */
    ck_assert_msg(wait_fallback(&a, 0, 5000), "fallback still %ld after the reload: %s",
                  quota_field(&a, "fallback"), h_file_tail(T, a.error, 800));
    struct h_http r;
    h_curl(T, &r, h_strf(T, "http://127.0.0.1:%d/metrics", a.admin), NULL);
    ck_assert_msg(r.status == 200 && strstr(r.body, "\ncorral_quota_fallback 0\n"),
                  "/metrics: %d %s", r.status, r.body);
}
END_TEST

/* Redis frozen (SIGSTOP) for 2 s: the connection stays open and nothing
 * answers. The hosts fall back after command_timeout (200 ms) and no
 * request waits for Redis: the slowest stays far below the freeze. */
START_TEST(slow_redis_adds_no_latency)
{
    struct host a, b;
    int rport;
    pid_t redis;
    start_fleet(&a, &b, &rport, &redis);

    struct h_adm_load la, lb;
    drive(&la, &a, 6);
    drive(&lb, &b, 6);
    h_sleep_ms(2000);
    h_signal(redis, SIGSTOP);
    bool fell = wait_fallback(&a, 1, 1500) && wait_fallback(&b, 1, 1500);
    h_sleep_ms(1500);
    h_signal(redis, SIGCONT);
    ck_assert_msg(fell, "no fallback while Redis was frozen: %s", h_file_tail(T, a.error, 800));
    ck_assert_msg(wait_fallback(&a, 0, 3000) && wait_fallback(&b, 0, 3000),
                  "not back to global rates after Redis thawed: %s | %s",
                  h_file_tail(T, a.error, 800), h_file_tail(T, b.error, 800));
    finish(&la, "a", 6);
    finish(&lb, "b", 6);
    ck_assert_msg(la.errored == 0 && lb.errored == 0 && la.n2xx + la.n429 == la.done &&
                      lb.n2xx + lb.n429 == lb.done,
                  "only 2xx and 429 expected: a: %s | b: %s", load_str(&la), load_str(&lb));
    /* a request held until Redis answered would take 200 ms to 2 s */
    ck_assert_msg(la.max_ms < 150.0 && lb.max_ms < 150.0,
                  "the slowest request took %.1f / %.1f ms while Redis was frozen for 2 s",
                  la.max_ms, lb.max_ms);
    const char *slow[] = {"did not answer in time", NULL};
    ck_assert_int_eq(h_file_count_lines(a.error, slow), 1);
}
END_TEST

int main(void)
{
    h_init();
    Suite *s = suite_create("quota");
    TCase *tc = tcase_create("quota");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, global_rate_across_hosts);
    tcase_add_test(tc, one_host_takes_whole_rate);
    tcase_add_test(tc, redis_outage_falls_back);
    tcase_add_test(tc, slow_redis_adds_no_latency);
    tcase_add_test(tc, refusing_redis_is_retried_with_back_off);
    tcase_add_test(tc, reload_without_global_quotas_ends_fallback);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
