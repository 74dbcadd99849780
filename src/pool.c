/* pool.c - the pipeliner: persistent upstream connections, admission in
 * front of them, stream placement, reconnect back-off, retries.
 *
 * A request that reaches the pool has a tenant and a priority. The
 * admission engine (admit.h) decides whether it goes upstream now, waits in
 * its tenant's queue, or is refused; the pool tells the engine how many
 * streams its connections can carry (capacity) and places each admitted
 * request on the connection with the most room. */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "log.h"
#include "upstream.h"

struct slot {
    struct cr_upconn *c;
    uint64_t backoff_ms;      /* the next wait before reconnecting */
    bool failing;             /* its last attempt or connection failed */
};

struct cr_pool {
    struct cr_worker *w;
    struct slot *slots;
    size_t nslots;
    struct cr_tenants *tenants;
    struct cr_admit *admit;
    struct event *admit_tmr;  /* the engine's next wakeup */
    uint32_t waiting;         /* requests queued in admission */
    bool draining;
    uint64_t rng;
    char tenant_header[128]; /* tenants.header lower-cased once, "" if none */
};

static void dispatch_ready(struct cr_pool *p);

static uint64_t jitter(struct cr_pool *p, uint64_t ms)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    /* +-25%: reconnecting workers must not hit the LB in lockstep */
    uint64_t span = ms / 2 + 1;
    return ms - ms / 4 + p->rng % span;
}

static struct cr_shm_tenant_stats *tstats(struct cr_pool *p, const struct cr_request *r)
{
    return &p->w->setup->shm->tenants[r->tenant->index % CR_ADMIT_MAX_TENANTS];
}

/* ------------------------------------------------------------ answers */

static void shed(struct cr_pool *p, struct cr_request *r, const struct cr_admit_shed *why)
{
    char retry[16];
    snprintf(retry, sizeof(retry), "%u", why->retry_after_s);
    const char *extra[] = {"retry-after", retry, NULL};
    atomic_fetch_add(&tstats(p, r)->shed[why->kind], 1);
    cr_request_be_respond(r, why->status, why->reason, extra); /* it never went upstream */
}

/* ------------------------------------------------------------ timer */

static void arm_admit_timer(struct cr_pool *p)
{
    uint64_t at = cr_admit_next_wakeup(p->admit);
    if (at == UINT64_MAX) {
        evtimer_del(p->admit_tmr);
        return;
    }
    uint64_t now = cr_now_us();
    uint64_t left = at > now ? at - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000000), .tv_usec = (suseconds_t)(left % 1000000)};
    evtimer_add(p->admit_tmr, &tv);
}

static void on_admit_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cr_pool *p = arg;
    struct cr_admit_shed why;
    struct cr_admit_item *it;
    while ((it = cr_admit_expire(p->admit, cr_now_us(), &why)) != NULL) {
        struct cr_request *r = it->owner;
        p->waiting--;
        shed(p, r, &why);
    }
    dispatch_ready(p);
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

/* What the connections can carry now: streams in flight plus room, at
 * most upstream.max_streams for the worker when it is set. */
static void update_capacity(struct cr_pool *p)
{
    uint32_t cap = 0, max = p->w->cfg->upstream.max_streams;
    for (size_t i = 0; i < p->nslots; i++)
        if (cr_upconn_state(p->slots[i].c) == CR_UP_READY)
            cap += cr_upconn_inflight(p->slots[i].c) + cr_upconn_room(p->slots[i].c);
    if (max && cap > max)
        cap = max;
    cr_admit_set_capacity(p->admit, p->draining ? 0 : cap);
}

/* Puts an admitted request on a connection; it is in flight for the
 * engine until cr_pool_finish. */
static void send_upstream(struct cr_pool *p, struct cr_request *r)
{
    struct cr_upconn *c = pick(p);
    atomic_fetch_add(&tstats(p, r)->admitted, 1);
    if (!c || cr_upconn_submit(c, r) < 0) {
        /* capacity said yes and no connection has room: only a connection
         * lost between the two can do that */
        cr_admit_done(p->admit, &r->admit, cr_now_us());
        cr_request_be_respond(r, 502, "upstream connection lost", NULL);
    }
}

/* Sends every queued request the engine lets go now (one clock read for
 * the lot: they leave in the same write). */
static void dispatch_ready(struct cr_pool *p)
{
    struct cr_admit_item *it;
    update_capacity(p);
    if (p->waiting == 0) { /* the common case: nothing queued */
        arm_admit_timer(p);
        return;
    }
    uint64_t now = cr_now_us();
    while ((it = cr_admit_next(p->admit, now)) != NULL) {
        struct cr_request *r = it->owner;
        p->waiting--;
        r->t_dispatched = now;
        send_upstream(p, r);
    }
    arm_admit_timer(p);
}

/* Will some connection be able to take streams soon? A connection being
 * replaced after a clean close counts; one that keeps failing does not,
 * so an unreachable upstream gets a fast 502 instead of a wait. */
static bool any_coming(const struct cr_pool *p)
{
    for (size_t i = 0; i < p->nslots; i++) {
        enum cr_up_state s = cr_upconn_state(p->slots[i].c);
        if (s == CR_UP_READY || ((s == CR_UP_CONNECTING || s == CR_UP_HANDSHAKE ||
                                  s == CR_UP_IDLE) && !p->slots[i].failing))
            return true;
    }
    return false;
}

static struct slot *slot_of(struct cr_pool *p, const struct cr_upconn *c)
{
    for (size_t i = 0; i < p->nslots; i++)
        if (p->slots[i].c == c)
            return &p->slots[i];
    return NULL;
}

/* ------------------------------------------------------------ API */

int cr_pool_new(struct cr_worker *w, struct cr_pool **out)
{
    const struct cr_cfg_upstream *uc = &w->cfg->upstream;
    struct cr_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return CR_ENOMEM;
    p->w = w;
    p->rng = cr_now_us() * 2654435761u + (uint64_t)w->id;
    p->nslots = uc->connections;
    const char *th = w->cfg->tenants.header;
    for (size_t i = 0; th && th[i] && i < sizeof(p->tenant_header) - 1; i++)
        p->tenant_header[i] = (char)(th[i] >= 'A' && th[i] <= 'Z' ? th[i] + 32 : th[i]);
    p->slots = calloc(p->nslots, sizeof(*p->slots));
    p->admit_tmr = evtimer_new(w->base, on_admit_timer, p);
    if (!p->slots || !p->admit_tmr || cr_tenants_new(&w->cfg->tenants, &p->tenants) < 0 ||
        cr_admit_new(p->tenants, &w->setup->shm->admit, w->cfg->workers,
                     p->rng ^ (uint64_t)getpid(), &p->admit) < 0)
        goto fail;
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
    free(p->slots);
    if (p->admit_tmr)
        event_free(p->admit_tmr);
    cr_admit_free(p->admit);
    cr_tenants_free(p->tenants);
    free(p);
}

struct cr_upconn *cr_pool_conn(const struct cr_pool *p, size_t i)
{
    return i < p->nslots ? p->slots[i].c : NULL;
}

void cr_pool_classify(struct cr_pool *p, struct cr_request *r, const char *sni)
{
    /* matched, logged and forwarded in one form, so that the upstream
     * serves the path that was given its tenant and priority */
    cr_tenants_normalize_path(r->path);
    struct cr_tenant_key key = {.sni = sni, .path = r->path};
    if (p->tenant_header[0]) {
        const struct cr_hdr *h = cr_request_hdr(r, p->tenant_header);
        key.header_value = h ? h->value : NULL;
    }
    r->tenant = cr_tenants_identify(p->tenants, &key);
    r->prio = cr_tenants_priority(p->tenants, r->path);
}

void cr_pool_submit(struct cr_pool *p, struct cr_request *r)
{
    if (!any_coming(p)) {
        cr_request_be_respond(r, 502, "upstream unavailable", NULL);
        return;
    }
    struct cr_admit_shed why;
    uint64_t now = cr_now_us();
    cr_admit_item_init(&r->admit, r);
    update_capacity(p);
    switch (cr_admit_arrive(p->admit, &r->admit, r->tenant, r->prio, now, &why)) {
    case CR_ADMIT_GO:
        send_upstream(p, r);
        break;
    case CR_ADMIT_QUEUED:
        if (p->waiting >= p->w->cfg->upstream.queue && r->prio != CR_PRIO_HIGH) {
            /* the worker-wide bound, which high priority may exceed */
            cr_admit_cancel(p->admit, &r->admit);
            why = (struct cr_admit_shed){503, CR_ADMIT_SHED_SATURATED, "upstream queue full", 1};
            shed(p, r, &why);
            break;
        }
        cr_request_set_state(r, CR_REQ_QUEUED);
        r->t_queued = now;
        p->waiting++;
        atomic_fetch_add(&tstats(p, r)->queued, 1);
        arm_admit_timer(p);
        break;
    case CR_ADMIT_SHED:
        shed(p, r, &why);
        break;
    }
}

/* The request is done upstream (answered, failed, or cancelled): its
 * capacity unit goes back to the engine and the back end lets go. */
void cr_pool_done(struct cr_pool *p, struct cr_request *r)
{
    cr_admit_done(p->admit, &r->admit, cr_now_us());
    cr_request_release_be(r);
    dispatch_ready(p);
}

void cr_pool_room(struct cr_pool *p, struct cr_upconn *c)
{
    struct slot *s = slot_of(p, c);
    /* It is up, so requests may wait for it; the back-off is kept until it
     * proves itself (cr_pool_lost): an upstream that closes every new
     * connection must not reset it with each handshake. */
    if (s && s->failing && cr_upconn_state(c) == CR_UP_READY)
        s->failing = false;
    dispatch_ready(p);
    if (p->draining && cr_upconn_inflight(c) == 0)
        cr_upconn_retire(c);
}

/* Requests waiting for an upstream that keeps failing are answered now. */
static void fail_waiting(struct cr_pool *p)
{
    struct cr_admit_item *it;
    struct cr_admit_shed why;
    /* expiring everything: a deadline in the far future is passed */
    while (p->waiting && (it = cr_admit_expire(p->admit, UINT64_MAX - 1, &why)) != NULL) {
        struct cr_request *r = it->owner;
        p->waiting--;
        cr_request_be_respond(r, 502, "upstream unavailable", NULL);
    }
    arm_admit_timer(p);
}

void cr_pool_lost(struct cr_pool *p, struct cr_upconn *c, enum cr_pool_loss how)
{
    const struct cr_cfg_upstream *uc = &p->w->cfg->upstream;
    struct slot *s = slot_of(p, c);
    if (!s || p->draining)
        return;
    update_capacity(p);
    bool proven = cr_upconn_proven(c, uc->reconnect_max_ms);
    if (proven)
        s->backoff_ms = uc->reconnect_min_ms;
    if (how == CR_POOL_LOST_RECYCLED || (how == CR_POOL_LOST_CLOSED && proven)) {
        cr_upconn_connect(c, 0); /* it worked: replace it now */
        return;
    }
    s->failing = true;
    uint64_t delay = jitter(p, s->backoff_ms);
    s->backoff_ms = CR_MIN(s->backoff_ms * 2, uc->reconnect_max_ms);
    cr_upconn_connect(c, delay);
    if (!any_coming(p))
        fail_waiting(p);
}

void cr_pool_stream_failed(struct cr_pool *p, struct cr_request *r, bool refused)
{
    /* Retry once, elsewhere, only what cannot have had an effect twice:
     * a stream the server refused, or an idempotent request (never a POST)
     * whose response had not started and whose body, if any, is still whole
     * in our buffer (no byte of it went to the dead connection). The retry
     * keeps its admission: it needs a connection with room now. */
    bool safe = refused || (r->idempotent && r->req_sent == 0);
    if (r->fe && r->state < CR_REQ_RESPONDING && safe && r->retries == 0 && !p->draining) {
        struct cr_upconn *c = pick(p);
        r->retries++;
        r->status = 0;
        cr_request_reset_rheaders(r);
        if (c && cr_upconn_submit(c, r) == 0) {
            cr_log_debug("retried %s %s on another upstream connection", r->method, r->path);
            return;
        }
        /* no room right now: it queues again like a new arrival (its
         * capacity unit goes back first), so a refused burst waits instead
         * of failing */
        cr_admit_done(p->admit, &r->admit, cr_now_us());
        cr_pool_submit(p, r);
        dispatch_ready(p);
        return;
    }
    if (r->state < CR_REQ_RESPONDING && r->fe) {
        cr_admit_done(p->admit, &r->admit, cr_now_us());
        cr_request_be_respond(r, 502, "upstream connection lost", NULL);
        dispatch_ready(p);
        return;
    }
    /* the response had started: break it so the client sees a truncation */
    r->reason = "upstream connection lost";
    r->resp_aborted = true;
    r->resp_eof = true;
    cr_request_notify_end(r);
    cr_pool_done(p, r);
}

void cr_pool_cancel(struct cr_request *r)
{
    struct cr_pool *p = r->w->pool;
    if (!r->be_held)
        return;
    if (r->state == CR_REQ_QUEUED && !r->up) {
        cr_admit_cancel(p->admit, &r->admit);
        p->waiting--;
        arm_admit_timer(p);
        cr_request_release_be(r); /* frees it when the client is gone */
        return;
    }
    if (r->up)
        cr_upconn_cancel(r->up, r);
    cr_pool_done(p, r);
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
    if (p->waiting)
        return false;
    for (size_t i = 0; i < p->nslots; i++)
        if (cr_upconn_inflight(p->slots[i].c))
            return false;
    return true;
}

const struct cr_tenants *cr_pool_tenants(const struct cr_pool *p)
{
    return p->tenants;
}
