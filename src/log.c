/* log.c - error log and JSON access log. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct {
    int err_fd;               /* 2 when "stderr" */
    int acc_fd;               /* -1 when off */
    enum cr_log_level level;
    char *err_path;           /* NULL for stderr */
    char *acc_path;           /* NULL for off / stdout */
    int acc_stdout;
    char role[32];
} g = {2, -1, CR_LOG_INFO, NULL, NULL, 0, "corral"};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cr_log_set_role(const char *role)
{
    snprintf(g.role, sizeof(g.role), "%s", role);
}

/* O_NOFOLLOW: the master opens these as root, in directories others may
 * write; a symbolic link planted as the file must not make it write through
 * the link (a directory on the way may be one). */
static int open_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
}

static void open_failed(const char *what, const char *path)
{
    if (errno == ELOOP)
        cr_log_error("cannot open %s %s: it is a symbolic link, refused (name the file itself)",
                     what, path);
    else
        cr_log_error("cannot open %s %s: %s", what, path, strerror(errno));
}

static void replace_fd(int *slot, int fd)
{
    if (*slot > 2)
        close(*slot);
    *slot = fd;
}

int cr_log_open(const struct cr_cfg_log *cfg)
{
    int efd = 2, afd = -1;
    const char *err = cfg->error, *acc = cfg->access;

    if (err && strcmp(err, "stderr") != 0) {
        efd = open_append(err);
        if (efd < 0) {
            open_failed("error log", err);
            return CR_EIO;
        }
    }
    if (acc && strcmp(acc, "off") != 0) {
        afd = strcmp(acc, "stdout") == 0 ? 1 : open_append(acc);
        if (afd < 0) {
            open_failed("access log", acc);
            if (efd > 2)
                close(efd);
            return CR_EIO;
        }
    }
    replace_fd(&g.err_fd, efd);
    replace_fd(&g.acc_fd, afd);
    free(g.err_path);
    free(g.acc_path);
    g.err_path = efd > 2 ? strdup(err) : NULL;
    g.acc_path = afd > 2 ? strdup(acc) : NULL;
    g.acc_stdout = afd == 1;
    g.level = cfg->level;
    return 0;
}

int cr_log_reopen(void)
{
    struct cr_cfg_log cfg = {
        .error = g.err_path ? g.err_path : "stderr",
        .level = g.level,
        .access = g.acc_path ? g.acc_path : (g.acc_stdout ? "stdout" : "off"),
    };
    char *e = g.err_path ? strdup(g.err_path) : NULL;
    char *a = g.acc_path ? strdup(g.acc_path) : NULL;
    if (e)
        cfg.error = e;
    if (a)
        cfg.access = a;
    int rc = cr_log_open(&cfg);
    free(e);
    free(a);
    return rc;
}

/* What a message of cr_log_send carries: which descriptors follow, in this
 * order. */
enum { SEND_ERR = 1, SEND_ACC = 2 };

int cr_log_send(int sock)
{
    int fds[2], n = 0;
    unsigned char what = 0;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(fds))];
    } ctl;
    struct iovec iov = {&what, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (g.err_fd > 2) {
        fds[n++] = g.err_fd;
        what |= SEND_ERR;
    }
    if (g.acc_fd > 2) {
        fds[n++] = g.acc_fd;
        what |= SEND_ACC;
    }
    if (n > 0) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : CR_EIO;
}

int cr_log_receive(int sock)
{
    int fds[2] = {-1, -1}, n = 0;
    unsigned char what = 0;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(fds))];
    } ctl;
    struct iovec iov = {&what, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    ssize_t got = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    if (got < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? CR_EAGAIN : CR_EIO;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (n < 2)
                fds[n++] = fd;
            else
                close(fd);
        }
    }
    int want = !!(what & SEND_ERR) + !!(what & SEND_ACC);
    if (got != 1 || (msg.msg_flags & MSG_CTRUNC) || n != want) {
        for (int i = 0; i < n; i++)
            close(fds[i]);
        return CR_EIO;
    }
    n = 0;
    if (what & SEND_ERR)
        replace_fd(&g.err_fd, fds[n++]);
    if (what & SEND_ACC)
        replace_fd(&g.acc_fd, fds[n++]);
    return 0;
}

static size_t timestamp(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    return n;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* a log that cannot be written must not stop the proxy */
        buf += n;
        len -= (size_t)n;
    }
}

void cr_log(enum cr_log_level level, const char *fmt, ...)
{
    if (level > g.level)
        return;
    char line[2048];
    int saved = errno;
    size_t n = timestamp(line, sizeof(line));
    n += (size_t)snprintf(line + n, sizeof(line) - n, " [%s] %s[%d]: ", level_names[level],
                          g.role, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n = CR_MIN(n + (size_t)m, sizeof(line) - 2);
    line[n++] = '\n';
    write_all(g.err_fd, line, n);
    errno = saved;
}

uint32_t cr_log_sample(const struct cr_cfg_log *cfg, const struct cr_access *a, uint64_t *seq)
{
    if (a->status == 0 || a->status >= 500 || (a->status >= 400 && a->reason))
        return 1;
    if (cfg->slow_threshold_ms && a->total_ms >= (double)cfg->slow_threshold_ms)
        return 1;
    for (size_t i = 0; a->tenant && i < cfg->nkeep_tenants; i++)
        if (strcmp(a->tenant, cfg->keep_tenants[i]) == 0)
            return 1;
    if (cfg->sample <= 1)
        return 1;
    return (*seq)++ % cfg->sample == 0 ? cfg->sample : 0;
}

int cr_log_access_enabled(void)
{
    return g.acc_fd >= 0;
}

/* The most each string of an access-log line may take, escaped and quoted:
 * together with the keys and numbers they fit in the line's buffer, so a
 * line is always whole JSON however long the client made its strings
 * (a path may be up to http.max_uri, 1m). A longer string is cut between
 * two escapes and ends with "...". */
#define ACC_TIME 40
#define ACC_SHORT 72 /* client, protocol, method */
#define ACC_TENANT 136
#define ACC_AUTHORITY 264
#define ACC_PATH 2056
#define ACC_ID 136 /* request_id */
#define ACC_REASON 264
#define ACC_PROXY_ID 264 /* PROXY v2 unique id: up to 128 bytes, escaped */
#define ACC_REST 672     /* keys, numbers, braces */
#define ACC_LINE                                                                                   \
    (ACC_TIME + 3 * ACC_SHORT + ACC_TENANT + ACC_AUTHORITY + ACC_PATH + ACC_ID + ACC_REASON +      \
     ACC_PROXY_ID + ACC_REST)

/* Appends what fmt makes at buf + n, as much as fits before cap. Returns
 * the new length, never past cap. */
static size_t put(char *buf, size_t n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t n, size_t cap, const char *fmt, ...)
{
    if (n >= cap)
        return n;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
    return k < 0 ? n : CR_MIN(n + (size_t)k, cap - 1);
}

/* Appends s as a JSON string (or null) to buf in at most max bytes (and
 * never past cap): whole escapes only, "..." where it was cut. */
static size_t json_str(char *buf, size_t n, size_t cap, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t end = CR_MIN(cap, n + max); /* room for the string, quotes included */
    if (!s)
        return put(buf, n, cap, "null");
    if (n + 2 + 3 > end)
        return n;
    buf[n++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        size_t e = c == '"' || c == '\\' ? 2 : c < 0x20 || c == 0x7f ? 6 : 1;
        if (n + e + 3 + 1 > end && (s[1] || n + e + 1 > end)) {
            memcpy(buf + n, "...", 3); /* the cut: there is room for it and the quote */
            n += 3;
            break;
        }
        if (e == 2) {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (e == 6) {
            memcpy(buf + n, "\\u00", 4);
            buf[n + 4] = hex[c >> 4];
            buf[n + 5] = hex[c & 15];
            n += 6;
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n++] = '"';
    return n;
}

static size_t json_num(char *buf, size_t n, size_t cap, double v)
{
    if (v < 0)
        return put(buf, n, cap, "null");
    return put(buf, n, cap, "%.3f", v);
}

void cr_log_access(const struct cr_access *a)
{
    if (g.acc_fd < 0)
        return;
    char buf[ACC_LINE + 2];
    const size_t cap = ACC_LINE;
    size_t n = 0;
    char ts[40];
    timestamp(ts, sizeof(ts));

    n = put(buf, n, cap, "{\"time\":");
    n = json_str(buf, n, cap, ts, ACC_TIME);
    n = put(buf, n, cap, ",\"worker\":%d,\"tenant\":", a->worker);
    n = json_str(buf, n, cap, a->tenant, ACC_TENANT);
    n = put(buf, n, cap, ",\"client\":");
    n = json_str(buf, n, cap, a->client, ACC_SHORT);
    n = put(buf, n, cap, ",\"protocol\":");
    n = json_str(buf, n, cap, a->protocol, ACC_SHORT);
    n = put(buf, n, cap, ",\"method\":");
    n = json_str(buf, n, cap, a->method, ACC_SHORT);
    n = put(buf, n, cap, ",\"authority\":");
    n = json_str(buf, n, cap, a->authority, ACC_AUTHORITY);
    n = put(buf, n, cap, ",\"path\":");
    n = json_str(buf, n, cap, a->path, ACC_PATH);
    n = put(buf, n, cap,
            ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"queue_ms\":", a->status,
            (unsigned long long)a->bytes_in, (unsigned long long)a->bytes_out);
    n = json_num(buf, n, cap, a->queue_ms);
    n = put(buf, n, cap, ",\"upstream_ms\":");
    n = json_num(buf, n, cap, a->upstream_ms);
    n = put(buf, n, cap, ",\"total_ms\":");
    n = json_num(buf, n, cap, a->total_ms);
    if (a->upstream_conn >= 0)
        n = put(buf, n, cap, ",\"upstream_conn\":%lld", (long long)a->upstream_conn);
    else
        n = put(buf, n, cap, ",\"upstream_conn\":null");
    n = put(buf, n, cap, ",\"request_id\":");
    n = json_str(buf, n, cap, a->request_id, ACC_ID);
    n = put(buf, n, cap, ",\"reason\":");
    n = json_str(buf, n, cap, a->reason, ACC_REASON);
    if (a->grpc_status)
        n = put(buf, n, cap, ",\"grpc_status\":%d", a->grpc_status);
    if (a->streaming)
        n = put(buf, n, cap, ",\"streaming\":\"%s\"", a->streaming);
    if (a->proxy_id) {
        n = put(buf, n, cap, ",\"proxy_id\":");
        n = json_str(buf, n, cap, a->proxy_id, ACC_PROXY_ID);
    }
    n = put(buf, n, cap, ",\"sample_rate\":%u", a->sample_rate ? a->sample_rate : 1u);
    buf[n++] = '}';
    buf[n++] = '\n';
    write_all(g.acc_fd, buf, n);
}
