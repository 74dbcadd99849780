/* testup.h - the shared context of testup, corral's test upstream server.
 *
 * testup is a single-threaded libevent + OpenSSL + nghttp2 + http_parser
 * server that plays the "load balancer" behind corral in integration tests
 * and benchmarks. Its modules, in the order a request meets them:
 *
 *   testup.c        CLI, TLS context, listener, signals, shutdown
 *   testup_conn     one TLS connection: handshake, ALPN, backpressure,
 *                   deferred close
 *   testup_h1       HTTP/1.1 front end (http_parser, pipelining)
 *   testup_h2       HTTP/2 front end (nghttp2 server session)
 *   testup_req      protocol-neutral request: routing, timers, the body
 *                   source of the answer
 *   testup_ws       WebSocket echo (frames), behind an HTTP/1.1 upgrade
 *                   or an HTTP/2 extended CONNECT stream
 *   testup_stats    counters and their JSON
 *   testup_json     JSON string escaping
 *
 * Everything runs on one event loop; nothing blocks except writing the
 * small --stats-file. */
#ifndef TU_TESTUP_H
#define TU_TESTUP_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "testup_stats.h"

/* Output backpressure: a producer stops adding to a connection's output
 * buffer, and the connection stops reading from its socket, while more than
 * TU_OUT_HIGH bytes are queued; both resume once the socket has drained the
 * buffer to TU_OUT_LOW. */
#define TU_OUT_HIGH (256 * 1024)
#define TU_OUT_LOW (64 * 1024)

/* Request-body bytes an /echo request may hold before its connection stops
 * reading (HTTP/1.1; HTTP/2 is bounded by the stream window instead). */
#define TU_ECHO_BUF_MAX (256 * 1024)

/* Request head (method, target and header fields) size limit. */
#define TU_MAX_HEAD_BYTES (64 * 1024)

/* The command line, validated. Strings point into argv. */
struct tu_opts {
    const char *listen;
    struct sockaddr_storage listen_addr; /* --listen, parsed */
    int listen_addrlen;
    const char *cert;
    const char *key;
    const char *ca;         /* NULL: no client certificates requested */
    const char *stats_file; /* NULL: no stats file */
    char *count_header;     /* --count-header, lower-cased; NULL: none */
    int require_client_cert;
    uint32_t max_streams; /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS */
    uint64_t service_ms;  /* added to every answer but /__stats */
    int work_after_reset; /* a request abandoned before its answer stays in
                           * flight until the answer would have been ready */
    uint32_t refuse_after_data; /* h2: streams still to reset with REFUSED_STREAM
                                 * on their first DATA frame (decremented) */
    int quiet;
    /* --knee K [--knee-slope MS] [--knee-after S:K2]: a load balancer past
     * its knee. A request that arrives with more than knee in flight
     * (itself counted) is answered slope_ms later for each one above knee,
     * on top of --service-time; 0 = off. knee_after_s seconds after the
     * start, knee becomes knee2 (the API's cache going cold). */
    uint32_t knee;
    uint64_t knee_slope_ms;
    uint64_t knee_after_s; /* 0: the knee never moves */
    uint32_t knee2;
    /* WebSocket (testup_ws): --ws-ping MS (0: none), --ws-refuse STATUS
     * (HTTP/1.1 upgrades answered STATUS instead of 101; 0: accepted),
     * --connect-protocol (HTTP/2: SETTINGS_ENABLE_CONNECT_PROTOCOL=1 and
     * extended CONNECT :protocol websocket streams accepted) */
    uint64_t ws_ping_ms;
    int ws_refuse;
    int connect_protocol;
};

struct tu_conn;

/* The process-wide context every module reaches through its connection. */
struct tu_server {
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    struct tu_opts opts;
    struct tu_stats stats;
    struct tu_conn *conns; /* every live connection (testup_conn owns it) */
    uint64_t next_conn_seq;
};

/* Prints one line to stderr prefixed with "testup: " unless --quiet. For
 * per-connection events; startup errors are printed regardless. */
void tu_log(const struct tu_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
