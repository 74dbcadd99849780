/* testup.c - corral's test upstream: CLI, TLS context, listener, signals.
 *
 *   testup --listen 127.0.0.1:PORT --cert lb.crt --key lb.key
 *          [--ca ca.crt [--require-client-cert]] [--max-streams N]
 *          [--service-time MS] [--work-after-reset] [--stats-file PATH]
 *          [--count-header NAME] [--quiet]
 *          [--ws-ping MS] [--ws-refuse STATUS] [--connect-protocol]
 *
 * Prints "testup: listening on ADDR" on stdout once the socket listens
 * (PORT 0 picks a free port; ADDR shows the real one), serves until
 * SIGTERM or SIGINT, then writes --stats-file and exits 0. SIGUSR1 writes
 * --stats-file. Exit status 2 for a bad command line, 1 for a startup
 * failure. The endpoints are described by usage() and testup_req.c. */
#include "testup.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common.h"
#include "testup_conn.h"
#include "testup_stats.h"

#define TU_BACKLOG 4096

void tu_log(const struct tu_server *srv, const char *fmt, ...)
{
    va_list ap;

    if (srv->opts.quiet)
        return;
    va_start(ap, fmt);
    fputs("testup: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *f, int full)
{
    fputs(
        "usage: testup --listen ADDR:PORT --cert CRT --key KEY [--ca CA [--require-client-cert]]\n"
        "              [--max-streams N] [--service-time MS] [--work-after-reset]\n"
        "              [--refuse-after-data N] [--stats-file PATH]\n"
        "              [--count-header NAME] [--quiet]\n"
        "              [--knee K [--knee-slope MS] [--knee-after SECONDS:K2]]\n"
        "              [--ws-ping MS] [--ws-refuse STATUS] [--connect-protocol]\n",
        f);
    if (!full) {
        fputs("(--help for more)\n", f);
        return;
    }
    fputs("\n"
          "A TLS (1.2/1.3) test upstream; ALPN h2 and http/1.1 (no ALPN: HTTP/1.1).\n"
          "  --listen ADDR:PORT       127.0.0.1:8443, [::1]:8443; port 0 picks one\n"
          "  --cert, --key            server certificate chain and key (PEM)\n"
          "  --ca CA                  ask for a client certificate signed by CA\n"
          "  --require-client-cert    and refuse clients without one\n"
          "  --max-streams N          HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (100)\n"
          "  --service-time MS        answer every request MS ms after its body (0)\n"
          "  --work-after-reset       a request reset or closed before its answer stays in\n"
          "                           flight (inflight, max_inflight) until that answer\n"
          "                           would have been ready: a load balancer whose backend\n"
          "                           does not see the reset\n"
          "  --refuse-after-data N    HTTP/2: the first N streams whose DATA arrives are\n"
          "                           reset with REFUSED_STREAM on their first DATA frame\n"
          "                           (a server going away after reading part of a body)\n"
          "  --stats-file PATH        write /__stats JSON there on SIGUSR1 and at exit\n"
          "  --count-header NAME      count requests by the value of header NAME too\n"
          "                           (/__stats \"by_header\")\n"
          "  --quiet                  no per-connection log on stderr\n"
          "  --knee K                 a load balancer past its knee: a request that\n"
          "                           arrives with more than K in flight (itself counted)\n"
          "                           waits --knee-slope MS (1) more per request above K\n"
          "  --knee-after S:K2        the knee becomes K2 S seconds after the start\n"
          "  --ws-ping MS             ping every WebSocket every MS ms\n"
          "  --ws-refuse STATUS       answer WebSocket upgrades (HTTP/1.1) with STATUS\n"
          "  --connect-protocol       HTTP/2: SETTINGS_ENABLE_CONNECT_PROTOCOL=1; extended\n"
          "                           CONNECT with :protocol websocket is a WebSocket\n"
          "\n"
          "Endpoints (any method):\n"
          "  /               JSON: ok, method, path, protocol, conn, conn_requests\n"
          "  /echo           streams the request body back\n"
          "  /bytes/N        N bytes of 'x' (N <= 1e12)\n"
          "  /delay/MS       the / answer, MS ms late (on top of --service-time)\n"
          "  /status/CODE    that status (200-599), tiny JSON body\n"
          "  /events/N[?every=MS]  text/event-stream: N events MS ms apart (default\n"
          "                  1000), the first at once; N = 0: until the client goes;\n"
          "                  &plain=1: the same as text/plain\n"
          "  /headers        JSON of the request's header fields and :method/:path/:version\n"
          "  /__stats        JSON counters; ?reset=1 then zeroes requests and max_inflight\n"
          "  /__goaway       the / answer, then GOAWAY (NO_ERROR) on its HTTP/2 connection:\n"
          "                  no new streams there, those open go on to their end\n"
          "WebSocket (any path): HTTP/1.1 GET with Upgrade: websocket, or (with\n"
          "--connect-protocol) HTTP/2 CONNECT with :protocol websocket: an echo of\n"
          "text/binary frames; pings answered; a close answered with the same code.\n",
          f);
}

/* Parses a decimal option value in [min, max]. Returns 0 or CR_EINVAL. */
static int parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return CR_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return CR_EINVAL;
    *out = v;
    return 0;
}

/* Parses "IPv4:PORT" or "[IPv6]:PORT" (PORT 0..65535; 0 picks a free
 * one). Returns 0 or CR_EINVAL. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, int *len)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    size_t hlen;
    uint64_t port;

    if (colon == NULL || parse_num(colon + 1, 0, 65535, &port) != 0)
        return CR_EINVAL;
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return CR_EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in6);
    } else {
        return CR_EINVAL;
    }
    return 0;
}

enum {
    OPT_LISTEN = 256,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_REQUIRE,
    OPT_STREAMS,
    OPT_SERVICE,
    OPT_STATS,
    OPT_COUNT,
    OPT_QUIET,
    OPT_LINGER,
    OPT_REFUSE,
    OPT_KNEE,
    OPT_KNEE_SLOPE,
    OPT_KNEE_AFTER,
    OPT_WS_PING,
    OPT_WS_REFUSE,
    OPT_CONNECT_PROTOCOL,
    OPT_HELP
};

/* Applies one option. Returns 0 or CR_EINVAL (message printed). */
static int apply_opt(struct tu_opts *o, int c, const char *arg)
{
    uint64_t v;

    switch (c) {
    case OPT_LISTEN:
        o->listen = arg;
        return 0;
    case OPT_CERT:
        o->cert = arg;
        return 0;
    case OPT_KEY:
        o->key = arg;
        return 0;
    case OPT_CA:
        o->ca = arg;
        return 0;
    case OPT_REQUIRE:
        o->require_client_cert = 1;
        return 0;
    case OPT_STATS:
        o->stats_file = arg;
        return 0;
    case OPT_QUIET:
        o->quiet = 1;
        return 0;
    case OPT_LINGER:
        o->work_after_reset = 1;
        return 0;
    case OPT_COUNT:
        if (arg[0] == '\0' || strlen(arg) > 64)
            break;
        free(o->count_header);
        if ((o->count_header = strdup(arg)) == NULL)
            return CR_EINVAL;
        for (char *p = o->count_header; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        return 0;
    case OPT_STREAMS:
        if (parse_num(arg, 1, INT32_MAX, &v) != 0)
            break;
        o->max_streams = (uint32_t)v;
        return 0;
    case OPT_REFUSE:
        if (parse_num(arg, 0, INT32_MAX, &v) != 0)
            break;
        o->refuse_after_data = (uint32_t)v;
        return 0;
    case OPT_KNEE:
        if (parse_num(arg, 1, INT32_MAX, &v) != 0)
            break;
        o->knee = (uint32_t)v;
        return 0;
    case OPT_KNEE_SLOPE:
        if (parse_num(arg, 0, 60000, &v) != 0)
            break;
        o->knee_slope_ms = v;
        return 0;
    case OPT_KNEE_AFTER: {
        char secs[16];
        const char *colon = strchr(arg, ':');
        uint64_t k2;
        if (colon == NULL || (size_t)(colon - arg) >= sizeof(secs))
            break;
        memcpy(secs, arg, (size_t)(colon - arg));
        secs[colon - arg] = '\0';
        if (parse_num(secs, 1, 86400, &v) != 0 || parse_num(colon + 1, 1, INT32_MAX, &k2) != 0)
            break;
        o->knee_after_s = v;
        o->knee2 = (uint32_t)k2;
        return 0;
    }
    case OPT_WS_PING:
        if (parse_num(arg, 1, 3600000, &v) != 0)
            break;
        o->ws_ping_ms = v;
        return 0;
    case OPT_WS_REFUSE:
        if (parse_num(arg, 200, 599, &v) != 0)
            break;
        o->ws_refuse = (int)v;
        return 0;
    case OPT_CONNECT_PROTOCOL:
        o->connect_protocol = 1;
        return 0;
    case OPT_SERVICE:
        if (parse_num(arg, 0, 3600000, &v) != 0)
            break;
        o->service_ms = v;
        return 0;
    default:
        return CR_EINVAL;
    }
    fprintf(stderr, "testup: bad value '%s'\n", arg);
    return CR_EINVAL;
}

/* Fills o from argv. Returns 0, 1 (--help) or CR_EINVAL (message printed). */
static int parse_args(int argc, char **argv, struct tu_opts *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"ca", required_argument, NULL, OPT_CA},
        {"require-client-cert", no_argument, NULL, OPT_REQUIRE},
        {"max-streams", required_argument, NULL, OPT_STREAMS},
        {"service-time", required_argument, NULL, OPT_SERVICE},
        {"stats-file", required_argument, NULL, OPT_STATS},
        {"count-header", required_argument, NULL, OPT_COUNT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"work-after-reset", no_argument, NULL, OPT_LINGER},
        {"refuse-after-data", required_argument, NULL, OPT_REFUSE},
        {"knee", required_argument, NULL, OPT_KNEE},
        {"knee-slope", required_argument, NULL, OPT_KNEE_SLOPE},
        {"knee-after", required_argument, NULL, OPT_KNEE_AFTER},
        {"ws-ping", required_argument, NULL, OPT_WS_PING},
        {"ws-refuse", required_argument, NULL, OPT_WS_REFUSE},
        {"connect-protocol", no_argument, NULL, OPT_CONNECT_PROTOCOL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->max_streams = 100;
    o->knee_slope_ms = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP)
            return 1;
        if (apply_opt(o, c, optarg) != 0)
            return CR_EINVAL;
    }
    if (optind < argc) {
        fprintf(stderr, "testup: unexpected argument '%s'\n", argv[optind]);
        return CR_EINVAL;
    }
    if (o->listen == NULL || o->cert == NULL || o->key == NULL) {
        fprintf(stderr, "testup: --listen, --cert and --key are required\n");
        return CR_EINVAL;
    }
    if (parse_listen(o->listen, &o->listen_addr, &o->listen_addrlen) != 0) {
        fprintf(stderr, "testup: bad --listen address '%s' (want IP:PORT)\n", o->listen);
        return CR_EINVAL;
    }
    if (o->knee_after_s && !o->knee) {
        fprintf(stderr, "testup: --knee-after needs --knee\n");
        return CR_EINVAL;
    }
    if (o->require_client_cert && o->ca == NULL) {
        fprintf(stderr, "testup: --require-client-cert needs --ca\n");
        return CR_EINVAL;
    }
    return 0;
}

/* ALPN: h2 if the client offers it, else http/1.1, else no ALPN at all
 * (the connection then speaks HTTP/1.1). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x02h2\x08http/1.1";
    unsigned char *sel;
    (void)ssl;
    (void)arg;

    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void print_tls_errors(const char *what, const char *file)
{
    unsigned long e;
    char buf[256];

    fprintf(stderr, "testup: %s %s failed\n", what, file);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "testup:   %s\n", buf);
    }
}

/* Client certificates: verified against --ca; required or optional. */
static int setup_client_auth(SSL_CTX *ctx, const struct tu_opts *o)
{
    STACK_OF(X509_NAME) * names;

    if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
        print_tls_errors("loading CA", o->ca);
        return CR_ETLS;
    }
    names = SSL_load_client_CA_file(o->ca);
    if (names == NULL) {
        print_tls_errors("reading CA names from", o->ca);
        return CR_ETLS;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (o->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        NULL);
    return 0;
}

/* Builds the server SSL_CTX. Returns NULL (errors printed) on failure. */
static SSL_CTX *make_ssl_ctx(const struct tu_opts *o)
{
    static const unsigned char sid_ctx[] = "testup";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        print_tls_errors("creating", "SSL_CTX");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
        print_tls_errors("loading certificate", o->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        print_tls_errors("loading key", o->key);
        goto fail;
    }
    if (o->ca && setup_client_auth(ctx, o) != 0)
        goto fail;
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct tu_server *srv = arg;
    (void)l;

    if (tu_conn_accept(srv, fd, sa, salen) != 0)
        tu_log(srv, "accept: cannot set up a connection");
}

static void listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

/* accept() failed (EMFILE...): pause accepting for a second rather than
 * spin on a listening socket that stays readable. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct tu_server *srv = arg;
    struct timeval tv = {1, 0};
    int err = EVUTIL_SOCKET_ERROR();

    fprintf(stderr, "testup: accept: %s\n", evutil_socket_error_to_string(err));
    evconnlistener_disable(l);
    if (event_base_once(srv->base, -1, EV_TIMEOUT, listener_resume_cb, l, &tv) != 0)
        evconnlistener_enable(l);
}

/* Prints "testup: listening on ADDR" with the port actually bound. */
static void announce(struct evconnlistener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[64];
    const void *addr;
    unsigned port;

    memset(&ss, 0, sizeof(ss));
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET6) {
        addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        addr = &((struct sockaddr_in *)&ss)->sin_addr;
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (evutil_inet_ntop(ss.ss_family, addr, host, sizeof(host)) == NULL)
        return;
    printf(ss.ss_family == AF_INET6 ? "testup: listening on [%s]:%u\n"
                                    : "testup: listening on %s:%u\n",
           host, port);
    fflush(stdout);
}

static struct evconnlistener *make_listener(struct tu_server *srv)
{
    struct evconnlistener *l;

    l = evconnlistener_new_bind(srv->base, accept_cb, srv,
                                LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                TU_BACKLOG, (const struct sockaddr *)&srv->opts.listen_addr,
                                srv->opts.listen_addrlen);
    if (l == NULL) {
        fprintf(stderr, "testup: cannot listen on %s: %s\n", srv->opts.listen, strerror(errno));
        return NULL;
    }
    evconnlistener_set_error_cb(l, accept_error_cb);
    return l;
}

static void write_stats(struct tu_server *srv)
{
    if (srv->opts.stats_file == NULL)
        return;
    if (tu_stats_write_file(&srv->stats, srv->opts.count_header, srv->opts.stats_file) != 0)
        fprintf(stderr, "testup: writing %s: %s\n", srv->opts.stats_file, strerror(errno));
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct tu_server *srv = arg;
    (void)what;

    if (sig == SIGUSR1) {
        write_stats(srv);
        return;
    }
    tu_log(srv, "signal %d: exiting", (int)sig);
    event_base_loopbreak(srv->base);
}

/* --knee-after: the knee moves. */
static void knee_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tu_server *srv = arg;
    (void)fd, (void)what;
    tu_log(srv, "knee %u -> %u", srv->opts.knee, srv->opts.knee2);
    srv->opts.knee = srv->opts.knee2;
}

/* Runs the loop until SIGTERM/SIGINT. Returns 0 or CR_ENOMEM. */
static int serve(struct tu_server *srv, struct evconnlistener *l)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    struct event *ev[3] = {NULL, NULL, NULL};
    size_t i;
    int rv = 0;

    for (i = 0; i < CR_ARRAY_LEN(sigs); i++) {
        ev[i] = evsignal_new(srv->base, sigs[i], signal_cb, srv);
        if (ev[i] == NULL || evsignal_add(ev[i], NULL) != 0) {
            rv = CR_ENOMEM;
            goto done;
        }
    }
    if (srv->opts.knee_after_s) {
        struct timeval tv = {.tv_sec = (time_t)srv->opts.knee_after_s, .tv_usec = 0};
        if (event_base_once(srv->base, -1, EV_TIMEOUT, knee_cb, srv, &tv) != 0) {
            rv = CR_ENOMEM;
            goto done;
        }
    }
    announce(l);
    event_base_dispatch(srv->base);
done:
    for (i = 0; i < CR_ARRAY_LEN(sigs); i++)
        if (ev[i])
            event_free(ev[i]);
    return rv;
}

int main(int argc, char **argv)
{
    struct tu_server srv;
    struct evconnlistener *l;
    int rv = parse_args(argc, argv, &srv.opts), status = 1;

    if (rv != 0) {
        free(srv.opts.count_header);
        usage(rv > 0 ? stdout : stderr, rv > 0);
        return rv > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    srv.stats = (struct tu_stats){0};
    srv.conns = NULL;
    srv.next_conn_seq = 0;
    srv.ssl_ctx = make_ssl_ctx(&srv.opts);
    if (srv.ssl_ctx == NULL)
        goto fail_ctx;
    srv.base = event_base_new();
    if (srv.base == NULL)
        goto fail_base;
    l = make_listener(&srv);
    if (l == NULL)
        goto fail_listener;
    if (serve(&srv, l) == 0)
        status = 0;
    write_stats(&srv);
    tu_conn_free_all(&srv);
    evconnlistener_free(l);
fail_listener:
    event_base_free(srv.base);
fail_base:
    SSL_CTX_free(srv.ssl_ctx);
fail_ctx:
    free(srv.opts.count_header);
    libevent_global_shutdown();
    return status;
}
