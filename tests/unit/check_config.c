/* check_config.c - the config loader: every valid form, every default, and
 * every diagnostic with its exact FILE:LINE:COL.
 *
 * Configs are written as strings; "@D" in a config or in an expected message
 * stands for a temporary directory (made per test) holding readable files
 * edge.crt, edge.key, second.crt, second.key, ca.crt, client.crt, client.key,
 * ocsp.der, ticket.key and a directory sub/. The section under test comes
 * first so that its line numbers are the ones written in the test. */
#include "ac_config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"

/* ------------------------------------------------------------ fixtures */

static const char *const files[] = {"edge.crt",   "edge.key", "second.crt",
                                    "second.key", "ca.crt",   "client.crt",
                                    "client.key", "ocsp.der", "ticket.key"};
static char dir[64];

static void setup(void)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/check_config.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (size_t i = 0; i < CR_ARRAY_LEN(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("not really PEM: the loader only checks that it can read it\n", f);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/sub", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
}

static void teardown(void)
{
    char path[PATH_MAX];

    for (size_t i = 0; i < CR_ARRAY_LEN(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/corral.yaml", dir);
    unlink(path);
    rmdir(dir);
}

/* s with every "@D" replaced by the temporary directory; caller frees. */
static char *expand(const char *s)
{
    size_t n = 0, dl = strlen(dir);
    char *out, *o;

    for (const char *p = s; *p != '\0'; p++)
        n += (p[0] == '@' && p[1] == 'D') ? dl : 1;
    out = o = malloc(n + 1);
    ck_assert_ptr_nonnull(out);
    for (const char *p = s; *p != '\0'; p++) {
        if (p[0] == '@' && p[1] == 'D') {
            memcpy(o, dir, dl);
            o += dl;
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static int load(const char *yaml, struct cr_config **cfg, struct cr_diag *d)
{
    char *text = expand(yaml);
    int rc = cr_config_load_string("t.yaml", text, cfg, d);

    free(text);
    return rc;
}

/* Asserts that d holds exactly the messages in want (each "L:C: ..." after
 * "t.yaml:"; a trailing '*' compares only what precedes it). */
static void check_msgs(const struct cr_diag *d, const char *const *want)
{
    char all[8192] = "", exp[1024];
    size_t nwant = 0, used = 0;

    for (size_t i = 0; i < d->nmsgs && used < sizeof(all); i++)
        used += (size_t)snprintf(all + used, sizeof(all) - used, "\n  %s", d->msgs[i]);
    while (want[nwant] != NULL)
        nwant++;
    ck_assert_msg(d->nmsgs == nwant, "want %zu messages, got %zu:%s", nwant, d->nmsgs, all);
    for (size_t i = 0; i < nwant; i++) {
        char *w = expand(want[i]);
        size_t len = strlen(w);
        bool prefix = len > 0 && w[len - 1] == '*';

        snprintf(exp, sizeof(exp), "t.yaml:%.*s", (int)(len - prefix), w);
        free(w);
        if (prefix)
            ck_assert_msg(strncmp(d->msgs[i], exp, strlen(exp)) == 0,
                          "message %zu: want\n  %s*\ngot:%s", i, exp, all);
        else
            ck_assert_msg(strcmp(d->msgs[i], exp) == 0, "message %zu: want\n  %s\ngot:%s", i, exp,
                          all);
    }
}

/* Loads a config that must be valid and produce exactly `warnings`. */
static struct cr_config *load_ok_warn(const char *yaml, const char *const *warnings)
{
    struct cr_config *cfg = NULL;
    struct cr_diag d;
    int rc = load(yaml, &cfg, &d);

    check_msgs(&d, warnings);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(d.nerrors, 0);
    ck_assert_ptr_nonnull(cfg);
    cr_diag_free(&d);
    return cfg;
}

static struct cr_config *load_ok(const char *yaml)
{
    static const char *const none[] = {NULL};

    return load_ok_warn(yaml, none);
}

static void load_fails(const char *yaml, const char *const *msgs)
{
    struct cr_config *cfg = (struct cr_config *)&cfg; /* must be set to NULL */
    struct cr_diag d;
    size_t nerrors = 0;

    ck_assert_int_eq(load(yaml, &cfg, &d), CR_ECONFIG);
    ck_assert_ptr_null(cfg);
    check_msgs(&d, msgs);
    for (size_t i = 0; msgs[i] != NULL; i++)
        nerrors += strstr(msgs[i], ": error: ") != NULL;
    ck_assert_uint_eq(d.nerrors, nerrors);
    cr_diag_free(&d);
}

#define TLS_BLOCK                                                                                  \
    "    tls:\n"                                                                                   \
    "      certificates:\n"                                                                        \
    "        - cert: @D/edge.crt\n"                                                                \
    "          key: @D/edge.key\n"
#define LISTENERS                                                                                  \
    "listeners:\n"                                                                                 \
    "  - address: 127.0.0.1:8443\n" TLS_BLOCK
#define UPSTREAM                                                                                   \
    "upstream:\n"                                                                                  \
    "  addresses: [127.0.0.1:9443]\n"                                                              \
    "  tls:\n"                                                                                     \
    "    ca: @D/ca.crt\n"
#define BASE LISTENERS UPSTREAM

/* ------------------------------------------------------------ valid configs */

START_TEST(minimal_config_gets_every_default)
{
    struct cr_config *cfg = load_ok(BASE);
    const struct cr_cfg_listener *l = &cfg->listeners[0];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr.ss;
    char path[PATH_MAX];

    ck_assert_str_eq(cfg->path, "t.yaml");
    ck_assert_uint_ge(cfg->workers, 1);
    ck_assert_uint_le(cfg->workers, 256);
    ck_assert_uint_eq(cfg->max_connections, 0); /* auto: from the open files limit */
    ck_assert_ptr_null(cfg->user);
    ck_assert_ptr_null(cfg->group);
    ck_assert_ptr_null(cfg->pid_file);
    ck_assert_uint_eq(cfg->drain_timeout_ms, 30000);
    ck_assert_uint_eq(cfg->drain_grace_ms, 10000);
    ck_assert_str_eq(cfg->log.error, "stderr");
    ck_assert_int_eq(cfg->log.level, CR_LOG_INFO);
    ck_assert_str_eq(cfg->log.access, "off");

    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_assert_str_eq(l->name, "listener1");
    ck_assert_str_eq(l->addr.text, "127.0.0.1:8443");
    ck_assert_int_eq(sin->sin_family, AF_INET);
    ck_assert_uint_eq(ntohs(sin->sin_port), 8443);
    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    ck_assert_uint_eq(l->addr.len, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(l->backlog, 4096);
    ck_assert_uint_eq(l->tls.ncerts, 1);
    snprintf(path, sizeof(path), "%s/edge.crt", dir);
    ck_assert_str_eq(l->tls.certs[0].cert, path);
    snprintf(path, sizeof(path), "%s/edge.key", dir);
    ck_assert_str_eq(l->tls.certs[0].key, path);
    ck_assert_ptr_null(l->tls.certs[0].ocsp);
    ck_assert_int_eq(l->tls.min_version, TLS1_2_VERSION);
    ck_assert_ptr_null(l->tls.ciphers);
    ck_assert_ptr_null(l->tls.ciphersuites);
    ck_assert_uint_eq(l->tls.nalpn, 2);
    ck_assert_int_eq(l->tls.alpn[0], CR_ALPN_H2);
    ck_assert_int_eq(l->tls.alpn[1], CR_ALPN_HTTP11);
    ck_assert_uint_eq(l->tls.handshake_timeout_ms, 10000);
    ck_assert_uint_eq(l->tls.client_hello_timeout_ms, 5000);
    ck_assert_uint_eq(l->tls.max_handshakes, 256);
    ck_assert_ptr_null(l->tls.ticket_key_file);
    ck_assert_uint_eq(l->tls.ticket_rotate_ms, 12 * 3600000ULL);
    ck_assert_uint_eq(l->tls.tickets, 1);

    ck_assert_uint_eq(cfg->upstream.naddrs, 1);
    ck_assert_str_eq(cfg->upstream.addrs[0].text, "127.0.0.1:9443");
    ck_assert_int_eq(cfg->upstream.protocol, CR_PROTO_H2);
    ck_assert_uint_eq(cfg->upstream.connections, 2);
    ck_assert_uint_eq(cfg->upstream.pipeline, 1);
    ck_assert_uint_eq(cfg->upstream.max_streams, 0);
    ck_assert_uint_eq(cfg->upstream.queue, 1024);
    ck_assert_uint_eq(cfg->upstream.connect_timeout_ms, 5000);
    ck_assert_uint_eq(cfg->upstream.response_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->upstream.keepalive_ms, 30000);
    ck_assert_uint_eq(cfg->upstream.reconnect_min_ms, 100);
    ck_assert_uint_eq(cfg->upstream.reconnect_max_ms, 5000);
    ck_assert_uint_eq(cfg->upstream.outage_wait_ms, 5000);
    ck_assert_uint_eq(cfg->upstream.headroom, 12);
    ck_assert_uint_eq(cfg->upstream.streaming_after_ms, 10000);
    ck_assert_uint_eq(cfg->upstream.max_streaming, 128);
    ck_assert_uint_eq(cfg->upstream.tunnel_connections, 1000);
    ck_assert(!cfg->upstream.adaptive.enabled);
    ck_assert_uint_eq(cfg->upstream.adaptive.min, 4);
    ck_assert_uint_eq(cfg->upstream.adaptive.interval_ms, 100);
    ck_assert_uint_eq(cfg->upstream.adaptive.min_rtt_interval_ms, 30000);
    ck_assert_uint_eq(cfg->upstream.adaptive.tolerance, 125);
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    ck_assert_str_eq(cfg->upstream.tls.ca, path);
    ck_assert_ptr_null(cfg->upstream.tls.cert);
    ck_assert_ptr_null(cfg->upstream.tls.key);
    ck_assert_ptr_null(cfg->upstream.tls.sni);
    ck_assert(!cfg->upstream.tls.insecure);

    ck_assert_uint_eq(cfg->http.max_header_size, 16384);
    ck_assert_uint_eq(cfg->http.max_headers, 100);
    ck_assert_uint_eq(cfg->http.max_uri, 8192);
    ck_assert_uint_eq(cfg->http.max_body, 0);
    ck_assert_uint_eq(cfg->http.send_min_rate, 512);
    ck_assert_uint_eq(cfg->http.header_timeout_ms, 10000);
    ck_assert_uint_eq(cfg->http.body_timeout_ms, 30000);
    ck_assert_uint_eq(cfg->http.idle_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->http.lingering_time_ms, 5000);
    ck_assert_uint_eq(cfg->http.lingering_timeout_ms, 2000);
    ck_assert_uint_eq(cfg->http.max_streams, 128);
    ck_assert_uint_eq(cfg->http.tunnel_idle_timeout_ms, 600000);
    ck_assert_uint_eq(cfg->http.tunnel_ping_ms, 30000);
    ck_assert_uint_eq(cfg->http.h2_max_control_frames, 1000);
    ck_assert_uint_eq(cfg->http.h2_max_stalled_streams, 16);
    ck_assert_int_eq(cfg->http.forwarded, CR_FWD_XFF);
    ck_assert(cfg->http.request_id);
    ck_assert(cfg->http.traceparent);

    ck_assert_int_eq(cfg->tenants.by, CR_TENANT_BY_NONE);
    ck_assert_ptr_null(cfg->tenants.header);
    ck_assert_double_eq(cfg->tenants.defaults.rate, 0);
    ck_assert_uint_eq(cfg->tenants.defaults.burst, 100);
    ck_assert_uint_eq(cfg->tenants.defaults.concurrency, 0);
    ck_assert_uint_eq(cfg->tenants.defaults.queue, 1000);
    ck_assert_uint_eq(cfg->tenants.defaults.max_wait_ms, 5000);
    ck_assert_uint_eq(cfg->tenants.defaults.weight, 1);
    ck_assert_uint_eq(cfg->tenants.defaults.streaming, 100);
    ck_assert_uint_eq(cfg->tenants.defaults.tunnels, 0);
    ck_assert_double_eq(cfg->tenants.defaults.tunnel_rate, 0);
    ck_assert_uint_eq(cfg->tenants.defaults.tunnel_burst, 10);
    ck_assert_uint_eq(cfg->tenants.nlist, 0);
    ck_assert_ptr_null(cfg->tenants.list);
    ck_assert_uint_eq(cfg->tenants.nroutes, 0);
    ck_assert(!cfg->tenants.global.enabled);

    ck_assert(!cfg->admin.enabled);
    cr_config_free(cfg);
}
END_TEST

static const char full_config[] = "workers: 4\n"
                                  "user: corral\n"
                                  "group: nogroup\n"
                                  "pid_file: /run/corral.pid\n"
                                  "drain_timeout: 1500ms\n"
                                  "max_connections: 250000\n"
                                  "log:\n"
                                  "  error: /var/log/corral/error.log\n"
                                  "  level: debug\n"
                                  "  access: /var/log/corral/access.log\n"
                                  "listeners:\n"
                                  "  - name: public\n"
                                  "    address: '[::1]:443'\n"
                                  "    backlog: 128\n"
                                  "    tls:\n"
                                  "      certificates:\n"
                                  "        - cert: @D/edge.crt\n"
                                  "          key: @D/edge.key\n"
                                  "          ocsp: @D/ocsp.der\n"
                                  "        - {cert: @D/second.crt, key: @D/second.key}\n"
                                  "      min_version: \"1.3\"\n"
                                  "      ciphers: ECDHE-RSA-AES128-GCM-SHA256\n"
                                  "      ciphersuites: TLS_AES_128_GCM_SHA256\n"
                                  "      alpn: [http/1.1]\n"
                                  "      handshake_timeout: 2s\n"
                                  "      max_handshakes: 100000\n"
                                  "      ticket_key_file: @D/ticket.key\n"
                                  "      ticket_rotate: 7d\n"
                                  "      tickets: 0\n"
                                  "upstream:\n"
                                  "  addresses: [127.0.0.1:9443, '[::1]:9444']\n"
                                  "  protocol: http/1.1\n"
                                  "  connections: 64\n"
                                  "  pipeline: 64\n"
                                  "  max_streams: 100000\n"
                                  "  queue: 1000000\n"
                                  "  connect_timeout: 10ms\n"
                                  "  response_timeout: 1d\n"
                                  "  keepalive: 0\n"
                                  "  reconnect_min: 10m\n"
                                  "  reconnect_max: 1h\n"
                                  "  outage_wait: 0\n"
                                  "  headroom: 50\n"
                                  "  streaming_after: 0\n"
                                  "  max_streaming: 0\n"
                                  "  tls:\n"
                                  "    ca: @D/ca.crt\n"
                                  "    cert: @D/client.crt\n"
                                  "    key: @D/client.key\n"
                                  "    sni: lb.test\n"
                                  "    insecure: no\n"
                                  "http:\n"
                                  "  max_header_size: 1m\n"
                                  "  max_headers: 1000\n"
                                  "  max_uri: 256\n"
                                  "  max_body: 10g\n"
                                  "  header_timeout: 100ms\n"
                                  "  body_timeout: 1.5m\n"
                                  "  idle_timeout: 1d\n"
                                  "  lingering_time: 0s\n"
                                  "  lingering_timeout: 1m\n"
                                  "  max_streams: 10000\n"
                                  "  h2_max_control_frames: 1000000\n"
                                  "  h2_max_stalled_streams: 10000\n"
                                  "  forwarded: forwarded\n"
                                  "  request_id: off\n"
                                  "  traceparent: False\n"
                                  "tenants:\n"
                                  "  by: api_key\n"
                                  "  header: Authorization\n"
                                  "  defaults:\n"
                                  "    rate: 100/s\n"
                                  "    burst: 200\n"
                                  "    concurrency: 10\n"
                                  "    queue: 0\n"
                                  "    max_wait: 0\n"
                                  "    weight: 2\n"
                                  "    streaming: 0\n"
                                  "  list:\n"
                                  "    - name: gold\n"
                                  "      rate: 60/min\n"
                                  "      burst: 1\n"
                                  "      concurrency: 1000000\n"
                                  "      queue: 1000000\n"
                                  "      max_wait: 1h\n"
                                  "      weight: 1000\n"
                                  "      streaming: 1000000\n"
                                  "      api_keys: [k-gold-1, k-gold-2]\n"
                                  "      global: true\n"
                                  "    - name: bronze\n"
                                  "      api_keys: [k-bronze]\n"
                                  "  routes:\n"
                                  "    - path_prefix: /admin\n"
                                  "      priority: high\n"
                                  "    - path_prefix: /batch\n"
                                  "      priority: low\n"
                                  "    - path_prefix: /\n"
                                  "  global:\n"
                                  "    address: 127.0.0.1:6380\n"
                                  "    user: corral\n"
                                  "    password_file: @D/ticket.key\n"
                                  "    prefix: 'q:'\n"
                                  "    connect_timeout: 2s\n"
                                  "    command_timeout: 50ms\n"
                                  "    reconnect_max: 10s\n"
                                  "    lease: 25\n"
                                  "    hosts: 3\n"
                                  "    all: false\n"
                                  "admin:\n"
                                  "  address: 127.0.0.1:9000\n";

START_TEST(full_config_sets_every_key)
{
    static const char *const warn[] = {
        "22:16: warning: 'ciphers' only applies to TLS 1.2 and is unused with min_version 1.3",
        NULL};
    struct cr_config *cfg = load_ok_warn(full_config, warn);
    const struct cr_cfg_listener *l = &cfg->listeners[0];
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr.ss;
    const struct cr_cfg_tenant *t;
    char path[PATH_MAX];

    ck_assert_uint_eq(cfg->workers, 4);
    ck_assert_str_eq(cfg->user, "corral");
    ck_assert_str_eq(cfg->group, "nogroup");
    ck_assert_str_eq(cfg->pid_file, "/run/corral.pid");
    ck_assert_uint_eq(cfg->drain_timeout_ms, 1500);
    ck_assert_uint_eq(cfg->max_connections, 250000);
    ck_assert_str_eq(cfg->log.error, "/var/log/corral/error.log");
    ck_assert_int_eq(cfg->log.level, CR_LOG_DEBUG);
    ck_assert_str_eq(cfg->log.access, "/var/log/corral/access.log");

    ck_assert_str_eq(l->name, "public");
    ck_assert_int_eq(sin6->sin6_family, AF_INET6);
    ck_assert_uint_eq(ntohs(sin6->sin6_port), 443);
    ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    ck_assert_str_eq(l->addr.text, "[::1]:443");
    ck_assert_uint_eq(l->backlog, 128);
    ck_assert_uint_eq(l->tls.ncerts, 2);
    snprintf(path, sizeof(path), "%s/ocsp.der", dir);
    ck_assert_str_eq(l->tls.certs[0].ocsp, path);
    snprintf(path, sizeof(path), "%s/second.crt", dir);
    ck_assert_str_eq(l->tls.certs[1].cert, path);
    ck_assert_ptr_null(l->tls.certs[1].ocsp);
    ck_assert_int_eq(l->tls.min_version, TLS1_3_VERSION);
    ck_assert_str_eq(l->tls.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
    ck_assert_str_eq(l->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
    ck_assert_uint_eq(l->tls.nalpn, 1);
    ck_assert_int_eq(l->tls.alpn[0], CR_ALPN_HTTP11);
    ck_assert_uint_eq(l->tls.handshake_timeout_ms, 2000);
    ck_assert_uint_eq(l->tls.max_handshakes, 100000);
    snprintf(path, sizeof(path), "%s/ticket.key", dir);
    ck_assert_str_eq(l->tls.ticket_key_file, path);
    ck_assert_uint_eq(l->tls.ticket_rotate_ms, 7 * 86400000ULL);
    ck_assert_uint_eq(l->tls.tickets, 0);

    ck_assert_uint_eq(cfg->upstream.naddrs, 2);
    ck_assert_str_eq(cfg->upstream.addrs[1].text, "[::1]:9444");
    ck_assert_int_eq(cfg->upstream.addrs[1].ss.ss_family, AF_INET6);
    ck_assert_int_eq(cfg->upstream.protocol, CR_PROTO_HTTP11);
    ck_assert_uint_eq(cfg->upstream.connections, 64);
    ck_assert_uint_eq(cfg->upstream.pipeline, 64);
    ck_assert_uint_eq(cfg->upstream.max_streams, 100000);
    ck_assert_uint_eq(cfg->upstream.queue, 1000000);
    ck_assert_uint_eq(cfg->upstream.connect_timeout_ms, 10);
    ck_assert_uint_eq(cfg->upstream.response_timeout_ms, 86400000);
    ck_assert_uint_eq(cfg->upstream.keepalive_ms, 0);
    ck_assert_uint_eq(cfg->upstream.reconnect_min_ms, 600000);
    ck_assert_uint_eq(cfg->upstream.reconnect_max_ms, 3600000);
    ck_assert_uint_eq(cfg->upstream.outage_wait_ms, 0);
    ck_assert_uint_eq(cfg->upstream.headroom, 50);
    ck_assert_uint_eq(cfg->upstream.streaming_after_ms, 0);
    ck_assert_uint_eq(cfg->upstream.max_streaming, 0);
    snprintf(path, sizeof(path), "%s/client.crt", dir);
    ck_assert_str_eq(cfg->upstream.tls.cert, path);
    snprintf(path, sizeof(path), "%s/client.key", dir);
    ck_assert_str_eq(cfg->upstream.tls.key, path);
    ck_assert_str_eq(cfg->upstream.tls.sni, "lb.test");
    ck_assert(!cfg->upstream.tls.insecure);

    ck_assert_uint_eq(cfg->http.max_header_size, 1048576);
    ck_assert_uint_eq(cfg->http.max_headers, 1000);
    ck_assert_uint_eq(cfg->http.max_uri, 256);
    ck_assert_uint_eq(cfg->http.max_body, 10ULL << 30);
    ck_assert_uint_eq(cfg->http.header_timeout_ms, 100);
    ck_assert_uint_eq(cfg->http.body_timeout_ms, 90000);
    ck_assert_uint_eq(cfg->http.idle_timeout_ms, 86400000);
    ck_assert_uint_eq(cfg->http.lingering_time_ms, 0);
    ck_assert_uint_eq(cfg->http.lingering_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->http.max_streams, 10000);
    ck_assert_uint_eq(cfg->http.h2_max_control_frames, 1000000);
    ck_assert_uint_eq(cfg->http.h2_max_stalled_streams, 10000);
    ck_assert_int_eq(cfg->http.forwarded, CR_FWD_FORWARDED);
    ck_assert(!cfg->http.request_id);
    ck_assert(!cfg->http.traceparent);

    ck_assert_int_eq(cfg->tenants.by, CR_TENANT_BY_API_KEY);
    ck_assert_str_eq(cfg->tenants.header, "Authorization");
    ck_assert_double_eq(cfg->tenants.defaults.rate, 100);
    ck_assert_uint_eq(cfg->tenants.defaults.burst, 200);
    ck_assert_uint_eq(cfg->tenants.defaults.concurrency, 10);
    ck_assert_uint_eq(cfg->tenants.defaults.queue, 0);
    ck_assert_uint_eq(cfg->tenants.defaults.max_wait_ms, 0);
    ck_assert_uint_eq(cfg->tenants.defaults.weight, 2);
    ck_assert_uint_eq(cfg->tenants.defaults.streaming, 0);
    ck_assert_uint_eq(cfg->tenants.nlist, 2);
    t = &cfg->tenants.list[0];
    ck_assert_str_eq(t->name, "gold");
    ck_assert_double_eq(t->limits.rate, 1);
    ck_assert_uint_eq(t->limits.burst, 1);
    ck_assert_uint_eq(t->limits.concurrency, 1000000);
    ck_assert_uint_eq(t->limits.queue, 1000000);
    ck_assert_uint_eq(t->limits.max_wait_ms, 3600000);
    ck_assert_uint_eq(t->limits.weight, 1000);
    ck_assert_uint_eq(t->limits.streaming, 1000000);
    ck_assert_uint_eq(t->napi_keys, 2);
    ck_assert_str_eq(t->api_keys[0], "k-gold-1");
    ck_assert_str_eq(t->api_keys[1], "k-gold-2");
    ck_assert_uint_eq(t->nmatch, 0);
    t = &cfg->tenants.list[1];
    ck_assert_str_eq(t->name, "bronze");
    ck_assert_double_eq(t->limits.rate, 100); /* inherited */
    ck_assert_uint_eq(t->limits.burst, 200);
    ck_assert_uint_eq(t->limits.weight, 2);
    ck_assert_uint_eq(cfg->tenants.nroutes, 3);
    ck_assert_str_eq(cfg->tenants.routes[0].path_prefix, "/admin");
    ck_assert_int_eq(cfg->tenants.routes[0].priority, CR_PRIO_HIGH);
    ck_assert_int_eq(cfg->tenants.routes[1].priority, CR_PRIO_LOW);
    ck_assert_int_eq(cfg->tenants.routes[2].priority, CR_PRIO_NORMAL);
    ck_assert(cfg->tenants.list[0].global);
    ck_assert(!cfg->tenants.list[1].global);
    const struct cr_cfg_quota *q = &cfg->tenants.global;
    ck_assert(q->enabled);
    ck_assert_str_eq(q->addr.text, "127.0.0.1:6380");
    ck_assert_str_eq(q->user, "corral");
    ck_assert_ptr_nonnull(strstr(q->password_file, "ticket.key"));
    ck_assert_str_eq(q->prefix, "q:");
    ck_assert_uint_eq(q->connect_timeout_ms, 2000);
    ck_assert_uint_eq(q->command_timeout_ms, 50);
    ck_assert_uint_eq(q->reconnect_max_ms, 10000);
    ck_assert_uint_eq(q->lease, 25);
    ck_assert_uint_eq(q->hosts, 3);
    ck_assert(!q->all);

    ck_assert(cfg->admin.enabled);
    ck_assert_str_eq(cfg->admin.addr.text, "127.0.0.1:9000");
    cr_config_free(cfg);
}
END_TEST

START_TEST(workers_forms)
{
    struct cr_config *cfg;

    cfg = load_ok("workers: auto\n" BASE);
    ck_assert_uint_ge(cfg->workers, 1);
    ck_assert_uint_le(cfg->workers, 256);
    cr_config_free(cfg);
    cfg = load_ok("workers: 1\n" BASE);
    ck_assert_uint_eq(cfg->workers, 1);
    cr_config_free(cfg);
    cfg = load_ok("workers: '256'\n" BASE);
    ck_assert_uint_eq(cfg->workers, 256);
    cr_config_free(cfg);
}
END_TEST

START_TEST(max_connections_forms)
{
    struct cr_config *cfg;

    cfg = load_ok("max_connections: auto\n" BASE);
    ck_assert_uint_eq(cfg->max_connections, 0);
    cr_config_free(cfg);
    cfg = load_ok("max_connections: 1\n" BASE);
    ck_assert_uint_eq(cfg->max_connections, 1);
    cr_config_free(cfg);
    cfg = load_ok("max_connections: '10000000'\n" BASE);
    ck_assert_uint_eq(cfg->max_connections, 10000000);
    cr_config_free(cfg);
}
END_TEST

START_TEST(boolean_forms)
{
    static const struct {
        const char *text;
        bool want;
    } forms[] = {{"true", true}, {"false", false},  {"yes", true},  {"no", false},
                 {"on", true},   {"off", false},    {"True", true}, {"NO", false},
                 {"'on'", true}, {"\"off\"", false}};
    char yaml[512];

    for (size_t i = 0; i < CR_ARRAY_LEN(forms); i++) {
        struct cr_config *cfg;
        snprintf(yaml, sizeof(yaml), "http:\n  request_id: %s\n" BASE, forms[i].text);
        cfg = load_ok(yaml);
        ck_assert_msg(cfg->http.request_id == forms[i].want, "%s", forms[i].text);
        cr_config_free(cfg);
    }
}
END_TEST

START_TEST(listener_address_forms)
{
    static const struct {
        const char *text;
        int family;
        uint16_t port;
    } forms[] = {
        {"127.0.0.1:8443", AF_INET, 8443}, {"'[::1]:8443'", AF_INET6, 8443},
        {"'*:8443'", AF_INET, 8443},       {"localhost:8443", 0, 8443},
        {"0.0.0.0:1", AF_INET, 1},         {"'[::]:65535'", AF_INET6, 65535},
    };
    char yaml[1024];

    for (size_t i = 0; i < CR_ARRAY_LEN(forms); i++) {
        struct cr_config *cfg;
        const struct cr_addr *a;
        uint16_t port;

        snprintf(yaml, sizeof(yaml), "listeners:\n  - address: %s\n" TLS_BLOCK UPSTREAM,
                 forms[i].text);
        cfg = load_ok(yaml);
        a = &cfg->listeners[0].addr;
        if (forms[i].family != 0)
            ck_assert_int_eq(a->ss.ss_family, forms[i].family);
        if (a->ss.ss_family == AF_INET) {
            port = ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
            ck_assert_uint_eq(a->len, sizeof(struct sockaddr_in));
        } else {
            ck_assert_int_eq(a->ss.ss_family, AF_INET6);
            port = ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
            ck_assert_uint_eq(a->len, sizeof(struct sockaddr_in6));
        }
        ck_assert_uint_eq(port, forms[i].port);
        if (forms[i].text[0] != '\'')
            ck_assert_str_eq(a->text, forms[i].text);
        cr_config_free(cfg);
    }
}
END_TEST

START_TEST(wildcard_is_ipv4_any_and_localhost_is_loopback)
{
    struct cr_config *cfg = load_ok("listeners:\n  - address: '*:8443'\n" TLS_BLOCK
                                    "  - address: localhost:8444\n" TLS_BLOCK UPSTREAM);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->listeners[0].addr.ss;
    const struct cr_addr *lo = &cfg->listeners[1].addr;

    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_ANY);
    ck_assert_str_eq(cfg->listeners[0].addr.text, "*:8443");
    if (lo->ss.ss_family == AF_INET)
        ck_assert_uint_eq(ntohl(((const struct sockaddr_in *)&lo->ss)->sin_addr.s_addr) >> 24, 127);
    else
        ck_assert(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&lo->ss)->sin6_addr));
    cr_config_free(cfg);
}
END_TEST

START_TEST(listener_names_default_to_their_position)
{
    struct cr_config *cfg =
        load_ok("listeners:\n"
                "  - address: 127.0.0.1:1\n" TLS_BLOCK "  - address: 127.0.0.1:2\n"
                "    name: api\n" TLS_BLOCK "  - address: 127.0.0.1:3\n" TLS_BLOCK UPSTREAM);

    ck_assert_uint_eq(cfg->nlisteners, 3);
    ck_assert_str_eq(cfg->listeners[0].name, "listener1");
    ck_assert_str_eq(cfg->listeners[1].name, "api");
    ck_assert_str_eq(cfg->listeners[2].name, "listener3");
    cr_config_free(cfg);
}
END_TEST

START_TEST(alpn_and_min_version_forms)
{
    struct cr_config *cfg;
    const struct cr_cfg_tls_server *t;

    cfg = load_ok("listeners:\n  - address: 127.0.0.1:1\n" TLS_BLOCK
                  "      alpn: [http/1.1, h2]\n      min_version: 1.2\n"
                  "  - address: 127.0.0.1:2\n" TLS_BLOCK
                  "      alpn: [h2]\n      min_version: '1.3'\n" UPSTREAM);
    t = &cfg->listeners[0].tls;
    ck_assert_uint_eq(t->nalpn, 2);
    ck_assert_int_eq(t->alpn[0], CR_ALPN_HTTP11);
    ck_assert_int_eq(t->alpn[1], CR_ALPN_H2);
    ck_assert_int_eq(t->min_version, TLS1_2_VERSION);
    t = &cfg->listeners[1].tls;
    ck_assert_uint_eq(t->nalpn, 1);
    ck_assert_int_eq(t->alpn[0], CR_ALPN_H2);
    ck_assert_int_eq(t->min_version, TLS1_3_VERSION);
    cr_config_free(cfg);
}
END_TEST

START_TEST(enum_forms)
{
    struct cr_config *cfg;

    cfg = load_ok("log: {level: error}\nhttp: {forwarded: 'off'}\n" BASE);
    ck_assert_int_eq(cfg->log.level, CR_LOG_ERROR);
    ck_assert_int_eq(cfg->http.forwarded, CR_FWD_NONE);
    cr_config_free(cfg);
    cfg = load_ok("log: {level: warn}\nhttp: {forwarded: x-forwarded-for}\n" BASE);
    ck_assert_int_eq(cfg->log.level, CR_LOG_WARN);
    ck_assert_int_eq(cfg->http.forwarded, CR_FWD_XFF);
    cr_config_free(cfg);
    cfg = load_ok("log: {level: info}\n" BASE);
    ck_assert_int_eq(cfg->log.level, CR_LOG_INFO);
    cr_config_free(cfg);
}
END_TEST

START_TEST(tenants_by_header_defaults_its_header)
{
    struct cr_config *cfg;

    cfg = load_ok("tenants:\n  by: header\n  list: [{name: a}, {name: b}]\n" BASE);
    ck_assert_int_eq(cfg->tenants.by, CR_TENANT_BY_HEADER);
    ck_assert_str_eq(cfg->tenants.header, "X-Tenant-Id");
    ck_assert_uint_eq(cfg->tenants.nlist, 2);
    ck_assert_str_eq(cfg->tenants.list[1].name, "b");
    cr_config_free(cfg);
    cfg = load_ok("tenants:\n  by: api_key\n  list: [{name: a, api_keys: [x]}]\n" BASE);
    ck_assert_str_eq(cfg->tenants.header, "X-Api-Key");
    cr_config_free(cfg);
    cfg = load_ok("tenants:\n  by: header\n  header: X-Customer\n" BASE);
    ck_assert_str_eq(cfg->tenants.header, "X-Customer");
    cr_config_free(cfg);
    cfg = load_ok("tenants:\n  by: sni\n" BASE);
    ck_assert_int_eq(cfg->tenants.by, CR_TENANT_BY_SNI);
    ck_assert_ptr_null(cfg->tenants.header);
    cr_config_free(cfg);
}
END_TEST

START_TEST(tenants_inherit_defaults_whatever_the_key_order)
{
    struct cr_config *cfg = load_ok("tenants:\n"
                                    "  by: header\n"
                                    "  list:\n"
                                    "    - name: a\n"
                                    "      weight: 5\n"
                                    "    - name: b\n"
                                    "      rate: unlimited\n"
                                    "  defaults:\n"
                                    "    rate: 10/s\n"
                                    "    burst: 20\n"
                                    "    weight: 3\n"
                                    "    max_wait: 250ms\n" BASE);
    const struct cr_cfg_tenant *a = &cfg->tenants.list[0], *b = &cfg->tenants.list[1];

    ck_assert_double_eq(a->limits.rate, 10);
    ck_assert_uint_eq(a->limits.burst, 20);
    ck_assert_uint_eq(a->limits.weight, 5);
    ck_assert_uint_eq(a->limits.max_wait_ms, 250);
    ck_assert_uint_eq(a->limits.queue, 1000); /* built-in default, via defaults */
    ck_assert_double_eq(b->limits.rate, 0);
    ck_assert_uint_eq(b->limits.weight, 3);
    cr_config_free(cfg);
}
END_TEST

START_TEST(tenants_by_sni_and_path_prefix)
{
    struct cr_config *cfg;

    cfg = load_ok("tenants:\n  by: sni\n  list:\n"
                  "    - {name: a, match: [A.Example.COM, '*.a.example.com']}\n"
                  "    - {name: b, match: [b.example.com]}\n" BASE);
    ck_assert_uint_eq(cfg->tenants.list[0].nmatch, 2);
    ck_assert_str_eq(cfg->tenants.list[0].match[0], "a.example.com"); /* lowercased */
    ck_assert_str_eq(cfg->tenants.list[0].match[1], "*.a.example.com");
    ck_assert_str_eq(cfg->tenants.list[1].match[0], "b.example.com");
    cr_config_free(cfg);
    cfg = load_ok("tenants:\n  by: path_prefix\n  list:\n"
                  "    - {name: a, match: [/a, /shared/a]}\n"
                  "    - {name: b, match: [/b]}\n" BASE);
    ck_assert_int_eq(cfg->tenants.by, CR_TENANT_BY_PATH_PREFIX);
    ck_assert_str_eq(cfg->tenants.list[0].match[1], "/shared/a");
    cr_config_free(cfg);
}
END_TEST

START_TEST(admin_section)
{
    struct cr_config *cfg;
    static const char *const warn[] = {
        "1:18: warning: admin address 0.0.0.0:9000 is not a loopback address: the admin "
        "interface is cleartext and unauthenticated",
        NULL};

    cfg = load_ok("admin: {}\n" BASE);
    ck_assert(cfg->admin.enabled);
    ck_assert_str_eq(cfg->admin.addr.text, "127.0.0.1:8081");
    ck_assert_uint_eq(ntohs(((const struct sockaddr_in *)&cfg->admin.addr.ss)->sin_port), 8081);
    ck_assert_uint_eq(cfg->admin.max_connections, 8);
    ck_assert_uint_eq(cfg->admin.timeout_ms, 5000);
    cr_config_free(cfg);
    cfg = load_ok("admin: {max_connections: 2, timeout: 500ms}\n" BASE);
    ck_assert_uint_eq(cfg->admin.max_connections, 2);
    ck_assert_uint_eq(cfg->admin.timeout_ms, 500);
    cr_config_free(cfg);
    cfg = load_ok("admin: {address: '[::1]:9000'}\n" BASE);
    ck_assert_int_eq(cfg->admin.addr.ss.ss_family, AF_INET6);
    cr_config_free(cfg);
    /* an IPv4 loopback address mapped into IPv6 is loopback: no warning */
    cfg = load_ok("admin: {address: '[::ffff:127.0.0.1]:9000'}\n" BASE);
    ck_assert_int_eq(cfg->admin.addr.ss.ss_family, AF_INET6);
    cr_config_free(cfg);
    cfg = load_ok_warn("admin: {address: '0.0.0.0:9000'}\n" BASE, warn);
    ck_assert(cfg->admin.enabled);
    cr_config_free(cfg);
}
END_TEST

/* cr_addr_loopback, which admin.c asks of every admin client (POST /drain
 * is taken from loopback only): a dual-stack socket shows an IPv4 client
 * as ::ffff:a.b.c.d, and ::ffff:127.0.0.1 is as much loopback as
 * 127.0.0.1. */
static bool loopback6(const char *text)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    ck_assert_int_eq(inet_pton(AF_INET6, text, &s6.sin6_addr), 1);
    return cr_addr_loopback((const struct sockaddr *)&s6, sizeof(s6));
}

static bool loopback4(const char *text)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    ck_assert_int_eq(inet_pton(AF_INET, text, &s4.sin_addr), 1);
    return cr_addr_loopback((const struct sockaddr *)&s4, sizeof(s4));
}

START_TEST(loopback_addresses)
{
    ck_assert(loopback4("127.0.0.1"));
    ck_assert(loopback4("127.200.3.4"));
    ck_assert(!loopback4("10.0.0.1"));
    ck_assert(!loopback4("128.0.0.1"));
    ck_assert(loopback6("::1"));
    ck_assert(loopback6("::ffff:127.0.0.1"));
    ck_assert(loopback6("::ffff:127.9.8.7"));
    ck_assert(!loopback6("::ffff:10.0.0.1"));
    ck_assert(!loopback6("::2"));
    ck_assert(!loopback6("::127.0.0.1")); /* v4-compatible, deprecated: not mapped */
    ck_assert(!loopback6("fe80::1"));
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert(!cr_addr_loopback((const struct sockaddr *)&s4, sizeof(s4) - 1));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    ck_assert(!cr_addr_loopback((const struct sockaddr *)&un, sizeof(un)));
}
END_TEST

START_TEST(proxy_protocol_keys)
{
    static const char *const warn[] = {
        "4:17: warning: 'proxy_from' is unused unless 'proxy_protocol' is true", NULL};
    struct cr_config *cfg = load_ok(BASE);
    ck_assert(!cfg->listeners[0].proxy_protocol);
    ck_assert_uint_eq(cfg->listeners[0].nproxy_from, 0);
    cr_config_free(cfg);
    cfg = load_ok("listeners:\n  - address: 127.0.0.1:8443\n"
                  "    tls: {certificates: [{cert: @D/edge.crt, key: @D/edge.key}]}\n"
                  "    proxy_protocol: true\n    proxy_from: [10.0.0.0/8, '::1']\n" UPSTREAM);
    ck_assert(cfg->listeners[0].proxy_protocol);
    ck_assert_uint_eq(cfg->listeners[0].nproxy_from, 2);
    ck_assert_uint_eq(cfg->listeners[0].proxy_from[0].bits, 8);
    ck_assert_int_eq(cfg->listeners[0].proxy_from[1].family, AF_INET6);
    cr_config_free(cfg);
    cfg = load_ok_warn("listeners:\n  - address: 127.0.0.1:8443\n"
                       "    tls: {certificates: [{cert: @D/edge.crt, key: @D/edge.key}]}\n"
                       "    proxy_from: [10.0.0.0/8]\n" UPSTREAM,
                       warn);
    cr_config_free(cfg);
}
END_TEST

START_TEST(insecure_upstream_needs_no_ca_but_warns)
{
    static const char *const warn1[] = {
        "3:19: warning: 'insecure' is true: the upstream's certificate is not verified "
        "(for testing only)",
        NULL};
    static const char *const warn2[] = {
        "4:9: warning: 'ca' is unused because 'insecure' is true",
        "5:15: warning: 'insecure' is true: the upstream's certificate is not verified "
        "(for testing only)",
        NULL};
    struct cr_config *cfg;

    cfg = load_ok_warn(
        "upstream:\n  addresses: [127.0.0.1:9443]\n  tls: {insecure: yes}\n" LISTENERS, warn1);
    ck_assert(cfg->upstream.tls.insecure);
    ck_assert_ptr_null(cfg->upstream.tls.ca);
    cr_config_free(cfg);
    cfg = load_ok_warn("upstream:\n  addresses: [127.0.0.1:9443]\n  tls:\n"
                       "    ca: @D/ca.crt\n    insecure: true\n" LISTENERS,
                       warn2);
    cr_config_free(cfg);
}
END_TEST

START_TEST(warnings_do_not_fail_the_load)
{
    static const char *const warn[] = {
        "4:13: warning: 'pipeline' only applies to protocol http/1.1 and is unused with h2", NULL};
    struct cr_config *cfg;

    cfg = load_ok_warn("upstream:\n  addresses: [127.0.0.1:9443]\n  tls: {ca: @D/ca.crt}\n"
                       "  pipeline: 4\n" LISTENERS,
                       warn);
    ck_assert_uint_eq(cfg->upstream.pipeline, 4);
    cr_config_free(cfg);
    cfg = load_ok("upstream:\n  addresses: [127.0.0.1:9443]\n  tls: {ca: @D/ca.crt}\n"
                  "  pipeline: 4\n  protocol: http/1.1\n" LISTENERS);
    cr_config_free(cfg);
}
END_TEST

START_TEST(anchors_and_aliases_are_followed)
{
    struct cr_config *cfg = load_ok("listeners:\n"
                                    "  - address: 127.0.0.1:1\n"
                                    "    tls: &tls\n"
                                    "      certificates: [{cert: @D/edge.crt, key: @D/edge.key}]\n"
                                    "      alpn: [h2]\n"
                                    "  - address: 127.0.0.1:2\n"
                                    "    tls: *tls\n" UPSTREAM);

    ck_assert_uint_eq(cfg->listeners[1].tls.nalpn, 1);
    ck_assert_ptr_ne(cfg->listeners[0].tls.certs[0].cert, cfg->listeners[1].tls.certs[0].cert);
    ck_assert_str_eq(cfg->listeners[0].tls.certs[0].cert, cfg->listeners[1].tls.certs[0].cert);
    cr_config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------ document limits */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "Billion laughs": nine levels of ten aliases each make 10^9 values from
 * ten lines. Refused at the alias that crosses the budget of values, in well
 * under a second, with nothing walked. */
START_TEST(billion_laughs_fail_fast)
{
    static const char *const want[] = {
        "6:36: error: alias '*e' makes more than 1000000 values once every alias is expanded "
        "(an alias of an alias multiplies: is this an alias bomb?)",
        NULL};
    static const char yaml[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                               "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                               "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                               "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n" BASE;
    double t0 = now_s();

    load_fails(yaml, want);
    ck_assert_msg(now_s() - t0 < 1.0, "took %.3f s", now_s() - t0);
}
END_TEST

/* The same bomb along the schema, where the walker goes: a thousand aliases of
 * a tenant holding a thousand API keys would be a million keys to copy and to
 * check for duplicates. */
START_TEST(alias_bomb_along_the_schema_fails_fast)
{
    /* 5 values before the anchor, 1005 in it, 1005 more for each alias: the
     * 995th alias, on line 3 + 995, crosses 1000000 */
    static const char *const want[] = {
        "998:7: error: alias '*t' makes more than 1000000 values once every alias is expanded "
        "(an alias of an alias multiplies: is this an alias bomb?)",
        NULL};
    size_t cap = 64 * 1024, n = 0;
    char *yaml = malloc(cap);
    double t0;

    ck_assert_ptr_nonnull(yaml);
    n += (size_t)snprintf(yaml + n, cap - n, "tenants:\n  list:\n    - &t {name: t, api_keys: [");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "%sk%d", i ? ", " : "", i);
    n += (size_t)snprintf(yaml + n, cap - n, "]}\n");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "    - *t\n");
    n += (size_t)snprintf(yaml + n, cap - n, BASE);
    ck_assert_uint_lt(n, cap - 1);
    t0 = now_s();
    load_fails(yaml, want);
    ck_assert_msg(now_s() - t0 < 1.0, "took %.3f s", now_s() - t0);
    free(yaml);
}
END_TEST

/* Collections nest at most 64 deep, an alias counting as deep as its node. */
START_TEST(deep_nesting_is_refused)
{
    char yaml[512], opens[80], closes[80];
    static const char *const deep[] = {"1:67: error: collections nested more than 64 deep", NULL};
    static const char *const deep_alias[] = {
        "2:8: error: alias '*x' nests collections more than 64 deep once expanded", NULL};
    static const char *const ok63[] = {"1:1: error: unknown key 'x'*", NULL};

    /* the root mapping is one level: 64 more lists are one too many */
    memset(opens, '[', 64);
    memset(closes, ']', 64);
    snprintf(yaml, sizeof(yaml), "x: %.64s%.64s\n" BASE, opens, closes);
    load_fails(yaml, deep);
    snprintf(yaml, sizeof(yaml), "x: %.63s%.63s\n" BASE, opens, closes);
    load_fails(yaml, ok63);
    /* 60 levels under an anchor, used 4 levels down: 1 + 4 + 60 */
    snprintf(yaml, sizeof(yaml), "x: &x %.60s%.60s\ny: [[[[*x]]]]\n" BASE, opens, closes);
    load_fails(yaml, deep_alias);
}
END_TEST

/* An alias inside the node it names would make the walker go round forever;
 * undefined and duplicate anchors are refused too. */
START_TEST(alias_cycles_and_undefined_anchors_are_refused)
{
    static const char *const cycle[] = {
        "1:21: error: alias '*c' is inside the node it names (defined at 1:10): a cycle", NULL};
    static const char *const undefined[] = {
        "1:10: error: syntax error: found undefined alias '*nope'", NULL};
    static const char *const dup[] = {
        "2:8: error: syntax error: found duplicate anchor '&x' (first at 1:10)", NULL};

    load_fails("tenants: &c {list: [*c]}\n" BASE, cycle);
    load_fails("workers: *nope\n" BASE, undefined);
    load_fails("workers: &x 1\ngroup: &x g\n" BASE, dup);
}
END_TEST

/* Values that must be unique (API keys here) are checked in linear time: a
 * long list of keys does not keep the master busy for seconds (50000 took
 * ~10 s when each was compared with all the earlier ones). */
START_TEST(many_unique_values_load_in_linear_time)
{
    size_t cap = 1024 * 1024, n = 0;
    char *yaml = malloc(cap);
    struct cr_config *cfg;
    double t0;

    ck_assert_ptr_nonnull(yaml);
    n += (size_t)snprintf(yaml + n, cap - n,
                          "tenants:\n  by: api_key\n  list:\n"
                          "    - name: t\n      api_keys: [");
    for (int i = 0; i < 50000; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "%skey-%d", i ? ", " : "", i);
    n += (size_t)snprintf(yaml + n, cap - n, "]\n" BASE);
    ck_assert_uint_lt(n, cap - 1);
    t0 = now_s();
    cfg = load_ok(yaml);
    ck_assert_msg(now_s() - t0 < 3.0, "took %.3f s", now_s() - t0);
    ck_assert_uint_eq(cfg->tenants.list[0].napi_keys, 50000);
    cr_config_free(cfg);
    free(yaml);
}
END_TEST

/* Anchors used many times are fine under the budget: 2000 tenants sharing
 * one set of limits through an alias. */
START_TEST(many_aliases_under_the_budget_load)
{
    size_t cap = 256 * 1024, n = 0;
    char *yaml = malloc(cap);
    struct cr_config *cfg;

    ck_assert_ptr_nonnull(yaml);
    n += (size_t)snprintf(yaml + n, cap - n, "tenants:\n  by: api_key\n  list:\n");
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "    - {name: t%d, rate: %s, api_keys: [k%d]}\n",
                              i, i ? "*r" : "&r 10/s", i);
    n += (size_t)snprintf(yaml + n, cap - n, BASE);
    ck_assert_uint_lt(n, cap - 1);
    cfg = load_ok(yaml);
    ck_assert_uint_eq(cfg->tenants.nlist, 2000);
    ck_assert(cfg->tenants.list[1999].limits.rate == 10.0);
    cr_config_free(cfg);
    free(yaml);
}
END_TEST

/* Relative paths in a file are relative to the file's directory; in a string,
 * to the working directory. */
START_TEST(relative_paths)
{
    static const char yaml[] = "pid_file: run/corral.pid\n"
                               "log: {error: logs/error.log, access: stdout}\n"
                               "listeners:\n"
                               "  - address: 127.0.0.1:8443\n"
                               "    tls:\n"
                               "      certificates: [{cert: edge.crt, key: ./edge.key}]\n"
                               "upstream:\n"
                               "  addresses: [127.0.0.1:9443]\n"
                               "  tls: {ca: ca.crt}\n";
    char path[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 32];
    struct cr_config *cfg;
    struct cr_diag d;
    FILE *f;

    snprintf(path, sizeof(path), "%s/corral.yaml", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    ck_assert_ptr_nonnull(realpath(dir, real));
    ck_assert_int_eq(cr_config_load(path, &cfg, &d), 0);
    ck_assert_uint_eq(d.nmsgs, 0);
    ck_assert_str_eq(cfg->path, path);
    snprintf(want, sizeof(want), "%s/edge.crt", real);
    ck_assert_str_eq(cfg->listeners[0].tls.certs[0].cert, want);
    snprintf(want, sizeof(want), "%s/./edge.key", real);
    ck_assert_str_eq(cfg->listeners[0].tls.certs[0].key, want);
    snprintf(want, sizeof(want), "%s/run/corral.pid", real);
    ck_assert_str_eq(cfg->pid_file, want);
    snprintf(want, sizeof(want), "%s/logs/error.log", real);
    ck_assert_str_eq(cfg->log.error, want);
    ck_assert_str_eq(cfg->log.access, "stdout");
    cr_config_free(cfg);
    cr_diag_free(&d);

    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_int_eq(cr_config_load_string("t.yaml", yaml, &cfg, &d), 0);
    ck_assert_str_eq(cfg->listeners[0].tls.certs[0].cert, "edge.crt");
    ck_assert_str_eq(cfg->upstream.tls.ca, "ca.crt");
    cr_config_free(cfg);
    cr_diag_free(&d);
    ck_assert_int_eq(chdir("/"), 0);
    ck_assert_int_eq(cr_config_load_string("t.yaml", yaml, &cfg, &d), CR_ECONFIG);
    ck_assert_uint_eq(d.nerrors, 3);
    ck_assert_str_eq(d.msgs[0], "t.yaml:6:29: error: cannot read 'cert' file edge.crt: No such "
                                "file or directory");
    cr_diag_free(&d);
}
END_TEST

START_TEST(file_errors)
{
    struct cr_config *cfg = (struct cr_config *)&cfg;
    struct cr_diag d;
    char path[PATH_MAX], want[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/absent.yaml", dir);
    ck_assert_int_eq(cr_config_load(path, &cfg, &d), CR_ECONFIG);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(d.nmsgs, 1);
    ck_assert_uint_eq(d.nerrors, 1);
    snprintf(want, sizeof(want),
             "%s: error: cannot read configuration: No such file or "
             "directory",
             path);
    ck_assert_str_eq(d.msgs[0], want);
    cr_diag_free(&d);
    snprintf(path, sizeof(path), "%s/sub", dir);
    ck_assert_int_eq(cr_config_load(path, &cfg, &d), CR_ECONFIG);
    snprintf(want, sizeof(want), "%s: error: cannot read configuration: Is a directory", path);
    ck_assert_str_eq(d.msgs[0], want);
    cr_diag_free(&d);
    cr_diag_free(&d); /* idempotent */
}
END_TEST

/* The built-in default loads whenever its certificates exist; when they do
 * not, the only errors are about those files. */
START_TEST(builtin_default)
{
    struct cr_config *cfg = NULL;
    struct cr_diag d;
    int rc = cr_config_load_default(&cfg, &d);

    for (size_t i = 0; i < d.nmsgs; i++) {
        ck_assert_msg(strncmp(d.msgs[i], "<built-in>:", 11) == 0, "%s", d.msgs[i]);
        ck_assert_msg(strstr(d.msgs[i], ": error: cannot read '") != NULL, "%s", d.msgs[i]);
        ck_assert_msg(strstr(d.msgs[i], CR_STATEDIR "/") != NULL, "%s", d.msgs[i]);
    }
    if (rc == 0) {
        ck_assert_uint_eq(d.nmsgs, 0);
        ck_assert_str_eq(cfg->path, "<built-in>");
        ck_assert_str_eq(cfg->listeners[0].name, "https");
        ck_assert_str_eq(cfg->listeners[0].addr.text, "127.0.0.1:8443");
        ck_assert_str_eq(cfg->listeners[0].tls.certs[0].cert, CR_STATEDIR "/edge.crt");
        ck_assert_str_eq(cfg->upstream.addrs[0].text, "127.0.0.1:9443");
        ck_assert_str_eq(cfg->upstream.tls.sni, "lb.test");
        ck_assert_str_eq(cfg->upstream.tls.cert, CR_STATEDIR "/client.crt");
        ck_assert_str_eq(cfg->log.access, "stdout");
        ck_assert_int_eq(cfg->upstream.protocol, CR_PROTO_H2);
    } else {
        ck_assert_int_eq(rc, CR_ECONFIG);
        ck_assert_ptr_null(cfg);
        ck_assert_uint_ge(d.nerrors, 1);
        ck_assert_uint_eq(d.nerrors, d.nmsgs);
    }
    cr_config_free(cfg);
    cr_diag_free(&d);
}
END_TEST

START_TEST(builtin_default_without_its_files)
{
    /* The same text with the state directory replaced by an empty one. */
    const char *src = cr_config_default_yaml;
    size_t sl = strlen(CR_STATEDIR);
    char text[4096], *o = text;
    struct cr_config *cfg;
    struct cr_diag d;

    for (const char *p = src; *p != '\0';) {
        if (strncmp(p, CR_STATEDIR, sl) == 0) {
            o += sprintf(o, "%s/sub", dir);
            p += sl;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    ck_assert_int_eq(cr_config_load_string("<built-in>", text, &cfg, &d), CR_ECONFIG);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(d.nerrors, 5);
    for (size_t i = 0; i < d.nmsgs; i++)
        ck_assert_msg(strstr(d.msgs[i], "error: cannot read '") != NULL, "%s", d.msgs[i]);
    cr_diag_free(&d);
}
END_TEST

START_TEST(diag_print_writes_one_line_each)
{
    struct cr_config *cfg;
    struct cr_diag d;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    ck_assert_int_eq(load("workers: 0\nuser: []\n" BASE, &cfg, &d), CR_ECONFIG);
    f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    cr_diag_print(&d, f);
    fclose(f);
    ck_assert_str_eq(buf, "t.yaml:1:10: error: 'workers' must be 'auto' or an integer between "
                          "1 and 256, got '0'\n"
                          "t.yaml:2:7: error: 'user' must be a string, got a list\n");
    free(buf);
    cr_diag_free(&d);
    cr_config_free(NULL);
}
END_TEST

/* ------------------------------------------------------------ one value */

/* PREFIX + VALUE + "\n" + REST must load, or fail with exactly MSG. */
struct form {
    const char *prefix;
    const char *value;
    const char *rest;
    const char *msg; /* NULL = valid */
};

#define HTTP(key) "http:\n  " key ": "
#define TLSKEY(key)                                                                                \
    "listeners:\n  - address: 127.0.0.1:8443\n    tls:\n"                                          \
    "      certificates: [{cert: @D/edge.crt, key: @D/edge.key}]\n      " key ": "
#define UPKEY(key) "upstream:\n  addresses: [127.0.0.1:9443]\n  tls: {ca: @D/ca.crt}\n  " key ": "
#define ADDR                                                                                       \
    "listeners:\n  - tls: {certificates: [{cert: @D/edge.crt, key: @D/edge.key}]}\n"               \
    "    address: "
#define DEFAULTS(key) "tenants:\n  defaults:\n    " key ": "
#define PPKEY(key)                                                                                 \
    "listeners:\n  - address: 127.0.0.1:8443\n"                                                     \
    "    tls: {certificates: [{cert: @D/edge.crt, key: @D/edge.key}]}\n    " key ": "

static const struct form forms[] = {
    /* integers: plain decimal only */
    {HTTP("max_headers"), "1", BASE, NULL},
    {HTTP("max_headers"), "1000", BASE, NULL},
    {HTTP("max_headers"), "'50'", BASE, NULL},
    {HTTP("max_headers"), "0", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '0'"},
    {HTTP("max_headers"), "1001", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '1001'"},
    {HTTP("max_headers"), "-1", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '-1'"},
    {HTTP("max_headers"), "+5", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '+5'"},
    {HTTP("max_headers"), "0x10", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '0x10'"},
    {HTTP("max_headers"), "010", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '010'"},
    {HTTP("max_headers"), "1.5", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '1.5'"},
    {HTTP("max_headers"), "1e3", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '1e3'"},
    {HTTP("max_headers"), "1_000", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got '1_000'"},
    {HTTP("max_headers"), "99999999999999999999999", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got "
     "'99999999999999999999999'"},
    {HTTP("max_headers"), "{}", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got a mapping"},
    {HTTP("max_headers"), "[1]", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got a list"},
    {HTTP("max_headers"), "", BASE,
     "2:15: error: 'max_headers' must be an integer between 1 and 1000, got an empty value"},
    {HTTP("max_headers"), "~", BASE,
     "2:16: error: 'max_headers' must be an integer between 1 and 1000, got null"},
    {HTTP("max_streams"), "0", BASE,
     "2:16: error: 'max_streams' must be an integer between 1 and 10000, got '0'"},
    {HTTP("h2_max_control_frames"), "0", BASE,
     "2:26: error: 'h2_max_control_frames' must be an integer between 1 and 1000000, got '0'"},
    {HTTP("h2_max_stalled_streams"), "0", BASE,
     "2:27: error: 'h2_max_stalled_streams' must be an integer between 1 and 10000, got '0'"},
    /* sizes */
    {HTTP("max_header_size"), "1k", BASE, NULL},
    {HTTP("max_header_size"), "1024", BASE, NULL},
    {HTTP("max_header_size"), "1MiB", BASE, NULL},
    {HTTP("max_header_size"), "1023", BASE,
     "2:20: error: 'max_header_size' must be a size between 1k and 1m, got '1023'"},
    {HTTP("max_header_size"), "2m", BASE,
     "2:20: error: 'max_header_size' must be a size between 1k and 1m, got '2m'"},
    {HTTP("max_header_size"), "16q", BASE,
     "2:20: error: 'max_header_size': invalid size '16q': unknown unit 'q' (use b, k, m, g)"},
    {HTTP("max_header_size"), "1.5k", BASE,
     "2:20: error: 'max_header_size': invalid size '1.5k': must be a whole number (write "
     "1536k, not 1.5m)"},
    {HTTP("max_header_size"), "{a: 1}", BASE,
     "2:20: error: 'max_header_size' must be a size between 1k and 1m, got a mapping"},
    {HTTP("max_uri"), "255", BASE,
     "2:12: error: 'max_uri' must be a size between 256 and 1m, got '255'"},
    {HTTP("max_body"), "0", BASE, NULL},
    {HTTP("send_min_rate"), "0", BASE, NULL},
    {HTTP("send_min_rate"), "1g", BASE, NULL},
    {HTTP("send_min_rate"), "2g", BASE,
     "2:18: error: 'send_min_rate' must be a size between 0 and 1g, got '2g'"},
    {HTTP("max_body"), "16g", BASE, NULL},
    {HTTP("max_body"), "lots", BASE,
     "2:13: error: 'max_body': invalid size 'lots': expected a number and an optional unit, "
     "e.g. 512, 16k, 1m"},
    {HTTP("max_body"), "[]", BASE, "2:13: error: 'max_body' must be a size, got a list"},
    /* durations */
    {HTTP("idle_timeout"), "100ms", BASE, NULL},
    {HTTP("tunnel_ping"), "0s", BASE, NULL},
    {HTTP("tunnel_idle_timeout"), "0s", BASE, NULL},
    {HTTP("idle_timeout"), "1d", BASE, NULL},
    {HTTP("idle_timeout"), "5x", BASE,
     "2:17: error: 'idle_timeout': invalid duration '5x': unknown unit 'x' (use us, ms, s, m, "
     "h, d)"},
    {HTTP("idle_timeout"), "5", BASE,
     "2:17: error: 'idle_timeout': invalid duration '5': missing unit (use us, ms, s, m, h, d)"},
    {HTTP("idle_timeout"), "99ms", BASE,
     "2:17: error: 'idle_timeout' must be a duration between 100ms and 1d, got '99ms'"},
    {HTTP("idle_timeout"), "25h", BASE,
     "2:17: error: 'idle_timeout' must be a duration between 100ms and 1d, got '25h'"},
    {HTTP("header_timeout"), "0", BASE,
     "2:19: error: 'header_timeout' must be a duration between 100ms and 1d, got '0'"},
    {HTTP("body_timeout"), "-1s", BASE,
     "2:17: error: 'body_timeout': invalid duration '-1s': must not be negative"},
    {HTTP("body_timeout"), "{}", BASE,
     "2:17: error: 'body_timeout' must be a duration between 100ms and 1d, got a mapping"},
    {HTTP("lingering_time"), "0", BASE, NULL},
    {HTTP("lingering_time"), "11m", BASE,
     "2:19: error: 'lingering_time' must be a duration between 0 and 10m, got '11m'"},
    {HTTP("lingering_timeout"), "10ms", BASE, NULL},
    {HTTP("lingering_timeout"), "0", BASE,
     "2:22: error: 'lingering_timeout' must be a duration between 10ms and 1m, got '0'"},
    {"drain_timeout: ", "0", BASE, NULL},
    {"drain_timeout: ", "1h", BASE, NULL},
    {"drain_timeout: ", "2h", BASE,
     "1:16: error: 'drain_timeout' must be a duration between 0 and 1h, got '2h'"},
    {"drain_grace: ", "0", BASE, NULL},
    {"drain_grace: ", "1h", BASE, NULL},
    {"drain_grace: ", "61m", BASE,
     "1:14: error: 'drain_grace' must be a duration between 0 and 1h, got '61m'"},
    /* enums and booleans */
    {HTTP("forwarded"), "xff", BASE,
     "2:14: error: 'forwarded' must be one of x-forwarded-for, forwarded, off, got 'xff'"},
    {HTTP("forwarded"), "Forwarded", BASE,
     "2:14: error: 'forwarded' must be one of x-forwarded-for, forwarded, off, got 'Forwarded'"},
    {HTTP("forwarded"), "{a: 1}", BASE,
     "2:14: error: 'forwarded' must be one of x-forwarded-for, forwarded, off, got a mapping"},
    {HTTP("request_id"), "maybe", BASE,
     "2:15: error: 'request_id' must be a boolean (true/false, yes/no, on/off), got 'maybe'"},
    {HTTP("traceparent"), "1", BASE,
     "2:16: error: 'traceparent' must be a boolean (true/false, yes/no, on/off), got '1'"},
    {HTTP("traceparent"), "[]", BASE,
     "2:16: error: 'traceparent' must be a boolean (true/false, yes/no, on/off), got a list"},
    {"log:\n  level: ", "loud", BASE,
     "2:10: error: 'level' must be one of error, warn, info, debug, got 'loud'"},
    {"log:\n  level: ", "INFO", BASE,
     "2:10: error: 'level' must be one of error, warn, info, debug, got 'INFO'"},
    /* strings and paths */
    {"user: ", "www-data", BASE, NULL},
    {"user: ", "{}", BASE, "1:7: error: 'user' must be a string, got a mapping"},
    {"user: ", "''", BASE, "1:7: error: 'user' must be a string, got ''"},
    {"group: ", "", BASE, "1:7: error: 'group' must be a string, got an empty value"},
    {"pid_file: ", "[a]", BASE, "1:11: error: 'pid_file' must be a file path, got a list"},
    {"log:\n  error: ", "{}", BASE, "2:10: error: 'error' must be a string, got a mapping"},
    {"log:\n  access: ", "null", BASE, "2:11: error: 'access' must be a string, got null"},
    /* workers */
    {"workers: ", "0", BASE,
     "1:10: error: 'workers' must be 'auto' or an integer between 1 and 256, got '0'"},
    {"workers: ", "257", BASE,
     "1:10: error: 'workers' must be 'auto' or an integer between 1 and 256, got '257'"},
    {"workers: ", "Auto", BASE,
     "1:10: error: 'workers' must be 'auto' or an integer between 1 and 256, got 'Auto'"},
    {"workers: ", "{n: 1}", BASE,
     "1:10: error: 'workers' must be 'auto' or an integer between 1 and 256, got a mapping"},
    /* max_connections */
    {"max_connections: ", "0", BASE,
     "1:18: error: 'max_connections' must be 'auto' or an integer between 1 and 10000000, "
     "got '0'"},
    {"max_connections: ", "10000001", BASE,
     "1:18: error: 'max_connections' must be 'auto' or an integer between 1 and 10000000, "
     "got '10000001'"},
    {"max_connections: ", "-5", BASE,
     "1:18: error: 'max_connections' must be 'auto' or an integer between 1 and 10000000, "
     "got '-5'"},
    {"max_connections: ", "[1]", BASE,
     "1:18: error: 'max_connections' must be 'auto' or an integer between 1 and 10000000, "
     "got a list"},
    /* listener addresses */
    {ADDR, "127.0.0.1", UPSTREAM,
     "3:14: error: 'address': invalid address '127.0.0.1': missing port (use HOST:PORT)"},
    {ADDR, "::1:8443", UPSTREAM,
     "3:14: error: 'address': invalid address '::1:8443': IPv6 addresses must be in brackets, "
     "e.g. [::1]:8443"},
    {ADDR, "'[::1'", UPSTREAM,
     "3:14: error: 'address': invalid address '[::1': missing ']' after the IPv6 address"},
    {ADDR, "'[::1]8443'", UPSTREAM,
     "3:14: error: 'address': invalid address '[::1]8443': missing port (use HOST:PORT)"},
    {ADDR, "':8443'", UPSTREAM,
     "3:14: error: 'address': invalid address ':8443': missing host (use *:PORT for every "
     "address)"},
    {ADDR, "127.0.0.1:0", UPSTREAM,
     "3:14: error: 'address': invalid address '127.0.0.1:0': port must be a number between 1 "
     "and 65535"},
    {ADDR, "127.0.0.1:65536", UPSTREAM,
     "3:14: error: 'address': invalid address '127.0.0.1:65536': port must be a number "
     "between 1 and 65535"},
    {ADDR, "127.0.0.1:https", UPSTREAM,
     "3:14: error: 'address': invalid address '127.0.0.1:https': port must be a number "
     "between 1 and 65535"},
    {ADDR, "'127.0.0.1:'", UPSTREAM,
     "3:14: error: 'address': invalid address '127.0.0.1:': port must be a number between 1 "
     "and 65535"},
    {ADDR, "'[zz]:80'", UPSTREAM,
     "3:14: error: 'address': invalid address '[zz]:80': invalid IPv6 address 'zz'"},
    {ADDR, "1.2.3:80", UPSTREAM,
     "3:14: error: 'address': invalid address '1.2.3:80': invalid IPv4 address '1.2.3'"},
    {ADDR, "256.0.0.1:80", UPSTREAM,
     "3:14: error: 'address': invalid address '256.0.0.1:80': invalid IPv4 address "
     "'256.0.0.1'"},
    {ADDR, "no-such-host.invalid:80", UPSTREAM,
     "3:14: error: 'address': invalid address 'no-such-host.invalid:80': cannot resolve "
     "'no-such-host.invalid': *"},
    {ADDR, "a-very-long-host-name-that-does-not-fit.in.the.text.field.example:1", UPSTREAM,
     "3:14: error: 'address': invalid address "
     "'a-very-long-host-name-that-does-not-fit.in.the.text.field.example:1': too long (at "
     "most 63 characters)"},
    {ADDR, "[127.0.0.1:80]", UPSTREAM,
     "3:14: error: 'address' must be a HOST:PORT address, got a list"},
    /* listener TLS */
    {TLSKEY("min_version"), "1.2", UPSTREAM, NULL},
    {TLSKEY("min_version"), "1.0", UPSTREAM,
     "5:20: error: 'min_version' 1.0 is refused: TLS 1.0 and 1.1 are obsolete and insecure "
     "(use 1.2 or 1.3)"},
    {TLSKEY("min_version"), "'1.1'", UPSTREAM,
     "5:20: error: 'min_version' 1.1 is refused: TLS 1.0 and 1.1 are obsolete and insecure "
     "(use 1.2 or 1.3)"},
    {TLSKEY("min_version"), "2", UPSTREAM,
     "5:20: error: 'min_version' must be one of 1.2, 1.3, got '2'"},
    {TLSKEY("min_version"), "[1.2]", UPSTREAM,
     "5:20: error: 'min_version' must be one of 1.2, 1.3, got a list"},
    {TLSKEY("alpn"), "[]", UPSTREAM,
     "5:13: error: 'alpn' must be a list of h2 and/or http/1.1, got an empty list"},
    {TLSKEY("alpn"), "h2", UPSTREAM,
     "5:13: error: 'alpn' must be a list of h2 and/or http/1.1, got 'h2'"},
    {TLSKEY("alpn"), "[h2, h3]", UPSTREAM,
     "5:18: error: 'alpn' entries must be h2 or http/1.1, got 'h3'"},
    {TLSKEY("alpn"), "[h2, {a: 1}]", UPSTREAM,
     "5:18: error: 'alpn' entries must be h2 or http/1.1, got a mapping"},
    {TLSKEY("alpn"), "[http/1.1, http/1.1]", UPSTREAM,
     "5:24: error: duplicate ALPN protocol 'http/1.1'"},
    {TLSKEY("handshake_timeout"), "100ms", UPSTREAM, NULL},
    {TLSKEY("handshake_timeout"), "10m", UPSTREAM, NULL},
    {TLSKEY("handshake_timeout"), "50ms", UPSTREAM,
     "5:26: error: 'handshake_timeout' must be a duration between 100ms and 10m, got '50ms'"},
    {TLSKEY("client_hello_timeout"), "100ms", UPSTREAM, NULL},
    {TLSKEY("client_hello_timeout"), "11m", UPSTREAM,
     "5:29: error: 'client_hello_timeout' must be a duration between 100ms and 10m, got '11m'"},
    {TLSKEY("max_handshakes"), "0", UPSTREAM,
     "5:23: error: 'max_handshakes' must be an integer between 1 and 100000, got '0'"},
    {TLSKEY("ticket_rotate"), "1m", UPSTREAM, NULL},
    {TLSKEY("ticket_rotate"), "500ms", UPSTREAM,
     "5:22: error: 'ticket_rotate' must be a duration between 1s and 7d, got '500ms'"},
    {TLSKEY("ticket_rotate"), "8d", UPSTREAM,
     "5:22: error: 'ticket_rotate' must be a duration between 1s and 7d, got '8d'"},
    {PPKEY("proxy_from"), "[10.0.0.0/8, 192.0.2.7, '2001:db8::/32']\n    proxy_protocol: true",
     UPSTREAM, NULL},
    {PPKEY("proxy_protocol"), "true", UPSTREAM,
     "4:21: error: 'proxy_protocol' needs 'proxy_from': the balancers' addresses, the only ones "
     "allowed to name another client"},
    {PPKEY("proxy_protocol"), "true\n    proxy_from: [10.1.0.0/8]", UPSTREAM,
     "5:18: error: 'proxy_from' entries must be an address or ADDRESS/BITS with no host bits set "
     "(10.0.0.0/8, 2001:db8::/32), got '10.1.0.0/8'"},
    {PPKEY("proxy_protocol"), "true\n    proxy_from: []", UPSTREAM,
     "5:17: error: 'proxy_from' must be a list of 1 to 32 addresses or CIDR ranges, got a list "
     "of another length"},
    {TLSKEY("tickets"), "11", UPSTREAM,
     "5:16: error: 'tickets' must be an integer between 0 and 10, got '11'"},
    {TLSKEY("ticket_key_file"), "@D/none.key", UPSTREAM,
     "5:24: error: cannot read 'ticket_key_file' file @D/none.key: No such file or directory"},
    {TLSKEY("ciphers"), "NOPE", UPSTREAM,
     "5:16: error: 'ciphers': no TLS 1.2 cipher matches 'NOPE'"},
    {TLSKEY("ciphers"), "{}", UPSTREAM, "5:16: error: 'ciphers' must be a string, got a mapping"},
    {TLSKEY("ciphersuites"), "NOPE", UPSTREAM,
     "5:21: error: 'ciphersuites': invalid TLS 1.3 cipher suites 'NOPE'"},
    {TLSKEY("certificates"), "[]", UPSTREAM,
     "5:7: error: duplicate key 'certificates' (first defined at 4:7)"},
    /* upstream */
    {UPKEY("protocol"), "h3", LISTENERS,
     "4:13: error: 'protocol' must be one of h2, http/1.1, got 'h3'"},
    {UPKEY("connections"), "abc", LISTENERS,
     "4:16: error: 'connections' must be an integer between 1 and 64, got 'abc'"},
    {UPKEY("connections"), "65", LISTENERS,
     "4:16: error: 'connections' must be an integer between 1 and 64, got '65'"},
    {UPKEY("pipeline"), "0", LISTENERS,
     "4:13: error: 'pipeline' must be an integer between 1 and 64, got '0'"},
    {UPKEY("max_streams"), "100001", LISTENERS,
     "4:16: error: 'max_streams' must be an integer between 0 and 100000, got '100001'"},
    {UPKEY("queue"), "0", LISTENERS, NULL},
    {UPKEY("queue"), "1000001", LISTENERS,
     "4:10: error: 'queue' must be an integer between 0 and 1000000, got '1000001'"},
    {UPKEY("connect_timeout"), "9ms", LISTENERS,
     "4:20: error: 'connect_timeout' must be a duration between 10ms and 10m, got '9ms'"},
    {UPKEY("response_timeout"), "2d", LISTENERS,
     "4:21: error: 'response_timeout' must be a duration between 10ms and 1d, got '2d'"},
    {UPKEY("keepalive"), "1.5d", LISTENERS,
     "4:14: error: 'keepalive' must be a duration between 0 and 1d, got '1.5d'"},
    {UPKEY("reconnect_min"), "9ms", LISTENERS,
     "4:18: error: 'reconnect_min' must be a duration between 10ms and 10m, got '9ms'"},
    {UPKEY("reconnect_max"), "2h", LISTENERS,
     "4:18: error: 'reconnect_max' must be a duration between 10ms and 1h, got '2h'"},
    {UPKEY("outage_wait"), "2h", LISTENERS,
     "4:16: error: 'outage_wait' must be a duration between 0 and 1h, got '2h'"},
    {UPKEY("headroom"), "51", LISTENERS,
     "4:13: error: 'headroom' must be an integer between 0 and 50, got '51'"},
    {UPKEY("streaming_after"), "2d", LISTENERS,
     "4:20: error: 'streaming_after' must be a duration between 0 and 1d, got '2d'"},
    {UPKEY("max_streaming"), "100001", LISTENERS,
     "4:18: error: 'max_streaming' must be an integer between 0 and 100000, got '100001'"},
    {UPKEY("tunnel_connections"), "100001", LISTENERS,
     "4:23: error: 'tunnel_connections' must be an integer between 0 and 100000, got '100001'"},
    {UPKEY("adaptive"), "{enabled: true, min: 1, interval: 10ms, min_rtt_interval: 1s, "
                        "tolerance: 100}", LISTENERS, NULL},
    {UPKEY("adaptive"), "{min: 100000, interval: 10s, min_rtt_interval: 1h, tolerance: 400}",
     LISTENERS, NULL},
    {UPKEY("adaptive"), "{min: 0}", LISTENERS,
     "4:19: error: 'min' must be an integer between 1 and 100000, got '0'"},
    {UPKEY("adaptive"), "{interval: 5ms}", LISTENERS,
     "4:24: error: 'interval' must be a duration between 10ms and 10s, got '5ms'"},
    {UPKEY("adaptive"), "{min_rtt_interval: 500ms}", LISTENERS,
     "4:32: error: 'min_rtt_interval' must be a duration between 1s and 1h, got '500ms'"},
    {UPKEY("adaptive"), "{tolerance: 99}", LISTENERS,
     "4:25: error: 'tolerance' must be an integer between 100 and 400, got '99'"},
    {UPKEY("adaptive"), "{enabled: maybe}", LISTENERS,
     "4:23: error: 'enabled' must be a boolean (true/false, yes/no, on/off), got 'maybe'"},
    {UPKEY("reconnect_max"), "50ms", LISTENERS,
     "4:18: error: 'reconnect_max' (50ms) is below 'reconnect_min' (100ms)"},
    {UPKEY("reconnect_min"), "10s", LISTENERS,
     "4:18: error: 'reconnect_max' (5000ms) is below 'reconnect_min' (10000ms)"},
    /* tenants' limits */
    {DEFAULTS("rate"), "unlimited", BASE, NULL},
    {DEFAULTS("rate"), "0.5/s", BASE, NULL},
    {DEFAULTS("rate"), "10/x", BASE,
     "3:11: error: 'rate': invalid rate '10/x': unknown unit 'x' (use s, min or h)"},
    {DEFAULTS("rate"), "0/s", BASE,
     "3:11: error: 'rate': invalid rate '0/s': must be greater than 0 (use 'unlimited' for no "
     "limit)"},
    {DEFAULTS("rate"), "100", BASE,
     "3:11: error: 'rate': invalid rate '100': missing '/UNIT' after the number, e.g. 100/s or "
     "60/min"},
    {DEFAULTS("rate"), "[1]", BASE,
     "3:11: error: 'rate' must be a rate (e.g. 100/s, 60/min or unlimited), got a list"},
    {DEFAULTS("burst"), "0", BASE,
     "3:12: error: 'burst' must be an integer between 1 and 10000000, got '0'"},
    {DEFAULTS("concurrency"), "-1", BASE,
     "3:18: error: 'concurrency' must be an integer between 0 and 1000000, got '-1'"},
    {DEFAULTS("queue"), "1000001", BASE,
     "3:12: error: 'queue' must be an integer between 0 and 1000000, got '1000001'"},
    {DEFAULTS("max_wait"), "61m", BASE,
     "3:15: error: 'max_wait' must be a duration between 0 and 1h, got '61m'"},
    {DEFAULTS("weight"), "0", BASE,
     "3:13: error: 'weight' must be an integer between 1 and 1000, got '0'"},
    {DEFAULTS("weight"), "1001", BASE,
     "3:13: error: 'weight' must be an integer between 1 and 1000, got '1001'"},
    {DEFAULTS("streaming"), "1000001", BASE,
     "3:16: error: 'streaming' must be an integer between 0 and 1000000, got '1000001'"},
    {"tenants:\n  by: ", "team", BASE,
     "2:7: error: 'by' must be one of none, header, api_key, sni, path_prefix, got 'team'"},
    {"tenants:\n  routes:\n    - path_prefix: /x\n      priority: ", "urgent", BASE,
     "4:17: error: 'priority' must be one of high, normal, low, got 'urgent'"},
    {"log:\n  sample: ", "1", BASE, NULL},
    {"log:\n  sample: ", "1000000", BASE, NULL},
    {"log:\n  sample: ", "0", BASE,
     "2:11: error: 'sample' must be an integer between 1 and 1000000, got '0'"},
    {"log:\n  sample: ", "1000001", BASE,
     "2:11: error: 'sample' must be an integer between 1 and 1000000, got '1000001'"},
    {"log:\n  slow_threshold: ", "0", BASE, NULL},
    {"log:\n  slow_threshold: ", "1h", BASE, NULL},
    {"log:\n  slow_threshold: ", "61m", BASE,
     "2:19: error: 'slow_threshold' must be a duration between 0 and 1h, got '61m'"},
    {"log:\n  keep_tenants: ", "[vip, ops]", BASE, NULL},
    {"admin:\n  address: ", "nope", BASE,
     "2:12: error: 'address': invalid address 'nope': missing port (use HOST:PORT)"},
};

START_TEST(one_value)
{
    const struct form *f = &forms[_i];
    char *yaml;
    struct cr_config *cfg;
    const char *msgs[] = {f->msg, NULL};

    ck_assert_int_ne(asprintf(&yaml, "%s%s\n%s", f->prefix, f->value, f->rest), -1);
    if (f->msg == NULL) {
        cfg = load_ok(yaml);
        cr_config_free(cfg);
    } else {
        load_fails(yaml, msgs);
    }
    free(yaml);
}
END_TEST

/* ------------------------------------------------------------ whole configs */

struct bad_config {
    const char *yaml;
    const char *msgs[12];
};

static const struct bad_config bad[] = {
    /* the document */
    {"", {"1:1: error: empty configuration"}},
    {"# comments only\n\n", {"1:1: error: empty configuration"}},
    {"---\n", {"1:1: error: empty configuration"}},
    {"- a\n- b\n", {"1:1: error: the top level must be a mapping of keys, got a list"}},
    {"hello\n", {"1:1: error: the top level must be a mapping of keys, got 'hello'"}},
    {"a: b: c\n", {"1:5: error: syntax error: mapping values are not allowed in this context"}},
    {"workers: 1\nlisteners: [127.0.0.1:1\nupstream: {}\n",
     {"3:9: error: syntax error: did not find expected ',' or ']' (while parsing a flow "
      "sequence at 2:12)"}},
    {"workers: 1\n\tuser: x\n",
     {"2:1: error: syntax error: found a tab character that violates indentation (while "
      "scanning a plain scalar at 1:10)"}},
    {"user: \"\xff\"\n" BASE, {"1:8: error: syntax error: invalid leading UTF-8 octet"}},
    {BASE "---\nworkers: 2\n", {"11:1: error: only one YAML document is allowed in the file"}},
    /* keys */
    {"listner: 1\n" BASE, {"1:1: error: unknown key 'listner' (did you mean 'listeners'?)"}},
    {"listen: 1\n" BASE, {"1:1: error: unknown key 'listen' (did you mean 'listeners'?)"}},
    {"Workers: 2\n" BASE, {"1:1: error: unknown key 'Workers' (did you mean 'workers'?)"}},
    {"uesr: x\n" BASE, {"1:1: error: unknown key 'uesr' (did you mean 'user'?)"}},
    {"colour: red\n" BASE,
     {"1:1: error: unknown key 'colour' (valid keys here: workers, max_connections, user, group, "
      "pid_file, drain_timeout, drain_grace, log, listeners, upstream, http, tenants, admin)"}},
    {"workers: 2\nworkers: 3\n" BASE,
     {"2:1: error: duplicate key 'workers' (first defined at 1:1)"}},
    {"[a]: 1\n" BASE, {"1:1: error: keys must be strings, got a list"}},
    {"http:\n  max_header: 1k\n  timeout: 1s\n" BASE,
     {"2:3: error: unknown key 'max_header' (did you mean 'max_headers'?)",
      "3:3: error: unknown key 'timeout' (valid keys here: max_header_size, max_headers, "
      "max_uri, max_body, header_timeout, body_timeout, idle_timeout, lingering_time, "
      "lingering_timeout, max_streams, "
      "send_timeout, send_min_rate, h2_max_resets, h2_max_pings, h2_max_settings, "
      "h2_max_empty_frames, "
      "h2_max_control_frames, h2_max_stalled_streams, forwarded, request_id, traceparent, "
      "tunnel_idle_timeout, tunnel_ping)"}},
    {"log:\n  acces: off\n" BASE, {"2:3: error: unknown key 'acces' (did you mean 'access'?)"}},
    {"log: stderr\n" BASE, {"1:6: error: 'log' must be a mapping, got 'stderr'"}},
    {"http: []\n" BASE, {"1:7: error: 'http' must be a mapping, got a list"}},
    {"admin:\n" BASE, {"1:7: error: 'admin' must be a mapping, got an empty value"}},
    /* required sections */
    {UPSTREAM, {"1:1: error: missing required key 'listeners'"}},
    {LISTENERS, {"1:1: error: missing required key 'upstream'"}},
    {"workers: 1\n",
     {"1:1: error: missing required key 'listeners'",
      "1:1: error: missing required key 'upstream'"}},
    {"listeners: []\n" UPSTREAM, {"1:12: error: 'listeners' must have at least 1 entry"}},
    {"listeners: x\n" UPSTREAM, {"1:12: error: 'listeners' must be a list, got 'x'"}},
    {"listeners:\n" UPSTREAM, {"1:11: error: 'listeners' must be a list, got an empty value"}},
    {"listeners:\n  - x\n  - [a]\n" UPSTREAM,
     {"2:5: error: each 'listeners' entry must be a mapping, got 'x'",
      "3:5: error: each 'listeners' entry must be a mapping, got a list"}},
    /* listeners */
    {"listeners:\n  - name: a\n" UPSTREAM,
     {"2:5: error: missing required key 'address'", "2:5: error: missing required key 'tls'"}},
    {"listeners:\n"
     "  - name: a\n"
     "    adress: 127.0.0.1:8443\n"
     "    backlog: 0\n" TLS_BLOCK UPSTREAM,
     {"2:5: error: missing required key 'address'",
      "3:5: error: unknown key 'adress' (did you mean 'address'?)",
      "4:14: error: 'backlog' must be an integer between 1 and 65535, got '0'"}},
    {"listeners:\n  - address: 127.0.0.1:8443\n    tls: {}\n" UPSTREAM,
     {"3:10: error: missing required key 'certificates'"}},
    {"listeners:\n  - address: 127.0.0.1:8443\n    tls: on\n" UPSTREAM,
     {"3:10: error: 'tls' must be a mapping, got 'on'"}},
    {"listeners:\n  - address: 127.0.0.1:8443\n    tls: {certificates: []}\n" UPSTREAM,
     {"3:25: error: 'certificates' must have at least 1 entry"}},
    {"listeners:\n  - address: 127.0.0.1:8443\n    tls: {certificates: @D/edge.crt}\n" UPSTREAM,
     {"3:25: error: 'certificates' must be a list, got '@D/edge.crt'"}},
    {"listeners:\n"
     "  - address: 127.0.0.1:8443\n"
     "    tls:\n"
     "      certificates:\n"
     "        - cert: @D/edge.crt\n"
     "        - key: @D/edge.key\n"
     "          crt: x\n"
     "        - @D/edge.crt\n" UPSTREAM,
     {"5:11: error: missing required key 'key'", "6:11: error: missing required key 'cert'",
      "7:11: error: unknown key 'crt' (did you mean 'cert'?)",
      "8:11: error: each 'certificates' entry must be a mapping, got '@D/edge.crt'"}},
    {"listeners:\n"
     "  - address: 127.0.0.1:8443\n"
     "    tls:\n"
     "      certificates:\n"
     "        - cert: @D/missing.crt\n"
     "          key: @D/sub\n"
     "          ocsp: @D/ocsp.missing\n" UPSTREAM,
     {"5:17: error: cannot read 'cert' file @D/missing.crt: No such file or directory",
      "6:16: error: cannot read 'key' file @D/sub: Is a directory",
      "7:17: error: cannot read 'ocsp' file @D/ocsp.missing: No such file or directory"}},
    {"listeners:\n"
     "  - address: 127.0.0.1:8443\n" TLS_BLOCK "  - address: 127.0.0.1:8443\n" TLS_BLOCK UPSTREAM,
     {"7:14: error: duplicate listener address 127.0.0.1:8443 (first defined at 2:14)"}},
    {"listeners:\n"
     "  - address: 127.0.0.1:8443\n" TLS_BLOCK
     "  - address: '127.000.0.1:8443'\n" TLS_BLOCK UPSTREAM,
     {"7:14: error: 'address': invalid address '127.000.0.1:8443': invalid IPv4 address "
      "'127.000.0.1'"}},
    {"listeners:\n"
     "  - address: 127.0.0.1:1\n"
     "    name: web\n" TLS_BLOCK "  - address: 127.0.0.1:2\n"
     "    name: web\n" TLS_BLOCK "  - name: listener4\n"
     "    address: 127.0.0.1:3\n" TLS_BLOCK "  - address: 127.0.0.1:4\n" TLS_BLOCK UPSTREAM,
     {"9:11: error: duplicate listener name 'web' (first defined at 3:11)",
      "20:5: error: duplicate listener name 'listener4' (first defined at 14:11)"}},
    {"listeners:\n"
     "  - address: 127.0.0.1:8443\n" TLS_BLOCK "      ciphers: ECDHE-RSA-AES128-GCM-SHA256\n"
     "      min_version: 1.3\n" UPSTREAM,
     {"7:16: warning: 'ciphers' only applies to TLS 1.2 and is unused with min_version 1.3"}},
    /* upstream */
    {"upstream:\n  tls: {ca: @D/ca.crt}\n" LISTENERS,
     {"2:3: error: missing required key 'addresses'"}},
    {"upstream:\n  addresses: [127.0.0.1:9443]\n" LISTENERS,
     {"2:3: error: missing required key 'tls'"}},
    {"upstream: 127.0.0.1:9443\n" LISTENERS,
     {"1:11: error: 'upstream' must be a mapping, got '127.0.0.1:9443'"}},
    {"upstream:\n  addresses: []\n  tls: {ca: @D/ca.crt}\n" LISTENERS,
     {"2:14: error: 'addresses' must have at least 1 entry"}},
    {"upstream:\n  addresses: 127.0.0.1:9443\n  tls: {ca: @D/ca.crt}\n" LISTENERS,
     {"2:14: error: 'addresses' must be a list, got '127.0.0.1:9443'"}},
    {"upstream:\n  addresses: ['*:80', {a: 1}, '', 127.0.0.1]\n  tls: {ca: @D/ca.crt}\n" LISTENERS,
     {"2:15: error: 'addresses': invalid address '*:80': '*' is only valid in a listening "
      "address",
      "2:23: error: each 'addresses' entry must be a HOST:PORT address, got a mapping",
      "2:31: error: each 'addresses' entry must be a HOST:PORT address, got ''",
      "2:35: error: 'addresses': invalid address '127.0.0.1': missing port (use HOST:PORT)"}},
    {"upstream:\n  addresses: [127.0.0.1:9443, 127.0.0.1:9443]\n  tls: {ca: @D/ca.crt}\n" LISTENERS,
     {"2:31: error: duplicate upstream address 127.0.0.1:9443 (first defined at 2:15)"}},
    {"upstream:\n  addresses: [127.0.0.1:9443]\n  tls: {}\n" LISTENERS,
     {"3:8: error: missing required key 'ca': upstream certificates are always verified, and "
      "verification cannot be turned off without `insecure: true`"}},
    {"upstream:\n  addresses: [127.0.0.1:9443]\n  tls: []\n" LISTENERS,
     {"3:8: error: 'tls' must be a mapping, got a list"}},
    {"upstream:\n"
     "  addresses: [127.0.0.1:9443]\n"
     "  tls:\n"
     "    ca: @D/ca.crt\n"
     "    cert: @D/client.crt\n" LISTENERS,
     {"5:11: error: 'cert' needs 'key' (the client certificate's private key) in the same "
      "mapping"}},
    {"upstream:\n"
     "  addresses: [127.0.0.1:9443]\n"
     "  tls:\n"
     "    ca: @D/ca.crt\n"
     "    key: @D/client.key\n" LISTENERS,
     {"5:10: error: 'key' needs 'cert' (the client certificate) in the same mapping"}},
    {"upstream:\n"
     "  addresses: [127.0.0.1:9443]\n"
     "  tls:\n"
     "    ca: @D/none.crt\n"
     "    cert: @D/none2.crt\n"
     "    key: @D/client.key\n"
     "    sni: 'bad name!'\n"
     "    insecure: maybe\n" LISTENERS,
     {"4:9: error: cannot read 'ca' file @D/none.crt: No such file or directory",
      "5:11: error: cannot read 'cert' file @D/none2.crt: No such file or directory",
      "7:10: error: 'sni' must be a host name, got 'bad name!'",
      "8:15: error: 'insecure' must be a boolean (true/false, yes/no, on/off), got 'maybe'"}},
    /* tenants */
    {"tenants:\n  by: header\n  header: 'X Tenant'\n" BASE,
     {"3:11: error: 'header' must be an HTTP header name, got 'X Tenant'"}},
    {"tenants:\n  by: sni\n  header: X-Tenant\n" BASE,
     {"3:11: warning: 'header' is unused unless 'by' is header or api_key"}},
    {"tenants:\n  list:\n    - name: a\n" BASE,
     {"3:5: warning: with 'by: none' every request goes to the default tenant and 'list' is "
      "unused"}},
    {"tenants:\n  by: header\n  list:\n    - weight: 2\n    - x\n" BASE,
     {"4:7: error: missing required key 'name'",
      "5:7: error: each 'list' entry must be a mapping, got 'x'"}},
    {"tenants:\n  by: header\n  list:\n    - name: default\n" BASE,
     {"4:13: error: tenant name 'default' is reserved: set the default tenant's limits in "
      "tenants.defaults"}},
    {"tenants:\n  by: header\n  list:\n    - name: a\n    - name: a\n" BASE,
     {"5:13: error: duplicate tenant name 'a' (first defined at 4:13)"}},
    {"tenants:\n  by: header\n  list:\n    - name: a\n      weight: 0\n      wieght: 2\n" BASE,
     {"5:15: error: 'weight' must be an integer between 1 and 1000, got '0'",
      "6:7: error: unknown key 'wieght' (did you mean 'weight'?)"}},
    {"tenants:\n  by: header\n  list:\n    - name: a\n      api_keys: [k]\n"
     "      match: [/a]\n" BASE,
     {"5:17: error: 'api_keys' is only used with 'by: api_key'",
      "6:14: error: 'match' is only used with 'by: sni' or 'by: path_prefix'"}},
    {"tenants:\n"
     "  by: api_key\n"
     "  list:\n"
     "    - name: a\n"
     "      api_keys: [k1, k2, k1]\n"
     "    - name: b\n"
     "      api_keys: [k2, '', {}]\n"
     "    - name: c\n" BASE,
     {"5:26: error: duplicate API key (first defined at 5:18)",
      "7:18: error: duplicate API key (first defined at 5:22)",
      "7:22: error: each 'api_keys' entry must be a non-empty string, got ''",
      "7:26: error: each 'api_keys' entry must be a non-empty string, got a mapping",
      "8:7: warning: tenant 'c' has no 'api_keys' and can never be selected"}},
    {"tenants:\n"
     "  by: path_prefix\n"
     "  list:\n"
     "    - name: a\n"
     "      match: [/a, b, /a]\n"
     "    - name: b\n"
     "      match: [/a]\n"
     "    - name: c\n" BASE,
     {"5:19: error: 'match' entry 'b' must be a path prefix starting with '/'",
      "5:22: error: duplicate match '/a' (first defined at 5:15)",
      "7:15: error: duplicate match '/a' (first defined at 5:15)",
      "8:7: warning: tenant 'c' has no 'match' entries and can never be selected"}},
    {"tenants:\n"
     "  by: sni\n"
     "  list:\n"
     "    - name: a\n"
     "      match: [a.example.com, 'bad/name', '*.']\n"
     "    - name: b\n"
     "      match: [A.EXAMPLE.com]\n" BASE,
     {"5:30: error: 'match' entry 'bad/name' must be a host name (by: sni)",
      "5:42: error: 'match' entry '*.' must be a host name (by: sni)",
      "7:15: error: duplicate match 'a.example.com' (first defined at 5:15)"}},
    {"tenants:\n  by: tenant\n  list:\n    - name: a\n      api_keys: [k]\n" BASE,
     {"2:7: error: 'by' must be one of none, header, api_key, sni, path_prefix, got 'tenant'"}},
    {"tenants:\n"
     "  routes:\n"
     "    - path_prefix: api\n"
     "    - path_prefix: /x\n"
     "    - path_prefix: /x\n"
     "    - priority: high\n" BASE,
     {"3:20: error: 'path_prefix' must start with '/', got 'api'",
      "5:20: error: duplicate route for path_prefix '/x' (first defined at 4:20)",
      "6:7: error: missing required key 'path_prefix'"}},
    /* prefixes are matched against normalised paths: they must be normal */
    {"tenants:\n"
     "  routes:\n"
     "    - path_prefix: /a/../login\n"
     "    - path_prefix: /%6Cogin/\n"
     "    - path_prefix: /login?x\n"
     "    - path_prefix: /a%2fb\n"
     "    - path_prefix: /a%2Fb/\n"
     "    - path_prefix: /login/\n" BASE,
     {"3:20: error: 'path_prefix' '/a/../login': requests are matched in their normal form (dot "
      "segments removed, unreserved characters decoded): write '/login'",
      "4:20: error: 'path_prefix' '/%6Cogin/': requests are matched in their normal form (dot "
      "segments removed, unreserved characters decoded): write '/login/'",
      "5:20: error: 'path_prefix' '/login?x': a path prefix has no query or fragment",
      "6:20: error: 'path_prefix' '/a%2fb': requests are matched in their normal form (dot "
      "segments removed, unreserved characters decoded): write '/a%2Fb'"}},
    {"tenants:\n"
     "  by: path_prefix\n"
     "  list:\n"
     "    - name: a\n"
     "      match: [/api/./v1, /api/v2]\n" BASE,
     {"5:15: error: 'match' entry '/api/./v1': requests are matched in their normal form (dot "
      "segments removed, unreserved characters decoded): write '/api/v1'"}},
    /* admin */
    {"admin: {address: 127.0.0.1:8443}\n" BASE,
     {"1:18: error: admin address 127.0.0.1:8443 is also the address of listener 'listener1'"}},
    {"admin: {adress: 127.0.0.1:9000}\n" BASE,
     {"1:9: error: unknown key 'adress' (did you mean 'address'?)"}},
    /* keys are processed in table order; messages still come in file order */
    {"http: {max_headers: 0}\nworkers: 0\n" BASE,
     {"1:21: error: 'max_headers' must be an integer between 1 and 1000, got '0'",
      "2:10: error: 'workers' must be 'auto' or an integer between 1 and 256, got '0'"}},
    /* everything at once: every problem is reported, in file order */
    {"listner: 1\n"
     "workers: abc\n"
     "drain_timeout: 5x\n"
     "listeners:\n"
     "  - address: 127.0.0.1:8443\n"
     "    backlog: many\n"
     "    tls:\n"
     "      certificates: [{cert: /nonexistent/x.crt, key: /nonexistent/x.key}]\n"
     "upstream:\n"
     "  addresses: [127.0.0.1:9443]\n"
     "  connections: 0\n"
     "  tls: {insecure: true}\n",
     {"1:1: error: unknown key 'listner' (did you mean 'listeners'?)",
      "2:10: error: 'workers' must be 'auto' or an integer between 1 and 256, got 'abc'",
      "3:16: error: 'drain_timeout': invalid duration '5x': unknown unit 'x' (use us, ms, s, m, "
      "h, d)",
      "6:14: error: 'backlog' must be an integer between 1 and 65535, got 'many'",
      "8:29: error: cannot read 'cert' file /nonexistent/x.crt: No such file or directory",
      "8:54: error: cannot read 'key' file /nonexistent/x.key: No such file or directory",
      "11:16: error: 'connections' must be an integer between 1 and 64, got '0'",
      "12:19: warning: 'insecure' is true: the upstream's certificate is not verified (for "
      "testing only)"}},
};

START_TEST(bad_config)
{
    const struct bad_config *b = &bad[_i];
    bool any_error = false;

    for (size_t i = 0; b->msgs[i] != NULL; i++)
        any_error |= strstr(b->msgs[i], ": error: ") != NULL;
    if (any_error) {
        load_fails(b->yaml, b->msgs);
    } else {
        struct cr_config *cfg = load_ok_warn(b->yaml, b->msgs);
        cr_config_free(cfg);
    }
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("valid");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, minimal_config_gets_every_default);
    tcase_add_test(tc, full_config_sets_every_key);
    tcase_add_test(tc, workers_forms);
    tcase_add_test(tc, max_connections_forms);
    tcase_add_test(tc, boolean_forms);
    tcase_add_test(tc, listener_address_forms);
    tcase_add_test(tc, wildcard_is_ipv4_any_and_localhost_is_loopback);
    tcase_add_test(tc, listener_names_default_to_their_position);
    tcase_add_test(tc, alpn_and_min_version_forms);
    tcase_add_test(tc, enum_forms);
    tcase_add_test(tc, tenants_by_header_defaults_its_header);
    tcase_add_test(tc, tenants_inherit_defaults_whatever_the_key_order);
    tcase_add_test(tc, tenants_by_sni_and_path_prefix);
    tcase_add_test(tc, admin_section);
    tcase_add_test(tc, loopback_addresses);
    tcase_add_test(tc, insecure_upstream_needs_no_ca_but_warns);
    tcase_add_test(tc, proxy_protocol_keys);
    tcase_add_test(tc, warnings_do_not_fail_the_load);
    tcase_add_test(tc, anchors_and_aliases_are_followed);
    tcase_add_test(tc, many_aliases_under_the_budget_load);
    tcase_add_test(tc, relative_paths);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, builtin_default);
    tcase_add_test(tc, builtin_default_without_its_files);
    tcase_add_test(tc, diag_print_writes_one_line_each);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, one_value, 0, (int)CR_ARRAY_LEN(forms));
    suite_add_tcase(s, tc);

    tc = tcase_create("diagnostics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, bad_config, 0, (int)CR_ARRAY_LEN(bad));
    suite_add_tcase(s, tc);

    /* the document's own limits, whatever the schema (cfgload.h) */
    tc = tcase_create("document limits");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, billion_laughs_fail_fast);
    tcase_add_test(tc, alias_bomb_along_the_schema_fails_fast);
    tcase_add_test(tc, deep_nesting_is_refused);
    tcase_add_test(tc, alias_cycles_and_undefined_anchors_are_refused);
    tcase_add_test(tc, many_unique_values_load_in_linear_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
