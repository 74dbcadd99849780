/* rp_profile.c - the campaign profile's schema: one cfgload table per
 * mapping, the hooks that check rules spanning several keys, derived
 * phases, and loading. The walker and the positioned diagnostics are
 * corral's (cfgload.c).
 *
 * Table order matters: duration comes before events and phases (which must
 * fit in it), tenants before events (which name them). */
#include "rp_profile.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "cfgload.h"
#include "cfgload_keys.h"
#include "common.h"

#define MAX_FILE_SIZE (4u << 20)
#define MAX_PATH_LEN 8192
#define MAX_HEADERS 32
#define MAX_TARGETS 256
#define FACTOR_MAX 1e6
#define RATE_CAP_MAX 1e7

#define ERR(c, n, ...) cr_cfgload_error((c), (n), __VA_ARGS__)
#define WARN(c, n, ...) cr_cfgload_warn((c), (n), __VA_ARGS__)

_Static_assert(sizeof(enum rp_refusal) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum rp_arrivals) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum rp_spread) == sizeof(int), "enums are stored as int");

enum uniq_kind { UQ_TENANT, UQ_PHASE, UQ_HEADER };

/* What the hooks share during one load. */
struct load {
    unsigned flags;
    size_t templates; /* templates with headers so far: numbers them for UQ_HEADER */
};

static const struct cr_cfgload_table template_table, tenant_table, tenants_table, event_table,
    phase_table, target_table, caps_table, client_table, top_table;

static struct rp_profile *prof_of(struct cr_cfgload *c)
{
    return c->root;
}

static struct load *load_of(struct cr_cfgload *c)
{
    return c->user;
}

/* ------------------------------------------------------------ validators */

static bool is_tchar(int ch)
{
    return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool valid_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* A header value: visible ASCII (or obs-text), spaces and tabs; no CR, LF
 * or other control characters. */
static bool valid_value(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

static bool valid_path(const char *s)
{
    if (s[0] != '/' || strlen(s) > MAX_PATH_LEN)
        return false;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

static void lower(char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Header fields a template may not set: the client sets them (framing,
 * connection management, the tenant header). */
static bool reserved_header(const char *name, const char *tenant_header)
{
    static const char *const names[] = {"host",       "content-length",   "transfer-encoding",
                                        "connection", "keep-alive",       "upgrade",
                                        "te",         "proxy-connection", "x-request-id"};

    for (size_t i = 0; i < CR_ARRAY_LEN(names); i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return tenant_header != NULL && strcasecmp(name, tenant_header) == 0;
}

/* "0.25" or "25%" into [0, 1]. */
static bool parse_share(const char *s, double *out)
{
    char *end;
    size_t len = strlen(s);
    bool pct = len > 0 && s[len - 1] == '%';
    double v;

    if (len == 0 || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end != s + len - pct || !isfinite(v))
        return false;
    if (pct)
        v /= 100.0;
    if (v < 0.0 || v > 1.0)
        return false;
    *out = v;
    return true;
}

/* "50", "2.5" or "50x" into [0, FACTOR_MAX]. */
static bool parse_factor(const char *s, double *out)
{
    char *end;
    size_t len = strlen(s);
    bool x = len > 0 && (s[len - 1] == 'x' || s[len - 1] == 'X');
    double v;

    if (len == 0 || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end != s + len - x || !isfinite(v) || v < 0.0 || v > FACTOR_MAX)
        return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------ custom keys */

/* A share (double at k->off); k->dflt when absent. */
static void custom_share(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                         void *obj)
{
    double *field = cr_cfgload_field(obj, k->off);
    char g[80];

    if (n == NULL) {
        parse_share(k->dflt, field);
        return;
    }
    if (!cr_cfgload_is_value(n) || !parse_share(cr_cfgload_str(n), field))
        ERR(c, n,
            "'%s' must be a share: a fraction between 0 and 1 or a percentage (0.25 or "
            "25%%), got %s",
            k->name, cr_cfgload_got(n, g, sizeof(g)));
}

/* An event's factor; its absence is reported by event_check. */
static void custom_factor(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                          void *obj)
{
    double *field = cr_cfgload_field(obj, k->off);
    char g[80];

    if (n == NULL)
        return;
    if (!cr_cfgload_is_value(n) || !parse_factor(cr_cfgload_str(n), field))
        ERR(c, n,
            "'%s' must be a multiple of the baseline between 0 and %g (e.g. 50 or 50x), got %s",
            k->name, FACTOR_MAX, cr_cfgload_got(n, g, sizeof(g)));
}

/* One "name: value" pair of a template's headers; tpl numbers the template
 * (a header may repeat across templates, not within one). Returns false on
 * out of memory. */
static bool add_header(struct cr_cfgload *c, struct rp_template *t, size_t tpl, yaml_node_t *kn,
                       yaml_node_t *vn)
{
    const char *name = cr_cfgload_str(kn), *value;
    char g[80], key[300];

    if (kn->type != YAML_SCALAR_NODE || !valid_token(name)) {
        ERR(c, kn, "header name must be an HTTP token (letters, digits, '-'...), got %s",
            cr_cfgload_got(kn, g, sizeof(g)));
        return true;
    }
    if (reserved_header(name, prof_of(c)->tenants.header)) {
        ERR(c, kn, "header '%s' is set by corral-replay itself and cannot be given here", name);
        return true;
    }
    snprintf(key, sizeof(key), "%zu:%s", tpl, name);
    lower(key);
    if (cr_cfgload_seen_str(c, UQ_HEADER, key, kn) != NULL) {
        ERR(c, kn, "header '%s' is given twice", name);
        return true;
    }
    value = vn->type == YAML_SCALAR_NODE ? cr_cfgload_str(vn) : NULL;
    if (value == NULL || !valid_value(value)) {
        ERR(c, vn, "header '%s': the value must be one line of text, got %s", name,
            cr_cfgload_got(vn, g, sizeof(g)));
        return true;
    }
    t->hname[t->nheaders] = cr_cfgload_strdup(c, name);
    t->hvalue[t->nheaders] = cr_cfgload_strdup(c, value);
    lower(t->hname[t->nheaders]);
    t->nheaders++;
    return !c->oom;
}

/* A template's headers: a mapping of name to value. Freed by
 * rp_profile_free (cfgload frees nothing of a custom key). */
static void custom_headers(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                           void *obj)
{
    struct rp_template *t = obj;
    yaml_node_pair_t *p;
    size_t len, tpl;
    char g[80];

    if (n == NULL)
        return;
    if (n->type != YAML_MAPPING_NODE) {
        ERR(c, n, "'%s' must be a mapping of header names to values, got %s", k->name,
            cr_cfgload_got(n, g, sizeof(g)));
        return;
    }
    len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (len > MAX_HEADERS) {
        ERR(c, n, "'%s' has %zu fields, at most %d are allowed", k->name, len, MAX_HEADERS);
        return;
    }
    if (len == 0)
        return;
    t->hname = calloc(len, sizeof(char *));
    t->hvalue = calloc(len, sizeof(char *));
    if (t->hname == NULL || t->hvalue == NULL) {
        c->oom = true;
        return;
    }
    tpl = ++load_of(c)->templates;
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        /* c->doc: cfgload has no accessor for the pairs of a mapping. */
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        if (!add_header(c, t, tpl, kn, vn))
            return;
    }
}

/* ------------------------------------------------------------ check hooks */

static void template_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                           const struct cr_cfgload_level *l)
{
    struct rp_template *t = obj;
    yaml_node_t *m = cr_cfgload_val(l, "method"), *p = cr_cfgload_val(l, "path");

    if (m != NULL && !valid_token(t->method))
        ERR(c, m, "'method' must be an HTTP token such as GET or POST, got '%s'", t->method);
    if (p != NULL && !valid_path(t->path))
        ERR(c, p,
            "'path' must start with '/' and hold no spaces or control characters (at most %d "
            "bytes), got '%s'",
            MAX_PATH_LEN, t->path);
}

static void tenant_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                         const struct cr_cfgload_level *l)
{
    struct rp_tenant *t = obj;
    yaml_node_t *name = cr_cfgload_val(l, "name"), *value = cr_cfgload_val(l, "value");
    yaml_node_t *base = cr_cfgload_val(l, "baseline");
    const struct cr_cfgload_first *u;

    if (name != NULL) {
        if (!valid_value(t->name))
            ERR(c, name, "tenant name must be one line of text");
        else if ((u = cr_cfgload_seen_str(c, UQ_TENANT, t->name, name)) != NULL)
            ERR(c, name, "duplicate tenant '%s' (first defined at %lu:%lu)", t->name, u->line,
                u->col);
    }
    if (value != NULL && !valid_value(t->value))
        ERR(c, value, "'value' must be one line of text (it is sent as a header value)");
    if (value == NULL && !cr_cfgload_bad(l, "value") && t->name != NULL)
        t->value = cr_cfgload_strdup(c, t->name);
    if (base != NULL && t->baseline <= 0.0)
        ERR(c, base, "'baseline' must be a rate above zero (e.g. 50/s), got '%s'",
            cr_cfgload_str(base));
    if (t->nrequests == 0 && cr_cfgload_node(l, "requests") == NULL) {
        /* no templates: GET / */
        t->requests = calloc(1, sizeof(*t->requests));
        if (t->requests == NULL) {
            c->oom = true;
            return;
        }
        t->nrequests = 1;
        t->requests[0].method = cr_cfgload_strdup(c, "GET");
        t->requests[0].path = cr_cfgload_strdup(c, "/");
        t->requests[0].weight = 1;
    }
}

static void tenants_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                          const struct cr_cfgload_level *l)
{
    struct rp_tenants *t = obj;
    yaml_node_t *h = cr_cfgload_val(l, "header");

    if (h != NULL && !valid_token(t->header))
        ERR(c, h, "'header' must be an HTTP header name, got '%s'", t->header);
}

static void event_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                        const struct cr_cfgload_level *l)
{
    struct rp_event *e = obj;
    const struct rp_profile *p = prof_of(c);
    yaml_node_t *tn = cr_cfgload_val(l, "tenant"), *at = cr_cfgload_val(l, "at");
    int i;

    if (cr_cfgload_node(l, "factor") == NULL)
        ERR(c, map, "missing required key 'factor'");
    if (tn != NULL && e->tenant != NULL) {
        i = rp_profile_tenant(p, e->tenant);
        if (i < 0)
            ERR(c, tn, "event for tenant '%s', which is not in tenants.list", e->tenant);
        else
            e->tenant_index = (size_t)i;
    }
    if (at != NULL && p->duration_ms > 0 && e->at_ms >= p->duration_ms)
        WARN(c, at, "this event starts at or after the end of the run (duration %llu ms)",
             (unsigned long long)p->duration_ms);
}

static void phase_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                        const struct cr_cfgload_level *l)
{
    struct rp_phase *ph = obj;
    const struct rp_profile *p = prof_of(c);
    yaml_node_t *name = cr_cfgload_val(l, "name"), *end = cr_cfgload_val(l, "end");
    const struct cr_cfgload_first *u;

    if (name != NULL && (u = cr_cfgload_seen_str(c, UQ_PHASE, ph->name, name)) != NULL)
        ERR(c, name, "duplicate phase '%s' (first defined at %lu:%lu)", ph->name, u->line, u->col);
    if (end == NULL || cr_cfgload_val(l, "start") == NULL)
        return;
    if (ph->end_ms <= ph->start_ms)
        ERR(c, end, "a phase must end after it starts");
    else if (p->duration_ms > 0 && ph->end_ms > p->duration_ms)
        ERR(c, end, "the phase ends after the run (duration %llu ms)",
            (unsigned long long)p->duration_ms);
}

/* The host part of "host:port" / "[v6]:port", into buf. */
static void addr_host(const char *text, char *buf, size_t len)
{
    const char *end = text[0] == '[' ? strchr(text, ']') : strrchr(text, ':');
    size_t n = end != NULL ? (size_t)(end - text) : strlen(text);

    if (text[0] == '[' && n > 0) {
        text++;
        n--;
    }
    snprintf(buf, len, "%.*s", (int)n, text);
}

static bool is_ip_literal(const char *host)
{
    return strspn(host, "0123456789.") == strlen(host) || strchr(host, ':') != NULL;
}

static void target_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                         const struct cr_cfgload_level *l)
{
    struct rp_target *t = obj;
    yaml_node_t *one = cr_cfgload_node(l, "address"), *many = cr_cfgload_node(l, "addresses");
    char host[64];

    if (one != NULL && many != NULL) {
        ERR(c, many, "give 'address' or 'addresses', not both");
        return;
    }
    if (one == NULL && many == NULL) {
        ERR(c, map, "missing 'address' (HOST:PORT), or 'addresses' (a list of them)");
        return;
    }
    if (many != NULL && t->naddrs > MAX_TARGETS) {
        ERR(c, many, "'addresses' must list at most %d addresses", MAX_TARGETS);
    } else if (many != NULL && t->naddrs > 0 && !cr_cfgload_bad(l, "addresses")) {
        for (size_t i = 0; i < t->naddrs; i++)
            for (size_t j = 0; j < i; j++)
                if (t->addrs[i].len == t->addrs[j].len &&
                    memcmp(&t->addrs[i].ss, &t->addrs[j].ss, t->addrs[i].len) == 0)
                    ERR(c, cr_cfgload_seq_at(c, many, i),
                        "'addresses' lists %s twice: each address once", t->addrs[i].text);
        t->addr = t->addrs[0];
    } else if (one != NULL && t->addr.len > 0) {
        if ((t->addrs = calloc(1, sizeof(*t->addrs))) == NULL) {
            c->oom = true;
            return;
        }
        t->addrs[0] = t->addr;
        t->naddrs = 1;
    }
    if (!t->insecure && t->ca == NULL && !cr_cfgload_bad(l, "ca"))
        ERR(c, map,
            "missing 'ca' (the CA that signed the target's certificate), or set "
            "'insecure: true' to skip verification");
    if (cr_cfgload_val(l, "sni") != NULL && !valid_token(t->sni))
        ERR(c, cr_cfgload_val(l, "sni"), "'sni' must be a host name, got '%s'", t->sni);
    if (cr_cfgload_val(l, "authority") != NULL && !valid_value(t->authority))
        ERR(c, cr_cfgload_val(l, "authority"), "'authority' must be one line of text");
    if (t->addr.len == 0)
        return;
    addr_host(t->addr.text, host, sizeof(host));
    if (t->sni == NULL && !is_ip_literal(host))
        t->sni = cr_cfgload_strdup(c, host);
    if (t->authority == NULL)
        t->authority = cr_cfgload_strdup(c, t->sni != NULL ? t->sni : host);
}

static void caps_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                       const struct cr_cfgload_level *l)
{
    struct rp_caps *k = obj;
    yaml_node_t *rate = cr_cfgload_val(l, "rate");

    if (rate != NULL && k->rate <= 0.0)
        ERR(c, rate,
            "'rate' must be a finite rate (e.g. 5000/s): the cap is what keeps the "
            "load bounded");
    else if (rate != NULL && k->rate > RATE_CAP_MAX)
        ERR(c, rate, "'rate' must be at most %.0f/s (one process sends far less)", RATE_CAP_MAX);
}

static void top_check(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                      const struct cr_cfgload_level *l)
{
    struct rp_profile *p = obj;
    yaml_node_t *tn = cr_cfgload_node(l, "tenants");

    if ((load_of(c)->flags & RP_PROFILE_ACCESS_LOG) || cr_cfgload_bad(l, "tenants"))
        return;
    if (p->tenants.nlist == 0)
        ERR(c, tn != NULL ? tn : map,
            "no tenants: 'tenants.list' needs at least one tenant with a baseline rate "
            "(or replay an access log with --access-log)");
}

/* ------------------------------------------------------------ the schema */

/* clang-format off */
/* the profile's own key shapes, beside cfgload_keys.h's */
#define KUINTR(n, o, lo, hi)     {.name = n, .type = CR_CFGLOAD_UINT, .off = o, .min = lo, .max = hi, .flags = REQ}
#define KDURR(n, o, lo, hi)      {.name = n, .type = CR_CFGLOAD_DURATION, .off = o, .min = lo, .max = hi, .flags = REQ}
#define KRATE(n, o, fl, d)       {.name = n, .type = CR_CFGLOAD_RATE, .off = o, .flags = fl, .dflt = d}
#define KADDR(n, o, fl)          {.name = n, .type = CR_CFGLOAD_ADDR, .off = o, .flags = fl}
#define KCUSTOM(n, o, fn_, d)    {.name = n, .type = CR_CFGLOAD_CUSTOM, .off = o, .fn = fn_, .dflt = d}

static const char *const refusal_names[] = {"obey_retry_after", "retry_now", "give_up", NULL};
static const char *const arrival_names[] = {"uniform", "poisson", NULL};
static const char *const spread_names[] = {"round_robin", "hash", NULL};

#define OFF(f) offsetof(struct rp_template, f)
static const struct cr_cfgload_key template_keys[] = {
    KSTR   ("method",  OFF(method), 0, "GET"),
    KSTR   ("path",    OFF(path), REQ, NULL),
    KSIZE  ("body",    OFF(body), 0, 1ULL << 30, "0"),
    KCUSTOM("headers", 0, custom_headers, NULL),
    KUINT  ("weight",  OFF(weight), 1, 1000000, "1"),
};
#undef OFF

#define OFF(f) offsetof(struct rp_tenant, f)
static const struct cr_cfgload_key tenant_keys[] = {
    KSTR ("name",     OFF(name), REQ, NULL),
    KSTR ("value",    OFF(value), 0, NULL),
    KRATE("baseline", OFF(baseline), REQ, NULL),
    KLIST("requests", OFF(requests), OFF(nrequests), struct rp_template, 1, &template_table, 0),
};
#undef OFF

#define OFF(f) offsetof(struct rp_tenants, f)
static const struct cr_cfgload_key tenants_keys[] = {
    KSTR ("header", OFF(header), 0, "x-tenant-id"),
    KLIST("list",   OFF(list), OFF(nlist), struct rp_tenant, 0, &tenant_table, 0),
};
#undef OFF

#define OFF(f) offsetof(struct rp_event, f)
static const struct cr_cfgload_key event_keys[] = {
    KDURR  ("at",        OFF(at_ms), 0, MS_D),
    KSTR   ("tenant",    OFF(tenant), REQ, NULL),
    KCUSTOM("factor",    OFF(factor), custom_factor, NULL),
    KDUR   ("ramp",      OFF(ramp_ms), 0, MS_D, "0"),
    KDUR   ("hold",      OFF(hold_ms), 0, MS_D, "0"),
    KDUR   ("half_life", OFF(half_life_ms), 0, MS_D, "0"),
};
#undef OFF

#define OFF(f) offsetof(struct rp_phase, f)
static const struct cr_cfgload_key phase_keys[] = {
    KSTR ("name",  OFF(name), REQ, NULL),
    KDURR("start", OFF(start_ms), 0, MS_D),
    KDURR("end",   OFF(end_ms), 1, MS_D),
};
#undef OFF

#define OFF(f) offsetof(struct rp_target, f)
static const struct cr_cfgload_key target_keys[] = {
    KADDR  ("address",   OFF(addr), 0),
    {.name = "addresses", .type = CR_CFGLOAD_ADDRLIST, .off = OFF(addrs), .noff = OFF(naddrs), .min = 1},
    KENUM  ("spread",    OFF(spread), spread_names, "round_robin"),
    KSTR   ("sni",       OFF(sni), 0, NULL),
    KSTR   ("authority", OFF(authority), 0, NULL),
    KPATH  ("ca",        OFF(ca), READ),
    KBOOL  ("insecure",  OFF(insecure), "false"),
    KCUSTOM("http2",     OFF(http2), custom_share, "1"),
};
#undef OFF

#define OFF(f) offsetof(struct rp_caps, f)
static const struct cr_cfgload_key caps_keys[] = {
    KRATE ("rate",        OFF(rate), REQ, NULL),
    KUINTR("connections", OFF(connections), 1, 1000000),
};
#undef OFF

#define OFF(f) offsetof(struct rp_client, f)
static const struct cr_cfgload_key client_keys[] = {
    KUINT  ("requests_per_connection", OFF(requests_per_connection), 1, 1000000, "1"),
    KCUSTOM("resume",                  OFF(resume), custom_share, "0"),
    KENUM  ("on_refusal",              OFF(on_refusal), refusal_names, "obey_retry_after"),
    KCUSTOM("retry_jitter",            OFF(retry_jitter), custom_share, "0.2"),
    KUINT  ("max_retries",             OFF(max_retries), 0, 100, "3"),
    KDUR   ("retry_after_default",     OFF(retry_after_default_ms), 0, MS_H, "1s"),
    KDUR   ("timeout",                 OFF(timeout_ms), 10, MS_H, "10s"),
    KDUR   ("idle",                    OFF(idle_ms), 0, MS_H, "1s"),
    KBOOL  ("request_id",              OFF(request_id), "true"),
};
#undef OFF

#define OFF(f) offsetof(struct rp_profile, f)
static const struct cr_cfgload_key top_keys[] = {
    KSTR ("name",     OFF(name), 0, NULL),
    KDURR("duration", OFF(duration_ms), 100, MS_D),
    KUINT("seed",     OFF(seed), 0, UINT32_MAX, "1"),
    KENUM("arrivals", OFF(arrivals), arrival_names, "uniform"),
    KMAP ("target",   OFF(target), &target_table, REQ),
    KMAP ("caps",     OFF(caps), &caps_table, REQ),
    KMAP ("client",   OFF(client), &client_table, 0),
    KMAP ("tenants",  OFF(tenants), &tenants_table, 0),
    KLIST("events",   OFF(events), OFF(nevents), struct rp_event, 0, &event_table, 0),
    KLIST("phases",   OFF(phases), OFF(nphases), struct rp_phase, 0, &phase_table, 0),
};
#undef OFF

static const struct cr_cfgload_table template_table = TABLE(template_keys, NULL, template_check);
static const struct cr_cfgload_table tenant_table = TABLE(tenant_keys, NULL, tenant_check);
static const struct cr_cfgload_table tenants_table = TABLE(tenants_keys, NULL, tenants_check);
static const struct cr_cfgload_table event_table = TABLE(event_keys, NULL, event_check);
static const struct cr_cfgload_table phase_table = TABLE(phase_keys, NULL, phase_check);
static const struct cr_cfgload_table target_table = TABLE(target_keys, NULL, target_check);
static const struct cr_cfgload_table caps_table = TABLE(caps_keys, NULL, caps_check);
static const struct cr_cfgload_table client_table = TABLE(client_keys, NULL, NULL);
static const struct cr_cfgload_table top_table = TABLE(top_keys, NULL, top_check);
/* clang-format on */

/* ------------------------------------------------------------ derived values */

/* Appends a derived phase [start, end) unless it is empty. */
static int add_phase(struct rp_phase *ph, size_t *n, const char *name, uint64_t start, uint64_t end)
{
    if (end <= start)
        return 0;
    ph[*n].name = strdup(name);
    if (ph[*n].name == NULL)
        return CR_ENOMEM;
    ph[*n].start_ms = start;
    ph[*n].end_ms = end;
    (*n)++;
    return 0;
}

/* baseline / surge / decay from the events, or one "steady" phase. */
static int derive_phases(struct rp_profile *p)
{
    uint64_t first = UINT64_MAX, peak = 0, dur = p->duration_ms;
    size_t n = 0;
    int rc = 0;

    p->phases = calloc(3, sizeof(*p->phases));
    if (p->phases == NULL)
        return CR_ENOMEM;
    for (size_t i = 0; i < p->nevents; i++) {
        const struct rp_event *e = &p->events[i];
        first = CR_MIN(first, e->at_ms);
        peak = CR_MAX(peak, e->at_ms + e->ramp_ms + e->hold_ms);
    }
    if (first >= dur) {
        rc = add_phase(p->phases, &n, "steady", 0, dur);
    } else {
        peak = CR_MIN(CR_MAX(peak, first + 1), dur);
        rc = add_phase(p->phases, &n, "baseline", 0, first);
        if (rc == 0)
            rc = add_phase(p->phases, &n, "surge", first, peak);
        if (rc == 0)
            rc = add_phase(p->phases, &n, "decay", peak, dur);
    }
    p->nphases = n;
    return rc;
}

/* The default name: the file name without directory and extension. */
static char *name_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot;

    base = base != NULL ? base + 1 : path;
    dot = strrchr(base, '.');
    return strndup(base, dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base));
}

/* ------------------------------------------------------------ loading */

static void free_headers(struct rp_profile *p)
{
    for (size_t i = 0; p->tenants.list != NULL && i < p->tenants.nlist; i++) {
        struct rp_tenant *t = &p->tenants.list[i];
        for (size_t j = 0; t->requests != NULL && j < t->nrequests; j++) {
            struct rp_template *r = &t->requests[j];
            for (size_t h = 0; h < r->nheaders; h++) {
                free(r->hname[h]);
                free(r->hvalue[h]);
            }
            free(r->hname);
            free(r->hvalue);
            r->hname = r->hvalue = NULL;
            r->nheaders = 0;
        }
    }
}

void rp_profile_free(struct rp_profile *p)
{
    if (p == NULL)
        return;
    free_headers(p);
    cr_cfgload_free(&top_table, p);
    free(p->path);
    free(p);
}

static int load_text(const char *name, const char *base_dir, const char *text, size_t len,
                     unsigned flags, struct rp_profile **out, struct cr_diag *diag)
{
    struct load ld = {.flags = flags};
    struct cr_cfgload c;
    struct rp_profile *p;
    bool oom = false;

    cr_cfgload_init(&c, name, base_dir, &ld);
    c.no_file_checks = (flags & RP_PROFILE_NO_FILES) != 0;
    p = cr_cfgload_parse(&c, text, len, &top_table, sizeof(*p));
    cr_cfgload_finish(&c, diag);
    if (diag->nerrors > 0) {
        rp_profile_free(p);
        return CR_ECONFIG;
    }
    lower(p->tenants.header);
    if ((p->path = strdup(name)) == NULL)
        oom = true;
    if (!oom && p->name == NULL && (p->name = name_from_path(name)) == NULL)
        oom = true;
    if (!oom && p->nphases == 0 && derive_phases(p) != 0)
        oom = true;
    if (oom) {
        cr_diag_add(diag, true, "%s: error: out of memory", name);
        rp_profile_free(p);
        return CR_ECONFIG;
    }
    *out = p;
    return 0;
}

int rp_profile_load(const char *path, unsigned flags, struct rp_profile **out, struct cr_diag *diag)
{
    char *text = NULL, *real = NULL, *slash;
    size_t len = 0;
    int rc;

    memset(diag, 0, sizeof(*diag));
    *out = NULL;
    if (cr_read_file(path, MAX_FILE_SIZE, &text, &len) != 0) {
        cr_diag_add(diag, true, "%s: error: cannot read the profile: %s", path, strerror(errno));
        return CR_ECONFIG;
    }
    real = realpath(path, NULL);
    slash = real != NULL ? strrchr(real, '/') : NULL;
    if (slash != NULL)
        *(slash == real ? slash + 1 : slash) = '\0';
    rc = load_text(path, real, text, len, flags, out, diag);
    free(real);
    free(text);
    return rc;
}

int rp_profile_load_string(const char *name, const char *text, unsigned flags,
                           struct rp_profile **out, struct cr_diag *diag)
{
    memset(diag, 0, sizeof(*diag));
    *out = NULL;
    return load_text(name, NULL, text, strlen(text), flags, out, diag);
}

size_t rp_profile_pick(const struct rp_target *t, uint64_t conn, uint32_t seed)
{
    uint64_t x;

    if (t->spread == RP_SPREAD_ROUND_ROBIN)
        return (size_t)((conn - 1) % t->naddrs);
    x = conn ^ ((uint64_t)seed << 32); /* splitmix64's finaliser */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t)(x % t->naddrs);
}

int rp_profile_tenant(const struct rp_profile *p, const char *name)
{
    for (size_t i = 0; p->tenants.list != NULL && i < p->tenants.nlist; i++)
        if (p->tenants.list[i].name != NULL && strcmp(p->tenants.list[i].name, name) == 0)
            return (int)i;
    return -1;
}
