/* tls13seal.c - a TLS 1.3 client's record protection for the tests (see
 * tls13seal.h). */
#include "tls13seal.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <stdio.h>
#include <string.h>

static const struct {
    uint16_t id;
    const char *cipher, *md;
} suites[] = {
    {0x1301, "AES-128-GCM", "SHA256"},
    {0x1302, "AES-256-GCM", "SHA384"},
    {0x1303, "ChaCha20-Poly1305", "SHA256"},
};

/* HKDF-Expand-Label(secret, label, "", n) (RFC 8446 7.1), by OpenSSL's own
 * TLS 1.3 KDF rather than a second copy of src/tlsrec.c's. */
static int expand_label(const struct tls13seal *s, const uint8_t *secret, const char *label,
                        uint8_t *out, size_t n)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)s->md, 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, s->hashlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, "tls13 ", 6),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label, strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    int rc = ctx && EVP_KDF_derive(ctx, out, n, params) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

/* The write key and IV from s->secret. */
static int keys(struct tls13seal *s)
{
    uint8_t key[32];
    if (expand_label(s, s->secret, "key", key, s->keylen) < 0 ||
        expand_label(s, s->secret, "iv", s->iv, sizeof(s->iv)) < 0 ||
        EVP_CipherInit_ex2(s->ctx, s->cipher, key, NULL, 1, NULL) != 1)
        return -1;
    s->seq = 0;
    return 0;
}

int tls13seal_init(struct tls13seal *s, uint16_t suite, const uint8_t *secret, size_t len)
{
    memset(s, 0, sizeof(*s));
    size_t si = 0;
    while (si < sizeof(suites) / sizeof(suites[0]) && suites[si].id != suite)
        si++;
    if (si == sizeof(suites) / sizeof(suites[0]))
        return -1;
    s->md = suites[si].md;
    EVP_MD *md = EVP_MD_fetch(NULL, s->md, NULL);
    s->hashlen = md ? (size_t)EVP_MD_get_size(md) : 0;
    EVP_MD_free(md);
    s->cipher = EVP_CIPHER_fetch(NULL, suites[si].cipher, NULL);
    s->ctx = EVP_CIPHER_CTX_new();
    if (!s->cipher || !s->ctx || len != s->hashlen || len > sizeof(s->secret)) {
        tls13seal_free(s);
        return -1;
    }
    s->keylen = (size_t)EVP_CIPHER_get_key_length(s->cipher);
    memcpy(s->secret, secret, len);
    if (keys(s) < 0) {
        tls13seal_free(s);
        return -1;
    }
    return 0;
}

int tls13seal_key_update(struct tls13seal *s)
{
    uint8_t next[sizeof(s->secret)];
    if (expand_label(s, s->secret, "traffic upd", next, s->hashlen) < 0)
        return -1;
    memcpy(s->secret, next, s->hashlen);
    return keys(s);
}

size_t tls13seal_size(size_t len, size_t pad)
{
    return TLS13SEAL_HDR + len + 1 + pad + TLS13SEAL_TAG;
}

int tls13seal_record(struct tls13seal *s, uint8_t type, const void *content, size_t len, size_t pad,
                     uint8_t *out)
{
    size_t inner = len + 1 + pad, clen = inner + TLS13SEAL_TAG;
    if (clen > 65535)
        return -1;
    uint8_t *body = out + TLS13SEAL_HDR;
    out[0] = 23; /* application_data, whatever the inner type */
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(clen >> 8);
    out[4] = (uint8_t)clen;
    memcpy(body, content, len);
    body[len] = type;
    memset(body + len + 1, 0, pad);
    uint8_t nonce[12];
    memcpy(nonce, s->iv, sizeof(nonce));
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(s->seq >> (8 * i));
    int ol;
    if (EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
        EVP_EncryptUpdate(s->ctx, NULL, &ol, out, TLS13SEAL_HDR) != 1 ||
        EVP_EncryptUpdate(s->ctx, body, &ol, body, (int)inner) != 1 ||
        EVP_EncryptFinal_ex(s->ctx, body + inner, &ol) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, TLS13SEAL_TAG, body + inner) != 1)
        return -1;
    s->seq++;
    return 0;
}

void tls13seal_free(struct tls13seal *s)
{
    EVP_CIPHER_CTX_free(s->ctx);
    EVP_CIPHER_free(s->cipher);
    s->ctx = NULL;
    s->cipher = NULL;
}

int tls13seal_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}
