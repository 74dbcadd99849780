/* master.c - supervision of workers, signals, reload. The master has no
 * event library: a signalfd and poll() with the next timer as timeout. */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ac_config.h"
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#include "common.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "shm.h"
#include "tls.h"
#include "worker.h"

#define CR_DEFAULT_USER "corral" /* workers' user when root starts corral without 'user' */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_AFTER_MS 10000 /* a worker alive this long resets the back-off */
#define HANDOFF_MAX_MS                                                                             \
    2000 /* a reload's old workers drain once the new ones are ready, or after this */

/* Everything one generation of workers runs with; built in full before the
 * generation starts, so a reload that cannot build it changes nothing. */
struct gen {
    struct cr_config *cfg;
    uint64_t id;
    int *fds;                 /* per listener */
    int admin_fd;             /* -1 without an admin endpoint */
    struct cr_tls_server **server_tls; /* per listener */
    SSL_CTX *upstream_tls;
    struct cr_ticket_key (*file_keys)[CR_TICKET_RING]; /* per listener, from its key file */
    size_t *nfile_keys;                                  /* 0: generated and rotated */
    uid_t uid;
    gid_t gid;
    const char *default_user; /* set when started as root without 'user' */
};

struct slot {
    pid_t pid;                /* 0 = not running */
    int chan;                 /* to the worker: log descriptors (cr_log_send), -1 = none */
    int id;                   /* worker number, 1-based */
    uint64_t gen;
    uint64_t started_us;
    uint64_t backoff_ms;
    uint64_t respawn_at_us;   /* 0 = no respawn pending */
    bool ready;             /* said so on chan: listening, its upstream pool tried */
};

/* A worker of an earlier generation: it drains (SIGTERM sent) or waits for
 * the new generation to be ready first (handoff). */
struct old {
    pid_t pid;
    int id;
    uint64_t gen;
    bool signalled;
    uint64_t kill_at_us; /* after SIGTERM: drain_timeout + 2 s, then SIGKILL */
};

struct master {
    struct gen cur;
    const char *path;
    struct slot *slots;       /* current generation, cur.cfg->workers long */
    size_t nslots;
    struct old *old; /* workers of earlier generations */
    size_t nold, capold;
    struct cr_shm *shm;
    int sfd;
    int stopping;
    uint64_t kill_at_us;
    uint64_t handoff_at_us; /* old workers get SIGTERM at the latest then; 0 = none waiting */
    uint64_t old_drain_ms;  /* their drain_timeout */
    uint64_t drain_at_us;   /* a drain (SIGUSR2, POST /drain) stops corral then; 0 = none */
    bool notify_ready;      /* READY=1 is owed to systemd once the generation is ready */
    uint64_t rotate_at_us[CR_SHM_MAX_LISTENERS]; /* next ticket key rotation, 0 = none */
    uint64_t fds_at_us; /* next publish_fds */
};

/* ------------------------------------------------------------ systemd */

/* Type=notify: a no-op unless systemd set NOTIFY_SOCKET (or corral was
 * built without libsystemd). */
static void notify(const char *state)
{
#ifdef HAVE_SYSTEMD
    int rc = sd_notify(0, state);
    if (rc < 0)
        cr_log_warn("sd_notify %s: %s", state, strerror(-rc));
#else
    (void)state;
#endif
}

/* ------------------------------------------------------------ generations */

/* Releases g; listening sockets that next reuses stay open. */
static void gen_free(struct gen *g, const struct gen *next)
{
    for (size_t i = 0; g->cfg && i < g->cfg->nlisteners; i++) {
        int reused = 0;
        for (size_t j = 0; next && j < next->cfg->nlisteners; j++)
            reused |= next->fds[j] == g->fds[i];
        if (g->fds && g->fds[i] >= 0 && !reused)
            close(g->fds[i]);
        if (g->server_tls)
            cr_tls_server_free(g->server_tls[i]);
    }
    if (g->admin_fd >= 0 && !(next && next->admin_fd == g->admin_fd))
        close(g->admin_fd);
    SSL_CTX_free(g->upstream_tls);
    if (g->file_keys)
        OPENSSL_cleanse(g->file_keys, g->cfg->nlisteners * sizeof(*g->file_keys));
    free(g->file_keys);
    free(g->nfile_keys);
    free(g->fds);
    free(g->server_tls);
    cr_config_free(g->cfg);
    memset(g, 0, sizeof(*g));
}

static int same_addr(const struct cr_addr *a, const struct cr_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Started as root without 'user', workers run as the first of these that
 * exists (and its group): a dedicated account, else the traditional one. */
static const char *const default_users[] = {CR_DEFAULT_USER, "nobody"};

static int resolve_ids(const struct cr_config *cfg, uid_t *uid, gid_t *gid, const char **dflt)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    *dflt = NULL;
    if (cfg->user) {
        struct passwd *pw = getpwnam(cfg->user);
        if (!pw) {
            cr_log_error("%s: unknown user '%s'", cfg->path, cfg->user);
            return CR_ECONFIG;
        }
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    } else if (geteuid() == 0) {
        struct passwd *pw = NULL;
        for (size_t i = 0; !pw && i < CR_ARRAY_LEN(default_users); i++)
            if ((pw = getpwnam(default_users[i])) != NULL)
                *dflt = default_users[i];
        if (!pw || pw->pw_uid == 0) {
            cr_log_error("%s: started as root without 'user', and there is no user '%s' or "
                         "'nobody' for the workers: set 'user' (user: root keeps them root)",
                         cfg->path, CR_DEFAULT_USER);
            return CR_ECONFIG;
        }
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    }
    if (cfg->group) {
        struct group *gr = getgrnam(cfg->group);
        if (!gr) {
            cr_log_error("%s: unknown group '%s'", cfg->path, cfg->group);
            return CR_ECONFIG;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

/* Says who the workers run as when corral chose it. */
static void log_default_user(const struct gen *g)
{
    if (g->default_user)
        cr_log_info("workers run as user %s (uid %d, gid %d): started as root without 'user' "
                    "in the config",
                    g->default_user, (int)g->uid, (int)g->gid);
}

static void print_diag(struct cr_diag *d)
{
    for (size_t i = 0; i < d->nmsgs; i++)
        cr_log(strstr(d->msgs[i], ": warning: ") ? CR_LOG_WARN : CR_LOG_ERROR, "%s", d->msgs[i]);
    cr_diag_free(d);
}

/* Everything of a generation but its sockets: TLS contexts, ticket key
 * files, users. Problems go to diag. */
static int gen_build_tls(struct gen *g, struct cr_shm *shm, struct cr_diag *diag)
{
    struct cr_config *cfg = g->cfg;
    char err[512];
    if (cfg->nlisteners > CR_SHM_MAX_LISTENERS) {
        cr_diag_add(diag, true, "%s: error: at most %d listeners", cfg->path,
                    CR_SHM_MAX_LISTENERS);
        return CR_ECONFIG;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cr_cfg_listener *l = &cfg->listeners[i];
        if (l->tls.ticket_key_file &&
            cr_ticket_load_file(l->tls.ticket_key_file, g->file_keys[i], &g->nfile_keys[i], err,
                                sizeof(err)) < 0)
            cr_diag_add(diag, true, "%s: error: listener %s: %s", cfg->path, l->name, err);
        (void)cr_tls_server_new(cfg, l, &shm->tickets[i], &g->server_tls[i], diag);
    }
    (void)cr_tls_client_new(cfg, &g->upstream_tls, diag);
    return diag->nerrors ? CR_ECONFIG : 0;
}

/* Builds a generation from cfg (taken over), reusing the listening sockets
 * of prev whose address is unchanged; bind = false only checks. On failure
 * everything built is released, cfg included, and prev is untouched. */
static int gen_build(struct gen *g, struct cr_config *cfg, const struct gen *prev, uint64_t id,
                     struct cr_shm *shm, bool bind, struct cr_diag *diag)
{
    char err[512];
    memset(g, 0, sizeof(*g));
    g->cfg = cfg;
    g->id = id;
    g->admin_fd = -1;
    g->fds = malloc(cfg->nlisteners * sizeof(int));
    g->server_tls = calloc(cfg->nlisteners, sizeof(*g->server_tls));
    g->file_keys = calloc(cfg->nlisteners, sizeof(*g->file_keys));
    g->nfile_keys = calloc(cfg->nlisteners, sizeof(size_t));
    if (!g->fds || !g->server_tls || !g->file_keys || !g->nfile_keys)
        goto fail;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        g->fds[i] = -1;
    if (resolve_ids(cfg, &g->uid, &g->gid, &g->default_user) < 0 ||
        gen_build_tls(g, shm, diag) < 0)
        goto fail;
    for (size_t i = 0; bind && i < cfg->nlisteners; i++) {
        const struct cr_cfg_listener *l = &cfg->listeners[i];
        for (size_t j = 0; prev && prev->cfg && j < prev->cfg->nlisteners; j++)
            if (same_addr(&prev->cfg->listeners[j].addr, &l->addr))
                g->fds[i] = prev->fds[j];
        if (g->fds[i] >= 0)
            continue;
        g->fds[i] = cr_listener_bind(&l->addr, (int)l->backlog, err, sizeof(err));
        if (g->fds[i] < 0) {
            cr_diag_add(diag, true, "%s: error: %s", cfg->path, err);
            goto fail;
        }
    }
    if (bind && cfg->admin.enabled) {
        if (prev && prev->cfg && prev->admin_fd >= 0 &&
            same_addr(&prev->cfg->admin.addr, &cfg->admin.addr))
            g->admin_fd = prev->admin_fd;
        else if ((g->admin_fd = cr_listener_bind(&cfg->admin.addr, 64, err, sizeof(err))) < 0) {
            cr_diag_add(diag, true, "%s: error: admin: %s", cfg->path, err);
            goto fail;
        }
    }
    return 0;
fail:
    /* close only what this build bound itself */
    for (size_t i = 0; g->fds && i < cfg->nlisteners; i++) {
        int reused = 0;
        for (size_t j = 0; prev && prev->cfg && j < prev->cfg->nlisteners; j++)
            reused |= prev->fds[j] == g->fds[i];
        if (reused)
            g->fds[i] = -1;
    }
    if (prev && g->admin_fd == prev->admin_fd)
        g->admin_fd = -1;
    gen_free(g, NULL);
    return CR_ECONFIG;
}

/* The ticket keys of a generation that has been adopted: a key file's
 * keys replace the ring; a ring without keys gets a generated one. */
static void gen_publish_keys(struct gen *g, struct cr_shm *shm)
{
    for (size_t i = 0; i < g->cfg->nlisteners; i++) {
        if (g->nfile_keys[i])
            cr_ticket_publish(&shm->tickets[i], g->file_keys[i], g->nfile_keys[i]);
        else if (shm->tickets[i].n == 0 && cr_ticket_rotate(&shm->tickets[i]) < 0)
            cr_log_error("cannot generate a ticket key: resumption is off");
    }
}

int cr_master_check(struct cr_config *cfg, struct cr_diag *diag)
{
    struct gen g;
    struct cr_shm *shm = cr_shm_create();
    if (!shm) {
        cr_config_free(cfg);
        return CR_ENOMEM;
    }
    int rc = gen_build(&g, cfg, NULL, 0, shm, false, diag);
    if (rc == 0)
        gen_free(&g, NULL);
    cr_shm_destroy(shm);
    return rc;
}

/* ------------------------------------------------------------ limits */

/* Every client connection takes a descriptor in a worker: the soft open
 * files limit is raised to the hard one (systemd's LimitNOFILE=, ulimit
 * -Hn) before any worker is forked, as the workers inherit it. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        cr_log_warn("cannot raise the open files limit from %llu to %llu: %s",
                    (unsigned long long)was, (unsigned long long)rl.rlim_max, strerror(errno));
}

/* What the open files limit allows each worker, once per (re)load. */
static void log_conn_limit(const struct cr_config *cfg)
{
    uint64_t nofile = cr_worker_nofile();
    uint64_t reserve = cr_worker_fd_reserve(cfg);
    uint32_t max = cr_worker_conn_limit(cfg, nofile);
    if (cfg->max_connections && cfg->max_connections + reserve > nofile)
        cr_log_warn("max_connections %u is more than the open files limit %llu allows (%llu, "
                    "keeping %llu descriptors for upstream connections, listeners and logs): "
                    "workers will run out of descriptors first; raise the limit (LimitNOFILE= "
                    "in the service, ulimit -n)",
                    cfg->max_connections, (unsigned long long)nofile,
                    (unsigned long long)(nofile > reserve ? nofile - reserve : 0),
                    (unsigned long long)reserve);
    else
        cr_log_info("open files limit %llu: at most %u client connections per worker, %llu in all",
                    (unsigned long long)nofile, max, (unsigned long long)max * cfg->workers);
}

/* ------------------------------------------------------------ workers */

static void old_add(struct master *m, pid_t pid, int id, uint64_t gen)
{
    if (m->nold == m->capold) {
        size_t cap = m->capold ? m->capold * 2 : 8;
        struct old *p = realloc(m->old, cap * sizeof(*p));
        if (!p) {
            kill(pid, SIGKILL); /* cannot track it: do not leave it unsupervised */
            return;
        }
        m->old = p;
        m->capold = cap;
    }
    m->old[m->nold++] = (struct old){.pid = pid, .id = id, .gen = gen};
}

/* The old workers that waited for the handoff start draining now; each
 * gets drain_timeout (and 2 s to exit) before it is killed. */
static void old_drain(struct master *m)
{
    uint64_t now = cr_now_us();
    for (size_t i = 0; i < m->nold; i++) {
        struct old *o = &m->old[i];
        if (o->signalled)
            continue;
        kill(o->pid, SIGTERM);
        o->signalled = true;
        o->kill_at_us = now + (m->old_drain_ms + 2000) * 1000ull;
    }
    m->handoff_at_us = 0;
}

/* Whether the new generation is ready to take over: every slot has said
 * so. A slot whose worker died and waits for its respawn is not: a new
 * generation that crashes at start must not let the old one go (the
 * handoff's deadline, HANDOFF_MAX_MS, still ends the wait). */
static bool gen_ready(const struct master *m)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (!m->slots[i].pid || !m->slots[i].ready)
            return false;
    return true;
}

/* "ready" messages from the workers (one byte each on their channel). */
static void drain(struct master *m, const char *why);

/* The generation is ready (or the handoff gave up waiting): systemd hears
 * READY=1 once per start or reload. */
static void notify_ready(struct master *m)
{
    if (!m->notify_ready || m->stopping)
        return;
    m->notify_ready = false;
    notify("READY=1\nSTATUS=serving");
}

/* Messages from the workers, one byte each on their channel: "R" ready,
 * "D" a POST /drain it accepted. */
static void read_chans(struct master *m)
{
    bool drain_asked = false;
    for (size_t i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        char b[8];
        for (int n = 0; s->chan >= 0 && n < 8 && recv(s->chan, b, sizeof(b), MSG_DONTWAIT) > 0;
             n++) {
            if (b[0] == 'D')
                drain_asked = true;
            else
                s->ready = true;
        }
    }
    if (m->handoff_at_us && gen_ready(m))
        old_drain(m);
    if (gen_ready(m))
        notify_ready(m);
    if (drain_asked)
        drain(m, "POST /drain");
}

static void close_chan(struct slot *s)
{
    if (s->chan >= 0)
        close(s->chan);
    s->chan = -1;
}

static void spawn(struct master *m, struct slot *s)
{
    int sv[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
        cr_log_warn("worker %d: no channel for log descriptors (%s): it keeps its log files "
                    "after SIGUSR1",
                    s->id, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        cr_log_error("fork worker %d: %s", s->id, strerror(errno));
        s->respawn_at_us = cr_now_us() + s->backoff_ms * 1000;
        if (sv[0] >= 0) {
            close(sv[0]);
            close(sv[1]);
        }
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        close(m->sfd);
        /* only its own end: a worker must not speak for the master to others */
        for (size_t i = 0; i < m->nslots; i++)
            close_chan(&m->slots[i]);
        if (sv[0] >= 0)
            close(sv[0]);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a master that crashed */
        if (getppid() == 1)
            _exit(1);
        struct cr_worker_setup ws = {
            .cfg = m->cur.cfg,
            .id = s->id,
            .generation = m->cur.id,
            .listen_fds = m->cur.fds,
            .admin_fd = m->cur.admin_fd,
            .server_tls = m->cur.server_tls,
            .upstream_tls = m->cur.upstream_tls,
            .shm = m->shm,
            .uid = m->cur.uid,
            .gid = m->cur.gid,
            .log_chan = sv[1],
        };
        _exit(cr_worker_run(&ws));
    }
    if (sv[1] >= 0)
        close(sv[1]);
    s->chan = sv[0];
    s->pid = pid;
    s->gen = m->cur.id;
    s->started_us = cr_now_us();
    s->respawn_at_us = 0;
    s->ready = false;
    cr_log_info("worker %d started (pid %d, generation %llu)", s->id, (int)pid,
                (unsigned long long)m->cur.id);
}

static int start_slots(struct master *m)
{
    size_t n = m->cur.cfg->workers;
    struct slot *slots = calloc(n, sizeof(*slots));
    if (!slots)
        return CR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        slots[i].id = (int)i + 1;
        slots[i].backoff_ms = BACKOFF_MIN_MS;
        slots[i].chan = -1;
    }
    for (size_t i = 0; i < m->nslots; i++)
        close_chan(&m->slots[i]);
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    for (size_t i = 0; i < n; i++)
        spawn(m, &m->slots[i]);
    return 0;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, len, "ended with status 0x%x", status);
}

/* Whether a worker other than pid shares the statistics slot of worker id
 * (one of another generation). */
static bool slot_shared(const struct master *m, int id, pid_t pid)
{
    for (size_t i = 0; i < m->nold; i++)
        if (m->old[i].id == id && m->old[i].pid != pid)
            return true;
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].id == id && m->slots[i].pid && m->slots[i].pid != pid)
            return true;
    return false;
}

/* A worker that did not exit by itself: what it held, from its live counts
 * in shared memory (its connections were reset, its requests unanswered),
 * which are then settled so that /stats does not count them as open. A
 * slot shared with a worker of another generation holds both's counts. */
static void lost(struct master *m, int id, pid_t pid, const char *how)
{
    struct cr_shm_worker_stats *st = &m->shm->workers[(id - 1) % CR_SHM_MAX_WORKERS];
    uint64_t conns = atomic_load(&st->conns_open), open_reqs = atomic_load(&st->requests_active);
    if (slot_shared(m, id, pid)) {
        cr_log_error("worker %d (pid %d) %s, holding up to %llu client connection(s) and %llu "
                     "request(s) in flight (counted with another generation's worker %d)",
                     id, (int)pid, how, (unsigned long long)conns, (unsigned long long)open_reqs,
                     id);
        return;
    }
    cr_log_error("worker %d (pid %d) %s, holding %llu client connection(s) and %llu request(s) "
                 "in flight: they were cut off",
                 id, (int)pid, how, (unsigned long long)conns, (unsigned long long)open_reqs);
    atomic_store(&st->conns_open, 0);
    atomic_store(&st->conns_lingering, 0);
    atomic_store(&st->handshakes_active, 0);
    atomic_store(&st->requests_active, 0);
    atomic_store(&st->admit_capacity, 0);
    atomic_store(&st->upstream_ready, 0);
    atomic_store(&st->tunnel_connections, 0);
    atomic_store(&st->tunnels_open, 0);
    atomic_store(&st->quota_fallback, 0);
    atomic_store(&st->adaptive_limit, 0);
    atomic_fetch_add(&st->responses_by_class[0], open_reqs); /* reset */
    size_t row = (size_t)(id - 1) % CR_SHM_MAX_WORKERS;
    for (size_t i = 0; i < CR_SHM_MAX_LISTENERS; i++)
        atomic_store(&m->shm->listeners[row][i].conns_open, 0);
    for (size_t i = 0; i < CR_SHM_MAX_UPADDRS; i++) {
        struct cr_shm_up_stats *u = &m->shm->upstreams[row][i];
        for (size_t k = 0; k < CR_SHM_UP_NSTATES; k++)
            atomic_store(&u->conns[k], 0);
        atomic_store(&u->inflight, 0);
    }
    /* its tunnels and event streams out of the tenants' open gauges */
    for (size_t i = 0; i < CR_ADMIT_MAX_TENANTS; i++) {
        struct cr_shm_tenant_open *o = &m->shm->tenant_open[row][i];
        atomic_fetch_sub(&m->shm->tenants[i].tunnels_open, atomic_exchange(&o->tunnels, 0));
        atomic_fetch_sub(&m->shm->tenants[i].streaming_open, atomic_exchange(&o->streaming, 0));
    }
}

/* A worker of generation gen in slot id is gone: what it had in flight
 * upstream no longer holds back the other generation's (shm.h), unless a
 * later generation has taken its entry over already. */
static void upflight_clear(struct master *m, int id, uint64_t gen)
{
    struct cr_shm_upflight *e = &m->shm->upflight[(id - 1) % CR_SHM_MAX_WORKERS][gen % CR_SHM_GENS];
    uint64_t want = gen;
    if (atomic_compare_exchange_strong(&e->generation, &want, 0))
        atomic_store(&e->inflight, 0);
}

static void reap(struct master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char how[96];
        describe_exit(status, how, sizeof(how));
        int found = 0;
        for (size_t i = 0; i < m->nold; i++) {
            if (m->old[i].pid == pid) {
                int id = m->old[i].id;
                upflight_clear(m, id, m->old[i].gen);
                m->old[i] = m->old[--m->nold];
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                    cr_log_info("old worker %d (pid %d) %s", id, (int)pid, how);
                else
                    lost(m, id, pid, how);
                found = 1;
                break;
            }
        }
        for (size_t i = 0; !found && i < m->nslots; i++) {
            struct slot *s = &m->slots[i];
            if (s->pid != pid)
                continue;
            found = 1;
            s->pid = 0;
            close_chan(s);
            upflight_clear(m, s->id, s->gen);
            if (m->stopping) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                cr_log_info("worker %d (pid %d) %s", s->id, (int)pid, how);
                else
                    lost(m, s->id, pid, how);
                break;
            }
            uint64_t now = cr_now_us();
            if (now - s->started_us > STABLE_AFTER_MS * 1000ull)
                s->backoff_ms = BACKOFF_MIN_MS;
            lost(m, s->id, pid, how);
            atomic_fetch_add(&m->shm->worker_restarts, 1);
            cr_log_error("worker %d (pid %d): restarting it in %llu ms; the other workers keep "
                         "accepting",
                         s->id, (int)pid, (unsigned long long)s->backoff_ms);
            s->respawn_at_us = now + s->backoff_ms * 1000ull;
            s->backoff_ms = CR_MIN(s->backoff_ms * 2, (uint64_t)BACKOFF_MAX_MS);
        }
    }
}

/* For /health: how many of the current generation's workers run. */
static void publish_workers(struct master *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m->nslots; i++)
        n += m->slots[i].pid != 0;
    atomic_store(&m->shm->workers_configured, (uint64_t)m->nslots);
    atomic_store(&m->shm->workers_running, n);
}

static size_t running(const struct master *m)
{
    size_t n = m->nold;
    for (size_t i = 0; i < m->nslots; i++)
        n += m->slots[i].pid != 0;
    return n;
}

static void signal_all(struct master *m, int sig)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].pid)
            kill(m->slots[i].pid, sig);
    for (size_t i = 0; i < m->nold; i++)
        kill(m->old[i].pid, sig);
}

/* ------------------------------------------------------------ signals */

static void schedule_rotations(struct master *m);

static void stop(struct master *m, const char *why)
{
    if (m->stopping) {
        cr_log_info("%s: already stopping", why);
        return;
    }
    m->stopping = 1;
    m->drain_at_us = 0;
    notify("STOPPING=1");
    cr_log_info("%s: stopping; draining workers for up to %llu ms", why,
                (unsigned long long)m->cur.cfg->drain_timeout_ms);
    /* stop accepting at once: the workers close their copies too */
    for (size_t i = 0; i < m->cur.cfg->nlisteners; i++) {
        close(m->cur.fds[i]);
        m->cur.fds[i] = -1;
    }
    if (m->cur.admin_fd >= 0)
        close(m->cur.admin_fd);
    m->cur.admin_fd = -1;
    signal_all(m, SIGTERM);
    m->handoff_at_us = 0;
    for (size_t i = 0; i < m->nold; i++)
        m->old[i].signalled = true;
    m->kill_at_us = cr_now_us() + (m->cur.cfg->drain_timeout_ms + 2000) * 1000ull;
}

/* A drain for a rolling deploy: /health answers 503 at once, so that the
 * balancer in front stops sending new connections, while corral serves on
 * for drain_grace; then it stops as SIGTERM does. */
static void drain(struct master *m, const char *why)
{
    if (m->stopping || m->drain_at_us) {
        cr_log_info("%s: already %s", why, m->stopping ? "stopping" : "draining");
        return;
    }
    atomic_store(&m->shm->draining, 1);
    uint64_t grace = m->cur.cfg->drain_grace_ms;
    m->drain_at_us = cr_now_us() + grace * 1000ull;
    if (!m->drain_at_us)
        m->drain_at_us = 1;
    cr_log_info("%s: draining: /health answers 503 now; serving on for %llu ms (drain_grace), "
                "then stopping",
                why, (unsigned long long)grace);
    notify("STATUS=draining");
}

static void reload(struct master *m)
{
    struct cr_config *cfg = NULL;
    struct cr_diag diag = {0};
    struct gen next;
    notify("RELOADING=1");
    int rc = m->path ? cr_config_load(m->path, &cfg, &diag) : cr_config_load_default(&cfg, &diag);
    if (rc == 0)
        rc = gen_build(&next, cfg, &m->cur, m->cur.id + 1, m->shm, true, &diag);
    print_diag(&diag);
    if (rc < 0) {
        m->notify_ready = true; /* the running generation is as ready as it was */
        notify_ready(m);
        cr_log_error("reload failed: the configuration has errors; the running workers keep "
                     "serving the previous one");
        return;
    }
    gen_publish_keys(&next, m->shm);
    if (cr_log_open(&next.cfg->log) < 0)
        cr_log_warn("reload: keeping the previous log files");
    /* the old generation keeps serving until the new one is ready (it
     * listens, and its upstream pool has connected or tried), then drains;
     * its workers keep their own copies of every socket and context, so
     * the master can release them now */
    old_drain(m); /* a previous handoff still waiting: that generation goes now */
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].pid)
            old_add(m, m->slots[i].pid, m->slots[i].id, m->slots[i].gen);
    m->old_drain_ms = m->cur.cfg->drain_timeout_ms;
    m->handoff_at_us = cr_now_us() + HANDOFF_MAX_MS * 1000ull;
    gen_free(&m->cur, &next);
    m->cur = next;
    schedule_rotations(m);
    atomic_store(&m->shm->generation, m->cur.id);
    atomic_fetch_add(&m->shm->reloads, 1);
    m->notify_ready = true;
    if (start_slots(m) < 0)
        cr_log_error("reload: out of memory starting workers");
    cr_log_info("reloaded %s: generation %llu, %u workers", m->cur.cfg->path,
                (unsigned long long)m->cur.id, m->cur.cfg->workers);
    log_default_user(&m->cur);
    log_conn_limit(m->cur.cfg);
}

/* The workers of the current generation get the master's log descriptors
 * (they may not be allowed to open the files themselves); draining workers
 * of earlier generations keep theirs. */
static void send_logs(struct master *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (s->pid && s->chan >= 0 && cr_log_send(s->chan) < 0)
            cr_log_warn("worker %d: cannot pass it the re-opened log files: %s", s->id,
                        strerror(errno));
    }
}

static void on_signal(struct master *m, int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        stop(m, sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    case SIGHUP:
        if (m->stopping)
            break;
        cr_log_info("SIGHUP: reloading %s", m->path ? m->path : "the built-in config");
        reload(m);
        break;
    case SIGUSR2:
        drain(m, "SIGUSR2");
        break;
    case SIGUSR1:
        cr_log_reopen();
        send_logs(m);
        cr_log_info("SIGUSR1: log files re-opened");
        break;
    case SIGCHLD:
        reap(m);
        break;
    }
}

/* ------------------------------------------------------------ loop */

/* Generated ticket keys rotate every ticket_rotate; a key file's keys are
 * rotated by whoever writes the file (and a SIGHUP). */
static void schedule_rotations(struct master *m)
{
    uint64_t now = cr_now_us();
    for (size_t i = 0; i < CR_SHM_MAX_LISTENERS; i++) {
        bool gen = i < m->cur.cfg->nlisteners && !m->cur.nfile_keys[i];
        if (!gen)
            m->rotate_at_us[i] = 0;
        else if (!m->rotate_at_us[i])
            m->rotate_at_us[i] = now + m->cur.cfg->listeners[i].tls.ticket_rotate_ms * 1000;
    }
}

static void rotate_due(struct master *m, uint64_t now)
{
    for (size_t i = 0; i < m->cur.cfg->nlisteners; i++) {
        if (!m->rotate_at_us[i] || m->rotate_at_us[i] > now)
            continue;
        if (cr_ticket_rotate(&m->shm->tickets[i]) < 0)
            cr_log_error("listener %s: ticket key rotation failed", m->cur.cfg->listeners[i].name);
        else
            cr_log_info("listener %s: session ticket key rotated", m->cur.cfg->listeners[i].name);
        m->rotate_at_us[i] = now + m->cur.cfg->listeners[i].tls.ticket_rotate_ms * 1000;
    }
}

static int next_timeout_ms(const struct master *m)
{
    uint64_t now = cr_now_us(), next = UINT64_MAX;
    for (size_t i = 0; i < CR_SHM_MAX_LISTENERS && !m->stopping; i++)
        if (m->rotate_at_us[i])
            next = CR_MIN(next, m->rotate_at_us[i]);
    for (size_t i = 0; i < m->nslots; i++)
        if (!m->slots[i].pid && m->slots[i].respawn_at_us && !m->stopping)
            next = CR_MIN(next, m->slots[i].respawn_at_us);
    if (m->stopping)
        next = CR_MIN(next, m->kill_at_us);
    if (m->handoff_at_us)
        next = CR_MIN(next, m->handoff_at_us);
    if (!m->stopping)
        next = CR_MIN(next, m->fds_at_us);
    if (m->drain_at_us)
        next = CR_MIN(next, m->drain_at_us);
    /* only the deadlines run_timers acts on: a passed or unset one would
     * make poll return at once, again and again */
    for (size_t i = 0; i < m->nold && !m->stopping; i++)
        if (m->old[i].signalled && m->old[i].kill_at_us)
            next = CR_MIN(next, m->old[i].kill_at_us);
    if (next == UINT64_MAX)
        return -1;
    return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

/* The workers' descriptor counts for /metrics (metrics.h): read here from
 * /proc, which a worker cannot do for another once it dropped privileges,
 * and off the workers' loops. */
static void publish_fds(struct master *m, uint64_t now)
{
    if (now < m->fds_at_us)
        return;
    m->fds_at_us = now + 1000000;
    for (size_t i = 0; i < m->nslots; i++) {
        uint64_t open = 0, max = 0;
        if (m->slots[i].pid > 0 && cr_metrics_proc_fds((long)m->slots[i].pid, &open, &max) < 0)
            open = max = 0;
        size_t row = (size_t)(m->slots[i].id - 1) % CR_SHM_MAX_WORKERS;
        atomic_store_explicit(&m->shm->worker_fds[row], open, memory_order_relaxed);
        atomic_store_explicit(&m->shm->worker_max_fds[row], max, memory_order_relaxed);
    }
}

static void run_timers(struct master *m)
{
    uint64_t now = cr_now_us();
    if (!m->stopping) {
        rotate_due(m, now);
        publish_fds(m, now);
    }
    for (size_t i = 0; i < m->nslots && !m->stopping; i++) {
        struct slot *s = &m->slots[i];
        if (!s->pid && s->respawn_at_us && s->respawn_at_us <= now)
            spawn(m, s);
    }
    if (m->handoff_at_us && now >= m->handoff_at_us) {
        cr_log_warn("reload: the new workers are not all ready after %d ms; the old ones drain "
                    "now",
                    HANDOFF_MAX_MS);
        old_drain(m);
        notify_ready(m);
    }
    if (m->drain_at_us && now >= m->drain_at_us)
        stop(m, "drain_grace over");
    for (size_t i = 0; i < m->nold && !m->stopping; i++) {
        struct old *o = &m->old[i];
        if (o->signalled && o->kill_at_us && now >= o->kill_at_us) {
            cr_log_warn("drain timeout: killing old worker %d (pid %d)", o->id, (int)o->pid);
            kill(o->pid, SIGKILL);
            o->kill_at_us = 0;
        }
    }
    if (m->stopping && now >= m->kill_at_us && running(m)) {
        cr_log_warn("drain timeout: killing %zu remaining worker(s)", running(m));
        signal_all(m, SIGKILL);
        m->kill_at_us = now + 1000000;
    }
}

/* The pid file is written as root, often in a directory others can write:
 * it must be a regular file reached without following a symbolic link
 * (O_NOFOLLOW), and is truncated only once checked (O_NONBLOCK: opening a
 * FIFO must not wait for a reader). */
static int write_pid_file(const char *path)
{
    struct stat st;
    char line[32];
    int n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    int e = errno;
    if (fd < 0 && e == ELOOP) {
        cr_log_error("cannot write pid file %s: it is a symbolic link, refused (name the file "
                     "itself)",
                     path);
        return CR_EIO;
    }
    if ((fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) ||
        (fd < 0 && lstat(path, &st) == 0 && !S_ISREG(st.st_mode))) {
        cr_log_error("cannot write pid file %s: not a regular file", path);
        if (fd >= 0)
            close(fd);
        return CR_EIO;
    }
    if (fd < 0 || ftruncate(fd, 0) < 0 || write(fd, line, (size_t)n) != n) {
        cr_log_error("cannot write pid file %s: %s", path, strerror(fd < 0 ? e : errno));
        if (fd >= 0)
            close(fd);
        return CR_EIO;
    }
    close(fd);
    return 0;
}

int cr_master_run(struct cr_config *cfg, const char *path)
{
    struct master m = {.path = path, .sfd = -1};
    int rc = 1;
    sigset_t set;

    cr_log_set_role("master");
    if (cr_log_open(&cfg->log) < 0) {
        cr_config_free(cfg);
        return 1;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    m.shm = cr_shm_create();
    if (m.sfd < 0 || !m.shm) {
        cr_log_error("master setup: %s", strerror(errno));
        cr_config_free(cfg);
        goto out;
    }
    struct cr_diag diag = {0};
    rc = gen_build(&m.cur, cfg, NULL, 1, m.shm, true, &diag);
    print_diag(&diag);
    rc = rc < 0 ? 1 : 0;
    if (rc)
        goto out;
    gen_publish_keys(&m.cur, m.shm);
    schedule_rotations(&m);
    rc = 1;
    if (cfg->pid_file && write_pid_file(cfg->pid_file) < 0)
        goto out_gen;
    log_default_user(&m.cur);
    atomic_store(&m.shm->generation, 1);
    cr_log_info("corral %s starting: %zu listener(s), %u worker(s), upstream %s (%s)",
                PACKAGE_VERSION, cfg->nlisteners, cfg->workers, cfg->upstream.addrs[0].text,
                cfg->upstream.protocol == CR_PROTO_H2 ? "h2" : "http/1.1");
    raise_nofile();
    log_conn_limit(cfg);
    m.notify_ready = true;
    if (start_slots(&m) < 0)
        goto out_gen;
    publish_workers(&m);

    while (!m.stopping || running(&m) > 0) {
        struct pollfd pfd[1 + CR_SHM_MAX_WORKERS] = {{.fd = m.sfd, .events = POLLIN}};
        nfds_t npfd = 1;
        for (size_t i = 0; i < m.nslots && npfd < CR_ARRAY_LEN(pfd); i++)
            if (m.slots[i].chan >= 0)
                pfd[npfd++] = (struct pollfd){.fd = m.slots[i].chan, .events = POLLIN};
        int n = poll(pfd, npfd, next_timeout_ms(&m));
        if (n < 0 && errno != EINTR) {
            cr_log_error("poll: %s", strerror(errno));
            break;
        }
        read_chans(&m);
        if (n > 0 && pfd[0].revents) {
            struct signalfd_siginfo si;
            while (read(m.sfd, &si, sizeof(si)) == sizeof(si))
                on_signal(&m, (int)si.ssi_signo);
        }
        reap(&m);
        run_timers(&m);
        publish_workers(&m);
    }
    cr_log_info("stopped");
    rc = 0;
    if (m.cur.cfg->pid_file)
        unlink(m.cur.cfg->pid_file);
out_gen:
    gen_free(&m.cur, NULL);
out:
    for (size_t i = 0; i < m.nslots; i++)
        close_chan(&m.slots[i]);
    free(m.slots);
    free(m.old);
    cr_shm_destroy(m.shm);
    if (m.sfd >= 0)
        close(m.sfd);
    return rc;
}
