/* check_request.c - the protocol-neutral request's head: validation, the
 * authority, hop-by-hop removal and the forwarding headers
 * (cr_request_finish_head), on a worker in memory (fixture.h). */
#include "ac_config.h"

#include <check.h>
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fixture.h"
#include "request.h"

/* ------------------------------------------------------------ fixtures */

static void fe_nop(struct cr_request *r)
{
    (void)r;
}

static const struct cr_fe_ops test_fe = {fe_nop, fe_nop, fe_nop, fe_nop};

static struct fx_world X;
static struct cr_conn *C;

static void world(const char *http_section, const char *client_ip)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml), "%s%s", fx_default_yaml, http_section ? http_section : "");
    fx_world_init(&X, yaml);
    C = fx_conn_new(&X, client_ip);
}

static void setup(void)
{
    world(NULL, "192.0.2.7");
}

static void teardown(void)
{
    fx_conn_free(C);
    fx_world_free(&X);
}

/* A request as a front end leaves it: pseudo fields and raw headers, given
 * as name/value pairs ending with NULL. */
static struct cr_request *req(const char *protocol, const char *method, const char *path,
                              const char *const *hdrs)
{
    struct cr_request *r = cr_request_new(C, &test_fe, NULL, protocol);
    ck_assert_ptr_nonnull(r);
    if (method)
        ck_assert_int_eq(cr_request_set(r, &r->method, method, strlen(method)), 0);
    if (path)
        ck_assert_int_eq(cr_request_set(r, &r->path, path, strlen(path)), 0);
    for (int i = 0; hdrs && hdrs[i]; i += 2)
        ck_assert_int_eq(
            cr_request_add_header(r, hdrs[i], strlen(hdrs[i]), hdrs[i + 1], strlen(hdrs[i + 1])),
            0);
    return r;
}

static int count(const struct cr_request *r, const char *name)
{
    int n = 0;
    for (uint32_t i = 0; i < r->hdrs.n; i++)
        n += strcmp(r->hdrs.v[i].name, name) == 0;
    return n;
}

static const char *value(const struct cr_request *r, const char *name)
{
    const struct cr_hdr *h = cr_request_hdr(r, name);
    return h ? h->value : NULL;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

/* ------------------------------------------------------------ forwarding */

START_TEST(hop_by_hop_dropped_end_to_end_kept)
{
    /* clang-format off */
    static const char *const h[] = {
        "Host", "api.example.com",
        "Connection", "keep-alive, X-Hop",
        "Keep-Alive", "timeout=5",
        "X-Hop", "1",
        "Upgrade", "websocket",
        "Proxy-Authorization", "Basic Zm9vOmJhcg==",
        "Proxy-Connection", "keep-alive",
        "TE", "trailers",
        "User-Agent", "app/1.0",
        "Accept", "application/json",
        NULL};
    /* clang-format on */
    struct cr_request *r = req("HTTP/1.1", "GET", "/v1/items?x=1", h);
    const char *reason = NULL;

    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_str_eq(r->authority, "api.example.com");
    ck_assert_str_eq(r->scheme, "https");
    for (const char *const *n =
             (const char *const[]){"host", "connection", "keep-alive", "x-hop", "upgrade",
                                   "proxy-authorization", "proxy-connection", NULL};
         *n; n++)
        ck_assert_msg(count(r, *n) == 0, "%s was forwarded", *n);
    ck_assert_str_eq(value(r, "te"), "trailers"); /* the one TE a proxy passes on */
    ck_assert_str_eq(value(r, "user-agent"), "app/1.0");
    ck_assert_str_eq(value(r, "accept"), "application/json");
    ck_assert(r->idempotent);
    ck_assert(r->req_eof); /* no body follows */
    cr_request_release_fe(r);
}
END_TEST

START_TEST(te_other_than_trailers_dropped)
{
    static const char *const h[] = {"host", "a.test", "te", "gzip", NULL};
    struct cr_request *r = req("HTTP/1.1", "POST", "/", h);
    const char *reason;

    r->has_body = true;
    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_int_eq(count(r, "te"), 0);
    ck_assert(!r->idempotent);
    ck_assert(!r->req_eof);
    cr_request_release_fe(r);
}
END_TEST

/* The edge is the first hop anyone trusts: whatever the client says about
 * earlier hops is replaced by what the edge saw. */
START_TEST(client_forwarding_claims_replaced)
{
    /* clang-format off */
    static const char *const h[] = {
        "host", "a.test",
        "x-forwarded-for", "6.6.6.6",
        "X-Forwarded-For", "7.7.7.7",
        "x-forwarded-proto", "http",
        "forwarded", "for=6.6.6.6",
        NULL};
    /* clang-format on */
    struct cr_request *r = req("HTTP/1.1", "GET", "/", h);
    const char *reason;

    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_int_eq(count(r, "x-forwarded-for"), 1);
    ck_assert_str_eq(value(r, "x-forwarded-for"), "192.0.2.7");
    ck_assert_int_eq(count(r, "x-forwarded-proto"), 1);
    ck_assert_str_eq(value(r, "x-forwarded-proto"), "https");
    ck_assert_int_eq(count(r, "forwarded"), 0);
    cr_request_release_fe(r);
}
END_TEST

START_TEST(request_id_and_traceparent_added_when_absent)
{
    static const char *const h[] = {"host", "a.test", NULL};
    struct cr_request *r = req("HTTP/2", "GET", "/", h);
    const char *reason;

    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    const char *id = value(r, "x-request-id"), *tp = value(r, "traceparent");
    ck_assert_ptr_nonnull(id);
    ck_assert_uint_eq(strlen(id), 32);
    ck_assert(is_hex(id, 32));
    ck_assert_str_eq(r->request_id, id); /* what the access log names */
    ck_assert_ptr_nonnull(tp);
    /* W3C trace context: 00-<32 hex trace id>-<16 hex parent id>-00 */
    ck_assert_uint_eq(strlen(tp), 55);
    ck_assert(strncmp(tp, "00-", 3) == 0 && tp[35] == '-' && strcmp(tp + 52, "-00") == 0);
    ck_assert(is_hex(tp + 3, 32) && is_hex(tp + 36, 16));

    /* a second request gets ids of its own */
    struct cr_request *r2 = req("HTTP/2", "GET", "/", h);
    ck_assert_int_eq(cr_request_finish_head(r2, &reason), 0);
    ck_assert_str_ne(value(r2, "x-request-id"), id);
    ck_assert_str_ne(value(r2, "traceparent"), tp);
    cr_request_release_fe(r2);
    cr_request_release_fe(r);
}
END_TEST

/* A seeded generator repeats its ids; another seed gives others. */
START_TEST(seeded_ids_repeat)
{
    static const char *const h[] = {"host", "a.test", NULL};
    char ids[3][2][64];
    const char *reason;
    const uint64_t seeds[3] = {7, 7, 8};

    for (int s = 0; s < 3; s++) {
        cr_request_seed_ids(seeds[s]);
        for (int i = 0; i < 2; i++) {
            struct cr_request *r = req("HTTP/2", "GET", "/", h);
            ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
            snprintf(ids[s][i], sizeof(ids[s][i]), "%s", value(r, "x-request-id"));
            cr_request_release_fe(r);
        }
    }
    ck_assert_str_eq(ids[0][0], ids[1][0]);
    ck_assert_str_eq(ids[0][1], ids[1][1]);
    ck_assert_str_ne(ids[0][0], ids[0][1]);
    ck_assert_str_ne(ids[0][0], ids[2][0]);
    ck_assert_str_ne(ids[0][1], ids[2][1]);
}
END_TEST

START_TEST(client_request_id_and_traceparent_kept)
{
    static const char *const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    /* clang-format off */
    static const char *const h[] = {
        "host", "a.test",
        "x-request-id", "abc-123",
        "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        NULL};
    /* clang-format on */
    struct cr_request *r = req("HTTP/1.1", "GET", "/", h);
    const char *reason;

    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_int_eq(count(r, "x-request-id"), 1);
    ck_assert_str_eq(value(r, "x-request-id"), "abc-123");
    ck_assert_str_eq(r->request_id, "abc-123");
    ck_assert_int_eq(count(r, "traceparent"), 1);
    ck_assert_str_eq(value(r, "traceparent"), tp);
    cr_request_release_fe(r);
}
END_TEST

START_TEST(forwarded_style_and_ids_off)
{
    teardown();
    world("http:\n  forwarded: forwarded\n  request_id: false\n  traceparent: false\n",
          "2001:db8::1");
    static const char *const h[] = {"host", "a.test", "x-forwarded-for", "6.6.6.6", NULL};
    struct cr_request *r = req("HTTP/1.1", "GET", "/", h);
    const char *reason;

    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_str_eq(value(r, "forwarded"), "for=\"[2001:db8::1]\";proto=https");
    ck_assert_int_eq(count(r, "x-forwarded-for"), 0);
    ck_assert_int_eq(count(r, "x-forwarded-proto"), 0);
    ck_assert_int_eq(count(r, "x-request-id"), 0);
    ck_assert_int_eq(count(r, "traceparent"), 0);
    ck_assert_str_eq(r->request_id, "");
    cr_request_release_fe(r);
}
END_TEST

START_TEST(forwarding_off)
{
    teardown();
    world("http:\n  forwarded: off\n", "192.0.2.7");
    static const char *const h[] = {"host", "a.test", "forwarded", "for=6.6.6.6", NULL};
    struct cr_request *r = req("HTTP/1.1", "GET", "/", h);
    const char *reason;

    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_int_eq(count(r, "forwarded"), 0); /* still not the client's to say */
    ck_assert_int_eq(count(r, "x-forwarded-for"), 0);
    cr_request_release_fe(r);
}
END_TEST

/* ------------------------------------------------------------ validation */

START_TEST(authority_from_pseudo_header_wins)
{
    static const char *const h[] = {"host", "other.test", NULL};
    struct cr_request *r = req("HTTP/2", "GET", "/", h);
    const char *reason;

    ck_assert_int_eq(cr_request_set(r, &r->authority, "a.test", 6), 0);
    ck_assert_int_eq(cr_request_set(r, &r->scheme, "https", 5), 0);
    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_str_eq(r->authority, "a.test");
    ck_assert_int_eq(count(r, "host"), 0);
    cr_request_release_fe(r);
}
END_TEST

START_TEST(bad_heads_refused_with_their_reason)
{
    static const char *const host[] = {"host", "a.test", NULL};
    static const struct {
        const char *protocol, *method, *path;
        const char *const *hdrs;
        const char *reason;
    } cases[] = {
        {"HTTP/1.1", NULL, "/", host, "bad request"},
        {"HTTP/1.1", "GET", NULL, host, "bad request"},
        {"HTTP/1.1", "GET", "relative", host, "bad request"},
        {"HTTP/1.1", "G(T", "/", host, "bad request"},
        {"HTTP/1.1", "GET", "/", NULL, "missing host"},
        {"HTTP/2", "GET", "/", NULL, "missing host"},
    };
    for (size_t i = 0; i < CR_ARRAY_LEN(cases); i++) {
        struct cr_request *r =
            req(cases[i].protocol, cases[i].method, cases[i].path, cases[i].hdrs);
        const char *reason = NULL;
        ck_assert_int_eq(cr_request_finish_head(r, &reason), CR_EPROTO);
        ck_assert_str_eq(reason, cases[i].reason);
        ck_assert_uint_eq(r->hdrs.n, cases[i].hdrs ? 1 : 0); /* nothing rewritten */
        cr_request_release_fe(r);
    }
}
END_TEST

/* Field values: every control byte but HTAB is refused wherever it stands
 * (the check reads eight bytes at a time), HTAB and obs-text are not;
 * field names must be tokens. */
START_TEST(header_bytes_checked_at_every_position)
{
    static const unsigned char bad[] = {0x00, 0x01, '\r', '\n', 0x1f, 0x7f};
    char v[21];
    for (size_t pos = 0; pos < sizeof(v); pos++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            memset(v, 'a', sizeof(v));
            v[pos] = (char)bad[b];
            struct cr_request *r = req("HTTP/1.1", "GET", "/", NULL);
            ck_assert_msg(cr_request_add_header(r, "x-v", 3, v, sizeof(v)) == CR_EPROTO,
                          "byte 0x%02x at %zu accepted", bad[b], pos);
            cr_request_release_fe(r);
        }
        for (int ok = 0; ok < 3; ok++) {
            memset(v, 'a', sizeof(v));
            v[pos] = ok == 0 ? '\t' : ok == 1 ? (char)0x80 : (char)0xff;
            if (ok == 0 && (pos == 0 || pos == sizeof(v) - 1))
                v[pos] = ' '; /* leading/trailing HTAB is trimmed as OWS */
            struct cr_request *r = req("HTTP/1.1", "GET", "/", NULL);
            ck_assert_int_eq(cr_request_add_header(r, "x-v", 3, v, sizeof(v)), 0);
            cr_request_release_fe(r);
        }
    }
    static const char *const names[] = {"x y", "x:y", "x\"y", "(x)", "x\x80", "x@y"};
    for (size_t i = 0; i < CR_ARRAY_LEN(names); i++) {
        struct cr_request *r = req("HTTP/1.1", "GET", "/", NULL);
        ck_assert_int_eq(cr_request_add_header(r, names[i], strlen(names[i]), "v", 1), CR_EPROTO);
        cr_request_release_fe(r);
    }
    struct cr_request *r = req("HTTP/1.1", "GET", "/", NULL);
    ck_assert_int_eq(cr_request_add_header(r, "X-Odd~Name!", 11, "v", 1), 0);
    ck_assert_str_eq(r->hdrs.v[0].name, "x-odd~name!");
    cr_request_release_fe(r);
}
END_TEST

START_TEST(asterisk_form_accepted)
{
    struct cr_request *r =
        req("HTTP/1.1", "OPTIONS", "*", (const char *const[]){"host", "a", NULL});
    const char *reason;
    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    cr_request_release_fe(r);
}
END_TEST

/* HTTP/1.0 may leave Host out: the listener's address stands in (no SNI
 * on this connection). */
START_TEST(http10_without_host_gets_listener_address)
{
    struct cr_request *r = req("HTTP/1.0", "GET", "/", NULL);
    const char *reason;

    ck_assert_int_eq(cr_request_finish_head(r, &reason), 0);
    ck_assert_str_eq(r->authority, "127.0.0.1:8443");
    cr_request_release_fe(r);
}
END_TEST

/* Issue 12 item 4: Host and :authority are RFC 3986 authorities without
 * userinfo; one Host at most, whichever the protocol. */
START_TEST(authority_checked)
{
    static const char *const good[] = {
        "a",
        "api.example.com",
        "api.example.com:8443",
        "127.0.0.1",
        "127.0.0.1:1",
        "[::1]",
        "[2001:db8::1]:443",
        "xn--bcher-kva.example",
        "a_b~c-d.test",
        "%41.test",
        "a!$&'()*+,;=.test",
        "a:65535",
    };
    static const char *const bad[] = {
        "",         "a test", "a@b",    "user:pw@a", "a/b",   "a?b",   "a#b",
        "a\\b",     "a\tb",   "a:",     ":80",       "a:80x", "a:1:2", "a:65536",
        "a:123456", "[::1",   "[::1]x", "[zz::1]",   "[]",    "%4",    "%zz.test",
        "a\"b",     "a<b",    "[v1.x]", "[::1]:",    "a\x80",
    };
    for (size_t i = 0; i < CR_ARRAY_LEN(good); i++)
        ck_assert_msg(cr_request_check_authority(good[i], strlen(good[i])) == 0, "refused: %s",
                      good[i]);
    for (size_t i = 0; i < CR_ARRAY_LEN(bad); i++)
        ck_assert_msg(cr_request_check_authority(bad[i], strlen(bad[i])) == CR_EPROTO,
                      "accepted: %s", bad[i]);
    ck_assert_int_eq(cr_request_check_authority("a.test\0x", 8), CR_EPROTO);

    const char *reason = NULL;
    static const char *const two[] = {"host", "a.test", "host", "b.test", NULL};
    struct cr_request *r = req("HTTP/1.1", "GET", "/", two);
    ck_assert_int_eq(cr_request_finish_head(r, &reason), CR_EPROTO);
    ck_assert_str_eq(reason, "duplicate host");
    cr_request_release_fe(r);

    r = req("HTTP/2", "GET", "/", two); /* beside :authority, too */
    ck_assert_int_eq(cr_request_set(r, &r->authority, "a.test", 6), 0);
    ck_assert_int_eq(cr_request_finish_head(r, &reason), CR_EPROTO);
    ck_assert_str_eq(reason, "duplicate host");
    cr_request_release_fe(r);

    static const char *const at[] = {"host", "evil@a.test", NULL};
    r = req("HTTP/1.1", "GET", "/", at);
    ck_assert_int_eq(cr_request_finish_head(r, &reason), CR_EPROTO);
    ck_assert_str_eq(reason, "invalid host");
    cr_request_release_fe(r);

    r = req("HTTP/2", "GET", "/", NULL); /* :authority goes through the same check */
    ck_assert_int_eq(cr_request_set(r, &r->authority, "a.test/x", 8), 0);
    ck_assert_int_eq(cr_request_finish_head(r, &reason), CR_EPROTO);
    ck_assert_str_eq(reason, "invalid host");
    cr_request_release_fe(r);
}
END_TEST

/* ------------------------------------------------------------ state */

/* The transitions of enum cr_req_state's comment, and only those. */
START_TEST(state_transitions_are_the_listed_ones)
{
#define H CR_REQ_HEAD
#define Q CR_REQ_QUEUED
#define U CR_REQ_UPSTREAM
#define R CR_REQ_RESPONDING
#define D CR_REQ_DONE
    static const bool ok[5][5] = {
        [H] = {[Q] = true, [U] = true, [R] = true, [D] = true},
        [Q] = {[U] = true, [R] = true},
        [U] = {[Q] = true, [U] = true, [R] = true},
        [R] = {[D] = true},
        [D] = {[D] = true},
    };
    for (enum cr_req_state from = H; from <= D; from++)
        for (enum cr_req_state to = H; to <= D; to++)
            ck_assert_msg(cr_request_can_go(from, to) == ok[from][to], "%d -> %d: %s", from, to,
                          ok[from][to] ? "refused" : "allowed");
    ck_assert(!cr_request_can_go((enum cr_req_state)(D + 1), D));
    ck_assert(!cr_request_can_go(H, (enum cr_req_state)(D + 1)));

    /* a retried request's whole way, through the setter */
    struct cr_request *r = req("HTTP/2", "GET", "/", NULL);
    static const enum cr_req_state way[] = {Q, U, U, Q, U, R, D, D};
    for (size_t i = 0; i < CR_ARRAY_LEN(way); i++) {
        cr_request_set_state(r, way[i]);
        ck_assert_int_eq(r->state, way[i]);
    }
    cr_request_release_fe(r);
#undef H
#undef Q
#undef U
#undef R
#undef D
}
END_TEST

/* A transition not listed is caught: the process aborts (assert). */
START_TEST(invalid_state_transition_aborts)
{
    struct cr_request *r = req("HTTP/2", "GET", "/", NULL);
    cr_request_set_state(r, CR_REQ_RESPONDING);
    cr_request_set_state(r, CR_REQ_QUEUED); /* a response cannot go back to admission */
    ck_abort_msg("RESPONDING -> QUEUED was not caught");
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *request_suite(void)
{
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("finish_head");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, hop_by_hop_dropped_end_to_end_kept);
    tcase_add_test(tc, te_other_than_trailers_dropped);
    tcase_add_test(tc, client_forwarding_claims_replaced);
    tcase_add_test(tc, request_id_and_traceparent_added_when_absent);
    tcase_add_test(tc, seeded_ids_repeat);
    tcase_add_test(tc, client_request_id_and_traceparent_kept);
    tcase_add_test(tc, forwarded_style_and_ids_off);
    tcase_add_test(tc, forwarding_off);
    tcase_add_test(tc, authority_from_pseudo_header_wins);
    tcase_add_test(tc, bad_heads_refused_with_their_reason);
    tcase_add_test(tc, header_bytes_checked_at_every_position);
    tcase_add_test(tc, asterisk_form_accepted);
    tcase_add_test(tc, http10_without_host_gets_listener_address);
    tcase_add_test(tc, authority_checked);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, state_transitions_are_the_listed_ones);
    tcase_add_test_raise_signal(tc, invalid_state_transition_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(request_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
