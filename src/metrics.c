/* metrics.c - the Prometheus exposition of the shared-memory counters. */
#include "metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "common.h"

static const char *const shed_reasons[CR_ADMIT_NREASONS] = {
    "tenant_rate_limit", "tenant_queue_full", "upstream_saturated", "deadline_unmeetable",
    "queue_deadline_exceeded"};
static const char *const classes[6] = {"reset", "1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const up_states[CR_SHM_UP_NSTATES] = {"idle", "connecting", "handshake",
                                                         "ready", "goaway"};

static uint64_t ld(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP corral_%s %s\n# TYPE corral_%s %s\n", name, help, name, type);
}

/* A label value, escaped as the format wants (\\, \", \n). */
static void label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void secs(FILE *f, uint64_t us)
{
    fprintf(f, "%llu.%06llu", (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
}

/* ------------------------------------------------------------ tenants */

static const char *tenant_name(const struct cr_tenants *t, uint32_t i)
{
    const struct cr_tenant *x = t ? cr_tenants_at(t, i) : NULL;
    return x ? x->name : "default";
}

static uint32_t ntenants(const struct cr_tenants *t)
{
    return t ? CR_MIN(cr_tenants_count(t), (uint32_t)CR_ADMIT_MAX_TENANTS) : 1;
}

/* One family with one series per tenant (a field of cr_shm_tenant_stats):
 * those of tenants [from, to), after the family's head when from is 0. */
struct tfam {
    const char *name, *type, *help;
    size_t field;
};

static void tenant_simple(FILE *f, const struct cr_metrics_src *s, const struct tfam *t,
                          uint32_t from, uint32_t to)
{
    if (from == 0)
        head(f, t->name, t->type, t->help);
    for (uint32_t i = from; i < to; i++) {
        const char *base = (const char *)&s->shm->tenants[i];
        fprintf(f, "corral_%s{tenant=\"", t->name);
        label(f, tenant_name(s->tenants, i));
        fprintf(f, "\"} %llu\n",
                (unsigned long long)ld((const _Atomic uint64_t *)(base + t->field)));
    }
}

static void hist(FILE *f, const char *name, const char *tenant, const struct cr_shm_hist *h)
{
    uint64_t cum = 0;
    for (int b = 0; b < CR_HIST_NBUCKETS; b++) {
        cum += ld(&h->bucket[b]);
        fprintf(f, "corral_%s_bucket{tenant=\"", name);
        label(f, tenant);
        if (b < CR_HIST_NBOUNDS) {
            fputs("\",le=\"", f);
            secs(f, cr_hist_bounds_us[b]);
            fprintf(f, "\"} %llu\n", (unsigned long long)cum);
        } else {
            fprintf(f, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
    }
    fprintf(f, "corral_%s_sum{tenant=\"", name);
    label(f, tenant);
    fputs("\"} ", f);
    secs(f, ld(&h->sum_us));
    fprintf(f, "\ncorral_%s_count{tenant=\"", name);
    label(f, tenant);
    fprintf(f, "\"} %llu\n", (unsigned long long)cum);
}

#define TS(x) offsetof(struct cr_shm_tenant_stats, x)

/* The families of one series per tenant, first in the document. */
static const struct tfam simple[] = {
    {"tenant_requests_admitted_total", "counter", "Requests admission sent upstream.",
     TS(admitted)},
    {"tenant_requests_queued_total", "counter", "Admitted requests that waited in the queue first.",
     TS(queued)},
    {"tenant_tunnels_open", "gauge", "Tunnels (WebSocket) of the tenant open now.",
     TS(tunnels_open)},
    {"tenant_tunnels_opened_total", "counter", "Tunnels admitted.", TS(tunnels_opened)},
    {"tenant_tunnels_refused_total", "counter",
     "Tunnels refused 429 by the tenant's tunnels or tunnel_rate.", TS(tunnels_refused)},
    {"tenant_streaming_open", "gauge",
     "Responses in the tenant's streaming class now (out of the request capacity).",
     TS(streaming_open)},
    {"tenant_streaming_moved_total", "counter",
     "Responses moved to the streaming class (text/event-stream, or open past "
     "upstream.streaming_after).",
     TS(streaming_moved)},
    {"tenant_streaming_over_cap_total", "counter",
     "Streaming responses kept in the request class: the tenant's streaming class, the "
     "worker's (upstream.max_streaming) or the upstream's room beyond max_streams was full.",
     TS(streaming_over_cap)},
    {"tenant_streaming_refused_total", "counter",
     "Requests for an event stream (accept: text/event-stream) refused 429 at admission: the "
     "tenant's streaming class was full.",
     TS(streaming_refused)},
    {"tenant_streaming_client_bound_total", "counter",
     "Responses open past upstream.streaming_after kept in the request class: their bytes "
     "waited on the client (a slow download, not a long poll).",
     TS(streaming_client_bound)},
};

/* The tenant families, in the document's order; a step of the rendering
 * (cr_metrics_step) renders one of them for a run of tenants. */
enum {
    TF_SHED = (int)(sizeof simple / sizeof simple[0]),
    TF_RESPONSES,
    TF_HIST,
    TF_N = TF_HIST + CR_HIST_N
};

/* Family fam's series for tenants [from, to), after its head when from is
 * 0. */
static void tenant_family(FILE *f, const struct cr_metrics_src *s, int fam, uint32_t from,
                          uint32_t to)
{
    static const char *const hnames[CR_HIST_N] = {"tenant_queue_wait_seconds",
                                                  "tenant_upstream_latency_seconds",
                                                  "tenant_request_duration_seconds"};
    static const char *const hhelp[CR_HIST_N] = {
        "Time requests waited in the tenant's admission queue (0 for those sent at once).",
        "Time from sending a request upstream to the response head.",
        "Time from the request's start to the end of its response."};
    if (fam < TF_SHED) {
        tenant_simple(f, s, &simple[fam], from, to);
        return;
    }
    switch (fam) {
    case TF_SHED:
        if (from == 0)
            head(f, "tenant_requests_shed_total", "counter",
                 "Requests refused by admission, by reason.");
        for (uint32_t i = from; i < to; i++)
            for (int k = 0; k < CR_ADMIT_NREASONS; k++) {
                fputs("corral_tenant_requests_shed_total{tenant=\"", f);
                label(f, tenant_name(s->tenants, i));
                fprintf(f, "\",reason=\"%s\"} %llu\n", shed_reasons[k],
                        (unsigned long long)ld(&s->shm->tenants[i].shed[k]));
            }
        return;
    case TF_RESPONSES:
        if (from == 0)
            head(f, "tenant_responses_total", "counter",
                 "Responses by status class (reset: none, or broken off).");
        for (uint32_t i = from; i < to; i++)
            for (int k = 0; k < 6; k++) {
                fputs("corral_tenant_responses_total{tenant=\"", f);
                label(f, tenant_name(s->tenants, i));
                fprintf(f, "\",class=\"%s\"} %llu\n", classes[k],
                        (unsigned long long)ld(&s->shm->tenants[i].responses_by_class[k]));
            }
        return;
    default: {
        int h = fam - TF_HIST;
        if (from == 0)
            head(f, hnames[h], "histogram", hhelp[h]);
        for (uint32_t i = from; i < to; i++)
            hist(f, hnames[h], tenant_name(s->tenants, i), &s->shm->tenants[i].hist[h]);
    }
    }
}

/* ------------------------------------------------------------ listeners */

/* Sum over every worker slot (counters of slots no longer used stay in,
 * so that the counters never go down after a reload to fewer workers). */
static uint64_t lsum(const struct cr_shm *shm, size_t l, size_t field)
{
    uint64_t v = 0;
    for (size_t w = 0; w < CR_SHM_MAX_WORKERS; w++)
        v += ld((const _Atomic uint64_t *)((const char *)&shm->listeners[w][l] + field));
    return v;
}

static void lseries(FILE *f, const struct cr_metrics_src *s, size_t l, const char *name,
                    const char *extra, size_t field, bool seconds)
{
    fprintf(f, "corral_%s{listener=\"", name);
    label(f, s->cfg->listeners[l].name ? s->cfg->listeners[l].name : "");
    fprintf(f, "\"%s} ", extra);
    uint64_t v = lsum(s->shm, l, field);
    if (seconds)
        secs(f, v);
    else
        fprintf(f, "%llu", (unsigned long long)v);
    fputc('\n', f);
}

#define LF(x) offsetof(struct cr_shm_listener_stats, x)

static void listeners(FILE *f, const struct cr_metrics_src *s)
{
    size_t n = CR_MIN(s->cfg->nlisteners, (size_t)CR_SHM_MAX_LISTENERS);
    char extra[64];
    head(f, "listener_connections_accepted_total", "counter", "Client connections accepted.");
    for (size_t l = 0; l < n; l++)
        lseries(f, s, l, "listener_connections_accepted_total", "", LF(conns_accepted), false);
    head(f, "listener_connections_open", "gauge", "Client connections open now.");
    for (size_t l = 0; l < n; l++)
        lseries(f, s, l, "listener_connections_open", "", LF(conns_open), false);
    head(f, "listener_handshakes_total", "counter",
         "TLS handshakes completed: full, or resumed from a session.");
    for (size_t l = 0; l < n; l++) {
        lseries(f, s, l, "listener_handshakes_total", ",type=\"full\"", LF(handshakes_full), false);
        lseries(f, s, l, "listener_handshakes_total", ",type=\"resumed\"", LF(handshakes_resumed),
                false);
    }
    head(f, "listener_handshake_failures_total", "counter", "TLS handshakes failed, by reason.");
    for (size_t l = 0; l < n; l++)
        for (int k = 0; k < CR_HSF_MAX; k++) {
            snprintf(extra, sizeof(extra), ",reason=\"%s\"", cr_hs_fail_names[k]);
            lseries(f, s, l, "listener_handshake_failures_total", extra,
                    LF(hs_fail) + (size_t)k * sizeof(_Atomic uint64_t), false);
        }
    head(f, "listener_handshake_cpu_seconds_total", "counter",
         "CPU time the workers spent in completed TLS handshakes.");
    for (size_t l = 0; l < n; l++) {
        lseries(f, s, l, "listener_handshake_cpu_seconds_total", ",type=\"full\"",
                LF(hs_cpu_us_full), true);
        lseries(f, s, l, "listener_handshake_cpu_seconds_total", ",type=\"resumed\"",
                LF(hs_cpu_us_resumed), true);
    }
}

/* ------------------------------------------------------------ upstreams */

static uint64_t usum(const struct cr_shm *shm, size_t a, size_t field)
{
    uint64_t v = 0;
    for (size_t w = 0; w < CR_SHM_MAX_WORKERS; w++)
        v += ld((const _Atomic uint64_t *)((const char *)&shm->upstreams[w][a] + field));
    return v;
}

#define UF(x) offsetof(struct cr_shm_up_stats, x)

static void useries(FILE *f, const struct cr_metrics_src *s, size_t a, const char *name,
                    const char *extra, size_t field)
{
    fprintf(f, "corral_%s{upstream=\"", name);
    label(f, s->cfg->upstream.addrs[a].text);
    /* a gauge summed over slots may be caught between two workers' updates */
    fprintf(f, "\"%s} %lld\n", extra, (long long)usum(s->shm, a, field));
}

/* upstream.adaptive: each worker's limit and what it learned it from. */
static void adaptive(FILE *f, const struct cr_metrics_src *s)
{
    uint32_t n = CR_MIN(s->cfg->workers, (uint32_t)CR_SHM_MAX_WORKERS);
    head(f, "upstream_adaptive_limit", "gauge",
         "Each worker's adaptive limit on requests in flight upstream (the host's is the sum).");
    for (uint32_t w = 0; w < n; w++)
        fprintf(f, "corral_upstream_adaptive_limit{worker=\"%u\"} %llu\n", w + 1,
                (unsigned long long)ld(&s->shm->workers[w].adaptive_limit));
    head(f, "upstream_adaptive_min_rtt_seconds", "gauge",
         "Each worker's minimum upstream latency, from its last probe at the floor.");
    for (uint32_t w = 0; w < n; w++)
        fprintf(f, "corral_upstream_adaptive_min_rtt_seconds{worker=\"%u\"} %.6f\n", w + 1,
                (double)ld(&s->shm->workers[w].adaptive_min_rtt_us) / 1e6);
    head(f, "upstream_adaptive_gradient", "gauge",
         "Each worker's last latency gradient: above 1 the limit grows, below 1 it is cut.");
    for (uint32_t w = 0; w < n; w++)
        fprintf(f, "corral_upstream_adaptive_gradient{worker=\"%u\"} %.3f\n", w + 1,
                (double)ld(&s->shm->workers[w].adaptive_gradient_milli) / 1000.0);
}

static void upstreams(FILE *f, const struct cr_metrics_src *s)
{
    size_t n = CR_MIN(s->cfg->upstream.naddrs, (size_t)CR_SHM_MAX_UPADDRS);
    char extra[64];
    head(f, "upstream_connections", "gauge", "Upstream connections by state.");
    for (size_t a = 0; a < n; a++)
        for (int k = 0; k < CR_SHM_UP_NSTATES; k++) {
            snprintf(extra, sizeof(extra), ",state=\"%s\"", up_states[k]);
            useries(f, s, a, "upstream_connections", extra,
                    UF(conns) + (size_t)k * sizeof(_Atomic uint64_t));
        }
    head(f, "upstream_streams_in_flight", "gauge", "Requests on upstream streams now.");
    for (size_t a = 0; a < n; a++)
        useries(f, s, a, "upstream_streams_in_flight", "", UF(inflight));
    head(f, "upstream_reconnects_total", "counter", "Upstream connection attempts after the first.");
    for (size_t a = 0; a < n; a++)
        useries(f, s, a, "upstream_reconnects_total", "", UF(reconnects));
    head(f, "upstream_retries_total", "counter",
         "Requests retried on another upstream connection after their stream failed here.");
    for (size_t a = 0; a < n; a++)
        useries(f, s, a, "upstream_retries_total", "", UF(retries));
    head(f, "upstream_gateway_errors_total", "counter",
         "Responses 502 and 504 to requests sent to this upstream address.");
    for (size_t a = 0; a < n; a++) {
        useries(f, s, a, "upstream_gateway_errors_total", ",code=\"502\"", UF(responses_502));
        useries(f, s, a, "upstream_gateway_errors_total", ",code=\"504\"", UF(responses_504));
    }
    uint64_t cap = 0;
    for (size_t w = 0; w < CR_SHM_MAX_WORKERS; w++)
        cap += ld(&s->shm->workers[w].admit_capacity);
    head(f, "upstream_admission_capacity", "gauge",
         "Upstream streams admission may hand out now, over all workers and addresses.");
    fprintf(f, "corral_upstream_admission_capacity %lld\n", (long long)cap);
    uint64_t tconns = 0;
    for (size_t w = 0; w < CR_SHM_MAX_WORKERS; w++)
        tconns += ld(&s->shm->workers[w].tunnel_connections);
    head(f, "upstream_tunnel_connections", "gauge",
         "Tunnels' own upstream connections (WebSocket over HTTP/1.1) open now, over all workers.");
    fprintf(f, "corral_upstream_tunnel_connections %llu\n", (unsigned long long)tconns);
    uint64_t fb = 0, fbs = 0, asks = 0, toks = 0;
    for (size_t w = 0; w < CR_SHM_MAX_WORKERS; w++) {
        fb += ld(&s->shm->workers[w].quota_fallback);
        fbs += ld(&s->shm->workers[w].quota_fallbacks);
        asks += ld(&s->shm->workers[w].quota_asks);
        toks += ld(&s->shm->workers[w].quota_tokens);
    }
    head(f, "quota_fallback", "gauge",
         "Workers whose global tenant rates use the per-host share now (Redis unreachable).");
    fprintf(f, "corral_quota_fallback %llu\n", (unsigned long long)fb);
    head(f, "quota_fallback_total", "counter",
         "Times a worker went from global rates to the per-host share.");
    fprintf(f, "corral_quota_fallback_total %llu\n", (unsigned long long)fbs);
    head(f, "quota_lease_requests_total", "counter", "Lease scripts sent to Redis.");
    fprintf(f, "corral_quota_lease_requests_total %llu\n", (unsigned long long)asks);
    head(f, "quota_leased_tokens_total", "counter", "Tokens Redis granted to this host.");
    fprintf(f, "corral_quota_leased_tokens_total %llu\n", (unsigned long long)toks);
    if (s->cfg->upstream.adaptive.enabled)
        adaptive(f, s);
}

/* ------------------------------------------------------------ process */

int cr_metrics_proc_fds(long pid, uint64_t *open, uint64_t *max)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return CR_EIO;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    snprintf(path, sizeof(path), "/proc/%ld/limits", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return CR_EIO;
    int rc = CR_EIO;
    while (rc < 0 && fgets(line, sizeof(line), f)) {
        unsigned long long soft;
        if (strncmp(line, "Max open files", 14) == 0 && sscanf(line + 14, "%llu", &soft) == 1) {
            *max = soft;
            rc = 0;
        }
    }
    fclose(f);
    *open = n;
    return rc;
}

static void process(FILE *f, const struct cr_metrics_src *s)
{
    head(f, "workers", "gauge", "Worker processes the configuration runs.");
    fprintf(f, "corral_workers %u\n", s->cfg->workers);
    head(f, "worker_restarts_total", "counter", "Workers restarted after they died.");
    fprintf(f, "corral_worker_restarts_total %llu\n",
            (unsigned long long)ld(&s->shm->worker_restarts));
    head(f, "generation", "gauge", "The configuration generation serving (1, then +1 per reload).");
    fprintf(f, "corral_generation %llu\n", (unsigned long long)ld(&s->shm->generation));
    head(f, "reloads_total", "counter", "Reloads that started a new generation.");
    fprintf(f, "corral_reloads_total %llu\n", (unsigned long long)ld(&s->shm->reloads));
    uint32_t n = CR_MIN(s->cfg->workers, (uint32_t)CR_SHM_MAX_WORKERS);
    head(f, "worker_open_fds", "gauge", "Open file descriptors of each worker.");
    for (uint32_t w = 0; w < n; w++)
        if (ld(&s->shm->worker_max_fds[w]))
            fprintf(f, "corral_worker_open_fds{worker=\"%u\"} %llu\n", w + 1,
                    (unsigned long long)ld(&s->shm->worker_fds[w]));
    head(f, "worker_max_fds", "gauge", "Each worker's limit of open file descriptors.");
    for (uint32_t w = 0; w < n; w++)
        if (ld(&s->shm->worker_max_fds[w]))
            fprintf(f, "corral_worker_max_fds{worker=\"%u\"} %llu\n", w + 1,
                    (unsigned long long)ld(&s->shm->worker_max_fds[w]));
}

struct cr_metrics_render {
    struct cr_metrics_src src;
    int fam;       /* the tenant family under way (TF_N: the rest, then done) */
    uint32_t next; /* its next tenant */
};

int cr_metrics_begin(const struct cr_metrics_src *src, struct cr_metrics_render **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return CR_ENOMEM;
    (*out)->src = *src;
    return 0;
}

int cr_metrics_step(struct cr_metrics_render *m, uint32_t budget, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    *out = NULL;
    *len = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return CR_ENOMEM;
    const struct cr_metrics_src *s = &m->src;
    uint32_t nt = ntenants(s->tenants), left = CR_MAX(budget, (uint32_t)1);
    while (left > 0 && m->fam < TF_N) {
        uint32_t to = nt - m->next > left ? m->next + left : nt;
        tenant_family(f, s, m->fam, m->next, to);
        left -= to - m->next;
        m->next = to;
        if (m->next >= nt) {
            m->fam++;
            m->next = 0;
        }
    }
    bool done = false;
    if (m->fam == TF_N && left > 0) { /* a few dozen series at most */
        listeners(f, s);
        upstreams(f, s);
        process(f, s);
        m->fam++;
        done = true;
    }
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(buf);
        return CR_ENOMEM;
    }
    *out = buf;
    *len = n;
    return done ? 1 : 0;
}

void cr_metrics_end(struct cr_metrics_render *m)
{
    free(m);
}

int cr_metrics_render(const struct cr_metrics_src *src, char **out, size_t *len)
{
    struct cr_metrics_render *m;
    *out = NULL;
    *len = 0;
    if (cr_metrics_begin(src, &m) < 0)
        return CR_ENOMEM;
    int rc = cr_metrics_step(m, UINT32_MAX, out, len);
    cr_metrics_end(m);
    return rc < 0 ? rc : 0;
}
