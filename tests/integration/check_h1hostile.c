/* check_h1hostile.c - hostile HTTP/1.1 clients against the real corral
 * (issue 12, items 1, 2, 4, 11 and 17): raw bytes over TLS with openssl
 * s_client, tests/testup/testup as the upstream, and what reaches it, what the
 * client gets back, what the access log says and whether a worker died.
 *
 *   - chunked trailers after a request corral answered itself used to
 *     SIGSEGV the worker;
 *   - trailers of a request waiting for admission joined its forwarded
 *     head (a trailer content-length smuggled its body to an HTTP/1.1
 *     upstream as a second request);
 *   - two Host fields or a Host that is no authority get 400;
 *   - one write of more requests than the pipeline cap never has more
 *     than the cap in flight, and every one is answered, in order;
 *   - a transfer coding other than chunked gets 501, never forwarded.
 *
 * Each test starts its own testup and corral (one worker, so that a crash
 * or a restart is seen); the harness kills them all. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAW_MS 5000 /* an s_client run that corral should end */
#define PIPELINE 16 /* CR_H1_PIPELINE (src/h1.h) */

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

/* ------------------------------------------------------------ starting things */

static const char *const PROTOS[] = {"h2", "http/1.1"}; /* upstream.protocol, by loop index */

/* testup on T->uport and corral with one worker over proto; extra is
 * top-level YAML appended to the config. Returns the master. */
static pid_t start(const char *proto, const char *extra)
{
    pid_t up = h_testup_start(T, T->uport, (char *)NULL);
    ck_assert_msg(up > 0, "testup did not start: %s",
                  h_file_tail(T, h_strf(T, "%s/testup-%d.log", T->dir, T->uport), 1500));
    char *yaml = h_strf(T,
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
                        "  protocol: %s\n"
                        "  connections: 2\n"
                        "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                        "key: @CERTS@/client.key, sni: lb.test}\n"
                        "%s",
                        proto, extra ? extra : "");
    char *cfg = h_config_write(T, "corral.yaml", yaml);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s | error log: %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, NULL), 1);
    return m;
}

/* The worker's pid (corral runs one). */
static pid_t worker(pid_t master)
{
    pid_t w[H_MAX_PIDS];
    ck_assert_int_eq(h_wait_children(master, 1, 5000, w), 1);
    return w[0];
}

/* ------------------------------------------------------------ testup */

static char *stats(bool reset)
{
    char *j = h_testup_stats(T, T->uport, reset);
    ck_assert_msg(j != NULL, "cannot read testup's /__stats");
    return j;
}

/* Requests testup has begun (not counting /__stats). */
static long up_requests(void)
{
    return h_json_long(stats(false), "requests");
}

/* ------------------------------------------------------------ raw clients */

static bool has(const char *text, const char *needle)
{
    return text != NULL && strstr(text, needle) != NULL;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* What corral sent back to raw bytes, and whether it closed. */
struct raw {
    char *out;
    bool closed;
};

/* openssl s_client -quiet with ALPN http/1.1: writes the len bytes of req
 * at once (one read of its input, under 16 KB: one TLS record), then waits
 * for corral to close, at most timeout_ms. */
static void raw_h1(struct raw *x, const void *req, size_t len, int timeout_ms)
{
    static int seq;
    char *in = h_path(T, h_strf(T, "raw-%d.req", ++seq));
    FILE *f = fopen(in, "wb");
    ck_assert_msg(f != NULL && fwrite(req, 1, len, f) == len && fclose(f) == 0, "cannot write %s",
                  in);
    char *argv[] = {"openssl",
                    "s_client",
                    "-quiet",
                    "-connect",
                    h_strf(T, "127.0.0.1:%d", T->port),
                    "-servername",
                    "edge.test",
                    "-alpn",
                    "http/1.1",
                    "-CAfile",
                    h_strf(T, "%s/ca.crt", T->certs),
                    NULL};
    struct h_run r;
    ck_assert_msg(h_run_stdin(T, argv, in, timeout_ms, &r) == 0, "cannot run openssl s_client");
    x->out = r.out;
    x->closed = !r.timed_out;
}

static void raw_str(struct raw *x, const char *req)
{
    raw_h1(x, req, strlen(req), RAW_MS);
}

static int raw_status(const struct raw *x)
{
    int s = 0;
    return x->out != NULL && sscanf(x->out, "HTTP/1.1 %d", &s) == 1 ? s : 0;
}

/* corral answers a plain request with 200 (the worker is alive). */
static void still_serves(void)
{
    struct raw x;
    raw_str(&x, "GET /alive HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n");
    ck_assert_msg(raw_status(&x) == 200, "a plain request afterwards: %.400s | error log: %s",
                  x.out, h_file_tail(T, T->error_log, 1500));
}

static void no_worker_died(pid_t master, pid_t w0)
{
    ck_assert_msg(!h_file_contains(T->error_log, "killed by signal"), "a worker died: %s",
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(worker(master) == w0, "the worker was replaced: %s",
                  h_file_tail(T, T->error_log, 1500));
}

/* ------------------------------------------------------------ item 1 */

/* The request of issue 12 item 1, three times: trailers after the 400 for
 * a missing Host. Each gets its 400; the worker lives on and serves. */
START_TEST(trailers_after_local_answer_no_crash)
{
    pid_t m = start("h2", NULL);
    pid_t w0 = worker(m);
    for (int i = 0; i < 3; i++) {
        struct raw x;
        raw_str(&x,
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\nC: d\r\n\r\n");
        ck_assert_msg(raw_status(&x) == 400, "attempt %d: %.400s | error log: %s", i + 1, x.out,
                      h_file_tail(T, T->error_log, 1500));
        ck_assert_msg(has(x.out, "\"reason\":\"missing host\""), "attempt %d: %.400s", i + 1,
                      x.out);
        ck_assert_msg(x.closed, "attempt %d: the connection stayed open", i + 1);
    }
    still_serves();
    no_worker_died(m, w0);
}
END_TEST

/* ------------------------------------------------------------ item 2 */

/* Tenant concurrency 1: the second of two pipelined requests waits for
 * admission while its body and trailers are read. Its trailers try to add
 * a content-length (to an HTTP/1.1 upstream the body would then be a
 * second request: /smuggled), a second X-Forwarded-For and a Host. None
 * reaches the upstream (_i = 0: h2, 1: http/1.1); the body does, framed. */
START_TEST(trailers_never_reach_the_upstream)
{
    pid_t m = start(PROTOS[_i], "tenants:\n  defaults: {concurrency: 1}\n");
    pid_t w0 = worker(m);
    long r0 = up_requests();
    static const char req[] =
        "GET /delay/300 HTTP/1.1\r\nHost: edge.test\r\n\r\n"
        "POST /headers HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
        "2b\r\nGET /smuggled HTTP/1.1\r\nHost: edge.test\r\n\r\n\r\n"
        "0\r\nX-Trailer: smuggled\r\nContent-Length: 0\r\nX-Forwarded-For: 203.0.113.66\r\n"
        "Host: evil.test\r\n\r\n";
    struct raw x;
    raw_h1(&x, req, sizeof(req) - 1, RAW_MS);
    ck_assert_msg(count_of(x.out, "HTTP/1.1 200 OK\r\n") == 2, "%s: not two 200s: %.1500s",
                  PROTOS[_i], x.out);
    const char *h = strstr(x.out, "{\":method\"");
    ck_assert_msg(h != NULL, "%s: no /headers answer: %.1500s", PROTOS[_i], x.out);
    ck_assert_msg(!has(h, "smuggled") && !has(h, "203.0.113.66") && !has(h, "evil.test"),
                  "%s: a trailer reached the upstream: %.800s", PROTOS[_i], h);
    ck_assert_msg(count_of(h, "\"x-forwarded-for\"") == 1, "%s: %.800s", PROTOS[_i], h);
    /* testup's log of requests: /delay and /headers, nothing smuggled */
    long d = up_requests() - r0;
    ck_assert_msg(d == 2, "%s: %ld requests reached the upstream, want 2", PROTOS[_i], d);
    no_worker_died(m, w0);
}
END_TEST

/* ------------------------------------------------------------ items 4 and 17 */

/* Refused before the upstream: status, the access log's reason, and not
 * one request upstream. */
static const struct {
    const char *name;
    const char *req;
    int status;
    const char *reason;
} REFUSED[] = {
    {"two Host fields", "GET /headers HTTP/1.1\r\nHost: edge.test\r\nHost: other.test\r\n\r\n", 400,
     "duplicate host"},
    {"two equal Host fields", "GET /headers HTTP/1.1\r\nHost: edge.test\r\nHost: edge.test\r\n\r\n",
     400, "duplicate host"},
    {"Host with userinfo", "GET /headers HTTP/1.1\r\nHost: user@edge.test\r\n\r\n", 400,
     "invalid host"},
    {"Host with a space", "GET /headers HTTP/1.1\r\nHost: edge .test\r\n\r\n", 400, "invalid host"},
    {"Host with a path", "GET /headers HTTP/1.1\r\nHost: edge.test/x\r\n\r\n", 400, "invalid host"},
    {"absolute-form with userinfo",
     "GET https://user@edge.test/headers HTTP/1.1\r\nHost: edge.test\r\n\r\n", 400, "invalid host"},
    {"gzip, chunked",
     "POST /echo HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     "5\r\nhello\r\n0\r\n\r\n",
     501, "unsupported transfer-encoding"},
    {"chunked twice",
     "POST /echo HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400, "invalid transfer-encoding"},
    {"Content-Length with a sign",
     "POST /echo HTTP/1.1\r\nHost: edge.test\r\nContent-Length: +5\r\n\r\nhello", 400, NULL},
};

START_TEST(refused_before_the_upstream)
{
    pid_t m = start("http/1.1", NULL);
    pid_t w0 = worker(m);
    long r0 = up_requests();
    struct raw x;
    raw_str(&x, REFUSED[_i].req);
    ck_assert_msg(raw_status(&x) == REFUSED[_i].status, "%s: %.600s", REFUSED[_i].name, x.out);
    ck_assert_msg(x.closed, "%s: the connection stayed open", REFUSED[_i].name);
    ck_assert_msg(count_of(x.out, "HTTP/1.1 ") == 1, "%s: %.600s", REFUSED[_i].name, x.out);
    if (REFUSED[_i].reason) {
        const char *line[] = {h_strf(T, "\"status\":%d", REFUSED[_i].status),
                              h_strf(T, "\"reason\":\"%s\"", REFUSED[_i].reason), NULL};
        ck_assert_msg(h_wait_file_line(T->access_log, line, 3000),
                      "%s: the access log does not name the reason: %s", REFUSED[_i].name,
                      h_file_tail(T, T->access_log, 1000));
    }
    long d = up_requests() - r0;
    ck_assert_msg(d == 0, "%s: %ld request(s) reached the upstream", REFUSED[_i].name, d);
    no_worker_died(m, w0);
}
END_TEST

/* An absolute-form target: its authority is the one sent on (Host is
 * replaced, RFC 9112 3.2.2), its path the path. */
START_TEST(absolute_form_target)
{
    start("http/1.1", NULL);
    struct raw x;
    raw_str(&x, "GET https://edge.test/headers?x=1 HTTP/1.1\r\nHost: other.test\r\n"
                "Connection: close\r\n\r\n");
    ck_assert_msg(raw_status(&x) == 200, "%.800s", x.out);
    ck_assert_msg(has(x.out, "\":path\":\"/headers?x=1\""), "%.800s", x.out);
    ck_assert_msg(has(x.out, "\"host\":\"edge.test\"") && !has(x.out, "other.test"), "%.800s",
                  x.out);
}
END_TEST

/* ------------------------------------------------------------ item 11 */

/* 40 requests in one write (one TLS record): all answered, in order, and
 * testup never has more than the pipeline cap of them at once. */
START_TEST(pipeline_cap_within_one_write)
{
    enum { N = 40 };
    start("h2", NULL);
    stats(true); /* max_inflight from here */
    char *req = h_strf(T, "%s", "");
    for (int i = 0; i < N; i++)
        req = h_strf(T, "%sGET /delay/100?n=%d HTTP/1.1\r\nHost: edge.test\r\n%s\r\n", req, i,
                     i == N - 1 ? "Connection: close\r\n" : "");
    ck_assert_uint_lt(strlen(req), 16000);
    struct raw x;
    raw_h1(&x, req, strlen(req), 15000);
    ck_assert_msg(x.closed, "the connection stayed open: %d answers",
                  count_of(x.out, "HTTP/1.1 200 OK\r\n"));
    ck_assert_msg(count_of(x.out, "HTTP/1.1 200 OK\r\n") == N, "not %d 200s: %.1500s", N, x.out);
    const char *p = x.out;
    for (int i = 0; i < N; i++) {
        const char *want = h_strf(T, "\"path\":\"/delay/100?n=%d\"", i);
        const char *at = strstr(p, "\"path\":\"");
        ck_assert_msg(at != NULL && strncmp(at, want, strlen(want)) == 0,
                      "answer %d is not for request %d: %.80s", i + 1, i, at ? at : "(none)");
        p = at + 1;
    }
    long most = h_json_long(stats(false), "max_inflight");
    ck_assert_msg(most > 1 && most <= PIPELINE,
                  "%ld requests were in flight at once (the cap is %d)", most, PIPELINE);
}
END_TEST

/* ------------------------------------------------------------ last requests */

/* An upload with Connection: close, larger than one read and than the
 * body buffer, comes back whole: the front end stopped reading after the
 * head of a last request, and the upload hung. */
START_TEST(last_request_body_read_whole)
{
    start("h2", NULL);
    char *in = h_path(T, "up.bin");
    FILE *f = fopen(in, "wb");
    ck_assert(f != NULL);
    for (int i = 0; i < 300 * 1024; i++)
        fputc("0123456789abcdef"[(i * 7) & 15], f);
    ck_assert_int_eq(fclose(f), 0);
    char *out = h_path(T, "down.bin");
    char *argv[] = {"curl",
                    "-q",
                    "-sS",
                    "--http1.1",
                    "--noproxy",
                    "*",
                    "--cacert",
                    h_strf(T, "%s/ca.crt", T->certs),
                    "--resolve",
                    h_strf(T, "edge.test:%d:127.0.0.1", T->port),
                    "--max-time",
                    "10",
                    "-H",
                    "Connection: close",
                    "--data-binary",
                    h_strf(T, "@%s", in),
                    "-o",
                    out,
                    "-w",
                    "%{http_code}",
                    h_strf(T, "https://edge.test:%d/echo", T->port),
                    NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 15000, &r), 0);
    ck_assert_msg(r.exit_code == 0 && strcmp(r.out, "200") == 0, "curl %d, HTTP %s: %s",
                  r.exit_code, r.out, r.err);
    size_t a = 0, b = 0;
    char *x = h_read_file(in, &a), *y = h_read_file(out, &b);
    ck_assert_msg(x && y && a == b && memcmp(x, y, a) == 0, "the echo differs (%zu of %zu bytes)",
                  b, a);
    free(x);
    free(y);
}
END_TEST

/* ------------------------------------------------------------ main */

/* A client that pipelines large downloads and never reads: corral closes
 * it after body_timeout (its write timeout), and the requests cut off are
 * logged as such, not as plain 200s. */
static const char NOT_READING_PY[] =
    "import socket, ssl, sys, time\n"
    "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
    "ctx.set_alpn_protocols(['http/1.1'])\n"
    "raw = socket.socket()\n"
    "raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n"
    "raw.connect(('127.0.0.1', int(sys.argv[1])))\n"
    "s = ctx.wrap_socket(raw, server_hostname='edge.test')\n"
    "s.sendall(b'GET /bytes/4000000 HTTP/1.1\\r\\nHost: edge.test\\r\\n\\r\\n' * 3)\n"
    "time.sleep(float(sys.argv[3]))\n"
    "s.close()\n";

START_TEST(not_reading_cut_off_is_logged)
{
    start("h2", "http: {body_timeout: 1s}\n");
    char *argv[] = {"python3", "-c", (char *)NOT_READING_PY, h_strf(T, "%d", T->port),
                    h_strf(T, "%s/ca.crt", T->certs), "4", NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 10000, &r), 0);
    const char *log = h_path(T, "access.log");
    ck_assert_msg(h_wait_file_line(log,
                                   (const char *const[]){"/bytes/4000000",
                                                         "connection closed before the response "
                                                         "was sent",
                                                         NULL},
                                   5000),
                  "no cut-off request logged as such: %s", h_file_tail(T, log, 1500));
}
END_TEST

static TCase *tcase(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout_s);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *h1hostile_suite(void)
{
    Suite *s = suite_create("h1hostile");
    TCase *tc = tcase(s, "trailers", 30);
    tcase_add_test(tc, trailers_after_local_answer_no_crash);
    tcase_add_loop_test(tc, trailers_never_reach_the_upstream, 0, 2);
    tc = tcase(s, "head", 30);
    tcase_add_loop_test(tc, refused_before_the_upstream, 0,
                        (int)(sizeof(REFUSED) / sizeof(REFUSED[0])));
    tcase_add_test(tc, absolute_form_target);
    tc = tcase(s, "pipeline", 40);
    tcase_add_test(tc, pipeline_cap_within_one_write);
    tcase_add_test(tc, last_request_body_read_whole);
    tcase_add_test(tc, not_reading_cut_off_is_logged);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(h1hostile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
