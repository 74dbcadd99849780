/* tenant.h - which tenant a request belongs to, and its priority.
 *
 * A struct cr_tenants is an immutable table built once from the config's
 * tenants section (one per worker, or shared read-only after a fork). It
 * copies everything it needs, so it does not point into the config and may
 * outlive it. Lookups never allocate and never create state: a request that
 * names no known tenant - a missing header, a made-up tenant id, an unknown
 * API key, SNI name or path - belongs to the single `default` tenant, so an
 * attacker flooding made-up ids shares the default tenant's limits with every
 * other unknown request, as one group (corral.yaml(5), TENANTS).
 *
 * Paths (by: path_prefix, routes) are matched in their normal form
 * (cr_tenants_normalize_path) and on segment boundaries: the prefix /login
 * matches /login, /login/, /login/x and /login?x, never /loginXYZ, and no
 * dot segment or percent-encoding moves a request into or out of it. The
 * gate normalises each request's path in place before it looks it up, and
 * forwards that normal form upstream, so that the upstream serves the path
 * that was classified (corral.yaml(5), TENANTS).
 *
 * Costs: by header and by api_key, one hash lookup (O(length of the value));
 * by sni, at most two (exact name, then the "*.parent" wildcard); by
 * path_prefix and for routes, one hash lookup per distinct prefix length
 * configured, longest first. Nothing is ever logged here: API keys are
 * secrets. */
#ifndef CR_TENANT_H
#define CR_TENANT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct cr_tenants;

/* One tenant. The default tenant has index 0 and the name "default"; the
 * tenants of the config's list follow with indexes 1..n in config order.
 * Owned by the table: valid until cr_tenants_free. */
struct cr_tenant {
    const char *name;
    uint32_t index;
    struct cr_cfg_limits limits; /* the default's are tenants.defaults */
    bool global;                 /* its rate is leased from Redis (quota.h) */
};

/* What a request offers to identify its tenant. Any field may be NULL (then
 * it matches nothing). Strings are NUL-terminated and only read during the
 * call. */
struct cr_tenant_key {
    const char *sni;          /* TLS server name, for by: sni */
    const char *path;         /* request path, normalised, for by: path_prefix */
    const char *header_value; /* the value of cfg->header, for by: header / api_key */
};

/* Builds the table from a loaded (validated) config section.
 *
 * Returns 0 and *out owns the new table (free with cr_tenants_free), or
 * CR_EINVAL (cfg or out NULL, or a duplicate name / key / match / route
 * prefix, which a validated config never has), or CR_ENOMEM. On error *out
 * is NULL. */
int cr_tenants_new(const struct cr_cfg_tenants *cfg, struct cr_tenants **out);

/* Frees the table and every struct cr_tenant in it. NULL is a no-op. */
void cr_tenants_free(struct cr_tenants *t);

/* The tenant of a request, never NULL:
 *   by none        - the default tenant;
 *   by header      - the tenant whose name is exactly header_value (case-sensitive);
 *   by api_key     - the tenant that lists header_value among its api_keys;
 *   by sni         - the tenant with an entry equal to sni, ignoring case (a
 *                    trailing dot is ignored); failing that, one with the
 *                    entry "*.<parent>" where sni is "<label>.<parent>" (one
 *                    label only, as in certificates);
 *   by path_prefix - the tenant with the longest entry that is a prefix of
 *                    the path (the part before any '?') ending on a segment
 *                    boundary: "/api" matches "/api", "/api/x", "/api?q",
 *                    not "/apix"; an entry ending in '/' matches what it
 *                    starts. Byte comparison: the path must be normalised
 *                    (cr_tenants_normalize_path) for the match to mean what
 *                    an upstream will serve;
 * and the default tenant when that finds none. */
const struct cr_tenant *cr_tenants_identify(const struct cr_tenants *t,
                                            const struct cr_tenant_key *k);

/* Number of tenants, default included (so always >= 1). */
uint32_t cr_tenants_count(const struct cr_tenants *t);

/* The tenant with this index, or NULL when index >= cr_tenants_count(t). */
const struct cr_tenant *cr_tenants_at(const struct cr_tenants *t, uint32_t index);

/* The priority of the longest route whose path_prefix matches path on a
 * segment boundary (as by path_prefix above; normalise path first), or
 * CR_PRIO_NORMAL when none does (or path is NULL). */
enum cr_priority cr_tenants_priority(const struct cr_tenants *t, const char *path);

/* Rewrites a request target's path, in place, in the normal form prefixes
 * are matched in: percent-encoded unreserved characters (RFC 3986 2.3:
 * ALPHA DIGIT - . _ ~) decoded and the hex digits of every other
 * percent-encoding upper-cased (6.2.2.1-2), then dot segments removed
 * (5.2.4: "/a/./b/../c" is "/a/c"; ".." never climbs above "/"). Nothing
 * else changes: "//" stays, %2F stays encoded (it is not a separator), an
 * invalid %-sequence stays as it is, and the query (from the first '?')
 * and a fragment are kept as they are, after the new path. A target that
 * does not start with '/' ("*") is left alone. The result is never longer
 * than the input, so any length works without a buffer; normalising twice
 * changes nothing. Returns the new strlen(target). */
size_t cr_tenants_normalize_path(char *target);

#endif
