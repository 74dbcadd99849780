/* rp_accesslog.c - reading corral's JSON access log and replaying it. */
#include "rp_accesslog.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define MAX_ERRORS 20
#define MAX_LINE (1u << 20)

struct entry {
    uint64_t at_us;   /* since the first start, already divided by the speed-up */
    int64_t start_ms; /* as logged */
    size_t seq;       /* line order, to break ties */
    uint32_t tenant;
    uint32_t method;
    const char *path;
    uint64_t body;
};

struct rp_accesslog {
    struct entry *e;
    size_t n, cap, cursor, skipped, dropped;
    char **tenants, **methods; /* distinct, in order of first appearance */
    size_t ntenants, nmethods;
    char **chunks; /* path storage */
    size_t nchunks;
    char *chunk;
    size_t chunk_left;
};

/* ------------------------------------------------------------ one line */

struct cursor {
    const char *s, *end, *start;
    char *err;
    size_t errlen, *col;
};

static int fail(struct cursor *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct cursor *c, const char *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    *c->col = (size_t)(at - c->start) + 1;
    return CR_EINVAL;
}

static void ws(struct cursor *c)
{
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\r'))
        c->s++;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* \uXXXX at p (after the backslash-u) into *cp. */
static bool hex4(const char *p, const char *end, unsigned *cp)
{
    *cp = 0;
    if (end - p < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        int v = hexval((unsigned char)p[i]);
        if (v < 0)
            return false;
        *cp = *cp << 4 | (unsigned)v;
    }
    return true;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* A JSON string at c->s (the opening quote) decoded into *o, which
 * advances past the NUL. A decoded string is never longer than its text. */
static int string(struct cursor *c, char **o, const char **out)
{
    const char *q = c->s;
    char *w = *o;

    *out = w;
    c->s++;
    while (c->s < c->end && *c->s != '"') {
        unsigned char ch = (unsigned char)*c->s;
        if (ch < 0x20)
            return fail(c, c->s, "control character in a string");
        if (ch != '\\') {
            *w++ = (char)ch;
            c->s++;
            continue;
        }
        if (++c->s >= c->end)
            break;
        const char *esc = c->s - 1;
        switch (*c->s++) {
        case '"':
            *w++ = '"';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '/':
            *w++ = '/';
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            unsigned cp;
            if (!hex4(c->s, c->end, &cp) || cp == 0)
                return fail(c, esc, "bad \\u escape");
            c->s += 4;
            w = put_utf8(w, cp);
            break;
        }
        default:
            return fail(c, esc, "bad escape in a string");
        }
    }
    if (c->s >= c->end)
        return fail(c, q, "unterminated string");
    c->s++;
    *w++ = '\0';
    *o = w;
    return 0;
}

enum vtype { V_STR, V_NUM, V_NULL, V_BOOL };

struct value {
    enum vtype type;
    const char *str;
    double num;
    const char *at;
};

static int value(struct cursor *c, char **o, struct value *v)
{
    char *end;

    v->at = c->s;
    if (c->s >= c->end)
        return fail(c, c->s, "a value is missing");
    if (*c->s == '"') {
        v->type = V_STR;
        return string(c, o, &v->str);
    }
    if (*c->s == '-' || isdigit((unsigned char)*c->s)) {
        char num[64];
        size_t n = 0;
        while (c->s + n < c->end && n < sizeof(num) - 1 && strchr("+-.eE0123456789", c->s[n]))
            n++;
        memcpy(num, c->s, n);
        num[n] = '\0';
        errno = 0;
        v->num = strtod(num, &end);
        if (errno != 0 || *end != '\0' || !isfinite(v->num))
            return fail(c, c->s, "bad number");
        v->type = V_NUM;
        c->s += n;
        return 0;
    }
    static const struct {
        const char *word;
        enum vtype type;
    } words[] = {{"null", V_NULL}, {"true", V_BOOL}, {"false", V_BOOL}};
    for (size_t i = 0; i < CR_ARRAY_LEN(words); i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(c->end - c->s) >= n && memcmp(c->s, words[i].word, n) == 0) {
            v->type = words[i].type;
            c->s += n;
            return 0;
        }
    }
    if (*c->s == '{' || *c->s == '[')
        return fail(c, c->s, "nested objects and arrays are not part of corral's access log");
    return fail(c, c->s, "not a JSON value");
}

/* "2024-05-01T12:00:00.123Z" (or with +hh:mm) into ms since the epoch. */
static bool parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    int frac = 0, digits = 0, sign = 0, oh = 0, om = 0;
    const char *p;

    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return false;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        if (digits == 0)
            return false;
        for (int i = digits; i < 3; i++)
            frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return false;
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    *ms = ((int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60)) * 1000 + frac;
    return true;
}

static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

/* Checks a field's value and stores it in out. */
static int field(struct cursor *c, const char *key, const struct value *v, struct rp_log_line *out,
                 int64_t *time_ms, double *total_ms)
{
    bool str_or_null = v->type == V_STR || v->type == V_NULL;

    if (strcmp(key, "time") == 0) {
        if (v->type != V_STR || !parse_time(v->str, time_ms))
            return fail(c, v->at,
                        "'time' must be an RFC 3339 time such as "
                        "\"2024-05-01T12:00:00.123Z\"");
        return 1;
    }
    if (strcmp(key, "total_ms") == 0) {
        if (v->type != V_NUM && v->type != V_NULL)
            return fail(c, v->at, "'total_ms' must be a number or null");
        *total_ms = v->type == V_NUM ? v->num : 0.0;
        if (*total_ms < 0.0 || *total_ms > 86400e3)
            return fail(c, v->at, "'total_ms' is out of range");
    } else if (strcmp(key, "bytes_in") == 0) {
        if (v->type != V_NUM || v->num < 0 || v->num > 1e12 || v->num != floor(v->num))
            return fail(c, v->at, "'bytes_in' must be a byte count");
        out->body = (uint64_t)v->num;
    } else if (strcmp(key, "tenant") == 0 || strcmp(key, "method") == 0 ||
               strcmp(key, "path") == 0) {
        if (!str_or_null)
            return fail(c, v->at, "'%s' must be a string or null", key);
        const char *s = v->type == V_STR ? v->str : NULL;
        if (s != NULL && (*s == '\0' || !printable(s)))
            return fail(c, v->at, "'%s' must be non-empty, without spaces or control characters",
                        key);
        if (key[0] == 't')
            out->tenant = s != NULL ? s : "default";
        else if (key[0] == 'm')
            out->method = s;
        else if (s != NULL && s[0] != '/' && strcmp(s, "*") != 0)
            return fail(c, v->at, "'path' must start with '/'");
        else
            out->path = s;
    }
    return 0;
}

int rp_accesslog_parse_line(const char *line, size_t len, char *buf, size_t bufsize,
                            struct rp_log_line *out, char *err, size_t errlen, size_t *col)
{
    struct cursor c = {line, line + len, line, err, errlen, col};
    char *o = buf;
    int64_t time_ms = 0;
    double total_ms = 0.0;
    bool have_time = false, first = true;
    int rc;

    memset(out, 0, sizeof(*out));
    out->tenant = "default";
    if (bufsize < len + 1)
        return fail(&c, line, "line too long");
    ws(&c);
    if (c.s >= c.end || *c.s != '{')
        return fail(&c, c.s, "expected a JSON object ('{')");
    c.s++;
    for (;;) {
        const char *key;
        struct value v;
        ws(&c);
        if (first && c.s < c.end && *c.s == '}')
            break;
        first = false;
        if (c.s >= c.end || *c.s != '"')
            return fail(&c, c.s, "expected a key (a string)");
        if ((rc = string(&c, &o, &key)) != 0)
            return rc;
        ws(&c);
        if (c.s >= c.end || *c.s != ':')
            return fail(&c, c.s, "expected ':' after \"%s\"", key);
        c.s++;
        ws(&c);
        if ((rc = value(&c, &o, &v)) != 0 ||
            (rc = field(&c, key, &v, out, &time_ms, &total_ms)) < 0)
            return rc;
        have_time |= rc == 1;
        ws(&c);
        if (c.s < c.end && *c.s == ',') {
            c.s++;
            continue;
        }
        if (c.s < c.end && *c.s == '}')
            break;
        return fail(&c, c.s, "expected ',' or '}'");
    }
    c.s++;
    ws(&c);
    if (c.s != c.end)
        return fail(&c, c.s, "unexpected text after the object");
    if (!have_time)
        return fail(&c, line, "no \"time\" field: not a corral access log line");
    if ((out->method == NULL) != (out->path == NULL)) {
        out->method = out->path = NULL; /* only half a request: skipped */
    }
    out->start_ms = time_ms - (int64_t)llround(total_ms);
    return 0;
}

/* ------------------------------------------------------------ the log */

void rp_accesslog_free(struct rp_accesslog *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->ntenants; i++)
        free(l->tenants[i]);
    for (size_t i = 0; i < l->nmethods; i++)
        free(l->methods[i]);
    for (size_t i = 0; i < l->nchunks; i++)
        free(l->chunks[i]);
    free(l->tenants);
    free(l->methods);
    free(l->chunks);
    free(l->e);
    free(l);
}

/* The index of s in the list *v of *n strings, added when new; -1 on OOM. */
static long intern(char ***v, size_t *n, const char *s)
{
    char **nv;

    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0)
            return (long)i;
    if (*n >= UINT32_MAX || (nv = realloc(*v, (*n + 1) * sizeof(char *))) == NULL)
        return -1;
    *v = nv;
    if ((nv[*n] = strdup(s)) == NULL)
        return -1;
    return (long)(*n)++;
}

/* A copy of s in the log's path storage. */
static const char *keep(struct rp_accesslog *l, const char *s)
{
    size_t n = strlen(s) + 1;

    if (n > l->chunk_left) {
        size_t size = CR_MAX(n, (size_t)1 << 20);
        char **nc = realloc(l->chunks, (l->nchunks + 1) * sizeof(char *));
        if (nc == NULL)
            return NULL;
        l->chunks = nc;
        if ((l->chunk = malloc(size)) == NULL)
            return NULL;
        l->chunks[l->nchunks++] = l->chunk;
        l->chunk_left = size;
    }
    char *p = memcpy(l->chunk, s, n);
    l->chunk += n;
    l->chunk_left -= n;
    return p;
}

static int add(struct rp_accesslog *l, const struct rp_log_line *ln, int64_t *first)
{
    long t = intern(&l->tenants, &l->ntenants, ln->tenant);
    long m = intern(&l->methods, &l->nmethods, ln->method);
    const char *path = keep(l, ln->path);

    if (t < 0 || m < 0 || path == NULL)
        return CR_ENOMEM;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        struct entry *ne = realloc(l->e, cap * sizeof(*ne));
        if (ne == NULL)
            return CR_ENOMEM;
        l->e = ne;
        l->cap = cap;
    }
    l->e[l->n] = (struct entry){.start_ms = ln->start_ms,
                                .seq = l->n,
                                .tenant = (uint32_t)t,
                                .method = (uint32_t)m,
                                .path = path,
                                .body = ln->body};
    l->n++;
    *first = CR_MIN(*first, ln->start_ms);
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->at_us != y->at_us)
        return x->at_us < y->at_us ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq); /* file order among ties */
}

/* Starts relative to the first, scaled, sorted; drops what is too late. */
static void schedule(struct rp_accesslog *l, int64_t first, double speedup, uint64_t max_ms)
{
    size_t k = 0;

    for (size_t i = 0; i < l->n; i++)
        l->e[i].at_us = (uint64_t)llround((double)(l->e[i].start_ms - first) * 1000.0 / speedup);
    qsort(l->e, l->n, sizeof(*l->e), cmp_entry);
    for (size_t i = 0; i < l->n; i++) {
        if (l->e[i].at_us >= max_ms * 1000)
            l->dropped++;
        else
            l->e[k++] = l->e[i];
    }
    l->n = k;
}

static void too_many(struct cr_diag *d, const char *path, size_t nerr)
{
    if (nerr > MAX_ERRORS)
        cr_diag_add(d, true, "%s: error: %zu more lines with errors are not shown", path,
                    nerr - MAX_ERRORS);
}

/* Reads every line of f into l. Returns 0 or CR_EINVAL/CR_EIO/CR_ENOMEM. */
static int read_lines(struct rp_accesslog *l, FILE *f, const char *path, int64_t *first,
                      struct cr_diag *d)
{
    char *line = NULL, *buf = NULL, err[160];
    size_t cap = 0, bufcap = 0, lineno = 0, nerr = 0, col;
    ssize_t len;
    int rc = 0;

    while ((len = getline(&line, &cap, f)) >= 0) {
        struct rp_log_line ln;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (strspn(line, " \t") == (size_t)len)
            continue;
        if ((size_t)len + 1 > bufcap) {
            free(buf);
            bufcap = (size_t)len + 1;
            if ((buf = malloc(bufcap)) == NULL) {
                rc = CR_ENOMEM;
                break;
            }
        }
        if ((size_t)len > MAX_LINE) {
            if (++nerr <= MAX_ERRORS)
                cr_diag_add(d, true, "%s:%zu:1: error: line longer than %u bytes", path, lineno,
                            MAX_LINE);
            continue;
        }
        if (rp_accesslog_parse_line(line, (size_t)len, buf, bufcap, &ln, err, sizeof(err), &col) !=
            0) {
            if (++nerr <= MAX_ERRORS)
                cr_diag_add(d, true, "%s:%zu:%zu: error: %s", path, lineno, col, err);
            continue;
        }
        if (ln.method == NULL) {
            l->skipped++;
            continue;
        }
        if (nerr == 0 && (rc = add(l, &ln, first)) != 0)
            break;
    }
    if (rc == 0 && ferror(f)) {
        cr_diag_add(d, true, "%s: error: read failed: %s", path, strerror(errno));
        rc = CR_EIO;
    }
    free(line);
    free(buf);
    too_many(d, path, nerr);
    if (rc == 0 && nerr > 0)
        rc = CR_EINVAL;
    return rc;
}

int rp_accesslog_load(const char *path, double speedup, uint64_t max_ms, struct rp_accesslog **out,
                      struct cr_diag *diag)
{
    FILE *f = fopen(path, "r");
    int rc;

    if (f == NULL) {
        memset(diag, 0, sizeof(*diag));
        *out = NULL;
        cr_diag_add(diag, true, "%s: error: cannot read the access log: %s", path, strerror(errno));
        return CR_EIO;
    }
    rc = rp_accesslog_load_stream(f, path, speedup, max_ms, out, diag);
    fclose(f);
    return rc;
}

int rp_accesslog_load_stream(FILE *f, const char *path, double speedup, uint64_t max_ms,
                             struct rp_accesslog **out, struct cr_diag *diag)
{
    struct rp_accesslog *l;
    int64_t first = INT64_MAX;
    int rc;

    memset(diag, 0, sizeof(*diag));
    *out = NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return CR_ENOMEM;
    rc = read_lines(l, f, path, &first, diag);
    if (rc == 0 && l->n == 0) {
        cr_diag_add(diag, true, "%s: error: no requests in the access log", path);
        rc = CR_EINVAL;
    }
    if (rc != 0) {
        if (rc == CR_ENOMEM)
            cr_diag_add(diag, true, "%s: error: out of memory", path);
        rp_accesslog_free(l);
        return rc;
    }
    schedule(l, first, speedup, max_ms);
    *out = l;
    return 0;
}

size_t rp_accesslog_tenants(const struct rp_accesslog *l, const char *const **names)
{
    *names = (const char *const *)l->tenants;
    return l->ntenants;
}

size_t rp_accesslog_count(const struct rp_accesslog *l, size_t *skipped, size_t *dropped)
{
    if (skipped != NULL)
        *skipped = l->skipped;
    if (dropped != NULL)
        *dropped = l->dropped;
    return l->n;
}

uint64_t rp_accesslog_span_us(const struct rp_accesslog *l)
{
    return l->n > 0 ? l->e[l->n - 1].at_us : 0;
}

/* ------------------------------------------------------------ the source */

static int src_next(void *ctx, uint64_t now_us, struct rp_spec *out)
{
    struct rp_accesslog *l = ctx;
    const struct entry *e;

    if (l->cursor >= l->n || l->e[l->cursor].at_us > now_us)
        return 0;
    e = &l->e[l->cursor++];
    *out = (struct rp_spec){
        .tenant = e->tenant,
        .at_us = e->at_us,
        .method = l->methods[e->method],
        .path = e->path,
        .body = e->body,
    };
    return 1;
}

static uint64_t src_peek(void *ctx, uint64_t horizon_us)
{
    struct rp_accesslog *l = ctx;

    if (l->cursor >= l->n || l->e[l->cursor].at_us > horizon_us)
        return UINT64_MAX;
    return l->e[l->cursor].at_us;
}

static int src_done(void *ctx)
{
    struct rp_accesslog *l = ctx;

    return l->cursor >= l->n;
}

struct rp_source rp_accesslog_source(struct rp_accesslog *l)
{
    return (struct rp_source){l, src_next, src_peek, src_done};
}
