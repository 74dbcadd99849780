/* check_pool.c - the pipeliner with its connections brought up over memory
 * (fixture.h): a new pool connects nothing, requests wait for a connection
 * and go out when one comes up, streams are multiplexed and spread over the
 * connections with the most room, capacity follows the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS, and an HTTP/1.1 upstream connection
 * reads again once the response it paused for has ended. */
#include "ac_config.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "fixture.h"
#include "gate.h"
#include "pool.h"
#include "request.h"
#include "upstream.h"
#include "upstream_int.h" /* the codec's state, read by one test */

/* ------------------------------------------------------------ fixtures */

#define MAXREQ 64

static struct fx_world X;
static struct cr_conn *C;

/* What the client side of each request saw. */
static int heads, ends;

static void fe_head(struct cr_request *r)
{
    heads++;
}

/* Takes the body as a front end would, so the upstream window reopens. */
static void fe_body(struct cr_request *r)
{
    size_t n = evbuffer_get_length(r->resp_body);
    evbuffer_drain(r->resp_body, n);
    cr_request_resp_consumed(r, n);
}

static void fe_end(struct cr_request *r)
{
    fe_body(r);
    ends++;
}

static void fe_nop(struct cr_request *r)
{
}

static const struct cr_fe_ops test_fe = {fe_head, fe_body, fe_end, fe_nop};

/* A front end that lets go of r as soon as it has the whole response, from
 * whichever callback tells it so, as HTTP/1.1's does (h1.c pump): for a
 * response without a body that is the head's callback. */
static void h1like_take(struct cr_request *r)
{
    fe_body(r);
    if (r->resp_eof) {
        ends++;
        cr_request_release_fe(r);
    }
}

static void h1like_head(struct cr_request *r)
{
    heads++;
    h1like_take(r);
}

static const struct cr_fe_ops h1like_fe = {h1like_head, h1like_take, h1like_take, fe_nop};

static void setup(void)
{
    fx_world_init(&X, NULL);
    C = fx_conn_new(&X, "203.0.113.9");
    heads = ends = 0;
}

static void teardown(void)
{
    fx_conn_free(C);
    fx_world_free(&X);
}

/* A client that takes none of its response's body. */
static void fe_end_unread(struct cr_request *r)
{
    ends++;
}

static const struct cr_fe_ops unread_fe = {fe_head, fe_nop, fe_end_unread, fe_nop};

/* A GET of tenant `tenant` submitted by a front end with these ops. */
static struct cr_request *submit_fe(const struct cr_fe_ops *ops, const char *path,
                                    const char *tenant)
{
    struct cr_request *r = cr_request_new(C, ops, NULL, "HTTP/2");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(cr_request_set(r, &r->method, "GET", 3), 0);
    ck_assert_int_eq(cr_request_set(r, &r->path, path, strlen(path)), 0);
    ck_assert_int_eq(cr_request_set(r, &r->authority, "a.test", 6), 0);
    ck_assert_int_eq(cr_request_add_header(r, "x-tenant-id", 11, tenant, strlen(tenant)), 0);
    cr_request_submit(r);
    return r;
}

/* A GET of tenant `tenant` submitted as a front end does. */
static struct cr_request *submit(const char *path, const char *tenant)
{
    return submit_fe(&test_fe, path, tenant);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------ tests */

START_TEST(new_pool_connects_nothing)
{
    struct cr_pool *p = NULL;
    int before = open_fds();
    ck_assert_int_eq(cr_pool_new(&X.w, &p), 0);
    ck_assert_int_eq(open_fds(), before);
    for (size_t i = 0; i < 2; i++) {
        struct cr_upconn *u = cr_pool_conn(p, i);
        ck_assert_ptr_nonnull(u);
        ck_assert_int_eq(cr_upconn_state(u), CR_UP_IDLE);
        ck_assert_int_eq(cr_upconn_id(u), -1); /* never connected */
    }
    ck_assert_ptr_null(cr_pool_conn(p, 2));
    ck_assert(cr_pool_idle(p));
    cr_pool_free(p);
}
END_TEST

/* A connection is coming (idle, not failing): the request waits in
 * admission instead of getting a 502, and leaves once SETTINGS arrive. */
START_TEST(request_waits_for_a_connection)
{
    struct cr_request *r = submit("/a", "gold");
    ck_assert_int_eq(r->state, CR_REQ_QUEUED);
    ck_assert_int_eq(r->status, 0);
    ck_assert(!cr_gate_idle(X.w.gate));

    struct fx_lb *lb = fx_lb_new(100, 200, 50);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    ck_assert_int_eq(r->state, CR_REQ_UPSTREAM);
    ck_assert_uint_eq(cr_upconn_inflight(u), 1);
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(heads, 1);
    ck_assert_int_eq(ends, 1);
    ck_assert_uint_eq(r->bytes_out, 50);
    ck_assert(cr_gate_idle(X.w.gate));
    cr_request_release_fe(r);
    fx_lb_free(lb);
}
END_TEST

START_TEST(streams_multiplexed_on_one_connection)
{
    struct fx_lb *lb = fx_lb_new(100, 200, 2000);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    struct cr_request *r[20];
    for (int i = 0; i < 20; i++)
        r[i] = submit("/m", i % 2 ? "silver" : "bronze");
    ck_assert_uint_eq(cr_upconn_inflight(u), 20);
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    ck_assert_uint_eq(fx_lb_requests(lb), 20);
    ck_assert_int_eq(ends, 20);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(r[i]->status, 200);
        ck_assert_int_eq(r[i]->up_conn_id, cr_upconn_id(u));
        cr_request_release_fe(r[i]);
    }
    ck_assert_uint_eq(cr_upconn_inflight(u), 0);
    fx_lb_free(lb);
}
END_TEST

START_TEST(spread_over_the_connection_with_most_room)
{
    struct fx_lb *lb0 = fx_lb_new(100, 200, 10), *lb1 = fx_lb_new(100, 200, 10);
    struct cr_upconn *u0 = fx_up_ready(&X, 0, lb0), *u1 = fx_up_ready(&X, 1, lb1);
    struct cr_request *r[10];
    for (int i = 0; i < 10; i++)
        r[i] = submit("/s", "gold");
    ck_assert_uint_eq(cr_upconn_inflight(u0), 5);
    ck_assert_uint_eq(cr_upconn_inflight(u1), 5);
    ck_assert_int_eq(fx_up_pump(u0, lb0), 0);
    ck_assert_int_eq(fx_up_pump(u1, lb1), 0);
    ck_assert_int_eq(ends, 10);
    for (int i = 0; i < 10; i++)
        cr_request_release_fe(r[i]);
    fx_lb_free(lb0);
    fx_lb_free(lb1);
}
END_TEST

/* The server allows 2 streams: 2 go, the rest wait in admission and go as
 * streams end. */
START_TEST(capacity_is_the_servers_stream_limit)
{
    struct fx_lb *lb = fx_lb_new(2, 200, 10);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    struct cr_request *r[5];
    for (int i = 0; i < 5; i++)
        r[i] = submit("/c", "gold");
    ck_assert_uint_eq(cr_upconn_inflight(u), 2);
    ck_assert_int_eq(r[2]->state, CR_REQ_QUEUED);
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    ck_assert_uint_eq(fx_lb_requests(lb), 5);
    ck_assert_int_eq(ends, 5);
    ck_assert(cr_gate_idle(X.w.gate));
    for (int i = 0; i < 5; i++)
        cr_request_release_fe(r[i]);
    fx_lb_free(lb);
}
END_TEST

/* Ordinary requests whose front end lets go of them as soon as it has the
 * whole response, before nghttp2 has closed the upstream stream (the END_STREAM
 * frame's callback tells the client): that is no cancel, and no RST_STREAM
 * goes upstream. Resetting them was what tripped an nghttp2 upstream's
 * rapid-reset guard (GOAWAY INTERNAL_ERROR) under h2load --h1. With and
 * without a body (then the head's callback is where r is let go). */
START_TEST(finished_requests_released_by_the_client_reset_nothing)
{
    static const size_t bodies[] = {2000, 0};
    struct fx_lb *lb = fx_lb_new(100, 200, bodies[_i]);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 40; i++)
            submit_fe(&h1like_fe, "/f", i % 2 ? "silver" : "bronze");
        ck_assert_int_eq(fx_up_pump(u, lb), 0);
    }
    ck_assert_uint_eq(fx_lb_requests(lb), 120);
    ck_assert_int_eq(heads, 120);
    ck_assert_int_eq(ends, 120);
    ck_assert_uint_eq(fx_lb_resets(lb), 0);
    ck_assert_uint_eq(cr_upconn_inflight(u), 0); /* all released */
    ck_assert(cr_gate_idle(X.w.gate));
    fx_lb_free(lb);
}
END_TEST

/* A client that goes away while its request waits takes it out of the
 * queue; nothing is sent for it. */
START_TEST(queued_request_cancelled_by_its_client)
{
    struct cr_request *r = submit("/q", "silver");
    ck_assert_int_eq(r->state, CR_REQ_QUEUED);
    cr_request_release_fe(r);
    ck_assert(cr_gate_idle(X.w.gate));
    struct fx_lb *lb = fx_lb_new(100, 200, 10);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    ck_assert_uint_eq(cr_upconn_inflight(u), 0);
    ck_assert_uint_eq(fx_lb_requests(lb), 0);
    fx_lb_free(lb);
}
END_TEST

/* A request whose upstream connection fails before its answer, with no
 * other connection to retry on now, queues again (cr_gate_readmit) - with
 * the deadline of its first arrival: its tenant's max_wait (5 s) bounds
 * its waits all told, where it used to start again at each retry, so that
 * a request could wait max_wait three times. */
START_TEST(readmitted_request_keeps_its_first_deadline)
{
    struct fx_lb *lb = fx_lb_new(100, 200, 10);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    struct cr_request *r = submit("/r", "silver");
    ck_assert_int_eq(r->state, CR_REQ_UPSTREAM);
    uint64_t deadline = r->admit.deadline_us;
    ck_assert_uint_gt(deadline, 0);
    usleep(20 * 1000); /* the retry comes later: a fresh deadline would be later too */
    cr_up_lost(u, CR_POOL_LOST_FAILED, "failed (test)");
    ck_assert_int_eq(r->retries, 1);
    ck_assert_msg(r->state == CR_REQ_QUEUED, "state %d, status %d", r->state, r->status);
    ck_assert_msg(r->admit.deadline_us == deadline,
                  "queued again with a deadline %lld us later than its first",
                  (long long)(r->admit.deadline_us - deadline));
    cr_request_release_fe(r);
    ck_assert(cr_gate_idle(X.w.gate));
    fx_lb_free(lb);
}
END_TEST

/* Routes match the normalised path on segment boundaries (fx_default_yaml:
 * /health is high priority), and the upstream is sent the path that was
 * classified, not the raw one: an upstream resolving "/health/../x" itself
 * must not serve /x at /health's priority. */
START_TEST(classified_on_the_normalised_path_and_forwarded_so)
{
    static const struct {
        const char *raw, *path;
        enum cr_priority prio;
    } cases[] = {
        {"/health", "/health", CR_PRIO_HIGH},
        {"/health/db?full=1", "/health/db?full=1", CR_PRIO_HIGH},
        {"/%68ealth/./db", "/health/db", CR_PRIO_HIGH},
        {"/health/../x?y=/health", "/x?y=/health", CR_PRIO_NORMAL},
        {"/health%2F..%2Fx", "/health%2F..%2Fx", CR_PRIO_NORMAL},
        {"/healthXYZ", "/healthXYZ", CR_PRIO_NORMAL},
        {"/x/../health", "/health", CR_PRIO_HIGH},
    };
    struct fx_lb *lb = fx_lb_new(100, 200, 10);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    for (size_t i = 0; i < CR_ARRAY_LEN(cases); i++) {
        struct cr_request *r = submit(cases[i].raw, "gold");
        ck_assert_msg(r->prio == cases[i].prio, "%s: priority %d, expected %d", cases[i].raw,
                      r->prio, cases[i].prio);
        ck_assert_str_eq(r->path, cases[i].path);
        ck_assert_int_eq(fx_up_pump(u, lb), 0);
        ck_assert_int_eq(r->status, 200);
        ck_assert_str_eq(fx_lb_header(lb, ":path", 0), cases[i].path);
        cr_request_release_fe(r);
    }
    fx_lb_free(lb);
}
END_TEST

/* ------------------------------------------------------------ HTTP/1.1 upstream */

/* The world of fx_default_yaml with an HTTP/1.1 upstream. */
static void h1_world(void)
{
    teardown();
    static char yaml[8192];
    const char *at = strstr(fx_default_yaml, "protocol: h2\n");
    ck_assert_ptr_nonnull(at);
    snprintf(yaml, sizeof(yaml), "%.*sprotocol: http/1.1\n%s", (int)(at - fx_default_yaml),
             fx_default_yaml, at + strlen("protocol: h2\n"));
    fx_world_init(&X, yaml);
    C = fx_conn_new(&X, "203.0.113.9");
}

/* A client that takes none of its body: the upstream must wait for it. */
static const struct cr_fe_ops slow_fe = {fe_head, fe_nop, fe_nop, fe_nop};

/* The bytes that fill a slow client's buffer also end the response: the
 * pause of the connection's reads (for that body) ends with it, or the
 * next request on the keep-alive connection would never be answered. */
START_TEST(h1_upstream_pause_ends_with_its_response)
{
    h1_world();

    struct cr_request *r = cr_request_new(C, &slow_fe, NULL, "HTTP/1.1");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(cr_request_set(r, &r->method, "GET", 3), 0);
    ck_assert_int_eq(cr_request_set(r, &r->path, "/big", 4), 0);
    ck_assert_int_eq(cr_request_set(r, &r->authority, "a.test", 6), 0);
    cr_request_submit(r);
    ck_assert_int_eq(r->state, CR_REQ_QUEUED); /* no connection yet */
    struct cr_upconn *u = fx_up_ready_h1(&X, 0);
    ck_assert_uint_eq(cr_upconn_inflight(u), 1);
    struct evbuffer *out = evbuffer_new();
    ck_assert_int_eq(fx_up_produce(u, out), 0);
    ck_assert_uint_gt(evbuffer_get_length(out), 0);

    /* the whole response in one read, more than the client's buffer holds */
    size_t body = CR_REQUEST_BUF_HIGH + 1000;
    char head[128];
    int hn = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_add(out, head, (size_t)hn);
    char *zeros = calloc(1, body);
    ck_assert_ptr_nonnull(zeros);
    evbuffer_add(out, zeros, body);
    free(zeros);
    size_t len = evbuffer_get_length(out);
    ck_assert_int_eq(fx_up_feed(u, evbuffer_pullup(out, -1), len), 0);
    ck_assert(r->resp_eof);
    ck_assert_uint_ge(evbuffer_get_length(r->resp_body), CR_REQUEST_BUF_HIGH);
    ck_assert_uint_eq(cr_upconn_inflight(u), 0);
    ck_assert_msg(!fx_up_read_paused(u),
                  "the connection still does not read after its response ended");
    evbuffer_free(out);
    cr_request_release_fe(r);
}
END_TEST

/* The upstream answers (413, say) before the request body is all sent:
 * the exchange is over for the client, which lets go of the request, but
 * the connection is still in the middle of that body, so its framing is
 * lost. It must be recycled, and nothing on it may still point at the
 * request (the codec's body cursor was left on it: a use after free once
 * the client had let go). A request waiting meanwhile is not written to
 * the broken connection. */
START_TEST(h1_upstream_early_response_recycles)
{
    h1_world();
    struct cr_request *r = cr_request_new(C, &test_fe, NULL, "HTTP/1.1");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(cr_request_set(r, &r->method, "POST", 4), 0);
    ck_assert_int_eq(cr_request_set(r, &r->path, "/upload", 7), 0);
    ck_assert_int_eq(cr_request_set(r, &r->authority, "a.test", 6), 0);
    ck_assert_int_eq(cr_request_add_header(r, "content-length", 14, "100000", 6), 0);
    r->has_body = true;
    r->req_clen = 100000;
    cr_request_submit(r);
    struct cr_upconn *u = fx_up_ready_h1(&X, 0);
    int64_t id = cr_upconn_id(u);
    ck_assert_int_eq(r->state, CR_REQ_UPSTREAM);
    static const char part[1000];
    ck_assert_int_eq(cr_request_body(r, part, sizeof(part)), 0);
    struct evbuffer *out = evbuffer_new();
    ck_assert_int_eq(fx_up_produce(u, out), 0);
    ck_assert_uint_gt(evbuffer_get_length(out), sizeof(part));
    ck_assert_uint_eq(r->req_sent, sizeof(part));

    /* another client's request waits: the connection is busy with the body */
    struct cr_request *r2 = submit("/next", "gold");
    ck_assert_int_eq(r2->state, CR_REQ_QUEUED);

    static const char early[] = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n";
    ck_assert_int_eq(fx_up_feed(u, (const uint8_t *)early, sizeof(early) - 1), 0);
    ck_assert_int_eq(r->status, 413);
    ck_assert(r->resp_eof);
    ck_assert_int_eq(ends, 1);
    ck_assert_msg(cr_upconn_state(u) != CR_UP_READY || cr_upconn_id(u) != id,
                  "the connection whose request body was cut short is still in use");
    ck_assert_ptr_null(u->sending);
    ck_assert_uint_eq(cr_upconn_inflight(u), 0);
    cr_request_release_fe(r); /* r is freed here */
    r = NULL;

    /* the rest of the body and the next flush find nothing of r */
    evbuffer_drain(out, evbuffer_get_length(out));
    ck_assert_int_eq(fx_up_produce(u, out), 0);
    ck_assert_uint_eq(evbuffer_get_length(out), 0);
    ck_assert_int_eq(r2->state, CR_REQ_QUEUED); /* for the next connection */
    cr_request_release_fe(r2);
    evbuffer_free(out);
}
END_TEST

/* A young connection closed cleanly, once (a load balancer being
 * redeployed closes the new connection too): the request waiting for it
 * keeps waiting while it reconnects. A second clean close of a young one
 * says nothing is coming: the waiting request gets its 502 at once. */
START_TEST(one_young_clean_close_keeps_requests_waiting)
{
    static char yaml[8192];
    const char *at = strstr(fx_default_yaml, "connections: 2\n");
    ck_assert_ptr_nonnull(at);
    snprintf(yaml, sizeof(yaml), "%.*sconnections: 1\n%s", (int)(at - fx_default_yaml),
             fx_default_yaml, at + strlen("connections: 2\n"));
    teardown();
    fx_world_init(&X, yaml);
    C = fx_conn_new(&X, "203.0.113.9");
    struct fx_lb *lb = fx_lb_new(0, 200, 10); /* no stream allowed: requests wait */
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    u->ready_us = cr_now_us(); /* up just now: not proven (the fixture leaves it 0) */
    struct cr_request *r = submit("/wait", "gold");
    ck_assert_int_eq(r->status, 0);
    cr_up_lost(u, CR_POOL_LOST_CLOSED, "closed by the upstream (test)");
    ck_assert_msg(r->status == 0, "the waiting request got %d after one clean close", r->status);
    ck_assert(cr_pool_available(X.w.pool));
    cr_up_lost(u, CR_POOL_LOST_CLOSED, "closed by the upstream again (test)");
    ck_assert_int_eq(r->status, 502);
    cr_request_release_fe(r);
    fx_lb_free(lb);
}
END_TEST

/* The upstream GOAWAYs a connection that still carries a stream: a new
 * connection takes the slot while the old one keeps its stream. A young
 * one GOAWAY'd twice in a row says nothing is coming, as two clean closes
 * do: what waits gets its 502 at once (not max_wait). */
START_TEST(goaway_with_a_stream_replaces_the_connection)
{
    static char yaml[8192];
    const char *at = strstr(fx_default_yaml, "connections: 2\n");
    ck_assert_ptr_nonnull(at);
    snprintf(yaml, sizeof(yaml), "%.*sconnections: 1\n%s", (int)(at - fx_default_yaml),
             fx_default_yaml, at + strlen("connections: 2\n"));
    teardown();
    fx_world_init(&X, yaml);
    C = fx_conn_new(&X, "203.0.113.9");
    struct fx_lb *lb = fx_lb_new(1, 200, 10), *lb2 = fx_lb_new(1, 200, 10);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    u->ready_us = cr_now_us(); /* young */
    struct cr_request *r1 = submit("/long", "gold");
    ck_assert_uint_eq(cr_upconn_inflight(u), 1);
    cr_up_set_state(u, CR_UP_GOAWAY);
    cr_pool_goaway(X.w.pool, u);
    struct cr_upconn *f = cr_pool_conn(X.w.pool, 0);
    ck_assert_ptr_ne(f, u);
    ck_assert_uint_eq(cr_upconn_inflight(u), 1); /* its stream stays */
    ck_assert(cr_pool_available(X.w.pool));     /* the first: requests wait */
    struct cr_request *r2 = submit("/two", "gold");
    ck_assert_int_eq(r2->status, 0);
    fx_up_ready(&X, 0, lb2); /* the new one comes up: r2 goes out on it */
    f->ready_us = cr_now_us();
    ck_assert_uint_eq(cr_upconn_inflight(f), 1);
    struct cr_request *r3 = submit("/three", "gold"); /* waits: one stream each */
    ck_assert_int_eq(r3->status, 0);
    cr_up_set_state(f, CR_UP_GOAWAY);
    cr_pool_goaway(X.w.pool, f);
    ck_assert_int_eq(r3->status, 502);
    ck_assert(!cr_pool_available(X.w.pool));
    cr_request_release_fe(r3);
    cr_request_release_fe(r2);
    cr_request_release_fe(r1);
    fx_lb_free(lb);
    fx_lb_free(lb2);
}
END_TEST

/* The worker's upstream_ready gauge, which the admin's /health sums over
 * the workers: one per READY connection, taken back when it is lost (and
 * by the worker's share, w->up_ready, at its exit). */
START_TEST(upstream_ready_gauge_follows_the_connections)
{
    ck_assert_uint_eq(atomic_load(&X.w.stats->upstream_ready), 0);
    struct fx_lb *lb = fx_lb_new(100, 200, 10);
    struct cr_upconn *a = fx_up_ready(&X, 0, lb);
    ck_assert_uint_eq(atomic_load(&X.w.stats->upstream_ready), 1);
    struct fx_lb *lb2 = fx_lb_new(100, 200, 10);
    fx_up_ready(&X, 1, lb2);
    ck_assert_uint_eq(atomic_load(&X.w.stats->upstream_ready), 2);
    ck_assert_uint_eq(X.w.up_ready, 2);
    cr_up_lost(a, CR_POOL_LOST_CLOSED, "closed by the upstream (test)");
    ck_assert_uint_eq(atomic_load(&X.w.stats->upstream_ready), 1);
    ck_assert_uint_eq(X.w.up_ready, 1);
    fx_lb_free(lb);
    fx_lb_free(lb2);
}
END_TEST

/* Clients that read nothing of 200 responses of 256 KB each (one stream
 * window each): the connection's window is given back on arrival only up
 * to 16 MB held (UP_CONN_WINDOW), then as clients take bytes, so the
 * connection buffers at most 32 MB, not 200 x 256 KB; once the clients
 * read, every response completes and nothing stays owed. */
START_TEST(clients_that_do_not_read_hold_a_bounded_buffer)
{
    enum { N = 200, BODY = 256 * 1024 };
    struct fx_lb *lb = fx_lb_new(N + 10, 200, BODY);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    static struct cr_request *r[N];
    for (int i = 0; i < N; i++)
        r[i] = submit_fe(&unread_fe, "/big", "gold");
    ck_assert_uint_eq(cr_upconn_inflight(u), N);
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    size_t buffered = 0;
    for (int i = 0; i < N; i++)
        buffered += evbuffer_get_length(r[i]->resp_body);
    ck_assert_uint_eq(u->held, buffered);
    ck_assert_msg(buffered <= 32u * 1024 * 1024, "%zu bytes buffered for clients that do not read",
                  buffered);
    ck_assert_msg(buffered >= 16u * 1024 * 1024, "only %zu bytes came", buffered);
    for (int round = 0; round < 100 && ends < N; round++) {
        for (int i = 0; i < N; i++)
            fe_body(r[i]);
        ck_assert_int_eq(fx_up_pump(u, lb), 0);
    }
    ck_assert_int_eq(ends, N);
    ck_assert_uint_eq(u->held, 0);
    ck_assert_uint_eq(u->conn_owed, 0);
    for (int i = 0; i < N; i++)
        cr_request_release_fe(r[i]);
    ck_assert_uint_eq(cr_upconn_inflight(u), 0);
    fx_lb_free(lb);
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("memory");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, new_pool_connects_nothing);
    tcase_add_test(tc, request_waits_for_a_connection);
    tcase_add_test(tc, streams_multiplexed_on_one_connection);
    tcase_add_test(tc, spread_over_the_connection_with_most_room);
    tcase_add_test(tc, capacity_is_the_servers_stream_limit);
    tcase_add_test(tc, queued_request_cancelled_by_its_client);
    tcase_add_test(tc, readmitted_request_keeps_its_first_deadline);
    tcase_add_loop_test(tc, finished_requests_released_by_the_client_reset_nothing, 0, 2);
    tcase_add_test(tc, classified_on_the_normalised_path_and_forwarded_so);
    tcase_add_test(tc, h1_upstream_pause_ends_with_its_response);
    tcase_add_test(tc, h1_upstream_early_response_recycles);
    tcase_add_test(tc, one_young_clean_close_keeps_requests_waiting);
    tcase_add_test(tc, goaway_with_a_stream_replaces_the_connection);
    tcase_add_test(tc, upstream_ready_gauge_follows_the_connections);
    suite_add_tcase(s, tc);
    tc = tcase_create("held");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, clients_that_do_not_read_hold_a_bounded_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
