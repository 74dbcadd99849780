/* worker.h - a worker process: one libevent loop that owns its client
 * connections, its admission gate and its upstream pool.
 *
 * Nothing a worker does blocks: sockets are non-blocking, files are read by
 * the master before the fork, logs are single appending writes. */
#ifndef CR_WORKER_H
#define CR_WORKER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "shm.h"
#include "tls.h"

/* What the master hands a worker it forks. Everything is inherited memory
 * the worker only reads; the worker frees none of it. */
struct cr_worker_setup {
    const struct cr_config *cfg;
    int id;                    /* 1..workers, stable across respawns */
    uint64_t generation;       /* reload generation, for the logs */
    const int *listen_fds;     /* one per cfg->listeners[i] */
    int admin_fd;              /* -1 without an admin endpoint */
    struct cr_tls_server *const *server_tls; /* one per cfg->listeners[i] */
    SSL_CTX *upstream_tls;
    struct cr_shm *shm;
    uid_t uid;                 /* drop to these unless (uid_t)-1 */
    gid_t gid;
    int log_chan;              /* from the master: re-opened log descriptors
                                * (cr_log_receive); -1 = none */
};

/* Runs the worker until it has drained after SIGTERM. Returns the exit code
 * for the child process (0 after a graceful stop). */
int cr_worker_run(const struct cr_worker_setup *setup);

/* File descriptors a worker keeps for itself besides client connections:
 * its upstream connections (twice: a replacement may connect while the old
 * one closes), the listening sockets, admin.max_connections admin
 * requests, and a fixed spare for the standard streams, log files and the
 * event loop's own descriptors.
 * Pure arithmetic on cfg. */
uint64_t cr_worker_fd_reserve(const struct cr_config *cfg);

/* The client connections a worker holds at once: cfg->max_connections
 * when set, else (auto) the open files limit nofile less
 * cr_worker_fd_reserve, at least 1. At the limit the worker stops
 * accepting; the connections wait in the kernel's backlog (or another
 * worker takes them) until one of its connections closes. An explicit
 * max_connections above what nofile allows is honoured: accept(2) then
 * fails with EMFILE and the listener backs off (listener.h). */
uint32_t cr_worker_conn_limit(const struct cr_config *cfg, uint64_t nofile);

/* The soft RLIMIT_NOFILE of this process (a large number when unlimited). */
uint64_t cr_worker_nofile(void);

/* ------------------------------------------------------------ inside a worker
 * The running worker, for the modules of its event loop (conn, gate, pool, ...). */

#include <event2/event.h>
#include <sys/queue.h>

struct cr_gate;
struct cr_pool;
struct cr_conn;
struct cr_listener;

/* Event priorities (libevent runs only the most urgent level that has
 * active events, then polls again):
 *   CR_EVPRIO_IO       reads and writes of established client connections
 *                      and of the upstream connections, deferred work
 *                      (defer_now)
 *   CR_EVPRIO_DEFAULT  timers, signals, the admin port, and the flushes of
 *                      client connections (defer_late): they run once no
 *                      input is ready, so that answers that arrive together
 *                      leave together
 *   CR_EVPRIO_NEW      accepting and TLS handshakes, which an established
 *                      connection always outranks (cr_conn_promote) */
enum { CR_EVPRIO_IO = 0, CR_EVPRIO_DEFAULT = 1, CR_EVPRIO_NEW = 2, CR_EVPRIO_COUNT = 3 };

/* Work to run once the current callbacks have returned: flushing a
 * connection's output after several writes, freeing an object outside its
 * own callback chain. late: run from defer_late (see CR_EVPRIO_DEFAULT). */
struct cr_deferred {
    void (*cb)(void *arg);
    void *arg;
    bool queued;
    bool late;
    TAILQ_ENTRY(cr_deferred) link;
};

/* One queue of deferred work and the event that runs it. */
struct cr_defer_q {
    struct event *ev;
    TAILQ_HEAD(, cr_deferred) items;
    size_t n;
};

/* A listening socket as a worker sees it, with the handshakes in progress
 * on its connections: at tls.max_handshakes the worker stops accepting
 * there, so a flood of half-open TLS connections cannot starve the
 * established ones of CPU. A connection counts from the first byte of its
 * ClientHello, not from accept: silent sockets hold no handshake slot
 * (client_hello_timeout closes them). One whose ClientHello arrives while
 * the slot is full waits, unread, in hs_waiting (first come, first served)
 * until a handshake ends. Accepting also stops while the worker holds
 * max_conns client connections (on all its listeners together). */
struct cr_listen_slot {
    struct cr_worker *w;
    size_t index;
    struct cr_listener *l;
    uint32_t handshaking;
    uint32_t max;
    bool paused;
    TAILQ_HEAD(, cr_conn) hs_waiting;
};

struct cr_worker {
    struct event_base *base;
    const struct cr_config *cfg;
    const struct cr_worker_setup *setup;
    int id;
    struct cr_shm_worker_stats *stats;
    struct cr_shm_listener_stats *lstats; /* its row of shm->listeners */
    struct cr_shm_up_stats *upstats;      /* its row of shm->upstreams */
    struct cr_shm_tenant_open *topen;     /* its row of shm->tenant_open */
    struct cr_gate *gate; /* admission: tenants, queues (gate.h) */
    struct cr_pool *pool; /* upstream connections (pool.h) */
    struct cr_listen_slot *slots; /* one per cfg->listeners[i] */
    LIST_HEAD(, cr_conn) conns;
    size_t nconns;
    size_t nreqs;     /* requests begun and not yet answered (request.c) */
    size_t nlinger;   /* of nconns, in a lingering close (CR_CONN_LINGER) */
    size_t max_conns; /* cr_worker_conn_limit: accepting stops there */
    bool full;        /* nconns >= max_conns */
    uint64_t full_logged_us;
    bool draining;
    bool pool_drained; /* draining, and the client connections are gone */
    bool linger_wait;  /* ... but for lingering ones, whose bound is armed */
    struct cr_defer_q defer_now;  /* at CR_EVPRIO_IO */
    struct cr_defer_q defer_late; /* at CR_EVPRIO_DEFAULT */
    struct event *late_guard;     /* runs defer_late if it waited too long */
    uint64_t next_conn_id;
    uint64_t log_seq; /* access-log lines sampled so far (cr_log_sample) */
    uint64_t up_ready; /* this worker's share of stats->upstream_ready (upstream.c) */
};

/* Moves ev to priority level prio. libevent refuses to while ev is active
 * (queued to run in this pass); then ev is taken out of the loop, moved,
 * added again if it was a persistent event and activated again, so that
 * what it was to run still runs, at its new level. Returns 0 or -1. */
int cr_worker_set_priority(struct event *ev, int prio);

/* Queues d to run after the current callbacks (d->late: once no input is
 * ready, and at the latest after about a millisecond); a no-op if already
 * queued. */
void cr_worker_defer(struct cr_worker *w, struct cr_deferred *d);
/* Takes d off the queue if it is there (before its owner is freed). */
void cr_worker_undefer(struct cr_worker *w, struct cr_deferred *d);

/* A connection was accepted (w->nconns already counts it): at max_conns
 * the worker stops accepting. */
void cr_worker_conn_added(struct cr_worker *w);

/* A connection closed (w->nconns already counts it out): the worker may
 * accept again, or finish draining. */
void cr_worker_conn_gone(struct cr_worker *w);

/* The pool ended its last exchange while draining (cr_pool_idle): a
 * draining worker whose clients are all gone stops now. The last exchange
 * may be one its client gave up on and the upstream finished (it kept its
 * slot), so no client connection closing is there to tell. */
void cr_worker_pool_idle(struct cr_worker *w);

/* A connection began (delta +1) or ended (-1) a lingering close (conn.h).
 * A lingering connection still holds its place under max_connections (its
 * descriptor is open) but never a handshake slot. A draining worker
 * drains its upstream pool once only lingering connections are left, and
 * stops when they have ended too, or 2 s later (within drain_timeout). */
void cr_worker_linger(struct cr_worker *w, int delta);

/* c's ClientHello began on slot: returns 0 when a handshake slot is
 * counted for it (start now), or CR_EAGAIN when slot is at max_handshakes
 * and c waits in line; the worker then calls cr_conn_handshake_go(c) once
 * a slot is counted for it. */
int cr_worker_handshake_begin(struct cr_listen_slot *slot, struct cr_conn *c);

/* c leaves the line of cr_worker_handshake_begin (it is closing). */
void cr_worker_handshake_cancel(struct cr_listen_slot *slot, struct cr_conn *c);

/* A counted handshake ended on slot (delta -1; +1 is for
 * cr_worker_handshake_begin): lets the next waiting connection start, and
 * pauses or resumes accepting. */
void cr_worker_handshake(struct cr_listen_slot *slot, int delta);

#endif
