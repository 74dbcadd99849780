/* ocsp.c - OCSP staples. */
#include "ocsp.h"

#include <openssl/ocsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "log.h"

struct cr_ocsp {
    X509 *cert;            /* reference held */
    unsigned char *der;
    int len;
    time_t next_update;    /* 0 when the response has none */
    time_t last_warn;
    char path[256];
};

static int staple_index = -1;

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

/* Finds the single response about cert; returns its status or -1. */
static int find_status(OCSP_BASICRESP *basic, X509 *cert, X509 *issuer,
                       ASN1_GENERALIZEDTIME **next)
{
    ASN1_GENERALIZEDTIME *thisupd = NULL, *rev = NULL;
    int status = -1, reason = 0;
    if (issuer) {
        OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, issuer);
        if (id && OCSP_resp_find_status(basic, id, &status, &reason, &rev, &thisupd, next) != 1)
            status = -1;
        OCSP_CERTID_free(id);
        return status;
    }
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    for (int i = 0; i < OCSP_resp_count(basic); i++) {
        OCSP_SINGLERESP *s = OCSP_resp_get0(basic, i);
        ASN1_INTEGER *sn = NULL;
        OCSP_id_get0_info(NULL, NULL, NULL, &sn, (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(s));
        if (sn && ASN1_INTEGER_cmp(sn, serial) == 0)
            return OCSP_single_get0_status(s, &reason, &rev, &thisupd, next);
    }
    return -1;
}

int cr_ocsp_load(const char *path, X509 *cert, X509 *issuer, const char *where,
                 struct cr_ocsp **out, struct cr_diag *diag)
{
    struct cr_ocsp *o = calloc(1, sizeof(*o));
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *basic = NULL;
    ASN1_GENERALIZEDTIME *next = NULL;
    FILE *f = fopen(path, "rb");
    if (!o || !f) {
        cr_diag_add(diag, true, "%s: error: cannot read OCSP response %s", where, path);
        goto fail;
    }
    unsigned char buf[65536];
    size_t len = fread(buf, 1, sizeof(buf), f);
    const unsigned char *p = buf;
    resp = len ? d2i_OCSP_RESPONSE(NULL, &p, (long)len) : NULL;
    if (!resp) {
        cr_diag_add(diag, true, "%s: error: %s is not a DER OCSP response", where, path);
        goto fail;
    }
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
        !(basic = OCSP_response_get1_basic(resp))) {
        cr_diag_add(diag, true, "%s: error: OCSP response %s is not successful", where, path);
        goto fail;
    }
    int status = find_status(basic, cert, issuer, &next);
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        cr_diag_add(diag, true, "%s: error: OCSP response %s %s", where, path,
                    status < 0 ? "is not about this certificate"
                               : "does not say the certificate is good");
        goto fail;
    }
    o->next_update = asn1_time(next);
    if (o->next_update && o->next_update < time(NULL))
        cr_diag_add(diag, false, "%s: warning: OCSP response %s is stale (nextUpdate passed); "
                    "it will not be stapled", where, path);
    o->len = i2d_OCSP_RESPONSE(resp, &o->der);
    if (o->len <= 0)
        goto fail;
    X509_up_ref(cert);
    o->cert = cert;
    snprintf(o->path, sizeof(o->path), "%s", path);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    fclose(f);
    *out = o;
    return 0;
fail:
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    if (f)
        fclose(f);
    free(o);
    return CR_EINVAL;
}

void cr_ocsp_free(struct cr_ocsp *o)
{
    if (!o)
        return;
    X509_free(o->cert);
    OPENSSL_free(o->der);
    free(o);
}

static int status_cb(SSL *ssl, void *arg)
{
    const struct cr_ocsp_set *st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), staple_index);
    X509 *cert = SSL_get_certificate(ssl);
    for (size_t i = 0; st && cert && i < st->n; i++) {
        struct cr_ocsp *o = st->list[i];
        if (X509_cmp(o->cert, cert) != 0)
            continue;
        time_t now = time(NULL);
        if (o->next_update && now >= o->next_update) {
            if (now - o->last_warn >= 60) {
                o->last_warn = now;
                cr_log_warn("OCSP response %s is stale: not stapled; refresh it and reload",
                            o->path);
            }
            return SSL_TLSEXT_ERR_NOACK;
        }
        unsigned char *copy = OPENSSL_memdup(o->der, (size_t)o->len);
        if (!copy || SSL_set_tlsext_status_ocsp_resp(ssl, copy, o->len) != 1) {
            OPENSSL_free(copy);
            return SSL_TLSEXT_ERR_NOACK;
        }
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int cr_ocsp_attach(SSL_CTX *ctx, const struct cr_ocsp_set *set)
{
    if (staple_index < 0)
        staple_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (staple_index < 0 || !SSL_CTX_set_ex_data(ctx, staple_index, (void *)set))
        return CR_ETLS;
    SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    return 0;
}
