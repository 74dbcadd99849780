/* quota.c - global tenant rates leased from Redis (quota.h). */
#include "quota.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "common.h"
#include "log.h"
#include "rand.h"
#include "shm.h"

#define BACKOFF_MIN_MS 100

/* One atomic GCRA step on Redis time: KEYS[1] the tenant's bucket, ARGV
 * rate (per s), burst, want. Grants min(want, available) tokens; returns
 * {granted, us until the next token} (0 when all were granted). */
static const char script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = 1000000 / tonumber(ARGV[1])\n"
    "local tau = tonumber(ARGV[2]) * T\n"
    "local want = tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]))\n"
    "if tat == nil or tat < now then tat = now end\n"
    "local n = math.floor((now + tau - tat) / T)\n"
    "if n > want then n = want end\n"
    "if n < 0 then n = 0 end\n"
    "tat = tat + n * T\n"
    "if n > 0 then\n"
    "  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',\n"
    "             math.ceil((tat - now) / 1000) + 1000)\n"
    "end\n"
    "local wait = 0\n"
    "if n < want then wait = math.max(0, math.ceil(tat + T - tau - now)) end\n"
    "return {n, wait}\n";

struct lease {
    bool global;
    double rate; /* the fleet's, per s */
    uint32_t burst;
    uint32_t size;
    uint32_t tokens;
    bool want;   /* wants a refill */
    bool asking; /* an ask is in flight */
    uint64_t asked_us;
    uint64_t next_ask_us;
};

enum link { L_IDLE, L_CONNECTING, L_CONNECTED };

struct cr_quota {
    struct lease *l;
    uint32_t n;
    uint32_t hosts;
    bool up;
    const struct cr_cfg_quota *cfg;
    const struct cr_tenants *tenants;
    /* the Redis part */
    struct event_base *base;
    struct cr_shm_worker_stats *stats;
    redisAsyncContext *ac;
    enum link link;
    uint64_t link_since_us;
    uint64_t backoff_ms;
    bool err_logged; /* an error answer was logged since the last good one */
    struct event *kick;  /* ask now (deferred) */
    struct event *tick;  /* timeouts, due asks */
    struct event *retry; /* reconnect */
    struct event *drop;  /* drop the connection (deferred out of a callback) */
    struct cr_rand rng;
    char sha[41];
    char *password;
    bool warned; /* logged the fallback since the last time it was up */
    bool fb;     /* counted in stats->quota_fallback (set_fallback) */
};

/* ------------------------------------------------------------ accounting */

int cr_quota_new(const struct cr_cfg_quota *cfg, const struct cr_tenants *t, uint32_t nworkers,
                 struct cr_quota **out)
{
    if (out)
        *out = NULL;
    if (!cfg || !t || !out || nworkers == 0)
        return CR_EINVAL;
    struct cr_quota *q = calloc(1, sizeof(*q));
    if (!q)
        return CR_ENOMEM;
    q->n = cr_tenants_count(t);
    q->l = calloc(q->n, sizeof(*q->l));
    if (!q->l) {
        free(q);
        return CR_ENOMEM;
    }
    q->cfg = cfg;
    q->tenants = t;
    cr_rand_seed(&q->rng, 1); /* cr_quota_start seeds it per process */
    q->hosts = cfg->hosts == 0 ? 1 : cfg->hosts;
    for (uint32_t i = 0; i < q->n; i++) {
        const struct cr_tenant *te = cr_tenants_at(t, i);
        struct lease *l = &q->l[i];
        l->global = cfg->enabled && te->global && te->limits.rate > 0.0;
        if (!l->global)
            continue;
        l->rate = te->limits.rate;
        l->burst = te->limits.burst == 0 ? 1 : te->limits.burst;
        double size = cfg->lease > 0 ? (double)cfg->lease
                                     : floor(l->rate / (3.0 * q->hosts * (double)nworkers));
        l->size = (uint32_t)CR_MAX(1.0, CR_MIN(size, (double)l->burst));
    }
    *out = q;
    return 0;
}

void cr_quota_seed(struct cr_quota *q, uint64_t seed)
{
    cr_rand_seed(&q->rng, seed);
}

bool cr_quota_is_global(const struct cr_quota *q, uint32_t index)
{
    return q && index < q->n && q->l[index].global;
}

double cr_quota_local_rate(const struct cr_quota *q, double rate)
{
    return rate / (double)q->hosts;
}

uint32_t cr_quota_local_burst(const struct cr_quota *q, uint32_t burst)
{
    return CR_MAX(1u, burst / q->hosts);
}

uint32_t cr_quota_lease_size(const struct cr_quota *q, uint32_t index)
{
    return cr_quota_is_global(q, index) ? q->l[index].size : 0;
}

bool cr_quota_up(const struct cr_quota *q)
{
    return q && q->up;
}

static void kick(struct cr_quota *q)
{
    if (q->kick && q->link == L_CONNECTED)
        event_active(q->kick, 0, 0);
}

enum cr_quota_take cr_quota_take(struct cr_quota *q, uint32_t index, uint64_t now_us,
                                 uint64_t *retry_at_us)
{
    if (!q->up || !cr_quota_is_global(q, index))
        return CR_QUOTA_LOCAL;
    struct lease *l = &q->l[index];
    if (l->tokens > 0) {
        l->tokens--;
        if (l->tokens <= l->size / 2 && !l->want) {
            l->want = true;
            if (!l->asking && l->next_ask_us <= now_us)
                kick(q);
        }
        return CR_QUOTA_LEASED;
    }
    if (!l->want) {
        l->want = true;
        if (!l->asking && l->next_ask_us <= now_us)
            kick(q);
    }
    if (retry_at_us)
        *retry_at_us = CR_MAX(now_us + CR_QUOTA_RETRY_US, l->next_ask_us);
    return CR_QUOTA_EMPTY;
}

uint64_t cr_quota_wait_us(const struct cr_quota *q, uint32_t index, uint64_t now_us, uint32_t n)
{
    if (!cr_quota_is_global(q, index))
        return 0;
    const struct lease *l = &q->l[index];
    if (l->tokens > n)
        return 0;
    double missing = (double)n - (double)l->tokens; /* beyond the first */
    double w = missing * 1e6 / l->rate;
    if (l->next_ask_us > now_us)
        w += (double)(l->next_ask_us - now_us);
    return (uint64_t)CR_MAX((double)CR_QUOTA_RETRY_US, w);
}

bool cr_quota_due(struct cr_quota *q, uint64_t now_us, uint32_t *index, uint32_t *want,
                  uint64_t *next_us)
{
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < q->n; i++) {
        struct lease *l = &q->l[i];
        if (!l->global || !l->want || l->asking)
            continue;
        if (l->next_ask_us > now_us) {
            next = CR_MIN(next, l->next_ask_us);
            continue;
        }
        l->want = false;
        l->asking = true;
        l->asked_us = now_us;
        *index = i;
        /* top it up to a lease and a half: what is left plus one lease */
        *want = l->tokens >= l->size ? 1 : l->size + l->size / 2 - l->tokens;
        return true;
    }
    if (next_us)
        *next_us = next;
    return false;
}

void cr_quota_grant(struct cr_quota *q, uint32_t index, uint32_t granted, uint64_t wait_us,
                    uint64_t now_us)
{
    if (!cr_quota_is_global(q, index))
        return;
    struct lease *l = &q->l[index];
    l->asking = false;
    l->tokens += granted;
    q->up = true;
    /* short: ask again once the bucket has refilled about half a lease, so
     * that contending workers do not poll Redis once per token. Jittered
     * (50% to 150%): every worker that found the bucket empty is told the
     * same next token time, and without it the one that happened to ask
     * first would ask first again every time and take nearly everything */
    double half = (double)CR_MAX(1u, l->size / 2) * 1e6 / l->rate;
    l->next_ask_us =
        wait_us == 0 ? now_us : now_us + wait_us + (uint64_t)(half * (0.5 + cr_rand_01(&q->rng)));
    if (l->tokens <= l->size / 2)
        l->want = true;
}

bool cr_quota_set_link(struct cr_quota *q, bool connected)
{
    bool was = q->up;
    for (uint32_t i = 0; i < q->n; i++) {
        struct lease *l = &q->l[i];
        l->asking = false;
        /* every one asks, even with a full lease: the answer is what
         * brings global rates back (nothing takes from a lease before) */
        l->want = connected && l->global;
        l->next_ask_us = 0;
    }
    if (!connected)
        q->up = false;
    return was != q->up;
}

/* ------------------------------------------------------------ Redis */

static uint64_t backoff(struct cr_quota *q)
{
    uint64_t b = q->backoff_ms;
    q->backoff_ms = CR_MIN(q->cfg->reconnect_max_ms, CR_MAX(b * 2, (uint64_t)BACKOFF_MIN_MS));
    /* 50% to 150%: a fleet that lost Redis together does not come back in step */
    return (uint64_t)((double)b * (0.5 + cr_rand_01(&q->rng)));
}

/* This worker's part of the quota_fallback gauge: added and taken back,
 * not stored, as a reload's two generations of worker id N share the
 * slot - a new one without global quotas must not hide the old one's
 * fallback, nor the old one's leave 1 behind for good: it takes its part
 * back when it goes (cr_quota_free). */
static void set_fallback(struct cr_quota *q, bool on)
{
    if (!q->stats || q->fb == on)
        return;
    q->fb = on;
    if (on)
        atomic_fetch_add_explicit(&q->stats->quota_fallback, 1, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&q->stats->quota_fallback, 1, memory_order_relaxed);
}

static void fallback(struct cr_quota *q, const char *why)
{
    bool changed = cr_quota_set_link(q, false);
    set_fallback(q, true);
    if (changed || !q->warned) {
        if (q->stats)
            atomic_fetch_add(&q->stats->quota_fallbacks, 1);
        cr_log_warn("global quotas: Redis at %s %s: per-host share (rate / %u) until it is back",
                    q->cfg->addr.text, why, q->hosts);
        q->warned = true;
    }
}

static void schedule_retry(struct cr_quota *q)
{
    uint64_t ms = backoff(q);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(q->retry, &tv);
}

/* Lets go of the connection; not from inside a hiredis callback. */
static void disconnect(struct cr_quota *q, const char *why)
{
    redisAsyncContext *ac = q->ac;
    q->ac = NULL; /* the callbacks redisAsyncFree makes see it is not theirs */
    q->link = L_IDLE;
    fallback(q, why);
    if (ac)
        redisAsyncFree(ac);
    schedule_retry(q);
}

static void on_drop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    disconnect(arg, "answered with an error");
}

static void send_ask(struct cr_quota *q, uint32_t i, uint32_t want, bool eval);

static void on_lease(redisAsyncContext *c, void *reply, void *priv)
{
    struct cr_quota *q = c->data;
    redisReply *r = reply;
    uint32_t i = (uint32_t)(uintptr_t)priv;

    if (q == NULL || q->ac != c || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        struct lease *l = &q->l[i];
        send_ask(q, i, l->size + l->size / 2 - CR_MIN(l->tokens, l->size), true);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[0]->integer < 0 || r->element[1]->integer < 0) {
        if (r->type == REDIS_REPLY_ERROR && !q->err_logged) /* once until it answers */
            cr_log_error("global quotas: Redis at %s: %s", q->cfg->addr.text, r->str);
        q->err_logged = true;
        event_active(q->drop, 0, 0);
        return;
    }
    bool was = q->up;
    uint64_t now = cr_now_us();
    cr_quota_grant(q, i, (uint32_t)CR_MIN(r->element[0]->integer, (long long)UINT32_MAX),
                   (uint64_t)r->element[1]->integer, now);
    if (q->stats) {
        atomic_fetch_add(&q->stats->quota_tokens, (uint64_t)r->element[0]->integer);
    }
    set_fallback(q, false);
    if (!was) {
        q->warned = false;
        q->backoff_ms = 0;
        q->err_logged = false;
        cr_log_info("global quotas: Redis at %s answers: global rates", q->cfg->addr.text);
    }
    kick(q);
}

static void send_ask(struct cr_quota *q, uint32_t i, uint32_t want, bool eval)
{
    const struct cr_tenant *t = cr_tenants_at(q->tenants, i);
    const struct lease *l = &q->l[i];
    char rate[64], key[512];
    snprintf(rate, sizeof(rate), "%.9g", l->rate);
    snprintf(key, sizeof(key), "%s%s", q->cfg->prefix ? q->cfg->prefix : "", t->name);
    int rc = eval
                 ? redisAsyncCommand(q->ac, on_lease, (void *)(uintptr_t)i, "EVAL %s 1 %s %s %u %u",
                                     script, key, rate, l->burst, want)
                 : redisAsyncCommand(q->ac, on_lease, (void *)(uintptr_t)i,
                                     "EVALSHA %s 1 %s %s %u %u", q->sha, key, rate, l->burst, want);
    if (rc != REDIS_OK) {
        event_active(q->drop, 0, 0);
        return;
    }
    if (q->stats)
        atomic_fetch_add(&q->stats->quota_asks, 1);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct cr_quota *q = arg;
    uint32_t i, want;
    (void)fd;
    (void)what;
    if (q->link != L_CONNECTED)
        return;
    while (q->ac && cr_quota_due(q, cr_now_us(), &i, &want, NULL))
        send_ask(q, i, want, false);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct cr_quota *q = arg;
    uint64_t now = cr_now_us();
    (void)fd;
    (void)what;
    if (q->link == L_CONNECTING && now - q->link_since_us > q->cfg->connect_timeout_ms * 1000) {
        disconnect(q, "did not connect in time");
        return;
    }
    if (q->link != L_CONNECTED)
        return;
    for (uint32_t i = 0; i < q->n; i++) {
        if (q->l[i].asking && now - q->l[i].asked_us > q->cfg->command_timeout_ms * 1000) {
            disconnect(q, "did not answer in time");
            return;
        }
    }
    on_kick(fd, what, arg); /* asks that became due */
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    struct cr_quota *q = c->data;
    (void)status;
    if (q == NULL || q->ac != c)
        return;
    q->ac = NULL; /* hiredis frees it */
    q->link = L_IDLE;
    fallback(q, "closed the connection");
    schedule_retry(q);
}

static void on_connect(const redisAsyncContext *c, int status)
{
    struct cr_quota *q = c->data;
    if (q == NULL || q->ac != c)
        return;
    if (status != REDIS_OK) {
        q->ac = NULL; /* hiredis frees it */
        q->link = L_IDLE;
        fallback(q, "is unreachable");
        schedule_retry(q);
        return;
    }
    q->link = L_CONNECTED; /* the back-off is reset by a good answer, not by
                            * a connection that may refuse every command */
    cr_quota_set_link(q, true);
    kick(q);
}

static void on_auth(redisAsyncContext *c, void *reply, void *priv)
{
    struct cr_quota *q = c->data;
    redisReply *r = reply;
    (void)priv;
    if (q == NULL || q->ac != c || r == NULL || r->type != REDIS_REPLY_ERROR)
        return;
    if (!q->err_logged) /* once until it answers */
        cr_log_error("global quotas: Redis at %s refused AUTH: %s", q->cfg->addr.text, r->str);
    q->err_logged = true;
    event_active(q->drop, 0, 0);
}

static void connect_now(struct cr_quota *q)
{
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    const struct sockaddr_storage *ss = &q->cfg->addr.ss;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
    }
    q->link_since_us = cr_now_us();
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac) {
        fallback(q, "could not be connected to (out of memory)");
        schedule_retry(q);
        return;
    }
    if (ac->err) {
        fallback(q, "is unreachable");
        redisAsyncFree(ac);
        schedule_retry(q);
        return;
    }
    ac->data = q;
    if (redisLibeventAttach(ac, q->base) != REDIS_OK) {
        redisAsyncFree(ac);
        fallback(q, "could not be attached");
        schedule_retry(q);
        return;
    }
    q->ac = ac;
    q->link = L_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* pipelined before any script: Redis answers in order */
    if (q->password && q->cfg->user)
        redisAsyncCommand(ac, on_auth, NULL, "AUTH %s %s", q->cfg->user, q->password);
    else if (q->password)
        redisAsyncCommand(ac, on_auth, NULL, "AUTH %s", q->password);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

static int read_password(struct cr_quota *q)
{
    if (!q->cfg->password_file)
        return 0;
    FILE *f = fopen(q->cfg->password_file, "r");
    char line[1024];
    if (!f) {
        cr_log_error("global quotas: cannot read %s", q->cfg->password_file);
        return 0; /* Redis will say NOAUTH: fallback, logged */
    }
    int rc = 0;
    if (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if ((q->password = strdup(line)) == NULL)
            rc = CR_ENOMEM;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    return rc;
}

static void script_sha(char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(script, strlen(script), md, &len, EVP_sha1(), NULL);
    for (unsigned int i = 0; i < len && i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int cr_quota_start(struct cr_quota *q, struct event_base *base, struct cr_shm_worker_stats *stats)
{
    bool any = false;
    for (uint32_t i = 0; i < q->n; i++)
        any = any || q->l[i].global;
    if (!q->cfg->enabled || !any)
        return 0;
    q->base = base;
    q->stats = stats;
    cr_rand_seed_random(&q->rng);
    script_sha(q->sha);
    q->kick = event_new(base, -1, 0, on_kick, q);
    q->tick = event_new(base, -1, EV_PERSIST, on_tick, q);
    q->retry = evtimer_new(base, on_retry, q);
    q->drop = event_new(base, -1, 0, on_drop, q);
    if (!q->kick || !q->tick || !q->retry || !q->drop || read_password(q) < 0)
        return CR_ENOMEM;
    uint64_t ms = CR_MAX((uint64_t)5, q->cfg->command_timeout_ms / 4);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(q->tick, &tv);
    set_fallback(q, true); /* until Redis answers */
    q->backoff_ms = BACKOFF_MIN_MS;
    connect_now(q);
    return 0;
}

void cr_quota_unpublish(struct cr_quota *q)
{
    if (q)
        set_fallback(q, false);
}

void cr_quota_free(struct cr_quota *q)
{
    if (!q)
        return;
    set_fallback(q, false);
    if (q->ac) {
        redisAsyncContext *ac = q->ac;
        q->ac = NULL;
        redisAsyncFree(ac);
    }
    if (q->kick)
        event_free(q->kick);
    if (q->tick)
        event_free(q->tick);
    if (q->retry)
        event_free(q->retry);
    if (q->drop)
        event_free(q->drop);
    if (q->password) {
        OPENSSL_cleanse(q->password, strlen(q->password));
        free(q->password);
    }
    free(q->l);
    free(q);
}
