/* tls.c - OpenSSL contexts: certificates, SNI, ALPN, checks. */
#include "tls.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common.h"
#include "ocsp.h"
#include "tlsrec.h"

/* AEAD suites with forward secrecy only, ECDSA first when the client can. */
#define CR_TLS12_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define CR_TLS_GROUPS "X25519:P-256"
#define EXPIRY_WARN_DAYS 30

struct sni_name {
    char *name;    /* lower case; "*.example.com" for wildcards */
    size_t ctx;
};

struct cr_tls_server {
    SSL_CTX **ctxs;            /* ctxs[0] is the default */
    size_t nctx;
    struct sni_name *names;    /* sorted for bsearch */
    size_t nnames;
    struct cr_ocsp_set ocsp;
    const struct cr_cfg_tls_server *cfg;
};

/* One certificate entry of the config, loaded. */
struct cert {
    X509 *leaf;
    STACK_OF(X509) *chain;     /* intermediates (and maybe the root) */
    EVP_PKEY *key;
    char **names;
    size_t nnames;
    char *group;               /* the sorted names joined: same group, same context */
    size_t ctx;
};

static int sni_index = -1;     /* SSL ex_data: the client named an unknown host */
static int server_index = -1;  /* SSL_CTX ex_data: the struct cr_tls_server */

const char *cr_tls_errors(char *buf, size_t len)
{
    size_t n = 0;
    unsigned long e;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        if (n + 4 < len) {
            if (n)
                n += (size_t)snprintf(buf + n, len - n, "; ");
            ERR_error_string_n(e, buf + n, len - n);
            n = strlen(buf);
        }
    }
    if (!n)
        snprintf(buf, len, "unknown TLS error");
    return buf;
}

/* ------------------------------------------------------------ I/O */

static enum cr_tls_io io_error(SSL *ssl, int rc)
{
    int err = SSL_get_error(ssl, rc);
    ERR_clear_error();
    switch (err) {
    case SSL_ERROR_WANT_READ:
        return CR_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return CR_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
    case SSL_ERROR_SYSCALL:
        return CR_TLS_CLOSED;
    default:
        return CR_TLS_ERROR;
    }
}

/* SSL_get_error() reads the thread's error queue, which must be empty
 * before each call; OpenSSL may leave entries behind even on success. */
enum cr_tls_io cr_tls_read(SSL *ssl, void *buf, size_t len, size_t *n)
{
    if (ERR_peek_error())
        ERR_clear_error();
    int rc = SSL_read(ssl, buf, (int)CR_MIN(len, (size_t)INT_MAX));
    if (rc > 0) {
        *n = (size_t)rc;
        return CR_TLS_OK;
    }
    return io_error(ssl, rc);
}

enum cr_tls_io cr_tls_write_out(SSL *ssl, struct evbuffer *out)
{
    size_t len;
    while ((len = evbuffer_get_length(out)) > 0) {
        /* one record at a time, whole: the pullup is cheap next to the cipher */
        size_t chunk = CR_MIN(len, (size_t)16384);
        unsigned char *p = evbuffer_pullup(out, (ssize_t)chunk);
        if (ERR_peek_error())
            ERR_clear_error();
        int n = SSL_write(ssl, p, (int)chunk);
        if (n <= 0)
            return io_error(ssl, n);
        evbuffer_drain(out, (size_t)n);
    }
    return CR_TLS_OK;
}

/* ------------------------------------------------------------ callbacks */

/* ALPN: the first protocol of ours (in the configured order) that the client
 * offers. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct cr_cfg_tls_server *t = arg;
    for (size_t i = 0; i < t->nalpn; i++) {
        const char *want = t->alpn[i] == CR_ALPN_H2 ? "h2" : "http/1.1";
        size_t wl = strlen(want);
        for (unsigned int p = 0; p < inlen;) {
            unsigned int l = in[p];
            if (p + 1 + l > inlen)
                break;
            if (l == wl && memcmp(in + p + 1, want, wl) == 0) {
                *out = in + p + 1;
                *outlen = (unsigned char)l;
                return SSL_TLSEXT_ERR_OK;
            }
            p += 1 + l;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

enum cr_alpn cr_tls_alpn(const SSL *ssl)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0 ? CR_ALPN_H2 : CR_ALPN_HTTP11;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sni_name *)a)->name, ((const struct sni_name *)b)->name);
}

static const struct sni_name *lookup(const struct cr_tls_server *s, const char *name)
{
    struct sni_name key = {.name = (char *)name};
    return s->nnames ? bsearch(&key, s->names, s->nnames, sizeof(key), name_cmp) : NULL;
}

/* SNI: the context whose certificates name the host; exact names first,
 * then a wildcard for the parent domain. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    const struct cr_tls_server *s = arg;
    const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char lower[256], wild[258];
    if (!sn || !*sn)
        return SSL_TLSEXT_ERR_OK;
    size_t len = strlen(sn);
    if (len >= sizeof(lower))
        len = sizeof(lower) - 1;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)sn[i]);
    lower[len] = '\0';
    const struct sni_name *hit = lookup(s, lower);
    const char *dot = strchr(lower, '.');
    if (!hit && dot && dot[1]) {
        snprintf(wild, sizeof(wild), "*%s", dot);
        hit = lookup(s, wild);
    }
    if (!hit) {
        SSL_set_ex_data(ssl, sni_index, (void *)1);
        return SSL_TLSEXT_ERR_OK; /* the default certificate answers */
    }
    if (s->ctxs[hit->ctx] != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, s->ctxs[hit->ctx]);
    return SSL_TLSEXT_ERR_OK;
}

bool cr_tls_sni_unknown(const SSL *ssl)
{
    return sni_index >= 0 && SSL_get_ex_data(ssl, sni_index) != NULL;
}

/* ------------------------------------------------------------ loading */

static void cert_free(struct cert *c)
{
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
    free(c->group);
    memset(c, 0, sizeof(*c));
}

static int add_name(struct cert *c, const char *n, size_t len)
{
    char **v = realloc(c->names, (c->nnames + 1) * sizeof(char *));
    if (!v)
        return CR_ENOMEM;
    c->names = v;
    char *s = strndup(n, len);
    if (!s)
        return CR_ENOMEM;
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c->names[c->nnames++] = s;
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The DNS names of the SAN extension, or the CN when there are none. */
static int read_names(struct cert *c)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS && add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                                           (size_t)ASN1_STRING_length(g->d.dNSName)) < 0) {
            GENERAL_NAMES_free(sans);
            return CR_ENOMEM;
        }
    }
    GENERAL_NAMES_free(sans);
    if (c->nnames == 0) {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(c->leaf), NID_commonName, cn,
                                      sizeof(cn)) > 0 &&
            add_name(c, cn, strlen(cn)) < 0)
            return CR_ENOMEM;
    }
    if (c->nnames > 1)
        qsort(c->names, c->nnames, sizeof(char *), str_cmp);
    size_t len = 1;
    for (size_t i = 0; i < c->nnames; i++)
        len += strlen(c->names[i]) + 1;
    c->group = calloc(1, len);
    if (!c->group)
        return CR_ENOMEM;
    for (size_t i = 0; i < c->nnames; i++) {
        strcat(c->group, c->names[i]);
        strcat(c->group, " ");
    }
    return 0;
}

/* Warnings an operator should see at check time: expiry, a chain that does
 * not lead to a trusted root, a private key others can read. */
static void check_cert(const struct cr_config *cfg, const struct cr_cfg_cert *cc, struct cert *c,
                       struct cr_diag *d)
{
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(c->leaf)) == 1) {
        if (days < 0 || (days == 0 && secs < 0))
            cr_diag_add(d, false, "%s: warning: certificate %s has EXPIRED", cfg->path, cc->cert);
        else if (days < EXPIRY_WARN_DAYS)
            cr_diag_add(d, false, "%s: warning: certificate %s expires in %d day(s)", cfg->path,
                        cc->cert, days);
    }
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    if (store && vctx) {
        X509_STORE_set_default_paths(store);
        for (int i = 0; i < sk_X509_num(c->chain); i++) {
            X509 *x = sk_X509_value(c->chain, i);
            if (X509_check_issued(x, x) == X509_V_OK)
                X509_STORE_add_cert(store, x); /* a root shipped in the file */
        }
        if (X509_STORE_CTX_init(vctx, store, c->leaf, c->chain) == 1 &&
            X509_verify_cert(vctx) != 1) {
            int e = X509_STORE_CTX_get_error(vctx);
            if (e != X509_V_ERR_CERT_HAS_EXPIRED)
                cr_diag_add(d, false,
                            "%s: warning: certificate %s: the chain does not lead to a trusted "
                            "root (%s): is an intermediate missing from the file, or is it a "
                            "private CA?",
                            cfg->path, cc->cert, X509_verify_cert_error_string(e));
        }
    }
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    struct stat st;
    if (stat(cc->key, &st) == 0 && (st.st_mode & S_IROTH))
        cr_diag_add(d, false, "%s: warning: private key %s is readable by every user (chmod 600 it)",
                    cfg->path, cc->key);
    ERR_clear_error();
}

static int load_cert(const struct cr_config *cfg, const struct cr_cfg_cert *cc, struct cert *c,
                     struct cr_diag *d)
{
    char ossl[256];
    FILE *f = fopen(cc->cert, "r");
    if (!f) {
        cr_diag_add(d, true, "%s: error: cannot read certificate %s", cfg->path, cc->cert);
        return CR_EINVAL;
    }
    c->leaf = PEM_read_X509(f, NULL, NULL, NULL);
    c->chain = sk_X509_new_null();
    X509 *x;
    while (c->leaf && c->chain && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
        sk_X509_push(c->chain, x);
    fclose(f);
    ERR_clear_error(); /* the end of the file reads as an error */
    if (!c->leaf) {
        cr_diag_add(d, true, "%s: error: %s holds no PEM certificate", cfg->path, cc->cert);
        return CR_EINVAL;
    }
    f = fopen(cc->key, "r");
    if (!f) {
        cr_diag_add(d, true, "%s: error: cannot read private key %s", cfg->path, cc->key);
        return CR_EINVAL;
    }
    c->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!c->key) {
        cr_diag_add(d, true, "%s: error: %s: not a PEM private key (%s)", cfg->path, cc->key,
                    cr_tls_errors(ossl, sizeof(ossl)));
        return CR_EINVAL;
    }
    if (X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        cr_diag_add(d, true, "%s: error: private key %s does not match certificate %s",
                    cfg->path, cc->key, cc->cert);
        return CR_EINVAL;
    }
    int type = EVP_PKEY_get_base_id(c->key);
    if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
        cr_diag_add(d, true, "%s: error: %s: only RSA and ECDSA keys are supported", cfg->path,
                    cc->key);
        return CR_EINVAL;
    }
    if (read_names(c) < 0)
        return CR_ENOMEM;
    check_cert(cfg, cc, c, d);
    return 0;
}

/* ------------------------------------------------------------ contexts */

static SSL_CTX *ctx_common(const SSL_METHOD *method, int min_version)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, min_version ? min_version : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    /* Buffers are released while a connection is idle; writes may be partial
     * and retried from a moved buffer, since ours is an evbuffer; chains are
     * sent as configured, never rebuilt from a store during a handshake. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_NO_AUTO_CHAIN);
    /* one read(2) per wake-up instead of one per record header and body */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (!SSL_CTX_set1_groups_list(ctx, CR_TLS_GROUPS)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static SSL_CTX *server_ctx(const struct cr_config *cfg, struct cr_tls_server *s,
                           struct cr_ticket_ring *ring, struct cr_diag *d)
{
    const struct cr_cfg_tls_server *t = s->cfg;
    char ossl[256];
    SSL_CTX *ctx = ctx_common(TLS_server_method(), t->min_version);
    if (!ctx)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!SSL_CTX_set_cipher_list(ctx, t->ciphers ? t->ciphers : CR_TLS12_CIPHERS) ||
        (t->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, t->ciphersuites)))
        goto fail;
    /* Stateless resumption only: tickets whose keys every worker shares, no
     * server-side cache, so a client resumes on whichever worker accepts it.
     * A ticket lives as long as its key stays in the ring. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, t->tickets);
    if (t->tickets == 0)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); /* no resumption at all, TLS 1.2 too */
    long life = (long)(t->ticket_rotate_ms / 1000) * (CR_TICKET_RING - 1);
    if (t->ticket_key_file)
        life = 7200;
    if (cr_ticket_attach(ctx, ring, CR_MAX(CR_MIN(life, 604800L), 1L)) < 0)
        goto fail;
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)t);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, s);
    if (s->ocsp.n && cr_ocsp_attach(ctx, &s->ocsp) < 0)
        goto fail;
    if (t->handoff && cr_tlsrec_ctx_setup(ctx) < 0)
        goto fail;
    return ctx;
fail:
    cr_diag_add(d, true, "%s: error: TLS setup: %s", cfg->path, cr_tls_errors(ossl, sizeof(ossl)));
    SSL_CTX_free(ctx);
    return NULL;
}

static int use_cert(SSL_CTX *ctx, struct cert *c)
{
    if (SSL_CTX_use_certificate(ctx, c->leaf) != 1)
        return CR_ETLS;
    for (int i = 0; i < sk_X509_num(c->chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->chain, i)) != 1)
            return CR_ETLS;
    return SSL_CTX_use_PrivateKey(ctx, c->key) == 1 ? 0 : CR_ETLS;
}

/* Groups certificates naming the same hosts into one context each. */
static int group_certs(const struct cr_config *cfg, const struct cr_cfg_tls_server *t,
                       struct cert *certs, struct cr_diag *d, size_t *nctx)
{
    size_t n = 0;
    for (size_t i = 0; i < t->ncerts; i++) {
        size_t g = n;
        for (size_t j = 0; j < i && g == n; j++)
            if (strcmp(certs[j].group, certs[i].group) == 0)
                g = certs[j].ctx;
        for (size_t j = 0; j < i; j++) {
            if (certs[j].ctx == g && EVP_PKEY_get_base_id(certs[j].key) ==
                                         EVP_PKEY_get_base_id(certs[i].key)) {
                cr_diag_add(d, true, "%s: error: certificates %s and %s name the same hosts with "
                            "the same key type; give one RSA and one ECDSA chain at most",
                            cfg->path, t->certs[j].cert, t->certs[i].cert);
                return CR_EINVAL;
            }
        }
        certs[i].ctx = g;
        if (g == n)
            n++;
    }
    *nctx = n;
    return 0;
}

static int build_names(const struct cr_config *cfg, struct cr_tls_server *s, struct cert *certs,
                       size_t ncerts, struct cr_diag *d)
{
    size_t total = 0;
    for (size_t i = 0; i < ncerts; i++)
        total += certs[i].nnames;
    s->names = calloc(total ? total : 1, sizeof(*s->names));
    if (!s->names)
        return CR_ENOMEM;
    for (size_t i = 0; i < ncerts; i++) {
        for (size_t k = 0; k < certs[i].nnames; k++) {
            const struct sni_name *dup = NULL;
            for (size_t j = 0; j < s->nnames && !dup; j++)
                if (strcmp(s->names[j].name, certs[i].names[k]) == 0)
                    dup = &s->names[j];
            if (dup) {
                if (dup->ctx != certs[i].ctx)
                    cr_diag_add(d, false, "%s: warning: %s is named by two certificates; the "
                                "first one listed answers for it", cfg->path, certs[i].names[k]);
                continue;
            }
            s->names[s->nnames].name = strdup(certs[i].names[k]);
            s->names[s->nnames++].ctx = certs[i].ctx;
        }
    }
    qsort(s->names, s->nnames, sizeof(*s->names), name_cmp);
    return 0;
}

static int load_staples(const struct cr_config *cfg, const struct cr_cfg_tls_server *t,
                        struct cr_tls_server *s, struct cert *certs, struct cr_diag *d)
{
    s->ocsp.list = calloc(t->ncerts, sizeof(*s->ocsp.list));
    if (!s->ocsp.list)
        return CR_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < t->ncerts; i++) {
        if (!t->certs[i].ocsp)
            continue;
        X509 *issuer = sk_X509_num(certs[i].chain) ? sk_X509_value(certs[i].chain, 0) : NULL;
        if (cr_ocsp_load(t->certs[i].ocsp, certs[i].leaf, issuer, cfg->path,
                         &s->ocsp.list[s->ocsp.n], d) < 0)
            rc = CR_EINVAL;
        else
            s->ocsp.n++;
    }
    return rc;
}

int cr_tls_server_new(const struct cr_config *cfg, const struct cr_cfg_listener *l,
                      struct cr_ticket_ring *ring, struct cr_tls_server **out,
                      struct cr_diag *diag)
{
    const struct cr_cfg_tls_server *t = &l->tls;
    struct cert *certs = calloc(t->ncerts, sizeof(*certs));
    struct cr_tls_server *s = calloc(1, sizeof(*s));
    size_t errors = diag->nerrors, nctx = 0;
    int rc = CR_ECONFIG;
    if (sni_index < 0)
        sni_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (server_index < 0)
        server_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (!certs || !s)
        goto out;
    s->cfg = t;
    for (size_t i = 0; i < t->ncerts; i++)
        (void)load_cert(cfg, &t->certs[i], &certs[i], diag);
    if (diag->nerrors > errors || group_certs(cfg, t, certs, diag, &nctx) < 0 ||
        build_names(cfg, s, certs, t->ncerts, diag) < 0 ||
        load_staples(cfg, t, s, certs, diag) < 0)
        goto out;
    s->ctxs = calloc(nctx, sizeof(SSL_CTX *));
    if (!s->ctxs)
        goto out;
    for (size_t g = 0; g < nctx; g++) {
        if (!(s->ctxs[g] = server_ctx(cfg, s, ring, diag)))
            goto out;
        s->nctx++;
        SSL_CTX_set_ex_data(s->ctxs[g], server_index, s);
    }
    for (size_t i = 0; i < t->ncerts; i++) {
        if (use_cert(s->ctxs[certs[i].ctx], &certs[i]) < 0) {
            char ossl[256];
            cr_diag_add(diag, true, "%s: error: certificate %s: %s", cfg->path, t->certs[i].cert,
                        cr_tls_errors(ossl, sizeof(ossl)));
            goto out;
        }
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    for (size_t i = 0; certs && i < t->ncerts; i++)
        cert_free(&certs[i]);
    free(certs);
    cr_tls_server_free(s);
    return rc;
}

void cr_tls_server_free(struct cr_tls_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nctx; i++)
        SSL_CTX_free(s->ctxs[i]);
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i].name);
    for (size_t i = 0; i < s->ocsp.n; i++)
        cr_ocsp_free(s->ocsp.list[i]);
    free(s->ocsp.list);
    free(s->names);
    free(s->ctxs);
    free(s);
}

SSL_CTX *cr_tls_server_ctx(const struct cr_tls_server *s)
{
    return s->ctxs[0];
}

/* ------------------------------------------------------------ client side */

void cr_tls_sessions_clear(struct cr_tls_sessions *ss)
{
    for (uint32_t i = 0; i < ss->n; i++)
        SSL_SESSION_free(ss->s[i]);
    ss->n = 0;
}

void cr_tls_sessions_init(struct cr_tls_sessions *ss, uint32_t cap)
{
    cr_tls_sessions_clear(ss);
    ss->cap = cap < CR_TLS_SESSIONS_MAX ? cap : CR_TLS_SESSIONS_MAX;
}

SSL_SESSION *cr_tls_sessions_peek(const struct cr_tls_sessions *ss)
{
    return ss->n ? ss->s[ss->n - 1] : NULL;
}

SSL_SESSION *cr_tls_sessions_take(struct cr_tls_sessions *ss)
{
    return ss->n ? ss->s[--ss->n] : NULL;
}

/* A session the upstream gave a connection goes to the connection's set
 * (SSL_set_app_data), for its reconnect or the tunnel connections to come.
 * A copy: sess is also the connection's current session, and OpenSSL
 * marks that one not resumable when the connection ends without a
 * close_notify (SSL_free's ssl_clear_bad_session), as a tunnel's often
 * does; the copy keeps the ticket usable. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct cr_tls_sessions *ss = SSL_get_app_data(ssl);
    if (!ss || ss->cap == 0)
        return 0;
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (!copy)
        return 0;
    if (ss->n == ss->cap) {
        SSL_SESSION_free(ss->s[0]);
        memmove(ss->s, ss->s + 1, (ss->n - 1) * sizeof(ss->s[0]));
        ss->n--;
    }
    ss->s[ss->n++] = copy;
    return 0; /* sess stays OpenSSL's */
}

int cr_tls_client_new(const struct cr_config *cfg, SSL_CTX **out, struct cr_diag *d)
{
    const struct cr_cfg_upstream *u = &cfg->upstream;
    char ossl[256];
    SSL_CTX *ctx = ctx_common(TLS_client_method(), TLS1_2_VERSION);
    if (!ctx)
        goto fail;
    if (u->tls.insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_load_verify_locations(ctx, u->tls.ca, NULL) != 1) {
            cr_diag_add(d, true, "%s: error: upstream CA file %s: %s", cfg->path, u->tls.ca,
                        cr_tls_errors(ossl, sizeof(ossl)));
            goto fail_ctx;
        }
    }
    if (u->tls.cert && (SSL_CTX_use_certificate_chain_file(ctx, u->tls.cert) != 1 ||
                        SSL_CTX_use_PrivateKey_file(ctx, u->tls.key, SSL_FILETYPE_PEM) != 1 ||
                        SSL_CTX_check_private_key(ctx) != 1)) {
        cr_diag_add(d, true, "%s: error: upstream client certificate %s / key %s: %s", cfg->path,
                    u->tls.cert, u->tls.key, cr_tls_errors(ossl, sizeof(ossl)));
        goto fail_ctx;
    }
    static const unsigned char h2[] = "\x02h2";
    static const unsigned char h11[] = "\x08http/1.1";
    if (u->protocol == CR_PROTO_H2)
        SSL_CTX_set_alpn_protos(ctx, h2, sizeof(h2) - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, h11, sizeof(h11) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
    *out = ctx;
    return 0;
fail:
    cr_diag_add(d, true, "%s: error: TLS setup: %s", cfg->path, cr_tls_errors(ossl, sizeof(ossl)));
fail_ctx:
    SSL_CTX_free(ctx);
    return CR_ECONFIG;
}
