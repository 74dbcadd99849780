/* check_tlsrec.c - corral's TLS 1.3 record layer against OpenSSL as the
 * client, over a socketpair: the handoff after the handshake, data both
 * ways in every suite, KeyUpdate, close_notify, bad records, and the cases
 * that must stay on OpenSSL. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "tls13seal.h"
#include "tlsrec.h"

static const char *const suite_names[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                          "TLS_CHACHA20_POLY1305_SHA256"};

struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *server, *client;
    struct cr_tlsrec *rec;
    int sfd, cfd;
};

/* A throwaway self-signed P-256 certificate for the server. */
static void add_cert(SSL_CTX *ctx)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void nonblock(int fd)
{
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* The client's application traffic secret (hex) from its key log, for the
 * forger below. Each test runs in its own process (CK_FORK). */
static char client_secret_hex[2 * 48 + 1];

static void client_keylog(const SSL *ssl, const char *line)
{
    (void)ssl;
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0)
        snprintf(client_secret_hex, sizeof(client_secret_hex), "%s", strrchr(line, ' ') + 1);
}

/* Client and server SSL over a socketpair, handshake done. suite NULL:
 * OpenSSL's choice; max_version 0: TLS 1.3. */
static void pair_open(struct pair *p, const char *suite, int max_version)
{
    int sv[2];
    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->sfd = sv[0];
    p->cfd = sv[1];
    nonblock(p->sfd);
    nonblock(p->cfd);
    p->sctx = SSL_CTX_new(TLS_server_method());
    p->cctx = SSL_CTX_new(TLS_client_method());
    add_cert(p->sctx);
    SSL_CTX_set_num_tickets(p->sctx, 2); /* records after Finished that must be counted */
    SSL_CTX_set_read_ahead(p->sctx, 1);
    if (suite)
        ck_assert_int_eq(SSL_CTX_set_ciphersuites(p->cctx, suite), 1);
    if (max_version)
        SSL_CTX_set_max_proto_version(p->cctx, max_version);
    ck_assert_int_eq(cr_tlsrec_ctx_setup(p->sctx), 0);
    p->server = SSL_new(p->sctx);
    p->client = SSL_new(p->cctx);
    SSL_set_fd(p->server, p->sfd);
    SSL_set_fd(p->client, p->cfd);
    SSL_set_accept_state(p->server);
    SSL_set_connect_state(p->client);
    ck_assert_int_eq(cr_tlsrec_watch(p->server, &p->rec), 0);
    SSL_CTX_set_keylog_callback(p->cctx, client_keylog);
    int sdone = 0, cdone = 0;
    for (int i = 0; i < 1000 && !(sdone && cdone); i++) {
        if (!sdone)
            sdone = SSL_do_handshake(p->server) == 1;
        if (!cdone)
            cdone = SSL_do_handshake(p->client) == 1;
    }
    ck_assert(sdone && cdone);
    ERR_clear_error();
}

static void pair_close(struct pair *p)
{
    SSL_free(p->server);
    SSL_free(p->client);
    cr_tlsrec_free(p->rec);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    close(p->sfd);
    close(p->cfd);
}

/* The client writes all of buf (the socket pair has room for small ones). */
static void client_write(struct pair *p, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        int n = SSL_write(p->client, buf + off, (int)(len - off));
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
}

/* Reads exactly len plaintext bytes at the client, pumping the server's
 * pending output (out) as the socket drains. */
static void client_read_all(struct pair *p, struct evbuffer *out, char *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; got < len && i < 100000; i++) {
        if (out)
            (void)cr_tlsrec_write_out(p->rec, p->sfd, out);
        int n = SSL_read(p->client, buf + got, (int)(len - got));
        if (n > 0)
            got += (size_t)n;
        else
            ck_assert_int_eq(SSL_get_error(p->client, n), SSL_ERROR_WANT_READ);
    }
    ck_assert_uint_eq(got, len);
}

/* Reads exactly len plaintext bytes at the server through r. */
static void server_read_all(struct pair *p, char *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; got < len && i < 100000; i++) {
        size_t n = 0;
        enum cr_tls_io rc = cr_tlsrec_read(p->rec, p->sfd, buf + got, len - got, &n);
        ck_assert_msg(rc == CR_TLS_OK || rc == CR_TLS_WANT_READ, "rc %d: %s", rc,
                      cr_tlsrec_error(p->rec));
        got += n;
    }
    ck_assert_uint_eq(got, len);
}

/* ------------------------------------------------------------ forged records
 * The client's record protection done by hand (TLS_AES_128_GCM_SHA256,
 * tests/tls13seal.c), to send what OpenSSL never sends: empty records,
 * alerts that are not close_notify, a KeyUpdate split across records,
 * padding. */

/* Starts where the client's OpenSSL stands after exchange_then_handoff:
 * one record ("ping") sent under its first application key. */
static void forger_init(struct tls13seal *f)
{
    uint8_t secret[32];
    ck_assert_uint_eq(strlen(client_secret_hex), 64);
    ck_assert_int_eq(tls13seal_unhex(client_secret_hex, secret, sizeof(secret)), 0);
    ck_assert_int_eq(tls13seal_init(f, 0x1301, secret, sizeof(secret)), 0);
    f->seq = 1;
}

/* Writes one record to the server: content of type, then pad zero bytes. */
static void forge(struct pair *p, struct tls13seal *f, uint8_t type, const void *content,
                  size_t len, size_t pad)
{
    size_t size = tls13seal_size(len, pad);
    uint8_t *rec = malloc(size);
    ck_assert_ptr_nonnull(rec);
    ck_assert_int_eq(tls13seal_record(f, type, content, len, pad, rec), 0);
    size_t off = 0;
    for (int i = 0; off < size && i < 1000; i++) {
        ssize_t k = write(p->cfd, rec + off, size - off);
        if (k > 0)
            off += (size_t)k;
    }
    ck_assert_uint_eq(off, size);
    free(rec);
}

/* The client's OpenSSL reads the fatal alert desc from the server. */
static void client_gets_alert(struct pair *p, int desc)
{
    char buf[64];
    int n = 0;
    for (int i = 0; i < 100000; i++) {
        ERR_clear_error();
        n = SSL_read(p->client, buf, sizeof(buf));
        if (n > 0 || SSL_get_error(p->client, n) != SSL_ERROR_WANT_READ)
            break;
    }
    ck_assert_int_le(n, 0);
    ck_assert_int_eq(SSL_get_error(p->client, n), SSL_ERROR_SSL);
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_error()), SSL_AD_REASON_OFFSET + desc);
}

/* The server reads until the error; returns it. */
static const char *server_read_error(struct pair *p)
{
    char buf[64];
    enum cr_tls_io rc = CR_TLS_OK;
    for (int i = 0; i < 100000 && (rc == CR_TLS_OK || rc == CR_TLS_WANT_READ); i++) {
        size_t n = 0;
        rc = cr_tlsrec_read(p->rec, p->sfd, buf, sizeof(buf), &n);
    }
    ck_assert_int_eq(rc, CR_TLS_ERROR);
    return cr_tlsrec_error(p->rec);
}

/* A request and an answer through OpenSSL, then the handoff. */
static void exchange_then_handoff(struct pair *p)
{
    char buf[64];
    client_write(p, "ping", 4);
    int n = SSL_read(p->server, buf, sizeof(buf));
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(SSL_write(p->server, "pong", 4), 4);
    n = SSL_read(p->client, buf, sizeof(buf)); /* also reads the tickets */
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(cr_tlsrec_takeover(p->rec, p->server), 0);
    SSL_free(p->server);
    p->server = NULL;
}

START_TEST(data_both_ways_every_suite)
{
    struct pair p;
    pair_open(&p, suite_names[_i], 0);
    exchange_then_handoff(&p);
    char buf[64];
    client_write(&p, "GET / HTTP/1.1\r\n\r\n", 18);
    server_read_all(&p, buf, 18);
    ck_assert(memcmp(buf, "GET / HTTP/1.1\r\n\r\n", 18) == 0);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, "HTTP/1.1 200 OK\r\n\r\n", 19);
    ck_assert_int_eq(cr_tlsrec_write_out(p.rec, p.sfd, out), CR_TLS_OK);
    ck_assert_uint_eq(evbuffer_get_length(out), 0);
    client_read_all(&p, NULL, buf, 19);
    ck_assert(memcmp(buf, "HTTP/1.1 200 OK\r\n\r\n", 19) == 0);
    evbuffer_free(out);
    pair_close(&p);
}
END_TEST

/* A megabyte each way: many full records, partial sends and reads. */
START_TEST(large_transfers)
{
    struct pair p;
    pair_open(&p, NULL, 0);
    exchange_then_handoff(&p);
    size_t len = 1 << 20;
    char *src = malloc(len), *dst = malloc(len);
    for (size_t i = 0; i < len; i++)
        src[i] = (char)(i * 7 + i / 1000);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, src, len);
    client_read_all(&p, out, dst, len);
    ck_assert(memcmp(src, dst, len) == 0);
    /* the other way: the client writes in pieces while the server reads */
    size_t sent = 0, got = 0;
    for (int i = 0; got < len && i < 1000000; i++) {
        if (sent < len) {
            int n = SSL_write(p.client, src + sent, (int)CR_MIN(len - sent, (size_t)5000));
            if (n > 0)
                sent += (size_t)n;
        }
        size_t n = 0;
        enum cr_tls_io rc = cr_tlsrec_read(p.rec, p.sfd, dst + got, len - got, &n);
        ck_assert(rc == CR_TLS_OK || rc == CR_TLS_WANT_READ);
        got += n;
    }
    ck_assert_uint_eq(got, len);
    ck_assert(memcmp(src, dst, len) == 0);
    evbuffer_free(out);
    free(src);
    free(dst);
    pair_close(&p);
}
END_TEST

/* The client updates its keys and asks for ours: both directions keep
 * working, and our answer is sent even with nothing else to write. */
START_TEST(key_update_from_client)
{
    struct pair p;
    pair_open(&p, suite_names[_i], 0);
    exchange_then_handoff(&p);
    char buf[16];
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(SSL_key_update(p.client, SSL_KEY_UPDATE_REQUESTED), 1);
        client_write(&p, "after", 5);
        server_read_all(&p, buf, 5);
        ck_assert(memcmp(buf, "after", 5) == 0);
        ck_assert(cr_tlsrec_want_write(p.rec));
        struct evbuffer *out = evbuffer_new();
        ck_assert_int_eq(cr_tlsrec_write_out(p.rec, p.sfd, out), CR_TLS_OK);
        ck_assert(!cr_tlsrec_want_write(p.rec));
        evbuffer_add(out, "reply", 5);
        ck_assert_int_eq(cr_tlsrec_write_out(p.rec, p.sfd, out), CR_TLS_OK);
        client_read_all(&p, NULL, buf, 5);
        ck_assert(memcmp(buf, "reply", 5) == 0);
        evbuffer_free(out);
    }
    /* an update the client does not ask us to answer */
    ck_assert_int_eq(SSL_key_update(p.client, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    client_write(&p, "again", 5);
    server_read_all(&p, buf, 5);
    ck_assert(!cr_tlsrec_want_write(p.rec));
    pair_close(&p);
}
END_TEST

START_TEST(close_notify_both_ways)
{
    struct pair p;
    pair_open(&p, NULL, 0);
    exchange_then_handoff(&p);
    cr_tlsrec_close_notify(p.rec, p.sfd);
    char buf[16];
    int n = SSL_read(p.client, buf, sizeof(buf));
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(SSL_get_error(p.client, n), SSL_ERROR_ZERO_RETURN);
    ck_assert_int_eq(SSL_shutdown(p.client), 1); /* ours came in: both done */
    size_t got;
    ck_assert_int_eq(cr_tlsrec_read(p.rec, p.sfd, buf, sizeof(buf), &got), CR_TLS_CLOSED);
    ck_assert_int_eq(cr_tlsrec_read(p.rec, p.sfd, buf, sizeof(buf), &got), CR_TLS_CLOSED);
    pair_close(&p);
}
END_TEST

START_TEST(bad_records_are_errors)
{
    static const unsigned char forged[] = {23, 3,  3,  0,  20, 1,  2,  3,  4,  5,  6,  7, 8,
                                           9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    static const unsigned char plaintext_hs[] = {22, 3, 3, 0, 4, 1, 0, 0, 0};
    static const unsigned char too_long[] = {23, 3, 3, 0x41, 0x01};
    const unsigned char *bad[] = {forged, plaintext_hs, too_long};
    size_t lens[] = {sizeof(forged), sizeof(plaintext_hs), sizeof(too_long)};
    /* the alert each one gets before the connection closes */
    const int alerts[] = {SSL_AD_BAD_RECORD_MAC, SSL_AD_UNEXPECTED_MESSAGE, SSL_AD_RECORD_OVERFLOW};
    for (int i = 0; i < 3; i++) {
        struct pair p;
        pair_open(&p, NULL, 0);
        exchange_then_handoff(&p);
        ck_assert_int_eq(write(p.cfd, bad[i], lens[i]), (ssize_t)lens[i]);
        char buf[64];
        size_t n;
        ck_assert_int_eq(cr_tlsrec_read(p.rec, p.sfd, buf, sizeof(buf), &n), CR_TLS_ERROR);
        ck_assert_str_ne(cr_tlsrec_error(p.rec), "no error");
        client_gets_alert(&p, alerts[i]);
        pair_close(&p);
    }
}
END_TEST

/* Records without data (empty application data, user_canceled alerts)
 * cost a decryption each but count nothing against a byte budget: one
 * read opens a bounded number of them, then yields with the rest still
 * pending, and the data behind them still comes out intact. */
START_TEST(records_without_data_yield)
{
    struct pair p;
    pair_open(&p, "TLS_AES_128_GCM_SHA256", 0);
    exchange_then_handoff(&p);
    struct tls13seal f;
    forger_init(&f);
    static const uint8_t user_canceled[2] = {1, 90};
    for (int i = 0; i < 100; i++) {
        forge(&p, &f, 23, "", 0, 0);
        forge(&p, &f, 21, user_canceled, 2, 0);
    }
    forge(&p, &f, 23, "hello", 5, 0);
    char buf[16];
    size_t n = 99;
    ck_assert_int_eq(cr_tlsrec_read(p.rec, p.sfd, buf, sizeof(buf), &n), CR_TLS_WANT_READ);
    ck_assert_uint_eq(n, 0);
    ck_assert(cr_tlsrec_pending(p.rec)); /* the caller must come back at once */
    int calls = 1;
    enum cr_tls_io rc;
    while ((rc = cr_tlsrec_read(p.rec, p.sfd, buf, sizeof(buf), &n)) == CR_TLS_WANT_READ &&
           calls < 1000) {
        ck_assert(cr_tlsrec_pending(p.rec));
        calls++;
    }
    ck_assert_int_eq(rc, CR_TLS_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    ck_assert_int_ge(calls, 200 / CR_TLSREC_MAX_EMPTY);
    ck_assert(!cr_tlsrec_pending(p.rec));
    tls13seal_free(&f);
    pair_close(&p);
}
END_TEST

/* A client that keeps updating its keys is refused with an alert past
 * CR_TLSREC_MAX_KEY_UPDATES in a second. */
START_TEST(key_update_flood_is_refused)
{
    struct pair p;
    pair_open(&p, NULL, 0);
    exchange_then_handoff(&p);
    for (int i = 0; i < 3 * CR_TLSREC_MAX_KEY_UPDATES; i++) {
        ck_assert_int_eq(SSL_key_update(p.client, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
        ck_assert_int_eq(SSL_do_handshake(p.client), 1); /* sends it */
    }
    client_write(&p, "x", 1);
    ck_assert_str_eq(server_read_error(&p), "too many KeyUpdates");
    client_gets_alert(&p, SSL_AD_UNEXPECTED_MESSAGE);
    pair_close(&p);
}
END_TEST

/* A handshake message may be split across records (RFC 8446 5.1): a
 * KeyUpdate in two pieces still updates the key and is answered. */
START_TEST(key_update_split_across_records)
{
    struct pair p;
    pair_open(&p, "TLS_AES_128_GCM_SHA256", 0);
    exchange_then_handoff(&p);
    struct tls13seal f;
    forger_init(&f);
    static const uint8_t ku[5] = {24, 0, 0, 1, 1}; /* update_requested */
    forge(&p, &f, 22, ku, 2, 0);
    forge(&p, &f, 22, ku + 2, 3, 0);
    ck_assert_int_eq(tls13seal_key_update(&f), 0); /* as after its KeyUpdate */
    forge(&p, &f, 23, "after", 5, 0);
    char buf[16];
    server_read_all(&p, buf, 5);
    ck_assert(memcmp(buf, "after", 5) == 0);
    ck_assert(cr_tlsrec_want_write(p.rec));
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, "reply", 5);
    ck_assert_int_eq(cr_tlsrec_write_out(p.rec, p.sfd, out), CR_TLS_OK);
    client_read_all(&p, NULL, buf, 5); /* after our KeyUpdate, under our next key */
    ck_assert(memcmp(buf, "reply", 5) == 0);
    evbuffer_free(out);
    tls13seal_free(&f);
    pair_close(&p);
}
END_TEST

/* But nothing may come between its pieces. */
START_TEST(key_update_interleaved_is_refused)
{
    struct pair p;
    pair_open(&p, "TLS_AES_128_GCM_SHA256", 0);
    exchange_then_handoff(&p);
    struct tls13seal f;
    forger_init(&f);
    static const uint8_t ku[5] = {24, 0, 0, 1, 0};
    forge(&p, &f, 22, ku, 2, 0);
    forge(&p, &f, 23, "x", 1, 0);
    server_read_error(&p);
    client_gets_alert(&p, SSL_AD_UNEXPECTED_MESSAGE);
    tls13seal_free(&f);
    pair_close(&p);
}
END_TEST

/* TLSInnerPlaintext (content, type, padding) is at most 2^14 + 1 bytes:
 * a full record is fine, one byte of padding more is record_overflow. */
START_TEST(padding_past_the_limit_is_record_overflow)
{
    struct pair p;
    pair_open(&p, "TLS_AES_128_GCM_SHA256", 0);
    exchange_then_handoff(&p);
    struct tls13seal f;
    forger_init(&f);
    char *big = malloc(16384), *got = malloc(16384);
    memset(big, 'a', 16384);
    forge(&p, &f, 23, big, 16384, 0);
    server_read_all(&p, got, 16384);
    ck_assert(memcmp(big, got, 16384) == 0);
    forge(&p, &f, 23, "x", 1, 16384);
    ck_assert_str_eq(server_read_error(&p), "record overflow");
    client_gets_alert(&p, SSL_AD_RECORD_OVERFLOW);
    free(big);
    free(got);
    tls13seal_free(&f);
    pair_close(&p);
}
END_TEST

/* A record half arrived: nothing yet, then the rest completes it. */
START_TEST(partial_record)
{
    struct pair p;
    pair_open(&p, NULL, 0);
    exchange_then_handoff(&p);
    /* let the client encrypt into the socket, then move the bytes by hand */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    client_write(&p, "0123456789", 10);
    unsigned char raw[256];
    ssize_t k = read(p.sfd, raw, sizeof(raw));
    ck_assert_int_gt(k, 10);
    nonblock(sv[0]);
    ck_assert_int_eq(write(sv[1], raw, 7), 7);
    char buf[16];
    size_t n = 0;
    ck_assert_int_eq(cr_tlsrec_read(p.rec, sv[0], buf, sizeof(buf), &n), CR_TLS_WANT_READ);
    ck_assert(!cr_tlsrec_pending(p.rec));
    ck_assert_int_eq(write(sv[1], raw + 7, (size_t)k - 7), k - 7);
    ck_assert_int_eq(cr_tlsrec_read(p.rec, sv[0], buf, 4, &n), CR_TLS_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert(cr_tlsrec_pending(p.rec)); /* the rest of the record */
    ck_assert_int_eq(cr_tlsrec_read(p.rec, sv[0], buf + 4, sizeof(buf) - 4, &n), CR_TLS_OK);
    ck_assert_uint_eq(n, 6);
    ck_assert(memcmp(buf, "0123456789", 10) == 0);
    close(sv[0]);
    close(sv[1]);
    pair_close(&p);
}
END_TEST

/* OpenSSL read ahead past the request: not yet; once read: taken, and the
 * sequence numbers still line up. */
START_TEST(takeover_waits_for_openssl_buffers)
{
    struct pair p;
    pair_open(&p, NULL, 0);
    client_write(&p, "first", 5);
    client_write(&p, "second", 6);
    char buf[16];
    ck_assert_int_eq(SSL_read(p.server, buf, 5), 5);
    ck_assert_int_eq(cr_tlsrec_takeover(p.rec, p.server), CR_EAGAIN);
    ck_assert_int_eq(SSL_read(p.server, buf, sizeof(buf)), 6);
    ck_assert_int_eq(cr_tlsrec_takeover(p.rec, p.server), 0);
    SSL_free(p.server);
    p.server = NULL;
    client_write(&p, "third", 5);
    server_read_all(&p, buf, 5);
    ck_assert(memcmp(buf, "third", 5) == 0);
    pair_close(&p);
}
END_TEST

START_TEST(tls12_and_early_key_update_stay_on_openssl)
{
    struct pair p;
    pair_open(&p, NULL, TLS1_2_VERSION);
    ck_assert_int_eq(cr_tlsrec_takeover(p.rec, p.server), CR_EINVAL);
    pair_close(&p);

    pair_open(&p, NULL, 0);
    ck_assert_int_eq(SSL_key_update(p.client, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    client_write(&p, "x", 1);
    char buf[4];
    ck_assert_int_eq(SSL_read(p.server, buf, sizeof(buf)), 1);
    ck_assert_int_eq(cr_tlsrec_takeover(p.rec, p.server), CR_EINVAL);
    pair_close(&p);
}
END_TEST

static Suite *tlsrec_suite(void)
{
    Suite *s = suite_create("tlsrec");
    TCase *tc = tcase_create("records");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, data_both_ways_every_suite, 0, 3);
    tcase_add_test(tc, large_transfers);
    tcase_add_loop_test(tc, key_update_from_client, 0, 3);
    tcase_add_test(tc, close_notify_both_ways);
    tcase_add_test(tc, bad_records_are_errors);
    tcase_add_test(tc, records_without_data_yield);
    tcase_add_test(tc, key_update_flood_is_refused);
    tcase_add_test(tc, key_update_split_across_records);
    tcase_add_test(tc, key_update_interleaved_is_refused);
    tcase_add_test(tc, padding_past_the_limit_is_record_overflow);
    tcase_add_test(tc, partial_record);
    tcase_add_test(tc, takeover_waits_for_openssl_buffers);
    tcase_add_test(tc, tls12_and_early_key_update_stay_on_openssl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tlsrec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
