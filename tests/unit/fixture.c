/* fixture.c - corral's data path in memory: see fixture.h. */
#include "fixture.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gate.h"
#include "log.h"
#include "pool.h"
#include "upstream_int.h"

#define FX_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fixture: %s failed\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

const char fx_default_yaml[] = "workers: 1\n"
                               "log:\n"
                               "  level: warn\n"
                               "  access: off\n"
                               "listeners:\n"
                               "  - name: https\n"
                               "    address: 127.0.0.1:8443\n"
                               "    tls:\n"
                               "      certificates:\n"
                               "        - cert: /dev/null\n"
                               "          key: /dev/null\n"
                               "upstream:\n"
                               "  addresses: [127.0.0.1:9443]\n"
                               "  protocol: h2\n"
                               "  connections: 2\n"
                               "  tls:\n"
                               "    ca: /dev/null\n"
                               "    cert: /dev/null\n"
                               "    key: /dev/null\n"
                               "    sni: lb.test\n"
                               "tenants:\n"
                               "  by: header\n"
                               "  header: X-Tenant-Id\n"
                               "  defaults:\n"
                               "    queue: 1000\n"
                               "    max_wait: 5s\n"
                               "  list:\n"
                               "    - name: gold\n"
                               "      rate: 100000/s\n"
                               "      burst: 1000\n"
                               "      weight: 8\n"
                               "    - name: silver\n"
                               "      rate: 50000/s\n"
                               "      weight: 4\n"
                               "    - name: bronze\n"
                               "      concurrency: 64\n"
                               "  routes:\n"
                               "    - path_prefix: /health\n"
                               "      priority: high\n";

/* ------------------------------------------------------------ world */

static void never(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

static void never_deferred(void *arg)
{
    (void)arg;
}

void fx_world_init(struct fx_world *x, const char *yaml)
{
    struct cr_diag diag = {0};
    memset(x, 0, sizeof(*x));
    if (cr_config_load_string("fixture.yaml", yaml ? yaml : fx_default_yaml, &x->cfg, &diag) < 0)
        cr_diag_print(&diag, stderr);
    cr_diag_free(&diag);
    FX_CHECK(x->cfg != NULL);
    FX_CHECK(cr_log_open(&x->cfg->log) == 0);
    x->shm = calloc(1, sizeof(*x->shm));
    /* one context for every world of the process: SSL_CTX_new costs more
     * than the rest of a world (the fuzz targets make one per input) */
    static SSL_CTX *shared_tls;
    if (!shared_tls)
        shared_tls = SSL_CTX_new(TLS_server_method());
    if (shared_tls && SSL_CTX_up_ref(shared_tls))
        x->tls = shared_tls;
    FX_CHECK(x->shm && x->tls);
    x->setup = (struct cr_worker_setup){
        .cfg = x->cfg, .id = 1, .admin_fd = -1, .shm = x->shm, .uid = (uid_t)-1, .gid = (gid_t)-1};
    struct cr_worker *w = &x->w;
    w->cfg = x->cfg;
    w->setup = &x->setup;
    w->id = 1;
    w->stats = &x->shm->workers[0];
    w->lstats = x->shm->listeners[0];
    w->upstats = x->shm->upstreams[0];
    w->topen = x->shm->tenant_open[0];
    LIST_INIT(&w->conns);
    TAILQ_INIT(&w->defer_now.items);
    TAILQ_INIT(&w->defer_late.items);
    w->base = event_base_new();
    FX_CHECK(w->base && event_base_priority_init(w->base, CR_EVPRIO_COUNT) == 0);
    w->defer_now.ev = event_new(w->base, -1, 0, never, w);
    w->defer_late.ev = event_new(w->base, -1, 0, never, w);
    w->late_guard = evtimer_new(w->base, never, w);
    FX_CHECK(w->defer_now.ev && w->defer_late.ev && w->late_guard);
    FX_CHECK(cr_gate_new(w, &w->gate) == 0);
    FX_CHECK(cr_pool_new(w, &w->pool) == 0);
}

void fx_world_free(struct fx_world *x)
{
    cr_pool_free(x->w.pool);
    cr_gate_free(x->w.gate);
    event_free(x->w.defer_now.ev);
    event_free(x->w.defer_late.ev);
    event_free(x->w.late_guard);
    event_base_free(x->w.base);
    SSL_CTX_free(x->tls);
    free(x->shm);
    cr_config_free(x->cfg);
    memset(x, 0, sizeof(*x));
}

/* ------------------------------------------------------------ client connections */

struct cr_conn *fx_conn_new(struct fx_world *x, const char *client_ip)
{
    struct cr_worker *w = &x->w;
    struct cr_conn *c = calloc(1, sizeof(*c));
    FX_CHECK(c);
    c->state = CR_CONN_OPEN;
    c->w = w;
    c->lcfg = &x->cfg->listeners[0];
    c->fd = -1;
    c->ssl = SSL_new(x->tls);
    c->rev = event_new(w->base, -1, EV_READ | EV_PERSIST, never, c);
    c->wev = event_new(w->base, -1, EV_WRITE, never, c);
    c->tmr = evtimer_new(w->base, never, c);
    c->out = evbuffer_new();
    FX_CHECK(c->ssl && c->rev && c->wev && c->tmr && c->out);
    c->flush = (struct cr_deferred){.cb = never_deferred, .arg = c, .late = true};
    c->reap = (struct cr_deferred){.cb = never_deferred, .arg = c};
    c->id = ++w->next_conn_id;
    snprintf(c->client, sizeof(c->client), "%s:50000", client_ip);
    snprintf(c->client_ip, sizeof(c->client_ip), "%s", client_ip);
    return c;
}

void fx_conn_free(struct cr_conn *c)
{
    if (c->proto && c->proto->on_free)
        c->proto->on_free(c);
    cr_worker_undefer(c->w, &c->flush);
    cr_worker_undefer(c->w, &c->reap);
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->tmr);
    evbuffer_free(c->out);
    SSL_free(c->ssl);
    free(c);
}

size_t fx_conn_take(struct cr_conn *c, struct evbuffer *out)
{
    size_t moved = 0;
    cr_worker_undefer(c->w, &c->flush);
    for (;;) {
        if (evbuffer_get_length(c->out) == 0 && c->proto && c->proto->on_writable &&
            c->state == CR_CONN_OPEN)
            c->proto->on_writable(c);
        size_t n = evbuffer_get_length(c->out);
        if (n == 0)
            break;
        moved += n;
        if (out)
            evbuffer_add_buffer(out, c->out);
        else
            evbuffer_drain(c->out, n);
    }
    return moved;
}

/* ------------------------------------------------------------ load balancer */

#define LB_MAX_HDRS 64

struct fx_lb {
    nghttp2_session *ng;
    int status;
    char *body;
    size_t body_len;
    char clen[24];
    uint64_t answered;
    uint64_t resets; /* RST_STREAM frames received */
    char *names[LB_MAX_HDRS], *values[LB_MAX_HDRS];
    int nhdrs;
    int32_t hdrs_stream; /* the stream the stored headers belong to */
};

static ssize_t lb_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *arg)
{
    struct fx_lb *lb = arg;
    size_t *off = src->ptr;
    size_t n = CR_MIN(len, lb->body_len - *off);
    memcpy(buf, lb->body + *off, n);
    *off += n;
    if (*off == lb->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void lb_answer(struct fx_lb *lb, int32_t sid)
{
    char status[4];
    snprintf(status, sizeof(status), "%03d", lb->status);
#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":status", status), NV("content-type", "application/json"),
                        NV("content-length", lb->clen), NV("cache-control", "no-store")};
#undef NV
    nghttp2_data_provider prd = {.read_callback = lb_body};
    if (lb->body_len) { /* the offset sent so far, freed when the stream closes */
        prd.source.ptr = calloc(1, sizeof(size_t));
        FX_CHECK(prd.source.ptr);
        nghttp2_session_set_stream_user_data(lb->ng, sid, prd.source.ptr);
    }
    FX_CHECK(nghttp2_submit_response(lb->ng, sid, nva, CR_ARRAY_LEN(nva),
                                     lb->body_len ? &prd : NULL) == 0);
    lb->answered++;
}

static int lb_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        lb_answer(arg, f->hd.stream_id);
    return 0;
}

/* Every frame header, whatever becomes of the frame: a RST_STREAM for a
 * stream already closed here is counted too (nghttp2's own rapid-reset
 * guard counts those). */
static int lb_on_begin(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *arg)
{
    struct fx_lb *lb = arg;
    if (hd->type == NGHTTP2_RST_STREAM)
        lb->resets++;
    return 0;
}

static int lb_on_close(nghttp2_session *ng, int32_t sid, uint32_t error, void *arg)
{
    free(nghttp2_session_get_stream_user_data(ng, sid));
    return 0;
}

static int lb_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                        size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    struct fx_lb *lb = arg;
    if (lb->hdrs_stream != f->hd.stream_id) {
        for (int i = 0; i < lb->nhdrs; i++)
            free(lb->names[i]), free(lb->values[i]);
        lb->nhdrs = 0;
        lb->hdrs_stream = f->hd.stream_id;
    }
    if (lb->nhdrs < LB_MAX_HDRS) {
        lb->names[lb->nhdrs] = strndup((const char *)name, nlen);
        lb->values[lb->nhdrs] = strndup((const char *)value, vlen);
        FX_CHECK(lb->names[lb->nhdrs] && lb->values[lb->nhdrs]);
        lb->nhdrs++;
    }
    return 0;
}

struct fx_lb *fx_lb_new(uint32_t max_streams, int status, size_t body_len)
{
    struct fx_lb *lb = calloc(1, sizeof(*lb));
    nghttp2_session_callbacks *cb;
    FX_CHECK(lb && nghttp2_session_callbacks_new(&cb) == 0);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, lb_on_frame);
    nghttp2_session_callbacks_set_on_header_callback(cb, lb_on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, lb_on_close);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, lb_on_begin);
    FX_CHECK(nghttp2_session_server_new(&lb->ng, cb, lb) == 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams}};
    FX_CHECK(nghttp2_submit_settings(lb->ng, NGHTTP2_FLAG_NONE, iv, 1) == 0);
    lb->status = status;
    lb->body_len = body_len;
    lb->body = malloc(body_len + 1);
    FX_CHECK(lb->body);
    for (size_t i = 0; i < body_len; i++)
        lb->body[i] = "{\"ok\":true,\"items\":[1,2,3]}\n"[i % 28];
    snprintf(lb->clen, sizeof(lb->clen), "%zu", body_len);
    return lb;
}

void fx_lb_free(struct fx_lb *lb)
{
    for (int i = 0; i < lb->nhdrs; i++)
        free(lb->names[i]), free(lb->values[i]);
    nghttp2_session_del(lb->ng);
    free(lb->body);
    free(lb);
}

int fx_lb_exchange(struct fx_lb *lb, const uint8_t *in, size_t len, struct evbuffer *out)
{
    ssize_t rc = len ? nghttp2_session_mem_recv(lb->ng, in, len) : 0;
    if (rc < 0)
        return (int)rc;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(lb->ng, &data);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return 0;
        evbuffer_add(out, data, (size_t)n);
    }
}

uint64_t fx_lb_requests(const struct fx_lb *lb)
{
    return lb->answered;
}

uint64_t fx_lb_resets(const struct fx_lb *lb)
{
    return lb->resets;
}

const char *fx_lb_header(const struct fx_lb *lb, const char *name, int n)
{
    for (int i = 0; i < lb->nhdrs; i++)
        if (strcmp(lb->names[i], name) == 0 && n-- == 0)
            return lb->values[i];
    return NULL;
}

/* ------------------------------------------------------------ upstream over memory */

struct cr_upconn *fx_up_ready(struct fx_world *x, size_t i, struct fx_lb *lb)
{
    struct cr_upconn *u = cr_pool_conn(x->w.pool, i);
    FX_CHECK(u && u->codec == &cr_up_h2 && u->state == CR_UP_IDLE);
    u->id = (int64_t)i + 1;
    cr_up_set_state(u, CR_UP_READY);
    FX_CHECK(u->codec->start(u) == 0);
    /* one round: our preface and SETTINGS out, the server's SETTINGS in */
    struct evbuffer *to_lb = evbuffer_new(), *from_lb = evbuffer_new();
    FX_CHECK(to_lb && from_lb && fx_up_produce(u, to_lb) == 0);
    FX_CHECK(fx_lb_exchange(lb, evbuffer_pullup(to_lb, -1), evbuffer_get_length(to_lb), from_lb) ==
             0);
    FX_CHECK(fx_up_feed(u, evbuffer_pullup(from_lb, -1), evbuffer_get_length(from_lb)) == 0);
    FX_CHECK(u->settings_seen);
    evbuffer_free(to_lb);
    evbuffer_free(from_lb);
    return u;
}

struct cr_upconn *fx_up_ready_h1(struct fx_world *x, size_t i)
{
    struct cr_upconn *u = cr_pool_conn(x->w.pool, i);
    FX_CHECK(u && u->codec == &cr_up_h1 && u->state == CR_UP_IDLE);
    u->id = (int64_t)i + 1;
    u->rev = event_new(x->w.base, -1, EV_READ | EV_PERSIST, never, u); /* freed with u */
    FX_CHECK(u->rev);
    cr_up_set_state(u, CR_UP_READY);
    FX_CHECK(u->codec->start(u) == 0);
    cr_pool_room(x->w.pool, u);
    return u;
}

bool fx_up_read_paused(const struct cr_upconn *u)
{
    return u->read_paused;
}

int fx_up_produce(struct cr_upconn *u, struct evbuffer *out)
{
    cr_worker_undefer(u->w, &u->flush);
    int rc = u->codec->produce(u);
    if (rc < 0)
        return rc;
    evbuffer_add_buffer(out, u->out);
    return 0;
}

int fx_up_feed(struct cr_upconn *u, const uint8_t *data, size_t len)
{
    return u->codec->on_data(u, data, len);
}

int fx_up_pump(struct cr_upconn *u, struct fx_lb *lb)
{
    struct evbuffer *to_lb = evbuffer_new(), *from_lb = evbuffer_new();
    int rc = to_lb && from_lb ? 0 : CR_ENOMEM;
    for (int round = 0; rc == 0 && round < 100; round++) {
        rc = fx_up_produce(u, to_lb);
        size_t n = evbuffer_get_length(to_lb);
        if (rc == 0)
            rc = fx_lb_exchange(lb, evbuffer_pullup(to_lb, -1), n, from_lb);
        evbuffer_drain(to_lb, n);
        size_t m = evbuffer_get_length(from_lb);
        if (rc == 0 && m)
            rc = fx_up_feed(u, evbuffer_pullup(from_lb, -1), m);
        evbuffer_drain(from_lb, m);
        if (n == 0 && m == 0)
            break;
    }
    if (to_lb)
        evbuffer_free(to_lb);
    if (from_lb)
        evbuffer_free(from_lb);
    return rc;
}

/* ------------------------------------------------------------ phone */

#define H2C_SLOTS 256

struct fx_h2c {
    nghttp2_session *ng;
    uint64_t done, resets;
    struct {
        int32_t sid;
        int status;
        int reset; /* the RST_STREAM error code, -1 for none */
    } st[H2C_SLOTS];
};

/* The slot of sid, taken over from an older stream when they collide. */
static void h2c_slot(struct fx_h2c *cl, int32_t sid)
{
    if (cl->st[(sid / 2) % H2C_SLOTS].sid != sid) {
        cl->st[(sid / 2) % H2C_SLOTS].sid = sid;
        cl->st[(sid / 2) % H2C_SLOTS].status = 0;
        cl->st[(sid / 2) % H2C_SLOTS].reset = -1;
    }
}

static int h2c_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                         size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    struct fx_h2c *cl = arg;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int32_t sid = f->hd.stream_id;
        h2c_slot(cl, sid);
        cl->st[(sid / 2) % H2C_SLOTS].status = atoi((const char *)value);
    }
    return 0;
}

static int h2c_on_close(nghttp2_session *ng, int32_t sid, uint32_t error, void *arg)
{
    struct fx_h2c *cl = arg;
    if (error) {
        cl->resets++;
        h2c_slot(cl, sid);
        cl->st[(sid / 2) % H2C_SLOTS].reset = (int)error;
    } else {
        cl->done++;
    }
    return 0;
}

/* A phone; with manual, its windows open only through fx_h2c_window and
 * it announces initial_window. */
static struct fx_h2c *h2c_new(bool manual, uint32_t initial_window)
{
    struct fx_h2c *cl = calloc(1, sizeof(*cl));
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    FX_CHECK(cl && nghttp2_session_callbacks_new(&cb) == 0 && nghttp2_option_new(&opt) == 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2c_on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_on_close);
    nghttp2_option_set_no_auto_window_update(opt, manual);
    FX_CHECK(nghttp2_session_client_new2(&cl->ng, cb, cl, opt) == 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window}};
    FX_CHECK(nghttp2_submit_settings(cl->ng, NGHTTP2_FLAG_NONE, iv, manual ? 1 : 0) == 0);
    return cl;
}

struct fx_h2c *fx_h2c_new(void)
{
    return h2c_new(false, 0);
}

struct fx_h2c *fx_h2c_new_window(uint32_t initial_window)
{
    return h2c_new(true, initial_window);
}

void fx_h2c_window(struct fx_h2c *cl, int32_t sid, int32_t n)
{
    FX_CHECK(nghttp2_submit_window_update(cl->ng, NGHTTP2_FLAG_NONE, sid, n) == 0);
}

void fx_h2c_free(struct fx_h2c *cl)
{
    nghttp2_session_del(cl->ng);
    free(cl);
}

int32_t fx_h2c_request(struct fx_h2c *cl, const char *const *nv)
{
    nghttp2_nv nva[64];
    size_t n = 0;
    for (; nv[2 * n] && n < CR_ARRAY_LEN(nva); n++)
        nva[n] = (nghttp2_nv){(uint8_t *)nv[2 * n], (uint8_t *)nv[2 * n + 1], strlen(nv[2 * n]),
                              strlen(nv[2 * n + 1]), NGHTTP2_NV_FLAG_NONE};
    int32_t sid = nghttp2_submit_request(cl->ng, NULL, nva, n, NULL, NULL);
    FX_CHECK(sid > 0);
    return sid;
}

void fx_h2c_send(struct fx_h2c *cl, struct evbuffer *out)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(cl->ng, &data);
        FX_CHECK(n >= 0);
        if (n == 0)
            return;
        evbuffer_add(out, data, (size_t)n);
    }
}

int fx_h2c_recv(struct fx_h2c *cl, const uint8_t *data, size_t len)
{
    ssize_t rc = nghttp2_session_mem_recv(cl->ng, data, len);
    return rc < 0 ? (int)rc : 0;
}

uint64_t fx_h2c_done(const struct fx_h2c *cl)
{
    return cl->done;
}

int fx_h2c_status(const struct fx_h2c *cl, int32_t sid)
{
    return cl->st[(sid / 2) % H2C_SLOTS].sid == sid ? cl->st[(sid / 2) % H2C_SLOTS].status : 0;
}

uint64_t fx_h2c_resets(const struct fx_h2c *cl)
{
    return cl->resets;
}

int fx_h2c_reset_code(const struct fx_h2c *cl, int32_t sid)
{
    return cl->st[(sid / 2) % H2C_SLOTS].sid == sid ? cl->st[(sid / 2) % H2C_SLOTS].reset : -1;
}
