/* check_handoff.c - TLS 1.3 connections after the handoff to corral's own
 * record layer (src/tlsrec.c), through the real binary: requests and large
 * bodies both ways over HTTP/1.1 and HTTP/2, a client's KeyUpdate in the
 * middle of a keep-alive connection in every suite, TLS 1.2 left on
 * OpenSSL, and `handoff: false`. The count of handoffs comes from the admin
 * endpoint's GET /stats (tls_handoffs). Upstream: tests/testup/testup. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* testup, then corral with one worker (so /stats counts are one worker's),
 * admin on port2, and tls_extra under the listener's tls: (indent 6). */
static void start(const char *tls_extra)
{
    pid_t up = h_testup_start(T, T->uport, (char *)NULL);
    ck_assert_msg(up > 0, "testup did not start");
    char *yaml = h_strf(T,
                        "workers: 1\n"
                        "drain_timeout: 1s\n"
                        "log: {error: @DIR@/error.log, level: debug, access: @DIR@/access.log}\n"
                        "admin: {address: 127.0.0.1:@PORT2@}\n"
                        "listeners:\n"
                        "  - name: https\n"
                        "    address: 127.0.0.1:@PORT@\n"
                        "    tls:\n"
                        "      certificates:\n"
                        "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                        "%s"
                        "upstream:\n"
                        "  addresses: [127.0.0.1:@UPORT@]\n"
                        "  protocol: h2\n"
                        "  connections: 1\n"
                        "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                        "key: @CERTS@/client.key, sni: lb.test}\n",
                        tls_extra);
    char *cfg = h_config_write(T, "corral.yaml", yaml);
    ck_assert(cfg != NULL);
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s | %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, NULL), 1);
}

/* tls_handoffs in the admin endpoint's /stats (the total). */
static long handoffs(void)
{
    struct h_http r;
    h_curl(T, &r, h_strf(T, "http://127.0.0.1:%d/stats", T->port2), NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "GET /stats: curl %d, HTTP %d", r.exit_code,
                  r.status);
    const char *p = strstr(r.body, "\"total\":");
    ck_assert_msg(p != NULL, "no total in /stats: %s", r.body);
    p = strstr(p, "\"tls_handoffs\":");
    ck_assert_msg(p != NULL, "no tls_handoffs in /stats: %s", r.body);
    return strtol(p + strlen("\"tls_handoffs\":"), NULL, 10);
}

static void get_ok(const char *version, const char *path, size_t want_len)
{
    struct h_http r;
    const char *args[] = {version, NULL};
    h_curl_edge(T, &r, T->port, path, args);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "%s %s: curl %d, HTTP %d: %s", version, path,
                  r.exit_code, r.status, r.err);
    ck_assert_uint_eq(strlen(r.body), want_len);
}

/* A body of n printable bytes with a recognisable pattern, in DIR/name. */
static char *body_file(const char *name, size_t n)
{
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    text[n] = '\0';
    char *path = h_path(T, name);
    ck_assert_int_eq(h_write_file(path, text), 0);
    free(text);
    return path;
}

START_TEST(requests_and_bodies_after_handoff)
{
    start("");
    long before = handoffs();
    get_ok("--http1.1", "/bytes/3000000", 3000000);
    get_ok("--http2", "/bytes/3000000", 3000000);
    char *file = body_file("up.txt", 2000000);
    char *sent = h_read_file(file, NULL);
    for (int i = 0; i < 2; i++) {
        struct h_http r;
        const char *args[] = {i ? "--http2" : "--http1.1", "--data-binary", h_strf(T, "@%s", file),
                              NULL};
        h_curl_edge(T, &r, T->port, "/echo", args);
        ck_assert_msg(r.exit_code == 0 && r.status == 200, "echo: curl %d, HTTP %d: %s",
                      r.exit_code, r.status, r.err);
        ck_assert_msg(strcmp(r.body, sent) == 0, "echo over %s came back different (%zu bytes)",
                      args[0], strlen(r.body));
    }
    free(sent);
    /* four TLS 1.3 connections, each handed off */
    ck_assert_int_ge(handoffs() - before, 4);
    /* TLS 1.2 stays on OpenSSL and still works */
    long mid = handoffs();
    struct h_http r;
    const char *args12[] = {"--tls-max", "1.2", NULL};
    h_curl_edge(T, &r, T->port, "/bytes/100000", args12);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "TLS 1.2: curl %d, HTTP %d: %s", r.exit_code,
                  r.status, r.err);
    ck_assert_int_eq(handoffs(), mid);
}
END_TEST

static const char *const SUITES[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                     "TLS_CHACHA20_POLY1305_SHA256"};

/* One keep-alive connection: a request, the client's KeyUpdate asking for
 * ours ("K"), a request, a KeyUpdate not asking ("k"), a last request. The
 * pauses let each step reach corral separately (s_client reads the command
 * letters at the start of a line of its input). */
START_TEST(key_update_mid_connection)
{
    start("");
    long before = handoffs();
    const char *req = "GET /bytes/40000 HTTP/1.1\\r\\nHost: edge.test\\r\\n\\r\\n";
    char *script = h_strf(
        T,
        "(printf '%s'; sleep 0.5; echo K; sleep 0.3; printf '%s'; sleep 0.5; echo k; sleep 0.3; "
        "printf '%s'; sleep 0.8) | openssl s_client -connect 127.0.0.1:%d -CAfile %s/ca.crt "
        "-servername edge.test -ciphersuites %s -msg",
        req, req, req, T->port, T->certs, SUITES[_i]);
    char *argv[] = {"sh", "-c", script, NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 15000, &r), 0);
    ck_assert_msg(!r.timed_out, "s_client did not finish");
    int ok = 0;
    for (const char *p = r.out; (p = strstr(p, "HTTP/1.1 200")) != NULL; p++)
        ok++;
    ck_assert_msg(ok == 3, "%d of 3 answers over one connection with KeyUpdates (%s): %s | %s", ok,
                  SUITES[_i], h_file_tail(T, T->error_log, 1500), r.err);
    /* corral answered the requested update with its own (s_client -msg
     * prints every handshake message it reads) */
    ck_assert_msg(strstr(r.out, "<<< TLS 1.3, Handshake [length 0005], KeyUpdate") != NULL,
                  "no KeyUpdate from corral: %s", r.out);
    ck_assert_int_eq(handoffs() - before, 1);
}
END_TEST

START_TEST(handoff_off_keeps_openssl)
{
    start("      handoff: false\n");
    get_ok("--http1.1", "/bytes/100000", 100000);
    get_ok("--http2", "/bytes/100000", 100000);
    ck_assert_int_eq(handoffs(), 0);
}
END_TEST

static Suite *handoff_suite(void)
{
    Suite *s = suite_create("handoff");
    TCase *tc = tcase_create("handoff");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, requests_and_bodies_after_handoff);
    tcase_add_loop_test(tc, key_update_mid_connection, 0, 3);
    tcase_add_test(tc, handoff_off_keeps_openssl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(handoff_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
