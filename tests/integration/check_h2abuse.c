/* check_h2abuse.c - HTTP/2 clients that try to freeze or starve a worker,
 * against the real corral (one worker) and tests/testup/testup:
 *   - a stream with the highest id there is, then a close: the next client
 *     is answered at once, not after the worker has walked 2^30 stream ids;
 *   - a client advertising a zero window (nghttp -w 0) for many large
 *     responses: its streams are reset after send_timeout, their upstream
 *     streams cancelled (testup has nothing in flight), the access log says
 *     "client send stalled"; and while it holds them, other clients' large
 *     responses on the same upstream connection still flow; and it holds
 *     no more than h2_max_stalled_streams of them, the rest refused
 *     ("client not reading");
 *   - a client that stops reading its socket altogether, its windows wide
 *     open (h2hold.py): once corral's writes to it have been blocked for a
 *     while, every request it has in flight counts as stalled, so that new
 *     ones are refused; and it is closed body_timeout after its TCP last
 *     acknowledged some, however busy it keeps the connection;
 *   - a client that reads normally with many bulk downloads in flight on
 *     small windows (h2bulk.py): none of its requests is refused;
 *   - a client that opens its stream's or its connection's window a byte
 *     at a time (drip.py): under send_min_rate, its stream is reset after
 *     send_timeout all the same;
 *   - uploads answered early (413) are reset once the answer is out, and
 *     the connection goes on (h2post.py). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <signal.h>
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

/* testup (its defaults: 100 streams) and corral with one worker, one
 * upstream HTTP/2 connection and the http: lines given. */
static void start(const char *http)
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
                        "  protocol: h2\n"
                        "  connections: 1\n"
                        "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                        "key: @CERTS@/client.key, sni: lb.test}\n"
                        "http:\n%s",
                        http);
    char *cfg = h_config_write(T, "corral.yaml", yaml);
    ck_assert_msg(cfg != NULL, "cannot write the config");
    pid_t m = h_corral_start(T, cfg, T->port);
    ck_assert_msg(m > 0, "corral did not start: %s | %s",
                  h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, T->error_log, 1500));
    ck_assert_int_eq(h_wait_children(m, 1, 5000, NULL), 1);
}

/* testup's in-flight requests (its own /__stats query not counted). */
static long up_inflight(void)
{
    char *j = h_testup_stats(T, T->uport, false);
    ck_assert_msg(j != NULL, "cannot read testup's /__stats");
    return h_json_long(j, "inflight");
}

/* Polls until testup has `want` requests in flight, for at most ms. */
static bool wait_inflight(long want, int ms)
{
    for (long long end = h_now_ms() + ms; h_now_ms() < end; h_sleep_ms(50))
        if (up_inflight() == want)
            return true;
    return false;
}

/* Lines of the access log that contain needle. */
static int log_lines_with(const char *needle)
{
    char *text = h_read_file(T->access_log, NULL);
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

/* ------------------------------------------------------------ item 3 */

/* HEADERS on stream 0x7fffffff without END_STREAM, sent through openssl
 * s_client, which closes the connection at the end of its input. Then curl:
 * its answer must not wait for the worker (there is one) to get over the
 * close. */
START_TEST(highest_stream_id_then_close_does_not_freeze)
{
    start("  idle_timeout: 60s\n");
    static const unsigned char frames[] = {
        /* preface, empty SETTINGS */
        'P', 'R', 'I', ' ', '*', ' ', 'H', 'T', 'T', 'P', '/', '2', '.', '0', '\r', '\n', '\r',
        '\n', 'S', 'M', '\r', '\n', '\r', '\n', 0, 0, 0, 4, 0, 0, 0, 0, 0,
        /* HEADERS, END_HEADERS, stream 0x7fffffff: GET https / with
         * :authority edge.test (a literal with an indexed name) */
        0, 0, 14, 1, 4, 0x7f, 0xff, 0xff, 0xff, 0x82, 0x87, 0x84, 0x41, 9, 'e', 'd', 'g', 'e', '.',
        't', 'e', 's', 't'};
    char *in = h_path(T, "frames.bin");
    FILE *f = fopen(in, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(frames, 1, sizeof(frames), f), sizeof(frames));
    fclose(f);
    char *connect = h_strf(T, "127.0.0.1:%d", T->port);
    char *const argv[] = {"openssl", "s_client", "-connect", connect, "-alpn", "h2", "-quiet",
                          "-no_ign_eof", NULL};
    struct h_run r;
    ck_assert_int_eq(h_run_stdin(T, argv, in, 5000, &r), 0);
    ck_assert_msg(!r.timed_out, "s_client did not end: %s", r.err);

    long long t0 = h_now_ms();
    struct h_http http;
    const char *const args[] = {"--http2", NULL};
    h_curl_edge(T, &http, T->port, "/bytes/10", args);
    long long ms = h_now_ms() - t0;
    ck_assert_msg(http.status == 200, "curl: exit %d, HTTP %d: %s", http.exit_code, http.status,
                  http.err);
    ck_assert_msg(ms < 1000, "the next client waited %lld ms", ms);
}
END_TEST

/* ------------------------------------------------------------ item 6 */

#define NGHTTP_ARGS(url, n) "nghttp", "-n", "-w", "0", "-m", (n), "-t", "20", (url), NULL

/* 20 streams of 1 MB to a client whose stream windows are 0: after
 * send_timeout (1 s) each is reset, its upstream stream cancelled, and
 * logged as "client send stalled". (h2_max_stalled_streams, 16 by
 * default, would refuse 4 of them: raised here, as this is about the
 * streams that are let through.) */
START_TEST(zero_window_streams_reset_after_send_timeout)
{
    start("  send_timeout: 1s\n  h2_max_stalled_streams: 100\n");
    char *url = h_strf(T, "https://127.0.0.1:%d/bytes/1000000", T->port);
    char *const argv[] = {NGHTTP_ARGS(url, "20")};
    long long t0 = h_now_ms();
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 15000, &r), 0);
    long long ms = h_now_ms() - t0;
    ck_assert_msg(!r.timed_out, "nghttp still waited after 15 s: the streams were never reset");
    const char *const needles[] = {"client send stalled", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, needles, 2000), "no stall in the access log: %s",
                  h_file_tail(T, T->access_log, 1500));
    ck_assert_msg(ms >= 900, "the streams went after %lld ms, before send_timeout", ms);
    ck_assert_msg(wait_inflight(0, 2000), "testup still has %ld request(s) in flight",
                  up_inflight());
    for (long long end = h_now_ms() + 2000; log_lines_with("client send stalled") < 20 &&
                                            h_now_ms() < end;)
        h_sleep_ms(50);
    ck_assert_int_eq(log_lines_with("client send stalled"), 20);
}
END_TEST

/* 80 streams of 1 MB held by a zero-window client (more than the 16 MB
 * window of the one upstream connection, at 256 KB a stream; fewer than
 * testup's 100 streams) while send_timeout is long: another client's 4 MB
 * answer on the same upstream connection still arrives in a few seconds.
 * h2_max_stalled_streams is raised past 80 so that the upstream window, not
 * that bound, is what is tested. */
START_TEST(zero_window_client_does_not_starve_others)
{
    start("  send_timeout: 60s\n  h2_max_stalled_streams: 100\n");
    char *url = h_strf(T, "https://127.0.0.1:%d/bytes/1000000", T->port);
    char *const argv[] = {NGHTTP_ARGS(url, "80")};
    pid_t holder = h_spawn(T, argv, h_path(T, "nghttp.out"), h_path(T, "nghttp.err"));
    ck_assert_int_gt(holder, 0);
    /* the holder's 80 streams are open upstream (testup keeps a stream in
     * flight until its body is sent) */
    ck_assert_msg(wait_inflight(80, 5000), "testup has %ld in flight, not the holder's 80",
                  up_inflight());
    h_sleep_ms(300); /* the upstream fills what windows it has */

    struct h_http http;
    const char *const args[] = {"--http2", NULL};
    long long t0 = h_now_ms();
    h_curl_edge(T, &http, T->port, "/bytes/4000000", args);
    long long ms = h_now_ms() - t0;
    ck_assert_msg(http.exit_code == 0 && http.status == 200,
                  "another client's answer: curl exit %d, HTTP %d after %lld ms: %s",
                  http.exit_code, http.status, ms, http.err);
    ck_assert_int_eq((int)strlen(http.body), 4000000);
    h_signal(holder, SIGKILL);
}
END_TEST

/* 40 streams of 1 MB from a zero-window client, with the default
 * h2_max_stalled_streams (16): 16 reach testup, which keeps them in flight
 * (the client never opens a window, and send_timeout is long); the other
 * 24 are refused with REFUSED_STREAM, "client not reading" in the access
 * log, and never reach it. */
START_TEST(zero_window_client_held_to_the_bound)
{
    start("  send_timeout: 60s\n");
    char *url = h_strf(T, "https://127.0.0.1:%d/bytes/1000000", T->port);
    char *const argv[] = {NGHTTP_ARGS(url, "40")};
    pid_t holder = h_spawn(T, argv, h_path(T, "nghttp.out"), h_path(T, "nghttp.err"));
    ck_assert_int_gt(holder, 0);
    ck_assert_msg(wait_inflight(16, 5000), "testup has %ld in flight, not 16", up_inflight());
    for (long long end = h_now_ms() + 2000;
         log_lines_with("client not reading") < 24 && h_now_ms() < end;)
        h_sleep_ms(50);
    ck_assert_int_eq(log_lines_with("client not reading"), 24);
    ck_assert_int_eq(up_inflight(), 16);
    h_signal(holder, SIGKILL);
}
END_TEST

/* h2bulk.py: a client that reads normally, its windows 64 KB, 24
 * downloads of 1 MB in flight and, once they are all under way, 8 more
 * requests one after another: every stream of such a bulk download waits
 * on its window many times a second (more is buffered than the window
 * lets out), but never for long, so none counts against
 * h2_max_stalled_streams (16) and nothing is refused. */
START_TEST(reading_client_with_bulk_downloads_not_refused)
{
    start("  send_timeout: 5s\n");
    char *script = h_strf(T, "%s/tests/integration/h2bulk.py", T->srcdir);
    char *const argv[] = {"python3", script, h_strf(T, "%d", T->port), "24", "1000000", "8", NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 30000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "h2bulk: %s | %s", r.out, r.err);
    ck_assert_msg(strstr(r.out, "ok 32 refused 0 other 0 bytes 24000080") != NULL,
                  "h2bulk: %s | %s", r.out, r.err);
    ck_assert_int_eq(log_lines_with("client not reading"), 0);
}
END_TEST

/* ------------------------------------------------------------ early answers */

/* h2post.py on one connection: a 4 MB POST with its content-length over
 * max_body (64 KB), answered 413 at its head; a 4 MB POST without one,
 * answered 413 once 64 KB have come; then a GET. Once each 413 is out,
 * corral resets the stream with NO_ERROR (RFC 9113 8.1), so that the
 * client stops sending a body nobody reads; the DATA already on its way
 * is dropped without harm to the connection, on which the GET gets its
 * 200. Without the reset the client would send both bodies whole. */
START_TEST(early_answer_resets_the_upload)
{
    start("  max_body: 64k\n");
    char *script = h_strf(T, "%s/tests/integration/h2post.py", T->srcdir);
    char *const argv[] = {"python3", script, h_strf(T, "%d", T->port), "4000000", NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 25000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "h2post: exit %d: %s | %s", r.exit_code, r.out,
                  r.err);
    for (int sid = 1; sid <= 3; sid += 2) {
        const char *line = strstr(r.out, h_strf(T, "stream %d status other reset 0 sent ", sid));
        ck_assert_msg(line != NULL, "stream %d was not reset with NO_ERROR: %s", sid, r.out);
        long sent = atol(strstr(line, "sent ") + 5);
        ck_assert_msg(sent < 4000000, "stream %d: the client sent its whole body: %s", sid, r.out);
    }
    ck_assert_msg(strstr(r.out, "stream 5 status 200 reset none") != NULL, "the GET after them: %s",
                  r.out);
    ck_assert_int_eq(log_lines_with("\"status\":413"), 2);
    ck_assert_int_eq(log_lines_with("\"status\":200"), 1);
}
END_TEST

/* ------------------------------------------------------------ clients that do not read at all */

/* h2hold.py: 4 requests for 4 MB, then the client reads nothing, its
 * windows at 2^30; 2.5 s after its receive queue has stopped growing, 20
 * more requests; then a WINDOW_UPDATE every 0.3 s for up to 14 s. With
 * send_timeout 5 s corral counts every request of a connection whose
 * writes have been blocked for 0.5 s (a tenth of it) as stalled: the 4 in
 * flight reach h2_max_stalled_streams (4), so the 20 are refused ("client
 * not reading") and never reach testup. And the connection, whose socket
 * takes nothing, is closed body_timeout (4 s) after it last did, although
 * the client keeps sending. */
START_TEST(client_not_reading_its_socket)
{
    start("  send_timeout: 5s\n  body_timeout: 4s\n  h2_max_stalled_streams: 4\n");
    char *script = h_strf(T, "%s/tests/integration/h2hold.py", T->srcdir);
    char *out = h_path(T, "h2hold.out");
    char *const argv[] = {"python3", script, h_strf(T, "%d", T->port), "4", "20", "2.5", "14",
                          NULL};
    pid_t holder = h_spawn(T, argv, out, h_path(T, "h2hold.err"));
    ck_assert_int_gt(holder, 0);
    ck_assert_msg(wait_inflight(4, 5000), "testup has %ld in flight, not the client's 4: %s",
                  up_inflight(), h_file_tail(T, h_path(T, "h2hold.err"), 1000));
    const char *const more[] = {"more 20", NULL};
    ck_assert_msg(h_wait_file_line(out, more, 25000), "h2hold did not send its 20 more: %s",
                  h_file_tail(T, h_path(T, "h2hold.err"), 1000));

    int status;
    ck_assert_int_eq(h_wait_exit(holder, 20000, &status), 0);
    char *text = h_read_file(out, NULL);
    ck_assert_ptr_nonnull(text);
    const char *closed = strstr(text, "closed after ");
    ck_assert_msg(closed != NULL, "the connection was held: %s", text);
    long ms = atol(closed + strlen("closed after "));
    /* 4 s after the socket last took a byte: the client's kernel may take
     * a few more after h2hold saw its queue stand still (it makes room by
     * packing the queue), so a few seconds of slack; held, it would have
     * lasted the whole 14 s */
    ck_assert_msg(ms <= 9000, "closed %ld ms after its writes blocked", ms);
    free(text);

    /* the refusals are logged once their RST_STREAM is out or their
     * connection gone: by now. A refused request never had a request id
     * (nor an upstream); the 4 in flight, cut when the connection was
     * closed for not reading, are logged with that limit too */
    const char *refused = "\"request_id\":null,\"reason\":\"client not reading\"";
    for (long long end = h_now_ms() + 3000;
         log_lines_with("client not reading") < 24 && h_now_ms() < end;)
        h_sleep_ms(50);
    char *j = h_testup_stats(T, T->uport, false);
    ck_assert_ptr_nonnull(j);
    ck_assert_msg(log_lines_with(refused) == 20,
                  "%d of the 20 refused (%ld requests reached testup)", log_lines_with(refused),
                  h_json_long(j, "requests"));
    ck_assert_msg(log_lines_with("client not reading") == 24,
                  "%d requests logged as cut for not reading, expected the 20 refused and the 4 "
                  "in flight",
                  log_lines_with("client not reading"));
    ck_assert_int_eq(h_json_long(j, "requests"), 4);
    ck_assert_msg(wait_inflight(0, 3000), "testup still has %ld in flight", up_inflight());
}
END_TEST

/* The same client, its 20 more requests one every 0.2 s from 1 s after
 * its writes blocked, and body_timeout long enough that the connection
 * stays: while it reads nothing, the kernel's send buffer still grows now
 * and then and takes a little more of corral's output, which is no sign
 * of a client reading. Every one of the 20 is refused, over 4 s. */
START_TEST(client_not_reading_refused_throughout)
{
    start("  send_timeout: 5s\n  body_timeout: 60s\n  h2_max_stalled_streams: 4\n");
    char *script = h_strf(T, "%s/tests/integration/h2hold.py", T->srcdir);
    char *out = h_path(T, "h2hold.out");
    char *const argv[] = {"python3", script, h_strf(T, "%d", T->port), "4", "20", "1", "0.5",
                          "0.2",     NULL};
    pid_t holder = h_spawn(T, argv, out, h_path(T, "h2hold.err"));
    ck_assert_int_gt(holder, 0);
    int status;
    ck_assert_int_eq(h_wait_exit(holder, 30000, &status), 0);
    char *text = h_read_file(out, NULL);
    ck_assert_msg(text && strstr(text, "more 20"), "h2hold did not send its 20 more: %s | %s",
                  text ? text : "", h_file_tail(T, h_path(T, "h2hold.err"), 1000));
    free(text);
    for (long long end = h_now_ms() + 3000;
         log_lines_with("client not reading") < 20 && h_now_ms() < end;)
        h_sleep_ms(50);
    char *j = h_testup_stats(T, T->uport, false);
    ck_assert_ptr_nonnull(j);
    ck_assert_msg(log_lines_with("client not reading") == 20,
                  "%d of the 20 refused (%ld requests reached testup)",
                  log_lines_with("client not reading"), h_json_long(j, "requests"));
    ck_assert_int_eq(h_json_long(j, "requests"), 4);
}
END_TEST

/* ------------------------------------------------------------ clients that drip */

/* drip.py: one 4 MB response to a client that lets it through a byte at a
 * time, a WINDOW_UPDATE of 1 every 0.1 s, on its stream's window (mode
 * h2stream) or on its connection's (h2conn). Its window is never shut for
 * long, but 10 bytes a second is under send_min_rate (512 bytes a second
 * by default): send_timeout (1 s) after the response began to wait, the
 * stream is reset ("client send stalled") and its upstream stream
 * cancelled, where every byte used to put the clock back to zero and the
 * client held it as long as it kept dripping (8 s here). */
static void drip_is_reset(const char *mode)
{
    start("  send_timeout: 1s\n  body_timeout: 60s\n");
    char *script = h_strf(T, "%s/tests/integration/drip.py", T->srcdir);
    char *const argv[] = {"python3", script, h_strf(T, "%d", T->port), (char *)mode, "1", "0.1",
                          "8",       NULL};
    struct h_run r;
    ck_assert_int_eq(h_run(T, argv, 15000, &r), 0);
    ck_assert_msg(!r.timed_out && r.exit_code == 0, "drip: exit %d: %s | %s", r.exit_code, r.out,
                  r.err);
    const char *reset = strstr(r.out, "reset after ");
    ck_assert_msg(reset != NULL, "the dripping client kept its stream: %s", r.out);
    long ms = atol(reset + strlen("reset after "));
    ck_assert_msg(ms >= 900 && ms <= 4000, "reset %ld ms after the request (send_timeout 1 s)", ms);
    const char *const needles[] = {"client send stalled", NULL};
    ck_assert_msg(h_wait_file_line(T->access_log, needles, 2000), "no stall in the access log: %s",
                  h_file_tail(T, T->access_log, 1500));
    ck_assert_msg(wait_inflight(0, 2000), "testup still has %ld request(s) in flight",
                  up_inflight());
}

START_TEST(stream_window_drip_reset_after_send_timeout)
{
    drip_is_reset("h2stream");
}
END_TEST

START_TEST(connection_window_drip_reset_after_send_timeout)
{
    drip_is_reset("h2conn");
}
END_TEST

/* ------------------------------------------------------------ suite */

int main(void)
{
    h_init();
    Suite *s = suite_create("h2abuse");
    TCase *tc = tcase_create("h2abuse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, highest_stream_id_then_close_does_not_freeze);
    tcase_add_test(tc, zero_window_streams_reset_after_send_timeout);
    tcase_add_test(tc, zero_window_client_does_not_starve_others);
    tcase_add_test(tc, zero_window_client_held_to_the_bound);
    suite_add_tcase(s, tc);
    /* clients that read, or not, with their windows open (CK_RUN_CASE=stall) */
    TCase *stall = tcase_create("stall");
    tcase_add_checked_fixture(stall, setup, teardown);
    tcase_set_timeout(stall, 40);
    tcase_add_test(stall, client_not_reading_its_socket);
    tcase_add_test(stall, client_not_reading_refused_throughout);
    tcase_add_test(stall, reading_client_with_bulk_downloads_not_refused);
    tcase_add_test(stall, early_answer_resets_the_upload);
    suite_add_tcase(s, stall);
    /* clients that take their responses a few bytes at a time (CK_RUN_CASE=drip) */
    TCase *drip = tcase_create("drip");
    tcase_add_checked_fixture(drip, setup, teardown);
    tcase_set_timeout(drip, 40);
    tcase_add_test(drip, stream_window_drip_reset_after_send_timeout);
    tcase_add_test(drip, connection_window_drip_reset_after_send_timeout);
    suite_add_tcase(s, drip);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
