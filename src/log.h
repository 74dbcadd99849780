/* log.h - the error log (levels, stderr or a file) and the JSON-lines
 * access log (one line per request).
 *
 * Both are per-process: the master opens them from the config, each worker
 * inherits the descriptors. Files are opened with O_NOFOLLOW: a path whose
 * last component is a symbolic link is refused (the master runs as root). Writes are single write(2) calls of whole lines
 * on O_APPEND descriptors, so lines from several workers never interleave.
 * Nothing here blocks beyond that write. */
#ifndef CR_LOG_H
#define CR_LOG_H

#include <stdarg.h>
#include <stdint.h>

#include "config.h"

/* Names this process in every error-log line ("master", "worker 2"). */
void cr_log_set_role(const char *role);

/* Opens (or re-opens) the files named by cfg. The previous descriptors are
 * closed only once the new ones are open. Returns 0 or CR_EIO (logged to
 * the current error log, which stays in use). */
int cr_log_open(const struct cr_cfg_log *cfg);

/* Re-opens the same paths (SIGUSR1, after a log rotation). Only the master
 * does: its workers may run as a user that cannot open the files (or the
 * directories on their way), so they get the new descriptors from it with
 * cr_log_send / cr_log_receive. */
int cr_log_reopen(void);

/* Master: sends this process's log file descriptors (those that are files,
 * not stderr/stdout) over the Unix datagram socket sock, without blocking.
 * Returns 0 or CR_EIO. */
int cr_log_send(int sock);

/* Worker: receives one cr_log_send message from sock (non-blocking) and
 * makes its descriptors this process's logs, closing the previous ones.
 * Returns 0, CR_EAGAIN when no message is waiting, or CR_EIO for anything
 * else (a malformed message changes nothing; its descriptors are closed). */
int cr_log_receive(int sock);

/* Error log, printf-style; lines below the configured level are dropped. */
void cr_log(enum cr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define cr_log_error(...) cr_log(CR_LOG_ERROR, __VA_ARGS__)
#define cr_log_warn(...) cr_log(CR_LOG_WARN, __VA_ARGS__)
#define cr_log_info(...) cr_log(CR_LOG_INFO, __VA_ARGS__)
#define cr_log_debug(...) cr_log(CR_LOG_DEBUG, __VA_ARGS__)

/* One access-log record. Strings may be NULL (logged as null); numbers
 * that do not apply are negative (logged as null). */
struct cr_access {
    int worker;
    const char *tenant;
    const char *client;       /* "ip:port" */
    const char *protocol;     /* "HTTP/1.1", "HTTP/2" */
    const char *method;
    const char *authority;
    const char *path;
    int status;               /* for a refusal answered as gRPC (HTTP 200),
                               * the HTTP status it stands for (429, 503...) */
    int grpc_status;          /* that refusal's grpc-status; 0: not logged */
    const char *streaming;    /* a long-lived response (gate.h): "moved" to its
                               * tenant's streaming class, or "over_cap" (it
                               * stayed in the request class); NULL: not logged */
    uint64_t bytes_in;        /* request body bytes */
    uint64_t bytes_out;       /* response body bytes */
    double queue_ms;
    double upstream_ms;
    double total_ms;
    int64_t upstream_conn;    /* id of the upstream connection, -1 none */
    const char *request_id;
    const char *reason;       /* why corral answered itself, NULL if proxied */
    const char *proxy_id;     /* the balancer's connection id (PROXY v2
                               * PP2_TYPE_UNIQUE_ID), NULL: not logged */
    uint32_t sample_rate;     /* what this line stands for (cr_log_sample);
                               * 0 is written as 1 */
};

/* Tail sampling (log.sample, slow_threshold, keep_tenants): whether to log
 * a, and with which sample rate. Always kept, with rate 1: a request with
 * no response (status 0), a 5xx, a 4xx corral answered itself (a->reason
 * set: its own refusals and admission's 429/503 sheds), a request whose
 * total_ms reached slow_threshold (when not 0), and a tenant named in
 * keep_tenants. Of the rest, every cfg->sample-th is kept with rate
 * cfg->sample, counted in *seq (the caller's counter, one per worker, so
 * the choice is deterministic). Returns the rate, or 0 to drop the line.
 * No I/O and no clock. */
uint32_t cr_log_sample(const struct cr_cfg_log *cfg, const struct cr_access *a, uint64_t *seq);

/* Appends one JSON line; a no-op when the access log is off. */
void cr_log_access(const struct cr_access *a);
int cr_log_access_enabled(void);

#endif
