/* upstream_int.h - inside an upstream connection: the transport
 * (upstream.c: TCP, TLS, reconnects, keepalive) and the protocol codecs it
 * drives (upstream_h2.c: nghttp2 client session; upstream_h1.c: HTTP/1.1
 * keep-alive with optional pipelining). Only those three files include it,
 * and the tests and the micro-benchmark that drive a codec from memory
 * (tests/unit/fixture.c), as upstream.c would once TLS is up. */
#ifndef CR_UPSTREAM_INT_H
#define CR_UPSTREAM_INT_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "hparse.h"
#include "pool.h"
#include "request.h"
#include "upstream.h"
#include "worker.h"
#include "ws.h"

#define UP_OUT_HIGH (64 * 1024)

struct cr_upconn;

/* A protocol spoken over an established TLS connection. Every function
 * returns 0 or a negative code; a failure makes the transport drop the
 * connection (failing its requests through the pool). */
struct cr_up_codec {
    const char *alpn;                                  /* what ALPN must agree on */
    int (*start)(struct cr_upconn *u);                 /* TLS is up */
    void (*stop)(struct cr_upconn *u);                 /* free the codec's state */
    int (*on_data)(struct cr_upconn *u, const uint8_t *data, size_t len);
    int (*on_eof)(struct cr_upconn *u);                /* the server closed cleanly */
    int (*produce)(struct cr_upconn *u);               /* fill u->out up to UP_OUT_HIGH */
    uint32_t (*room)(const struct cr_upconn *u);       /* requests it can take now */
    int (*submit)(struct cr_upconn *u, struct cr_request *r);
    void (*cancel)(struct cr_upconn *u, struct cr_request *r);
    void (*resume)(struct cr_upconn *u, struct cr_request *r);
    void (*consumed)(struct cr_upconn *u, struct cr_request *r, size_t n);
    void (*ping)(struct cr_upconn *u);                 /* liveness probe, NULL = none */
    void (*retire)(struct cr_upconn *u);               /* no new requests; say so */
};

extern const struct cr_up_codec cr_up_h2;
extern const struct cr_up_codec cr_up_h1;
extern const struct cr_up_codec cr_up_ws; /* a tunnel's HTTP/1.1 upgrade, then raw bytes */

struct cr_upconn {
    enum cr_up_state state;
    const struct cr_up_codec *codec;
    struct cr_worker *w;
    struct cr_pool *pool;
    const struct cr_addr *addr;
    struct cr_shm_up_stats *stats; /* the worker's counters for addr (shm.h) */
    bool connected_once;           /* a connect after this one is a reconnect */
    int fd;
    SSL *ssl;
    struct event *rev, *wev, *tmr;
    struct evbuffer *out;
    struct cr_deferred flush;
    struct cr_tls_sessions sess; /* its newest session, resumed on reconnect */
    struct cr_tls_sessions *sessions; /* where its new sessions go: &sess, or
                                         the pool's for a tunnel (tls.h) */
    TAILQ_HEAD(cr_up_q, cr_request) streams; /* in flight, in the order sent */
    uint32_t inflight;
    uint32_t streaming;        /* of them, moved to the streaming class (gate.h) */
    int64_t id;
    bool retiring;
    bool hungup;               /* cr_upconn_check_hangup saw the peer go */
    bool ping_outstanding;
    bool want_read_on_write;
    bool read_paused;          /* h1: the client is slower than the upstream */
    uint64_t last_rx_us;
    uint64_t ready_us;         /* when it became READY; 0: not yet */
    uint64_t up_us;            /* how long it stayed READY, once closed */
    uint32_t responses;        /* completed on it (all three since do_connect) */

    /* h2 */
    nghttp2_session *ng;
    uint32_t remote_max;       /* server's SETTINGS_MAX_CONCURRENT_STREAMS */
    size_t held;               /* response bytes buffered, not yet taken by clients */
    size_t conn_owed;          /* of them, not yet given back to the connection's window */
    bool settings_seen;        /* its first SETTINGS frame arrived */
    bool ext_connect;          /* its peer allows extended CONNECT (RFC 8441):
                                * SETTINGS_ENABLE_CONNECT_PROTOCOL=1 */
    uint32_t tunnel_streams;   /* of inflight, tunnels (extended CONNECT streams) */

    /* h1 */
    http_parser parser;
    struct cr_request *sending; /* its body is being written; cleared when
                                 * its response ends first (the connection
                                 * is then recycled), so it never outlives r */
    struct cr_hparse hp;       /* the response header field being read */
    bool close_after;          /* the server said Connection: close */

    /* a tunnel's own connection (upstream_ws.c) */
    bool tunnel;               /* carries one tunnel, never the pool's requests */
    bool switched;             /* the upstream answered 101: bytes are relayed */
    bool ws_upgrade_ok;        /* the 101 said Upgrade: websocket */
    bool ws_accept_ok;         /* and its Sec-WebSocket-Accept matched ws_key */
    char ws_key[CR_WS_KEY_LEN + 1];
    struct cr_ws_track ws_up;  /* frames client -> upstream: where corral's close fits */
    bool ws_close_sent;        /* corral's close frame (r->tunnel_close) is out */
    bool ws_shut;              /* the client's end (req_eof) went on: write side shut */
};

/* Transport services for the codecs. */
/* Stops or resumes reading the connection (h1: the client is slower than
 * the upstream). */
void cr_up_pause_read(struct cr_upconn *u, bool pause);
/* A request's stream ended: normally (resp_eof) or not (the pool decides a
 * retry). Removes it from u->streams. */
void cr_up_stream_done(struct cr_upconn *u, struct cr_request *r, bool refused);
/* It ends without a failure: the upstream closed it cleanly
 * (CR_POOL_LOST_CLOSED: close_notify on an idle connection, Connection:
 * close, a GOAWAY'd or retired one now empty) or we cannot reuse it
 * (CR_POOL_LOST_RECYCLED: a request abandoned mid-exchange). Closes it,
 * fails what is still on it (the pool retries what it may) and, unless it
 * is retiring, tells the pool, which reconnects (at once or after the
 * back-off: pool.h). */
void cr_up_lost(struct cr_upconn *u, enum cr_pool_loss how, const char *why);
void cr_up_set_state(struct cr_upconn *u, enum cr_up_state s);
/* The response head is complete (status >= 200). */
void cr_up_response_head(struct cr_request *r);

#endif
