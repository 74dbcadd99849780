/* check_cli.c - corral's command line: -V, -h, -t on good, bad and sample
 * configs. Runs the real binary; nothing here needs the upstream. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <regex.h>
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

/* Runs corral with up to three arguments; 5 s at most. */
static struct h_run run_corral(const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {(char *)T->bin, (char *)a1, (char *)a2, (char *)a3, NULL};
    struct h_run r;
    ck_assert_msg(h_run(T, argv, 5000, &r) == 0, "cannot run %s", T->bin);
    ck_assert_msg(!r.timed_out, "corral %s %s did not exit within 5 s", a1, a2 ? a2 : "");
    return r;
}

static bool matches(const char *text, const char *re)
{
    regex_t rx;
    ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_ICASE | REG_NOSUB | REG_NEWLINE), 0);
    bool m = regexec(&rx, text, 0, NULL, 0) == 0;
    regfree(&rx);
    return m;
}

/* Line `line` (1-based) of text, owned by T. */
static char *line_of(const char *text, int line)
{
    const char *p = text;
    for (int i = 1; i < line && p != NULL; i++) {
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    ck_assert_msg(p != NULL, "the config has no line %d", line);
    size_t n = strcspn(p, "\n");
    return h_strf(T, "%.*s", (int)n, p);
}

/* Expects, among the output lines, one "FILE:LINE:COL: error: ..." for the
 * problem at `token` on config line `line`: LINE exact, COL a number - exact
 * (the token's column) when exact_col - and `words` in the message when not
 * NULL. */
static void expect_diag(const char *output, const char *file, const char *config, int line,
                        const char *token, bool exact_col, const char *words)
{
    char *text = line_of(config, line);
    const char *at = strstr(text, token);
    ck_assert_msg(at != NULL, "test bug: '%s' not on line %d", token, line);
    int col = (int)(at - text) + 1;
    char *prefix = h_strf(T, "%s:%d:", file, line);
    size_t plen = strlen(prefix);

    for (const char *p = output; *p != '\0';) {
        size_t n = strcspn(p, "\n");
        char *l = h_strf(T, "%.*s", (int)n, p);
        p += n + (p[n] == '\n');
        int got_col = 0, used = 0;
        if (strncmp(l, prefix, plen) != 0 ||
            sscanf(l + plen, "%d: error:%n", &got_col, &used) != 1 || used == 0)
            continue;
        if (exact_col && got_col != col)
            continue;
        if (words != NULL && strstr(l, words) == NULL)
            continue;
        return;
    }
    ck_abort_msg("no \"%s%s: error: ...%s\" line for '%s' in:\n%s", prefix,
                 exact_col ? h_strf(T, "%d", col) : "COL", words ? words : "", token, output);
}

/* ------------------------------------------------------------ tests */

START_TEST(version_names_libraries)
{
    struct h_run r = run_corral("-V", NULL, NULL);
    ck_assert_msg(r.exit_code == 0, "corral -V exit %d: %s%s", r.exit_code, r.out, r.err);
    char *all = h_strf(T, "%s\n%s", r.out, r.err);
    ck_assert_msg(strstr(r.out, "corral 0.1.0") != NULL, "no \"corral 0.1.0\" on stdout: %s", all);
    static const char *const libs[] = {"openssl", "libevent", "nghttp2", "yaml"};
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
        ck_assert_msg(matches(all, h_strf(T, "%s[^0-9\n]*[0-9]+\\.[0-9]+", libs[i])),
                      "corral -V does not give %s's version: %s", libs[i], all);
}
END_TEST

START_TEST(help_and_bad_option)
{
    struct h_run r = run_corral("-h", NULL, NULL);
    ck_assert_msg(r.exit_code == 0, "corral -h exit %d", r.exit_code);
    char *all = h_strf(T, "%s%s", r.out, r.err);
    ck_assert_msg(strstr(all, "-c") != NULL && strstr(all, "-t") != NULL &&
                      strstr(all, "-V") != NULL,
                  "corral -h does not list -c, -t, -V: %s", all);
    r = run_corral("-Z", NULL, NULL);
    ck_assert_msg(r.exit_code > 0, "corral -Z (unknown option) exit %d, signal %d", r.exit_code,
                  r.term_signal);
}
END_TEST

START_TEST(test_good_config)
{
    char *cfg = h_config_write(T, "good.yaml", H_CONFIG_BASE);
    ck_assert_ptr_nonnull(cfg);
    struct h_run r = run_corral("-t", "-c", cfg);
    ck_assert_msg(r.exit_code == 0, "corral -t on a good config: exit %d: %s%s", r.exit_code, r.out,
                  r.err);
    ck_assert_msg(!h_port_open(T->port), "corral -t left something listening on %d", T->port);
}
END_TEST

START_TEST(test_bad_config_lists_every_problem)
{
    const char *tmpl = "workers: 2\n"
                       "drain_timeout: soon\n"
                       "log: {error: @DIR@/error.log, levle: info}\n"
                       "listeners:\n"
                       "  - name: https\n"
                       "    address: 127.0.0.1:@PORT@\n"
                       "    tls:\n"
                       "      certificates:\n"
                       "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
                       "upstream:\n"
                       "  addresses: [127.0.0.1:@UPORT@]\n"
                       "  protocol: h3\n"
                       "  conections: 2\n"
                       "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                       "key: @CERTS@/client.key, sni: lb.test}\n";
    char *cfg = h_config_write(T, "bad.yaml", tmpl);
    ck_assert_ptr_nonnull(cfg);
    char *text = h_expand(T, tmpl);
    struct h_run r = run_corral("-t", "-c", cfg);
    char *all = h_strf(T, "%s%s", r.out, r.err);
    ck_assert_msg(r.exit_code == 1, "corral -t on a bad config: exit %d (want 1): %s", r.exit_code,
                  all);
    expect_diag(all, cfg, text, 2, "soon", false, NULL);
    expect_diag(all, cfg, text, 3, "levle", true, "unknown key 'levle'");
    expect_diag(all, cfg, text, 3, "levle", true, "did you mean 'level'");
    expect_diag(all, cfg, text, 12, "h3", false, NULL);
    expect_diag(all, cfg, text, 13, "conections", true, "unknown key 'conections'");
    expect_diag(all, cfg, text, 13, "conections", true, "did you mean 'connections'");
}
END_TEST

START_TEST(test_missing_file)
{
    char *cfg = h_path(T, "does-not-exist.yaml");
    struct h_run r = run_corral("-t", "-c", cfg);
    char *all = h_strf(T, "%s%s", r.out, r.err);
    ck_assert_msg(r.exit_code == 1, "corral -t on a missing file: exit %d: %s", r.exit_code, all);
    ck_assert_msg(strstr(all, cfg) != NULL, "the message does not name the file: %s", all);
}
END_TEST

START_TEST(test_sample_config)
{
    char *sample = h_strf(T, "%s/etc/corral.yaml", T->srcdir);
    char *text = h_read_file(sample, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", sample);
    /* the sample's certificates live in /var/lib/corral: point at ours */
    static const char from[] = "/var/lib/corral";
    char *out = h_strf(T, "%s", "");
    for (char *p = text, *q; *p != '\0'; p = q + sizeof(from) - 1) {
        q = strstr(p, from);
        if (q == NULL) {
            out = h_strf(T, "%s%s", out, p);
            break;
        }
        out = h_strf(T, "%s%.*s%s", out, (int)(q - p), p, T->certs);
    }
    free(text);
    char *cfg = h_path(T, "sample.yaml");
    ck_assert_int_eq(h_write_file(cfg, out), 0);
    struct h_run r = run_corral("-t", "-c", cfg);
    ck_assert_msg(r.exit_code == 0, "corral -t on the sample config: exit %d: %s%s", r.exit_code,
                  r.out, r.err);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, version_names_libraries);
    tcase_add_test(tc, help_and_bad_option);
    tcase_add_test(tc, test_good_config);
    tcase_add_test(tc, test_bad_config_lists_every_problem);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_sample_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    h_init();
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
