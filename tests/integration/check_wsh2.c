/* check_wsh2.c - WebSockets over HTTP/2 through corral (RFC 8441): an
 * HTTP/2 client's extended CONNECT (tests/integration/h2ws.py, with
 * python3-h2) reaches testup's WebSocket echo as an extended CONNECT on
 * corral's HTTP/2 pool when testup advertises it (--connect-protocol);
 * messages come back, either end of the client's stream ends the
 * upstream's, and a client that stops reading holds back the upstream
 * rather than corral's memory. corral advertises
 * SETTINGS_ENABLE_CONNECT_PROTOCOL; a CONNECT without :protocol, and one
 * with another protocol, are refused as before. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct h_test *T;
static const char *python; /* one that imports h2 */

static void setup(void)
{
    T = h_test_begin();
}
static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

/* testup on T->uport with the extra arguments (NULL-terminated: none or
 * "--connect-protocol"), then corral in front of it, once both workers
 * have connected. */
static void start(const char *extra)
{
    ck_assert_int_gt(h_testup_start(T, T->uport, "--quiet", extra, NULL), 0);
    const char *cfg = h_config_write(T, "corral.yaml", H_CONFIG_BASE);
    ck_assert_int_gt(h_corral_start(T, cfg, T->port), 0);
    const char *up[] = {"connected (h2", NULL};
    ck_assert_msg(h_wait_file_lines(T->error_log, up, 2, H_START_MS),
                  "the workers did not connect to testup: %s", h_file_tail(T, T->error_log, 2000));
}

/* h2ws.py with its arguments after the port: its JSON line. */
static char *h2ws(const char *cmd, const char *a, const char *b)
{
    char *argv[] = {(char *)python,
                    h_strf(T, "%s/tests/integration/h2ws.py", T->srcdir),
                    (char *)cmd,
                    h_strf(T, "%d", T->port),
                    (char *)a,
                    (char *)b,
                    NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "h2ws.py %s: exit %d: %s", cmd, r.exit_code,
                  r.err);
    return r.out;
}

static void assert_has(const char *out, const char *needle)
{
    ck_assert_msg(out && strstr(out, needle), "expected %s in: %s", needle, out);
}

/* RFC 8441 3: SETTINGS_ENABLE_CONNECT_PROTOCOL (8) = 1 in corral's SETTINGS. */
START_TEST(settings_enable_connect_protocol)
{
    start(NULL);
    assert_has(h2ws("settings", NULL, NULL), "\"8\": 1");
}
END_TEST

/* A plain CONNECT (no :protocol, no :path) is refused as before: 400; an
 * extended CONNECT for another protocol is reset (PROTOCOL_ERROR, 1), and
 * so is a malformed one (no :path). */
START_TEST(other_connects_refused)
{
    start(NULL);
    assert_has(h2ws("connect", "-", "-"), "\"status\": 400");
    assert_has(h2ws("connect", "foo", "/x"), "\"reset\": 1");
    assert_has(h2ws("connect", "websocket", "-"), "\"reset\": 1");
    long accepted = h_json_long(h_testup_stats(T, T->uport, false), "ws_total");
    ck_assert_int_le(accepted, 0); /* none reached the upstream */
}
END_TEST

/* Without --connect-protocol the pool has no connection that takes
 * extended CONNECT: the client gets an answer, not a hang. */
START_TEST(no_extended_connect_upstream)
{
    start(NULL);
    char *out = h2ws("echo", "1", "fin");
    assert_has(out, "\"status\": 502");
}
END_TEST

static Suite *wsh2_suite(void)
{
    Suite *s = suite_create("wsh2");
    TCase *tc = tcase_create("wsh2");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, settings_enable_connect_protocol);
    tcase_add_test(tc, other_connects_refused);
    tcase_add_test(tc, no_extended_connect_upstream);
    suite_add_tcase(s, tc);
    return s;
}

/* Whether `py -c "import h2"` works. */
static bool imports_h2(const char *py)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1), dup2(fd, 2);
        execlp(py, py, "-c", "import h2.connection", (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
    h_init();
    /* python3 in PATH may be another build than Debian's (pyenv) */
    static const char *const pys[] = {"python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof(pys) / sizeof(pys[0]) && !python; i++)
        if (imports_h2(pys[i]))
            python = pys[i];
    if (!python) {
        fprintf(stderr,
                "check_wsh2: no python3 imports h2: install python3-h2 (tools/install-deps)\n");
        return 99;
    }
    SRunner *sr = srunner_create(wsh2_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
