/* rp_client.c - the engine: arrivals, placing requests on connections,
 * waiting (connection cap, rate cap), retries, timeouts, the end of a run.
 * Connections and their I/O are in rp_conn.c, the protocols in rp_h1.c and
 * rp_h2.c. */
#include "rp_client_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define ARRIVAL_HORIZON_US 20000 /* look ahead for the next arrival this far */
#define ARRIVAL_BATCH 20000      /* arrivals per callback at most */
/* The arrival timer wakes at most this often: at high rates the arrivals
 * of 0.2 ms go out together (fewer, fuller writes for client and server);
 * the wait is in their latency, which counts from the intended time. */
#define ARRIVAL_GAP_US 200
#define BUCKET_DEPTH_S 0.05 /* the send rate bucket holds 50 ms of tokens */
#define SWEEP_US 10000      /* deadlines are checked this often (or timeout / 20) */

/* ------------------------------------------------------------ time */

uint64_t rp_engine_clock(struct rp_engine *e)
{
    uint64_t now = cr_now_us();

    e->now_us = e->start_us != 0 && now > e->start_us ? now - e->start_us : 0;
    return e->now_us;
}

uint64_t rp_engine_now(const struct rp_engine *e)
{
    return e->now_us;
}

double rp_engine_elapsed(const struct rp_engine *e)
{
    uint64_t now = cr_now_us();

    return e->start_us != 0 && now > e->start_us ? (double)(now - e->start_us) / 1e6 : 0.0;
}

const struct rp_target_count *rp_engine_targets(const struct rp_engine *e, size_t *n)
{
    *n = e->p->target.naddrs;
    return e->tcount;
}

size_t rp_engine_conns(const struct rp_engine *e, size_t *peak)
{
    if (peak != NULL)
        *peak = e->peak_conns;
    return e->nconns;
}

static struct timeval tv_us(uint64_t us)
{
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    return tv;
}

static void timer_in(struct event *ev, uint64_t us)
{
    struct timeval tv = tv_us(us);
    evtimer_add(ev, &tv);
}

/* ------------------------------------------------------------ requests */

static void retry_cb(evutil_socket_t fd, short what, void *arg);
static void place_or_wait(struct rp_engine *e, struct rp_req *r);

/* Deadlines are a list in deadline order, swept every SWEEP_US: one timer
 * for all requests (a timer each cost an event_add, an event_del and often
 * a timerfd reprogramming per request). Nearly every request goes at the
 * tail: deadlines follow intended times, which follow arrivals. */
static void arm_deadline(struct rp_req *r)
{
    struct rp_engine *e = r->e;
    struct rp_req *at = TAILQ_LAST(&e->deadlines, rp_req_list);

    r->deadline_us = r->intended_us + e->p->client.timeout_ms * 1000;
    while (at != NULL && at->deadline_us > r->deadline_us)
        at = TAILQ_PREV(at, rp_req_list, dlink);
    if (at == NULL)
        TAILQ_INSERT_HEAD(&e->deadlines, r, dlink);
    else
        TAILQ_INSERT_AFTER(&e->deadlines, at, r, dlink);
    r->has_deadline = true;
}

static void disarm_deadline(struct rp_req *r)
{
    if (r->has_deadline) {
        TAILQ_REMOVE(&r->e->deadlines, r, dlink);
        r->has_deadline = false;
    }
}

/* Requests are recycled through a free list: no malloc per request. */
static struct rp_req *req_new(struct rp_engine *e, const struct rp_spec *spec)
{
    struct rp_req *r = SLIST_FIRST(&e->free_reqs);

    if (r != NULL)
        SLIST_REMOVE_HEAD(&e->free_reqs, free_link);
    else if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    memset(r, 0, offsetof(struct rp_req, tmr));
    r->e = e;
    r->spec = *spec;
    r->id = ++e->next_id;
    r->intended_us = spec->at_us;
    r->retry_after_ms = -1;
    e->live++;
    return r;
}

/* The request is over for good. */
static void req_finish(struct rp_req *r)
{
    struct rp_engine *e = r->e;

    disarm_deadline(r);
    if (r->tmr != NULL)
        evtimer_del(r->tmr);
    e->live--;
    SLIST_INSERT_HEAD(&e->free_reqs, r, free_link);
}

/* v in decimal at buf; returns the digits written (no NUL). */
static size_t put_decimal(char *buf, uint64_t v)
{
    char digits[24];
    size_t n = 0, len = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        buf[len++] = digits[--n];
    return len;
}

size_t rp_req_id(const struct rp_req *r, char *buf)
{
    size_t len = 3;

    memcpy(buf, "rp-", 3);
    len += put_decimal(buf + len, r->id);
    buf[len++] = '.';
    len += put_decimal(buf + len, r->attempt);
    buf[len] = '\0';
    return len;
}

/* Seconds (delta-seconds or an IMF-fixdate) into milliseconds, or -1. */
static int64_t parse_retry_after(const char *v, size_t len)
{
    char buf[64];
    struct tm tm;
    uint64_t secs = 0;
    size_t i = 0;

    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i == len || len - i >= sizeof(buf))
        return -1;
    memcpy(buf, v + i, len - i);
    buf[len - i] = '\0';
    if (isdigit((unsigned char)buf[0])) {
        for (const char *p = buf; *p != '\0'; p++) {
            if (!isdigit((unsigned char)*p) || secs > 86400 * 365)
                return -1;
            secs = secs * 10 + (uint64_t)(*p - '0');
        }
        return (int64_t)secs * 1000;
    }
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    time_t at = timegm(&tm), now = time(NULL);
    return at > now ? (int64_t)(at - now) * 1000 : 0;
}

void rp_req_set_retry_after(struct rp_req *r, const char *value, size_t len)
{
    r->retry_after_ms = parse_retry_after(value, len);
}

/* Off its connection (queue or in flight). */
static void req_detach(struct rp_req *r)
{
    struct rp_conn *c = r->conn;

    if (c == NULL)
        return;
    if (r->state == RP_REQ_INFLIGHT) {
        TAILQ_REMOVE(&c->flights, r, link);
        c->inflight--;
    } else if (r->state == RP_REQ_QUEUED) {
        TAILQ_REMOVE(&c->queue, r, link);
        c->queued--;
    }
    r->conn = NULL;
}

/* 429/503: retry later, at once, or give up, as the profile says. */
static void refused(struct rp_req *r, uint64_t now)
{
    struct rp_engine *e = r->e;
    const struct rp_client *cl = &e->p->client;
    uint64_t delay_us = 0;

    if (cl->on_refusal == RP_REFUSAL_GIVE_UP || r->attempt >= cl->max_retries) {
        rp_stats_gave_up(e->st, r->spec.tenant, r->intended_us, now);
        req_finish(r);
        return;
    }
    if (cl->on_refusal == RP_REFUSAL_OBEY) {
        double ms =
            r->retry_after_ms >= 0 ? (double)r->retry_after_ms : (double)cl->retry_after_default_ms;
        delay_us = (uint64_t)(ms * 1000.0 * (1.0 + cl->retry_jitter * rp_rand_unit(&e->rng)));
    }
    if (now + delay_us >= e->end_us || e->stopping) {
        req_finish(r); /* the run is over before the client would come back */
        return;
    }
    r->state = RP_REQ_RETRY_WAIT;
    TAILQ_INSERT_TAIL(&e->waiting, r, link);
    disarm_deadline(r); /* the wait is the server's instruction, not a timeout */
    r->intended_us = now + delay_us;
    r->retry_after_ms = -1;
    r->status = 0;
    if (r->tmr == NULL && (r->tmr = evtimer_new(e->base, retry_cb, r)) == NULL) {
        TAILQ_REMOVE(&e->waiting, r, link);
        req_finish(r); /* out of memory: no retry */
        return;
    }
    timer_in(r->tmr, delay_us);
}

/* Counts an attempt's end for the target its connection went to. */
static void count_target(struct rp_engine *e, const struct rp_conn *c, enum rp_outcome how,
                         int status)
{
    struct rp_target_count *t;

    if (c == NULL)
        return;
    t = &e->tcount[c->target];
    if (how == RP_OUT_CONN_ERROR)
        t->conn_errors++;
    else if (how == RP_OUT_TIMEOUT)
        t->timeouts++;
    else if (status >= 200 && status < 300)
        t->ok++;
    else if (status == 429)
        t->s429++;
    else if (status == 503)
        t->s503++;
    else
        t->other++;
}

void rp_req_answered(struct rp_req *r)
{
    struct rp_engine *e = r->e;
    struct rp_conn *c = r->conn;
    uint64_t now = rp_engine_now(e);

    count_target(e, c, RP_OUT_STATUS, r->status);
    req_detach(r);
    rp_stats_done(e->st, r->spec.tenant, RP_OUT_STATUS, r->status, r->intended_us, now);
    if (r->status == 429 || r->status == 503)
        refused(r, now);
    else
        req_finish(r);
    if (c != NULL)
        rp_engine_conn_changed(c);
}

void rp_req_failed(struct rp_req *r, enum rp_outcome how)
{
    struct rp_engine *e = r->e;
    struct rp_conn *c = r->conn;

    count_target(e, c, how, 0);
    req_detach(r);
    rp_stats_done(e->st, r->spec.tenant, how, 0, r->intended_us, rp_engine_now(e));
    req_finish(r);
    if (c != NULL)
        rp_engine_conn_changed(c);
}

/* Back to the pending queue, without telling its connection. */
static void requeue(struct rp_req *r)
{
    struct rp_engine *e = r->e;
    struct rp_conn *c = r->conn;

    req_detach(r);
    if (c != NULL && c->assigned > 0)
        c->assigned--;
    e->tokens += 1.0; /* it did not use its send */
    r->state = RP_REQ_PENDING;
    r->status = 0;
    r->retry_after_ms = -1;
    TAILQ_INSERT_HEAD(&e->ts[r->spec.tenant].pending, r, link);
    e->pending++;
}

void rp_req_requeue(struct rp_req *r)
{
    struct rp_conn *c = r->conn;

    requeue(r);
    if (c != NULL)
        rp_engine_conn_changed(c);
}

/* A refused request's wait is over: its next attempt. */
static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_req *r = arg;
    struct rp_engine *e = r->e;

    rp_engine_clock(e);
    TAILQ_REMOVE(&e->waiting, r, link);
    r->attempt++;
    arm_deadline(r);
    place_or_wait(e, r);
    rp_engine_settle(e);
}

/* r's deadline passed: wherever it is, it is a timeout. */
static void timed_out(struct rp_engine *e, struct rp_req *r)
{
    struct rp_conn *c = r->conn;

    if (r->state == RP_REQ_PENDING) {
        TAILQ_REMOVE(&e->ts[r->spec.tenant].pending, r, link);
        e->pending--;
    } else if (r->state == RP_REQ_INFLIGHT) {
        c->codec->cancel(c, r);
    } else if (r->state == RP_REQ_QUEUED && c->assigned > 0) {
        c->assigned--;
    }
    count_target(e, c, RP_OUT_TIMEOUT, 0);
    req_detach(r);
    rp_stats_done(e->st, r->spec.tenant, RP_OUT_TIMEOUT, 0, r->intended_us, rp_engine_now(e));
    req_finish(r);
    if (c == NULL)
        return;
    if (c->broken)
        rp_conn_close(c, RP_OUT_CONN_ERROR, false);
    else
        rp_engine_conn_changed(c);
    rp_conn_dirty(c);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_engine *e = arg;
    uint64_t now = rp_engine_clock(e);
    struct rp_req *r;

    while ((r = TAILQ_FIRST(&e->deadlines)) != NULL && r->deadline_us <= now)
        timed_out(e, r);
    rp_engine_settle(e);
}

/* ------------------------------------------------------------ placing */

static bool take_token(struct rp_engine *e)
{
    double rate = e->p->caps.rate, depth = CR_MAX(1.0, rate * BUCKET_DEPTH_S);
    uint64_t now = rp_engine_now(e);

    e->tokens = CR_MIN(depth, e->tokens + rate * (double)(now - e->tokens_us) / 1e6);
    e->tokens_us = now;
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        return true;
    }
    if (!e->bucket_armed) {
        e->bucket_armed = true;
        timer_in(e->bucket_tmr, (uint64_t)ceil((1.0 - e->tokens) / rate * 1e6));
    }
    return false;
}

/* The newest unused resumable session (the caller frees it), or NULL. */
static SSL_SESSION *take_session(struct rp_engine *e)
{
    while (e->nsessions > 0) {
        e->nsessions--;
        SSL_SESSION *s = e->sessions[(e->shead + e->nsessions) % RP_SESSIONS_MAX];
        if (SSL_SESSION_is_resumable(s))
            return s;
        SSL_SESSION_free(s);
    }
    return NULL;
}

/* An open connection with nothing to do (of any tenant), or NULL: at the
 * connection cap it gives its slot to a waiting request. */
static struct rp_conn *idle_conn(struct rp_engine *e)
{
    struct rp_conn *c;

    TAILQ_FOREACH(c, &e->conns, link)
    if (c->state == RP_CONN_OPEN && c->inflight == 0 && c->queued == 0)
        return c;
    return NULL;
}

/* Puts r on a connection of its tenant (with room, or a new one): true, or
 * false when it must wait (connection cap, rate cap). A connection that
 * cannot even be opened fails r (true). */
static bool try_place(struct rp_engine *e, struct rp_req *r)
{
    struct rp_tenant_state *ts = &e->ts[r->spec.tenant];
    struct rp_conn *c = TAILQ_FIRST(&ts->ready);
    struct rp_conn *idle = NULL;
    const struct rp_profile *p = e->p;
    int err = 0;

    if (c == NULL && e->nconns >= p->caps.connections && (idle = idle_conn(e)) == NULL)
        return false;
    if (!take_token(e))
        return false;
    if (idle != NULL)
        rp_conn_close(idle, RP_OUT_CONN_ERROR, true);
    if (c == NULL) {
        bool h2 = rp_rand_unit(&e->rng) < p->target.http2;
        SSL_SESSION *s = rp_rand_unit(&e->rng) < p->client.resume ? take_session(e) : NULL;
        c = rp_conn_open(e, r->spec.tenant, h2, s, &err);
        SSL_SESSION_free(s); /* the connection holds its own reference */
        if (c == NULL) {
            rp_stats_done(e->st, r->spec.tenant, RP_OUT_CONN_ERROR, 0, r->intended_us,
                          rp_engine_now(e));
            req_finish(r);
            return true;
        }
    }
    if (rp_conn_assign(c, r) != 0) {
        rp_stats_done(e->st, r->spec.tenant, RP_OUT_CONN_ERROR, 0, r->intended_us,
                      rp_engine_now(e));
        req_finish(r);
    }
    rp_engine_conn_changed(c);
    return true;
}

/* A new request or a retry: behind its tenant's waiting ones, if any. */
static void place_or_wait(struct rp_engine *e, struct rp_req *r)
{
    struct rp_tenant_state *ts = &e->ts[r->spec.tenant];

    if (TAILQ_EMPTY(&ts->pending) && try_place(e, r))
        return;
    r->state = RP_REQ_PENDING;
    TAILQ_INSERT_TAIL(&ts->pending, r, link);
    e->pending++;
}

/* Waiting requests onto connections, round robin between tenants. */
static void drain_pending(struct rp_engine *e)
{
    bool progress = true;

    while (e->pending > 0 && progress) {
        progress = false;
        for (size_t k = 0; k < e->ntenant && e->pending > 0; k++) {
            size_t i = (e->rr + k) % e->ntenant;
            struct rp_req *r = TAILQ_FIRST(&e->ts[i].pending);
            if (r == NULL)
                continue;
            TAILQ_REMOVE(&e->ts[i].pending, r, link);
            e->pending--;
            if (try_place(e, r)) {
                progress = true;
            } else {
                TAILQ_INSERT_HEAD(&e->ts[i].pending, r, link);
                e->pending++;
            }
        }
        e->rr++;
    }
}

static void bucket_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_engine *e = arg;

    rp_engine_clock(e);
    e->bucket_armed = false;
    rp_engine_settle(e);
}

/* ------------------------------------------------------------ connections */

void rp_engine_conn_changed(struct rp_conn *c)
{
    struct rp_engine *e = c->e;
    struct rp_tenant_state *ts = &e->ts[c->tenant];
    uint32_t rpc = e->p->client.requests_per_connection;
    bool idle, room;

    if (c->state == RP_CONN_CLOSED)
        return;
    while (c->draining && !TAILQ_EMPTY(&c->queue)) /* they never went out: elsewhere */
        requeue(TAILQ_LAST(&c->queue, rp_req_list));
    idle = c->inflight == 0 && c->queued == 0;
    if (idle && (c->assigned >= rpc || c->draining)) {
        /* carried its share: goodbye, once out of any codec callback */
        c->finish = true;
        rp_conn_dirty(c);
    }
    room = !c->finish && c->assigned < rpc && rp_conn_has_room(c);
    if (room && !c->in_ready) {
        TAILQ_INSERT_TAIL(&ts->ready, c, rlink);
        c->in_ready = true;
    } else if (!room && c->in_ready) {
        TAILQ_REMOVE(&ts->ready, c, rlink);
        c->in_ready = false;
    }
    if (c->state == RP_CONN_OPEN && !c->finish) {
        if (idle)
            timer_in(&c->tmr, e->p->client.idle_ms * 1000);
        else
            evtimer_del(&c->tmr);
    }
}

/* A ticket the server sent: kept (the oldest goes when the ring is full). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct rp_engine *e = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

    if (e->nsessions == RP_SESSIONS_MAX) {
        SSL_SESSION_free(e->sessions[e->shead]);
        e->shead = (e->shead + 1) % RP_SESSIONS_MAX;
        e->nsessions--;
    }
    e->sessions[(e->shead + e->nsessions) % RP_SESSIONS_MAX] = sess;
    e->nsessions++;
    return 1; /* we keep the reference */
}

void rp_engine_handshake_done(struct rp_conn *c)
{
    rp_stats_handshake(c->e->st, c->tenant, SSL_session_reused(c->ssl), rp_engine_now(c->e));
}

/* ------------------------------------------------------------ the run */

static void free_dead(struct rp_engine *e)
{
    struct rp_conn *c;

    while ((c = TAILQ_FIRST(&e->dead)) != NULL) {
        TAILQ_REMOVE(&e->dead, c, link);
        rp_conn_free(c);
    }
}

static void end_run(struct rp_engine *e)
{
    struct rp_conn *c;

    e->over = true;
    while ((c = TAILQ_FIRST(&e->conns)) != NULL)
        rp_conn_close(c, RP_OUT_TIMEOUT, true);
    event_base_loopbreak(e->base);
}

void rp_engine_settle(struct rp_engine *e)
{
    struct rp_conn *c;

    for (int round = 0; round < 4; round++) {
        drain_pending(e);
        if (TAILQ_EMPTY(&e->dirty))
            break;
        while ((c = TAILQ_FIRST(&e->dirty)) != NULL) {
            TAILQ_REMOVE(&e->dirty, c, dlink);
            c->dirty = false;
            rp_conn_flush(c);
        }
    }
    free_dead(e);
    if (!e->over && e->arrivals_done && e->live == 0)
        end_run(e);
}

static void arm_arrivals(struct rp_engine *e, uint64_t now)
{
    uint64_t next;

    if (e->arrivals_done)
        return;
    next = e->src.peek(e->src.ctx, now + ARRIVAL_HORIZON_US);
    if (next == UINT64_MAX) {
        timer_in(e->arrival_tmr, ARRIVAL_HORIZON_US);
        return;
    }
    if (next < e->last_wake_us + ARRIVAL_GAP_US)
        next = e->last_wake_us + ARRIVAL_GAP_US;
    timer_in(e->arrival_tmr, next > now ? next - now : 0);
}

static void arrival_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_engine *e = arg;
    uint64_t now = rp_engine_clock(e);

    e->last_wake_us = now;
    struct rp_spec spec;
    int n = 0;

    while (!e->stopping && n < ARRIVAL_BATCH && e->src.next(e->src.ctx, now, &spec) == 1) {
        struct rp_req *r = req_new(e, &spec);
        n++;
        rp_stats_offered(e->st, spec.tenant, spec.at_us);
        if (r == NULL) {
            rp_stats_done(e->st, spec.tenant, RP_OUT_CONN_ERROR, 0, spec.at_us, now);
            continue;
        }
        arm_deadline(r);
        place_or_wait(e, r);
    }
    if (e->stopping || e->src.done(e->src.ctx))
        e->arrivals_done = true;
    else if (n == ARRIVAL_BATCH)
        timer_in(e->arrival_tmr, 0);
    else
        arm_arrivals(e, rp_engine_clock(e));
    rp_engine_settle(e);
}

static void second_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rp_engine *e = arg;
    uint64_t now = rp_engine_clock(e);

    while (e->tick_cb != NULL && (e->secs_reported + 1) * 1000000 <= now) {
        e->tick_cb(e, e->secs_reported, 0, e->tick_arg);
        e->secs_reported++;
    }
    if (now >= e->hard_end_us && !e->over) {
        end_run(e);
        return;
    }
    timer_in(e->second_tmr, (e->secs_reported + 1) * 1000000 - now);
}

void rp_engine_stop(struct rp_engine *e)
{
    if (e->stopping) {
        if (!e->over)
            end_run(e);
        return;
    }
    e->stopping = true;
    e->arrivals_done = true;
    uint64_t now = rp_engine_clock(e);
    e->hard_end_us = CR_MIN(e->hard_end_us, now + e->p->client.timeout_ms * 1000 + 1000000);
    rp_engine_settle(e);
}

int rp_engine_run(struct rp_engine *e, rp_engine_tick_cb cb, void *arg)
{
    e->tick_cb = cb;
    e->tick_arg = arg;
    e->start_us = cr_now_us();
    if (e->start_us == 0)
        e->start_us = 1;
    e->tokens = CR_MAX(1.0, e->p->caps.rate * BUCKET_DEPTH_S);
    rp_engine_clock(e);
    arm_arrivals(e, 0);
    timer_in(e->second_tmr, 1000000);
    timer_in(e->sweep_tmr, CR_MIN(CR_MAX(e->p->client.timeout_ms * 1000 / 20, 1000), SWEEP_US));
    event_base_dispatch(e->base);
    if (!e->over)
        end_run(e);
    rp_engine_settle(e);
    if (cb != NULL)
        cb(e, (size_t)ceil((double)rp_engine_clock(e) / 1e6), 1, arg);
    return 0;
}

/* ------------------------------------------------------------ life cycle */

static void free_list_reqs(struct rp_req_list *l)
{
    struct rp_req *r;

    while ((r = TAILQ_FIRST(l)) != NULL) {
        TAILQ_REMOVE(l, r, link);
        r->conn = NULL;
        req_finish(r);
    }
}

void rp_engine_free(struct rp_engine *e)
{
    struct rp_conn *c;
    struct rp_req *r;

    if (e == NULL)
        return;
    while ((c = TAILQ_FIRST(&e->conns)) != NULL)
        rp_conn_close(c, RP_OUT_TIMEOUT, false);
    free_dead(e);
    for (size_t i = 0; e->ts != NULL && i < e->ntenant; i++)
        free_list_reqs(&e->ts[i].pending);
    free_list_reqs(&e->waiting);
    if (e->arrival_tmr != NULL)
        event_free(e->arrival_tmr);
    if (e->second_tmr != NULL)
        event_free(e->second_tmr);
    if (e->bucket_tmr != NULL)
        event_free(e->bucket_tmr);
    if (e->sweep_tmr != NULL)
        event_free(e->sweep_tmr);
    while ((r = SLIST_FIRST(&e->free_reqs)) != NULL) {
        SLIST_REMOVE_HEAD(&e->free_reqs, free_link);
        if (r->tmr != NULL)
            event_free(r->tmr);
        free(r);
    }
    for (size_t i = 0; i < e->nsessions; i++)
        SSL_SESSION_free(e->sessions[(e->shead + i) % RP_SESSIONS_MAX]);
    SSL_CTX_free(e->ssl_ctx);
    free(e->tcount);
    free(e->ts);
    free(e);
}

int rp_engine_new(struct event_base *base, const struct rp_profile *p,
                  const struct rp_engine_tenant *tenants, size_t ntenant,
                  const struct rp_source *src, struct rp_stats *st, struct rp_engine **out)
{
    struct rp_engine *e = calloc(1, sizeof(*e));
    int rc = CR_ENOMEM;

    *out = NULL;
    if (e == NULL)
        return CR_ENOMEM;
    TAILQ_INIT(&e->deadlines);
    SLIST_INIT(&e->free_reqs);
    TAILQ_INIT(&e->conns);
    TAILQ_INIT(&e->dead);
    TAILQ_INIT(&e->dirty);
    TAILQ_INIT(&e->waiting);
    e->base = base;
    e->p = p;
    e->tenants = tenants;
    e->ntenant = ntenant;
    e->src = *src;
    e->st = st;
    e->end_us = p->duration_ms * 1000;
    e->hard_end_us = e->end_us + p->client.timeout_ms * 1000 + 1000000;
    rp_rand_seed(&e->rng, (uint64_t)p->seed * 7919 + 17);
    e->ts = calloc(ntenant > 0 ? ntenant : 1, sizeof(*e->ts));
    e->tcount = calloc(p->target.naddrs > 0 ? p->target.naddrs : 1, sizeof(*e->tcount));
    for (size_t i = 0; e->ts != NULL && i < ntenant; i++) {
        TAILQ_INIT(&e->ts[i].pending);
        TAILQ_INIT(&e->ts[i].ready);
    }
    e->arrival_tmr = evtimer_new(base, arrival_cb, e);
    e->second_tmr = evtimer_new(base, second_cb, e);
    e->bucket_tmr = evtimer_new(base, bucket_cb, e);
    e->sweep_tmr = event_new(base, -1, EV_PERSIST, sweep_cb, e);
    if (e->ts == NULL || e->tcount == NULL || e->arrival_tmr == NULL || e->second_tmr == NULL ||
        e->bucket_tmr == NULL || e->sweep_tmr == NULL)
        goto fail;
    rc = rp_conn_tls_ctx(p, &e->ssl_ctx);
    if (rc != 0)
        goto fail;
    SSL_CTX_set_app_data(e->ssl_ctx, e);
    SSL_CTX_sess_set_new_cb(e->ssl_ctx, new_session_cb);
    *out = e;
    return 0;
fail:
    rp_engine_free(e);
    return rc;
}
