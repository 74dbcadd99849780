/* rp_stats.c - per tenant, per second and per phase counters of a run. */
#include "rp_stats.h"

#include <stdlib.h>
#include <string.h>

#include "rp_hist.h"

struct rp_stats {
    size_t ntenant, nsec, nphase;
    const struct rp_phase_def *phases;
    struct rp_series *series; /* ntenant, each with nsec + nphase cells */
    size_t hist_bytes;        /* spent on timeline histograms */
    struct rp_hist *lag;      /* sent - intended, every attempt */
};

static void free_cell(struct rp_cell *c)
{
    rp_hist_free(c->lat);
    c->lat = NULL;
}

void rp_stats_free(struct rp_stats *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; s->series != NULL && i < s->ntenant; i++) {
        struct rp_series *t = &s->series[i];
        for (size_t j = 0; t->sec != NULL && j < s->nsec; j++)
            free_cell(&t->sec[j]);
        for (size_t j = 0; t->phase != NULL && j < s->nphase; j++)
            free_cell(&t->phase[j]);
        free_cell(&t->total);
        free(t->sec);
        free(t->phase);
    }
    free(s->series);
    rp_hist_free(s->lag);
    free(s);
}

struct rp_stats *rp_stats_new(size_t ntenant, const char *const *names, size_t nsec, size_t nphase,
                              const struct rp_phase_def *phases)
{
    struct rp_stats *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->ntenant = ntenant;
    s->nsec = nsec > 0 ? nsec : 1;
    s->nphase = nphase;
    s->phases = phases;
    s->series = calloc(ntenant > 0 ? ntenant : 1, sizeof(*s->series));
    s->lag = rp_hist_new();
    if (s->series == NULL || s->lag == NULL)
        goto fail;
    for (size_t i = 0; i < ntenant; i++) {
        struct rp_series *t = &s->series[i];
        t->tenant = names[i];
        t->nsec = s->nsec;
        t->nphase = nphase;
        t->sec = calloc(s->nsec, sizeof(*t->sec));
        t->phase = calloc(nphase > 0 ? nphase : 1, sizeof(*t->phase));
        if (t->sec == NULL || t->phase == NULL || (t->total.lat = rp_hist_new()) == NULL)
            goto fail;
        for (size_t j = 0; j < nphase; j++)
            if ((t->phase[j].lat = rp_hist_new()) == NULL)
                goto fail;
    }
    return s;
fail:
    rp_stats_free(s);
    return NULL;
}

static struct rp_cell *sec_cell(struct rp_stats *s, size_t tenant, uint64_t t_us)
{
    uint64_t i = t_us / 1000000;

    return &s->series[tenant].sec[i < s->nsec ? i : s->nsec - 1];
}

static int in_phase(const struct rp_phase_def *p, uint64_t t_us)
{
    double t = (double)t_us / 1e6;

    return t >= p->start_s && t < p->end_s;
}

/* Applies fn to the tenant's total and to every phase holding t_us. */
#define EACH_SUMMARY(s, tenant, t_us, cell, stmt)                                                  \
    do {                                                                                           \
        struct rp_series *ser_ = &(s)->series[tenant];                                             \
        struct rp_cell *cell = &ser_->total;                                                       \
        stmt;                                                                                      \
        for (size_t j_ = 0; j_ < (s)->nphase; j_++) {                                              \
            if (in_phase(&(s)->phases[j_], (t_us))) {                                              \
                cell = &ser_->phase[j_];                                                           \
                stmt;                                                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void rp_stats_offered(struct rp_stats *s, size_t tenant, uint64_t at_us)
{
    sec_cell(s, tenant, at_us)->offered++;
    EACH_SUMMARY(s, tenant, at_us, c, c->offered++);
}

const struct rp_hist *rp_stats_lag(const struct rp_stats *s)
{
    return s->lag;
}

void rp_stats_sent(struct rp_stats *s, size_t tenant, uint64_t intended_us, uint64_t now_us)
{
    rp_hist_add(s->lag, now_us > intended_us ? now_us - intended_us : 0);
    sec_cell(s, tenant, now_us)->sent++;
    EACH_SUMMARY(s, tenant, intended_us, c, c->sent++);
}

static void count_status(struct rp_cell *c, int status)
{
    if (status >= 200 && status <= 299)
        c->ok++;
    else if (status == 429)
        c->s429++;
    else if (status == 503)
        c->s503++;
    else
        c->other++;
}

/* The timeline cell's histogram, made on first use within the budget. */
static struct rp_hist *sec_hist(struct rp_stats *s, struct rp_cell *c)
{
    if (c->lat == NULL && s->hist_bytes + rp_hist_size() <= RP_STATS_TIMELINE_BUDGET) {
        c->lat = rp_hist_new();
        if (c->lat != NULL)
            s->hist_bytes += rp_hist_size();
    }
    return c->lat;
}

void rp_stats_done(struct rp_stats *s, size_t tenant, enum rp_outcome how, int status,
                   uint64_t intended_us, uint64_t now_us)
{
    struct rp_cell *sc = sec_cell(s, tenant, now_us);
    uint64_t lat = now_us > intended_us ? now_us - intended_us : 0;

    switch (how) {
    case RP_OUT_STATUS: {
        struct rp_hist *h = sec_hist(s, sc);
        count_status(sc, status);
        if (h != NULL)
            rp_hist_add(h, lat);
        EACH_SUMMARY(s, tenant, intended_us, c,
                     (count_status(c, status), rp_hist_add(c->lat, lat)));
        break;
    }
    case RP_OUT_CONN_ERROR:
        sc->conn_errors++;
        EACH_SUMMARY(s, tenant, intended_us, c, c->conn_errors++);
        break;
    case RP_OUT_TIMEOUT:
        sc->timeouts++;
        EACH_SUMMARY(s, tenant, intended_us, c, c->timeouts++);
        break;
    }
}

void rp_stats_gave_up(struct rp_stats *s, size_t tenant, uint64_t intended_us, uint64_t now_us)
{
    sec_cell(s, tenant, now_us)->gave_up++;
    EACH_SUMMARY(s, tenant, intended_us, c, c->gave_up++);
}

void rp_stats_handshake(struct rp_stats *s, size_t tenant, int resumed, uint64_t now_us)
{
    struct rp_cell *sc = sec_cell(s, tenant, now_us);

    if (resumed)
        sc->resumed_hs++;
    else
        sc->full_hs++;
    EACH_SUMMARY(s, tenant, now_us, c, (resumed ? c->resumed_hs++ : c->full_hs++));
}

static void add_cell(struct rp_cell *into, const struct rp_cell *c)
{
    rp_cell_add(into, c);
    if (into->lat != NULL && c->lat != NULL)
        rp_hist_merge(into->lat, c->lat);
}

static void zero_cell(struct rp_cell *out)
{
    struct rp_hist *h = out->lat;

    memset(out, 0, sizeof(*out));
    out->lat = h;
    if (h != NULL)
        rp_hist_reset(h);
}

void rp_stats_second(const struct rp_stats *s, size_t sec, struct rp_cell *out)
{
    zero_cell(out);
    if (sec >= s->nsec)
        return;
    for (size_t i = 0; i < s->ntenant; i++)
        add_cell(out, &s->series[i].sec[sec]);
}

void rp_stats_totals(const struct rp_stats *s, struct rp_cell *out)
{
    zero_cell(out);
    for (size_t i = 0; i < s->ntenant; i++)
        add_cell(out, &s->series[i].total);
}

void rp_stats_view(struct rp_stats *s, size_t nsec, struct rp_run *r)
{
    if (nsec == 0 || nsec > s->nsec)
        nsec = s->nsec;
    for (size_t i = 0; i < s->ntenant; i++)
        s->series[i].nsec = nsec;
    r->ntenant = s->ntenant;
    r->tenants = s->series;
    r->nphase = s->nphase;
    r->phases = s->phases;
}
