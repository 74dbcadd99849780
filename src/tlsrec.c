/* tlsrec.c - TLS 1.3 records after the handshake (see tlsrec.h).
 *
 * RFC 8446 section 5 (record protection), 7.1-7.3 (key schedule, traffic
 * key calculation), 4.6.3 (KeyUpdate). */
#include "tlsrec.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"

#define HDR 5
#define TAG 16
#define MAX_PLAIN 16384
/* TLSInnerPlaintext (content, type byte, padding) is at most 2^14 + 1 bytes
 * (RFC 8446 5.4) and every suite's tag is 16 bytes: a longer record is
 * record_overflow, refused from its header before it is buffered. */
#define MAX_CIPHER (MAX_PLAIN + 1 + TAG)
#define RBUF_CAP (HDR + MAX_CIPHER)
#define WBUF_CAP (HDR + MAX_PLAIN + 1 + TAG)
/* Records under one key before we change ours: well below AES-GCM's limit
 * of 2^24.5 full records (RFC 8446 5.5). */
#define REKEY_AT (UINT64_C(1) << 23)

#define CT_ALERT 21
#define AD_UNEXPECTED_MESSAGE 10 /* alert descriptions (RFC 8446 6) */
#define AD_BAD_RECORD_MAC 20
#define AD_RECORD_OVERFLOW 22
#define AD_ILLEGAL_PARAMETER 47
#define AD_DECODE_ERROR 50
#define KU_LEN 5 /* a KeyUpdate: type, 24-bit length 1, request_update */
#define CT_HANDSHAKE 22
#define CT_APPDATA 23
#define HS_KEY_UPDATE 24

enum {
    F_RD_FIN = 1 << 0,  /* the client's Finished was read */
    F_WR_FIN = 1 << 1,  /* our Finished was written */
    F_CSECRET = 1 << 2, /* client application traffic secret captured */
    F_SSECRET = 1 << 3,
    F_KEYUPDATE = 1 << 4 /* a KeyUpdate passed through OpenSSL: counts are off */
};

struct suite {
    uint16_t id;
    const char *cipher;
    const char *md;
    size_t keylen;
    size_t hashlen;
};

static const struct suite suites[] = {
    {0x1301, "AES-128-GCM", "SHA256", 16, 32},
    {0x1302, "AES-256-GCM", "SHA384", 32, 48},
    {0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32},
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

/* Fetched once per process (workers are single-threaded): a fetch per
 * handshake costs more than the HMACs themselves. */
static EVP_CIPHER *ciphers[NSUITES];
static EVP_MAC_CTX *hmacs[NSUITES]; /* HMAC with the suite's hash, rekeyed per use */

struct dir {
    EVP_CIPHER_CTX *ctx;
    uint8_t secret[48];
    uint8_t iv[12];
    uint64_t seq;
};

struct cr_tlsrec {
    /* while following the handshake */
    uint32_t rd_recs, wr_recs, rd_base, wr_base;
    uint8_t flags;
    uint8_t csecret[48], ssecret[48];
    /* after the takeover */
    size_t si; /* index in suites[] */
    struct dir rd, wr;
    uint8_t *rbuf; /* raw bytes at [rstart, rlen) */
    size_t rstart, rlen;
    size_t pstart, plen; /* unread plaintext of the record at rstart */
    size_t rec_end;      /* where that record ends */
    uint8_t *wbuf;       /* encrypted bytes at [woff, wlen) to send */
    size_t woff, wlen;
    bool peer_closed;
    bool key_update_due; /* send a KeyUpdate (update_not_requested) */
    uint8_t hs[KU_LEN];  /* a handshake message split across records, so far */
    uint8_t hslen;
    uint8_t alert;     /* to send with the error in err, 0 = none */
    uint32_t empty;    /* records without data since the last yield or EAGAIN */
    uint32_t ku_count; /* KeyUpdates in the second from ku_window_us */
    uint64_t ku_window_us;
    const char *err;
};

static int rec_index = -1; /* SSL ex_data: the struct cr_tlsrec following it */

/* ------------------------------------------------------------ following the handshake */

static void on_keylog(const SSL *ssl, const char *line);

static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    struct cr_tlsrec *r = SSL_get_ex_data(ssl, rec_index);
    if (!r)
        return;
    if (content_type == SSL3_RT_HEADER) {
        if (write_p)
            r->wr_recs++;
        else
            r->rd_recs++;
        return;
    }
    if (content_type != SSL3_RT_HANDSHAKE || len < 1)
        return;
    uint8_t type = ((const uint8_t *)buf)[0];
    if (type == SSL3_MT_FINISHED && SSL_version(ssl) == TLS1_3_VERSION) {
        /* the Finished record was counted; the application keys start
         * with the next record (RFC 8446 7.2) */
        if (write_p) {
            r->wr_base = r->wr_recs;
            r->flags |= F_WR_FIN;
        } else {
            r->rd_base = r->rd_recs;
            r->flags |= F_RD_FIN;
        }
        /* The application secret of this direction is derived right after
         * this Finished. OpenSSL formats every secret it logs byte by byte
         * with sprintf (a twelfth of a resumed handshake's instructions for
         * five secrets), so the key log is on only from here until on_keylog
         * has the one it wants: three secrets formatted instead of five.
         * Safe because a worker runs one handshake step at a time. */
        SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(ssl), on_keylog);
    } else if (type == HS_KEY_UPDATE) {
        r->flags |= F_KEYUPDATE;
    }
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = s[2 * i + (size_t)k];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* OpenSSL hands each secret over as an NSS key-log line:
 * "LABEL <client random hex> <secret hex>". */
static void on_keylog(const SSL *ssl, const char *line)
{
    struct cr_tlsrec *r = SSL_get_ex_data(ssl, rec_index);
    if (!r)
        return;
    uint8_t *dst;
    uint8_t flag;
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) {
        dst = r->csecret;
        flag = F_CSECRET;
    } else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) {
        dst = r->ssecret;
        flag = F_SSECRET;
    } else {
        return;
    }
    const char *hex = strrchr(line, ' ') + 1;
    size_t n = strlen(hex) / 2;
    SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(ssl), NULL); /* see on_msg */
    if (n > sizeof(r->csecret) || unhex(hex, dst, n) < 0)
        return;
    r->flags |= flag;
}

int cr_tlsrec_ctx_setup(SSL_CTX *ctx)
{
    if (rec_index < 0)
        rec_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (rec_index < 0)
        return CR_ENOMEM;
    SSL_CTX_set_msg_callback(ctx, on_msg); /* which turns the key log on */
    return 0;
}

int cr_tlsrec_watch(SSL *ssl, struct cr_tlsrec **out)
{
    *out = NULL;
    if (rec_index < 0)
        return CR_EINVAL;
    struct cr_tlsrec *r = calloc(1, sizeof(*r));
    if (!r)
        return CR_ENOMEM;
    if (!SSL_set_ex_data(ssl, rec_index, r)) {
        free(r);
        return CR_ENOMEM;
    }
    *out = r;
    return 0;
}

/* ------------------------------------------------------------ keys */

/* HKDF-Expand-Label(secret, label, "", n) for n <= the hash length: one
 * HMAC block (RFC 8446 7.1, RFC 5869 2.3). */
static int expand_label(const struct suite *s, size_t si, const uint8_t *secret, const char *label,
                        uint8_t *out, size_t n)
{
    uint8_t info[2 + 1 + 6 + 16 + 1 + 1];
    size_t ll = strlen(label), k = 0;
    info[k++] = (uint8_t)(n >> 8);
    info[k++] = (uint8_t)n;
    info[k++] = (uint8_t)(6 + ll);
    memcpy(info + k, "tls13 ", 6);
    k += 6;
    memcpy(info + k, label, ll);
    k += ll;
    info[k++] = 0; /* empty context */
    info[k++] = 1; /* T(1) */
    uint8_t block[EVP_MAX_MD_SIZE];
    size_t bl = 0;
    if (EVP_MAC_init(hmacs[si], secret, s->hashlen, NULL) != 1 ||
        EVP_MAC_update(hmacs[si], info, k) != 1 ||
        EVP_MAC_final(hmacs[si], block, &bl, sizeof(block)) != 1 || bl < n)
        return CR_ETLS;
    memcpy(out, block, n);
    OPENSSL_cleanse(block, sizeof(block));
    return 0;
}

/* Keys a direction from its traffic secret (already in d->secret). */
static int dir_key(struct cr_tlsrec *r, struct dir *d, int enc)
{
    const struct suite *s = &suites[r->si];
    uint8_t key[32];
    int rc = CR_ETLS;
    if (expand_label(s, r->si, d->secret, "key", key, s->keylen) < 0 ||
        expand_label(s, r->si, d->secret, "iv", d->iv, sizeof(d->iv)) < 0)
        goto out;
    if (!d->ctx && !(d->ctx = EVP_CIPHER_CTX_new())) {
        rc = CR_ENOMEM;
        goto out;
    }
    if (EVP_CipherInit_ex2(d->ctx, ciphers[r->si], key, NULL, enc, NULL) != 1)
        goto out;
    d->seq = 0;
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* The next generation of a direction's secret (RFC 8446 7.2). */
static int dir_update(struct cr_tlsrec *r, struct dir *d, int enc)
{
    const struct suite *s = &suites[r->si];
    uint8_t next[48];
    if (expand_label(s, r->si, d->secret, "traffic upd", next, s->hashlen) < 0)
        return CR_ETLS;
    memcpy(d->secret, next, s->hashlen);
    OPENSSL_cleanse(next, sizeof(next));
    return dir_key(r, d, enc);
}

static int fetch_suite(size_t si)
{
    if (!ciphers[si])
        ciphers[si] = EVP_CIPHER_fetch(NULL, suites[si].cipher, NULL);
    if (!hmacs[si]) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string("digest", (char *)suites[si].md, 0),
            OSSL_PARAM_construct_end(),
        };
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac); /* the context holds its own reference */
        if (ctx && EVP_MAC_CTX_set_params(ctx, params) != 1) {
            EVP_MAC_CTX_free(ctx);
            ctx = NULL;
        }
        hmacs[si] = ctx;
    }
    return ciphers[si] && hmacs[si] ? 0 : CR_ETLS;
}

int cr_tlsrec_takeover(struct cr_tlsrec *r, SSL *ssl)
{
    if (!SSL_is_init_finished(ssl))
        return CR_EAGAIN;
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    uint16_t id = c ? SSL_CIPHER_get_protocol_id(c) : 0;
    size_t si = 0;
    while (si < NSUITES && suites[si].id != id)
        si++;
    const uint8_t need = F_RD_FIN | F_WR_FIN | F_CSECRET | F_SSECRET;
    if (SSL_version(ssl) != TLS1_3_VERSION || si == NSUITES || (r->flags & need) != need ||
        (r->flags & F_KEYUPDATE) || SSL_get_shutdown(ssl) || fetch_suite(si) < 0)
        goto never;
    if (SSL_has_pending(ssl))
        return CR_EAGAIN;
    r->si = si;
    memcpy(r->rd.secret, r->csecret, suites[si].hashlen);
    memcpy(r->wr.secret, r->ssecret, suites[si].hashlen);
    if (dir_key(r, &r->rd, 0) < 0 || dir_key(r, &r->wr, 1) < 0)
        goto never;
    r->rd.seq = r->rd_recs - r->rd_base;
    r->wr.seq = r->wr_recs - r->wr_base;
    OPENSSL_cleanse(r->csecret, sizeof(r->csecret));
    OPENSSL_cleanse(r->ssecret, sizeof(r->ssecret));
    SSL_set_ex_data(ssl, rec_index, NULL);
    return 0;
never:
    SSL_set_ex_data(ssl, rec_index, NULL);
    return CR_EINVAL;
}

int cr_tlsrec_new_keyed(uint16_t suite, const uint8_t *client_secret, const uint8_t *server_secret,
                        size_t secret_len, struct cr_tlsrec **out)
{
    size_t si = 0;
    *out = NULL;
    while (si < NSUITES && suites[si].id != suite)
        si++;
    if (si == NSUITES || secret_len != suites[si].hashlen)
        return CR_EINVAL;
    if (fetch_suite(si) < 0)
        return CR_ETLS;
    struct cr_tlsrec *r = calloc(1, sizeof(*r));
    if (!r)
        return CR_ENOMEM;
    r->si = si;
    memcpy(r->rd.secret, client_secret, secret_len);
    memcpy(r->wr.secret, server_secret, secret_len);
    int rc = dir_key(r, &r->rd, 0);
    if (rc == 0)
        rc = dir_key(r, &r->wr, 1);
    if (rc < 0) {
        cr_tlsrec_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ------------------------------------------------------------ records */

static void nonce(const struct dir *d, uint8_t n[12])
{
    memcpy(n, d->iv, 12);
    for (int i = 0; i < 8; i++)
        n[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* Protects len bytes of type into rec (HDR + len + 1 + TAG bytes). */
static int seal(struct dir *d, uint8_t *rec, const uint8_t *in, size_t len, uint8_t type)
{
    size_t clen = len + 1 + TAG;
    uint8_t n[12];
    int ol;
    rec[0] = CT_APPDATA;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = (uint8_t)(clen >> 8);
    rec[4] = (uint8_t)clen;
    nonce(d, n);
    if (EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, n, 1) != 1 ||
        EVP_EncryptUpdate(d->ctx, NULL, &ol, rec, HDR) != 1 ||
        (len &&
         (EVP_EncryptUpdate(d->ctx, rec + HDR, &ol, in, (int)len) != 1 || (size_t)ol != len)) ||
        EVP_EncryptUpdate(d->ctx, rec + HDR + len, &ol, &type, 1) != 1 || ol != 1 ||
        EVP_EncryptFinal_ex(d->ctx, rec + HDR + len + 1, &ol) != 1 ||
        EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, TAG, rec + HDR + len + 1) != 1)
        return CR_ETLS;
    d->seq++;
    return 0;
}

/* Opens the record at rec in place; *type and *plen describe the content
 * that starts at rec + HDR. CR_EPROTO: authentication failed; CR_EINVAL: no
 * content type (all padding). */
static int unseal(struct dir *d, uint8_t *rec, size_t clen, uint8_t *type, size_t *plen)
{
    uint8_t n[12];
    int ol;
    size_t len = clen - TAG;
    nonce(d, n);
    if (EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, n, 0) != 1 ||
        EVP_DecryptUpdate(d->ctx, NULL, &ol, rec, HDR) != 1 ||
        EVP_DecryptUpdate(d->ctx, rec + HDR, &ol, rec + HDR, (int)len) != 1 || (size_t)ol != len ||
        EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_TAG, TAG, rec + HDR + len) != 1 ||
        EVP_DecryptFinal_ex(d->ctx, rec + HDR + len, &ol) != 1)
        return CR_EPROTO;
    d->seq++;
    while (len > 0 && rec[HDR + len - 1] == 0) /* padding */
        len--;
    if (len == 0)
        return CR_EINVAL;
    *type = rec[HDR + len - 1];
    *plen = len - 1;
    return 0;
}

/* Queues a KeyUpdate (update_not_requested) under the current write key,
 * then moves to the next one. Needs an empty wbuf. */
static int send_key_update(struct cr_tlsrec *r)
{
    static const uint8_t msg[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};
    if (!r->wbuf && !(r->wbuf = malloc(WBUF_CAP)))
        return CR_ENOMEM;
    if (seal(&r->wr, r->wbuf, msg, sizeof(msg), CT_HANDSHAKE) < 0)
        return CR_ETLS;
    r->woff = 0;
    r->wlen = HDR + sizeof(msg) + 1 + TAG;
    r->key_update_due = false;
    return dir_update(r, &r->wr, 1);
}

/* Records the error that ends the connection and the alert that says so. */
static int fail(struct cr_tlsrec *r, uint8_t alert, const char *why)
{
    r->err = why;
    r->alert = alert;
    return CR_EPROTO;
}

/* The second-long window of KeyUpdates: checked before the rekeying it
 * limits. */
static int key_update_allowed(struct cr_tlsrec *r)
{
    uint64_t now = cr_now_us();
    if (now - r->ku_window_us >= 1000000u) {
        r->ku_window_us = now;
        r->ku_count = 0;
    }
    if (++r->ku_count > CR_TLSREC_MAX_KEY_UPDATES)
        return fail(r, AD_UNEXPECTED_MESSAGE, "too many KeyUpdates");
    return 0;
}

/* Handshake messages after the handshake: only KeyUpdate (RFC 8446 4.6.3),
 * which may arrive in pieces over several records (5.1) but must end its
 * record, since the key changes after it. The pieces gather in r->hs and
 * are checked as they come, so nothing else is ever buffered. */
static int on_handshake(struct cr_tlsrec *r, const uint8_t *p, size_t len)
{
    static const uint8_t head[KU_LEN - 1] = {HS_KEY_UPDATE, 0, 0, 1};
    if (len == 0)
        return fail(r, AD_UNEXPECTED_MESSAGE, "empty handshake record");
    if (len > KU_LEN - (size_t)r->hslen) /* more than one KeyUpdate can be */
        return fail(r, AD_UNEXPECTED_MESSAGE,
                    (r->hslen ? r->hs[0] : p[0]) == HS_KEY_UPDATE
                        ? "KeyUpdate not alone at the end of its record"
                        : "unexpected handshake message after the handshake");
    memcpy(r->hs + r->hslen, p, len);
    r->hslen = (uint8_t)(r->hslen + len);
    if (r->hs[0] != HS_KEY_UPDATE)
        return fail(r, AD_UNEXPECTED_MESSAGE, "unexpected handshake message after the handshake");
    if (memcmp(r->hs, head, CR_MIN((size_t)r->hslen, sizeof(head))) != 0)
        return fail(r, AD_DECODE_ERROR, "bad KeyUpdate length");
    if (r->hslen < KU_LEN)
        return 0; /* the rest comes in the next record */
    r->hslen = 0;
    if (r->hs[4] > 1)
        return fail(r, AD_ILLEGAL_PARAMETER, "bad KeyUpdate request");
    if (key_update_allowed(r) < 0)
        return CR_ELIMIT;
    if (r->hs[4] == 1) /* update_requested */
        r->key_update_due = true;
    if (dir_update(r, &r->rd, 0) < 0) {
        r->err = "key update failed";
        return CR_ETLS;
    }
    return 0;
}

/* Opens the whole record at rstart; sets up its plaintext or handles it.
 * Returns 0, or CR_ECLOSED (close_notify), or an error. */
static int open_record(struct cr_tlsrec *r)
{
    uint8_t *rec = r->rbuf + r->rstart;
    size_t clen = (size_t)rec[3] << 8 | rec[4];
    uint8_t type;
    size_t plen;
    r->rec_end = r->rstart + HDR + clen;
    int rc = unseal(&r->rd, rec, clen, &type, &plen);
    if (rc == CR_EINVAL)
        return fail(r, AD_UNEXPECTED_MESSAGE, "record without a content type");
    if (rc < 0)
        return fail(r, AD_BAD_RECORD_MAC, "bad record (authentication failed)");
    if (r->hslen && type != CT_HANDSHAKE) /* RFC 8446 5.1 */
        return fail(r, AD_UNEXPECTED_MESSAGE, "record between the pieces of a handshake message");
    const uint8_t *p = rec + HDR;
    switch (type) {
    case CT_APPDATA:
        r->pstart = r->rstart + HDR;
        r->plen = plen;
        if (plen)
            return 0;
        break;
    case CT_ALERT:
        if (plen == 2 && p[1] == 0) { /* close_notify */
            r->peer_closed = true;
            rc = CR_ECLOSED;
        } else if (!(plen == 2 && p[1] == 90)) { /* user_canceled is harmless */
            r->err = "alert from the client";    /* nothing to answer to a fatal alert */
            rc = CR_EPROTO;
        }
        break;
    case CT_HANDSHAKE:
        rc = on_handshake(r, p, plen);
        break;
    default:
        rc = fail(r, AD_UNEXPECTED_MESSAGE, "unexpected record type");
    }
    r->rstart = r->rec_end; /* nothing to hand out from this one */
    return rc;
}

bool cr_tlsrec_buffered(const struct cr_tlsrec *r)
{
    return r->plen || r->rlen > r->rstart;
}

bool cr_tlsrec_pending(const struct cr_tlsrec *r)
{
    if (r->plen)
        return true;
    size_t avail = r->rlen - r->rstart;
    if (avail < HDR)
        return false;
    const uint8_t *h = r->rbuf + r->rstart;
    return avail >= HDR + ((size_t)h[3] << 8 | h[4]);
}

static enum cr_tls_io read_error(struct cr_tlsrec *r, int fd);

enum cr_tls_io cr_tlsrec_read(struct cr_tlsrec *r, int fd, void *buf, size_t len, size_t *n)
{
    *n = 0;
    for (;;) {
        if (r->plen) {
            size_t k = CR_MIN(len, r->plen);
            memcpy(buf, r->rbuf + r->pstart, k);
            r->pstart += k;
            r->plen -= k;
            if (!r->plen)
                r->rstart = r->rec_end;
            *n = k;
            return CR_TLS_OK;
        }
        if (r->peer_closed)
            return CR_TLS_CLOSED;
        size_t avail = r->rlen - r->rstart;
        if (avail >= HDR) {
            const uint8_t *h = r->rbuf + r->rstart;
            size_t clen = (size_t)h[3] << 8 | h[4];
            if (h[0] != CT_APPDATA) {
                fail(r, AD_UNEXPECTED_MESSAGE, "unexpected record type");
                return read_error(r, fd);
            }
            if (clen > MAX_CIPHER) {
                fail(r, AD_RECORD_OVERFLOW, "record overflow");
                return read_error(r, fd);
            }
            if (clen < 1 + TAG) {
                fail(r, AD_BAD_RECORD_MAC, "bad record length");
                return read_error(r, fd);
            }
            if (avail >= HDR + clen) {
                int rc = open_record(r);
                if (rc == CR_ECLOSED)
                    return CR_TLS_CLOSED;
                if (rc < 0)
                    return read_error(r, fd);
                if (!r->plen && ++r->empty >= CR_TLSREC_MAX_EMPTY) {
                    r->empty = 0; /* the caller comes back: cr_tlsrec_pending */
                    return CR_TLS_WANT_READ;
                }
                continue;
            }
        }
        if (!r->rbuf && !(r->rbuf = malloc(RBUF_CAP))) {
            r->err = "out of memory";
            return CR_TLS_ERROR;
        }
        if (r->rstart) { /* keep the partial record at the front */
            memmove(r->rbuf, r->rbuf + r->rstart, avail);
            r->rstart = 0;
            r->rlen = avail;
        }
        ssize_t got = recv(fd, r->rbuf + r->rlen, RBUF_CAP - r->rlen, 0);
        if (got > 0) {
            r->rlen += (size_t)got;
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            r->empty = 0;       /* the socket is drained: the next wakeup starts afresh */
            if (r->rlen == 0) { /* idle: no buffer */
                free(r->rbuf);
                r->rbuf = NULL;
            }
            return CR_TLS_WANT_READ;
        }
        return CR_TLS_CLOSED; /* EOF or a reset */
    }
}

/* Sends what wbuf holds. */
static enum cr_tls_io send_pending(struct cr_tlsrec *r, int fd)
{
    while (r->woff < r->wlen) {
        ssize_t k = send(fd, r->wbuf + r->woff, r->wlen - r->woff, MSG_NOSIGNAL);
        if (k > 0) {
            r->woff += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return CR_TLS_WANT_WRITE;
        return CR_TLS_CLOSED;
    }
    r->woff = r->wlen = 0;
    return CR_TLS_OK;
}

enum cr_tls_io cr_tlsrec_write_out(struct cr_tlsrec *r, int fd, struct evbuffer *out)
{
    for (;;) {
        enum cr_tls_io rc = send_pending(r, fd);
        if (rc != CR_TLS_OK)
            return rc;
        if (r->wr.seq >= REKEY_AT)
            r->key_update_due = true;
        if (r->key_update_due) {
            if (send_key_update(r) < 0) {
                r->err = "key update failed";
                return CR_TLS_ERROR;
            }
            continue;
        }
        size_t len = evbuffer_get_length(out);
        if (len == 0)
            break;
        size_t chunk = CR_MIN(len, (size_t)MAX_PLAIN);
        const uint8_t *p = evbuffer_pullup(out, (ssize_t)chunk);
        if (!p || (!r->wbuf && !(r->wbuf = malloc(WBUF_CAP)))) {
            r->err = "out of memory";
            return CR_TLS_ERROR;
        }
        if (seal(&r->wr, r->wbuf, p, chunk, CT_APPDATA) < 0) {
            r->err = "encryption failed";
            return CR_TLS_ERROR;
        }
        evbuffer_drain(out, chunk);
        r->woff = 0;
        r->wlen = HDR + chunk + 1 + TAG;
    }
    free(r->wbuf); /* idle: no buffer */
    r->wbuf = NULL;
    return CR_TLS_OK;
}

bool cr_tlsrec_want_write(const struct cr_tlsrec *r)
{
    return r->woff < r->wlen || r->key_update_due;
}

/* Sends an alert after what is queued, best effort, never waiting: when the
 * socket will not take the queued bytes the alert is left out. */
static void send_alert(struct cr_tlsrec *r, int fd, uint8_t level, uint8_t desc)
{
    const uint8_t alert[2] = {level, desc};
    uint8_t rec[HDR + sizeof(alert) + 1 + TAG];
    if (!r->wr.ctx || send_pending(r, fd) != CR_TLS_OK)
        return;
    if (seal(&r->wr, rec, alert, sizeof(alert), CT_ALERT) == 0)
        (void)send(fd, rec, sizeof(rec), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* A read ends in an error: the alert that goes with it, if any, leaves
 * first (RFC 8446 6.2). */
static enum cr_tls_io read_error(struct cr_tlsrec *r, int fd)
{
    if (r->alert)
        send_alert(r, fd, 2, r->alert); /* fatal */
    r->alert = 0;
    return CR_TLS_ERROR;
}

void cr_tlsrec_close_notify(struct cr_tlsrec *r, int fd)
{
    send_alert(r, fd, 1, 0); /* warning, close_notify */
}

const char *cr_tlsrec_error(const struct cr_tlsrec *r)
{
    return r->err ? r->err : "no error";
}

void cr_tlsrec_free(struct cr_tlsrec *r)
{
    if (!r)
        return;
    EVP_CIPHER_CTX_free(r->rd.ctx);
    EVP_CIPHER_CTX_free(r->wr.ctx);
    free(r->rbuf);
    free(r->wbuf);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}
