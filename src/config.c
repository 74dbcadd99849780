/* config.c - YAML to struct cr_config, driven by one typed table per mapping.
 *
 * Each mapping level of the schema is a struct cfg_table: a list of keys with
 * a type, an offset into the level's C struct, a range, enum names, a default
 * written the way a user would write it, and a sub-table for nested mappings
 * and lists of mappings. One walker (parse_map) uses the tables to reject
 * unknown and duplicate keys, convert and range-check values, apply defaults
 * and report missing keys; a table's check hook then does the cross-key rules.
 * The same tables drive cr_config_free, so every string is freed exactly once.
 *
 * Keys are processed in table order, not file order (so tenants.defaults is
 * known before tenants.list whatever the file says); messages are sorted by
 * position at the end so that they still read top to bottom. */
#include "ac_config.h"

#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <yaml.h>

#include "common.h"
#include "units.h"

#define MAX_KEYS 16 /* keys in the largest mapping of the schema */
#define MAX_DEPTH 8 /* nesting of the schema, with room to spare */
#define MAX_FILE_SIZE (16u << 20)
#define ADMIN_DEFAULT_ADDR "127.0.0.1:8081"

_Static_assert(sizeof(enum cr_proto) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cr_log_level) == sizeof(int), "enums are stored as int");

/* ------------------------------------------------------------ types */

enum cfg_type {
    KT_STR,      /* char *, non-empty */
    KT_PATH,     /* char *, resolved against the file's directory */
    KT_UINT,     /* uint32_t, plain decimal, min..max */
    KT_SIZE,     /* uint64_t bytes, min..max */
    KT_DURATION, /* uint64_t milliseconds, min..max */
    KT_RATE,     /* double per second, 0 = unlimited */
    KT_BOOL,     /* bool */
    KT_ENUM,     /* int-sized enum; the value is the index in names */
    KT_ADDR,     /* struct cr_addr */
    KT_MAP,      /* nested struct described by sub */
    KT_LIST,     /* array of sub structs: pointer at off, size_t count at noff */
    KT_STRLIST,  /* char ** at off, count at noff */
    KT_ADDRLIST, /* struct cr_addr * at off, count at noff */
    KT_CUSTOM,   /* fn does it all, including the default */
};

enum {
    K_REQUIRED = 1 << 0,
    K_READABLE = 1 << 1,   /* KT_PATH: the file must be readable now */
    K_ABSENT_OFF = 1 << 2, /* KT_MAP: when absent, leave the struct zeroed */
    K_WILDCARD = 1 << 3,   /* KT_ADDR: "*" is allowed (listening addresses) */
};

struct ctx;
struct cfg_key;
struct cfg_level;

/* Custom keys: n is the value node, NULL when the key is absent. */
typedef void (*cfg_custom_cb)(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *obj);
typedef void (*cfg_init_cb)(struct ctx *c, void *obj);
typedef void (*cfg_check_cb)(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l);

struct cfg_table;

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t off;
    size_t noff;       /* lists: offset of the size_t count */
    size_t size;       /* KT_LIST: element size */
    uint64_t min, max; /* numbers: range; lists: minimum entries */
    unsigned flags;
    const char *dflt;         /* default, as written in a file */
    const char *const *names; /* KT_ENUM, NULL-terminated */
    const struct cfg_table *sub;
    cfg_custom_cb fn;
};

struct cfg_table {
    const struct cfg_key *keys;
    size_t nkeys;
    cfg_init_cb init;   /* before any key, e.g. inheritance */
    cfg_check_cb check; /* after every key, when the mapping is in the file */
};

/* One mapping being parsed: which node each key of its table got. */
struct cfg_level {
    const struct cfg_table *t;
    yaml_node_t *key[MAX_KEYS];
    yaml_node_t *val[MAX_KEYS];
    bool bad[MAX_KEYS]; /* the value was reported as an error */
};

struct msg {
    unsigned long line, col;
    size_t seq;
    char *text;
};

/* Values that must be unique, with where they were first seen. */
enum uniq_kind {
    UQ_LISTENER_NAME,
    UQ_LISTENER_ADDR,
    UQ_UPSTREAM_ADDR,
    UQ_TENANT_NAME,
    UQ_API_KEY,
    UQ_MATCH,
    UQ_ROUTE,
};

struct uniq {
    enum uniq_kind kind;
    void *key;
    size_t len;
    unsigned long line, col;
};

struct ctx {
    const char *name;     /* FILE in messages */
    const char *base_dir; /* relative paths are resolved against it; NULL = as is */
    yaml_document_t *doc;
    struct cr_config *cfg;
    struct msg *msgs;
    size_t nmsgs, capmsgs, nerrors;
    struct uniq *uniq;
    size_t nuniq, capuniq;
    const struct cfg_level *levels[MAX_DEPTH];
    size_t depth;
    size_t item;  /* index of the list entry being parsed */
    SSL_CTX *ssl; /* to check cipher strings, made on first use */
    bool oom;
};

/* The tables, defined at the end with the schema. */
static const struct cfg_table log_table, cert_table, tls_server_table, listener_table,
    upstream_tls_table, upstream_table, http_table, limits_table, tenant_table, route_table,
    tenants_table, admin_table, top_table;

/* ------------------------------------------------------------ diagnostics */

static void vreport(struct ctx *c, const yaml_mark_t *m, bool error, const char *fmt, va_list ap)
{
    unsigned long line = m != NULL ? (unsigned long)m->line + 1 : 1;
    unsigned long col = m != NULL ? (unsigned long)m->column + 1 : 1;
    char *body = NULL, *text = NULL;

    if (error)
        c->nerrors++;
    if (vasprintf(&body, fmt, ap) < 0)
        goto fail;
    if (asprintf(&text, "%s:%lu:%lu: %s: %s", c->name, line, col, error ? "error" : "warning",
                 body) < 0)
        goto fail;
    if (c->nmsgs == c->capmsgs) {
        size_t cap = c->capmsgs ? c->capmsgs * 2 : 16;
        struct msg *m2 = realloc(c->msgs, cap * sizeof(*m2));
        if (m2 == NULL)
            goto fail;
        c->msgs = m2;
        c->capmsgs = cap;
    }
    c->msgs[c->nmsgs] = (struct msg){line, col, c->nmsgs, text};
    c->nmsgs++;
    free(body);
    return;
fail:
    c->oom = true;
    free(body);
    free(text);
}

static void report(struct ctx *c, const yaml_mark_t *m, bool error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* m NULL = the start of the file. */
static void report(struct ctx *c, const yaml_mark_t *m, bool error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(c, m, error, fmt, ap);
    va_end(ap);
}

static const yaml_mark_t *mark_of(const yaml_node_t *n)
{
    return n != NULL ? &n->start_mark : NULL;
}

#define ERR(c, n, ...) report((c), mark_of(n), true, __VA_ARGS__)
#define WARN(c, n, ...) report((c), mark_of(n), false, __VA_ARGS__)

static int msg_cmp(const void *a, const void *b)
{
    const struct msg *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the messages, sorted by position, into diag. */
static void diag_take(struct ctx *c, struct cr_diag *d)
{
    if (c->nmsgs > 1)
        qsort(c->msgs, c->nmsgs, sizeof(*c->msgs), msg_cmp);
    d->msgs = calloc(c->nmsgs + 1, sizeof(char *));
    if (d->msgs == NULL) {
        for (size_t i = 0; i < c->nmsgs; i++)
            free(c->msgs[i].text);
        c->nmsgs = 0;
        c->oom = true;
    }
    for (size_t i = 0; i < c->nmsgs; i++)
        d->msgs[i] = c->msgs[i].text;
    d->nmsgs = c->nmsgs;
    d->nerrors = c->nerrors;
    if (c->oom && d->msgs != NULL) {
        d->msgs[d->nmsgs] = NULL;
        if (asprintf(&d->msgs[d->nmsgs], "%s: error: out of memory", c->name) >= 0)
            d->nmsgs++;
    }
    if (c->oom)
        d->nerrors++;
    free(c->msgs);
    c->msgs = NULL;
    c->nmsgs = 0;
}

void cr_diag_free(struct cr_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nmsgs; i++)
        free(d->msgs[i]);
    free(d->msgs);
    d->msgs = NULL;
    d->nmsgs = 0;
    d->nerrors = 0;
}

void cr_diag_add(struct cr_diag *d, bool is_error, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    char **msgs = n < 0 ? NULL : realloc(d->msgs, (d->nmsgs + 2) * sizeof(char *));
    if (!msgs) {
        free(n < 0 ? NULL : text);
        d->nerrors += is_error;
        return;
    }
    d->msgs = msgs;
    d->msgs[d->nmsgs++] = text;
    d->msgs[d->nmsgs] = NULL;
    d->nerrors += is_error;
}

void cr_diag_print(const struct cr_diag *d, FILE *f)
{
    for (size_t i = 0; i < d->nmsgs; i++)
        fprintf(f, "%s\n", d->msgs[i]);
}

/* ------------------------------------------------------------ small helpers */

static char *xstrdup(struct ctx *c, const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        c->oom = true;
    return p;
}

static void set_str(void *field, char *s)
{
    char **p = field;

    free(*p);
    *p = s;
}

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* "", "~" and "null" written plainly are YAML's null. */
static bool is_null(const yaml_node_t *n)
{
    const char *s;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = sval(n);
    return *s == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

static bool is_value(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && !is_null(n);
}

/* How a node that is not what was expected looks, for "got %s". */
static const char *got(const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (is_null(n))
        return *sval(n) == '\0' ? "an empty value" : "null";
    if (strlen(sval(n)) > 60)
        snprintf(buf, len, "'%.57s...'", sval(n));
    else
        snprintf(buf, len, "'%s'", sval(n));
    return buf;
}

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *seq_at(struct ctx *c, const yaml_node_t *n, size_t i)
{
    return yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
}

static void *field_at(void *obj, size_t off)
{
    return (char *)obj + off;
}

static size_t *count_at(void *obj, const struct cfg_key *k)
{
    return (size_t *)field_at(obj, k->noff);
}

static int key_index(const struct cfg_table *t, const char *name)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        if (strcmp(t->keys[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* The value node of key `name` in level l, NULL when absent or bad. */
static yaml_node_t *good_val(const struct cfg_level *l, const char *name)
{
    int i = key_index(l->t, name);

    assert(i >= 0);
    return l->bad[i] ? NULL : l->val[i];
}

/* The value node of key `name` in level l, NULL when absent. */
static yaml_node_t *any_val(const struct cfg_level *l, const char *name)
{
    int i = key_index(l->t, name);

    assert(i >= 0);
    return l->val[i];
}

static bool key_bad(const struct cfg_level *l, const char *name)
{
    int i = key_index(l->t, name);

    assert(i >= 0);
    return l->bad[i];
}

/* Returns the first occurrence of an equal key, or NULL after recording
 * this one at node n's position. */
static const struct uniq *uniq_note(struct ctx *c, enum uniq_kind kind, const void *key, size_t len,
                                    const yaml_node_t *n)
{
    struct uniq *u;

    for (size_t i = 0; i < c->nuniq; i++) {
        u = &c->uniq[i];
        if (u->kind == kind && u->len == len && memcmp(u->key, key, len) == 0)
            return u;
    }
    if (c->nuniq == c->capuniq) {
        size_t cap = c->capuniq ? c->capuniq * 2 : 32;
        u = realloc(c->uniq, cap * sizeof(*u));
        if (u == NULL)
            goto fail;
        c->uniq = u;
        c->capuniq = cap;
    }
    u = &c->uniq[c->nuniq];
    u->key = malloc(len ? len : 1);
    if (u->key == NULL)
        goto fail;
    memcpy(u->key, key, len);
    u->kind = kind;
    u->len = len;
    u->line = n != NULL ? (unsigned long)n->start_mark.line + 1 : 0;
    u->col = n != NULL ? (unsigned long)n->start_mark.column + 1 : 0;
    c->nuniq++;
    return NULL;
fail:
    c->oom = true;
    return NULL;
}

static const struct uniq *uniq_str(struct ctx *c, enum uniq_kind kind, const char *s,
                                   const yaml_node_t *n)
{
    return uniq_note(c, kind, s, strlen(s), n);
}

/* Optimal string alignment distance, case-insensitive; big for long words. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[33][33];

    if (la > 32 || lb > 32)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t v = CR_MIN(d[i - 1][j] + 1, d[i][j - 1] + 1);
            v = CR_MIN(v, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 &&
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]))
                v = CR_MIN(v, d[i - 2][j - 2] + 1);
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* The key valid here that `name` is most likely a typo of, or NULL. */
static const char *suggest(const struct cfg_table *t, const char *name)
{
    const char *best = NULL;
    size_t bestd = 3, len = strlen(name);

    for (size_t i = 0; i < t->nkeys; i++) {
        size_t dist = edit_distance(name, t->keys[i].name);
        if (dist < bestd) {
            best = t->keys[i].name;
            bestd = dist;
        }
    }
    for (size_t i = 0; best == NULL && len >= 2 && i < t->nkeys; i++) {
        const char *k = t->keys[i].name;
        if (strncasecmp(k, name, len) == 0 || strncasecmp(name, k, strlen(k)) == 0)
            best = k;
    }
    return best;
}

static void unknown_key(struct ctx *c, const struct cfg_table *t, const yaml_node_t *kn)
{
    const char *s = suggest(t, sval(kn));
    char list[512] = "";
    size_t used = 0;

    if (s != NULL) {
        ERR(c, kn, "unknown key '%s' (did you mean '%s'?)", sval(kn), s);
        return;
    }
    for (size_t i = 0; i < t->nkeys && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 t->keys[i].name);
    ERR(c, kn, "unknown key '%s' (valid keys here: %s)", sval(kn), list);
}

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

/* ------------------------------------------------------------ addresses */

static int resolve_host(const char *host, bool numeric, struct cr_addr *a, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = numeric ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = numeric ? AI_NUMERICHOST : 0;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        if (numeric)
            snprintf(err, errlen, "invalid IPv6 address '%s'", host);
        else
            snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return CR_EINVAL;
    }
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    a->len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;

    if (*s == '\0' || strlen(s) > 5)
        return CR_EINVAL;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return CR_EINVAL;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v < 1 || v > 65535)
        return CR_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* "HOST:PORT", "[V6]:PORT" or (wildcard) "*:PORT" into a. */
static int addr_parse(const char *text, bool wildcard, struct cr_addr *a, char *err, size_t errlen)
{
    char host[sizeof(a->text)];
    const char *colon, *end;
    bool bracket = text[0] == '[';
    uint16_t port;
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

    memset(a, 0, sizeof(*a));
    if (strlen(text) >= sizeof(a->text)) {
        snprintf(err, errlen, "too long (at most %zu characters)", sizeof(a->text) - 1);
        return CR_EINVAL;
    }
    end = bracket ? strchr(text, ']') : strrchr(text, ':');
    colon = bracket && end != NULL ? end + 1 : end;
    if (bracket && end == NULL) {
        snprintf(err, errlen, "missing ']' after the IPv6 address");
        return CR_EINVAL;
    }
    if (colon == NULL || *colon != ':') {
        snprintf(err, errlen, "missing port (use HOST:PORT)");
        return CR_EINVAL;
    }
    if (!bracket && memchr(text, ':', (size_t)(colon - text)) != NULL) {
        snprintf(err, errlen, "IPv6 addresses must be in brackets, e.g. [::1]:8443");
        return CR_EINVAL;
    }
    memcpy(host, text + bracket, (size_t)(end - text - bracket));
    host[end - text - bracket] = '\0';
    if (host[0] == '\0') {
        snprintf(err, errlen,
                 wildcard ? "missing host (use *:PORT for every address)" : "missing host");
        return CR_EINVAL;
    }
    if (parse_port(colon + 1, &port) != 0) {
        snprintf(err, errlen, "port must be a number between 1 and 65535");
        return CR_EINVAL;
    }
    if (strcmp(host, "*") == 0 && !bracket) {
        if (!wildcard) {
            snprintf(err, errlen, "'*' is only valid in a listening address");
            return CR_EINVAL;
        }
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        a->len = sizeof(*sin);
    } else if (!bracket && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        a->len = sizeof(*sin);
    } else if (!bracket && strspn(host, "0123456789.") == strlen(host)) {
        snprintf(err, errlen, "invalid IPv4 address '%s'", host);
        return CR_EINVAL;
    } else if (resolve_host(host, bracket, a, err, errlen) != 0) {
        return CR_EINVAL;
    }
    if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
    else
        sin->sin_port = htons(port);
    snprintf(a->text, sizeof(a->text), "%s", text);
    return 0;
}

static bool addr_is_loopback(const struct cr_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return false;
}

/* ------------------------------------------------------------ scalar values */

static char *resolve_path(struct ctx *c, const char *p)
{
    char *out = NULL;

    if (p[0] == '/' || c->base_dir == NULL)
        return xstrdup(c, p);
    if (asprintf(&out, "%s/%s", c->base_dir, p) < 0) {
        c->oom = true;
        return NULL;
    }
    return out;
}

static void check_readable(struct ctx *c, const char *what, const char *path, const yaml_node_t *n)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), e = errno;

    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        e = EISDIR;
    if (fd < 0 || e == EISDIR)
        ERR(c, n, "cannot read '%s' file %s: %s", what, path, strerror(e));
    if (fd >= 0)
        close(fd);
}

/* Plain decimal, no sign, no leading zeros. */
static bool parse_decimal(const char *s, uint64_t *v)
{
    *v = 0;
    if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || *v > (UINT64_MAX - 9) / 10)
            return false;
        *v = *v * 10 + (uint64_t)(*s - '0');
    }
    return true;
}

static bool parse_bool(const char *s, bool *b)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < CR_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *b = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

static const char *format_size(uint64_t v, char *buf, size_t len)
{
    static const char units[] = "kmg";
    size_t u = 0;

    while (v != 0 && v % 1024 == 0 && u < 3) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu", (unsigned long long)v);
    else
        snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u - 1]);
    return buf;
}

static const char *format_value(enum cfg_type t, uint64_t v, char *buf, size_t len)
{
    if (t == KT_SIZE)
        return format_size(v, buf, len);
    if (t == KT_DURATION)
        return cr_format_duration(v, buf, len);
    snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

/* What a key's value must be: "an integer between 1 and 64", "a duration". */
static const char *describe(const struct cfg_key *k, char *buf, size_t len)
{
    static const char *const plain[] = {
        [KT_STR] = "a string",
        [KT_PATH] = "a file path",
        [KT_RATE] = "a rate (e.g. 100/s, 60/min or unlimited)",
        [KT_BOOL] = "a boolean (true/false, yes/no, on/off)",
        [KT_ADDR] = "a HOST:PORT address",
        [KT_MAP] = "a mapping",
        [KT_LIST] = "a list",
        [KT_STRLIST] = "a list",
        [KT_ADDRLIST] = "a list",
        [KT_CUSTOM] = "a string",
    };
    const char *noun = k->type == KT_SIZE ? "a size" : "a duration";
    char lo[32], hi[32];
    size_t used;

    if (k->type == KT_UINT) {
        snprintf(buf, len, "an integer between %llu and %llu", (unsigned long long)k->min,
                 (unsigned long long)k->max);
    } else if (k->type == KT_SIZE || k->type == KT_DURATION) {
        format_value(k->type, k->min, lo, sizeof(lo));
        format_value(k->type, k->max, hi, sizeof(hi));
        if (k->max == UINT64_MAX && k->min == 0)
            snprintf(buf, len, "%s", noun);
        else if (k->max == UINT64_MAX)
            snprintf(buf, len, "%s of at least %s", noun, lo);
        else
            snprintf(buf, len, "%s between %s and %s", noun, lo, hi);
    } else if (k->type == KT_ENUM) {
        used = (size_t)snprintf(buf, len, "one of");
        for (size_t i = 0; k->names[i] != NULL && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s %s", i ? "," : "", k->names[i]);
    } else {
        snprintf(buf, len, "%s", plain[k->type]);
    }
    return buf;
}

static void type_error(struct ctx *c, const struct cfg_key *k, const yaml_node_t *n)
{
    char want[160], g[80];

    ERR(c, n, "'%s' must be %s, got %s", k->name, describe(k, want, sizeof(want)),
        got(n, g, sizeof(g)));
}

static void set_number(struct ctx *c, const struct cfg_key *k, const yaml_node_t *n,
                       const char *text, void *field)
{
    const char *noun = k->type == KT_SIZE ? "size" : "duration";
    char why[160], want[160];
    uint64_t v;
    int rc;

    if (k->type == KT_UINT) {
        if (!parse_decimal(text, &v) || v < k->min || v > k->max) {
            ERR(c, n, "'%s' must be %s, got '%s'", k->name, describe(k, want, sizeof(want)), text);
            return;
        }
        *(uint32_t *)field = (uint32_t)v;
        return;
    }
    if (k->type == KT_SIZE)
        rc = cr_parse_size(text, &v, why, sizeof(why));
    else
        rc = cr_parse_duration_ms(text, &v, why, sizeof(why));
    if (rc != 0) {
        ERR(c, n, "'%s': invalid %s '%s': %s", k->name, noun, text, why);
        return;
    }
    if (v < k->min || v > k->max) {
        ERR(c, n, "'%s' must be %s, got '%s'", k->name, describe(k, want, sizeof(want)), text);
        return;
    }
    *(uint64_t *)field = v;
}

/* Converts one scalar; n is NULL when text is the table's default. */
static void set_scalar(struct ctx *c, const struct cfg_key *k, const yaml_node_t *n,
                       const char *text, void *field)
{
    char why[160], want[160];
    bool b;

    switch (k->type) {
    case KT_STR:
        set_str(field, xstrdup(c, text));
        break;
    case KT_PATH:
        set_str(field, resolve_path(c, text));
        if ((k->flags & K_READABLE) && *(char **)field != NULL)
            check_readable(c, k->name, *(char **)field, n);
        break;
    case KT_UINT:
    case KT_SIZE:
    case KT_DURATION:
        set_number(c, k, n, text, field);
        break;
    case KT_RATE:
        if (cr_parse_rate(text, (double *)field, why, sizeof(why)) != 0)
            ERR(c, n, "'%s': invalid rate '%s': %s", k->name, text, why);
        break;
    case KT_BOOL:
        if (parse_bool(text, &b))
            *(bool *)field = b;
        else
            ERR(c, n, "'%s' must be %s, got '%s'", k->name, describe(k, want, sizeof(want)), text);
        break;
    case KT_ENUM:
        for (int i = 0; k->names[i] != NULL; i++) {
            if (strcmp(text, k->names[i]) == 0) {
                *(int *)field = i;
                return;
            }
        }
        ERR(c, n, "'%s' must be %s, got '%s'", k->name, describe(k, want, sizeof(want)), text);
        break;
    case KT_ADDR:
        if (addr_parse(text, k->flags & K_WILDCARD, field, why, sizeof(why)) != 0)
            ERR(c, n, "'%s': invalid address '%s': %s", k->name, text, why);
        break;
    default:
        assert(!"not a scalar type");
    }
}

/* ------------------------------------------------------------ the walker */

static void parse_map(struct ctx *c, const struct cfg_table *t, yaml_node_t *map, void *obj);

/* Lists of mappings: listeners, certificates, tenants, routes. */
static void parse_list(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *obj)
{
    size_t len = seq_len(n), saved = c->item;
    char *items = NULL;
    char g[80];

    if (len < k->min) {
        ERR(c, n, "'%s' must have at least %llu entr%s", k->name, (unsigned long long)k->min,
            k->min == 1 ? "y" : "ies");
        return;
    }
    if (len > 0 && (items = calloc(len, k->size)) == NULL) {
        c->oom = true;
        return;
    }
    memcpy(field_at(obj, k->off), &items, sizeof(items));
    *count_at(obj, k) = len;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = seq_at(c, n, i);
        if (item->type != YAML_MAPPING_NODE) {
            ERR(c, item, "each '%s' entry must be a mapping, got %s", k->name,
                got(item, g, sizeof(g)));
            continue;
        }
        c->item = i;
        parse_map(c, k->sub, item, items + i * k->size);
    }
    c->item = saved;
}

/* Lists of scalars: api_keys, match (strings), upstream addresses. Entries
 * keep their index; a bad one is left NULL (or zeroed) and reported. */
static void parse_scalar_list(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *obj)
{
    size_t len = seq_len(n),
           esize = k->type == KT_STRLIST ? sizeof(char *) : sizeof(struct cr_addr);
    char *items = NULL, g[80], why[160];

    if (len < k->min) {
        ERR(c, n, "'%s' must have at least %llu entr%s", k->name, (unsigned long long)k->min,
            k->min == 1 ? "y" : "ies");
        return;
    }
    if (len > 0 && (items = calloc(len, esize)) == NULL) {
        c->oom = true;
        return;
    }
    memcpy(field_at(obj, k->off), &items, sizeof(items));
    *count_at(obj, k) = len;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = seq_at(c, n, i);
        if (!is_value(item) || *sval(item) == '\0') {
            ERR(c, item, "each '%s' entry must be %s, got %s", k->name,
                k->type == KT_STRLIST ? "a non-empty string" : "a HOST:PORT address",
                got(item, g, sizeof(g)));
        } else if (k->type == KT_STRLIST) {
            ((char **)(void *)items)[i] = xstrdup(c, sval(item));
        } else if (addr_parse(sval(item), k->flags & K_WILDCARD,
                              (struct cr_addr *)(void *)items + i, why, sizeof(why)) != 0) {
            ERR(c, item, "'%s': invalid address '%s': %s", k->name, sval(item), why);
        }
    }
}

/* One key of a mapping; n is its value node, NULL when the key is absent. */
static void parse_key(struct ctx *c, const struct cfg_key *k, yaml_node_t *map, yaml_node_t *n,
                      void *obj)
{
    void *field = field_at(obj, k->off);

    if (k->type == KT_CUSTOM) {
        k->fn(c, k, n, obj);
        return;
    }
    if (n == NULL) {
        if ((k->flags & K_REQUIRED) && map != NULL)
            ERR(c, map, "missing required key '%s'", k->name);
        else if (k->type == KT_MAP && !(k->flags & K_ABSENT_OFF))
            parse_map(c, k->sub, NULL, field);
        else if (k->dflt != NULL)
            set_scalar(c, k, map, k->dflt, field);
        return;
    }
    switch (k->type) {
    case KT_MAP:
        if (n->type != YAML_MAPPING_NODE)
            type_error(c, k, n);
        else
            parse_map(c, k->sub, n, field);
        break;
    case KT_LIST:
    case KT_STRLIST:
    case KT_ADDRLIST:
        if (n->type != YAML_SEQUENCE_NODE)
            type_error(c, k, n);
        else if (k->type == KT_LIST)
            parse_list(c, k, n, obj);
        else
            parse_scalar_list(c, k, n, obj);
        break;
    default:
        if (!is_value(n) || (k->type == KT_STR && *sval(n) == '\0'))
            type_error(c, k, n);
        else
            set_scalar(c, k, n, sval(n), field);
    }
}

/* Matches the mapping's keys to the table: unknown and duplicate keys. */
static void collect_keys(struct ctx *c, const struct cfg_table *t, yaml_node_t *map,
                         struct cfg_level *l)
{
    yaml_node_pair_t *p;

    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        int i;

        if (kn->type != YAML_SCALAR_NODE) {
            ERR(c, kn, "keys must be strings, got %s",
                kn->type == YAML_MAPPING_NODE ? "a mapping" : "a list");
            continue;
        }
        i = key_index(t, sval(kn));
        if (i < 0) {
            unknown_key(c, t, kn);
        } else if (l->key[i] != NULL) {
            ERR(c, kn, "duplicate key '%s' (first defined at %lu:%lu)", sval(kn),
                (unsigned long)l->key[i]->start_mark.line + 1,
                (unsigned long)l->key[i]->start_mark.column + 1);
        } else {
            l->key[i] = kn;
            l->val[i] = vn;
        }
    }
}

/* Fills obj from the mapping map; map NULL = the section is absent and only
 * defaults apply (no "missing" errors, no check hook). */
static void parse_map(struct ctx *c, const struct cfg_table *t, yaml_node_t *map, void *obj)
{
    struct cfg_level l;

    assert(t->nkeys <= MAX_KEYS && c->depth < MAX_DEPTH);
    memset(&l, 0, sizeof(l));
    l.t = t;
    if (t->init != NULL)
        t->init(c, obj);
    if (map != NULL)
        collect_keys(c, t, map, &l);
    c->levels[c->depth++] = &l;
    for (size_t i = 0; i < t->nkeys; i++) {
        size_t before = c->nerrors;
        parse_key(c, &t->keys[i], map, l.val[i], obj);
        l.bad[i] = c->nerrors != before;
    }
    if (map != NULL && t->check != NULL)
        t->check(c, obj, map, &l);
    c->depth--;
}

/* Frees what the tables say obj owns. */
static void free_obj(const struct cfg_table *t, void *obj)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct cfg_key *k = &t->keys[i];
        void *field = field_at(obj, k->off);
        char *items;

        switch (k->type) {
        case KT_STR:
        case KT_PATH:
            set_str(field, NULL);
            break;
        case KT_MAP:
            free_obj(k->sub, field);
            break;
        case KT_LIST:
        case KT_STRLIST:
        case KT_ADDRLIST:
            memcpy(&items, field, sizeof(items));
            for (size_t j = 0; items != NULL && j < *count_at(obj, k); j++) {
                if (k->type == KT_LIST)
                    free_obj(k->sub, items + j * k->size);
                else if (k->type == KT_STRLIST)
                    free(((char **)(void *)items)[j]);
            }
            free(items);
            memset(field, 0, sizeof(items));
            *count_at(obj, k) = 0;
            break;
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------ custom keys */

static void custom_workers(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *obj)
{
    uint32_t *workers = field_at(obj, k->off);
    uint64_t v;
    long ncpu;
    char g[80];

    if (n == NULL || (is_value(n) && strcmp(sval(n), "auto") == 0)) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        *workers = (uint32_t)(ncpu < 1 ? 1 : ncpu > (long)k->max ? (long)k->max : ncpu);
        return;
    }
    if (!is_value(n) || !parse_decimal(sval(n), &v) || v < k->min || v > k->max) {
        ERR(c, n, "'workers' must be 'auto' or an integer between %llu and %llu, got %s",
            (unsigned long long)k->min, (unsigned long long)k->max, got(n, g, sizeof(g)));
        return;
    }
    *workers = (uint32_t)v;
}

static void custom_min_version(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *obj)
{
    int *v = field_at(obj, k->off);
    char g[80];

    if (n == NULL || (is_value(n) && strcmp(sval(n), "1.2") == 0)) {
        *v = TLS1_2_VERSION;
    } else if (is_value(n) && strcmp(sval(n), "1.3") == 0) {
        *v = TLS1_3_VERSION;
    } else if (is_value(n) && (strcmp(sval(n), "1.0") == 0 || strcmp(sval(n), "1.1") == 0 ||
                               strcmp(sval(n), "1") == 0)) {
        ERR(c, n,
            "'min_version' %s is refused: TLS 1.0 and 1.1 are obsolete and insecure "
            "(use 1.2 or 1.3)",
            sval(n));
    } else {
        ERR(c, n, "'min_version' must be one of 1.2, 1.3, got %s", got(n, g, sizeof(g)));
    }
}

static void custom_alpn(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *obj)
{
    enum cr_alpn *alpn = field_at(obj, k->off);
    size_t *nalpn = count_at(obj, k), len;
    char g[80];

    if (n == NULL) {
        alpn[0] = CR_ALPN_H2;
        alpn[1] = CR_ALPN_HTTP11;
        *nalpn = 2;
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE || (len = seq_len(n)) == 0) {
        ERR(c, n, "'alpn' must be a list of h2 and/or http/1.1, got %s",
            n->type == YAML_SEQUENCE_NODE ? "an empty list" : got(n, g, sizeof(g)));
        return;
    }
    *nalpn = 0;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = seq_at(c, n, i);
        enum cr_alpn p;

        if (is_value(item) && strcmp(sval(item), "h2") == 0) {
            p = CR_ALPN_H2;
        } else if (is_value(item) && strcmp(sval(item), "http/1.1") == 0) {
            p = CR_ALPN_HTTP11;
        } else {
            ERR(c, item, "'alpn' entries must be h2 or http/1.1, got %s", got(item, g, sizeof(g)));
            continue;
        }
        if ((*nalpn >= 1 && alpn[0] == p) || (*nalpn >= 2 && alpn[1] == p)) {
            ERR(c, item, "duplicate ALPN protocol '%s'", sval(item));
            continue;
        }
        alpn[(*nalpn)++] = p;
    }
}

/* ------------------------------------------------------------ check hooks */

static void listener_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_listener *li = obj;
    yaml_node_t *name = good_val(l, "name"), *addr = good_val(l, "address");
    const struct uniq *u;

    if (li->name == NULL && !key_bad(l, "name")) {
        if (asprintf(&li->name, "listener%zu", c->item + 1) < 0) {
            li->name = NULL;
            c->oom = true;
            return;
        }
    }
    if (li->name != NULL && !key_bad(l, "name")) {
        u = uniq_str(c, UQ_LISTENER_NAME, li->name, name != NULL ? name : map);
        if (u != NULL)
            ERR(c, name != NULL ? name : map,
                "duplicate listener name '%s' (first defined at %lu:%lu)", li->name, u->line,
                u->col);
    }
    if (addr != NULL) {
        u = uniq_note(c, UQ_LISTENER_ADDR, &li->addr.ss, li->addr.len, addr);
        if (u != NULL)
            ERR(c, addr, "duplicate listener address %s (first defined at %lu:%lu)", li->addr.text,
                u->line, u->col);
    }
}

static SSL_CTX *ssl_ctx(struct ctx *c)
{
    if (c->ssl == NULL)
        c->ssl = SSL_CTX_new(TLS_method());
    if (c->ssl == NULL)
        c->oom = true;
    return c->ssl;
}

static void tls_server_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_tls_server *t = obj;
    yaml_node_t *ciphers = good_val(l, "ciphers"), *suites = good_val(l, "ciphersuites");
    (void)map;

    if (ciphers != NULL && ssl_ctx(c) != NULL) {
        if (SSL_CTX_set_cipher_list(c->ssl, t->ciphers) != 1)
            ERR(c, ciphers, "'ciphers': no TLS 1.2 cipher matches '%s'", t->ciphers);
        else if (t->min_version == TLS1_3_VERSION)
            WARN(c, ciphers,
                 "'ciphers' only applies to TLS 1.2 and is unused with "
                 "min_version 1.3");
    }
    if (suites != NULL && ssl_ctx(c) != NULL &&
        SSL_CTX_set_ciphersuites(c->ssl, t->ciphersuites) != 1)
        ERR(c, suites, "'ciphersuites': invalid TLS 1.3 cipher suites '%s'", t->ciphersuites);
    ERR_clear_error();
}

static void upstream_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_upstream *u = obj;
    yaml_node_t *addrs = any_val(l, "addresses"), *pipeline = good_val(l, "pipeline");
    const struct uniq *first;
    (void)map;

    if (pipeline != NULL && u->pipeline > 1 && !key_bad(l, "protocol") &&
        u->protocol == CR_PROTO_H2)
        WARN(c, pipeline, "'pipeline' only applies to protocol http/1.1 and is unused with h2");
    for (size_t i = 0; addrs != NULL && i < u->naddrs; i++) {
        if (u->addrs[i].len == 0)
            continue;
        first =
            uniq_note(c, UQ_UPSTREAM_ADDR, &u->addrs[i].ss, u->addrs[i].len, seq_at(c, addrs, i));
        if (first != NULL)
            ERR(c, seq_at(c, addrs, i), "duplicate upstream address %s (first defined at %lu:%lu)",
                u->addrs[i].text, first->line, first->col);
    }
}

static void upstream_tls_check(struct ctx *c, void *obj, yaml_node_t *map,
                               const struct cfg_level *l)
{
    struct cr_cfg_upstream *u = &c->cfg->upstream;
    yaml_node_t *insecure = good_val(l, "insecure"), *sni = good_val(l, "sni");
    yaml_node_t *cert = any_val(l, "cert"), *key = any_val(l, "key"), *ca = any_val(l, "ca");
    (void)obj; /* an anonymous struct: reached through c->cfg */

    if (cert != NULL && key == NULL)
        ERR(c, cert,
            "'cert' needs 'key' (the client certificate's private key) in the same "
            "mapping");
    if (key != NULL && cert == NULL)
        ERR(c, key, "'key' needs 'cert' (the client certificate) in the same mapping");
    if (sni != NULL && !valid_hostname(u->tls.sni, false))
        ERR(c, sni, "'sni' must be a host name, got '%s'", u->tls.sni);
    if (key_bad(l, "insecure"))
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

static void log_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_log *lg = obj;
    (void)map;

    /* "stderr", "off" and "stdout" are words; anything else is a file. */
    if (good_val(l, "error") != NULL && strcmp(lg->error, "stderr") != 0)
        set_str(&lg->error, resolve_path(c, lg->error));
    if (good_val(l, "access") != NULL && strcmp(lg->access, "off") != 0 &&
        strcmp(lg->access, "stdout") != 0)
        set_str(&lg->access, resolve_path(c, lg->access));
}

static void tenants_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_tenants *t = obj;
    yaml_node_t *header = good_val(l, "header"), *list = good_val(l, "list");
    bool uses_header = t->by == CR_TENANT_BY_HEADER || t->by == CR_TENANT_BY_API_KEY;
    (void)map;

    if (key_bad(l, "by"))
        return;
    if (header != NULL && !valid_header_name(t->header))
        ERR(c, header, "'header' must be an HTTP header name, got '%s'", t->header);
    if (header != NULL && !uses_header)
        WARN(c, header, "'header' is unused unless 'by' is header or api_key");
    if (t->header == NULL && t->by == CR_TENANT_BY_HEADER)
        t->header = xstrdup(c, "X-Tenant-Id");
    if (t->header == NULL && t->by == CR_TENANT_BY_API_KEY)
        t->header = xstrdup(c, "X-Api-Key");
    if (list != NULL && t->nlist > 0 && t->by == CR_TENANT_BY_NONE)
        WARN(c, list,
             "with 'by: none' every request goes to the default tenant and 'list' "
             "is unused");
}

static void tenant_init(struct ctx *c, void *obj)
{
    struct cr_cfg_tenant *t = obj;

    t->limits = c->cfg->tenants.defaults;
}

/* tenants.by as parsed, or -1 when it was in error (so no cascade). */
static int tenants_by(struct ctx *c)
{
    const struct cfg_level *up = c->levels[c->depth - 2];

    return key_bad(up, "by") ? -1 : (int)c->cfg->tenants.by;
}

static void tenant_match_check(struct ctx *c, struct cr_cfg_tenant *t, yaml_node_t *match, int by)
{
    const struct uniq *u;

    for (size_t i = 0; i < t->nmatch; i++) {
        yaml_node_t *item = seq_at(c, match, i);
        char *m = t->match[i];

        if (m == NULL)
            continue;
        if (by == CR_TENANT_BY_PATH_PREFIX && m[0] != '/') {
            ERR(c, item, "'match' entry '%s' must be a path prefix starting with '/'", m);
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
        u = uniq_str(c, UQ_MATCH, m, item);
        if (u != NULL)
            ERR(c, item, "duplicate match '%s' (first defined at %lu:%lu)", m, u->line, u->col);
    }
}

static void tenant_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_tenant *t = obj;
    yaml_node_t *name = good_val(l, "name"), *keys = good_val(l, "api_keys");
    yaml_node_t *match = good_val(l, "match");
    const struct uniq *u;
    int by = tenants_by(c);

    if (name != NULL && strcmp(t->name, "default") == 0) {
        ERR(c, name,
            "tenant name 'default' is reserved: set the default tenant's limits in "
            "tenants.defaults");
        return;
    }
    if (name != NULL && (u = uniq_str(c, UQ_TENANT_NAME, t->name, name)) != NULL)
        ERR(c, name, "duplicate tenant name '%s' (first defined at %lu:%lu)", t->name, u->line,
            u->col);
    if (keys != NULL && by >= 0 && by != CR_TENANT_BY_API_KEY)
        ERR(c, keys, "'api_keys' is only used with 'by: api_key'");
    for (size_t i = 0; by == CR_TENANT_BY_API_KEY && i < t->napi_keys; i++) {
        /* The key itself is a secret: the message only says where. */
        yaml_node_t *item = seq_at(c, any_val(l, "api_keys"), i);
        if (t->api_keys[i] != NULL && (u = uniq_str(c, UQ_API_KEY, t->api_keys[i], item)))
            ERR(c, item, "duplicate API key (first defined at %lu:%lu)", u->line, u->col);
    }
    if (match != NULL && by >= 0 && by != CR_TENANT_BY_SNI && by != CR_TENANT_BY_PATH_PREFIX)
        ERR(c, match, "'match' is only used with 'by: sni' or 'by: path_prefix'");
    else if (by == CR_TENANT_BY_SNI || by == CR_TENANT_BY_PATH_PREFIX)
        tenant_match_check(c, t, any_val(l, "match"), by);
    if (name != NULL && by == CR_TENANT_BY_API_KEY && any_val(l, "api_keys") == NULL)
        WARN(c, map, "tenant '%s' has no 'api_keys' and can never be selected", t->name);
    if (name != NULL && (by == CR_TENANT_BY_SNI || by == CR_TENANT_BY_PATH_PREFIX) &&
        any_val(l, "match") == NULL)
        WARN(c, map, "tenant '%s' has no 'match' entries and can never be selected", t->name);
}

static void route_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_route *r = obj;
    yaml_node_t *prefix = good_val(l, "path_prefix");
    const struct uniq *u;
    (void)map;

    if (prefix == NULL)
        return;
    if (r->path_prefix[0] != '/')
        ERR(c, prefix, "'path_prefix' must start with '/', got '%s'", r->path_prefix);
    else if ((u = uniq_str(c, UQ_ROUTE, r->path_prefix, prefix)) != NULL)
        ERR(c, prefix, "duplicate route for path_prefix '%s' (first defined at %lu:%lu)",
            r->path_prefix, u->line, u->col);
}

static void admin_check(struct ctx *c, void *obj, yaml_node_t *map, const struct cfg_level *l)
{
    struct cr_cfg_admin *a = obj;
    yaml_node_t *addr = good_val(l, "address");
    yaml_node_t *where = addr != NULL ? addr : map;

    a->enabled = true;
    if (key_bad(l, "address") || a->addr.len == 0)
        return;
    for (size_t i = 0; i < c->cfg->nlisteners; i++) {
        const struct cr_cfg_listener *li = &c->cfg->listeners[i];
        if (li->addr.len == a->addr.len && memcmp(&li->addr.ss, &a->addr.ss, a->addr.len) == 0) {
            ERR(c, where, "admin address %s is also the address of listener '%s'", a->addr.text,
                li->name != NULL ? li->name : "?");
            return;
        }
    }
    if (!addr_is_loopback(&a->addr))
        WARN(c, where,
             "admin address %s is not a loopback address: the admin interface is "
             "cleartext and unauthenticated",
             a->addr.text);
}

/* ------------------------------------------------------------ the schema */

#define MS_S 1000ULL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

/* clang-format off */
#define TABLE(keys, init, check) {keys, CR_ARRAY_LEN(keys), init, check}

/* One row per key; o is the field's offset in the level's struct (OFF). */
#define KSTR(n, o, fl, d)        {.name = n, .type = KT_STR, .off = o, .flags = fl, .dflt = d}
#define KPATH(n, o, fl)          {.name = n, .type = KT_PATH, .off = o, .flags = fl}
#define KUINT(n, o, lo, hi, d)   {.name = n, .type = KT_UINT, .off = o, .min = lo, .max = hi, .dflt = d}
#define KSIZE(n, o, lo, hi, d)   {.name = n, .type = KT_SIZE, .off = o, .min = lo, .max = hi, .dflt = d}
#define KDUR(n, o, lo, hi, d)    {.name = n, .type = KT_DURATION, .off = o, .min = lo, .max = hi, .dflt = d}
#define KRATE(n, o, d)           {.name = n, .type = KT_RATE, .off = o, .dflt = d}
#define KBOOL(n, o, d)           {.name = n, .type = KT_BOOL, .off = o, .dflt = d}
#define KENUM(n, o, names_, d)   {.name = n, .type = KT_ENUM, .off = o, .names = names_, .dflt = d}
#define KADDR(n, o, fl, d)       {.name = n, .type = KT_ADDR, .off = o, .flags = fl, .dflt = d}
#define KMAP(n, o, sub_, fl)     {.name = n, .type = KT_MAP, .off = o, .sub = sub_, .flags = fl}
#define KSTRS(n, o, no)          {.name = n, .type = KT_STRLIST, .off = o, .noff = no}
#define KADDRS(n, o, no, lo, fl) {.name = n, .type = KT_ADDRLIST, .off = o, .noff = no, .min = lo, .flags = fl}
#define KLIST(n, o, no, elem, lo, sub_, fl) \
    {.name = n, .type = KT_LIST, .off = o, .noff = no, .size = sizeof(elem), .min = lo, .sub = sub_, .flags = fl}
#define KCUSTOM(n, o, no, lo, hi, fn_) \
    {.name = n, .type = KT_CUSTOM, .off = o, .noff = no, .min = lo, .max = hi, .fn = fn_}

#define REQ K_REQUIRED
#define READ K_READABLE

static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const proto_names[] = {"h2", "http/1.1", NULL};
static const char *const fwd_names[] = {"x-forwarded-for", "forwarded", "off", NULL};
static const char *const by_names[] = {"none", "header", "api_key", "sni", "path_prefix", NULL};
static const char *const prio_names[] = {"high", "normal", "low", NULL};

#define OFF(f) offsetof(struct cr_cfg_log, f)
static const struct cfg_key log_keys[] = {
    KSTR ("error",  OFF(error), 0, "stderr"),        /* "stderr" or a file */
    KENUM("level",  OFF(level), level_names, "info"),
    KSTR ("access", OFF(access), 0, "off"),          /* "off", "stdout" or a file */
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_cert, f)
static const struct cfg_key cert_keys[] = {
    KPATH("cert", OFF(cert), REQ | READ),
    KPATH("key",  OFF(key),  REQ | READ),
    KPATH("ocsp", OFF(ocsp), READ),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_tls_server, f)
static const struct cfg_key tls_server_keys[] = {
    KLIST  ("certificates",      OFF(certs), OFF(ncerts), struct cr_cfg_cert, 1, &cert_table, REQ),
    KCUSTOM("min_version",       OFF(min_version), 0, 0, 0, custom_min_version),
    KSTR   ("ciphers",           OFF(ciphers), 0, NULL),
    KSTR   ("ciphersuites",      OFF(ciphersuites), 0, NULL),
    KCUSTOM("alpn",              OFF(alpn), OFF(nalpn), 0, 0, custom_alpn),
    KDUR   ("handshake_timeout", OFF(handshake_timeout_ms), 100, 10 * MS_M, "10s"),
    KUINT  ("max_handshakes",    OFF(max_handshakes), 1, 100000, "256"),
    KPATH  ("ticket_key_file",   OFF(ticket_key_file), READ),
    KDUR   ("ticket_rotate",     OFF(ticket_rotate_ms), MS_S, 7 * MS_D, "12h"),
    KUINT  ("tickets",           OFF(tickets), 0, 10, "1"),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_listener, f)
static const struct cfg_key listener_keys[] = {
    KSTR ("name",    OFF(name), 0, NULL),            /* default "listener<N>" */
    KADDR("address", OFF(addr), REQ | K_WILDCARD, NULL),
    KUINT("backlog", OFF(backlog), 1, 65535, "4096"),
    KMAP ("tls",     OFF(tls), &tls_server_table, REQ),
};
#undef OFF

/* upstream.tls is an anonymous struct: offsets are relative to it. */
#define OFF(f) (offsetof(struct cr_cfg_upstream, tls.f) - offsetof(struct cr_cfg_upstream, tls))
static const struct cfg_key upstream_tls_keys[] = {
    KPATH("ca",       OFF(ca), READ),                /* required unless insecure */
    KPATH("cert",     OFF(cert), READ),
    KPATH("key",      OFF(key), READ),
    KSTR ("sni",      OFF(sni), 0, NULL),
    KBOOL("insecure", OFF(insecure), "false"),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_upstream, f)
static const struct cfg_key upstream_keys[] = {
    KADDRS("addresses",        OFF(addrs), OFF(naddrs), 1, REQ),
    KENUM ("protocol",         OFF(protocol), proto_names, "h2"),
    KUINT ("connections",      OFF(connections), 1, 64, "2"),
    KUINT ("pipeline",         OFF(pipeline), 1, 64, "1"),
    KUINT ("max_streams",      OFF(max_streams), 0, 100000, "0"),
    KUINT ("queue",            OFF(queue), 0, 1000000, "1024"),
    KDUR  ("connect_timeout",  OFF(connect_timeout_ms), 10, 10 * MS_M, "5s"),
    KDUR  ("response_timeout", OFF(response_timeout_ms), 10, MS_D, "60s"),
    KDUR  ("keepalive",        OFF(keepalive_ms), 0, MS_D, "30s"),
    KMAP  ("tls",              OFF(tls), &upstream_tls_table, REQ),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_http, f)
static const struct cfg_key http_keys[] = {
    KSIZE("max_header_size", OFF(max_header_size), 1024, 1048576, "16k"),
    KUINT("max_headers",     OFF(max_headers), 1, 1000, "100"),
    KSIZE("max_uri",         OFF(max_uri), 256, 1048576, "8k"),
    KSIZE("max_body",        OFF(max_body), 0, UINT64_MAX, "0"),
    KDUR ("header_timeout",  OFF(header_timeout_ms), 100, MS_D, "10s"),
    KDUR ("body_timeout",    OFF(body_timeout_ms), 100, MS_D, "30s"),
    KDUR ("idle_timeout",    OFF(idle_timeout_ms), 100, MS_D, "60s"),
    KUINT("max_streams",     OFF(max_streams), 1, 10000, "128"),
    KENUM("forwarded",       OFF(forwarded), fwd_names, "x-forwarded-for"),
    KBOOL("request_id",      OFF(request_id), "true"),
    KBOOL("traceparent",     OFF(traceparent), "true"),
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
    KUINT("weight",      O(weight), 1, 1000, D("1"))
#define WITH_DEFAULT(x) x
#define INHERITED(x) NULL
#define LIMITS_OFF(f) offsetof(struct cr_cfg_limits, f)
#define TENANT_OFF(f) offsetof(struct cr_cfg_tenant, limits.f)

static const struct cfg_key limits_keys[] = {LIMITS(LIMITS_OFF, WITH_DEFAULT)};

#define OFF(f) offsetof(struct cr_cfg_tenant, f)
static const struct cfg_key tenant_keys[] = {
    KSTR ("name",     OFF(name), REQ, NULL),
    LIMITS(TENANT_OFF, INHERITED),
    KSTRS("api_keys", OFF(api_keys), OFF(napi_keys)),
    KSTRS("match",    OFF(match), OFF(nmatch)),
};
#undef OFF

#define OFF(f) offsetof(struct cr_cfg_route, f)
static const struct cfg_key route_keys[] = {
    KSTR ("path_prefix", OFF(path_prefix), REQ, NULL),
    KENUM("priority",    OFF(priority), prio_names, "normal"),
};
#undef OFF

/* Order matters: defaults before list, so that tenants inherit them. */
#define OFF(f) offsetof(struct cr_cfg_tenants, f)
static const struct cfg_key tenants_keys[] = {
    KENUM("by",       OFF(by), by_names, "none"),
    KSTR ("header",   OFF(header), 0, NULL),
    KMAP ("defaults", OFF(defaults), &limits_table, 0),
    KLIST("list",     OFF(list), OFF(nlist), struct cr_cfg_tenant, 0, &tenant_table, 0),
    KLIST("routes",   OFF(routes), OFF(nroutes), struct cr_cfg_route, 0, &route_table, 0),
};
#undef OFF

static const struct cfg_key admin_keys[] = {
    KADDR("address", offsetof(struct cr_cfg_admin, addr), K_WILDCARD, ADMIN_DEFAULT_ADDR),
};

/* Order matters: listeners before admin, which must not reuse their address. */
#define OFF(f) offsetof(struct cr_config, f)
static const struct cfg_key top_keys[] = {
    KCUSTOM("workers",       OFF(workers), 0, 1, 256, custom_workers),
    KSTR   ("user",          OFF(user), 0, NULL),
    KSTR   ("group",         OFF(group), 0, NULL),
    KPATH  ("pid_file",      OFF(pid_file), 0),
    KDUR   ("drain_timeout", OFF(drain_timeout_ms), 0, MS_H, "30s"),
    KMAP   ("log",           OFF(log), &log_table, 0),
    KLIST  ("listeners",     OFF(listeners), OFF(nlisteners), struct cr_cfg_listener, 1,
            &listener_table, REQ),
    KMAP   ("upstream",      OFF(upstream), &upstream_table, REQ),
    KMAP   ("http",          OFF(http), &http_table, 0),
    KMAP   ("tenants",       OFF(tenants), &tenants_table, 0),
    KMAP   ("admin",         OFF(admin), &admin_table, K_ABSENT_OFF),
};
#undef OFF

static const struct cfg_table log_table = TABLE(log_keys, NULL, log_check);
static const struct cfg_table cert_table = TABLE(cert_keys, NULL, NULL);
static const struct cfg_table tls_server_table = TABLE(tls_server_keys, NULL, tls_server_check);
static const struct cfg_table listener_table = TABLE(listener_keys, NULL, listener_check);
static const struct cfg_table upstream_tls_table = TABLE(upstream_tls_keys, NULL, upstream_tls_check);
static const struct cfg_table upstream_table = TABLE(upstream_keys, NULL, upstream_check);
static const struct cfg_table http_table = TABLE(http_keys, NULL, NULL);
static const struct cfg_table limits_table = TABLE(limits_keys, NULL, NULL);
static const struct cfg_table tenant_table = TABLE(tenant_keys, tenant_init, tenant_check);
static const struct cfg_table route_table = TABLE(route_keys, NULL, route_check);
static const struct cfg_table tenants_table = TABLE(tenants_keys, NULL, tenants_check);
static const struct cfg_table admin_table = TABLE(admin_keys, NULL, admin_check);
static const struct cfg_table top_table = TABLE(top_keys, NULL, NULL);
/* clang-format on */

/* ------------------------------------------------------------ loading */

/* libyaml's reader errors carry a byte offset rather than a mark. */
static void syntax_error(struct ctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
    yaml_mark_t m = p->problem_mark;
    const char *problem = p->problem != NULL ? p->problem : "cannot parse";

    if (p->error == YAML_MEMORY_ERROR) {
        c->oom = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        memset(&m, 0, sizeof(m));
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            m.column++;
            if (text[i] == '\n') {
                m.line++;
                m.column = 0;
            }
        }
    }
    if (p->context != NULL)
        report(c, &m, true, "syntax error: %s (%s at %lu:%lu)", problem, p->context,
               (unsigned long)p->context_mark.line + 1, (unsigned long)p->context_mark.column + 1);
    else
        report(c, &m, true, "syntax error: %s", problem);
}

/* Parses the YAML, checks it holds exactly one mapping, and walks it. */
static void load_yaml(struct ctx *c, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_node_t *root;
    char g[80];

    if (!yaml_parser_initialize(&parser)) {
        c->oom = true;
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(c, &parser, text, len);
        goto fail_parser;
    }
    c->doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL || is_null(root)) {
        report(c, NULL, true, "empty configuration");
        goto fail_doc;
    }
    if (root->type != YAML_MAPPING_NODE) {
        ERR(c, root, "the top level must be a mapping of keys, got %s", got(root, g, sizeof(g)));
        goto fail_doc;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(c, &parser, text, len);
        goto fail_doc;
    }
    if (yaml_document_get_root_node(&extra) != NULL &&
        !is_null(yaml_document_get_root_node(&extra)))
        report(c, &extra.start_mark, true, "only one YAML document is allowed in the file");
    yaml_document_delete(&extra);
    if (c->nerrors == 0) {
        c->cfg = calloc(1, sizeof(*c->cfg));
        if (c->cfg == NULL)
            c->oom = true;
        else
            parse_map(c, &top_table, root, c->cfg);
    }
fail_doc:
    c->doc = NULL;
    yaml_document_delete(&doc);
fail_parser:
    yaml_parser_delete(&parser);
}

static int load_text(const char *name, const char *base_dir, const char *text, size_t len,
                     struct cr_config **out, struct cr_diag *diag)
{
    struct ctx c;

    memset(&c, 0, sizeof(c));
    c.name = name;
    c.base_dir = base_dir;
    load_yaml(&c, text, len);
    if (c.cfg != NULL && !c.oom && (c.cfg->path = strdup(name)) == NULL)
        c.oom = true;
    diag_take(&c, diag);
    for (size_t i = 0; i < c.nuniq; i++)
        free(c.uniq[i].key);
    free(c.uniq);
    SSL_CTX_free(c.ssl);
    if (diag->nerrors > 0) {
        cr_config_free(c.cfg);
        return CR_ECONFIG;
    }
    *out = c.cfg;
    return 0;
}

static void diag_raw(struct cr_diag *d, const char *path, const char *what, int e)
{
    d->msgs = calloc(1, sizeof(char *));
    if (d->msgs != NULL && asprintf(&d->msgs[0], "%s: error: %s: %s", path, what, strerror(e)) >= 0)
        d->nmsgs = 1;
    d->nerrors = 1;
}

/* Reads a whole file into *buf (NUL-terminated); errno is set on failure. */
static int read_file(const char *path, char **buf, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    int e = 0;

    if (f == NULL)
        return CR_EIO;
    if (fstat(fileno(f), &st) != 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        e = EISDIR;
    else if (st.st_size > MAX_FILE_SIZE)
        e = EFBIG;
    else if ((p = malloc((size_t)st.st_size + 1)) == NULL)
        e = ENOMEM;
    else if ((*len = fread(p, 1, (size_t)st.st_size, f)) != (size_t)st.st_size || ferror(f))
        e = ferror(f) ? EIO : ESPIPE; /* changed while read, or not a regular file */
    fclose(f);
    if (e != 0) {
        free(p);
        errno = e;
        return CR_EIO;
    }
    p[*len] = '\0';
    *buf = p;
    return 0;
}

int cr_config_load(const char *path, struct cr_config **out, struct cr_diag *diag)
{
    char *text = NULL, *real = NULL, *slash;
    size_t len = 0;
    int rc;

    memset(diag, 0, sizeof(*diag));
    *out = NULL;
    if (read_file(path, &text, &len) != 0) {
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
    free_obj(&top_table, cfg);
    free(cfg->path);
    free(cfg);
}
