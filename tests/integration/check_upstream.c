/* check_upstream.c - corral's upstream pool (issue 4): persistent
 * connections, several addresses, an upstream that dies (under load, with
 * requests in flight) and comes back, an unreachable or silent upstream,
 * certificate verification both ways, HTTP/2 stream limits (steady, when
 * saturated, and in the burst before the server's SETTINGS), HTTP/1.1
 * keep-alive, pipelining and an upstream that closes its connections.
 *
 * Every test starts its own tests/testup/testup instance(s) and the real corral on
 * free loopback ports and looks at the pool from the upstream's side:
 * testup's counters (connections accepted and open, requests begun, the most
 * in flight at once) are read through its stats file, so that reading them
 * opens no connection of its own. The harness kills everything on teardown,
 * even when an assertion fails. Clients: curl and h2load; certificates of a
 * foreign CA are made with openssl; one upstream is a small python3 script. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ------------------------------------------------------------ helpers */

/* The verified upstream TLS block of the production shape: our CA, the
 * client certificate, the load balancer's name. */
#define TLS_OK                                                                                     \
    "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: @CERTS@/client.key, "              \
    "sni: lb.test}\n"

/* A corral config: `workers` workers, logs in DIR, one listener on @PORT@,
 * and the given upstream section (its indented lines). */
static char *config(int workers, const char *upstream)
{
    return h_strf(T,
                  "workers: %d\n"
                  "drain_timeout: 1s\n"
                  "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
                  "listeners:\n"
                  "  - name: https\n"
                  "    address: 127.0.0.1:@PORT@\n"
                  "    tls:\n"
                  "      certificates:\n"
                  "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                  "upstream:\n"
                  "%s",
                  workers, upstream);
}

/* Writes the config and starts corral on T->port; fails the test when it
 * does not serve. Returns the master's pid. */
static pid_t start_corral(const char *cfg_text)
{
    char *cfg = h_config_write(T, "corral.yaml", cfg_text);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start serving on port %d: stderr: %s | error log: %s",
                  T->port, h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    return m;
}

/* Starts a testup on port (client certificate required unless told);
 * fails the test when it does not listen. */
static pid_t start_up(int port, bool client_cert, const char *const *args)
{
    pid_t pid = h_up_start(T, port, client_cert, args);
    ck_assert_msg(pid > 0, "testup did not start on port %d: %s", port,
                  h_file_tail(T, h_strf(T, "%s/testup-%d.log", T->dir, port), 1500));
    return pid;
}

static struct h_up_stats stats(pid_t up, int port)
{
    struct h_up_stats st;
    ck_assert_msg(h_up_stats(T, up, port, &st) == 0, "cannot read testup %d's counters", port);
    return st;
}

static const char *fmt_stats(const struct h_up_stats *s)
{
    return h_strf(T,
                  "accepted %ld, open %ld, requests %ld, inflight %ld, max_inflight %ld, "
                  "h2 %ld, h1 %ld",
                  s->accepted, s->open, s->requests, s->inflight, s->max_inflight, s->h2, s->h1);
}

/* Waits (bounded) until testup's connections_open is `open`; fails the
 * test with the counters and corral's error log otherwise. */
static struct h_up_stats wait_open(pid_t up, int port, long open, int timeout_ms)
{
    struct h_up_stats st;
    ck_assert_msg(h_up_wait_open(T, up, port, open, timeout_ms, &st),
                  "testup %d: %ld connection(s) open after %d ms, expected %ld (%s) | "
                  "error log: %s",
                  port, st.open, timeout_ms, open, fmt_stats(&st),
                  h_file_tail(T, T->error_log, 1500));
    return st;
}

/* One GET through corral; returns the HTTP status (0: none). */
static int get_status(const char *path, struct h_http *r)
{
    h_curl_edge(T, r, T->port, path, NULL);
    return r->status;
}

/* A run of h2load against corral that must end in time with every request
 * answered 2xx. */
static struct h_adm_load load_ok(const char *path, const char *const *args, int timeout_ms, long n)
{
    struct h_adm_load l;
    int rc = h_adm_h2load(T, &l, T->port, path, args, timeout_ms);
    ck_assert_msg(rc == 0, "h2load %s did not finish within %d ms (exit %d): %s", path, timeout_ms,
                  l.exit_code, h_file_tail(T, l.out_path, 1200));
    ck_assert_msg(l.done == n && l.succeeded == n && l.n2xx == n,
                  "h2load %s: %ld done, %ld succeeded, %ld 2xx (log), %ld 503, %ld other; "
                  "expected %ld 2xx | %s | error log: %s",
                  path, l.done, l.succeeded, l.n2xx, l.n503, l.nother, n,
                  h_file_tail(T, l.out_path, 600), h_file_tail(T, T->error_log, 1200));
    return l;
}

/* Waits up to 3 s until the access log has at least min lines (workers
 * write them asynchronously); fails the test otherwise. */
static void wait_access_lines(int min)
{
    int n = 0;
    struct h_adm_entry *e;
    for (long long end = h_now_ms() + 3000;; h_sleep_ms(20)) {
        n = h_adm_access(T, &e);
        if (n >= min || h_now_ms() >= end)
            break;
    }
    ck_assert_msg(n >= min, "the access log has %d line(s), expected at least %d: %s", n, min,
                  h_file_tail(T, T->access_log, 1500));
}

/* How many access log lines have this path, status and (unless NULL)
 * reason. */
static int count_entries(const char *path, int status, const char *reason)
{
    struct h_adm_entry *e;
    int n = h_adm_access(T, &e), c = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].path, path) == 0 && e[i].status == status &&
            (reason == NULL || strcmp(e[i].reason, reason) == 0))
            c++;
    return c;
}

/* POSTs with a body, and without one (nothing of it to have been sent: only
 * the method says it must not be replayed). */
static const char *const *post_args(int i)
{
    static const char *const with_body[] = {"-X", "POST", "--data-binary", "payload", NULL};
    static const char *const empty[] = {"-X", "POST", NULL};
    return i % 2 == 0 ? with_body : empty;
}

/* ------------------------------------------------------------ persistent pool */

/* The pool is opened when the workers start, before any request, and 1000
 * requests later it is still the same connections. */
static void check_persistent(const char *protocol, bool h2)
{
    pid_t up = start_up(T->uport, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: %s\n"
                             "  connections: 2\n" TLS_OK,
                             T->uport, protocol);
    start_corral(config(2, ups));

    /* 2 workers x 2 connections, within 2 s of corral serving */
    struct h_up_stats s0 = wait_open(up, T->uport, 4, 2000);
    ck_assert_msg(s0.accepted == 4 && s0.requests == 0,
                  "at start, before any request: %s; expected 4 accepted, 0 requests",
                  fmt_stats(&s0));
    /* testup counts a connection by protocol once its handshake is done */
    for (long long end = h_now_ms() + 2000; (h2 ? s0.h2 : s0.h1) < 4 && h_now_ms() < end;) {
        h_sleep_ms(20);
        s0 = stats(up, T->uport);
    }
    ck_assert_msg(h2 ? s0.h2 == 4 && s0.h1 == 0 : s0.h1 == 4 && s0.h2 == 0,
                  "the pool does not speak %s: %s", protocol, fmt_stats(&s0));

    /* 1000 requests from 20 client connections, both client protocols */
    const char *a2[] = {"-c", "10", "-m", "10", "-n", "500", NULL};
    const char *a1[] = {"--h1", "-c", "10", "-n", "500", NULL};
    load_ok("/", a2, 30000, 500);
    load_ok("/", a1, 30000, 500);

    struct h_up_stats s1 = stats(up, T->uport);
    ck_assert_msg(s1.requests == 1000, "testup saw %ld requests, expected 1000 (%s)", s1.requests,
                  fmt_stats(&s1));
    ck_assert_msg(s1.accepted == 4 && s1.open == 4,
                  "the pool opened new connections during the load: %s (expected 4 accepted, "
                  "4 open) | error log: %s",
                  fmt_stats(&s1), h_file_tail(T, T->error_log, 1500));
}

START_TEST(pool_persistent_h2)
{
    check_persistent("h2", true);
}
END_TEST

START_TEST(pool_persistent_http11)
{
    check_persistent("http/1.1", false);
}
END_TEST

/* Two addresses: each worker spreads its connections over both, and the
 * requests reach both. */
START_TEST(pool_two_addresses)
{
    pid_t a = start_up(T->uport, true, NULL);
    pid_t b = start_up(T->port2, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d, 127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 2\n" TLS_OK,
                             T->uport, T->port2);
    start_corral(config(2, ups));
    wait_open(a, T->uport, 2, 2000);
    wait_open(b, T->port2, 2, 2000);

    const char *args[] = {"-c", "8", "-m", "8", "-n", "400", NULL};
    load_ok("/", args, 30000, 400);
    struct h_up_stats sa = stats(a, T->uport), sb = stats(b, T->port2);
    ck_assert_msg(sa.requests + sb.requests == 400 && sa.requests >= 40 && sb.requests >= 40,
                  "requests not spread over both addresses: A %s | B %s", fmt_stats(&sa),
                  fmt_stats(&sb));
    ck_assert_msg(sa.accepted == 2 && sb.accepted == 2 && sa.open == 2 && sb.open == 2,
                  "connections changed: A %s | B %s", fmt_stats(&sa), fmt_stats(&sb));
}
END_TEST

/* ------------------------------------------------------------ upstream failure */

/* The upstream is SIGKILLed under a load of GETs with POSTs in flight and
 * restarted on the same port a second later:
 *   - every POST gets 502 at once (well before its 2 s answer was due), and
 *     none is sent again: the restarted upstream sees no request until the
 *     test sends new ones;
 *   - every GET ends, with 200, 502 or 503, none hangs;
 *   - the pool reconnects (back-off) and requests succeed again.
 * With outage_wait 0: nothing waits for the upstream to come back (the
 * default's waiting is check_outage's). */
START_TEST(upstream_killed_and_restarted_under_load)
{
    pid_t up = start_up(T->uport, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 2\n"
                             "  outage_wait: 0\n" TLS_OK,
                             T->uport);
    start_corral(config(2, ups));
    wait_open(up, T->uport, 4, 2000);

    /* 4 POSTs in flight at the upstream */
    struct h_up_bg post[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(h_up_bg_curl(T, &post[i], T->port, "/delay/2000", post_args(i)), 0);
    struct h_up_stats s;
    long long end = h_now_ms() + 3000;
    do {
        h_sleep_ms(20);
        s = stats(up, T->uport);
    } while (s.inflight < 4 && h_now_ms() < end);
    ck_assert_msg(s.inflight == 4, "the 4 POSTs are not in flight upstream: %s", fmt_stats(&s));

    /* GETs: 32 at once for ~2 s (1280 x 50 ms) */
    struct h_adm_load l;
    const char *largs[] = {"-c", "8", "-m", "4", "-n", "1280", NULL};
    ck_assert_int_eq(h_adm_h2load_start(T, &l, T->port, "/delay/50", largs), 0);
    h_sleep_ms(600);
    s = stats(up, T->uport);
    ck_assert_msg(s.requests > 4 + 32, "the GET load is not flowing: %s", fmt_stats(&s));

    h_up_kill(T, up);
    long long killed = h_now_ms();

    /* nothing hangs: the load and the POSTs end soon after the kill */
    int lrc = h_adm_h2load_wait(T, &l, 5000);
    ck_assert_msg(lrc == 0, "h2load still running %lld ms after the upstream died: %s",
                  h_now_ms() - killed, h_file_tail(T, l.out_path, 1200));
    for (int i = 0; i < 4; i++) {
        int rc = h_up_bg_wait(T, &post[i], 3000);
        ck_assert_msg(rc == 0, "POST %d still running 3 s after the upstream died", i);
        ck_assert_msg(post[i].status == 502,
                      "POST %d in flight when the upstream died: HTTP %d after %.3f s "
                      "(expected 502) | %s",
                      i, post[i].status, post[i].secs, h_file_tail(T, post[i].out, 300));
        double after = post[i].t0_ms + post[i].secs * 1000 - killed;
        ck_assert_msg(after < 1000, "POST %d got its 502 %.0f ms after the kill, not at once", i,
                      after);
    }
    ck_assert_msg(l.done == 1280 && l.errored == 0 && l.timeouts == 0,
                  "GET load: %ld of 1280 done, %ld errored, %ld timeout: %s", l.done, l.errored,
                  l.timeouts, h_file_tail(T, l.out_path, 800));
    long bad = 0;
    for (int i = 0; i < l.nreqs; i++)
        bad += l.reqs[i].status != 200 && l.reqs[i].status != 502 && l.reqs[i].status != 503;
    ck_assert_msg(bad == 0 && l.nreqs == 1280,
                  "GETs: %ld answered other than 200/502/503 (%d logged)", bad, l.nreqs);
    ck_assert_msg(l.n2xx > 32 && l.n2xx < 1280,
                  "GETs: %ld of 1280 succeeded: the kill did not happen under load", l.n2xx);

    /* the same port, about a second later */
    long long wait = killed + 1000 - h_now_ms();
    if (wait > 0)
        h_sleep_ms((int)wait);
    up = start_up(T->uport, true, NULL);
    long long restarted = h_now_ms();

    /* requests succeed again within a few seconds: after about 1 s of
     * failures the back-off (100 ms doubling, +-25%) retries within 1.25 s */
    struct h_http r;
    int probes = 1;
    for (; get_status("/after-restart", &r) != 200 && h_now_ms() - restarted < 3000; probes++)
        h_sleep_ms(100); /* a 502 never reached the upstream */
    ck_assert_msg(r.status == 200,
                  "no 200 within 3 s of the upstream's restart: HTTP %d %s | error log: %s",
                  r.status, r.body, h_file_tail(T, T->error_log, 1500));
    /* the whole pool comes back, and once corral has logged every request
     * the test sent (it is done with them: none can be sent again), nothing
     * but the one probe that got its 200 arrived: no POST (nor anything
     * else) was replayed on the new connections */
    wait_open(up, T->uport, 4, (int)(restarted + 4000 - h_now_ms()));
    wait_access_lines(1280 + 4 + probes);
    s = stats(up, T->uport);
    ck_assert_msg(s.requests == 1,
                  "the restarted upstream saw %ld request(s), the test sent 1: a request was "
                  "replayed (%s)",
                  s.requests, fmt_stats(&s));
    ck_assert_msg(count_entries("/delay/2000", 502, "upstream connection lost") == 4,
                  "the access log lacks 4 POST lines with 502 \"upstream connection lost\": %s",
                  h_file_tail(T, T->access_log, 1500));
}
END_TEST

/* Two upstreams; one dies with GETs and POSTs in flight on it: its GETs are
 * retried on the other one and succeed, its POSTs get 502 and never reach
 * the other one. */
START_TEST(dead_connection_retries_get_not_post)
{
    pid_t a = start_up(T->uport, true, NULL);
    pid_t b = start_up(T->port2, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d, 127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 2\n" TLS_OK,
                             T->uport, T->port2);
    start_corral(config(1, ups));
    wait_open(a, T->uport, 1, 2000);
    wait_open(b, T->port2, 1, 2000);

    enum { N = 4 };
    struct h_up_bg post[N], get[N];
    struct h_up_stats sa, sb;
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(h_up_bg_curl(T, &post[i], T->port, "/delay/1500", post_args(i)), 0);
    long long end = h_now_ms() + 3000;
    do {
        h_sleep_ms(20);
        sa = stats(a, T->uport);
        sb = stats(b, T->port2);
    } while (sa.inflight + sb.inflight < N && h_now_ms() < end);
    long posts_a = sa.inflight;
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(h_up_bg_curl(T, &get[i], T->port, "/delay/1400", NULL), 0);
    end = h_now_ms() + 3000;
    do {
        h_sleep_ms(20);
        sa = stats(a, T->uport);
        sb = stats(b, T->port2);
    } while (sa.inflight + sb.inflight < 2 * N && h_now_ms() < end);
    ck_assert_msg(sa.inflight + sb.inflight == 2 * N, "not all in flight: A %s | B %s",
                  fmt_stats(&sa), fmt_stats(&sb));
    long gets_a = sa.inflight - posts_a, b_before = sb.requests;
    ck_assert_msg(posts_a >= 1 && gets_a >= 1,
                  "the pool did not spread the requests: A has %ld POST(s) and %ld GET(s) "
                  "(A %s | B %s)",
                  posts_a, gets_a, fmt_stats(&sa), fmt_stats(&sb));

    h_up_kill(T, a);
    long long killed = h_now_ms();

    int post_502 = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(h_up_bg_wait(T, &post[i], 5000) == 0, "POST %d hangs", i);
        ck_assert_msg(post[i].status == 502 || post[i].status == 200, "POST %d: HTTP %d", i,
                      post[i].status);
        if (post[i].status == 502) {
            post_502++;
            double after = post[i].t0_ms + post[i].secs * 1000 - killed;
            ck_assert_msg(after < 1000, "POST %d: 502 %.0f ms after the kill, not at once", i,
                          after);
        }
    }
    for (int i = 0; i < N; i++) {
        ck_assert_msg(h_up_bg_wait(T, &get[i], 5000) == 0, "GET %d hangs", i);
        ck_assert_msg(get[i].status == 200,
                      "GET %d (idempotent, its connection died before any response byte): "
                      "HTTP %d after %.3f s, expected 200 from a retry on the other upstream | "
                      "error log: %s",
                      i, get[i].status, get[i].secs, h_file_tail(T, T->error_log, 1500));
    }
    ck_assert_msg(post_502 == posts_a, "%d POST(s) got 502, %ld were on the dead upstream",
                  post_502, posts_a);
    sb = stats(b, T->port2);
    ck_assert_msg(sb.requests == b_before + gets_a,
                  "upstream B saw %ld requests: %ld before the kill + %ld retried GET(s) "
                  "expected; more means a POST was replayed (%s)",
                  sb.requests, b_before, gets_a, fmt_stats(&sb));
}
END_TEST

/* No listener on the upstream port: a request gets 502 at once (not after
 * a connect timeout), and the access log says why. */
START_TEST(unreachable_upstream_fast_502)
{
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 2\n"
                             "  connect_timeout: 5s\n" TLS_OK,
                             T->uport);
    start_corral(config(2, ups));
    const char *w1[] = {"worker 1[", "connect: Connection refused", NULL};
    const char *w2[] = {"worker 2[", "connect: Connection refused", NULL};
    ck_assert_msg(
        h_wait_file_line(T->error_log, w1, 3000) && h_wait_file_line(T->error_log, w2, 3000),
        "the workers did not log their refused connects: %s", h_file_tail(T, T->error_log, 1500));

    for (int i = 0; i < 4; i++) {
        struct h_http r;
        long long t0 = h_now_ms();
        get_status(h_strf(T, "/unreachable-%d", i), &r);
        long long ms = h_now_ms() - t0;
        ck_assert_msg(r.status == 502, "request %d: HTTP %d (curl %d: %s), expected 502", i,
                      r.status, r.exit_code, r.err);
        ck_assert_msg(ms < 1000, "request %d: 502 after %lld ms, expected < 1 s", i, ms);
        ck_assert_msg(strstr(r.body, "upstream") != NULL, "502 body: %s", r.body);
    }
    wait_access_lines(4);
    ck_assert_msg(count_entries("/unreachable-0", 502, "upstream unavailable") == 1,
                  "no access log line with status 502 and reason \"upstream unavailable\": %s",
                  h_file_tail(T, T->access_log, 1500));
}
END_TEST

/* response_timeout 1s: a response that would take 3 s gets 504 after
 * about 1 s (0.5 to 1.5 s); the pool keeps serving. */
START_TEST(response_timeout_504)
{
    pid_t up = start_up(T->uport, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n"
                             "  response_timeout: 1s\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));
    wait_open(up, T->uport, 1, 2000);

    struct h_up_bg slow;
    ck_assert_int_eq(h_up_bg_curl(T, &slow, T->port, "/delay/3000", NULL), 0);
    ck_assert_msg(h_up_bg_wait(T, &slow, 5000) == 0, "the slow request hangs");
    ck_assert_msg(slow.status == 504, "GET /delay/3000: HTTP %d after %.3f s, expected 504",
                  slow.status, slow.secs);
    ck_assert_msg(slow.secs >= 0.5 && slow.secs <= 1.5,
                  "504 after %.3f s, expected about 1 s (response_timeout)", slow.secs);
    wait_access_lines(1);
    ck_assert_msg(count_entries("/delay/3000", 504, "upstream timeout") == 1,
                  "no access log line with 504 and reason \"upstream timeout\": %s",
                  h_file_tail(T, T->access_log, 1500));

    struct h_http r;
    ck_assert_msg(get_status("/delay/100", &r) == 200, "after the timeout: HTTP %d %s", r.status,
                  r.err);
}
END_TEST

/* ------------------------------------------------------------ TLS to the upstream */

/* Makes DIR/other-ca.* and DIR/other-lb.{crt,key}: a certificate for
 * lb.test signed by a CA corral does not trust. */
static void make_other_ca(void)
{
    char *ext = h_path(T, "other-lb.ext");
    ck_assert_int_eq(h_write_file(ext, "subjectAltName=DNS:lb.test,DNS:localhost,IP:127.0.0.1\n"
                                       "extendedKeyUsage=serverAuth\n"),
                     0);
    char *const steps[][24] = {
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         h_path(T, "other-ca.key"), "-out", h_path(T, "other-ca.crt"), "-days", "2", "-subj",
         "/CN=another test CA", NULL},
        {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", h_path(T, "other-lb.key"),
         "-out", h_path(T, "other-lb.csr"), "-subj", "/CN=lb.test", NULL},
        {"openssl", "x509", "-req", "-in", h_path(T, "other-lb.csr"), "-CA",
         h_path(T, "other-ca.crt"), "-CAkey", h_path(T, "other-ca.key"), "-CAcreateserial", "-out",
         h_path(T, "other-lb.crt"), "-days", "2", "-extfile", ext, NULL},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct h_run run;
        ck_assert_int_eq(h_run(T, steps[i], 30000, &run), 0);
        ck_assert_msg(run.exit_code == 0, "openssl step %zu failed: %s", i, run.err);
    }
}

/* Starts a testup serving other-lb.crt (client certificate required, from
 * our CA). */
static pid_t start_other_ca_up(void)
{
    make_other_ca();
    const char *args[] = {"--cert", h_path(T, "other-lb.crt"), "--key", h_path(T, "other-lb.key"),
                          NULL};
    return start_up(T->uport, true, args);
}

/* corral never sends a request to an upstream it cannot verify; clients
 * get 502 and the error log says why. */
static void check_refused_upstream(pid_t up, const char *why)
{
    const char *line[] = {"certificate verification failed", why, NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, line, 3000),
                  "no \"certificate verification failed: %s\" in the error log: %s", why,
                  h_file_tail(T, T->error_log, 1500));
    for (int i = 0; i < 3; i++) {
        struct h_http r;
        ck_assert_msg(get_status(h_strf(T, "/refused-%d", i), &r) == 502,
                      "request to an unverifiable upstream: HTTP %d, expected 502 | %s", r.status,
                      r.body);
    }
    struct h_up_stats s = stats(up, T->uport);
    ck_assert_msg(s.accepted >= 1, "corral never tried the upstream: %s", fmt_stats(&s));
    ck_assert_msg(s.requests == 0 && s.h2 == 0 && s.h1 == 0,
                  "an unverified upstream got traffic: %s", fmt_stats(&s));
}

START_TEST(upstream_cert_other_ca_refused)
{
    pid_t up = start_other_ca_up();
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));
    check_refused_upstream(up, "unable to get local issuer certificate");
}
END_TEST

/* The control of the test above: the same upstream with insecure: true is
 * used, so what refused it was the verification. */
START_TEST(upstream_cert_insecure_true_accepted)
{
    pid_t up = start_other_ca_up();
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n"
                             "  tls: {insecure: true, cert: @CERTS@/client.crt, "
                             "key: @CERTS@/client.key, sni: lb.test}\n",
                             T->uport);
    start_corral(config(1, ups));
    wait_open(up, T->uport, 1, 2000);
    struct h_http r;
    ck_assert_msg(get_status("/insecure", &r) == 200, "insecure: true: HTTP %d %s", r.status,
                  r.body);
    ck_assert_int_eq(stats(up, T->uport).requests, 1);
}
END_TEST

START_TEST(upstream_cert_name_mismatch_refused)
{
    pid_t up = start_up(T->uport, true, NULL); /* lb.test, localhost, 127.0.0.1 */
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n"
                             "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                             "key: @CERTS@/client.key, sni: other.test}\n",
                             T->uport);
    start_corral(config(1, ups));
    check_refused_upstream(up, "mismatch");
}
END_TEST

/* Verification cannot be turned off by leaving ca out: without
 * insecure: true such a config is refused by -t and does not start. */
START_TEST(upstream_without_ca_needs_insecure)
{
    static const char *const variants[] = {
        "  tls: {cert: @CERTS@/client.crt, key: @CERTS@/client.key, sni: lb.test}\n",
        "  tls: {insecure: false, cert: @CERTS@/client.crt, key: @CERTS@/client.key, "
        "sni: lb.test}\n",
    };
    for (size_t i = 0; i < 2; i++) {
        const char *ups =
            h_strf(T, "  addresses: [127.0.0.1:%d]\n  protocol: h2\n%s", T->uport, variants[i]);
        char *cfg = h_config_write(T, "noca.yaml", config(1, ups));
        ck_assert_ptr_nonnull(cfg);
        char *argv[] = {(char *)T->bin, "-t", "-c", cfg, NULL};
        struct h_run run;
        ck_assert_int_eq(h_run(T, argv, 10000, &run), 0);
        ck_assert_msg(run.exit_code == 1, "variant %zu: corral -t exit %d, expected 1: %s%s", i,
                      run.exit_code, run.out, run.err);
        const char *all = h_strf(T, "%s%s", run.out, run.err);
        ck_assert_msg(strstr(all, "missing required key 'ca'") != NULL &&
                          strstr(all, "insecure: true") != NULL,
                      "variant %zu: -t does not say that ca is required unless insecure: true: "
                      "%s",
                      i, all);
        ck_assert_msg(strstr(all, h_strf(T, "%s:13:", cfg)) != NULL,
                      "variant %zu: the message does not point at the tls mapping (line 13): %s", i,
                      all);

        /* and it does not start */
        char *sargv[] = {(char *)T->bin, "-c", cfg, NULL};
        ck_assert_int_eq(h_run(T, sargv, 10000, &run), 0);
        ck_assert_msg(!run.timed_out && run.exit_code != 0,
                      "variant %zu: corral started without ca (exit %d, timed out %d)", i,
                      run.exit_code, run.timed_out);
        ck_assert(!h_port_open(T->port));
    }
}
END_TEST

/* An upstream that requires a client certificate accepts corral's; the
 * control: without cert/key in the config, it refuses corral and no
 * request reaches it. */
START_TEST(client_certificate_presented)
{
    pid_t up = start_up(T->uport, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n" TLS_OK,
                             T->uport);
    pid_t m = start_corral(config(1, ups));
    wait_open(up, T->uport, 1, 2000);
    struct h_http r;
    ck_assert_msg(get_status("/with-cert", &r) == 200, "with the client certificate: HTTP %d %s",
                  r.status, r.body);
    ck_assert_int_eq(stats(up, T->uport).requests, 1);

    /* the control */
    h_signal(m, SIGKILL);
    ck_assert_int_eq(h_wait_exit(m, 3000, NULL), 0);
    ck_assert(h_wait_port(T->port, false, 3000));
    h_up_kill(T, up);
    up = start_up(T->uport, true, NULL);
    ups = h_strf(T,
                 "  addresses: [127.0.0.1:%d]\n"
                 "  protocol: h2\n"
                 "  connections: 1\n"
                 "  tls: {ca: @CERTS@/ca.crt, sni: lb.test}\n",
                 T->uport);
    start_corral(config(1, ups));
    h_sleep_ms(500);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(get_status("/without-cert", &r) == 502,
                      "without a client certificate: HTTP %d, expected 502", r.status);
    struct h_up_stats s = stats(up, T->uport);
    ck_assert_msg(s.accepted >= 1 && s.requests == 0,
                  "without a client certificate: %s (expected attempts, no request)",
                  fmt_stats(&s));
}
END_TEST

/* ------------------------------------------------------------ streams and pipelining */

/* upstream.max_streams 4, below the 8 streams testup announces (so that
 * testup would take more: its own libnghttp2 refuses streams beyond ITS
 * limit before it counts them, which makes a bound at the server's limit
 * one that cannot fail); one worker with one connection gets 32 requests
 * at once: never more than 4 upstream, the rest wait in corral, and all 32
 * succeed. */
START_TEST(h2_max_streams_cap_kept)
{
    const char *args[] = {"--max-streams", "8", NULL};
    pid_t up = start_up(T->uport, true, args);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n"
                             "  max_streams: 4\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));
    struct h_up_stats s = wait_open(up, T->uport, 1, 2000);
    /* steady state: the SETTINGS exchange is over (h2_burst_before_settings
     * covers the requests that come before it) */
    for (long long end = h_now_ms() + 2000; s.h2 < 1 && h_now_ms() < end; s = stats(up, T->uport))
        h_sleep_ms(20);
    h_sleep_ms(200);

    const char *largs[] = {"-c", "4", "-m", "8", "-n", "32", NULL};
    struct h_adm_load l = load_ok("/delay/300", largs, 20000, 32);
    s = stats(up, T->uport);
    ck_assert_msg(s.max_inflight >= 1 && s.max_inflight <= 4 && s.requests == 32,
                  "testup (8 streams) behind max_streams 4: %s", fmt_stats(&s));
    ck_assert_msg(s.accepted == 1, "more connections than configured: %s", fmt_stats(&s));
    /* 32 x 300 ms through 4 streams: at least 8 rounds */
    ck_assert_msg(l.ran_ms >= 2300, "32 requests of 300 ms took %lld ms through 4 streams",
                  l.ran_ms);
}
END_TEST

/* HTTP/1.1 upstream: pipeline 1 means one request per connection at a
 * time (2 connections: at most 2 at testup), and keep-alive reuses them. */
START_TEST(http11_pipeline_1_keepalive)
{
    pid_t up = start_up(T->uport, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: http/1.1\n"
                             "  connections: 2\n"
                             "  pipeline: 1\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));
    wait_open(up, T->uport, 2, 2000);

    const char *largs[] = {"-c", "4", "-m", "4", "-n", "16", NULL};
    load_ok("/delay/200", largs, 20000, 16);
    struct h_up_stats s = stats(up, T->uport);
    ck_assert_msg(s.max_inflight >= 1 && s.max_inflight <= 2 && s.requests == 16,
                  "pipeline 1 x 2 connections: %s (expected max_inflight <= 2)", fmt_stats(&s));
    ck_assert_msg(s.accepted == 2 && s.open == 2 && s.h1 == 2,
                  "keep-alive: the connections were not reused: %s", fmt_stats(&s));
}
END_TEST

/* A saturated pool: HTTP/1.1 clients, one HTTP/2 connection with 4
 * streams, 640 tiny requests from 64 connections. Every request waits for a
 * stream and gets 200: a stream that has just ended must not let admission
 * dispatch a request before the connection really has room for it. */
START_TEST(h2_saturated_pool_http11_clients)
{
    const char *args[] = {"--max-streams", "4", NULL};
    pid_t up = start_up(T->uport, true, args);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));
    struct h_up_stats s = wait_open(up, T->uport, 1, 2000);
    for (long long end = h_now_ms() + 2000; s.h2 < 1 && h_now_ms() < end; s = stats(up, T->uport))
        h_sleep_ms(20);
    h_sleep_ms(200);

    const char *largs[] = {"--h1", "-c", "64", "-n", "640", NULL};
    struct h_adm_load l;
    int rc = h_adm_h2load(T, &l, T->port, "/", largs, 30000);
    ck_assert_msg(rc == 0, "h2load did not finish: %s", h_file_tail(T, l.out_path, 1000));
    s = stats(up, T->uport);
    ck_assert_msg(l.n2xx == 640,
                  "saturated pool: %ld of 640 got 2xx (%ld 503, %ld other); testup saw %ld "
                  "requests | access log: %s",
                  l.n2xx, l.n503, l.nother, s.requests, h_file_tail(T, T->access_log, 900));
    /* no bound on max_inflight: testup's libnghttp2 refuses a stream over
     * its 4 before testup counts it. What fails without the feature is the
     * 640 2xx above, and a request counted twice. */
    ck_assert_msg(s.requests == 640 && s.accepted == 1, "testup (max 4 streams): %s",
                  fmt_stats(&s));
}
END_TEST

/* The burst after a connection comes up: requests queued while the
 * handshake is pending are dispatched when it completes, before the
 * server's SETTINGS (max 4 streams) can have arrived. Streams the server
 * refuses were not processed: they must wait for room, not fail. All 32
 * succeed, never more than 4 at testup. (testup is stopped with SIGSTOP so
 * that corral's handshake waits.) */
START_TEST(h2_burst_before_settings)
{
    const char *args[] = {"--max-streams", "4", NULL};
    pid_t up = start_up(T->uport, true, args);
    ck_assert_int_eq(h_signal(up, SIGSTOP), 0);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n"
                             "  connect_timeout: 10s\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));

    struct h_adm_load l;
    const char *largs[] = {"-c", "4", "-m", "8", "-n", "32", NULL};
    ck_assert_int_eq(h_adm_h2load_start(T, &l, T->port, "/delay/300", largs), 0);
    h_sleep_ms(800); /* the 32 requests wait in corral for the handshake */
    ck_assert_int_eq(h_signal(up, SIGCONT), 0);
    int rc = h_adm_h2load_wait(T, &l, 20000);
    ck_assert_msg(rc == 0, "h2load did not finish: %s", h_file_tail(T, l.out_path, 1000));
    struct h_up_stats s = stats(up, T->uport);
    ck_assert_msg(l.n2xx == 32,
                  "32 requests dispatched when the connection came up: %ld 2xx, %ld 503, "
                  "%ld other (testup: %s) | access log: %s",
                  l.n2xx, l.n503, l.nother, fmt_stats(&s), h_file_tail(T, T->access_log, 1200));
    /* refused streams are not counted by testup (its libnghttp2 refuses
     * them first), so no bound on max_inflight: 32 2xx and 32 requests,
     * none twice */
    ck_assert_msg(s.requests == 32, "testup (max 4 streams): %s", fmt_stats(&s));
}
END_TEST

/* An HTTP/1.1 upstream that ends a keep-alive connection after a few
 * requests ("Connection: close" on the third answer, as nginx does after
 * keepalive_requests): every request succeeds, corral reconnects, its
 * worker survives. The upstream is a small Python TLS server. */
static const char CLOSING_UPSTREAM[] =
    "import socket, ssl, sys, threading\n"
    "port, certs = int(sys.argv[1]), sys.argv[2]\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(certs + '/lb.crt', certs + '/lb.key')\n"
    "ctx.set_alpn_protocols(['http/1.1'])\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', port))\n"
    "s.listen(64)\n"
    "print('listening', flush=True)\n"
    "def serve(c):\n"
    "    try:\n"
    "        c = ctx.wrap_socket(c, server_side=True)\n"
    "        buf = b''\n"
    "        for i in range(3):\n"
    "            while b'\\r\\n\\r\\n' not in buf:\n"
    "                d = c.recv(65536)\n"
    "                if not d:\n"
    "                    return\n"
    "                buf += d\n"
    "            buf = buf[buf.index(b'\\r\\n\\r\\n') + 4:]\n"
    "            last = i == 2\n"
    "            body = b'{\"ok\":true,\"n\":%d}' % i\n"
    "            c.sendall(b'HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\nconnection: "
    "%s\\r\\n\\r\\n'\n"
    "                      % (len(body), b'close' if last else b'keep-alive') + body)\n"
    "        c.close()\n"
    "    except Exception as e:\n"
    "        print('error', e, flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    print('accepted', flush=True)\n"
    "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";

START_TEST(http11_upstream_closes_connections)
{
    char *script = h_path(T, "closing-upstream.py");
    ck_assert_int_eq(h_write_file(script, CLOSING_UPSTREAM), 0);
    char *log = h_path(T, "closing-upstream.log");
    char *argv[] = {"python3", script, h_strf(T, "%d", T->uport), T->certs, NULL};
    ck_assert(h_spawn(T, argv, log, log) > 0);
    const char *listening[] = {"listening", NULL};
    ck_assert_msg(h_wait_file_line(log, listening, H_START_MS),
                  "the Python upstream did not "
                  "start: %s",
                  h_file_tail(T, log, 1000));
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: http/1.1\n"
                             "  connections: 1\n"
                             "  tls: {ca: @CERTS@/ca.crt, sni: lb.test}\n",
                             T->uport);
    pid_t m = start_corral(config(1, ups));
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_wait_children(m, 1, 5000, w), 1);

    for (int i = 0; i < 12; i++) {
        struct h_http r;
        ck_assert_msg(get_status(h_strf(T, "/closing-%d", i), &r) == 200,
                      "request %d to an upstream that closes every third answer: HTTP %d "
                      "(curl %d %s) | error log: %s",
                      i, r.status, r.exit_code, r.err, h_file_tail(T, T->error_log, 1500));
    }
    ck_assert_msg(!h_file_contains(T->error_log, "killed by signal"), "a worker crashed: %s",
                  h_file_tail(T, T->error_log, 1500));
    pid_t now[H_MAX_PIDS];
    ck_assert_msg(h_children(m, now, H_MAX_PIDS) == 1 && now[0] == w[0],
                  "the worker was replaced: it died");
    char *acc = h_read_file(log, NULL);
    int accepted = 0;
    for (const char *p = acc; p != NULL && (p = strstr(p, "accepted")) != NULL; p++)
        accepted++;
    free(acc);
    ck_assert_msg(accepted >= 4,
                  "12 requests over %d connection(s): the upstream's "
                  "Connection: close was not followed",
                  accepted);
}
END_TEST

/* The control of the test above: pipeline 4 on one connection does put
 * several requests in flight on it (testup parses pipelined requests
 * ahead), never more than 4. */
START_TEST(http11_pipeline_4)
{
    pid_t up = start_up(T->uport, true, NULL);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: http/1.1\n"
                             "  connections: 1\n"
                             "  pipeline: 4\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));
    wait_open(up, T->uport, 1, 2000);

    const char *largs[] = {"-c", "4", "-m", "4", "-n", "16", NULL};
    load_ok("/delay/200", largs, 20000, 16);
    struct h_up_stats s = stats(up, T->uport);
    ck_assert_msg(s.max_inflight >= 2 && s.max_inflight <= 4 && s.requests == 16,
                  "pipeline 4 x 1 connection: %s (expected 2..4 in flight)", fmt_stats(&s));
    ck_assert_msg(s.accepted == 1, "keep-alive: %s", fmt_stats(&s));
}
END_TEST

/* ------------------------------------------------------------ hostile upstreams */

/* A load balancer that misbehaves, as a small Python TLS server (no client
 * certificate asked): every connection is logged as "accepted SECONDS"
 * (monotonic clock), then, by mode:
 *   close  - ALPN http/1.1; a clean TLS close (close_notify) right after
 *            the handshake, as a balancer that refuses every connection;
 *   goaway - ALPN h2; its SETTINGS and a GOAWAY (NO_ERROR) at once, then
 *            it waits for the client to close;
 *   early  - ALPN http/1.1; a GET gets 200; a POST gets 413 as soon as its
 *            head is read, before its body, which is then read and
 *            discarded (as nginx does) unless the client closes first:
 *            "closed mid-body" is logged then. */
static const char HOSTILE_UPSTREAM[] =
    "import re, socket, ssl, sys, threading, time\n"
    "port, certs, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(certs + '/lb.crt', certs + '/lb.key')\n"
    "ctx.set_alpn_protocols(['h2' if mode == 'goaway' else 'http/1.1'])\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', port))\n"
    "s.listen(256)\n"
    "print('listening', flush=True)\n"
    "def drain(c):\n"
    "    while c.recv(65536):\n"
    "        pass\n"
    "def early(c):\n"
    "    buf = b''\n"
    "    while True:\n"
    "        while b'\\r\\n\\r\\n' not in buf:\n"
    "            d = c.recv(65536)\n"
    "            if not d:\n"
    "                return\n"
    "            buf += d\n"
    "        head, buf = buf.split(b'\\r\\n\\r\\n', 1)\n"
    "        if head.startswith(b'POST'):\n"
    "            print('early', flush=True)\n"
    "            b = b'{\"too\":\"large\"}'\n"
    "            c.sendall(b'HTTP/1.1 413 Payload Too Large\\r\\ncontent-length: %d\\r\\n\\r\\n'\n"
    "                      % len(b) + b)\n"
    "            n = int(re.search(rb'(?i)content-length: *([0-9]+)', head).group(1))\n"
    "            left, buf = n - len(buf), buf[n:]\n"
    "            while left > 0:\n"
    "                d = c.recv(min(left, 65536))\n"
    "                if not d:\n"
    "                    print('closed mid-body', flush=True)\n"
    "                    return\n"
    "                left -= len(d)\n"
    "            continue\n"
    "        b = b'{\"ok\":true}'\n"
    "        c.sendall(b'HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\n\\r\\n' % len(b) + b)\n"
    "def serve(c):\n"
    "    try:\n"
    "        c.settimeout(10)\n"
    "        c = ctx.wrap_socket(c, server_side=True)\n"
    "        if mode == 'close':\n"
    "            c.unwrap()\n"
    "        elif mode == 'goaway':\n"
    "            c.sendall(b'\\0\\0\\0\\4\\0\\0\\0\\0\\0' + b'\\0\\0\\x08\\x07\\0\\0\\0\\0\\0' + "
    "bytes(8))\n"
    "            drain(c)\n"
    "        else:\n"
    "            early(c)\n"
    "    except Exception as e:\n"
    "        pass\n"
    "    finally:\n"
    "        c.close()\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    print('accepted %.3f' % time.monotonic(), flush=True)\n"
    "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";

/* Starts the hostile upstream in mode on T->uport; returns its log. */
static char *start_hostile(const char *mode)
{
    char *script = h_path(T, "hostile-upstream.py");
    ck_assert_int_eq(h_write_file(script, HOSTILE_UPSTREAM), 0);
    char *log = h_path(T, "hostile-upstream.log");
    char *argv[] = {"python3", script, h_strf(T, "%d", T->uport), T->certs, (char *)mode, NULL};
    ck_assert(h_spawn(T, argv, log, log) > 0);
    const char *listening[] = {"listening", NULL};
    ck_assert_msg(h_wait_file_line(log, listening, H_START_MS),
                  "the Python upstream did not start: %s", h_file_tail(T, log, 1000));
    return log;
}

/* The times (seconds, monotonic) of the connections the hostile upstream
 * accepted, at most max; returns how many there were in all. */
static int accepts(const char *log, double *at, int max)
{
    char *text = h_read_file(log, NULL);
    int n = 0;
    for (const char *p = text; p != NULL && (p = strstr(p, "accepted ")) != NULL; p++) {
        if (n < max)
            at[n] = strtod(p + 9, NULL);
        n++;
    }
    free(text);
    return n;
}

/* One worker, one upstream connection of protocol, no client certificate,
 * and the given extra upstream lines. */
static pid_t start_corral_one_conn(const char *protocol, const char *extra)
{
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: %s\n"
                             "  connections: 1\n"
                             "%s"
                             "  tls: {ca: @CERTS@/ca.crt, sni: lb.test}\n",
                             T->uport, protocol, extra);
    return start_corral(config(1, ups));
}

/* A load balancer that closes every new connection at once, cleanly: the
 * pool backs off (100 ms doubling, +-25%) instead of reconnecting in a
 * tight loop. Over 3 s: about 6 connections, not thousands; the gaps grow;
 * a client meanwhile gets a fast, clear 502. */
START_TEST(upstream_closing_every_connection_backs_off)
{
    char *log = start_hostile("close");
    pid_t m = start_corral_one_conn("http/1.1", "");
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_wait_children(m, 1, 5000, w), 1);
    const char *first[] = {"accepted", NULL};
    ck_assert_msg(h_wait_file_line(log, first, 3000), "corral never connected: %s",
                  h_file_tail(T, T->error_log, 1000));
    h_sleep_ms(3000); /* the window being measured */
    double at[64];
    int n = accepts(log, at, 64);
    ck_assert_msg(n >= 3 && n <= 12,
                  "%d connections in 3 s to an upstream that closes each one at once "
                  "(expected 3..12: back-off from 100 ms, doubling) | error log: %s",
                  n, h_file_tail(T, T->error_log, 1500));
    for (int i = 3; i < n && i < 64; i++)
        ck_assert_msg(at[i] - at[i - 1] >= 0.25,
                      "connection %d came %.0f ms after the one before: no back-off", i,
                      (at[i] - at[i - 1]) * 1000);

    struct h_http r;
    long long t0 = h_now_ms();
    ck_assert_msg(get_status("/meanwhile", &r) == 502,
                  "a request while the upstream refuses every connection: HTTP %d (curl %d %s)",
                  r.status, r.exit_code, r.err);
    ck_assert_msg(h_now_ms() - t0 < 3000, "the 502 took %lld ms", h_now_ms() - t0);
    wait_access_lines(1);
    ck_assert_msg(count_entries("/meanwhile", 502, "upstream unavailable") +
                          count_entries("/meanwhile", 502, "upstream connection lost") ==
                      1,
                  "the access log does not say why: %s", h_file_tail(T, T->access_log, 800));
    pid_t now[H_MAX_PIDS];
    ck_assert_msg(h_children(m, now, H_MAX_PIDS) == 1 && now[0] == w[0], "the worker died");
}
END_TEST

/* An HTTP/2 balancer that GOAWAYs every new connection: the same back-off,
 * up to reconnect_max. With 50 ms .. 400 ms, after the first few
 * connections they come one per 400 ms (+-25%): never closer, and never
 * the 1.6 s and more that doubling without a ceiling would give. */
START_TEST(upstream_goaway_every_connection_capped_backoff)
{
    char *log = start_hostile("goaway");
    start_corral_one_conn("h2", "  reconnect_min: 50ms\n  reconnect_max: 400ms\n");
    const char *first[] = {"accepted", NULL};
    ck_assert_msg(h_wait_file_line(log, first, 3000), "corral never connected: %s",
                  h_file_tail(T, T->error_log, 1000));
    h_sleep_ms(4000);
    double at[64];
    int n = accepts(log, at, 64);
    ck_assert_msg(n >= 6 && n <= 20,
                  "%d connections in 4 s to an upstream that GOAWAYs each one at once "
                  "(expected 6..20: 50 ms doubling up to 400 ms) | error log: %s",
                  n, h_file_tail(T, T->error_log, 1500));
    for (int i = 6; i < n && i < 64; i++) {
        double gap = at[i] - at[i - 1];
        ck_assert_msg(gap >= 0.25 && gap <= 1.2,
                      "connection %d came %.0f ms after the one before (expected about 400 ms, "
                      "reconnect_max)",
                      i, gap * 1000);
    }
}
END_TEST

/* An HTTP/1.1 upstream answers a large POST (413) before corral has sent
 * its body: the client gets the 413, every time, the connection (left in the middle of
 * the body) is replaced, and the next requests are served on a new one;
 * the worker lives (on the old code it crashed: SIGSEGV). Should corral
 * have sent the whole body before it read the 413 (a busy machine), the
 * connection is fine and kept, and the upstream serves the next requests
 * on it. */
START_TEST(http11_upstream_answers_before_the_body)
{
    char *log = start_hostile("early");
    pid_t m = start_corral_one_conn("http/1.1", "");
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_wait_children(m, 1, 5000, w), 1);
    const char *first[] = {"accepted", NULL};
    ck_assert(h_wait_file_line(log, first, 3000));

    char *big = h_path(T, "big.bin");
    FILE *f = fopen(big, "w");
    ck_assert_ptr_nonnull(f);
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 64; i++) /* 4 MiB */
        ck_assert_uint_eq(fwrite(chunk, 1, sizeof(chunk), f), sizeof(chunk));
    ck_assert_int_eq(fclose(f), 0);

    struct h_http r;
    const char *post[] = {
        "-X", "POST", "-H", "Expect:", "--http1.1", "--data-binary", h_strf(T, "@%s", big), NULL};
    /* corral answers while the client is still sending (HTTP/1.1 cannot
     * skip the rest of a body it will not read), then closes lingering:
     * its sending side shut, it reads and drops the rest until the client
     * closes, so the client always reads the 413 (a close with the body
     * unread made the kernel reset the connection, often before curl had
     * read the answer) */
    enum { UPLOADS = 4 };
    for (int i = 0; i < UPLOADS; i++) {
        char *path = h_strf(T, "/upload-%d", i);
        h_curl_edge(T, &r, T->port, path, post);
        ck_assert_msg(r.exit_code == 0 && r.status == 413,
                      "upload %d, the early answer: HTTP %d (curl %d %s) | access log: %s | "
                      "error log: %s",
                      i, r.status, r.exit_code, r.err, h_file_tail(T, T->access_log, 600),
                      h_file_tail(T, T->error_log, 1200));
        wait_access_lines(i + 1);
        ck_assert_int_eq(count_entries(path, 413, NULL), 1);
    }
    const char *early_seen[] = {"early", NULL};
    ck_assert_msg(h_file_has_line(log, early_seen), "the upstream saw no POST");

    for (int i = 0; i < 3; i++) {
        ck_assert_msg(get_status(h_strf(T, "/after-%d", i), &r) == 200,
                      "request %d after the early answer: HTTP %d (curl %d %s) | error log: %s", i,
                      r.status, r.exit_code, r.err, h_file_tail(T, T->error_log, 1500));
    }
    const char *mid_body[] = {"closed mid-body", NULL};
    double at[8];
    ck_assert_msg(!h_file_has_line(log, mid_body) || accepts(log, at, 8) >= 2,
                  "corral closed the connection mid-body and did not replace it");
    ck_assert_msg(!h_file_contains(T->error_log, "killed by signal"), "a worker crashed: %s",
                  h_file_tail(T, T->error_log, 1500));
    pid_t now[H_MAX_PIDS];
    ck_assert_msg(h_children(m, now, H_MAX_PIDS) == 1 && now[0] == w[0], "the worker died");
}
END_TEST

/* A client that goes on with its connection after an early answer: it
 * sends a POST's head and the start of its body, reads the answer (the
 * upstream answers before the body) and, when the answer does not say
 * "connection: close", sends the rest of the body and then a GET on the
 * same connection, which must be answered. corral closes such a connection
 * after the answer (it does not read the rest of a body it will not
 * forward), so the head must say so: before, it did not when the answer's
 * head went out before its end, and the GET went into the close (a
 * connection closed by corral with a request in flight, issue 14). */
static const char EARLY_CLIENT[] =
    "import socket, ssl, sys\n"
    "port, ca = int(sys.argv[1]), sys.argv[2]\n"
    "ctx = ssl.create_default_context(cafile=ca)\n"
    "ctx.set_alpn_protocols([\"http/1.1\"])\n"
    "s = ctx.wrap_socket(socket.create_connection((\"127.0.0.1\", port), timeout=3),\n"
    "                    server_hostname=\"edge.test\")\n"
    "body = b\"x\" * 20000\n"
    "s.sendall(b\"POST /early HTTP/1.1\\r\\nHost: edge.test\\r\\nContent-Length: %d\\r\\n\\r\\n\" % len(body)\n"
    "          + body[:100])\n"
    "buf = b\"\"\n"
    "while b\"\\r\\n\\r\\n\" not in buf:\n"
    "    d = s.recv(65536)\n"
    "    if not d:\n"
    "        print(\"no answer to the POST\"); sys.exit(1)\n"
    "    buf += d\n"
    "head, _, rest = buf.partition(b\"\\r\\n\\r\\n\")\n"
    "hl = head.lower()\n"
    "status = int(head.split()[1])\n"
    "clen = int(hl.split(b\"content-length:\")[1].split(b\"\\r\\n\")[0])\n"
    "while len(rest) < clen:\n"
    "    d = s.recv(65536)\n"
    "    if not d:\n"
    "        print(\"answer cut\"); sys.exit(1)\n"
    "    rest += d\n"
    "if b\"connection: close\" in hl:\n"
    "    print(\"POST %d, connection: close\" % status); sys.exit(0)\n"
    "# a persistent connection: finish the body, then the next request on it\n"
    "try:\n"
    "    s.sendall(body[100:])\n"
    "    s.sendall(b\"GET /next HTTP/1.1\\r\\nHost: edge.test\\r\\n\\r\\n\")\n"
    "    d = s.recv(65536)\n"
    "except (OSError, ssl.SSLError) as e:\n"
    "    d = b\"\"\n"
    "    print(\"error: %s\" % e)\n"
    "print(\"POST %d kept alive; next request: %s\" % (status, d.split(b\"\\r\\n\")[0].decode() if d else \"closed by the server, no answer\"))\n"
    "sys.exit(0 if d.startswith(b\"HTTP/1.1 200\") else 1)\n";

START_TEST(http11_early_answer_says_close)
{
    start_hostile("early");
    start_corral_one_conn("http/1.1", "");
    char *script = h_path(T, "early-client.py");
    ck_assert_int_eq(h_write_file(script, EARLY_CLIENT), 0);
    for (int i = 0; i < 3; i++) {
        char *argv[] = {"python3", script, h_strf(T, "%d", T->port),
                        h_strf(T, "%s/ca.crt", T->certs), NULL};
        struct h_run run;
        ck_assert_int_eq(h_run(T, argv, 15000, &run), 0);
        ck_assert_msg(run.exit_code == 0, "try %d: %s%s | access log: %s", i, run.out, run.err,
                      h_file_tail(T, T->access_log, 600));
    }
}
END_TEST

/* A stream the upstream refuses (RST_STREAM REFUSED_STREAM: nothing was
 * processed) after part of the request body went out on it: the bytes
 * sent are no longer in corral's buffer, so a retry would carry the rest
 * of the body only - with a chunked body (no Content-Length upstream) the
 * upstream takes the truncated body for the whole one. Such a request is
 * answered 502, never retried; without a body byte sent it is retried. */
START_TEST(refused_stream_after_body_bytes_not_retried_truncated)
{
    /* /echo answers once its head is in (plus the service time): the
     * service time holds the answer back until the refusal, which comes
     * with the first DATA frame, or the 200 could go out first and make
     * the refusal a truncation */
    const char *args[] = {"--refuse-after-data", "1", "--service-time", "300", NULL};
    pid_t up = start_up(T->uport, true, args);
    const char *ups = h_strf(T,
                             "  addresses: [127.0.0.1:%d]\n"
                             "  protocol: h2\n"
                             "  connections: 1\n" TLS_OK,
                             T->uport);
    start_corral(config(1, ups));
    wait_open(up, T->uport, 1, 2000);

    char *body = h_path(T, "body.txt");
    char text[4097];
    for (int i = 0; i < 4096; i++)
        text[i] = (char)('a' + i % 26);
    text[4096] = '\0';
    ck_assert_int_eq(h_write_file(body, text), 0);
    const char *post[] = {"-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary",
                          h_strf(T, "@%s", body), NULL};
    struct h_http r;
    h_curl_edge(T, &r, T->port, "/echo", post);
    ck_assert_msg(r.status == 502 || (r.status == 200 && strcmp(r.body, text) == 0),
                  "refused after %s: POST answered %d with %zu of the 4096 body bytes echoed | "
                  "access log: %s",
                  "its first DATA frame", r.status, strlen(r.body),
                  h_file_tail(T, T->access_log, 600));
    /* the refusal is used up: the same POST goes through whole */
    h_curl_edge(T, &r, T->port, "/echo", post);
    ck_assert_msg(r.status == 200 && strcmp(r.body, text) == 0, "then: %d, %zu bytes echoed",
                  r.status, strlen(r.body));
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *upstream_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("pool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, pool_persistent_h2);
    tcase_add_test(tc, pool_persistent_http11);
    tcase_add_test(tc, pool_two_addresses);
    suite_add_tcase(s, tc);

    tc = tcase_create("failure");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, upstream_killed_and_restarted_under_load);
    tcase_add_test(tc, dead_connection_retries_get_not_post);
    tcase_add_test(tc, refused_stream_after_body_bytes_not_retried_truncated);
    tcase_add_test(tc, unreachable_upstream_fast_502);
    tcase_add_test(tc, response_timeout_504);
    suite_add_tcase(s, tc);

    tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, upstream_cert_other_ca_refused);
    tcase_add_test(tc, upstream_cert_insecure_true_accepted);
    tcase_add_test(tc, upstream_cert_name_mismatch_refused);
    tcase_add_test(tc, upstream_without_ca_needs_insecure);
    tcase_add_test(tc, client_certificate_presented);
    suite_add_tcase(s, tc);

    tc = tcase_create("streams");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, h2_max_streams_cap_kept);
    tcase_add_test(tc, http11_pipeline_1_keepalive);
    tcase_add_test(tc, http11_pipeline_4);
    tcase_add_test(tc, h2_saturated_pool_http11_clients);
    tcase_add_test(tc, h2_burst_before_settings);
    tcase_add_test(tc, http11_upstream_closes_connections);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, upstream_closing_every_connection_backs_off);
    tcase_add_test(tc, upstream_goaway_every_connection_capped_backoff);
    tcase_add_test(tc, http11_upstream_answers_before_the_body);
    tcase_add_test(tc, http11_early_answer_says_close);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(upstream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
