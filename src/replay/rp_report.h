/* rp_report.h - what a corral-replay run produced, and the writers.
 *
 * The engine fills an rp_run (it owns every pointer in it; the writers only
 * read) and calls any of the three writers once the run is over. The writers
 * are pure formatting: no clock, no network, deterministic output for a
 * given run (except that rp_run.started is printed in the local time zone).
 *
 * Common rules of the three writers:
 *   - f and r must not be NULL; r->phases / r->tenants may be NULL only when
 *     their count is 0; a series' sec / phase may be NULL only when nsec /
 *     nphase is 0, and every series' nphase must equal r->nphase. Otherwise
 *     they write nothing and return -EINVAL.
 *   - NULL strings (title, tenant, phase name...) print as empty.
 *   - rp_cell.lat may be NULL, or empty: the latency fields are then left
 *     empty ("-" in the text table, "" in CSV, no point in the plots); they
 *     are never shown as 0.
 *   - Tenants may have different nsec: each is written for its own seconds.
 *   - Return 0, -ENOMEM when a scratch buffer could not be allocated (the
 *     text and HTML writers merge histograms across tenants into one
 *     scratch histogram; the HTML one also keeps 8 doubles per second of
 *     the longest timeline for its plots), or -errno of
 *     the first write error (checked once at the end, after fflush(f)). */
#ifndef RP_REPORT_H
#define RP_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "rp_hist.h"

struct rp_cell {      /* one tenant in one second (timeline) or one phase (summary) */
    uint64_t offered; /* arrivals the schedule asked for */
    uint64_t sent;    /* requests actually sent */
    uint64_t ok;      /* 2xx */
    uint64_t s429, s503;
    uint64_t other;               /* any other status */
    uint64_t conn_errors;         /* connect/TLS/reset errors */
    uint64_t timeouts;            /* no answer within the client timeout */
    uint64_t gave_up;             /* clients that gave up after a refusal */
    uint64_t full_hs, resumed_hs; /* TLS handshakes done for this tenant's connections */
    /* latency of answered requests, from the INTENDED send time; may be NULL */
    struct rp_hist *lat;
};

/* Adds c's counters to *into (the histogram is the caller's). */
void rp_cell_add(struct rp_cell *into, const struct rp_cell *c);

struct rp_phase_def {
    const char *name;
    double start_s, end_s; /* seconds since start; non-finite ones are not drawn */
};

struct rp_series { /* one tenant */
    const char *tenant;
    size_t nsec;           /* seconds in the timeline */
    struct rp_cell *sec;   /* nsec cells, sec[i] covers [i, i+1) seconds since start */
    size_t nphase;         /* == rp_run.nphase */
    struct rp_cell *phase; /* nphase cells */
    struct rp_cell total;
};

struct rp_run {
    const char *title;  /* profile name or "access-log replay" */
    const char *source; /* profile path or access log path */
    const char *target; /* host:port */
    time_t started;     /* wall clock at start */
    double duration_s;  /* actual */
    size_t nphase;
    const struct rp_phase_def *phases;
    size_t ntenant;
    const struct rp_series *tenants;
};

/* Each returns 0 or -errno (write error). None of them allocates per row beyond small buffers. */

/* Per tenant x phase table: requests,
 * 2xx, 429, 503, other, conn errors, timeouts, p50/p90/p99/p99.9 ms, full/resumed hs.
 *
 * A header (title, source, target, start, duration, phases), then one row per
 * tenant and phase plus a "total" row per tenant, and, with more than one
 * tenant, the same rows for "(all tenants)" (counters summed, histograms
 * merged). Columns are aligned (numbers to the right); control characters in
 * names print as '?'. */
int rp_report_text(FILE *f, const struct rp_run *r);

/* Timeline: header line then one row per
 * second per tenant: second,tenant,offered,sent,ok,s429,s503,other,conn_errors,timeouts,
 * gave_up,full_hs,resumed_hs,p50_ms,p90_ms,p99_ms,p999_ms (empty latency fields if none).
 *
 * Rows are ordered by second, then by tenant in r->tenants order. RFC 4180
 * quoting for tenant names (when they hold a comma, quote, CR, LF or an
 * edge space), LF line ends, latencies in ms with 3 decimals. */
int rp_report_csv(FILE *f, const struct rp_run *r);

/* One self-contained HTML file (inline
 * CSS + inline SVG, no script or network needed): the summary table, and per tenant an SVG
 * plot of offered vs served (2xx) vs shed (429+503) per second, and an SVG of latency
 * p50/p99 per second (log or linear y axis with labelled ticks), phase boundaries marked.
 * Opens offline in a browser. Tenant names and all text are HTML-escaped.
 *
 * Layout: the run's header, an "all tenants" pair of charts (requests summed;
 * latency p50/p90/p99/p99.9 of the merged histograms), the summary table (the
 * rows of rp_report_text), then per tenant its traffic chart (with a fourth
 * line, errors = other + conn errors + timeouts) and its latency chart. All
 * latency charts share one log scale, all charts one time axis. With no
 * tenant there are no charts: 2 + 2 * ntenant <svg> elements otherwise. The
 * output is also well-formed XML (polyglot markup) so that XML tools can
 * check it; invalid UTF-8 and control characters in names become U+FFFD. */
int rp_report_html(FILE *f, const struct rp_run *r);

#endif
