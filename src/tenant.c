/* tenant.c - the tenant table: exact-match and longest-prefix lookups over
 * small open-addressing hash tables built once from the config. */
#include "tenant.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ------------------------------------------------------------ string map */

/* Maps byte strings to a uint32_t. Keys are copied. Load factor <= 1/2, so
 * probe sequences stay short whatever is looked up: the table's contents
 * come from the config, never from requests. */
struct slot {
    char *key; /* NULL = empty */
    size_t len;
    uint64_t hash;
    uint32_t val;
};

struct strmap {
    struct slot *slots;
    size_t mask; /* capacity - 1, capacity a power of two */
    size_t n;
    size_t *lens; /* distinct key lengths, longest first (prefix lookups) */
    size_t nlens;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    return h ^ (h >> 32);
}

/* Sizes the map for up to `count` keys. */
static int map_init(struct strmap *m, size_t count)
{
    size_t cap = 8;

    while (cap < count * 2)
        cap *= 2;
    m->slots = calloc(cap, sizeof(*m->slots));
    m->lens = calloc(count + 1, sizeof(*m->lens));
    if (m->slots == NULL || m->lens == NULL)
        return CR_ENOMEM;
    m->mask = cap - 1;
    return 0;
}

static void map_free(struct strmap *m)
{
    for (size_t i = 0; m->slots != NULL && i <= m->mask; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m->lens);
    memset(m, 0, sizeof(*m));
}

static const struct slot *map_find(const struct strmap *m, const char *s, size_t len)
{
    uint64_t h;

    if (m->n == 0)
        return NULL;
    h = hash_bytes(s, len);
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        const struct slot *sl = &m->slots[i];
        if (sl->key == NULL)
            return NULL;
        if (sl->hash == h && sl->len == len && memcmp(sl->key, s, len) == 0)
            return sl;
    }
}

/* Adds key[0..len) -> val. CR_EINVAL if the key is already there (never
 * with a validated config), CR_ENOMEM. The map was sized by map_init. */
static int map_put(struct strmap *m, const char *key, size_t len, uint32_t val)
{
    uint64_t h = hash_bytes(key, len);
    size_t i, j;
    struct slot *sl;

    if (map_find(m, key, len) != NULL)
        return CR_EINVAL;
    for (i = (size_t)h & m->mask; m->slots[i].key != NULL; i = (i + 1) & m->mask)
        ;
    sl = &m->slots[i];
    sl->key = malloc(len + 1);
    if (sl->key == NULL)
        return CR_ENOMEM;
    memcpy(sl->key, key, len);
    sl->key[len] = '\0';
    sl->len = len;
    sl->hash = h;
    sl->val = val;
    m->n++;
    /* Keep the distinct lengths sorted, longest first (insertion sort: the
     * table is built once and holds config entries only). */
    for (j = 0; j < m->nlens && m->lens[j] > len; j++)
        ;
    if (j == m->nlens || m->lens[j] != len) {
        memmove(&m->lens[j + 1], &m->lens[j], (m->nlens - j) * sizeof(*m->lens));
        m->lens[j] = len;
        m->nlens++;
    }
    return 0;
}

/* The value of the longest key that is a path prefix of s: s up to its
 * query, cut at a segment boundary (the key ends in '/', or is followed in
 * s by '/' or nothing), if any. */
static const struct slot *map_longest_prefix(const struct strmap *m, const char *s)
{
    size_t len = strcspn(s, "?#");
    const struct slot *sl;

    for (size_t i = 0; i < m->nlens; i++) {
        size_t l = m->lens[i];
        if (l > len || l == 0)
            continue;
        if (l < len && s[l] != '/' && s[l - 1] != '/')
            continue; /* the cut falls inside a segment */
        if ((sl = map_find(m, s, l)) != NULL)
            return sl;
    }
    return NULL;
}

/* ------------------------------------------------------------ paths */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Percent-encoding normalisation of p[0..len) in place; the new length. */
static size_t decode_unreserved(char *p, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;

    for (size_t r = 0; r < len; r++) {
        int hi = r + 2 < len && p[r] == '%' ? hexval(p[r + 1]) : -1;
        int lo = hi >= 0 ? hexval(p[r + 2]) : -1;
        if (lo < 0) {
            p[w++] = p[r];
            continue;
        }
        int c = hi * 16 + lo;
        if (unreserved(c)) {
            p[w++] = (char)c;
        } else {
            p[w++] = '%';
            p[w++] = hex[hi];
            p[w++] = hex[lo];
        }
        r += 2;
    }
    return w;
}

/* RFC 3986 5.2.4 on an absolute path p[0..len) (p[0] == '/'), in place,
 * segment by segment: the output never runs ahead of the input. */
static size_t remove_dot_segments(char *p, size_t len)
{
    size_t w = 0;

    for (size_t i = 0; i < len;) {
        size_t j = i + 1; /* p[i] == '/': the segment is p[i+1..j) */
        while (j < len && p[j] != '/')
            j++;
        size_t seg = j - i - 1;
        bool dot = seg == 1 && p[i + 1] == '.';
        bool dotdot = seg == 2 && p[i + 1] == '.' && p[i + 2] == '.';
        if (dot || dotdot) {
            while (dotdot && w > 0 && p[--w] != '/')
                ; /* drops the last output segment with its '/' */
            if (j == len)
                p[w++] = '/'; /* "/a/." and "/a/b/.." end in a directory */
        } else {
            memmove(p + w, p + i, j - i);
            w += j - i;
        }
        i = j;
    }
    return w;
}

/* Whether the path part (before '?' or '#') of target may change: it has
 * a '%' or a segment that begins with '.' ("/." covers "." and ".."). Most
 * paths have neither, and go through one strcspn. *plen gets the path
 * part's length when the answer is no. */
static bool may_change(const char *target, size_t *plen)
{
    for (const char *p = target;;) {
        p += strcspn(p, "%.?#");
        if (*p == '%' || (*p == '.' && p[-1] == '/'))
            return true;
        if (*p != '.') { /* '?', '#' or the end */
            *plen = (size_t)(p - target);
            return false;
        }
        p++; /* a '.' inside a segment ("/a.json") */
    }
}

size_t cr_tenants_normalize_path(char *target)
{
    size_t plen;

    if (target[0] != '/')
        return strlen(target);
    if (!may_change(target, &plen))
        return plen + strlen(target + plen); /* in its normal form already */
    size_t len = strlen(target);
    plen = strcspn(target, "?#");
    size_t n = remove_dot_segments(target, decode_unreserved(target, plen));
    memmove(target + n, target + plen, len - plen + 1); /* the query and the NUL */
    return n + len - plen;
}

/* ------------------------------------------------------------ the table */

/* Longest host name (RFC 1035) plus a trailing dot. */
#define HOST_MAX 254

struct cr_tenants {
    enum cr_tenant_by by;
    struct cr_tenant *list; /* [0] = default */
    uint32_t n;
    struct strmap ids;       /* name, api key, SNI name or path prefix -> index */
    struct strmap wildcards; /* by sni: "parent" of "*.parent" -> index */
    struct strmap routes;    /* path prefix -> enum cr_priority */
};

static void lower(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] - 'A' + 'a' : src[i]);
}

static int add_sni(struct cr_tenants *t, const char *name, uint32_t index)
{
    char buf[HOST_MAX + 1];
    size_t len = strlen(name);

    if (len > HOST_MAX)
        return CR_EINVAL;
    lower(buf, name, len);
    if (len > 2 && buf[0] == '*' && buf[1] == '.')
        return map_put(&t->wildcards, buf + 2, len - 2, index);
    return map_put(&t->ids, buf, len, index);
}

/* Fills the id map for the identification mode. */
static int add_ids(struct cr_tenants *t, const struct cr_cfg_tenants *cfg)
{
    size_t count = 0;
    int rc;

    for (size_t i = 0; i < cfg->nlist; i++)
        count += cfg->by == CR_TENANT_BY_API_KEY ? cfg->list[i].napi_keys : cfg->list[i].nmatch;
    if ((rc = map_init(&t->ids, CR_MAX(count, cfg->nlist))) != 0 ||
        (rc = map_init(&t->wildcards, count)) != 0)
        return rc;
    for (size_t i = 0; i < cfg->nlist; i++) {
        const struct cr_cfg_tenant *ct = &cfg->list[i];
        uint32_t index = (uint32_t)i + 1;

        if (cfg->by == CR_TENANT_BY_HEADER && ct->name != NULL)
            rc = map_put(&t->ids, ct->name, strlen(ct->name), index);
        for (size_t j = 0; rc == 0 && cfg->by == CR_TENANT_BY_API_KEY && j < ct->napi_keys; j++)
            if (ct->api_keys[j] != NULL)
                rc = map_put(&t->ids, ct->api_keys[j], strlen(ct->api_keys[j]), index);
        for (size_t j = 0; rc == 0 && cfg->by == CR_TENANT_BY_SNI && j < ct->nmatch; j++)
            if (ct->match[j] != NULL)
                rc = add_sni(t, ct->match[j], index);
        for (size_t j = 0; rc == 0 && cfg->by == CR_TENANT_BY_PATH_PREFIX && j < ct->nmatch; j++)
            if (ct->match[j] != NULL)
                rc = map_put(&t->ids, ct->match[j], strlen(ct->match[j]), index);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int add_routes(struct cr_tenants *t, const struct cr_cfg_tenants *cfg)
{
    int rc = map_init(&t->routes, cfg->nroutes);

    for (size_t i = 0; rc == 0 && i < cfg->nroutes; i++) {
        const struct cr_cfg_route *r = &cfg->routes[i];
        if (r->path_prefix != NULL)
            rc = map_put(&t->routes, r->path_prefix, strlen(r->path_prefix), (uint32_t)r->priority);
    }
    return rc;
}

int cr_tenants_new(const struct cr_cfg_tenants *cfg, struct cr_tenants **out)
{
    struct cr_tenants *t = NULL;
    int rc = CR_EINVAL;

    if (out == NULL)
        return CR_EINVAL;
    *out = NULL;
    if (cfg == NULL || cfg->nlist >= UINT32_MAX)
        return CR_EINVAL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return CR_ENOMEM;
    t->by = cfg->by;
    t->n = (uint32_t)cfg->nlist + 1;
    t->list = calloc(t->n, sizeof(*t->list));
    if (t->list == NULL) {
        rc = CR_ENOMEM;
        goto fail;
    }
    t->list[0].name = "default";
    t->list[0].limits = cfg->defaults;
    t->list[0].global = cfg->global.enabled && cfg->global.all;
    for (uint32_t i = 1; i < t->n; i++) {
        const char *name = cfg->list[i - 1].name;
        if (name == NULL || (t->list[i].name = strdup(name)) == NULL) {
            rc = name == NULL ? CR_EINVAL : CR_ENOMEM;
            goto fail;
        }
        t->list[i].index = i;
        t->list[i].limits = cfg->list[i - 1].limits;
        t->list[i].global = cfg->global.enabled && (cfg->global.all || cfg->list[i - 1].global);
    }
    if ((rc = add_ids(t, cfg)) != 0 || (rc = add_routes(t, cfg)) != 0)
        goto fail;
    *out = t;
    return 0;

fail:
    cr_tenants_free(t);
    return rc;
}

void cr_tenants_free(struct cr_tenants *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 1; t->list != NULL && i < t->n; i++)
        free((char *)t->list[i].name);
    free(t->list);
    map_free(&t->ids);
    map_free(&t->wildcards);
    map_free(&t->routes);
    free(t);
}

static const struct slot *find_sni(const struct cr_tenants *t, const char *sni)
{
    char buf[HOST_MAX + 1];
    size_t len = strlen(sni);
    const struct slot *sl;
    const char *dot;

    if (len > 0 && sni[len - 1] == '.')
        len--;
    if (len == 0 || len > HOST_MAX)
        return NULL;
    lower(buf, sni, len);
    if ((sl = map_find(&t->ids, buf, len)) != NULL)
        return sl;
    dot = memchr(buf, '.', len);
    if (dot == NULL || dot == buf || (size_t)(dot - buf) + 1 >= len)
        return NULL;
    return map_find(&t->wildcards, dot + 1, len - (size_t)(dot - buf) - 1);
}

const struct cr_tenant *cr_tenants_identify(const struct cr_tenants *t,
                                            const struct cr_tenant_key *k)
{
    const struct slot *sl = NULL;

    if (k == NULL)
        return &t->list[0];
    switch (t->by) {
    case CR_TENANT_BY_HEADER:
    case CR_TENANT_BY_API_KEY:
        if (k->header_value != NULL)
            sl = map_find(&t->ids, k->header_value, strlen(k->header_value));
        break;
    case CR_TENANT_BY_SNI:
        if (k->sni != NULL)
            sl = find_sni(t, k->sni);
        break;
    case CR_TENANT_BY_PATH_PREFIX:
        if (k->path != NULL)
            sl = map_longest_prefix(&t->ids, k->path);
        break;
    case CR_TENANT_BY_NONE:
    default:
        break;
    }
    return sl != NULL && sl->val < t->n ? &t->list[sl->val] : &t->list[0];
}

uint32_t cr_tenants_count(const struct cr_tenants *t)
{
    return t->n;
}

const struct cr_tenant *cr_tenants_at(const struct cr_tenants *t, uint32_t index)
{
    return index < t->n ? &t->list[index] : NULL;
}

enum cr_priority cr_tenants_priority(const struct cr_tenants *t, const char *path)
{
    const struct slot *sl;

    if (path == NULL || (sl = map_longest_prefix(&t->routes, path)) == NULL)
        return CR_PRIO_NORMAL;
    return (enum cr_priority)sl->val;
}
