/* harness.c - see harness.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, mkdtemp */
#endif
#include "harness.h"

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ small things */

struct h_arena {
    struct h_arena *next;
    char data[];
};

static void *arena_alloc(struct h_test *t, size_t n)
{
    struct h_arena *a = malloc(sizeof(*a) + n);
    if (a == NULL)
        ck_abort_msg("harness: out of memory");
    a->next = t->arena;
    t->arena = a;
    return a->data;
}

char *h_strf(struct h_test *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = arena_alloc(t, (size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *h_path(struct h_test *t, const char *name)
{
    return h_strf(t, "%s/%s", t->dir, name);
}

long long h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static const char *tmp_base(void)
{
    const char *b = getenv("TMPDIR");
    return b != NULL && *b != '\0' ? b : "/tmp";
}

/* ------------------------------------------------------------ files */

char *h_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (buf == NULL)
        return NULL;
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

char *h_file_tail(struct h_test *t, const char *path, size_t max_bytes)
{
    size_t n;
    char *s = h_read_file(path, &n);
    if (s == NULL)
        return h_strf(t, "(%s: cannot read)", path);
    const char *p = s;
    if (n > max_bytes) {
        p = s + n - max_bytes;
        const char *nl = strchr(p, '\n');
        if (nl != NULL && nl[1] != '\0')
            p = nl + 1;
    }
    char *r = h_strf(t, "%s", p);
    free(s);
    return r;
}

bool h_file_contains(const char *path, const char *needle)
{
    char *s = h_read_file(path, NULL);
    bool found = s != NULL && strstr(s, needle) != NULL;
    free(s);
    return found;
}

int h_file_count_lines(const char *path, const char *const *needles)
{
    char *s = h_read_file(path, NULL);
    if (s == NULL)
        return 0;
    int n = 0;
    for (char *line = s; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        bool all = true;
        for (size_t i = 0; needles[i] != NULL && all; i++)
            all = strstr(line, needles[i]) != NULL;
        n += all;
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(s);
    return n;
}

bool h_file_has_line(const char *path, const char *const *needles)
{
    return h_file_count_lines(path, needles) > 0;
}

bool h_wait_file_lines(const char *path, const char *const *needles, int n, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        if (h_file_count_lines(path, needles) >= n)
            return true;
        if (h_now_ms() >= end)
            return false;
        h_sleep_ms(20);
    }
}

bool h_wait_file_line(const char *path, const char *const *needles, int timeout_ms)
{
    return h_wait_file_lines(path, needles, 1, timeout_ms);
}

int h_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ ports */

static int used_ports[256];
static int nused_ports;

int h_free_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(sa);
        int port = 0;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
            port = ntohs(sa.sin_port);
        close(fd);
        if (port == 0)
            return 0;
        bool dup = false;
        for (int i = 0; i < nused_ports; i++)
            dup = dup || used_ports[i] == port;
        if (dup)
            continue;
        if (nused_ports < (int)(sizeof(used_ports) / sizeof(used_ports[0])))
            used_ports[nused_ports++] = port;
        return port;
    }
    return 0;
}

int h_connect(int port, int timeout_ms)
{
    int err = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        goto connected;
    if (errno != EINPROGRESS)
        goto fail;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int r = poll(&pfd, 1, timeout_ms);
    if (r <= 0) {
        errno = r == 0 ? ETIMEDOUT : errno;
        goto fail;
    }
    socklen_t elen = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
        errno = err != 0 ? err : errno;
        goto fail;
    }
connected:
    fcntl(fd, F_SETFL, 0); /* blocking again */
    return fd;
fail:
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

/* The ports of a connected socket: ours and the peer's. */
static bool socket_ports(int fd, unsigned *local, unsigned *peer)
{
    struct sockaddr_in a, b;
    socklen_t la = sizeof(a), lb = sizeof(b);
    if (getsockname(fd, (struct sockaddr *)&a, &la) != 0 ||
        getpeername(fd, (struct sockaddr *)&b, &lb) != 0 || a.sin_family != AF_INET)
        return false;
    *local = ntohs(a.sin_port);
    *peer = ntohs(b.sin_port);
    return true;
}

bool h_conn_accepted(int fd)
{
    unsigned mine, server;
    FILE *f = socket_ports(fd, &mine, &server) ? fopen("/proc/net/tcp", "r") : NULL;
    if (f == NULL)
        return false;
    char line[512];
    bool accepted = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned lport, rport, st;
        unsigned long laddr, raddr, inode;
        /* sl: local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %lx:%x %lx:%x %x %*x:%*x %*x:%*x %*x %*u %*d %lu", &laddr, &lport,
                   &raddr, &rport, &st, &inode) == 6 &&
            lport == server && rport == mine) {
            accepted = inode != 0; /* in the accept queue a socket has no inode yet */
            break;
        }
    }
    fclose(f);
    return accepted;
}

bool h_wait_conn_accepted(int fd, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        if (h_conn_accepted(fd))
            return true;
        if (h_now_ms() >= end)
            return false;
        h_sleep_ms(10);
    }
}

bool h_port_open(int port)
{
    int fd = h_connect(port, 500);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

bool h_wait_port(int port, bool open, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        if (h_port_open(port) == open)
            return true;
        if (h_now_ms() >= end)
            return false;
        h_sleep_ms(20);
    }
}

/* ------------------------------------------------------------ reaper */

enum { REAP_ADD = 1, REAP_DEL = 2, REAP_DONE = 3 };

struct reap_msg {
    int32_t kind;
    int32_t pgid;
};

static void reaper_send(int fd, int kind, pid_t pgid)
{
    if (fd < 0)
        return;
    struct reap_msg m = {kind, (int32_t)pgid};
    ssize_t r;
    do
        r = write(fd, &m, sizeof(m)); /* < PIPE_BUF: atomic */
    while (r < 0 && errno == EINTR);
}

/* The reaper's life: collect process groups until EOF, then kill them unless
 * the test said it cleaned up itself. Never returns. */
static void reaper_main(int rfd, const char *dir)
{
    static pid_t groups[4096];
    int ngroups = 0;
    bool done = false;
    struct reap_msg m;

    for (int fd = 3; fd < 1024; fd++)
        if (fd != rfd)
            close(fd);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    for (;;) {
        ssize_t r = read(rfd, &m, sizeof(m));
        if (r < 0 && errno == EINTR)
            continue;
        if (r != (ssize_t)sizeof(m))
            break; /* EOF: the test process is gone */
        if (m.kind == REAP_ADD && ngroups < 4096) {
            groups[ngroups++] = m.pgid;
        } else if (m.kind == REAP_DEL) {
            for (int i = 0; i < ngroups; i++)
                if (groups[i] == m.pgid)
                    groups[i--] = groups[--ngroups];
        } else if (m.kind == REAP_DONE) {
            done = true;
        }
    }
    if (done)
        _exit(0);
    int killed = 0;
    for (int i = 0; i < ngroups; i++)
        if (killpg(groups[i], SIGKILL) == 0)
            killed++;
    fprintf(stderr,
            "[harness] test ended without teardown (failed or timed out): "
            "killed %d process group(s); its files are kept in %s\n",
            killed, dir);
    _exit(0);
}

static void reaper_start(struct h_test *t)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        ck_abort_msg("harness: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        ck_abort_msg("harness: fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0); /* out of the test's group: Check's killpg must not stop it */
        close(p[1]);
        reaper_main(p[0], t->dir);
    }
    close(p[0]);
    t->reaper = pid;
    t->reaper_fd = p[1];
}

/* ------------------------------------------------------------ processes */

static void track(struct h_test *t, pid_t pgid)
{
    if (t->npgids < H_MAX_PIDS)
        t->pgids[t->npgids++] = pgid;
}

static void untrack(struct h_test *t, pid_t pgid)
{
    for (int i = 0; i < t->npgids; i++)
        if (t->pgids[i] == pgid)
            t->pgids[i--] = t->pgids[--t->npgids];
    reaper_send(t->reaper_fd, REAP_DEL, pgid);
}

pid_t h_spawn(struct h_test *t, char *const argv[], const char *out_path, const char *err_path)
{
    return h_spawn_in(t, argv, NULL, out_path, err_path);
}

pid_t h_spawn_in(struct h_test *t, char *const argv[], const char *in_path, const char *out_path,
                 const char *err_path)
{
    if (t->npgids >= H_MAX_PIDS)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        /* registered by the child itself, before exec, so that no window
         * exists where it runs unknown to the reaper */
        reaper_send(t->reaper_fd, REAP_ADD, getpid());
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0 || err < 0) {
            /* still the test's own stderr: its log says why */
            fprintf(stderr, "harness: %s: cannot open its input or output (%s, %s): %s\n",
                    argv[0], out_path ? out_path : "-", err_path ? err_path : "-",
                    strerror(errno));
            _exit(126);
        }
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        /* what the test process changed must not leak into the program */
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_DFL);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execvp(argv[0], argv);
        fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* both sides, so that killpg works at once */
    track(t, pid);
    return pid;
}

int h_signal(pid_t pid, int sig)
{
    return pid > 0 ? kill(pid, sig) : -1;
}

int h_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status != NULL)
                *status = st;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -1;
        if (h_now_ms() >= end)
            return -1;
        h_sleep_ms(10);
    }
}

const char *h_proc_fate(struct h_test *t, pid_t pid)
{
    int st;
    if (h_wait_exit(pid, 0, &st) != 0)
        return "still running";
    if (WIFEXITED(st))
        return h_strf(t, "exited with %d", WEXITSTATUS(st));
    return h_strf(t, "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
}

/* Reads /proc/pid/stat: state, ppid and pgrp. Returns 0 or -1. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    int pp, pg;
    char st;
    if (rp == NULL || sscanf(rp + 1, " %c %d %d", &st, &pp, &pg) != 3)
        return -1;
    *state = st;
    *ppid = pp;
    *pgrp = pg;
    return 0;
}

bool h_pid_alive(pid_t pid)
{
    char st;
    pid_t pp, pg;
    if (pid <= 0 || proc_stat(pid, &st, &pp, &pg) != 0)
        return false;
    return st != 'Z' && st != 'X' && st != 'x';
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* Lists live processes matching ppid (by_pgrp false) or pgrp (true). */
static int proc_list(pid_t key, bool by_pgrp, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        char st;
        pid_t pp, pg;
        if (proc_stat(pid, &st, &pp, &pg) != 0 || st == 'Z' || st == 'X' || st == 'x')
            continue;
        if ((by_pgrp ? pg : pp) != key)
            continue;
        if (n < max)
            out[n] = pid;
        n++;
    }
    closedir(d);
    qsort(out, (size_t)(n < max ? n : max), sizeof(pid_t), cmp_pid);
    return n;
}

int h_children(pid_t ppid, pid_t *out, int max)
{
    return proc_list(ppid, false, out, max);
}

int h_wait_children(pid_t ppid, int n, int timeout_ms, pid_t *out)
{
    pid_t tmp[H_MAX_PIDS];
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        int c = h_children(ppid, out != NULL ? out : tmp, H_MAX_PIDS);
        if (c == n || h_now_ms() >= end)
            return c;
        h_sleep_ms(20);
    }
}

bool h_pid_in(pid_t pid, const pid_t *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] == pid)
            return true;
    return false;
}

/* SIGKILLs a process group, reaps its leader if it is our child and waits
 * (bounded) until no live member is left. */
static void kill_group(struct h_test *t, pid_t pgid)
{
    killpg(pgid, SIGKILL);
    h_wait_exit(pgid, 2000, NULL);
    pid_t left[4];
    long long end = h_now_ms() + 2000;
    while (proc_list(pgid, true, left, 4) > 0 && h_now_ms() < end) {
        killpg(pgid, SIGKILL);
        h_sleep_ms(10);
    }
    untrack(t, pgid);
}

int h_run(struct h_test *t, char *const argv[], int timeout_ms, struct h_run *r)
{
    return h_run_in(t, argv, NULL, timeout_ms, r);
}

int h_run_in(struct h_test *t, char *const argv[], const char *input, int timeout_ms,
             struct h_run *r)
{
    char *inp = NULL;
    if (input != NULL) {
        inp = h_strf(t, "%s/run-%d.in", t->dir, t->nruns + 1);
        if (h_write_file(inp, input) != 0) {
            memset(r, 0, sizeof(*r));
            r->exit_code = -1;
            r->out = r->err = "";
            return -1;
        }
    }
    return h_run_stdin(t, argv, inp, timeout_ms, r); /* the one way to run and collect */
}

/* ------------------------------------------------------------ certs */

static bool certs_complete(const char *dir)
{
    static const char *const files[] = {"ca.crt", "ca.key", "edge.crt",   "edge.key",
                                        "lb.crt", "lb.key", "client.crt", "client.key"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        if (stat(p, &st) != 0 || st.st_size == 0)
            return false;
    }
    return true;
}

/* Runs tools/gen-certs --renew-days H_CERTS_RENEW_DAYS dir (60 s at
 * most). true when it succeeded and the files are there. */
static bool gen_certs(const char *src, const char *dir)
{
    char script[600], days[16];
    snprintf(script, sizeof(script), "%s/tools/gen-certs", src);
    snprintf(days, sizeof(days), "%d", H_CERTS_RENEW_DAYS);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", script, "--renew-days", days, dir, (char *)NULL);
        _exit(127);
    }
    int wst = 0;
    if (pid < 0 || h_wait_exit(pid, 60000, &wst) != 0 || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0 ||
        !certs_complete(dir)) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        fprintf(stderr, "harness: %s %s failed\n", script, dir);
        return false;
    }
    return true;
}

const char *h_certs_dir(void)
{
    static char dir[512];
    if (dir[0] != '\0' && certs_complete(dir))
        return dir;
    const char *src = getenv("CORRAL_SRCDIR");
    if (src == NULL)
        return NULL;
    snprintf(dir, sizeof(dir), "%s/corral-test-certs-%u", tmp_base(), (unsigned)getuid());
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto fail;
    /* a predictable name in a shared dir: it must be ours and private */
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 022) != 0) {
        fprintf(stderr, "harness: %s is not a private directory of ours\n", dir);
        goto fail_quiet;
    }
    char lock[600];
    snprintf(lock, sizeof(lock), "%s/.lock", dir);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0)
        goto fail;
    /* every time, not only when files are missing: gen-certs keeps what
     * is there unless a certificate expires within H_CERTS_RENEW_DAYS */
    if (!gen_certs(src, dir)) {
        close(lfd);
        goto fail_quiet;
    }
    close(lfd); /* releases the lock */
    return dir;
fail:
    fprintf(stderr, "harness: certs dir %s: %s\n", dir, strerror(errno));
fail_quiet:
    dir[0] = '\0';
    return NULL;
}

/* ------------------------------------------------------------ per test */

/* The programs the integration tests run, and the Debian package of each
 * (tools/install-deps installs them all). */
static const struct {
    const char *prog, *package;
} TOOLS[] = {
    {"curl", "curl"},
    {"openssl", "openssl"},
    {"h2load", "nghttp2-client"},
    {"nghttp", "nghttp2-client"},
    {"nginx", "nginx-light"}, /* tools/demo-upstream */
    {"python3", "python3"},
    {"prlimit", "util-linux"},
    {"promtool", "prometheus"},   /* check_metrics */
    {"prometheus", "prometheus"}, /* check_metrics: a real server scrapes /metrics */
    {"systemd-analyze", "systemd"}, /* check_ops: verify the unit */
};

/* true when prog is an executable file in a directory of $PATH. */
static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p != '\0';) {
        size_t n = strcspn(p, ":");
        char f[1024];
        snprintf(f, sizeof(f), "%.*s/%s", (int)n, n ? p : ".", prog);
        if (access(f, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* Lists every missing test tool at once and exits 99 (automake: a hard
 * error, not a failed test) when there is one. */
static void check_tools(void)
{
    char missing[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof(TOOLS) / sizeof(TOOLS[0]); i++)
        if (!in_path(TOOLS[i].prog) && n < sizeof(missing))
            n += (size_t)snprintf(missing + n, sizeof(missing) - n, " %s (package %s)",
                                  TOOLS[i].prog, TOOLS[i].package);
    if (n == 0)
        return;
    fprintf(stderr,
            "harness: test tools missing from PATH:%s\n"
            "harness: tools/install-deps installs them (nginx is in /usr/sbin)\n",
            missing);
    exit(99);
}

void h_init(void)
{
    const char *bin = getenv("CORRAL_BIN"), *src = getenv("CORRAL_SRCDIR");
    if (bin == NULL || src == NULL) {
        fprintf(stderr, "harness: CORRAL_BIN and CORRAL_SRCDIR must be set "
                        "(make check sets them)\n");
        exit(99); /* automake: hard error */
    }
    if (access(bin, X_OK) != 0)
        fprintf(stderr, "harness: warning: CORRAL_BIN %s: %s\n", bin, strerror(errno));
    check_tools();
    if (h_certs_dir() == NULL)
        exit(99);
    signal(SIGPIPE, SIG_IGN);
}

struct h_test *h_test_begin(void)
{
    struct h_test *t = calloc(1, sizeof(*t));
    ck_assert_msg(t != NULL, "harness: out of memory");
    t->reaper_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    t->bin = getenv("CORRAL_BIN");
    t->srcdir = getenv("CORRAL_SRCDIR");
    ck_assert_msg(t->bin != NULL && t->srcdir != NULL, "CORRAL_BIN / CORRAL_SRCDIR not set");
    const char *certs = h_certs_dir();
    ck_assert_msg(certs != NULL, "harness: no test certificates");
    snprintf(t->certs, sizeof(t->certs), "%s", certs);
    snprintf(t->dir, sizeof(t->dir), "%s/corral-it-XXXXXX", tmp_base());
    ck_assert_msg(mkdtemp(t->dir) != NULL, "harness: mkdtemp %s: %s", t->dir, strerror(errno));
    snprintf(t->error_log, sizeof(t->error_log), "%s/error.log", t->dir);
    snprintf(t->access_log, sizeof(t->access_log), "%s/access.log", t->dir);
    t->port = h_free_port();
    t->port2 = h_free_port();
    t->uport = h_free_port();
    t->ustatus = h_free_port();
    ck_assert_msg(t->port && t->port2 && t->uport && t->ustatus, "harness: no free ports");
    reaper_start(t);
    return t;
}

void h_test_end(struct h_test *t)
{
    if (t == NULL)
        return;
    while (t->npgids > 0)
        kill_group(t, t->pgids[t->npgids - 1]);
    if (t->reaper_fd >= 0) {
        reaper_send(t->reaper_fd, REAP_DONE, 0);
        close(t->reaper_fd);
        t->reaper_fd = -1;
        if (h_wait_exit(t->reaper, 2000, NULL) != 0) {
            kill(t->reaper, SIGKILL);
            waitpid(t->reaper, NULL, 0);
        }
    }
    if (getenv("CORRAL_TEST_KEEP") == NULL)
        rm_tree(t->dir);
    else
        fprintf(stderr, "[harness] CORRAL_TEST_KEEP: files kept in %s\n", t->dir);
    while (t->arena != NULL) {
        struct h_arena *next = t->arena->next;
        free(t->arena);
        t->arena = next;
    }
    free(t);
}

/* ------------------------------------------------------------ upstream */

/* Waits until port accepts while pid lives. Returns 0, or -1 when pid exited
 * (reaped) or the time is up. */
static int wait_port_of(pid_t pid, int port, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        if (h_port_open(port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid || h_now_ms() >= end)
            return -1;
        h_sleep_ms(20);
    }
}

int h_upstream_start(struct h_test *t)
{
    char *updir = h_path(t, "upstream");
    if (mkdir(updir, 0700) != 0)
        return -1;
    static const char *const files[] = {"lb.crt", "lb.key", "ca.crt"};
    for (size_t i = 0; i < 3; i++)
        if (symlink(h_strf(t, "%s/%s", t->certs, files[i]), h_strf(t, "%s/%s", updir, files[i])) !=
            0)
            return -1;
    char *argv[] = {"/bin/sh",
                    h_strf(t, "%s/tools/demo-upstream", t->srcdir),
                    updir,
                    h_strf(t, "%d", t->uport),
                    h_strf(t, "%d", t->ustatus),
                    NULL};
    char *log = h_path(t, "upstream.log");
    pid_t pid = h_spawn(t, argv, log, log);
    if (pid < 0)
        return -1;
    if (wait_port_of(pid, t->uport, H_START_MS) != 0 ||
        wait_port_of(pid, t->ustatus, H_START_MS) != 0) {
        kill_group(t, pid);
        return -1;
    }
    t->ustatus_queries += 2; /* the two probes are connections it accepted */
    t->upstream = pid;
    return 0;
}

void h_upstream_stop(struct h_test *t)
{
    if (t->upstream <= 0)
        return;
    kill(t->upstream, SIGTERM);
    if (h_wait_exit(t->upstream, 3000, NULL) != 0)
        killpg(t->upstream, SIGKILL);
    kill_group(t, t->upstream);
    t->upstream = 0;
}

long h_upstream_accepts(struct h_test *t)
{
    int fd = h_connect(t->ustatus, 2000);
    if (fd < 0)
        return -1;
    t->ustatus_queries++;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
        close(fd);
        return -1;
    }
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    const char *p = strstr(buf, "server accepts handled requests\n");
    long accepts, handled, requests;
    if (p == NULL || sscanf(p + 32, " %ld %ld %ld", &accepts, &handled, &requests) != 3)
        return -1;
    return accepts - t->ustatus_queries;
}

/* ------------------------------------------------------------ corral */

char *h_expand(struct h_test *t, const char *tmpl)
{
    struct {
        const char *name;
        const char *value;
    } vars[] = {
        {"@DIR@", t->dir},
        {"@CERTS@", t->certs},
        {"@PORT@", h_strf(t, "%d", t->port)},
        {"@PORT2@", h_strf(t, "%d", t->port2)},
        {"@UPORT@", h_strf(t, "%d", t->uport)},
        {"@USTATUS@", h_strf(t, "%d", t->ustatus)},
    };
    size_t cap = strlen(tmpl) * 2 + 1024, n = 0;
    for (const char *p = tmpl; *p != '\0'; p++)
        if (*p == '@')
            cap += 600; /* room for the longest value */
    char *out = arena_alloc(t, cap);
    for (const char *p = tmpl; *p != '\0';) {
        bool done = false;
        for (size_t i = 0; *p == '@' && i < sizeof(vars) / sizeof(vars[0]); i++) {
            size_t l = strlen(vars[i].name);
            if (strncmp(p, vars[i].name, l) == 0) {
                n += (size_t)snprintf(out + n, cap - n, "%s", vars[i].value);
                p += l;
                done = true;
                break;
            }
        }
        if (!done)
            out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}

char *h_config_write(struct h_test *t, const char *name, const char *tmpl)
{
    char *path = h_path(t, name);
    char *tmp = h_strf(t, "%s/.%s.tmp", t->dir, name);
    if (h_write_file(tmp, h_expand(t, tmpl)) != 0 || rename(tmp, path) != 0)
        return NULL;
    return path;
}

pid_t h_corral_start(struct h_test *t, const char *config, int wait_port)
{
    char *argv[] = {(char *)t->bin, "-c", (char *)config, NULL};
    pid_t pid = h_spawn(t, argv, h_path(t, "corral.out"), h_path(t, "corral.err"));
    if (pid < 0)
        return -1;
    if (wait_port_of(pid, wait_port, H_START_MS) != 0) {
        kill_group(t, pid);
        return -1;
    }
    return pid;
}

/* ------------------------------------------------------------ curl */

int h_curl(struct h_test *t, struct h_http *r, const char *url, const char *const *args)
{
    memset(r, 0, sizeof(*r));
    r->exit_code = -1;
    r->body = r->err = "";
    int id = t->nruns + 1; /* the id h_run will use */
    char *body = h_strf(t, "%s/curl-%d.body", t->dir, id);
    char *argv[64];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-q"; /* no ~/.curlrc */
    argv[n++] = "-sS";
    argv[n++] = "--noproxy";
    argv[n++] = "*";
    argv[n++] = "-o";
    argv[n++] = body;
    argv[n++] = "-w";
    argv[n++] = "%{http_code} %{http_version}";
    argv[n++] = "--max-time";
    argv[n++] = h_strf(t, "%d", H_CURL_MS / 1000);
    argv[n++] = "--cacert";
    argv[n++] = h_strf(t, "%s/ca.crt", t->certs);
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 62; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = (char *)url;
    argv[n] = NULL;
    struct h_run run;
    if (h_run(t, argv, H_CURL_MS + 3000, &run) != 0)
        return -1;
    r->exit_code = run.exit_code;
    r->err = run.err;
    char ver[8] = "";
    if (sscanf(run.out, "%d %7s", &r->status, ver) < 1)
        r->status = 0;
    if (strcmp(ver, "0") != 0)
        snprintf(r->version, sizeof(r->version), "%s", ver);
    char *b = h_read_file(body, NULL);
    r->body = h_strf(t, "%s", b != NULL ? b : "");
    free(b);
    return r->exit_code;
}

int h_curl_edge(struct h_test *t, struct h_http *r, int port, const char *path,
                const char *const *args)
{
    const char *all[48];
    size_t n = 0;
    all[n++] = "--resolve";
    all[n++] = h_strf(t, "edge.test:%d:127.0.0.1", port);
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 47; i++)
        all[n++] = args[i];
    all[n] = NULL;
    return h_curl(t, r, h_strf(t, "https://edge.test:%d%s", port, path), all);
}

/* ------------------------------------------------------------ admission (h_adm_*) */

static const char *adm_testup_bin(struct h_test *t)
{
    const char *e = getenv("CORRAL_TESTUP");
    if (e != NULL && *e != '\0')
        return e;
    char *dir = h_strf(t, "%s", t->bin); /* builddir/corral -> builddir/tests/testup/testup */
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return "tests/testup/testup";
    *slash = '\0';
    return h_strf(t, "%s/tests/testup/testup", dir);
}

pid_t h_adm_testup_start(struct h_test *t, int max_streams, int service_ms)
{
    char *argv[] = {(char *)adm_testup_bin(t),
                    "--listen",
                    h_strf(t, "127.0.0.1:%d", t->uport),
                    "--cert",
                    h_strf(t, "%s/lb.crt", t->certs),
                    "--key",
                    h_strf(t, "%s/lb.key", t->certs),
                    "--ca",
                    h_strf(t, "%s/ca.crt", t->certs),
                    "--require-client-cert",
                    "--max-streams",
                    h_strf(t, "%d", max_streams),
                    "--service-time",
                    h_strf(t, "%d", service_ms),
                    "--quiet",
                    NULL};
    char *log = h_path(t, "testup.log");
    pid_t pid = h_spawn(t, argv, log, log);
    if (pid < 0)
        return -1;
    if (wait_port_of(pid, t->uport, H_START_MS) != 0) {
        kill_group(t, pid);
        return -1;
    }
    return pid;
}

bool h_adm_json_num(const char *json, const char *key, double *out)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    const char *p = json != NULL ? strstr(json, needle) : NULL;
    if (p == NULL)
        return false;
    p += strlen(needle);
    while (*p == ' ')
        p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        return false;
    *out = v;
    return true;
}

bool h_adm_json_str(const char *json, const char *key, char *out, size_t n)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    const char *p = json != NULL ? strstr(json, needle) : NULL;
    if (p == NULL || n == 0)
        return false;
    p += strlen(needle);
    while (*p == ' ')
        p++;
    if (*p != '"')
        return false; /* null, a number, ... */
    size_t i = 0;
    for (p++; *p != '\0' && *p != '"'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        if (i + 1 < n)
            out[i++] = *p;
    }
    out[i] = '\0';
    return *p == '"';
}

long h_adm_testup_stat(struct h_test *t, const char *field, bool reset)
{
    /* HTTP/1.1: testup's h2_connections then counts only corral's */
    const char *args[] = {"--http1.1",
                          "--resolve",
                          h_strf(t, "lb.test:%d:127.0.0.1", t->uport),
                          "--cert",
                          h_strf(t, "%s/client.crt", t->certs),
                          "--key",
                          h_strf(t, "%s/client.key", t->certs),
                          NULL};
    struct h_http r;
    h_curl(t, &r, h_strf(t, "https://lb.test:%d/__stats%s", t->uport, reset ? "?reset=1" : ""),
           args);
    double v;
    if (r.exit_code != 0 || r.status != 200 || !h_adm_json_num(r.body, field, &v))
        return -1;
    return (long)v;
}

int h_adm_h2load_start(struct h_test *t, struct h_adm_load *l, int port, const char *path,
                       const char *const *args)
{
    memset(l, 0, sizeof(*l));
    l->exit_code = -1;
    int id = ++t->nruns;
    l->out_path = h_strf(t, "%s/h2load-%d.out", t->dir, id);
    l->log_path = h_strf(t, "%s/h2load-%d.log", t->dir, id);
    char *argv[64];
    int n = 0;
    argv[n++] = "h2load";
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 61; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = h_strf(t, "--log-file=%s", l->log_path);
    argv[n++] = h_strf(t, "https://127.0.0.1:%d%s", port, path);
    argv[n] = NULL;
    l->t0_ms = h_now_ms();
    l->pid = h_spawn(t, argv, l->out_path, l->out_path);
    return l->pid > 0 ? 0 : -1;
}

static void adm_load_log(struct h_test *t, struct h_adm_load *l)
{
    char *s = h_read_file(l->log_path, NULL);
    if (s == NULL)
        return;
    int rows = 0;
    for (const char *p = s; *p != '\0'; p++)
        rows += *p == '\n';
    l->reqs = arena_alloc(t, sizeof(*l->reqs) * (size_t)(rows + 1));
    for (char *line = s; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        long long start, us;
        int status;
        if (sscanf(line, "%lld %d %lld", &start, &status, &us) == 3 && l->nreqs <= rows) {
            struct h_adm_req *r = &l->reqs[l->nreqs++];
            r->start_us = start;
            r->status = status;
            r->ms = (double)us / 1000.0;
            if (status >= 200 && status < 300)
                l->n2xx++;
            else if (status == 429)
                l->n429++;
            else if (status == 503)
                l->n503++;
            else
                l->nother++;
            if (r->ms > l->max_ms)
                l->max_ms = r->ms;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(s);
}

int h_adm_h2load_wait(struct h_test *t, struct h_adm_load *l, int timeout_ms)
{
    if (l->pid <= 0)
        return -1;
    int st = 0, rc = 0;
    if (h_wait_exit(l->pid, timeout_ms, &st) != 0) {
        killpg(l->pid, SIGKILL);
        h_wait_exit(l->pid, 2000, &st);
        rc = -1;
    }
    l->ran_ms = h_now_ms() - l->t0_ms;
    killpg(l->pid, SIGKILL); /* anything it left behind */
    untrack(t, l->pid);
    l->pid = 0;
    if (WIFEXITED(st))
        l->exit_code = WEXITSTATUS(st);
    char *out = h_read_file(l->out_path, NULL);
    const char *p = out != NULL ? strstr(out, "\nrequests: ") : NULL;
    if (p == NULL ||
        sscanf(p,
               "\nrequests: %*d total, %ld started, %ld done, %ld succeeded, "
               "%ld failed, %ld errored, %ld timeout",
               &l->started, &l->done, &l->succeeded, &l->failed, &l->errored, &l->timeouts) != 6)
        rc = -1;
    free(out);
    adm_load_log(t, l);
    return rc;
}

int h_adm_h2load(struct h_test *t, struct h_adm_load *l, int port, const char *path,
                 const char *const *args, int timeout_ms)
{
    if (h_adm_h2load_start(t, l, port, path, args) != 0)
        return -1;
    return h_adm_h2load_wait(t, l, timeout_ms);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double h_adm_pct(const struct h_adm_load *l, double p, int lo, int hi)
{
    double *v = malloc(sizeof(double) * (size_t)(l->nreqs + 1));
    int n = 0;
    for (int i = 0; v != NULL && i < l->nreqs; i++)
        if (l->reqs[i].status >= lo && l->reqs[i].status <= hi)
            v[n++] = l->reqs[i].ms;
    if (n == 0) {
        free(v);
        return -1.0;
    }
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int k = (int)(p / 100.0 * n + 0.5) - 1;
    double r = v[k < 0 ? 0 : k >= n ? n - 1 : k];
    free(v);
    return r;
}

int h_adm_curl_seq(struct h_test *t, int port, int n, const char *const *paths,
                   const char *const *hdrs, const char *const *opts, struct h_adm_xfer *out)
{
    int id = ++t->nruns;
    char *cfgp = h_strf(t, "%s/curlseq-%d.cfg", t->dir, id);
    FILE *f = fopen(cfgp, "w");
    if (f == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].retry_after = -1;
        out[i].body = "";
        if (i > 0)
            fputs("next\n", f);
        fprintf(f, "url = \"https://edge.test:%d%s\"\n", port, paths[i]);
        fprintf(f, "output = \"%s/curlseq-%d-%d.body\"\n", t->dir, id, i);
        fputs("write-out = \"%{http_code} %{num_connects} %{time_total} %{http_version} "
              "[%header{retry-after}]\\n\"\n",
              f);
        fprintf(f, "cacert = \"%s/ca.crt\"\n", t->certs);
        fprintf(f, "resolve = \"edge.test:%d:127.0.0.1\"\n", port);
        fputs("silent\nshow-error\nnoproxy = \"*\"\nmax-time = 10\n", f);
        for (size_t k = 0; opts != NULL && opts[k] != NULL; k++)
            fprintf(f, "%s\n", opts[k]);
        if (hdrs != NULL && hdrs[i] != NULL)
            fprintf(f, "header = \"%s\"\n", hdrs[i]);
    }
    if (fclose(f) != 0)
        return -1;
    char *argv[] = {"curl", "-q", "-K", cfgp, NULL};
    struct h_run run;
    int limit = n * 10000 + 5000;
    if (h_run(t, argv, limit < 60000 ? limit : 60000, &run) != 0)
        return -1;
    const char *line = run.out;
    for (int i = 0; i < n && line != NULL && *line != '\0'; i++) {
        char ver[8] = "";
        int ra = -1;
        if (sscanf(line, "%d %d %lf %7s [%d]", &out[i].status, &out[i].num_connects, &out[i].time_s,
                   ver, &ra) >= 4) {
            out[i].retry_after = ra;
            if (strcmp(ver, "0") != 0)
                snprintf(out[i].version, sizeof(out[i].version), "%s", ver);
        }
        char *b = h_read_file(h_strf(t, "%s/curlseq-%d-%d.body", t->dir, id, i), NULL);
        out[i].body = h_strf(t, "%s", b != NULL ? b : "");
        free(b);
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return run.exit_code;
}

static long long adm_time_ms(const char *s)
{
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

int h_adm_access(struct h_test *t, struct h_adm_entry **out)
{
    *out = NULL;
    char *s = h_read_file(t->access_log, NULL);
    if (s == NULL)
        return -1;
    int rows = 0;
    for (const char *p = s; *p != '\0'; p++)
        rows += *p == '\n';
    struct h_adm_entry *e = arena_alloc(t, sizeof(*e) * (size_t)(rows + 1));
    int n = 0;
    for (char *line = s; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (line[0] == '{' && n <= rows) {
            struct h_adm_entry *x = &e[n++];
            memset(x, 0, sizeof(*x));
            double v;
            char tm[64] = "";
            h_adm_json_str(line, "tenant", x->tenant, sizeof(x->tenant));
            h_adm_json_str(line, "reason", x->reason, sizeof(x->reason));
            h_adm_json_str(line, "path", x->path, sizeof(x->path));
            h_adm_json_str(line, "protocol", x->protocol, sizeof(x->protocol));
            if (h_adm_json_str(line, "time", tm, sizeof(tm)))
                x->time_ms = adm_time_ms(tm);
            x->worker = h_adm_json_num(line, "worker", &v) ? (int)v : -1;
            x->status = h_adm_json_num(line, "status", &v) ? (int)v : -1;
            x->queue_ms = h_adm_json_num(line, "queue_ms", &v) ? v : -1.0;
            x->upstream_ms = h_adm_json_num(line, "upstream_ms", &v) ? v : -1.0;
            x->total_ms = h_adm_json_num(line, "total_ms", &v) ? v : -1.0;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(s);
    *out = n > 0 ? e : NULL;
    return n;
}

/* ------------------------------------------------------------ testup instances (h_up_*) */

static char *up_stats_path(struct h_test *t, int port)
{
    return h_strf(t, "%s/testup-%d.stats", t->dir, port);
}

pid_t h_up_start(struct h_test *t, int port, bool client_cert, const char *const *args)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)adm_testup_bin(t);
    argv[n++] = "--listen";
    argv[n++] = h_strf(t, "127.0.0.1:%d", port);
    argv[n++] = "--cert";
    argv[n++] = h_strf(t, "%s/lb.crt", t->certs);
    argv[n++] = "--key";
    argv[n++] = h_strf(t, "%s/lb.key", t->certs);
    argv[n++] = "--ca";
    argv[n++] = h_strf(t, "%s/ca.crt", t->certs);
    argv[n++] = "--stats-file";
    argv[n++] = up_stats_path(t, port);
    if (client_cert)
        argv[n++] = "--require-client-cert";
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 63; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;

    char *log = h_strf(t, "%s/testup-%d.log", t->dir, port);
    size_t before = 0;
    free(h_read_file(log, &before)); /* a restart appends: look after this */
    pid_t pid = h_spawn(t, argv, log, log);
    if (pid < 0)
        return -1;
    const char *want = h_strf(t, "testup: listening on 127.0.0.1:%d", port);
    for (long long end = h_now_ms() + H_START_MS; h_now_ms() < end; h_sleep_ms(10)) {
        size_t len = 0;
        char *s = h_read_file(log, &len);
        bool up = s != NULL && len > before && strstr(s + before, want) != NULL;
        free(s);
        if (up)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            break; /* it exited: a bad option, the port taken, ... */
    }
    kill_group(t, pid);
    return -1;
}

static long up_json_long(const char *json, const char *key)
{
    double v;
    return h_adm_json_num(json, key, &v) ? (long)v : -1;
}

int h_up_stats(struct h_test *t, pid_t pid, int port, struct h_up_stats *st)
{
    char *path = up_stats_path(t, port);
    unlink(path);
    if (pid <= 0 || kill(pid, SIGUSR1) != 0)
        return -1;
    for (long long end = h_now_ms() + 2000; h_now_ms() < end; h_sleep_ms(5)) {
        char *s = h_read_file(path, NULL); /* testup renames it into place: whole */
        if (s == NULL)
            continue;
        st->accepted = up_json_long(s, "connections_accepted");
        st->open = up_json_long(s, "connections_open");
        st->requests = up_json_long(s, "requests");
        st->inflight = up_json_long(s, "inflight");
        st->max_inflight = up_json_long(s, "max_inflight");
        st->h2 = up_json_long(s, "h2_connections");
        st->h1 = up_json_long(s, "h1_connections");
        free(s);
        return 0;
    }
    return -1;
}

bool h_up_wait_open(struct h_test *t, pid_t pid, int port, long open, int timeout_ms,
                    struct h_up_stats *st)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        if (h_up_stats(t, pid, port, st) == 0 && st->open == open)
            return true;
        if (h_now_ms() >= end)
            return false;
        h_sleep_ms(20);
    }
}

void h_up_kill(struct h_test *t, pid_t pid)
{
    if (pid > 0)
        kill_group(t, pid);
}

int h_up_bg_curl(struct h_test *t, struct h_up_bg *b, int port, const char *path,
                 const char *const *args)
{
    memset(b, 0, sizeof(*b));
    b->exit_code = -1;
    b->out = h_strf(t, "%s/bg-%d.out", t->dir, ++t->nruns);
    char *argv[64];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-q";
    argv[n++] = "-sS";
    argv[n++] = "--noproxy";
    argv[n++] = "*";
    argv[n++] = "-o";
    argv[n++] = "/dev/null";
    argv[n++] = "-w";
    argv[n++] = "%{http_code} %{time_total}\\n";
    argv[n++] = "--max-time";
    argv[n++] = "10";
    argv[n++] = "--cacert";
    argv[n++] = h_strf(t, "%s/ca.crt", t->certs);
    argv[n++] = "--resolve";
    argv[n++] = h_strf(t, "edge.test:%d:127.0.0.1", port);
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 62; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = h_strf(t, "https://edge.test:%d%s", port, path);
    argv[n] = NULL;
    b->t0_ms = h_now_ms();
    b->pid = h_spawn(t, argv, b->out, b->out);
    return b->pid > 0 ? 0 : -1;
}

int h_up_bg_wait(struct h_test *t, struct h_up_bg *b, int timeout_ms)
{
    if (b->pid <= 0)
        return -1;
    int st = 0, rc = 0;
    if (h_wait_exit(b->pid, timeout_ms, &st) != 0) {
        killpg(b->pid, SIGKILL);
        h_wait_exit(b->pid, 2000, &st);
        rc = -1;
    }
    killpg(b->pid, SIGKILL);
    untrack(t, b->pid);
    b->pid = 0;
    b->exit_code = rc == 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char *s = h_read_file(b->out, NULL);
    /* the -w line is the last one; -sS errors come before it */
    const char *line = s;
    for (const char *p = s; p != NULL && *p != '\0'; p++)
        if (*p == '\n' && p[1] != '\0')
            line = p + 1;
    if (line == NULL || sscanf(line, "%d %lf", &b->status, &b->secs) != 2)
        b->status = 0;
    free(s);
    return rc;
}

/* ------------------------------------------------------------ testup (h_testup_*) */

static const char *testup_bin_path(struct h_test *t)
{
    const char *e = getenv("CORRAL_TESTUP");
    if (e != NULL && *e != '\0')
        return e;
    char *dir = h_strf(t, "%s", t->bin); /* builddir/corral -> builddir/tests/testup/testup */
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return "tests/testup/testup";
    *slash = '\0';
    return h_strf(t, "%s/tests/testup/testup", dir);
}

pid_t h_testup_start(struct h_test *t, int port, ...)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)testup_bin_path(t);
    argv[n++] = "--listen";
    argv[n++] = h_strf(t, "127.0.0.1:%d", port);
    argv[n++] = "--cert";
    argv[n++] = h_strf(t, "%s/lb.crt", t->certs);
    argv[n++] = "--key";
    argv[n++] = h_strf(t, "%s/lb.key", t->certs);
    argv[n++] = "--ca";
    argv[n++] = h_strf(t, "%s/ca.crt", t->certs);
    argv[n++] = "--require-client-cert";
    va_list ap;
    va_start(ap, port);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 63;)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char *log = h_strf(t, "%s/testup-%d.log", t->dir, port);
    char *line = h_strf(t, "testup: listening on 127.0.0.1:%d\n", port);
    pid_t pid = h_spawn(t, argv, log, log);
    if (pid < 0)
        return -1;
    long long end = h_now_ms() + H_START_MS;
    while (!h_file_contains(log, line)) {
        if (waitpid(pid, NULL, WNOHANG) == pid || h_now_ms() >= end) {
            kill_group(t, pid);
            return -1;
        }
        h_sleep_ms(10);
    }
    return pid;
}

char *h_testup_stats(struct h_test *t, int port, bool reset)
{
    const char *args[] = {"--resolve", h_strf(t, "lb.test:%d:127.0.0.1", port),
                          "--cert",    h_strf(t, "%s/client.crt", t->certs),
                          "--key",     h_strf(t, "%s/client.key", t->certs),
                          NULL};
    struct h_http r;
    h_curl(t, &r, h_strf(t, "https://lb.test:%d/__stats%s", port, reset ? "?reset=1" : ""), args);
    return r.exit_code == 0 && r.status == 200 ? r.body : NULL;
}

char *h_admin_stats(struct h_test *t, int port)
{
    struct h_http r;
    h_curl(t, &r, h_strf(t, "http://127.0.0.1:%d/stats", port), NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "GET /stats on %d: curl %d, HTTP %d: %s",
                  port, r.exit_code, r.status, r.err);
    return r.body;
}

long h_admin_stat_wait(struct h_test *t, int port, const char *key, long want, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    long v;
    while ((v = h_json_long(h_admin_stats(t, port), key)) != want && h_now_ms() < end)
        h_sleep_ms(20);
    return v;
}

long h_json_long(const char *json, const char *key)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    const char *p = json != NULL ? strstr(json, needle) : NULL;
    if (p == NULL)
        return -1;
    p += strlen(needle);
    while (*p == ' ')
        p++;
    char *end;
    long v = strtol(p, &end, 10);
    return end == p ? -1 : v;
}

int h_run_stdin(struct h_test *t, char *const argv[], const char *in_path, int timeout_ms,
                struct h_run *r)
{
    memset(r, 0, sizeof(*r));
    r->exit_code = -1;
    r->out = r->err = "";
    int id = ++t->nruns;
    char *outp = h_strf(t, "%s/run-%d.out", t->dir, id);
    char *errp = h_strf(t, "%s/run-%d.err", t->dir, id);
    pid_t pid = h_spawn_in(t, argv, in_path, outp, errp);
    if (pid < 0)
        return -1;
    int st = 0;
    if (h_wait_exit(pid, timeout_ms, &st) != 0) {
        r->timed_out = true;
        killpg(pid, SIGKILL);
        h_wait_exit(pid, 2000, &st);
    }
    killpg(pid, SIGKILL); /* anything it left behind */
    untrack(t, pid);
    if (WIFEXITED(st))
        r->exit_code = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        r->term_signal = WTERMSIG(st);
    char *s = h_read_file(outp, NULL);
    r->out = h_strf(t, "%s", s != NULL ? s : "");
    free(s);
    s = h_read_file(errp, NULL);
    r->err = h_strf(t, "%s", s != NULL ? s : "");
    free(s);
    return 0;
}
