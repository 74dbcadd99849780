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
 * The empty records are written by hand (OpenSSL refuses empty writes):
 * TLS_AES_128_GCM_SHA256 under the client's application traffic secret
 * from the key log, continuing OpenSSL's sequence numbers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

static void expand_label(const uint8_t *secret, const char *label, uint8_t *out, size_t n)
{
    uint8_t info[64];
    size_t ll = strlen(label), k = 0;
    info[k++] = 0;
    info[k++] = (uint8_t)n;
    info[k++] = (uint8_t)(6 + ll);
    memcpy(info + k, "tls13 ", 6);
    k += 6;
    memcpy(info + k, label, ll);
    k += ll;
    info[k++] = 0;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, k),
        OSSL_PARAM_construct_end(),
    };
    if (!ctx || EVP_KDF_derive(ctx, out, n, params) != 1)
        die("HKDF");
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
}

/* Appends one application-data record of content to out at *off. */
static void seal(const uint8_t key[16], const uint8_t iv[12], uint64_t seq, const void *content,
                 size_t len, uint8_t *out, size_t *off)
{
    uint8_t *rec = out + *off;
    size_t inner = len + 1, clen = inner + 16;
    rec[0] = 23;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = (uint8_t)(clen >> 8);
    rec[4] = (uint8_t)clen;
    memcpy(rec + 5, content, len);
    rec[5 + len] = 23;
    uint8_t nonce[12];
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ol;
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &ol, rec, 5) != 1 ||
        EVP_EncryptUpdate(ctx, rec + 5, &ol, rec + 5, (int)inner) != 1 ||
        EVP_EncryptFinal_ex(ctx, rec + 5 + inner, &ol) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, rec + 5 + inner) != 1)
        die("AES-GCM");
    EVP_CIPHER_CTX_free(ctx);
    *off += 5 + clen;
}

/* n empty records and a GET, in one write, after the one record OpenSSL
 * sent under this key (the first GET). */
static int send_empty_then_get(int fd, long n)
{
    uint8_t secret[32], key[16], iv[12];
    if (strlen(secret_hex) != 64)
        die("no client traffic secret in the key log");
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(secret_hex + 2 * i, "%2x", &v) != 1)
            die("key log");
        secret[i] = (uint8_t)v;
    }
    expand_label(secret, "key", key, sizeof(key));
    expand_label(secret, "iv", iv, sizeof(iv));
    size_t cap = (size_t)(n + 1) * (5 + 17) + sizeof(GET), off = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        die("malloc");
    uint64_t seq = 1;
    for (long i = 0; i < n; i++)
        seal(key, iv, seq++, "", 0, buf, &off);
    seal(key, iv, seq++, GET, sizeof(GET) - 1, buf, &off);
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
