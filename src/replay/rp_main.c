/* rp_main.c - corral-replay's command line: load the profile (and an
 * access log), print the plan (--dry-run) or run it, show progress on a
 * terminal, write the reports. See man/corral-replay.1. */
#include "ac_config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <nghttp2/nghttp2ver.h>
#include <openssl/opensslv.h>

#include "common.h"
#include "config.h"
#include "rp_accesslog.h"
#include "rp_client.h"
#include "rp_curve.h"
#include "rp_hist.h"
#include "rp_profile.h"
#include "rp_report.h"
#include "rp_stats.h"

enum { EXIT_RUN = 1, EXIT_USAGE = 2, EXIT_NO_ANSWER = 3 };

struct opts {
    const char *profile, *outdir, *access_log;
    double speedup;
    bool dry_run, quiet, check;
};

/* Everything one invocation holds, for one cleanup path. */
struct app {
    struct opts o;
    struct rp_profile *p;
    struct rp_accesslog *log;
    struct rp_sched *sched;
    struct rp_engine_tenant *tenants;
    const char **names;
    size_t ntenant;
    struct rp_phase_def *phases;
    size_t nphase;
    struct rp_source src;
    struct rp_stats *st;
    bool progress;
    struct rp_cell scratch; /* for the progress line */
};

static void usage(FILE *f, bool full)
{
    fputs("usage: corral-replay [-n] [-q] [-o DIR] [--access-log FILE [--speedup X]] PROFILE\n"
          "       corral-replay --check PROFILE | -h | -V\n",
          f);
    if (!full) {
        fputs("(-h for more)\n", f);
        return;
    }
    fputs(
        "\n"
        "Replays a campaign against a TLS edge: the profile (YAML) names the target, the\n"
        "tenants and their baseline rates, the events (a step to N x a baseline, then a\n"
        "decay), how clients behave, the duration and the caps. Arrivals are open-loop;\n"
        "latency is measured from each request's intended send time.\n"
        "\n"
        "  -n, --dry-run          print the planned arrivals per tenant per second; send nothing\n"
        "  -o, --output DIR       write report.txt, timeline.csv and report.html into DIR\n"
        "  -l, --access-log FILE  replay corral's JSON access log instead of the profile's\n"
        "                         tenants and events (target, caps and client from PROFILE)\n"
        "  -s, --speedup X        with --access-log: divide the original spacing by X (1)\n"
        "  -q, --quiet            no progress line, even on a terminal\n"
        "  -c, --check            check the profile (and the log) and exit\n"
        "  -V, --version          print the version\n"
        "  -h, --help             this help\n"
        "\n"
        "Exit status: 0 done, 1 the run or its reports failed, 2 bad usage, profile or log,\n"
        "3 the run got no answer at all. See corral-replay(1).\n",
        f);
}

/* Returns 0, 1 (exit 0 at once: help, version) or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"output", required_argument, NULL, 'o'},
        {"access-log", required_argument, NULL, 'l'},
        {"speedup", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"check", no_argument, NULL, 'c'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int ch;

    memset(o, 0, sizeof(*o));
    o->speedup = 1.0;
    while ((ch = getopt_long(argc, argv, "no:l:s:qcVh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            o->dry_run = true;
            break;
        case 'o':
            o->outdir = optarg;
            break;
        case 'l':
            o->access_log = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'c':
            o->check = true;
            break;
        case 's':
            errno = 0;
            o->speedup = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || !(o->speedup >= 0.001 && o->speedup <= 1e6)) {
                fprintf(stderr,
                        "corral-replay: --speedup must be a number from 0.001 to "
                        "1000000, got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'V':
            printf("corral-replay %s (%s, libevent %s, nghttp2 %s)\n", PACKAGE_VERSION,
                   OPENSSL_VERSION_TEXT, event_get_version(), NGHTTP2_VERSION);
            return 1;
        case 'h':
            usage(stdout, true);
            return 1;
        default:
            usage(stderr, false);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "corral-replay: %s\n",
                optind >= argc ? "a profile is required" : "one profile only");
        usage(stderr, false);
        return EXIT_USAGE;
    }
    o->profile = argv[optind];
    if (o->speedup != 1.0 && o->access_log == NULL) {
        fprintf(stderr, "corral-replay: --speedup only applies to --access-log\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* ------------------------------------------------------------ sources */

static int prof_next(void *ctx, uint64_t now_us, struct rp_spec *out)
{
    struct app *a = ctx;
    struct rp_arrival arr;

    if (rp_sched_next(a->sched, now_us, &arr) != 1)
        return 0;
    const struct rp_template *t = &a->p->tenants.list[arr.tenant].requests[arr.tpl];
    *out = (struct rp_spec){
        .tenant = arr.tenant,
        .at_us = arr.at_us,
        .method = t->method,
        .path = t->path,
        .body = t->body,
        .hname = t->hname,
        .hvalue = t->hvalue,
        .nheaders = t->nheaders,
    };
    return 1;
}

static uint64_t prof_peek(void *ctx, uint64_t horizon_us)
{
    return rp_sched_peek(((struct app *)ctx)->sched, horizon_us);
}

static int prof_done(void *ctx)
{
    return rp_sched_done(((struct app *)ctx)->sched);
}

/* Tenants, phases and the source, from the profile or the log. */
static int setup_plan(struct app *a)
{
    const struct rp_profile *p = a->p;

    if (a->log != NULL) {
        const char *const *names;
        a->ntenant = rp_accesslog_tenants(a->log, &names);
        a->src = rp_accesslog_source(a->log);
        a->tenants = calloc(a->ntenant, sizeof(*a->tenants));
        a->names = calloc(a->ntenant, sizeof(*a->names));
        if (a->tenants == NULL || a->names == NULL)
            return CR_ENOMEM;
        for (size_t i = 0; i < a->ntenant; i++) {
            int k = rp_profile_tenant(p, names[i]);
            a->names[i] = a->tenants[i].name = names[i];
            /* a tenant the profile knows is sent with its value; "default"
             * is what corral calls requests that named no tenant */
            a->tenants[i].value = k >= 0                             ? p->tenants.list[k].value
                                  : strcmp(names[i], "default") == 0 ? NULL
                                                                     : names[i];
        }
    } else {
        a->ntenant = p->tenants.nlist;
        a->sched = rp_sched_new(p);
        a->tenants = calloc(a->ntenant, sizeof(*a->tenants));
        a->names = calloc(a->ntenant, sizeof(*a->names));
        if (a->sched == NULL || a->tenants == NULL || a->names == NULL)
            return CR_ENOMEM;
        for (size_t i = 0; i < a->ntenant; i++) {
            a->names[i] = a->tenants[i].name = p->tenants.list[i].name;
            a->tenants[i].value = p->tenants.list[i].value;
        }
        a->src = (struct rp_source){a, prof_next, prof_peek, prof_done};
    }
    a->nphase = a->log != NULL ? 1 : p->nphases;
    a->phases = calloc(a->nphase, sizeof(*a->phases));
    if (a->phases == NULL)
        return CR_ENOMEM;
    if (a->log != NULL) {
        a->phases[0] = (struct rp_phase_def){"replay", 0.0, (double)p->duration_ms / 1e3};
        return 0;
    }
    for (size_t i = 0; i < a->nphase; i++)
        a->phases[i] = (struct rp_phase_def){p->phases[i].name, (double)p->phases[i].start_ms / 1e3,
                                             (double)p->phases[i].end_ms / 1e3};
    return 0;
}

/* ------------------------------------------------------------ dry run */

static const char *phase_at(const struct app *a, double t)
{
    for (size_t i = 0; i < a->nphase; i++)
        if (t >= a->phases[i].start_s && t < a->phases[i].end_s)
            return a->phases[i].name;
    return "-";
}

/* The plan, second by second, from the same source a run uses; each
 * second is printed as soon as it is planned (a long plan streams). */
static int dry_run(struct app *a)
{
    size_t nsec = (size_t)ceil((double)a->p->duration_ms / 1e3);
    uint64_t *count = calloc(a->ntenant ? a->ntenant : 1, sizeof(uint64_t));
    uint64_t total = 0, peak = 0;
    size_t peak_sec = 0;
    struct rp_spec s;

    if (count == NULL)
        return CR_ENOMEM;
    printf("# corral-replay dry run of %s: %s, %.1f s, target %s, caps %.0f/s and %u "
           "connections; nothing is sent\n",
           a->o.access_log ? a->o.access_log : a->p->path, a->p->name,
           (double)a->p->duration_ms / 1e3, a->p->target.addr.text, a->p->caps.rate,
           a->p->caps.connections);
    printf("# planned requests per second, by tenant\nsecond\tphase");
    for (size_t i = 0; i < a->ntenant; i++)
        printf("\t%s", a->names[i]);
    printf("\ttotal\n");
    for (size_t sec = 0; sec < nsec; sec++) {
        uint64_t sum = 0, end = CR_MIN((uint64_t)(sec + 1) * 1000000, a->p->duration_ms * 1000);
        memset(count, 0, (a->ntenant ? a->ntenant : 1) * sizeof(uint64_t));
        /* arrivals come in time order: those before `end` are this second's */
        while (a->src.peek(a->src.ctx, end) < end && a->src.next(a->src.ctx, end, &s) == 1)
            count[s.tenant]++;
        printf("%zu\t%s", sec, phase_at(a, (double)sec));
        for (size_t i = 0; i < a->ntenant; i++) {
            printf("\t%llu", (unsigned long long)count[i]);
            sum += count[i];
        }
        printf("\t%llu\n", (unsigned long long)sum);
        total += sum;
        if (sum > peak) {
            peak = sum;
            peak_sec = sec;
        }
    }
    printf("# %llu requests; the busiest second is %zu with %llu\n", (unsigned long long)total,
           peak_sec, (unsigned long long)peak);
    free(count);
    return fflush(stdout) == 0 ? 0 : CR_EIO;
}

/* ------------------------------------------------------------ progress */

static void tick(struct rp_engine *e, size_t sec, int final, void *arg)
{
    struct app *a = arg;
    struct rp_cell *c = &a->scratch;
    size_t conns;

    if (!a->progress)
        return;
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    rp_stats_second(a->st, sec, c);
    conns = rp_engine_conns(e, NULL);
    fprintf(stderr,
            "\r\033[K%4zus  offered %llu/s  achieved %llu/s  ok %llu  shed %llu  errors %llu  "
            "p99 %.1f ms  conns %zu",
            sec + 1, (unsigned long long)c->offered,
            (unsigned long long)(c->ok + c->s429 + c->s503 + c->other), (unsigned long long)c->ok,
            (unsigned long long)(c->s429 + c->s503),
            (unsigned long long)(c->other + c->conn_errors + c->timeouts),
            (double)rp_hist_quantile(c->lat, 0.99) / 1e3, conns);
    fflush(stderr);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    rp_engine_stop(arg);
}

/* ------------------------------------------------------------ reports */

/* Writes one report file into the output directory. Returns 0 or -1. */
static int write_file(const char *dir, const char *name, int (*fn)(FILE *, const struct rp_run *),
                      const struct rp_run *r)
{
    char path[4096];
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "corral-replay: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    rc = fn(f, r);
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0) {
        fprintf(stderr, "corral-replay: writing %s: %s\n", path, strerror(-rc));
        return -1;
    }
    return 0;
}

/* "a, b, c (round_robin)" for several target addresses, else the one. */
static char *target_text(const struct rp_target *t)
{
    size_t cap = t->naddrs * (sizeof(t->addrs[0].text) + 2) + 32, used = 0;
    char *s = malloc(cap);

    for (size_t i = 0; s != NULL && i < t->naddrs; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s%s", i > 0 ? ", " : "", t->addrs[i].text);
    if (s != NULL && t->naddrs > 1)
        snprintf(s + used, cap - used, " (%s)",
                 t->spread == RP_SPREAD_HASH ? "hash" : "round_robin");
    return s;
}

/* One line per target address, when there are several. */
static void target_rows(struct rp_engine *e, const struct rp_target *t)
{
    size_t n;
    const struct rp_target_count *tc = rp_engine_targets(e, &n);

    if (n < 2)
        return;
    printf("per target: connections, 2xx, 429, 503, other, connection errors, timeouts\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-22s %8llu %8llu %8llu %8llu %8llu %8llu %8llu\n", t->addrs[i].text,
               (unsigned long long)tc[i].connections, (unsigned long long)tc[i].ok,
               (unsigned long long)tc[i].s429, (unsigned long long)tc[i].s503,
               (unsigned long long)tc[i].other, (unsigned long long)tc[i].conn_errors,
               (unsigned long long)tc[i].timeouts);
}

static int reports(struct app *a, struct rp_engine *e, time_t started)
{
    struct rp_run r;
    char *targets = target_text(&a->p->target);
    double secs = rp_engine_elapsed(e);
    size_t peak, nsec = (size_t)ceil(secs);
    int rc = 0;

    memset(&r, 0, sizeof(r));
    rp_stats_view(a->st, nsec > 0 ? nsec : 1, &r);
    r.title = a->log != NULL ? "access-log replay" : a->p->name;
    r.source = a->log != NULL ? a->o.access_log : a->p->path;
    r.target = targets;
    r.started = started;
    r.duration_s = secs;
    if (rp_report_text(stdout, &r) != 0 || fflush(stdout) != 0)
        rc = -1;
    rp_engine_conns(e, &peak);
    printf("connections: at most %zu open at once (cap %u)\n", peak, a->p->caps.connections);
    target_rows(e, &a->p->target);
    const struct rp_hist *lag = rp_stats_lag(a->st);
    if (rp_hist_count(lag) > 0)
        printf("send lag: p50 %.2f ms, p99 %.2f ms, max %.2f ms from the intended send time to "
               "the connection (waits for a connection, its handshake, a rate token, the "
               "client itself)\n",
               (double)rp_hist_quantile(lag, 0.5) / 1e3, (double)rp_hist_quantile(lag, 0.99) / 1e3,
               (double)rp_hist_max(lag) / 1e3);
    if (a->o.outdir != NULL) {
        rc |= write_file(a->o.outdir, "report.txt", rp_report_text, &r);
        rc |= write_file(a->o.outdir, "timeline.csv", rp_report_csv, &r);
        rc |= write_file(a->o.outdir, "report.html", rp_report_html, &r);
        if (rc == 0)
            printf("reports: %s/report.html, %s/timeline.csv, %s/report.txt\n", a->o.outdir,
                   a->o.outdir, a->o.outdir);
    }
    free(targets);
    return rc;
}

/* ------------------------------------------------------------ the run */

/* Enough file descriptors for the connection cap. Returns 0 or -1. */
static int raise_nofile(uint32_t conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conns + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        fprintf(stderr,
                "corral-replay: caps.connections %u needs %llu file descriptors, the limit is "
                "%llu (ulimit -n)\n",
                conns, (unsigned long long)want, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -1;
}

static int make_outdir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0755) == 0 || (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
        return 0;
    fprintf(stderr, "corral-replay: cannot use %s as the output directory: %s\n", dir,
            errno == EEXIST ? "not a directory" : strerror(errno));
    return -1;
}

static int run(struct app *a)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base = NULL;
    struct event *sigs[2] = {NULL, NULL};
    struct rp_engine *e = NULL;
    struct rp_cell tot = {0};
    size_t nsec = (size_t)((a->p->duration_ms + a->p->client.timeout_ms) / 1000) + 3;
    time_t started = time(NULL);
    int status = EXIT_RUN;

    if (raise_nofile(a->p->caps.connections) != 0 ||
        (a->o.outdir != NULL && make_outdir(a->o.outdir) != 0))
        goto done;
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0 ||
        (base = event_base_new_with_config(cfg)) == NULL)
        goto oom;
    a->st = rp_stats_new(a->ntenant, a->names, nsec, a->nphase, a->phases);
    a->scratch.lat = rp_hist_new();
    if (a->st == NULL || a->scratch.lat == NULL)
        goto oom;
    int rc = rp_engine_new(base, a->p, a->tenants, a->ntenant, &a->src, a->st, &e);
    if (rc == CR_ENOMEM)
        goto oom;
    if (rc != 0)
        goto done;
    sigs[0] = evsignal_new(base, SIGINT, signal_cb, e);
    sigs[1] = evsignal_new(base, SIGTERM, signal_cb, e);
    if (sigs[0] == NULL || sigs[1] == NULL || evsignal_add(sigs[0], NULL) != 0 ||
        evsignal_add(sigs[1], NULL) != 0)
        goto oom;
    a->progress = !a->o.quiet && isatty(STDERR_FILENO);
    rp_engine_run(e, tick, a);
    status = reports(a, e, started) == 0 ? 0 : EXIT_RUN;
    rp_stats_totals(a->st, &tot);
    if (status == 0 && tot.offered > 0 && tot.ok + tot.s429 + tot.s503 + tot.other == 0) {
        fprintf(stderr, "corral-replay: no request got an answer from %s%s\n",
                a->p->target.addr.text, a->p->target.naddrs > 1 ? " or the other targets" : "");
        status = EXIT_NO_ANSWER;
    }
    goto done;
oom:
    fprintf(stderr, "corral-replay: out of memory\n");
done:
    for (size_t i = 0; i < 2; i++)
        if (sigs[i] != NULL)
            event_free(sigs[i]);
    rp_engine_free(e);
    rp_hist_free(a->scratch.lat);
    rp_stats_free(a->st);
    if (base != NULL)
        event_base_free(base);
    if (cfg != NULL)
        event_config_free(cfg);
    return status;
}

/* ------------------------------------------------------------ main */

/* Loads the profile and the log; prints every problem. Returns 0 or EXIT_USAGE. */
static int load(struct app *a)
{
    struct cr_diag d;
    unsigned flags =
        (a->o.access_log ? RP_PROFILE_ACCESS_LOG : 0) | (a->o.dry_run ? RP_PROFILE_NO_FILES : 0);
    int rc = rp_profile_load(a->o.profile, flags, &a->p, &d);

    cr_diag_print(&d, stderr);
    cr_diag_free(&d);
    if (rc != 0)
        return EXIT_USAGE;
    if (a->o.access_log == NULL)
        return 0;
    rc = rp_accesslog_load(a->o.access_log, a->o.speedup, a->p->duration_ms, &a->log, &d);
    cr_diag_print(&d, stderr);
    cr_diag_free(&d);
    if (rc != 0)
        return rc == CR_EINVAL ? EXIT_USAGE : EXIT_RUN;
    size_t skipped, dropped, n = rp_accesslog_count(a->log, &skipped, &dropped);
    fprintf(stderr, "corral-replay: %zu requests from %s over %.1f s (speed-up %g)%s", n,
            a->o.access_log, (double)rp_accesslog_span_us(a->log) / 1e6, a->o.speedup,
            skipped || dropped ? ";" : "\n");
    if (skipped > 0)
        fprintf(stderr, " %zu lines without a request skipped%s", skipped, dropped ? "," : "\n");
    if (dropped > 0)
        fprintf(stderr, " %zu requests after the profile's duration dropped\n", dropped);
    return 0;
}

int main(int argc, char **argv)
{
    struct app a;
    int status;

    memset(&a, 0, sizeof(a));
    status = parse_args(argc, argv, &a.o);
    if (status != 0)
        return status == 1 ? 0 : status;
    signal(SIGPIPE, SIG_IGN);
    status = load(&a);
    if (status == 0 && setup_plan(&a) != 0) {
        fprintf(stderr, "corral-replay: out of memory\n");
        status = EXIT_RUN;
    }
    if (status == 0 && a.o.check)
        printf("%s: ok\n", a.o.profile);
    else if (status == 0 && a.o.dry_run)
        status = dry_run(&a) == 0 ? 0 : EXIT_RUN;
    else if (status == 0)
        status = run(&a);
    rp_sched_free(a.sched);
    rp_accesslog_free(a.log);
    free(a.tenants);
    free(a.names);
    free(a.phases);
    rp_profile_free(a.p);
    return status;
}
