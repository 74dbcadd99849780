/* h1.c - HTTP/1.1 server side: http_parser in, framed responses out. */
#include "h1.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "hparse.h"
#include "log.h"
#include "request.h"
#include "worker.h"
#include "ws.h"

/* fe_flags of a request on an h1 connection (http_parser owns the F_ names) */
#define H1F_HEAD_SENT 0x01
#define H1F_CHUNKED 0x02
#define H1F_NO_BODY 0x04
#define H1F_LAST 0x08  /* the connection closes after this response */
#define H1F_HTTP10 0x10

/* Draining, an idle keep-alive connection waits this long for a request
 * already on its way before it closes (h1_on_drain). */
#define H1_DRAIN_IDLE_MS 500

struct h1 {
    struct cr_conn *c;
    cr_request_submit_cb submit;   /* where complete heads go */
    http_parser parser;
    TAILQ_HEAD(cr_request_q, cr_request) reqs; /* in arrival order; the head answers first */
    uint32_t nreqs;
    struct cr_request *cur;        /* the request being parsed */
    struct cr_hparse hp;           /* the current header field */
    char *url;                     /* the current URL */
    size_t ulen, ucap;
    bool value_at_end;             /* the last value piece ended the read buffer */
    const char *buf_end;           /* end of the bytes being parsed */
    bool no_more;                  /* stop reading requests (close pending) */
    int err_status;                /* set by a callback that stopped the parser */
    const char *err_reason;
    bool saw_cl, saw_te;
    int64_t cl_value;
    bool head_done;                  /* what follows the head's fields: trailers */
    size_t trailer_bytes;            /* trailers read (and dropped) so far */
    uint32_t te_codings, te_chunked; /* Transfer-Encoding: codings, "chunked" among them */
    bool te_last_chunked;            /* the last coding seen is "chunked" */
    struct evbuffer *held;           /* bytes read past a pause at CR_H1_PIPELINE */
    struct cr_deferred resume;       /* parses them once room frees up */
    uint64_t nbegun;                 /* requests begun on this connection */
    bool idle_grace;                 /* the idle timer found request bytes on
                                      * their way and waits for them once */
    uint64_t ndone;                  /* requests whose parse ended */
    struct cr_request *tunnel;       /* a WebSocket upgrade (the connection's
                                      * last request): once its answer is 101
                                      * the connection relays bytes both ways */
    char ws_accept[CR_WS_ACCEPT_LEN + 1]; /* the 101's Sec-WebSocket-Accept */
    struct cr_ws_tun tun;            /* its frames and timers (ws.h) */
};

static const struct cr_fe_ops h1_fe;

static const char *reason_phrase(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

static struct h1 *H(http_parser *p)
{
    return p->data;
}

static int stop(struct h1 *h, int status, const char *reason)
{
    h->err_status = status;
    h->err_reason = reason;
    /* -1: an error for every callback (on_headers_complete reads 1 and 2 as
     * "no body" and "upgrade", not as errors) */
    return -1;
}

/* ------------------------------------------------------------ parsing */

static int on_message_begin(http_parser *p)
{
    struct h1 *h = H(p);
    h->cur = cr_request_new(h->c, &h1_fe, h, "HTTP/1.1");
    if (!h->cur)
        return stop(h, 503, "out of memory");
    h->idle_grace = false;
    TAILQ_INSERT_TAIL(&h->reqs, h->cur, felink);
    h->nreqs++;
    cr_hparse_reset(&h->hp);
    h->ulen = 0;
    h->saw_cl = h->saw_te = false;
    h->head_done = false;
    h->trailer_bytes = 0;
    h->te_codings = h->te_chunked = 0;
    h->te_last_chunked = false;
    /* The first head's timer runs from attach (cr_h1_attach): re-arming it
     * at its first byte would let a slow client hold the connection for
     * twice header_timeout. Later heads start theirs at their first byte. */
    if (h->nbegun++ > 0)
        cr_conn_set_timer(h->c, h->c->w->cfg->http.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = H(p);
    int rc = cr_grow(&h->url, &h->ulen, &h->ucap, at, n, h->c->w->cfg->http.max_uri);
    return rc == 0 ? 0 : stop(h, rc == CR_ELIMIT ? 414 : 503, "uri too long");
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 8.6: Content-Length = 1*DIGIT (optional whitespace around it).
 * No sign, no list, no hex, nothing past INT64_MAX. Returns 0 or
 * CR_EPROTO. */
static int parse_content_length(const char *v, size_t n, int64_t *out)
{
    while (n && is_ows(v[0]))
        v++, n--;
    while (n && is_ows(v[n - 1]))
        n--;
    if (n == 0)
        return CR_EPROTO;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - (v[i] - '0')) / 10)
            return CR_EPROTO;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

/* Notes the codings of one Transfer-Encoding field value (a list; empty
 * elements are allowed, RFC 9110 5.6.1). Judged once the head is complete
 * (check_framing), since several fields make one list. */
static void note_transfer_codings(struct h1 *h, const char *v, size_t n)
{
    h->saw_te = true;
    for (size_t i = 0; i < n;) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t b = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > b && is_ows(v[e - 1]))
            e--;
        if (e == b)
            continue;
        bool chunked = e - b == 7 && strncasecmp(v + b, "chunked", 7) == 0;
        h->te_codings++;
        h->te_chunked += chunked;
        h->te_last_chunked = chunked;
    }
}

/* A complete header field (hparse.h). */
static int commit_header(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct h1 *h = arg;
    /* RFC 9112 6.3: both framings at once, or two lengths, is smuggling */
    if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0) {
        int64_t v;
        if (parse_content_length(value, vlen, &v) < 0)
            return stop(h, 400, "invalid content-length");
        if (h->saw_cl && v != h->cl_value)
            return stop(h, 400, "conflicting content-length");
        h->saw_cl = true;
        h->cl_value = v;
    } else if (nlen == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) {
        note_transfer_codings(h, value, vlen);
    }
    int rc = cr_request_add_header(h->cur, name, nlen, value, vlen);
    if (rc == CR_ELIMIT)
        return stop(h, 431, "request header fields too large");
    if (rc == CR_EPROTO)
        return stop(h, 400, "invalid header");
    if (rc < 0)
        return stop(h, 503, "out of memory");
    return 0;
}

/* Trailer fields (after a chunked body) never join the head, which may be
 * on its way upstream already or answered (then h->cur is NULL): they are
 * counted against the header size limit and dropped. */
static int trailer_piece(struct h1 *h, size_t n)
{
    h->trailer_bytes += n;
    if (h->trailer_bytes > h->c->w->cfg->http.max_header_size)
        return stop(h, 431, "request trailer fields too large");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = H(p);
    if (h->head_done)
        return trailer_piece(h, n);
    if (cr_hparse_name(&h->hp, at, n) < 0) /* the field before it was refused, or too long */
        return h->err_status ? -1 : stop(h, 431, "request header fields too large");
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = H(p);
    if (h->head_done)
        return trailer_piece(h, n);
    /* A second piece of the same value that does not follow a read
     * boundary is a folded line (obs-fold, RFC 9112 5.2): refused, never
     * unfolded and forwarded. */
    if (h->hp.in_value && !h->value_at_end)
        return stop(h, 400, "obsolete line folding");
    h->value_at_end = at + n == h->buf_end;
    if (cr_hparse_value(&h->hp, at, n) < 0)
        return stop(h, 431, "request header fields too large");
    return 0;
}

static void write_continue(struct h1 *h)
{
    if (TAILQ_FIRST(&h->reqs) == h->cur)
        cr_conn_write(h->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/* The body's framing (RFC 9112 6): Transfer-Encoding is a list ending in
 * chunked, once; any other coding would be de-chunked and forwarded
 * without its name, so it is not implemented (501). Returns 0 or stops. */
static int check_framing(struct h1 *h, const http_parser *p)
{
    if (!h->saw_te)
        return 0;
    if (h->saw_cl)
        return stop(h, 400, "content-length with transfer-encoding");
    if (p->http_minor == 0) /* RFC 9112 6.1: faulty framing in HTTP/1.0 */
        return stop(h, 400, "transfer-encoding in HTTP/1.0");
    if (!h->te_last_chunked || h->te_chunked != 1)
        return stop(h, 400, "invalid transfer-encoding");
    if (h->te_codings != 1)
        return stop(h, 501, "unsupported transfer-encoding");
    if (!(p->flags & F_CHUNKED)) /* http_parser must frame it as we read it */
        return stop(h, 400, "invalid transfer-encoding");
    return 0;
}

/* The request target (RFC 9112 3.2): origin-form and asterisk-form go on
 * as they are (cr_request_finish_head checks them). In absolute-form
 * ("https://host/path") the target's authority replaces Host (3.2.2) and
 * its path and query become the path. Returns 0 or stops. */
static int set_target(struct h1 *h, struct cr_request *r)
{
    const char *u = h->url ? h->url : "";
    size_t n = h->ulen;
    size_t slen = n >= 8 && strncasecmp(u, "https://", 8) == 0  ? 8
                  : n >= 7 && strncasecmp(u, "http://", 7) == 0 ? 7
                                                                : 0;
    if (slen == 0)
        return cr_request_set(r, &r->path, u, n) == 0 ? 0 : stop(h, 400, "bad request");
    if (!(r->fe_flags & H1F_HTTP10) && !cr_request_hdr(r, "host"))
        return stop(h, 400, "missing host"); /* RFC 9112 3.2, whatever the target */
    const char *a = u + slen, *end = u + n, *path = a;
    while (path < end && *path != '/' && *path != '?' && *path != '#')
        path++;
    if (cr_request_check_authority(a, (size_t)(path - a)) < 0)
        return stop(h, 400, "invalid host");
    if (cr_request_set(r, &r->authority, a, (size_t)(path - a)) < 0)
        return stop(h, 400, "bad request");
    if (path < end && *path != '?') /* *path is '/' ('#' fails the check) */
        return cr_request_set(r, &r->path, path, (size_t)(end - path)) == 0
                   ? 0
                   : stop(h, 400, "bad request");
    /* "https://a" or "https://a?q": the path is "/" (RFC 9112 3.2.1) */
    size_t plen = (size_t)(end - path) + 1;
    char *slash = malloc(plen);
    if (!slash)
        return stop(h, 503, "out of memory");
    slash[0] = '/';
    memcpy(slash + 1, path, plen - 1);
    int rc = cr_request_set(r, &r->path, slash, plen);
    free(slash);
    return rc == 0 ? 0 : stop(h, 400, "bad request");
}

/* The WebSocket opening handshake (RFC 6455 4.2.1): GET, HTTP/1.1,
 * Upgrade: websocket, Connection: upgrade, Version 13 and a valid key make
 * r a tunnel (request.h) and the connection's last request. Upgrade with
 * another protocol, or without Connection: upgrade, is ignored (an
 * ordinary request); a WebSocket handshake broken otherwise is a 400.
 * Returns 0 or stops. */
static int ws_upgrade(struct h1 *h, struct cr_request *r, const http_parser *p)
{
    const struct cr_hdr *up = cr_request_hdr(r, "upgrade");
    const struct cr_hdr *conn = cr_request_hdr(r, "connection");
    if (!up || !cr_ws_has_token(up->value, "websocket") || !conn ||
        !cr_ws_has_token(conn->value, "upgrade") || (r->fe_flags & H1F_HTTP10))
        return 0;
    const struct cr_hdr *ver = cr_request_hdr(r, "sec-websocket-version");
    const struct cr_hdr *key = cr_request_hdr(r, "sec-websocket-key");
    if (p->method != HTTP_GET || r->has_body)
        return stop(h, 400, "bad websocket handshake: not a GET without a body");
    if (!ver || strcmp(ver->value, "13") != 0)
        return stop(h, 400, "bad websocket handshake: version");
    if (!key || !cr_ws_key_valid(key->value, key->vlen))
        return stop(h, 400, "bad websocket handshake: key");
    if (cr_ws_accept(key->value, key->vlen, h->ws_accept) < 0)
        return stop(h, 503, "out of memory");
    r->upgrade = "websocket";
    r->has_body = true; /* the client's bytes, until it closes */
    r->fe_flags |= H1F_LAST;
    h->no_more = true;
    h->tunnel = r;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct h1 *h = H(p);
    struct cr_request *r = h->cur;
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    if (cr_hparse_end(&h->hp) < 0)
        return -1;
    h->head_done = true; /* any field from now on is a trailer */
    if (p->http_major != 1)
        return stop(h, 400, "unsupported HTTP version");
    if (p->http_minor == 0) {
        r->protocol = "HTTP/1.0";
        r->fe_flags |= H1F_HTTP10;
    }
    if (check_framing(h, p) < 0)
        return -1;
    if (cr_request_set(r, &r->method, http_method_str(p->method),
                       strlen(http_method_str(p->method))) < 0 ||
        set_target(h, r) < 0)
        return h->err_status ? -1 : stop(h, 400, "bad request");
    if (p->method == HTTP_HEAD)
        r->fe_flags |= H1F_NO_BODY;
    r->has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 &&
                                             p->content_length != ULLONG_MAX);
    if (!(p->flags & F_CHUNKED) && h->saw_cl)
        r->req_clen = h->cl_value;
    if (r->has_body && cr_request_body_too_large(r, r->req_clen))
        return stop(h, 413, "request body too large");
    if (ws_upgrade(h, r, p) < 0)
        return -1;
    if (!http_should_keep_alive(p) || h->c->w->draining) {
        r->fe_flags |= H1F_LAST; /* draining: answered with "connection: close" */
        h->no_more = true;
    }
    const struct cr_hdr *expect = cr_request_hdr(r, "expect");
    /* a tunnel's bytes are no body to continue: its answer is the 101 */
    if (expect && r->has_body && !r->upgrade && strcasecmp(expect->value, "100-continue") == 0)
        write_continue(h);
    /* a tunnel's bytes have no timeout of their own while the upstream answers
     * (upstream.response_timeout bounds that) */
    cr_conn_set_timer(h->c, r->has_body && !r->upgrade ? hc->body_timeout_ms : 0);
    h->submit(r);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = H(p);
    struct cr_request *r = h->cur;
    if (!r)
        return 0; /* answered already; its body goes nowhere */
    int rc = cr_request_body(r, at, n);
    if (rc == CR_ELIMIT)
        return stop(h, 413, "request body too large");
    if (rc < 0)
        return stop(h, 503, "out of memory");
    /* body_timeout is the longest pause between two reads of the body
     * (parse arms it once per read), and it does not run while corral
     * itself stops reading (the upstream has not taken what came):
     * read_on arms it again. */
    if (cr_request_body_pending(r) >= CR_REQUEST_BUF_HIGH) {
        cr_conn_pause_read(h->c, true);
        cr_conn_set_timer(h->c, 0);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct h1 *h = H(p);
    if (h->cur && h->cur->has_body && h->cur != h->tunnel)
        cr_request_body_end(h->cur);
    h->cur = NULL;
    h->ndone++;
    cr_conn_set_timer(h->c, 0);
    if (h->tunnel) { /* what follows is the tunnel's (parse) */
        http_parser_pause(p, 1);
        return 0;
    }
    if (h->no_more || h->nreqs >= CR_H1_PIPELINE) {
        /* Stop here, even inside one read: what follows a last request is
         * ignored; what follows the pipeline's last free place is kept
         * (h->held) and parsed when room frees up (resume_parsing). */
        cr_conn_pause_read(h->c, true);
        http_parser_pause(p, 1);
    }
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* A request the parser could not accept: answer it (in order) and close. */
static void parse_failed(struct h1 *h, int status, const char *reason)
{
    struct cr_request *r = h->cur;
    h->no_more = true;
    cr_conn_pause_read(h->c, true);
    if (!r) {
        r = cr_request_new(h->c, &h1_fe, h, "HTTP/1.1");
        if (!r) {
            cr_conn_close(h->c, false);
            return;
        }
        TAILQ_INSERT_TAIL(&h->reqs, r, felink);
        h->nreqs++;
    }
    h->cur = NULL;
    r->fe_flags |= H1F_LAST;
    cr_log_debug("conn %llu from %s: %d %s", (unsigned long long)h->c->id, h->c->client, status,
                 reason);
    cr_request_respond(r, status, reason, NULL);
}

static bool parser_paused(const struct h1 *h)
{
    return HTTP_PARSER_ERRNO(&h->parser) == HPE_PAUSED;
}

/* Parses len bytes; returns how many the parser took (fewer when it
 * paused at the pipeline's cap or after a last request). */
static uint64_t drain_idle_ms(const struct cr_conn *c)
{
    return CR_MIN(c->w->cfg->http.idle_timeout_ms, (uint64_t)H1_DRAIN_IDLE_MS);
}

/* Nothing in flight and nothing being read: the connection waits for its
 * next request for idle_timeout, or briefly while the worker drains (a
 * request already on its way is still answered, h1_on_timer closes). */
static void arm_idle(struct h1 *h)
{
    cr_conn_set_timer(h->c, h->c->w->draining ? drain_idle_ms(h->c)
                                              : h->c->w->cfg->http.idle_timeout_ms);
}

static int tunnel_in(struct h1 *h, const uint8_t *data, size_t len);

static size_t parse(struct h1 *h, const char *data, size_t len)
{
    uint64_t done = h->ndone;
    h->buf_end = data + len;
    size_t n = http_parser_execute(&h->parser, &settings, data, len);
    if (h->tunnel && !h->err_status && !h->cur) {
        /* the head of a WebSocket upgrade: the rest is the client's first
         * frames, held in the tunnel's buffer until the upstream accepts */
        if (n < len && tunnel_in(h, (const uint8_t *)data + n, len - n) < 0)
            cr_conn_close(h->c, false);
        return len;
    }
    if (h->cur && h->head_done && h->cur->has_body && !h->c->read_paused)
        cr_conn_set_timer(h->c, h->c->w->cfg->http.body_timeout_ms); /* bytes of its body came */
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (e == HPE_PAUSED || (h->no_more && !h->cur))
        return n;
    if (h->err_status) {
        parse_failed(h, h->err_status, h->err_reason);
        return len;
    }
    if (e != HPE_OK || n != len) {
        parse_failed(h, 400, http_errno_name(e));
        return len;
    }
    /* only a request's end restarts the idle clock: bytes that start no
     * request (bare CRLFs) must not keep a connection open, nor a draining
     * one past its short wait */
    if (!h->cur && h->nreqs == 0 && h->ndone != done)
        arm_idle(h);
    return n;
}

/* Keeps bytes the paused parser has not taken, after those held already.
 * At most one read's worth: reading pauses with the parser. */
static int hold(struct h1 *h, const void *data, size_t len)
{
    if (!h->held && !(h->held = evbuffer_new()))
        return CR_ENOMEM;
    return evbuffer_add(h->held, data, len) == 0 ? 0 : CR_ENOMEM;
}

static size_t held_len(const struct h1 *h)
{
    return h->held ? evbuffer_get_length(h->held) : 0;
}

/* Bytes from the client. After a last request (Connection: close, a
 * refusal, draining) only the body of the one being read still counts. */
static int h1_on_data(struct cr_conn *c, const uint8_t *data, size_t len)
{
    struct h1 *h = c->proto_data;
    if (h->tunnel)
        return tunnel_in(h, data, len);
    if (h->no_more && !h->cur)
        return 0;
    if (parser_paused(h) || held_len(h) > 0) { /* behind the bytes already waiting */
        if (!parser_paused(h))
            cr_worker_defer(c->w, &h->resume);
        return hold(h, data, len);
    }
    size_t n = parse(h, (const char *)data, len);
    if (n < len && parser_paused(h) && !h->no_more)
        return hold(h, data + n, len - n);
    return 0;
}

/* Reading goes on while a request's body is read and its buffer has room
 * (whatever the pipeline holds: the cap limits requests, not bodies), or
 * between requests when the pipeline has room; bytes held from a pause at
 * the cap are parsed first, from the loop (the caller may be inside the
 * parser or the pool). */
static void read_on(struct h1 *h)
{
    if (h->tunnel) {
        if (cr_request_body_pending(h->tunnel) < CR_REQUEST_BUF_HIGH && h->c->read_paused)
            cr_conn_pause_read(h->c, false);
        return;
    }
    if (h->cur) {
        if (cr_request_body_pending(h->cur) < CR_REQUEST_BUF_HIGH && h->c->read_paused) {
            cr_conn_pause_read(h->c, false);
            if (h->cur->method && h->cur->has_body) /* the body's clock runs again */
                cr_conn_set_timer(h->c, h->c->w->cfg->http.body_timeout_ms);
        }
        return;
    }
    if (h->no_more || h->nreqs >= CR_H1_PIPELINE)
        return;
    if (parser_paused(h) || held_len(h) > 0) {
        cr_worker_defer(h->c->w, &h->resume);
        return;
    }
    cr_conn_pause_read(h->c, false);
}

static void resume_parsing(void *arg)
{
    struct h1 *h = arg;
    if (h->c->state != CR_CONN_OPEN || (!h->cur && (h->no_more || h->nreqs >= CR_H1_PIPELINE)))
        return;
    if (parser_paused(h))
        http_parser_pause(&h->parser, 0);
    size_t len = held_len(h);
    if (len > 0) /* h outlives a close from inside parse: conns are freed later */
        evbuffer_drain(h->held, parse(h, (const char *)evbuffer_pullup(h->held, -1), len));
    if (!parser_paused(h) && held_len(h) == 0)
        read_on(h);
}

/* ------------------------------------------------------------ responses */

/* r is answered inside its own parse and the connection ends with it:
 * its body is still to be read (the framing would have to skip the rest),
 * or its head broke a rule. A well-formed request without a body that
 * admission refused at once (429/503) is not: its parse ends at once and
 * the connection goes on, so that the client's retry costs no handshake. */
static bool answered_before_body(const struct h1 *h, const struct cr_request *r)
{
    return r == h->cur && (r->has_body || r->bad_head);
}

static void write_head(struct h1 *h, struct cr_request *r)
{
    struct evbuffer *out = h->c->out;
    int s = r->status;
    bool no_body = (r->fe_flags & H1F_NO_BODY) || s < 200 || s == 204 || s == 304;
    /* Answered before its body was read (or its head broke a rule): pump
     * closes once the answer is out (it cannot tell where the rest of the
     * body would end), so the head says so, whether or not the answer is
     * complete yet; a head without it let the client send its next request
     * into the close. */
    if (answered_before_body(h, r))
        r->fe_flags |= H1F_LAST;
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", s, reason_phrase(s));
    for (uint32_t i = 0; i < r->rhdrs.n; i++) {
        const struct cr_hdr *x = &r->rhdrs.v[i];
        evbuffer_add(out, x->name, x->nlen);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, x->value, x->vlen);
        evbuffer_add(out, "\r\n", 2);
    }
    if (no_body) {
        r->fe_flags |= H1F_NO_BODY;
    } else if (r->resp_clen < 0) {
        if (r->fe_flags & H1F_HTTP10) {
            r->fe_flags |= H1F_LAST; /* the end of the body is the end of the connection */
        } else {
            r->fe_flags |= H1F_CHUNKED;
            evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
        }
    }
    if (r->fe_flags & H1F_LAST)
        evbuffer_add(out, "connection: close\r\n\r\n", 21);
    else if (r->fe_flags & H1F_HTTP10)
        evbuffer_add(out, "connection: keep-alive\r\n\r\n", 26);
    else
        evbuffer_add(out, "\r\n", 2);
    r->fe_flags |= H1F_HEAD_SENT;
}

/* Moves as much of r's body as the output has room for. */
static void write_body(struct h1 *h, struct cr_request *r)
{
    struct evbuffer *out = h->c->out;
    size_t have;
    while ((have = evbuffer_get_length(r->resp_body)) > 0 &&
           evbuffer_get_length(out) < CR_REQUEST_BUF_HIGH) {
        size_t n = CR_MIN(have, (size_t)CR_REQUEST_BUF_HIGH);
        if (r->fe_flags & H1F_NO_BODY) {
            evbuffer_drain(r->resp_body, n);
        } else {
            if (r->fe_flags & H1F_CHUNKED)
                evbuffer_add_printf(out, "%zx\r\n", n);
            evbuffer_remove_buffer(r->resp_body, out, n);
            if (r->fe_flags & H1F_CHUNKED)
                evbuffer_add(out, "\r\n", 2);
        }
        cr_request_resp_consumed(r, n);
    }
}

static void idle_close(struct h1 *h);

/* Bytes from the client of a tunnel: on to the upstream as they are,
 * reading paused while CR_REQUEST_BUF_HIGH of them wait (read_on resumes). */
static int tunnel_in(struct h1 *h, const uint8_t *data, size_t len)
{
    struct cr_request *r = h->tunnel;
    if (cr_ws_tun_in(&h->tun, data, len, cr_now_us())) {
        cr_conn_close(h->c, true); /* the client answered corral's close */
        return 0;
    }
    if (cr_request_body(r, data, len) < 0)
        return CR_ENOMEM;
    if (cr_request_body_pending(r) >= CR_REQUEST_BUF_HIGH)
        cr_conn_pause_read(h->c, true);
    return 0;
}

/* The tunnel's timer: the next of corral's ping, the idle timeout, the
 * drain's close, or the end of the wait for the client's close frame. */
static void tunnel_arm(struct h1 *h)
{
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    uint64_t now = cr_now_us();
    uint64_t at = cr_ws_tun_next(&h->tun, hc->tunnel_idle_timeout_ms, hc->tunnel_ping_ms);
    if (at == UINT64_MAX) {
        cr_conn_set_timer(h->c, 0);
        return;
    }
    cr_conn_set_timer(h->c, at > now ? (at - now + 999) / 1000 : 1);
}

static bool pump_tunnel(struct h1 *h, struct cr_request *r);

/* The tunnel's timer (cr_ws_tun_timer): a ping, or corral's close frame
 * to each side at its next frame boundary, then the closing handshake,
 * CR_WS_CLOSE_WAIT_MS at most. */
static void tunnel_timer(struct h1 *h)
{
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    switch (cr_ws_tun_timer(&h->tun, cr_now_us(), hc->tunnel_idle_timeout_ms, hc->tunnel_ping_ms)) {
    case CR_WS_TUN_GONE:
        cr_conn_close(h->c, true); /* no close frame came back in time */
        return;
    case CR_WS_TUN_CLOSE:
        cr_log_debug("conn %llu: closing its tunnel (%s)", (unsigned long long)h->c->id,
                     h->tun.why);
        tunnel_arm(h);
        cr_request_tunnel_close(h->tunnel, h->tun.close);
        if (h->tunnel) /* the back end may have ended it already */
            pump_tunnel(h, h->tunnel);
        return;
    case CR_WS_TUN_PING:
        if (pump_tunnel(h, h->tunnel))
            return;
        break;
    case CR_WS_TUN_NONE:
        break;
    }
    tunnel_arm(h);
}

/* Moves the upstream's frames to the client, corral's own (a ping, the
 * close) between two of them; nothing of the upstream's after corral's
 * close. */
static void relay_out(struct h1 *h, struct cr_request *r)
{
    struct evbuffer *out = h->c->out;
    for (;;) {
        uint8_t f[6];
        size_t flen = cr_ws_tun_own(&h->tun, f);
        if (flen)
            evbuffer_add(out, f, flen);
        size_t have = evbuffer_get_length(r->resp_body);
        if (have == 0)
            return;
        if (h->tun.close_sent) {
            evbuffer_drain(r->resp_body, have);
            cr_request_resp_consumed(r, 0); /* room upstream again; no byte went out */
            continue;
        }
        size_t queued = evbuffer_get_length(out);
        if (queued >= CR_REQUEST_BUF_HIGH)
            return;
        size_t n = cr_ws_tun_out(&h->tun, r->resp_body,
                                 CR_MIN(have, (size_t)CR_REQUEST_BUF_HIGH - queued), cr_now_us());
        if (n == 0)
            return;
        evbuffer_remove_buffer(r->resp_body, out, n);
        cr_request_resp_consumed(r, n);
    }
}

/* The upstream accepted the tunnel (101): the client gets its own 101,
 * then the upstream's bytes as they come, until either side ends. Returns
 * true when the connection is closing. */
static bool pump_tunnel(struct h1 *h, struct cr_request *r)
{
    struct evbuffer *out = h->c->out;
    if (!(r->fe_flags & H1F_HEAD_SENT)) {
        evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                                 "connection: Upgrade\r\nsec-websocket-accept: %s\r\n",
                            h->ws_accept);
        for (uint32_t i = 0; i < r->rhdrs.n; i++) {
            const struct cr_hdr *x = &r->rhdrs.v[i];
            if (strncmp(x->name, "sec-websocket-", 14) != 0)
                continue; /* Protocol, Extensions: what the upstream chose */
            evbuffer_add_printf(out, "%s: %s\r\n", x->name, x->value);
        }
        evbuffer_add(out, "\r\n", 2);
        r->fe_flags |= H1F_HEAD_SENT;
        cr_ws_tun_start(&h->tun, cr_now_us());
        tunnel_arm(h);
    }
    relay_out(h, r);
    if (r->resp_aborted || (r->resp_eof && evbuffer_get_length(r->resp_body) == 0)) {
        cr_conn_close(h->c, true);
        return true;
    }
    if (cr_conn_pending(h->c))
        cr_conn_want_flush(h->c);
    read_on(h);
    return false;
}


/* Writes what the head of the pipeline has, and moves on when it is done. */
static void pump(struct h1 *h)
{
    struct cr_request *r;
    while ((r = TAILQ_FIRST(&h->reqs)) != NULL && r->state >= CR_REQ_RESPONDING) {
        if (r == h->tunnel && r->status == 101) {
            pump_tunnel(h, r);
            return;
        }
        if (!(r->fe_flags & H1F_HEAD_SENT))
            write_head(h, r);
        write_body(h, r);
        if (r->resp_aborted) {
            cr_conn_close(h->c, true); /* the framing cannot say "broken" */
            return;
        }
        if (!r->resp_eof || evbuffer_get_length(r->resp_body) > 0)
            break;
        if (r->fe_flags & H1F_CHUNKED)
            evbuffer_add(h->c->out, "0\r\n\r\n", 5);
        bool last = (r->fe_flags & H1F_LAST) || answered_before_body(h, r);
        TAILQ_REMOVE(&h->reqs, r, felink);
        h->nreqs--;
        if (r == h->tunnel) /* refused: an ordinary answer, then the close */
            h->tunnel = NULL;
        if (r == h->cur) { /* answered before its parse ended */
            h->no_more = h->no_more || r->has_body || r->bad_head; /* stop here */
            h->cur = NULL;
        }
        cr_request_release_fe(r);
        if (last) {
            /* the client may still be sending (a body not read, requests
             * after a last one): close lingering, so that no reset destroys
             * the answer before it reads it (conn.h) */
            h->no_more = true;
            cr_conn_close_linger(h->c);
            return;
        }
    }
    if (cr_conn_pending(h->c))
        cr_conn_want_flush(h->c);
    if (h->nreqs == 0 && !h->cur)
        arm_idle(h); /* draining: a request on its way is still read (read_on) */
    read_on(h);
}

static void fe_head(struct cr_request *r)
{
    pump(r->fe_data);
}

static void fe_drained(struct cr_request *r)
{
    struct h1 *h = r->fe_data;
    if (r == h->cur || r == h->tunnel)
        read_on(h);
}

static const struct cr_fe_ops h1_fe = {
    .response_head = fe_head,
    .response_body = fe_head,
    .response_end = fe_head,
    .request_drained = fe_drained,
};

/* ------------------------------------------------------------ connection */

static void h1_on_writable(struct cr_conn *c)
{
    pump(c->proto_data);
}

/* Draining: the connection closes between requests, never under one. The
 * last request begun gets "connection: close" (and those still to come,
 * on_headers_complete); pipelined bytes not parsed yet are requests too.
 * An idle connection stays open a moment (H1_DRAIN_IDLE_MS) for a request
 * already on its way, which is answered with "connection: close", and
 * closes when no request byte is pending (idle_close). */
static void h1_on_drain(struct cr_conn *c)
{
    struct h1 *h = c->proto_data;
    struct cr_request *last = TAILQ_LAST(&h->reqs, cr_request_q);
    if (h->tunnel) {
        /* a tunnel lives on until shortly before drain_timeout, then
         * corral closes it (1001, going away) */
        cr_ws_tun_drain(&h->tun, cr_now_us(), c->w->cfg->drain_timeout_ms);
        if (h->tunnel->fe_flags & H1F_HEAD_SENT)
            tunnel_arm(h);
        return;
    }
    if (parser_paused(h) || held_len(h) > 0)
        return; /* the held requests are parsed, and answered, first */
    if (last) {
        h->no_more = true;
        last->fe_flags |= H1F_LAST;
        return;
    }
    cr_conn_set_timer(c, drain_idle_ms(c));
}

/* Closes an idle connection (idle_timeout, or draining) unless request
 * bytes are on their way: in its socket, or in its TLS session - a record
 * begun, whose rest is still on the wire, counts, since the client sent
 * it before the timer fired. Then they are read and answered first: the
 * next look is in a moment while draining (drain_timeout bounds it), after
 * header_timeout otherwise, once (a client that never finishes its record
 * does not keep the connection). The close lingers: a request sent
 * meanwhile makes no reset that could hide the close from its client. */
static void idle_close(struct h1 *h)
{
    bool draining = h->c->w->draining;
    if (cr_conn_input_waiting(h->c) && (draining || !h->idle_grace)) {
        h->idle_grace = true;
        cr_conn_set_timer(h->c, draining ? H1_DRAIN_IDLE_MS : h->c->w->cfg->http.header_timeout_ms);
        return;
    }
    h->no_more = true;
    cr_conn_close_linger(h->c);
}

static void h1_on_timer(struct cr_conn *c)
{
    struct h1 *h = c->proto_data;
    if (h->tunnel && (h->tunnel->fe_flags & H1F_HEAD_SENT)) {
        tunnel_timer(h);
        return;
    }
    if (h->cur && !(h->cur->fe_flags & H1F_HEAD_SENT) && h->cur->state < CR_REQ_RESPONDING) {
        parse_failed(h, 408, h->cur->method ? "request body timeout" : "request header timeout");
        return;
    }
    if (h->nreqs == 0) { /* idle keep-alive connection, or draining */
        idle_close(h);
        return;
    }
    c->close_why = "request body timeout"; /* its answer has begun: no 408 */
    cr_conn_close(c, false);
}

static void h1_on_free(struct cr_conn *c)
{
    struct h1 *h = c->proto_data;
    struct cr_request *r;
    while ((r = TAILQ_FIRST(&h->reqs)) != NULL) {
        TAILQ_REMOVE(&h->reqs, r, felink);
        if (r == h->tunnel && r->status == 101)
            r->reason = cr_ws_tun_reason(&h->tun, r->resp_eof);
        else if (!r->status && r->method)
            r->reason = c->close_why ? c->close_why : "client closed the connection";
        else if (r->status && !r->reason &&
                 (!r->resp_eof || evbuffer_get_length(r->resp_body) > 0))
            r->reason =
                c->close_why ? c->close_why : "connection closed before the response was sent";
        cr_request_release_fe(r);
    }
    cr_worker_undefer(c->w, &h->resume);
    if (h->held)
        evbuffer_free(h->held);
    cr_hparse_free(&h->hp);
    free(h->url);
    free(h);
    c->proto_data = NULL;
}

static const struct cr_proto_ops h1_ops = {
    .name = "http/1.1",
    .on_data = h1_on_data,
    .on_writable = h1_on_writable,
    .on_drain = h1_on_drain,
    .on_timer = h1_on_timer,
    .on_free = h1_on_free,
};

int cr_h1_attach(struct cr_conn *c, cr_request_submit_cb submit)
{
    struct h1 *h = calloc(1, sizeof(*h));
    if (!h)
        return CR_ENOMEM;
    h->c = c;
    h->submit = submit;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    cr_hparse_init(&h->hp, 255, c->w->cfg->http.max_header_size, false, commit_header, h);
    TAILQ_INIT(&h->reqs);
    h->resume = (struct cr_deferred){.cb = resume_parsing, .arg = h};
    c->proto = &h1_ops;
    c->proto_data = h;
    cr_conn_pace_output(c); /* its responses are the connection's output */
    cr_conn_set_timer(c, c->w->cfg->http.header_timeout_ms);
    return 0;
}
