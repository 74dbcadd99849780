/* config.h - corral's configuration: the schema as C structs, loaded from
 * YAML with libyaml.
 *
 * One typed table (in config.c) drives parsing, defaults and validation. A
 * loaded struct cr_config is immutable and owned by whoever loaded it; the
 * master keeps the current one and hands a pointer to each worker it forks
 * (the worker inherits the memory and never frees it).
 *
 * Every problem found is reported as "FILE:LINE:COL: message" (libyaml marks,
 * 1-based) into a struct cr_diag; loading goes on after an error so that all
 * problems are reported at once, never just the first. */
#ifndef CR_CONFIG_H
#define CR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "proxyproto.h"
#include "common.h" /* struct cr_diag, struct cr_addr */

/* ------------------------------------------------------------ schema */

struct cr_cfg_cert {
    char *cert; /* PEM chain: leaf first, then intermediates */
    char *key;  /* PEM private key */
    char *ocsp; /* DER OCSP response to staple, or NULL */
};

enum cr_alpn { CR_ALPN_H2 = 1, CR_ALPN_HTTP11 = 2 };

struct cr_cfg_tls_server {
    struct cr_cfg_cert *certs; /* certs[0] is the default certificate */
    size_t ncerts;
    int min_version;      /* TLS1_2_VERSION (default) or TLS1_3_VERSION */
    char *ciphers;        /* TLS 1.2 cipher list, NULL = built-in AEAD+FS list */
    char *ciphersuites;   /* TLS 1.3 suites, NULL = OpenSSL default */
    enum cr_alpn alpn[2]; /* preference order; 0 terminates */
    size_t nalpn;
    uint64_t client_hello_timeout_ms; /* accept to the ClientHello's first byte, 5s */
    uint64_t handshake_timeout_ms;    /* that first byte to the end, default 10s */
    uint32_t max_handshakes;          /* handshakes in progress per worker, default 256 */
    char *ticket_key_file;         /* 80-byte nginx/HAProxy format, NULL = generated */
    uint64_t ticket_rotate_ms;     /* default 12h */
    uint32_t tickets;              /* TLS 1.3 tickets per connection, default 1 */
    bool handoff;                  /* TLS 1.3 records move to tlsrec.h after the handshake */
};

struct cr_cfg_listener {
    char *name; /* default "listener<N>" */
    struct cr_addr addr;
    uint32_t backlog; /* default 4096 */
    struct cr_cfg_tls_server tls;
    /* PROXY protocol v1/v2 (proxyproto.h) before TLS, default false: the
     * client address is the header's. A connection from outside proxy_from
     * (required then) or without a valid header within handshake_timeout is
     * refused. */
    bool proxy_protocol;
    struct cr_pp_cidr proxy_from[CR_PP_MAX_FROM];
    size_t nproxy_from;
};

enum cr_proto { CR_PROTO_H2 = 0, CR_PROTO_HTTP11 = 1 };

struct cr_cfg_upstream {
    struct cr_addr *addrs; /* load-balancer addresses, at least one */
    size_t naddrs;
    enum cr_proto protocol;       /* default h2 */
    uint32_t connections;         /* per worker, default 2 */
    uint32_t pipeline;            /* http/1.1 pipelining depth, default 1 (off) */
    uint32_t max_streams;         /* in-flight cap per worker, 0 = from the server */
    uint32_t queue;               /* requests waiting for a stream, default 1024 */
    uint64_t connect_timeout_ms;  /* default 5s */
    uint64_t response_timeout_ms; /* first response byte, default 60s */
    uint64_t keepalive_ms;        /* HTTP/2 PING after this much idleness, 30s */
    uint64_t reconnect_min_ms;    /* first back-off after a lost connection, 100ms */
    uint64_t reconnect_max_ms;    /* where the doubling back-off stops, 5s */
    uint64_t outage_wait_ms;      /* how long requests wait for a lost upstream, 5s; 0: 502 */
    uint32_t headroom;            /* % of capacity kept from tenants over their share, 12 */
    uint64_t streaming_after_ms;  /* a response still open this long after its head
                                   * moves to its tenant's streaming class (gate.h),
                                   * default 10s; 0: only text/event-stream moves */
    uint32_t max_streaming;       /* responses in the streaming class per worker, all
                                   * tenants together, default 128; 0: none move */
    uint32_t tunnel_connections;  /* tunnels' own upstream connections per worker, 1000 */
    /* upstream.adaptive (adapt.h): a limit on what is in flight upstream
     * per worker, learned from latency, under max_streams / the pool's
     * capacity; off by default */
    struct {
        bool enabled;
        uint32_t min;              /* the floor, default 4 */
        uint64_t interval_ms;      /* a sample window, default 100ms */
        uint64_t min_rtt_interval_ms; /* between min-RTT probes, default 30s */
        uint32_t tolerance;        /* % of min RTT still "near" it, default 125 */
    } adaptive;
    struct {
        char *ca;      /* CA bundle to verify the upstream */
        char *cert;    /* client certificate (PEM) */
        char *key;     /* its key */
        char *sni;     /* name sent and verified; NULL = host of addrs[0] */
        bool insecure; /* verification off: must be said in so many words */
    } tls;
};

enum cr_forwarded { CR_FWD_XFF = 0, CR_FWD_FORWARDED = 1, CR_FWD_NONE = 2 };

struct cr_cfg_http {
    uint64_t max_header_size;   /* whole header block, default 16k -> 431 */
    uint32_t max_headers;       /* default 100 -> 431 */
    uint64_t max_uri;           /* default 8k -> 414 */
    uint64_t max_body;          /* default 0 = unlimited -> 413 */
    uint64_t header_timeout_ms; /* default 10s -> 408 */
    uint64_t body_timeout_ms;   /* between body reads, default 30s -> 408 */
    uint64_t idle_timeout_ms;   /* keep-alive idleness, default 60s -> close */
    /* HTTP/1.1 lingering close (conn.h, CR_CONN_LINGER): after the last
     * answer, what the client still sends is read and dropped for at most
     * lingering_time (default 5s; 0 = close at once), at most
     * lingering_timeout between two reads (default 2s) */
    uint64_t lingering_time_ms;
    uint64_t lingering_timeout_ms;
    uint32_t max_streams;       /* HTTP/2 concurrent streams per client, 128 */
    uint64_t send_timeout_ms;   /* a response the client holds up (h2: its flow
                                 * control; HTTP/1.1: its TCP), default 30s ->
                                 * RST_STREAM / close */
    uint64_t send_min_rate;     /* bytes/s a waiting response must move on average
                                 * over send_timeout, or it counts as held up;
                                 * default 512, 0: any byte restarts the clock */
    uint64_t tunnel_idle_timeout_ms; /* a tunnel with no byte either way closes, 10m; 0: never */
    uint64_t tunnel_ping_ms;    /* a quiet tunnel's client is pinged, 30s; 0: never */
    /* HTTP/2 frames a client may send, per second in bursts of as many
     * (token buckets per connection) -> GOAWAY ENHANCE_YOUR_CALM */
    uint32_t h2_max_resets;       /* RST_STREAM, default 100 */
    uint32_t h2_max_pings;        /* PING, default 20 */
    uint32_t h2_max_settings;     /* SETTINGS, default 10 */
    uint32_t h2_max_empty_frames; /* DATA without END_STREAM, HEADERS and
                                   * CONTINUATION with no payload, default 50 */
    uint32_t h2_max_control_frames; /* PRIORITY and WINDOW_UPDATE, default 1000;
                                     * WINDOW_UPDATEs that reopen windows for
                                     * DATA corral sent are not counted */
    /* HTTP/2 requests one client connection may have in flight whose
     * responses its flow control holds (a stream or the connection window
     * shut), default 16 -> RST_STREAM REFUSED_STREAM "client not reading" */
    uint32_t h2_max_stalled_streams;
    enum cr_forwarded forwarded;
    bool request_id;  /* add X-Request-Id when absent, default true */
    bool traceparent; /* add traceparent when absent, default true */
};

enum cr_tenant_by {
    CR_TENANT_BY_NONE = 0, /* every request is the default tenant */
    CR_TENANT_BY_HEADER,
    CR_TENANT_BY_API_KEY, /* header value looked up in api_keys */
    CR_TENANT_BY_SNI,
    CR_TENANT_BY_PATH_PREFIX,
};

struct cr_cfg_limits {
    double rate;          /* requests/s, 0 = unlimited */
    uint32_t burst;       /* token bucket depth */
    uint32_t concurrency; /* in flight upstream, 0 = unlimited */
    uint32_t queue;       /* waiting requests */
    uint64_t max_wait_ms; /* deadline in the queue */
    uint32_t weight;      /* share under contention, >= 1 */
    uint32_t streaming;   /* open streaming responses (gate.h), default 100;
                           * past it they stay in the request class; 0 = none move */
    uint32_t tunnels;     /* open tunnels (WebSocket), 0 = unlimited */
    double tunnel_rate;   /* new tunnels/s, 0 = unlimited */
    uint32_t tunnel_burst; /* their bucket depth */
};

struct cr_cfg_tenant {
    char *name;
    struct cr_cfg_limits limits; /* defaults overlaid with this tenant's keys */
    char **api_keys;             /* for CR_TENANT_BY_API_KEY */
    size_t napi_keys;
    char **match; /* SNI names or path prefixes naming it */
    size_t nmatch;
    bool global; /* its rate holds across the fleet (tenants.global, quota.h) */
};

enum cr_priority { CR_PRIO_HIGH = 0, CR_PRIO_NORMAL = 1, CR_PRIO_LOW = 2 };

struct cr_cfg_route {
    char *path_prefix;
    enum cr_priority priority;
};

/* tenants.global: the Redis server that global rates are leased from (quota.h). */
struct cr_cfg_quota {
    bool enabled;                /* the section is present */
    struct cr_addr addr;         /* Redis, host:port */
    char *user;                  /* ACL user (AUTH user password), NULL = AUTH password */
    char *password_file;         /* first line is the password, NULL = no AUTH */
    char *prefix;                /* key prefix, default "corral:quota:" */
    uint64_t connect_timeout_ms; /* default 1s */
    uint64_t command_timeout_ms; /* a reply later than this: fall back, default 200ms */
    uint64_t reconnect_max_ms;   /* back-off ceiling, default 5s */
    uint32_t lease;              /* tokens per lease, 0 = auto (quota.h) */
    uint32_t hosts;              /* hosts in the fleet, for the fallback share */
    bool all;                    /* every tenant's rate is global */
};

struct cr_cfg_tenants {
    enum cr_tenant_by by;
    char *header; /* header name for BY_HEADER / BY_API_KEY */
    struct cr_cfg_limits defaults;
    struct cr_cfg_tenant *list;
    size_t nlist;
    struct cr_cfg_route *routes;
    size_t nroutes;
    struct cr_cfg_quota global;
};

enum cr_log_level { CR_LOG_ERROR = 0, CR_LOG_WARN, CR_LOG_INFO, CR_LOG_DEBUG };

struct cr_cfg_log {
    char *error;             /* "stderr" (default) or a file path */
    enum cr_log_level level; /* default info */
    char *access;            /* "off" (default), "stdout", or a file path */
    /* Tail sampling of the access log (log.c, cr_log_sample): errors (5xx,
     * a 4xx corral answered itself, sheds), requests slower than
     * slow_threshold_ms and the tenants in keep_tenants are always logged;
     * of the rest, 1 in `sample` (default 1: all). */
    uint32_t sample;            /* 1..1000000, default 1 */
    uint64_t slow_threshold_ms; /* default 1s; 0 = no request is slow */
    char **keep_tenants;        /* tenant names, may be none */
    size_t nkeep_tenants;
};

struct cr_cfg_admin {
    bool enabled;
    struct cr_addr addr;      /* cleartext, loopback by default */
    uint32_t max_connections; /* at once per worker, default 8; more get a 503 */
    uint64_t timeout_ms;      /* accept to the whole request, default 5s -> 408 */
};

struct cr_config {
    char *path;               /* file it came from ("<built-in>" otherwise) */
    uint32_t workers;         /* 0 in the file = "auto" = one per core; resolved */
    uint32_t max_connections; /* client connections per worker, 0 = auto: from the
                                 open files limit (cr_worker_conn_limit) */
    char *user;               /* drop to this user after binding, NULL = stay */
    char *group;
    char *pid_file;
    uint64_t drain_timeout_ms; /* default 30s */
    uint64_t drain_grace_ms;   /* default 10s: a drain (SIGUSR2, POST /drain) serves on with
                                * /health at 503 this long, then stops as SIGTERM does */
    struct cr_cfg_log log;
    struct cr_cfg_listener *listeners;
    size_t nlisteners;
    struct cr_cfg_upstream upstream;
    struct cr_cfg_http http;
    struct cr_cfg_tenants tenants;
    struct cr_cfg_admin admin;
};

/* ------------------------------------------------------------ API */

/* Loads and validates a config file. On success returns 0 and *out owns a new
 * config (free with cr_config_free); warnings may still be in diag. On any
 * error returns CR_ECONFIG, *out is NULL and diag holds every problem.
 * diag is always filled in and must be freed with cr_diag_free. */
int cr_config_load(const char *path, struct cr_config **out, struct cr_diag *diag);

/* The same from a string in memory; name is used as FILE in messages. */
int cr_config_load_string(const char *name, const char *text, struct cr_config **out,
                          struct cr_diag *diag);

/* The built-in default config (the quick start's shape, certificates in
 * CR_STATEDIR). Same contract as cr_config_load. */
int cr_config_load_default(struct cr_config **out, struct cr_diag *diag);
extern const char cr_config_default_yaml[];

void cr_config_free(struct cr_config *cfg);

#endif
