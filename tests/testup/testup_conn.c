/* testup_conn.c - one client connection: TLS handshake, ALPN, the chosen
 * front end, backpressure and a deferred close. */
#include "testup_conn.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "testup.h"
#include "testup_h1.h"
#include "testup_h2.h"

#define TU_HANDSHAKE_TIMEOUT_S 10

enum tu_conn_state {
    TU_CONN_HANDSHAKE = 0,
    TU_CONN_OPEN,
    TU_CONN_DRAINING,
    TU_CONN_CLOSED,
};

struct tu_conn {
    struct tu_server *srv;
    struct tu_conn *prev, *next; /* srv->conns */
    enum tu_conn_state state;
    struct bufferevent *bev;
    struct event *reap; /* frees the connection outside its callbacks */
    const struct tu_proto *proto;
    void *proto_state;
    uint64_t seq;
    uint64_t nrequests;
    unsigned reading : 1;  /* EV_READ enabled on bev */
    unsigned graceful : 1; /* send close_notify before closing */
    char peer[64];
};

static const char *state_name(enum tu_conn_state s)
{
    static const char *const names[] = {"HANDSHAKE", "OPEN", "DRAINING", "CLOSED"};

    return names[s];
}

/* The one place the state changes; refuses transitions the life cycle in
 * testup_conn.h does not have. Returns 0 or CR_EINVAL. */
static int set_state(struct tu_conn *conn, enum tu_conn_state to)
{
    enum tu_conn_state from = conn->state;
    int ok = to == TU_CONN_CLOSED ? from != TU_CONN_CLOSED
                                  : (from == TU_CONN_HANDSHAKE && to == TU_CONN_OPEN) ||
                                        (from == TU_CONN_OPEN && to == TU_CONN_DRAINING);

    if (!ok) {
        tu_log(conn->srv, "conn %llu: bad transition %s -> %s", (unsigned long long)conn->seq,
               state_name(from), state_name(to));
        return CR_EINVAL;
    }
    conn->state = to;
    return 0;
}

struct tu_server *tu_conn_server(const struct tu_conn *conn)
{
    return conn->srv;
}

uint64_t tu_conn_seq(const struct tu_conn *conn)
{
    return conn->seq;
}

uint64_t tu_conn_next_request(struct tu_conn *conn)
{
    return ++conn->nrequests;
}

struct evbuffer *tu_conn_input(struct tu_conn *conn)
{
    return bufferevent_get_input(conn->bev);
}

struct evbuffer *tu_conn_output(struct tu_conn *conn)
{
    return bufferevent_get_output(conn->bev);
}

int tu_conn_output_full(struct tu_conn *conn)
{
    return evbuffer_get_length(tu_conn_output(conn)) >= TU_OUT_HIGH;
}

int tu_conn_is_open(const struct tu_conn *conn)
{
    return conn->state == TU_CONN_OPEN;
}

static void set_reading(struct tu_conn *conn, int on)
{
    if (on == (int)conn->reading)
        return;
    conn->reading = (unsigned)on;
    if (on)
        bufferevent_enable(conn->bev, EV_READ);
    else
        bufferevent_disable(conn->bev, EV_READ);
}

void tu_conn_update(struct tu_conn *conn)
{
    if (conn->state != TU_CONN_OPEN) {
        set_reading(conn, 0);
        return;
    }
    set_reading(conn, !tu_conn_output_full(conn) && conn->proto->want_read(conn->proto_state));
}

void tu_conn_close(struct tu_conn *conn, const char *why)
{
    if (conn->state == TU_CONN_CLOSED)
        return;
    set_state(conn, TU_CONN_CLOSED);
    bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
    tu_log(conn->srv, "conn %llu %s: closed (%s)", (unsigned long long)conn->seq, conn->peer, why);
    event_active(conn->reap, EV_READ, 0);
}

void tu_conn_close_after_flush(struct tu_conn *conn)
{
    if (conn->state != TU_CONN_OPEN)
        return;
    set_state(conn, TU_CONN_DRAINING);
    set_reading(conn, 0);
    conn->graceful = 1;
    if (evbuffer_get_length(tu_conn_output(conn)) == 0) {
        tu_conn_close(conn, "done");
        return;
    }
    /* Have the write callback run when the output is empty, not at LOW. */
    bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
}

/* Unlinks and frees the connection; never from its own callbacks. */
static void conn_free(struct tu_conn *conn)
{
    struct tu_server *srv = conn->srv;

    if (conn->proto)
        conn->proto->on_free(conn->proto_state);
    if (conn->graceful) {
        /* The output is empty: close_notify goes straight to the socket;
         * if it would block, the client does without. */
        SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
        if (ssl && SSL_shutdown(ssl) < 0)
            ERR_clear_error();
    }
    bufferevent_free(conn->bev);
    event_free(conn->reap);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    srv->stats.connections_open--;
    free(conn);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg);
}

/* Handshake done: pick the front end by ALPN. Returns 0 or CR_E*. */
static int start_proto(struct tu_conn *conn)
{
    SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    int rv;

    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0) {
        conn->proto = &tu_h2_proto;
        conn->srv->stats.h2_connections++;
    } else {
        conn->proto = &tu_h1_proto;
        conn->srv->stats.h1_connections++;
    }
    rv = conn->proto->open(conn, &conn->proto_state);
    if (rv != 0) {
        conn->proto = NULL;
        return rv;
    }
    set_state(conn, TU_CONN_OPEN);
    bufferevent_set_timeouts(conn->bev, NULL, NULL);
    tu_log(conn->srv, "conn %llu %s: %s, %s", (unsigned long long)conn->seq, conn->peer,
           SSL_get_version(ssl), conn->proto->name);
    /* The client may have sent its first request with the handshake. */
    rv = conn->proto->on_read(conn->proto_state);
    tu_conn_update(conn);
    return rv;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct tu_conn *conn = arg;
    int rv;
    (void)bev;

    if (conn->state != TU_CONN_OPEN)
        return;
    rv = conn->proto->on_read(conn->proto_state);
    if (rv != 0) {
        tu_conn_close(conn, rv == CR_ENOMEM ? "out of memory" : "protocol error");
        return;
    }
    tu_conn_update(conn);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct tu_conn *conn = arg;
    int rv;
    (void)bev;

    if (conn->state == TU_CONN_DRAINING) {
        if (evbuffer_get_length(tu_conn_output(conn)) == 0)
            tu_conn_close(conn, "done");
        return;
    }
    if (conn->state != TU_CONN_OPEN)
        return;
    rv = conn->proto->on_drain(conn->proto_state);
    if (rv != 0) {
        tu_conn_close(conn, rv == CR_ENOMEM ? "out of memory" : "protocol error");
        return;
    }
    tu_conn_update(conn);
}

/* The first queued OpenSSL error of the connection, for the log. */
static const char *tls_error(struct tu_conn *conn, char *buf, size_t len)
{
    unsigned long e = bufferevent_get_openssl_error(conn->bev);

    if (e == 0)
        return "socket error";
    ERR_error_string_n(e, buf, len);
    while (bufferevent_get_openssl_error(conn->bev) != 0)
        ;
    return buf;
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct tu_conn *conn = arg;
    char err[256];
    int rv;
    (void)bev;

    if (conn->state == TU_CONN_CLOSED)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        if (conn->state != TU_CONN_HANDSHAKE)
            return;
        rv = start_proto(conn);
        if (rv != 0)
            tu_conn_close(conn, "front end failed");
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        tu_conn_close(conn, "handshake timeout");
    else if (what & BEV_EVENT_EOF)
        tu_conn_close(conn, "client closed");
    else if (what & BEV_EVENT_ERROR)
        tu_conn_close(conn, tls_error(conn, err, sizeof(err)));
}

static void format_peer(char *buf, size_t len, const struct sockaddr *sa)
{
    char host[48];
    const void *addr = sa->sa_family == AF_INET6
                           ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                           : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    unsigned port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                                    : ((const struct sockaddr_in *)sa)->sin_port);

    if (evutil_inet_ntop(sa->sa_family, addr, host, sizeof(host)) == NULL)
        snprintf(host, sizeof(host), "?");
    snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* Wraps fd in a TLS bufferevent. On failure closes fd. Returns 0 or CR_E*. */
static int make_bev(struct tu_conn *conn, evutil_socket_t fd)
{
    struct timeval hs = {TU_HANDSHAKE_TIMEOUT_S, 0};
    SSL *ssl = SSL_new(conn->srv->ssl_ctx);

    if (ssl == NULL) {
        evutil_closesocket(fd);
        return CR_ETLS;
    }
    conn->bev = bufferevent_openssl_socket_new(conn->srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (conn->bev == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        return CR_ENOMEM;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(conn->bev, 1);
    bufferevent_setcb(conn->bev, read_cb, write_cb, event_cb, conn);
    bufferevent_setwatermark(conn->bev, EV_WRITE, TU_OUT_LOW, 0);
    bufferevent_set_timeouts(conn->bev, &hs, &hs);
    bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
    conn->reading = 1;
    return 0;
}

int tu_conn_accept(struct tu_server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    struct tu_conn *conn;
    int one = 1, rv;

    (void)salen;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        rv = CR_ENOMEM;
        goto fail_conn;
    }
    conn->srv = srv;
    conn->reap = event_new(srv->base, -1, 0, reap_cb, conn);
    if (conn->reap == NULL) {
        rv = CR_ENOMEM;
        goto fail_reap;
    }
    rv = make_bev(conn, fd); /* owns fd from here, even on failure */
    if (rv != 0)
        goto fail_bev;
    conn->seq = ++srv->next_conn_seq;
    format_peer(conn->peer, sizeof(conn->peer), sa);
    conn->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = conn;
    srv->conns = conn;
    srv->stats.connections_accepted++;
    srv->stats.connections_open++;
    return 0;

fail_bev:
    event_free(conn->reap);
    free(conn);
    return rv;
fail_reap:
    free(conn);
fail_conn:
    evutil_closesocket(fd);
    return rv;
}

void tu_conn_free_all(struct tu_server *srv)
{
    struct tu_conn *conn, *next;

    for (conn = srv->conns; conn != NULL; conn = next) {
        next = conn->next;
        conn_free(conn);
    }
}
