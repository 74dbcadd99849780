/* tls.h - OpenSSL contexts: the server side toward clients and the client
 * side toward the upstream.
 *
 * Server side, per listener (struct cr_tls_server): one SSL_CTX per group
 * of certificates naming the same hosts (an RSA-4096 chain and, beside it,
 * an optional ECDSA P-256 chain: OpenSSL serves ECDSA to clients that offer
 * it and RSA to the rest), chosen by SNI among the certificates' SAN names
 * (exact, then "*." wildcard); the first certificate is the default for
 * clients without SNI or with an unknown name. ALPN h2/http/1.1 in the
 * configured order, TLS 1.2/1.3 AEAD suites with forward secrecy, X25519
 * and P-256, stateless tickets with keys shared by every worker (ticket.h),
 * OCSP staples (ocsp.h).
 *
 * Contexts are built by the master before it forks, so a reload with bad
 * TLS material fails without touching the running workers. Building checks
 * what an operator gets wrong: unreadable files, a key that does not match
 * its certificate, an incomplete chain, expiry, a world-readable key. */
#ifndef CR_TLS_H
#define CR_TLS_H

#include <event2/buffer.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ticket.h"

struct cr_tls_server;

/* Builds listener l's contexts; tickets use ring. Problems go to diag as
 * "FILE: error: ..." / "FILE: warning: ..." (FILE = the config file).
 * Returns 0 and *out, or CR_ECONFIG when there was an error. */
int cr_tls_server_new(const struct cr_config *cfg, const struct cr_cfg_listener *l,
                      struct cr_ticket_ring *ring, struct cr_tls_server **out,
                      struct cr_diag *diag);
void cr_tls_server_free(struct cr_tls_server *s);

/* The default context, for SSL_new on an accepted connection. */
SSL_CTX *cr_tls_server_ctx(const struct cr_tls_server *s);

/* Did the client name a host none of our certificates has? */
bool cr_tls_sni_unknown(const SSL *ssl);

/* The client context for the upstream pool; same diag contract. Every SSL
 * made from it must have SSL_set_app_data(ssl, sessions) with a struct
 * cr_tls_sessions (or NULL): the sessions the upstream gives the connection
 * (TLS 1.3 tickets arrive after the handshake, two or so each) go there. */
int cr_tls_client_new(const struct cr_config *cfg, SSL_CTX **out, struct cr_diag *diag);

/* Upstream sessions kept for the connections to come: the newest `cap` (at
 * most CR_TLS_SESSIONS_MAX), the oldest dropped when a new one arrives.
 * An upstream connection keeps its own (cap 1) for its reconnect; the
 * pool's tunnel connections share one per address, and each new tunnel
 * connection takes one out, so that a TLS 1.3 ticket is used once (RFC
 * 8446 C.4). Zeroed memory is an empty set of cap 0 (keeps nothing). */
#define CR_TLS_SESSIONS_MAX 32
struct cr_tls_sessions {
    SSL_SESSION *s[CR_TLS_SESSIONS_MAX]; /* s[0] oldest .. s[n-1] newest */
    uint32_t n, cap;
};

/* Empties ss (frees what it holds) and sets its capacity (clamped to
 * CR_TLS_SESSIONS_MAX). */
void cr_tls_sessions_init(struct cr_tls_sessions *ss, uint32_t cap);

/* The newest session, left in ss (a reconnect retries the same one), or
 * NULL. Not the caller's: SSL_set_session takes its own reference. */
SSL_SESSION *cr_tls_sessions_peek(const struct cr_tls_sessions *ss);

/* Takes the newest session out of ss, or NULL: the caller owns it
 * (SSL_SESSION_free). */
SSL_SESSION *cr_tls_sessions_take(struct cr_tls_sessions *ss);

/* Frees what ss holds; it stays usable, empty. */
void cr_tls_sessions_clear(struct cr_tls_sessions *ss);

/* The ALPN protocol a finished server handshake agreed on (HTTP/1.1 when
 * the client offered none). */
enum cr_alpn cr_tls_alpn(const SSL *ssl);

/* Outcome of a non-blocking TLS read or write. */
enum cr_tls_io {
    CR_TLS_OK = 0,       /* bytes moved (read) or everything written (write) */
    CR_TLS_WANT_READ,    /* wait until the socket is readable */
    CR_TLS_WANT_WRITE,   /* wait until the socket is writable */
    CR_TLS_CLOSED,       /* the peer closed (close_notify or EOF) */
    CR_TLS_ERROR,        /* a TLS or socket error; the error queue is cleared */
};

/* One SSL_read into buf; *n is the byte count on CR_TLS_OK. Contexts read
 * ahead: after a read, SSL_has_pending() says whether OpenSSL holds more
 * (the socket's readiness does not). */
enum cr_tls_io cr_tls_read(SSL *ssl, void *buf, size_t len, size_t *n);

/* Writes out through ssl, at most one 16 KB record per SSL_write, until out
 * is empty (CR_TLS_OK) or the socket pushes back. Written bytes leave out. */
enum cr_tls_io cr_tls_write_out(SSL *ssl, struct evbuffer *out);

/* Formats OpenSSL's error queue (and clears it) into buf; returns buf. */
const char *cr_tls_errors(char *buf, size_t len);

#endif
