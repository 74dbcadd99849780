/* tlsrec.h - corral's own TLS 1.3 record layer for established client
 * connections ("handoff").
 *
 * Why: OpenSSL 3.0 keeps about 14 KB per connection after the handshake
 * (the SSL object alone is 8 KB), which is most of what an idle phone costs
 * the edge. The handshake is OpenSSL's job; what follows it in TLS 1.3 is
 * only AEAD records under two traffic secrets. So once a TLS 1.3 handshake
 * is over and OpenSSL holds nothing unread or unsent, the connection's
 * records move here and the SSL object is freed: what stays is the two
 * secrets, the sequence numbers and the two cipher contexts, under 2 KB.
 *
 * How: a message callback counts the records OpenSSL reads and writes and
 * notes the Finished messages (after which the application keys start at
 * sequence 0); a keylog callback captures the application traffic secrets.
 * Suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
 * TLS_CHACHA20_POLY1305_SHA256. TLS 1.2 connections, other suites and a
 * connection that saw a KeyUpdate before the handoff stay on OpenSSL.
 * After the handoff: application data both ways, KeyUpdate from the client
 * (answered when it asks), our own KeyUpdate before the write sequence gets
 * near the AEAD limits, close_notify both ways; anything else the client
 * sends is a protocol error and closes the connection after the fatal alert
 * that says why. A client's records cost corral a decryption each: those
 * without data are budgeted per read and KeyUpdates per second (below).
 *
 * Buffers (one record in, one out) exist only while bytes are in them. */
#ifndef CR_TLSREC_H
#define CR_TLSREC_H

#include <event2/buffer.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

struct cr_tlsrec;

/* Installs the record counter and secret capture on a server context.
 * Every context an SSL may switch to (SNI) needs it. Returns 0 or
 * CR_ENOMEM. */
int cr_tlsrec_ctx_setup(SSL_CTX *ctx);

/* Starts following ssl's handshake: call after SSL_new, before the first
 * byte. Returns 0 and *out (owned by the caller, cr_tlsrec_free) or
 * CR_ENOMEM. The record must outlive ssl or ssl must be freed first. */
int cr_tlsrec_watch(SSL *ssl, struct cr_tlsrec **out);

/* Takes the connection's records over from ssl after its handshake.
 * Precondition: the last SSL_write finished (nothing half-sent inside
 * OpenSSL). Returns
 *   0           taken: the caller frees ssl and uses r from now on;
 *   CR_EAGAIN   not yet (OpenSSL still holds unread bytes): try later;
 *   CR_EINVAL   never (TLS 1.2, another suite, a KeyUpdate seen): the
 *               caller frees r and keeps ssl. */
int cr_tlsrec_takeover(struct cr_tlsrec *r, SSL *ssl);

/* Records without application data (empty records, user_canceled alerts,
 * KeyUpdates and their pieces) that cr_tlsrec_read opens before it yields:
 * each costs a decryption and none counts against a budget in bytes. */
#define CR_TLSREC_MAX_EMPTY 32

/* KeyUpdates a client may send in one second; one more is refused with an
 * unexpected_message alert ("too many KeyUpdates"). Clients update their
 * keys after many records, not many times a second. */
#define CR_TLSREC_MAX_KEY_UPDATES 10

/* A record layer as right after a takeover, keyed from known traffic
 * secrets instead of a handshake: suite is the TLS 1.3 cipher suite id
 * (0x1301, 0x1302 or 0x1303), each secret is that suite's hash length
 * (32, 48 or 32 bytes), both sequence numbers start at 0. For the unit
 * tests and the fuzz target of the record reader (tests/fuzz/fuzz_tlsrec.c),
 * which must make records the reader accepts without a handshake per
 * input. Returns 0 and *out (cr_tlsrec_free), CR_EINVAL (another suite or
 * length), CR_ENOMEM or CR_ETLS. */
int cr_tlsrec_new_keyed(uint16_t suite, const uint8_t *client_secret, const uint8_t *server_secret,
                        size_t secret_len, struct cr_tlsrec **out);

/* Like cr_tls_read (tls.h) on the socket fd: at most len plaintext bytes of
 * one record into buf; *n is 0 unless CR_TLS_OK.
 *   CR_TLS_OK         *n bytes;
 *   CR_TLS_WANT_READ  nothing yet. When cr_tlsrec_pending is then true the
 *                     call yielded after CR_TLSREC_MAX_EMPTY records without
 *                     data: call again on the next turn of the loop without
 *                     waiting for the socket (no new bytes may come);
 *   CR_TLS_CLOSED     close_notify, EOF or a reset;
 *   CR_TLS_ERROR      a bad record or a limit crossed (cr_tlsrec_error says
 *                     which); the fatal alert that goes with it was sent, best
 *                     effort, before the call returned.
 * Handshake messages may span records (RFC 8446 5.1): a KeyUpdate split in
 * pieces is reassembled. */
enum cr_tls_io cr_tlsrec_read(struct cr_tlsrec *r, int fd, void *buf, size_t len, size_t *n);

/* Plaintext or a whole record waits in r (the socket will not say so). */
bool cr_tlsrec_pending(const struct cr_tlsrec *r);

/* Any byte from the peer waits in r: plaintext, or a record, whole or
 * begun (its rest still to come). */
bool cr_tlsrec_buffered(const struct cr_tlsrec *r);

/* Like cr_tls_write_out: writes out as records until it is empty (and
 * whatever r itself must send, such as a KeyUpdate answer) or the socket
 * pushes back. Written bytes leave out. */
enum cr_tls_io cr_tlsrec_write_out(struct cr_tlsrec *r, int fd, struct evbuffer *out);

/* r has encrypted bytes of its own still to send (call write_out). */
bool cr_tlsrec_want_write(const struct cr_tlsrec *r);

/* Sends close_notify, best effort, never waiting. */
void cr_tlsrec_close_notify(struct cr_tlsrec *r, int fd);

/* Why the last CR_TLS_ERROR happened, for a log line. */
const char *cr_tlsrec_error(const struct cr_tlsrec *r);

/* NULL-safe. */
void cr_tlsrec_free(struct cr_tlsrec *r);

#endif
