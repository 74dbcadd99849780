/* rp_conn.c - one client connection: non-blocking TCP connect, the TLS
 * handshake (SNI, verification, ALPN, resumption), reading into the codec,
 * writing the codec's output, closing. Plain libevent events on the socket
 * and OpenSSL on the file descriptor: no bufferevents, so a request costs
 * no extra copy. */
#include "rp_client_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common.h"

#define READ_BUF 16384
#define READS_PER_EVENT 32 /* then let other connections run */

/* ------------------------------------------------------------ TLS context */

static void print_tls_errors(const char *what)
{
    unsigned long err;
    char buf[256];

    fprintf(stderr, "corral-replay: %s\n", what);
    while ((err = ERR_get_error()) != 0) {
        ERR_error_string_n(err, buf, sizeof(buf));
        fprintf(stderr, "corral-replay:   %s\n", buf);
    }
}

int rp_conn_tls_ctx(const struct rp_profile *p, SSL_CTX **out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    *out = NULL;
    if (ctx == NULL) {
        print_tls_errors("cannot create a TLS context");
        return CR_ETLS;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    /* Read whole socket buffers, not a record header then its body: half
     * the read(2) calls when answers come in many small records. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, READ_BUF);
    if (!p->target.insecure) {
        if (SSL_CTX_load_verify_locations(ctx, p->target.ca, NULL) != 1) {
            char what[600];
            snprintf(what, sizeof(what), "cannot load the CA file %s", p->target.ca);
            print_tls_errors(what);
            SSL_CTX_free(ctx);
            return CR_ETLS;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    *out = ctx;
    return 0;
}

/* ------------------------------------------------------------ errors */

/* Prints the first few distinct connection problems of a run to stderr,
 * once each (a refused port would otherwise print thousands of lines). */
static void note(struct rp_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct rp_conn *c, const char *fmt, ...)
{
    static char seen[8][160];
    static size_t nseen;
    char msg[160];
    va_list ap;

    int n = snprintf(msg, sizeof(msg), "%s: ", c->e->p->target.addrs[c->target].text);

    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i], msg) == 0)
            return;
    if (nseen == CR_ARRAY_LEN(seen))
        return;
    snprintf(seen[nseen++], sizeof(seen[0]), "%s", msg);
    fprintf(stderr, "%scorral-replay: connection to %s%s\n", isatty(2) ? "\r\033[K" : "", msg,
            nseen == CR_ARRAY_LEN(seen) ? " (further kinds of errors are not shown)" : "");
}

static const char *tls_reason(void)
{
    unsigned long err = ERR_peek_last_error();
    const char *r = err != 0 ? ERR_reason_error_string(err) : NULL;

    ERR_clear_error();
    return r != NULL ? r : "TLS error";
}

/* ------------------------------------------------------------ output */

int rp_conn_out(struct rp_conn *c, const void *d, size_t n)
{
    if (c->ooff > 0 && c->ooff == c->olen)
        c->ooff = c->olen = 0;
    if (c->olen + n > c->ocap) {
        size_t cap = c->ocap ? c->ocap : 4096;
        while (cap < c->olen + n)
            cap *= 2;
        if (c->ooff > 0 && c->olen - c->ooff + n <= c->ocap) {
            memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
            c->olen -= c->ooff;
            c->ooff = 0;
        } else {
            unsigned char *p = realloc(c->out, cap);
            if (p == NULL)
                return CR_ENOMEM;
            c->out = p;
            c->ocap = cap;
        }
    }
    memcpy(c->out + c->olen, d, n);
    c->olen += n;
    return 0;
}

static void wev_set(struct rp_conn *c, bool on)
{
    if (on && !c->wev_on)
        event_add(&c->wev, NULL);
    else if (!on && c->wev_on)
        event_del(&c->wev);
    c->wev_on = on;
}

void rp_conn_dirty(struct rp_conn *c)
{
    if (c->dirty || c->state == RP_CONN_CLOSED)
        return;
    c->dirty = true;
    TAILQ_INSERT_TAIL(&c->e->dirty, c, dlink);
}

/* Queued requests onto the wire while the protocol takes them. */
static int submit_queued(struct rp_conn *c)
{
    struct rp_req *r;
    int rc;

    while ((r = TAILQ_FIRST(&c->queue)) != NULL && (c->h2 || c->inflight == 0) && !c->draining) {
        TAILQ_REMOVE(&c->queue, r, link);
        c->queued--;
        r->state = RP_REQ_INFLIGHT;
        TAILQ_INSERT_TAIL(&c->flights, r, link);
        c->inflight++;
        rp_stats_sent(c->e->st, r->spec.tenant, r->intended_us, rp_engine_now(c->e));
        if ((rc = c->codec->submit(c, r)) != 0)
            return rc;
    }
    return 0;
}

void rp_conn_flush(struct rp_conn *c)
{
    int rc;

    if (c->state != RP_CONN_OPEN)
        return;
    if (c->broken) {
        rp_conn_close(c, RP_OUT_CONN_ERROR, false);
        return;
    }
    if (c->finish) {
        rp_conn_close(c, RP_OUT_CONN_ERROR, true);
        return;
    }
    if ((rc = submit_queued(c)) != 0)
        goto fail;
    for (;;) {
        if ((rc = c->codec->pump(c)) != 0)
            goto fail;
        if (c->olen == c->ooff)
            break;
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->out + c->ooff, (int)CR_MIN(c->olen - c->ooff, 1 << 20));
        if (n > 0) {
            c->ooff += (size_t)n;
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
            wev_set(c, err == SSL_ERROR_WANT_WRITE);
            return;
        }
        note(c, "write: %s", err == SSL_ERROR_SYSCALL ? strerror(errno) : tls_reason());
        rp_conn_close(c, RP_OUT_CONN_ERROR, false);
        return;
    }
    wev_set(c, false);
    return;
fail:
    note(c, "%s", rc == CR_ENOMEM ? "out of memory" : "protocol error");
    rp_conn_close(c, RP_OUT_CONN_ERROR, false);
}

/* ------------------------------------------------------------ handshake */

static void handshake_done(struct rp_conn *c)
{
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    int rc;

    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    c->h2 = alen == 2 && memcmp(alpn, "h2", 2) == 0;
    c->codec = c->h2 ? &rp_h2_codec : &rp_h1_codec;
    c->max_streams = c->h2 ? c->max_streams : 1;
    c->state = RP_CONN_OPEN;
    evtimer_del(&c->tmr);
    rp_engine_handshake_done(c);
    if ((rc = c->codec->start(c)) != 0) {
        note(c, "cannot start %s: %s", c->h2 ? "HTTP/2" : "HTTP/1.1",
             rc == CR_ENOMEM ? "out of memory" : "error");
        rp_conn_close(c, RP_OUT_CONN_ERROR, false);
        return;
    }
    rp_engine_conn_changed(c);
    rp_conn_flush(c);
    /* what came with the last handshake flight may already sit in OpenSSL */
    if (c->state == RP_CONN_OPEN && SSL_has_pending(c->ssl))
        event_active(&c->rev, EV_READ, 1);
}

static void do_handshake(struct rp_conn *c)
{
    int n, err;

    ERR_clear_error();
    n = SSL_do_handshake(c->ssl);
    if (n == 1) {
        wev_set(c, false);
        handshake_done(c);
        return;
    }
    err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        wev_set(c, err == SSL_ERROR_WANT_WRITE);
        return;
    }
    if (err == SSL_ERROR_SSL && SSL_get_verify_result(c->ssl) != X509_V_OK)
        note(c, "TLS handshake: certificate verification failed: %s",
             X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
    else
        note(c, "TLS handshake: %s",
             err == SSL_ERROR_SYSCALL ? (errno ? strerror(errno) : "connection closed")
                                      : tls_reason());
    rp_conn_close(c, RP_OUT_CONN_ERROR, false);
}

/* The TCP connect finished (writable): on to TLS, or fail. */
static void connected(struct rp_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr != 0) {
        note(c, "connect: %s", strerror(soerr));
        rp_conn_close(c, RP_OUT_CONN_ERROR, false);
        return;
    }
    c->state = RP_CONN_HANDSHAKE;
    do_handshake(c);
}

/* ------------------------------------------------------------ reading */

static void do_read(struct rp_conn *c)
{
    unsigned char buf[READ_BUF];
    int rc, i;

    for (i = 0; i < READS_PER_EVENT && c->state == RP_CONN_OPEN; i++) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            rp_engine_clock(c->e); /* answers end now */
            if ((rc = c->codec->feed(c, buf, (size_t)n)) != 0 || c->broken) {
                note(c, "%s", rc == CR_ENOMEM ? "out of memory" : "protocol error in the answer");
                rp_conn_close(c, RP_OUT_CONN_ERROR, false);
                return;
            }
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_READ)
            break;
        if (err == SSL_ERROR_WANT_WRITE) {
            wev_set(c, true);
            break;
        }
        if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0)) {
            c->codec->feed(c, NULL, 0); /* end of stream: may end an answer */
            if (c->inflight > 0)
                note(c, "the server closed the connection with requests in flight");
        } else {
            note(c, "read: %s", err == SSL_ERROR_SYSCALL ? strerror(errno) : tls_reason());
        }
        rp_conn_close(c, RP_OUT_CONN_ERROR, false);
        return;
    }
    /* Stopped to let others run: what OpenSSL has already read (read-ahead)
     * would wake nobody, so come back for it. */
    if (i == READS_PER_EVENT && c->state == RP_CONN_OPEN)
        event_active(&c->rev, EV_READ, 1);
    rp_conn_dirty(c);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_conn *c = arg;
    struct rp_engine *e = c->e;

    rp_engine_clock(e);
    if (c->state == RP_CONN_CONNECTING)
        connected(c);
    else if (c->state == RP_CONN_HANDSHAKE)
        do_handshake(c);
    else if (c->state == RP_CONN_OPEN)
        do_read(c);
    rp_engine_settle(e);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_conn *c = arg;
    struct rp_engine *e = c->e;

    rp_engine_clock(e);
    if (c->state == RP_CONN_CONNECTING) {
        connected(c);
    } else if (c->state == RP_CONN_HANDSHAKE) {
        do_handshake(c);
    } else if (c->state == RP_CONN_OPEN) {
        wev_set(c, false);
        rp_conn_flush(c);
        if (c->state == RP_CONN_OPEN)
            do_read(c); /* a read that wanted to write */
    }
    rp_engine_settle(e);
}

/* Connect/handshake timeout, or idleness once open. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_conn *c = arg;
    struct rp_engine *e = c->e;

    rp_engine_clock(e);
    if (c->state == RP_CONN_OPEN) {
        rp_conn_close(c, RP_OUT_CONN_ERROR, true);
    } else {
        note(c, "%s timed out", c->state == RP_CONN_CONNECTING ? "connect" : "TLS handshake");
        rp_conn_close(c, RP_OUT_TIMEOUT, false);
    }
    rp_engine_settle(e);
}

/* ------------------------------------------------------------ life cycle */

static int new_socket(struct rp_conn *c)
{
    const struct cr_addr *a = &c->e->p->target.addrs[c->target];
    int one = 1;

    c->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        note(c, "socket: %s", strerror(errno));
        return CR_EIO;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
        note(c, "connect: %s", strerror(errno));
        return CR_EIO;
    }
    return 0;
}

static int new_ssl(struct rp_conn *c, SSL_SESSION *resume)
{
    static const unsigned char alpn_h2[] = "\x02h2", alpn_h1[] = "\x08http/1.1";
    const struct rp_target *t = &c->e->p->target;

    c->ssl = SSL_new(c->e->ssl_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        return CR_ENOMEM;
    SSL_set_connect_state(c->ssl);
    if (t->sni != NULL && SSL_set_tlsext_host_name(c->ssl, t->sni) != 1)
        return CR_ETLS;
    if (!t->insecure) {
        if (t->sni != NULL && SSL_set1_host(c->ssl, t->sni) != 1)
            return CR_ETLS;
        if (t->sni == NULL &&
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->authority) != 1)
            return CR_ETLS;
    }
    if (c->h2 ? SSL_set_alpn_protos(c->ssl, alpn_h2, sizeof(alpn_h2) - 1)
              : SSL_set_alpn_protos(c->ssl, alpn_h1, sizeof(alpn_h1) - 1))
        return CR_ETLS;
    if (resume != NULL && SSL_set_session(c->ssl, resume) != 1)
        return CR_ETLS;
    return 0;
}

struct rp_conn *rp_conn_open(struct rp_engine *e, size_t tenant, bool h2, SSL_SESSION *resume,
                             int *err)
{
    struct rp_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        *err = CR_ENOMEM;
        return NULL;
    }
    TAILQ_INIT(&c->queue);
    TAILQ_INIT(&c->flights);
    c->e = e;
    c->tenant = tenant;
    c->h2 = h2;
    c->max_streams = 100; /* until the server's SETTINGS say otherwise */
    c->id = ++e->next_conn_id;
    c->target = rp_profile_pick(&e->p->target, c->id, e->p->seed);
    e->tcount[c->target].connections++;
    c->fd = -1;
    if ((*err = new_socket(c)) != 0 || (*err = new_ssl(c, resume)) != 0)
        goto fail;
    event_assign(&c->rev, e->base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
    event_assign(&c->wev, e->base, c->fd, EV_WRITE | EV_PERSIST, write_cb, c);
    evtimer_assign(&c->tmr, e->base, timer_cb, c);
    if (event_add(&c->rev, NULL) != 0) {
        *err = CR_ENOMEM;
        goto fail;
    }
    wev_set(c, true); /* writable = connected */
    struct timeval tv = {(time_t)(e->p->client.timeout_ms / 1000),
                         (suseconds_t)(e->p->client.timeout_ms % 1000 * 1000)};
    evtimer_add(&c->tmr, &tv);
    c->state = RP_CONN_CONNECTING;
    TAILQ_INSERT_TAIL(&e->conns, c, link);
    e->nconns++;
    e->peak_conns = CR_MAX(e->peak_conns, e->nconns);
    return c;
fail:
    if (*err == CR_EIO)
        e->tcount[c->target].conn_errors++; /* the caller counts the request as one */
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

int rp_conn_assign(struct rp_conn *c, struct rp_req *r)
{
    if (c->state == RP_CONN_CLOSED)
        return CR_ECLOSED;
    r->conn = c;
    r->state = RP_REQ_QUEUED;
    TAILQ_INSERT_TAIL(&c->queue, r, link);
    c->queued++;
    c->assigned++;
    rp_conn_dirty(c);
    return 0;
}

bool rp_conn_has_room(const struct rp_conn *c)
{
    if (c->state == RP_CONN_CLOSED || c->broken || c->draining || c->finish)
        return false;
    if (c->state == RP_CONN_OPEN && !c->h2)
        return c->inflight + c->queued == 0;
    if (!c->h2)
        return c->queued == 0;
    return c->inflight + c->queued < c->max_streams;
}

/* rp_req_failed takes each request off l. */
static void fail_list(struct rp_req_list *l, enum rp_outcome how)
{
    struct rp_req *r;

    while ((r = TAILQ_FIRST(l)) != NULL)
        rp_req_failed(r, how);
}

void rp_conn_close(struct rp_conn *c, enum rp_outcome how, bool graceful)
{
    struct rp_engine *e = c->e;

    if (c->state == RP_CONN_CLOSED)
        return;
    if (graceful && c->state == RP_CONN_OPEN) {
        /* best effort, never waits: GOAWAY, close_notify */
        c->codec->goodbye(c);
        if (c->olen > c->ooff)
            SSL_write(c->ssl, c->out + c->ooff, (int)(c->olen - c->ooff));
        SSL_shutdown(c->ssl);
    }
    c->state = RP_CONN_CLOSED;
    fail_list(&c->flights, how);
    fail_list(&c->queue, how);
    if (c->in_ready) {
        TAILQ_REMOVE(&e->ts[c->tenant].ready, c, rlink);
        c->in_ready = false;
    }
    if (c->dirty) {
        TAILQ_REMOVE(&e->dirty, c, dlink);
        c->dirty = false;
    }
    event_del(&c->rev);
    wev_set(c, false);
    evtimer_del(&c->tmr);
    close(c->fd);
    c->fd = -1;
    TAILQ_REMOVE(&e->conns, c, link);
    TAILQ_INSERT_TAIL(&e->dead, c, link);
    e->nconns--;
}

void rp_conn_free(struct rp_conn *c)
{
    if (c->codec != NULL)
        c->codec->free(c);
    SSL_free(c->ssl);
    free(c->out);
    free(c);
}
