/* conn.c - client connections: TLS handshake, reads into the front end,
 * queued writes, timers, deferred close. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h> /* SIOCOUTQ */
#include <linux/tcp.h>     /* struct tcp_info with tcpi_bytes_acked, which glibc's lacks */
#include <openssl/err.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "h1.h"
#include "h2.h"
#include "log.h"
#include "proxyproto.h"
#include "tls.h"
#include "tlsrec.h"

#define CR_READ_CHUNK 16384
/* Plaintext read per wakeup before other connections get their turn: a
 * budget in bytes, not in reads, because a read returns one TLS record and
 * a peer that writes small records would otherwise be served a few records
 * per loop iteration, each batch flushed on its own. */
#define CR_READ_BUDGET (8 * CR_READ_CHUNK)
/* Bytes a lingering connection reads and drops per wakeup (conn.h). */
#define CR_LINGER_BUDGET (4 * CR_READ_CHUNK)

static void conn_finish(struct cr_conn *c);
static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void do_flush(void *arg);
static void do_reap(void *arg);
static void linger_start(struct cr_conn *c);
static void linger_read(struct cr_conn *c);

static const char *const state_names[] = {"hello",  "handshake", "open", "closing",
                                          "linger", "closed",    "?"};

/* The one place a state changes; transitions only go forward. */
static void set_state(struct cr_conn *c, enum cr_conn_state s)
{
    if (s < c->state || s > CR_CONN_CLOSED) {
        cr_log_error("conn %llu: refused transition %s -> %s", (unsigned long long)c->id,
                     state_names[c->state], state_names[s]);
        return;
    }
    c->state = s;
}

static void format_peer(struct cr_conn *c, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(c->client, sizeof(c->client), "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(c->client, sizeof(c->client), "[%s]:%u", ip, port);
    }
    snprintf(c->client_ip, sizeof(c->client_ip), "%s", ip);
}

/* The worker's counters for c's listener in shared memory. */
static struct cr_shm_listener_stats *lst(const struct cr_conn *c)
{
    size_t i = (size_t)(c->lcfg - c->w->cfg->listeners);
    return &c->w->lstats[i % CR_SHM_MAX_LISTENERS];
}

/* Connections a proxy_protocol listener refused: one summary line at most
 * every 10 s (a peer can cause them at will), with the latest reason. */
static void proxy_refused(struct cr_worker *w, const char *client, const char *why)
{
    static uint64_t last_us, count;
    uint64_t now = cr_now_us();
    atomic_fetch_add(&w->stats->proxy_refused, 1);
    count++;
    if (last_us && now - last_us < 10000000u)
        return;
    cr_log_warn("PROXY protocol: %llu connection(s) refused%s; latest from %s: %s",
                (unsigned long long)count, last_us ? " in the last 10 s" : "", client, why);
    last_us = now;
    count = 0;
}

void cr_conn_accept(struct cr_worker *w, int fd, const struct sockaddr *sa, socklen_t salen,
                    struct cr_listen_slot *slot, SSL_CTX *tls)
{
    const struct cr_cfg_listener *lcfg = &w->cfg->listeners[slot->index];
    if (lcfg->proxy_protocol && !cr_pp_cidr_match(lcfg->proxy_from, lcfg->nproxy_from, sa)) {
        struct cr_conn tmp = {.id = 0};
        format_peer(&tmp, sa);
        proxy_refused(w, tmp.client, "not in proxy_from");
        close(fd);
        return;
    }
    struct cr_conn *c = calloc(1, sizeof(*c));
    if (!c)
        goto fail;
    if (lcfg->proxy_protocol && !(c->pp_buf = malloc(CR_PP_MAX)))
        goto fail_conn;
    c->w = w;
    c->fd = fd;
    c->lcfg = lcfg;
    c->slot = slot;
    c->id = ++w->next_conn_id;
    format_peer(c, sa);
    c->ssl = SSL_new(tls);
    if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)
        goto fail_conn;
    SSL_set_accept_state(c->ssl);
    if (lcfg->tls.handoff)
        (void)cr_tlsrec_watch(c->ssl, &c->rec); /* without it: OpenSSL all along */
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE, on_write, c);
    c->tmr = evtimer_new(w->base, on_timer, c);
    c->out = evbuffer_new();
    if (!c->rev || !c->wev || !c->tmr || !c->out)
        goto fail_conn;
    /* a handshake waits behind open connections until it is done */
    event_priority_set(c->rev, CR_EVPRIO_NEW);
    event_priority_set(c->wev, CR_EVPRIO_NEW);
    if (event_add(c->rev, NULL) < 0)
        goto fail_conn;
    c->flush.cb = do_flush;
    c->flush.arg = c;
    c->flush.late = true; /* answers that arrive together leave together */
    c->reap.cb = do_reap;
    c->reap.arg = c;
    /* HELLO: not a handshake until its first byte (hello_arrived); the
     * PROXY header first, within handshake_timeout */
    cr_conn_set_timer(c, c->pp_buf ? lcfg->tls.handshake_timeout_ms
                                   : lcfg->tls.client_hello_timeout_ms);
    LIST_INSERT_HEAD(&w->conns, c, link);
    w->nconns++;
    atomic_fetch_add(&w->stats->conns_accepted, 1);
    atomic_fetch_add(&w->stats->conns_open, 1);
    atomic_fetch_add_explicit(&lst(c)->conns_accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&lst(c)->conns_open, 1, memory_order_relaxed);
    cr_worker_conn_added(w);
    return;
fail_conn:
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->tmr)
        event_free(c->tmr);
    if (c->out)
        evbuffer_free(c->out);
    SSL_free(c->ssl);
    cr_tlsrec_free(c->rec);
    free(c->pp_buf);
    free(c);
fail:
    cr_log_warn("cannot accept a connection: out of memory");
    close(fd);
}

/* ------------------------------------------------------------ handshake */

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What went wrong, from OpenSSL's error queue. */
static enum cr_hs_fail classify(struct cr_conn *c, int err)
{
    unsigned long e = ERR_peek_last_error();
    int r = ERR_GET_REASON(e);
    if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN || !e)
        return CR_HSF_EOF;
    switch (r) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING: /* OpenSSL 3's word for a mid-handshake EOF */
        return CR_HSF_EOF;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_UNKNOWN_PROTOCOL:
        return CR_HSF_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
        return CR_HSF_CIPHER;
    case SSL_R_WRONG_VERSION_NUMBER: /* a record header that is not TLS at all */
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
        return CR_HSF_NOT_TLS;
    }
    if (r >= SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256) /* an alert from the client */
        return cr_tls_sni_unknown(c->ssl) ? CR_HSF_SNI : CR_HSF_ALERT;
    return CR_HSF_OTHER;
}

/* One summary line at most every 10 s, never one line per failure: a
 * flood of broken handshakes must not become a flood of log lines. */
static void count_failure(struct cr_conn *c, enum cr_hs_fail why, const char *detail)
{
    static uint64_t last_us, counts[CR_HSF_MAX], total;
    uint64_t now = cr_now_us();
    atomic_fetch_add(&c->w->stats->handshakes_failed, 1);
    atomic_fetch_add(&c->w->stats->hs_fail[why], 1);
    atomic_fetch_add_explicit(&lst(c)->hs_fail[why], 1, memory_order_relaxed);
    counts[why]++;
    total++;
    if (now - last_us < 10000000u && last_us)
        return;
    char by[256];
    size_t n = 0;
    by[0] = '\0';
    for (int i = 0; i < CR_HSF_MAX; i++) {
        if (counts[i] && n < sizeof(by))
            n += (size_t)snprintf(by + n, sizeof(by) - n, "%s%s %llu", n ? ", " : "",
                                  cr_hs_fail_names[i], (unsigned long long)counts[i]);
        counts[i] = 0;
    }
    cr_log_info("%llu TLS handshake(s) failed%s (%s); latest from %s: %s",
                (unsigned long long)total, last_us ? " in the last 10 s" : "", by, c->client,
                detail);
    last_us = now;
    total = 0;
}

static void handshake_failed(struct cr_conn *c, int err)
{
    char buf[256];
    enum cr_hs_fail why = classify(c, err);
    const char *detail = err == SSL_ERROR_SSL ? cr_tls_errors(buf, sizeof(buf)) : "closed";
    count_failure(c, why, detail);
    ERR_clear_error();
    cr_conn_close(c, false);
}

static void handshake(struct cr_conn *c)
{
    ERR_clear_error();
    uint64_t t0 = thread_cpu_ns();
    int rc = SSL_do_handshake(c->ssl);
    c->hs_cpu_ns += thread_cpu_ns() - t0;
    if (rc != 1) {
        int err = SSL_get_error(c->ssl, rc);
        if (err == SSL_ERROR_WANT_READ)
            return;
        if (err == SSL_ERROR_WANT_WRITE) {
            event_add(c->wev, NULL);
            return;
        }
        handshake_failed(c, err);
        return;
    }
    set_state(c, CR_CONN_OPEN);
    cr_worker_handshake(c->slot, -1);
    /* an established connection outranks new handshakes from now on (also
     * when the handshake ended from a flush or a write while its read
     * event waits to run in this pass) */
    if (cr_worker_set_priority(c->rev, CR_EVPRIO_IO) < 0 ||
        cr_worker_set_priority(c->wev, CR_EVPRIO_IO) < 0) {
        cr_conn_close(c, false);
        return;
    }
    bool resumed = SSL_session_reused(c->ssl);
    struct cr_shm_worker_stats *st = c->w->stats;
    atomic_fetch_add(resumed ? &st->handshakes_resumed : &st->handshakes_full, 1);
    atomic_fetch_add(resumed ? &st->hs_cpu_us_resumed : &st->hs_cpu_us_full, c->hs_cpu_ns / 1000);
    struct cr_shm_listener_stats *ls = lst(c);
    atomic_fetch_add_explicit(resumed ? &ls->handshakes_resumed : &ls->handshakes_full, 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(resumed ? &ls->hs_cpu_us_resumed : &ls->hs_cpu_us_full,
                              c->hs_cpu_ns / 1000, memory_order_relaxed);
    cr_conn_set_timer(c, 0);
    const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
    if (sni && !(c->sni = strdup(sni))) {
        cr_conn_close(c, false);
        return;
    }
    int rc2 = cr_tls_alpn(c->ssl) == CR_ALPN_H2 ? cr_h2_attach(c, cr_request_submit)
                                                : cr_h1_attach(c, cr_request_submit);
    if (rc2 < 0) {
        cr_conn_close(c, false);
        return;
    }
    if (c->w->draining && c->proto->on_drain)
        c->proto->on_drain(c);
}

/* ------------------------------------------------------------ before the handshake */

/* The balancer's id of the connection, printable: as it is when it is
 * visible ASCII, else in hex. */
static char *printable_id(const uint8_t *id, size_t len)
{
    bool plain = true;
    for (size_t i = 0; i < len; i++)
        plain = plain && id[i] > 0x20 && id[i] < 0x7f;
    char *s = malloc(plain ? len + 1 : 2 * len + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (plain)
            s[i] = (char)id[i];
        else
            snprintf(s + 2 * i, 3, "%02x", id[i]);
    }
    s[plain ? len : 2 * len] = '\0';
    return s;
}

static void proxy_fail(struct cr_conn *c, const char *why)
{
    proxy_refused(c->w, c->client, why);
    cr_conn_close(c, false);
}

/* Reads the PROXY header: peeks, lets the parser say how many of the bytes
 * are the header's, and takes only those, so the ClientHello after it stays
 * in the socket for OpenSSL. Every step takes what it peeked (a prefix of
 * a header is all header), so a slow balancer does not make the
 * level-triggered event spin. Done: pp_buf is freed. */
static void proxy_read(struct cr_conn *c)
{
    struct cr_pp_result pp;
    ssize_t n = recv(c->fd, c->pp_buf + c->pp_have, CR_PP_MAX - c->pp_have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n == 0 && c->pp_have == 0) { /* a TCP health check, a port probe */
        cr_conn_close(c, false);
        return;
    }
    if (n <= 0) {
        proxy_fail(c, n == 0 ? "closed before its PROXY header ended" : strerror(errno));
        return;
    }
    int rc = cr_pp_parse(c->pp_buf, c->pp_have + (size_t)n, &pp);
    if (rc == CR_EPROTO) {
        proxy_fail(c, pp.error);
        return;
    }
    size_t take = rc > 0 ? (size_t)rc - c->pp_have : (size_t)n;
    if (recv(c->fd, c->pp_buf + c->pp_have, take, 0) != (ssize_t)take) {
        proxy_fail(c, "the header could not be read");
        return;
    }
    c->pp_have += take;
    if (rc < 0)
        return; /* CR_EAGAIN: the rest is still on its way */
    if (!pp.local)
        format_peer(c, (const struct sockaddr *)&pp.src);
    c->pp_local = pp.local;
    if (pp.unique_id_len && !(c->proxy_id = printable_id(pp.unique_id, pp.unique_id_len))) {
        cr_conn_close(c, false);
        return;
    }
    free(c->pp_buf);
    c->pp_buf = NULL;
    cr_conn_set_timer(c, c->lcfg->tls.client_hello_timeout_ms);
}

/* The first bytes of a ClientHello arrived, or the client left: from now on
 * the connection is a handshake, counted against max_handshakes, or waits
 * for a slot, unread; either for at most handshake_timeout. Only peeks: the
 * bytes are OpenSSL's to read. */
static void hello_arrived(struct cr_conn *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (!(n == 0 && c->pp_local)) /* else the balancer's health check */
            count_failure(c, CR_HSF_EOF, "closed before its ClientHello");
        cr_conn_close(c, false);
        return;
    }
    c->hs_start_us = cr_now_us();
    cr_conn_set_timer(c, c->lcfg->tls.handshake_timeout_ms);
    if (cr_worker_handshake_begin(c->slot, c) == CR_EAGAIN) {
        event_del(c->rev); /* until cr_conn_handshake_go */
        return;
    }
    set_state(c, CR_CONN_HANDSHAKE);
}

void cr_conn_handshake_go(struct cr_conn *c)
{
    if (c->state != CR_CONN_HELLO)
        return;
    set_state(c, CR_CONN_HANDSHAKE);
    /* the wait was ours, not the client's: its handshake gets the full time */
    cr_conn_set_timer(c, c->lcfg->tls.handshake_timeout_ms);
    (void)event_add(c->rev, NULL);
    event_active(c->rev, EV_READ, 0); /* the ClientHello is already there */
}

/* ------------------------------------------------------------ TLS I/O */

/* Moves the records to tlsrec when the handshake is over and OpenSSL holds
 * nothing unread or unsent; gives up for good when it never can. */
static void try_handoff(struct cr_conn *c)
{
    if (!c->rec || !c->ssl || c->state != CR_CONN_OPEN || c->write_blocked ||
        c->want_read_on_write || evbuffer_get_length(c->out) > 0)
        return;
    int rc = cr_tlsrec_takeover(c->rec, c->ssl);
    if (rc == CR_EAGAIN)
        return;
    if (rc < 0) {
        cr_tlsrec_free(c->rec);
        c->rec = NULL;
        return;
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    atomic_fetch_add(&c->w->stats->tls_handoffs, 1);
}

static enum cr_tls_io tls_read(struct cr_conn *c, uint8_t *buf, size_t len, size_t *n)
{
    if (c->ssl)
        return cr_tls_read(c->ssl, buf, len, n);
    enum cr_tls_io rc = cr_tlsrec_read(c->rec, c->fd, buf, len, n);
    if (rc == CR_TLS_ERROR)
        cr_log_debug("conn %llu from %s: TLS: %s", (unsigned long long)c->id, c->client,
                     cr_tlsrec_error(c->rec));
    if (cr_tlsrec_want_write(c->rec)) /* a KeyUpdate to answer */
        cr_conn_want_flush(c);
    return rc;
}

static bool tls_pending(const struct cr_conn *c)
{
    return c->ssl ? SSL_has_pending(c->ssl) : cr_tlsrec_pending(c->rec);
}

bool cr_conn_input_waiting(const struct cr_conn *c)
{
    char b;
    if (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
        return true;
    return c->ssl ? SSL_has_pending(c->ssl) : c->rec && cr_tlsrec_buffered(c->rec);
}

/* What the client's TCP has acknowledged of the output (*acked, bytes)
 * and whether all of it is (*drained: nothing unsent or unacked in the
 * kernel). False where the socket tells neither (not TCP: the unit tests'
 * connections without sockets). */
static bool peer_acked(const struct cr_conn *c, uint64_t *acked, bool *drained)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (c->fd < 0 || getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_notsent_bytes) + sizeof(ti.tcpi_notsent_bytes))
        return false;
    *acked = ti.tcpi_bytes_acked;
    *drained = ti.tcpi_unacked == 0 && ti.tcpi_notsent_bytes == 0;
    return true;
}

bool cr_conn_acked(const struct cr_conn *c, uint64_t *acked)
{
    bool drained;
    return peer_acked(c, acked, &drained);
}

/* What the client's TCP must acknowledge from now for the output to count
 * as moving: CR_CONN_OUT_PROGRESS, or all the kernel holds for it (sent or
 * not, SIOCOUTQ) when that is less - a client with little to read reads it
 * all. */
static uint64_t progress_due(const struct cr_conn *c)
{
    int queued = 0;
    if (ioctl(c->fd, SIOCOUTQ, &queued) != 0 || queued <= 0)
        return 1;
    uint64_t due = c->out_paced ? cr_conn_send_due(&c->w->cfg->http) : CR_CONN_OUT_PROGRESS;
    return CR_MIN((uint64_t)queued, due);
}

uint64_t cr_conn_send_due(const struct cr_cfg_http *hc)
{
    return CR_MAX(hc->send_min_rate * hc->send_timeout_ms / 1000, (uint64_t)1);
}

void cr_conn_pace_output(struct cr_conn *c)
{
    c->out_paced = true;
}

/* The clock of a client that does not read (out_stuck_us, read by
 * cr_conn_write_stuck_ms), after a write (blocked: it left output the
 * socket would not take; moved: the socket took some) or a look at the
 * socket (moved false). It starts when a write blocks and restarts only
 * when the client's TCP has acknowledged what progress_due asked at its
 * start, or stops then, or when everything is acknowledged, if nothing
 * waits. Not when the socket takes bytes: the kernel's send buffer grows
 * (autotuning) and keeps taking a little for seconds from a client that
 * reads nothing. Where TCP says nothing, any byte the socket takes is
 * progress. System calls only while the clock runs or a write blocks. */
static void out_watch(struct cr_conn *c, bool blocked, bool moved)
{
    if (!c->out_stuck_us && !blocked)
        return;
    uint64_t acked = 0;
    bool drained = false, tcp = peer_acked(c, &acked, &drained);
    if (c->out_stuck_us) {
        bool idle = !blocked && evbuffer_get_length(c->out) == 0;
        if (tcp ? !(acked - c->out_acked >= c->out_due || (idle && drained)) : !moved)
            return;
        c->out_stuck_us = 0;
        if (!blocked)
            return;
    }
    c->out_stuck_us = cr_now_us();
    c->out_acked = acked;
    c->out_due = tcp ? progress_due(c) : 0;
}

static enum cr_tls_io tls_write_out(struct cr_conn *c)
{
    size_t before = evbuffer_get_length(c->out);
    enum cr_tls_io rc =
        c->ssl ? cr_tls_write_out(c->ssl, c->out) : cr_tlsrec_write_out(c->rec, c->fd, c->out);
    c->write_blocked = rc != CR_TLS_OK;
    out_watch(c, rc == CR_TLS_WANT_WRITE,
              rc == CR_TLS_OK || evbuffer_get_length(c->out) < before);
    return rc;
}

/* One close_notify; never waits for the peer's. */
static void tls_shutdown(struct cr_conn *c)
{
    if (c->ssl) {
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
    } else {
        cr_tlsrec_close_notify(c->rec, c->fd);
    }
}

/* ------------------------------------------------------------ reading */

static void read_some(struct cr_conn *c)
{
    uint8_t buf[CR_READ_CHUNK];
    for (size_t total = 0; total < CR_READ_BUDGET;) {
        if (c->state != CR_CONN_OPEN || c->read_paused)
            return;
        size_t n;
        switch (tls_read(c, buf, sizeof(buf), &n)) {
        case CR_TLS_OK:
            total += n;
            if (c->proto->on_data(c, buf, n) < 0) {
                cr_conn_close(c, true);
                return;
            }
            /* OpenSSL read all the socket had: no read(2) just for EAGAIN;
             * the level-triggered event says when more comes */
            if (!tls_pending(c))
                goto quiet;
            continue;
        case CR_TLS_WANT_READ:
            /* tlsrec yielded after records without data (tlsrec.h) with
             * whole records still buffered, which the socket will not
             * announce: come back on the loop's next turn */
            if (!c->ssl && tls_pending(c))
                event_active(c->rev, EV_READ, 0);
            goto quiet;
        case CR_TLS_WANT_WRITE:
            event_add(c->wev, NULL);
            return;
        default: /* close_notify, EOF or a TLS error (its alert already sent) */
            cr_conn_close(c, false);
            return;
        }
    }
    /* more may be buffered inside OpenSSL, where the socket will not say so */
    if (tls_pending(c))
        event_active(c->rev, EV_READ, 0);
    return;
quiet:
    try_handoff(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct cr_conn *c = arg;
    if (c->state == CR_CONN_LINGER) {
        linger_read(c);
        return;
    }
    if (c->want_read_on_write) {
        c->want_read_on_write = false;
        do_flush(c);
    }
    if (c->state == CR_CONN_HELLO && c->pp_buf)
        proxy_read(c);
    if (c->state == CR_CONN_HELLO && !c->pp_buf)
        hello_arrived(c);
    if (c->state == CR_CONN_HANDSHAKE)
        handshake(c);
    if (c->state == CR_CONN_OPEN) {
        read_some(c);
        /* answers made while reading (a refusal, a cached error) leave now,
         * not after every other connection's turn in this loop iteration */
        if (c->flush.queued && c->state == CR_CONN_OPEN) {
            cr_worker_undefer(c->w, &c->flush);
            do_flush(c);
        }
    }
}

void cr_conn_pause_read(struct cr_conn *c, bool pause)
{
    if (c->read_paused == pause || c->state >= CR_CONN_CLOSING)
        return;
    c->read_paused = pause;
    if (pause) {
        event_del(c->rev);
    } else {
        event_add(c->rev, NULL);
        event_active(c->rev, EV_READ, 0); /* OpenSSL may hold decrypted bytes */
    }
}

/* ------------------------------------------------------------ writing */

int cr_conn_write(struct cr_conn *c, const void *data, size_t len)
{
    if (c->state >= CR_CONN_LINGER)
        return CR_ECLOSED;
    if (evbuffer_add(c->out, data, len) < 0)
        return CR_ENOMEM;
    cr_conn_want_flush(c);
    return 0;
}

void cr_conn_want_flush(struct cr_conn *c)
{
    if (c->state < CR_CONN_LINGER)
        cr_worker_defer(c->w, &c->flush);
}

size_t cr_conn_pending(const struct cr_conn *c)
{
    return evbuffer_get_length(c->out);
}

/* out_stuck_us as it stands, in ms */
static uint64_t stuck_ms(const struct cr_conn *c)
{
    if (!c->out_stuck_us)
        return 0;
    uint64_t now = cr_now_us();
    return now > c->out_stuck_us ? (now - c->out_stuck_us) / 1000 : 0;
}

uint64_t cr_conn_write_stuck_ms(struct cr_conn *c)
{
    if (!c->out_stuck_us)
        return 0; /* no clock read, no system call: asked at every new HTTP/2 request */
    out_watch(c, c->write_blocked, false); /* acknowledged since the last write? */
    return stuck_ms(c);
}

/* How long a client whose socket takes no more may keep corral waiting
 * from when its output last counted as moving (out_watch): body_timeout,
 * or send_timeout if paced and shorter. */
static uint64_t write_wait_ms(const struct cr_conn *c)
{
    const struct cr_cfg_http *hc = &c->w->cfg->http;
    return c->out_paced ? CR_MIN(hc->body_timeout_ms, hc->send_timeout_ms) : hc->body_timeout_ms;
}

/* What is left of write_wait_ms (0: it has run out) */
static uint64_t write_wait_left_ms(const struct cr_conn *c)
{
    uint64_t ms = write_wait_ms(c), stuck = stuck_ms(c);
    return stuck < ms ? ms - stuck : 0;
}

/* Waits for the socket to take more, for at most ms (at least 1) */
static void arm_write_wait(struct cr_conn *c, uint64_t ms)
{
    ms = CR_MAX(ms, (uint64_t)1);
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    event_add(c->wev, &tv);
}

/* Writes what is queued; asks the front end for more while there is room. */
static void do_flush(void *arg)
{
    struct cr_conn *c = arg;
    if (c->state == CR_CONN_HELLO)
        return;
    if (c->state == CR_CONN_HANDSHAKE) {
        handshake(c);
        return;
    }
    for (int rounds = 0; c->state == CR_CONN_OPEN || c->state == CR_CONN_CLOSING; rounds++) {
        if (evbuffer_get_length(c->out) == 0 && c->proto && c->proto->on_writable &&
            c->state == CR_CONN_OPEN && rounds < 64)
            c->proto->on_writable(c);
        if (evbuffer_get_length(c->out) == 0 &&
            !(c->rec && !c->ssl && cr_tlsrec_want_write(c->rec)))
            break;
        enum cr_tls_io rc = tls_write_out(c);
        if (rc == CR_TLS_OK)
            continue;
        if (rc == CR_TLS_WANT_WRITE) {
            /* a client that stops reading is dropped body_timeout after its
             * socket last took a byte (paced: send_timeout after it last
             * took its due, if that is sooner): counted from then, not
             * from this write, or every frame it sends would put it off
             * again */
            arm_write_wait(c, write_wait_left_ms(c));
            return;
        }
        if (rc == CR_TLS_WANT_READ) {
            c->want_read_on_write = true;
            return;
        }
        conn_finish(c);
        return;
    }
    if (c->state == CR_CONN_CLOSING && evbuffer_get_length(c->out) == 0) {
        if (c->linger) {
            linger_start(c);
            return;
        }
        tls_shutdown(c);
        conn_finish(c);
        return;
    }
    try_handoff(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct cr_conn *c = arg;
    if (what & EV_TIMEOUT) {
        /* the socket takes no more until a third of the kernel's send
         * buffer (megabytes, autotuned) drains, and a client reading
         * steadily at a modest rate takes longer than that: what its TCP
         * acknowledged since the clock started decides, not the wait */
        out_watch(c, c->write_blocked, false);
        uint64_t left = write_wait_left_ms(c);
        if (left > 0) {
            arm_write_wait(c, left);
            return;
        }
        cr_log_debug("conn %llu from %s: not reading its responses: closed",
                     (unsigned long long)c->id, c->client);
        c->close_why = "client not reading";
        conn_finish(c);
        return;
    }
    if (c->state == CR_CONN_HANDSHAKE) {
        handshake(c);
        if (c->state == CR_CONN_OPEN)
            read_some(c);
        return;
    }
    if (c->want_read_on_write)
        return;
    out_watch(c, c->write_blocked, false); /* writable: the client read some, or the
                                            * kernel's send buffer grew */
    do_flush(c);
    /* a read that wanted the socket writable (renegotiation-like cases) */
    if (c->state == CR_CONN_OPEN && !c->read_paused)
        event_active(c->rev, EV_READ, 0);
}

/* ------------------------------------------------------------ timers, close */

static void arm_timer(struct cr_conn *c, uint64_t ms)
{
    if (ms == 0) {
        evtimer_del(c->tmr);
        return;
    }
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->tmr, &tv);
}

void cr_conn_set_timer(struct cr_conn *c, uint64_t ms)
{
    if (c->state >= CR_CONN_LINGER)
        return;
    arm_timer(c, ms);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cr_conn *c = arg;
    if (c->state == CR_CONN_LINGER) {
        cr_log_debug("conn %llu from %s: lingering close: %s", (unsigned long long)c->id, c->client,
                     cr_now_us() >= c->linger_end_us ? "still sending after lingering_time"
                                                     : "silent for lingering_timeout");
        conn_finish(c);
        return;
    }
    if (c->state == CR_CONN_HELLO && c->pp_buf) {
        proxy_fail(c, "no whole PROXY header within handshake_timeout");
        return;
    }
    if (c->state == CR_CONN_HELLO) {
        count_failure(c, CR_HSF_TIMEOUT,
                      c->hs_waiting ? "waited for a handshake slot (max_handshakes) past "
                                      "handshake_timeout"
                                    : "no ClientHello within client_hello_timeout");
        cr_conn_close(c, false);
        return;
    }
    if (c->state == CR_CONN_HANDSHAKE) {
        count_failure(c, CR_HSF_TIMEOUT, "no complete handshake within handshake_timeout");
        cr_conn_close(c, false);
        return;
    }
    if (c->proto && c->proto->on_timer)
        c->proto->on_timer(c);
}

void cr_conn_close(struct cr_conn *c, bool graceful)
{
    if (c->state >= CR_CONN_CLOSED)
        return;
    if (graceful && (c->state == CR_CONN_CLOSING || c->state == CR_CONN_LINGER))
        return; /* on its way already */
    if (graceful && c->state == CR_CONN_OPEN && evbuffer_get_length(c->out) > 0) {
        set_state(c, CR_CONN_CLOSING);
        event_del(c->rev);
        c->read_paused = true;
        cr_conn_want_flush(c);
        return;
    }
    if (graceful && c->state == CR_CONN_OPEN && c->linger) {
        linger_start(c);
        return;
    }
    if (graceful && c->state == CR_CONN_OPEN)
        tls_shutdown(c);
    conn_finish(c);
}

void cr_conn_close_linger(struct cr_conn *c)
{
    if (c->state == CR_CONN_OPEN && c->w->cfg->http.lingering_time_ms > 0)
        c->linger = true;
    cr_conn_close(c, true);
}

/* ------------------------------------------------------------ lingering close */

/* Ends the lingering close once lingering_time is spent, else (re)arms the
 * timer for lingering_timeout, or what is left of lingering_time. */
static void linger_arm(struct cr_conn *c)
{
    uint64_t now = cr_now_us();
    if (now >= c->linger_end_us) {
        conn_finish(c);
        return;
    }
    uint64_t left_ms = (c->linger_end_us - now + 999) / 1000;
    arm_timer(c, CR_MIN(left_ms, c->w->cfg->http.lingering_timeout_ms));
}

/* The last answer is written (the output is empty): close_notify and a FIN
 * go out, and from now on the client's bytes are read and dropped (conn.h,
 * LINGER). */
static void linger_start(struct cr_conn *c)
{
    tls_shutdown(c);
    if (shutdown(c->fd, SHUT_WR) < 0) { /* reset already: nothing to wait for */
        conn_finish(c);
        return;
    }
    set_state(c, CR_CONN_LINGER);
    cr_worker_linger(c->w, +1);
    c->linger_end_us = cr_now_us() + c->w->cfg->http.lingering_time_ms * 1000;
    c->read_paused = false;
    c->want_read_on_write = false;
    event_del(c->wev);
    cr_worker_undefer(c->w, &c->flush);
    /* the least urgent work of the worker: below every open connection */
    if (cr_worker_set_priority(c->rev, CR_EVPRIO_NEW) < 0 || event_add(c->rev, NULL) < 0) {
        conn_finish(c);
        return;
    }
    linger_arm(c);
}

/* Reads and drops at most CR_LINGER_BUDGET bytes; the client's close (EOF,
 * or a reset) ends the lingering close, bytes re-arm lingering_timeout. */
static void linger_read(struct cr_conn *c)
{
    char buf[CR_READ_CHUNK];
    size_t total = 0;
    while (total < CR_LINGER_BUDGET) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        conn_finish(c);
        return;
    }
    if (total > 0) /* more may wait: the level-triggered event comes back */
        linger_arm(c);
}

/* Stops all I/O now; the memory goes in a deferred event. */
static void conn_finish(struct cr_conn *c)
{
    if (c->state == CR_CONN_CLOSED)
        return;
    if (c->state == CR_CONN_HELLO)
        cr_worker_handshake_cancel(c->slot, c);
    if (c->state == CR_CONN_HANDSHAKE)
        cr_worker_handshake(c->slot, -1);
    if (c->state == CR_CONN_LINGER)
        cr_worker_linger(c->w, -1);
    set_state(c, CR_CONN_CLOSED);
    event_del(c->rev);
    event_del(c->wev);
    evtimer_del(c->tmr);
    cr_worker_undefer(c->w, &c->flush);
    /* the front end may be on the stack below us (a parser callback):
     * its state goes with the rest, from the deferred reap */
    cr_worker_defer(c->w, &c->reap);
}

static void do_reap(void *arg)
{
    struct cr_conn *c = arg;
    struct cr_worker *w = c->w;
    if (c->proto && c->proto->on_free)
        c->proto->on_free(c);
    c->proto = NULL;
    LIST_REMOVE(c, link);
    w->nconns--;
    atomic_fetch_sub(&w->stats->conns_open, 1);
    atomic_fetch_sub_explicit(&lst(c)->conns_open, 1, memory_order_relaxed);
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->tmr);
    evbuffer_free(c->out);
    SSL_free(c->ssl);
    cr_tlsrec_free(c->rec);
    free(c->sni);
    free(c->proxy_id);
    free(c->pp_buf);
    close(c->fd);
    free(c);
    cr_worker_conn_gone(w);
}

const char *cr_conn_sni(const struct cr_conn *c)
{
    return c->sni;
}
