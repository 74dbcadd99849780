/* tls_abuse.c - a TLS 1.3 client that misbehaves after its handshake, for
 * check_abuse: what a hostile phone can send corral's record layer
 * (src/tlsrec.c) that curl and s_client never do.
 *
 *   tls_abuse PORT keyupdate N   a GET, then N KeyUpdates in a row (each
 *                                its own record, none asking for ours) in
 *                                one write; then reads what corral says
 *   tls_abuse PORT empty N       a GET, then N empty application-data
 *                                records and a GET in one write: the
 *                                second answer must come with no more
 *                                bytes from us
 *
 * One line on stdout: "get=STATUS sent=K result=WHAT" where WHAT is
 * "alert:DESC" (a fatal alert from corral, DESC its number), "closed",
 * "response:STATUS", "timeout" or "error:TEXT". Exit 0 when it ran
 * (whatever corral did), 2 when it could not. Every wait is bounded: the
 * socket has 5 s send and receive timeouts.
 *
 * The empty records are written by hand (OpenSSL refuses empty writes,
 * tests/tls13seal.c seals them): TLS_AES_128_GCM_SHA256 under the client's
 * application traffic secret from the key log, continuing OpenSSL's
 * sequence numbers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tls13seal.h"

static char secret_hex[2 * 48 + 1];

static void keylog(const SSL *ssl, const char *line)
{
    (void)ssl;
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0)
        snprintf(secret_hex, sizeof(secret_hex), "%s", strrchr(line, ' ') + 1);
}

static void die(const char *what)
{
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    fprintf(stderr, "tls_abuse: %s: %s (%s)\n", what, strerror(errno), buf);
    exit(2);
}

static int connect_to(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect");
    return fd;
}

/* What corral said, as the result word. */
static const char *outcome(SSL *ssl, int n, char *buf, size_t len)
{
    int err = SSL_get_error(ssl, n);
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    if (err == SSL_ERROR_SSL && reason >= SSL_AD_REASON_OFFSET &&
        reason < SSL_AD_REASON_OFFSET + 256)
        snprintf(buf, len, "alert:%d", reason - SSL_AD_REASON_OFFSET);
    else if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0) ||
             (err == SSL_ERROR_SYSCALL && (errno == ECONNRESET || errno == EPIPE)) ||
             (err == SSL_ERROR_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING))
        snprintf(buf, len, "closed");
    else if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) /* SO_RCVTIMEO */
        snprintf(buf, len, "timeout");
    else
        snprintf(buf, len, "error:%d/%d/%s", err, reason, strerror(errno));
    return buf;
}

/* Reads one HTTP/1.1 response (headers and a content-length body);
 * returns its status, or -1 with the outcome in res. */
static int read_response(SSL *ssl, char *res, size_t reslen)
{
    static char buf[1 << 16];
    size_t got = 0;
    long want = -1;
    char *body = NULL;
    for (int i = 0; i < 10000; i++) {
        if (body && (long)(got - (size_t)(body - buf)) >= want)
            return atoi(buf + 9);
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got));
        if (n <= 0) {
            outcome(ssl, n, res, reslen);
            return -1;
        }
        got += (size_t)n;
        buf[got] = '\0';
        if (!body && (body = strstr(buf, "\r\n\r\n")) != NULL) {
            body += 4;
            char *cl = strcasestr(buf, "content-length:");
            want = cl && cl < body ? atol(cl + 15) : 0;
        }
        if (got == sizeof(buf) - 1)
            break;
    }
    snprintf(res, reslen, "error:response too long");
    return -1;
}

static const char GET[] = "GET /status/200 HTTP/1.1\r\nHost: edge.test\r\n\r\n";

/* ------------------------------------------------------------ hand-made records */

/* n empty records and a GET, in one write, after the one record OpenSSL
 * sent under this key (the first GET). */
static int send_empty_then_get(int fd, long n)
{
    uint8_t secret[32];
    struct tls13seal s;
    if (strlen(secret_hex) != 64)
        die("no client traffic secret in the key log");
    if (tls13seal_unhex(secret_hex, secret, sizeof(secret)) < 0)
        die("key log");
    if (tls13seal_init(&s, 0x1301, secret, sizeof(secret)) < 0)
        die("HKDF");
    s.seq = 1;
    size_t cap = (size_t)n * tls13seal_size(0, 0) + tls13seal_size(sizeof(GET) - 1, 0), off = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        die("malloc");
    for (long i = 0; i < n; i++) {
        if (tls13seal_record(&s, 23, "", 0, 0, buf + off) < 0)
            die("AES-GCM");
        off += tls13seal_size(0, 0);
    }
    if (tls13seal_record(&s, 23, GET, sizeof(GET) - 1, 0, buf + off) < 0)
        die("AES-GCM");
    off += tls13seal_size(sizeof(GET) - 1, 0);
    tls13seal_free(&s);
    for (size_t done = 0; done < off;) {
        ssize_t k = send(fd, buf + done, off - done, MSG_NOSIGNAL);
        if (k <= 0) {
            free(buf);
            return -1;
        }
        done += (size_t)k;
    }
    free(buf);
    return 0;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[2], "keyupdate") != 0 && strcmp(argv[2], "empty") != 0)) {
        fprintf(stderr, "usage: tls_abuse PORT keyupdate|empty N\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[3]);
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set_keylog_callback(ctx, keylog);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    int fd = connect_to(port);
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, "edge.test") != 1 ||
        SSL_connect(ssl) != 1)
        die("handshake");
    char res[128];
    if (SSL_write(ssl, GET, (int)sizeof(GET) - 1) != (int)sizeof(GET) - 1)
        die("first request");
    int get = read_response(ssl, res, sizeof(res));
    if (get < 0) {
        printf("get=-1 sent=0 result=%s\n", res);
        return 0;
    }
    long sent = 0;
    if (strcmp(argv[2], "keyupdate") == 0) {
        /* made in memory, then sent in one go: when corral closes in the
         * middle, the failed send is ours, not OpenSSL's, which can still
         * read the alert that came first */
        BIO *mem = BIO_new(BIO_s_mem());
        if (!mem)
            die("BIO_new");
        SSL_set0_wbio(ssl, mem);
        for (; sent < n; sent++)
            if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 ||
                SSL_do_handshake(ssl) != 1) /* writes it */
                die("KeyUpdate");
        char *data;
        long len = BIO_get_mem_data(mem, &data);
        for (long off = 0; off < len;) {
            ssize_t k = send(fd, data + off, (size_t)(len - off), MSG_NOSIGNAL);
            if (k <= 0)
                break; /* corral closed: its answer is waiting */
            off += k;
        }
        ERR_clear_error();
        errno = 0;
        char buf[256];
        int k = SSL_read(ssl, buf, sizeof(buf));
        if (k > 0)
            snprintf(res, sizeof(res), "data");
        else
            outcome(ssl, k, res, sizeof(res));
    } else {
        if (send_empty_then_get(fd, n) < 0) {
            snprintf(res, sizeof(res), "error:send: %s", strerror(errno));
        } else {
            sent = n;
            int st = read_response(ssl, res, sizeof(res));
            if (st >= 0)
                snprintf(res, sizeof(res), "response:%d", st);
        }
    }
    printf("get=%d sent=%ld result=%s\n", get, sent, res);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return 0;
}
