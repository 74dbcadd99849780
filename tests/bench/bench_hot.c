/* bench_hot.c - micro-benchmarks of corral's hot paths, in memory.
 *
 * Each case runs one stage of the request path (or the whole path) N times
 * on the fixture of the unit tests (tests/unit/fixture.h): a worker whose
 * loop never runs, client connections without sockets, an upstream
 * connection over memory, a load balancer and a phone made of nghttp2
 * sessions. Only corral's own work is measured: building the input and
 * playing the peers happen outside the measured sections.
 *
 * Two ways to measure:
 *   default   wall clock: each case runs --runs times (after a warm-up),
 *             and its median ns per operation is printed;
 *   --count   one run per case, for `valgrind --tool=callgrind
 *             --collect-atstart=no`: the measured sections toggle
 *             callgrind's collection (CALLGRIND_TOGGLE_COLLECT), so the
 *             instruction total callgrind reports divided by ops is the
 *             instructions per operation, the same on every run and
 *             machine load. tools/bench does this for each case.
 *
 * Every case checks at the end that it did the work it claims (responses
 * received, requests dispatched) and exits 2 if not: a broken path must not
 * show up as a fast one.
 *
 * Output, one line per case:
 *   case NAME ops=N ns_per_op=X min=X max=X runs=R     (wall clock)
 *   case NAME ops=N                                    (--count) */
#include "ac_config.h"

#include <alloca.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_VALGRIND_CALLGRIND_H
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#endif

#include "admit.h"
#include "common.h"
#include "fixture.h"
#include "h1.h"
#include "h2.h"
#include "gate.h"
#include "request.h"
#include "tenant.h"
#include "upstream.h"

/* ------------------------------------------------------------ meter */

static bool count_mode; /* callgrind toggles instead of the clock */
static bool measuring;  /* false during the warm-up */
static uint64_t t_start, t_total, sections;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A measured section starts... */
static inline void on(void)
{
    if (!measuring)
        return;
    if (count_mode) {
        CALLGRIND_TOGGLE_COLLECT;
    } else {
        t_start = now_ns();
    }
}

/* ...and ends. */
static inline void off(void)
{
    if (!measuring)
        return;
    if (count_mode) {
        CALLGRIND_TOGGLE_COLLECT;
    } else {
        t_total += now_ns() - t_start;
    }
    sections++;
}

/* What an empty section costs on the clock, subtracted from the results. */
static double section_overhead_ns(void)
{
    double best = 1e9;
    bool was = measuring;
    measuring = true;
    for (int trial = 0; trial < 5; trial++) {
        t_total = sections = 0;
        for (int i = 0; i < 20000; i++) {
            on();
            off();
        }
        best = CR_MIN(best, (double)t_total / (double)sections);
    }
    measuring = was;
    t_total = sections = 0;
    return best;
}

static void fail(const char *name, const char *what)
{
    fprintf(stderr, "bench_hot: %s: %s: the result would be meaningless\n", name, what);
    exit(2);
}

/* ------------------------------------------------------------ inputs */

/* A phone app's API call: ten headers, about 500 bytes. */
static const char H1_HEAD[] =
    "GET /v1/users/8412/notifications?since=1700000000&limit=20 HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: ExampleApp/5.2.1 (iPhone; iOS 17.1; Scale/3.00)\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Authorization: Bearer "
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI4NDEyIiwiaWF0IjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLXNpZw\r\n"
    "X-Tenant-Id: gold\r\n"
    "X-App-Version: 5.2.1\r\n"
    "Cookie: session=4f2a9c1e7b3d; consent=1\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

/* The same call over HTTP/2. */
/* clang-format off */
static const char *const H2_REQ[] = {
    ":method", "GET",
    ":scheme", "https",
    ":authority", "api.example.com",
    ":path", "/v1/users/8412/notifications?since=1700000000&limit=20",
    "user-agent", "ExampleApp/5.2.1 (iPhone; iOS 17.1; Scale/3.00)",
    "accept", "application/json",
    "accept-encoding", "gzip, deflate, br",
    "accept-language", "en-US,en;q=0.9",
    "authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI4NDEyIiwiaWF0IjoxNzAwMDAwMDAwfQ"
                     ".c2lnbmF0dXJlLXNpZw",
    "x-tenant-id", "gold",
    "x-app-version", "5.2.1",
    "cookie", "session=4f2a9c1e7b3d; consent=1",
    NULL};
/* clang-format on */

#define LB_BODY 512 /* the load balancer's JSON answer */
#define UP_BATCH 16 /* requests multiplexed per upstream round trip */

/* A request as the HTTP/1.1 front end leaves it (the same headers). */
static struct cr_request *build_request(struct cr_conn *c, const struct cr_fe_ops *fe)
{
    struct cr_request *r = cr_request_new(c, fe, NULL, "HTTP/1.1");
    if (!r)
        fail("build_request", "out of memory");
    cr_request_set(r, &r->method, "GET", 3);
    cr_request_set(r, &r->path, H2_REQ[7], strlen(H2_REQ[7]));
    cr_request_add_header(r, "Host", 4, "api.example.com", 15);
    for (int i = 8; H2_REQ[i]; i += 2)
        cr_request_add_header(r, H2_REQ[i], strlen(H2_REQ[i]), H2_REQ[i + 1],
                              strlen(H2_REQ[i + 1]));
    cr_request_add_header(r, "Connection", 10, "keep-alive", 10);
    return r;
}

/* A front end for requests the benchmark holds itself: it takes the
 * response body as a client connection would. */
static uint64_t fe_ends;

static void fe_take(struct cr_request *r)
{
    size_t n = evbuffer_get_length(r->resp_body);
    evbuffer_drain(r->resp_body, n);
    cr_request_resp_consumed(r, n);
}

static void fe_end(struct cr_request *r)
{
    fe_take(r);
    fe_ends++;
}

static void fe_nop(struct cr_request *r)
{
}

static const struct cr_fe_ops bench_fe = {fe_nop, fe_take, fe_end, fe_nop};

/* The submit callback of the parsing cases: keeps the request. */
static struct cr_request *submitted;
static uint64_t nsubmitted;

static void sink(struct cr_request *r)
{
    submitted = r;
    nsubmitted++;
}

/* ------------------------------------------------------------ cases */

struct state {
    struct fx_world x;
    struct cr_conn *c;
    struct fx_lb *lb;
    struct fx_h2c *phone;
    struct cr_upconn *u;
    struct evbuffer *a, *b;
    uint64_t done;                /* measured operations */
    uint64_t lb_base, phone_base; /* the peers' counts when measuring began */
    /* admit */
    struct cr_tenants *tenants;
    struct cr_admit_shared *shared;
    struct cr_admit *admit;
    struct cr_admit_item *items;
    uint32_t nitems, next_item;
    uint8_t *busy;               /* items[i] is queued or in flight */
    struct cr_admit_item **ring; /* in flight, in dispatch order */
    uint32_t ring_head, ring_len;
    uint64_t now_us, arrivals;
};

/* The fixture's config with the gold tenant's rate (100 000/s, burst 1 000)
 * raised out of reach: one core runs the whole path faster than that, and a
 * benchmark that queued behind its own rate limit would time the queue. */
static const char *bench_yaml(void)
{
    static char yaml[8192];
    static const char from[] = "rate: 100000/s\n      burst: 1000\n";
    static const char to[] = "rate: 100000000/s\n      burst: 1000000\n";
    const char *at = strstr(fx_default_yaml, from);
    if (!at || strlen(fx_default_yaml) + sizeof(to) >= sizeof(yaml))
        fail("setup", "the fixture's gold tenant has changed");
    snprintf(yaml, sizeof(yaml), "%.*s%s%s", (int)(at - fx_default_yaml), fx_default_yaml, to,
             at + sizeof(from) - 1);
    return yaml;
}

/* yaml: NULL for the fixture's config */
static void world_setup(struct state *s, const char *yaml)
{
    memset(s, 0, sizeof(*s));
    fx_world_init(&s->x, yaml);
    s->c = fx_conn_new(&s->x, "198.51.100.23");
    s->a = evbuffer_new();
    s->b = evbuffer_new();
    if (!s->a || !s->b)
        fail("setup", "out of memory");
    fe_ends = nsubmitted = 0;
    submitted = NULL;
    cr_request_seed_ids(1); /* the same ids, so the same HPACK lengths, every run */
}

static void common_setup(struct state *s)
{
    world_setup(s, NULL);
}

static void common_teardown(struct state *s)
{
    if (s->phone)
        fx_h2c_free(s->phone);
    fx_conn_free(s->c);
    fx_world_free(&s->x);
    if (s->lb)
        fx_lb_free(s->lb);
    evbuffer_free(s->a);
    evbuffer_free(s->b);
    cr_admit_free(s->admit);
    cr_tenants_free(s->tenants);
    free(s->shared);
    free(s->items);
    free(s->busy);
    free(s->ring);
}

/* The phone's queued bytes go to the connection's front end. */
static void phone_to_corral(struct state *s, bool measured)
{
    fx_h2c_send(s->phone, s->a);
    size_t n = evbuffer_get_length(s->a);
    const uint8_t *p = evbuffer_pullup(s->a, -1);
    if (measured)
        on();
    int rc = n ? s->c->proto->on_data(s->c, p, n) : 0;
    if (measured)
        off();
    if (rc < 0)
        fail("phone", "the HTTP/2 front end refused the phone's bytes");
    evbuffer_drain(s->a, n);
}

/* What corral queued for the phone goes to the phone. */
static void corral_to_phone(struct state *s, bool measured)
{
    if (measured)
        on();
    fx_conn_take(s->c, s->b);
    if (measured)
        off();
    size_t n = evbuffer_get_length(s->b);
    if (fx_h2c_recv(s->phone, evbuffer_pullup(s->b, -1), n) < 0)
        fail("phone", "corral sent the phone bad HTTP/2");
    evbuffer_drain(s->b, n);
}

/* One upstream round trip: the codec's bytes out (measured), the load
 * balancer's answer (not), and back into the codec (measured). */
static void upstream_round(struct state *s)
{
    on();
    int rc = fx_up_produce(s->u, s->a);
    off();
    size_t n = evbuffer_get_length(s->a);
    if (rc < 0 || fx_lb_exchange(s->lb, evbuffer_pullup(s->a, -1), n, s->b) < 0)
        fail("upstream", "the HTTP/2 exchange with the load balancer failed");
    evbuffer_drain(s->a, n);
    n = evbuffer_get_length(s->b);
    on();
    rc = fx_up_feed(s->u, evbuffer_pullup(s->b, -1), n);
    off();
    if (rc < 0)
        fail("upstream", "the codec refused the load balancer's answer");
    evbuffer_drain(s->b, n);
}

static void upstream_setup(struct state *s)
{
    s->lb = fx_lb_new(128, 200, LB_BODY);
    s->u = fx_up_ready(&s->x, 0, s->lb);
    if (fx_up_pump(s->u, s->lb) < 0)
        fail("upstream", "no SETTINGS exchange");
}

/* ---- h1_parse: an HTTP/1.1 request head, parsed into a request ---- */

static void h1_setup(struct state *s)
{
    common_setup(s);
    if (cr_h1_attach(s->c, sink) < 0)
        fail("h1_parse", "attach");
}

static uint64_t h1_op(struct state *s)
{
    on();
    int rc = s->c->proto->on_data(s->c, (const uint8_t *)H1_HEAD, sizeof(H1_HEAD) - 1);
    off();
    if (rc < 0 || !submitted)
        fail("h1_parse", "the head was not handed over");
    cr_request_respond(submitted, 503, "benchmark", NULL); /* ends it; keep-alive goes on */
    submitted = NULL;
    fx_conn_take(s->c, NULL);
    s->done++;
    return 1;
}

static void h1_check(struct state *s)
{
    if (nsubmitted != s->done)
        fail("h1_parse", "heads lost");
}

/* ---- h2_parse: an HTTP/2 request HEADERS frame, decoded into a request ---- */

static void h2_setup(struct state *s)
{
    common_setup(s);
    s->phone = fx_h2c_new();
    if (cr_h2_attach(s->c, sink) < 0)
        fail("h2_parse", "attach");
    phone_to_corral(s, false);
    corral_to_phone(s, false);
}

static uint64_t h2_op(struct state *s)
{
    fx_h2c_request(s->phone, H2_REQ);
    phone_to_corral(s, true);
    if (!submitted)
        fail("h2_parse", "the head was not handed over");
    cr_request_respond(submitted, 503, "benchmark", NULL);
    submitted = NULL;
    corral_to_phone(s, false);
    s->done++;
    return 1;
}

static void h2_check(struct state *s)
{
    if (nsubmitted != s->done || fx_h2c_done(s->phone) - s->phone_base != s->done)
        fail("h2_parse", "streams lost");
}

/* ---- rewrite: validation, hop-by-hop removal, forwarding headers ---- */

static uint64_t rewrite_op(struct state *s)
{
    struct cr_request *r = build_request(s->c, &bench_fe);
    const char *reason;
    on();
    int rc = cr_request_finish_head(r, &reason);
    off();
    if (rc < 0 || !cr_request_hdr(r, "x-forwarded-for") || cr_request_hdr(r, "connection"))
        fail("rewrite", "the head was not rewritten");
    cr_request_release_fe(r);
    s->done++;
    return 1;
}

static void rewrite_check(struct state *s)
{
}

/* ---- admit: arrive, dispatch, done, over four tenants with a backlog ---- */

#define ADMIT_CAPACITY 64
#define ADMIT_BACKLOG 64

static void admit_dispatch(struct state *s)
{
    struct cr_admit_item *it;
    while ((it = cr_admit_next(s->admit, s->now_us)) != NULL)
        s->ring[(s->ring_head + s->ring_len++) % s->nitems] = it;
}

/* The next item to arrive; it must be idle (done, or never used). */
static struct cr_admit_item *admit_item(struct state *s)
{
    uint32_t i = s->next_item;
    s->next_item = (s->next_item + 1) % s->nitems;
    if (s->busy[i])
        fail("admit", "an item would arrive again while queued or in flight");
    s->busy[i] = 1;
    return &s->items[i];
}

/* Tenants in turn (the default, gold, silver, bronze), every 16th request
 * on the high-priority route. */
static void admit_arrive(struct state *s, struct cr_admit_item *it)
{
    uint64_t n = s->arrivals++;
    const struct cr_tenant *t = cr_tenants_at(s->tenants, n % cr_tenants_count(s->tenants));
    enum cr_priority prio = n % 16 == 0 ? CR_PRIO_HIGH : CR_PRIO_NORMAL;
    struct cr_admit_shed why;
    cr_admit_item_init(it, it);
    switch (cr_admit_arrive(s->admit, it, t, prio, s->now_us, &why)) {
    case CR_ADMIT_GO:
        s->ring[(s->ring_head + s->ring_len++) % s->nitems] = it;
        break;
    case CR_ADMIT_QUEUED:
        break;
    case CR_ADMIT_SHED:
        fail("admit", why.reason);
    }
}

static void admit_setup(struct state *s)
{
    common_setup(s);
    s->nitems = 4 * (ADMIT_CAPACITY + ADMIT_BACKLOG);
    s->items = calloc(s->nitems, sizeof(*s->items));
    s->busy = calloc(s->nitems, 1);
    s->ring = calloc(s->nitems, sizeof(*s->ring));
    s->shared = calloc(1, sizeof(*s->shared));
    if (!s->items || !s->busy || !s->ring || !s->shared ||
        cr_tenants_new(&s->x.cfg->tenants, &s->tenants) < 0 ||
        cr_admit_new(s->tenants, s->shared, 1, 42, &s->admit) < 0)
        fail("admit", "setup");
    s->now_us = 1000000;
    cr_admit_set_capacity(s->admit, ADMIT_CAPACITY);
    for (int i = 0; i < ADMIT_CAPACITY + ADMIT_BACKLOG; i++)
        admit_arrive(s, admit_item(s));
}

/* One request's turn: the oldest in flight ends, whoever may go next is
 * dispatched, a new request arrives (and queues behind the backlog). */
static uint64_t admit_op(struct state *s)
{
    s->now_us += 20; /* 50 000 requests/s */
    if (s->ring_len == 0)
        fail("admit", "nothing in flight");
    struct cr_admit_item *done = s->ring[s->ring_head], *next = admit_item(s);
    s->ring_head = (s->ring_head + 1) % s->nitems;
    s->ring_len--;
    on();
    cr_admit_done(s->admit, done, s->now_us);
    admit_dispatch(s);
    admit_arrive(s, next);
    off();
    s->busy[done - s->items] = 0;
    s->done++;
    return 1;
}

static void admit_check(struct state *s)
{
    uint32_t q = cr_admit_queued(s->admit), f = cr_admit_inflight(s->admit);
    if (f != ADMIT_CAPACITY || f != s->ring_len || q < ADMIT_BACKLOG / 2 || q > ADMIT_BACKLOG * 2)
        fail("admit", "the engine left its steady state (saturated, with a backlog)");
}

/* ---- up_h2: requests as streams on an upstream HTTP/2 connection ---- */

static void up_setup(struct state *s)
{
    common_setup(s);
    upstream_setup(s);
}

static uint64_t up_op(struct state *s)
{
    struct cr_request *r[UP_BATCH];
    const char *reason;
    for (int i = 0; i < UP_BATCH; i++) {
        r[i] = build_request(s->c, &bench_fe);
        cr_request_finish_head(r[i], &reason);
        r[i]->be_held = true; /* as cr_gate_submit would: the stream holds it */
    }
    for (int i = 0; i < UP_BATCH; i++) {
        on();
        int rc = cr_upconn_submit(s->u, r[i]);
        off();
        if (rc < 0)
            fail("up_h2", "no room on the upstream connection");
    }
    upstream_round(s);
    for (int i = 0; i < UP_BATCH; i++) {
        if (r[i]->status != 200 || !r[i]->resp_eof || r[i]->be_held)
            fail("up_h2", "a response did not complete");
        cr_request_release_fe(r[i]);
    }
    s->done += UP_BATCH;
    return UP_BATCH;
}

static void up_check(struct state *s)
{
    if (fx_lb_requests(s->lb) - s->lb_base != s->done || fe_ends != s->done)
        fail("up_h2", "responses lost");
}

/* ---- e2e_h1 / e2e_h2: the whole request path, client to upstream and back ---- */

static void e2e_h1_setup(struct state *s)
{
    world_setup(s, bench_yaml());
    upstream_setup(s);
    if (cr_h1_attach(s->c, cr_request_submit) < 0)
        fail("e2e_h1", "attach");
}

static uint64_t e2e_h1_op(struct state *s)
{
    on();
    int rc = s->c->proto->on_data(s->c, (const uint8_t *)H1_HEAD, sizeof(H1_HEAD) - 1);
    off();
    if (rc < 0)
        fail("e2e_h1", "the front end refused the head");
    upstream_round(s);
    on();
    fx_conn_take(s->c, s->b);
    off();
    char head[13] = {0};
    evbuffer_copyout(s->b, head, 12);
    if (strcmp(head, "HTTP/1.1 200") != 0)
        fail("e2e_h1", "the client did not get the upstream's 200");
    evbuffer_drain(s->b, evbuffer_get_length(s->b));
    s->done++;
    return 1;
}

static void e2e_h1_check(struct state *s)
{
    if (fx_lb_requests(s->lb) - s->lb_base != s->done || !cr_gate_idle(s->x.w.gate))
        fail("e2e_h1", "requests lost");
}

static void e2e_h2_setup(struct state *s)
{
    world_setup(s, bench_yaml());
    upstream_setup(s);
    s->phone = fx_h2c_new();
    if (cr_h2_attach(s->c, cr_request_submit) < 0)
        fail("e2e_h2", "attach");
    phone_to_corral(s, false);
    corral_to_phone(s, false);
}

static uint64_t e2e_h2_op(struct state *s)
{
    int32_t sid = fx_h2c_request(s->phone, H2_REQ);
    phone_to_corral(s, true);
    upstream_round(s);
    corral_to_phone(s, true);
    if (fx_h2c_status(s->phone, sid) != 200)
        fail("e2e_h2", "the phone did not get the upstream's 200");
    s->done++;
    return 1;
}

static void e2e_h2_check(struct state *s)
{
    if (fx_lb_requests(s->lb) - s->lb_base != s->done ||
        fx_h2c_done(s->phone) - s->phone_base != s->done || !cr_gate_idle(s->x.w.gate))
        fail("e2e_h2", "requests lost");
}

/* ------------------------------------------------------------ driver */

struct bench_case {
    const char *name;
    const char *what;
    void (*setup)(struct state *s);
    uint64_t (*op)(struct state *s); /* returns the operations it did */
    void (*check)(struct state *s);  /* before teardown */
};

static const struct bench_case cases[] = {
    {"h1_parse", "HTTP/1.1 head (10 headers, 500 B) parsed into a request", h1_setup, h1_op,
     h1_check},
    {"h2_parse", "HTTP/2 HEADERS (same headers, HPACK) decoded into a request", h2_setup, h2_op,
     h2_check},
    {"rewrite", "head checked, hop-by-hop dropped, X-Forwarded-*, request id, traceparent",
     common_setup, rewrite_op, rewrite_check},
    {"admit", "admission arrive + dispatch + done, 4 tenants, saturated, with a backlog",
     admit_setup, admit_op, admit_check},
    {"up_h2", "request as an upstream HTTP/2 stream (16 at a time), 512 B response read", up_setup,
     up_op, up_check},
    {"e2e_h1", "HTTP/1.1 client -> pool -> upstream HTTP/2 -> response written to the client",
     e2e_h1_setup, e2e_h1_op, e2e_h1_check},
    {"e2e_h2", "HTTP/2 client -> pool -> upstream HTTP/2 -> response encoded for the client",
     e2e_h2_setup, e2e_h2_op, e2e_h2_check},
};

/* One run of a case: setup, warm-up, ops measured operations. Returns the
 * measured nanoseconds (wall clock mode). */
static uint64_t run_once(const struct bench_case *bc, uint64_t warmup, uint64_t ops, uint64_t *done)
{
    struct state s;
    bc->setup(&s);
    measuring = false;
    for (uint64_t n = 0; n < warmup;)
        n += bc->op(&s);
    s.done = 0;
    fe_ends = nsubmitted = 0;
    s.lb_base = s.lb ? fx_lb_requests(s.lb) : 0;
    s.phone_base = s.phone ? fx_h2c_done(s.phone) : 0;
    t_total = sections = 0;
    measuring = true;
    uint64_t n = 0;
    while (n < ops)
        n += bc->op(&s);
    measuring = false;
    *done = n;
    bc->check(&s);
    common_teardown(&s);
    return t_total;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_hot [--list] [--count] [--ops N] [--warmup N] [--runs N] [CASE...]\n"
               "  --list      the cases, one per line: NAME<TAB>what it measures\n"
               "  --count     one run per case, toggling callgrind's collection around\n"
               "              the measured sections (run under valgrind --tool=callgrind\n"
               "              --collect-atstart=no; tools/bench does)\n"
               "  --ops N     measured operations per run (default 20000; --count 5000)\n"
               "  --warmup N  operations before measuring (default ops / 10)\n"
               "  --runs N    runs per case in wall clock mode, median reported (default 5)\n");
}

/* The number after option argv[*i], from min to 100000000. */
static uint64_t number(int argc, char **argv, int *i, uint64_t min)
{
    const char *opt = argv[*i], *v = *i + 1 < argc ? argv[++*i] : NULL;
    char *end = NULL;
    errno = 0;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || errno || *end || n < min || n > 100000000ULL) {
        fprintf(stderr, "bench_hot: %s needs a number from %llu to 100000000\n", opt,
                (unsigned long long)min);
        exit(1);
    }
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static __attribute__((noinline)) int bench_main(int argc, char **argv)
{
    uint64_t ops = 0, warmup = UINT64_MAX, runs = 5;
    bool selected[CR_ARRAY_LEN(cases)] = {0}, any = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--list")) {
            for (size_t c = 0; c < CR_ARRAY_LEN(cases); c++)
                printf("%s\t%s\n", cases[c].name, cases[c].what);
            return 0;
        } else if (!strcmp(a, "--count")) {
            count_mode = true;
        } else if (!strcmp(a, "--ops")) {
            ops = number(argc, argv, &i, 1);
        } else if (!strcmp(a, "--warmup")) {
            warmup = number(argc, argv, &i, 0);
        } else if (!strcmp(a, "--runs")) {
            runs = number(argc, argv, &i, 1);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            size_t c = 0;
            while (c < CR_ARRAY_LEN(cases) && strcmp(cases[c].name, a) != 0)
                c++;
            if (c == CR_ARRAY_LEN(cases)) {
                fprintf(stderr, "bench_hot: no case or option %s\n", a);
                usage(stderr);
                return 1;
            }
            selected[c] = any = true;
        }
    }
#ifndef HAVE_VALGRIND_CALLGRIND_H
    if (count_mode) {
        fprintf(stderr, "bench_hot: built without valgrind/callgrind.h: no --count "
                        "(apt-get install valgrind, then configure again)\n");
        return 1;
    }
#endif
    if (!ops)
        ops = count_mode ? 5000 : 20000;
    if (warmup == UINT64_MAX)
        warmup = ops / 10;
    if (runs > 64) {
        fprintf(stderr, "bench_hot: --runs is at most 64\n");
        return 1;
    }
    if (count_mode)
        runs = 1;
    double overhead = count_mode ? 0 : section_overhead_ns();

    for (size_t c = 0; c < CR_ARRAY_LEN(cases); c++) {
        if (any && !selected[c])
            continue;
        uint64_t ns[64], done = 0;
        double per_op[64];
        for (uint64_t r = 0; r < runs; r++) {
            uint64_t t = run_once(&cases[c], warmup, ops, &done);
            double corrected = (double)t - overhead * (double)sections;
            ns[r] = (uint64_t)(corrected > 0 ? corrected : 0);
            per_op[r] = (double)ns[r] / (double)done;
        }
        if (count_mode) {
            printf("case %s ops=%llu\n", cases[c].name, (unsigned long long)done);
        } else {
            qsort(ns, runs, sizeof(ns[0]), cmp_u64);
            double lo = per_op[0], hi = per_op[0];
            for (uint64_t r = 1; r < runs; r++)
                lo = CR_MIN(lo, per_op[r]), hi = CR_MAX(hi, per_op[r]);
            printf("case %s ops=%llu ns_per_op=%.1f min=%.1f max=%.1f runs=%llu\n", cases[c].name,
                   (unsigned long long)done, (double)ns[runs / 2] / (double)done, lo, hi,
                   (unsigned long long)runs);
        }
        fflush(stdout);
    }
    return 0;
}

/* The stack starts wherever the environment and the arguments leave it, and
 * memcpy and memset take more or fewer instructions on a buffer depending
 * on its alignment: instruction counts would depend on the length of the
 * path the benchmark runs from. Every frame below starts at the same offset
 * within a page instead. */
int main(int argc, char **argv)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    volatile char *pad = alloca(sp % 4096 + 256);
    pad[0] = 0;
    return bench_main(argc, argv);
}
