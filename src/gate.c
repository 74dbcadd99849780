/* gate.c - admission in front of the upstream pool: the tenant table, the
 * admission engine and its timer, shedding, queued requests.
 *
 * The engine (admit.c) decides; this file does what it decides in the
 * worker: it answers refusals, counts them in shared memory, keeps the
 * engine's timer armed at cr_admit_next_wakeup and hands what may go to
 * the pool. */
#include "gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "adapt.h"
#include "admit.h"
#include "quota.h"
#include "common.h"
#include "gcra.h"
#include "log.h"
#include "pool.h"
#include "rand.h"

struct cr_gate {
    struct cr_worker *w;
    struct cr_tenants *tenants;
    struct cr_admit *admit;
    struct cr_quota *quota;  /* global rates (tenants.global) */
    struct event *tmr;       /* the engine's next wakeup */
    struct event *otmr;      /* the end of the pool's outage window */
    struct event *ftmr;      /* looks again at other generations' in flight */
    struct cr_shm_upflight *row; /* this worker slot's entries (shm.h) */
    struct cr_shm_upflight *own; /* this worker's, in row */
    char tenant_header[128]; /* tenants.header lower-cased once, "" if none */
    uint32_t published_cap;  /* this worker's share of stats->admit_capacity */
    struct cr_adapt *adapt;  /* upstream.adaptive, NULL when off */
    uint32_t published_limit; /* this worker's share of stats->adaptive_limit */
    uint32_t adapt_max;       /* the ceiling last given to adapt */
    /* the streaming class (cr_gate_response_head) */
    TAILQ_HEAD(, cr_request) watched;              /* heads come, not yet moved: by head time */
    struct event *stmr;                            /* the first watched one's streaming_after */
    uint32_t streaming_open[CR_ADMIT_MAX_TENANTS]; /* this worker's, by tenant */
    uint32_t streaming_total;                      /* their sum: upstream.max_streaming */
    uint32_t tunnels_open[CR_ADMIT_MAX_TENANTS]; /* this worker's, per tenant index */
};

static struct cr_shm_tenant_stats *tstats(struct cr_gate *g, const struct cr_request *r)
{
    return &g->w->setup->shm->tenants[r->tenant->index % CR_ADMIT_MAX_TENANTS];
}

static uint32_t waiting(const struct cr_gate *g)
{
    return cr_admit_queued(g->admit);
}

/* ------------------------------------------------------------ answers */

static void shed(struct cr_gate *g, struct cr_request *r, const struct cr_admit_shed *why)
{
    char retry[16];
    snprintf(retry, sizeof(retry), "%u", why->retry_after_s);
    const char *extra[] = {"retry-after", retry, NULL};
    atomic_fetch_add(&tstats(g, r)->shed[why->kind], 1);
    cr_request_be_respond(r, why->status, why->reason, extra); /* it never went upstream */
}

/* The upstream is down and the outage window, if any, is over: a fast
 * answer, 503 with Retry-After after an outage, 502 when nothing was
 * waited for. */
static void down(struct cr_gate *g, struct cr_request *r, struct cr_admit_shed *why)
{
    if (cr_pool_outage_until(g->w->pool) == 0) {
        cr_request_be_respond(r, 502, "upstream unavailable", NULL);
        return;
    }
    why->status = 503;
    why->reason = "upstream unavailable";
    why->retry_after_s = 1;
    shed(g, r, why);
}

/* ------------------------------------------------------------ timer */

static void arm_timer(struct cr_gate *g)
{
    uint64_t at = cr_admit_next_wakeup(g->admit);
    if (at == UINT64_MAX) {
        evtimer_del(g->tmr);
        return;
    }
    uint64_t now = cr_now_us();
    uint64_t left = at > now ? at - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000000), .tv_usec = (suseconds_t)(left % 1000000)};
    evtimer_add(g->tmr, &tv);
}

/* Answers the requests that waited past their deadline, then sends those
 * whose tenant got a token meanwhile. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cr_gate *g = arg;
    struct cr_admit_shed why;
    struct cr_admit_item *it;
    while ((it = cr_admit_expire(g->admit, cr_now_us(), &why)) != NULL)
        shed(g, it->owner, &why);
    cr_gate_dispatch(g);
    (void)fd, (void)what;
}

/* The outage window ended: if the upstream is still down, what waits for
 * it is answered now. */
static void on_outage(evutil_socket_t fd, short what, void *arg)
{
    struct cr_gate *g = arg;
    if (!cr_pool_available(g->w->pool))
        cr_gate_upstream_down(g);
    (void)fd, (void)what;
}

/* ------------------------------------------------------------ to the pool */

/* How often a worker looks again at what the other generation of its
 * slot has in flight upstream while that is not 0 (a reload's drain). */
#define OTHERS_POLL_MS 10

/* Requests the workers of other generations in this worker slot have in
 * flight upstream now (shm.h: cr_shm_upflight). */
static uint64_t others_inflight(const struct cr_gate *g)
{
    uint64_t n = 0, gen = atomic_load(&g->own->generation);
    for (size_t i = 0; i < CR_SHM_GENS; i++) {
        const struct cr_shm_upflight *e = &g->row[i];
        uint64_t eg = atomic_load(&e->generation);
        if (e != g->own && eg && eg != gen)
            n += atomic_load(&e->inflight);
    }
    return n;
}

/* Tells the other generations of this slot what this worker has in
 * flight upstream. */
static void publish(struct cr_gate *g)
{
    atomic_store(&g->own->inflight, cr_admit_inflight(g->admit));
}

/* Shows the adaptive limit in shared memory (/stats, /metrics). */
static void publish_adapt(struct cr_gate *g)
{
    struct cr_adapt_view v;
    cr_adapt_view(g->adapt, &v);
    atomic_fetch_add_explicit(&g->w->stats->adaptive_limit, (uint64_t)v.limit - g->published_limit,
                              memory_order_relaxed);
    g->published_limit = v.limit;
    atomic_store_explicit(&g->w->stats->adaptive_min_rtt_us, v.min_rtt_us, memory_order_relaxed);
    atomic_store_explicit(&g->w->stats->adaptive_gradient_milli, (uint64_t)(v.gradient * 1000.0),
                          memory_order_relaxed);
}

/* The capacity the upstream is given: the pool's, or the adaptive limit
 * under it. A pool with no connection up (0) leaves the limiter's ceiling
 * where it was, so what it learned survives a reconnect. */
static uint64_t upstream_capacity(struct cr_gate *g)
{
    uint64_t cap = cr_pool_capacity(g->w->pool);
    if (!g->adapt)
        return cap;
    if (cap && cap != g->adapt_max) {
        g->adapt_max = (uint32_t)cap;
        cr_adapt_set_max(g->adapt, (uint32_t)cap);
        publish_adapt(g);
    }
    uint32_t limit = cr_adapt_limit(g->adapt);
    return cap < limit ? cap : limit;
}

/* The upstream's capacity (above), less what the other generation of this
 * worker slot still has at the upstream: the old and the new worker of a
 * reload share the slot's upstream.max_streams until the old one's
 * requests are done. While the others hold some, a timer looks again. */
static void update_capacity(struct cr_gate *g)
{
    uint64_t cap = upstream_capacity(g), others = others_inflight(g);
    if (others && !evtimer_pending(g->ftmr, NULL)) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = OTHERS_POLL_MS * 1000};
        evtimer_add(g->ftmr, &tv);
    }
    uint32_t share = (uint32_t)(cap > others ? cap - others : 0);
    cr_admit_set_capacity(g->admit, share);
    if (share == g->published_cap)
        return; /* the usual case: no write to shared memory */
    atomic_fetch_add_explicit(&g->w->stats->admit_capacity, (uint64_t)share - g->published_cap,
                              memory_order_relaxed);
    g->published_cap = share;
}

static void learn(struct cr_gate *g, const struct cr_request *r, uint64_t now);

static void on_others(evutil_socket_t fd, short what, void *arg)
{
    cr_gate_dispatch(arg);
    (void)fd, (void)what;
}

/* Hands an admitted request to the pool; it is in flight for the engine
 * until cr_gate_done. */
static void send_upstream(struct cr_gate *g, struct cr_request *r)
{
    atomic_fetch_add(&tstats(g, r)->admitted, 1);
    if (cr_pool_place(g->w->pool, r) < 0) {
        /* capacity said yes and no connection has room: only a connection
         * lost between the two can do that */
        cr_admit_done(g->admit, &r->admit, cr_now_us());
        cr_request_be_respond(r, 502, "upstream connection lost", NULL);
    }
    publish(g);
}

/* ------------------------------------------------------------ streaming class */

/* Retry-After of a request for an event stream refused at admission
 * (refuse_stream): streams free slowly. */
#define STREAM_RETRY_S 5

/* This worker's share of the tenant's streaming cap (as admit.c splits
 * concurrency); 0: nothing moves. */
static uint32_t streaming_share(const struct cr_gate *g, const struct cr_tenant *t)
{
    uint32_t cap = t->limits.streaming, n = g->w->cfg->workers ? g->w->cfg->workers : 1;
    return cap == 0 ? 0 : (uint32_t)(((uint64_t)cap + n - 1) / n);
}

/* A request that asks for an event stream (accept: text/event-stream)
 * while its tenant's streaming class is full would stay in the request
 * capacity for as long as it streams: it is refused now, 429 with
 * Retry-After. Returns true when it was. */
static bool refuse_stream(struct cr_gate *g, struct cr_request *r)
{
    uint32_t share = streaming_share(g, r->tenant);
    if (share == 0 || g->streaming_open[r->tenant->index % CR_ADMIT_MAX_TENANTS] < share)
        return false;
    const struct cr_hdr *h = cr_request_hdr(r, "accept");
    if (!h || !strcasestr(h->value, "text/event-stream"))
        return false;
    char retry[16];
    snprintf(retry, sizeof(retry), "%d", STREAM_RETRY_S);
    const char *extra[] = {"retry-after", retry, NULL};
    atomic_fetch_add_explicit(&tstats(g, r)->streaming_refused, 1, memory_order_relaxed);
    cr_request_be_respond(r, 429, "tenant streaming limit", extra);
    return true;
}

/* Whether r's response head says content-type text/event-stream. */
static bool event_stream(const struct cr_request *r)
{
    static const char ct[] = "text/event-stream";
    const struct cr_hdr *h = cr_request_rhdr(r, "content-type");
    if (!h || h->vlen < sizeof(ct) - 1 || strncasecmp(h->value, ct, sizeof(ct) - 1) != 0)
        return false;
    char next = h->value[sizeof(ct) - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static void unwatch(struct cr_gate *g, struct cr_request *r)
{
    if (r->streaming != CR_REQ_STREAM_WATCHED)
        return;
    TAILQ_REMOVE(&g->watched, r, streamlink);
    r->streaming = CR_REQ_STREAM_NONE;
}

/* Moves r (on its upstream stream, its head come) to its tenant's
 * streaming class if there is room there, in the worker's class
 * (upstream.max_streaming) and on the upstream beyond the request
 * capacity (cr_pool_may_move); else it stays in the request class,
 * counted over the cap. */
static void move_streaming(struct cr_gate *g, struct cr_request *r)
{
    uint32_t ti = r->tenant->index % CR_ADMIT_MAX_TENANTS;
    unwatch(g, r);
    if (g->streaming_open[ti] >= streaming_share(g, r->tenant) ||
        g->streaming_total >= g->w->cfg->upstream.max_streaming ||
        !cr_pool_may_move(g->w->pool, r)) {
        r->streaming = CR_REQ_STREAM_OVER;
        atomic_fetch_add_explicit(&tstats(g, r)->streaming_over_cap, 1, memory_order_relaxed);
        return;
    }
    uint64_t now = cr_now_us();
    learn(g, r, now); /* its latency is to its head, which came */
    cr_admit_done(g->admit, &r->admit, now);
    r->streaming = CR_REQ_STREAM_MOVED;
    cr_pool_stream_moved(g->w->pool, r);
    g->streaming_open[ti]++;
    g->streaming_total++;
    atomic_fetch_add_explicit(&tstats(g, r)->streaming_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g->w->topen[ti].streaming, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tstats(g, r)->streaming_moved, 1, memory_order_relaxed);
    publish(g);
}

/* The end of a moved response's exchange: its place in the class comes
 * back. */
static void streaming_done(struct cr_gate *g, struct cr_request *r)
{
    uint32_t ti = r->tenant->index % CR_ADMIT_MAX_TENANTS;
    g->streaming_open[ti]--;
    g->streaming_total--;
    atomic_fetch_sub_explicit(&tstats(g, r)->streaming_open, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&g->w->topen[ti].streaming, 1, memory_order_relaxed);
}

static void arm_streaming_after(struct cr_gate *g)
{
    struct cr_request *r = TAILQ_FIRST(&g->watched);
    if (!r) {
        evtimer_del(g->stmr);
        return;
    }
    uint64_t at = r->t_first_byte + g->w->cfg->upstream.streaming_after_ms * 1000,
             now = cr_now_us();
    uint64_t left = at > now ? at - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000000),
                         .tv_usec = (suseconds_t)(left % 1000000)};
    evtimer_add(g->stmr, &tv);
}

/* Whether r's response waits on its client rather than on the upstream:
 * resp_body holds half its high mark or more. The producing side stops
 * reading at CR_REQUEST_BUF_HIGH and resumes under half of it, and the
 * front end takes from resp_body only while its own output (h1) or the
 * stream's window (h2) has room, so a response whose client reads slower
 * than the upstream sends keeps resp_body there; one whose upstream is the
 * slow side (a long poll, an event stream) finds it drained. */
static bool client_bound(const struct cr_request *r)
{
    return evbuffer_get_length(r->resp_body) >= CR_REQUEST_BUF_HIGH / 2;
}

/* Moves the watched responses open for streaming_after since their heads
 * (the list is in head order: the first not due ends the walk). Only a
 * response whose upstream is the slow side moves: a slow download (its
 * bytes wait on the client, client_bound) stays in the request class for
 * good - moving it would let any client hold upstream streams out of the
 * request capacity just by reading slowly. */
static void on_streaming_after(evutil_socket_t fd, short what, void *arg)
{
    struct cr_gate *g = arg;
    struct cr_request *r;
    uint64_t now = cr_now_us(), after = g->w->cfg->upstream.streaming_after_ms * 1000;
    bool moved = false;
    while ((r = TAILQ_FIRST(&g->watched)) != NULL && r->t_first_byte + after <= now) {
        if (r->up_cancelled) { /* given up on, its stream is being reset: it keeps its slot */
            unwatch(g, r);
            continue;
        }
        if (client_bound(r)) {
            unwatch(g, r);
            atomic_fetch_add_explicit(&tstats(g, r)->streaming_client_bound, 1,
                                      memory_order_relaxed);
            continue;
        }
        move_streaming(g, r);
        moved = true;
    }
    arm_streaming_after(g);
    if (moved)
        cr_gate_dispatch(g);
    (void)fd, (void)what;
}

/* ------------------------------------------------------------ tunnels */

/* A tunnel (request.h) is admitted by its tenant's own limits - tunnels
 * open (split between the workers like concurrency) and tunnel_rate (one
 * bucket for the host) - and never by the engine: once open it holds no
 * capacity unit, no tenant concurrency slot, and its upstream connection is
 * its own (cr_pool_tunnel, capped by upstream.tunnel_connections). */
static uint32_t tunnel_cap(const struct cr_gate *g, const struct cr_tenant *t)
{
    uint32_t n = t->limits.tunnels, workers = CR_MAX(g->w->cfg->workers, 1u);
    return n ? (n + workers - 1) / workers : UINT32_MAX;
}

static void tunnel_count(struct cr_gate *g, struct cr_request *r, int delta)
{
    struct cr_shm_tenant_stats *ts = tstats(g, r);
    uint32_t ti = r->tenant->index % CR_ADMIT_MAX_TENANTS;
    g->tunnels_open[ti] += (uint32_t)delta;
    atomic_fetch_add(&ts->tunnels_open, (uint64_t)(int64_t)delta);
    atomic_fetch_add(&g->w->topen[ti].tunnels, (uint32_t)delta);
    atomic_fetch_add(&g->w->stats->tunnels_open, (uint64_t)(int64_t)delta);
    r->tunnel_counted = delta > 0;
}

static void tunnel_refuse(struct cr_gate *g, struct cr_request *r, int status, const char *reason,
                          uint64_t retry_s)
{
    char retry[24];
    snprintf(retry, sizeof(retry), "%llu", (unsigned long long)CR_MAX(retry_s, 1u));
    const char *extra[] = {"retry-after", retry, NULL};
    if (status == 429)
        atomic_fetch_add(&tstats(g, r)->tunnels_refused, 1);
    cr_request_be_respond(r, status, reason, extra);
}

static void tunnel_submit(struct cr_gate *g, struct cr_request *r)
{
    const struct cr_cfg_limits *l = &r->tenant->limits;
    uint64_t now = cr_now_us(), at = now;
    if (g->tunnels_open[r->tenant->index % CR_ADMIT_MAX_TENANTS] >= tunnel_cap(g, r->tenant)) {
        tunnel_refuse(g, r, 429, "tenant tunnel limit", 1);
        return;
    }
    if (cr_gcra_take(&tstats(g, r)->tunnel_tat, l->tunnel_rate, l->tunnel_burst, now, &at) < 0) {
        tunnel_refuse(g, r, 429, "tenant tunnel rate", (at - now + 999999) / 1000000);
        return;
    }
    tunnel_count(g, r, 1); /* before: the pool may end it (502) on its way */
    atomic_fetch_add(&tstats(g, r)->tunnels_opened, 1);
    int rc = cr_pool_tunnel(g->w->pool, r);
    if (rc == 0)
        return;
    tunnel_count(g, r, -1);
    if (rc == CR_ELIMIT)
        tunnel_refuse(g, r, 503, "tunnel connections full", 1);
    else
        tunnel_refuse(g, r, 503, rc == CR_EAGAIN ? "draining" : "out of memory", 1);
}

static void tunnel_done(struct cr_gate *g, struct cr_request *r)
{
    if (r->tunnel_counted)
        tunnel_count(g, r, -1);
}

/* ------------------------------------------------------------ API */

int cr_gate_new(struct cr_worker *w, struct cr_gate **out)
{
    struct cr_gate *g = calloc(1, sizeof(*g));
    int rc = CR_ENOMEM;
    *out = NULL;
    if (!g)
        return CR_ENOMEM;
    g->w = w;
    const char *th = w->cfg->tenants.header;
    for (size_t i = 0; th && th[i] && i < sizeof(g->tenant_header) - 1; i++)
        g->tenant_header[i] = (char)(th[i] >= 'A' && th[i] <= 'Z' ? th[i] + 32 : th[i]);
    /* the Retry-After jitter: different in each worker and each run */
    struct cr_rand seeder;
    cr_rand_seed_random(&seeder);
    uint64_t seed = cr_rand_next(&seeder);
    g->tmr = evtimer_new(w->base, on_timer, g);
    g->otmr = evtimer_new(w->base, on_outage, g);
    g->ftmr = evtimer_new(w->base, on_others, g);
    g->stmr = evtimer_new(w->base, on_streaming_after, g);
    TAILQ_INIT(&g->watched);
    g->row = w->setup->shm->upflight[(w->id - 1) % CR_SHM_MAX_WORKERS];
    g->own = &g->row[w->setup->generation % CR_SHM_GENS];
    atomic_store(&g->own->inflight, 0);
    atomic_store(&g->own->generation, w->setup->generation);
    if (!g->ftmr || !g->stmr) {
        cr_gate_free(g);
        return CR_ENOMEM;
    }
    if (!g->tmr || !g->otmr || (rc = cr_tenants_new(&w->cfg->tenants, &g->tenants)) < 0 ||
        (rc = cr_admit_new(g->tenants, &w->setup->shm->admit, w->cfg->workers, seed,
                           &g->admit)) < 0) {
        cr_gate_free(g);
        return rc;
    }
    cr_admit_set_headroom(g->admit, w->cfg->upstream.headroom);
    if ((rc = cr_quota_new(&w->cfg->tenants.global, g->tenants, w->cfg->workers, &g->quota)) < 0 ||
        (rc = cr_quota_start(g->quota, w->base, w->stats)) < 0) {
        cr_gate_free(g);
        return rc;
    }
    cr_admit_set_quota(g->admit, g->quota);
    if (w->cfg->upstream.adaptive.enabled) {
        const struct cr_adapt_params ap = {
            .min = w->cfg->upstream.adaptive.min,
            .tolerance_pct = w->cfg->upstream.adaptive.tolerance,
            .interval_us = w->cfg->upstream.adaptive.interval_ms * 1000,
            .probe_us = w->cfg->upstream.adaptive.min_rtt_interval_ms * 1000};
        if ((rc = cr_adapt_new(&ap, cr_now_us(), &g->adapt)) < 0) {
            cr_gate_free(g);
            return rc;
        }
        publish_adapt(g);
    }
    *out = g;
    return 0;
}

void cr_gate_free(struct cr_gate *g)
{
    if (!g)
        return;
    if (g->tmr)
        event_free(g->tmr);
    if (g->otmr)
        event_free(g->otmr);
    if (g->ftmr)
        event_free(g->ftmr);
    if (g->stmr)
        event_free(g->stmr);
    cr_admit_free(g->admit);
    cr_quota_free(g->quota);
    cr_adapt_free(g->adapt);
    cr_tenants_free(g->tenants);
    free(g);
}

void cr_gate_classify(struct cr_gate *g, struct cr_request *r, const char *sni)
{
    /* matched, logged and forwarded in one form, so that the upstream
     * serves the path that was given its tenant and priority */
    cr_tenants_normalize_path(r->path);
    struct cr_tenant_key key = {.sni = sni, .path = r->path};
    if (g->tenant_header[0]) {
        const struct cr_hdr *h = cr_request_hdr(r, g->tenant_header);
        key.header_value = h ? h->value : NULL;
    }
    r->tenant = cr_tenants_identify(g->tenants, &key);
    r->prio = cr_tenants_priority(g->tenants, r->path);
}

/* cr_gate_submit, and (again) cr_gate_readmit's second arrival, which
 * keeps the deadline of the first (cr_admit_arrive_again). */
static void submit(struct cr_gate *g, struct cr_request *r, bool again)
{
    struct cr_admit_shed why;
    uint64_t now = cr_now_us();
    if (!cr_pool_available(g->w->pool) && cr_pool_outage_until(g->w->pool) <= now) {
        why = (struct cr_admit_shed){503, CR_ADMIT_SHED_SATURATED, "upstream unavailable", 1};
        down(g, r, &why);
        return;
    }
    if (r->upgrade) {
        tunnel_submit(g, r);
        return;
    }
    if (refuse_stream(g, r))
        return;
    if (!again)
        cr_admit_item_init(&r->admit, r);
    update_capacity(g);
    enum cr_admit_verdict v =
        again ? cr_admit_arrive_again(g->admit, &r->admit, r->tenant, r->prio, now, &why)
              : cr_admit_arrive(g->admit, &r->admit, r->tenant, r->prio, now, &why);
    switch (v) {
    case CR_ADMIT_GO:
        send_upstream(g, r);
        break;
    case CR_ADMIT_QUEUED:
        /* the worker-wide bound (r counted), which high priority may exceed */
        if (waiting(g) > g->w->cfg->upstream.queue && r->prio != CR_PRIO_HIGH) {
            cr_admit_cancel(g->admit, &r->admit);
            why = (struct cr_admit_shed){503, CR_ADMIT_SHED_SATURATED, "upstream queue full", 1};
            shed(g, r, &why);
            break;
        }
        cr_request_set_state(r, CR_REQ_QUEUED);
        r->t_queued = now;
        atomic_fetch_add(&tstats(g, r)->queued, 1);
        arm_timer(g);
        break;
    case CR_ADMIT_SHED:
        shed(g, r, &why);
        break;
    }
}

void cr_gate_submit(struct cr_gate *g, struct cr_request *r)
{
    submit(g, r, false);
}

void cr_gate_cancel(struct cr_gate *g, struct cr_request *r)
{
    if (!r->be_held)
        return;
    if (r->state == CR_REQ_QUEUED && !r->up) {
        cr_admit_cancel(g->admit, &r->admit);
        arm_timer(g);
        cr_request_release_be(r); /* frees it when the client is gone */
        return;
    }
    cr_pool_cancel(g->w->pool, r);
}

bool cr_gate_idle(const struct cr_gate *g)
{
    return waiting(g) == 0 && cr_pool_idle(g->w->pool);
}

const struct cr_tenants *cr_gate_tenants(const struct cr_gate *g)
{
    return g->tenants;
}

/* ------------------------------------------------------------ from the pool */

/* Sends every queued request the engine lets go now (one clock read for
 * the lot: they leave in the same write). */
void cr_gate_dispatch(struct cr_gate *g)
{
    struct cr_admit_item *it;
    update_capacity(g);
    if (waiting(g) == 0) { /* the common case: nothing queued */
        arm_timer(g);
        return;
    }
    uint64_t now = cr_now_us();
    while ((it = cr_admit_next(g->admit, now)) != NULL) {
        struct cr_request *r = it->owner;
        r->t_dispatched = now;
        send_upstream(g, r);
    }
    arm_timer(g);
}

/* Feeds the adaptive limit the latency of r's exchange: from its stream's
 * start to its answer's head. An upstream 5xx, or an end without an answer
 * while the client still waits (a timeout, a lost connection, a refused
 * stream), is congestion; a client that went away says nothing. */
static void learn(struct cr_gate *g, const struct cr_request *r, uint64_t now)
{
    if (!g->adapt || !r->t_dispatched)
        return;
    bool answered = r->t_first_byte >= r->t_dispatched && r->status > 0;
    if (!answered && !r->fe)
        return;
    bool ok = answered && r->status < 500;
    if (!cr_adapt_sample(g->adapt, r->t_dispatched, answered ? r->t_first_byte : now, ok,
                         cr_admit_inflight(g->admit)))
        return;
    publish_adapt(g);
    struct cr_adapt_view v;
    cr_adapt_view(g->adapt, &v);
    cr_log_debug("adaptive limit %u (min rtt %.1f ms, gradient %.2f%s)", v.limit,
                 (double)v.min_rtt_us / 1000.0, v.gradient, v.probing ? ", probing" : "");
}

void cr_gate_done(struct cr_gate *g, struct cr_request *r)
{
    if (r->upgrade) {
        tunnel_done(g, r);
        return;
    }
    unwatch(g, r);
    if (r->streaming == CR_REQ_STREAM_MOVED) { /* it left the request capacity before */
        streaming_done(g, r);
        return;
    }
    uint64_t now = cr_now_us();
    learn(g, r, now);
    cr_admit_done(g->admit, &r->admit, now);
    publish(g);
}

void cr_gate_response_head(struct cr_gate *g, struct cr_request *r)
{
    if (r->streaming != CR_REQ_STREAM_NONE || !r->tenant || r->upgrade)
        return; /* a tunnel is out of the request capacity from its start */
    if (event_stream(r)) {
        move_streaming(g, r);
        cr_gate_dispatch(g);
        return;
    }
    if (g->w->cfg->upstream.streaming_after_ms == 0 || r->resp_eof)
        return;
    r->streaming = CR_REQ_STREAM_WATCHED;
    TAILQ_INSERT_TAIL(&g->watched, r, streamlink);
    /* a pending timer is due for an earlier head, gone or not: its callback
     * re-arms for the first one left (no timer work per request) */
    if (!evtimer_pending(g->stmr, NULL))
        arm_streaming_after(g);
}

void cr_gate_readmit(struct cr_gate *g, struct cr_request *r)
{
    cr_gate_done(g, r);
    submit(g, r, true); /* max_wait counts from its first arrival */
    cr_gate_dispatch(g);
}

void cr_gate_capacity_changed(struct cr_gate *g)
{
    update_capacity(g);
}

void cr_gate_unpublish(struct cr_gate *g)
{
    atomic_fetch_sub_explicit(&g->w->stats->admit_capacity, g->published_cap,
                              memory_order_relaxed);
    g->published_cap = 0;
    atomic_fetch_sub_explicit(&g->w->stats->adaptive_limit, g->published_limit,
                              memory_order_relaxed);
    g->published_limit = 0;
    for (size_t i = 0; i < CR_ADMIT_MAX_TENANTS; i++) {
        atomic_fetch_sub_explicit(&g->w->setup->shm->tenants[i].streaming_open,
                                  g->streaming_open[i], memory_order_relaxed);
        atomic_fetch_sub(&g->w->topen[i].streaming, g->streaming_open[i]);
        g->streaming_open[i] = 0;
    }
    g->streaming_total = 0;
    cr_quota_unpublish(g->quota);
    /* its open tunnels go with it */
    for (size_t i = 0; i < CR_ADMIT_MAX_TENANTS; i++) {
        atomic_fetch_sub(&g->w->setup->shm->tenants[i].tunnels_open, g->tunnels_open[i]);
        atomic_fetch_sub(&g->w->stats->tunnels_open, g->tunnels_open[i]);
        atomic_fetch_sub(&g->w->topen[i].tunnels, g->tunnels_open[i]);
        g->tunnels_open[i] = 0;
    }
}

void cr_gate_upstream_down(struct cr_gate *g)
{
    struct cr_admit_item *it;
    struct cr_admit_shed why; /* counted as expired */
    uint64_t until = cr_pool_outage_until(g->w->pool), now = cr_now_us();
    if (until > now) { /* they may wait: look again when the window ends */
        uint64_t left = until - now;
        struct timeval tv = {.tv_sec = (time_t)(left / 1000000),
                             .tv_usec = (suseconds_t)(left % 1000000)};
        evtimer_add(g->otmr, &tv);
        return;
    }
    /* expiring everything: a deadline in the far future is passed */
    while (waiting(g) && (it = cr_admit_expire(g->admit, UINT64_MAX - 1, &why)) != NULL)
        down(g, it->owner, &why);
    arm_timer(g);
}
