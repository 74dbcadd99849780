/* admin.c - the admin endpoint. */
#include "admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "gate.h"
#include "tenant.h"

struct admin_conn {
    struct cr_worker *w;
    int fd;
    struct event *ev;  /* readable */
    struct event *tmr; /* the request's deadline, armed once at accept */
    bool loopback;     /* the peer is on 127.0.0.0/8 or ::1: POST /drain */
    size_t len;
    char *out;      /* the answer not yet written (head and body), or NULL */
    size_t out_len, out_off;
    struct cr_metrics_render *mr; /* /metrics: the parts still to render (refill) */
    bool chunked;                 /* its parts go out as chunks (an HTTP/1.1 request) */
    char buf[CR_ADMIN_REQ_MAX + 1];
};

static struct cr_listener *admin_listener;
static uint32_t admin_nconns; /* this worker's, against admin.max_connections */

/* ------------------------------------------------------------ JSON */

struct out {
    char *buf;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = CR_MIN(o->len + (size_t)n, o->cap - 1);
}

static uint64_t ld(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* total: w is the sum over workers, where only the adaptive limit adds up */
static void worker_json(struct out *o, const struct cr_shm_worker_stats *w, bool total)
{
    put(o,
        "{\"conns_accepted\":%llu,\"conns_open\":%llu,\"conns_max\":%llu,"
        "\"conns_lingering\":%llu,\"handshakes_full\":%llu,"
        "\"handshakes_resumed\":%llu,\"handshakes_failed\":%llu,\"handshakes_active\":%llu,"
        "\"handshake_cpu_us_full\":%llu,\"handshake_cpu_us_resumed\":%llu,\"tls_handoffs\":%llu,"
        "\"proxy_refused\":%llu,\"requests\":%llu,\"requests_active\":%llu,\"upstream_ready\":%llu,",
        (unsigned long long)ld(&w->conns_accepted), (unsigned long long)ld(&w->conns_open),
        (unsigned long long)ld(&w->conns_max), (unsigned long long)ld(&w->conns_lingering),
        (unsigned long long)ld(&w->handshakes_full), (unsigned long long)ld(&w->handshakes_resumed),
        (unsigned long long)ld(&w->handshakes_failed),
        (unsigned long long)ld(&w->handshakes_active), (unsigned long long)ld(&w->hs_cpu_us_full),
        (unsigned long long)ld(&w->hs_cpu_us_resumed), (unsigned long long)ld(&w->tls_handoffs),
        (unsigned long long)ld(&w->proxy_refused), (unsigned long long)ld(&w->requests),
        (unsigned long long)ld(&w->requests_active), (unsigned long long)ld(&w->upstream_ready));
    put(o, "\"tunnels_open\":%llu,\"tunnel_connections\":%llu,",
        (unsigned long long)ld(&w->tunnels_open), (unsigned long long)ld(&w->tunnel_connections));
    put(o, "\"handshake_failures\":{");
    for (int i = 0; i < CR_HSF_MAX; i++)
        put(o, "%s\"%s\":%llu", i ? "," : "", cr_hs_fail_names[i],
            (unsigned long long)ld(&w->hs_fail[i]));
    put(o, "},\"quota\":{\"fallback\":%llu,\"fallbacks\":%llu,\"asks\":%llu,\"tokens\":%llu",
        (unsigned long long)ld(&w->quota_fallback), (unsigned long long)ld(&w->quota_fallbacks),
        (unsigned long long)ld(&w->quota_asks), (unsigned long long)ld(&w->quota_tokens));
    put(o, "},\"responses\":{\"reset\":%llu", (unsigned long long)ld(&w->responses_by_class[0]));
    for (int i = 1; i < 6; i++)
        put(o, ",\"%dxx\":%llu", i, (unsigned long long)ld(&w->responses_by_class[i]));
    put(o, "},\"adaptive\":{\"limit\":%llu", (unsigned long long)ld(&w->adaptive_limit));
    if (!total)
        put(o, ",\"min_rtt_ms\":%.3f,\"gradient\":%.3f",
            (double)ld(&w->adaptive_min_rtt_us) / 1000.0,
            (double)ld(&w->adaptive_gradient_milli) / 1000.0);
    put(o, "}}");
}

static void tenants_json(struct out *o, const struct cr_shm *shm, const struct cr_tenants *t)
{
    static const char *const kinds[CR_ADMIT_NREASONS] = {
        "tenant_rate_limit", "tenant_queue_full", "upstream_saturated", "deadline_unmeetable",
        "queue_deadline_exceeded"};
    put(o, ",\"tenants\":{");
    for (uint32_t i = 0; t && i < cr_tenants_count(t) && i < CR_ADMIT_MAX_TENANTS; i++) {
        const struct cr_shm_tenant_stats *s = &shm->tenants[i];
        put(o, "%s\"%s\":{\"admitted\":%llu,\"queued\":%llu,\"shed\":{", i ? "," : "",
            cr_tenants_at(t, i)->name, (unsigned long long)ld(&s->admitted),
            (unsigned long long)ld(&s->queued));
        for (int k = 0; k < CR_ADMIT_NREASONS; k++)
            put(o, "%s\"%s\":%llu", k ? "," : "", kinds[k], (unsigned long long)ld(&s->shed[k]));
        put(o,
            "},\"streaming_open\":%llu,\"streaming_moved\":%llu,\"streaming_over_cap\":%llu,"
            "\"streaming_refused\":%llu,\"streaming_client_bound\":%llu,\"tunnels\":{\"open\":%llu,\"opened\":%llu,"
            "\"refused\":%llu}}",
            (unsigned long long)ld(&s->streaming_open), (unsigned long long)ld(&s->streaming_moved),
            (unsigned long long)ld(&s->streaming_over_cap),
            (unsigned long long)ld(&s->streaming_refused),
            (unsigned long long)ld(&s->streaming_client_bound),
            (unsigned long long)ld(&s->tunnels_open),
            (unsigned long long)ld(&s->tunnels_opened), (unsigned long long)ld(&s->tunnels_refused));
    }
    put(o, "}");
}

size_t cr_admin_stats_json(const struct cr_shm *shm, uint32_t nworkers,
                           const struct cr_tenants *tenants, char *buf, size_t len)
{
    struct out o = {buf, 0, len};
    struct cr_shm_worker_stats total;
    memset(&total, 0, sizeof(total));
    nworkers = CR_MIN(nworkers, (uint32_t)CR_SHM_MAX_WORKERS);
    /* sum field by field: the struct is all counters */
    const size_t nfields = sizeof(total) / sizeof(_Atomic uint64_t);
    for (uint32_t w = 0; w < nworkers; w++) {
        const _Atomic uint64_t *src = (const _Atomic uint64_t *)&shm->workers[w];
        _Atomic uint64_t *dst = (_Atomic uint64_t *)&total;
        for (size_t f = 0; f < nfields; f++)
            atomic_store_explicit(&dst[f], ld(&dst[f]) + ld(&src[f]), memory_order_relaxed);
    }
    put(&o, "{\"generation\":%llu,\"total\":", (unsigned long long)ld(&shm->generation));
    worker_json(&o, &total, true);
    put(&o, ",\"workers\":[");
    for (uint32_t w = 0; w < nworkers; w++) {
        if (w)
            put(&o, ",");
        worker_json(&o, &shm->workers[w], false);
    }
    put(&o, "]");
    tenants_json(&o, shm, tenants);
    put(&o, "}\n");
    return o.len;
}

/* ------------------------------------------------------------ serving */

static void admin_close(struct admin_conn *a)
{
    if (a->ev)
        event_free(a->ev);
    event_free(a->tmr);
    close(a->fd);
    free(a->out);
    if (a->mr)
        cr_metrics_end(a->mr);
    free(a);
    admin_nconns--;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Bad Request";
    }
}

/* Small answers on a loopback socket: a short write is not worth a state
 * (the connection closes after the answer either way). */
static void respond_fd(int fd, int status, const char *type, const char *body, size_t blen)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n",
                     status, reason_phrase(status), type, blen);
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n && blen)
        (void)!send(fd, body, blen, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Answers that may not fit the socket's buffer at once (/metrics, /stats
 * with many workers or tenants): a->out keeps what is left, written as the
 * socket drains, within the same admin.timeout deadline as the request. */
static void respond(struct admin_conn *a, int status, const char *type, const char *body,
                    size_t blen)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n",
                     status, reason_phrase(status), type, blen);
    free(a->out);
    a->out_off = 0;
    a->out_len = (size_t)n + blen;
    if (!(a->out = malloc(a->out_len))) {
        a->out_len = 0;
        return;
    }
    memcpy(a->out, head, (size_t)n);
    if (blen)
        memcpy(a->out + n, body, blen);
}

/* The head of an answer whose body is rendered as it is written
 * (/metrics, a->mr), whose length is not known up front: chunked for an
 * HTTP/1.1 request (a->chunked; the last chunk goes only after the last
 * part, so that a body cut short - out of memory, the deadline - is one
 * the client can tell from a whole one); close-delimited for HTTP/1.0,
 * which has nothing better. Without memory for the head, nothing is sent
 * (the rendering is dropped): a body without its head would pass for one. */
static void respond_streamed(struct admin_conn *a, int status, const char *type)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n%s"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n",
                     status, reason_phrase(status), type,
                     a->chunked ? "transfer-encoding: chunked\r\n" : "");
    free(a->out);
    a->out_off = 0;
    a->out_len = (size_t)n;
    if (!(a->out = malloc(a->out_len))) {
        a->out_len = 0;
        cr_metrics_end(a->mr);
        a->mr = NULL;
        return;
    }
    memcpy(a->out, head, (size_t)n);
}

/* part (n bytes, taken) as one chunk of a chunked body, followed by the
 * last chunk when last; NULL without memory (part freed). An empty part
 * makes no chunk: a zero-size one would end the body. */
static char *chunk(char *part, size_t n, bool last, size_t *len)
{
    static const char end[] = "0\r\n\r\n";
    char *c = malloc(n + 32 + sizeof(end));
    if (!c) {
        free(part);
        return NULL;
    }
    size_t at = 0;
    if (n) {
        at = (size_t)snprintf(c, 32, "%zx\r\n", n);
        memcpy(c + at, part, n);
        at += n;
        memcpy(c + at, "\r\n", 2);
        at += 2;
    }
    if (last) {
        memcpy(c + at, end, sizeof(end) - 1);
        at += sizeof(end) - 1;
    }
    free(part);
    *len = at;
    return c;
}

/* Writes what is left of the answer; true when all of it is out (or the
 * client is gone: then nothing more is rendered). */
static bool write_out(struct admin_conn *a)
{
    while (a->out_off < a->out_len) {
        ssize_t n = send(a->fd, a->out + a->out_off, a->out_len - a->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return false;
        if (n <= 0) {
            if (a->mr)
                cr_metrics_end(a->mr);
            a->mr = NULL;
            return true;
        }
        a->out_off += (size_t)n;
    }
    return true;
}

/* All of a->out is out: the next part of a rendering under way takes its
 * place, one part a turn of the loop (CR_METRICS_STEP tenants), a chunk
 * of its own when a->chunked (the last one with the last chunk). False
 * when there is none (the answer is complete, or cut short for want of
 * memory: chunked, the client sees a body without its last chunk;
 * close-delimited, one that ends early). */
static bool refill(struct admin_conn *a)
{
    if (!a->mr)
        return false;
    char *part;
    size_t n;
    int rc = cr_metrics_step(a->mr, CR_METRICS_STEP, &part, &n);
    if (rc != 0) {
        cr_metrics_end(a->mr);
        a->mr = NULL;
    }
    if (rc < 0)
        return false;
    if (a->chunked && !(part = chunk(part, n, rc == 1, &n)))
        return false;
    free(a->out);
    a->out = part;
    a->out_len = n;
    a->out_off = 0;
    return true;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct admin_conn *a = arg;
    if (write_out(a) && !refill(a))
        admin_close(a);
    (void)fd, (void)what;
}

/* The answer is in a->out: done now, or the rest when the socket drains
 * (and, for a rendering under way, the next part when it is writable). */
static void finish(struct admin_conn *a)
{
    if (write_out(a) && !refill(a)) {
        admin_close(a);
        return;
    }
    event_free(a->ev);
    a->ev = event_new(a->w->base, a->fd, EV_WRITE | EV_PERSIST, on_write, a);
    if (!a->ev || event_add(a->ev, NULL) < 0) {
        if (a->ev)
            event_free(a->ev);
        a->ev = NULL;
        admin_close(a);
    }
}

size_t cr_admin_health(const struct cr_shm *shm, uint32_t nworkers, char *buf, size_t len)
{
    struct out o = {buf, 0, len};
    uint64_t want = ld(&shm->workers_configured), run = ld(&shm->workers_running), ready = 0;
    nworkers = CR_MIN(nworkers, (uint32_t)CR_SHM_MAX_WORKERS);
    for (uint32_t w = 0; w < nworkers; w++)
        ready += ld(&shm->workers[w].upstream_ready);
    if (ld(&shm->draining))
        put(&o, "draining\n");
    else if (run < want)
        put(&o, "%llu of %llu workers not running\n", (unsigned long long)(want - run),
            (unsigned long long)want);
    else if (!ready)
        put(&o, "no upstream connection ready\n");
    else
        return 0;
    return o.len;
}

/* POST /drain: /health fails from this answer on (the flag is set here,
 * before the master hears of it on the worker's channel and starts the
 * drain_grace clock). */
static void drain(struct admin_conn *a)
{
    struct cr_worker *w = a->w;
    if (!a->loopback) {
        respond(a, 403, "text/plain", "drain is accepted from loopback only\n", 37);
        return;
    }
    if (w->setup->log_chan < 0 || send(w->setup->log_chan, "D", 1, MSG_DONTWAIT) < 0) {
        cr_log_warn("POST /drain: cannot tell the master: %s", strerror(errno));
        respond(a, 503, "text/plain", "cannot reach the master\n", 25);
        return;
    }
    atomic_store(&w->setup->shm->draining, 1);
    char body[96];
    int n = snprintf(body, sizeof(body), "draining: stopping in %llu ms\n",
                     (unsigned long long)w->cfg->drain_grace_ms);
    respond(a, 202, "text/plain", body, (size_t)n);
}

static void handle(struct admin_conn *a)
{
    struct cr_worker *w = a->w;
    char method[8], path[128], version[16] = "";
    if (sscanf(a->buf, "%7s %127s %15s", method, path, version) < 2) {
        respond(a, 400, "text/plain", "bad request\n", 12);
        return;
    }
    /* HTTP/1.1 and later 1.x understand chunked (RFC 9112 7) */
    a->chunked = strncmp(version, "HTTP/1.", 7) == 0 && version[7] >= '1' && version[7] <= '9';
    if (strcmp(path, "/drain") == 0) {
        if (strcmp(method, "POST") == 0)
            drain(a);
        else
            respond(a, 405, "text/plain", "use POST\n", 9);
    } else if (strcmp(path, "/live") == 0) {
        respond(a, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(path, "/health") == 0) {
        char body[128];
        size_t n = cr_admin_health(w->setup->shm, w->cfg->workers, body, sizeof(body));
        if (n)
            respond(a, 503, "text/plain", body, n);
        else
            respond(a, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(path, "/stats") == 0) {
        const struct cr_tenants *t = cr_gate_tenants(w->gate);
        size_t cap = 4096 + (size_t)w->cfg->workers * 1024 + (size_t)cr_tenants_count(t) * 512;
        char *body = malloc(cap);
        if (!body) {
            respond(a, 400, "text/plain", "out of memory\n", 14);
            return;
        }
        size_t n = cr_admin_stats_json(w->setup->shm, w->cfg->workers, t, body, cap);
        respond(a, 200, "application/json", body, n);
        free(body);
    } else if (strcmp(path, "/metrics") == 0) {
        struct cr_metrics_src src = {.shm = w->setup->shm,
                                     .cfg = w->cfg,
                                     .tenants = cr_gate_tenants(w->gate)};
        /* rendered in parts as the socket takes them (refill): a thousand
         * tenants would hold the worker's loop for 20 ms at once */
        if (cr_metrics_begin(&src, &a->mr) < 0) {
            respond(a, 503, "text/plain", "out of memory\n", 14);
            return;
        }
        respond_streamed(a, 200, CR_METRICS_CONTENT_TYPE);
    } else {
        respond(a, 404, "text/plain", "not found\n", 10);
    }
}

/* The request's deadline passed: however much it sent, it is cut off. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct admin_conn *a = arg;
    if (!a->out) /* else the answer is half out: only the deadline is left */
        respond_fd(a->fd, 408, "text/plain", "request timeout\n", 16);
    admin_close(a);
    (void)fd, (void)what;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct admin_conn *a = arg;
    ssize_t n = read(fd, a->buf + a->len, CR_ADMIN_REQ_MAX - a->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        admin_close(a);
        return;
    }
    /* the end of the head can only be in the new bytes or just before */
    size_t from = a->len > 3 ? a->len - 3 : 0;
    a->len += (size_t)n;
    a->buf[a->len] = '\0';
    if (strstr(a->buf + from, "\r\n\r\n") || strstr(a->buf + from, "\n\n")) {
        handle(a);
        finish(a);
    } else if (a->len == CR_ADMIN_REQ_MAX) {
        respond(a, 431, "text/plain", "request too large\n", 18);
        finish(a);
    }
    (void)what;
}

static void on_accept(int fd, const struct sockaddr *sa, socklen_t salen, void *arg)
{
    struct cr_worker *w = arg;
    const struct cr_cfg_admin *cfg = &w->cfg->admin;
    /* checked before anything is allocated for it */
    if (admin_nconns >= cfg->max_connections) {
        respond_fd(fd, 503, "text/plain", "too many admin connections\n", 27);
        close(fd);
        return;
    }
    struct admin_conn *a = calloc(1, sizeof(*a));
    struct timeval tv = {.tv_sec = (time_t)(cfg->timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(cfg->timeout_ms % 1000) * 1000};
    if (!a) {
        close(fd);
        return;
    }
    a->w = w;
    a->fd = fd;
    a->loopback = cr_addr_loopback(sa, salen);
    a->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, a);
    a->tmr = evtimer_new(w->base, on_deadline, a);
    if (!a->ev || !a->tmr || event_add(a->ev, NULL) < 0 || evtimer_add(a->tmr, &tv) < 0) {
        if (a->ev)
            event_free(a->ev);
        if (a->tmr)
            event_free(a->tmr);
        close(fd);
        free(a);
        return;
    }
    admin_nconns++;
}

int cr_admin_start(struct cr_worker *w, int fd)
{
    admin_listener = cr_listener_start(w->base, fd, CR_EVPRIO_DEFAULT, on_accept, w);
    return admin_listener ? 0 : CR_ENOMEM;
}

void cr_admin_stop(struct cr_worker *w)
{
    cr_listener_free(admin_listener);
    admin_listener = NULL;
}
