/* ticket.h - TLS session ticket keys shared by every worker.
 *
 * A key ring per listener lives in shared memory: keys[0] encrypts new
 * tickets, every key in the ring decrypts (a ticket under an older key is
 * accepted and renewed). The master fills the rings: from a key file, or
 * from keys it generates and rotates every ticket_rotate; workers only read
 * them, through a seqlock, in OpenSSL's ticket callback. So a client
 * resumes on whichever worker accepts it, across reloads and rotations.
 *
 * Key files hold 80-byte keys in either of the formats the peers use:
 *   - raw binary, 80 bytes per key, nginx's layout (name[16], hmac[32],
 *     aes[32]); the first key encrypts (like nginx's first
 *     ssl_session_ticket_key);
 *   - text, one base64 key per line, HAProxy's layout (name[16], aes[32],
 *     hmac[32]); with several keys the penultimate encrypts (HAProxy's rule:
 *     the last line is the next key, published ahead of its use). Blank
 *     lines and lines starting with '#' are skipped; every other line must
 *     be exactly one key: 108 characters of the base64 alphabet, the last
 *     one '='. Each line is checked (length, then characters) before it is
 *     decoded, and refused with the file and line number.
 * A file is read as text when it holds only printable ASCII and white space.
 * At most 64 keys and 64 KiB per file.
 * Tickets are AES-256-CBC + HMAC-SHA256 (RFC 5077's recommended format). */
#ifndef CR_TICKET_H
#define CR_TICKET_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CR_TICKET_RING 4 /* the encrypting key and the three before it */

struct cr_ticket_key {
    uint8_t name[16];
    uint8_t aes[32];
    uint8_t hmac[32];
};

struct cr_ticket_ring {
    _Atomic uint32_t seq; /* odd while the master writes */
    uint32_t n;
    struct cr_ticket_key keys[CR_TICKET_RING];
};

/* Reads a key file. On success returns 0, fills keys[0..*n) with the
 * encrypting key first, and the rest in decreasing preference. Returns
 * CR_EINVAL (with a message in err naming the file, and for a text file the
 * line) for a missing, unreadable, empty or malformed file; keys and *n are
 * then untouched. The file's bytes are wiped from memory either way. */
int cr_ticket_load_file(const char *path, struct cr_ticket_key *keys, size_t *n, char *err,
                        size_t errlen);

/* Master: makes keys the ring's content. */
void cr_ticket_publish(struct cr_ticket_ring *ring, const struct cr_ticket_key *keys, size_t n);

/* Master: a fresh random key becomes the encrypting one; the oldest falls
 * out. Returns 0 or CR_ETLS when the random generator fails. */
int cr_ticket_rotate(struct cr_ticket_ring *ring);

/* Makes ctx issue and accept tickets with the keys of ring. lifetime_s is
 * the ticket lifetime hint. Returns 0 or CR_ETLS. */
int cr_ticket_attach(SSL_CTX *ctx, struct cr_ticket_ring *ring, long lifetime_s);

#endif
