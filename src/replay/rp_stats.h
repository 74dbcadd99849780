/* rp_stats.h - what a run did, counted per tenant per second and per tenant
 * per phase, into the struct rp_run the report writers read (rp_report.h).
 *
 * Pure bookkeeping: no clock, no I/O. The engine reports each event with
 * its time (microseconds since the start of the run) and, for requests,
 * the request's INTENDED send time:
 *
 *   - the timeline (one cell per tenant per second) counts an event in the
 *     second it happened: offered at the arrival time, sent when sent,
 *     answers and failures when they came, handshakes when they ended;
 *   - the phase table counts a request's events in the phase of its
 *     intended time (a request offered during the surge and answered
 *     after it counts in the surge), handshakes in the phase they ended in;
 *   - latency is from the intended send time to the end of the answer, so
 *     time spent waiting for a connection, a rate token or the server is
 *     all in it (no coordinated omission).
 *
 * Every tenant has a latency histogram per phase and in total. Timeline
 * cells get one when they first record a latency, while the histograms
 * together stay under a memory budget (RP_STATS_TIMELINE_BUDGET); past it,
 * cells have none and their latency columns stay empty (counts are always
 * kept). Events after the last second of the timeline count in the last
 * second. */
#ifndef RP_STATS_H
#define RP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "rp_report.h"

#define RP_STATS_TIMELINE_BUDGET (256u << 20) /* bytes of timeline histograms */

/* How a request attempt ended. */
enum rp_outcome {
    RP_OUT_STATUS,     /* an answer: its status decides ok / 429 / 503 / other */
    RP_OUT_CONN_ERROR, /* connect, TLS, reset, protocol error */
    RP_OUT_TIMEOUT,    /* no complete answer within the client timeout */
};

struct rp_stats;

/* Stats for ntenant tenants (names borrowed, must outlive the stats), a
 * timeline of nsec seconds, and nphase phases (borrowed). Returns NULL on
 * out of memory. */
struct rp_stats *rp_stats_new(size_t ntenant, const char *const *names, size_t nsec, size_t nphase,
                              const struct rp_phase_def *phases);
void rp_stats_free(struct rp_stats *s);

/* The schedule asked for a request at at_us. */
void rp_stats_offered(struct rp_stats *s, size_t tenant, uint64_t at_us);

/* A request attempt intended at intended_us went out at now_us. */
void rp_stats_sent(struct rp_stats *s, size_t tenant, uint64_t intended_us, uint64_t now_us);

/* A request attempt ended at now_us: with status (RP_OUT_STATUS; its
 * latency is recorded) or as a connection error or timeout (status
 * ignored, no latency). */
void rp_stats_done(struct rp_stats *s, size_t tenant, enum rp_outcome how, int status,
                   uint64_t intended_us, uint64_t now_us);

/* A client gave up after a refusal (policy give_up, or out of retries). */
void rp_stats_gave_up(struct rp_stats *s, size_t tenant, uint64_t intended_us, uint64_t now_us);

/* A TLS handshake of a tenant's connection ended at now_us. */
void rp_stats_handshake(struct rp_stats *s, size_t tenant, int resumed, uint64_t now_us);

/* How late attempts went out: from the intended send time to the moment
 * they were handed to their connection (waiting for a connection or its
 * handshake, for a rate token, and the client's own scheduling). Never
 * NULL once rp_stats_new succeeded. */
const struct rp_hist *rp_stats_lag(const struct rp_stats *s);

/* The sum over tenants of second sec of the timeline into *out; out->lat,
 * when not NULL, is reset then gets their latencies merged. For the
 * progress line. */
void rp_stats_second(const struct rp_stats *s, size_t sec, struct rp_cell *out);

/* Totals over all tenants and phases, into *out (out->lat as above). */
void rp_stats_totals(const struct rp_stats *s, struct rp_cell *out);

/* Fills r's ntenant, tenants, nphase and phases (pointing into s: valid
 * while s lives and is not changed), with a timeline cut to nsec seconds
 * (at most the nsec given to rp_stats_new). The caller sets the other
 * fields of r. */
void rp_stats_view(struct rp_stats *s, size_t nsec, struct rp_run *r);

#endif
