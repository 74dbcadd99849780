/* ocsp.h - OCSP stapling from a DER response file per certificate.
 *
 * The master reads each configured response when it builds a listener's
 * contexts (at start and on every SIGHUP, so a refreshed file is picked up
 * by reloading), checks that it is a successful response saying "good"
 * for that certificate, and remembers its nextUpdate. A worker staples it
 * only while it is fresh; a stale response is not stapled and is logged
 * (at most once a minute per certificate). */
#ifndef CR_OCSP_H
#define CR_OCSP_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <time.h>

#include "config.h"

struct cr_ocsp;

/* Reads the response in path for cert (issuer may be NULL when the chain
 * file does not hold it: the response is then matched by serial only).
 * Returns 0 and *out, or CR_EINVAL with an error in diag (prefix `where`).
 * A stale response loads with a warning (it will not be stapled). */
int cr_ocsp_load(const char *path, X509 *cert, X509 *issuer, const char *where,
                 struct cr_ocsp **out, struct cr_diag *diag);
void cr_ocsp_free(struct cr_ocsp *o);

/* The responses of one listener, owned by its TLS server object. */
struct cr_ocsp_set {
    struct cr_ocsp **list;
    size_t n;
};

/* Installs the status callback on ctx; responses are looked up by the
 * certificate the handshake selected. set must outlive ctx. Returns 0 or
 * CR_ETLS. */
int cr_ocsp_attach(SSL_CTX *ctx, const struct cr_ocsp_set *set);

#endif
