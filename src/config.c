/* config.c - corral's configuration schema: one typed table per mapping of
 * the YAML, the hooks that check the rules spanning several keys, and the
 * public loading API. The walker that applies the tables, and the positioned
 * diagnostics, are in cfgload.c.
 *
 * Table order matters where one key depends on another: tenants.defaults is
 * parsed before tenants.list (tenants inherit it), listeners before admin
 * (which must not reuse their address). */
#include "ac_config.h"

#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <yaml.h>

#include "cfgload.h"
#include "cfgload_keys.h"
#include "common.h"
#include "tenant.h"

#define MAX_FILE_SIZE (16u << 20)
#define ADMIN_DEFAULT_ADDR "127.0.0.1:8081"

_Static_assert(sizeof(enum cr_proto) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cr_log_level) == sizeof(int), "enums are stored as int");

#define ERR(c, n, ...) cr_cfgload_error((c), (n), __VA_ARGS__)
#define WARN(c, n, ...) cr_cfgload_warn((c), (n), __VA_ARGS__)

/* Values that must be unique (the kinds of cr_cfgload_seen). */
enum uniq_kind {
    UQ_LISTENER_NAME,
    UQ_LISTENER_ADDR,
    UQ_UPSTREAM_ADDR,
    UQ_TENANT_NAME,
    UQ_API_KEY,
    UQ_MATCH,
    UQ_ROUTE,
};

/* What the hooks share during one load, besides the walker's state (the
 * struct cr_config being filled is the walker's root). */
struct load {
    SSL_CTX *ssl; /* to check cipher strings, made on first use */
};

/* The tables, defined at the end with the schema. */
static const struct cr_cfgload_table log_table, cert_table, tls_server_table, listener_table,
    upstream_tls_table, upstream_adaptive_table, upstream_table, http_table, limits_table,
    tenant_table, route_table, quota_table, tenants_table, admin_table, top_table;

/* ------------------------------------------------------------ validators */

static bool valid_hostname(const char *s, bool wildcard)
{
    size_t label = 0, len = strlen(s);

    if (wildcard && strncmp(s, "*.", 2) == 0)
        s += 2;
    if (*s == '\0' || len > 253)
        return false;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
        if (label == 0 && *p == '-')
            return false;
        label++;
    }
}

static bool valid_header_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------ custom keys */

static void custom_workers(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                           void *obj)
{
    uint32_t *workers = cr_cfgload_field(obj, k->off);
    uint64_t v;
    long ncpu;
    char g[80];

    if (n == NULL || (cr_cfgload_is_value(n) && strcmp(cr_cfgload_str(n), "auto") == 0)) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        *workers = (uint32_t)(ncpu < 1 ? 1 : ncpu > (long)k->max ? (long)k->max : ncpu);
        return;
    }
    if (!cr_cfgload_is_value(n) || !cr_cfgload_decimal(cr_cfgload_str(n), &v) || v < k->min ||
        v > k->max) {
        ERR(c, n, "'workers' must be 'auto' or an integer between %llu and %llu, got %s",
            (unsigned long long)k->min, (unsigned long long)k->max,
            cr_cfgload_got(n, g, sizeof(g)));
        return;
    }
    *workers = (uint32_t)v;
}

/* "auto" (stored as 0: the worker derives it from its open files limit)
 * or an integer in [min, max]. */
static void custom_max_connections(struct cr_cfgload *c, const struct cr_cfgload_key *k,
                                   yaml_node_t *n, void *obj)
{
    uint32_t *max = cr_cfgload_field(obj, k->off);
    uint64_t v;
    char g[80];

    if (n == NULL || (cr_cfgload_is_value(n) && strcmp(cr_cfgload_str(n), "auto") == 0)) {
        *max = 0;
        return;
    }
    if (!cr_cfgload_is_value(n) || !cr_cfgload_decimal(cr_cfgload_str(n), &v) || v < k->min ||
        v > k->max) {
        ERR(c, n, "'max_connections' must be 'auto' or an integer between %llu and %llu, got %s",
            (unsigned long long)k->min, (unsigned long long)k->max,
            cr_cfgload_got(n, g, sizeof(g)));
        return;
    }
    *max = (uint32_t)v;
}

static void custom_min_version(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                               void *obj)
{
    int *v = cr_cfgload_field(obj, k->off);
    char g[80];

    if (n == NULL || (cr_cfgload_is_value(n) && strcmp(cr_cfgload_str(n), "1.2") == 0)) {
        *v = TLS1_2_VERSION;
    } else if (cr_cfgload_is_value(n) && strcmp(cr_cfgload_str(n), "1.3") == 0) {
        *v = TLS1_3_VERSION;
    } else if (cr_cfgload_is_value(n) &&
               (strcmp(cr_cfgload_str(n), "1.0") == 0 || strcmp(cr_cfgload_str(n), "1.1") == 0 ||
                strcmp(cr_cfgload_str(n), "1") == 0)) {
        ERR(c, n,
            "'min_version' %s is refused: TLS 1.0 and 1.1 are obsolete and insecure "
            "(use 1.2 or 1.3)",
            cr_cfgload_str(n));
    } else {
        ERR(c, n, "'min_version' must be one of 1.2, 1.3, got %s", cr_cfgload_got(n, g, sizeof(g)));
    }
}

static void custom_alpn(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                        void *obj)
{
    enum cr_alpn *alpn = cr_cfgload_field(obj, k->off);
    size_t *nalpn = cr_cfgload_count(obj, k), len;
    char g[80];

    if (n == NULL) {
        alpn[0] = CR_ALPN_H2;
        alpn[1] = CR_ALPN_HTTP11;
        *nalpn = 2;
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE || (len = cr_cfgload_seq_len(n)) == 0) {
        ERR(c, n, "'alpn' must be a list of h2 and/or http/1.1, got %s",
            n->type == YAML_SEQUENCE_NODE ? "an empty list" : cr_cfgload_got(n, g, sizeof(g)));
        return;
    }
    *nalpn = 0;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = cr_cfgload_seq_at(c, n, i);
        enum cr_alpn p;

        if (cr_cfgload_is_value(item) && strcmp(cr_cfgload_str(item), "h2") == 0) {
            p = CR_ALPN_H2;
        } else if (cr_cfgload_is_value(item) && strcmp(cr_cfgload_str(item), "http/1.1") == 0) {
            p = CR_ALPN_HTTP11;
        } else {
            ERR(c, item, "'alpn' entries must be h2 or http/1.1, got %s",
                cr_cfgload_got(item, g, sizeof(g)));
            continue;
        }
        if ((*nalpn >= 1 && alpn[0] == p) || (*nalpn >= 2 && alpn[1] == p)) {
            ERR(c, item, "duplicate ALPN protocol '%s'", cr_cfgload_str(item));
            continue;
        }
        alpn[(*nalpn)++] = p;
    }
}

/* listeners[].proxy_from: addresses or CIDR ranges, parsed once here into
 * the listener's fixed array (nothing to free). */
static void custom_proxy_from(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                              void *obj)
{
    struct cr_pp_cidr *from = cr_cfgload_field(obj, k->off);
    size_t *nfrom = cr_cfgload_count(obj, k), len;
    char g[80];

    *nfrom = 0;
    if (n == NULL)
        return;
    if (n->type != YAML_SEQUENCE_NODE || (len = cr_cfgload_seq_len(n)) == 0 ||
        len > CR_PP_MAX_FROM) {
        ERR(c, n, "'proxy_from' must be a list of 1 to %d addresses or CIDR ranges, got %s",
            CR_PP_MAX_FROM,
            n->type == YAML_SEQUENCE_NODE ? "a list of another length"
                                          : cr_cfgload_got(n, g, sizeof(g)));
        return;
    }
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = cr_cfgload_seq_at(c, n, i);
        if (!cr_cfgload_is_value(item) ||
            cr_pp_cidr_parse(cr_cfgload_str(item), &from[*nfrom]) < 0) {
            ERR(c, item,
                "'proxy_from' entries must be an address or ADDRESS/BITS with no host "
                "bits set (10.0.0.0/8, 2001:db8::/32), got %s",
                cr_cfgload_got(item, g, sizeof(g)));
            continue;
        }
        (*nfrom)++;
    }
}

/* ------------------------------------------------------------ check hooks */

/* The config being filled, for rules that look outside their own mapping. */
static struct cr_config *cfg_of(struct cr_cfgload *c)
{
    return c->root;
}

static void listener_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                           const struct cr_cfgload_level *l)
{
    struct cr_cfg_listener *li = obj;
    yaml_node_t *name = cr_cfgload_val(l, "name"), *addr = cr_cfgload_val(l, "address");
    const struct cr_cfgload_first *u;

    if (li->name == NULL && !cr_cfgload_bad(l, "name")) {
        if (asprintf(&li->name, "listener%zu", c->item + 1) < 0) {
            li->name = NULL;
            c->oom = true;
            return;
        }
    }
    if (li->name != NULL && !cr_cfgload_bad(l, "name")) {
        u = cr_cfgload_seen_str(c, UQ_LISTENER_NAME, li->name, name != NULL ? name : map);
        if (u != NULL)
            ERR(c, name != NULL ? name : map,
                "duplicate listener name '%s' (first defined at %lu:%lu)", li->name, u->line,
                u->col);
    }
    if (addr != NULL) {
        u = cr_cfgload_seen(c, UQ_LISTENER_ADDR, &li->addr.ss, li->addr.len, addr);
        if (u != NULL)
            ERR(c, addr, "duplicate listener address %s (first defined at %lu:%lu)", li->addr.text,
                u->line, u->col);
    }
    yaml_node_t *pp = cr_cfgload_val(l, "proxy_protocol"), *from = cr_cfgload_node(l, "proxy_from");
    if (li->proxy_protocol && from == NULL)
        ERR(c, pp,
            "'proxy_protocol' needs 'proxy_from': the balancers' addresses, the only ones "
            "allowed to name another client");
    if (!li->proxy_protocol && from != NULL)
        WARN(c, from, "'proxy_from' is unused unless 'proxy_protocol' is true");
}

static SSL_CTX *ssl_ctx(struct cr_cfgload *c)
{
    struct load *ld = c->user;

    if (ld->ssl == NULL)
        ld->ssl = SSL_CTX_new(TLS_method());
    if (ld->ssl == NULL)
        c->oom = true;
    return ld->ssl;
}

static void tls_server_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                             const struct cr_cfgload_level *l)
{
    struct cr_cfg_tls_server *t = obj;
    yaml_node_t *ciphers = cr_cfgload_val(l, "ciphers"),
                *suites = cr_cfgload_val(l, "ciphersuites");
    (void)map;

    if (ciphers != NULL && ssl_ctx(c) != NULL) {
        if (SSL_CTX_set_cipher_list(ssl_ctx(c), t->ciphers) != 1)
            ERR(c, ciphers, "'ciphers': no TLS 1.2 cipher matches '%s'", t->ciphers);
        else if (t->min_version == TLS1_3_VERSION)
            WARN(c, ciphers,
                 "'ciphers' only applies to TLS 1.2 and is unused with "
                 "min_version 1.3");
    }
    if (suites != NULL && ssl_ctx(c) != NULL &&
        SSL_CTX_set_ciphersuites(ssl_ctx(c), t->ciphersuites) != 1)
        ERR(c, suites, "'ciphersuites': invalid TLS 1.3 cipher suites '%s'", t->ciphersuites);
    ERR_clear_error();
}

static void upstream_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                           const struct cr_cfgload_level *l)
{
    struct cr_cfg_upstream *u = obj;
    yaml_node_t *addrs = cr_cfgload_node(l, "addresses"), *pipeline = cr_cfgload_val(l, "pipeline");
    yaml_node_t *rmax = cr_cfgload_val(l, "reconnect_max");
    const struct cr_cfgload_first *first;
    (void)map;

    if (!cr_cfgload_bad(l, "reconnect_min") && !cr_cfgload_bad(l, "reconnect_max") &&
        u->reconnect_max_ms < u->reconnect_min_ms)
        ERR(c, rmax != NULL ? rmax : cr_cfgload_val(l, "reconnect_min"),
            "'reconnect_max' (%llums) is below 'reconnect_min' (%llums)",
            (unsigned long long)u->reconnect_max_ms, (unsigned long long)u->reconnect_min_ms);

    if (pipeline != NULL && u->pipeline > 1 && !cr_cfgload_bad(l, "protocol") &&
        u->protocol == CR_PROTO_H2)
        WARN(c, pipeline, "'pipeline' only applies to protocol http/1.1 and is unused with h2");
    for (size_t i = 0; addrs != NULL && i < u->naddrs; i++) {
        if (u->addrs[i].len == 0)
            continue;
        first = cr_cfgload_seen(c, UQ_UPSTREAM_ADDR, &u->addrs[i].ss, u->addrs[i].len,
                                cr_cfgload_seq_at(c, addrs, i));
        if (first != NULL)
            ERR(c, cr_cfgload_seq_at(c, addrs, i),
                "duplicate upstream address %s (first defined at %lu:%lu)", u->addrs[i].text,
                first->line, first->col);
    }
}

static void upstream_tls_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                               const struct cr_cfgload_level *l)
{
    struct cr_cfg_upstream *u = &cfg_of(c)->upstream;
    yaml_node_t *insecure = cr_cfgload_val(l, "insecure"), *sni = cr_cfgload_val(l, "sni");
    yaml_node_t *cert = cr_cfgload_node(l, "cert"), *key = cr_cfgload_node(l, "key"),
                *ca = cr_cfgload_node(l, "ca");
    (void)obj; /* an anonymous struct: reached through the root */

    if (cert != NULL && key == NULL)
        ERR(c, cert,
            "'cert' needs 'key' (the client certificate's private key) in the same "
            "mapping");
    if (key != NULL && cert == NULL)
        ERR(c, key, "'key' needs 'cert' (the client certificate) in the same mapping");
    if (sni != NULL && !valid_hostname(u->tls.sni, false))
        ERR(c, sni, "'sni' must be a host name, got '%s'", u->tls.sni);
    if (cr_cfgload_bad(l, "insecure"))
        return;
    if (!u->tls.insecure && ca == NULL)
        ERR(c, map,
            "missing required key 'ca': upstream certificates are always verified, "
            "and verification cannot be turned off without `insecure: true`");
    if (u->tls.insecure) {
        WARN(c, insecure,
             "'insecure' is true: the upstream's certificate is not verified "
             "(for testing only)");
        if (ca != NULL)
            WARN(c, ca, "'ca' is unused because 'insecure' is true");
    }
}

static void log_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                      const struct cr_cfgload_level *l)
{
    struct cr_cfg_log *lg = obj;
    (void)map;

    /* "stderr", "off" and "stdout" are words; anything else is a file. */
    if (cr_cfgload_val(l, "error") != NULL && strcmp(lg->error, "stderr") != 0)
        cr_cfgload_set_str(&lg->error, cr_cfgload_path(c, lg->error));
    if (cr_cfgload_val(l, "access") != NULL && strcmp(lg->access, "off") != 0 &&
        strcmp(lg->access, "stdout") != 0)
        cr_cfgload_set_str(&lg->access, cr_cfgload_path(c, lg->access));
}

static void tenants_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                          const struct cr_cfgload_level *l)
{
    struct cr_cfg_tenants *t = obj;
    yaml_node_t *header = cr_cfgload_val(l, "header"), *list = cr_cfgload_val(l, "list");
    bool uses_header = t->by == CR_TENANT_BY_HEADER || t->by == CR_TENANT_BY_API_KEY;
    (void)map;

    if (cr_cfgload_bad(l, "by"))
        return;
    if (header != NULL && !valid_header_name(t->header))
        ERR(c, header, "'header' must be an HTTP header name, got '%s'", t->header);
    if (header != NULL && !uses_header)
        WARN(c, header, "'header' is unused unless 'by' is header or api_key");
    if (t->header == NULL && t->by == CR_TENANT_BY_HEADER)
        t->header = cr_cfgload_strdup(c, "X-Tenant-Id");
    if (t->header == NULL && t->by == CR_TENANT_BY_API_KEY)
        t->header = cr_cfgload_strdup(c, "X-Api-Key");
    if (list != NULL && t->nlist > 0 && t->by == CR_TENANT_BY_NONE)
        WARN(c, list,
             "with 'by: none' every request goes to the default tenant and 'list' "
             "is unused");
}

static void quota_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                        const struct cr_cfgload_level *l)
{
    struct cr_cfg_quota *q = obj;
    yaml_node_t *user = cr_cfgload_val(l, "user");
    (void)map;

    q->enabled = true;
    if (user != NULL && q->password_file == NULL)
        ERR(c, user, "'user' needs 'password_file' (ACL: AUTH user password)");
}

static void tenant_init(struct cr_cfgload *c, void *obj)
{
    struct cr_cfg_tenant *t = obj;

    t->limits = cfg_of(c)->tenants.defaults;
}

/* tenants.by as parsed, or -1 when it was in error (so no cascade). */
static int tenants_by(struct cr_cfgload *c)
{
    const struct cr_cfgload_level *up = cr_cfgload_parent(c);

    return cr_cfgload_bad(up, "by") ? -1 : (int)cfg_of(c)->tenants.by;
}

/* NULL when prefix (which starts with '/') is a path in its normal form,
 * which requests are matched in (tenant.h); else why not, in buf. */
static const char *prefix_problem(const char *prefix, char *buf, size_t len)
{
    char *norm;

    if (strpbrk(prefix, "?#") != NULL)
        return "a path prefix has no query or fragment";
    if ((norm = strdup(prefix)) == NULL)
        return "out of memory";
    cr_tenants_normalize_path(norm);
    if (strcmp(norm, prefix) == 0) {
        free(norm);
        return NULL;
    }
    snprintf(buf, len,
             "requests are matched in their normal form (dot segments removed, unreserved "
             "characters decoded): write '%s'",
             norm);
    free(norm);
    return buf;
}

static void tenant_match_check(struct cr_cfgload *c, struct cr_cfg_tenant *t, yaml_node_t *match,
                               int by)
{
    const struct cr_cfgload_first *u;

    for (size_t i = 0; i < t->nmatch; i++) {
        yaml_node_t *item = cr_cfgload_seq_at(c, match, i);
        char *m = t->match[i];
        const char *why;
        char buf[512];

        if (m == NULL)
            continue;
        if (by == CR_TENANT_BY_PATH_PREFIX && m[0] != '/') {
            ERR(c, item, "'match' entry '%s' must be a path prefix starting with '/'", m);
            continue;
        }
        if (by == CR_TENANT_BY_PATH_PREFIX && (why = prefix_problem(m, buf, sizeof(buf))) != NULL) {
            ERR(c, item, "'match' entry '%s': %s", m, why);
            continue;
        }
        if (by == CR_TENANT_BY_SNI) {
            if (!valid_hostname(m, true)) {
                ERR(c, item, "'match' entry '%s' must be a host name (by: sni)", m);
                continue;
            }
            for (char *p = m; *p != '\0'; p++)
                *p = (char)tolower((unsigned char)*p);
        }
        u = cr_cfgload_seen_str(c, UQ_MATCH, m, item);
        if (u != NULL)
            ERR(c, item, "duplicate match '%s' (first defined at %lu:%lu)", m, u->line, u->col);
    }
}

static void tenant_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                         const struct cr_cfgload_level *l)
{
    struct cr_cfg_tenant *t = obj;
    yaml_node_t *name = cr_cfgload_val(l, "name"), *keys = cr_cfgload_val(l, "api_keys");
    yaml_node_t *match = cr_cfgload_val(l, "match");
    const struct cr_cfgload_first *u;
    int by = tenants_by(c);

    if (name != NULL && strcmp(t->name, "default") == 0) {
        ERR(c, name,
            "tenant name 'default' is reserved: set the default tenant's limits in "
            "tenants.defaults");
        return;
    }
    if (name != NULL && (u = cr_cfgload_seen_str(c, UQ_TENANT_NAME, t->name, name)) != NULL)
        ERR(c, name, "duplicate tenant name '%s' (first defined at %lu:%lu)", t->name, u->line,
            u->col);
    if (keys != NULL && by >= 0 && by != CR_TENANT_BY_API_KEY)
        ERR(c, keys, "'api_keys' is only used with 'by: api_key'");
    for (size_t i = 0; by == CR_TENANT_BY_API_KEY && i < t->napi_keys; i++) {
        /* The key itself is a secret: the message only says where. */
        yaml_node_t *item = cr_cfgload_seq_at(c, cr_cfgload_node(l, "api_keys"), i);
        if (t->api_keys[i] != NULL &&
            (u = cr_cfgload_seen_str(c, UQ_API_KEY, t->api_keys[i], item)))
            ERR(c, item, "duplicate API key (first defined at %lu:%lu)", u->line, u->col);
    }
    if (match != NULL && by >= 0 && by != CR_TENANT_BY_SNI && by != CR_TENANT_BY_PATH_PREFIX)
        ERR(c, match, "'match' is only used with 'by: sni' or 'by: path_prefix'");
    else if (by == CR_TENANT_BY_SNI || by == CR_TENANT_BY_PATH_PREFIX)
        tenant_match_check(c, t, cr_cfgload_node(l, "match"), by);
    if (name != NULL && by == CR_TENANT_BY_API_KEY && cr_cfgload_node(l, "api_keys") == NULL)
        WARN(c, map, "tenant '%s' has no 'api_keys' and can never be selected", t->name);
    if (name != NULL && (by == CR_TENANT_BY_SNI || by == CR_TENANT_BY_PATH_PREFIX) &&
        cr_cfgload_node(l, "match") == NULL)
        WARN(c, map, "tenant '%s' has no 'match' entries and can never be selected", t->name);
}

static void route_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                        const struct cr_cfgload_level *l)
{
    struct cr_cfg_route *r = obj;
    yaml_node_t *prefix = cr_cfgload_val(l, "path_prefix");
    const struct cr_cfgload_first *u;
    const char *why;
    char buf[512];
    (void)map;

    if (prefix == NULL)
        return;
    if (r->path_prefix[0] != '/')
        ERR(c, prefix, "'path_prefix' must start with '/', got '%s'", r->path_prefix);
    else if ((why = prefix_problem(r->path_prefix, buf, sizeof(buf))) != NULL)
        ERR(c, prefix, "'path_prefix' '%s': %s", r->path_prefix, why);
    else if ((u = cr_cfgload_seen_str(c, UQ_ROUTE, r->path_prefix, prefix)) != NULL)
        ERR(c, prefix, "duplicate route for path_prefix '%s' (first defined at %lu:%lu)",
            r->path_prefix, u->line, u->col);
}

static void admin_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                        const struct cr_cfgload_level *l)
{
    struct cr_cfg_admin *a = obj;
    yaml_node_t *addr = cr_cfgload_val(l, "address");
    yaml_node_t *where = addr != NULL ? addr : map;

    a->enabled = true;
    if (cr_cfgload_bad(l, "address") || a->addr.len == 0)
        return;
    for (size_t i = 0; i < cfg_of(c)->nlisteners; i++) {
        const struct cr_cfg_listener *li = &cfg_of(c)->listeners[i];
        if (li->addr.len == a->addr.len && memcmp(&li->addr.ss, &a->addr.ss, a->addr.len) == 0) {
            ERR(c, where, "admin address %s is also the address of listener '%s'", a->addr.text,
                li->name != NULL ? li->name : "?");
            return;
        }
    }
    if (!cr_addr_loopback((const struct sockaddr *)&a->addr.ss, a->addr.len))
        WARN(c, where,
             "admin address %s is not a loopback address: the admin interface is "
             "cleartext and unauthenticated",
             a->addr.text);
}

/* ------------------------------------------------------------ the schema */

/* clang-format off */
/* One row per key; o is the field's offset in the level's struct (OFF).
 * corral's own key shapes, beside cfgload_keys.h's: */
#define KRATE(n, o, d)           {.name = n, .type = CR_CFGLOAD_RATE, .off = o, .dflt = d}
#define KADDR(n, o, fl, d)       {.name = n, .type = CR_CFGLOAD_ADDR, .off = o, .flags = fl, .dflt = d}
#define KSTRS(n, o, no)          {.name = n, .type = CR_CFGLOAD_STRLIST, .off = o, .noff = no}
#define KADDRS(n, o, no, lo, fl) {.name = n, .type = CR_CFGLOAD_ADDRLIST, .off = o, .noff = no, .min = lo, .flags = fl}
#define KCUSTOM(n, o, no, lo, hi, fn_) \
    {.name = n, .type = CR_CFGLOAD_CUSTOM, .off = o, .noff = no, .min = lo, .max = hi, .fn = fn_}

static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const proto_names[] = {"h2", "http/1.1", NULL};
static const char *const fwd_names[] = {"x-forwarded-for", "forwarded", "off", NULL};
static const char *const by_names[] = {"none", "header", "api_key", "sni", "path_prefix", NULL};
static const char *const prio_names[] = {"high", "normal", "low", NULL};

#define OFF(f) offsetof(struct cr_cfg_log, f)
static const struct cr_cfgload_key log_keys[] = {
    KSTR ("error",  OFF(error), 0, "stderr"),        /* "stderr" or a file */
    KENUM("level",  OFF(level), level_names, "info"),
    KSTR ("access", OFF(access), 0, "off"),          /* "off", "stdout" or a file */
    KUINT("sample", OFF(sample), 1, 1000000, "1"),
    KDUR ("slow_threshold", OFF(slow_threshold_ms), 0, MS_H, "1s"),
    KSTRS("keep_tenants", OFF(keep_tenants), OFF(nkeep_tenants)),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_cert, f)
static const struct cr_cfgload_key cert_keys[] = {
    KPATH("cert", OFF(cert), REQ | READ),
    KPATH("key",  OFF(key),  REQ | READ),
    KPATH("ocsp", OFF(ocsp), READ),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_tls_server, f)
static const struct cr_cfgload_key tls_server_keys[] = {
    KLIST  ("certificates",      OFF(certs), OFF(ncerts), struct cr_cfg_cert, 1, &cert_table, REQ),
    KCUSTOM("min_version",       OFF(min_version), 0, 0, 0, custom_min_version),
    KSTR   ("ciphers",           OFF(ciphers), 0, NULL),
    KSTR   ("ciphersuites",      OFF(ciphersuites), 0, NULL),
    KCUSTOM("alpn",              OFF(alpn), OFF(nalpn), 0, 0, custom_alpn),
    KDUR   ("client_hello_timeout", OFF(client_hello_timeout_ms), 100, 10 * MS_M, "5s"),
    KDUR   ("handshake_timeout", OFF(handshake_timeout_ms), 100, 10 * MS_M, "10s"),
    KUINT  ("max_handshakes",    OFF(max_handshakes), 1, 100000, "256"),
    KPATH  ("ticket_key_file",   OFF(ticket_key_file), READ),
    KDUR   ("ticket_rotate",     OFF(ticket_rotate_ms), MS_S, 7 * MS_D, "12h"),
    KUINT  ("tickets",           OFF(tickets), 0, 10, "1"),
    KBOOL  ("handoff",           OFF(handoff), "true"),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_listener, f)
static const struct cr_cfgload_key listener_keys[] = {
    KSTR ("name",    OFF(name), 0, NULL),            /* default "listener<N>" */
    KADDR("address", OFF(addr), REQ | CR_CFGLOAD_WILDCARD, NULL),
    KUINT("backlog", OFF(backlog), 1, 65535, "4096"),
    KMAP ("tls",     OFF(tls), &tls_server_table, REQ),
    KBOOL("proxy_protocol", OFF(proxy_protocol), "false"),
    KCUSTOM("proxy_from", OFF(proxy_from), OFF(nproxy_from), 0, 0, custom_proxy_from),
};
#undef OFF

/* upstream.tls is an anonymous struct: offsets are relative to it. */
#define OFF(f) (offsetof(struct cr_cfg_upstream, tls.f) - offsetof(struct cr_cfg_upstream, tls))
static const struct cr_cfgload_key upstream_tls_keys[] = {
    KPATH("ca",       OFF(ca), READ),                /* required unless insecure */
    KPATH("cert",     OFF(cert), READ),
    KPATH("key",      OFF(key), READ),
    KSTR ("sni",      OFF(sni), 0, NULL),
    KBOOL("insecure", OFF(insecure), "false"),
};
#undef OFF

/* upstream.adaptive is an anonymous struct: offsets are relative to it. */
#define OFF(f) (offsetof(struct cr_cfg_upstream, adaptive.f) - offsetof(struct cr_cfg_upstream, adaptive))
static const struct cr_cfgload_key upstream_adaptive_keys[] = {
    KBOOL("enabled",          OFF(enabled), "false"),
    KUINT("min",              OFF(min), 1, 100000, "4"),
    KDUR ("interval",         OFF(interval_ms), 10, 10 * MS_S, "100ms"),
    KDUR ("min_rtt_interval", OFF(min_rtt_interval_ms), MS_S, MS_H, "30s"),
    KUINT("tolerance",        OFF(tolerance), 100, 400, "125"),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_upstream, f)
static const struct cr_cfgload_key upstream_keys[] = {
    KADDRS("addresses",        OFF(addrs), OFF(naddrs), 1, REQ),
    KENUM ("protocol",         OFF(protocol), proto_names, "h2"),
    KUINT ("connections",      OFF(connections), 1, 64, "2"),
    KUINT ("pipeline",         OFF(pipeline), 1, 64, "1"),
    KUINT ("max_streams",      OFF(max_streams), 0, 100000, "0"),
    KUINT ("queue",            OFF(queue), 0, 1000000, "1024"),
    KDUR  ("connect_timeout",  OFF(connect_timeout_ms), 10, 10 * MS_M, "5s"),
    KDUR  ("response_timeout", OFF(response_timeout_ms), 10, MS_D, "60s"),
    KDUR  ("keepalive",        OFF(keepalive_ms), 0, MS_D, "30s"),
    KDUR  ("reconnect_min",    OFF(reconnect_min_ms), 10, 10 * MS_M, "100ms"),
    KDUR  ("reconnect_max",    OFF(reconnect_max_ms), 10, MS_H, "5s"),
    KDUR  ("outage_wait",      OFF(outage_wait_ms), 0, MS_H, "5s"),
    KUINT ("headroom",         OFF(headroom), 0, 50, "12"),
    KDUR  ("streaming_after",  OFF(streaming_after_ms), 0, MS_D, "10s"),
    KUINT ("max_streaming",    OFF(max_streaming), 0, 100000, "128"),
    KUINT ("tunnel_connections", OFF(tunnel_connections), 0, 100000, "1000"),
    KMAP  ("tls",              OFF(tls), &upstream_tls_table, REQ),
    KMAP  ("adaptive",         OFF(adaptive), &upstream_adaptive_table, 0),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_http, f)
static const struct cr_cfgload_key http_keys[] = {
    KSIZE("max_header_size", OFF(max_header_size), 1024, 1048576, "16k"),
    KUINT("max_headers",     OFF(max_headers), 1, 1000, "100"),
    KSIZE("max_uri",         OFF(max_uri), 256, 1048576, "8k"),
    KSIZE("max_body",        OFF(max_body), 0, UINT64_MAX, "0"),
    KDUR ("header_timeout",  OFF(header_timeout_ms), 100, MS_D, "10s"),
    KDUR ("body_timeout",    OFF(body_timeout_ms), 100, MS_D, "30s"),
    KDUR ("idle_timeout",    OFF(idle_timeout_ms), 100, MS_D, "60s"),
    KDUR ("lingering_time",  OFF(lingering_time_ms), 0, 10 * MS_M, "5s"),
    KDUR ("lingering_timeout", OFF(lingering_timeout_ms), 10, MS_M, "2s"),
    KUINT("max_streams",     OFF(max_streams), 1, 10000, "128"),
    KDUR ("send_timeout",    OFF(send_timeout_ms), 100, MS_D, "30s"),
    KSIZE("send_min_rate",   OFF(send_min_rate), 0, 1ULL << 30, "512"),
    KUINT("h2_max_resets",   OFF(h2_max_resets), 1, 1000000, "100"),
    KUINT("h2_max_pings",    OFF(h2_max_pings), 1, 1000000, "20"),
    KUINT("h2_max_settings", OFF(h2_max_settings), 1, 1000000, "10"),
    KUINT("h2_max_empty_frames", OFF(h2_max_empty_frames), 1, 1000000, "50"),
    KUINT("h2_max_control_frames", OFF(h2_max_control_frames), 1, 1000000, "1000"),
    KUINT("h2_max_stalled_streams", OFF(h2_max_stalled_streams), 1, 10000, "16"),
    KENUM("forwarded",       OFF(forwarded), fwd_names, "x-forwarded-for"),
    KBOOL("request_id",      OFF(request_id), "true"),
    KBOOL("traceparent",     OFF(traceparent), "true"),
    KDUR ("tunnel_idle_timeout", OFF(tunnel_idle_timeout_ms), 0, MS_D, "10m"),
    KDUR ("tunnel_ping",     OFF(tunnel_ping_ms), 0, MS_H, "30s"),
};
#undef OFF

/* The limits keys, for tenants.defaults (D = the default) and for each
 * tenant (D = NULL: tenant_init copies tenants.defaults first). */
#define LIMITS(O, D)                                                 \
    KRATE("rate",        O(rate), D("unlimited")),                   \
    KUINT("burst",       O(burst), 1, 10000000, D("100")),           \
    KUINT("concurrency", O(concurrency), 0, 1000000, D("0")),        \
    KUINT("queue",       O(queue), 0, 1000000, D("1000")),           \
    KDUR ("max_wait",    O(max_wait_ms), 0, MS_H, D("5s")),          \
    KUINT("weight",      O(weight), 1, 1000, D("1")),             \
    KUINT("streaming",   O(streaming), 0, 1000000, D("100")),    \
    KUINT("tunnels",     O(tunnels), 0, 1000000, D("0")),            \
    KRATE("tunnel_rate", O(tunnel_rate), D("unlimited")),            \
    KUINT("tunnel_burst", O(tunnel_burst), 1, 1000000, D("10"))
#define WITH_DEFAULT(x) x
#define INHERITED(x) NULL
#define LIMITS_OFF(f) offsetof(struct cr_cfg_limits, f)
#define TENANT_OFF(f) offsetof(struct cr_cfg_tenant, limits.f)

static const struct cr_cfgload_key limits_keys[] = {LIMITS(LIMITS_OFF, WITH_DEFAULT)};

#define OFF(f) offsetof(struct cr_cfg_tenant, f)
static const struct cr_cfgload_key tenant_keys[] = {
    KSTR ("name",     OFF(name), REQ, NULL),
    LIMITS(TENANT_OFF, INHERITED),
    KSTRS("api_keys", OFF(api_keys), OFF(napi_keys)),
    KSTRS("match",    OFF(match), OFF(nmatch)),
    KBOOL("global",   OFF(global), "false"),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_route, f)
static const struct cr_cfgload_key route_keys[] = {
    KSTR ("path_prefix", OFF(path_prefix), REQ, NULL),
    KENUM("priority",    OFF(priority), prio_names, "normal"),
};
#undef OFF

/* Order matters: defaults before list, so that tenants inherit them. */
#define OFF(f) offsetof(struct cr_cfg_tenants, f)
static const struct cr_cfgload_key tenants_keys[] = {
    KENUM("by",       OFF(by), by_names, "none"),
    KSTR ("header",   OFF(header), 0, NULL),
    KMAP ("defaults", OFF(defaults), &limits_table, 0),
    KLIST("list",     OFF(list), OFF(nlist), struct cr_cfg_tenant, 0, &tenant_table, 0),
    KLIST("routes",   OFF(routes), OFF(nroutes), struct cr_cfg_route, 0, &route_table, 0),
    KMAP ("global",   OFF(global), &quota_table, CR_CFGLOAD_ABSENT_OFF),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_quota, f)
static const struct cr_cfgload_key quota_keys[] = {
    KADDR("address",         OFF(addr), REQ, NULL),
    KSTR ("user",            OFF(user), 0, NULL),
    KPATH("password_file",   OFF(password_file), READ),
    KSTR ("prefix",          OFF(prefix), 0, "corral:quota:"),
    KDUR ("connect_timeout", OFF(connect_timeout_ms), 10, MS_M, "1s"),
    KDUR ("command_timeout", OFF(command_timeout_ms), 10, MS_M, "200ms"),
    KDUR ("reconnect_max",   OFF(reconnect_max_ms), 100, MS_H, "5s"),
    KUINT("lease",           OFF(lease), 0, 1000000, "0"),
    KUINT("hosts",           OFF(hosts), 1, 100000, "1"),
    KBOOL("all",             OFF(all), "false"),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_admin, f)
static const struct cr_cfgload_key admin_keys[] = {
    KADDR("address",         OFF(addr), CR_CFGLOAD_WILDCARD, ADMIN_DEFAULT_ADDR),
    KUINT("max_connections", OFF(max_connections), 1, 1000, "8"),
    KDUR ("timeout",         OFF(timeout_ms), 100, 10 * MS_M, "5s"),
};
#undef OFF

/* Order matters: listeners before admin, which must not reuse their address. */
#define OFF(f) offsetof(struct cr_config, f)
static const struct cr_cfgload_key top_keys[] = {
    KCUSTOM("workers",       OFF(workers), 0, 1, 256, custom_workers),
    KCUSTOM("max_connections", OFF(max_connections), 0, 1, 10000000, custom_max_connections),
    KSTR   ("user",          OFF(user), 0, NULL),
    KSTR   ("group",         OFF(group), 0, NULL),
    KPATH  ("pid_file",      OFF(pid_file), 0),
    KDUR   ("drain_timeout", OFF(drain_timeout_ms), 0, MS_H, "30s"),
    KDUR   ("drain_grace",   OFF(drain_grace_ms), 0, MS_H, "10s"),
    KMAP   ("log",           OFF(log), &log_table, 0),
    KLIST  ("listeners",     OFF(listeners), OFF(nlisteners), struct cr_cfg_listener, 1,
            &listener_table, REQ),
    KMAP   ("upstream",      OFF(upstream), &upstream_table, REQ),
    KMAP   ("http",          OFF(http), &http_table, 0),
    KMAP   ("tenants",       OFF(tenants), &tenants_table, 0),
    KMAP   ("admin",         OFF(admin), &admin_table, CR_CFGLOAD_ABSENT_OFF),
};
#undef OFF

static const struct cr_cfgload_table log_table = TABLE(log_keys, NULL, log_check);
static const struct cr_cfgload_table cert_table = TABLE(cert_keys, NULL, NULL);
static const struct cr_cfgload_table tls_server_table = TABLE(tls_server_keys, NULL, tls_server_check);
static const struct cr_cfgload_table listener_table = TABLE(listener_keys, NULL, listener_check);
static const struct cr_cfgload_table upstream_tls_table = TABLE(upstream_tls_keys, NULL, upstream_tls_check);
static const struct cr_cfgload_table upstream_adaptive_table = TABLE(upstream_adaptive_keys, NULL, NULL);
static const struct cr_cfgload_table upstream_table = TABLE(upstream_keys, NULL, upstream_check);
static const struct cr_cfgload_table http_table = TABLE(http_keys, NULL, NULL);
static const struct cr_cfgload_table limits_table = TABLE(limits_keys, NULL, NULL);
static const struct cr_cfgload_table tenant_table = TABLE(tenant_keys, tenant_init, tenant_check);
static const struct cr_cfgload_table route_table = TABLE(route_keys, NULL, route_check);
static const struct cr_cfgload_table quota_table = TABLE(quota_keys, NULL, quota_check);
static const struct cr_cfgload_table tenants_table = TABLE(tenants_keys, NULL, tenants_check);
static const struct cr_cfgload_table admin_table = TABLE(admin_keys, NULL, admin_check);
static const struct cr_cfgload_table top_table = TABLE(top_keys, NULL, NULL);
/* clang-format on */

/* ------------------------------------------------------------ loading */

static int load_text(const char *name, const char *base_dir, const char *text, size_t len,
                     struct cr_config **out, struct cr_diag *diag)
{
    struct load ld = {NULL};
    struct cr_cfgload c;
    struct cr_config *cfg;

    cr_cfgload_init(&c, name, base_dir, &ld);
    cfg = cr_cfgload_parse(&c, text, len, &top_table, sizeof(*cfg));
    if (cfg != NULL && !c.oom && (cfg->path = strdup(name)) == NULL)
        c.oom = true;
    cr_cfgload_finish(&c, diag);
    SSL_CTX_free(ld.ssl);
    if (diag->nerrors > 0) {
        cr_config_free(cfg);
        return CR_ECONFIG;
    }
    *out = cfg;
    return 0;
}

static void diag_raw(struct cr_diag *d, const char *path, const char *what, int e)
{
    d->msgs = calloc(1, sizeof(char *));
    if (d->msgs != NULL && asprintf(&d->msgs[0], "%s: error: %s: %s", path, what, strerror(e)) >= 0)
        d->nmsgs = 1;
    d->nerrors = 1;
}

int cr_config_load(const char *path, struct cr_config **out, struct cr_diag *diag)
{
    char *text = NULL, *real = NULL, *slash;
    size_t len = 0;
    int rc;

    memset(diag, 0, sizeof(*diag));
    *out = NULL;
    if (cr_read_file(path, MAX_FILE_SIZE, &text, &len) != 0) {
        diag_raw(diag, path, "cannot read configuration", errno);
        return CR_ECONFIG;
    }
    /* Relative paths in the file are relative to the file's directory. */
    real = realpath(path, NULL);
    slash = real != NULL ? strrchr(real, '/') : NULL;
    if (slash != NULL)
        *(slash == real ? slash + 1 : slash) = '\0';
    rc = load_text(path, real, text, len, out, diag);
    free(real);
    free(text);
    return rc;
}

int cr_config_load_string(const char *name, const char *text, struct cr_config **out,
                          struct cr_diag *diag)
{
    memset(diag, 0, sizeof(*diag));
    *out = NULL;
    return load_text(name, NULL, text, strlen(text), out, diag);
}

int cr_config_load_default(struct cr_config **out, struct cr_diag *diag)
{
    return cr_config_load_string("<built-in>", cr_config_default_yaml, out, diag);
}

void cr_config_free(struct cr_config *cfg)
{
    if (cfg == NULL)
        return;
    cr_cfgload_free(&top_table, cfg);
    free(cfg->path);
    free(cfg);
}
