/* check_streaming.c - long-lived responses (server-sent events, long plain
 * answers) pass as they come and leave the request capacity.
 *
 * testup's /events/N?every=MS is the event source (text/event-stream, an
 * event at once and then every MS ms; N = 0: until the client goes;
 * &plain=1: the same bytes as text/plain). curl -N reads the streams
 * through corral into files the test watches.
 *
 *   - each event is forwarded as it arrives (a stream that never ends
 *     delivers its events), for every pair of client and upstream
 *     protocols;
 *   - with upstream.max_streams 2 and 5 event streams open, short requests
 *     still get 200: the streams moved to their tenant's streaming class;
 *   - tenants[].streaming caps that class: the streams over it stay in the
 *     request class, counted as over the cap;
 *   - a plain answer still open upstream.streaming_after after its head
 *     moves too;
 *   - a request for an event stream (accept: text/event-stream) is refused
 *     429 at admission while its tenant's streaming class is full;
 *   - a moved HTTP/2 stream keeps its place in the server's
 *     SETTINGS_MAX_CONCURRENT_STREAMS: with every connection full of
 *     streams, a short request waits, and is never put on a full one;
 *   - the upstream GOAWAYs the connection an event stream is on: a new one
 *     takes its place for the short requests, the stream goes on;
 *   - an event stream for a minute while another tenant's campaign is
 *     admitted and capped as before (testup's peak within max_streams plus
 *     the stream). */
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

/* Starts corral with one worker in front of the testup on UPORT, the admin
 * listener on PORT2, tenants by x-tenant-id (tenants_extra: the defaults
 * and the list), and upstream lines of its own (upstream_extra). Waits
 * until the upstream connections are up. */
static void start_corral(const char *protocol, int connections, const char *upstream_extra,
                         const char *tenants_extra)
{
    char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T,
               "workers: 1\n"
               "drain_timeout: 1s\n"
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
               "  connections: %d\n"
               "%s"
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: "
               "@CERTS@/client.key, sni: lb.test}\n"
               "tenants:\n"
               "  by: header\n"
               "  header: x-tenant-id\n"
               "%s",
               protocol, connections, upstream_extra, tenants_extra));
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s", h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, NULL), 1);
    long long end = h_now_ms() + 5000;
    long open = -1;
    while (h_now_ms() < end) {
        char *js = h_testup_stats(T, T->uport, false);
        open = js ? h_json_long(js, "connections_open") : -1;
        if (open > connections) /* ours and the query's own */
            break;
        h_sleep_ms(50);
    }
    ck_assert_msg(open > connections, "corral did not connect upstream (%ld open): %s", open,
                  h_file_tail(T, T->error_log, 1500));
}

/* testup (--max-streams up_streams), then corral (start_corral). */
static void start(const char *protocol, int connections, int up_streams, const char *upstream_extra,
                  const char *tenants_extra)
{
    pid_t up =
        h_testup_start(T, T->uport, "--max-streams", h_strf(T, "%d", up_streams), "--quiet", NULL);
    ck_assert_msg(up > 0, "testup did not start");
    start_corral(protocol, connections, upstream_extra, tenants_extra);
}

/* curl -N reading a stream through corral in the background: its body
 * goes to out as it comes. */
struct stream {
    pid_t pid;
    char *out, *err;
};

/* rate: curl's --limit-rate (NULL: as fast as it comes). */
static void stream_start_rate(struct stream *s, const char *path, const char *tenant, bool h2,
                              int max_s, const char *rate)
{
    static int n;
    s->out = h_path(T, h_strf(T, "stream-%d.out", n));
    s->err = h_path(T, h_strf(T, "stream-%d.err", n++));
    char *argv[] = {"curl",
                    "-sS",
                    "-N",
                    h2 ? "--http2" : "--http1.1",
                    "--max-time",
                    h_strf(T, "%d", max_s),
                    "--cacert",
                    h_strf(T, "%s/ca.crt", T->certs),
                    "--resolve",
                    h_strf(T, "edge.test:%d:127.0.0.1", T->port),
                    "-H",
                    h_strf(T, "x-tenant-id: %s", tenant),
                    h_strf(T, "https://edge.test:%d%s", T->port, path),
                    rate ? "--limit-rate" : NULL,
                    (char *)rate,
                    NULL};
    s->pid = h_spawn(T, argv, s->out, s->err);
    ck_assert_msg(s->pid > 0, "cannot start curl");
}

static void stream_start(struct stream *s, const char *path, const char *tenant, bool h2, int max_s)
{
    stream_start_rate(s, path, tenant, h2, max_s, NULL);
}

/* Waits until the stream's client has received the event "data: event k". */
static bool stream_wait(struct stream *s, int k, int timeout_ms)
{
    const char *needle[] = {h_strf(T, "data: event %d", k), NULL};
    return h_wait_file_line(s->out, needle, timeout_ms);
}

/* The number after "key": in tenant's object of /stats' "tenants". */
static long tenant_stat(const char *js, const char *tenant, const char *key)
{
    const char *t = js ? strstr(js, "\"tenants\":{") : NULL;
    const char *at = t ? strstr(t, h_strf(T, "\"%s\":{", tenant)) : NULL;
    return at ? h_json_long(at, key) : -1;
}

/* Polls tenant_stat until it equals want (at most timeout_ms); returns the
 * last value. */
static long tenant_stat_wait(const char *tenant, const char *key, long want, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    long v;
    for (;;) {
        v = tenant_stat(h_admin_stats(T, T->port2), tenant, key);
        if (v == want || h_now_ms() >= end)
            return v;
        h_sleep_ms(20);
    }
}

static const char *upstream_protocol(int i)
{
    return i % 2 == 0 ? "h2" : "http/1.1";
}

/* Events are forwarded as they arrive: a stream that never ends (N = 0)
 * delivers its first three events, 300 ms apart, while it goes on. _i:
 * upstream h2 / http/1.1, client HTTP/2 for _i < 2, else HTTP/1.1. */
START_TEST(events_pass_as_they_come)
{
    start(upstream_protocol(_i), 2, 100, "", "  list: [{name: S}, {name: C}]\n");
    struct stream s;
    stream_start(&s, "/events/0?every=300", "S", _i < 2, 20);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(stream_wait(&s, k, 8000), "event %d did not come through: %s | %s", k,
                      h_file_tail(T, s.out, 400), h_file_tail(T, s.err, 400));
    /* the ordering barrier: the stream never ends, so these came as they went */
    ck_assert_msg(h_pid_alive(s.pid), "the stream ended: %s", h_file_tail(T, s.err, 400));
    char *js = h_testup_stats(T, T->uport, false);
    ck_assert_msg(js && h_json_long(js, "inflight") >= 1, "testup has no stream open: %s",
                  js ? js : "(no stats)");
    /* the client goes: one access-log line says it was a stream, and its
     * duration is the stream's (three events 300 ms apart at least) */
    h_signal(s.pid, SIGKILL);
    const char *needles[] = {"/events/0", "\"streaming\":\"moved\"", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, needles, 5000),
                  "no streaming access-log line: %s", h_file_tail(T, T->access_log, 800));
    struct h_adm_entry *e = NULL;
    int n = h_adm_access(T, &e);
    ck_assert_int_ge(n, 1);
    ck_assert_msg(e[n - 1].total_ms >= 600, "the stream's line says %.1f ms", e[n - 1].total_ms);
}
END_TEST

/* upstream.max_streams 2 and 5 event streams of tenant S open: C's short
 * requests still get 200, and S's streaming class counts 5. */
START_TEST(streams_leave_the_request_capacity)
{
    const char *protocol = upstream_protocol(_i);
    /* HTTP/1.1: a connection carries one exchange, so 5 streams take 5 */
    start(protocol, _i % 2 == 0 ? 1 : 8, 100, "  max_streams: 2\n",
          "  defaults: {max_wait: 2s}\n"
          "  list: [{name: S}, {name: C}]\n");
    struct stream s[5];
    for (int i = 0; i < 5; i++)
        stream_start(&s[i], "/events/0?every=500", "S", true, 30);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(stream_wait(&s[i], 0, 8000), "stream %d got no event: %s | %s", i,
                      h_file_tail(T, s[i].err, 400), h_file_tail(T, T->error_log, 800));
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_open", 5, 3000), 5);
    const char *paths[8] = {"/", "/", "/", "/", "/", "/", "/", "/"};
    const char *hdrs[8] = {"x-tenant-id: C", "x-tenant-id: C", "x-tenant-id: C", "x-tenant-id: C",
                           "x-tenant-id: C", "x-tenant-id: C", "x-tenant-id: C", "x-tenant-id: C"};
    const char *opts[] = {"max-time = 5", NULL};
    struct h_adm_xfer x[8];
    h_adm_curl_seq(T, T->port, 8, paths, hdrs, opts, x);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(x[i].status == 200,
                      "%s upstream: short request %d got %d with 5 streams open", protocol, i,
                      x[i].status);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(h_pid_alive(s[i].pid), "stream %d ended: %s", i,
                      h_file_tail(T, s[i].err, 400));
    char *js = h_admin_stats(T, T->port2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_moved"), 5);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_over_cap"), 0);
}
END_TEST

/* tenants[].streaming 2: of 4 event streams, 2 move and 2 stay in the
 * request class (max_streams 2), over the cap: a short request of another
 * tenant then finds no capacity and is refused. */
START_TEST(streaming_cap_per_tenant)
{
    start("h2", 1, 100, "  max_streams: 2\n",
          "  defaults: {max_wait: 1s}\n"
          "  list: [{name: S, streaming: 2}, {name: C}]\n");
    struct stream s[4];
    for (int i = 0; i < 4; i++)
        stream_start(&s[i], "/events/0?every=500", "S", true, 30);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(stream_wait(&s[i], 0, 8000), "stream %d got no event: %s", i,
                      h_file_tail(T, s[i].err, 400));
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_over_cap", 2, 3000), 2);
    char *js = h_admin_stats(T, T->port2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_open"), 2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_moved"), 2);
    struct h_http r;
    const char *args[] = {"-H", "x-tenant-id: C", NULL};
    h_curl_edge(T, &r, T->port, "/", args);
    ck_assert_msg(r.status == 503, "the request class is full (2 streams over the cap), got %d",
                  r.status);
}
END_TEST

/* A plain answer still open upstream.streaming_after (1 s) after its head
 * leaves the request capacity: with max_streams 1, a short request waits
 * for that, and is answered. */
START_TEST(timed_move_after_streaming_after)
{
    const char *protocol = upstream_protocol(_i);
    start(protocol, _i % 2 == 0 ? 1 : 3, 100, "  max_streams: 1\n  streaming_after: 1s\n",
          "  defaults: {max_wait: 4s}\n"
          "  list: [{name: S}, {name: C}]\n");
    struct stream s;
    stream_start(&s, "/events/0?every=200&plain=1", "S", true, 30);
    ck_assert_msg(stream_wait(&s, 0, 8000), "the plain stream got nothing: %s",
                  h_file_tail(T, s.err, 400));
    ck_assert_int_eq(tenant_stat(h_admin_stats(T, T->port2), "S", "streaming_moved"), 0);
    struct h_http r;
    const char *args[] = {"-H", "x-tenant-id: C", NULL};
    h_curl_edge(T, &r, T->port, "/", args);
    ck_assert_msg(r.status == 200, "%s upstream: short request got %d behind a long plain answer",
                  protocol, r.status);
    ck_assert_int_eq(tenant_stat(h_admin_stats(T, T->port2), "S", "streaming_moved"), 1);
    ck_assert_msg(h_pid_alive(s.pid), "the plain stream ended: %s", h_file_tail(T, s.err, 400));
}
END_TEST

/* An HTTP/2 upstream allowing 3 streams per connection (testup
 * --max-streams 3), 2 connections: 6 moved event streams fill both. They
 * left the request capacity, but not the server's stream limit: a short
 * request waits for a place (here past its max_wait: 503), it is not put
 * on a full connection (a refused stream, a 502). When a stream ends, the
 * next short request goes. */
START_TEST(moved_streams_keep_the_server_stream_limit)
{
    start("h2", 2, 3, "", "  defaults: {max_wait: 1s}\n  list: [{name: S}, {name: C}]\n");
    struct stream s[6];
    for (int i = 0; i < 6; i++)
        stream_start(&s[i], "/events/0?every=500", "S", true, 30);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(stream_wait(&s[i], 0, 8000), "stream %d got no event: %s | %s", i,
                      h_file_tail(T, s[i].err, 400), h_file_tail(T, T->error_log, 800));
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_open", 6, 3000), 6);
    struct h_http r;
    const char *args[] = {"-H", "x-tenant-id: C", NULL};
    h_curl_edge(T, &r, T->port, "/", args);
    ck_assert_msg(r.status == 503, "both connections are full of streams: want 503, got %d (%s)",
                  r.status, r.body ? r.body : "");
    h_signal(s[0].pid, SIGKILL);
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_open", 5, 3000), 5);
    h_curl_edge(T, &r, T->port, "/", args);
    ck_assert_msg(r.status == 200, "a stream ended: want 200, got %d (%s)", r.status,
                  r.body ? r.body : "");
    char *js = h_testup_stats(T, T->uport, false);
    ck_assert_msg(js && h_json_long(js, "max_inflight") <= 6, "testup: %s", js ? js : "");
    ck_assert_msg(!h_file_contains(T->access_log, "\"status\":502"), "a 502: %s",
                  h_file_tail(T, T->access_log, 1500));
}
END_TEST

/* The case: curl -N on an event stream for a minute (60 events a
 * second apart) while tenant C runs a campaign of short requests, h2load
 * run after run, through upstream.max_streams 4. The campaign is admitted
 * and capped as before: testup's peak is the 4 short requests plus the
 * stream (the stream does not take one of the 4; before, it did and the
 * peak was 4), and every answer is a 200 or an admission 503. The stream
 * gets its 60 events, in order, and ends as the upstream ends it. */
#define MINUTE_S 60
#define CAP 4
START_TEST(a_minute_of_events_beside_a_campaign)
{
    pid_t up = h_testup_start(T, T->uport, "--max-streams", "100", "--service-time", "20",
                              "--quiet", NULL);
    ck_assert_msg(up > 0, "testup did not start");
    (void)up;
    start_corral("h2", 1, "  max_streams: 4\n",
                 "  defaults: {max_wait: 2s}\n  list: [{name: S}, {name: C}]\n");
    struct stream s;
    stream_start(&s, h_strf(T, "/events/%d?every=1000", MINUTE_S), "S", true, MINUTE_S + 20);
    ck_assert_msg(stream_wait(&s, 0, 8000), "the stream got nothing: %s",
                  h_file_tail(T, s.err, 400));
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_open", 1, 3000), 1);
    ck_assert_ptr_nonnull(h_testup_stats(T, T->uport, true)); /* max_inflight from here */
    long long t0 = h_now_ms();
    long ok = 0, shed = 0;
    for (int run = 0; run < 20 && h_now_ms() - t0 < (MINUTE_S - 8) * 1000; run++) {
        struct h_adm_load l;
        const char *args[] = {"-c", "4", "-m", "10", "-D", "5", "-H", "x-tenant-id: C", NULL};
        ck_assert_int_eq(h_adm_h2load(T, &l, T->port, "/", args, 20000), 0);
        ck_assert_msg(l.nother == 0 && l.n2xx > 0, "run %d: %ld 2xx, %ld 503, %ld other", run,
                      l.n2xx, l.n503, l.nother);
        ok += l.n2xx;
        shed += l.n503;
        ck_assert_msg(h_pid_alive(s.pid), "the stream ended during run %d: %s", run,
                      h_file_tail(T, s.err, 400));
    }
    char *js = h_testup_stats(T, T->uport, false);
    long peak = js ? h_json_long(js, "max_inflight") : -1;
    ck_assert_msg(peak == CAP + 1,
                  "testup's peak %ld: want the %d short requests max_streams allows plus the "
                  "stream",
                  peak, CAP);
    int status;
    ck_assert_msg(h_wait_exit(s.pid, 30000, &status) == 0 && WIFEXITED(status) &&
                      WEXITSTATUS(status) == 0,
                  "the stream did not end well: %s", h_file_tail(T, s.err, 400));
    for (int k = 0; k < MINUTE_S; k++)
        ck_assert_msg(stream_wait(&s, k, 0), "event %d is missing", k);
    long long took = h_now_ms() - t0;
    ck_assert_msg(took >= (MINUTE_S - 5) * 1000, "the stream took %lld ms", took);
    fprintf(stderr,
            "check_streaming minute: %d events in %lld ms beside %ld short 200s and %ld 503s; "
            "testup peak %ld (max_streams %d + the stream)\n",
            MINUTE_S, took, ok, shed, peak, CAP);
}
END_TEST

/* tenants[].streaming 1 with one event stream open: a request that asks
 * for another (accept: text/event-stream) gets 429 with Retry-After at
 * admission; one that does not ask is let through and its stream stays in
 * the request class, over the cap. */
START_TEST(event_stream_request_refused_when_class_full)
{
    start("h2", 1, 100, "",
          "  defaults: {max_wait: 1s}\n"
          "  list: [{name: S, streaming: 1}, {name: C}]\n");
    struct stream s;
    stream_start(&s, "/events/0?every=500", "S", true, 30);
    ck_assert_msg(stream_wait(&s, 0, 8000), "the stream got nothing: %s",
                  h_file_tail(T, s.err, 400));
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_open", 1, 3000), 1);
    const char *paths[] = {"/events/3?every=10", "/events/3?every=10"};
    const char *hdrs[] = {"accept: text/event-stream", "accept: */*"};
    const char *opts[] = {"max-time = 5", "header = \"x-tenant-id: S\"", NULL};
    struct h_adm_xfer x[2];
    h_adm_curl_seq(T, T->port, 2, paths, hdrs, opts, x);
    ck_assert_msg(x[0].status == 429 && x[0].retry_after == 5,
                  "accept: text/event-stream with the class full: got %d, retry-after %d",
                  x[0].status, x[0].retry_after);
    ck_assert_msg(x[1].status == 200, "without accept: got %d", x[1].status);
    char *js = h_admin_stats(T, T->port2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_refused"), 1);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_over_cap"), 1);
}
END_TEST

/* The attacker review's case: slow downloads (testup's /bytes, read by
 * curl --limit-rate 2K, well above send_min_rate) are still open
 * streaming_after (1 s) after their heads, but their bytes wait on the
 * client, not on the upstream: they are downloads, not long polls, and
 * stay in the request class. Tenant A (concurrency 2) opens 8 of them on
 * 2 connections of 3 streams each: before, each moved after 1 s and gave
 * its slot back, until the moved ones filled every server slot and
 * tenant B's one request got 503. Now A holds its 2 slots, nothing moves,
 * and B is answered. */
START_TEST(slow_downloads_stay_in_the_request_class)
{
    start("h2", 2, 3, "  max_streams: 4\n  streaming_after: 1s\n",
          "  list: [{name: A, concurrency: 2, max_wait: 6s}, {name: B, max_wait: 1s}]\n");
    struct stream s[8];
    for (int i = 0; i < 8; i++)
        stream_start_rate(&s[i], "/bytes/1000000000", "A", true, 15, "2K");
    /* the barrier: A's first two downloads passed streaming_after and were
     * kept (before: four of them moved, and A's next two took their place) */
    long long end = h_now_ms() + 6000;
    for (;;) {
        char *js = h_admin_stats(T, T->port2);
        if (tenant_stat(js, "A", "streaming_client_bound") >= 2 ||
            tenant_stat(js, "A", "streaming_moved") >= 4 || h_now_ms() >= end)
            break;
        h_sleep_ms(50);
    }
    struct h_http r;
    const char *args[] = {"-H", "x-tenant-id: B", NULL};
    h_curl_edge(T, &r, T->port, "/", args);
    char *js = h_admin_stats(T, T->port2);
    char *up = h_testup_stats(T, T->uport, false);
    ck_assert_msg(r.status == 200, "B got %d beside A's slow downloads (A moved %ld): %s",
                  r.status, tenant_stat(js, "A", "streaming_moved"), r.body ? r.body : "");
    ck_assert_int_eq(tenant_stat(js, "A", "streaming_moved"), 0);
    ck_assert_int_ge(tenant_stat(js, "A", "streaming_client_bound"), 2);
    ck_assert_msg(up && h_json_long(up, "max_inflight") <= 4, "testup: %s", up ? up : "");
}
END_TEST

/* With upstream.max_streams set, the streaming class only takes the
 * server's room beyond it: testup allows 3 streams on each of 2
 * connections (6), max_streams 4, so 2 event streams move; tenant S's
 * next two stay in the request class (over the cap, its concurrency 2),
 * and tenant C's request still finds room. Before, all four moved, and
 * two more would have filled the server. */
START_TEST(streams_keep_the_request_capacity)
{
    start("h2", 2, 3, "  max_streams: 4\n",
          "  list: [{name: S, concurrency: 2, max_wait: 1s}, {name: C, max_wait: 1s}]\n");
    struct stream s[4];
    for (int i = 0; i < 4; i++)
        stream_start(&s[i], "/events/0?every=500", "S", true, 30);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(stream_wait(&s[i], 0, 8000), "stream %d got no event: %s", i,
                      h_file_tail(T, s[i].err, 400));
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_over_cap", 2, 3000), 2);
    char *js = h_admin_stats(T, T->port2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_open"), 2);
    struct h_http r;
    const char *args[] = {"-H", "x-tenant-id: C", NULL};
    h_curl_edge(T, &r, T->port, "/", args);
    ck_assert_msg(r.status == 200, "C got %d beside S's streams: %s", r.status,
                  r.body ? r.body : "");
    /* S's fifth waits for its concurrency, and is refused, not moved */
    struct stream s5;
    stream_start(&s5, "/events/0?every=500", "S", true, 5);
    int status;
    ck_assert_int_eq(h_wait_exit(s5.pid, 8000, &status), 0);
    js = h_admin_stats(T, T->port2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_open"), 2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_moved"), 2);
}
END_TEST

/* upstream.max_streaming bounds the whole class in a worker, whatever the
 * tenants' own caps: with 1, of 3 event streams of 3 tenants one moves,
 * the others stay in the request class, over the cap. */
START_TEST(max_streaming_bounds_the_class)
{
    start("h2", 1, 100, "  max_streaming: 1\n",
          "  list: [{name: S}, {name: T}, {name: U}, {name: C}]\n");
    const char *tenants[3] = {"S", "T", "U"};
    struct stream s[3];
    for (int i = 0; i < 3; i++) {
        stream_start(&s[i], "/events/0?every=500", tenants[i], true, 30);
        ck_assert_msg(stream_wait(&s[i], 0, 8000), "stream %d got no event: %s", i,
                      h_file_tail(T, s[i].err, 400));
    }
    char *js = h_admin_stats(T, T->port2);
    ck_assert_int_eq(tenant_stat(js, "S", "streaming_open"), 1);
    ck_assert_int_eq(tenant_stat(js, "T", "streaming_over_cap"), 1);
    ck_assert_int_eq(tenant_stat(js, "U", "streaming_over_cap"), 1);
    ck_assert_int_eq(tenant_stat(js, "T", "streaming_open"), 0);
}
END_TEST

/* HTTP/1.1 upstream with pipeline 4 and one connection: a moved event
 * stream never ends, so its connection has no room; a short request is
 * not pipelined behind it (it would wait there for response_timeout,
 * 504) but finds no capacity (503 at its max_wait). */
START_TEST(no_pipelining_behind_a_moved_stream)
{
    start("http/1.1", 1, 100, "  pipeline: 4\n  response_timeout: 3s\n",
          "  list: [{name: S}, {name: C, max_wait: 1s}]\n");
    struct stream s;
    stream_start(&s, "/events/0?every=500", "S", true, 30);
    ck_assert_msg(stream_wait(&s, 0, 8000), "the stream got nothing: %s",
                  h_file_tail(T, s.err, 400));
    ck_assert_int_eq(tenant_stat_wait("S", "streaming_open", 1, 3000), 1);
    struct h_http r;
    const char *args[] = {"-H", "x-tenant-id: C", NULL};
    long long t0 = h_now_ms();
    h_curl_edge(T, &r, T->port, "/", args);
    ck_assert_msg(r.status == 503 && h_now_ms() - t0 < 2800,
                  "behind a moved stream: want a 503 at max_wait, got %d after %lld ms", r.status,
                  h_now_ms() - t0);
    ck_assert_msg(h_pid_alive(s.pid), "the stream ended: %s", h_file_tail(T, s.err, 400));
}
END_TEST

/* The upstream GOAWAYs the one pool connection while an event stream is on
 * it: a new connection takes its place at once (short requests get 200,
 * not a 503 at max_wait behind a stream that may last hours), and the
 * stream goes on to its end on the old one. */
START_TEST(goaway_with_a_stream_open_gets_a_new_connection)
{
    start("h2", 1, 100, "",
          "  defaults: {max_wait: 2s}\n"
          "  list: [{name: S}, {name: C}]\n");
    struct stream s;
    stream_start(&s, "/events/0?every=300", "S", true, 30);
    ck_assert_msg(stream_wait(&s, 0, 8000), "the stream got no event: %s",
                  h_file_tail(T, s.err, 400));
    const char *paths[4] = {"/__goaway", "/", "/", "/"};
    const char *hdrs[4] = {"x-tenant-id: C", "x-tenant-id: C", "x-tenant-id: C",
                           "x-tenant-id: C"};
    const char *opts[] = {"max-time = 5", NULL};
    struct h_adm_xfer x[4];
    h_adm_curl_seq(T, T->port, 1, paths, hdrs, opts, x);
    ck_assert_int_eq(x[0].status, 200);
    const char *goaway[] = {": GOAWAY (last stream", NULL};
    ck_assert_msg(h_wait_file_line(T->error_log, goaway, 5000), "no GOAWAY came: %s",
                  h_file_tail(T, T->error_log, 1500));
    h_adm_curl_seq(T, T->port, 3, paths + 1, hdrs + 1, opts, x + 1);
    for (int i = 1; i < 4; i++)
        ck_assert_msg(x[i].status == 200, "short request %d after the GOAWAY got %d: %s", i,
                      x[i].status, h_file_tail(T, T->error_log, 1000));
    const char *line[] = {"GOAWAY'd connection still carries", NULL};
    ck_assert(h_wait_file_line(T->error_log, line, 0));
    /* the stream still flows on the GOAWAY'd connection */
    int k = 0;
    while (k < 200 && stream_wait(&s, k + 1, 0))
        k++;
    ck_assert_msg(stream_wait(&s, k + 3, 8000), "the stream stopped at event %d: %s", k,
                  h_file_tail(T, s.err, 400));
    ck_assert_msg(h_pid_alive(s.pid), "the stream ended: %s", h_file_tail(T, s.err, 400));
}
END_TEST

int main(void)
{
    h_init();
    Suite *su = suite_create("streaming");
    TCase *tc = tcase_create("streaming");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, events_pass_as_they_come, 0, 4);
    tcase_add_loop_test(tc, streams_leave_the_request_capacity, 0, 2);
    tcase_add_test(tc, streaming_cap_per_tenant);
    tcase_add_loop_test(tc, timed_move_after_streaming_after, 0, 2);
    tcase_add_test(tc, moved_streams_keep_the_server_stream_limit);
    tcase_add_test(tc, event_stream_request_refused_when_class_full);
    tcase_add_test(tc, goaway_with_a_stream_open_gets_a_new_connection);
    suite_add_tcase(su, tc);
    /* the bounds on the class (CK_RUN_CASE=bounds runs them alone) */
    TCase *bounds = tcase_create("bounds");
    tcase_add_checked_fixture(bounds, setup, teardown);
    tcase_set_timeout(bounds, 60);
    tcase_add_test(bounds, slow_downloads_stay_in_the_request_class);
    tcase_add_test(bounds, streams_keep_the_request_capacity);
    tcase_add_test(bounds, max_streaming_bounds_the_class);
    tcase_add_test(bounds, no_pipelining_behind_a_moved_stream);
    suite_add_tcase(su, bounds);
    TCase *minute = tcase_create("minute");
    tcase_add_checked_fixture(minute, setup, teardown);
    tcase_set_timeout(minute, MINUTE_S + 60);
    tcase_add_test(minute, a_minute_of_events_beside_a_campaign);
    suite_add_tcase(su, minute);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? 0 : 1;
}
