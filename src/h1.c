/* h1.c - HTTP/1.1 server side: http_parser in, framed responses out. */
#include "h1.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "log.h"
#include "request.h"

/* fe_flags of a request on an h1 connection (http_parser owns the F_ names) */
#define H1F_HEAD_SENT 0x01
#define H1F_CHUNKED 0x02
#define H1F_NO_BODY 0x04
#define H1F_LAST 0x08  /* the connection closes after this response */
#define H1F_HTTP10 0x10

struct h1 {
    struct cr_conn *c;
    cr_request_submit_cb submit;   /* where complete heads go */
    http_parser parser;
    TAILQ_HEAD(cr_request_q, cr_request) reqs; /* in arrival order; the head answers first */
    uint32_t nreqs;
    struct cr_request *cur;        /* the request being parsed */
    char *field, *value, *url;     /* the current header field/value, URL */
    size_t flen, vlen, ulen, fcap, vcap, ucap;
    bool in_value;
    bool value_at_end;             /* the last value piece ended the read buffer */
    const char *buf_end;           /* end of the bytes being parsed */
    bool no_more;                  /* stop reading requests (close pending) */
    int err_status;                /* set by a callback that stopped the parser */
    const char *err_reason;
    bool saw_cl, saw_te;
    int64_t cl_value;
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
    TAILQ_INSERT_TAIL(&h->reqs, h->cur, felink);
    h->nreqs++;
    h->flen = h->vlen = h->ulen = 0;
    h->in_value = false;
    h->saw_cl = h->saw_te = false;
    cr_conn_set_timer(h->c, h->c->w->cfg->http.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = H(p);
    int rc = cr_grow(&h->url, &h->ulen, &h->ucap, at, n, h->c->w->cfg->http.max_uri);
    return rc == 0 ? 0 : stop(h, rc == CR_ELIMIT ? 414 : 503, "uri too long");
}

static int commit_header(struct h1 *h)
{
    if (!h->flen)
        return 0;
    /* RFC 9112 6.3: both framings at once, or two lengths, is smuggling */
    if (h->flen == 14 && strncasecmp(h->field, "content-length", 14) == 0) {
        int64_t v = strtoll(h->value, NULL, 10);
        if (h->saw_cl && v != h->cl_value)
            return stop(h, 400, "conflicting content-length");
        h->saw_cl = true;
        h->cl_value = v;
    } else if (h->flen == 17 && strncasecmp(h->field, "transfer-encoding", 17) == 0) {
        h->saw_te = true;
    }
    int rc = cr_request_add_header(h->cur, h->field, h->flen, h->value ? h->value : "", h->vlen);
    h->flen = h->vlen = 0;
    h->in_value = false;
    if (rc == CR_ELIMIT)
        return stop(h, 431, "request header fields too large");
    if (rc == CR_EPROTO)
        return stop(h, 400, "invalid header");
    if (rc < 0)
        return stop(h, 503, "out of memory");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = H(p);
    if (h->in_value && commit_header(h))
        return -1;
    if (cr_grow(&h->field, &h->flen, &h->fcap, at, n, 255) < 0)
        return stop(h, 431, "request header fields too large");
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = H(p);
    /* A second piece of the same value that does not follow a read
     * boundary is a folded line (obs-fold, RFC 9112 5.2): refused, never
     * unfolded and forwarded. */
    if (h->in_value && !h->value_at_end)
        return stop(h, 400, "obsolete line folding");
    h->value_at_end = at + n == h->buf_end;
    h->in_value = true;
    if (cr_grow(&h->value, &h->vlen, &h->vcap, at, n, h->c->w->cfg->http.max_header_size) < 0)
        return stop(h, 431, "request header fields too large");
    return 0;
}

static void write_continue(struct h1 *h)
{
    if (TAILQ_FIRST(&h->reqs) == h->cur)
        cr_conn_write(h->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static int on_headers_complete(http_parser *p)
{
    struct h1 *h = H(p);
    struct cr_request *r = h->cur;
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    if (h->in_value && commit_header(h))
        return -1;
    if (h->saw_cl && h->saw_te)
        return stop(h, 400, "content-length with transfer-encoding");
    if (p->http_major != 1)
        return stop(h, 400, "unsupported HTTP version");
    if (p->http_minor == 0) {
        r->protocol = "HTTP/1.0";
        r->fe_flags |= H1F_HTTP10;
    }
    if (cr_request_set(r, &r->method, http_method_str(p->method),
                       strlen(http_method_str(p->method))) < 0 ||
        cr_request_set(r, &r->path, h->url ? h->url : "", h->ulen) < 0)
        return stop(h, 400, "bad request");
    if (p->method == HTTP_HEAD)
        r->fe_flags |= H1F_NO_BODY;
    r->has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 &&
                                             p->content_length != ULLONG_MAX);
    if (!(p->flags & F_CHUNKED) && h->saw_cl)
        r->req_clen = h->cl_value;
    if (r->has_body && hc->max_body && r->req_clen > (int64_t)hc->max_body)
        return stop(h, 413, "request body too large");
    if (!http_should_keep_alive(p)) {
        r->fe_flags |= H1F_LAST;
        h->no_more = true;
    }
    const struct cr_hdr *expect = cr_request_hdr(r, "expect");
    if (expect && r->has_body && strcasecmp(expect->value, "100-continue") == 0)
        write_continue(h);
    cr_conn_set_timer(h->c, r->has_body ? hc->body_timeout_ms : 0);
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
    if (cr_request_body_pending(r) >= CR_REQUEST_BUF_HIGH)
        cr_conn_pause_read(h->c, true);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct h1 *h = H(p);
    if (h->cur && h->cur->has_body)
        cr_request_body_end(h->cur);
    h->cur = NULL;
    cr_conn_set_timer(h->c, 0);
    if (h->no_more || h->nreqs >= CR_H1_PIPELINE) {
        cr_conn_pause_read(h->c, true);
        if (h->no_more)
            http_parser_pause(p, 1); /* what follows a last request is ignored */
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

static int h1_on_data(struct cr_conn *c, const uint8_t *data, size_t len)
{
    struct h1 *h = c->proto_data;
    if (h->no_more)
        return 0;
    h->buf_end = (const char *)data + len;
    size_t n = http_parser_execute(&h->parser, &settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (e == HPE_PAUSED || h->no_more)
        return 0;
    if (h->err_status) {
        parse_failed(h, h->err_status, h->err_reason);
        return 0;
    }
    if (e != HPE_OK || n != len) {
        parse_failed(h, 400, http_errno_name(e));
        return 0;
    }
    if (!h->cur && h->nreqs == 0)
        cr_conn_set_timer(c, c->w->cfg->http.idle_timeout_ms);
    return 0;
}

/* ------------------------------------------------------------ responses */

static void write_head(struct h1 *h, struct cr_request *r)
{
    struct evbuffer *out = h->c->out;
    int s = r->status;
    bool no_body = (r->fe_flags & H1F_NO_BODY) || s < 200 || s == 204 || s == 304;
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

/* Writes what the head of the pipeline has, and moves on when it is done. */
static void pump(struct h1 *h)
{
    struct cr_request *r;
    while ((r = TAILQ_FIRST(&h->reqs)) != NULL && r->state >= CR_REQ_RESPONDING) {
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
        bool last = (r->fe_flags & H1F_LAST) || r == h->cur;
        TAILQ_REMOVE(&h->reqs, r, felink);
        h->nreqs--;
        if (r == h->cur) { /* answered before its body arrived: stop here */
            h->cur = NULL;
            h->no_more = true;
        }
        cr_request_release_fe(r);
        if (last) {
            h->no_more = true;
            cr_conn_close(h->c, true);
            return;
        }
    }
    if (cr_conn_pending(h->c))
        cr_conn_want_flush(h->c);
    if (h->nreqs == 0 && !h->cur) {
        if (h->c->w->draining) {
            cr_conn_close(h->c, true);
            return;
        }
        cr_conn_set_timer(h->c, h->c->w->cfg->http.idle_timeout_ms);
    }
    if (!h->no_more && h->nreqs < CR_H1_PIPELINE &&
        !(h->cur && cr_request_body_pending(h->cur) >= CR_REQUEST_BUF_HIGH))
        cr_conn_pause_read(h->c, false);
}

static void fe_head(struct cr_request *r)
{
    pump(r->fe_data);
}

static void fe_drained(struct cr_request *r)
{
    struct h1 *h = r->fe_data;
    if (r == h->cur && !h->no_more && h->nreqs < CR_H1_PIPELINE)
        cr_conn_pause_read(h->c, false);
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

static void h1_on_drain(struct cr_conn *c)
{
    struct h1 *h = c->proto_data;
    h->no_more = true;
    struct cr_request *last = TAILQ_LAST(&h->reqs, cr_request_q);
    if (last)
        last->fe_flags |= H1F_LAST;
    else
        cr_conn_close(c, true);
}

static void h1_on_timer(struct cr_conn *c)
{
    struct h1 *h = c->proto_data;
    if (h->cur && !(h->cur->fe_flags & H1F_HEAD_SENT) && h->cur->state < CR_REQ_RESPONDING) {
        parse_failed(h, 408, h->cur->method ? "request body timeout" : "request header timeout");
        return;
    }
    if (h->nreqs == 0) {
        cr_conn_close(c, true); /* idle keep-alive connection */
        return;
    }
    cr_conn_close(c, false);
}

static void h1_on_free(struct cr_conn *c)
{
    struct h1 *h = c->proto_data;
    struct cr_request *r;
    while ((r = TAILQ_FIRST(&h->reqs)) != NULL) {
        TAILQ_REMOVE(&h->reqs, r, felink);
        if (!r->status && r->method)
            r->reason = "client closed the connection";
        cr_request_release_fe(r);
    }
    free(h->field);
    free(h->value);
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
    TAILQ_INIT(&h->reqs);
    c->proto = &h1_ops;
    c->proto_data = h;
    cr_conn_set_timer(c, c->w->cfg->http.header_timeout_ms);
    return 0;
}
