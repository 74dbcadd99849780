/* check_grpc.c - gRPC through corral with a real gRPC client and server
 * (python3-grpcio; tests/integration/grpcpeer.py): the server is corral's
 * HTTP/2 upstream over TLS with corral's client certificate, the client
 * calls corral. Unary and server-streaming calls arrive whole and with
 * their trailers (grpc-status, trailing metadata), a streamed response
 * arrives as it is produced, a status the server sets reaches the client,
 * and corral's own refusals reach it as gRPC statuses with the back-off
 * the herd should follow (grpc-retry-pushback-ms). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct h_test *T;
static const char *python; /* one that imports grpc (main) */

static void setup(void)
{
    T = h_test_begin();
}
static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

/* The gRPC server on T->uport, then corral in front of it (tenant R: one
 * call a second, nothing queued), once both workers have connected. */
static pid_t start(void)
{
    char *sargv[] = {(char *)python, h_strf(T, "%s/tests/integration/grpcpeer.py", T->srcdir),
                     "serve",        h_strf(T, "%d", T->uport),
                     T->certs,       NULL};
    char *slog = h_path(T, "grpcpeer.log");
    pid_t srv = h_spawn(T, sargv, slog, slog);
    ck_assert_int_gt(srv, 0);
    ck_assert_msg(h_wait_port(T->uport, true, H_START_MS), "gRPC server did not start: %s",
                  h_file_tail(T, slog, 2000));
    const char *cfg =
        h_config_write(T, "corral.yaml",
                       H_CONFIG_BASE "tenants:\n"
                                     "  by: header\n"
                                     "  defaults: {rate: 100000/s, burst: 100000}\n"
                                     "  list: [{name: R, rate: 1/s, burst: 1, queue: 0}]\n");
    ck_assert_int_gt(h_corral_start(T, cfg, T->port), 0);
    const char *up[] = {"connected (h2", NULL};
    ck_assert_msg(h_wait_file_lines(T->error_log, up, 2, H_START_MS),
                  "the workers did not connect to the gRPC server: %s",
                  h_file_tail(T, T->error_log, 2000));
    return srv;
}

/* grpcpeer.py call WHAT [TENANT]: its JSON line. */
static char *call(const char *what, const char *tenant)
{
    char *argv[] = {(char *)python, h_strf(T, "%s/tests/integration/grpcpeer.py", T->srcdir),
                    "call",         h_strf(T, "%d", T->port),
                    T->certs,       (char *)what,
                    (char *)tenant, NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 40000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "grpcpeer.py call %s: exit %d: %s", what,
                  r.exit_code, r.err);
    return r.out;
}

static void assert_has(const char *out, const char *needle)
{
    ck_assert_msg(strstr(out, needle), "expected %s in: %s", needle, out);
}

START_TEST(unary_with_trailing_metadata)
{
    start();
    char *out = call("unary", NULL);
    assert_has(out, "\"response\": \"hello grpc\"");
    assert_has(out, "\"code\": \"OK\"");
    assert_has(out, "\"x-trail\": \"done\""); /* the server's trailers came through */
}
END_TEST

/* 50 messages 40 ms apart: the first arrives long before the last (a
 * response buffered on its way would arrive all at once, at the end), and
 * the stream ends with its status. */
START_TEST(server_stream_arrives_as_it_streams)
{
    start();
    char *out = call("stream", NULL);
    assert_has(out, "\"count\": 50");
    assert_has(out, "\"code\": \"OK\"");
    const char *t = strstr(out, "\"times\": [");
    ck_assert_ptr_nonnull(t);
    char *end;
    double first = strtod(t + 10, &end), last = first;
    for (const char *p = end; *p == ','; p = end)
        last = strtod(p + 1, &end);
    ck_assert_msg(first < 1.0, "first message after %.3f s: %s", first, out);
    ck_assert_msg(last - first > 1.2, "messages %.3f s apart at most: %s", last - first, out);
}
END_TEST

START_TEST(server_status_reaches_the_client)
{
    start();
    char *out = call("notfound", NULL);
    assert_has(out, "\"code\": \"NOT_FOUND\"");
    assert_has(out, "\"details\": \"no such thing: 100% gone\"");
}
END_TEST

/* Tenant R takes one call a second and queues none: the second is shed,
 * and the client sees RESOURCE_EXHAUSTED with corral's reason and the
 * pushback, while the access log keeps the 429 it stands for. */
START_TEST(shed_call_is_resource_exhausted)
{
    start();
    char *out = call("shed", "R");
    assert_has(out, "\"code\": \"RESOURCE_EXHAUSTED\"");
    assert_has(out, "\"details\": \"tenant rate limit\"");
    const char *pb = strstr(out, "\"grpc-retry-pushback-ms\": \"");
    ck_assert_msg(pb, "no pushback: %s", out);
    ck_assert_int_ge(atol(pb + 27), 1000); /* Retry-After is whole seconds, at least 1 */
    const char *line[] = {"\"tenant\":\"R\"", "\"status\":429", "\"reason\":\"tenant rate limit\"",
                          "\"grpc_status\":8", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, line, 3000), "no 429 line: %s",
                  h_file_tail(T, T->access_log, 2000));
}
END_TEST

/* The server is gone: the client sees UNAVAILABLE, and the access log
 * the 502 (or 503, 504) it stands for. */
START_TEST(outage_is_unavailable)
{
    pid_t srv = start();
    ck_assert_int_eq(h_signal(srv, SIGKILL), 0);
    ck_assert(h_wait_port(T->uport, false, 3000));
    char *out = call("unary", NULL);
    assert_has(out, "\"code\": \"UNAVAILABLE\"");
    const char *line[] = {"\"path\":\"/t.T/Unary\"", "\"status\":50", "\"grpc_status\":14", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, line, 3000), "no 5xx line: %s",
                  h_file_tail(T, T->access_log, 2000));
}
END_TEST

static Suite *grpc_suite(void)
{
    Suite *s = suite_create("grpc");
    TCase *tc = tcase_create("grpc");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, unary_with_trailing_metadata);
    tcase_add_test(tc, server_stream_arrives_as_it_streams);
    tcase_add_test(tc, server_status_reaches_the_client);
    tcase_add_test(tc, shed_call_is_resource_exhausted);
    tcase_add_test(tc, outage_is_unavailable);
    suite_add_tcase(s, tc);
    return s;
}

/* Whether `py -c "import grpc"` works. */
static bool imports_grpc(const char *py)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1), dup2(fd, 2);
        execlp(py, py, "-c", "import grpc", (char *)NULL);
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
        if (imports_grpc(pys[i]))
            python = pys[i];
    if (!python) {
        fprintf(
            stderr,
            "check_grpc: no python3 imports grpc: install python3-grpcio (tools/install-deps)\n");
        return 99;
    }
    SRunner *sr = srunner_create(grpc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
