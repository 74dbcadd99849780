/* ticket.c - session ticket keys: files, rotation, the OpenSSL callback. */
#include "ticket.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define MAX_FILE 65536
#define MAX_KEYS 64     /* keys in one file */
#define KEY_RAW_LEN 80  /* name[16], aes[32], hmac[32] */
#define KEY_B64_LEN 108 /* base64 of 80 bytes: 26 groups of 4, then "xxx=" */

static int ring_index = -1;   /* SSL_CTX ex_data slot of the ring */
static EVP_CIPHER *aes256cbc; /* fetched once, not per handshake */

/* ------------------------------------------------------------ files */

static int is_b64(int c)
{
    return isalnum(c) || c == '+' || c == '/' || c == '=';
}

static int read_all(const char *path, uint8_t *buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read ticket key file %s: %s", path, strerror(errno));
        return CR_EINVAL;
    }
    *len = fread(buf, 1, MAX_FILE, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "ticket key file %s: unreadable or larger than %d bytes", path,
                 MAX_FILE);
        return CR_EINVAL;
    }
    return 0;
}

static void from_haproxy(struct cr_ticket_key *k, const uint8_t *raw)
{
    memcpy(k->name, raw, 16);
    memcpy(k->aes, raw + 16, 32);
    memcpy(k->hmac, raw + 48, 32);
}

static void from_nginx(struct cr_ticket_key *k, const uint8_t *raw)
{
    memcpy(k->name, raw, 16);
    memcpy(k->hmac, raw + 16, 32);
    memcpy(k->aes, raw + 48, 32);
}

/* One text line: KEY_B64_LEN characters of the base64 alphabet, '=' only as
 * the final padding. Checked before decoding, so that a line of any length
 * or content never reaches the decoder. Returns 0 or CR_EINVAL with a
 * message naming path and line. */
static int check_line(const char *path, size_t line, const char *l, size_t ll, char *err,
                      size_t errlen)
{
    static const char hint[] = "(make one with: openssl rand 80 | openssl base64 -A)";
    if (ll != KEY_B64_LEN || l[ll - 1] != '=') {
        snprintf(err, errlen,
                 "ticket key file %s:%zu: the line is %zu characters long%s; a base64-encoded "
                 "80-byte key is %d characters long, the last one '=' %s",
                 path, line, ll, ll == KEY_B64_LEN ? " without '=' at the end" : "", KEY_B64_LEN,
                 hint);
        return CR_EINVAL;
    }
    for (size_t i = 0; i < ll; i++) {
        unsigned char c = (unsigned char)l[i];
        if (is_b64(c) && (c != '=' || i == ll - 1))
            continue;
        if (isgraph(c))
            snprintf(err, errlen,
                     "ticket key file %s:%zu: invalid character '%c' at column %zu: not a "
                     "base64-encoded 80-byte key %s",
                     path, line, c, i + 1, hint);
        else
            snprintf(err, errlen,
                     "ticket key file %s:%zu: invalid character 0x%02x at column %zu: not a "
                     "base64-encoded 80-byte key %s",
                     path, line, c, i + 1, hint);
        return CR_EINVAL;
    }
    return 0;
}

/* Base64 lines, HAProxy's layout and order. */
static int parse_text(const char *path, uint8_t *buf, size_t len, struct cr_ticket_key *all,
                      size_t *n, char *err, size_t errlen)
{
    size_t count = 0, line = 0;
    uint8_t raw[KEY_RAW_LEN + 1]; /* the decoder writes 3 bytes per 4 characters */
    int rc = CR_EINVAL;
    buf[len] = '\0';
    for (char *p = (char *)buf, *next; p < (char *)buf + len; p = next) {
        char *nl = memchr(p, '\n', (size_t)((char *)buf + len - p));
        next = nl != NULL ? nl + 1 : (char *)buf + len;
        size_t ll = (size_t)((nl != NULL ? nl : (char *)buf + len) - p);
        line++;
        while (ll && isspace((unsigned char)p[ll - 1]))
            ll--;
        if (ll == 0 || p[0] == '#')
            continue;
        if (check_line(path, line, p, ll, err, errlen) < 0)
            goto out;
        if (EVP_DecodeBlock(raw, (const unsigned char *)p, (int)ll) != KEY_RAW_LEN + 1) {
            snprintf(err, errlen, "ticket key file %s:%zu: not a base64-encoded 80-byte key", path,
                     line);
            goto out;
        }
        if (count == MAX_KEYS) {
            snprintf(err, errlen, "ticket key file %s:%zu: more than %d keys", path, line,
                     MAX_KEYS);
            goto out;
        }
        from_haproxy(&all[count++], raw);
    }
    *n = count;
    rc = 0;
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

/* A text file holds printable ASCII and white space only: a binary key file
 * (random bytes) practically never does. */
static int looks_like_text(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isprint(buf[i]) && !isspace(buf[i]))
            return 0;
    return 1;
}

int cr_ticket_load_file(const char *path, struct cr_ticket_key *keys, size_t *n, char *err,
                        size_t errlen)
{
    static uint8_t buf[MAX_FILE + 1];
    struct cr_ticket_key all[MAX_KEYS];
    size_t len, count = 0, enc = 0;
    int rc = CR_EINVAL;
    if (read_all(path, buf, &len, err, errlen) < 0)
        return CR_EINVAL;
    if (len > 0 && looks_like_text(buf, len)) {
        if (parse_text(path, buf, len, all, &count, err, errlen) < 0)
            goto out;
        enc = count >= 2 ? count - 2 : 0; /* the last key is the next one */
    } else if (len > 0) {
        if (len % KEY_RAW_LEN != 0 || len / KEY_RAW_LEN > MAX_KEYS) {
            snprintf(err, errlen,
                     "ticket key file %s: %zu bytes; expected 1 to %d 80-byte keys "
                     "(make one with: openssl rand 80 > FILE)",
                     path, len, MAX_KEYS);
            goto out;
        }
        for (size_t i = 0; i < len / KEY_RAW_LEN; i++)
            from_nginx(&all[count++], buf + KEY_RAW_LEN * i);
    }
    if (count == 0) {
        snprintf(err, errlen, "ticket key file %s holds no key", path);
        goto out;
    }
    /* the encrypting key first, then its neighbours, nearest first */
    size_t m = 0;
    keys[m++] = all[enc];
    for (size_t d = 1; m < CR_TICKET_RING && d < count; d++) {
        if (enc + d < count && m < CR_TICKET_RING)
            keys[m++] = all[enc + d];
        if (d <= enc && m < CR_TICKET_RING)
            keys[m++] = all[enc - d];
    }
    *n = m;
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf)); /* key material, refused or not */
    OPENSSL_cleanse(all, sizeof(all));
    return rc;
}

/* ------------------------------------------------------------ the ring */

void cr_ticket_publish(struct cr_ticket_ring *ring, const struct cr_ticket_key *keys, size_t n)
{
    n = CR_MIN(n, (size_t)CR_TICKET_RING);
    atomic_fetch_add_explicit(&ring->seq, 1, memory_order_acq_rel); /* odd: writing */
    atomic_thread_fence(memory_order_release);
    memcpy(ring->keys, keys, n * sizeof(*keys));
    ring->n = (uint32_t)n;
    atomic_thread_fence(memory_order_release);
    atomic_fetch_add_explicit(&ring->seq, 1, memory_order_acq_rel); /* even: done */
}

int cr_ticket_rotate(struct cr_ticket_ring *ring)
{
    struct cr_ticket_key keys[CR_TICKET_RING];
    size_t n = CR_MIN((size_t)ring->n, (size_t)CR_TICKET_RING - 1);
    memcpy(keys + 1, ring->keys, n * sizeof(keys[0]));
    if (RAND_bytes((unsigned char *)&keys[0], sizeof(keys[0])) != 1)
        return CR_ETLS;
    cr_ticket_publish(ring, keys, n + 1);
    OPENSSL_cleanse(keys, sizeof(keys));
    return 0;
}

/* A consistent copy of the ring, however often the master writes it. */
static void ring_read(struct cr_ticket_ring *ring, struct cr_ticket_key *keys, uint32_t *n)
{
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&ring->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        *n = CR_MIN(ring->n, (uint32_t)CR_TICKET_RING);
        memcpy(keys, ring->keys, *n * sizeof(*keys));
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&ring->seq, memory_order_relaxed) == s1)
            return;
    }
}

/* ------------------------------------------------------------ OpenSSL */

static int set_hmac(EVP_MAC_CTX *hctx, const uint8_t *key)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's contract: encrypt -> 1 (or <0); decrypt -> 0 unknown key (full
 * handshake), 1 ok, 2 ok and issue a fresh ticket. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct cr_ticket_ring *ring = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index);
    struct cr_ticket_key keys[CR_TICKET_RING];
    uint32_t n = 0;
    int rc = -1;
    if (!ring)
        return -1;
    ring_read(ring, keys, &n);
    if (enc) {
        if (n == 0 || RAND_bytes(iv, 16) != 1)
            goto out;
        memcpy(name, keys[0].name, 16);
        if (EVP_EncryptInit_ex(cctx, aes256cbc, NULL, keys[0].aes, iv) != 1 ||
            set_hmac(hctx, keys[0].hmac) < 0)
            goto out;
        rc = 1;
        goto out;
    }
    rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (memcmp(name, keys[i].name, 16) != 0)
            continue;
        if (set_hmac(hctx, keys[i].hmac) < 0 ||
            EVP_DecryptInit_ex(cctx, aes256cbc, NULL, keys[i].aes, iv) != 1) {
            rc = -1;
            goto out;
        }
        /* 2 = "renew": a ticket of an older key, and every TLS 1.3
         * resumption, which gets fresh tickets (OpenSSL sends none after
         * a plain 1): TLS 1.3 clients use a ticket once (RFC 8446 C.4), so
         * without them a returning phone resumes once, then pays for a
         * full handshake again. */
        rc = i == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
        break;
    }
out:
    OPENSSL_cleanse(keys, sizeof(keys));
    return rc;
}

int cr_ticket_attach(SSL_CTX *ctx, struct cr_ticket_ring *ring, long lifetime_s)
{
    if (ring_index < 0)
        ring_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (!aes256cbc)
        aes256cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (ring_index < 0 || !aes256cbc || !SSL_CTX_set_ex_data(ctx, ring_index, ring))
        return CR_ETLS;
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
        return CR_ETLS;
    SSL_CTX_set_timeout(ctx, lifetime_s);
    return 0;
}
