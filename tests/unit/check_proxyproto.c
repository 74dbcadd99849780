/* check_proxyproto.c - the PROXY protocol parser and proxy_from ranges:
 * every accepted form, and every malformed one with its reason (truncated,
 * bad signature, wrong family or length, v1 without CRLF, overlong,
 * UNKNOWN and LOCAL). */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "proxyproto.h"

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* "ip:port" of a parsed client. */
static const char *client(const struct cr_pp_result *r)
{
    static char buf[80];
    char ip[INET6_ADDRSTRLEN];
    if (r->src.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&r->src;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, sizeof(buf), "%s:%u", ip, ntohs(in->sin_port));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&r->src;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, sizeof(buf), "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    return buf;
}

/* Every proper prefix of a valid header is CR_EAGAIN. */
static void assert_prefixes_wait(const uint8_t *h, size_t len)
{
    struct cr_pp_result r;
    for (size_t i = 0; i < len; i++)
        ck_assert_msg(cr_pp_parse(h, i, &r) == CR_EAGAIN, "prefix of %zu/%zu bytes: %s", i, len,
                      r.error ? r.error : "not EAGAIN");
}

/* ------------------------------------------------------------ v1 */

struct v1ok {
    const char *in;
    const char *client; /* NULL: local */
};

static const struct v1ok v1_ok[] = {
    {"PROXY TCP4 203.0.113.7 192.0.2.1 4444 443\r\n", "203.0.113.7:4444"},
    {"PROXY TCP6 2001:db8::5 2001:db8::1 5555 443\r\n", "[2001:db8::5]:5555"},
    {"PROXY TCP4 0.0.0.0 0.0.0.0 0 65535\r\n", "0.0.0.0:0"},
    {"PROXY UNKNOWN\r\n", NULL},
    {"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", NULL},
};

START_TEST(v1_valid)
{
    const struct v1ok *t = &v1_ok[_i];
    size_t len = strlen(t->in);
    uint8_t buf[256];
    struct cr_pp_result r;
    memcpy(buf, t->in, len);
    memcpy(buf + len, "\x16\x03\x01", 3); /* the ClientHello after it is not the header's */
    ck_assert_int_eq(cr_pp_parse(buf, len + 3, &r), (int)len);
    ck_assert_int_eq(r.version, 1);
    if (t->client) {
        ck_assert(!r.local);
        ck_assert_str_eq(client(&r), t->client);
    } else {
        ck_assert(r.local);
    }
    assert_prefixes_wait(buf, len);
}
END_TEST

struct bad {
    const char *in;
    const char *why;
};

static const struct bad v1_bad[] = {
    {"PROXY TCP4 203.0.113.7 192.0.2.1 4444 443\n", "v1: line not ended by CRLF"},
    {"PROXY TCP4 203.0.113.7 192.0.2.1 4444 443\r\r\n", "v1: control bytes in the line"},
    {"PROXI TCP4", "v1: bad signature"},
    {"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "v1: unknown protocol (TCP4, TCP6 or UNKNOWN)"},
    {"PROXY TCP4 2001:db8::5 1.2.3.4 1 2\r\n", "v1: an address is not of the family named"},
    {"PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n", "v1: an address is not of the family named"},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "v1: bad port"},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", "v1: bad port"},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "v1: not PROXY TCP4|TCP6 SRC DST SPORT DPORT"},
    {"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", "v1: not PROXY TCP4|TCP6 SRC DST SPORT DPORT"},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "v1: not PROXY TCP4|TCP6 SRC DST SPORT DPORT"},
    {"GET / HTTP/1.1\r\n", "no PROXY protocol signature"},
};

START_TEST(v1_invalid)
{
    struct cr_pp_result r;
    const struct bad *t = &v1_bad[_i];
    ck_assert_int_eq(cr_pp_parse((const uint8_t *)t->in, strlen(t->in), &r), CR_EPROTO);
    ck_assert_str_eq(r.error, t->why);
}
END_TEST

START_TEST(v1_overlong)
{
    uint8_t buf[300];
    struct cr_pp_result r;
    memcpy(buf, "PROXY UNKNOWN ", 14);
    memset(buf + 14, 'x', sizeof(buf) - 14);
    /* 105 bytes + CRLF fit (107 with the CRLF is the bound) */
    memcpy(buf + 105, "\r\n", 2);
    ck_assert_int_eq(cr_pp_parse(buf, sizeof(buf), &r), 107);
    buf[105] = 'x';
    buf[106] = '\r';
    buf[107] = '\n';
    ck_assert_int_eq(cr_pp_parse(buf, 106, &r), CR_EAGAIN);
    ck_assert_int_eq(cr_pp_parse(buf, 107, &r), CR_EPROTO);
    ck_assert_str_eq(r.error, "v1: longer than 107 bytes");
    ck_assert_int_eq(cr_pp_parse(buf, sizeof(buf), &r), CR_EPROTO);
}
END_TEST

/* ------------------------------------------------------------ v2 */

/* Builds a v2 header: cmd (0 LOCAL, 1 PROXY), fam byte, len bytes of body. */
static size_t v2(uint8_t *out, int ver_cmd, int fam, const uint8_t *body, size_t len)
{
    memcpy(out, SIG, 12);
    out[12] = (uint8_t)ver_cmd;
    out[13] = (uint8_t)fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    memcpy(out + 16, body, len);
    return 16 + len;
}

START_TEST(v2_inet_with_unique_id)
{
    uint8_t body[64], h[128];
    struct cr_pp_result r;
    size_t n = 0;
    inet_pton(AF_INET, "198.51.100.9", body);
    inet_pton(AF_INET, "192.0.2.1", body + 4);
    body[8] = 0x1F, body[9] = 0x90; /* 8080 */
    body[10] = 0x01, body[11] = 0xBB;
    n = 12;
    memcpy(body + n, "\x04\x00\x02\x00\x00", 5); /* NOOP */
    n += 5;
    memcpy(body + n, "\x05\x00\x05vpc-1", 8); /* UNIQUE_ID */
    n += 8;
    size_t len = v2(h, 0x21, 0x11, body, n);
    h[len] = 0x16;
    ck_assert_int_eq(cr_pp_parse(h, len + 1, &r), (int)len);
    ck_assert_int_eq(r.version, 2);
    ck_assert(!r.local);
    ck_assert_str_eq(client(&r), "198.51.100.9:8080");
    ck_assert_uint_eq(r.unique_id_len, 5);
    ck_assert(memcmp(r.unique_id, "vpc-1", 5) == 0);
    assert_prefixes_wait(h, len);
}
END_TEST

START_TEST(v2_inet6)
{
    uint8_t body[36], h[64];
    struct cr_pp_result r;
    inet_pton(AF_INET6, "2001:db8::5", body);
    inet_pton(AF_INET6, "2001:db8::1", body + 16);
    body[32] = 0x15, body[33] = 0xB3; /* 5555 */
    body[34] = 0x01, body[35] = 0xBB;
    size_t len = v2(h, 0x21, 0x21, body, 36);
    ck_assert_int_eq(cr_pp_parse(h, len, &r), (int)len);
    ck_assert_str_eq(client(&r), "[2001:db8::5]:5555");
    ck_assert_uint_eq(r.unique_id_len, 0);
}
END_TEST

START_TEST(v2_local_unspec_unix)
{
    uint8_t body[216] = {0}, h[256];
    struct cr_pp_result r;
    size_t len = v2(h, 0x20, 0x00, body, 0); /* LOCAL: the balancer's health check */
    ck_assert_int_eq(cr_pp_parse(h, len, &r), 16);
    ck_assert(r.local);
    len = v2(h, 0x20, 0x11, body, 12); /* LOCAL with addresses: still local */
    ck_assert_int_eq(cr_pp_parse(h, len, &r), 28);
    ck_assert(r.local);
    len = v2(h, 0x21, 0x00, body, 0); /* PROXY, UNSPEC */
    ck_assert_int_eq(cr_pp_parse(h, len, &r), 16);
    ck_assert(r.local);
    len = v2(h, 0x21, 0x31, body, 216); /* PROXY, UNIX */
    ck_assert_int_eq(cr_pp_parse(h, len, &r), (int)len);
    ck_assert(r.local);
}
END_TEST

struct v2bad {
    int ver_cmd, fam;
    size_t len;      /* body bytes */
    const char *tlv; /* appended after 12 address bytes, NULL none */
    size_t tlvlen;
    const char *why;
};

static const struct v2bad v2_bad[] = {
    {0x11, 0x11, 12, NULL, 0, "v2: version is not 2"},
    {0x31, 0x11, 12, NULL, 0, "v2: version is not 2"},
    {0x22, 0x11, 12, NULL, 0, "v2: command is neither LOCAL nor PROXY"},
    {0x21, 0x11, 11, NULL, 0, "v2: length shorter than its addresses"},
    {0x21, 0x21, 12, NULL, 0, "v2: length shorter than its addresses"},
    {0x21, 0x31, 100, NULL, 0, "v2: length shorter than its addresses"},
    {0x21, 0x41, 12, NULL, 0, "v2: unknown address family or protocol"},
    {0x21, 0x13, 12, NULL, 0, "v2: unknown address family or protocol"},
    {0x21, 0x12, 12, NULL, 0, "v2: PROXY over a protocol other than STREAM"},
    {0x21, 0x10, 12, NULL, 0, "v2: PROXY over a protocol other than STREAM"},
    {0x21, 0x11, 14, "\x05\x00", 2, "v2: truncated TLV"},
    {0x21, 0x11, 17, "\x05\x00\x09vp", 5, "v2: TLV longer than the header"},
};

START_TEST(v2_invalid)
{
    const struct v2bad *t = &v2_bad[_i];
    uint8_t body[512] = {0}, h[600];
    struct cr_pp_result r;
    if (t->tlv)
        memcpy(body + 12, t->tlv, t->tlvlen);
    size_t len = v2(h, t->ver_cmd, t->fam, body, t->len);
    ck_assert_int_eq(cr_pp_parse(h, len, &r), CR_EPROTO);
    ck_assert_str_eq(r.error, t->why);
}
END_TEST

START_TEST(v2_bounds)
{
    static uint8_t body[1100], h[1200];
    struct cr_pp_result r;
    /* a UNIQUE_ID of 128 bytes is the most; 129 is refused */
    body[12] = 0x05, body[13] = 0, body[14] = 128;
    size_t len = v2(h, 0x21, 0x11, body, 12 + 3 + 128);
    ck_assert_int_eq(cr_pp_parse(h, len, &r), (int)len);
    ck_assert_uint_eq(r.unique_id_len, 128);
    body[14] = 129;
    len = v2(h, 0x21, 0x11, body, 12 + 3 + 129);
    ck_assert_int_eq(cr_pp_parse(h, len, &r), CR_EPROTO);
    ck_assert_str_eq(r.error, "v2: UNIQUE_ID longer than 128 bytes");
    /* the whole header at most 1024 bytes: known from the first 16 */
    memset(body + 12, 0, sizeof(body) - 12); /* NOOP TLVs of length 0 are type 0: fine */
    len = v2(h, 0x21, 0x11, body, 1024 - 16);
    ck_assert_int_eq(cr_pp_parse(h, len, &r), 1024);
    len = v2(h, 0x21, 0x11, body, 1024 - 15);
    ck_assert_int_eq(cr_pp_parse(h, 16, &r), CR_EPROTO);
    ck_assert_str_eq(r.error, "v2: header over 1024 bytes");
    /* a bad signature is refused from its first wrong byte */
    memcpy(h, SIG, 12);
    h[5] = 'X';
    ck_assert_int_eq(cr_pp_parse(h, 6, &r), CR_EPROTO);
    ck_assert_str_eq(r.error, "v2: bad signature");
    ck_assert_int_eq(cr_pp_parse(h, 5, &r), CR_EAGAIN);
}
END_TEST

/* ------------------------------------------------------------ proxy_from */

static struct sockaddr_storage sa_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    }
    return ss;
}

START_TEST(cidr_ranges)
{
    struct cr_pp_cidr r[4];
    ck_assert_int_eq(cr_pp_cidr_parse("10.0.0.0/8", &r[0]), 0);
    ck_assert_int_eq(cr_pp_cidr_parse("192.0.2.17", &r[1]), 0);
    ck_assert_int_eq(cr_pp_cidr_parse("2001:db8::/33", &r[2]), 0);
    ck_assert_int_eq(cr_pp_cidr_parse("172.16.0.0/12", &r[3]), 0);
    const struct {
        const char *ip;
        bool in;
    } cases[] = {
        {"10.1.2.3", true},         {"11.0.0.0", false},   {"192.0.2.17", true},
        {"192.0.2.18", false},      {"2001:db8::5", true}, {"2001:db8:8000::1", false},
        {"172.31.255.255", true},   {"172.32.0.0", false}, {"::ffff:10.9.8.7", true},
        {"::ffff:11.9.8.7", false},
    };
    for (size_t i = 0; i < CR_ARRAY_LEN(cases); i++) {
        struct sockaddr_storage ss = sa_of(cases[i].ip);
        ck_assert_msg(cr_pp_cidr_match(r, 4, (struct sockaddr *)&ss) == cases[i].in, "%s",
                      cases[i].ip);
    }
    struct cr_pp_cidr all;
    ck_assert_int_eq(cr_pp_cidr_parse("0.0.0.0/0", &all), 0);
    struct sockaddr_storage ss = sa_of("203.0.113.1");
    ck_assert(cr_pp_cidr_match(&all, 1, (struct sockaddr *)&ss));
    ss = sa_of("2001:db8::1");
    ck_assert(!cr_pp_cidr_match(&all, 1, (struct sockaddr *)&ss));

    const char *bad[] = {"",     "10.0.0.0/",   "10.0.0.0/33", "10.1.0.0/8",   "2001:db8::/129",
                         "nope", "10.0.0.0/8x", "/8",          "10.0.0.0/0008"};
    for (size_t i = 0; i < CR_ARRAY_LEN(bad); i++)
        ck_assert_msg(cr_pp_cidr_parse(bad[i], &all) == CR_EINVAL, "'%s' was accepted", bad[i]);
}
END_TEST

static Suite *pp_suite(void)
{
    Suite *s = suite_create("proxyproto");
    TCase *tc = tcase_create("v1");
    tcase_add_loop_test(tc, v1_valid, 0, (int)CR_ARRAY_LEN(v1_ok));
    tcase_add_loop_test(tc, v1_invalid, 0, (int)CR_ARRAY_LEN(v1_bad));
    tcase_add_test(tc, v1_overlong);
    suite_add_tcase(s, tc);
    tc = tcase_create("v2");
    tcase_add_test(tc, v2_inet_with_unique_id);
    tcase_add_test(tc, v2_inet6);
    tcase_add_test(tc, v2_local_unspec_unix);
    tcase_add_loop_test(tc, v2_invalid, 0, (int)CR_ARRAY_LEN(v2_bad));
    tcase_add_test(tc, v2_bounds);
    suite_add_tcase(s, tc);
    tc = tcase_create("proxy_from");
    tcase_add_test(tc, cidr_ranges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
