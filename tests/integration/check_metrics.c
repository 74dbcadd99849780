/* check_metrics.c - GET /metrics on the admin listener of the real binary
 * (issue 15): the counters move with real traffic (admitted = requests
 * sent, a shed shows up under its tenant and reason, unknown tenant ids
 * land in default, the latency histograms count every request, a reload
 * and a restarted worker are counted), the document passes the real
 * `promtool check metrics`, a real Prometheus server scrapes it and finds
 * a series of every family, and the Grafana dashboard in etc/ asks only
 * for metrics the binary exposes, in PromQL that promtool parses. */
#include "ac_config.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

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

/* Two workers; tenant A unlimited, R 1/s with a burst of 1 and no queue
 * (its second request within the second is shed), anything else default. */
static pid_t start_admin(const char *admin, const char *more_tenants)
{
    ck_assert_msg(h_testup_start(T, T->uport, (char *)NULL) > 0, "testup did not start");
    char *cfg = h_config_write(
        T, "corral.yaml",
        h_strf(T, "%s%s%s%s",
               "workers: 2\n"
               "drain_timeout: 1s\n"
               "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
               "admin: {address: 127.0.0.1:@PORT2@",
               admin,
               "}\n"
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
               "sni: lb.test}\n"
               "tenants:\n"
               "  by: header\n"
               "  header: x-tenant-id\n"
               "  defaults: {rate: 100000/s, burst: 100000}\n"
               "  list:\n"
               "    - {name: A, rate: 100000/s, burst: 100000}\n"
               "    - {name: R, rate: 1/s, burst: 1, queue: 0}\n",
               more_tenants));
    ck_assert(cfg != NULL);
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s | %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 2, 5000, NULL), 2);
    ck_assert_msg(h_wait_port(T->port2, true, 5000), "admin port not open");
    return m;
}

static pid_t start_with(const char *more_tenants)
{
    return start_admin("", more_tenants);
}

static pid_t start(void)
{
    return start_with("");
}

static char *scrape(void)
{
    struct h_http r;
    h_curl(T, &r, h_strf(T, "http://127.0.0.1:%d/metrics", T->port2), NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "GET /metrics: curl %d, HTTP %d: %s",
                  r.exit_code, r.status, r.err);
    return r.body;
}

/* The value of the sample series (name{labels} exactly); -1 when absent. */
static double sample(const char *doc, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = doc; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

/* Scrapes until series has the value want, for at most ms; the last doc. */
static char *scrape_until(const char *series, double want, int ms)
{
    long long end = h_now_ms() + ms;
    char *doc = scrape();
    while (sample(doc, series) != want && h_now_ms() < end) {
        h_sleep_ms(50);
        doc = scrape();
    }
    return doc;
}

static void promtool_ok(const char *doc)
{
    char *argv[] = {"promtool", "check", "metrics", NULL};
    struct h_run r;
    ck_assert_int_eq(h_run_in(T, argv, doc, 20000, &r), 0);
    ck_assert_msg(r.exit_code == 0, "promtool check metrics: exit %d: %s%s", r.exit_code, r.out,
                  r.err);
}

#define S(doc, series) sample(doc, series)

START_TEST(metrics_move_with_traffic_and_pass_promtool)
{
    enum { NA = 10, NR = 4 };
    pid_t m = start();
    char *doc = scrape();
    promtool_ok(doc);
    ck_assert_double_eq(S(doc, "corral_tenant_requests_admitted_total{tenant=\"A\"}"), 0);
    ck_assert_double_eq(S(doc, "corral_workers"), 2);
    ck_assert_double_eq(S(doc, "corral_generation"), 1);

    /* A: NA requests over one connection, each 30 ms late at the upstream */
    const char *pa[NA], *ha[NA];
    for (int i = 0; i < NA; i++) {
        pa[i] = "/delay/30";
        ha[i] = "x-tenant-id: A";
    }
    struct h_adm_xfer x[NA];
    ck_assert_int_eq(h_adm_curl_seq(T, T->port, NA, pa, ha, NULL, x), 0);
    for (int i = 0; i < NA; i++)
        ck_assert_int_eq(x[i].status, 200);
    /* R: NR at once: the burst of 1 goes, the rest is shed (429) */
    const char *pr[NR], *hr[NR];
    for (int i = 0; i < NR; i++) {
        pr[i] = "/r";
        hr[i] = "x-tenant-id: R";
    }
    struct h_adm_xfer y[NR];
    ck_assert_int_eq(h_adm_curl_seq(T, T->port, NR, pr, hr, NULL, y), 0);
    int ok = 0, shed = 0;
    for (int i = 0; i < NR; i++) {
        ok += y[i].status == 200;
        shed += y[i].status == 429;
    }
    ck_assert_msg(ok >= 1 && shed >= 1 && ok + shed == NR, "R: %d ok, %d shed", ok, shed);
    /* an id nobody configured: the default tenant, not a series of its own */
    const char *pz[1] = {"/z"}, *hz[1] = {"x-tenant-id: zzz-made-up"};
    struct h_adm_xfer z[1];
    ck_assert_int_eq(h_adm_curl_seq(T, T->port, 1, pz, hz, NULL, z), 0);
    ck_assert_int_eq(z[0].status, 200);
    /* barrier: every request has its access-log line (counted before it) */
    const char *any[] = {"\"status\"", NULL};
    ck_assert(h_wait_file_lines(T->access_log, any, NA + NR + 1, 5000));

    doc = scrape();
    promtool_ok(doc);
    ck_assert_double_eq(S(doc, "corral_tenant_requests_admitted_total{tenant=\"A\"}"), NA);
    ck_assert_double_eq(S(doc, "corral_tenant_responses_total{tenant=\"A\",class=\"2xx\"}"), NA);
    ck_assert_double_eq(S(doc, "corral_tenant_requests_admitted_total{tenant=\"R\"}"), ok);
    ck_assert_double_eq(
        S(doc, "corral_tenant_requests_shed_total{tenant=\"R\",reason=\"tenant_rate_limit\"}"),
        shed);
    ck_assert_double_eq(S(doc, "corral_tenant_responses_total{tenant=\"R\",class=\"4xx\"}"), shed);
    ck_assert_double_eq(S(doc, "corral_tenant_requests_admitted_total{tenant=\"default\"}"), 1);
    ck_assert_msg(strstr(doc, "zzz") == NULL, "a client's tenant id became a label");
    /* histograms: every A request, its upstream time past 25 ms */
    ck_assert_double_eq(
        S(doc, "corral_tenant_request_duration_seconds_count{tenant=\"A\"}"), NA);
    ck_assert_double_eq(
        S(doc, "corral_tenant_upstream_latency_seconds_bucket{tenant=\"A\",le=\"+Inf\"}"), NA);
    ck_assert_double_eq(
        S(doc, "corral_tenant_upstream_latency_seconds_bucket{tenant=\"A\",le=\"0.025000\"}"), 0);
    ck_assert_msg(S(doc, "corral_tenant_upstream_latency_seconds_sum{tenant=\"A\"}") >= NA * 0.03,
                  "upstream latency sum below %d x 30 ms", NA);
    ck_assert_double_eq(S(doc, "corral_tenant_queue_wait_seconds_count{tenant=\"A\"}"), NA);
    /* listener: three connections, three full handshakes (and the
     * harness's probe of the port at start, a connection without one) */
    ck_assert_double_eq(S(doc, "corral_listener_connections_accepted_total{listener=\"https\"}"), 4);
    ck_assert_double_eq(S(doc, "corral_listener_handshakes_total{listener=\"https\",type=\"full\"}"),
                        3);
    ck_assert_msg(
        S(doc, "corral_listener_handshake_cpu_seconds_total{listener=\"https\",type=\"full\"}") > 0,
        "no handshake CPU counted");
    /* upstream: each worker's connection ready, nothing in flight */
    char *up = h_strf(T, "corral_upstream_connections{upstream=\"127.0.0.1:%d\",state=\"ready\"}",
                      T->uport);
    ck_assert_double_eq(S(doc, up), 2);
    ck_assert_double_eq(
        S(doc, h_strf(T, "corral_upstream_streams_in_flight{upstream=\"127.0.0.1:%d\"}", T->uport)),
        0);
    ck_assert_msg(S(doc, "corral_upstream_admission_capacity") > 0, "no capacity");
    ck_assert_msg(S(doc, "corral_worker_open_fds{worker=\"1\"}") > 0 &&
                      S(doc, "corral_worker_max_fds{worker=\"2\"}") >
                          S(doc, "corral_worker_open_fds{worker=\"2\"}"),
                  "descriptor gauges: %s", doc);

    /* a handshake that fails: plain HTTP on the TLS port */
    struct h_http r;
    h_curl(T, &r, h_strf(T, "http://127.0.0.1:%d/", T->port), NULL);
    doc = scrape_until(
        "corral_listener_handshake_failures_total{listener=\"https\",reason=\"not_tls\"}", 1, 3000);
    ck_assert_double_eq(
        S(doc, "corral_listener_handshake_failures_total{listener=\"https\",reason=\"not_tls\"}"),
        1);

    /* a worker killed: restarted and counted; a reload: counted */
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_children(m, w, H_MAX_PIDS), 2);
    ck_assert_int_eq(h_signal(w[0], SIGKILL), 0);
    doc = scrape_until("corral_worker_restarts_total", 1, 5000);
    ck_assert_double_eq(S(doc, "corral_worker_restarts_total"), 1);
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    doc = scrape_until("corral_generation", 2, 5000);
    ck_assert_double_eq(S(doc, "corral_generation"), 2);
    ck_assert_double_eq(S(doc, "corral_reloads_total"), 1);
    /* counters survive the reload */
    ck_assert_double_eq(S(doc, "corral_tenant_requests_admitted_total{tenant=\"A\"}"), NA);
    promtool_ok(doc);
}
END_TEST

/* Polls the Prometheus HTTP API until query has a non-empty result, for
 * at most ms; the last answer. */
static char *query(int pport, const char *q, int ms)
{
    long long end = h_now_ms() + ms;
    const char *args[] = {"-G", "--data-urlencode", h_strf(T, "query=%s", q), NULL};
    struct h_http r;
    for (;;) {
        h_curl(T, &r, h_strf(T, "http://127.0.0.1:%d/api/v1/query", pport), args);
        if (r.status == 200 && strstr(r.body, "\"result\":[{"))
            return r.body;
        if (h_now_ms() >= end)
            return r.body;
        h_sleep_ms(200);
    }
}

START_TEST(a_real_prometheus_scrapes_every_family)
{
    start();
    const char *pa[2] = {"/a", "/a"}, *ha[2] = {"x-tenant-id: A", "x-tenant-id: A"};
    struct h_adm_xfer x[2];
    ck_assert_int_eq(h_adm_curl_seq(T, T->port, 2, pa, ha, NULL, x), 0);
    int pport = h_free_port();
    ck_assert(pport > 0);
    char *pcfg = h_path(T, "prometheus.yml");
    ck_assert_int_eq(h_write_file(pcfg, h_strf(T,
                                               "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                                               "scrape_configs:\n"
                                               "  - job_name: corral\n"
                                               "    static_configs:\n"
                                               "      - targets: ['127.0.0.1:%d']\n",
                                               T->port2)),
                     0);
    char *argv[] = {"prometheus",
                    h_strf(T, "--config.file=%s", pcfg),
                    h_strf(T, "--storage.tsdb.path=%s", h_path(T, "tsdb")),
                    h_strf(T, "--web.listen-address=127.0.0.1:%d", pport),
                    NULL};
    pid_t p = h_spawn(T, argv, h_path(T, "prometheus.out"), h_path(T, "prometheus.err"));
    ck_assert(p > 0);
    ck_assert_msg(h_wait_port(pport, true, 20000), "prometheus did not listen: %s",
                  h_file_tail(T, h_path(T, "prometheus.err"), 1500));
    /* one successful scrape */
    char *body = query(pport, "up{job=\"corral\"} == 1", 30000);
    ck_assert_msg(strstr(body, "\"result\":[{"), "corral never scraped: %s | %s", body,
                  h_file_tail(T, h_path(T, "prometheus.err"), 1500));
    /* a series of every family, as Prometheus stored it */
    static const char *const families[] = {
        "corral_tenant_requests_admitted_total{tenant=\"A\"} == 2",
        "corral_tenant_requests_queued_total",
        "corral_tenant_requests_shed_total",
        "corral_tenant_responses_total{class=\"2xx\",tenant=\"A\"} == 2",
        "corral_tenant_queue_wait_seconds_bucket",
        "corral_tenant_upstream_latency_seconds_count{tenant=\"A\"} == 2",
        "corral_tenant_request_duration_seconds_sum",
        "corral_listener_connections_accepted_total",
        "corral_listener_connections_open",
        "corral_listener_handshakes_total{type=\"full\"}",
        "corral_listener_handshake_failures_total",
        "corral_listener_handshake_cpu_seconds_total",
        "corral_upstream_connections{state=\"ready\"} == 2",
        "corral_upstream_streams_in_flight",
        "corral_upstream_reconnects_total",
        "corral_upstream_retries_total",
        "corral_upstream_gateway_errors_total",
        "corral_upstream_admission_capacity",
        "corral_workers == 2",
        "corral_worker_restarts_total",
        "corral_generation == 1",
        "corral_reloads_total",
        "corral_worker_open_fds",
        "corral_worker_max_fds",
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        body = query(pport, families[i], 3000);
        ck_assert_msg(strstr(body, "\"result\":[{"), "no series for %s: %s", families[i], body);
    }
    h_signal(p, SIGTERM);
    h_wait_exit(p, 5000, NULL);
}
END_TEST

/* The dashboard: valid import JSON whose every expr promtool parses (as a
 * recording rule, with the dashboard's variables filled in) and names only
 * metrics the binary exposes (tests/integration/grafana_check.py). */
START_TEST(grafana_dashboard_uses_only_exposed_metrics)
{
    start();
    char *metrics = h_path(T, "metrics.txt");
    ck_assert_int_eq(h_write_file(metrics, scrape()), 0);
    char *argv[] = {"python3",
                    h_strf(T, "%s/tests/integration/grafana_check.py", T->srcdir),
                    h_strf(T, "%s/etc/grafana-corral.json", T->srcdir),
                    metrics,
                    h_path(T, "rules.yml"),
                    NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(r.exit_code == 0, "grafana_check.py: exit %d: %s%s", r.exit_code, r.out, r.err);
}
END_TEST

/* Lines of doc that begin with prefix. */
static int lines_with(const char *doc, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = doc; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, prefix, len) == 0;
    return n;
}

/* 400 more tenants: the worker renders /metrics in parts as the socket
 * takes them (CR_METRICS_STEP tenants at a time, so that a thousand
 * tenants never hold its loop for the 20 ms a whole rendering takes), the
 * answer ending with the connection. It is whole - every tenant in the
 * last tenant family, the process families after them - and promtool
 * takes it. */
START_TEST(many_tenants_rendered_in_parts)
{
    enum { N = 400 };
    static char more[N * 40];
    size_t at = 0;
    for (int i = 0; i < N; i++)
        at +=
            (size_t)snprintf(more + at, sizeof(more) - at, "    - {name: t%03d, rate: 10/s}\n", i);
    ck_assert_uint_lt(at, sizeof(more));
    start_with(more);
    char *doc = scrape();
    /* A, R, default and the N */
    ck_assert_int_eq(lines_with(doc, "corral_tenant_request_duration_seconds_count{"), N + 3);
    ck_assert_int_eq(lines_with(doc, "corral_tenant_requests_admitted_total{"), N + 3);
    ck_assert_double_eq(S(doc, "corral_tenant_requests_admitted_total{tenant=\"t399\"}"), 0);
    ck_assert_double_eq(S(doc, "corral_workers"), 2);
    ck_assert_msg(lines_with(doc, "# TYPE corral_worker_max_fds gauge") == 1,
                  "the document ends early: %s", strlen(doc) > 300 ? doc + strlen(doc) - 300 : doc);
    promtool_ok(doc);
}
END_TEST

/* scrape.py PORT2 VERSION PAUSE: its line */
static char *slow_scrape(const char *version, const char *pause)
{
    char *script = h_strf(T, "%s/tests/integration/scrape.py", T->srcdir);
    char *const argv[] = {"python3", script, h_strf(T, "%d", T->port2), (char *)version,
                          (char *)pause, NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "scrape.py: exit %d: %s | %s", r.exit_code,
                  r.out, r.err);
    return r.out;
}

/* The document's length is not known when its head goes out (it is
 * rendered as the socket takes it): an HTTP/1.1 scraper gets it chunked,
 * the last chunk only at its real end, so that one cut short is told from
 * a whole one. 1000 tenants (megabytes) and admin.timeout 1s, the scraper
 * reading nothing for 1.5 s: the deadline cuts the answer, and the
 * scraper knows (it used to end with the connection, a partial document
 * that Prometheus takes for a whole one). Read at once it is whole,
 * chunked, and curl and promtool take it; HTTP/1.0 gets it delimited by
 * the close, as before. */
START_TEST(metrics_chunked_cut_short_is_detectable)
{
    enum { N = 1000 };
    static char more[N * 40];
    size_t at = 0;
    for (int i = 0; i < N; i++)
        at +=
            (size_t)snprintf(more + at, sizeof(more) - at, "    - {name: t%03d, rate: 10/s}\n", i);
    ck_assert_uint_lt(at, sizeof(more));
    start_admin(", timeout: 1s", more);
    char *cut = slow_scrape("1.1", "1.5");
    ck_assert_msg(strncmp(cut, "incomplete ", 11) == 0 && strstr(cut, " chunked"),
                  "a cut /metrics passed for whole: %s", cut);
    char *whole = slow_scrape("1.1", "0");
    ck_assert_msg(strncmp(whole, "complete ", 9) == 0 && strstr(whole, " chunked"),
                  "HTTP/1.1 /metrics: %s", whole);
    char *old = slow_scrape("1.0", "0");
    ck_assert_msg(strncmp(old, "complete ", 9) == 0 && strstr(old, " close"),
                  "HTTP/1.0 /metrics: %s", old);
    char *doc = scrape();
    ck_assert_int_eq(lines_with(doc, "corral_tenant_requests_admitted_total{"), N + 3);
    ck_assert_msg(lines_with(doc, "# TYPE corral_worker_max_fds gauge") == 1,
                  "the document ends early: %s", strlen(doc) > 300 ? doc + strlen(doc) - 300 : doc);
    promtool_ok(doc);
}
END_TEST

int main(void)
{
    h_init();
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 90);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, metrics_move_with_traffic_and_pass_promtool);
    tcase_add_test(tc, a_real_prometheus_scrapes_every_family);
    tcase_add_test(tc, grafana_dashboard_uses_only_exposed_metrics);
    tcase_add_test(tc, many_tenants_rendered_in_parts);
    tcase_add_test(tc, metrics_chunked_cut_short_is_detectable);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
