/* tls13seal.h - a TLS 1.3 client's record protection done by hand, for the
 * tests that must put on the wire what no real client sends to corral's
 * record layer (src/tlsrec.c): empty records, alerts, a KeyUpdate split
 * across records, padding past the limit, flipped bits, records a fuzzer
 * chose. One copy for tests/unit/check_tlsrec.c, tests/integration/
 * tls_abuse.c and tests/fuzz/fuzz_tlsrec.c; it is test code, not corral's.
 *
 * From a client application traffic secret (from a key log, or chosen by
 * the test) it derives the write key and IV (RFC 8446 7.3), seals records
 * (5.2-5.4: outer type application_data, the inner type and zero padding
 * the caller asks for, the nonce from the IV and the sequence number) and
 * moves to the next secret as a KeyUpdate does (7.2).
 *
 * It needs only OpenSSL (no Check, no libcorral: tls_abuse and the fuzz
 * target link neither). Every function that can fail returns 0 or -1 (an
 * OpenSSL failure, an unknown suite, a length that does not fit); the
 * caller asserts in its own way. */
#ifndef CORRAL_TESTS_TLS13SEAL_H
#define CORRAL_TESTS_TLS13SEAL_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define TLS13SEAL_HDR 5  /* record header */
#define TLS13SEAL_TAG 16 /* AEAD tag, every TLS 1.3 suite */

/* One direction's write state. Zero it or tls13seal_init it before
 * tls13seal_free. */
struct tls13seal {
    EVP_CIPHER *cipher;
    EVP_CIPHER_CTX *ctx; /* keyed with the current write key */
    const char *md;      /* the suite's hash */
    size_t keylen;
    size_t hashlen;     /* of the hash: the length of the secret */
    uint8_t secret[48]; /* the current traffic secret */
    uint8_t iv[12];
    /* the next record's sequence number; a caller may set it, e.g. to
     * continue OpenSSL's */
    uint64_t seq;
};

/* Keys s for suite (0x1301 TLS_AES_128_GCM_SHA256, 0x1302
 * TLS_AES_256_GCM_SHA384, 0x1303 TLS_CHACHA20_POLY1305_SHA256) from secret,
 * len bytes (the suite's hash length: 32, or 48 for 0x1302); seq 0. */
int tls13seal_init(struct tls13seal *s, uint16_t suite, const uint8_t *secret, size_t len);

/* The next generation of the secret and its key, as after the client's
 * KeyUpdate; seq 0. */
int tls13seal_key_update(struct tls13seal *s);

/* The size of the record that seals len bytes of content with pad zeros. */
size_t tls13seal_size(size_t len, size_t pad);

/* Seals content (len bytes) of inner type, then pad zero bytes, as one
 * record into out (tls13seal_size(len, pad) bytes); seq moves on. -1 also
 * when the record would be longer than a header can say (65535). */
int tls13seal_record(struct tls13seal *s, uint8_t type, const void *content, size_t len, size_t pad,
                     uint8_t *out);

void tls13seal_free(struct tls13seal *s);

/* Exactly 2 * n hex digits (a secret from a key log) into out. */
int tls13seal_unhex(const char *hex, uint8_t *out, size_t n);

#endif
