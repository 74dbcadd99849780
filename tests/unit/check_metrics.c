/* check_metrics.c - the Prometheus rendering of shared memory (metrics.h):
 * counters summed over every worker slot, one series per configured
 * tenant plus default, cumulative histogram buckets in seconds, gauges
 * by state, and the exposition format's rules (HELP and TYPE before each
 * family's samples, every sample of a declared family). promtool checks
 * the real binary's output in tests/integration/check_metrics. */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "shm.h"
#include "tenant.h"

static const char yaml[] = "workers: 2\n"
                           "log: {level: warn, access: off}\n"
                           "listeners:\n"
                           "  - name: edge\n"
                           "    address: 127.0.0.1:8443\n"
                           "    tls:\n"
                           "      certificates:\n"
                           "        - {cert: /dev/null, key: /dev/null}\n"
                           "  - name: api\n"
                           "    address: 127.0.0.1:8444\n"
                           "    tls:\n"
                           "      certificates:\n"
                           "        - {cert: /dev/null, key: /dev/null}\n"
                           "upstream:\n"
                           "  addresses: [127.0.0.1:9443, 127.0.0.1:9444]\n"
                           "  tls: {ca: /dev/null, cert: /dev/null, key: /dev/null, sni: lb.test}\n"
                           "tenants:\n"
                           "  by: header\n"
                           "  list:\n"
                           "    - {name: gold, rate: 100/s}\n"
                           "    - {name: free, rate: 10/s}\n";

static struct cr_config *cfg;
static struct cr_tenants *tenants;
static struct cr_shm *shm;
static char *doc;

static void setup(void)
{
    struct cr_diag d;
    ck_assert_int_eq(cr_config_load_string("t.yaml", yaml, &cfg, &d), 0);
    cr_diag_free(&d);
    ck_assert_int_eq(cr_tenants_new(&cfg->tenants, &tenants), 0);
    shm = calloc(1, sizeof(*shm));
    ck_assert_ptr_nonnull(shm);
    doc = NULL;
}

static void teardown(void)
{
    free(doc);
    free(shm);
    cr_tenants_free(tenants);
    cr_config_free(cfg);
}

static const char *render(void)
{
    struct cr_metrics_src src = {.shm = shm, .cfg = cfg, .tenants = tenants};
    size_t len;
    free(doc);
    ck_assert_int_eq(cr_metrics_render(&src, &doc, &len), 0);
    ck_assert_uint_eq(strlen(doc), len);
    return doc;
}

/* The value of the sample line that starts with series followed by a
 * space; fails the test when there is none. */
static double value(const char *series)
{
    size_t n = strlen(series);
    for (const char *p = doc; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    ck_abort_msg("no sample %s in:\n%s", series, doc);
    return -1;
}

static bool has(const char *needle)
{
    return strstr(doc, needle) != NULL;
}

START_TEST(tenants_one_series_each_and_default)
{
    /* index 0 is default, then gold, free (tenant.h) */
    atomic_store(&shm->tenants[1].admitted, 7);
    atomic_store(&shm->tenants[1].queued, 3);
    atomic_store(&shm->tenants[2].shed[CR_ADMIT_SHED_RATE], 5);
    atomic_store(&shm->tenants[0].responses_by_class[2], 11);
    atomic_store(&shm->tenants[5].admitted, 99); /* not a configured tenant */
    atomic_store(&shm->tenants[2].streaming_open, 4);
    atomic_store(&shm->tenants[2].streaming_moved, 6);
    atomic_store(&shm->tenants[1].streaming_over_cap, 2);
    atomic_store(&shm->tenants[1].streaming_refused, 8);
    atomic_store(&shm->tenants[1].streaming_client_bound, 9);
    render();
    ck_assert_double_eq(value("corral_tenant_requests_admitted_total{tenant=\"gold\"}"), 7);
    ck_assert_double_eq(value("corral_tenant_requests_admitted_total{tenant=\"free\"}"), 0);
    ck_assert_double_eq(value("corral_tenant_requests_admitted_total{tenant=\"default\"}"), 0);
    ck_assert_double_eq(value("corral_tenant_requests_queued_total{tenant=\"gold\"}"), 3);
    ck_assert(has("# TYPE corral_tenant_streaming_open gauge\n"));
    ck_assert_double_eq(value("corral_tenant_streaming_open{tenant=\"free\"}"), 4);
    ck_assert_double_eq(value("corral_tenant_streaming_moved_total{tenant=\"free\"}"), 6);
    ck_assert_double_eq(value("corral_tenant_streaming_over_cap_total{tenant=\"gold\"}"), 2);
    ck_assert_double_eq(value("corral_tenant_streaming_refused_total{tenant=\"gold\"}"), 8);
    ck_assert_double_eq(value("corral_tenant_streaming_client_bound_total{tenant=\"gold\"}"), 9);
    ck_assert_double_eq(
        value("corral_tenant_requests_shed_total{tenant=\"free\",reason=\"tenant_rate_limit\"}"), 5);
    ck_assert_double_eq(value("corral_tenant_responses_total{tenant=\"default\",class=\"2xx\"}"),
                        11);
    ck_assert(!has(" 99\n"));
    ck_assert(!has("tenant=\"\""));
}
END_TEST

START_TEST(histogram_buckets_are_cumulative_seconds)
{
    struct cr_shm_hist *h = &shm->tenants[1].hist[CR_HIST_UPSTREAM];
    cr_shm_hist_add(h, 500);      /* 0.5 ms: first bucket */
    cr_shm_hist_add(h, 1000);     /* exactly 1 ms: le is inclusive */
    cr_shm_hist_add(h, 30000);    /* 30 ms: le 0.05 */
    cr_shm_hist_add(h, 20000000); /* 20 s: only +Inf */
    render();
    const char *b = "corral_tenant_upstream_latency_seconds_bucket{tenant=\"gold\",le=";
    char s[160];
    snprintf(s, sizeof(s), "%s\"0.001000\"}", b);
    ck_assert_double_eq(value(s), 2);
    snprintf(s, sizeof(s), "%s\"0.025000\"}", b);
    ck_assert_double_eq(value(s), 2);
    snprintf(s, sizeof(s), "%s\"0.050000\"}", b);
    ck_assert_double_eq(value(s), 3);
    snprintf(s, sizeof(s), "%s\"10.000000\"}", b);
    ck_assert_double_eq(value(s), 3);
    snprintf(s, sizeof(s), "%s\"+Inf\"}", b);
    ck_assert_double_eq(value(s), 4);
    ck_assert_double_eq(value("corral_tenant_upstream_latency_seconds_count{tenant=\"gold\"}"), 4);
    ck_assert_double_eq_tol(value("corral_tenant_upstream_latency_seconds_sum{tenant=\"gold\"}"),
                            20.0315, 1e-9);
    ck_assert_double_eq(value("corral_tenant_queue_wait_seconds_count{tenant=\"gold\"}"), 0);
    ck_assert(has("# TYPE corral_tenant_request_duration_seconds histogram\n"));
}
END_TEST

START_TEST(listeners_and_upstreams_sum_every_worker)
{
    atomic_store(&shm->listeners[0][1].conns_accepted, 4);
    atomic_store(&shm->listeners[1][1].conns_accepted, 6);
    atomic_store(&shm->listeners[200][1].conns_accepted, 1); /* a slot of an older generation */
    atomic_store(&shm->listeners[0][0].handshakes_resumed, 2);
    atomic_store(&shm->listeners[1][0].hs_fail[CR_HSF_NOT_TLS], 9);
    atomic_store(&shm->listeners[0][0].hs_cpu_us_full, 1500000);
    atomic_store(&shm->upstreams[0][1].conns[3], 2); /* ready */
    atomic_store(&shm->upstreams[1][1].conns[3], 1);
    atomic_store(&shm->upstreams[1][0].inflight, 17);
    atomic_store(&shm->upstreams[0][0].responses_504, 1);
    atomic_store(&shm->workers[0].admit_capacity, 100);
    atomic_store(&shm->workers[1].admit_capacity, 28);
    atomic_store(&shm->generation, 3);
    atomic_store(&shm->reloads, 2);
    atomic_store(&shm->worker_restarts, 1);
    render();
    ck_assert_double_eq(value("corral_listener_connections_accepted_total{listener=\"api\"}"), 11);
    ck_assert_double_eq(value("corral_listener_connections_accepted_total{listener=\"edge\"}"), 0);
    ck_assert_double_eq(value("corral_listener_handshakes_total{listener=\"edge\",type=\"resumed\"}"),
                        2);
    ck_assert_double_eq(
        value("corral_listener_handshake_failures_total{listener=\"edge\",reason=\"not_tls\"}"), 9);
    ck_assert_double_eq(
        value("corral_listener_handshake_cpu_seconds_total{listener=\"edge\",type=\"full\"}"), 1.5);
    ck_assert_double_eq(
        value("corral_upstream_connections{upstream=\"127.0.0.1:9444\",state=\"ready\"}"), 3);
    ck_assert_double_eq(
        value("corral_upstream_connections{upstream=\"127.0.0.1:9443\",state=\"ready\"}"), 0);
    ck_assert_double_eq(value("corral_upstream_streams_in_flight{upstream=\"127.0.0.1:9443\"}"), 17);
    ck_assert_double_eq(
        value("corral_upstream_gateway_errors_total{upstream=\"127.0.0.1:9443\",code=\"504\"}"), 1);
    ck_assert_double_eq(value("corral_upstream_admission_capacity"), 128);
    ck_assert_double_eq(value("corral_generation"), 3);
    ck_assert_double_eq(value("corral_reloads_total"), 2);
    ck_assert_double_eq(value("corral_worker_restarts_total"), 1);
    ck_assert_double_eq(value("corral_workers"), 2);
    ck_assert(!has("corral_worker_open_fds{")); /* the master counted none yet */
    atomic_store(&shm->worker_fds[1], 40);
    atomic_store(&shm->worker_max_fds[1], 1024);
    render();
    ck_assert_double_eq(value("corral_worker_open_fds{worker=\"2\"}"), 40);
    ck_assert_double_eq(value("corral_worker_max_fds{worker=\"2\"}"), 1024);
    ck_assert(!has("corral_worker_open_fds{worker=\"1\"}"));
}
END_TEST

/* upstream.adaptive: per-worker gauges, only when it is on. */
START_TEST(adaptive_per_worker)
{
    atomic_store(&shm->workers[0].adaptive_limit, 24);
    atomic_store(&shm->workers[0].adaptive_min_rtt_us, 20500);
    atomic_store(&shm->workers[0].adaptive_gradient_milli, 830);
    atomic_store(&shm->workers[1].adaptive_limit, 30);
    render();
    ck_assert(!has("corral_upstream_adaptive"));
    cfg->upstream.adaptive.enabled = true;
    render();
    ck_assert_double_eq(value("corral_upstream_adaptive_limit{worker=\"1\"}"), 24);
    ck_assert_double_eq(value("corral_upstream_adaptive_limit{worker=\"2\"}"), 30);
    ck_assert_double_eq_tol(value("corral_upstream_adaptive_min_rtt_seconds{worker=\"1\"}"),
                            0.0205, 1e-9);
    ck_assert_double_eq_tol(value("corral_upstream_adaptive_gradient{worker=\"1\"}"), 0.83, 1e-9);
    ck_assert(has("# TYPE corral_upstream_adaptive_limit gauge"));
}
END_TEST

/* Every sample belongs to the family the last # TYPE declared (its name, or
 * for a histogram name_bucket/_sum/_count), after its # HELP; no family is
 * declared twice; counters end in _total. */
START_TEST(format_is_well_formed)
{
    render();
    char family[128] = "", type[16] = "";
    char seen[64][128];
    int nseen = 0;
    bool help = false;
    for (char *line = doc, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        ck_assert_msg(next != NULL, "the last line has no newline");
        *next++ = '\0';
        if (strncmp(line, "# HELP ", 7) == 0) {
            ck_assert(sscanf(line + 7, "%127s", family) == 1);
            for (int i = 0; i < nseen; i++)
                ck_assert_msg(strcmp(seen[i], family) != 0, "%s declared twice", family);
            ck_assert_int_lt(nseen, 64);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
            help = true;
            type[0] = '\0';
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128];
            ck_assert(help && sscanf(line + 7, "%127s %15s", name, type) == 2);
            ck_assert_str_eq(name, family);
            if (strcmp(type, "counter") == 0)
                ck_assert_msg(strlen(family) > 6 && !strcmp(family + strlen(family) - 6, "_total"),
                              "counter %s", family);
            continue;
        }
        ck_assert_msg(type[0], "sample before its TYPE: %s", line);
        size_t n = strlen(family);
        ck_assert_msg(strncmp(line, family, n) == 0, "%s under family %s", line, family);
        const char *rest = line + n;
        if (strcmp(type, "histogram") == 0 && *rest == '_')
            ck_assert(!strncmp(rest, "_bucket{", 8) || !strncmp(rest, "_sum{", 5) ||
                      !strncmp(rest, "_count{", 7));
        else
            ck_assert_msg(*rest == '{' || *rest == ' ', "%s", line);
    }
    ck_assert_int_ge(nseen, 20);
}
END_TEST

/* The document in steps (cr_metrics_step, as the admin listener renders
 * it): with 150 tenants and 7 tenants a step, the parts, concatenated, are
 * the whole document, byte for byte; there are as many as the tenant
 * families' rows ask (7 families x 150 tenants / 7, then the rest), and
 * none but the last holds more than 7 tenants' rows (under 2 KB each, the
 * histograms' being the largest). */
START_TEST(rendered_in_steps_is_the_same_document)
{
    enum { NT = 150, BUDGET = 7 };
    static char big[NT * 40 + sizeof(yaml)];
    const char *list = strstr(yaml, "  list:\n");
    ck_assert_ptr_nonnull(list);
    int n = snprintf(big, sizeof(big), "%.*s  list:\n", (int)(list - yaml), yaml);
    for (int i = 0; i < NT; i++)
        n += snprintf(big + n, sizeof(big) - (size_t)n, "    - {name: t%03d, rate: 10/s}\n", i);
    ck_assert_int_lt(n, (int)sizeof(big));
    cr_tenants_free(tenants);
    cr_config_free(cfg);
    struct cr_diag d;
    ck_assert_int_eq(cr_config_load_string("t.yaml", big, &cfg, &d), 0);
    cr_diag_free(&d);
    ck_assert_int_eq(cr_tenants_new(&cfg->tenants, &tenants), 0);
    uint32_t nt = cr_tenants_count(tenants); /* and "default" */
    ck_assert_uint_eq(nt, NT + 1);
    for (uint32_t i = 0; i < nt; i++) {
        atomic_store(&shm->tenants[i].admitted, 1000 + i);
        atomic_store(&shm->tenants[i].hist[1].bucket[3], i);
    }
    render();

    struct cr_metrics_src src = {.shm = shm, .cfg = cfg, .tenants = tenants};
    struct cr_metrics_render *m;
    ck_assert_int_eq(cr_metrics_begin(&src, &m), 0);
    size_t whole = strlen(doc), at = 0;
    int rc = 0, steps = 0;
    while (rc == 0) {
        char *part;
        size_t len;
        rc = cr_metrics_step(m, BUDGET, &part, &len);
        ck_assert_int_ge(rc, 0);
        ck_assert_uint_eq(strlen(part), len);
        ck_assert_msg(at + len <= whole && memcmp(doc + at, part, len) == 0,
                      "part %d differs from the document at byte %zu", steps, at);
        if (rc == 0)
            ck_assert_uint_lt(len, BUDGET * 2048);
        at += len;
        steps++;
        free(part);
        ck_assert_int_lt(steps, 1000);
    }
    cr_metrics_end(m);
    ck_assert_uint_eq(at, whole);
    /* one step per BUDGET series of the tenant families (counted in the
     * document: their TYPE lines), and one more for the rest */
    int fams = 0;
    for (const char *p = doc; (p = strstr(p, "# TYPE corral_tenant_")) != NULL; p++)
        fams++;
    ck_assert_int_ge(fams, 7);
    ck_assert_int_eq(steps,
                     (fams * (int)nt + BUDGET - 1) / BUDGET + ((fams * (int)nt) % BUDGET == 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tenants_one_series_each_and_default);
    tcase_add_test(tc, histogram_buckets_are_cumulative_seconds);
    tcase_add_test(tc, listeners_and_upstreams_sum_every_worker);
    tcase_add_test(tc, adaptive_per_worker);
    tcase_add_test(tc, format_is_well_formed);
    tcase_add_test(tc, rendered_in_steps_is_the_same_document);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
