/* check_wsecho.c - testup's WebSocket echo, straight against testup (no
 * corral): the upstream the WebSocket tunnel tests relay to must itself be
 * right.
 *
 * HTTP/1.1: python3-websockets and a raw TLS socket (wsecho.py) -
 * subprotocol, text and binary echo (7-, 16- and 64-bit lengths),
 * fragments, pong, a server ping (--ws-ping), close 1000 and 1001 echoed
 * and counted in /__stats, an unmasked frame closed with 1002;
 * --ws-refuse 403 answered instead of 101. HTTP/2: python3-h2's extended
 * CONNECT (wsh2.py) against --connect-protocol - SETTINGS_ENABLE_CONNECT_
 * PROTOCOL seen, 200, echoes, a server ping, END_STREAM answered with
 * END_STREAM, close 1000 echoed; without --connect-protocol no setting and
 * no WebSocket. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct h_test *T;
static const char *python; /* one that imports websockets and h2 */

static void setup(void)
{
    T = h_test_begin();
}

static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

static const char *script(const char *name)
{
    return h_strf(T, "%s/tests/integration/%s", T->srcdir, name);
}

/* testup's /__stats JSON (the query itself is not a WebSocket). */
static char *stats(void)
{
    char *js = h_testup_stats(T, T->uport, false);

    ck_assert_msg(js != NULL, "no /__stats from testup");
    return js;
}

/* Polls key in /__stats until it is want (at most 3 s); the last value. */
static long stat_wait(const char *key, long want)
{
    long long end = h_now_ms() + 3000;
    long v;

    while ((v = h_json_long(stats(), key)) != want && h_now_ms() < end)
        usleep(20000);
    return v;
}

/* Runs wsecho.py MODE against testup; fails the test unless it exits 0. */
static struct h_run wsecho(const char *mode)
{
    char *argv[] = {(char *)python,
                    (char *)script("wsecho.py"),
                    (char *)mode,
                    h_strf(T, "%d", T->uport),
                    T->certs,
                    NULL};
    struct h_run r;

    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(r.exit_code == 0, "wsecho.py %s: exit %d\n%s%s", mode, r.exit_code, r.out,
                  r.err);
    return r;
}

/* Runs wsh2.py against testup with the extra arguments (at most 4). */
static struct h_run wsh2(const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[20] = {(char *)python,
                      (char *)script("wsh2.py"),
                      "127.0.0.1",
                      h_strf(T, "%d", T->uport),
                      "/chat/room",
                      "--sni",
                      "lb.test",
                      "--ca",
                      h_strf(T, "%s/ca.crt", T->certs),
                      "--cert",
                      h_strf(T, "%s/client.crt", T->certs),
                      "--key",
                      h_strf(T, "%s/client.key", T->certs)};
    const char *more[] = {a1, a2, a3, a4};
    int n = 13;
    struct h_run r;

    for (int i = 0; i < 4 && more[i]; i++)
        argv[n++] = (char *)more[i];
    argv[n] = NULL;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    return r;
}

START_TEST(h1_echo)
{
    pid_t up = h_testup_start(T, T->uport, "--ws-ping", "50", NULL);
    ck_assert_msg(up > 0, "testup did not start");
    wsecho("echo");
    /* three WebSockets: the websockets client and two raw ones */
    ck_assert_int_eq(stat_wait("ws_open", 0), 0);
    char *js = stats();
    ck_assert_msg(h_json_long(js, "ws_total") == 3, "%s", js);
    ck_assert_msg(h_json_long(js, "ws_peak") == 1, "%s", js);
    ck_assert_msg(h_json_long(js, "1000") == 1 && h_json_long(js, "1001") == 1, "%s", js);
    /* 13 + 300 + 70000 echoed by websockets, "frag" + "mented" raw, and
     * the unmasked frame was refused before it counted */
    ck_assert_msg(h_json_long(js, "ws_bytes") == 13 + 300 + 70000 + 4 + 6, "%s", js);
    ck_assert_msg(h_json_long(js, "requests") == 3, "%s", js);
}
END_TEST

START_TEST(h1_refuse)
{
    pid_t up = h_testup_start(T, T->uport, "--ws-refuse", "403", NULL);
    ck_assert_msg(up > 0, "testup did not start");
    struct h_run r = wsecho("refuse");
    ck_assert_msg(strstr(r.out, "status 403\n") != NULL, "%s", r.out);
    char *js = stats();
    ck_assert_msg(h_json_long(js, "ws_total") == 0, "%s", js);
}
END_TEST

START_TEST(h2_connect)
{
    pid_t up = h_testup_start(T, T->uport, "--connect-protocol", "--ws-ping", "50", NULL);
    ck_assert_msg(up > 0, "testup did not start");
    struct h_run r = wsh2("-n", "5", "--protocol", "chat, superchat");
    ck_assert_msg(r.exit_code == 0, "wsh2.py: exit %d\n%s%s", r.exit_code, r.out, r.err);
    ck_assert_msg(strstr(r.out, "\"connect_protocol\": true") &&
                      strstr(r.out, "\"protocol\": \"chat\"") && strstr(r.out, "\"echoed\": 5") &&
                      strstr(r.out, "\"end_stream\": true"),
                  "%s", r.out);
    r = wsh2("--wait-pings", "2", "--close", "1000");
    ck_assert_msg(r.exit_code == 0, "wsh2.py: exit %d\n%s%s", r.exit_code, r.out, r.err);
    ck_assert_msg(strstr(r.out, "\"close_code\": 1000") && strstr(r.out, "\"pings\": 2"), "%s",
                  r.out);
    r = wsh2("-n", "2", "--size", "70000"); /* DATA across frames */
    ck_assert_msg(r.exit_code == 0, "wsh2.py: exit %d\n%s%s", r.exit_code, r.out, r.err);
    ck_assert_int_eq(stat_wait("ws_open", 0), 0);
    char *js = stats();
    ck_assert_msg(h_json_long(js, "ws_total") == 3 && h_json_long(js, "1000") == 1, "%s", js);
    ck_assert_msg(h_json_long(js, "ws_bytes") == 5 * 16 + 3 * 16 + 2 * 70000, "%s", js);
}
END_TEST

START_TEST(h2_no_connect_protocol)
{
    pid_t up = h_testup_start(T, T->uport, NULL);
    ck_assert_msg(up > 0, "testup did not start");
    struct h_run r = wsh2("--timeout", "3", NULL, NULL);
    ck_assert_msg(r.exit_code == 1 && strstr(r.out, "\"connect_protocol\": false"), "exit %d\n%s%s",
                  r.exit_code, r.out, r.err);
    ck_assert_msg(h_json_long(stats(), "ws_total") == 0, "a WebSocket without the setting");
}
END_TEST

static Suite *wsecho_suite(void)
{
    Suite *s = suite_create("wsecho");
    TCase *tc = tcase_create("testup");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, h1_echo);
    tcase_add_test(tc, h1_refuse);
    tcase_add_test(tc, h2_connect);
    tcase_add_test(tc, h2_no_connect_protocol);
    suite_add_tcase(s, tc);
    return s;
}

/* Whether py imports websockets and h2. */
static int imports_ws(const char *py)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1), dup2(fd, 2);
        execlp(py, py, "-c", "import websockets, h2", (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
    h_init();
    /* python3 in PATH may be another build than Debian's (pyenv) */
    static const char *const pys[] = {"/usr/bin/python3", "python3"};
    for (size_t i = 0; i < sizeof(pys) / sizeof(pys[0]) && !python; i++)
        if (imports_ws(pys[i]))
            python = pys[i];
    if (!python) {
        fprintf(stderr, "check_wsecho: no python3 imports websockets and h2: install "
                        "python3-websockets and python3-h2 (tools/install-deps)\n");
        return 99;
    }
    SRunner *sr = srunner_create(wsecho_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
