/* upstream_ws.c - the codec of a tunnel's own upstream connection
 * (cr_upconn_new_tunnel): one HTTP/1.1 WebSocket upgrade (RFC 6455 4.1)
 * with corral's own key, the upstream's answer checked, then the tunnel's
 * bytes both ways, unchanged, with back-pressure: corral stops reading a
 * side while CR_REQUEST_BUF_HIGH of its bytes wait for the other. The
 * connection carries its one request and is lost (never reused) when the
 * exchange ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common.h"
#include "log.h"
#include "tls.h"
#include "upstream_int.h"

static const http_parser_settings settings;

static struct cr_request *tunnel_of(struct cr_upconn *u)
{
    return TAILQ_FIRST(&u->streams);
}

/* ------------------------------------------------------------ the answer */

/* The handshake's fields are checked here (request.c drops them as
 * hop-by-hop); the rest go to the client's answer. */
static int commit_header(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct cr_upconn *u = arg;
    struct cr_request *r = tunnel_of(u);
    if (nlen == 7 && strncasecmp(name, "upgrade", 7) == 0)
        u->ws_upgrade_ok = cr_ws_has_token(value, "websocket");
    if (nlen == 20 && strncasecmp(name, "sec-websocket-accept", 20) == 0) {
        char want[CR_WS_ACCEPT_LEN + 1];
        u->ws_accept_ok = cr_ws_accept(u->ws_key, CR_WS_KEY_LEN, want) == 0 &&
                          vlen == CR_WS_ACCEPT_LEN && memcmp(value, want, vlen) == 0;
    }
    int rc = r && !r->up_cancelled ? cr_request_add_rheader(r, name, nlen, value, vlen) : 0;
    return rc < 0 ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct cr_upconn *u = p->data;
    return cr_hparse_name(&u->hp, at, n) < 0 ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct cr_upconn *u = p->data;
    return cr_hparse_value(&u->hp, at, n) < 0 ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    struct cr_upconn *u = p->data;
    struct cr_request *r = tunnel_of(u);
    if (!r || cr_hparse_end(&u->hp) < 0)
        return -1;
    if (p->status_code == 101) {
        /* p->upgrade: Upgrade and Connection: upgrade both, so that
         * http_parser stops at the head and the rest is the tunnel's */
        if (!u->ws_upgrade_ok || !p->upgrade || !u->ws_accept_ok) {
            cr_log_warn("upstream %s conn %lld: WebSocket upgrade answered without %s",
                        u->addr->text, (long long)u->id,
                        !u->ws_upgrade_ok ? "Upgrade: websocket"
                        : !p->upgrade     ? "Connection: upgrade"
                                          : "the right Sec-WebSocket-Accept");
            return -1; /* a failure before the answer: 502 */
        }
        u->switched = true;
        if (!r->up_cancelled) {
            r->status = 101;
            r->resp_clen = -1;
            cr_up_response_head(r);
        }
        return 0; /* http_parser stops after the head of a 101 (its upgrade) */
    }
    if (p->status_code < 200) { /* another interim answer: dropped, and what it
                                 * said counts nothing for the 101 */
        u->ws_upgrade_ok = u->ws_accept_ok = false;
        cr_request_reset_rheaders(r);
        return 0;
    }
    /* refused (403, 404, 429, 503 ...): an ordinary answer */
    if (!r->up_cancelled) {
        r->status = p->status_code;
        if (p->flags & F_CHUNKED)
            r->resp_clen = -1;
        cr_up_response_head(r);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct cr_upconn *u = p->data;
    struct cr_request *r = tunnel_of(u);
    if (!r->fe || r->up_cancelled)
        return 0;
    if (evbuffer_add(r->resp_body, at, n) < 0)
        return -1;
    if (evbuffer_get_length(r->resp_body) >= CR_REQUEST_BUF_HIGH)
        cr_up_pause_read(u, true);
    cr_request_notify_body(r);
    return 0;
}

/* The end of a refusal: the exchange is over, and so is the connection. */
static int on_message_complete(http_parser *p)
{
    struct cr_upconn *u = p->data;
    struct cr_request *r = tunnel_of(u);
    if (u->switched || !r)
        return 0;
    if (r->status < 200) {
        r->status = 0;
        return 0;
    }
    r->resp_eof = true;
    bool client = r->fe != NULL && !r->up_cancelled;
    cr_up_stream_done(u, r, false);
    if (client)
        cr_request_notify_end(r);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Upstream bytes of an open tunnel go to the client as they are. */
static int relay_in(struct cr_upconn *u, const uint8_t *data, size_t len)
{
    struct cr_request *r = tunnel_of(u);
    if (!r || len == 0)
        return 0;
    if (!r->fe || r->up_cancelled)
        return 0;
    if (evbuffer_add(r->resp_body, data, len) < 0)
        return CR_ENOMEM;
    if (evbuffer_get_length(r->resp_body) >= CR_REQUEST_BUF_HIGH)
        cr_up_pause_read(u, true); /* resumed as the client takes it (ws_consumed) */
    cr_request_notify_body(r);
    return 0;
}

static int ws_on_data(struct cr_upconn *u, const uint8_t *data, size_t len)
{
    if (u->switched)
        return relay_in(u, data, len);
    if (!tunnel_of(u))
        return CR_EPROTO;
    size_t n = http_parser_execute(&u->parser, &settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&u->parser);
    if (e == HPE_PAUSED) { /* a refusal ended: the connection goes with it */
        cr_up_lost(u, CR_POOL_LOST_CLOSED, "tunnel refused by the upstream");
        return 0;
    }
    if (e != HPE_OK) {
        cr_log_warn("upstream conn %lld: bad answer to a WebSocket upgrade: %s", (long long)u->id,
                    http_errno_description(e));
        return CR_EPROTO;
    }
    if (u->switched && n < len) /* the upstream's first frames, with the 101 */
        return relay_in(u, data + n, len - n);
    return 0;
}

/* The upstream closed: an open tunnel ends (the client's side closes once
 * it has what came before); before the answer it is a failure (502). */
static int ws_on_eof(struct cr_upconn *u)
{
    struct cr_request *r = tunnel_of(u);
    if (!r)
        return 0;
    if (!u->switched) {
        http_parser_execute(&u->parser, &settings, NULL, 0); /* an answer ended by the close */
        return tunnel_of(u) ? CR_ECLOSED : 0;
    }
    r->resp_eof = true;
    bool client = r->fe != NULL && !r->up_cancelled;
    cr_up_stream_done(u, r, false);
    if (client)
        cr_request_notify_end(r);
    return 0;
}

/* ------------------------------------------------------------ requests */

static int ws_start(struct cr_upconn *u)
{
    http_parser_init(&u->parser, HTTP_RESPONSE);
    u->parser.data = u;
    cr_hparse_init(&u->hp, 65536, 65536, true, commit_header, u);
    return 0;
}

static void ws_stop(struct cr_upconn *u)
{
    cr_hparse_free(&u->hp);
}

static uint32_t ws_room(const struct cr_upconn *u)
{
    (void)u;
    return 0; /* never the pool's requests */
}

/* The upgrade request: the client's head (its own handshake fields were
 * dropped as hop-by-hop), then ours. Written before the connection is up;
 * it goes once TLS is. */
static int ws_submit(struct cr_upconn *u, struct cr_request *r)
{
    struct evbuffer *o = u->out;
    if (cr_ws_new_key(u->ws_key) < 0)
        return CR_EIO;
    evbuffer_add_printf(o, "GET %s HTTP/1.1\r\nhost: %s\r\n", r->path, r->authority);
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        evbuffer_add(o, r->hdrs.v[i].name, r->hdrs.v[i].nlen);
        evbuffer_add(o, ": ", 2);
        evbuffer_add(o, r->hdrs.v[i].value, r->hdrs.v[i].vlen);
        evbuffer_add(o, "\r\n", 2);
    }
    evbuffer_add_printf(o, "upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: %s\r\n"
                           "sec-websocket-version: 13\r\n\r\n",
                        u->ws_key);
    return 0;
}

/* The client ended its side (an HTTP/2 client's END_STREAM: req_eof) and
 * all it sent is written: the upstream gets the end too, a TLS close_notify
 * and the socket's write side shut, and ends its own side in turn
 * (ws_on_eof). */
static int ws_shut(struct cr_upconn *u)
{
    if (u->ws_shut || evbuffer_get_length(u->out) > 0)
        return 0; /* up_flush writes it, then comes back here */
    u->ws_shut = true;
    /* the upstream may close without a close_notify of its own once it
     * has the end: that is its end, not a truncation */
    SSL_set_options(u->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    ERR_clear_error();
    SSL_shutdown(u->ssl); /* sends close_notify; the peer's comes with its end */
    ERR_clear_error();
    shutdown(u->fd, SHUT_WR);
    return 0;
}

/* Client bytes go up once the upstream has accepted; the client's end
 * (its close, req_eof) ends the connection. */
static int ws_produce(struct cr_upconn *u)
{
    struct cr_request *r = tunnel_of(u);
    if (!u->switched || !r)
        return 0;
    size_t have;
    for (;;) {
        /* (not once the client's end went up: the write side is shut, and
         * the upstream has its end already) */
        if (r->tunnel_close && !u->ws_close_sent && !u->ws_shut &&
            cr_ws_at_boundary(&u->ws_up)) {
            if (cr_ws_close(u->out, r->tunnel_close, true) < 0)
                return CR_ENOMEM;
            u->ws_close_sent = true;
        }
        if ((have = cr_request_body_pending(r)) == 0)
            return r->req_eof ? ws_shut(u) : 0;
        size_t n;
        if (u->ws_close_sent) { /* nothing of the client's after corral's close */
            n = have;
            evbuffer_drain(r->req_body, n);
        } else {
            size_t queued = evbuffer_get_length(u->out);
            if (queued >= UP_OUT_HIGH)
                return 0;
            n = cr_ws_track_buf(&u->ws_up, r->req_body, CR_MIN(have, (size_t)UP_OUT_HIGH - queued),
                                r->tunnel_close != 0);
            if (n == 0)
                return 0;
            evbuffer_remove_buffer(r->req_body, u->out, n);
            r->req_sent += n;
        }
        if (have >= CR_REQUEST_BUF_HIGH && have - n < CR_REQUEST_BUF_HIGH)
            cr_request_notify_drained(r);
    }
}

/* The client left (or the tunnel was answered locally): the connection
 * goes, and r with it (up_cancelled: released, never retried). What the
 * client sent last (its close frame, often in the read that saw its end)
 * is written first, as far as the socket takes it now. */
static void ws_cancel(struct cr_upconn *u, struct cr_request *r)
{
    (void)r;
    if (u->switched && u->ssl && ws_produce(u) == 0 && evbuffer_get_length(u->out) > 0)
        cr_tls_write_out(u->ssl, u->out);
    cr_up_lost(u, CR_POOL_LOST_RECYCLED, "tunnel closed by the client");
}

static void ws_resume(struct cr_upconn *u, struct cr_request *r)
{
    (void)u, (void)r; /* the flush that follows moves the new bytes */
}

static void ws_consumed(struct cr_upconn *u, struct cr_request *r, size_t n)
{
    (void)n;
    if (u->read_paused && tunnel_of(u) == r &&
        evbuffer_get_length(r->resp_body) < CR_REQUEST_BUF_HIGH / 2)
        cr_up_pause_read(u, false);
}

static void ws_retire(struct cr_upconn *u)
{
    if (u->inflight == 0)
        cr_up_lost(u, CR_POOL_LOST_RECYCLED, "retired");
}

const struct cr_up_codec cr_up_ws = {
    .alpn = "http/1.1",
    .start = ws_start,
    .stop = ws_stop,
    .on_data = ws_on_data,
    .on_eof = ws_on_eof,
    .produce = ws_produce,
    .room = ws_room,
    .submit = ws_submit,
    .cancel = ws_cancel,
    .resume = ws_resume,
    .consumed = ws_consumed,
    .ping = NULL,
    .retire = ws_retire,
};
