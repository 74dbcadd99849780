/* upstream.c - the transport of one persistent upstream connection: TCP,
 * TLS (verified, client certificate, session resumed on reconnect),
 * keepalive, failure and reconnection. The protocol spoken over it is a
 * codec (upstream_h2.c or upstream_h1.c). */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "tls.h"
#include "upstream_int.h"

static int64_t next_id;
static const char *const up_state_names[] = {"idle", "connecting", "handshake", "ready",
                                             "goaway"};

static void up_flush(void *arg);
static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

_Static_assert(CR_UP_GOAWAY + 1 == CR_SHM_UP_NSTATES, "shm counts every upstream state");

static void gauge(_Atomic uint64_t *g, int64_t delta)
{
    atomic_fetch_add_explicit(g, (uint64_t)delta, memory_order_relaxed);
}

/* The worker's upstream_ready gauge (shm.h), which the admin's /health
 * reads; w->up_ready is this worker's share, taken back when it exits. */
static void count_ready(struct cr_upconn *u, int delta)
{
    u->w->up_ready = (uint64_t)((int64_t)u->w->up_ready + delta);
    atomic_fetch_add(&u->w->stats->upstream_ready, (uint64_t)(int64_t)delta);
}

void cr_up_set_state(struct cr_upconn *u, enum cr_up_state s)
{
    cr_log_debug("upstream %s conn %lld: %s -> %s", u->addr->text, (long long)u->id,
                 up_state_names[u->state], up_state_names[s]);
    gauge(&u->stats->conns[u->state], -1);
    gauge(&u->stats->conns[s], 1);
    if ((u->state == CR_UP_READY) != (s == CR_UP_READY))
        count_ready(u, s == CR_UP_READY ? 1 : -1);
    u->state = s;
}

/* The index of addr in the config's upstream.addrs, clamped to the shm's. */
static size_t addr_index(const struct cr_worker *w, const struct cr_addr *addr)
{
    const struct cr_cfg_upstream *uc = &w->cfg->upstream;
    size_t i = addr >= uc->addrs && addr < uc->addrs + uc->naddrs ? (size_t)(addr - uc->addrs) : 0;
    return CR_MIN(i, (size_t)CR_SHM_MAX_UPADDRS - 1);
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
    u->stats = &w->upstats[addr_index(w, addr)];
    gauge(&u->stats->conns[CR_UP_IDLE], 1);
    u->codec = w->cfg->upstream.protocol == CR_PROTO_H2 ? &cr_up_h2 : &cr_up_h1;
    u->fd = -1;
    u->id = -1;
    cr_tls_sessions_init(&u->sess, 1);
    u->sessions = &u->sess;
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

struct cr_upconn *cr_upconn_new_tunnel(struct cr_worker *w, struct cr_pool *p,
                                       const struct cr_addr *addr,
                                       struct cr_tls_sessions *sessions)
{
    struct cr_upconn *u = cr_upconn_new(w, p, addr);
    if (u) {
        u->codec = &cr_up_ws;
        u->tunnel = true;
        u->sessions = sessions;
    }
    return u;
}

bool cr_upconn_is_tunnel(const struct cr_upconn *u)
{
    return u->tunnel;
}

static void attach(struct cr_upconn *u, struct cr_request *r);
static void up_fail(struct cr_upconn *u, const char *why);

void cr_upconn_open_tunnel(struct cr_upconn *u, struct cr_request *r)
{
    int rc = u->codec->submit(u, r); /* the upgrade request waits in u->out for TLS */
    attach(u, r);
    if (rc < 0) { /* no key (getrandom): a failure before the answer, 502 now */
        up_fail(u, "no WebSocket key for the upgrade");
        return;
    }
    cr_upconn_connect(u, 0);
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
    if (u->state >= CR_UP_READY) {
        u->codec->stop(u);
        u->up_us = cr_now_us() - u->ready_us;
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
    u->ping_outstanding = false;
    u->want_read_on_write = false;
    u->read_paused = false;
}

void cr_upconn_free(struct cr_upconn *u)
{
    if (!u)
        return;
    if (u->state == CR_UP_READY)
        count_ready(u, -1);
    close_transport(u);
    gauge(&u->stats->conns[u->state], -1);
    /* The back end lets go of what it still carries: a request its front
     * end gave up on (up_cancelled) is held by nobody else and is freed
     * here; one a front end still holds stays with it. No gate or pool
     * call: they are going too. */
    struct cr_request *r;
    while ((r = TAILQ_FIRST(&u->streams)) != NULL) {
        TAILQ_REMOVE(&u->streams, r, uplink);
        r->up = NULL;
        cr_request_release_be(r);
    }
    gauge(&u->stats->inflight, -(int64_t)u->inflight);
    u->inflight = 0;
    u->streaming = 0;
    u->tunnel_streams = 0;
    if (u->tmr)
        event_free(u->tmr);
    if (u->out)
        evbuffer_free(u->out);
    cr_tls_sessions_clear(&u->sess);
    free(u);
}

void cr_upconn_unpublish(struct cr_upconn *u)
{
    gauge(&u->stats->conns[u->state], -1);
    gauge(&u->stats->inflight, -(int64_t)u->inflight);
}

enum cr_up_state cr_upconn_state(const struct cr_upconn *u)
{
    return u->state;
}

uint32_t cr_upconn_inflight(const struct cr_upconn *u)
{
    return u->inflight;
}

uint32_t cr_upconn_streaming(const struct cr_upconn *u)
{
    return u->streaming;
}

void cr_upconn_stream_moved(struct cr_upconn *u)
{
    u->streaming++;
}

uint32_t cr_upconn_request_room(const struct cr_upconn *u, uint32_t more)
{
    uint32_t out = u->streaming + u->tunnel_streams + more;
    uint32_t held = u->inflight > out ? u->inflight - out : 0;
    if (more && u->codec == &cr_up_h1)
        return held; /* h1_room: none behind a moved stream */
    return held + cr_upconn_room(u);
}

uint32_t cr_upconn_tunnel_streams(const struct cr_upconn *u)
{
    return u->tunnel_streams;
}

bool cr_upconn_ext_connect(const struct cr_upconn *u)
{
    return u->codec == &cr_up_h2 && !u->tunnel && u->ng && u->ext_connect;
}

int64_t cr_upconn_id(const struct cr_upconn *u)
{
    return u->id;
}

bool cr_upconn_proven(const struct cr_upconn *u, uint64_t min_up_ms)
{
    uint64_t up = u->state >= CR_UP_READY ? cr_now_us() - u->ready_us : u->up_us;
    return u->responses > 0 || up >= min_up_ms * 1000;
}

bool cr_upconn_check_hangup(struct cr_upconn *u)
{
    if (u->state != CR_UP_READY || u->hungup)
        return u->hungup;
    struct pollfd pfd = {.fd = u->fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        u->hungup = true;
    return u->hungup;
}

uint32_t cr_upconn_room(const struct cr_upconn *u)
{
    if (u->state != CR_UP_READY || u->retiring || u->hungup)
        return 0;
    return u->codec->room(u);
}

/* ------------------------------------------------------------ services */

/* Writes what the codec has, once the current callbacks have returned. */
static void up_want_flush(struct cr_upconn *u)
{
    if (u->state >= CR_UP_READY)
        cr_worker_defer(u->w, &u->flush);
}

void cr_up_pause_read(struct cr_upconn *u, bool pause)
{
    if (u->read_paused == pause || !u->rev)
        return;
    u->read_paused = pause;
    if (pause) {
        event_del(u->rev);
    } else {
        event_add(u->rev, NULL);
        event_active(u->rev, EV_READ, 0); /* OpenSSL may hold decrypted bytes */
    }
}

void cr_up_response_head(struct cr_request *r)
{
    cr_request_set_state(r, CR_REQ_RESPONDING);
    r->t_first_byte = cr_now_us();
    if (!r->up_cancelled)
        cr_pool_response_head(r->w->pool, r); /* it may be a stream */
    cr_request_notify_head(r);
}

void cr_up_stream_done(struct cr_upconn *u, struct cr_request *r, bool refused)
{
    TAILQ_REMOVE(&u->streams, r, uplink);
    u->inflight--;
    if (r->streaming == CR_REQ_STREAM_MOVED)
        u->streaming--;
    if (r->upgrade && !u->tunnel)
        u->tunnel_streams--;
    gauge(&u->stats->inflight, -1);
    r->up = NULL;
    if (r->resp_eof) {
        u->responses++;
        cr_pool_done(u->pool, r);
    } else {
        cr_pool_stream_failed(u->pool, r, refused);
    }
}

/* The connection is lost: every request on it fails (the pool retries
 * what is safe to retry), and the pool schedules a reconnection. */
static void lose(struct cr_upconn *u)
{
    struct cr_request *r;
    struct cr_up_q failed = TAILQ_HEAD_INITIALIZER(failed);
    TAILQ_CONCAT(&failed, &u->streams, uplink);
    gauge(&u->stats->inflight, -(int64_t)u->inflight);
    u->inflight = 0;
    u->streaming = 0;
    u->tunnel_streams = 0;
    close_transport(u);
    cr_up_set_state(u, CR_UP_IDLE);
    while ((r = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, r, uplink);
        r->up = NULL;
        cr_pool_stream_failed(u->pool, r, false);
    }
}

/* The connection cannot go on: close it, fail its requests, reconnect
 * (after the back-off). */
static void up_fail(struct cr_upconn *u, const char *why)
{
    cr_log_warn("upstream %s conn %lld: %s (%s, %u request(s) in flight)", u->addr->text,
                (long long)u->id, why, up_state_names[u->state], u->inflight);
    lose(u);
    cr_pool_lost(u->pool, u, CR_POOL_LOST_FAILED);
}

void cr_up_lost(struct cr_upconn *u, enum cr_pool_loss how, const char *why)
{
    cr_log_debug("upstream %s conn %lld: %s; reconnecting", u->addr->text, (long long)u->id, why);
    lose(u);
    if (!u->retiring)
        cr_pool_lost(u->pool, u, how);
}

/* ------------------------------------------------------------ I/O */

static void up_flush(void *arg)
{
    struct cr_upconn *u = arg;
    if (u->state < CR_UP_READY)
        return;
    for (;;) {
        int rc = u->codec->produce(u);
        if (rc == CR_ECLOSED) { /* a clean end, not a failure */
            cr_up_lost(u, CR_POOL_LOST_CLOSED, "retired or GOAWAY'd, and empty");
            return;
        }
        if (rc < 0) {
            up_fail(u, "protocol error");
            return;
        }
        if (evbuffer_get_length(u->out) == 0)
            return;
        switch (cr_tls_write_out(u->ssl, u->out)) {
        case CR_TLS_OK:
            continue; /* room again: the codec may have more */
        case CR_TLS_WANT_WRITE:
            event_add(u->wev, NULL);
            return;
        case CR_TLS_WANT_READ:
            u->want_read_on_write = true;
            return;
        default:
            up_fail(u, "write failed");
            return;
        }
    }
}

static void up_read(struct cr_upconn *u)
{
    uint8_t buf[16384];
    /* a budget in bytes, not reads: each read is one TLS record, and an
     * upstream that writes a record per response would otherwise hand over
     * a few responses per loop iteration, each batch flushed on its own */
    for (size_t total = 0; total < 8 * sizeof(buf) && u->state >= CR_UP_READY && !u->read_paused;) {
        size_t n;
        enum cr_tls_io rc = cr_tls_read(u->ssl, buf, sizeof(buf), &n);
        if (rc == CR_TLS_OK) {
            total += n;
            u->last_rx_us = cr_now_us();
            if (u->codec->on_data(u, buf, n) < 0) {
                up_fail(u, "protocol error from the upstream");
                return;
            }
            if (u->state < CR_UP_READY)
                return; /* the codec closed it (HTTP/1.1 Connection: close) */
            if (!SSL_has_pending(u->ssl))
                break; /* the socket is drained: no read(2) just for EAGAIN */
            continue;
        }
        if (rc == CR_TLS_WANT_READ)
            break;
        if (rc == CR_TLS_WANT_WRITE) {
            event_add(u->wev, NULL);
            break;
        }
        if (rc == CR_TLS_CLOSED && u->codec->on_eof(u) == 0) {
            cr_up_lost(u, CR_POOL_LOST_CLOSED, "closed by the upstream");
            return;
        }
        up_fail(u, rc == CR_TLS_CLOSED ? "closed by the upstream" : "TLS error");
        return;
    }
    if (u->state >= CR_UP_READY && !u->read_paused && SSL_has_pending(u->ssl))
        event_active(u->rev, EV_READ, 0);
    up_want_flush(u);
}

static int check_alpn(struct cr_upconn *u)
{
    const unsigned char *p;
    unsigned int len;
    size_t want = strlen(u->codec->alpn);
    SSL_get0_alpn_selected(u->ssl, &p, &len);
    if (len == 0 && strcmp(u->codec->alpn, "http/1.1") == 0)
        return 0; /* a server without ALPN speaks HTTP/1.1 */
    return len == want && memcmp(p, u->codec->alpn, want) == 0 ? 0 : CR_EPROTO;
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
        char buf[96];
        snprintf(buf, sizeof(buf), "the upstream did not agree to %s (ALPN)", u->codec->alpn);
        up_fail(u, buf);
        return;
    }
    cr_up_set_state(u, CR_UP_READY);
    u->ready_us = cr_now_us();
    if (u->codec->start(u) < 0) {
        up_fail(u, "out of memory");
        return;
    }
    cr_log_info("upstream %s conn %lld: connected (%s, %s%s)", u->addr->text, (long long)u->id,
                u->codec->alpn, SSL_get_version(u->ssl),
                SSL_session_reused(u->ssl) ? ", resumed" : "");
    evtimer_del(u->tmr);
    if (u->w->cfg->upstream.keepalive_ms)
        arm(u, u->w->cfg->upstream.keepalive_ms);
    u->last_rx_us = cr_now_us();
    up_want_flush(u);
    cr_pool_room(u->pool, u);
    up_read(u);
}

/* The name to send and verify: tls.sni, or the host of the address. */
static const char *peer_name(const struct cr_upconn *u, char *buf, size_t len)
{
    const char *sni = u->w->cfg->upstream.tls.sni;
    if (sni)
        return sni;
    snprintf(buf, len, "%s", u->addr->text[0] == '[' ? u->addr->text + 1 : u->addr->text);
    char *end = u->addr->text[0] == '[' ? strchr(buf, ']') : strrchr(buf, ':');
    if (end)
        *end = '\0';
    return buf;
}

static void start_tls(struct cr_upconn *u)
{
    char host[64];
    const char *name = peer_name(u, host, sizeof(host));
    u->ssl = SSL_new(u->w->setup->upstream_tls);
    if (!u->ssl || SSL_set_fd(u->ssl, u->fd) != 1) {
        up_fail(u, "out of memory");
        return;
    }
    SSL_set_connect_state(u->ssl);
    if (u->tunnel) { /* a tunnel's upgrade is HTTP/1.1 whatever the pool speaks */
        static const unsigned char h11[] = "\x08http/1.1";
        SSL_set_alpn_protos(u->ssl, h11, sizeof(h11) - 1);
    }
    SSL_set_app_data(u->ssl, u->sessions);
    struct in6_addr tmp;
    int is_ip = inet_pton(AF_INET, name, &tmp) == 1 || inet_pton(AF_INET6, name, &tmp) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(u->ssl, name);
    if (!u->w->cfg->upstream.tls.insecure) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(u->ssl), name)
                       : SSL_set1_host(u->ssl, name);
        if (ok != 1) {
            up_fail(u, "cannot set the name to verify");
            return;
        }
    }
    if (u->tunnel) {
        /* a ticket the tunnel connections before it were given, used once */
        SSL_SESSION *s = cr_tls_sessions_take(u->sessions);
        if (s)
            SSL_set_session(u->ssl, s);
        SSL_SESSION_free(s);
    } else if (cr_tls_sessions_peek(&u->sess)) {
        SSL_set_session(u->ssl, cr_tls_sessions_peek(&u->sess));
    }
    cr_up_set_state(u, CR_UP_HANDSHAKE);
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
    u->ready_us = u->up_us = 0;
    u->responses = 0;
    u->hungup = false;
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
    event_priority_set(u->rev, 0); /* carries many clients' requests */
    event_priority_set(u->wev, 0);
    if (u->connected_once)
        gauge(&u->stats->reconnects, 1);
    u->connected_once = true;
    cr_up_set_state(u, CR_UP_CONNECTING);
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
        /* liveness: a quiet connection is probed; no answer by the next
         * tick means it is dead, and it is replaced before a request is
         * lost on it */
        uint64_t ka = u->w->cfg->upstream.keepalive_ms;
        if (u->ping_outstanding) {
            up_fail(u, "no answer to PING: the connection is dead");
            return;
        }
        if (u->codec->ping && cr_now_us() - u->last_rx_us >= ka * 1000) {
            u->codec->ping(u);
            u->ping_outstanding = true;
            up_want_flush(u);
        }
        arm(u, ka);
        break;
    }
    }
}

/* ------------------------------------------------------------ requests */

int cr_upconn_submit(struct cr_upconn *u, struct cr_request *r)
{
    if (cr_upconn_room(u) == 0)
        return CR_EAGAIN;
    int rc = u->codec->submit(u, r);
    if (rc < 0)
        return rc;
    attach(u, r);
    return 0;
}

/* r goes on u's streams, its response deadline armed. */
static void attach(struct cr_upconn *u, struct cr_request *r)
{
    r->up = u;
    r->up_conn_id = u->id;
    cr_request_set_state(r, CR_REQ_UPSTREAM);
    r->t_dispatched = cr_now_us();
    r->up_addr = (int)addr_index(u->w, u->addr) + 1;
    u->inflight++;
    if (r->upgrade && !u->tunnel)
        u->tunnel_streams++; /* an extended CONNECT on a pool connection */
    gauge(&u->stats->inflight, 1);
    TAILQ_INSERT_TAIL(&u->streams, r, uplink);
    cr_request_response_deadline(r, u->w->cfg->upstream.response_timeout_ms);
    up_want_flush(u);
}

/* Whether a cancelled exchange is left to finish (its answer discarded)
 * rather than reset: the upstream is still working on it (no response head
 * yet), the whole request is out (a half-sent body cannot be finished
 * without the client), and its response deadline has not passed. When the
 * deadline passes (request.c's timer cancels again) the stream is reset.
 *
 * The choice: a load balancer usually does not stop a backend's work when
 * a stream is reset, so resetting would free the slot here while the work
 * goes on there (the issue measured 172 in flight at an upstream capped at
 * 32). Letting it finish keeps admission's count equal to the work the
 * upstream does, at the cost of the bytes of a response nobody reads; a
 * response already streaming its body is reset at once, since its work is
 * done and its bytes are all that is left. */
static bool finish_cancelled(const struct cr_request *r)
{
    return r->state == CR_REQ_UPSTREAM && r->req_eof && cr_request_body_pending(r) == 0 &&
           r->resp_tmr && evtimer_pending(r->resp_tmr, NULL);
}

/* The upstream has ended its response and the whole request is on its way
 * (sent, or its end handed to the codec): there is nothing left to cancel.
 * A front end lets go of such a request in the ordinary course: HTTP/1.1
 * writes the response and releases r from the callback that told it of the
 * end (cr_request_notify_end), which HTTP/2 makes while the END_STREAM
 * frame is still being received, before nghttp2 closes the stream. */
static bool exchange_over(const struct cr_request *r)
{
    return r->resp_eof && r->req_eof && cr_request_body_pending(r) == 0;
}

void cr_upconn_cancel(struct cr_upconn *u, struct cr_request *r)
{
    if (exchange_over(r)) {
        /* Not a cancel, and never a reset: resetting finished streams
         * trips the upstream's rapid-reset guard (nghttp2's answers with
         * GOAWAY INTERNAL_ERROR after about a thousand). The stream closes
         * by itself, and the codec releases r then as any finished
         * exchange (cr_up_stream_done, resp_eof: cr_pool_done): HTTP/2's
         * on_stream_close, right after the END_STREAM frame's callback
         * returns, or once our own END_STREAM, already handed over, is out.
         * r stays meanwhile: the caller (that callback) may still use it,
         * and nghttp2 may still read the request's end from it. HTTP/1.1
         * never comes here: it releases r before telling of the end. */
        return;
    }
    r->up_cancelled = true;
    if (finish_cancelled(r))
        return; /* the codecs discard its answer; cr_up_stream_done releases it */
    u->codec->cancel(u, r); /* r may be released (and freed) here */
    up_want_flush(u);
}

void cr_upconn_resume(struct cr_upconn *u, struct cr_request *r)
{
    if (u->state >= CR_UP_READY) {
        u->codec->resume(u, r);
        up_want_flush(u);
    }
}

void cr_upconn_consumed(struct cr_upconn *u, struct cr_request *r, size_t n)
{
    if (u->state >= CR_UP_READY) {
        u->codec->consumed(u, r, n);
        up_want_flush(u);
    }
}

void cr_upconn_retire(struct cr_upconn *u)
{
    u->retiring = true;
    evtimer_del(u->tmr);
    if (u->state < CR_UP_READY) {
        close_transport(u);
        cr_up_set_state(u, CR_UP_IDLE);
        return;
    }
    u->codec->retire(u);
    up_want_flush(u);
}
