/* rp_profile.h - corral-replay's campaign profile: the YAML file that says
 * where to send, how much, for whom and how clients behave.
 *
 * The profile is loaded through corral's table-driven YAML loader
 * (cfgload.h), so it reads like corral.yaml and fails the same way: every
 * problem of the file is reported at once, each as
 * "FILE:LINE:COL: error: text" (1-based), sorted top to bottom. A profile
 * without a duration, a rate cap or a connection cap is refused: a load
 * generator must not run unbounded by accident.
 *
 * The schema, by section (man/corral-replay.1 documents every key):
 *
 *   name, duration, seed, arrivals
 *   target:  address or addresses, spread, sni, authority, ca, insecure, http2
 *   caps:    rate, connections
 *   client:  requests_per_connection, resume, on_refusal, retry_jitter,
 *            max_retries, retry_after_default, timeout, idle, request_id
 *   tenants: header, list[name, value, baseline, requests[method, path,
 *            body, headers, weight]]
 *   events:  [at, tenant, factor, ramp, hold, half_life]
 *   phases:  [name, start, end]
 *
 * Times are kept in milliseconds since the start of the run, rates in
 * requests per second, shares as fractions in [0, 1]. */
#ifndef RP_PROFILE_H
#define RP_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h" /* struct cr_addr, struct cr_diag */

enum rp_refusal {
    RP_REFUSAL_OBEY = 0,  /* wait Retry-After (plus jitter), then retry */
    RP_REFUSAL_RETRY_NOW, /* retry at once, ignoring Retry-After */
    RP_REFUSAL_GIVE_UP,   /* count the client as gone */
};

enum rp_arrivals {
    RP_ARRIVALS_UNIFORM = 0, /* evenly spaced at the curve's rate */
    RP_ARRIVALS_POISSON,     /* a Poisson process with the curve as intensity */
};

/* One request template of a tenant. */
struct rp_template {
    char *method;    /* an HTTP token, default "GET" */
    char *path;      /* origin-form, starts with '/' */
    uint64_t body;   /* request body bytes (filled with 'x'); 0 = none */
    uint32_t weight; /* relative frequency among the tenant's templates, default 1 */
    char **hname;    /* extra header fields: lower-case names ... */
    char **hvalue;   /* ... and their values */
    size_t nheaders;
};

struct rp_tenant {
    char *name;                   /* unique, as it appears in reports */
    char *value;                  /* value of tenants.header; default: name */
    double baseline;              /* requests per second outside events, > 0 */
    struct rp_template *requests; /* at least one */
    size_t nrequests;
};

/* At `at`, tenant's rate climbs linearly over `ramp` to factor x baseline,
 * stays there for `hold`, then the excess halves every `half_life` (0: it
 * never decays). Events of one tenant add their excesses. */
struct rp_event {
    char *tenant;
    size_t tenant_index; /* into rp_profile.tenants */
    double factor;       /* 0 .. 1e6; below 1 is a dip */
    uint64_t at_ms, ramp_ms, hold_ms, half_life_ms;
};

/* A named time span for the per-phase report. */
struct rp_phase {
    char *name;
    uint64_t start_ms, end_ms; /* start < end <= duration */
};

/* How connections are spread over several target addresses. */
enum rp_spread {
    RP_SPREAD_ROUND_ROBIN = 0, /* connection k goes to address k mod n */
    RP_SPREAD_HASH,            /* a hash of the connection's number and the seed, as ECMP */
};

struct rp_target {
    struct cr_addr addr; /* the first of addrs (for the SNI default and messages) */
    /* Where connections go, and nowhere else: 'addresses', or 'address'
     * as a list of one. Never empty after a load. */
    struct cr_addr *addrs;
    size_t naddrs;
    enum rp_spread spread;
    char *sni;       /* TLS server name; default: the address's host */
    char *authority; /* Host / :authority; default: sni */
    char *ca;        /* CA file to verify the server with */
    bool insecure;   /* no verification (testing only) */
    double http2;    /* share of new connections that use HTTP/2, default 1 */
};

struct rp_caps {
    double rate;          /* requests per second, offered and sent, > 0 */
    uint32_t connections; /* open connections at once */
};

struct rp_client {
    uint32_t requests_per_connection; /* then the client closes, default 1 */
    double resume;                    /* share of new connections that resume, default 0 */
    enum rp_refusal on_refusal;       /* for 429 and 503 */
    double retry_jitter;              /* obey: wait Retry-After x (1 + U[0, jitter]) */
    uint32_t max_retries;             /* retries per request, then give up, default 3 */
    uint64_t retry_after_default_ms;  /* when a refusal carries no Retry-After */
    uint64_t timeout_ms;              /* from the intended send time to the answer's end */
    uint64_t idle_ms;                 /* an unused connection closes after this long */
    bool request_id;                  /* send X-Request-Id: rp-<request>-<attempt> */
};

struct rp_tenants {
    char *header; /* the header field that names the tenant, default "x-tenant-id" */
    struct rp_tenant *list;
    size_t nlist;
};

struct rp_profile {
    char *path;           /* the file it was loaded from */
    char *name;           /* default: the file name without directory and extension */
    uint64_t duration_ms; /* required */
    uint32_t seed;        /* for template choice, Poisson arrivals, jitter, resumption */
    enum rp_arrivals arrivals;
    struct rp_target target;
    struct rp_caps caps;
    struct rp_client client;
    struct rp_tenants tenants;
    struct rp_event *events;
    size_t nevents;
    struct rp_phase *phases; /* never empty after a load: see rp_profile_load */
    size_t nphases;
};

/* Loading modes. */
enum {
    /* The requests come from an access log (--access-log): tenants.list
     * may then be empty, and events are not allowed. */
    RP_PROFILE_ACCESS_LOG = 1 << 0,
    /* Only a plan is wanted (--dry-run): the files the profile names
     * (target.ca) need not exist, as nothing is sent. */
    RP_PROFILE_NO_FILES = 1 << 1,
};

/* Loads and validates the profile at path. On success returns 0 and *out
 * (free with rp_profile_free); warnings may be in diag. On failure returns
 * CR_ECONFIG with every problem in diag (each "FILE:LINE:COL: error: ...";
 * a file that cannot be read gives "FILE: error: ..."), *out NULL. diag is
 * zeroed first; the caller frees it with cr_diag_free. Relative paths in
 * the file (target.ca) are relative to the file's directory.
 *
 * When the profile names no phases, they are derived: "baseline" until the
 * first event, "surge" until the last event's peak ends (at + ramp + hold),
 * "decay" until the end; a profile without events has one phase, "steady".
 * Phases of zero length are left out. */
int rp_profile_load(const char *path, unsigned flags, struct rp_profile **out,
                    struct cr_diag *diag);

/* The same from text in memory; name is FILE in the messages and relative
 * paths stay as written. */
int rp_profile_load_string(const char *name, const char *text, unsigned flags,
                           struct rp_profile **out, struct cr_diag *diag);

/* Frees everything the profile owns. NULL is a no-op. */
void rp_profile_free(struct rp_profile *p);

/* The index into t->addrs of the address the connection numbered conn
 * (1, 2, ... in the order opened) goes to, as t->spread says, with the
 * profile's seed for the hash. Pure: the same arguments give the same
 * index. t->naddrs must be at least 1. */
size_t rp_profile_pick(const struct rp_target *t, uint64_t conn, uint32_t seed);

/* The index of the tenant named name, or -1. */
int rp_profile_tenant(const struct rp_profile *p, const char *name);

#endif
