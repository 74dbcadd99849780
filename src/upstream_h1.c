/* upstream_h1.c - the HTTP/1.1 codec of an upstream connection: a
 * persistent keep-alive connection carrying one request at a time, or up
 * to `pipeline` requests whose responses come back in order. A request's
 * body is sent whole (Content-Length as given, chunked otherwise) before
 * the next request starts; a response that ends before its request's body
 * was all sent leaves the connection mid-body, and it is recycled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "log.h"
#include "upstream_int.h"

static const http_parser_settings settings;

/* The request whose response is being parsed: the oldest in flight. */
static struct cr_request *head(struct cr_upconn *u)
{
    return TAILQ_FIRST(&u->streams);
}

/* ------------------------------------------------------------ responses */

/* A complete response header field (hparse.h). */
static int commit_header(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct cr_request *r = head(arg);
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
    struct cr_request *r = head(u);
    if (!r || cr_hparse_end(&u->hp) < 0)
        return -1; /* a response nobody asked for */
    if (r->up_cancelled) /* read to its end and thrown away */
        return p->status_code >= 200 && strcmp(r->method, "HEAD") == 0 ? 1 : 0;
    r->status = p->status_code;
    if (r->status >= 100 && r->status < 200)
        return 0; /* interim: dropped at message end */
    if (p->flags & F_CHUNKED)
        r->resp_clen = -1;
    cr_up_response_head(r);
    /* tell http_parser a HEAD response has no body whatever it says */
    return strcmp(r->method, "HEAD") == 0 ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct cr_upconn *u = p->data;
    struct cr_request *r = head(u);
    if (!r->fe || r->up_cancelled)
        return 0; /* the client left: the bytes go nowhere */
    if (evbuffer_add(r->resp_body, at, n) < 0)
        return -1;
    if (evbuffer_get_length(r->resp_body) >= CR_REQUEST_BUF_HIGH)
        cr_up_pause_read(u, true); /* resumed as the client takes it */
    cr_request_notify_body(r);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct cr_upconn *u = p->data;
    struct cr_request *r = head(u);
    if (r->up_cancelled) {
        if (p->status_code < 200)
            return 0; /* interim */
        /* discarded: only its slot comes back */
        if (!http_should_keep_alive(p) || u->sending == r)
            u->close_after = true;
        if (u->sending == r)
            u->sending = NULL;
        cr_up_stream_done(u, r, false); /* up_cancelled: released, never retried */
        http_parser_pause(p, 1);
        return 0;
    }
    if (r->status < 200) {
        cr_request_reset_rheaders(r);
        r->status = 0;
        return 0;
    }
    if (!http_should_keep_alive(p))
        u->close_after = true;
    if (u->sending == r) {
        /* It answered (413, 401, ...) before the request body was all
         * sent: the connection is left inside that body, so its framing is
         * lost and it is recycled below. The body cursor lets go of r now:
         * the client may free r as soon as it hears of the end. */
        u->sending = NULL;
        u->close_after = true;
    }
    /* The exchange is over for this connection before the client hears of
     * it: a front end that finishes and lets go must find nothing to
     * cancel here. */
    r->resp_eof = true;
    bool client = r->fe != NULL;
    /* A pause for this body ends with it: the client drains r from here on,
     * and h1_consumed no longer finds r at the head to resume for. */
    cr_up_pause_read(u, false);
    cr_up_stream_done(u, r, false); /* releases our hold; the client's keeps r */
    if (client)
        cr_request_notify_end(r);
    http_parser_pause(p, 1); /* let the transport look at the connection first */
    return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int h1_on_data(struct cr_upconn *u, const uint8_t *data, size_t len)
{
    while (len > 0) {
        if (!head(u))
            return CR_EPROTO; /* bytes with no request outstanding */
        size_t n = http_parser_execute(&u->parser, &settings, (const char *)data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&u->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&u->parser, 0);
            if (u->close_after) {
                cr_up_lost(u, CR_POOL_LOST_CLOSED, "the connection cannot carry another request "
                                "(Connection: close, or an answer before the whole body)");
                return 0;
            }
            cr_pool_room(u->pool, u);
            if (u->state < CR_UP_READY)
                return 0;
        } else if (e != HPE_OK) {
            cr_log_warn("upstream conn %lld: bad HTTP/1.1 response: %s", (long long)u->id,
                        http_errno_description(e));
            return CR_EPROTO;
        }
        data += n;
        len -= n;
    }
    return 0;
}

/* A response delimited by the end of the connection ends here. */
static int h1_on_eof(struct cr_upconn *u)
{
    if (!head(u))
        return 0; /* an idle keep-alive connection closed by the server */
    http_parser_execute(&u->parser, &settings, NULL, 0);
    return head(u) ? CR_ECLOSED : 0;
}

/* ------------------------------------------------------------ requests */

static int h1_start(struct cr_upconn *u)
{
    http_parser_init(&u->parser, HTTP_RESPONSE);
    u->parser.data = u;
    /* names are lower-cased for the h2 side and our lookups */
    cr_hparse_init(&u->hp, 65536, 65536, true, commit_header, u);
    u->sending = NULL;
    u->close_after = false;
    return 0;
}

static void h1_stop(struct cr_upconn *u)
{
    cr_hparse_free(&u->hp);
    u->sending = NULL;
}

static uint32_t h1_room(const struct cr_upconn *u)
{
    uint32_t depth = CR_MAX(u->w->cfg->upstream.pipeline, 1u);
    if (u->sending || u->close_after || u->streaming)
        return 0; /* nothing waits behind a moved (maybe endless) response */
    return u->inflight < depth ? depth - u->inflight : 0;
}

static bool body_length_known(const struct cr_request *r)
{
    return cr_request_hdr(r, "content-length") != NULL;
}

/* The request head. Every name and value was validated on the way in (no
 * CR, LF or NUL can reach here), so no client can end the head early or
 * smuggle a second request into the connection. */
static int h1_submit(struct cr_upconn *u, struct cr_request *r)
{
    struct evbuffer *o = u->out;
    evbuffer_add_printf(o, "%s %s HTTP/1.1\r\nhost: %s\r\n", r->method, r->path, r->authority);
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        evbuffer_add(o, r->hdrs.v[i].name, r->hdrs.v[i].nlen);
        evbuffer_add(o, ": ", 2);
        evbuffer_add(o, r->hdrs.v[i].value, r->hdrs.v[i].vlen);
        evbuffer_add(o, "\r\n", 2);
    }
    if (r->has_body && !body_length_known(r)) {
        evbuffer_add(o, "transfer-encoding: chunked\r\n", 28);
        r->fe_flags |= 0x80; /* our own chunked framing toward the upstream */
    } else if (!r->has_body && (!strcmp(r->method, "POST") || !strcmp(r->method, "PUT") ||
                                !strcmp(r->method, "PATCH"))) {
        evbuffer_add(o, "content-length: 0\r\n", 19);
    }
    evbuffer_add(o, "\r\n", 2);
    if (r->has_body)
        u->sending = r;
    return 0;
}

/* Moves request body bytes of u->sending into the output. */
static int h1_produce(struct cr_upconn *u)
{
    struct cr_request *r = u->sending;
    if (!r)
        return 0;
    bool chunked = r->fe_flags & 0x80;
    size_t have;
    while ((have = cr_request_body_pending(r)) > 0 && evbuffer_get_length(u->out) < UP_OUT_HIGH) {
        size_t n = CR_MIN(have, (size_t)UP_OUT_HIGH);
        if (chunked)
            evbuffer_add_printf(u->out, "%zx\r\n", n);
        evbuffer_remove_buffer(r->req_body, u->out, n);
        if (chunked)
            evbuffer_add(u->out, "\r\n", 2);
        r->req_sent += n;
        if (have >= CR_REQUEST_BUF_HIGH && have - n < CR_REQUEST_BUF_HIGH)
            cr_request_notify_drained(r);
    }
    if (r->req_eof && cr_request_body_pending(r) == 0) {
        if (chunked)
            evbuffer_add(u->out, "0\r\n\r\n", 5);
        u->sending = NULL;
        cr_pool_room(u->pool, u);
    }
    return 0;
}

/* HTTP/1.1 cannot abandon one exchange and keep the connection: a request
 * given up on that cannot be left to finish (cr_upconn_cancel) costs this
 * connection, which is replaced at once; r is released with the
 * connection's other requests (up_cancelled: never retried). */
static void h1_cancel(struct cr_upconn *u, struct cr_request *r)
{
    (void)r; /* recycling resets the in-flight count and the codec's state */
    cr_up_lost(u, CR_POOL_LOST_RECYCLED, "a request was abandoned mid-exchange");
}

static void h1_resume(struct cr_upconn *u, struct cr_request *r)
{
    (void)r; /* the flush that follows moves the new body bytes */
}

static void h1_consumed(struct cr_upconn *u, struct cr_request *r, size_t n)
{
    if (u->read_paused && head(u) == r &&
        evbuffer_get_length(r->resp_body) < CR_REQUEST_BUF_HIGH / 2)
        cr_up_pause_read(u, false);
}

static void h1_retire(struct cr_upconn *u)
{
    if (u->inflight == 0)
        cr_up_lost(u, CR_POOL_LOST_RECYCLED, "retired");
}

const struct cr_up_codec cr_up_h1 = {
    .alpn = "http/1.1",
    .start = h1_start,
    .stop = h1_stop,
    .on_data = h1_on_data,
    .on_eof = h1_on_eof,
    .produce = h1_produce,
    .room = h1_room,
    .submit = h1_submit,
    .cancel = h1_cancel,
    .resume = h1_resume,
    .consumed = h1_consumed,
    .ping = NULL,
    .retire = h1_retire,
};
