/* pool.c - the pipeliner: persistent upstream connections, stream
 * placement, the bounded wait queue, reconnect back-off, retries. */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "log.h"
#include "upstream.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct slot {
    struct cr_upconn *c;
    uint64_t backoff_ms;
    bool failing;             /* its last attempt or connection failed */
};

struct cr_pool {
    struct cr_worker *w;
    struct slot *slots;
    size_t nslots;
    TAILQ_HEAD(, cr_request) queue; /* FIFO: the head waited longest */
    uint32_t queued;
    struct event *queue_tmr;        /* fires when the head's wait expires */
    bool draining;
    uint64_t rng;
};

static uint64_t jitter(struct cr_pool *p, uint64_t ms)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    /* +-25%: reconnecting workers must not hit the LB in lockstep */
    uint64_t span = ms / 2 + 1;
    return ms - ms / 4 + p->rng % span;
}

static void arm_queue_timer(struct cr_pool *p);

static void on_queue_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cr_pool *p = arg;
    uint64_t limit = p->w->cfg->upstream.connect_timeout_ms * 1000;
    uint64_t now = cr_now_us();
    struct cr_request *r;
    while ((r = TAILQ_FIRST(&p->queue)) != NULL && now - r->t_queued >= limit)
        cr_request_respond(r, 503, "upstream unavailable", NULL); /* cancels: leaves queue */
    arm_queue_timer(p);
}

static void arm_queue_timer(struct cr_pool *p)
{
    struct cr_request *r = TAILQ_FIRST(&p->queue);
    if (!r) {
        evtimer_del(p->queue_tmr);
        return;
    }
    uint64_t limit = p->w->cfg->upstream.connect_timeout_ms * 1000;
    uint64_t waited = cr_now_us() - r->t_queued;
    uint64_t left = waited >= limit ? 0 : limit - waited;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000000), .tv_usec = (suseconds_t)(left % 1000000)};
    evtimer_add(p->queue_tmr, &tv);
}

int cr_pool_new(struct cr_worker *w, struct cr_pool **out)
{
    const struct cr_cfg_upstream *uc = &w->cfg->upstream;
    struct cr_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return CR_ENOMEM;
    p->w = w;
    p->rng = cr_now_us() * 2654435761u + (uint64_t)w->id;
    TAILQ_INIT(&p->queue);
    p->nslots = uc->connections;
    p->slots = calloc(p->nslots, sizeof(*p->slots));
    p->queue_tmr = evtimer_new(w->base, on_queue_timer, p);
    if (!p->slots || !p->queue_tmr)
        goto fail;
    for (size_t i = 0; i < p->nslots; i++) {
        p->slots[i].backoff_ms = BACKOFF_MIN_MS;
        p->slots[i].c = cr_upconn_new(w, p, &uc->addrs[i % uc->naddrs]);
        if (!p->slots[i].c)
            goto fail;
    }
    for (size_t i = 0; i < p->nslots; i++)
        cr_upconn_connect(p->slots[i].c, 0);
    *out = p;
    return 0;
fail:
    for (size_t i = 0; p->slots && i < p->nslots; i++)
        cr_upconn_free(p->slots[i].c);
    free(p->slots);
    if (p->queue_tmr)
        event_free(p->queue_tmr);
    free(p);
    return CR_ENOMEM;
}

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

static void enqueue(struct cr_pool *p, struct cr_request *r)
{
    if (p->queued >= p->w->cfg->upstream.queue) {
        cr_request_respond(r, 503, "upstream queue full", NULL);
        return;
    }
    r->state = CR_REQ_QUEUED;
    if (!r->t_queued)
        r->t_queued = cr_now_us();
    TAILQ_INSERT_TAIL(&p->queue, r, qlink);
    p->queued++;
    if (TAILQ_FIRST(&p->queue) == r)
        arm_queue_timer(p);
}

void cr_pool_submit(struct cr_pool *p, struct cr_request *r)
{
    if (p->queued == 0) {
        struct cr_upconn *c = pick(p);
        if (c && cr_upconn_submit(c, r) == 0)
            return;
    }
    if (!any_coming(p)) {
        cr_request_respond(r, 502, "upstream unavailable", NULL);
        return;
    }
    enqueue(p, r);
}

static void dequeue(struct cr_pool *p, struct cr_request *r)
{
    bool head = TAILQ_FIRST(&p->queue) == r;
    TAILQ_REMOVE(&p->queue, r, qlink);
    p->queued--;
    if (head)
        arm_queue_timer(p);
}

void cr_pool_room(struct cr_pool *p, struct cr_upconn *c)
{
    struct cr_request *r;
    struct slot *s = slot_of(p, c);
    if (s && s->failing && cr_upconn_state(c) == CR_UP_READY) {
        s->failing = false;
        s->backoff_ms = BACKOFF_MIN_MS;
    }
    while ((r = TAILQ_FIRST(&p->queue)) != NULL && cr_upconn_room(c) > 0) {
        dequeue(p, r);
        if (cr_upconn_submit(c, r) < 0) {
            cr_request_respond(r, 502, "upstream error", NULL);
            break;
        }
    }
    if (p->draining && cr_upconn_inflight(c) == 0)
        cr_upconn_retire(c);
}

void cr_pool_lost(struct cr_pool *p, struct cr_upconn *c, bool clean)
{
    struct slot *s = slot_of(p, c);
    if (!s || p->draining)
        return;
    if (clean) { /* retired by the server (GOAWAY): replace it now */
        cr_upconn_connect(c, 0);
        return;
    }
    s->failing = true;
    uint64_t delay = jitter(p, s->backoff_ms);
    s->backoff_ms = CR_MIN(s->backoff_ms * 2, (uint64_t)BACKOFF_MAX_MS);
    cr_upconn_connect(c, delay);
    /* with nothing coming up, the queue would only wait to time out */
    if (!any_coming(p)) {
        struct cr_request *r;
        while ((r = TAILQ_FIRST(&p->queue)) != NULL)
            cr_request_respond(r, 502, "upstream unavailable", NULL);
    }
}

void cr_pool_stream_failed(struct cr_pool *p, struct cr_request *r, bool refused)
{
    /* Retry once, elsewhere, only what cannot have had an effect twice:
     * a stream the server refused, or an idempotent request (never a POST)
     * whose response had not started and whose body, if any, is still whole
     * in our buffer (no byte of it went to the dead connection). */
    bool safe = refused || (r->idempotent && r->req_sent == 0);
    if (r->fe && r->state < CR_REQ_RESPONDING && safe && r->retries == 0 && !p->draining) {
        r->retries++;
        r->status = 0;
        cr_request_reset_rheaders(r);
        cr_log_debug("retrying %s %s on another upstream connection", r->method, r->path);
        cr_pool_submit(p, r);
        return;
    }
    if (r->state < CR_REQ_RESPONDING && r->fe) {
        cr_request_respond(r, 502, "upstream connection lost", NULL);
        return;
    }
    /* the response had started: break it so the client sees a truncation */
    r->reason = "upstream connection lost";
    r->resp_aborted = true;
    r->resp_eof = true;
    cr_request_notify_end(r);
    cr_request_release_be(r);
}

void cr_pool_cancel(struct cr_request *r)
{
    struct cr_pool *p = cr_worker_self->pool;
    if (!r->be_held)
        return;
    if (r->state == CR_REQ_QUEUED && !r->up)
        dequeue(p, r);
    else if (r->up)
        cr_upconn_cancel(r->up, r);
    cr_request_release_be(r);
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
    if (p->queued)
        return false;
    for (size_t i = 0; i < p->nslots; i++)
        if (cr_upconn_inflight(p->slots[i].c))
            return false;
    return true;
}
