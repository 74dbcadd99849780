/* check_replay.c - corral-replay's pure parts, without sockets: the campaign
 * profile (every default, and each diagnostic with its exact FILE:LINE:COL),
 * the refusal of unbounded profiles, the arrival-rate curve and its
 * open-loop schedule on a deterministic clock, and the access-log reader.
 *
 * Profiles are written as strings named "p.yaml"; the section under test
 * comes first so that its line numbers are the ones written here. */
#include "ac_config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "log.h"
#include "rp_accesslog.h"
#include "rp_curve.h"
#include "rp_profile.h"

/* ------------------------------------------------------------ helpers */

/* The parts every valid profile needs, appended after the part under test. */
#define TAIL                                                                                       \
    "target: {address: 127.0.0.1:8443, sni: edge.test, insecure: true}\n"                          \
    "caps: {rate: 1000/s, connections: 100}\n"                                                     \
    "tenants:\n"                                                                                   \
    "  list:\n"                                                                                    \
    "    - {name: a, baseline: 10/s}\n"

static struct rp_profile *load_ok(const char *text)
{
    struct rp_profile *p = NULL;
    struct cr_diag d;
    int rc = rp_profile_load_string("p.yaml", text, 0, &p, &d);

    ck_assert_msg(rc == 0, "profile refused: %s", d.nmsgs ? d.msgs[0] : "(no message)");
    ck_assert_ptr_nonnull(p);
    cr_diag_free(&d);
    return p;
}

/* Loads text expecting failure; returns the diagnostics (caller frees). */
static struct cr_diag load_bad(const char *text, unsigned flags)
{
    struct rp_profile *p = (struct rp_profile *)1;
    struct cr_diag d;
    int rc = rp_profile_load_string("p.yaml", text, flags, &p, &d);

    ck_assert_int_eq(rc, CR_ECONFIG);
    ck_assert_ptr_null(p);
    ck_assert_uint_ge(d.nerrors, 1);
    return d;
}

static bool has_msg(const struct cr_diag *d, const char *prefix, const char *needle)
{
    for (size_t i = 0; i < d->nmsgs; i++)
        if (strncmp(d->msgs[i], prefix, strlen(prefix)) == 0 && strstr(d->msgs[i], needle))
            return true;
    return false;
}

static const char *all_msgs(const struct cr_diag *d)
{
    static char buf[4096];
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < d->nmsgs && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n  %s", d->msgs[i]);
    return buf;
}

/* ------------------------------------------------------------ profile */

START_TEST(full_profile)
{
    struct rp_profile *p = load_ok("name: push\n"
                                   "duration: 2m\n"
                                   "seed: 7\n"
                                   "arrivals: poisson\n"
                                   "target:\n"
                                   "  address: 127.0.0.1:8443\n"
                                   "  sni: edge.test\n"
                                   "  authority: api.example\n"
                                   "  insecure: true\n"
                                   "  http2: 80%\n"
                                   "caps: {rate: 5000/s, connections: 2000}\n"
                                   "client:\n"
                                   "  requests_per_connection: 4\n"
                                   "  resume: 0.6\n"
                                   "  on_refusal: retry_now\n"
                                   "  retry_jitter: 50%\n"
                                   "  max_retries: 5\n"
                                   "  retry_after_default: 2s\n"
                                   "  timeout: 3s\n"
                                   "  idle: 500ms\n"
                                   "  request_id: false\n"
                                   "tenants:\n"
                                   "  header: X-Api-Key\n"
                                   "  list:\n"
                                   "    - name: news\n"
                                   "      value: news-key\n"
                                   "      baseline: 600/min\n"
                                   "      requests:\n"
                                   "        - {path: /feed, weight: 3}\n"
                                   "        - method: POST\n"
                                   "          path: /open\n"
                                   "          body: 2k\n"
                                   "          headers: {Content-Type: application/json, "
                                   "accept: '*/*'}\n"
                                   "    - {name: shop, baseline: 50/s}\n"
                                   "events:\n"
                                   "  - {at: 30s, tenant: shop, factor: 40x, ramp: 2s, hold: 1s, "
                                   "half_life: 10s}\n"
                                   "phases:\n"
                                   "  - {name: calm, start: 0s, end: 30s}\n"
                                   "  - {name: herd, start: 30s, end: 2m}\n");

    ck_assert_str_eq(p->name, "push");
    ck_assert_uint_eq(p->duration_ms, 120000);
    ck_assert_uint_eq(p->seed, 7);
    ck_assert_int_eq(p->arrivals, RP_ARRIVALS_POISSON);
    ck_assert_str_eq(p->target.addr.text, "127.0.0.1:8443");
    ck_assert_str_eq(p->target.sni, "edge.test");
    ck_assert_str_eq(p->target.authority, "api.example");
    ck_assert(p->target.insecure);
    ck_assert_double_eq_tol(p->target.http2, 0.8, 1e-9);
    ck_assert_double_eq_tol(p->caps.rate, 5000.0, 1e-9);
    ck_assert_uint_eq(p->caps.connections, 2000);
    ck_assert_uint_eq(p->client.requests_per_connection, 4);
    ck_assert_double_eq_tol(p->client.resume, 0.6, 1e-9);
    ck_assert_int_eq(p->client.on_refusal, RP_REFUSAL_RETRY_NOW);
    ck_assert_double_eq_tol(p->client.retry_jitter, 0.5, 1e-9);
    ck_assert_uint_eq(p->client.max_retries, 5);
    ck_assert_uint_eq(p->client.retry_after_default_ms, 2000);
    ck_assert_uint_eq(p->client.timeout_ms, 3000);
    ck_assert_uint_eq(p->client.idle_ms, 500);
    ck_assert(!p->client.request_id);
    ck_assert_str_eq(p->tenants.header, "x-api-key"); /* lower-cased */
    ck_assert_uint_eq(p->tenants.nlist, 2);
    const struct rp_tenant *news = &p->tenants.list[0], *shop = &p->tenants.list[1];
    ck_assert_str_eq(news->name, "news");
    ck_assert_str_eq(news->value, "news-key");
    ck_assert_double_eq_tol(news->baseline, 10.0, 1e-9);
    ck_assert_uint_eq(news->nrequests, 2);
    ck_assert_str_eq(news->requests[0].method, "GET");
    ck_assert_str_eq(news->requests[0].path, "/feed");
    ck_assert_uint_eq(news->requests[0].weight, 3);
    ck_assert_uint_eq(news->requests[0].nheaders, 0);
    ck_assert_str_eq(news->requests[1].method, "POST");
    ck_assert_uint_eq(news->requests[1].body, 2048);
    ck_assert_uint_eq(news->requests[1].nheaders, 2);
    ck_assert_str_eq(news->requests[1].hname[0], "content-type");
    ck_assert_str_eq(news->requests[1].hvalue[0], "application/json");
    ck_assert_str_eq(news->requests[1].hname[1], "accept");
    ck_assert_str_eq(shop->value, "shop"); /* value defaults to the name */
    ck_assert_uint_eq(shop->nrequests, 1); /* GET / when none are given */
    ck_assert_str_eq(shop->requests[0].method, "GET");
    ck_assert_str_eq(shop->requests[0].path, "/");
    ck_assert_uint_eq(p->nevents, 1);
    ck_assert_uint_eq(p->events[0].tenant_index, 1);
    ck_assert_double_eq_tol(p->events[0].factor, 40.0, 1e-9);
    ck_assert_uint_eq(p->events[0].at_ms, 30000);
    ck_assert_uint_eq(p->events[0].ramp_ms, 2000);
    ck_assert_uint_eq(p->events[0].hold_ms, 1000);
    ck_assert_uint_eq(p->events[0].half_life_ms, 10000);
    ck_assert_uint_eq(p->nphases, 2);
    ck_assert_str_eq(p->phases[1].name, "herd");
    ck_assert_uint_eq(p->phases[1].start_ms, 30000);
    ck_assert_uint_eq(p->phases[1].end_ms, 120000);
    rp_profile_free(p);
}
END_TEST

START_TEST(defaults_and_derived_phases)
{
    struct rp_profile *p = load_ok("duration: 60s\n"
                                   "events: [{at: 10s, tenant: a, factor: 5, ramp: 2s, hold: 3s, "
                                   "half_life: 4s}]\n" TAIL);

    ck_assert_str_eq(p->name, "p"); /* the file name without its extension */
    ck_assert_int_eq(p->arrivals, RP_ARRIVALS_UNIFORM);
    ck_assert_uint_eq(p->seed, 1);
    ck_assert_double_eq_tol(p->target.http2, 1.0, 1e-9);
    ck_assert_str_eq(p->target.authority, "edge.test"); /* the sni */
    ck_assert_uint_eq(p->client.requests_per_connection, 1);
    ck_assert_double_eq_tol(p->client.resume, 0.0, 1e-9);
    ck_assert_int_eq(p->client.on_refusal, RP_REFUSAL_OBEY);
    ck_assert_double_eq_tol(p->client.retry_jitter, 0.2, 1e-9);
    ck_assert_uint_eq(p->client.max_retries, 3);
    ck_assert_uint_eq(p->client.retry_after_default_ms, 1000);
    ck_assert_uint_eq(p->client.timeout_ms, 10000);
    ck_assert_uint_eq(p->client.idle_ms, 1000);
    ck_assert(p->client.request_id);
    ck_assert_str_eq(p->tenants.header, "x-tenant-id");
    /* baseline until the event, surge until its peak ends, decay after */
    ck_assert_uint_eq(p->nphases, 3);
    ck_assert_str_eq(p->phases[0].name, "baseline");
    ck_assert_uint_eq(p->phases[0].end_ms, 10000);
    ck_assert_str_eq(p->phases[1].name, "surge");
    ck_assert_uint_eq(p->phases[1].start_ms, 10000);
    ck_assert_uint_eq(p->phases[1].end_ms, 15000);
    ck_assert_str_eq(p->phases[2].name, "decay");
    ck_assert_uint_eq(p->phases[2].end_ms, 60000);
    rp_profile_free(p);

    p = load_ok("duration: 5s\n" TAIL);
    ck_assert_uint_eq(p->nphases, 1);
    ck_assert_str_eq(p->phases[0].name, "steady");
    ck_assert_uint_eq(p->phases[0].end_ms, 5000);
    rp_profile_free(p);

    /* an IP address is no SNI: the authority is the address's host */
    p = load_ok("duration: 5s\n"
                "target: {address: 127.0.0.1:8443, insecure: true}\n"
                "caps: {rate: 10/s, connections: 1}\n"
                "tenants: {list: [{name: a, baseline: 1/s}]}\n");
    ck_assert_ptr_null(p->target.sni);
    ck_assert_str_eq(p->target.authority, "127.0.0.1");
    rp_profile_free(p);
}
END_TEST

/* A profile without a duration, without caps, or with caps that do not cap
 * is refused, with the place to fix. */
START_TEST(unbounded_profiles_are_refused)
{
    struct cr_diag d = load_bad(TAIL, 0);
    ck_assert_msg(d.nerrors == 1 &&
                      has_msg(&d, "p.yaml:1:1: error: ", "missing required key 'duration'"),
                  "%s", all_msgs(&d));
    cr_diag_free(&d);

    d = load_bad("duration: 10s\n"
                 "target: {address: 127.0.0.1:8443, insecure: true}\n"
                 "tenants: {list: [{name: a, baseline: 1/s}]}\n",
                 0);
    ck_assert_msg(d.nerrors == 1 &&
                      has_msg(&d, "p.yaml:1:1: error: ", "missing required key 'caps'"),
                  "%s", all_msgs(&d));
    cr_diag_free(&d);

    d = load_bad("duration: 10s\n"
                 "caps: {connections: 10}\n"
                 "target: {address: 127.0.0.1:8443, insecure: true}\n"
                 "tenants: {list: [{name: a, baseline: 1/s}]}\n",
                 0);
    ck_assert_msg(d.nerrors == 1 &&
                      has_msg(&d, "p.yaml:2:7: error: ", "missing required key 'rate'"),
                  "%s", all_msgs(&d));
    cr_diag_free(&d);

    d = load_bad("duration: 10s\n"
                 "caps: {rate: unlimited}\n"
                 "target: {address: 127.0.0.1:8443, insecure: true}\n"
                 "tenants: {list: [{name: a, baseline: 1/s}]}\n",
                 0);
    ck_assert_msg(d.nerrors == 2 &&
                      has_msg(&d, "p.yaml:2:14: error: ", "'rate' must be a finite") &&
                      has_msg(&d, "p.yaml:2:7: error: ", "missing required key 'connections'"),
                  "%s", all_msgs(&d));
    cr_diag_free(&d);

    /* without tenants there is nothing to send, unless an access log is
     * replayed */
    const char *no_tenants = "duration: 10s\n"
                             "caps: {rate: 10/s, connections: 10}\n"
                             "target: {address: 127.0.0.1:8443, insecure: true}\n";
    d = load_bad(no_tenants, 0);
    ck_assert_msg(d.nerrors == 1 && has_msg(&d, "p.yaml:1:1: error: ", "no tenants"), "%s",
                  all_msgs(&d));
    cr_diag_free(&d);
    struct rp_profile *p = NULL;
    ck_assert_int_eq(rp_profile_load_string("p.yaml", no_tenants, RP_PROFILE_ACCESS_LOG, &p, &d),
                     0);
    ck_assert_uint_eq(p->tenants.nlist, 0);
    rp_profile_free(p);
    cr_diag_free(&d);
    /* the caps are needed in that mode too */
    d = load_bad("duration: 10s\n"
                 "target: {address: 127.0.0.1:8443, insecure: true}\n",
                 RP_PROFILE_ACCESS_LOG);
    ck_assert_msg(d.nerrors == 1 &&
                      has_msg(&d, "p.yaml:1:1: error: ", "missing required key 'caps'"),
                  "%s", all_msgs(&d));
    cr_diag_free(&d);
}
END_TEST

/* One bad profile each: the exact position and a piece of the message. */
static const struct {
    const char *text;
    const char *where; /* "p.yaml:L:C: error: " */
    const char *what;
} bad[] = {
    {"duration: soon\n" TAIL, "p.yaml:1:11: error: ", "invalid duration 'soon'"},
    {"duration: 10s\nspeed: 3\n" TAIL, "p.yaml:2:1: error: ", "unknown key 'speed'"},
    {"duration: 10s\ncaps: {rate: 10/s, conections: 5}\n" TAIL,
     "p.yaml:2:20: error: ", "unknown key 'conections' (did you mean 'connections'?)"},
    {"duration: 10s\narrivals: bursty\n" TAIL,
     "p.yaml:2:11: error: ", "'arrivals' must be one of uniform, poisson"},
    {"duration: 10s\n"
     "target: {address: 127.0.0.1, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n"
     "tenants: {list: [{name: a, baseline: 1/s}]}\n",
     "p.yaml:2:19: error: ", "missing port"},
    {"duration: 10s\n"
     "target: {address: 127.0.0.1:8443}\n"
     "caps: {rate: 10/s, connections: 5}\n"
     "tenants: {list: [{name: a, baseline: 1/s}]}\n",
     "p.yaml:2:9: error: ", "missing 'ca'"},
    {"duration: 10s\n"
     "target: {address: 127.0.0.1:8443, insecure: true, http2: 120%}\n"
     "caps: {rate: 10/s, connections: 5}\n"
     "tenants: {list: [{name: a, baseline: 1/s}]}\n",
     "p.yaml:2:58: error: ", "'http2' must be a share"},
    {"duration: 10s\nclient: {on_refusal: maybe}\n" TAIL,
     "p.yaml:2:22: error: ", "'on_refusal' must be one of obey_retry_after, retry_now, give_up"},
    {"duration: 10s\nclient: {requests_per_connection: 0}\n" TAIL,
     "p.yaml:2:35: error: ", "must be an integer between 1 and 1000000"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - {name: a, baseline: unlimited}\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:4:27: error: ", "'baseline' must be a rate above zero"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - {name: a, baseline: 1/s}\n"
     "    - {name: a, baseline: 2/s}\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:5:14: error: ", "duplicate tenant 'a' (first defined at 4:14)"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - name: a\n"
     "      baseline: 1/s\n"
     "      requests:\n"
     "        - {method: 'G T', path: /x}\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:7:20: error: ", "'method' must be an HTTP token"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - name: a\n"
     "      baseline: 1/s\n"
     "      requests:\n"
     "        - {path: nope}\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:7:18: error: ", "'path' must start with '/'"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - name: a\n"
     "      baseline: 1/s\n"
     "      requests:\n"
     "        - {path: /x, headers: {Host: evil.example}}\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:7:32: error: ", "header 'Host' is set by corral-replay itself"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - name: a\n"
     "      baseline: 1/s\n"
     "      requests:\n"
     "        - {path: /x, headers: {x-tenant-id: b}}\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:7:32: error: ", "header 'x-tenant-id' is set by corral-replay itself"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - name: a\n"
     "      baseline: 1/s\n"
     "      requests:\n"
     "        - {path: /x, headers: [accept]}\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:7:31: error: ", "'headers' must be a mapping"},
    {"duration: 10s\n"
     "tenants:\n"
     "  list:\n"
     "    - name: a\n"
     "      baseline: 1/s\n"
     "      requests: []\n"
     "target: {address: 127.0.0.1:8443, insecure: true}\n"
     "caps: {rate: 10/s, connections: 5}\n",
     "p.yaml:6:17: error: ", "'requests' must have at least 1 entry"},
    {"duration: 10s\nevents:\n  - {at: 1s, tenant: zz, factor: 3}\n" TAIL,
     "p.yaml:3:22: error: ", "event for tenant 'zz', which is not in tenants.list"},
    {"duration: 10s\nevents:\n  - {at: 1s, tenant: a}\n" TAIL,
     "p.yaml:3:5: error: ", "missing required key 'factor'"},
    {"duration: 10s\nevents:\n  - {at: 1s, tenant: a, factor: lots}\n" TAIL,
     "p.yaml:3:33: error: ", "'factor' must be a multiple of the baseline"},
    {"duration: 10s\nevents:\n  - {tenant: a, factor: 2}\n" TAIL,
     "p.yaml:3:5: error: ", "missing required key 'at'"},
    {"duration: 10s\nphases:\n  - {name: x, start: 5s, end: 2s}\n" TAIL,
     "p.yaml:3:31: error: ", "a phase must end after it starts"},
    {"duration: 10s\nphases:\n  - {name: x, start: 5s, end: 20s}\n" TAIL,
     "p.yaml:3:31: error: ", "the phase ends after the run"},
    {"duration: 10s\ncaps: [1]\n" TAIL, "p.yaml:2:7: error: ", "'caps' must be a mapping"},
    {"duration: 10s\ncaps: {rate: 20000000/s, connections: 5}\n" TAIL,
     "p.yaml:2:14: error: ", "'rate' must be at most 10000000/s"},
    {"duration: 10s\n  bad: indent\n" TAIL, "p.yaml:2:6: error: ", "syntax error"},
    {"", "p.yaml:1:1: error: ", "empty"},
};

START_TEST(bad_profile)
{
    struct cr_diag d = load_bad(bad[_i].text, 0);

    ck_assert_msg(has_msg(&d, bad[_i].where, bad[_i].what), "case %d: expected %s...%s, got:%s", _i,
                  bad[_i].where, bad[_i].what, all_msgs(&d));
    cr_diag_free(&d);
}
END_TEST

/* Every problem is reported, not only the first, and top to bottom. */
START_TEST(every_error_is_reported)
{
    struct cr_diag d = load_bad("duration: 1 hour\n"                          /* 1 */
                                "target: {address: 127.0.0.1:8443}\n"         /* 2 */
                                "caps: {rate: 10/s}\n"                        /* 3 */
                                "tenants:\n"                                  /* 4 */
                                "  list:\n"                                   /* 5 */
                                "    - {name: a, baseline: fast}\n"           /* 6 */
                                "events: [{at: 1s, tenant: b, factor: 2}]\n", /* 7 */
                                0);

    ck_assert_msg(d.nerrors == 5, "%s", all_msgs(&d));
    ck_assert_msg(strncmp(d.msgs[0], "p.yaml:1:11: error: ", 20) == 0 &&
                      strncmp(d.msgs[1], "p.yaml:2:9: error: ", 19) == 0 &&
                      strncmp(d.msgs[2], "p.yaml:3:7: error: ", 19) == 0 &&
                      strncmp(d.msgs[3], "p.yaml:6:27: error: ", 20) == 0 &&
                      strncmp(d.msgs[4], "p.yaml:7:27: error: ", 20) == 0,
                  "%s", all_msgs(&d));
    cr_diag_free(&d);
}
END_TEST

/* The loader's document limits hold for profiles too (cfgload.h): an alias
 * bomb and deep nesting are refused at their place, aliases under the
 * budget are followed. */
START_TEST(alias_bombs_and_deep_nesting_are_refused)
{
    char text[2048], opens[80], closes[80];
    struct cr_diag d = load_bad("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                                "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                                "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                                "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                                "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                                "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                                "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
                                "duration: 10s\n" TAIL,
                                0);
    ck_assert_msg(d.nmsgs == 1 && has_msg(&d, "p.yaml:6:36: error: ",
                                          "alias '*e' makes more than 1000000 values"),
                  "%s", all_msgs(&d));
    cr_diag_free(&d);

    memset(opens, '[', 64);
    memset(closes, ']', 64);
    snprintf(text, sizeof(text), "duration: 10s\nx: %.64s%.64s\n" TAIL, opens, closes);
    d = load_bad(text, 0);
    ck_assert_msg(d.nmsgs == 1 &&
                      has_msg(&d, "p.yaml:2:67: error: ", "collections nested more than 64 deep"),
                  "%s", all_msgs(&d));
    cr_diag_free(&d);

    struct rp_profile *p =
        load_ok("duration: 10s\n"
                "target: {address: 127.0.0.1:8443, sni: edge.test, insecure: true}\n"
                "caps: {rate: 1000/s, connections: 100}\n"
                "tenants:\n"
                "  list:\n"
                "    - {name: a, baseline: &b 10/s}\n"
                "    - {name: b, baseline: *b}\n");
    ck_assert_uint_eq(p->tenants.nlist, 2);
    ck_assert(p->tenants.list[1].baseline == 10.0);
    rp_profile_free(p);
}
END_TEST

START_TEST(file_errors)
{
    struct rp_profile *p = NULL;
    struct cr_diag d;
    char path[] = "/tmp/check_replay.XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_eq(rp_profile_load("/nonexistent/p.yaml", 0, &p, &d), CR_ECONFIG);
    ck_assert_ptr_null(p);
    ck_assert_msg(has_msg(&d, "/nonexistent/p.yaml: error: ", "cannot read the profile"), "%s",
                  all_msgs(&d));
    cr_diag_free(&d);

    /* a file: relative ca paths are resolved against its directory */
    ck_assert_int_ge(fd, 0);
    const char *text = "duration: 1s\n"
                       "target: {address: 127.0.0.1:8443, ca: no-such-ca.crt}\n"
                       "caps: {rate: 10/s, connections: 5}\n"
                       "tenants: {list: [{name: a, baseline: 1/s}]}\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    ck_assert_int_eq(rp_profile_load(path, 0, &p, &d), CR_ECONFIG);
    char where[64];
    snprintf(where, sizeof(where), "%s:2:39: error: ", path);
    ck_assert_msg(has_msg(&d, where, "/tmp/no-such-ca.crt"), "%s", all_msgs(&d));
    cr_diag_free(&d);
    unlink(path);
}
END_TEST

/* ------------------------------------------------------------ curve */

#define S(x) ((uint64_t)((x)*1e6)) /* seconds to microseconds */

static struct rp_profile *curve_profile(const char *events, const char *caps, const char *arrivals)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "duration: 30s\n"
             "arrivals: %s\n"
             "target: {address: 127.0.0.1:8443, insecure: true}\n"
             "caps: %s\n"
             "tenants:\n"
             "  list:\n"
             "    - {name: a, baseline: 10/s}\n"
             "    - {name: b, baseline: 100/s}\n"
             "events: %s\n",
             arrivals, caps, events);
    return load_ok(text);
}

/* baseline, linear ramp to N x, hold, then the excess halves every
 * half-life; the other tenant is untouched. */
START_TEST(curve_shape)
{
    struct rp_profile *p =
        curve_profile("[{at: 5s, tenant: a, factor: 11, ramp: 2s, hold: 1s, half_life: 2s}]",
                      "{rate: 100000/s, connections: 10}", "uniform");

    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(0)), 10.0, 1e-9);
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(4.999)), 10.0, 1e-9);
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(5)), 10.0, 1e-6);    /* ramp starts */
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(6)), 60.0, 1e-6);    /* half way: 1 + 10/2 */
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(7)), 110.0, 1e-6);   /* peak: 11 x */
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(7.9)), 110.0, 1e-6); /* hold */
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(10)), 60.0, 1e-6);   /* one half-life */
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(12)), 35.0, 1e-6);   /* two */
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(28)), 10.0 + 100.0 / 1024.0, 1e-6);
    for (double t = 0; t < 30; t += 0.5)
        ck_assert_double_eq_tol(rp_curve_rate(p, 1, S(t)), 100.0, 1e-9);
    rp_profile_free(p);

    /* ramp 0 is a step; half_life 0 holds to the end; a factor below 1 is
     * a dip; two events of one tenant add up */
    p = curve_profile("[{at: 2s, tenant: a, factor: 3},"
                      " {at: 4s, tenant: a, factor: 0.5},"
                      " {at: 6s, tenant: b, factor: 0}]",
                      "{rate: 100000/s, connections: 10}", "uniform");
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(1.999)), 10.0, 1e-9);
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(2)), 30.0, 1e-9);
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(29)), 25.0, 1e-9); /* 1 + 2 - 0.5 */
    ck_assert_double_eq_tol(rp_curve_rate(p, 1, S(6)), 0.0, 1e-9);
    rp_profile_free(p);
}
END_TEST

/* Over the cap, every tenant is scaled by the same factor. */
START_TEST(curve_cap)
{
    struct rp_profile *p = curve_profile("[{at: 5s, tenant: a, factor: 100}]",
                                         "{rate: 500/s, connections: 10}", "uniform");

    ck_assert_double_eq_tol(rp_curve_raw(p, 0, S(6)), 1000.0, 1e-9);
    /* 1000 + 100 wanted, 500 allowed: both scaled by 500/1100 */
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(6)), 1000.0 * 500.0 / 1100.0, 1e-6);
    ck_assert_double_eq_tol(rp_curve_rate(p, 1, S(6)), 100.0 * 500.0 / 1100.0, 1e-6);
    ck_assert_double_eq_tol(rp_curve_rate(p, 0, S(6)) + rp_curve_rate(p, 1, S(6)), 500.0, 1e-6);
    /* under the cap nothing changes */
    ck_assert_double_eq_tol(rp_curve_rate(p, 1, S(1)), 100.0, 1e-9);
    rp_profile_free(p);
}
END_TEST

/* Counts per tenant per second of the whole schedule. */
static void plan(struct rp_sched *s, uint64_t step_us, uint64_t end_us, long counts[][2],
                 uint64_t *last_at)
{
    struct rp_arrival a;
    uint64_t prev = 0;

    for (uint64_t now = 0; now <= end_us; now += step_us) {
        while (rp_sched_next(s, now, &a) == 1) {
            ck_assert_uint_le(a.at_us, now);  /* never early */
            ck_assert_uint_ge(a.at_us, prev); /* in time order */
            prev = a.at_us;
            counts[a.at_us / 1000000][a.tenant]++;
        }
    }
    if (last_at != NULL)
        *last_at = prev;
}

/* Uniform arrivals follow the curve: exactly baseline per second before
 * the event, the integral of the curve per second after it. */
START_TEST(schedule_follows_the_curve)
{
    struct rp_profile *p =
        curve_profile("[{at: 5s, tenant: a, factor: 11, ramp: 2s, hold: 1s, half_life: 2s}]",
                      "{rate: 100000/s, connections: 10}", "uniform");
    struct rp_sched *s = rp_sched_new(p);
    long counts[31][2] = {{0}};

    plan(s, 1000, S(31), counts, NULL);
    ck_assert(rp_sched_done(s));
    for (int sec = 0; sec < 30; sec++) {
        /* the expected count: the curve's integral over [sec, sec+1) */
        double want = 0;
        for (int k = 0; k < 1000; k++)
            want += rp_curve_rate(p, 0, S(sec + (k + 0.5) / 1000.0)) / 1000.0;
        ck_assert_msg(fabs((double)counts[sec][0] - want) <= 1.0,
                      "second %d: %ld arrivals, want %.1f", sec, counts[sec][0], want);
        ck_assert_int_eq(counts[sec][1], 100);
        if (sec < 5)
            ck_assert_int_eq(counts[sec][0], 10);
    }
    ck_assert_int_ge(counts[7][0], 109);                /* the peak */
    ck_assert_int_eq(counts[30][0] + counts[30][1], 0); /* nothing after the end */
    rp_sched_free(s);
    rp_profile_free(p);
}
END_TEST

/* The schedule is open-loop: the same arrivals at the same intended times
 * however late or irregularly the caller asks. */
START_TEST(schedule_is_open_loop)
{
    struct rp_profile *p = curve_profile("[{at: 1s, tenant: b, factor: 20, ramp: 500ms}]",
                                         "{rate: 100000/s, connections: 10}", "poisson");
    struct rp_sched *fast = rp_sched_new(p), *slow = rp_sched_new(p);
    struct rp_arrival a, b;
    size_t n = 0;

    /* one asks every 100 us, the other once per 750 ms */
    for (uint64_t now = 0; now <= S(3); now += 100) {
        while (rp_sched_next(fast, now, &a) == 1) {
            if (rp_sched_next(slow, (now / 750000 + 1) * 750000, &b) != 1)
                ck_abort_msg("the slow caller lost an arrival");
            ck_assert_uint_eq(a.at_us, b.at_us);
            ck_assert_uint_eq(a.tenant, b.tenant);
            n++;
        }
    }
    ck_assert_uint_gt(n, 1000);
    rp_sched_free(fast);
    rp_sched_free(slow);
    rp_profile_free(p);
}
END_TEST

/* Arrivals under the cap add up to the cap, shared in proportion. */
START_TEST(schedule_respects_the_cap)
{
    struct rp_profile *p = curve_profile("[{at: 5s, tenant: a, factor: 100}]",
                                         "{rate: 500/s, connections: 10}", "uniform");
    struct rp_sched *s = rp_sched_new(p);
    long counts[31][2] = {{0}};

    plan(s, 5000, S(30), counts, NULL);
    for (int sec = 6; sec < 30; sec++) {
        ck_assert_int_le(counts[sec][0] + counts[sec][1], 501);
        ck_assert_int_ge(counts[sec][0] + counts[sec][1], 499);
        ck_assert_int_ge(counts[sec][0], 453); /* 1000/1100 of 500 = 454.5 */
        ck_assert_int_le(counts[sec][0], 456);
    }
    rp_sched_free(s);
    rp_profile_free(p);
}
END_TEST

/* Uniform arrivals are evenly spaced; Poisson ones have the right mean,
 * exponential gaps, and the same seed gives the same plan. */
START_TEST(schedule_spacing)
{
    struct rp_profile *p = curve_profile("[]", "{rate: 100000/s, connections: 10}", "uniform");
    struct rp_sched *s = rp_sched_new(p);
    struct rp_arrival a;
    uint64_t prev_a = 0;
    int na = 0;

    while (rp_sched_next(s, S(2), &a) == 1) {
        if (a.tenant != 0)
            continue;
        /* 10/s: the first at 50 ms, then every 100 ms */
        ck_assert_uint_eq(a.at_us, na == 0 ? 50000 : prev_a + 100000);
        prev_a = a.at_us;
        na++;
    }
    ck_assert_int_eq(na, 20);
    /* next: b's (100/s) at 2.005 s, not visible before that */
    ck_assert_uint_eq(rp_sched_peek(s, S(2.004)), UINT64_MAX);
    ck_assert_uint_eq(rp_sched_peek(s, S(2.1)), 2005000);
    ck_assert_int_eq(rp_sched_next(s, S(2.004), &a), 0);
    rp_sched_free(s);
    rp_profile_free(p);

    p = curve_profile("[]", "{rate: 100000/s, connections: 10}", "poisson");
    struct rp_sched *s1 = rp_sched_new(p), *s2 = rp_sched_new(p);
    struct rp_arrival b;
    long n = 0, short_gaps = 0;
    uint64_t prev = 0;
    while (rp_sched_next(s1, S(30), &a) == 1) {
        ck_assert_int_eq(rp_sched_next(s2, S(30), &b), 1);
        ck_assert_uint_eq(a.at_us, b.at_us);
        if (a.tenant != 1)
            continue;
        /* gaps of an exponential with mean 10 ms: P(gap < 5 ms) = 39% */
        if (n > 0 && a.at_us - prev < 5000)
            short_gaps++;
        prev = a.at_us;
        n++;
    }
    ck_assert_msg(n > 2850 && n < 3150, "%ld arrivals of a 100/s Poisson process in 30 s", n);
    ck_assert_msg(short_gaps > n * 35 / 100 && short_gaps < n * 44 / 100, "%ld of %ld gaps < 5ms",
                  short_gaps, n);
    rp_sched_free(s1);
    rp_sched_free(s2);
    rp_profile_free(p);
}
END_TEST

START_TEST(templates_by_weight)
{
    struct rp_profile *p = load_ok("duration: 100s\n"
                                   "target: {address: 127.0.0.1:8443, insecure: true}\n"
                                   "caps: {rate: 1000/s, connections: 5}\n"
                                   "tenants:\n"
                                   "  list:\n"
                                   "    - name: a\n"
                                   "      baseline: 100/s\n"
                                   "      requests: [{path: /x, weight: 3}, {path: /y}]\n");
    struct rp_sched *s = rp_sched_new(p);
    struct rp_arrival a;
    long n[2] = {0, 0};

    while (rp_sched_next(s, S(100), &a) == 1)
        n[a.tpl]++;
    ck_assert_int_eq(n[0] + n[1], 10000);
    ck_assert_msg(n[0] > 7300 && n[0] < 7700, "weight 3 of 4: %ld of 10000", n[0]);
    rp_sched_free(s);
    rp_profile_free(p);
}
END_TEST

/* ------------------------------------------------------------ access log */

/* corral's own access-log writer (log.c) and the replay's reader agree on
 * every line, however long the client made its strings: a path near
 * http.max_uri (8k by default, up to 1m), control characters and quotes
 * that expand when escaped. A line that did not fit in the writer's
 * buffer used to be cut mid-string (invalid JSON, and out-of-bounds
 * pointer arithmetic: found by tests/fuzz/fuzz_h1). */
START_TEST(log_writer_lines_always_parse)
{
    char path[] = "/tmp/check_replay_acc.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct cr_cfg_log cfg = {.error = "stderr", .level = CR_LOG_ERROR, .access = path};
    ck_assert_int_eq(cr_log_open(&cfg), 0);

    size_t big = 1u << 20;
    char *longpath = malloc(big + 1), *ctl = malloc(5001), *quotes = malloc(3001);
    ck_assert(longpath && ctl && quotes);
    longpath[0] = '/';
    memset(longpath + 1, 'a', big - 1);
    longpath[big] = '\0';
    memset(ctl, 1, 5000); /* each byte becomes \u0001 */
    ctl[5000] = '\0';
    memset(quotes, '"', 3000);
    quotes[3000] = '\0';
    struct cr_access a = {.worker = 1,
                          .tenant = quotes,
                          .client = "198.51.100.7:50000",
                          .protocol = "HTTP/1.1",
                          .method = "GET",
                          .authority = ctl,
                          .path = longpath,
                          .status = 414,
                          .queue_ms = -1,
                          .upstream_ms = -1,
                          .total_ms = 1.5,
                          .upstream_conn = -1,
                          .request_id = ctl,
                          .reason = quotes};
    cr_log_access(&a);
    a.path = "/v1/ok";
    cr_log_access(&a);
    a.tenant = "gold";
    a.authority = "api.example.com";
    a.request_id = "abc";
    a.reason = NULL;
    cr_log_access(&a);

    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL, err[160];
    size_t cap = 0, col = 0;
    ssize_t len;
    int lines = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        struct rp_log_line ln;
        char *buf = malloc((size_t)len + 1);
        ck_assert_ptr_nonnull(buf);
        len--; /* the newline */
        ck_assert_msg(rp_accesslog_parse_line(line, (size_t)len, buf, (size_t)len + 1, &ln, err,
                                              sizeof(err), &col) == 0,
                      "line %d: %s at column %zu", lines + 1, err, col);
        ck_assert_str_eq(ln.method, "GET");
        ck_assert(ln.path[0] == '/');
        if (lines == 1)
            ck_assert_str_eq(ln.path, "/v1/ok");
        if (lines == 2) {
            ck_assert_str_eq(ln.path, "/v1/ok");
            ck_assert_str_eq(ln.tenant, "gold");
        }
        free(buf);
        lines++;
    }
    ck_assert_int_eq(lines, 3);
    free(line);
    fclose(f);
    unlink(path);
    free(longpath);
    free(ctl);
    free(quotes);
}
END_TEST

/* A line as corral's log.c writes it. */
#define LINE(time, tenant, method, path, bytes_in, total_ms)                                       \
    "{\"time\":\"" time "\",\"worker\":1,\"tenant\":" tenant ",\"client\":\"127.0.0.1:5000\","     \
    "\"protocol\":\"HTTP/2\",\"method\":" method ",\"authority\":\"edge.test\",\"path\":" path     \
    ",\"status\":200,\"bytes_in\":" bytes_in ",\"bytes_out\":85,\"queue_ms\":0.000,"               \
    "\"upstream_ms\":0.181,\"total_ms\":" total_ms ",\"upstream_conn\":1,\"request_id\":"          \
    "\"abc\",\"reason\":null}"

static int parse(const char *line, struct rp_log_line *out, char *buf, char *err, size_t *col)
{
    return rp_accesslog_parse_line(line, strlen(line), buf, strlen(line) + 1, out, err, 160, col);
}

START_TEST(log_line_fields)
{
    const char *l = LINE("2024-05-01T12:00:01.250Z", "\"gold\"", "\"POST\"",
                         "\"/api/v1/open?x=\\\"y\\\"\\u00e9\"", "512", "250.400");
    char buf[1024], err[160];
    size_t col = 0;
    struct rp_log_line ln;

    ck_assert_msg(parse(l, &ln, buf, err, &col) == 0, "%s at %zu", err, col);
    ck_assert_str_eq(ln.tenant, "gold");
    ck_assert_str_eq(ln.method, "POST");
    ck_assert_str_eq(ln.path, "/api/v1/open?x=\"y\"\xc3\xa9"); /* escapes decoded */
    ck_assert_uint_eq(ln.body, 512);
    /* it started total_ms before it ended */
    ck_assert_int_eq(ln.start_ms, 1714564801250LL - 250);

    /* a null tenant is the default one; a null total counts as 0 */
    l = LINE("2024-05-01T12:00:01Z", "null", "\"GET\"", "\"/\"", "0", "null");
    ck_assert_int_eq(parse(l, &ln, buf, err, &col), 0);
    ck_assert_str_eq(ln.tenant, "default");
    ck_assert_int_eq(ln.start_ms, 1714564801000LL);

    /* a connection that sent nothing usable: no request */
    l = LINE("2024-05-01T12:00:01.000+02:00", "null", "null", "null", "0", "3.000");
    ck_assert_int_eq(parse(l, &ln, buf, err, &col), 0);
    ck_assert_ptr_null(ln.method);
    ck_assert_int_eq(ln.start_ms, 1714564801000LL - 2 * 3600000 - 3);
}
END_TEST

static const struct {
    const char *line;
    size_t col;
    const char *what;
} bad_lines[] = {
    {"not json", 1, "expected a JSON object"},
    {"{\"time\":\"2024-05-01T12:00:01Z\",\"method\":\"GET\"", 46, "expected ',' or '}'"},
    {"{\"time\":\"yesterday\"}", 9, "'time' must be an RFC 3339 time"},
    {"{\"method\":\"GET\",\"path\":\"/\"}", 1, "no \"time\" field"},
    {"{\"time\":\"2024-05-01T12:00:01Z\",\"path\":\"x\"}", 39, "'path' must start with '/'"},
    {"{\"time\":\"2024-05-01T12:00:01Z\",\"method\":\"G T\"}", 41, "without spaces"},
    {"{\"time\":\"2024-05-01T12:00:01Z\",\"bytes_in\":-3}", 43, "'bytes_in' must be a byte count"},
    {"{\"time\":\"2024-05-01T12:00:01Z\",\"tenant\":{\"a\":1}}", 41, "nested objects"},
    {"{\"time\":\"2024-05-01T12:00:01Z\",\"path\":\"/\\q\"}", 41, "bad escape"},
    {"{\"time\":\"2024-05-01T12:00:01Z\"} trailing", 33, "unexpected text"},
};

START_TEST(log_line_errors)
{
    char buf[1024], err[160];
    size_t col = 0;
    struct rp_log_line ln;

    ck_assert_int_eq(parse(bad_lines[_i].line, &ln, buf, err, &col), CR_EINVAL);
    ck_assert_msg(col == bad_lines[_i].col && strstr(err, bad_lines[_i].what) != NULL,
                  "case %d: got column %zu '%s', want column %zu '%s'", _i, col, err,
                  bad_lines[_i].col, bad_lines[_i].what);
}
END_TEST

static char *write_tmp(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/check_replay_log.XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Requests come out in start order, at their original spacing divided by
 * the speed-up, with their tenant, method, path and body. */
START_TEST(log_replay_schedule)
{
    const char *text =
        LINE("2024-05-01T12:00:03.000Z", "\"b\"", "\"GET\"", "\"/third\"", "0", "0.000") "\n" LINE(
            "2024-05-01T12:00:01.500Z", "\"a\"", "\"POST\"", "\"/first\"", "10",
            "500.000") "\n"
                       "\n" LINE("2024-05-01T12:00:02.000Z", "null", "null", "null", "0",
                                 "1.000") "\n" LINE("2024-05-01T12:00:02.000Z", "\"a\"", "\"GET\"",
                                                    "\"/second\"", "0",
                                                    "0.000") "\n" LINE("2024-05-01T12:01:00.000Z",
                                                                       "\"a\"", "\"GET\"",
                                                                       "\"/too-late\"", "0",
                                                                       "0.000") "\n";
    char *path = write_tmp(text);
    struct rp_accesslog *l = NULL;
    struct cr_diag d;
    size_t skipped, dropped;
    const char *const *names;

    /* 4x faster; the run lasts 10 s: the request 59 s in (14.75 s) is dropped */
    ck_assert_msg(rp_accesslog_load(path, 4.0, 10000, &l, &d) == 0, "%s", all_msgs(&d));
    cr_diag_free(&d);
    ck_assert_uint_eq(rp_accesslog_count(l, &skipped, &dropped), 3);
    ck_assert_uint_eq(skipped, 1);
    ck_assert_uint_eq(dropped, 1);
    ck_assert_uint_eq(rp_accesslog_tenants(l, &names), 2); /* b, a: the skipped line has none */
    ck_assert_str_eq(names[0], "b");
    ck_assert_str_eq(names[1], "a");

    struct rp_source src = rp_accesslog_source(l);
    struct rp_spec s;
    /* starts: /first 12:00:01.000, /second 02.000, /third 03.000 */
    ck_assert_uint_eq(src.peek(src.ctx, 1000000), 0);
    ck_assert_int_eq(src.next(src.ctx, 0, &s), 1);
    ck_assert_str_eq(s.path, "/first");
    ck_assert_str_eq(s.method, "POST");
    ck_assert_uint_eq(s.body, 10);
    ck_assert_uint_eq(s.tenant, 1);
    ck_assert_int_eq(src.next(src.ctx, 249999, &s), 0); /* 1 s / 4 = 250 ms later */
    ck_assert_uint_eq(src.peek(src.ctx, 249999), UINT64_MAX);
    ck_assert_uint_eq(src.peek(src.ctx, 300000), 250000);
    ck_assert_int_eq(src.next(src.ctx, 250000, &s), 1);
    ck_assert_str_eq(s.path, "/second");
    ck_assert_uint_eq(s.at_us, 250000);
    ck_assert(!src.done(src.ctx));
    ck_assert_int_eq(src.next(src.ctx, 10000000, &s), 1);
    ck_assert_str_eq(s.path, "/third");
    ck_assert_uint_eq(s.at_us, 500000);
    ck_assert_uint_eq(s.tenant, 0);
    ck_assert(src.done(src.ctx));
    ck_assert_uint_eq(rp_accesslog_span_us(l), 500000);
    rp_accesslog_free(l);
    unlink(path);
}
END_TEST

/* Every bad line is reported at FILE:LINE:COL; nothing is replayed. */
START_TEST(log_errors_are_positioned)
{
    const char *text =
        LINE("2024-05-01T12:00:03.000Z", "\"b\"", "\"GET\"", "\"/\"", "0",
             "0") "\n"
                  "{\"time\":\"2024-05-01T12:00:01Z\",\"path\":\"x\",\"method\":\"GET\"}\n"
                  "garbage\n";
    char *path = write_tmp(text), where[96];
    struct rp_accesslog *l = (struct rp_accesslog *)1;
    struct cr_diag d;

    ck_assert_int_eq(rp_accesslog_load(path, 1.0, 10000, &l, &d), CR_EINVAL);
    ck_assert_ptr_null(l);
    ck_assert_uint_eq(d.nerrors, 2);
    snprintf(where, sizeof(where), "%s:2:39: error: ", path);
    ck_assert_msg(has_msg(&d, where, "'path' must start with '/'"), "%s", all_msgs(&d));
    snprintf(where, sizeof(where), "%s:3:1: error: ", path);
    ck_assert_msg(has_msg(&d, where, "expected a JSON object"), "%s", all_msgs(&d));
    cr_diag_free(&d);
    unlink(path);

    /* no requests at all */
    path = write_tmp(LINE("2024-05-01T12:00:03.000Z", "null", "null", "null", "0", "0") "\n");
    ck_assert_int_eq(rp_accesslog_load(path, 1.0, 10000, &l, &d), CR_EINVAL);
    ck_assert_msg(has_msg(&d, path, "no requests in the access log"), "%s", all_msgs(&d));
    cr_diag_free(&d);
    unlink(path);

    ck_assert_int_eq(rp_accesslog_load("/nonexistent.log", 1.0, 10000, &l, &d), CR_EIO);
    ck_assert_msg(has_msg(&d, "/nonexistent.log: error: ", "cannot read"), "%s", all_msgs(&d));
    cr_diag_free(&d);
}
END_TEST

/* ------------------------------------------------------------ suite */

/* target.addresses spreads one profile over several edges: round robin
 * or a hash per connection, each address once, 'address' as a list of one. */
START_TEST(target_addresses)
{
    struct rp_profile *p;
    struct cr_diag d;
    size_t hits[3] = {0, 0, 0}, again;

    p = load_ok("target:\n"
                "  addresses: [10.0.0.1:443, 10.0.0.2:443, 10.0.0.3:443]\n"
                "  sni: edge.test\n"
                "  insecure: true\n"
                "duration: 10s\ncaps: {rate: 1000/s, connections: 100}\n"
                "tenants: {list: [{name: a, baseline: 10/s}]}\n");
    ck_assert_uint_eq(p->target.naddrs, 3);
    ck_assert_str_eq(p->target.addrs[2].text, "10.0.0.3:443");
    ck_assert_str_eq(p->target.addr.text, "10.0.0.1:443");
    ck_assert_int_eq(p->target.spread, RP_SPREAD_ROUND_ROBIN);
    for (uint64_t k = 1; k <= 7; k++)
        ck_assert_uint_eq(rp_profile_pick(&p->target, k, p->seed), (size_t)((k - 1) % 3));
    rp_profile_free(p);

    p = load_ok("target:\n"
                "  addresses: [10.0.0.1:443, 10.0.0.2:443, 10.0.0.3:443]\n"
                "  spread: hash\n"
                "  sni: edge.test\n"
                "  insecure: true\n"
                "seed: 7\n"
                "duration: 10s\ncaps: {rate: 1000/s, connections: 100}\n"
                "tenants: {list: [{name: a, baseline: 10/s}]}\n");
    ck_assert_int_eq(p->target.spread, RP_SPREAD_HASH);
    for (uint64_t k = 1; k <= 3000; k++)
        hits[rp_profile_pick(&p->target, k, p->seed)]++;
    for (size_t i = 0; i < 3; i++) /* about a third each, as ECMP */
        ck_assert_msg(hits[i] > 850 && hits[i] < 1150, "address %zu got %zu of 3000", i, hits[i]);
    again = rp_profile_pick(&p->target, 42, p->seed);
    ck_assert_uint_eq(rp_profile_pick(&p->target, 42, p->seed), again);
    rp_profile_free(p);

    /* one address is a list of one */
    p = load_ok("duration: 10s\n" TAIL);
    ck_assert_uint_eq(p->target.naddrs, 1);
    ck_assert_str_eq(p->target.addrs[0].text, "127.0.0.1:8443");
    ck_assert_uint_eq(rp_profile_pick(&p->target, 5, p->seed), 0);
    rp_profile_free(p);

    d = load_bad("target: {address: 10.0.0.1:443, addresses: [10.0.0.2:443], insecure: true}\n"
                 "duration: 10s\ncaps: {rate: 1000/s, connections: 100}\n"
                 "tenants: {list: [{name: a, baseline: 10/s}]}\n",
                 0);
    ck_assert_msg(has_msg(&d, "p.yaml:1:", "not both"), "%s", all_msgs(&d));
    cr_diag_free(&d);
    d = load_bad("target: {insecure: true}\n"
                 "duration: 10s\ncaps: {rate: 1000/s, connections: 100}\n"
                 "tenants: {list: [{name: a, baseline: 10/s}]}\n",
                 0);
    ck_assert_msg(has_msg(&d, "p.yaml:1:", "missing 'address'"), "%s", all_msgs(&d));
    cr_diag_free(&d);
    d = load_bad("target:\n"
                 "  addresses: [10.0.0.1:443, 10.0.0.1:443]\n"
                 "  insecure: true\n"
                 "duration: 10s\ncaps: {rate: 1000/s, connections: 100}\n"
                 "tenants: {list: [{name: a, baseline: 10/s}]}\n",
                 0);
    ck_assert_msg(has_msg(&d, "p.yaml:2:29:", "twice"), "%s", all_msgs(&d));
    cr_diag_free(&d);
    d = load_bad("target: {addresses: [], insecure: true}\n"
                 "duration: 10s\ncaps: {rate: 1000/s, connections: 100}\n"
                 "tenants: {list: [{name: a, baseline: 10/s}]}\n",
                 0);
    ck_assert_msg(has_msg(&d, "p.yaml:1:", "at least 1"), "%s", all_msgs(&d));
    cr_diag_free(&d);
    d = load_bad("target: {addresses: [10.0.0.1:443], spread: random, insecure: true}\n"
                 "duration: 10s\ncaps: {rate: 1000/s, connections: 100}\n"
                 "tenants: {list: [{name: a, baseline: 10/s}]}\n",
                 0);
    ck_assert_msg(has_msg(&d, "p.yaml:1:", "spread"), "%s", all_msgs(&d));
    cr_diag_free(&d);
}
END_TEST

static Suite *replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("profile");

    tcase_add_test(tc, full_profile);
    tcase_add_test(tc, defaults_and_derived_phases);
    tcase_add_test(tc, unbounded_profiles_are_refused);
    tcase_add_loop_test(tc, bad_profile, 0, (int)CR_ARRAY_LEN(bad));
    tcase_add_test(tc, every_error_is_reported);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, alias_bombs_and_deep_nesting_are_refused);
    tcase_add_test(tc, target_addresses);
    suite_add_tcase(s, tc);

    tc = tcase_create("curve");
    tcase_add_test(tc, curve_shape);
    tcase_add_test(tc, curve_cap);
    tcase_add_test(tc, schedule_follows_the_curve);
    tcase_add_test(tc, schedule_is_open_loop);
    tcase_add_test(tc, schedule_respects_the_cap);
    tcase_add_test(tc, schedule_spacing);
    tcase_add_test(tc, templates_by_weight);
    suite_add_tcase(s, tc);

    tc = tcase_create("accesslog");
    tcase_add_test(tc, log_line_fields);
    tcase_add_test(tc, log_writer_lines_always_parse);
    tcase_add_loop_test(tc, log_line_errors, 0, (int)CR_ARRAY_LEN(bad_lines));
    tcase_add_test(tc, log_replay_schedule);
    tcase_add_test(tc, log_errors_are_positioned);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(replay_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
