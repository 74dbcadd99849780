/* upstream.c - one persistent TLS + HTTP/2 client connection to the load
 * balancer, carrying streams for many client connections. */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "pool.h"
#include "tls.h"
#include "worker.h"

#define UP_OUT_HIGH (64 * 1024)
#define UP_STREAM_WINDOW (256 * 1024)
#define UP_CONN_WINDOW (16 * 1024 * 1024)

struct cr_upconn {
    enum cr_up_state state;
    struct cr_worker *w;
    struct cr_pool *pool;
    const struct cr_addr *addr;
    int fd;
    SSL *ssl;
    nghttp2_session *ng;
    struct event *rev, *wev, *tmr;
    struct evbuffer *out;
    struct cr_deferred flush;
    SSL_SESSION *sess;         /* last session, resumed on reconnect */
    TAILQ_HEAD(, cr_request) streams;
    uint32_t inflight;
    uint32_t remote_max;       /* server's SETTINGS_MAX_CONCURRENT_STREAMS */
    int64_t id;
    bool retiring;
    bool ping_outstanding;
    bool want_read_on_write;
    uint64_t last_rx_us;
};

static int64_t next_id;
static const char *const up_state_names[] = {"idle", "connecting", "handshake", "ready",
                                             "goaway"};

static void up_fail(struct cr_upconn *u, const char *why);
static void up_flush(void *arg);
static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static void set_state(struct cr_upconn *u, enum cr_up_state s)
{
    cr_log_debug("upstream %s conn %lld: %s -> %s", u->addr->text, (long long)u->id,
                 up_state_names[u->state], up_state_names[s]);
    u->state = s;
}

static void arm(struct cr_upconn *u, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(u->tmr, &tv);
}

struct cr_upconn *cr_upconn_new(struct cr_worker *w, struct cr_pool *p,
                                const struct cr_addr *addr)
{
    struct cr_upconn *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->w = w;
    u->pool = p;
    u->addr = addr;
    u->fd = -1;
    u->id = -1;
    TAILQ_INIT(&u->streams);
    u->tmr = evtimer_new(w->base, on_timer, u);
    u->out = evbuffer_new();
    if (!u->tmr || !u->out) {
        cr_upconn_free(u);
        return NULL;
    }
    u->flush.cb = up_flush;
    u->flush.arg = u;
    return u;
}

static void close_transport(struct cr_upconn *u)
{
    cr_worker_undefer(u->w, &u->flush);
    if (u->rev) {
        event_free(u->rev);
        u->rev = NULL;
    }
    if (u->wev) {
        event_free(u->wev);
        u->wev = NULL;
    }
    if (u->ng) {
        nghttp2_session_del(u->ng);
        u->ng = NULL;
    }
    if (u->ssl) {
        SSL_free(u->ssl);
        u->ssl = NULL;
    }
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
    evbuffer_drain(u->out, evbuffer_get_length(u->out));
    evtimer_del(u->tmr);
}

void cr_upconn_free(struct cr_upconn *u)
{
    if (!u)
        return;
    close_transport(u);
    if (u->tmr)
        event_free(u->tmr);
    if (u->out)
        evbuffer_free(u->out);
    SSL_SESSION_free(u->sess);
    free(u);
}

enum cr_up_state cr_upconn_state(const struct cr_upconn *u)
{
    return u->state;
}

uint32_t cr_upconn_inflight(const struct cr_upconn *u)
{
    return u->inflight;
}

int64_t cr_upconn_id(const struct cr_upconn *u)
{
    return u->id;
}

uint32_t cr_upconn_room(const struct cr_upconn *u)
{
    if (u->state != CR_UP_READY || u->retiring)
        return 0;
    uint32_t max = u->remote_max;
    uint32_t cap = cr_worker_self->cfg->upstream.max_streams;
    if (cap && cap < max)
        max = cap;
    return u->inflight < max ? max - u->inflight : 0;
}

/* ------------------------------------------------------------ nghttp2 */

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct cr_request *r = src->ptr;
    size_t have = evbuffer_get_length(r->req_body);
    if (have == 0 && !r->req_eof)
        return NGHTTP2_ERR_DEFERRED;
    int n = evbuffer_remove(r->req_body, buf, CR_MIN(have, len));
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (r->req_eof && evbuffer_get_length(r->req_body) == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (have >= CR_REQUEST_BUF_HIGH && have - (size_t)n < CR_REQUEST_BUF_HIGH)
        cr_request_notify_drained(r);
    return n;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct cr_request *r = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!r)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        r->status = atoi((const char *)value);
        return 0;
    }
    if (nlen && name[0] == ':')
        return 0;
    if (cr_request_add_rheader(r, (const char *)name, nlen, (const char *)value, vlen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
    struct cr_upconn *u = arg;
    struct cr_request *r = f->hd.stream_id
                               ? nghttp2_session_get_stream_user_data(ng, f->hd.stream_id)
                               : NULL;
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) {
            u->remote_max = nghttp2_session_get_remote_settings(
                ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
            cr_pool_room(u->pool, u);
        }
        break;
    case NGHTTP2_HEADERS:
        if (!r)
            break;
        if (r->status >= 100 && r->status < 200) {
            cr_request_reset_rheaders(r); /* interim: the final answer follows */
            r->status = 0;
            break;
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            r->resp_eof = true;
        if (r->state < CR_REQ_RESPONDING && r->status >= 200) {
            r->state = CR_REQ_RESPONDING;
            r->t_first_byte = cr_now_us();
            cr_request_notify_head(r);
        }
        if (r->resp_eof)
            cr_request_notify_end(r);
        break;
    case NGHTTP2_DATA:
        if (r && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            r->resp_eof = true;
            cr_request_notify_end(r);
        }
        break;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            u->ping_outstanding = false;
        break;
    case NGHTTP2_GOAWAY:
        cr_log_info("upstream %s conn %lld: GOAWAY (last stream %d, error %u): retiring it",
                    u->addr->text, (long long)u->id, f->goaway.last_stream_id,
                    f->goaway.error_code);
        set_state(u, CR_UP_GOAWAY);
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *arg)
{
    struct cr_request *r = nghttp2_session_get_stream_user_data(ng, sid);
    if (!r || !r->fe) {
        nghttp2_session_consume(ng, sid, len); /* nobody will read it */
        return 0;
    }
    if (evbuffer_add(r->resp_body, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    cr_request_notify_body(r);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error, void *arg)
{
    struct cr_upconn *u = arg;
    struct cr_request *r = nghttp2_session_get_stream_user_data(ng, sid);
    u->inflight--;
    if (r) {
        TAILQ_REMOVE(&u->streams, r, qlink);
        r->up = NULL;
        if (r->resp_eof) {
            cr_request_release_be(r);
        } else {
            cr_log_debug("upstream conn %lld: stream %d closed early (error %u)",
                         (long long)u->id, sid, error);
            cr_pool_stream_failed(u->pool, r, error == NGHTTP2_REFUSED_STREAM);
        }
    }
    cr_pool_room(u->pool, u);
    return 0;
}

static int new_session(struct cr_upconn *u)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return CR_ENOMEM;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return CR_ENOMEM;
    }
    /* response bytes are acknowledged when the client has taken them */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rc = nghttp2_session_client_new2(&u->ng, cb, u, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return CR_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UP_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0},
    };
    nghttp2_submit_settings(u->ng, NGHTTP2_FLAG_NONE, iv, CR_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(u->ng, NGHTTP2_FLAG_NONE, 0, UP_CONN_WINDOW);
    /* until the server's SETTINGS arrive, RFC 9113 lets us assume 100 */
    u->remote_max = nghttp2_session_get_remote_settings(u->ng,
                                                         NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return 0;
}

/* ------------------------------------------------------------ I/O */

static void up_flush(void *arg)
{
    struct cr_upconn *u = arg;
    if (u->state < CR_UP_READY || !u->ng)
        return;
    for (;;) {
        while (evbuffer_get_length(u->out) < UP_OUT_HIGH) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(u->ng, &data);
            if (n < 0) {
                up_fail(u, nghttp2_strerror((int)n));
                return;
            }
            if (n == 0)
                break;
            evbuffer_add(u->out, data, (size_t)n);
        }
        size_t len = evbuffer_get_length(u->out);
        if (len == 0)
            break;
        size_t chunk = CR_MIN(len, (size_t)16384);
        unsigned char *p = evbuffer_pullup(u->out, (ssize_t)chunk);
        ERR_clear_error();
        int n = SSL_write(u->ssl, p, (int)chunk);
        if (n > 0) {
            evbuffer_drain(u->out, (size_t)n);
            continue;
        }
        int err = SSL_get_error(u->ssl, n);
        if (err == SSL_ERROR_WANT_WRITE) {
            event_add(u->wev, NULL);
            return;
        }
        if (err == SSL_ERROR_WANT_READ) {
            u->want_read_on_write = true;
            return;
        }
        up_fail(u, "write failed");
        return;
    }
    if (u->retiring && u->inflight == 0 && !nghttp2_session_want_write(u->ng)) {
        close_transport(u);
        set_state(u, CR_UP_IDLE);
        cr_pool_lost(u->pool, u);
    } else if (u->state == CR_UP_GOAWAY && u->inflight == 0) {
        close_transport(u);
        set_state(u, CR_UP_IDLE);
        cr_pool_lost(u->pool, u);
    }
}

static void up_read(struct cr_upconn *u)
{
    uint8_t buf[16384];
    for (int i = 0; i < 8 && u->ng; i++) {
        ERR_clear_error();
        int n = SSL_read(u->ssl, buf, sizeof(buf));
        if (n > 0) {
            u->last_rx_us = cr_now_us();
            ssize_t rc = nghttp2_session_mem_recv(u->ng, buf, (size_t)n);
            if (rc < 0) {
                up_fail(u, nghttp2_strerror((int)rc));
                return;
            }
            continue;
        }
        int err = SSL_get_error(u->ssl, n);
        if (err == SSL_ERROR_WANT_READ)
            break;
        if (err == SSL_ERROR_WANT_WRITE) {
            event_add(u->wev, NULL);
            break;
        }
        up_fail(u, err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL ? "closed by the upstream"
                                                                           : "TLS error");
        return;
    }
    if (u->ssl && SSL_pending(u->ssl) > 0)
        event_active(u->rev, EV_READ, 0);
    if (u->ng)
        cr_worker_defer(u->w, &u->flush);
}

static int check_alpn(struct cr_upconn *u)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(u->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0 ? 0 : CR_EPROTO;
}

static void handshake(struct cr_upconn *u)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(u->ssl);
    if (rc != 1) {
        int err = SSL_get_error(u->ssl, rc);
        if (err == SSL_ERROR_WANT_READ)
            return;
        if (err == SSL_ERROR_WANT_WRITE) {
            event_add(u->wev, NULL);
            return;
        }
        char buf[256];
        long v = SSL_get_verify_result(u->ssl);
        if (v != X509_V_OK)
            snprintf(buf, sizeof(buf), "certificate verification failed: %s",
                     X509_verify_cert_error_string(v));
        else
            cr_tls_errors(buf, sizeof(buf));
        up_fail(u, buf);
        return;
    }
    if (check_alpn(u) < 0) {
        up_fail(u, "the upstream did not agree to HTTP/2 (ALPN h2)");
        return;
    }
    if (new_session(u) < 0) {
        up_fail(u, "out of memory");
        return;
    }
    set_state(u, CR_UP_READY);
    cr_log_info("upstream %s conn %lld: connected (TLS %s%s)", u->addr->text, (long long)u->id,
                SSL_get_version(u->ssl), SSL_session_reused(u->ssl) ? ", resumed" : "");
    evtimer_del(u->tmr);
    arm(u, cr_worker_self->cfg->upstream.keepalive_ms);
    u->last_rx_us = cr_now_us();
    cr_worker_defer(u->w, &u->flush);
    cr_pool_room(u->pool, u);
    up_read(u);
}

static void start_tls(struct cr_upconn *u)
{
    const struct cr_cfg_upstream *uc = &u->w->cfg->upstream;
    const char *name = uc->tls.sni;
    u->ssl = SSL_new(u->w->setup->upstream_tls);
    if (!u->ssl || SSL_set_fd(u->ssl, u->fd) != 1) {
        up_fail(u, "out of memory");
        return;
    }
    SSL_set_connect_state(u->ssl);
    SSL_set_app_data(u->ssl, &u->sess);
    if (!name) {
        /* the host part of the first address: "lb.example:443" -> lb.example */
        static char host[64];
        snprintf(host, sizeof(host), "%s", u->addr->text);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = '\0';
        name = host[0] == '[' ? host + 1 : host;
        char *br = strchr(host, ']');
        if (br)
            *br = '\0';
    }
    struct in6_addr tmp;
    int is_ip = inet_pton(AF_INET, name, &tmp) == 1 || inet_pton(AF_INET6, name, &tmp) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(u->ssl, name);
    if (!uc->tls.insecure) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(u->ssl), name)
                       : SSL_set1_host(u->ssl, name);
        if (ok != 1) {
            up_fail(u, "cannot set the name to verify");
            return;
        }
    }
    if (u->sess)
        SSL_set_session(u->ssl, u->sess);
    set_state(u, CR_UP_HANDSHAKE);
    handshake(u);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct cr_upconn *u = arg;
    if (u->state == CR_UP_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            char buf[128];
            snprintf(buf, sizeof(buf), "connect: %s", strerror(err));
            up_fail(u, buf);
            return;
        }
        start_tls(u);
        return;
    }
    if (u->state == CR_UP_HANDSHAKE) {
        handshake(u);
        return;
    }
    if (what & EV_WRITE) {
        up_flush(u);
        return;
    }
    if (u->want_read_on_write) {
        u->want_read_on_write = false;
        up_flush(u);
    }
    up_read(u);
}

static void do_connect(struct cr_upconn *u)
{
    const struct cr_cfg_upstream *uc = &u->w->cfg->upstream;
    u->id = ++next_id;
    u->fd = socket(u->addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        up_fail(u, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    u->rev = event_new(u->w->base, u->fd, EV_READ | EV_PERSIST, on_io, u);
    u->wev = event_new(u->w->base, u->fd, EV_WRITE, on_io, u);
    if (!u->rev || !u->wev) {
        up_fail(u, "out of memory");
        return;
    }
    set_state(u, CR_UP_CONNECTING);
    arm(u, uc->connect_timeout_ms);
    if (connect(u->fd, (const struct sockaddr *)&u->addr->ss, u->addr->len) < 0 &&
        errno != EINPROGRESS) {
        char buf[128];
        snprintf(buf, sizeof(buf), "connect: %s", strerror(errno));
        up_fail(u, buf);
        return;
    }
    event_add(u->rev, NULL);
    event_add(u->wev, NULL);
}

void cr_upconn_connect(struct cr_upconn *u, uint64_t delay_ms)
{
    if (u->state != CR_UP_IDLE)
        return;
    if (delay_ms) {
        arm(u, delay_ms);
        return;
    }
    do_connect(u);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cr_upconn *u = arg;
    switch (u->state) {
    case CR_UP_IDLE:
        do_connect(u);
        break;
    case CR_UP_CONNECTING:
    case CR_UP_HANDSHAKE:
        up_fail(u, "connect timeout");
        break;
    case CR_UP_READY:
    case CR_UP_GOAWAY: {
        uint64_t ka = u->w->cfg->upstream.keepalive_ms;
        if (u->ping_outstanding) {
            up_fail(u, "no answer to PING: the connection is dead");
            return;
        }
        if (cr_now_us() - u->last_rx_us >= ka * 1000) {
            nghttp2_submit_ping(u->ng, NGHTTP2_FLAG_NONE, NULL);
            u->ping_outstanding = true;
            cr_worker_defer(u->w, &u->flush);
        }
        arm(u, ka);
        break;
    }
    }
}

/* The connection is lost: every stream on it fails, the pool reconnects. */
static void up_fail(struct cr_upconn *u, const char *why)
{
    cr_log_warn("upstream %s conn %lld: %s (%s, %u stream(s) in flight)", u->addr->text,
                (long long)u->id, why, up_state_names[u->state], u->inflight);
    struct cr_request *r;
    TAILQ_HEAD(, cr_request) failed = TAILQ_HEAD_INITIALIZER(failed);
    TAILQ_CONCAT(&failed, &u->streams, qlink);
    u->inflight = 0;
    close_transport(u);
    set_state(u, CR_UP_IDLE);
    u->ping_outstanding = false;
    u->want_read_on_write = false;
    while ((r = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, r, qlink);
        r->up = NULL;
        cr_pool_stream_failed(u->pool, r, false);
    }
    cr_pool_lost(u->pool, u);
}

/* ------------------------------------------------------------ streams */

int cr_upconn_submit(struct cr_upconn *u, struct cr_request *r)
{
    if (cr_upconn_room(u) == 0)
        return CR_EAGAIN;
    size_t n = 4 + r->hdrs.n;
    nghttp2_nv stackv[64];
    nghttp2_nv *nva = n <= CR_ARRAY_LEN(stackv) ? stackv : malloc(n * sizeof(*nva));
    if (!nva)
        return CR_ENOMEM;
#define NV(k, v, vl) ((nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, (vl), 0})
    nva[0] = NV(":method", r->method, strlen(r->method));
    nva[1] = NV(":scheme", r->scheme, strlen(r->scheme));
    nva[2] = NV(":authority", r->authority, strlen(r->authority));
    nva[3] = NV(":path", r->path, strlen(r->path));
#undef NV
    for (uint32_t i = 0; i < r->hdrs.n; i++)
        nva[4 + i] = (nghttp2_nv){(uint8_t *)r->hdrs.v[i].name, (uint8_t *)r->hdrs.v[i].value,
                                  r->hdrs.v[i].nlen, r->hdrs.v[i].vlen, 0};
    nghttp2_data_provider prd = {.source.ptr = r, .read_callback = body_read};
    bool body = r->has_body && !(r->req_eof && evbuffer_get_length(r->req_body) == 0);
    int32_t sid = nghttp2_submit_request(u->ng, NULL, nva, n, body ? &prd : NULL, r);
    if (nva != stackv)
        free(nva);
    if (sid < 0)
        return sid == NGHTTP2_ERR_NOMEM ? CR_ENOMEM : CR_EAGAIN;
    r->up = u;
    r->up_stream = sid;
    r->up_conn_id = u->id;
    r->state = CR_REQ_UPSTREAM;
    r->t_dispatched = cr_now_us();
    u->inflight++;
    TAILQ_INSERT_TAIL(&u->streams, r, qlink);
    cr_worker_defer(u->w, &u->flush);
    return 0;
}

void cr_upconn_cancel(struct cr_upconn *u, struct cr_request *r)
{
    TAILQ_REMOVE(&u->streams, r, qlink);
    r->up = NULL;
    if (!u->ng)
        return;
    nghttp2_session_set_stream_user_data(u->ng, r->up_stream, NULL);
    /* a stream both sides have ended is closing by itself: no reset */
    bool done = r->resp_eof && r->req_eof && evbuffer_get_length(r->req_body) == 0;
    if (!done) {
        nghttp2_submit_rst_stream(u->ng, NGHTTP2_FLAG_NONE, r->up_stream, NGHTTP2_CANCEL);
        cr_worker_defer(u->w, &u->flush);
    }
}

void cr_upconn_resume(struct cr_upconn *u, struct cr_request *r)
{
    if (u->ng) {
        nghttp2_session_resume_data(u->ng, r->up_stream);
        cr_worker_defer(u->w, &u->flush);
    }
}

void cr_upconn_consumed(struct cr_upconn *u, struct cr_request *r, size_t n)
{
    if (u->ng) {
        nghttp2_session_consume(u->ng, r->up_stream, n);
        cr_worker_defer(u->w, &u->flush);
    }
}

void cr_upconn_retire(struct cr_upconn *u)
{
    u->retiring = true;
    evtimer_del(u->tmr);
    if (u->state == CR_UP_IDLE || u->state == CR_UP_CONNECTING || u->state == CR_UP_HANDSHAKE) {
        close_transport(u);
        set_state(u, CR_UP_IDLE);
        return;
    }
    if (u->ng) {
        nghttp2_submit_goaway(u->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(u->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
        cr_worker_defer(u->w, &u->flush);
    }
}
