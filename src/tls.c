/* tls.c - OpenSSL contexts. */
#include "tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

/* AEAD suites with forward secrecy only, ECDSA first when the client can. */
#define CR_TLS12_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define CR_TLS_GROUPS "X25519:P-256"

const char *cr_tls_errors(char *buf, size_t len)
{
    size_t n = 0;
    unsigned long e;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        if (n + 4 < len) {
            if (n)
                n += (size_t)snprintf(buf + n, len - n, "; ");
            ERR_error_string_n(e, buf + n, len - n);
            n = strlen(buf);
        }
    }
    if (!n)
        snprintf(buf, len, "unknown TLS error");
    return buf;
}

static void fail(char *err, size_t errlen, const char *what, const char *file)
{
    char ossl[256];
    cr_tls_errors(ossl, sizeof(ossl));
    snprintf(err, errlen, "%s %s: %s", what, file ? file : "", ossl);
}

/* ALPN: the first protocol of ours (in the configured order) that the client
 * offers; a client without ALPN gets HTTP/1.1 by default. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct cr_cfg_tls_server *t = arg;
    for (size_t i = 0; i < t->nalpn; i++) {
        const char *want = t->alpn[i] == CR_ALPN_H2 ? "h2" : "http/1.1";
        size_t wl = strlen(want);
        for (unsigned int p = 0; p < inlen;) {
            unsigned int l = in[p];
            if (p + 1 + l > inlen)
                break;
            if (l == wl && memcmp(in + p + 1, want, wl) == 0) {
                *out = in + p + 1;
                *outlen = (unsigned char)l;
                return SSL_TLSEXT_ERR_OK;
            }
            p += 1 + l;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

enum cr_alpn cr_tls_alpn(const SSL *ssl)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0 ? CR_ALPN_H2 : CR_ALPN_HTTP11;
}

static SSL_CTX *ctx_common(const SSL_METHOD *method, int min_version, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx) {
        fail(err, errlen, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min_version ? min_version : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    /* Buffers are released while a connection is idle; writes may be partial
     * and retried from a moved buffer, since ours is an evbuffer. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!SSL_CTX_set1_groups_list(ctx, CR_TLS_GROUPS)) {
        fail(err, errlen, "groups", CR_TLS_GROUPS);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *cr_tls_server_new(const struct cr_cfg_listener *l, char *err, size_t errlen)
{
    const struct cr_cfg_tls_server *t = &l->tls;
    SSL_CTX *ctx = ctx_common(TLS_server_method(), t->min_version, err, errlen);
    if (!ctx)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!SSL_CTX_set_cipher_list(ctx, t->ciphers ? t->ciphers : CR_TLS12_CIPHERS)) {
        fail(err, errlen, "ciphers", t->ciphers ? t->ciphers : CR_TLS12_CIPHERS);
        goto fail_ctx;
    }
    if (t->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, t->ciphersuites)) {
        fail(err, errlen, "ciphersuites", t->ciphersuites);
        goto fail_ctx;
    }
    const struct cr_cfg_cert *c = &t->certs[0];
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
        fail(err, errlen, "certificate", c->cert);
        goto fail_ctx;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
        fail(err, errlen, "private key", c->key);
        goto fail_ctx;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail(err, errlen, "private key does not match the certificate", c->key);
        goto fail_ctx;
    }
    /* Stateless resumption only: tickets, no server-side session cache, so
     * a client resumes on whichever worker accepts it. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, t->tickets);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)t);
    return ctx;
fail_ctx:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *cr_tls_client_new(const struct cr_cfg_upstream *u, char *err, size_t errlen)
{
    SSL_CTX *ctx = ctx_common(TLS_client_method(), TLS1_2_VERSION, err, errlen);
    if (!ctx)
        return NULL;
    if (u->tls.insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_load_verify_locations(ctx, u->tls.ca, NULL) != 1) {
            fail(err, errlen, "CA file", u->tls.ca);
            goto fail_ctx;
        }
    }
    if (u->tls.cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, u->tls.cert) != 1) {
            fail(err, errlen, "client certificate", u->tls.cert);
            goto fail_ctx;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, u->tls.key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            fail(err, errlen, "client key", u->tls.key);
            goto fail_ctx;
        }
    }
    static const unsigned char h2[] = "\x02h2";
    static const unsigned char h11[] = "\x08http/1.1";
    if (u->protocol == CR_PROTO_H2)
        SSL_CTX_set_alpn_protos(ctx, h2, sizeof(h2) - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, h11, sizeof(h11) - 1);
    /* the pool keeps the last session of each connection itself */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return ctx;
fail_ctx:
    SSL_CTX_free(ctx);
    return NULL;
}
