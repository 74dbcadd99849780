/* cfgload.c - the table-driven YAML walker and its diagnostics; the tables
 * themselves are the caller's (corral's are in config.c). */
#include "ac_config.h"

#include "cfgload.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "units.h"

/* One mapping being parsed: which node each key of its table got. */
struct cr_cfgload_level {
    const struct cr_cfgload_table *t;
    yaml_node_t *key[CR_CFGLOAD_MAX_KEYS];
    yaml_node_t *val[CR_CFGLOAD_MAX_KEYS];
    bool bad[CR_CFGLOAD_MAX_KEYS]; /* the value was reported as an error */
};

struct cr_cfgload_msg {
    unsigned long line, col;
    size_t seq;
    char *text;
};

/* ------------------------------------------------------------ diagnostics */

static void vreport(struct cr_cfgload *c, const yaml_mark_t *m, bool error, const char *fmt,
                    va_list ap)
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
        struct cr_cfgload_msg *m2 = realloc(c->msgs, cap * sizeof(*m2));
        if (m2 == NULL)
            goto fail;
        c->msgs = m2;
        c->capmsgs = cap;
    }
    c->msgs[c->nmsgs] = (struct cr_cfgload_msg){line, col, c->nmsgs, text};
    c->nmsgs++;
    free(body);
    return;
fail:
    c->oom = true;
    free(body);
    free(text);
}

static void report(struct cr_cfgload *c, const yaml_mark_t *m, bool error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* m NULL = the start of the file. */
static void report(struct cr_cfgload *c, const yaml_mark_t *m, bool error, const char *fmt, ...)
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

void cr_cfgload_error(struct cr_cfgload *c, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(c, mark_of(n), true, fmt, ap);
    va_end(ap);
}

void cr_cfgload_warn(struct cr_cfgload *c, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(c, mark_of(n), false, fmt, ap);
    va_end(ap);
}

static int msg_cmp(const void *a, const void *b)
{
    const struct cr_cfgload_msg *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the messages, sorted by position, into diag. */
static void diag_take(struct cr_cfgload *c, struct cr_diag *d)
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

/* ------------------------------------------------------------ small helpers */

char *cr_cfgload_strdup(struct cr_cfgload *c, const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        c->oom = true;
    return p;
}

void cr_cfgload_set_str(void *field, char *s)
{
    char **p = field;

    free(*p);
    *p = s;
}

const char *cr_cfgload_str(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* "", "~" and "null" written plainly are YAML's null. */
static bool is_null(const yaml_node_t *n)
{
    const char *s;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = cr_cfgload_str(n);
    return *s == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

bool cr_cfgload_is_value(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && !is_null(n);
}

/* How a node that is not what was expected looks, for "got %s". */
const char *cr_cfgload_got(const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (is_null(n))
        return *cr_cfgload_str(n) == '\0' ? "an empty value" : "null";
    if (strlen(cr_cfgload_str(n)) > 60)
        snprintf(buf, len, "'%.57s...'", cr_cfgload_str(n));
    else
        snprintf(buf, len, "'%s'", cr_cfgload_str(n));
    return buf;
}

size_t cr_cfgload_seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *cr_cfgload_seq_at(struct cr_cfgload *c, const yaml_node_t *n, size_t i)
{
    return yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
}

void *cr_cfgload_field(void *obj, size_t off)
{
    return (char *)obj + off;
}

size_t *cr_cfgload_count(void *obj, const struct cr_cfgload_key *k)
{
    return (size_t *)cr_cfgload_field(obj, k->noff);
}

static int key_index(const struct cr_cfgload_table *t, const char *name)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        if (strcmp(t->keys[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* The value node of key `name` in level l, NULL when absent or bad. */
yaml_node_t *cr_cfgload_val(const struct cr_cfgload_level *l, const char *name)
{
    int i = key_index(l->t, name);

    assert(i >= 0);
    return l->bad[i] ? NULL : l->val[i];
}

/* The value node of key `name` in level l, NULL when absent. */
yaml_node_t *cr_cfgload_node(const struct cr_cfgload_level *l, const char *name)
{
    int i = key_index(l->t, name);

    assert(i >= 0);
    return l->val[i];
}

bool cr_cfgload_bad(const struct cr_cfgload_level *l, const char *name)
{
    int i = key_index(l->t, name);

    assert(i >= 0);
    return l->bad[i];
}

const struct cr_cfgload_level *cr_cfgload_parent(const struct cr_cfgload *c)
{
    assert(c->depth >= 2);
    return c->levels[c->depth - 2];
}

/* A hash of kind and len bytes at p (FNV-1a). */
static uint64_t hash_bytes(int kind, const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(unsigned)kind;

    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Rebuilds an index of n entries with room for twice as many; key(i)
 * hashes entry i. False on out of memory (the old index is kept). */
static bool index_grow(uint32_t **index, size_t *cap, size_t n, uint64_t (*key)(void *, size_t),
                       void *arg)
{
    size_t ncap = *cap ? *cap * 2 : 64;
    uint32_t *ix;

    while (ncap < 2 * (n + 1))
        ncap *= 2;
    if ((ix = calloc(ncap, sizeof(*ix))) == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t at = key(arg, i) & (ncap - 1);
        while (ix[at] != 0)
            at = (at + 1) & (ncap - 1);
        ix[at] = (uint32_t)i + 1;
    }
    free(*index);
    *index = ix;
    *cap = ncap;
    return true;
}

static uint64_t seen_key(void *arg, size_t i)
{
    const struct cr_cfgload *c = arg;

    return hash_bytes(c->seen[i].kind, c->seen[i].key, c->seen[i].len);
}

/* Returns the first occurrence of an equal key, or NULL after recording
 * this one at node n's position. Hashed: a file of many values that must be
 * unique (API keys) is checked in linear time. */
const struct cr_cfgload_first *cr_cfgload_seen(struct cr_cfgload *c, int kind, const void *key,
                                               size_t len, const yaml_node_t *n)
{
    struct cr_cfgload_first *u;
    size_t at;

    if (2 * (c->nseen + 1) > c->capseenix &&
        !index_grow(&c->seenix, &c->capseenix, c->nseen, seen_key, c))
        goto fail;
    at = hash_bytes(kind, key, len) & (c->capseenix - 1);
    for (; c->seenix[at] != 0; at = (at + 1) & (c->capseenix - 1)) {
        u = &c->seen[c->seenix[at] - 1];
        if (u->kind == kind && u->len == len && memcmp(u->key, key, len) == 0)
            return u;
    }
    if (c->nseen == c->capseen) {
        size_t cap = c->capseen ? c->capseen * 2 : 32;
        u = realloc(c->seen, cap * sizeof(*u));
        if (u == NULL)
            goto fail;
        c->seen = u;
        c->capseen = cap;
    }
    u = &c->seen[c->nseen];
    u->key = malloc(len ? len : 1);
    if (u->key == NULL)
        goto fail;
    memcpy(u->key, key, len);
    u->kind = kind;
    u->len = len;
    u->line = n != NULL ? (unsigned long)n->start_mark.line + 1 : 0;
    u->col = n != NULL ? (unsigned long)n->start_mark.column + 1 : 0;
    c->seenix[at] = (uint32_t)c->nseen + 1;
    c->nseen++;
    return NULL;
fail:
    c->oom = true;
    return NULL;
}

const struct cr_cfgload_first *cr_cfgload_seen_str(struct cr_cfgload *c, int kind, const char *s,
                                                   const yaml_node_t *n)
{
    return cr_cfgload_seen(c, kind, s, strlen(s), n);
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
static const char *suggest(const struct cr_cfgload_table *t, const char *name)
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

static void unknown_key(struct cr_cfgload *c, const struct cr_cfgload_table *t,
                        const yaml_node_t *kn)
{
    const char *s = suggest(t, cr_cfgload_str(kn));
    char list[512] = "";
    size_t used = 0;

    if (s != NULL) {
        ERR(c, kn, "unknown key '%s' (did you mean '%s'?)", cr_cfgload_str(kn), s);
        return;
    }
    for (size_t i = 0; i < t->nkeys && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 t->keys[i].name);
    ERR(c, kn, "unknown key '%s' (valid keys here: %s)", cr_cfgload_str(kn), list);
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

/* ------------------------------------------------------------ scalar values */

char *cr_cfgload_path(struct cr_cfgload *c, const char *p)
{
    char *out = NULL;

    if (p[0] == '/' || c->base_dir == NULL)
        return cr_cfgload_strdup(c, p);
    if (asprintf(&out, "%s/%s", c->base_dir, p) < 0) {
        c->oom = true;
        return NULL;
    }
    return out;
}

static void check_readable(struct cr_cfgload *c, const char *what, const char *path,
                           const yaml_node_t *n)
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
bool cr_cfgload_decimal(const char *s, uint64_t *v)
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

static const char *format_value(enum cr_cfgload_type t, uint64_t v, char *buf, size_t len)
{
    if (t == CR_CFGLOAD_SIZE)
        return format_size(v, buf, len);
    if (t == CR_CFGLOAD_DURATION)
        return cr_format_duration(v, buf, len);
    snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

/* What a key's value must be: "an integer between 1 and 64", "a duration". */
static const char *describe(const struct cr_cfgload_key *k, char *buf, size_t len)
{
    static const char *const plain[] = {
        [CR_CFGLOAD_STR] = "a string",
        [CR_CFGLOAD_PATH] = "a file path",
        [CR_CFGLOAD_RATE] = "a rate (e.g. 100/s, 60/min or unlimited)",
        [CR_CFGLOAD_BOOL] = "a boolean (true/false, yes/no, on/off)",
        [CR_CFGLOAD_ADDR] = "a HOST:PORT address",
        [CR_CFGLOAD_MAP] = "a mapping",
        [CR_CFGLOAD_LIST] = "a list",
        [CR_CFGLOAD_STRLIST] = "a list",
        [CR_CFGLOAD_ADDRLIST] = "a list",
        [CR_CFGLOAD_CUSTOM] = "a string",
    };
    const char *noun = k->type == CR_CFGLOAD_SIZE ? "a size" : "a duration";
    char lo[32], hi[32];
    size_t used;

    if (k->type == CR_CFGLOAD_UINT) {
        snprintf(buf, len, "an integer between %llu and %llu", (unsigned long long)k->min,
                 (unsigned long long)k->max);
    } else if (k->type == CR_CFGLOAD_SIZE || k->type == CR_CFGLOAD_DURATION) {
        format_value(k->type, k->min, lo, sizeof(lo));
        format_value(k->type, k->max, hi, sizeof(hi));
        if (k->max == UINT64_MAX && k->min == 0)
            snprintf(buf, len, "%s", noun);
        else if (k->max == UINT64_MAX)
            snprintf(buf, len, "%s of at least %s", noun, lo);
        else
            snprintf(buf, len, "%s between %s and %s", noun, lo, hi);
    } else if (k->type == CR_CFGLOAD_ENUM) {
        used = (size_t)snprintf(buf, len, "one of");
        for (size_t i = 0; k->names[i] != NULL && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s %s", i ? "," : "", k->names[i]);
    } else {
        snprintf(buf, len, "%s", plain[k->type]);
    }
    return buf;
}

static void type_error(struct cr_cfgload *c, const struct cr_cfgload_key *k, const yaml_node_t *n)
{
    char want[160], g[80];

    ERR(c, n, "'%s' must be %s, got %s", k->name, describe(k, want, sizeof(want)),
        cr_cfgload_got(n, g, sizeof(g)));
}

static void set_number(struct cr_cfgload *c, const struct cr_cfgload_key *k, const yaml_node_t *n,
                       const char *text, void *field)
{
    const char *noun = k->type == CR_CFGLOAD_SIZE ? "size" : "duration";
    char why[160], want[160];
    uint64_t v;
    int rc;

    if (k->type == CR_CFGLOAD_UINT) {
        if (!cr_cfgload_decimal(text, &v) || v < k->min || v > k->max) {
            ERR(c, n, "'%s' must be %s, got '%s'", k->name, describe(k, want, sizeof(want)), text);
            return;
        }
        *(uint32_t *)field = (uint32_t)v;
        return;
    }
    if (k->type == CR_CFGLOAD_SIZE)
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
static void set_scalar(struct cr_cfgload *c, const struct cr_cfgload_key *k, const yaml_node_t *n,
                       const char *text, void *field)
{
    char why[160], want[160];
    bool b;

    switch (k->type) {
    case CR_CFGLOAD_STR:
        cr_cfgload_set_str(field, cr_cfgload_strdup(c, text));
        break;
    case CR_CFGLOAD_PATH:
        cr_cfgload_set_str(field, cr_cfgload_path(c, text));
        if ((k->flags & CR_CFGLOAD_READABLE) && !c->no_file_checks && *(char **)field != NULL)
            check_readable(c, k->name, *(char **)field, n);
        break;
    case CR_CFGLOAD_UINT:
    case CR_CFGLOAD_SIZE:
    case CR_CFGLOAD_DURATION:
        set_number(c, k, n, text, field);
        break;
    case CR_CFGLOAD_RATE:
        if (cr_parse_rate(text, (double *)field, why, sizeof(why)) != 0)
            ERR(c, n, "'%s': invalid rate '%s': %s", k->name, text, why);
        break;
    case CR_CFGLOAD_BOOL:
        if (parse_bool(text, &b))
            *(bool *)field = b;
        else
            ERR(c, n, "'%s' must be %s, got '%s'", k->name, describe(k, want, sizeof(want)), text);
        break;
    case CR_CFGLOAD_ENUM:
        for (int i = 0; k->names[i] != NULL; i++) {
            if (strcmp(text, k->names[i]) == 0) {
                *(int *)field = i;
                return;
            }
        }
        ERR(c, n, "'%s' must be %s, got '%s'", k->name, describe(k, want, sizeof(want)), text);
        break;
    case CR_CFGLOAD_ADDR:
        if (addr_parse(text, k->flags & CR_CFGLOAD_WILDCARD, field, why, sizeof(why)) != 0)
            ERR(c, n, "'%s': invalid address '%s': %s", k->name, text, why);
        break;
    default:
        assert(!"not a scalar type");
    }
}

/* ------------------------------------------------------------ the walker */

static void parse_map(struct cr_cfgload *c, const struct cr_cfgload_table *t, yaml_node_t *map,
                      void *obj);

/* A LIST: a sequence of mappings, each parsed through k->sub. */
static void parse_list(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                       void *obj)
{
    size_t len = cr_cfgload_seq_len(n), saved = c->item;
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
    memcpy(cr_cfgload_field(obj, k->off), &items, sizeof(items));
    *cr_cfgload_count(obj, k) = len;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = cr_cfgload_seq_at(c, n, i);
        if (item->type != YAML_MAPPING_NODE) {
            ERR(c, item, "each '%s' entry must be a mapping, got %s", k->name,
                cr_cfgload_got(item, g, sizeof(g)));
            continue;
        }
        c->item = i;
        parse_map(c, k->sub, item, items + i * k->size);
    }
    c->item = saved;
}

/* A STRLIST or ADDRLIST: a sequence of scalars. Entries
 * keep their index; a bad one is left NULL (or zeroed) and reported. */
static void parse_scalar_list(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *n,
                              void *obj)
{
    size_t len = cr_cfgload_seq_len(n),
           esize = k->type == CR_CFGLOAD_STRLIST ? sizeof(char *) : sizeof(struct cr_addr);
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
    memcpy(cr_cfgload_field(obj, k->off), &items, sizeof(items));
    *cr_cfgload_count(obj, k) = len;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *item = cr_cfgload_seq_at(c, n, i);
        if (!cr_cfgload_is_value(item) || *cr_cfgload_str(item) == '\0') {
            ERR(c, item, "each '%s' entry must be %s, got %s", k->name,
                k->type == CR_CFGLOAD_STRLIST ? "a non-empty string" : "a HOST:PORT address",
                cr_cfgload_got(item, g, sizeof(g)));
        } else if (k->type == CR_CFGLOAD_STRLIST) {
            ((char **)(void *)items)[i] = cr_cfgload_strdup(c, cr_cfgload_str(item));
        } else if (addr_parse(cr_cfgload_str(item), k->flags & CR_CFGLOAD_WILDCARD,
                              (struct cr_addr *)(void *)items + i, why, sizeof(why)) != 0) {
            ERR(c, item, "'%s': invalid address '%s': %s", k->name, cr_cfgload_str(item), why);
        }
    }
}

/* One key of a mapping; n is its value node, NULL when the key is absent. */
static void parse_key(struct cr_cfgload *c, const struct cr_cfgload_key *k, yaml_node_t *map,
                      yaml_node_t *n, void *obj)
{
    void *field = cr_cfgload_field(obj, k->off);

    if (k->type == CR_CFGLOAD_CUSTOM) {
        k->fn(c, k, n, obj);
        return;
    }
    if (n == NULL) {
        if ((k->flags & CR_CFGLOAD_REQUIRED) && map != NULL)
            ERR(c, map, "missing required key '%s'", k->name);
        else if (k->type == CR_CFGLOAD_MAP && !(k->flags & CR_CFGLOAD_ABSENT_OFF))
            parse_map(c, k->sub, NULL, field);
        else if (k->dflt != NULL)
            set_scalar(c, k, map, k->dflt, field);
        return;
    }
    switch (k->type) {
    case CR_CFGLOAD_MAP:
        if (n->type != YAML_MAPPING_NODE)
            type_error(c, k, n);
        else
            parse_map(c, k->sub, n, field);
        break;
    case CR_CFGLOAD_LIST:
    case CR_CFGLOAD_STRLIST:
    case CR_CFGLOAD_ADDRLIST:
        if (n->type != YAML_SEQUENCE_NODE)
            type_error(c, k, n);
        else if (k->type == CR_CFGLOAD_LIST)
            parse_list(c, k, n, obj);
        else
            parse_scalar_list(c, k, n, obj);
        break;
    default:
        if (!cr_cfgload_is_value(n) || (k->type == CR_CFGLOAD_STR && *cr_cfgload_str(n) == '\0'))
            type_error(c, k, n);
        else
            set_scalar(c, k, n, cr_cfgload_str(n), field);
    }
}

/* Matches the mapping's keys to the table: unknown and duplicate keys. */
static void collect_keys(struct cr_cfgload *c, const struct cr_cfgload_table *t, yaml_node_t *map,
                         struct cr_cfgload_level *l)
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
        i = key_index(t, cr_cfgload_str(kn));
        if (i < 0) {
            unknown_key(c, t, kn);
        } else if (l->key[i] != NULL) {
            ERR(c, kn, "duplicate key '%s' (first defined at %lu:%lu)", cr_cfgload_str(kn),
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
static void parse_map(struct cr_cfgload *c, const struct cr_cfgload_table *t, yaml_node_t *map,
                      void *obj)
{
    struct cr_cfgload_level l;

    assert(t->nkeys <= CR_CFGLOAD_MAX_KEYS && c->depth < CR_CFGLOAD_MAX_DEPTH);
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
void cr_cfgload_free(const struct cr_cfgload_table *t, void *obj)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct cr_cfgload_key *k = &t->keys[i];
        void *field = cr_cfgload_field(obj, k->off);
        char *items;

        switch (k->type) {
        case CR_CFGLOAD_STR:
        case CR_CFGLOAD_PATH:
            cr_cfgload_set_str(field, NULL);
            break;
        case CR_CFGLOAD_MAP:
            cr_cfgload_free(k->sub, field);
            break;
        case CR_CFGLOAD_LIST:
        case CR_CFGLOAD_STRLIST:
        case CR_CFGLOAD_ADDRLIST:
            memcpy(&items, field, sizeof(items));
            for (size_t j = 0; items != NULL && j < *cr_cfgload_count(obj, k); j++) {
                if (k->type == CR_CFGLOAD_LIST)
                    cr_cfgload_free(k->sub, items + j * k->size);
                else if (k->type == CR_CFGLOAD_STRLIST)
                    free(((char **)(void *)items)[j]);
            }
            free(items);
            memset(field, 0, sizeof(items));
            *cr_cfgload_count(obj, k) = 0;
            break;
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------ loading */

/* libyaml's reader errors carry a byte offset rather than a mark. */
static void syntax_error(struct cr_cfgload *c, const yaml_parser_t *p, const char *text, size_t len)
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

/* ------------------------------------------------------------ the document
 *
 * libyaml's yaml_parser_load builds a document in which an alias is one more
 * reference to its anchor's node: the walker then expands it at every use,
 * with no limit (a few lines of nested aliases make billions of values), and
 * an alias inside its own anchor makes a cycle. So the document is built here
 * from the parser's events, with the limits checked before the work they
 * limit: the nesting, before a collection is opened (libyaml's own stacks
 * stay small too); the values, counted as the walker would see them with
 * every alias expanded, before a node or an alias is added. */

/* An anchor: the node it names and, once the node is complete, its size
 * and height with its own aliases expanded. Height counts levels of
 * collections: 0 for a scalar, 1 for a list of scalars. */
struct anchor {
    char *name;
    int id;
    bool done;
    uint64_t size;
    size_t height;
    yaml_mark_t mark;
};

/* An open collection. */
struct frame {
    int id;
    int key;         /* mapping: the key waiting for its value, 0 = none */
    uint64_t before; /* values counted before it */
    size_t height;   /* of its tallest entry so far, 0 for scalars */
    long anchor;     /* index in anchors, -1 = none */
};

struct build {
    struct cr_cfgload *c;
    yaml_document_t *doc;
    struct frame stack[CR_CFGLOAD_MAX_NESTING];
    size_t depth;
    uint64_t values; /* with every alias expanded */
    struct anchor *anchors;
    size_t nanchors, capanchors;
    uint32_t *index; /* open addressing over anchors: index + 1, 0 = empty */
    size_t capindex;
};

static uint64_t anchor_key(void *arg, size_t i)
{
    const struct build *b = arg;

    return hash_bytes(0, b->anchors[i].name, strlen(b->anchors[i].name));
}

/* The slot of anchor name in the index: where it is, or the empty slot it
 * would take. The index is never full (index_grow keeps it half empty). */
static size_t anchor_slot(const struct build *b, const char *name)
{
    size_t at = hash_bytes(0, name, strlen(name)) & (b->capindex - 1);

    while (b->index[at] != 0 && strcmp(b->anchors[b->index[at] - 1].name, name) != 0)
        at = (at + 1) & (b->capindex - 1);
    return at;
}

static struct anchor *anchor_find(const struct build *b, const char *name)
{
    size_t at;

    if (b->capindex == 0)
        return NULL;
    at = anchor_slot(b, name);
    return b->index[at] != 0 ? &b->anchors[b->index[at] - 1] : NULL;
}

/* Records anchor name for node id; returns its index, or -1 after an
 * error (duplicate anchor, or out of memory). */
static long anchor_add(struct build *b, const char *name, int id, const yaml_mark_t *m)
{
    struct anchor *a = anchor_find(b, name);

    if (a != NULL) {
        report(b->c, m, true, "syntax error: found duplicate anchor '&%s' (first at %lu:%lu)", name,
               (unsigned long)a->mark.line + 1, (unsigned long)a->mark.column + 1);
        return -1;
    }
    if (b->nanchors == b->capanchors) {
        size_t cap = b->capanchors ? b->capanchors * 2 : 16;
        a = realloc(b->anchors, cap * sizeof(*a));
        if (a == NULL)
            goto oom;
        b->anchors = a;
        b->capanchors = cap;
    }
    if (2 * (b->nanchors + 1) > b->capindex &&
        !index_grow(&b->index, &b->capindex, b->nanchors, anchor_key, b))
        goto oom;
    a = &b->anchors[b->nanchors];
    *a = (struct anchor){.name = strdup(name), .id = id, .mark = *m};
    if (a->name == NULL)
        goto oom;
    b->index[anchor_slot(b, name)] = (uint32_t)b->nanchors + 1;
    return (long)b->nanchors++;
oom:
    b->c->oom = true;
    return -1;
}

static void build_free(struct build *b)
{
    for (size_t i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
    free(b->index);
}

/* Counts n more values; false (reported at m) past CR_CFGLOAD_MAX_VALUES. */
static bool count_values(struct build *b, uint64_t n, const char *alias, const yaml_mark_t *m)
{
    if (n <= CR_CFGLOAD_MAX_VALUES - b->values) {
        b->values += n;
        return true;
    }
    if (alias != NULL)
        report(b->c, m, true,
               "alias '*%s' makes more than %u values once every alias is expanded "
               "(an alias of an alias multiplies: is this an alias bomb?)",
               alias, CR_CFGLOAD_MAX_VALUES);
    else
        report(b->c, m, true, "more than %u values in the document", CR_CFGLOAD_MAX_VALUES);
    return false;
}

/* Adds node id (height h) to the open collection, or leaves it as the root. */
static bool attach(struct build *b, int id, size_t h)
{
    struct frame *f;
    int ok;

    if (b->depth == 0)
        return true;
    f = &b->stack[b->depth - 1];
    f->height = CR_MAX(f->height, h);
    if (yaml_document_get_node(b->doc, f->id)->type == YAML_SEQUENCE_NODE) {
        ok = yaml_document_append_sequence_item(b->doc, f->id, id);
    } else if (f->key == 0) {
        f->key = id;
        ok = 1;
    } else {
        ok = yaml_document_append_mapping_pair(b->doc, f->id, f->key, id);
        f->key = 0;
    }
    if (!ok)
        b->c->oom = true;
    return ok;
}

static yaml_char_t *tag_of(yaml_char_t *tag)
{
    return tag != NULL && strcmp((const char *)tag, "!") != 0 ? tag : NULL;
}

static void set_marks(struct build *b, int id, const yaml_event_t *e)
{
    yaml_node_t *n = yaml_document_get_node(b->doc, id);

    n->start_mark = e->start_mark;
    n->end_mark = e->end_mark;
}

static bool on_scalar(struct build *b, yaml_event_t *e)
{
    int id;
    long a;

    if (!count_values(b, 1, NULL, &e->start_mark))
        return false;
    id = yaml_document_add_scalar(b->doc, tag_of(e->data.scalar.tag), e->data.scalar.value,
                                  (int)e->data.scalar.length, e->data.scalar.style);
    if (id == 0) {
        b->c->oom = true;
        return false;
    }
    set_marks(b, id, e);
    if (e->data.scalar.anchor != NULL) {
        if ((a = anchor_add(b, (const char *)e->data.scalar.anchor, id, &e->start_mark)) < 0)
            return false;
        b->anchors[a].done = true;
        b->anchors[a].size = 1;
    }
    return attach(b, id, 0);
}

static bool on_alias(struct build *b, yaml_event_t *e)
{
    const char *name = (const char *)e->data.alias.anchor;
    struct anchor *a = anchor_find(b, name);

    if (a == NULL) {
        report(b->c, &e->start_mark, true, "syntax error: found undefined alias '*%s'", name);
        return false;
    }
    if (!a->done) {
        report(b->c, &e->start_mark, true,
               "alias '*%s' is inside the node it names (defined at %lu:%lu): a cycle", name,
               (unsigned long)a->mark.line + 1, (unsigned long)a->mark.column + 1);
        return false;
    }
    if (b->depth + a->height > CR_CFGLOAD_MAX_NESTING) {
        report(b->c, &e->start_mark, true,
               "alias '*%s' nests collections more than %d deep once expanded", name,
               CR_CFGLOAD_MAX_NESTING);
        return false;
    }
    if (!count_values(b, a->size, name, &e->start_mark))
        return false;
    return attach(b, a->id, a->height);
}

static bool on_collection_start(struct build *b, yaml_event_t *e)
{
    bool seq = e->type == YAML_SEQUENCE_START_EVENT;
    yaml_char_t *anchor = seq ? e->data.sequence_start.anchor : e->data.mapping_start.anchor;
    struct frame *f;
    int id;

    if (b->depth == CR_CFGLOAD_MAX_NESTING) {
        report(b->c, &e->start_mark, true, "collections nested more than %d deep",
               CR_CFGLOAD_MAX_NESTING);
        return false;
    }
    if (!count_values(b, 1, NULL, &e->start_mark))
        return false;
    if (seq)
        id = yaml_document_add_sequence(b->doc, tag_of(e->data.sequence_start.tag),
                                        e->data.sequence_start.style);
    else
        id = yaml_document_add_mapping(b->doc, tag_of(e->data.mapping_start.tag),
                                       e->data.mapping_start.style);
    if (id == 0) {
        b->c->oom = true;
        return false;
    }
    set_marks(b, id, e);
    /* attached now, so that the root is the document's first node */
    if (!attach(b, id, 1))
        return false;
    f = &b->stack[b->depth++];
    *f = (struct frame){.id = id, .before = b->values - 1, .anchor = -1};
    if (anchor != NULL && (f->anchor = anchor_add(b, (const char *)anchor, id, &e->start_mark)) < 0)
        return false;
    return true;
}

static void on_collection_end(struct build *b, yaml_event_t *e)
{
    struct frame *f = &b->stack[--b->depth];
    size_t h = f->height + 1;

    yaml_document_get_node(b->doc, f->id)->end_mark = e->end_mark;
    if (f->anchor >= 0) {
        struct anchor *a = &b->anchors[f->anchor];
        a->done = true;
        a->size = b->values - f->before;
        a->height = h;
    }
    if (b->depth > 0)
        b->stack[b->depth - 1].height = CR_MAX(b->stack[b->depth - 1].height, h);
}

/* One event of the document's content into it; false to stop. */
static bool on_event(struct build *b, yaml_event_t *e)
{
    switch (e->type) {
    case YAML_SCALAR_EVENT:
        return on_scalar(b, e);
    case YAML_ALIAS_EVENT:
        return on_alias(b, e);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return on_collection_start(b, e);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        on_collection_end(b, e);
        return true;
    default:
        return true;
    }
}

/* Like yaml_parser_load, with the limits above: the next document of the
 * stream into doc (with no root node at the end of the stream). Returns 0,
 * or CR_EINVAL after reporting why (a syntax error, a limit, or c->oom);
 * doc is to be deleted either way. */
static int load_document(struct cr_cfgload *c, yaml_parser_t *p, yaml_document_t *doc,
                         const char *text, size_t len)
{
    struct build b = {.c = c, .doc = doc};
    yaml_event_t e;
    bool ok = true, done = false;

    memset(doc, 0, sizeof(*doc));
    while (ok && !done) {
        if (p->stream_end_produced)
            break;
        if (!yaml_parser_parse(p, &e)) {
            syntax_error(c, p, text, len);
            ok = false;
            break;
        }
        switch (e.type) {
        case YAML_STREAM_START_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (!yaml_document_initialize(doc, NULL, NULL, NULL, e.data.document_start.implicit,
                                          1)) {
                c->oom = true;
                ok = false;
            }
            doc->start_mark = e.start_mark;
            break;
        case YAML_DOCUMENT_END_EVENT:
            doc->end_mark = e.end_mark;
            done = true;
            break;
        default:
            ok = on_event(&b, &e);
        }
        yaml_event_delete(&e);
    }
    build_free(&b);
    return ok ? 0 : CR_EINVAL;
}

void cr_cfgload_init(struct cr_cfgload *c, const char *name, const char *base_dir, void *user)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->base_dir = base_dir;
    c->user = user;
}

/* Parses the YAML, checks it holds exactly one mapping, and walks it. */
void *cr_cfgload_parse(struct cr_cfgload *c, const char *text, size_t len,
                       const struct cr_cfgload_table *table, size_t root_size)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_node_t *root;
    char g[80];

    if (!yaml_parser_initialize(&parser)) {
        c->oom = true;
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (load_document(c, &parser, &doc, text, len) < 0)
        goto fail_doc;
    c->doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL || is_null(root)) {
        report(c, NULL, true, "empty configuration");
        goto fail_doc;
    }
    if (root->type != YAML_MAPPING_NODE) {
        ERR(c, root, "the top level must be a mapping of keys, got %s",
            cr_cfgload_got(root, g, sizeof(g)));
        goto fail_doc;
    }
    if (load_document(c, &parser, &extra, text, len) == 0 &&
        yaml_document_get_root_node(&extra) != NULL &&
        !is_null(yaml_document_get_root_node(&extra)))
        report(c, &extra.start_mark, true, "only one YAML document is allowed in the file");
    yaml_document_delete(&extra);
    if (c->nerrors == 0) {
        c->root = calloc(1, root_size);
        if (c->root == NULL)
            c->oom = true;
        else
            parse_map(c, table, root, c->root);
    }
fail_doc:
    c->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return c->root;
}

void cr_cfgload_finish(struct cr_cfgload *c, struct cr_diag *d)
{
    diag_take(c, d);
    for (size_t i = 0; i < c->nseen; i++)
        free(c->seen[i].key);
    free(c->seen);
    c->seen = NULL;
    c->nseen = 0;
    free(c->seenix);
    c->seenix = NULL;
    c->capseenix = 0;
}
