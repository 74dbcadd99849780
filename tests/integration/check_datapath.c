/* check_datapath.c - what happens to a request between client and upstream
 * (issue 4): bodies both ways, streaming with flat memory, HTTP/1.1
 * pipelining, 100-continue, Connection: close, the headers corral adds and
 * removes, the HTTP limits, request smuggling, and the upstream pool.
 *
 * The upstream is tests/testup/testup (h_testup_start): /echo streams the request
 * body back, /bytes/N sends N bytes, /delay/MS answers late, /headers shows
 * the header fields it received, /__stats counts connections and requests.
 * Clients are curl, openssl s_client (raw HTTP/1.1 bytes, -quiet so that it
 * sends its input, then waits until corral closes), nghttp and h2load. Each
 * test starts its own testup and corral; the harness kills them all. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1024L * 1024L)
#define BIG (200L * MB) /* the streamed transfers */
#define RSS_GROWTH_KB (32 * 1024)
#define RAW_MS 5000 /* an s_client run that corral should end */

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

/* Starts testup on T->uport (its defaults: 100 streams, no service time). */
static pid_t testup(void)
{
    pid_t pid = h_testup_start(T, T->uport, (char *)NULL);
    ck_assert_msg(pid > 0, "testup did not start: %s",
                  h_file_tail(T, h_strf(T, "%s/testup-%d.log", T->dir, T->uport), 1500));
    return pid;
}

/* A config: the listener on 127.0.0.1:port, testup over proto with conns
 * connections per worker; extra (top-level YAML, e.g. an http: mapping) is
 * appended verbatim. */
static char *config(int workers, int port, const char *proto, int conns, const char *extra)
{
    return h_strf(T,
                  "workers: %d\n"
                  "drain_timeout: 1s\n"
                  "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n"
                  "listeners:\n"
                  "  - name: https\n"
                  "    address: 127.0.0.1:%d\n"
                  "    tls:\n"
                  "      certificates:\n"
                  "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                  "upstream:\n"
                  "  addresses: [127.0.0.1:@UPORT@]\n"
                  "  protocol: %s\n"
                  "  connections: %d\n"
                  "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                  "key: @CERTS@/client.key, sni: lb.test}\n"
                  "%s",
                  workers, port, proto, conns, extra ? extra : "");
}

/* Starts corral with the config text yaml, listening on port, and waits
 * until the master has its workers. Returns the master. */
static pid_t corral(const char *name, const char *yaml, int port, int workers)
{
    char *cfg = h_config_write(T, name, yaml);
    ck_assert_msg(cfg != NULL, "cannot write %s", name);
    pid_t m = h_corral_start(T, cfg, port);
    ck_assert_msg(m > 0, "corral did not start on port %d: %s | error log: %s", port,
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    int n = h_wait_children(m, workers, 5000, NULL);
    ck_assert_msg(n == workers, "master has %d worker(s), expected %d", n, workers);
    return m;
}

/* testup and a default corral (2 workers, 2 connections) over proto, with
 * the top-level extra YAML. */
static pid_t start_pair(const char *proto, const char *extra)
{
    testup();
    return corral("corral.yaml", config(2, T->port, proto, 2, extra), T->port, 2);
}

/* ------------------------------------------------------------ testup counters */

static int NSTATS; /* /__stats queries made: each is a connection testup accepted */

static char *stats(void)
{
    char *j = h_testup_stats(T, T->uport, false);
    ck_assert_msg(j != NULL, "cannot read testup's /__stats");
    NSTATS++;
    return j;
}

/* Requests testup has begun (not counting /__stats). */
static long up_requests(void)
{
    return h_json_long(stats(), "requests");
}

/* Connections testup accepted from corral (the stats queries taken out). */
static long up_accepted(void)
{
    char *j = stats();
    return h_json_long(j, "connections_accepted") - NSTATS;
}

/* ------------------------------------------------------------ the access log */

/* What identifies corral's access-log line for one request: its protocol
 * ("HTTP/1.1", "HTTP/2", "HTTP/1.0"), its status and, unless NULL, its
 * path. A NULL-terminated list of needles for h_file_count_lines. */
struct line {
    const char *needles[4];
};

static struct line line_of(const char *protocol, int status, const char *path)
{
    struct line l = {{h_strf(T, "\"protocol\":\"%s\"", protocol),
                      h_strf(T, "\"status\":%d,", status),
                      path != NULL ? h_strf(T, "\"path\":\"%s\"", path) : NULL, NULL}};
    return l;
}

/* The number of such lines so far: taken before the request is sent. */
static int logged(const struct line *l)
{
    return h_file_count_lines(T->access_log, l->needles);
}

/* The barrier before counting what reached the upstream: waits (3 s at
 * most) until the access log has one more such line than before, i.e.
 * corral is done with the request. */
static void await_logged(const char *what, const struct line *l, int before)
{
    ck_assert_msg(h_wait_file_lines(T->access_log, l->needles, before + 1, 3000),
                  "%s: corral never logged the request (%s %s): %s", what, l->needles[0],
                  l->needles[1], h_file_tail(T, T->access_log, 1500));
}

/* ------------------------------------------------------------ small things */

static bool has(const char *text, const char *needle)
{
    return text != NULL && strstr(text, needle) != NULL;
}

static bool has_nocase(const char *text, const char *needle)
{
    return text != NULL && strcasestr(text, needle) != NULL;
}

/* The string value of "key" in a flat JSON object (testup's /headers), or
 * NULL when absent. Escapes are kept as written. */
static char *json_str(const char *json, const char *key)
{
    const char *needle = h_strf(T, "\"%s\":\"", key);
    const char *p = json ? strstr(json, needle) : NULL;
    if (p == NULL)
        return NULL;
    p += strlen(needle);
    const char *e = p;
    while (*e != '\0' && *e != '"')
        e += (*e == '\\' && e[1] != '\0') ? 2 : 1;
    return h_strf(T, "%.*s", (int)(e - p), p);
}

static bool is_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

/* Writes len bytes of data to DIR/name; returns the path. */
static char *write_bytes(const char *name, const void *data, size_t len)
{
    char *path = h_path(T, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_msg(fwrite(data, 1, len, f) == len && fclose(f) == 0, "cannot write %s", path);
    return path;
}

/* DIR/name with size random bytes. */
static char *random_file(const char *name, size_t size)
{
    char *buf = malloc(size);
    ck_assert(buf != NULL);
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "cannot open /dev/urandom");
    for (size_t n = 0; n < size;) {
        ssize_t r = read(fd, buf + n, size - n);
        ck_assert_msg(r > 0, "cannot read /dev/urandom");
        n += (size_t)r;
    }
    close(fd);
    char *path = write_bytes(name, buf, size);
    free(buf);
    return path;
}

/* DIR/name of size bytes, sparse (zeros): a large upload costs no disk. */
static char *sparse_file(const char *name, off_t size)
{
    char *path = h_path(T, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0 && ftruncate(fd, size) == 0 && close(fd) == 0, "cannot make %s", path);
    return path;
}

/* -1 when the files are equal, else the offset of the first difference
 * (the shorter length when one is a prefix of the other). */
static long first_difference(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = h_read_file(a, &la), *y = h_read_file(b, &lb);
    long at = -1;
    if (x == NULL || y == NULL) {
        at = 0;
    } else {
        size_t n = la < lb ? la : lb;
        for (size_t i = 0; i < n && at < 0; i++)
            if (x[i] != y[i])
                at = (long)i;
        if (at < 0 && la != lb)
            at = (long)n;
    }
    free(x);
    free(y);
    return at;
}

/* ------------------------------------------------------------ clients */

/* A curl transfer whose body goes to a file (binary-safe). */
struct xfer {
    int exit_code;
    int status;
    char version[8];
    long up, down; /* size_upload, size_download */
    char *body;    /* the file the response body went to */
    char *err;     /* curl's stderr */
};

/* curl to https://edge.test:port path (resolved to 127.0.0.1), its body to
 * DIR/xfer-N.body, at most max_s seconds, with args (NULL-terminated). */
static void curl_x(struct xfer *x, int port, const char *path, int max_s, const char *const *args)
{
    static int seq;
    memset(x, 0, sizeof(*x));
    x->body = h_strf(T, "%s/xfer-%d.body", T->dir, ++seq);
    char *argv[80];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-q";
    argv[n++] = "-sS";
    argv[n++] = "--noproxy";
    argv[n++] = "*";
    argv[n++] = "--cacert";
    argv[n++] = h_strf(T, "%s/ca.crt", T->certs);
    argv[n++] = "--resolve";
    argv[n++] = h_strf(T, "edge.test:%d:127.0.0.1", port);
    argv[n++] = "--max-time";
    argv[n++] = h_strf(T, "%d", max_s);
    argv[n++] = "-o";
    argv[n++] = x->body;
    argv[n++] = "-w";
    argv[n++] = "%{http_code} %{http_version} %{size_upload} %{size_download}";
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 78; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = h_strf(T, "https://edge.test:%d%s", port, path);
    argv[n] = NULL;
    struct h_run r;
    ck_assert_msg(h_run(T, argv, (max_s + 5) * 1000, &r) == 0, "cannot run curl");
    x->exit_code = r.exit_code;
    x->err = r.err;
    if (sscanf(r.out, "%d %7s %ld %ld", &x->status, x->version, &x->up, &x->down) != 4)
        x->status = 0;
}

/* The answer to raw bytes sent over TLS with ALPN http/1.1. */
struct raw {
    char *out;    /* everything corral sent back */
    bool closed;  /* corral closed the connection (s_client ended by itself) */
    long long ms; /* from start until then */
};

/* openssl s_client -quiet: sends the len bytes of req at once (one read of
 * its input: under 16 KB, one TLS record), then waits for corral to close
 * the connection, at most timeout_ms. */
static void raw_h1(struct raw *x, int port, const void *req, size_t len, int timeout_ms)
{
    static int seq;
    char *in = write_bytes(h_strf(T, "raw-%d.req", ++seq), req, len);
    char *argv[] = {"openssl",
                    "s_client",
                    "-quiet",
                    "-connect",
                    h_strf(T, "127.0.0.1:%d", port),
                    "-servername",
                    "edge.test",
                    "-alpn",
                    "http/1.1",
                    "-CAfile",
                    h_strf(T, "%s/ca.crt", T->certs),
                    NULL};
    struct h_run r;
    long long t0 = h_now_ms();
    ck_assert_msg(h_run_stdin(T, argv, in, timeout_ms, &r) == 0, "cannot run openssl s_client");
    x->ms = h_now_ms() - t0;
    x->out = r.out;
    x->closed = !r.timed_out;
}

static void raw_str(struct raw *x, int port, const char *req, int timeout_ms)
{
    raw_h1(x, port, req, strlen(req), timeout_ms);
}

/* The status of the first response in raw output, 0 when none. */
static int raw_status(const struct raw *x)
{
    int s = 0;
    return sscanf(x->out, "HTTP/1.1 %d", &s) == 1 ? s : 0;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* h2load (or h2load --h1) ARGS against https://127.0.0.1:port/; its
 * "succeeded" and "2xx" counts. */
static void h2load(int port, const char *const *args, long *succeeded, long *ok2xx, char **out)
{
    char *argv[40];
    int n = 0;
    argv[n++] = "h2load";
    for (size_t i = 0; args[i] != NULL && n < 38; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = h_strf(T, "https://127.0.0.1:%d/", port);
    argv[n] = NULL;
    struct h_run r;
    ck_assert_msg(h_run(T, argv, 60000, &r) == 0, "cannot run h2load");
    ck_assert_msg(!r.timed_out, "h2load ran over 60 s: %s", r.out);
    const char *p = strstr(r.out, "requests:");
    long total, started, done;
    *succeeded = *ok2xx = -1;
    if (p != NULL)
        sscanf(p, "requests: %ld total, %ld started, %ld done, %ld succeeded", &total, &started,
               &done, succeeded);
    p = strstr(r.out, "status codes:");
    if (p != NULL)
        sscanf(p, "status codes: %ld 2xx", ok2xx);
    *out = r.out;
}

/* The sum of VmRSS (KB) over the master's children (the workers). */
static long workers_rss_kb(pid_t master)
{
    pid_t w[H_MAX_PIDS];
    int n = h_children(master, w, H_MAX_PIDS);
    long sum = 0;
    for (int i = 0; i < n && i < H_MAX_PIDS; i++) {
        char *s = h_read_file(h_strf(T, "/proc/%d/status", (int)w[i]), NULL);
        const char *p = s ? strstr(s, "VmRSS:") : NULL;
        long kb = 0;
        if (p != NULL && sscanf(p, "VmRSS: %ld", &kb) == 1)
            sum += kb;
        free(s);
    }
    return sum;
}

/* ------------------------------------------------------------ bodies */

/* A 1 MB random body to /echo comes back byte for byte: Content-Length and
 * chunked over HTTP/1.1, and HTTP/2, to an upstream speaking h2 (_i = 0) or
 * HTTP/1.1 (_i = 1). */
START_TEST(bodies_echo_both_ways)
{
    const char *proto = PROTOS[_i];
    start_pair(proto, NULL);
    char *in = random_file("body.bin", (size_t)MB);
    char *data = h_strf(T, "@%s", in);
    struct {
        const char *name, *version;
        const char *args[8];
    } cases[] = {
        {"HTTP/1.1 content-length", "1.1", {"--http1.1", "--data-binary", data, NULL}},
        {"HTTP/1.1 chunked",
         "1.1",
         {"--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", data, NULL}},
        {"HTTP/2", "2", {"--http2", "--data-binary", data, NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xfer x;
        curl_x(&x, T->port, "/echo", 20, cases[i].args);
        ck_assert_msg(x.exit_code == 0 && x.status == 200,
                      "%s to a %s upstream: curl exit %d, HTTP %d: %s | error log: %s",
                      cases[i].name, proto, x.exit_code, x.status, x.err,
                      h_file_tail(T, T->error_log, 1000));
        ck_assert_msg(strcmp(x.version, cases[i].version) == 0, "%s: curl spoke HTTP/%s",
                      cases[i].name, x.version);
        /* chunked framing counts in curl's size_upload */
        ck_assert_msg(x.up >= MB, "%s: curl sent %ld bytes", cases[i].name, x.up);
        long diff = first_difference(in, x.body);
        ck_assert_msg(diff < 0, "%s to a %s upstream: the echo (%ld bytes) differs at byte %ld",
                      cases[i].name, proto, x.down, diff);
    }
}
END_TEST

/* ------------------------------------------------------------ streaming */

/* Runs curl (args, then the URL) in the background while sampling the
 * workers' RSS every 50 ms; fails the test when it grows by 32 MB or more
 * over the value before, or when the transfer does not end with 200 and
 * `down` bytes received and `up` sent. */
static void transfer_with_flat_memory(pid_t master, const char *what, const char *path,
                                      const char *const *args, long up, long down)
{
    static int seq;
    char *w = h_strf(T, "%s/stream-%d.w", T->dir, ++seq);
    char *argv[32];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-q";
    argv[n++] = "-sS";
    argv[n++] = "--noproxy";
    argv[n++] = "*";
    argv[n++] = "--cacert";
    argv[n++] = h_strf(T, "%s/ca.crt", T->certs);
    argv[n++] = "--resolve";
    argv[n++] = h_strf(T, "edge.test:%d:127.0.0.1", T->port);
    argv[n++] = "--max-time";
    argv[n++] = "60";
    argv[n++] = "-o";
    argv[n++] = "/dev/null";
    argv[n++] = "-w";
    argv[n++] = "%{http_code} %{size_upload} %{size_download}";
    for (size_t i = 0; args[i] != NULL && n < 30; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = h_strf(T, "https://edge.test:%d%s", T->port, path);
    argv[n] = NULL;

    h_sleep_ms(100);
    long base = workers_rss_kb(master), peak = base;
    pid_t pid = h_spawn(T, argv, w, h_strf(T, "%s.err", w));
    ck_assert_msg(pid > 0, "cannot start curl");
    long long end = h_now_ms() + 65000;
    int st = 0;
    int samples = 0;
    while (h_wait_exit(pid, 50, &st) != 0) {
        long now = workers_rss_kb(master);
        peak = now > peak ? now : peak;
        samples++;
        ck_assert_msg(h_now_ms() < end, "%s: curl still running after 65 s", what);
    }
    int code = 0;
    long sent = -1, got = -1;
    char *res = h_read_file(w, NULL);
    if (res == NULL || sscanf(res, "%d %ld %ld", &code, &sent, &got) != 3)
        code = 0;
    free(res);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && code == 200 && sent == up && got == down,
                  "%s: curl exit %d, HTTP %d, sent %ld, received %ld (want %ld / %ld): %s | "
                  "error log: %s",
                  what, WIFEXITED(st) ? WEXITSTATUS(st) : -1, code, sent, got, up, down,
                  h_file_tail(T, h_strf(T, "%s.err", w), 500), h_file_tail(T, T->error_log, 1000));
    ck_assert_msg(samples >= 3, "%s: too quick to measure (%d samples)", what, samples);
    ck_assert_msg(peak - base < RSS_GROWTH_KB,
                  "%s: the workers' RSS grew by %ld KB (from %ld KB to %ld KB), not bounded", what,
                  peak - base, base, peak);
}

/* A 200 MB answer streams through with the workers' memory flat, over
 * HTTP/2 and HTTP/1.1 clients, from an h2 (_i = 0) or HTTP/1.1 upstream. */
START_TEST(stream_download_flat_memory)
{
    pid_t m = start_pair(PROTOS[_i], NULL);
    const char *h2[] = {"--http2", NULL}, *h1[] = {"--http1.1", NULL};
    char *path = h_strf(T, "/bytes/%ld", BIG);
    transfer_with_flat_memory(m, h_strf(T, "download over HTTP/2 from %s", PROTOS[_i]), path, h2, 0,
                              BIG);
    transfer_with_flat_memory(m, h_strf(T, "download over HTTP/1.1 from %s", PROTOS[_i]), path, h1,
                              0, BIG);
}
END_TEST

/* A 200 MB upload to /echo (curl -T, the echo thrown away) streams both
 * ways with the workers' memory flat. */
START_TEST(stream_upload_flat_memory)
{
    pid_t m = start_pair(PROTOS[_i], NULL);
    char *file = sparse_file("big.bin", BIG);
    const char *h2[] = {"--http2", "-T", file, NULL}, *h1[] = {"--http1.1", "-T", file, NULL};
    transfer_with_flat_memory(m, h_strf(T, "upload over HTTP/1.1 to %s", PROTOS[_i]), "/echo", h1,
                              BIG, BIG);
    transfer_with_flat_memory(m, h_strf(T, "upload over HTTP/2 to %s", PROTOS[_i]), "/echo", h2,
                              BIG, BIG);
}
END_TEST

/* ------------------------------------------------------------ HTTP/1.1 connection */

/* Five requests in one write come back in order although the first is the
 * slowest upstream; the fifth's Connection: close ends the connection. */
START_TEST(pipelining_keeps_order)
{
    start_pair("h2", NULL);
    static const char *const paths[] = {"/delay/300", "/p2", "/delay/100", "/p4", "/p5"};
    char *req = h_strf(T, "%s", "");
    for (int i = 0; i < 5; i++)
        req = h_strf(T, "%sGET %s HTTP/1.1\r\nHost: edge.test\r\n%s\r\n", req, paths[i],
                     i == 4 ? "Connection: close\r\n" : "");
    struct raw x;
    raw_str(&x, T->port, req, RAW_MS);
    ck_assert_msg(x.closed, "the connection stayed open after Connection: close: %.600s", x.out);
    ck_assert_msg(count_of(x.out, "HTTP/1.1 200 OK\r\n") == 5, "not five 200s: %.1500s", x.out);
    const char *p = x.out;
    for (int i = 0; i < 5; i++) {
        const char *want = h_strf(T, "\"path\":\"%s\"", paths[i]);
        const char *at = strstr(p, "\"path\":\"");
        ck_assert_msg(at != NULL, "answer %d is missing: %.1500s", i + 1, x.out);
        ck_assert_msg(strncmp(at, want, strlen(want)) == 0, "answer %d is not for %s: %.80s", i + 1,
                      paths[i], at);
        p = at + 1;
    }
}
END_TEST

/* Expect: 100-continue gets its 100 at once (curl would otherwise wait
 * 30 s, over its 10 s limit) and the 2 MB body is echoed. */
START_TEST(expect_100_continue)
{
    start_pair("h2", NULL);
    char *in = random_file("body2m.bin", (size_t)(2 * MB));
    const char *args[] = {"--http1.1",
                          "-v",
                          "-H",
                          "Expect: 100-continue",
                          "--expect100-timeout",
                          "30",
                          "--data-binary",
                          h_strf(T, "@%s", in),
                          NULL};
    struct xfer x;
    curl_x(&x, T->port, "/echo", 10, args);
    ck_assert_msg(x.exit_code == 0 && x.status == 200, "curl exit %d, HTTP %d: %.1500s",
                  x.exit_code, x.status, x.err);
    ck_assert_msg(has(x.err, "< HTTP/1.1 100 Continue"), "no 100 Continue: %.1500s", x.err);
    long diff = first_difference(in, x.body);
    ck_assert_msg(diff < 0, "the echo (%ld bytes) differs at byte %ld", x.down, diff);
}
END_TEST

/* Connection: close is honoured: the answer says so, the connection ends
 * (idle_timeout is 60 s), and what followed the request is not served. */
START_TEST(connection_close_honoured)
{
    start_pair("h2", NULL);
    struct line first = line_of("HTTP/1.1", 200, "/first");
    int n0 = logged(&first);
    long r0 = up_requests();
    struct raw x;
    raw_str(&x, T->port,
            "GET /first HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n"
            "GET /second HTTP/1.1\r\nHost: edge.test\r\n\r\n",
            RAW_MS);
    ck_assert_msg(raw_status(&x) == 200, "no 200: %.600s", x.out);
    ck_assert_msg(has_nocase(x.out, "\r\nconnection: close\r\n"), "no connection: close: %.600s",
                  x.out);
    ck_assert_msg(x.closed && x.ms < 3000, "the connection was not closed (%lld ms): %.600s", x.ms,
                  x.out);
    ck_assert_msg(count_of(x.out, "HTTP/1.1 ") == 1, "a request after close was served: %.900s",
                  x.out);
    await_logged("GET /first", &first, n0);
    ck_assert_int_eq(up_requests() - r0, 1);
}
END_TEST

/* HTTP/1.0 without Host (what `openssl s_time -www` sends): proxied, with
 * the TLS name as authority, and the connection closes after the answer;
 * HTTP/1.1 without Host is refused. */
START_TEST(http10_without_host)
{
    start_pair("h2", NULL);
    struct line ten = line_of("HTTP/1.0", 200, "/ten"), eleven = line_of("HTTP/1.1", 400, NULL);
    int n10 = logged(&ten), n11 = logged(&eleven);
    long r0 = up_requests();
    struct raw x;
    raw_str(&x, T->port, "GET /ten HTTP/1.0\r\n\r\n", RAW_MS);
    ck_assert_msg(strncmp(x.out, "HTTP/1.1 200", 12) == 0, "HTTP/1.0 without Host: %.600s", x.out);
    ck_assert_msg(x.closed && x.ms < 3000, "HTTP/1.0 connection not closed: %.600s", x.out);
    await_logged("HTTP/1.0 GET /ten", &ten, n10);
    ck_assert_int_eq(up_requests() - r0, 1);
    raw_str(&x, T->port, "GET /eleven HTTP/1.1\r\n\r\n", RAW_MS);
    ck_assert_msg(raw_status(&x) == 400, "HTTP/1.1 without Host: %.600s", x.out);
    await_logged("HTTP/1.1 GET /eleven without Host", &eleven, n11);
    ck_assert_int_eq(up_requests() - r0, 1);
}
END_TEST

/* ------------------------------------------------------------ headers */

static char *get_headers(int port, const char *const *args)
{
    struct h_http r;
    h_curl_edge(T, &r, port, "/headers", args);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "GET /headers: curl exit %d, HTTP %d: %s",
                  r.exit_code, r.status, r.err);
    return r.body;
}

/* The fields corral adds: X-Forwarded-For/-Proto, an X-Request-Id (32 hex)
 * and a traceparent when absent; the client's own kept; a client's
 * X-Forwarded-For replaced, not appended. Upstream h2 (_i = 0) or 1.1. */
START_TEST(headers_added)
{
    start_pair(PROTOS[_i], NULL);
    const char *h1[] = {"--http1.1", NULL};
    char *j = get_headers(T->port, h1);
    ck_assert_msg(json_str(j, "x-forwarded-for") &&
                      !strcmp(json_str(j, "x-forwarded-for"), "127.0.0.1"),
                  "x-forwarded-for: %s", j);
    ck_assert_msg(json_str(j, "x-forwarded-proto") &&
                      !strcmp(json_str(j, "x-forwarded-proto"), "https"),
                  "x-forwarded-proto: %s", j);
    char *id = json_str(j, "x-request-id");
    ck_assert_msg(id && strlen(id) == 32 && is_hex(id, 32), "x-request-id not 32 hex: %s", j);
    char *tp = json_str(j, "traceparent");
    ck_assert_msg(tp && strlen(tp) == 55 && !strncmp(tp, "00-", 3) && is_hex(tp + 3, 32) &&
                      tp[35] == '-' && is_hex(tp + 36, 16) && tp[52] == '-' && is_hex(tp + 53, 2) &&
                      strncmp(tp + 3, "00000000000000000000000000000000", 32) != 0,
                  "traceparent: %s", j);
    char *id2 = json_str(get_headers(T->port, h1), "x-request-id");
    ck_assert_msg(id2 && strcmp(id2, id) != 0, "the same x-request-id twice: %s", id);

    static const char *const tp_mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const char *own[] = {"--http2",
                         "-H",
                         "X-Request-Id: client-id-42",
                         "-H",
                         h_strf(T, "traceparent: %s", tp_mine),
                         "-H",
                         "X-Forwarded-For: 203.0.113.9",
                         NULL};
    j = get_headers(T->port, own);
    ck_assert_msg(json_str(j, "x-request-id") &&
                      !strcmp(json_str(j, "x-request-id"), "client-id-42"),
                  "the client's x-request-id was not kept: %s", j);
    ck_assert_msg(json_str(j, "traceparent") && !strcmp(json_str(j, "traceparent"), tp_mine),
                  "the client's traceparent was not kept: %s", j);
    ck_assert_msg(json_str(j, "x-forwarded-for") &&
                      !strcmp(json_str(j, "x-forwarded-for"), "127.0.0.1"),
                  "a client's x-forwarded-for must be replaced: %s", j);
    const char *spoof[] = {
        "--http1.1", "-H", "X-Forwarded-For: 198.51.100.7", "-H", "X-Forwarded-Proto: http", NULL};
    j = get_headers(T->port, spoof);
    ck_assert_msg(
        json_str(j, "x-forwarded-for") && !strcmp(json_str(j, "x-forwarded-for"), "127.0.0.1") &&
            json_str(j, "x-forwarded-proto") && !strcmp(json_str(j, "x-forwarded-proto"), "https"),
        "a client's x-forwarded-for/-proto must be replaced: %s", j);
}
END_TEST

/* Hop-by-hop fields (and those Connection names) do not reach the upstream,
 * from HTTP/1.1 clients; upstream h2 (_i = 0) or HTTP/1.1 (_i = 1). */
START_TEST(headers_hop_by_hop_removed)
{
    start_pair(PROTOS[_i], NULL);
    const char *args[] = {"--http1.1",
                          "-H",
                          "Connection: keep-alive, X-Foo",
                          "-H",
                          "X-Foo: 1",
                          "-H",
                          "Keep-Alive: timeout=5",
                          "-H",
                          "Proxy-Connection: x",
                          "-H",
                          "TE: gzip",
                          "-H",
                          "Upgrade: h2c",
                          "-H",
                          "X-Kept: yes",
                          NULL};
    char *j = get_headers(T->port, args);
    ck_assert_msg(json_str(j, "x-kept") != NULL, "an end-to-end field was lost: %s", j);
    static const char *const gone[] = {"x-foo", "keep-alive", "proxy-connection", "te", "upgrade"};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        ck_assert_msg(json_str(j, gone[i]) == NULL, "%s reached a %s upstream: %s", gone[i],
                      PROTOS[_i], j);
    char *conn = json_str(j, "connection");
    ck_assert_msg(conn == NULL || !has_nocase(conn, "x-foo"),
                  "the client's connection field reached the upstream: %s", j);
}
END_TEST

/* forwarded: forwarded sends RFC 7239 Forwarded instead of X-Forwarded-*,
 * a client's own Forwarded replaced; forwarded: off adds neither. */
START_TEST(headers_forwarded_styles)
{
    testup();
    corral("fwd.yaml", config(1, T->port, "h2", 1, "http: {forwarded: forwarded}\n"), T->port, 1);
    corral("off.yaml", config(1, T->port2, "h2", 1, "http: {forwarded: 'off'}\n"), T->port2, 1);
    const char *h1[] = {"--http1.1", NULL};
    char *j = get_headers(T->port, h1);
    ck_assert_msg(json_str(j, "forwarded") &&
                      !strcmp(json_str(j, "forwarded"), "for=127.0.0.1;proto=https"),
                  "forwarded: %s", j);
    ck_assert_msg(!json_str(j, "x-forwarded-for") && !json_str(j, "x-forwarded-proto"),
                  "x-forwarded-* sent with forwarded: forwarded: %s", j);
    const char *spoof[] = {"--http2", "-H", "Forwarded: for=203.0.113.9;proto=http", NULL};
    j = get_headers(T->port, spoof);
    ck_assert_msg(json_str(j, "forwarded") &&
                      !strcmp(json_str(j, "forwarded"), "for=127.0.0.1;proto=https"),
                  "a client's forwarded must be replaced: %s", j);
    j = get_headers(T->port2, h1);
    ck_assert_msg(!json_str(j, "forwarded") && !json_str(j, "x-forwarded-for") &&
                      !json_str(j, "x-forwarded-proto"),
                  "forwarding fields sent with forwarded: off: %s", j);
}
END_TEST

/* ------------------------------------------------------------ limits */

#define LIMITS "http: {max_body: 1k, header_timeout: 1s, idle_timeout: 1s}\n"

/* Expects status and a closed connection for raw HTTP/1.1 bytes, and that
 * nothing reached the upstream. */
static void expect_raw_refusal(const char *what, const void *req, size_t len, int status)
{
    struct line l = line_of("HTTP/1.1", status, NULL);
    int n0 = logged(&l);
    long r0 = up_requests();
    struct raw x;
    raw_h1(&x, T->port, req, len, RAW_MS);
    ck_assert_msg(raw_status(&x) == status, "%s: HTTP %d (want %d) after %lld ms: %.300s", what,
                  raw_status(&x), status, x.ms, x.out);
    ck_assert_msg(x.closed, "%s: the connection stayed open", what);
    await_logged(what, &l, n0);
    long d = up_requests() - r0;
    ck_assert_msg(d == 0, "%s: %ld request(s) reached the upstream", what, d);
}

/* Expects status from curl with args (HTTP/2 when they hold --http2, else
 * HTTP/1.1) and that nothing reached the upstream. */
static void expect_curl_refusal(const char *what, const char *path, const char *const *args,
                                int status)
{
    const char *protocol = "HTTP/1.1";
    for (size_t i = 0; args[i] != NULL; i++)
        if (strcmp(args[i], "--http2") == 0)
            protocol = "HTTP/2";
    struct line l = line_of(protocol, status, NULL);
    int n0 = logged(&l);
    long r0 = up_requests();
    struct xfer x;
    curl_x(&x, T->port, path, 5, args);
    ck_assert_msg(x.status == status, "%s: HTTP %d (want %d), curl exit %d: %s", what, x.status,
                  status, x.exit_code, x.err);
    await_logged(what, &l, n0);
    long d = up_requests() - r0;
    ck_assert_msg(d == 0, "%s: %ld request(s) reached the upstream", what, d);
}

/* A curl config (-K) with n header lines X-H<i>: v. */
static char *many_headers_file(int n)
{
    char *text = h_strf(T, "%s", "");
    for (int i = 0; i < n; i++)
        text = h_strf(T, "%sheader = \"X-H%d: v\"\n", text, i);
    char *path = h_path(T, "headers.curlrc");
    ck_assert_int_eq(h_write_file(path, text), 0);
    return path;
}

START_TEST(limit_header_size_431)
{
    start_pair("h2", LIMITS);
    char *big = malloc(20 * 1024 + 1);
    memset(big, 'a', 20 * 1024);
    big[20 * 1024] = '\0';
    char *req = h_strf(T, "GET / HTTP/1.1\r\nHost: edge.test\r\nX-Big: %s\r\n\r\n", big);
    char *hdr = h_strf(T, "X-Big: %s", big);
    free(big);
    expect_raw_refusal("HTTP/1.1, a 20 KB field", req, strlen(req), 431);
    const char *h2[] = {"--http2", "-H", hdr, NULL};
    expect_curl_refusal("HTTP/2, a 20 KB field", "/", h2, 431);
}
END_TEST

START_TEST(limit_header_count_431)
{
    start_pair("h2", LIMITS);
    char *req = h_strf(T, "%s", "GET / HTTP/1.1\r\nHost: edge.test\r\n");
    for (int i = 0; i < 200; i++)
        req = h_strf(T, "%sX-H%d: v\r\n", req, i);
    req = h_strf(T, "%s\r\n", req);
    expect_raw_refusal("HTTP/1.1, 200 fields", req, strlen(req), 431);
    const char *h2[] = {"--http2", "-K", many_headers_file(200), NULL};
    expect_curl_refusal("HTTP/2, 200 fields", "/", h2, 431);
}
END_TEST

START_TEST(limit_uri_414)
{
    start_pair("h2", LIMITS);
    char *seg = malloc(10 * 1024 + 1);
    memset(seg, 'u', 10 * 1024);
    seg[10 * 1024] = '\0';
    char *path = h_strf(T, "/%s", seg);
    free(seg);
    char *req = h_strf(T, "GET %s HTTP/1.1\r\nHost: edge.test\r\n\r\n", path);
    expect_raw_refusal("HTTP/1.1, a 10 KB URI", req, strlen(req), 414);
    const char *h2[] = {"--http2", NULL};
    expect_curl_refusal("HTTP/2, a 10 KB :path", path, h2, 414);
}
END_TEST

/* A body over max_body: 413 over HTTP/2; over HTTP/1.1 (Content-Length
 * 4096, max_body 1k) 413 and the connection closed, and the body - which
 * holds a request - is never read as a request. */
START_TEST(limit_body_413)
{
    start_pair("h2", LIMITS);
    char body[4096];
    static const char hidden[] = "GET /smuggled HTTP/1.1\r\nHost: edge.test\r\nX-Pad: ";
    memset(body, 'b', sizeof(body));
    memcpy(body, hidden, sizeof(hidden) - 1);
    memcpy(body + sizeof(body) - 4, "\r\n\r\n", 4);
    char *file = write_bytes("body4k.bin", body, sizeof(body));
    const char *h2[] = {"--http2", "--data-binary", h_strf(T, "@%s", file), NULL};
    expect_curl_refusal("HTTP/2, 4 KB body over max_body 1k", "/echo", h2, 413);

    char *head = h_strf(T, "POST /echo HTTP/1.1\r\nHost: edge.test\r\nContent-Length: %zu\r\n\r\n",
                        sizeof(body));
    size_t hl = strlen(head);
    char *req = malloc(hl + sizeof(body));
    memcpy(req, head, hl);
    memcpy(req + hl, body, sizeof(body));
    struct line l = line_of("HTTP/1.1", 413, "/echo");
    int n0 = logged(&l);
    long r0 = up_requests();
    struct raw x;
    raw_h1(&x, T->port, req, hl + sizeof(body), 3000);
    free(req);
    await_logged("HTTP/1.1, Content-Length 4096 over max_body 1k", &l, n0);
    long d = up_requests() - r0;
    ck_assert_msg(raw_status(&x) == 413 && x.closed && d == 0,
                  "HTTP/1.1, Content-Length 4096 over max_body 1k: HTTP %d (want 413), %s after "
                  "%lld ms, %ld request(s) reached the upstream (want 0): %.300s",
                  raw_status(&x), x.closed ? "closed" : "still open", x.ms, d, x.out);
}
END_TEST

/* Half a request head, then silence: 408 after header_timeout (1 s), and
 * the connection closes. */
START_TEST(limit_header_timeout_408)
{
    start_pair("h2", LIMITS);
    long r0 = up_requests();
    struct raw x;
    raw_str(&x, T->port, "GET / HTTP/1.1\r\nHost: edge.test\r\nX-Partial: ", RAW_MS);
    ck_assert_msg(raw_status(&x) == 408, "HTTP %d (want 408) after %lld ms: %.300s", raw_status(&x),
                  x.ms, x.out);
    ck_assert_msg(x.closed, "the connection stayed open after the 408");
    ck_assert_msg(x.ms >= 500 && x.ms <= 1500, "408 after %lld ms, header_timeout is 1 s", x.ms);
    ck_assert_int_eq(up_requests() - r0, 0);
}
END_TEST

/* An idle keep-alive connection is closed after idle_timeout (1 s). */
START_TEST(limit_idle_timeout_closes)
{
    start_pair("h2", LIMITS);
    struct raw x;
    raw_str(&x, T->port, "GET /idle HTTP/1.1\r\nHost: edge.test\r\n\r\n", RAW_MS);
    ck_assert_msg(raw_status(&x) == 200 && has(x.out, "\"path\":\"/idle\""), "no answer: %.300s",
                  x.out);
    ck_assert_msg(!has_nocase(x.out, "connection: close"), "closed by the answer: %.300s", x.out);
    ck_assert_msg(x.closed, "the idle connection stayed open %d ms (idle_timeout 1 s)", RAW_MS);
    ck_assert_msg(x.ms >= 500 && x.ms <= 1500, "closed after %lld ms, idle_timeout is 1 s", x.ms);
}
END_TEST

/* ------------------------------------------------------------ smuggling */

/* Each request is ambiguous or malformed: 400, the connection closed, and no
 * request (the GET /smuggled behind it least of all) reaches the upstream;
 * for the bad chunk, whose head was valid and may already be upstream, at
 * most that one. One loop iteration (a fresh corral) per case. */
#define RAW(s) s, sizeof(s) - 1 /* a literal and its length, NUL bytes included */

static const struct {
    const char *name;
    const char *req;
    size_t len;
    long max_upstream;
} SMUGGLE[] = {
    {"Content-Length with Transfer-Encoding",
     RAW("POST /echo HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 6\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n"
         "Host: edge.test\r\n\r\n"),
     0},
    {"two different Content-Length",
     RAW("POST /echo HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 5\r\n"
         "Content-Length: 48\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: edge.test\r\n\r\n"),
     0},
    {"invalid chunk size",
     RAW("POST /echo HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n"
         "zz\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: edge.test\r\n\r\n"),
     1},
    {"obs-fold", RAW("GET / HTTP/1.1\r\nHost: edge.test\r\nX-Folded: a\r\n b\r\n\r\n"), 0},
    {"bare CR in a value", RAW("GET / HTTP/1.1\r\nHost: edge.test\r\nX-Cr: a\rb\r\n\r\n"), 0},
    {"NUL in a value", RAW("GET / HTTP/1.1\r\nHost: edge.test\r\nX-Nul: a\0b\r\n\r\n"), 0},
    {"control character in a value",
     RAW("GET / HTTP/1.1\r\nHost: edge.test\r\nX-Ctl: a\001z\r\n\r\n"), 0},
    {"space before the colon",
     RAW("GET / HTTP/1.1\r\nHost: edge.test\r\nX-Foo : 1\r\n\r\n"
         "GET /smuggled HTTP/1.1\r\nHost: edge.test\r\n\r\n"),
     0},
};

START_TEST(smuggling_refused)
{
    start_pair("h2", NULL);
    const char *req = SMUGGLE[_i].req;
    size_t len = SMUGGLE[_i].len;
    struct line l = line_of("HTTP/1.1", 400, NULL);
    int n0 = logged(&l);
    long r0 = up_requests();
    struct raw x;
    raw_h1(&x, T->port, req, len, 3000);
    ck_assert_msg(raw_status(&x) == 400, "%s: HTTP %d (want 400), %s after %lld ms: %.400s",
                  SMUGGLE[_i].name, raw_status(&x), x.closed ? "closed" : "still open", x.ms,
                  x.out);
    await_logged(SMUGGLE[_i].name, &l, n0);
    long d = up_requests() - r0;
    ck_assert_msg(x.closed, "%s: the connection stayed open after the 400", SMUGGLE[_i].name);
    ck_assert_msg(count_of(x.out, "HTTP/1.1 ") == 1, "%s: more than one answer: %.600s",
                  SMUGGLE[_i].name, x.out);
    ck_assert_msg(d <= SMUGGLE[_i].max_upstream, "%s: %ld request(s) reached the upstream",
                  SMUGGLE[_i].name, d);
}
END_TEST

/* nghttp sends -H values as given: a value with CR LF in it must not become
 * a second header field upstream. The upstream speaks HTTP/1.1, where it
 * would. A clean value through the same tool shows the path works. The
 * request is refused - its stream reset with PROTOCOL_ERROR (RFC 9113
 * 8.2.1: a malformed request), no answer - and corral, once it has logged
 * it (status 0: no answer), has sent the upstream nothing. */
START_TEST(smuggling_h2_crlf_value)
{
    start_pair("http/1.1", NULL);
    char *url = h_strf(T, "https://127.0.0.1:%d/headers", T->port);
    char *ok_argv[] = {"nghttp", "-H", "x-test: clean", url, NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, ok_argv, 10000, &r), 0);
    ck_assert_msg(has(r.out, "\"x-test\":\"clean\""), "nghttp's clean request: %s | %s", r.out,
                  r.err);

    struct line reset = line_of("HTTP/2", 0, "/headers");
    int n0 = logged(&reset);
    long r0 = up_requests();
    char *bad_argv[] = {"nghttp", "-v", "-H", "x-test: a\r\nX-Injected: 1", url, NULL};
    ck_assert_int_eq(h_run(T, bad_argv, 10000, &r), 0);
    ck_assert_msg(has(r.out, "recv RST_STREAM frame") && has(r.out, "error_code=PROTOCOL_ERROR"),
                  "the request with CR LF in a value was not reset with PROTOCOL_ERROR: %s | %s",
                  r.out, r.err);
    ck_assert_msg(!has(r.out, ":status:") && !has(r.out, "recv DATA frame"),
                  "the request with CR LF in a value was answered: %s", r.out);
    ck_assert_msg(!has_nocase(r.out, "\"x-injected\""),
                  "the injected field reached the upstream: %s", r.out);
    await_logged("the request with CR LF in a value", &reset, n0);
    long d = up_requests() - r0;
    ck_assert_msg(d == 0, "a request with CR LF in a value reached the upstream (%ld): %s", d,
                  r.out);
}
END_TEST

/* ------------------------------------------------------------ the pool */

/* Waits until testup has `want` connections from corral open. */
static void wait_pool(long want)
{
    long open = -1;
    for (long long end = h_now_ms() + 5000; h_now_ms() < end; h_sleep_ms(50)) {
        open = h_json_long(stats(), "connections_open") - 1; /* our query */
        if (open == want)
            return;
    }
    ck_abort_msg("the pool has %ld upstream connection(s), expected %ld", open, want);
}

/* One load: every request succeeds, testup accepts no new connection and
 * has at most workers x connections open. */
static void load_keeps_pool(const char *what, const char *const *args, long n)
{
    long a0 = up_accepted();
    long ok = -1, ok2xx = -1;
    char *out;
    h2load(T->port, args, &ok, &ok2xx, &out);
    long a1 = up_accepted();
    long open = h_json_long(stats(), "connections_open") - 1;
    ck_assert_msg(ok == n && ok2xx == n,
                  "%s: %ld succeeded, %ld 2xx of %ld: %.1500s | error log: %s", what, ok, ok2xx, n,
                  out, h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(a1 - a0 == 0, "%s: testup accepted %ld new connection(s) | error log: %s", what,
                  a1 - a0, h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(open <= 4, "%s: %ld upstream connections open, at most 2 workers x 2", what,
                  open);
}

/* 2000 requests over 200 client connections, HTTP/2 and HTTP/1.1: the
 * workers' 2 x 2 upstream connections carry them all. */
START_TEST(pool_carries_load)
{
    start_pair("h2", NULL);
    wait_pool(4);
    const char *warm[] = {"-c", "4", "-n", "200", NULL};
    long ok, ok2xx;
    char *out;
    h2load(T->port, warm, &ok, &ok2xx, &out);
    ck_assert_msg(ok == 200, "warm-up: %s", out);
    const char *h2[] = {"-c", "200", "-m", "4", "-n", "2000", NULL};
    load_keeps_pool("h2load -c 200 -m 4 -n 2000", h2, 2000);
    const char *h1[] = {"--h1", "-c", "200", "-n", "2000", NULL};
    load_keeps_pool("h2load --h1 -c 200 -n 2000", h1, 2000);
}
END_TEST

/* One upstream connection carries 1500 HTTP/1.1 clients' requests without
 * being replaced: corral must not reset streams that have ended (a server
 * counts RST_STREAMs: nghttp2 >= 1.57, and Debian's 1.52 with the fix for
 * CVE-2023-44487, send GOAWAY after 1000 of them). */
START_TEST(pool_h1_clients_keep_upstream_connection)
{
    testup();
    corral("corral.yaml", config(1, T->port, "h2", 1, NULL), T->port, 1);
    wait_pool(1);
    long a0 = up_accepted();
    const char *h1[] = {"--h1", "-c", "10", "-n", "1500", NULL};
    long ok, ok2xx;
    char *out;
    h2load(T->port, h1, &ok, &ok2xx, &out);
    long a1 = up_accepted();
    ck_assert_msg(!h_file_contains(T->error_log, "GOAWAY"), "the upstream sent GOAWAY: %s",
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_msg(a1 - a0 == 0, "the upstream connection was replaced %ld time(s)", a1 - a0);
    ck_assert_msg(ok == 1500 && ok2xx == 1500, "%ld succeeded, %ld 2xx: %.1500s", ok, ok2xx, out);
}
END_TEST

/* ------------------------------------------------------------ main */

static TCase *tcase(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout_s);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *datapath_suite(void)
{
    Suite *s = suite_create("datapath");
    TCase *tc = tcase(s, "bodies", 60);
    tcase_add_loop_test(tc, bodies_echo_both_ways, 0, 2);
    tc = tcase(s, "streaming", 90);
    tcase_add_loop_test(tc, stream_download_flat_memory, 0, 2);
    tcase_add_loop_test(tc, stream_upload_flat_memory, 0, 2);
    tc = tcase(s, "connection", 30);
    tcase_add_test(tc, pipelining_keeps_order);
    tcase_add_test(tc, expect_100_continue);
    tcase_add_test(tc, connection_close_honoured);
    tcase_add_test(tc, http10_without_host);
    tc = tcase(s, "headers", 30);
    tcase_add_loop_test(tc, headers_added, 0, 2);
    tcase_add_loop_test(tc, headers_hop_by_hop_removed, 0, 2);
    tcase_add_test(tc, headers_forwarded_styles);
    tc = tcase(s, "limits", 30);
    tcase_add_test(tc, limit_header_size_431);
    tcase_add_test(tc, limit_header_count_431);
    tcase_add_test(tc, limit_uri_414);
    tcase_add_test(tc, limit_body_413);
    tcase_add_test(tc, limit_header_timeout_408);
    tcase_add_test(tc, limit_idle_timeout_closes);
    tc = tcase(s, "smuggling", 30);
    tcase_add_loop_test(tc, smuggling_refused, 0, (int)(sizeof(SMUGGLE) / sizeof(SMUGGLE[0])));
    tcase_add_test(tc, smuggling_h2_crlf_value);
    tc = tcase(s, "pool", 90);
    tcase_add_test(tc, pool_carries_load);
    tcase_add_test(tc, pool_h1_clients_keep_upstream_connection);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(datapath_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
