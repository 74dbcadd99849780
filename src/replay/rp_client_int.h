/* rp_client_int.h - what the engine (rp_client.c), the connection
 * (rp_conn.c) and the two codecs (rp_h1.c, rp_h2.c) share. Not for other
 * modules.
 *
 * Ownership. The engine owns requests and connections. A request is in
 * exactly one place: its tenant's pending queue, a connection's queue (not
 * yet on the wire), a connection's in-flight list, or waiting for a retry.
 * A connection never frees itself inside a callback: rp_conn_close moves it
 * to the engine's dead list, which rp_engine_settle empties at the end of
 * every event callback. Codecs never finish a request by themselves
 * re-entering the engine's scheduling: rp_req_answered / rp_req_failed only
 * count, decide a retry and mark work; rp_engine_settle then drains the
 * pending queues and flushes connections. */
#ifndef RP_CLIENT_INT_H
#define RP_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/queue.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "rp_client.h"
#include "rp_rand.h"

/* ------------------------------------------------------------ lists */

/* Lists are <sys/queue.h> TAILQs, as in corral (worker.h, h1.c). */
TAILQ_HEAD(rp_req_list, rp_req);
TAILQ_HEAD(rp_conn_list, rp_conn);

/* ------------------------------------------------------------ requests */

enum rp_req_state {
    RP_REQ_PENDING,    /* in its tenant's pending queue */
    RP_REQ_QUEUED,     /* on a connection, not yet on the wire */
    RP_REQ_INFLIGHT,   /* on the wire */
    RP_REQ_RETRY_WAIT, /* refused, waiting to retry */
};

struct rp_conn;

struct rp_req {
    TAILQ_ENTRY(rp_req) link;  /* in whichever list its state says */
    TAILQ_ENTRY(rp_req) dlink; /* in the engine's deadline list */
    struct rp_engine *e;
    struct rp_conn *conn;          /* QUEUED, INFLIGHT */
    SLIST_ENTRY(rp_req) free_link; /* in the engine's free list, once finished */
    struct rp_spec spec;
    enum rp_req_state state;
    uint64_t id;
    uint32_t attempt;     /* 0 = the first */
    uint64_t intended_us; /* of this attempt */
    uint64_t deadline_us; /* intended_us + client.timeout */
    bool has_deadline;    /* on the deadline list (not while waiting to retry) */
    int32_t stream_id;    /* HTTP/2 */
    int status;
    int64_t retry_after_ms; /* from the answer, -1 = none */
    uint64_t body_left;     /* request body bytes not yet produced */
    /* The retry wait, made on the first retry and kept while the request
     * is recycled (it is about the request's own address). Last: req_new
     * zeroes what precedes it. */
    struct event *tmr;
};

/* r's X-Request-Id, "rp-<id>.<attempt>", into buf (at least 48 bytes);
 * returns its length. */
size_t rp_req_id(const struct rp_req *r, char *buf);

/* The answer's status line and fields arrived; codecs call these while
 * reading. */
void rp_req_set_retry_after(struct rp_req *r, const char *value, size_t len);

/* The attempt is over: answered with r->status (the whole answer read),
 * or failed. The request leaves its connection's in-flight list; its
 * connection may then take more. */
void rp_req_answered(struct rp_req *r);
void rp_req_failed(struct rp_req *r, enum rp_outcome how);

/* A request the server did not process (HTTP/2 REFUSED_STREAM, GOAWAY
 * above its last stream, an HTTP/1.1 connection that closed before it was
 * sent): back to its tenant's pending queue, as if never sent. */
void rp_req_requeue(struct rp_req *r);

/* ------------------------------------------------------------ connections */

enum rp_conn_state {
    RP_CONN_CONNECTING, /* TCP */
    RP_CONN_HANDSHAKE,  /* TLS */
    RP_CONN_OPEN,
    RP_CONN_CLOSED, /* on the dead list */
};

struct rp_codec;

struct rp_conn {
    TAILQ_ENTRY(rp_conn) link;  /* engine's conns, then dead */
    TAILQ_ENTRY(rp_conn) rlink; /* its tenant's ready list */
    TAILQ_ENTRY(rp_conn) dlink; /* the engine's dirty list */
    bool in_ready, dirty;
    bool broken;   /* a protocol error or a cancelled HTTP/1.1 exchange: close it */
    bool draining; /* GOAWAY or "Connection: close": no new requests */
    bool finish;   /* done: rp_conn_flush closes it gracefully */
    struct rp_engine *e;
    size_t tenant;
    size_t target; /* index into the profile's target.addrs */
    uint64_t id;
    enum rp_conn_state state;
    int fd;
    SSL *ssl;
    struct event rev, wev, tmr; /* readable, writable, connect/idle timer */
    bool wev_on;
    bool h2; /* chosen (ALPN offer), then negotiated */
    const struct rp_codec *codec;
    void *cx;                   /* the codec's state */
    uint32_t assigned;          /* requests given to it (towards requests_per_connection) */
    uint32_t inflight;          /* requests on flights */
    uint32_t queued;            /* requests on queue */
    struct rp_req_list queue;   /* QUEUED requests, in order */
    struct rp_req_list flights; /* INFLIGHT requests, in order sent */
    uint64_t max_streams;       /* HTTP/2: the server's limit; HTTP/1.1: 1 */
    /* TLS plaintext waiting for SSL_write */
    unsigned char *out;
    size_t olen, ooff, ocap;
};

/* A protocol on an open connection. Every function returns 0 or a negative
 * CR_E* code, which makes the connection fail. */
struct rp_codec {
    int (*start)(struct rp_conn *c);                                  /* handshake done */
    int (*submit)(struct rp_conn *c, struct rp_req *r);               /* r goes out */
    int (*feed)(struct rp_conn *c, const unsigned char *d, size_t n); /* bytes in */
    int (*pump)(struct rp_conn *c);                      /* produce output into c->out */
    void (*cancel)(struct rp_conn *c, struct rp_req *r); /* r timed out */
    void (*goodbye)(struct rp_conn *c);                  /* final output before closing */
    void (*free)(struct rp_conn *c);
};

extern const struct rp_codec rp_h1_codec, rp_h2_codec;

/* Output bytes above which codecs stop producing request bodies. */
#define RP_OUT_HIGH (64 * 1024)

/* Appends n bytes to c's output. Returns 0 or CR_ENOMEM. */
int rp_conn_out(struct rp_conn *c, const void *d, size_t n);

/* The client TLS context for p's target (CA, verification, session
 * cache). Returns 0, or CR_ETLS after printing why to stderr. */
int rp_conn_tls_ctx(const struct rp_profile *p, SSL_CTX **out);

/* Opens a connection for tenant (TCP connect started). Returns it, or NULL
 * with *err set (CR_EIO: socket/connect failed at once, CR_ENOMEM). */
struct rp_conn *rp_conn_open(struct rp_engine *e, size_t tenant, bool h2, SSL_SESSION *resume,
                             int *err);

/* Gives r to c: queued until the connection is open, then submitted. */
int rp_conn_assign(struct rp_conn *c, struct rp_req *r);

/* Marks c as having output to write (or c->finish); rp_engine_settle
 * flushes it. A no-op on a closed connection. */
void rp_conn_dirty(struct rp_conn *c);

/* Writes what it can now. Closes c on error. */
void rp_conn_flush(struct rp_conn *c);

/* Closes c now (its requests: on the wire, how; queued, requeued) and puts
 * it on the dead list. graceful: say goodbye (GOAWAY, close_notify). */
void rp_conn_close(struct rp_conn *c, enum rp_outcome how, bool graceful);

/* Frees a dead connection. */
void rp_conn_free(struct rp_conn *c);

/* Can c take one more request now? */
bool rp_conn_has_room(const struct rp_conn *c);

/* ------------------------------------------------------------ the engine */

#define RP_SESSIONS_MAX 4096

struct rp_tenant_state {
    struct rp_req_list pending; /* PENDING requests */
    struct rp_conn_list ready;  /* connections with room (rlink) */
};

struct rp_engine {
    struct event_base *base;
    const struct rp_profile *p;
    const struct rp_engine_tenant *tenants;
    size_t ntenant;
    struct rp_tenant_state *ts;
    struct rp_source src;
    struct rp_stats *st;
    struct rp_target_count *tcount; /* per target address */
    SSL_CTX *ssl_ctx;
    /* Unused sessions (tickets) for resumption, a ring: oldest at shead.
     * Each is used once, as RFC 8446 asks of clients (OpenSSL will not
     * offer a TLS 1.3 session again once it has been resumed). */
    SSL_SESSION *sessions[RP_SESSIONS_MAX];
    size_t nsessions, shead;
    struct rp_rand rng;
    uint64_t start_us; /* monotonic clock at the start, 0 = not started */
    uint64_t end_us;   /* duration */
    uint64_t hard_end_us;
    uint64_t last_wake_us; /* of the arrival timer */
    struct event *arrival_tmr, *second_tmr, *bucket_tmr, *sweep_tmr;
    struct rp_req_list deadlines;   /* requests by deadline (dlink) */
    SLIST_HEAD(, rp_req) free_reqs; /* finished requests, for reuse */
    uint64_t now_us;                /* the clock, as of rp_engine_clock */
    bool bucket_armed;
    double tokens;      /* the send rate bucket */
    uint64_t tokens_us; /* when it was last filled */
    struct rp_conn_list conns, dead, dirty;
    struct rp_req_list waiting; /* RETRY_WAIT requests */
    size_t nconns, peak_conns;
    size_t live;    /* requests not yet finished */
    size_t pending; /* of which waiting in pending queues */
    size_t rr;      /* round robin start between tenants */
    uint64_t next_id, next_conn_id;
    bool stopping, over, arrivals_done;
    rp_engine_tick_cb tick_cb;
    void *tick_arg;
    size_t secs_reported;
};

/* Microseconds since the start of the run, as read by the last
 * rp_engine_clock: every event callback reads the clock first, and
 * rp_conn reads it again for each block of input. */
uint64_t rp_engine_now(const struct rp_engine *e);
uint64_t rp_engine_clock(struct rp_engine *e);

/* Does the deferred work: drains pending queues into connections, flushes
 * dirty connections, frees dead ones, ends the run when it is over. Every
 * event callback of the engine, the connections and the codecs calls it
 * last. */
void rp_engine_settle(struct rp_engine *e);

/* c's room or state changed: puts it on or off its tenant's ready list,
 * closes it when it has carried all its requests, arms its idle timer. */
void rp_engine_conn_changed(struct rp_conn *c);

/* A handshake ended on c (for the stats and the session store). */
void rp_engine_handshake_done(struct rp_conn *c);

#endif
