/* worker.c - a worker process: its event loop, accept, deferred work,
 * graceful drain. */
#include "worker.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "common.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "gate.h"
#include "pool.h"
#include "upstream.h"


/* A late flush waits for the loop to have no input ready; under input that
 * never pauses, the guard (at CR_EVPRIO_IO) runs it after this long. */
static const struct timeval late_max = {0, 1000};

void cr_worker_defer(struct cr_worker *w, struct cr_deferred *d)
{
    if (d->queued)
        return;
    struct cr_defer_q *q = d->late ? &w->defer_late : &w->defer_now;
    d->queued = true;
    TAILQ_INSERT_TAIL(&q->items, d, link);
    if (q->n++ == 0) {
        event_active(q->ev, EV_READ, 0);
        if (d->late)
            evtimer_add(w->late_guard, &late_max);
    }
}

void cr_worker_undefer(struct cr_worker *w, struct cr_deferred *d)
{
    if (!d->queued)
        return;
    struct cr_defer_q *q = d->late ? &w->defer_late : &w->defer_now;
    d->queued = false;
    TAILQ_REMOVE(&q->items, d, link);
    q->n--;
}

/* Runs what q held when called: a callback that queues work again waits
 * for the next round, so nothing starves the loop. The items stay on the
 * list while they wait, so that cr_worker_undefer from any callback finds
 * them there. */
static void run_queue(struct cr_worker *w, struct cr_defer_q *q)
{
    size_t n = q->n;
    struct cr_deferred *d;
    while (n-- > 0 && (d = TAILQ_FIRST(&q->items)) != NULL) {
        cr_worker_undefer(w, d);
        d->cb(d->arg);
    }
    if (q->n)
        event_active(q->ev, EV_READ, 0);
}

static void run_now(evutil_socket_t fd, short what, void *arg)
{
    struct cr_worker *w = arg;
    run_queue(w, &w->defer_now);
    (void)fd, (void)what;
}

static void run_late(evutil_socket_t fd, short what, void *arg)
{
    struct cr_worker *w = arg;
    run_queue(w, &w->defer_late);
    if (w->defer_late.n)
        evtimer_add(w->late_guard, &late_max);
    else
        evtimer_del(w->late_guard);
    (void)fd, (void)what;
}

int cr_worker_set_priority(struct event *ev, int prio)
{
    if (event_priority_set(ev, prio) == 0)
        return 0;
    short res = (short)event_pending(ev, EV_READ | EV_WRITE | EV_TIMEOUT, NULL);
    bool persist = (event_get_events(ev) & EV_PERSIST) != 0;
    if (event_del(ev) < 0 || event_priority_set(ev, prio) < 0)
        return -1;
    if (persist && event_add(ev, NULL) < 0)
        return -1;
    if (res)
        event_active(ev, res, 0);
    return 0;
}

static void on_accept(int fd, const struct sockaddr *sa, socklen_t salen, void *arg)
{
    struct cr_listen_slot *slot = arg;
    struct cr_worker *w = slot->w;
    cr_conn_accept(w, fd, sa, salen, slot, cr_tls_server_ctx(w->setup->server_tls[slot->index]));
}

/* ------------------------------------------------------------ limits */

/* Descriptors besides client connections and upstream ones: stdin, stdout,
 * stderr, two log files, epoll and libevent's signal and notify pipes, and
 * room for a log re-opened next to the old one. */
#define CR_WORKER_FD_SPARE 32

uint64_t cr_worker_fd_reserve(const struct cr_config *cfg)
{
    return CR_WORKER_FD_SPARE + cfg->nlisteners +
           (cfg->admin.enabled ? 1 + (uint64_t)cfg->admin.max_connections : 0) +
           2 * (uint64_t)cfg->upstream.connections;
}

uint32_t cr_worker_conn_limit(const struct cr_config *cfg, uint64_t nofile)
{
    if (cfg->max_connections)
        return cfg->max_connections;
    uint64_t reserve = cr_worker_fd_reserve(cfg);
    uint64_t n = nofile > reserve ? nofile - reserve : 1;
    return (uint32_t)CR_MIN(n, (uint64_t)UINT32_MAX);
}

uint64_t cr_worker_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    return rl.rlim_cur == RLIM_INFINITY ? UINT32_MAX : (uint64_t)rl.rlim_cur;
}

/* Accepting on a slot stops at its handshake cap or at the worker's
 * connection cap, and starts again below both. */
static void update_accepting(struct cr_listen_slot *slot, bool full)
{
    if (!slot->l)
        return; /* draining: no longer accepting anyway */
    bool stop = full || slot->handshaking >= slot->max;
    if (stop && !slot->paused) {
        slot->paused = true;
        cr_listener_pause(slot->l);
        if (!full)
            cr_log_debug("%u handshakes in progress: not accepting for now", slot->handshaking);
    } else if (!stop && slot->paused) {
        slot->paused = false;
        cr_listener_resume(slot->l);
    }
}

/* The connection cap is the worker's, over all its listeners. */
static void update_all(struct cr_worker *w)
{
    bool full = w->nconns >= w->max_conns;
    /* once per 10 s at most: a worker at its cap may touch it at every close */
    if (full && !w->full && cr_now_us() - w->full_logged_us > 10000000u) {
        cr_log_warn("%zu client connections: max_connections reached, not accepting until one "
                    "closes (new connections wait in the backlog or go to other workers)",
                    w->nconns);
        w->full_logged_us = cr_now_us();
    }
    w->full = full;
    for (size_t i = 0; i < w->cfg->nlisteners; i++)
        update_accepting(&w->slots[i], full);
}

static void count_handshake(struct cr_listen_slot *slot, int delta)
{
    slot->handshaking += (uint32_t)delta;
    atomic_fetch_add(&slot->w->stats->handshakes_active, (uint64_t)(int64_t)delta);
}

int cr_worker_handshake_begin(struct cr_listen_slot *slot, struct cr_conn *c)
{
    if (slot->handshaking >= slot->max) {
        c->hs_waiting = true;
        TAILQ_INSERT_TAIL(&slot->hs_waiting, c, hs_link);
        return CR_EAGAIN;
    }
    count_handshake(slot, +1);
    update_all(slot->w);
    return 0;
}

void cr_worker_handshake_cancel(struct cr_listen_slot *slot, struct cr_conn *c)
{
    if (!c->hs_waiting)
        return;
    c->hs_waiting = false;
    TAILQ_REMOVE(&slot->hs_waiting, c, hs_link);
}

void cr_worker_handshake(struct cr_listen_slot *slot, int delta)
{
    count_handshake(slot, delta);
    /* the slot freed goes to the connection that waited longest; its
     * handshake runs from its own event (no recursion through here) */
    struct cr_conn *c;
    while (slot->handshaking < slot->max && (c = TAILQ_FIRST(&slot->hs_waiting)) != NULL) {
        cr_worker_handshake_cancel(slot, c);
        count_handshake(slot, +1);
        cr_conn_handshake_go(c);
    }
    update_all(slot->w);
}

/* ------------------------------------------------------------ drain */

/* How long a stopping worker with nothing left but lingering closes lets
 * them run (within drain_timeout): a client still uploading reads its
 * answer meanwhile; one that goes on for lingering_time does not hold the
 * stop. */
#define DRAIN_LINGER_MS 2000

static void on_linger_bound(evutil_socket_t fd, short what, void *arg)
{
    struct cr_worker *w = arg;
    cr_log_debug("stopping with %zu lingering connection(s) left", w->nlinger);
    event_base_loopbreak(w->base);
    (void)fd, (void)what;
}

/* The upstream pool serves the requests that open client connections still
 * send while they drain (a request that raced with the drain, HTTP/2
 * streams before the final GOAWAY); it drains once they are gone. The
 * worker stops once the pool is idle and the lingering closes have ended
 * too, or DRAIN_LINGER_MS later: an exit closes their sockets with the
 * client's bytes unread, and the reset can destroy the answer the client
 * has not read yet. */
static void stop_loop_if_drained(struct cr_worker *w)
{
    if (!w->draining || w->nconns != w->nlinger)
        return;
    if (!w->pool_drained) {
        w->pool_drained = true;
        cr_pool_drain(w->pool);
    }
    if (!cr_gate_idle(w->gate))
        return;
    if (w->nlinger == 0) {
        event_base_loopbreak(w->base);
        return;
    }
    if (!w->linger_wait) {
        w->linger_wait = true;
        static const struct timeval tv = {DRAIN_LINGER_MS / 1000, (DRAIN_LINGER_MS % 1000) * 1000};
        if (event_base_once(w->base, -1, EV_TIMEOUT, on_linger_bound, w, &tv) < 0)
            event_base_loopbreak(w->base);
    }
}

void cr_worker_pool_idle(struct cr_worker *w)
{
    stop_loop_if_drained(w);
}

void cr_worker_conn_added(struct cr_worker *w)
{
    update_all(w);
}

void cr_worker_conn_gone(struct cr_worker *w)
{
    update_all(w);
    stop_loop_if_drained(w);
}

void cr_worker_linger(struct cr_worker *w, int delta)
{
    w->nlinger += (size_t)(ssize_t)delta;
    atomic_fetch_add(&w->stats->conns_lingering, (uint64_t)(int64_t)delta);
    stop_loop_if_drained(w);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct cr_worker *w = arg;
    cr_log_warn("drain timeout: closing %zu connection(s) still open, with %llu request(s) in "
                "flight",
                w->nconns, (unsigned long long)w->nreqs);
    event_base_loopbreak(w->base);
}

static void start_drain(struct cr_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    for (size_t i = 0; i < w->cfg->nlisteners; i++) {
        cr_listener_free(w->slots[i].l);
        w->slots[i].l = NULL;
    }
    struct cr_conn *c, *next;
    for (c = LIST_FIRST(&w->conns); c; c = next) {
        next = LIST_NEXT(c, link);
        /* a connection still in its handshake (or whose ClientHello is on
         * its way) finishes it under its own timers and drains from
         * conn.c once open */
        if (c->state == CR_CONN_OPEN && c->proto && c->proto->on_drain)
            c->proto->on_drain(c);
    }
    if (w->setup->admin_fd >= 0)
        cr_admin_stop(w);
    struct timeval tv = {.tv_sec = (time_t)(w->cfg->drain_timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(w->cfg->drain_timeout_ms % 1000) * 1000};
    event_base_once(w->base, -1, EV_TIMEOUT, on_drain_timeout, w, &tv);
    cr_log_info("draining %zu connection(s)", w->nconns);
    stop_loop_if_drained(w);
}

/* SIGUSR1 is the master's: it re-opens the logs and passes them on through
 * log_chan (this worker may not be allowed to open them). Caught here only
 * so that a stray one (kill -USR1 to every corral) does not end the worker. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct cr_worker *w = arg;
    if (sig == SIGTERM)
        start_drain(w);
}

/* The master's re-opened log descriptors; a few messages per wakeup at most
 * (the master sends one per SIGUSR1). */
static void on_log_chan(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    for (int i = 0; i < 8; i++) {
        int rc = cr_log_receive(fd);
        if (rc == CR_EAGAIN)
            return;
        if (rc < 0)
            cr_log_warn("log descriptors from the master: a bad message, ignored");
    }
}

/* ------------------------------------------------------------ ready */

/* The master lets a reload's old generation go once every new worker says
 * it is ready: listening (from the start) and its upstream pool connected,
 * or given up on for now (it keeps trying), or connect_timeout gone by.
 * One byte on the log channel, checked every 10 ms until then. */
struct ready_watch {
    struct cr_worker *w;
    struct event *ev;
    uint64_t since_us;
};

static void check_ready(evutil_socket_t fd, short what, void *arg)
{
    struct ready_watch *rw = arg;
    struct cr_worker *w = rw->w;
    (void)fd, (void)what;
    bool ready = cr_pool_capacity(w->pool) > 0 || !cr_pool_available(w->pool) ||
                 cr_now_us() - rw->since_us >= w->cfg->upstream.connect_timeout_ms * 1000;
    if (!ready && !w->draining) {
        static const struct timeval tick = {0, 10000};
        evtimer_add(rw->ev, &tick);
        return;
    }
    if (w->setup->log_chan >= 0 && send(w->setup->log_chan, "R", 1, MSG_DONTWAIT) < 0)
        cr_log_debug("cannot tell the master this worker is ready: %s", strerror(errno));
}

/* ------------------------------------------------------------ run */

static int drop_privileges(const struct cr_worker_setup *s)
{
    if (s->gid != (gid_t)-1 && (setgroups(0, NULL) < 0 || setgid(s->gid) < 0)) {
        cr_log_error("cannot switch to group %d: %s", (int)s->gid, strerror(errno));
        return CR_EIO;
    }
    if (s->uid != (uid_t)-1 && setuid(s->uid) < 0) {
        cr_log_error("cannot switch to user %d: %s", (int)s->uid, strerror(errno));
        return CR_EIO;
    }
    /* a change of credentials clears the parent-death signal: set it again,
     * so that a worker never outlives a master that crashed */
    if ((s->uid != (uid_t)-1 || s->gid != (gid_t)-1) &&
        (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)) {
        cr_log_error("the master is gone, or the parent-death signal cannot be set: exiting");
        return CR_EIO;
    }
    return 0;
}

int cr_worker_run(const struct cr_worker_setup *s)
{
    char role[32];
    int rc = 1;
    struct cr_worker w = {0};
    struct event *sigterm = NULL, *sigusr1 = NULL, *logchan = NULL;
    struct ready_watch rw = {.w = &w};

    snprintf(role, sizeof(role), "worker %d", s->id);
    cr_log_set_role(role);
    signal(SIGINT, SIG_IGN); /* a terminal's Ctrl-C is the master's to handle */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR2, SIG_IGN); /* the master's: a drain (kill -USR2 to every corral) */
    signal(SIGPIPE, SIG_IGN);
    if (drop_privileges(s) < 0)
        return 2;

    w.cfg = s->cfg;
    w.setup = s;
    w.id = s->id;
    w.stats = &s->shm->workers[(s->id - 1) % CR_SHM_MAX_WORKERS];
    w.lstats = s->shm->listeners[(s->id - 1) % CR_SHM_MAX_WORKERS];
    w.upstats = s->shm->upstreams[(s->id - 1) % CR_SHM_MAX_WORKERS];
    w.topen = s->shm->tenant_open[(s->id - 1) % CR_SHM_MAX_WORKERS];
    w.max_conns = cr_worker_conn_limit(s->cfg, cr_worker_nofile());
    atomic_store(&w.stats->conns_max, (uint64_t)w.max_conns);
    LIST_INIT(&w.conns);
    TAILQ_INIT(&w.defer_now.items);
    TAILQ_INIT(&w.defer_late.items);

    /* Priorities (worker.h): open connections' I/O first, then their
     * flushes and the timers, then accepting and handshakes, so under CPU
     * pressure requests on open connections go first and an RSA-4096 flood
     * cannot starve them (cr_conn_promote). libevent runs every active
     * event of a level before it polls again: at the handshakes' level it
     * polls after each one, so that a request waits behind one signature,
     * not behind all the ClientHellos that came in together. */
    struct event_config *ec = event_config_new();
    if (!ec || event_config_set_max_dispatch_interval(ec, NULL, 1, CR_EVPRIO_NEW) < 0) {
        event_config_free(ec);
        goto out;
    }
    w.base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w.base || event_base_priority_init(w.base, CR_EVPRIO_COUNT) < 0)
        goto out;
    w.defer_now.ev = event_new(w.base, -1, 0, run_now, &w);
    w.defer_late.ev = event_new(w.base, -1, 0, run_late, &w);
    w.late_guard = evtimer_new(w.base, run_late, &w);
    if (!w.defer_now.ev || !w.defer_late.ev || !w.late_guard)
        goto out_base;
    event_priority_set(w.defer_now.ev, CR_EVPRIO_IO);
    event_priority_set(w.defer_late.ev, CR_EVPRIO_DEFAULT);
    event_priority_set(w.late_guard, CR_EVPRIO_IO);
    sigterm = evsignal_new(w.base, SIGTERM, on_signal, &w);
    sigusr1 = evsignal_new(w.base, SIGUSR1, on_signal, &w);
    w.slots = calloc(s->cfg->nlisteners, sizeof(*w.slots));
    if (!sigterm || !sigusr1 || !w.slots)
        goto out_base;
    event_add(sigterm, NULL);
    event_add(sigusr1, NULL);
    if (s->log_chan >= 0) {
        logchan = event_new(w.base, s->log_chan, EV_READ | EV_PERSIST, on_log_chan, &w);
        if (!logchan)
            goto out_base;
        event_add(logchan, NULL);
    }
    if (cr_gate_new(&w, &w.gate) < 0 || cr_pool_new(&w, &w.pool) < 0)
        goto out_base;
    cr_pool_start(w.pool);
    for (size_t i = 0; i < s->cfg->nlisteners; i++) {
        struct cr_listen_slot *slot = &w.slots[i];
        *slot = (struct cr_listen_slot){.w = &w, .index = i,
                                        .max = s->cfg->listeners[i].tls.max_handshakes};
        TAILQ_INIT(&slot->hs_waiting);
        slot->l = cr_listener_start(w.base, s->listen_fds[i], CR_EVPRIO_NEW, on_accept, slot);
        if (!slot->l)
            goto out_pool;
    }
    if (s->admin_fd >= 0 && cr_admin_start(&w, s->admin_fd) < 0)
        goto out_pool;
    rw.since_us = cr_now_us();
    if (!(rw.ev = evtimer_new(w.base, check_ready, &rw)))
        goto out_pool;
    check_ready(-1, 0, &rw);
    cr_log_debug("serving (generation %llu)", (unsigned long long)s->generation);
    event_base_dispatch(w.base);
    rc = 0;
    cr_log_info("stopped");
    /* the gauges in shared memory lose this worker's share (the pool is
     * not freed: see below) */
    cr_gate_unpublish(w.gate);
    for (size_t i = 0; cr_pool_conn(w.pool, i); i++)
        cr_upconn_unpublish(cr_pool_conn(w.pool, i));
    cr_pool_unpublish_held(w.pool);
    /* Below, the worker frees only what it must: the process exits. Here
     * everything it still holds is reachable from w, so whatever a leak
     * checker finds now was lost while serving (sanitizer builds only). */
    cr_leak_check();
out_pool:
    /* its upstream connections go with the process: /health must not count
     * them (the statistics slot outlives it) */
    atomic_fetch_sub(&w.stats->upstream_ready, w.up_ready);
    if (rw.ev)
        event_free(rw.ev);
    for (size_t i = 0; i < s->cfg->nlisteners; i++)
        cr_listener_free(w.slots[i].l);
    /* connections, the gate and the pool are not freed one by one: the process exits
     * and the kernel closes every socket */
out_base:
    free(w.slots);
    if (sigterm)
        event_free(sigterm);
    if (sigusr1)
        event_free(sigusr1);
    if (logchan)
        event_free(logchan);
out:
    return rc;
}
