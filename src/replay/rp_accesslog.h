/* rp_accesslog.h - corral's JSON access log as a replay source.
 *
 * corral writes one JSON object per request per line (src/log.c): "time"
 * (when the request ENDED, RFC 3339 UTC with milliseconds), "total_ms"
 * (from its first byte to its end), "tenant", "method", "path",
 * "bytes_in" (request body bytes), and more that the replay does not need.
 * A request therefore STARTED at time - total_ms; the replay sends each
 * request at its original start offset from the earliest start, divided
 * by a speed-up factor, with its method, path, tenant and body size.
 *
 * Lines with a null method or path (a connection that sent nothing usable)
 * are skipped and counted; blank lines are ignored; anything else that is
 * not such an object is an error at FILE:LINE:COL. Pure parsing and
 * scheduling: the file is read once by rp_accesslog_load, nothing here
 * reads a clock. */
#ifndef RP_ACCESSLOG_H
#define RP_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h" /* struct cr_diag */
#include "rp_client.h"

/* One line, parsed. Strings are NUL-terminated copies in the caller's buf
 * (see rp_accesslog_parse_line); tenant is "default" when null. */
struct rp_log_line {
    int64_t start_ms; /* milliseconds since the epoch: time - total_ms */
    const char *tenant;
    const char *method; /* NULL: the line carries no request */
    const char *path;
    uint64_t body;
};

/* Parses one line (len bytes, no newline) into *out, decoding strings
 * into buf (bufsize bytes; a line never needs more than len + 1). Returns
 * 0, or CR_EINVAL with a message in err and the 1-based column of the
 * problem in *col. */
int rp_accesslog_parse_line(const char *line, size_t len, char *buf, size_t bufsize,
                            struct rp_log_line *out, char *err, size_t errlen, size_t *col);

struct rp_accesslog;

/* Reads the whole log at path. Requests whose start, after dividing by
 * speedup (> 0), falls at or after max_ms are dropped (counted). Returns 0
 * and *out (free with rp_accesslog_free), or CR_EINVAL with every problem
 * in diag (at most 20 listed, then a count), CR_EIO (diag says why) or
 * CR_ENOMEM. diag is zeroed first. */
int rp_accesslog_load(const char *path, double speedup, uint64_t max_ms, struct rp_accesslog **out,
                      struct cr_diag *diag);
/* The same from an open stream (a file, a pipe, fmemopen: the fuzz target
 * tests/fuzz/fuzz_accesslog.c); name is FILE in the messages. f stays
 * open and the caller's. Returns as rp_accesslog_load (CR_EINVAL, CR_EIO,
 * CR_ENOMEM). */
int rp_accesslog_load_stream(FILE *f, const char *name, double speedup, uint64_t max_ms,
                             struct rp_accesslog **out, struct cr_diag *diag);
void rp_accesslog_free(struct rp_accesslog *l);

/* The tenants in order of first appearance. */
size_t rp_accesslog_tenants(const struct rp_accesslog *l, const char *const **names);

/* Requests to replay, lines skipped (no request), requests dropped (after
 * max_ms). */
size_t rp_accesslog_count(const struct rp_accesslog *l, size_t *skipped, size_t *dropped);

/* When the last request is sent, in microseconds since the start. */
uint64_t rp_accesslog_span_us(const struct rp_accesslog *l);

/* The log as a source for the engine (and the dry run): requests in
 * start order at (start - first start) / speedup. The source borrows l. */
struct rp_source rp_accesslog_source(struct rp_accesslog *l);

#endif
