/* request.c - the protocol-neutral request: head validation, forwarding
 * headers, local answers, the two-sided lifetime and the access log. */
#include "request.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "common.h"
#include "conn.h"
#include "log.h"
#include "gate.h"
#include "pool.h"
#include "rand.h"
#include "worker.h"

/* ------------------------------------------------------------ ids */

/* Request ids and traceparents: per process (a worker is one). */
static struct cr_rand ids;

static uint64_t rng_next(void)
{
    /* ids need to be unique, not secret */
    if (!cr_rand_seeded(&ids))
        cr_rand_seed_random(&ids);
    return cr_rand_next(&ids);
}

void cr_request_seed_ids(uint64_t seed)
{
    cr_rand_seed(&ids, seed);
}

static void hex64(char *out, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

/* ------------------------------------------------------------ arena */

#define ARENA_FIRST 2048 /* a typical request's strings and headers fit */

struct cr_arena_block {
    struct cr_arena_block *next;
    size_t used, cap;
    char data[];
};

static size_t first_block_offset(void)
{
    return (sizeof(struct cr_request) + 15) & ~(size_t)15;
}

/* n bytes, aligned for pointers, alive until the request is freed. */
static void *arena_alloc(struct cr_request *r, size_t n)
{
    struct cr_arena_block *b = r->arena;
    n = (n + 7) & ~(size_t)7;
    if (b->used + n > b->cap) {
        size_t cap = CR_MAX(n, b->cap * 2);
        struct cr_arena_block *nb = malloc(sizeof(*nb) + cap);
        if (!nb)
            return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        r->arena = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static char *arena_strndup(struct cr_request *r, const char *s, size_t len)
{
    char *p = arena_alloc(r, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* ------------------------------------------------------------ state */

#define ST(s) (1u << (s))

/* The states a request may go to from each state (request.h). */
static const uint8_t next_states[] = {
    [CR_REQ_HEAD] = ST(CR_REQ_QUEUED) | ST(CR_REQ_UPSTREAM) | ST(CR_REQ_RESPONDING) |
                    ST(CR_REQ_DONE),
    [CR_REQ_QUEUED] = ST(CR_REQ_UPSTREAM) | ST(CR_REQ_RESPONDING),
    [CR_REQ_UPSTREAM] = ST(CR_REQ_QUEUED) | ST(CR_REQ_UPSTREAM) | ST(CR_REQ_RESPONDING),
    [CR_REQ_RESPONDING] = ST(CR_REQ_DONE),
    [CR_REQ_DONE] = ST(CR_REQ_DONE),
};

bool cr_request_can_go(enum cr_req_state from, enum cr_req_state to)
{
    return (unsigned)from <= CR_REQ_DONE && (unsigned)to <= CR_REQ_DONE &&
           (next_states[from] & ST(to)) != 0;
}

void cr_request_set_state(struct cr_request *r, enum cr_req_state s)
{
    assert(cr_request_can_go(r->state, s));
    r->state = s;
}

#undef ST

/* ------------------------------------------------------------ lifetime */

static void on_response_timeout(evutil_socket_t fd, short what, void *arg);

struct cr_request *cr_request_new(struct cr_conn *conn, const struct cr_fe_ops *fe,
                                  void *fe_data, const char *protocol)
{
    /* the request, its first arena block and its timer: one allocation */
    size_t off_blk = first_block_offset();
    size_t off_ev = (off_blk + sizeof(struct cr_arena_block) + ARENA_FIRST + 15) & ~(size_t)15;
    size_t ev_size = event_get_struct_event_size();
    /* zeroed but for the arena's data: clearing 2 KB per request was the
     * single largest memset in the HTTP/2 path (callgrind) */
    struct cr_request *r = malloc(off_ev + ev_size);
    if (!r)
        return NULL;
    memset(r, 0, off_blk + sizeof(struct cr_arena_block));
    memset((char *)r + off_ev, 0, ev_size);
    r->arena = (struct cr_arena_block *)((char *)r + off_blk);
    r->arena->cap = ARENA_FIRST;
    r->resp_tmr = (struct event *)((char *)r + off_ev);
    r->resp_body = evbuffer_new();
    if (!r->resp_body) {
        free(r);
        return NULL;
    }
    evtimer_assign(r->resp_tmr, conn->w->base, on_response_timeout, r);
    r->w = conn->w;
    r->conn = conn;
    r->fe = fe;
    r->fe_data = fe_data;
    r->protocol = protocol;
    r->req_clen = -1;
    r->resp_clen = -1;
    r->up_conn_id = -1;
    r->t_start = cr_now_us();
    atomic_fetch_add(&conn->w->stats->requests, 1);
    atomic_fetch_add(&conn->w->stats->requests_active, 1);
    conn->w->nreqs++;
    return r;
}

static void request_free(struct cr_request *r)
{
    evtimer_del(r->resp_tmr);
    if (r->req_body)
        evbuffer_free(r->req_body);
    evbuffer_free(r->resp_body);
    struct cr_arena_block *first = (struct cr_arena_block *)((char *)r + first_block_offset());
    for (struct cr_arena_block *b = r->arena, *next; b != first; b = next) {
        next = b->next;
        free(b);
    }
    free(r);
}

static double ms_between(uint64_t a, uint64_t b)
{
    return a && b >= a ? (double)(b - a) / 1000.0 : -1.0;
}

/* The request's shares of the metrics in shared memory: its tenant's
 * (the default tenant's when it never got one) and its upstream address's. */
static void count(struct cr_request *r, int status, int cls, uint64_t now)
{
    struct cr_worker *w = r->w;
    uint32_t ti = r->tenant ? r->tenant->index % CR_ADMIT_MAX_TENANTS : 0;
    struct cr_shm_tenant_stats *ts = &w->setup->shm->tenants[ti];
    atomic_fetch_add_explicit(&ts->responses_by_class[cls], 1, memory_order_relaxed);
    if (r->t_dispatched) {
        uint64_t q = r->t_queued ? (uint64_t)(cr_admit_wait_ms(&r->admit, now) * 1000.0) : 0;
        cr_shm_hist_add(&ts->hist[CR_HIST_QUEUE], q);
    }
    if (r->t_dispatched && r->t_first_byte >= r->t_dispatched)
        cr_shm_hist_add(&ts->hist[CR_HIST_UPSTREAM], r->t_first_byte - r->t_dispatched);
    cr_shm_hist_add(&ts->hist[CR_HIST_TOTAL], now >= r->t_start ? now - r->t_start : 0);
    if (r->up_addr > 0 && !r->resp_aborted && (status == 502 || status == 504)) {
        struct cr_shm_up_stats *us = &w->upstats[r->up_addr - 1];
        atomic_fetch_add_explicit(status == 502 ? &us->responses_502 : &us->responses_504, 1,
                                  memory_order_relaxed);
    }
}

static void access_log(struct cr_request *r)
{
    struct cr_worker *w = r->w;
    /* a refusal answered as gRPC counts and logs as the status it stands for */
    int status = r->grpc_status ? r->refused_status : r->status;
    int cls = r->resp_aborted || !status ? 0 : CR_MIN(status / 100, 5);
    atomic_fetch_add(&w->stats->responses_by_class[cls], 1);
    uint64_t now = cr_now_us();
    count(r, status, cls, now);
    if (!cr_log_access_enabled())
        return;
    struct cr_access a = {
        .worker = w->id,
        .tenant = r->tenant ? r->tenant->name : NULL,
        .client = r->conn ? r->conn->client : NULL,
        .protocol = r->protocol,
        .method = r->method,
        .authority = r->authority,
        .path = r->path,
        .status = r->resp_aborted ? 0 : status,
        .grpc_status = r->grpc_status,
        .bytes_in = r->bytes_in,
        .bytes_out = r->bytes_out,
        .queue_ms = r->t_queued ? cr_admit_wait_ms(&r->admit, now) : 0.0,
        .upstream_ms = ms_between(r->t_dispatched, r->t_first_byte),
        .total_ms = ms_between(r->t_start, now),
        .upstream_conn = r->up_conn_id,
        .request_id = r->request_id[0] ? r->request_id : NULL,
        .reason = r->reason,
        .proxy_id = r->conn ? r->conn->proxy_id : NULL,
    };
    a.sample_rate = cr_log_sample(&w->cfg->log, &a, &w->log_seq);
    if (a.sample_rate)
        cr_log_access(&a);
}

void cr_request_release_fe(struct cr_request *r)
{
    if (!r->fe)
        return;
    if (r->method || r->status) /* not a bare connection that sent nothing */
        access_log(r);
    atomic_fetch_sub(&r->w->stats->requests_active, 1);
    r->w->nreqs--;
    r->fe = NULL;
    r->conn = NULL;
    if (r->be_held)
        cr_gate_cancel(r->w->gate, r); /* the back end lets go when its stream is gone */
    else if (!r->answering)
        request_free(r);
}

void cr_request_release_be(struct cr_request *r)
{
    if (!r->be_held)
        return;
    r->be_held = false;
    if (!r->fe && !r->answering)
        request_free(r);
}

/* ------------------------------------------------------------ head */

/* RFC 9110 5.6.2 tchar -> its lower case; 0 for any other byte. Built
 * once per process: the header path looks up every byte of every name. */
static unsigned char tchar_lower[256];

static void tchar_init(void)
{
    if (tchar_lower['a'])
        return;
    for (int c = 1; c < 256; c++)
        if (isalnum(c) || strchr("!#$%&'*+-.^_`|~", c))
            tchar_lower[c] = (unsigned char)tolower(c);
}

static int is_tchar(unsigned char c)
{
    tchar_init();
    return tchar_lower[c] != 0;
}

/* RFC 9110 5.6.2 token; lower-cases it in place. */
static int check_name(char *n, size_t len)
{
    if (len == 0)
        return CR_EPROTO;
    tchar_init();
    for (size_t i = 0; i < len; i++) {
        unsigned char l = tchar_lower[(unsigned char)n[i]];
        if (!l)
            return CR_EPROTO;
        n[i] = (char)l;
    }
    return 0;
}

/* RFC 9110 5.5: no CR, LF or NUL anywhere, no other controls but HTAB.
 * Eight bytes at a time while none is below 0x20 or 0x7f (the usual
 * value); from the first word that has one (perhaps an HTAB), byte by
 * byte. */
static int check_value(const char *v, size_t len)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x, del;
        memcpy(&x, v + i, 8);
        del = x ^ (0x7f * ones);
        if (((x - 0x20 * ones) & ~x & highs) | ((del - ones) & ~del & highs))
            break;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return CR_EPROTO;
    }
    return 0;
}

static int hdrs_add(struct cr_request *r, struct cr_hdrs *h, const char *name, size_t nlen,
                    const char *value, size_t vlen)
{
    if (h->n == h->cap) { /* the old vector stays in the arena: cheap, short-lived */
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        struct cr_hdr *v = arena_alloc(r, cap * sizeof(*v));
        if (!v)
            return CR_ENOMEM;
        if (h->n)
            memcpy(v, h->v, h->n * sizeof(*v));
        h->v = v;
        h->cap = cap;
    }
    char *mem = arena_alloc(r, nlen + vlen + 2);
    if (!mem)
        return CR_ENOMEM;
    memcpy(mem, name, nlen);
    mem[nlen] = '\0';
    memcpy(mem + nlen + 1, value, vlen);
    mem[nlen + 1 + vlen] = '\0';
    h->v[h->n++] = (struct cr_hdr){mem, mem + nlen + 1, (uint32_t)nlen, (uint32_t)vlen};
    h->bytes += (uint32_t)(nlen + vlen);
    return 0;
}

static void hdrs_del(struct cr_hdrs *h, uint32_t i)
{
    h->bytes -= h->v[i].nlen + h->v[i].vlen;
    memmove(&h->v[i], &h->v[i + 1], (h->n - i - 1) * sizeof(h->v[0]));
    h->n--;
}

/* Names compare by length first: most differ there. */
static bool name_is(const char *n, size_t nlen, const char *name, size_t len)
{
    return nlen == len && memcmp(n, name, len) == 0;
}

#define HDR_IS(h, lit) name_is((h)->name, (h)->nlen, lit, sizeof(lit) - 1)

static const struct cr_hdr *hdrs_find(const struct cr_hdrs *h, const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < h->n; i++)
        if (name_is(h->v[i].name, h->v[i].nlen, name, len))
            return &h->v[i];
    return NULL;
}

const struct cr_hdr *cr_request_hdr(const struct cr_request *r, const char *name)
{
    return hdrs_find(&r->hdrs, name);
}

const struct cr_hdr *cr_request_rhdr(const struct cr_request *r, const char *name)
{
    return hdrs_find(&r->rhdrs, name);
}

int cr_request_add_header(struct cr_request *r, const char *name, size_t nlen,
                          const char *value, size_t vlen)
{
    const struct cr_cfg_http *h = &r->w->cfg->http;
    char lname[256];
    if (nlen >= sizeof(lname))
        return CR_ELIMIT;
    memcpy(lname, name, nlen);
    if (check_name(lname, nlen) < 0 || check_value(value, vlen) < 0)
        return CR_EPROTO;
    /* optional whitespace around a field value is not part of it */
    while (vlen && (value[0] == ' ' || value[0] == '\t'))
        value++, vlen--;
    while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        vlen--;
    if (r->hdrs.n + 1 > h->max_headers || r->hdrs.bytes + nlen + vlen > h->max_header_size)
        return CR_ELIMIT;
    return hdrs_add(r, &r->hdrs, lname, nlen, value, vlen);
}

int cr_request_set(struct cr_request *r, char **field, const char *v, size_t len)
{
    if (*field)
        return CR_EPROTO; /* a pseudo-header given twice */
    if (check_value(v, len) < 0)
        return CR_EPROTO;
    *field = arena_strndup(r, v, len);
    return *field ? 0 : CR_ENOMEM;
}

/* Connection-specific fields never cross a hop (RFC 9110 7.6.1). n is
 * lower case. */
static int is_hop_by_hop(const char *n, size_t len)
{
#define IS(lit) name_is(n, len, lit, sizeof(lit) - 1)
    switch (len) {
    case 2: return IS("te");
    case 4: return IS("host");
    case 7: return IS("upgrade") || IS("trailer");
    case 10: return IS("connection") || IS("keep-alive");
    case 14: return IS("http2-settings");
    case 16: return IS("proxy-connection");
    /* each hop does its own WebSocket handshake (a tunnel, request.h) */
    case 17: return IS("transfer-encoding") || IS("sec-websocket-key");
    case 20: return IS("sec-websocket-accept");
    case 21: return IS("sec-websocket-version");
    case 19: return IS("proxy-authorization");
    default: return 0;
    }
#undef IS
}

/* Is name listed in a Connection header value? */
static int named_by_connection(const struct cr_hdr *conn, const char *name)
{
    if (!conn)
        return 0;
    size_t nl = strlen(name);
    for (const char *p = conn->value; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - p) == nl && strncasecmp(p, name, nl) == 0)
            return 1;
        p = e;
    }
    return 0;
}

/* conn_value: the value of the first Connection field, or NULL (found by
 * the caller's walk over the fields, which looks for Host as well) */
static void strip_hop_by_hop(struct cr_hdrs *h, char *conn_value)
{
    /* conn_value is arena memory: it outlives the deletes */
    struct cr_hdr tmp = {.value = conn_value};
    for (uint32_t i = 0; i < h->n;) {
        const char *n = h->v[i].name;
        int keep_te = HDR_IS(&h->v[i], "te") && strcasecmp(h->v[i].value, "trailers") == 0;
        if ((is_hop_by_hop(n, h->v[i].nlen) && !keep_te) ||
            (conn_value && named_by_connection(&tmp, n)))
            hdrs_del(h, i);
        else
            i++;
    }
}

static void set_header(struct cr_request *r, struct cr_hdrs *h, const char *name,
                       const char *value)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < h->n;) {
        if (name_is(h->v[i].name, h->v[i].nlen, name, len))
            hdrs_del(h, i);
        else
            i++;
    }
    (void)hdrs_add(r, h, name, len, value, strlen(value));
}

static void add_forwarding(struct cr_request *r)
{
    const struct cr_cfg_http *h = &r->w->cfg->http;
    char buf[128];
    /* the edge is the first hop anyone trusts: what the client claims about
     * earlier hops is dropped, whichever style we send ourselves */
    for (uint32_t i = 0; i < r->hdrs.n;) {
        const struct cr_hdr *f = &r->hdrs.v[i];
        if (HDR_IS(f, "x-forwarded-for") || HDR_IS(f, "x-forwarded-proto") ||
            HDR_IS(f, "forwarded"))
            hdrs_del(&r->hdrs, i);
        else
            i++;
    }
    if (h->forwarded == CR_FWD_XFF) {
        set_header(r, &r->hdrs, "x-forwarded-for", r->conn->client_ip);
        set_header(r, &r->hdrs, "x-forwarded-proto", "https");
    } else if (h->forwarded == CR_FWD_FORWARDED) {
        if (strchr(r->conn->client_ip, ':'))
            snprintf(buf, sizeof(buf), "for=\"[%s]\";proto=https", r->conn->client_ip);
        else
            snprintf(buf, sizeof(buf), "for=%s;proto=https", r->conn->client_ip);
        set_header(r, &r->hdrs, "forwarded", buf);
    }
    const struct cr_hdr *id = hdrs_find(&r->hdrs, "x-request-id");
    if (id && id->vlen < sizeof(r->request_id)) {
        memcpy(r->request_id, id->value, id->vlen + 1);
    } else if (h->request_id) {
        hex64(r->request_id, rng_next());
        hex64(r->request_id + 16, rng_next());
        r->request_id[32] = '\0';
        set_header(r, &r->hdrs, "x-request-id", r->request_id);
    }
    if (h->traceparent && !hdrs_find(&r->hdrs, "traceparent")) {
        char tp[56];
        memcpy(tp, "00-", 3);
        hex64(tp + 3, rng_next());
        hex64(tp + 19, rng_next());
        tp[35] = '-';
        hex64(tp + 36, rng_next());
        memcpy(tp + 52, "-00", 4);
        set_header(r, &r->hdrs, "traceparent", tp);
    }
}

static int is_idempotent(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", NULL};
    for (int i = 0; ok[i]; i++)
        if (strcmp(m, ok[i]) == 0)
            return 1;
    return 0;
}

/* RFC 3986 2.3 unreserved and 2.2 sub-delims: the bytes of a reg-name
 * besides percent-encoded octets. A table, not isalnum and strchr: it is
 * looked up for every byte of every request's authority. */
/* clang-format off */
static const bool regname_char[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1,
    ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['-'] = 1, ['.'] = 1,
    ['_'] = 1, ['~'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
    ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1,
};
/* clang-format on */

static bool is_port(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

int cr_request_check_authority(const char *s, size_t len)
{
    size_t i = 0;
    if (len > 0 && s[0] == '[') { /* IP-literal; IPvFuture is not taken */
        const char *close = memchr(s, ']', len);
        char v6[INET6_ADDRSTRLEN];
        struct in6_addr a;
        size_t n = close ? (size_t)(close - s - 1) : 0;
        if (!close || n == 0 || n >= sizeof(v6))
            return CR_EPROTO;
        memcpy(v6, s + 1, n);
        v6[n] = '\0';
        if (inet_pton(AF_INET6, v6, &a) != 1)
            return CR_EPROTO;
        i = n + 2;
    } else { /* reg-name, IPv4address among them */
        for (; i < len && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (regname_char[c])
                continue;
            if (c == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
                isxdigit((unsigned char)s[i + 2]))
                i += 2;
            else
                return CR_EPROTO;
        }
        if (i == 0) /* an https URI's host is never empty */
            return CR_EPROTO;
    }
    if (i == len)
        return 0;
    return s[i] == ':' && is_port(s + i + 1, len - i - 1) ? 0 : CR_EPROTO;
}

int cr_request_finish_head(struct cr_request *r, const char **reason)
{
    *reason = "bad request";
    if (!r->method || !r->path || (r->path[0] != '/' && strcmp(r->path, "*") != 0))
        return CR_EPROTO;
    for (const char *m = r->method; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return CR_EPROTO;
    /* one walk over the fields: every Host (one at most) and the first
     * Connection, which strip_hop_by_hop needs */
    const struct cr_hdr *host = NULL, *conn = NULL;
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        const struct cr_hdr *f = &r->hdrs.v[i];
        if (HDR_IS(f, "host")) {
            if (host) { /* RFC 9112 3.2; RFC 9110 7.2 for any version */
                *reason = "duplicate host";
                return CR_EPROTO;
            }
            host = f;
        } else if (!conn && HDR_IS(f, "connection")) {
            conn = f;
        }
    }
    if (!r->authority) {
        if (host) {
            r->authority = arena_strndup(r, host->value, host->vlen);
        } else if (strcmp(r->protocol, "HTTP/1.0") == 0) {
            /* HTTP/1.0 may omit Host (HTTP/1.1 must not): the name the
             * client asked TLS for, else the listener's address */
            const char *sni = cr_conn_sni(r->conn);
            const char *name = sni ? sni : r->conn->lcfg->addr.text;
            r->authority = arena_strndup(r, name, strlen(name));
        }
    }
    if (!r->scheme)
        r->scheme = arena_strndup(r, "https", 5);
    if (!r->authority || !r->scheme) {
        *reason = "missing host";
        return CR_EPROTO;
    }
    if (cr_request_check_authority(r->authority, strlen(r->authority)) < 0) {
        *reason = "invalid host";
        return CR_EPROTO;
    }
    if (!r->has_body)
        r->req_eof = true; /* nothing follows the head: the upstream side may end */
    strip_hop_by_hop(&r->hdrs, conn ? conn->value : NULL);
    add_forwarding(r);
    r->idempotent = is_idempotent(r->method);
    return 0;
}

void cr_request_submit(struct cr_request *r)
{
    const char *reason;
    if (cr_request_finish_head(r, &reason) < 0) {
        r->bad_head = true;
        cr_request_respond(r, 400, reason, NULL);
        return;
    }
    cr_gate_classify(r->w->gate, r, cr_conn_sni(r->conn));
    r->be_held = true;
    cr_gate_submit(r->w->gate, r);
}

/* ------------------------------------------------------------ bodies */

bool cr_request_body_too_large(const struct cr_request *r, int64_t len)
{
    uint64_t max = r->w->cfg->http.max_body;
    if (r->upgrade)
        return false; /* a tunnel's bytes are not a body */
    return max && len > 0 && (uint64_t)len > max;
}

int cr_request_body(struct cr_request *r, const void *data, size_t len)
{
    r->bytes_in += len;
    if (cr_request_body_too_large(r, (int64_t)r->bytes_in))
        return CR_ELIMIT;
    if (!r->be_held || r->up_cancelled) /* answered already: the bytes go nowhere */
        return 0;
    if (!r->req_body && !(r->req_body = evbuffer_new()))
        return CR_ENOMEM;
    if (evbuffer_add(r->req_body, data, len) < 0)
        return CR_ENOMEM;
    cr_pool_req_body(r);
    return 0;
}

void cr_request_body_end(struct cr_request *r)
{
    r->req_eof = true;
    if (r->be_held && !r->up_cancelled)
        cr_pool_req_body(r);
}

void cr_request_resp_consumed(struct cr_request *r, size_t n)
{
    r->bytes_out += n;
    if (r->be_held && !r->up_cancelled)
        cr_pool_resp_consumed(r, n);
}

/* ------------------------------------------------------------ answers */

bool cr_request_is_grpc(const struct cr_request *r)
{
    const struct cr_hdr *ct = hdrs_find(&r->hdrs, "content-type");
    if (!ct || !r->protocol || strcmp(r->protocol, "HTTP/2") != 0 || ct->vlen < 16 ||
        strncasecmp(ct->value, "application/grpc", 16) != 0)
        return false;
    char next = ct->value[16];
    return next == '\0' || next == '+' || next == ';';
}

int cr_request_grpc_code(int status)
{
    switch (status) {
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 502:
    case 503:
    case 504:
        return 14; /* UNAVAILABLE */
    default:
        return 0;
    }
}

size_t cr_request_grpc_pct(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = c >= 0x20 && c <= 0x7e && c != '%';
        if (n + (plain ? 1 : 3) >= cap)
            break;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

/* The rest of cr_request_respond for a gRPC call (r's state is before
 * RESPONDING): a trailers-only response, no body. */
/* corral's own answer, head (r->rhdrs, r->status) and body (n bytes) all
 * there at once. A front end may write it all and let go of r from the
 * first callback (h1 does): r stays alive for the second, and is freed
 * here if both sides have gone. */
static void answer_whole(struct cr_request *r, const void *body, size_t n)
{
    r->resp_clen = (int64_t)n;
    evbuffer_drain(r->resp_body, evbuffer_get_length(r->resp_body));
    if (n)
        evbuffer_add(r->resp_body, body, n);
    r->resp_eof = true;
    cr_request_set_state(r, CR_REQ_RESPONDING);
    r->answering = true;
    cr_request_notify_head(r);
    cr_request_notify_end(r);
    r->answering = false;
    if (!r->fe && !r->be_held)
        request_free(r);
}

static void respond_grpc(struct cr_request *r, int status, const char *reason,
                         const char *const *extra)
{
    char code[4], msg[160], pushback[24] = "";
    r->grpc_status = cr_request_grpc_code(status);
    r->refused_status = status;
    snprintf(code, sizeof(code), "%d", r->grpc_status);
    cr_request_grpc_pct(msg, sizeof(msg), reason);
    r->rhdrs.n = r->rhdrs.bytes = 0;
    r->status = 200;
    r->reason = reason;
    hdrs_add(r, &r->rhdrs, "content-type", 12, "application/grpc", 16);
    hdrs_add(r, &r->rhdrs, "grpc-status", 11, code, strlen(code));
    hdrs_add(r, &r->rhdrs, "grpc-message", 12, msg, strlen(msg));
    for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2) {
        if (strcasecmp(extra[i], "retry-after") == 0)
            snprintf(pushback, sizeof(pushback), "%llu",
                     strtoull(extra[i + 1], NULL, 10) * 1000ull);
        hdrs_add(r, &r->rhdrs, extra[i], strlen(extra[i]), extra[i + 1], strlen(extra[i + 1]));
    }
    if (pushback[0])
        hdrs_add(r, &r->rhdrs, "grpc-retry-pushback-ms", 22, pushback, strlen(pushback));
    answer_whole(r, NULL, 0);
}

void cr_request_respond(struct cr_request *r, int status, const char *reason,
                        const char *const *extra)
{
    if (r->be_held) {
        r->reason = reason;
        cr_gate_cancel(r->w->gate, r); /* leaves the queue or resets the upstream stream */
    }
    if (r->state >= CR_REQ_RESPONDING) {
        /* the head is out: all that can be done is to break the response */
        r->resp_aborted = true;
        r->resp_eof = true;
        cr_request_set_state(r, CR_REQ_DONE);
        cr_request_notify_end(r);
        return;
    }
    if (cr_request_grpc_code(status) && cr_request_is_grpc(r)) {
        respond_grpc(r, status, reason, extra);
        return;
    }
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"status\":%d,\"reason\":\"%s\"}\n", status, reason);
    char clen[24];
    snprintf(clen, sizeof(clen), "%d", n);
    r->rhdrs.n = r->rhdrs.bytes = 0;
    r->status = status;
    r->reason = reason;
    hdrs_add(r, &r->rhdrs, "content-type", 12, "application/json", 16);
    hdrs_add(r, &r->rhdrs, "content-length", 14, clen, strlen(clen));
    hdrs_add(r, &r->rhdrs, "cache-control", 13, "no-store", 8);
    for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        hdrs_add(r, &r->rhdrs, extra[i], strlen(extra[i]), extra[i + 1], strlen(extra[i + 1]));
    answer_whole(r, body, (size_t)n);
}

void cr_request_be_respond(struct cr_request *r, int status, const char *reason,
                           const char *const *extra)
{
    r->be_held = false; /* nothing to leave or reset: cr_request_respond cancels nothing */
    cr_request_respond(r, status, reason, extra);
}

static void on_response_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct cr_request *r = arg;
    if (r->up_cancelled) {
        /* given up on and left to finish upstream, and it did not in
         * time: now its stream is reset (r may be freed) */
        if (r->be_held)
            cr_gate_cancel(r->w->gate, r);
        return;
    }
    if (r->state < CR_REQ_RESPONDING)
        cr_request_respond(r, 504, "upstream timeout", NULL);
}

int cr_request_response_deadline(struct cr_request *r, uint64_t ms)
{
    if (ms == 0) {
        evtimer_del(r->resp_tmr);
        return 0;
    }
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return evtimer_add(r->resp_tmr, &tv) == 0 ? 0 : CR_ENOMEM;
}

void cr_request_notify_head(struct cr_request *r)
{
    if (!r->up_cancelled) /* else it still bounds the stream left to finish */
        evtimer_del(r->resp_tmr);
    if (r->fe)
        r->fe->response_head(r);
}

void cr_request_notify_body(struct cr_request *r)
{
    if (r->fe)
        r->fe->response_body(r);
}

void cr_request_notify_end(struct cr_request *r)
{
    if (r->fe)
        r->fe->response_end(r);
}

void cr_request_notify_drained(struct cr_request *r)
{
    if (r->fe && r->fe->request_drained)
        r->fe->request_drained(r);
}

/* Response headers from the upstream (lower-case names, validated by
 * nghttp2). Hop-by-hop fields never reach the client. */
int cr_request_add_rheader(struct cr_request *r, const char *name, size_t nlen,
                           const char *value, size_t vlen)
{
    char lname[256];
    if (nlen >= sizeof(lname))
        return CR_ELIMIT;
    memcpy(lname, name, nlen);
    lname[nlen] = '\0';
    if (is_hop_by_hop(lname, nlen) || check_value(value, vlen) < 0)
        return 0;
    if (nlen == 14 && memcmp(lname, "content-length", 14) == 0)
        r->resp_clen = strtoll(value, NULL, 10);
    return hdrs_add(r, &r->rhdrs, lname, nlen, value, vlen);
}

/* A trailer field for `into`, counted apart from the head's fields. */
static int add_trailer(struct cr_request *r, struct cr_hdrs *into, const char *name, size_t nlen,
                       const char *value, size_t vlen)
{
    const struct cr_cfg_http *h = &r->w->cfg->http;
    char lname[256];
    if (nlen >= sizeof(lname))
        return CR_ELIMIT;
    memcpy(lname, name, nlen);
    lname[nlen] = '\0';
    if (nlen && lname[0] == ':')
        return 0; /* no pseudo-field in a trailer section (RFC 9113 8.1) */
    if (check_name(lname, nlen) < 0 || check_value(value, vlen) < 0)
        return CR_EPROTO;
    if (is_hop_by_hop(lname, nlen) || (nlen == 14 && !memcmp(lname, "content-length", 14)))
        return 0;
    if (into->n + 1 > h->max_headers || into->bytes + nlen + vlen > h->max_header_size)
        return CR_ELIMIT;
    return hdrs_add(r, into, lname, nlen, value, vlen);
}

int cr_request_add_trailer(struct cr_request *r, const char *name, size_t nlen, const char *value,
                           size_t vlen)
{
    return add_trailer(r, &r->req_trailers, name, nlen, value, vlen);
}

int cr_request_add_rtrailer(struct cr_request *r, const char *name, size_t nlen, const char *value,
                            size_t vlen)
{
    return add_trailer(r, &r->resp_trailers, name, nlen, value, vlen);
}

void cr_request_reset_rheaders(struct cr_request *r)
{
    r->rhdrs.n = r->rhdrs.bytes = 0;
    r->resp_clen = -1;
}
