/* testup_h1.c - the HTTP/1.1 front end (http_parser). */
#include "testup_h1.h"

#include <http_parser.h>
#include <inttypes.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "testup.h"
#include "testup_req.h"
#include "testup_ws.h"

#define TU_H1_MAX_QUEUE 64      /* pipelined requests parsed ahead */
#define TU_H1_CHUNK (64 * 1024) /* body bytes appended per step */

/* A header name or value arriving in pieces. */
struct tu_hbuf {
    char *p;
    size_t len, cap;
};

struct tu_h1 {
    struct tu_conn *conn;
    struct tu_server *srv;
    http_parser parser;
    struct tu_req *head, *tail; /* answers to write, in arrival order */
    unsigned depth;
    struct tu_req *cur; /* the request being parsed; also the tail */
    struct tu_hbuf field, value;
    int in_value; /* the last header piece was a value */
    int err;      /* why a parser callback failed (CR_E*) */
    unsigned paused : 1;
    unsigned stop : 1; /* parse no more: the last request has been read */
    int bad;           /* answer this status (400/431) once the queue is empty */
    struct tu_ws *ws;  /* after a 101: the connection is this WebSocket */
};

/* Whether req is a WebSocket opening handshake: GET, Upgrade: websocket,
 * Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key (http_parser has
 * already seen "Connection: upgrade"). */
static int is_ws_handshake(const struct tu_req *req)
{
    const char *up = tu_req_header(req, "upgrade");
    const char *v = tu_req_header(req, "sec-websocket-version");
    const char *key = tu_req_header(req, "sec-websocket-key");

    return strcmp(tu_req_method(req), "GET") == 0 && up != NULL && strcasecmp(up, "websocket") == 0 &&
           v != NULL && strcmp(v, "13") == 0 && key != NULL && key[0] != '\0' && strlen(key) < 64;
}

static int hbuf_add(struct tu_hbuf *b, const char *s, size_t len)
{
    if (b->len + len > TU_MAX_HEAD_BYTES)
        return CR_ELIMIT;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *grown;
        while (cap < b->len + len)
            cap *= 2;
        grown = realloc(b->p, cap);
        if (grown == NULL)
            return CR_ENOMEM;
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    return 0;
}

static void queue_push(struct tu_h1 *h1, struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);

    l->prev = h1->tail;
    l->next = NULL;
    if (h1->tail)
        tu_req_link(h1->tail)->next = req;
    else
        h1->head = req;
    h1->tail = req;
    h1->depth++;
}

static void queue_remove(struct tu_h1 *h1, struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);

    if (l->prev)
        tu_req_link(l->prev)->next = l->next;
    else
        h1->head = l->next;
    if (l->next)
        tu_req_link(l->next)->prev = l->prev;
    else
        h1->tail = l->prev;
    h1->depth--;
}

/* Records a parser callback failure: the parser stops with an error. */
static int cb_fail(struct tu_h1 *h1, int rv)
{
    if (h1->err == 0)
        h1->err = rv;
    return -1;
}

static void ready_cb(struct tu_req *req, void *arg);

static int on_message_begin(http_parser *p)
{
    struct tu_h1 *h1 = p->data;
    struct tu_req *req = tu_req_new(h1->srv, tu_conn_seq(h1->conn), tu_conn_next_request(h1->conn),
                                    "HTTP/1.1", ready_cb, h1);

    if (req == NULL)
        return cb_fail(h1, CR_ENOMEM);
    queue_push(h1, req);
    h1->cur = req;
    h1->field.len = h1->value.len = 0;
    h1->in_value = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct tu_h1 *h1 = p->data;
    int rv = tu_req_append_target(h1->cur, at, len);

    return rv ? cb_fail(h1, rv) : 0;
}

static int commit_header(struct tu_h1 *h1)
{
    int rv = tu_req_add_header(h1->cur, h1->field.p, h1->field.len, h1->value.p ? h1->value.p : "",
                               h1->value.len);

    h1->field.len = h1->value.len = 0;
    h1->in_value = 0;
    return rv;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct tu_h1 *h1 = p->data;
    int rv = h1->in_value ? commit_header(h1) : 0;

    if (rv == 0)
        rv = hbuf_add(&h1->field, at, len);
    return rv ? cb_fail(h1, rv) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct tu_h1 *h1 = p->data;
    int rv = hbuf_add(&h1->value, at, len);

    h1->in_value = 1;
    return rv ? cb_fail(h1, rv) : 0;
}

static int on_headers_complete(http_parser *p)
{
    struct tu_h1 *h1 = p->data;
    struct tu_req *req = h1->cur;
    struct tu_req_link *l = tu_req_link(req);
    const char *m = http_method_str((enum http_method)p->method);
    int rv = h1->field.len > 0 ? commit_header(h1) : 0;

    if (rv == 0)
        rv = tu_req_set_method(req, m, strlen(m));
    if (rv != 0)
        return cb_fail(h1, rv);
    l->http10 = p->http_major == 1 && p->http_minor == 0;
    if (l->http10)
        tu_req_set_protocol(req, "HTTP/1.0");
    l->last = !http_should_keep_alive(p);
    rv = tu_req_head_done(req);
    return rv ? cb_fail(h1, rv) : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct tu_h1 *h1 = p->data;
    int rv = tu_req_body_in(h1->cur, at, len);

    if (rv != 0)
        return cb_fail(h1, rv);
    if (tu_req_buffered(h1->cur) >= TU_ECHO_BUF_MAX)
        http_parser_pause(p, 1); /* resumes once the answer has taken some */
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct tu_h1 *h1 = p->data;
    struct tu_req *req = h1->cur;
    int rv = tu_req_body_done(req);

    if (rv != 0)
        return cb_fail(h1, rv);
    h1->cur = NULL;
    if (tu_req_link(req)->last)
        h1->stop = 1;
    if (h1->stop || h1->depth >= TU_H1_MAX_QUEUE)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings tu_h1_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The parser reported an error: drop the broken request and answer
 * 400 (431 for a head too large) after the answers queued before it.
 * Returns 0, or < 0 to close at once. */
static int parse_failed(struct tu_h1 *h1)
{
    h1->stop = 1;
    if (h1->err == CR_ENOMEM)
        return CR_ENOMEM;
    if (h1->cur) {
        if (tu_req_link(h1->cur)->head_sent)
            return CR_EPROTO; /* mid-answer: nothing sane to send */
        queue_remove(h1, h1->cur);
        tu_req_free(h1->cur);
        h1->cur = NULL;
    }
    h1->bad =
        h1->err == CR_ELIMIT || HTTP_PARSER_ERRNO(&h1->parser) == HPE_HEADER_OVERFLOW ? 431 : 400;
    return 0;
}

/* Feeds the input buffer to the parser until it is empty, the parser
 * pauses, or parsing stops. Returns 0 or < 0 to close. */
static int parse(struct tu_h1 *h1, int *progress)
{
    struct evbuffer *in = tu_conn_input(h1->conn);

    while (!h1->stop && !h1->paused && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        size_t n;
        enum http_errno e;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = http_parser_execute(&h1->parser, &tu_h1_settings, v.iov_base, v.iov_len);
        if (n > 0) {
            evbuffer_drain(in, n);
            *progress = 1;
        }
        e = HTTP_PARSER_ERRNO(&h1->parser);
        if (e != HPE_OK && e != HPE_PAUSED)
            return parse_failed(h1);
        if (h1->parser.upgrade && h1->cur == NULL) {
            /* CONNECT or Upgrade, complete: the parser stops here. A
             * WebSocket handshake becomes a WebSocket once answered;
             * anything else is answered, then the connection closes: what
             * follows is not HTTP/1.1. */
            h1->stop = 1;
            if (h1->tail && is_ws_handshake(h1->tail))
                tu_req_link(h1->tail)->ws = 1;
            else if (h1->tail)
                tu_req_link(h1->tail)->last = 1;
        } else if (e == HPE_PAUSED) {
            h1->paused = 1;
        } else if (n < v.iov_len) {
            h1->err = CR_EPROTO;
            return parse_failed(h1);
        }
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* Queues the status line and header fields of req's answer. */
static int write_head(struct tu_h1 *h1, struct tu_req *req)
{
    struct evbuffer *out = tu_conn_output(h1->conn);
    struct tu_req_link *l = tu_req_link(req);
    int status = tu_req_status(req);
    uint64_t len;
    int r = evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n", status,
                                reason(status), tu_req_content_type(req));

    if (r >= 0 && tu_req_length(req, &len)) {
        r = evbuffer_add_printf(out, "content-length: %" PRIu64 "\r\n", len);
    } else if (r >= 0 && tu_req_has_body(req)) {
        if (l->http10)
            l->last = 1; /* delimited by the close */
        else
            r = evbuffer_add_printf(out, "transfer-encoding: chunked\r\n");
        l->chunked = !l->http10;
    }
    if (r >= 0 && l->last)
        r = evbuffer_add_printf(out, "connection: close\r\n");
    else if (r >= 0 && l->http10)
        r = evbuffer_add_printf(out, "connection: keep-alive\r\n");
    if (r >= 0)
        r = evbuffer_add(out, "\r\n", 2);
    l->head_sent = 1;
    return r < 0 ? CR_ENOMEM : 0;
}

/* Appends what there is of req's body, up to the output limit. Sets *done
 * once the whole body (and the last chunk) has been queued. */
static int write_body(struct tu_h1 *h1, struct tu_req *req, int *done, int *progress)
{
    struct evbuffer *out = tu_conn_output(h1->conn);
    struct tu_req_link *l = tu_req_link(req);

    *done = 0;
    for (;;) {
        size_t n = tu_req_body_avail(req);
        int r = 0;

        if (n == 0 && tu_req_body_eof(req)) {
            if (l->chunked && evbuffer_add(out, "0\r\n\r\n", 5) != 0)
                return CR_ENOMEM;
            *done = 1;
            return 0;
        }
        if (n == 0 || tu_conn_output_full(h1->conn))
            return 0;
        if (n > TU_H1_CHUNK)
            n = TU_H1_CHUNK;
        if (l->chunked)
            r = evbuffer_add_printf(out, "%zx\r\n", n) < 0 ? CR_ENOMEM : 0;
        if (r == 0)
            r = tu_req_body_move(req, out, n);
        if (r == 0 && l->chunked)
            r = evbuffer_add(out, "\r\n", 2) == 0 ? 0 : CR_ENOMEM;
        if (r != 0)
            return r;
        *progress = 1;
    }
}

/* The queue is empty after a parse error: answer it and close. */
static int write_bad(struct tu_h1 *h1)
{
    static const char body[] = "{\"error\":\"bad request\"}\n";
    int status = h1->bad;

    h1->bad = 0;
    if (evbuffer_add_printf(tu_conn_output(h1->conn),
                            "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                            "content-length: %zu\r\nconnection: close\r\n\r\n%s",
                            status, reason(status), sizeof(body) - 1, body) < 0)
        return CR_ENOMEM;
    tu_conn_close_after_flush(h1->conn);
    return 0;
}

static void ws_ping(struct tu_ws *ws, void *arg)
{
    struct tu_h1 *h1 = arg;

    if (!tu_conn_is_open(h1->conn) || tu_conn_output_full(h1->conn))
        return;
    if (tu_ws_ping(ws, tu_conn_output(h1->conn)) != 0)
        tu_conn_close(h1->conn, "out of memory");
}

/* Answers the WebSocket handshake req (at the head of the queue, ready):
 * 101 and the connection becomes a WebSocket, or --ws-refuse's status and
 * the connection closes. Frees req. */
static int write_upgrade(struct tu_h1 *h1, struct tu_req *req)
{
    struct evbuffer *out = tu_conn_output(h1->conn);
    const char *proto = tu_req_header(req, "sec-websocket-protocol");
    int refuse = h1->srv->opts.ws_refuse;
    char accept[29];
    int r;

    queue_remove(h1, req);
    tu_req_answered(req);
    if (refuse) {
        static const char body[] = "{\"error\":\"websocket refused\"}\n";
        r = evbuffer_add_printf(out,
                                "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                                "content-length: %zu\r\nconnection: close\r\n\r\n%s",
                                refuse, reason(refuse), sizeof(body) - 1, body);
        tu_req_free(req);
        tu_conn_close_after_flush(h1->conn);
        return r < 0 ? CR_ENOMEM : 0;
    }
    tu_ws_accept(tu_req_header(req, "sec-websocket-key"),
                 strlen(tu_req_header(req, "sec-websocket-key")), accept);
    r = evbuffer_add_printf(out,
                            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                            "connection: upgrade\r\nsec-websocket-accept: %s\r\n",
                            accept);
    if (r >= 0 && proto != NULL) /* the first one offered */
        r = evbuffer_add_printf(out, "sec-websocket-protocol: %.*s\r\n",
                                (int)strcspn(proto, ", \t"), proto);
    if (r >= 0)
        r = evbuffer_add(out, "\r\n", 2);
    tu_req_free(req);
    if (r < 0)
        return CR_ENOMEM;
    h1->ws = tu_ws_new(h1->srv, ws_ping, h1);
    return h1->ws ? 0 : CR_ENOMEM;
}

/* The connection is a WebSocket: echoes the whole frames received. */
static int ws_pump(struct tu_h1 *h1)
{
    int rv;

    if (tu_conn_output_full(h1->conn))
        return 0;
    rv = tu_ws_feed(h1->ws, tu_conn_input(h1->conn), tu_conn_output(h1->conn));
    if (rv == 1 || rv == -1) {
        tu_conn_close_after_flush(h1->conn);
        return 0;
    }
    return rv;
}

/* Writes answers in order while the output has room. */
static int pump(struct tu_h1 *h1, int *progress)
{
    struct tu_req *req;

    while ((req = h1->head) != NULL && !tu_conn_output_full(h1->conn)) {
        struct tu_req_link *l = tu_req_link(req);
        int done, last, rv;

        if (!l->continue_sent && !l->head_sent && !l->http10 && tu_req_expects_continue(req) &&
            !tu_req_body_is_done(req)) {
            if (evbuffer_add(tu_conn_output(h1->conn), "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
                return CR_ENOMEM;
            l->continue_sent = 1;
            *progress = 1;
        }
        if (!tu_req_ready(req))
            return 0;
        if (l->ws) {
            *progress = 1;
            return write_upgrade(h1, req);
        }
        if (!l->head_sent) {
            rv = write_head(h1, req);
            if (rv != 0)
                return rv;
            *progress = 1;
        }
        rv = write_body(h1, req, &done, progress);
        if (rv != 0 || !done)
            return rv;
        /* Complete: a finished request is never the one being parsed. */
        *progress = 1;
        last = l->last;
        queue_remove(h1, req);
        tu_req_answered(req);
        tu_req_free(req);
        if (last) {
            h1->stop = 1;
            tu_conn_close_after_flush(h1->conn);
            return 0;
        }
    }
    if (h1->bad && h1->head == NULL)
        return write_bad(h1);
    return 0;
}

static int can_resume(const struct tu_h1 *h1)
{
    return !h1->stop && h1->depth < TU_H1_MAX_QUEUE &&
           (h1->cur == NULL || tu_req_buffered(h1->cur) < TU_ECHO_BUF_MAX);
}

/* Parses and answers until neither makes progress. */
static int drive(struct tu_h1 *h1)
{
    int progress, rv;

    do {
        progress = 0;
        if (h1->paused && can_resume(h1)) {
            http_parser_pause(&h1->parser, 0);
            h1->paused = 0;
        }
        if (h1->ws)
            return ws_pump(h1);
        rv = parse(h1, &progress);
        if (rv == 0 && tu_conn_is_open(h1->conn))
            rv = pump(h1, &progress);
        if (rv != 0)
            return rv;
    } while (progress && tu_conn_is_open(h1->conn));
    return 0;
}

static void ready_cb(struct tu_req *req, void *arg)
{
    struct tu_h1 *h1 = arg;
    int rv;

    (void)req;
    if (!tu_conn_is_open(h1->conn))
        return;
    rv = drive(h1);
    if (rv != 0) {
        tu_conn_close(h1->conn, "HTTP/1.1 error");
        return;
    }
    tu_conn_update(h1->conn);
}

static int h1_open(struct tu_conn *conn, void **state)
{
    struct tu_h1 *h1 = calloc(1, sizeof(*h1));

    if (h1 == NULL)
        return CR_ENOMEM;
    h1->conn = conn;
    h1->srv = tu_conn_server(conn);
    http_parser_init(&h1->parser, HTTP_REQUEST);
    h1->parser.data = h1;
    *state = h1;
    return 0;
}

static int h1_on_read(void *state)
{
    return drive(state);
}

static int h1_want_read(void *state)
{
    const struct tu_h1 *h1 = state;

    return (!h1->stop || h1->ws != NULL) && !h1->paused;
}

static void h1_free(void *state)
{
    struct tu_h1 *h1 = state;

    while (h1->head) {
        struct tu_req *req = h1->head;
        queue_remove(h1, req);
        tu_req_free(req);
    }
    tu_ws_free(h1->ws);
    free(h1->field.p);
    free(h1->value.p);
    free(h1);
}

const struct tu_proto tu_h1_proto = {
    .name = "HTTP/1.1",
    .open = h1_open,
    .on_read = h1_on_read,
    .on_drain = h1_on_read,
    .want_read = h1_want_read,
    .on_free = h1_free,
};
