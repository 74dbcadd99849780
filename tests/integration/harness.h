/* harness.h - building blocks for corral's integration tests.
 *
 * An integration test is a Check program that starts REAL processes on
 * 127.0.0.1 (the corral binary, the demo upstream nginx) and drives them with
 * real clients (curl). This harness gives it:
 *
 *   - a per-test temp dir and free loopback ports;
 *   - the shared test certificates (tools/gen-certs, generated once);
 *   - the demo upstream (tools/demo-upstream) and its stub_status counters;
 *   - corral configs written from templates, corral started and waited for;
 *   - signals, bounded waits for exit, the master's worker pids;
 *   - curl (fork/exec) with exit code, HTTP status, HTTP version and body;
 *   - log files read and searched.
 *
 * Every wait is bounded in time. Nothing here calls system() or a shell
 * (except tools/ scripts, which are shell scripts by nature).
 *
 * Cleanup. Each process started with h_spawn() (and so every corral and
 * upstream) is put in a new process group of its own and registered with a
 * small "reaper" process forked by h_test_begin(). The reaper sits in its own
 * process group, reads registrations from a pipe, and when the pipe reaches
 * EOF - the test process ended in ANY way: passed, failed an assertion (Check
 * _exit()s without running teardown or atexit), crashed, or was SIGKILLed by
 * Check's timeout - it SIGKILLs every registered process group. So an
 * assertion can fail anywhere and nothing is left running. h_test_end()
 * (call it from the checked teardown) does the same at once on the passing
 * path, and removes the temp dir; a failed test keeps its temp dir (logs,
 * configs) and the reaper prints its path.
 *
 * Usage, in a Check program (CK_FORK, the default):
 *
 *     static struct h_test *T;
 *     static void setup(void) { T = h_test_begin(); }
 *     static void teardown(void) { h_test_end(T); T = NULL; }
 *     ...
 *     int main(void) { h_init(); ... tcase_add_checked_fixture(tc, setup, teardown); ... }
 *
 * Environment: CORRAL_BIN (the binary under test), CORRAL_SRCDIR (repo root,
 * for tools/ and etc/), TMPDIR (optional). h_init() fails loudly without the
 * first two.
 *
 * Errors: the harness never calls ck_assert itself except where documented
 * ("fails the test"); functions return -1 / NULL / false so that the test
 * states what it expected. */
#ifndef H_HARNESS_H
#define H_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Default bounds, in milliseconds. */
#define H_START_MS 10000 /* a process's port must accept within this */
#define H_CURL_MS 5000   /* curl --max-time */
#define H_MAX_PIDS 64    /* children listed / processes registered per test */

/* ------------------------------------------------------------ per test */

struct h_arena; /* the per-test string arena; internal */

struct h_test {
    char dir[512];        /* per-test temp dir (mode 0700) */
    char certs[512];      /* shared certs dir: ca.crt, edge.*, lb.*, client.* */
    const char *bin;      /* $CORRAL_BIN */
    const char *srcdir;   /* $CORRAL_SRCDIR */
    int port;             /* a free loopback port for corral's listener */
    int port2;            /* a second one (reload to a new port, ...) */
    int uport;            /* the demo upstream's TLS port */
    int ustatus;          /* the demo upstream's stub_status port */
    pid_t upstream;       /* demo upstream nginx master, 0 = not running */
    char error_log[600];  /* DIR/error.log: where H_CONFIG_BASE logs errors */
    char access_log[600]; /* DIR/access.log */
    long ustatus_queries; /* connections the harness made to the upstream itself */
    int nruns;            /* counter for capture file names */
    int reaper_fd;        /* write end of the pipe to the reaper, -1 = none */
    pid_t reaper;
    pid_t pgids[H_MAX_PIDS]; /* registered process groups */
    int npgids;
    struct h_arena *arena;
};

/* Checks CORRAL_BIN and CORRAL_SRCDIR, that the programs the tests run are
 * in PATH (curl, openssl, h2load, nghttp, nginx, python3, prlimit: every
 * missing one is named with its Debian package), and makes the shared
 * certificates (h_certs_dir()). Call once from main() before
 * srunner_run_all; exits the program (99, a hard error) with a message if
 * the environment is unusable. */
void h_init(void);

/* Creates the per-test context: temp dir under $TMPDIR (or /tmp), four free
 * ports, the reaper. Call from a checked setup (it runs in the test's fork).
 * Fails the test (ck_abort) when any of it cannot be made. */
struct h_test *h_test_begin(void);

/* Kills every process the test started (SIGKILL to each process group,
 * reaped), stops the reaper, removes the temp dir (kept, and its path
 * printed, when CORRAL_TEST_KEEP is set) and frees t. NULL is a no-op. Call
 * from the checked teardown. */
void h_test_end(struct h_test *t);

/* printf into a string owned by t (freed by h_test_end). Never NULL. */
char *h_strf(struct h_test *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "t->dir/name", owned by t. */
char *h_path(struct h_test *t, const char *name);

/* ------------------------------------------------------------ ports, certs */

/* A free TCP port on 127.0.0.1 (bind port 0, read it back, close), distinct
 * from every port returned before in this process; 0 on failure. Another
 * process may take it before it is used: that is the accepted race. */
int h_free_port(void);

/* Connects to 127.0.0.1:port within timeout_ms. Returns the connected
 * (blocking, close-on-exec) fd, which the caller closes, or -1 with errno
 * set (ECONNREFUSED, ETIMEDOUT, ...). A connection held open this way is
 * one a server must drain or time out. */
int h_connect(int port, int timeout_ms);

/* true when the server end of fd, a connection to a 127.0.0.1 port, has
 * been accept(2)ed: it has left the listening socket's queue (read from
 * /proc/net/tcp, where a connection not yet accepted has no inode). */
bool h_conn_accepted(int fd);

/* Polls h_conn_accepted every 10 ms for at most timeout_ms. */
bool h_wait_conn_accepted(int fd, int timeout_ms);

/* true when a TCP connect to 127.0.0.1:port succeeds within 500 ms. */
bool h_port_open(int port);

/* Waits until 127.0.0.1:port accepts (open = true) or refuses (open = false),
 * polling every 20 ms for at most timeout_ms. Returns true when it did. */
bool h_wait_port(int port, bool open, int timeout_ms);

/* The shared certificates dir, $TMPDIR/corral-test-certs-$UID, generated
 * with tools/gen-certs under an flock the first time (concurrent test
 * programs are safe), and made anew by the first call of a program when a
 * certificate there expires within H_CERTS_RENEW_DAYS days. Returns a
 * static string, or NULL (with a message on stderr) when the dir cannot be
 * made or is not ours. */
#define H_CERTS_RENEW_DAYS 30
const char *h_certs_dir(void);

/* ------------------------------------------------------------ processes */

/* Starts argv[0] (PATH searched) with stdin from /dev/null and stdout and
 * stderr appended to out_path / err_path (NULL = /dev/null), in a new
 * process group registered for cleanup. Returns the pid or -1. */
pid_t h_spawn(struct h_test *t, char *const argv[], const char *out_path, const char *err_path);

/* h_spawn with stdin read from in_path (NULL = /dev/null). */
pid_t h_spawn_in(struct h_test *t, char *const argv[], const char *in_path, const char *out_path,
                 const char *err_path);

/* Sends sig to pid. Returns 0 or -1 (errno set). */
int h_signal(pid_t pid, int sig);

/* Waits up to timeout_ms for OUR child pid to exit and reaps it. Returns 0
 * and the wait status in *status (may be NULL), or -1 on timeout (the child
 * is left running) or when pid is not our child. */
int h_wait_exit(pid_t pid, int timeout_ms, int *status);
/* What became of a child started by h_spawn, without waiting: "still
 * running", "exited with N" (126: its output files could not be opened, 127:
 * no such program) or "killed by signal N". Reaps it when it is gone. For
 * failure messages. */
const char *h_proc_fate(struct h_test *t, pid_t pid);

/* true when pid exists and is not a zombie (a zombie has exited). */
bool h_pid_alive(pid_t pid);

/* Lists the live (non-zombie) processes whose parent is ppid, read from
 * /proc/<pid>/stat; at most max into out, sorted ascending. Returns how many
 * there are (may exceed max), or -1 when /proc cannot be read. */
int h_children(pid_t ppid, pid_t *out, int max);

/* Waits up to timeout_ms until ppid has exactly n live children; their pids
 * go to out (room for H_MAX_PIDS; may be NULL). Returns the count seen last,
 * which is n on success. */
int h_wait_children(pid_t ppid, int n, int timeout_ms, pid_t *out);

/* true when pid is in the sorted list of n pids. */
bool h_pid_in(pid_t pid, const pid_t *list, int n);

/* The result of h_run. Strings are owned by the test (arena). */
struct h_run {
    int exit_code;   /* exit status, or -1 when it did not exit normally */
    int term_signal; /* signal that killed it, 0 = none */
    bool timed_out;  /* killed by h_run after timeout_ms */
    char *out;       /* everything written to stdout */
    char *err;       /* everything written to stderr */
};

/* Runs argv to completion (at most timeout_ms, then SIGKILL) and captures
 * its output. Returns 0 when it ran (whatever its exit code), -1 when it
 * could not be started. */
int h_run(struct h_test *t, char *const argv[], int timeout_ms, struct h_run *r);

/* h_run with input (NUL-terminated text, written to DIR/run-N.in first) as
 * the program's stdin; NULL = /dev/null, as h_run. Returns -1 also when the
 * input file cannot be written. */
int h_run_in(struct h_test *t, char *const argv[], const char *input, int timeout_ms,
             struct h_run *r);

/* ------------------------------------------------------------ demo upstream */

/* Starts tools/demo-upstream on t->uport (TLS, lb.test cert, client cert
 * required) and t->ustatus (stub_status), its files under DIR/upstream, and
 * waits until both ports accept. Returns 0, or -1 (it is killed; its error
 * log is in DIR/upstream). */
int h_upstream_start(struct h_test *t);

/* Stops it: SIGTERM, then SIGKILL to its group after 3 s. */
void h_upstream_stop(struct h_test *t);

/* Connections the upstream accepted on its TLS port so far: stub_status's
 * "accepts" minus the stub_status queries the harness made itself (each one
 * is a connection too). -1 when stub_status cannot be read. */
long h_upstream_accepts(struct h_test *t);

/* ------------------------------------------------------------ corral */

/* The standard test config: 2 workers, drain_timeout 3s, error and access
 * logs in DIR, one listener on @PORT@ with edge.crt, the demo upstream over
 * h2 with the client cert. Lines are numbered in the comment for tests that
 * point at them. */
#define H_CONFIG_BASE                                                                              \
    "workers: 2\n"                                                           /* 1 */               \
    "drain_timeout: 3s\n"                                                    /* 2 */               \
    "log: {error: @DIR@/error.log, level: info, access: @DIR@/access.log}\n" /* 3 */               \
    "listeners:\n"                                                           /* 4 */               \
    "  - name: https\n"                                                      /* 5 */               \
    "    address: 127.0.0.1:@PORT@\n"                                        /* 6 */               \
    "    tls:\n"                                                             /* 7 */               \
    "      certificates:\n"                                                  /* 8 */               \
    "        - {cert: @CERTS@/edge.crt, key: @CERTS@/edge.key}\n"            /* 9 */               \
    "upstream:\n"                                                            /* 10 */              \
    "  addresses: [127.0.0.1:@UPORT@]\n"                                     /* 11 */              \
    "  protocol: h2\n"                                                       /* 12 */              \
    "  connections: 2\n"                                                     /* 13 */              \
    "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, key: @CERTS@/client.key, "              \
    "sni: lb.test}\n" /* 14 */

/* Expands a template: @DIR@, @CERTS@, @PORT@, @PORT2@, @UPORT@, @USTATUS@
 * become t's values; anything else is copied as is. Owned by t. */
char *h_expand(struct h_test *t, const char *tmpl);

/* Writes h_expand(tmpl) to DIR/name atomically (temp file + rename, so a
 * reloading corral never reads half a file). Returns the path (owned by t),
 * or NULL. */
char *h_config_write(struct h_test *t, const char *name, const char *tmpl);

/* Starts `$CORRAL_BIN -c config` (stdout to DIR/corral.out, stderr to
 * DIR/corral.err) and waits up to H_START_MS until 127.0.0.1:wait_port
 * accepts. Returns the master pid, or -1 when it exited or the port never
 * opened (it is killed; see DIR/corral.err). */
pid_t h_corral_start(struct h_test *t, const char *config, int wait_port);

/* ------------------------------------------------------------ curl */

/* The result of a curl run. Strings are owned by the test (arena). */
struct h_http {
    int exit_code;   /* curl's exit code (0 = transfer done), -1 = did not run */
    int status;      /* HTTP status, 0 when there was no response */
    char version[8]; /* negotiated HTTP version as curl says: "1.1", "2", "" */
    char *body;      /* response body, "" when none */
    char *err;       /* curl's stderr (its -sS error message) */
};

/* curl -sS -o BODY -w '%{http_code} %{http_version}' --max-time 5
 *      --cacert CERTS/ca.crt [args...] url
 * args is NULL-terminated (NULL = none). Returns r->exit_code. */
int h_curl(struct h_test *t, struct h_http *r, const char *url, const char *const *args);

/* The same to corral: https://edge.test:PORT/path with
 * --resolve edge.test:PORT:127.0.0.1 added. */
int h_curl_edge(struct h_test *t, struct h_http *r, int port, const char *path,
                const char *const *args);

/* ------------------------------------------------------------ files */

/* Reads a whole file into a malloc'd NUL-terminated buffer (caller frees);
 * *len (may be NULL) gets its length. NULL when it cannot be read. */
char *h_read_file(const char *path, size_t *len);

/* The last max_bytes of the file (whole lines when it can), owned by t;
 * "(PATH: cannot read)" when it cannot be read. For assertion messages. */
char *h_file_tail(struct h_test *t, const char *path, size_t max_bytes);

/* true when the file exists and contains needle. */
bool h_file_contains(const char *path, const char *needle);

/* true when one line of the file contains every string of the
 * NULL-terminated needles. */
bool h_file_has_line(const char *path, const char *const *needles);

/* Polls h_file_has_line every 20 ms for at most timeout_ms (logs are
 * written asynchronously by other processes). */
bool h_wait_file_line(const char *path, const char *const *needles, int timeout_ms);

/* How many lines of the file contain every needle (0 when it cannot be
 * read). */
int h_file_count_lines(const char *path, const char *const *needles);

/* Polls h_file_count_lines every 20 ms until at least n lines match, for at
 * most timeout_ms. The barrier before counting what did NOT happen: count
 * the matching lines before a request, then wait for one more - corral's
 * access-log line is written once it is done with the request, so whatever
 * it was going to send the upstream for it has been sent. */
bool h_wait_file_lines(const char *path, const char *const *needles, int n, int timeout_ms);

/* Writes text to path (truncating). Returns 0 or -1. */
int h_write_file(const char *path, const char *text);

/* Sleeps ms milliseconds. */
void h_sleep_ms(int ms);

/* Milliseconds on the monotonic clock. */
long long h_now_ms(void);

/* ------------------------------------------------------------ admission (h_adm_*)
 *
 * Helpers for tests that load corral's admission with many requests: the
 * test upstream testup (a stream cap, a service time, in-flight counts),
 * h2load runs with per-request results, several requests on one curl
 * connection, and the JSON access log parsed. */

/* Starts tests/testup/testup (next to CORRAL_BIN, or $CORRAL_TESTUP) on t->uport:
 * TLS with lb.crt, a client certificate signed by ca.crt required, HTTP/2
 * SETTINGS_MAX_CONCURRENT_STREAMS max_streams, every answer service_ms
 * late; its stderr in DIR/testup.log. Waits until the port accepts.
 * Returns the pid, or -1 (it is killed). Killed by h_test_end as any
 * process h_spawn started. */
pid_t h_adm_testup_start(struct h_test *t, int max_streams, int service_ms);

/* The numeric field (e.g. "max_inflight", "inflight", "requests") of
 * testup's GET /__stats, fetched with the client certificate;
 * /__stats?reset=1 when reset (requests and max_inflight are zeroed after
 * the answer). -1 when it cannot be read. */
long h_adm_testup_stat(struct h_test *t, const char *field, bool reset);

/* The number after "key": in a JSON text (first occurrence), or false. */
bool h_adm_json_num(const char *json, const char *key, double *out);

/* The string after "key": in a JSON text into out (size n, truncated;
 * escapes are not decoded), or false (also when the value is null). */
bool h_adm_json_str(const char *json, const char *key, char *out, size_t n);

/* One request of an h2load run, from its --log-file. */
struct h_adm_req {
    long long start_us; /* microseconds since the epoch */
    int status;         /* HTTP status, <= 0 when it failed */
    double ms;          /* until the end of the response */
};

/* An h2load run: h2load ARGS --log-file=DIR/h2load-N.log URL, with its
 * output in DIR/h2load-N.out. Counts from its summary and its log. */
struct h_adm_load {
    pid_t pid;        /* while running */
    long long t0_ms;  /* h_now_ms() at start */
    long long ran_ms; /* wall time from start to exit */
    int exit_code;    /* -1: did not exit normally / not run */
    char *out_path, *log_path;
    long started, done, succeeded, failed, errored, timeouts; /* its summary */
    long n2xx, n429, n503, nother;                            /* from the log, by status */
    double max_ms;                                            /* slowest request of the log */
    struct h_adm_req *reqs; /* the log's rows (owned by the test) */
    int nreqs;
};

/* Starts h2load in the background against https://127.0.0.1:port PATH
 * with args (NULL-terminated, e.g. "-c", "4", "-m", "25", "-n", "400",
 * "-H", "x-tenant-id: A"). Returns 0 or -1. */
int h_adm_h2load_start(struct h_test *t, struct h_adm_load *l, int port, const char *path,
                       const char *const *args);

/* Waits up to timeout_ms for it (then kills it) and fills in the counts.
 * Returns 0 when it exited and its summary was read, else -1. */
int h_adm_h2load_wait(struct h_test *t, struct h_adm_load *l, int timeout_ms);

/* Both: a run to completion. */
int h_adm_h2load(struct h_test *t, struct h_adm_load *l, int port, const char *path,
                 const char *const *args, int timeout_ms);

/* The p-th percentile (0..100) of the latencies of the rows whose status
 * is in [lo, hi]; -1 when there are none. */
double h_adm_pct(const struct h_adm_load *l, double p, int lo, int hi);

/* One transfer of h_adm_curl_seq. */
struct h_adm_xfer {
    int status;       /* 0 when there was no response */
    int num_connects; /* connections curl opened for it: 0 = reused */
    double time_s;    /* its time_total */
    char version[8];  /* "1.1", "2" */
    int retry_after;  /* the Retry-After header, -1 when absent */
    char *body;       /* owned by the test */
};

/* Runs ONE curl process making n transfers in order to
 * https://edge.test:port paths[i] (curl keeps one connection open between
 * them when it can: see num_connects), through a curl config file (-K):
 * each transfer gets the lines of opts (NULL-terminated config lines, e.g.
 * "http1.1", "header = \"x-tenant-id: A\"") and, when hdrs is not NULL
 * and hdrs[i] is not NULL, "header = hdrs[i]". out has room for n.
 * Returns curl's exit code (0 = every transfer done), -1 when it did not
 * run. */
int h_adm_curl_seq(struct h_test *t, int port, int n, const char *const *paths,
                   const char *const *hdrs, const char *const *opts, struct h_adm_xfer *out);

/* One line of corral's JSON access log. */
struct h_adm_entry {
    char tenant[64];
    char reason[64]; /* "" when null */
    char path[128];
    char protocol[16];
    int worker;
    int status;
    double queue_ms, upstream_ms, total_ms;
    long long time_ms; /* the "time" field, ms since the epoch */
};

/* Reads the access log t->access_log. *out gets an array owned by the test
 * (NULL when empty). Returns the number of lines parsed, or -1. */
int h_adm_access(struct h_test *t, struct h_adm_entry **out);

/* ------------------------------------------------------------ testup instances (h_up_*)
 *
 * For tests of corral's upstream pool: several testup processes at once, on
 * ports the test chooses (and restarts on), with any certificate, counted
 * WITHOUT disturbing the counts: h_up_start waits for testup's "listening"
 * line instead of probing the port, and h_up_stats reads the counters from
 * testup's --stats-file (written on SIGUSR1) instead of connecting. So
 * connections_accepted and connections_open count corral's connections
 * only. */

/* testup's /__stats counters (-1: absent). */
struct h_up_stats {
    long accepted;     /* connections_accepted */
    long open;         /* connections_open */
    long requests;     /* requests begun (not counting /__stats) */
    long inflight;     /* requests begun and not yet answered */
    long max_inflight; /* the most in flight at once */
    long h2, h1;       /* h2_connections, h1_connections: by protocol */
};

/* Starts testup on 127.0.0.1:port with --cert CERTS/lb.crt --key
 * CERTS/lb.key --ca CERTS/ca.crt --stats-file DIR/testup-PORT.stats,
 * --require-client-cert when client_cert, then args (NULL-terminated, may
 * be NULL; a later --cert/--key/--ca overrides the defaults). stdout and
 * stderr go to DIR/testup-PORT.log (appended: a restart on the same port
 * adds to it). Waits up to H_START_MS for its "listening" line. Returns the
 * pid, or -1 (it is killed; see its log). Killed by h_test_end. */
pid_t h_up_start(struct h_test *t, int port, bool client_cert, const char *const *args);

/* Reads the counters of the testup pid listening on port: SIGUSR1, then
 * waits up to 2 s for DIR/testup-PORT.stats. Returns 0, or -1 when it is
 * not running or did not answer. */
int h_up_stats(struct h_test *t, pid_t pid, int port, struct h_up_stats *st);

/* Polls h_up_stats every 20 ms until connections_open == open, for at
 * most timeout_ms. *st gets the last counters read. Returns true when it
 * happened. */
bool h_up_wait_open(struct h_test *t, pid_t pid, int port, long open, int timeout_ms,
                    struct h_up_stats *st);

/* SIGKILLs the testup (its process group) and reaps it: no goodbye to its
 * clients, as a crash. */
void h_up_kill(struct h_test *t, pid_t pid);

/* A curl to corral running in the background while the test does
 * something else (kills an upstream, ...). */
struct h_up_bg {
    pid_t pid;       /* while running */
    long long t0_ms; /* h_now_ms() at start */
    char *out;       /* DIR/bg-N.out: curl's -w line and -sS errors */
    int exit_code;   /* curl's, -1 = killed or did not run */
    int status;      /* HTTP status, 0 = no response */
    double secs;     /* curl's time_total */
};

/* Starts curl -sS -o /dev/null --max-time 10 [args...] on
 * https://edge.test:port path (resolved to 127.0.0.1, ca.crt trusted).
 * Returns 0 or -1. */
int h_up_bg_curl(struct h_test *t, struct h_up_bg *b, int port, const char *path,
                 const char *const *args);

/* Waits up to timeout_ms for it (then kills it: exit_code -1) and reads
 * its result. Returns 0 when it exited by itself. */
int h_up_bg_wait(struct h_test *t, struct h_up_bg *b, int timeout_ms);

/* ------------------------------------------------------------ testup (h_testup_*)
 *
 * tests/testup/testup as the upstream of data-path tests: started on a port of the
 * test's choosing with any extra options, its /__stats read over TLS with
 * curl and the client certificate, binary-safe raw client input. */

/* Starts tests/testup/testup (next to CORRAL_BIN, or $CORRAL_TESTUP) on
 * 127.0.0.1:port: TLS with CERTS/lb.crt, a client certificate signed by
 * CERTS/ca.crt required, then the extra arguments that follow, a
 * NULL-terminated list ("--max-streams", "32", NULL). stdout and stderr go
 * to DIR/testup-PORT.log. Waits up to H_START_MS for its line
 * "testup: listening on 127.0.0.1:PORT". Returns the pid, or -1 (it is
 * killed; see its log). Killed by h_test_end as any h_spawn'ed process. */
pid_t h_testup_start(struct h_test *t, int port, ...) __attribute__((sentinel));

/* GET https://lb.test:port/__stats (with ?reset=1 when reset) by curl with
 * the client certificate. Returns the JSON text (owned by t), or NULL when
 * curl failed or the answer was not 200. The query is itself a connection
 * to testup: it adds 1 to connections_accepted and counts in
 * connections_open while it runs; it is not counted in requests. */
char *h_testup_stats(struct h_test *t, int port, bool reset);

/* The integer after "key": in a flat JSON text (first occurrence); -1 when
 * the key is absent or its value is not a number. */
long h_json_long(const char *json, const char *key);

/* corral's admin GET /stats on 127.0.0.1:port (its JSON, owned by t).
 * Fails the test when curl fails or the answer is not 200. */
char *h_admin_stats(struct h_test *t, int port);

/* Polls h_json_long(h_admin_stats(t, port), key) (the first occurrence:
 * the totals, a worker's own with one worker) every 20 ms until it equals
 * want, for at most timeout_ms; returns the value seen last. */
long h_admin_stat_wait(struct h_test *t, int port, const char *key, long want, int timeout_ms);

/* h_run with stdin read from the file in_path, binary-safe (NUL bytes, bare
 * CRs): for raw protocol input to openssl s_client. NULL = /dev/null. */
int h_run_stdin(struct h_test *t, char *const argv[], const char *in_path, int timeout_ms,
                struct h_run *r);

#endif
