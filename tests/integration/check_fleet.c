/* check_fleet.c - a fleet of corral hosts on one machine (issue 16).
 *
 * Three corral "hosts", each in a network namespace of its own, behind no
 * balancer: the clients (openssl s_client, corral-replay) pick the host, as
 * an L4 balancer would. The test upstream (tests/testup/testup) and the
 * clients run in a fourth namespace, the "fabric", which the hosts reach
 * over one veth pair each:
 *
 *     fabric  fN 10.213.N.1/24  <-- veth -->  eth0 10.213.N.2/24  hostN
 *
 * Every address is inside namespaces this program makes, so nothing on the
 * machine's own interfaces changes and runs in parallel do not collide.
 * The namespaces are named corral-fleet-PID-{fabric,h1,h2,h3} after the
 * program's pid; they are made once by main() before the tests and removed
 * when it exits, on every path it can see (the tests' failures happen in
 * Check's forks, their processes are killed by the harness's reaper). A
 * run that was SIGKILLed leaves its namespaces behind: the next run removes
 * every corral-fleet-PID-* whose PID is no longer running.
 *
 * All hosts read one ticket_key_file. In the replay test they also lease
 * tenant `fleet`'s global rate from one redis-server in the fabric
 * (tenants.global), which the test kills and restarts. Needs root and
 * `ip netns` (iproute2); without them the program is skipped (exit 77) and
 * says why. redis-server is a test dependency like the others. */
#include "harness.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NHOSTS 3
#define NS_PREFIX "corral-fleet-"
#define NS_DIR "/run/netns"
#define EDGE_PORT 8443
#define UP_PORT 9443
#define IP_MS 10000     /* one ip(8) command */
#define REDIS_PORT 6379 /* in the fabric, every address */
#define GRATE 60        /* tenant fleet's global rate, per s */
#define GBURST 10
#define OFFER (3 * GRATE)
#define WINDOW_MS 10000

static struct h_test *T;
static pid_t owner;              /* the process that made the namespaces */
static char ns_fabric[64];       /* where testup and the clients run */
static char ns_host[NHOSTS][64]; /* host N+1 */
static bool made[NHOSTS + 1];    /* which of them exist: fabric, then the hosts */

/* ------------------------------------------------------------ namespaces */

/* Runs argv (ip ...) with output to /dev/null unless verbose, for at most
 * IP_MS. Returns its exit code, or -1. Usable without a test (main). */
static int run(char *const argv[], bool verbose)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            if (!verbose) {
                dup2(null, 1);
                dup2(null, 2);
            }
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    for (int waited = 0; waited < IP_MS; waited += 10) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (w < 0)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int ip(bool verbose, const char *a0, const char *a1, const char *a2, const char *a3,
              const char *a4, const char *a5, const char *a6, const char *a7, const char *a8,
              const char *a9)
{
    const char *argv[] = {"ip", a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, NULL};
    return run((char *const *)argv, verbose);
}

static void ns_del(const char *name)
{
    ip(false, "netns", "del", name, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* Removes the namespaces of earlier runs whose process is gone. */
static void remove_leftovers(void)
{
    DIR *d = opendir(NS_DIR);
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, NS_PREFIX, strlen(NS_PREFIX)) != 0)
            continue;
        long pid = strtol(e->d_name + strlen(NS_PREFIX), NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            fprintf(stderr, "check_fleet: removing %s, left by an earlier run\n", e->d_name);
            ns_del(e->d_name);
        }
    }
    closedir(d);
}

static void net_down(void)
{
    if (getpid() != owner) /* Check's forks of the tests inherit atexit */
        return;
    for (int i = 0; i <= NHOSTS; i++)
        if (made[i])
            ns_del(i == 0 ? ns_fabric : ns_host[i - 1]);
    memset(made, 0, sizeof(made));
}

static void on_signal(int sig)
{
    net_down();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Makes the fabric and the hosts. Returns NULL, or why not. */
static const char *net_up(void)
{
    char dev[16], a[32], b[32];
    snprintf(ns_fabric, sizeof(ns_fabric), NS_PREFIX "%d-fabric", (int)owner);
    if (ip(false, "netns", "add", ns_fabric, NULL, NULL, NULL, NULL, NULL, NULL, NULL) != 0)
        return "ip netns add failed";
    made[0] = true;
    if (ip(false, "-n", ns_fabric, "link", "set", "lo", "up", NULL, NULL, NULL, NULL) != 0)
        return "lo up in the fabric";
    for (int n = 1; n <= NHOSTS; n++) {
        char *h = ns_host[n - 1];
        snprintf(h, sizeof(ns_host[0]), NS_PREFIX "%d-h%d", (int)owner, n);
        snprintf(dev, sizeof(dev), "f%d", n);
        snprintf(a, sizeof(a), "10.213.%d.1/24", n);
        snprintf(b, sizeof(b), "10.213.%d.2/24", n);
        if (ip(false, "netns", "add", h, NULL, NULL, NULL, NULL, NULL, NULL, NULL) != 0)
            return "ip netns add (a host) failed";
        made[n] = true;
        if (ip(true, "-n", ns_fabric, "link", "add", dev, "type", "veth", "peer", "name", "eth0") !=
                0 ||
            ip(true, "-n", ns_fabric, "link", "set", "eth0", "netns", h, NULL, NULL, NULL) != 0 ||
            ip(true, "-n", ns_fabric, "addr", "add", a, "dev", dev, NULL, NULL, NULL) != 0 ||
            ip(true, "-n", ns_fabric, "link", "set", dev, "up", NULL, NULL, NULL, NULL) != 0 ||
            ip(true, "-n", h, "addr", "add", b, "dev", "eth0", NULL, NULL, NULL) != 0 ||
            ip(true, "-n", h, "link", "set", "eth0", "up", NULL, NULL, NULL, NULL) != 0 ||
            ip(true, "-n", h, "link", "set", "lo", "up", NULL, NULL, NULL, NULL) != 0)
            return "veth pair setup failed";
    }
    return NULL;
}

/* ------------------------------------------------------------ per test */

/* The test's process joins the fabric: what it starts (testup, clients)
 * runs there; corral runs in its host through `ip netns exec`. */
static void setup(void)
{
    T = h_test_begin();
    int fd = open(h_strf(T, NS_DIR "/%s", ns_fabric), O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "cannot open the fabric namespace %s", ns_fabric);
    ck_assert_msg(setns(fd, CLONE_NEWNET) == 0, "setns: %s", strerror(errno));
    close(fd);
}

static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

static const char *host_addr(int n)
{
    return h_strf(T, "10.213.%d.2:%d", n, EDGE_PORT);
}

static char *host_log(int n)
{
    return h_path(T, h_strf(T, "h%d.error.log", n));
}

/* testup in the fabric on every address, counting per tenant. */
static pid_t upstream(void)
{
    char *log = h_path(T, "testup.log"), *dir = h_strf(T, "%s", T->bin);
    *strrchr(dir, '/') = '\0'; /* testup is DIR/tests/testup/testup beside DIR/corral */
    const char *bin = getenv("CORRAL_TESTUP");
    const char *argv[] = {bin != NULL && *bin != '\0' ? bin
                                                      : h_strf(T, "%s/tests/testup/testup", dir),
                          "--listen",
                          h_strf(T, "0.0.0.0:%d", UP_PORT),
                          "--cert",
                          h_strf(T, "%s/lb.crt", T->certs),
                          "--key",
                          h_strf(T, "%s/lb.key", T->certs),
                          "--ca",
                          h_strf(T, "%s/ca.crt", T->certs),
                          "--require-client-cert",
                          "--count-header",
                          "x-tenant-id",
                          NULL};
    pid_t pid = h_spawn(T, (char *const *)argv, log, log);
    ck_assert_int_gt(pid, 0);
    const char *want[] = {"testup: listening on", NULL};
    ck_assert_msg(h_wait_file_line(log, want, H_START_MS), "testup did not start: %s",
                  h_file_tail(T, log, 1000));
    return pid;
}

/* Host n's config: its address, the shared key file, testup through the
 * fabric, and tenant `fleet`: with global, a rate of GRATE/s for the whole
 * fleet on the Redis in the fabric (REDIS_PORT); without, 20/s per host. */
static char *host_config(int n, const char *keys, bool global)
{
    const char *tenants =
        global ? h_strf(T,
                        "  global: {address: 10.213.%d.1:%d, hosts: %d, command_timeout: 200ms,\n"
                        "           reconnect_max: 500ms}\n"
                        "  list:\n"
                        "    - {name: fleet, rate: %d/s, burst: %d, queue: 0, global: true}\n",
                        n, REDIS_PORT, NHOSTS, GRATE, GBURST)
               : "  list:\n"
                 "    - {name: fleet, rate: 20/s, burst: 5, queue: 0}\n";
    return h_config_write(
        T, h_strf(T, "h%d.yaml", n),
        h_strf(T,
               "workers: 1\n"
               "drain_timeout: 1s\n"
               "log: {error: @DIR@/h%d.error.log, level: info, access: @DIR@/h%d.access.log}\n"
               "admin: {address: 127.0.0.1:8081}\n"
               "listeners:\n"
               "  - name: https\n"
               "    address: %s\n"
               "    tls:\n"
               "      certificates:\n"
               "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"
               "      ticket_key_file: %s\n"
               "upstream:\n"
               "  addresses: [10.213.%d.1:%d]\n"
               "  protocol: h2\n"
               "  connections: 1\n"
               "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: "
               "@CERTS@/client.key, sni: lb.test}\n"
               "tenants:\n"
               "  by: header\n"
               "%s",
               n, n, host_addr(n), keys, n, UP_PORT, tenants));
}

/* GET /health on host n's admin (loopback of its namespace). */
static bool healthy(int n)
{
    const char *argv[] = {"ip",
                          "netns",
                          "exec",
                          ns_host[n - 1],
                          "curl",
                          "-s",
                          "-o",
                          "/dev/null",
                          "-w",
                          "%{http_code}",
                          "--max-time",
                          "2",
                          "http://127.0.0.1:8081/health",
                          NULL};
    struct h_run r;
    return h_run(T, (char *const *)argv, 5000, &r) == 0 && strcmp(r.out, "200") == 0;
}

/* Starts corral in host n's namespace and waits until its /health says
 * 200 (it listens and its upstream connection is ready). Returns the
 * master's pid (`ip netns exec` execs it). */
static pid_t host_start(int n, const char *keys, bool global)
{
    char *cfg = host_config(n, keys, global);
    ck_assert_ptr_nonnull(cfg);
    const char *argv[] = {"ip", "netns", "exec", ns_host[n - 1], T->bin, "-c", cfg, NULL};
    char *err = h_path(T, h_strf(T, "h%d.err", n));
    pid_t pid = h_spawn(T, (char *const *)argv, err, err);
    ck_assert_int_gt(pid, 0);
    return pid;
}

static void host_wait(int n)
{
    for (long long end = h_now_ms() + H_START_MS; h_now_ms() < end; h_sleep_ms(50))
        if (healthy(n))
            return;
    ck_abort_msg("host %d not healthy within %d ms: %s | %s", n, H_START_MS,
                 h_file_tail(T, h_path(T, h_strf(T, "h%d.err", n)), 1000),
                 h_file_tail(T, host_log(n), 1000));
}

/* The three hosts with key file keys (and `fleet` global or not). */
static void fleet_start(const char *keys, pid_t *pids, bool global)
{
    for (int n = 1; n <= NHOSTS; n++)
        pids[n - 1] = host_start(n, keys, global);
    for (int n = 1; n <= NHOSTS; n++)
        host_wait(n);
}

/* ------------------------------------------------------------ TLS sessions */

/* openssl s_client to host n; reads until corral closes (it answers a bad
 * request with 400), so the tickets after the handshake are saved. */
static char *sclient(int n, const char *a1, const char *a2, const char *a3)
{
    const char *argv[] = {"openssl",     "s_client",  "-connect", host_addr(n),
                          "-servername", "edge.test", "-CAfile",  h_strf(T, "%s/ca.crt", T->certs),
                          "-ign_eof",    a1,          a2,         a3,
                          NULL};
    struct h_run r;
    ck_assert_int_eq(h_run_in(T, (char *const *)argv, "BAD\r\n\r\n", 10000, &r), 0);
    ck_assert_msg(!r.timed_out, "s_client to host %d timed out", n);
    return h_strf(T, "%s\n%s", r.out, r.err);
}

/* A new session from host n saved to DIR/name; returns the path. */
static char *new_session(int n, const char *name, const char *version)
{
    char *path = h_path(T, name);
    unlink(path);
    char *out = sclient(n, "-sess_out", path, version);
    ck_assert_msg(strstr(out, "New, TLSv1.") != NULL, "host %d: no new session: %s", n, out);
    ck_assert_msg(access(path, F_OK) == 0, "host %d: no session saved: %s", n, out);
    return path;
}

/* true when host n resumed the session in sess. */
static bool resumes(int n, const char *sess, const char *version)
{
    char *out = sclient(n, "-sess_in", sess, version);
    bool reused = strstr(out, "Reused, TLSv1.") != NULL;
    ck_assert_msg(reused || strstr(out, "New, TLSv1.") != NULL, "host %d: no handshake: %s", n,
                  out);
    return reused;
}

/* 80 random bytes (one raw key, nginx's layout) into DIR/name. */
static unsigned char *random_key(const char *name)
{
    char *path = h_path(T, name);
    const char *argv[] = {"openssl", "rand", "-out", path, "80", NULL};
    struct h_run r;
    ck_assert(h_run(T, (char *const *)argv, 5000, &r) == 0 && r.exit_code == 0);
    size_t len;
    unsigned char *k = (unsigned char *)h_read_file(path, &len);
    ck_assert_msg(k != NULL && len == 80, "%s: %zu bytes", path, len);
    unsigned char *copy = (unsigned char *)h_strf(T, "%80s", "");
    memcpy(copy, k, 80);
    free(k);
    return copy;
}

/* Writes keys (80 bytes each) to path as a new file, renamed into place as
 * a deploy tool would. */
static void write_keys(const char *path, const unsigned char *const *keys, int n)
{
    char *tmp = h_strf(T, "%s.new", path);
    FILE *f = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(fwrite(keys[i], 1, 80, f), 80);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, path), 0);
}

/* SIGHUP to every host, and each one's log says it reloaded (the keys are
 * in its shared memory before that line). */
static void reload_fleet(const pid_t *pids)
{
    const char *reloaded[] = {"reloaded", NULL};
    int before[NHOSTS];
    for (int n = 1; n <= NHOSTS; n++) {
        before[n - 1] = h_file_count_lines(host_log(n), reloaded);
        ck_assert_int_eq(h_signal(pids[n - 1], SIGHUP), 0);
    }
    for (int n = 1; n <= NHOSTS; n++)
        ck_assert_msg(h_wait_file_lines(host_log(n), reloaded, before[n - 1] + 1, 10000),
                      "host %d did not reload: %s", n, h_file_tail(T, host_log(n), 1500));
}

/* A session saved from host 1 resumes on hosts 2 and 3 (and theirs on 1),
 * TLS 1.3 and 1.2: they share the ticket key file. */
START_TEST(sessions_resume_on_any_host)
{
    pid_t pids[NHOSTS];
    char *keys = h_path(T, "tickets.keys");
    random_key("tickets.keys");
    upstream();
    fleet_start(keys, pids, false);

    char *s1 = new_session(1, "s1", "-tls1_3");
    ck_assert_msg(resumes(2, s1, "-tls1_3"), "host 2 did not resume host 1's TLS 1.3 session");
    ck_assert_msg(resumes(3, s1, "-tls1_3"), "host 3 did not resume host 1's TLS 1.3 session");
    char *s3 = new_session(3, "s3", "-tls1_3");
    ck_assert_msg(resumes(1, s3, "-tls1_3"), "host 1 did not resume host 3's session");
    char *s12 = new_session(1, "s12", "-tls1_2");
    ck_assert_msg(resumes(2, s12, "-tls1_2"), "host 2 did not resume host 1's TLS 1.2 session");
    ck_assert_msg(resumes(3, s12, "-tls1_2"), "host 3 did not resume host 1's TLS 1.2 session");
}
END_TEST

/* A fleet key rotation: the new file (new key first, the old one after
 * it) goes to every host, SIGHUP everywhere; a session from before the
 * rotation resumes on every host after it, and one from after resumes
 * across hosts too. Once the old key leaves the file (the next rotation),
 * its sessions no longer resume anywhere: the file is what decides. */
START_TEST(fleet_key_rotation)
{
    pid_t pids[NHOSTS];
    char *keys = h_path(T, "tickets.keys");
    const unsigned char *k1 = random_key("k1"), *k2 = random_key("k2");
    write_keys(keys, &k1, 1);
    upstream();
    fleet_start(keys, pids, false);

    char *before = new_session(1, "before", "-tls1_3");
    ck_assert_msg(resumes(2, before, "-tls1_3"), "no resumption across hosts before rotating");

    const unsigned char *rotated[] = {k2, k1};
    write_keys(keys, rotated, 2);
    reload_fleet(pids);
    for (int n = 1; n <= NHOSTS; n++)
        ck_assert_msg(resumes(n, before, "-tls1_3"),
                      "host %d: a session from before the rotation did not resume after it", n);
    char *after = new_session(2, "after", "-tls1_3");
    ck_assert_msg(resumes(1, after, "-tls1_3") && resumes(3, after, "-tls1_3"),
                  "a session under the new key did not resume on the other hosts");

    write_keys(keys, &k2, 1); /* k1 retired */
    reload_fleet(pids);
    for (int n = 1; n <= NHOSTS; n++) {
        ck_assert_msg(!resumes(n, before, "-tls1_3"),
                      "host %d resumed a session under a key no longer in the file", n);
        ck_assert_msg(resumes(n, after, "-tls1_3"), "host %d: the new key's session", n);
    }
}
END_TEST

/* ------------------------------------------------------------ corral-replay */

static const char *replay_bin(void)
{
    const char *e = getenv("CORRAL_REPLAY");
    if (e != NULL && *e != '\0')
        return e;
    char *dir = h_strf(T, "%s", T->bin);
    *strrchr(dir, '/') = '\0';
    return h_strf(T, "%s/corral-replay", dir);
}

/* corral-replay spreading `fleet` over the three hosts, round robin, at
 * OFFER/s (3 x the global rate) for seconds; started, not waited for. */
static pid_t replay_start(const char *name, int seconds, char **out)
{
    char *path = h_config_write(
        T, name,
        h_strf(T,
               "duration: %ds\n"
               "target:\n"
               "  addresses: [%s, %s, %s]\n"
               "  sni: edge.test\n"
               "  ca: @CERTS@/ca.crt\n"
               "  http2: 0.5\n"
               "caps: {rate: 500/s, connections: 60}\n"
               "client: {requests_per_connection: 10, resume: 50%%, on_refusal: give_up, "
               "timeout: 3s}\n"
               "tenants:\n"
               "  list:\n"
               "    - {name: fleet, baseline: %d/s}\n",
               seconds, host_addr(1), host_addr(2), host_addr(3), OFFER));
    ck_assert_ptr_nonnull(path);
    *out = h_path(T, h_strf(T, "%s.out", name));
    unlink(*out);
    const char *argv[] = {replay_bin(), "-q", path, NULL};
    pid_t pid = h_spawn(T, (char *const *)argv, *out, h_path(T, h_strf(T, "%s.err", name)));
    ck_assert_int_gt(pid, 0);
    return pid;
}

/* Waits for the replay (its duration + 20 s at most); r->out is its report. */
static void replay_wait(pid_t pid, const char *out, int seconds, struct h_run *r)
{
    int st;
    memset(r, 0, sizeof(*r));
    ck_assert_msg(h_wait_exit(pid, (seconds + 20) * 1000, &st) == 0,
                  "corral-replay did not finish within %d s", seconds + 20);
    r->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char *text = h_read_file(out, NULL);
    r->out = h_strf(T, "%s", text != NULL ? text : "");
    free(text);
    r->err = "";
    ck_assert_msg(r->exit_code == 0, "corral-replay exit %d: %s", r->exit_code, r->out);
}

/* The report's per-target line of host n: connections, 2xx, 429, 503,
 * other, connection errors, timeouts. */
static void target_row(const struct h_run *r, int n, long v[7])
{
    const char *rows = strstr(r->out, "per target:");
    ck_assert_msg(rows != NULL, "no per-target lines: %s", r->out);
    char *name = h_strf(T, "%s ", host_addr(n));
    const char *l = strstr(rows, name);
    ck_assert_msg(l != NULL, "no line for %s: %s", name, r->out);
    ck_assert_int_eq(sscanf(l + strlen(name), "%ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6]),
                     7);
}

/* Host n answered every request of the replay, 2xx or 429. */
static void all_answered(const struct h_run *r, int n, const char *when)
{
    long x[7];
    target_row(r, n, x);
    ck_assert_msg(x[0] > 0 && x[1] > 0 && x[3] == 0 && x[4] == 0 && x[5] == 0 && x[6] == 0,
                  "host %d: not every request answered 2xx/429 %s: %s", n, when, r->out);
}

/* ------------------------------------------------------------ global quota */

/* The access logs' clock: ms since the epoch. */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* redis-server in the fabric, on every address (the hosts reach it at
 * 10.213.N.1), nothing saved. */
static pid_t redis_start(void)
{
    char *log = h_path(T, "redis.log");
    char *argv[] = {"redis-server", "--port",  h_strf(T, "%d", REDIS_PORT),
                    "--bind",       "0.0.0.0", "--protected-mode",
                    "no",           "--save",  "",
                    "--appendonly", "no",      "--daemonize",
                    "no",           NULL};
    pid_t pid = h_spawn(T, argv, log, log);
    ck_assert_msg(pid > 0, "cannot run redis-server (apt-get install redis-server)");
    ck_assert_msg(h_wait_port(REDIS_PORT, true, 5000), "redis-server did not listen: %s",
                  h_file_tail(T, log, 800));
    return pid;
}

/* A counter or gauge from host n's /metrics (-1: not read). */
static long metric(int n, const char *name)
{
    const char *argv[] = {"ip",
                          "netns",
                          "exec",
                          ns_host[n - 1],
                          "curl",
                          "-s",
                          "--max-time",
                          "2",
                          "http://127.0.0.1:8081/metrics",
                          NULL};
    struct h_run r;
    if (h_run(T, (char *const *)argv, 5000, &r) != 0 || r.exit_code != 0)
        return -1;
    const char *l = strstr(r.out, h_strf(T, "\n%s ", name));
    return l != NULL ? strtol(l + strlen(name) + 2, NULL, 10) : -1;
}

/* Waits until every live host's corral_quota_fallback is want. */
static bool wait_fallback(const bool *live, long want, int timeout_ms)
{
    for (long long end = h_now_ms() + timeout_ms;; h_sleep_ms(50)) {
        bool all = true;
        for (int n = 1; n <= NHOSTS && all; n++)
            all = !live[n - 1] || metric(n, "corral_quota_fallback") == want;
        if (all)
            return true;
        if (h_now_ms() >= end)
            return false;
    }
}

static long lease_scripts(const bool *live)
{
    long sum = 0;
    for (int n = 1; n <= NHOSTS; n++)
        if (live[n - 1])
            sum += metric(n, "corral_quota_lease_requests_total");
    return sum;
}

/* The 2xx of `fleet` in every host's access log in [from, to) (ms since
 * the epoch); *first and *last: the first and last line of `fleet` at or
 * after from (0: none). */
static long admitted(long long from, long long to, long long *first, long long *last)
{
    char saved[sizeof(T->access_log)];
    long ok = 0;
    *first = *last = 0;
    memcpy(saved, T->access_log, sizeof(saved));
    for (int n = 1; n <= NHOSTS; n++) {
        snprintf(T->access_log, sizeof(T->access_log), "%s",
                 h_path(T, h_strf(T, "h%d.access.log", n)));
        struct h_adm_entry *e = NULL;
        int k = h_adm_access(T, &e);
        for (int i = 0; i < k; i++) {
            if (strcmp(e[i].tenant, "fleet") != 0 || e[i].time_ms < from)
                continue;
            if (*first == 0 || e[i].time_ms < *first)
                *first = e[i].time_ms;
            if (e[i].time_ms > *last)
                *last = e[i].time_ms;
            ok += e[i].time_ms < to && e[i].status >= 200 && e[i].status < 300;
        }
    }
    memcpy(T->access_log, saved, sizeof(saved));
    return ok;
}

/* The 2xx of all hosts in the 10 s from `from`: the global rate within
 * 5%, plus the burst once. The replay must have run past the window. */
static long window(const char *what, long long from)
{
    long long first, last;
    long ok = admitted(from, from + WINDOW_MS, &first, &last);
    double want = GRATE * WINDOW_MS / 1000.0;
    ck_assert_msg(first > 0 && last >= from + WINDOW_MS - 200,
                  "%s: the replay did not cover the window (%lld..%lld ms after its start)", what,
                  first - from, last - from);
    ck_assert_msg(ok >= (long)(0.95 * want) && ok <= (long)(1.05 * want) + GBURST,
                  "%s: %ld admitted in %d s by the fleet; global rate %d/s, burst %d: want %.0f "
                  "within 5%% (+ burst)",
                  what, ok, WINDOW_MS / 1000, GRATE, GBURST, want);
    fprintf(stderr, "check_fleet: %s: %ld admitted in %d s (%+.1f%% of %.0f)\n", what, ok,
            WINDOW_MS / 1000, 100.0 * ((double)ok - want) / want, want);
    return ok;
}

/* Waits until the realtime clock reaches t (ms since the epoch), at most
 * max_ms. */
static void sleep_until(long long t, int max_ms)
{
    long long d = t - wall_ms();
    ck_assert_msg(d <= max_ms, "asked to wait %lld ms", d);
    if (d > 0)
        h_sleep_ms((int)d);
}

/* `fleet` global on one Redis in the fabric: corral-replay offers 3x its
 * global rate over the three hosts for 29 s. The fleet admits the global
 * rate within 5% (+ burst) in the first 10 s; Redis is SIGKILLed for 5 s:
 * every host counts the fallback in /metrics and every request is still
 * answered, 2xx or 429 (no connection error, timeout or 5xx); Redis back:
 * the global rate again for 10 s. Then host 2 is killed: the requests
 * sent its way fail, the other two answer all of theirs and keep `fleet`
 * within its global rate. */
START_TEST(replay_over_the_fleet_and_a_host_killed)
{
    pid_t pids[NHOSTS];
    bool live[NHOSTS] = {true, true, true};
    char *keys = h_path(T, "tickets.keys"), *out;
    random_key("tickets.keys");
    upstream();
    pid_t redis = redis_start();
    fleet_start(keys, pids, true);
    ck_assert_msg(wait_fallback(live, 0, 5000), "the hosts did not lease from Redis: %s",
                  h_file_tail(T, host_log(1), 800));
    long asks0 = lease_scripts(live);

    const int run1 = 29;
    struct h_run r;
    long long start = wall_ms(), first = 0, last;
    pid_t rp = replay_start("fleet.yaml", run1, &out);
    for (long long end = h_now_ms() + 5000; first == 0; h_sleep_ms(50)) {
        admitted(start, start + 1, &first, &last);
        ck_assert_msg(first != 0 || h_now_ms() < end, "no request of the replay within 5 s");
    }
    sleep_until(first + WINDOW_MS + 500, WINDOW_MS + 1000);
    h_signal(redis, SIGKILL);
    ck_assert_int_eq(h_wait_exit(redis, 3000, NULL), 0);
    long long down = wall_ms();
    ck_assert_msg(wait_fallback(live, 1, 3000), "no fallback within 3 s of Redis dying: %s",
                  h_file_tail(T, host_log(1), 800));
    for (int n = 1; n <= NHOSTS; n++)
        ck_assert_int_ge(metric(n, "corral_quota_fallback_total"), 1);
    sleep_until(down + 5000, 5000);
    redis = redis_start();
    ck_assert_msg(wait_fallback(live, 0, 5000),
                  "not back to global rates within 5 s of Redis returning: %s",
                  h_file_tail(T, host_log(1), 800));
    long long back = wall_ms();
    replay_wait(rp, out, run1, &r);
    for (int n = 1; n <= NHOSTS; n++)
        all_answered(&r, n, "through the Redis outage");
    window("before the Redis outage", first);
    window("after Redis came back", back + 500);
    for (int n = 1; n <= NHOSTS; n++)
        ck_assert_int_eq(metric(n, "corral_quota_fallback_total"), 1);
    admitted(start, start + 1, &first, &last);
    long asks = lease_scripts(live) - asks0;
    fprintf(stderr,
            "check_fleet: %ld lease scripts on Redis in %.1f s (%.1f/s; 3 hosts of 1 worker, "
            "global rate %d/s offered at %d/s)\n",
            asks, (double)(last - first) / 1000.0, 1000.0 * (double)asks / (double)(last - first),
            GRATE, OFFER);

    h_signal(pids[1], SIGKILL); /* host 2's master; its worker follows (no master, it exits) */
    ck_assert_int_eq(h_wait_exit(pids[1], 5000, NULL), 0);
    live[1] = false;
    for (long long end = h_now_ms() + 5000;; h_sleep_ms(50)) {
        const char *argv[] = {
            "ip", "netns", "exec", ns_host[1], "ss", "-Hltn", h_strf(T, "sport = :%d", EDGE_PORT),
            NULL};
        struct h_run s;
        ck_assert_int_eq(h_run(T, (char *const *)argv, 5000, &s), 0);
        if (strstr(s.out, "LISTEN") == NULL)
            break;
        ck_assert_msg(h_now_ms() < end, "host 2 still listens 5 s after its master was killed");
    }
    const int run2 = 12;
    start = wall_ms();
    rp = replay_start("fleet2.yaml", run2, &out);
    replay_wait(rp, out, run2, &r);
    long v[7];
    target_row(&r, 2, v);
    ck_assert_msg(v[0] > 0 && v[1] == 0 && v[2] == 0 && v[5] > 0,
                  "the dead host answered or was not tried: %s", r.out);
    all_answered(&r, 1, "with host 2 down");
    all_answered(&r, 3, "with host 2 down");
    admitted(start, start + 1, &first, &last);
    window("hosts 1 and 3, host 2 killed", first);
}
END_TEST

static Suite *fleet_suite(void)
{
    Suite *s = suite_create("fleet");
    TCase *tc = tcase_create("fleet");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sessions_resume_on_any_host);
    tcase_add_test(tc, fleet_key_rotation);
    suite_add_tcase(s, tc);

    /* about 50 s: 29 s and 12 s of replay */
    TCase *q = tcase_create("global");
    tcase_add_checked_fixture(q, setup, teardown);
    tcase_set_timeout(q, 80);
    tcase_add_test(q, replay_over_the_fleet_and_a_host_killed);
    suite_add_tcase(s, q);
    return s;
}

int main(void)
{
    const char *why = NULL;
    const char *probe[] = {"ip", "netns", "list", NULL};

    h_init();
    owner = getpid();
    if (geteuid() != 0)
        why = "not root";
    else if (run((char *const *)probe, false) != 0)
        why = "`ip netns` does not work here (Debian package iproute2)";
    if (why == NULL) {
        remove_leftovers();
        atexit(net_down);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        why = net_up();
    }
    if (why != NULL) {
        fprintf(stderr,
                "check_fleet: skipped: it needs root and network namespaces (ip netns, "
                "iproute2): %s\n",
                why);
        net_down();
        return 77;
    }
    SRunner *sr = srunner_create(fleet_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    net_down();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
