/* testup_stats.h - the counters /__stats and --stats-file report.
 *
 * Pure bookkeeping: no I/O except tu_stats_write_file. A "request" is one
 * request other than /__stats; it is in flight from the moment its head has
 * been received until its answer has been completely handed to the
 * connection (or the request was abandoned). */
#ifndef TU_STATS_H
#define TU_STATS_H

#include <event2/buffer.h>
#include <stdint.h>

/* --count-header: requests counted by the value of one header field. */
#define TU_BY_MAX 64       /* distinct values kept; later ones count in "(other)" */
#define TU_BY_VALUE_MAX 64 /* longer values are cut to this many bytes */

struct tu_by_value {
    char value[TU_BY_VALUE_MAX + 1];
    uint64_t n;
};

/* ws_close_codes: distinct close codes kept (later ones are not counted). */
#define TU_WS_CODES_MAX 16

struct tu_ws_code {
    unsigned code;
    uint64_t n;
};

struct tu_stats {
    uint64_t connections_accepted;
    uint64_t connections_open;
    uint64_t requests; /* since start or the last reset */
    uint64_t inflight;
    uint64_t max_inflight;   /* high-water mark since start or the last reset */
    uint64_t h2_connections; /* connections that negotiated h2, since start */
    uint64_t h1_connections; /* connections that use HTTP/1.x, since start */
    /* --count-header: requests by value (since start or the last reset) */
    struct tu_by_value by[TU_BY_MAX];
    size_t nby;
    uint64_t by_other, by_none; /* past TU_BY_MAX values; without the field */
    /* WebSockets (testup_ws), since start: open now, the most open at
     * once, opened, payload bytes of the client's data frames, and the
     * close frames the clients sent, by code */
    uint64_t ws_open, ws_peak, ws_total, ws_bytes;
    struct tu_ws_code ws_close[TU_WS_CODES_MAX];
    size_t nws_close;
};

/* A request's head arrived: counts it and raises the in-flight mark. */
void tu_stats_req_begin(struct tu_stats *st);

/* A request counted by tu_stats_req_begin was answered or abandoned. */
void tu_stats_req_end(struct tu_stats *st);

/* Counts a request under the value of the --count-header field (value
 * NULL: the request had no such field). */
void tu_stats_count_by(struct tu_stats *st, const char *value, size_t len);

/* /__stats?reset=1: requests = 0, the --count-header counts emptied and
 * max_inflight = what is in flight now. */
void tu_stats_reset(struct tu_stats *st);

/* Appends the one-line JSON object (no newline) to out; with
 * --count-header (count_header not NULL) it ends with
 * "by_header":{"VALUE":N,...,"(other)":N,"(none)":N}, the last two only
 * when not zero. The WebSocket counters come before it: "ws_open",
 * "ws_peak", "ws_total", "ws_bytes" and "ws_close_codes":{"1000":N,...}.
 * Returns 0 or CR_ENOMEM. */
int tu_stats_json(const struct tu_stats *st, const char *count_header, struct evbuffer *out);

/* Writes the JSON plus a newline to path through a temporary file renamed
 * over it, so a reader never sees half a document.
 * Returns 0, CR_ENOMEM or CR_EIO (errno set). */
int tu_stats_write_file(const struct tu_stats *st, const char *count_header, const char *path);

#endif
