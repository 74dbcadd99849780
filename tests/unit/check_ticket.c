/* check_ticket.c - session ticket key files (cr_ticket_load_file): both
 * formats, and text files an attacker or a typo can shape. The master reads
 * these files as root, so a bad file must be refused with its file and line,
 * never decoded past the key's size. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "ticket.h"

#define KEY_B64_LEN 108 /* base64 of 80 bytes: 26 groups of 4 and one with '=' */

static char dir[] = "/tmp/check_ticket.XXXXXX";

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/check_ticket.XXXXXX");
}

/* Writes len bytes of text to DIR/name; returns the path (static). */
static const char *write_file(const char *name, const void *text, size_t len)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* A valid base64 line for the 80-byte key whose bytes are all b. */
static void key_line(char out[KEY_B64_LEN + 1], unsigned char b)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[81];
    memset(raw, b, 80);
    raw[80] = 0;
    size_t o = 0;
    for (size_t i = 0; i < 80; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = i + 1 < 80 ? alpha[v >> 6 & 63] : '=';
        out[o++] = i + 2 < 80 ? alpha[v & 63] : '=';
    }
    out[o] = '\0';
    ck_assert_uint_eq(o, KEY_B64_LEN);
}

/* Loads text as a key file and expects a refusal whose message holds want. */
static void refused(const char *text, size_t len, const char *want)
{
    struct cr_ticket_key keys[CR_TICKET_RING];
    size_t n = 99;
    char err[512] = "";
    const char *path = write_file("keys", text, len);
    ck_assert_int_eq(cr_ticket_load_file(path, keys, &n, err, sizeof(err)), CR_EINVAL);
    ck_assert_msg(strstr(err, path) != NULL, "the error does not name the file: %s", err);
    ck_assert_msg(strstr(err, want) != NULL, "expected '%s' in: %s", want, err);
    ck_assert_uint_eq(n, 99); /* untouched */
}

START_TEST(text_keys_load)
{
    char a[KEY_B64_LEN + 1], b[KEY_B64_LEN + 1], text[512];
    key_line(a, 0x11);
    key_line(b, 0x22);
    /* comments may hold any printable text; the last line is the next key */
    snprintf(text, sizeof(text), "# keys, rotated daily (don't edit!)\n%s\n\n%s  \n", a, b);
    struct cr_ticket_key keys[CR_TICKET_RING];
    size_t n = 0;
    char err[512] = "";
    const char *path = write_file("keys", text, strlen(text));
    ck_assert_msg(cr_ticket_load_file(path, keys, &n, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(keys[0].name[0], 0x11); /* two keys: the first encrypts */
    ck_assert_uint_eq(keys[1].name[0], 0x22);
}
END_TEST

START_TEST(binary_keys_load)
{
    unsigned char raw[160];
    memset(raw, 0x80, 80);
    memset(raw + 80, 0x81, 80);
    raw[0] = 0x01; /* not text */
    struct cr_ticket_key keys[CR_TICKET_RING];
    size_t n = 0;
    char err[512] = "";
    const char *path = write_file("keys", raw, sizeof(raw));
    ck_assert_msg(cr_ticket_load_file(path, keys, &n, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(keys[0].name[0], 0x01);
}
END_TEST

/* A line far longer than a key: on main it was decoded into a 128-byte stack
 * buffer (a stack overflow in the master, as root); it must be refused by
 * its length, before any decoding. */
START_TEST(overlong_line_is_refused_before_decoding)
{
    static const size_t lens[] = {60000, 4096, 176, 112};
    for (size_t i = 0; i < CR_ARRAY_LEN(lens); i++) {
        char *text = malloc(lens[i] + 64);
        ck_assert_ptr_nonnull(text);
        strcpy(text, "# first line\n");
        size_t at = strlen(text);
        memset(text + at, 'Q', lens[i]);
        text[at + lens[i]] = '\n';
        refused(text, at + lens[i] + 1, ":2: ");
        refused(text, at + lens[i] + 1, "characters long");
        free(text);
    }
}
END_TEST

START_TEST(odd_lengths_are_refused)
{
    char a[KEY_B64_LEN + 1], text[512];
    key_line(a, 0x33);
    /* one character short, one too many, a group short, and a 3-byte key */
    snprintf(text, sizeof(text), "%.*s\n", KEY_B64_LEN - 1, a);
    refused(text, strlen(text), ":1: ");
    snprintf(text, sizeof(text), "%sA\n", a);
    refused(text, strlen(text), ":1: ");
    snprintf(text, sizeof(text), "%s\n%.*s\n", a, KEY_B64_LEN - 4, a);
    refused(text, strlen(text), ":2: ");
    refused("QUJD\n", 5, ":1: ");
}
END_TEST

START_TEST(invalid_characters_are_refused)
{
    char a[KEY_B64_LEN + 1], text[512];
    key_line(a, 0x44);
    a[10] = '!';
    snprintf(text, sizeof(text), "# key\n%s\n", a);
    refused(text, strlen(text), ":2: invalid character '!' at column 11");
    key_line(a, 0x44);
    a[0] = '='; /* padding is only at the end */
    snprintf(text, sizeof(text), "%s\n", a);
    refused(text, strlen(text), ":1: ");
    key_line(a, 0x44);
    a[50] = ' '; /* a space inside the key */
    snprintf(text, sizeof(text), "%s\n", a);
    refused(text, strlen(text), ":1: ");
}
END_TEST

START_TEST(bad_binary_files_are_refused)
{
    unsigned char raw[81];
    memset(raw, 0x90, sizeof(raw));
    refused((const char *)raw, 81, "81 bytes");
    refused("", 0, "no key");
}
END_TEST

static Suite *ticket_suite(void)
{
    Suite *s = suite_create("ticket");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, text_keys_load);
    tcase_add_test(tc, binary_keys_load);
    tcase_add_test(tc, overlong_line_is_refused_before_decoding);
    tcase_add_test(tc, odd_lengths_are_refused);
    tcase_add_test(tc, invalid_characters_are_refused);
    tcase_add_test(tc, bad_binary_files_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ticket_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
