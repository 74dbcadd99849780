/* rp_client.h - corral-replay's engine: open-loop arrivals turned into
 * requests on client connections to the profile's target.
 *
 * One libevent loop, one thread, non-blocking sockets. A source (the
 * profile's schedule, or an access log) says what each request is and when
 * it is due; the engine sends it at that time whatever the server is doing,
 * and measures its latency from that intended time.
 *
 * Clients. Each tenant has its own connections. A connection uses HTTP/2
 * with probability target.http2, else HTTP/1.1 (ALPN decides in the end).
 * It carries client.requests_per_connection requests, then closes; an
 * HTTP/2 connection multiplexes them (up to the server's
 * MAX_CONCURRENT_STREAMS), an HTTP/1.1 one sends one at a time, so a new
 * request while it is busy opens another connection. A connection that has
 * had nothing to do for client.idle closes early. A new connection resumes
 * a saved TLS session with probability client.resume, when an unused one
 * is left: each session (ticket) the server sent is used once, newest
 * first, like a phone resuming with the ticket of its last visit; without
 * one the handshake is a full one.
 * At caps.connections open connections, an idle one (of any tenant) is
 * closed to make room, or else requests wait (FIFO per tenant, round
 * robin between tenants) for one to free; sending never passes
 * caps.rate either (a token bucket of 50 ms depth): the wait counts in
 * their latency.
 *
 * Answers. 429 and 503 follow client.on_refusal: retry after Retry-After
 * (delta-seconds or an HTTP date; client.retry_after_default when absent)
 * stretched by 1 + U[0, retry_jitter], retry at once, or give up; after
 * client.max_retries retries the client gives up. A retry is a new attempt
 * (counted as sent, answered, with its own latency from its own intended
 * time) with the same request id; retries that would fall after the end of
 * the run are not made. A request without a complete answer
 * client.timeout after its intended time is a timeout (an HTTP/2 stream is
 * reset, an HTTP/1.1 connection closed). A connection that fails makes its
 * requests on the wire connection errors; those that never left it (and
 * HTTP/2 streams the server refused with GOAWAY or REFUSED_STREAM) are
 * sent again elsewhere.
 *
 * Targets. With several target addresses each new connection goes to one
 * of them (target.spread: round robin, or a hash of the connection's
 * number as an ECMP router would), and its requests are counted for that
 * address too (rp_engine_targets).
 *
 * Arrivals due within 0.2 ms of each other go out together (the arrival
 * timer wakes at most every 0.2 ms): fewer, fuller writes for client and
 * server at high rates; the wait is in their latency.
 *
 * The run ends when the source is exhausted, the duration has passed and
 * nothing is left in flight; at duration + timeout + 1 s at the latest. */
#ifndef RP_CLIENT_H
#define RP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "rp_profile.h"
#include "rp_stats.h"

/* A tenant as the engine sends it. */
struct rp_engine_tenant {
    const char *name;  /* for messages */
    const char *value; /* the tenant header's value; NULL = no header */
};

/* One request to make. Pointers are borrowed from the source, which keeps
 * them valid for the whole run. */
struct rp_spec {
    size_t tenant;  /* index into the engine's tenants */
    uint64_t at_us; /* intended send time, since the start of the run */
    const char *method, *path;
    uint64_t body; /* body bytes */
    char *const *hname, *const *hvalue;
    size_t nheaders;
};

/* Where requests come from. next: the earliest request due at or before
 * now_us (1), or none yet (0). peek: the time of the next one if it is at
 * or before horizon_us, else UINT64_MAX. done: nothing more will come. */
struct rp_source {
    void *ctx;
    int (*next)(void *ctx, uint64_t now_us, struct rp_spec *out);
    uint64_t (*peek)(void *ctx, uint64_t horizon_us);
    int (*done)(void *ctx);
};

struct rp_engine;

/* Called once a second of the run has passed (sec = its index) and once at
 * the end (sec = the number of seconds run, final = 1). */
typedef void (*rp_engine_tick_cb)(struct rp_engine *e, size_t sec, int final, void *arg);

/* Creates the engine on base for profile p's target, caps and client
 * behaviour, with ntenant tenants, requests from src and counts into st
 * (all borrowed for the engine's life). Returns 0 or CR_ENOMEM, CR_ETLS
 * (the TLS context or CA file; the reason is printed to stderr). */
int rp_engine_new(struct event_base *base, const struct rp_profile *p,
                  const struct rp_engine_tenant *tenants, size_t ntenant,
                  const struct rp_source *src, struct rp_stats *st, struct rp_engine **out);

/* Frees the engine and every connection and request it still has. */
void rp_engine_free(struct rp_engine *e);

/* Runs the event loop until the run is over (see above) or
 * rp_engine_stop. cb (may be NULL) gets the seconds. Returns 0. */
int rp_engine_run(struct rp_engine *e, rp_engine_tick_cb cb, void *arg);

/* Stops the arrivals now (an interrupted run): what is in flight may
 * finish within client.timeout. A second call ends the run at once. */
void rp_engine_stop(struct rp_engine *e);

/* Seconds since the run started (0 before). */
double rp_engine_elapsed(const struct rp_engine *e);

/* What went to one target address. A request attempt counts where its
 * connection went; one that timed out before it had a connection counts
 * nowhere. */
struct rp_target_count {
    uint64_t connections;    /* opened (or tried) to it */
    uint64_t ok, s429, s503; /* answers by status: 2xx, 429, 503 */
    uint64_t other;          /* any other status */
    uint64_t conn_errors;    /* connect/TLS/reset errors (a connect that failed at once too) */
    uint64_t timeouts;       /* no answer within client.timeout */
};

/* The counts per target address, in the order of p->target.addrs; *n gets
 * their number. Valid while e lives. */
const struct rp_target_count *rp_engine_targets(const struct rp_engine *e, size_t *n);

/* Connections open now, and the most open at once. */
size_t rp_engine_conns(const struct rp_engine *e, size_t *peak);

#endif
