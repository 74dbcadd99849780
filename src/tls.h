/* tls.h - OpenSSL contexts: the server side toward clients (RSA-4096
 * certificates, ALPN, tickets) and the client side toward the upstream
 * (CA verification, client certificate, SNI, session resumption).
 *
 * Contexts are built by the master before it forks, so a reload with bad TLS
 * material fails without touching the running workers, and every worker of a
 * generation shares the same ticket keys. They are reference-counted
 * OpenSSL objects: the caller owns the returned reference. */
#ifndef CR_TLS_H
#define CR_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "config.h"

/* The server context of one listener. Returns NULL with a message in err. */
SSL_CTX *cr_tls_server_new(const struct cr_cfg_listener *l, char *err, size_t errlen);

/* The client context for the upstream pool. Returns NULL with err set. */
SSL_CTX *cr_tls_client_new(const struct cr_cfg_upstream *u, char *err, size_t errlen);

/* The ALPN protocol a finished server handshake agreed on. */
enum cr_alpn cr_tls_alpn(const SSL *ssl);

/* Formats OpenSSL's error queue (and clears it) into buf; returns buf. */
const char *cr_tls_errors(char *buf, size_t len);

#endif
