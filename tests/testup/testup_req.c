/* testup_req.c - one request, independent of HTTP/1.1 or HTTP/2. */
#include "testup_req.h"

#include <ctype.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "common.h"
#include "testup.h"
#include "testup_json.h"
#include "testup_stats.h"

#define TU_BYTES_MAX 1000000000000ULL /* /bytes/N: N up to 1e12 */
#define TU_DELAY_MAX 3600000ULL       /* /delay/MS: up to an hour */
#define TU_EVENTS_MAX 1000000ULL      /* /events/N: N up to a million */
#define TU_EVERY_DEFAULT 1000ULL      /* /events/N?every=MS: a second apart */

enum tu_route {
    TU_ROUTE_INFO = 0, /* "/" and anything unmatched */
    TU_ROUTE_ECHO,
    TU_ROUTE_BYTES,
    TU_ROUTE_DELAY,
    TU_ROUTE_STATUS,
    TU_ROUTE_HEADERS,
    TU_ROUTE_STATS,
    TU_ROUTE_EVENTS, /* /events/N?every=MS: a server-sent event stream */
    TU_ROUTE_GOAWAY, /* /__goaway: the / answer, then HTTP/2 GOAWAY */
    TU_ROUTE_BAD, /* a known prefix with a malformed argument: 400 */
};

struct tu_hdr {
    char *name, *value;
    size_t nlen, vlen;
};

struct tu_req {
    struct tu_req_link link;
    struct tu_server *srv;
    uint64_t conn_seq, conn_index;
    const char *protocol;
    tu_req_ready_cb ready_cb;
    void *ready_arg;

    /* The head. */
    char *method;
    char *target;
    size_t target_len;
    struct tu_hdr *hdrs;
    size_t nhdrs, hdr_cap;
    size_t head_bytes;
    uint64_t req_length; /* content-length, if has_req_length */
    unsigned has_req_length : 1;
    unsigned expect_continue : 1;

    /* Where the request goes. */
    enum tu_route route;
    uint64_t arg;       /* N, MS or CODE */
    unsigned reset : 1; /* /__stats?reset=1 */

    /* Progress. */
    unsigned head_done : 1, body_done : 1, ready : 1, counted : 1, answered : 1;
    struct event *timer;

    /* The answer. */
    int status;
    const char *ctype;
    uint64_t length;
    unsigned has_length : 1;
    unsigned no_body : 1;
    struct evbuffer *body; /* fixed document, or the /echo buffer */
    uint64_t bytes_left;   /* /bytes generator */
    uint64_t every_ms;     /* /events: the time between two events */
    uint64_t plain;        /* /events?plain=1: as text/plain (a long plain answer) */
    uint64_t events_sent;  /* /events: events put in body so far */
    struct event *tick;    /* /events: the next event */
};

/* 16 KB of 'x' that /bytes answers reference instead of copying. */
static char tu_xs[16384];

struct tu_req *tu_req_new(struct tu_server *srv, uint64_t conn_seq, uint64_t conn_index,
                          const char *protocol, tu_req_ready_cb cb, void *arg)
{
    struct tu_req *req = calloc(1, sizeof(*req));

    if (req == NULL)
        return NULL;
    if (tu_xs[0] != 'x')
        memset(tu_xs, 'x', sizeof(tu_xs));
    req->srv = srv;
    req->conn_seq = conn_seq;
    req->conn_index = conn_index;
    req->protocol = protocol;
    req->ready_cb = cb;
    req->ready_arg = arg;
    return req;
}

struct tu_req_link *tu_req_link(struct tu_req *req)
{
    return &req->link;
}

void tu_req_set_protocol(struct tu_req *req, const char *protocol)
{
    req->protocol = protocol;
}

/* Charges len bytes of head to the request. Returns 0 or CR_ELIMIT. */
static int charge_head(struct tu_req *req, size_t len)
{
    if (len > TU_MAX_HEAD_BYTES || req->head_bytes + len > TU_MAX_HEAD_BYTES)
        return CR_ELIMIT;
    req->head_bytes += len;
    return 0;
}

int tu_req_set_method(struct tu_req *req, const char *m, size_t len)
{
    char *copy;
    int rv = charge_head(req, len);

    if (rv != 0)
        return rv;
    copy = strndup(m, len);
    if (copy == NULL)
        return CR_ENOMEM;
    free(req->method);
    req->method = copy;
    return 0;
}

int tu_req_append_target(struct tu_req *req, const char *s, size_t len)
{
    char *grown;
    int rv = charge_head(req, len);

    if (rv != 0)
        return rv;
    grown = realloc(req->target, req->target_len + len + 1);
    if (grown == NULL)
        return CR_ENOMEM;
    memcpy(grown + req->target_len, s, len);
    req->target = grown;
    req->target_len += len;
    grown[req->target_len] = '\0';
    return 0;
}

/* Parses a decimal number of 1..15 digits, all of s[0..len), <= max.
 * Returns 0 or CR_EINVAL. */
static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > 15)
        return CR_EINVAL;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CR_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return CR_EINVAL;
    *out = v;
    return 0;
}

/* Notes the fields the request itself acts on. */
static void note_header(struct tu_req *req, const char *name, size_t nlen, const char *value,
                        size_t vlen)
{
    uint64_t v;

    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        if (parse_u64(value, vlen, UINT64_MAX / 16, &v) == 0) {
            req->req_length = v;
            req->has_req_length = 1;
        }
    } else if (nlen == 6 && memcmp(name, "expect", 6) == 0) {
        if (vlen == 12 && strncasecmp(value, "100-continue", 12) == 0)
            req->expect_continue = 1;
    }
}

/* The header named name (lower case), or NULL. */
static struct tu_hdr *find_header(const struct tu_req *req, const char *name, size_t nlen)
{
    size_t i;

    for (i = 0; i < req->nhdrs; i++)
        if (req->hdrs[i].nlen == nlen && memcmp(req->hdrs[i].name, name, nlen) == 0)
            return &req->hdrs[i];
    return NULL;
}

/* Appends ", " and value to an existing header. Returns 0 or CR_ENOMEM. */
static int join_header(struct tu_hdr *h, const char *value, size_t vlen)
{
    char *grown = realloc(h->value, h->vlen + 2 + vlen + 1);

    if (grown == NULL)
        return CR_ENOMEM;
    memcpy(grown + h->vlen, ", ", 2);
    memcpy(grown + h->vlen + 2, value, vlen);
    h->value = grown;
    h->vlen += 2 + vlen;
    grown[h->vlen] = '\0';
    return 0;
}

/* Adds a new header (name already lower-cased). Returns 0 or CR_ENOMEM. */
static int push_header(struct tu_req *req, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    struct tu_hdr *h;

    if (req->nhdrs == req->hdr_cap) {
        size_t cap = req->hdr_cap ? req->hdr_cap * 2 : 16;
        struct tu_hdr *grown = realloc(req->hdrs, cap * sizeof(*grown));
        if (grown == NULL)
            return CR_ENOMEM;
        req->hdrs = grown;
        req->hdr_cap = cap;
    }
    h = &req->hdrs[req->nhdrs];
    h->name = strndup(name, nlen);
    h->value = strndup(value, vlen);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return CR_ENOMEM;
    }
    h->nlen = nlen;
    h->vlen = vlen;
    req->nhdrs++;
    return 0;
}

int tu_req_add_header(struct tu_req *req, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    char lower[256];
    char *lname = lower;
    struct tu_hdr *h;
    size_t i;
    int rv = charge_head(req, nlen + vlen + 4);

    if (rv != 0)
        return rv;
    if (nlen >= sizeof(lower)) {
        lname = malloc(nlen);
        if (lname == NULL)
            return CR_ENOMEM;
    }
    for (i = 0; i < nlen; i++)
        lname[i] = (char)tolower((unsigned char)name[i]);
    note_header(req, lname, nlen, value, vlen);
    h = find_header(req, lname, nlen);
    rv = h ? join_header(h, value, vlen) : push_header(req, lname, nlen, value, vlen);
    if (lname != lower)
        free(lname);
    return rv;
}

/* The target without its query string. */
static size_t path_len(const struct tu_req *req)
{
    const char *q = req->target ? memchr(req->target, '?', req->target_len) : NULL;

    return q ? (size_t)(q - req->target) : req->target_len;
}

/* Whether the query string has the parameter "reset=1". */
static int query_has_reset(const struct tu_req *req)
{
    size_t plen = path_len(req);
    const char *p = req->target + plen, *end = req->target + req->target_len;

    while (p < end) {
        const char *amp;
        p++; /* '?' or '&' */
        amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL)
            amp = end;
        if (amp - p == 7 && memcmp(p, "reset=1", 7) == 0)
            return 1;
        p = amp;
    }
    return 0;
}

/* The number of the query parameter name=NUM into *out; 0 when it is
 * there and valid, 1 when it is absent, -1 when it is malformed. */
static int query_num(const struct tu_req *req, const char *name, uint64_t max, uint64_t *out)
{
    size_t plen = path_len(req), nlen = strlen(name);
    const char *p = req->target + plen, *end = req->target + req->target_len;

    while (p < end) {
        const char *amp;
        p++; /* '?' or '&' */
        amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL)
            amp = end;
        if ((size_t)(amp - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=')
            return parse_u64(p + nlen + 1, (size_t)(amp - p) - nlen - 1, max, out) == 0 ? 0 : -1;
        p = amp;
    }
    return 1;
}

/* Routes "/prefix/ARG" to route when ARG is a number <= max and >= min;
 * to TU_ROUTE_BAD otherwise. Returns 1 if the prefix matched. */
static int route_arg(struct tu_req *req, const char *prefix, enum tu_route route, uint64_t min,
                     uint64_t max)
{
    size_t plen = strlen(prefix), len = path_len(req);

    if (len < plen || memcmp(req->target, prefix, plen) != 0)
        return 0;
    if (parse_u64(req->target + plen, len - plen, max, &req->arg) == 0 && req->arg >= min)
        req->route = route;
    else
        req->route = TU_ROUTE_BAD;
    return 1;
}

static int path_is(const struct tu_req *req, const char *path)
{
    size_t n = strlen(path);

    return path_len(req) == n && memcmp(req->target, path, n) == 0;
}

static void route(struct tu_req *req)
{
    req->route = TU_ROUTE_INFO;
    if (req->target == NULL)
        return;
    if (path_is(req, "/__stats")) {
        req->route = TU_ROUTE_STATS;
        req->reset = (unsigned)query_has_reset(req);
    } else if (path_is(req, "/__goaway")) {
        req->route = TU_ROUTE_GOAWAY;
    } else if (path_is(req, "/echo")) {
        req->route = TU_ROUTE_ECHO;
    } else if (path_is(req, "/headers")) {
        req->route = TU_ROUTE_HEADERS;
    } else if (route_arg(req, "/bytes/", TU_ROUTE_BYTES, 0, TU_BYTES_MAX) ||
               route_arg(req, "/delay/", TU_ROUTE_DELAY, 0, TU_DELAY_MAX) ||
               route_arg(req, "/status/", TU_ROUTE_STATUS, 200, 599)) {
        /* routed */
    } else if (route_arg(req, "/events/", TU_ROUTE_EVENTS, 0, TU_EVENTS_MAX)) {
        req->every_ms = TU_EVERY_DEFAULT;
        if (req->route == TU_ROUTE_EVENTS &&
            (query_num(req, "every", TU_DELAY_MAX, &req->every_ms) < 0 ||
             query_num(req, "plain", 1, &req->plain) < 0))
            req->route = TU_ROUTE_BAD;
    }
}

/* {"ok":true,"method":..,"path":..,"protocol":..,"conn":N,"conn_requests":K} */
static int build_info(struct tu_req *req)
{
    struct evbuffer *b = req->body;
    int rv = evbuffer_add_printf(b, "{\"ok\":true,\"method\":") < 0 ? CR_ENOMEM : 0;

    if (rv == 0)
        rv = tu_json_str(b, req->method ? req->method : "", req->method ? strlen(req->method) : 0);
    if (rv == 0)
        rv = evbuffer_add_printf(b, ",\"path\":") < 0 ? CR_ENOMEM : 0;
    if (rv == 0)
        rv = tu_json_str(b, req->target ? req->target : "", req->target_len);
    if (rv == 0)
        rv = evbuffer_add_printf(
                 b, ",\"protocol\":\"%s\",\"conn\":%" PRIu64 ",\"conn_requests\":%" PRIu64 "}\n",
                 req->protocol, req->conn_seq, req->conn_index) < 0
                 ? CR_ENOMEM
                 : 0;
    return rv;
}

/* Appends ,"name":"value" (or without the comma when first). */
static int json_member(struct evbuffer *b, int first, const char *name, size_t nlen,
                       const char *value, size_t vlen)
{
    int rv = first ? 0 : evbuffer_add(b, ",", 1);

    if (rv == 0)
        rv = tu_json_str(b, name, nlen);
    if (rv == 0)
        rv = evbuffer_add(b, ":", 1);
    if (rv == 0)
        rv = tu_json_str(b, value, vlen);
    return rv == 0 ? 0 : CR_ENOMEM;
}

/* {":method":..,":path":..,":version":..,<fields in arrival order>} */
static int build_headers(struct tu_req *req)
{
    struct evbuffer *b = req->body;
    const char *m = req->method ? req->method : "";
    const char *t = req->target ? req->target : "";
    size_t i;
    int rv = evbuffer_add(b, "{", 1) == 0 ? 0 : CR_ENOMEM;

    if (rv == 0)
        rv = json_member(b, 1, ":method", 7, m, strlen(m));
    if (rv == 0)
        rv = json_member(b, 0, ":path", 5, t, req->target_len);
    if (rv == 0)
        rv = json_member(b, 0, ":version", 8, req->protocol, strlen(req->protocol));
    for (i = 0; rv == 0 && i < req->nhdrs; i++)
        rv = json_member(b, 0, req->hdrs[i].name, req->hdrs[i].nlen, req->hdrs[i].value,
                         req->hdrs[i].vlen);
    if (rv == 0)
        rv = evbuffer_add(b, "}\n", 2) == 0 ? 0 : CR_ENOMEM;
    return rv;
}

/* The body of /__stats; resets the counters after reading them when asked. */
static int build_stats(struct tu_req *req)
{
    int rv = tu_stats_json(&req->srv->stats, req->srv->opts.count_header, req->body);

    if (rv == 0)
        rv = evbuffer_add(req->body, "\n", 1) == 0 ? 0 : CR_ENOMEM;
    if (req->reset)
        tu_stats_reset(&req->srv->stats);
    return rv;
}

static int build_fixed(struct tu_req *req)
{
    switch (req->route) {
    case TU_ROUTE_HEADERS:
        return build_headers(req);
    case TU_ROUTE_STATS:
        return build_stats(req);
    case TU_ROUTE_STATUS:
        return evbuffer_add_printf(req->body, "{\"status\":%d}\n", req->status) < 0 ? CR_ENOMEM : 0;
    case TU_ROUTE_BAD:
        return evbuffer_add_printf(req->body, "{\"error\":\"bad argument in path\"}\n") < 0
                   ? CR_ENOMEM
                   : 0;
    default:
        return build_info(req);
    }
}

/* Whether a request's header value may be sent back in an answer's head:
 * no control characters but tab (no header injection). */
static int safe_value(const char *v, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
            return 0;
    return 1;
}

static int status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg);

/* Whether an /events stream has sent all its events (never, for N = 0). */
static int events_over(const struct tu_req *req)
{
    return req->arg > 0 && req->events_sent >= req->arg;
}

/* Appends the next event of an /events stream to its body and arms the
 * timer of the one after, if any. Returns 0 or CR_ENOMEM. */
static int next_event(struct tu_req *req)
{
    struct timeval tv;
    uint64_t k = req->events_sent++;

    if (evbuffer_add_printf(req->body, "id: %" PRIu64 "\ndata: event %" PRIu64 "\n\n", k, k) < 0)
        return CR_ENOMEM;
    if (events_over(req))
        return 0;
    if (req->tick == NULL)
        req->tick = evtimer_new(req->srv->base, tick_cb, req);
    if (req->tick == NULL)
        return CR_ENOMEM;
    tv.tv_sec = (time_t)(req->every_ms / 1000);
    tv.tv_usec = (suseconds_t)(req->every_ms % 1000) * 1000;
    return evtimer_add(req->tick, &tv) == 0 ? 0 : CR_ENOMEM;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tu_req *req = arg;
    (void)fd;
    (void)what;

    if (next_event(req) != 0)
        req->arg = req->events_sent; /* out of memory: the stream ends here */
    req->ready_cb(req, req->ready_arg); /* may free req */
}

/* Decides the answer now that it may start. Never fails: a document that
 * cannot be built for lack of memory becomes an empty 500. */
static void prepare(struct tu_req *req)
{
    struct tu_hdr *ct;

    req->status = req->route == TU_ROUTE_STATUS ? (int)req->arg
                  : req->route == TU_ROUTE_BAD  ? 400
                                                : 200;
    req->ctype = "application/json";
    req->no_body =
        (req->method && strcmp(req->method, "HEAD") == 0) || !status_has_body(req->status);
    if (req->route == TU_ROUTE_ECHO) {
        ct = find_header(req, "content-type", 12);
        req->ctype = ct && safe_value(ct->value, ct->vlen) ? ct->value : "application/octet-stream";
        req->length = req->req_length;
        req->has_length = req->has_req_length;
        if (req->no_body) /* HEAD /echo: drop what came, and what will come */
            evbuffer_drain(req->body, evbuffer_get_length(req->body));
        return;
    }
    if (req->route == TU_ROUTE_EVENTS && !req->no_body) {
        req->ctype = req->plain ? "text/plain" : "text/event-stream";
        req->has_length = 0;
        req->body = evbuffer_new();
        if (req->body == NULL || next_event(req) != 0)
            req->status = 500; /* an empty stream that ends */
        return;
    }
    if (req->route == TU_ROUTE_BYTES) {
        req->ctype = "application/octet-stream";
        req->length = req->arg;
        req->has_length = 1;
        req->bytes_left = req->no_body ? 0 : req->arg;
        return;
    }
    if (req->body == NULL)
        req->body = evbuffer_new();
    if (req->body == NULL || build_fixed(req) != 0) {
        if (req->body)
            evbuffer_drain(req->body, evbuffer_get_length(req->body));
        req->status = 500;
    }
    req->length = req->body ? evbuffer_get_length(req->body) : 0;
    req->has_length = status_has_body(req->status);
    if (req->no_body && req->body)
        evbuffer_drain(req->body, evbuffer_get_length(req->body));
}

static void become_ready(struct tu_req *req)
{
    prepare(req);
    req->ready = 1;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tu_req *req = arg;
    (void)fd;
    (void)what;

    become_ready(req);
    req->ready_cb(req, req->ready_arg); /* may free req */
}

/* Makes the request ready now (ms == 0) or arms its timer.
 * Returns 0 or CR_ENOMEM. */
static int ready_in(struct tu_req *req, uint64_t ms)
{
    struct timeval tv;

    if (ms == 0) {
        become_ready(req);
        return 0;
    }
    if (req->timer == NULL)
        req->timer = evtimer_new(req->srv->base, timer_cb, req);
    if (req->timer == NULL)
        return CR_ENOMEM;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    return evtimer_add(req->timer, &tv) == 0 ? 0 : CR_ENOMEM;
}

/* --service-time, plus the --knee slope for what is in flight beyond the
 * knee now (this request counted). */
static uint64_t service_ms(const struct tu_req *req)
{
    const struct tu_opts *o = &req->srv->opts;
    uint64_t ms = o->service_ms, n = req->srv->stats.inflight;
    if (o->knee && n > o->knee)
        ms += (n - o->knee) * o->knee_slope_ms;
    return ms;
}

int tu_req_head_done(struct tu_req *req)
{
    req->head_done = 1;
    route(req);
    if (req->route != TU_ROUTE_STATS) {
        const char *ch = req->srv->opts.count_header;
        tu_stats_req_begin(&req->srv->stats);
        req->counted = 1;
        if (ch != NULL) {
            const struct tu_hdr *h = find_header(req, ch, strlen(ch));
            tu_stats_count_by(&req->srv->stats, h ? h->value : NULL, h ? h->vlen : 0);
        }
    }
    if (req->route != TU_ROUTE_ECHO)
        return 0;
    req->body = evbuffer_new();
    if (req->body == NULL)
        return CR_ENOMEM;
    return ready_in(req, service_ms(req));
}

int tu_req_body_in(struct tu_req *req, const void *data, size_t len)
{
    if (req->route != TU_ROUTE_ECHO || len == 0 || (req->ready && req->no_body))
        return 0; /* counted by nobody: only /echo keeps its body */
    return evbuffer_add(req->body, data, len) == 0 ? 0 : CR_ENOMEM;
}

int tu_req_body_done(struct tu_req *req)
{
    uint64_t ms = service_ms(req);

    req->body_done = 1;
    if (req->route == TU_ROUTE_ECHO)
        return 0; /* its wait started with the head */
    if (req->route == TU_ROUTE_STATS)
        ms = 0;
    else if (req->route == TU_ROUTE_DELAY)
        ms += req->arg;
    return ready_in(req, ms);
}

size_t tu_req_buffered(const struct tu_req *req)
{
    return req->route == TU_ROUTE_ECHO && req->body ? evbuffer_get_length(req->body) : 0;
}

const char *tu_req_header(const struct tu_req *req, const char *name)
{
    const struct tu_hdr *h = find_header(req, name, strlen(name));

    return h ? h->value : NULL;
}

const char *tu_req_method(const struct tu_req *req)
{
    return req->method ? req->method : "";
}

int tu_req_is_goaway(const struct tu_req *req)
{
    return req->route == TU_ROUTE_GOAWAY;
}

int tu_req_is_echo(const struct tu_req *req)
{
    return req->route == TU_ROUTE_ECHO;
}

int tu_req_body_is_done(const struct tu_req *req)
{
    return req->body_done;
}

int tu_req_expects_continue(const struct tu_req *req)
{
    return req->expect_continue;
}

int tu_req_ready(const struct tu_req *req)
{
    return req->ready;
}

int tu_req_status(const struct tu_req *req)
{
    return req->status;
}

const char *tu_req_content_type(const struct tu_req *req)
{
    return req->ctype;
}

int tu_req_length(const struct tu_req *req, uint64_t *len)
{
    if (!req->has_length)
        return 0;
    *len = req->length;
    return 1;
}

int tu_req_has_body(const struct tu_req *req)
{
    return !req->no_body;
}

size_t tu_req_body_avail(const struct tu_req *req)
{
    if (req->no_body)
        return 0;
    if (req->route == TU_ROUTE_BYTES)
        return req->bytes_left > SIZE_MAX ? SIZE_MAX : (size_t)req->bytes_left;
    return req->body ? evbuffer_get_length(req->body) : 0;
}

int tu_req_body_eof(const struct tu_req *req)
{
    if (tu_req_body_avail(req) > 0)
        return 0;
    if (req->route == TU_ROUTE_EVENTS && !req->no_body && req->status == 200)
        return events_over(req);
    return req->route != TU_ROUTE_ECHO || req->body_done;
}

int tu_req_body_move(struct tu_req *req, struct evbuffer *out, size_t n)
{
    if (req->route != TU_ROUTE_BYTES)
        return evbuffer_remove_buffer(req->body, out, n) == (int)n ? 0 : CR_ENOMEM;
    req->bytes_left -= n;
    while (n > 0) {
        size_t k = n < sizeof(tu_xs) ? n : sizeof(tu_xs);
        if (evbuffer_add_reference(out, tu_xs, k, NULL, NULL) != 0)
            return CR_ENOMEM;
        n -= k;
    }
    return 0;
}

void tu_req_body_read(struct tu_req *req, void *dst, size_t n)
{
    if (req->route == TU_ROUTE_BYTES) {
        memset(dst, 'x', n);
        req->bytes_left -= n;
        return;
    }
    evbuffer_remove(req->body, dst, n);
}

void tu_req_answered(struct tu_req *req)
{
    if (req->answered)
        return;
    req->answered = 1;
    if (req->counted)
        tu_stats_req_end(&req->srv->stats);
}

static void linger_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tu_stats_req_end(arg);
}

/* --work-after-reset: the answer of an abandoned request would have been
 * ready when its timer fires; until then it stays counted in flight.
 * Returns 1 when it does (the request is then no longer counted by req). */
static int linger(struct tu_req *req)
{
    struct timeval at, now, left;

    if (!req->srv->opts.work_after_reset || !req->timer || !evtimer_pending(req->timer, &at))
        return 0;
    gettimeofday(&now, NULL);
    if (!evutil_timercmp(&at, &now, >))
        return 0;
    evutil_timersub(&at, &now, &left);
    if (event_base_once(req->srv->base, -1, EV_TIMEOUT, linger_end, &req->srv->stats, &left) != 0)
        return 0;
    return 1;
}

void tu_req_free(struct tu_req *req)
{
    size_t i;

    if (req == NULL)
        return;
    if (req->counted && !req->answered && !linger(req))
        tu_stats_req_end(&req->srv->stats);
    if (req->timer)
        event_free(req->timer);
    if (req->tick)
        event_free(req->tick);
    if (req->body)
        evbuffer_free(req->body);
    for (i = 0; i < req->nhdrs; i++) {
        free(req->hdrs[i].name);
        free(req->hdrs[i].value);
    }
    free(req->hdrs);
    free(req->method);
    free(req->target);
    free(req);
}
