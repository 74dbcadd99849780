/* check_ws.c - the WebSocket pieces of tunnels (ws.h): the handshake's key
 * and accept, and frame boundaries found from the headers alone, however
 * the bytes are cut. */
#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

START_TEST(accept_of_rfc_example)
{
    char out[CR_WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ=="; /* RFC 6455 1.3 */
    ck_assert_int_eq(cr_ws_accept(key, strlen(key), out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(key_validity)
{
    ck_assert(cr_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24));
    ck_assert(!cr_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23));   /* short */
    ck_assert(!cr_ws_key_valid("dGhlIHNhbXBsZSBub25jZR==", 24));  /* not 16 bytes' last char */
    ck_assert(!cr_ws_key_valid("dGhlIHNhbXBsZSBub2*jZQ==", 24));  /* not base64 */
    ck_assert(!cr_ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA", 24));  /* no padding */
    char k[CR_WS_KEY_LEN + 1];
    ck_assert_int_eq(cr_ws_new_key(k), 0);
    ck_assert(cr_ws_key_valid(k, strlen(k)));
}
END_TEST

START_TEST(tokens)
{
    ck_assert(cr_ws_has_token("keep-alive, Upgrade", "upgrade"));
    ck_assert(cr_ws_has_token("WebSocket", "websocket"));
    ck_assert(!cr_ws_has_token("upgrades", "upgrade"));
    ck_assert(!cr_ws_has_token("", "upgrade"));
}
END_TEST

/* A stream of frames: a masked 5-byte text, an empty ping, a 300-byte
 * binary (16-bit length), a 70000-byte one (64-bit length), a close. */
static size_t stream(uint8_t *b, size_t *ends, size_t *nends)
{
    size_t n = 0, e = 0;
    b[n++] = 0x81, b[n++] = 0x85;
    memcpy(b + n, "\x01\x02\x03\x04" "abcde", 9), n += 9;
    ends[e++] = n;
    b[n++] = 0x89, b[n++] = 0x00;
    ends[e++] = n;
    b[n++] = 0x82, b[n++] = 126, b[n++] = 300 >> 8, b[n++] = 300 & 0xff;
    memset(b + n, 'x', 300), n += 300;
    ends[e++] = n;
    b[n++] = 0x82, b[n++] = 127;
    uint64_t big = 70000;
    for (int i = 7; i >= 0; i--)
        b[n++] = (uint8_t)(big >> (8 * i));
    memset(b + n, 'y', big), n += big;
    ends[e++] = n;
    b[n++] = 0x88, b[n++] = 0x02, b[n++] = 0x03, b[n++] = 0xe9;
    ends[e++] = n;
    *nends = e;
    return n;
}

/* Fed in pieces of every size from 1 to 17 bytes, with stop, the tracker
 * stops exactly at each frame's end and counts the close. */
START_TEST(boundaries_whatever_the_cuts)
{
    uint8_t *b = malloc(80000);
    size_t ends[8], nends;
    size_t len = stream(b, ends, &nends);
    for (size_t piece = 1; piece <= 17; piece++) {
        struct cr_ws_track t;
        memset(&t, 0, sizeof(t));
        size_t pos = 0, e = 0;
        while (pos < len) {
            size_t n = piece < len - pos ? piece : len - pos;
            size_t k = cr_ws_track(&t, b + pos, n, true);
            pos += k;
            if (cr_ws_at_boundary(&t)) {
                ck_assert_uint_lt(e, nends);
                ck_assert_uint_eq(pos, ends[e]);
                e++;
            } else {
                ck_assert_uint_eq(k, n); /* it stops only at a boundary */
            }
        }
        ck_assert_uint_eq(e, nends);
        ck_assert_uint_eq(t.closes, 1);
    }
    free(b);
}
END_TEST

/* Over an evbuffer: without stop all of it at once; with stop, up to the
 * next boundary, 0 at one. Corral's own frames are well formed. */
START_TEST(buffer_and_own_frames)
{
    uint8_t *b = malloc(80000);
    size_t ends[8], nends;
    size_t len = stream(b, ends, &nends);
    struct evbuffer *buf = evbuffer_new();
    /* in several chains, as reads leave it */
    for (size_t off = 0; off < len; off += 4000)
        evbuffer_add(buf, b + off, len - off < 4000 ? len - off : 4000);
    struct cr_ws_track t;
    memset(&t, 0, sizeof(t));
    ck_assert_uint_eq(cr_ws_track_buf(&t, buf, len, true), 0);
    size_t n = cr_ws_track(&t, b, 3, false); /* into the first header */
    ck_assert_uint_eq(n, 3);
    evbuffer_drain(buf, 3);
    ck_assert_uint_eq(cr_ws_track_buf(&t, buf, len, true), ends[0] - 3);
    evbuffer_drain(buf, ends[0] - 3);
    ck_assert_uint_eq(cr_ws_track_buf(&t, buf, len, false), len - ends[0]);
    ck_assert(cr_ws_at_boundary(&t));
    evbuffer_drain(buf, len - ends[0]);

    ck_assert_int_eq(cr_ws_close(buf, 1001, false), 0);
    ck_assert_int_eq(cr_ws_ping(buf, false), 0);
    ck_assert_int_eq(cr_ws_close(buf, 1001, true), 0);
    uint8_t f[32];
    size_t fl = evbuffer_copyout(buf, f, sizeof(f));
    ck_assert_uint_eq(fl, 4 + 2 + 8);
    ck_assert_int_eq(f[0], 0x88);
    ck_assert_int_eq(f[1], 2);
    ck_assert_int_eq(f[2] << 8 | f[3], 1001);
    ck_assert_int_eq(f[4], 0x89);
    ck_assert_int_eq(f[5], 0);
    ck_assert_int_eq(f[6], 0x88);
    ck_assert_int_eq(f[7], 0x82);
    ck_assert_int_eq((f[12] ^ f[8]) << 8 | (f[13] ^ f[9]), 1001); /* unmasked */
    memset(&t, 0, sizeof(t));
    ck_assert_uint_eq(cr_ws_track_buf(&t, buf, fl, false), fl);
    ck_assert(cr_ws_at_boundary(&t));
    ck_assert_uint_eq(t.closes, 2);
    evbuffer_free(buf);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ws");
    TCase *tc = tcase_create("ws");
    tcase_add_test(tc, accept_of_rfc_example);
    tcase_add_test(tc, key_validity);
    tcase_add_test(tc, tokens);
    tcase_add_test(tc, boundaries_whatever_the_cuts);
    tcase_add_test(tc, buffer_and_own_frames);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
