/* pool.c - the pipeliner: persistent upstream connections, stream
 * placement, reconnect back-off, retries.
 *
 * A request reaches the pool admitted by the gate (gate.h), which asks the
 * pool how many streams its connections can carry (cr_pool_capacity); the
 * pool places it on the connection with the most room, and tells the gate
 * when a stream ends or a connection comes or goes. */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gate.h"
#include "log.h"
#include "rand.h"
#include "upstream.h"

struct slot {
    struct cr_upconn *c;
    uint64_t backoff_ms;      /* the next wait before reconnecting */
    bool failing;             /* its last attempt or connection failed */
};

/* A connection the pool holds outside its slots: a tunnel's own
 * (cr_pool_tunnel), or a slot's that the upstream GOAWAY'd with streams
 * still on it and that a new one replaced (cr_pool_goaway). */
struct tunnel {
    struct cr_upconn *c;
    struct cr_pool *p;
    struct cr_deferred gone;  /* frees it once its loss's callbacks are over */
    TAILQ_ENTRY(tunnel) link;
};
TAILQ_HEAD(tunnel_q, tunnel);

struct cr_pool {
    struct cr_worker *w;
    struct slot *slots;
    size_t nslots;
    struct tunnel_q tunnels;  /* open or connecting: counted by tunnel_connections */
    struct tunnel_q retired;  /* GOAWAY'd slot connections, their streams going on */
    struct tunnel_q dead;     /* lost, to be freed */
    uint32_t ntunnels;
    uint32_t next_addr;       /* round robin of the tunnels' addresses */
    struct cr_tls_sessions *tunnel_sess; /* per address: the tunnel
                                            connections' sessions (tls.h) */
    size_t naddrs;            /* of tunnel_sess */
    bool draining;
    uint64_t outage_until_us; /* requests may wait for the upstream until then */
    struct cr_rand rng;       /* reconnect jitter */
};

static uint64_t jitter(struct cr_pool *p, uint64_t ms)
{
    /* +-25%: reconnecting workers must not hit the LB in lockstep */
    uint64_t span = ms / 2 + 1;
    return ms - ms / 4 + cr_rand_next(&p->rng) % span;
}

/* ------------------------------------------------------------ placement */

/* The connection with the most free streams, or NULL. */
static struct cr_upconn *pick(struct cr_pool *p)
{
    struct cr_upconn *best = NULL;
    uint32_t best_room = 0;
    for (size_t i = 0; i < p->nslots; i++) {
        uint32_t room = cr_upconn_room(p->slots[i].c);
        if (room > best_room) {
            best = p->slots[i].c;
            best_room = room;
        }
    }
    return best;
}

/* What the READY connections offer requests (cr_pool_capacity before
 * max_streams), had one more stream of `moved` moved; and the requests
 * that GOAWAY'd connections outside the slots still carry, which the
 * gate counts in flight (they leave with them). */
static uint32_t raw_capacity(const struct cr_pool *p, const struct cr_upconn *moved)
{
    uint32_t cap = 0;
    const struct tunnel *t;
    for (size_t i = 0; i < p->nslots; i++)
        if (cr_upconn_state(p->slots[i].c) == CR_UP_READY)
            cap += cr_upconn_request_room(p->slots[i].c, p->slots[i].c == moved ? 1 : 0);
    TAILQ_FOREACH(t, &p->retired, link)
        cap += cr_upconn_request_room(t->c, t->c == moved ? 1 : 0);
    return cap;
}

uint32_t cr_pool_capacity(const struct cr_pool *p)
{
    uint32_t cap, max = p->w->cfg->upstream.max_streams;
    if (p->draining)
        return 0;
    cap = raw_capacity(p, NULL);
    return max && cap > max ? max : cap;
}

bool cr_pool_may_move(const struct cr_pool *p, const struct cr_request *r)
{
    uint32_t max = p->w->cfg->upstream.max_streams;
    if (!r->up)
        return false;
    return max == 0 || raw_capacity(p, r->up) >= max;
}

int cr_pool_place(struct cr_pool *p, struct cr_request *r)
{
    struct cr_upconn *c = pick(p);
    return c ? cr_upconn_submit(c, r) : CR_EAGAIN;
}

/* Will some connection be able to take streams soon? A connection being
 * replaced after a clean close counts; one that keeps failing does not,
 * so an unreachable upstream gets a fast 502 instead of a wait. */
bool cr_pool_available(const struct cr_pool *p)
{
    for (size_t i = 0; i < p->nslots; i++) {
        enum cr_up_state s = cr_upconn_state(p->slots[i].c);
        if (s == CR_UP_READY || ((s == CR_UP_CONNECTING || s == CR_UP_HANDSHAKE ||
                                  s == CR_UP_IDLE) && !p->slots[i].failing))
            return true;
    }
    return false;
}

uint64_t cr_pool_outage_until(const struct cr_pool *p)
{
    return p->outage_until_us;
}

static struct slot *slot_of(struct cr_pool *p, const struct cr_upconn *c)
{
    for (size_t i = 0; i < p->nslots; i++)
        if (p->slots[i].c == c)
            return &p->slots[i];
    return NULL;
}

/* ------------------------------------------------------------ tunnels */

static void tunnel_free(void *arg)
{
    struct tunnel *t = arg;
    TAILQ_REMOVE(&t->p->dead, t, link);
    cr_upconn_free(t->c);
    free(t);
}

/* A connection held outside the slots is gone (a tunnel's exchange ended,
 * a retired one's last stream did, or it failed): it is freed from the
 * loop, outside the callbacks that told of its loss. Returns whether c is
 * such a connection. */
static bool held_lost(struct cr_pool *p, struct cr_upconn *c)
{
    bool tunnel = cr_upconn_is_tunnel(c);
    struct tunnel_q *q = tunnel ? &p->tunnels : &p->retired;
    struct tunnel *t;
    TAILQ_FOREACH(t, q, link)
        if (t->c == c)
            break;
    if (!t)
        return tunnel;
    TAILQ_REMOVE(q, t, link);
    TAILQ_INSERT_TAIL(&p->dead, t, link);
    if (tunnel) {
        p->ntunnels--;
        atomic_fetch_sub_explicit(&p->w->stats->tunnel_connections, 1, memory_order_relaxed);
    }
    cr_worker_defer(p->w, &t->gone);
    if (p->draining && cr_pool_idle(p))
        cr_worker_pool_idle(p->w);
    return true;
}

/* The pool connection with the most room among those whose peer takes
 * extended CONNECT (RFC 8441) and whose tunnels hold less than half of
 * its streams (its limit: those open and its room), or NULL: tunnels,
 * which last, never take a connection's request capacity whole. */
static struct cr_upconn *pick_ext_connect(struct cr_pool *p)
{
    struct cr_upconn *best = NULL;
    uint32_t best_room = 0;
    for (size_t i = 0; i < p->nslots; i++) {
        struct cr_upconn *c = p->slots[i].c;
        uint32_t room = cr_upconn_ext_connect(c) ? cr_upconn_room(c) : 0;
        uint32_t limit = cr_upconn_inflight(c) + room;
        if (room > best_room && cr_upconn_tunnel_streams(c) < limit / 2) {
            best = c;
            best_room = room;
        }
    }
    return best;
}

int cr_pool_tunnel(struct cr_pool *p, struct cr_request *r)
{
    const struct cr_cfg_upstream *uc = &p->w->cfg->upstream;
    if (p->draining)
        return CR_EAGAIN;
    /* an upstream that speaks RFC 8441 carries it as a stream of a pool
     * connection: no connection of its own, no TLS handshake */
    struct cr_upconn *c = pick_ext_connect(p);
    if (c && cr_upconn_submit(c, r) == 0)
        return 0;
    if (p->ntunnels >= uc->tunnel_connections)
        return CR_ELIMIT;
    struct tunnel *t = calloc(1, sizeof(*t));
    if (!t)
        return CR_ENOMEM;
    size_t a = p->next_addr++ % uc->naddrs;
    t->c = cr_upconn_new_tunnel(p->w, p, &uc->addrs[a], &p->tunnel_sess[a]);
    if (!t->c) {
        free(t);
        return CR_ENOMEM;
    }
    t->p = p;
    t->gone = (struct cr_deferred){.cb = tunnel_free, .arg = t};
    TAILQ_INSERT_TAIL(&p->tunnels, t, link);
    p->ntunnels++;
    atomic_fetch_add_explicit(&p->w->stats->tunnel_connections, 1, memory_order_relaxed);
    cr_upconn_open_tunnel(t->c, r); /* r may be answered (502) and t lost on return */
    return 0;
}

uint32_t cr_pool_tunnels(const struct cr_pool *p)
{
    return p->ntunnels;
}

void cr_pool_unpublish_held(struct cr_pool *p)
{
    struct tunnel *t;
    TAILQ_FOREACH(t, &p->tunnels, link)
        cr_upconn_unpublish(t->c);
    TAILQ_FOREACH(t, &p->retired, link)
        cr_upconn_unpublish(t->c);
    TAILQ_FOREACH(t, &p->dead, link)
        cr_upconn_unpublish(t->c);
    atomic_fetch_sub_explicit(&p->w->stats->tunnel_connections, p->ntunnels, memory_order_relaxed);
}

/* ------------------------------------------------------------ API */

int cr_pool_new(struct cr_worker *w, struct cr_pool **out)
{
    const struct cr_cfg_upstream *uc = &w->cfg->upstream;
    struct cr_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return CR_ENOMEM;
    p->w = w;
    TAILQ_INIT(&p->tunnels);
    TAILQ_INIT(&p->retired);
    TAILQ_INIT(&p->dead);
    cr_rand_seed_random(&p->rng); /* the back-off's jitter: its own in each worker */
    p->nslots = uc->connections;
    p->slots = calloc(p->nslots, sizeof(*p->slots));
    p->tunnel_sess = calloc(uc->naddrs, sizeof(*p->tunnel_sess));
    if (!p->slots || !p->tunnel_sess)
        goto fail;
    p->naddrs = uc->naddrs;
    for (size_t i = 0; i < p->naddrs; i++)
        cr_tls_sessions_init(&p->tunnel_sess[i], CR_TLS_SESSIONS_MAX);
    for (size_t i = 0; i < p->nslots; i++) {
        p->slots[i].backoff_ms = uc->reconnect_min_ms;
        p->slots[i].c = cr_upconn_new(w, p, &uc->addrs[i % uc->naddrs]);
        if (!p->slots[i].c)
            goto fail;
    }
    *out = p;
    return 0;
fail:
    cr_pool_free(p);
    return CR_ENOMEM;
}

void cr_pool_start(struct cr_pool *p)
{
    for (size_t i = 0; i < p->nslots; i++)
        cr_upconn_connect(p->slots[i].c, 0);
}

void cr_pool_free(struct cr_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->slots && i < p->nslots; i++)
        cr_upconn_free(p->slots[i].c);
    struct tunnel *t;
    TAILQ_CONCAT(&p->tunnels, &p->dead, link);
    TAILQ_CONCAT(&p->tunnels, &p->retired, link);
    while ((t = TAILQ_FIRST(&p->tunnels)) != NULL) {
        TAILQ_REMOVE(&p->tunnels, t, link);
        cr_worker_undefer(p->w, &t->gone);
        cr_upconn_free(t->c);
        free(t);
    }
    for (size_t i = 0; p->tunnel_sess && i < p->naddrs; i++)
        cr_tls_sessions_clear(&p->tunnel_sess[i]);
    free(p->tunnel_sess);
    free(p->slots);
    free(p);
}

struct cr_upconn *cr_pool_conn(const struct cr_pool *p, size_t i)
{
    return i < p->nslots ? p->slots[i].c : NULL;
}

/* The request is done upstream (answered, failed, or cancelled): its
 * capacity unit goes back to the engine and the back end lets go. */
void cr_pool_done(struct cr_pool *p, struct cr_request *r)
{
    struct cr_gate *g = p->w->gate;
    cr_gate_done(g, r);
    cr_request_release_be(r);
    cr_gate_dispatch(g);
    if (p->draining && cr_pool_idle(p))
        cr_worker_pool_idle(p->w); /* may end the loop (a break, nothing freed) */
}

void cr_pool_room(struct cr_pool *p, struct cr_upconn *c)
{
    struct slot *s = slot_of(p, c);
    /* It is up, so requests may wait for it; the back-off is kept until it
     * proves itself (cr_pool_lost): an upstream that closes every new
     * connection must not reset it with each handshake. */
    if (s && s->failing && cr_upconn_state(c) == CR_UP_READY)
        s->failing = false;
    cr_gate_dispatch(p->w->gate);
    /* (a GOAWAY'd one closes by itself once empty, and must: a retired
     * one is freed by its loss, which cr_upconn_retire would silence) */
    if (p->draining && cr_upconn_inflight(c) == 0 && cr_upconn_state(c) != CR_UP_GOAWAY)
        cr_upconn_retire(c);
}

/* Slot s lost its connection old (gone, or GOAWAY'd and held outside the
 * slots): next (old itself, or its replacement) connects, at once or after
 * the slot's back-off, and the gate learns when nothing is coming. Returns
 * the wait, in ms. */
static uint64_t slot_reconnect(struct cr_pool *p, struct slot *s, const struct cr_upconn *old,
                               struct cr_upconn *next, enum cr_pool_loss how)
{
    const struct cr_cfg_upstream *uc = &p->w->cfg->upstream;
    uint64_t now = cr_now_us();
    cr_gate_capacity_changed(p->w->gate);
    bool proven = cr_upconn_proven(old, uc->reconnect_max_ms);
    if (proven) {
        s->backoff_ms = uc->reconnect_min_ms;
        /* a connection that worked is gone: what comes meanwhile may wait
         * outage_wait for its replacement (an upstream that never served,
         * or closes every new connection, opens no such window) */
        if (uc->outage_wait_ms)
            p->outage_until_us = CR_MAX(p->outage_until_us, now + uc->outage_wait_ms * 1000);
    }
    if (how == CR_POOL_LOST_RECYCLED || (how == CR_POOL_LOST_CLOSED && proven)) {
        cr_upconn_connect(next, 0); /* it worked: replace it now */
        return 0;
    }
    /* A clean close of a young connection, the first in a row (a load
     * balancer being redeployed sends its new connection GOAWAY too): it
     * backs off, but requests keep waiting for it. Only a second one, or a
     * failure, tells the gate that nothing is coming. */
    s->failing = !(how == CR_POOL_LOST_CLOSED && s->backoff_ms <= uc->reconnect_min_ms);
    /* While requests may be waiting for it, the wait is kept short enough
     * to try several times within outage_wait; the back-off itself keeps
     * growing, and applies once the window has passed. */
    uint64_t wait = s->backoff_ms;
    if (p->outage_until_us > now)
        wait = CR_MIN(wait, CR_MAX(uc->reconnect_min_ms, uc->outage_wait_ms / 8));
    uint64_t delay = jitter(p, wait);
    s->backoff_ms = CR_MIN(s->backoff_ms * 2, uc->reconnect_max_ms);
    cr_upconn_connect(next, delay);
    if (!cr_pool_available(p))
        cr_gate_upstream_down(p->w->gate);
    return delay;
}

void cr_pool_lost(struct cr_pool *p, struct cr_upconn *c, enum cr_pool_loss how)
{
    struct slot *s = slot_of(p, c);
    if (held_lost(p, c))
        return;
    if (!s || p->draining)
        return;
    slot_reconnect(p, s, c, c, how);
}

void cr_pool_goaway(struct cr_pool *p, struct cr_upconn *c)
{
    const struct cr_cfg_upstream *uc = &p->w->cfg->upstream;
    struct slot *s = slot_of(p, c);
    if (!s || p->draining || cr_upconn_inflight(c) == 0)
        return; /* it closes at once: cr_pool_lost's business */
    struct tunnel *t = calloc(1, sizeof(*t));
    size_t i = (size_t)(s - p->slots);
    struct cr_upconn *fresh = t ? cr_upconn_new(p->w, p, &uc->addrs[i % uc->naddrs]) : NULL;
    if (!fresh) {
        free(t);
        return; /* it keeps the slot until its streams end, as it would */
    }
    *t = (struct tunnel){.c = c, .p = p, .gone = {.cb = tunnel_free, .arg = t}};
    TAILQ_INSERT_TAIL(&p->retired, t, link);
    s->c = fresh;
    /* as if c were lost now, a clean close: a load balancer that GOAWAYs
     * every new connection gets the back-off and, from the second in a
     * row, requests get their fast 502 as before */
    uint64_t delay = slot_reconnect(p, s, c, fresh, CR_POOL_LOST_CLOSED);
    cr_log_info("upstream %s: a GOAWAY'd connection still carries %u stream(s): a new one "
                "takes its place meanwhile (in %llu ms)",
                uc->addrs[i % uc->naddrs].text, cr_upconn_inflight(c), (unsigned long long)delay);
}

void cr_pool_stream_failed(struct cr_pool *p, struct cr_request *r, bool refused)
{
    /* Retry, elsewhere, only what cannot have had an effect twice (a
     * stream the server refused, or an idempotent request: never a POST),
     * whose response had not started and whose body, if any, is still whole
     * in our buffer (no byte of it went to the dead stream, refused or not). Twice at
     * most: an upstream process that dies closes its connections one after
     * the other, so the first retry can land on one about to go. The retry
     * keeps its admission: it needs a connection with room now, or it
     * queues again (and may wait out an outage, cr_pool_outage_until). */
    if (r->up_cancelled) { /* nobody waits for it: its slot comes back */
        cr_pool_done(p, r);
        return;
    }
    /* refused or not, a body byte already handed to the dead stream is
     * gone from r->req_body: a retry would carry the rest of the body only */
    bool safe = (refused || r->idempotent) && r->req_sent == 0 && !r->upgrade;
    if (r->fe && r->state < CR_REQ_RESPONDING && safe && r->retries < 2 && !p->draining) {
        /* the upstream may have died with all its connections: those the
         * loop has not got to yet must not take the one retry */
        for (size_t i = 0; i < p->nslots; i++)
            if (cr_upconn_check_hangup(p->slots[i].c))
                cr_gate_capacity_changed(p->w->gate);
        struct cr_upconn *c = pick(p);
        r->retries++;
        if (r->up_addr > 0)
            atomic_fetch_add_explicit(&p->w->upstats[r->up_addr - 1].retries, 1,
                                      memory_order_relaxed);
        r->status = 0;
        cr_request_reset_rheaders(r);
        if (c && cr_upconn_submit(c, r) == 0) {
            cr_log_debug("retried %s %s on another upstream connection", r->method, r->path);
            return;
        }
        /* no room right now: it queues again like a new arrival */
        cr_gate_readmit(p->w->gate, r);
        return;
    }
    if (r->state < CR_REQ_RESPONDING && r->fe) {
        cr_gate_done(p->w->gate, r);
        cr_request_be_respond(r, 502, "upstream connection lost", NULL);
        cr_gate_dispatch(p->w->gate);
        return;
    }
    /* the response had started: break it so the client sees a truncation */
    r->reason = "upstream connection lost";
    r->resp_aborted = true;
    r->resp_eof = true;
    cr_request_notify_end(r);
    cr_pool_done(p, r);
}

/* The front end let go (or r was answered locally) while r is carried
 * upstream. Its capacity unit and its tenant's slot stay taken until the
 * upstream ends the exchange (cr_up_stream_done, or the connection's loss,
 * both reaching cr_pool_stream_failed/cr_pool_done): admission must never
 * hand out more than the load balancer is working on, and the load balancer
 * goes on with a request whatever the client does. */
void cr_pool_cancel(struct cr_pool *p, struct cr_request *r)
{
    if (r->up) {
        cr_upconn_cancel(r->up, r); /* r may be gone on return */
        return;
    }
    cr_pool_done(p, r);
}

void cr_pool_response_head(struct cr_pool *p, struct cr_request *r)
{
    cr_gate_response_head(p->w->gate, r);
}

void cr_pool_stream_moved(struct cr_pool *p, struct cr_request *r)
{
    if (r->up)
        cr_upconn_stream_moved(r->up);
    (void)p;
}

void cr_pool_req_body(struct cr_request *r)
{
    if (r->up)
        cr_upconn_resume(r->up, r);
}

void cr_pool_resp_consumed(struct cr_request *r, size_t n)
{
    if (r->up)
        cr_upconn_consumed(r->up, r, n);
}

void cr_pool_drain(struct cr_pool *p)
{
    p->draining = true;
    for (size_t i = 0; i < p->nslots; i++)
        if (cr_upconn_inflight(p->slots[i].c) == 0)
            cr_upconn_retire(p->slots[i].c);
}

bool cr_pool_idle(const struct cr_pool *p)
{
    const struct tunnel *t;
    if (p->ntunnels)
        return false;
    TAILQ_FOREACH(t, &p->retired, link)
        if (cr_upconn_inflight(t->c))
            return false;
    for (size_t i = 0; i < p->nslots; i++)
        if (cr_upconn_inflight(p->slots[i].c))
            return false;
    return true;
}
